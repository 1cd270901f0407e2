/*
 * cmd_run.c - mapq run, mapq submit and mapq recover: create an execution
 * and either hand it to the schedulers (submit) or drive it on a loop of
 * its own to the end, with a progress bar and Ctrl-C, and report it.
 *
 * Owns the struct run of the one execution this process follows, its
 * state (enum run_state) and its loop; the driver (mapq_driver.h) owns the
 * execution itself. Once the execution ended, the loop stops when the
 * driver says it is idle (its final record writes are acknowledged), or
 * when the wait for them is over.
 */
#include <event2/event.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "cli.h"
#include "mapq_alloc.h"
#include "mapq_blob.h"
#include "mapq_driver.h"
#include "mapq_json.h"
#include "mapq_keys.h"
#include "mapq_local.h"
#include "mapq_log.h"
#include "mapq_seal.h"
#include "mapq_spool.h"

/* Once the execution ended, how long the loop waits at most for its final
 * record writes: counted from the end, and again while Redis refuses one
 * (OOM, ...). Without a connection, the writes are left to a scheduler,
 * which finishes the record after the lease. */
#define FINISH_WAIT_MS 5000
/* --durable: how long the records of a new execution may wait for a
 * replica. */
#define DURABLE_WAIT_MS 5000

/* The progress bar draws at most this many nodes. */
#define MAX_NODES_SHOWN 64

/*
 * Where a followed execution is (docs/ARCHITECTURE.md has the table):
 * DRIVING until it ends (FINISHING) or Ctrl-C asks to cancel it
 * (CANCELLING); STOPPED once the loop must end.
 */
enum run_state {
    RUN_DRIVING,    /* the driver runs the execution */
    RUN_CANCELLING, /* Ctrl-C: the cancel is sent, its answer awaited */
    RUN_FINISHING,  /* ended: the final record writes are awaited */
    RUN_STOPPED,    /* the loop is told to stop */
    RUN_NSTATES,
};

static const bool legal[RUN_NSTATES][RUN_NSTATES] = {
    [RUN_DRIVING] = {[RUN_CANCELLING] = true, [RUN_FINISHING] = true},
    [RUN_CANCELLING] = {[RUN_STOPPED] = true},
    [RUN_FINISHING] = {[RUN_CANCELLING] = true, [RUN_STOPPED] = true},
};

static const char *const state_names[RUN_NSTATES] = {"driving", "cancelling",
                                                     "finishing", "stopped"};

struct run {
    struct event_base *base;
    struct mapq_driver *driver;
    struct mapq_cli_opts *o;
    char id[MAPQ_EXEC_ID_LEN + 1];
    enum run_state state; /* changed by run_set_state() only */
    int exit_code;
    bool tty;
    bool resized;     /* the terminal's size changed since the last draw */
    size_t drawn;     /* lines of the last draw, to redraw over */
    bool ended;       /* final[] holds the nodes as the execution ended */
    bool detached;    /* another scheduler drives it now */
    bool redis_error; /* ended because of Redis: exits 3 */
    bool cancelled;   /* by mapq cancel (exits 1) or Ctrl-C (130) */
    struct mapq_buf output;
    redisContext *pages; /* reads the paged lists of output (run_pages()) */
    char *error;
    char *workflow; /* its name, for --json: the driver owns the model */
    /* created as its record holds it, finished as this process saw it
     * end; -1: not yet */
    int64_t created_ms, finished_ms;
    struct mapq_redis_url url;
    struct event *finish_ev; /* FINISHING: the end of the wait */
    bool refused_seen;       /* Redis refused a write at the last check */
    /* The nodes as they ended, taken when the execution ended: the driver
     * may free the execution before the report is written. */
    struct mapq_node_progress *final; /* nfinal of them */
    char **final_names;               /* their names, owned */
    size_t nfinal;
};

/* Moves r to state to, which must be legal from where it is; the loop
 * stops (after the callbacks now due) with RUN_STOPPED. */
static void
run_set_state(struct run *r, enum run_state to)
{
    mapq_assert(legal[r->state][to]);
    mapq_log(MAPQ_LOG_DEBUG, "execution %s: %s -> %s", r->id,
             state_names[r->state], state_names[to]);
    r->state = to;
    if (to == RUN_STOPPED)
        event_base_loopexit(r->base, NULL);
}

