/*
 * mapq_store.h - where the content of file values lives (docs/
 * ARCHITECTURE.md, "Files and directories", "Stores"): the store a
 * deployment names, and the blobs of the shared-directory store.
 *
 * A store is named by "redis", the embedded store (its blobs are keys of
 * Redis, mapq_blob.h), or by "file:///DIR", a directory that every host
 * mounts at the same path (NFS and the like). A blob of a shared directory
 * is the file DIR/sha256/<h2>/<hex> (h2: the hash's first two digits),
 * mode 0444, written as a temporary file beside it, flushed to disk and
 * renamed, so it is whole or absent and storing one that exists is a
 * no-op. Its URI is "file://DIR/sha256/<h2>/<hex>#<name>", the fragment
 * keeping the name of the file it came from; a fetched copy takes that
 * name.
 *
 * DIR itself must exist: a share that is not mounted is an error, never
 * a directory made on the local disk. Every call here blocks on the file
 * system; it is for a transfer thread or a command before its event loop.
 * Nothing here logs.
 */
#ifndef MAPQ_STORE_H
#define MAPQ_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "mapq_blob.h"
#include "mapq_err.h"

#define MAPQ_STORE_DIR_MAX 1024 /* bytes of a shared directory's path */
#define MAPQ_STORE_URI_MAX (MAPQ_STORE_DIR_MAX + 70) /* s3://BUCKET/PREFIX */

enum mapq_store_kind {
    MAPQ_STORE_REDIS, /* the embedded store, the default */
    MAPQ_STORE_DIR,   /* a shared directory */
    MAPQ_STORE_S3,    /* an S3-compatible bucket (mapq_s3.h) */
};

#define MAPQ_STORE_BUCKET_MAX 63

/* A store, as parsed from its URI: a value, copied freely. */
struct mapq_store {
    enum mapq_store_kind kind;
    char dir[MAPQ_STORE_DIR_MAX + 1]; /* MAPQ_STORE_DIR: absolute, without a
                                         trailing '/'; MAPQ_STORE_S3: the
                                         key prefix, without a leading or
                                         trailing '/' (may be ""); else "" */
    char bucket[MAPQ_STORE_BUCKET_MAX + 1]; /* MAPQ_STORE_S3; else "" */
};

/*
 * Parses a store's URI into *st: "redis"; "file://" and an absolute path
 * (a trailing '/' dropped) without empty, "." or ".." components and
 * without '#', '?' or '%'; or "s3://BUCKET[/PREFIX]", BUCKET 3 to 63 of
 * [a-z0-9.-] and PREFIX as such a path without its leading '/'. Returns MAPQ_OK
 * or MAPQ_EINVAL, err saying what is wrong with it (*st is then cleared: the
 * embedded store, which the caller must not take for an answer). Borrows uri.
 */
enum mapq_err mapq_store_parse(const char *uri, struct mapq_store *st,
                               char *err);

/* Writes st's URI, as mapq_store_parse() reads it, into buf (len bytes,
 * truncated like snprintf). */
void mapq_store_format(const struct mapq_store *st, char *buf, size_t len);

/*
 * Whether uri is a file:// URI of an absolute path without "." or ".."
 * components (what precedes '#', if any); if so, copies that path into
 * path (len bytes; false when it does not fit). Borrows uri.
 */
bool mapq_store_uri_path(const char *uri, char *path, size_t len);

/* Whether path (as mapq_store_uri_path() gives it) lies inside st, a
 * shared directory. False for the embedded store. */
bool mapq_store_dir_has(const struct mapq_store *st, const char *path);

/* Whether uri is an s3:// URI of a blob below st, an S3 store: its bucket
 * and under its prefix, without "." or ".." components, '?', '%' or
 * spaces. Borrows both. */
bool mapq_store_s3_has(const struct mapq_store *st, const char *uri);

/* Whether two stores are the same one. */
bool mapq_store_equal(const struct mapq_store *a, const struct mapq_store *b);

/*
 * Writes into out (len bytes) the URI of the blob of hex (64 lowercase hex
 * digits) in the store that holds the blob uri names: "mapq:sha256/<hex>",
 * "file://DIR/sha256/<h2>/<hex>" for uri "file://DIR/sha256/...", or
 * "s3://BUCKET/PREFIX/sha256/<hex>" for uri "s3://BUCKET/PREFIX/sha256/...".
 * False when uri is neither, or out is too small. Borrows uri and hex.
 */
bool mapq_store_sibling_uri(const char *uri, const char *hex, char *out,
                            size_t len);

/*
 * The name a fetched copy of uri's content takes, written into buf (len
 * bytes): a file:// or s3:// URI's fragment when it is a usable name, else
 * the last component of its path; a mapq: URI's last component; an http(s)
 * URL's last path component, before its query. Returns buf.
 * Borrows uri.
 */
const char *mapq_store_uri_name(const char *uri, char *buf, size_t len);

/*
 * Stores the regular file at path in st, a shared directory, and fills
 * ref; its URI keeps name when that is usable (see mapq_blob_uri_named()).
 * The file is hashed first and nothing is written when the blob exists
 * with that size; otherwise it is copied in, hashed again as it goes, and
 * refused when the two differ.
 *
 * Returns MAPQ_OK; MAPQ_ENOENT "no such file: <path>" or "store directory
 * '<dir>' is missing"; MAPQ_EINVAL when path is not a regular file;
 * MAPQ_EIO naming the path or the store's file. On failure ref is left
 * unspecified and nothing partial stays in the store. Borrows everything.
 */
enum mapq_err mapq_store_dir_put(const struct mapq_store *st, const char *path,
                                 const char *name, struct mapq_blob_ref *ref,
                                 char *err);

/*
 * Copies the content ref names (ref->uri a file:// URI, see
 * mapq_store_uri_path()) to dest (mode 0644, replacing it), checked
 * against ref's sha256 and size. Which directories may be read is the
 * caller's to decide. Returns what mapq_blob_copy_file() returns, or
 * MAPQ_EINVAL when ref->uri is not such a URI. Borrows everything.
 */
enum mapq_err mapq_store_dir_get(const struct mapq_blob_ref *ref,
                                 const char *dest, char *err);

#endif
