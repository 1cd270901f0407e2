/*
 * test_manifest.c - dir values' manifests (common/mapq_manifest.c): a
 * directory scanned lists its regular files, nested ones included, in
 * strcmp order of their full paths with their execute bit, and nothing
 * for empty directories; symlinks (to a file, to a directory, as the
 * directory itself), FIFOs, sockets, names with a newline or not UTF-8,
 * too long a path and too many files are refused, naming the path; a
 * missing directory and a file given as one are told apart. Manifest text
 * written and parsed back is the same manifest (the empty one too), and
 * text breaking any rule is refused naming its line.
 *
 * Each test gets a temporary directory, removed in teardown; no Redis.
 */
#include "mapq_test.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_buf.h"
#include "mapq_fs.h"
#include "mapq_manifest.h"

#define H0         "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define H1         "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
#define H2         "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
#define ONLY_FILES "a dir value holds only regular files and directories"

struct t {
    char dir[64];
    bool made;     /* dir was made: teardown removes it */
    bool deep;     /* dir holds "deep", too long a path for mapq_fs_rmtree */
    int fd;        /* a descriptor a test holds, or -1 */
    char tmp[256]; /* a path built by at() */
    char err[MAPQ_ERR_LEN];
    struct mapq_manifest m;
    struct mapq_manifest back; /* a manifest parsed back */
    struct mapq_buf text;
    struct mapq_buf text2;
};

/* Removes name below dfd and everything under it with *at() calls, which
 * work at any depth. */
static void
rm_at(int dfd, const char *name)
{
    struct dirent *d;
    struct stat st;
    DIR *dp;
    int fd;

    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return;
    if (!S_ISDIR(st.st_mode)) {
        unlinkat(dfd, name, 0);
        return;
    }
    fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    dp = fd >= 0 ? fdopendir(fd) : NULL;
    if (dp == NULL) {
        if (fd >= 0)
            close(fd);
        return;
    }
    while ((d = readdir(dp)) != NULL) {
        if (strcmp(d->d_name, ".") != 0 && strcmp(d->d_name, "..") != 0)
            rm_at(dirfd(dp), d->d_name);
    }
    closedir(dp);
    unlinkat(dfd, name, AT_REMOVEDIR);
}

static int
setup(void **state)
{
    struct t *t = mapq_xcalloc(1, sizeof(*t));

    *state = t;
    t->fd = -1;
    mapq_buf_init(&t->text, 0);
    mapq_buf_init(&t->text2, 0);
    snprintf(t->dir, sizeof(t->dir), "/tmp/mapq-test-manifest-XXXXXX");
    t->made = mkdtemp(t->dir) != NULL;
    return t->made ? 0 : -1;
}

static int
teardown(void **state)
{
    struct t *t = *state;
    int fd;

    if (t->fd >= 0)
        close(t->fd);
    if (t->deep) {
        fd = open(t->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd >= 0) {
            rm_at(fd, "deep");
            close(fd);
        }
    }
    if (t->made)
        mapq_fs_rmtree(t->dir);
    mapq_manifest_release(&t->m);
    mapq_manifest_release(&t->back);
    mapq_buf_release(&t->text);
    mapq_buf_release(&t->text2);
    free(t);
    return 0;
}

/* The full path of rel in the test's directory, in t->tmp. */
static const char *
at(struct t *t, const char *rel)
{
    snprintf(t->tmp, sizeof(t->tmp), "%s/%s", t->dir, rel);
    return t->tmp;
}

static void
mk_dir(struct t *t, const char *rel)
{
    assert_int_equal(mkdir(at(t, rel), 0755), 0);
}

/* Creates the file rel holding content, with exactly mode. */
static void
mk_file(struct t *t, const char *rel, const char *content, mode_t mode)
{
    int fd = open(at(t, rel), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)),
                     (ssize_t)strlen(content));
    close(fd);
    assert_int_equal(chmod(t->tmp, mode), 0);
}

