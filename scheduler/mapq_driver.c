/*
 * mapq_driver.c - executions: records in Redis, nodes, windows, events,
 * outputs.
 *
 * Data flow for one map node: node_start() resolves its input lists and
 * checks them; push_more() builds subtask bodies for the next indices
 * (inputs in canonical msgpack, the subtask key hashed from them) and sends
 * them with mapq1_push, at most `concurrency` in flight; events come back
 * through BLPOP/LPOP on P:ev:<exec>; when every subtask is finished,
 * assemble() reads the result records with HMGET in index order and builds
 * the output list. The driver never blocks: both Redis connections are
 * async, and work is sliced into batches of BATCH subtasks.
 *
 * Ownership and reconcile: an execution is driven only after mapq1_own
 * said it is ours, and its lease is renewed every second. After adoption
 * or a reconnect the driver rebuilds its view from Redis: node outputs from
 * o:<k>, and for a node that may have been started, mapq1_scan tells for
 * each subtask whether it has a result, is in flight, or was never pushed;
 * only the last are pushed. A reply lost with the connection changes
 * nothing here: the reconcile after reconnecting covers it.
 */
#include "mapq_driver.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/random.h>
#include <sys/time.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_log.h"
#include "mapq_record.h"
#include "mapq_retry.h"
#include "mapq_taskspec.h"
#include "mapq_value.h"

#define BATCH            1000
#define UNLIMITED_WINDOW 65536 /* queued+running cap when concurrency unset */
#define CALL_TIMEOUT_MS  10000
#define WAIT_BLOCK_S     1
#define ERROR_GROUPS_MAX 8
#define ADOPT_EVERY_MS   1000
#define ADOPT_MAX        16
/* Driver-side phase of a subtask not pushed yet (4 bits; above all phases
 * a subtask can have in Redis). */
#define PH_PENDING 15
/* Driver-side phase of a subtask that follows an identical one (cached
 * nodes): pushed, but holding no slot of the window. */
#define PH_FOLLOWING 14

/*
 * Each kind of call the driver makes is a path with its own backoff and its
 * own "cause" (mapq_retry), so that a refusal is logged once per path and
 * cause, and once more when it clears.
 */
enum path {
    PATH_PUSH,   /* mapq1_push* */
    PATH_EVENTS, /* BLMPOP, LPOP of events */
    PATH_OWN,    /* mapq1_own taking an execution */
    PATH_RENEW,  /* mapq1_own renewing leases */
    PATH_ADOPT,  /* mapq1_adopt */
    PATH_RECORD, /* HSET of an execution's record */
    PATH_SCAN,   /* mapq1_scan (reconcile) */
    PATH_READ,   /* HMGET of results and records */
    PATH_FINISH, /* mapq1_finish */
    PATH_STATE,  /* HGET of an execution's state: cancelled, gone? */
    PATH_REAP,   /* mapq1_reap */
    PATH_CANCEL, /* mapq1_cancel (Ctrl-C) */
    PATH_LOAD,   /* HMGET of a submitted or adopted execution */
    PATH_COUNT,
};

enum node_state {
    NODE_WAITING,
    NODE_RUNNING,
    NODE_ASSEMBLING,
    NODE_SUCCEEDED,
    NODE_FAILED,
    NODE_SKIPPED,
};

static const char *const node_state_names[] = {
    "waiting", "running", "running", "succeeded", "failed", "skipped"};

/* Failed subtasks sharing one message, as index ranges ("0-3,7"). Indices
 * arrive in ascending order during assembly. */
struct err_group {
    char *msg;
    struct mapq_buf ranges; /* closed ranges so far */
    uint64_t start, last;   /* the open range */
};

struct param_src {
    const char *name;
    const struct mapq_type *type;
    const msgpack_object *list; /* over: the list */
    struct mapq_buf bound;      /* with: canonical bytes of the value */
};

struct node_run {
    enum node_state state;
    uint64_t n, next, inflight, finished, need;
    uint64_t counts[MAPQ_PHASE_COUNT];
    uint8_t *phases;          /* 4 bits per subtask */
    struct param_src *params; /* sorted by name */
    size_t nparams;
    msgpack_unpacked *literals; /* one per binding, for literal sources */
    char *iface;                /* "a:int,b:str->bool" */
    const char *queue;
    const char *cls;
    struct mapq_buf output; /* msgpack, once succeeded */
    msgpack_unpacked output_u;
    uint64_t asm_next; /* assembly cursor */
    uint64_t asm_ok;   /* successes found by the assembly, record by record */
    struct mapq_buf asm_buf;
    struct err_group groups[ERROR_GROUPS_MAX];
    size_t ngroups;
    uint64_t ungrouped; /* failures whose message found no group */
    bool touched;       /* got events since the window was last refilled */
    bool scanning;      /* reconcile: reading where its subtasks stand */
    bool restored;      /* reconcile: succeeded before, output read back */
    uint64_t scan_next; /* reconcile: next index to scan */
    unsigned p_seq;     /* progress writes sent: the last one counts */
};

struct exec {
    struct mapq_driver *d;
    char id[MAPQ_EXEC_ID_LEN + 1];
    char *evkey;
    struct mapq_workflow *wf;
    struct mapq_buf inputs;
    msgpack_unpacked inputs_u;
    struct node_run *nodes;
    bool ended;
    char error[2048];
    struct mapq_buf output;
    mapq_exec_done_fn *done;
    void *arg;
    int calls; /* requests in flight that point at this exec */
    bool draining;
    bool owning;         /* the mapq1_own that starts it is in flight */
    bool driving;        /* owned: nodes run */
    bool reconcile;      /* rebuild the view from Redis before driving */
    bool scan_starts;    /* nodes start by scanning: they may have run before */
    unsigned gen;        /* bumped by each reconcile; stale replies ignored */
    bool cancelled;      /* by mapq cancel: the record says so already */
    bool redis_error;    /* ended: Redis refuses what it needs, or lost it */
    bool checking;       /* a state check is in flight (or waits to retry) */
    bool ok;             /* how it ended, for a final write sent again */
    bool finish_pending; /* the final write waits for the connection */
    bool overwrite;      /* --overwrite-cache: cached nodes skip lookups */
    char recover_from[MAPQ_EXEC_ID_LEN + 1]; /* mapq recover: "" if not */
    TAILQ_ENTRY(exec) entry;
};

TAILQ_HEAD(exec_list, exec);
TAILQ_HEAD(call_list, call);

struct mapq_driver {
    struct event_base *base;
    char *ns;
    /* Calls refused by Redis (OOM, BUSY, ...), per path (enum path):
     * each cause is logged once, and again when it clears. */
    struct mapq_retry retry[PATH_COUNT];
    struct call_list parked; /* calls waiting to be sent again */
    size_t nrefused;         /* of them, refused by Redis (not unsent) */
    bool stopping;           /* mapq_driver_free() runs */
    int64_t reap_next;       /* no reap before (after a refusal) */
    struct event *wait_ev;   /* the event wait's backoff after a refusal */
    struct mapq_redis *cmd;
    struct mapq_redis *blk;
    struct exec_list execs;
    bool waiting;
    bool serving;
    struct event *tick_ev;
    /*
     * The blocking wait covers the lists named in wait_keys ("\n"-joined,
     * with a leading and trailing "\n"). When a list it lacks becomes
     * wanted (a new execution, the end of a drain), one entry pushed onto
     * wake_key, this driver's own list, ends the wait early.
     */
    char *wake_key;
    struct mapq_buf wait_keys;
    bool wake_sent;
    char *owner; /* this driver's name in P:owners */
    int lease_ms;
    int64_t owned_ms, adopted_ms; /* last lease renewal, last adoption */
    bool was_up;                  /* the command connection was up before */
    bool blk_was_up;              /* and the waiting one */
    bool adopt_inflight;
};

static void advance(struct exec *x);
static void push_more(struct exec *x, size_t k);
static void scan_next(struct exec *x, size_t k);
static void assemble_next(struct exec *x, size_t k);
static void wait_events(struct mapq_driver *d);
static void exec_fail(struct exec *x, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int64_t
now_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int
phase_get(const struct node_run *nr, uint64_t i)
{
    return (nr->phases[i / 2] >> ((i % 2) * 4)) & 15;
}

static void
phase_set(struct node_run *nr, uint64_t i, int phase)
{
    int shift = (int)(i % 2) * 4;

    nr->phases[i / 2] =
        (uint8_t)((nr->phases[i / 2] & ~(15 << shift)) | (phase << shift));
}

static bool
phase_done(int phase)
{
    return mapq_record_phase_final(phase);
}

/* ---- execution records ------------------------------------------------- */

static void
build_spec(const struct mapq_workflow *wf, size_t k, bool overwrite,
           struct mapq_buf *out)
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
    s.output_text = t->output_text;
    s.retries = n->opts.retries;
    s.timeout_ms = n->opts.timeout_ms;
    s.system_retries = n->system_retries;
    s.interruptible_failures = n->interruptible_failures;
    s.interruptible = n->opts.interruptible;
    s.queue = n->opts.queue;
    s.mem_bytes = n->opts.mem_bytes;
    s.backoff_initial_ms = n->opts.backoff_initial_ms;
    s.backoff_max_ms = n->opts.backoff_max_ms;
    s.backoff_factor_milli = (int)lround(n->opts.backoff_factor * 1000);
    s.cache = n->opts.cache;
    s.cache_ttl_ms = n->opts.cache_ttl_ms;
    s.cache_serialize = n->opts.cache && n->opts.cache_serialize;
    s.overwrite = overwrite;
    mapq_taskspec_encode(&s, out);
}

static void
new_exec_id(char id[MAPQ_EXEC_ID_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char raw[MAPQ_EXEC_ID_LEN / 2];
    size_t i;

    if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw)) {
        uint64_t v = (uint64_t)now_ms() ^ ((uint64_t)getpid() << 40);

        memcpy(raw, &v, sizeof(raw));
    }
    for (i = 0; i < sizeof(raw); i++) {
        id[2 * i] = hex[raw[i] >> 4];
        id[2 * i + 1] = hex[raw[i] & 15];
    }
    id[MAPQ_EXEC_ID_LEN] = '\0';
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
    redisReply *reply;
    enum mapq_err rc = MAPQ_OK;
    int64_t now = now_ms();
    size_t k;

    if (o == NULL)
        o = &defaults;
    new_exec_id(id);
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HSET");
    mapq_argv_addf(&cmd, "%s:x:%s", ns, id);
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
        build_spec(wf, k, o->overwrite_cache, &specs[k]);
        mapq_argv_addf(&cmd, "t:%zu", k);
        mapq_argv_addlen(&cmd, specs[k].data, specs[k].len);
        mapq_argv_addf(&cmd, "node:%zu", k);
        mapq_argv_add(&cmd, wf->nodes[k].name);
    }
    if (o->overwrite_cache) {
        mapq_argv_add(&cmd, "overwrite");
        mapq_argv_add(&cmd, "1");
    }
    if (o->recover_from != NULL) {
        mapq_argv_add(&cmd, "recover_from");
        mapq_argv_add(&cmd, o->recover_from);
    }
    redisAppendCommandArgv(c, cmd.argc, cmd.argv, cmd.lens);
    redisAppendCommand(c, "ZADD %s:execs %lld %s", ns, (long long)now, id);
    redisAppendCommand(
        c, "ZADD %s:owners %lld %s", ns,
        (long long)(now +
                    (o->lease_ms > 0 ? o->lease_ms : MAPQ_OWNER_LEASE_MS)),
        id);
    for (k = 0; k < 3 && rc == MAPQ_OK; k++) {
        char what[200];

        if (redisGetReply(c, (void **)&reply) != REDIS_OK) {
            rc = mapq_err_set(err, MAPQ_EREDIS, "redis: %s", c->errstr);
            break;
        }
        /* Name the command and key: with an ACL user, that is what the
         * operator must grant. */
        if (k == 0)
            snprintf(what, sizeof(what), "HSET %s:x:%s", ns, id);
        else
            snprintf(what, sizeof(what), "ZADD %s:%s", ns,
                     k == 1 ? "execs" : "owners");
        if (reply->type == REDIS_REPLY_ERROR &&
            strncmp(reply->str, "NOPERM", 6) == 0)
            rc = mapq_err_set(err, MAPQ_EREDIS,
                              "%s: %s (the Redis user needs the commands mapq "
                              "uses on keys '%s:*')",
                              what, reply->str, ns);
        else if (reply->type == REDIS_REPLY_ERROR)
            rc = mapq_err_set(err, MAPQ_EREDIS, "%s: %s", what, reply->str);
        freeReplyObject(reply);
    }
    for (k = 0; k < wf->nnodes; k++)
        mapq_buf_release(&specs[k]);
    free(specs);
    mapq_argv_release(&cmd);
    return rc;
}

