/*
 * mapq_agent.h - the agent: claims subtasks from Redis, runs them and
 * records their results (SPEC sections 2 and 4).
 *
 * One agent runs on one libevent loop with two Redis connections: one that
 * blocks on doorbells while there is nothing to do, and one for the mapq
 * functions (claim, done, renew, reap). Command subtasks run as child
 * processes, at most `slots` at a time; plugin subtasks run inline on the
 * loop, in batches. Finished attempts are batched into one `done` call per
 * loop pass. Leases are renewed in one call every second (lease/3 if
 * shorter); the reply also names subtasks of executions that ended.
 */
#ifndef MAPQ_AGENT_H
#define MAPQ_AGENT_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "mapq_err.h"
#include "mapq_redis.h"
#include "mapq_store.h"

/* --worker-idle by default: how long an idle persistent worker is kept. */
#define MAPQ_WORKER_IDLE_DEFAULT_MS 30000
/* --file-cache-max by default: 1 GiB of fetched file content. */
#define MAPQ_FILE_CACHE_MAX (INT64_C(1) << 30)

struct mapq_agent_config {
    struct mapq_redis_url url;
    const char *ns;         /* key namespace */
    const char *name;       /* unique agent name */
    int slots;              /* concurrent command subtasks */
    int64_t cpu_milli;      /* --cpus, in thousandths; 0: the CPUs online */
    int64_t mem_bytes;      /* --mem; 0: the host's physical memory */
    int64_t worker_idle_ms; /* a persistent worker idle this long ends; 0:
                               MAPQ_WORKER_IDLE_DEFAULT_MS */
    const char **queues;    /* queue names, nqueues >= 1 */
    size_t nqueues;
    bool interruptible;   /* take only interruptible subtasks */
    int64_t grace_ms;     /* drain time after SIGTERM */
    int lease_ms;         /* lease length; renewed every min(1 s, lease/3) */
    int plugin_batch;     /* plugin subtasks claimed per call */
    const char *self_dir; /* directory of the agent binary (plugin search) */
    const char *metrics_addr; /* --metrics HOST:PORT; NULL: none */
    /* --file-cache: where fetched file content is kept, by hash (borrowed);
     * NULL: under the agent's working directory, gone when it exits. */
    const char *file_cache;
    int64_t file_cache_max; /* --file-cache-max; 0: MAPQ_FILE_CACHE_MAX */
    /* --store: the shared directories whose blobs it reads and where it
     * stores what a task's spec sends there (borrowed); nstores 0: none,
     * only the embedded store. */
    const struct mapq_store *stores;
    size_t nstores;
    int64_t store_max; /* --store-max: the embedded store's cap for the
                          files it stores; 0: MAPQ_BLOB_MAX_DEFAULT */
    /* --secret-file: task specs and bodies must be signed with it, else
     * nothing of them runs (borrowed, outlives the agent); NULL: no
     * secret, signatures are not checked. */
    const struct mapq_seal *seal;
    /* --allow-exec: real paths of the directories whose programs and
     * plugin libraries it runs (borrowed); nallow 0: any. */
    const char *const *allow_exec;
    size_t nallow;
    /* Called on the loop after every heartbeat Redis answered (about once a
     * second); must not block. NULL: none. */
    void (*heartbeat_fn)(void *arg);
    void *heartbeat_arg; /* borrowed, passed to heartbeat_fn */
};

struct mapq_agent;
struct mapq_seal;

/*
 * Creates the agent on base and starts connecting; cfg is copied. Returns
 * NULL with err set when the agent cannot start (no working directory).
 */
struct mapq_agent *mapq_agent_new(struct event_base *base,
                                  const struct mapq_agent_config *cfg,
                                  char *err);

/*
 * Begins shutdown: stop claiming, let running subtasks finish within the
 * grace period, then kill the rest and hand them back as interrupted. A
 * second call skips what is left of the grace. The agent calls
 * event_base_loopexit() once everything is handed back (or a hard deadline
 * passes when Redis is unreachable).
 */
void mapq_agent_shutdown(struct mapq_agent *a);

/* Kills any running subtasks and frees; NULL-safe. Call after the loop. */
void mapq_agent_free(struct mapq_agent *a);

#endif
