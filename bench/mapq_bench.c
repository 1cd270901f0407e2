/*
 * mapq_bench.c - mapq's benchmark (SPEC section 8): end-to-end figures with
 * Redis, the scheduler and agents on this one machine.
 *
 * It drives executions in-process, with the scheduler's own driver, against
 * a private redis-server and local agents (local mode), or against --redis
 * and agents started elsewhere. Each figure runs from the execution's
 * creation to the moment its last result is recorded and the output is
 * assembled, and is checked: the execution must succeed and every subtask
 * must have its result recorded in Redis. Printed, as numbers:
 *   - no-op plugin map: subtasks/s, Redis CPU us, commands and bytes per
 *     subtask, the scheduler's peak RSS;
 *   - /bin/true command map: subtasks/s, beside a bare posix_spawn loop of
 *     /bin/true run in the same process, with as many children at a time as
 *     the agents have slots, after each run of the map;
 *   - one-element map: end-to-end latency, median and p99; a window of
 *     one (concurrency: 1): how soon a freed slot is filled and run; a
 *     window as wide as one agent's slots over commands of two lengths:
 *     its time against the bound its sleeps set;
 *   - a Python function (x * x) mapped through persistent workers, with
 *     batch: 1 and with automatic batches, beside Celery running the same
 *     function on the same Redis when Celery is installed
 *     (bench_python.c);
 *   - `mapq run` of a million-element plugin map as a user runs it, in
 *     its own process with a JSON inputs file: its rate and its own peak
 *     RSS (bench_scale.c).
 * This is a program, not a test: its numbers depend on the machine.
 */
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bench_exec.h"
#include "bench_fleet.h"
#include "bench_python.h"
#include "bench_scale.h"
#include "mapq_alloc.h"
#include "mapq_buf.h"
#include "mapq_driver.h"
#include "mapq_keys.h"
#include "mapq_local.h"
#include "mapq_log.h"
#include "mapq_proto.h"
#include "mapq_redis.h"
#include "mapq_value.h"
#include "mapq_workflow.h"

extern char **environ;

static const char plugin_yaml[] =
    "name: bench_noop\n"
    "inputs: {xs: {type: \"list[int]\"}}\n"
    "tasks:\n"
    "  noop:\n"
    "    inputs: {x: int}\n"
    "    plugin: {library: mapq_example_plugin.so, symbol: noop}\n"
    "nodes:\n"
    "  all: {map: noop, over: {x: $inputs.xs}}\n";

/* A window of one: each subtask is pushed only once the one before is
 * recorded, so the time per subtask is how long a freed window slot takes
 * to be filled and run. */
static const char window_yaml[] =
    "name: bench_window\n"
    "inputs: {xs: {type: \"list[int]\"}}\n"
    "tasks:\n"
    "  noop:\n"
    "    inputs: {x: int}\n"
    "    plugin: {library: mapq_example_plugin.so, symbol: noop}\n"
    "nodes:\n"
    "  all: {map: noop, over: {x: $inputs.xs}, concurrency: 1}\n";

/* The Python function, through persistent workers: %s is the node's
 * batch setting. */
static const char python_yaml_fmt[] =
    "name: bench_python\n"
    "inputs: {xs: {type: \"list[int]\"}}\n"
    "tasks:\n"
    "  square:\n"
    "    inputs: {x: int}\n"
    "    output: int\n"
    "    worker: true\n"
    "    command: [python3, -m, mapq_worker, \"mapq_bench_fn:square\"]\n"
    "nodes:\n"
    "  all: {map: square, over: {x: $inputs.xs}%s}\n";

/* A window over commands of two lengths: one element in MIXED_EVERY
 * sleeps MIXED_LONG_S, the others MIXED_SHORT_S (the format's arguments,
 * then the window). A slot freed by a short one must be filled while long
 * ones still run: the agent that ran it reports it at once, though it
 * still runs others. */
