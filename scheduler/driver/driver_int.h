/*
 * driver_int.h - what the files of scheduler/driver/ share: limits, the
 * structs of a driver, an execution and a node, the execution's state, and
 * the table through which leaves report to the controller.
 *
 * The folder has three layers, and calls go down only:
 *   - driver.c and drv_end.c, the controller: own struct mapq_driver and
 *     struct exec, change an execution's state (drv_exec_set_state()
 *     alone), and decide what happens next; drv_end.c how it ends;
 *   - the leaves, one concept each (drv_window.c, drv_events.c,
 *     drv_assemble.c, drv_reconcile.c, drv_own.c, drv_serve.c): they do
 *     their part and report outcomes to the controller through struct
 *     drv_ops; they never call one another;
 *   - helpers that know nothing of the others (drv_calls.c, drv_record.c,
 *     drv_bind.c, drv_errors.c), used by the controller and the leaves.
 * No file outside scheduler/driver/ includes this header.
 */
#ifndef MAPQ_DRIVER_INT_H
#define MAPQ_DRIVER_INT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/time.h>

#include "mapq_driver.h"
#include "mapq_pages.h"
#include "mapq_record.h"
#include "mapq_retry.h"
#include "mapq_value.h"

#define BATCH            1000
#define UNLIMITED_WINDOW 65536 /* queued+running cap when concurrency unset */
#define CALL_TIMEOUT_MS  10000
#define WAIT_BLOCK_S     1
#define EVENT_PACE_MS    100 /* reads of events apart while none is awaited */
#define ERROR_GROUPS_MAX 8
#define ADOPT_EVERY_MS   1000
#define PRUNE_EVERY      60   /* adoptions: P:execs is pruned every minute */
#define PRUNE_COUNT      1000 /* entries of P:execs looked at per prune */
#define SWEEP_COUNT      500  /* blobs looked at per mapq1_blob_sweep */
#define SWEEP_CALLS      20 /* calls per prune while each finds a full batch */
#define ADOPT_MAX        16
/* Driver-side phase of a subtask not pushed yet (4 bits; above all phases
 * a subtask can have in Redis). */
#define PH_PENDING 15
/* Driver-side phase of a subtask that follows an identical one (cached
 * nodes): pushed, but holding no slot of the window. */
#define PH_FOLLOWING 14
/* The size of an execution's error message (struct exec's error). */
#define EXEC_ERROR_LEN 2048

/*
 * Each kind of call the driver makes is a path with its own backoff and its
 * own "cause" (mapq_retry), so that a refusal is logged once per path and
 * cause, and once more when it clears.
 */
enum path {
    PATH_PUSH,   /* mapq1_push* */
    PATH_EVENTS, /* BLMPOP, LPOP of events */
    PATH_OWN,    /* mapq1_own taking an execution */
    PATH_RENEW,  /* mapq1_own renewing leases */
    PATH_ADOPT,  /* mapq1_adopt */
    PATH_RECORD, /* HSET of an execution's record */
    PATH_SCAN,   /* mapq1_scan (reconcile) */
    PATH_READ,   /* HMGET of results and records */
    PATH_FINISH, /* mapq1_finish */
    PATH_STATE,  /* HGET of an execution's state: cancelled, gone? */
    PATH_REAP,   /* mapq1_reap */
    PATH_CANCEL, /* mapq1_cancel (Ctrl-C) */
    PATH_LOAD,   /* HMGET of a submitted or adopted execution */
    PATH_HELD,   /* HMGET of an execution's held counts, for progress */
    PATH_ABORT,  /* mapq1_abort */
    PATH_COUNT,
};

enum node_state {
    NODE_WAITING,
    NODE_RUNNING,
    NODE_ASSEMBLING,
    NODE_SUCCEEDED,
    NODE_FAILED,
    NODE_SKIPPED,
};

/* The event wait of a driver (drv_events.c). */
enum wait_state {
    WAIT_IDLE,    /* none in flight: the next drv_events_wait() sends one */
    WAIT_SENT,    /* a BLMPOP is in flight */
    WAIT_BACKOFF, /* refused: wait_ev sends the next after a backoff */
    WAIT_PACED,   /* events may wait: wait_ev sends the next at the pace */
};

