/*
 * cmd_scheduler.c - mapq scheduler: a driver in service mode on a loop of
 * its own, taking submitted executions and adopting orphaned ones until
 * SIGTERM or SIGINT. Under systemd (Type=notify) it says READY=1 once it
 * serves, STOPPING=1 when it stops, and feeds the watchdog from its loop.
 *
 * With --metrics it serves Prometheus metrics (mapq_sched_metrics), with
 * --http a status page (mapq_status_page); given the same HOST:PORT, one
 * server serves both.
 *
 * Owns the loop, the signal and watchdog events and the HTTP server of the
 * status page; the driver owns the executions.
 */
#include <event2/event.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/time.h>
#include <systemd/sd-daemon.h>

#include "cli.h"
#include "mapq_driver.h"
#include "mapq_log.h"
#include "mapq_sched_metrics.h"
#include "mapq_seal.h"
#include "mapq_status_page.h"

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)sd_notify(0, "STOPPING=1");
    event_base_loopexit(arg, NULL);
}

static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    (void)sd_notify(0, "WATCHDOG=1");
}

/* Whether --metrics and --http name the same address (port 0 excepted:
 * it picks a free port each time), which then serves both. */
static bool
same_addr(const char *a, const char *b)
{
    char ha[256], hb[256];
    int pa, pb;

    return a != NULL && b != NULL &&
           mapq_http_parse_addr(a, ha, sizeof(ha), &pa) &&
           mapq_http_parse_addr(b, hb, sizeof(hb), &pb) && pa == pb &&
           pa != 0 && strcmp(ha, hb) == 0;
}

/*
 * Serves --metrics and --http when given: *sm, and *sp on *own (an HTTP
 * server of its own) or on the metrics' server when they share the
 * address. MAPQ_EXIT_INFRA, logged, when it cannot listen.
 */
static int
serve_http(const struct mapq_cli_opts *o, struct event_base *base,
           struct mapq_driver *d, struct mapq_sched_metrics **sm,
           struct mapq_http **own, struct mapq_status_page **sp)
{
    char err[MAPQ_ERR_LEN];
    struct mapq_http *http;

    if (o->metrics != NULL) {
        *sm = mapq_sched_metrics_new(base, d, o->ns, o->metrics, err);
        if (*sm == NULL) {
            mapq_log(MAPQ_LOG_ERROR, "--metrics: %s", err);
            return MAPQ_EXIT_INFRA;
        }
    }
    if (o->http == NULL)
        return MAPQ_EXIT_OK;
    if (same_addr(o->metrics, o->http)) {
        http = mapq_sched_metrics_http(*sm);
    } else {
        http = *own = mapq_http_new(base, o->http, err);
        if (http == NULL) {
            mapq_log(MAPQ_LOG_ERROR, "--http: %s", err);
            return MAPQ_EXIT_INFRA;
        }
    }
    *sp = mapq_status_page_new(base, http, d, o->ns);
    mapq_log(MAPQ_LOG_INFO, "status page on %s (port %d)", o->http,
             mapq_http_port(http));
    return MAPQ_EXIT_OK;
}

static int
cmd_scheduler(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    struct event_base *base;
    struct mapq_driver *d;
    struct mapq_sched_metrics *sm = NULL;
    struct mapq_status_page *sp = NULL;
    struct mapq_http *http = NULL;
    struct event *ev_term, *ev_int, *ev_watchdog;
    uint64_t watchdog_us = 0;
    struct mapq_seal *seal;
    redisContext *c;
    int rc;

    /* A service logs its work at info level, with or without -v. */
    mapq_log_threshold = MAPQ_LOG_INFO;
    rc = mapq_cli_seal(o, &seal);
    if (rc != MAPQ_EXIT_OK)
        return rc;
    c = mapq_cli_connect(o, &url);
    if (c == NULL) {
        mapq_seal_free(seal);
        return MAPQ_EXIT_INFRA;
    }
    redisFree(c);
    base = event_base_new();
    d = mapq_driver_new(base, &url, o->ns, o->lease_ms);
    mapq_driver_set_retention(d, o->retention_ms);
    mapq_driver_set_seal(d, seal);
    rc = serve_http(o, base, d, &sm, &http, &sp);
    if (rc != MAPQ_EXIT_OK)
        goto out_free_driver;
    ev_term = evsignal_new(base, SIGTERM, stop_cb, base);
    ev_int = evsignal_new(base, SIGINT, stop_cb, base);
    event_add(ev_term, NULL);
    event_add(ev_int, NULL);
    ev_watchdog = event_new(base, -1, EV_PERSIST, watchdog_cb, NULL);
    if (sd_watchdog_enabled(0, &watchdog_us) > 0) {
        struct timeval tv = {(time_t)(watchdog_us / 2000000),
                             (suseconds_t)(watchdog_us / 2 % 1000000)};

        event_add(ev_watchdog, &tv);
    }
    mapq_driver_serve(d);
    mapq_log(MAPQ_LOG_INFO, "scheduler running%s%s",
             o->metrics ? ", metrics on " : "", o->metrics ? o->metrics : "");
    (void)sd_notify(0, "READY=1");
    event_base_dispatch(base);
    event_free(ev_watchdog);
    event_free(ev_term);
    event_free(ev_int);
out_free_driver:
    /* The driver first: replies it still owes the status page come back
     * failed while the page is there to take them. */
    mapq_driver_free(d);
    mapq_status_page_free(sp);
    mapq_http_free(http);
    mapq_sched_metrics_free(sm);
    event_base_free(base);
    mapq_seal_free(seal);
    return rc;
}

const struct mapq_cmd_entry mapq_cmd_scheduler_entry = {
    .name = "scheduler",
    .usage = "scheduler [--redis URL] [--lease DUR] [--metrics HOST:PORT]\n"
             "                [--retention DUR] [--http HOST:PORT]",
    .operands = MAPQ_CMD_NONE,
    .fn = cmd_scheduler,
};
