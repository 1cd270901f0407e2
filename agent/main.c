/*
 * main.c - mapq-agent: options, signals, loop, teardown.
 */
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mapq_agent.h"
#include "mapq_alloc.h"
#include "mapq_cmd.h"
#include "mapq_guard.h"
#include "mapq_health.h"
#include "mapq_hex.h"
#include "mapq_http.h"
#include "mapq_log.h"
#include "mapq_proto.h"
#include "mapq_redis.h"
#include "mapq_seal.h"
#include "mapq_units.h"
#include "mapq_worker.h"

#define MAX_QUEUES         32
#define MAX_ALLOW          16
#define MAX_STORES         8
#define MAX_AGE_DEFAULT_MS 10000

static const char usage[] =
    "usage: mapq-agent [--redis URL] [--slots N] [--queue Q]... "
    "[--interruptible]\n"
    "                  [--grace DUR] [--name NAME] [--cpus N] [--mem SIZE]\n"
    "                  [--namespace NS] [--lease DUR] [--health-file PATH]\n"
    "                  [--worker-idle DUR] [--metrics HOST:PORT]\n"
    "                  [--file-cache DIR] [--file-cache-max SIZE]\n"
    "                  [--store URI]... [--store-max SIZE]\n"
    "                  [--secret-file PATH] [--allow-exec DIR]...\n"
    "                  [--redis-password-file PATH] [--durable]\n"
    "                  [-v|--verbose] [-q] [--log-format text|json]\n"
    "                  [--version]\n"
    "       mapq-agent --check-health PATH [--max-age DUR]\n"
    "\n"
    "Runs mapq subtasks from Redis. Defaults: --redis $MAPQ_REDIS_URL or\n"
    "redis://127.0.0.1:6379 (a password from --redis-password-file, or\n"
    "$MAPQ_REDIS_PASSWORD when the URL has none), --slots = CPUs,\n"
    "--queue default, --grace 30s, --lease 30s, --name HOST-PID-RANDOM,\n"
    "--namespace $MAPQ_NAMESPACE or mapq, --health-file $MAPQ_HEALTH_FILE\n"
    "or none, --cpus = CPUs online, --mem = physical memory, --worker-idle\n"
    "30s (a persistent worker with no subtask for that long ends).\n"
    "\n"
    "A command whose task declares resources starts only when they fit in\n"
    "what --cpus and --mem leave free; its declared CPUs are pinned to\n"
    "CPUs of the agent's own (when --cpus is at most the CPUs it may use).\n"
    "\n"
    "With --health-file the agent touches PATH after every heartbeat Redis\n"
    "answered (every second while it holds subtasks, every 5 s when idle)\n"
    "and removes it when it exits.\n"
    "--check-health exits 0 when PATH was touched within --max-age (10s),\n"
    "else says why and exits 1.\n"
    "\n"
    "Inputs of type file are fetched before a subtask starts; their content\n"
    "is kept by hash in --file-cache (default: under the agent's working\n"
    "directory, removed when it exits), at most --file-cache-max (1G),\n"
    "least recently used first out. --store file:///DIR (a shared directory\n"
    "mounted at that path) or s3://BUCKET[/PREFIX] (or $MAPQ_STORE) names a\n"
    "store whose files it may read and where it stores a task's output\n"
    "files when the run says so; else they go to Redis, at most --store-max\n"
    "(64M) each.\n"
    "\n"
    "With --metrics the agent serves Prometheus metrics on\n"
    "http://HOST:PORT/metrics (:PORT for every address).\n"
    "\n"
    "With --secret-file (or $MAPQ_SECRET_FILE) the agent runs only task\n"
    "specs and subtasks signed with that secret by the scheduler; anything\n"
    "else fails for good as a security error. With --allow-exec it runs\n"
    "only programs and plugin libraries under those directories.\n"
    "\n"
    "--redis redis+sentinel://H1:26379,H2:26379/NAME[/DB] finds the primary\n"
    "through Sentinel, again after a failover. With --durable every write\n"
    "(a result, a lease) counts only once a replica has it (WAIT).\n";

