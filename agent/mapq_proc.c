/*
 * mapq_proc.c - helpers shared by command attempts and persistent workers
 * (see mapq_proc.h). Owns three process-wide things, all the loop
 * thread's: /dev/null opened once, the programs found on PATH before, and
 * the stack a new child runs on until its exec.
 */
#include "mapq_proc.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mapq_alloc.h"

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
    int rc = -1;

    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    p[0] = fd_high(p[0]);
    p[1] = fd_high(p[1]);
    /* A new pipe has no status flag but its access mode, which F_SETFL
     * leaves alone: no F_GETFL needed. */
    if (p[0] >= 0 && p[1] >= 0)
        rc = fcntl(p[parent_end], F_SETFL, O_NONBLOCK);
    if (rc != 0) {
        if (p[0] >= 0)
            close(p[0]);
        if (p[1] >= 0)
            close(p[1]);
        return -1;
    }
    return 0;
}

int
mapq_proc_devnull(void)
{
    /* Opened once: looking the path up cost about what the pipe it
     * replaces did. */
    static int devnull = -1;
    int fd;

    if (devnull < 0) {
        fd = open("/dev/null", O_WRONLY | O_CLOEXEC);
        devnull = fd < 0 ? -1 : fd_high(fd);
    }
    return devnull;
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

/* Pins the calling task (a child before its exec, on the agent's memory)
 * to the n CPU ids of cpus; 0, or -1 with errno set. */
static int
pin_self(const int *cpus, size_t n)
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

/*
 * In the child, before exec: set up and exec, or report errno in *err and
 * _exit(127). Only async-signal-safe calls: the agent has threads, and the
 * child runs on the agent's memory (see mapq_proc_spawn()). parent is the
 * agent's pid. *err is cleared once the child is in its own group. Not
 * instrumented by ASan, which cannot tell child_stack for a stack (see
 * child_main()).
 *
 * The memory limit is the child's own (rlimits are per process, not per
 * memory): set while it still runs on the agent's memory, it limits no
 * mapping of the agent's, and the child maps nothing before its exec,
 * whose new memory it limits.
 */
__attribute__((no_sanitize("address"))) static _Noreturn void
child_exec(const struct mapq_proc_child *c, pid_t parent, volatile int *err)
{
    struct rlimit rl;
    struct sigaction sa;
    sigset_t none;
    int sig, i;

    setpgid(0, 0);
    *err = 0; /* the agent sees that the group exists */
    /* Dies with the agent even if its guardian is gone; its own children
     * are the guardian's to kill, with the group. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    /* Every handler and ignored signal back to its default: a handler
     * of the agent's must never run here. */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; sig++)
        sigaction(sig, &sa, NULL);
    for (i = 0; i < 3; i++)
        if (dup2(c->fds[i], i) < 0)
            goto report_errno;
    /* Only stdio: none of the agent's Redis connections reach the child,
     * which could otherwise write commands to them. */
    close_range(3, ~0U, 0);
    if (chdir(c->dir) != 0)
        goto report_errno;
    rl.rlim_cur = (rlim_t)c->mem_bytes;
    rl.rlim_max = (rlim_t)c->mem_bytes;
    if (c->mem_bytes > 0 && setrlimit(RLIMIT_AS, &rl) != 0)
        goto report_errno;
    if (c->ncpus > 0 && pin_self(c->cpus, c->ncpus) != 0)
        goto report_errno;
    /* Last, as glibc's posix_spawn() does: a signal sent to the group
     * meanwhile stays pending in the kernel until the exec. */
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    execve(c->path, c->argv, c->envp);
report_errno:
    *err = errno;
    _exit(127);
}

/* What child_main() is given: clone() passes one pointer. */
struct spawn_args {
    const struct mapq_proc_child *c;
    pid_t parent;
    volatile int *err;
};

/* The clone child's stack, one for every spawn: the loop's thread starts
 * one child at a time and waits while the child uses it. 64 KiB: glibc's
 * posix_spawn() gives its child about 36. */
static char child_stack[64 * 1024] __attribute__((aligned(16)));

/* clone()'s entry: the child never returns. ASan would warn at each call
 * of a function that does not return, from a stack it did not make (and
 * ignore it): neither function is instrumented. */
__attribute__((no_sanitize("address"))) static int
child_main(void *arg)
{
    const struct spawn_args *a = arg;

    child_exec(a->c, a->parent, a->err);
}

/*
 * Starts c with clone(CLONE_VM | CLONE_VFORK): the child runs on the
 * agent's memory (on child_stack) while the agent's thread waits until it
 * has called execve() or _exit(), so an error of its setup or exec comes
 * back as the return value, as posix_spawn()'s does. Unlike glibc's
 * posix_spawn(), it maps no stack for each child and checks no fd against
 * the open-file limit (a getrlimit() per fd given), which every command
 * subtask paid; unlike fork(), it copies none of the agent's page tables,
 * which a command with a memory limit or CPUs paid. (Not vfork(): under
 * valgrind, which runs both as a fork, only clone() makes the agent wait
 * for the exec.) Returns 0 or an errno.
 */