/*
 * The life of an execution in a driver; changed by drv_exec_set_state() only,
 * which checks each move against drv_exec_legal[][] (docs/ARCHITECTURE.md
 * has the table).
 */
enum exec_state {
    EXEC_PENDING,     /* waits for the connection to ask for ownership */
    EXEC_OWNING,      /* mapq1_own in flight */
    EXEC_RECONCILING, /* owned; node outputs read back from Redis (after an
                         adoption or a reconnect, or from the execution it
                         recovers) before nodes start */
    EXEC_DRIVING,     /* owned: nodes run */
    EXEC_ABORTING,    /* owned, failing: mapq1_abort sent; events count up
                         to its end marker; nothing is pushed or started */
    EXEC_FAILING,     /* owned: past the marker, the rest is ABORTED; the
                         nodes that failed read their errors, then it ends */
    EXEC_ENDED,       /* outcome out; the final write (mapq1_finish) sent */
    EXEC_FINISH_WAIT, /* ended; the final write was lost with the
                         connection and is sent again once it is back */
    EXEC_DETACHED,    /* let go without writing: another driver owns it, it
                         ended elsewhere, or Redis lost its record */
    EXEC_STATE_COUNT,
};

/* The legal moves: drv_exec_legal[from][to] (driver.c). */
extern const bool drv_exec_legal[EXEC_STATE_COUNT][EXEC_STATE_COUNT];

/* The state's name, for logs and tests. */
const char *drv_exec_state_name(enum exec_state s);

/* Failed subtasks sharing one message, as index ranges ("0-3,7"). Indices
 * arrive in ascending order during assembly. */
struct err_group {
    char *msg;
    struct mapq_buf ranges; /* closed ranges so far */
    uint64_t start, last;   /* the open range */
};

/*
 * One parameter of a node. An 'over' list is read from its msgpack bytes,
 * never as a tree: marks[] holds the offset of every LIST_MARK-th element,
 * and (at, at_off) the element last reached, so that the window, the scan
 * and the assembly, which each go through the list in order, step over
 * one element per subtask. A paged list (ref) is read a few pages at a
 * time into pages[] (drv_pages.c); (at, at_off) are then in page cur.
 */
#define LIST_MARK  256
#define PAGE_SLOTS 8
struct page_slot {
    bool used;
    uint64_t p;           /* which page of the list */
    uint64_t stamp;       /* last use, for eviction */
    struct mapq_buf data; /* its elements, without the array header */
};
struct param_src {
    const char *name;
    const struct mapq_type *type;
    const char *list; /* over: the list's bytes, borrowed from the
                         workflow (a literal), x->inputs or a node's
                         output; NULL for 'with' and paged lists */
    size_t list_len;
    uint64_t n;                /* elements in the list */
    size_t *marks;             /* offset of element j * LIST_MARK */
    uint64_t at;               /* the element last reached */
    size_t at_off;             /* and its offset in list (or page cur) */
    struct mapq_buf bound;     /* with: canonical bytes of the value */
    struct mapq_buf proj;      /* $NODE.MEMBER: the member taken out of
                                  the node's output (drv_project()) */
    struct mapq_pages_ref ref; /* a paged list: where its pages are */
    struct page_slot *pages;   /* PAGE_SLOTS of them; NULL: not paged */
    int cur;                   /* the slot of (at, at_off) */
};

/* What waits for pages of a node's paged lists (drv_pages_cover()), to
 * be resumed when they are read. */
enum page_wait {
    PAGE_WAIT_PUSH = 1 << 0, /* drv_window_push() */
    PAGE_WAIT_SCAN = 1 << 1, /* drv_scan_next() */
    PAGE_WAIT_ASM = 1 << 2,  /* drv_assemble_next() */
    PAGE_WAIT_BIND = 1 << 3, /* the node binds: its 'with' lists, whole */
};

