/*
 * mapq_redis.c - the blocking CLI connection and the async connection with
 * request timeouts and reconnect, and the loading of the function library
 * on both (URLs: mapq_redis_url.c).
 *
 * This is the only file that attaches hiredis to libevent. It never logs:
 * failures reach callers through reply callbacks and state callbacks.
 * Ownership: each request is owned by this module from mapq_redis_command()
 * until its callback has run.
 */
#include "mapq_redis.h"

#include <fcntl.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/time.h>
#include <time.h>

#include "mapq_alloc.h"
#include "mapq_fs.h"
#include "mapq_retry.h"

#define SETUP_MAX 3 /* PING or AUTH, SELECT, FCALL_RO mapq1_version */

struct request {
    struct mapq_redis *r;
    mapq_redis_reply_fn *fn;
    void *arg;
    struct event *timer;
    const char *why; /* set when failing without a reply */
    int64_t sent_us; /* monotonic, when the connection has an rtt callback */
    TAILQ_ENTRY(request) entry;
};

TAILQ_HEAD(request_list, request);

struct mapq_redis {
    struct event_base *base;
    struct mapq_redis_url url;
    char name[64];
    redisAsyncContext *ac; /* NULL while disconnected */
    bool ready;            /* connected: requests may be sent */
    bool up;               /* on_state told up, and not down since */
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
    int held_revision;                  /* of the library Redis held at setup */
    int setup_seen;                     /* setup replies read so far */
    const char *setup_names[SETUP_MAX]; /* the setup commands, in order */
    char fault[300];                    /* why setup failed, for teardown() */
    char told[300]; /* the cause last told to on_fault; "" once cleared */
    struct request_list pending; /* sent, waiting for a reply */
};

static void start_connect(struct mapq_redis *r);
static void teardown(struct mapq_redis *r, const char *why);

/* ---- reply caps ------------------------------------------------------- */

/*
 * The most elements one reply may hold. hiredis allocates an array for the
 * count a reply declares before reading any element (16 GiB for
 * "*2147483647"), and this version has no limit of its own. mapq's largest
 * replies (a batch of HMGET, a claim, a scan) are far below.
 */
#define REPLY_MAX_ELEMENTS (1 << 24)

/* hiredis's own reply functions, and the same with createArray capped: a
 * dispatch table set once, never state. */
static redisReplyObjectFunctions *hiredis_fns;
static redisReplyObjectFunctions capped_fns;

static void *
capped_array(const redisReadTask *task, int elements)
{
    struct mapq_redis *r = task->privdata;

    if (elements > REPLY_MAX_ELEMENTS) {
        if (r != NULL)
            snprintf(r->fault, sizeof(r->fault),
                     "redis sent a reply of %d elements, more than the %d "
                     "mapq reads",
                     elements, REPLY_MAX_ELEMENTS);
        return NULL; /* hiredis: a reader error, the connection ends */
    }
    return hiredis_fns->createArray(task, elements);
}

/* Caps the replies reader reads; privdata (a struct mapq_redis, or NULL)
 * is told why it refused one. */
static void
cap_replies(redisReader *reader, struct mapq_redis *privdata)
{
    if (hiredis_fns == NULL) {
        hiredis_fns = reader->fn;
        capped_fns = *hiredis_fns;
        capped_fns.createArray = capped_array;
    }
    reader->fn = &capped_fns;
    reader->privdata = privdata;
}

/* ---- argument vectors -------------------------------------------------- */

void
mapq_argv_init(struct mapq_argv *a)
{
    memset(a, 0, sizeof(*a));
}

void
mapq_argv_reset(struct mapq_argv *a)
{
    int i;

    for (i = 0; i < a->argc; i++)
        free(a->owned[i]);
    a->argc = 0;
}

void
mapq_argv_release(struct mapq_argv *a)
{
    mapq_argv_reset(a);
    free(a->argv);
    free(a->lens);
    free(a->owned);
    mapq_argv_init(a);
}

void
mapq_argv_addlen(struct mapq_argv *a, const void *p, size_t n)
{
    if (a->argc == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->argv = mapq_xrealloc(a->argv, (size_t)a->cap * sizeof(*a->argv));
        a->lens = mapq_xrealloc(a->lens, (size_t)a->cap * sizeof(*a->lens));
        a->owned = mapq_xrealloc(a->owned, (size_t)a->cap * sizeof(*a->owned));
    }
    /* Terminated too, so that argv[0] can be printed as a name. */
    a->owned[a->argc] = mapq_xstrndup(p, n);
    a->argv[a->argc] = a->owned[a->argc];
    a->lens[a->argc] = n;
    a->argc++;
}

void
mapq_argv_add(struct mapq_argv *a, const char *s)
{
    mapq_argv_addlen(a, s, strlen(s));
}

