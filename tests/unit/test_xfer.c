/*
 * test_xfer.c - the agent's transfer thread (agent/mapq_xfer.c) against a
 * real redis-server: fetches of blobs to local paths reported on an
 * event loop, the content cache (hits are hard links, least recently used
 * entries evicted past the bound, leftovers swept at start), cancelling,
 * reconnecting, and freeing with requests queued or from a done callback.
 *
 * fixture_redis.c starts the group's redis-server and gives each test a
 * namespace of its own; every wait is bounded by a 10 s timer.
 */
#include "mapq_test.h"

#include <event2/event.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fixture_redis.h"
#include "mapq_alloc.h"
#include "mapq_blob.h"
#include "mapq_fs.h"
#include "mapq_hex.h"
#include "mapq_keys.h"
#include "mapq_redis_url.h"
#include "mapq_store.h"
#include "mapq_xfer.h"

#define WAIT_S 10

struct t {
    void *fx; /* fixture_redis's state: a struct fx */
    struct event_base *base;
    struct event *timer;
    struct mapq_redis_url url;
    char dir[64];       /* mkdtemp: src/, out/ and cache/ below */
    char shm[64];       /* mkdtemp under /dev/shm, or "" */
    char path[16][256]; /* rotating buffers of at() */
    int next_path;
    struct mapq_xfer *x;
    int ndone;                   /* calls of record_done */
    struct mapq_blob_ref got[4]; /* the refs a store gave back */
    size_t ngot;
    char held[4][MAPQ_BLOB_HEX_LEN + 1]; /* the blobs a store held */
    long nheld;                          /* how many; -1: done got NULL */
    enum mapq_err rc;
    char err[MAPQ_ERR_LEN];
    int stray; /* calls of a done that must not run */
    bool timed_out;
    bool free_in_done;
    struct mapq_store stores[1]; /* the shared directories x is given */
    size_t nstores;
};

static int
setup(void **state)
{
    struct t *t = mapq_xcalloc(1, sizeof(*t));
    char err[MAPQ_ERR_LEN], sub[128];

    *state = t;
    if (fx_setup(&t->fx) != 0)
        return -1;
    if (mapq_redis_url_parse(fx_url(), &t->url, err) != MAPQ_OK)
        return -1;
    t->base = event_base_new();
    snprintf(t->dir, sizeof(t->dir), "/tmp/mapq-test-xfer-XXXXXX");
    if (t->base == NULL || mkdtemp(t->dir) == NULL)
        return -1;
    snprintf(sub, sizeof(sub), "%s/src", t->dir);
    if (mkdir(sub, 0700) != 0)
        return -1;
    snprintf(sub, sizeof(sub), "%s/out", t->dir);
    return mkdir(sub, 0700);
}

static int
teardown(void **state)
{
    struct t *t = *state;

    mapq_xfer_free(t->x);
    if (t->timer != NULL)
        event_free(t->timer);
    if (t->base != NULL)
        event_base_free(t->base);
    if (t->dir[0] != '\0')
        mapq_fs_rmtree(t->dir);
    if (t->shm[0] != '\0')
        mapq_fs_rmtree(t->shm);
    if (t->fx != NULL)
        fx_teardown(&t->fx);
    free(t);
    return 0;
}

/* "<dir>/<rel>", in one of 16 rotating buffers. */
static const char *
at(struct t *t, const char *rel)
{
    char *p = t->path[t->next_path++ % 16];

    snprintf(p, sizeof(t->path[0]), "%s/%s", t->dir, rel);
    return p;
}

/* The cache file of ref. */
static const char *
cached(struct t *t, const struct mapq_blob_ref *ref)
{
    char rel[128];

    snprintf(rel, sizeof(rel), "cache/%s", ref->sha256);
    return at(t, rel);
}

static void
write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
}

/* Stores len bytes of data as a blob of the test's namespace. */
static void
put(struct t *t, const char *name, const char *data, size_t len,
    struct mapq_blob_ref *ref)
{
    struct fx *f = t->fx;
    char rel[64], err[MAPQ_ERR_LEN];
    const char *path;

