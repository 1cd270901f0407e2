/*
 * status_snap.c - the status page's snapshot of Redis: reading the replies
 * of its reads into it, grouping failures found in attempt logs, and
 * writing it as the JSON of GET /api/status.
 *
 * Pure: replies in, structs and JSON text out; no I/O, no logging. Every
 * reply may hold anything (a foreign client, a corrupt write): a field of
 * the wrong shape is noted as a problem of its execution or node, never
 * trusted, and every text is copied under a cap and written through
 * mapq_json_append_text(), so the document is valid JSON whatever Redis
 * holds.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_json.h"
#include "mapq_record.h"
#include "mapq_status_page.h"
#include "mapq_value.h"
#include "status_page_int.h"

/* ---- reading replies ----------------------------------------------------- */

/* e as a string reply, or NULL. */
static const redisReply *
str_of(const redisReply *e)
{
    return e != NULL && e->type == REDIS_REPLY_STRING ? e : NULL;
}

/* A copy of e's bytes, up to cap (a NUL inside ends it). */
static char *
dup_capped(const redisReply *e, size_t cap)
{
    return mapq_xstrndup(e->str, e->len < cap ? e->len : cap);
}

/* Decimal text e as an int64; false when it is not exactly that. */
static bool
parse_i64(const redisReply *e, int64_t *out)
{
    char buf[32], *end;
    long long v;

    if (e == NULL || e->len == 0 || e->len >= sizeof(buf))
        return false;
    memcpy(buf, e->str, e->len);
    buf[e->len] = '\0';
    errno = 0;
    v = strtoll(buf, &end, 10);
    if (errno != 0 || *end != '\0' ||
        !(isdigit((unsigned char)buf[0]) || (buf[0] == '-' && buf[1] != '\0')))
        return false;
    *out = v;
    return true;
}

/* A sorted-set score as ms (Redis writes integral scores as integers),
 * within +-2^62 so that differences of two cannot overflow. */
static bool
parse_score(const redisReply *e, int64_t *out)
{
    char buf[64], *end;
    double v;

    if (e == NULL || e->len == 0 || e->len >= sizeof(buf))
        return false;
    memcpy(buf, e->str, e->len);
    buf[e->len] = '\0';
    v = strtod(buf, &end);
    if (*end != '\0' || !(v > -4.6e18 && v < 4.6e18))
        return false;
    *out = (int64_t)v;
    return true;
}

static bool
valid_id(const redisReply *e)
{
    size_t i;

    if (e->len != MAPQ_EXEC_ID_LEN)
        return false;
    for (i = 0; i < e->len; i++)
        if (!isdigit((unsigned char)e->str[i]) &&
            (e->str[i] < 'a' || e->str[i] > 'f'))
            return false;
    return true;
}

static void
problem(struct st_exec *x, const char *what)
{
    if (x->nproblems < ST_PROBLEMS_MAX)
        x->problems[x->nproblems++] = what;
}

int64_t
st_read_time(const redisReply *r)
{
    int64_t s, us;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        !parse_i64(str_of(r->element[0]), &s) ||
        !parse_i64(str_of(r->element[1]), &us))
        return -1;
    return s * 1000 + us / 1000;
}

bool
st_read_execs(struct st_snapshot *s, const redisReply *r, size_t max)
{
    size_t i, n;
    struct st_exec *x;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0)
        return false;
    n = r->elements / 2 < max ? r->elements / 2 : max;
    s->execs = mapq_xcalloc(n ? n : 1, sizeof(*s->execs));
    for (i = 0; i < n; i++) {
        const redisReply *id = str_of(r->element[2 * i]);

        x = &s->execs[s->nexecs++];
        x->created_ms = x->finished_ms = -1;
        if (id == NULL || !valid_id(id)) {
            x->id = id ? dup_capped(id, ST_NAME_MAX) : mapq_xstrdup("");
            x->foreign = true;
            problem(x, "not an execution id: nothing read");
            continue;
        }
        x->id = dup_capped(id, MAPQ_EXEC_ID_LEN);
        /* The record's created, when it has one, is read next. */
        (void)parse_score(str_of(r->element[2 * i + 1]), &x->created_ms);
    }
    return true;
}

