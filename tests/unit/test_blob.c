/*
 * test_blob.c - the embedded store's blobs (common/mapq_blob.c) against a
 * real redis-server: files of 0 bytes, a few bytes and several pieces go
 * in and come back byte for byte under their SHA-256; content stored
 * twice is one blob, and a second upload sends nothing; the cap, a
 * missing file, a missing blob and tampered content are refused with
 * nothing left behind, whether read into a file or into memory; hashes
 * turn into the raw bytes holders list; and mapq: URIs parse only when
 * exact.
 *
 * fixture_redis.c starts the group's redis-server and gives each test a
 * namespace of its own; each test also gets a temporary directory. The
 * write protocol (APPEND, then EXPIRE of the temporary key, then the
 * renaming transaction) is watched through MONITOR on a second connection.
 */
#include "mapq_test.h"

#include <dirent.h>
#include <hiredis/hiredis.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture_redis.h"
#include "mapq_alloc.h"
#include "mapq_blob.h"
#include "mapq_buf.h"
#include "mapq_fs.h"
#include "mapq_hex.h"
#include "mapq_redis.h"

#define ABC_SHA256 \
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define EMPTY_SHA256 \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define BIG_LEN (5 * MAPQ_BLOB_PIECE / 2) /* 2.5 MiB: three pieces */
#define MON_MAX 32
#define HOLDER  "x:" EXEC /* the execution the blobs are held for */

struct t {
    struct fx *f;
    char dir[64];
    bool made;             /* dir was made: teardown removes it */
    unsigned char *data;   /* test content */
    char *back;            /* what a file read back holds */
    redisContext *mon;     /* a MONITOR connection, when a test opens one */
    redisReply *mon_reply; /* the line being read */
    char mon_lines[MON_MAX][160]; /* what it saw, "CMD" "arg"..., cut */
    int nmon;
    struct mapq_buf mem; /* what a blob read into memory gave */
};

static int
setup(void **state)
{
    struct t *t = mapq_xcalloc(1, sizeof(*t));

    *state = t;
    if (fx_setup((void **)&t->f) != 0)
        return -1;
    snprintf(t->dir, sizeof(t->dir), "/tmp/mapq-test-blob-XXXXXX");
    t->made = mkdtemp(t->dir) != NULL;
    return t->made ? 0 : -1;
}

static int
teardown(void **state)
{
    struct t *t = *state;

    if (t->mon_reply != NULL)
        freeReplyObject(t->mon_reply);
    if (t->mon != NULL)
        redisFree(t->mon);
    if (t->made)
        mapq_fs_rmtree(t->dir);
    free(t->data);
    free(t->back);
    mapq_buf_release(&t->mem);
    fx_teardown((void **)&t->f);
    free(t);
    return 0;
}

/* ---- helpers --------------------------------------------------------- */

/* Checks rc, showing err when it is not the one wanted. */
static void
expect_rc(enum mapq_err rc, enum mapq_err want, const char *err)
{
    if (rc != want)
        print_error("%s: %s\n", mapq_strerror(rc), err);
    assert_int_equal(rc, want);
}

/* "<dir>/<name>" in one of four rotating static buffers. */
static const char *
in_dir(struct t *t, const char *name)
{
    static char buf[4][128];
    static int n;

    n = (n + 1) % 4;
    snprintf(buf[n], sizeof(buf[n]), "%s/%s", t->dir, name);
    return buf[n];
}