int
mapq_proc_spawn(const struct mapq_proc_child *c, pid_t *out)
{
    volatile int err = -1; /* the child sets it: see child_exec() */
    struct spawn_args a = {c, getpid(), &err};
    sigset_t all, old;
    pid_t pid;
    int e;

    /* No handler of the agent's (libevent's) may run in the child before
     * child_exec() resets them. */
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid = clone(child_main, child_stack + sizeof(child_stack),
                CLONE_VM | CLONE_VFORK | SIGCHLD, &a);
    e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return e;
    if (err > 0) {
        /* It has exited already: this wait does not block. */
        waitpid(pid, NULL, 0);
        return err;
    }
    /* A child whose memory was not ours (err still -1: under valgrind,
     * where an error shows only as exit status 127) told us nothing: its
     * group must exist before we may signal it. */
    if (err == -1)
        setpgid(pid, pid);
    *out = pid;
    return 0;
}

/*
 * Programs found before, as a shell's hash table keeps them: name -> path,
 * for a name given as an absolute path or found in an absolute directory
 * of PATH (in a relative one it depends on the attempt's directory), at
 * most FOUND_MAX, the oldest replaced first. All of them are forgotten
 * when PATH is not the one they were found with.
 */
#define FOUND_MAX 32
static struct found {
    char *name, *path;
} found[FOUND_MAX];
static size_t found_next;   /* the entry the next program takes */
static char *found_on_path; /* PATH when they were found */

/* The path remembered for name, or NULL. */
static const char *
found_get(const char *name)
{
    const char *dirs = getenv("PATH");
    size_t i;

    if (found_on_path == NULL || dirs == NULL ||
        strcmp(found_on_path, dirs) != 0) {
        mapq_proc_forget(NULL);
        found_on_path = dirs != NULL ? mapq_xstrdup(dirs) : NULL;
        return NULL;
    }
    for (i = 0; i < FOUND_MAX; i++)
        if (found[i].name != NULL && strcmp(found[i].name, name) == 0)
            return found[i].path;
    return NULL;
}

static void
found_put(const char *name, const char *path)
{
    struct found *f = &found[found_next];

    free(f->name);
    free(f->path);
    f->name = mapq_xstrdup(name);
    f->path = mapq_xstrdup(path);
    found_next = (found_next + 1) % FOUND_MAX;
}

void
mapq_proc_forget(const char *name)
{
    size_t i;

    for (i = 0; i < FOUND_MAX; i++) {
        if (found[i].name == NULL ||
            (name != NULL && strcmp(found[i].name, name) != 0))
            continue;
        free(found[i].name);
        free(found[i].path);
        found[i].name = found[i].path = NULL;
    }
    if (name == NULL) {
        free(found_on_path);
        found_on_path = NULL;
    }
}

/* A candidate for name in directory dir (len bytes; relative: to cwd,
 * where the child runs); caller frees. */
static char *
candidate(const char *cwd, const char *dir, size_t len, const char *name)
{
    if (len > 0 && dir[0] == '/')
        return mapq_xasprintf("%.*s/%s", (int)len, dir, name);
    if (len > 0)
        return mapq_xasprintf("%s/%.*s/%s", cwd, (int)len, dir, name);
    return mapq_xasprintf("%s/%s", cwd, name);
}

int
mapq_proc_find(const char *name, const char *dir, char **path, bool *remembered)
{
    const char *dirs, *p, *end, *known;
    char *cand;
    int rc, e = ENOENT;

    *path = NULL;
    if (remembered != NULL) {
        known = found_get(name);
        *remembered = known != NULL;
        if (known != NULL) {
            *path = mapq_xstrdup(known);
            return 0;
        }
    }
    if (strchr(name, '/') != NULL) {
        cand =
            name[0] == '/' ? mapq_xstrdup(name) : candidate(dir, "", 0, name);
        rc = mapq_proc_check_exec(cand);
        if (rc == 0)
            *path = cand;
        else
            free(cand);
        if (rc == 0 && remembered != NULL && name[0] == '/')
            found_put(name, cand);
        return rc;
    }
    dirs = getenv("PATH"); /* not before: a path needs no search */
    for (p = dirs != NULL ? dirs : "/bin:/usr/bin";; p = end + 1) {
        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        cand = candidate(dir, p, (size_t)(end - p), name);
        rc = mapq_proc_check_exec(cand);
        if (rc == 0) {
            *path = cand;
            if (remembered != NULL && p[0] == '/' && end > p)
                found_put(name, cand);
            return 0;
        }
        free(cand);
        if (rc == EACCES)
            e = EACCES;
        if (*end == '\0')
            return e;
    }
}

bool
mapq_proc_env_is_ours(const char *entry)
{
    static const char *const names[] = {
        "MAPQ_EXECUTION=", "MAPQ_NODE=",      "MAPQ_INDEX=",
        "MAPQ_ATTEMPT=",   "MAPQ_OUTPUT=",    "MAPQ_CHECKPOINT=",
        "MAPQ_REDIS_URL=", "MAPQ_NAMESPACE=", "MAPQ_TEST_REDIS_URL=",
        "MAPQ_WORKER="};
    size_t i;

    /* Most of the environment is not ours: its first byte says so, with
     * no call (this runs for every variable of every command). */
    if (entry[0] != 'M' || strncmp(entry, "MAPQ_", 5) != 0)
        return false;
    if (strncmp(entry, "MAPQ_IN_", 8) == 0)
        return true;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(entry, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}
