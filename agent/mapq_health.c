/*
 * mapq_health.c - the agent's health file: touch, check, remove.
 *
 * Liveness is the file's modification time alone: the file stays empty,
 * so touching it is one utimensat() (plus one open() the first time), with
 * no write to block on.
 */
#include "mapq_health.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

enum mapq_err
mapq_health_touch(const char *path, char *err)
{
    int fd, saved;

    if (utimensat(AT_FDCWD, path, NULL, AT_SYMLINK_NOFOLLOW) == 0)
        return MAPQ_OK;
    saved = errno;
    if (saved != ENOENT)
        goto out_fail;
    /* O_EXCL: a symbolic link in its place is not followed but refused. */
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    saved = errno;
    if (fd < 0)
        goto out_fail;
    close(fd);
    return MAPQ_OK;
out_fail:
    return mapq_err_set(err, MAPQ_EIO, "cannot touch the health file '%s': %s",
                        path, strerror(saved));
}

enum mapq_err
mapq_health_check(const char *path, int64_t max_age_ms, int64_t now_ms,
                  char *msg, size_t len)
{
    struct stat st;
    int64_t mtime_ms, age_ms;

    if (lstat(path, &st) != 0) {
        if (errno == ENOENT) {
            snprintf(msg, len,
                     "no health file '%s': the agent has not reached redis "
                     "yet, or has exited",
                     path);
            return MAPQ_ENOENT;
        }
        snprintf(msg, len, "cannot read the health file '%s': %s", path,
                 strerror(errno));
        return MAPQ_EIO;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(msg, len, "the health file '%s' is not a regular file", path);
        return MAPQ_EIO;
    }
    mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    age_ms = now_ms > mtime_ms ? now_ms - mtime_ms : 0;
    if (age_ms > max_age_ms) {
        snprintf(msg, len, "no heartbeat for %lld s",
                 (long long)(age_ms / 1000));
        return MAPQ_ETIMEDOUT;
    }
    snprintf(msg, len, "heartbeat %lld s ago", (long long)(age_ms / 1000));
    return MAPQ_OK;
}

void
mapq_health_remove(const char *path)
{
    if (path != NULL)
        unlink(path);
}

void
mapq_health_notify(const char *state)
{
    (void)sd_notify(0, state);
}

int64_t
mapq_health_watchdog_ms(void)
{
    uint64_t usec = 0;

    if (sd_watchdog_enabled(0, &usec) <= 0)
        return 0;
    return (int64_t)(usec / 1000);
}