/* ---- calls Redis may refuse ------------------------------------------- */

/* Whether a permanent refusal on the path ends the executions of mapq run:
 * without it they cannot go on. A cancel refused is only reported. */
static const bool path_fatal[PATH_COUNT] = {
    [PATH_PUSH] = true,  [PATH_EVENTS] = true, [PATH_OWN] = true,
    [PATH_RENEW] = true, [PATH_ADOPT] = true,  [PATH_RECORD] = true,
    [PATH_SCAN] = true,  [PATH_READ] = true,   [PATH_FINISH] = true,
    [PATH_STATE] = true, [PATH_REAP] = true,   [PATH_CANCEL] = false,
    [PATH_LOAD] = false,
};

/* "FCALL mapq1_push", "HSET ns:x:<id>", "BLMPOP": what a log line names. */
static void
call_name(const struct mapq_argv *cmd, char *buf, size_t len)
{
    if (cmd->argc >= 2 && cmd->lens[0] == 5 &&
        memcmp(cmd->argv[0], "FCALL", 5) == 0)
        snprintf(buf, len, "FCALL %.*s", (int)cmd->lens[1], cmd->argv[1]);
    else if (cmd->argc >= 2 &&
             !(cmd->lens[0] == 6 && memcmp(cmd->argv[0], "BLMPOP", 6) == 0))
        snprintf(buf, len, "%.*s %.*s", (int)cmd->lens[0], cmd->argv[0],
                 (int)(cmd->lens[1] > 100 ? 100 : cmd->lens[1]), cmd->argv[1]);
    else if (cmd->argc >= 1)
        snprintf(buf, len, "%.*s", (int)cmd->lens[0], cmd->argv[0]);
    else
        snprintf(buf, len, "a command");
}

/*
 * The error of mapq run for a permanent refusal: the command, Redis's
 * words, and what the operator must change (the key pattern or command
 * the Redis user lacks, the password, the Redis version).
 */
static void
describe_refusal(const struct mapq_driver *d, const char *what,
                 const char *text, char *out, size_t len)
{
    size_t n = strlen(text);
    const char *fix;
    bool keys = true; /* fix ends with the key pattern */

    while (n > 0 && (text[n - 1] == '.' || text[n - 1] == ' ' ||
                     text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    if (strncmp(text, "ERR unknown command", 19) == 0) {
        fix = "this Redis lacks the command: mapq needs Redis 7.0 or later";
        keys = false;
    } else if (strncmp(text, "NOAUTH", 6) == 0 ||
               strncmp(text, "WRONGPASS", 9) == 0) {
        fix = "check the user and password in the Redis URL";
        keys = false;
    } else if (strstr(text, "key") != NULL) {
        fix = "the Redis user lacks access to keys it uses: grant it the key "
              "pattern";
    } else {
        fix = "the Redis user lacks a command mapq uses: grant it the "
              "command, or '+@all -@dangerous', on keys";
    }
    if (keys)
        snprintf(out, len, "%s refused by Redis: %.*s; %s '~%s:*'", what,
                 (int)n, text, fix, d->ns);
    else
        snprintf(out, len, "%s refused by Redis: %.*s; %s", what, (int)n, text,
                 fix);
}

/* Logs a failure of path p once per cause; returns the wait before trying
 * again (the cap for a permanent cause: only an operator clears it). */
static int
note_failure(struct mapq_driver *d, enum path p, const char *what,
             const char *text)
{
    struct mapq_retry *r = &d->retry[p];
    bool permanent =
        text != NULL && mapq_retry_classify(text) == MAPQ_RETRY_PERMANENT;
    int delay_ms;

    if (mapq_retry_fail(r, text, &delay_ms))
        mapq_log(permanent ? MAPQ_LOG_ERROR : MAPQ_LOG_WARN,
                 "%s failed, retrying with backoff: %s", what,
                 text ? text : "no reply");
    return permanent ? r->max_ms : delay_ms;
}

static void
note_success(struct mapq_driver *d, enum path p, const char *what)
{
    struct mapq_retry *r = &d->retry[p];

    /* As loud as the failure was: mapq run shows warnings only. */
    if (mapq_retry_ok(r))
        mapq_log(MAPQ_LOG_WARN, "%s works again after %lu failures (%s)", what,
                 r->count, r->code);
}

/* Ends x because Redis refuses what it needs; mapq run exits 3. */
static void
exec_fail_redis(struct exec *x, const char *msg)
{
    if (x->ended)
        return;
    x->redis_error = true;
    exec_fail(x, "%s", msg);
}

/*
 * Redis refused a call of path p made for x (NULL: for the whole driver)
 * with text. Returns true when the call is to be tried again after
 * *delay_ms. Returns false when it is not: the driver stops; or x has
 * ended and nothing waits for the call; or, in mapq run, the cause is
 * permanent, and the executions concerned (x, or all) have ended with
 * the reason instead, so that mapq run says it once and exits 3.
 */
static bool
refused(struct mapq_driver *d, struct exec *x, enum path p, const char *what,
        const char *text, int *delay_ms)
{
    char msg[1024];
    struct exec *e;

    if (d->stopping)
        return false;
    if (x != NULL && x->ended && p != PATH_RECORD && p != PATH_FINISH)
        return false;
    if (d->serving || text == NULL ||
        mapq_retry_classify(text) != MAPQ_RETRY_PERMANENT) {
        *delay_ms = note_failure(d, p, what, text);
        return true;
    }
    if (!path_fatal[p])
        return false;
    describe_refusal(d, what, text, msg, sizeof(msg));
    if (x != NULL && x->ended) {
        /* Its outcome is out already: a write after it is refused. */
        if (!x->redis_error && mapq_retry_fail(&d->retry[p], text, NULL))
            mapq_log(MAPQ_LOG_ERROR, "execution %s: %s", x->id, msg);
    } else if (x != NULL) {
        exec_fail_redis(x, msg);
    } else {
        TAILQ_FOREACH (e, &d->execs, entry)
            exec_fail_redis(e, msg);
    }
    return false;
}

/*
 * A call that is sent again after a backoff while Redis refuses it with a
 * transient error reply (OOM, BUSY, LOADING, ...). fn gets any other
 * reply, NULL when the connection failed (the reconcile after reconnecting
 * covers the call), or the error reply when refused() gives up. It holds a
 * call of x (x->calls) until fn runs.
 */
struct call {
    struct mapq_driver *d;
    struct exec *x; /* NULL: for the whole driver */
    enum path path;
    struct mapq_redis *conn;
    int timeout_ms;
    bool gen_check; /* dropped when a reconcile of x came between */
    unsigned gen;
    long node;    /* a progress write (p:<node>), or -1 */
    unsigned seq; /* which one of that node's */
    bool refusal; /* parked because Redis refused it (d->nrefused) */
    struct mapq_argv cmd;
    char what[128];
    mapq_redis_reply_fn *fn;
    void *arg;
    struct event *ev;
    TAILQ_ENTRY(call) entry; /* in d->parked while waiting to retry */
};

static void call_cb(redisReply *reply, const char *why, void *arg);

static void
call_free(struct call *c)
{
    if (c->ev != NULL)
        event_free(c->ev);
    mapq_argv_release(&c->cmd);
    free(c);
}

static void
call_go(struct call *c)
{
    mapq_redis_command(c->conn, c->timeout_ms, call_cb, c, c->cmd.argc,
                       c->cmd.argv, c->cmd.lens);
}

/* True when a parked call is no longer worth sending. */
static bool
call_stale(const struct call *c)
{
    const struct exec *x = c->x;

    if (c->d->stopping || x == NULL)
        return c->d->stopping;
    if (x->ended && c->path != PATH_RECORD && c->path != PATH_FINISH)
        return true;
    if (c->gen_check && c->gen != x->gen)
        return true;
    /* A newer write of the same progress record replaces it. */
    return c->node >= 0 && x->nodes[c->node].p_seq != c->seq;
}

static void
call_resend_cb(evutil_socket_t fd, short what, void *arg)
{
    struct call *c = arg;

    (void)fd;
    (void)what;
    TAILQ_REMOVE(&c->d->parked, c, entry);
    c->d->nrefused -= c->refusal;
    c->refusal = false;
    if (call_stale(c)) {
        c->fn(NULL, "no longer needed", c->arg);
        call_free(c);
        return;
    }
    call_go(c);
}

static void
call_park(struct call *c, int delay_ms, bool refusal)
{
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};

    c->refusal = refusal;
    c->d->nrefused += refusal;
    if (c->ev == NULL)
        c->ev = evtimer_new(c->d->base, call_resend_cb, c);
    TAILQ_INSERT_TAIL(&c->d->parked, c, entry);
    evtimer_add(c->ev, &tv);
}

static void
call_cb(redisReply *reply, const char *why, void *arg)
{
    struct call *c = arg;
    int delay_ms;

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        if (refused(c->d, c->x, c->path, c->what, reply->str, &delay_ms)) {
            call_park(c, delay_ms, true);
            return;
        }
    } else if (reply == NULL && c->path == PATH_RECORD && !call_stale(c)) {
        /* A record write waits for the connection rather than for the
         * reconcile, which does not redo it. */
        call_park(c, note_failure(c->d, c->path, c->what, why), false);
        return;
    } else if (reply != NULL) {
        note_success(c->d, c->path, c->what);
    }
    c->fn(reply, why, c->arg);
    call_free(c);
}

/*
 * Sends cmd (emptied: the call takes its contents) on conn for path p; fn
 * gets arg. x, when not NULL, holds a call until fn runs (fn releases
 * it). Returns the call, for the caller to mark before the loop runs.
 */
static struct call *
call_send(struct mapq_driver *d, struct exec *x, enum path p,
          struct mapq_redis *conn, int timeout_ms, struct mapq_argv *cmd,
          mapq_redis_reply_fn *fn, void *arg)
{
    struct call *c = mapq_xcalloc(1, sizeof(*c));

    c->d = d;
    c->x = x;
    c->path = p;
    c->conn = conn;
    c->timeout_ms = timeout_ms;
    c->node = -1;
    c->gen = x != NULL ? x->gen : 0;
    c->cmd = *cmd;
    mapq_argv_init(cmd);
    call_name(&c->cmd, c->what, sizeof(c->what));
    c->fn = fn;
    c->arg = arg;
    if (x != NULL)
        x->calls++;
    call_go(c);
    return c;
}

/* A call of x on the command connection; fn decrements x->calls. */
static struct call *
exec_send(struct exec *x, enum path p, struct mapq_argv *cmd,
          mapq_redis_reply_fn *fn, void *arg)
{
    return call_send(x->d, x, p, x->d->cmd, CALL_TIMEOUT_MS, cmd, fn, arg);
}

/* Parked calls are dropped: fn runs with NULL. Before freeing the
 * executions they point at. */
static void
drop_parked(struct mapq_driver *d)
{
    struct call *c;

    while ((c = TAILQ_FIRST(&d->parked)) != NULL) {
        TAILQ_REMOVE(&d->parked, c, entry);
        d->nrefused -= c->refusal;
        c->fn(NULL, "the driver stops", c->arg);
        call_free(c);
    }
}

/* Reaping is opportunistic: a refusal delays the next tick's. */
static void
reap_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;
    struct mapq_driver *d = x->d;
    int delay_ms;

    x->calls--;
    if (reply == NULL)
        return; /* the connection's fault: it is being rebuilt */
    if (reply->type != REDIS_REPLY_ERROR) {
        note_success(d, PATH_REAP, "FCALL mapq1_reap");
        return;
    }
    (void)why;
    if (refused(d, NULL, PATH_REAP, "FCALL mapq1_reap", reply->str, &delay_ms))
        d->reap_next = now_ms() + delay_ms;
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

/* Writes field of x's record; sent again until Redis takes it. node: the
 * progress record's node (p:<node>), or -1. */
static void
hset_node(struct exec *x, const char *field, const char *value, size_t len,
          long node)
{
    struct mapq_argv cmd;
    struct call *c;

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HSET");
    mapq_argv_addf(&cmd, "%s:x:%s", x->d->ns, x->id);
    mapq_argv_add(&cmd, field);
    mapq_argv_addlen(&cmd, value, len);
    c = exec_send(x, PATH_RECORD, &cmd, record_done_cb, x);
    if (node >= 0) {
        c->node = node;
        c->seq = ++x->nodes[node].p_seq;
    }
}

