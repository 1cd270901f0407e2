/*
 * mapq_worker.c - a persistent worker process of a command task: the
 * controller of the process's life cycle and of the job it serves (SPEC
 * section 9).
 *
 * A worker owns its process's group, the parent ends of its pipes, the
 * events watching them and its working directory; this file creates and
 * frees them, registers every event and decides when a job ends. Its
 * leaves do the rest: worker_spawn.c starts the process, worker_proto.c
 * builds the request line, reads the reply and builds results.
 *
 * Two small state machines (worker_int.h): the process (NONE, UP, DYING)
 * and the job (NONE, SENT, ENDING, DONE). A reply ends a job and keeps
 * the process; every other end of a job ends the process first, and the
 * job's result is built once the process is reaped and its pipes are
 * closed, so that its exit status, last stderr and checkpoint are known.
 * Nothing here blocks the loop: the pipes are non-blocking, stdout is
 * kept only up to the line cap, stderr is read all the time, exits arrive
 * through mapq_worker_reaped() or a waitpid(WNOHANG) on the worker's own
 * pid, and the done callback always runs from a deferred event.
 */
#include "mapq_worker.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>

#include "mapq_alloc.h"
#include "mapq_guard.h"
#include "mapq_log.h"
#include "mapq_proc.h"
#include "mapq_value.h"
#include "worker_int.h"

/* Once the process is reaped and its group killed, how long to wait for
 * EOF from a process that left the group but still holds a pipe. */
#define DRAIN_MS 1000
/* While a process dies and no reaper reported it, how often to look. */
#define REAP_POLL_MS 20
/* Reads per readable pipe and loop pass, so that one chatty process
 * cannot starve the loop. */
#define READS_PER_CB 16

static LIST_HEAD(, mapq_worker) live = LIST_HEAD_INITIALIZER(live);

static void worker_read_cb(evutil_socket_t fd, short what, void *arg);
static void worker_write_cb(evutil_socket_t fd, short what, void *arg);
static void worker_timer_cb(evutil_socket_t fd, short what, void *arg);
static void worker_watch_cb(evutil_socket_t fd, short what, void *arg);
static void worker_finish_cb(evutil_socket_t fd, short what, void *arg);

/* ---- state ------------------------------------------------------------ */

static const bool proc_legal[WPROC_NSTATES][WPROC_NSTATES] = {
    [WPROC_NONE][WPROC_UP] = true,
    [WPROC_UP][WPROC_DYING] = true,
    [WPROC_DYING][WPROC_NONE] = true,
};

static const bool job_legal[WJOB_NSTATES][WJOB_NSTATES] = {
    [WJOB_NONE][WJOB_SENT] = true,   [WJOB_NONE][WJOB_DONE] = true,
    [WJOB_SENT][WJOB_ENDING] = true, [WJOB_SENT][WJOB_DONE] = true,
    [WJOB_ENDING][WJOB_DONE] = true, [WJOB_DONE][WJOB_NONE] = true,
    [WJOB_ENDING][WJOB_SENT] = true, /* resent to a new process */
};

static void
set_proc(struct mapq_worker *w, enum worker_proc to)
{
    static const char *const names[] = {"none", "up", "dying"};

    mapq_assert(proc_legal[w->proc][to]);
    mapq_log(MAPQ_LOG_DEBUG, "worker '%s' pid %d: process %s -> %s", w->name,
             (int)w->pid, names[w->proc], names[to]);
    w->proc = to;
}

static void
set_job(struct mapq_worker *w, enum worker_job to)
{
    static const char *const names[] = {"none", "sent", "ending", "done"};

    mapq_assert(job_legal[w->job][to]);
    mapq_log(MAPQ_LOG_DEBUG, "worker '%s' pid %d: job %s -> %s", w->name,
             (int)w->pid, names[w->job], names[to]);
    w->job = to;
}

/* ---- helpers ---------------------------------------------------------- */

static int64_t
wall_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_REALTIME, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void
add_ms(struct event *ev, int64_t ms)
{
    struct timeval tv;

    tv.tv_sec = (time_t)(ms / 1000);
    tv.tv_usec = (suseconds_t)(ms % 1000 * 1000);
    evtimer_add(ev, &tv);
}