bool
st_read_record(struct st_exec *x, const redisReply *r)
{
    const redisReply *e[ST_RECORD_FIELDS];
    int64_t v;
    size_t i, nil = 0;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
        r->elements != ST_RECORD_FIELDS) {
        problem(x, "its record could not be read");
        return false;
    }
    for (i = 0; i < ST_RECORD_FIELDS; i++) {
        e[i] = str_of(r->element[i]);
        nil += e[i] == NULL;
    }
    if (nil == ST_RECORD_FIELDS) {
        problem(x, "no record (Redis lost it, or it is not mapq's)");
        return true;
    }
    if (e[0] != NULL)
        x->status = dup_capped(e[0], ST_NAME_MAX);
    else
        problem(x, "its record has no state");
    if (e[1] != NULL)
        x->workflow = dup_capped(e[1], ST_NAME_MAX);
    if (parse_i64(e[2], &v))
        x->created_ms = v;
    else if (e[2] != NULL)
        problem(x, "its created time is not a number");
    if (parse_i64(e[3], &v))
        x->finished_ms = v;
    else if (e[3] != NULL)
        problem(x, "its finished time is not a number");
    if (parse_i64(e[4], &v) && v >= 0)
        x->nodes_declared = (uint64_t)v;
    else if (e[4] != NULL)
        problem(x, "its node count is not a number");
    if (e[5] != NULL)
        x->error = dup_capped(e[5], ST_TEXT_MAX);
    return true;
}

size_t
st_nodes_to_read(const struct st_exec *x, size_t max)
{
    if (x->foreign || x->status == NULL)
        return 0;
    return x->nodes_declared < max ? (size_t)x->nodes_declared : max;
}

/* p:<k>: [state str, total int, count per phase x 9 ints]. */
static void
read_progress(struct st_node *nd, const redisReply *p)
{
    msgpack_unpacked u;
    const msgpack_object *a;
    char err[MAPQ_ERR_LEN];
    size_t j;

    msgpack_unpacked_init(&u);
    if (mapq_value_unpack(p->str, p->len, &u, err) != MAPQ_OK ||
        u.data.type != MSGPACK_OBJECT_ARRAY ||
        u.data.via.array.size != 2 + MAPQ_PHASE_COUNT ||
        u.data.via.array.ptr[0].type != MSGPACK_OBJECT_STR)
        goto bad;
    a = u.data.via.array.ptr;
    for (j = 1; j < 2 + MAPQ_PHASE_COUNT; j++)
        if (a[j].type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            goto bad;
    nd->state = mapq_xstrndup(a[0].via.str.ptr, a[0].via.str.size < ST_NAME_MAX
                                                    ? a[0].via.str.size
                                                    : ST_NAME_MAX);
    nd->total = a[1].via.u64;
    for (j = 0; j < MAPQ_PHASE_COUNT; j++)
        nd->counts[j] = a[2 + j].via.u64;
    msgpack_unpacked_destroy(&u);
    return;
bad:
    nd->state = mapq_xstrdup("unknown");
    nd->problem = "its progress cannot be read";
    msgpack_unpacked_destroy(&u);
}

void
st_read_nodes(struct st_exec *x, const redisReply *r, size_t n)
{
    struct st_node *nd;
    size_t k;
    bool shaped =
        r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 * n;

    x->nodes = mapq_xcalloc(n ? n : 1, sizeof(*x->nodes));
    x->nnodes = n;
    for (k = 0; k < n; k++) {
        const redisReply *name = shaped ? str_of(r->element[2 * k]) : NULL;
        const redisReply *p = shaped ? str_of(r->element[2 * k + 1]) : NULL;

        nd = &x->nodes[k];
        if (!shaped) {
            nd->state = mapq_xstrdup("unknown");
            nd->problem = "its fields could not be read";
            continue;
        }
        if (name != NULL)
            nd->name = dup_capped(name, ST_NAME_MAX);
        if (p != NULL)
            read_progress(nd, p);
        else
            nd->state = mapq_xstrdup("waiting");
        if (name == NULL && nd->problem == NULL)
            nd->problem = "its name is missing";
    }
}

bool
st_read_agents(struct st_snapshot *s, const redisReply *r, int64_t live_ms,
               size_t max)
{
    size_t i, n;
    int64_t hb;

    if (s->redis_ms < 0 || r == NULL || r->type != REDIS_REPLY_ARRAY ||
        r->elements % 2 != 0)
        return false;
    n = r->elements / 2 < max ? r->elements / 2 : max;
    s->agents = mapq_xcalloc(n ? n : 1, sizeof(*s->agents));
    for (i = 0; i < n; i++) {
        const redisReply *name = str_of(r->element[2 * i]);

        if (name == NULL || !parse_score(str_of(r->element[2 * i + 1]), &hb))
            continue;
        /* Newest first: the first one too old ends the live ones. */
        if (s->redis_ms - hb > live_ms)
            break;
        s->agents[s->nagents].name = dup_capped(name, ST_NAME_MAX);
        s->agents[s->nagents].age_ms = s->redis_ms > hb ? s->redis_ms - hb : 0;
        s->nagents++;
    }
    return true;
}

/* An optional number field of an agent: 0 when absent or odd. */
static int64_t
agent_num(const redisReply *e)
{
    int64_t v;

    return parse_i64(e, &v) && v >= 0 ? v : 0;
}

bool
st_read_agent(struct st_agent *a, const redisReply *r)
{
    const redisReply *e[ST_AGENT_FIELDS];
    size_t i, nil = 0;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY ||
        r->elements != ST_AGENT_FIELDS)
        return false;
    for (i = 0; i < ST_AGENT_FIELDS; i++) {
        e[i] = str_of(r->element[i]);
        nil += e[i] == NULL;
    }
    if (nil == ST_AGENT_FIELDS)
        return false;
    a->host = e[0] ? dup_capped(e[0], ST_NAME_MAX) : mapq_xstrdup("");
    a->slots = agent_num(e[1]);
    a->running = agent_num(e[2]);
    a->queues = e[3] ? dup_capped(e[3], ST_TEXT_MAX) : mapq_xstrdup("");
    a->interruptible = e[4] != NULL && e[4]->len == 1 && e[4]->str[0] == '1';
    a->cpus_milli = agent_num(e[5]);
    a->mem_bytes = agent_num(e[6]);
    return true;
}

