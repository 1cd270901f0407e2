/*
 * mapq_http.h - a small HTTP server on a libevent loop (evhttp) for the
 * metrics and status endpoints of mapq-agent and mapq scheduler.
 *
 * GET and HEAD only; a request is routed by its path, exactly, and
 * answered at once from what the process holds (handlers never wait on
 * Redis: they read state kept fresh by the process's own timers).
 */
#ifndef MAPQ_HTTP_H
#define MAPQ_HTTP_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>

#include "mapq_buf.h"
#include "mapq_err.h"

struct mapq_http;

/*
 * Answers a GET of the path it was routed for: appends the body to out,
 * points *ctype at its content type (a static string) and returns the
 * HTTP status. query is the request's query string, or NULL (borrowed).
 */
typedef int mapq_http_fn(const char *query, struct mapq_buf *out,
                         const char **ctype, void *arg);

/*
 * Listens on addr, "HOST:PORT" (":PORT" for every address; "[::1]:PORT"
 * for IPv6; PORT 0 picks a free one). Returns the server (free with
 * mapq_http_free()), or NULL with the reason in err: a malformed address
 * (MAPQ_EINVAL) or one it cannot listen on (MAPQ_EIO).
 */
struct mapq_http *mapq_http_new(struct event_base *base, const char *addr,
                                char *err);
void mapq_http_free(struct mapq_http *h);

/* Routes GETs of path (copied) to fn; arg is borrowed. Other paths get 404. */
void mapq_http_route(struct mapq_http *h, const char *path, mapq_http_fn *fn,
                     void *arg);

/* The port it listens on. */
int mapq_http_port(const struct mapq_http *h);

/* Parses "HOST:PORT" into host (hostlen bytes) and port; false when
 * malformed. */
bool mapq_http_parse_addr(const char *addr, char *host, size_t hostlen,
                          int *port);

#endif
