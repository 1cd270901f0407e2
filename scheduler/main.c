/*
 * main.c - the mapq command line: run, submit, scheduler, status, result,
 * validate.
 *
 * Exit status (SPEC section 6): 0 succeeded, 1 the execution failed, 2 usage
 * or validation error (nothing submitted), 3 Redis unreachable or another
 * infrastructure error, 130 cancelled by Ctrl-C.
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_cache.h"
#include "mapq_driver.h"
#include "mapq_inspect.h"
#include "mapq_json.h"
#include "mapq_local.h"
#include "mapq_log.h"
#include "mapq_units.h"
#include "mapq_value.h"
#include "mapq_workflow.h"

#define EXIT_OK            0
#define EXIT_FAILED        1
#define EXIT_USAGE         2
#define EXIT_INFRA         3
#define EXIT_CANCELLED     130
#define MAX_ASSIGNS        256
#define CONNECT_TIMEOUT_MS 3000
#define REDIS_DEFAULT_URL  "redis://127.0.0.1:6379"

static const char usage[] =
    "usage: mapq run WORKFLOW [--input N=V]... [--inputs FILE] [--redis URL]\n"
    "                [--agents N] [--lease DUR] [--overwrite-cache] [--json]\n"
    "                [--quiet]\n"
    "       mapq submit WORKFLOW [--input N=V]... [--inputs FILE] [--redis "
    "URL]\n"
    "                [--overwrite-cache]\n"
    "       mapq scheduler [--redis URL] [--lease DUR]\n"
    "       mapq status EXEC [--json]      mapq watch EXEC\n"
    "       mapq result EXEC [--node NODE] [--json]\n"
    "       mapq cancel EXEC\n"
    "       mapq recover EXEC [--redis URL] [--json] [--quiet]\n"
    "       mapq logs EXEC NODE [INDEX] [--json]\n"
    "       mapq agents [--json]\n"
    "       mapq cache ls|clear [--task NAME] [--json]\n"
    "       mapq cache rm KEY... [--task NAME]\n"
    "       mapq validate WORKFLOW [--input N=V]... [--inputs FILE]\n"
    "Common: --namespace NS (or MAPQ_NAMESPACE), --redis URL (or "
    "MAPQ_REDIS_URL),\n"
    "        -v for debug logs. Without a Redis URL, `run` starts a private\n"
    "        redis-server and --agents local agents (default: CPUs).\n"
    "        --lease: how long executions this process drives wait, should\n"
    "        it die, before a `mapq scheduler` takes them over (10s).\n";

struct opts {
    const char *cmd;
    const char *target; /* workflow file or execution id */
    const char *assigns[MAX_ASSIGNS];
    size_t nassigns;
    const char *inputs_file;
    const char *redis;
    const char *ns;
    const char *node;
    const char *index;       /* mapq logs: one subtask, or NULL for all */
    const char *task;        /* mapq cache --task */
    const char *const *keys; /* mapq cache rm: the keys (in argv) */
    size_t nkeys;
    int agents;
    int lease_ms; /* owner lease of the executions this process drives */
    bool json, quiet;
    bool overwrite_cache;
};

/* ---- options ----------------------------------------------------------- */

/* Applies option c (its argument in optarg); 1 after --help, -1 when
 * wrong (reported). */
static int
parse_option(struct opts *o, int c)
{
    char *end;

    switch (c) {
    case 'i':
        if (o->nassigns == MAX_ASSIGNS) {
            fprintf(stderr, "mapq: too many --input options\n");
            return -1;
        }
        o->assigns[o->nassigns++] = optarg;
        break;
    case 'I':
        o->inputs_file = optarg;
        break;
    case 'r':
        o->redis = optarg;
        break;
    case 'N':
        o->ns = optarg;
        break;
    case 'n':
        o->node = optarg;
        break;
    case 'a':
        o->agents = (int)strtol(optarg, &end, 10);
        if (*optarg == '\0' || *end != '\0' || o->agents < 1 ||
            o->agents > 1024) {
            fprintf(stderr, "mapq: --agents must be 1 to 1024, got '%s'\n",
                    optarg);
            return -1;
        }
        break;
    case 'L': {
        int64_t ms;
        char derr[MAPQ_ERR_LEN];

        if (mapq_duration_parse(optarg, &ms, derr) != MAPQ_OK || ms < 1000 ||
            ms > 3600000) {
            fprintf(stderr,
                    "mapq: --lease must be a duration from 1s to 1h, got "
                    "'%s'\n",
                    optarg);
            return -1;
        }
        o->lease_ms = (int)ms;
        break;
    }
    case 'T':
        o->task = optarg;
        break;
    case 'j':
        o->json = true;
        break;
    case 'q':
        o->quiet = true;
        break;
    case 'o':
        o->overwrite_cache = true;
        break;
    case 'v':
        mapq_log_threshold = MAPQ_LOG_DEBUG;
        break;
    case 'h':
        fputs(usage, stdout);
        return 1;
    default:
        fputs(usage, stderr);
        return -1;
    }
    return 0;
}

/* Takes the operands of o->cmd from argv[i..argc-1]; -1 when they
 * are wrong (reported). */
