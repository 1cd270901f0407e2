/*
 * mapq_blob.c - the embedded store's blobs: files hashed, uploaded to and
 * read back from Redis in pieces (see mapq_blob.h).
 *
 * Owns the write protocol of P:blob:<hex>: a writer holds the blob first
 * (mapq1_blob_hold, so that no sweep takes it), content goes to a
 * temporary key that expires on its own, and only a function that renames
 * it (and drops its TTL) makes a blob, so a reader never sees half of one.
 * Reads are checked byte for byte against the hash they were asked for.
 * Blocking I/O only; never logs.
 */
#include "mapq_blob.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_buf.h"
#include "mapq_hex.h"
#include "mapq_keys.h"

#define URI_PREFIX "mapq:sha256/"
#define TMP_TTL    "3600" /* seconds a temporary key outlives its writer */
#define RND_BYTES  8      /* of a temporary key's name: 16 hex digits */

/* A regular file open for reading, and the size fstat gave it. */
struct src {
    const char *path;
    int fd;
    int64_t size;
};

/* Called with each piece of a file as it is read (n == 0 once for an
 * empty file); returns MAPQ_OK or an error with err set. */
typedef enum mapq_err piece_fn(const unsigned char *p, size_t n, int64_t off,
                               void *arg, char *err);

/* Where the pieces of an upload go: the temporary key. */
struct sink {
    redisContext *c;
    char *tmp;
    bool written; /* the key may exist */
};

/* ---- hashing and files ------------------------------------------------ */

/* A SHA-256 context; allocation failure aborts like mapq_xmalloc. */
static EVP_MD_CTX *
md_new(void)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();

    mapq_assert(md != NULL);
    mapq_assert(EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1);
    return md;
}

/* Finishes md into hex and frees it. */
static void
md_final(EVP_MD_CTX *md, char hex[MAPQ_BLOB_HEX_LEN + 1])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0;

    mapq_assert(EVP_DigestFinal_ex(md, d, &n) == 1 && n * 2 == 64);
    mapq_hex_encode(d, n, hex);
    EVP_MD_CTX_free(md);
}

