/*
 * agent_plugin_run.c - one plugin call: in-process on the loop, or, for a
 * subtask already lost once (s > 0, maybe because it crashed the agent that
 * ran it with its whole batch), in a forked child so that a crash costs
 * only its own attempt.
 *
 * Fills the caller's outcome and owns nothing after it returns; the
 * plugin host keeps libraries open for the agent's lifetime. Never decides
 * what the attempt records: agent.c does, from the outcome.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_log.h"
#include "mapq_taskspec.h"
#include "mapq_value.h"

/*
 * Writes len bytes at p to fd (out) or reads them from fd into p,
 * retrying when a signal interrupts; false on an error or an early end.
 */
static bool
move_all(int fd, void *p, size_t len, bool out)
{
    char *c = p;
    ssize_t n;

    while (len > 0) {
        n = out ? write(fd, c, len) : read(fd, c, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        c += n;
        len -= (size_t)n;
    }
    return true;
}

static bool
write_all(int fd, void *p, size_t len)
{
    return move_all(fd, p, len, true);
}

static bool
read_all(int fd, void *p, size_t len)
{
    return move_all(fd, p, len, false);
}

/* Reads n bytes from fd into b. */
static bool
read_into(int fd, uint64_t n, struct mapq_buf *b)
{
    char *data;
    bool ok;

    if (n == 0)
        return true;
    data = mapq_xmalloc((size_t)n);
    ok = read_all(fd, data, (size_t)n) &&
         mapq_buf_append(b, data, (size_t)n) == MAPQ_OK;
    free(data);
    return ok;
}

/*
 * Calls fn in a forked child and reads its outcome back through a pipe, so
 * that a plugin that crashes kills only the child. False when the child
 * died or the fork failed: out is then unset. Blocks the loop for the call,
 * like an in-process call; SIGCHLD is handled from the loop, so the child
 * is reaped here, not by mapq_cmd_reap().
 */
static bool
call_isolated(mapq_plugin_fn *fn, struct mapq_plugin_call *call,
              struct mapq_plugin_outcome *out)
{
    int fd[2], st = 0;
    uint64_t n = 0, c = 0;
    pid_t pid;
    bool ok;

    if (pipe(fd) != 0)
        return false;
    pid = fork();
    if (pid < 0) {
        close(fd[0]);
        close(fd[1]);
        return false;
    }
    if (pid == 0) {
        close(fd[0]);
        mapq_plugin_host_call(fn, call, MAPQ_VALUE_MAX, out);
        n = out->output.len;
        c = out->has_checkpoint ? out->checkpoint.len + 1 : 0;
        ok = write_all(fd[1], &out->status, sizeof(out->status)) &&
             write_all(fd[1], out->error, sizeof(out->error)) &&
             write_all(fd[1], &n, sizeof(n)) &&
             write_all(fd[1], out->output.data, out->output.len) &&
             write_all(fd[1], &c, sizeof(c)) &&
             (c == 0 ||
              write_all(fd[1], out->checkpoint.data, out->checkpoint.len));
        _exit(ok ? 0 : 1);
    }
    close(fd[1]);
    ok = read_all(fd[0], &out->status, sizeof(out->status)) &&
         read_all(fd[0], out->error, sizeof(out->error)) &&
         read_all(fd[0], &n, sizeof(n)) && n <= MAPQ_VALUE_MAX + 64 &&
         read_into(fd[0], n, &out->output) && read_all(fd[0], &c, sizeof(c)) &&
         c <= MAPQ_VALUE_MAX + 1;
    /* c is the checkpoint's length + 1, or 0 when none was saved. */
    if (ok && c > 0) {
        ok = read_into(fd[0], c - 1, &out->checkpoint);
        out->has_checkpoint = ok;
    }
    close(fd[0]);
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    out->error[sizeof(out->error) - 1] = '\0';
    return ok && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

bool
agent_plugin_run(struct job *job, struct mapq_plugin_outcome *out)
{
    struct mapq_agent *a = job->a;
    const struct mapq_taskspec *s = job->spec->spec;
    struct mapq_plugin_call call = {0};
    msgpack_unpacked u;
    struct mapq_buf in = MAPQ_BUF_INIT;
    msgpack_packer pk;
    char err[MAPQ_ERR_LEN];
    mapq_plugin_fn *fn;
    bool ran = true;

    mapq_plugin_outcome_init(out);
    /* Looked up once per spec: the symbol checks cost more than a no-op
     * call. */
    fn = job->spec->fn;
    if (fn == NULL) {
        fn = mapq_plugin_host_lookup(a->plugins, s->library, s->symbol, err);
        if (fn == NULL) {
            out->status = MAPQ_PLUGIN_ERROR;
            snprintf(out->error, sizeof(out->error), "%s", err);
            return true;
        }
        job->spec->fn = fn;
    }
    mapq_value_packer_init(&pk, &in);
    msgpack_pack_object(&pk, *job->inputs);
    call.execution = job->r.exec;
    call.node = s->node;
    call.index = job->r.index;
    call.attempt = mapq_ref_attempt(&job->r);
    call.input = in.data;
    call.input_len = in.len;
    call.checkpoint = job->ckpt_in;
    call.checkpoint_len = job->ckpt_in_len;
    if (job->r.s == 0) {
        mapq_plugin_host_call(fn, &call, MAPQ_VALUE_MAX, out);
    } else if (!call_isolated(fn, &call, out)) {
        mapq_log(MAPQ_LOG_WARN, "%s: the plugin call crashed", job->ref);
        ran = false;
        goto out_free_input;
    }
    if (out->status == MAPQ_PLUGIN_OK && s->output != NULL) {
        msgpack_unpacked_init(&u);
        if (mapq_value_unpack(out->output.data, out->output.len, &u, err) ==
                MAPQ_OK &&
            mapq_type_check(s->output, &u.data, err) != MAPQ_OK) {
            snprintf(out->error, sizeof(out->error), "output: %.480s", err);
            out->status = MAPQ_PLUGIN_ERROR;
        }
        msgpack_unpacked_destroy(&u);
    }
out_free_input:
    mapq_buf_release(&in);
    return ran;
}
