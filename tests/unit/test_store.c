/*
 * test_store.c - store URIs and the blobs of a shared directory
 * (common/mapq_store.c): "redis" and file:///DIR parse, print back and
 * refuse anything else; file:// URIs give their path and their name; a
 * file goes into a temporary shared directory as DIR/sha256/<h2>/<hex>,
 * read-only, once however often it is stored, and comes back byte for
 * byte; a missing file, a missing store, a directory and content that is
 * not what its ref says are refused with nothing left behind.
 *
 * Each test that touches the file system gets a temporary directory of
 * its own: the store is its "store", sources sit beside it, fetched
 * copies go to its "out".
 */
#include "mapq_test.h"

#include <dirent.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_blob.h"
#include "mapq_err.h"
#include "mapq_fs.h"
#include "mapq_store.h"

#define ABC_SHA256 \
    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define EMPTY_SHA256 \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define BIG_LEN (3 * MAPQ_BLOB_PIECE / 2) /* 1.5 MiB: two pieces */

struct t {
    char dir[64];
    bool made;            /* dir was made: teardown removes it */
    struct mapq_store st; /* the shared directory "<dir>/store" */
    unsigned char *data;  /* test content */
    char *back;           /* what a file read back holds */
};

static int
setup(void **state)
{
    struct t *t = mapq_xcalloc(1, sizeof(*t));
    char uri[128], err[MAPQ_ERR_LEN], sub[96];

    *state = t;
    snprintf(t->dir, sizeof(t->dir), "/tmp/mapq-test-store-XXXXXX");
    t->made = mkdtemp(t->dir) != NULL;
    if (!t->made)
        return -1;
    snprintf(sub, sizeof(sub), "%s/store", t->dir);
    if (mkdir(sub, 0755) != 0)
        return -1;
    snprintf(sub, sizeof(sub), "%s/out", t->dir);
    if (mkdir(sub, 0755) != 0)
        return -1;
    snprintf(uri, sizeof(uri), "file://%s/store", t->dir);
    return mapq_store_parse(uri, &t->st, err) == MAPQ_OK ? 0 : -1;
}

static int
teardown(void **state)
{
    struct t *t = *state;

    if (t->made)
        mapq_fs_rmtree(t->dir);
    free(t->data);
    free(t->back);
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

/* Checks that s holds sub. */
static void
assert_contains(const char *s, const char *sub)
{
    if (strstr(s, sub) == NULL)
        print_error("'%s' does not hold '%s'\n", s, sub);
    assert_non_null(strstr(s, sub));
}

/* "<dir>/<name>" in one of four rotating static buffers. */
static const char *
in_dir(struct t *t, const char *name)
{
    static char buf[4][256];
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

/* Checks the permission bits of the file at path. */
static void
assert_mode_is(const char *path, mode_t mode)
{
    struct stat sb;

    assert_int_equal(stat(path, &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, mode);
}

/* The number of entries of the directory at path; the first one's name
 * goes into first (when not NULL and there is one). */
static int
entries(const char *path, char *first, size_t len)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n++ == 0 && first != NULL)
            snprintf(first, len, "%s", e->d_name);
    }
    closedir(d);
    return n;
}

/* The number of entries of the directory sub of t's directory. */
static int
count_in(struct t *t, const char *sub)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", t->dir, sub);
    return entries(path, NULL, 0);
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

/* Where t's store keeps the blob of hex, in a static buffer. */
static const char *
blob_path(struct t *t, const char *hex)
{
    static char buf[256];

    snprintf(buf, sizeof(buf), "%s/store/sha256/%.2s/%s", t->dir, hex, hex);
    return buf;
}

/* The directory of t's store that holds the blob of hex, in a static
 * buffer. */
static const char *
h2_dir(struct t *t, const char *hex)
{
    static char buf[256];

    snprintf(buf, sizeof(buf), "%s/store/sha256/%.2s", t->dir, hex);
    return buf;
}

/* Parses uri, which must be refused, and checks that err names it (its
 * first 64 bytes, all a long one's message keeps). */
static void
parse_fails(const char *uri)
{
    struct mapq_store st;
    char err[MAPQ_ERR_LEN] = "", want[96];

    expect_rc(mapq_store_parse(uri, &st, err), MAPQ_EINVAL, err);
    snprintf(want, sizeof(want), "store '%.64s", uri);
    assert_contains(err, want);
}

