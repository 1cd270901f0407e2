/*
 * mapq_fs.c - recursive removal of working and temporary directories.
 */
#include "mapq_fs.h"

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

#define RMTREE_PASSES 4

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path) == 0 || errno == ENOENT ? 0 : -1;
}

/* Makes directories a task left without rwx for us traversable again. */
static int
chmod_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)ftw;
    if (type == FTW_D || type == FTW_DNR)
        chmod(path, S_IRWXU);
    return 0;
}

int
mapq_fs_rmtree(const char *path)
{
    int pass, e = 0;

    for (pass = 0; pass < RMTREE_PASSES; pass++) {
        if (nftw(path, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ||
            errno == ENOENT)
            return 0;
        e = errno;
        nftw(path, chmod_entry, 16, FTW_PHYS);
    }
    return e;
}