static void
hset(struct exec *x, const char *field, const char *value, size_t len)
{
    hset_node(x, field, value, len, -1);
}

/* ---- ending ------------------------------------------------------------ */

/* Frees what node k holds and makes it a waiting node again. */
static void
node_reset(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];
    size_t j;

    free(nr->phases);
    for (j = 0; j < nr->nparams; j++)
        mapq_buf_release(&nr->params[j].bound);
    free(nr->params);
    if (nr->literals != NULL)
        for (j = 0; j < x->wf->nodes[k].nover + x->wf->nodes[k].nwith; j++)
            msgpack_unpacked_destroy(&nr->literals[j]);
    free(nr->literals);
    free(nr->iface);
    mapq_buf_release(&nr->output);
    msgpack_unpacked_destroy(&nr->output_u);
    mapq_buf_release(&nr->asm_buf);
    for (j = 0; j < nr->ngroups; j++) {
        free(nr->groups[j].msg);
        mapq_buf_release(&nr->groups[j].ranges);
    }
    memset(nr, 0, sizeof(*nr));
    msgpack_unpacked_init(&nr->output_u);
}

static void
exec_free(struct exec *x)
{
    size_t k;

    for (k = 0; k < x->wf->nnodes; k++)
        node_reset(x, k);
    free(x->nodes);
    msgpack_unpacked_destroy(&x->inputs_u);
    mapq_buf_release(&x->inputs);
    mapq_buf_release(&x->output);
    mapq_workflow_free(x->wf);
    free(x->evkey);
    free(x);
}

/* Writes p:<k>, the progress of node k. */
static void
write_node_progress(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];
    struct mapq_buf b = MAPQ_BUF_INIT;
    msgpack_packer pk;
    char field[32];
    int p;

    mapq_value_packer_init(&pk, &b);
    msgpack_pack_array(&pk, 2 + MAPQ_PHASE_COUNT);
    mapq_value_pack_str(&pk, node_state_names[nr->state]);
    msgpack_pack_uint64(&pk, nr->n);
    for (p = 0; p < MAPQ_PHASE_COUNT; p++) {
        uint64_t c = nr->counts[p];

        if (p == MAPQ_PHASE_QUEUED && nr->state == NODE_RUNNING)
            c = nr->n - nr->finished;
        msgpack_pack_uint64(&pk, c);
    }
    snprintf(field, sizeof(field), "p:%zu", k);
    hset_node(x, field, b.data, b.len, (long)k);
    mapq_buf_release(&b);
}

/* Writes the progress of every node whose progress this driver knows (a
 * node restored by a reconcile keeps what its first driver wrote). */
static void
write_progress(struct exec *x)
{
    size_t k;

    for (k = 0; k < x->wf->nnodes; k++)
        if (!x->nodes[k].restored)
            write_node_progress(x, k);
}

static void send_finish(struct exec *x);

static void
finish_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;

    x->calls--;
    if (reply == NULL) {
        if (x->d->stopping)
            return;
        /* Sent again once the connection is back. */
        x->finish_pending = true;
        mapq_log(MAPQ_LOG_WARN,
                 "execution %s: cannot record its end yet: %s; will retry",
                 x->id, why);
    } else if (reply->type == REDIS_REPLY_ERROR) {
        /* Refused for good: refused() said so, or mapq run says why. */
    } else if (reply->type != REDIS_REPLY_INTEGER) {
        mapq_log(MAPQ_LOG_ERROR, "execution %s: cannot record its end: %s",
                 x->id, "bad reply");
    } else if (reply->integer == -2) {
        mapq_log(MAPQ_LOG_WARN,
                 "execution %s: not recorded: another scheduler owns it now",
                 x->id);
    }
}

/*
 * The final write, one atomic mapq1_finish: state, finished time, output or
 * error, and the queued subtasks and events dropped. It does not overwrite
 * an execution already ended (cancelled), nor one another driver owns.
 */
static void
send_finish(struct exec *x)
{
    struct mapq_argv cmd;

    x->finish_pending = false;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_finish");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, x->d->ns);
    mapq_argv_add(&cmd, x->id);
    mapq_argv_add(&cmd, x->d->owner);
    mapq_argv_add(&cmd, x->ok ? "succeeded" : "failed");
    mapq_argv_add(&cmd, x->ok ? "output" : "error");
    if (x->ok)
        mapq_argv_addlen(&cmd, x->output.data, x->output.len);
    else
        mapq_argv_add(&cmd, x->error);
    exec_send(x, PATH_FINISH, &cmd, finish_cb, x);
}

/* Ends x: records the outcome, tells the owner, frees when idle. */
static void
exec_end(struct exec *x, bool ok)
{
    struct mapq_exec_outcome out;

    x->ended = true;
    x->ok = ok;
    write_progress(x);
    send_finish(x);
    memset(&out, 0, sizeof(out));
    out.id = x->id;
    out.succeeded = ok;
    out.cancelled = x->cancelled;
    out.redis_error = x->redis_error;
    out.error = ok ? NULL : x->error;
    out.output = ok ? &x->output : NULL;
    if (x->done != NULL)
        x->done(&out, x->arg);
}

/*
 * Stops driving x without writing anything: another driver owns it, or it
 * ended elsewhere. why goes to the owner of this driver.
 */
static void
exec_detach(struct exec *x, const char *why)
{
    struct mapq_exec_outcome out;

    if (x->ended)
        return;
    x->ended = true;
    snprintf(x->error, sizeof(x->error), "%s", why);
    memset(&out, 0, sizeof(out));
    out.id = x->id;
    out.detached = !x->redis_error;
    out.redis_error = x->redis_error;
    out.error = x->error;
    if (x->done != NULL)
        x->done(&out, x->arg);
}

static void
exec_fail(struct exec *x, const char *fmt, ...)
{
    va_list ap;
    size_t k;

    if (x->ended)
        return;
    va_start(ap, fmt);
    vsnprintf(x->error, sizeof(x->error), fmt, ap);
    va_end(ap);
    for (k = 0; k < x->wf->nnodes; k++)
        if (x->nodes[k].state == NODE_WAITING)
            x->nodes[k].state = NODE_SKIPPED;
        else if (x->nodes[k].state == NODE_RUNNING ||
                 x->nodes[k].state == NODE_ASSEMBLING)
            x->nodes[k].state = NODE_FAILED;
    exec_end(x, false);
}

/* ---- node inputs ------------------------------------------------------- */

static const msgpack_object *
resolve(struct exec *x, const struct mapq_binding *b, msgpack_unpacked *lit)
{
    char err[MAPQ_ERR_LEN];

    switch (b->kind) {
    case MAPQ_REF_LITERAL:
        if (mapq_value_unpack(b->literal.data, b->literal.len, lit, err) !=
            MAPQ_OK)
            return NULL;
        return &lit->data;
    case MAPQ_REF_INPUT:
        return mapq_value_map_get(&x->inputs_u.data, b->ref);
    case MAPQ_REF_NODE:
        return &x->nodes[b->target].output_u.data;
    }
    return NULL;
}

static int
param_cmp(const void *a, const void *b)
{
    const struct param_src *x = a, *y = b;

    return strcmp(x->name, y->name);
}

static const struct mapq_param *
task_param(const struct mapq_task_def *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->ninputs; i++)
        if (strcmp(t->inputs[i].name, name) == 0)
            return &t->inputs[i];
    return NULL;
}

static void
build_iface(struct node_run *nr, const struct mapq_task_def *t)
{
    struct mapq_buf b = MAPQ_BUF_INIT;
    char tb[256];
    size_t i;

    for (i = 0; i < nr->nparams; i++)
        mapq_buf_printf(&b, "%s%s:%s", i ? "," : "", nr->params[i].name,
                        mapq_type_format(nr->params[i].type, tb, sizeof(tb)));
    mapq_buf_printf(&b, "->%s",
                    t->output ? mapq_type_format(t->output, tb, sizeof(tb))
                              : "none");
    nr->iface = mapq_buf_detach(&b, NULL);
}

/* Resolves and checks one binding into nr->params[j]. */
static int
bind_param(struct exec *x, size_t k, const struct mapq_binding *b, bool over,
           size_t j)
{
    const struct mapq_node *n = &x->wf->nodes[k];
    const struct mapq_task_def *t = &x->wf->tasks[n->task];
    struct node_run *nr = &x->nodes[k];
    struct param_src *ps = &nr->params[j];
    const struct mapq_param *p = task_param(t, b->param);
    const msgpack_object *v = resolve(x, b, &nr->literals[j]);
    char err[MAPQ_ERR_LEN];
    uint32_t i;

    if (p == NULL || v == NULL) {
        exec_fail(x, "node '%s': input '%s' has no value", n->name, b->param);
        return -1;
    }
    ps->name = p->name;
    ps->type = p->type;
    mapq_buf_init(&ps->bound, 0);
    if (over) {
        if (v->type != MSGPACK_OBJECT_ARRAY) {
            exec_fail(x, "node '%s': 'over' input '%s' is not a list (%s)",
                      n->name, b->param, mapq_type_describe(v));
            return -1;
        }
        for (i = 0; i < v->via.array.size; i++)
            if (mapq_type_check(p->type, &v->via.array.ptr[i], err) !=
                MAPQ_OK) {
                exec_fail(x, "node '%s': input '%s' element %u: %s", n->name,
                          b->param, i, err);
                return -1;
            }
        ps->list = v;
        return 0;
    }
    if (mapq_type_check(p->type, v, err) != MAPQ_OK) {
        exec_fail(x, "node '%s': input '%s': %s", n->name, b->param, err);
        return -1;
    }
    mapq_value_canonical(v, &ps->bound);
    return 0;
}

/* Resolves a node's inputs; fills n. Returns -1 after failing x. */
static int
node_bind(struct exec *x, size_t k)
{
    const struct mapq_node *n = &x->wf->nodes[k];
    struct node_run *nr = &x->nodes[k];
    size_t j, nb = n->nover + n->nwith;
    const char *first = NULL;
    uint64_t len = 0;

    nr->nparams = nb;
    nr->params = mapq_xcalloc(nb + 1, sizeof(*nr->params));
    nr->literals = mapq_xcalloc(nb + 1, sizeof(*nr->literals));
    for (j = 0; j < nb; j++)
        msgpack_unpacked_init(&nr->literals[j]);
    for (j = 0; j < n->nover; j++) {
        if (bind_param(x, k, &n->over[j], true, j) != 0)
            return -1;
        if (first != NULL && nr->params[j].list->via.array.size != len) {
            exec_fail(x,
                      "node '%s': input lists have different lengths: '%s' "
                      "has %llu, '%s' has %u",
                      n->name, first, (unsigned long long)len, n->over[j].param,
                      nr->params[j].list->via.array.size);
            return -1;
        }
        first = n->over[j].param;
        len = nr->params[j].list->via.array.size;
    }
    for (j = 0; j < n->nwith; j++)
        if (bind_param(x, k, &n->with[j], false, n->nover + j) != 0)
            return -1;
    qsort(nr->params, nb, sizeof(*nr->params), param_cmp);
    nr->n = n->is_map ? len : 1;
    build_iface(nr, &x->wf->tasks[n->task]);
    return 0;
}

/* ---- pushing ----------------------------------------------------------- */

/* Appends the canonical inputs map of subtask i to out. */
static void
subtask_inputs(const struct node_run *nr, uint64_t i, struct mapq_buf *out)
{
    msgpack_packer pk;
    size_t j;

    mapq_value_packer_init(&pk, out);
    msgpack_pack_map(&pk, (uint32_t)nr->nparams);
    for (j = 0; j < nr->nparams; j++) {
        const struct param_src *ps = &nr->params[j];

        mapq_value_pack_str(&pk, ps->name);
        if (ps->list != NULL)
            mapq_value_canonical(&ps->list->via.array.ptr[i], out);
        else
            mapq_buf_append(out, ps->bound.data, ps->bound.len);
    }
}

/*
 * The subtask key: hash of [task, cache version, interface, inputs, scope]
 * where scope is nil for cached tasks and [exec, node, index] otherwise, so
 * uncached subtasks never share results.
 */
