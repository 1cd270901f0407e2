/*
 * mapq_status_page.h - what `mapq scheduler --http HOST:PORT` serves: a
 * status page (GET /: one self-contained HTML file, embedded at build
 * time from status_page.html) and the JSON it renders (GET /api/status):
 * the latest executions with their nodes' progress and their failures
 * grouped by error, and the live agents (docs/OPERATIONS.md, "Status
 * page").
 *
 * A request is answered at once from a snapshot of Redis that a timer
 * refreshes every MAPQ_STATUS_REFRESH_MS with async reads on the driver's
 * command connection, and only while someone asked in the last
 * MAPQ_STATUS_WATCH_MS: an unwatched scheduler reads nothing for it. Every
 * read is bounded (the latest MAPQ_STATUS_EXECS_MAX executions, their
 * first MAPQ_STATUS_NODES_MAX nodes, MAPQ_STATUS_AGENTS_MAX agents, and
 * MAPQ_STATUS_LOGS_PER_READ attempt logs per read of an execution's
 * failures, MAPQ_STATUS_READS_MAX such reads per refresh). Odd data in
 * Redis is skipped and marked, never trusted.
 */
#ifndef MAPQ_STATUS_PAGE_H
#define MAPQ_STATUS_PAGE_H

#include <event2/event.h>

#include "mapq_driver.h"
#include "mapq_http.h"

#define MAPQ_STATUS_REFRESH_MS    2000
#define MAPQ_STATUS_WATCH_MS      60000
#define MAPQ_STATUS_EXECS_MAX     50
#define MAPQ_STATUS_NODES_MAX     64
#define MAPQ_STATUS_AGENTS_MAX    200
#define MAPQ_STATUS_LOGS_PER_READ 200
#define MAPQ_STATUS_READS_MAX     4

/* The page, as embedded by cmake/embed.cmake (NUL terminated). */
extern const char mapq_status_page_html[];
extern const size_t mapq_status_page_html_len;

struct mapq_status_page;

/*
 * Routes GET / and GET /api/status of http (borrowed) to a new status page
 * of driver d (borrowed: it reads through mapq_driver_redis(d) and counts
 * mapq_driver_count(d)) under namespace ns (copied). Returns the page;
 * the caller frees it with mapq_status_page_free() once the loop has
 * stopped, before or after d and http. Runs on base's loop.
 */
struct mapq_status_page *mapq_status_page_new(struct event_base *base,
                                              struct mapq_http *http,
                                              struct mapq_driver *d,
                                              const char *ns);

/* Frees sp; a read still in flight is let go (its reply is dropped).
 * NULL-safe. */
void mapq_status_page_free(struct mapq_status_page *sp);

#endif
