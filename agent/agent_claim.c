/*
 * agent_claim.c - claiming: how many subtasks of each kind to ask for
 * (with the prefetch that keeps busy slots fed), the claim's part of the
 * agent's mapq1_step call, what its reply claimed, and the doorbells
 * (BLPOP) the agent waits on when there is nothing it can claim.
 *
 * Owns the doorbell state (struct bell, one per kind of list, each on its
 * own connection so that the command wait can begin the moment a slot
 * frees even while a plugin wait is pending) and its BLPOP requests. Each
 * subtask a reply holds goes to the controller, which makes it a job; a
 * bell that rings wakes the controller.
 */
#include "agent_int.h"
#include "mapq_keys.h"
#include "mapq_log.h"
#include "mapq_record.h"
#include "mapq_value.h"

void
agent_claim_plan(const struct agent_claim_view *v, struct agent_claim_plan *p)
{
    int held = v->running + v->waiting + v->queued;
    int free_slots = v->slots - held;
    int deficit;
    bool asks;

    p->ncmd = v->dry_cmd || v->cmd_paused || free_slots < 0 ? 0 : free_slots;
    /* Prefetch: enough more to keep every slot busy until the next call,
     * asked for along with a claim, with finished attempts that go
     * anyway, or once a batch has been used up, so that each finished
     * subtask does not cost a call of its own. */
    deficit = v->hold - held - p->ncmd;
    asks = p->ncmd > 0 || v->flushing || deficit >= FLUSH_BATCH(v->hold);
    p->prefetch =
        !v->dry_cmd && !v->cmd_paused && deficit > 0 && asks ? deficit : 0;
    p->nplugin =
        !v->dry_plugin && v->waiting < v->plugin_batch ? v->plugin_batch : 0;
    /* Wait for the kinds that ran dry, or for anything when nothing can be
     * claimed; command lists only while a slot is free. */
    p->wait_plugin = v->dry_cmd || v->dry_plugin ||
                     (p->ncmd == 0 && p->nplugin == 0 && p->prefetch == 0);
    p->wait_cmd = p->wait_plugin && free_slots > 0 && !v->cmd_paused;
}

int
agent_claim_depth(int batch, int64_t avg_us)
{
    int64_t d;

    if (batch > 0)
        return batch;
    if (avg_us < 0 || avg_us >= PREFETCH_SHORT_US)
        return 1;
    d = BATCH_WINDOW_US / (avg_us > 0 ? avg_us : 1);
    if (d < BATCH_AUTO_MIN)
        d = BATCH_AUTO_MIN;
    return (int)(d > BATCH_AUTO_MAX ? BATCH_AUTO_MAX : d);
}

bool
agent_claim_dries(int for_slots, int asked, int got, unsigned heard,
                  unsigned heard_at_claim)
{
    /* A prefetch cut short is no sign of an empty list: Redis gives a
     * part of what is left, and none only once too little is. */
    return got < asked && got <= for_slots && heard == heard_at_claim;
}

bool
agent_claim_defers(int hold, int running, int queued, bool cut, int finished)
{
    /* A short list (cut) may be a window that pushes more only as results
     * come in: its slots, here and on other agents, would idle for these.
     * Or it is the end of a map: then the prefetch still feeds the slots
     * (queued >= running) until the last few, which may go one by one. */
    return hold > 0 && running > 0 && finished < FLUSH_BATCH(hold) &&
           (!cut || queued >= running);
}

void
agent_claim_args(struct mapq_agent *a, const struct agent_claim_plan *p,
                 bool promote, bool groups, struct mapq_argv *cmd)
{
    struct bell *bc = &a->bells[BELL_CMD], *bp = &a->bells[BELL_PLUGIN];
    char flags[4];
    size_t q, n = 0;

    if (a->cfg.interruptible)
        flags[n++] = 'i';
    if (promote)
        flags[n++] = 'd';
    if (groups)
        flags[n++] = 'g';
    flags[n] = '\0';
    mapq_argv_addint(cmd, p->ncmd);
    mapq_argv_addint(cmd, p->nplugin);
    mapq_argv_addint(cmd, p->prefetch);
    mapq_argv_add(cmd, flags);
    mapq_argv_addint(cmd, (int64_t)a->cfg.nqueues);
    for (q = 0; q < a->cfg.nqueues; q++)
        mapq_argv_add(cmd, a->queues[q]);
    bc->asked = p->ncmd + p->prefetch;
    bc->for_slots = p->ncmd;
    bp->asked = bp->for_slots = p->nplugin;
    bc->heard_at_claim = bc->heard;
    bp->heard_at_claim = bp->heard;
}

