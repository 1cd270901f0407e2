/*
 * mapq_agent_step.c - the controller's one call to Redis: mapq1_step,
 * which finishes the outbox's attempts and claims, in one function call
 * per loop pass. Decides what to ask for (a subtask per free slot, the
 * prefetch that keeps busy slots fed, the promotion of a delayed retry
 * that is due), when to send (finished attempts wait for a batch unless a
 * short list may be waiting for them) and what the reply says (claimed
 * subtasks, refused results, when the next delayed retry is due, ended
 * executions).
 *
 * Part of the controller (with mapq_agent.c, which owns the jobs): it
 * uses the claim and outbox leaves for their halves of the call and hands
 * what the reply says to the controller's functions in agent_int.h.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "mapq_log.h"
#include "mapq_taskspec.h"
#include "mapq_value.h"

int
agent_task_depth(const struct spec_entry *e)
{
    if (e == NULL || e->spec == NULL)
        return 1;
    return agent_claim_depth(e->spec->batch, e->avg_us);
}

/* A step said that these executions (an array of str, borrowed) ended:
 * what the agent holds of them stops now, not at the next renewal. */
static void
execs_ended(struct mapq_agent *a, const msgpack_object *execs)
{
    struct job *job, *next;
    uint32_t i;

    for (i = 0;
         execs->type == MSGPACK_OBJECT_ARRAY && i < execs->via.array.size;
         i++) {
        const msgpack_object *e = &execs->via.array.ptr[i];
        char exec[MAPQ_EXEC_ID_LEN + 1];

        if (e->type != MSGPACK_OBJECT_STR || e->via.str.size > MAPQ_EXEC_ID_LEN)
            continue;
        memcpy(exec, e->via.str.ptr, e->via.str.size);
        exec[e->via.str.size] = '\0';
        agent_workers_end_exec(a, exec);
        for (job = TAILQ_FIRST(&a->jobs); job != NULL; job = next) {
            next = TAILQ_NEXT(job, entry);
            if (strlen(job->r.exec) == e->via.str.size &&
                memcmp(job->r.exec, e->via.str.ptr, e->via.str.size) == 0)
                a->ops->lease_ended(a, job->ref, true);
        }
    }
}

/* How many command subtasks the agent holds: a batch per slot while it
 * runs or holds only tasks that are prefetched (the smallest batch of
 * theirs), else one per slot (0). Read from the tasks' counts of jobs
 * held, not from the jobs: the list holds up to a batch per slot, and
 * this runs more than once per subtask. */
static int
prefetch_hold(const struct mapq_agent *a)
{
    const struct spec_entry *e;
    int depth = 0, d, seen = 0;

    if (a->prefetch_paused)
        return 0;
    for (e = LIST_FIRST(&a->specs); e != NULL && seen < a->nheld_specs;
         e = LIST_NEXT(e, entry)) {
        if (e->nheld == 0)
            continue;
        seen++;
        d = agent_task_depth(e);
        if (d < 2)
            return 0;
        if (depth == 0 || d < depth)
            depth = d;
    }
    return depth * a->cfg.slots;
}

/* Finished attempts may wait for more to go in one call, up to a batch
 * and FLUSH_DEFER_MS, unless a short list may be waiting for them (hold:
 * prefetch_hold()): agent_claim_defers(). */
static bool
may_defer(const struct mapq_agent *a, int hold)
{
    return !a->stopping && agent_claim_defers(hold, a->running_cmds, a->queued,
                                              a->bells[BELL_CMD].cut,
                                              a->outbox.argc / DONE_FIELDS);
}

/* Arms the promote timer to fire in ms (earlier wins). */
static void
promote_at(struct mapq_agent *a, int64_t ms)
{
    struct timeval tv, left;

    if (evtimer_pending(a->promote_ev, &left)) {
        struct timeval now;

        event_base_gettimeofday_cached(a->base, &now);
        if ((int64_t)(left.tv_sec - now.tv_sec) * 1000 +
                (left.tv_usec - now.tv_usec) / 1000 <=
            ms)
            return;
    }
    agent_ms_to_tv(ms, &tv);
    evtimer_add(a->promote_ev, &tv);
}

