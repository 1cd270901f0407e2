/*
 * mapq_sentinel.h - finding the Redis primary of a redis+sentinel:// URL:
 * each Sentinel it names is asked in turn (SENTINEL
 * get-master-addr-by-name NAME) until one names the primary's address.
 *
 * A Sentinel's answer may be stale for a moment around a failover, so the
 * connection (mapq_redis.c) also asks the server it reaches for its ROLE
 * and, if it is not the primary, asks the Sentinels again later. Sentinels
 * are asked without a password. Nothing here logs: failures come back as
 * text for the caller.
 */
#ifndef MAPQ_SENTINEL_H
#define MAPQ_SENTINEL_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stddef.h>

#include "mapq_err.h"
#include "mapq_redis_url.h"

/*
 * Blocking, for short-lived commands: sets url->host and url->port to the
 * primary's, each Sentinel given timeout_ms. Returns MAPQ_OK, or
 * MAPQ_EREDIS with err saying what the last Sentinel asked answered.
 */
enum mapq_err mapq_sentinel_find_sync(struct mapq_redis_url *url,
                                      int timeout_ms, char *err);

/* One lookup on an event loop. */
struct mapq_sentinel;

/* Called once, on the loop: with the primary's address (host borrowed),
 * or host NULL and why ("sentinel h:p: ..." of the last one asked). */
typedef void mapq_sentinel_fn(const char *host, int port, const char *why,
                              void *arg);

/*
 * Starts a lookup on base for the Sentinels and primary name of url (which
 * is copied), each Sentinel given timeout_ms. fn runs exactly once, never
 * inside this call, unless the lookup is cancelled first; the lookup frees
 * itself after fn returns.
 */
struct mapq_sentinel *mapq_sentinel_find(struct event_base *base,
                                         const struct mapq_redis_url *url,
                                         int timeout_ms, mapq_sentinel_fn *fn,
                                         void *arg);

/* Ends a lookup whose fn has not run yet (it never will) and frees it;
 * NULL-safe. */
void mapq_sentinel_cancel(struct mapq_sentinel *s);

/*
 * Reads a reply of SENTINEL get-master-addr-by-name: a two-element array
 * of host and port. Returns 0 with host (cap bytes) and *port set, or -1
 * with why (whylen bytes) saying what the reply was instead.
 */
int mapq_sentinel_reply(const redisReply *reply, const char *name, char *host,
                        size_t cap, int *port, char *why, size_t whylen);

#endif
