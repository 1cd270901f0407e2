/*
 * mapq_observe.c - the /metrics endpoint of a mapq process: the registry,
 * its HTTP route, and the metrics every process has (build, uptime, Redis
 * round trips, queue lengths).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mapq_alloc.h"
#include "mapq_observe.h"

#define REFRESH_TIMEOUT_MS 2000

struct mapq_observe {
    struct event_base *base;
    struct mapq_http *http;
    struct mapq_metrics *m;
    mapq_observe_fn *scrape_fn;
    void *scrape_arg;
    int64_t started_ms;
    struct mapq_metric *uptime, *latency, *up, *qlen, *leased, *delayed;
    /* The Redis readings. */
    struct mapq_redis *conn; /* borrowed */
    const char *ns;          /* borrowed */
    int live_ms;
    mapq_observe_queues_fn *queues_fn;
    void *queues_arg;
    struct mapq_argv request;
    struct event *refresh_ev;
    bool inflight;
};

static int64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int
metrics_cb(const char *query, struct mapq_buf *out, const char **ctype,
           void *arg)
{
    struct mapq_observe *o = arg;

    (void)query;
    mapq_metrics_set(o->uptime, NULL,
                     (double)(wall_ms() - o->started_ms) / 1000.0);
    if (o->scrape_fn != NULL)
        o->scrape_fn(o->m, o->scrape_arg);
    mapq_metrics_render(o->m, out);
    *ctype = "text/plain; version=0.0.4; charset=utf-8";
    return 200;
}

static void
declare(struct mapq_observe *o, const char *component)
{
    static const char *const build_labels[] = {"component", "version",
                                               "protocol", NULL};
    static const char *const queue_labels[] = {"queue", "kind", "interruptible",
                                               NULL};
    static const double rtt_buckets[] = {0.0001, 0.00025, 0.0005, 0.001,
                                         0.0025, 0.005,   0.01,   0.025,
                                         0.05,   0.1,     0.25,   1};
    char protocol[16];
    const char *build[] = {component, MAPQ_VERSION, protocol};

    snprintf(protocol, sizeof(protocol), "%d", MAPQ_PROTOCOL);
    mapq_metrics_set(mapq_metrics_declare(o->m, "mapq_build_info",
                                          "The version of this process.",
                                          MAPQ_METRIC_GAUGE, build_labels, NULL,
                                          0),
                     build, 1);
    mapq_metrics_set(
        mapq_metrics_declare(o->m, "mapq_start_time_seconds",
                             "When this process started (Unix time).",
                             MAPQ_METRIC_GAUGE, NULL, NULL, 0),
        NULL, (double)o->started_ms / 1000.0);
    o->uptime = mapq_metrics_declare(o->m, "mapq_uptime_seconds",
                                     "How long this process has run.",
                                     MAPQ_METRIC_GAUGE, NULL, NULL, 0);
    o->latency = mapq_metrics_declare(
        o->m, "mapq_redis_latency_seconds",
        "Round trips of this process's requests to Redis, from sending to "
        "the reply.",
        MAPQ_METRIC_HISTOGRAM, NULL, rtt_buckets,
        sizeof(rtt_buckets) / sizeof(rtt_buckets[0]));
    o->up = mapq_metrics_declare(
        o->m, "mapq_redis_up",
        "1 when the last reading of the queues from Redis succeeded.",
        MAPQ_METRIC_GAUGE, NULL, NULL, 0);
    o->qlen = mapq_metrics_declare(
        o->m, "mapq_queue_length",
        "Subtasks ready to run and waiting for an agent, by queue and kind.",
        MAPQ_METRIC_GAUGE, queue_labels, NULL, 0);
    o->leased = mapq_metrics_declare(
        o->m, "mapq_subtasks_leased",
        "Subtasks leased to agents, running or about to (all queues).",
        MAPQ_METRIC_GAUGE, NULL, NULL, 0);
    o->delayed = mapq_metrics_declare(
        o->m, "mapq_retries_waiting",
        "Retries waiting out their backoff before they are queued again.",
        MAPQ_METRIC_GAUGE, NULL, NULL, 0);
}

struct mapq_observe *
mapq_observe_new(struct event_base *base, const char *addr,
                 const char *component, char *err)
{
    struct mapq_observe *o;
    struct mapq_http *http = mapq_http_new(base, addr, err);

    if (http == NULL)
        return NULL;
    o = mapq_xcalloc(1, sizeof(*o));
    o->base = base;
    o->http = http;
    o->m = mapq_metrics_new();
    o->started_ms = wall_ms();
    mapq_argv_init(&o->request);
    declare(o, component);
    mapq_http_route(http, "/metrics", metrics_cb, o);
    return o;
}