/* Milliseconds since the epoch, as records hold times. */
static int64_t
wall_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

/* Node progress of r, *n nodes: live while it runs, the copy taken at its
 * end after. Caller frees; the names are borrowed. */
static struct mapq_node_progress *
run_progress(struct run *r, size_t *n)
{
    struct mapq_node_progress *p;

    *n = r->ended ? r->nfinal : mapq_driver_progress(r->driver, r->id, NULL, 0);
    p = mapq_xcalloc(*n + 1, sizeof(*p));
    if (r->ended)
        memcpy(p, r->final, *n * sizeof(*p));
    else
        *n = mapq_driver_progress(r->driver, r->id, p, *n);
    return p;
}

/* (Re)starts the wait for the final record writes: FINISH_WAIT_MS. */
static void
finish_wait(struct run *r)
{
    struct timeval wait = {FINISH_WAIT_MS / 1000,
                           (FINISH_WAIT_MS % 1000) * 1000};

    evtimer_add(r->finish_ev, &wait);
}

static void
run_done(const struct mapq_exec_outcome *out, void *arg)
{
    struct run *r = arg;
    size_t k;

    r->final = run_progress(r, &r->nfinal);
    r->final_names = mapq_xcalloc(r->nfinal + 1, sizeof(*r->final_names));
    for (k = 0; k < r->nfinal; k++) {
        r->final_names[k] = mapq_xstrdup(r->final[k].name);
        r->final[k].name = r->final_names[k];
    }
    r->ended = true;
    r->finished_ms = wall_ms();
    r->cancelled = r->cancelled || out->cancelled;
    if (r->state != RUN_DRIVING)
        return; /* cancelled by Ctrl-C: exits 130 once that is recorded */
    r->exit_code = out->succeeded                      ? MAPQ_EXIT_OK
                   : out->detached || out->redis_error ? MAPQ_EXIT_INFRA
                                                       : MAPQ_EXIT_FAILED;
    r->detached = out->detached;
    r->redis_error = out->redis_error;
    if (out->succeeded)
        mapq_buf_append(&r->output, out->output->data, out->output->len);
    else
        r->error = mapq_xstrdup(out->error);
    /* The loop stops once the final record writes are acknowledged. */
    run_set_state(r, RUN_FINISHING);
    finish_wait(r);
}

/*
 * The wait for the final record writes is over: stop without them, unless
 * Redis refuses one (OOM, ...) or did at the last check: it is reachable
 * and the driver sends it again until it is taken, so wait again.
 */
static void
finish_cb(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;
    bool refused;

    (void)fd;
    (void)what;
    if (r->state != RUN_FINISHING)
        return;
    refused = mapq_driver_refused(r->driver);
    if (refused || r->refused_seen)
        finish_wait(r);
    else
        run_set_state(r, RUN_STOPPED);
    r->refused_seen = refused;
}

/* mapq_driver_on_idle(): the final record writes are acknowledged. */
static void
idle_cb(void *arg)
{
    struct run *r = arg;

    if (r->state == RUN_FINISHING)
        run_set_state(r, RUN_STOPPED);
}

/*
 * Draws the progress on stderr, a terminal: a line per node, redrawn in
 * place over the r->drawn lines of the last draw (final: left for what
 * follows). A line takes at most the terminal's width less one column: one
 * that fills the last column leaves the cursor there on some terminals and
 * on the next row on others, which the redraw cannot tell. As many lines
 * as the terminal has rows above the cursor, the rest counted in one.
 * After a resize the old lines are cleared first: a terminal may have
 * rewrapped them.
 */
static void
draw_progress(struct run *r, bool final)
{
    struct mapq_node_progress *p;
    size_t n, k, shown;
    int width, rows;
    char line[512];

    if (!r->tty || r->o->quiet)
        return;
    p = run_progress(r, &n);
    width = mapq_cli_term_width(2) - 1;
    rows = mapq_cli_term_rows(2) - 1;
    shown = n < MAX_NODES_SHOWN ? n : MAX_NODES_SHOWN;
    if (rows >= 2 && shown > (size_t)rows)
        shown = (size_t)rows - 1;
    if (r->drawn > 0)
        fprintf(stderr, "\033[%zuA", r->drawn);
    if (r->resized)
        fputs("\033[J", stderr);
    r->resized = false;
    for (k = 0; k < shown; k++) {
        mapq_cli_progress_line(&p[k], width, line, sizeof(line));
        fprintf(stderr, "\033[2K%s\n", line);
    }
    if (shown < n) {
        snprintf(line, sizeof(line), "(%zu more nodes)", n - shown);
        fprintf(stderr, "\033[2K%.*s\n", width > 0 ? width : 0, line);
    }
    r->drawn = final ? 0 : shown + (shown < n);
    free(p);
}

