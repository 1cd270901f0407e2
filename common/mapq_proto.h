/*
 * mapq_proto.h - names and encodings shared by the scheduler and the agent:
 * subtask phases, refs, the namespace and the task spec message (the key
 * names are mapq_keys.h's).
 *
 * docs/PROTOCOL.md is the reference for all of these; keep them in step.
 */
#ifndef MAPQ_PROTO_H
#define MAPQ_PROTO_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_err.h"

/* Subtask phases, as stored in result records and events. */
enum mapq_phase {
    MAPQ_PHASE_QUEUED = 0,
    MAPQ_PHASE_RUNNING = 1,
    MAPQ_PHASE_RETRYING = 2,
    MAPQ_PHASE_SUCCEEDED = 3,
    MAPQ_PHASE_CACHED = 4,
    MAPQ_PHASE_RECOVERED = 5,
    MAPQ_PHASE_FAILED = 6,
    MAPQ_PHASE_TIMED_OUT = 7,
    MAPQ_PHASE_ABORTED = 8,
};
#define MAPQ_PHASE_COUNT 9

/* "SUCCEEDED", ...; "UNKNOWN" out of range. */
const char *mapq_phase_name(int phase);

/*
 * Splits the subtasks of a node that have not ended between RUNNING and
 * QUEUED, in counts (by phase, MAPQ_PHASE_COUNT of them, for a node of
 * total subtasks): the ended phases (SUCCEEDED to ABORTED) and RETRYING
 * are kept; RUNNING becomes held, the number of its subtasks that agents
 * hold (field h:<k> of the execution record), and QUEUED the rest, so
 * that the counts add up to total. held may be stale or below 0 (leases
 * taken before Redis counted them): RUNNING is held clamped to 0 and to
 * what has not ended.
 */
void mapq_phase_split(uint64_t *counts, uint64_t total, int64_t held);

/* Upper bound on one ref's length. */
#define MAPQ_REF_MAX 256

/* A parsed ref: <exec>/<k>/<index>/<u>/<s>/<i>/<queue>/<cls>. */
struct mapq_ref {
    char exec[64];
    uint32_t k;     /* node number */
    uint64_t index; /* element index */
    uint32_t u;     /* user failures so far */
    uint32_t s;     /* system failures so far */
    uint32_t i;     /* interruptions so far */
    char queue[64];
    char cls[3]; /* nc, np, ic, ip */
};

/*
 * Parses a ref of len bytes (borrowed) into ref. MAPQ_EPROTO when malformed:
 * exec must be MAPQ_EXEC_ID_LEN lowercase hex digits, counters decimal
 * digits without sign or leading zero, cls one of nc, np, ic, ip, and
 * nothing may follow cls; so formatting an accepted ref gives back len
 * bytes equal to s.
 */
enum mapq_err mapq_ref_parse(const char *s, size_t len, struct mapq_ref *ref);

/* Attempt number of the attempt a ref names (1-based). */
uint32_t mapq_ref_attempt(const struct mapq_ref *ref);

/* Default namespace: every key starts with "<ns>:". */
#define MAPQ_NAMESPACE_DEFAULT "mapq"

/* An agent whose last heartbeat is older than this is not live: three
 * heartbeats of an idle agent (every 5 s). */
#define MAPQ_AGENT_LIVE_MS 15000

/* Length of execution ids (hex digits). */
#define MAPQ_EXEC_ID_LEN 12

/* The queue class of a node's subtasks. */
const char *mapq_queue_class(bool interruptible, bool plugin);

#endif
