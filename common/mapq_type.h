/*
 * mapq_type.h - workflow value types: int, float, bool, str, bytes, file,
 * dir, any, list[T], dict[T], records {name: T, ...} and T? (optional).
 *
 * A type is a small tree owned by whoever parsed or built it. Values are
 * msgpack objects; mapq_type_check() says whether one fits. The wire mapping:
 * int = msgpack int, float = msgpack float (an int is accepted), bool =
 * bool, str = str, bytes = bin, list = array, dict = map with str keys,
 * record = map with exactly the record's members as str keys (a member of
 * type T? may hold null but is not left out), null = nil (only for T? and
 * any). A file is a reference to content, never the bytes: a map of
 * exactly "uri" (str), "sha256" (the content's hash, 64 lowercase hex
 * digits) and "size" (int >= 0, bytes) (docs/ARCHITECTURE.md, "Files and
 * directories"). A dir is the same reference to its manifest
 * (mapq_manifest.h), with a fourth member, "files" (int >= 0): how many
 * files the manifest lists.
 */
#ifndef MAPQ_TYPE_H
#define MAPQ_TYPE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "mapq_err.h"

enum mapq_type_kind {
    MAPQ_T_INT,
    MAPQ_T_FLOAT,
    MAPQ_T_BOOL,
    MAPQ_T_STR,
    MAPQ_T_BYTES,
    MAPQ_T_ANY,
    MAPQ_T_LIST,
    MAPQ_T_DICT,
    MAPQ_T_RECORD,
    MAPQ_T_FILE,
    MAPQ_T_DIR,
};

/* Members of a record: at most MAPQ_TYPE_MEMBERS_MAX, names matching
 * [A-Za-z_][A-Za-z0-9_]* of at most MAPQ_TYPE_NAME_MAX bytes. */
#define MAPQ_TYPE_MEMBERS_MAX 64
#define MAPQ_TYPE_NAME_MAX    64

/* A file's "uri": 1 to MAPQ_TYPE_URI_MAX bytes of UTF-8 without NUL. Its
 * "sha256": MAPQ_TYPE_SHA256_HEX lowercase hex digits. */
#define MAPQ_TYPE_URI_MAX    4096
#define MAPQ_TYPE_SHA256_HEX 64

struct mapq_member {
    char *name;             /* owned */
    struct mapq_type *type; /* owned */
};

struct mapq_type {
    enum mapq_type_kind kind;
    bool optional;          /* T?: null allowed */
    struct mapq_type *elem; /* LIST and DICT only; owned */
    /* RECORD only: owned, sorted by name, names distinct */
    struct mapq_member *members;
    size_t nmembers;
};

/*
 * Parses a type string such as "list[int?]" or "{count: int, names:
 * list[str]}". Returns a new type (caller frees with mapq_type_free()), or
 * NULL with a message in err.
 */
struct mapq_type *mapq_type_parse(const char *s, char *err);

/* Builds a type; takes ownership of elem (NULL for scalars). */
struct mapq_type *mapq_type_new(enum mapq_type_kind kind, bool optional,
                                struct mapq_type *elem);
/*
 * Builds a record type of the n members (n >= 1), taking ownership of
 * members (an array from malloc) and what it holds; sorts them by name.
 * Two members of one name, a bad name or too many members: frees it all
 * and returns NULL with a message in err.
 */
struct mapq_type *mapq_type_record(struct mapq_member *members, size_t n,
                                   bool optional, char *err);
/* The type of record t's member name (borrowed), or NULL when t is no
 * record or has no such member. */
const struct mapq_type *mapq_type_member(const struct mapq_type *t,
                                         const char *name, size_t len);

/* Deep copy; caller frees with mapq_type_free(). */
struct mapq_type *mapq_type_dup(const struct mapq_type *t);
/* NULL-safe. */
void mapq_type_free(struct mapq_type *t);

/*
 * What a value of t may be given as before its files are stored: a copy of
 * t in which each file is any, so that a local path (a str) or a reference
 * both bind (caller frees with mapq_type_free()); NULL when t holds no
 * file. The value is checked against t once its paths are references.
 */
struct mapq_type *mapq_type_file_paths(const struct mapq_type *t);

/*
 * Writes the canonical spelling ("list[int?]", "{a: int, b: str}" with
 * members by name) into buf, truncated to len bytes with the NUL; t NULL
 * writes "none". Returns buf.
 */
char *mapq_type_format(const struct mapq_type *t, char *buf, size_t len);
/* The whole canonical spelling, however long (a record of many members);
 * the caller frees it. */
char *mapq_type_format_alloc(const struct mapq_type *t);

bool mapq_type_equal(const struct mapq_type *a, const struct mapq_type *b);

/*
 * True when every value of type src is a valid value of type dst, so that
 * feeding src into dst is safe at validation time. any on either side is
 * accepted (checked at run time); int fits float; T fits T?; T? does not
 * fit T, so list[T?] does not fit list[T]; a record fits a record of the
 * same member names whose member types each fit; file fits only file, and
 * dir only dir (not str, nor a record of their members, either way).
 */
bool mapq_type_assignable(const struct mapq_type *src,
                          const struct mapq_type *dst);

/* True for list[...] (optional or not). */
bool mapq_type_is_list(const struct mapq_type *t);

/* True when t (borrowed) is file or dir or holds one anywhere: a list or
 * dict element, a record member, at any depth. NULL-safe (false). */
bool mapq_type_has_file(const struct mapq_type *t);

/*
 * Checks that o (borrowed) is a value of type t. On mismatch returns
 * MAPQ_ETYPE and writes e.g. "[3]: expected int, got str" into err. Values
 * under any are walked too: they may not hold ext objects or dicts with
 * non-str keys, since they could not travel as JSON. Every scalar must also
 * be representable (above): an int past INT64_MAX, a NaN or infinite float,
 * a str or dict key that is not UTF-8 is MAPQ_ETYPE too. A list or dict
 * type built with a NULL elem is taken as list[any] / dict[any]. A file
 * must have its three members (a dir its four), no other, each of its
 * shape (above), e.g.
 * "[3][\"sha256\"]: expected 64 lowercase hex digits".
 */
enum mapq_err mapq_type_check(const struct mapq_type *t,
                              const msgpack_object *o, char *err);

/*
 * What every value must also be, whatever its type, since values travel as
 * JSON (task stdin and output, mapq run's output): ints within the signed
 * 64-bit range (a msgpack uint above INT64_MAX is refused), floats finite
 * (no NaN or infinity), str and dict keys valid UTF-8 (RFC 3629: no
 * overlong forms, no surrogates). A str may hold NUL bytes, a dict key may
 * not (JSON readers refuse "\u0000" in keys). mapq_type_check()
 * refuses any other value with its path ("[2]: float NaN cannot be written
 * as JSON").
 */

/* Length of the longest prefix of s (n bytes) that is valid UTF-8. */
size_t mapq_type_utf8_prefix(const char *s, size_t n);

/*
 * Appends ["key"] for key (klen bytes) to path (plen bytes with the NUL):
 * at most 40 bytes of the key, cut on a character boundary, a byte that is
 * not UTF-8 or is a control character written as \xNN, so that the path is
 * always valid UTF-8 text. Returns the path's old length, to restore.
 */
size_t mapq_type_path_key(char *path, size_t plen, const char *key,
                          size_t klen);

/* A short name for the msgpack type of o ("int", "str", "list", ...). */
const char *mapq_type_describe(const msgpack_object *o);

#endif
