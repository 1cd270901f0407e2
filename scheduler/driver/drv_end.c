/*
 * drv_end.c - how an execution ends: it fails through mapq1_abort and the
 * end marker (ABORTING, FAILING), succeeds, or is let go (DETACHED); the
 * final write (mapq1_finish).
 *
 * The controller's other half: with driver.c it changes an execution's
 * state (drv_exec_set_state() alone) and tells its owner how it ended.
 * docs/ARCHITECTURE.md ("Failing an execution") says why the marker.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_log.h"

/* Why a driver lets go of an execution whose record vanished. */
#define RECORD_GONE                                                       \
    "Redis no longer has this execution's record: its data was lost (a "  \
    "Redis restart without persistence, a FLUSHALL, eviction under a "    \
    "maxmemory policy other than noeviction, or a failover to a replica " \
    "that had not received it)"

static void
finish_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;

    x->calls--;
    if (reply == NULL) {
        if (x->d->stopping)
            return;
        /* Sent again once the connection is back. */
        drv_exec_set_state(x, EXEC_FINISH_WAIT);
        mapq_log(MAPQ_LOG_WARN,
                 "execution %s: cannot record its end yet: %s; will retry",
                 x->id, why);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* Refused for good: drv_refused() said so, or mapq run says why. */
    } else if (reply->type != REDIS_REPLY_INTEGER) {
        mapq_log(MAPQ_LOG_ERROR, "execution %s: cannot record its end: %s",
                 x->id, "bad reply");
    } else if (reply->integer == -2) {
        mapq_log(MAPQ_LOG_WARN,
                 "execution %s: not recorded: another scheduler owns it now",
                 x->id);
    } else if (reply->integer == -3 && x->output_of >= 0) {
        /* The node's o:<k> is not written yet (refused, and parked to be
         * sent again): the output goes whole. */
        x->output_of = -1;
        drv_end_send_finish(x);
    }
}

/* The final write (mapq1_finish), first or again after a lost reply. */
void
drv_end_send_finish(struct exec *x)
{
    struct mapq_argv cmd;

    if (x->state == EXEC_FINISH_WAIT)
        drv_exec_set_state(x, EXEC_ENDED);
    mapq_argv_init(&cmd);
    drv_record_finish_cmd(x, &cmd);
    drv_exec_send(x, PATH_FINISH, &cmd, finish_cb, x);
}

/* Ends x: records the outcome, tells the owner, frees when idle. */
void
drv_end(struct exec *x, bool ok)
{
    struct mapq_exec_outcome out;

    drv_exec_set_state(x, EXEC_ENDED);
    x->ok = ok;
    drv_record_progress(x);
    drv_end_send_finish(x);
    memset(&out, 0, sizeof(out));
    out.id = x->id;
    out.succeeded = ok;
    out.cancelled = x->cancelled;
    out.redis_error = x->redis_error;
    out.error = ok ? NULL : x->error;
    out.output = ok ? &x->output : NULL;
    if (x->d->obs != NULL)
        x->d->obs->ended(&out, x->d->obs_arg);
    if (x->done != NULL)
        x->done(&out, x->arg);
}

/*
 * Stops driving x without writing anything: another driver owns it, or it
 * ended elsewhere. why goes to the owner of this driver.
 */
void
drv_end_detach(struct exec *x, const char *why)
{
    struct mapq_exec_outcome out;

    if (drv_exec_ended(x))
        return;
    drv_exec_set_state(x, EXEC_DETACHED);
    snprintf(x->error, sizeof(x->error), "%s", why);
    memset(&out, 0, sizeof(out));
    out.id = x->id;
    out.detached = !x->redis_error;
    out.redis_error = x->redis_error;
    out.error = x->error;
    if (x->done != NULL)
        x->done(&out, x->arg);
}

/* Ends x failed at once: what its nodes did not finish is ABORTED. */
static void
fail_now(struct exec *x)
{
    size_t k;

    for (k = 0; k < x->wf->nnodes; k++)
        if (x->nodes[k].state == NODE_WAITING)
            x->nodes[k].state = NODE_SKIPPED;
        else if (x->nodes[k].state == NODE_RUNNING ||
                 x->nodes[k].state == NODE_ASSEMBLING) {
            if (x->nodes[k].state == NODE_RUNNING && x->nodes[k].phases)
                drv_node_abort(x, k);
            x->nodes[k].state = NODE_FAILED;
        }
    drv_end(x, false);
}

/*
 * Fails x with the message (the first one stays). An execution this
 * driver owns fails through mapq1_abort: its subtasks that end from then
 * on are recorded ABORTED, and its driver counts the events before the end
 * marker, so that its counts and the records agree.
 */