/* A store URI "file://" and a path of n bytes: "/d/d/.../d" then 'x's. */
static char *
long_uri(size_t n)
{
    char *uri = mapq_xmalloc(strlen("file://") + n + 1);
    size_t i;

    memcpy(uri, "file://", 7);
    for (i = 0; i < n; i++)
        uri[7 + i] = i % 2 == 0 && i < 200 ? '/' : (i < 200 ? 'd' : 'x');
    uri[7 + n] = '\0';
    return uri;
}

/* ---- store URIs ------------------------------------------------------ */

static void
test_store_parse_redis_and_directories(void **state)
{
    struct mapq_store st;
    char err[MAPQ_ERR_LEN];

    (void)state;
    memset(&st, 0x55, sizeof(st));
    expect_rc(mapq_store_parse("redis", &st, err), MAPQ_OK, err);
    assert_int_equal(st.kind, MAPQ_STORE_REDIS);
    assert_string_equal(st.dir, "");

    expect_rc(mapq_store_parse("file:///srv/mapq", &st, err), MAPQ_OK, err);
    assert_int_equal(st.kind, MAPQ_STORE_DIR);
    assert_string_equal(st.dir, "/srv/mapq");

    /* A trailing '/' is dropped. */
    memset(&st, 0x55, sizeof(st));
    expect_rc(mapq_store_parse("file:///srv/mapq/", &st, err), MAPQ_OK, err);
    assert_int_equal(st.kind, MAPQ_STORE_DIR);
    assert_string_equal(st.dir, "/srv/mapq");

    expect_rc(mapq_store_parse("file:///m", &st, err), MAPQ_OK, err);
    assert_int_equal(st.kind, MAPQ_STORE_DIR);
    assert_string_equal(st.dir, "/m");
}