static void
subtask_key_in(const struct exec *x, const char *exec_id, size_t k, uint64_t i,
               const char *in, size_t inlen, unsigned char key[MAPQ_KEY_LEN])
{
    const struct mapq_node *n = &x->wf->nodes[k];
    const struct node_run *nr = &x->nodes[k];
    struct mapq_buf m = MAPQ_BUF_INIT;
    msgpack_packer pk;

    mapq_value_packer_init(&pk, &m);
    msgpack_pack_array(&pk, 5);
    mapq_value_pack_str(&pk, x->wf->tasks[n->task].name);
    mapq_value_pack_str(&pk, n->opts.cache && n->opts.cache_version
                                 ? n->opts.cache_version
                                 : "");
    mapq_value_pack_str(&pk, nr->iface);
    mapq_buf_append(&m, in, inlen);
    if (n->opts.cache) {
        msgpack_pack_nil(&pk);
    } else {
        msgpack_pack_array(&pk, 3);
        mapq_value_pack_str(&pk, exec_id);
        mapq_value_pack_str(&pk, n->name);
        msgpack_pack_uint64(&pk, i);
    }
    mapq_value_hash(m.data, m.len, key);
    mapq_buf_release(&m);
}

/* The key of subtask i of node k in this execution. */
static void
subtask_key(const struct exec *x, size_t k, uint64_t i, const char *in,
            size_t inlen, unsigned char key[MAPQ_KEY_LEN])
{
    subtask_key_in(x, x->id, k, i, in, inlen, key);
}

/* One push call in flight: the subtasks it carries, in order. */
struct push_req {
    struct exec *x;
    size_t k;
    unsigned gen;
    size_t n;
    uint64_t idx[BATCH];
};

/*
 * mapq1_push_cached says, per subtask, 'q' (queued), 'f' (it follows an
 * identical one: no slot of the window while it waits) or 'd' (answered
 * at once: its event comes). Followers give their slot back here.
 */
static void
push_followers(struct exec *x, const struct push_req *req,
               const redisReply *reply)
{
    struct node_run *nr = &x->nodes[req->k];
    size_t j;
    bool freed = false;

    if (reply->type != REDIS_REPLY_STRING || reply->len != req->n ||
        nr->state != NODE_RUNNING)
        return;
    for (j = 0; j < req->n; j++)
        if (reply->str[j] == 'f' &&
            phase_get(nr, req->idx[j]) == MAPQ_PHASE_QUEUED) {
            phase_set(nr, req->idx[j], PH_FOLLOWING);
            nr->inflight--;
            freed = true;
        }
    if (freed)
        push_more(x, req->k);
}

static void
push_cb(redisReply *reply, const char *why, void *arg)
{
    struct push_req *req = arg;
    struct exec *x = req->x;

    (void)why;
    x->calls--;
    /* No reply: the connection is being rebuilt, and the reconcile after
     * it pushes whatever did not arrive. */
    if (x->ended || reply == NULL || req->gen != x->gen) {
        /* nothing to do */
    } else if (reply->type == REDIS_REPLY_ERROR) {
        exec_fail(x, "cannot queue subtasks: %s", reply->str);
    } else {
        push_followers(x, req, reply);
    }
    free(req);
}

static void
push_send(struct exec *x, struct push_req *req, struct mapq_argv *cmd)
{
    exec_send(x, PATH_PUSH, cmd, push_cb, req)->gen_check = true;
}

enum push_mode {
    PUSH_PLAIN,   /* mapq1_push: index, body */
    PUSH_CACHED,  /* mapq1_push_cached: index, key, body */
    PUSH_RECOVER, /* mapq1_push_recover: index, key, key in the old, body */
};

/* A cached node uses the cache even in a recovery: the successes of the
 * execution recovered are entries there, and followers still run once. */
static enum push_mode
push_mode(const struct exec *x, size_t k)
{
    if (x->wf->nodes[k].opts.cache)
        return PUSH_CACHED;
    return x->recover_from[0] != '\0' ? PUSH_RECOVER : PUSH_PLAIN;
}

/*
 * The start of a push call for node k: mapq1_push; for a cached node
 * mapq1_push_cached, whose subtasks carry their key (for the lookups); in
 * a recovery mapq1_push_recover, whose subtasks also carry their key in
 * the execution recovered.
 */
static void
push_header(struct exec *x, size_t k, struct mapq_argv *cmd)
{
    static const char *const fns[] = {"mapq1_push", "mapq1_push_cached",
                                      "mapq1_push_recover"};
    const struct mapq_node *n = &x->wf->nodes[k];
    const struct node_run *nr = &x->nodes[k];
    enum push_mode mode = push_mode(x, k);

    mapq_argv_add(cmd, "FCALL");
    mapq_argv_add(cmd, fns[mode]);
    mapq_argv_add(cmd, "0");
    mapq_argv_add(cmd, x->d->ns);
    mapq_argv_add(cmd, x->id);
    mapq_argv_addf(cmd, "%zu", k);
    mapq_argv_add(cmd, nr->queue);
    mapq_argv_add(cmd, nr->cls);
    if (mode == PUSH_CACHED) {
        mapq_argv_add(cmd, x->wf->tasks[n->task].name);
        mapq_argv_add(cmd, x->overwrite ? "1" : "0");
    } else if (mode == PUSH_RECOVER) {
        mapq_argv_add(cmd, x->recover_from);
    }
}

static void
push_more(struct exec *x, size_t k)
{
    const struct mapq_node *n = &x->wf->nodes[k];
    struct node_run *nr = &x->nodes[k];
    uint64_t limit =
        n->concurrency > 0 ? (uint64_t)n->concurrency : UNLIMITED_WINDOW;
    struct mapq_buf body = MAPQ_BUF_INIT, in = MAPQ_BUF_INIT;
    unsigned char key[MAPQ_KEY_LEN];
    struct push_req *req = NULL;
    struct mapq_argv cmd;
    msgpack_packer pk;
    int items = 0;

    mapq_argv_init(&cmd);
    while (nr->state == NODE_RUNNING && !nr->scanning && nr->inflight < limit &&
           nr->next < nr->n) {
        uint64_t i = nr->next++;

        /* After a reconcile, subtasks in flight or finished are skipped. */
        if (phase_get(nr, i) != PH_PENDING)
            continue;
        phase_set(nr, i, MAPQ_PHASE_QUEUED);
        if (items == 0) {
            push_header(x, k, &cmd);
            req = mapq_xcalloc(1, sizeof(*req));
            req->x = x;
            req->k = k;
            req->gen = x->gen;
        }
        req->idx[req->n++] = i;
        mapq_buf_reset(&in);
        mapq_buf_reset(&body);
        subtask_inputs(nr, i, &in);
        subtask_key(x, k, i, in.data, in.len, key);
        mapq_value_packer_init(&pk, &body);
        msgpack_pack_map(&pk, 3);
        mapq_value_pack_str(&pk, "i");
        msgpack_pack_uint64(&pk, i);
        mapq_value_pack_str(&pk, "in");
        mapq_buf_append(&body, in.data, in.len);
        mapq_value_pack_str(&pk, "h");
        msgpack_pack_bin(&pk, MAPQ_KEY_LEN);
        msgpack_pack_bin_body(&pk, key, MAPQ_KEY_LEN);
        mapq_argv_addf(&cmd, "%llu", (unsigned long long)i);
        if (push_mode(x, k) != PUSH_PLAIN)
            mapq_argv_addlen(&cmd, key, MAPQ_KEY_LEN);
        if (push_mode(x, k) == PUSH_RECOVER) {
            subtask_key_in(x, x->recover_from, k, i, in.data, in.len, key);
            mapq_argv_addlen(&cmd, key, MAPQ_KEY_LEN);
        }
        mapq_argv_addlen(&cmd, body.data, body.len);
        nr->inflight++;
        if (++items == BATCH) {
            push_send(x, req, &cmd);
            mapq_argv_reset(&cmd);
            items = 0;
        }
    }
    if (items > 0)
        push_send(x, req, &cmd);
    mapq_argv_release(&cmd);
    mapq_buf_release(&body);
    mapq_buf_release(&in);
}

/* ---- node lifecycle ---------------------------------------------------- */

/* Node k succeeded with output (taken). Returns -1 after failing x. */
static int
node_set_output(struct exec *x, size_t k, struct mapq_buf *output)
{
    struct node_run *nr = &x->nodes[k];
    char err[MAPQ_ERR_LEN];

    nr->output = *output;
    mapq_buf_init(output, 0);
    if (mapq_value_unpack(nr->output.data, nr->output.len, &nr->output_u,
                          err) != MAPQ_OK) {
        exec_fail(x, "node '%s': output unreadable: %s", x->wf->nodes[k].name,
                  err);
        return -1;
    }
    nr->state = NODE_SUCCEEDED;
    return 0;
}

/* Node k succeeded with output (taken): stored as o:<k>, dependents start. */
static void
node_succeed(struct exec *x, size_t k, struct mapq_buf *output)
{
    char field[32];

    if (node_set_output(x, k, output) != 0)
        return;
    snprintf(field, sizeof(field), "o:%zu", k);
    hset(x, field, x->nodes[k].output.data, x->nodes[k].output.len);
    write_node_progress(x, k);
    advance(x);
}

static void
node_start(struct exec *x, size_t k)
{
    const struct mapq_node *n = &x->wf->nodes[k];
    struct node_run *nr = &x->nodes[k];
    struct mapq_buf empty = MAPQ_BUF_INIT;
    msgpack_packer pk;

    nr->state = NODE_RUNNING;
    if (node_bind(x, k) != 0)
        return;
    nr->queue = n->opts.queue;
    nr->cls = mapq_queue_class(n->opts.interruptible,
                               x->wf->tasks[n->task].kind == MAPQ_TASK_PLUGIN);
    if (n->min_successes >= 0)
        nr->need = (uint64_t)n->min_successes;
    else
        nr->need = (uint64_t)ceil(n->min_success_ratio * (double)nr->n - 1e-9);
    if (nr->need > nr->n)
        nr->need = nr->n;
    if (nr->n == 0) {
        mapq_value_packer_init(&pk, &empty);
        msgpack_pack_array(&pk, 0);
        node_succeed(x, k, &empty);
        return;
    }
    nr->phases = mapq_xmalloc((nr->n + 1) / 2);
    memset(nr->phases, PH_PENDING * 17, (nr->n + 1) / 2);
    if (x->scan_starts) {
        nr->scanning = true;
        scan_next(x, k);
        return;
    }
    push_more(x, k);
}

/* Starts whatever can start; ends the execution when everything ended. */
static void
advance(struct exec *x)
{
    const struct mapq_workflow *wf = x->wf;
    size_t o, k, j;
    bool all_done = true;

    if (x->ended)
        return;
    for (o = 0; o < wf->nnodes && !x->ended; o++) {
        const struct mapq_node *n;

        k = wf->order[o];
        n = &wf->nodes[k];
        if (x->nodes[k].state != NODE_SUCCEEDED)
            all_done = false;
        if (x->nodes[k].state != NODE_WAITING)
            continue;
        for (j = 0; j < n->ndeps; j++)
            if (x->nodes[n->deps[j]].state != NODE_SUCCEEDED)
                break;
        if (j == n->ndeps)
            node_start(x, k);
    }
    if (!all_done || x->ended)
        return;
    /* The workflow's output. */
    {
        msgpack_packer pk;
        msgpack_unpacked lit;
        size_t i;

        msgpack_unpacked_init(&lit);
        mapq_value_packer_init(&pk, &x->output);
        if (wf->noutputs == 0)
            msgpack_pack_nil(&pk);
        else if (wf->output_is_map)
            msgpack_pack_map(&pk, (uint32_t)wf->noutputs);
        for (i = 0; i < wf->noutputs; i++) {
            const msgpack_object *v = resolve(x, &wf->outputs[i], &lit);

            if (wf->output_is_map)
                mapq_value_pack_str(&pk, wf->outputs[i].param);
            if (v == NULL)
                msgpack_pack_nil(&pk);
            else
                msgpack_pack_object(&pk, *v);
            msgpack_unpacked_destroy(&lit);
            msgpack_unpacked_init(&lit);
        }
        msgpack_unpacked_destroy(&lit);
    }
    exec_end(x, true);
}

/* ---- events ------------------------------------------------------------ */

static void
node_maybe_finish(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];

    if (nr->state == NODE_RUNNING && nr->finished == nr->n) {
        nr->state = NODE_ASSEMBLING;
        nr->scanning = false;
        nr->asm_next = 0;
        nr->asm_ok = 0;
        mapq_buf_init(&nr->asm_buf, 0);
        assemble_next(x, k);
    }
}

