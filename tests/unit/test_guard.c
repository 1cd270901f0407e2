#include "mapq_test.h"

/*
 * test_guard.c - the agent's guardian with real processes: a process
 * playing the agent starts the guardian, registers a process group running
 * `sh -c 'sleep 60 & sleep 60; wait'` (a shell, a background and a
 * foreground child), waits until all three run, reports, and then dies;
 * the test checks which groups are left.
 *
 * The test process is a child subreaper, so that the agent's orphans (the
 * guardian, the shell and its children) are reparented to it and reaped
 * here: a group is gone once kill(-pgid, 0) fails with ESRCH. Every wait is
 * a bounded poll.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mapq_guard.h"

#define WAIT_MS    5000
#define POLL_MS    10
#define GROUP_SIZE 3 /* sh and its two sleeps */
/* Linux's PID_MAX_LIMIT: numbers above it are never a process group. */
#define NOT_A_PID 4194304
#define FLOOD     20000 /* records: more than a 64 KiB pipe holds */

extern char **environ;

/* How the process playing the agent behaves. */
enum agent_mode {
    AGENT_EXITS,   /* _exit() with the group registered */
    AGENT_KILLED,  /* waits for the test's SIGKILL, group registered */
    AGENT_REMOVES, /* unregisters the group, then _exit() */
    AGENT_STALLS,  /* floods a stopped guardian, registers, _exit() */
    AGENT_LEAKS,   /* forks a child that keeps the pipe open, _exit() */
};

/* What the agent reports on its pipe. */
struct report {
    pid_t pgid, guard;
    pid_t holder; /* AGENT_LEAKS: holds the pipe's write end */
    int stalled;  /* AGENT_STALLS: the pipe was full and records waited */
};

struct fx {
    pid_t agent; /* the process playing the agent, -1 once reaped */
    struct report r;
    bool guard_reaped;
};

/* ---- helpers ---------------------------------------------------------- */

static int64_t
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, ms % 1000 * 1000000};

    nanosleep(&ts, NULL);
}

/* Reaps every exited child; notes the guardian's exit. */
static void
reap(struct fx *fx)
{
    pid_t pid;

    while ((pid = waitpid(-1, NULL, WNOHANG)) > 0) {
        if (pid == fx->r.guard)
            fx->guard_reaped = true;
        if (pid == fx->agent)
            fx->agent = -1;
    }
}

/* Processes in group pgid, zombies included. */
static int
group_size(pid_t pgid)
{
    struct dirent *de;
    DIR *d = opendir("/proc");
    int n = 0;
    long pid;
    char *end;

    if (d == NULL)
        return -1;
    while ((de = readdir(d)) != NULL) {
        pid = strtol(de->d_name, &end, 10);
        if (*end == '\0' && pid > 0 && getpgid((pid_t)pid) == pgid)
            n++;
    }
    closedir(d);
    return n;
}

static bool
group_gone(pid_t pgid)
{
    return kill(-pgid, 0) == -1 && errno == ESRCH;
}

/* Polls (reaping) until the group is gone; false after WAIT_MS. */
static bool
wait_group_gone(struct fx *fx, pid_t pgid)
{
    int64_t deadline = now_ms() + WAIT_MS;

    for (;;) {
        reap(fx);
        if (group_gone(pgid))
            return true;
        if (now_ms() > deadline)
            return false;
        pause_ms(POLL_MS);
    }
}

/* Polls until the group has all its processes; false after WAIT_MS. */
static bool
wait_group_full(pid_t pgid)
{
    int64_t deadline = now_ms() + WAIT_MS;

    while (group_size(pgid) < GROUP_SIZE) {
        if (now_ms() > deadline)
            return false;
        pause_ms(POLL_MS);
    }
    return true;
}

/* Polls (reaping) until the guardian has exited; false after WAIT_MS. */
static bool
wait_guard_reaped(struct fx *fx)
{
    int64_t deadline = now_ms() + WAIT_MS;

    for (;;) {
        reap(fx);
        if (fx->guard_reaped)
            return true;
        if (now_ms() > deadline)
            return false;
        pause_ms(POLL_MS);
    }
}

/* ---- the process playing the agent ------------------------------------ */