static void
progress_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    draw_progress(arg, false);
}

/* SIGWINCH: the terminal's size changed; the progress is laid out again. */
static void
winch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;

    (void)fd;
    (void)what;
    r->resized = true;
    draw_progress(r, false);
}

static void
cancelled_cb(bool ok, const char *why, void *arg)
{
    struct run *r = arg;

    if (!ok)
        fprintf(stderr, "mapq: cannot cancel execution %s: %s\n", r->id, why);
    if (r->state == RUN_CANCELLING)
        run_set_state(r, RUN_STOPPED);
}

/*
 * Ctrl-C: cancel the execution (its queued subtasks are dropped, agents
 * kill running ones within a second), then stop. A second Ctrl-C stops at
 * once.
 */
static void
interrupt_cb(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;

    (void)fd;
    (void)what;
    r->exit_code = MAPQ_EXIT_CANCELLED;
    if (r->state == RUN_CANCELLING) {
        run_set_state(r, RUN_STOPPED);
    } else if (r->state != RUN_STOPPED) {
        run_set_state(r, RUN_CANCELLING);
        mapq_driver_cancel(r->driver, r->id, cancelled_cb, r);
    }
}

/* A connection of its own to read the pages of the output, made when it
 * is first needed (the one that created the execution may have been idle
 * for the whole run); NULL when Redis cannot be reached, which the reads
 * then report. */
static redisContext *
run_pages(struct run *r)
{
    char err[MAPQ_ERR_LEN];

    if (r->pages == NULL)
        r->pages = mapq_redis_connect_sync(&r->url, 5000, err);
    return r->pages;
}

/* What --json says the execution became. */
static const char *
run_status(const struct run *r)
{
    if (r->exit_code == MAPQ_EXIT_OK)
        return "succeeded";
    return r->exit_code == MAPQ_EXIT_CANCELLED || r->cancelled ? "cancelled"
                                                               : "failed";
}

/*
 * --json, before anything is printed: an output that cannot be written as
 * JSON fails the run, never reported as a success without its output. It
 * is checked whole here, then written page by page.
 */
static void
check_output(struct run *r)
{
    struct mapq_cli_summary s = {.output = r->output.data,
                                 .output_len = r->output.len};
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    rc = mapq_cli_write_summary(run_pages(r), r->o->ns, &s, NULL, err);
    if (rc == MAPQ_OK)
        return;
    r->exit_code = rc == MAPQ_EREDIS ? MAPQ_EXIT_INFRA : MAPQ_EXIT_FAILED;
    r->redis_error = rc == MAPQ_EREDIS;
    free(r->error);
    r->error = mapq_xasprintf("the output cannot be written as JSON: %s", err);
}

/* --json: the execution's summary (cli_json.c) on one line of stdout. */
static void
print_summary(struct run *r)
{
    size_t n;
    struct mapq_node_progress *p = run_progress(r, &n);
    struct mapq_cli_summary s;
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    if (r->finished_ms < 0)
        r->finished_ms = wall_ms();
    memset(&s, 0, sizeof(s));
    s.execution = r->id;
    s.workflow = r->workflow;
    s.status = run_status(r);
    s.created_ms = r->created_ms;
    s.finished_ms = r->finished_ms;
    s.duration_ms = r->created_ms >= 0 && r->finished_ms > r->created_ms
                        ? r->finished_ms - r->created_ms
                        : 0;
    s.nodes = p;
    s.nnodes = n;
    if (r->exit_code == MAPQ_EXIT_OK) {
        s.output = r->output.data;
        s.output_len = r->output.len;
    } else {
        s.error = r->error != NULL ? r->error : s.status;
    }
    rc = mapq_cli_write_summary(run_pages(r), r->o->ns, &s, stdout, err);
    if (rc != MAPQ_OK) {
        /* Checked a moment ago: Redis or stdout failed since. */
        fprintf(stderr, "mapq: the output cannot be written: %s\n", err);
        r->exit_code = rc == MAPQ_EREDIS || rc == MAPQ_EIO ? MAPQ_EXIT_INFRA
                                                           : MAPQ_EXIT_FAILED;
    }
    free(p);
}

