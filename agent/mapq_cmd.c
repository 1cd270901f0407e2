/*
 * mapq_cmd.c - one attempt of a command task: the controller of its life
 * cycle, from the start through reaping to the done callback (SPEC
 * section 2).
 *
 * A command owns its child's process group, the parent ends of the child's
 * pipes, the events watching them and the working directory; this file
 * creates and frees it, registers every event and decides when it is
 * finished. Its leaves do the work: cmd_spawn.c starts the child, cmd_io.c
 * moves the pipes' bytes, cmd_result.c builds the result. Nothing here
 * blocks the loop: the pipes are non-blocking, exits arrive through
 * mapq_cmd_reap(), and the done callback always runs from a deferred event,
 * never from inside mapq_cmd_start(), mapq_cmd_kill() or mapq_cmd_reap().
 * The only synchronous file I/O is on small local files in the working
 * directory (the checkpoint, $MAPQ_OUTPUT); the directory itself is made
 * and removed by mapq_workdirs' thread.
 */
#include "mapq_cmd.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "cmd_int.h"
#include "mapq_alloc.h"
#include "mapq_guard.h"
#include "mapq_log.h"
#include "mapq_proc.h"
#include "mapq_value.h"

/* After the child is reaped and its group killed, how long to wait for
 * EOF from a process that left the group but still holds a pipe. */
#define DRAIN_MS 1000

static LIST_HEAD(, mapq_cmd) live = LIST_HEAD_INITIALIZER(live);

static void cmd_io_cb(evutil_socket_t fd, short what, void *arg);
static void cmd_write_cb(evutil_socket_t fd, short what, void *arg);
static void cmd_timer_cb(evutil_socket_t fd, short what, void *arg);
static void cmd_finish_cb(evutil_socket_t fd, short what, void *arg);

/* Hands cmd's working directory over for removal (mapq_workdirs.h). */
static void
remove_dir(struct mapq_cmd *cmd)
{
    mapq_workdirs_drop(cmd->dirs, cmd->dir);
    cmd->dir = NULL;
}

/* Completes cmd without a process, from the loop, as status/error. */
static void
fail_early(struct mapq_cmd *cmd, enum mapq_cmd_status status)
{
    cmd->early = true;
    cmd->early_status = status;
    cmd->finishing = true;
    event_active(cmd->finish, EV_TIMEOUT, 0);
}

/* Watches a started child: its pipes, its timeout, its exit. */
static void
watch(struct mapq_cmd *cmd)
{
    struct timeval tv;
    int i;

    /* stdin is still open only when its input did not fit in the pipe
     * before the start (cmd_spawn.c): the rest goes as the child reads. */
    for (i = 0; i < NPIPES; i++) {
        if (cmd->fd[i] < 0)
            continue;
        cmd->ev[i] =
            event_new(cmd->base, cmd->fd[i],
                      (short)((i == PIPE_IN ? EV_WRITE : EV_READ) | EV_PERSIST),
                      i == PIPE_IN ? cmd_write_cb : cmd_io_cb, cmd);
        event_add(cmd->ev[i], NULL);
    }
    if (cmd->timeout_ms > 0) {
        tv.tv_sec = (time_t)(cmd->timeout_ms / 1000);
        tv.tv_usec = (suseconds_t)(cmd->timeout_ms % 1000 * 1000);
        evtimer_add(cmd->timer, &tv);
    }
    LIST_INSERT_HEAD(&live, cmd, entry);
    cmd->live = true;
    /* Registered while live: the guardian kills the group if the agent
     * dies first. */
    mapq_guard_add(cmd->pid);
}

/* Schedules completion once the child is reaped and every pipe is done. */
static void
maybe_finish(struct mapq_cmd *cmd)
{
    if (cmd->finishing || !cmd->reaped || cmd->fd[PIPE_OUT] >= 0 ||
        cmd->fd[PIPE_ERR] >= 0)
        return;
    cmd->finishing = true;
    event_active(cmd->finish, EV_TIMEOUT, 0);
}

/* ---- public: start ---------------------------------------------------- */

static struct mapq_cmd *
cmd_new(struct event_base *base, const struct mapq_cmd_spec *spec,
        mapq_cmd_done_fn *done, void *arg)
{
    struct mapq_cmd *cmd = mapq_xcalloc(1, sizeof(*cmd));
    int i;

    cmd->base = base;
    cmd->otype = spec->output;
    cmd->output_text = spec->output_text;
    cmd->output_max = spec->output_max ? spec->output_max : MAPQ_VALUE_MAX;
    cmd->timeout_ms = spec->timeout_ms;
    cmd->mem_bytes = spec->mem_bytes;
    if (spec->ncpus > 0) {
        cmd->cpus = mapq_xcalloc(spec->ncpus, sizeof(*cmd->cpus));
        memcpy(cmd->cpus, spec->cpus, spec->ncpus * sizeof(*cmd->cpus));
        cmd->ncpus = spec->ncpus;
    }
    cmd->name = mapq_xstrdup(spec->argv[0]);
    cmd->pid = -1;
    for (i = 0; i < NPIPES; i++)
        cmd->fd[i] = -1;
    cmd->timer = evtimer_new(base, cmd_timer_cb, cmd);
    cmd->finish = event_new(base, -1, 0, cmd_finish_cb, cmd);
    mapq_buf_init(&cmd->in, 0);
    mapq_buf_init(&cmd->out, cmd->output_max);
    mapq_buf_init(&cmd->err, 0);
    cmd->done = done;
    cmd->arg = arg;
    return cmd;
}