/* Hands w's working directory over for removal (mapq_workdirs.h). */
static void
remove_dir(struct mapq_worker *w)
{
    mapq_workdirs_drop(w->dirs, w->dir);
    w->dir = NULL;
}

/* Closes pipe i and frees its event; a closed pipe is left alone. */
static void
close_pipe(struct mapq_worker *w, int i)
{
    if (w->ev[i] != NULL)
        event_free(w->ev[i]);
    w->ev[i] = NULL;
    worker_close_fd(&w->fd[i]);
    if (i == WPIPE_IN) {
        mapq_buf_release(&w->in);
        w->in_off = 0;
    }
}

/* Empties the stdout line, giving back a large buffer. */
static void
reset_line(struct mapq_worker *w)
{
    size_t max = w->line.max;

    if (w->line.cap > WORKER_READ_CHUNK) {
        mapq_buf_release(&w->line);
        mapq_buf_init(&w->line, max);
    } else {
        mapq_buf_reset(&w->line);
    }
}

/*
 * Forgets the process, whatever its state: closes its pipes (stdin first),
 * kills its group when it was not reaped, removes its working directory.
 * The exited process is left to the SIGCHLD owner; its pid, once reaped,
 * is no longer a worker's.
 */
static void
drop_process(struct mapq_worker *w)
{
    int i;

    for (i = 0; i < WNPIPES; i++)
        close_pipe(w, i);
    if (w->live) {
        killpg(w->pid, SIGKILL);
        mapq_guard_remove(w->pid);
        LIST_REMOVE(w, entry);
        w->live = false;
    }
    evtimer_del(w->watch);
    remove_dir(w);
    free(w->ckpt_path);
    w->ckpt_path = NULL;
    reset_line(w);
    w->pid = -1;
    w->reaped = w->status_known = false;
    w->wstatus = 0;
}

/* The job stops waiting for a reply: it will end with the process. */
static void
end_job(struct mapq_worker *w)
{
    if (w->job != WJOB_SENT)
        return;
    evtimer_del(w->timer);
    w->duration_ms = mapq_proc_elapsed_ms(&w->t0);
    set_job(w, WJOB_ENDING);
}

/* While dying: poll for the exit until it is seen, then the drain limit. */
static void
arm_watch(struct mapq_worker *w)
{
    evtimer_del(w->watch);
    add_ms(w->watch, w->reaped ? DRAIN_MS : REAP_POLL_MS);
}

/* Delivers the result in w->res from the loop. */
static void
finish_job(struct mapq_worker *w)
{
    set_job(w, WJOB_DONE);
    event_active(w->finish, EV_TIMEOUT, 0);
}

/* ---- the end of a process --------------------------------------------- */

/*
 * Whether the job that waited for the ended process may go to a new one:
 * once, when the process ended cleanly (exit status 0, or its stdin was
 * closed before any byte of the request went in) and wrote nothing for
 * it, as a worker that ends between two subtasks does.
 */
static bool
may_resend(const struct mapq_worker *w)
{
    if (w->resent || w->timed_out || w->killed || w->garbage || w->line.len > 0)
        return false;
    return w->epipe || (w->status_known && WIFEXITED(w->wstatus) &&
                        WEXITSTATUS(w->wstatus) == 0);
}

static void send_request(struct mapq_worker *w);

/* The process is reaped and its pipes are closed: end the job that waited
 * for it (or send it to a new process), then forget it. */
static void
proc_end(struct mapq_worker *w)
{
    mapq_assert(w->job != WJOB_SENT);
    if (w->job == WJOB_ENDING && may_resend(w)) {
        mapq_log(MAPQ_LOG_INFO,
                 "worker '%s' pid %d ended before taking its subtask; "
                 "starting another",
                 w->name, (int)w->pid);
        drop_process(w);
        set_proc(w, WPROC_NONE);
        w->resent = true;
        send_request(w);
        return;
    }
    if (w->job == WJOB_ENDING) {
        worker_result_init(w, &w->res);
        worker_result_ended(w, &w->res);
        worker_result_finish(w, &w->res); /* before the directory goes */
        finish_job(w);
    } else if (w->status_known) {
        mapq_log(MAPQ_LOG_INFO,
                 "worker '%s' pid %d ended between jobs "
                 "(wait status %#x)",
                 w->name, (int)w->pid, w->wstatus);
    }
    drop_process(w);
    set_proc(w, WPROC_NONE);
}

