/*
 * mapq_cmd.c - one attempt of a command task: working directory, spawn,
 * pipes, reaping and the result (SPEC section 2).
 *
 * A command owns its child's process group, the parent ends of the child's
 * pipes, the events watching them and the working directory. Nothing here
 * blocks the loop: the pipes are non-blocking, exits arrive through
 * mapq_cmd_reap(), and the done callback always runs from a deferred event,
 * never from inside mapq_cmd_start(), mapq_cmd_kill() or mapq_cmd_reap().
 * The only synchronous file I/O is on small local files in the working
 * directory (the checkpoint, $MAPQ_OUTPUT) and its removal.
 */
#include "mapq_cmd.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_fs.h"
#include "mapq_json.h"
#include "mapq_log.h"
#include "mapq_value.h"

/* Linux refuses a single environment string longer than this
 * (MAX_ARG_STRLEN, with its NUL); larger inputs go on stdin only. */
#define ENV_STRING_MAX (128 * 1024)

/* After the child is reaped and its group killed, how long to wait for
 * EOF from a process that left the group but still holds a pipe. */
#define DRAIN_MS 1000

#define OUTPUT_FILE     ".mapq_output"
#define CHECKPOINT_FILE ".mapq_checkpoint"
#define READ_CHUNK      65536

enum { PIPE_IN, PIPE_OUT, PIPE_ERR, PIPE_STATUS, NPIPES };

/* One input as text, for MAPQ_IN_<name> and {name}. */
struct input_var {
    const char *name; /* points into the inputs object */
    size_t nlen;
    char *text; /* owned, NUL-terminated */
    size_t tlen;
};

/*
 * Lifecycle: started (in live, pid > 0) -> reaped (out of live, group
 * killed) -> every pipe at EOF -> finishing (finish event active) -> done
 * called. A command that could not run (early) skips to finishing.
 */
struct mapq_cmd {
    LIST_ENTRY(mapq_cmd) entry; /* in live until reaped */
    struct event_base *base;
    const struct mapq_type *otype; /* borrowed from the spec */
    bool output_text;
    size_t output_max;
    int64_t timeout_ms, mem_bytes;
    char *name; /* argv[0], for messages */
    char *path; /* argv[0] found on PATH, as exec takes it */
    char *dir;  /* working directory, NULL once removed */
    char *output_path, *checkpoint_path;
    pid_t pid;      /* -1 when nothing was started */
    int fd[NPIPES]; /* parent ends, -1 when closed */
    struct event *ev[NPIPES];
    struct event *timer;           /* the timeout, then the drain limit */
    struct event *finish;          /* deferred completion */
    struct mapq_buf in;            /* stdin JSON */
    size_t in_off;                 /* bytes of in already written */
    struct mapq_buf out;           /* stdout, capped at output_max */
    struct mapq_buf err;           /* stderr, trimmed to the tail */
    unsigned char st[sizeof(int)]; /* exec errno from the fork path */
    size_t stlen;
    int wstatus, kill_sig;
    bool live, reaped, out_over, timed_out, killed, early, finishing;
    enum mapq_cmd_status early_status;
    char early_error[MAPQ_ERR_LEN];
    struct timespec t0;
    int64_t duration_ms;
    mapq_cmd_done_fn *done;
    void *arg;
};

static LIST_HEAD(, mapq_cmd) live = LIST_HEAD_INITIALIZER(live);

static void cmd_io_cb(evutil_socket_t fd, short what, void *arg);
static void cmd_write_cb(evutil_socket_t fd, short what, void *arg);
static void cmd_timer_cb(evutil_socket_t fd, short what, void *arg);
static void cmd_finish_cb(evutil_socket_t fd, short what, void *arg);

/* ---- small helpers ---------------------------------------------------- */

static const char *
signal_name(int sig)
{
    switch (sig) {
    case SIGHUP:
        return "SIGHUP";
    case SIGINT:
        return "SIGINT";
    case SIGQUIT:
        return "SIGQUIT";
    case SIGILL:
        return "SIGILL";
    case SIGTRAP:
        return "SIGTRAP";
    case SIGABRT:
        return "SIGABRT";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGKILL:
        return "SIGKILL";
    case SIGUSR1:
        return "SIGUSR1";
    case SIGSEGV:
        return "SIGSEGV";
    case SIGUSR2:
        return "SIGUSR2";
    case SIGPIPE:
        return "SIGPIPE";
    case SIGALRM:
        return "SIGALRM";
    case SIGTERM:
        return "SIGTERM";
    case SIGXCPU:
        return "SIGXCPU";
    case SIGXFSZ:
        return "SIGXFSZ";
    case SIGSYS:
        return "SIGSYS";
    }
    return NULL;
}

/* Writes "killed by signal 9 (SIGKILL)" into buf. */
static void
format_signal(char *buf, size_t len, int sig)
{
    const char *name = signal_name(sig);

    if (name != NULL)
        snprintf(buf, len, "killed by signal %d (%s)", sig, name);
    else
        snprintf(buf, len, "killed by signal %d", sig);
}

/* Writes ms as seconds without trailing zeros: "1.5s", "30s", "0.25s". */
static void
format_secs(char *buf, size_t len, int64_t ms)
{
    int n;

    if (ms % 1000 == 0) {
        snprintf(buf, len, "%" PRId64 "s", ms / 1000);
        return;
    }
    n = snprintf(buf, len - 1, "%" PRId64 ".%03" PRId64, ms / 1000, ms % 1000);
    while (n > 0 && buf[n - 1] == '0')
        n--;
    buf[n++] = 's';
    buf[n] = '\0';
}

