/*
 * drv_window.c - the sliding window of a node: which subtasks to push next,
 * at most `concurrency` in flight, the bookkeeping of their ends, and the
 * push calls (mapq1_push, mapq1_push_cached, mapq1_push_recover).
 *
 * Owns a node_run's window: next, inflight, finished, counts and the
 * phases. The arithmetic (drv_window_limit .. drv_window_abort) is pure and
 * unit-tested; drv_window_push() sends. A push Redis rejects is reported
 * to the controller (ops->fail); this file never changes an execution's
 * state nor starts or finishes a node.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_seal.h"
#include "mapq_value.h"

uint64_t
drv_window_limit(int64_t concurrency)
{
    return concurrency > 0 ? (uint64_t)concurrency : UNLIMITED_WINDOW;
}

/* min_successes when set (>= 0), else the ratio of n, rounded up; at most
 * n. */
uint64_t
drv_window_need(int64_t min_successes, double min_success_ratio, uint64_t n)
{
    uint64_t need;

    if (min_successes >= 0)
        need = (uint64_t)min_successes;
    else
        need = (uint64_t)ceil(min_success_ratio * (double)n - 1e-9);
    return need > n ? n : need;
}

/* After a reconcile, subtasks in flight or finished are skipped: only
 * those never pushed (PH_PENDING) are taken. */
size_t
drv_window_take(struct node_run *nr, uint64_t limit, uint64_t end,
                uint64_t *idx, size_t max)
{
    size_t taken = 0;

    if (end > nr->n)
        end = nr->n;
    while (taken < max && nr->state == NODE_RUNNING && !nr->scanning &&
           nr->inflight < limit && nr->next < end) {
        uint64_t i = nr->next++;

        if (phase_get(nr, i) != PH_PENDING)
            continue;
        phase_set(nr, i, MAPQ_PHASE_QUEUED);
        nr->inflight++;
        idx[taken++] = i;
    }
    return taken;
}

/* A late or repeated event is already accounted for. */
bool
drv_window_apply(struct node_run *nr, uint64_t i, int phase)
{
    int was;

    if (nr->state != NODE_RUNNING || i >= nr->n)
        return false;
    was = phase_get(nr, i);
    if (phase_done(was))
        return false;
    phase_set(nr, i, phase);
    nr->counts[phase]++;
    /* A pending subtask finishing is one a reconcile has not seen yet (or
     * pushed before a lost reply), and a follower gave its slot back: they
     * hold no window slot here. */
    if (was != PH_PENDING && was != PH_FOLLOWING)
        nr->inflight--;
    nr->finished++;
    nr->touched = true;
    return true;
}

bool
drv_window_hopeless(const struct node_run *nr, bool run_all)
{
    uint64_t failed = nr->finished - nr->counts[MAPQ_PHASE_SUCCEEDED] -
                      nr->counts[MAPQ_PHASE_CACHED] -
                      nr->counts[MAPQ_PHASE_RECOVERED];

    return failed > nr->n - nr->need && !run_all && nr->finished < nr->n;
}

bool
drv_window_flowing(const struct node_run *nr)
{
    return nr->state == NODE_RUNNING && !nr->scanning && nr->next >= nr->n &&
           nr->read_rate > 0 &&
           nr->inflight > nr->read_rate * 2 * EVENT_PACE_MS / 1000;
}

void
drv_window_read(struct node_run *nr, int64_t now_ms)
{
    uint64_t got = nr->finished - nr->read_mark;

    nr->read_rate = 0;
    if (nr->read_ms > 0 && now_ms > nr->read_ms)
        nr->read_rate = got * 1000 / (uint64_t)(now_ms - nr->read_ms);
    nr->read_mark = nr->finished;
    nr->read_ms = now_ms;
}

/*
 * The threshold is out of reach (or the execution cancelled): every
 * subtask not finished is ABORTED (queued ones are dropped when the
 * execution fails, running ones killed by their agents), and the node goes
 * on to read the errors.
 */