static int
parse_operands(struct opts *o, int argc, char **argv, int i)
{
    if (strcmp(o->cmd, "cache") == 0) {
        if (i == argc ||
            (strcmp(argv[i], "ls") != 0 && strcmp(argv[i], "rm") != 0 &&
             strcmp(argv[i], "clear") != 0)) {
            fprintf(stderr, "mapq cache: expected ls, rm or clear\n%s", usage);
            return -1;
        }
        o->target = argv[i];
        o->keys = (const char *const *)&argv[i + 1];
        o->nkeys = (size_t)(argc - i - 1);
        if (strcmp(o->target, "rm") == 0 ? o->nkeys == 0 : o->nkeys != 0) {
            fprintf(stderr, "mapq cache %s: %s\n", o->target,
                    o->nkeys ? "takes no keys (use --task NAME)"
                             : "expected the keys to remove (mapq cache ls "
                               "prints them)");
            return -1;
        }
    } else if (strcmp(o->cmd, "logs") == 0) {
        if (argc - i < 2 || argc - i > 3) {
            fprintf(stderr, "mapq logs: expected EXEC NODE [INDEX]\n%s", usage);
            return -1;
        }
        o->target = argv[i];
        o->node = argv[i + 1];
        o->index = argc - i == 3 ? argv[i + 2] : NULL;
    } else if (strcmp(o->cmd, "scheduler") != 0 &&
               strcmp(o->cmd, "agents") != 0) {
        if (i != argc - 1) {
            fprintf(stderr, "mapq %s: expected one %s\n%s", o->cmd,
                    strcmp(o->cmd, "status") == 0 ||
                            strcmp(o->cmd, "watch") == 0 ||
                            strcmp(o->cmd, "result") == 0 ||
                            strcmp(o->cmd, "cancel") == 0 ||
                            strcmp(o->cmd, "recover") == 0
                        ? "execution id"
                        : "workflow file",
                    usage);
            return -1;
        }
        o->target = argv[i];
    } else if (i != argc) {
        fprintf(stderr, "mapq %s: unexpected argument '%s'\n", o->cmd, argv[i]);
        return -1;
    }
    return 0;
}

