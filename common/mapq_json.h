/*
 * mapq_json.h - converting values between msgpack and JSON (jansson).
 *
 * Mapping: int <-> JSON integer, float <-> JSON real, bool, null, str <->
 * string, list <-> array, dict <-> object. bytes (msgpack bin) become
 * base64 strings in JSON; going back, a JSON string becomes bin only when
 * the declared type says bytes. Every value that mapq_type_check() accepts
 * round-trips exactly: empty str, list and dict, ints from INT64_MIN to
 * INT64_MAX, floats to the last bit (-0.0 and subnormals included; a float
 * stays a float: 1.0, not 1), characters beyond the BMP (read from raw
 * UTF-8 or "\ud83d\ude00" escapes, written raw), and NUL bytes in str
 * ("\u0000"). What JSON cannot carry is MAPQ_EINVAL with the element's
 * path: msgpack maps with non-str keys, ints above INT64_MAX, NaN and
 * infinite floats, str or keys that are not UTF-8, keys holding NUL, ext
 * values.
 */
#ifndef MAPQ_JSON_H
#define MAPQ_JSON_H

#include <msgpack.h>
#include <stddef.h>
#include <stdio.h>

#include "mapq_buf.h"
#include "mapq_err.h"
#include "mapq_type.h"

enum mapq_json_flags {
    MAPQ_JSON_PRETTY = 1 << 0, /* indented, for people */
};

/* Appends the JSON text of o (borrowed) to out. */
enum mapq_err mapq_json_from_msgpack(const msgpack_object *o,
                                     struct mapq_buf *out, int flags,
                                     char *err);

/* Same, for a msgpack-encoded value in (data, len). */
enum mapq_err mapq_json_from_bytes(const char *data, size_t len,
                                   struct mapq_buf *out, int flags, char *err);

/*
 * Writes the msgpack-encoded value in (data, len) to out as compact JSON
 * text and a newline, as mapq_json_from_bytes() would make it, without
 * holding its whole tree or text: a list goes element by element, in two
 * passes, the first checking every element (and finding the digits its
 * floats need), so that an error (the same as mapq_json_from_bytes()
 * gives) comes before anything is written. MAPQ_EIO when out fails.
 */
enum mapq_err mapq_json_write(const char *data, size_t len, FILE *out,
                              char *err);

/*
 * Parses JSON text (len bytes, exactly one value; surrounding white space is
 * allowed) and appends its msgpack encoding to out, converted toward type
 * (NULL: the natural mapping): an integer where float is declared becomes a
 * float, a string where bytes is declared is decoded from base64. Then the
 * result is checked against type; a mismatch is MAPQ_ETYPE with the path in
 * err ("[2]: expected int, got str"). Malformed JSON is MAPQ_EINVAL with
 * jansson's line and column in err.
 */
enum mapq_err mapq_json_to_msgpack(const char *text, size_t len,
                                   const struct mapq_type *type,
                                   struct mapq_buf *out, char *err);

/*
 * Appends text (len bytes, borrowed: an error message, a task's stderr) to
 * out as a JSON string, quotes included. Bytes that are not UTF-8 become
 * U+FFFD, so that whatever a task wrote, the document stays valid JSON.
 */
void mapq_json_append_text(struct mapq_buf *out, const char *text, size_t len);

#endif
