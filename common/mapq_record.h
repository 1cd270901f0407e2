/*
 * mapq_record.h - reading the msgpack records that mapq keeps in Redis:
 * claim replies, subtask bodies, result records, attempt records and
 * event entries (docs/PROTOCOL.md).
 *
 * Pure functions: bytes or an unpacked msgpack object in, plain fields
 * out; no I/O, no logging. Every reader of these records in the scheduler
 * and the agent goes through here, so that the fuzz target
 * (tests/fuzz/fuzz_records.c) exercises the code that runs. Anything may be
 * in Redis (a foreign client, a corrupt write): a field of the wrong type
 * reads as absent, never as garbage.
 */
#ifndef MAPQ_RECORD_H
#define MAPQ_RECORD_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_err.h"

/* ---- claim replies ------------------------------------------------------ */

/* One entry of a mapq1_claim reply; the objects are borrowed from it. */
struct mapq_claimed {
    const msgpack_object *ref;  /* str */
    const msgpack_object *body; /* str: a subtask body */
    const msgpack_object *ckpt; /* str, or anything else: none */
};

/* What mapq_record_claim_next() found at the cursor. */
enum mapq_claim_entry {
    MAPQ_CLAIM_END,     /* no entry left */
    MAPQ_CLAIM_SUBTASK, /* a ref and its body, in out */
    MAPQ_CLAIM_FOREIGN, /* a message that is no ref: out->ref holds it */
    MAPQ_CLAIM_BAD,     /* an entry of the wrong shape: skip it */
};

/*
 * Reads the entry at *pos (start at 0) of reply, a claim reply's array of
 * [ref, body, checkpoint] triples (borrowed), and moves *pos past it.
 * A reply that is not an array has no entries.
 */
enum mapq_claim_entry mapq_record_claim_next(const msgpack_object *reply,
                                             uint32_t *pos,
                                             struct mapq_claimed *out);

/* ---- subtask bodies ----------------------------------------------------- */

/* A subtask body's fields, borrowed from the body's object. */
struct mapq_body {
    const msgpack_object *inputs; /* map: input name -> value */
    const char *key;              /* the subtask key: where its result goes */
    size_t keylen;
};

/*
 * Reads the body o (borrowed). MAPQ_EPROTO with err set when it lacks its
 * inputs map or its key (bin).
 */
enum mapq_err mapq_record_body(const msgpack_object *o, struct mapq_body *out,
                               char *err);

/* ---- result records ----------------------------------------------------- */

/* A result record's fields, borrowed from its object. */
struct mapq_result {
    int phase;                   /* -1 when absent or out of range */
    bool ok;                     /* a success phase with a value */
    const msgpack_object *value; /* the output, when ok */
    const char *error;           /* one-line error, or NULL */
    size_t error_len;
    const char *log; /* the failed attempt's stderr tail, or NULL */
    size_t log_len;
    int64_t attempt; /* of the failure; 0 when absent */
};

/* Reads the result record o (borrowed); anything is accepted. */
void mapq_record_result(const msgpack_object *o, struct mapq_result *out);

/* Whether phase is a success: SUCCEEDED, CACHED or RECOVERED. */
bool mapq_record_phase_ok(int phase);

/* The last non-empty line of a stderr tail s (len bytes, borrowed): *p
 * into s, *n bytes; how error groups quote a failure's output. */
void mapq_record_last_line(const char *s, size_t len, const char **p,
                           size_t *n);

/* Whether phase is final: a result is recorded (SUCCEEDED..ABORTED). */
bool mapq_record_phase_final(int phase);

/* ---- attempt records ---------------------------------------------------- */

/* An attempt record's fields; the strs are borrowed from its object. */
struct mapq_attempt {
    int64_t number;      /* 1-based; 0 when absent */
    int64_t started;     /* ms since the epoch; -1 when absent */
    int64_t duration;    /* ms; -1 when absent */
    int64_t exit_status; /* -1 when absent */
    int64_t signal;      /* 0 when absent */
    int64_t phase;       /* -1 when absent */
    const msgpack_object *agent, *error, *tail; /* str, or NULL */
    char kind; /* T, U, S, I or L; T when absent */
};

/* Reads the attempt record o (borrowed); anything is accepted. */
void mapq_record_attempt(const msgpack_object *o, struct mapq_attempt *out);

/*
 * Log pages. The record of a first attempt that succeeded, when small, is
 * kept in a page of P:log:<exec>: field "<k>/p<index / MAPQ_LOG_PAGE>"
 * holds the records of node k's elements of that range, one after another
 * as they ended, each with its element index (key i). Every other attempt
 * is under the subtask's own field "<k>/<index>" (docs/PROTOCOL.md).
 */
#define MAPQ_LOG_PAGE 16
/* Room for "<k>/p<page>" or "<k>/<index>" with its NUL. */
#define MAPQ_LOG_FIELD_LEN 48

/* Writes the page field of element index of node k into buf
 * (MAPQ_LOG_FIELD_LEN bytes); returns its length. */
size_t mapq_record_page_field(char *buf, uint32_t k, uint64_t index);

/* Whether field (len bytes, borrowed) names a page: "<digits>/p<digit>...". */
bool mapq_record_is_page_field(const char *field, size_t len);

/*
 * Walks the page data (len bytes, borrowed) from *off (start at 0): the
 * next record that has an element index, its index in *index and its bytes
 * in [*p, *p + *n) (into data). False at the end (*off is len) or where
 * the rest cannot be read (*off is where it starts, before len).
 */
bool mapq_record_page_next(const char *data, size_t len, size_t *off,
                           uint64_t *index, const char **p, size_t *n);

/* Appends to out the records of element index found in the page data
 * (len bytes, borrowed), in their order. */
void mapq_record_page_take(const char *data, size_t len, uint64_t index,
                           struct mapq_buf *out);

/* ---- events ------------------------------------------------------------- */

/* One subtask's end, from an event entry. */
struct mapq_event {
    uint64_t node;  /* < the nnodes given */
    uint64_t index; /* the element index, unchecked */
    int phase;      /* a final phase */
};

typedef void mapq_record_event_fn(const struct mapq_event *ev, void *arg);

/* The end marker (the msgpack string "end"): what mapq1_abort and
 * mapq1_cancel queue after the last event its driver counts. */
#define MAPQ_EVENT_END     "\243end"
#define MAPQ_EVENT_END_LEN 4

/* True when the event entry (len bytes, borrowed) is the end marker. */
bool mapq_record_is_end(const char *data, size_t len);

/*
 * Reads one event entry (len bytes, borrowed): a flat msgpack array of
 * [node, index, phase] triples. Calls fn for each good triple, in order;
 * a triple whose node is not below nnodes or whose phase is not final is
 * skipped alone and counted in *bad. Returns MAPQ_OK when every triple was
 * good, MAPQ_EPROTO when the entry cannot be read as such an array (then
 * fn was not called) or some triple was skipped.
 */
enum mapq_err mapq_record_events(const char *data, size_t len, uint64_t nnodes,
                                 mapq_record_event_fn *fn, void *arg,
                                 uint32_t *bad);

#endif
