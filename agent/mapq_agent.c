/*
 * mapq_agent.c - claim, run, record: the agent's loop.
 *
 * Data flow: doorbell (BLPOP) -> mapq1_claim -> job per (ref, body) -> task
 * spec from the cache (or HGET P:x:<exec> t:<k>) -> plugin call or command
 * -> outbox -> mapq1_done. The outbox is one argument vector, flushed once
 * per loop pass; if a flush fails its entries go back in front of the
 * outbox and are sent again after a backoff, or after reconnecting (done is
 * fenced by ref, so a repeat is refused harmlessly). Every other call that
 * Redis can refuse (claim, renew, reap, task spec, reservation, register)
 * is tried again after a capped, jittered backoff of its own (mapq_retry),
 * each cause logged once and once when it clears. A call that got no reply
 * because the connection went down is not retried here: the connection's
 * state callback resumes everything on reconnect. Nothing here blocks the
 * loop.
 */
#include "mapq_agent.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_cmd.h"
#include "mapq_fs.h"
#include "mapq_log.h"
#include "mapq_plugin_host.h"
#include "mapq_proto.h"
#include "mapq_record.h"
#include "mapq_retry.h"
#include "mapq_taskspec.h"
#include "mapq_value.h"

#define SPEC_CACHE_MAX   128
#define CALL_TIMEOUT_MS  10000
#define BELL_BLOCK_S     2
#define DONE_BATCH_MAX   1000
#define DONE_BATCH_BYTES (64 * 1024 * 1024)
#define EXIT_DEADLINE_MS 5000
#define DONE_FIELDS      8     /* arguments of one attempt in mapq1_done */
#define UNREACHABLE_MS   10000 /* warn this often while redis is away */
#define LOG_TAIL_MAX     2048  /* stderr bytes kept in an attempt's log */
#define RETRY_MIN_MS     100   /* first wait after a Redis error reply */
#define RETRY_MAX_MS     2000  /* longest wait between tries */

enum job_state {
    JOB_WAIT_SPEC,    /* waiting for its task spec */
    JOB_WAIT_RESERVE, /* cache_serialize: asking for its key's reservation */
    JOB_RUNNING,      /* command running */
};

struct spec_entry {
    char key[96]; /* "<exec>/<k>" */
    struct mapq_taskspec *spec;
    char error[MAPQ_ERR_LEN]; /* set when the spec could not be used */
    mapq_plugin_fn *fn;       /* plugin tasks: looked up on first use */
    bool fetching;
    LIST_ENTRY(spec_entry) entry;
};

struct job {
    struct mapq_agent *a;
    char *ref;
    struct mapq_ref r;
    char *body; /* owned copy; body_u points into it */
    size_t bodylen;
    msgpack_unpacked body_u;
    const msgpack_object *inputs;
    const char *field; /* subtask key, points into body */
    size_t fieldlen;
    struct spec_entry *spec;
    struct mapq_cmd *cmd;
    enum job_state state;
    bool interrupted; /* killed by the drain: hand back, no user retry */
    bool abandoned;   /* lease lost: another attempt owns the result */
    bool stopped;     /* its execution ended (failed, cancelled): ABORTED */
    bool final;       /* a failure now is final: no retry */
    bool reserved;    /* cache_serialize: holds its key's reservation */
    bool reserve_due; /* its reservation request failed: ask again */
    int64_t started_ms;
    const struct mapq_cmd_result *res; /* while its command's end is handled */
    char *ckpt_in; /* the previous attempt's checkpoint (owned), or NULL */
    size_t ckpt_in_len;
    const struct mapq_buf *ckpt_out; /* this attempt's, while it is recorded */
    TAILQ_ENTRY(job) entry;
};

TAILQ_HEAD(job_list, job);

struct mapq_agent {
    struct event_base *base;
    struct mapq_agent_config cfg;
    char *ns, *name, *workroot;
    char **queues;
    struct mapq_redis *cmd;  /* functions */
    struct mapq_redis *blk;  /* plugin doorbell waits */
    struct mapq_redis *blkc; /* command doorbell waits, while a slot is free */
    struct mapq_plugin_host *plugins;
    struct job_list jobs; /* waiting for spec or running */
    int running_cmds;
    int waiting;
    LIST_HEAD(, spec_entry) specs;
    int nspecs;
    bool claim_inflight, bell_inflight, bellc_inflight, done_inflight;
    /* The last claim of this kind got less than it asked for: the lists are
     * empty until their doorbell rings, so claims leave the kind out. */
    bool dry_c, dry_p;
    int asked_c, asked_p; /* by the claim in flight */
    /* Bells heard, per kind; a claim's short reply makes the kind dry only
     * if no bell rang while it was in flight (that work came later). */
    unsigned bells_c, bells_p, claim_bells_c, claim_bells_p;
    bool stopping, hard_stop;
    bool leaving;              /* drained: unregistering, then the loop ends */
    struct mapq_argv outbox;   /* done arguments (DONE_FIELDS per entry) */
    struct mapq_argv sending;  /* the entries of the done call in flight */
    struct event *flush_ev;    /* zero-timeout: flush the outbox */
    struct event *renew_ev;    /* lease renewal */
    struct event *reap_ev;     /* opportunistic reaping */
    struct event *grace_ev;    /* end of drain grace */
    struct event *deadline_ev; /* exit even if redis is gone */
    struct event *watch_ev;    /* says so while redis stays unreachable */
    /* Redis error replies (OOM, BUSY, NOPERM, ...): each path waits out a
     * jittered backoff before it tries again, and says so once per cause.
     * Renewals and reaps have their own ticks, which are their retries. */
    struct mapq_retry claim_retry, done_retry, renew_retry, reap_retry;
    struct mapq_retry spec_retry, reserve_retry, register_retry;
    struct event *claim_retry_ev;    /* claims (and doorbells) resume */
    struct event *done_retry_ev;     /* the outbox is sent again */
    struct event *spec_retry_ev;     /* task specs are fetched again */
    struct event *reserve_retry_ev;  /* reservations are asked again */
    struct event *register_retry_ev; /* the agent's entry is written again */
};

static void maybe_claim(struct mapq_agent *a);
static void job_start(struct job *job);
static void job_free(struct job *job);
static void check_exit(struct mapq_agent *a);