void
agent_claim_reply(struct mapq_agent *a, const msgpack_object *claimed)
{
    struct bell *bc = &a->bells[BELL_CMD], *bp = &a->bells[BELL_PLUGIN];
    struct mapq_claimed c;
    enum mapq_claim_entry kind;
    uint32_t pos = 0;
    int got_c = 0, got_p = 0;

    if (claimed == NULL) {
        bc->asked = bp->asked = 0;
        return;
    }
    while ((kind = mapq_record_claim_next(claimed, &pos, &c)) !=
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
        a->ops->claimed(a, c.ref, c.body, c.ckpt);
    }
    if (agent_claim_dries(bc->for_slots, bc->asked, got_c, bc->heard,
                          bc->heard_at_claim))
        bc->dry = true;
    if (agent_claim_dries(bp->for_slots, bp->asked, got_p, bp->heard,
                          bp->heard_at_claim))
        bp->dry = true;
    if (bc->asked > 0)
        bc->cut = got_c < bc->asked;
    bc->asked = bp->asked = 0;
}

static void bell_wait(struct bell *b);

static void
bell_cb(redisReply *reply, const char *why, void *arg)
{
    struct bell *b = arg;
    struct mapq_agent *a = b->a;

    (void)why;
    b->inflight = false;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        agent_retry_later(&a->step_retry, a->step_retry_ev, "BLPOP (doorbells)",
                          reply->str);
        return;
    }
    if (reply == NULL)
        return;
    /* Rung, or timed out: either way look again, so that a bell lost
     * with a crashed agent delays work by one wait at most. An idle agent
     * that timed out listens again at once and looks with its next
     * heartbeat (agent_claim_look()): on a quiet server each wake-up costs
     * several times what the calls do, so one serves both. */
    if (reply->type == REDIS_REPLY_NIL && TAILQ_EMPTY(&a->jobs) &&
        !a->stopping) {
        a->look_due = true;
        bell_wait(b);
        return;
    }
    b->dry = false;
    b->heard++;
    a->ops->wake(a);
}

void
agent_claim_look(struct mapq_agent *a)
{
    int i;

    if (!a->look_due)
        return;
    a->look_due = false;
    for (i = 0; i < NBELLS; i++)
        a->bells[i].dry = false;
    a->ops->wake(a);
}

/* Blocks on the doorbells of b's kind of list. */
static void
bell_wait(struct bell *b)
{
    static const char *const classes[] = {"n", "i"};
    struct mapq_agent *a = b->a;
    struct mapq_argv cmd;
    size_t q, c;

    if (a->stopping || b->inflight || !mapq_redis_ready(b->conn))
        return;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "BLPOP");
    for (q = 0; q < a->cfg.nqueues; q++)
        for (c = 0; c < 2; c++) {
            char cls[3] = {classes[c][0], b->kind, '\0'};

            if (a->cfg.interruptible && classes[c][0] == 'n')
                continue;
            mapq_key_add(&cmd, mapq_key_bell(a->ns, a->queues[q], cls));
        }
    mapq_argv_addf(&cmd, "%d", BELL_BLOCK_S);
    b->inflight = true;
    mapq_redis_command(b->conn, BELL_BLOCK_S * 1000 + 3000, bell_cb, b,
                       cmd.argc, cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
}

void
agent_claim_wait(struct mapq_agent *a, const struct agent_claim_plan *p)
{
    if (p->wait_plugin)
        bell_wait(&a->bells[BELL_PLUGIN]);
    if (p->wait_cmd)
        bell_wait(&a->bells[BELL_CMD]);
}

void
agent_claim_stop(struct mapq_agent *a)
{
    int i;

    /* Redis hands a ring to the agent that has waited longest. One that
     * stops would take and drop it, the ring of its own hand-backs above
     * all, and the agent that would run them would wait out a whole
     * BELL_BLOCK_S. Its blocked BLPOP goes with the connection. */
    for (i = 0; i < NBELLS; i++) {
        mapq_redis_free(a->bells[i].conn);
        a->bells[i].conn = NULL;
        a->bells[i].inflight = false;
    }
}

void
agent_claim_conn(struct mapq_agent *a, struct mapq_redis *r, bool up)
{
    int i;

    for (i = 0; i < NBELLS; i++)
        if (a->bells[i].conn == r)
            a->bells[i].inflight = false;
    if (up)
        a->ops->wake(a);
}
