/*
 * agent_job.c - one claimed subtask (a job): its data, the table of its
 * slot states, the start of its command, and what each way its attempt
 * can end records in mapq1_done.
 *
 * A job is owned by the controller (agent.c), which alone changes its
 * state, lists it and frees it through agent_job_free(). The functions
 * here build a job and the struct job_end of its attempt; they never add
 * to the outbox, start other work or change a job's state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_argv.h"
#include "mapq_log.h"
#include "mapq_record.h"
#include "mapq_seal.h"
#include "mapq_taskspec.h"
#include "mapq_value.h"

#define BIT(s) (1u << (s))

/* Legal moves of a job's state, by state moved from; see agent_int.h. */
static const unsigned legal[JOB_NSTATES] = {
    [JOB_NEW] = BIT(JOB_SPEC) | BIT(JOB_DONE),
    [JOB_SPEC] = BIT(JOB_QUEUED) | BIT(JOB_FETCH) | BIT(JOB_RESERVE) |
                 BIT(JOB_RUN) | BIT(JOB_SPEC_STOPPED) | BIT(JOB_SPEC_LOST) |
                 BIT(JOB_DONE),
    [JOB_SPEC_STOPPED] = BIT(JOB_DONE),
    [JOB_SPEC_LOST] = BIT(JOB_DONE),
    [JOB_QUEUED] =
        BIT(JOB_FETCH) | BIT(JOB_RESERVE) | BIT(JOB_RUN) | BIT(JOB_DONE),
    [JOB_FETCH] = BIT(JOB_RESERVE) | BIT(JOB_RUN) | BIT(JOB_FETCH_STOPPED) |
                  BIT(JOB_FETCH_LOST) | BIT(JOB_DONE),
    [JOB_FETCH_STOPPED] = BIT(JOB_DONE),
    [JOB_FETCH_LOST] = BIT(JOB_DONE),
    [JOB_RESERVE] = BIT(JOB_RUN) | BIT(JOB_RESERVE_STOPPED) |
                    BIT(JOB_RESERVE_LOST) | BIT(JOB_DONE),
    [JOB_RESERVE_STOPPED] = BIT(JOB_DONE),
    [JOB_RESERVE_LOST] = BIT(JOB_DONE),
    [JOB_RUN] = BIT(JOB_RUN_INTERRUPTED) | BIT(JOB_RUN_STOPPED) |
                BIT(JOB_RUN_LOST) | BIT(JOB_UPLOAD) | BIT(JOB_DONE),
    [JOB_UPLOAD] = BIT(JOB_RUN_STOPPED) | BIT(JOB_RUN_LOST) | BIT(JOB_DONE),
    [JOB_RUN_INTERRUPTED] =
        BIT(JOB_RUN_STOPPED) | BIT(JOB_RUN_LOST) | BIT(JOB_DONE),
    [JOB_RUN_STOPPED] = BIT(JOB_DONE),
    [JOB_RUN_LOST] = BIT(JOB_DONE),
    [JOB_DONE] = 0,
};

bool
agent_job_state_legal(enum job_state from, enum job_state to)
{
    if (from < 0 || from >= JOB_NSTATES || to < 0 || to >= JOB_NSTATES)
        return false;
    return (legal[from] & BIT(to)) != 0;
}

const char *
agent_job_state_name(enum job_state s)
{
    static const char *const names[JOB_NSTATES] = {
        [JOB_NEW] = "new",
        [JOB_SPEC] = "spec",
        [JOB_SPEC_STOPPED] = "spec-stopped",
        [JOB_SPEC_LOST] = "spec-lost",
        [JOB_QUEUED] = "queued",
        [JOB_FETCH] = "fetch",
        [JOB_FETCH_STOPPED] = "fetch-stopped",
        [JOB_FETCH_LOST] = "fetch-lost",
        [JOB_RESERVE] = "reserve",
        [JOB_RESERVE_STOPPED] = "reserve-stopped",
        [JOB_RESERVE_LOST] = "reserve-lost",
        [JOB_RUN] = "run",
        [JOB_RUN_INTERRUPTED] = "run-interrupted",
        [JOB_RUN_STOPPED] = "run-stopped",
        [JOB_RUN_LOST] = "run-lost",
        [JOB_UPLOAD] = "upload",
        [JOB_DONE] = "done",
    };

    return s >= 0 && s < JOB_NSTATES ? names[s] : "?";
}

/* ---- the job ----------------------------------------------------------- */

void
agent_job_free(struct job *job)
{
    if (job == NULL)
        return;
    mapq_cmd_free(job->cmd);
    agent_files_release(job);
    agent_worker_drop(job->worker);
    agent_plugin_child_free(job->child);
    msgpack_unpacked_destroy(&job->body_u);
    free(job->body);
    free(job->ckpt_in);
    free(job->ref);
    free(job);
}

