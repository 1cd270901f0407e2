/*
 * driver.c - the controller of scheduler/driver/: executions, from the
 * moment they are added until their records are written, and the driver
 * that runs them.
 *
 * Data flow for one map node: node_start() binds its inputs (drv_bind.c)
 * and the window pushes its subtasks, at most `concurrency` in flight
 * (drv_window.c); events come back through BLMPOP/LPOP on P:ev:<exec>
 * (drv_events.c); when every subtask is finished, the result records are
 * read in index order into the output list (drv_assemble.c). The driver
 * never blocks: both Redis connections are async, and work is sliced into
 * batches of BATCH subtasks.
 *
 * Ownership and reconcile: an execution is driven only after mapq1_own
 * said it is ours, and its lease is renewed every second (drv_own.c).
 * After adoption or a reconnect the driver rebuilds its view from Redis
 * (drv_reconcile.c): node outputs from o:<k>, and for a node that may have
 * been started, mapq1_scan tells for each subtask whether it has a result,
 * is in flight, or was never pushed; only the last are pushed. A reply
 * lost with the connection changes nothing here: the reconcile after
 * reconnecting covers it.
 *
 * This file owns struct mapq_driver and struct exec, and is the only one
 * that changes an execution's state (drv_exec_set_state()) or a node's life
 * (start, success, failure). The leaves report to it through struct
 * drv_ops; it decides what happens next.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_log.h"
#include "mapq_pages.h"
#include "mapq_value.h"

static void advance(struct exec *x);
static void node_run(struct exec *x, size_t k);
static const struct drv_ops ops;

/* ---- the state of an execution ---------------------------------------- */

#define P EXEC_PENDING
#define O EXEC_OWNING
#define R EXEC_RECONCILING
#define D EXEC_DRIVING
#define A EXEC_ABORTING
#define F EXEC_FAILING
#define E EXEC_ENDED
#define W EXEC_FINISH_WAIT
#define X EXEC_DETACHED
/*
 * Every live state may end (ENDED) or be let go (DETACHED): a reply that
 * was in flight when the connection failed may still come. A reconnect
 * sends an owned execution back to PENDING, to be owned and reconciled
 * again. An owned execution fails through ABORTING (until the end marker)
 * and FAILING (errors read).
 */
const bool drv_exec_legal[EXEC_STATE_COUNT][EXEC_STATE_COUNT] = {
    [P] = {[O] = true, [E] = true, [X] = true},
    [O] = {[P] = true, [R] = true, [D] = true, [E] = true, [X] = true},
    [R] = {[P] = true, [D] = true, [A] = true, [E] = true, [X] = true},
    [D] = {[P] = true, [A] = true, [E] = true, [X] = true},
    [A] = {[P] = true, [F] = true, [X] = true},
    [F] = {[P] = true, [E] = true, [X] = true},
    [E] = {[W] = true},
    [W] = {[E] = true},
    [X] = {0},
};
#undef P
#undef O
#undef R
#undef D
#undef A
#undef F
#undef E
#undef W
#undef X

const char *
drv_exec_state_name(enum exec_state s)
{
    static const char *const names[] = {"pending", "owning",      "reconciling",
                                        "driving", "aborting",    "failing",
                                        "ended",   "finish-wait", "detached"};

    return s < EXEC_STATE_COUNT ? names[s] : "?";
}

/* The one place an execution's state changes. An execution that ends
 * arms the idle callback: its last writes are on their way. */
void
drv_exec_set_state(struct exec *x, enum exec_state to)
{
    struct mapq_driver *d = x->d;

    if (!drv_exec_legal[x->state][to]) {
        mapq_log(MAPQ_LOG_ERROR, "execution %s: no move from %s to %s", x->id,
                 drv_exec_state_name(x->state), drv_exec_state_name(to));
        mapq_assert(drv_exec_legal[x->state][to]);
    }
    mapq_log(MAPQ_LOG_DEBUG, "execution %s: %s -> %s", x->id,
             drv_exec_state_name(x->state), drv_exec_state_name(to));
    x->state = to;
    if (to == EXEC_ENDED || to == EXEC_DETACHED) {
        d->idle_armed = true;
        if (d->idle_fn != NULL)
            event_active(d->idle_ev, EV_TIMEOUT, 0);
    }
}