static int64_t
now_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static void
ms_to_tv(int64_t ms, struct timeval *tv)
{
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

/* The text of a failed reply: Redis's error, or why there was none. */
static const char *
failure_text(const redisReply *reply, const char *why)
{
    if (reply == NULL)
        return why;
    return reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str
                                                          : "unexpected reply";
}

/*
 * Counts a failure of path (the command, e.g. "FCALL mapq1_claim") and arms
 * ev to try again after the backoff; a cause not seen since the path last
 * worked is logged once. A permanent cause (NOPERM: the Redis user lacks a
 * permission) is an error an operator must fix; an agent is a daemon, so it
 * keeps trying, at the longest delay, and works again once it is fixed.
 */
static void
retry_later(struct mapq_retry *r, struct event *ev, const char *path,
            const char *text)
{
    bool permanent = mapq_retry_classify(text) == MAPQ_RETRY_PERMANENT;
    struct timeval tv;
    int delay_ms;

    if (mapq_retry_fail(r, text, &delay_ms)) {
        if (permanent)
            mapq_log(MAPQ_LOG_ERROR,
                     "%s refused by redis: %s (this does not clear by "
                     "itself: fix the redis user or server; retrying every "
                     "%d ms)",
                     path, text, r->max_ms);
        else
            mapq_log(MAPQ_LOG_WARN, "%s failed, retrying with backoff: %s",
                     path, text);
    }
    if (permanent)
        delay_ms = r->max_ms;
    mapq_log(MAPQ_LOG_DEBUG, "%s failed (%u in a row), next try %s%d ms: %s",
             path, r->failures, ev != NULL ? "in " : "on its tick, not ",
             delay_ms, text);
    if (ev != NULL) {
        ms_to_tv(delay_ms, &tv);
        evtimer_add(ev, &tv);
    }
}

/* Records a success of path; says so when it had been failing. */
static void
retry_done(struct mapq_retry *r, const char *path)
{
    if (mapq_retry_ok(r))
        mapq_log(MAPQ_LOG_INFO, "%s works again after %lu failures (%s)", path,
                 r->count, r->code);
}

/* ---- outbox ------------------------------------------------------------ */

static void
schedule_flush(struct mapq_agent *a)
{
    event_active(a->flush_ev, EV_TIMEOUT, 0);
}

/*
 * The attempt's log entry (docs/PROTOCOL.md, P:log): who ran it, when, for
 * how long, how it ended, and the end of its stderr.
 */
static void
pack_attempt(struct mapq_buf *out, const struct job *job, char kind, int phase,
             const char *error)
{
    const struct mapq_cmd_result *res = job->res;
    const char *tail = res ? res->stderr_tail.data : NULL;
    size_t tlen = res ? res->stderr_tail.len : 0, n = 6;
    bool has_exit = res && res->exit_status >= 0,
         has_sig = res && res->term_signal > 0, has_err = error && *error;
    msgpack_packer pk;

    if (tlen > LOG_TAIL_MAX) {
        /* From a line's start when one begins in the kept part. */
        const char *nl =
            memchr(tail + tlen - LOG_TAIL_MAX, '\n', LOG_TAIL_MAX - 1);

        tail = nl ? nl + 1 : tail + tlen - LOG_TAIL_MAX;
        tlen = (size_t)(res->stderr_tail.data + res->stderr_tail.len - tail);
    }
    n += has_exit + has_sig + has_err + (tlen > 0);
    mapq_value_packer_init(&pk, out);
    msgpack_pack_map(&pk, (uint32_t)n);
    mapq_value_pack_str(&pk, "a");
    msgpack_pack_uint32(&pk, mapq_ref_attempt(&job->r));
    mapq_value_pack_str(&pk, "ag");
    mapq_value_pack_str(&pk, job->a->name);
    mapq_value_pack_str(&pk, "t");
    msgpack_pack_int64(&pk, job->started_ms);
    mapq_value_pack_str(&pk, "d");
    msgpack_pack_int64(&pk,
                       res ? res->duration_ms : now_ms() - job->started_ms);
    mapq_value_pack_str(&pk, "k");
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, &kind, 1);
    mapq_value_pack_str(&pk, "p");
    msgpack_pack_int(&pk, phase);
    if (has_exit) {
        mapq_value_pack_str(&pk, "x");
        msgpack_pack_int(&pk, res->exit_status);
    }
    if (has_sig) {
        mapq_value_pack_str(&pk, "sig");
        msgpack_pack_int(&pk, res->term_signal);
    }
    if (has_err) {
        mapq_value_pack_str(&pk, "e");
        mapq_value_pack_str(&pk, error);
    }
    if (tlen > 0) {
        mapq_value_pack_str(&pk, "l");
        msgpack_pack_str(&pk, tlen);
        msgpack_pack_str_body(&pk, tail, tlen);
    }
}

/*
 * Appends one finished attempt. kind: T terminal (record stored), U user
 * retry, S system retry, I interrupted. target: "<queue>/<cls>" for
 * retries. error: why it failed (NULL when it did not). Every attempt is
 * logged except a plugin's success, which would cost the fast path more
 * Redis memory than its result. The checkpoint the attempt left, if any
 * (job->ckpt_out), goes with it.
 */
static void
outbox_add(struct mapq_agent *a, const struct job *job, char kind, int phase,
           const struct mapq_buf *record, const char *target, const char *error)
{
    char k[2] = {kind, '\0'};
    struct mapq_buf log = MAPQ_BUF_INIT;
    const struct mapq_buf *ckpt;

    if (!(kind == 'T' && phase == MAPQ_PHASE_SUCCEEDED && job->r.cls[1] == 'p'))
        pack_attempt(&log, job, kind, phase, error);
    mapq_argv_add(&a->outbox, job->ref);
    mapq_argv_add(&a->outbox, k);
    mapq_argv_addf(&a->outbox, "%d", phase);
    mapq_argv_addlen(&a->outbox, job->field ? job->field : "",
                     job->field ? job->fieldlen : 0);
    mapq_argv_addlen(&a->outbox, record ? record->data : "",
                     record ? record->len : 0);
    mapq_argv_add(&a->outbox, target ? target : "");
    mapq_argv_addlen(&a->outbox, log.len ? log.data : "", log.len);
    /* A success drops the checkpoint: no need to send it. */
    ckpt = kind == 'T' &&
                   (phase == MAPQ_PHASE_SUCCEEDED || phase == MAPQ_PHASE_CACHED)
               ? NULL
               : job->ckpt_out;
    mapq_argv_addlen(&a->outbox, ckpt ? ckpt->data : "", ckpt ? ckpt->len : 0);
    mapq_buf_release(&log);
    schedule_flush(a);
}

static void
done_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;
    struct mapq_argv rest;
    size_t i;
    int j;

    a->done_inflight = false;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        /* Sent again after a backoff (or on reconnect, when the connection
         * went down); done is fenced by ref, so a batch that was applied
         * after all is refused harmlessly the second time. */
        if (reply != NULL || mapq_redis_ready(a->cmd))
            retry_later(&a->done_retry, a->done_retry_ev, "FCALL mapq1_done",
                        failure_text(reply, why));
        /* Put the batch back in front of what accumulated since. */
        mapq_argv_init(&rest);
        for (j = 0; j < a->outbox.argc; j++)
            mapq_argv_addlen(&rest, a->outbox.argv[j], a->outbox.lens[j]);
        mapq_argv_reset(&a->outbox);
        for (j = 0; j < a->sending.argc; j++)
            mapq_argv_addlen(&a->outbox, a->sending.argv[j],
                             a->sending.lens[j]);
        for (j = 0; j < rest.argc; j++)
            mapq_argv_addlen(&a->outbox, rest.argv[j], rest.lens[j]);
        mapq_argv_release(&rest);
        mapq_argv_reset(&a->sending);
        check_exit(a);
        return;
    }
    retry_done(&a->done_retry, "FCALL mapq1_done");
    for (i = 0; i < reply->elements; i++)
        mapq_log(MAPQ_LOG_WARN,
                 "result of %s refused: its lease was lost, another attempt "
                 "owns it",
                 reply->element[i]->str);
    mapq_argv_reset(&a->sending);
    if (a->outbox.argc > 0)
        schedule_flush(a);
    check_exit(a);
}

/* How many arguments of the outbox the next done call takes: whole
 * entries, at most DONE_BATCH_MAX of them and about DONE_BATCH_BYTES (at
 * least one entry), so that a call stays well under Redis's query limit. */
static int
batch_len(const struct mapq_argv *outbox)
{
    size_t bytes = 0;
    int n = 0, j;

    while (n < outbox->argc && n < DONE_BATCH_MAX * DONE_FIELDS) {
        size_t entry = 0;

        for (j = n; j < n + DONE_FIELDS && j < outbox->argc; j++)
            entry += outbox->lens[j];
        if (n > 0 && bytes + entry > DONE_BATCH_BYTES)
            break;
        bytes += entry;
        n += DONE_FIELDS;
    }
    return n < outbox->argc ? n : outbox->argc;
}