struct mapq_cmd *
mapq_cmd_start(struct event_base *base, const struct mapq_cmd_spec *spec,
               const struct mapq_cmd_ctx *ctx, const msgpack_object *inputs,
               mapq_cmd_done_fn *done, void *arg, char *err)
{
    struct mapq_cmd *cmd;

    mapq_assert(spec->argc > 0 && spec->argv[0] != NULL);
    cmd = cmd_new(base, spec, done, arg);
    switch (cmd_spawn(cmd, spec, ctx, inputs, err)) {
    case CMD_SPAWNED:
        watch(cmd);
        break;
    case CMD_UNRUNNABLE:
        fail_early(cmd, MAPQ_CMD_FAILED);
        break;
    case CMD_SPAWN_FAIL:
        mapq_cmd_free(cmd);
        return NULL;
    }
    return cmd;
}

/* ---- running ---------------------------------------------------------- */

static void
cmd_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_cmd *cmd = arg;

    (void)what;
    if (cmd_io_read(cmd, fd))
        maybe_finish(cmd);
}

static void
cmd_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_cmd *cmd = arg;

    (void)what;
    cmd_io_write(cmd, fd);
}

static void
cmd_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_cmd *cmd = arg;
    struct timeval tv;
    int64_t left;

    (void)fd;
    (void)what;
    if (cmd->reaped) {
        /* Drain limit: a process outside the group still holds a pipe. */
        cmd_io_close(cmd, PIPE_OUT);
        cmd_io_close(cmd, PIPE_ERR);
        maybe_finish(cmd);
        return;
    }
    /* libevent's clock is coarse (a few ms): a timeout it ends early is
     * waited out, so that no command is killed before its time. */
    left = cmd->timeout_ms - mapq_proc_elapsed_ms(&cmd->t0);
    if (left > 0) {
        tv.tv_sec = (time_t)(left / 1000);
        tv.tv_usec = (suseconds_t)(left % 1000 * 1000);
        evtimer_add(cmd->timer, &tv);
        return;
    }
    cmd->timed_out = true;
    killpg(cmd->pid, SIGKILL);
}

/* The child exited: kill the stragglers of its group, stop feeding it
 * and give the pipes DRAIN_MS to reach EOF. */
static void
exited(struct mapq_cmd *cmd, int wstatus)
{
    struct timeval tv = {DRAIN_MS / 1000, DRAIN_MS % 1000 * 1000};

    cmd->wstatus = wstatus;
    cmd->reaped = true;
    cmd->duration_ms = mapq_proc_elapsed_ms(&cmd->t0);
    killpg(cmd->pid, SIGKILL);
    mapq_guard_remove(cmd->pid);
    LIST_REMOVE(cmd, entry);
    cmd->live = false;
    cmd_io_close(cmd, PIPE_IN);
    evtimer_del(cmd->timer);
    evtimer_add(cmd->timer, &tv);
    maybe_finish(cmd);
}

void
mapq_cmd_reap(mapq_cmd_other_fn *other)
{
    struct mapq_cmd *cmd;
    pid_t pid;
    int st;

    for (;;) {
        pid = waitpid(-1, &st, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return;
        LIST_FOREACH (cmd, &live, entry) {
            if (cmd->pid == pid)
                break;
        }
        if (cmd != NULL)
            exited(cmd, st);
        else if (other != NULL)
            other(pid, st);
    }
}

static void
cmd_finish_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_cmd *cmd = arg;
    struct mapq_cmd_result res;
    int i;

    (void)fd;
    (void)what;
    cmd_result_build(cmd, &res);
    for (i = 0; i < NPIPES; i++)
        cmd_io_close(cmd, i);
    evtimer_del(cmd->timer);
    /* The directory goes with cmd (mapq_cmd_free()): the callback may read
     * the files the task left there. res lives on this stack: the callback
     * may free cmd. */
    cmd->done(cmd, &res, cmd->arg);
    cmd_result_release(&res);
}

/* ---- public: control -------------------------------------------------- */

void
mapq_cmd_stderr_since(const struct mapq_cmd *cmd, uint64_t from, const char **p,
                      size_t *n, uint64_t *skipped)
{
    uint64_t held_from = cmd->err_total - cmd->err.len;

    *skipped = from < held_from ? held_from - from : 0;
    from += *skipped;
    *n = from < cmd->err_total ? (size_t)(cmd->err_total - from) : 0;
    *p = *n > 0 ? cmd->err.data + (cmd->err.len - *n) : "";
}

void
mapq_cmd_kill(struct mapq_cmd *cmd, int sig)
{
    if (cmd->pid <= 0 || cmd->reaped || cmd->finishing)
        return;
    cmd->killed = true;
    cmd->kill_sig = sig;
    killpg(cmd->pid, sig);
}

pid_t
mapq_cmd_pid(const struct mapq_cmd *cmd)
{
    return cmd->pid;
}

const char *
mapq_cmd_dir(const struct mapq_cmd *cmd)
{
    return cmd->dir;
}

void
mapq_cmd_free(struct mapq_cmd *cmd)
{
    int i;

    if (cmd == NULL)
        return;
    if (cmd->live) {
        /* Still running: kill the group; a later reap finds an unknown
         * pid and ignores it. */
        killpg(cmd->pid, SIGKILL);
        mapq_guard_remove(cmd->pid);
        LIST_REMOVE(cmd, entry);
    }
    for (i = 0; i < NPIPES; i++)
        cmd_io_close(cmd, i);
    event_free(cmd->timer);
    event_free(cmd->finish);
    remove_dir(cmd);
    mapq_buf_release(&cmd->in);
    mapq_buf_release(&cmd->out);
    mapq_buf_release(&cmd->err);
    free(cmd->output_path);
    free(cmd->checkpoint_path);
    free(cmd->name);
    free(cmd->path);
    free(cmd->cpus);
    free(cmd);
}
