/*
 * drv_reconcile.c - rebuilding the view of an execution from Redis: node
 * outputs read back (its own record after an adoption or a reconnect, or
 * the record of the execution it recovers), and, for a node that may have
 * run before, where each subtask stands (mapq1_scan): a result, in
 * flight, or never pushed.
 *
 * Owns the scan of a node_run (scanning, scan_next) and the phases it
 * learns. Reports what it read to the controller (ops->restore,
 * read_back, scanned, fail, lost, detach); never starts a node nor
 * changes an execution's state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_log.h"
#include "mapq_value.h"

struct scan_req {
    struct exec *x;
    size_t k;
    unsigned gen;
    uint64_t from, count;
};

/* Takes in one byte per subtask from mapq1_scan (see the function). */
static void
scan_apply(struct node_run *nr, const struct scan_req *req, const char *b)
{
    uint64_t j;

    for (j = 0; j < req->count; j++) {
        uint64_t i = req->from + j;
        int v = (unsigned char)b[j];

        if (phase_done(phase_get(nr, i)))
            continue; /* its event came first */
        if (v == 255)
            continue; /* never pushed: pushed once the scan ends */
        if (v == 254 || v < MAPQ_PHASE_SUCCEEDED) {
            phase_set(nr, i, MAPQ_PHASE_QUEUED);
            nr->inflight++;
            continue;
        }
        if (!phase_done(v))
            v = MAPQ_PHASE_FAILED; /* an unreadable record: its error shows */
        phase_set(nr, i, v);
        nr->counts[v]++;
        nr->finished++;
    }
}

static void
scan_cb(redisReply *reply, const char *why, void *arg)
{
    struct scan_req *req = arg;
    struct exec *x = req->x;
    struct node_run *nr = &x->nodes[req->k];

    (void)why;
    x->calls--;
    if (drv_exec_ended(x) || req->gen != x->gen || nr->state != NODE_RUNNING ||
        !nr->scanning || reply == NULL)
        goto out; /* stale, or the connection's reconcile redoes it */
    if (reply->type != REDIS_REPLY_STRING || reply->len != req->count) {
        x->d->ops->fail(x, "cannot read the state of node '%s': %s",
                        x->wf->nodes[req->k].name,
                        reply->type == REDIS_REPLY_ERROR ? reply->str
                                                         : "bad reply");
        goto out;
    }
    scan_apply(nr, req, reply->str);
    if (nr->scan_next < nr->n) {
        drv_scan_next(x, req->k);
        goto out;
    }
    nr->scanning = false;
    nr->next = 0;
    mapq_log(MAPQ_LOG_INFO,
             "execution %s: node '%s' reconciled: %llu finished, %llu in "
             "flight, %llu to push",
             x->id, x->wf->nodes[req->k].name, (unsigned long long)nr->finished,
             (unsigned long long)nr->inflight,
             (unsigned long long)(nr->n - nr->finished - nr->inflight));
    x->d->ops->scanned(x, req->k);
out:
    free(req);
}

void
drv_scan_next(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];
    struct scan_req *req;
    struct mapq_buf in = MAPQ_BUF_INIT;
    unsigned char key[MAPQ_KEY_LEN];
    struct mapq_argv cmd;
    uint64_t i,
        end = nr->scan_next + BATCH < nr->n ? nr->scan_next + BATCH : nr->n;

    if (!drv_pages_cover(x, k, nr->scan_next, end, PAGE_WAIT_SCAN))
        return;
    req = mapq_xcalloc(1, sizeof(*req));
    req->x = x;
    req->k = k;
    req->gen = x->gen;
    req->from = nr->scan_next;
    req->count = end - nr->scan_next;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_scan");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, x->d->ns);
    mapq_argv_add(&cmd, x->id);
    mapq_argv_addf(&cmd, "%zu", k);
    for (i = nr->scan_next; i < end; i++) {
        mapq_buf_reset(&in);
        drv_subtask_inputs(nr, i, &in);
        drv_subtask_key(x, k, i, in.data, in.len, key);
        mapq_argv_addf(&cmd, "%llu", (unsigned long long)i);
        mapq_argv_addlen(&cmd, key, MAPQ_KEY_LEN);
    }
    nr->scan_next = end;
    drv_exec_send(x, PATH_SCAN, &cmd, scan_cb, req)->gen_check = true;
    mapq_buf_release(&in);
}

/*
 * Reads the state of execution exec_id (x's own, or the one it recovers)
 * and, per node k, its output o:<k> and progress p:<k>: fn gets
 * [state, o:0, p:0, o:1, p:1, ...].
 */