static void
flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;
    struct mapq_argv call;
    int j, n;

    (void)fd;
    (void)what;
    if (a->done_inflight || a->outbox.argc == 0 || !mapq_redis_ready(a->cmd) ||
        evtimer_pending(a->done_retry_ev, NULL))
        return;
    n = batch_len(&a->outbox);
    mapq_argv_init(&call);
    mapq_argv_add(&call, "FCALL");
    mapq_argv_add(&call, "mapq1_done");
    mapq_argv_add(&call, "0");
    mapq_argv_add(&call, a->ns);
    mapq_argv_add(&call, a->name);
    for (j = 0; j < n; j++) {
        mapq_argv_addlen(&call, a->outbox.argv[j], a->outbox.lens[j]);
        mapq_argv_addlen(&a->sending, a->outbox.argv[j], a->outbox.lens[j]);
    }
    /* Shift the rest of the outbox down. */
    for (j = 0; j < n; j++)
        free(a->outbox.owned[j]);
    memmove(a->outbox.owned, a->outbox.owned + n,
            (size_t)(a->outbox.argc - n) * sizeof(char *));
    memmove(a->outbox.argv, a->outbox.argv + n,
            (size_t)(a->outbox.argc - n) * sizeof(char *));
    memmove(a->outbox.lens, a->outbox.lens + n,
            (size_t)(a->outbox.argc - n) * sizeof(size_t));
    a->outbox.argc -= n;
    a->done_inflight = true;
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, done_cb, a, call.argc,
                       call.argv, call.lens);
    mapq_argv_release(&call);
}

/* ---- results ----------------------------------------------------------- */

static void
pack_record(struct mapq_buf *out, int phase, const struct mapq_buf *value,
            const char *error, const struct mapq_buf *tail, uint32_t attempt)
{
    msgpack_packer pk;
    size_t tlen = tail ? tail->len : 0;

    mapq_value_packer_init(&pk, out);
    msgpack_pack_map(&pk, value ? 2 : (tlen ? 4 : 3));
    mapq_value_pack_str(&pk, "p");
    msgpack_pack_int(&pk, phase);
    if (value != NULL) {
        mapq_value_pack_str(&pk, "v");
        mapq_buf_append(out, value->data, value->len);
        return;
    }
    mapq_value_pack_str(&pk, "e");
    mapq_value_pack_str(&pk, error);
    mapq_value_pack_str(&pk, "a");
    msgpack_pack_uint32(&pk, attempt);
    if (tlen) {
        mapq_value_pack_str(&pk, "l");
        msgpack_pack_str(&pk, tlen);
        msgpack_pack_str_body(&pk, tail->data, tlen);
    }
}

/*
 * The target of a final result: for a cached node "c:<ttl ms>:<task>" ("cs:"
 * with cache_serialize, to end the reservation), so that mapq1_done writes
 * successes to the cache and answers the subtasks that followed this one;
 * NULL otherwise. Caller frees.
 */
static char *
result_target(const struct job *job)
{
    const struct mapq_taskspec *s = job->spec ? job->spec->spec : NULL;

    if (s == NULL || !s->cache)
        return NULL;
    return mapq_xasprintf("c%s:%lld:%s", s->cache_serialize ? "s" : "",
                          (long long)s->cache_ttl_ms, s->task);
}

static void
job_succeed(struct job *job, const struct mapq_buf *value)
{
    struct mapq_buf rec = MAPQ_BUF_INIT;
    char *target;

    pack_record(&rec, MAPQ_PHASE_SUCCEEDED, value, NULL, NULL, 0);
    target = result_target(job);
    outbox_add(job->a, job, 'T', MAPQ_PHASE_SUCCEEDED, &rec, target, NULL);
    free(target);
    mapq_buf_release(&rec);
}

/* A user error: retried while the task's retries last. */
static void
job_fail(struct job *job, int phase, const char *error,
         const struct mapq_buf *tail)
{
    struct mapq_agent *a = job->a;
    struct mapq_buf rec = MAPQ_BUF_INIT;
    const struct mapq_taskspec *s = job->spec ? job->spec->spec : NULL;
    char *target, list[96];
    int64_t delay;

    if (s != NULL && !job->final && job->r.u < (uint32_t)s->retries) {
        /* The record of a retry is its delay: the retry waits in
         * P:delayed until then. */
        delay = mapq_taskspec_backoff_ms(s, job->r.u + 1,
                                         (double)random() / 2147483648.0);
        mapq_log(MAPQ_LOG_INFO,
                 "%s: attempt %u failed, retrying in %lld ms: %s", job->ref,
                 mapq_ref_attempt(&job->r), (long long)delay, error);
        snprintf(list, sizeof(list), "%s/%s", job->r.queue, job->r.cls);
        mapq_buf_printf(&rec, "%lld", (long long)delay);
        outbox_add(a, job, 'U', phase, delay > 0 ? &rec : NULL, list, error);
        mapq_buf_release(&rec);
        return;
    }
    pack_record(&rec, phase, NULL, error, tail, mapq_ref_attempt(&job->r));
    target = result_target(job);
    outbox_add(a, job, 'T', phase, &rec, target, error);
    free(target);
    mapq_buf_release(&rec);
}

/* Handed back after an interruption: system budget, maybe demoted to
 * non-interruptible agents. */
static void
job_interrupted(struct job *job)
{
    const struct mapq_taskspec *s = job->spec->spec;
    char target[96];
    bool demote = job->r.cls[0] == 'i' &&
                  job->r.i + 1 >= (uint32_t)s->interruptible_failures;

    snprintf(target, sizeof(target), "%s/%c%c", job->r.queue,
             demote ? 'n' : job->r.cls[0], job->r.cls[1]);
    outbox_add(job->a, job, 'I', MAPQ_PHASE_QUEUED, NULL, target,
               "interrupted: its agent was stopping");
}

/* ---- running ----------------------------------------------------------- */

static void
cmd_done_cb(struct mapq_cmd *cmd, const struct mapq_cmd_result *res, void *arg)
{
    struct job *job = arg;
    struct mapq_agent *a = job->a;

    job->res = res;
    job->ckpt_out = res->has_checkpoint ? &res->checkpoint : NULL;
    if (job->abandoned) {
        /* nothing to record: the lease is gone */
    } else if (job->stopped) {
        job->final = true;
        job_fail(job, MAPQ_PHASE_ABORTED,
                 "aborted: the execution was cancelled or failed", NULL);
    } else if (job->interrupted) {
        job_interrupted(job);
    } else if (res->status == MAPQ_CMD_SUCCEEDED) {
        job_succeed(job, &res->output);
    } else {
        job_fail(job,
                 res->status == MAPQ_CMD_TIMED_OUT ? MAPQ_PHASE_TIMED_OUT
                                                   : MAPQ_PHASE_FAILED,
                 res->error, &res->stderr_tail);
    }
    a->running_cmds--;
    TAILQ_REMOVE(&a->jobs, job, entry);
    job->cmd = NULL; /* the runner frees it after this callback */
    mapq_cmd_free(cmd);
    job_free(job);
    maybe_claim(a);
    check_exit(a);
}

