/*
 * agent_lease.c - the agent's presence in Redis: its entry (registered on
 * every connect, removed when it leaves), the renewal of its jobs' leases
 * and reservations, which is also its heartbeat, and opportunistic
 * reaping of expired leases.
 *
 * Owns only its requests. What a renewal says about a job (its lease was
 * lost, its execution ended) goes to the controller, which stops the job.
 * Renewals and reaps are retried by their own ticks.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_log.h"

static void
renew_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;
    int part = 0;
    size_t i;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        /* The next tick (at most a second away, lease/3 at most) renews
         * again: a longer backoff would let leases expire. */
        if (reply != NULL || mapq_redis_ready(a->cmd))
            agent_retry_later(&a->renew_retry, NULL, "FCALL mapq1_renew",
                              agent_failure_text(reply, why));
        return;
    }
    agent_retry_done(&a->renew_retry, "FCALL mapq1_renew");
    if (a->cfg.heartbeat_fn != NULL)
        a->cfg.heartbeat_fn(a->cfg.heartbeat_arg);
    /* Refs whose lease was lost, "|", refs whose execution ended, "|",
     * then refs someone follows (mapq logs -f). */
    for (i = 0; i < reply->elements; i++) {
        const char *ref = reply->element[i]->str;

        if (ref == NULL)
            continue;
        if (strcmp(ref, "|") == 0)
            part++;
        else if (part < 2)
            a->ops->lease_ended(a, ref, part == 1);
        else
            a->ops->followed(a, ref);
    }
}

void
agent_lease_renew(struct mapq_agent *a)
{
    struct mapq_argv cmd;
    struct job *job;

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
    /* The reservations of cache_serialize attempts live as long: a running
     * job that needs one got it before it started. */
    mapq_argv_add(&cmd, "|");
    TAILQ_FOREACH (job, &a->jobs, entry)
        if (job_running(job) && agent_job_needs_reservation(job))
            mapq_argv_addlen(&cmd, job->field, job->fieldlen);
    /* Last: ask which running jobs someone follows (a library that does
     * not know it takes it for a reservation's key: harmless). */
    mapq_argv_add(&cmd, "|f");
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, renew_cb, a, cmd.argc, cmd.argv,
                       cmd.lens);
    mapq_argv_release(&cmd);
}

bool
agent_lease_beat(struct mapq_agent *a, int64_t now)
{
    /* Leases need the tick; an idle agent's heartbeat can be slower, so
     * that a large idle fleet costs Redis little. Half a tick of slack:
     * the tick that comes IDLE_BEAT_MS later, a millisecond early, beats. */
    if (TAILQ_EMPTY(&a->jobs) && now - a->last_beat_ms < IDLE_BEAT_MS - 500)
        return false;
    a->last_beat_ms = now;
    agent_lease_renew(a);
    /* Sent together, one wake-up of Redis serves both: on a quiet server
     * each wake-up costs several times what the calls do. */
    if (a->reap_due) {
        a->reap_due = false;
        agent_lease_reap(a);
    }
    return true;
}

static void
reap_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;

    /* Reaping is opportunistic: the next tick tries again. */
    if (reply != NULL && reply->type != REDIS_REPLY_ERROR)
        agent_retry_done(&a->reap_retry, "FCALL mapq1_reap");
    else if (reply != NULL || mapq_redis_ready(a->cmd))
        agent_retry_later(&a->reap_retry, NULL, "FCALL mapq1_reap",
                          agent_failure_text(reply, why));
}

void
agent_lease_reap(struct mapq_agent *a)
{
    const char *argv[] = {"FCALL", "mapq1_reap", "0", a->ns, "1000"};
    size_t lens[5];
    int i;

    if (!mapq_redis_ready(a->cmd))
        return;
    for (i = 0; i < 5; i++)
        lens[i] = strlen(argv[i]);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, reap_cb, a, 5, argv, lens);
}

void
agent_lease_reap_tick(struct mapq_agent *a)
{
    /* An idle agent reaps with its next heartbeat (agent_lease_beat()). */
    if (TAILQ_EMPTY(&a->jobs))
        a->reap_due = true;
    else
        agent_lease_reap(a);
}

/* ---- the agent's entry ------------------------------------------------- */

static void
register_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;

    if (reply != NULL && reply->type != REDIS_REPLY_ERROR)
        agent_retry_done(&a->register_retry, "HSET (agent entry)");
    else if (reply != NULL || mapq_redis_ready(a->cmd))
        agent_retry_later(&a->register_retry, a->register_retry_ev,
                          "HSET (agent entry)", agent_failure_text(reply, why));
}

void
agent_lease_register(struct mapq_agent *a)
{
    struct mapq_argv cmd;
    char host[256] = "";
    size_t q;

    gethostname(host, sizeof(host) - 1);
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HSET");
    mapq_key_add(&cmd, mapq_key_agent(a->ns, a->name));
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
    mapq_argv_add(&cmd, "cpus");
    mapq_argv_addf(&cmd, "%lld", (long long)a->res.cpu_milli);
    mapq_argv_add(&cmd, "mem");
    mapq_argv_addf(&cmd, "%lld", (long long)a->res.mem_bytes);
    mapq_argv_add(&cmd, "started");
    mapq_argv_addf(&cmd, "%lld", (long long)agent_now_ms());
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, register_cb, a, cmd.argc,
                       cmd.argv, cmd.lens);
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
unregister_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;

    (void)reply;
    (void)why;
    a->ops->left(a);
}

void
agent_lease_leave(struct mapq_agent *a)
{
    const char *argv[3];
    size_t lens[3];
    char *key;

    key = mapq_key_agents(a->ns);
    argv[0] = "ZREM";
    argv[1] = key;
    argv[2] = a->name;
    lens[0] = 4;
    lens[1] = strlen(key);
    lens[2] = strlen(a->name);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, ignore_reply, NULL, 3, argv,
                       lens);
    free(key);
    key = mapq_key_agent(a->ns, a->name);
    argv[0] = "DEL";
    argv[1] = key;
    lens[0] = 3;
    lens[1] = strlen(key);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, unregister_cb, a, 2, argv,
                       lens);
    free(key);
}
