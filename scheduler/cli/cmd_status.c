/*
 * cmd_status.c - mapq status EXEC and mapq watch EXEC: the state of an
 * execution and of its nodes, read from its record once (status) or again
 * each second until it ends (watch); as text, or with --json as the
 * execution's summary (cli_json.c; watch: one line per refresh). Nothing
 * is written to Redis.
 *
 * Owns struct view, what one read of the record gave; it lives for one
 * refresh.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_proto.h"
#include "mapq_value.h"

/* More nodes than a record can name: a record that says so is bad. */
#define NODES_MAX 100000

/* The fields of the record read first, in this order. */
enum head_field { H_STATE, H_NAME, H_CREATED, H_FINISHED, H_NODES, H_ERROR };
#define HEAD_FIELDS "state name created finished nodes error"
#define HEAD_COUNT  6

/* One read of an execution's record. Strings point into the replies. */
struct view {
    redisReply *head;  /* HMGET of HEAD_FIELDS */
    redisReply *per;   /* HMGET node:<k> p:<k> h:<k> for every node */
    redisReply *out;   /* HGET output, when asked for and succeeded */
    const char *state; /* in head */
    struct mapq_node_progress *nodes;
    bool *known; /* node k has a progress record (p:<k>) */
    size_t nnodes;
};

static void
view_release(struct view *v)
{
    if (v->head != NULL)
        freeReplyObject(v->head);
    if (v->per != NULL)
        freeReplyObject(v->per);
    if (v->out != NULL)
        freeReplyObject(v->out);
    free(v->nodes);
    free(v->known);
    memset(v, 0, sizeof(*v));
}

/* The static name of a node state read from a progress record. */
static const char *
node_state(const msgpack_object *o)
{
    static const char *const names[] = {"waiting", "running", "succeeded",
                                        "failed", "skipped"};
    size_t i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (o->type == MSGPACK_OBJECT_STR &&
            o->via.str.size == strlen(names[i]) &&
            memcmp(o->via.str.ptr, names[i], o->via.str.size) == 0)
            return names[i];
    return "unknown";
}

/* Fills node p from its progress record (data, len): [state, total,
 * count per phase...]; false when there is none, or it is not one. */
static bool
node_progress(const char *data, size_t len, struct mapq_node_progress *p)
{
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN];
    bool ok = false;
    int ph;

    msgpack_unpacked_init(&u);
    if (data != NULL && mapq_value_unpack(data, len, &u, err) == MAPQ_OK &&
        u.data.type == MSGPACK_OBJECT_ARRAY &&
        u.data.via.array.size == 2 + MAPQ_PHASE_COUNT) {
        const msgpack_object *a = u.data.via.array.ptr;

        p->state = node_state(&a[0]);
        p->total =
            a[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER ? a[1].via.u64 : 0;
        for (ph = 0; ph < MAPQ_PHASE_COUNT; ph++)
            p->counts[ph] = a[2 + ph].type == MSGPACK_OBJECT_POSITIVE_INTEGER
                                ? a[2 + ph].via.u64
                                : 0;
        ok = true;
    }
    msgpack_unpacked_destroy(&u);
    return ok;
}

static const char *
head_str(const struct view *v, enum head_field f)
{
    const redisReply *e = v->head->element[f];

    return e->type == REDIS_REPLY_STRING ? e->str : NULL;
}

/* A reply that is not what was asked: says why, returns the exit status. */
static int
read_failed(redisContext *c, const struct mapq_redis_url *url,
            const redisReply *r)
{
    char shown[300];

    mapq_redis_url_format(url, shown, sizeof(shown));
    fprintf(stderr, "mapq: cannot use redis '%s': %s\n", shown,
            r == NULL                      ? c->errstr
            : r->type == REDIS_REPLY_ERROR ? r->str
                                           : "unexpected reply");
    return MAPQ_EXIT_INFRA;
}

/*
 * Reads node:<k>, p:<k> and h:<k> of every node into v: its progress as
 * its driver last wrote it, with RUNNING and QUEUED split again by its
 * held count as Redis keeps it now (mapq_phase_split()).
 */
