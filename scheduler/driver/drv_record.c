/*
 * drv_record.c - the execution record P:x:<id>: creating it, the writes
 * a driver makes to it (node outputs, progress, the final write's
 * command), and the read of its held counts (h:<k>, kept by the function
 * library) that the progress splits RUNNING from QUEUED by.
 *
 * Owns nothing but the contents of the writes; each write goes through
 * drv_calls.c and is sent again until Redis takes it. Never changes an
 * execution's state: the final write's outcome is the controller's.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_hex.h"
#include "mapq_keys.h"
#include "mapq_seal.h"
#include "mapq_spool.h"
#include "mapq_taskspec.h"
#include "mapq_value.h"

/* Replaces spec by its sealed form for node k of execution id. */
static void
seal_spec(const struct mapq_seal *seal, const char *id, size_t k,
          struct mapq_buf *spec)
{
    struct mapq_buf sealed = MAPQ_BUF_INIT;
    char sid[MAPQ_EXEC_ID_LEN + 32];

    snprintf(sid, sizeof(sid), "%s/%zu", id, k);
    mapq_seal_wrap(seal, "spec", sid, spec->data, spec->len, &sealed);
    mapq_buf_release(spec);
    *spec = sealed;
}

/* The record of t's inputs that hold files (caller frees), or NULL when
 * none does. The workflow checker keeps them within a record's bounds. */
static struct mapq_type *
file_inputs(const struct mapq_task_def *t)
{
    struct mapq_member *m = mapq_xcalloc(t->ninputs + 1, sizeof(*m));
    struct mapq_type *rec;
    char err[MAPQ_ERR_LEN];
    size_t i, n = 0;

    for (i = 0; i < t->ninputs; i++) {
        if (!mapq_type_has_file(t->inputs[i].type))
            continue;
        m[n].name = mapq_xstrdup(t->inputs[i].name);
        m[n].type = mapq_type_dup(t->inputs[i].type);
        n++;
    }
    if (n == 0) {
        free(m);
        return NULL;
    }
    rec = mapq_type_record(m, n, false, err);
    mapq_assert(rec != NULL);
    return rec;
}

/* The task spec t:<k> of node k, as agents read it. */
static void
build_spec(const struct mapq_workflow *wf, size_t k,
           const struct mapq_exec_opts *o, struct mapq_buf *out)
{
    const struct mapq_node *n = &wf->nodes[k];
    const struct mapq_task_def *t = &wf->tasks[n->task];
    struct mapq_taskspec s;

    memset(&s, 0, sizeof(s));
    s.task = t->name;
    s.node = n->name;
    s.plugin = t->kind == MAPQ_TASK_PLUGIN;
    s.argv = t->argv;
    s.argc = t->argc;
    s.library = t->plugin_library;
    s.symbol = t->plugin_symbol;
    s.output = t->output;
    s.files = file_inputs(t);
    s.output_text = t->output_text;
    s.worker = t->worker;
    s.batch = (int)n->batch;
    s.retries = n->opts.retries;
    s.timeout_ms = n->opts.timeout_ms;
    s.system_retries = n->system_retries;
    s.interruptible_failures = n->interruptible_failures;
    s.interruptible = n->opts.interruptible;
    s.queue = n->opts.queue;
    s.mem_bytes = n->opts.mem_bytes;
    s.cpu_milli = (int64_t)ceil(n->opts.cpu * 1000);
    s.backoff_initial_ms = n->opts.backoff_initial_ms;
    s.backoff_max_ms = n->opts.backoff_max_ms;
    s.backoff_factor_milli = (int)lround(n->opts.backoff_factor * 1000);
    s.cache = n->opts.cache;
    s.cache_ttl_ms = n->opts.cache_ttl_ms;
    s.cache_serialize = n->opts.cache && n->opts.cache_serialize;
    s.overwrite = o->overwrite_cache;
    if (o->store != NULL)
        s.store = *o->store;
    mapq_taskspec_encode(&s, out);
    mapq_type_free(s.files);
}

/* 12 hex digits from getrandom(), or from the clock and pid without it. */
void
drv_new_id(char id[MAPQ_EXEC_ID_LEN + 1])
{
    unsigned char raw[MAPQ_EXEC_ID_LEN / 2];

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        uint64_t v = (uint64_t)drv_now_ms() ^ ((uint64_t)getpid() << 40);

        memcpy(raw, &v, sizeof(raw));
    }
    mapq_hex_encode(raw, sizeof(raw), id);
}