static int
parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"input", required_argument, NULL, 'i'},
        {"inputs", required_argument, NULL, 'I'},
        {"redis", required_argument, NULL, 'r'},
        {"namespace", required_argument, NULL, 'N'},
        {"agents", required_argument, NULL, 'a'},
        {"lease", required_argument, NULL, 'L'},
        {"task", required_argument, NULL, 'T'},
        {"node", required_argument, NULL, 'n'},
        {"json", no_argument, NULL, 'j'},
        {"quiet", no_argument, NULL, 'q'},
        {"overwrite-cache", no_argument, NULL, 'o'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int c, rc;

    o->redis = getenv("MAPQ_REDIS_URL");
    if (o->redis != NULL && *o->redis == '\0')
        o->redis = NULL;
    o->ns = getenv("MAPQ_NAMESPACE");
    if (o->ns == NULL || *o->ns == '\0')
        o->ns = MAPQ_NAMESPACE_DEFAULT;
    o->agents = (int)sysconf(_SC_NPROCESSORS_ONLN);
    o->lease_ms = MAPQ_OWNER_LEASE_MS;
    if (argc < 2) {
        fputs(usage, stderr);
        return -1;
    }
    o->cmd = argv[1];
    if (strcmp(o->cmd, "-h") == 0 || strcmp(o->cmd, "--help") == 0 ||
        strcmp(o->cmd, "help") == 0) {
        fputs(usage, stdout);
        return 1;
    }
    optind = 2;
    while ((c = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
        rc = parse_option(o, c);
        if (rc != 0)
            return rc;
    }
    return parse_operands(o, argc, argv, optind);
}

/*
 * Keeps the Redis password from other users, as mapq-agent does, once the
 * options are parsed: o->redis becomes a copy, the password is overwritten
 * with '*' where the kernel shows the command line and environment
 * (/proc/<pid>/cmdline and environ, so ps) in every argument that is a
 * redis:// URL or --redis=URL and in MAPQ_REDIS_URL, and a process holding
 * a password is made non-dumpable (its /proc files and memory are root's).
 */
static void
hide_redis_password(struct opts *o, int argc, char **argv)
{
    static char *copy; /* o->redis, for the life of the process */
    char *arg, *eq;
    int i;

    if (o->redis == NULL)
        return;
    copy = mapq_xstrdup(o->redis);
    for (i = 1; i < argc; i++) {
        arg = argv[i];
        eq = strchr(arg, '=');
        if (strncmp(arg, "--r", 3) == 0 && eq != NULL &&
            strncmp(arg, "--redis", (size_t)(eq - arg)) == 0)
            arg = eq + 1;
        mapq_redis_url_hide_password(arg);
    }
    mapq_redis_url_hide_password(getenv("MAPQ_REDIS_URL"));
    if (strcmp(copy, o->redis) != 0 && prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        mapq_log_errno(MAPQ_LOG_WARN, errno, "cannot make mapq non-dumpable");
    o->redis = copy;
}

/* ---- shared steps ------------------------------------------------------ */

static char *
read_file(const char *path, size_t *len, char *err)
{
    struct mapq_buf b;

    /* Capped: a workflow file over MAPQ_WORKFLOW_FILE_MAX is not read. */
    if (mapq_workflow_read_file(path, &b, err) != MAPQ_OK) {
        mapq_buf_release(&b);
        return NULL;
    }
    return mapq_buf_detach(&b, len);
}

/* Loads, validates and binds inputs; prints problems. Returns exit code. */
static int
load_workflow(const struct opts *o, struct mapq_workflow **wf, char **text,
              size_t *textlen, struct mapq_buf *inputs)
{
    struct mapq_buf errors = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    int rc = EXIT_OK;

    *text = read_file(o->target, textlen, err);
    if (*text == NULL) {
        fprintf(stderr, "mapq: %s\n", err);
        return EXIT_USAGE;
    }
    *wf = mapq_workflow_parse(*text, *textlen, o->target, &errors);
    if (*wf == NULL ||
        mapq_workflow_bind_inputs(*wf, o->assigns, o->nassigns, o->inputs_file,
                                  inputs, &errors) != MAPQ_OK) {
        fputs(errors.data ? errors.data : "mapq: invalid workflow\n", stderr);
        rc = EXIT_USAGE;
    }
    mapq_buf_release(&errors);
    return rc;
}

static redisContext *
connect_or_report(const char *url_s, struct mapq_redis_url *url)
{
    char err[MAPQ_ERR_LEN];
    redisContext *c;

    if (mapq_redis_url_parse(url_s, url, err) != MAPQ_OK) {
        fprintf(stderr, "mapq: %s\n", err);
        return NULL;
    }
    c = mapq_redis_connect_sync(url, CONNECT_TIMEOUT_MS, err);
    if (c == NULL)
        fprintf(stderr, "mapq: %s\n", err);
    return c;
}

/* Connects to the shared Redis of o (--redis, MAPQ_REDIS_URL, or the
 * local default) for the commands that read or change executions. */
static redisContext *
connect_shared(const struct opts *o, struct mapq_redis_url *url)
{
    return connect_or_report(o->redis ? o->redis : REDIS_DEFAULT_URL, url);
}

/* Prints a value as JSON; one that cannot be is an error, never dropped
 * silently: EXIT_FAILED. */
static int
print_value(const char *data, size_t len, int flags)
{
    struct mapq_buf out = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    int rc = EXIT_OK;

    if (mapq_json_from_bytes(data, len, &out, flags, err) != MAPQ_OK) {
        fprintf(stderr, "mapq: the output cannot be written as JSON: %s\n",
                err);
        rc = EXIT_FAILED;
    } else {
        printf("%s\n", out.data);
    }
    mapq_buf_release(&out);
    return rc;
}

/* ---- run --------------------------------------------------------------- */

struct run {
    struct event_base *base;
    struct mapq_driver *driver;
    struct opts *o;
    char id[MAPQ_EXEC_ID_LEN + 1];
    int exit_code;
    bool ended, tty, interrupted, detached;
    bool redis_error; /* ended because of Redis: exits 3 */
    struct mapq_buf output;
    char *error;
    struct timeval started;
    struct mapq_redis_url url;
    struct event *finish_ev;
    int finish_tries;
    /* The nodes as they ended, taken when the execution ended: the driver
     * may free the execution before the report is written. */
    struct mapq_node_progress final[64];
    char *final_names[64];
    size_t nfinal;
};

/* Node progress of r: live while it runs, the copy taken at its end after. */
static size_t
run_progress(struct run *r, struct mapq_node_progress *p, size_t max)
{
    size_t k;

    if (!r->ended)
        return mapq_driver_progress(r->driver, r->id, p, max);
    for (k = 0; k < r->nfinal && k < max; k++)
        p[k] = r->final[k];
    return r->nfinal;
}

static void
run_done(const struct mapq_exec_outcome *out, void *arg)
{
    struct run *r = arg;
    size_t k;

    r->nfinal = mapq_driver_progress(r->driver, r->id, r->final, 64);
    if (r->nfinal > 64)
        r->nfinal = 64;
    for (k = 0; k < r->nfinal; k++) {
        r->final_names[k] = mapq_xstrdup(r->final[k].name);
        r->final[k].name = r->final_names[k];
    }
    r->ended = true;
    if (r->interrupted)
        return; /* cancelled by Ctrl-C: exits 130 once that is recorded */
    r->exit_code = out->succeeded                      ? EXIT_OK
                   : out->detached || out->redis_error ? EXIT_INFRA
                                                       : EXIT_FAILED;
    r->detached = out->detached;
    r->redis_error = out->redis_error;
    if (out->succeeded)
        mapq_buf_append(&r->output, out->output->data, out->output->len);
    else
        r->error = mapq_xstrdup(out->error);
    /* The loop stops once the final record writes are acknowledged. */
    event_active(r->finish_ev, EV_TIMEOUT, 0);
}

static void
finish_cb(evutil_socket_t fd, short what, void *arg)
{
    struct run *r = arg;
    struct timeval tv = {0, 1000};

    (void)fd;
    (void)what;
    /* While Redis refuses the final writes (OOM, ...) they are retried
     * until it takes them; without a connection, a few seconds at most:
     * a scheduler finishes the execution's record after its lease. */
    if (mapq_driver_refused(r->driver))
        r->finish_tries = 0;
    if (mapq_driver_idle(r->driver) || ++r->finish_tries > 5000)
        event_base_loopexit(r->base, NULL);
    else
        evtimer_add(r->finish_ev, &tv);
}

static void
draw_progress(struct run *r, bool final)
{
    struct mapq_node_progress p[64];
    size_t n = run_progress(r, p, 64), k;
    static size_t drawn;

    if (!r->tty || r->o->quiet)
        return;
    if (drawn > 0)
        fprintf(stderr, "\033[%zuA", drawn);
    for (k = 0; k < n && k < 64; k++) {
        uint64_t done = p[k].counts[MAPQ_PHASE_SUCCEEDED] +
                        p[k].counts[MAPQ_PHASE_CACHED] +
                        p[k].counts[MAPQ_PHASE_RECOVERED];
        uint64_t failed = p[k].counts[MAPQ_PHASE_FAILED] +
                          p[k].counts[MAPQ_PHASE_TIMED_OUT] +
                          p[k].counts[MAPQ_PHASE_ABORTED];
        int width = 24,
            fill = p[k].total
                       ? (int)((done + failed) * (uint64_t)width / p[k].total)
                       : (strcmp(p[k].state, "succeeded") == 0 ? width : 0);
        char bar[32];

        memset(bar, '#', (size_t)fill);
        memset(bar + fill, '.', (size_t)(width - fill));
        bar[width] = '\0';
        fprintf(stderr,
                "\033[2K%-16.16s [%s] %llu/%llu  running %llu  failed %llu  "
                "cached %llu  %s\n",
                p[k].name, bar, (unsigned long long)done,
                (unsigned long long)p[k].total,
                (unsigned long long)p[k].counts[MAPQ_PHASE_RUNNING],
                (unsigned long long)failed,
                (unsigned long long)p[k].counts[MAPQ_PHASE_CACHED], p[k].state);
    }
    drawn = final ? 0 : n;
}

static void
progress_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    draw_progress(arg, false);
}

static void
cancelled_cb(bool ok, const char *why, void *arg)
{
    struct run *r = arg;

    if (!ok)
        fprintf(stderr, "mapq: cannot cancel execution %s: %s\n", r->id, why);
    event_base_loopexit(r->base, NULL);
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
    r->exit_code = EXIT_CANCELLED;
    if (r->interrupted) {
        event_base_loopexit(r->base, NULL);
        return;
    }
    r->interrupted = true;
    mapq_driver_cancel(r->driver, r->id, cancelled_cb, r);
}

static void
print_summary(struct run *r, struct mapq_workflow *wf)
{
    struct mapq_node_progress p[64];
    size_t n = run_progress(r, p, 64), k;
    struct mapq_buf out = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    struct timeval now;
    int ph;

    /* An output that cannot be written as JSON fails the run, never
     * reported as a success without its output. */
    if (r->exit_code == EXIT_OK &&
        mapq_json_from_bytes(r->output.data, r->output.len, &out, 0, err) !=
            MAPQ_OK) {
        r->exit_code = EXIT_FAILED;
        r->error =
            mapq_xasprintf("the output cannot be written as JSON: %s", err);
    }
    gettimeofday(&now, NULL);
    printf("{\"execution\":\"%s\",\"workflow\":\"%s\",\"status\":\"%s\","
           "\"seconds\":%.3f,\"nodes\":{",
           r->id, wf->name,
           r->exit_code == EXIT_OK ? "succeeded"
           : r->interrupted        ? "cancelled"
                                   : "failed",
           (double)(now.tv_sec - r->started.tv_sec) +
               (double)(now.tv_usec - r->started.tv_usec) / 1e6);
    for (k = 0; k < n && k < 64; k++) {
        printf("%s\"%s\":{\"state\":\"%s\",\"total\":%llu", k ? "," : "",
               p[k].name, p[k].state, (unsigned long long)p[k].total);
        for (ph = MAPQ_PHASE_SUCCEEDED; ph < MAPQ_PHASE_COUNT; ph++)
            printf(",\"%s\":%llu", mapq_phase_name(ph),
                   (unsigned long long)p[k].counts[ph]);
        printf("}");
    }
    printf("}");
    if (r->exit_code == EXIT_OK) {
        printf(",\"output\":%s", out.data);
    } else if (r->error != NULL) {
        /* The error may quote a task's stderr: any bytes at all. */
        mapq_buf_reset(&out);
        mapq_json_append_text(&out, r->error, strlen(r->error));
        printf(",\"error\":%.*s", (int)out.len, out.data);
    }
    printf("}\n");
    mapq_buf_release(&out);
}

/* Prints how execution r->id ended: its output, or why it did not. */
static void
report(struct run *r, const char *text, size_t textlen)
{
    if (r->o->json) {
        struct mapq_buf tmp = MAPQ_BUF_INIT;
        struct mapq_workflow *shown =
            mapq_workflow_parse(text, textlen, r->o->target, &tmp);

        print_summary(r, shown);
        mapq_workflow_free(shown);
        mapq_buf_release(&tmp);
    } else if (r->exit_code == EXIT_OK) {
        r->exit_code = print_value(r->output.data, r->output.len, 0);
    } else if (r->exit_code == EXIT_CANCELLED) {
        fprintf(stderr, "mapq: execution %s cancelled\n", r->id);
    } else if (r->redis_error) {
        fprintf(stderr, "mapq: execution %s: %s\n", r->id, r->error);
    } else if (r->detached) {
        fprintf(stderr,
                "mapq: execution %s: stopped following it: %s; see mapq "
                "status %s\n",
                r->id, r->error, r->id);
    } else {
        fprintf(stderr, "mapq: execution %s failed: %s\n", r->id, r->error);
    }
}

/*
 * Drives execution r->id of wf (taken) on a loop of its own until it ends,
 * with the progress bar and Ctrl-C, then reports. Returns the exit status.
 */
static int
follow(struct run *r, struct mapq_workflow *wf, const struct mapq_buf *inputs,
       const struct mapq_exec_opts *xo, const char *text, size_t textlen)
{
    struct timeval tick = {0, 200000};
    struct event *ev_int, *ev_tick;

    r->tty = isatty(2) != 0;
    r->base = event_base_new();
    r->driver = mapq_driver_new(r->base, &r->url, r->o->ns, r->o->lease_ms);
    ev_int = evsignal_new(r->base, SIGINT, interrupt_cb, r);
    event_add(ev_int, NULL);
    ev_tick = event_new(r->base, -1, EV_PERSIST, progress_cb, r);
    event_add(ev_tick, &tick);
    r->finish_ev = evtimer_new(r->base, finish_cb, r);
    mapq_driver_add(r->driver, r->id, wf, inputs, xo, run_done, r);
    event_base_dispatch(r->base);
    draw_progress(r, true);
    report(r, text, textlen);
    event_free(ev_tick);
    event_free(ev_int);
    event_free(r->finish_ev);
    mapq_driver_free(r->driver);
    event_base_free(r->base);
    return r->exit_code;
}

/*
 * mapq recover: the workflow and inputs of execution o->target, read back
 * from its record, which must have ended.
 */
static int
load_recovered(const struct opts *o, redisContext *c, struct mapq_workflow **wf,
               char **text, size_t *textlen, struct mapq_buf *inputs)
{
    struct mapq_buf errors = MAPQ_BUF_INIT;
    redisReply *r = redisCommand(c, "HMGET %s:x:%s workflow file inputs state",
                                 o->ns, o->target);
    int rc = EXIT_OK;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        fprintf(stderr, "mapq recover: redis: %s\n",
                r && r->str ? r->str : c->errstr);
        rc = EXIT_INFRA;
    } else if (r->element[0]->type != REDIS_REPLY_STRING ||
               r->element[2]->type != REDIS_REPLY_STRING ||
               r->element[3]->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "mapq recover: no execution '%s'\n", o->target);
        rc = EXIT_FAILED;
    } else if (strcmp(r->element[3]->str, "running") == 0 ||
               strcmp(r->element[3]->str, "submitted") == 0) {
        fprintf(stderr,
                "mapq recover: execution %s is still %s; wait for it, or "
                "mapq cancel it first\n",
                o->target, r->element[3]->str);
        rc = EXIT_USAGE;
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
            rc = EXIT_FAILED;
        } else {
            mapq_buf_append(inputs, r->element[2]->str, r->element[2]->len);
        }
    }
    if (r != NULL)
        freeReplyObject(r);
    mapq_buf_release(&errors);
    return rc;
}