/* s3://BUCKET[/PREFIX]: parsed, printed back, and what lies below it. */
static void
test_store_s3(void **state)
{
    static const char *const bad[] = {"s3://ab",          "s3://Bucket",
                                      "s3://-bucket",     "s3://bucket-",
                                      "s3://b_ucket",     "s3://bucket//p",
                                      "s3://bucket/../p", "s3://bucket/p#x",
                                      "s3://bucket/p?x",  "s3://bucket/./p"};
    struct mapq_store st, other;
    char err[MAPQ_ERR_LEN], buf[128];
    size_t i;

    (void)state;
    expect_rc(mapq_store_parse("s3://my.bucket-1/runs/x/", &st, err), MAPQ_OK,
              err);
    assert_int_equal(st.kind, MAPQ_STORE_S3);
    assert_string_equal(st.bucket, "my.bucket-1");
    assert_string_equal(st.dir, "runs/x");
    mapq_store_format(&st, buf, sizeof(buf));
    assert_string_equal(buf, "s3://my.bucket-1/runs/x");
    assert_true(mapq_store_s3_has(&st, "s3://my.bucket-1/runs/x/sha256/"
                                       "ab#a.png"));
    assert_false(mapq_store_s3_has(&st, "s3://my.bucket-1/runs/xy/sha256/ab"));
    assert_false(mapq_store_s3_has(&st, "s3://my.bucket-1/runs/x/../y/ab"));
    assert_false(mapq_store_s3_has(&st, "s3://other/runs/x/sha256/ab"));
    assert_false(mapq_store_s3_has(&st, "file:///my.bucket-1/runs/x/ab"));

    expect_rc(mapq_store_parse("s3://bkt", &other, err), MAPQ_OK, err);
    assert_string_equal(other.dir, "");
    mapq_store_format(&other, buf, sizeof(buf));
    assert_string_equal(buf, "s3://bkt");
    assert_true(mapq_store_s3_has(&other, "s3://bkt/sha256/ab"));
    assert_false(mapq_store_equal(&st, &other));
    assert_true(mapq_store_equal(&st, &st));
    assert_string_equal(
        mapq_store_uri_name("s3://bkt/sha256/ab#cat.png", buf, sizeof(buf)),
        "cat.png");

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (mapq_store_parse(bad[i], &st, err) != MAPQ_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
}

static void
test_store_parse_refuses_the_rest(void **state)
{
    (void)state;
    parse_fails("s3://b/p");
    parse_fails("file://relative");
    parse_fails("file:///");
    parse_fails("file:///a/../b");
    parse_fails("file:///a/./b");
    parse_fails("file:///a//b");
    parse_fails("file:///a#b");
    parse_fails("file:///a?b");
    parse_fails("file:///a%20b");
    parse_fails("");
    /* And their neighbours. */
    parse_fails("REDIS");
    parse_fails("redis://localhost:6379");
    parse_fails("file:");
    parse_fails("file://");
    parse_fails("file:////");
    parse_fails("file:///srv/mapq//");
    parse_fails("file:///srv/..");
    parse_fails("file:///srv/.");
    parse_fails("file://host/srv/mapq");
}

static void
test_store_parse_caps_the_directory_length(void **state)
{
    struct mapq_store st;
    char err[MAPQ_ERR_LEN];
    char *uri;

    (void)state;
    /* MAPQ_STORE_DIR_MAX bytes: taken, also with a trailing '/'. */
    uri = long_uri(MAPQ_STORE_DIR_MAX);
    expect_rc(mapq_store_parse(uri, &st, err), MAPQ_OK, err);
    assert_int_equal(st.kind, MAPQ_STORE_DIR);
    assert_int_equal(strlen(st.dir), MAPQ_STORE_DIR_MAX);
    assert_string_equal(st.dir, uri + 7);
    free(uri);
    uri = long_uri(MAPQ_STORE_DIR_MAX + 1);
    uri[7 + MAPQ_STORE_DIR_MAX] = '/';
    expect_rc(mapq_store_parse(uri, &st, err), MAPQ_OK, err);
    assert_int_equal(strlen(st.dir), MAPQ_STORE_DIR_MAX);
    free(uri);
    /* One byte more: refused. */
    uri = long_uri(MAPQ_STORE_DIR_MAX + 1);
    parse_fails(uri);
    free(uri);
    uri = long_uri(4 * MAPQ_STORE_DIR_MAX);
    parse_fails(uri);
    free(uri);
}

static void
test_store_format_round_trips(void **state)
{
    struct mapq_store st, back;
    char err[MAPQ_ERR_LEN], buf[MAPQ_STORE_URI_MAX + 1];
    char *uri;

    (void)state;
    expect_rc(mapq_store_parse("redis", &st, err), MAPQ_OK, err);
    mapq_store_format(&st, buf, sizeof(buf));
    assert_string_equal(buf, "redis");
    expect_rc(mapq_store_parse(buf, &back, err), MAPQ_OK, err);
    assert_int_equal(back.kind, MAPQ_STORE_REDIS);

    expect_rc(mapq_store_parse("file:///srv/mapq/", &st, err), MAPQ_OK, err);
    mapq_store_format(&st, buf, sizeof(buf));
    assert_string_equal(buf, "file:///srv/mapq");
    expect_rc(mapq_store_parse(buf, &back, err), MAPQ_OK, err);
    assert_int_equal(back.kind, MAPQ_STORE_DIR);
    assert_string_equal(back.dir, "/srv/mapq");

    /* The longest directory fits MAPQ_STORE_URI_MAX. */
    uri = long_uri(MAPQ_STORE_DIR_MAX);
    expect_rc(mapq_store_parse(uri, &st, err), MAPQ_OK, err);
    mapq_store_format(&st, buf, sizeof(buf));
    assert_string_equal(buf, uri);
    expect_rc(mapq_store_parse(buf, &back, err), MAPQ_OK, err);
    assert_string_equal(back.dir, st.dir);
    free(uri);

    /* Truncated like snprintf. */
    expect_rc(mapq_store_parse("file:///srv/mapq", &st, err), MAPQ_OK, err);
    mapq_store_format(&st, buf, 9);
    assert_string_equal(buf, "file:///");
}

static void
test_store_uri_path(void **state)
{
    char path[64];

    (void)state;
    assert_true(mapq_store_uri_path("file:///x/y#name", path, sizeof(path)));
    assert_string_equal(path, "/x/y");
    assert_true(mapq_store_uri_path("file:///x/y", path, sizeof(path)));
    assert_string_equal(path, "/x/y");

    snprintf(path, sizeof(path), "untouched");
    assert_false(
        mapq_store_uri_path("mapq:sha256/" ABC_SHA256, path, sizeof(path)));
    assert_false(mapq_store_uri_path("mapq:sha256/" ABC_SHA256 "/a.png", path,
                                     sizeof(path)));
    assert_false(mapq_store_uri_path("file://rel", path, sizeof(path)));
    assert_false(mapq_store_uri_path("file://rel/x", path, sizeof(path)));
    assert_false(mapq_store_uri_path("file:///a/../b", path, sizeof(path)));
    assert_false(mapq_store_uri_path("file:///a/./b#n", path, sizeof(path)));
    assert_false(mapq_store_uri_path("file:///a/..#n", path, sizeof(path)));
    assert_false(mapq_store_uri_path("file://", path, sizeof(path)));
    assert_false(mapq_store_uri_path("", path, sizeof(path)));
    assert_false(mapq_store_uri_path("/x/y", path, sizeof(path)));
    assert_string_equal(path, "untouched");

    /* The buffer: "/x/y" needs 5 bytes. */
    assert_false(mapq_store_uri_path("file:///x/y#name", path, 4));
    assert_string_equal(path, "untouched");
    assert_true(mapq_store_uri_path("file:///x/y#name", path, 5));
    assert_string_equal(path, "/x/y");
}

static void
test_store_dir_has(void **state)
{
    struct mapq_store st;
    char err[MAPQ_ERR_LEN];

    (void)state;
    expect_rc(mapq_store_parse("file:///srv/mapq", &st, err), MAPQ_OK, err);
    assert_true(mapq_store_dir_has(&st, "/srv/mapq/sha256/ab/x"));
    assert_true(mapq_store_dir_has(&st, "/srv/mapq/x"));
    assert_false(mapq_store_dir_has(&st, "/srv/mapqx/sha256/ab/x"));
    assert_false(mapq_store_dir_has(&st, "/srv/mapqx"));
    assert_false(mapq_store_dir_has(&st, "/srv/mapq"));
    assert_false(mapq_store_dir_has(&st, "/srv/map"));
    assert_false(mapq_store_dir_has(&st, "/srv"));
    assert_false(mapq_store_dir_has(&st, "/other/srv/mapq/x"));
    assert_false(mapq_store_dir_has(&st, ""));

    expect_rc(mapq_store_parse("redis", &st, err), MAPQ_OK, err);
    assert_false(mapq_store_dir_has(&st, "/srv/mapq/sha256/ab/x"));
    assert_false(mapq_store_dir_has(&st, "/x"));
}

static void
test_store_uri_name(void **state)
{
    char buf[MAPQ_BLOB_NAME_MAX + 1];
    char longname[MAPQ_BLOB_NAME_MAX + 2], uri[512];

    (void)state;
    /* A URL's last path component, before its query or fragment. */
    assert_string_equal(mapq_store_uri_name("https://h:8443/img/cat.png?v=2#x",
                                            buf, sizeof(buf)),
                        "cat.png");
    assert_string_equal(
        mapq_store_uri_name("HTTP://h/a/b.txt", buf, sizeof(buf)), "b.txt");
    /* The fragment, when usable. */
    assert_string_equal(mapq_store_uri_name("file:///s/sha256/ba/" ABC_SHA256
                                            "#a.png",
                                            buf, sizeof(buf)),
                        "a.png");
    assert_string_equal(buf, "a.png");
    /* Else the path's last component. */
    assert_string_equal(mapq_store_uri_name("file:///s/sha256/ba/" ABC_SHA256,
                                            buf, sizeof(buf)),
                        ABC_SHA256);
    assert_string_equal(mapq_store_uri_name("file:///s/sha256/ba/" ABC_SHA256
                                            "#",
                                            buf, sizeof(buf)),
                        ABC_SHA256);
    assert_string_equal(mapq_store_uri_name("file:///s/sha256/ba/" ABC_SHA256
                                            "#..",
                                            buf, sizeof(buf)),
                        ABC_SHA256);
    assert_string_equal(mapq_store_uri_name("file:///s/sha256/ba/" ABC_SHA256
                                            "#.",
                                            buf, sizeof(buf)),
                        ABC_SHA256);
    assert_string_equal(mapq_store_uri_name("file:///s/sha256/ba/" ABC_SHA256
                                            "#a/b.png",
                                            buf, sizeof(buf)),
                        ABC_SHA256);
    assert_string_equal(
        mapq_store_uri_name("file:///data/in/cat.png", buf, sizeof(buf)),
        "cat.png");
    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    snprintf(uri, sizeof(uri), "file:///s/x.bin#%s", longname);
    assert_string_equal(mapq_store_uri_name(uri, buf, sizeof(buf)), "x.bin");
    /* A name of MAPQ_BLOB_NAME_MAX bytes is usable. */
    longname[MAPQ_BLOB_NAME_MAX] = '\0';
    snprintf(uri, sizeof(uri), "file:///s/x.bin#%s", longname);
    assert_string_equal(mapq_store_uri_name(uri, buf, sizeof(buf)), longname);

    /* A mapq: URI's last component. */
    assert_string_equal(mapq_store_uri_name("mapq:sha256/" ABC_SHA256 "/b.txt",
                                            buf, sizeof(buf)),
                        "b.txt");
    assert_string_equal(
        mapq_store_uri_name("mapq:sha256/" ABC_SHA256, buf, sizeof(buf)),
        ABC_SHA256);

    /* Truncated to the buffer. */
    assert_string_equal(mapq_store_uri_name("file:///s/x#abcdef", buf, 4),
                        "abc");
}

/* ---- the shared directory: put --------------------------------------- */

static void
test_store_dir_put_stores_a_read_only_blob(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN], hex[MAPQ_BLOB_HEX_LEN + 1],
        hex2[MAPQ_BLOB_HEX_LEN + 1], want[512], first[256],
        path[MAPQ_BLOB_URI_MAX + 1];
    const char *src;
    int64_t size = -1;

    make_data(t, BIG_LEN);
    src = put_file(t, "big.bin", t->data, BIG_LEN);
    sha256_hex(t->data, BIG_LEN, hex);
    /* Computed here and by the module alike. */
    expect_rc(mapq_blob_hash_file(src, hex2, &size, err), MAPQ_OK, err);
    assert_string_equal(hex2, hex);
    assert_int_equal(size, BIG_LEN);

    memset(&ref, 0x55, sizeof(ref));
    expect_rc(mapq_store_dir_put(&t->st, src, "big.bin", &ref, err), MAPQ_OK,
              err);
    assert_string_equal(ref.sha256, hex);
    assert_int_equal(ref.size, BIG_LEN);
    snprintf(want, sizeof(want), "file://%s/store/sha256/%.2s/%s#big.bin",
             t->dir, hex, hex);
    assert_string_equal(ref.uri, want);

    /* DIR/sha256/<h2>/<hex>, mode 0444, the source's bytes. */
    assert_file_is(t, blob_path(t, hex), t->data, BIG_LEN);
    assert_mode_is(blob_path(t, hex), 0444);
    assert_int_equal(entries(h2_dir(t, hex), first, sizeof(first)), 1);
    assert_string_equal(first, hex);
    assert_int_equal(count_in(t, "store/sha256"), 1);
    assert_int_equal(count_in(t, "store"), 1);
    /* The source is untouched. */
    assert_file_is(t, src, t->data, BIG_LEN);

    /* The URI's path is the blob, inside the store. */
    assert_true(mapq_store_uri_path(ref.uri, path, sizeof(path)));
    assert_string_equal(path, blob_path(t, hex));
    assert_true(mapq_store_dir_has(&t->st, path));

    /* A small one, of known hash. */
    src = put_file(t, "abc.txt", "abc", 3);
    expect_rc(mapq_store_dir_put(&t->st, src, "abc.txt", &ref, err), MAPQ_OK,
              err);
    assert_string_equal(ref.sha256, ABC_SHA256);
    assert_int_equal(ref.size, 3);
    assert_file_is(t, blob_path(t, ABC_SHA256), "abc", 3);
    assert_mode_is(blob_path(t, ABC_SHA256), 0444);
    snprintf(want, sizeof(want), "file://%s/store/sha256/ba/%s#abc.txt", t->dir,
             ABC_SHA256);
    assert_string_equal(ref.uri, want);
}