static void
run_command(struct job *job)
{
    struct mapq_agent *a = job->a;
    const struct mapq_taskspec *s = job->spec->spec;
    struct mapq_cmd_spec cs = {0};
    struct mapq_cmd_ctx ctx = {0};
    char err[MAPQ_ERR_LEN];

    cs.argv = s->argv;
    cs.argc = s->argc;
    cs.output = s->output;
    cs.output_text = s->output_text;
    cs.timeout_ms = s->timeout_ms;
    cs.mem_bytes = s->mem_bytes;
    cs.output_max = MAPQ_VALUE_MAX;
    ctx.execution = job->r.exec;
    ctx.node = s->node;
    ctx.index = job->r.index;
    ctx.attempt = mapq_ref_attempt(&job->r);
    ctx.workroot = a->workroot;
    ctx.checkpoint_in = job->ckpt_in;
    ctx.checkpoint_len = job->ckpt_in_len;
    job->state = JOB_RUNNING;
    a->running_cmds++;
    job->cmd =
        mapq_cmd_start(a->base, &cs, &ctx, job->inputs, cmd_done_cb, job, err);
    if (job->cmd == NULL) {
        /* Could not start at all on this host: a system failure. */
        mapq_log(MAPQ_LOG_ERROR, "%s: cannot start command: %s", job->ref, err);
        a->running_cmds--;
        TAILQ_REMOVE(&a->jobs, job, entry);
        outbox_add(a, job, 'S', MAPQ_PHASE_QUEUED, NULL, NULL, err);
        job_free(job);
    }
}

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

static bool
read_all(int fd, void *p, size_t len)
{
    char *c = p;
    ssize_t n;

    while (len > 0) {
        n = read(fd, c, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        c += n;
        len -= (size_t)n;
    }
    return true;
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

static void
run_plugin(struct job *job)
{
    struct mapq_agent *a = job->a;
    const struct mapq_taskspec *s = job->spec->spec;
    struct mapq_plugin_call call = {0};
    struct mapq_plugin_outcome out;
    msgpack_unpacked u;
    struct mapq_buf in = MAPQ_BUF_INIT;
    msgpack_packer pk;
    char err[MAPQ_ERR_LEN];
    mapq_plugin_fn *fn;

    /* Looked up once per spec: the symbol checks cost more than a no-op
     * call. The host keeps libraries open for the agent's lifetime. */
    fn = job->spec->fn;
    if (fn == NULL) {
        fn = mapq_plugin_host_lookup(a->plugins, s->library, s->symbol, err);
        if (fn == NULL) {
            job_fail(job, MAPQ_PHASE_FAILED, err, NULL);
            return;
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
    mapq_plugin_outcome_init(&out);
    if (job->r.s == 0) {
        mapq_plugin_host_call(fn, &call, MAPQ_VALUE_MAX, &out);
    } else if (!call_isolated(fn, &call, &out)) {
        /* Lost before, maybe because it crashed the agent that ran it
         * with its whole batch: now it can cost only its own attempt. */
        mapq_log(MAPQ_LOG_WARN, "%s: the plugin call crashed", job->ref);
        outbox_add(a, job, 'S', MAPQ_PHASE_QUEUED, NULL, NULL,
                   "the plugin call crashed the process running it");
        mapq_plugin_outcome_release(&out);
        mapq_buf_release(&in);
        return;
    }
    job->ckpt_out = out.has_checkpoint ? &out.checkpoint : NULL;
    if (out.status == MAPQ_PLUGIN_OK && s->output != NULL) {
        msgpack_unpacked_init(&u);
        if (mapq_value_unpack(out.output.data, out.output.len, &u, err) ==
                MAPQ_OK &&
            mapq_type_check(s->output, &u.data, err) != MAPQ_OK) {
            snprintf(out.error, sizeof(out.error), "output: %.480s", err);
            out.status = MAPQ_PLUGIN_ERROR;
        }
        msgpack_unpacked_destroy(&u);
    }
    if (out.status == MAPQ_PLUGIN_OK)
        job_succeed(job, &out.output);
    else
        job_fail(job, MAPQ_PHASE_FAILED, out.error, NULL);
    mapq_plugin_outcome_release(&out);
    mapq_buf_release(&in);
}

static void reserve_send(struct job *job);
static struct job *find_job(struct mapq_agent *a, const char *ref);

/* Runs a job whose spec is known; frees it unless a command runs on. */
static void
job_start(struct job *job)
{
    struct mapq_agent *a = job->a;
    const struct mapq_taskspec *s = job->spec->spec;
    char msg[256];

    TAILQ_REMOVE(&a->jobs, job, entry);
    a->waiting--;
    job->started_ms = now_ms();
    if (job->abandoned) {
        /* lost its lease while waiting (spec, reservation): not ours */
    } else if (job->stopped) {
        /* its execution ended while it waited: never run it */
        job->final = true;
        job_fail(job, MAPQ_PHASE_ABORTED,
                 "aborted: the execution was cancelled or failed", NULL);
    } else if (s == NULL) {
        job_fail(job, MAPQ_PHASE_FAILED, job->spec->error, NULL);
    } else if (job->r.s > (uint32_t)s->system_retries) {
        snprintf(msg, sizeof(msg),
                 "lost %u times: the agents running it died, were "
                 "interrupted or lost their lease (system_retries: %d)",
                 job->r.s, s->system_retries);
        job->final = true; /* no user retry either */
        job_fail(job, MAPQ_PHASE_FAILED, msg, NULL);
    } else if (s->cache_serialize && !s->overwrite && !job->reserved &&
               job->field != NULL) {
        /* One attempt per cache key at a time: ask first. */
        job->state = JOB_WAIT_RESERVE;
        TAILQ_INSERT_TAIL(&a->jobs, job, entry);
        a->waiting++;
        reserve_send(job);
        return;
    } else if (s->plugin) {
        run_plugin(job);
    } else {
        TAILQ_INSERT_TAIL(&a->jobs, job, entry);
        run_command(job);
        return;
    }
    job_free(job);
}

/* ---- cache_serialize --------------------------------------------------- */

struct reserve_req {
    struct mapq_agent *a;
    char *ref;
};

/* Takes job (waiting for its reservation) off the list and frees it. */
static void
job_drop(struct job *job)
{
    TAILQ_REMOVE(&job->a->jobs, job, entry);
    job->a->waiting--;
    job_free(job);
}

static void
reserve_cb(redisReply *reply, const char *why, void *arg)
{
    struct reserve_req *req = arg;
    struct mapq_agent *a = req->a;
    struct job *job = find_job(a, req->ref);
    const char *verdict;

    if (job == NULL || job->state != JOB_WAIT_RESERVE)
        goto out; /* gone meanwhile (the agent is stopping) */
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* Asked again after the backoff, or on reconnect; its lease is
         * renewed meanwhile. */
        job->reserve_due = true;
        if (reply != NULL || mapq_redis_ready(a->cmd))
            retry_later(&a->reserve_retry, a->reserve_retry_ev,
                        "FCALL mapq1_reserve", failure_text(reply, why));
        goto out;
    }
    retry_done(&a->reserve_retry, "FCALL mapq1_reserve");
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        /* Its lease will expire and it runs again. */
        mapq_log(MAPQ_LOG_WARN, "%s: malformed reservation reply", job->ref);
        job_drop(job);
        goto out;
    }
    verdict = reply->element[0]->str;
    if (strcmp(verdict, "run") == 0) {
        job->reserved = true;
        job->state = JOB_WAIT_SPEC;
        job_start(job);
    } else if (strcmp(verdict, "cached") == 0 && reply->elements == 2 &&
               reply->element[1]->type == REDIS_REPLY_STRING) {
        struct mapq_buf rec = MAPQ_BUF_INIT;
        char *target;

        mapq_buf_append(&rec, reply->element[1]->str, reply->element[1]->len);
        target = result_target(job);
        outbox_add(a, job, 'T', MAPQ_PHASE_CACHED, &rec, target, NULL);
        free(target);
        mapq_buf_release(&rec);
        job_drop(job);
    } else {
        /* "wait": parked until the holder ends; "lost": not ours now. */
        mapq_log(MAPQ_LOG_DEBUG, "%s: %s", job->ref, verdict);
        job_drop(job);
    }
    maybe_claim(a);
    check_exit(a);
out:
    free(req->ref);
    free(req);
}

static void
reserve_send(struct job *job)
{
    struct mapq_agent *a = job->a;
    struct reserve_req *req = mapq_xcalloc(1, sizeof(*req));
    struct mapq_argv cmd;

    req->a = a;
    req->ref = mapq_xstrdup(job->ref);
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_reserve");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, a->ns);
    mapq_argv_add(&cmd, job->ref);
    mapq_argv_addlen(&cmd, job->field, job->fieldlen);
    mapq_argv_addf(&cmd, "%d", a->cfg.lease_ms);
    mapq_argv_add(&cmd, job->spec->spec->task);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, reserve_cb, req, cmd.argc,
                       cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
}

/* Asks again for the reservations whose requests failed. */
static void
reserve_resend(struct mapq_agent *a)
{
    struct job *job, *next;

    if (!mapq_redis_ready(a->cmd) || evtimer_pending(a->reserve_retry_ev, NULL))
        return;
    for (job = TAILQ_FIRST(&a->jobs); job != NULL; job = next) {
        next = TAILQ_NEXT(job, entry);
        if (job->state != JOB_WAIT_RESERVE || !job->reserve_due)
            continue;
        job->reserve_due = false;
        if (job->abandoned)
            job_drop(job); /* lost its lease meanwhile: not ours */
        else
            reserve_send(job);
    }
    check_exit(a);
}

static void
reserve_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    reserve_resend(arg);
}

/* ---- task specs -------------------------------------------------------- */

static void
spec_evict(struct mapq_agent *a)
{
    struct spec_entry *e, *victim = NULL;
    struct job *job;

    LIST_FOREACH (e, &a->specs, entry) {
        bool used = e->fetching;

        TAILQ_FOREACH (job, &a->jobs, entry)
            if (job->spec == e)
                used = true;
        if (!used)
            victim = e;
    }
    if (victim == NULL)
        return;
    LIST_REMOVE(victim, entry);
    mapq_taskspec_free(victim->spec);
    free(victim);
    a->nspecs--;
}

struct spec_fetch {
    struct mapq_agent *a;
    struct spec_entry *e;
};

static void
spec_reply_cb(redisReply *reply, const char *why, void *arg)
{
    struct spec_fetch *f = arg;
    struct mapq_agent *a = f->a;
    struct spec_entry *e = f->e;
    struct job *job, *next;

    free(f);
    e->fetching = false;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* Redis busy or loading, or a permission missing: jobs wait, their
         * leases renewed, and the fetch is tried again after the backoff
         * (or on reconnect, when the connection went down). */
        if (reply != NULL || mapq_redis_ready(a->cmd))
            retry_later(&a->spec_retry, a->spec_retry_ev, "HGET (task spec)",
                        failure_text(reply, why));
        return;
    }
    retry_done(&a->spec_retry, "HGET (task spec)");
    if (reply->type == REDIS_REPLY_STRING)
        e->spec = mapq_taskspec_decode(reply->str, reply->len, e->error);
    else
        snprintf(e->error, sizeof(e->error),
                 "no task spec for %s: the execution is gone", e->key);
    if (e->spec == NULL)
        mapq_log(MAPQ_LOG_WARN, "task spec %s unusable: %s", e->key, e->error);
    for (job = TAILQ_FIRST(&a->jobs); job != NULL; job = next) {
        next = TAILQ_NEXT(job, entry);
        if (job->spec == e && job->state == JOB_WAIT_SPEC)
            job_start(job);
    }
    schedule_flush(a);
    maybe_claim(a);
}