void
st_agents_compact(struct st_snapshot *s)
{
    size_t i, n = 0;

    for (i = 0; i < s->nagents; i++) {
        if (s->agents[i].host == NULL) {
            free(s->agents[i].name);
            continue;
        }
        s->agents[n++] = s->agents[i];
    }
    s->nagents = n;
}

/* ---- failures --------------------------------------------------------------
 */

bool
st_exec_ended(const struct st_exec *x)
{
    return x->status != NULL && (strcmp(x->status, "succeeded") == 0 ||
                                 strcmp(x->status, "failed") == 0 ||
                                 strcmp(x->status, "cancelled") == 0);
}

bool
st_exec_settled(const struct st_exec *x, int64_t now_ms)
{
    return st_exec_ended(x) && x->finished_ms >= 0 &&
           now_ms - x->finished_ms > ST_SETTLE_MS;
}

bool
st_exec_failures(const struct st_exec *x)
{
    size_t k;

    for (k = 0; k < x->nnodes; k++)
        if (x->nodes[k].counts[MAPQ_PHASE_FAILED] +
                x->nodes[k].counts[MAPQ_PHASE_TIMED_OUT] >
            0)
            return true;
    return false;
}

void
st_fails_add(struct st_fails *f, uint32_t k, uint64_t index, const char *msg,
             size_t len)
{
    struct st_group *g;
    size_t i;

    for (i = 0; i < f->ngroups; i++)
        if (strlen(f->groups[i].error) == len &&
            memcmp(f->groups[i].error, msg, len) == 0)
            break;
    if (i == f->ngroups) {
        if (i == ST_GROUPS_MAX) {
            f->ungrouped++;
            return;
        }
        if (f->groups == NULL)
            f->groups = mapq_xcalloc(ST_GROUPS_MAX, sizeof(*f->groups));
        f->groups[f->ngroups++].error = mapq_xstrndup(msg, len);
    }
    g = &f->groups[i];
    g->count++;
    if (g->nex < ST_EXAMPLES_MAX)
        g->ex[g->nex++] = (struct st_example){k, index};
    for (i = 0; i < g->nnodes && g->nodes[i] != k; i++)
        ;
    if (i == g->nnodes && g->nnodes < ST_GROUP_NODES_MAX)
        g->nodes[g->nnodes++] = k;
}

/*
 * Reads one subtask's attempt log (a stream of attempt records) and, when
 * its last attempt failed for good, adds it under the message the driver
 * would give it: the error, then the last line of its stderr. False when
 * the log cannot be read to its end.
 */