/* Scans the test's directory expecting code, with err holding want, and
 * the manifest left empty. */
static void
scan_refused(struct t *t, enum mapq_err code, const char *want)
{
    enum mapq_err rc = mapq_manifest_scan(t->dir, &t->m, t->err);

    assert_int_equal(rc, code);
    assert_string_equal(t->err, want);
    assert_int_equal(t->m.n, 0);
    assert_null(t->m.entries);
}

static void
test_manifest_scan_tree(void **state)
{
    static const struct {
        const char *path;
        bool exec;
    } want[] = {
        {"Z", false},
        {"a-b", false},
        {"a.b", true},
        {"a/b", false},
        {"a/c/group-x", true},
        {"a/c/run.sh", true},
        {"a/c/user-x", true},
        {"a/private", false},
        {"a0", false},
        {"z/deep/er/empty", false},
        {"\xc3\xa9t\xc3\xa9", false},
    };
    struct t *t = *state;
    size_t i;

    mk_dir(t, "a");
    mk_dir(t, "a/c");
    mk_dir(t, "empty");
    mk_dir(t, "empty/inside");
    mk_dir(t, "z");
    mk_dir(t, "z/deep");
    mk_dir(t, "z/deep/er");
    mk_file(t, "a/b", "b", 0644);
    mk_file(t, "a-b", "dash", 0644);
    mk_file(t, "a.b", "dot", 0755);
    mk_file(t, "a0", "zero", 0644);
    mk_file(t, "Z", "upper", 0644);
    mk_file(t, "a/c/run.sh", "#!/bin/sh\n", 0755);
    mk_file(t, "a/c/user-x", "x", 0700);
    mk_file(t, "a/c/group-x", "x", 0650);
    mk_file(t, "a/private", "secret", 0600);
    mk_file(t, "z/deep/er/empty", "", 0644);
    mk_file(t, "\xc3\xa9t\xc3\xa9", "summer", 0444);

    assert_int_equal(mapq_manifest_scan(t->dir, &t->m, t->err), MAPQ_OK);
    assert_int_equal(t->m.n, sizeof(want) / sizeof(want[0]));
    for (i = 0; i < t->m.n; i++) {
        assert_string_equal(t->m.entries[i].path, want[i].path);
        assert_int_equal(t->m.entries[i].exec, want[i].exec);
        assert_string_equal(t->m.entries[i].sha256, "");
        assert_int_equal(t->m.entries[i].size, -1);
    }
}

static void
test_manifest_scan_only_empty_dirs(void **state)
{
    struct t *t = *state;

    mk_dir(t, "a");
    mk_dir(t, "a/b");
    mk_dir(t, "c");
    assert_int_equal(mapq_manifest_scan(t->dir, &t->m, t->err), MAPQ_OK);
    assert_int_equal(t->m.n, 0);
    assert_null(t->m.entries);
}

static void
test_manifest_scan_dir_with_trailing_slash(void **state)
{
    struct t *t = *state;
    char dir[80], want[MAPQ_ERR_LEN];

    mk_file(t, "f", "f", 0644);
    snprintf(dir, sizeof(dir), "%s/", t->dir);
    assert_int_equal(mapq_manifest_scan(dir, &t->m, t->err), MAPQ_OK);
    assert_int_equal(t->m.n, 1);
    assert_string_equal(t->m.entries[0].path, "f");
    mapq_manifest_release(&t->m);

    /* The path in a message has one '/' between dir and the name. */
    assert_int_equal(mkfifo(at(t, "fifo"), 0644), 0);
    snprintf(want, sizeof(want), "'%s/fifo': a FIFO; %s", t->dir, ONLY_FILES);
    assert_int_equal(mapq_manifest_scan(dir, &t->m, t->err), MAPQ_EINVAL);
    assert_string_equal(t->err, want);
}