struct options {
    struct mapq_agent_config cfg;
    char *url_arg; /* the last --redis argument, in argv; or NULL */
    const char *queues[MAX_QUEUES];
    char name[300];
    char self_dir[PATH_MAX];
    const char *health_file; /* touched on heartbeats; NULL: none */
    bool health_failing;     /* the last touch failed (logged once) */
    bool ready;              /* READY=1 sent to the service manager */
    const char *check_path;  /* --check-health: check this file, exit */
    struct mapq_seal *seal;  /* --secret-file, read; NULL: none */
    char *allow[MAX_ALLOW];  /* --allow-exec, real paths (owned) */
    struct mapq_store stores[MAX_STORES]; /* --store */
    int64_t max_age_ms;                   /* for --check-health */
    bool max_age_set;
};

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    mapq_log(MAPQ_LOG_INFO, "received %s", strsignal((int)sig));
    mapq_health_notify("STOPPING=1");
    mapq_agent_shutdown(arg);
}

/* The loop turns: the service manager's watchdog is fed from it, not from
 * Redis, so an agent waiting for Redis is not killed for it. */
static void
watchdog_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
    mapq_health_notify("WATCHDOG=1");
}

/* A reaped child that is no command's may be a persistent worker's. */
static void
worker_reaped(pid_t pid, int status)
{
    (void)mapq_worker_reaped(pid, status);
}

/* SIGCHLD came on its signalfd: one read takes it (a standard signal is
 * pending at most once), then every exited child is reaped. */
static void
sigchld_cb(evutil_socket_t fd, short what, void *arg)
{
    struct signalfd_siginfo si[4];

    (void)what;
    (void)arg;
    if (read(fd, si, sizeof(si)) < 0 && errno != EAGAIN && errno != EINTR)
        mapq_log_errno(MAPQ_LOG_WARN, errno, "cannot read SIGCHLD");
    mapq_cmd_reap(worker_reaped);
}

/*
 * Child exits arrive on a signalfd instead of through a handler: per
 * exit, one read where a handler took a signal frame, a write to the
 * loop's signal pipe, a sigreturn and two reads. SIGCHLD stays blocked in
 * the agent; every child starts with an empty mask (mapq_proc). -1 when
 * that cannot be set up.
 */
