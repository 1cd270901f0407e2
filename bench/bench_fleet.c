/*
 * bench_fleet.c - mapq-bench --fleet: what many real agents cost one Redis.
 *
 * Each configuration gets its own private redis-server and agents (local
 * mode), so one figure never pays for another's leftovers. The map is
 * driven in-process with the scheduler's driver (bench_exec.c), from
 * its creation to its assembled output, and then checked: every subtask
 * must have its result recorded. Redis cost is read with INFO before and
 * after: CPU from used_cpu_user + used_cpu_sys, commands from the sum of
 * commandstats calls (which counts the commands run inside functions).
 * Every figure is printed as a number beside its bare limit (the ideal
 * wall time, one Redis core), never as a pass or fail: on a small machine
 * process creation, not Redis, sets the wall time.
 */
#include "bench_fleet.h"
#include "bench_exec.h"

#include <errno.h>
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_buf.h"
#include "mapq_driver.h"
#include "mapq_keys.h"
#include "mapq_local.h"
#include "mapq_redis.h"
#include "mapq_value.h"
#include "mapq_workflow.h"

#define MAX_SHAPES       8
#define MAX_AGENTS       1000
#define MAX_SLOTS        1000
#define REGISTER_TIMEOUT 60.0 /* s for every agent to send its heartbeat */
#define SHAPE_SETTLE_S   1.0  /* quiet after registration, before a map */
#define CONNS_PER_AGENT  3    /* Redis connections one agent may hold */

struct shape {
    int agents, slots;
};

/* One private Redis with its agents, and a driver when it runs maps. */
struct fleet {
    const struct bench_fleet_opts *o;
    struct mapq_local *local;
    struct mapq_redis_url url;
    redisContext *c;
    struct event_base *base;
    struct mapq_driver *driver;
    struct bench_exec run; /* the map being measured */
};

/* Redis counters read with one INFO. */
struct fleet_stats {
    double cpu_s;
    long long calls; /* sum of commandstats calls */
    char *info;      /* the INFO text itself, for stats_print_top() */
};

#define TOP_COMMANDS 6 /* commands named in "where the time went" */
#define IDLE_FLOOR_S 5 /* Redis alone is measured this long */

void
bench_fleet_opts_init(struct bench_fleet_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->ns = "mapqbench";
    o->shapes = "16x8,64x1";
    o->subtasks = 2000;
    o->sleep_ms = 50;
    o->idle_agents = 100;
    o->idle_settle_ms = 3000;
    /* One whole period of every idle agent's calls: heartbeats every 5 s,
     * doorbell waits and reaps every 15 s. */
    o->idle_measure_ms = 15000;
}

