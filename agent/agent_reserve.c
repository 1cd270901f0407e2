/*
 * agent_reserve.c - cache_serialize reservations: one attempt per cache key
 * at a time (mapq1_reserve), asked before a job runs.
 *
 * Owns only its requests. The verdict goes to the controller, which runs,
 * records or drops the job; a request Redis refuses marks the job
 * reserve_due, asked again by the controller after the backoff or on
 * reconnect (the job's lease is renewed meanwhile).
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_log.h"
#include "mapq_taskspec.h"

struct reserve_req {
    struct mapq_agent *a;
    char *ref;
};

/* The verdict in a mapq1_reserve reply: {"run"}, {"cached", record},
 * {"wait"} or {"lost"}. */
static enum reserve_verdict
verdict_of(const redisReply *reply)
{
    const char *v;

    if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        reply->element[0]->type != REDIS_REPLY_STRING)
        return RESERVE_MALFORMED;
    v = reply->element[0]->str;
    if (strcmp(v, "run") == 0)
        return RESERVE_RUN;
    if (strcmp(v, "cached") == 0 && reply->elements == 2 &&
        reply->element[1]->type == REDIS_REPLY_STRING)
        return RESERVE_CACHED;
    return RESERVE_PASS;
}

static void
reserve_cb(redisReply *reply, const char *why, void *arg)
{
    struct reserve_req *req = arg;
    struct mapq_agent *a = req->a;
    struct job *job = agent_job_find(a, req->ref);
    enum reserve_verdict v;

    if (job == NULL || !job_waits_reserve(job))
        goto out; /* gone meanwhile (the agent is stopping) */
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* Asked again after the backoff, or on reconnect; its lease is
         * renewed meanwhile. */
        job->reserve_due = true;
        if (reply != NULL || mapq_redis_ready(a->cmd))
            agent_retry_later(&a->reserve_retry, a->reserve_retry_ev,
                              "FCALL mapq1_reserve",
                              agent_failure_text(reply, why));
        goto out;
    }
    agent_retry_done(&a->reserve_retry, "FCALL mapq1_reserve");
    v = verdict_of(reply);
    if (v == RESERVE_MALFORMED)
        a->ops->reserved(job, v, NULL, NULL, 0);
    else if (v == RESERVE_CACHED)
        a->ops->reserved(job, v, reply->element[0]->str, reply->element[1]->str,
                         reply->element[1]->len);
    else
        a->ops->reserved(job, v, reply->element[0]->str, NULL, 0);
out:
    free(req->ref);
    free(req);
}

void
agent_reserve_send(struct job *job)
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
    /* Whose lease to look in (the library looks in every agent's for a
     * caller that does not say). */
    mapq_argv_add(&cmd, a->name);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, reserve_cb, req, cmd.argc,
                       cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
}
