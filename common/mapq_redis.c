/*
 * mapq_redis.c - the async connection: request timeouts, reconnects (through
 * the Sentinels for a Sentinel URL), --durable's WAIT, and the loading of
 * the function library on setup (the blocking connection:
 * mapq_redis_sync.c; what setup sends: mapq_redis_setup.c).
 *
 * With mapq_sentinel.c, the only file that attaches hiredis to libevent. It
 * never logs: failures reach callers through reply callbacks and state
 * callbacks. Ownership: each request is owned by this module from
 * mapq_redis_command() until its callback has run.
 */
#include "mapq_redis.h"

#include <fcntl.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <time.h>

#include "mapq_alloc.h"
#include "mapq_argv.h"
#include "mapq_redis_setup.h"
#include "mapq_reply.h"
#include "mapq_retry.h"
#include "mapq_sentinel.h"

struct request {
    struct mapq_redis *r;
    mapq_redis_reply_fn *fn;
    void *arg;
    struct event *timer;
    const char *why;  /* set when failing without a reply */
    redisReply *held; /* --durable: the command's reply, while its WAIT's
                         is awaited (owned) */
    bool waits;       /* --durable: a WAIT follows the command */
    int64_t sent_us;  /* monotonic, when the connection has an rtt callback */
    TAILQ_ENTRY(request) entry;
};

TAILQ_HEAD(request_list, request);

struct mapq_redis {
    struct event_base *base;
    struct mapq_redis_url url;
    char name[64];
    redisAsyncContext *ac;     /* NULL while disconnected */
    struct mapq_sentinel *ask; /* asking the Sentinels, or NULL */
    bool ready;                /* connected: requests may be sent */
    bool up;                   /* on_state told up, and not down since */
    struct event *retry_ev;
    struct event *connect_ev;
    struct mapq_retry retry; /* reconnect delays and the current cause */
    struct mapq_redis_timing timing;
    mapq_redis_state_fn *on_state;
    void *state_arg;
    mapq_redis_fault_fn *on_fault;
    void *fault_arg;
    mapq_redis_library_fn *on_library;
    void *library_arg;
    mapq_redis_rtt_fn *on_rtt;
    void *rtt_arg;
    int held_revision; /* of the library Redis held at setup */
    int library;       /* the revision the calls run, since the last setup */
    int setup_seen;    /* setup replies read so far */
    const char *setup_names[MAPQ_SETUP_MAX]; /* the setup commands, in order */
    char fault[MAPQ_REPLY_FAULT_LEN]; /* why setup failed, for teardown() */
    char told[300]; /* the cause last told to on_fault; "" once cleared */
    struct request_list pending; /* sent, waiting for a reply */
};

static void start_connect(struct mapq_redis *r);
static void teardown(struct mapq_redis *r, const char *why);

/* ---- async connection -------------------------------------------------- */

static void
request_free(struct request *req)
{
    if (req->timer != NULL)
        event_free(req->timer);
    if (req->held != NULL)
        freeReplyObject(req->held);
    free(req);
}

/* Deferred failure of a request that was never sent. */
static void
request_fail_cb(evutil_socket_t fd, short what, void *arg)
{
    struct request *req = arg;

    (void)fd;
    (void)what;
    req->fn(NULL, req->why, req->arg);
    request_free(req);
}

static int64_t
monotonic_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Whether reply refuses a write because the server is a replica. */
static bool
is_readonly(const redisReply *reply)
{
    return reply != NULL && reply->type == REDIS_REPLY_ERROR &&
           strncmp(reply->str, "READONLY ", 9) == 0;
}

/* --durable: keeps the command's reply until its WAIT's arrives. */
static void
held_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct request *req = privdata;

    (void)ac;
    if (reply != NULL)
        req->held = mapq_reply_dup(reply);
}

static void
reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct request *req = privdata;
    struct mapq_redis *r = req->r;
    redisReply *wait = NULL;
    const char *why = NULL;

    (void)ac;
    TAILQ_REMOVE(&r->pending, req, entry);
    if (req->waits && reply != NULL) {
        /* The reply was WAIT's: the command's goes to the caller only when
         * enough replicas have it. */
        wait = reply;
        reply = req->held;
        if (!is_readonly(reply) && (wait->type != REDIS_REPLY_INTEGER ||
                                    wait->integer < r->url.durable))
            why = "no replica confirmed the write in time (--durable)";
    }
    if (is_readonly(reply))
        why = "redis is a replica now (READONLY)";
    if (why != NULL) {
        /* The write may not survive (or never ran): the caller repeats it
         * once the connection is rebuilt, through the Sentinels for a
         * failover. */
        req->fn(NULL, why, req->arg);
        request_free(req);
        snprintf(r->fault, sizeof(r->fault), "%s", why);
        teardown(r, why);
        return;
    }
    if (reply != NULL && req->sent_us > 0)
        r->on_rtt(r, monotonic_us() - req->sent_us, r->rtt_arg);
    req->fn(reply, reply ? NULL : (req->why ? req->why : "connection lost"),
            req->arg);
    request_free(req);
}