static void
pause_s(double s)
{
    struct timespec ts;

    ts.tv_sec = (time_t)s;
    ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Sum of calls= over the cmdstat_ lines of an INFO reply. */
static long long
commandstats_calls(const char *info)
{
    const char *p = info, *calls, *eol;
    long long sum = 0;

    while ((p = strstr(p, "cmdstat_")) != NULL) {
        calls = strstr(p, ":calls=");
        eol = strchr(p, '\n');
        if ((p == info || p[-1] == '\n') && calls != NULL &&
            (eol == NULL || calls < eol))
            sum += strtoll(calls + strlen(":calls="), NULL, 10);
        p += strlen("cmdstat_");
    }
    return sum;
}

/* One INFO; its own call shows in the next reading, not in this one. */
static int
stats_read(redisContext *c, struct fleet_stats *st)
{
    redisReply *r = redisCommand(c, "INFO cpu commandstats");
    int rc = -1;

    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        st->cpu_s = bench_info_field(r->str, "used_cpu_sys") +
                    bench_info_field(r->str, "used_cpu_user");
        st->calls = commandstats_calls(r->str);
        free(st->info);
        st->info = mapq_xstrdup(r->str);
        rc = 0;
    } else {
        fprintf(stderr, "mapq-bench: INFO failed: %s\n",
                r != NULL && r->type == REDIS_REPLY_ERROR ? r->str : c->errstr);
    }
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

/* The calls= and usec= of command cmd (e.g. "fcall") in an INFO text, 0
 * and 0 when it is not there. */
static void
command_cost(const char *info, const char *cmd, long long *calls, double *usec)
{
    char head[96];
    const char *p;

    *calls = 0;
    *usec = 0;
    snprintf(head, sizeof(head), "\ncmdstat_%s:calls=", cmd);
    if (info == NULL || (p = strstr(info, head)) == NULL)
        return;
    *calls = strtoll(p + strlen(head), NULL, 10);
    if ((p = strstr(p, ",usec=")) != NULL)
        *usec = strtod(p + strlen(",usec="), NULL);
}

/*
 * Prints, per unit (a subtask, or an agent-second), the commands that took
 * most of Redis's command time between s0 and s1: where the time went.
 * Command time excludes Redis's own event loop and network system calls,
 * which the CPU figure includes.
 */
static void
stats_print_top(const struct fleet_stats *s0, const struct fleet_stats *s1,
                double units, const char *unit)
{
    struct {
        char name[48];
        long long calls;
        double usec;
    } top[TOP_COMMANDS];
    const char *p = s1->info;
    int ntop = 0, i, j;

    memset(top, 0, sizeof(top));
    while (p != NULL && (p = strstr(p, "\ncmdstat_")) != NULL) {
        long long c1, c0;
        double u1, u0;
        char name[48];
        size_t len;

        p += strlen("\ncmdstat_");
        len = strcspn(p, ":");
        if (len == 0 || len >= sizeof(name))
            continue;
        memcpy(name, p, len);
        name[len] = '\0';
        command_cost(s1->info, name, &c1, &u1);
        command_cost(s0->info, name, &c0, &u0);
        if (c1 - c0 <= 0 || strcmp(name, "info") == 0)
            continue;
        for (i = 0; i < ntop && top[i].usec >= u1 - u0; i++)
            ;
        if (i == TOP_COMMANDS)
            continue;
        for (j = (ntop < TOP_COMMANDS ? ntop : TOP_COMMANDS - 1); j > i; j--)
            top[j] = top[j - 1];
        snprintf(top[i].name, sizeof(top[i].name), "%s", name);
        top[i].calls = c1 - c0;
        top[i].usec = u1 - u0;
        if (ntop < TOP_COMMANDS)
            ntop++;
    }
    printf("%-14s where redis's command time went, per %s:", "", unit);
    for (i = 0; i < ntop; i++)
        printf("%s %s %.2f calls %.1f us", i ? "," : "", top[i].name,
               (double)top[i].calls / units, top[i].usec / units);
    printf("\n");
}

/* Parses "AxS,AxS" (or "none") into sh; returns the count, or -1 with a
 * message. */
static int
parse_shapes(const char *s, struct shape *sh)
{
    const char *p = s;
    char *end;
    long a, n;
    int count = 0;

    if (strcmp(s, "none") == 0)
        return 0;
    while (*p != '\0') {
        if (count == MAX_SHAPES)
            goto bad;
        a = strtol(p, &end, 10);
        if (end == p || *end != 'x' || a < 1 || a > MAX_AGENTS)
            goto bad;
        p = end + 1;
        n = strtol(p, &end, 10);
        if (end == p || (*end != ',' && *end != '\0') || n < 1 || n > MAX_SLOTS)
            goto bad;
        sh[count].agents = (int)a;
        sh[count].slots = (int)n;
        count++;
        p = *end == ',' ? end + 1 : end;
    }
    if (count > 0)
        return count;
bad:
    fprintf(stderr,
            "mapq-bench: fleet shapes must be up to %d AGENTSxSLOTS "
            "separated by commas (e.g. 16x8,64x1), or none, got '%s'\n",
            MAX_SHAPES, s);
    return -1;
}

/* Raises the soft limit res to want (within the hard limit); -1 if it
 * cannot reach it. */
static int
raise_limit(int res, const char *what, rlim_t want)
{
    struct rlimit rl;

    if (getrlimit(res, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= want)
        return 0;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
        fprintf(stderr,
                "mapq-bench: the fleet needs %llu %s, the hard limit is "
                "%llu (see ulimit)\n",
                (unsigned long long)want, what,
                (unsigned long long)rl.rlim_max);
        return -1;
    }
    rl.rlim_cur = want;
    if (setrlimit(res, &rl) != 0) {
        fprintf(stderr,
                "mapq-bench: cannot raise the limit of %s to %llu: "
                "%s\n",
                what, (unsigned long long)want, strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * Makes room for agents x slots: open files for Redis (it inherits ours
 * and lowers maxclients to fit) and processes for agents and commands.
 */
static int
raise_limits(int agents, int slots)
{
    rlim_t files = (rlim_t)agents * CONNS_PER_AGENT + 64;
    rlim_t procs = (rlim_t)agents * (rlim_t)(1 + slots) + 64;

    if (raise_limit(RLIMIT_NOFILE, "open files", files) != 0 ||
        raise_limit(RLIMIT_NPROC, "processes", procs) != 0)
        return -1;
    return 0;
}

/* Checks that Redis takes every agent's connections (CONFIG maxclients). */
static int
check_maxclients(struct fleet *f, int agents)
{
    redisReply *r = redisCommand(f->c, "CONFIG GET maxclients");
    long long max = -1;

    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[1]->type == REDIS_REPLY_STRING)
        max = strtoll(r->element[1]->str, NULL, 10);
    if (r != NULL)
        freeReplyObject(r);
    if (max >= 0 && max < (long long)agents * CONNS_PER_AGENT + 4) {
        fprintf(stderr,
                "mapq-bench: the local Redis takes %lld clients, %d agents "
                "need up to %d\n",
                max, agents, agents * CONNS_PER_AGENT);
        return -1;
    }
    return 0;
}

/* Waits, bounded, until n agents have sent a heartbeat (P:agents). */
static int
wait_agents(struct fleet *f, int n)
{
    char *key = mapq_key_agents(f->o->ns);
    double t0 = bench_now_s();
    long long got = 0;
    int rc = -1;

    while (bench_now_s() - t0 < REGISTER_TIMEOUT) {
        got = bench_redis_integer(f->c, "ZCARD %s", key, NULL);
        if (got >= n) {
            fprintf(stderr, "  %d agents registered in %.2f s\n", n,
                    bench_now_s() - t0);
            rc = 0;
            break;
        }
        pause_s(0.02);
    }
    if (rc != 0)
        fprintf(stderr,
                "mapq-bench: only %lld of %d agents registered within "
                "%.0f s\n",
                got, n, REGISTER_TIMEOUT);
    free(key);
    return rc;
}

static void
fleet_stop(struct fleet *f)
{
    mapq_driver_free(f->driver);
    if (f->base != NULL)
        event_base_free(f->base);
    if (f->c != NULL)
        redisFree(f->c);
    mapq_local_stop(f->local);
    memset(f, 0, sizeof(*f));
}

/*
 * Starts a private Redis and agents x slots agents and waits until all
 * registered; with drive, also a driver on its own loop. On failure
 * prints why and returns -1; fleet_stop() undoes either way.
 */
static int
fleet_start(struct fleet *f, const struct bench_fleet_opts *o, int agents,
            int slots, bool drive)
{
    char urlbuf[512], err[MAPQ_ERR_LEN];

    memset(f, 0, sizeof(*f));
    f->o = o;
    if (raise_limits(agents, slots) != 0)
        return -1;
    f->local =
        mapq_local_start(agents, slots, o->ns, urlbuf, sizeof(urlbuf), err);
    if (f->local == NULL)
        goto fail;
    if (mapq_redis_url_parse(urlbuf, &f->url, err) != MAPQ_OK)
        goto fail;
    f->c = mapq_redis_connect_sync(&f->url, 3000, err);
    if (f->c == NULL)
        goto fail;
    if (check_maxclients(f, agents) != 0 || wait_agents(f, agents) != 0)
        return -1;
    if (drive) {
        f->base = event_base_new();
        f->driver =
            mapq_driver_new(f->base, &f->url, o->ns, MAPQ_OWNER_LEASE_MS);
        f->run = (struct bench_exec){
            .base = f->base, .c = f->c, .driver = f->driver, .ns = o->ns};
        bench_exec_attach(&f->run);
    }
    return 0;
fail:
    fprintf(stderr, "mapq-bench: %s\n", err);
    return -1;
}

/* Checks that node 0 of execution id recorded n results. */
static int
verify(struct fleet *f, const char *id, long n)
{
    char *key = mapq_key_results(f->o->ns, id, 0);
    long long got = bench_redis_integer(f->c, "HLEN %s", key, NULL);

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

/* ---- figures ----------------------------------------------------------- */

/* The sleep map: one command subtask per element, each sleeping ms.
 * Caller frees. */
static char *
sleep_yaml(int ms)
{
    static const char fmt[] = "name: bench_fleet\n"
                              "inputs: {xs: {type: \"list[int]\"}}\n"
                              "tasks:\n"
                              "  nap:\n"
                              "    inputs: {x: int}\n"
                              "    command: [/bin/sleep, \"%d.%03d\"]\n"
                              "nodes:\n"
                              "  all: {map: nap, over: {x: $inputs.xs}}\n";
    size_t len = sizeof(fmt) + 32;
    char *s = mapq_xmalloc(len);

    snprintf(s, len, fmt, ms / 1000, ms % 1000);
    return s;
}

/* Runs the sleep map on agents x slots and prints its figures. */
static int
shape_run(const struct bench_fleet_opts *o, const struct shape *sh)
{
    char label[32], id[MAPQ_EXEC_ID_LEN + 1];
    char *yaml = sleep_yaml(o->sleep_ms);
    long n = o->subtasks, total = (long)sh->agents * sh->slots;
    double secs, ideal, cpu_us, cmds;
    struct fleet_stats s0 = {0}, s1 = {0};
    struct fleet f;
    int rc = -1;

    snprintf(label, sizeof(label), "fleet %dx%d", sh->agents, sh->slots);
    fprintf(stderr, "  %s: starting %d agents x %d slots\n", label, sh->agents,
            sh->slots);
    if (fleet_start(&f, o, sh->agents, sh->slots, true) != 0)
        goto out;
    pause_s(SHAPE_SETTLE_S);
    if (stats_read(f.c, &s0) != 0 ||
        bench_exec_run(&f.run, yaml, "fleet.yaml", n, &secs, id) != 0 ||
        stats_read(f.c, &s1) != 0 || verify(&f, id, n) != 0)
        goto out;
    ideal = (double)n * o->sleep_ms / 1e3 / (double)total;
    cpu_us = (s1.cpu_s - s0.cpu_s) * 1e6 / (double)n;
    /* less the first INFO, counted in the second reading */
    cmds = (double)(s1.calls - s0.calls - 1) / (double)n;
    printf("%-14s %8ld subtasks  wall %.3f s, ideal %.3f s (%ld x %d ms / "
           "%ld slots): %.2fx ideal, %.0f subtasks/s\n",
           label, n, secs, ideal, n, o->sleep_ms, total, secs / ideal,
           (double)n / secs);
    printf("%-14s per subtask: redis %.1f us cpu, %.2f commands (counting "
           "those inside functions); one redis core could serve %.0f "
           "subtasks/s at that cost\n",
           "", cpu_us, cmds, cpu_us > 0 ? 1e6 / cpu_us : 0);
    stats_print_top(&s0, &s1, (double)n, "subtask");
    fflush(stdout);
    rc = 0;
out:
    fleet_stop(&f);
    free(s0.info);
    free(s1.info);
    free(yaml);
    return rc;
}

/* Lets f settle, then reads Redis's counters into s0 and, ms later, s1;
 * *dt is the span between them (s). */
static int
measure_quiet(struct fleet *f, const struct bench_fleet_opts *o, int ms,
              struct fleet_stats *s0, struct fleet_stats *s1, double *dt)
{
    double t0;

    pause_s(o->idle_settle_ms / 1e3);
    t0 = bench_now_s();
    if (stats_read(f->c, s0) != 0)
        return -1;
    pause_s(ms / 1e3);
    if (stats_read(f->c, s1) != 0)
        return -1;
    *dt = bench_now_s() - t0;
    return 0;
}

/* Redis's own CPU per second (a share of a core) with no agent: its
 * timers, the floor under any idle figure. */
static int
idle_floor(const struct bench_fleet_opts *o, double *cpu)
{
    struct fleet_stats s0 = {0}, s1 = {0};
    struct fleet f;
    double dt;
    int rc = -1;

    if (fleet_start(&f, o, 0, 1, false) != 0 ||
        measure_quiet(&f, o, IDLE_FLOOR_S * 1000, &s0, &s1, &dt) != 0)
        goto out;
    *cpu = (s1.cpu_s - s0.cpu_s) / dt;
    rc = 0;
out:
    fleet_stop(&f);
    free(s0.info);
    free(s1.info);
    return rc;
}

/* Starts idle agents, lets them settle, prints the Redis CPU they cost:
 * in all, and less what the same Redis spends with no agent. */
static int
idle_run(const struct bench_fleet_opts *o)
{
    struct fleet_stats s0 = {0}, s1 = {0};
    struct fleet f;
    double dt, cpu, floor = 0;
    int n = o->idle_agents, rc = -1;

    memset(&f, 0, sizeof(f));
    fprintf(stderr, "  fleet idle: Redis alone for %d s\n", IDLE_FLOOR_S);
    if (idle_floor(o, &floor) != 0)
        goto out;
    fprintf(stderr, "  fleet idle: starting %d agents\n", n);
    if (fleet_start(&f, o, n, 1, false) != 0 ||
        measure_quiet(&f, o, o->idle_measure_ms, &s0, &s1, &dt) != 0)
        goto out;
    cpu = (s1.cpu_s - s0.cpu_s) / dt;
    printf("%-14s %8d agents    redis %.2f%% of a core in all, %.2f%% "
           "alone: the agents cost %.2f%% (%.1f us/s per agent), %.1f "
           "commands/s (%.2f per agent), measured %.1f s after %.1f s to "
           "settle\n",
           "fleet idle", n, cpu * 100, floor * 100, (cpu - floor) * 100,
           (cpu - floor) * 1e6 / n, (double)(s1.calls - s0.calls - 1) / dt,
           (double)(s1.calls - s0.calls - 1) / dt / n, dt,
           o->idle_settle_ms / 1e3);
    stats_print_top(&s0, &s1, dt * n, "agent-second");
    rc = 0;
out:
    fleet_stop(&f);
    free(s0.info);
    free(s1.info);
    return rc;
}

int
bench_fleet_run(const struct bench_fleet_opts *o)
{
    struct shape shapes[MAX_SHAPES];
    int nshapes, i;

    nshapes = parse_shapes(o->shapes, shapes);
    if (nshapes < 0)
        return 1;
    if (o->subtasks < 1 || o->sleep_ms < 1 || o->idle_agents < 0 ||
        o->idle_agents > MAX_AGENTS) {
        fprintf(stderr, "mapq-bench: bad fleet sizes\n");
        return 1;
    }
    printf("mapq-bench --fleet: %ld subtasks of sleep %d ms per "
           "configuration, %ld CPUs, a private redis-server each\n",
           o->subtasks, o->sleep_ms, sysconf(_SC_NPROCESSORS_ONLN));
    fflush(stdout);
    for (i = 0; i < nshapes; i++)
        if (shape_run(o, &shapes[i]) != 0)
            return 1;
    if (o->idle_agents > 0 && idle_run(o) != 0)
        return 1;
    return 0;
}