static void
read_nodes(struct exec *x, const char *exec_id, mapq_redis_reply_fn *fn)
{
    struct mapq_argv cmd;
    size_t k;

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HMGET");
    mapq_key_add(&cmd, mapq_key_exec(x->d->ns, exec_id));
    mapq_argv_add(&cmd, "state");
    for (k = 0; k < x->wf->nnodes; k++) {
        mapq_argv_addf(&cmd, "o:%zu", k);
        mapq_argv_addf(&cmd, "p:%zu", k);
    }
    drv_exec_send(x, PATH_READ, &cmd, fn, x)->gen_check = true;
}

/* Applies the execution's state and node outputs read back. */
static void
reconcile_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;
    const redisReply *st;
    struct mapq_buf out;
    size_t k;

    (void)why;
    x->calls--;
    if (drv_exec_ended(x) || reply == NULL)
        return; /* the next reconnect reconciles again */
    if (reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 2 * x->wf->nnodes + 1) {
        x->d->ops->fail(x, "cannot read the execution record: %s",
                        reply->type == REDIS_REPLY_ERROR ? reply->str
                                                         : "bad reply");
        return;
    }
    st = reply->element[0];
    if (st->type != REDIS_REPLY_STRING) {
        x->d->ops->lost(x);
        return;
    }
    if (strcmp(st->str, "running") != 0 && strcmp(st->str, "submitted") != 0) {
        x->d->ops->detach(x, "it has ended elsewhere");
        return;
    }
    for (k = 0; k < x->wf->nnodes; k++) {
        const redisReply *o = reply->element[2 * k + 1];

        if (o->type != REDIS_REPLY_STRING)
            continue;
        mapq_buf_init(&out, 0);
        mapq_buf_append(&out, o->str, o->len);
        if (x->d->ops->restore(x, k, &out, false) != 0)
            return;
    }
    x->d->ops->read_back(x);
}

void
drv_reconcile_read(struct exec *x)
{
    read_nodes(x, x->id, reconcile_cb);
}

/* True when a node's progress record (p:<k>) counts no failed, timed out
 * or aborted subtask. */
static bool
progress_clean(const redisReply *p)
{
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN];
    bool clean = false;
    int ph;

    if (p->type != REDIS_REPLY_STRING)
        return false;
    msgpack_unpacked_init(&u);
    if (mapq_value_unpack(p->str, p->len, &u, err) == MAPQ_OK &&
        u.data.type == MSGPACK_OBJECT_ARRAY &&
        u.data.via.array.size == 2 + MAPQ_PHASE_COUNT) {
        clean = true;
        for (ph = MAPQ_PHASE_FAILED; ph <= MAPQ_PHASE_ABORTED; ph++)
            if (u.data.via.array.ptr[2 + ph].type !=
                    MSGPACK_OBJECT_POSITIVE_INTEGER ||
                u.data.via.array.ptr[2 + ph].via.u64 != 0)
                clean = false;
    }
    msgpack_unpacked_destroy(&u);
    return clean;
}

static void
recover_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;
    struct mapq_buf out;
    size_t k;

    (void)why;
    x->calls--;
    if (drv_exec_ended(x) || reply == NULL)
        return; /* the reconcile after reconnecting restarts it */
    if (reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 2 * x->wf->nnodes + 1 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        x->d->ops->fail(x, "cannot recover execution %s: %s", x->recover_from,
                        reply->type == REDIS_REPLY_ERROR ? reply->str
                                                         : "no such execution");
        return;
    }
    for (k = 0; k < x->wf->nnodes; k++) {
        const redisReply *o = reply->element[2 * k + 1];

        /* Whole only when nothing of it failed (it may have succeeded
         * under a threshold): else its subtasks are recovered one by one
         * and the failed ones run again. */
        if (o->type != REDIS_REPLY_STRING ||
            !progress_clean(reply->element[2 * k + 2]))
            continue;
        mapq_buf_init(&out, 0);
        mapq_buf_append(&out, o->str, o->len);
        if (x->d->ops->restore(x, k, &out, true) != 0)
            return;
    }
    x->d->ops->read_back(x);
}

/*
 * Starts an execution that recovers another: the nodes that succeeded
 * there are taken whole; the others push through mapq1_push_recover,
 * which takes each subtask's success from there.
 */
void
drv_recover_read(struct exec *x)
{
    read_nodes(x, x->recover_from, recover_cb);
}
