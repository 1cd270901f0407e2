/*
 * mapq_workdirs.c - working directories made ahead and removed behind by one
 * thread (see mapq_workdirs.h).
 *
 * The loop's thread and the worker thread share two lists under one mutex:
 * ready (made, not yet taken, at most ahead) and doomed (dropped, not yet
 * removed). The worker thread sleeps on the condition variable, refills ready
 * first when it wakes (a slot may be waiting for a directory), from doomed
 * when it can (below), then removes what is doomed, never holding the mutex
 * over a file system call. It is woken in batches, since every wake-up is two
 * context switches on a machine busy with the attempts themselves: by a take
 * that leaves ready half empty, and by the DROP_BATCH-th drop; it removes
 * what is doomed when DROP_BATCH are or the first has waited DROP_WAIT_MS.
 * After work it sleeps at most DROP_WAIT_MS, so a drop need not wake it;
 * only the first drop that finds it in an untimed sleep (an agent idle
 * until now) does, to start the wait.
 * A failure to make a directory stops the making until the next take, which
 * then reports the error itself, so a full disk is not retried in a busy loop.
 *
 * A dropped directory that is still as it was made (a directory, ours, mode
 * 0700, no ACL or other attribute) and empty, as most attempts of short
 * commands leave it, is not removed while ready wants one: it is renamed to a
 * new name under root and given out again. On ext4 a directory made and
 * removed costs the file system about five times what the check and the rename
 * do, because making one searches the inode table for an inode not freed
 * recently. The next attempt sees what a new directory would show, an empty
 * directory of mode 0700 at a path no attempt had before; what its inode
 * number, times or earlier names were is not part of the promise.
 */
#include "mapq_workdirs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_fs.h"
#include "mapq_log.h"

#define DROP_BATCH   16
#define DROP_WAIT_MS 50
#define RENAME_TRIES 8 /* new names tried for a directory given out again */

struct mapq_workdirs {
    char *root;
    size_t ahead;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    char **ready; /* nready of ahead, oldest first */
    size_t nready;
    char **doomed; /* ndoomed of cap */
    size_t ndoomed, cap;
    struct timespec due;    /* when the first doomed one must go */
    struct timespec linger; /* until when the thread waits timed */
    bool lingering;         /* linger is set */
    bool idle;              /* the thread waits untimed: wake it to start due */
    bool stopping;
    bool make_failed; /* making stopped until the next take */
    uid_t uid;        /* the agent's effective user, owner of what it made */
    uint64_t names;   /* the thread's generator of new names */
};

/* A new directory under root, or NULL with errno set. */
static char *
make_dir(const char *root)
{
    char *path = mapq_xasprintf("%s/mapq-XXXXXX", root);
    int e;

    if (mkdtemp(path) != NULL)
        return path;
    e = errno;
    free(path);
    errno = e;
    return NULL;
}

static void
remove_dir(char *path)
{
    int e = mapq_fs_rmtree(path);

    if (e != 0)
        mapq_log_errno(MAPQ_LOG_WARN, e, "cannot remove working directory '%s'",
                       path);
    free(path);
}

/* True when the directory open at fd carries no extended attribute but
 * the security module's own labels: no ACL (a default one would pass its
 * grants on to what the next attempt makes), nothing of a task's. */
static bool
no_attributes(int fd)
{
    char names[1024];
    ssize_t len = flistxattr(fd, names, sizeof(names)), off;

    if (len < 0)
        return errno == ENOTSUP;
    for (off = 0; off < len; off += (ssize_t)strlen(names + off) + 1)
        if (strncmp(names + off, "security.", 9) != 0)
            return false;
    return true;
}

/* True when path is a directory of ours, mode 0700, without attributes
 * and empty: as make_dir() left it. A link put in its place is not
 * followed. */
static bool
reusable(const char *path, uid_t uid)
{
    union {
        struct dirent64 d;
        char b[1024];
    } u;
    struct stat sb;
    ssize_t n = 0, off;
    bool empty;
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

    if (fd < 0)
        return false;
    empty = fstat(fd, &sb) == 0 && sb.st_uid == uid &&
            (sb.st_mode & 07777) == 0700 && no_attributes(fd);
    while (empty && (n = getdents64(fd, u.b, sizeof(u.b))) > 0) {
        for (off = 0; off < n && empty;) {
            const struct dirent64 *e = (const void *)(u.b + off);

            empty = strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0;
            off += e->d_reclen;
        }
    }
    close(fd);
    return empty && n == 0;
}

