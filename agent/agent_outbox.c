/*
 * agent_outbox.c - the results' outbox: finished attempts as the entries
 * of the agent's mapq1_step call (the same as mapq1_done's), taken in
 * batches that stay well under Redis's query limit.
 *
 * Owns the entries it packs (a->outbox, a->sending). If a call fails its
 * entries go back in front of the outbox and are sent again after a
 * backoff, or after reconnecting (finishing is fenced by ref, so a repeat
 * is refused harmlessly). Never decides what a job records (agent_job.c
 * does) nor when the outbox is sent (the controller does).
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_log.h"
#include "mapq_record.h"
#include "mapq_value.h"

/*
 * The attempt's log entry (docs/PROTOCOL.md, P:log): who ran it, when, for
 * how long, how it ended, and the end of its stderr.
 */
static void
pack_attempt(struct mapq_buf *out, const struct job *job, char kind, int phase,
             const char *error)
{
    const struct mapq_cmd_result *res = job->res;
    const char *tail = res ? res->stderr_tail.data : NULL;
    size_t tlen = res ? res->stderr_tail.len : 0, n = 7;
    bool has_exit = res && res->exit_status >= 0,
         has_sig = res && res->term_signal > 0, has_err = error && *error;
    msgpack_packer pk;

    if (tlen > LOG_TAIL_MAX) {
        /* From a line's start when one begins in the kept part. */
        const char *nl =
            memchr(tail + tlen - LOG_TAIL_MAX, '\n', LOG_TAIL_MAX - 1);

        tail = nl ? nl + 1 : tail + tlen - LOG_TAIL_MAX;
        tlen = (size_t)(res->stderr_tail.data + res->stderr_tail.len - tail);
    }
    n += has_exit + has_sig + has_err + (tlen > 0);
    mapq_value_packer_init(&pk, out);
    msgpack_pack_map(&pk, (uint32_t)n);
    mapq_value_pack_str(&pk, "a");
    msgpack_pack_uint32(&pk, mapq_ref_attempt(&job->r));
    /* Which element: a log page holds the records of many. */
    mapq_value_pack_str(&pk, "i");
    msgpack_pack_uint64(&pk, job->r.index);
    mapq_value_pack_str(&pk, "ag");
    mapq_value_pack_str(&pk, job->a->name);
    mapq_value_pack_str(&pk, "t");
    msgpack_pack_int64(&pk, job->started_ms);
    mapq_value_pack_str(&pk, "d");
    msgpack_pack_int64(&pk, res ? res->duration_ms
                                : agent_now_ms() - job->started_ms);
    mapq_value_pack_str(&pk, "k");
    msgpack_pack_str(&pk, 1);
    msgpack_pack_str_body(&pk, &kind, 1);
    mapq_value_pack_str(&pk, "p");
    msgpack_pack_int(&pk, phase);
    if (has_exit) {
        mapq_value_pack_str(&pk, "x");
        msgpack_pack_int(&pk, res->exit_status);
    }
    if (has_sig) {
        mapq_value_pack_str(&pk, "sig");
        msgpack_pack_int(&pk, res->term_signal);
    }
    if (has_err) {
        mapq_value_pack_str(&pk, "e");
        mapq_value_pack_str(&pk, error);
    }
    if (tlen > 0) {
        mapq_value_pack_str(&pk, "l");
        msgpack_pack_str(&pk, tlen);
        msgpack_pack_str_body(&pk, tail, tlen);
    }
}

/*
 * Appends one finished attempt: its kind (T terminal, record stored; U
 * user retry; S system retry; I interrupted), target ("<queue>/<cls>" for
 * retries) and error. Every attempt is logged except a plugin's success,
 * which would cost the fast path more Redis memory than its result. The
 * checkpoint the attempt left, if any (job->ckpt_out), goes with it.
 */
