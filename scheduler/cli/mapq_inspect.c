/*
 * mapq_inspect.c - `mapq logs` and `mapq agents`: reading attempt logs
 * (P:log:<exec>) and agent heartbeats (P:agents, P:agent:<name>).
 *
 * An attempt log is a stream of msgpack maps, one per attempt, appended by
 * mapq1_done (agents) and mapq1_reap (lost attempts); docs/PROTOCOL.md has
 * the keys. Nothing here writes to Redis.
 */
#include "mapq_inspect.h"

#include <inttypes.h>
#include <jansson.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_proto.h"
#include "mapq_record.h"
#include "mapq_units.h"
#include "mapq_value.h"

#define SCAN_COUNT "1000"

/* One subtask's log, as read from Redis. */
struct sublog {
    uint64_t index;
    char *data;
    size_t len;
};

static void
reply_free(redisReply *r)
{
    if (r != NULL)
        freeReplyObject(r);
}

static int
sublog_cmp(const void *a, const void *b)
{
    const struct sublog *x = a, *y = b;

    return x->index < y->index ? -1 : x->index > y->index;
}

/* ---- one attempt ------------------------------------------------------- */

/* What became of the attempt: a phase, or how it was cut short. */
static const char *
attempt_outcome(const struct mapq_attempt *a)
{
    switch (a->kind) {
    case 'S':
        return "SYSTEM_ERROR";
    case 'I':
        return "INTERRUPTED";
    case 'L':
        return "LOST";
    default:
        return mapq_phase_name((int)a->phase);
    }
}

static void
format_time(int64_t ms, char *buf, size_t len)
{
    time_t sec = (time_t)(ms / 1000);
    struct tm tm;
    char day[32];

    gmtime_r(&sec, &tm);
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", day, (int)(ms % 1000));
}

static void
print_attempt_text(FILE *out, const char *node, uint64_t index,
                   const struct mapq_attempt *a, bool tail)
{
    const char *p, *e, *nl;
    char when[48];

    fprintf(out, "%s[%" PRIu64 "] attempt %" PRId64 ":", node, index,
            a->number);
    if (a->agent != NULL)
        fprintf(out, " agent %.*s,", (int)a->agent->via.str.size,
                a->agent->via.str.ptr);
    if (a->started >= 0) {
        format_time(a->started, when, sizeof(when));
        fprintf(out, " started %s,", when);
    }
    if (a->duration >= 0)
        fprintf(out, " %.3fs,", (double)a->duration / 1000);
    if (a->exit_status >= 0)
        fprintf(out, " exit %" PRId64 ",", a->exit_status);
    if (a->signal > 0)
        fprintf(out, " signal %" PRId64 ",", a->signal);
    fprintf(out, " %s%s\n", attempt_outcome(a),
            a->kind == 'U' ? ", retried" : "");
    if (a->error != NULL)
        fprintf(out, "  error: %.*s\n", (int)a->error->via.str.size,
                a->error->via.str.ptr);
    if (a->tail == NULL || !tail)
        return;
    p = a->tail->via.str.ptr;
    e = p + a->tail->via.str.size;
    while (p < e) {
        nl = memchr(p, '\n', (size_t)(e - p));
        fprintf(out, "  stderr: %.*s\n", (int)((nl ? nl : e) - p), p);
        p = nl ? nl + 1 : e;
    }
}

/* A JSON string of o's bytes (bytes that are not UTF-8, as in a stderr
 * tail cut inside a character, become U+FFFD). */
static json_t *
json_str(const msgpack_object *o)
{
    return mapq_cli_json_text(o->via.str.ptr, o->via.str.size);
}

/* What became of the attempt, as --json names it: a phase's JSON name,
 * or system_error, interrupted, lost. */
static const char *
attempt_outcome_key(const struct mapq_attempt *a)
{
    switch (a->kind) {
    case 'S':
        return "system_error";
    case 'I':
        return "interrupted";
    case 'L':
        return "lost";
    default:
        return mapq_cli_phase_key((int)a->phase);
    }
}

