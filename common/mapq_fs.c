/*
 * mapq_fs.c - recursive removal of working and temporary directories.
 */
#include "mapq_fs.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

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

enum mapq_err
mapq_fs_read_file(const char *path, struct mapq_buf *b, char *err)
{
    char chunk[65536];
    struct stat sb;
    enum mapq_err rc = MAPQ_OK;
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT
                   ? MAPQ_ENOENT
                   : mapq_err_set(err, MAPQ_EIO, "%s", strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return mapq_err_set(err, MAPQ_EIO, "not a regular file");
    }
    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = mapq_err_set(err, MAPQ_EIO, "%s", strerror(errno));
        if (n <= 0 || rc != MAPQ_OK)
            break;
        rc = mapq_buf_append(b, chunk, (size_t)n);
    }
    close(fd);
    return rc;
}

int
mapq_fs_write_new(const char *path, const char *data, size_t len)
{
    size_t off = 0;
    ssize_t n;
    int fd, e;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    while (off < len) {
        n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        off += (size_t)n;
    }
    return close(fd);
}
