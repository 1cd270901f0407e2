/*
 * mapq_keys.h - the names of mapq's Redis keys, as the C side spells them.
 *
 * Every key a C file reads or writes is built here, one function per kind
 * of key, named after what the key holds; docs/PROTOCOL.md's key table is
 * the reference, and tests/unit/test_keys.c checks each spelling against
 * it. Keys that only the Lua library touches (P:q, P:lease, P:leases,
 * P:delayed, P:cr, P:cw, P:cwait, P:f, P:ck, and P:inflight of older
 * revisions) are built inside mapq_functions.lua.
 *
 * Each builder borrows its arguments and returns a new NUL-terminated
 * string, never NULL (allocation aborts on OOM); the caller frees it with
 * free(). ns is the namespace P. Nothing here logs or touches a socket.
 */
#ifndef MAPQ_KEYS_H
#define MAPQ_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct mapq_argv;

/* P:x:<exec>: the execution record (hash). */
char *mapq_key_exec(const char *ns, const char *exec);
/* P:execs: execution id -> creation time (zset). */
char *mapq_key_execs(const char *ns);
/* P:submitted: execution ids waiting for a scheduler (list). */
char *mapq_key_submitted(const char *ns);
/* P:owners: execution id -> its driver's lease deadline (zset). */
char *mapq_key_owners(const char *ns);
/* P:bell:<queue>:<cls>: the doorbell of a ready list (list). */
char *mapq_key_bell(const char *ns, const char *queue, const char *cls);
/* P:b:<exec>: the bodies of the subtasks queued or running (hash). */
char *mapq_key_bodies(const char *ns, const char *exec);
/* P:r:<exec>:<k>: node k's results, by subtask key (hash). */
char *mapq_key_results(const char *ns, const char *exec, size_t k);
/* P:ev:<exec>:<epoch>: events for the driver of that epoch (list). */
char *mapq_key_events(const char *ns, const char *exec, long long epoch);
/* P:c:<task>:<hex>: a cache entry (string). task or hex may be "*" to
 * build a SCAN pattern. */
char *mapq_key_cache(const char *ns, const char *task, const char *hex);
/* P:pg:<exec>: the pages of an execution's paged lists (hash). */
char *mapq_key_pages(const char *ns, const char *exec);
/* P:log:<exec>: the attempt logs of an execution's subtasks (hash). */
char *mapq_key_log(const char *ns, const char *exec);
/* P:live:<exec>:<k>/<index>/<attempt>: the stderr of a running attempt
 * that someone follows (string, appended to, expires). */
char *mapq_key_live(const char *ns, const char *exec, uint32_t k,
                    uint64_t index, uint32_t attempt);
/* P:follow: "<exec>/<k>/<index>" -> until when (ms) someone follows that
 * subtask's stderr (zset). */
char *mapq_key_follow(const char *ns);
/* P:wake:<id>: a scheduler's own list that ends its blocking wait. */
char *mapq_key_wake(const char *ns, const char *id);
/* P:agents: agent name -> last heartbeat (zset). */
char *mapq_key_agents(const char *ns);
/* P:agent:<name>: what an agent registered about itself (hash). */
char *mapq_key_agent(const char *ns, const char *name);
/* P:blob:<hex>: a blob of the embedded store, hex the SHA-256 of its
 * content (string; docs/ARCHITECTURE.md, "Stores"; mapq_blob.h). */
char *mapq_key_blob(const char *ns, const char *hex);
/* P:blobtmp:<rnd>: a blob being written, renamed to P:blob:<hex> once
 * whole (string, expires). */
char *mapq_key_blob_tmp(const char *ns, const char *rnd);
/* P:*: the pattern of every key of the namespace (what an ACL user needs). */
char *mapq_key_all(const char *ns);

/*
 * Splits a cache entry's key (as mapq_key_cache() builds it) into its task
 * (*task, *tlen bytes) and hex key (*hex, to the end): pointers into key,
 * which is borrowed. False when key is too short to be one.
 */
bool mapq_key_cache_split(const char *ns, const char *key, const char **task,
                          size_t *tlen, const char **hex);

/* Appends key to a (which copies it) and frees key: takes ownership. */
void mapq_key_add(struct mapq_argv *a, char *key);

#endif
