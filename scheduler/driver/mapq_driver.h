/*
 * mapq_driver.h - creating executions in Redis and driving them to the end
 * (SPEC section 3). The code is in scheduler/driver/: driver.c, the
 * controller, and one file per concept.
 *
 * mapq_exec_create() writes an execution record with a blocking connection
 * (used by `mapq run` and `mapq submit`). A driver then runs executions on a
 * libevent loop: it starts each node when what it references is done,
 * pushes its subtasks through a sliding window of `concurrency`, follows
 * their events, and assembles outputs in input order. Subtask state is a
 * 4-bit phase per subtask; inputs are rebuilt from the node's input lists
 * when needed rather than kept.
 *
 * A driver drives an execution only while it owns it: a lease in P:owners
 * that it renews every second. When a driver dies, a `mapq scheduler`
 * adopts its executions once the lease expires, and rebuilds its view of
 * each from Redis (reconcile); a driver that loses its Redis connection
 * does the same after reconnecting.
 *
 * A call Redis refuses with an error reply is sent again after a capped,
 * jittered backoff (mapq_retry), each cause logged once per kind of call
 * and once when it clears. A permanent cause (NOPERM, NOAUTH, ...) ends
 * the executions of a driver that does not serve (mapq run) with
 * redis_error set and one message naming the command and what the Redis
 * user lacks; a serving driver (mapq scheduler) keeps trying at the cap.
 */
#ifndef MAPQ_DRIVER_H
#define MAPQ_DRIVER_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_err.h"
#include "mapq_proto.h"
#include "mapq_redis.h"
#include "mapq_workflow.h"

/* How long an ended execution stays in Redis (its record, results, logs
 * and pages), unless its workflow or the driver (--retention) says. */
#define MAPQ_RETENTION_DEFAULT_MS (3LL * 24 * 3600 * 1000)

/* Default owner lease: how long an execution waits for its driver. */
#define MAPQ_OWNER_LEASE_MS 10000

/* Executions sharing a queue take its free slots in turns, priority
 * turns each for as many of another's MAPQ_PRIORITY_DEFAULT. */
#define MAPQ_PRIORITY_DEFAULT 10
#define MAPQ_PRIORITY_MAX     100

/* How an execution runs, beyond its workflow and inputs. */
struct mapq_exec_opts {
    int lease_ms;         /* owner lease; 0: MAPQ_OWNER_LEASE_MS */
    bool overwrite_cache; /* --overwrite-cache: run all, replace entries */
    int priority; /* its weight on shared queues, 1 to MAPQ_PRIORITY_MAX;
                     0: MAPQ_PRIORITY_DEFAULT */
    const char
        *recover_from; /* mapq recover: the execution to reuse, or NULL */
    struct mapq_spool *pages; /* the pages of its inputs' paged lists
                                 (mapq_workflow_bind_inputs_paged()), or
                                 NULL */
    int64_t created_ms;       /* mapq_exec_create(): the creation time recorded
                                 (ms since the epoch); 0: now */
    const struct mapq_seal *seal;   /* signs its task specs (borrowed); NULL:
                                       unsigned */
    const struct mapq_store *store; /* where its tasks' output files go
                                       (borrowed); NULL: the embedded
                                       store */
    const struct mapq_buf *blobs;   /* the raw SHA-256 of the embedded
                                       store's blobs its inputs name
                                       (field blobs, what mapq recover
                                       holds again; borrowed); NULL: none */
};

/* A new random execution id, for mapq_exec_create(). */
void mapq_exec_new_id(char id[MAPQ_EXEC_ID_LEN + 1]);

/*
 * Creates execution records for wf with its bound inputs (msgpack map):
 * the pages of its inputs' paged lists first (o->pages, into P:pg:<id>),
 * then the record P:x:<id> holding the workflow text, the inputs, a task
 * spec per node and the options o (borrowed, may be NULL), and an entry in
 * P:owners due at the lease's end, so that a scheduler adopts the execution
 * should nobody start driving it. id is the id to create when it is not
 * empty (the one the inputs' references name), else a new one is written
 * into it. MAPQ_EREDIS with err on failure (pages written are deleted).
 */
enum mapq_err mapq_exec_create(redisContext *c, const char *ns,
                               const struct mapq_workflow *wf, const char *text,
                               size_t textlen, const struct mapq_buf *inputs,
                               const struct mapq_exec_opts *o,
                               char id[MAPQ_EXEC_ID_LEN + 1], char *err);

/* Per-node progress, for progress bars and --json summaries. */
struct mapq_node_progress {
    const char *name;
    const char *state; /* waiting, running, succeeded, failed, skipped */
    uint64_t total;
    /* Subtasks by phase; they add up to total. RUNNING: held by agents
     * (running, or prefetched to start on a slot), as Redis counted them
     * at the driver's last read; QUEUED: the rest of those not ended. */
    uint64_t counts[MAPQ_PHASE_COUNT];
};

struct mapq_exec_outcome {
    const char *id;
    bool succeeded;
    bool cancelled;    /* by mapq cancel (then not succeeded) */
    bool detached;     /* another scheduler drives it now; error says why */
    bool redis_error;  /* it ended because of Redis, not of its workflow:
                          Redis refuses for good what it needs (NOPERM,
                          ...), or no longer has it; error says which */
    const char *error; /* when failed: "node 'x': ..." */
    const struct mapq_buf *output; /* msgpack; when succeeded */
};