static int64_t
elapsed_ms(const struct timespec *t0)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - t0->tv_sec) * 1000 +
           (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Moves fd above the standard descriptors, so that the child's dup2()
 * onto 0, 1 and 2 never clobbers another of its pipe ends. */
static int
fd_high(int fd)
{
    int nfd;

    if (fd > 2)
        return fd;
    nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
    close(fd);
    return nfd;
}

/* A close-on-exec pipe whose parent end (0: read, 1: write) is
 * non-blocking. */
static int
make_pipe(int p[2], int parent_end)
{
    int flags;

    if (pipe2(p, O_CLOEXEC) != 0)
        return -1;
    p[0] = fd_high(p[0]);
    p[1] = fd_high(p[1]);
    flags = p[0] < 0 || p[1] < 0 ? -1 : fcntl(p[parent_end], F_GETFL);
    if (flags < 0 || fcntl(p[parent_end], F_SETFL, flags | O_NONBLOCK) != 0) {
        if (p[0] >= 0)
            close(p[0]);
        if (p[1] >= 0)
            close(p[1]);
        return -1;
    }
    return 0;
}

static void
close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* ---- working directory ------------------------------------------------ */

/* Removes cmd's working directory recursively, never following links. */
static void
remove_dir(struct mapq_cmd *cmd)
{
    int e;

    if (cmd->dir == NULL)
        return;
    e = mapq_fs_rmtree(cmd->dir);
    if (e != 0)
        mapq_log_errno(MAPQ_LOG_WARN, e, "cannot remove working directory '%s'",
                       cmd->dir);
    free(cmd->dir);
    cmd->dir = NULL;
}

/*
 * Reads the regular file at path into b (capped by b->max). A missing file
 * is MAPQ_ENOENT; over the cap is MAPQ_ETOOBIG; other failures MAPQ_EIO.
 * O_NONBLOCK keeps a FIFO planted by the task from blocking the loop.
 */
static enum mapq_err
read_file(const char *path, struct mapq_buf *b, char *err)
{
    char chunk[READ_CHUNK];
    struct stat sb;
    enum mapq_err rc = MAPQ_OK;
    ssize_t n;
    int fd;

    fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT
                   ? MAPQ_ENOENT
                   : mapq_err_set(err, MAPQ_EIO, "%s", strerror(errno));
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return mapq_err_set(err, MAPQ_EIO, "not a regular file");
    }
    for (;;) {
        n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rc = mapq_err_set(err, MAPQ_EIO, "%s", strerror(errno));
        if (n <= 0 || rc != MAPQ_OK)
            break;
        rc = mapq_buf_append(b, chunk, (size_t)n);
    }
    close(fd);
    return rc;
}

/* Creates path exclusively holding (data, len). */
static int
write_file(const char *path, const char *data, size_t len)
{
    size_t off = 0;
    ssize_t n;
    int fd, e;

    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -1;
    while (off < len) {
        n = write(fd, data + off, len - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            e = errno;
            close(fd);
            errno = e;
            return -1;
        }
        off += (size_t)n;
    }
    return close(fd);
}

static enum mapq_err
make_workdir(struct mapq_cmd *cmd, const struct mapq_cmd_ctx *ctx, char *err)
{
    char *tmpl = mapq_xasprintf("%s/mapq-XXXXXX", ctx->workroot);

    if (mkdtemp(tmpl) == NULL) {
        mapq_err_set(err, MAPQ_EIO,
                     "cannot create a working directory in '%s': %s",
                     ctx->workroot, strerror(errno));
        free(tmpl);
        return MAPQ_EIO;
    }
    cmd->dir = tmpl;
    cmd->output_path = mapq_xasprintf("%s/" OUTPUT_FILE, tmpl);
    cmd->checkpoint_path = mapq_xasprintf("%s/" CHECKPOINT_FILE, tmpl);
    if (ctx->checkpoint_in != NULL &&
        write_file(cmd->checkpoint_path, ctx->checkpoint_in,
                   ctx->checkpoint_len) != 0)
        return mapq_err_set(err, MAPQ_EIO, "cannot write checkpoint '%s': %s",
                            cmd->checkpoint_path, strerror(errno));
    return MAPQ_OK;
}

/* ---- inputs, argv and environment ------------------------------------ */

/* The text of one input: str raw, null empty, anything else its JSON. */
static enum mapq_err
input_text(const msgpack_object *v, struct mapq_buf *b, char *err)
{
    if (v->type == MSGPACK_OBJECT_STR)
        return mapq_buf_append(b, v->via.str.ptr, v->via.str.size);
    if (v->type == MSGPACK_OBJECT_NIL)
        return mapq_buf_append(b, "", 0);
    return mapq_json_from_msgpack(v, b, 0, err);
}

static void
free_vars(struct input_var *vars, size_t n)
{
    size_t i;

    for (i = 0; i < n && vars != NULL; i++)
        free(vars[i].text);
    free(vars);
}

/* Converts one input into var; the message in err names the input. */
static enum mapq_err
make_var(const msgpack_object_kv *kv, struct input_var *var, char *err)
{
    struct mapq_buf b = MAPQ_BUF_INIT;
    char why[MAPQ_ERR_LEN];
    const char *name = kv->key.via.str.ptr;
    int nlen = (int)kv->key.via.str.size;

    why[0] = '\0';
    var->name = name;
    var->nlen = kv->key.via.str.size;
    if (var->nlen == 0 || memchr(name, '=', var->nlen) != NULL ||
        memchr(name, '\0', var->nlen) != NULL)
        return mapq_err_set(err, MAPQ_EINVAL, "bad input name '%.*s'", nlen,
                            name);
    if (input_text(&kv->val, &b, why) != MAPQ_OK) {
        mapq_buf_release(&b);
        return mapq_err_set(err, MAPQ_EINVAL, "input '%.*s'%s%s", nlen, name,
                            why[0] == '[' ? "" : ": ", why);
    }
    var->text = mapq_buf_detach(&b, &var->tlen);
    if (memchr(var->text, '\0', var->tlen) != NULL)
        return mapq_err_set(err, MAPQ_EINVAL,
                            "input '%.*s' holds a NUL byte, which cannot be "
                            "passed in the environment or argv",
                            nlen, name);
    return MAPQ_OK;
}

