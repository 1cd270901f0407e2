/*
 * agent_specs.c - the cache of task specs: one entry per (execution,
 * node), fetched once (HGET P:x:<exec> t:<k>) and shared by the jobs that
 * need it, at most SPEC_CACHE_MAX entries, evicting one no job uses.
 *
 * Owns the entries and their specs. A fetch that Redis refuses is tried
 * again after a backoff (or on reconnect); a reply, or the reason there
 * is no spec, goes to the controller, which starts the waiting jobs.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_log.h"
#include "mapq_seal.h"
#include "mapq_taskspec.h"

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

/* Decodes the spec read for e (data, len bytes), sealed for it when the
 * agent has a secret, and running what --allow-exec allows: else e->error
 * says why, and e->security is set (its jobs fail for good). */
static void
spec_open(struct mapq_agent *a, struct spec_entry *e, const char *data,
          size_t len)
{
    char err[MAPQ_ERR_LEN];
    const char *msg;
    size_t mlen;

    if (mapq_seal_open(a->cfg.seal, "spec", e->key, data, len, &msg, &mlen,
                       err) != MAPQ_OK) {
        snprintf(e->error, sizeof(e->error), "security: %.480s", err);
        e->security = true;
        return;
    }
    e->spec = mapq_taskspec_decode(msg, mlen, e->error);
    if (e->spec != NULL && !agent_allow_spec(&a->cfg, e->spec, e->error)) {
        mapq_taskspec_free(e->spec);
        e->spec = NULL;
        e->security = true;
    }
}

static void
spec_reply_cb(redisReply *reply, const char *why, void *arg)
{
    struct spec_fetch *f = arg;
    struct mapq_agent *a = f->a;
    struct spec_entry *e = f->e;

    free(f);
    e->fetching = false;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR) {
        /* Redis busy or loading, or a permission missing: jobs wait, their
         * leases renewed, and the fetch is tried again after the backoff
         * (or on reconnect, when the connection went down). */
        if (reply != NULL || mapq_redis_ready(a->cmd))
            agent_retry_later(&a->spec_retry, a->spec_retry_ev,
                              "HGET (task spec)",
                              agent_failure_text(reply, why));
        return;
    }
    agent_retry_done(&a->spec_retry, "HGET (task spec)");
    if (reply->type == REDIS_REPLY_STRING)
        spec_open(a, e, reply->str, reply->len);
    else
        snprintf(e->error, sizeof(e->error),
                 "no task spec for %s: the execution is gone", e->key);
    if (e->spec == NULL)
        mapq_log(MAPQ_LOG_WARN, "task spec %s unusable: %s", e->key, e->error);
    a->ops->spec_ready(a, e);
}

void
agent_spec_fetch(struct mapq_agent *a, struct spec_entry *e,
                 const struct job *job)
{
    struct spec_fetch *f = mapq_xcalloc(1, sizeof(*f));
    struct mapq_argv cmd;

    f->a = a;
    f->e = e;
    e->fetching = true;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HGET");
    mapq_key_add(&cmd, mapq_key_exec(a->ns, job->r.exec));
    mapq_argv_addf(&cmd, "t:%u", job->r.k);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, spec_reply_cb, f, cmd.argc,
                       cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
}

/* Fetches again the task specs that jobs wait for and that failed. */
void
agent_spec_refetch(struct mapq_agent *a)
{
    struct job *job;

    if (!mapq_redis_ready(a->cmd) || evtimer_pending(a->spec_retry_ev, NULL))
        return;
    TAILQ_FOREACH (job, &a->jobs, entry)
        if (job_waits_spec(job) && !job->spec->fetching &&
            job->spec->spec == NULL && job->spec->error[0] == '\0')
            agent_spec_fetch(a, job->spec, job);
}

struct spec_entry *
agent_spec_get(struct mapq_agent *a, const struct job *job)
{
    struct spec_entry *e;
    char key[AGENT_KEY_LEN];
    size_t n = agent_job_key(&job->r, false, key);

    LIST_FOREACH (e, &a->specs, entry)
        if (strcmp(e->key, key) == 0)
            return e;
    if (a->nspecs >= SPEC_CACHE_MAX)
        spec_evict(a);
    e = mapq_xcalloc(1, sizeof(*e));
    e->avg_us = -1;
    memcpy(e->key, key, n + 1);
    LIST_INSERT_HEAD(&a->specs, e, entry);
    a->nspecs++;
    return e;
}

void
agent_specs_release(struct mapq_agent *a)
{
    struct spec_entry *e;

    while ((e = LIST_FIRST(&a->specs)) != NULL) {
        LIST_REMOVE(e, entry);
        mapq_taskspec_free(e->spec);
        free(e);
    }
}
