/*
 * mapq_store.c - store URIs, and the blobs of a shared directory (see
 * mapq_store.h).
 *
 * Owns the layout of a shared directory: DIR/sha256/<h2>/<hex>, written
 * only through mapq_blob_copy_file() (a temporary file, fsync, rename) and
 * made read-only, and the file:// URIs that name its blobs. Blocking file
 * system calls only; never logs.
 */
#include "mapq_store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapq_alloc.h"

#define FILE_SCHEME "file://"
#define S3_SCHEME   "s3://"

/*
 * Whether the n bytes at p are an absolute path whose components are
 * neither empty (save a trailing '/' when trailing_ok) nor "." or "..".
 */
static bool
path_ok(const char *p, size_t n, bool trailing_ok)
{
    size_t i = 0, start, len;

    if (n == 0 || p[0] != '/')
        return false;
    while (i < n) {
        start = ++i; /* past the '/' */
        while (i < n && p[i] != '/')
            i++;
        len = i - start;
        if (len == 0 && !(trailing_ok && i == n && n > 1))
            return false;
        if ((len == 1 && p[start] == '.') ||
            (len == 2 && p[start] == '.' && p[start + 1] == '.'))
            return false;
    }
    return true;
}

/* Parses "s3://BUCKET[/PREFIX[/]]" into *st. */
static enum mapq_err
parse_s3(const char *uri, struct mapq_store *st, char *err)
{
    const char *b = uri + strlen(S3_SCHEME), *slash = strchr(b, '/');
    size_t blen = slash != NULL ? (size_t)(slash - b) : strlen(b), n;

    if (blen < 3 || blen > MAPQ_STORE_BUCKET_MAX ||
        strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") < blen ||
        b[0] == '.' || b[0] == '-' || b[blen - 1] == '.' || b[blen - 1] == '-')
        return mapq_err_set(err, MAPQ_EINVAL,
                            "store '%s': a bucket is 3 to 63 of a-z, 0-9, "
                            "'.' and '-'",
                            uri);
    memcpy(st->bucket, b, blen);
    st->bucket[blen] = '\0';
    st->kind = MAPQ_STORE_S3;
    if (slash == NULL)
        return MAPQ_OK;
    n = strlen(slash);
    if (n > 1 && slash[n - 1] == '/')
        n--;
    if (n == 1)
        return MAPQ_OK; /* "s3://bucket/" */
    if (strcspn(slash, "#?%") < n || !path_ok(slash, n, false))
        return mapq_err_set(err, MAPQ_EINVAL,
                            "store '%s': a prefix has no empty, '.' or '..' "
                            "part, nor '#', '?' or '%%'",
                            uri);
    if (n - 1 > MAPQ_STORE_DIR_MAX)
        return mapq_err_set(err, MAPQ_EINVAL, "store '%.64s...': over %d bytes",
                            uri, MAPQ_STORE_DIR_MAX);
    memcpy(st->dir, slash + 1, n - 1);
    st->dir[n - 1] = '\0';
    return MAPQ_OK;
}

enum mapq_err
mapq_store_parse(const char *uri, struct mapq_store *st, char *err)
{
    const size_t plen = strlen(FILE_SCHEME);
    const char *p;
    size_t n;

    memset(st, 0, sizeof(*st));
    if (strcmp(uri, "redis") == 0) {
        st->kind = MAPQ_STORE_REDIS;
        return MAPQ_OK;
    }
    if (strncmp(uri, S3_SCHEME, strlen(S3_SCHEME)) == 0)
        return parse_s3(uri, st, err);
    if (strncmp(uri, FILE_SCHEME, plen) != 0)
        return mapq_err_set(err, MAPQ_EINVAL,
                            "store '%s': not 'redis', file:///DIR or "
                            "s3://BUCKET[/PREFIX]",
                            uri);
    p = uri + plen;
    n = strlen(p);
    if (n > 1 && p[n - 1] == '/')
        n--;
    if (strcspn(p, "#?%") < n || !path_ok(p, n, false) ||
        (n == 1 && p[0] == '/'))
        return mapq_err_set(err, MAPQ_EINVAL,
                            "store '%s': file:// takes an absolute directory "
                            "(no '.', '..', '#', '?' or '%%', not '/')",
                            uri);
    if (n > MAPQ_STORE_DIR_MAX)
        return mapq_err_set(err, MAPQ_EINVAL, "store '%.64s...': over %d bytes",
                            uri, MAPQ_STORE_DIR_MAX);
    st->kind = MAPQ_STORE_DIR;
    memcpy(st->dir, p, n);
    st->dir[n] = '\0';
    return MAPQ_OK;
}