static void
request_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct request *req = arg;

    (void)fd;
    (void)what;
    req->why = "request timed out";
    teardown(req->r, "request timed out");
}

/* Sends a command; one of setup goes while the connection is not ready
 * yet. */
static void
send_command(struct mapq_redis *r, bool setup, int timeout_ms,
             mapq_redis_reply_fn *fn, void *arg, int argc, const char **argv,
             const size_t *argvlen)
{
    struct request *req = mapq_xcalloc(1, sizeof(*req));
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    static const struct timeval zero = {0, 0};
    char *cmd = NULL;
    size_t len;
    int rc = REDIS_ERR;

    req->r = r;
    req->fn = fn;
    req->arg = arg;
    req->waits = !setup && r->url.durable > 0;
    if ((r->ready || setup) && r->ac != NULL) {
        cmd = mapq_argv_resp(argc, argv, argvlen, &len);
        rc = redisAsyncFormattedCommand(r->ac, req->waits ? held_cb : reply_cb,
                                        req, cmd, len);
        free(cmd);
    }
    if (rc != REDIS_OK ||
        (req->waits &&
         redisAsyncCommand(r->ac, reply_cb, req, "WAIT %d %d", r->url.durable,
                           timeout_ms > 1 ? timeout_ms / 2 : 1) != REDIS_OK)) {
        req->why = "not connected to redis";
        req->timer = evtimer_new(r->base, request_fail_cb, req);
        evtimer_add(req->timer, &zero);
        return;
    }
    TAILQ_INSERT_TAIL(&r->pending, req, entry);
    if (r->on_rtt != NULL && !setup)
        req->sent_us = monotonic_us();
    req->timer = evtimer_new(r->base, request_timeout_cb, req);
    evtimer_add(req->timer, &tv);
}

void
mapq_redis_set_rtt_cb(struct mapq_redis *r, mapq_redis_rtt_fn *fn, void *arg)
{
    r->on_rtt = fn;
    r->rtt_arg = arg;
}

void
mapq_redis_command(struct mapq_redis *r, int timeout_ms,
                   mapq_redis_reply_fn *fn, void *arg, int argc,
                   const char **argv, const size_t *argvlen)
{
    send_command(r, false, timeout_ms, fn, arg, argc, argv, argvlen);
}

/* Reconnects after a jittered, growing delay; a cause the connection did
 * not have before is told to the fault callback. */
static void
schedule_retry(struct mapq_redis *r, const char *cause)
{
    struct timeval tv;
    int delay_ms;
    bool fresh = mapq_retry_fail(&r->retry, cause, &delay_ms);

    /* mapq_retry tells causes apart by their first word, here the setup
     * command ("AUTH:"); the same command refused for another reason
     * (WRONGPASS, then no password configured at all) is news too. */
    if (fresh || strncmp(cause, r->told, sizeof(r->told) - 1) != 0) {
        snprintf(r->told, sizeof(r->told), "%s", cause);
        if (r->on_fault != NULL)
            r->on_fault(r, r->told, r->fault_arg);
    }
    tv.tv_sec = delay_ms / 1000;
    tv.tv_usec = (delay_ms % 1000) * 1000;
    evtimer_add(r->retry_ev, &tv);
}

/* Frees the hiredis context; pending requests fail with why. */
static void
teardown(struct mapq_redis *r, const char *why)
{
    redisAsyncContext *ac = r->ac;
    bool was_up = r->up;
    struct request *req;

    if (ac == NULL)
        return;
    r->ac = NULL;
    r->ready = false;
    r->up = false;
    evtimer_del(r->connect_ev);
    TAILQ_FOREACH (req, &r->pending, entry)
        if (req->why == NULL)
            req->why = why;
    ac->data = NULL; /* the disconnect callback must not touch r */
    redisAsyncFree(ac);
    if (was_up && r->on_state != NULL)
        r->on_state(r, false, r->state_arg);
    schedule_retry(r, r->fault[0] != '\0' ? r->fault : why);
    r->fault[0] = '\0';
}