void
agent_outbox_add(struct mapq_agent *a, const struct job *job,
                 const struct job_end *end)
{
    char k[2] = {end->kind, '\0'};
    struct mapq_buf log = MAPQ_BUF_INIT;
    const struct mapq_buf *ckpt;
    const struct mapq_buf *record = end->record.len > 0 ? &end->record : NULL;
    char kind = end->kind;
    int phase = end->phase;

    if (!(kind == 'T' && phase == MAPQ_PHASE_SUCCEEDED &&
          job->r.cls[1] == 'p') &&
        kind != 'R')
        pack_attempt(&log, job, kind, phase, end->error);
    mapq_argv_add(&a->outbox, job->ref);
    mapq_argv_add(&a->outbox, k);
    mapq_argv_addint(&a->outbox, phase);
    mapq_argv_addlen(&a->outbox, job->field ? job->field : "",
                     job->field ? job->fieldlen : 0);
    mapq_argv_addlen(&a->outbox, record ? record->data : "",
                     record ? record->len : 0);
    mapq_argv_add(&a->outbox, end->target ? end->target : "");
    mapq_argv_addlen(&a->outbox, log.len ? log.data : "", log.len);
    /* A success drops the checkpoint: no need to send it. */
    ckpt = kind == 'T' &&
                   (phase == MAPQ_PHASE_SUCCEEDED || phase == MAPQ_PHASE_CACHED)
               ? NULL
               : job->ckpt_out;
    mapq_argv_addlen(&a->outbox, ckpt ? ckpt->data : "", ckpt ? ckpt->len : 0);
    mapq_buf_release(&log);
}

void
agent_outbox_putback(struct mapq_argv *outbox, struct mapq_argv *sending)
{
    struct mapq_argv rest;
    int j;

    mapq_argv_init(&rest);
    for (j = 0; j < outbox->argc; j++)
        mapq_argv_addlen(&rest, outbox->argv[j], outbox->lens[j]);
    mapq_argv_reset(outbox);
    /* A hand back (R) is never sent twice: if the first call was applied
     * after all, its ref may be another agent's lease by now. Unsent, the
     * lease expires and the subtask runs again. */
    for (j = 0; j + DONE_FIELDS <= sending->argc; j += DONE_FIELDS) {
        int f;

        if (sending->argv[j + 1][0] == 'R')
            continue;
        for (f = j; f < j + DONE_FIELDS; f++)
            mapq_argv_addlen(outbox, sending->argv[f], sending->lens[f]);
    }
    for (j = 0; j < rest.argc; j++)
        mapq_argv_addlen(outbox, rest.argv[j], rest.lens[j]);
    mapq_argv_release(&rest);
    mapq_argv_reset(sending);
}

int
agent_outbox_reply(struct mapq_agent *a, const msgpack_object *refused)
{
    uint32_t i;
    int n = 0;

    if (refused == NULL) {
        /* Sent again after a backoff (or on reconnect, when the connection
         * went down): finishing is fenced by ref, so a batch that was
         * applied after all is refused harmlessly the second time. Put the
         * batch back in front of what accumulated since. */
        agent_outbox_putback(&a->outbox, &a->sending);
        return 0;
    }
    for (i = 0;
         refused->type == MSGPACK_OBJECT_ARRAY && i < refused->via.array.size;
         i++) {
        const msgpack_object *r = &refused->via.array.ptr[i];

        if (r->type != MSGPACK_OBJECT_STR)
            continue;
        /* Fencing cannot tell the two apart: a lease taken back while
         * this agent was away, or the second sending of a batch whose
         * reply was lost with the connection (recorded the first time). */
        mapq_log(MAPQ_LOG_WARN,
                 "result of %.*s refused: not this attempt's lease (lost "
                 "to another attempt, or recorded already by a batch sent "
                 "again)",
                 (int)r->via.str.size, r->via.str.ptr);
        n++;
    }
    mapq_argv_reset(&a->sending);
    return n;
}

/* Whole entries, at most DONE_BATCH_MAX of them and about DONE_BATCH_BYTES
 * (at least one entry), so that a call stays well under Redis's query
 * limit. */