size_t
agent_job_key(const struct mapq_ref *r, bool index, char *key)
{
    size_t n = strlen(r->exec);

    /* A parsed ref's exec is MAPQ_EXEC_ID_LEN characters: with its
     * numbers, far less than the key's room. */
    mapq_assert(n + 2 * MAPQ_ARGV_DIGITS + 3 <= AGENT_KEY_LEN);
    memcpy(key, r->exec, n);
    key[n++] = '/';
    n += mapq_argv_digits(key + n, r->k);
    if (index) {
        key[n++] = '/';
        n += mapq_argv_digits(key + n, r->index);
    }
    key[n] = '\0';
    return n;
}

/* Parses a body: {"i": index, "in": inputs, "h": key}, sealed for its
 * subtask when the agent has a secret (MAPQ_ESEAL otherwise). */
static enum mapq_err
job_parse_body(struct job *job, char *err)
{
    struct mapq_body body;
    enum mapq_err rc;
    const char *msg;
    size_t len;
    char id[AGENT_KEY_LEN];

    agent_job_key(&job->r, true, id);
    rc = mapq_seal_open(job->a->cfg.seal, "body", id, job->body, job->bodylen,
                        &msg, &len, err);
    if (rc != MAPQ_OK)
        return rc;
    rc = mapq_value_unpack(msg, len, &job->body_u, err);
    if (rc == MAPQ_OK)
        rc = mapq_record_body(&job->body_u.data, &body, err);
    if (rc != MAPQ_OK)
        return rc;
    job->inputs = body.inputs;
    job->field = body.key;
    job->fieldlen = body.keylen;
    return MAPQ_OK;
}

struct job *
agent_job_new(struct mapq_agent *a, const msgpack_object *ref,
              const msgpack_object *body, const msgpack_object *ckpt, char *why)
{
    struct job *job = mapq_xcalloc(1, sizeof(*job));
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    job->a = a;
    job->state = JOB_NEW;
    job->started_ms = agent_now_ms(); /* again when it starts to run */
    job->ref = mapq_xstrndup(ref->via.str.ptr, ref->via.str.size);
    job->body = mapq_xmemdup(body->via.str.ptr, body->via.str.size);
    job->bodylen = body->via.str.size;
    if (ckpt->type == MSGPACK_OBJECT_STR) {
        job->ckpt_in = mapq_xmemdup(ckpt->via.str.ptr, ckpt->via.str.size);
        job->ckpt_in_len = ckpt->via.str.size;
    }
    msgpack_unpacked_init(&job->body_u);
    why[0] = '\0';
    rc = mapq_ref_parse(job->ref, strlen(job->ref), &job->r);
    if (rc == MAPQ_OK)
        rc = job_parse_body(job, err);
    if (rc == MAPQ_ESEAL)
        snprintf(why, MAPQ_ERR_LEN, "security: %.480s", err);
    else if (rc != MAPQ_OK)
        snprintf(why, MAPQ_ERR_LEN, "corrupt subtask message");
    return job;
}

struct job *
agent_job_find(struct mapq_agent *a, const char *ref)
{
    struct job *job;

    TAILQ_FOREACH (job, &a->jobs, entry)
        if (strcmp(job->ref, ref) == 0)
            return job;
    return NULL;
}

bool
agent_job_needs_reservation(const struct job *job)
{
    const struct mapq_taskspec *s = job->spec ? job->spec->spec : NULL;

    return s != NULL && s->cache_serialize && !s->overwrite &&
           job->field != NULL;
}

struct mapq_cmd *
agent_job_command(struct job *job, mapq_cmd_done_fn *done, char *err)
{
    struct mapq_agent *a = job->a;
    const struct mapq_taskspec *s = job->spec->spec;
    struct mapq_cmd_spec cs = {0};
    struct mapq_cmd_ctx ctx = {0};

    cs.argv = s->argv;
    cs.argc = s->argc;
    cs.output = s->output_written ? s->output_written : s->output;
    cs.output_text = s->output_text;
    cs.timeout_ms = s->timeout_ms;
    cs.mem_bytes = s->mem_bytes;
    cs.cpus = job->held.cpus;
    cs.ncpus = (size_t)job->held.ncpus;
    cs.output_max = MAPQ_VALUE_MAX;
    ctx.execution = job->r.exec;
    ctx.node = s->node;
    ctx.index = job->r.index;
    ctx.attempt = mapq_ref_attempt(&job->r);
    ctx.dirs = a->dirs;
    ctx.checkpoint_in = job->ckpt_in;
    ctx.checkpoint_len = job->ckpt_in_len;
    return mapq_cmd_start(a->base, &cs, &ctx, job->inputs, done, job, err);
}

/* ---- what an attempt records ------------------------------------------- */

