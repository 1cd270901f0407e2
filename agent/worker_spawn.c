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
 * The PATH lookup, the environment's filter, the spawn, pipes and the
 * command-or-host fault test are mapq_proc's, shared with command
 * attempts; a worker's environment adds MAPQ_WORKER=1 and its spec's
 * variables.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- environment ------------------------------------------------------ */

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
        if (!mapq_proc_env_is_ours(environ[i]) && !env_is_added(w, environ[i]))
            env[k++] = environ[i];
    env[k++] = worker_var;
    for (i = 0; i < w->envc; i++)
        env[k++] = w->env[i];
    return env;
}

/* Creates the pipes and starts the process; WORKER_UNRUNNABLE when the
 * command itself could not be executed. */
static enum worker_spawned
launch(struct mapq_worker *w, char **envp, char *why, char *err)
{
    int p[WNPIPES][2], i, e;
    struct mapq_proc_child c = {w->path,      w->argv,      envp, w->dir,
                                {-1, -1, -1}, w->mem_bytes, NULL, 0};

    for (i = 0; i < WNPIPES; i++) {
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
    c.fds[0] = p[WPIPE_IN][0];
    c.fds[1] = p[WPIPE_OUT][1];
    c.fds[2] = p[WPIPE_ERR][1];
    e = mapq_proc_spawn(&c, &w->pid);
    if (e != 0)
        w->pid = -1;
    for (i = 0; i < 3; i++)
        close(c.fds[i]);
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
    enum worker_spawned rc;
    char **envp;
    int e;

    w->dir = mapq_workdirs_take(w->dirs, err);
    if (w->dir == NULL)
        return WORKER_SPAWN_FAIL;
    w->ckpt_path = mapq_xasprintf("%s/" WORKER_CKPT_FILE, w->dir);
    free(w->path);
    e = mapq_proc_find(w->name, w->dir, &w->path, NULL);
    if (e != 0) {
        worker_exec_error(w, e, why, MAPQ_ERR_LEN);
        return WORKER_UNRUNNABLE;
    }
    envp = build_env(w);
    rc = launch(w, envp, why, err);
    free(envp);
    return rc;
}