int
agent_outbox_batch_len(const struct mapq_argv *outbox)
{
    size_t bytes = 0;
    int n = 0, j;

    while (n < outbox->argc && n < DONE_BATCH_MAX * DONE_FIELDS) {
        size_t entry = 0;

        for (j = n; j < n + DONE_FIELDS && j < outbox->argc; j++)
            entry += outbox->lens[j];
        if (n > 0 && bytes + entry > DONE_BATCH_BYTES)
            break;
        bytes += entry;
        n += DONE_FIELDS;
    }
    return n < outbox->argc ? n : outbox->argc;
}

void
agent_outbox_take(struct mapq_argv *outbox, struct mapq_argv *sending, int n)
{
    int j;

    for (j = 0; j < n; j++)
        mapq_argv_addlen(sending, outbox->argv[j], outbox->lens[j]);
    /* Shift the rest of the outbox down. */
    for (j = 0; j < n; j++)
        free(outbox->owned[j]);
    memmove(outbox->owned, outbox->owned + n,
            (size_t)(outbox->argc - n) * sizeof(char *));
    memmove(outbox->argv, outbox->argv + n,
            (size_t)(outbox->argc - n) * sizeof(char *));
    memmove(outbox->lens, outbox->lens + n,
            (size_t)(outbox->argc - n) * sizeof(size_t));
    outbox->argc -= n;
}

/* How a group's attempt records go (its "logged" argument): none; one
 * per member, each to the member's own field; or in log pages, when every
 * member's is at most PAGE_ENTRY_MAX bytes (mapq_record.h). */
enum group_log { LOG_NONE, LOG_EACH, LOG_PAGED };

#define PAGE_ENTRY_MAX 256

/* A group of step's flag g: first-attempt successes of one node, with the
 * same kind of logging: entry numbers in at[], their element indices in
 * idx[], and their result fields in a hash table (open addressing, mask +
 * 1 slots, each an entry number + 1, 0 when empty), so that an outbox of
 * a thousand entries is grouped in linear time. */
struct group {
    struct mapq_ref r; /* the first member's ref */
    enum group_log log;
    int *at;
    uint64_t *idx;
    int n;
    int *fields;
    size_t mask;
};

/* The phase groups hold, as the entries spell it. */
_Static_assert(MAPQ_PHASE_SUCCEEDED == 3, "groups are of phase \"3\"");

static bool
arg_is(const struct mapq_argv *s, int j, const char *v)
{
    return s->lens[j] == strlen(v) && memcmp(s->argv[j], v, s->lens[j]) == 0;
}

/* Whether entry e of s may go in a group: a first attempt (u, s and i 0)
 * that succeeded (T, SUCCEEDED), with a result field, no cache target and
 * no checkpoint; *r is its ref. */
static bool
groupable(const struct mapq_argv *s, int e, struct mapq_ref *r)
{
    int j = e * DONE_FIELDS;

    return arg_is(s, j + 1, "T") && arg_is(s, j + 2, "3") &&
           s->lens[j + 3] > 0 && s->lens[j + 5] == 0 && s->lens[j + 7] == 0 &&
           mapq_ref_parse(s->argv[j], s->lens[j], r) == MAPQ_OK && r->u == 0 &&
           r->s == 0 && r->i == 0;
}

/* The slot of entry e's result field in g's table: the slot holding an
 * equal field, or the empty one where it would go (FNV-1a, then linear
 * probing; the table is never more than half full). */
static size_t
field_slot(const struct group *g, const struct mapq_argv *s, int e)
{
    const unsigned char *f =
        (const unsigned char *)s->argv[e * DONE_FIELDS + 3];
    size_t len = s->lens[e * DONE_FIELDS + 3], i, o;
    uint64_t h = 14695981039346656037ULL;

    for (i = 0; i < len; i++)
        h = (h ^ f[i]) * 1099511628211ULL;
    for (i = (size_t)h & g->mask; g->fields[i] != 0; i = (i + 1) & g->mask) {
        o = (size_t)(g->fields[i] - 1) * DONE_FIELDS + 3;
        if (s->lens[o] == len && memcmp(s->argv[o], f, len) == 0)
            break;
    }
    return i;
}

