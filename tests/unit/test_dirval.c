/*
 * test_dirval.c - dir values (common/mapq_dirval.c) over a shared
 * directory store: a tree goes in as one blob per file plus its manifest,
 * and comes back out with its nested paths, contents and executable bits;
 * empty directories are not kept; a symlink is refused, naming it; a
 * manifest that does not hash as its ref says, or is no manifest, writes
 * nothing. Also the sibling URIs a manifest's files are found by
 * (mapq_store_sibling_uri()).
 *
 * Each test gets a temporary directory of its own: "store" (the shared
 * directory), "src" (the tree stored) and "out" (where it comes back).
 */
#include "mapq_test.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_dirval.h"
#include "mapq_fs.h"
#include "mapq_store.h"

#define HEX_A "ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb"

struct t {
    char dir[64];
    struct mapq_store st;
};

/* Rotating buffers of at(): a path below the test's directory. */
static char paths[8][256];
static int next_path;

static const char *
at(const struct t *t, const char *rel)
{
    char *p = paths[next_path++ % 8];

    snprintf(p, sizeof(paths[0]), "%s/%s", t->dir, rel);
    return p;
}

static enum mapq_err
put(void *arg, const char *path, const char *name, struct mapq_blob_ref *ref,
    char *err)
{
    struct t *t = arg;

    return mapq_store_dir_put(&t->st, path, name, ref, err);
}

static enum mapq_err
get(void *arg, const struct mapq_blob_ref *ref, const char *dest, char *err)
{
    (void)arg;
    return mapq_store_dir_get(ref, dest, err);
}

static void
write_file(const char *path, const char *data, mode_t mode)
{
    FILE *f = fopen(path, "w");

    assert_non_null(f);
    fputs(data, f);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void
assert_file(const char *path, const char *data, mode_t mode)
{
    char buf[256] = "";
    struct stat st;
    FILE *f = fopen(path, "r");
    size_t n;

    if (f == NULL)
        fail_msg("%s is missing", path);
    n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    assert_string_equal(buf, data);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, mode);
}

static int
setup(void **state)
{
    struct t *t = mapq_xcalloc(1, sizeof(*t));
    char uri[128], err[MAPQ_ERR_LEN];

    *state = t;
    snprintf(t->dir, sizeof(t->dir), "/tmp/mapq-test-dirval-XXXXXX");
    if (mkdtemp(t->dir) == NULL || mkdir(at(t, "store"), 0755) != 0 ||
        mkdir(at(t, "src"), 0755) != 0 || mkdir(at(t, "src/bin"), 0755) != 0 ||
        mkdir(at(t, "src/a"), 0755) != 0 ||
        mkdir(at(t, "src/a/b"), 0755) != 0 ||
        mkdir(at(t, "src/empty"), 0755) != 0 || mkdir(at(t, "out"), 0755) != 0)
        return -1;
    snprintf(uri, sizeof(uri), "file://%s", at(t, "store"));
    return mapq_store_parse(uri, &t->st, err) == MAPQ_OK ? 0 : -1;
}

static int
teardown(void **state)
{
    struct t *t = *state;

    mapq_fs_rmtree(t->dir);
    free(t);
    return 0;
}

/* A tree of three files in two levels, one executable, one empty, and an
 * empty directory. */
static void
make_tree(struct t *t)
{
    write_file(at(t, "src/bin/run"), "#!/bin/sh\n", 0700);
    write_file(at(t, "src/a/b/deep.txt"), "a", 0600);
    write_file(at(t, "src/top"), "", 0644);
}

