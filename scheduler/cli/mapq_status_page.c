/*
 * mapq_status_page.c - the status page of `mapq scheduler --http`: its two
 * routes, the timer that keeps its snapshot of Redis fresh while someone
 * watches, and the reads of one refresh.
 *
 * Owns the snapshot (status_snap.c fills it and writes it as JSON), the
 * reading of each listed execution's failures, and the refresh in flight.
 * Borrows the driver, its command connection and the HTTP server. A
 * request never waits on Redis: it gets the last snapshot read.
 *
 * A refresh is four rounds of pipelined async reads, each sent when every
 * reply of the one before has arrived: the clock and the two lists
 * (P:execs, P:agents); each execution's record and each live agent's
 * entry; each execution's nodes; and a few executions' attempt logs. An
 * odd reply marks what it was for; only a lost reply (the connection went
 * down, or it timed out) or unusable lists fail a refresh, which then
 * keeps the last snapshot and says why.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_log.h"
#include "mapq_status_page.h"
#include "status_page_int.h"

#define READ_TIMEOUT_MS 2000

/* The rounds of a refresh, in order. */
enum round {
    ROUND_LISTS,   /* TIME, P:execs, P:agents */
    ROUND_RECORDS, /* P:x:<exec> and P:agent:<name> */
    ROUND_NODES,   /* node:<k> and p:<k> of each execution */
    ROUND_LOGS,    /* P:log:<exec> of those with failures */
    ROUND_END,
};

/* What a request's reply is for. */
enum want {
    WANT_TIME,
    WANT_EXECS,
    WANT_AGENTS,
    WANT_RECORD, /* i: the execution */
    WANT_AGENT,  /* i: the agent */
    WANT_NODES,  /* i: the execution, n: its nodes asked */
    WANT_LOGS,   /* i: the execution */
};

/* One refresh in flight. */
struct refresh {
    struct mapq_status_page *sp; /* NULL once sp is freed: replies dropped */
    struct st_snapshot snap;     /* being read */
    enum round round;
    size_t pending; /* replies of this round still to come */
    bool failed;
    char why[256];
};

/* One request of a refresh; its reply callback frees it. */
struct req {
    struct refresh *rf;
    enum want want;
    size_t i, n;
};

struct mapq_status_page {
    struct event_base *base;
    struct mapq_driver *d;
    char *ns;
    struct event *timer;
    int64_t started_ms;   /* wall clock */
    int64_t asked_ms;     /* monotonic: the last request */
    int64_t refreshed_ms; /* wall clock of the snapshot; -1: none */
    struct st_snapshot snap;
    char redis_error[256]; /* why the last refresh failed; "" */
    struct refresh *inflight;
    struct st_scan **scans; /* failures of the listed executions */
    size_t nscans, scans_cap;
    uint64_t refreshes;
};

static void round_next(struct refresh *rf);
static struct st_scan *scan_of(struct mapq_status_page *sp, const char *id);

