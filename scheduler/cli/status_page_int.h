/*
 * status_page_int.h - what the files of the status page share: the
 * snapshot of Redis it serves, the state of the reads of each execution's
 * failures, and the pure functions of status_snap.c that fill them from
 * Redis replies and write them as JSON. mapq_status_page.c (the
 * controller) owns the timer and the reads. No other module includes this.
 */
#ifndef MAPQ_STATUS_PAGE_INT_H
#define MAPQ_STATUS_PAGE_INT_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_proto.h"

#define ST_PROBLEMS_MAX    4    /* problems noted per execution */
#define ST_GROUPS_MAX      20   /* error groups per execution */
#define ST_EXAMPLES_MAX    5    /* example subtasks per group */
#define ST_GROUP_NODES_MAX 8    /* nodes named per group */
#define ST_TEXT_MAX        4096 /* bytes kept of a text read from Redis */
#define ST_NAME_MAX        256  /* bytes kept of a name */
#define ST_RECORD_FIELDS   6    /* state name created finished nodes error */
#define ST_AGENT_FIELDS    7    /* host slots running queues intr cpus mem */
/* An attempt may still be logged a little after its execution ended: an
 * agent finishing it before it learns of the end (a renewal, every
 * second), or a lease reaped (30 s by default). */
#define ST_SETTLE_MS 60000

/* One node of an execution: node:<k> and p:<k> of its record. */
struct st_node {
    char *name;  /* NULL: node:<k> is missing */
    char *state; /* "waiting" while p:<k> is absent */
    uint64_t total;
    uint64_t counts[MAPQ_PHASE_COUNT];
    const char *problem; /* static: what could not be read; NULL */
};

/* One execution of P:execs and its record P:x:<exec>. Strings NULL when
 * absent; times -1. */
struct st_exec {
    char *id;
    bool foreign;   /* id is no execution id: nothing else was read */
    char *workflow; /* the record's name */
    char *status;   /* its state; NULL: no record */
    char *error;
    int64_t created_ms, finished_ms;
    uint64_t nodes_declared; /* the record's nodes */
    struct st_node *nodes;   /* the first nnodes of them */
    size_t nnodes;
    const char *problems[ST_PROBLEMS_MAX]; /* static texts */
    size_t nproblems;
};

/* One live agent: P:agents and P:agent:<name>. */
struct st_agent {
    char *name, *host, *queues; /* queues comma separated */
    int64_t slots, running, mem_bytes, cpus_milli;
    int64_t age_ms; /* since its last heartbeat */
    bool interruptible;
};

/* What one refresh read. Owns everything it points to. */
struct st_snapshot {
    int64_t redis_ms; /* Redis's clock when it was read */
    struct st_exec *execs;
    size_t nexecs;
    struct st_agent *agents;
    size_t nagents;
};

/* A subtask given as an example of an error. */
struct st_example {
    uint32_t k;
    uint64_t index;
};

/* The failed subtasks sharing one error message. */
struct st_group {
    char *error;
    uint64_t count;
    struct st_example ex[ST_EXAMPLES_MAX];
    size_t nex;
    uint32_t nodes[ST_GROUP_NODES_MAX];
    size_t nnodes;
};

/* Failures found in attempt logs, grouped by error. */
struct st_fails {
    struct st_group *groups;
    size_t ngroups;
    uint64_t ungrouped;  /* failures past ST_GROUPS_MAX groups */
    uint64_t logs;       /* subtask logs read */
    uint64_t unreadable; /* logs that could not be read */
};

/*
 * The reading of one execution's failures from its attempt logs
 * (P:log:<exec>), a few HSCANs at a time: pass is the pass in progress,
 * shown the last complete one. A pass that started once the execution had
 * ended sees its final logs: after it, the execution is read no more.
 */
struct st_scan {
    char *id;
    char cursor[32]; /* "0": the next read starts a pass */
    struct st_fails pass, shown;
    bool have_shown;
    bool pass_after_end;
    bool frozen;
    const char *problem; /* static: why the last read failed; NULL */
    uint64_t last_read;  /* the refresh that read it last */
};

/* What the scheduler says of itself. */
struct st_self {
    const char *ns;
    int64_t started_ms, now_ms; /* wall clock */
    int64_t refreshed_ms;       /* when the snapshot was read; -1: never */
    size_t driving;
    const char *redis_error; /* why the last refresh failed; NULL */
};

/* ---- status_snap.c: pure, no I/O --------------------------------------- */

void st_snapshot_release(struct st_snapshot *s);
void st_fails_release(struct st_fails *f);
void st_scan_free(struct st_scan *sc);

/* Whether an execution's state is final (succeeded, failed, cancelled). */
bool st_exec_ended(const struct st_exec *x);
/* Whether x's nodes count failed or timed out subtasks. */
bool st_exec_failures(const struct st_exec *x);

/* Redis's TIME reply in ms; -1 when it is not one. */
int64_t st_read_time(const redisReply *r);

/* The executions of a ZREVRANGE P:execs ... WITHSCORES reply, at most
 * max; false when r is not such a reply. */
bool st_read_execs(struct st_snapshot *s, const redisReply *r, size_t max);

/* x's record from the HMGET of its ST_RECORD_FIELDS; false when r is not
 * such a reply (x marked). */
bool st_read_record(struct st_exec *x, const redisReply *r);

/* How many nodes of x to read: node:<k> and p:<k> for k below it. */
size_t st_nodes_to_read(const struct st_exec *x, size_t max);

/* x's nodes from the HMGET of node:<k> p:<k> for k below n. */
void st_read_nodes(struct st_exec *x, const redisReply *r, size_t n);

/* The live agents (a heartbeat at most live_ms before s->redis_ms) of a
 * ZREVRANGE P:agents ... WITHSCORES reply, at most max; false when r is
 * not such a reply, or s->redis_ms is not known. */
bool st_read_agents(struct st_snapshot *s, const redisReply *r, int64_t live_ms,
                    size_t max);

/* a's entry from the HMGET of its ST_AGENT_FIELDS; false when it has none
 * (the agent stopped meanwhile). */
bool st_read_agent(struct st_agent *a, const redisReply *r);

/* Drops the agents whose entry was not read (st_read_agent() false). */
void st_agents_compact(struct st_snapshot *s);

/* Whether x ended over ST_SETTLE_MS before now_ms (Redis's clock): its
 * attempt logs are final. */
bool st_exec_settled(const struct st_exec *x, int64_t now_ms);

/*
 * Takes an HSCAN reply of sc's attempt logs: groups the subtasks whose
 * last attempt failed for good, moves the cursor, and ends the pass when
 * it is back to "0". settled: the execution's logs are final
 * (st_exec_settled()). False when r is not such a reply (the pass starts
 * again).
 */
bool st_read_scan(struct st_scan *sc, const redisReply *r, bool settled);

/* Adds a failed subtask (node k, index) with message msg (len bytes). */
void st_fails_add(struct st_fails *f, uint32_t k, uint64_t index,
                  const char *msg, size_t len);

/*
 * Writes the document of GET /api/status to out: self, the snapshot s
 * (NULL: none read yet) and the failures of its executions from scans
 * (nscans of them, borrowed).
 */
void st_render(const struct st_self *self, const struct st_snapshot *s,
               struct st_scan *const *scans, size_t nscans,
               struct mapq_buf *out);

#endif