static void
maybe_end(struct mapq_worker *w)
{
    if (w->proc != WPROC_DYING || !w->reaped || w->fd[WPIPE_OUT] >= 0 ||
        w->fd[WPIPE_ERR] >= 0)
        return;
    proc_end(w);
}

/*
 * The process can serve no more (it closed stdout, stopped reading stdin,
 * broke the protocol, timed out, or was reaped): kill its group, stop
 * feeding it, and let the job that ran end with it.
 */
static void
go_dying(struct mapq_worker *w)
{
    if (w->proc != WPROC_UP)
        return;
    if (!w->reaped)
        killpg(w->pid, SIGKILL);
    close_pipe(w, WPIPE_IN);
    set_proc(w, WPROC_DYING);
    end_job(w);
    arm_watch(w);
}

/* The exit of the process was seen: status known, or taken by another
 * reaper. */
static void
reaped(struct mapq_worker *w, bool known, int status)
{
    w->reaped = true;
    w->status_known = known;
    w->wstatus = status;
    /* Only now, while its pid cannot have been reused: kill what is left
     * of its group. */
    if (known)
        killpg(w->pid, SIGKILL);
    if (w->live) {
        mapq_guard_remove(w->pid);
        LIST_REMOVE(w, entry);
        w->live = false;
    }
    /* A reply written just before the exit is still in the pipe: read it
     * first (what a dead process wrote fits in the pipe's buffer). */
    if (w->proc == WPROC_UP && w->fd[WPIPE_OUT] >= 0)
        worker_read_cb(w->fd[WPIPE_OUT], EV_READ, w);
    if (w->proc == WPROC_UP)
        go_dying(w);
    else if (w->proc == WPROC_DYING)
        arm_watch(w);
    maybe_end(w);
}

/* Looks for the exit of w's process without blocking. */
static void
try_wait(struct mapq_worker *w)
{
    pid_t r;
    int st = 0;

    do
        r = waitpid(w->pid, &st, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == w->pid)
        reaped(w, true, st);
    else if (r < 0 && errno == ECHILD)
        reaped(w, false, 0);
}

bool
mapq_worker_reaped(pid_t pid, int status)
{
    struct mapq_worker *w;

    LIST_FOREACH (w, &live, entry)
        if (w->pid == pid)
            break;
    if (w == NULL)
        return false;
    reaped(w, true, status);
    return true;
}

static void
worker_watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_worker *w = arg;

    (void)fd;
    (void)what;
    if (!w->reaped) {
        try_wait(w);
        if (!w->reaped)
            arm_watch(w);
        return;
    }
    /* Drain limit: a process outside the group still holds a pipe. */
    close_pipe(w, WPIPE_OUT);
    close_pipe(w, WPIPE_ERR);
    maybe_end(w);
}

/* ---- stdin ------------------------------------------------------------ */

/* Writes what stdin takes now; the rest when it becomes writable. */
static void
write_in(struct mapq_worker *w)
{
    ssize_t n;

    while (w->in_off < w->in.len) {
        n = write(w->fd[WPIPE_IN], w->in.data + w->in_off,
                  w->in.len - w->in_off);
        if (n > 0) {
            w->in_off += (size_t)n;
            w->in_started = true;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            event_add(w->ev[WPIPE_IN], NULL);
            return;
        }
        /* EPIPE: it closed its stdin, so it cannot take a job. */
        w->epipe = !w->in_started;
        go_dying(w);
        return;
    }
    event_del(w->ev[WPIPE_IN]);
    mapq_buf_release(&w->in);
    w->in_off = 0;
}

static void
worker_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_worker *w = arg;

    (void)fd;
    (void)what;
    write_in(w);
}

/* ---- stdout: the reply ------------------------------------------------ */

/* Bytes on stdout when no reply is awaited break the protocol. */
static void
unsolicited(struct mapq_worker *w)
{
    mapq_log(MAPQ_LOG_WARN,
             "worker '%s' pid %d wrote to stdout outside a reply; killing it",
             w->name, (int)w->pid);
    go_dying(w);
}