/* How entry e's attempt record may go in a group. */
static enum group_log
log_of(const struct mapq_argv *s, int e, bool pages)
{
    size_t len = s->lens[e * DONE_FIELDS + 6];

    if (len == 0)
        return LOG_NONE;
    return pages && len <= PAGE_ENTRY_MAX ? LOG_PAGED : LOG_EACH;
}

/* The group of g[0..*ng) entry e joins, a new one when none fits: same
 * execution, node and logging, and a result field no member has (results
 * are first-write-wins, which a group does not check within itself). */
static struct group *
group_for(struct group *g, int *ng, const struct mapq_argv *s, int e,
          const struct mapq_ref *r, bool pages)
{
    size_t ne = (size_t)(s->argc / DONE_FIELDS), size = 2;
    enum group_log log = log_of(s, e, pages);
    int n;

    for (n = 0; n < *ng; n++)
        if (g[n].r.k == r->k && g[n].log == log &&
            strcmp(g[n].r.exec, r->exec) == 0 &&
            g[n].fields[field_slot(&g[n], s, e)] == 0)
            return &g[n];
    while (size < 2 * ne)
        size *= 2;
    g[*ng].r = *r;
    g[*ng].log = log;
    g[*ng].at = mapq_xcalloc(ne, sizeof(int));
    g[*ng].idx = mapq_xcalloc(ne, sizeof(uint64_t));
    g[*ng].n = 0;
    g[*ng].fields = mapq_xcalloc(size, sizeof(int));
    g[*ng].mask = size - 1;
    return &g[(*ng)++];
}

/* Adds entry e (element index) to g. */
static void
group_add(struct group *g, const struct mapq_argv *s, int e, uint64_t index)
{
    g->fields[field_slot(g, s, e)] = e + 1;
    g->at[g->n] = e;
    g->idx[g->n++] = index;
}

/* Adds the body field of element index of node k: "<k>/<index>". */
static void
add_body_field(struct mapq_argv *cmd, uint32_t k, uint64_t index)
{
    char field[2 * MAPQ_ARGV_DIGITS + 1];
    size_t n = mapq_argv_digits(field, k);

    field[n++] = '/';
    n += mapq_argv_digits(field + n, index);
    mapq_argv_addlen(cmd, field, n);
}

/*
 * Appends the log pages of g's members: their number np, np page fields
 * and np pages, each the records of the members in that page one after
 * another (in the order of the group).
 */
static void
page_args(const struct mapq_argv *s, const struct group *g,
          struct mapq_argv *cmd)
{
    uint64_t *page = mapq_xcalloc((size_t)g->n, sizeof(*page));
    struct mapq_buf data = MAPQ_BUF_INIT;
    char field[MAPQ_LOG_FIELD_LEN];
    int np = 0, m, q;

    /* The distinct pages, in the order they first appear. */
    for (m = 0; m < g->n; m++) {
        for (q = 0; q < np && page[q] != g->idx[m] / MAPQ_LOG_PAGE; q++)
            ;
        if (q == np)
            page[np++] = g->idx[m] / MAPQ_LOG_PAGE;
    }
    mapq_argv_addint(cmd, np);
    for (q = 0; q < np; q++) {
        size_t n =
            mapq_record_page_field(field, g->r.k, page[q] * MAPQ_LOG_PAGE);

        mapq_argv_addlen(cmd, field, n);
    }
    for (q = 0; q < np; q++) {
        mapq_buf_reset(&data);
        for (m = 0; m < g->n; m++) {
            int j = g->at[m] * DONE_FIELDS + 6;

            if (g->idx[m] / MAPQ_LOG_PAGE == page[q])
                mapq_buf_append(&data, s->argv[j], s->lens[j]);
        }
        mapq_argv_addlen(cmd, data.data, data.len);
    }
    mapq_buf_release(&data);
    free(page);
}

/* Appends one group's arguments: exec k n logged events ref... field...
 * record... bodyfield... then, as logged is "1", log... or, as it is "p",
 * its pages (page_args()). */
