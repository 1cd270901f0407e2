/*
 * worker_spawn.c - starting a worker's process: its working directory, its
 * environment and the spawn itself, in its own process group (SPEC
 * section 9).
 *
 * Owns nothing after worker_spawn() returns: what it makes is stored in
 * the struct mapq_worker, which mapq_worker.c owns and frees. Never
 * touches the loop and never ends a job: it tells mapq_worker.c how the
 * start went.
 *
 * Pipes and the command-or-host fault test are mapq_proc's, shared with
 * command attempts. The PATH lookup, the environment and the spawn follow
 * cmd_spawn.c's but differ in what they take (a struct mapq_worker, a
 * fixed argv, MAPQ_WORKER=1), so they are this file's own.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "mapq_alloc.h"
#include "mapq_fs.h"
#include "mapq_proc.h"
#include "worker_int.h"

void
worker_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* ---- pipes (as in cmd_spawn.c) ---------------------------------------- */

/* ---- environment ------------------------------------------------------ */

/* True for an inherited variable that the worker must not see: the ones
 * mapq sets for commands (a worker serves many subtasks, whose identity
 * comes in each line), and the agent's connection (the Redis URL holds
 * the password). Kept in step with cmd_spawn.c's env_is_ours(). */
static bool
env_is_ours(const char *entry)
{
    static const char *const names[] = {
        "MAPQ_EXECUTION=", "MAPQ_NODE=",      "MAPQ_INDEX=",
        "MAPQ_ATTEMPT=",   "MAPQ_OUTPUT=",    "MAPQ_CHECKPOINT=",
        "MAPQ_REDIS_URL=", "MAPQ_NAMESPACE=", "MAPQ_TEST_REDIS_URL=",
        "MAPQ_WORKER="};
    size_t i;

    if (strncmp(entry, "MAPQ_IN_", 8) == 0)
        return true;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strncmp(entry, names[i], strlen(names[i])) == 0)
            return true;
    return false;
}

/* True when entry ("NAME=...") names a variable that w's spec sets. */
static bool
env_is_added(const struct mapq_worker *w, const char *entry)
{
    const char *eq = strchr(entry, '=');
    size_t n = eq ? (size_t)(eq - entry) + 1 : strlen(entry), i;

    for (i = 0; i < w->envc; i++)
        if (strncmp(w->env[i], entry, n) == 0)
            return true;
    return false;
}

/* The agent's environment, filtered, plus MAPQ_WORKER=1 and the spec's
 * additions. Every entry is borrowed: free only the array. */
static char **
build_env(const struct mapq_worker *w)
{
    static char worker_var[] = "MAPQ_WORKER=1";
    size_t i, k = 0, total = 0;
    char **env;

    while (environ != NULL && environ[total] != NULL)
        total++;
    env = mapq_xcalloc(total + w->envc + 2, sizeof(char *));
    for (i = 0; i < total; i++)
        if (!env_is_ours(environ[i]) && !env_is_added(w, environ[i]))
            env[k++] = environ[i];
    env[k++] = worker_var;
    for (i = 0; i < w->envc; i++)
        env[k++] = w->env[i];
    return env;
}

/* ---- finding the command (as in cmd_spawn.c) -------------------------- */

/* A candidate for name in directory dir (relative: to the working
 * directory, where the child runs); caller frees. */
static char *
candidate(const struct mapq_worker *w, const char *dir, size_t len,
          const char *name)
{
    if (len > 0 && dir[0] == '/')
        return mapq_xasprintf("%.*s/%s", (int)len, dir, name);
    if (len > 0)
        return mapq_xasprintf("%s/%.*s/%s", w->dir, (int)len, dir, name);
    return mapq_xasprintf("%s/%s", w->dir, name);
}

/* Finds argv[0] as execvp() would and sets w->path; returns 0 or an errno
 * (ENOENT: not found). */
static int
resolve_command(struct mapq_worker *w)
{
    const char *dirs = getenv("PATH"), *p, *end;
    char *path;
    int rc, e = ENOENT;

    free(w->path);
    w->path = NULL;
    if (strchr(w->name, '/') != NULL) {
        path = w->name[0] == '/' ? mapq_xstrdup(w->name)
                                 : candidate(w, "", 0, w->name);
        rc = mapq_proc_check_exec(path);
        if (rc == 0)
            w->path = path;
        else
            free(path);
        return rc;
    }
    for (p = dirs != NULL ? dirs : "/bin:/usr/bin";; p = end + 1) {
        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        path = candidate(w, p, (size_t)(end - p), w->name);
        rc = mapq_proc_check_exec(path);
        if (rc == 0) {
            w->path = path;
            return 0;
        }
        free(path);
        if (rc == EACCES)
            e = EACCES;
        if (*end == '\0')
            return e;
    }
}

/* ---- spawning (as in cmd_spawn.c) ------------------------------------- */