/*
 * The threshold is out of reach: every subtask not finished is ABORTED
 * (queued ones are dropped when the execution fails, running ones killed
 * by their agents), and the node goes on to read the errors.
 */
static void
abort_rest(struct node_run *nr)
{
    uint64_t i;

    for (i = 0; i < nr->n; i++)
        if (!phase_done(phase_get(nr, i))) {
            phase_set(nr, i, MAPQ_PHASE_ABORTED);
            nr->counts[MAPQ_PHASE_ABORTED]++;
        }
    nr->next = nr->n;
    nr->inflight = 0;
    nr->finished = nr->n;
    nr->scanning = false;
}

/* Fails the rest of node k at once if its threshold is out of reach. */
static void
check_threshold(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];
    uint64_t failed = nr->finished - nr->counts[MAPQ_PHASE_SUCCEEDED] -
                      nr->counts[MAPQ_PHASE_CACHED] -
                      nr->counts[MAPQ_PHASE_RECOVERED];

    if (failed > nr->n - nr->need && !x->wf->nodes[k].run_all &&
        nr->finished < nr->n)
        abort_rest(nr);
}

/* Records that subtask i of node k ended in phase. */
static void
apply_event(struct exec *x, uint64_t k, uint64_t i, int phase)
{
    struct node_run *nr = &x->nodes[k];
    int was;

    if (nr->state != NODE_RUNNING || i >= nr->n)
        return;
    was = phase_get(nr, i);
    if (phase_done(was))
        return; /* late or repeated: already accounted for */
    phase_set(nr, i, phase);
    nr->counts[phase]++;
    /* A pending subtask finishing is one a reconcile has not seen yet (or
     * pushed before a lost reply), and a follower gave its slot back: they
     * hold no window slot here. */
    if (was != PH_PENDING && was != PH_FOLLOWING)
        nr->inflight--;
    nr->finished++;
    nr->touched = true;
    check_threshold(x, k);
}

static void
event_cb(const struct mapq_event *ev, void *arg)
{
    apply_event(arg, ev->node, ev->index, ev->phase);
}

/*
 * Applies one event entry: [k, index, phase] triples, one per subtask
 * recorded by one mapq1_done call. A bad triple is skipped alone: the
 * others are real subtasks. The windows are refilled afterwards, by
 * handle_events_done(), once per batch rather than per event.
 */
static void
handle_event(struct exec *x, const char *data, size_t len)
{
    uint32_t bad;

    if (mapq_record_events(data, len, x->wf->nnodes, event_cb, x, &bad) !=
        MAPQ_OK)
        mapq_log(MAPQ_LOG_WARN, "execution %s: malformed event set aside",
                 x->id);
}

/* Refills the windows of the nodes that got events, and finishes nodes. */
static void
handle_events_done(struct exec *x)
{
    size_t k;

    for (k = 0; k < x->wf->nnodes && !x->ended; k++) {
        struct node_run *nr = &x->nodes[k];

        if (!nr->touched)
            continue;
        nr->touched = false;
        push_more(x, k);
        node_maybe_finish(x, k);
    }
}

/* ---- reconcile: where the subtasks of a node stand -------------------- */

struct scan_req {
    struct exec *x;
    size_t k;
    unsigned gen;
    uint64_t from, count;
};

/* Takes in one byte per subtask from mapq1_scan (see the function). */
static void
scan_apply(struct node_run *nr, const struct scan_req *req, const char *b)
{
    uint64_t j;

    for (j = 0; j < req->count; j++) {
        uint64_t i = req->from + j;
        int v = (unsigned char)b[j];

        if (phase_done(phase_get(nr, i)))
            continue; /* its event came first */
        if (v == 255)
            continue; /* never pushed: pushed once the scan ends */
        if (v == 254 || v < MAPQ_PHASE_SUCCEEDED) {
            phase_set(nr, i, MAPQ_PHASE_QUEUED);
            nr->inflight++;
            continue;
        }
        if (!phase_done(v))
            v = MAPQ_PHASE_FAILED; /* an unreadable record: its error shows */
        phase_set(nr, i, v);
        nr->counts[v]++;
        nr->finished++;
    }
}

static void
scan_cb(redisReply *reply, const char *why, void *arg)
{
    struct scan_req *req = arg;
    struct exec *x = req->x;
    struct node_run *nr = &x->nodes[req->k];

    (void)why;
    x->calls--;
    if (x->ended || req->gen != x->gen || nr->state != NODE_RUNNING ||
        !nr->scanning || reply == NULL)
        goto out; /* stale, or the connection's reconcile redoes it */
    if (reply->type != REDIS_REPLY_STRING || reply->len != req->count) {
        exec_fail(x, "cannot read the state of node '%s': %s",
                  x->wf->nodes[req->k].name,
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
        goto out;
    }
    scan_apply(nr, req, reply->str);
    if (nr->scan_next < nr->n) {
        scan_next(x, req->k);
        goto out;
    }
    nr->scanning = false;
    nr->next = 0;
    mapq_log(MAPQ_LOG_INFO,
             "execution %s: node '%s' reconciled: %llu finished, %llu in "
             "flight, %llu to push",
             x->id, x->wf->nodes[req->k].name, (unsigned long long)nr->finished,
             (unsigned long long)nr->inflight,
             (unsigned long long)(nr->n - nr->finished - nr->inflight));
    check_threshold(x, req->k);
    push_more(x, req->k);
    node_maybe_finish(x, req->k);
out:
    free(req);
}

/* Asks where the next BATCH subtasks of node k stand. */
static void
scan_next(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];
    struct scan_req *req = mapq_xcalloc(1, sizeof(*req));
    struct mapq_buf in = MAPQ_BUF_INIT;
    unsigned char key[MAPQ_KEY_LEN];
    struct mapq_argv cmd;
    uint64_t i,
        end = nr->scan_next + BATCH < nr->n ? nr->scan_next + BATCH : nr->n;

    req->x = x;
    req->k = k;
    req->gen = x->gen;
    req->from = nr->scan_next;
    req->count = end - nr->scan_next;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_scan");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, x->d->ns);
    mapq_argv_add(&cmd, x->id);
    mapq_argv_addf(&cmd, "%zu", k);
    for (i = nr->scan_next; i < end; i++) {
        mapq_buf_reset(&in);
        subtask_inputs(nr, i, &in);
        subtask_key(x, k, i, in.data, in.len, key);
        mapq_argv_addf(&cmd, "%llu", (unsigned long long)i);
        mapq_argv_addlen(&cmd, key, MAPQ_KEY_LEN);
    }
    nr->scan_next = end;
    exec_send(x, PATH_SCAN, &cmd, scan_cb, req)->gen_check = true;
    mapq_buf_release(&in);
}

static struct exec *
find_exec(struct mapq_driver *d, const char *id)
{
    struct exec *x;

    TAILQ_FOREACH (x, &d->execs, entry)
        if (strcmp(x->id, id) == 0)
            return x;
    return NULL;
}

static void drain(struct exec *x);

static void
drain_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;
    size_t i;

    (void)why;
    x->calls--;
    x->draining = false;
    if (x->ended)
        return;
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < reply->elements; i++)
            handle_event(x, reply->element[i]->str, reply->element[i]->len);
        handle_events_done(x);
        if (reply->elements == BATCH && !x->ended) {
            drain(x);
            return;
        }
    }
    wait_events(x->d);
}

static void
drain(struct exec *x)
{
    struct mapq_argv cmd;

    if (x->draining || x->ended)
        return;
    x->draining = true;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "LPOP");
    mapq_argv_add(&cmd, x->evkey);
    mapq_argv_addf(&cmd, "%d", BATCH);
    exec_send(x, PATH_EVENTS, &cmd, drain_cb, x);
}

static void serve_one(struct mapq_driver *d, const char *id, size_t len);

/* The event wait refused (BUSY, NOPERM, ...): waits again after a backoff
 * (returns true), or, when refused() ended the executions, not at all. */
static bool
wait_refused(struct mapq_driver *d, const char *text)
{
    struct timeval tv;
    int delay_ms;

    if (!refused(d, NULL, PATH_EVENTS, "BLMPOP", text, &delay_ms))
        return false;
    tv.tv_sec = delay_ms / 1000;
    tv.tv_usec = (delay_ms % 1000) * 1000;
    evtimer_add(d->wait_ev, &tv);
    return true;
}

static void
wait_again_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_driver *d = arg;

    (void)fd;
    (void)what;
    d->waiting = false;
    wait_events(d);
}

/*
 * BLMPOP's reply: [list, [entry...]] from the first list that had entries,
 * up to BATCH of them, so a trickle of events costs one call each.
 */
static void
wait_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_driver *d = arg;
    redisReply *list, *items;
    struct exec *x;
    char sub[128];
    size_t i;

    (void)why;
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        if (wait_refused(d, reply->str))
            return; /* d->waiting until the backoff ends */
        d->waiting = false;
        return;
    }
    d->waiting = false;
    if (reply == NULL)
        return; /* the state callback resumes waiting */
    note_success(d, PATH_EVENTS, "BLMPOP");
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY)
        goto again; /* a timeout, or an error logged by the connection */
    list = reply->element[0];
    items = reply->element[1];
    if (strcmp(list->str, d->wake_key) == 0) {
        d->wake_sent = false;
        goto again;
    }
    snprintf(sub, sizeof(sub), "%s:submitted", d->ns);
    if (strcmp(list->str, sub) == 0) {
        for (i = 0; i < items->elements; i++)
            if (items->element[i]->type == REDIS_REPLY_STRING)
                serve_one(d, items->element[i]->str, items->element[i]->len);
        goto again;
    }
    TAILQ_FOREACH (x, &d->execs, entry)
        if (!x->ended && x->driving && strcmp(x->evkey, list->str) == 0)
            break;
    if (x == NULL)
        goto again;
    for (i = 0; i < items->elements; i++)
        if (items->element[i]->type == REDIS_REPLY_STRING)
            handle_event(x, items->element[i]->str, items->element[i]->len);
    handle_events_done(x);
    if (items->elements == BATCH) {
        drain(x); /* there may be more: drain_cb waits again after */
        return;
    }
again:
    wait_events(d);
}

/* Adds key to the wanted set; notes whether the wait in flight lacks it. */
static void
want_key(struct mapq_driver *d, struct mapq_argv *keys, const char *key,
         bool *missing)
{
    char probe[256];

    mapq_argv_add(keys, key);
    snprintf(probe, sizeof(probe), "\n%s\n", key);
    if (d->wait_keys.len == 0 || strstr(d->wait_keys.data, probe) == NULL)
        *missing = true;
}

static void
wake_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_driver *d = arg;

    if (reply != NULL && reply->type != REDIS_REPLY_ERROR)
        return;
    /* The wait in flight ends by its timeout instead (a second at most),
     * and a later wake may be sent. */
    if (d != NULL)
        d->wake_sent = false;
    mapq_log(MAPQ_LOG_DEBUG, "cannot wake the event wait: %s",
             reply ? reply->str : why);
}

/* Ends the wait in flight early, so that the next one covers new lists. */
static void
wake(struct mapq_driver *d)
{
    struct mapq_argv cmd;

    if (d->wake_sent || !mapq_redis_ready(d->cmd))
        return;
    d->wake_sent = true;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "RPUSH");
    mapq_argv_add(&cmd, d->wake_key);
    mapq_argv_add(&cmd, "1");
    mapq_redis_command(d->cmd, CALL_TIMEOUT_MS, wake_cb, d, cmd.argc, cmd.argv,
                       cmd.lens);
    mapq_argv_reset(&cmd);
    /* Should this driver die before its wait pops it, the list goes. */
    mapq_argv_add(&cmd, "PEXPIRE");
    mapq_argv_add(&cmd, d->wake_key);
    mapq_argv_add(&cmd, "60000");
    mapq_redis_command(d->cmd, CALL_TIMEOUT_MS, wake_cb, NULL, cmd.argc,
                       cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
}

/*
 * Blocks on the event lists of the executions being driven (and on
 * P:submitted in service mode), or, when a wait is already in flight that
 * lacks one of them, wakes it.
 */