static int64_t
clock_ms(clockid_t id)
{
    struct timespec ts;

    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- sending ------------------------------------------------------------- */

static void
refresh_fail(struct refresh *rf, const char *why)
{
    if (rf->failed)
        return;
    rf->failed = true;
    snprintf(rf->why, sizeof(rf->why), "%s", why ? why : "no reply");
}

/* A list that could not be read fails the refresh, saying which and why. */
static void
list_failed(struct refresh *rf, const char *what, const redisReply *r)
{
    char why[256];

    snprintf(why, sizeof(why), "%s: %s", what,
             r->type == REDIS_REPLY_ERROR && r->str != NULL
                 ? r->str
                 : "unexpected reply");
    refresh_fail(rf, why);
}

/* Takes reply r of request q into the snapshot being read. */
static void
take(struct refresh *rf, const struct req *q, const redisReply *r)
{
    struct st_snapshot *s = &rf->snap;
    struct st_scan *sc;

    switch (q->want) {
    case WANT_TIME:
        s->redis_ms = st_read_time(r);
        if (s->redis_ms < 0)
            list_failed(rf, "TIME", r);
        break;
    case WANT_EXECS:
        if (!st_read_execs(s, r, MAPQ_STATUS_EXECS_MAX))
            list_failed(rf, "P:execs", r);
        break;
    case WANT_AGENTS:
        /* After TIME's reply: the live ones are told by Redis's clock. */
        if (!st_read_agents(s, r, MAPQ_AGENT_LIVE_MS, MAPQ_STATUS_AGENTS_MAX))
            list_failed(rf, "P:agents", r);
        break;
    case WANT_RECORD:
        st_read_record(&s->execs[q->i], r);
        break;
    case WANT_AGENT:
        st_read_agent(&s->agents[q->i], r);
        break;
    case WANT_NODES:
        st_read_nodes(&s->execs[q->i], r, q->n);
        break;
    case WANT_LOGS:
        sc = scan_of(rf->sp, s->execs[q->i].id);
        st_read_scan(sc, r, st_exec_settled(&s->execs[q->i], s->redis_ms));
        sc->last_read = rf->sp->refreshes;
        break;
    }
}

static void
reply_cb(redisReply *reply, const char *why, void *arg)
{
    struct req *q = arg;
    struct refresh *rf = q->rf;

    if (rf->sp != NULL && !rf->failed) {
        if (reply == NULL)
            refresh_fail(rf, why);
        else
            take(rf, q, reply);
    }
    free(q);
    if (--rf->pending == 0)
        round_next(rf);
}

static void
send_req(struct refresh *rf, struct mapq_argv *cmd, enum want want, size_t i,
         size_t n)
{
    struct req *q = mapq_xcalloc(1, sizeof(*q));

    *q = (struct req){rf, want, i, n};
    rf->pending++;
    mapq_redis_command(mapq_driver_redis(rf->sp->d), READ_TIMEOUT_MS, reply_cb,
                       q, cmd->argc, cmd->argv, cmd->lens);
    mapq_argv_reset(cmd);
}

/* ---- the rounds ---------------------------------------------------------- */

static void
send_lists(struct refresh *rf, struct mapq_argv *cmd)
{
    const char *ns = rf->sp->ns;

    mapq_argv_add(cmd, "TIME");
    send_req(rf, cmd, WANT_TIME, 0, 0);
    mapq_argv_add(cmd, "ZREVRANGE");
    mapq_key_add(cmd, mapq_key_execs(ns));
    mapq_argv_add(cmd, "0");
    mapq_argv_addf(cmd, "%d", MAPQ_STATUS_EXECS_MAX - 1);
    mapq_argv_add(cmd, "WITHSCORES");
    send_req(rf, cmd, WANT_EXECS, 0, 0);
    mapq_argv_add(cmd, "ZREVRANGE");
    mapq_key_add(cmd, mapq_key_agents(ns));
    mapq_argv_add(cmd, "0");
    mapq_argv_addf(cmd, "%d", MAPQ_STATUS_AGENTS_MAX - 1);
    mapq_argv_add(cmd, "WITHSCORES");
    send_req(rf, cmd, WANT_AGENTS, 0, 0);
}

static void
send_records(struct refresh *rf, struct mapq_argv *cmd)
{
    static const char *const xf[ST_RECORD_FIELDS] = {
        "state", "name", "created", "finished", "nodes", "error"};
    static const char *const af[ST_AGENT_FIELDS] = {
        "host", "slots", "running", "queues", "interruptible", "cpus", "mem"};
    const char *ns = rf->sp->ns;
    size_t i, f;

    for (i = 0; i < rf->snap.nexecs; i++) {
        if (rf->snap.execs[i].foreign)
            continue;
        mapq_argv_add(cmd, "HMGET");
        mapq_key_add(cmd, mapq_key_exec(ns, rf->snap.execs[i].id));
        for (f = 0; f < ST_RECORD_FIELDS; f++)
            mapq_argv_add(cmd, xf[f]);
        send_req(rf, cmd, WANT_RECORD, i, 0);
    }
    for (i = 0; i < rf->snap.nagents; i++) {
        mapq_argv_add(cmd, "HMGET");
        mapq_key_add(cmd, mapq_key_agent(ns, rf->snap.agents[i].name));
        for (f = 0; f < ST_AGENT_FIELDS; f++)
            mapq_argv_add(cmd, af[f]);
        send_req(rf, cmd, WANT_AGENT, i, 0);
    }
}

static void
send_nodes(struct refresh *rf, struct mapq_argv *cmd)
{
    size_t i, k, n;

    st_agents_compact(&rf->snap);
    for (i = 0; i < rf->snap.nexecs; i++) {
        n = st_nodes_to_read(&rf->snap.execs[i], MAPQ_STATUS_NODES_MAX);
        if (n == 0)
            continue;
        mapq_argv_add(cmd, "HMGET");
        mapq_key_add(cmd, mapq_key_exec(rf->sp->ns, rf->snap.execs[i].id));
        for (k = 0; k < n; k++) {
            mapq_argv_addf(cmd, "node:%zu", k);
            mapq_argv_addf(cmd, "p:%zu", k);
        }
        send_req(rf, cmd, WANT_NODES, i, n);
    }
}

/* The reading of id's failures, made when first needed. */
static struct st_scan *
scan_of(struct mapq_status_page *sp, const char *id)
{
    struct st_scan *sc;
    size_t j;

    for (j = 0; j < sp->nscans; j++)
        if (strcmp(sp->scans[j]->id, id) == 0)
            return sp->scans[j];
    if (sp->nscans == sp->scans_cap) {
        sp->scans_cap = sp->scans_cap ? 2 * sp->scans_cap : 8;
        sp->scans =
            mapq_xrealloc(sp->scans, sp->scans_cap * sizeof(*sp->scans));
    }
    sc = mapq_xcalloc(1, sizeof(*sc));
    sc->id = mapq_xstrdup(id);
    snprintf(sc->cursor, sizeof(sc->cursor), "0");
    sp->scans[sp->nscans++] = sc;
    return sc;
}

/* An execution whose logs may be read this round. */
struct candidate {
    struct st_scan *sc;
    size_t i; /* in the snapshot being read */
};

static int
candidate_cmp(const void *a, const void *b)
{
    const struct candidate *x = a, *y = b;

    if (x->sc->last_read != y->sc->last_read)
        return x->sc->last_read < y->sc->last_read ? -1 : 1;
    return x->i < y->i ? -1 : x->i > y->i;
}

/*
 * Reads on in the attempt logs of the executions with failures, at most
 * MAPQ_STATUS_READS_MAX of them, those read longest ago first, so that
 * every one is read in turn.
 */
static void
send_logs(struct refresh *rf, struct mapq_argv *cmd)
{
    struct mapq_status_page *sp = rf->sp;
    struct candidate c[MAPQ_STATUS_EXECS_MAX];
    size_t i, n = 0;

    for (i = 0; i < rf->snap.nexecs && n < MAPQ_STATUS_EXECS_MAX; i++) {
        const struct st_exec *x = &rf->snap.execs[i];

        if (x->foreign || !st_exec_failures(x))
            continue;
        c[n] = (struct candidate){scan_of(sp, x->id), i};
        if (!c[n].sc->frozen)
            n++;
    }
    if (n > 1)
        qsort(c, n, sizeof(c[0]), candidate_cmp);
    for (i = 0; i < n && i < MAPQ_STATUS_READS_MAX; i++) {
        mapq_argv_add(cmd, "HSCAN");
        mapq_key_add(cmd, mapq_key_log(sp->ns, c[i].sc->id));
        mapq_argv_add(cmd, c[i].sc->cursor);
        mapq_argv_add(cmd, "COUNT");
        mapq_argv_addf(cmd, "%d", MAPQ_STATUS_LOGS_PER_READ);
        send_req(rf, cmd, WANT_LOGS, c[i].i, 0);
    }
}

/* Forgets the failures of executions no longer listed. */
static void
prune_scans(struct mapq_status_page *sp)
{
    size_t j, i, n = 0;

    for (j = 0; j < sp->nscans; j++) {
        for (i = 0; i < sp->snap.nexecs; i++)
            if (strcmp(sp->snap.execs[i].id, sp->scans[j]->id) == 0)
                break;
        if (i == sp->snap.nexecs)
            st_scan_free(sp->scans[j]);
        else
            sp->scans[n++] = sp->scans[j];
    }
    sp->nscans = n;
}

/* Ends rf: its snapshot becomes the page's, or the reason it failed is
 * said (once per streak of failures). */
static void
refresh_end(struct refresh *rf)
{
    struct mapq_status_page *sp = rf->sp;

    sp->inflight = NULL;
    if (rf->failed) {
        if (sp->redis_error[0] == '\0')
            mapq_log(MAPQ_LOG_WARN, "status page: cannot read redis: %s",
                     rf->why);
        snprintf(sp->redis_error, sizeof(sp->redis_error), "%s", rf->why);
        st_snapshot_release(&rf->snap);
    } else {
        if (sp->redis_error[0] != '\0')
            mapq_log(MAPQ_LOG_INFO, "status page: reads redis again");
        sp->redis_error[0] = '\0';
        st_snapshot_release(&sp->snap);
        sp->snap = rf->snap;
        sp->refreshed_ms = clock_ms(CLOCK_REALTIME);
        prune_scans(sp);
    }
    free(rf);
}

/* Sends the next round once the last one's replies are in; ends the
 * refresh after the last, or when it failed. */
static void
round_next(struct refresh *rf)
{
    struct mapq_argv cmd;

    if (rf->sp == NULL) {
        st_snapshot_release(&rf->snap);
        free(rf);
        return;
    }
    mapq_argv_init(&cmd);
    while (!rf->failed && rf->pending == 0 && rf->round != ROUND_END) {
        switch (rf->round) {
        case ROUND_LISTS:
            send_lists(rf, &cmd);
            break;
        case ROUND_RECORDS:
            send_records(rf, &cmd);
            break;
        case ROUND_NODES:
            send_nodes(rf, &cmd);
            break;
        case ROUND_LOGS:
            send_logs(rf, &cmd);
            break;
        case ROUND_END:
            break;
        }
        rf->round++;
    }
    mapq_argv_release(&cmd);
    if (rf->pending == 0)
        refresh_end(rf);
}

static void
refresh_start(struct mapq_status_page *sp)
{
    struct refresh *rf;

    if (!mapq_redis_ready(mapq_driver_redis(sp->d))) {
        snprintf(sp->redis_error, sizeof(sp->redis_error),
                 "not connected to redis");
        return;
    }
    rf = mapq_xcalloc(1, sizeof(*rf));
    rf->sp = sp;
    rf->snap.redis_ms = -1;
    sp->inflight = rf;
    sp->refreshes++;
    round_next(rf);
}

/* ---- the timer and the routes -------------------------------------------- */

/* Refreshes while someone asked in the last MAPQ_STATUS_WATCH_MS; else the
 * timer stops until the next request. */
static void
status_tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_status_page *sp = arg;
    struct timeval tv = {MAPQ_STATUS_REFRESH_MS / 1000,
                         (MAPQ_STATUS_REFRESH_MS % 1000) * 1000};

    (void)fd;
    (void)what;
    if (clock_ms(CLOCK_MONOTONIC) - sp->asked_ms > MAPQ_STATUS_WATCH_MS)
        return;
    evtimer_add(sp->timer, &tv);
    if (sp->inflight == NULL)
        refresh_start(sp);
}

