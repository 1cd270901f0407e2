/*
 * mapq_xfer.c - the transfer thread: blob fetches and the content cache
 * (see mapq_xfer.h).
 *
 * The loop's thread and the transfer thread share two lists under one
 * mutex, queue (not started, oldest first) and done (finished, not yet
 * reported); a request's state says where it is: queued, running (the
 * thread's, in no list) or done (in done, or in the batch being reported).
 * The mutex is never held over Redis or the file system. The thread writes
 * a byte to the pipe when done stops being empty; the loop drains the pipe
 * before it takes the list, so no request is left unreported. The
 * connection and the cache's total are the thread's alone.
 */
#include "mapq_xfer.h"

#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_dirval.h"
#include "mapq_http_get.h"
#include "mapq_log.h"
#include "mapq_redis.h"
#include "mapq_s3.h"

#define CONNECT_MS 5000

enum req_state { REQ_QUEUED, REQ_RUNNING, REQ_DONE };

struct mapq_xfer_req {
    TAILQ_ENTRY(mapq_xfer_req) entry;
    struct mapq_xfer *x;
    struct mapq_xfer_item *items;
    size_t n;
    mapq_xfer_done_fn *done;
    void *arg;
    bool store;           /* store the items' files, else fetch */
    struct mapq_store to; /* storing: where */
    int64_t max;          /* storing: the embedded store's cap */
    char *holder;         /* storing: who holds what is stored (owned) */
    struct mapq_buf held; /* storing: the raw SHA-256 of each blob stored
                             in the embedded store; the thread's while it
                             runs */
    enum req_state state; /* under x->mu */
    bool cancelled;       /* under x->mu */
    enum mapq_err rc;     /* written by the thread while running */
    char err[MAPQ_ERR_LEN];
};

TAILQ_HEAD(req_list, mapq_xfer_req);

struct mapq_xfer {
    struct mapq_redis_url url;
    char *ns;
    struct mapq_store *stores; /* the shared directories it may use */
    size_t nstores;
    char *cache_dir; /* NULL: no cache */
    int64_t cache_max;
    int64_t total;   /* bytes in the cache; the thread's */
    redisContext *c; /* the thread's; NULL until needed */
    int pipe[2];     /* the thread writes [1], the loop reads [0] */
    struct event *ev;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    pthread_t thread;
    struct req_list queue; /* under mu */
    struct req_list done;  /* under mu */
    bool stopping;         /* under mu */
    bool delivering;       /* the loop is running done callbacks */
    bool closing;          /* freed during delivering: finish after it */
};

/* One file of the cache, as listed for eviction. */
struct entry {
    char name[MAPQ_BLOB_HEX_LEN + 1];
    int64_t mtime; /* ns since the epoch */
    int64_t size;
};

static void
req_free(struct mapq_xfer_req *req)
{
    size_t i;

    for (i = 0; i < req->n; i++)
        free(req->items[i].dest);
    free(req->items);
    free(req->holder);
    mapq_buf_release(&req->held);
    free(req);
}

/* Whether s is 64 lowercase hex digits, the name of a cache entry. */
static bool
is_hex(const char *s)
{
    return strspn(s, "0123456789abcdef") == MAPQ_BLOB_HEX_LEN &&
           s[MAPQ_BLOB_HEX_LEN] == '\0';
}

/* Oldest mtime first. */
static int
by_mtime(const void *a, const void *b)
{
    const struct entry *ea = a, *eb = b;

    return (ea->mtime > eb->mtime) - (ea->mtime < eb->mtime);
}

/*
 * Recounts the cache, removing the names that are not entries (temporary
 * files left by a crash: the thread writes one at a time, never while
 * here), then removes its least recently used entries but keep (NULL:
 * none) until its total is within the bound. Failures are logged: they
 * leave the cache over its bound, nothing worse.
 */
