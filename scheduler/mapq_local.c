/*
 * mapq_local.c - the private redis-server and agents of local mode.
 *
 * This runs before and after the event loop, so it may wait: startup polls
 * the socket for at most START_TIMEOUT_MS, shutdown waits for children for
 * at most STOP_TIMEOUT_MS before killing them.
 */
#include "mapq_local.h"

#include <errno.h>
#include <fcntl.h>
#include <hiredis/hiredis.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_fs.h"

#define START_TIMEOUT_MS 10000
#define STOP_TIMEOUT_MS  10000

struct mapq_local {
    char dir[PATH_MAX];
    pid_t redis;
    pid_t *agents;
    int nagents;
};

static int64_t
mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

/* Finds prog next to this binary or on PATH; writes the path. */
static int
find_program(const char *prog, char *out, size_t len)
{
    char self[PATH_MAX], *slash, *path, *dir, *save = NULL;
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    int found = -1;

    if (n > 0) {
        self[n] = '\0';
        slash = strrchr(self, '/');
        if (slash != NULL) {
            *slash = '\0';
            if (snprintf(out, len, "%s/%s", self, prog) < (int)len &&
                access(out, X_OK) == 0)
                return 0;
        }
    }
    path = mapq_xstrdup(getenv("PATH") ? getenv("PATH") : "/usr/bin:/bin");
    for (dir = strtok_r(path, ":", &save); dir && found != 0;
         dir = strtok_r(NULL, ":", &save)) {
        if (snprintf(out, len, "%s/%s", dir, prog) < (int)len &&
            access(out, X_OK) == 0)
            found = 0;
    }
    free(path);
    return found;
}

/* Forks and execs a NULL-terminated list of strings; frees the copies. */
static pid_t
spawnv(const char *const *args, const char *logfile)
{
    char **argv;
    size_t n = 0, i;
    pid_t pid;
    int fd;

    while (args[n] != NULL)
        n++;
    argv = mapq_xcalloc(n + 1, sizeof(char *));
    for (i = 0; i < n; i++)
        argv[i] = mapq_xstrdup(args[i]);
    pid = fork();
    if (pid != 0) {
        for (i = 0; i < n; i++)
            free(argv[i]);
        free(argv);
        return pid;
    }
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    setpgid(0, 0); /* Ctrl-C reaches mapq only; mapq decides */
    if (logfile != NULL) {
        fd = open(logfile, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
            close(fd);
        }
    }
    execv(argv[0], argv);
    _exit(127);
}

static int
wait_ready(const char *sock, pid_t pid)
{
    int64_t deadline = mono_ms() + START_TIMEOUT_MS;
    struct timeval tv = {1, 0};
    redisContext *c;
    redisReply *r;
    int status;

    while (mono_ms() < deadline) {
        if (waitpid(pid, &status, WNOHANG) == pid)
            return -1;
        c = redisConnectUnixWithTimeout(sock, tv);
        if (c != NULL && !c->err) {
            r = redisCommand(c, "PING");
            if (r != NULL && r->type == REDIS_REPLY_STATUS) {
                freeReplyObject(r);
                redisFree(c);
                return 0;
            }
            if (r != NULL)
                freeReplyObject(r);
        }
        redisFree(c);
        pause_ms(10);
    }
    return -1;
}