static void
test_manifest_scan_refuses_symlink_to_file(void **state)
{
    struct t *t = *state;
    char want[MAPQ_ERR_LEN];

    mk_dir(t, "d");
    mk_file(t, "d/target", "t", 0644);
    assert_int_equal(symlink("target", at(t, "d/link")), 0);
    snprintf(want, sizeof(want), "'%s/d/link': a symlink; %s", t->dir,
             ONLY_FILES);
    scan_refused(t, MAPQ_EINVAL, want);
}

static void
test_manifest_scan_refuses_symlink_to_dir(void **state)
{
    struct t *t = *state;
    char want[MAPQ_ERR_LEN];

    mk_dir(t, "real");
    mk_file(t, "real/f", "f", 0644);
    mk_dir(t, "sub");
    assert_int_equal(symlink("../real", at(t, "sub/dirlink")), 0);
    snprintf(want, sizeof(want), "'%s/sub/dirlink': a symlink; %s", t->dir,
             ONLY_FILES);
    scan_refused(t, MAPQ_EINVAL, want);
}

static void
test_manifest_scan_refuses_fifo(void **state)
{
    struct t *t = *state;
    char want[MAPQ_ERR_LEN];

    mk_dir(t, "p");
    mk_file(t, "p/a", "a", 0644);
    assert_int_equal(mkfifo(at(t, "p/fifo"), 0644), 0);
    snprintf(want, sizeof(want), "'%s/p/fifo': a FIFO; %s", t->dir, ONLY_FILES);
    scan_refused(t, MAPQ_EINVAL, want);
}