/* Writes len bytes at data to the file name of t's directory; its path. */
static const char *
put_file(struct t *t, const char *name, const void *data, size_t len)
{
    const char *path = in_dir(t, name);
    FILE *fp = fopen(path, "wb");
    size_t n;

    assert_non_null(fp);
    n = fwrite(data, 1, len, fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(n, len);
    return path;
}

/* Checks that the file at path holds exactly len bytes equal to data. */
static void
assert_file_is(struct t *t, const char *path, const void *data, size_t len)
{
    FILE *fp = fopen(path, "rb");
    size_t got;

    assert_non_null(fp);
    free(t->back);
    t->back = mapq_xmalloc(len + 1);
    got = fread(t->back, 1, len + 1, fp);
    fclose(fp);
    assert_int_equal(got, len);
    assert_memory_equal(t->back, data, len);
}

/* The number of entries of t's directory (what a failure may leave). */
static int
dir_entries(struct t *t)
{
    DIR *d = opendir(t->dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* How many keys of the namespace match "<ns>:<suffix>". */
static size_t
count_keys(struct t *t, const char *suffix)
{
    redisReply *r = fx_run(t->f, "KEYS", fx_key(t->f, suffix), NULL);

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    return r->elements;
}

/* The SHA-256 of len bytes at p, computed here, in lowercase hex. */
static void
sha256_hex(const void *p, size_t len, char hex[MAPQ_BLOB_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;

    assert_int_equal(EVP_Digest(p, len, md, &n, EVP_sha256(), NULL), 1);
    assert_int_equal(n, 32);
    for (i = 0; i < n; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* Fills t->data with len bytes of a pattern that holds every byte value. */
static void
make_data(struct t *t, size_t len)
{
    size_t i;

    free(t->data);
    t->data = mapq_xmalloc(len + 1);
    for (i = 0; i < len; i++)
        t->data[i] = (unsigned char)((i * 131 + i / 251) & 0xff);
}

/* Stores data as the file name, puts it, fetches it back to "<name>.out"
 * and checks ref and the copy. */
static void
round_trip(struct t *t, const char *name, const void *data, size_t len,
           const char *want_hex)
{
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN], uri[128], out[64];
    const char *path = put_file(t, name, data, len);

    snprintf(out, sizeof(out), "%s.out", name);
    expect_rc(mapq_blob_put_file(t->f->c, t->f->ns, path, MAPQ_BLOB_MAX_DEFAULT,
                                 HOLDER, 0, &ref, err),
              MAPQ_OK, err);
    assert_string_equal(ref.sha256, want_hex);
    assert_int_equal(ref.size, len);
    snprintf(uri, sizeof(uri), "mapq:sha256/%s", want_hex);
    assert_string_equal(ref.uri, uri);
    expect_rc(mapq_blob_get_file(t->f->c, t->f->ns, &ref, in_dir(t, out), err),
              MAPQ_OK, err);
    assert_file_is(t, in_dir(t, out), data, len);
}

/* Opens t's MONITOR connection: what runs from now on is logged to it. */
static void
monitor_start(struct t *t)
{
    struct mapq_redis_url url;
    char err[MAPQ_ERR_LEN];
    redisReply *r;

    assert_int_equal(mapq_redis_url_parse(fx_url(), &url, err), MAPQ_OK);
    t->mon = mapq_redis_connect_sync(&url, 2000, err);
    assert_non_null(t->mon);
    r = redisCommand(t->mon, "MONITOR");
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
}

/*
 * Reads what MONITOR saw until an ECHO sent now as a mark, into
 * t->mon_lines (each from its command on, cut to fit), and returns the
 * command names in order, space-separated, in a static buffer.
 */
static const char *
monitor_take(struct t *t)
{
    static char names[1024];
    const char *s, *end;
    size_t used = 0;
    void *r;

    fx_run(t->f, "ECHO", "mark", NULL);
    names[0] = '\0';
    t->nmon = 0;
    for (;;) {
        if (t->mon_reply != NULL)
            freeReplyObject(t->mon_reply);
        t->mon_reply = NULL;
        assert_int_equal(redisGetReply(t->mon, &r), REDIS_OK);
        t->mon_reply = r;
        s = strstr(t->mon_reply->str, "] \"");
        assert_non_null(s);
        s += 2;
        if (strncmp(s, "\"ECHO\"", 6) == 0)
            return names;
        assert_true(t->nmon < MON_MAX);
        snprintf(t->mon_lines[t->nmon++], sizeof(t->mon_lines[0]), "%s", s);
        end = strchr(s + 1, '"');
        assert_non_null(end);
        used +=
            (size_t)snprintf(names + used, sizeof(names) - used, "%s%.*s",
                             used > 0 ? " " : "", (int)(end - s - 1), s + 1);
    }
}

/* ---- tests ----------------------------------------------------------- */

static void
test_blob_round_trips_small_and_empty_files(void **state)
{
    struct t *t = *state;
    char hex[MAPQ_BLOB_HEX_LEN + 1];

    round_trip(t, "empty", "", 0, EMPTY_SHA256);
    round_trip(t, "abc", "abc", 3, ABC_SHA256);
    sha256_hex("0123456789", 10, hex);
    round_trip(t, "ten", "0123456789", 10, hex);
    assert_int_equal(count_keys(t, "blob:*"), 3);
    assert_int_equal(count_keys(t, "blobtmp:*"), 0);
    /* The empty blob is a key of its own, holding nothing. */
    assert_int_equal(
        fx_integer(t->f, "STRLEN", fx_key(t->f, "blob:" EMPTY_SHA256), NULL),
        0);
    assert_int_equal(
        fx_integer(t->f, "EXISTS", fx_key(t->f, "blob:" EMPTY_SHA256), NULL),
        1);
    /* Sources and copies, no temporary file. */
    assert_int_equal(dir_entries(t), 6);
}

static void
test_blob_round_trips_a_file_of_several_pieces(void **state)
{
    struct t *t = *state;
    char hex[MAPQ_BLOB_HEX_LEN + 1], key[96];

    make_data(t, BIG_LEN);
    sha256_hex(t->data, BIG_LEN, hex);
    round_trip(t, "big", t->data, BIG_LEN, hex);
    snprintf(key, sizeof(key), "blob:%s", hex);
    assert_int_equal(fx_integer(t->f, "STRLEN", fx_key(t->f, key), NULL),
                     BIG_LEN);
    assert_int_equal(count_keys(t, "blob:*"), 1);
    assert_int_equal(count_keys(t, "blobtmp:*"), 0);
    assert_int_equal(dir_entries(t), 2);
}

static void
test_blob_hash_file_gives_the_sha256(void **state)
{
    struct t *t = *state;
    char hex[MAPQ_BLOB_HEX_LEN + 1], err[MAPQ_ERR_LEN];
    int64_t size = -1;

    expect_rc(
        mapq_blob_hash_file(put_file(t, "abc", "abc", 3), hex, &size, err),
        MAPQ_OK, err);
    assert_string_equal(hex, ABC_SHA256);
    assert_int_equal(size, 3);
    expect_rc(mapq_blob_hash_file(put_file(t, "e", "", 0), hex, &size, err),
              MAPQ_OK, err);
    assert_string_equal(hex, EMPTY_SHA256);
    assert_int_equal(size, 0);
    /* Hashing writes nothing. */
    assert_int_equal(count_keys(t, "*"), 0);
}

static void
test_blob_writes_through_a_temporary_key_with_a_ttl(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN], want[160], tmp[128];
    const char *path = put_file(t, "abc", "abc", 3);
    const char *q;

    monitor_start(t);
    expect_rc(mapq_blob_put_file(t->f->c, t->f->ns, path, MAPQ_BLOB_MAX_DEFAULT,
                                 HOLDER, 0, &ref, err),
              MAPQ_OK, err);
    /* The functions' own commands show too (MONITOR lists them): held
     * first (P:bh, P:bx), then looked for, written and renamed. */
    assert_string_equal(monitor_take(t), "FCALL TIME ZADD ZADD EXISTS APPEND "
                                         "EXPIRE FCALL EXISTS RENAMENX "
                                         "PERSIST");
    snprintf(want, sizeof(want), "\"ZADD\" \"%s:bh:%s\" \"0\" \"%s\"", t->f->ns,
             ABC_SHA256, HOLDER);
    assert_string_equal(t->mon_lines[2], want);
    /* APPEND "<ns>:blobtmp:<16 hex>" "abc", then its 1 h TTL. */
    snprintf(want, sizeof(want), "\"APPEND\" \"%s:blobtmp:", t->f->ns);
    assert_memory_equal(t->mon_lines[5], want, strlen(want));
    q = t->mon_lines[5] + strlen("\"APPEND\" \"");
    snprintf(tmp, sizeof(tmp), "%.*s", (int)(strchr(q, '"') - q), q);
    assert_int_equal(strlen(tmp), strlen(t->f->ns) + strlen(":blobtmp:") + 16);
    snprintf(want, sizeof(want), "\"APPEND\" \"%s\" \"abc\"", tmp);
    assert_string_equal(t->mon_lines[5], want);
    snprintf(want, sizeof(want), "\"EXPIRE\" \"%s\" \"3600\"", tmp);
    assert_string_equal(t->mon_lines[6], want);
    /* The blob keeps no TTL of its temporary key. */
    assert_int_equal(
        fx_integer(t->f, "TTL", fx_key(t->f, "blob:" ABC_SHA256), NULL), -1);
    assert_int_equal(count_keys(t, "blobtmp:*"), 0);
}

static void
test_blob_same_content_twice_is_one_blob_sent_once(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref a, b;
    char err[MAPQ_ERR_LEN];
    const char *p1 = put_file(t, "one", "abc", 3);
    const char *p2 = put_file(t, "two", "abc", 3);

    expect_rc(mapq_blob_put_file(t->f->c, t->f->ns, p1, MAPQ_BLOB_MAX_DEFAULT,
                                 HOLDER, 0, &a, err),
              MAPQ_OK, err);
    monitor_start(t);
    expect_rc(mapq_blob_put_file(t->f->c, t->f->ns, p2, MAPQ_BLOB_MAX_DEFAULT,
                                 HOLDER, 0, &b, err),
              MAPQ_OK, err);
    /* Hashed first, held, found, not sent again. */
    assert_string_equal(monitor_take(t), "FCALL TIME ZADD ZADD EXISTS");
    assert_string_equal(a.uri, b.uri);
    assert_string_equal(a.sha256, b.sha256);
    assert_int_equal(a.size, b.size);
    assert_int_equal(count_keys(t, "blob:*"), 1);
    assert_int_equal(count_keys(t, "blobtmp:*"), 0);
}

static void
test_blob_over_the_cap_writes_nothing(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN], want[256];
    const char *path = put_file(t, "eleven", "0123456789a", 11);

    expect_rc(
        mapq_blob_put_file(t->f->c, t->f->ns, path, 10, HOLDER, 0, &ref, err),
        MAPQ_ETOOBIG, err);
    snprintf(want, sizeof(want),
             "%s: 11 bytes, over the store's cap of 10 bytes", path);
    assert_string_equal(err, want);
    expect_rc(
        mapq_blob_put_file(t->f->c, t->f->ns, path, 0, HOLDER, 0, &ref, err),
        MAPQ_ETOOBIG, err);
    assert_int_equal(count_keys(t, "*"), 0);
    /* At the cap is under it. */
    expect_rc(
        mapq_blob_put_file(t->f->c, t->f->ns, path, 11, HOLDER, 0, &ref, err),
        MAPQ_OK, err);
    /* The blob, its holders (P:bh) and the sweep's queue (P:bx). */
    assert_int_equal(count_keys(t, "*"), 3);
    assert_int_equal(count_keys(t, "blob:*"), 1);
}

static void
test_blob_missing_file_is_enoent(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN], want[256], hex[MAPQ_BLOB_HEX_LEN + 1];
    const char *path = in_dir(t, "nothing.png");
    int64_t size;

    expect_rc(mapq_blob_put_file(t->f->c, t->f->ns, path, MAPQ_BLOB_MAX_DEFAULT,
                                 HOLDER, 0, &ref, err),
              MAPQ_ENOENT, err);
    snprintf(want, sizeof(want), "no such file: %s", path);
    assert_string_equal(err, want);
    expect_rc(mapq_blob_hash_file(path, hex, &size, err), MAPQ_ENOENT, err);
    assert_string_equal(err, want);
    /* A directory is not a file either. */
    expect_rc(mapq_blob_put_file(t->f->c, t->f->ns, t->dir,
                                 MAPQ_BLOB_MAX_DEFAULT, HOLDER, 0, &ref, err),
              MAPQ_EINVAL, err);
    assert_int_equal(count_keys(t, "*"), 0);
}

static void
test_blob_get_of_an_absent_blob_leaves_nothing(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref = {.size = 3};
    char err[MAPQ_ERR_LEN];

    mapq_blob_uri(ABC_SHA256, ref.uri, sizeof(ref.uri));
    memcpy(ref.sha256, ABC_SHA256, sizeof(ref.sha256));
    expect_rc(
        mapq_blob_get_file(t->f->c, t->f->ns, &ref, in_dir(t, "out"), err),
        MAPQ_ENOENT, err);
    assert_string_equal(err, "blob " ABC_SHA256 " is not in the store");
    assert_int_equal(dir_entries(t), 0);
}

static void
test_blob_get_refuses_tampered_content(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN];
    const char *key = fx_key(t->f, "blob:" ABC_SHA256);
    const char *out = in_dir(t, "out");
    const char *want =
        "content of mapq:sha256/" ABC_SHA256 " does not match its sha256/size";

    expect_rc(mapq_blob_put_file(t->f->c, t->f->ns,
                                 put_file(t, "abc", "abc", 3),
                                 MAPQ_BLOB_MAX_DEFAULT, HOLDER, 0, &ref, err),
              MAPQ_OK, err);
    /* Other bytes of the same length: caught by the hash. */
    fx_run(t->f, "SET", key, "abd", NULL);
    expect_rc(mapq_blob_get_file(t->f->c, t->f->ns, &ref, out, err),
              MAPQ_EPROTO, err);
    assert_string_equal(err, want);
    assert_int_equal(access(out, F_OK), -1);
    /* Another length: caught before any byte is read. */
    fx_run(t->f, "SET", key, "abcd", NULL);
    expect_rc(mapq_blob_get_file(t->f->c, t->f->ns, &ref, out, err),
              MAPQ_EPROTO, err);
    assert_string_equal(err, want);
    /* A ref whose size is not the content's. */
    fx_run(t->f, "SET", key, "abc", NULL);
    ref.size = 4;
    expect_rc(mapq_blob_get_file(t->f->c, t->f->ns, &ref, out, err),
              MAPQ_EPROTO, err);
    /* Only the source is left. */
    assert_int_equal(dir_entries(t), 1);
}

static void
test_blob_get_mem_appends_checked_content_within_the_cap(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN];
    const char *key = fx_key(t->f, "blob:" ABC_SHA256);

    expect_rc(mapq_blob_put_file(t->f->c, t->f->ns,
                                 put_file(t, "abc", "abc", 3),
                                 MAPQ_BLOB_MAX_DEFAULT, HOLDER, 0, &ref, err),
              MAPQ_OK, err);
    mapq_buf_init(&t->mem, 5);
    mapq_buf_appendstr(&t->mem, "x");
    expect_rc(mapq_blob_get_mem(t->f->c, t->f->ns, ABC_SHA256, &t->mem, err),
              MAPQ_OK, err);
    assert_int_equal(t->mem.len, 4);
    assert_memory_equal(t->mem.data, "xabc", 4);
    /* One byte of room left: refused before anything is read. */
    expect_rc(mapq_blob_get_mem(t->f->c, t->f->ns, ABC_SHA256, &t->mem, err),
              MAPQ_ETOOBIG, err);
    assert_int_equal(t->mem.len, 4);
    /* Tampered content, absent blob: refused, the buffer as it was. */
    mapq_buf_reset(&t->mem);
    fx_run(t->f, "SET", key, "abd", NULL);
    expect_rc(mapq_blob_get_mem(t->f->c, t->f->ns, ABC_SHA256, &t->mem, err),
              MAPQ_EPROTO, err);
    assert_string_equal(err, "content of mapq:sha256/" ABC_SHA256
                             " does not match its sha256/size");
    assert_int_equal(t->mem.len, 0);
    assert_string_equal(t->mem.data, ""); /* still NUL-terminated */
    expect_rc(mapq_blob_get_mem(t->f->c, t->f->ns, EMPTY_SHA256, &t->mem, err),
              MAPQ_ENOENT, err);
    assert_string_equal(err, "blob " EMPTY_SHA256 " is not in the store");
    assert_int_equal(t->mem.len, 0);
}