/* Builds the input texts and the stdin JSON; a failure is a user error. */
static enum mapq_err
prepare_inputs(struct mapq_cmd *cmd, const msgpack_object *inputs,
               struct input_var **vars, size_t *nvars, char *err)
{
    char why[MAPQ_ERR_LEN];
    uint32_t i, n;

    *vars = NULL;
    *nvars = 0;
    if (inputs == NULL)
        return mapq_buf_appendstr(&cmd->in, "{}");
    if (inputs->type != MSGPACK_OBJECT_MAP)
        return mapq_err_set(err, MAPQ_EINVAL, "inputs are not a dict");
    n = inputs->via.map.size;
    *vars = mapq_xcalloc(n ? n : 1, sizeof(**vars));
    for (i = 0; i < n; i++) {
        if (inputs->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR)
            return mapq_err_set(err, MAPQ_EINVAL, "input names must be str");
        (*nvars)++;
        if (make_var(&inputs->via.map.ptr[i], &(*vars)[i], err) != MAPQ_OK)
            return MAPQ_EINVAL;
    }
    /* Each input converted above; left: the dict itself (duplicate names). */
    if (mapq_json_from_msgpack(inputs, &cmd->in, 0, why) != MAPQ_OK)
        return mapq_err_set(err, MAPQ_EINVAL, "inputs%s", why);
    return MAPQ_OK;
}

static const struct input_var *
find_var(const struct input_var *vars, size_t n, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (vars[i].nlen == len && memcmp(vars[i].name, name, len) == 0)
            return &vars[i];
    return NULL;
}

/* arg with every {name} of an input replaced by its text; caller frees. */
static char *
expand_arg(const char *arg, const struct input_var *vars, size_t n)
{
    struct mapq_buf b = MAPQ_BUF_INIT; /* uncapped: appends cannot fail */
    const struct input_var *v;
    const char *p = arg, *lb, *rb;

    for (;;) {
        lb = strchr(p, '{');
        if (lb == NULL)
            break;
        mapq_buf_append(&b, p, (size_t)(lb - p));
        rb = strchr(lb + 1, '}');
        v = rb ? find_var(vars, n, lb + 1, (size_t)(rb - lb - 1)) : NULL;
        if (v == NULL) {
            mapq_buf_append(&b, "{", 1);
            p = lb + 1;
            continue;
        }
        mapq_buf_append(&b, v->text, v->tlen);
        p = rb + 1;
    }
    mapq_buf_appendstr(&b, p);
    return mapq_buf_detach(&b, NULL);
}

/* NULL-terminated argv with placeholders expanded; free with free_strv(). */
static char **
build_argv(const struct mapq_cmd_spec *spec, const struct input_var *vars,
           size_t n)
{
    char **argv = mapq_xcalloc(spec->argc + 1, sizeof(char *));
    size_t i;

    for (i = 0; i < spec->argc; i++)
        argv[i] = expand_arg(spec->argv[i], vars, n);
    return argv;
}

static void
free_strv(char **v, size_t from)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = from; v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/* True for an inherited variable that mapq sets itself, or one of the
 * agent's connection that a task must not see: the Redis URL holds the
 * password, and the namespace is of no use without it. */
