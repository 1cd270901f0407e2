/*
 * drv_serve.c - service mode (mapq scheduler): executions submitted with
 * `mapq submit` (popped from P:submitted) and executions adopted after
 * their driver's lease expired, loaded from their record.
 *
 * Owns the load and adopt requests (d->adopt_inflight). A loaded
 * execution is handed to the controller (ops->load); this file never
 * creates nor drives one itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_log.h"

struct served {
    struct mapq_driver *d;
    char id[MAPQ_EXEC_ID_LEN + 1];
    bool adopted; /* its driver died: it may have run before */
};

void
drv_serve_done(const struct mapq_exec_outcome *o, void *arg)
{
    (void)arg;
    if (o->succeeded)
        mapq_log(MAPQ_LOG_INFO, "execution %s succeeded", o->id);
    else if (o->detached || o->redis_error)
        mapq_log(MAPQ_LOG_INFO, "execution %s left: %s", o->id, o->error);
    else
        mapq_log(MAPQ_LOG_INFO, "execution %s failed: %s", o->id, o->error);
}

static void
unloadable_cb(redisReply *reply, const char *why, void *arg)
{
    (void)arg;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        mapq_log(MAPQ_LOG_WARN, "cannot record an execution failed: %s",
                 reply ? reply->str : why);
}

/*
 * Records an execution that cannot be driven (its workflow does not parse
 * here) as failed, so that it is not adopted again and again.
 */
static void
unloadable(struct mapq_driver *d, const char *id, const char *why)
{
    struct mapq_argv cmd;

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_finish");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, d->ns);
    mapq_argv_add(&cmd, id);
    mapq_argv_add(&cmd, d->owner);
    mapq_argv_add(&cmd, "failed");
    mapq_argv_add(&cmd, "error");
    mapq_argv_addf(&cmd, "the workflow cannot be driven: %.900s", why);
    mapq_argv_addf(&cmd, "%lld", (long long)d->retention_ms);
    drv_call_send(d, NULL, PATH_FINISH, d->cmd, CALL_TIMEOUT_MS, &cmd,
                  unloadable_cb, NULL);
}

static void
load_cb(redisReply *reply, const char *why, void *arg)
{
    struct served *s = arg;
    struct mapq_buf errors = MAPQ_BUF_INIT, inputs = MAPQ_BUF_INIT;
    struct mapq_exec_opts o = {0};
    struct mapq_workflow *wf;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 6 || reply->element[0]->type != REDIS_REPLY_STRING) {
        mapq_log(MAPQ_LOG_WARN, "cannot load submitted execution %s: %s", s->id,
                 reply == NULL                      ? why
                 : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                    : "no such execution");
        goto out;
    }
    if (!s->adopted && reply->element[3]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[3]->str, "submitted") != 0) {
        mapq_log(MAPQ_LOG_INFO, "execution %s is already %s; skipping", s->id,
                 reply->element[3]->str);
        goto out;
    }
    if (drv_find_exec(s->d, s->id) != NULL)
        goto out; /* adopted and popped at once: driven already */
    wf = mapq_workflow_parse(
        reply->element[0]->str, reply->element[0]->len,
        reply->element[1]->str ? reply->element[1]->str : "workflow", &errors);
    if (wf == NULL || reply->element[2]->type != REDIS_REPLY_STRING) {
        mapq_log(MAPQ_LOG_WARN, "execution %s: workflow invalid: %s", s->id,
                 errors.data ? errors.data : "no inputs");
        unloadable(s->d, s->id, errors.data ? errors.data : "no inputs");
        mapq_workflow_free(wf);
        goto out;
    }
    mapq_buf_append(&inputs, reply->element[2]->str, reply->element[2]->len);
    o.overwrite_cache = reply->element[4]->type == REDIS_REPLY_STRING &&
                        strcmp(reply->element[4]->str, "1") == 0;
    if (reply->element[5]->type == REDIS_REPLY_STRING)
        o.recover_from = reply->element[5]->str;
    mapq_log(MAPQ_LOG_INFO, "%s execution %s (%s)",
             s->adopted ? "adopting" : "driving", s->id, wf->name);
    s->d->ops->load(s->d, s->id, wf, &inputs, &o, s->adopted);
out:
    mapq_buf_release(&errors);
    mapq_buf_release(&inputs);
    free(s);
}

static void
load_exec(struct mapq_driver *d, const char *id, size_t len, bool adopted)
{
    struct served *s = mapq_xcalloc(1, sizeof(*s));
    struct mapq_argv cmd;

    s->d = d;
    s->adopted = adopted;
    snprintf(s->id, sizeof(s->id), "%.*s", (int)len, id);
    if (drv_find_exec(d, s->id) != NULL) {
        free(s);
        return;
    }
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HMGET");
    mapq_key_add(&cmd, mapq_key_exec(d->ns, s->id));
    mapq_argv_add(&cmd, "workflow");
    mapq_argv_add(&cmd, "file");
    mapq_argv_add(&cmd, "inputs");
    mapq_argv_add(&cmd, "state");
    mapq_argv_add(&cmd, "overwrite");
    mapq_argv_add(&cmd, "recover_from");
    drv_call_send(d, NULL, PATH_LOAD, d->cmd, CALL_TIMEOUT_MS, &cmd, load_cb,
                  s);
}

