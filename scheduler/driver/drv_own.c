/*
 * drv_own.c - ownership: mapq1_own taking an execution and renewing the
 * leases of those owned, the state check that notices an execution
 * cancelled or ended elsewhere, the owner's abort (mapq1_abort) and
 * mapq_driver_cancel().
 *
 * Owns x->checking and the lease requests. What Redis answers is reported
 * to the controller (ops->owned, detach, lost, cancelled, abort_replied);
 * this file never changes an execution's state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_log.h"

static void
own_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;
    const struct drv_ops *ops = x->d->ops;

    (void)why;
    x->calls--;
    if (drv_exec_ended(x))
        return;
    if (reply == NULL) {
        ops->owned(x, 0); /* asked again once the connection is back */
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        ops->detach(x, reply->type == REDIS_REPLY_ERROR ? reply->str
                                                        : "bad reply to own");
        return;
    }
    if (reply->element[0]->integer == 0)
        ops->detach(x, "another scheduler drives it");
    else if (reply->element[0]->integer == -2)
        ops->lost(x);
    else if (reply->element[0]->integer < 0)
        ops->detach(x, "it has ended elsewhere");
    else
        ops->owned(x, reply->element[0]->integer);
}

void
drv_own_send(struct exec *x)
{
    struct mapq_argv cmd;

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_own");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, x->d->ns);
    mapq_argv_add(&cmd, x->d->owner);
    mapq_argv_addf(&cmd, "%d", x->d->lease_ms);
    mapq_argv_add(&cmd, x->id);
    drv_exec_send(x, PATH_OWN, &cmd, own_cb, x);
}

struct own_req {
    struct mapq_driver *d;
    size_t n;
    char (*ids)[MAPQ_EXEC_ID_LEN + 1];
};

static void
renew_cb(redisReply *reply, const char *why, void *arg)
{
    struct own_req *req = arg;
    struct exec *x;
    size_t i;
    int delay_ms;

    /* A refusal or no reply: the next tick renews again, well within the
     * lease (unless refused() ended the executions: mapq run, NOPERM). */
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != req->n) {
        drv_refused(req->d, NULL, PATH_RENEW, "FCALL mapq1_own (renewal)",
                    reply ? (reply->str ? reply->str : "bad reply") : why,
                    &delay_ms);
        goto out;
    }
    drv_note_success(req->d, PATH_RENEW, "FCALL mapq1_own (renewal)");
    for (i = 0; i < req->n; i++) {
        x = drv_find_exec(req->d, req->ids[i]);
        if (x == NULL || !drv_exec_owned(x) ||
            reply->element[i]->type != REDIS_REPLY_INTEGER)
            continue;
        if (reply->element[i]->integer == 0)
            req->d->ops->detach(x, "another scheduler took it over (this "
                                   "one did not renew its lease in time)");
        else if (reply->element[i]->integer < 0)
            drv_own_check(x); /* cancelled, or ended elsewhere */
    }
out:
    free(req->ids);
    free(req);
}

void
drv_own_renew(struct mapq_driver *d)
{
    struct own_req *req = mapq_xcalloc(1, sizeof(*req));
    struct mapq_argv cmd;
    struct exec *x;
    size_t n = 0;

    TAILQ_FOREACH (x, &d->execs, entry)
        n += drv_exec_owned(x);
    if (n == 0) {
        free(req);
        return;
    }
    req->d = d;
    req->ids = mapq_xcalloc(n, sizeof(*req->ids));
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_own");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, d->ns);
    mapq_argv_add(&cmd, d->owner);
    mapq_argv_addf(&cmd, "%d", d->lease_ms);
    TAILQ_FOREACH (x, &d->execs, entry)
        if (drv_exec_owned(x)) {
            memcpy(req->ids[req->n++], x->id, sizeof(x->id));
            mapq_argv_add(&cmd, x->id);
        }
    mapq_redis_command(d->cmd, CALL_TIMEOUT_MS, renew_cb, req, cmd.argc,
                       cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
}

static void
exec_state_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;

    (void)why;
    x->calls--;
    x->checking = false;
    if (drv_exec_ended(x) || reply == NULL || reply->type == REDIS_REPLY_ERROR)
        return;
    if (reply->type != REDIS_REPLY_STRING) {
        x->d->ops->lost(x);
        return;
    }
    if (strcmp(reply->str, "succeeded") == 0 ||
        strcmp(reply->str, "failed") == 0) {
        x->d->ops->detach(x, "it has ended elsewhere");
        return;
    }
    if (strcmp(reply->str, "cancelled") == 0)
        x->d->ops->cancelled(x);
}

static void
abort_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;

    (void)why;
    x->calls--;
    if (drv_exec_ended(x) || reply == NULL)
        return; /* lost with the connection: the reconcile redoes it */
    if (reply->type == REDIS_REPLY_INTEGER)
        x->d->ops->abort_replied(x, reply->integer);
    else
        x->d->ops->abort_replied(x, -3);
}

void
drv_own_abort(struct exec *x)
{
    struct mapq_argv cmd;

    x->abort_sent = true;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_abort");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, x->d->ns);
    mapq_argv_add(&cmd, x->id);
    mapq_argv_add(&cmd, x->d->owner);
    mapq_argv_add(&cmd, x->error[0] != '\0' ? x->error : "aborted");
    drv_exec_send(x, PATH_ABORT, &cmd, abort_cb, x);
}

/* One at a time: x->checking. */
void
drv_own_check(struct exec *x)
{
    struct mapq_argv cmd;

    if (x->checking)
        return;
    x->checking = true;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HGET");
    mapq_key_add(&cmd, mapq_key_exec(x->d->ns, x->id));
    mapq_argv_add(&cmd, "state");
    drv_exec_send(x, PATH_STATE, &cmd, exec_state_cb, x);
}

struct cancel_req {
    mapq_cancel_done_fn *done;
    void *arg;
};

static void
cancel_cb(redisReply *reply, const char *why, void *arg)
{
    struct cancel_req *req = arg;

    if (reply == NULL)
        req->done(false, why, req->arg);
    else if (reply->type != REDIS_REPLY_INTEGER)
        req->done(false, reply->str ? reply->str : "bad reply", req->arg);
    else
        req->done(reply->integer >= 0, "no such execution", req->arg);
    free(req);
}

void
mapq_driver_cancel(struct mapq_driver *d, const char *id,
                   mapq_cancel_done_fn *done, void *arg)
{
    struct cancel_req *req = mapq_xcalloc(1, sizeof(*req));
    struct mapq_argv cmd;

    req->done = done;
    req->arg = arg;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_cancel");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, d->ns);
    mapq_argv_add(&cmd, id);
    drv_call_send(d, NULL, PATH_CANCEL, d->cmd, CALL_TIMEOUT_MS, &cmd,
                  cancel_cb, req);
}