static void
test_dirval_round_trip(void **state)
{
    struct t *t = *state;
    const struct mapq_dirval_io io = {put, get, t};
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN], want[512], blob[512];
    int64_t files = -1;
    struct stat st;

    make_tree(t);
    assert_int_equal(
        mapq_dirval_put(&io, at(t, "src"), "src", &ref, &files, err), MAPQ_OK);
    assert_int_equal(files, 3);
    snprintf(want, sizeof(want), "file://%s/sha256/%.2s/%s#src", at(t, "store"),
             ref.sha256, ref.sha256);
    assert_string_equal(ref.uri, want);
    /* Each file is a blob of its own, named by its hash. */
    snprintf(blob, sizeof(blob), "%s/sha256/ca/%s", at(t, "store"), HEX_A);
    assert_file(blob, "a", 0444);

    assert_int_equal(mapq_dirval_get(&io, &ref, at(t, "out/d"), err), MAPQ_OK);
    assert_file(at(t, "out/d/bin/run"), "#!/bin/sh\n", 0755);
    assert_file(at(t, "out/d/a/b/deep.txt"), "a", 0644);
    assert_file(at(t, "out/d/top"), "", 0644);
    assert_int_not_equal(stat(at(t, "out/d/empty"), &st), 0);

    /* The same tree elsewhere is the same value. */
    {
        struct mapq_blob_ref again;

        assert_int_equal(
            mapq_dirval_put(&io, at(t, "out/d"), "d", &again, &files, err),
            MAPQ_OK);
        assert_string_equal(again.sha256, ref.sha256);
        assert_int_equal(again.size, ref.size);
    }
}

static void
test_dirval_refuses_a_symlink(void **state)
{
    struct t *t = *state;
    const struct mapq_dirval_io io = {put, get, t};
    struct mapq_blob_ref ref;
    char err[MAPQ_ERR_LEN];
    int64_t files = -1;

    make_tree(t);
    assert_int_equal(symlink("/etc/hostname", at(t, "src/a/link")), 0);
    assert_int_equal(
        mapq_dirval_put(&io, at(t, "src"), "src", &ref, &files, err),
        MAPQ_EINVAL);
    assert_non_null(strstr(err, "src/a/link"));
    assert_int_equal(files, -1);
}

static void
test_dirval_refuses_a_bad_manifest(void **state)
{
    struct t *t = *state;
    const struct mapq_dirval_io io = {put, get, t};
    struct mapq_blob_ref ref, bad;
    char err[MAPQ_ERR_LEN];
    int64_t files;
    struct stat st;

    make_tree(t);
    assert_int_equal(
        mapq_dirval_put(&io, at(t, "src"), "src", &ref, &files, err), MAPQ_OK);
    bad = ref;
    bad.size++;
    assert_int_equal(mapq_dirval_get(&io, &bad, at(t, "out/d"), err),
                     MAPQ_EPROTO);
    assert_non_null(strstr(err, "does not match its sha256/size"));
    assert_int_not_equal(stat(at(t, "out/d"), &st), 0);

    /* A file stored as it is, then taken for a manifest. */
    write_file(at(t, "notes"), "not a manifest\n", 0644);
    assert_int_equal(
        mapq_store_dir_put(&t->st, at(t, "notes"), "notes", &bad, err),
        MAPQ_OK);
    assert_int_equal(mapq_dirval_get(&io, &bad, at(t, "out/d"), err),
                     MAPQ_EPROTO);
    assert_non_null(strstr(err, "manifest line 1"));
    assert_int_not_equal(stat(at(t, "out/d"), &st), 0);
}

static void
test_dirval_sibling_uris(void **state)
{
    char out[256];

    (void)state;
    assert_true(mapq_store_sibling_uri("mapq:sha256/" HEX_A "/photos", HEX_A,
                                       out, sizeof(out)));
    assert_string_equal(out, "mapq:sha256/" HEX_A);
    assert_true(mapq_store_sibling_uri(
        "file:///srv/s/sha256/ab/" HEX_A "#photos", HEX_A, out, sizeof(out)));
    assert_string_equal(out, "file:///srv/s/sha256/ca/" HEX_A);
    assert_true(mapq_store_sibling_uri("s3://b/p/q/sha256/" HEX_A "#photos",
                                       HEX_A, out, sizeof(out)));
    assert_string_equal(out, "s3://b/p/q/sha256/" HEX_A);
    /* A file:// URI outside a store's layout, another scheme, too small. */
    assert_false(mapq_store_sibling_uri("file:///srv/photos.txt", HEX_A, out,
                                        sizeof(out)));
    assert_false(
        mapq_store_sibling_uri("gs://b/k/" HEX_A, HEX_A, out, sizeof(out)));
    assert_false(mapq_store_sibling_uri("mapq:sha256/" HEX_A, HEX_A, out, 20));
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_dirval_round_trip),
        T(test_dirval_refuses_a_symlink),
        T(test_dirval_refuses_a_bad_manifest),
        cmocka_unit_test(test_dirval_sibling_uris),
    };
#undef T

    return cmocka_run_group_tests_name("dirval", tests, NULL, NULL);
}