/* Starts the shell in a process group of its own, as the agent does, on
 * /dev/null: a group left over must not hold the test's output open. */
static pid_t
start_group(void)
{
    char sh[] = "sh", c[] = "-c", script[] = "sleep 60 & sleep 60; wait";
    char *argv[] = {sh, c, script, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    pid_t pid = -1;
    int i;

    posix_spawn_file_actions_init(&fa);
    for (i = 0; i < 3; i++)
        posix_spawn_file_actions_addopen(&fa, i, "/dev/null", O_RDWR, 0);
    posix_spawnattr_init(&at);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP);
    if (posix_spawn(&pid, "/bin/sh", &fa, &at, argv, environ) != 0)
        pid = -1;
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    return pid;
}

/* Leaves the agent after killing its group: a failure must not leave the
 * group to the guardian under test. */
static _Noreturn void
agent_fail(pid_t pgid, int code)
{
    if (pgid > 1)
        kill(-pgid, SIGKILL);
    _exit(code);
}

/* Stops the guardian, sends it more records than the pipe holds, then
 * lets it read again and waits until every record is sent. */
static int
stall(pid_t guard)
{
    int64_t deadline;
    int i, st, stalled;

    if (kill(guard, SIGSTOP) != 0 || waitpid(guard, &st, WUNTRACED) != guard)
        return -1;
    /* Unregistering groups that never were: harmless records. */
    for (i = 1; i <= FLOOD; i++)
        mapq_guard_remove(NOT_A_PID + i);
    stalled = !mapq_guard_flush();
    kill(guard, SIGCONT);
    deadline = now_ms() + WAIT_MS;
    while (!mapq_guard_flush() && now_ms() < deadline)
        pause_ms(1);
    return mapq_guard_flush() ? stalled : -1;
}

static _Noreturn void
play_agent(enum agent_mode mode, int out)
{
    struct report r = {0};
    char err[MAPQ_ERR_LEN];

    signal(SIGPIPE, SIG_IGN);
    if (mapq_guard_start(err) != MAPQ_OK)
        _exit(2);
    r.guard = mapq_guard_pid();
    r.pgid = start_group();
    if (r.pgid < 0 || !wait_group_full(r.pgid))
        agent_fail(r.pgid, 3);
    if (mode == AGENT_STALLS) {
        r.stalled = stall(r.guard);
        if (r.stalled < 0)
            agent_fail(r.pgid, 4);
    }
    mapq_guard_add(r.pgid);
    if (mode == AGENT_REMOVES)
        mapq_guard_remove(r.pgid);
    /* As a fork without exec (an isolated plugin call) does: the pipe
     * stays open, so only the parent-death signal tells the guardian. */
    if (mode == AGENT_LEAKS) {
        r.holder = fork();
        if (r.holder == 0)
            for (;;)
                pause();
        if (r.holder < 0)
            agent_fail(r.pgid, 6);
    }
    if (write(out, &r, sizeof(r)) != (ssize_t)sizeof(r))
        agent_fail(r.pgid, 5);
    if (mode == AGENT_KILLED)
        for (;;)
            pause();
    _exit(0);
}

/* Forks the agent and reads its report (bounded); false on failure. */
static bool
fork_agent(struct fx *fx, enum agent_mode mode)
{
    struct pollfd pfd;
    int p[2];
    ssize_t n = -1;

    if (pipe2(p, O_CLOEXEC) != 0)
        return false;
    fx->agent = fork();
    if (fx->agent == 0) {
        close(p[0]);
        play_agent(mode, p[1]);
    }
    close(p[1]);
    pfd.fd = p[0];
    pfd.events = POLLIN;
    if (fx->agent > 0 && poll(&pfd, 1, 2 * WAIT_MS) == 1)
        n = read(p[0], &fx->r, sizeof(fx->r));
    close(p[0]);
    return n == (ssize_t)sizeof(fx->r);
}

/* ---- fixture ---------------------------------------------------------- */

