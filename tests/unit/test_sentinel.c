/*
 * test_sentinel.c - redis+sentinel:// URLs, reading Sentinel's answer,
 * copies of replies, and the lookup on an event loop against fake
 * Sentinels (loopback listeners that answer each request with a canned
 * reply, or never).
 */
#include "mapq_test.h"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "mapq_redis_url.h"
#include "mapq_reply.h"
#include "mapq_sentinel.h"

static struct mapq_redis_url
parse_ok(const char *s)
{
    struct mapq_redis_url url;
    char err[MAPQ_ERR_LEN] = "";

    if (mapq_redis_url_parse(s, &url, err) != MAPQ_OK)
        fail_msg("'%s' was refused: %s", s, err);
    return url;
}

static void
parse_fails(const char *s, const char *want)
{
    struct mapq_redis_url url;
    char err[MAPQ_ERR_LEN] = "";

    assert_int_equal(mapq_redis_url_parse(s, &url, err), MAPQ_EINVAL);
    if (strstr(err, want) == NULL)
        fail_msg("'%s' gave '%s', not '%s'", s, err, want);
}

/* Sentinels with and without ports, IPv6, the primary's name and db, and
 * the primary's user and password. */
static void
test_sentinel_url_parsed(void **state)
{
    struct mapq_redis_url u;
    char buf[300];

    (void)state;
    u = parse_ok("redis+sentinel://h1:26380,h2,[::1]:7/mymaster/3");
    assert_int_equal(u.nsentinels, 3);
    assert_string_equal(u.sentinels[0].host, "h1");
    assert_int_equal(u.sentinels[0].port, 26380);
    assert_string_equal(u.sentinels[1].host, "h2");
    assert_int_equal(u.sentinels[1].port, 26379);
    assert_string_equal(u.sentinels[2].host, "::1");
    assert_int_equal(u.sentinels[2].port, 7);
    assert_string_equal(u.master, "mymaster");
    assert_int_equal(u.db, 3);
    assert_string_equal(u.host, "");
    assert_int_equal(u.durable, 0);
    mapq_redis_url_format(&u, buf, sizeof(buf));
    assert_string_equal(
        buf, "redis+sentinel://h1:26380,h2:26379,[::1]:7/mymaster/3");

    u = parse_ok("redis+sentinel://app:p%40ss@s1/m");
    assert_string_equal(u.user, "app");
    assert_string_equal(u.password, "p@ss");
    assert_int_equal(u.nsentinels, 1);
    assert_int_equal(u.db, 0);
    assert_string_equal(u.master, "m");

    /* Other URLs name no primary. */
    u = parse_ok("redis://h:1/2");
    assert_string_equal(u.master, "");
    assert_int_equal(u.nsentinels, 0);
}

static void
test_sentinel_url_rejected(void **state)
{
    (void)state;
    parse_fails("redis+sentinel://h1:26379", "names no primary");
    parse_fails("redis+sentinel://h1:26379/", "names no primary");
    parse_fails("redis+sentinel:///m", "has no host");
    parse_fails("redis+sentinel://h1,/m", "has no host");
    parse_fails("redis+sentinel://h1,,h2/m", "has no host");
    parse_fails("redis+sentinel://h1:0/m", "bad port in");
    parse_fails("redis+sentinel://h1:x/m", "bad port in");
    parse_fails("redis+sentinel://h1/m/x", "bad database in");
    parse_fails("redis+sentinel://a,b,c,d,e,f,g,h,i/m",
                "names more than 8 sentinels");
    parse_fails("redis+sentinel://[::1/m", "bad host in");
}

/* The password is hidden in argv and in errors; the sentinels stay. */
static void
test_sentinel_url_password_hidden(void **state)
{
    struct mapq_redis_url u;
    char s[] = "redis+sentinel://u:secret@h1:1,h2:2/m/0";
    char err[MAPQ_ERR_LEN];

    (void)state;
    mapq_redis_url_hide_password(s);
    assert_string_equal(s, "redis+sentinel://u:******@h1:1,h2:2/m/0");
    assert_int_equal(
        mapq_redis_url_parse("redis+sentinel://u:secret@h1:1,h2:x/m", &u, err),
        MAPQ_EINVAL);
    assert_null(strstr(err, "secret"));
    assert_non_null(strstr(err, "h1:1,h2:x/m"));
    /* Without a password, the list of sentinels is not taken for one. */
    assert_int_equal(
        mapq_redis_url_parse("redis+sentinel://h1:1,h2:2/m/x", &u, err),
        MAPQ_EINVAL);
    assert_non_null(strstr(err, "'redis+sentinel://h1:1,h2:2/m/x'"));
}