enum run_mode {
    RUN,     /* mapq run: create, drive and wait */
    SUBMIT,  /* mapq submit: create and hand over */
    RECOVER, /* mapq recover: create from an ended execution, drive, wait */
};

static int
cmd_run(struct opts *o, enum run_mode mode)
{
    bool submit_only = mode == SUBMIT;
    struct mapq_workflow *wf = NULL;
    struct mapq_buf inputs = MAPQ_BUF_INIT;
    struct mapq_local *local = NULL;
    struct mapq_exec_opts xo = {0};
    struct run r;
    char *text = NULL, url[512], err[MAPQ_ERR_LEN];
    size_t textlen = 0, k;
    redisContext *c = NULL;
    int rc;

    memset(&r, 0, sizeof(r));
    r.o = o;
    gettimeofday(&r.started, NULL);
    rc = mode == RECOVER ? EXIT_OK
                         : load_workflow(o, &wf, &text, &textlen, &inputs);
    if (rc != EXIT_OK)
        goto out;
    if (o->redis == NULL) {
        if (mode != RUN) {
            fprintf(stderr,
                    "mapq %s: needs --redis URL or MAPQ_REDIS_URL (a shared "
                    "Redis)\n",
                    o->cmd);
            rc = EXIT_USAGE;
            goto out;
        }
        local = mapq_local_start(o->agents, 1, o->ns, url, sizeof(url), err);
        if (local == NULL) {
            fprintf(stderr, "mapq: %s\n", err);
            rc = EXIT_INFRA;
            goto out;
        }
        o->redis = url;
    }
    c = connect_or_report(o->redis, &r.url);
    if (c == NULL) {
        rc = EXIT_INFRA;
        goto out;
    }
    if (mode == RECOVER) {
        rc = load_recovered(o, c, &wf, &text, &textlen, &inputs);
        if (rc != EXIT_OK)
            goto out;
        xo.recover_from = o->target;
    }
    xo.lease_ms = o->lease_ms;
    xo.overwrite_cache = o->overwrite_cache;
    if (mapq_exec_create(c, o->ns, wf, text, textlen, &inputs, &xo, r.id,
                         err) != MAPQ_OK) {
        fprintf(stderr, "mapq: cannot create the execution: %s\n", err);
        rc = EXIT_INFRA;
        goto out;
    }
    if (submit_only) {
        freeReplyObject(redisCommand(c, "RPUSH %s:submitted %s", o->ns, r.id));
        printf("%s\n", r.id);
        rc = EXIT_OK;
        goto out;
    }
    if (!o->quiet && !o->json)
        fprintf(stderr, "mapq: execution %s\n", r.id);
    rc = follow(&r, wf, &inputs, &xo, text, textlen);
    wf = NULL; /* owned by the driver */
out:
    if (c != NULL)
        redisFree(c);
    mapq_local_stop(local);
    mapq_workflow_free(wf);
    mapq_buf_release(&inputs);
    mapq_buf_release(&r.output);
    for (k = 0; k < r.nfinal; k++)
        free(r.final_names[k]);
    free(r.error);
    free(text);
    return rc;
}