/*
 * Prints how execution r->id ended: its output, or why it did not; with
 * --json the summary instead of the output, and before the reason when
 * the execution ended here (failed or cancelled). An infrastructure error
 * (exit 3) prints nothing on stdout.
 */
static void
report(struct run *r)
{
    if (r->o->json && r->exit_code == MAPQ_EXIT_OK)
        check_output(r);
    if (r->o->json && !r->detached && !r->redis_error &&
        (r->exit_code == MAPQ_EXIT_OK || r->exit_code == MAPQ_EXIT_FAILED ||
         r->exit_code == MAPQ_EXIT_CANCELLED))
        print_summary(r);
    if (r->exit_code == MAPQ_EXIT_OK) {
        if (!r->o->json)
            r->exit_code = mapq_cli_print_output(
                run_pages(r), r->o->ns, r->output.data, r->output.len, 0);
    } else if (r->exit_code == MAPQ_EXIT_CANCELLED) {
        fprintf(stderr, "mapq: execution %s cancelled\n", r->id);
    } else if (r->redis_error) {
        fprintf(stderr, "mapq: execution %s: %s\n", r->id, r->error);
    } else if (r->detached) {
        fprintf(stderr,
                "mapq: execution %s: stopped following it: %s; see mapq "
                "status %s\n",
                r->id, r->error, r->id);
    } else {
        fprintf(stderr, "mapq: execution %s failed: %s\n", r->id,
                r->error != NULL ? r->error : "the output cannot be written");
    }
}

/*
 * Drives execution r->id of wf and inputs (both taken) on a loop of its own
 * until it ends, with the progress bar and Ctrl-C, then reports. Returns
 * the exit status.
 */
static int
follow(struct run *r, struct mapq_workflow *wf, struct mapq_buf *inputs,
       const struct mapq_exec_opts *xo)
{
    struct timeval tick = {0, 200000};
    struct event *ev_int, *ev_tick, *ev_winch;

    r->tty = isatty(2) != 0;
    r->base = event_base_new();
    r->driver = mapq_driver_new(r->base, &r->url, r->o->ns, r->o->lease_ms);
    mapq_driver_set_retention(r->driver, r->o->retention_ms);
    mapq_driver_set_seal(r->driver, xo->seal);
    ev_int = evsignal_new(r->base, SIGINT, interrupt_cb, r);
    event_add(ev_int, NULL);
    ev_tick = event_new(r->base, -1, EV_PERSIST, progress_cb, r);
    event_add(ev_tick, &tick);
    ev_winch = evsignal_new(r->base, SIGWINCH, winch_cb, r);
    event_add(ev_winch, NULL);
    r->finish_ev = evtimer_new(r->base, finish_cb, r);
    mapq_driver_on_idle(r->driver, idle_cb, r);
    r->workflow = mapq_xstrdup(wf->name);
    mapq_driver_add(r->driver, r->id, wf, inputs, xo, run_done, r);
    event_base_dispatch(r->base);
    draw_progress(r, true);
    report(r);
    event_free(ev_winch);
    event_free(ev_tick);
    event_free(ev_int);
    event_free(r->finish_ev);
    mapq_driver_free(r->driver);
    event_base_free(r->base);
    return r->exit_code;
}

/*
 * mapq recover: the workflow and inputs of execution o->target, read back
 * from its record, which must have ended, its priority and store (each
 * left alone when it had none), and the blobs its inputs name.
 */