static int
read_nodes(redisContext *c, const struct mapq_redis_url *url,
           const struct mapq_cli_opts *o, struct view *v)
{
    struct mapq_argv cmd;
    size_t k;

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HMGET");
    mapq_key_add(&cmd, mapq_key_exec(o->ns, o->target));
    for (k = 0; k < v->nnodes; k++) {
        mapq_argv_addf(&cmd, "node:%zu", k);
        mapq_argv_addf(&cmd, "p:%zu", k);
        mapq_argv_addf(&cmd, "h:%zu", k);
    }
    v->per = redisCommandArgv(c, cmd.argc, cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
    if (v->per == NULL || v->per->type != REDIS_REPLY_ARRAY ||
        v->per->elements != 3 * v->nnodes)
        return read_failed(c, url, v->per);
    v->nodes = mapq_xcalloc(v->nnodes + 1, sizeof(*v->nodes));
    v->known = mapq_xcalloc(v->nnodes + 1, sizeof(*v->known));
    for (k = 0; k < v->nnodes; k++) {
        const redisReply *name = v->per->element[3 * k];
        const redisReply *p = v->per->element[3 * k + 1];
        const redisReply *h = v->per->element[3 * k + 2];

        v->nodes[k].name = name->type == REDIS_REPLY_STRING ? name->str : "?";
        v->nodes[k].state = "waiting";
        v->known[k] =
            node_progress(p->type == REDIS_REPLY_STRING ? p->str : NULL, p->len,
                          &v->nodes[k]);
        if (v->known[k])
            mapq_phase_split(
                v->nodes[k].counts, v->nodes[k].total,
                h->type == REDIS_REPLY_STRING ? strtoll(h->str, NULL, 10) : 0);
    }
    return MAPQ_EXIT_OK;
}

/*
 * Reads execution o->target into v (released by the caller, whatever this
 * returns), and its output too when with_output and it succeeded. Returns
 * MAPQ_EXIT_OK, or after saying why MAPQ_EXIT_FAILED (no such execution)
 * or MAPQ_EXIT_INFRA.
 */
static int
read_view(redisContext *c, const struct mapq_redis_url *url,
          const struct mapq_cli_opts *o, bool with_output, struct view *v)
{
    char *key = mapq_key_exec(o->ns, o->target);
    const char *nodes;
    long n;
    int rc;

    memset(v, 0, sizeof(*v));
    v->head = redisCommand(c, "HMGET %s " HEAD_FIELDS, key);
    if (v->head == NULL || v->head->type != REDIS_REPLY_ARRAY ||
        v->head->elements != HEAD_COUNT) {
        rc = read_failed(c, url, v->head);
        goto out;
    }
    v->state = head_str(v, H_STATE);
    if (v->state == NULL) {
        fprintf(stderr, "mapq: no execution '%s'\n", o->target);
        rc = MAPQ_EXIT_FAILED;
        goto out;
    }
    nodes = head_str(v, H_NODES);
    n = nodes != NULL ? strtol(nodes, NULL, 10) : 0;
    v->nnodes = n > 0 && n <= NODES_MAX ? (size_t)n : 0;
    rc = read_nodes(c, url, o, v);
    if (rc != MAPQ_EXIT_OK || !with_output ||
        strcmp(v->state, "succeeded") != 0)
        goto out;
    v->out = redisCommand(c, "HGET %s output", key);
    if (v->out == NULL || v->out->type == REDIS_REPLY_ERROR)
        rc = read_failed(c, url, v->out);
out:
    free(key);
    return rc;
}

/* The state and nodes as text, counts by phase; to out. */
static void
print_text(const struct view *v, const struct mapq_cli_opts *o, FILE *out)
{
    size_t k;
    int ph;

    fprintf(out, "execution %s: %s\n", o->target, v->state);
    for (k = 0; k < v->nnodes; k++) {
        const struct mapq_node_progress *p = &v->nodes[k];

        if (!v->known[k]) {
            fprintf(out, "  %-20s waiting\n", p->name);
            continue;
        }
        fprintf(out, "  %-20s %-10s total %llu", p->name, p->state,
                (unsigned long long)p->total);
        for (ph = 0; ph < MAPQ_PHASE_COUNT; ph++)
            if (p->counts[ph] > 0)
                fprintf(out, "  %s %llu", mapq_phase_name(ph),
                        (unsigned long long)p->counts[ph]);
        fputc('\n', out);
    }
}

static int64_t
now_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int64_t
head_ms(const struct view *v, enum head_field f)
{
    const char *s = head_str(v, f);

    return s != NULL ? strtoll(s, NULL, 10) : -1;
}

/* The summary of v (borrowing from it). */
static void
summary_of(const struct view *v, const struct mapq_cli_opts *o,
           struct mapq_cli_summary *s)
{
    memset(s, 0, sizeof(*s));
    s->execution = o->target;
    s->workflow = head_str(v, H_NAME);
    s->status = v->state;
    s->created_ms = head_ms(v, H_CREATED);
    s->finished_ms = head_ms(v, H_FINISHED);
    s->duration_ms = -1;
    if (s->created_ms >= 0) {
        int64_t end = s->finished_ms >= 0 ? s->finished_ms : now_ms();

        s->duration_ms = end > s->created_ms ? end - s->created_ms : 0;
    }
    s->nodes = v->nodes;
    s->nnodes = v->nnodes;
    if (v->out != NULL && v->out->type == REDIS_REPLY_STRING) {
        s->output = v->out->str;
        s->output_len = v->out->len;
    }
    if (strcmp(v->state, "failed") == 0 || strcmp(v->state, "cancelled") == 0)
        s->error = head_str(v, H_ERROR) ? head_str(v, H_ERROR) : v->state;
}

/* Prints v's summary on one line of stdout; nothing when its output
 * cannot be written (said on stderr). Returns the exit status. */
static int
print_json(redisContext *c, const struct view *v, const struct mapq_cli_opts *o)
{
    struct mapq_cli_summary s;
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    summary_of(v, o, &s);
    rc = mapq_cli_write_summary(c, o->ns, &s, NULL, err);
    if (rc == MAPQ_OK)
        rc = mapq_cli_write_summary(c, o->ns, &s, stdout, err);
    if (rc == MAPQ_OK)
        return MAPQ_EXIT_OK;
    fprintf(stderr, "mapq %s: the output cannot be written as JSON: %s\n",
            o->cmd, err);
    return rc == MAPQ_EREDIS || rc == MAPQ_EIO ? MAPQ_EXIT_INFRA
                                               : MAPQ_EXIT_FAILED;
}

static int
cmd_status(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);
    struct view v;
    int rc;

    if (c == NULL)
        return MAPQ_EXIT_INFRA;
    rc = read_view(c, &url, o, o->json, &v);
    if (rc == MAPQ_EXIT_OK && o->json)
        rc = print_json(c, &v, o);
    else if (rc == MAPQ_EXIT_OK)
        print_text(&v, o, stdout);
    view_release(&v);
    redisFree(c);
    return rc;
}