void
drv_end_fail(struct exec *x, const char *fmt, ...)
{
    va_list ap;

    if (drv_exec_ended(x))
        return;
    if (x->error[0] == '\0') {
        va_start(ap, fmt);
        vsnprintf(x->error, sizeof(x->error), fmt, ap);
        va_end(ap);
    }
    if (x->redis_error || x->d->stopping)
        fail_now(x);
    else if (drv_exec_driving(x))
        drv_end_abort(x);
    else if (x->state == EXEC_FAILING)
        drv_end_maybe(x);
    else if (x->state != EXEC_ABORTING)
        fail_now(x);
}

/* Ends x because Redis refuses what it needs; mapq run exits 3. */
void
drv_end_fail_redis(struct exec *x, const char *msg)
{
    if (drv_exec_ended(x))
        return;
    x->redis_error = true;
    drv_end_fail(x, "%s", msg);
}

/* Lets go of x, whose record Redis lost: mapq run exits 3 saying so. */
void
drv_end_lost(struct exec *x)
{
    x->redis_error = true;
    drv_end_detach(x, RECORD_GONE);
}

/* ---- failing: mapq1_abort, the end marker, the errors ------------------- */

/* Asks Redis to record what ends from now on as ABORTED. */
void
drv_end_abort(struct exec *x)
{
    drv_exec_set_state(x, EXEC_ABORTING);
    x->marked = false;
    x->abort_by = drv_now_ms() + CALL_TIMEOUT_MS;
    drv_own_abort(x);
}

/* True while a node of x scans: the marker waits for what it reads. */
static bool
exec_scanning(const struct exec *x)
{
    size_t k;

    for (k = 0; k < x->wf->nnodes; k++)
        if (x->nodes[k].state == NODE_RUNNING && x->nodes[k].scanning)
            return true;
    return false;
}

/*
 * Past the end marker, every count is final: the rest of each running node
 * is ABORTED. Without a message yet (a threshold out of reach), the nodes
 * whose threshold failed, and those that finished meanwhile, read their
 * records first.
 */
static void
counted(struct exec *x)
{
    size_t k;

    drv_exec_set_state(x, EXEC_FAILING);
    for (k = 0; k < x->wf->nnodes; k++) {
        struct node_run *nr = &x->nodes[k];
        bool read;

        if (nr->state != NODE_RUNNING || nr->phases == NULL)
            continue;
        /* Its threshold failed, or it finished while the execution was
         * aborting: what it would have read, it reads. */
        read = nr->finished == nr->n ||
               drv_window_hopeless(nr, x->wf->nodes[k].run_all);
        drv_node_abort(x, k);
        if (read && x->error[0] == '\0')
            drv_node_maybe_finish(x, k);
    }
    drv_end_maybe(x);
}

void
drv_end_counted(struct exec *x)
{
    if (x->state == EXEC_ABORTING && x->marked && !exec_scanning(x))
        counted(x);
}

/* FAILING ends with its message, or once no node reads its errors. */
void
drv_end_maybe(struct exec *x)
{
    size_t k;

    if (x->error[0] == '\0')
        for (k = 0; k < x->wf->nnodes; k++)
            if (x->nodes[k].state == NODE_ASSEMBLING)
                return;
    if (x->error[0] == '\0')
        snprintf(x->error, sizeof(x->error), "aborted");
    fail_now(x);
}

void
drv_end_abort_replied(struct exec *x, long long result)
{
    if (x->state != EXEC_ABORTING)
        return;
    if (result == -1)
        drv_end_lost(x);
    else if (result == -2)
        drv_end_detach(x, "another scheduler owns it now");
    else if (result == -3)
        counted(x); /* refused: what it counted is all it knows */
}

/* The end marker: of this driver's abort, or of a cancel (mapq cancel). */
void
drv_end_marked(struct exec *x)
{
    if (drv_exec_driving(x)) {
        if (!x->abort_sent) {
            x->cancelled = true;
            snprintf(x->error, sizeof(x->error), "cancelled (mapq cancel)");
        }
        drv_exec_set_state(x, EXEC_ABORTING);
        x->abort_by = drv_now_ms() + CALL_TIMEOUT_MS;
    }
    x->marked = true;
    drv_end_counted(x);
}

/* Its end marker is on its way (mapq1_cancel queued it). */
void
drv_end_cancelled(struct exec *x)
{
    x->cancelled = true;
    drv_end_fail(x, "cancelled (mapq cancel)");
}

void
drv_end_tick(struct exec *x, int64_t now)
{
    if (x->state != EXEC_ABORTING || now < x->abort_by)
        return;
    mapq_log(MAPQ_LOG_WARN,
             "execution %s: %s after its abort; ending with the counts it has",
             x->id, x->marked ? "a scan did not end" : "no end marker");
    counted(x);
}