static void
test_blob_get_replaces_dest_with_mode_0644(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN];
    const char *out = put_file(t, "out", "old content", 11);
    struct stat st;

    assert_int_equal(chmod(out, 0600), 0);
    expect_rc(mapq_blob_put_file(t->f->c, t->f->ns,
                                 put_file(t, "abc", "abc", 3),
                                 MAPQ_BLOB_MAX_DEFAULT, HOLDER, 0, &ref, err),
              MAPQ_OK, err);
    expect_rc(mapq_blob_get_file(t->f->c, t->f->ns, &ref, out, err), MAPQ_OK,
              err);
    assert_file_is(t, out, "abc", 3);
    assert_int_equal(stat(out, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0644);
    assert_int_equal(dir_entries(t), 2);
}

static void
test_blob_get_refuses_refs_of_other_stores(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref = {.size = 3};
    char err[MAPQ_ERR_LEN];

    snprintf(ref.uri, sizeof(ref.uri), "file:///mnt/shared/mapq/sha256/ba/%s",
             ABC_SHA256);
    memcpy(ref.sha256, ABC_SHA256, sizeof(ref.sha256));
    expect_rc(
        mapq_blob_get_file(t->f->c, t->f->ns, &ref, in_dir(t, "out"), err),
        MAPQ_EINVAL, err);
    /* A mapq: URI of another hash than the ref's. */
    mapq_blob_uri(EMPTY_SHA256, ref.uri, sizeof(ref.uri));
    expect_rc(
        mapq_blob_get_file(t->f->c, t->f->ns, &ref, in_dir(t, "out"), err),
        MAPQ_EINVAL, err);
    assert_int_equal(dir_entries(t), 0);
}