static void
test_store_dir_put_same_content_twice_is_one_blob(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref a, b;
    char err[MAPQ_ERR_LEN], want[512], first[256];
    const char *p1 = put_file(t, "one.txt", "abc", 3);
    const char *p2 = put_file(t, "two.txt", "abc", 3);
    struct stat s1, s2;

    expect_rc(mapq_store_dir_put(&t->st, p1, "one.txt", &a, err), MAPQ_OK, err);
    assert_int_equal(stat(blob_path(t, ABC_SHA256), &s1), 0);
    expect_rc(mapq_store_dir_put(&t->st, p2, "two.txt", &b, err), MAPQ_OK, err);
    assert_int_equal(stat(blob_path(t, ABC_SHA256), &s2), 0);

    snprintf(want, sizeof(want), "file://%s/store/sha256/ba/%s#one.txt", t->dir,
             ABC_SHA256);
    assert_string_equal(a.uri, want);
    snprintf(want, sizeof(want), "file://%s/store/sha256/ba/%s#two.txt", t->dir,
             ABC_SHA256);
    assert_string_equal(b.uri, want);
    assert_string_equal(a.sha256, b.sha256);
    assert_int_equal(a.size, b.size);
    /* One blob, not written again (the same file), no temporary file. */
    assert_int_equal(s1.st_ino, s2.st_ino);
    assert_int_equal(entries(h2_dir(t, ABC_SHA256), first, sizeof(first)), 1);
    assert_string_equal(first, ABC_SHA256);
    assert_file_is(t, blob_path(t, ABC_SHA256), "abc", 3);
    assert_mode_is(blob_path(t, ABC_SHA256), 0444);
}

