/*
 * mapq_sched_metrics.c - the scheduler's metrics: an observer of its
 * driver, and a reading of the driver's executions when scraped.
 *
 * Owns its mapq_observe; borrows the driver and its command connection.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>

#include "mapq_alloc.h"
#include "mapq_observe.h"
#include "mapq_proto.h"
#include "mapq_sched_metrics.h"

struct mapq_sched_metrics {
    struct mapq_observe *obs;
    struct mapq_driver *d;
    char *ns;
    struct mapq_metric *driving, *ended, *finished;
    struct mapq_metric *reclaimed, *reclaimed_bytes;
};

static void
subtasks_cb(const char *node, const char *queue, int phase, uint64_t count,
            void *arg)
{
    struct mapq_sched_metrics *sm = arg;
    char name[32];
    const char *labels[] = {name, node, queue ? queue : ""};
    size_t j;

    /* The phase as the metric's other labels are spelled: timed_out. */
    snprintf(name, sizeof(name), "%s", mapq_phase_name(phase));
    for (j = 0; name[j] != '\0'; j++)
        name[j] = (char)tolower((unsigned char)name[j]);

    mapq_metrics_add(sm->finished, labels, (double)count);
}

static void
ended_cb(const struct mapq_exec_outcome *out, void *arg)
{
    struct mapq_sched_metrics *sm = arg;
    const char *status[] = {out->succeeded   ? "succeeded"
                            : out->cancelled ? "cancelled"
                                             : "failed"};

    mapq_metrics_add(sm->ended, status, 1);
}

static void
reclaimed_cb(uint64_t blobs, uint64_t bytes, void *arg)
{
    struct mapq_sched_metrics *sm = arg;

    mapq_metrics_add(sm->reclaimed, NULL, (double)blobs);
    mapq_metrics_add(sm->reclaimed_bytes, NULL, (double)bytes);
}

static const struct mapq_driver_observer observer = {subtasks_cb, ended_cb,
                                                     reclaimed_cb};

static void
scrape_cb(struct mapq_metrics *m, void *arg)
{
    struct mapq_sched_metrics *sm = arg;

    (void)m;
    mapq_metrics_set(sm->driving, NULL, (double)mapq_driver_count(sm->d));
}

static size_t
queues_cb(const char **out, size_t max, void *arg)
{
    struct mapq_sched_metrics *sm = arg;

    return mapq_driver_queues(sm->d, out, max);
}

struct mapq_sched_metrics *
mapq_sched_metrics_new(struct event_base *base, struct mapq_driver *d,
                       const char *ns, const char *addr, char *err)
{
    static const char *const by_status[] = {"status", NULL};
    static const char *const by_phase[] = {"phase", "node", "queue", NULL};
    struct mapq_observe *obs = mapq_observe_new(base, addr, "scheduler", err);
    struct mapq_sched_metrics *sm;
    struct mapq_metrics *m;

    if (obs == NULL)
        return NULL;
    sm = mapq_xcalloc(1, sizeof(*sm));
    sm->obs = obs;
    sm->d = d;
    sm->ns = mapq_xstrdup(ns);
    m = mapq_observe_registry(obs);
    sm->driving = mapq_metrics_declare(m, "mapq_executions",
                                       "Executions this scheduler drives now.",
                                       MAPQ_METRIC_GAUGE, NULL, NULL, 0);
    sm->ended = mapq_metrics_declare(
        m, "mapq_executions_total",
        "Executions this scheduler drove to their end, by status.",
        MAPQ_METRIC_COUNTER, by_status, NULL, 0);
    sm->finished = mapq_metrics_declare(
        m, "mapq_subtasks_finished_total",
        "Subtasks of the executions this scheduler drives that reached a "
        "final phase: succeeded, cached, failed, timed_out, aborted.",
        MAPQ_METRIC_COUNTER, by_phase, NULL, 0);
    sm->reclaimed = mapq_metrics_declare(
        m, "mapq_blobs_reclaimed_total",
        "Blobs of the embedded store this scheduler's sweeps deleted once "
        "nothing held them.",
        MAPQ_METRIC_COUNTER, NULL, NULL, 0);
    sm->reclaimed_bytes = mapq_metrics_declare(
        m, "mapq_blob_bytes_reclaimed_total",
        "Bytes of the blobs this scheduler's sweeps deleted.",
        MAPQ_METRIC_COUNTER, NULL, NULL, 0);
    mapq_observe_set_scrape_cb(obs, scrape_cb, sm);
    mapq_observe_redis(obs, mapq_driver_redis(d), sm->ns, MAPQ_AGENT_LIVE_MS,
                       queues_cb, sm);
    mapq_driver_observe(d, &observer, sm);
    return sm;
}

void
mapq_sched_metrics_free(struct mapq_sched_metrics *sm)
{
    if (sm == NULL)
        return;
    mapq_observe_free(sm->obs);
    free(sm->ns);
    free(sm);
}

struct mapq_http *
mapq_sched_metrics_http(struct mapq_sched_metrics *sm)
{
    return mapq_observe_http(sm->obs);
}