static void
test_blob_uri_round_trips_and_refuses_the_rest(void **state)
{
    char uri[MAPQ_BLOB_URI_MAX + 1], hex[MAPQ_BLOB_HEX_LEN + 1];
    char odd[] = "mapq:sha256/" ABC_SHA256;

    (void)state;
    mapq_blob_uri(ABC_SHA256, uri, sizeof(uri));
    assert_string_equal(uri, "mapq:sha256/" ABC_SHA256);
    assert_true(mapq_blob_uri_parse(uri, hex));
    assert_string_equal(hex, ABC_SHA256);

    snprintf(hex, sizeof(hex), "untouched");
    /* 63 and 65 digits. */
    uri[strlen(uri) - 1] = '\0';
    assert_false(mapq_blob_uri_parse(uri, hex));
    assert_false(mapq_blob_uri_parse("mapq:sha256/" ABC_SHA256 "0", hex));
    /* Uppercase hex, or not hex at all. */
    odd[strlen("mapq:sha256/")] = 'B';
    assert_false(mapq_blob_uri_parse(odd, hex));
    odd[strlen("mapq:sha256/")] = 'g';
    assert_false(mapq_blob_uri_parse(odd, hex));
    assert_false(mapq_blob_uri_parse("mapq:sha256/", hex));
    /* Other schemes and algorithms. */
    assert_false(
        mapq_blob_uri_parse("s3://bucket/prefix/sha256/" ABC_SHA256, hex));
    assert_false(mapq_blob_uri_parse("mapq:sha1/" ABC_SHA256, hex));
    assert_false(mapq_blob_uri_parse("MAPQ:sha256/" ABC_SHA256, hex));
    assert_false(mapq_blob_uri_parse("", hex));
    assert_string_equal(hex, "untouched");
}

