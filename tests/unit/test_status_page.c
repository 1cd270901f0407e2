/*
 * test_status_page.c - the status page of `mapq scheduler --http` against
 * a real Redis: records, attempt logs and agents written by hand (odd ones
 * included), read through a driver's command connection by the page's
 * refresh, and the JSON of GET /api/status checked member by member.
 *
 * The command line is a program, not a library, so the page's files are
 * compiled into this test, with a stub for the embedded HTML. Each test
 * runs the loop only until what it waits for happened, within a bound.
 */
#include "mapq_test.h"

#include <event2/event.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "../../scheduler/cli/mapq_status_page.c"
#include "../../scheduler/cli/status_snap.c"
#include "fixture_redis.h"
#include "mapq_value.h"

const char mapq_status_page_html[] = "<!doctype html><p>stub</p>";
const size_t mapq_status_page_html_len = sizeof(mapq_status_page_html) - 1;

#define ID1 "aaaaaaaaaaa1"
#define ID2 "aaaaaaaaaaa2"
#define ID3 "aaaaaaaaaaa3"
#define ID4 "aaaaaaaaaaa4"
#define ID5 "aaaaaaaaaaa5"

struct t {
    struct fx *f;
    struct event_base *base;
    struct mapq_driver *d;
    struct mapq_http *http;
    struct mapq_status_page *sp;
    json_t *doc; /* the last GET /api/status */
};

static int
setup(void **state)
{
    struct t *t = mapq_xcalloc(1, sizeof(*t));
    struct mapq_redis_url url;
    char err[MAPQ_ERR_LEN];

    *state = t;
    if (fx_setup((void **)&t->f) != 0 ||
        mapq_redis_url_parse(fx_url(), &url, err) != MAPQ_OK)
        return -1;
    t->base = event_base_new();
    t->d = mapq_driver_new(t->base, &url, t->f->ns, MAPQ_OWNER_LEASE_MS);
    t->http = mapq_http_new(t->base, "127.0.0.1:0", err);
    if (t->http == NULL)
        return -1;
    t->sp = mapq_status_page_new(t->base, t->http, t->d, t->f->ns);
    return 0;
}

static int
teardown(void **state)
{
    struct t *t = *state;

    mapq_driver_free(t->d);
    mapq_status_page_free(t->sp);
    mapq_http_free(t->http);
    if (t->base != NULL)
        event_base_free(t->base);
    json_decref(t->doc);
    fx_teardown((void **)&t->f);
    free(t);
    return 0;
}

/* ---- driving the loop ---------------------------------------------------- */

static bool
conn_ready(struct t *t)
{
    return mapq_redis_ready(mapq_driver_redis(t->d));
}

static bool
refresh_done(struct t *t)
{
    return t->sp->inflight == NULL;
}

static bool
refreshed(struct t *t)
{
    return t->sp->inflight == NULL && t->sp->refreshed_ms >= 0;
}

/* Turns the loop until cond holds, for at most 5 s. */
static void
loop_until(struct t *t, bool (*cond)(struct t *))
{
    struct timespec start, now;
    struct timeval tick = {0, 10000};

    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!cond(t)) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 5)
            fail_msg("the loop did not get there within 5 s");
        event_base_loopexit(t->base, &tick);
        event_base_dispatch(t->base);
    }
}

/* GET /api/status, parsed into t->doc. */
static json_t *
get_status(struct t *t)
{
    struct mapq_buf out = MAPQ_BUF_INIT;
    const char *ctype = NULL;
    json_error_t jerr;

    assert_int_equal(status_api_cb(NULL, &out, &ctype, t->sp), 200);
    assert_string_equal(ctype, "application/json");
    json_decref(t->doc);
    t->doc = json_loadb(out.data, out.len, 0, &jerr);
    if (t->doc == NULL)
        fail_msg("not JSON (%s): %.*s", jerr.text, (int)out.len, out.data);
    mapq_buf_release(&out);
    return t->doc;
}

/* One whole refresh, then the document it gives. */
static json_t *
read_once(struct t *t)
{
    uint64_t before;

    loop_until(t, conn_ready);
    before = t->sp->refreshes;
    refresh_start(t->sp);
    assert_true(t->sp->refreshes == before + 1);
    loop_until(t, refresh_done);
    return get_status(t);
}

