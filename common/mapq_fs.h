/*
 * mapq_fs.h - file system helpers shared by the agent and local mode.
 */
#ifndef MAPQ_FS_H
#define MAPQ_FS_H

#include "mapq_err.h"

/*
 * Removes path and everything below it, never following symbolic links.
 * Directories left without permissions for us are made traversable and
 * tried again. Returns 0, or the errno of the failure (an errno value
 * rather than an out-parameter: callers log it). A path that does not
 * exist is 0.
 */
int mapq_fs_rmtree(const char *path);

#endif