static void
test_store_dir_put_replaces_a_blob_of_another_size(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN];
    const char *src = put_file(t, "abc.txt", "abc", 3);
    FILE *fp;

    /* A truncated blob, as a crashed writer without rename might leave. */
    assert_int_equal(mkdir(in_dir(t, "store/sha256"), 0755), 0);
    assert_int_equal(mkdir(h2_dir(t, ABC_SHA256), 0755), 0);
    fp = fopen(blob_path(t, ABC_SHA256), "wb");
    assert_non_null(fp);
    assert_int_equal(fputs("ab", fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);

    expect_rc(mapq_store_dir_put(&t->st, src, "abc.txt", &ref, err), MAPQ_OK,
              err);
    assert_file_is(t, blob_path(t, ABC_SHA256), "abc", 3);
    assert_mode_is(blob_path(t, ABC_SHA256), 0444);
    assert_int_equal(entries(h2_dir(t, ABC_SHA256), NULL, 0), 1);
}

static void
test_store_dir_put_without_a_usable_name(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN], want[512], longname[MAPQ_BLOB_NAME_MAX + 2];
    const char *src = put_file(t, "abc.txt", "abc", 3);
    const char *bad[] = {"", ".", "..", "a/b", "/", longname};
    size_t i;

    memset(longname, 'n', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    snprintf(want, sizeof(want), "file://%s/store/sha256/ba/%s", t->dir,
             ABC_SHA256);

    expect_rc(mapq_store_dir_put(&t->st, src, NULL, &ref, err), MAPQ_OK, err);
    assert_string_equal(ref.uri, want);
    assert_null(strchr(ref.uri, '#'));
    assert_string_equal(ref.sha256, ABC_SHA256);
    assert_int_equal(ref.size, 3);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        expect_rc(mapq_store_dir_put(&t->st, src, bad[i], &ref, err), MAPQ_OK,
                  err);
        assert_string_equal(ref.uri, want);
    }
    assert_int_equal(entries(h2_dir(t, ABC_SHA256), NULL, 0), 1);
}