static void
spec_fetch(struct mapq_agent *a, struct spec_entry *e, const struct job *job)
{
    struct spec_fetch *f = mapq_xcalloc(1, sizeof(*f));
    struct mapq_argv cmd;

    f->a = a;
    f->e = e;
    e->fetching = true;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HGET");
    mapq_argv_addf(&cmd, "%s:x:%s", a->ns, job->r.exec);
    mapq_argv_addf(&cmd, "t:%u", job->r.k);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, spec_reply_cb, f, cmd.argc,
                       cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
}

/* Fetches again the task specs that jobs wait for and that failed. */
static void
spec_refetch(struct mapq_agent *a)
{
    struct job *job;

    if (!mapq_redis_ready(a->cmd) || evtimer_pending(a->spec_retry_ev, NULL))
        return;
    TAILQ_FOREACH (job, &a->jobs, entry)
        if (job->state == JOB_WAIT_SPEC && !job->spec->fetching &&
            job->spec->spec == NULL && job->spec->error[0] == '\0')
            spec_fetch(a, job->spec, job);
}

static void
spec_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    spec_refetch(arg);
}

static struct spec_entry *
spec_get(struct mapq_agent *a, const struct job *job)
{
    struct spec_entry *e;
    char key[96];

    snprintf(key, sizeof(key), "%s/%u", job->r.exec, job->r.k);
    LIST_FOREACH (e, &a->specs, entry)
        if (strcmp(e->key, key) == 0)
            return e;
    if (a->nspecs >= SPEC_CACHE_MAX)
        spec_evict(a);
    e = mapq_xcalloc(1, sizeof(*e));
    snprintf(e->key, sizeof(e->key), "%s", key);
    LIST_INSERT_HEAD(&a->specs, e, entry);
    a->nspecs++;
    return e;
}

/* ---- jobs -------------------------------------------------------------- */

static void
job_free(struct job *job)
{
    if (job == NULL)
        return;
    mapq_cmd_free(job->cmd);
    msgpack_unpacked_destroy(&job->body_u);
    free(job->body);
    free(job->ckpt_in);
    free(job->ref);
    free(job);
}

/* Parses a body: {"i": index, "in": inputs, "h": key}. */
static enum mapq_err
job_parse_body(struct job *job, char *err)
{
    struct mapq_body body;
    enum mapq_err rc;

    rc = mapq_value_unpack(job->body, job->bodylen, &job->body_u, err);
    if (rc == MAPQ_OK)
        rc = mapq_record_body(&job->body_u.data, &body, err);
    if (rc != MAPQ_OK)
        return rc;
    job->inputs = body.inputs;
    job->field = body.key;
    job->fieldlen = body.keylen;
    return MAPQ_OK;
}

/* A claimed subtask: ref, body and checkpoint (a str, or false) borrowed
 * from the claim reply. */
static void
job_new(struct mapq_agent *a, const msgpack_object *ref,
        const msgpack_object *body, const msgpack_object *ckpt)
{
    struct job *job = mapq_xcalloc(1, sizeof(*job));
    char err[MAPQ_ERR_LEN];

    job->a = a;
    job->started_ms = now_ms(); /* again when it starts to run */
    job->ref = mapq_xstrndup(ref->via.str.ptr, ref->via.str.size);
    job->body = mapq_xmemdup(body->via.str.ptr, body->via.str.size);
    job->bodylen = body->via.str.size;
    if (ckpt->type == MSGPACK_OBJECT_STR) {
        job->ckpt_in = mapq_xmemdup(ckpt->via.str.ptr, ckpt->via.str.size);
        job->ckpt_in_len = ckpt->via.str.size;
    }
    msgpack_unpacked_init(&job->body_u);
    if (mapq_ref_parse(job->ref, strlen(job->ref), &job->r) != MAPQ_OK ||
        job_parse_body(job, err) != MAPQ_OK) {
        /* Corrupt: record a failure so that nothing waits for it. */
        mapq_log(MAPQ_LOG_WARN, "corrupt subtask %s set aside", job->ref);
        job->final = true;
        job_fail(job, MAPQ_PHASE_FAILED, "corrupt subtask message", NULL);
        job_free(job);
        return;
    }
    job->state = JOB_WAIT_SPEC;
    job->spec = spec_get(a, job);
    TAILQ_INSERT_TAIL(&a->jobs, job, entry);
    a->waiting++;
    if (job->spec->spec != NULL || job->spec->error[0] != '\0')
        job_start(job);
    else if (!job->spec->fetching)
        spec_fetch(a, job->spec, job);
}