void
mapq_observe_free(struct mapq_observe *o)
{
    if (o == NULL)
        return;
    if (o->refresh_ev != NULL)
        event_free(o->refresh_ev);
    mapq_argv_release(&o->request);
    mapq_http_free(o->http);
    mapq_metrics_free(o->m);
    free(o);
}

struct mapq_metrics *
mapq_observe_registry(struct mapq_observe *o)
{
    return o->m;
}

struct mapq_http *
mapq_observe_http(struct mapq_observe *o)
{
    return o->http;
}

void
mapq_observe_set_scrape_cb(struct mapq_observe *o, mapq_observe_fn *fn,
                           void *arg)
{
    o->scrape_fn = fn;
    o->scrape_arg = arg;
}

static void
rtt_cb(struct mapq_redis *r, int64_t us, void *arg)
{
    struct mapq_observe *o = arg;

    (void)r;
    mapq_metrics_observe(o->latency, NULL, (double)us / 1e6);
}

static long long
int_at(const redisReply *a, size_t j)
{
    return j < a->elements && a->element[j]->type == REDIS_REPLY_INTEGER
               ? a->element[j]->integer
               : 0;
}

/* [held, delayed, [queue, nc, np, ic, ip], ...] (mapq1_queues). */
static void
queues_cb(redisReply *reply, const char *why, void *arg)
{
    static const char *const kinds[] = {"command", "plugin", "command",
                                        "plugin"};
    static const char *const intr[] = {"false", "false", "true", "true"};
    struct mapq_observe *o = arg;
    size_t j, c;

    (void)why;
    o->inflight = false;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements < 2) {
        mapq_metrics_set(o->up, NULL, 0);
        return;
    }
    mapq_metrics_set(o->up, NULL, 1);
    mapq_metrics_set(o->leased, NULL, (double)int_at(reply, 0));
    mapq_metrics_set(o->delayed, NULL, (double)int_at(reply, 1));
    mapq_metrics_clear(o->qlen);
    for (j = 2; j < reply->elements; j++) {
        const redisReply *row = reply->element[j];

        if (row->type != REDIS_REPLY_ARRAY || row->elements != 5 ||
            row->element[0]->type != REDIS_REPLY_STRING)
            continue;
        for (c = 0; c < 4; c++) {
            const char *labels[] = {row->element[0]->str, kinds[c], intr[c]};

            mapq_metrics_set(o->qlen, labels, (double)int_at(row, c + 1));
        }
    }
}

static void
refresh_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_observe *o = arg;
    struct timeval tv = {MAPQ_OBSERVE_REFRESH_MS / 1000,
                         (MAPQ_OBSERVE_REFRESH_MS % 1000) * 1000};
    const char *queues[MAPQ_OBSERVE_QUEUES_MAX];
    size_t n, k;

    (void)fd;
    (void)what;
    evtimer_add(o->refresh_ev, &tv);
    if (o->inflight)
        return;
    n = o->queues_fn
            ? o->queues_fn(queues, MAPQ_OBSERVE_QUEUES_MAX, o->queues_arg)
            : 0;
    mapq_argv_reset(&o->request);
    mapq_argv_add(&o->request, "FCALL_RO");
    mapq_argv_add(&o->request, "mapq1_queues");
    mapq_argv_add(&o->request, "0");
    mapq_argv_add(&o->request, o->ns);
    mapq_argv_addf(&o->request, "%d", o->live_ms);
    for (k = 0; k < n; k++)
        mapq_argv_add(&o->request, queues[k]);
    o->inflight = true;
    mapq_redis_command(o->conn, REFRESH_TIMEOUT_MS, queues_cb, o,
                       o->request.argc, o->request.argv, o->request.lens);
}

void
mapq_observe_redis(struct mapq_observe *o, struct mapq_redis *conn,
                   const char *ns, int live_ms,
                   mapq_observe_queues_fn *queues_fn, void *arg)
{
    /* The first reading soon after the connection comes up. */
    static const struct timeval soon = {0, 200000};

    mapq_assert(o->conn == NULL);
    o->conn = conn;
    o->ns = ns;
    o->live_ms = live_ms;
    o->queues_fn = queues_fn;
    o->queues_arg = arg;
    mapq_redis_set_rtt_cb(conn, rtt_cb, o);
    o->refresh_ev = evtimer_new(o->base, refresh_cb, o);
    evtimer_add(o->refresh_ev, &soon);
}