static void
test_store_dir_put_empty_file(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN], want[512], hex[MAPQ_BLOB_HEX_LEN + 1];
    const char *src = put_file(t, "empty", "", 0);
    struct stat sb;

    sha256_hex("", 0, hex);
    assert_string_equal(hex, EMPTY_SHA256);
    expect_rc(mapq_store_dir_put(&t->st, src, "empty", &ref, err), MAPQ_OK,
              err);
    assert_string_equal(ref.sha256, EMPTY_SHA256);
    assert_int_equal(ref.size, 0);
    snprintf(want, sizeof(want), "file://%s/store/sha256/e3/%s#empty", t->dir,
             EMPTY_SHA256);
    assert_string_equal(ref.uri, want);
    assert_int_equal(stat(blob_path(t, EMPTY_SHA256), &sb), 0);
    assert_true(S_ISREG(sb.st_mode));
    assert_int_equal(sb.st_size, 0);
    assert_int_equal(sb.st_mode & 0777, 0444);
    /* And again. */
    expect_rc(mapq_store_dir_put(&t->st, src, "empty", &ref, err), MAPQ_OK,
              err);
    assert_int_equal(entries(h2_dir(t, EMPTY_SHA256), NULL, 0), 1);
}

static void
test_store_dir_put_missing_source_is_enoent(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN], want[512];
    const char *src = in_dir(t, "nothing.png");

    expect_rc(mapq_store_dir_put(&t->st, src, "nothing.png", &ref, err),
              MAPQ_ENOENT, err);
    snprintf(want, sizeof(want), "no such file: %s", src);
    assert_string_equal(err, want);
    /* The store is untouched. */
    assert_int_equal(count_in(t, "store"), 0);
}