static void
evict(struct mapq_xfer *x, const char *keep)
{
    DIR *d = opendir(x->cache_dir);
    struct entry *ents = NULL, *e;
    size_t i, n = 0, cap = 0;
    struct dirent *de;
    struct stat st;

    if (d == NULL) {
        mapq_log_errno(MAPQ_LOG_WARN, errno, "cannot list file cache '%s'",
                       x->cache_dir);
        return;
    }
    x->total = 0;
    for (de = readdir(d); de != NULL; de = readdir(d)) {
        if (!is_hex(de->d_name)) {
            if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                unlinkat(dirfd(d), de->d_name, 0);
            continue;
        }
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            ents = mapq_xrealloc(ents, cap * sizeof(*ents));
        }
        e = &ents[n++];
        memcpy(e->name, de->d_name, sizeof(e->name));
        e->mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
        e->size = st.st_size;
        x->total += st.st_size;
    }
    if (n > 0)
        qsort(ents, n, sizeof(*ents), by_mtime);
    for (i = 0; i < n && x->total > x->cache_max; i++) {
        if (keep != NULL && strcmp(ents[i].name, keep) == 0)
            continue;
        if (unlinkat(dirfd(d), ents[i].name, 0) == 0 || errno == ENOENT)
            x->total -= ents[i].size;
        else
            mapq_log_errno(MAPQ_LOG_WARN, errno,
                           "cannot evict %s from file cache '%s'", ents[i].name,
                           x->cache_dir);
    }
    closedir(d);
    free(ents);
}

/* Copies the file from to to, a new file (mode 0644). Returns 0 or the
 * errno of the failure, after which to is gone. */