/* ---- cancel ------------------------------------------------------------ */

static int
cmd_cancel(struct opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = connect_shared(o, &url);
    redisReply *r;
    int rc = EXIT_INFRA;

    if (c == NULL)
        return EXIT_INFRA;
    r = redisCommand(c, "FCALL mapq1_cancel 0 %s %s", o->ns, o->target);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        fprintf(stderr, "mapq cancel: %s\n", r && r->str ? r->str : c->errstr);
    } else if (r->integer < 0) {
        fprintf(stderr, "mapq: no execution '%s'\n", o->target);
        rc = EXIT_FAILED;
    } else {
        if (r->integer == 0)
            fprintf(stderr, "mapq: execution %s had already ended\n",
                    o->target);
        else if (!o->quiet)
            fprintf(stderr, "mapq: execution %s cancelled\n", o->target);
        rc = EXIT_OK;
    }
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

/* ---- logs and agents --------------------------------------------------- */

static int
cmd_logs(struct opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = connect_shared(o, &url);
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    if (c == NULL)
        return EXIT_INFRA;
    rc = mapq_inspect_logs(c, o->ns, o->target, o->node, o->index, o->json,
                           stdout, err);
    redisFree(c);
    if (rc != MAPQ_OK)
        fprintf(stderr, "mapq logs: %s\n", err);
    return rc == MAPQ_OK       ? EXIT_OK
           : rc == MAPQ_EINVAL ? EXIT_FAILED
                               : EXIT_INFRA;
}