/* ---- claiming ---------------------------------------------------------- */

static void bell_wait(struct mapq_agent *a);
static int free_slots(const struct mapq_agent *a);

static void
claim_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;
    msgpack_unpacked u;
    struct mapq_claimed c;
    enum mapq_claim_entry kind;
    char err[MAPQ_ERR_LEN] = "not an array";
    uint32_t pos = 0;
    int got_c = 0, got_p = 0;

    a->claim_inflight = false;
    if (reply == NULL || reply->type != REDIS_REPLY_STRING) {
        /* Lost connection: the state callback resumes claiming on
         * reconnect. An error reply: claim again after the backoff. */
        if (reply != NULL || mapq_redis_ready(a->cmd))
            retry_later(&a->claim_retry, a->claim_retry_ev, "FCALL mapq1_claim",
                        failure_text(reply, why));
        return;
    }
    retry_done(&a->claim_retry, "FCALL mapq1_claim");
    msgpack_unpacked_init(&u);
    if (mapq_value_unpack(reply->str, reply->len, &u, err) != MAPQ_OK ||
        u.data.type != MSGPACK_OBJECT_ARRAY) {
        mapq_log(MAPQ_LOG_ERROR, "malformed claim reply: %s", err);
        goto out;
    }
    while ((kind = mapq_record_claim_next(&u.data, &pos, &c)) !=
           MAPQ_CLAIM_END) {
        if (kind == MAPQ_CLAIM_FOREIGN)
            mapq_log(
                MAPQ_LOG_WARN, "foreign message set aside from a queue: '%.*s'",
                (int)(c.ref->via.str.size < 200 ? c.ref->via.str.size : 200),
                c.ref->via.str.ptr);
        if (kind != MAPQ_CLAIM_SUBTASK)
            continue;
        /* The ref ends in its class: "nc", "np", "ic" or "ip". */
        if (c.ref->via.str.size > 0 &&
            c.ref->via.str.ptr[c.ref->via.str.size - 1] == 'c')
            got_c++;
        else
            got_p++;
        job_new(a, c.ref, c.body, c.ckpt);
    }
out:
    msgpack_unpacked_destroy(&u);
    if (got_c < a->asked_c && a->bells_c == a->claim_bells_c)
        a->dry_c = true;
    if (got_p < a->asked_p && a->bells_p == a->claim_bells_p)
        a->dry_p = true;
    schedule_flush(a);
    maybe_claim(a);
}

/* The backoff after a failed claim or doorbell ran out: look again. */
static void
claim_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    maybe_claim(arg);
}

static int
free_slots(const struct mapq_agent *a)
{
    return a->cfg.slots - a->running_cmds - a->waiting;
}

/*
 * Claims what this agent can take now, leaving out the kinds that ran dry;
 * for those (and when nothing can be claimed) it waits on the doorbells.
 */
static void
maybe_claim(struct mapq_agent *a)
{
    struct mapq_argv cmd;
    int ncmd = a->dry_c || free_slots(a) < 0 ? 0 : free_slots(a);
    int nplug =
        !a->dry_p && a->waiting < a->cfg.plugin_batch ? a->cfg.plugin_batch : 0;
    size_t q;

    if (a->stopping || a->claim_inflight || !mapq_redis_ready(a->cmd) ||
        evtimer_pending(a->claim_retry_ev, NULL))
        return;
    if (a->dry_c || a->dry_p || (ncmd == 0 && nplug == 0))
        bell_wait(a);
    if (ncmd == 0 && nplug == 0)
        return;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_claim");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, a->ns);
    mapq_argv_add(&cmd, a->name);
    mapq_argv_addf(&cmd, "%d", a->cfg.lease_ms);
    mapq_argv_addf(&cmd, "%d", ncmd);
    mapq_argv_addf(&cmd, "%d", nplug);
    mapq_argv_add(&cmd, a->cfg.interruptible ? "1" : "0");
    for (q = 0; q < a->cfg.nqueues; q++)
        mapq_argv_add(&cmd, a->queues[q]);
    a->claim_inflight = true;
    a->asked_c = ncmd;
    a->asked_p = nplug;
    a->claim_bells_c = a->bells_c;
    a->claim_bells_p = a->bells_p;
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, claim_cb, a, cmd.argc, cmd.argv,
                       cmd.lens);
    mapq_argv_release(&cmd);
}

static void
bell_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;

    (void)why;
    a->bell_inflight = false;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        retry_later(&a->claim_retry, a->claim_retry_ev, "BLPOP (doorbells)",
                    reply->str);
        return;
    }
    /* Rung, or timed out: either way look again, so that a bell lost
     * with a crashed agent delays work by one wait at most. */
    if (reply != NULL) {
        a->dry_p = false;
        a->bells_p++;
        maybe_claim(a);
    }
}

static void
bellc_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;

    (void)why;
    a->bellc_inflight = false;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        retry_later(&a->claim_retry, a->claim_retry_ev, "BLPOP (doorbells)",
                    reply->str);
        return;
    }
    /* Rung, or timed out: either way look again, so that a bell lost
     * with a crashed agent delays work by one wait at most. */
    if (reply != NULL) {
        a->dry_c = false;
        a->bells_c++;
        maybe_claim(a);
    }
}

/* Blocks on the doorbells of one kind ('c' or 'p') of list. */
static void
bell_wait_kind(struct mapq_agent *a, char kind)
{
    static const char *const classes[] = {"n", "i"};
    struct mapq_redis *conn = kind == 'c' ? a->blkc : a->blk;
    bool *inflight = kind == 'c' ? &a->bellc_inflight : &a->bell_inflight;
    struct mapq_argv cmd;
    size_t q, c;

    if (a->stopping || *inflight || !mapq_redis_ready(conn))
        return;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "BLPOP");
    for (q = 0; q < a->cfg.nqueues; q++)
        for (c = 0; c < 2; c++) {
            if (a->cfg.interruptible && classes[c][0] == 'n')
                continue;
            mapq_argv_addf(&cmd, "%s:bell:%s:%s%c", a->ns, a->queues[q],
                           classes[c], kind);
        }
    mapq_argv_addf(&cmd, "%d", BELL_BLOCK_S);
    *inflight = true;
    mapq_redis_command(conn, BELL_BLOCK_S * 1000 + 3000,
                       kind == 'c' ? bellc_cb : bell_cb, a, cmd.argc, cmd.argv,
                       cmd.lens);
    mapq_argv_release(&cmd);
}

/*
 * Waits for work of the kinds this agent can take now. Command and plugin
 * doorbells use separate connections, so the command wait can begin the
 * moment a slot frees even while a plugin wait is pending.
 */
static void
bell_wait(struct mapq_agent *a)
{
    bell_wait_kind(a, 'p');
    if (free_slots(a) > 0)
        bell_wait_kind(a, 'c');
}

/* ---- leases ------------------------------------------------------------ */

static struct job *
find_job(struct mapq_agent *a, const char *ref)
{
    struct job *job;

    TAILQ_FOREACH (job, &a->jobs, entry)
        if (strcmp(job->ref, ref) == 0)
            return job;
    return NULL;
}