/* ---- executions --------------------------------------------------------- */

/* Frees what node k holds and makes it a waiting node again. */
static void
node_reset(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];
    size_t j;

    free(nr->phases);
    for (j = 0; j < nr->nparams; j++) {
        mapq_buf_release(&nr->params[j].bound);
        mapq_buf_release(&nr->params[j].proj);
        free(nr->params[j].marks);
        drv_pages_release(&nr->params[j]);
    }
    free(nr->params);
    if (nr->zone != NULL)
        msgpack_zone_free(nr->zone);
    if (nr->loaded != NULL)
        for (j = 0; j < x->wf->nodes[k].nover + x->wf->nodes[k].nwith; j++)
            mapq_buf_release(&nr->loaded[j]);
    free(nr->loaded);
    free(nr->iface);
    mapq_buf_release(&nr->output);
    mapq_buf_release(&nr->asm_buf);
    for (j = 0; j < nr->ngroups; j++) {
        free(nr->groups[j].msg);
        mapq_buf_release(&nr->groups[j].ranges);
    }
    memset(nr, 0, sizeof(*nr));
}

static void
exec_free(struct exec *x)
{
    size_t k;

    for (k = 0; k < x->wf->nnodes; k++)
        node_reset(x, k);
    free(x->nodes);
    mapq_buf_release(&x->inputs);
    mapq_buf_release(&x->output);
    mapq_workflow_free(x->wf);
    free(x->evkey);
    free(x);
}

/* ---- nodes -------------------------------------------------------------- */

/* Node k succeeded with output (taken). Returns -1 after failing x. */
static int
node_set_output(struct exec *x, size_t k, struct mapq_buf *output)
{
    struct node_run *nr = &x->nodes[k];
    char err[MAPQ_ERR_LEN];

    nr->output = *output;
    mapq_buf_init(output, 0);
    if (mapq_value_check(nr->output.data, nr->output.len, err) != MAPQ_OK) {
        drv_end_fail(x, "node '%s': output unreadable: %s",
                     x->wf->nodes[k].name, err);
        return -1;
    }
    nr->state = NODE_SUCCEEDED;
    return 0;
}

/* Node k succeeded with output (taken): stored as o:<k>, dependents start. */
static void
node_succeed(struct exec *x, size_t k, struct mapq_buf *output)
{
    char field[32];

    if (node_set_output(x, k, output) != 0)
        return;
    snprintf(field, sizeof(field), "o:%zu", k);
    drv_record_hset(x, field, x->nodes[k].output.data, x->nodes[k].output.len);
    drv_record_node_progress(x, k);
    advance(x);
}

/* Node k succeeded in the execution recovered, with output (taken): it is
 * RECOVERED whole, and its output stored in this execution too. */
static int
node_recover(struct exec *x, size_t k, struct mapq_buf *output)
{
    struct node_run *nr = &x->nodes[k];
    struct mapq_pages_ref ref;
    char field[32];
    uint32_t n;
    size_t hlen;

    if (node_set_output(x, k, output) != 0)
        return -1;
    /* A paged output stays where it is: the reference names its
     * execution. */
    if (!x->wf->nodes[k].is_map)
        nr->n = 1;
    else if (mapq_value_array_header(nr->output.data, nr->output.len, &n,
                                     &hlen))
        nr->n = n;
    else if (mapq_pages_ref_read(nr->output.data, nr->output.len, &ref))
        nr->n = ref.n;
    else
        nr->n = 1;
    nr->finished = nr->n;
    nr->counts[MAPQ_PHASE_RECOVERED] = nr->n;
    snprintf(field, sizeof(field), "o:%zu", k);
    drv_record_hset(x, field, nr->output.data, nr->output.len);
    drv_record_node_progress(x, k);
    return 0;
}

/* Binds the inputs of node k; -1 after failing x. */
static int
node_bind(struct exec *x, size_t k)
{
    char why[EXEC_ERROR_LEN];

    if (drv_bind_node(x, k, why) == 0)
        return 0;
    drv_end_fail(x, "%s", why);
    return -1;
}

/* Node k binds and runs; the paged lists it binds are read first. */
static void
node_start(struct exec *x, size_t k)
{
    x->nodes[k].state = NODE_RUNNING;
    if (drv_pages_wanted(x, k)) {
        drv_pages_load(x, k);
        return;
    }
    node_run(x, k);
}