static void
wait_events(struct mapq_driver *d)
{
    struct mapq_argv keys, call;
    struct exec *x;
    bool missing = false;
    char sub[128];
    int j;

    if (d->stopping || !mapq_redis_ready(d->blk))
        return;
    mapq_argv_init(&keys);
    TAILQ_FOREACH (x, &d->execs, entry)
        if (!x->ended && !x->draining && x->driving)
            want_key(d, &keys, x->evkey, &missing);
    if (d->serving) {
        snprintf(sub, sizeof(sub), "%s:submitted", d->ns);
        want_key(d, &keys, sub, &missing);
    }
    if (d->waiting) {
        if (missing)
            wake(d);
        goto out;
    }
    if (keys.argc == 0)
        goto out;
    mapq_buf_reset(&d->wait_keys);
    mapq_buf_append(&d->wait_keys, "\n", 1);
    mapq_argv_add(&keys, d->wake_key);
    mapq_argv_init(&call);
    mapq_argv_add(&call, "BLMPOP");
    mapq_argv_addf(&call, "%d", WAIT_BLOCK_S);
    mapq_argv_addf(&call, "%d", keys.argc);
    for (j = 0; j < keys.argc; j++) {
        mapq_argv_addlen(&call, keys.argv[j], keys.lens[j]);
        mapq_buf_printf(&d->wait_keys, "%.*s\n", (int)keys.lens[j],
                        keys.argv[j]);
    }
    mapq_argv_add(&call, "LEFT");
    mapq_argv_add(&call, "COUNT");
    mapq_argv_addf(&call, "%d", BATCH);
    d->waiting = true;
    mapq_redis_command(d->blk, WAIT_BLOCK_S * 1000 + 3000, wait_cb, d,
                       call.argc, call.argv, call.lens);
    mapq_argv_release(&call);
out:
    mapq_argv_release(&keys);
}

/* ---- assembling outputs ------------------------------------------------ */

/* Adds failed index i, with message msg, to its group. */
static void
note_error(struct node_run *nr, uint64_t i, const char *msg, size_t len)
{
    struct err_group *g;
    size_t k;

    for (k = 0; k < nr->ngroups; k++)
        if (strlen(nr->groups[k].msg) == len &&
            memcmp(nr->groups[k].msg, msg, len) == 0)
            break;
    if (k == nr->ngroups) {
        if (k == ERROR_GROUPS_MAX) {
            nr->ungrouped++;
            return;
        }
        g = &nr->groups[nr->ngroups++];
        g->msg = mapq_xstrndup(msg, len);
        mapq_buf_init(&g->ranges, 0);
        g->start = g->last = i;
        return;
    }
    g = &nr->groups[k];
    if (i == g->last + 1) {
        g->last = i;
        return;
    }
    mapq_buf_printf(&g->ranges, "%s%llu", g->ranges.len ? "," : "",
                    (unsigned long long)g->start);
    if (g->last != g->start)
        mapq_buf_printf(&g->ranges, "-%llu", (unsigned long long)g->last);
    g->start = g->last = i;
}

/* The last non-empty line of a stderr tail. */
static void
last_line(const char *s, size_t len, const char **p, size_t *n)
{
    const char *e = s + len, *b;

    while (e > s && (e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\r'))
        e--;
    b = e;
    while (b > s && b[-1] != '\n')
        b--;
    *p = b;
    *n = (size_t)(e - b);
}

/* Packs the value of subtask i (nil when it failed, noting its error);
 * counts it in asm_ok when its record says it succeeded. */
static void
take_record(struct node_run *nr, uint64_t i, const redisReply *rec,
            msgpack_packer *pk)
{
    msgpack_unpacked u;
    struct mapq_result res;
    char err[MAPQ_ERR_LEN], msg[1200];
    const char *lp;
    size_t ln;

    msgpack_unpacked_init(&u);
    if (phase_get(nr, i) == MAPQ_PHASE_ABORTED) {
        msgpack_pack_nil(pk); /* not an error of its own */
        goto out;
    }
    if (rec->type != REDIS_REPLY_STRING ||
        mapq_value_unpack(rec->str, rec->len, &u, err) != MAPQ_OK) {
        msgpack_pack_nil(pk);
        note_error(nr, i, "no result recorded", 18);
        goto out;
    }
    mapq_record_result(&u.data, &res);
    if (res.ok) {
        msgpack_pack_object(pk, *res.value);
        nr->asm_ok++;
        goto out;
    }
    msgpack_pack_nil(pk);
    snprintf(msg, sizeof(msg), "%.*s",
             res.error != NULL ? (int)res.error_len : 7,
             res.error != NULL ? res.error : "failed");
    if (res.log != NULL) {
        last_line(res.log, res.log_len, &lp, &ln);
        if (ln > 0)
            snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), ": %.*s",
                     (int)(ln > 300 ? 300 : ln), lp);
    }
    note_error(nr, i, msg, strlen(msg));
out:
    msgpack_unpacked_destroy(&u);
}

/* Writes "0-3,7: msg; 5: other" into out. */
static void
summarize_errors(const struct node_run *nr, struct mapq_buf *out)
{
    const struct err_group *g;
    size_t k;

    for (k = 0; k < nr->ngroups; k++) {
        g = &nr->groups[k];
        mapq_buf_printf(out, "%s%s%s%llu", k ? "; " : "",
                        g->ranges.len ? g->ranges.data : "",
                        g->ranges.len ? "," : "", (unsigned long long)g->start);
        if (g->last != g->start)
            mapq_buf_printf(out, "-%llu", (unsigned long long)g->last);
        mapq_buf_printf(out, ": %s", g->msg);
    }
    if (nr->ungrouped > 0)
        mapq_buf_printf(out, "; %llu more with other errors",
                        (unsigned long long)nr->ungrouped);
}

static void
assembled(struct exec *x, size_t k)
{
    const struct mapq_node *n = &x->wf->nodes[k];
    struct node_run *nr = &x->nodes[k];
    struct mapq_buf out = MAPQ_BUF_INIT, sum = MAPQ_BUF_INIT;
    /* Counted from the records, not the events: an event without its
     * record (a foreign client's) is no success. */
    uint64_t ok = nr->asm_ok;
    msgpack_packer pk;

    if (ok < nr->need) {
        summarize_errors(nr, &sum);
        nr->state = NODE_FAILED;
        if (n->is_map)
            exec_fail(x,
                      "node '%s' failed: %llu of %llu subtasks succeeded, "
                      "%llu needed: %s",
                      n->name, (unsigned long long)ok,
                      (unsigned long long)nr->n, (unsigned long long)nr->need,
                      sum.data ? sum.data : "");
        else
            exec_fail(x, "node '%s' failed: %s", n->name,
                      sum.data ? sum.data + strcspn(sum.data, ":") + 2 : "");
        mapq_buf_release(&sum);
        return;
    }
    if (n->is_map) {
        mapq_value_packer_init(&pk, &out);
        msgpack_pack_array(&pk, (uint32_t)nr->n);
        mapq_buf_append(&out, nr->asm_buf.data, nr->asm_buf.len);
    } else {
        out = nr->asm_buf;
        mapq_buf_init(&nr->asm_buf, 0);
    }
    node_succeed(x, k, &out);
    mapq_buf_release(&out);
}

static void assemble_reply(redisReply *reply, const char *why, void *arg);

struct asm_req {
    struct exec *x;
    size_t k;
    unsigned gen;
    uint64_t from, count;
    uint64_t nfailed; /* FAILED subtasks: also asked for "#<index>" */
};

static void
assemble_next(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];
    struct asm_req *req;
    struct mapq_argv cmd;
    struct mapq_buf in = MAPQ_BUF_INIT;
    unsigned char key[MAPQ_KEY_LEN];
    uint64_t i, end;

    if (nr->asm_next >= nr->n) {
        assembled(x, k);
        return;
    }
    end = nr->asm_next + BATCH < nr->n ? nr->asm_next + BATCH : nr->n;
    req = mapq_xcalloc(1, sizeof(*req));
    req->x = x;
    req->k = k;
    req->gen = x->gen;
    req->from = nr->asm_next;
    req->count = end - nr->asm_next;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HMGET");
    mapq_argv_addf(&cmd, "%s:r:%s:%zu", x->d->ns, x->id, k);
    for (i = nr->asm_next; i < end; i++) {
        mapq_buf_reset(&in);
        subtask_inputs(nr, i, &in);
        subtask_key(x, k, i, in.data, in.len, key);
        mapq_argv_addlen(&cmd, key, MAPQ_KEY_LEN);
    }
    /* A subtask whose body was corrupt has its record under "#<index>":
     * its agent could not know its key. */
    for (i = nr->asm_next; i < end; i++)
        if (phase_get(nr, i) == MAPQ_PHASE_FAILED) {
            mapq_argv_addf(&cmd, "#%llu", (unsigned long long)i);
            req->nfailed++;
        }
    nr->asm_next = end;
    exec_send(x, PATH_READ, &cmd, assemble_reply, req)->gen_check = true;
    mapq_buf_release(&in);
}

static void
assemble_reply(redisReply *reply, const char *why, void *arg)
{
    struct asm_req *req = arg;
    struct exec *x = req->x;
    struct node_run *nr = &x->nodes[req->k];
    msgpack_packer pk;
    uint64_t j, f = 0;

    (void)why;
    x->calls--;
    if (x->ended || reply == NULL || req->gen != x->gen) {
        /* stale, or the reconcile after reconnecting assembles again */
    } else if (reply->type != REDIS_REPLY_ARRAY ||
               reply->elements != req->count + req->nfailed) {
        exec_fail(x, "cannot read results of node '%s': %s",
                  x->wf->nodes[req->k].name,
                  reply->str ? reply->str : "bad reply");
    } else {
        mapq_value_packer_init(&pk, &nr->asm_buf);
        for (j = 0; j < req->count; j++) {
            uint64_t i = req->from + j;
            const redisReply *rec = reply->element[j];

            if (phase_get(nr, i) == MAPQ_PHASE_FAILED &&
                rec->type != REDIS_REPLY_STRING)
                rec = reply->element[req->count + f];
            f += phase_get(nr, i) == MAPQ_PHASE_FAILED;
            if (phase_done(phase_get(nr, i)))
                take_record(nr, i, rec, &pk);
            else
                msgpack_pack_nil(&pk); /* dropped after early failure */
        }
        assemble_next(x, req->k);
    }
    free(req);
}

/* ---- ownership and reconcile ------------------------------------------ */

static void reconcile(struct exec *x);
static void recover_start(struct exec *x);
static void check_state(struct exec *x);

/* Why a driver lets go of an execution whose record vanished. */
#define RECORD_GONE                                                       \
    "Redis no longer has this execution's record: its data was lost (a "  \
    "Redis restart without persistence, a FLUSHALL, eviction under a "    \
    "maxmemory policy other than noeviction, or a failover to a replica " \
    "that had not received it)"

/* Lets go of x, whose record Redis lost: mapq run exits 3 saying so. */
static void
exec_lost(struct exec *x)
{
    x->redis_error = true;
    exec_detach(x, RECORD_GONE);
}

static void
own_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;

    x->calls--;
    x->owning = false;
    if (x->ended)
        return;
    if (reply == NULL)
        return; /* tried again once the connection is back */
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 1 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER) {
        exec_detach(x, reply->type == REDIS_REPLY_ERROR ? reply->str
                                                        : "bad reply to own");
        return;
    }
    (void)why;
    if (reply->element[0]->integer == 0) {
        exec_detach(x, "another scheduler drives it");
        return;
    }
    if (reply->element[0]->integer == -2) {
        exec_lost(x);
        return;
    }
    if (reply->element[0]->integer < 0) {
        exec_detach(x, "it has ended elsewhere");
        return;
    }
    /* Events of this owner's epoch only: a driver that lost the execution
     * meanwhile cannot take them. */
    free(x->evkey);
    x->evkey = mapq_xasprintf("%s:ev:%s:%lld", x->d->ns, x->id,
                              reply->element[0]->integer);
    x->driving = true;
    if (x->reconcile)
        reconcile(x);
    else if (x->recover_from[0] != '\0')
        recover_start(x);
    else
        advance(x);
    wait_events(x->d);
}

/* Starts executions whose driving waits for ownership. */
static void
start_pending(struct mapq_driver *d)
{
    struct mapq_argv cmd;
    struct exec *x;
    char lease[32];

    if (!mapq_redis_ready(d->cmd))
        return;
    snprintf(lease, sizeof(lease), "%d", d->lease_ms);
    TAILQ_FOREACH (x, &d->execs, entry) {
        if (x->ended || x->driving || x->owning)
            continue;
        x->owning = true;
        mapq_argv_init(&cmd);
        mapq_argv_add(&cmd, "FCALL");
        mapq_argv_add(&cmd, "mapq1_own");
        mapq_argv_add(&cmd, "0");
        mapq_argv_add(&cmd, d->ns);
        mapq_argv_add(&cmd, d->owner);
        mapq_argv_add(&cmd, lease);
        mapq_argv_add(&cmd, x->id);
        exec_send(x, PATH_OWN, &cmd, own_cb, x);
    }
}

