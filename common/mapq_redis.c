/*
 * mapq_redis.c - Redis URLs, the blocking CLI connection and the async
 * connection with request timeouts and reconnect.
 *
 * This is the only file that attaches hiredis to libevent. It never logs:
 * failures reach callers through reply callbacks and state callbacks.
 * Ownership: each request is owned by this module from mapq_redis_command()
 * until its callback has run.
 */
#include "mapq_redis.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/time.h>

#include "mapq_alloc.h"
#include "mapq_retry.h"

#define SETUP_MAX 3 /* PING or AUTH, SELECT, FUNCTION LOAD */

struct request {
    struct mapq_redis *r;
    mapq_redis_reply_fn *fn;
    void *arg;
    struct event *timer;
    const char *why; /* set when failing without a reply */
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

/* ---- URLs -------------------------------------------------------------- */

/*
 * Writes s into buf (len bytes, truncated, terminated) with whatever may be
 * a password overwritten by '*', byte for byte, so that an error message
 * can quote a URL the parser refused. Wider than what the parser takes as
 * the password, since a refused URL may be mistyped: all of the part
 * before the last '@' but a user (what precedes a ':' that comes before
 * every '@'); and, with no '@', a port that is not all digits, as in
 * "redis://user:password" without its host.
 */
static void
show_url(const char *s, char *buf, size_t len)
{
    const char *a = strstr(s, "://"), *at, *colon, *end;
    size_t n = strlen(s), from = 0, to = 0;

    a = a ? a + 3 : s;
    at = strrchr(a, '@');
    if (at != NULL) {
        /* A user is what comes before a ':' that precedes every '@'. */
        colon = memchr(a, ':', strcspn(a, "@"));
        from = (size_t)((colon ? colon + 1 : a) - s);
        to = (size_t)(at - s);
    } else {
        end = a + strcspn(a, "/?");
        colon = memchr(a, ':', (size_t)(end - a));
        if (colon != NULL &&
            strspn(colon + 1, "0123456789") != (size_t)(end - colon - 1)) {
            from = (size_t)(colon + 1 - s);
            to = (size_t)(end - s);
        }
    }
    if (len == 0)
        return;
    if (n >= len)
        n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (to > n)
        to = n;
    if (from < to)
        memset(buf + from, '*', to - from);
}

/* Sets err to "<before>redis URL '<s, password hidden>'<after>". */
static enum mapq_err
url_err(char *err, const char *s, const char *before, const char *after)
{
    char shown[MAPQ_ERR_LEN];

    show_url(s, shown, sizeof(shown));
    return mapq_err_set(err, MAPQ_EINVAL, "%sredis URL '%s'%s", before, shown,
                        after);
}

static enum mapq_err
copy_part(char *dst, size_t cap, const char *src, size_t n, const char *what,
          const char *url, char *err)
{
    char shown[MAPQ_ERR_LEN];

    if (n >= cap) {
        show_url(url, shown, sizeof(shown));
        return mapq_err_set(err, MAPQ_EINVAL, "%s too long in redis URL '%s'",
                            what, shown);
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return MAPQ_OK;
}

/* Parses n decimal digits (no sign, no blanks) as a number in [lo, hi]. */
static enum mapq_err
parse_int(const char *s, size_t n, int lo, int hi, int *out)
{
    char tmp[16], *end;
    long v;

    if (n == 0 || n >= sizeof(tmp))
        return MAPQ_EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    /* strtol alone would take a sign and leading blanks. */
    if (strspn(tmp, "0123456789") != n)
        return MAPQ_EINVAL;
    errno = 0;
    v = strtol(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return MAPQ_EINVAL;
    *out = (int)v;
    return MAPQ_OK;
}

static enum mapq_err
parse_unix(const char *s, struct mapq_redis_url *url, char *err)
{
    const char *path = s + strlen("unix://");
    const char *q = strchr(path, '?');
    size_t n = q ? (size_t)(q - path) : strlen(path);

    if (n == 0 || path[0] != '/')
        return url_err(err, s, "", " needs an absolute socket path");
    if (copy_part(url->path, sizeof(url->path), path, n, "path", s, err))
        return MAPQ_EINVAL;
    if (q != NULL) {
        if (strncmp(q, "?db=", 4) != 0 ||
            parse_int(q + 4, strlen(q + 4), 0, 1 << 20, &url->db) != MAPQ_OK)
            return url_err(err, s, "bad database in ", "");
    }
    return MAPQ_OK;
}

static enum mapq_err
parse_auth(const char *a, size_t n, struct mapq_redis_url *url, const char *s,
           char *err)
{
    const char *colon = memchr(a, ':', n);

    if (colon == NULL)
        return copy_part(url->password, sizeof(url->password), a, n, "password",
                         s, err);
    if (copy_part(url->user, sizeof(url->user), a, (size_t)(colon - a), "user",
                  s, err))
        return MAPQ_EINVAL;
    return copy_part(url->password, sizeof(url->password), colon + 1,
                     n - (size_t)(colon - a) - 1, "password", s, err);
}

enum mapq_err
mapq_redis_url_parse(const char *s, struct mapq_redis_url *url, char *err)
{
    const char *p, *at, *slash, *colon, *hostend;

    memset(url, 0, sizeof(*url));
    url->port = 6379;
    if (strncmp(s, "unix://", 7) == 0)
        return parse_unix(s, url, err);
    if (strncmp(s, "redis://", 8) != 0)
        return url_err(err, s, "", " must start with redis:// or unix://");
    p = s + 8;
    slash = strchr(p, '/');
    at = memchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
    if (at != NULL) {
        if (parse_auth(p, (size_t)(at - p), url, s, err) != MAPQ_OK)
            return MAPQ_EINVAL;
        p = at + 1;
    }
    hostend = slash ? slash : p + strlen(p);
    colon = memchr(p, ':', (size_t)(hostend - p));
    if (copy_part(url->host, sizeof(url->host), p,
                  (size_t)((colon ? colon : hostend) - p), "host", s, err))
        return MAPQ_EINVAL;
    if (url->host[0] == '\0')
        return url_err(err, s, "", " has no host");
    /* In "redis://a@b@h" no one can tell which '@' ends the password. */
    if (strchr(url->host, '@') != NULL)
        return url_err(err, s, "bad host in ", "");
    if (colon != NULL && parse_int(colon + 1, (size_t)(hostend - colon - 1), 1,
                                   65535, &url->port) != MAPQ_OK)
        return url_err(err, s, "bad port in ", "");
    if (slash != NULL && slash[1] != '\0' &&
        parse_int(slash + 1, strlen(slash + 1), 0, 1 << 20, &url->db) !=
            MAPQ_OK)
        return url_err(err, s, "bad database in ", "");
    return MAPQ_OK;
}

void
mapq_redis_url_format(const struct mapq_redis_url *url, char *buf, size_t len)
{
    if (url->path[0] != '\0')
        snprintf(buf, len, "unix://%s?db=%d", url->path, url->db);
    else
        snprintf(buf, len, "redis://%s:%d/%d", url->host, url->port, url->db);
}

void
mapq_redis_url_hide_password(char *s)
{
    char *p, *slash, *at, *colon, *start;

    if (s == NULL || strncmp(s, "redis://", 8) != 0)
        return;
    p = s + 8;
    slash = strchr(p, '/');
    at = memchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
    if (at == NULL)
        return;
    colon = memchr(p, ':', (size_t)(at - p));
    start = colon ? colon + 1 : p;
    memset(start, '*', (size_t)(at - start));
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

/* Runs one setup command; returns 0 or -1 with err set. */
static int
sync_setup(redisContext *c, const char *what, char *err, int argc,
           const char **argv, const size_t *lens)
{
    redisReply *reply = redisCommandArgv(c, argc, argv, lens);
    char why[MAPQ_ERR_LEN];
    int rc = 0;

    if (reply == NULL) {
        /* The reader says OOM for a reply over the cap, too. */
        mapq_err_set(err, MAPQ_EREDIS, "%s: %s", what,
                     c->err == REDIS_ERR_OOM
                         ? "cannot read redis's reply: too large, or out of "
                           "memory"
                         : c->errstr);
        return -1;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        setup_reason(why, sizeof(why), what, reply->str, reply->len);
        mapq_err_set(err, MAPQ_EREDIS, "%s", why);
        rc = -1;
    }
    freeReplyObject(reply);
    return rc;
}

/* Fills cmds with the setup commands for url (PING or AUTH, SELECT,
 * FUNCTION LOAD), and names with what error messages call them. */
static void
setup_commands(const struct mapq_redis_url *url, struct mapq_argv *cmds,
               const char **names, int *ncmds)
{
    int n = 0;

    if (url->password[0] == '\0') {
        /* A small command first: without it a server that wants a
         * password answers the large FUNCTION LOAD with "unauthenticated
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
    mapq_argv_init(&cmds[n]);
    mapq_argv_add(&cmds[n], "FUNCTION");
    mapq_argv_add(&cmds[n], "LOAD");
    mapq_argv_add(&cmds[n], "REPLACE");
    mapq_argv_addlen(&cmds[n], mapq_functions_lua, mapq_functions_lua_len);
    names[n++] = "FUNCTION LOAD";
    *ncmds = n;
}

redisContext *
mapq_redis_connect_sync(const struct mapq_redis_url *url, int timeout_ms,
                        char *err)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    struct mapq_argv cmds[SETUP_MAX];
    const char *names[SETUP_MAX];
    char shown[300], why[MAPQ_ERR_LEN];
    redisContext *c;
    int n, i, bad = 0;

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
    setup_commands(url, cmds, names, &n);
    for (i = 0; i < n; i++) {
        if (!bad && sync_setup(c, names[i], why, cmds[i].argc, cmds[i].argv,
                               cmds[i].lens) != 0)
            bad = 1;
        mapq_argv_release(&cmds[i]);
    }
    if (bad) {
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

static void
reply_cb(redisAsyncContext *ac, void *reply, void *privdata)
{
    struct request *req = privdata;
    struct mapq_redis *r = req->r;

    (void)ac;
    TAILQ_REMOVE(&r->pending, req, entry);
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

void
mapq_redis_command(struct mapq_redis *r, int timeout_ms,
                   mapq_redis_reply_fn *fn, void *arg, int argc,
                   const char **argv, const size_t *argvlen)
{
    struct request *req = mapq_xcalloc(1, sizeof(*req));
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    static const struct timeval zero = {0, 0};

    req->r = r;
    req->fn = fn;
    req->arg = arg;
    if (!r->ready || r->ac == NULL ||
        redisAsyncCommandArgv(r->ac, reply_cb, req, argc, argv, argvlen) !=
            REDIS_OK) {
        req->why = "not connected to redis";
        req->timer = evtimer_new(r->base, request_fail_cb, req);
        evtimer_add(req->timer, &zero);
        return;
    }
    TAILQ_INSERT_TAIL(&r->pending, req, entry);
    req->timer = evtimer_new(r->base, request_timeout_cb, req);
    evtimer_add(req->timer, &tv);
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
     * connection is only marked ready by the final setup reply. */
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        setup_refused(r, reply);
        teardown(r, "redis refused the connection setup");
        return;
    }
    if (reply != NULL)
        r->setup_seen++;
}

static void
library_loaded_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_redis *r = arg;

    (void)why;
    if (reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR) {
        setup_refused(r, reply);
        teardown(r, "redis refused the mapq function library");
        return;
    }
    r->told[0] = '\0';
    if (mapq_retry_ok(&r->retry) && r->on_fault != NULL)
        r->on_fault(r, NULL, r->fault_arg);
    r->up = true;
    if (r->on_state != NULL)
        r->on_state(r, true, r->state_arg);
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
    r->ready = true; /* setup commands are pipelined ahead of all others */
    setup_commands(&r->url, cmds, r->setup_names, &n);
    r->setup_seen = 0;
    for (i = 0; i < n; i++) {
        mapq_redis_command(r, r->timing.connect_timeout_ms,
                           i == n - 1 ? library_loaded_cb : setup_reply_cb, r,
                           cmds[i].argc, cmds[i].argv, cmds[i].lens);
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