static void
add_attempt_json(json_t *arr, const char *node, uint64_t index,
                 const struct mapq_attempt *a)
{
    json_t *o = json_object();

    json_object_set_new(o, "node", mapq_cli_json_str(node));
    json_object_set_new(o, "index", json_integer((json_int_t)index));
    json_object_set_new(o, "attempt", json_integer(a->number));
    if (a->agent != NULL)
        json_object_set_new(o, "agent", json_str(a->agent));
    if (a->started >= 0)
        json_object_set_new(o, "started_ms", json_integer(a->started));
    if (a->duration >= 0)
        json_object_set_new(o, "duration_ms", json_integer(a->duration));
    if (a->exit_status >= 0)
        json_object_set_new(o, "exit_status", json_integer(a->exit_status));
    if (a->signal > 0)
        json_object_set_new(o, "signal", json_integer(a->signal));
    json_object_set_new(o, "phase", json_string(attempt_outcome_key(a)));
    json_object_set_new(o, "retried", json_boolean(a->kind == 'U'));
    if (a->error != NULL)
        json_object_set_new(o, "error", json_str(a->error));
    if (a->tail != NULL)
        json_object_set_new(o, "stderr", json_str(a->tail));
    json_array_append_new(arr, o);
}

/*
 * Prints (or adds to arr) every attempt in one subtask's log. What cannot
 * be read (corrupt bytes: the rest of the log) is said on stderr, and in
 * arr as an entry with "corrupt", never dropped silently.
 */
static void
show_sublog(FILE *out, json_t *arr, const char *node, const struct sublog *s)
{
    msgpack_unpacked u;
    struct mapq_attempt a;
    char err[MAPQ_ERR_LEN];
    size_t off = 0;
    json_t *o;

    msgpack_unpacked_init(&u);
    while (off < s->len) {
        if (mapq_value_unpack_next(s->data, s->len, &off, &u, err) != MAPQ_OK) {
            fprintf(stderr,
                    "mapq: %s[%" PRIu64 "]: the last %zu bytes of its attempt "
                    "log cannot be read: %s\n",
                    node, s->index, s->len - off, err);
            if (arr == NULL)
                break;
            o = json_object();
            json_object_set_new(o, "node", mapq_cli_json_str(node));
            json_object_set_new(o, "index", json_integer((json_int_t)s->index));
            json_object_set_new(o, "corrupt",
                                json_integer((json_int_t)(s->len - off)));
            json_array_append_new(arr, o);
            break;
        }
        if (u.data.type != MSGPACK_OBJECT_MAP)
            continue;
        mapq_record_attempt(&u.data, &a);
        if (arr != NULL)
            add_attempt_json(arr, node, s->index, &a);
        else
            print_attempt_text(out, node, s->index, &a, true);
    }
    msgpack_unpacked_destroy(&u);
}

size_t
mapq_inspect_print_attempts(FILE *out, const char *node, uint64_t index,
                            const char *data, size_t len, size_t skip,
                            bool tails, bool *final)
{
    msgpack_unpacked u;
    struct mapq_attempt a;
    char err[MAPQ_ERR_LEN];
    size_t off = 0, n = 0;

    *final = false;
    msgpack_unpacked_init(&u);
    while (off < len &&
           mapq_value_unpack_next(data, len, &off, &u, err) == MAPQ_OK) {
        if (u.data.type != MSGPACK_OBJECT_MAP)
            continue;
        mapq_record_attempt(&u.data, &a);
        if (n++ >= skip)
            print_attempt_text(out, node, index, &a, tails);
        *final = a.kind == 'T';
    }
    msgpack_unpacked_destroy(&u);
    return n;
}

/* ---- logs -------------------------------------------------------------- */

