/*
 * mapq_blob.h - content-addressed blobs of the embedded store: files kept
 * in Redis under the SHA-256 of their content (docs/ARCHITECTURE.md,
 * "Files and directories").
 *
 * A blob is P:blob:<hex> (a string), named by the URI "mapq:sha256/<hex>".
 * It is built under a temporary key, P:blobtmp:<random> (1 h TTL), in
 * MAPQ_BLOB_PIECE APPENDs and renamed once whole, so a blob is whole or
 * absent, and writing one that exists is a no-op. It is read back in
 * GETRANGE pieces, every byte hashed and checked.
 *
 * Every call here blocks: it is for a transfer thread or for a command
 * before its event loop starts, never for a loop's thread. The
 * redisContext is the caller's (mapq_redis_connect_sync()), borrowed; a
 * call that fails on a lost connection leaves it unusable, as hiredis
 * does. Nothing here logs.
 */
#ifndef MAPQ_BLOB_H
#define MAPQ_BLOB_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "mapq_err.h"

struct mapq_buf;

#define MAPQ_BLOB_HEX_LEN     64
#define MAPQ_BLOB_RAW_LEN     32        /* bytes of a SHA-256 */
#define MAPQ_BLOB_GRACE_MS    3600000LL /* a hold before its holder exists */
#define MAPQ_BLOB_URI_MAX     4096
#define MAPQ_BLOB_NAME_MAX    255           /* the name a blob's URI may keep */
#define MAPQ_BLOB_PIECE       (1024 * 1024) /* bytes per APPEND / GETRANGE */
#define MAPQ_BLOB_MAX_DEFAULT (64LL << 20)  /* embedded store cap */
#define MAPQ_BLOB_MAX_LIMIT   (512LL << 20) /* Redis's bulk string limit */

/* What a file value holds: where its content is, its hash and size. */
struct mapq_blob_ref {
    char uri[MAPQ_BLOB_URI_MAX + 1];
    char sha256[MAPQ_BLOB_HEX_LEN + 1]; /* lowercase hex */
    int64_t size;
};

/*
 * Hashes the regular file at path (SHA-256, read in pieces): fills hex
 * (lowercase, NUL-terminated) and *size. Returns MAPQ_OK; MAPQ_ENOENT
 * "no such file: <path>"; MAPQ_EINVAL when path is not a regular file;
 * MAPQ_EIO naming path and the reason, also when the file changed size
 * while read. Borrows path.
 */
enum mapq_err mapq_blob_hash_file(const char *path,
                                  char hex[MAPQ_BLOB_HEX_LEN + 1],
                                  int64_t *size, char *err);

/* Writes "mapq:sha256/<hex>" into uri (len bytes, truncated like
 * snprintf). Borrows hex. */
void mapq_blob_uri(const char *hex, char *uri, size_t len);

/* Whether name can be the name a blob's URI keeps: 1 to
 * MAPQ_BLOB_NAME_MAX bytes, no '/', not "." or "..". Borrows name. */
bool mapq_blob_name_ok(const char *name);

/* Writes "mapq:sha256/<hex>/<name>", the URI of a blob that keeps the
 * name of the file it came from, so that a task gets its input under that
 * name; without a usable name (NULL, empty, ".", "..", a '/' or over
 * MAPQ_BLOB_NAME_MAX bytes), what mapq_blob_uri() writes. Borrows both. */
void mapq_blob_uri_named(const char *hex, const char *name, char *uri,
                         size_t len);

/*
 * Whether uri is "mapq:sha256/" followed by exactly 64 lowercase hex
 * digits, and optionally "/" and a name; if so, copies the digits into
 * hex. False for anything else (hex is then unchanged). Borrows uri.
 */
bool mapq_blob_uri_parse(const char *uri, char hex[MAPQ_BLOB_HEX_LEN + 1]);

/* Whether hex is 64 hex digits; if so, writes the 32 bytes they spell
 * into raw. */
bool mapq_blob_unhex(const char *hex, unsigned char raw[MAPQ_BLOB_RAW_LEN]);

/* Appends the MAPQ_BLOB_RAW_LEN bytes that hex (64 hex digits, asserted)
 * spells to held: the list of blobs a holder holds. Borrows both. */
void mapq_blob_held_add(struct mapq_buf *held, const char *hex);

/*
 * Makes holder hold the n blobs whose raw SHA-256 (MAPQ_BLOB_RAW_LEN bytes
 * each) follow one another at raw (mapq1_blob_hold, docs/ARCHITECTURE.md,
 * "Garbage collection"): a blob is kept while one of its holders does. A
 * holder is the name of a key without its namespace, "x:<exec>" (an
 * execution) or "c:<task>:<hex key>" (a cache entry), and holds while that
 * key exists; with grace_ms > 0 also for that long from now whether it
 * exists or not (an execution created after its inputs are stored).
 * there, when not NULL (n bytes, no NUL), gets '1' for each blob that is
 * in the store and '0' for one that is not. Returns MAPQ_OK, or
 * MAPQ_EREDIS / MAPQ_EPROTO naming the call. Borrows everything.
 */
