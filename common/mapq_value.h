/*
 * mapq_value.h - values as msgpack bytes: strict unpacking, canonical
 * re-encoding and hashing.
 *
 * Everywhere in mapq a value is its msgpack encoding held in a struct
 * mapq_buf or a (pointer, length) pair. The canonical form sorts map keys by
 * their canonical encoding and writes every float as float64, so the same
 * logical value always has the same bytes and the same hash.
 */
#ifndef MAPQ_VALUE_H
#define MAPQ_VALUE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_err.h"

struct mapq_type;

/* Default cap on one value (an input, an output, a bound value): 16 MiB. */
#define MAPQ_VALUE_MAX (16u * 1024 * 1024)

/*
 * Deepest nesting of arrays and maps in a value: msgpack-c's fixed
 * unpacking stack (MSGPACK_EMBED_STACK_SIZE), checked before it is used.
 */
#define MAPQ_VALUE_MAX_DEPTH 32

/* Length of a subtask key: SHA-256 truncated to 128 bits. */
#define MAPQ_KEY_LEN 16

/*
 * Unpacks exactly one msgpack object from data (len bytes) into u, which
 * the caller has initialised with msgpack_unpacked_init() and destroys with
 * msgpack_unpacked_destroy(). Strings in u point into data, which must stay
 * unchanged until then. Every declared length is checked before msgpack-c
 * allocates anything: a str, bin, ext or container declaring more than the
 * bytes left, nesting deeper than MAPQ_VALUE_MAX_DEPTH, trailing bytes,
 * truncated or malformed input are MAPQ_EPROTO; a str, bin or ext over
 * MAPQ_VALUE_MAX bytes, or an array or map of more than MAPQ_VALUE_MAX
 * objects (a map entry is two), that is really there is MAPQ_ETOOBIG.
 * Allocates at most a small multiple of len.
 */
enum mapq_err mapq_value_unpack(const char *data, size_t len,
                                msgpack_unpacked *u, char *err);

/*
 * Unpacks the msgpack object at data + *off (a stream of objects, len
 * bytes in all) into u and advances *off past it; the same checks as
 * mapq_value_unpack() but trailing bytes are the next objects. Truncated,
 * malformed or impossible input is MAPQ_EPROTO and *off is unchanged.
 */
enum mapq_err mapq_value_unpack_next(const char *data, size_t len, size_t *off,
                                     msgpack_unpacked *u, char *err);

/*
 * Unpacks the msgpack object at data + *off into *o, its containers
 * allocated from zone (borrowed: the caller clears or frees it, which ends
 * o), and advances *off past it: the checks and errors of
 * mapq_value_unpack_next(), without a zone made per object.
 */
enum mapq_err mapq_value_unpack_zone(const char *data, size_t len, size_t *off,
                                     msgpack_zone *zone, msgpack_object *o,
                                     char *err);

/*
 * The element count of the msgpack array at the start of data (len bytes)
 * and the length of its header; false when data does not start with one.
 * msgpack-c reads an array only whole: this lets a list be read element by
 * element (mapq_value_unpack_next()) without its whole tree.
 */
bool mapq_value_array_header(const char *data, size_t len, uint32_t *n,
                             size_t *hlen);

/* The same for a msgpack map: its entry count and header length. */
bool mapq_value_map_header(const char *data, size_t len, uint32_t *n,
                           size_t *hlen);

/*
 * Steps *off over the msgpack value at data + *off (len bytes in all)
 * without unpacking it: its lengths are checked as mapq_value_unpack()
 * checks them (MAPQ_EPROTO, MAPQ_ETOOBIG; *off unchanged then), its
 * scalars are not read.
 */
enum mapq_err mapq_value_skip(const char *data, size_t len, size_t *off,
                              char *err);

/*
 * Finds the value of string key name in the msgpack map (data, len)
 * without its tree: *v and *vlen are its bytes, borrowed from data. False
 * when data is no map, is cut short before the key, or has no such key.
 */
bool mapq_value_map_find(const char *data, size_t len, const char *name,
                         const char **v, size_t *vlen);

/*
 * Checks that (data, len) is one value as mapq_value_unpack() would, with
 * the same errors, without keeping its tree: a list, and each list in a
 * map, is unpacked element by element.
 */
enum mapq_err mapq_value_check(const char *data, size_t len, char *err);

/* Appends the canonical encoding of o (borrowed) to out. */
enum mapq_err mapq_value_canonical(const msgpack_object *o,
                                   struct mapq_buf *out);

/*
 * Appends the canonical encoding of o (borrowed), a value of type t
 * (borrowed; NULL is any), to out, as a cache key sees it: as
 * mapq_value_canonical() writes it, except that where t says file
 * (through lists, dicts, record members and T?) a map is written as the
 * array [sha256, size] of its members, without its URI, so that the same
 * content anywhere has the same bytes. A map there that is no reference
 * (no str sha256 or int size; mapq_type_check() refuses it) is written
 * whole. With t NULL or any, the same bytes as mapq_value_canonical().
 * Returns MAPQ_ETOOBIG when out's cap is met (out then holds a prefix).
 */
enum mapq_err mapq_value_canonical_typed(const msgpack_object *o,
                                         const struct mapq_type *t,
                                         struct mapq_buf *out);

/* SHA-256 of data, truncated to MAPQ_KEY_LEN bytes, into key. */
void mapq_value_hash(const void *data, size_t len,
                     unsigned char key[MAPQ_KEY_LEN]);

/* Writes 2*MAPQ_KEY_LEN hex digits and a NUL into hex. */
void mapq_value_key_hex(const unsigned char key[MAPQ_KEY_LEN],
                        char hex[2 * MAPQ_KEY_LEN + 1]);

/* Initialises pk to append to b (borrowed; must outlive pk's use). */
void mapq_value_packer_init(msgpack_packer *pk, struct mapq_buf *b);

/* Packs a C string as msgpack str. */
void mapq_value_pack_str(msgpack_packer *pk, const char *s);

/* Packs a file value {sha256, size, uri} (members in that order), or with
 * files >= 0 a dir value {files, sha256, size, uri}. Borrows its
 * arguments. */
void mapq_value_pack_fileref(msgpack_packer *pk, const char *uri,
                             const char *sha256, int64_t size, int64_t files);

/*
 * Finds the value for string key name in map o; NULL if o is not a map or
 * has no such key. The result is borrowed from o.
 */
const msgpack_object *mapq_value_map_get(const msgpack_object *o,
                                         const char *name);

/* True when o is a str equal to s. */
int mapq_value_str_eq(const msgpack_object *o, const char *s);

#endif
