/*
 * cmd_scheduler.c - mapq scheduler: a driver in service mode on a loop of
 * its own, taking submitted executions and adopting orphaned ones until
 * SIGTERM or SIGINT. Under systemd (Type=notify) it says READY=1 once it
 * serves, STOPPING=1 when it stops, and feeds the watchdog from its loop.
 *
 * Owns the loop and the signal and watchdog events; the driver owns the
 * executions.
 */
#include <event2/event.h>
#include <signal.h>
#include <stdint.h>
#include <sys/time.h>
#include <systemd/sd-daemon.h>

#include "cli.h"
#include "mapq_driver.h"
#include "mapq_log.h"
#include "mapq_sched_metrics.h"

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

static int
cmd_scheduler(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    struct event_base *base;
    struct mapq_driver *d;
    struct mapq_sched_metrics *sm = NULL;
    char err[MAPQ_ERR_LEN];
    struct event *ev_term, *ev_int, *ev_watchdog;
    uint64_t watchdog_us = 0;
    redisContext *c;

    /* A service logs its work at info level, with or without -v. */
    mapq_log_threshold = MAPQ_LOG_INFO;
    c = mapq_cli_connect(o, &url);
    if (c == NULL)
        return MAPQ_EXIT_INFRA;
    redisFree(c);
    base = event_base_new();
    d = mapq_driver_new(base, &url, o->ns, o->lease_ms);
    mapq_driver_set_retention(d, o->retention_ms);
    if (o->metrics != NULL) {
        sm = mapq_sched_metrics_new(base, d, o->ns, o->metrics, err);
        if (sm == NULL) {
            mapq_log(MAPQ_LOG_ERROR, "--metrics: %s", err);
            mapq_driver_free(d);
            event_base_free(base);
            return MAPQ_EXIT_INFRA;
        }
    }
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
    mapq_driver_free(d);
    mapq_sched_metrics_free(sm);
    event_free(ev_watchdog);
    event_free(ev_term);
    event_free(ev_int);
    event_base_free(base);
    return MAPQ_EXIT_OK;
}

const struct mapq_cmd_entry mapq_cmd_scheduler_entry = {
    .name = "scheduler",
    .usage = "scheduler [--redis URL] [--lease DUR] [--metrics HOST:PORT]\n"
             "                [--retention DUR]",
    .operands = MAPQ_CMD_NONE,
    .fn = cmd_scheduler,
};