static bool
take_log(struct st_fails *f, uint32_t k, uint64_t index, const char *data,
         size_t len)
{
    msgpack_unpacked u;
    struct mapq_attempt a = {0};
    char err[MAPQ_ERR_LEN], msg[1200];
    const char *lp;
    size_t off = 0, ln;
    bool any = false, ok = true;

    msgpack_unpacked_init(&u);
    while (off < len) {
        if (mapq_value_unpack_next(data, len, &off, &u, err) != MAPQ_OK) {
            ok = false;
            goto out;
        }
        if (u.data.type != MSGPACK_OBJECT_MAP)
            continue;
        any = true;
        mapq_record_attempt(&u.data, &a);
        /* The strs go with u: what the message needs is copied now. */
        snprintf(msg, sizeof(msg), "%.*s",
                 a.error != NULL ? (int)a.error->via.str.size : 6,
                 a.error != NULL ? a.error->via.str.ptr : "failed");
        if (a.tail != NULL) {
            mapq_record_last_line(a.tail->via.str.ptr, a.tail->via.str.size,
                                  &lp, &ln);
            if (ln > 0)
                snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), ": %.*s",
                         (int)(ln > 300 ? 300 : ln), lp);
        }
    }
    if (any && a.kind == 'T' &&
        (a.phase == MAPQ_PHASE_FAILED || a.phase == MAPQ_PHASE_TIMED_OUT))
        st_fails_add(f, k, index, msg, strlen(msg));
out:
    msgpack_unpacked_destroy(&u);
    return ok;
}

/* "<k>/<index>", the field of a subtask's log. */
static bool
parse_log_field(const redisReply *e, uint32_t *k, uint64_t *index)
{
    char buf[48], *slash, *end;
    unsigned long long kk, i;

    if (e == NULL || e->len == 0 || e->len >= sizeof(buf))
        return false;
    memcpy(buf, e->str, e->len);
    buf[e->len] = '\0';
    slash = strchr(buf, '/');
    if (slash == NULL || !isdigit((unsigned char)buf[0]) ||
        !isdigit((unsigned char)slash[1]))
        return false;
    errno = 0;
    kk = strtoull(buf, &end, 10);
    if (end != slash || kk > UINT32_MAX)
        return false;
    i = strtoull(slash + 1, &end, 10);
    if (*end != '\0' || errno != 0)
        return false;
    *k = (uint32_t)kk;
    *index = i;
    return true;
}

void
st_fails_release(struct st_fails *f)
{
    size_t i;

    for (i = 0; i < f->ngroups; i++)
        free(f->groups[i].error);
    free(f->groups);
    memset(f, 0, sizeof(*f));
}

bool
st_read_scan(struct st_scan *sc, const redisReply *r, bool settled)
{
    const redisReply *cur, *kv;
    uint32_t k;
    uint64_t index;
    size_t j;

    if (strcmp(sc->cursor, "0") == 0) {
        st_fails_release(&sc->pass);
        sc->pass_after_end = settled;
    }
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
        (cur = str_of(r->element[0])) == NULL ||
        cur->len >= sizeof(sc->cursor) ||
        r->element[1]->type != REDIS_REPLY_ARRAY ||
        r->element[1]->elements % 2 != 0) {
        snprintf(sc->cursor, sizeof(sc->cursor), "0");
        sc->problem = "its attempt logs cannot be read";
        return false;
    }
    sc->problem = NULL;
    kv = r->element[1];
    for (j = 0; j < kv->elements; j += 2) {
        const redisReply *v = str_of(kv->element[j + 1]),
                         *f = str_of(kv->element[j]);

        /* A log page holds first attempts that succeeded: no failure. */
        if (f != NULL && mapq_record_is_page_field(f->str, f->len))
            continue;
        sc->pass.logs++;
        if (!parse_log_field(f, &k, &index) || v == NULL ||
            !take_log(&sc->pass, k, index, v->str, v->len))
            sc->pass.unreadable++;
    }
    snprintf(sc->cursor, sizeof(sc->cursor), "%.*s", (int)cur->len, cur->str);
    if (strcmp(sc->cursor, "0") == 0) {
        st_fails_release(&sc->shown);
        sc->shown = sc->pass;
        memset(&sc->pass, 0, sizeof(sc->pass));
        sc->have_shown = true;
        sc->frozen = sc->pass_after_end;
    }
    return true;
}