long
mapq_inspect_node(redisContext *c, const char *ns, const char *exec,
                  const char *node, char *err)
{
    char *key = mapq_key_exec(ns, exec);
    redisReply *r = redisCommand(c, "HMGET %s state nodes", key);
    long k = -1, n, i;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        mapq_err_set(err, MAPQ_EREDIS, "redis: %s",
                     r && r->str ? r->str : c->errstr);
        k = -2;
        goto out;
    }
    if (r->element[0]->type != REDIS_REPLY_STRING) {
        mapq_err_set(err, MAPQ_EINVAL, "no execution '%s'", exec);
        goto out;
    }
    n = r->element[1]->type == REDIS_REPLY_STRING
            ? strtol(r->element[1]->str, NULL, 10)
            : 0;
    for (i = 0; i < n && k < 0; i++) {
        redisReply *name = redisCommand(c, "HGET %s node:%ld", key, i);

        if (name != NULL && name->type == REDIS_REPLY_STRING &&
            strcmp(name->str, node) == 0)
            k = i;
        reply_free(name);
    }
    if (k < 0)
        mapq_err_set(err, MAPQ_EINVAL, "no node '%s' in execution %s", node,
                     exec);
out:
    reply_free(r);
    free(key);
    return k;
}

static void
sublog_add(struct sublog **v, size_t *n, size_t *cap, uint64_t index,
           const char *data, size_t len)
{
    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 64;
        *v = mapq_xrealloc(*v, *cap * sizeof(**v));
    }
    (*v)[*n].index = index;
    (*v)[*n].data = mapq_xmemdup(data, len);
    (*v)[*n].len = len;
    (*n)++;
}

/* Adds the records of log page field (len bytes of data, borrowed): those
 * of element *only, or with only NULL every one, each as its element's. A
 * tail that cannot be read is said on stderr. */
static void
page_add(struct sublog **v, size_t *n, size_t *cap, const char *field,
         const char *data, size_t len, const uint64_t *only)
{
    size_t off = 0, rn;
    uint64_t index;
    const char *p;

    while (mapq_record_page_next(data, len, &off, &index, &p, &rn))
        if (only == NULL || index == *only)
            sublog_add(v, n, cap, index, p, rn);
    if (off < len)
        fprintf(stderr,
                "mapq: log page %s: the last %zu bytes cannot be read; the "
                "attempts logged there are not shown\n",
                field, len - off);
}

/* Collects the logs of every subtask of node k, with HSCAN. */
static enum mapq_err
collect_node(redisContext *c, const char *key, long k, struct sublog **v,
             size_t *n, char *err)
{
    char cursor[32] = "0", match[32], prefix[32];
    size_t cap = 0, i, plen;
    redisReply *r;

    snprintf(match, sizeof(match), "%ld/*", k);
    plen = (size_t)snprintf(prefix, sizeof(prefix), "%ld/", k);
    do {
        r = redisCommand(c, "HSCAN %s %s MATCH %s COUNT " SCAN_COUNT, key,
                         cursor, match);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
            mapq_err_set(err, MAPQ_EREDIS, "redis: %s",
                         r && r->str ? r->str : c->errstr);
            reply_free(r);
            return MAPQ_EREDIS;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        for (i = 0; i + 1 < r->element[1]->elements; i += 2) {
            const redisReply *f = r->element[1]->element[i];
            const redisReply *val = r->element[1]->element[i + 1];

            if (f->len <= plen || strncmp(f->str, prefix, plen) != 0 ||
                val->type != REDIS_REPLY_STRING)
                continue;
            if (mapq_record_is_page_field(f->str, f->len))
                page_add(v, n, &cap, f->str, val->str, val->len, NULL);
            else
                sublog_add(v, n, &cap, strtoull(f->str + plen, NULL, 10),
                           val->str, val->len);
        }
        reply_free(r);
    } while (strcmp(cursor, "0") != 0);
    if (*n > 0) /* qsort() takes no NULL, even for no element */
        qsort(*v, *n, sizeof(**v), sublog_cmp);
    return MAPQ_OK;
}