static void
node_run(struct exec *x, size_t k)
{
    const struct mapq_node *n = &x->wf->nodes[k];
    struct node_run *nr = &x->nodes[k];
    struct mapq_buf empty = MAPQ_BUF_INIT;
    msgpack_packer pk;

    if (node_bind(x, k) != 0)
        return;
    nr->queue = n->opts.queue;
    nr->cls = mapq_queue_class(n->opts.interruptible,
                               x->wf->tasks[n->task].kind == MAPQ_TASK_PLUGIN);
    nr->need = drv_window_need(n->min_successes, n->min_success_ratio, nr->n);
    if (nr->n == 0) {
        mapq_value_packer_init(&pk, &empty);
        msgpack_pack_array(&pk, 0);
        node_succeed(x, k, &empty);
        return;
    }
    nr->phases = mapq_xmalloc((nr->n + 1) / 2);
    memset(nr->phases, PH_PENDING * 17, (nr->n + 1) / 2);
    if (x->scan_starts) {
        nr->scanning = true;
        drv_scan_next(x, k);
        return;
    }
    drv_window_push(x, k);
}

/* True while x neither ended nor fails. */
static bool
exec_going(const struct exec *x)
{
    return !drv_exec_ended(x) && x->state != EXEC_ABORTING &&
           x->state != EXEC_FAILING;
}

/* Starts whatever can start; ends the execution when everything ended. */
static void
advance(struct exec *x)
{
    const struct mapq_workflow *wf = x->wf;
    char why[EXEC_ERROR_LEN];
    size_t o, k, j;
    bool all_done = true;

    if (x->state == EXEC_FAILING)
        drv_end_maybe(x); /* a node read its output: was it the last? */
    if (drv_exec_ended(x) || x->state == EXEC_ABORTING ||
        x->state == EXEC_FAILING)
        return;
    for (o = 0; o < wf->nnodes && exec_going(x); o++) {
        const struct mapq_node *n;

        k = wf->order[o];
        n = &wf->nodes[k];
        if (x->nodes[k].state != NODE_SUCCEEDED)
            all_done = false;
        if (x->nodes[k].state != NODE_WAITING)
            continue;
        for (j = 0; j < n->ndeps; j++)
            if (x->nodes[n->deps[j]].state != NODE_SUCCEEDED)
                break;
        if (j == n->ndeps)
            node_start(x, k);
    }
    if (!all_done || !exec_going(x))
        return;
    if (drv_assemble_workflow(x, why) != 0) {
        drv_end_fail(x, "%s", why);
        return;
    }
    drv_end(x, true);
}

/* Tells the observer, if any, of count subtasks of node k ending in phase. */
static void
observe(struct exec *x, size_t k, int phase, uint64_t count)
{
    if (x->d->obs != NULL && count > 0)
        x->d->obs->subtasks(x->wf->nodes[k].name, x->nodes[k].queue, phase,
                            count, x->d->obs_arg);
}

/* drv_window_abort(), told to the observer. */
void
drv_node_abort(struct exec *x, size_t k)
{
    uint64_t was = x->nodes[k].counts[MAPQ_PHASE_ABORTED];

    drv_window_abort(&x->nodes[k]);
    observe(x, k, MAPQ_PHASE_ABORTED,
            x->nodes[k].counts[MAPQ_PHASE_ABORTED] - was);
}

/* Fails x if the threshold of node k is out of reach: its errors are
 * read once the rest of it is aborted. */
static void
check_threshold(struct exec *x, size_t k)
{
    if (drv_exec_driving(x) &&
        drv_window_hopeless(&x->nodes[k], x->wf->nodes[k].run_all))
        drv_end_abort(x);
}

/* Every subtask of node k finished: its records are read. */
void
drv_node_maybe_finish(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];

    if (nr->state == NODE_RUNNING && nr->finished == nr->n) {
        nr->state = NODE_ASSEMBLING;
        nr->scanning = false;
        drv_assemble_start(x, k);
    }
}

/*
 * Rebuilds the view of x from Redis: nodes forget what they knew, node
 * outputs are read back, and nodes that start from here scan where their
 * subtasks stand instead of pushing them all.
 */