static void
test_blob_uri_keeps_a_file_name(void **state)
{
    char uri[MAPQ_BLOB_URI_MAX + 1], hex[MAPQ_BLOB_HEX_LEN + 1];
    char longname[MAPQ_BLOB_NAME_MAX + 2];

    (void)state;
    mapq_blob_uri_named(ABC_SHA256, "cat.png", uri, sizeof(uri));
    assert_string_equal(uri, "mapq:sha256/" ABC_SHA256 "/cat.png");
    assert_true(mapq_blob_uri_parse(uri, hex));
    assert_string_equal(hex, ABC_SHA256);
    /* No usable name: the bare URI. */
    mapq_blob_uri_named(ABC_SHA256, "..", uri, sizeof(uri));
    assert_string_equal(uri, "mapq:sha256/" ABC_SHA256);
    mapq_blob_uri_named(ABC_SHA256, NULL, uri, sizeof(uri));
    assert_string_equal(uri, "mapq:sha256/" ABC_SHA256);
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    mapq_blob_uri_named(ABC_SHA256, longname, uri, sizeof(uri));
    assert_string_equal(uri, "mapq:sha256/" ABC_SHA256);
    /* A name is one component, not empty. */
    assert_false(mapq_blob_uri_parse("mapq:sha256/" ABC_SHA256 "/", hex));
    assert_false(mapq_blob_uri_parse("mapq:sha256/" ABC_SHA256 "/a/b", hex));
    assert_false(mapq_blob_uri_parse("mapq:sha256/" ABC_SHA256 "/..", hex));
}