void
mapq_exec_new_id(char id[MAPQ_EXEC_ID_LEN + 1])
{
    drv_new_id(id);
}

/* Reads n replies, the first error (with what was sent) into err. */
static enum mapq_err
pages_replies(redisContext *c, const char *key, size_t n, char *err)
{
    redisReply *reply;
    enum mapq_err rc = MAPQ_OK;
    size_t i;

    for (i = 0; i < n; i++) {
        if (redisGetReply(c, (void **)&reply) != REDIS_OK)
            return mapq_err_set(err, MAPQ_EREDIS, "redis: %s", c->errstr);
        if (reply->type == REDIS_REPLY_ERROR && rc == MAPQ_OK)
            rc = mapq_err_set(err, MAPQ_EREDIS, "HSET %s: %s", key, reply->str);
        freeReplyObject(reply);
    }
    return rc;
}

/* Writes the pages of s into P:pg:<id>, PAGES_PIPELINED HSETs per round
 * trip. */
#define PAGES_PIPELINED 64
static enum mapq_err
create_pages(redisContext *c, const char *ns, const char *id,
             struct mapq_spool *s, char *err)
{
    char *key = mapq_key_pages(ns, id), field[160];
    struct mapq_buf page = MAPQ_BUF_INIT;
    size_t i, sent = 0, n = mapq_spool_count(s);
    enum mapq_err rc = MAPQ_OK;
    const char *argv[4], *list;
    size_t lens[4];
    uint64_t p;

    for (i = 0; i < n && rc == MAPQ_OK; i++) {
        rc = mapq_spool_read(s, i, &list, &p, &page, err);
        if (rc != MAPQ_OK)
            break;
        snprintf(field, sizeof(field), "%s/%llu", list, (unsigned long long)p);
        argv[0] = "HSET";
        argv[1] = key;
        argv[2] = field;
        argv[3] = page.data;
        lens[0] = 4;
        lens[1] = strlen(key);
        lens[2] = strlen(field);
        lens[3] = page.len;
        redisAppendCommandArgv(c, 4, argv, lens);
        if (++sent == PAGES_PIPELINED) {
            rc = pages_replies(c, key, sent, err);
            sent = 0;
        }
    }
    if (sent > 0) {
        enum mapq_err rc2 = pages_replies(c, key, sent, err);

        if (rc == MAPQ_OK)
            rc = rc2;
    }
    mapq_buf_release(&page);
    free(key);
    return rc;
}

/* Reads the replies of the three writes of mapq_exec_create(), up to the
 * first error. */
static enum mapq_err
create_replies(redisContext *c, const char *ns, char *const keys[3], char *err)
{
    redisReply *reply;
    enum mapq_err rc = MAPQ_OK;
    size_t k;

    for (k = 0; k < 3 && rc == MAPQ_OK; k++) {
        char what[200], *all;

        if (redisGetReply(c, (void **)&reply) != REDIS_OK) {
            rc = mapq_err_set(err, MAPQ_EREDIS, "redis: %s", c->errstr);
            break;
        }
        /* Name the command and key: with an ACL user, that is what the
         * operator must grant. */
        snprintf(what, sizeof(what), "%s %s", k == 0 ? "HSET" : "ZADD",
                 keys[k]);
        if (reply->type == REDIS_REPLY_ERROR &&
            strncmp(reply->str, "NOPERM", 6) == 0) {
            all = mapq_key_all(ns);
            rc = mapq_err_set(err, MAPQ_EREDIS,
                              "%s: %s (the Redis user needs the commands mapq "
                              "uses on keys '%s')",
                              what, reply->str, all);
            free(all);
        } else if (reply->type == REDIS_REPLY_ERROR) {
            rc = mapq_err_set(err, MAPQ_EREDIS, "%s: %s", what, reply->str);
        }
        freeReplyObject(reply);
    }
    return rc;
}