static int
copy_file(const char *from, const char *to)
{
    int in, out, e = 0;
    ssize_t r;

    in = open(from, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errno;
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (out < 0) {
        e = errno;
        goto out_close_in;
    }
    /* 0644 whatever the umask says, as mapq_blob_get_file() writes. */
    if (fchmod(out, 0644) != 0)
        e = errno;
    while (e == 0) {
        r = sendfile(out, in, NULL, (size_t)MAPQ_BLOB_PIECE);
        if (r == 0)
            break;
        if (r < 0)
            e = errno;
    }
    if (close(out) != 0 && e == 0)
        e = errno;
    if (e != 0)
        unlink(to);
out_close_in:
    close(in);
    return e;
}

/*
 * One call of the blob store on the thread's connection, made when there
 * is none: stores the file at path as out (out not NULL, at most max
 * bytes, held for holder), else fetches in to path. A broken connection is
 * dropped, and a call it failed with MAPQ_EREDIS made again once.
 */
static enum mapq_err
blob_call(struct mapq_xfer *x, const struct mapq_blob_ref *in,
          struct mapq_blob_ref *out, const char *path, int64_t max,
          const char *holder, char *err)
{
    enum mapq_err rc = MAPQ_EREDIS;
    int tries;

    for (tries = 0; tries < 2; tries++) {
        if (x->c == NULL)
            x->c = mapq_redis_connect_sync(&x->url, CONNECT_MS, err);
        if (x->c == NULL)
            return MAPQ_EREDIS;
        rc = out != NULL ? mapq_blob_put_file(x->c, x->ns, path, max, holder, 0,
                                              out, err)
                         : mapq_blob_get_file(x->c, x->ns, in, path, err);
        if (x->c->err == 0)
            return rc;
        redisFree(x->c);
        x->c = NULL;
        if (rc != MAPQ_EREDIS)
            return rc;
    }
    return rc;
}

/* Whether x was given store st (--store). */
static bool
given(const struct mapq_xfer *x, const struct mapq_store *st)
{
    size_t i;

    for (i = 0; i < x->nstores; i++)
        if (mapq_store_equal(&x->stores[i], st))
            return true;
    return false;
}

/* Whether a store x was given holds uri (path: its file path, or NULL
 * for an s3:// URI). */
static bool
may_read(const struct mapq_xfer *x, const char *uri, const char *path)
{
    size_t i;

    for (i = 0; i < x->nstores; i++)
        if (path != NULL ? mapq_store_dir_has(&x->stores[i], path)
                         : mapq_store_s3_has(&x->stores[i], uri))
            return true;
    return false;
}

/* Fetches ref's blob to dest: from Redis, from a shared directory or a
 * bucket the agent was given, or from an http(s):// URL. */
static enum mapq_err
get_blob(struct mapq_xfer *x, const struct mapq_blob_ref *ref, const char *dest,
         char *err)
{
    char path[MAPQ_BLOB_URI_MAX + 1], hex[MAPQ_BLOB_HEX_LEN + 1];
    int64_t size;

    if (mapq_http_get_is_url(ref->uri))
        return mapq_http_get(ref->uri, NULL, dest, ref, hex, &size, err);
    if (mapq_s3_is_uri(ref->uri)) {
        if (!may_read(x, ref->uri, NULL))
            return mapq_err_set(err, MAPQ_EINVAL,
                                "'%.*s' is in none of this agent's stores "
                                "(--store)",
                                (int)strcspn(ref->uri, "#"), ref->uri);
        return mapq_s3_get(ref, dest, err);
    }
    if (!mapq_store_uri_path(ref->uri, path, sizeof(path)))
        return blob_call(x, ref, NULL, dest, 0, NULL, err);
    if (!may_read(x, ref->uri, path))
        return mapq_err_set(err, MAPQ_EINVAL,
                            "'%s' is in none of this agent's stores (--store)",
                            path);
    return mapq_store_dir_get(ref, dest, err);
}

/* Fetches ref's blob to dest through the cache: a miss is fetched into it
 * first, then dest is a hard link to the entry, or a copy of it. */
static enum mapq_err
get_cached(struct mapq_xfer *x, const struct mapq_blob_ref *ref,
           const char *dest, char *err)
{
    enum mapq_err rc = MAPQ_OK;
    struct stat st;
    char *path;
    bool found;
    int e;

    if (!is_hex(ref->sha256))
        return mapq_err_set(err, MAPQ_EINVAL, "bad sha256 '%.64s'",
                            ref->sha256);
    path = mapq_xasprintf("%s/%s", x->cache_dir, ref->sha256);
    found = lstat(path, &st) == 0 && S_ISREG(st.st_mode);
    if (found && st.st_size == ref->size) {
        /* A hit: renewed in the least recently used order. */
        utimensat(AT_FDCWD, path, NULL, 0);
    } else {
        if (found && unlink(path) == 0)
            x->total -= st.st_size;
        rc = get_blob(x, ref, path, err);
        if (rc != MAPQ_OK)
            goto out_free;
        /* Read-only guards the entry against writes through a link. */
        chmod(path, 0444);
        x->total += ref->size;
        if (x->total > x->cache_max)
            evict(x, ref->sha256);
    }
    /* A new name, never a write into the file there, which may be a link
     * to another entry. */
    unlink(dest);
    if (link(path, dest) != 0) {
        e = copy_file(path, dest);
        if (e != 0)
            rc = mapq_err_set(err, MAPQ_EIO, "cannot copy '%s' to '%s': %s",
                              path, dest, strerror(e));
    }
out_free:
    free(path);
    return rc;
}

/* Stores the file at path in req's store, filling ref; its URI keeps
 * name (NULL: none). */
static enum mapq_err
put_blob(struct mapq_xfer *x, struct mapq_xfer_req *req, const char *path,
         const char *name, struct mapq_blob_ref *ref, char *err)
{
    enum mapq_err rc;

    if (req->to.kind != MAPQ_STORE_REDIS && !given(x, &req->to)) {
        char uri[MAPQ_STORE_URI_MAX + 1];

        mapq_store_format(&req->to, uri, sizeof(uri));
        return mapq_err_set(err, MAPQ_EINVAL,
                            "this agent was not given --store %s", uri);
    }
    if (req->to.kind == MAPQ_STORE_DIR)
        return mapq_store_dir_put(&req->to, path, name, ref, err);
    if (req->to.kind == MAPQ_STORE_S3)
        return mapq_s3_put(&req->to, path, name, ref, err);
    rc = blob_call(x, NULL, ref, path, req->max, req->holder, err);
    if (rc != MAPQ_OK)
        return rc;
    if (name != NULL)
        mapq_blob_uri_named(ref->sha256, name, ref->uri, sizeof(ref->uri));
    mapq_blob_held_add(&req->held, ref->sha256);
    return MAPQ_OK;
}

/* A directory's blobs go through the same calls as a file's, one at a
 * time; a request given up stops between two of them. */
struct dir_io {
    struct mapq_xfer *x;
    struct mapq_xfer_req *req;
};

static bool
given_up(const struct dir_io *d, char *err)
{
    bool drop;

    pthread_mutex_lock(&d->x->mu);
    drop = d->req->cancelled || d->x->stopping;
    pthread_mutex_unlock(&d->x->mu);
    if (drop)
        mapq_err_set(err, MAPQ_EIO, "given up");
    return drop;
}

static enum mapq_err
dir_put(void *arg, const char *path, const char *name,
        struct mapq_blob_ref *ref, char *err)
{
    struct dir_io *d = arg;

    if (given_up(d, err))
        return MAPQ_EIO;
    return put_blob(d->x, d->req, path, name, ref, err);
}

static enum mapq_err
dir_get(void *arg, const struct mapq_blob_ref *ref, const char *dest, char *err)
{
    struct dir_io *d = arg;

    if (given_up(d, err))
        return MAPQ_EIO;
    if (d->x->cache_dir != NULL)
        return get_cached(d->x, ref, dest, err);
    return get_blob(d->x, ref, dest, err);
}

/* Stores item it, or fetches it through the cache or not; reason says why
 * it failed. */
static enum mapq_err
work_item(struct mapq_xfer *x, struct mapq_xfer_req *req,
          struct mapq_xfer_item *it, char *reason)
{
    struct dir_io d = {x, req};
    const struct mapq_dirval_io io = {dir_put, dir_get, &d};
    const char *slash = strrchr(it->dest, '/');
    const char *name = slash != NULL ? slash + 1 : it->dest;

    if (it->dir && req->store)
        return mapq_dirval_put(&io, it->dest, name, &it->ref, &it->files,
                               reason);
    if (it->dir)
        return mapq_dirval_get(&io, &it->ref, it->dest, reason);
    if (req->store)
        return put_blob(x, req, it->dest, name, &it->ref, reason);
    if (x->cache_dir != NULL)
        return get_cached(x, &it->ref, it->dest, reason);
    return get_blob(x, &it->ref, it->dest, reason);
}

/* Works through req's items in order, stopping at the first failure, or
 * before the next item once req is cancelled or the module stopping. */
static void
work(struct mapq_xfer *x, struct mapq_xfer_req *req)
{
    struct mapq_xfer_item *it;
    char reason[MAPQ_ERR_LEN], label[MAPQ_BLOB_URI_MAX + 1];
    bool drop;
    size_t i;

    for (i = 0; i < req->n; i++) {
        pthread_mutex_lock(&x->mu);
        drop = req->cancelled || x->stopping;
        pthread_mutex_unlock(&x->mu);
        if (drop)
            return;
        it = &req->items[i];
        memcpy(label, it->ref.uri, sizeof(label));
        req->rc = work_item(x, req, it, reason);
        if (req->rc != MAPQ_OK) {
            mapq_err_set(req->err, req->rc, "cannot %s %s: %s",
                         req->store ? "store" : "fetch", label, reason);
            return;
        }
    }
}

static void *
run(void *arg)
{
    struct mapq_xfer *x = arg;
    struct mapq_xfer_req *req;
    bool wake;

    if (x->cache_dir != NULL)
        evict(x, NULL);
    pthread_mutex_lock(&x->mu);
    while (!x->stopping) {
        req = TAILQ_FIRST(&x->queue);
        if (req == NULL) {
            pthread_cond_wait(&x->cv, &x->mu);
            continue;
        }
        TAILQ_REMOVE(&x->queue, req, entry);
        req->state = REQ_RUNNING;
        pthread_mutex_unlock(&x->mu);
        work(x, req);
        pthread_mutex_lock(&x->mu);
        wake = TAILQ_EMPTY(&x->done);
        req->state = REQ_DONE;
        TAILQ_INSERT_TAIL(&x->done, req, entry);
        pthread_mutex_unlock(&x->mu);
        /* A full pipe already holds a wake-up. */
        if (wake && write(x->pipe[1], "", 1) < 0)
            mapq_assert(errno == EAGAIN);
        pthread_mutex_lock(&x->mu);
    }
    pthread_mutex_unlock(&x->mu);
    if (x->c != NULL)
        redisFree(x->c);
    return NULL;
}

/* Frees x once the thread is joined (or never started) and no callback of
 * it is running. */
static void
destroy(struct mapq_xfer *x)
{
    struct mapq_xfer_req *req;

    TAILQ_CONCAT(&x->queue, &x->done, entry);
    for (req = TAILQ_FIRST(&x->queue); req != NULL;
         req = TAILQ_FIRST(&x->queue)) {
        TAILQ_REMOVE(&x->queue, req, entry);
        req_free(req);
    }
    if (x->ev != NULL)
        event_free(x->ev);
    if (x->pipe[0] >= 0) {
        close(x->pipe[0]);
        close(x->pipe[1]);
    }
    pthread_cond_destroy(&x->cv);
    pthread_mutex_destroy(&x->mu);
    free(x->cache_dir);
    free(x->stores);
    free(x->ns);
    free(x);
}

/* The thread finished requests: report them, then free them. */
static void
xfer_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_xfer *x = arg;
    struct mapq_xfer_req *req;
    struct req_list batch;
    char buf[64];

    (void)what;
    while (read(fd, buf, sizeof(buf)) > 0)
        ;
    TAILQ_INIT(&batch);
    pthread_mutex_lock(&x->mu);
    TAILQ_CONCAT(&batch, &x->done, entry);
    pthread_mutex_unlock(&x->mu);
    /* A done callback may cancel the requests of this batch or free x. */
    x->delivering = true;
    for (req = TAILQ_FIRST(&batch); req != NULL; req = TAILQ_FIRST(&batch)) {
        TAILQ_REMOVE(&batch, req, entry);
        if (!req->cancelled && !x->closing)
            req->done(req->rc, req->err, req->items, req->n,
                      req->store ? &req->held : NULL, req->arg);
        req_free(req);
    }
    x->delivering = false;
    if (x->closing)
        destroy(x);
}