void
mapq_argv_addf(struct mapq_argv *a, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    mapq_assert(n >= 0 && (size_t)n < sizeof(buf));
    mapq_argv_addlen(a, buf, (size_t)n);
}

/* ---- blocking connection ----------------------------------------------- */

/*
 * Writes "what: reason" into out (cap bytes), reason being an error
 * reply's text (len bytes, not necessarily terminated) cut to one short
 * line: the echo of the arguments that Redis appends to an unknown
 * command ("..., with args beginning with: 'LOAD' '#!lua ...") is left
 * out, and line breaks become blanks.
 */
static void
setup_reason(char *out, size_t cap, const char *what, const char *text,
             size_t len)
{
    static const char echo[] = ", with args beginning with:";
    size_t n = len < 200 ? len : 200, i, k;
    int w;

    for (i = 0; i + sizeof(echo) - 1 <= n; i++)
        if (memcmp(text + i, echo, sizeof(echo) - 1) == 0) {
            n = i;
            break;
        }
    w = snprintf(out, cap, "%s: ", what);
    if (w < 0 || (size_t)w >= cap)
        return; /* cut and terminated by snprintf */
    k = (size_t)w;
    for (i = 0; i < n && k + 1 < cap; i++, k++)
        out[k] = text[i] == '\r' || text[i] == '\n' ? ' ' : text[i];
    if (k < cap)
        out[k] = '\0';
}

/* Whether reply is FUNCTION LOAD's refusal of a library that Redis holds
 * already (loaded meanwhile by another process, or one older than
 * revisions, which has no mapq1_version). */
static bool
library_exists(const redisReply *reply)
{
    static const char prefix[] = "ERR Library 'mapq";
    static const char suffix[] = "' already exists";

    return reply->type == REDIS_REPLY_ERROR &&
           reply->len > sizeof(prefix) + sizeof(suffix) - 2 &&
           memcmp(reply->str, prefix, sizeof(prefix) - 1) == 0 &&
           memcmp(reply->str + reply->len - (sizeof(suffix) - 1), suffix,
                  sizeof(suffix) - 1) == 0;
}

/* What the reply of FCALL_RO mapq1_version says. */
enum held {
    HELD_REVISION, /* a library of that revision */
    HELD_NOTHING,  /* no such function: no library, or one older than
                      revisions */
    HELD_REFUSED,  /* anything else: setup fails */
};

static enum held
held_revision(const redisReply *reply, int *rev)
{
    static const char missing[] = "ERR Function not found";

    if (reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0 &&
        reply->integer <= INT_MAX) {
        *rev = (int)reply->integer;
        return HELD_REVISION;
    }
    if (reply->type == REDIS_REPLY_ERROR && reply->len >= sizeof(missing) - 1 &&
        memcmp(reply->str, missing, sizeof(missing) - 1) == 0)
        return HELD_NOTHING;
    return HELD_REFUSED;
}

/* Fills cmd with FCALL_RO mapq1_version. */
static void
version_command(struct mapq_argv *cmd)
{
    mapq_argv_init(cmd);
    mapq_argv_add(cmd, "FCALL_RO");
    mapq_argv_add(cmd, "mapq1_version");
    mapq_argv_add(cmd, "0");
}

/* Fills cmd with FUNCTION LOAD [REPLACE] of the library. */
static void
load_command(struct mapq_argv *cmd, bool replace)
{
    mapq_argv_init(cmd);
    mapq_argv_add(cmd, "FUNCTION");
    mapq_argv_add(cmd, "LOAD");
    if (replace)
        mapq_argv_add(cmd, "REPLACE");
    mapq_argv_addlen(cmd, mapq_functions_lua, mapq_functions_lua_len);
}

/* Runs one setup command; returns its reply (caller frees with
 * freeReplyObject()), or NULL with err set when there is none or it is
 * an error other than those ok_error accepts (may be NULL). */