/* ---- writing records by hand --------------------------------------------- */

static int64_t
redis_ms(struct t *t)
{
    redisReply *r = fx_run(t->f, "TIME", NULL);

    return st_read_time(r);
}

/* Appends one attempt record to b: kind, phase, error and stderr tail
 * (NULL: absent). */
static void
pack_attempt(struct mapq_buf *b, const char *kind, int phase, const char *e,
             const char *l)
{
    msgpack_packer pk;

    mapq_value_packer_init(&pk, b);
    msgpack_pack_map(&pk, 3 + (e != NULL) + (l != NULL));
    mapq_value_pack_str(&pk, "a");
    msgpack_pack_int(&pk, 1);
    mapq_value_pack_str(&pk, "k");
    mapq_value_pack_str(&pk, kind);
    mapq_value_pack_str(&pk, "p");
    msgpack_pack_int(&pk, phase);
    if (e != NULL) {
        mapq_value_pack_str(&pk, "e");
        mapq_value_pack_str(&pk, e);
    }
    if (l != NULL) {
        mapq_value_pack_str(&pk, "l");
        mapq_value_pack_str(&pk, l);
    }
}

static void
hset_bytes(struct t *t, const char *key, const char *field,
           const struct mapq_buf *b)
{
    redisReply *r =
        redisCommand(t->f->c, "HSET %s %s %b", key, field, b->data, b->len);
    int type = r != NULL ? r->type : -1;

    if (r != NULL)
        freeReplyObject(r);
    assert_int_equal(type, REDIS_REPLY_INTEGER);
}

/* node k's p:<k> in execution id. */
static void
progress(struct t *t, const char *id, int k, const char *state, uint64_t total,
         const uint64_t counts[MAPQ_PHASE_COUNT])
{
    struct mapq_buf b = MAPQ_BUF_INIT;
    msgpack_packer pk;
    char field[16], key[64];
    int p;

    mapq_value_packer_init(&pk, &b);
    msgpack_pack_array(&pk, 2 + MAPQ_PHASE_COUNT);
    mapq_value_pack_str(&pk, state);
    msgpack_pack_uint64(&pk, total);
    for (p = 0; p < MAPQ_PHASE_COUNT; p++)
        msgpack_pack_uint64(&pk, counts[p]);
    snprintf(field, sizeof(field), "p:%d", k);
    snprintf(key, sizeof(key), "x:%s", id);
    hset_bytes(t, fx_key(t->f, key), field, &b);
    mapq_buf_release(&b);
}

/* Subtask index of node k's attempt log in id: the attempts in b. */
static void
log_of(struct t *t, const char *id, int k, int index, struct mapq_buf *b)
{
    char field[32], key[64];

    snprintf(field, sizeof(field), "%d/%d", k, index);
    snprintf(key, sizeof(key), "log:%s", id);
    hset_bytes(t, fx_key(t->f, key), field, b);
    mapq_buf_reset(b);
}

static void
listed(struct t *t, const char *id, const char *score)
{
    fx_integer(t->f, "ZADD", fx_key(t->f, "execs"), score, id, NULL);
}

/* ---- finding things in the document -------------------------------------- */

static json_t *
exec_of(json_t *doc, const char *id)
{
    json_t *x;
    size_t i;

    json_array_foreach(json_object_get(doc, "executions"), i, x)
    {
        if (strcmp(json_string_value(json_object_get(x, "execution")), id) == 0)
            return x;
    }
    fail_msg("execution %s is not listed", id);
    return NULL;
}

static const char *
str_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_string(v))
        fail_msg("member %s is not a string", key);
    return json_string_value(v);
}

static json_int_t
int_at(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_integer(v))
        fail_msg("member %s is not an integer", key);
    return json_integer_value(v);
}

/* Whether x's problems include what. */
static bool
has_problem(json_t *x, const char *what)
{
    json_t *p;
    size_t i;

    json_array_foreach(json_object_get(x, "problems"), i, p)
    {
        if (strcmp(json_string_value(p), what) == 0)
            return true;
    }
    return false;
}

