/*
 * agent_workers.c - the persistent workers of `worker: true` tasks (SPEC
 * section 9): which worker process runs a job, and the idle ones kept for
 * the next subtask of the same node.
 *
 * Owns every struct agent_worker: an idle one sits on a->idle_workers,
 * a busy one belongs to the job it runs (job->worker) until the controller
 * gives it back. At most one worker per slot is busy (one per running
 * job); at most as many as the agent has slots are kept idle, the least
 * recently used going first, so an agent that moves on to another node
 * ends the workers of the last one. An idle worker also ends when its
 * execution ends, or after --worker-idle without a subtask (its node is
 * done here). Never decides what a job records.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_log.h"
#include "mapq_proc.h"
#include "mapq_taskspec.h"
#include "mapq_value.h"

struct agent_worker {
    char key[96]; /* the spec entry's "<exec>/<k>": whose subtasks it runs */
    struct mapq_worker *w;
    int64_t idle_since_ms; /* while on a->idle_workers */
    TAILQ_ENTRY(agent_worker) entry;
};

static void
worker_free(struct agent_worker *aw)
{
    if (aw == NULL)
        return;
    mapq_worker_free(aw->w);
    free(aw);
}

/* An idle worker of job's node, or a new one (its process starts with its
 * first subtask). */
static struct agent_worker *
worker_take(struct mapq_agent *a, const struct job *job)
{
    const struct mapq_taskspec *s = job->spec->spec;
    struct mapq_worker_spec ws = {0};
    struct agent_worker *aw;

    TAILQ_FOREACH (aw, &a->idle_workers, entry) {
        if (strcmp(aw->key, job->spec->key) == 0) {
            TAILQ_REMOVE(&a->idle_workers, aw, entry);
            a->nidle--;
            return aw;
        }
    }
    aw = mapq_xcalloc(1, sizeof(*aw));
    snprintf(aw->key, sizeof(aw->key), "%s", job->spec->key);
    ws.argv = s->argv;
    ws.argc = s->argc;
    ws.dirs = a->dirs;
    ws.mem_bytes = s->mem_bytes;
    ws.output = s->output_written ? s->output_written : s->output;
    ws.output_max = MAPQ_VALUE_MAX;
    aw->w = mapq_worker_new(a->base, &ws);
    return aw;
}

enum mapq_err
agent_worker_start(struct job *job, mapq_worker_done_fn *done, char *err)
{
    struct mapq_agent *a = job->a;
    const struct mapq_taskspec *s = job->spec->spec;
    struct mapq_worker_job wj = {0};
    enum mapq_err rc;

    mapq_assert(job->worker == NULL);
    job->worker = worker_take(a, job);
    wj.inputs = job->inputs;
    wj.execution = job->r.exec;
    wj.node = s->node;
    wj.index = job->r.index;
    wj.attempt = mapq_ref_attempt(&job->r);
    wj.checkpoint_in = job->ckpt_in;
    wj.checkpoint_len = job->ckpt_in_len;
    wj.timeout_ms = s->timeout_ms;
    rc = mapq_worker_send(job->worker->w, &wj, done, job, err);
    if (rc != MAPQ_OK) {
        worker_free(job->worker);
        job->worker = NULL;
    } else if (job->held.ncpus > 0 &&
               mapq_proc_pin(mapq_worker_pid(job->worker->w), job->held.cpus,
                             (size_t)job->held.ncpus) != 0) {
        /* It runs unpinned: counted, not bounded. */
        mapq_log_errno(MAPQ_LOG_WARN, errno, "%s: cannot pin its worker",
                       job->ref);
    }
    return rc;
}

void
agent_worker_kill(struct job *job, int sig)
{
    if (job->worker != NULL)
        mapq_worker_kill(job->worker->w, sig);
}

void
agent_worker_give(struct mapq_agent *a, struct agent_worker *aw)
{
    struct agent_worker *old;

    if (aw == NULL)
        return;
    if (a->stopping) {
        /* Draining: nothing new will run, so it may end now. */
        worker_free(aw);
        return;
    }
    aw->idle_since_ms = agent_now_ms();
    TAILQ_INSERT_TAIL(&a->idle_workers, aw, entry);
    a->nidle++;
    while (a->nidle > a->cfg.slots) {
        old = TAILQ_FIRST(&a->idle_workers);
        TAILQ_REMOVE(&a->idle_workers, old, entry);
        a->nidle--;
        mapq_log(MAPQ_LOG_DEBUG, "ending the idle worker of %s", old->key);
        worker_free(old);
    }
}

void
agent_worker_drop(struct agent_worker *aw)
{
    worker_free(aw);
}

/* Ends the idle workers for which drop(aw, arg) says so. */
static void
drop_idle(struct mapq_agent *a,
          bool (*drop)(const struct agent_worker *aw, const void *arg),
          const void *arg)
{
    struct agent_worker *aw, *next;

    for (aw = TAILQ_FIRST(&a->idle_workers); aw != NULL; aw = next) {
        next = TAILQ_NEXT(aw, entry);
        if (!drop(aw, arg))
            continue;
        TAILQ_REMOVE(&a->idle_workers, aw, entry);
        a->nidle--;
        mapq_log(MAPQ_LOG_DEBUG, "ending the idle worker of %s", aw->key);
        worker_free(aw);
    }
}

static bool
of_exec(const struct agent_worker *aw, const void *arg)
{
    const char *exec = arg;
    size_t n = strlen(exec);

    return strncmp(aw->key, exec, n) == 0 && aw->key[n] == '/';
}

static bool
idle_since_before(const struct agent_worker *aw, const void *arg)
{
    return aw->idle_since_ms < *(const int64_t *)arg;
}

void
agent_workers_end_exec(struct mapq_agent *a, const char *exec)
{
    drop_idle(a, of_exec, exec);
}

void
agent_workers_expire(struct mapq_agent *a, int64_t now_ms)
{
    int64_t before = now_ms - a->cfg.worker_idle_ms;

    drop_idle(a, idle_since_before, &before);
}

void
agent_workers_release(struct mapq_agent *a)
{
    struct agent_worker *aw;

    while ((aw = TAILQ_FIRST(&a->idle_workers)) != NULL) {
        TAILQ_REMOVE(&a->idle_workers, aw, entry);
        worker_free(aw);
    }
    a->nidle = 0;
}
