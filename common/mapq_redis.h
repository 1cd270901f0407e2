/*
 * mapq_redis.h - Redis connections: an async connection with
 * per-request timeouts and reconnect, and a blocking connect for the CLI
 * (URLs: mapq_redis_url.h).
 *
 * hiredis 0.14.1 has no async timeouts, so every request carries its own
 * libevent timer: when one expires the connection is treated as dead, every
 * pending request fails (reply NULL) and the connection is rebuilt with
 * backoff. A reply that timed out may still have been applied by the server,
 * so every mapq function is safe to repeat. On each (re)connection the
 * connection authenticates, selects the database and makes sure Redis
 * holds the mapq function library (mapq_redis_set_library_cb()); it is
 * not ready for requests until then.
 */
#ifndef MAPQ_REDIS_H
#define MAPQ_REDIS_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapq_argv.h"
#include "mapq_err.h"
#include "mapq_redis_url.h"

/* The version of mapq's Redis protocol: its keys and its function library
 * (named mapq<N>, functions mapq<N>_*), which every process loads. */
#define MAPQ_PROTOCOL 1

/* The revision of that library (REVISION in mapq_functions.lua), and the
 * SHA-256 of its text, which unit.redis checks so that no change of the
 * library goes without a new revision. Every revision of a protocol from
 * MAPQ_FUNCTIONS_OLDEST on serves every process of it: a change that would
 * not makes a new protocol. 10 is the first revision with every function
 * a process calls (mapq1_record came with 7, mapq1_blob_hold and
 * mapq1_blob_sweep with 10); a process replaces an older one, and cannot
 * use one that Redis does not let it replace (integration.upgrade runs
 * revision 9 and several after it as this repository's history has
 * them). */
#define MAPQ_FUNCTIONS_REVISION 21
#define MAPQ_FUNCTIONS_OLDEST   10

/* The first revisions that take what a process sends only to them (the
 * calls' arguments in docs/PROTOCOL.md): mapq1_step's log pages, and
 * mapq1_push's body fields. See mapq_redis_library(). */
#define MAPQ_FUNCTIONS_LOG_PAGES   17
#define MAPQ_FUNCTIONS_PUSH_FIELDS 19
#define MAPQ_FUNCTIONS_SHA256 \
    "ce79ecd9caabfabd7b666f5fe2936588a504afbae52688909f34e9bd7bab11d4"

/* The embedded function library source (mapq_functions.lua). */
extern const char mapq_functions_lua[];
extern const size_t mapq_functions_lua_len;

/*
 * Where a password may come from besides the URL, so that none need be
 * given in argv: the file at file (its first line; --redis-password-file)
 * replaces the URL's, and without a file the variable MAPQ_REDIS_PASSWORD
 * fills a URL that has none. file may be NULL. Returns MAPQ_OK, or an
 * error with err set (the file unreadable, empty or too long).
 */
enum mapq_err mapq_redis_url_password(struct mapq_redis_url *url,
                                      const char *file, char *err);

/*
 * Blocking connection for short-lived commands: connects within timeout_ms,
 * sets the same socket timeout for replies, authenticates, selects the db
 * and loads the function library unless Redis holds one (of any revision:
 * only long-lived processes replace an older one). Returns the context
 * (caller frees with redisFree()) or NULL with "cannot connect to redis
 * 'URL': reason" in err.
 */
redisContext *mapq_redis_connect_sync(const struct mapq_redis_url *url,
                                      int timeout_ms, char *err);

/*
 * --durable on a blocking connection: waits until url->durable replicas
 * hold every write c has made (WAIT), at most timeout_ms. Returns MAPQ_OK
 * (at once when url->durable is 0), or MAPQ_EREDIS with err set when
 * fewer confirmed it: the write may then be lost in a failover.
 */
enum mapq_err mapq_redis_wait_sync(redisContext *c,
                                   const struct mapq_redis_url *url,
                                   int timeout_ms, char *err);

/*
 * Async connection. With a Sentinel URL, every (re)connection asks the
 * Sentinels for the primary and checks its ROLE; a READONLY reply (a
 * primary demoted by a failover) fails the request as a lost connection
 * and reconnects. With url->durable, each command is followed by WAIT and
 * its reply is given only once that many replicas hold the write;
 * otherwise the request fails as a lost connection.
 */
struct mapq_redis;

/* Called with the reply (borrowed: freed by hiredis after the call; copy
 * what you keep), or reply == NULL and a reason when the request timed out
 * or the connection was lost. Error replies arrive as REDIS_REPLY_ERROR. */
typedef void mapq_redis_reply_fn(redisReply *reply, const char *why, void *arg);