/* The fast path: vfork-style posix_spawn; returns 0 or an errno. */
static int
spawn_posix(struct mapq_worker *w, char **envp, const int child[3])
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    sigset_t none, all;
    int rc, i;

    posix_spawn_file_actions_init(&fa);
    for (i = 0; i < 3; i++)
        posix_spawn_file_actions_adddup2(&fa, child[i], i);
    /* Nothing else of the agent's: above all not its authenticated Redis
     * connections, which a worker could otherwise write commands to. */
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
    posix_spawn_file_actions_addchdir_np(&fa, w->dir);
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
    rc = posix_spawn(&w->pid, w->path, &fa, &at, w->argv, envp);
    posix_spawnattr_destroy(&at);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        w->pid = -1;
    return rc;
}

/* In the forked child: set up and exec, or report errno on status_w. Only
 * async-signal-safe calls, as the agent may have threads. */
static _Noreturn void
child_exec(const struct mapq_worker *w, char **envp, const int child[3],
           int status_w)
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
    /* Only stdio and the status pipe (close-on-exec) stay open. */
    if (status_w > 3)
        close_range(3, (unsigned)status_w - 1, 0);
    close_range((unsigned)status_w + 1, ~0U, 0);
    if (chdir(w->dir) != 0)
        goto report_errno;
    rl.rlim_cur = (rlim_t)w->mem_bytes;
    rl.rlim_max = (rlim_t)w->mem_bytes;
    if (setrlimit(RLIMIT_AS, &rl) != 0)
        goto report_errno;
    execve(w->path, w->argv, envp);
report_errno:
    e = errno;
    if (write(status_w, &e, sizeof(e)) < 0)
        _exit(126);
    _exit(127);
}

/* fork+exec, for a memory limit set in the child; returns 0 or errno. */
static int
spawn_fork(struct mapq_worker *w, char **envp, const int child[3], int status_w)
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
        child_exec(w, envp, child, status_w);
    e = errno;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (pid < 0)
        return e;
    /* Also here, so the group exists before we may signal it. */
    setpgid(pid, pid);
    w->pid = pid;
    return 0;
}

/* Creates the pipes and starts the process; WORKER_UNRUNNABLE when the
 * command itself could not be executed. */
static enum worker_spawned
launch(struct mapq_worker *w, char **envp, char *why, char *err)
{
    int p[WNPIPES][2], child[3], status_w = -1, i, e;
    bool fork_path = w->mem_bytes > 0;
    int npipes = fork_path ? WNPIPES : WPIPE_STATUS;

    for (i = 0; i < npipes; i++) {
        if (mapq_proc_pipe(p[i], i == WPIPE_IN ? 1 : 0) != 0) {
            e = errno;
            while (i-- > 0) {
                close(p[i][i == WPIPE_IN ? 0 : 1]);
                worker_close_fd(&w->fd[i]);
            }
            mapq_err_set(err, MAPQ_EIO, "cannot create a pipe: %s",
                         strerror(e));
            return WORKER_SPAWN_FAIL;
        }
        w->fd[i] = p[i][i == WPIPE_IN ? 1 : 0];
    }
    child[0] = p[WPIPE_IN][0];
    child[1] = p[WPIPE_OUT][1];
    child[2] = p[WPIPE_ERR][1];
    if (fork_path)
        status_w = p[WPIPE_STATUS][1];
    if (fork_path)
        e = spawn_fork(w, envp, child, status_w);
    else
        e = spawn_posix(w, envp, child);
    for (i = 0; i < 3; i++)
        close(child[i]);
    if (status_w >= 0)
        close(status_w);
    if (e == 0)
        return WORKER_SPAWNED;
    for (i = 0; i < WNPIPES; i++)
        worker_close_fd(&w->fd[i]);
    if (!mapq_proc_command_errno(e)) {
        mapq_err_set(err, MAPQ_EIO, "cannot start '%s': %s", w->name,
                     strerror(e));
        return WORKER_SPAWN_FAIL;
    }
    worker_exec_error(w, e, why, MAPQ_ERR_LEN);
    return WORKER_UNRUNNABLE;
}

enum worker_spawned
worker_spawn(struct mapq_worker *w, char *why, char *err)
{
    char *tmpl = mapq_xasprintf("%s/mapq-w-XXXXXX", w->workroot);
    enum worker_spawned rc;
    char **envp;
    int e;

    if (mkdtemp(tmpl) == NULL) {
        mapq_err_set(err, MAPQ_EIO,
                     "cannot create a working directory in '%s': %s",
                     w->workroot, strerror(errno));
        free(tmpl);
        return WORKER_SPAWN_FAIL;
    }
    w->dir = tmpl;
    w->ckpt_path = mapq_xasprintf("%s/" WORKER_CKPT_FILE, tmpl);
    e = resolve_command(w);
    if (e != 0) {
        worker_exec_error(w, e, why, MAPQ_ERR_LEN);
        return WORKER_UNRUNNABLE;
    }
    envp = build_env(w);
    rc = launch(w, envp, why, err);
    free(envp);
    return rc;
}