/* Keeps "NAME: reply" of a refused setup command for teardown(). */
static void
setup_refused(struct mapq_redis *r, const redisReply *reply)
{
    const char *name = r->setup_seen < MAPQ_SETUP_MAX
                           ? r->setup_names[r->setup_seen]
                           : "setup";

    mapq_redis_setup_reason(r->fault, sizeof(r->fault), name,
                            reply->str ? reply->str : "",
                            reply->str ? reply->len : 0);
}

static void
setup_reply_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_redis *r = arg;

    (void)why;
    /* Any failure here already tore the connection down, or will: the
     * connection is only marked ready at the end of setup. */
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        setup_refused(r, reply);
        teardown(r, "redis refused the connection setup");
        return;
    }
    if (reply != NULL && r->setup_seen < MAPQ_SETUP_MAX &&
        strcmp(r->setup_names[r->setup_seen], "ROLE") == 0 &&
        !mapq_redis_setup_primary(reply, r->fault, sizeof(r->fault))) {
        teardown(r, "not the primary");
        return;
    }
    if (reply != NULL)
        r->setup_seen++;
}

/* The end of setup: the connection is ready and up, unless its calls
 * would find a library too old for them (then it tries again later: an
 * operator may load a newer one meanwhile). */
static void
setup_done(struct mapq_redis *r, const char *refused)
{
    r->library = r->held_revision < MAPQ_FUNCTIONS_REVISION &&
                         r->on_library != NULL && refused == NULL
                     ? MAPQ_FUNCTIONS_REVISION
                     : r->held_revision;
    if (r->on_library != NULL && r->library < MAPQ_FUNCTIONS_OLDEST) {
        mapq_redis_unusable_text(r->held_revision, refused, r->fault,
                                 sizeof(r->fault));
        teardown(r, "redis holds a mapq function library too old to use");
        return;
    }
    if (r->held_revision != MAPQ_FUNCTIONS_REVISION && r->on_library != NULL)
        r->on_library(r, r->held_revision, refused, r->library_arg);
    r->told[0] = '\0';
    if (mapq_retry_ok(&r->retry) && r->on_fault != NULL)
        r->on_fault(r, NULL, r->fault_arg);
    r->ready = true;
    r->up = true;
    if (r->on_state != NULL)
        r->on_state(r, true, r->state_arg);
}

/* Fails setup with "what: reply". */
static void
setup_failed(struct mapq_redis *r, const char *what, const redisReply *reply)
{
    mapq_redis_setup_reason(r->fault, sizeof(r->fault), what,
                            reply->str ? reply->str : "",
                            reply->str ? reply->len : 0);
    teardown(r, "redis refused the mapq function library");
}

/* The reply of FUNCTION LOAD REPLACE of an older library. A refusal is
 * told, not fatal: every revision of the protocol serves this process. */
static void
replaced_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_redis *r = arg;
    char reason[MAPQ_ERR_LEN];

    (void)why;
    if (reply == NULL)
        return;
    reason[0] = '\0';
    if (reply->type == REDIS_REPLY_ERROR)
        mapq_redis_setup_reason(reason, sizeof(reason), "FUNCTION LOAD REPLACE",
                                reply->str, reply->len);
    setup_done(r, reason[0] != '\0' ? reason : NULL);
}

/* Sends FUNCTION LOAD [REPLACE] during setup, its reply to fn. */
static void
send_load(struct mapq_redis *r, bool replace, mapq_redis_reply_fn *fn)
{
    struct mapq_argv cmd;

    mapq_redis_setup_load(&cmd, replace);
    send_command(r, true, r->timing.connect_timeout_ms, fn, r, cmd.argc,
                 cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
}

static void version_cb(redisReply *reply, const char *why, void *arg);

/* Sends FCALL_RO mapq1_version during setup, its reply to fn. */
static void
send_version(struct mapq_redis *r, mapq_redis_reply_fn *fn)
{
    struct mapq_argv cmd;

    mapq_redis_setup_version(&cmd);
    send_command(r, true, r->timing.connect_timeout_ms, fn, r, cmd.argc,
                 cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
}

/* The second reply of FCALL_RO mapq1_version, after FUNCTION LOAD found a
 * library: another process loaded this revision or another meanwhile, or
 * it is older than revisions (still no mapq1_version: revision 0). */
static void
reversion_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_redis *r = arg;
    int rev;

    if (reply != NULL &&
        mapq_redis_setup_held(reply, &rev) == MAPQ_HELD_NOTHING) {
        r->held_revision = 0;
        if (r->on_library != NULL)
            send_load(r, true, replaced_cb);
        else
            setup_done(r, NULL);
        return;
    }
    version_cb(reply, why, arg);
}

/* The reply of FUNCTION LOAD where Redis had no mapq1_version: loaded (it
 * had no library), or a library is there: asked again which. */
static void
loaded_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_redis *r = arg;

    (void)why;
    if (reply == NULL)
        return;
    if (mapq_redis_setup_exists(reply))
        send_version(r, reversion_cb);
    else if (reply->type == REDIS_REPLY_ERROR)
        setup_failed(r, "FUNCTION LOAD", reply);
    else
        setup_done(r, NULL);
}