static int
load_recovered(const struct mapq_cli_opts *o, redisContext *c,
               struct mapq_workflow **wf, char **text, size_t *textlen,
               struct mapq_buf *inputs, int *priority, struct mapq_store *store,
               struct mapq_buf *blobs)
{
    struct mapq_buf errors = MAPQ_BUF_INIT;
    char *key = mapq_key_exec(o->ns, o->target);
    redisReply *r = redisCommand(
        c, "HMGET %s workflow file inputs state priority store blobs", key);
    char err[MAPQ_ERR_LEN];
    int rc = MAPQ_EXIT_OK;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 7) {
        fprintf(stderr, "mapq recover: redis: %s\n",
                r && r->str ? r->str : c->errstr);
        rc = MAPQ_EXIT_INFRA;
    } else if (r->element[0]->type != REDIS_REPLY_STRING ||
               r->element[2]->type != REDIS_REPLY_STRING ||
               r->element[3]->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "mapq recover: no execution '%s'\n", o->target);
        rc = MAPQ_EXIT_FAILED;
    } else if (strcmp(r->element[3]->str, "running") == 0 ||
               strcmp(r->element[3]->str, "submitted") == 0) {
        fprintf(stderr,
                "mapq recover: execution %s is still %s; wait for it, or "
                "mapq cancel it first\n",
                o->target, r->element[3]->str);
        rc = MAPQ_EXIT_USAGE;
    } else {
        *textlen = r->element[0]->len;
        *text = mapq_xmemdup(r->element[0]->str, *textlen);
        *wf = mapq_workflow_parse(*text, *textlen,
                                  r->element[1]->type == REDIS_REPLY_STRING
                                      ? r->element[1]->str
                                      : "workflow",
                                  &errors);
        if (*wf == NULL) {
            fprintf(stderr, "mapq recover: its workflow no longer parses: %s",
                    errors.data ? errors.data : "\n");
            rc = MAPQ_EXIT_FAILED;
        } else {
            int p = r->element[4]->type == REDIS_REPLY_STRING
                        ? atoi(r->element[4]->str)
                        : 0;

            mapq_buf_append(inputs, r->element[2]->str, r->element[2]->len);
            if (r->element[6]->type == REDIS_REPLY_STRING &&
                r->element[6]->len % MAPQ_BLOB_RAW_LEN == 0)
                mapq_buf_append(blobs, r->element[6]->str, r->element[6]->len);
            if (p >= 1 && p <= MAPQ_PRIORITY_MAX)
                *priority = p;
            /* Its files go where the first run's went. */
            if (r->element[5]->type == REDIS_REPLY_STRING &&
                mapq_store_parse(r->element[5]->str, store, err) != MAPQ_OK)
                mapq_log(MAPQ_LOG_WARN, "execution %s: %s; files go to Redis",
                         o->target, err);
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    mapq_buf_release(&errors);
    free(key);
    return rc;
}

/* submit --json: the summary of execution r->id of wf, just submitted:
 * every node waiting. */
static int
print_submitted(const struct run *r, const struct mapq_workflow *wf)
{
    struct mapq_node_progress *p = mapq_xcalloc(wf->nnodes + 1, sizeof(*p));
    struct mapq_cli_summary s;
    char err[MAPQ_ERR_LEN];
    size_t k;
    int rc = MAPQ_EXIT_OK;

    for (k = 0; k < wf->nnodes; k++) {
        p[k].name = wf->nodes[k].name;
        p[k].state = "waiting";
    }
    memset(&s, 0, sizeof(s));
    s.execution = r->id;
    s.workflow = wf->name;
    s.status = "submitted";
    s.created_ms = r->created_ms;
    s.finished_ms = -1;
    s.duration_ms = 0;
    s.nodes = p;
    s.nnodes = wf->nnodes;
    if (mapq_cli_write_summary(NULL, r->o->ns, &s, stdout, err) != MAPQ_OK) {
        fprintf(stderr, "mapq: %s\n", err);
        rc = MAPQ_EXIT_INFRA;
    }
    free(p);
    return rc;
}

/* mapq submit: hands execution r->id of wf to the schedulers
 * (P:submitted), and prints its id (--json: its summary). */
static int
submit(redisContext *c, const struct run *run, const struct mapq_workflow *wf)
{
    const struct mapq_cli_opts *o = run->o;
    char *key = mapq_key_submitted(o->ns);
    redisReply *r = redisCommand(c, "RPUSH %s %s", key, run->id);
    char err[MAPQ_ERR_LEN];
    int rc = MAPQ_EXIT_OK;

    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        fprintf(stderr, "mapq: cannot submit execution %s: %s\n", run->id,
                r != NULL && r->str != NULL ? r->str : c->errstr);
        rc = MAPQ_EXIT_INFRA;
    } else if (mapq_redis_wait_sync(c, &run->url, DURABLE_WAIT_MS, err) !=
               MAPQ_OK) {
        fprintf(stderr, "mapq: cannot submit execution %s: %s\n", run->id, err);
        rc = MAPQ_EXIT_INFRA;
    } else if (o->json) {
        rc = print_submitted(run, wf);
    } else {
        printf("%s\n", run->id);
    }
    if (r != NULL)
        freeReplyObject(r);
    free(key);
    return rc;
}

