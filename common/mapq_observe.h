/*
 * mapq_observe.h - what every long-lived mapq process serves to a metrics
 * scraper (--metrics ADDR:PORT, path /metrics): its own metrics, added by
 * the caller to the registry, and those every process has: build info,
 * start time and uptime, Redis round trips, and the length of the queues
 * it looks at, read from Redis every MAPQ_OBSERVE_REFRESH_MS.
 *
 * Owns its registry, its HTTP server and its refresh timer. A scrape is
 * answered at once from what it holds: the Redis readings are at most one
 * refresh old, and a scrape never waits on Redis.
 */
#ifndef MAPQ_OBSERVE_H
#define MAPQ_OBSERVE_H

#include <event2/event.h>
#include <stddef.h>

#include "mapq_http.h"
#include "mapq_metrics.h"
#include "mapq_redis.h"

#define MAPQ_OBSERVE_REFRESH_MS 5000
#define MAPQ_OBSERVE_QUEUES_MAX 256 /* queues named per reading */

struct mapq_observe;

/* Called before each scrape is written, to set the caller's gauges. */
typedef void mapq_observe_fn(struct mapq_metrics *m, void *arg);

/*
 * Listens on addr (mapq_http_new()) for GET /metrics. component ("agent",
 * "scheduler") labels mapq_build_info. Returns the server (free with
 * mapq_observe_free() after the connection given to mapq_observe_redis())
 * or NULL with the reason in err.
 */
struct mapq_observe *mapq_observe_new(struct event_base *base, const char *addr,
                                      const char *component, char *err);
void mapq_observe_free(struct mapq_observe *o);

/* The registry, for the caller's own metrics (owned by o). */
struct mapq_metrics *mapq_observe_registry(struct mapq_observe *o);
/* The HTTP server, for more routes (owned by o). */
struct mapq_http *mapq_observe_http(struct mapq_observe *o);
void mapq_observe_set_scrape_cb(struct mapq_observe *o, mapq_observe_fn *fn,
                                void *arg);

/* Fills out with up to max queue names (borrowed until the call returns)
 * whose lengths to read; returns how many. */
typedef size_t mapq_observe_queues_fn(const char **out, size_t max, void *arg);

/*
 * Times conn's round trips (mapq_redis_latency_seconds) and, every
 * MAPQ_OBSERVE_REFRESH_MS, reads through it the length of the queues that
 * queues_fn names and, when live_ms > 0, of every queue a live agent serves
 * (mapq1_queues). conn and ns are borrowed and must outlive o; conn must
 * not block (not a BLPOP connection). Call once.
 */
void mapq_observe_redis(struct mapq_observe *o, struct mapq_redis *conn,
                        const char *ns, int live_ms,
                        mapq_observe_queues_fn *queues_fn, void *arg);

#endif