static void
group_args(const struct mapq_argv *s, const struct group *g,
           struct mapq_argv *cmd)
{
    static const char *const logged[] = {"0", "1", "p"};
    static const int cols[] = {0, 3, 4};
    struct mapq_buf events = MAPQ_BUF_INIT;
    msgpack_packer pk;
    size_t c;
    int m;

    mapq_argv_add(cmd, g->r.exec);
    mapq_argv_addint(cmd, g->r.k);
    mapq_argv_addint(cmd, g->n);
    mapq_argv_add(cmd, logged[g->log]);
    mapq_value_packer_init(&pk, &events);
    msgpack_pack_array(&pk, (uint32_t)(3 * g->n));
    for (m = 0; m < g->n; m++) {
        msgpack_pack_uint32(&pk, g->r.k);
        msgpack_pack_uint64(&pk, g->idx[m]);
        msgpack_pack_int(&pk, MAPQ_PHASE_SUCCEEDED);
    }
    mapq_argv_addlen(cmd, events.data, events.len);
    mapq_buf_release(&events);
    for (c = 0; c < sizeof(cols) / sizeof(cols[0]); c++)
        for (m = 0; m < g->n; m++) {
            int j = g->at[m] * DONE_FIELDS + cols[c];

            mapq_argv_addlen(cmd, s->argv[j], s->lens[j]);
        }
    for (m = 0; m < g->n; m++)
        add_body_field(cmd, g->r.k, g->idx[m]);
    for (m = 0; g->log == LOG_EACH && m < g->n; m++) {
        int j = g->at[m] * DONE_FIELDS + 6;

        mapq_argv_addlen(cmd, s->argv[j], s->lens[j]);
    }
    if (g->log == LOG_PAGED)
        page_args(s, g, cmd);
}

void
agent_outbox_encode(const struct mapq_argv *s, bool pages,
                    struct mapq_argv *cmd)
{
    int ne = s->argc / DONE_FIELDS, ng = 0, e, n;
    struct group *g = mapq_xcalloc((size_t)ne + 1, sizeof(*g));
    bool *grouped = mapq_xcalloc((size_t)ne + 1, sizeof(bool));

    for (e = 0; e < ne; e++) {
        struct mapq_ref r;
        struct group *to;

        if (!groupable(s, e, &r))
            continue;
        to = group_for(g, &ng, s, e, &r, pages);
        group_add(to, s, e, r.index);
        grouped[e] = true;
    }
    mapq_argv_addint(cmd, ng);
    for (n = 0; n < ng; n++) {
        group_args(s, &g[n], cmd);
        free(g[n].at);
        free(g[n].idx);
        free(g[n].fields);
    }
    for (e = 0; e < ne; e++) {
        int j;

        if (grouped[e])
            continue;
        for (j = e * DONE_FIELDS; j < (e + 1) * DONE_FIELDS; j++)
            mapq_argv_addlen(cmd, s->argv[j], s->lens[j]);
    }
    free(grouped);
    free(g);
}

int
agent_outbox_args(struct mapq_agent *a, struct mapq_argv *cmd,
                  int64_t *delay_ms)
{
    int j;

    /* The batch in flight was settled before: sending holds only this one. */
    mapq_assert(a->sending.argc == 0);
    agent_outbox_take(&a->outbox, &a->sending,
                      agent_outbox_batch_len(&a->outbox));
    agent_outbox_encode(&a->sending,
                        mapq_redis_library(a->cmd) >= MAPQ_FUNCTIONS_LOG_PAGES,
                        cmd);
    /* A user retry's record is its delay in ms, when it has one. */
    *delay_ms = 0;
    for (j = 0; j + DONE_FIELDS <= a->sending.argc; j += DONE_FIELDS) {
        long long ms;

        if (a->sending.argv[j + 1][0] != 'U' || a->sending.lens[j + 4] == 0)
            continue;
        ms = strtoll(a->sending.argv[j + 4], NULL, 10);
        if (ms > 0 && (*delay_ms == 0 || ms < *delay_ms))
            *delay_ms = ms;
    }
    return a->sending.argc / DONE_FIELDS;
}