struct mapq_driver;
struct mapq_seal;
struct mapq_store;

/* Called once when an execution ends; outcome is borrowed for the call. */
typedef void mapq_exec_done_fn(const struct mapq_exec_outcome *outcome,
                               void *arg);

/*
 * Creates a driver on base with its own Redis connections. lease_ms is its
 * owner lease: how long its executions wait, should it die, before a
 * scheduler adopts them.
 */
struct mapq_driver *mapq_driver_new(struct event_base *base,
                                    const struct mapq_redis_url *url,
                                    const char *ns, int lease_ms);

/* How long the executions d ends stay in Redis when their workflow sets no
 * retention; MAPQ_RETENTION_DEFAULT_MS unless set. */
void mapq_driver_set_retention(struct mapq_driver *d, int64_t ms);

/* Signs every subtask body d pushes with seal (borrowed: it outlives d);
 * NULL: unsigned (the default). */
void mapq_driver_set_seal(struct mapq_driver *d, const struct mapq_seal *seal);

/* Fails pending work and frees; NULL-safe. Call outside callbacks. */
void mapq_driver_free(struct mapq_driver *d);

/*
 * Starts driving execution id of workflow wf (takes ownership) with inputs
 * (a msgpack map: its bytes are taken, inputs is left empty) and the
 * options it was created with (o borrowed, may be NULL). done runs when it
 * ends.
 */
void mapq_driver_add(struct mapq_driver *d, const char *id,
                     struct mapq_workflow *wf, struct mapq_buf *inputs,
                     const struct mapq_exec_opts *o, mapq_exec_done_fn *done,
                     void *arg);

/*
 * Service mode: also take executions submitted with `mapq submit` from the
 * P:submitted list, and adopt executions whose driver's lease expired, and
 * drive them until the loop ends.
 */
void mapq_driver_serve(struct mapq_driver *d);

/* Called once with the outcome of mapq_driver_cancel(): true when the
 * execution is cancelled (or had already ended). */
typedef void mapq_cancel_done_fn(bool ok, const char *why, void *arg);

/*
 * Cancels execution id (mapq1_cancel) on the driver's connection, without
 * blocking: queued subtasks are dropped, agents kill running ones. done
 * runs when Redis answered, or the request failed (why says how).
 */
void mapq_driver_cancel(struct mapq_driver *d, const char *id,
                        mapq_cancel_done_fn *done, void *arg);

/*
 * What a driver tells an observer (metrics): count subtasks of node (of
 * queue) reached final phase; an execution it drove ended (outcome
 * borrowed for the call); a sweep reclaimed blobs of the embedded store
 * (how many, their bytes). All run on the loop and must not block.
 */
struct mapq_driver_observer {
    void (*subtasks)(const char *node, const char *queue, int phase,
                     uint64_t count, void *arg);
    void (*ended)(const struct mapq_exec_outcome *outcome, void *arg);
    void (*reclaimed)(uint64_t blobs, uint64_t bytes, void *arg);
};

/* Sets d's observer (borrowed; NULL: none) and its arg. */
void mapq_driver_observe(struct mapq_driver *d,
                         const struct mapq_driver_observer *obs, void *arg);

/* d's command connection (borrowed), for an observer that times it. */
struct mapq_redis *mapq_driver_redis(struct mapq_driver *d);

/* The executions d drives now. */
size_t mapq_driver_count(const struct mapq_driver *d);

/* The queues of the nodes of the executions d drives now, each once, into
 * out (borrowed from d: valid until the loop turns); returns how many, at
 * most max. */
size_t mapq_driver_queues(const struct mapq_driver *d, const char **out,
                          size_t max);

/* True when no request of an ended execution is still in flight: the
 * records are written and the loop may stop. */
bool mapq_driver_idle(const struct mapq_driver *d);

/*
 * Calls fn(arg) on d's loop once the executions that ended (or were let
 * go) have nothing in flight any more: their records are written, and
 * mapq_driver_idle() is true. It runs once per such moment: again only
 * after another execution ends. fn runs from an event of its own, never
 * inside a reply callback, so it may stop the loop (free the driver after
 * the loop returns). Registered after an end it runs as soon as the driver
 * is idle. Replaces any earlier fn; NULL removes it. While Redis refuses a
 * final write (mapq_driver_refused()) it waits for Redis to take it.
 */
void mapq_driver_on_idle(struct mapq_driver *d, void (*fn)(void *), void *arg);

/* True while a call Redis refused (OOM, BUSY, ...) waits to be sent
 * again: the loop must go on for the records to be written. */
bool mapq_driver_refused(const struct mapq_driver *d);

/* Fills up to max entries for execution id (out may be NULL when max is
 * 0); returns the node count. Reads nothing: the held counts behind
 * RUNNING are read on the driver's tick, every 500 ms. */
size_t mapq_driver_progress(struct mapq_driver *d, const char *id,
                            struct mapq_node_progress *out, size_t max);

#endif