static void
renew_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;
    struct job *job;
    bool stop_part = false;
    size_t i;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        /* The next tick (at most a second away, lease/3 at most) renews
         * again: a longer backoff would let leases expire. */
        if (reply != NULL || mapq_redis_ready(a->cmd))
            retry_later(&a->renew_retry, NULL, "FCALL mapq1_renew",
                        failure_text(reply, why));
        return;
    }
    retry_done(&a->renew_retry, "FCALL mapq1_renew");
    if (a->cfg.heartbeat_fn != NULL)
        a->cfg.heartbeat_fn(a->cfg.heartbeat_arg);
    for (i = 0; i < reply->elements; i++) {
        const char *ref = reply->element[i]->str;

        if (ref == NULL)
            continue;
        if (strcmp(ref, "|") == 0) {
            stop_part = true;
            continue;
        }
        job = find_job(a, ref);
        if (job == NULL || job->abandoned || job->stopped)
            continue;
        mapq_log(stop_part ? MAPQ_LOG_INFO : MAPQ_LOG_WARN,
                 "%s: %s, stopping it", ref,
                 stop_part ? "its execution is no longer running"
                           : "lease lost");
        if (stop_part)
            job->stopped = true;
        else
            job->abandoned = true;
        if (job->cmd != NULL)
            mapq_cmd_kill(job->cmd, SIGKILL);
    }
}

static void
renew_tick(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;
    struct mapq_argv cmd;
    struct job *job;

    (void)fd;
    (void)what;
    /* Also the heartbeat: sent when idle too, so mapq agents knows. */
    if (!mapq_redis_ready(a->cmd))
        return;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_renew");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, a->ns);
    mapq_argv_add(&cmd, a->name);
    mapq_argv_addf(&cmd, "%d", a->cfg.lease_ms);
    TAILQ_FOREACH (job, &a->jobs, entry)
        mapq_argv_add(&cmd, job->ref);
    /* The reservations of cache_serialize attempts live as long. */
    mapq_argv_add(&cmd, "|");
    TAILQ_FOREACH (job, &a->jobs, entry)
        if (job->reserved && job->field != NULL)
            mapq_argv_addlen(&cmd, job->field, job->fieldlen);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, renew_cb, a, cmd.argc, cmd.argv,
                       cmd.lens);
    mapq_argv_release(&cmd);
}

static void
ignore_reply(redisReply *reply, const char *why, void *arg)
{
    (void)reply;
    (void)why;
    (void)arg;
}

static void
reap_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;

    /* Reaping is opportunistic: the next tick tries again. */
    if (reply != NULL && reply->type != REDIS_REPLY_ERROR)
        retry_done(&a->reap_retry, "FCALL mapq1_reap");
    else if (reply != NULL || mapq_redis_ready(a->cmd))
        retry_later(&a->reap_retry, NULL, "FCALL mapq1_reap",
                    failure_text(reply, why));
}

static void
reap_tick(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;
    const char *argv[] = {"FCALL", "mapq1_reap", "0", a->ns, "1000"};
    size_t lens[5];
    int i;

    (void)fd;
    (void)what;
    if (!mapq_redis_ready(a->cmd))
        return;
    for (i = 0; i < 5; i++)
        lens[i] = strlen(argv[i]);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, reap_cb, a, 5, argv, lens);
}

/* ---- lifecycle --------------------------------------------------------- */

static void
register_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;

    if (reply != NULL && reply->type != REDIS_REPLY_ERROR)
        retry_done(&a->register_retry, "HSET (agent entry)");
    else if (reply != NULL || mapq_redis_ready(a->cmd))
        retry_later(&a->register_retry, a->register_retry_ev,
                    "HSET (agent entry)", failure_text(reply, why));
}

static void
register_agent(struct mapq_agent *a)
{
    struct mapq_argv cmd;
    char host[256] = "";
    size_t q;

    gethostname(host, sizeof(host) - 1);
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HSET");
    mapq_argv_addf(&cmd, "%s:agent:%s", a->ns, a->name);
    mapq_argv_add(&cmd, "host");
    mapq_argv_add(&cmd, host);
    mapq_argv_add(&cmd, "pid");
    mapq_argv_addf(&cmd, "%ld", (long)getpid());
    mapq_argv_add(&cmd, "slots");
    mapq_argv_addf(&cmd, "%d", a->cfg.slots);
    mapq_argv_add(&cmd, "interruptible");
    mapq_argv_add(&cmd, a->cfg.interruptible ? "1" : "0");
    mapq_argv_add(&cmd, "queues");
    mapq_argv_add(&cmd, a->queues[0]);
    for (q = 1; q < a->cfg.nqueues; q++) {
        char *joined =
            mapq_xasprintf("%s,%s", cmd.argv[cmd.argc - 1], a->queues[q]);

        free(cmd.owned[cmd.argc - 1]);
        cmd.owned[cmd.argc - 1] = joined;
        cmd.argv[cmd.argc - 1] = joined;
        cmd.lens[cmd.argc - 1] = strlen(joined);
    }
    mapq_argv_add(&cmd, "started");
    mapq_argv_addf(&cmd, "%lld", (long long)now_ms());
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, register_cb, a, cmd.argc,
                       cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
}

static void
register_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;

    (void)fd;
    (void)what;
    if (!a->leaving && mapq_redis_ready(a->cmd))
        register_agent(a);
}

static void
cmd_state_cb(struct mapq_redis *r, bool up, void *arg)
{
    struct mapq_agent *a = arg;

    (void)r;
    if (!up) {
        mapq_log(MAPQ_LOG_WARN, "lost the redis connection; reconnecting");
        return;
    }
    mapq_log(MAPQ_LOG_INFO, "connected to redis");
    a->dry_c = a->dry_p = false; /* bells rung while away were not heard */
    if (!evtimer_pending(a->register_retry_ev, NULL))
        register_agent(a);
    spec_refetch(a);
    reserve_resend(a);
    schedule_flush(a);
    maybe_claim(a);
}

/* Why the connection cannot be made or set up: each cause once. */
static void
redis_fault_cb(struct mapq_redis *r, const char *cause, void *arg)
{
    (void)r;
    (void)arg;
    if (cause != NULL)
        mapq_log(MAPQ_LOG_ERROR, "cannot use redis (still trying): %s", cause);
    else
        mapq_log(MAPQ_LOG_INFO, "redis accepts the connection again");
}

static void
blk_state_cb(struct mapq_redis *r, bool up, void *arg)
{
    struct mapq_agent *a = arg;

    if (r == a->blk)
        a->bell_inflight = false;
    else
        a->bellc_inflight = false;
    if (up)
        maybe_claim(a);
}

/* Reconnecting is silent (with backoff): this says, now and then, why the
 * agent does nothing. */
static void
watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;
    char url[600];

    (void)fd;
    (void)what;
    if (mapq_redis_ready(a->cmd))
        return;
    mapq_redis_url_format(&a->cfg.url, url, sizeof(url));
    mapq_log(MAPQ_LOG_WARN, "redis at %s is unreachable; still trying", url);
}

static void
unregister_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;

    (void)reply;
    (void)why;
    event_base_loopexit(a->base, NULL);
}

/* Exits once drained, leaving the list of live agents on the way. */
static void
check_exit(struct mapq_agent *a)
{
    const char *argv[3];
    size_t lens[3];
    char *key;

    if (!a->stopping || !TAILQ_EMPTY(&a->jobs) || a->leaving)
        return;
    if (a->outbox.argc > 0 || a->done_inflight) {
        schedule_flush(a);
        return;
    }
    mapq_log(MAPQ_LOG_INFO, "drained; exiting");
    a->leaving = true;
    event_del(a->renew_ev); /* a late heartbeat would list it again */
    if (!mapq_redis_ready(a->cmd)) {
        event_base_loopexit(a->base, NULL);
        return;
    }
    key = mapq_xasprintf("%s:agents", a->ns);
    argv[0] = "ZREM";
    argv[1] = key;
    argv[2] = a->name;
    lens[0] = 4;
    lens[1] = strlen(key);
    lens[2] = strlen(a->name);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, ignore_reply, NULL, 3, argv,
                       lens);
    free(key);
    key = mapq_xasprintf("%s:agent:%s", a->ns, a->name);
    argv[0] = "DEL";
    argv[1] = key;
    lens[0] = 3;
    lens[1] = strlen(key);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, unregister_cb, a, 2, argv,
                       lens);
    free(key);
}

