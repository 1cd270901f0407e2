/*
 * mapq_sentinel.c - asking Sentinels for the primary's address, blocking
 * and on an event loop (hiredis attached to libevent, as in
 * mapq_redis.c).
 *
 * Ownership: a lookup owns its copy of the URL, its timers and the
 * connection to the Sentinel it is asking; it frees them after its
 * callback has run, or when cancelled.
 */
#include "mapq_sentinel.h"

#include <fcntl.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_reply.h"

#define ASK "SENTINEL get-master-addr-by-name %s"

int
mapq_sentinel_reply(const redisReply *reply, const char *name, char *host,
                    size_t cap, int *port, char *why, size_t whylen)
{
    const redisReply *h, *p;
    char *end;
    long v;

    if (reply->type == REDIS_REPLY_NIL) {
        snprintf(why, whylen, "knows no primary '%s'", name);
        return -1;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        snprintf(why, whylen, "%.*s",
                 (int)(reply->len < 200 ? reply->len : 200), reply->str);
        return -1;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_STRING) {
        snprintf(why, whylen, "answered something other than host and port");
        return -1;
    }
    h = reply->element[0];
    p = reply->element[1];
    v = strtol(p->str, &end, 10);
    if (h->len == 0 || h->len >= cap || memchr(h->str, '\0', h->len) ||
        p->len == 0 || *end != '\0' || v < 1 || v > 65535) {
        snprintf(why, whylen, "answered a bad address");
        return -1;
    }
    memcpy(host, h->str, h->len);
    host[h->len] = '\0';
    *port = (int)v;
    return 0;
}

enum mapq_err
mapq_sentinel_find_sync(struct mapq_redis_url *url, int timeout_ms, char *err)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    const struct mapq_redis_addr *a;
    char why[300] = "none asked";
    redisReply *reply;
    redisContext *c;
    int i;

    for (i = 0; i < url->nsentinels; i++) {
        a = &url->sentinels[i];
        c = redisConnectWithTimeout(a->host, a->port, tv);
        if (c == NULL || c->err) {
            snprintf(why, sizeof(why), "sentinel %s:%d: %s", a->host, a->port,
                     c ? c->errstr : "out of memory");
            redisFree(c);
            continue;
        }
        mapq_reply_cap(c->reader, NULL);
        redisSetTimeout(c, tv);
        reply = redisCommand(c, ASK, url->master);
        if (reply == NULL) {
            snprintf(why, sizeof(why), "sentinel %s:%d: %s", a->host, a->port,
                     c->errstr);
        } else {
            char said[200];
            int rc = mapq_sentinel_reply(reply, url->master, url->host,
                                         sizeof(url->host), &url->port, said,
                                         sizeof(said));

            freeReplyObject(reply);
            if (rc == 0) {
                redisFree(c);
                return MAPQ_OK;
            }
            snprintf(why, sizeof(why), "sentinel %s:%d: %s", a->host, a->port,
                     said);
        }
        redisFree(c);
    }
    return mapq_err_set(err, MAPQ_EREDIS, "no sentinel named the primary: %s",
                        why);
}

/* ---- on an event loop ------------------------------------------------- */

struct mapq_sentinel {
    struct event_base *base;
    struct mapq_redis_url url;
    int timeout_ms;
    int next;              /* the Sentinel to ask next */
    redisAsyncContext *ac; /* the one being asked, or NULL */
    struct event *timer;   /* bounds the wait for its answer */
    struct event *step;    /* asks the next one, or ends, from the loop */
    bool found;
    char host[256];
    int port;
    char why[300];
    mapq_sentinel_fn *fn;
    void *arg;
};

/* Drops the connection to the Sentinel being asked, if any. */
static void
hang_up(struct mapq_sentinel *s)
{
    redisAsyncContext *ac = s->ac;

    if (ac == NULL)
        return;
    s->ac = NULL;
    evtimer_del(s->timer);
    ac->data = NULL; /* its callbacks must not touch s */
    redisAsyncFree(ac);
}