void
mapq_store_format(const struct mapq_store *st, char *buf, size_t len)
{
    if (st->kind == MAPQ_STORE_DIR)
        snprintf(buf, len, FILE_SCHEME "%s", st->dir);
    else if (st->kind == MAPQ_STORE_S3)
        snprintf(buf, len, S3_SCHEME "%s%s%s", st->bucket,
                 st->dir[0] != '\0' ? "/" : "", st->dir);
    else
        snprintf(buf, len, "redis");
}

bool
mapq_store_uri_path(const char *uri, char *path, size_t len)
{
    const size_t plen = strlen(FILE_SCHEME);
    const char *p, *hash;
    size_t n;

    if (strncmp(uri, FILE_SCHEME, plen) != 0)
        return false;
    p = uri + plen;
    hash = strchr(p, '#');
    n = hash != NULL ? (size_t)(hash - p) : strlen(p);
    if (!path_ok(p, n, false) || n >= len)
        return false;
    memcpy(path, p, n);
    path[n] = '\0';
    return true;
}

bool
mapq_store_dir_has(const struct mapq_store *st, const char *path)
{
    size_t n = strlen(st->dir);

    return st->kind == MAPQ_STORE_DIR && strncmp(path, st->dir, n) == 0 &&
           path[n] == '/';
}

bool
mapq_store_sibling_uri(const char *uri, const char *hex, char *out, size_t len)
{
    char path[MAPQ_BLOB_URI_MAX + 1], h[MAPQ_BLOB_HEX_LEN + 1];
    /* "/sha256/<h2>/<hex>" ends a blob's path in a shared directory. */
    const size_t tail = 8 + 3 + MAPQ_BLOB_HEX_LEN;
    size_t n;
    int w;

    if (mapq_blob_uri_parse(uri, h))
        w = snprintf(out, len, "mapq:sha256/%s", hex);
    else if (strncmp(uri, S3_SCHEME, strlen(S3_SCHEME)) == 0 &&
             (n = strcspn(uri, "#")) > 8 + MAPQ_BLOB_HEX_LEN &&
             strncmp(uri + n - 8 - MAPQ_BLOB_HEX_LEN, "/sha256/", 8) == 0)
        w = snprintf(out, len, "%.*s/sha256/%s",
                     (int)(n - 8 - MAPQ_BLOB_HEX_LEN), uri, hex);
    else if (mapq_store_uri_path(uri, path, sizeof(path)) &&
             (n = strlen(path)) > tail &&
             strncmp(path + n - tail, "/sha256/", 8) == 0 &&
             path[n - tail + 10] == '/')
        w = snprintf(out, len, FILE_SCHEME "%.*s/sha256/%.2s/%s",
                     (int)(n - tail), path, hex, hex);
    else
        return false;
    return w >= 0 && (size_t)w < len;
}

bool
mapq_store_s3_has(const struct mapq_store *st, const char *uri)
{
    const char *b = uri + strlen(S3_SCHEME), *key;
    size_t blen = strlen(st->bucket), plen = strlen(st->dir), n;

    if (st->kind != MAPQ_STORE_S3 || strncmp(uri, S3_SCHEME, 5) != 0 ||
        strncmp(b, st->bucket, blen) != 0 || b[blen] != '/')
        return false;
    key = b + blen; /* "/PREFIX/..." */
    n = strcspn(key, "#");
    if (!path_ok(key, n, false) || strcspn(key, "?% ") < n)
        return false;
    return plen == 0 ||
           (strncmp(key + 1, st->dir, plen) == 0 && key[1 + plen] == '/');
}

bool
mapq_store_equal(const struct mapq_store *a, const struct mapq_store *b)
{
    return a->kind == b->kind && strcmp(a->dir, b->dir) == 0 &&
           strcmp(a->bucket, b->bucket) == 0;
}

