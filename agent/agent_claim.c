/*
 * agent_claim.c - claiming: how many subtasks of each kind to ask for,
 * the mapq1_claim call, and the doorbells (BLPOP) the agent waits on when
 * there is nothing it can claim.
 *
 * Owns its requests and the doorbell state (struct bell, one per kind of
 * list, each on its own connection so that the command wait can begin the
 * moment a slot frees even while a plugin wait is pending). Each subtask
 * a claim returns goes to the controller, which makes it a job; so does
 * the end of every claim reply.
 */
#include "agent_int.h"
#include "mapq_keys.h"
#include "mapq_log.h"
#include "mapq_record.h"
#include "mapq_value.h"

void
agent_claim_plan(const struct agent_claim_view *v, struct agent_claim_plan *p)
{
    int free_slots = v->slots - v->running - v->waiting;

    p->ncmd = v->dry_cmd || free_slots < 0 ? 0 : free_slots;
    p->nplugin =
        !v->dry_plugin && v->waiting < v->plugin_batch ? v->plugin_batch : 0;
    /* Wait for the kinds that ran dry, or for anything when nothing can be
     * claimed; command lists only while a slot is free. */
    p->wait_plugin =
        v->dry_cmd || v->dry_plugin || (p->ncmd == 0 && p->nplugin == 0);
    p->wait_cmd = p->wait_plugin && free_slots > 0;
}

bool
agent_claim_dries(int asked, int got, unsigned heard, unsigned heard_at_claim)
{
    return got < asked && heard == heard_at_claim;
}

static void
claim_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_agent *a = arg;
    struct bell *bc = &a->bells[BELL_CMD], *bp = &a->bells[BELL_PLUGIN];
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
            agent_retry_later(&a->claim_retry, a->claim_retry_ev,
                              "FCALL mapq1_claim",
                              agent_failure_text(reply, why));
        return;
    }
    agent_retry_done(&a->claim_retry, "FCALL mapq1_claim");
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
        a->ops->claimed(a, c.ref, c.body, c.ckpt);
    }
out:
    msgpack_unpacked_destroy(&u);
    if (agent_claim_dries(bc->asked, got_c, bc->heard, bc->heard_at_claim))
        bc->dry = true;
    if (agent_claim_dries(bp->asked, got_p, bp->heard, bp->heard_at_claim))
        bp->dry = true;
    a->ops->claim_settled(a);
}

static void
bell_cb(redisReply *reply, const char *why, void *arg)
{
    struct bell *b = arg;
    struct mapq_agent *a = b->a;

    (void)why;
    b->inflight = false;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        agent_retry_later(&a->claim_retry, a->claim_retry_ev,
                          "BLPOP (doorbells)", reply->str);
        return;
    }
    /* Rung, or timed out: either way look again, so that a bell lost
     * with a crashed agent delays work by one wait at most. */
    if (reply != NULL) {
        b->dry = false;
        b->heard++;
        agent_claim_maybe(a);
    }
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
agent_claim_maybe(struct mapq_agent *a)
{
    struct bell *bc = &a->bells[BELL_CMD], *bp = &a->bells[BELL_PLUGIN];
    struct agent_claim_view v = {a->cfg.slots, a->running_cmds,
                                 a->waiting,   a->cfg.plugin_batch,
                                 bc->dry,      bp->dry};
    struct agent_claim_plan p;
    struct mapq_argv cmd;
    size_t q;

    if (a->stopping || a->claim_inflight || !mapq_redis_ready(a->cmd) ||
        evtimer_pending(a->claim_retry_ev, NULL))
        return;
    agent_claim_plan(&v, &p);
    if (p.wait_plugin)
        bell_wait(bp);
    if (p.wait_cmd)
        bell_wait(bc);
    if (p.ncmd == 0 && p.nplugin == 0)
        return;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_claim");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, a->ns);
    mapq_argv_add(&cmd, a->name);
    mapq_argv_addf(&cmd, "%d", a->cfg.lease_ms);
    mapq_argv_addf(&cmd, "%d", p.ncmd);
    mapq_argv_addf(&cmd, "%d", p.nplugin);
    mapq_argv_add(&cmd, a->cfg.interruptible ? "1" : "0");
    for (q = 0; q < a->cfg.nqueues; q++)
        mapq_argv_add(&cmd, a->queues[q]);
    a->claim_inflight = true;
    bc->asked = p.ncmd;
    bp->asked = p.nplugin;
    bc->heard_at_claim = bc->heard;
    bp->heard_at_claim = bp->heard;
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, claim_cb, a, cmd.argc, cmd.argv,
                       cmd.lens);
    mapq_argv_release(&cmd);
}

void
agent_claim_conn(struct mapq_agent *a, struct mapq_redis *r, bool up)
{
    int i;

    for (i = 0; i < NBELLS; i++)
        if (a->bells[i].conn == r)
            a->bells[i].inflight = false;
    if (up)
        agent_claim_maybe(a);
}