static int
sigchld_fd(void)
{
    sigset_t chld;

    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (sigprocmask(SIG_BLOCK, &chld, NULL) != 0)
        return -1;
    return signalfd(-1, &chld, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* After a heartbeat: the first tells the service manager the agent is
 * ready (it reached Redis and registered); each touches the health file,
 * if any, whose failure is logged when it starts and when it ends, not
 * every second. */
static void
heartbeat_cb(void *arg)
{
    struct options *o = arg;
    char err[MAPQ_ERR_LEN];

    if (!o->ready) {
        mapq_health_notify("READY=1");
        o->ready = true;
    }
    if (o->health_file == NULL)
        return;
    if (mapq_health_touch(o->health_file, err) != MAPQ_OK) {
        if (!o->health_failing)
            mapq_log(MAPQ_LOG_WARN, "%s", err);
        o->health_failing = true;
        return;
    }
    if (o->health_failing)
        mapq_log(MAPQ_LOG_INFO, "the health file '%s' is touched again",
                 o->health_file);
    o->health_failing = false;
}

static void
libevent_log(int severity, const char *msg)
{
    mapq_log(severity >= EVENT_LOG_ERR ? MAPQ_LOG_ERROR : MAPQ_LOG_DEBUG,
             "libevent: %s", msg);
}

static int
parse_count(const char *s, const char *what, long lo, long hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);

    if (*s == '\0' || *end != '\0' || v < lo || v > hi) {
        fprintf(stderr,
                "mapq-agent: %s must be a number from %ld to %ld, got "
                "'%s'\n",
                what, lo, hi, s);
        return -1;
    }
    *out = (int)v;
    return 0;
}

static void
find_self_dir(char *dir, size_t len)
{
    ssize_t n = readlink("/proc/self/exe", dir, len - 1);
    char *slash;

    if (n <= 0) {
        snprintf(dir, len, ".");
        return;
    }
    dir[n] = '\0';
    slash = strrchr(dir, '/');
    if (slash != NULL)
        *slash = '\0';
}

/* Returns 0, 1 (exit 0: help) or -1 (usage error). Long because it is
 * getopt's switch: one short case per option, read top to bottom. */
/* Adds the real path of dir, a directory, to --allow-exec; -1 after
 * saying why. */
static int
add_allow(struct options *o, const char *dir)
{
    char *real;
    struct stat st;

    if (o->cfg.nallow == MAX_ALLOW) {
        fprintf(stderr, "mapq-agent: at most %d --allow-exec options\n",
                MAX_ALLOW);
        return -1;
    }
    real = realpath(dir, NULL);
    if (real == NULL || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "mapq-agent: --allow-exec '%s' is not a directory\n",
                dir);
        free(real);
        return -1;
    }
    o->allow[o->cfg.nallow++] = real;
    o->cfg.allow_exec = (const char *const *)o->allow;
    return 0;
}

/* Adds the store uri (from what) to --store; -1 after saying why. A
 * shared directory that is missing now is only warned of: its mount may
 * come later, and until then storing there fails (and is retried). */