/* Called on the loop when the connection becomes ready (up == true, after
 * setup has loaded the library if Redis held none; see
 * mapq_redis_set_library_cb() for other revisions) or is lost (up ==
 * false). */
typedef void mapq_redis_state_fn(struct mapq_redis *r, bool up, void *arg);

/*
 * Creates a connection on base; it starts connecting once the loop runs.
 * name labels log lines. on_state may be NULL. Returns the connection; free
 * with mapq_redis_free() from outside its reply callbacks.
 */
struct mapq_redis *mapq_redis_new(struct event_base *base,
                                  const struct mapq_redis_url *url,
                                  const char *name,
                                  mapq_redis_state_fn *on_state, void *arg);

/* Fails pending requests (callbacks run with NULL) and frees; NULL-safe. */
void mapq_redis_free(struct mapq_redis *r);

/* Whether requests may be sent: connected, and its setup done. */
bool mapq_redis_ready(const struct mapq_redis *r);

/*
 * Sends one command (arguments are copied). fn runs exactly once, on the
 * loop, never inside this call. timeout_ms bounds the wait for the reply;
 * while the connection is not ready the request fails at once.
 */
void mapq_redis_command(struct mapq_redis *r, int timeout_ms,
                        mapq_redis_reply_fn *fn, void *arg, int argc,
                        const char **argv, const size_t *argvlen);

/*
 * Called on the loop with the round trip of each request that got a reply
 * (microseconds from sending it to its reply, Redis's own time included),
 * before the request's callback; not for the setup commands. For metrics:
 * a connection that blocks in BLPOP should not have one.
 */
typedef void mapq_redis_rtt_fn(struct mapq_redis *r, int64_t us, void *arg);
void mapq_redis_set_rtt_cb(struct mapq_redis *r, mapq_redis_rtt_fn *fn,
                           void *arg);

/*
 * Called on the loop when connecting or setting up the connection fails
 * for a cause other than the one before ("AUTH: WRONGPASS invalid
 * username-password pair ...", "connect: Connection refused"; borrowed),
 * and once with cause NULL when the connection is ready again after such
 * failures. So a caller that logs here logs each cause once, not once per
 * reconnect attempt.
 */
typedef void mapq_redis_fault_fn(struct mapq_redis *r, const char *cause,
                                 void *arg);
void mapq_redis_set_fault_cb(struct mapq_redis *r, mapq_redis_fault_fn *fn,
                             void *arg);

/*
 * A connection with a library callback replaces an older revision of the
 * library that it finds in Redis; one without uses it as it is (its
 * process has another connection that replaces it, or is short-lived).
 * The callback runs on the loop at the end of a setup that found another
 * revision: held (0 for a library older than revisions); when held <
 * MAPQ_FUNCTIONS_REVISION the setup replaced it, unless refused (borrowed:
 * "FUNCTION LOAD REPLACE: reason") says Redis would not. The connection is
 * up either way.
 */
typedef void mapq_redis_library_fn(struct mapq_redis *r, int held,
                                   const char *refused, void *arg);
void mapq_redis_set_library_cb(struct mapq_redis *r, mapq_redis_library_fn *fn,
                               void *arg);

/* The revision of the function library that r's calls run, as its last
 * setup found or made it: MAPQ_FUNCTIONS_REVISION, an older one it did not
 * replace, or a newer one; MAPQ_FUNCTIONS_REVISION before any setup. */
int mapq_redis_library(const struct mapq_redis *r);

/* Writes into buf (len bytes, truncated and terminated) what such a call
 * means, one line for the caller to log; returns true when it is a
 * warning (an older library that Redis did not let this process replace). */
bool mapq_redis_library_text(int held, const char *refused, char *buf,
                             size_t len);

/* Writes into buf (len bytes, truncated and terminated) why a library of
 * revision held (under MAPQ_FUNCTIONS_OLDEST) that Redis would not let this
 * process replace (refused, borrowed: "FUNCTION LOAD REPLACE: reason")
 * cannot be used, and what to do. A connection with a library callback
 * fails its setup so, and tries again with backoff; a blocking one
 * (mapq_redis_connect_sync()) fails. */
void mapq_redis_unusable_text(int held, const char *refused, char *buf,
                              size_t len);

/* Connection timing, in ms (tests shorten them). Reconnects wait a jittered
 * delay growing from backoff_min_ms to backoff_max_ms. */
struct mapq_redis_timing {
    int connect_timeout_ms; /* default 2000 */
    int backoff_min_ms;     /* default 50 */
    int backoff_max_ms;     /* default 2000 */
};
void mapq_redis_set_timing(struct mapq_redis *r,
                           const struct mapq_redis_timing *t);

#endif