const char *
mapq_store_uri_name(const char *uri, char *buf, size_t len)
{
    bool http = strncasecmp(uri, "http://", 7) == 0 ||
                strncasecmp(uri, "https://", 8) == 0;
    const char *hash = strncmp(uri, FILE_SCHEME, strlen(FILE_SCHEME)) == 0 ||
                               strncmp(uri, S3_SCHEME, strlen(S3_SCHEME)) == 0
                           ? strchr(uri, '#')
                           : NULL;
    const char *end = hash != NULL ? hash : uri + strlen(uri), *slash;

    /* A URL's path ends at its query or fragment. */
    if (http)
        end = uri + strcspn(uri, "?#");
    if (hash != NULL && mapq_blob_name_ok(hash + 1)) {
        snprintf(buf, len, "%s", hash + 1);
        return buf;
    }
    for (slash = end; slash > uri && slash[-1] != '/'; slash--)
        ;
    snprintf(buf, len, "%.*s", (int)(end - slash), slash);
    return buf;
}

/* Flushes dir's entries (a rename or a new directory in it) to disk. */
static enum mapq_err
sync_dir(const char *dir, char *err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    enum mapq_err rc = MAPQ_OK;

    if (fd < 0 || fsync(fd) != 0)
        rc = mapq_err_set(err, MAPQ_EIO, "cannot sync '%s': %s", dir,
                          strerror(errno));
    if (fd >= 0)
        close(fd);
    return rc;
}

/* Makes parent/name (mode 0755) unless it exists; a new one is flushed to
 * disk in parent, so that a blob renamed into it outlives a crash. */
static enum mapq_err
make_dir(const char *parent, const char *dir, char *err)
{
    if (mkdir(dir, 0755) == 0)
        return sync_dir(parent, err);
    if (errno != EEXIST)
        return mapq_err_set(err, MAPQ_EIO, "cannot create '%s': %s", dir,
                            strerror(errno));
    return MAPQ_OK;
}

enum mapq_err
mapq_store_dir_put(const struct mapq_store *st, const char *path,
                   const char *name, struct mapq_blob_ref *ref, char *err)
{
    char hex[MAPQ_BLOB_HEX_LEN + 1], top[MAPQ_STORE_DIR_MAX + 16],
        dir[MAPQ_STORE_DIR_MAX + 24], blob[MAPQ_STORE_DIR_MAX + 96];
    struct mapq_blob_ref want;
    struct stat sb;
    enum mapq_err rc;
    int64_t size;

    mapq_assert(st->kind == MAPQ_STORE_DIR);
    rc = mapq_blob_hash_file(path, hex, &size, err);
    if (rc != MAPQ_OK)
        return rc;
    if (stat(st->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return mapq_err_set(err, MAPQ_ENOENT, "store directory '%s' is missing",
                            st->dir);
    snprintf(top, sizeof(top), "%s/sha256", st->dir);
    rc = make_dir(st->dir, top, err);
    snprintf(dir, sizeof(dir), "%s/%.2s", top, hex);
    if (rc == MAPQ_OK)
        rc = make_dir(top, dir, err);
    if (rc != MAPQ_OK)
        return rc;
    snprintf(blob, sizeof(blob), "%s/%s", dir, hex);
    if (lstat(blob, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_size != size) {
        /* Absent (or not what its name says): copied in, and refused if
         * the file changed since it was hashed. */
        snprintf(want.uri, sizeof(want.uri), "%s", path);
        memcpy(want.sha256, hex, sizeof(hex));
        want.size = size;
        rc = mapq_blob_copy_file(path, blob, 0444, true, &want, hex, NULL, err);
        if (rc == MAPQ_EPROTO)
            rc = mapq_err_set(err, MAPQ_EIO, "'%s' changed while read", path);
        if (rc == MAPQ_OK)
            rc = sync_dir(dir, err);
        if (rc != MAPQ_OK)
            return rc;
    }
    if (name != NULL && mapq_blob_name_ok(name))
        snprintf(ref->uri, sizeof(ref->uri), FILE_SCHEME "%s#%s", blob, name);
    else
        snprintf(ref->uri, sizeof(ref->uri), FILE_SCHEME "%s", blob);
    memcpy(ref->sha256, hex, sizeof(hex));
    ref->size = size;
    return MAPQ_OK;
}

enum mapq_err
mapq_store_dir_get(const struct mapq_blob_ref *ref, const char *dest, char *err)
{
    char path[MAPQ_BLOB_URI_MAX + 1], hex[MAPQ_BLOB_HEX_LEN + 1];

    if (!mapq_store_uri_path(ref->uri, path, sizeof(path)))
        return mapq_err_set(err, MAPQ_EINVAL, "'%s' is not a file:// URI",
                            ref->uri);
    return mapq_blob_copy_file(path, dest, 0644, false, ref, hex, NULL, err);
}