/*
 * Reads the state of execution exec_id (x's own, or the one it recovers)
 * and, per node k, its output o:<k> and progress p:<k>: fn gets
 * [state, o:0, p:0, o:1, p:1, ...].
 */
static void
read_nodes(struct exec *x, const char *exec_id, mapq_redis_reply_fn *fn)
{
    struct mapq_argv cmd;
    size_t k;

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HMGET");
    mapq_argv_addf(&cmd, "%s:x:%s", x->d->ns, exec_id);
    mapq_argv_add(&cmd, "state");
    for (k = 0; k < x->wf->nnodes; k++) {
        mapq_argv_addf(&cmd, "o:%zu", k);
        mapq_argv_addf(&cmd, "p:%zu", k);
    }
    exec_send(x, PATH_READ, &cmd, fn, x)->gen_check = true;
}

/* Applies the execution's state and node outputs read by reconcile(). */
static void
reconcile_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;
    const redisReply *st;
    struct mapq_buf out;
    size_t k;

    (void)why;
    x->calls--;
    if (x->ended || reply == NULL)
        return; /* the next reconnect reconciles again */
    if (reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 2 * x->wf->nnodes + 1) {
        exec_fail(x, "cannot read the execution record: %s",
                  reply->type == REDIS_REPLY_ERROR ? reply->str : "bad reply");
        return;
    }
    st = reply->element[0];
    if (st->type != REDIS_REPLY_STRING) {
        exec_lost(x);
        return;
    }
    if (strcmp(st->str, "running") != 0 && strcmp(st->str, "submitted") != 0) {
        exec_detach(x, "it has ended elsewhere");
        return;
    }
    for (k = 0; k < x->wf->nnodes; k++) {
        const redisReply *o = reply->element[2 * k + 1];

        if (o->type != REDIS_REPLY_STRING)
            continue;
        mapq_buf_init(&out, 0);
        mapq_buf_append(&out, o->str, o->len);
        x->nodes[k].restored = true;
        if (node_set_output(x, k, &out) != 0)
            return;
    }
    advance(x);
}

/*
 * Rebuilds the view of x from Redis: nodes forget what they knew, node
 * outputs are read back, and nodes that start from here scan where their
 * subtasks stand instead of pushing them all.
 */
static void
reconcile(struct exec *x)
{
    size_t k;

    x->gen++;
    x->reconcile = false;
    x->scan_starts = true;
    for (k = 0; k < x->wf->nnodes; k++)
        node_reset(x, k);
    read_nodes(x, x->id, reconcile_cb);
}

/* ---- recovery ---------------------------------------------------------- */

/* True when a node's progress record (p:<k>) counts no failed, timed out
 * or aborted subtask. */
static bool
progress_clean(const redisReply *p)
{
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN];
    bool clean = false;
    int ph;

    if (p->type != REDIS_REPLY_STRING)
        return false;
    msgpack_unpacked_init(&u);
    if (mapq_value_unpack(p->str, p->len, &u, err) == MAPQ_OK &&
        u.data.type == MSGPACK_OBJECT_ARRAY &&
        u.data.via.array.size == 2 + MAPQ_PHASE_COUNT) {
        clean = true;
        for (ph = MAPQ_PHASE_FAILED; ph <= MAPQ_PHASE_ABORTED; ph++)
            if (u.data.via.array.ptr[2 + ph].type !=
                    MSGPACK_OBJECT_POSITIVE_INTEGER ||
                u.data.via.array.ptr[2 + ph].via.u64 != 0)
                clean = false;
    }
    msgpack_unpacked_destroy(&u);
    return clean;
}

/* Node k succeeded in the execution recovered, with output (taken): it is
 * RECOVERED whole, and its output stored in this execution too. */
static int
node_recover(struct exec *x, size_t k, struct mapq_buf *output)
{
    struct node_run *nr = &x->nodes[k];
    char field[32];

    if (node_set_output(x, k, output) != 0)
        return -1;
    nr->n =
        x->wf->nodes[k].is_map && nr->output_u.data.type == MSGPACK_OBJECT_ARRAY
            ? nr->output_u.data.via.array.size
            : 1;
    nr->finished = nr->n;
    nr->counts[MAPQ_PHASE_RECOVERED] = nr->n;
    snprintf(field, sizeof(field), "o:%zu", k);
    hset(x, field, nr->output.data, nr->output.len);
    write_node_progress(x, k);
    return 0;
}

static void
recover_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;
    struct mapq_buf out;
    size_t k;

    (void)why;
    x->calls--;
    if (x->ended || reply == NULL)
        return; /* the reconcile after reconnecting restarts it */
    if (reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 2 * x->wf->nnodes + 1 ||
        reply->element[0]->type != REDIS_REPLY_STRING) {
        exec_fail(x, "cannot recover execution %s: %s", x->recover_from,
                  reply->type == REDIS_REPLY_ERROR ? reply->str
                                                   : "no such execution");
        return;
    }
    for (k = 0; k < x->wf->nnodes; k++) {
        const redisReply *o = reply->element[2 * k + 1];

        /* Whole only when nothing of it failed (it may have succeeded
         * under a threshold): else its subtasks are recovered one by one
         * and the failed ones run again. */
        if (o->type != REDIS_REPLY_STRING ||
            !progress_clean(reply->element[2 * k + 2]))
            continue;
        mapq_buf_init(&out, 0);
        mapq_buf_append(&out, o->str, o->len);
        if (node_recover(x, k, &out) != 0)
            return;
    }
    advance(x);
}

/*
 * Starts an execution that recovers another: the nodes that succeeded
 * there are taken whole; the others push through mapq1_push_recover,
 * which takes each subtask's success from there.
 */
static void
recover_start(struct exec *x)
{
    read_nodes(x, x->recover_from, recover_cb);
}

struct own_req {
    struct mapq_driver *d;
    size_t n;
    char (*ids)[MAPQ_EXEC_ID_LEN + 1];
};

static void
renew_cb(redisReply *reply, const char *why, void *arg)
{
    struct own_req *req = arg;
    struct exec *x;
    size_t i;
    int delay_ms;

    /* A refusal or no reply: the next tick renews again, well within the
     * lease (unless refused() ended the executions: mapq run, NOPERM). */
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != req->n) {
        refused(req->d, NULL, PATH_RENEW, "FCALL mapq1_own (renewal)",
                reply ? (reply->str ? reply->str : "bad reply") : why,
                &delay_ms);
        goto out;
    }
    note_success(req->d, PATH_RENEW, "FCALL mapq1_own (renewal)");
    for (i = 0; i < req->n; i++) {
        x = find_exec(req->d, req->ids[i]);
        if (x == NULL || x->ended || !x->driving ||
            reply->element[i]->type != REDIS_REPLY_INTEGER)
            continue;
        if (reply->element[i]->integer == 0)
            exec_detach(x, "another scheduler took it over (this one did "
                           "not renew its lease in time)");
        else if (reply->element[i]->integer < 0)
            check_state(x); /* cancelled, or ended elsewhere */
    }
out:
    free(req->ids);
    free(req);
}

/* Renews the leases of the executions being driven, in one call. */
static void
renew_leases(struct mapq_driver *d)
{
    struct own_req *req = mapq_xcalloc(1, sizeof(*req));
    struct mapq_argv cmd;
    struct exec *x;
    size_t n = 0;

    TAILQ_FOREACH (x, &d->execs, entry)
        n += x->driving && !x->ended;
    if (n == 0) {
        free(req);
        return;
    }
    req->d = d;
    req->ids = mapq_xcalloc(n, sizeof(*req->ids));
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_own");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, d->ns);
    mapq_argv_add(&cmd, d->owner);
    mapq_argv_addf(&cmd, "%d", d->lease_ms);
    TAILQ_FOREACH (x, &d->execs, entry)
        if (x->driving && !x->ended) {
            memcpy(req->ids[req->n++], x->id, sizeof(x->id));
            mapq_argv_add(&cmd, x->id);
        }
    mapq_redis_command(d->cmd, CALL_TIMEOUT_MS, renew_cb, req, cmd.argc,
                       cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
}

/* ---- driver ------------------------------------------------------------ */

static void
state_cb(struct mapq_redis *r, bool up, void *arg)
{
    struct mapq_driver *d = arg;
    struct exec *x;
    bool again;

    if (!up) {
        if (r == d->blk) {
            /* A wait backing off after a refusal is redone on the new
             * connection instead. */
            evtimer_del(d->wait_ev);
            d->waiting = false;
        } else
            d->adopt_inflight = false;
        mapq_log(MAPQ_LOG_WARN, "lost the redis connection; reconnecting");
        return;
    }
    again = r == d->cmd ? d->was_up : d->blk_was_up;
    if (r == d->cmd)
        d->was_up = true;
    else
        d->blk_was_up = true;
    /* Replies lost with the old connection may hide pushes that never
     * happened, or events taken but never seen: rebuild from Redis. */
    TAILQ_FOREACH (x, &d->execs, entry) {
        if (r == d->cmd && x->ended && x->finish_pending)
            send_finish(x);
        else if (again && !x->ended && x->driving) {
            x->driving = false;
            x->reconcile = true;
        }
    }
    if (again)
        mapq_log(MAPQ_LOG_WARN, "reconnected to redis; rebuilding the state "
                                "of its executions");
    start_pending(d);
    wait_events(d);
}

static void
exec_state_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;
    size_t k;

    (void)why;
    x->calls--;
    x->checking = false;
    if (x->ended || reply == NULL || reply->type == REDIS_REPLY_ERROR)
        return;
    if (reply->type != REDIS_REPLY_STRING) {
        exec_lost(x);
        return;
    }
    if (strcmp(reply->str, "succeeded") == 0 ||
        strcmp(reply->str, "failed") == 0) {
        exec_detach(x, "it has ended elsewhere");
        return;
    }
    if (strcmp(reply->str, "cancelled") != 0)
        return;
    x->cancelled = true;
    for (k = 0; k < x->wf->nnodes; k++)
        if (x->nodes[k].state == NODE_RUNNING)
            abort_rest(&x->nodes[k]);
    exec_fail(x, "cancelled (mapq cancel)");
}

/* Notices an execution cancelled (mapq cancel) or ended elsewhere. */
static void
check_state(struct exec *x)
{
    struct mapq_argv cmd;

    if (x->checking)
        return;
    x->checking = true;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HGET");
    mapq_argv_addf(&cmd, "%s:x:%s", x->d->ns, x->id);
    mapq_argv_add(&cmd, "state");
    exec_send(x, PATH_STATE, &cmd, exec_state_cb, x);
}

static void adopt(struct mapq_driver *d);

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_driver *d = arg;
    struct exec *x, *next;
    const char *argv[] = {"FCALL", "mapq1_reap", "0", d->ns, "1000"};
    size_t lens[5], i;
    int64_t now = now_ms();

    (void)fd;
    (void)what;
    for (x = TAILQ_FIRST(&d->execs); x != NULL; x = next) {
        next = TAILQ_NEXT(x, entry);
        if (x->ended && x->calls == 0 && !x->finish_pending) {
            TAILQ_REMOVE(&d->execs, x, entry);
            exec_free(x);
        } else if (!x->ended && x->driving) {
            write_progress(x);
            check_state(x); /* one at a time: x->checking */
        }
    }
    if (!mapq_redis_ready(d->cmd))
        return;
    if (now - d->owned_ms >=
        (d->lease_ms / 3 < 1000 ? d->lease_ms / 3 : 1000)) {
        d->owned_ms = now;
        renew_leases(d);
    }
    if (d->serving && now - d->adopted_ms >= ADOPT_EVERY_MS) {
        d->adopted_ms = now;
        adopt(d);
    }
    for (i = 0; i < 5; i++)
        lens[i] = strlen(argv[i]);
    x = TAILQ_FIRST(&d->execs);
    if (x != NULL && !x->ended && now >= d->reap_next) {
        x->calls++;
        mapq_redis_command(d->cmd, CALL_TIMEOUT_MS, reap_cb, x, 5, argv, lens);
    }
    wait_events(d);
}

