/*
 * cli_opts.c - reading the mapq command line into a struct mapq_cli_opts:
 * the environment's defaults, the options, the operands each command
 * takes, and hiding the Redis password once they are read.
 *
 * Owns the copy of the Redis URL (for the life of the process). Knows
 * commands only through their entries (mapq_cli_find()); it never runs
 * one.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "cli.h"
#include "mapq_alloc.h"
#include "mapq_driver.h"
#include "mapq_http.h"
#include "mapq_log.h"
#include "mapq_proto.h"
#include "mapq_redis.h"
#include "mapq_units.h"

/* Applies option c (its argument in optarg); 1 after --help, -1 when
 * wrong (reported). */
static int
parse_option(struct mapq_cli_opts *o, int c)
{
    char *end, host[256];
    int port;

    switch (c) {
    case 'i':
        if (o->nassigns == MAPQ_CLI_MAX_ASSIGNS) {
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
    case 'P':
        o->priority = (int)strtol(optarg, &end, 10);
        if (*optarg == '\0' || *end != '\0' || o->priority < 1 ||
            o->priority > MAPQ_PRIORITY_MAX) {
            fprintf(stderr, "mapq: --priority must be 1 to %d, got '%s'\n",
                    MAPQ_PRIORITY_MAX, optarg);
            return -1;
        }
        break;
    case 'T':
        o->task = optarg;
        break;
    case 'G':
        if (*optarg == '\0') {
            fprintf(stderr, "mapq: --fetch needs a directory\n");
            return -1;
        }
        o->fetch_dir = optarg;
        break;
    case 'R': {
        int64_t ms;
        char derr[MAPQ_ERR_LEN];

        if (mapq_duration_parse(optarg, &ms, derr) != MAPQ_OK || ms < 1000) {
            fprintf(stderr,
                    "mapq: --retention must be a duration of 1s or more, got "
                    "'%s'\n",
                    optarg);
            return -1;
        }
        o->retention_ms = ms;
        break;
    }
    case 'M':
    case 'H': {
        /* An example port for each: the metrics' and a web page's. */
        const char *name = c == 'M' ? "metrics" : "http";
        const char *ex = c == 'M' ? "9101" : "8080";

        if (!mapq_http_parse_addr(optarg, host, sizeof(host), &port)) {
            fprintf(stderr,
                    "mapq: --%s must be HOST:PORT (e.g. 127.0.0.1:%s, :%s, "
                    "[::1]:%s), got '%s'\n",
                    name, ex, ex, ex, optarg);
            return -1;
        }
        if (c == 'M')
            o->metrics = optarg;
        else
            o->http = optarg;
        break;
    }
    case 'j':
        o->json = true;
        break;
    case 'q':
        o->quiet = true;
        break;
    case 'f':
        o->follow = true;
        break;
    case 'o':
        o->overwrite_cache = true;
        break;
    case 'B': {
        char err[MAPQ_ERR_LEN];

        if (mapq_store_parse(optarg, &o->store, err) != MAPQ_OK) {
            fprintf(stderr, "mapq: --store: %s\n", err);
            return -1;
        }
        o->store_set = true;
        break;
    }
    case 'X': {
        char err[MAPQ_ERR_LEN];
        int64_t bytes;

        if (mapq_size_parse(optarg, &bytes, err) != MAPQ_OK) {
            fprintf(stderr, "mapq: --store-max: %s\n", err);
            return -1;
        }
        if (bytes > MAPQ_BLOB_MAX_LIMIT) {
            fprintf(stderr,
                    "mapq: --store-max: at most 512Mi (Redis's "
                    "largest string), got '%s'\n",
                    optarg);
            return -1;
        }
        o->store_max = bytes;
        break;
    }
    case 'S':
        o->secret_file = optarg;
        break;
    case 'W':
        o->password_file = optarg;
        break;
    case 'D':
        o->durable = true;
        break;
    case 'v':
        mapq_log_threshold = MAPQ_LOG_DEBUG;
        break;
    case 'F':
        if (mapq_log_set_format(optarg) != 0) {
            fprintf(stderr,
                    "mapq: --log-format must be text or json, got '%s'\n",
                    optarg);
            return -1;
        }
        break;
    case 'h':
        mapq_cli_usage(stdout);
        return 1;
    default:
        mapq_cli_usage(stderr);
        return -1;
    }
    return 0;
}

/* mapq cache: ls, rm or clear, and the keys of rm only. */
static int
cache_operands(struct mapq_cli_opts *o, int argc, char **argv, int i)
{
    if (i == argc ||
        (strcmp(argv[i], "ls") != 0 && strcmp(argv[i], "rm") != 0 &&
         strcmp(argv[i], "clear") != 0)) {
        fprintf(stderr, "mapq cache: expected ls, rm or clear\n");
        mapq_cli_usage(stderr);
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
    return 0;
}

/* Takes the operands of a command that takes what from argv[i..argc-1];
 * -1 when they are wrong (reported). */
static int
parse_operands(struct mapq_cli_opts *o, enum mapq_cmd_operands what, int argc,
               char **argv, int i)
{
    switch (what) {
    case MAPQ_CMD_CACHE:
        return cache_operands(o, argc, argv, i);
    case MAPQ_CMD_LOGS:
        if (argc - i < 2 || argc - i > 3) {
            fprintf(stderr, "mapq logs: expected EXEC NODE [INDEX]\n");
            mapq_cli_usage(stderr);
            return -1;
        }
        o->target = argv[i];
        o->node = argv[i + 1];
        o->index = argc - i == 3 ? argv[i + 2] : NULL;
        return 0;
    case MAPQ_CMD_WORKFLOW:
    case MAPQ_CMD_EXEC:
        if (i != argc - 1) {
            fprintf(stderr, "mapq %s: expected one %s\n", o->cmd,
                    what == MAPQ_CMD_EXEC ? "execution id" : "workflow file");
            mapq_cli_usage(stderr);
            return -1;
        }
        o->target = argv[i];
        return 0;
    case MAPQ_CMD_NONE:
        break;
    }
    if (i != argc) {
        fprintf(stderr, "mapq %s: unexpected argument '%s'\n", o->cmd, argv[i]);
        return -1;
    }
    return 0;
}

int
mapq_cli_parse(int argc, char **argv, struct mapq_cli_opts *o,
               const struct mapq_cmd_entry **entry)
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
        {"follow", no_argument, NULL, 'f'},
        {"overwrite-cache", no_argument, NULL, 'o'},
        {"priority", required_argument, NULL, 'P'},
        {"verbose", no_argument, NULL, 'v'},
        {"log-format", required_argument, NULL, 'F'},
        {"metrics", required_argument, NULL, 'M'},
        {"retention", required_argument, NULL, 'R'},
        {"http", required_argument, NULL, 'H'},
        {"secret-file", required_argument, NULL, 'S'},
        {"redis-password-file", required_argument, NULL, 'W'},
        {"durable", no_argument, NULL, 'D'},
        {"fetch", required_argument, NULL, 'G'},
        {"store", required_argument, NULL, 'B'},
        {"store-max", required_argument, NULL, 'X'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    char serr[MAPQ_ERR_LEN];
    const char *env;
    int c, rc;

    *entry = NULL;
    o->redis = getenv("MAPQ_REDIS_URL");
    if (o->redis != NULL && *o->redis == '\0')
        o->redis = NULL;
    o->ns = getenv("MAPQ_NAMESPACE");
    if (o->ns == NULL || *o->ns == '\0')
        o->ns = MAPQ_NAMESPACE_DEFAULT;
    o->secret_file = getenv("MAPQ_SECRET_FILE");
    if (o->secret_file != NULL && *o->secret_file == '\0')
        o->secret_file = NULL;
    env = getenv("MAPQ_STORE");
    if (env != NULL && *env != '\0' &&
        mapq_store_parse(env, &o->store, serr) != MAPQ_OK) {
        fprintf(stderr, "mapq: %s (MAPQ_STORE)\n", serr);
        return -1;
    }
    o->store_set = env != NULL && *env != '\0';
    o->store_max = MAPQ_BLOB_MAX_DEFAULT;
    o->agents = (int)sysconf(_SC_NPROCESSORS_ONLN);
    o->lease_ms = MAPQ_OWNER_LEASE_MS;
    if (argc < 2) {
        mapq_cli_usage(stderr);
        return -1;
    }
    o->cmd = argv[1];
    if (strcmp(o->cmd, "-h") == 0 || strcmp(o->cmd, "--help") == 0 ||
        strcmp(o->cmd, "help") == 0) {
        mapq_cli_usage(stdout);
        return 1;
    }
    if (strcmp(o->cmd, "--version") == 0 || strcmp(o->cmd, "version") == 0) {
        printf("mapq %s (protocol %d)\n", MAPQ_VERSION, MAPQ_PROTOCOL);
        return 1;
    }
    *entry = mapq_cli_find(o->cmd);
    optind = 2;
    while ((c = getopt_long(argc, argv, "vqhf", longopts, NULL)) != -1) {
        rc = parse_option(o, c);
        if (rc != 0)
            return rc;
    }
    /* An unknown command's operands are read as a workflow command's;
     * main() refuses the command itself once they are. */
    rc = parse_operands(o, *entry ? (*entry)->operands : MAPQ_CMD_WORKFLOW,
                        argc, argv, optind);
    if (rc == 0 && (o->metrics != NULL || o->http != NULL) &&
        strcmp(o->cmd, "scheduler") != 0) {
        fprintf(stderr, "mapq: --%s goes with mapq scheduler\n",
                o->metrics != NULL ? "metrics" : "http");
        return -1;
    }
    if (rc == 0 && o->follow &&
        (strcmp(o->cmd, "logs") != 0 || o->index == NULL || o->json)) {
        fprintf(stderr, "mapq: -f goes with mapq logs EXEC NODE INDEX, "
                        "without --json\n");
        return -1;
    }
    if (rc == 0 && o->retention_ms > 0 && strcmp(o->cmd, "run") != 0 &&
        strcmp(o->cmd, "scheduler") != 0 && strcmp(o->cmd, "recover") != 0) {
        fprintf(stderr, "mapq: --retention goes with mapq run, recover or "
                        "scheduler (or set retention: in the workflow)\n");
        return -1;
    }
    if (rc == 0 && o->redis != NULL) {
        /* A URL that cannot be read is a usage error, not Redis being
         * unreachable; err hides its password. */
        struct mapq_redis_url url;
        char err[MAPQ_ERR_LEN];

        if (mapq_redis_url_parse(o->redis, &url, err) != MAPQ_OK) {
            fprintf(stderr, "mapq: %s%s\n", err,
                    o->redis == getenv("MAPQ_REDIS_URL") ? " (MAPQ_REDIS_URL)"
                                                         : "");
            return -1;
        }
    }
    if (rc == 0 && o->password_file != NULL) {
        /* Likewise a password file that cannot be read. */
        struct mapq_redis_url url;
        char err[MAPQ_ERR_LEN];

        memset(&url, 0, sizeof(url));
        if (mapq_redis_url_password(&url, o->password_file, err) != MAPQ_OK) {
            fprintf(stderr, "mapq: %s\n", err);
            return -1;
        }
        memset(url.password, 0, sizeof(url.password));
    }
    return rc;
}

/*
 * Keeps the Redis password from other users, as mapq-agent does, once the
 * options are parsed: o->redis becomes a copy, the password is overwritten
 * with '*' where the kernel shows the command line and environment
 * (/proc/<pid>/cmdline and environ, so ps) in every argument that is a
 * redis:// URL or --redis=URL and in MAPQ_REDIS_URL, and a process holding
 * a password is made non-dumpable (its /proc files and memory are root's).
 */
void
mapq_cli_hide_password(struct mapq_cli_opts *o, int argc, char **argv)
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