/*
 * One node of an execution. The window: n subtasks, next the first not
 * considered yet, inflight those queued or running that hold a slot,
 * finished those in a final phase (counts[] by phase), need the successes
 * the node needs. held: how many of its subtasks agents hold (h:<k>, as
 * last read; the rest of those in flight wait in Redis), for progress
 * only.
 */
struct node_run {
    enum node_state state;
    uint64_t n, next, inflight, finished, need;
    uint64_t counts[MAPQ_PHASE_COUNT];
    int64_t held;
    uint8_t *phases;          /* 4 bits per subtask */
    struct param_src *params; /* sorted by name */
    size_t nparams;
    /* drv_pages.c: the paged lists of its bindings (over first, then
     * with), read whole before it binds; empty for the others */
    struct mapq_buf *loaded;
    size_t load_j;       /* the binding being read */
    uint64_t load_p;     /* its next page */
    msgpack_zone *zone;  /* drv_subtask_inputs(): elements unpack into it */
    unsigned page_wait;  /* enum page_wait: what to resume */
    bool page_reading;   /* a read of pages is in flight */
    uint64_t page_clock; /* stamps page_slot uses */
    char *iface;         /* "a:int,b:str->bool" */
    bool files;          /* a parameter holds files: keys take their content */
    const char *queue;
    const char *cls;
    struct mapq_buf output; /* msgpack, once succeeded; read as bytes
                               by the nodes bound to it */
    uint64_t asm_next;      /* assembly cursor */
    uint64_t asm_ok; /* successes found by the assembly, record by record */
    struct mapq_buf asm_buf; /* the output list; one page of it when paged */
    bool asm_paged;          /* the output goes to P:pg, a page per read */
    struct err_group groups[ERROR_GROUPS_MAX];
    size_t ngroups;
    uint64_t ungrouped; /* failures whose message found no group */
    bool touched;       /* got events since the window was last refilled */
    /* Its pace, for drv_window_flowing(): at the last read of events that
     * had any, finished and the time; the rate they came since the one
     * before (a second; 0 until two reads tell it). */
    uint64_t read_mark;
    int64_t read_ms;
    uint64_t read_rate;
    bool scanning;      /* reconcile: reading where its subtasks stand */
    bool restored;      /* reconcile: succeeded before, output read back */
    uint64_t scan_next; /* reconcile: next index to scan */
    unsigned p_seq;     /* progress writes sent: the last one counts */
};

/*
 * An execution. driver.c creates, frees and changes its state; the
 * in-flight guards (draining, checking) belong to the leaf that sends the
 * call they guard.
 */
struct exec {
    struct mapq_driver *d;
    char id[MAPQ_EXEC_ID_LEN + 1];
    char *evkey;
    struct mapq_workflow *wf;
    struct mapq_buf inputs; /* {name: value}, read as bytes */
    struct node_run *nodes;
    enum exec_state state;
    char error[EXEC_ERROR_LEN];
    struct mapq_buf output;
    long output_of; /* the node whose o:<k> holds output, for the final
                       write to copy in Redis; -1: output is sent */
    mapq_exec_done_fn *done;
    void *arg;
    int calls;        /* requests in flight that point at this exec */
    bool draining;    /* drv_events.c: an LPOP of its events in flight */
    bool checking;    /* drv_own.c: a state check in flight (or retrying) */
    bool counting;    /* drv_record.c: a read of the held counts in flight */
    bool reconcile;   /* once owned, rebuild the view from Redis first */
    bool scan_starts; /* nodes start by scanning: they may have run before */
    unsigned gen;     /* bumped by each reconcile; stale replies ignored */
    bool cancelled;   /* by mapq cancel: the record says so already */
    bool abort_sent;  /* mapq1_abort was sent: a marker may be its own */
    bool marked;      /* ABORTING: its end marker came */
    int64_t abort_by; /* ABORTING: ends as it stands after this (ms) */
    bool redis_error; /* ended: Redis refuses what it needs, or lost it */
    bool ok;          /* how it ended, for a final write sent again */
    bool overwrite;   /* --overwrite-cache: cached nodes skip lookups */
    char recover_from[MAPQ_EXEC_ID_LEN + 1]; /* mapq recover: "" if not */
    TAILQ_ENTRY(exec) entry;
};