static void
test_store_dir_put_missing_store_directory(void **state)
{
    struct t *t = *state;
    struct mapq_store st;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN], uri[256], want[256];
    const char *src = put_file(t, "abc.txt", "abc", 3);

    snprintf(uri, sizeof(uri), "file://%s/unmounted", t->dir);
    expect_rc(mapq_store_parse(uri, &st, err), MAPQ_OK, err);
    expect_rc(mapq_store_dir_put(&st, src, "abc.txt", &ref, err), MAPQ_ENOENT,
              err);
    assert_contains(err, "store directory");
    snprintf(want, sizeof(want), "store directory '%s/unmounted' is missing",
             t->dir);
    assert_string_equal(err, want);
    /* Nothing made: not the directory, nothing else. */
    assert_int_equal(access(in_dir(t, "unmounted"), F_OK), -1);
    assert_int_equal(entries(t->dir, NULL, 0), 3); /* store, out, abc.txt */

    /* A file where the directory should be is no store either. */
    put_file(t, "unmounted", "x", 1);
    expect_rc(mapq_store_dir_put(&st, src, "abc.txt", &ref, err), MAPQ_ENOENT,
              err);
    assert_string_equal(err, want);
}

static void
test_store_dir_put_refuses_a_directory(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN];

    expect_rc(mapq_store_dir_put(&t->st, in_dir(t, "out"), "out", &ref, err),
              MAPQ_EINVAL, err);
    assert_contains(err, in_dir(t, "out"));
    assert_int_equal(count_in(t, "store"), 0);
}

/* ---- the shared directory: get --------------------------------------- */

static void
test_store_dir_get_fetches_what_put_stored(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN];
    const char *out = in_dir(t, "out/big.bin");
    const char *src;

    make_data(t, BIG_LEN);
    src = put_file(t, "big.bin", t->data, BIG_LEN);
    expect_rc(mapq_store_dir_put(&t->st, src, "big.bin", &ref, err), MAPQ_OK,
              err);
    expect_rc(mapq_store_dir_get(&ref, out, err), MAPQ_OK, err);
    assert_file_is(t, out, t->data, BIG_LEN);
    assert_mode_is(out, 0644);
    assert_int_equal(count_in(t, "out"), 1);

    /* It replaces what dest held, whatever its mode. */
    out = put_file(t, "out/abc.txt", "old content", 11);
    assert_int_equal(chmod(out, 0600), 0);
    expect_rc(mapq_store_dir_put(&t->st, put_file(t, "abc.txt", "abc", 3),
                                 "abc.txt", &ref, err),
              MAPQ_OK, err);
    expect_rc(mapq_store_dir_get(&ref, out, err), MAPQ_OK, err);
    assert_file_is(t, out, "abc", 3);
    assert_mode_is(out, 0644);
    assert_int_equal(count_in(t, "out"), 2);
    /* The blob stays as it was. */
    assert_mode_is(blob_path(t, ABC_SHA256), 0444);
    assert_file_is(t, blob_path(t, ABC_SHA256), "abc", 3);

    /* The empty file too. */
    out = in_dir(t, "out/empty");
    expect_rc(mapq_store_dir_put(&t->st, put_file(t, "empty", "", 0), NULL,
                                 &ref, err),
              MAPQ_OK, err);
    expect_rc(mapq_store_dir_get(&ref, out, err), MAPQ_OK, err);
    assert_file_is(t, out, "", 0);
    assert_mode_is(out, 0644);
}

