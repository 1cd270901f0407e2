/*
 * mapq_guard.c - the agent's guardian process and the agent's side of its
 * pipe.
 *
 * Protocol: a stream of native int32 records, +pgid to register a process
 * group, -pgid to unregister it. Every write is a whole number of records
 * of at most PIPE_BUF bytes, so it is atomic: all of it or EAGAIN.
 *
 * The agent's side owns the pipe's write end (non-blocking, close-on-exec,
 * above the standard descriptors) and the records a full pipe held back.
 * Held-back records stay bounded without dropping any: an unregistration
 * cancels its own registration still waiting, so what waits is at most one
 * record per group running and one per group that ended during the stall.
 * Dropping one instead could make the guardian kill a group number that
 * has since been reused.
 *
 * The guardian's side (guard_main(), in the forked child) owns the set of
 * registered groups and nothing else: it never returns, never execs and
 * leaves with _exit().
 */
#include "mapq_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_log.h"

/* Records per write or read: PIPE_BUF bytes, the atomic maximum. */
#define RECS_PER_WRITE (PIPE_BUF / sizeof(int32_t))
#define STOP_WAIT_MS   5000
/* The guardian reads at most this often; see guard_main(). */
#define BATCH_MS 20

/* The agent's side; fd < 0 once the guardian is stopped or gone. */
static struct {
    pid_t pid;        /* the guardian, -1 when none was started */
    int fd;           /* write end of the pipe, -1 when closed */
    int32_t *pending; /* records a full pipe held back, oldest first */
    size_t npending, cap;
    size_t nadds;     /* registrations among them */
    bool warned_full; /* "the pipe is full" was logged */
} g = {.pid = -1, .fd = -1};

/* The registered groups, in the guardian. */
struct groups {
    pid_t *v;
    size_t n, cap;
    pid_t agent, self; /* never registered */
};

/* ---- the guardian ----------------------------------------------------- */

/* Only interrupts ppoll(): the loop then checks whether the agent is
 * gone. */
static void
guard_term_handler(int sig)
{
    (void)sig;
}

/* Own process group, terminal and user signals ignored, SIGTERM blocked
 * except while waiting, and SIGTERM when the agent's thread dies. */
