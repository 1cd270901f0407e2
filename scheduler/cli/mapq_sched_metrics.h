/*
 * mapq_sched_metrics.h - what `mapq scheduler --metrics` serves: the
 * executions it drives and how they ended, the subtasks of its executions
 * by final phase, beside what every mapq process serves (mapq_observe.h:
 * build, uptime, Redis round trips, queue lengths).
 */
#ifndef MAPQ_SCHED_METRICS_H
#define MAPQ_SCHED_METRICS_H

#include <event2/event.h>

#include "mapq_driver.h"
#include "mapq_http.h"

struct mapq_sched_metrics;

/*
 * Serves the metrics of driver d (borrowed; it observes d) on addr.
 * Returns them (free with mapq_sched_metrics_free() after d), or NULL
 * with err set when it cannot listen there.
 */
struct mapq_sched_metrics *mapq_sched_metrics_new(struct event_base *base,
                                                  struct mapq_driver *d,
                                                  const char *ns,
                                                  const char *addr, char *err);
void mapq_sched_metrics_free(struct mapq_sched_metrics *sm);

/* Its HTTP server (owned by sm), for more routes on the same address. */
struct mapq_http *mapq_sched_metrics_http(struct mapq_sched_metrics *sm);

#endif