static int
cmd_agents(struct opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = connect_shared(o, &url);
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    if (c == NULL)
        return EXIT_INFRA;
    rc = mapq_inspect_agents(c, o->ns, o->json, stdout, err);
    redisFree(c);
    if (rc != MAPQ_OK)
        fprintf(stderr, "mapq agents: %s\n", err);
    return rc == MAPQ_OK ? EXIT_OK : EXIT_INFRA;
}

static int
cmd_cache(struct opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = connect_shared(o, &url);
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;
    size_t removed = 0;

    if (c == NULL)
        return EXIT_INFRA;
    if (strcmp(o->target, "ls") == 0)
        rc = mapq_cache_ls(c, o->ns, o->task, o->json, stdout, err);
    else if (strcmp(o->target, "rm") == 0)
        rc = mapq_cache_rm(c, o->ns, o->task, o->keys, o->nkeys, &removed, err);
    else
        rc = mapq_cache_clear(c, o->ns, o->task, &removed, err);
    redisFree(c);
    if (rc != MAPQ_OK) {
        fprintf(stderr, "mapq cache %s: %s\n", o->target, err);
        return rc == MAPQ_EINVAL ? EXIT_USAGE : EXIT_INFRA;
    }
    if (strcmp(o->target, "ls") != 0 && !o->quiet)
        printf("removed %zu cache entr%s\n", removed,
               removed == 1 ? "y" : "ies");
    return EXIT_OK;
}

/* ---- scheduler --------------------------------------------------------- */

static void
stop_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    event_base_loopexit(arg, NULL);
}

static int
cmd_scheduler(struct opts *o)
{
    struct mapq_redis_url url;
    struct event_base *base;
    struct mapq_driver *d;
    struct event *ev_term, *ev_int;
    redisContext *c = connect_shared(o, &url);

    if (c == NULL)
        return EXIT_INFRA;
    redisFree(c);
    base = event_base_new();
    d = mapq_driver_new(base, &url, o->ns, o->lease_ms);
    ev_term = evsignal_new(base, SIGTERM, stop_cb, base);
    ev_int = evsignal_new(base, SIGINT, stop_cb, base);
    event_add(ev_term, NULL);
    event_add(ev_int, NULL);
    mapq_driver_serve(d);
    mapq_log(MAPQ_LOG_INFO, "scheduler running");
    event_base_dispatch(base);
    mapq_driver_free(d);
    event_free(ev_term);
    event_free(ev_int);
    event_base_free(base);
    return EXIT_OK;
}

