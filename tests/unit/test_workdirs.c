#include "mapq_test.h"

/*
 * test_workdirs.c - working directories made ahead and removed behind by
 * mapq_workdirs' thread, on a real file system: what is made, given out
 * and removed, an empty one given out again under a new name (and a
 * changed one never), and a root that goes away and comes back.
 *
 * The thread works on its own time, so every check of the root's contents
 * polls until the expected count, bounded by POLLS x POLL_MS.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_err.h"
#include "mapq_workdirs.h"

#define POLL_MS 5
#define POLLS   2000
#define TAKES   10

struct fx {
    char base[PATH_MAX]; /* holds root and outside */
    char root[PATH_MAX];
    char outside[PATH_MAX]; /* a file a task's link points at */
    struct mapq_workdirs *d;
    char err[MAPQ_ERR_LEN];
};

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    chmod(path, 0700);
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

static int
setup(void **state)
{
    struct fx *f = mapq_xcalloc(1, sizeof(*f));
    char tmpl[] = "/tmp/mapq-test-workdirs-XXXXXX";
    int fd;

    *state = f;
    if (mkdtemp(tmpl) == NULL || realpath(tmpl, f->base) == NULL)
        return -1;
    snprintf(f->root, sizeof(f->root), "%.4000s/root", f->base);
    snprintf(f->outside, sizeof(f->outside), "%.4000s/outside", f->base);
    if (mkdir(f->root, 0700) != 0)
        return -1;
    fd = open(f->outside, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    close(fd);
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    mapq_workdirs_free(f->d);
    if (f->base[0] != '\0')
        nftw(f->base, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(f);
    return 0;
}

/* Entries in the root (-1 when it cannot be read). */
static int
entries(const struct fx *f)
{
    DIR *dir = opendir(f->root);
    struct dirent *e;
    int n = 0;

    if (dir == NULL)
        return -1;
    for (e = readdir(dir); e != NULL; e = readdir(dir))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(dir);
    return n;
}

/* True once the root holds want entries and the thread counts ready of
 * them as made ahead, polled at most POLLS times. The thread makes a
 * directory on disk a moment before it counts it: a take in between finds
 * fewer ready than the disk shows, and the wake-ups that follow differ. */
static bool
settles_at(const struct fx *f, int want, size_t ready)
{
    struct timespec ts = {0, POLL_MS * 1000000L};
    int i;

    for (i = 0; i < POLLS; i++) {
        if (entries(f) == want && mapq_workdirs_ready(f->d) == ready)
            return true;
        nanosleep(&ts, NULL);
    }
    return false;
}

/* True once path no longer exists, polled at most POLLS times. */
static bool
goes(const char *path)
{
    struct timespec ts = {0, POLL_MS * 1000000L};
    struct stat sb;
    int i;

    for (i = 0; i < POLLS; i++) {
        if (lstat(path, &sb) != 0 && errno == ENOENT)
            return true;
        nanosleep(&ts, NULL);
    }
    return false;
}

/* Asserts that path is an empty directory of mode 0700 named
 * root/mapq-XXXXXX, without the attribute a test may give one. */
static void
assert_fresh(const struct fx *f, const char *path)
{
    char prefix[PATH_MAX + 8];
    struct stat sb;
    DIR *dir;
    struct dirent *e;
    int n = 0;

    snprintf(prefix, sizeof(prefix), "%s/mapq-", f->root);
    assert_int_equal(strncmp(path, prefix, strlen(prefix)), 0);
    assert_int_equal(strlen(path), strlen(prefix) + 6);
    assert_int_equal(lstat(path, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
    assert_int_equal(sb.st_mode & 07777, 0700);
    assert_int_equal(getxattr(path, "user.mapq-test", NULL, 0), -1);
    dir = opendir(path);
    assert_non_null(dir);
    for (e = readdir(dir); e != NULL; e = readdir(dir))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(dir);
    assert_int_equal(n, 0);
}

static void
test_workdirs_made_ahead_and_given_once(void **state)
{
    struct fx *f = *state;
    char *taken[TAKES];
    int i, j;

    f->d = mapq_workdirs_new(f->root, 2, f->err);
    assert_non_null(f->d);
    /* Two are made before anyone asks. */
    assert_true(settles_at(f, 2, 2));
    for (i = 0; i < TAKES; i++) {
        taken[i] = mapq_workdirs_take(f->d, f->err);
        assert_non_null(taken[i]);
        assert_fresh(f, taken[i]);
        for (j = 0; j < i; j++)
            assert_string_not_equal(taken[i], taken[j]);
        /* The second of each pair leaves none ready, which wakes the
         * thread: it makes two again. */
        if (i % 2 == 1)
            assert_true(settles_at(f, i + 1 + 2, 2));
    }
    for (i = 0; i < TAKES; i++)
        mapq_workdirs_drop(f->d, taken[i]);
    assert_true(settles_at(f, 2, 2));
}

static void
test_workdirs_drop_removes_the_tree(void **state)
{
    struct fx *f = *state;
    char *path, *keep, sub[PATH_MAX + 32], link[PATH_MAX + 32];
    struct stat sb;
    int fd;

    f->d = mapq_workdirs_new(f->root, 0, f->err);
    assert_non_null(f->d);
    path = mapq_workdirs_take(f->d, f->err);
    assert_non_null(path);
    assert_fresh(f, path);
    keep = mapq_xstrdup(path);
    /* Nested files, a link out of the directory and a directory left
     * without permissions. */
    snprintf(sub, sizeof(sub), "%s/a", path);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof(sub), "%s/a/b", path);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof(sub), "%s/a/b/f", path);
    fd = open(sub, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "x\n", 2), 2);
    close(fd);
    snprintf(link, sizeof(link), "%s/out", path);
    assert_int_equal(symlink(f->outside, link), 0);
    snprintf(sub, sizeof(sub), "%s/locked", path);
    assert_int_equal(mkdir(sub, 0700), 0);
    snprintf(sub, sizeof(sub), "%s/locked/f", path);
    fd = open(sub, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
    snprintf(sub, sizeof(sub), "%s/locked", path);
    assert_int_equal(chmod(sub, 0), 0);
    mapq_workdirs_drop(f->d, path);
    assert_true(goes(keep));
    assert_int_equal(entries(f), 0);
    /* The link was removed, not followed. */
    assert_int_equal(stat(f->outside, &sb), 0);
    free(keep);
}

/* Inode of path (0 when it cannot be read). */
static ino_t
inode_of(const char *path)
{
    struct stat sb;

    return lstat(path, &sb) == 0 ? sb.st_ino : 0;
}

/* Settles with two ready, takes one, lets fix() change it, drops it and
 * waits for its path to go: the thread, woken by the drop with one
 * ready of two, gives it out again or removes it. Then takes the two
 * ready ones into got[], each fresh at a path not given out before, and
 * returns the dropped one's inode. */
static ino_t
drop_one_and_take_two(struct fx *f, void (*fix)(const struct fx *, char *),
                      char *got[2])
{
    char *path, *keep;
    ino_t ino;

    f->d = mapq_workdirs_new(f->root, 2, f->err);
    assert_non_null(f->d);
    assert_true(settles_at(f, 2, 2));
    path = mapq_workdirs_take(f->d, f->err);
    assert_non_null(path);
    keep = mapq_xstrdup(path);
    ino = inode_of(path);
    if (fix != NULL)
        fix(f, path);
    mapq_workdirs_drop(f->d, path);
    assert_true(goes(keep));
    assert_true(settles_at(f, 2, 2));
    got[0] = mapq_workdirs_take(f->d, f->err);
    got[1] = mapq_workdirs_take(f->d, f->err);
    assert_non_null(got[0]);
    assert_non_null(got[1]);
    assert_fresh(f, got[0]);
    assert_fresh(f, got[1]);
    assert_string_not_equal(got[0], keep);
    assert_string_not_equal(got[1], keep);
    free(keep);
    return ino;
}

static void
test_workdirs_empty_one_given_out_again_renamed(void **state)
{
    struct fx *f = *state;
    char *got[2];
    ino_t ino = drop_one_and_take_two(f, NULL, got);

    /* Not removed and made again: the same directory, renamed. */
    assert_true(inode_of(got[0]) == ino || inode_of(got[1]) == ino);
    free(got[0]);
    free(got[1]);
}

static void
leave_a_file(const struct fx *f, char *path)
{
    char file[PATH_MAX + 8];
    int fd;

    (void)f;
    snprintf(file, sizeof(file), "%s/left", path);
    fd = open(file, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    assert_true(fd >= 0);
    close(fd);
}

static void
open_its_mode(const struct fx *f, char *path)
{
    (void)f;
    assert_int_equal(chmod(path, 0755), 0);
}

static void
give_it_an_attribute(const struct fx *f, char *path)
{
    (void)f;
    /* A file system without user attributes: it stays as made. */
    if (setxattr(path, "user.mapq-test", "x", 1, 0) != 0)
        assert_true(errno == ENOTSUP);
}

static void
link_in_its_place(const struct fx *f, char *path)
{
    char target[PATH_MAX + 16];

    /* A directory of the same shape elsewhere, linked at its path. */
    snprintf(target, sizeof(target), "%.4000s/elsewhere", f->base);
    assert_int_equal(mkdir(target, 0700), 0);
    assert_int_equal(rmdir(path), 0);
    assert_int_equal(symlink(target, path), 0);
}

static void
test_workdirs_changed_one_removed_not_given_out(void **state)
{
    void (*fixes[])(const struct fx *, char *) = {
        leave_a_file, open_its_mode, give_it_an_attribute, link_in_its_place};
    struct fx *f = *state;
    char *got[2], target[PATH_MAX + 16];
    struct stat sb;
    size_t i;

    for (i = 0; i < sizeof(fixes) / sizeof(fixes[0]); i++) {
        /* assert_fresh() in the helper: empty, 0700, under root. */
        drop_one_and_take_two(f, fixes[i], got);
        mapq_workdirs_drop(f->d, got[0]);
        mapq_workdirs_drop(f->d, got[1]);
        mapq_workdirs_free(f->d);
        f->d = NULL;
        assert_int_equal(entries(f), 0);
    }
    /* The link was removed, not followed. */
    snprintf(target, sizeof(target), "%.4000s/elsewhere", f->base);
    assert_int_equal(stat(target, &sb), 0);
    assert_true(S_ISDIR(sb.st_mode));
}

static void
test_workdirs_free_removes_what_it_holds(void **state)
{
    struct fx *f = *state;
    char *kept, *dropped;
    struct stat sb;

    f->d = mapq_workdirs_new(f->root, 3, f->err);
    assert_non_null(f->d);
    assert_true(settles_at(f, 3, 3));
    kept = mapq_workdirs_take(f->d, f->err);
    dropped = mapq_workdirs_take(f->d, f->err);
    assert_non_null(kept);
    assert_non_null(dropped);
    mapq_workdirs_drop(f->d, dropped);
    /* Freed at once: the dropped one and those made ahead go with it,
     * the one still taken stays its taker's. */
    mapq_workdirs_free(f->d);
    f->d = NULL;
    assert_int_equal(entries(f), 1);
    assert_int_equal(stat(kept, &sb), 0);
    free(kept);
}

static void
test_workdirs_root_gone_and_back(void **state)
{
    struct fx *f = *state;
    char *path, *keep;

    f->d = mapq_workdirs_new(f->root, 1, f->err);
    assert_non_null(f->d);
    assert_true(settles_at(f, 1, 1));
    path = mapq_workdirs_take(f->d, f->err);
    assert_non_null(path);
    keep = mapq_xstrdup(path);
    mapq_workdirs_drop(f->d, path);
    /* Once the dropped one is gone and another is made ahead, the thread
     * has nothing to do. Then the root disappears: what was made ahead
     * goes with it, and the thread cannot make another. */
    assert_true(goes(keep));
    free(keep);
    assert_true(settles_at(f, 1, 1));
    nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    path = mapq_workdirs_take(f->d, f->err);
    if (path != NULL) {
        /* The one made ahead was taken before the root went: its path is
         * gone now; the next take must fail. */
        free(path);
        path = mapq_workdirs_take(f->d, f->err);
    }
    assert_null(path);
    assert_non_null(strstr(f->err, "cannot create a working directory in '"));
    assert_non_null(strstr(f->err, f->root));
    /* Back again: the next take works, and the thread makes ahead once
     * more. */
    assert_int_equal(mkdir(f->root, 0700), 0);
    path = mapq_workdirs_take(f->d, f->err);
    assert_non_null(path);
    assert_fresh(f, path);
    assert_true(settles_at(f, 2, 1));
    mapq_workdirs_drop(f->d, path);
    assert_true(settles_at(f, 1, 1));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_workdirs_made_ahead_and_given_once,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_workdirs_drop_removes_the_tree,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_workdirs_empty_one_given_out_again_renamed, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_workdirs_changed_one_removed_not_given_out, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_workdirs_free_removes_what_it_holds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_workdirs_root_gone_and_back, setup,
                                        teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
