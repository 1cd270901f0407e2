/*
 * agent_plugin_run.c - one plugin call: in-process on the loop, or, for a
 * subtask already lost once (s > 0, maybe because it crashed the agent that
 * ran it with its whole batch), in a forked child so that a crash costs
 * only its own attempt. The child's outcome is read from the loop, under
 * the task's timeout, so the loop never waits for it.
 *
 * Owns the child of a job (job->child) from agent_plugin_start() to
 * agent_plugin_child_free(); the plugin host keeps libraries open for the
 * agent's lifetime. Never decides what the attempt records: the controller
 * does, from the outcome.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_log.h"
#include "mapq_taskspec.h"
#include "mapq_value.h"

/* Writes len bytes at p to fd, retrying when a signal interrupts; false
 * on an error. In the child only. */
static bool
write_all(int fd, const void *p, size_t len)
{
    const char *c = p;
    ssize_t n;

    while (len > 0) {
        n = write(fd, c, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        c += n;
        len -= (size_t)n;
    }
    return true;
}

/* A plugin call in a forked child, watched on the loop. */
struct plugin_child {
    struct job *job;
    pid_t pid;
    int fd;              /* the outcome's pipe, read end */
    struct event *read;  /* on fd */
    struct event *timer; /* the task's timeout */
    struct mapq_buf got; /* what the child wrote, capped */
    bool timed_out, killed;
    agent_plugin_done_fn *done;
};

/* The outcome the child wrote: status, error, output length and bytes,
 * checkpoint length + 1 (0: none) and bytes. False when it is cut short
 * (the child died before it wrote all of it). */
static bool
parse_outcome(const struct mapq_buf *b, struct mapq_plugin_outcome *out)
{
    const char *p, *end;
    uint64_t n, c;

    if (b->len == 0)
        return false; /* nothing written (and no buffer) */
    p = b->data;
    end = b->data + b->len;
    if ((size_t)(end - p) <
        sizeof(out->status) + sizeof(out->error) + sizeof(n))
        return false;
    memcpy(&out->status, p, sizeof(out->status));
    p += sizeof(out->status);
    memcpy(out->error, p, sizeof(out->error));
    out->error[sizeof(out->error) - 1] = '\0';
    p += sizeof(out->error);
    memcpy(&n, p, sizeof(n));
    p += sizeof(n);
    if (n > (uint64_t)(end - p) ||
        mapq_buf_append(&out->output, p, (size_t)n) != MAPQ_OK)
        return false;
    p += n;
    if ((size_t)(end - p) < sizeof(c))
        return false;
    memcpy(&c, p, sizeof(c));
    p += sizeof(c);
    if (c == 0)
        return p == end;
    if (c - 1 != (uint64_t)(end - p) ||
        mapq_buf_append(&out->checkpoint, p, (size_t)(c - 1)) != MAPQ_OK)
        return false;
    out->has_checkpoint = true;
    return true;
}

/* The child is done writing (EOF), or cannot go on: reports to the
 * controller. The controller frees the child with the job. */
static void
child_end(struct plugin_child *ch)
{
    struct mapq_plugin_outcome out;
    enum agent_plugin_end how;

    mapq_plugin_outcome_init(&out);
    event_del(ch->read);
    evtimer_del(ch->timer);
    if (ch->timed_out)
        how = AGENT_PLUGIN_TIMED_OUT;
    else if (ch->killed)
        how = AGENT_PLUGIN_KILLED;
    else if (parse_outcome(&ch->got, &out))
        how = AGENT_PLUGIN_DONE;
    else
        how = AGENT_PLUGIN_CRASHED;
    /* The exit itself is reaped by the agent's SIGCHLD reaper. */
    ch->done(ch->job, how, &out);
    mapq_plugin_outcome_release(&out);
}

static void
child_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct plugin_child *ch = arg;
    char buf[65536];
    ssize_t n;

    (void)what;
    n = read(fd, buf, sizeof(buf));
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return;
    if (n > 0 && mapq_buf_append(&ch->got, buf, (size_t)n) == MAPQ_OK)
        return;
    /* EOF, an error, or more than an outcome can hold. */
    child_end(ch);
}

static void
child_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct plugin_child *ch = arg;

    (void)fd;
    (void)what;
    ch->timed_out = true;
    kill(ch->pid, SIGKILL);
}

/* In the child: calls fn and writes its outcome on fd, then exits. */
static _Noreturn void
child_run(mapq_plugin_fn *fn, struct mapq_plugin_call *call, int fd)
{
    struct mapq_plugin_outcome out;
    uint64_t n, c;
    bool ok;

    mapq_plugin_outcome_init(&out);
    mapq_plugin_host_call(fn, call, MAPQ_VALUE_MAX, &out);
    n = out.output.len;
    c = out.has_checkpoint ? out.checkpoint.len + 1 : 0;
    ok = write_all(fd, &out.status, sizeof(out.status)) &&
         write_all(fd, out.error, sizeof(out.error)) &&
         write_all(fd, &n, sizeof(n)) &&
         write_all(fd, out.output.data, out.output.len) &&
         write_all(fd, &c, sizeof(c)) &&
         (c == 0 || write_all(fd, out.checkpoint.data, out.checkpoint.len));
    _exit(ok ? 0 : 1);
}

/* Forks a child that calls fn and writes its outcome on a pipe, watched on
 * the loop. NULL when the pipe or the fork failed. */
