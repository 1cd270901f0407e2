/*
 * mapq_json.h - converting values between msgpack and JSON (jansson, and
 * yajl to read JSON text as a stream).
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
 * Parses JSON text (len bytes, borrowed, exactly one value; surrounding white
 * space is allowed; NULL when len is 0) and appends its msgpack encoding to
 * out, converted toward type (NULL: the natural mapping): an integer where
 * float is declared becomes a float, a string where bytes is declared is
 * decoded from base64. Then the result is checked against type; a mismatch is
 * MAPQ_ETYPE with the path in err ("[2]: expected int, got str"). On any
 * failure out is left as it was.
 *
 * The text is JSON as RFC 8259 has it, read as jansson reads it with
 * JSON_DECODE_ANY | JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL: any value at
 * the top, UTF-8 only, no duplicate keys in an object, "\u0000" allowed in
 * strings but not in keys, surrogate pairs decoded and lone surrogates
 * refused, integers within int64, finite numbers, at most 2048 levels of
 * nesting. Malformed JSON is MAPQ_EINVAL with "invalid JSON at line L,
 * column C: reason" (C counts characters), and comes before any
 * conversion error wherever they are. A value nested more than 32 levels
 * deep, which msgpack-c could not unpack, is MAPQ_EINVAL with its path.
 * Past out's cap is MAPQ_ETOOBIG, naming where the cap was met.
 *
 * Memory: a list at the top of the value is converted element by element,
 * so the cost is out plus the largest element; other values are built
 * whole as a tree first.
 */
enum mapq_err mapq_json_to_msgpack(const char *text, size_t len,
                                   const struct mapq_type *type,
                                   struct mapq_buf *out, char *err);

/* A place in JSON text: 1-based line, and 1-based column in characters. */
struct mapq_json_pos {
    int line;
    int col;
};

/* One member of the object mapq_json_read_members() reads. */
struct mapq_json_member {
    const char *name;         /* its key: UTF-8 without NUL, NUL-terminated;
                                 borrowed for the callback */
    size_t len;               /* bytes of name */
    struct mapq_json_pos pos; /* where the key starts */
    /* for the done call: the value was a list given away in pages (ops'
     * page), of count elements; nothing of it is in the buffer */
    bool paged;
    uint64_t count;
};

/*
 * Called at each member's key, in text order. Returns the buffer its value
 * is to be appended to (borrowed; it must stay valid until the member's
 * done call), with *type set to convert it toward (it starts NULL: the
 * natural mapping; borrowed likewise). Returns NULL to skip the value,
 * which is then only read as JSON, and gets no done call.
 */
typedef struct mapq_buf *mapq_json_member_fn(void *arg,
                                             const struct mapq_json_member *m,
                                             const struct mapq_type **type);

/*
 * Called when the value of a member that was not skipped has been read:
 * rc and err as mapq_json_to_msgpack() gives them for that value (appended
 * to the buffer only when rc is MAPQ_OK; err is "" then). where is the
 * element of a list at the top of the value where conversion failed, or
 * the value itself.
 */
typedef void mapq_json_done_fn(void *arg, const struct mapq_json_member *m,
                               enum mapq_err rc, const char *err,
                               const struct mapq_json_pos *where);

/*
 * Optional: called with each page of page_len elements (the last may be
 * short) of a member's value that is a list while its type (from the
 * member call) is a list type: the elements, converted and checked, as
 * msgpack without a list header (borrowed for the call). They are not
 * appended to the member's buffer, which holds at most one page. An error
 * returned (message in err, MAPQ_ERR_LEN bytes) ends that value with it.
 */
typedef enum mapq_err mapq_json_page_fn(void *arg,
                                        const struct mapq_json_member *m,
                                        const char *elems, size_t len,
                                        uint32_t count, char *err);

/*
 * Optional: the text before off will not be read again, except to place
 * an error: a caller that mapped a file may give those pages back. Called
 * every few MiB.
 */
typedef void mapq_json_consumed_fn(void *arg, size_t off);

struct mapq_json_member_ops {
    mapq_json_member_fn *member;
    mapq_json_done_fn *done;
    mapq_json_page_fn *page; /* NULL: lists are appended whole */
    uint32_t page_len;
    mapq_json_consumed_fn *consumed; /* may be NULL */
};

/*
 * Reads JSON text (len bytes, borrowed) that must be one object, member by
 * member, calling ops (borrowed) with arg as it goes: each member's value
 * is converted as mapq_json_to_msgpack() would, streamed in the same way,
 * straight into the buffer its member callback chose, so the object is
 * never whole in memory. A member's failing value does not stop the read.
 *
 * Returns MAPQ_OK when the text is one well-formed object. MAPQ_EINVAL when
 * it is not JSON (the same language as mapq_json_to_msgpack(); a key twice
 * in the object is refused there, at the second one): the reason alone in
 * err (MAPQ_ERR_LEN bytes) and where it was found in *pos; members before
 * it have been reported, the one it interrupted has not and its buffer is
 * as it was. MAPQ_ETYPE when the text is JSON but no object (*pos at the
 * value; no callback made).
 */
enum mapq_err mapq_json_read_members(const char *text, size_t len,
                                     const struct mapq_json_member_ops *ops,
                                     void *arg, struct mapq_json_pos *pos,
                                     char *err);

/*
 * Reads JSON text (len bytes, borrowed) that must be exactly one value as
 * mapq_json_read_members() reads the value of a member: as if the text were
 * the value of the one member of an object, named name (borrowed; its
 * position is line 1, column 1). ops' member call comes first, then its
 * pages and its done call when the value was not skipped. Returns MAPQ_OK
 * when the text is one JSON value (how its conversion went is the done
 * call's), or MAPQ_EINVAL when it is not JSON: the reason in err and where
 * in *pos (the done call has come only when the error follows a whole
 * value: "[1] [2]").
 */
enum mapq_err mapq_json_read_value(const char *text, size_t len,
                                   const char *name,
                                   const struct mapq_json_member_ops *ops,
                                   void *arg, struct mapq_json_pos *pos,
                                   char *err);

/*
 * Appends text (len bytes, borrowed: an error message, a task's stderr) to
 * out as a JSON string, quotes included. Bytes that are not UTF-8 become
 * U+FFFD, so that whatever a task wrote, the document stays valid JSON.
 */
void mapq_json_append_text(struct mapq_buf *out, const char *text, size_t len);

#endif
