/*
 * fixture_redis.c - the redis-server and helpers of the function library's
 * unit tests (see fixture_redis.h).
 */
#include "mapq_test.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture_redis.h"
#include "mapq_alloc.h"
#include "mapq_err.h"
#include "mapq_fs.h"
#include "mapq_redis.h"
#include "mapq_value.h"

struct server {
    char dir[64];
    pid_t pid;
    char url[160];
};

static struct server srv;
static int test_no;

/* ---- redis-server ------------------------------------------------------ */

void
fx_pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static redisContext *
connect_url(const char *url_s)
{
    struct mapq_redis_url url;
    char err[MAPQ_ERR_LEN];

    if (mapq_redis_url_parse(url_s, &url, err) != MAPQ_OK)
        return NULL;
    return mapq_redis_connect_sync(&url, 2000, err);
}

int
fx_group_setup(void **state)
{
    const char *ext = getenv("MAPQ_TEST_REDIS_URL");
    char sock[128];
    redisContext *c = NULL;
    int i;

    (void)state;
    if (ext != NULL && *ext != '\0') {
        snprintf(srv.url, sizeof(srv.url), "%s", ext);
        return 0;
    }
    snprintf(srv.dir, sizeof(srv.dir), "/tmp/mapq-test-fn-XXXXXX");
    if (mkdtemp(srv.dir) == NULL)
        return -1;
    snprintf(sock, sizeof(sock), "%s/redis.sock", srv.dir);
    snprintf(srv.url, sizeof(srv.url), "unix://%s", sock);
    srv.pid = fork();
    if (srv.pid == 0) {
        execlp("redis-server", "redis-server", "--port", "0", "--unixsocket",
               sock, "--save", "", "--appendonly", "no", "--dir", srv.dir,
               "--logfile", "redis.log", (char *)NULL);
        _exit(127);
    }
    /* Bounded wait for the server to answer. */
    for (i = 0; i < 500 && c == NULL; i++) {
        c = connect_url(srv.url);
        if (c == NULL)
            fx_pause_ms(10);
    }
    if (c == NULL)
        return -1;
    redisFree(c);
    return 0;
}

const char *
fx_url(void)
{
    return srv.url;
}

int
fx_group_teardown(void **state)
{
    int status;

    (void)state;
    if (srv.pid > 0) {
        kill(srv.pid, SIGTERM);
        waitpid(srv.pid, &status, 0);
    }
    if (srv.dir[0] != '\0')
        mapq_fs_rmtree(srv.dir);
    return 0;
}

int
fx_setup(void **state)
{
    struct fx *f = mapq_xcalloc(1, sizeof(*f));

    *state = f;
    snprintf(f->ns, sizeof(f->ns), "tf%d-%d", (int)getpid(), ++test_no);
    msgpack_unpacked_init(&f->u);
    f->c = connect_url(srv.url);
    return f->c == NULL ? -1 : 0;
}

