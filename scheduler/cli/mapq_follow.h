/*
 * mapq_follow.h - mapq logs -f EXEC NODE INDEX: a running subtask's stderr
 * as its agent sends it, and each attempt's line as it ends.
 *
 * The follower registers the subtask in P:follow (renewed while it
 * follows, removed when it stops); agents see that at their next renewal
 * (within a second) and append what the attempt writes to stderr to
 * P:live:<exec>:<k>/<index>/<attempt>, which the follower reads. Uses the
 * CLI's blocking connection: it runs outside any event loop.
 */
#ifndef MAPQ_FOLLOW_H
#define MAPQ_FOLLOW_H

#include <hiredis/hiredis.h>
#include <signal.h>
#include <stdio.h>

#include "mapq_err.h"

/*
 * Follows subtask index (decimal) of node in exec until it has a final
 * attempt, its execution ends, or *stop becomes non-zero; prints to out.
 * Returns MAPQ_OK, MAPQ_EINVAL (no such execution, node or index: err) or
 * MAPQ_EREDIS. All arguments are borrowed.
 */
enum mapq_err mapq_follow(redisContext *c, const char *ns, const char *exec,
                          const char *node, const char *index,
                          volatile sig_atomic_t *stop, FILE *out, char *err);

#endif