static void
step_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN] = "not a string";
    const msgpack_object *parts = NULL;
    bool promoted = a->promote_sent;

    a->step_inflight = a->promote_sent = false;
    msgpack_unpacked_init(&u);
    if (reply != NULL && reply->type == REDIS_REPLY_STRING &&
        mapq_value_unpack(reply->str, reply->len, &u, err) == MAPQ_OK &&
        u.data.type == MSGPACK_OBJECT_ARRAY && u.data.via.array.size >= 3)
        parts = u.data.via.array.ptr;
    if (parts == NULL) {
        /* An error reply: again after the backoff. A lost connection: the
         * state callback resumes on reconnect. */
        if (reply != NULL && reply->type == REDIS_REPLY_STRING)
            mapq_log(MAPQ_LOG_ERROR, "malformed step reply: %s", err);
        if (reply != NULL || mapq_redis_ready(a->cmd))
            agent_retry_later(&a->step_retry, a->step_retry_ev,
                              "FCALL mapq1_step",
                              agent_failure_text(reply, why));
        agent_outbox_reply(a, NULL);
        agent_claim_reply(a, NULL);
        a->promote_due |= promoted;
        goto out;
    }
    agent_retry_done(&a->step_retry, "FCALL mapq1_step");
    if (a->sending_delay_ms > 0)
        promote_at(a, a->sending_delay_ms + 1);
    agent_metrics_refused(a->metrics, agent_outbox_reply(a, &parts[1]));
    agent_claim_reply(a, &parts[0]);
    if (parts[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        promote_at(a, (int64_t)parts[2].via.u64 + 1);
    if (u.data.via.array.size >= 4)
        execs_ended(a, &parts[3]);
    agent_fill_slots(a);
    agent_step_soon(a);
out:
    a->sending_delay_ms = 0;
    msgpack_unpacked_destroy(&u);
    agent_check_exit(a);
}

/*
 * The agent's one call: finishes the outbox's next batch and claims what
 * the slots and the prefetch want, in one mapq1_step. Finished attempts
 * may wait for a batch (may_defer); a claim goes at once and takes the
 * outbox with it.
 */
static void
step(struct mapq_agent *a, bool flush)
{
    struct bell *bc = &a->bells[BELL_CMD], *bp = &a->bells[BELL_PLUGIN];
    int hold = prefetch_hold(a);
    struct agent_claim_view v = {.slots = a->cfg.slots,
                                 .running = a->running_cmds,
                                 .waiting = a->waiting,
                                 .queued = a->queued,
                                 .hold = hold,
                                 .plugin_batch = a->cfg.plugin_batch,
                                 .dry_cmd = bc->dry,
                                 .dry_plugin = bp->dry,
                                 .cmd_paused = a->admit_paused,
                                 .flushing = a->outbox.argc > 0 &&
                                             (flush || !may_defer(a, hold))};
    struct agent_claim_plan p = {0, 0, 0, false, false};
    struct mapq_argv cmd;
    bool claiming, sending;

    /* A slot may have freed without a record (a lost lease, a reservation
     * passed): its prefetched subtask starts now. */
    agent_fill_slots(a);
    if (a->step_inflight || !mapq_redis_ready(a->cmd) ||
        evtimer_pending(a->step_retry_ev, NULL))
        return;
    if (!a->stopping) {
        agent_claim_plan(&v, &p);
        agent_claim_wait(a, &p);
    }
    claiming = p.ncmd > 0 || p.nplugin > 0 || p.prefetch > 0 ||
               (a->promote_due && !a->stopping);
    /* Again: filling the slots may have paused the prefetch. */
    hold = prefetch_hold(a);
    sending = a->outbox.argc > 0 && (flush || claiming || !may_defer(a, hold));
    if (!claiming && !sending) {
        if (a->outbox.argc > 0 && !evtimer_pending(a->defer_ev, NULL)) {
            struct timeval tv;

            agent_ms_to_tv(FLUSH_DEFER_MS, &tv);
            evtimer_add(a->defer_ev, &tv);
        }
        return;
    }
    evtimer_del(a->defer_ev);
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_step");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, a->ns);
    mapq_argv_add(&cmd, a->name);
    mapq_argv_addint(&cmd, a->cfg.lease_ms);
    a->promote_sent = claiming && a->promote_due;
    a->promote_due = false;
    agent_claim_args(a, &p, a->promote_sent, a->outbox.argc > 0, &cmd);
    a->sending_delay_ms = 0;
    if (a->outbox.argc > 0)
        agent_outbox_args(a, &cmd, &a->sending_delay_ms);
    a->step_inflight = true;
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, step_cb, a, cmd.argc, cmd.argv,
                       cmd.lens);
    mapq_argv_release(&cmd);
}

/* Steps on the next loop pass: what several events ask for goes in one
 * call. */
void
agent_step_soon(struct mapq_agent *a)
{
    event_active(a->step_ev, EV_TIMEOUT, 0);
}

void
agent_step_ev_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    step(arg, false);
}

void
agent_defer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    step(arg, true);
}

void
agent_promote_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;

    (void)fd;
    (void)what;
    a->promote_due = true;
    step(a, false);
}
