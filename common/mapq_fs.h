/*
 * mapq_fs.h - file system helpers shared by the agent and local mode.
 */
#ifndef MAPQ_FS_H
#define MAPQ_FS_H

#include "mapq_err.h"

/*
 * Removes path and everything below it, never following symbolic links.
 * Directories left without permissions for us are made traversable and
 * tried again. Returns MAPQ_OK, or MAPQ_EIO with the saved errno in *errnum
 * (may be NULL). A path that does not exist is MAPQ_OK.
 */
enum mapq_err mapq_fs_rmtree(const char *path, int *errnum);

#endif
