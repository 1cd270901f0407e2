/*
 * mapq_inspect.h - read-only views of Redis for the CLI: the attempts of
 * subtasks (`mapq logs`) and the live agents (`mapq agents`).
 *
 * Both use a blocking connection (the CLI's), print to out and never
 * change anything in Redis.
 */
#ifndef MAPQ_INSPECT_H
#define MAPQ_INSPECT_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "mapq_err.h"
#include "mapq_proto.h"

/*
 * Prints every logged attempt of subtask index (a decimal string) of node
 * node in execution exec, or of every subtask of the node when index is
 * NULL, in index order: one line per attempt (or a JSON array with json).
 * Returns MAPQ_OK, MAPQ_EINVAL when there is no such execution, node or
 * index (err says which), or MAPQ_EREDIS. All arguments are borrowed.
 */
enum mapq_err mapq_inspect_logs(redisContext *c, const char *ns,
                                const char *exec, const char *node,
                                const char *index, bool json, FILE *out,
                                char *err);

/* The number of node in exec; -1 with err set when there is none, -2
 * when Redis failed. */
long mapq_inspect_node(redisContext *c, const char *ns, const char *exec,
                       const char *node, char *err);

/*
 * Prints the attempts of one subtask's log (data, len bytes: attempt
 * records one after another) after the first skip, one line each (with
 * their stderr tails when tails); returns how many it holds, and in *final
 * whether the last one ended the subtask.
 */
size_t mapq_inspect_print_attempts(FILE *out, const char *node, uint64_t index,
                                   const char *data, size_t len, size_t skip,
                                   bool tails, bool *final);

/*
 * Prints the agents that sent a heartbeat in the last MAPQ_AGENT_LIVE_MS:
 * name, host, slots, subtasks held, queues, interruptible and the age of
 * the heartbeat, as a table or a JSON array. MAPQ_EREDIS with err set.
 */
enum mapq_err mapq_inspect_agents(redisContext *c, const char *ns, bool json,
                                  FILE *out, char *err);

#endif