static bool
state_ended(const char *state)
{
    return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
           strcmp(state, "cancelled") == 0;
}

/* watch, text: prints v when it differs from *shown (redrawn in place on
 * a terminal, *lines tall), which becomes its text. */
static void
watch_text(const struct view *v, const struct mapq_cli_opts *o, char **shown,
           size_t *lines)
{
    char *text = NULL;
    size_t len = 0, i;
    FILE *mem = open_memstream(&text, &len);

    print_text(v, o, mem);
    fclose(mem);
    if (*shown != NULL && strcmp(*shown, text) == 0) {
        free(text);
        return;
    }
    if (isatty(1) && *lines > 0)
        printf("\033[%zuA\033[J", *lines);
    fputs(text, stdout);
    fflush(stdout);
    for (*lines = 0, i = 0; text[i] != '\0'; i++)
        *lines += text[i] == '\n';
    free(*shown);
    *shown = text;
}

/*
 * mapq watch: the status, printed again whenever it changes (redrawn in
 * place on a terminal), until the execution ends; with --json the summary,
 * one line per refresh (JSON Lines). Exits like mapq run: 0 when it
 * succeeded, 1 otherwise.
 */
static int
cmd_watch(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);
    struct timespec second = {1, 0};
    char *shown = NULL;
    size_t lines = 0;
    struct view v;
    bool ended = false;
    int rc;

    if (c == NULL)
        return MAPQ_EXIT_INFRA;
    for (;;) {
        rc = read_view(c, &url, o, o->json, &v);
        if (rc == MAPQ_EXIT_OK && o->json)
            rc = print_json(c, &v, o);
        else if (rc == MAPQ_EXIT_OK)
            watch_text(&v, o, &shown, &lines);
        if (rc == MAPQ_EXIT_OK && state_ended(v.state)) {
            ended = true;
            rc = strcmp(v.state, "succeeded") == 0 ? MAPQ_EXIT_OK
                                                   : MAPQ_EXIT_FAILED;
        }
        view_release(&v);
        if (rc != MAPQ_EXIT_OK || ended)
            break;
        nanosleep(&second, NULL);
    }
    free(shown);
    redisFree(c);
    return rc;
}

const struct mapq_cmd_entry mapq_cmd_status_entry = {
    .name = "status",
    .usage = "status EXEC [--json]",
    .operands = MAPQ_CMD_EXEC,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_status,
};

const struct mapq_cmd_entry mapq_cmd_watch_entry = {
    .name = "watch",
    .usage = "watch EXEC [--json]",
    .operands = MAPQ_CMD_EXEC,
    .flags = MAPQ_CMD_USAGE_SAME_LINE | MAPQ_CMD_JSON,
    .fn = cmd_watch,
};