/* A request: starts the timer (and a refresh at once) when it was idle. */
static void
asked(struct mapq_status_page *sp)
{
    static const struct timeval now = {0, 0};

    sp->asked_ms = clock_ms(CLOCK_MONOTONIC);
    if (!evtimer_pending(sp->timer, NULL))
        evtimer_add(sp->timer, &now);
}

static int
status_page_cb(const char *query, struct mapq_buf *out, const char **ctype,
               void *arg)
{
    struct mapq_status_page *sp = arg;

    (void)query;
    asked(sp);
    mapq_buf_append(out, mapq_status_page_html, mapq_status_page_html_len);
    *ctype = "text/html; charset=utf-8";
    return 200;
}

static int
status_api_cb(const char *query, struct mapq_buf *out, const char **ctype,
              void *arg)
{
    struct mapq_status_page *sp = arg;
    struct st_self self;

    (void)query;
    asked(sp);
    self = (struct st_self){
        .ns = sp->ns,
        .started_ms = sp->started_ms,
        .now_ms = clock_ms(CLOCK_REALTIME),
        .refreshed_ms = sp->refreshed_ms,
        .driving = mapq_driver_count(sp->d),
        .redis_error = sp->redis_error[0] ? sp->redis_error : NULL,
    };
    st_render(&self, sp->refreshed_ms >= 0 ? &sp->snap : NULL, sp->scans,
              sp->nscans, out);
    *ctype = "application/json";
    return 200;
}

struct mapq_status_page *
mapq_status_page_new(struct event_base *base, struct mapq_http *http,
                     struct mapq_driver *d, const char *ns)
{
    struct mapq_status_page *sp = mapq_xcalloc(1, sizeof(*sp));

    sp->base = base;
    sp->d = d;
    sp->ns = mapq_xstrdup(ns);
    sp->timer = evtimer_new(base, status_tick_cb, sp);
    sp->started_ms = clock_ms(CLOCK_REALTIME);
    sp->refreshed_ms = -1;
    mapq_http_route(http, "/", status_page_cb, sp);
    mapq_http_route(http, "/api/status", status_api_cb, sp);
    return sp;
}

void
mapq_status_page_free(struct mapq_status_page *sp)
{
    size_t j;

    if (sp == NULL)
        return;
    if (sp->inflight != NULL)
        sp->inflight->sp = NULL; /* frees itself with its last reply */
    event_free(sp->timer);
    st_snapshot_release(&sp->snap);
    for (j = 0; j < sp->nscans; j++)
        st_scan_free(sp->scans[j]);
    free(sp->scans);
    free(sp->ns);
    free(sp);
}