static struct plugin_child *
child_start(struct job *job, mapq_plugin_fn *fn, struct mapq_plugin_call *call,
            agent_plugin_done_fn *done)
{
    struct mapq_agent *a = job->a;
    const struct mapq_taskspec *s = job->spec->spec;
    struct plugin_child *ch;
    struct timeval tv;
    int fd[2];
    pid_t pid;

    if (pipe(fd) != 0)
        return NULL;
    pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return NULL;
    }
    if (pid == 0) {
        sigset_t none;

        /* The agent blocks SIGCHLD (main.c); the plugin gets it back. */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        close(fd[0]);
        child_run(fn, call, fd[1]);
    }
    close(fd[1]);
    evutil_make_socket_nonblocking(fd[0]);
    evutil_make_socket_closeonexec(fd[0]);
    ch = mapq_xcalloc(1, sizeof(*ch));
    ch->job = job;
    ch->pid = pid;
    ch->fd = fd[0];
    ch->done = done;
    /* Output and checkpoint at their caps, and the fixed fields. */
    mapq_buf_init(&ch->got, 2 * (size_t)MAPQ_VALUE_MAX + 4096);
    ch->read =
        event_new(a->base, fd[0], EV_READ | EV_PERSIST, child_read_cb, ch);
    ch->timer = evtimer_new(a->base, child_timer_cb, ch);
    event_add(ch->read, NULL);
    if (s->timeout_ms > 0) {
        agent_ms_to_tv(s->timeout_ms, &tv);
        evtimer_add(ch->timer, &tv);
    }
    return ch;
}

void
agent_plugin_kill(struct job *job)
{
    if (job->child == NULL || job->child->timed_out)
        return;
    job->child->killed = true;
    kill(job->child->pid, SIGKILL);
}

void
agent_plugin_child_free(struct plugin_child *ch)
{
    if (ch == NULL)
        return;
    /* Gone already after EOF; killed otherwise. Reaped by the agent's
     * SIGCHLD reaper either way. */
    kill(ch->pid, SIGKILL);
    event_free(ch->read);
    event_free(ch->timer);
    close(ch->fd);
    mapq_buf_release(&ch->got);
    free(ch);
}

/* Looks job's plugin function up once per spec (the symbol checks cost more
 * than a no-op call); NULL with out set to the error. */
static mapq_plugin_fn *
lookup(struct job *job, struct mapq_plugin_outcome *out)
{
    const struct mapq_taskspec *s = job->spec->spec;
    char err[MAPQ_ERR_LEN];
    mapq_plugin_fn *fn = job->spec->fn;

    if (fn == NULL) {
        fn = mapq_plugin_host_lookup(job->a->plugins, s->library, s->symbol,
                                     err);
        if (fn == NULL) {
            out->status = MAPQ_PLUGIN_ERROR;
            snprintf(out->error, sizeof(out->error), "%s", err);
            return NULL;
        }
        job->spec->fn = fn;
    }
    return fn;
}

/* The call's arguments from job; its input bytes go into in. */
static void
call_of(struct job *job, struct mapq_buf *in, struct mapq_plugin_call *call)
{
    const struct mapq_taskspec *s = job->spec->spec;
    msgpack_packer pk;

    mapq_value_packer_init(&pk, in);
    msgpack_pack_object(&pk, *job->inputs);
    call->execution = job->r.exec;
    call->node = s->node;
    call->index = job->r.index;
    call->attempt = mapq_ref_attempt(&job->r);
    call->input = in->data;
    call->input_len = in->len;
    call->checkpoint = job->ckpt_in;
    call->checkpoint_len = job->ckpt_in_len;
}

bool
agent_plugin_start(struct job *job, agent_plugin_done_fn *done,
                   struct mapq_plugin_outcome *out)
{
    struct mapq_plugin_call call = {0};
    struct mapq_buf in = MAPQ_BUF_INIT;
    mapq_plugin_fn *fn;

    mapq_assert(job->child == NULL);
    mapq_plugin_outcome_init(out);
    fn = lookup(job, out);
    if (fn == NULL)
        return false;
    call_of(job, &in, &call);
    job->child = child_start(job, fn, &call, done);
    mapq_buf_release(&in);
    return job->child != NULL;
}

void
agent_plugin_check(const struct job *job, struct mapq_plugin_outcome *out)
{
    const struct mapq_taskspec *s = job->spec->spec;
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN];

    if (out->status != MAPQ_PLUGIN_OK || s->output == NULL)
        return;
    msgpack_unpacked_init(&u);
    if (mapq_value_unpack(out->output.data, out->output.len, &u, err) ==
            MAPQ_OK &&
        mapq_type_check(s->output, &u.data, err) != MAPQ_OK) {
        snprintf(out->error, sizeof(out->error), "output: %.480s", err);
        out->status = MAPQ_PLUGIN_ERROR;
    }
    msgpack_unpacked_destroy(&u);
}

void
agent_plugin_run(struct job *job, struct mapq_plugin_outcome *out)
{
    struct mapq_plugin_call call = {0};
    struct mapq_buf in = MAPQ_BUF_INIT;
    mapq_plugin_fn *fn;

    mapq_plugin_outcome_init(out);
    fn = lookup(job, out);
    if (fn == NULL)
        return;
    call_of(job, &in, &call);
    mapq_plugin_host_call(fn, &call, MAPQ_VALUE_MAX, out);
    mapq_buf_release(&in);
    agent_plugin_check(job, out);
}