static void
guard_signals(sigset_t *wait_mask)
{
    static const int ignored[] = {SIGHUP,    SIGINT,  SIGQUIT, SIGPIPE, SIGALRM,
                                  SIGUSR1,   SIGUSR2, SIGTSTP, SIGTTIN, SIGTTOU,
                                  SIGVTALRM, SIGPROF, SIGIO,   SIGPWR};
    struct sigaction sa;
    sigset_t term;
    size_t i;

    /* Out of the agent's group: a signal sent to that group (Ctrl-C,
     * kill -9 -PGID) must leave the guardian to clean up after it. */
    setpgid(0, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_IGN;
    for (i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++)
        sigaction(ignored[i], &sa, NULL);
    sa.sa_handler = guard_term_handler;
    sigaction(SIGTERM, &sa, NULL);
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    sigprocmask(SIG_SETMASK, &term, NULL);
    sigemptyset(wait_mask);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
}

/* Keeps only stderr and the pipe (moved to 3, non-blocking); returns the
 * pipe's descriptor. */
static int
guard_fds(int fd)
{
    if (fd != 3 && dup2(fd, 3) == 3)
        fd = 3;
    close_range((unsigned)fd + 1, ~0U, 0);
    if (fd > 3)
        close_range(3, (unsigned)fd - 1, 0);
    close(0);
    close(1);
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void
groups_apply(struct groups *s, int32_t rec)
{
    int64_t v = rec < 0 ? -(int64_t)rec : rec;
    pid_t pgid = (pid_t)v;
    size_t i;

    /* Never 0 or 1: kill(-1) would reach every process we may signal. */
    if (v <= 1 || v > INT32_MAX || pgid == s->agent || pgid == s->self)
        return;
    if (rec > 0) {
        if (s->n == s->cap) {
            s->cap = s->cap ? 2 * s->cap : 64;
            s->v = mapq_xrealloc(s->v, s->cap * sizeof(*s->v));
        }
        s->v[s->n++] = pgid;
        return;
    }
    /* Linear: at most one group per slot is registered. */
    for (i = s->n; i-- > 0;) {
        if (s->v[i] == pgid) {
            s->v[i] = s->v[--s->n];
            return;
        }
    }
}

static void
groups_kill(const struct groups *s)
{
    size_t i, killed = 0;

    for (i = 0; i < s->n; i++)
        if (kill(-s->v[i], SIGKILL) == 0)
            killed++;
    if (killed > 0)
        mapq_log(MAPQ_LOG_WARN,
                 "agent %ld is gone: killed %zu process groups of its "
                 "commands",
                 (long)s->agent, killed);
}

/*
 * Reads records until the agent is gone: EOF, or, once the pipe is
 * drained, a parent that is no longer the agent (a child that forked
 * without exec may still hold the write end). Then kills what is left.
 *
 * Once drained it sleeps BATCH_MS before waiting on the pipe again: the
 * records of that time arrive as one batch, and the agent's writes seldom
 * find a waiting reader to wake, which would cost it microseconds per
 * command. The agent's death is then seen at most BATCH_MS late.
 */
static _Noreturn void
guard_main(int fd, pid_t agent)
{
    unsigned char buf[PIPE_BUF];
    struct groups s = {.agent = agent, .self = getpid()};
    struct timespec batch = {0, BATCH_MS * 1000000L};
    struct pollfd pfd;
    sigset_t wait_mask;
    size_t have = 0, i;
    int32_t rec;
    ssize_t n;

    mapq_log_init("mapq-guard", mapq_log_threshold);
    guard_signals(&wait_mask);
    pfd.fd = guard_fds(fd);
    pfd.events = POLLIN;
    for (;;) {
        n = read(pfd.fd, buf + have, sizeof(buf) - have);
        if (n > 0) {
            have += (size_t)n;
            for (i = 0; i + sizeof(rec) <= have; i += sizeof(rec)) {
                memcpy(&rec, buf + i, sizeof(rec));
                groups_apply(&s, rec);
            }
            memmove(buf, buf + i, have - i);
            have -= i;
            continue;
        }
        if (n == 0 || (errno != EINTR && errno != EAGAIN))
            break;
        if (errno == EAGAIN && getppid() != agent)
            break;
        nanosleep(&batch, NULL);
        /* SIGTERM (the parent-death signal) is let in only here. */
        ppoll(&pfd, 1, NULL, &wait_mask);
    }
    groups_kill(&s);
    free(s.v);
    _exit(0);
}

/* ---- the agent's side ------------------------------------------------- */

/* pipe2(O_CLOEXEC) with both ends above stderr: a daemon started with
 * stdio closed must not log into the pipe. */
static int
make_pipe(int p[2])
{
    int i, fd;

    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    for (i = 0; i < 2; i++) {
        if (p[i] > 2)
            continue;
        fd = fcntl(p[i], F_DUPFD_CLOEXEC, 3);
        close(p[i]);
        p[i] = fd;
    }
    if (p[0] >= 0 && p[1] >= 0)
        return 0;
    if (p[0] >= 0)
        close(p[0]);
    if (p[1] >= 0)
        close(p[1]);
    return -1;
}

enum mapq_err
mapq_guard_start(char *err)
{
    pid_t agent = getpid(), pid;
    int p[2], e;

    mapq_assert(g.pid < 0);
    if (make_pipe(p) != 0)
        return mapq_err_set(err, MAPQ_EIO,
                            "cannot create the guardian's pipe: %s",
                            strerror(errno));
    pid = fork();
    if (pid == 0)
        guard_main(p[0], agent);
    e = errno;
    close(p[0]);
    if (pid < 0) {
        close(p[1]);
        return mapq_err_set(err, MAPQ_EIO, "cannot fork the guardian: %s",
                            strerror(e));
    }
    fcntl(p[1], F_SETFL, O_NONBLOCK);
    g.pid = pid;
    g.fd = p[1];
    return MAPQ_OK;
}

/* The guardian's read end is closed: stop talking to it. */
static void
lost(int e)
{
    mapq_log_errno(MAPQ_LOG_ERROR, e,
                   "the guardian (pid %ld) is gone: commands are no longer "
                   "killed with the agent",
                   (long)g.pid);
    close(g.fd);
    g.fd = -1;
    free(g.pending);
    g.pending = NULL;
    g.npending = g.cap = g.nadds = 0;
}

/* One atomic write of n <= RECS_PER_WRITE records; 0 or an errno. */
static int
send_records(const int32_t *recs, size_t n)
{
    ssize_t w;

    do {
        w = write(g.fd, recs, n * sizeof(*recs));
    } while (w < 0 && errno == EINTR);
    if (w < 0)
        return errno;
    mapq_assert((size_t)w == n * sizeof(*recs));
    return 0;
}

bool
mapq_guard_flush(void)
{
    size_t off = 0, n;
    int e = 0;

    if (g.fd < 0 || g.npending == 0)
        return true;
    while (off < g.npending && e == 0) {
        n = g.npending - off < RECS_PER_WRITE ? g.npending - off
                                              : RECS_PER_WRITE;
        e = send_records(g.pending + off, n);
        if (e == 0)
            off += n;
    }
    for (n = 0; n < off; n++)
        if (g.pending[n] > 0)
            g.nadds--;
    memmove(g.pending, g.pending + off,
            (g.npending - off) * sizeof(*g.pending));
    g.npending -= off;
    if (e != 0 && e != EAGAIN)
        lost(e);
    return g.npending == 0;
}

/* Keeps rec for later; -pgid cancels a +pgid still waiting. */
static void
hold(int32_t rec)
{
    size_t i;

    for (i = g.npending; rec < 0 && g.nadds > 0 && i-- > 0;) {
        if (g.pending[i] == -rec) {
            memmove(g.pending + i, g.pending + i + 1,
                    (g.npending - i - 1) * sizeof(*g.pending));
            g.npending--;
            g.nadds--;
            return;
        }
    }
    if (g.npending == g.cap) {
        g.cap = g.cap ? 2 * g.cap : 64;
        g.pending = mapq_xrealloc(g.pending, g.cap * sizeof(*g.pending));
    }
    g.pending[g.npending++] = rec;
    if (rec > 0)
        g.nadds++;
}

static void
record(int32_t rec)
{
    bool clear;
    int e = EAGAIN;

    if (g.fd < 0)
        return;
    clear = mapq_guard_flush();
    if (g.fd < 0)
        return;
    if (clear)
        e = send_records(&rec, 1);
    if (e == 0)
        return;
    if (e != EAGAIN) {
        lost(e);
        return;
    }
    if (!g.warned_full)
        mapq_log(MAPQ_LOG_WARN,
                 "the guardian (pid %ld) is not reading its pipe: its "
                 "records wait in memory",
                 (long)g.pid);
    g.warned_full = true;
    hold(rec);
}

void
mapq_guard_add(pid_t pgid)
{
    if (pgid > 1)
        record((int32_t)pgid);
}

void
mapq_guard_remove(pid_t pgid)
{
    if (pgid > 1)
        record(-(int32_t)pgid);
}

pid_t
mapq_guard_pid(void)
{
    return g.pid;
}

void
mapq_guard_stop(void)
{
    struct pollfd pfd;
    int st;

    if (g.pid < 0)
        return;
    mapq_guard_flush();
    if (g.fd >= 0)
        close(g.fd);
    g.fd = -1;
    free(g.pending);
    g.pending = NULL;
    g.npending = g.cap = g.nadds = 0;
    /* A pidfd turns readable when the guardian exits: a bounded wait
     * without polling waitpid(). Where there is none (old kernels,
     * valgrind), waitpid() is polled for as long. */
    pfd.fd = pidfd_open(g.pid, 0);
    pfd.events = POLLIN;
    if (pfd.fd >= 0) {
        while (poll(&pfd, 1, STOP_WAIT_MS) < 0 && errno == EINTR)
            ;
        close(pfd.fd);
    } else {
        struct timespec tick = {0, 10 * 1000000L};
        int i;

        for (i = 0; i < STOP_WAIT_MS / 10; i++) {
            if (waitpid(g.pid, &st, WNOHANG) == g.pid)
                break;
            nanosleep(&tick, NULL);
        }
    }
    while (waitpid(g.pid, &st, WNOHANG) < 0 && errno == EINTR)
        ;
    g.pid = -1;
}