enum run_mode {
    RUN,     /* mapq run: create, drive and wait */
    SUBMIT,  /* mapq submit: create and hand over */
    RECOVER, /* mapq recover: create from an ended execution, drive, wait */
};

/* The one exit path releases everything the modes may have taken, in
 * reverse order; the steps between are short and shared by the three. */
static int
run_mode(struct mapq_cli_opts *o, enum run_mode mode)
{
    struct mapq_workflow *wf = NULL;
    struct mapq_buf inputs = MAPQ_BUF_INIT, held = MAPQ_BUF_INIT;
    struct mapq_local *local = NULL;
    struct mapq_exec_opts xo = {0};
    struct mapq_bind_pages pages;
    struct mapq_spool *spool = NULL;
    struct mapq_seal *seal = NULL;
    struct mapq_store recovered_store = {MAPQ_STORE_REDIS, "", ""};
    struct run r;
    char *text = NULL, local_url[512], err[MAPQ_ERR_LEN];
    char holder[MAPQ_EXEC_ID_LEN + 3];
    const char *redis = o->redis;
    size_t textlen = 0, k;
    redisContext *c = NULL;
    int rc;

    memset(&r, 0, sizeof(r));
    r.o = o;
    r.created_ms = r.finished_ms = -1;
    rc = mapq_cli_seal(o, &seal);
    if (rc != MAPQ_EXIT_OK)
        goto out;
    xo.seal = seal;
    /* The id is chosen first: the blobs of its inputs are held for it, and
     * long input lists are spooled to disk as pages of it, written to Redis
     * with the execution. */
    mapq_exec_new_id(r.id);
    snprintf(holder, sizeof(holder), "x:%s", r.id);
    if (mode != RECOVER) {
        spool = mapq_spool_new(err);
        if (spool == NULL) {
            fprintf(stderr, "mapq: %s\n", err);
            rc = MAPQ_EXIT_INFRA;
            goto out;
        }
        pages.exec = r.id;
        pages.spool = spool;
        rc = mapq_cli_load_workflow(o, &wf, &text, &textlen, &pages, &inputs);
        if (rc != MAPQ_EXIT_OK)
            goto out;
    }
    if (redis == NULL) {
        if (mode != RUN) {
            fprintf(stderr,
                    "mapq %s: needs --redis URL or MAPQ_REDIS_URL (a shared "
                    "Redis)\n",
                    o->cmd);
            rc = MAPQ_EXIT_USAGE;
            goto out;
        }
        /* The local agents check what this process signs, and their
         * Redis has no password. */
        if (o->secret_file != NULL)
            setenv("MAPQ_SECRET_FILE", o->secret_file, 1);
        /* ... and may use the run's shared directory. */
        if (o->store.kind != MAPQ_STORE_REDIS) {
            char store[MAPQ_STORE_URI_MAX + 1];

            mapq_store_format(&o->store, store, sizeof(store));
            setenv("MAPQ_STORE", store, 1);
        }
        unsetenv("MAPQ_REDIS_PASSWORD");
        local = mapq_local_start(o->agents, 1, o->ns, local_url,
                                 sizeof(local_url), err);
        if (local == NULL) {
            fprintf(stderr, "mapq: %s\n", err);
            rc = MAPQ_EXIT_INFRA;
            goto out;
        }
        redis = local_url;
    }
    c = mapq_cli_connect_url(redis, local != NULL ? NULL : o, &r.url);
    if (c == NULL) {
        rc = MAPQ_EXIT_INFRA;
        goto out;
    }
    if (mode == RECOVER) {
        rc = load_recovered(o, c, &wf, &text, &textlen, &inputs, &xo.priority,
                            &recovered_store, &held);
        if (rc != MAPQ_EXIT_OK)
            goto out;
        xo.recover_from = o->target;
        if (mapq_blob_hold(c, o->ns, holder, MAPQ_BLOB_GRACE_MS,
                           (const unsigned char *)held.data,
                           held.len / MAPQ_BLOB_RAW_LEN, NULL,
                           err) != MAPQ_OK) {
            fprintf(stderr, "mapq: cannot hold the inputs' files: %s\n", err);
            rc = MAPQ_EXIT_INFRA;
            goto out;
        }
    }
    if (mode != RECOVER) {
        rc = mapq_cli_store_files(c, o, wf, r.id, &inputs, &held);
        if (rc != MAPQ_EXIT_OK)
            goto out;
    }
    xo.blobs = &held;
    xo.lease_ms = o->lease_ms;
    xo.overwrite_cache = o->overwrite_cache;
    xo.store = mode == RECOVER && !o->store_set ? &recovered_store : &o->store;
    xo.pages = spool;
    if (o->priority > 0)
        xo.priority = o->priority;
    xo.created_ms = r.created_ms = wall_ms();
    if (mapq_exec_create(c, o->ns, wf, text, textlen, &inputs, &xo, r.id,
                         err) != MAPQ_OK ||
        mapq_redis_wait_sync(c, &r.url, DURABLE_WAIT_MS, err) != MAPQ_OK) {
        fprintf(stderr, "mapq: cannot create the execution: %s\n", err);
        rc = MAPQ_EXIT_INFRA;
        goto out;
    }
    /* Held while the execution exists from now on, not for the grace
     * beyond: should this fail, they are kept that much longer. */
    if (held.len > 0 &&
        mapq_blob_hold(c, o->ns, holder, 0, (const unsigned char *)held.data,
                       held.len / MAPQ_BLOB_RAW_LEN, NULL, err) != MAPQ_OK)
        mapq_log(MAPQ_LOG_WARN, "execution %s: %s", r.id, err);
    /* The pages are in Redis now. */
    mapq_spool_free(spool);
    spool = NULL;
    xo.pages = NULL;
    if (mode == SUBMIT) {
        rc = submit(c, &r, wf);
        goto out;
    }
    if (!o->quiet && !o->json)
        fprintf(stderr, "mapq: execution %s\n", r.id);
    rc = follow(&r, wf, &inputs, &xo);
    wf = NULL; /* owned by the driver */
out:
    if (c != NULL)
        redisFree(c);
    mapq_spool_free(spool);
    mapq_local_stop(local);
    mapq_seal_free(seal);
    mapq_workflow_free(wf);
    mapq_buf_release(&inputs);
    mapq_buf_release(&held);
    mapq_buf_release(&r.output);
    if (r.pages != NULL)
        redisFree(r.pages);
    for (k = 0; k < r.nfinal; k++)
        free(r.final_names[k]);
    free(r.final_names);
    free(r.final);
    free(r.error);
    free(r.workflow);
    free(text);
    return rc;
}

