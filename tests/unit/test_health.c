/*
 * test_health.c - the agent's health file: touch creates and refreshes it,
 * check judges its age against a given clock, remove deletes it, and a
 * symbolic link in its place is never followed.
 */
#include "mapq_test.h"

#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapq_health.h"

/* A fixed file time for the checks: 2023-11-14 22:13:20 UTC. */
#define T0_S  1700000000
#define T0_MS ((int64_t)T0_S * 1000)

struct fixture {
    char dir[64];
    char path[PATH_MAX];
    char target[PATH_MAX];
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));

    snprintf(f->dir, sizeof(f->dir), "/tmp/mapq-health-XXXXXX");
    if (mkdtemp(f->dir) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/agent.health", f->dir);
    snprintf(f->target, sizeof(f->target), "%s/target", f->dir);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    unlink(f->path);
    unlink(f->target);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Sets path's times to T0 plus ms. */
static void
set_mtime(const char *path, int64_t ms)
{
    struct timespec ts[2];

    ts[0].tv_sec = T0_S + (time_t)(ms / 1000);
    ts[0].tv_nsec = (long)(ms % 1000) * 1000000;
    ts[1] = ts[0];
    assert_int_equal(utimensat(AT_FDCWD, path, ts, AT_SYMLINK_NOFOLLOW), 0);
}

static void
test_health_touch_creates_the_file(void **state)
{
    struct fixture *f = *state;
    char err[MAPQ_ERR_LEN];
    struct stat st;

    assert_int_equal(mapq_health_touch(f->path, err), MAPQ_OK);
    assert_int_equal(lstat(f->path, &st), 0);
    assert_true(S_ISREG(st.st_mode));
    assert_int_equal(st.st_size, 0);
}

static void
test_health_touch_refreshes_the_time(void **state)
{
    struct fixture *f = *state;
    char err[MAPQ_ERR_LEN];
    struct stat st;

    assert_int_equal(mapq_health_touch(f->path, err), MAPQ_OK);
    set_mtime(f->path, 0);
    assert_int_equal(mapq_health_touch(f->path, err), MAPQ_OK);
    assert_int_equal(stat(f->path, &st), 0);
    assert_true(st.st_mtim.tv_sec > T0_S);
}

static void
test_health_touch_error_names_the_file(void **state)
{
    struct fixture *f = *state;
    char err[MAPQ_ERR_LEN], path[PATH_MAX + 16];

    snprintf(path, sizeof(path), "%s/missing/agent.health", f->dir);
    assert_int_equal(mapq_health_touch(path, err), MAPQ_EIO);
    assert_non_null(strstr(err, path));
    assert_non_null(strstr(err, "No such file or directory"));
    assert_int_equal(mapq_health_touch(path, NULL), MAPQ_EIO);
}

/* A link planted where the file goes is not followed: its target is
 * neither created nor touched, and the check does not trust the link. */
static void
test_health_symlink_not_followed(void **state)
{
    struct fixture *f = *state;
    char err[MAPQ_ERR_LEN], msg[256];
    struct stat st;

    assert_int_equal(symlink(f->target, f->path), 0);
    mapq_health_touch(f->path, err);
    assert_int_equal(lstat(f->target, &st), -1);
    assert_int_equal(mapq_health_check(f->path, 10000, T0_MS, msg, sizeof(msg)),
                     MAPQ_EIO);
    assert_non_null(strstr(msg, "not a regular file"));
}

static void
test_health_check_fresh_and_stale(void **state)
{
    struct fixture *f = *state;
    char err[MAPQ_ERR_LEN], msg[256];

    assert_int_equal(mapq_health_touch(f->path, err), MAPQ_OK);
    set_mtime(f->path, 0);
    assert_int_equal(
        mapq_health_check(f->path, 10000, T0_MS + 5000, msg, sizeof(msg)),
        MAPQ_OK);
    assert_string_equal(msg, "heartbeat 5 s ago");
    /* max-age itself is still fresh; a millisecond more is not. */
    assert_int_equal(
        mapq_health_check(f->path, 10000, T0_MS + 10000, msg, sizeof(msg)),
        MAPQ_OK);
    assert_int_equal(
        mapq_health_check(f->path, 10000, T0_MS + 10001, msg, sizeof(msg)),
        MAPQ_ETIMEDOUT);
    assert_string_equal(msg, "no heartbeat for 10 s");
    assert_int_equal(
        mapq_health_check(f->path, 10000, T0_MS + 23400, msg, sizeof(msg)),
        MAPQ_ETIMEDOUT);
    assert_string_equal(msg, "no heartbeat for 23 s");
    assert_int_equal(
        mapq_health_check(f->path, 2000, T0_MS + 2500, msg, sizeof(msg)),
        MAPQ_ETIMEDOUT);
    /* A file time ahead of the clock (a clock step back) is fresh. */
    assert_int_equal(
        mapq_health_check(f->path, 10000, T0_MS - 60000, msg, sizeof(msg)),
        MAPQ_OK);
    assert_string_equal(msg, "heartbeat 0 s ago");
}

static void
test_health_check_missing_file(void **state)
{
    struct fixture *f = *state;
    char msg[PATH_MAX + 128];

    assert_int_equal(mapq_health_check(f->path, 10000, T0_MS, msg, sizeof(msg)),
                     MAPQ_ENOENT);
    assert_non_null(strstr(msg, "no health file"));
    assert_non_null(strstr(msg, "the agent has not reached redis yet"));
    assert_non_null(strstr(msg, f->path));
    /* A short buffer still gets a terminated line. */
    assert_int_equal(mapq_health_check(f->path, 10000, T0_MS, msg, 8),
                     MAPQ_ENOENT);
    assert_int_equal(strlen(msg), 7);
}

static void
test_health_remove(void **state)
{
    struct fixture *f = *state;
    char err[MAPQ_ERR_LEN], msg[PATH_MAX + 128];

    assert_int_equal(mapq_health_touch(f->path, err), MAPQ_OK);
    mapq_health_remove(f->path);
    assert_int_equal(access(f->path, F_OK), -1);
    assert_int_equal(mapq_health_check(f->path, 10000, T0_MS, msg, sizeof(msg)),
                     MAPQ_ENOENT);
    /* Removing what is not there, or nothing, is harmless. */
    mapq_health_remove(f->path);
    mapq_health_remove(NULL);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_health_touch_creates_the_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_touch_refreshes_the_time,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_touch_error_names_the_file,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_symlink_not_followed, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_health_check_fresh_and_stale,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_health_check_missing_file, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_health_remove, setup, teardown),
    };

    return cmocka_run_group_tests_name("health", tests, NULL, NULL);
}