TAILQ_HEAD(exec_list, exec);
TAILQ_HEAD(call_list, call);

/*
 * What the leaves report to the controller; driver.c fills the table and
 * each driver points at it. Every function runs on the loop, inside the
 * reply callback of the leaf that reports.
 */
struct drv_ops {
    /* x cannot go on: it ends failed with the message (no-op if ended). */
    void (*fail)(struct exec *x, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
    /* Redis refused for good what x needs (x NULL: every execution of d):
     * they end with msg, and mapq run exits 3. */
    void (*refused)(struct mapq_driver *d, struct exec *x, const char *msg);
    /* A call of an execution is done: d may have become idle. */
    void (*settled)(struct mapq_driver *d);
    /* x is not ours to drive (any more): why goes to its owner. */
    void (*detach)(struct exec *x, const char *why);
    /* Redis no longer has x's record. */
    void (*lost)(struct exec *x);
    /* mapq1_own said x is ours, events under epoch; or (epoch 0) its
     * reply was lost with the connection, to be asked again. */
    void (*owned)(struct exec *x, long long epoch);
    /* The record says x was cancelled (mapq cancel). */
    void (*cancelled)(struct exec *x);
    /* mapq1_abort's reply for x (see the function), or -3 when Redis
     * refused it for good. */
    void (*abort_replied)(struct exec *x, long long result);
    /* The end marker came in x's events: every event before it is
     * applied, and none follows. */
    void (*end_marked)(struct exec *x);
    /* Subtask i of node k ended in phase (one event). */
    void (*event)(struct exec *x, uint64_t k, uint64_t i, int phase);
    /* A batch of events of x is applied: windows may refill. */
    void (*events_done)(struct exec *x);
    /* Whether the next read of events may wait up to EVENT_PACE_MS: no
     * execution owned needs its next events at once (see
     * drv_window_flowing()). Asked after each read that had events. */
    bool (*events_may_wait)(struct mapq_driver *d);
    /* Serving: id was submitted (popped from P:submitted). */
    void (*submitted)(struct mapq_driver *d, const char *id, size_t len);
    /* Serving: an execution loaded from Redis, to be driven (wf and the
     * bytes of inputs taken). */
    void (*load)(struct mapq_driver *d, const char *id,
                 struct mapq_workflow *wf, struct mapq_buf *inputs,
                 const struct mapq_exec_opts *o, bool adopted);
    /* Node k of x knows where its subtasks stand (its scan ended). */
    void (*scanned)(struct exec *x, size_t k);
    /* Every result record of node k of x was read. */
    void (*assembled)(struct exec *x, size_t k);
    /* Pages node k of x waited for are read: what waited (its
     * page_wait) goes on. */
    void (*pages_loaded)(struct exec *x, size_t k);
    /* Node k of x succeeded before, with output (taken): read back by a
     * reconcile, or taken whole from the execution recovered. Returns -1
     * after failing x. */
    int (*restore)(struct exec *x, size_t k, struct mapq_buf *output,
                   bool recovered);
    /* The outputs are read back: nodes may start. */
    void (*read_back)(struct exec *x);
};

struct mapq_driver {
    struct event_base *base;
    char *ns;
    const struct drv_ops *ops; /* the controller's */
    /* Calls refused by Redis (OOM, BUSY, ...), per path (enum path):
     * each cause is logged once, and again when it clears. */
    struct mapq_retry retry[PATH_COUNT];
    struct call_list parked; /* calls waiting to be sent again */
    size_t nrefused;         /* of them, refused by Redis (not unsent) */
    bool stopping;           /* mapq_driver_free() runs */
    int64_t reap_next;       /* no reap before (after a refusal) */
    struct event *wait_ev;   /* the event wait's backoff or pace */
    struct mapq_redis *cmd;
    struct mapq_redis *blk;
    struct exec_list execs;
    enum wait_state wait; /* drv_events.c's, changed by set_wait() */
    int64_t armed_ms;     /* when the last wait was sent */
    bool serving;
    struct event *tick_ev;
    /*
     * The blocking wait covers the lists named in wait_keys ("\n"-joined,
     * with a leading and trailing "\n"). When a list it lacks becomes
     * wanted (a new execution, the end of a drain), one entry pushed onto
     * wake_key, this driver's own list, ends the wait early.
     */
    char *wake_key;
    struct mapq_buf wait_keys;
    bool wake_sent;
    char *owner; /* this driver's name in P:owners */
    int lease_ms;
    int64_t owned_ms, adopted_ms; /* last lease renewal, last adoption */
    bool was_up;                  /* the command connection was up before */
    bool blk_was_up;              /* and the waiting one */
    bool adopt_inflight;
    /* mapq_driver_on_idle(): fn runs from idle_ev once the executions
     * that ended (idle_armed) have nothing in flight any more. */
    void (*idle_fn)(void *);
    void *idle_arg;
    struct event *idle_ev;
    bool idle_armed;
    int64_t retention_ms;         /* mapq_driver_set_retention() */
    const struct mapq_seal *seal; /* mapq_driver_set_seal(); NULL: none */
    long prune_cursor;            /* rank in P:execs the next prune starts at */
    int adopts; /* adoptions asked: every PRUNE_EVERY-th prunes */
    int sweeps; /* mapq1_blob_sweep calls of this prune */
    const struct mapq_driver_observer *obs; /* mapq_driver_observe() */
    void *obs_arg;
};

/*
 * A call that is sent again after a backoff while Redis refuses it with a
 * transient error reply (OOM, BUSY, LOADING, ...). fn gets any other
 * reply, NULL when the connection failed (the reconcile after reconnecting
 * covers the call), or the error reply when drv_refused() gives up. It
 * holds a call of x (x->calls) until fn runs.
 */
struct call {
    struct mapq_driver *d;
    struct exec *x; /* NULL: for the whole driver */
    enum path path;
    struct mapq_redis *conn;
    int timeout_ms;
    bool gen_check; /* dropped when a reconcile of x came between */
    unsigned gen;
    long node;    /* a progress write (p:<node>), or -1 */
    unsigned seq; /* which one of that node's */
    bool refusal; /* parked because Redis refused it (d->nrefused) */
    struct mapq_argv cmd;
    char what[128];
    mapq_redis_reply_fn *fn;
    void *arg;
    struct event *ev;
    TAILQ_ENTRY(call) entry; /* in d->parked while waiting to retry */
};

static inline int64_t
drv_now_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static inline int
phase_get(const struct node_run *nr, uint64_t i)
{
    return (nr->phases[i / 2] >> ((i % 2) * 4)) & 15;
}

static inline void
phase_set(struct node_run *nr, uint64_t i, int phase)
{
    int shift = (int)(i % 2) * 4;

    nr->phases[i / 2] =
        (uint8_t)((nr->phases[i / 2] & ~(15 << shift)) | (phase << shift));
}

static inline bool
phase_done(int phase)
{
    return mapq_record_phase_final(phase);
}

/* True once x has ended, with or without its final write. */
static inline bool
drv_exec_ended(const struct exec *x)
{
    return x->state >= EXEC_ENDED;
}

/* True while x is ours: its events are read, its lease renewed. */
static inline bool
drv_exec_owned(const struct exec *x)
{
    return x->state == EXEC_RECONCILING || x->state == EXEC_DRIVING ||
           x->state == EXEC_ABORTING || x->state == EXEC_FAILING;
}

/* True while x's nodes may start and push: owned and not failing. */
static inline bool
drv_exec_driving(const struct exec *x)
{
    return x->state == EXEC_RECONCILING || x->state == EXEC_DRIVING;
}

static inline const char *
drv_node_state_name(enum node_state s)
{
    static const char *const names[] = {"waiting",   "running", "running",
                                        "succeeded", "failed",  "skipped"};

    return names[s];
}

/* The execution of d with this id, or NULL. */
static inline struct exec *
drv_find_exec(struct mapq_driver *d, const char *id)
{
    struct exec *x;

    TAILQ_FOREACH (x, &d->execs, entry)
        if (strcmp(x->id, id) == 0)
            return x;
    return NULL;
}

/* ---- drv_calls.c: calls Redis may refuse -------------------------------- */

/* Redis refused a call of path p made for x (NULL: for the whole driver)
 * with text: true when it is to be sent again after *delay_ms. */
bool drv_refused(struct mapq_driver *d, struct exec *x, enum path p,
                 const char *what, const char *text, int *delay_ms);
/* A call of path p worked: logs once that a refusal cleared. */
void drv_note_success(struct mapq_driver *d, enum path p, const char *what);
/* Sends cmd (emptied: the call takes its contents) on conn; fn gets arg.
 * x, when not NULL, holds a call until fn runs (fn releases it). Returns
 * the call, for the caller to mark before the loop runs. */
struct call *drv_call_send(struct mapq_driver *d, struct exec *x, enum path p,
                           struct mapq_redis *conn, int timeout_ms,
                           struct mapq_argv *cmd, mapq_redis_reply_fn *fn,
                           void *arg);
/* A call of x on the command connection; fn decrements x->calls. */
struct call *drv_exec_send(struct exec *x, enum path p, struct mapq_argv *cmd,
                           mapq_redis_reply_fn *fn, void *arg);
/* Parked calls are dropped: fn runs with NULL. Before freeing the
 * executions they point at. */
void drv_calls_drop(struct mapq_driver *d);

/* ---- drv_record.c: the execution's record ------------------------------ */

/* A new random execution id. */
void drv_new_id(char id[MAPQ_EXEC_ID_LEN + 1]);
/* Writes field of x's record (mapq1_record: only while this driver owns
 * x); sent again until Redis takes it. */
void drv_record_hset(struct exec *x, const char *field, const char *value,
                     size_t len);
/* Writes field of x's pages (P:pg:<exec>); sent again until Redis takes
 * it. Sent after the pages before it on the same connection. */
void drv_record_page(struct exec *x, const char *field, const char *value,
                     size_t len);
/* Writes p:<k>, the progress of node k. */
void drv_record_node_progress(struct exec *x, size_t k);
/* Writes the progress of every node whose progress this driver knows. */
void drv_record_progress(struct exec *x);
/* Reads the held counts of x's nodes (their h:<k>) into their held, one
 * read at a time; for progress, so a failure only leaves them as they
 * were. */
void drv_record_read_held(struct exec *x);
/* Node k's counts by phase into counts (MAPQ_PHASE_COUNT): the ended
 * phases it knows, RUNNING and QUEUED split by its held count. */
void drv_node_counts(const struct node_run *nr, uint64_t *counts);
/* The final write of x (mapq1_finish) into cmd (initialised). */
void drv_record_finish_cmd(const struct exec *x, struct mapq_argv *cmd);

/* ---- drv_bind.c: node inputs and subtask keys -------------------------- */

/* The msgpack bytes of the value a binding refers to, borrowed from the
 * workflow, x's inputs or a node's output (the whole output: see
 * drv_project() for $NODE.MEMBER); false when it has none. */
bool drv_resolve(const struct exec *x, const struct mapq_binding *b,
                 const char **v, size_t *vlen);
/* Appends to out the member of the value (v, vlen): of a map (a record),
 * its value, null when absent; of a list (a map node's output), the list
 * of each element's member, a null element giving null. -1 with why
 * (whylen bytes) when v is malformed. */
int drv_project(const char *v, size_t vlen, const char *member,
                struct mapq_buf *out, char *why, size_t whylen);
/* Resolves and checks the inputs of node k; sets its n. Returns -1 with
 * why (EXEC_ERROR_LEN bytes). */
int drv_bind_node(struct exec *x, size_t k, char *why);
/* Appends the canonical inputs map of subtask i to out; moves the
 * parameters' list cursors to i. */
void drv_subtask_inputs(struct node_run *nr, uint64_t i, struct mapq_buf *out);
/* The key of subtask i of node k, in execution exec_id. */
void drv_subtask_key_in(const struct exec *x, const char *exec_id, size_t k,
                        uint64_t i, const char *in, size_t inlen,
                        unsigned char key[MAPQ_KEY_LEN]);
/* The key of subtask i of node k in this execution. */
void drv_subtask_key(const struct exec *x, size_t k, uint64_t i, const char *in,
                     size_t inlen, unsigned char key[MAPQ_KEY_LEN]);

/* ---- drv_errors.c: errors of failed subtasks --------------------------- */

/* Packs the value of subtask i (nil when it failed, noting its error). */
void drv_take_record(struct node_run *nr, uint64_t i, const redisReply *rec,
                     msgpack_packer *pk);
/* Writes "0-3,7: msg; 5: other" into out. */
void drv_summarize_errors(const struct node_run *nr, struct mapq_buf *out);

/* ---- drv_window.c: the sliding window of a node ------------------------ */

/* The window of a node: concurrency, or UNLIMITED_WINDOW when unset. */
uint64_t drv_window_limit(int64_t concurrency);
/* The successes a node of n subtasks needs. */
uint64_t drv_window_need(int64_t min_successes, double min_success_ratio,
                         uint64_t n);
/* Takes up to max pending subtasks below end into the window (QUEUED, in
 * flight) while it has room; their indices go to idx. Returns how many. */
size_t drv_window_take(struct node_run *nr, uint64_t limit, uint64_t end,
                       uint64_t *idx, size_t max);
/* Subtask i ended in phase: returns false when it had already. */
bool drv_window_apply(struct node_run *nr, uint64_t i, int phase);
/* True when the threshold is out of reach (nothing runs to no purpose). */
bool drv_window_hopeless(const struct node_run *nr, bool run_all);
/* True when a running node's next events may wait EVENT_PACE_MS: every
 * subtask of it is pushed (no slot waits for a push), and at the rate its
 * events came, what is in flight takes longer than two paces (its end is
 * not near). */
bool drv_window_flowing(const struct node_run *nr);
/* Notes a read of events that finished some of nr's subtasks, at now_ms,
 * for drv_window_flowing(). */
void drv_window_read(struct node_run *nr, int64_t now_ms);
/* Every subtask not finished is ABORTED; the node is finished. */
void drv_window_abort(struct node_run *nr);
/* Sends the next subtasks of node k while its window has room. */
void drv_window_push(struct exec *x, size_t k);

/* ---- drv_events.c: reading events -------------------------------------- */

/* Waits on the event lists of the executions owned (and P:submitted when
 * serving), or wakes the wait in flight that lacks one; while paced, only
 * for a list the last wait lacked (else the pace sends it). */
void drv_events_wait(struct mapq_driver *d);
/* The waiting connection is down: its wait is over. */
void drv_events_lost(struct mapq_driver *d);
/* The wait's timer (d->wait_ev: a backoff or the pace) fired. */
void drv_events_again_cb(evutil_socket_t fd, short what, void *arg);

/* ---- drv_assemble.c: outputs in input order ---------------------------- */

/* Starts reading node k's result records, in input order, into its
 * output (assembled reported at the end). */
void drv_assemble_start(struct exec *x, size_t k);
/* Reads the next result records of node k (assembled reported at the end). */
void drv_assemble_next(struct exec *x, size_t k);
/* The output of node k once read: 0, or -1 with why in err
 * (EXEC_ERROR_LEN bytes). out is the caller's to release. */
int drv_assemble_output(struct exec *x, size_t k, struct mapq_buf *out,
                        char *err);
/* The workflow's output, from its nodes' outputs, into x->output: 0, or
 * -1 with why (EXEC_ERROR_LEN bytes) when a member cannot be taken. */
int drv_assemble_workflow(struct exec *x, char *why);

/* ---- drv_pages.c: paged lists a node binds ----------------------------- */

/* True when a 'with' binding of node k refers to a paged list. */
bool drv_pages_wanted(const struct exec *x, size_t k);
/* Reads the paged lists node k binds with 'with', whole, into its
 * loaded[] (then pages_loaded reported, PAGE_WAIT_BIND). */
void drv_pages_load(struct exec *x, size_t k);
/* True when node k's paged 'over' lists hold the pages of elements
 * [from, end) (at most 2 * MAPQ_PAGE_LEN of them); else false: those
 * pages are asked for (a few more ahead), and what (enum page_wait) is
 * resumed once they are read. */
bool drv_pages_cover(struct exec *x, size_t k, uint64_t from, uint64_t end,
                     unsigned what);
/* Element i of the paged list of ps (covered): the page's elements and
 * the element's offset there. */
void drv_pages_element(struct param_src *ps, uint64_t i, const char **data,
                       size_t *len, size_t *off);
/* Frees ps's pages. */
void drv_pages_release(struct param_src *ps);

/* ---- drv_reconcile.c: rebuilding the view from Redis ------------------- */

/* Reads x's record back (restore, then read_back reported). */
void drv_reconcile_read(struct exec *x);
/* Reads the execution x recovers (restore, then read_back reported). */
void drv_recover_read(struct exec *x);
/* Asks where the next BATCH subtasks of node k stand (scanned reported). */
void drv_scan_next(struct exec *x, size_t k);

/* ---- driver.c: the controller, for drv_end.c --------------------------- */

/* The one place an execution's state changes (drv_exec_legal[][]). */
void drv_exec_set_state(struct exec *x, enum exec_state to);
/* Every subtask of node k not finished is ABORTED (told the observer). */
void drv_node_abort(struct exec *x, size_t k);
/* Node k reads its records if every subtask of it finished. */
void drv_node_maybe_finish(struct exec *x, size_t k);

/* ---- drv_end.c: how an execution ends (the controller too) ------------- */

/* Ends x (ENDED): its progress and final write sent, its owner told. */
void drv_end(struct exec *x, bool ok);
/* The final write (mapq1_finish), first or again after a lost reply. */
void drv_end_send_finish(struct exec *x);
/* Stops driving x without writing anything: another driver owns it, or
 * it ended elsewhere. why goes to the owner of this driver. */
void drv_end_detach(struct exec *x, const char *why);
/* Fails x with the message (the first one stays); owned, through
 * mapq1_abort and the end marker. No-op once ended. */
void drv_end_fail(struct exec *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Ends x because Redis refuses what it needs; mapq run exits 3. */
void drv_end_fail_redis(struct exec *x, const char *msg);
/* Lets go of x, whose record Redis lost: mapq run exits 3 saying so. */
void drv_end_lost(struct exec *x);
/* Starts failing x, owned and driving: mapq1_abort (ABORTING). */
void drv_end_abort(struct exec *x);
/* FAILING: ends x once no node reads its errors any more. */
void drv_end_maybe(struct exec *x);
/* ABORTING: once past the end marker and any scan, every count is final
 * (FAILING). */
void drv_end_counted(struct exec *x);
/* ops->cancelled, ops->abort_replied, ops->end_marked. */
void drv_end_cancelled(struct exec *x);
void drv_end_abort_replied(struct exec *x, long long result);
void drv_end_marked(struct exec *x);
/* From the tick: an abort whose marker is overdue ends with its counts. */
void drv_end_tick(struct exec *x, int64_t now);

/* ---- drv_own.c: ownership, leases, state checks, cancel ---------------- */

/* Asks mapq1_own for x (owned reported). */
void drv_own_send(struct exec *x);
/* Renews the leases of the executions owned, in one call. */
void drv_own_renew(struct mapq_driver *d);
/* Notices x cancelled (mapq cancel) or ended elsewhere. */
void drv_own_check(struct exec *x);
/* Sends mapq1_abort for x with its error (abort_replied reported). */
void drv_own_abort(struct exec *x);

/* ---- drv_serve.c: service mode ----------------------------------------- */

/* Loads execution id (popped from P:submitted) to drive it. */
void drv_serve_one(struct mapq_driver *d, const char *id, size_t len);
/* Takes over executions whose driver stopped renewing its lease. */
void drv_serve_adopt(struct mapq_driver *d);
/* The done callback of executions a serving driver drives. */
void drv_serve_done(const struct mapq_exec_outcome *o, void *arg);

#endif