enum mapq_err mapq_blob_hold(redisContext *c, const char *ns,
                             const char *holder, int64_t grace_ms,
                             const unsigned char *raw, size_t n, char *there,
                             char *err);

/*
 * Stores the regular file at path as a blob of namespace ns and fills ref
 * (uri from mapq_blob_uri()). The file is hashed first, and the blob held
 * for holder (and grace_ms) as mapq_blob_hold() holds it, so that no sweep
 * deletes it from then on. Nothing is uploaded when the blob exists;
 * otherwise the file is read again and APPENDed to a temporary key, which
 * a function renames to P:blob:<hex> (or drops, if another writer got
 * there first) once the second reading hashed the same. max
 * (0..MAPQ_BLOB_MAX_LIMIT) is the store's cap: a larger file is refused
 * before anything is written.
 *
 * Returns MAPQ_OK; MAPQ_ETOOBIG "<path>: N bytes, over the store's cap of
 * M bytes"; MAPQ_ENOENT "no such file: <path>"; MAPQ_EINVAL when path is
 * not a regular file; MAPQ_EIO naming path (also "changed while read");
 * MAPQ_EREDIS or MAPQ_EPROTO naming the Redis command. On failure the
 * temporary key is deleted when the connection still works (else its TTL
 * removes it) and ref is left unspecified. Borrows c, ns, path and
 * holder.
 */
enum mapq_err mapq_blob_put_file(redisContext *c, const char *ns,
                                 const char *path, int64_t max,
                                 const char *holder, int64_t grace_ms,
                                 struct mapq_blob_ref *ref, char *err);

/*
 * Writes the blob ref names (ref->uri a mapq: URI, ref->sha256 its hex)
 * from namespace ns to dest: into dest.tmp.<pid> (mode 0644), hashing as
 * it goes, checked against ref's sha256 and size, then renamed to dest,
 * which it replaces. No fsync: a crash loses the file, never half of it.
 *
 * Returns MAPQ_OK; MAPQ_EINVAL when ref->uri is not a mapq: URI or names
 * another hash than ref->sha256; MAPQ_ENOENT "blob <hex> is not in the
 * store"; MAPQ_EPROTO "content of <uri> does not match its sha256/size";
 * MAPQ_EIO naming the file; MAPQ_EREDIS or MAPQ_EPROTO naming the Redis
 * command. On failure dest is untouched and the temporary file removed.
 * Borrows c, ns, ref and dest.
 */
enum mapq_err mapq_blob_get_file(redisContext *c, const char *ns,
                                 const struct mapq_blob_ref *ref,
                                 const char *dest, char *err);

/*
 * Appends the content of the blob hex (64 lowercase hex digits) of
 * namespace ns to out, read in pieces and checked against its hash: for
 * what is read whole, such as a manifest. Returns MAPQ_OK; MAPQ_ENOENT
 * "blob <hex> is not in the store"; MAPQ_ETOOBIG when it is larger than
 * out's cap leaves room for; MAPQ_EPROTO when its content does not hash
 * to hex; MAPQ_EREDIS or MAPQ_EPROTO naming the Redis command. On failure
 * out is as it was. Borrows c, ns and hex; out stays the caller's.
 */
enum mapq_err mapq_blob_get_mem(redisContext *c, const char *ns,
                                const char *hex, struct mapq_buf *out,
                                char *err);

/*
 * Copies the regular file at from to dest, hashing it as it goes: into a
 * new file beside dest (dest.tmp.<random>, so writers on several hosts
 * may share a directory) of the given mode, flushed to disk first when
 * sync, then renamed to dest, which it replaces. Fills hex (lowercase)
 * and *size (NULL: not wanted) with what was copied. want, when not NULL,
 * is what the content must be (sha256 and size; its uri names it in
 * messages).
 *
 * Returns MAPQ_OK; what mapq_blob_hash_file() returns for from; MAPQ_EPROTO
 * "content of <want->uri> does not match its sha256/size"; MAPQ_EIO naming
 * the temporary file (also when from changed while read). On failure dest
 * is untouched and the temporary file removed. Borrows every argument.
 */
enum mapq_err mapq_blob_copy_file(const char *from, const char *dest,
                                  mode_t mode, bool sync,
                                  const struct mapq_blob_ref *want,
                                  char hex[MAPQ_BLOB_HEX_LEN + 1],
                                  int64_t *size, char *err);

#endif