void
drv_window_abort(struct node_run *nr)
{
    uint64_t i;

    for (i = 0; i < nr->n; i++)
        if (!phase_done(phase_get(nr, i))) {
            phase_set(nr, i, MAPQ_PHASE_ABORTED);
            nr->counts[MAPQ_PHASE_ABORTED]++;
        }
    nr->next = nr->n;
    nr->inflight = 0;
    nr->finished = nr->n;
    nr->scanning = false;
}

/* ---- push calls -------------------------------------------------------- */

/* One push call in flight: the subtasks it carries, in order. */
struct push_req {
    struct exec *x;
    size_t k;
    unsigned gen;
    size_t n;
    uint64_t idx[BATCH];
};

/*
 * mapq1_push_cached says, per subtask, 'q' (queued), 'f' (it follows an
 * identical one: no slot of the window while it waits) or 'd' (answered
 * at once: its event comes). Followers give their slot back here.
 */
static void
push_followers(struct exec *x, const struct push_req *req,
               const redisReply *reply)
{
    struct node_run *nr = &x->nodes[req->k];
    size_t j;
    bool freed = false;

    if (reply->type != REDIS_REPLY_STRING || reply->len != req->n ||
        nr->state != NODE_RUNNING)
        return;
    for (j = 0; j < req->n; j++)
        if (reply->str[j] == 'f' &&
            phase_get(nr, req->idx[j]) == MAPQ_PHASE_QUEUED) {
            phase_set(nr, req->idx[j], PH_FOLLOWING);
            nr->inflight--;
            freed = true;
        }
    if (freed)
        drv_window_push(x, req->k);
}

static void
push_cb(redisReply *reply, const char *why, void *arg)
{
    struct push_req *req = arg;
    struct exec *x = req->x;

    (void)why;
    x->calls--;
    /* No reply: the connection is being rebuilt, and the reconcile after
     * it pushes whatever did not arrive. */
    if (drv_exec_ended(x) || reply == NULL || req->gen != x->gen) {
        /* nothing to do */
    } else if (reply->type == REDIS_REPLY_ERROR) {
        x->d->ops->fail(x, "cannot queue subtasks: %s", reply->str);
    } else {
        push_followers(x, req, reply);
    }
    free(req);
}

enum push_mode {
    PUSH_PLAIN,   /* mapq1_push: body field (or index), body */
    PUSH_CACHED,  /* mapq1_push_cached: index, key, body */
    PUSH_RECOVER, /* mapq1_push_recover: index, key, key in the old, body */
};

/* A cached node uses the cache even in a recovery: the successes of the
 * execution recovered are entries there, and followers still run once. */
static enum push_mode
push_mode(const struct exec *x, size_t k)
{
    if (x->wf->nodes[k].opts.cache)
        return PUSH_CACHED;
    return x->recover_from[0] != '\0' ? PUSH_RECOVER : PUSH_PLAIN;
}

/*
 * The start of a push call for node k: mapq1_push; for a cached node
 * mapq1_push_cached, whose subtasks carry their key (for the lookups); in
 * a recovery mapq1_push_recover, whose subtasks also carry their key in
 * the execution recovered.
 */
static void
push_header(struct exec *x, size_t k, struct mapq_argv *cmd)
{
    static const char *const fns[] = {"mapq1_push", "mapq1_push_cached",
                                      "mapq1_push_recover"};
    const struct mapq_node *n = &x->wf->nodes[k];
    struct node_run *nr = &x->nodes[k];
    enum push_mode mode = push_mode(x, k);

    mapq_argv_add(cmd, "FCALL");
    mapq_argv_add(cmd, fns[mode]);
    mapq_argv_add(cmd, "0");
    mapq_argv_add(cmd, x->d->ns);
    mapq_argv_add(cmd, x->id);
    mapq_argv_addf(cmd, "%zu", k);
    mapq_argv_add(cmd, nr->queue);
    mapq_argv_add(cmd, nr->cls);
    if (mode == PUSH_CACHED) {
        mapq_argv_add(cmd, x->wf->tasks[n->task].name);
        mapq_argv_add(cmd, x->overwrite ? "1" : "0");
    } else if (mode == PUSH_RECOVER) {
        mapq_argv_add(cmd, x->recover_from);
    }
}

/* Appends subtask i of node k to a push call: body field "<k>/<i>" (plain,
 * from revision MAPQ_FUNCTIONS_PUSH_FIELDS) or index, key(s), body. */