static void
end_init(struct job_end *end, char kind, int phase, char *target,
         const char *error)
{
    end->kind = kind;
    end->phase = phase;
    mapq_buf_init(&end->record, 0);
    end->target = target;
    end->error = error ? mapq_xstrdup(error) : NULL;
}

void
agent_job_end_release(struct job_end *end)
{
    mapq_buf_release(&end->record);
    free(end->target);
    free(end->error);
    end->target = end->error = NULL;
    end->kind = 0;
}

/* A result record: {"p": phase, "v": value} for a success, "b" between
 * them when it holds blobs (held, their raw SHA-256; right after "p",
 * where mapq1_done finds it); else {"p", "e", "a"[, "l"]}. */
static void
pack_record(struct mapq_buf *out, int phase, const struct mapq_buf *value,
            const struct mapq_buf *held, const char *error,
            const struct mapq_buf *tail, uint32_t attempt)
{
    msgpack_packer pk;
    size_t tlen = tail ? tail->len : 0;
    bool has_b = value != NULL && held != NULL && held->len > 0;

    mapq_value_packer_init(&pk, out);
    msgpack_pack_map(&pk, value ? (has_b ? 3 : 2) : (tlen ? 4 : 3));
    mapq_value_pack_str(&pk, "p");
    msgpack_pack_int(&pk, phase);
    if (has_b) {
        mapq_value_pack_str(&pk, "b");
        msgpack_pack_bin(&pk, held->len);
        msgpack_pack_bin_body(&pk, held->data, held->len);
    }
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

void
agent_job_succeeded(const struct job *job, const struct mapq_buf *value,
                    struct job_end *end)
{
    end_init(end, 'T', MAPQ_PHASE_SUCCEEDED, result_target(job), NULL);
    pack_record(&end->record, MAPQ_PHASE_SUCCEEDED, value, &job->store_held,
                NULL, NULL, 0);
}

/* A user error: retried while the task's retries last, unless final. */
void
agent_job_failed(const struct job *job, int phase, const char *error,
                 const struct mapq_buf *tail, bool final, struct job_end *end)
{
    const struct mapq_taskspec *s = job->spec ? job->spec->spec : NULL;
    char list[96];
    int64_t delay;

    if (s != NULL && !final && job->r.u < (uint32_t)s->retries) {
        /* The record of a retry is its delay: the retry waits in
         * P:delayed until then. */
        delay = mapq_taskspec_backoff_ms(s, job->r.u + 1,
                                         (double)random() / 2147483648.0);
        mapq_log(MAPQ_LOG_INFO,
                 "%s: attempt %u failed, retrying in %lld ms: %s", job->ref,
                 mapq_ref_attempt(&job->r), (long long)delay, error);
        snprintf(list, sizeof(list), "%s/%s", job->r.queue, job->r.cls);
        end_init(end, 'U', phase, mapq_xstrdup(list), error);
        if (delay > 0)
            mapq_buf_printf(&end->record, "%lld", (long long)delay);
        return;
    }
    end_init(end, 'T', phase, result_target(job), error);
    pack_record(&end->record, phase, NULL, NULL, error, tail,
                mapq_ref_attempt(&job->r));
}

void
agent_job_ran(const struct job *job, const struct mapq_cmd_result *res,
              struct job_end *end)
{
    if (res->status == MAPQ_CMD_SUCCEEDED)
        agent_job_succeeded(job, &res->output, end);
    else
        agent_job_failed(job,
                         res->status == MAPQ_CMD_TIMED_OUT
                             ? MAPQ_PHASE_TIMED_OUT
                             : MAPQ_PHASE_FAILED,
                         res->error, &res->stderr_tail, false, end);
}

/* Handed back after an interruption: system budget, maybe demoted to
 * non-interruptible agents. */
void
agent_job_interrupted(const struct job *job, struct job_end *end)
{
    const struct mapq_taskspec *s = job->spec->spec;
    bool demote = job->r.cls[0] == 'i' &&
                  job->r.i + 1 >= (uint32_t)s->interruptible_failures;

    end_init(end, 'I', MAPQ_PHASE_QUEUED,
             mapq_xasprintf("%s/%c%c", job->r.queue,
                            demote ? 'n' : job->r.cls[0], job->r.cls[1]),
             "interrupted: its agent was stopping");
}

/* Kind S (a system retry), I (interrupted) or R (handed back before it
 * started, costing nothing): queued again to the same list. */
void
agent_job_requeued(const struct job *job, char kind, const char *error,
                   struct job_end *end)
{
    (void)job;
    end_init(end, kind, MAPQ_PHASE_QUEUED, NULL, error);
}

void
agent_job_cached(const struct job *job, const char *rec, size_t len,
                 struct job_end *end)
{
    end_init(end, 'T', MAPQ_PHASE_CACHED, result_target(job), NULL);
    mapq_buf_append(&end->record, rec, len);
}