#define MIXED_N       200
#define MIXED_EVERY   4
#define MIXED_LONG_S  0.1
#define MIXED_SHORT_S 0.005
static const char mixed_yaml_fmt[] =
    "name: bench_mixed\n"
    "inputs: {xs: {type: \"list[int]\"}}\n"
    "tasks:\n"
    "  nap:\n"
    "    inputs: {x: int}\n"
    "    command: [sh, -c, 'if [ $((MAPQ_IN_x %% %d)) -eq 0 ]; then sleep %g; "
    "else sleep %g; fi']\n"
    "nodes:\n"
    "  all: {map: nap, over: {x: $inputs.xs}, concurrency: %d}\n";

static const char command_yaml[] =
    "name: bench_true\n"
    "inputs: {xs: {type: \"list[int]\"}}\n"
    "tasks:\n"
    "  truth:\n"
    "    inputs: {x: int}\n"
    "    command: [/bin/true]\n"
    "nodes:\n"
    "  all: {map: truth, over: {x: $inputs.xs}}\n";

struct opts {
    const char *redis; /* NULL: local mode */
    const char *ns;
    int agents, slots, runs;
    long plugin_n, command_n, latency_n, python_n, scale_n;
    bool plugin, command, latency, python, scale;
    bool fleet; /* --fleet: only the figures of bench_fleet.c */
    struct bench_fleet_opts fleet_o;
};

struct bench {
    const struct opts *o;
    struct event_base *base;
    struct mapq_driver *driver;
    redisContext *c;
    struct bench_exec run;    /* the execution being measured */
    struct mapq_local *local; /* local mode's agents, NULL with --redis */
};

/* Redis counters read with INFO. */
struct redis_stats {
    double cpu_s;
    long long commands;
    long long memory;
};

static int
cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int
redis_stats_read(redisContext *c, struct redis_stats *st)
{
    redisReply *r = redisCommand(c, "INFO");

    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        if (r != NULL)
            freeReplyObject(r);
        return -1;
    }
    st->cpu_s = bench_info_field(r->str, "used_cpu_sys") +
                bench_info_field(r->str, "used_cpu_user");
    st->commands =
        (long long)bench_info_field(r->str, "total_commands_processed");
    st->memory = (long long)bench_info_field(r->str, "used_memory");
    freeReplyObject(r);
    return 0;
}

/*
 * Average bytes of one result entry (field + record) of node 0, from a
 * sample: the payload that Redis memory per subtask is compared with.
 */
static double
payload_bytes(struct bench *b, const char *id)
{
    char *key = mapq_key_results(b->o->ns, id, 0);
    redisReply *r;
    double sum = 0;
    size_t i;

    r = redisCommand(b->c, "HRANDFIELD %s 100 WITHVALUES", key);
    free(key);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements < 2) {
        if (r != NULL)
            freeReplyObject(r);
        return 0;
    }
    for (i = 0; i < r->elements; i++)
        sum += (double)r->element[i]->len;
    sum /= (double)(r->elements / 2);
    freeReplyObject(r);
    return sum;
}

/* Checks that node 0 of execution id recorded n results. */
static int
verify(struct bench *b, const char *id, long n)
{
    char *key = mapq_key_results(b->o->ns, id, 0);
    long long got;

    got = bench_redis_integer(b->c, "HLEN %s", key, NULL);
    free(key);
    if (got != n) {
        fprintf(stderr,
                "mapq-bench: execution %s recorded %lld results, "
                "expected %ld\n",
                id, got, n);
        return -1;
    }
    return 0;
}

/*
 * Deletes what execution id left in Redis, so runs do not add up. DEL, not
 * UNLINK: a lazy free would still be returning memory during the next run
 * and make its bytes per subtask look smaller than they are. (Its event
 * lists went when it finished, with its bodies.)
 */
static void
forget(struct bench *b, const char *id)
{
    char *keys[4];
    size_t i;

    keys[0] = mapq_key_exec(b->o->ns, id);
    keys[1] = mapq_key_results(b->o->ns, id, 0);
    keys[2] = mapq_key_bodies(b->o->ns, id);
    keys[3] = mapq_key_execs(b->o->ns);
    for (i = 0; i < 3; i++)
        bench_redis_integer(b->c, "DEL %s", keys[i],
                            NULL); /* not UNLINK: see mem */
    bench_redis_integer(b->c, "ZREM %s %s", keys[3], id);
    for (i = 0; i < 4; i++)
        free(keys[i]);
}

/* ---- figures ----------------------------------------------------------- */