static void
test_blob_unhex_gives_the_raw_hash_a_holder_lists(void **state)
{
    static const unsigned char abc[4] = {0xba, 0x78, 0x16, 0xbf};
    struct t *t = *state;
    struct mapq_buf *held = &t->mem;
    unsigned char raw[MAPQ_BLOB_RAW_LEN];
    char hex[MAPQ_BLOB_HEX_LEN + 1], back[MAPQ_BLOB_HEX_LEN + 1];

    assert_true(mapq_blob_unhex(ABC_SHA256, raw));
    assert_memory_equal(raw, abc, sizeof(abc));
    assert_int_equal(raw[31], 0xad);
    mapq_hex_encode(raw, sizeof(raw), back);
    assert_string_equal(back, ABC_SHA256);
    /* Upper case is hex too; anything else, or another length, is not. */
    snprintf(hex, sizeof(hex), "%s", ABC_SHA256);
    hex[0] = 'B';
    assert_true(mapq_blob_unhex(hex, raw));
    assert_int_equal(raw[0], 0xba);
    hex[63] = 'g';
    assert_false(mapq_blob_unhex(hex, raw));
    hex[63] = '\0';
    assert_false(mapq_blob_unhex(hex, raw));
    assert_false(mapq_blob_unhex("", raw));
    /* held_add: the raw bytes, one hash after another. */
    mapq_blob_held_add(held, ABC_SHA256);
    mapq_blob_held_add(held, EMPTY_SHA256);
    assert_int_equal(held->len, 2 * MAPQ_BLOB_RAW_LEN);
    assert_memory_equal(held->data, abc, sizeof(abc));
    assert_int_equal((unsigned char)held->data[MAPQ_BLOB_RAW_LEN], 0xe3);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_blob_round_trips_small_and_empty_files),
        T(test_blob_round_trips_a_file_of_several_pieces),
        T(test_blob_hash_file_gives_the_sha256),
        T(test_blob_writes_through_a_temporary_key_with_a_ttl),
        T(test_blob_same_content_twice_is_one_blob_sent_once),
        T(test_blob_over_the_cap_writes_nothing),
        T(test_blob_missing_file_is_enoent),
        T(test_blob_get_of_an_absent_blob_leaves_nothing),
        T(test_blob_get_refuses_tampered_content),
        T(test_blob_get_mem_appends_checked_content_within_the_cap),
        T(test_blob_get_replaces_dest_with_mode_0644),
        T(test_blob_get_refuses_refs_of_other_stores),
        cmocka_unit_test(test_blob_uri_round_trips_and_refuses_the_rest),
        cmocka_unit_test(test_blob_uri_keeps_a_file_name),
        T(test_blob_unhex_gives_the_raw_hash_a_holder_lists),
    };

    return cmocka_run_group_tests_name("blob", tests, fx_group_setup,
                                       fx_group_teardown);
}