/* ---- tests --------------------------------------------------------------- */

static void
test_status_page_reads_executions_and_agents(void **state)
{
    struct t *t = *state;
    static const uint64_t sq[MAPQ_PHASE_COUNT] = {0, 0, 0, 1, 0, 0, 2, 1, 0};
    struct mapq_buf b = MAPQ_BUF_INIT;
    char now[32], old[32];
    json_t *doc, *x, *n, *g, *a, *s;

    listed(t, ID1, "1000");
    fx_integer(t->f, "HSET", fx_key(t->f, "x:" ID1), "state", "running", "name",
               "wf1", "created", "1000", "nodes", "2", "node:0", "sq", "node:1",
               "sum", NULL);
    progress(t, ID1, 0, "running", 4, sq);
    pack_attempt(&b, "T", MAPQ_PHASE_SUCCEEDED, NULL, NULL);
    log_of(t, ID1, 0, 0, &b);
    pack_attempt(&b, "T", MAPQ_PHASE_FAILED, "exit status 1", "x\nboom\n");
    log_of(t, ID1, 0, 1, &b);
    /* A retry, then the final failure: the last attempt counts. */
    pack_attempt(&b, "U", MAPQ_PHASE_FAILED, "exit status 2", "other");
    pack_attempt(&b, "T", MAPQ_PHASE_FAILED, "exit status 1", "boom");
    log_of(t, ID1, 0, 2, &b);
    pack_attempt(&b, "T", MAPQ_PHASE_TIMED_OUT, "timed out after 1s", NULL);
    log_of(t, ID1, 0, 3, &b);
    /* A log page holds successes only: passed over, not counted. */
    pack_attempt(&b, "T", MAPQ_PHASE_SUCCEEDED, NULL, NULL);
    pack_attempt(&b, "T", MAPQ_PHASE_SUCCEEDED, NULL, NULL);
    hset_bytes(t, fx_key(t->f, "log:" ID1), "0/p1", &b);
    mapq_buf_reset(&b);
    mapq_buf_release(&b);
    snprintf(now, sizeof(now), "%lld", (long long)redis_ms(t));
    snprintf(old, sizeof(old), "%lld", (long long)redis_ms(t) - 60000);
    fx_integer(t->f, "ZADD", fx_key(t->f, "agents"), now, "ag1", old, "gone",
               NULL);
    fx_integer(t->f, "HSET", fx_key(t->f, "agent:ag1"), "host", "h1", "slots",
               "4", "running", "1", "queues", "default,gpu", "interruptible",
               "1", "cpus", "2500", "mem", "1048576", NULL);
    fx_integer(t->f, "HSET", fx_key(t->f, "agent:gone"), "host", "h2", NULL);

    doc = read_once(t);
    s = json_object_get(doc, "scheduler");
    assert_string_equal(str_at(s, "namespace"), t->f->ns);
    assert_string_equal(str_at(s, "version"), MAPQ_VERSION);
    assert_int_equal(int_at(s, "driving"), 0);
    assert_true(int_at(s, "refreshed_ms") > 0);
    assert_true(json_is_null(json_object_get(s, "redis_error")));

    assert_int_equal(json_array_size(json_object_get(doc, "executions")), 1);
    x = exec_of(doc, ID1);
    assert_string_equal(str_at(x, "workflow"), "wf1");
    assert_string_equal(str_at(x, "status"), "running");
    assert_int_equal(int_at(x, "created_ms"), 1000);
    assert_true(json_is_null(json_object_get(x, "finished_ms")));
    assert_int_equal(int_at(x, "nodes_total"), 2);
    n = json_array_get(json_object_get(x, "nodes"), 0);
    assert_string_equal(str_at(n, "name"), "sq");
    assert_string_equal(str_at(n, "state"), "running");
    assert_int_equal(int_at(n, "total"), 4);
    assert_int_equal(int_at(n, "done"), 4);
    assert_int_equal(int_at(json_object_get(n, "counts"), "failed"), 2);
    assert_int_equal(int_at(json_object_get(n, "counts"), "timed_out"), 1);
    assert_int_equal(int_at(json_object_get(n, "counts"), "succeeded"), 1);
    n = json_array_get(json_object_get(x, "nodes"), 1);
    assert_string_equal(str_at(n, "name"), "sum");
    assert_string_equal(str_at(n, "state"), "waiting");
    assert_int_equal(int_at(n, "total"), 0);

    /* Grouped as the driver words them, most first. */
    assert_int_equal(json_array_size(json_object_get(x, "failures")), 2);
    g = json_array_get(json_object_get(x, "failures"), 0);
    assert_string_equal(str_at(g, "error"), "exit status 1: boom");
    assert_int_equal(int_at(g, "count"), 2);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(g, "nodes"), 0)),
        "sq");
    assert_int_equal(json_array_size(json_object_get(g, "examples")), 2);
    assert_int_equal(
        int_at(json_array_get(json_object_get(g, "examples"), 0), "index"), 1);
    assert_int_equal(
        int_at(json_array_get(json_object_get(g, "examples"), 1), "index"), 2);
    g = json_array_get(json_object_get(x, "failures"), 1);
    assert_string_equal(str_at(g, "error"), "timed out after 1s");
    assert_int_equal(int_at(g, "count"), 1);
    assert_true(json_is_true(
        json_object_get(json_object_get(x, "failures_read"), "complete")));
    assert_int_equal(int_at(json_object_get(x, "failures_read"), "logs"), 4);

    /* The live agent only, and its entry. */
    assert_int_equal(json_array_size(json_object_get(doc, "agents")), 1);
    a = json_array_get(json_object_get(doc, "agents"), 0);
    assert_string_equal(str_at(a, "name"), "ag1");
    assert_string_equal(str_at(a, "host"), "h1");
    assert_int_equal(int_at(a, "slots"), 4);
    assert_int_equal(int_at(a, "running"), 1);
    assert_int_equal(json_array_size(json_object_get(a, "queues")), 2);
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(a, "queues"), 1)),
        "gpu");
    assert_true(json_is_true(json_object_get(a, "interruptible")));
    assert_true(json_real_value(json_object_get(a, "cpus")) == 2.5);
    assert_int_equal(int_at(a, "mem_bytes"), 1048576);
    assert_true(int_at(a, "heartbeat_ms_ago") >= 0 &&
                int_at(a, "heartbeat_ms_ago") < MAPQ_AGENT_LIVE_MS);

    /* It runs: a failure logged since is found by the next pass. */
    pack_attempt(&b, "T", MAPQ_PHASE_FAILED, "exit status 9", NULL);
    log_of(t, ID1, 0, 4, &b);
    mapq_buf_release(&b);
    x = exec_of(read_once(t), ID1);
    assert_int_equal(json_array_size(json_object_get(x, "failures")), 3);
    assert_int_equal(int_at(json_object_get(x, "failures_read"), "logs"), 5);
}