/* A bare loop: n posix_spawn("/bin/true") + wait, par at a time. */
static double
spawn_loop(long n, int par)
{
    char prog[] = "/bin/true";
    char *argv[] = {prog, NULL};
    long started = 0, finished = 0;
    double t0 = bench_now_s();
    int status;
    pid_t pid;

    while (finished < n) {
        while (started < n && started - finished < par) {
            if (posix_spawn(&pid, argv[0], NULL, NULL, argv, environ) != 0)
                return 0;
            started++;
        }
        if (wait(&status) < 0)
            return 0;
        finished++;
    }
    return (double)n / (bench_now_s() - t0);
}

/*
 * Runs yaml over n elements o->runs times; prints the median rate and the
 * Redis cost of one subtask. Writes the median rate into rate. With bare >
 * 0, each run is followed by a bare loop of n spawns, bare at a time, and
 * the median of the runs' ratios to their own loop is printed: on a
 * machine whose speed drifts by the minute, a loop run once after all the
 * runs compared them with another moment.
 */
static int
throughput(struct bench *b, const char *label, const char *yaml, long n,
           int bare, double *rate)
{
    double *rates = mapq_xcalloc((size_t)b->o->runs, sizeof(double));
    double *loops = mapq_xcalloc((size_t)b->o->runs, sizeof(double));
    double *ratios = mapq_xcalloc((size_t)b->o->runs, sizeof(double));
    double *cpu = mapq_xcalloc((size_t)b->o->runs, sizeof(double));
    double *cmds = mapq_xcalloc((size_t)b->o->runs, sizeof(double));
    double *mem = mapq_xcalloc((size_t)b->o->runs, sizeof(double));
    double *agents = mapq_xcalloc((size_t)b->o->runs, sizeof(double));
    double payload = 0, a0, a1;
    bool agents_known = b->local != NULL;
    char id[MAPQ_EXEC_ID_LEN + 1];
    struct redis_stats s0, s1;
    double secs;
    int i, rc = -1;

    for (i = 0; i < b->o->runs; i++) {
        a0 = mapq_local_agents_cpu(b->local);
        if (redis_stats_read(b->c, &s0) != 0 ||
            bench_exec_run(&b->run, yaml, "bench.yaml", n, &secs, id) != 0 ||
            verify(b, id, n) != 0 || redis_stats_read(b->c, &s1) != 0)
            goto out;
        rates[i] = (double)n / secs;
        cpu[i] = (s1.cpu_s - s0.cpu_s) * 1e6 / (double)n;
        cmds[i] = (double)(s1.commands - s0.commands) / (double)n;
        mem[i] = (double)(s1.memory - s0.memory) / (double)n;
        a1 = mapq_local_agents_cpu(b->local);
        agents[i] = (a1 - a0) * 1e6 / (double)n;
        agents_known = agents_known && a0 >= 0 && a1 >= 0;
        payload = payload_bytes(b, id);
        fprintf(stderr, "  %s run %d: %ld subtasks in %.3f s\n", label, i + 1,
                n, secs);
        forget(b, id);
        if (bare > 0) {
            loops[i] = spawn_loop(n, bare);
            ratios[i] = loops[i] > 0 ? rates[i] / loops[i] : 0;
        }
    }
    *rate = median(rates, b->o->runs);
    printf("%-14s %8ld subtasks  %9.0f subtasks/s\n", label, n, *rate);
    printf("%-14s per subtask: redis %.1f us cpu, %.2f commands (counting "
           "those inside functions), %.0f bytes kept (%.0f of them the "
           "result entry)\n",
           "", median(cpu, b->o->runs), median(cmds, b->o->runs),
           median(mem, b->o->runs), payload);
    /* The agents' own work per subtask: what a slot spends between two
     * commands besides starting them (local mode only). */
    if (agents_known)
        printf("%-14s agents: %.0f us cpu per subtask, their own (not their "
               "commands')\n",
               "", median(agents, b->o->runs));
    if (bare > 0)
        printf("%-14s %8ld spawns    %9.0f spawns/s bare posix_spawn loop, "
               "%d at a time, after each run: mapq reaches %.0f%% "
               "(median of the runs' ratios)\n",
               "", n, median(loops, b->o->runs), bare,
               100 * median(ratios, b->o->runs));
    rc = 0;
out:
    free(ratios);
    free(loops);
    free(rates);
    free(cpu);
    free(cmds);
    free(mem);
    free(agents);
    return rc;
}