void
drv_serve_one(struct mapq_driver *d, const char *id, size_t len)
{
    load_exec(d, id, len, false);
}

static void
adopt_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_driver *d = arg;
    size_t i;

    d->adopt_inflight = false;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        mapq_log(MAPQ_LOG_WARN, "cannot look for executions to adopt: %s",
                 reply ? (reply->str ? reply->str : "bad reply") : why);
        return;
    }
    for (i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            load_exec(d, reply->element[i]->str, reply->element[i]->len, true);
}

static void
prune_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_driver *d = arg;

    if (reply != NULL && reply->type == REDIS_REPLY_INTEGER)
        d->prune_cursor = (long)reply->integer;
    else
        mapq_log(MAPQ_LOG_DEBUG, "pruning the executions' index: %s",
                 reply ? reply->str : why);
}

static void sweep(struct mapq_driver *d);

/* What a sweep reclaimed; another follows while each finds a full batch,
 * up to SWEEP_CALLS a prune. */
static void
sweep_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_driver *d = arg;
    long long v[4];
    size_t i;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 4) {
        mapq_log(MAPQ_LOG_WARN, "cannot reclaim blobs: %s",
                 reply && reply->str ? reply->str
                 : why               ? why
                                     : "bad reply");
        return;
    }
    for (i = 0; i < 4; i++)
        v[i] = reply->element[i]->type == REDIS_REPLY_INTEGER
                   ? reply->element[i]->integer
                   : 0;
    if (v[1] > 0) {
        mapq_log(MAPQ_LOG_INFO,
                 "reclaimed %lld blobs (%lld bytes) nothing holds any more",
                 v[1], v[2]);
        if (d->obs != NULL && d->obs->reclaimed != NULL)
            d->obs->reclaimed((uint64_t)v[1], (uint64_t)v[2], d->obs_arg);
    }
    if (v[0] >= SWEEP_COUNT && ++d->sweeps < SWEEP_CALLS)
        sweep(d);
}

/* Reclaims the blobs whose holders ended (mapq1_blob_sweep, those due). */
static void
sweep(struct mapq_driver *d)
{
    struct mapq_argv cmd;

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_blob_sweep");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, d->ns);
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, "0");
    mapq_argv_addf(&cmd, "%d", SWEEP_COUNT);
    mapq_redis_command(d->cmd, CALL_TIMEOUT_MS, sweep_cb, d, cmd.argc, cmd.argv,
                       cmd.lens);
    mapq_argv_release(&cmd);
}

/* Drops the entries of expired executions from P:execs, PRUNE_COUNT at a
 * time (mapq1_prune), and reclaims blobs; a failure waits for the next
 * turn. */
static void
prune(struct mapq_driver *d)
{
    struct mapq_argv cmd;

    d->sweeps = 0;
    sweep(d);

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_prune");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, d->ns);
    mapq_argv_addf(&cmd, "%ld", d->prune_cursor);
    mapq_argv_addf(&cmd, "%d", PRUNE_COUNT);
    mapq_redis_command(d->cmd, CALL_TIMEOUT_MS, prune_cb, d, cmd.argc, cmd.argv,
                       cmd.lens);
    mapq_argv_release(&cmd);
}

void
drv_serve_adopt(struct mapq_driver *d)
{
    struct mapq_argv cmd;

    if (d->adopts++ % PRUNE_EVERY == 0)
        prune(d);
    if (d->adopt_inflight)
        return;
    d->adopt_inflight = true;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_adopt");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, d->ns);
    mapq_argv_add(&cmd, d->owner);
    mapq_argv_addf(&cmd, "%d", d->lease_ms);
    mapq_argv_addf(&cmd, "%d", ADOPT_MAX);
    drv_call_send(d, NULL, PATH_ADOPT, d->cmd, CALL_TIMEOUT_MS, &cmd, adopt_cb,
                  d);
}

/* ---- what a service shows: its observer, executions and queues -------- */

void
mapq_driver_observe(struct mapq_driver *d,
                    const struct mapq_driver_observer *obs, void *arg)
{
    d->obs = obs;
    d->obs_arg = arg;
}

void
mapq_driver_set_retention(struct mapq_driver *d, int64_t ms)
{
    d->retention_ms = ms > 0 ? ms : MAPQ_RETENTION_DEFAULT_MS;
}

void
mapq_driver_set_seal(struct mapq_driver *d, const struct mapq_seal *seal)
{
    d->seal = seal;
}

struct mapq_redis *
mapq_driver_redis(struct mapq_driver *d)
{
    return d->cmd;
}

size_t
mapq_driver_count(const struct mapq_driver *d)
{
    const struct exec *x;
    size_t n = 0;

    TAILQ_FOREACH (x, &d->execs, entry)
        n++;
    return n;
}

size_t
mapq_driver_queues(const struct mapq_driver *d, const char **out, size_t max)
{
    const struct exec *x;
    size_t n = 0, k, j;

    TAILQ_FOREACH (x, &d->execs, entry) {
        for (k = 0; k < x->wf->nnodes && x->nodes != NULL; k++) {
            const char *q = x->nodes[k].queue;

            for (j = 0; q != NULL && j < n && strcmp(out[j], q) != 0; j++)
                ;
            if (q != NULL && j == n && n < max)
                out[n++] = q;
        }
    }
    return n;
}
