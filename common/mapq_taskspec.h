/*
 * mapq_taskspec.h - the task spec message: everything an agent needs to run
 * the subtasks of one node. The scheduler writes one per node into the
 * execution record (field "t:<k>"); agents fetch it once and cache it.
 */
#ifndef MAPQ_TASKSPEC_H
#define MAPQ_TASKSPEC_H

#include <stdbool.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_err.h"
#include "mapq_store.h"
#include "mapq_type.h"

/* The largest batch: N a node may set. */
#define MAPQ_BATCH_MAX 1000

struct mapq_taskspec {
    char *task;  /* task name */
    char *node;  /* node name */
    bool plugin; /* plugin task, else command */
    char **argv; /* command: argc strings */
    size_t argc;
    char *library; /* plugin */
    char *symbol;
    struct mapq_type *output; /* NULL: no output */
    /* The inputs that hold files or directories, as a record of their
     * types: the agent fetches them before the attempt starts. NULL: none
     * (then mapq_type_has_file() is false for every input). */
    struct mapq_type *files;
    /* What the task writes as its output: the output type with each file
     * a local path (mapq_type_file_paths()), made by the decoder; NULL:
     * output. The agent stores the files, then the output has references. */
    struct mapq_type *output_written;
    bool output_text;
    bool worker; /* command run as a persistent worker (SPEC section 9) */
    int batch;   /* subtasks an agent's slot takes per claim (the node's
                    batch: N); 0 = chosen from observed durations */
    int retries;
    int64_t timeout_ms;
    int system_retries;
    int interruptible_failures;
    bool interruptible;
    char *queue;
    int64_t mem_bytes; /* resources.mem; 0 = undeclared */
    int64_t cpu_milli; /* resources.cpu in thousandths; 0 = undeclared */
    int64_t backoff_initial_ms; /* retry_backoff: 0 = user retries at once */
    int64_t backoff_max_ms;
    int backoff_factor_milli; /* growth per retry, in thousandths */
    bool cache;               /* successes go to the cache */
    int64_t cache_ttl_ms;     /* their lifetime; 0 = no expiry */
    bool cache_serialize;     /* one attempt per cache key at a time */
    bool overwrite;           /* --overwrite-cache: no lookups */
    struct mapq_store store;  /* where the files it outputs are stored */
};

/* The most resources.cpu a task may declare, in thousandths. */
#define MAPQ_CPU_MILLI_MAX (INT64_C(1000000) * 1000)

/*
 * The delay before user retry number `failures` (1 for the first retry),
 * with jitter: uniformly between half and all of
 * initial * factor^(failures - 1), capped at max. rnd is a uniform random
 * value in [0, 1). 0 when the spec has no backoff.
 */
int64_t mapq_taskspec_backoff_ms(const struct mapq_taskspec *spec,
                                 uint32_t failures, double rnd);

/* Appends the msgpack encoding of spec (borrowed) to out. */
void mapq_taskspec_encode(const struct mapq_taskspec *spec,
                          struct mapq_buf *out);

/* Decodes a spec; caller frees the result with mapq_taskspec_free(). NULL
 * with err set when the message is malformed. */
struct mapq_taskspec *mapq_taskspec_decode(const char *data, size_t len,
                                           char *err);

/* NULL-safe; frees every owned string, the argv and the types. */
void mapq_taskspec_free(struct mapq_taskspec *spec);

#endif