static void
push_subtask(struct exec *x, size_t k, uint64_t i, struct mapq_argv *cmd,
             struct mapq_buf *in, struct mapq_buf *body)
{
    struct node_run *nr = &x->nodes[k];
    unsigned char key[MAPQ_KEY_LEN];
    msgpack_packer pk;

    mapq_buf_reset(in);
    mapq_buf_reset(body);
    drv_subtask_inputs(nr, i, in);
    drv_subtask_key(x, k, i, in->data, in->len, key);
    mapq_value_packer_init(&pk, body);
    msgpack_pack_map(&pk, 3);
    mapq_value_pack_str(&pk, "i");
    msgpack_pack_uint64(&pk, i);
    mapq_value_pack_str(&pk, "in");
    mapq_buf_append(body, in->data, in->len);
    mapq_value_pack_str(&pk, "h");
    msgpack_pack_bin(&pk, MAPQ_KEY_LEN);
    msgpack_pack_bin_body(&pk, key, MAPQ_KEY_LEN);
    if (push_mode(x, k) == PUSH_PLAIN &&
        mapq_redis_library(x->d->cmd) >= MAPQ_FUNCTIONS_PUSH_FIELDS)
        /* Its body field, which the function then takes as it is. */
        mapq_argv_addf(cmd, "%zu/%llu", k, (unsigned long long)i);
    else
        mapq_argv_addf(cmd, "%llu", (unsigned long long)i);
    if (push_mode(x, k) != PUSH_PLAIN)
        mapq_argv_addlen(cmd, key, MAPQ_KEY_LEN);
    if (push_mode(x, k) == PUSH_RECOVER) {
        drv_subtask_key_in(x, x->recover_from, k, i, in->data, in->len, key);
        mapq_argv_addlen(cmd, key, MAPQ_KEY_LEN);
    }
    if (x->d->seal != NULL) {
        /* Sealed for this execution, node and element (mapq_seal.h). */
        struct mapq_buf sealed = MAPQ_BUF_INIT;
        char id[MAPQ_EXEC_ID_LEN + 48];

        snprintf(id, sizeof(id), "%s/%zu/%llu", x->id, k,
                 (unsigned long long)i);
        mapq_seal_wrap(x->d->seal, "body", id, body->data, body->len, &sealed);
        mapq_argv_addlen(cmd, sealed.data, sealed.len);
        mapq_buf_release(&sealed);
        return;
    }
    mapq_argv_addlen(cmd, body->data, body->len);
}

/* Calls of BATCH subtasks at most, as long as the window has room. */
void
drv_window_push(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];
    uint64_t limit = drv_window_limit(x->wf->nodes[k].concurrency);
    struct mapq_buf body = MAPQ_BUF_INIT, in = MAPQ_BUF_INIT;
    uint64_t idx[BATCH], before;
    struct push_req *req;
    struct mapq_argv cmd;
    size_t n, j;

    if (!drv_exec_driving(x))
        return; /* failing: nothing more runs */
    mapq_argv_init(&cmd);
    /* The pages of paged lists are read as the window reaches them; a
     * batch that took nothing but went past subtasks already pushed (after
     * a reconcile) is followed by the next. */
    for (;;) {
        if (!drv_pages_cover(x, k, nr->next, nr->next + BATCH, PAGE_WAIT_PUSH))
            break;
        before = nr->next;
        n = drv_window_take(nr, limit, nr->next + BATCH, idx, BATCH);
        if (n == 0 && nr->next == before)
            break;
        if (n == 0)
            continue;
        req = mapq_xcalloc(1, sizeof(*req));
        req->x = x;
        req->k = k;
        req->gen = x->gen;
        req->n = n;
        memcpy(req->idx, idx, n * sizeof(*idx));
        push_header(x, k, &cmd);
        for (j = 0; j < n; j++)
            push_subtask(x, k, idx[j], &cmd, &in, &body);
        drv_exec_send(x, PATH_PUSH, &cmd, push_cb, req)->gen_check = true;
        mapq_argv_reset(&cmd);
    }
    mapq_argv_release(&cmd);
    mapq_buf_release(&body);
    mapq_buf_release(&in);
}