/* ---- lifecycle ------------------------------------------------------------
 */

void
st_snapshot_release(struct st_snapshot *s)
{
    size_t i, k;

    for (i = 0; i < s->nexecs; i++) {
        struct st_exec *x = &s->execs[i];

        for (k = 0; k < x->nnodes; k++) {
            free(x->nodes[k].name);
            free(x->nodes[k].state);
        }
        free(x->nodes);
        free(x->id);
        free(x->workflow);
        free(x->status);
        free(x->error);
    }
    free(s->execs);
    for (i = 0; i < s->nagents; i++) {
        free(s->agents[i].name);
        free(s->agents[i].host);
        free(s->agents[i].queues);
    }
    free(s->agents);
    memset(s, 0, sizeof(*s));
}

void
st_scan_free(struct st_scan *sc)
{
    if (sc == NULL)
        return;
    st_fails_release(&sc->pass);
    st_fails_release(&sc->shown);
    free(sc->id);
    free(sc);
}

/* ---- JSON ---------------------------------------------------------------- */

/* A string member's value, or null. */
static void
jstr(struct mapq_buf *out, const char *s)
{
    if (s == NULL)
        mapq_buf_appendstr(out, "null");
    else
        mapq_json_append_text(out, s, strlen(s));
}

/* An integer member's value, or null when negative (absent). */
static void
jtime(struct mapq_buf *out, int64_t v)
{
    if (v < 0)
        mapq_buf_appendstr(out, "null");
    else
        mapq_buf_printf(out, "%" PRId64, v);
}

/* A node's name for the failures: its name, or "#<k>" when unknown. */
static void
jnode(struct mapq_buf *out, const struct st_exec *x, uint32_t k)
{
    char num[16];

    if (k < x->nnodes && x->nodes[k].name != NULL) {
        jstr(out, x->nodes[k].name);
        return;
    }
    snprintf(num, sizeof(num), "#%" PRIu32, k);
    jstr(out, num);
}

static void
render_node(const struct st_node *nd, struct mapq_buf *out)
{
    char key[32];
    uint64_t done = 0;
    size_t j, c;
    int p;

    for (p = MAPQ_PHASE_SUCCEEDED; p < MAPQ_PHASE_COUNT; p++)
        done += nd->counts[p];
    mapq_buf_appendstr(out, "{\"name\":");
    jstr(out, nd->name);
    mapq_buf_appendstr(out, ",\"state\":");
    jstr(out, nd->state);
    mapq_buf_printf(out,
                    ",\"total\":%" PRIu64 ",\"done\":%" PRIu64 ",\"counts\":{",
                    nd->total, done);
    for (p = 0; p < MAPQ_PHASE_COUNT; p++) {
        /* The phase as docs/JSON.md spells it: timed_out. */
        snprintf(key, sizeof(key), "%s", mapq_phase_name(p));
        for (j = 0; key[j] != '\0'; j++)
            key[j] = (char)tolower((unsigned char)key[j]);
        c = (size_t)p;
        mapq_buf_printf(out, "%s\"%s\":%" PRIu64, p ? "," : "", key,
                        nd->counts[c]);
    }
    mapq_buf_appendstr(out, "}");
    if (nd->problem != NULL) {
        mapq_buf_appendstr(out, ",\"problem\":");
        jstr(out, nd->problem);
    }
    mapq_buf_appendstr(out, "}");
}

static int
group_cmp(const void *a, const void *b)
{
    const struct st_group *x = *(const struct st_group *const *)a;
    const struct st_group *y = *(const struct st_group *const *)b;

    /* Most first; the same order at every refresh. */
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    return strcmp(x->error, y->error);
}