/* The next value of the splitmix64 generator at *state. */
static uint64_t
next_random(uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/*
 * A new name in root, "mapq-" and six characters of the thread's generator,
 * seeded from getrandom() once: only the agent can enter root (mode 0700),
 * so a name need not be unguessable, only new, which the rename itself
 * checks (RENAME_NOREPLACE).
 */
static char *
new_name(const char *root, uint64_t *state)
{
    static const char digits[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    static const char prefix[] = "/mapq-";
    size_t len = strlen(root), i;
    char *path = mapq_xmalloc(len + sizeof(prefix) + 6), *x;
    uint64_t r = next_random(state);

    memcpy(path, root, len);
    memcpy(path + len, prefix, sizeof(prefix) - 1);
    x = path + len + sizeof(prefix) - 1;
    for (i = 0; i < 6; i++, r /= sizeof(digits) - 1)
        x[i] = digits[r % (sizeof(digits) - 1)];
    x[6] = '\0';
    return path;
}

/* Gives a dropped directory out again under a new name when reusable(),
 * else removes it. Takes path; returns the new path, or NULL. On the
 * thread only (the generator is its own). */
static char *
recycle(struct mapq_workdirs *d, char *path)
{
    char *to = NULL;
    int i, e;

    for (i = 0; i < RENAME_TRIES && (i > 0 || reusable(path, d->uid)); i++) {
        to = new_name(d->root, &d->names);
        if (renameat2(AT_FDCWD, path, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
            break;
        e = errno;
        free(to);
        to = NULL;
        /* A name taken is tried again; any other failure (a file system
         * without RENAME_NOREPLACE) removes it. */
        if (e != EEXIST)
            break;
    }
    if (to == NULL) {
        remove_dir(path);
        return NULL;
    }
    free(path);
    return to;
}

/* Removes the doomed directories taken out of d, unlocked. */
static void
remove_batch(struct mapq_workdirs *d, char **paths, size_t n)
{
    size_t i;

    pthread_mutex_unlock(&d->mu);
    for (i = 0; i < n; i++)
        remove_dir(paths[i]);
    free(paths);
    pthread_mutex_lock(&d->mu);
}

/* True once the monotonic clock has passed t. */
static bool
passed(const struct timespec *t)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return now.tv_sec > t->tv_sec ||
           (now.tv_sec == t->tv_sec && now.tv_nsec >= t->tv_nsec);
}

/* t set to DROP_WAIT_MS from now. */
static void
in_drop_wait(struct timespec *t)
{
    clock_gettime(CLOCK_MONOTONIC, t);
    t->tv_nsec += DROP_WAIT_MS * 1000000L;
    if (t->tv_nsec >= 1000000000L) {
        t->tv_sec++;
        t->tv_nsec -= 1000000000L;
    }
}

/* Sleeps until woken (d->mu held): until the first doomed one is due,
 * else for DROP_WAIT_MS after work so that the drops of a busy agent need
 * no wake-up of their own, else for as long as it takes. */
static void
wait_for_work(struct mapq_workdirs *d, bool worked)
{
    if (d->ndoomed > 0) {
        pthread_cond_timedwait(&d->cv, &d->mu, &d->due);
        return;
    }
    if (worked) {
        in_drop_wait(&d->linger);
        d->lingering = true;
    }
    if (d->lingering) {
        if (pthread_cond_timedwait(&d->cv, &d->mu, &d->linger) == ETIMEDOUT)
            d->lingering = false;
        return;
    }
    d->idle = true;
    pthread_cond_wait(&d->cv, &d->mu);
    d->idle = false;
}

static void *
run(void *arg)
{
    struct mapq_workdirs *d = arg;
    char **paths, *path;
    size_t n;
    bool worked = false;

    pthread_mutex_lock(&d->mu);
    for (;;) {
        if (!d->stopping && d->nready < d->ahead && d->ndoomed > 0) {
            /* Oldest first: what it ran has had the longest to end. */
            path = d->doomed[0];
            memmove(d->doomed, d->doomed + 1, --d->ndoomed * sizeof(char *));
            pthread_mutex_unlock(&d->mu);
            path = recycle(d, path);
            pthread_mutex_lock(&d->mu);
            if (path != NULL)
                d->ready[d->nready++] = path;
            worked = true;
            continue;
        }
        if (!d->stopping && !d->make_failed && d->nready < d->ahead) {
            pthread_mutex_unlock(&d->mu);
            path = make_dir(d->root);
            pthread_mutex_lock(&d->mu);
            if (path == NULL)
                d->make_failed = true;
            else
                d->ready[d->nready++] = path;
            worked = true;
            continue;
        }
        if (d->ndoomed > 0 &&
            (d->ndoomed >= DROP_BATCH || d->stopping || passed(&d->due))) {
            paths = d->doomed;
            n = d->ndoomed;
            d->doomed = NULL;
            d->ndoomed = d->cap = 0;
            remove_batch(d, paths, n);
            worked = true;
            continue;
        }
        if (d->stopping)
            break;
        wait_for_work(d, worked);
        worked = false;
    }
    paths = d->ready;
    n = d->nready;
    d->ready = NULL;
    d->nready = 0;
    remove_batch(d, paths, n);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

struct mapq_workdirs *
mapq_workdirs_new(const char *root, size_t ahead, char *err)
{
    struct mapq_workdirs *d = mapq_xcalloc(1, sizeof(*d));
    pthread_condattr_t attr;
    sigset_t all, old;
    int e;

    d->root = mapq_xstrdup(root);
    d->ahead = ahead;
    d->uid = geteuid();
    /* Any seed will do (see new_name()); a failed getrandom() leaves
     * the clock's. */
    if (getrandom(&d->names, sizeof(d->names), 0) != (ssize_t)sizeof(d->names))
        d->names = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
    d->ready = mapq_xcalloc(ahead + 1, sizeof(char *));
    pthread_mutex_init(&d->mu, NULL);
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&d->cv, &attr);
    pthread_condattr_destroy(&attr);
    /* Signals stay the loop's: the thread blocks them all. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&d->thread, NULL, run, d);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        mapq_err_set(err, MAPQ_EIO,
                     "cannot start the working directory thread: %s",
                     strerror(e));
        pthread_cond_destroy(&d->cv);
        pthread_mutex_destroy(&d->mu);
        free(d->ready);
        free(d->root);
        free(d);
        return NULL;
    }
    return d;
}

char *
mapq_workdirs_take(struct mapq_workdirs *d, char *err)
{
    char *path = NULL;

    pthread_mutex_lock(&d->mu);
    if (d->nready > 0) {
        path = d->ready[0];
        d->nready--;
        memmove(d->ready, d->ready + 1, d->nready * sizeof(char *));
    }
    if (d->nready * 2 < d->ahead || d->make_failed)
        pthread_cond_signal(&d->cv);
    d->make_failed = false;
    pthread_mutex_unlock(&d->mu);
    if (path == NULL) {
        path = make_dir(d->root);
        if (path == NULL)
            mapq_err_set(err, MAPQ_EIO,
                         "cannot create a working directory in '%s': %s",
                         d->root, strerror(errno));
    }
    return path;
}

void
mapq_workdirs_drop(struct mapq_workdirs *d, char *path)
{
    if (path == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    if (d->ndoomed == d->cap) {
        d->cap = d->cap ? d->cap * 2 : 16;
        d->doomed = mapq_xrealloc(d->doomed, d->cap * sizeof(char *));
    }
    d->doomed[d->ndoomed++] = path;
    if (d->ndoomed == 1)
        in_drop_wait(&d->due);
    /* A thread that waits timed looks at doomed when it wakes anyway. */
    if ((d->ndoomed == 1 && d->idle) || d->ndoomed == DROP_BATCH)
        pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

size_t
mapq_workdirs_ready(struct mapq_workdirs *d)
{
    size_t n;

    pthread_mutex_lock(&d->mu);
    n = d->nready;
    pthread_mutex_unlock(&d->mu);
    return n;
}

void
mapq_workdirs_free(struct mapq_workdirs *d)
{
    if (d == NULL)
        return;
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    pthread_cond_signal(&d->cv);
    pthread_mutex_unlock(&d->mu);
    pthread_join(d->thread, NULL);
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
    free(d->ready);
    free(d->doomed);
    free(d->root);
    free(d);
}