static void
test_status_page_marks_odd_data(void **state)
{
    struct t *t = *state;
    static const uint64_t one_failed[MAPQ_PHASE_COUNT] = {0, 0, 0, 0, 0,
                                                          0, 1, 0, 0};
    char now[32];
    json_t *doc, *x, *n;

    listed(t, "not-an-id", "5");
    listed(t, ID2, "4"); /* no record */
    listed(t, ID3, "3");
    fx_integer(t->f, "HSET", fx_key(t->f, "x:" ID3), "state", "running", "name",
               "<script>alert(1)</script>\xff", "created", "soon", "nodes",
               "many", NULL);
    listed(t, ID4, "2");
    fx_integer(t->f, "HSET", fx_key(t->f, "x:" ID4), "state", "failed", "nodes",
               "2", "node:0", "a", "p:0", "garbage", "p:1", "\x93\x01\x02\x03",
               NULL);
    listed(t, ID5, "1");
    fx_integer(t->f, "HSET", fx_key(t->f, "x:" ID5), "state", "running",
               "nodes", "2", "node:0", "a", NULL); /* node:1 missing */
    progress(t, ID5, 1, "running", 2, one_failed);
    /* A log that is no hash, in an execution with a failure. */
    fx_run(t->f, "SET", fx_key(t->f, "log:" ID5), "junk", NULL);
    snprintf(now, sizeof(now), "%lld", (long long)redis_ms(t));
    fx_integer(t->f, "ZADD", fx_key(t->f, "agents"), now, "ghost", now, "odd",
               NULL);
    fx_integer(t->f, "HSET", fx_key(t->f, "agent:odd"), "host", "h", "slots",
               "lots", NULL);

    doc = read_once(t);
    assert_int_equal(json_array_size(json_object_get(doc, "executions")), 5);
    x = exec_of(doc, "not-an-id");
    assert_true(has_problem(x, "not an execution id: nothing read"));
    assert_true(json_is_null(json_object_get(x, "status")));
    x = exec_of(doc, ID2);
    assert_true(
        has_problem(x, "no record (Redis lost it, or it is not mapq's)"));
    x = exec_of(doc, ID3);
    /* Text from Redis is text: the JSON holds it, bad bytes replaced. */
    assert_string_equal(str_at(x, "workflow"),
                        "<script>alert(1)</script>\xef\xbf\xbd");
    assert_true(has_problem(x, "its created time is not a number"));
    assert_true(has_problem(x, "its node count is not a number"));
    assert_int_equal(json_array_size(json_object_get(x, "nodes")), 0);
    x = exec_of(doc, ID4);
    n = json_array_get(json_object_get(x, "nodes"), 0);
    assert_string_equal(str_at(n, "problem"), "its progress cannot be read");
    assert_string_equal(str_at(n, "state"), "unknown");
    n = json_array_get(json_object_get(x, "nodes"), 1);
    assert_string_equal(str_at(n, "problem"), "its progress cannot be read");
    x = exec_of(doc, ID5);
    n = json_array_get(json_object_get(x, "nodes"), 1);
    assert_string_equal(str_at(n, "problem"), "its name is missing");
    assert_int_equal(int_at(json_object_get(n, "counts"), "failed"), 1);
    assert_string_equal(str_at(json_object_get(x, "failures_read"), "problem"),
                        "its attempt logs cannot be read");
    /* An agent without its entry is gone; odd numbers read as 0. */
    assert_int_equal(json_array_size(json_object_get(doc, "agents")), 1);
    assert_int_equal(
        int_at(json_array_get(json_object_get(doc, "agents"), 0), "slots"), 0);
}