static bool
env_is_ours(const char *entry)
{
    static const char *const names[] = {
        "MAPQ_EXECUTION=", "MAPQ_NODE=",      "MAPQ_INDEX=",
        "MAPQ_ATTEMPT=",   "MAPQ_OUTPUT=",    "MAPQ_CHECKPOINT=",
        "MAPQ_REDIS_URL=", "MAPQ_NAMESPACE=", "MAPQ_TEST_REDIS_URL="};
    size_t i;

    if (strncmp(entry, "MAPQ_IN_", 8) == 0)
        return true;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(entry, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

/*
 * The agent's environment plus the MAPQ_* variables. Entries from *keep on
 * are owned (free with free_strv(env, *keep)); the ones before are
 * borrowed from environ.
 */
static char **
build_env(const struct mapq_cmd *cmd, const struct mapq_cmd_ctx *ctx,
          const struct input_var *vars, size_t n, size_t *keep)
{
    size_t i, k = 0, total = 0;
    char **env;

    while (environ != NULL && environ[total] != NULL)
        total++;
    env = mapq_xcalloc(total + n + 7, sizeof(char *));
    for (i = 0; i < total; i++)
        if (!env_is_ours(environ[i]))
            env[k++] = environ[i];
    *keep = k;
    env[k++] = mapq_xasprintf("MAPQ_EXECUTION=%s",
                              ctx->execution ? ctx->execution : "");
    env[k++] = mapq_xasprintf("MAPQ_NODE=%s", ctx->node ? ctx->node : "");
    env[k++] = mapq_xasprintf("MAPQ_INDEX=%" PRIu64, ctx->index);
    env[k++] = mapq_xasprintf("MAPQ_ATTEMPT=%" PRIu32, ctx->attempt);
    env[k++] = mapq_xasprintf("MAPQ_OUTPUT=%s", cmd->output_path);
    env[k++] = mapq_xasprintf("MAPQ_CHECKPOINT=%s", cmd->checkpoint_path);
    for (i = 0; i < n; i++)
        if (vars[i].nlen + vars[i].tlen + sizeof("MAPQ_IN_=") <= ENV_STRING_MAX)
            env[k++] = mapq_xasprintf("MAPQ_IN_%.*s=%s", (int)vars[i].nlen,
                                      vars[i].name, vars[i].text);
    return env;
}

/* ---- spawning --------------------------------------------------------- */

/* 0 when path is an executable regular file, else an errno. */
static int
check_exec(const char *path)
{
    struct stat sb;

    if (stat(path, &sb) != 0)
        return errno;
    if (!S_ISREG(sb.st_mode) || access(path, X_OK) != 0)
        return EACCES;
    return 0;
}

/* A candidate for name in directory dir (relative: to the working
 * directory, where the child runs); caller frees. */
static char *
candidate(const struct mapq_cmd *cmd, const char *dir, size_t len,
          const char *name)
{
    if (len > 0 && dir[0] == '/')
        return mapq_xasprintf("%.*s/%s", (int)len, dir, name);
    if (len > 0)
        return mapq_xasprintf("%s/%.*s/%s", cmd->dir, (int)len, dir, name);
    return mapq_xasprintf("%s/%s", cmd->dir, name);
}

/*
 * Finds argv[0] as execvp() would and sets cmd->path; returns 0 or an
 * errno (ENOENT: not found). Knowing this before spawning keeps "command
 * not found" exact even where the spawn cannot report exec errors (vfork
 * emulated as fork, as under valgrind).
 */
static int
resolve_command(struct mapq_cmd *cmd)
{
    const char *dirs = getenv("PATH"), *p, *end;
    char *path;
    int rc, e = ENOENT;

    if (strchr(cmd->name, '/') != NULL) {
        path = cmd->name[0] == '/' ? mapq_xstrdup(cmd->name)
                                   : candidate(cmd, "", 0, cmd->name);
        rc = check_exec(path);
        if (rc == 0)
            cmd->path = path;
        else
            free(path);
        return rc;
    }
    for (p = dirs != NULL ? dirs : "/bin:/usr/bin";; p = end + 1) {
        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        path = candidate(cmd, p, (size_t)(end - p), cmd->name);
        rc = check_exec(path);
        if (rc == 0) {
            cmd->path = path;
            return 0;
        }
        free(path);
        if (rc == EACCES)
            e = EACCES;
        if (*end == '\0')
            return e;
    }
}

/* The fast path: vfork-style posix_spawn; returns 0 or an errno. */
static int
spawn_posix(struct mapq_cmd *cmd, char **argv, char **envp, const int child[3])
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    int rc, i;

    posix_spawn_file_actions_init(&fa);
    for (i = 0; i < 3; i++)
        posix_spawn_file_actions_adddup2(&fa, child[i], i);
    /* Nothing else of the agent's: above all not its authenticated Redis
     * connections, which a task could otherwise write commands to. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawn_file_actions_addchdir_np(&fa, cmd->dir);
    posix_spawnattr_init(&at);
    sigemptyset(&none);
    sigfillset(&all);
    sigdelset(&all, SIGKILL);
    sigdelset(&all, SIGSTOP);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &all);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, (short)(POSIX_SPAWN_SETPGROUP |
                                          POSIX_SPAWN_SETSIGMASK |
                                          POSIX_SPAWN_SETSIGDEF));
    rc = posix_spawn(&cmd->pid, cmd->path, &fa, &at, argv, envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        cmd->pid = -1;
    return rc;
}

/* In the forked child: set up and exec, or report errno on status_w. Only
 * async-signal-safe calls, as the agent may have threads. */
static _Noreturn void
child_exec(const struct mapq_cmd *cmd, char **argv, char **envp,
           const int child[3], int status_w)
{
    struct rlimit rl;
    struct sigaction sa;
    sigset_t none;
    int sig, i, e;

    setpgid(0, 0);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = SIG_DFL;
    for (sig = 1; sig < NSIG; sig++)
        sigaction(sig, &sa, NULL);
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    for (i = 0; i < 3; i++)
        if (dup2(child[i], i) < 0)
            goto report_errno;
    /* Only stdio and the status pipe (close-on-exec) stay open: none of
     * the agent's Redis connections reach the task. */
    if (status_w > 3)
        close_range(3, (unsigned)status_w - 1, 0);
    close_range((unsigned)status_w + 1, ~0U, 0);
    if (chdir(cmd->dir) != 0)
        goto report_errno;
    rl.rlim_cur = (rlim_t)cmd->mem_bytes;
    rl.rlim_max = (rlim_t)cmd->mem_bytes;
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        goto report_errno;
    execve(cmd->path, argv, envp);
report_errno:
    e = errno;
    if (write(status_w, &e, sizeof(e)) < 0)
        _exit(126);
    _exit(127);
}

/* fork+exec, for a memory limit set in the child; returns 0 or errno. */
static int
spawn_fork(struct mapq_cmd *cmd, char **argv, char **envp, const int child[3],
           int status_w)
{
    sigset_t all, old;
    pid_t pid;
    int e;

    /* No inherited handler (libevent's) may run in the child before
     * child_exec() resets them. */
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0)
        child_exec(cmd, argv, envp, child, status_w);
    e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return e;
    /* Also here, so the group exists before we may signal it. */
    setpgid(pid, pid);
    cmd->pid = pid;
    return 0;
}

/* True for spawn errors that are the command's fault, not the host's. */
static bool
command_errno(int e)
{
    return e == ENOENT || e == ENOTDIR || e == EACCES || e == ENOEXEC ||
           e == E2BIG || e == ELOOP || e == ENAMETOOLONG || e == EISDIR ||
           e == EPERM || e == ETXTBSY;
}

/* Writes the one-line reason exec failed with errno e. */
static void
format_exec_error(const struct mapq_cmd *cmd, int e, char *buf, size_t len)
{
    if (e == ENOENT || e == ENOTDIR)
        snprintf(buf, len, "command not found: %s", cmd->name);
    else
        snprintf(buf, len, "cannot execute '%s': %s", cmd->name, strerror(e));
}

/* Completes cmd without a process, from the loop, as status/error. */
static void
fail_early(struct mapq_cmd *cmd, enum mapq_cmd_status status)
{
    cmd->early = true;
    cmd->early_status = status;
    cmd->finishing = true;
    event_active(cmd->finish, EV_TIMEOUT, 0);
}

static void
watch(struct mapq_cmd *cmd)
{
    struct timeval tv;
    int i;

    for (i = 0; i < NPIPES; i++) {
        if (cmd->fd[i] < 0)
            continue;
        cmd->ev[i] =
            event_new(cmd->base, cmd->fd[i],
                      (short)((i == PIPE_IN ? EV_WRITE : EV_READ) | EV_PERSIST),
                      i == PIPE_IN ? cmd_write_cb : cmd_io_cb, cmd);
        event_add(cmd->ev[i], NULL);
    }
    if (cmd->timeout_ms > 0) {
        tv.tv_sec = (time_t)(cmd->timeout_ms / 1000);
        tv.tv_usec = (suseconds_t)(cmd->timeout_ms % 1000 * 1000);
        evtimer_add(cmd->timer, &tv);
    }
    LIST_INSERT_HEAD(&live, cmd, entry);
    cmd->live = true;
}

/* Creates the pipes and starts the child; MAPQ_OK also when the command
 * itself could not be executed (then it completes as FAILED). */
static enum mapq_err
launch(struct mapq_cmd *cmd, char **argv, char **envp, char *err)
{
    int p[NPIPES][2], child[3], status_w = -1, i, e = 0;
    bool fork_path = cmd->mem_bytes > 0;
    int npipes = fork_path ? NPIPES : PIPE_STATUS;

    for (i = 0; i < npipes; i++) {
        if (make_pipe(p[i], i == PIPE_IN ? 1 : 0) != 0) {
            e = errno;
            /* The parent ends are in cmd->fd, closed by mapq_cmd_free(). */
            while (i-- > 0)
                close(p[i][i == PIPE_IN ? 0 : 1]);
            return mapq_err_set(err, MAPQ_EIO, "cannot create a pipe: %s",
                                strerror(e));
        }
        cmd->fd[i] = p[i][i == PIPE_IN ? 1 : 0];
    }
    child[0] = p[PIPE_IN][0];
    child[1] = p[PIPE_OUT][1];
    child[2] = p[PIPE_ERR][1];
    if (fork_path)
        status_w = p[PIPE_STATUS][1];
    clock_gettime(CLOCK_MONOTONIC, &cmd->t0);
    if (fork_path)
        e = spawn_fork(cmd, argv, envp, child, status_w);
    else
        e = spawn_posix(cmd, argv, envp, child);
    for (i = 0; i < 3; i++)
        close(child[i]);
    if (status_w >= 0)
        close(status_w);
    if (e == 0) {
        watch(cmd);
        return MAPQ_OK;
    }
    for (i = 0; i < NPIPES; i++)
        close_fd(&cmd->fd[i]);
    if (!command_errno(e))
        return mapq_err_set(err, MAPQ_EIO, "cannot start '%s': %s", cmd->name,
                            strerror(e));
    format_exec_error(cmd, e, cmd->early_error, sizeof(cmd->early_error));
    fail_early(cmd, MAPQ_CMD_FAILED);
    return MAPQ_OK;
}

/* ---- public: start ---------------------------------------------------- */

static struct mapq_cmd *
cmd_new(struct event_base *base, const struct mapq_cmd_spec *spec,
        mapq_cmd_done_fn *done, void *arg)
{
    struct mapq_cmd *cmd = mapq_xcalloc(1, sizeof(*cmd));
    int i;

    cmd->base = base;
    cmd->otype = spec->output;
    cmd->output_text = spec->output_text;
    cmd->output_max = spec->output_max ? spec->output_max : MAPQ_VALUE_MAX;
    cmd->timeout_ms = spec->timeout_ms;
    cmd->mem_bytes = spec->mem_bytes;
    cmd->name = mapq_xstrdup(spec->argv[0]);
    cmd->pid = -1;
    for (i = 0; i < NPIPES; i++)
        cmd->fd[i] = -1;
    cmd->timer = evtimer_new(base, cmd_timer_cb, cmd);
    cmd->finish = event_new(base, -1, 0, cmd_finish_cb, cmd);
    mapq_buf_init(&cmd->in, 0);
    mapq_buf_init(&cmd->out, cmd->output_max);
    mapq_buf_init(&cmd->err, 0);
    cmd->done = done;
    cmd->arg = arg;
    return cmd;
}

struct mapq_cmd *
mapq_cmd_start(struct event_base *base, const struct mapq_cmd_spec *spec,
               const struct mapq_cmd_ctx *ctx, const msgpack_object *inputs,
               mapq_cmd_done_fn *done, void *arg, char *err)
{
    struct mapq_cmd *cmd;
    struct input_var *vars;
    char **argv = NULL, **envp = NULL;
    size_t nvars, keep = 0;
    enum mapq_err rc;
    int e;

    mapq_assert(spec->argc > 0 && spec->argv[0] != NULL);
    cmd = cmd_new(base, spec, done, arg);
    if (prepare_inputs(cmd, inputs, &vars, &nvars, cmd->early_error) !=
        MAPQ_OK) {
        free_vars(vars, nvars);
        fail_early(cmd, MAPQ_CMD_FAILED);
        return cmd;
    }
    rc = make_workdir(cmd, ctx, err);
    if (rc == MAPQ_OK) {
        argv = build_argv(spec, vars, nvars);
        free(cmd->name);
        cmd->name = mapq_xstrdup(argv[0]);
        e = resolve_command(cmd);
        if (e != 0) {
            format_exec_error(cmd, e, cmd->early_error,
                              sizeof(cmd->early_error));
            fail_early(cmd, MAPQ_CMD_FAILED);
        } else {
            envp = build_env(cmd, ctx, vars, nvars, &keep);
            rc = launch(cmd, argv, envp, err);
        }
    }
    free_strv(envp, keep);
    free_strv(argv, 0);
    free_vars(vars, nvars);
    if (rc != MAPQ_OK) {
        mapq_cmd_free(cmd);
        return NULL;
    }
    return cmd;
}

/* ---- running ---------------------------------------------------------- */

static void
close_pipe(struct mapq_cmd *cmd, int i)
{
    if (cmd->ev[i] != NULL)
        event_free(cmd->ev[i]);
    cmd->ev[i] = NULL;
    close_fd(&cmd->fd[i]);
    if (i == PIPE_IN)
        mapq_buf_release(&cmd->in);
}

/* Schedules completion once the child is reaped and every pipe is done. */
static void
maybe_finish(struct mapq_cmd *cmd)
{
    if (cmd->finishing || !cmd->reaped || cmd->fd[PIPE_OUT] >= 0 ||
        cmd->fd[PIPE_ERR] >= 0 || cmd->fd[PIPE_STATUS] >= 0)
        return;
    cmd->finishing = true;
    event_active(cmd->finish, EV_TIMEOUT, 0);
}

/* Keeps n bytes read from pipe i. */
static void
keep(struct mapq_cmd *cmd, int i, const char *data, size_t n)
{
    size_t room;

    if (i == PIPE_OUT) {
        /* Past the cap keep draining, so the child is not stuck. */
        if (cmd->otype != NULL && !cmd->out_over &&
            mapq_buf_append(&cmd->out, data, n) != MAPQ_OK)
            cmd->out_over = true;
    } else if (i == PIPE_ERR) {
        mapq_buf_append(&cmd->err, data, n);
        if (cmd->err.len > 2 * MAPQ_CMD_STDERR_TAIL) {
            memmove(cmd->err.data,
                    cmd->err.data + cmd->err.len - MAPQ_CMD_STDERR_TAIL,
                    MAPQ_CMD_STDERR_TAIL);
            cmd->err.len = MAPQ_CMD_STDERR_TAIL;
        }
    } else {
        room = sizeof(cmd->st) - cmd->stlen;
        memcpy(cmd->st + cmd->stlen, data, n < room ? n : room);
        cmd->stlen += n < room ? n : room;
    }
}

static int
pipe_index(const struct mapq_cmd *cmd, evutil_socket_t fd)
{
    int i;

    for (i = PIPE_OUT; i < PIPE_STATUS; i++)
        if (cmd->fd[i] == fd)
            return i;
    return PIPE_STATUS;
}

static void
cmd_io_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_cmd *cmd = arg;
    char chunk[READ_CHUNK];
    ssize_t n;
    int i, reads;

    (void)what;
    i = pipe_index(cmd, fd);
    /* Bounded, so one chatty child cannot starve the loop. */
    for (reads = 0; reads < 16; reads++) {
        n = read(fd, chunk, sizeof(chunk));
        if (n > 0) {
            keep(cmd, i, chunk, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        close_pipe(cmd, i); /* EOF, or an error that ends the stream */
        maybe_finish(cmd);
        return;
    }
}

static void
cmd_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_cmd *cmd = arg;
    ssize_t n;

    (void)what;
    while (cmd->in_off < cmd->in.len) {
        n = write(fd, cmd->in.data + cmd->in_off, cmd->in.len - cmd->in_off);
        if (n > 0) {
            cmd->in_off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return;
        break; /* EPIPE: the child does not read its input, which is fine */
    }
    close_pipe(cmd, PIPE_IN);
}

static void
cmd_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_cmd *cmd = arg;

    (void)fd;
    (void)what;
    if (cmd->reaped) {
        /* Drain limit: a process outside the group still holds a pipe. */
        close_pipe(cmd, PIPE_OUT);
        close_pipe(cmd, PIPE_ERR);
        close_pipe(cmd, PIPE_STATUS);
        maybe_finish(cmd);
        return;
    }
    cmd->timed_out = true;
    killpg(cmd->pid, SIGKILL);
}

/* The child exited: kill the stragglers of its group, stop feeding it
 * and give the pipes DRAIN_MS to reach EOF. */
static void
exited(struct mapq_cmd *cmd, int wstatus)
{
    struct timeval tv = {DRAIN_MS / 1000, DRAIN_MS % 1000 * 1000};

    cmd->wstatus = wstatus;
    cmd->reaped = true;
    cmd->duration_ms = elapsed_ms(&cmd->t0);
    killpg(cmd->pid, SIGKILL);
    LIST_REMOVE(cmd, entry);
    cmd->live = false;
    close_pipe(cmd, PIPE_IN);
    evtimer_del(cmd->timer);
    evtimer_add(cmd->timer, &tv);
    maybe_finish(cmd);
}

void
mapq_cmd_reap(void)
{
    struct mapq_cmd *cmd;
    pid_t pid;
    int st;

    for (;;) {
        pid = waitpid(-1, &st, WNOHANG);
        if (pid < 0 && errno == EINTR)
            continue;
        if (pid <= 0)
            return;
        LIST_FOREACH (cmd, &live, entry) {
            if (cmd->pid == pid)
                break;
        }
        if (cmd != NULL)
            exited(cmd, st);
    }
}

/* ---- completion ------------------------------------------------------- */

/* Appends the memory limit to a failure that it may explain. */
static void
note_mem(const struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    size_t n = strlen(res->error);

    if (cmd->mem_bytes > 0)
        snprintf(res->error + n, sizeof(res->error) - n,
                 " (memory limit %" PRId64 " bytes)", cmd->mem_bytes);
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* Sets status and error from how the process ended; true when it exited
 * 0 and the output is to be read. */
static bool
classify(const struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    char secs[32];
    int e = 0;

    res->status = MAPQ_CMD_FAILED;
    if (cmd->early) {
        res->status = cmd->early_status;
        snprintf(res->error, sizeof(res->error), "%s", cmd->early_error);
        return false;
    }
    if (cmd->killed) {
        res->status = MAPQ_CMD_KILLED;
        format_signal(res->error, sizeof(res->error), cmd->kill_sig);
        return false;
    }
    if (cmd->timed_out) {
        res->status = MAPQ_CMD_TIMED_OUT;
        format_secs(secs, sizeof(secs), cmd->timeout_ms);
        snprintf(res->error, sizeof(res->error), "timed out after %s", secs);
        return false;
    }
    if (cmd->stlen == sizeof(int)) {
        memcpy(&e, cmd->st, sizeof(e));
        format_exec_error(cmd, e, res->error, sizeof(res->error));
    } else if (WIFSIGNALED(cmd->wstatus)) {
        format_signal(res->error, sizeof(res->error), WTERMSIG(cmd->wstatus));
    } else if (res->exit_status != 0) {
        snprintf(res->error, sizeof(res->error), "exit status %d",
                 res->exit_status);
    } else {
        return true;
    }
    if (!(cmd->stlen == sizeof(int) && (e == ENOENT || e == ENOTDIR)))
        note_mem(cmd, res);
    return false;
}

static void
set_error(struct mapq_cmd_result *res, enum mapq_cmd_status status,
          const char *prefix, const char *msg)
{
    res->status = status;
    snprintf(res->error, sizeof(res->error), "%.100s%.400s", prefix, msg);
}

/* Parses JSON output text into res->output against the declared type. */
static void
parse_output(const struct mapq_cmd *cmd, const char *text, size_t len,
             struct mapq_cmd_result *res)
{
    static const char json_prefix[] = "invalid JSON at ";
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    rc = mapq_json_to_msgpack(text, len, cmd->otype, &res->output, err);
    if (rc == MAPQ_OK) {
        res->status = MAPQ_CMD_SUCCEEDED;
    } else if (rc == MAPQ_ETOOBIG) {
        snprintf(res->error, sizeof(res->error),
                 "output over the size cap (%zu bytes)", cmd->output_max);
    } else if (strncmp(err, json_prefix, sizeof(json_prefix) - 1) == 0) {
        set_error(res, MAPQ_CMD_FAILED,
                  "output is not valid JSON: ", err + sizeof(json_prefix) - 1);
    } else {
        set_error(res, MAPQ_CMD_FAILED,
                  err[0] == '[' ? "output" : "output: ", err);
    }
}

/* output_text: the trimmed stdout as a str, checked against the type. */
static void
text_output(const struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    const char *p = cmd->out.data ? cmd->out.data : "";
    size_t n = cmd->out.len;
    char err[MAPQ_ERR_LEN];
    msgpack_packer pk;
    msgpack_unpacked u;
    json_t *check;

    while (n > 0 && is_space(*p)) {
        p++;
        n--;
    }
    while (n > 0 && is_space(p[n - 1]))
        n--;
    /* jansson refuses text that is not UTF-8, as JSON readers would. */
    check = json_stringn(p, n);
    if (check == NULL) {
        set_error(res, MAPQ_CMD_FAILED, "", "output is not valid UTF-8 text");
        return;
    }
    json_decref(check);
    mapq_value_packer_init(&pk, &res->output);
    if (msgpack_pack_str(&pk, n) != 0 ||
        msgpack_pack_str_body(&pk, p, n) != 0) {
        snprintf(res->error, sizeof(res->error),
                 "output over the size cap (%zu bytes)", cmd->output_max);
        return;
    }
    msgpack_unpacked_init(&u);
    if (mapq_value_unpack(res->output.data, res->output.len, &u, err) ==
            MAPQ_OK &&
        mapq_type_check(cmd->otype, &u.data, err) == MAPQ_OK)
        res->status = MAPQ_CMD_SUCCEEDED;
    else
        set_error(res, MAPQ_CMD_FAILED, "output: ", err);
    msgpack_unpacked_destroy(&u);
}

static bool
blank(const char *p, size_t n)
{
    while (n > 0 && is_space(p[n - 1]))
        n--;
    return n == 0;
}

/* Exit 0: the output from $MAPQ_OUTPUT, or stdout. */
static void
read_output(const struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    struct mapq_buf file;
    char err[MAPQ_ERR_LEN], tname[128];
    enum mapq_err rc;

    if (cmd->otype == NULL) {
        msgpack_packer pk;

        mapq_value_packer_init(&pk, &res->output);
        msgpack_pack_nil(&pk);
        res->status = MAPQ_CMD_SUCCEEDED;
        return;
    }
    mapq_buf_init(&file, cmd->output_max);
    rc = read_file(cmd->output_path, &file, err);
    /* The file wins when it exists; then stdout does not matter. */
    if (rc == MAPQ_ETOOBIG || (rc == MAPQ_ENOENT && cmd->out_over))
        snprintf(res->error, sizeof(res->error),
                 "output over the size cap (%zu bytes)", cmd->output_max);
    else if (rc == MAPQ_EIO)
        set_error(res, MAPQ_CMD_FAILED, "cannot read $MAPQ_OUTPUT: ", err);
    else if (rc == MAPQ_OK && blank(file.data ? file.data : "", file.len))
        set_error(res, MAPQ_CMD_FAILED, "",
                  "output is not valid JSON: $MAPQ_OUTPUT is empty");
    else if (rc == MAPQ_OK)
        parse_output(cmd, file.data, file.len, res);
    else if (cmd->output_text)
        text_output(cmd, res);
    else if (blank(cmd->out.data ? cmd->out.data : "", cmd->out.len))
        snprintf(res->error, sizeof(res->error),
                 "no output: the task declares %s but wrote nothing to "
                 "$MAPQ_OUTPUT or stdout",
                 mapq_type_format(cmd->otype, tname, sizeof(tname)));
    else
        parse_output(cmd, cmd->out.data, cmd->out.len, res);
    mapq_buf_release(&file);
}

/* The checkpoint file, whatever the outcome; kept only under the cap. */
static void
read_checkpoint(const struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    char err[MAPQ_ERR_LEN];
    size_t n;
    enum mapq_err rc;

    if (cmd->checkpoint_path == NULL)
        return;
    rc = read_file(cmd->checkpoint_path, &res->checkpoint, err);
    res->has_checkpoint = rc == MAPQ_OK;
    if (rc == MAPQ_OK || rc == MAPQ_ENOENT)
        return;
    mapq_buf_release(&res->checkpoint);
    if (res->status == MAPQ_CMD_SUCCEEDED)
        return; /* no retry will need it */
    n = strlen(res->error);
    if (rc == MAPQ_ETOOBIG)
        snprintf(res->error + n, sizeof(res->error) - n,
                 "; checkpoint over the size cap (%u bytes), not kept",
                 MAPQ_VALUE_MAX);
    else
        snprintf(res->error + n, sizeof(res->error) - n,
                 "; cannot read checkpoint: %s", err);
}

/* The last MAPQ_CMD_STDERR_TAIL bytes, starting on a UTF-8 boundary. */
static void
take_stderr(struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    size_t skip = 0, i;

    if (cmd->err.len > MAPQ_CMD_STDERR_TAIL) {
        skip = cmd->err.len - MAPQ_CMD_STDERR_TAIL;
        for (i = 0; i < 3 && skip < cmd->err.len &&
                    ((unsigned char)cmd->err.data[skip] & 0xC0) == 0x80;
             i++)
            skip++;
        memmove(cmd->err.data, cmd->err.data + skip, cmd->err.len - skip);
        cmd->err.len -= skip;
        cmd->err.data[cmd->err.len] = '\0';
    }
    res->stderr_tail = cmd->err;
    mapq_buf_init(&cmd->err, 0);
}

static void
build_result(struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    memset(res, 0, sizeof(*res));
    mapq_buf_init(&res->output, cmd->output_max);
    mapq_buf_init(&res->checkpoint, MAPQ_VALUE_MAX);
    res->exit_status = -1;
    res->duration_ms = cmd->duration_ms;
    if (cmd->reaped && WIFEXITED(cmd->wstatus))
        res->exit_status = WEXITSTATUS(cmd->wstatus);
    if (cmd->reaped && WIFSIGNALED(cmd->wstatus))
        res->term_signal = WTERMSIG(cmd->wstatus);
    take_stderr(cmd, res);
    if (classify(cmd, res))
        read_output(cmd, res);
    read_checkpoint(cmd, res);
    if (res->status != MAPQ_CMD_SUCCEEDED)
        mapq_buf_release(&res->output);
}

static void
release_result(struct mapq_cmd_result *res)
{
    mapq_buf_release(&res->output);
    mapq_buf_release(&res->stderr_tail);
    mapq_buf_release(&res->checkpoint);
}

static void
cmd_finish_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_cmd *cmd = arg;
    struct mapq_cmd_result res;
    int i;

    (void)fd;
    (void)what;
    build_result(cmd, &res);
    for (i = 0; i < NPIPES; i++)
        close_pipe(cmd, i);
    evtimer_del(cmd->timer);
    remove_dir(cmd);
    /* res lives on this stack: the callback may free cmd. */
    cmd->done(cmd, &res, cmd->arg);
    release_result(&res);
}

/* ---- public: control -------------------------------------------------- */

void
mapq_cmd_kill(struct mapq_cmd *cmd, int sig)
{
    if (cmd->pid <= 0 || cmd->reaped || cmd->finishing)
        return;
    cmd->killed = true;
    cmd->kill_sig = sig;
    killpg(cmd->pid, sig);
}

pid_t
mapq_cmd_pid(const struct mapq_cmd *cmd)
{
    return cmd->pid;
}

void
mapq_cmd_free(struct mapq_cmd *cmd)
{
    int i;

    if (cmd == NULL)
        return;
    if (cmd->live) {
        /* Still running: kill the group; a later reap finds an unknown
         * pid and ignores it. */
        killpg(cmd->pid, SIGKILL);
        LIST_REMOVE(cmd, entry);
    }
    for (i = 0; i < NPIPES; i++)
        close_pipe(cmd, i);
    event_free(cmd->timer);
    event_free(cmd->finish);
    remove_dir(cmd);
    mapq_buf_release(&cmd->in);
    mapq_buf_release(&cmd->out);
    mapq_buf_release(&cmd->err);
    free(cmd->output_path);
    free(cmd->checkpoint_path);
    free(cmd->name);
    free(cmd->path);
    free(cmd);
}