struct mapq_driver *
mapq_driver_new(struct event_base *base, const struct mapq_redis_url *url,
                const char *ns, int lease_ms)
{
    struct mapq_driver *d = mapq_xcalloc(1, sizeof(*d));
    struct timeval tv = {0, 500000};
    char rnd[MAPQ_EXEC_ID_LEN + 1], host[128] = "";
    int p;

    d->base = base;
    for (p = 0; p < PATH_COUNT; p++)
        mapq_retry_init(&d->retry[p], 100, 2000);
    TAILQ_INIT(&d->parked);
    d->wait_ev = evtimer_new(base, wait_again_cb, d);
    d->ns = mapq_xstrdup(ns);
    d->lease_ms = lease_ms > 0 ? lease_ms : MAPQ_OWNER_LEASE_MS;
    new_exec_id(rnd);
    d->wake_key = mapq_xasprintf("%s:wake:%s", ns, rnd);
    gethostname(host, sizeof(host) - 1);
    d->owner = mapq_xasprintf("%s/%ld/%s", host, (long)getpid(), rnd);
    mapq_buf_init(&d->wait_keys, 0);
    TAILQ_INIT(&d->execs);
    d->cmd = mapq_redis_new(base, url, "scheduler", state_cb, d);
    d->blk = mapq_redis_new(base, url, "scheduler-wait", state_cb, d);
    d->tick_ev = event_new(base, -1, EV_PERSIST, tick_cb, d);
    event_add(d->tick_ev, &tv);
    return d;
}

void
mapq_driver_free(struct mapq_driver *d)
{
    struct exec *x;

    if (d == NULL)
        return;
    d->stopping = true;
    mapq_redis_free(d->cmd);
    mapq_redis_free(d->blk);
    drop_parked(d);
    while ((x = TAILQ_FIRST(&d->execs)) != NULL) {
        TAILQ_REMOVE(&d->execs, x, entry);
        exec_free(x);
    }
    event_free(d->tick_ev);
    event_free(d->wait_ev);
    mapq_buf_release(&d->wait_keys);
    free(d->wake_key);
    free(d->owner);
    free(d->ns);
    free(d);
}

/* Adds an execution to drive; reconcile: it may have run before (adopted). */
static void
exec_add(struct mapq_driver *d, const char *id, struct mapq_workflow *wf,
         const struct mapq_buf *inputs, const struct mapq_exec_opts *o,
         bool reconcile, mapq_exec_done_fn *done, void *arg)
{
    struct exec *x = mapq_xcalloc(1, sizeof(*x));
    char err[MAPQ_ERR_LEN];
    size_t k;

    x->d = d;
    snprintf(x->id, sizeof(x->id), "%s", id);
    if (o != NULL) {
        x->overwrite = o->overwrite_cache;
        if (o->recover_from != NULL)
            snprintf(x->recover_from, sizeof(x->recover_from), "%s",
                     o->recover_from);
    }
    x->wf = wf;
    x->done = done;
    x->arg = arg;
    x->reconcile = reconcile;
    x->nodes = mapq_xcalloc(wf->nnodes + 1, sizeof(*x->nodes));
    for (k = 0; k < wf->nnodes; k++)
        msgpack_unpacked_init(&x->nodes[k].output_u);
    mapq_buf_init(&x->inputs, 0);
    mapq_buf_init(&x->output, 0);
    mapq_buf_append(&x->inputs, inputs->data, inputs->len);
    msgpack_unpacked_init(&x->inputs_u);
    TAILQ_INSERT_TAIL(&d->execs, x, entry);
    if (mapq_value_unpack(x->inputs.data, x->inputs.len, &x->inputs_u, err) !=
        MAPQ_OK) {
        exec_fail(x, "inputs unreadable: %s", err);
        return;
    }
    start_pending(d);
    /* Re-arm the wait so that it includes this execution's events. */
    wait_events(d);
}

void
mapq_driver_add(struct mapq_driver *d, const char *id, struct mapq_workflow *wf,
                const struct mapq_buf *inputs, const struct mapq_exec_opts *o,
                mapq_exec_done_fn *done, void *arg)
{
    exec_add(d, id, wf, inputs, o, false, done, arg);
}

struct cancel_req {
    mapq_cancel_done_fn *done;
    void *arg;
};

static void
cancel_cb(redisReply *reply, const char *why, void *arg)
{
    struct cancel_req *req = arg;

    if (reply == NULL)
        req->done(false, why, req->arg);
    else if (reply->type != REDIS_REPLY_INTEGER)
        req->done(false, reply->str ? reply->str : "bad reply", req->arg);
    else
        req->done(reply->integer >= 0, "no such execution", req->arg);
    free(req);
}

void
mapq_driver_cancel(struct mapq_driver *d, const char *id,
                   mapq_cancel_done_fn *done, void *arg)
{
    struct cancel_req *req = mapq_xcalloc(1, sizeof(*req));
    struct mapq_argv cmd;

    req->done = done;
    req->arg = arg;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_cancel");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, d->ns);
    mapq_argv_add(&cmd, id);
    call_send(d, NULL, PATH_CANCEL, d->cmd, CALL_TIMEOUT_MS, &cmd, cancel_cb,
              req);
}

bool
mapq_driver_idle(const struct mapq_driver *d)
{
    const struct exec *x;

    TAILQ_FOREACH (x, &d->execs, entry)
        if (x->calls > 0 || x->finish_pending)
            return false;
    return true;
}

bool
mapq_driver_refused(const struct mapq_driver *d)
{
    return d->nrefused > 0;
}

size_t
mapq_driver_progress(struct mapq_driver *d, const char *id,
                     struct mapq_node_progress *out, size_t max)
{
    struct exec *x = find_exec(d, id);
    size_t k;
    int p;

    if (x == NULL)
        return 0;
    for (k = 0; k < x->wf->nnodes && k < max; k++) {
        struct node_run *nr = &x->nodes[k];

        out[k].name = x->wf->nodes[k].name;
        out[k].state = node_state_names[nr->state];
        out[k].total = nr->n;
        for (p = 0; p < MAPQ_PHASE_COUNT; p++)
            out[k].counts[p] = nr->counts[p];
        out[k].counts[MAPQ_PHASE_RUNNING] = nr->inflight;
    }
    return x->wf->nnodes;
}

/* ---- service mode ------------------------------------------------------ */

struct served {
    struct mapq_driver *d;
    char id[MAPQ_EXEC_ID_LEN + 1];
    bool adopted; /* its driver died: it may have run before */
};

static void
served_done(const struct mapq_exec_outcome *o, void *arg)
{
    (void)arg;
    if (o->succeeded)
        mapq_log(MAPQ_LOG_INFO, "execution %s succeeded", o->id);
    else if (o->detached || o->redis_error)
        mapq_log(MAPQ_LOG_INFO, "execution %s left: %s", o->id, o->error);
    else
        mapq_log(MAPQ_LOG_INFO, "execution %s failed: %s", o->id, o->error);
}

static void
unloadable_cb(redisReply *reply, const char *why, void *arg)
{
    (void)arg;
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        mapq_log(MAPQ_LOG_WARN, "cannot record an execution failed: %s",
                 reply ? reply->str : why);
}

/*
 * Records an execution that cannot be driven (its workflow does not parse
 * here) as failed, so that it is not adopted again and again.
 */
static void
unloadable(struct mapq_driver *d, const char *id, const char *why)
{
    struct mapq_argv cmd;

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_finish");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, d->ns);
    mapq_argv_add(&cmd, id);
    mapq_argv_add(&cmd, d->owner);
    mapq_argv_add(&cmd, "failed");
    mapq_argv_add(&cmd, "error");
    mapq_argv_addf(&cmd, "the workflow cannot be driven: %.900s", why);
    call_send(d, NULL, PATH_FINISH, d->cmd, CALL_TIMEOUT_MS, &cmd,
              unloadable_cb, NULL);
}

static void
load_cb(redisReply *reply, const char *why, void *arg)
{
    struct served *s = arg;
    struct mapq_buf errors = MAPQ_BUF_INIT, inputs = MAPQ_BUF_INIT;
    struct mapq_exec_opts o = {0};
    struct mapq_workflow *wf;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 6 || reply->element[0]->type != REDIS_REPLY_STRING) {
        mapq_log(MAPQ_LOG_WARN, "cannot load submitted execution %s: %s", s->id,
                 reply == NULL                      ? why
                 : reply->type == REDIS_REPLY_ERROR ? reply->str
                                                    : "no such execution");
        goto out;
    }
    if (!s->adopted && reply->element[3]->type == REDIS_REPLY_STRING &&
        strcmp(reply->element[3]->str, "submitted") != 0) {
        mapq_log(MAPQ_LOG_INFO, "execution %s is already %s; skipping", s->id,
                 reply->element[3]->str);
        goto out;
    }
    if (find_exec(s->d, s->id) != NULL)
        goto out; /* adopted and popped at once: driven already */
    wf = mapq_workflow_parse(
        reply->element[0]->str, reply->element[0]->len,
        reply->element[1]->str ? reply->element[1]->str : "workflow", &errors);
    if (wf == NULL || reply->element[2]->type != REDIS_REPLY_STRING) {
        mapq_log(MAPQ_LOG_WARN, "execution %s: workflow invalid: %s", s->id,
                 errors.data ? errors.data : "no inputs");
        unloadable(s->d, s->id, errors.data ? errors.data : "no inputs");
        mapq_workflow_free(wf);
        goto out;
    }
    mapq_buf_append(&inputs, reply->element[2]->str, reply->element[2]->len);
    o.overwrite_cache = reply->element[4]->type == REDIS_REPLY_STRING &&
                        strcmp(reply->element[4]->str, "1") == 0;
    if (reply->element[5]->type == REDIS_REPLY_STRING)
        o.recover_from = reply->element[5]->str;
    mapq_log(MAPQ_LOG_INFO, "%s execution %s (%s)",
             s->adopted ? "adopting" : "driving", s->id, wf->name);
    exec_add(s->d, s->id, wf, &inputs, &o, s->adopted, served_done, NULL);
out:
    mapq_buf_release(&errors);
    mapq_buf_release(&inputs);
    free(s);
}

static void
load_exec(struct mapq_driver *d, const char *id, size_t len, bool adopted)
{
    struct served *s = mapq_xcalloc(1, sizeof(*s));
    struct mapq_argv cmd;

    s->d = d;
    s->adopted = adopted;
    snprintf(s->id, sizeof(s->id), "%.*s", (int)len, id);
    if (find_exec(d, s->id) != NULL) {
        free(s);
        return;
    }
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HMGET");
    mapq_argv_addf(&cmd, "%s:x:%s", d->ns, s->id);
    mapq_argv_add(&cmd, "workflow");
    mapq_argv_add(&cmd, "file");
    mapq_argv_add(&cmd, "inputs");
    mapq_argv_add(&cmd, "state");
    mapq_argv_add(&cmd, "overwrite");
    mapq_argv_add(&cmd, "recover_from");
    call_send(d, NULL, PATH_LOAD, d->cmd, CALL_TIMEOUT_MS, &cmd, load_cb, s);
}

static void
serve_one(struct mapq_driver *d, const char *id, size_t len)
{
    load_exec(d, id, len, false);
}

static void
adopt_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_driver *d = arg;
    size_t i;

    d->adopt_inflight = false;
    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY) {
        mapq_log(MAPQ_LOG_WARN, "cannot look for executions to adopt: %s",
                 reply ? (reply->str ? reply->str : "bad reply") : why);
        return;
    }
    for (i = 0; i < reply->elements; i++)
        if (reply->element[i]->type == REDIS_REPLY_STRING)
            load_exec(d, reply->element[i]->str, reply->element[i]->len, true);
}

/* Takes over executions whose driver stopped renewing its lease. */
static void
adopt(struct mapq_driver *d)
{
    struct mapq_argv cmd;

    if (d->adopt_inflight)
        return;
    d->adopt_inflight = true;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_adopt");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, d->ns);
    mapq_argv_add(&cmd, d->owner);
    mapq_argv_addf(&cmd, "%d", d->lease_ms);
    mapq_argv_addf(&cmd, "%d", ADOPT_MAX);
    call_send(d, NULL, PATH_ADOPT, d->cmd, CALL_TIMEOUT_MS, &cmd, adopt_cb, d);
}

void
mapq_driver_serve(struct mapq_driver *d)
{
    d->serving = true;
    wait_events(d);
}