static void
test_status_page_reads_long_logs_in_turns(void **state)
{
    struct t *t = *state;
    static const uint64_t c[MAPQ_PHASE_COUNT] = {0, 0, 0, 597, 0, 0, 3, 0, 0};
    struct mapq_buf b = MAPQ_BUF_INIT;
    char finished[32];
    json_t *x, *g;
    int i, reads;

    listed(t, ID1, "1000");
    snprintf(finished, sizeof(finished), "%lld",
             (long long)redis_ms(t) - 2 * ST_SETTLE_MS);
    fx_integer(t->f, "HSET", fx_key(t->f, "x:" ID1), "state", "failed",
               "created", "1000", "finished", finished, "nodes", "1", "node:0",
               "m", NULL);
    progress(t, ID1, 0, "failed", 600, c);
    /* More fields than Debian's hash-max-listpack-entries (512): a hash
     * table, which HSCAN reads COUNT at a time (a listpack is read whole),
     * as the hash tables the functions make for attempt logs. */
    for (i = 0; i < 600; i++) {
        if (i == 10 || i == 300 || i == 599)
            pack_attempt(&b, "T", MAPQ_PHASE_FAILED, "exit status 3", NULL);
        else
            pack_attempt(&b, "T", MAPQ_PHASE_SUCCEEDED, NULL, NULL);
        log_of(t, ID1, 0, i, &b);
    }
    mapq_buf_release(&b);
    x = exec_of(read_once(t), ID1);
    /* 200 logs a read: a pass of 600 takes several. */
    assert_false(json_is_true(
        json_object_get(json_object_get(x, "failures_read"), "complete")));
    for (reads = 1; reads < 10; reads++) {
        x = exec_of(read_once(t), ID1);
        if (json_is_true(json_object_get(json_object_get(x, "failures_read"),
                                         "complete")))
            break;
    }
    assert_true(reads < 10);
    assert_int_equal(int_at(json_object_get(x, "failures_read"), "logs"), 600);
    g = json_array_get(json_object_get(x, "failures"), 0);
    assert_string_equal(str_at(g, "error"), "exit status 3");
    assert_int_equal(int_at(g, "count"), 3);
    /* It ended long ago: that pass was its last; more passes would have
     * found this one. */
    assert_int_equal(t->sp->nscans, 1);
    assert_true(t->sp->scans[0]->frozen);
    pack_attempt(&b, "T", MAPQ_PHASE_FAILED, "late", NULL);
    log_of(t, ID1, 0, 600, &b);
    mapq_buf_release(&b);
    for (i = 0; i < 5; i++)
        x = exec_of(read_once(t), ID1);
    assert_int_equal(json_array_size(json_object_get(x, "failures")), 1);
    assert_int_equal(int_at(json_object_get(x, "failures_read"), "logs"), 600);
}

