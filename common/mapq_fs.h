/*
 * mapq_fs.h - file system helpers shared by the agent and local mode.
 */
#ifndef MAPQ_FS_H
#define MAPQ_FS_H

#include <stddef.h>

#include "mapq_buf.h"
#include "mapq_err.h"

/*
 * Removes path and everything below it, never following symbolic links.
 * Directories left without permissions for us are made traversable and
 * tried again. Returns 0, or the errno of the failure (an errno value
 * rather than an out-parameter: callers log it). A path that does not
 * exist is 0.
 */
int mapq_fs_rmtree(const char *path);

/*
 * Appends the regular file at path to b (capped by b->max): MAPQ_ENOENT
 * when it is missing, MAPQ_ETOOBIG over the cap, MAPQ_EIO (reason in err)
 * otherwise. Opened O_NONBLOCK, so that a FIFO planted in its place by a
 * task cannot block the caller's loop.
 */
enum mapq_err mapq_fs_read_file(const char *path, struct mapq_buf *b,
                                char *err);

/* Creates path exclusively (mode 0600) holding len bytes at data; 0, or
 * -1 with errno set. */
int mapq_fs_write_new(const char *path, const char *data, size_t len);

#endif