static void
reconcile(struct exec *x)
{
    size_t k;

    x->gen++;
    x->reconcile = false;
    x->scan_starts = true;
    for (k = 0; k < x->wf->nnodes; k++)
        node_reset(x, k);
    drv_reconcile_read(x);
}

/* Asks for the ownership of executions waiting for it. */
static void
start_pending(struct mapq_driver *d)
{
    struct exec *x;

    if (!mapq_redis_ready(d->cmd))
        return;
    TAILQ_FOREACH (x, &d->execs, entry) {
        if (x->state != EXEC_PENDING)
            continue;
        drv_exec_set_state(x, EXEC_OWNING);
        drv_own_send(x);
    }
}

/* ---- what the leaves report ------------------------------------------- */

static void
on_refused(struct mapq_driver *d, struct exec *x, const char *msg)
{
    struct exec *e;

    if (x != NULL) {
        drv_end_fail_redis(x, msg);
        return;
    }
    TAILQ_FOREACH (e, &d->execs, entry)
        drv_end_fail_redis(e, msg);
}

static void
on_settled(struct mapq_driver *d)
{
    if (d->idle_fn != NULL && d->idle_armed && !d->stopping)
        event_active(d->idle_ev, EV_TIMEOUT, 0);
}

/* Events of this owner's epoch only: a driver that lost the execution
 * meanwhile cannot take them. */
static void
on_owned(struct exec *x, long long epoch)
{
    if (epoch == 0) {
        drv_exec_set_state(x, EXEC_PENDING);
        return;
    }
    free(x->evkey);
    x->evkey = mapq_key_events(x->d->ns, x->id, epoch);
    if (x->reconcile) {
        drv_exec_set_state(x, EXEC_RECONCILING);
        reconcile(x);
    } else if (x->recover_from[0] != '\0') {
        drv_exec_set_state(x, EXEC_RECONCILING);
        drv_recover_read(x);
    } else {
        drv_exec_set_state(x, EXEC_DRIVING);
        advance(x);
    }
    drv_events_wait(x->d);
}

static void
on_event(struct exec *x, uint64_t k, uint64_t i, int phase)
{
    if (!drv_window_apply(&x->nodes[k], i, phase))
        return;
    observe(x, k, phase, 1);
    check_threshold(x, k);
}

/* Refills the windows of the nodes that got events, and finishes nodes. */
static void
on_events_done(struct exec *x)
{
    int64_t now = drv_now_ms();
    size_t k;

    for (k = 0; k < x->wf->nnodes && drv_exec_driving(x); k++) {
        struct node_run *nr = &x->nodes[k];

        if (!nr->touched)
            continue;
        nr->touched = false;
        drv_window_read(nr, now);
        drv_window_push(x, k);
        drv_node_maybe_finish(x, k);
    }
}

/* Whether x's next events may wait: it drives nodes, none of them reads
 * its records (its successors would start late), and every running one
 * is flowing. */
static bool
exec_may_wait(const struct exec *x)
{
    bool running = false;
    size_t k;

    if (x->state != EXEC_DRIVING)
        return false;
    for (k = 0; k < x->wf->nnodes; k++) {
        const struct node_run *nr = &x->nodes[k];

        if (nr->state == NODE_ASSEMBLING)
            return false;
        if (nr->state != NODE_RUNNING)
            continue;
        if (!drv_window_flowing(nr))
            return false;
        running = true;
    }
    return running;
}

static bool
on_events_may_wait(struct mapq_driver *d)
{
    struct exec *x;
    bool any = false;

    TAILQ_FOREACH (x, &d->execs, entry) {
        if (!drv_exec_owned(x))
            continue;
        if (!exec_may_wait(x))
            return false;
        any = true;
    }
    return any;
}

static void
on_scanned(struct exec *x, size_t k)
{
    if (x->state == EXEC_ABORTING) {
        drv_end_counted(x); /* the marker may wait for this scan */
        return;
    }
    if (!drv_exec_driving(x))
        return;
    check_threshold(x, k);
    drv_window_push(x, k);
    drv_node_maybe_finish(x, k);
}

static void
on_assembled(struct exec *x, size_t k)
{
    struct mapq_buf out = MAPQ_BUF_INIT;
    char why[EXEC_ERROR_LEN];

    if (drv_assemble_output(x, k, &out, why) != 0) {
        x->nodes[k].state = NODE_FAILED;
        drv_end_fail(x, "%s", why);
        return;
    }
    node_succeed(x, k, &out);
    mapq_buf_release(&out);
}