static int
example_cmp(const void *a, const void *b)
{
    const struct st_example *x = a, *y = b;

    if (x->k != y->k)
        return x->k < y->k ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

static void
render_group(const struct st_exec *x, const struct st_group *g,
             struct mapq_buf *out)
{
    struct st_example ex[ST_EXAMPLES_MAX];
    size_t j;

    /* The first found, in the order of the hash: shown in index order. */
    memcpy(ex, g->ex, g->nex * sizeof(ex[0]));
    if (g->nex > 1)
        qsort(ex, g->nex, sizeof(ex[0]), example_cmp);
    mapq_buf_appendstr(out, "{\"error\":");
    jstr(out, g->error);
    mapq_buf_printf(out, ",\"count\":%" PRIu64 ",\"nodes\":[", g->count);
    for (j = 0; j < g->nnodes; j++) {
        mapq_buf_appendstr(out, j ? "," : "");
        jnode(out, x, g->nodes[j]);
    }
    mapq_buf_appendstr(out, "],\"examples\":[");
    for (j = 0; j < g->nex; j++) {
        mapq_buf_appendstr(out, j ? ",{\"node\":" : "{\"node\":");
        jnode(out, x, ex[j].k);
        mapq_buf_printf(out, ",\"index\":%" PRIu64 "}", ex[j].index);
    }
    mapq_buf_appendstr(out, "]}");
}

/* "failures" and "failures_read" of x, from its scan (NULL: none). */
static void
render_failures(const struct st_exec *x, const struct st_scan *sc,
                struct mapq_buf *out)
{
    const struct st_fails *f;
    const struct st_group *sorted[ST_GROUPS_MAX];
    size_t j;

    if (sc == NULL ||
        (!sc->have_shown && sc->pass.logs == 0 && sc->problem == NULL)) {
        mapq_buf_appendstr(out, ",\"failures\":[],\"failures_read\":null");
        return;
    }
    f = sc->have_shown ? &sc->shown : &sc->pass;
    for (j = 0; j < f->ngroups; j++)
        sorted[j] = &f->groups[j];
    if (f->ngroups > 1)
        qsort(sorted, f->ngroups, sizeof(sorted[0]), group_cmp);
    mapq_buf_appendstr(out, ",\"failures\":[");
    for (j = 0; j < f->ngroups; j++) {
        mapq_buf_appendstr(out, j ? "," : "");
        render_group(x, sorted[j], out);
    }
    mapq_buf_printf(out,
                    "],\"failures_read\":{\"logs\":%" PRIu64
                    ",\"complete\":%s,\"ungrouped\":%" PRIu64
                    ",\"unreadable\":%" PRIu64,
                    f->logs, sc->have_shown ? "true" : "false", f->ungrouped,
                    f->unreadable);
    if (sc->problem != NULL) {
        mapq_buf_appendstr(out, ",\"problem\":");
        jstr(out, sc->problem);
    }
    mapq_buf_appendstr(out, "}");
}

static const struct st_scan *
find_scan(struct st_scan *const *scans, size_t n, const char *id)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (strcmp(scans[i]->id, id) == 0)
            return scans[i];
    return NULL;
}

static void
render_exec(const struct st_exec *x, int64_t now_ms, const struct st_scan *sc,
            struct mapq_buf *out)
{
    int64_t dur = -1;
    size_t k;

    if (x->created_ms >= 0 && x->finished_ms >= x->created_ms)
        dur = x->finished_ms - x->created_ms;
    else if (x->created_ms >= 0 && x->status != NULL && !st_exec_ended(x) &&
             now_ms >= x->created_ms)
        dur = now_ms - x->created_ms;
    mapq_buf_appendstr(out, "{\"execution\":");
    jstr(out, x->id);
    mapq_buf_appendstr(out, ",\"workflow\":");
    jstr(out, x->workflow);
    mapq_buf_appendstr(out, ",\"status\":");
    jstr(out, x->status);
    mapq_buf_appendstr(out, ",\"created_ms\":");
    jtime(out, x->created_ms);
    mapq_buf_appendstr(out, ",\"finished_ms\":");
    jtime(out, x->finished_ms);
    mapq_buf_appendstr(out, ",\"duration_ms\":");
    jtime(out, dur);
    mapq_buf_appendstr(out, ",\"age_ms\":");
    jtime(out, x->created_ms >= 0 && now_ms >= x->created_ms
                   ? now_ms - x->created_ms
                   : -1);
    mapq_buf_printf(out, ",\"nodes_total\":%" PRIu64 ",\"nodes\":[",
                    x->nodes_declared);
    for (k = 0; k < x->nnodes; k++) {
        mapq_buf_appendstr(out, k ? "," : "");
        render_node(&x->nodes[k], out);
    }
    mapq_buf_appendstr(out, "]");
    if (x->error != NULL) {
        mapq_buf_appendstr(out, ",\"error\":");
        jstr(out, x->error);
    }
    render_failures(x, sc, out);
    if (x->nproblems > 0) {
        mapq_buf_appendstr(out, ",\"problems\":[");
        for (k = 0; k < x->nproblems; k++) {
            mapq_buf_appendstr(out, k ? "," : "");
            jstr(out, x->problems[k]);
        }
        mapq_buf_appendstr(out, "]");
    }
    mapq_buf_appendstr(out, "}");
}