static int
latency(struct bench *b, long n)
{
    double *ms = mapq_xcalloc((size_t)n, sizeof(double)), secs;
    char id[MAPQ_EXEC_ID_LEN + 1];
    long i, warmup = 10;
    int rc = -1;

    for (i = -warmup; i < n; i++) {
        if (bench_exec_run(&b->run, plugin_yaml, "bench.yaml", 1, &secs, id) !=
                0 ||
            verify(b, id, 1))
            goto out;
        forget(b, id);
        if (i >= 0)
            ms[i] = secs * 1e3;
    }
    qsort(ms, (size_t)n, sizeof(*ms), cmp_double);
    printf("%-14s %8ld runs      median %.3f ms  p99 %.3f ms  max %.3f ms\n",
           "one-element", n, median(ms, (int)n),
           ms[(size_t)((double)(n - 1) * 0.99)], ms[n - 1]);
    rc = 0;
out:
    free(ms);
    return rc;
}

/*
 * A window as wide as one agent's slots over commands of two lengths
 * (mixed_yaml_fmt), o->runs times: the median time against the bound its
 * sleeps set (their sum over the window). Needs two slots per agent or
 * more: with one, a slot that frees leaves its agent nothing to run.
 */
static int
window_mixed(struct bench *b)
{
    int w = b->o->slots, i, rc = -1;
    double *secs = mapq_xcalloc((size_t)b->o->runs, sizeof(double)), bound;
    char yaml[1024], id[MAPQ_EXEC_ID_LEN + 1];
    long nlong = (MIXED_N + MIXED_EVERY - 1) / MIXED_EVERY;

    if (w < 2) {
        printf("%-14s window over commands of two lengths: needs --slots 2 "
               "or more\n",
               "mixed window");
        rc = 0;
        goto out;
    }
    snprintf(yaml, sizeof(yaml), mixed_yaml_fmt, MIXED_EVERY, MIXED_LONG_S,
             MIXED_SHORT_S, w);
    bound = ((double)nlong * MIXED_LONG_S +
             (double)(MIXED_N - nlong) * MIXED_SHORT_S) /
            w;
    for (i = 0; i < b->o->runs; i++) {
        if (bench_exec_run(&b->run, yaml, "bench.yaml", MIXED_N, &secs[i],
                           id) != 0 ||
            verify(b, id, MIXED_N) != 0)
            goto out;
        forget(b, id);
    }
    printf("%-14s %8d subtasks  %.3f s, against %.3f s of sleep over the "
           "window: %.0f%% (concurrency: %d; one in %d sleeps %g s, the "
           "others %g s)\n",
           "mixed window", MIXED_N, median(secs, b->o->runs), bound,
           100 * bound / median(secs, b->o->runs), w, MIXED_EVERY, MIXED_LONG_S,
           MIXED_SHORT_S);
    rc = 0;
out:
    free(secs);
    return rc;
}

/*
 * The Python function through persistent workers, with batch: 1 and with
 * automatic batches, then Celery's rate for it on the same Redis.
 */
static int
python(struct bench *b, const char *dir)
{
    const struct opts *o = b->o;
    char yaml[1024];
    double one, autob, celery;
    int conc = (int)sysconf(_SC_NPROCESSORS_ONLN), st;

    snprintf(yaml, sizeof(yaml), python_yaml_fmt, ", batch: 1");
    if (throughput(b, "python worker (batch: 1)", yaml, o->python_n, 0, &one))
        return -1;
    snprintf(yaml, sizeof(yaml), python_yaml_fmt, "");
    if (throughput(b, "python worker (automatic batches)", yaml, o->python_n, 0,
                   &autob))
        return -1;
    st = bench_python_celery(dir, o->redis, o->python_n, conc > 0 ? conc : 1,
                             &celery);
    if (st == 1) {
        printf("%-14s Celery or its Redis client is not installed (Debian: "
               "python3-celery, python3-redis): no figure to compare\n",
               "celery");
    } else if (st != 0) {
        printf("%-14s Celery failed: no figure to compare\n", "celery");
    } else {
        printf("%-14s %8ld tasks     %9.0f tasks/s (prefork, %d processes, "
               "same Redis): mapq workers %.1fx with batch: 1, %.1fx with "
               "automatic batches\n",
               "celery", o->python_n, celery, conc, one / celery,
               autob / celery);
    }
    return 0;
}

