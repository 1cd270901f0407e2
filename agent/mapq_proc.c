/*
 * mapq_proc.c - helpers shared by command attempts and persistent workers
 * (see mapq_proc.h). Owns nothing.
 */
#include "mapq_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

/* fd moved above stderr (a daemon started with stdio closed must not hand
 * a child's stream to the wrong number); -1 when that fails. */
static int
fd_high(int fd)
{
    int nfd;

    if (fd > 2)
        return fd;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

int
mapq_proc_pipe(int p[2], int parent_end)
{
    int flags;

    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    p[0] = fd_high(p[0]);
    p[1] = fd_high(p[1]);
    flags = p[0] < 0 || p[1] < 0 ? -1 : fcntl(p[parent_end], F_GETFL);
    if (flags < 0 || fcntl(p[parent_end], F_SETFL, flags | O_NONBLOCK) != 0) {
        if (p[0] >= 0)
            close(p[0]);
        if (p[1] >= 0)
            close(p[1]);
        return -1;
    }
    return 0;
}

int
mapq_proc_check_exec(const char *path)
{
    struct stat sb;

    if (stat(path, &sb) != 0)
        return errno;
    if (!S_ISREG(sb.st_mode) || access(path, X_OK) != 0)
        return EACCES;
    return 0;
}

bool
mapq_proc_command_errno(int e)
{
    return e == ENOENT || e == ENOTDIR || e == EACCES || e == ENOEXEC ||
           e == E2BIG || e == ELOOP || e == ENAMETOOLONG || e == EISDIR ||
           e == EPERM || e == ETXTBSY;
}

int64_t
mapq_proc_elapsed_ms(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 +
           (now.tv_nsec - t0->tv_nsec) / 1000000;
}

void
mapq_proc_secs_text(char *buf, size_t len, int64_t ms)
{
    int n;

    if (ms % 1000 == 0) {
        snprintf(buf, len, "%" PRId64 "s", ms / 1000);
        return;
    }
    n = snprintf(buf, len - 1, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
    while (n > 0 && buf[n - 1] == '0')
        n--;
    buf[n++] = 's';
    buf[n] = '\0';
}

/* The set of the n CPU ids of cpus (those out of range left out). */
static void
cpu_set_of(cpu_set_t *set, const int *cpus, size_t n)
{
    size_t i;

    CPU_ZERO(set);
    for (i = 0; i < n; i++)
        if (cpus[i] >= 0 && cpus[i] < CPU_SETSIZE)
            CPU_SET(cpus[i], set);
}

int
mapq_proc_pin_self(const int *cpus, size_t n)
{
    cpu_set_t set;

    cpu_set_of(&set, cpus, n);
    return sched_setaffinity(0, sizeof(set), &set);
}

int
mapq_proc_pin(pid_t pid, const int *cpus, size_t n)
{
    char path[64];
    cpu_set_t set;
    struct dirent *d;
    DIR *dir;
    int rc = 0, e = 0;

    cpu_set_of(&set, cpus, n);
    snprintf(path, sizeof(path), "/proc/%ld/task", (long)pid);
    dir = opendir(path);
    if (dir == NULL)
        return sched_setaffinity(pid, sizeof(set), &set);
    while ((d = readdir(dir)) != NULL) {
        long tid = strtol(d->d_name, NULL, 10);

        /* A thread that ended meanwhile is no failure. */
        if (tid > 0 && sched_setaffinity((pid_t)tid, sizeof(set), &set) != 0 &&
            errno != ESRCH) {
            rc = -1;
            e = errno;
        }
    }
    closedir(dir);
    errno = e;
    return rc;
}