/* Each step that waited for pages goes on, if it still has to. */
static void
on_pages_loaded(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];
    unsigned w = nr->page_wait;

    nr->page_wait = 0;
    if (drv_exec_ended(x))
        return;
    if ((w & PAGE_WAIT_BIND) && nr->state == NODE_RUNNING)
        node_run(x, k);
    if ((w & PAGE_WAIT_SCAN) && nr->scanning)
        drv_scan_next(x, k);
    if ((w & PAGE_WAIT_PUSH) && nr->state == NODE_RUNNING)
        drv_window_push(x, k);
    if ((w & PAGE_WAIT_ASM) && nr->state == NODE_ASSEMBLING)
        drv_assemble_next(x, k);
}

static int
on_restore(struct exec *x, size_t k, struct mapq_buf *output, bool recovered)
{
    if (recovered)
        return node_recover(x, k, output);
    x->nodes[k].restored = true;
    return node_set_output(x, k, output);
}

/* A read that was in flight across a reconnect may still come back after
 * x left RECONCILING: nodes start all the same, as a reconcile follows. */
static void
on_read_back(struct exec *x)
{
    if (x->state == EXEC_RECONCILING)
        drv_exec_set_state(x, EXEC_DRIVING);
    advance(x);
}

static void exec_add(struct mapq_driver *d, const char *id,
                     struct mapq_workflow *wf, struct mapq_buf *inputs,
                     const struct mapq_exec_opts *o, bool reconcile,
                     mapq_exec_done_fn *done, void *arg);

static void
on_load(struct mapq_driver *d, const char *id, struct mapq_workflow *wf,
        struct mapq_buf *inputs, const struct mapq_exec_opts *o, bool adopted)
{
    exec_add(d, id, wf, inputs, o, adopted, drv_serve_done, NULL);
}

static const struct drv_ops ops = {
    .fail = drv_end_fail,
    .refused = on_refused,
    .settled = on_settled,
    .detach = drv_end_detach,
    .lost = drv_end_lost,
    .owned = on_owned,
    .cancelled = drv_end_cancelled,
    .abort_replied = drv_end_abort_replied,
    .end_marked = drv_end_marked,
    .event = on_event,
    .events_done = on_events_done,
    .events_may_wait = on_events_may_wait,
    .submitted = drv_serve_one,
    .load = on_load,
    .scanned = on_scanned,
    .assembled = on_assembled,
    .pages_loaded = on_pages_loaded,
    .restore = on_restore,
    .read_back = on_read_back,
};

/* ---- the driver --------------------------------------------------------- */

/* Another revision of the function library was in Redis: said once per
 * connect. */
static void
library_cb(struct mapq_redis *r, int held, const char *refused, void *arg)
{
    char text[MAPQ_ERR_LEN + 256];
    bool warn = mapq_redis_library_text(held, refused, text, sizeof(text));

    (void)r;
    (void)arg;
    mapq_log(warn ? MAPQ_LOG_WARN : MAPQ_LOG_INFO, "%s", text);
}

static void
state_cb(struct mapq_redis *r, bool up, void *arg)
{
    struct mapq_driver *d = arg;
    struct exec *x;
    bool again;

    if (!up) {
        if (r == d->blk)
            drv_events_lost(d);
        else
            d->adopt_inflight = false;
        mapq_log(MAPQ_LOG_WARN, "lost the redis connection; reconnecting");
        return;
    }
    again = r == d->cmd ? d->was_up : d->blk_was_up;
    if (r == d->cmd)
        d->was_up = true;
    else
        d->blk_was_up = true;
    /* Replies lost with the old connection may hide pushes that never
     * happened, or events taken but never seen: rebuild from Redis. */
    TAILQ_FOREACH (x, &d->execs, entry) {
        if (r == d->cmd && x->state == EXEC_FINISH_WAIT)
            drv_end_send_finish(x);
        else if (again && drv_exec_owned(x)) {
            drv_exec_set_state(x, EXEC_PENDING);
            x->reconcile = true;
        }
    }
    if (again)
        mapq_log(MAPQ_LOG_WARN, "reconnected to redis; rebuilding the state "
                                "of its executions");
    start_pending(d);
    drv_events_wait(d);
}