static void
test_manifest_scan_refuses_socket(void **state)
{
    struct t *t = *state;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char want[MAPQ_ERR_LEN];

    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/sock", t->dir);
    t->fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(t->fd >= 0);
    assert_int_equal(bind(t->fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    snprintf(want, sizeof(want), "'%s/sock': a socket; %s", t->dir, ONLY_FILES);
    scan_refused(t, MAPQ_EINVAL, want);
}

static void
test_manifest_scan_refuses_newline_name(void **state)
{
    struct t *t = *state;
    char want[MAPQ_ERR_LEN];

    mk_dir(t, "d");
    mk_file(t, "d/two\nlines", "x", 0644);
    snprintf(want, sizeof(want),
             "'%s/d/two\\x0alines': a name holding a newline", t->dir);
    scan_refused(t, MAPQ_EINVAL, want);
}

static void
test_manifest_scan_refuses_non_utf8_name(void **state)
{
    struct t *t = *state;
    char want[MAPQ_ERR_LEN];

    mk_dir(t, "latin1-\xe9");
    snprintf(want, sizeof(want),
             "'%s/latin1-\\xe9': a name that is not valid UTF-8", t->dir);
    scan_refused(t, MAPQ_EINVAL, want);
}

static void
test_manifest_scan_missing_dir(void **state)
{
    struct t *t = *state;
    char dir[80], want[MAPQ_ERR_LEN];

    snprintf(dir, sizeof(dir), "%s/nope", t->dir);
    snprintf(want, sizeof(want), "no such directory: %s", dir);
    assert_int_equal(mapq_manifest_scan(dir, &t->m, t->err), MAPQ_ENOENT);
    assert_string_equal(t->err, want);
    assert_int_equal(t->m.n, 0);
}

static void
test_manifest_scan_file_as_dir(void **state)
{
    struct t *t = *state;
    char dir[80], want[MAPQ_ERR_LEN];

    mk_file(t, "plain", "p", 0644);
    snprintf(dir, sizeof(dir), "%s/plain", t->dir);
    snprintf(want, sizeof(want), "'%s' is not a directory", dir);
    assert_int_equal(mapq_manifest_scan(dir, &t->m, t->err), MAPQ_EINVAL);
    assert_string_equal(t->err, want);
    assert_int_equal(t->m.n, 0);
}

static void
test_manifest_scan_symlink_as_dir(void **state)
{
    struct t *t = *state;
    char dir[80], want[MAPQ_ERR_LEN];

    mk_dir(t, "real");
    mk_file(t, "real/f", "f", 0644);
    assert_int_equal(symlink("real", at(t, "link")), 0);
    snprintf(dir, sizeof(dir), "%s/link", t->dir);
    snprintf(want, sizeof(want), "'%s' is not a directory", dir);
    assert_int_equal(mapq_manifest_scan(dir, &t->m, t->err), MAPQ_EINVAL);
    assert_string_equal(t->err, want);
    assert_int_equal(t->m.n, 0);
}

static void
test_manifest_scan_unreadable_dir(void **state)
{
    struct t *t = *state;

    if (geteuid() == 0)
        skip(); /* root reads a 0000 directory all the same */
    mk_dir(t, "locked");
    mk_file(t, "locked/f", "f", 0644);
    assert_int_equal(chmod(at(t, "locked"), 0), 0);
    assert_int_equal(mapq_manifest_scan(t->dir, &t->m, t->err), MAPQ_EIO);
    assert_non_null(strstr(t->err, "/locked'"));
    assert_non_null(strstr(t->err, strerror(EACCES)));
    assert_int_equal(t->m.n, 0);
}

/* Makes t->dir/deep/<20 directories of 200 'd'> and returns the last one
 * open, in t->fd: a path of 4 + 20 * 201 = 4024 bytes below t->dir. */
static void
mk_deep(struct t *t)
{
    char name[201];
    int i, fd;

    memset(name, 'd', 200);
    name[200] = '\0';
    t->deep = true;
    mk_dir(t, "deep");
    t->fd = open(at(t, "deep"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(t->fd >= 0);
    for (i = 0; i < 20; i++) {
        assert_int_equal(mkdirat(t->fd, name, 0755), 0);
        fd = openat(t->fd, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        assert_true(fd >= 0);
        close(t->fd);
        t->fd = fd;
    }
}

/* Creates an empty file named by n copies of c in the directory fd. */
static void
mk_file_at(int fd, char c, size_t n)
{
    char name[256];
    int f;

    memset(name, c, n);
    name[n] = '\0';
    f = openat(fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    assert_true(f >= 0);
    close(f);
}

static void
test_manifest_scan_path_max(void **state)
{
    struct t *t = *state;

    mk_deep(t);
    mk_file_at(t->fd, 'f', 71); /* 4024 + 1 + 71: exactly the limit */
    assert_int_equal(mapq_manifest_scan(t->dir, &t->m, t->err), MAPQ_OK);
    assert_int_equal(t->m.n, 1);
    assert_int_equal(strlen(t->m.entries[0].path), MAPQ_MANIFEST_PATH_MAX);
    mapq_manifest_release(&t->m);

    mk_file_at(t->fd, 'g', 72); /* one byte over */
    assert_int_equal(mapq_manifest_scan(t->dir, &t->m, t->err), MAPQ_ETOOBIG);
    assert_non_null(strstr(t->err, "ggg': a path over 4096 bytes"));
    assert_memory_equal(t->err, "'...", 4); /* the path's tail only */
    assert_int_equal(t->m.n, 0);
    assert_null(t->m.entries);
}

static void
test_manifest_scan_files_max(void **state)
{
    struct t *t = *state;
    char name[16];
    int i, f;

    mk_dir(t, "many");
    t->fd = open(at(t, "many"), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    assert_true(t->fd >= 0);
    for (i = 0; i < MAPQ_MANIFEST_FILES_MAX; i++) {
        snprintf(name, sizeof(name), "%06d", i);
        f = openat(t->fd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        assert_true(f >= 0);
        close(f);
    }
    assert_int_equal(mapq_manifest_scan(t->dir, &t->m, t->err), MAPQ_OK);
    assert_int_equal(t->m.n, MAPQ_MANIFEST_FILES_MAX);
    assert_string_equal(t->m.entries[0].path, "many/000000");
    assert_string_equal(t->m.entries[t->m.n - 1].path, "many/099999");
    mapq_manifest_release(&t->m);

    mk_file(t, "one-more", "", 0644);
    assert_int_equal(mapq_manifest_scan(t->dir, &t->m, t->err), MAPQ_ETOOBIG);
    assert_non_null(strstr(t->err, "more than 100000 files"));
    assert_int_equal(t->m.n, 0);
    assert_null(t->m.entries);
}

/* Appends an entry to m, whose paths the test keeps in order. */
static void
add(struct mapq_manifest *m, const char *path, const char *sha256, int64_t size,
    bool exec)
{
    struct mapq_manifest_entry *e;

    m->entries = mapq_xrealloc(m->entries, (m->n + 1) * sizeof(*e));
    e = &m->entries[m->n++];
    e->path = mapq_xstrdup(path);
    snprintf(e->sha256, sizeof(e->sha256), "%s", sha256);
    e->size = size;
    e->exec = exec;
}

static void
test_manifest_format_parse_round_trip(void **state)
{
    static const char want[] =
        H0 " 0 0644 a-b\n" H1 " 3 0755 a.b\n" H2 " 123456789012 0644 a/b\n" H0
           " 9223372036854775807 0755 dir with space/\xc3\xa9t\xc3\xa9\n";
    struct t *t = *state;
    size_t i;

    add(&t->m, "a-b", H0, 0, false);
    add(&t->m, "a.b", H1, 3, true);
    add(&t->m, "a/b", H2, 123456789012, false);
    add(&t->m, "dir with space/\xc3\xa9t\xc3\xa9", H0, INT64_MAX, true);
    mapq_manifest_format(&t->m, &t->text);
    assert_int_equal(t->text.len, sizeof(want) - 1);
    assert_memory_equal(t->text.data, want, sizeof(want) - 1);

    assert_int_equal(
        mapq_manifest_parse(t->text.data, t->text.len, &t->back, t->err),
        MAPQ_OK);
    assert_int_equal(t->back.n, t->m.n);
    for (i = 0; i < t->m.n; i++) {
        assert_string_equal(t->back.entries[i].path, t->m.entries[i].path);
        assert_string_equal(t->back.entries[i].sha256, t->m.entries[i].sha256);
        assert_int_equal(t->back.entries[i].size, t->m.entries[i].size);
        assert_int_equal(t->back.entries[i].exec, t->m.entries[i].exec);
    }
    mapq_manifest_format(&t->back, &t->text2);
    assert_int_equal(t->text2.len, t->text.len);
    assert_memory_equal(t->text2.data, t->text.data, t->text.len);
}

static void
test_manifest_empty_round_trip(void **state)
{
    struct t *t = *state;

    mapq_manifest_format(&t->m, &t->text);
    assert_int_equal(t->text.len, 0);
    t->back.n = 7; /* parse overwrites whatever was there */
    assert_int_equal(mapq_manifest_parse("", 0, &t->back, t->err), MAPQ_OK);
    assert_int_equal(t->back.n, 0);
    assert_null(t->back.entries);
}

static void
test_manifest_scan_format_parse(void **state)
{
    struct t *t = *state;
    size_t i;

    mk_dir(t, "a");
    mk_file(t, "a/b", "b", 0644);
    mk_file(t, "a.b", "", 0755);
    assert_int_equal(mapq_manifest_scan(t->dir, &t->m, t->err), MAPQ_OK);
    for (i = 0; i < t->m.n; i++) {
        snprintf(t->m.entries[i].sha256, 65, "%s", i == 0 ? H0 : H1);
        t->m.entries[i].size = (int64_t)i;
    }
    mapq_manifest_format(&t->m, &t->text);
    assert_string_equal(t->text.data, H0 " 0 0755 a.b\n" H1 " 1 0644 a/b\n");
    assert_int_equal(
        mapq_manifest_parse(t->text.data, t->text.len, &t->back, t->err),
        MAPQ_OK);
    assert_int_equal(t->back.n, 2);
}

#define L(path) H0 " 0 0644 " path "\n"
#define CASE(text, line, what)             \
    {                                      \
        text, sizeof(text) - 1, line, what \
    }

static void
test_manifest_parse_refuses(void **state)
{
    static const struct {
        const char *text;
        size_t len;
        int line;
        const char *what; /* a piece of the message */
    } cases[] = {
        CASE("E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855"
             " 0 0644 a\n",
             1, "sha256"),
        CASE("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b85"
             " 0 0644 a\n",
             1, "sha256"),
        CASE("g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
             " 0 0644 a\n",
             1, "sha256"),
        CASE(H0 " +3 0644 a\n", 1, "size"),
        CASE(H0 " -3 0644 a\n", 1, "size"),
        CASE(H0 " 03 0644 a\n", 1, "size"),
        CASE(H0 " 00 0644 a\n", 1, "size"),
        CASE(H0 "  0 0644 a\n", 1, "size"),
        CASE(H0 " 9223372036854775808 0644 a\n", 1, "size"),
        CASE(H0 " 0\0 0644 a\n", 1, "size"),
        CASE(H0 " 0 0700 a\n", 1, "mode"),
        CASE(H0 " 0 755 a\n", 1, "mode"),
        CASE(H0 " 0 0644\ta\n", 1, "mode"),
        CASE(H0 " 0 0644\n", 1, "no path"),
        CASE(L(""), 1, "path"),
        CASE(L(".."), 1, "path"),
        CASE(L("."), 1, "path"),
        CASE(L("a//b"), 1, "path"),
        CASE(L("/abs"), 1, "path"),
        CASE(L("a/"), 1, "path"),
        CASE(L("a/."), 1, "path"),
        CASE(L("./a"), 1, "path"),
        CASE(L("a/../b"), 1, "path"),
        CASE(L("a\0b"), 1, "path"),
        CASE(L("bad-\xff"), 1, "path"),
        CASE(H0 " 0 0644 a", 1, "newline"),
        CASE(L("a") H0 " 0 0644 b", 2, "newline"),
        CASE(L("b") L("a"), 2, "order"),
        CASE(L("a/b") L("a-b"), 2, "order"),
        CASE(L("a") L("a"), 2, "duplicate"),
        CASE(L("a") L("b") L("c//d"), 3, "path"),
        CASE(L("a") L("a-b") L("a/b"), 3, "below"),
        CASE(H0 " 3 3 0644 a\n", 1, "mode"), /* an extra field */
        CASE(H0 " 0644 a\n", 1, "size"),     /* no size */
        CASE(H0 " 3 a\n", 1, "mode"),        /* no mode */
        CASE("3 0644 a\n", 1, "sha256"),     /* no sha256 */
        CASE(H0 "0 0644 a\n", 1, "sha256"),  /* no space after it */
        CASE("\n", 1, "sha256"),             /* an empty line */
        CASE(L("a") "\n", 2, "sha256"),
    };
    struct t *t = *state;
    enum mapq_err rc;
    char prefix[32];
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        t->err[0] = '\0';
        rc = mapq_manifest_parse(cases[i].text, cases[i].len, &t->back, t->err);
        snprintf(prefix, sizeof(prefix), "manifest line %d: ", cases[i].line);
        if (rc != MAPQ_EPROTO || strncmp(t->err, prefix, strlen(prefix)) != 0 ||
            strstr(t->err, cases[i].what) == NULL || t->back.n != 0 ||
            t->back.entries != NULL)
            fail_msg("case %zu: rc %d, err \"%s\"", i, rc, t->err);
    }
}

static void
test_manifest_parse_accepts(void **state)
{
    static const char text[] =
        H0 " 0 0644 .hidden\n" H0 " 10 0644 a..b/...\n" H0 " 0 0644 a\\b\r\n" H1
           " 7 0755 tab\there\n";
    struct t *t = *state;

    assert_int_equal(
        mapq_manifest_parse(text, sizeof(text) - 1, &t->back, t->err), MAPQ_OK);
    assert_int_equal(t->back.n, 4);
    assert_string_equal(t->back.entries[0].path, ".hidden");
    assert_string_equal(t->back.entries[1].path, "a..b/...");
    assert_int_equal(t->back.entries[1].size, 10);
    assert_string_equal(t->back.entries[2].path, "a\\b\r");
    assert_string_equal(t->back.entries[3].sha256, H1);
    assert_true(t->back.entries[3].exec);
    assert_false(t->back.entries[0].exec);
}

static void
test_manifest_path_ok(void **state)
{
    static const char *good[] = {
        "a",
        "a/b",
        "a b/c",
        ".a",
        "a.",
        "a..",
        "...",
        "\xc3\xa9/\xe2\x82\xac",
        "\xf0\x9f\x98\x80",
        "a\tb",
    };
    static const char *bad[] = {
        "",         "/",
        "/a",       "a/",
        "a//b",     ".",
        "..",       "a/./b",
        "a/..",     "../a",
        "a\nb",     "\xff",
        "\xc0\xaf", /* overlong '/' */ "\xed\xa0\x80", /* a surrogate */
        "\xc3",                                        /* cut short */
    };
    char long_path[MAPQ_MANIFEST_PATH_MAX + 2];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (!mapq_manifest_path_ok(good[i], strlen(good[i])))
            fail_msg("good[%zu] refused", i);
    }
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (mapq_manifest_path_ok(bad[i], strlen(bad[i])))
            fail_msg("bad[%zu] accepted", i);
    }
    assert_false(mapq_manifest_path_ok("a\0b", 3));
    assert_false(mapq_manifest_path_ok("ab", 0));
    memset(long_path, 'x', sizeof(long_path));
    long_path[100] = '/';
    assert_true(mapq_manifest_path_ok(long_path, MAPQ_MANIFEST_PATH_MAX));
    assert_false(mapq_manifest_path_ok(long_path, MAPQ_MANIFEST_PATH_MAX + 1));
}

static void
test_manifest_release_empty(void **state)
{
    struct mapq_manifest m = {NULL, 0};

    (void)state;
    mapq_manifest_release(&m);
    mapq_manifest_release(&m);
    assert_null(m.entries);
    assert_int_equal(m.n, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_manifest_scan_tree),
        T(test_manifest_scan_only_empty_dirs),
        T(test_manifest_scan_dir_with_trailing_slash),
        T(test_manifest_scan_refuses_symlink_to_file),
        T(test_manifest_scan_refuses_symlink_to_dir),
        T(test_manifest_scan_refuses_fifo),
        T(test_manifest_scan_refuses_socket),
        T(test_manifest_scan_refuses_newline_name),
        T(test_manifest_scan_refuses_non_utf8_name),
        T(test_manifest_scan_missing_dir),
        T(test_manifest_scan_file_as_dir),
        T(test_manifest_scan_symlink_as_dir),
        T(test_manifest_scan_unreadable_dir),
        T(test_manifest_scan_path_max),
        T(test_manifest_scan_files_max),
        T(test_manifest_format_parse_round_trip),
        T(test_manifest_empty_round_trip),
        T(test_manifest_scan_format_parse),
        T(test_manifest_parse_refuses),
        T(test_manifest_parse_accepts),
        T(test_manifest_path_ok),
        T(test_manifest_release_empty),
    };

    return cmocka_run_group_tests_name("manifest", tests, NULL, NULL);
}