/* The revision of the library Redis holds: none is loaded; an older one
 * is replaced by a connection that tells (on_library), used by others; a
 * newer one is used as it is. */
static void
version_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_redis *r = arg;
    int rev;

    (void)why;
    if (reply == NULL)
        return;
    switch (mapq_redis_setup_held(reply, &rev)) {
    case MAPQ_HELD_NOTHING:
        send_load(r, false, loaded_cb);
        break;
    case MAPQ_HELD_REVISION:
        r->held_revision = rev;
        if (rev < MAPQ_FUNCTIONS_REVISION && r->on_library != NULL)
            send_load(r, true, replaced_cb);
        else
            setup_done(r, NULL);
        break;
    case MAPQ_HELD_REFUSED:
        setup_failed(r, "FCALL_RO mapq1_version", reply);
        break;
    }
}

static void
connect_cb(const redisAsyncContext *ac, int status)
{
    struct mapq_redis *r = ac->data;
    struct mapq_argv cmds[MAPQ_SETUP_MAX];
    int n, i;

    if (r == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        r->ac = NULL;
        evtimer_del(r->connect_ev);
        if (r->url.master[0] != '\0')
            snprintf(r->fault, sizeof(r->fault), "connect: primary %s:%d: %s",
                     r->url.host, r->url.port, ac->errstr);
        else
            snprintf(r->fault, sizeof(r->fault), "connect: %s", ac->errstr);
        schedule_retry(r, r->fault);
        r->fault[0] = '\0';
        return;
    }
    evtimer_del(r->connect_ev);
    /* Not ready until setup is done: a request made meanwhile fails at
     * once, as when disconnected, so none can reach Redis before the
     * library it calls. */
    mapq_redis_setup_commands(&r->url, cmds, r->setup_names, &n);
    r->setup_seen = 0;
    r->held_revision = MAPQ_FUNCTIONS_REVISION;
    for (i = 0; i < n; i++) {
        send_command(r, true, r->timing.connect_timeout_ms,
                     i == n - 1 ? version_cb : setup_reply_cb, r, cmds[i].argc,
                     cmds[i].argv, cmds[i].lens);
        mapq_argv_release(&cmds[i]);
    }
}

static void
disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct mapq_redis *r = ac->data;
    bool was_up;

    if (r == NULL)
        return; /* freed by teardown() */
    /* The server closed the connection, or its reply could not be read
     * (then status is REDIS_ERR); hiredis frees the context. */
    was_up = r->up;
    r->ac = NULL;
    r->ready = false;
    r->up = false;
    if (was_up && r->on_state != NULL)
        r->on_state(r, false, r->state_arg);
    if (status != REDIS_OK && r->fault[0] == '\0')
        snprintf(r->fault, sizeof(r->fault), "cannot read redis's reply: %s",
                 ac->errstr);
    if (r->fault[0] != '\0') {
        schedule_retry(r, r->fault);
        r->fault[0] = '\0';
        return;
    }
    schedule_retry(r, was_up ? "connection closed by redis"
                             : "redis closed the connection during setup");
}

static void
connect_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_redis *r = arg;

    (void)fd;
    (void)what;
    teardown(r, "connect timed out");
}

/* Connects to the server of r->url (for Sentinel, the primary found). */
static void
connect_server(struct mapq_redis *r)
{
    struct timeval tv;
    redisAsyncContext *ac;

    if (r->url.path[0] != '\0')
        ac = redisAsyncConnectUnix(r->url.path);
    else
        ac = redisAsyncConnect(r->url.host, r->url.port);
    if (ac == NULL || ac->err) {
        snprintf(r->fault, sizeof(r->fault), "connect: %s",
                 ac != NULL ? ac->errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        schedule_retry(r, r->fault);
        r->fault[0] = '\0';
        return;
    }
    ac->data = r;
    r->ac = ac;
    /* Not inherited by the agent's tasks: the connection is logged in. */
    fcntl(ac->c.fd, F_SETFD, FD_CLOEXEC);
    mapq_reply_cap(ac->c.reader, r->fault);
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    tv.tv_sec = r->timing.connect_timeout_ms / 1000;
    tv.tv_usec = (r->timing.connect_timeout_ms % 1000) * 1000;
    evtimer_add(r->connect_ev, &tv);
}

/* The Sentinels' answer: the primary, or why none named it. */
static void
found_cb(const char *host, int port, const char *why, void *arg)
{
    struct mapq_redis *r = arg;

    r->ask = NULL;
    if (host == NULL) {
        snprintf(r->fault, sizeof(r->fault), "%s", why);
        schedule_retry(r, r->fault);
        r->fault[0] = '\0';
        return;
    }
    snprintf(r->url.host, sizeof(r->url.host), "%s", host);
    r->url.port = port;
    connect_server(r);
}

/* Connects; for Sentinel, asks where the primary is first, on every
 * (re)connection: after a failover it is elsewhere. */
static void
start_connect(struct mapq_redis *r)
{
    if (r->url.master[0] != '\0')
        r->ask = mapq_sentinel_find(r->base, &r->url,
                                    r->timing.connect_timeout_ms, found_cb, r);
    else
        connect_server(r);
}

static void
retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    start_connect(arg);
}