/* Reads the log of subtask index of node k. */
static enum mapq_err
collect_one(redisContext *c, const char *key, long k, const char *index,
            struct sublog **v, size_t *n, char *err)
{
    size_t cap = 0;
    char *end, page[MAPQ_LOG_FIELD_LEN];
    uint64_t i = strtoull(index, &end, 10);
    redisReply *r;

    if (*index < '0' || *index > '9' || *end != '\0')
        return mapq_err_set(err, MAPQ_EINVAL,
                            "index must be a number, got '%s'", index);
    mapq_record_page_field(page, (uint32_t)k, i);
    /* Its own field, or a page: a first attempt that succeeded. */
    r = redisCommand(c, "HMGET %s %ld/%" PRIu64 " %s", key, k, i, page);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        mapq_err_set(err, MAPQ_EREDIS, "redis: %s",
                     r && r->str ? r->str : c->errstr);
        reply_free(r);
        return MAPQ_EREDIS;
    }
    if (r->element[0]->type == REDIS_REPLY_STRING)
        sublog_add(v, n, &cap, i, r->element[0]->str, r->element[0]->len);
    if (r->element[1]->type == REDIS_REPLY_STRING)
        page_add(v, n, &cap, page, r->element[1]->str, r->element[1]->len, &i);
    reply_free(r);
    return MAPQ_OK;
}

enum mapq_err
mapq_inspect_logs(redisContext *c, const char *ns, const char *exec,
                  const char *node, const char *index, bool json, FILE *out,
                  char *err)
{
    struct sublog *v = NULL;
    size_t n = 0, i;
    json_t *arr = NULL;
    enum mapq_err rc;
    char *key, *text;
    long k = mapq_inspect_node(c, ns, exec, node, err);

    if (k < 0)
        return k == -2 ? MAPQ_EREDIS : MAPQ_EINVAL;
    key = mapq_key_log(ns, exec);
    rc = index ? collect_one(c, key, k, index, &v, &n, err)
               : collect_node(c, key, k, &v, &n, err);
    if (rc != MAPQ_OK)
        goto out;
    if (json)
        arr = json_array();
    for (i = 0; i < n; i++)
        show_sublog(out, arr, node, &v[i]);
    if (json) {
        text = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
        if (text == NULL)
            rc = mapq_err_set(err, MAPQ_EIO, "cannot write the logs as JSON");
        else
            fprintf(out, "%s\n", text);
        free(text);
        json_decref(arr);
    } else if (n == 0) {
        fprintf(out,
                "no attempts logged for %s%s%s%s (successful plugin calls "
                "are not logged)\n",
                node, index ? "[" : "", index ? index : "", index ? "]" : "");
    }
out:
    for (i = 0; i < n; i++)
        free(v[i].data);
    free(v);
    free(key);
    return rc;
}

/* ---- agents ------------------------------------------------------------ */

static int64_t
server_ms(redisContext *c)
{
    redisReply *r = redisCommand(c, "TIME");
    int64_t ms = -1;

    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
             strtoll(r->element[1]->str, NULL, 10) / 1000;
    reply_free(r);
    return ms;
}

static const char *
field(const redisReply *r, size_t i, const char *dflt)
{
    return r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str
                                                     : dflt;
}

/* One line of the agents table; h is the HMGET of the agent's entry. */
static void
print_agent(FILE *out, const char *name, const redisReply *h, int64_t age)
{
    char cpus[16] = "?", mem[32] = "?";

    if (h->element[5]->type == REDIS_REPLY_STRING)
        snprintf(cpus, sizeof(cpus), "%g",
                 (double)strtoll(h->element[5]->str, NULL, 10) / 1000);
    if (h->element[6]->type == REDIS_REPLY_STRING)
        mapq_size_format(strtoll(h->element[6]->str, NULL, 10), mem,
                         sizeof(mem));
    fprintf(out, "%-24s %-20s %5s %6s %9s %7s %-16s %-13s %.1fs ago\n", name,
            field(h, 0, "?"), field(h, 1, "?"), cpus, mem, field(h, 2, "0"),
            field(h, 3, "?"), strcmp(field(h, 4, "0"), "1") == 0 ? "yes" : "no",
            (double)age / 1000);
}