/* ---- status and result ------------------------------------------------- */

static redisReply *
hget(redisContext *c, const struct opts *o, const char *field)
{
    return redisCommand(c, "HGET %s:x:%s %s", o->ns, o->target, field);
}

/* Reads the state of execution o->target into state. Returns EXIT_OK, or
 * after saying why EXIT_FAILED (no such execution) or EXIT_INFRA (Redis
 * refused the read, e.g. NOPERM for an ACL user, or is unreachable). */
static int
exec_exists(redisContext *c, const struct mapq_redis_url *url,
            const struct opts *o, char *state, size_t len)
{
    redisReply *r = hget(c, o, "state");
    char shown[300];
    int rc = EXIT_OK;

    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        snprintf(state, len, "%s", r->str);
    } else if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        mapq_redis_url_format(url, shown, sizeof(shown));
        fprintf(stderr, "mapq: cannot use redis '%s': %s\n", shown,
                r != NULL ? r->str : c->errstr);
        rc = EXIT_INFRA;
    } else {
        fprintf(stderr, "mapq: no execution '%s'\n", o->target);
        rc = EXIT_FAILED;
    }
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

/* Prints the state of execution o->target and of its nodes, counts by
 * phase (JSON with --json), to out. */
static void
print_status(redisContext *c, const struct opts *o, const char *state,
             FILE *out)
{
    char field[32];
    redisReply *nn, *name, *p;
    long k, nodes;
    int ph;

    nn = hget(c, o, "nodes");
    nodes =
        nn && nn->type == REDIS_REPLY_STRING ? strtol(nn->str, NULL, 10) : 0;
    if (o->json)
        fprintf(out, "{\"execution\":\"%s\",\"status\":\"%s\",\"nodes\":{",
                o->target, state);
    else
        fprintf(out, "execution %s: %s\n", o->target, state);
    for (k = 0; k < nodes; k++) {
        msgpack_unpacked u;
        char err[MAPQ_ERR_LEN];

        snprintf(field, sizeof(field), "node:%ld", k);
        name = hget(c, o, field);
        snprintf(field, sizeof(field), "p:%ld", k);
        p = hget(c, o, field);
        msgpack_unpacked_init(&u);
        if (name != NULL && name->type == REDIS_REPLY_STRING && p != NULL &&
            p->type == REDIS_REPLY_STRING &&
            mapq_value_unpack(p->str, p->len, &u, err) == MAPQ_OK &&
            u.data.type == MSGPACK_OBJECT_ARRAY &&
            u.data.via.array.size == 2 + MAPQ_PHASE_COUNT) {
            const msgpack_object *a = u.data.via.array.ptr;

            if (o->json)
                fprintf(out, "%s\"%s\":{\"state\":\"%.*s\",\"total\":%llu",
                        k ? "," : "", name->str, (int)a[0].via.str.size,
                        a[0].via.str.ptr, (unsigned long long)a[1].via.u64);
            else
                fprintf(out, "  %-20s %-10.*s total %llu", name->str,
                        (int)a[0].via.str.size, a[0].via.str.ptr,
                        (unsigned long long)a[1].via.u64);
            for (ph = 0; ph < MAPQ_PHASE_COUNT; ph++) {
                if (o->json)
                    fprintf(out, ",\"%s\":%llu", mapq_phase_name(ph),
                            (unsigned long long)a[2 + ph].via.u64);
                else if (a[2 + ph].via.u64 > 0)
                    fprintf(out, "  %s %llu", mapq_phase_name(ph),
                            (unsigned long long)a[2 + ph].via.u64);
            }
            fputs(o->json ? "}" : "\n", out);
        } else if (name != NULL && name->type == REDIS_REPLY_STRING &&
                   !o->json) {
            fprintf(out, "  %-20s waiting\n", name->str);
        }
        msgpack_unpacked_destroy(&u);
        if (name != NULL)
            freeReplyObject(name);
        if (p != NULL)
            freeReplyObject(p);
    }
    if (o->json)
        fputs("}}\n", out);
    if (nn != NULL)
        freeReplyObject(nn);
}

static int
cmd_status(struct opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = connect_shared(o, &url);
    char state[32];
    int rc;

    if (c == NULL)
        return EXIT_INFRA;
    rc = exec_exists(c, &url, o, state, sizeof(state));
    if (rc != EXIT_OK) {
        redisFree(c);
        return rc;
    }
    print_status(c, o, state, stdout);
    redisFree(c);
    return EXIT_OK;
}

static bool
state_ended(const char *state)
{
    return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
           strcmp(state, "cancelled") == 0;
}

/*
 * mapq watch: the status, printed again whenever it changes (redrawn in
 * place on a terminal), until the execution ends. Exits like mapq run: 0
 * when it succeeded, 1 otherwise.
 */