int
fx_teardown(void **state)
{
    struct fx *f = *state;
    redisReply *keys;
    size_t i;

    if (f->reply != NULL)
        freeReplyObject(f->reply);
    msgpack_unpacked_destroy(&f->u);
    if (f->c != NULL) {
        keys = redisCommand(f->c, "KEYS %s:*", f->ns);
        for (i = 0; keys != NULL && i < keys->elements; i++)
            freeReplyObject(
                redisCommand(f->c, "DEL %s", keys->element[i]->str));
        if (keys != NULL)
            freeReplyObject(keys);
        redisFree(f->c);
    }
    free(f);
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

/* Sends the NULL-terminated argument list ap; keeps the reply in f. */
static redisReply *
vrun(struct fx *f, const char *first, va_list ap)
{
    const char *argv[64];
    int argc = 0;

    argv[argc++] = first;
    while (argc < 64 && (argv[argc] = va_arg(ap, const char *)) != NULL)
        argc++;
    if (f->reply != NULL)
        freeReplyObject(f->reply);
    f->reply = redisCommandArgv(f->c, argc, argv, NULL);
    assert_non_null(f->reply);
    if (f->reply->type == REDIS_REPLY_ERROR)
        fail_msg("%s: %s", first, f->reply->str);
    return f->reply;
}

/* Runs a command from NULL-terminated strings; keeps the reply in f. */
redisReply *
fx_run(struct fx *f, const char *first, ...)
{
    redisReply *r;
    va_list ap;

    va_start(ap, first);
    r = vrun(f, first, ap);
    va_end(ap);
    return r;
}

/* Runs a command whose reply must be an integer, and returns it. */
long long
fx_integer(struct fx *f, const char *first, ...)
{
    redisReply *r;
    va_list ap;

    va_start(ap, first);
    r = vrun(f, first, ap);
    va_end(ap);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    return r->integer;
}

const char *
fx_key(struct fx *f, const char *suffix)
{
    static char buf[4][128];
    static int n;

    n = (n + 1) % 4;
    snprintf(buf[n], sizeof(buf[n]), "%s:%s", f->ns, suffix);
    return buf[n];
}

long long
fx_leased(struct fx *f)
{
    redisReply *keys;
    long long n = 0;
    size_t i;

    keys = redisCommand(f->c, "KEYS %s:lease:*", f->ns);
    assert_non_null(keys);
    assert_int_equal(keys->type, REDIS_REPLY_ARRAY);
    for (i = 0; i < keys->elements; i++)
        n += fx_integer(f, "HLEN", keys->element[i]->str, NULL);
    freeReplyObject(keys);
    return n;
}

void
fx_lease_lapse(struct fx *f)
{
    fx_run(f, "ZADD", fx_key(f, "leases"), "0", "agent-1", NULL);
}

void
fx_exec_record(struct fx *f, const char *exec)
{
    char xkey[64];

    snprintf(xkey, sizeof(xkey), "x:%s", exec);
    fx_run(f, "HSETNX", fx_key(f, xkey), "state", "running", NULL);
}

void
fx_push(struct fx *f, int n, const char *cls)
{
    fx_push_exec(f, EXEC, n, cls);
}

void
fx_push_exec(struct fx *f, const char *exec, int n, const char *cls)
{
    char idx[FX_PUSH_MAX][8], body[FX_PUSH_MAX][8];
    const char *argv[8 + 2 * FX_PUSH_MAX];
    int argc = 0, i;

    fx_exec_record(f, exec);

    argv[argc++] = "FCALL";
    argv[argc++] = "mapq1_push";
    argv[argc++] = "0";
    argv[argc++] = f->ns;
    argv[argc++] = exec;
    argv[argc++] = "0";
    argv[argc++] = "q";
    argv[argc++] = cls;
    for (i = 0; i < n && i < FX_PUSH_MAX; i++) {
        snprintf(idx[i], sizeof(idx[i]), "%d", i);
        snprintf(body[i], sizeof(body[i]), "b%d", i);
        argv[argc++] = idx[i];
        argv[argc++] = body[i];
    }
    if (f->reply != NULL)
        freeReplyObject(f->reply);
    f->reply = redisCommandArgv(f->c, argc, argv, NULL);
    assert_non_null(f->reply);
    assert_int_equal(f->reply->type, REDIS_REPLY_INTEGER);
    assert_int_equal(f->reply->integer, n);
}

/* Pushes subtasks from..to-1 of node 0 onto q, class nc. */
void
fx_push_more(struct fx *f, int from, int to)
{
    char idx[16], body[16];
    int i;

    for (i = from; i < to; i++) {
        snprintf(idx, sizeof(idx), "%d", i);
        snprintf(body, sizeof(body), "b%d", i);
        assert_int_equal(fx_integer(f, "FCALL", "mapq1_push", "0", f->ns, EXEC,
                                    "0", "q", "nc", idx, body, NULL),
                         1);
    }
}

/*
 * Claims with the given lease, counts and class filter; returns the number
 * of (ref, body) pairs, which stay readable in f->u.
 */
uint32_t
fx_claim(struct fx *f, const char *lease, const char *ncmd, const char *nplug,
         const char *intr)
{
    char err[MAPQ_ERR_LEN];

    fx_run(f, "FCALL", "mapq1_claim", "0", f->ns, "agent-1", lease, ncmd, nplug,
           intr, "q", NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_STRING);
    msgpack_unpacked_destroy(&f->u);
    msgpack_unpacked_init(&f->u);
    assert_int_equal(
        mapq_value_unpack(f->reply->str, f->reply->len, &f->u, err), MAPQ_OK);
    /* An empty Lua table packs as a map or an array: both mean nothing. */
    if (f->u.data.type == MSGPACK_OBJECT_MAP) {
        assert_int_equal(f->u.data.via.map.size, 0);
        return 0;
    }
    assert_int_equal(f->u.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(f->u.data.via.array.size % 3, 0);
    return f->u.data.via.array.size / 3;
}

/* The i-th claimed ref (or body when body is true), copied into out. */
void
fx_claimed(struct fx *f, uint32_t i, bool body, char *out, size_t len)
{
    const msgpack_object *o = &f->u.data.via.array.ptr[3 * i + (body ? 1 : 0)];

    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    snprintf(out, len, "%.*s", (int)o->via.str.size, o->via.str.ptr);
}

/* Finishes one attempt; returns how many refs were refused. */
size_t
fx_done1(struct fx *f, const char *ref, const char *kind, const char *field,
         const char *record, const char *target)
{
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", ref, kind, "3",
           field, record, target, "", "", NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_ARRAY);
    return f->reply->elements;
}

/*
 * Calls mapq1_step for agent-1 on queue q: finishes the attempts in
 * entries (NULL-terminated, 8 strings each) and claims ncmd command
 * subtasks plus up to prefetch more, with flags. Returns how many were
 * claimed; the reply stays in f->u: [claimed, refused, due, ended].
 */
uint32_t
fx_step(struct fx *f, const char *ncmd, const char *prefetch, const char *flags,
        const char *const *entries)
{
    const char *argv[64];
    int argc = 0;

    argv[argc++] = "FCALL";
    argv[argc++] = "mapq1_step";
    argv[argc++] = "0";
    argv[argc++] = f->ns;
    argv[argc++] = "agent-1";
    argv[argc++] = "60000";
    argv[argc++] = ncmd;
    argv[argc++] = "0";
    argv[argc++] = prefetch;
    argv[argc++] = flags;
    argv[argc++] = "1";
    argv[argc++] = "q";
    while (entries != NULL && *entries != NULL && argc < 64)
        argv[argc++] = *entries++;
    if (f->reply != NULL)
        freeReplyObject(f->reply);
    f->reply = redisCommandArgv(f->c, argc, argv, NULL);
    return fx_step_reply(f);
}

uint32_t
fx_step_reply(struct fx *f)
{
    char err[MAPQ_ERR_LEN];
    const msgpack_object *c;

    assert_non_null(f->reply);
    if (f->reply->type == REDIS_REPLY_ERROR)
        fail_msg("mapq1_step: %s", f->reply->str);
    assert_int_equal(f->reply->type, REDIS_REPLY_STRING);
    msgpack_unpacked_destroy(&f->u);
    msgpack_unpacked_init(&f->u);
    assert_int_equal(
        mapq_value_unpack(f->reply->str, f->reply->len, &f->u, err), MAPQ_OK);
    assert_int_equal(f->u.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(f->u.data.via.array.size, 4);
    c = &f->u.data.via.array.ptr[0];
    if (c->type == MSGPACK_OBJECT_MAP)
        return 0; /* an empty Lua table */
    assert_int_equal(c->type, MSGPACK_OBJECT_ARRAY);
    return c->via.array.size / 3;
}

/* The i-th ref a step claimed, copied into out. */
void
fx_stepped(struct fx *f, uint32_t i, char *out, size_t len)
{
    const msgpack_object *o = &f->u.data.via.array.ptr[0].via.array.ptr[3 * i];

    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    snprintf(out, len, "%.*s", (int)o->via.str.size, o->via.str.ptr);
}