static redisReply *
str_reply(const char *s)
{
    redisReply *r = calloc(1, sizeof(*r));

    r->type = REDIS_REPLY_STRING;
    r->len = strlen(s);
    r->str = strdup(s);
    return r;
}

static redisReply *
pair_reply(const char *host, const char *port)
{
    redisReply *r = calloc(1, sizeof(*r));

    r->type = REDIS_REPLY_ARRAY;
    r->elements = 2;
    r->element = calloc(2, sizeof(*r->element));
    r->element[0] = str_reply(host);
    r->element[1] = str_reply(port);
    return r;
}

/* SENTINEL get-master-addr-by-name: an address, nil, an error, junk. */
static void
test_sentinel_reply_read(void **state)
{
    redisReply *r, nil = {.type = REDIS_REPLY_NIL};
    char text[] = "ERR nope";
    redisReply err = {.type = REDIS_REPLY_ERROR, .str = text, .len = 8};
    char host[64], why[200];
    int port = 0;

    (void)state;
    r = pair_reply("10.0.0.7", "6380");
    assert_int_equal(mapq_sentinel_reply(r, "m", host, sizeof(host), &port, why,
                                         sizeof(why)),
                     0);
    assert_string_equal(host, "10.0.0.7");
    assert_int_equal(port, 6380);
    freeReplyObject(r);

    assert_int_equal(mapq_sentinel_reply(&nil, "m", host, sizeof(host), &port,
                                         why, sizeof(why)),
                     -1);
    assert_string_equal(why, "knows no primary 'm'");
    assert_int_equal(mapq_sentinel_reply(&err, "m", host, sizeof(host), &port,
                                         why, sizeof(why)),
                     -1);
    assert_string_equal(why, "ERR nope");

    r = pair_reply("h", "70000");
    assert_int_equal(mapq_sentinel_reply(r, "m", host, sizeof(host), &port, why,
                                         sizeof(why)),
                     -1);
    assert_string_equal(why, "answered a bad address");
    freeReplyObject(r);
    r = pair_reply("h", "12x");
    assert_int_equal(mapq_sentinel_reply(r, "m", host, sizeof(host), &port, why,
                                         sizeof(why)),
                     -1);
    freeReplyObject(r);
    r = pair_reply("a-host-name-longer-than-the-buffer-it-is-read-into", "1");
    assert_int_equal(
        mapq_sentinel_reply(r, "m", host, 8, &port, why, sizeof(why)), -1);
    freeReplyObject(r);
    r = str_reply("10.0.0.7:6380");
    assert_int_equal(mapq_sentinel_reply(r, "m", host, sizeof(host), &port, why,
                                         sizeof(why)),
                     -1);
    assert_string_equal(why, "answered something other than host and port");
    freeReplyObject(r);
}

/* A copy holds the same, owns its own memory, and frees as hiredis's. */
static void
test_sentinel_reply_dup(void **state)
{
    redisReply *r = pair_reply("h", "1"), *c;

    (void)state;
    r->element[1]->type = REDIS_REPLY_STRING;
    c = mapq_reply_dup(r);
    freeReplyObject(r);
    assert_int_equal(c->type, REDIS_REPLY_ARRAY);
    assert_int_equal(c->elements, 2);
    assert_string_equal(c->element[0]->str, "h");
    assert_int_equal(c->element[0]->len, 1);
    assert_string_equal(c->element[1]->str, "1");
    freeReplyObject(c);
}

/* ---- the lookup on a loop, against fake Sentinels --------------------- */

struct fake {
    struct evconnlistener *l;
    const char *answer; /* sent for each request; NULL: never answers */
    int port;
    int asked;
    struct bufferevent *conns[8]; /* open ones; NULL once closed */
};