/* Reaping is opportunistic: a refusal delays the next tick's. */
static void
reap_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;
    struct mapq_driver *d = x->d;
    int delay_ms;

    (void)why;
    x->calls--;
    on_settled(d);
    if (reply == NULL)
        return; /* the connection's fault: it is being rebuilt */
    if (reply->type != REDIS_REPLY_ERROR) {
        drv_note_success(d, PATH_REAP, "FCALL mapq1_reap");
        return;
    }
    if (drv_refused(d, NULL, PATH_REAP, "FCALL mapq1_reap", reply->str,
                    &delay_ms))
        d->reap_next = drv_now_ms() + delay_ms;
}

/* Frees executions whose records are written, writes progress, renews
 * leases, adopts (serving), reaps agents' leases, and waits again. */
static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_driver *d = arg;
    struct exec *x, *next;
    const char *argv[] = {"FCALL", "mapq1_reap", "0", d->ns, "1000"};
    size_t lens[5], i;
    int64_t now = drv_now_ms();

    (void)fd;
    (void)what;
    for (x = TAILQ_FIRST(&d->execs); x != NULL; x = next) {
        next = TAILQ_NEXT(x, entry);
        if (drv_exec_ended(x) && x->calls == 0 &&
            x->state != EXEC_FINISH_WAIT) {
            TAILQ_REMOVE(&d->execs, x, entry);
            exec_free(x);
        } else if (drv_exec_owned(x)) {
            drv_record_progress(x);
            drv_record_read_held(x); /* one at a time: x->counting */
            drv_own_check(x);        /* one at a time: x->checking */
            drv_end_tick(x, now);    /* an abort's marker overdue? */
        }
    }
    if (!mapq_redis_ready(d->cmd))
        return;
    if (now - d->owned_ms >=
        (d->lease_ms / 3 < 1000 ? d->lease_ms / 3 : 1000)) {
        d->owned_ms = now;
        drv_own_renew(d);
    }
    if (d->serving && now - d->adopted_ms >= ADOPT_EVERY_MS) {
        d->adopted_ms = now;
        drv_serve_adopt(d);
    }
    for (i = 0; i < 5; i++)
        lens[i] = strlen(argv[i]);
    x = TAILQ_FIRST(&d->execs);
    if (x != NULL && !drv_exec_ended(x) && now >= d->reap_next) {
        x->calls++;
        mapq_redis_command(d->cmd, CALL_TIMEOUT_MS, reap_cb, x, 5, argv, lens);
    }
    drv_events_wait(d);
}

static void
idle_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_driver *d = arg;

    (void)fd;
    (void)what;
    if (d->idle_fn == NULL || !d->idle_armed || !mapq_driver_idle(d))
        return;
    d->idle_armed = false;
    d->idle_fn(d->idle_arg);
}

struct mapq_driver *
mapq_driver_new(struct event_base *base, const struct mapq_redis_url *url,
                const char *ns, int lease_ms)
{
    struct mapq_driver *d = mapq_xcalloc(1, sizeof(*d));
    struct timeval tv = {0, 500000};
    char rnd[MAPQ_EXEC_ID_LEN + 1], host[128] = "";
    int p;

    d->base = base;
    d->ops = &ops;
    for (p = 0; p < PATH_COUNT; p++)
        mapq_retry_init(&d->retry[p], 100, 2000);
    TAILQ_INIT(&d->parked);
    d->wait_ev = evtimer_new(base, drv_events_again_cb, d);
    d->idle_ev = event_new(base, -1, 0, idle_cb, d);
    d->ns = mapq_xstrdup(ns);
    d->lease_ms = lease_ms > 0 ? lease_ms : MAPQ_OWNER_LEASE_MS;
    d->retention_ms = MAPQ_RETENTION_DEFAULT_MS;
    drv_new_id(rnd);
    d->wake_key = mapq_key_wake(ns, rnd);
    gethostname(host, sizeof(host) - 1);
    d->owner = mapq_xasprintf("%s/%ld/%s", host, (long)getpid(), rnd);
    mapq_buf_init(&d->wait_keys, 0);
    TAILQ_INIT(&d->execs);
    d->cmd = mapq_redis_new(base, url, "scheduler", state_cb, d);
    mapq_redis_set_library_cb(d->cmd, library_cb, d);
    d->blk = mapq_redis_new(base, url, "scheduler-wait", state_cb, d);
    d->tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, d);
    event_add(d->tick_ev, &tv);
    return d;
}