static int
group_setup(void **state)
{
    (void)state;
    if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
        return -1;
    return 0;
}

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    fx->agent = -1;
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;

    if (fx->agent > 0)
        kill(fx->agent, SIGKILL);
    if (fx->r.holder > 1)
        kill(fx->r.holder, SIGKILL);
    if (fx->r.pgid > 1)
        kill(-fx->r.pgid, SIGKILL);
    if (fx->r.guard > 1 && !fx->guard_reaped)
        kill(fx->r.guard, SIGKILL);
    if (fx->r.pgid > 1)
        wait_group_gone(fx, fx->r.pgid);
    if (fx->r.guard > 1)
        wait_guard_reaped(fx);
    reap(fx);
    free(fx);
    return 0;
}

/* ---- tests ------------------------------------------------------------ */

/* The agent exits without unregistering: the whole group is killed. */
static void
test_guard_agent_exit_kills_group(void **state)
{
    struct fx *fx = *state;

    assert_true(fork_agent(fx, AGENT_EXITS));
    assert_true(wait_group_gone(fx, fx->r.pgid));
    assert_true(wait_guard_reaped(fx));
}

/* kill -9 of the agent, with the group running: the group is killed. */
static void
test_guard_agent_sigkill_kills_group(void **state)
{
    struct fx *fx = *state;

    assert_true(fork_agent(fx, AGENT_KILLED));
    assert_int_equal(group_size(fx->r.pgid), GROUP_SIZE);
    assert_int_equal(kill(fx->agent, SIGKILL), 0);
    assert_int_equal(waitpid(fx->agent, NULL, 0), fx->agent);
    fx->agent = -1;
    assert_true(wait_group_gone(fx, fx->r.pgid));
    assert_true(wait_guard_reaped(fx));
}

/* A group unregistered before the agent exits is left alone. */
static void
test_guard_removed_group_survives(void **state)
{
    struct fx *fx = *state;

    assert_true(fork_agent(fx, AGENT_REMOVES));
    /* The guardian has seen EOF and done all it will do. */
    assert_true(wait_guard_reaped(fx));
    assert_int_equal(group_size(fx->r.pgid), GROUP_SIZE);
}

/* A full pipe neither blocks the agent nor loses a record: one registered
 * after the flood is still delivered, and its group killed. */
static void
test_guard_full_pipe_holds_records(void **state)
{
    struct fx *fx = *state;

    assert_true(fork_agent(fx, AGENT_STALLS));
    assert_int_equal(fx->r.stalled, 1);
    assert_true(wait_group_gone(fx, fx->r.pgid));
    assert_true(wait_guard_reaped(fx));
}

/* A child of the agent still holds the pipe: the guardian learns of the
 * agent's death from its parent-death signal and still kills the group. */
static void
test_guard_parent_death_signal_kills_group(void **state)
{
    struct fx *fx = *state;

    assert_true(fork_agent(fx, AGENT_LEAKS));
    assert_true(fx->r.holder > 0);
    assert_true(wait_group_gone(fx, fx->r.pgid));
    assert_true(wait_guard_reaped(fx));
    assert_int_equal(kill(fx->r.holder, 0), 0);
}

/* Without a guardian every call is a no-op. */
static void
test_guard_not_started_is_noop(void **state)
{
    (void)state;
    assert_int_equal(mapq_guard_pid(), -1);
    mapq_guard_add(12345);
    mapq_guard_remove(12345);
    assert_true(mapq_guard_flush());
    mapq_guard_stop();
    assert_int_equal(mapq_guard_pid(), -1);
}

/* An orderly stop: the guardian exits and is reaped. */
static void
test_guard_stop_reaps_guardian(void **state)
{
    char err[MAPQ_ERR_LEN];
    pid_t guard;

    (void)state;
    signal(SIGPIPE, SIG_IGN);
    assert_int_equal(mapq_guard_start(err), MAPQ_OK);
    guard = mapq_guard_pid();
    assert_true(guard > 0);
    mapq_guard_stop();
    assert_int_equal(mapq_guard_pid(), -1);
    assert_true(kill(guard, 0) == -1 && errno == ESRCH);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_guard_agent_exit_kills_group,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_guard_agent_sigkill_kills_group,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_guard_removed_group_survives,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_guard_full_pipe_holds_records,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_guard_parent_death_signal_kills_group, setup, teardown),
        cmocka_unit_test_setup_teardown(test_guard_not_started_is_noop, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_guard_stop_reaps_guardian, setup,
                                        teardown),
    };

    return cmocka_run_group_tests_name("guard", tests, group_setup, NULL);
}