static void
fake_read_cb(struct bufferevent *bev, void *arg)
{
    struct fake *f = arg;
    struct evbuffer *in = bufferevent_get_input(bev);

    evbuffer_drain(in, evbuffer_get_length(in));
    f->asked++;
    if (f->answer != NULL)
        bufferevent_write(bev, f->answer, strlen(f->answer));
}

static void
fake_event_cb(struct bufferevent *bev, short what, void *arg)
{
    struct fake *f = arg;
    size_t i;

    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    for (i = 0; i < 8; i++)
        if (f->conns[i] == bev)
            f->conns[i] = NULL;
    bufferevent_free(bev);
}

/* Closes the listener and the connections still open. */
static void
fake_stop(struct fake *f)
{
    size_t i;

    for (i = 0; i < 8; i++)
        if (f->conns[i] != NULL)
            bufferevent_free(f->conns[i]);
    evconnlistener_free(f->l);
}

static void
fake_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
               struct sockaddr *sa, int len, void *arg)
{
    struct bufferevent *bev = bufferevent_socket_new(evconnlistener_get_base(l),
                                                     fd, BEV_OPT_CLOSE_ON_FREE);
    struct fake *f = arg;
    size_t i;

    (void)sa;
    (void)len;
    for (i = 0; i < 8 && f->conns[i] != NULL; i++)
        ;
    assert_true(i < 8);
    f->conns[i] = bev;
    bufferevent_setcb(bev, fake_read_cb, NULL, fake_event_cb, arg);
    bufferevent_enable(bev, EV_READ);
}

static void
fake_start(struct event_base *base, struct fake *f, const char *answer)
{
    struct sockaddr_in sin;
    socklen_t n = sizeof(sin);

    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    memset(f, 0, sizeof(*f));
    f->answer = answer;
    f->l = evconnlistener_new_bind(base, fake_accept_cb, f,
                                   LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                   -1, (struct sockaddr *)&sin, sizeof(sin));
    assert_non_null(f->l);
    getsockname(evconnlistener_get_fd(f->l), (struct sockaddr *)&sin, &n);
    f->port = ntohs(sin.sin_port);
}

/* A port nothing listens on (a listener bound, then closed). */
static int
closed_port(struct event_base *base)
{
    struct fake f;

    fake_start(base, &f, NULL);
    fake_stop(&f);
    return f.port;
}

struct found {
    int calls;
    char host[64];
    int port;
    char why[300];
    struct event_base *base;
};

static void
found_cb(const char *host, int port, const char *why, void *arg)
{
    struct found *r = arg;

    r->calls++;
    snprintf(r->host, sizeof(r->host), "%s", host ? host : "");
    r->port = port;
    snprintf(r->why, sizeof(r->why), "%s", why ? why : "");
    event_base_loopbreak(r->base);
}

/* Runs the loop until the lookup answers, at most 5 s. */
static void
run_until_found(struct event_base *base)
{
    struct timeval limit = {5, 0};

    event_base_loopexit(base, &limit);
    event_base_dispatch(base);
}

struct sync_find {
    struct mapq_redis_url *url;
    int timeout_ms;
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;
    atomic_int done;
};

static void *
sync_find_thread(void *arg)
{
    struct sync_find *f = arg;

    f->rc = mapq_sentinel_find_sync(f->url, f->timeout_ms, f->err);
    atomic_store(&f->done, 1);
    return NULL;
}

/* The blocking lookup, in a thread while this one runs the fakes' loop
 * (at most 5 s). */
static enum mapq_err
find_sync(struct event_base *base, struct mapq_redis_url *url, int timeout_ms,
          char *err)
{
    struct sync_find f = {.url = url, .timeout_ms = timeout_ms};
    pthread_t t;
    int i;

    atomic_init(&f.done, 0);
    assert_int_equal(pthread_create(&t, NULL, sync_find_thread, &f), 0);
    for (i = 0; i < 5000 && !atomic_load(&f.done); i++) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        usleep(1000);
    }
    pthread_join(t, NULL);
    snprintf(err, MAPQ_ERR_LEN, "%s", f.err);
    return f.rc;
}

static struct mapq_redis_url
url_of(int p1, int p2, int p3)
{
    char s[200];

    snprintf(s, sizeof(s),
             "redis+sentinel://127.0.0.1:%d,127.0.0.1:%d,127.0.0.1:%d/m", p1,
             p2, p3);
    return parse_ok(s);
}