/* The line in w->line ended: the job's reply, or garbage. */
static void
got_line(struct mapq_worker *w)
{
    bool ok;

    worker_result_init(w, &w->res);
    ok = worker_reply_read(w, w->line.data ? w->line.data : "", w->line.len,
                           &w->res, w->why);
    reset_line(w);
    if (!ok) {
        cmd_result_release(&w->res);
        w->garbage = true;
        go_dying(w);
        return;
    }
    evtimer_del(w->timer);
    w->duration_ms = mapq_proc_elapsed_ms(&w->t0);
    /* What it wrote to stderr before the reply is in the pipe by now. */
    if (w->fd[WPIPE_ERR] >= 0)
        worker_read_cb(w->fd[WPIPE_ERR], EV_READ, w);
    worker_result_finish(w, &w->res);
    finish_job(w);
    if (w->in_off < w->in.len) {
        mapq_log(MAPQ_LOG_WARN,
                 "worker '%s' pid %d replied before reading its whole "
                 "request; killing it",
                 w->name, (int)w->pid);
        go_dying(w);
    }
}

/* n bytes read from stdout. */
static void
feed(struct mapq_worker *w, const char *data, size_t n)
{
    const char *nl;
    size_t take;

    if (w->proc != WPROC_UP || w->job == WJOB_ENDING)
        return; /* drained and dropped */
    if (w->job != WJOB_SENT) {
        unsolicited(w);
        return;
    }
    nl = memchr(data, '\n', n);
    take = nl != NULL ? (size_t)(nl - data) : n;
    if (mapq_buf_append(&w->line, data, take) != MAPQ_OK) {
        snprintf(w->why, sizeof(w->why),
                 "worker wrote a reply line over the size cap (%zu bytes)",
                 w->line.max);
        w->garbage = true;
        go_dying(w);
        return;
    }
    if (nl == NULL)
        return;
    got_line(w);
    if (take + 1 < n && w->proc == WPROC_UP)
        unsolicited(w);
}

/* ---- reading ---------------------------------------------------------- */

/* Keeps n bytes read from pipe i. */
static void
keep(struct mapq_worker *w, int i, const char *data, size_t n)
{
    if (i == WPIPE_OUT) {
        feed(w, data, n);
    } else {
        mapq_buf_append(&w->err, data, n);
        if (w->err.len > 2 * MAPQ_CMD_STDERR_TAIL) {
            memmove(w->err.data,
                    w->err.data + w->err.len - MAPQ_CMD_STDERR_TAIL,
                    MAPQ_CMD_STDERR_TAIL);
            w->err.len = MAPQ_CMD_STDERR_TAIL;
            w->err.data[w->err.len] = '\0';
        }
    }
}

/* Pipe i reached EOF (or failed) and is closed. */
static void
pipe_closed(struct mapq_worker *w, int i)
{
    /* No reply can come any more: the process is finished. */
    if (i == WPIPE_OUT && w->proc == WPROC_UP)
        go_dying(w);
    if (w->proc == WPROC_DYING && !w->reaped)
        try_wait(w);
    maybe_end(w);
}

static void
worker_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_worker *w = arg;
    char chunk[WORKER_READ_CHUNK];
    int i = fd == w->fd[WPIPE_OUT] ? WPIPE_OUT : WPIPE_ERR, reads;
    ssize_t n;

    (void)what;
    for (reads = 0; reads < READS_PER_CB && w->fd[i] == fd; reads++) {
        n = read(fd, chunk, sizeof(chunk));
        if (n > 0) {
            keep(w, i, chunk, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close_pipe(w, i); /* EOF, or an error that ends the stream */
        pipe_closed(w, i);
        return;
    }
}

/* ---- the timeout and the result --------------------------------------- */

static void
worker_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_worker *w = arg;
    int64_t left;

    (void)fd;
    (void)what;
    if (w->job != WJOB_SENT)
        return;
    /* libevent's clock is coarse (a few ms): a timeout it ends early is
     * waited out, so that no job is killed before its time. */
    left = w->timeout_ms - mapq_proc_elapsed_ms(&w->t0);
    if (left > 0) {
        add_ms(w->timer, left);
        return;
    }
    w->timed_out = true;
    go_dying(w);
}