static void
free_lookup(struct mapq_sentinel *s)
{
    hang_up(s);
    event_free(s->timer);
    event_free(s->step);
    free(s);
}

/* Goes on from the loop: the callbacks of hiredis must not free s. */
static void
go_on(struct mapq_sentinel *s)
{
    event_active(s->step, EV_TIMEOUT, 0);
}

/* Notes why the Sentinel being asked gave no address ("what detail"),
 * and goes on. */
static void
failed(struct mapq_sentinel *s, const char *what, const char *detail)
{
    const struct mapq_redis_addr *a = &s->url.sentinels[s->next - 1];

    snprintf(s->why, sizeof(s->why), "sentinel %s:%d: %s%s", a->host, a->port,
             what, detail);
    hang_up(s);
    go_on(s);
}

static void
answer_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct mapq_sentinel *s = ac->data;
    char said[200];

    (void)privdata;
    if (s == NULL || r == NULL)
        return; /* hung up, or the disconnect callback tells */
    if (mapq_sentinel_reply(r, s->url.master, s->host, sizeof(s->host),
                            &s->port, said, sizeof(said)) == 0) {
        s->found = true;
        hang_up(s);
        go_on(s);
        return;
    }
    failed(s, "", said);
}

static void
connect_cb(const redisAsyncContext *ac, int status)
{
    struct mapq_sentinel *s = ac->data;

    if (s == NULL || status == REDIS_OK)
        return;
    /* hiredis frees the context after this callback. */
    s->ac = NULL;
    failed(s, "connect: ", ac->errstr);
}

static void
disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct mapq_sentinel *s = ac->data;

    (void)status;
    if (s == NULL)
        return;
    s->ac = NULL;
    failed(s, "closed the connection", "");
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_sentinel *s = arg;

    (void)fd;
    (void)what;
    failed(s, "no answer in time", "");
}

/* Asks the next Sentinel; returns false when none is left. */
static bool
ask_next(struct mapq_sentinel *s)
{
    const struct mapq_redis_addr *a;
    struct timeval tv = {s->timeout_ms / 1000, (s->timeout_ms % 1000) * 1000};
    redisAsyncContext *ac;

    if (s->next >= s->url.nsentinels)
        return false;
    a = &s->url.sentinels[s->next++];
    ac = redisAsyncConnect(a->host, a->port);
    if (ac == NULL || ac->err) {
        char text[200];

        snprintf(text, sizeof(text), "%s",
                 ac != NULL ? ac->errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        failed(s, "connect: ", text);
        return true;
    }
    ac->data = s;
    s->ac = ac;
    fcntl(ac->c.fd, F_SETFD, FD_CLOEXEC);
    mapq_reply_cap(ac->c.reader, NULL);
    redisLibeventAttach(ac, s->base);
    redisAsyncSetConnectCallback(ac, connect_cb);
    redisAsyncSetDisconnectCallback(ac, disconnect_cb);
    redisAsyncCommand(ac, answer_cb, NULL, ASK, s->url.master);
    evtimer_add(s->timer, &tv);
    return true;
}

static void
step_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_sentinel *s = arg;

    (void)fd;
    (void)what;
    if (!s->found && ask_next(s))
        return;
    s->fn(s->found ? s->host : NULL, s->port, s->found ? NULL : s->why, s->arg);
    free_lookup(s);
}

struct mapq_sentinel *
mapq_sentinel_find(struct event_base *base, const struct mapq_redis_url *url,
                   int timeout_ms, mapq_sentinel_fn *fn, void *arg)
{
    struct mapq_sentinel *s = mapq_xcalloc(1, sizeof(*s));

    s->base = base;
    s->url = *url;
    s->timeout_ms = timeout_ms;
    s->fn = fn;
    s->arg = arg;
    snprintf(s->why, sizeof(s->why), "no sentinel to ask");
    s->timer = evtimer_new(base, timeout_cb, s);
    s->step = evtimer_new(base, step_cb, s);
    go_on(s);
    return s;
}

void
mapq_sentinel_cancel(struct mapq_sentinel *s)
{
    if (s != NULL)
        free_lookup(s);
}