/* ---- main -------------------------------------------------------------- */

static void
usage(FILE *f)
{
    fprintf(f,
            "usage: mapq-bench [--redis URL] [--agents N] [--slots N] "
            "[--runs N]\n"
            "                  [--plugin N] [--command N] [--latency N]\n"
            "                  [--python N] [--scale N]\n"
            "                  [--only plugin|command|latency|python|scale]\n"
            "       mapq-bench --fleet [--fleet-shapes AxS,...] "
            "[--fleet-subtasks N] [--fleet-idle N]\n"
            "Without --redis, starts a private redis-server and --agents "
            "local agents (default 2,\n"
            "each with --slots command slots, default 1); with --redis, "
            "agents must run already.\n"
            "--fleet starts a private Redis and agents per configuration "
            "(default 16x8,64x1:\n"
            "agents x slots; none: no map) for 2000 subtasks of sleep 0.05, "
            "then 100 idle agents\n(0: none).\n");
}

static long
parse_count(const char *s, const char *flag)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < 1 || v > 100000000) {
        fprintf(stderr, "mapq-bench: %s must be a positive count, got '%s'\n",
                flag, s);
        exit(2);
    }
    return v;
}

static void
parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"redis", required_argument, NULL, 'r'},
        {"agents", required_argument, NULL, 'a'},
        {"slots", required_argument, NULL, 's'},
        {"runs", required_argument, NULL, 'n'},
        {"plugin", required_argument, NULL, 'p'},
        {"command", required_argument, NULL, 'c'},
        {"latency", required_argument, NULL, 'l'},
        {"python", required_argument, NULL, 'y'},
        {"scale", required_argument, NULL, 'z'},
        {"only", required_argument, NULL, 'o'},
        {"fleet", no_argument, NULL, 'F'},
        {"fleet-shapes", required_argument, NULL, 'S'},
        {"fleet-subtasks", required_argument, NULL, 'N'},
        {"fleet-idle", required_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int ch;

    memset(o, 0, sizeof(*o));
    o->ns = "mapqbench";
    o->agents = 2;
    o->slots = 1;
    o->runs = 3;
    o->plugin_n = 100000;
    o->command_n = 2000;
    o->latency_n = 500;
    o->python_n = 10000;
    o->scale_n = 1000000;
    o->plugin = o->command = o->latency = o->python = o->scale = true;
    bench_fleet_opts_init(&o->fleet_o);
    o->fleet_o.ns = o->ns;
    while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'r':
            o->redis = optarg;
            break;
        case 'a':
            o->agents = (int)parse_count(optarg, "--agents");
            break;
        case 's':
            o->slots = (int)parse_count(optarg, "--slots");
            break;
        case 'n':
            o->runs = (int)parse_count(optarg, "--runs");
            break;
        case 'p':
            o->plugin_n = parse_count(optarg, "--plugin");
            break;
        case 'c':
            o->command_n = parse_count(optarg, "--command");
            break;
        case 'l':
            o->latency_n = parse_count(optarg, "--latency");
            break;
        case 'y':
            o->python_n = parse_count(optarg, "--python");
            break;
        case 'z':
            o->scale_n = parse_count(optarg, "--scale");
            break;
        case 'o':
            o->plugin = strcmp(optarg, "plugin") == 0;
            o->command = strcmp(optarg, "command") == 0;
            o->latency = strcmp(optarg, "latency") == 0;
            o->python = strcmp(optarg, "python") == 0;
            o->scale = strcmp(optarg, "scale") == 0;
            if (!o->plugin && !o->command && !o->latency && !o->python &&
                !o->scale) {
                usage(stderr);
                exit(2);
            }
            break;
        case 'F':
            o->fleet = true;
            break;
        case 'S':
            o->fleet_o.shapes = optarg;
            break;
        case 'N':
            o->fleet_o.subtasks = parse_count(optarg, "--fleet-subtasks");
            break;
        case 'I':
            o->fleet_o.idle_agents =
                strcmp(optarg, "0") == 0
                    ? 0
                    : (int)parse_count(optarg, "--fleet-idle");
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            usage(stderr);
            exit(2);
        }
    }
    if (optind != argc || (o->fleet && o->redis != NULL)) {
        usage(stderr);
        exit(2);
    }
}