enum mapq_err
mapq_exec_create(redisContext *c, const char *ns,
                 const struct mapq_workflow *wf, const char *text,
                 size_t textlen, const struct mapq_buf *inputs,
                 const struct mapq_exec_opts *o, char id[MAPQ_EXEC_ID_LEN + 1],
                 char *err)
{
    static const struct mapq_exec_opts defaults = {0};
    struct mapq_argv cmd;
    struct mapq_buf *specs = mapq_xcalloc(wf->nnodes + 1, sizeof(*specs));
    enum mapq_err rc;
    int64_t now;
    char *keys[3];
    size_t k;

    if (o == NULL)
        o = &defaults;
    now = o->created_ms > 0 ? o->created_ms : drv_now_ms();
    if (id[0] == '\0')
        drv_new_id(id);
    if (mapq_spool_count(o->pages) > 0) {
        rc = create_pages(c, ns, id, o->pages, err);
        if (rc != MAPQ_OK) {
            char *pk = mapq_key_pages(ns, id);
            redisReply *r = redisCommand(c, "DEL %s", pk);

            if (r != NULL)
                freeReplyObject(r);
            free(pk);
            free(specs);
            return rc;
        }
    }
    keys[0] = mapq_key_exec(ns, id);
    keys[1] = mapq_key_execs(ns);
    keys[2] = mapq_key_owners(ns);
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HSET");
    mapq_argv_add(&cmd, keys[0]);
    mapq_argv_add(&cmd, "state");
    mapq_argv_add(&cmd, "submitted");
    mapq_argv_add(&cmd, "name");
    mapq_argv_add(&cmd, wf->name);
    mapq_argv_add(&cmd, "file");
    mapq_argv_add(&cmd, wf->file);
    mapq_argv_add(&cmd, "workflow");
    mapq_argv_addlen(&cmd, text, textlen);
    mapq_argv_add(&cmd, "inputs");
    mapq_argv_addlen(&cmd, inputs->data, inputs->len);
    mapq_argv_add(&cmd, "created");
    mapq_argv_addf(&cmd, "%lld", (long long)now);
    mapq_argv_add(&cmd, "nodes");
    mapq_argv_addf(&cmd, "%zu", wf->nnodes);
    for (k = 0; k < wf->nnodes; k++) {
        build_spec(wf, k, o, &specs[k]);
        if (o->seal != NULL)
            seal_spec(o->seal, id, k, &specs[k]);
        mapq_argv_addf(&cmd, "t:%zu", k);
        mapq_argv_addlen(&cmd, specs[k].data, specs[k].len);
        mapq_argv_addf(&cmd, "node:%zu", k);
        mapq_argv_add(&cmd, wf->nodes[k].name);
    }
    if (o->overwrite_cache) {
        mapq_argv_add(&cmd, "overwrite");
        mapq_argv_add(&cmd, "1");
    }
    if (o->store != NULL && o->store->kind != MAPQ_STORE_REDIS) {
        char store[MAPQ_STORE_URI_MAX + 1];

        mapq_store_format(o->store, store, sizeof(store));
        mapq_argv_add(&cmd, "store");
        mapq_argv_add(&cmd, store);
    }
    if (o->priority > 0) {
        mapq_argv_add(&cmd, "priority");
        mapq_argv_addf(&cmd, "%d", o->priority);
    }
    if (o->recover_from != NULL) {
        mapq_argv_add(&cmd, "recover_from");
        mapq_argv_add(&cmd, o->recover_from);
    }
    if (o->blobs != NULL && o->blobs->len > 0) {
        mapq_argv_add(&cmd, "blobs");
        mapq_argv_addlen(&cmd, o->blobs->data, o->blobs->len);
    }
    redisAppendCommandArgv(c, cmd.argc, cmd.argv, cmd.lens);
    redisAppendCommand(c, "ZADD %s %lld %s", keys[1], (long long)now, id);
    redisAppendCommand(
        c, "ZADD %s %lld %s", keys[2],
        (long long)(now +
                    (o->lease_ms > 0 ? o->lease_ms : MAPQ_OWNER_LEASE_MS)),
        id);
    rc = create_replies(c, ns, keys, err);
    for (k = 0; k < wf->nnodes; k++)
        mapq_buf_release(&specs[k]);
    free(specs);
    for (k = 0; k < 3; k++)
        free(keys[k]);
    mapq_argv_release(&cmd);
    return rc;
}

/* A record write is done: landed, or given up. */
static void
record_done_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;

    (void)reply;
    (void)why;
    x->calls--;
}

/* Writes field of x's record through mapq1_record, which writes only
 * while this driver owns x; sent again until Redis takes it. node: the
 * progress record's node (p:<node>), or -1. */
static void
record_field(struct exec *x, const char *field, const char *value, size_t len,
             long node)
{
    struct mapq_argv cmd;
    struct call *c;

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_record");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, x->d->ns);
    mapq_argv_add(&cmd, x->id);
    mapq_argv_add(&cmd, x->d->owner);
    mapq_argv_add(&cmd, field);
    mapq_argv_addlen(&cmd, value, len);
    c = drv_exec_send(x, PATH_RECORD, &cmd, record_done_cb, x);
    if (node >= 0) {
        c->node = node;
        c->seq = ++x->nodes[node].p_seq;
    }
}

