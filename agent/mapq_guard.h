/*
 * mapq_guard.h - the agent's guardian: one small child process that kills
 * the process groups of the agent's commands when the agent dies, however
 * it dies (kill -9 included), so that no command outlives its agent.
 *
 * mapq_guard_start() forks the guardian once, before the agent opens any
 * connection. The agent then tells it, through a pipe whose write end only
 * the agent holds, which process groups are running: mapq_guard_add() when
 * a command's group is started, mapq_guard_remove() once it is done. When
 * the pipe reaches EOF (the agent is gone) or the guardian receives its
 * parent-death signal, it sends SIGKILL to every group still registered
 * (within about 20 ms: it reads in batches) and exits; after an orderly
 * exit no group is left, and it just exits.
 * A group covers the command's children and grandchildren, which a
 * parent-death signal on the command alone would not.
 *
 * The guardian holds nothing of the agent's open (only the pipe and
 * stderr, for one log line), sits in a process group of its own and
 * ignores terminal and user signals: a Ctrl-C or SIGTERM meant for the
 * agent must not remove it while the agent hands its work back.
 *
 * Module state is process-wide and belongs to the loop's thread. Nothing
 * here blocks: a record is one atomic write of 4 bytes on a non-blocking
 * pipe; when the pipe is full (the guardian is stopped) records wait in
 * memory, bounded by the number of running groups, and go out with the
 * next call. The caller must ignore SIGPIPE (the agent does).
 */
#ifndef MAPQ_GUARD_H
#define MAPQ_GUARD_H

#include <stdbool.h>
#include <sys/types.h>

#include "mapq_err.h"

/*
 * Forks the guardian. Returns MAPQ_OK, or MAPQ_EIO with the reason in err
 * (MAPQ_ERR_LEN bytes, may be NULL) when the pipe or the fork failed; then
 * nothing is left behind and the other calls do nothing. Call once, from
 * the thread that runs the loop (the parent-death signal follows that
 * thread), before other threads or connections exist.
 */
enum mapq_err mapq_guard_start(char *err);

/* Registers process group pgid (> 1) with the guardian. No-op when no
 * guardian runs. */
void mapq_guard_add(pid_t pgid);

/* Unregisters pgid, which the agent has killed or seen end. No-op when no
 * guardian runs. */
void mapq_guard_remove(pid_t pgid);

/* Tries to send the records held back by a full pipe; true when none is
 * left (also when no guardian runs). Never blocks. */
bool mapq_guard_flush(void);

/* The guardian's pid, or -1 when none runs. */
pid_t mapq_guard_pid(void);

/*
 * Closes the pipe, which makes the guardian kill the groups still
 * registered and exit, and reaps it, waiting at most 5 s (a
 * stopped guardian is left to init). Call at exit, once the commands are
 * freed. No-op when no guardian runs.
 */
void mapq_guard_stop(void);

#endif
