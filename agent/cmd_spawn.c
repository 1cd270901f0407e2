/*
 * cmd_spawn.c - starting a command's child: its working directory, its
 * inputs as stdin JSON, MAPQ_IN_<name> variables and {name} placeholders,
 * its environment, and the spawn itself (SPEC section 2).
 *
 * Owns nothing after cmd_spawn() returns: everything it makes is stored
 * in the struct mapq_cmd, which mapq_cmd.c owns and frees. Never touches
 * the loop and never completes a command: it tells mapq_cmd.c how the
 * start went.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "cmd_int.h"
#include "mapq_alloc.h"
#include "mapq_fs.h"
#include "mapq_json.h"
#include "mapq_proc.h"
#include "mapq_value.h"

/* Linux refuses a single environment string longer than this
 * (MAX_ARG_STRLEN, with its NUL); larger inputs go on stdin only. */
#define ENV_STRING_MAX (128 * 1024)

/* One input as text, for MAPQ_IN_<name> and {name}. */
struct input_var {
    const char *name; /* points into the inputs object */
    size_t nlen;
    char *text; /* owned, NUL-terminated */
    size_t tlen;
};

/* ---- pipes ------------------------------------------------------------ */

/* ---- working directory ------------------------------------------------ */

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
        mapq_fs_write_new(cmd->checkpoint_path, ctx->checkpoint_in,
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
        rc = mapq_proc_check_exec(path);
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
        rc = mapq_proc_check_exec(path);
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
 * async-signal-safe calls, as the agent may have threads. parent is the
 * agent's pid. */
static _Noreturn void
child_exec(const struct mapq_cmd *cmd, char **argv, char **envp,
           const int child[3], int status_w, pid_t parent)
{
    struct rlimit rl;
    struct sigaction sa;
    sigset_t none;
    int sig, i, e;

    setpgid(0, 0);
    /* Dies with the agent even if its guardian is gone; the command's own
     * children are the guardian's to kill, with the group. posix_spawn()
     * has no such attribute, so only this path sets it. */
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
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
    if (cmd->mem_bytes > 0 && setrlimit(RLIMIT_AS, &rl) != 0)
        goto report_errno;
    if (cmd->ncpus > 0 && mapq_proc_pin_self(cmd->cpus, cmd->ncpus) != 0)
        goto report_errno;
    execve(cmd->path, argv, envp);
report_errno:
    e = errno;
    if (write(status_w, &e, sizeof(e)) < 0)
        _exit(126);
    _exit(127);
}

/* fork+exec, for a memory limit or CPU pinning set in the child; returns 0
 * or errno. */
static int
spawn_fork(struct mapq_cmd *cmd, char **argv, char **envp, const int child[3],
           int status_w)
{
    sigset_t all, old;
    pid_t parent = getpid(), pid;
    int e;

    /* No inherited handler (libevent's) may run in the child before
     * child_exec() resets them. */
    sigfillset(&all);
    sigprocmask(SIG_SETMASK, &all, &old);
    pid = fork();
    if (pid == 0)
        child_exec(cmd, argv, envp, child, status_w, parent);
    e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return e;
    /* Also here, so the group exists before we may signal it. */
    setpgid(pid, pid);
    cmd->pid = pid;
    return 0;
}

/* Creates the pipes and starts the child; CMD_UNRUNNABLE when the command
 * itself could not be executed (then it completes as FAILED). */
static enum cmd_spawned
launch(struct mapq_cmd *cmd, char **argv, char **envp, char *err)
{
    int p[NPIPES][2], child[3], status_w = -1, i, e = 0;
    bool fork_path = cmd->mem_bytes > 0 || cmd->ncpus > 0;
    int npipes = fork_path ? NPIPES : PIPE_STATUS;

    for (i = 0; i < npipes; i++) {
        if (mapq_proc_pipe(p[i], i == PIPE_IN ? 1 : 0) != 0) {
            e = errno;
            /* The parent ends are in cmd->fd, closed by mapq_cmd_free(). */
            while (i-- > 0)
                close(p[i][i == PIPE_IN ? 0 : 1]);
            mapq_err_set(err, MAPQ_EIO, "cannot create a pipe: %s",
                         strerror(e));
            return CMD_SPAWN_FAIL;
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
    if (e == 0)
        return CMD_SPAWNED;
    for (i = 0; i < NPIPES; i++)
        cmd_close_fd(&cmd->fd[i]);
    if (!mapq_proc_command_errno(e)) {
        mapq_err_set(err, MAPQ_EIO, "cannot start '%s': %s", cmd->name,
                     strerror(e));
        return CMD_SPAWN_FAIL;
    }
    cmd_exec_error(cmd, e, cmd->early_error, sizeof(cmd->early_error));
    return CMD_UNRUNNABLE;
}

/* ---- the start -------------------------------------------------------- */

enum cmd_spawned
cmd_spawn(struct mapq_cmd *cmd, const struct mapq_cmd_spec *spec,
          const struct mapq_cmd_ctx *ctx, const msgpack_object *inputs,
          char *err)
{
    struct input_var *vars;
    char **argv = NULL, **envp = NULL;
    size_t nvars, keep = 0;
    enum cmd_spawned rc = CMD_SPAWN_FAIL;
    int e;

    if (prepare_inputs(cmd, inputs, &vars, &nvars, cmd->early_error) !=
        MAPQ_OK) {
        free_vars(vars, nvars);
        return CMD_UNRUNNABLE;
    }
    if (make_workdir(cmd, ctx, err) == MAPQ_OK) {
        argv = build_argv(spec, vars, nvars);
        free(cmd->name);
        cmd->name = mapq_xstrdup(argv[0]);
        e = resolve_command(cmd);
        if (e != 0) {
            cmd_exec_error(cmd, e, cmd->early_error, sizeof(cmd->early_error));
            rc = CMD_UNRUNNABLE;
        } else {
            envp = build_env(cmd, ctx, vars, nvars, &keep);
            rc = launch(cmd, argv, envp, err);
        }
    }
    free_strv(envp, keep);
    free_strv(argv, 0);
    free_vars(vars, nvars);
    return rc;
}