static void
test_store_dir_get_refuses_a_wrong_sha256_or_size(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref, bad;
    char err[MAPQ_ERR_LEN], want[MAPQ_BLOB_URI_MAX + 64];
    char out[256];

    snprintf(out, sizeof(out), "%s/out/abc.txt", t->dir);
    expect_rc(mapq_store_dir_put(&t->st, put_file(t, "abc.txt", "abc", 3),
                                 "abc.txt", &ref, err),
              MAPQ_OK, err);
    snprintf(want, sizeof(want), "content of %s does not match its sha256/size",
             ref.uri);

    /* Another hash. */
    bad = ref;
    memcpy(bad.sha256, EMPTY_SHA256, sizeof(bad.sha256));
    expect_rc(mapq_store_dir_get(&bad, out, err), MAPQ_EPROTO, err);
    assert_string_equal(err, want);
    assert_int_equal(access(out, F_OK), -1);
    assert_int_equal(count_in(t, "out"), 0);

    /* Another size, larger and smaller. */
    bad = ref;
    bad.size = 4;
    expect_rc(mapq_store_dir_get(&bad, out, err), MAPQ_EPROTO, err);
    assert_string_equal(err, want);
    bad.size = 2;
    expect_rc(mapq_store_dir_get(&bad, out, err), MAPQ_EPROTO, err);
    assert_string_equal(err, want);
    assert_int_equal(count_in(t, "out"), 0);

    /* A blob whose content is not its name's, with the ref's size. */
    assert_int_equal(chmod(blob_path(t, ABC_SHA256), 0644), 0);
    put_file(t, "store/sha256/ba/" ABC_SHA256, "abd", 3);
    expect_rc(mapq_store_dir_get(&ref, out, err), MAPQ_EPROTO, err);
    assert_string_equal(err, want);
    assert_int_equal(count_in(t, "out"), 0);

    /* A dest that exists is left as it was. */
    put_file(t, "out/abc.txt", "old", 3);
    bad = ref;
    bad.size = 5;
    expect_rc(mapq_store_dir_get(&bad, out, err), MAPQ_EPROTO, err);
    expect_rc(mapq_store_dir_get(&ref, out, err), MAPQ_EPROTO, err);
    assert_file_is(t, out, "old", 3);
    assert_int_equal(count_in(t, "out"), 1);
}

static void
test_store_dir_get_refuses_other_uris(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref = {.size = 3};
    char err[MAPQ_ERR_LEN];
    char out[256];
    const char *uris[] = {
        "mapq:sha256/" ABC_SHA256,
        "mapq:sha256/" ABC_SHA256 "/abc.txt",
        "s3://bucket/sha256/" ABC_SHA256,
        "file://relative/sha256/ba/" ABC_SHA256,
        "file:///srv/../sha256/ba/" ABC_SHA256,
        "",
    };
    size_t i;

    snprintf(out, sizeof(out), "%s/out/abc.txt", t->dir);
    memcpy(ref.sha256, ABC_SHA256, sizeof(ref.sha256));
    for (i = 0; i < sizeof(uris) / sizeof(uris[0]); i++) {
        snprintf(ref.uri, sizeof(ref.uri), "%s", uris[i]);
        expect_rc(mapq_store_dir_get(&ref, out, err), MAPQ_EINVAL, err);
        assert_contains(err, "file://");
    }
    assert_int_equal(count_in(t, "out"), 0);
}

static void
test_store_dir_get_of_a_missing_blob_is_enoent(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ref = {.size = 3};
    char err[MAPQ_ERR_LEN], want[512];
    char out[256];

    snprintf(out, sizeof(out), "%s/out/abc.txt", t->dir);
    snprintf(ref.uri, sizeof(ref.uri), "file://%s#abc.txt",
             blob_path(t, ABC_SHA256));
    memcpy(ref.sha256, ABC_SHA256, sizeof(ref.sha256));
    expect_rc(mapq_store_dir_get(&ref, out, err), MAPQ_ENOENT, err);
    snprintf(want, sizeof(want), "no such file: %s", blob_path(t, ABC_SHA256));
    assert_string_equal(err, want);
    assert_int_equal(count_in(t, "out"), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_store_parse_redis_and_directories),
        cmocka_unit_test(test_store_parse_refuses_the_rest),
        cmocka_unit_test(test_store_parse_caps_the_directory_length),
        cmocka_unit_test(test_store_format_round_trips),
        cmocka_unit_test(test_store_uri_path),
        cmocka_unit_test(test_store_dir_has),
        cmocka_unit_test(test_store_uri_name),
        cmocka_unit_test(test_store_s3),
        T(test_store_dir_put_stores_a_read_only_blob),
        T(test_store_dir_put_same_content_twice_is_one_blob),
        T(test_store_dir_put_replaces_a_blob_of_another_size),
        T(test_store_dir_put_without_a_usable_name),
        T(test_store_dir_put_empty_file),
        T(test_store_dir_put_missing_source_is_enoent),
        T(test_store_dir_put_missing_store_directory),
        T(test_store_dir_put_refuses_a_directory),
        T(test_store_dir_get_fetches_what_put_stored),
        T(test_store_dir_get_refuses_a_wrong_sha256_or_size),
        T(test_store_dir_get_refuses_other_uris),
        T(test_store_dir_get_of_a_missing_blob_is_enoent),
    };

    return cmocka_run_group_tests_name("store", tests, NULL, NULL);
}