struct mapq_xfer *
mapq_xfer_new(struct event_base *base, const struct mapq_redis_url *url,
              const char *ns, const struct mapq_store *stores, size_t nstores,
              const char *cache_dir, int64_t cache_max, char *err)
{
    struct mapq_xfer *x = mapq_xcalloc(1, sizeof(*x));
    sigset_t all, old;
    struct stat st;
    int e;

    x->url = *url;
    x->ns = mapq_xstrdup(ns);
    if (nstores > 0) {
        x->stores = mapq_xcalloc(nstores, sizeof(*x->stores));
        memcpy(x->stores, stores, nstores * sizeof(*x->stores));
        x->nstores = nstores;
    }
    x->cache_dir = cache_dir != NULL ? mapq_xstrdup(cache_dir) : NULL;
    x->cache_max = cache_max;
    x->pipe[0] = x->pipe[1] = -1;
    TAILQ_INIT(&x->queue);
    TAILQ_INIT(&x->done);
    pthread_mutex_init(&x->mu, NULL);
    pthread_cond_init(&x->cv, NULL);
    if (cache_dir != NULL &&
        ((mkdir(cache_dir, 0700) != 0 && errno != EEXIST) ||
         stat(cache_dir, &st) != 0)) {
        mapq_err_set(err, MAPQ_EIO, "cannot create file cache '%s': %s",
                     cache_dir, strerror(errno));
        goto out_destroy;
    }
    if (cache_dir != NULL && !S_ISDIR(st.st_mode)) {
        mapq_err_set(err, MAPQ_EINVAL,
                     "file cache '%s' exists and is not a directory",
                     cache_dir);
        goto out_destroy;
    }
    if (pipe2(x->pipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        mapq_err_set(err, MAPQ_EIO, "cannot create a pipe: %s",
                     strerror(errno));
        goto out_destroy;
    }
    x->ev = event_new(base, x->pipe[0], EV_READ | EV_PERSIST, xfer_wake_cb, x);
    if (x->ev == NULL || event_add(x->ev, NULL) != 0) {
        mapq_err_set(err, MAPQ_EIO, "cannot watch the transfer pipe");
        goto out_destroy;
    }
    /* Signals stay the loop's: the thread blocks them all. */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    e = pthread_create(&x->thread, NULL, run, x);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (e != 0) {
        mapq_err_set(err, MAPQ_EIO, "cannot start the transfer thread: %s",
                     strerror(e));
        goto out_destroy;
    }
    return x;

out_destroy:
    destroy(x);
    return NULL;
}

/* A new request of the n items (owned), queued for the thread. */
static struct mapq_xfer_req *
enqueue(struct mapq_xfer *x, struct mapq_xfer_item *items, size_t n,
        const struct mapq_store *to, const char *holder, int64_t max,
        mapq_xfer_done_fn *done, void *arg)
{
    struct mapq_xfer_req *req = mapq_xcalloc(1, sizeof(*req));

    req->x = x;
    req->items = items;
    req->n = n;
    req->store = to != NULL;
    if (to != NULL)
        req->to = *to;
    req->holder = holder != NULL ? mapq_xstrdup(holder) : NULL;
    mapq_buf_init(&req->held, 0);
    req->max = max;
    req->done = done;
    req->arg = arg;
    pthread_mutex_lock(&x->mu);
    req->state = REQ_QUEUED;
    TAILQ_INSERT_TAIL(&x->queue, req, entry);
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
    return req;
}

struct mapq_xfer_req *
mapq_xfer_fetch(struct mapq_xfer *x, struct mapq_xfer_item *items, size_t n,
                mapq_xfer_done_fn *done, void *arg)
{
    return enqueue(x, items, n, NULL, NULL, 0, done, arg);
}

struct mapq_xfer_req *
mapq_xfer_store(struct mapq_xfer *x, const struct mapq_store *store,
                const char *holder, struct mapq_xfer_item *items, size_t n,
                int64_t max, mapq_xfer_done_fn *done, void *arg)
{
    mapq_assert(holder != NULL);
    return enqueue(x, items, n, store, holder, max, done, arg);
}

void
mapq_xfer_cancel(struct mapq_xfer_req *req)
{
    struct mapq_xfer *x;
    bool queued;

    if (req == NULL)
        return;
    x = req->x;
    pthread_mutex_lock(&x->mu);
    queued = req->state == REQ_QUEUED;
    if (queued)
        TAILQ_REMOVE(&x->queue, req, entry);
    else
        req->cancelled = true;
    pthread_mutex_unlock(&x->mu);
    if (queued)
        req_free(req);
}

void
mapq_xfer_free(struct mapq_xfer *x)
{
    if (x == NULL)
        return;
    pthread_mutex_lock(&x->mu);
    x->stopping = true;
    pthread_cond_signal(&x->cv);
    pthread_mutex_unlock(&x->mu);
    pthread_join(x->thread, NULL);
    if (x->delivering)
        x->closing = true;
    else
        destroy(x);
}