struct mapq_local *
mapq_local_start(int nagents, int slots, const char *ns, char *url,
                 size_t urllen, char *err)
{
    struct mapq_local *l = mapq_xcalloc(1, sizeof(*l));
    const char *tmp = getenv("TMPDIR");
    char redis[PATH_MAX], agent[PATH_MAX], sock[PATH_MAX + 16];
    char log[PATH_MAX + 16], name[64], sockurl[PATH_MAX + 32];
    int i;

    snprintf(l->dir, sizeof(l->dir), "%s/mapq-local-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(l->dir) == NULL) {
        mapq_err_set(err, MAPQ_EIO, "cannot create a directory in %s: %s",
                     tmp && *tmp ? tmp : "/tmp", strerror(errno));
        free(l);
        return NULL;
    }
    if (getenv("MAPQ_REDIS_SERVER") != NULL)
        snprintf(redis, sizeof(redis), "%s", getenv("MAPQ_REDIS_SERVER"));
    else if (find_program("redis-server", redis, sizeof(redis)) != 0) {
        mapq_err_set(err, MAPQ_ENOENT,
                     "local mode needs redis-server (apt-get install "
                     "redis-server), or pass --redis URL");
        goto fail;
    }
    if (find_program("mapq-agent", agent, sizeof(agent)) != 0) {
        mapq_err_set(err, MAPQ_ENOENT,
                     "local mode needs mapq-agent next to mapq or on PATH");
        goto fail;
    }
    snprintf(sock, sizeof(sock), "%s/redis.sock", l->dir);
    snprintf(log, sizeof(log), "%s/redis.log", l->dir);
    {
        /* hash-max-listpack-entries as deploy/redis.conf sets it. One
         * option and its value per line: */
        /* clang-format off */
        const char *argv[] = {redis,
                              "--port", "0",
                              "--unixsocket", sock,
                              "--unixsocketperm", "700",
                              "--save", "",
                              "--appendonly", "no",
                              "--hash-max-listpack-entries", "16",
                              "--dir", l->dir,
                              "--daemonize", "no",
                              NULL};
        /* clang-format on */

        l->redis = spawnv(argv, log);
    }
    if (l->redis < 0 || wait_ready(sock, l->redis) != 0) {
        mapq_err_set(err, MAPQ_EREDIS,
                     "the local redis-server did not start (see %s)", log);
        goto fail;
    }
    snprintf(sockurl, sizeof(sockurl), "unix://%s", sock);
    l->agents = mapq_xcalloc((size_t)nagents + 1, sizeof(pid_t));
    snprintf(log, sizeof(log), "%s/agents.log", l->dir);
    for (i = 0; i < nagents; i++) {
        char nsbuf[128], slotsbuf[16];
        const char *argv[] = {agent,    "--redis",     sockurl, "--name",
                              name,     "--namespace", nsbuf,   "--slots",
                              slotsbuf, "--grace",     "2s",    "-q",
                              NULL};

        snprintf(name, sizeof(name), "local-%d", i + 1);
        snprintf(slotsbuf, sizeof(slotsbuf), "%d", slots);
        snprintf(nsbuf, sizeof(nsbuf), "%s", ns);
        l->agents[l->nagents++] = spawnv(argv, log);
    }
    snprintf(url, urllen, "%s", sockurl);
    return l;
fail:
    mapq_local_stop(l);
    return NULL;
}

/* Waits for pid up to the deadline, then kills it. */
static void
reap(pid_t pid, int64_t deadline)
{
    int status;

    while (mono_ms() < deadline) {
        if (waitpid(pid, &status, WNOHANG) != 0)
            return;
        pause_ms(5);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
}

/* Ticks of user and system time of process pid itself, or -1. */
static long long
proc_ticks(pid_t pid)
{
    char path[64], buf[1024];
    const char *p;
    unsigned long long utime, stime;
    ssize_t n;
    int fd;

    snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    /* "pid (comm) state ...": the name may hold spaces and parentheses,
     * the fields follow its last ')'. utime and stime are fields 14 and
     * 15, the 12th and 13th after the name. */
    p = strrchr(buf, ')');
    if (p == NULL || sscanf(p + 1,
                            " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u "
                            "%llu %llu",
                            &utime, &stime) != 2)
        return -1;
    return (long long)(utime + stime);
}

double
mapq_local_agents_cpu(const struct mapq_local *l)
{
    long long sum = 0, t;
    long hz = sysconf(_SC_CLK_TCK);
    int i;

    if (l == NULL || hz <= 0)
        return -1;
    for (i = 0; i < l->nagents; i++) {
        t = l->agents[i] > 0 ? proc_ticks(l->agents[i]) : -1;
        if (t < 0)
            return -1;
        sum += t;
    }
    return (double)sum / (double)hz;
}

void
mapq_local_stop(struct mapq_local *l)
{
    int64_t deadline = mono_ms() + STOP_TIMEOUT_MS;
    int i;

    if (l == NULL)
        return;
    for (i = 0; i < l->nagents; i++)
        if (l->agents[i] > 0)
            kill(l->agents[i], SIGTERM);
    for (i = 0; i < l->nagents; i++)
        if (l->agents[i] > 0)
            reap(l->agents[i], deadline);
    if (l->redis > 0) {
        kill(l->redis, SIGTERM);
        reap(l->redis, mono_ms() + STOP_TIMEOUT_MS);
    }
    mapq_fs_rmtree(l->dir);
    free(l->agents);
    free(l);
}