    snprintf(rel, sizeof(rel), "src/%s", name);
    path = at(t, rel);
    write_file(path, data, len);
    assert_int_equal(mapq_blob_put_file(f->c, f->ns, path,
                                        MAPQ_BLOB_MAX_DEFAULT, "x:" EXEC, 0,
                                        ref, err),
                     MAPQ_OK);
}

static void
assert_file(const char *path, const char *data, size_t len)
{
    char *buf = mapq_xmalloc(len + 1);
    int fd = open(path, O_RDONLY);
    ssize_t r;

    assert_true(fd >= 0);
    r = read(fd, buf, len + 1);
    close(fd);
    assert_int_equal(r, (ssize_t)len);
    assert_memory_equal(buf, data, len);
    free(buf);
}

static bool
exists(const char *path)
{
    struct stat st;

    return lstat(path, &st) == 0;
}

/* Sets the mtime of path to secs seconds ago. */
static void
age(const char *path, time_t secs)
{
    struct timespec ts[2];

    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= secs;
    ts[1] = ts[0];
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void
record_done(enum mapq_err rc, const char *err,
            const struct mapq_xfer_item *items, size_t n,
            const struct mapq_buf *held, void *arg)
{
    struct t *t = arg;
    long i;

    t->ndone++;
    t->nheld = held != NULL ? (long)(held->len / MAPQ_BLOB_RAW_LEN) : -1;
    for (i = 0; i < t->nheld && i < 4; i++)
        mapq_hex_encode((const unsigned char *)held->data +
                            i * MAPQ_BLOB_RAW_LEN,
                        MAPQ_BLOB_RAW_LEN, t->held[i]);
    for (t->ngot = 0; t->ngot < n && t->ngot < 4; t->ngot++)
        t->got[t->ngot] = items[t->ngot].ref;
    t->rc = rc;
    snprintf(t->err, sizeof(t->err), "%s", err);
    if (t->free_in_done) {
        mapq_xfer_free(t->x);
        t->x = NULL;
    }
}

static void
stray_done(enum mapq_err rc, const char *err,
           const struct mapq_xfer_item *items, size_t n,
           const struct mapq_buf *held, void *arg)
{
    struct t *t = arg;

    (void)held;
    (void)rc;
    (void)err;
    (void)items;
    (void)n;
    t->stray++;
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct t *t = arg;

    (void)fd;
    (void)what;
    t->timed_out = true;
}

/* Runs the loop until record_done ran want times in all, at most WAIT_S. */
static void
wait_done(struct t *t, int want)
{
    struct timeval tv = {WAIT_S, 0};

    if (t->timer == NULL)
        t->timer = evtimer_new(t->base, timeout_cb, t);
    t->timed_out = false;
    evtimer_add(t->timer, &tv);
    while (t->ndone < want && !t->timed_out)
        event_base_loop(t->base, EVLOOP_ONCE);
    evtimer_del(t->timer);
    assert_false(t->timed_out);
}

static void
start(struct t *t, bool cache, int64_t max)
{
    struct fx *f = t->fx;
    char err[MAPQ_ERR_LEN];

    t->x = mapq_xfer_new(t->base, &t->url, f->ns, t->stores, t->nstores,
                         cache ? at(t, "cache") : NULL, max, err);
    assert_non_null(t->x);
}

/* Queues the fetch of refs[0..n) to out/<names[i]>. */
static struct mapq_xfer_req *
fetch(struct t *t, const struct mapq_blob_ref *const *refs,
      const char *const *names, size_t n, mapq_xfer_done_fn *done)
{
    struct mapq_xfer_item *items = mapq_xcalloc(n, sizeof(*items));
    char rel[64];
    size_t i;

    for (i = 0; i < n; i++) {
        items[i].ref = *refs[i];
        snprintf(rel, sizeof(rel), "out/%s", names[i]);
        items[i].dest = mapq_xstrdup(at(t, rel));
    }
    return mapq_xfer_fetch(t->x, items, n, done, t);
}

/* Fetches ref to out/name and waits for it to succeed. */
static void
fetch_one(struct t *t, const struct mapq_blob_ref *ref, const char *name)
{
    fetch(t, &ref, &name, 1, record_done);
    wait_done(t, t->ndone + 1);
    assert_int_equal(t->rc, MAPQ_OK);
    assert_string_equal(t->err, "");
}

static void
test_xfer_fetches_items(void **state)
{
    struct t *t = *state;
    static const char a[] = "alpha, fetched twice\n";
    size_t blen = MAPQ_BLOB_PIECE + 1000, i;
    char *b = mapq_xmalloc(blen);
    struct mapq_blob_ref ra, rb;
    const struct mapq_blob_ref *refs[] = {&ra, &rb, &ra};
    const char *names[] = {"a1", "b", "a2"};

    /* Over one GETRANGE piece, with NUL bytes. */
    for (i = 0; i < blen; i++)
        b[i] = (char)(i * 7919 % 251);
    put(t, "a", a, sizeof(a) - 1, &ra);
    put(t, "b", b, blen, &rb);
    start(t, false, 0);
    fetch(t, refs, names, 3, record_done);
    wait_done(t, 1);
    assert_int_equal(t->rc, MAPQ_OK);
    assert_file(at(t, "out/a1"), a, sizeof(a) - 1);
    assert_file(at(t, "out/a2"), a, sizeof(a) - 1);
    assert_file(at(t, "out/b"), b, blen);
    free(b);
}

static void
test_xfer_cache_hit_is_a_link(void **state)
{
    struct t *t = *state;
    struct fx *f = t->fx;
    static const char a[] = "cached content";
    struct mapq_blob_ref ra;
    struct stat sc, sd;
    char *key;

    put(t, "a", a, sizeof(a) - 1, &ra);
    start(t, true, 1 << 20);
    fetch_one(t, &ra, "one");
    /* Gone from the store: only the cache can serve it now. */
    key = mapq_key_blob(f->ns, ra.sha256);
    assert_int_equal(fx_integer(f, "DEL", key, NULL), 1);
    free(key);
    /* An existing dest is replaced by the link. */
    write_file(at(t, "out/two"), "old", 3);
    fetch_one(t, &ra, "two");
    assert_file(at(t, "out/two"), a, sizeof(a) - 1);
    assert_int_equal(stat(cached(t, &ra), &sc), 0);
    assert_int_equal(stat(at(t, "out/two"), &sd), 0);
    assert_int_equal(sd.st_ino, sc.st_ino);
    assert_int_equal(sc.st_mode & 0777, 0444);
    assert_int_equal(stat(at(t, "cache"), &sc), 0);
    assert_int_equal(sc.st_mode & 0777, 0700);
}

static void
test_xfer_cache_copies_across_file_systems(void **state)
{
    struct t *t = *state;
    static const char a[] = "copied to another file system";
    struct mapq_xfer_item *item;
    struct mapq_blob_ref ra;
    struct stat sc, sd;
    char dest[128];

    if (stat("/dev/shm", &sd) != 0 || stat(t->dir, &sc) != 0 ||
        sd.st_dev == sc.st_dev)
        skip();
    snprintf(t->shm, sizeof(t->shm), "/dev/shm/mapq-test-xfer-XXXXXX");
    assert_non_null(mkdtemp(t->shm));
    snprintf(dest, sizeof(dest), "%s/a", t->shm);
    put(t, "a", a, sizeof(a) - 1, &ra);
    start(t, true, 1 << 20);
    /* link(2) fails with EXDEV: dest is a copy. */
    item = mapq_xcalloc(1, sizeof(*item));
    item->ref = ra;
    item->dest = mapq_xstrdup(dest);
    mapq_xfer_fetch(t->x, item, 1, record_done, t);
    wait_done(t, 1);
    assert_int_equal(t->rc, MAPQ_OK);
    assert_file(dest, a, sizeof(a) - 1);
    assert_int_equal(stat(dest, &sd), 0);
    assert_int_equal(sd.st_mode & 0777, 0644);
    assert_int_equal(sd.st_nlink, 1);
    assert_true(exists(cached(t, &ra)));
}

static void
test_xfer_missing_blob(void **state)
{
    struct t *t = *state;
    static const char a[] = "present", gone[] = "never stored";
    struct mapq_blob_ref ra, rg;
    const struct mapq_blob_ref *refs[] = {&ra, &rg};
    const char *names[] = {"a", "gone"};
    char err[MAPQ_ERR_LEN];

    put(t, "a", a, sizeof(a) - 1, &ra);
    write_file(at(t, "src/gone"), gone, sizeof(gone) - 1);
    assert_int_equal(
        mapq_blob_hash_file(at(t, "src/gone"), rg.sha256, &rg.size, err),
        MAPQ_OK);
    mapq_blob_uri(rg.sha256, rg.uri, sizeof(rg.uri));
    start(t, true, 1 << 20);
    fetch(t, refs, names, 2, record_done);
    wait_done(t, 1);
    assert_int_equal(t->rc, MAPQ_ENOENT);
    assert_int_equal(strncmp(t->err, "cannot fetch ", 13), 0);
    assert_non_null(strstr(t->err, rg.uri));
    assert_file(at(t, "out/a"), a, sizeof(a) - 1);
    assert_false(exists(at(t, "out/gone")));
    assert_false(exists(cached(t, &rg)));
}

static void
test_xfer_cannot_connect(void **state)
{
    struct t *t = *state;
    static const char a[] = "unreachable";
    struct mapq_blob_ref ra;
    const struct mapq_blob_ref *ref = &ra;
    const char *name = "a";
    char err[MAPQ_ERR_LEN];

    put(t, "a", a, sizeof(a) - 1, &ra);
    assert_int_equal(
        mapq_redis_url_parse("unix:///nonexistent/redis.sock", &t->url, err),
        MAPQ_OK);
    start(t, false, 0);
    fetch(t, &ref, &name, 1, record_done);
    wait_done(t, 1);
    assert_int_equal(t->rc, MAPQ_EREDIS);
    assert_non_null(strstr(t->err, ra.uri));
    assert_false(exists(at(t, "out/a")));
}

static void
test_xfer_reconnects_once(void **state)
{
    struct t *t = *state;
    struct fx *f = t->fx;
    static const char a[] = "first", b[] = "after the kill";
    struct mapq_blob_ref ra, rb;

    /* The kill below reaches every client of the server: only ours. */
    if (getenv("MAPQ_TEST_REDIS_URL") != NULL)
        skip();
    put(t, "a", a, sizeof(a) - 1, &ra);
    put(t, "b", b, sizeof(b) - 1, &rb);
    start(t, false, 0);
    fetch_one(t, &ra, "a");
    /* Closes the thread's connection (CLIENT KILL skips the caller). */
    assert_true(fx_integer(f, "CLIENT", "KILL", "TYPE", "normal", NULL) >= 1);
    fetch_one(t, &rb, "b");
    assert_file(at(t, "out/b"), b, sizeof(b) - 1);
}

static void
test_xfer_cancel(void **state)
{
    struct t *t = *state;
    static const char a[] = "cancel me";
    struct mapq_blob_ref ra;
    const struct mapq_blob_ref *ref = &ra;
    const char *c1 = "c1", *c3 = "c3", *c4 = "c4";
    struct mapq_xfer_req *r3;
    int i;

    put(t, "a", a, sizeof(a) - 1, &ra);
    start(t, false, 0);
    mapq_xfer_cancel(NULL);
    /* Cancelled while queued or running. */
    mapq_xfer_cancel(fetch(t, &ref, &c1, 1, stray_done));
    fetch_one(t, &ra, "c2");
    /* Cancelled once finished, before the loop reported it: c4's file
     * exists only after c3 is done, the queue being in order. */
    r3 = fetch(t, &ref, &c3, 1, stray_done);
    fetch(t, &ref, &c4, 1, record_done);
    for (i = 0; i < 1000 && !exists(at(t, "out/c4")); i++)
        fx_pause_ms(10);
    assert_true(exists(at(t, "out/c4")));
    mapq_xfer_cancel(r3);
    wait_done(t, 2);
    assert_int_equal(t->stray, 0);
    assert_int_equal(t->rc, MAPQ_OK);
}

static void
test_xfer_cache_evicts_least_recently_used(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ra, rb, rc, rd;
    struct stat st;
    char big[30];

    put(t, "a", "aaaaaaaaaa", 10, &ra);
    put(t, "b", "bbbbbbbbbb", 10, &rb);
    put(t, "c", "cccccccccc", 10, &rc);
    memset(big, 'd', sizeof(big));
    put(t, "d", big, sizeof(big), &rd);
    start(t, true, 25);
    fetch_one(t, &ra, "a1");
    age(cached(t, &ra), 300);
    fetch_one(t, &rb, "b");
    age(cached(t, &rb), 200);
    /* A hit renews a: b is now the least recently used. */
    fetch_one(t, &ra, "a2");
    fetch_one(t, &rc, "c");
    assert_true(exists(cached(t, &ra)));
    assert_false(exists(cached(t, &rb)));
    assert_true(exists(cached(t, &rc)));
    /* An evicted entry's links stay. */
    assert_file(at(t, "out/b"), "bbbbbbbbbb", 10);
    /* Over the bound alone, the newest stays; everything else goes. */
    fetch_one(t, &rd, "d");
    assert_false(exists(cached(t, &ra)));
    assert_false(exists(cached(t, &rc)));
    assert_int_equal(stat(cached(t, &rd), &st), 0);
    assert_int_equal(st.st_size, 30);
}

static void
test_xfer_cache_sweeps_at_start(void **state)
{
    struct t *t = *state;
    struct mapq_blob_ref ra, rb;
    struct stat st;

    put(t, "a", "aaaaaaaaaa", 10, &ra);
    put(t, "b", "bbbbbbbbbb", 10, &rb);
    assert_int_equal(mkdir(at(t, "cache"), 0700), 0);
    write_file(at(t, "cache/leftover.tmp.1"), "x", 1);
    write_file(cached(t, &ra), "aaaaaaaaaa", 10);
    age(cached(t, &ra), 100);
    /* The wrong size: removed and fetched again. */
    write_file(cached(t, &rb), "bb", 2);
    start(t, true, 15);
    fetch_one(t, &rb, "b");
    assert_file(at(t, "out/b"), "bbbbbbbbbb", 10);
    assert_false(exists(at(t, "cache/leftover.tmp.1")));
    assert_false(exists(cached(t, &ra)));
    assert_int_equal(stat(cached(t, &rb), &st), 0);
    assert_int_equal(st.st_size, 10);
}

static void
test_xfer_free_with_requests_queued(void **state)
{
    struct t *t = *state;
    static const char a[] = "queued";
    struct mapq_blob_ref ra;
    const struct mapq_blob_ref *refs[] = {&ra, &ra};
    const char *names[] = {"q1", "q2"};
    int i;

    put(t, "a", a, sizeof(a) - 1, &ra);
    start(t, true, 1 << 20);
    for (i = 0; i < 8; i++)
        fetch(t, refs, names, 2, stray_done);
    mapq_xfer_free(t->x);
    t->x = NULL;
    event_base_loop(t->base, EVLOOP_NONBLOCK);
    assert_int_equal(t->stray, 0);
}

static void
test_xfer_free_in_done(void **state)
{
    struct t *t = *state;
    static const char a[] = "free from the callback";
    struct mapq_blob_ref ra;
    const struct mapq_blob_ref *ref = &ra;
    const char *n1 = "f1", *n2 = "f2", *n3 = "f3";

    put(t, "a", a, sizeof(a) - 1, &ra);
    start(t, false, 0);
    t->free_in_done = true;
    fetch(t, &ref, &n1, 1, record_done);
    fetch(t, &ref, &n2, 1, record_done);
    fetch(t, &ref, &n3, 1, record_done);
    wait_done(t, 1);
    assert_null(t->x);
    /* Nothing of x is left on the loop to report anything. */
    event_base_loop(t->base, EVLOOP_NONBLOCK);
    assert_int_equal(t->ndone, 1);
}

/* Storing: each file becomes a blob whose URI keeps its name, the refs come
 * back with done, and they fetch what was stored; a file over the cap
 * fails, named as its task called it. */
static void
test_xfer_stores_items(void **state)
{
    struct t *t = *state;
    static const char a[] = "stored alpha\n";
    const struct mapq_store redis = {MAPQ_STORE_REDIS, "", ""};
    struct mapq_xfer_item *items = mapq_xcalloc(2, sizeof(*items));
    char want[MAPQ_BLOB_URI_MAX + 1];
    struct mapq_blob_ref ra;
    const struct mapq_blob_ref *refs[] = {&ra};
    const char *names[] = {"back"};
    redisReply *r;

    write_file(at(t, "src/a.png"), a, sizeof(a) - 1);
    write_file(at(t, "src/empty"), "", 0);
    items[0].dest = mapq_xstrdup(at(t, "src/a.png"));
    items[1].dest = mapq_xstrdup(at(t, "src/empty"));
    start(t, false, 0);
    mapq_xfer_store(t->x, &redis, "x:" EXEC, items, 2, MAPQ_BLOB_MAX_DEFAULT,
                    record_done, t);
    wait_done(t, 1);
    assert_int_equal(t->rc, MAPQ_OK);
    assert_int_equal(t->ngot, 2);
    assert_int_equal(t->got[0].size, sizeof(a) - 1);
    /* Both held for the execution, as done is told. */
    assert_int_equal(t->nheld, 2);
    assert_string_equal(t->held[0], t->got[0].sha256);
    assert_string_equal(t->held[1], t->got[1].sha256);
    snprintf(want, sizeof(want), "bh:%s", t->got[1].sha256);
    r = fx_run(t->fx, "ZSCORE", fx_key(t->fx, want), "x:" EXEC, NULL);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_string_equal(r->str, "0"); /* while the execution exists */
    mapq_blob_uri_named(t->got[0].sha256, "a.png", want, sizeof(want));
    assert_string_equal(t->got[0].uri, want);
    assert_int_equal(t->got[1].size, 0);
    ra = t->got[0];
    fetch(t, refs, names, 1, record_done);
    wait_done(t, 2);
    assert_int_equal(t->rc, MAPQ_OK);
    assert_file(at(t, "out/back"), a, sizeof(a) - 1);

    items = mapq_xcalloc(1, sizeof(*items));
    snprintf(items[0].ref.uri, sizeof(items[0].ref.uri), "out/a.png");
    items[0].dest = mapq_xstrdup(at(t, "src/a.png"));
    mapq_xfer_store(t->x, &redis, "x:" EXEC, items, 1, 4, record_done, t);
    wait_done(t, 3);
    assert_int_equal(t->rc, MAPQ_ETOOBIG);
    assert_non_null(strstr(t->err, "cannot store out/a.png: "));
    assert_non_null(strstr(t->err, "over the store's cap of 4 bytes"));
}

/* A shared directory the module was given: a stored file lands there
 * (read-only, its URI keeps its name), is fetched back through the cache
 * under that name's content, and a ref with another hash is refused. A
 * file:// URI outside the given directories is neither read nor written,
 * even with the right hash. */
static void
test_xfer_shared_directory(void **state)
{
    struct t *t = *state;
    static const char a[] = "shared alpha\n";
    struct mapq_xfer_item *items = mapq_xcalloc(1, sizeof(*items));
    const struct mapq_blob_ref *refs[1];
    const char *names[] = {"back.png"};
    struct mapq_store other;
    struct mapq_blob_ref ra, bad;
    char uri[MAPQ_STORE_URI_MAX + 1], path[512], err[MAPQ_ERR_LEN];
    struct stat st;

    mkdir(at(t, "shared"), 0755);
    snprintf(uri, sizeof(uri), "file://%s", at(t, "shared"));
    assert_int_equal(mapq_store_parse(uri, &t->stores[0], err), MAPQ_OK);
    t->nstores = 1;
    write_file(at(t, "src/a.png"), a, sizeof(a) - 1);
    items[0].dest = mapq_xstrdup(at(t, "src/a.png"));
    start(t, true, 1 << 20);
    mapq_xfer_store(t->x, &t->stores[0], "x:" EXEC, items, 1, 4, record_done,
                    t);
    wait_done(t, 1);
    /* The embedded store's cap does not apply to a shared directory. */
    assert_int_equal(t->rc, MAPQ_OK);
    ra = t->got[0];
    snprintf(path, sizeof(path), "%s/sha256/%.2s/%s", at(t, "shared"),
             ra.sha256, ra.sha256);
    snprintf(uri, sizeof(uri), "file://%s#a.png", path);
    assert_string_equal(ra.uri, uri);
    assert_int_equal(ra.size, sizeof(a) - 1);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0444);
    assert_file(path, a, sizeof(a) - 1);

    refs[0] = &ra;
    fetch(t, refs, names, 1, record_done);
    wait_done(t, 2);
    assert_int_equal(t->rc, MAPQ_OK);
    assert_file(at(t, "out/back.png"), a, sizeof(a) - 1);

    bad = ra;
    bad.sha256[0] = bad.sha256[0] == '0' ? '1' : '0';
    refs[0] = &bad;
    fetch(t, refs, names, 1, record_done);
    wait_done(t, 3);
    assert_int_equal(t->rc, MAPQ_EPROTO);
    assert_non_null(strstr(t->err, "does not match its sha256/size"));

    /* A file with its right hash, not in the cache, outside the store. */
    write_file(at(t, "src/b.png"), "beta\n", 5);
    assert_int_equal(
        mapq_blob_hash_file(at(t, "src/b.png"), bad.sha256, &bad.size, err),
        MAPQ_OK);
    snprintf(bad.uri, sizeof(bad.uri), "file://%s", at(t, "src/b.png"));
    refs[0] = &bad;
    fetch(t, refs, names, 1, record_done);
    wait_done(t, 4);
    assert_int_equal(t->rc, MAPQ_EINVAL);
    assert_non_null(strstr(t->err, "is in none of this agent's stores"));

    snprintf(uri, sizeof(uri), "file://%s", at(t, "out"));
    assert_int_equal(mapq_store_parse(uri, &other, err), MAPQ_OK);
    items = mapq_xcalloc(1, sizeof(*items));
    items[0].dest = mapq_xstrdup(at(t, "src/a.png"));
    mapq_xfer_store(t->x, &other, "x:" EXEC, items, 1, 0, record_done, t);
    wait_done(t, 5);
    assert_int_equal(t->rc, MAPQ_EINVAL);
    assert_non_null(strstr(t->err, "was not given --store file://"));
    snprintf(path, sizeof(path), "%s/sha256", at(t, "out"));
    assert_int_not_equal(access(path, F_OK), 0);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_xfer_fetches_items),
        T(test_xfer_stores_items),
        T(test_xfer_shared_directory),
        T(test_xfer_cache_hit_is_a_link),
        T(test_xfer_cache_copies_across_file_systems),
        T(test_xfer_missing_blob),
        T(test_xfer_cannot_connect),
        T(test_xfer_reconnects_once),
        T(test_xfer_cancel),
        T(test_xfer_cache_evicts_least_recently_used),
        T(test_xfer_cache_sweeps_at_start),
        T(test_xfer_free_with_requests_queued),
        T(test_xfer_free_in_done),
    };
#undef T

    return cmocka_run_group_tests_name("xfer", tests, fx_group_setup,
                                       fx_group_teardown);
}