void
mapq_driver_free(struct mapq_driver *d)
{
    struct exec *x;

    if (d == NULL)
        return;
    d->stopping = true;
    mapq_redis_free(d->cmd);
    mapq_redis_free(d->blk);
    drv_calls_drop(d);
    while ((x = TAILQ_FIRST(&d->execs)) != NULL) {
        TAILQ_REMOVE(&d->execs, x, entry);
        exec_free(x);
    }
    event_free(d->tick_ev);
    event_free(d->idle_ev);
    event_free(d->wait_ev);
    mapq_buf_release(&d->wait_keys);
    free(d->wake_key);
    free(d->owner);
    free(d->ns);
    free(d);
}

/* Adds an execution to drive; reconcile: it may have run before (adopted). */
static void
exec_add(struct mapq_driver *d, const char *id, struct mapq_workflow *wf,
         struct mapq_buf *inputs, const struct mapq_exec_opts *o,
         bool reconcile, mapq_exec_done_fn *done, void *arg)
{
    struct exec *x = mapq_xcalloc(1, sizeof(*x));
    char err[MAPQ_ERR_LEN];

    x->d = d;
    x->state = EXEC_PENDING;
    x->output_of = -1;
    snprintf(x->id, sizeof(x->id), "%s", id);
    if (o != NULL) {
        x->overwrite = o->overwrite_cache;
        if (o->recover_from != NULL)
            snprintf(x->recover_from, sizeof(x->recover_from), "%s",
                     o->recover_from);
    }
    x->wf = wf;
    x->done = done;
    x->arg = arg;
    x->reconcile = reconcile;
    x->nodes = mapq_xcalloc(wf->nnodes + 1, sizeof(*x->nodes));
    /* Taken, not copied: a million-element list is held once. */
    x->inputs = *inputs;
    mapq_buf_init(inputs, 0);
    mapq_buf_init(&x->output, 0);
    TAILQ_INSERT_TAIL(&d->execs, x, entry);
    if (mapq_value_check(x->inputs.data, x->inputs.len, err) != MAPQ_OK) {
        drv_end_fail(x, "inputs unreadable: %s", err);
        return;
    }
    start_pending(d);
    /* Re-arm the wait so that it includes this execution's events. */
    drv_events_wait(d);
}

void
mapq_driver_add(struct mapq_driver *d, const char *id, struct mapq_workflow *wf,
                struct mapq_buf *inputs, const struct mapq_exec_opts *o,
                mapq_exec_done_fn *done, void *arg)
{
    exec_add(d, id, wf, inputs, o, false, done, arg);
}

void
mapq_driver_serve(struct mapq_driver *d)
{
    d->serving = true;
    drv_events_wait(d);
}

bool
mapq_driver_idle(const struct mapq_driver *d)
{
    const struct exec *x;

    TAILQ_FOREACH (x, &d->execs, entry)
        if (x->calls > 0 || x->state == EXEC_FINISH_WAIT)
            return false;
    return true;
}

void
mapq_driver_on_idle(struct mapq_driver *d, void (*fn)(void *), void *arg)
{
    d->idle_fn = fn;
    d->idle_arg = arg;
    if (fn != NULL && d->idle_armed)
        event_active(d->idle_ev, EV_TIMEOUT, 0);
}

bool
mapq_driver_refused(const struct mapq_driver *d)
{
    return d->nrefused > 0;
}

size_t
mapq_driver_progress(struct mapq_driver *d, const char *id,
                     struct mapq_node_progress *out, size_t max)
{
    struct exec *x = drv_find_exec(d, id);
    size_t k;

    if (x == NULL)
        return 0;
    for (k = 0; k < x->wf->nnodes && k < max; k++) {
        struct node_run *nr = &x->nodes[k];

        out[k].name = x->wf->nodes[k].name;
        out[k].state = drv_node_state_name(nr->state);
        out[k].total = nr->n;
        drv_node_counts(nr, out[k].counts);
    }
    return x->wf->nnodes;
}