static int
cmd_watch(struct opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = connect_shared(o, &url);
    struct timespec second = {1, 0};
    char state[32], *text = NULL, *shown = NULL;
    bool tty = isatty(1) != 0;
    size_t len = 0, lines = 0, i;
    FILE *mem;

    if (c == NULL)
        return EXIT_INFRA;
    for (;;) {
        int rc = exec_exists(c, &url, o, state, sizeof(state));

        if (rc != EXIT_OK) {
            free(shown);
            redisFree(c);
            return rc;
        }
        mem = open_memstream(&text, &len);
        print_status(c, o, state, mem);
        fclose(mem);
        if (shown == NULL || strcmp(shown, text) != 0) {
            if (tty && lines > 0)
                printf("\033[%zuA\033[J", lines);
            fputs(text, stdout);
            fflush(stdout);
            for (lines = 0, i = 0; text[i] != '\0'; i++)
                lines += text[i] == '\n';
            free(shown);
            shown = text;
        } else {
            free(text);
        }
        text = NULL;
        if (state_ended(state))
            break;
        nanosleep(&second, NULL);
    }
    free(shown);
    redisFree(c);
    return strcmp(state, "succeeded") == 0 ? EXIT_OK : EXIT_FAILED;
}

static int
cmd_result(struct opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = connect_shared(o, &url);
    char state[32], field[32];
    redisReply *r = NULL, *nn = NULL, *name;
    long k, nodes;
    int rc = EXIT_OK;

    if (c == NULL)
        return EXIT_INFRA;
    rc = exec_exists(c, &url, o, state, sizeof(state));
    if (rc != EXIT_OK) {
        redisFree(c);
        return rc;
    }
    if (o->node != NULL) {
        nn = hget(c, o, "nodes");
        nodes = nn && nn->type == REDIS_REPLY_STRING ? strtol(nn->str, NULL, 10)
                                                     : 0;
        for (k = 0; k < nodes && r == NULL; k++) {
            snprintf(field, sizeof(field), "node:%ld", k);
            name = hget(c, o, field);
            if (name && name->type == REDIS_REPLY_STRING &&
                strcmp(name->str, o->node) == 0) {
                snprintf(field, sizeof(field), "o:%ld", k);
                r = hget(c, o, field);
            }
            freeReplyObject(name);
        }
    } else if (strcmp(state, "succeeded") == 0) {
        r = hget(c, o, "output");
    }
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        rc = print_value(r->str, r->len, o->json ? MAPQ_JSON_PRETTY : 0);
    } else {
        redisReply *e = hget(c, o, "error");

        fprintf(stderr, "mapq: execution %s is %s%s%s; no output%s\n",
                o->target, state,
                e && e->type == REDIS_REPLY_STRING ? ": " : "",
                e && e->type == REDIS_REPLY_STRING ? e->str : "",
                o->node ? " for that node" : "");
        if (e != NULL)
            freeReplyObject(e);
        rc = EXIT_FAILED;
    }
    if (r != NULL)
        freeReplyObject(r);
    if (nn != NULL)
        freeReplyObject(nn);
    redisFree(c);
    return rc;
}

static int
cmd_validate(struct opts *o)
{
    struct mapq_workflow *wf = NULL;
    struct mapq_buf inputs = MAPQ_BUF_INIT;
    char *text = NULL;
    size_t len;
    int rc = load_workflow(o, &wf, &text, &len, &inputs);

    if (rc == EXIT_OK)
        printf("%s: workflow '%s' is valid (%zu tasks, %zu nodes)\n", o->target,
               wf->name, wf->ntasks, wf->nnodes);
    mapq_workflow_free(wf);
    mapq_buf_release(&inputs);
    free(text);
    return rc;
}

int
main(int argc, char **argv)
{
    struct opts o;
    int rc;

    memset(&o, 0, sizeof(o));
    mapq_log_init("mapq", MAPQ_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    rc = parse_opts(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? EXIT_OK : EXIT_USAGE;
    hide_redis_password(&o, argc, argv);
    if (strcmp(o.cmd, "run") == 0)
        return cmd_run(&o, RUN);
    if (strcmp(o.cmd, "submit") == 0)
        return cmd_run(&o, SUBMIT);
    if (strcmp(o.cmd, "recover") == 0)
        return cmd_run(&o, RECOVER);
    if (strcmp(o.cmd, "scheduler") == 0) {
        mapq_log_threshold = MAPQ_LOG_INFO;
        return cmd_scheduler(&o);
    }
    if (strcmp(o.cmd, "status") == 0)
        return cmd_status(&o);
    if (strcmp(o.cmd, "watch") == 0)
        return cmd_watch(&o);
    if (strcmp(o.cmd, "result") == 0)
        return cmd_result(&o);
    if (strcmp(o.cmd, "cancel") == 0)
        return cmd_cancel(&o);
    if (strcmp(o.cmd, "logs") == 0)
        return cmd_logs(&o);
    if (strcmp(o.cmd, "agents") == 0)
        return cmd_agents(&o);
    if (strcmp(o.cmd, "cache") == 0)
        return cmd_cache(&o);
    if (strcmp(o.cmd, "validate") == 0)
        return cmd_validate(&o);
    fprintf(stderr, "mapq: unknown command '%s'\n%s", o.cmd, usage);
    return EXIT_USAGE;
}