void
drv_record_hset(struct exec *x, const char *field, const char *value,
                size_t len)
{
    record_field(x, field, value, len, -1);
}

void
drv_record_page(struct exec *x, const char *field, const char *value,
                size_t len)
{
    struct mapq_argv cmd;

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HSET");
    mapq_key_add(&cmd, mapq_key_pages(x->d->ns, x->id));
    mapq_argv_add(&cmd, field);
    mapq_argv_addlen(&cmd, value, len);
    drv_exec_send(x, PATH_RECORD, &cmd, record_done_cb, x);
}

void
drv_node_counts(const struct node_run *nr, uint64_t *counts)
{
    memcpy(counts, nr->counts, sizeof(nr->counts));
    mapq_phase_split(counts, nr->n, nr->held);
}

void
drv_record_node_progress(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];
    struct mapq_buf b = MAPQ_BUF_INIT;
    uint64_t counts[MAPQ_PHASE_COUNT];
    msgpack_packer pk;
    char field[32];
    int p;

    drv_node_counts(nr, counts);
    mapq_value_packer_init(&pk, &b);
    msgpack_pack_array(&pk, 2 + MAPQ_PHASE_COUNT);
    mapq_value_pack_str(&pk, drv_node_state_name(nr->state));
    msgpack_pack_uint64(&pk, nr->n);
    for (p = 0; p < MAPQ_PHASE_COUNT; p++)
        msgpack_pack_uint64(&pk, counts[p]);
    snprintf(field, sizeof(field), "p:%zu", k);
    record_field(x, field, b.data, b.len, (long)k);
    mapq_buf_release(&b);
}

/* The held counts read: each node's h:<k>, 0 when absent. A reply of
 * another shape (an error, a record gone) changes nothing. */
static void
held_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;
    size_t k;

    (void)why;
    x->calls--;
    x->counting = false;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != x->wf->nnodes)
        return;
    for (k = 0; k < x->wf->nnodes; k++) {
        const redisReply *e = reply->element[k];

        x->nodes[k].held =
            e->type == REDIS_REPLY_STRING ? strtoll(e->str, NULL, 10) : 0;
    }
}

void
drv_record_read_held(struct exec *x)
{
    struct mapq_argv cmd;
    size_t k;

    if (x->counting || x->wf->nnodes == 0)
        return;
    x->counting = true;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HMGET");
    mapq_key_add(&cmd, mapq_key_exec(x->d->ns, x->id));
    for (k = 0; k < x->wf->nnodes; k++)
        mapq_argv_addf(&cmd, "h:%zu", k);
    drv_exec_send(x, PATH_HELD, &cmd, held_cb, x)->gen_check = true;
}

/* A node restored by a reconcile keeps what its first driver wrote. */
void
drv_record_progress(struct exec *x)
{
    size_t k;

    for (k = 0; k < x->wf->nnodes; k++)
        if (!x->nodes[k].restored)
            drv_record_node_progress(x, k);
}

/*
 * The final write, one atomic mapq1_finish: state, finished time, output or
 * error, and the queued subtasks and events dropped. An output that is one
 * node's is copied by Redis from that node's o:<k>. It does not overwrite
 * an execution already ended (cancelled), nor one another driver owns.
 */
void
drv_record_finish_cmd(const struct exec *x, struct mapq_argv *cmd)
{
    mapq_argv_add(cmd, "FCALL");
    mapq_argv_add(cmd, "mapq1_finish");
    mapq_argv_add(cmd, "0");
    mapq_argv_add(cmd, x->d->ns);
    mapq_argv_add(cmd, x->id);
    mapq_argv_add(cmd, x->d->owner);
    mapq_argv_add(cmd, x->ok ? "succeeded" : "failed");
    if (x->ok && x->output_of >= 0) {
        mapq_argv_add(cmd, "output_of");
        mapq_argv_addf(cmd, "o:%ld", x->output_of);
    } else if (x->ok) {
        mapq_argv_add(cmd, "output");
        mapq_argv_addlen(cmd, x->output.data, x->output.len);
    } else {
        mapq_argv_add(cmd, "error");
        mapq_argv_add(cmd, x->error);
    }
    mapq_argv_addf(cmd, "%lld",
                   (long long)(x->wf->retention_ms > 0 ? x->wf->retention_ms
                                                       : x->d->retention_ms));
}