/* Reads up to n bytes, retrying short reads; the count, or -1 (errno). */
static ssize_t
read_full(int fd, unsigned char *p, size_t n)
{
    size_t got = 0;
    ssize_t r;

    while (got < n) {
        r = read(fd, p + got, n - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        if (r == 0)
            break;
        got += (size_t)r;
    }
    return (ssize_t)got;
}

/* Writes n bytes; 0, or -1 (errno). */
static int
write_full(int fd, const char *p, size_t n)
{
    ssize_t r;

    while (n > 0) {
        r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* Opens the regular file at path. O_NONBLOCK so that a FIFO in its place
 * cannot block the open; it changes nothing for a regular file. */
static enum mapq_err
src_open(struct src *s, const char *path, char *err)
{
    struct stat st;
    int e;

    s->path = path;
    s->fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (s->fd < 0) {
        e = errno;
        if (e == ENOENT)
            return mapq_err_set(err, MAPQ_ENOENT, "no such file: %s", path);
        return mapq_err_set(err, MAPQ_EIO, "cannot open '%s': %s", path,
                            strerror(e));
    }
    if (fstat(s->fd, &st) != 0) {
        e = errno;
        close(s->fd);
        return mapq_err_set(err, MAPQ_EIO, "cannot stat '%s': %s", path,
                            strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(s->fd);
        return mapq_err_set(err, MAPQ_EINVAL, "'%s' is not a regular file",
                            path);
    }
    s->size = (int64_t)st.st_size;
    return MAPQ_OK;
}

/*
 * Reads s from its start in MAPQ_BLOB_PIECE pieces through buf, hashing
 * them into hex and handing each to fn (may be NULL). Exactly s->size
 * bytes must be there: fewer or more means the file changed while read.
 */
static enum mapq_err
src_read(struct src *s, unsigned char *buf, piece_fn *fn, void *arg,
         char hex[MAPQ_BLOB_HEX_LEN + 1], char *err)
{
    EVP_MD_CTX *md = md_new();
    enum mapq_err rc = MAPQ_OK;
    int64_t off = 0;
    size_t want;
    ssize_t got;

    if (lseek(s->fd, 0, SEEK_SET) != 0)
        goto out_io;
    do {
        want = (size_t)(s->size - off < MAPQ_BLOB_PIECE ? s->size - off
                                                        : MAPQ_BLOB_PIECE);
        got = read_full(s->fd, buf, want);
        if (got < 0)
            goto out_io;
        if ((size_t)got != want)
            goto out_changed;
        EVP_DigestUpdate(md, buf, want);
        if (fn != NULL)
            rc = fn(buf, want, off, arg, err);
        off += (int64_t)want;
    } while (rc == MAPQ_OK && off < s->size);
    if (rc == MAPQ_OK) {
        got = read_full(s->fd, buf, 1);
        if (got < 0)
            goto out_io;
        if (got > 0)
            goto out_changed;
    }
    md_final(md, hex);
    return rc;

out_io:
    rc = mapq_err_set(err, MAPQ_EIO, "cannot read '%s': %s", s->path,
                      strerror(errno));
    goto out_free;
out_changed:
    rc = mapq_err_set(err, MAPQ_EIO, "'%s' changed while read", s->path);
out_free:
    EVP_MD_CTX_free(md);
    return rc;
}

enum mapq_err
mapq_blob_hash_file(const char *path, char hex[MAPQ_BLOB_HEX_LEN + 1],
                    int64_t *size, char *err)
{
    unsigned char *buf;
    struct src s = {.fd = -1};
    enum mapq_err rc;

    rc = src_open(&s, path, err);
    if (rc != MAPQ_OK)
        return rc;
    buf = mapq_xmalloc(MAPQ_BLOB_PIECE);
    rc = src_read(&s, buf, NULL, NULL, hex, err);
    if (rc == MAPQ_OK)
        *size = s.size;
    free(buf);
    close(s.fd);
    return rc;
}

/* ---- URIs ------------------------------------------------------------- */

void
mapq_blob_uri(const char *hex, char *uri, size_t len)
{
    snprintf(uri, len, URI_PREFIX "%s", hex);
}

bool
mapq_blob_name_ok(const char *name)
{
    size_t n = strlen(name);

    return n > 0 && n <= MAPQ_BLOB_NAME_MAX && strchr(name, '/') == NULL &&
           strcmp(name, ".") != 0 && strcmp(name, "..") != 0;
}

void
mapq_blob_uri_named(const char *hex, const char *name, char *uri, size_t len)
{
    if (name == NULL || !mapq_blob_name_ok(name))
        mapq_blob_uri(hex, uri, len);
    else
        snprintf(uri, len, URI_PREFIX "%s/%s", hex, name);
}

bool
mapq_blob_uri_parse(const char *uri, char hex[MAPQ_BLOB_HEX_LEN + 1])
{
    size_t plen = strlen(URI_PREFIX);
    const char *h;
    size_t i;

    if (strncmp(uri, URI_PREFIX, plen) != 0)
        return false;
    h = uri + plen;
    for (i = 0; i < MAPQ_BLOB_HEX_LEN; i++) {
        if (!((h[i] >= '0' && h[i] <= '9') || (h[i] >= 'a' && h[i] <= 'f')))
            return false;
    }
    /* Then nothing, or "/" and the file's name: one component. */
    if (h[MAPQ_BLOB_HEX_LEN] != '\0' &&
        (h[MAPQ_BLOB_HEX_LEN] != '/' ||
         !mapq_blob_name_ok(h + MAPQ_BLOB_HEX_LEN + 1)))
        return false;
    memcpy(hex, h, MAPQ_BLOB_HEX_LEN);
    hex[MAPQ_BLOB_HEX_LEN] = '\0';
    return true;
}

/* ---- Redis ------------------------------------------------------------ */

/* Sets err for a missing reply or an error reply of command cmd on key. */
static enum mapq_err
redis_fail(redisContext *c, const redisReply *r, const char *cmd,
           const char *key, char *err)
{
    if (r == NULL)
        return mapq_err_set(err, MAPQ_EREDIS, "redis %s '%s': %s", cmd, key,
                            c->errstr);
    return mapq_err_set(err, MAPQ_EREDIS, "redis %s '%s': %.*s", cmd, key,
                        (int)r->len, r->str);
}

/*
 * Runs the command argv (argv[1] its key) and stores its reply in *out
 * (caller frees with freeReplyObject()) when it has type want; else an
 * error naming the command: MAPQ_EREDIS for no reply or an error reply,
 * MAPQ_EPROTO for another type.
 */
static enum mapq_err
run(redisContext *c, int want, redisReply **out, char *err, int argc,
    const char **argv, const size_t *lens)
{
    redisReply *r = redisCommandArgv(c, argc, argv, lens);
    enum mapq_err rc;

    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        rc = redis_fail(c, r, argv[0], argv[1], err);
        goto out_free;
    }
    if (r->type != want) {
        rc = mapq_err_set(err, MAPQ_EPROTO,
                          "redis %s '%s': unexpected reply of type %d", argv[0],
                          argv[1], r->type);
        goto out_free;
    }
    *out = r;
    return MAPQ_OK;

out_free:
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

/* Runs a command of string arguments whose reply is an integer. */
static enum mapq_err
run_int(redisContext *c, long long *n, char *err, int argc, const char **argv)
{
    redisReply *r = NULL;
    enum mapq_err rc = run(c, REDIS_REPLY_INTEGER, &r, err, argc, argv, NULL);

    /* run() gives a reply with MAPQ_OK; said again for the compiler. */
    *n = 0;
    if (rc == MAPQ_OK && r != NULL) {
        *n = r->integer;
        freeReplyObject(r);
    }
    return rc;
}

/* APPENDs one piece to the temporary key; the first also sets its TTL.
 * APPEND's length tells whether the key expired meanwhile. */
static enum mapq_err
append_piece(const unsigned char *p, size_t n, int64_t off, void *arg,
             char *err)
{
    struct sink *k = arg;
    const char *append[] = {"APPEND", k->tmp, (const char *)p};
    const size_t lens[] = {6, strlen(k->tmp), n};
    const char *expire[] = {"EXPIRE", k->tmp, TMP_TTL};
    redisReply *r = NULL;
    enum mapq_err rc;
    long long set;

    k->written = true;
    rc = run(k->c, REDIS_REPLY_INTEGER, &r, err, 3, append, lens);
    if (rc != MAPQ_OK || r == NULL)
        return rc;
    if (r->integer != off + (int64_t)n)
        rc = mapq_err_set(err, MAPQ_EREDIS,
                          "redis APPEND '%s': holds %lld bytes, not %" PRId64
                          " (expired while written?)",
                          k->tmp, r->integer, off + (int64_t)n);
    freeReplyObject(r);
    if (rc == MAPQ_OK && off == 0)
        rc = run_int(k->c, &set, err, 3, expire);
    return rc;
}

/*
 * Makes the temporary key rnd the blob of hex in one step, the library's
 * mapq1_blob_keep: RENAMENX (a no-op when the blob exists, written
 * meanwhile by someone else), PERSIST (a rename keeps the TTL), or DEL of
 * the temporary key when the blob existed. A function, not MULTI, so
 * that the documented ACL (+@scripting, no @transaction) allows it.
 */
static enum mapq_err
commit(redisContext *c, const char *ns, const char *rnd, const char *hex,
       char *err)
{
    const char *argv[] = {"FCALL", "mapq1_blob_keep", "0", ns, rnd, hex};
    long long n;

    return run_int(c, &n, err, 6, argv);
}

/* ---- holding ---------------------------------------------------------- */

#define HOLD_PER_CALL 256 /* hashes per mapq1_blob_hold */

bool
mapq_blob_unhex(const char *hex, unsigned char raw[MAPQ_BLOB_RAW_LEN])
{
    int hi, lo;
    size_t i;

    if (strlen(hex) != MAPQ_BLOB_HEX_LEN)
        return false;
    for (i = 0; i < MAPQ_BLOB_RAW_LEN; i++) {
        hi = mapq_hex_digit(hex[2 * i]);
        lo = mapq_hex_digit(hex[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return false;
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
    return true;
}

void
mapq_blob_held_add(struct mapq_buf *held, const char *hex)
{
    unsigned char raw[MAPQ_BLOB_RAW_LEN];

    mapq_assert(mapq_blob_unhex(hex, raw));
    mapq_buf_append(held, (const char *)raw, sizeof(raw));
}

/* One mapq1_blob_hold of hexes[0..n) (64 hex digits and a NUL each); the
 * reply, one '0' or '1' per hash, goes into there when not NULL. */
static enum mapq_err
hold(redisContext *c, const char *ns, const char *holder, int64_t grace_ms,
     char (*hexes)[MAPQ_BLOB_HEX_LEN + 1], size_t n, char *there, char *err)
{
    const char **argv = mapq_xcalloc(n + 6, sizeof(*argv));
    char grace[24];
    redisReply *r = NULL;
    enum mapq_err rc;
    size_t i;

    snprintf(grace, sizeof(grace), "%" PRId64, grace_ms);
    argv[0] = "FCALL";
    argv[1] = "mapq1_blob_hold";
    argv[2] = "0";
    argv[3] = ns;
    argv[4] = holder;
    argv[5] = grace;
    for (i = 0; i < n; i++)
        argv[6 + i] = hexes[i];
    rc = run(c, REDIS_REPLY_STRING, &r, err, (int)(n + 6), argv, NULL);
    if (rc == MAPQ_OK && r->len != n)
        rc = mapq_err_set(err, MAPQ_EPROTO,
                          "redis FCALL 'mapq1_blob_hold': %zu answers for "
                          "%zu blobs",
                          r->len, n);
    if (rc == MAPQ_OK && there != NULL)
        memcpy(there, r->str, n);
    if (r != NULL)
        freeReplyObject(r);
    free(argv);
    return rc;
}

enum mapq_err
mapq_blob_hold(redisContext *c, const char *ns, const char *holder,
               int64_t grace_ms, const unsigned char *raw, size_t n,
               char *there, char *err)
{
    char(*hexes)[MAPQ_BLOB_HEX_LEN + 1] = NULL;
    enum mapq_err rc = MAPQ_OK;
    size_t i, j, m;

    if (n > 0)
        hexes =
            mapq_xcalloc(n < HOLD_PER_CALL ? n : HOLD_PER_CALL, sizeof(*hexes));
    for (i = 0; i < n && rc == MAPQ_OK; i += m) {
        m = n - i < HOLD_PER_CALL ? n - i : HOLD_PER_CALL;
        for (j = 0; j < m; j++)
            mapq_hex_encode(raw + (i + j) * MAPQ_BLOB_RAW_LEN,
                            MAPQ_BLOB_RAW_LEN, hexes[j]);
        rc = hold(c, ns, holder, grace_ms, hexes, m,
                  there != NULL ? there + i : NULL, err);
    }
    free(hexes);
    return rc;
}

/* ---- writing ---------------------------------------------------------- */

/* Fills rnd with RND_BYTES random bytes in hex. */
static enum mapq_err
random_hex(char rnd[2 * RND_BYTES + 1], char *err)
{
    unsigned char b[RND_BYTES];

    if (RAND_bytes(b, sizeof(b)) != 1)
        return mapq_err_set(err, MAPQ_EIO,
                            "cannot draw random bytes for a temporary key");
    mapq_hex_encode(b, sizeof(b), rnd);
    return MAPQ_OK;
}

/*
 * Reads s again into a temporary key of ns and makes it the blob of
 * hex (what the first reading hashed): content that hashes otherwise now
 * changed in between, and is not stored.
 */
static enum mapq_err
upload(redisContext *c, const char *ns, struct src *s, unsigned char *buf,
       const char *hex, char *err)
{
    char rnd[2 * RND_BYTES + 1], again[MAPQ_BLOB_HEX_LEN + 1];
    struct sink k = {c, NULL, false};
    const char *del[2];
    enum mapq_err rc;
    long long n;

    rc = random_hex(rnd, err);
    if (rc != MAPQ_OK)
        return rc;
    k.tmp = mapq_key_blob_tmp(ns, rnd);
    rc = src_read(s, buf, append_piece, &k, again, err);
    if (rc == MAPQ_OK && strcmp(again, hex) != 0)
        rc = mapq_err_set(err, MAPQ_EIO, "'%s' changed while read", s->path);
    if (rc == MAPQ_OK)
        rc = commit(c, ns, rnd, hex, err);
    if (rc != MAPQ_OK && k.written && c->err == 0) {
        /* Best effort, err keeps the first failure: the TTL removes
         * whatever this leaves. */
        del[0] = "DEL";
        del[1] = k.tmp;
        (void)run_int(c, &n, NULL, 2, del);
    }
    free(k.tmp);
    return rc;
}

enum mapq_err
mapq_blob_put_file(redisContext *c, const char *ns, const char *path,
                   int64_t max, const char *holder, int64_t grace_ms,
                   struct mapq_blob_ref *ref, char *err)
{
    char hex[1][MAPQ_BLOB_HEX_LEN + 1], there = '0';
    unsigned char *buf;
    struct src s = {.fd = -1};
    enum mapq_err rc;

    mapq_assert(max >= 0 && max <= MAPQ_BLOB_MAX_LIMIT);
    rc = src_open(&s, path, err);
    if (rc != MAPQ_OK)
        return rc;
    if (s.size > max) {
        rc = mapq_err_set(err, MAPQ_ETOOBIG,
                          "%s: %" PRId64
                          " bytes, over the store's cap of %" PRId64 " bytes",
                          path, s.size, max);
        goto out_close;
    }
    buf = mapq_xmalloc(MAPQ_BLOB_PIECE);
    /* Hashed before anything is sent: the same input is often submitted
     * again, and content stored already needs no upload. */
    rc = src_read(&s, buf, NULL, NULL, hex[0], err);
    if (rc != MAPQ_OK)
        goto out_free_buf;
    /* Held before it is looked for: from here no sweep takes it. */
    rc = hold(c, ns, holder, grace_ms, hex, 1, &there, err);
    if (rc == MAPQ_OK && there == '0')
        rc = upload(c, ns, &s, buf, hex[0], err);
    if (rc == MAPQ_OK) {
        mapq_blob_uri(hex[0], ref->uri, sizeof(ref->uri));
        memcpy(ref->sha256, hex[0], sizeof(ref->sha256));
        ref->size = s.size;
    }
out_free_buf:
    free(buf);
out_close:
    close(s.fd);
    return rc;
}

/* ---- copying ---------------------------------------------------------- */

/* The refusal of content that is not what ref says. */
static enum mapq_err
mismatch(const struct mapq_blob_ref *ref, char *err)
{
    return mapq_err_set(err, MAPQ_EPROTO,
                        "content of %s does not match its sha256/size",
                        ref->uri);
}

/* Where the pieces of a copy go: the temporary file. */
struct copy_sink {
    int fd;
    const char *tmp;
};

static enum mapq_err
write_piece(const unsigned char *p, size_t n, int64_t off, void *arg, char *err)
{
    struct copy_sink *k = arg;

    (void)off;
    if (write_full(k->fd, (const char *)p, n) != 0)
        return mapq_err_set(err, MAPQ_EIO, "cannot write '%s': %s", k->tmp,
                            strerror(errno));
    return MAPQ_OK;
}

/* Creates k->tmp (excl: it must not exist, else a stale one is replaced)
 * with mode, whatever the umask or a stale file says; on failure nothing
 * is left open. */
static enum mapq_err
tmp_open(struct copy_sink *k, bool excl, mode_t mode, char *err)
{
    int e;

    k->fd = open(k->tmp,
                 O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC |
                     (excl ? O_EXCL : O_TRUNC),
                 mode);
    if (k->fd < 0)
        return mapq_err_set(err, MAPQ_EIO, "cannot create '%s': %s", k->tmp,
                            strerror(errno));
    if (fchmod(k->fd, mode) != 0) {
        e = errno;
        close(k->fd);
        unlink(k->tmp);
        return mapq_err_set(err, MAPQ_EIO, "cannot chmod '%s': %s", k->tmp,
                            strerror(e));
    }
    return MAPQ_OK;
}

/* Ends what tmp_open began: when rc is MAPQ_OK, k->tmp is flushed to disk
 * (sync), closed and renamed to dest; else, or when one of these fails,
 * closed and removed. Returns rc, or the first failure. */
static enum mapq_err
tmp_finish(struct copy_sink *k, enum mapq_err rc, bool sync, const char *dest,
           char *err)
{
    if (rc == MAPQ_OK && sync && fsync(k->fd) != 0)
        rc = mapq_err_set(err, MAPQ_EIO, "cannot sync '%s': %s", k->tmp,
                          strerror(errno));
    if (close(k->fd) != 0 && rc == MAPQ_OK)
        rc = mapq_err_set(err, MAPQ_EIO, "cannot write '%s': %s", k->tmp,
                          strerror(errno));
    if (rc == MAPQ_OK && rename(k->tmp, dest) != 0)
        rc = mapq_err_set(err, MAPQ_EIO, "cannot rename '%s' to '%s': %s",
                          k->tmp, dest, strerror(errno));
    if (rc != MAPQ_OK)
        unlink(k->tmp);
    return rc;
}

enum mapq_err
mapq_blob_copy_file(const char *from, const char *dest, mode_t mode, bool sync,
                    const struct mapq_blob_ref *want,
                    char hex[MAPQ_BLOB_HEX_LEN + 1], int64_t *size, char *err)
{
    char rnd[2 * RND_BYTES + 1];
    struct src s = {.fd = -1};
    struct copy_sink k = {-1, NULL};
    unsigned char *buf = NULL;
    char *tmp = NULL;
    enum mapq_err rc;

    rc = src_open(&s, from, err);
    if (rc != MAPQ_OK)
        return rc;
    if (want != NULL && s.size != want->size) {
        rc = mismatch(want, err);
        goto out_close;
    }
    rc = random_hex(rnd, err);
    if (rc != MAPQ_OK)
        goto out_close;
    /* A random name: writers on other hosts may share the directory. */
    tmp = mapq_xasprintf("%s.tmp.%s", dest, rnd);
    k.tmp = tmp;
    rc = tmp_open(&k, true, mode, err);
    if (rc != MAPQ_OK)
        goto out_free;
    buf = mapq_xmalloc(MAPQ_BLOB_PIECE);
    rc = src_read(&s, buf, write_piece, &k, hex, err);
    if (rc == MAPQ_OK && want != NULL && strcmp(hex, want->sha256) != 0)
        rc = mismatch(want, err);
    rc = tmp_finish(&k, rc, sync, dest, err);
    if (rc == MAPQ_OK && size != NULL)
        *size = s.size;
out_free:
    free(buf);
    free(tmp);
out_close:
    close(s.fd);
    return rc;
}

/* ---- reading ---------------------------------------------------------- */

/* The length of the blob of hex at key; MAPQ_ENOENT when it is absent. */
static enum mapq_err
stored_len(redisContext *c, const char *key, const char *hex, long long *len,
           char *err)
{
    const char *exists[] = {"EXISTS", key};
    const char *strlen_argv[] = {"STRLEN", key};
    enum mapq_err rc;
    long long n;

    rc = run_int(c, &n, err, 2, exists);
    if (rc != MAPQ_OK)
        return rc;
    if (n == 0)
        return mapq_err_set(err, MAPQ_ENOENT, "blob %s is not in the store",
                            hex);
    return run_int(c, len, err, 2, strlen_argv);
}

/* Reads the ref->size bytes of key in GETRANGE pieces, hashing them into
 * hex and handing each to fn. */
static enum mapq_err
get_pieces(redisContext *c, const char *key, const struct mapq_blob_ref *ref,
           piece_fn *fn, void *arg, char hex[MAPQ_BLOB_HEX_LEN + 1], char *err)
{
    EVP_MD_CTX *md = md_new();
    char from[24], to[24];
    const char *argv[] = {"GETRANGE", key, from, to};
    enum mapq_err rc = MAPQ_OK;
    redisReply *r = NULL;
    int64_t off, want;

    for (off = 0; rc == MAPQ_OK && off < ref->size; off += want) {
        want = ref->size - off < MAPQ_BLOB_PIECE ? ref->size - off
                                                 : MAPQ_BLOB_PIECE;
        snprintf(from, sizeof(from), "%" PRId64, off);
        snprintf(to, sizeof(to), "%" PRId64, off + want - 1);
        rc = run(c, REDIS_REPLY_STRING, &r, err, 4, argv, NULL);
        if (rc != MAPQ_OK)
            break;
        /* Shorter than asked: the blob changed since STRLEN. */
        if ((int64_t)r->len != want)
            rc = mismatch(ref, err);
        else
            rc = fn((const unsigned char *)r->str, r->len, off, arg, err);
        if (rc == MAPQ_OK)
            EVP_DigestUpdate(md, r->str, r->len);
        freeReplyObject(r);
    }
    md_final(md, hex);
    return rc;
}

/* Writes the blob at key to dest through dest.tmp.<pid>, checked against
 * ref; the temporary file is removed on failure. */
static enum mapq_err
fetch_to(redisContext *c, const char *key, const struct mapq_blob_ref *ref,
         const char *dest, char *err)
{
    char *tmp = mapq_xasprintf("%s.tmp.%ld", dest, (long)getpid());
    char hex[MAPQ_BLOB_HEX_LEN + 1];
    struct copy_sink k = {-1, tmp};
    enum mapq_err rc;

    rc = tmp_open(&k, false, 0644, err);
    if (rc != MAPQ_OK)
        goto out_free;
    rc = get_pieces(c, key, ref, write_piece, &k, hex, err);
    if (rc == MAPQ_OK && strcmp(hex, ref->sha256) != 0)
        rc = mismatch(ref, err);
    rc = tmp_finish(&k, rc, false, dest, err);
out_free:
    free(tmp);
    return rc;
}

enum mapq_err
mapq_blob_get_file(redisContext *c, const char *ns,
                   const struct mapq_blob_ref *ref, const char *dest, char *err)
{
    char hex[MAPQ_BLOB_HEX_LEN + 1];
    enum mapq_err rc;
    long long len = 0;
    char *key;

    if (!mapq_blob_uri_parse(ref->uri, hex))
        return mapq_err_set(err, MAPQ_EINVAL,
                            "'%s' is not a blob of the embedded store",
                            ref->uri);
    if (strcmp(hex, ref->sha256) != 0)
        return mapq_err_set(err, MAPQ_EINVAL, "'%s' does not name sha256 %.64s",
                            ref->uri, ref->sha256);
    key = mapq_key_blob(ns, hex);
    rc = stored_len(c, key, hex, &len, err);
    if (rc == MAPQ_OK && len != ref->size)
        rc = mismatch(ref, err);
    if (rc == MAPQ_OK)
        rc = fetch_to(c, key, ref, dest, err);
    free(key);
    return rc;
}

/* Appends a piece to the mapq_buf at arg (its cap: MAPQ_ETOOBIG). */
static enum mapq_err
buf_piece(const unsigned char *p, size_t n, int64_t off, void *arg, char *err)
{
    (void)off;
    if (mapq_buf_append(arg, p, n) != MAPQ_OK)
        return mapq_err_set(err, MAPQ_ETOOBIG,
                            "a blob grew over the buffer's cap while read");
    return MAPQ_OK;
}

enum mapq_err
mapq_blob_get_mem(redisContext *c, const char *ns, const char *hex,
                  struct mapq_buf *out, char *err)
{
    struct mapq_blob_ref ref;
    char got[MAPQ_BLOB_HEX_LEN + 1];
    size_t start = out->len;
    char *key = mapq_key_blob(ns, hex);
    enum mapq_err rc;
    long long len = 0;

    mapq_blob_uri(hex, ref.uri, sizeof(ref.uri));
    snprintf(ref.sha256, sizeof(ref.sha256), "%s", hex);
    rc = stored_len(c, key, hex, &len, err);
    if (rc == MAPQ_OK && out->max > 0 && (size_t)len > out->max - out->len)
        rc = mapq_err_set(err, MAPQ_ETOOBIG, "%s: %lld bytes, over %zu",
                          ref.uri, len, out->max - out->len);
    ref.size = len;
    if (rc == MAPQ_OK)
        rc = get_pieces(c, key, &ref, buf_piece, out, got, err);
    if (rc == MAPQ_OK && strcmp(got, hex) != 0)
        rc = mismatch(&ref, err);
    if (rc != MAPQ_OK && out->len > start) {
        out->len = start; /* as it was, NUL-terminated again */
        out->data[start] = '\0';
    }
    free(key);
    return rc;
}