int
main(int argc, char **argv)
{
    struct opts o;
    struct bench b;
    struct mapq_local *local = NULL;
    struct mapq_redis_url url;
    struct rusage ru;
    char urlbuf[512], err[MAPQ_ERR_LEN], pydir[512] = "";
    double rate;
    int rc = 1;

    parse_opts(argc, argv, &o);
    memset(&b, 0, sizeof(b));
    b.o = &o;
    mapq_log_init("mapq-bench", MAPQ_LOG_WARN);
    if (o.fleet)
        return bench_fleet_run(&o.fleet_o);
    /* Before the local agents start: their workers import from there. */
    if (o.python && bench_python_prepare(pydir, sizeof(pydir)) != 0)
        return 3;
    if (o.redis == NULL) {
        local = mapq_local_start(o.agents, o.slots, o.ns, urlbuf,
                                 sizeof(urlbuf), err);
        if (local == NULL) {
            fprintf(stderr, "mapq-bench: %s\n", err);
            return 3;
        }
        o.redis = urlbuf;
        b.local = local;
    }
    if (mapq_redis_url_parse(o.redis, &url, err) != MAPQ_OK) {
        fprintf(stderr, "mapq-bench: %s\n", err);
        goto out;
    }
    b.c = mapq_redis_connect_sync(&url, 3000, err);
    if (b.c == NULL) {
        fprintf(stderr, "mapq-bench: %s\n", err);
        goto out;
    }
    /* Redis 7 allocates a latency histogram (24,688 bytes) for each command
     * the first time it runs: not what a run keeps, so "bytes kept" leaves
     * it out. Only on the bench's own Redis: another one's settings are its
     * owner's. */
    if (b.local != NULL)
        freeReplyObject(redisCommand(b.c, "CONFIG SET latency-tracking no"));
    b.base = event_base_new();
    b.driver = mapq_driver_new(b.base, &url, o.ns, MAPQ_OWNER_LEASE_MS);
    b.run = (struct bench_exec){
        .base = b.base, .c = b.c, .driver = b.driver, .ns = o.ns};
    bench_exec_attach(&b.run);
    printf("mapq-bench: %d agents x %d slots, %ld CPUs, median of %d runs\n",
           o.agents, o.slots, sysconf(_SC_NPROCESSORS_ONLN), o.runs);
    fflush(stdout);
    if (o.plugin) {
        if (throughput(&b, "plugin no-op", plugin_yaml, o.plugin_n, 0, &rate))
            goto out;
        getrusage(RUSAGE_SELF, &ru);
        printf("%-14s %8ld KiB peak RSS of this process (scheduler)\n", "",
               ru.ru_maxrss);
    }
    if (o.command && throughput(&b, "command true", command_yaml, o.command_n,
                                o.agents * o.slots, &rate))
        goto out;
    if (o.latency && latency(&b, o.latency_n) != 0)
        goto out;
    if (o.latency) {
        if (throughput(&b, "window of 1", window_yaml, 1000, 0, &rate))
            goto out;
        printf("%-14s a freed window slot is filled and run again within "
               "%.3f ms (1000 no-op subtasks, concurrency: 1)\n",
               "", rate > 0 ? 1e3 / rate : 0);
        if (window_mixed(&b) != 0)
            goto out;
    }
    if (o.python && python(&b, pydir) != 0)
        goto out;
    if (o.scale && bench_scale_run(o.redis, o.ns, o.scale_n) != 0)
        goto out;
    rc = 0;
out:
    bench_python_cleanup(pydir);
    mapq_driver_free(b.driver);
    if (b.base != NULL)
        event_base_free(b.base);
    if (b.c != NULL)
        redisFree(b.c);
    mapq_local_stop(local);
    return rc;
}