static int
cmd_run(struct mapq_cli_opts *o)
{
    return run_mode(o, RUN);
}

static int
cmd_submit(struct mapq_cli_opts *o)
{
    return run_mode(o, SUBMIT);
}

static int
cmd_recover(struct mapq_cli_opts *o)
{
    return run_mode(o, RECOVER);
}

const struct mapq_cmd_entry mapq_cmd_run_entry = {
    .name = "run",
    .usage = "run WORKFLOW [--input N=V]... [--inputs FILE] [--redis URL]\n"
             "                [--agents N] [--lease DUR] [--overwrite-cache] "
             "[--json]\n"
             "                [--quiet] [--priority N] [--retention DUR]\n"
             "                [--store URI] [--store-max SIZE]",
    .operands = MAPQ_CMD_WORKFLOW,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_run,
};

const struct mapq_cmd_entry mapq_cmd_submit_entry = {
    .name = "submit",
    .usage = "submit WORKFLOW [--input N=V]... [--inputs FILE] [--redis URL]\n"
             "                [--overwrite-cache] [--priority N] [--json]\n"
             "                [--store URI] [--store-max SIZE]",
    .operands = MAPQ_CMD_WORKFLOW,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_submit,
};

const struct mapq_cmd_entry mapq_cmd_recover_entry = {
    .name = "recover",
    .usage = "recover EXEC [--redis URL] [--json] [--quiet] [--retention DUR]",
    .operands = MAPQ_CMD_EXEC,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_recover,
};