/* Refused, then "no such primary", then an answer: the third is used. */
static void
test_sentinel_find_goes_on_to_one_that_knows(void **state)
{
    struct event_base *base = event_base_new();
    struct fake knows_not, knows;
    struct found r = {.base = base};
    struct mapq_redis_url url;
    int dead = closed_port(base);

    (void)state;
    fake_start(base, &knows_not, "*-1\r\n");
    fake_start(base, &knows, "*2\r\n$8\r\n10.1.2.3\r\n$4\r\n6390\r\n");
    url = url_of(dead, knows_not.port, knows.port);
    mapq_sentinel_find(base, &url, 1000, found_cb, &r);
    assert_int_equal(r.calls, 0); /* never inside the call */
    run_until_found(base);
    assert_int_equal(r.calls, 1);
    assert_string_equal(r.host, "10.1.2.3");
    assert_int_equal(r.port, 6390);
    assert_string_equal(r.why, "");
    assert_int_equal(knows_not.asked, 1);
    assert_int_equal(knows.asked, 1);

    /* The blocking lookup does the same. */
    assert_int_equal(find_sync(base, &url, 1000, r.why), MAPQ_OK);
    assert_string_equal(url.host, "10.1.2.3");
    assert_int_equal(url.port, 6390);
    fake_stop(&knows_not);
    fake_stop(&knows);
    event_base_free(base);
}

/* None answers: why names the last one asked and what it did; a silent
 * one is given up on after the timeout. */
static void
test_sentinel_find_none_answers(void **state)
{
    struct event_base *base = event_base_new();
    struct fake silent, knows_not;
    struct found r = {.base = base};
    struct mapq_redis_url url;
    char want[200], err[MAPQ_ERR_LEN];

    (void)state;
    fake_start(base, &silent, NULL);
    fake_start(base, &knows_not, "$-1\r\n");
    url = url_of(knows_not.port, closed_port(base), silent.port);
    mapq_sentinel_find(base, &url, 200, found_cb, &r);
    run_until_found(base);
    assert_int_equal(r.calls, 1);
    assert_string_equal(r.host, "");
    snprintf(want, sizeof(want), "sentinel 127.0.0.1:%d: no answer in time",
             silent.port);
    assert_string_equal(r.why, want);
    assert_int_equal(silent.asked, 1);

    url = url_of(silent.port, closed_port(base), knows_not.port);
    assert_int_equal(find_sync(base, &url, 200, err), MAPQ_EREDIS);
    snprintf(want, sizeof(want),
             "no sentinel named the primary: sentinel 127.0.0.1:%d: knows no "
             "primary 'm'",
             knows_not.port);
    assert_string_equal(err, want);
    fake_stop(&silent);
    fake_stop(&knows_not);
    event_base_free(base);
}

/* A lookup cancelled before it answers never calls back. */
static void
test_sentinel_find_cancelled(void **state)
{
    struct event_base *base = event_base_new();
    struct fake silent;
    struct found r = {.base = base};
    struct mapq_redis_url url;
    struct mapq_sentinel *s;
    struct timeval t = {0, 100000};

    (void)state;
    fake_start(base, &silent, NULL);
    url = url_of(silent.port, silent.port, silent.port);
    s = mapq_sentinel_find(base, &url, 5000, found_cb, &r);
    event_base_loopexit(base, &t);
    event_base_dispatch(base);
    assert_int_equal(silent.asked, 1);
    mapq_sentinel_cancel(s);
    event_base_loopexit(base, &t);
    event_base_dispatch(base);
    assert_int_equal(r.calls, 0);
    mapq_sentinel_cancel(NULL);
    fake_stop(&silent);
    event_base_free(base);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sentinel_url_parsed),
        cmocka_unit_test(test_sentinel_url_rejected),
        cmocka_unit_test(test_sentinel_url_password_hidden),
        cmocka_unit_test(test_sentinel_reply_read),
        cmocka_unit_test(test_sentinel_reply_dup),
        cmocka_unit_test(test_sentinel_find_goes_on_to_one_that_knows),
        cmocka_unit_test(test_sentinel_find_none_answers),
        cmocka_unit_test(test_sentinel_find_cancelled),
    };

    return cmocka_run_group_tests_name("sentinel", tests, NULL, NULL);
}
