/*
 * mapq_cache.h - `mapq cache ls|rm|clear`: listing and removing cache
 * entries, the strings P:c:<task>:<hex key> that mapq1_done writes for
 * successes of cached tasks (docs/ARCHITECTURE.md, "Cache, checkpoints and
 * recovery").
 *
 * All functions use a blocking connection (the CLI's) and SCAN, never
 * KEYS, so a large cache never stalls Redis; they print to out.
 */
#ifndef MAPQ_CACHE_H
#define MAPQ_CACHE_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdio.h>

#include "mapq_err.h"

/*
 * Lists the entries of task (every task when NULL): task, key, size and
 * time to live, one line each or a JSON array. MAPQ_EREDIS with err set.
 */
enum mapq_err mapq_cache_ls(redisContext *c, const char *ns, const char *task,
                            bool json, FILE *out, char *err);

/*
 * Removes the entries whose keys (hex, as ls prints them) are in keys
 * (nkeys of them, borrowed), of task or of any task when task is NULL.
 * Writes how many were removed to *removed. MAPQ_EINVAL with err set when
 * a key is not 32 hex digits; MAPQ_EREDIS.
 */
enum mapq_err mapq_cache_rm(redisContext *c, const char *ns, const char *task,
                            const char *const *keys, size_t nkeys,
                            size_t *removed, char *err);

/*
 * Removes every entry of task (every task when NULL); writes the count to
 * *removed. MAPQ_EREDIS with err set.
 */
enum mapq_err mapq_cache_clear(redisContext *c, const char *ns,
                               const char *task, size_t *removed, char *err);

#endif