static void
render_agent(const struct st_agent *a, struct mapq_buf *out)
{
    const char *q = a->queues, *comma;
    bool first = true;

    mapq_buf_appendstr(out, "{\"name\":");
    jstr(out, a->name);
    mapq_buf_appendstr(out, ",\"host\":");
    jstr(out, a->host);
    mapq_buf_printf(
        out, ",\"slots\":%" PRId64 ",\"running\":%" PRId64 ",\"queues\":[",
        a->slots, a->running);
    while (*q != '\0') {
        comma = strchr(q, ',');
        mapq_buf_appendstr(out, first ? "" : ",");
        mapq_json_append_text(out, q, comma ? (size_t)(comma - q) : strlen(q));
        first = false;
        q = comma ? comma + 1 : q + strlen(q);
    }
    mapq_buf_printf(out,
                    "],\"interruptible\":%s,\"heartbeat_ms_ago\":%" PRId64
                    ",\"cpus\":%g,\"mem_bytes\":%" PRId64 "}",
                    a->interruptible ? "true" : "false", a->age_ms,
                    (double)a->cpus_milli / 1000, a->mem_bytes);
}

static void
render_self(const struct st_self *self, const struct st_snapshot *s,
            struct mapq_buf *out)
{
    mapq_buf_appendstr(out, "{\"scheduler\":{\"version\":");
    jstr(out, MAPQ_VERSION);
    mapq_buf_printf(out, ",\"protocol\":%d,\"namespace\":", MAPQ_PROTOCOL);
    jstr(out, self->ns);
    mapq_buf_printf(out,
                    ",\"started_ms\":%" PRId64 ",\"uptime_s\":%.3f"
                    ",\"driving\":%zu,\"refresh_ms\":%d,\"refreshed_ms\":",
                    self->started_ms,
                    (double)(self->now_ms - self->started_ms) / 1000,
                    self->driving, MAPQ_STATUS_REFRESH_MS);
    jtime(out, self->refreshed_ms);
    mapq_buf_appendstr(out, ",\"snapshot_age_ms\":");
    jtime(out, self->refreshed_ms >= 0 && self->now_ms >= self->refreshed_ms
                   ? self->now_ms - self->refreshed_ms
                   : -1);
    mapq_buf_appendstr(out, ",\"redis_time_ms\":");
    jtime(out, s != NULL ? s->redis_ms : -1);
    mapq_buf_appendstr(out, ",\"redis_error\":");
    jstr(out, self->redis_error);
    mapq_buf_printf(out,
                    ",\"limits\":{\"executions\":%d,\"nodes\":%d"
                    ",\"agents\":%d,\"logs_per_read\":%d"
                    ",\"reads_per_refresh\":%d,\"error_groups\":%d}}",
                    MAPQ_STATUS_EXECS_MAX, MAPQ_STATUS_NODES_MAX,
                    MAPQ_STATUS_AGENTS_MAX, MAPQ_STATUS_LOGS_PER_READ,
                    MAPQ_STATUS_READS_MAX, ST_GROUPS_MAX);
}

void
st_render(const struct st_self *self, const struct st_snapshot *s,
          struct st_scan *const *scans, size_t nscans, struct mapq_buf *out)
{
    size_t i;

    render_self(self, s, out);
    mapq_buf_appendstr(out, ",\"executions\":[");
    for (i = 0; s != NULL && i < s->nexecs; i++) {
        mapq_buf_appendstr(out, i ? "," : "");
        render_exec(&s->execs[i], s->redis_ms,
                    find_scan(scans, nscans, s->execs[i].id), out);
    }
    mapq_buf_appendstr(out, "],\"agents\":[");
    for (i = 0; s != NULL && i < s->nagents; i++) {
        mapq_buf_appendstr(out, i ? "," : "");
        render_agent(&s->agents[i], out);
    }
    mapq_buf_appendstr(out, "]}\n");
}