static redisReply *
sync_setup(redisContext *c, const char *what, char *err,
           bool (*ok_error)(const redisReply *), const struct mapq_argv *cmd)
{
    redisReply *reply = redisCommandArgv(c, cmd->argc, cmd->argv, cmd->lens);
    char why[MAPQ_ERR_LEN];

    if (reply == NULL) {
        /* The reader says OOM for a reply over the cap, too. */
        mapq_err_set(err, MAPQ_EREDIS, "%s: %s", what,
                     c->err == REDIS_ERR_OOM
                         ? "cannot read redis's reply: too large, or out of "
                           "memory"
                         : c->errstr);
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR &&
        (ok_error == NULL || !ok_error(reply))) {
        setup_reason(why, sizeof(why), what, reply->str, reply->len);
        mapq_err_set(err, MAPQ_EREDIS, "%s", why);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* Whether reply is an error that FCALL_RO mapq1_version may give during
 * setup: the function is missing (the library then gets loaded). */
static bool
version_missing(const redisReply *reply)
{
    int rev;

    return held_revision(reply, &rev) == HELD_NOTHING;
}

/* Fills cmds with the setup commands for url (PING or AUTH, SELECT,
 * FCALL_RO mapq1_version), and names with what error messages call them.
 * The library is loaded after them only when Redis does not hold it. */
static void
setup_commands(const struct mapq_redis_url *url, struct mapq_argv *cmds,
               const char **names, int *ncmds)
{
    int n = 0;

    if (url->password[0] == '\0') {
        /* A small command first: without it a server that wants a
         * password answers a large FUNCTION LOAD with "unauthenticated
         * bulk length" and closes, hiding the NOAUTH. */
        mapq_argv_init(&cmds[n]);
        mapq_argv_add(&cmds[n], "PING");
        names[n++] = "PING";
    } else {
        mapq_argv_init(&cmds[n]);
        mapq_argv_add(&cmds[n], "AUTH");
        if (url->user[0] != '\0')
            mapq_argv_add(&cmds[n], url->user);
        mapq_argv_add(&cmds[n], url->password);
        names[n++] = "AUTH";
    }
    if (url->db != 0) {
        mapq_argv_init(&cmds[n]);
        mapq_argv_add(&cmds[n], "SELECT");
        mapq_argv_addf(&cmds[n], "%d", url->db);
        names[n++] = "SELECT";
    }
    version_command(&cmds[n]);
    names[n++] = "FCALL_RO mapq1_version";
    *ncmds = n;
}

/* The blocking setup: the commands, then FUNCTION LOAD when Redis has no
 * mapq1_version. Short-lived, this process uses whatever revision Redis
 * holds and never replaces it. Returns 0 or -1 with why set. */
static int
sync_setup_all(redisContext *c, const struct mapq_redis_url *url, char *why)
{
    struct mapq_argv cmds[SETUP_MAX], load;
    const char *names[SETUP_MAX];
    redisReply *reply = NULL;
    int n, i, rev, rc = 0;

    setup_commands(url, cmds, names, &n);
    for (i = 0; i < n && rc == 0; i++) {
        reply = sync_setup(c, names[i], why,
                           i == n - 1 ? version_missing : NULL, &cmds[i]);
        if (reply == NULL)
            rc = -1;
        else if (i < n - 1)
            freeReplyObject(reply);
    }
    for (i = 0; i < n; i++)
        mapq_argv_release(&cmds[i]);
    if (rc != 0 || reply == NULL)
        return -1;
    if (held_revision(reply, &rev) == HELD_NOTHING) {
        load_command(&load, false);
        freeReplyObject(reply);
        reply = sync_setup(c, "FUNCTION LOAD", why, library_exists, &load);
        rc = reply != NULL ? 0 : -1;
        mapq_argv_release(&load);
    }
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}

enum mapq_err
mapq_redis_url_password(struct mapq_redis_url *url, const char *file, char *err)
{
    const char *env = getenv("MAPQ_REDIS_PASSWORD");
    struct mapq_buf b;
    enum mapq_err rc;
    size_t n;

    if (file == NULL) {
        if (url->password[0] == '\0' && env != NULL && *env != '\0')
            snprintf(url->password, sizeof(url->password), "%s", env);
        return MAPQ_OK;
    }
    mapq_buf_init(&b, sizeof(url->password) + 2);
    rc = mapq_fs_read_file(file, &b, err);
    if (rc == MAPQ_OK) {
        n = strcspn(b.data != NULL ? b.data : "", "\r\n");
        if (n == 0 || n >= sizeof(url->password))
            rc = mapq_err_set(err, MAPQ_EINVAL, "password file '%s' %s", file,
                              n == 0 ? "is empty" : "holds over 255 bytes");
        else {
            memcpy(url->password, b.data, n);
            url->password[n] = '\0';
        }
    } else if (rc == MAPQ_ENOENT || rc == MAPQ_ETOOBIG) {
        mapq_err_set(err, rc, "password file '%s': %s", file,
                     rc == MAPQ_ENOENT ? "no such file"
                                       : "over 255 bytes: not a password");
    }
    if (b.data != NULL)
        memset(b.data, 0, b.cap);
    mapq_buf_release(&b);
    return rc;
}

redisContext *
mapq_redis_connect_sync(const struct mapq_redis_url *url, int timeout_ms,
                        char *err)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    char shown[300], why[MAPQ_ERR_LEN];
    redisContext *c;

    mapq_redis_url_format(url, shown, sizeof(shown));
    if (url->path[0] != '\0')
        c = redisConnectUnixWithTimeout(url->path, tv);
    else
        c = redisConnectWithTimeout(url->host, url->port, tv);
    if (c == NULL || c->err) {
        mapq_err_set(err, MAPQ_EREDIS, "cannot connect to redis '%s': %s",
                     shown, c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    /* Not inherited by any process this one starts (a task). */
    fcntl(c->fd, F_SETFD, FD_CLOEXEC);
    cap_replies(c->reader, NULL);
    redisSetTimeout(c, tv);
    if (sync_setup_all(c, url, why) != 0) {
        mapq_err_set(err, MAPQ_EREDIS, "cannot use redis '%s': %s", shown, why);
        redisFree(c);
        return NULL;
    }
    return c;
}

/* ---- async connection -------------------------------------------------- */

static void
request_free(struct request *req)
{
    if (req->timer != NULL)
        event_free(req->timer);
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

static void
reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct request *req = privdata;
    struct mapq_redis *r = req->r;

    (void)ac;
    TAILQ_REMOVE(&r->pending, req, entry);
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

    req->r = r;
    req->fn = fn;
    req->arg = arg;
    if ((!r->ready && !setup) || r->ac == NULL ||
        redisAsyncCommandArgv(r->ac, reply_cb, req, argc, argv, argvlen) !=
            REDIS_OK) {
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
    const char *name =
        r->setup_seen < SETUP_MAX ? r->setup_names[r->setup_seen] : "setup";

    setup_reason(r->fault, sizeof(r->fault), name, reply->str ? reply->str : "",
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
    if (reply != NULL)
        r->setup_seen++;
}

/* The end of setup: the connection is ready and up. */
static void
setup_done(struct mapq_redis *r, const char *refused)
{
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
    setup_reason(r->fault, sizeof(r->fault), what, reply->str ? reply->str : "",
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
        setup_reason(reason, sizeof(reason), "FUNCTION LOAD REPLACE",
                     reply->str, reply->len);
    setup_done(r, reason[0] != '\0' ? reason : NULL);
}

/* Sends FUNCTION LOAD [REPLACE] during setup, its reply to fn. */
static void
send_load(struct mapq_redis *r, bool replace, mapq_redis_reply_fn *fn)
{
    struct mapq_argv cmd;

    load_command(&cmd, replace);
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

    version_command(&cmd);
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

    if (reply != NULL && held_revision(reply, &rev) == HELD_NOTHING) {
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
    if (library_exists(reply))
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
    switch (held_revision(reply, &rev)) {
    case HELD_NOTHING:
        send_load(r, false, loaded_cb);
        break;
    case HELD_REVISION:
        r->held_revision = rev;
        if (rev < MAPQ_FUNCTIONS_REVISION && r->on_library != NULL)
            send_load(r, true, replaced_cb);
        else
            setup_done(r, NULL);
        break;
    case HELD_REFUSED:
        setup_failed(r, "FCALL_RO mapq1_version", reply);
        break;
    }
}

static void
connect_cb(const redisAsyncContext *ac, int status)
{
    struct mapq_redis *r = ac->data;
    struct mapq_argv cmds[SETUP_MAX];
    int n, i;

    if (r == NULL)
        return;
    if (status != REDIS_OK) {
        /* hiredis frees the context after this callback. */
        r->ac = NULL;
        evtimer_del(r->connect_ev);
        snprintf(r->fault, sizeof(r->fault), "connect: %s", ac->errstr);
        schedule_retry(r, r->fault);
        r->fault[0] = '\0';
        return;
    }
    evtimer_del(r->connect_ev);
    /* Not ready until setup is done: a request made meanwhile fails at
     * once, as when disconnected, so none can reach Redis before the
     * library it calls. */
    setup_commands(&r->url, cmds, r->setup_names, &n);
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

static void
start_connect(struct mapq_redis *r)
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
    cap_replies(ac->c.reader, r);
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    tv.tv_sec = r->timing.connect_timeout_ms / 1000;
    tv.tv_usec = (r->timing.connect_timeout_ms % 1000) * 1000;
    evtimer_add(r->connect_ev, &tv);
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
                 "using it, as every revision of protocol %d serves this "
                 "process",
                 held, proto, own, refused, proto);
    else
        snprintf(buf, len,
                 "redis held revision %d of the mapq%d functions: replaced "
                 "it with this process's revision %d",
                 held, proto, own);
    return refused != NULL && held < own;
}

bool
mapq_redis_ready(const struct mapq_redis *r)
{
    return r->ready;
}

void
mapq_redis_free(struct mapq_redis *r)
{
    if (r == NULL)
        return;
    r->on_state = NULL;
    r->on_fault = NULL;
    teardown(r, "connection closed");
    event_free(r->retry_ev);
    event_free(r->connect_ev);
    free(r);
}