struct mapq_redis *
mapq_redis_new(struct event_base *base, const struct mapq_redis_url *url,
               const char *name, mapq_redis_state_fn *on_state, void *arg)
{
    struct mapq_redis *r = mapq_xcalloc(1, sizeof(*r));

    r->base = base;
    r->url = *url;
    snprintf(r->name, sizeof(r->name), "%s", name);
    r->on_state = on_state;
    r->state_arg = arg;
    r->timing.connect_timeout_ms = 2000;
    r->timing.backoff_min_ms = 50;
    r->timing.backoff_max_ms = 2000;
    r->library = MAPQ_FUNCTIONS_REVISION;
    mapq_retry_init(&r->retry, r->timing.backoff_min_ms,
                    r->timing.backoff_max_ms);
    TAILQ_INIT(&r->pending);
    r->retry_ev = evtimer_new(base, retry_cb, r);
    r->connect_ev = evtimer_new(base, connect_timeout_cb, r);
    /* From the loop, so that the caller can set a fault callback first. */
    event_active(r->retry_ev, EV_TIMEOUT, 0);
    return r;
}

void
mapq_redis_set_timing(struct mapq_redis *r, const struct mapq_redis_timing *t)
{
    r->timing = *t;
    mapq_retry_init(&r->retry, t->backoff_min_ms, t->backoff_max_ms);
}

void
mapq_redis_set_fault_cb(struct mapq_redis *r, mapq_redis_fault_fn *fn,
                        void *arg)
{
    r->on_fault = fn;
    r->fault_arg = arg;
}

void
mapq_redis_set_library_cb(struct mapq_redis *r, mapq_redis_library_fn *fn,
                          void *arg)
{
    r->on_library = fn;
    r->library_arg = arg;
}

bool
mapq_redis_library_text(int held, const char *refused, char *buf, size_t len)
{
    const int own = MAPQ_FUNCTIONS_REVISION, proto = MAPQ_PROTOCOL;

    if (held > own)
        snprintf(buf, len,
                 "redis holds revision %d of the mapq%d functions, newer "
                 "than this process's %d: using it",
                 held, proto, own);
    else if (refused != NULL)
        snprintf(buf, len,
                 "redis holds revision %d of the mapq%d functions, older "
                 "than this process's %d, and did not replace it (%s): "
                 "using it, as every revision of protocol %d from %d on "
                 "serves this process",
                 held, proto, own, refused, proto, MAPQ_FUNCTIONS_OLDEST);
    else
        snprintf(buf, len,
                 "redis held revision %d of the mapq%d functions: replaced "
                 "it with this process's revision %d",
                 held, proto, own);
    return refused != NULL && held < own;
}

void
mapq_redis_unusable_text(int held, const char *refused, char *buf, size_t len)
{
    snprintf(buf, len,
             "redis holds revision %d of the mapq%d functions, older than %d, "
             "the oldest this process can use, and it may not replace it "
             "(%s): run `mapq setup` as a Redis user that may load functions",
             held, MAPQ_PROTOCOL, MAPQ_FUNCTIONS_OLDEST,
             refused != NULL ? refused : "not replaced");
}

bool
mapq_redis_ready(const struct mapq_redis *r)
{
    return r->ready;
}

int
mapq_redis_library(const struct mapq_redis *r)
{
    return r->library;
}

void
mapq_redis_free(struct mapq_redis *r)
{
    if (r == NULL)
        return;
    r->on_state = NULL;
    r->on_fault = NULL;
    mapq_sentinel_cancel(r->ask);
    teardown(r, "connection closed");
    event_free(r->retry_ev);
    event_free(r->connect_ev);
    free(r);
}