static int
add_store(struct options *o, const char *uri, const char *what)
{
    struct mapq_store *st = &o->stores[o->cfg.nstores];
    char err[MAPQ_ERR_LEN];
    struct stat sb;

    if (o->cfg.nstores == MAX_STORES) {
        fprintf(stderr, "mapq-agent: at most %d --store options\n", MAX_STORES);
        return -1;
    }
    if (mapq_store_parse(uri, st, err) != MAPQ_OK) {
        fprintf(stderr, "mapq-agent: %s: %s\n", what, err);
        return -1;
    }
    if (st->kind == MAPQ_STORE_REDIS)
        return 0; /* the embedded store needs no naming */
    if (st->kind == MAPQ_STORE_DIR &&
        (stat(st->dir, &sb) != 0 || !S_ISDIR(sb.st_mode)))
        mapq_log(MAPQ_LOG_WARN, "store directory '%s' is missing (%s)", st->dir,
                 what);
    o->cfg.nstores++;
    o->cfg.stores = o->stores;
    return 0;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"redis", required_argument, NULL, 'r'},
        {"slots", required_argument, NULL, 's'},
        {"queue", required_argument, NULL, 'Q'},
        {"interruptible", no_argument, NULL, 'i'},
        {"grace", required_argument, NULL, 'g'},
        {"name", required_argument, NULL, 'n'},
        {"cpus", required_argument, NULL, 'c'},
        {"worker-idle", required_argument, NULL, 'W'},
        {"mem", required_argument, NULL, 'm'},
        {"namespace", required_argument, NULL, 'N'},
        {"lease", required_argument, NULL, 'l'},
        {"health-file", required_argument, NULL, 'H'},
        {"check-health", required_argument, NULL, 'C'},
        {"max-age", required_argument, NULL, 'A'},
        {"verbose", no_argument, NULL, 'v'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"log-format", required_argument, NULL, 'F'},
        {"metrics", required_argument, NULL, 'M'},
        {"secret-file", required_argument, NULL, 'S'},
        {"allow-exec", required_argument, NULL, 'X'},
        {"redis-password-file", required_argument, NULL, 'p'},
        {"durable", no_argument, NULL, 'D'},
        {"file-cache", required_argument, NULL, 'f'},
        {"file-cache-max", required_argument, NULL, 'z'},
        {"store", required_argument, NULL, 'o'},
        {"store-max", required_argument, NULL, 'O'},
        {NULL, 0, NULL, 0}};
    const char *url = getenv("MAPQ_REDIS_URL"), *secret;
    const char *password_file = NULL;
    bool durable = false;
    char err[MAPQ_ERR_LEN], host[256] = "host";
    int64_t ms, bytes;
    int c, port;

    o->cfg.ns = getenv("MAPQ_NAMESPACE");
    if (o->cfg.ns == NULL || *o->cfg.ns == '\0')
        o->cfg.ns = MAPQ_NAMESPACE_DEFAULT;
    o->cfg.slots = (int)sysconf(_SC_NPROCESSORS_ONLN);
    o->cfg.grace_ms = 30000;
    o->cfg.lease_ms = 30000;
    o->cfg.worker_idle_ms = MAPQ_WORKER_IDLE_DEFAULT_MS;
    o->cfg.plugin_batch = 256;
    o->health_file = getenv("MAPQ_HEALTH_FILE");
    secret = getenv("MAPQ_SECRET_FILE");
    o->max_age_ms = MAX_AGE_DEFAULT_MS;
    while ((c = getopt_long(argc, argv, "vqh", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            /* Only the last --redis counts: hide the ones before it now. */
            mapq_redis_url_hide_password(o->url_arg);
            url = o->url_arg = optarg;
            break;
        case 's':
            if (parse_count(optarg, "--slots", 1, 100000, &o->cfg.slots))
                return -1;
            break;
        case 'Q':
            if (o->cfg.nqueues == MAX_QUEUES) {
                fprintf(stderr, "mapq-agent: at most %d --queue options\n",
                        MAX_QUEUES);
                return -1;
            }
            if (optarg[0] == '\0' ||
                strspn(optarg, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRS"
                               "TUVWXYZ0123456789_.-") != strlen(optarg)) {
                fprintf(stderr, "mapq-agent: bad queue name '%s'\n", optarg);
                return -1;
            }
            o->queues[o->cfg.nqueues++] = optarg;
            break;
        case 'i':
            o->cfg.interruptible = true;
            break;
        case 'g':
            if (mapq_duration_parse(optarg, &ms, err) != MAPQ_OK) {
                fprintf(stderr, "mapq-agent: --grace: %s\n", err);
                return -1;
            }
            o->cfg.grace_ms = ms;
            break;
        case 'l':
            if (mapq_duration_parse(optarg, &ms, err) != MAPQ_OK || ms < 300 ||
                ms > 86400000) {
                fprintf(stderr, "mapq-agent: --lease must be a duration from "
                                "300ms to 24h\n");
                return -1;
            }
            o->cfg.lease_ms = (int)ms;
            break;
        case 'n':
            snprintf(o->name, sizeof(o->name), "%s", optarg);
            break;
        case 'c': {
            char *end;
            double cpus = strtod(optarg, &end);

            if (*optarg == '\0' || *end != '\0' || !(cpus > 0) ||
                cpus > 100000) {
                fprintf(stderr,
                        "mapq-agent: --cpus must be a number greater than 0 "
                        "and at most 100000, got '%s'\n",
                        optarg);
                return -1;
            }
            o->cfg.cpu_milli = (int64_t)ceil(cpus * 1000);
            break;
        }
        case 'm':
            if (mapq_size_parse(optarg, &bytes, err) != MAPQ_OK) {
                fprintf(stderr, "mapq-agent: --mem: %s\n", err);
                return -1;
            }
            if (bytes == 0) {
                fprintf(stderr, "mapq-agent: --mem must be more than 0\n");
                return -1;
            }
            o->cfg.mem_bytes = bytes;
            break;
        case 'W':
            if (mapq_duration_parse(optarg, &ms, err) != MAPQ_OK || ms < 100) {
                fprintf(stderr,
                        "mapq-agent: --worker-idle must be a duration of "
                        "100ms or more, got '%s'\n",
                        optarg);
                return -1;
            }
            o->cfg.worker_idle_ms = ms;
            break;
        case 'N':
            o->cfg.ns = optarg;
            break;
        case 'f':
            if (optarg[0] == '\0') {
                fprintf(stderr, "mapq-agent: --file-cache needs a directory\n");
                return -1;
            }
            o->cfg.file_cache = optarg;
            break;
        case 'z':
            if (mapq_size_parse(optarg, &bytes, err) != MAPQ_OK) {
                fprintf(stderr, "mapq-agent: --file-cache-max: %s\n", err);
                return -1;
            }
            if (bytes == 0) {
                fprintf(stderr,
                        "mapq-agent: --file-cache-max must be more than 0\n");
                return -1;
            }
            o->cfg.file_cache_max = bytes;
            break;
        case 'o':
            if (add_store(o, optarg, "--store") != 0)
                return -1;
            break;
        case 'O':
            if (mapq_size_parse(optarg, &bytes, err) != MAPQ_OK) {
                fprintf(stderr, "mapq-agent: --store-max: %s\n", err);
                return -1;
            }
            if (bytes > MAPQ_BLOB_MAX_LIMIT) {
                fprintf(stderr,
                        "mapq-agent: --store-max: at most 512Mi (Redis's "
                        "largest string), got '%s'\n",
                        optarg);
                return -1;
            }
            o->cfg.store_max = bytes;
            break;
        case 'S':
            secret = optarg;
            break;
        case 'X':
            if (add_allow(o, optarg) != 0)
                return -1;
            break;
        case 'p':
            password_file = optarg;
            break;
        case 'D':
            durable = true;
            break;
        case 'H':
            o->health_file = optarg;
            break;
        case 'C':
            if (optarg[0] == '\0') {
                fprintf(stderr, "mapq-agent: --check-health needs a path\n");
                return -1;
            }
            o->check_path = optarg;
            break;
        case 'A':
            if (mapq_duration_parse(optarg, &ms, err) != MAPQ_OK) {
                fprintf(stderr, "mapq-agent: --max-age: %s\n", err);
                return -1;
            }
            o->max_age_ms = ms;
            o->max_age_set = true;
            break;
        case 'v':
            mapq_log_threshold = MAPQ_LOG_DEBUG;
            break;
        case 'q':
            mapq_log_threshold = MAPQ_LOG_WARN;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        case 'V':
            printf("mapq-agent %s (protocol %d)\n", MAPQ_VERSION,
                   MAPQ_PROTOCOL);
            return 1;
        case 'M':
            if (!mapq_http_parse_addr(optarg, host, sizeof(host), &port)) {
                fprintf(stderr,
                        "mapq-agent: --metrics must be HOST:PORT (e.g. "
                        "127.0.0.1:9100, :9100, [::1]:9100), got '%s'\n",
                        optarg);
                return -1;
            }
            o->cfg.metrics_addr = optarg;
            break;
        case 'F':
            if (mapq_log_set_format(optarg) != 0) {
                fprintf(stderr,
                        "mapq-agent: --log-format must be text or json, got "
                        "'%s'\n",
                        optarg);
                return -1;
            }
            break;
        default:
            fputs(usage, stderr);
            return -1;
        }
    }
    if (optind != argc) {
        fprintf(stderr, "mapq-agent: unexpected argument '%s'\n%s",
                argv[optind], usage);
        return -1;
    }
    if (o->check_path != NULL)
        return 0; /* nothing else applies */
    if (o->max_age_set) {
        fprintf(stderr, "mapq-agent: --max-age goes with --check-health\n");
        return -1;
    }
    if (o->health_file != NULL && o->health_file[0] == '\0')
        o->health_file = NULL;
    if (mapq_redis_url_parse(url ? url : "redis://127.0.0.1:6379", &o->cfg.url,
                             err) != MAPQ_OK ||
        mapq_redis_url_password(&o->cfg.url, password_file, err) != MAPQ_OK) {
        fprintf(stderr, "mapq-agent: %s\n", err);
        return -1;
    }
    o->cfg.url.durable = durable ? 1 : 0;
    if (o->cfg.nqueues == 0)
        o->queues[o->cfg.nqueues++] = "default";
    o->cfg.queues = o->queues;
    if (o->name[0] == '\0') {
        /* Agents in containers sharing the host's name (host networking)
         * may have the same pid: the suffix keeps their names apart. */
        unsigned short rnd = 0;

        gethostname(host, sizeof(host) - 1);
        if (getrandom(&rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
            rnd = (unsigned short)(time(NULL) ^ getpid());
        snprintf(o->name, sizeof(o->name), "%s-%ld-%04x", host, (long)getpid(),
                 rnd);
    }
    o->cfg.name = o->name;
    if (o->cfg.nstores == 0 && getenv("MAPQ_STORE") != NULL &&
        getenv("MAPQ_STORE")[0] != '\0' &&
        add_store(o, getenv("MAPQ_STORE"), "MAPQ_STORE") != 0)
        return -1;
    find_self_dir(o->self_dir, sizeof(o->self_dir));
    o->cfg.self_dir = o->self_dir;
    if (secret != NULL && secret[0] != '\0') {
        o->seal = mapq_seal_load(secret, err);
        if (o->seal == NULL) {
            fprintf(stderr, "mapq-agent: %s\n", err);
            return -1; /* the process exits */
        }
        o->cfg.seal = o->seal;
    }
    return 0;
}

/* --check-health: exits 0 when the health file is fresh, else 1. */
static int
check_health(const struct options *o)
{
    struct timespec now;
    char msg[PATH_MAX + 128];
    enum mapq_err rc;

    clock_gettime(CLOCK_REALTIME, &now);
    rc = mapq_health_check(o->check_path, o->max_age_ms,
                           (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000,
                           msg, sizeof(msg));
    if (rc != MAPQ_OK) {
        fprintf(stderr, "mapq-agent: %s\n", msg);
        return 1;
    }
    printf("%s\n", msg);
    return 0;
}

/* Below this length a password is only matched as a whole value or as a
 * URL's password: a short one is a substring of too much (PATH, HOME). */
#define SECRET_SUBSTRING_MIN 8

/* Whether s (n bytes, %XX escapes decoded) is secret. */
static bool
equals_decoded(const char *s, size_t n, const char *secret)
{
    size_t i, k = 0, len = strlen(secret);
    char c;

    for (i = 0; i < n; i++, k++) {
        c = s[i];
        if (c == '%' && i + 2 < n && mapq_hex_digit(s[i + 1]) >= 0 &&
            mapq_hex_digit(s[i + 2]) >= 0) {
            c = (char)(mapq_hex_digit(s[i + 1]) << 4 |
                       mapq_hex_digit(s[i + 2]));
            i += 2;
        }
        if (k >= len || secret[k] != c)
            return false;
    }
    return k == len;
}

/* Whether the scheme ending at end (the "://" of value) takes a password
 * alone before its '@', as redis://PASSWORD@host does. */
static bool
scheme_takes_bare_password(const char *value, const char *end)
{
    static const char *const schemes[] = {"redis", "rediss", "unix"};
    const char *p = end;
    size_t i, n;

    while (p > value && (isalnum((unsigned char)p[-1]) || p[-1] == '+' ||
                         p[-1] == '-' || p[-1] == '.'))
        p--;
    n = (size_t)(end - p);
    for (i = 0; i < sizeof(schemes) / sizeof(schemes[0]); i++)
        if (strlen(schemes[i]) == n && strncasecmp(p, schemes[i], n) == 0)
            return true;
    return false;
}

/*
 * Whether value holds secret as the password of a URL: "scheme://user:
 * SECRET@", "scheme://:SECRET@" or, for redis://, rediss:// and unix://,
 * "scheme://SECRET@", percent-escapes decoded. Every '@' of the authority
 * may end the password: parsers differ on which one does.
 */
static bool
url_holds(const char *value, const char *secret)
{
    const char *p = value, *auth, *end, *at, *colon;

    while ((p = strstr(p, "://")) != NULL) {
        auth = p + 3;
        end = auth + strcspn(auth, "/");
        for (at = memchr(auth, '@', (size_t)(end - auth)); at != NULL;
             at = memchr(at + 1, '@', (size_t)(end - at - 1))) {
            colon = memchr(auth, ':', (size_t)(at - auth));
            if (colon != NULL &&
                equals_decoded(colon + 1, (size_t)(at - colon - 1), secret))
                return true;
            if (colon == NULL && scheme_takes_bare_password(value, p) &&
                equals_decoded(auth, (size_t)(at - auth), secret))
                return true;
        }
        p = auth;
    }
    return false;
}

/* Whether a variable with this value must not reach tasks: it is the
 * password, holds it as a URL's password or, for a long password, holds
 * it anywhere. */
static bool
value_holds(const char *value, const char *secret)
{
    if (strcmp(value, secret) == 0 || url_holds(value, secret))
        return true;
    return strlen(secret) >= SECRET_SUBSTRING_MIN &&
           strstr(value, secret) != NULL;
}

/* Removes from the environment every variable whose value holds secret
 * (REDISCLI_AUTH, say; see value_holds()), overwriting the value first
 * where /proc shows it. */
static void
drop_env_holding(const char *secret)
{
    size_t i = 0;
    char *eq, *name;

    if (secret[0] == '\0')
        return;
    if (strlen(secret) < SECRET_SUBSTRING_MIN)
        mapq_log(MAPQ_LOG_WARN,
                 "the redis password is shorter than %d bytes: only "
                 "variables equal to it or holding it as a URL's password "
                 "are kept from tasks",
                 SECRET_SUBSTRING_MIN);
    while (environ[i] != NULL) {
        eq = strchr(environ[i], '=');
        if (eq == NULL || eq == environ[i] || !value_holds(eq + 1, secret)) {
            i++;
            continue;
        }
        name = mapq_xstrndup(environ[i], (size_t)(eq - environ[i]));
        /* Every byte: the password may be there percent-escaped. */
        memset(eq + 1, '*', strlen(eq + 1));
        /* unsetenv() moves the next entry to i; on failure step over it. */
        if (unsetenv(name) != 0)
            i++;
        mapq_log(MAPQ_LOG_WARN,
                 "not passing %s to tasks: its value holds the redis password",
                 name);
        free(name);
    }
}

/*
 * Keeps the Redis password from the agent's tasks and from other users.
 * Tasks never inherit MAPQ_REDIS_URL (mapq_cmd leaves it out) nor any
 * variable holding the password (removed here). The password is
 * overwritten where the kernel shows the agent's command line and
 * environment (/proc/<pid>/cmdline and environ, so ps). And the process is
 * made non-dumpable: its /proc/<pid> files then belong to root, so that a
 * task running as the agent's (non-root) user can neither read its
 * environment or memory nor attach to it; this also turns off its core
 * dumps. Call once the URL is parsed.
 */
static void
hide_secrets(struct options *o)
{
    mapq_redis_url_hide_password(o->url_arg);
    mapq_redis_url_hide_password(getenv("MAPQ_REDIS_URL"));
    unsetenv("MAPQ_REDIS_URL");
    unsetenv("MAPQ_SECRET_FILE"); /* read: tasks need not know where */
    unsetenv("MAPQ_REDIS_PASSWORD");
    drop_env_holding(o->cfg.url.password);
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
        mapq_log_errno(MAPQ_LOG_WARN, errno,
                       "cannot make the agent non-dumpable");
}

int
main(int argc, char **argv)
{
    struct options o;
    struct event_base *base = NULL;
    struct event *ev_term = NULL, *ev_int = NULL, *ev_chld = NULL,
                 *ev_watchdog = NULL;
    int64_t watchdog_ms;
    struct mapq_agent *agent = NULL;
    char err[MAPQ_ERR_LEN], shown[300];
    int rc, chld;

    memset(&o, 0, sizeof(o));
    mapq_log_init("mapq-agent", MAPQ_LOG_INFO);
    rc = parse_options(argc, argv, &o);
    if (rc != 0)
        return rc > 0 ? 0 : 2;
    if (o.check_path != NULL)
        return check_health(&o);
    hide_secrets(&o);
    signal(SIGPIPE, SIG_IGN);
    /* Before any connection or loop exists, so the guardian holds none. */
    if (mapq_guard_start(err) != MAPQ_OK) {
        mapq_log(MAPQ_LOG_ERROR, "%s", err);
        return 3;
    }
    event_set_log_callback(libevent_log);
    base = event_base_new();
    if (base == NULL) {
        mapq_log(MAPQ_LOG_ERROR, "cannot create the event loop");
        mapq_guard_stop();
        return 3;
    }
    /* Before the first child, whose exit it must not miss. */
    chld = sigchld_fd();
    if (chld < 0) {
        mapq_log_errno(MAPQ_LOG_ERROR, errno, "cannot watch child exits");
        event_base_free(base);
        mapq_guard_stop();
        return 3;
    }
    /* A file left by an agent that was killed must not look fresh. */
    mapq_health_remove(o.health_file);
    o.cfg.heartbeat_fn = heartbeat_cb;
    o.cfg.heartbeat_arg = &o;
    agent = mapq_agent_new(base, &o.cfg, err);
    if (agent == NULL) {
        mapq_log(MAPQ_LOG_ERROR, "%s", err);
        close(chld);
        event_base_free(base);
        mapq_guard_stop();
        return 3;
    }
    ev_term = evsignal_new(base, SIGTERM, signal_cb, agent);
    ev_int = evsignal_new(base, SIGINT, signal_cb, agent);
    ev_chld = event_new(base, chld, EV_READ | EV_PERSIST, sigchld_cb, NULL);
    event_add(ev_term, NULL);
    event_add(ev_int, NULL);
    event_add(ev_chld, NULL);
    ev_watchdog = event_new(base, -1, EV_PERSIST, watchdog_cb, NULL);
    watchdog_ms = mapq_health_watchdog_ms();
    if (watchdog_ms > 0) {
        struct timeval tv = {(time_t)(watchdog_ms / 2000),
                             (suseconds_t)(watchdog_ms / 2 % 1000) * 1000};

        event_add(ev_watchdog, &tv);
    }
    mapq_redis_url_format(&o.cfg.url, shown, sizeof(shown));
    mapq_log(MAPQ_LOG_INFO, "agent %s: %d slots, %zu queues%s, redis %s%s%s",
             o.cfg.name, o.cfg.slots, o.cfg.nqueues,
             o.cfg.interruptible ? ", interruptible" : "", shown,
             o.cfg.metrics_addr ? ", metrics on " : "",
             o.cfg.metrics_addr ? o.cfg.metrics_addr : "");
    event_base_dispatch(base);
    mapq_agent_free(agent);
    mapq_seal_free(o.seal);
    while (o.cfg.nallow > 0)
        free(o.allow[--o.cfg.nallow]);
    mapq_health_remove(o.health_file);
    event_free(ev_watchdog);
    event_free(ev_chld);
    close(chld);
    event_free(ev_int);
    event_free(ev_term);
    event_base_free(base);
    mapq_guard_stop();
    return 0;
}
