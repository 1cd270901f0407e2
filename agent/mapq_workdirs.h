/*
 * mapq_workdirs.h - the fresh working directories of attempts, made ahead
 * and removed behind, off the event loop.
 *
 * Every attempt of a command runs in a directory of its own that nothing
 * used before and that is removed after it (SPEC section 2). Making and
 * removing a directory are synchronous file system calls: on a disk that
 * discards freed blocks, removing even an empty directory waits for the
 * device, and a task that left a large tree behind would stop the loop for
 * as long as its removal takes, heartbeats and lease renewals included. So
 * one thread of this module does both: it keeps a few empty directories
 * made ahead, and removes the used ones handed to it, in order, in
 * batches: a directory dropped is gone within about 50 ms.
 *
 * Directories are named root/mapq-XXXXXX (mode 0700), each path given out
 * once: a directory dropped empty and as it was made may be renamed and
 * given out again rather than removed, which is far cheaper for the file
 * system; the taker cannot tell it from a new one. Ownership:
 * mapq_workdirs_take() gives the caller the path string; mapq_workdirs_drop()
 * takes it back with the directory. The loop's thread calls take and drop;
 * neither blocks on the file system unless no directory is ready, when take
 * makes one itself.
 */
#ifndef MAPQ_WORKDIRS_H
#define MAPQ_WORKDIRS_H

#include <stddef.h>

#include "mapq_err.h"

struct mapq_workdirs;

/*
 * Starts the thread for directories under root (borrowed for the call; it
 * must exist), keeping ahead of them ready (0: each made when taken).
 * Returns NULL with err set when the thread cannot start.
 */
struct mapq_workdirs *mapq_workdirs_new(const char *root, size_t ahead,
                                        char *err);

/* A fresh, empty directory: one made ahead, or made now when none is
 * ready. Returns the path (owned by the caller, to give back with
 * mapq_workdirs_drop()) or NULL with err set. */
char *mapq_workdirs_take(struct mapq_workdirs *d, char *err);

/* Hands path (a directory from take, and the string) over for removal
 * with everything below it, never following links, or, while it is empty
 * and directories are wanted ahead, for giving out again under a new
 * name. NULL-safe. A directory that cannot be removed is logged as a
 * warning. */
void mapq_workdirs_drop(struct mapq_workdirs *d, char *path);

/* How many directories are made ahead and ready to take now. One the
 * thread has made but not yet counted is not (it may be on disk a moment
 * before): tests wait on this, not on what the disk shows. */
size_t mapq_workdirs_ready(struct mapq_workdirs *d);

/* Removes every directory dropped and every one made ahead and not taken,
 * then stops the thread and frees d (waiting for the removals). Taken
 * directories not yet dropped are the caller's. NULL-safe. */
void mapq_workdirs_free(struct mapq_workdirs *d);

#endif
