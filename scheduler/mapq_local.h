/*
 * mapq_local.h - local mode (SPEC section 6): a private redis-server on a
 * unix socket in a temporary directory, plus N local agents, torn down
 * after the run. Children get PR_SET_PDEATHSIG so a crashed mapq leaves
 * nothing behind.
 */
#ifndef MAPQ_LOCAL_H
#define MAPQ_LOCAL_H

#include <stddef.h>

#include "mapq_err.h"

struct mapq_local;

/*
 * Starts redis-server ($MAPQ_REDIS_SERVER or redis-server on PATH) and
 * nagents mapq-agent processes (next to this binary, else on PATH) with
 * slots command slots each, and waits until Redis answers. Writes the
 * unix:// URL into url. Returns NULL with err set on failure (MAPQ_ENOENT
 * when a binary is missing).
 */
struct mapq_local *mapq_local_start(int nagents, int slots, const char *ns,
                                    char *url, size_t urllen, char *err);

/* The CPU time, user and system, in seconds, that l's agents have used
 * themselves (not their commands, which are their children); -1 when a
 * process's /proc/PID/stat cannot be read, and for NULL. */
double mapq_local_agents_cpu(const struct mapq_local *l);

/* Stops the agents (SIGTERM, then SIGKILL after a bound), then Redis, and
 * removes the directory; NULL-safe. */
void mapq_local_stop(struct mapq_local *l);

#endif