static void
test_status_page_reads_only_while_watched(void **state)
{
    struct t *t = *state;
    struct mapq_buf out = MAPQ_BUF_INIT;
    const char *ctype = NULL;

    /* Nobody asked: the connection comes up, nothing is read. */
    loop_until(t, conn_ready);
    assert_false(evtimer_pending(t->sp->timer, NULL));
    assert_int_equal(t->sp->refreshes, 0);
    get_status(t);
    assert_true(json_is_null(
        json_object_get(json_object_get(t->doc, "scheduler"), "refreshed_ms")));
    /* Asking started the timer; its first turn reads at once. */
    assert_true(evtimer_pending(t->sp->timer, NULL));
    loop_until(t, refreshed);
    assert_int_equal(t->sp->refreshes, 1);
    assert_false(json_is_null(json_object_get(
        json_object_get(get_status(t), "scheduler"), "refreshed_ms")));
    /* The page itself counts as asking too. */
    assert_int_equal(status_page_cb(NULL, &out, &ctype, t->sp), 200);
    assert_string_equal(ctype, "text/html; charset=utf-8");
    assert_int_equal(out.len, mapq_status_page_html_len);
    assert_memory_equal(out.data, mapq_status_page_html, out.len);
    mapq_buf_release(&out);
    /* A minute without a request: the next turn stops the timer. */
    t->sp->asked_ms = clock_ms(CLOCK_MONOTONIC) - MAPQ_STATUS_WATCH_MS - 1;
    loop_until(t, refresh_done);
    evtimer_del(t->sp->timer);
    status_tick_cb(-1, EV_TIMEOUT, t->sp);
    assert_false(evtimer_pending(t->sp->timer, NULL));
    assert_null(t->sp->inflight);
}

static void
test_status_page_freed_mid_refresh(void **state)
{
    struct t *t = *state;

    /* The page goes first: its refresh is let go, and frees itself when
     * the driver's connection fails what it still owes. */
    loop_until(t, conn_ready);
    refresh_start(t->sp);
    assert_non_null(t->sp->inflight);
    mapq_status_page_free(t->sp);
    t->sp = NULL;
    mapq_driver_free(t->d);
    t->d = NULL;
}

static void
test_status_page_outlives_its_driver(void **state)
{
    struct t *t = *state;

    /* The driver goes first: the refresh fails, and the page says why. */
    loop_until(t, conn_ready);
    refresh_start(t->sp);
    assert_non_null(t->sp->inflight);
    mapq_driver_free(t->d);
    t->d = NULL;
    assert_null(t->sp->inflight);
    assert_true(t->sp->redis_error[0] != '\0');
    assert_true(t->sp->refreshed_ms < 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_status_page_reads_executions_and_agents, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_page_marks_odd_data, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(
            test_status_page_reads_long_logs_in_turns, setup, teardown),
        cmocka_unit_test_setup_teardown(
            test_status_page_reads_only_while_watched, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_page_freed_mid_refresh,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_page_outlives_its_driver,
                                        setup, teardown),
    };

    return cmocka_run_group_tests_name("status_page", tests, fx_group_setup,
                                       fx_group_teardown);
}