static void
add_agent_json(json_t *arr, const char *name, const redisReply *h, int64_t age)
{
    json_t *o = json_object(), *queues = json_array();
    const char *q = field(h, 3, ""), *comma;

    while (*q != '\0') {
        comma = strchr(q, ',');
        json_array_append_new(
            queues,
            mapq_cli_json_text(q, comma ? (size_t)(comma - q) : strlen(q)));
        q = comma ? comma + 1 : q + strlen(q);
    }
    json_object_set_new(o, "name", mapq_cli_json_str(name));
    json_object_set_new(o, "host", mapq_cli_json_str(field(h, 0, "")));
    json_object_set_new(o, "slots",
                        json_integer(strtoll(field(h, 1, "0"), NULL, 10)));
    json_object_set_new(o, "running",
                        json_integer(strtoll(field(h, 2, "0"), NULL, 10)));
    json_object_set_new(o, "queues", queues);
    json_object_set_new(o, "interruptible",
                        json_boolean(strcmp(field(h, 4, "0"), "1") == 0));
    json_object_set_new(o, "heartbeat_ms_ago", json_integer(age));
    json_object_set_new(
        o, "cpus",
        json_real((double)strtoll(field(h, 5, "0"), NULL, 10) / 1000));
    json_object_set_new(o, "mem_bytes",
                        json_integer(strtoll(field(h, 6, "0"), NULL, 10)));
    json_array_append_new(arr, o);
}

enum mapq_err
mapq_inspect_agents(redisContext *c, const char *ns, bool json, FILE *out,
                    char *err)
{
    int64_t now = server_ms(c);
    redisReply *r, *h;
    json_t *arr = json ? json_array() : NULL;
    char *text, *key = mapq_key_agents(ns);
    size_t i;

    r = redisCommand(c, "ZRANGEBYSCORE %s %lld +inf WITHSCORES", key,
                     (long long)(now - MAPQ_AGENT_LIVE_MS));
    free(key);
    if (now < 0 || r == NULL || r->type != REDIS_REPLY_ARRAY) {
        mapq_err_set(err, MAPQ_EREDIS, "redis: %s",
                     r && r->str ? r->str : c->errstr);
        reply_free(r);
        json_decref(arr);
        return MAPQ_EREDIS;
    }
    if (!json)
        fprintf(out, "%-24s %-20s %5s %6s %9s %7s %-16s %-13s %s\n", "NAME",
                "HOST", "SLOTS", "CPUS", "MEM", "RUNNING", "QUEUES",
                "INTERRUPTIBLE", "HEARTBEAT");
    for (i = 0; i + 1 < r->elements; i += 2) {
        const char *name = r->element[i]->str;
        int64_t age = now - strtoll(r->element[i + 1]->str, NULL, 10);

        key = mapq_key_agent(ns, name);
        h = redisCommand(
            c, "HMGET %s host slots running queues interruptible cpus mem",
            key);
        free(key);
        if (h == NULL || h->type != REDIS_REPLY_ARRAY || h->elements != 7) {
            reply_free(h);
            continue;
        }
        if (json)
            add_agent_json(arr, name, h, age < 0 ? 0 : age);
        else
            print_agent(out, name, h, age < 0 ? 0 : age);
        reply_free(h);
    }
    if (json) {
        text = json_dumps(arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fprintf(out, "%s\n", text ? text : "[]");
        free(text);
        json_decref(arr);
    }
    reply_free(r);
    return MAPQ_OK;
}