static void
worker_finish_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_worker *w = arg;
    struct mapq_cmd_result res = w->res; /* taken: the callback may free w */
    mapq_worker_done_fn *done = w->done;
    void *done_arg = w->arg;

    (void)fd;
    (void)what;
    memset(&w->res, 0, sizeof(w->res));
    w->done = NULL;
    w->arg = NULL;
    set_job(w, WJOB_NONE);
    done(w, &res, done_arg);
    cmd_result_release(&res);
}

/* ---- public ----------------------------------------------------------- */

static char **
copy_strv(char *const *v, size_t n)
{
    char **c = mapq_xcalloc(n + 1, sizeof(char *));
    size_t i;

    for (i = 0; i < n; i++)
        c[i] = mapq_xstrdup(v[i]);
    return c;
}

static void
free_strv(char **v)
{
    size_t i;

    for (i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

struct mapq_worker *
mapq_worker_new(struct event_base *base, const struct mapq_worker_spec *spec)
{
    struct mapq_worker *w = mapq_xcalloc(1, sizeof(*w));
    int i;

    mapq_assert(spec->argc > 0 && spec->argv[0] != NULL);
    mapq_assert(spec->dirs != NULL);
    w->base = base;
    w->argv = copy_strv(spec->argv, spec->argc);
    w->env = copy_strv(spec->env, spec->envc);
    w->envc = spec->envc;
    w->dirs = spec->dirs;
    w->mem_bytes = spec->mem_bytes;
    w->otype = spec->output ? mapq_type_dup(spec->output) : NULL;
    w->output_max = spec->output_max ? spec->output_max : MAPQ_VALUE_MAX;
    w->name = mapq_xstrdup(spec->argv[0]);
    w->pid = -1;
    for (i = 0; i < WNPIPES; i++)
        w->fd[i] = -1;
    w->timer = evtimer_new(base, worker_timer_cb, w);
    w->watch = evtimer_new(base, worker_watch_cb, w);
    w->finish = event_new(base, -1, 0, worker_finish_cb, w);
    mapq_buf_init(&w->in, 0);
    mapq_buf_init(&w->line, w->output_max + MAPQ_WORKER_LINE_SLACK);
    mapq_buf_init(&w->err, 0);
    mapq_buf_init(&w->head, 0);
    mapq_buf_init(&w->ckpt, 0);
    return w;
}

/* Starts the process and watches its pipes. */
static enum worker_spawned
start(struct mapq_worker *w, char *err)
{
    enum worker_spawned rc;
    int i;

    rc = worker_spawn(w, w->why, err);
    if (rc != WORKER_SPAWNED) {
        drop_process(w);
        return rc;
    }
    for (i = 0; i < WNPIPES; i++) {
        if (w->fd[i] < 0)
            continue;
        w->ev[i] = event_new(
            w->base, w->fd[i],
            (short)((i == WPIPE_IN ? EV_WRITE : EV_READ) | EV_PERSIST),
            i == WPIPE_IN ? worker_write_cb : worker_read_cb, w);
        if (i != WPIPE_IN)
            event_add(w->ev[i], NULL);
    }
    LIST_INSERT_HEAD(&live, w, entry);
    w->live = true;
    /* The guardian kills the group if the agent dies first. */
    mapq_guard_add(w->pid);
    set_proc(w, WPROC_UP);
    return WORKER_SPAWNED;
}

/* Ends the job at once as FAILED with w->why, from the loop. */
static void
fail_early(struct mapq_worker *w)
{
    worker_result_init(w, &w->res);
    w->res.status = MAPQ_CMD_FAILED;
    snprintf(w->res.error, sizeof(w->res.error), "%s", w->why);
    mapq_buf_release(&w->res.output);
    finish_job(w);
}

/*
 * Starts a process when none runs and writes the job's request to it (its
 * head and checkpoint are kept in w). MAPQ_OK once sent, or ended FAILED
 * from the loop (the command cannot run); MAPQ_EIO with err set when this
 * host cannot start anything or write the checkpoint.
 */
static enum mapq_err
launch(struct mapq_worker *w, char *err)
{
    struct mapq_buf line = MAPQ_BUF_INIT;
    int64_t left;

    if (w->proc == WPROC_DYING) {
        drop_process(w); /* it ended between jobs; no need to wait */
        set_proc(w, WPROC_NONE);
    }
    if (w->proc == WPROC_NONE) {
        switch (start(w, err)) {
        case WORKER_SPAWNED:
            break;
        case WORKER_UNRUNNABLE:
            fail_early(w);
            return MAPQ_OK;
        case WORKER_SPAWN_FAIL:
            return MAPQ_EIO;
        }
    }
    if (worker_ckpt_prepare(w, w->has_ckpt ? w->ckpt.data : NULL, w->ckpt.len,
                            err) != MAPQ_OK)
        return MAPQ_EIO;
    mapq_buf_append(&line, w->head.data, w->head.len);
    worker_line_tail(w, w->deadline_ms, &line);
    mapq_buf_release(&w->in);
    w->in = line;
    w->in_off = 0;
    w->in_started = w->epipe = false;
    set_job(w, WJOB_SENT);
    if (w->timeout_ms > 0) {
        /* A resent job keeps what is left of its time. */
        left = w->timeout_ms - mapq_proc_elapsed_ms(&w->t0);
        add_ms(w->timer, left > 0 ? left : 1);
    }
    write_in(w);
    return MAPQ_OK;
}

/* Sends the job whose process ended before taking it to a new one; ends
 * it FAILED when none can start. */
static void
send_request(struct mapq_worker *w)
{
    char err[MAPQ_ERR_LEN];

    if (launch(w, err) == MAPQ_OK)
        return;
    snprintf(w->why, sizeof(w->why),
             "worker ended and cannot start again: %.*s",
             (int)(sizeof(w->why) - 64), err);
    fail_early(w);
}

enum mapq_err
mapq_worker_send(struct mapq_worker *w, const struct mapq_worker_job *job,
                 mapq_worker_done_fn *done, void *arg, char *err)
{
    mapq_assert(w->job == WJOB_NONE);
    w->timed_out = w->killed = w->garbage = w->resent = false;
    w->kill_sig = 0;
    w->why[0] = '\0';
    w->timeout_ms = job->timeout_ms;
    w->deadline_ms = job->timeout_ms > 0 ? wall_ms() + job->timeout_ms : 0;
    w->duration_ms = 0;
    w->done = done;
    w->arg = arg;
    clock_gettime(CLOCK_MONOTONIC, &w->t0);
    mapq_buf_reset(&w->head);
    if (worker_line_head(job, &w->head, w->why) != MAPQ_OK) {
        fail_early(w);
        return MAPQ_OK;
    }
    mapq_buf_reset(&w->ckpt);
    w->has_ckpt = job->checkpoint_in != NULL;
    if (w->has_ckpt)
        mapq_buf_append(&w->ckpt, job->checkpoint_in, job->checkpoint_len);
    return launch(w, err);
}

bool
mapq_worker_busy(const struct mapq_worker *w)
{
    return w->job != WJOB_NONE;
}

void
mapq_worker_kill(struct mapq_worker *w, int sig)
{
    if (w->proc == WPROC_NONE || w->reaped)
        return;
    if (w->job == WJOB_SENT || w->job == WJOB_ENDING) {
        w->killed = true;
        w->kill_sig = sig;
        end_job(w);
        killpg(w->pid, sig);
        return;
    }
    /* No job waits for it: it is gone for the next one, which gets a new
     * process instead of this one's death. */
    killpg(w->pid, sig);
    go_dying(w);
}

pid_t
mapq_worker_pid(const struct mapq_worker *w)
{
    return w->pid;
}

const char *
mapq_worker_dir(const struct mapq_worker *w)
{
    return w->dir;
}

void
mapq_worker_free(struct mapq_worker *w)
{
    if (w == NULL)
        return;
    drop_process(w);
    event_free(w->timer);
    event_free(w->watch);
    event_free(w->finish);
    if (w->job == WJOB_DONE)
        cmd_result_release(&w->res);
    mapq_buf_release(&w->in);
    mapq_buf_release(&w->line);
    mapq_buf_release(&w->err);
    mapq_buf_release(&w->head);
    mapq_buf_release(&w->ckpt);
    mapq_type_free(w->otype);
    free_strv(w->argv);
    free_strv(w->env);
    free(w->name);
    free(w->path);
    free(w);
}