static void
grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;
    struct job *job, *next;
    struct timeval tv;

    (void)fd;
    (void)what;
    a->hard_stop = true;
    for (job = TAILQ_FIRST(&a->jobs); job != NULL; job = next) {
        next = TAILQ_NEXT(job, entry);
        if (job->cmd != NULL && !job->abandoned) {
            job->interrupted = true;
            mapq_cmd_kill(job->cmd, SIGKILL);
        } else if (job->state == JOB_WAIT_SPEC ||
                   job->state == JOB_WAIT_RESERVE) {
            /* Never started (its task spec is still on the way): handed
             * back to the same list. */
            TAILQ_REMOVE(&a->jobs, job, entry);
            a->waiting--;
            outbox_add(a, job, 'I', MAPQ_PHASE_QUEUED, NULL, NULL,
                       "interrupted before it started: its agent was "
                       "stopping");
            job_free(job);
        }
    }
    ms_to_tv(EXIT_DEADLINE_MS, &tv);
    evtimer_add(a->deadline_ev, &tv);
    check_exit(a);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;

    (void)fd;
    (void)what;
    mapq_log(MAPQ_LOG_WARN,
             "exiting with %d unrecorded results: redis is unreachable or "
             "refuses them; their leases will expire and they will run "
             "again",
             a->outbox.argc / DONE_FIELDS);
    event_base_loopexit(a->base, NULL);
}

void
mapq_agent_shutdown(struct mapq_agent *a)
{
    struct timeval tv;

    if (a->stopping) {
        mapq_log(MAPQ_LOG_INFO, "second signal: skipping the grace period");
        evtimer_del(a->grace_ev);
        grace_cb(-1, 0, a);
        return;
    }
    a->stopping = true;
    mapq_log(MAPQ_LOG_INFO,
             "stopping: no new subtasks; %d running get %lld ms to finish",
             a->running_cmds, (long long)a->cfg.grace_ms);
    ms_to_tv(a->cfg.grace_ms, &tv);
    evtimer_add(a->grace_ev, &tv);
    check_exit(a);
}

static void
make_workroot(struct mapq_agent *a, char *err)
{
    const char *tmp = getenv("TMPDIR");
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/mapq-agent-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(path) == NULL) {
        mapq_err_set(err, MAPQ_EIO, "cannot create a working directory in %s",
                     tmp && *tmp ? tmp : "/tmp");
        return;
    }
    a->workroot = mapq_xstrdup(path);
}

struct mapq_agent *
mapq_agent_new(struct event_base *base, const struct mapq_agent_config *cfg,
               char *err)
{
    struct mapq_agent *a = mapq_xcalloc(1, sizeof(*a));
    struct timeval tv;
    size_t q;

    a->base = base;
    a->cfg = *cfg;
    srandom((unsigned)(now_ms() ^ ((int64_t)getpid() << 16))); /* jitter */
    a->ns = mapq_xstrdup(cfg->ns);
    a->name = mapq_xstrdup(cfg->name);
    a->queues = mapq_xcalloc(cfg->nqueues, sizeof(char *));
    for (q = 0; q < cfg->nqueues; q++)
        a->queues[q] = mapq_xstrdup(cfg->queues[q]);
    a->cfg.queues = NULL;
    make_workroot(a, err);
    if (a->workroot == NULL) {
        mapq_agent_free(a);
        return NULL;
    }
    TAILQ_INIT(&a->jobs);
    LIST_INIT(&a->specs);
    mapq_argv_init(&a->outbox);
    mapq_argv_init(&a->sending);
    a->plugins = mapq_plugin_host_new(cfg->self_dir);
    a->flush_ev = evtimer_new(base, flush_cb, a);
    a->done_retry_ev = evtimer_new(base, flush_cb, a);
    a->claim_retry_ev = evtimer_new(base, claim_retry_cb, a);
    a->spec_retry_ev = evtimer_new(base, spec_retry_cb, a);
    a->reserve_retry_ev = evtimer_new(base, reserve_retry_cb, a);
    a->register_retry_ev = evtimer_new(base, register_retry_cb, a);
    mapq_retry_init(&a->claim_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    mapq_retry_init(&a->done_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    mapq_retry_init(&a->renew_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    mapq_retry_init(&a->reap_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    mapq_retry_init(&a->spec_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    mapq_retry_init(&a->reserve_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    mapq_retry_init(&a->register_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    a->renew_ev = event_new(base, -1, EV_PERSIST, renew_tick, a);
    a->reap_ev = event_new(base, -1, EV_PERSIST, reap_tick, a);
    a->grace_ev = evtimer_new(base, grace_cb, a);
    a->deadline_ev = evtimer_new(base, deadline_cb, a);
    a->watch_ev = event_new(base, -1, EV_PERSIST, watch_cb, a);
    ms_to_tv(UNREACHABLE_MS, &tv);
    event_add(a->watch_ev, &tv);
    /* Renewals also tell agents which executions ended, so running
     * subtasks of a failed or cancelled execution stop within a second. */
    ms_to_tv(cfg->lease_ms / 3 < 1000 ? cfg->lease_ms / 3 : 1000, &tv);
    event_add(a->renew_ev, &tv);
    ms_to_tv(cfg->lease_ms / 2, &tv);
    event_add(a->reap_ev, &tv);
    a->cmd = mapq_redis_new(base, &cfg->url, "agent", cmd_state_cb, a);
    mapq_redis_set_fault_cb(a->cmd, redis_fault_cb, a);
    a->blk = mapq_redis_new(base, &cfg->url, "agent-wait", blk_state_cb, a);
    a->blkc = mapq_redis_new(base, &cfg->url, "agent-waitc", blk_state_cb, a);
    return a;
}

void
mapq_agent_free(struct mapq_agent *a)
{
    struct job *job;
    struct spec_entry *e;
    size_t q;

    if (a == NULL)
        return;
    /* The connections first: their pending requests are answered with no
     * reply now, while the jobs and specs they point to still exist; the
     * flags keep those callbacks from sending anything new. */
    a->stopping = a->leaving = true;
    mapq_redis_free(a->cmd);
    mapq_redis_free(a->blk);
    mapq_redis_free(a->blkc);
    while ((job = TAILQ_FIRST(&a->jobs)) != NULL) {
        TAILQ_REMOVE(&a->jobs, job, entry);
        job_free(job);
    }
    while ((e = LIST_FIRST(&a->specs)) != NULL) {
        LIST_REMOVE(e, entry);
        mapq_taskspec_free(e->spec);
        free(e);
    }
    if (a->flush_ev) {
        event_free(a->flush_ev);
        event_free(a->done_retry_ev);
        event_free(a->claim_retry_ev);
        event_free(a->spec_retry_ev);
        event_free(a->reserve_retry_ev);
        event_free(a->register_retry_ev);
        event_free(a->renew_ev);
        event_free(a->reap_ev);
        event_free(a->grace_ev);
        event_free(a->deadline_ev);
        event_free(a->watch_ev);
    }
    mapq_argv_release(&a->outbox);
    mapq_argv_release(&a->sending);
    mapq_plugin_host_free(a->plugins);
    if (a->workroot != NULL)
        mapq_fs_rmtree(a->workroot);
    free(a->workroot);
    for (q = 0; q < a->cfg.nqueues; q++)
        free(a->queues[q]);
    free(a->queues);
    free(a->ns);
    free(a->name);
    free(a);
}
