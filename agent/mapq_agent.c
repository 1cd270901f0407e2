/*
 * mapq_agent.c - the agent's controller: claim, run, record.
 *
 * Data flow: doorbell (BLPOP) -> mapq1_claim -> job per (ref, body) -> task
 * spec from the cache (or HGET P:x:<exec> t:<k>) -> reservation for
 * cache_serialize -> plugin call or command -> outbox -> mapq1_done.
 *
 * This file owns every job and its slot state (changed only by
 * job_set_state()); agent_new.c makes the agent, its timers and its
 * connections, whose callbacks hand over to it. It decides what happens next
 * when a leaf reports (agent_int.h lists them): a claimed subtask becomes a
 * job, a job whose spec is known starts, a finished job is recorded in the
 * outbox and the agent claims again. Every call that Redis can refuse is
 * tried again after a capped, jittered backoff of its own (agent_retry.c);
 * a call that got no reply because the connection went down is not
 * retried: the connection's state callback resumes everything on
 * reconnect. Nothing here blocks the loop, except a plugin call, which
 * runs on it.
 */
#include "mapq_agent.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_log.h"
#include "mapq_taskspec.h"
#include "mapq_value.h"

static void job_start(struct job *job);

/* ---- job state --------------------------------------------------------- */

/* Which count a state is counted in: 1 waiting, 2 running, 3 queued, 0
 * none. */
static int
slot_kind(enum job_state s)
{
    if (s == JOB_NEW || s == JOB_DONE)
        return 0;
    if (s == JOB_QUEUED)
        return 3;
    return s >= JOB_RUN ? 2 : 1;
}

/* The one place a job's state changes: asserts the move is legal and
 * keeps the agent's counts of waiting and running jobs, and what running
 * commands declared of its CPUs and memory. */
static void
job_set_state(struct job *job, enum job_state to)
{
    struct mapq_agent *a = job->a;
    int from_kind = slot_kind(job->state), to_kind = slot_kind(to);

    mapq_assert(agent_job_state_legal(job->state, to));
    mapq_log(MAPQ_LOG_DEBUG, "%s: slot %s -> %s", job->ref,
             agent_job_state_name(job->state), agent_job_state_name(to));
    if (from_kind != to_kind) {
        int delta = (to_kind >= 2) - (from_kind >= 2);

        a->waiting += (to_kind == 1) - (from_kind == 1);
        a->running_cmds += (to_kind == 2) - (from_kind == 2);
        a->queued += (to_kind == 3) - (from_kind == 3);
        /* Per task, and how many tasks have any (prefetch_hold). */
        if (delta > 0 && job->spec->nheld++ == 0)
            a->nheld_specs++;
        else if (delta < 0 && --job->spec->nheld == 0)
            a->nheld_specs--;
        if (to_kind == 2 && !job->spec->spec->plugin)
            agent_res_take(&a->res, job->spec->spec->cpu_milli,
                           job->spec->spec->mem_bytes, &job->held);
        else if (from_kind == 2)
            agent_res_give(&a->res, &job->held);
    }
    job->state = to;
}

/* The state job moves to when its execution ended (stopped) or its lease
 * was lost, wherever it is. */
static enum job_state
ended_state(const struct job *job, bool stopped)
{
    if (job_waits_spec(job))
        return stopped ? JOB_SPEC_STOPPED : JOB_SPEC_LOST;
    if (job_waits_fetch(job))
        return stopped ? JOB_FETCH_STOPPED : JOB_FETCH_LOST;
    if (job_waits_reserve(job))
        return stopped ? JOB_RESERVE_STOPPED : JOB_RESERVE_LOST;
    mapq_assert(job_running(job));
    return stopped ? JOB_RUN_STOPPED : JOB_RUN_LOST;
}

/* The job leaves its slot (already off the list): records its end, if
 * any, and frees it. */
static void
job_leave(struct job *job, struct job_end *end)
{
    agent_metrics_ended(job->a->metrics, job, end);
    if (end->kind != 0)
        agent_outbox_add(job->a, job, end);
    agent_job_end_release(end);
    job_set_state(job, JOB_DONE);
    /* With no job left, no task holds one: a count that drifted would
     * skew the prefetch for good. */
    mapq_assert(!TAILQ_EMPTY(&job->a->jobs) || job->a->nheld_specs == 0);
    agent_job_free(job);
}

/* Takes job (waiting) off the list and frees it, recording nothing. */
static void
job_drop(struct job *job)
{
    struct job_end none = JOB_END_NONE;

    TAILQ_REMOVE(&job->a->jobs, job, entry);
    job_leave(job, &none);
}

/* ---- running ----------------------------------------------------------- */

/* Whether a slot is free for one more command (self: a job counted as
 * waiting that would take it). */
static bool
slot_free(const struct mapq_agent *a, const struct job *self)
{
    int busy = a->running_cmds + a->waiting;

    if (self != NULL && slot_kind(self->state) == 1)
        busy--;
    return busy < a->cfg.slots;
}

void
agent_fill_slots(struct mapq_agent *a)
{
    struct job *job, *next;

    for (job = TAILQ_FIRST(&a->jobs); job != NULL && a->queued > 0;
         job = next) {
        next = TAILQ_NEXT(job, entry);
        if (job->state != JOB_QUEUED)
            continue;
        if (!slot_free(a, NULL))
            break;
        job_start(job);
    }
}

/* A running job's attempt is over (job is on the list): it leaves its slot
 * with end recorded, and what can start now starts. */
static void
job_ran_out(struct job *job, struct job_end *end)
{
    struct mapq_agent *a = job->a;

    TAILQ_REMOVE(&a->jobs, job, entry);
    job_leave(job, end);
    agent_fill_slots(a);
    agent_step_soon(a);
    agent_check_exit(a);
}

static void files_failed(struct job *job, enum mapq_err rc, const char *err,
                         struct job_end *end);

/* What a running job records when it was ended early, whatever its run
 * did: nothing (its lease was lost), ABORTED (its execution ended), a
 * hand back (the drain interrupted it). Fills end; false when it was
 * not ended early. */
static bool
ended_early(const struct job *job, struct job_end *end)
{
    if (job->state == JOB_RUN_LOST)
        return true;
    if (job->state == JOB_RUN_STOPPED)
        agent_job_failed(job, MAPQ_PHASE_ABORTED,
                         "aborted: the execution was cancelled or failed", NULL,
                         true, end);
    else if (job->state == JOB_RUN_INTERRUPTED)
        agent_job_interrupted(job, end);
    else
        return false;
    return true;
}

/* job succeeded and its output holds files: they are stored first (it
 * stays on the list, in JOB_UPLOAD), unless the output names no file of
 * its own (its failure) or this host cannot keep them (a system
 * failure), which fills end. Returns whether they are being stored. */
static bool
store_files(struct job *job, const struct mapq_cmd_result *res, const char *dir,
            struct job_end *end)
{
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc = agent_files_store(job, res, dir, err);

    if (rc == MAPQ_OK) {
        job_set_state(job, JOB_UPLOAD);
        job->res = NULL; /* res goes when this returns: the kept copy */
        job->ckpt_out = NULL;
        return true;
    }
    if (rc == MAPQ_EIO)
        files_failed(job, rc, err, end);
    else
        agent_job_failed(job, MAPQ_PHASE_FAILED, err, &res->stderr_tail, false,
                         end);
    return false;
}

/* The end of job's attempt, run by its command or its worker in dir:
 * records what it did and starts what can start now. */
static void
job_ran(struct job *job, const struct mapq_cmd_result *res, const char *dir)
{
    struct mapq_agent *a = job->a;
    struct job_end end = JOB_END_NONE;

    a->prefetch_paused = false; /* a slot frees */
    a->admit_paused = false;    /* and its resources */
    job->res = res;
    job->ckpt_out = res->has_checkpoint ? &res->checkpoint : NULL;
    if (job->live_followed)
        agent_live_send(job, res);
    if (res->status == MAPQ_CMD_SUCCEEDED || res->status == MAPQ_CMD_FAILED) {
        struct spec_entry *e = job->spec;
        int64_t us = res->duration_ms * 1000;

        e->avg_us = e->avg_us < 0 ? us : e->avg_us + (us - e->avg_us) / 8;
    }
    if (ended_early(job, &end)) {
        /* recorded as it ended */
    } else if (res->status == MAPQ_CMD_SUCCEEDED && agent_files_output(job)) {
        if (store_files(job, res, dir, &end))
            return;
    } else {
        agent_job_ran(job, res, &end);
    }
    job_ran_out(job, &end);
}

static void
cmd_done_cb(struct mapq_cmd *cmd, const struct mapq_cmd_result *res, void *arg)
{
    struct job *job = arg;

    job->cmd = NULL; /* freed below, as the runner allows */
    job_ran(job, res, mapq_cmd_dir(cmd));
    mapq_cmd_free(cmd);
}

static void
worker_done_cb(struct mapq_worker *w, const struct mapq_cmd_result *res,
               void *arg)
{
    struct job *job = arg;
    struct mapq_agent *a = job->a;
    struct agent_worker *aw = job->worker;

    job->worker = NULL;
    if (a->stopping) {
        job_ran(job, res, mapq_worker_dir(w));
        agent_worker_give(a, aw); /* ends it */
        return;
    }
    /* Idle again before the record, so that the subtask that takes the
     * slot reuses it; w lives on, the newest idle worker, and takes
     * nothing before this returns. res is the callback's own copy for the
     * whole call, whatever the worker does meanwhile. */
    agent_worker_give(a, aw);
    job_ran(job, res, mapq_worker_dir(w));
}

/* Starts job's command (job is on the list). */
static void
run_command(struct job *job)
{
    struct job_end end = JOB_END_NONE;
    char err[MAPQ_ERR_LEN];

    job_set_state(job, JOB_RUN);
    if (job->spec->spec->worker) {
        if (agent_worker_start(job, worker_done_cb, err) == MAPQ_OK)
            return;
    } else {
        job->cmd = agent_job_command(job, cmd_done_cb, err);
    }
    if (job->cmd == NULL) {
        /* Could not start at all on this host: a system failure. */
        mapq_log(MAPQ_LOG_ERROR, "%s: cannot start command: %s", job->ref, err);
        TAILQ_REMOVE(&job->a->jobs, job, entry);
        agent_job_requeued(job, 'S', err, &end);
        job_leave(job, &end);
    }
}

/* What a plugin call's outcome records (its checkpoint lives in the
 * outcome, so the record is made before it is released). */
static void
plugin_outcome(struct job *job, const struct mapq_plugin_outcome *out,
               struct job_end *end)
{
    job->ckpt_out = out->has_checkpoint ? &out->checkpoint : NULL;
    if (out->status == MAPQ_PLUGIN_OK)
        agent_job_succeeded(job, &out->output, end);
    else
        agent_job_failed(job, MAPQ_PHASE_FAILED, out->error, NULL, false, end);
}

/* The child calling job's plugin (job in JOB_RUN*) ended. */
static void
plugin_child_done(struct job *job, enum agent_plugin_end how,
                  const struct mapq_plugin_outcome *out)
{
    struct mapq_plugin_outcome checked;
    struct job_end end = JOB_END_NONE;

    if (ended_early(job, &end)) {
        /* recorded as it ended */
    } else if (how == AGENT_PLUGIN_CRASHED) {
        /* It may have crashed the agent that ran it with its whole batch
         * before: now it costs only its own attempt. */
        agent_job_requeued(
            job, 'S', "the plugin call crashed the process running it", &end);
    } else if (how == AGENT_PLUGIN_TIMED_OUT) {
        agent_job_failed(job, MAPQ_PHASE_TIMED_OUT,
                         "timed out: the plugin call was killed", NULL, false,
                         &end);
    } else if (how == AGENT_PLUGIN_DONE) {
        checked = *out; /* shallow: the check may rewrite status and error */
        agent_plugin_check(job, &checked);
        plugin_outcome(job, &checked, &end);
    }
    job_ran_out(job, &end);
}

/* Runs job's plugin (job is off the list): on the loop, or for a subtask
 * lost before, in a child watched from the loop. */
static void
run_plugin(struct job *job)
{
    struct mapq_plugin_outcome out;
    struct job_end end = JOB_END_NONE;

    if (job->r.s > 0) {
        TAILQ_INSERT_TAIL(&job->a->jobs, job, entry);
        job_set_state(job, JOB_RUN);
        if (agent_plugin_start(job, plugin_child_done, &out)) {
            mapq_plugin_outcome_release(&out);
            return;
        }
        TAILQ_REMOVE(&job->a->jobs, job, entry);
        if (out.status == MAPQ_PLUGIN_ERROR)
            plugin_outcome(job, &out, &end);
        else
            agent_job_requeued(job, 'S', "cannot fork for the plugin call",
                               &end);
    } else {
        agent_plugin_run(job, &out);
        plugin_outcome(job, &out, &end);
    }
    job_leave(job, &end);
    mapq_plugin_outcome_release(&out);
}

/*
 * A command whose declared resources do not fit in what is free here. If
 * running commands hold them, it goes back to its list and the agent
 * claims no command until one ends. If it never fits here, it goes back
 * too, and claims pause for UNFIT_PAUSE_MS so a larger agent takes it,
 * while Redis is asked whether any live agent could; when none could, it
 * fails (final) saying so. Fills end: the hand back or the failure.
 */
static void
admit_or_fail(struct job *job, struct job_end *end)
{
    struct mapq_agent *a = job->a;
    struct spec_entry *e = job->spec;
    const struct mapq_taskspec *s = e->spec;
    struct timeval tv;

    if (agent_res_ever_fits(&a->res, s->cpu_milli, s->mem_bytes)) {
        a->admit_paused = true;
        agent_job_requeued(job, 'R', NULL, end);
        return;
    }
    if (e->unfit[0] != '\0' &&
        agent_now_ms() - e->fit_checked_ms < UNFIT_RECHECK_MS) {
        agent_job_failed(job, MAPQ_PHASE_FAILED, e->unfit, NULL, true, end);
        return;
    }
    if (e->fit_checked_ms == 0 ||
        agent_now_ms() - e->fit_checked_ms >= UNFIT_RECHECK_MS)
        agent_res_ask(a, e);
    a->admit_paused = true;
    agent_ms_to_tv(UNFIT_PAUSE_MS, &tv);
    evtimer_add(a->admit_ev, &tv);
    agent_job_requeued(job, 'R', NULL, end);
}

/* job's file inputs could not be fetched (rc, err): a reference that is
 * none fails it for good; anything else is a system failure, and the
 * subtask runs again while system_retries last, then fails saying why
 * (the last attempt's error names the file). Fills end. */
static void
files_failed(struct job *job, enum mapq_err rc, const char *err,
             struct job_end *end)
{
    mapq_log(MAPQ_LOG_WARN, "%s: %s", job->ref, err);
    if (rc == MAPQ_ETYPE ||
        job->r.s >= (uint32_t)job->spec->spec->system_retries)
        agent_job_failed(job, MAPQ_PHASE_FAILED, err, NULL, true, end);
    else
        agent_job_requeued(job, 'S', err, end);
}

/*
 * Decides what a job whose spec is known (or whose files, reservation or
 * turn came) does: nothing (lost), record ABORTED (stopped), fail, go back
 * to its list (the agent is stopping), wait for a slot (queued), fetch its
 * files, ask for its key's reservation, call its plugin, or run its
 * command.
 */
static void
job_start(struct job *job)
{
    struct mapq_agent *a = job->a;
    const struct mapq_taskspec *s = job->spec->spec;
    struct job_end end = JOB_END_NONE;
    char msg[MAPQ_ERR_LEN];
    enum mapq_err rc;

    TAILQ_REMOVE(&a->jobs, job, entry);
    job->started_ms = agent_now_ms();
    agent_metrics_claimed(a->metrics, job);
    if (job_lost(job)) {
        /* lost its lease while waiting (spec, reservation): not ours */
    } else if (job_stopped(job)) {
        /* its execution ended while it waited: never run it */
        agent_job_failed(job, MAPQ_PHASE_ABORTED,
                         "aborted: the execution was cancelled or failed", NULL,
                         true, &end);
    } else if (s == NULL) {
        /* Unreadable, or not signed: no retry (a security error). */
        agent_job_failed(job, MAPQ_PHASE_FAILED, job->spec->error, NULL,
                         job->spec->security, &end);
    } else if (job->r.s > (uint32_t)s->system_retries) {
        snprintf(msg, sizeof(msg),
                 "lost %u times: the agents running it died, were "
                 "interrupted or lost their lease (system_retries: %d)",
                 job->r.s, s->system_retries);
        /* final: no user retry either */
        agent_job_failed(job, MAPQ_PHASE_FAILED, msg, NULL, true, &end);
    } else if (a->stopping && job->state != JOB_RESERVE) {
        /* Never started, and the agent takes nothing new: handed back. */
        agent_job_requeued(job, 'R', NULL, &end);
    } else if (!s->plugin && job->state != JOB_RESERVE &&
               !agent_res_fits(&a->res, s->cpu_milli, s->mem_bytes)) {
        admit_or_fail(job, &end);
    } else if (!s->plugin && job->state == JOB_SPEC && !slot_free(a, job) &&
               agent_task_depth(job->spec) < 2) {
        /* Prefetched, but its task is not known to be short here: another
         * agent may be free for it now. No more prefetch until a slot
         * frees, or the same refs would come straight back. */
        a->prefetch_paused = true;
        agent_job_requeued(job, 'R', NULL, &end);
    } else if (!s->plugin && job->state == JOB_SPEC && !slot_free(a, job)) {
        /* Prefetched: it starts when a slot frees. */
        TAILQ_INSERT_TAIL(&a->jobs, job, entry);
        job_set_state(job, JOB_QUEUED);
        return;
    } else if (agent_files_wanted(job)) {
        /* Its files first, on the transfer thread (a slot waits for
         * them); then it comes back here. */
        TAILQ_INSERT_TAIL(&a->jobs, job, entry);
        job_set_state(job, JOB_FETCH);
        rc = agent_files_fetch(job, msg);
        if (rc == MAPQ_OK)
            return;
        TAILQ_REMOVE(&a->jobs, job, entry);
        files_failed(job, rc, msg, &end);
    } else if (agent_job_needs_reservation(job) &&
               (job->state == JOB_SPEC || job->state == JOB_QUEUED ||
                job->state == JOB_FETCH)) {
        /* One attempt per cache key at a time: ask first. */
        TAILQ_INSERT_TAIL(&a->jobs, job, entry);
        job_set_state(job, JOB_RESERVE);
        agent_reserve_send(job);
        return;
    } else if (s->plugin) {
        run_plugin(job);
        return;
    } else {
        TAILQ_INSERT_TAIL(&a->jobs, job, entry);
        run_command(job);
        return;
    }
    job_leave(job, &end);
}

/* ---- what the leaves report -------------------------------------------- */

static void
agent_claimed(struct mapq_agent *a, const msgpack_object *ref,
              const msgpack_object *body, const msgpack_object *ckpt)
{
    struct job_end end = JOB_END_NONE;
    char why[MAPQ_ERR_LEN];
    struct job *job = agent_job_new(a, ref, body, ckpt, why);

    if (why[0] != '\0') {
        /* Nothing of it runs; a final failure, so that nothing waits. */
        mapq_log(MAPQ_LOG_WARN, "subtask %s set aside: %s", job->ref, why);
        agent_job_failed(job, MAPQ_PHASE_FAILED, why, NULL, true, &end);
        job_leave(job, &end);
        return;
    }
    job->spec = agent_spec_get(a, job);
    TAILQ_INSERT_TAIL(&a->jobs, job, entry);
    job_set_state(job, JOB_SPEC);
    if (job->spec->spec != NULL || job->spec->error[0] != '\0')
        job_start(job);
    else if (!job->spec->fetching)
        agent_spec_fetch(a, job->spec, job);
}

static void
agent_spec_ready(struct mapq_agent *a, struct spec_entry *e)
{
    struct job *job, *next;

    for (job = TAILQ_FIRST(&a->jobs); job != NULL; job = next) {
        next = TAILQ_NEXT(job, entry);
        if (job->spec == e && job_waits_spec(job))
            job_start(job);
    }
    agent_step_soon(a);
}

static void
agent_fetched(struct job *job, enum mapq_err rc, const char *err)
{
    struct mapq_agent *a = job->a;
    struct job_end end = JOB_END_NONE;

    if (rc == MAPQ_OK) {
        job_start(job);
        return;
    }
    TAILQ_REMOVE(&a->jobs, job, entry);
    files_failed(job, rc, err, &end);
    job_leave(job, &end);
    agent_fill_slots(a);
    agent_step_soon(a);
    agent_check_exit(a);
}

static void
agent_stored(struct job *job, enum mapq_err rc, const char *err,
             const struct mapq_buf *value)
{
    struct job_end end = JOB_END_NONE;

    if (ended_early(job, &end)) {
        /* recorded as it ended */
    } else if (rc == MAPQ_OK) {
        agent_job_succeeded(job, value, &end);
    } else if (rc == MAPQ_ETOOBIG) {
        /* Too large for the store: the task's failure. */
        mapq_log(MAPQ_LOG_WARN, "%s: %s", job->ref, err);
        agent_job_failed(job, MAPQ_PHASE_FAILED, err, NULL, false, &end);
    } else {
        files_failed(job, rc, err, &end);
    }
    job_ran_out(job, &end);
}

static void
agent_reserved(struct job *job, enum reserve_verdict v, const char *text,
               const char *cached, size_t len)
{
    struct mapq_agent *a = job->a;
    struct job_end end = JOB_END_NONE;

    switch (v) {
    case RESERVE_MALFORMED:
        /* Its lease will expire and it runs again. */
        mapq_log(MAPQ_LOG_WARN, "%s: malformed reservation reply", job->ref);
        job_drop(job);
        return;
    case RESERVE_RUN:
        job_start(job);
        break;
    case RESERVE_CACHED:
        TAILQ_REMOVE(&a->jobs, job, entry);
        agent_job_cached(job, cached, len, &end);
        job_leave(job, &end);
        break;
    case RESERVE_PASS:
        /* "wait": parked until the holder ends; "lost": not ours now. */
        mapq_log(MAPQ_LOG_DEBUG, "%s: %s", job->ref, text);
        job_drop(job);
        break;
    }
    agent_fill_slots(a);
    agent_step_soon(a);
    agent_check_exit(a);
}

void
agent_reserve_resend(struct mapq_agent *a)
{
    struct job *job, *next;

    if (!mapq_redis_ready(a->cmd) || evtimer_pending(a->reserve_retry_ev, NULL))
        return;
    for (job = TAILQ_FIRST(&a->jobs); job != NULL; job = next) {
        next = TAILQ_NEXT(job, entry);
        if (!job_waits_reserve(job) || !job->reserve_due)
            continue;
        job->reserve_due = false;
        if (job_lost(job))
            job_drop(job); /* lost its lease meanwhile: not ours */
        else
            agent_reserve_send(job);
    }
    agent_check_exit(a);
}

static void
agent_lease_ended(struct mapq_agent *a, const char *ref, bool stopped)
{
    struct job *job = agent_job_find(a, ref);

    if (stopped && job != NULL)
        agent_workers_end_exec(a, job->r.exec);
    if (job == NULL || job_lost(job) || job_stopped(job))
        return;
    mapq_log(stopped ? MAPQ_LOG_INFO : MAPQ_LOG_WARN, "%s: %s, stopping it",
             ref,
             stopped ? "its execution is no longer running" : "lease lost");
    if (job->state == JOB_QUEUED) {
        /* Never started: lost, it is not ours; stopped, it is aborted. */
        struct job_end end = JOB_END_NONE;

        TAILQ_REMOVE(&a->jobs, job, entry);
        if (stopped)
            agent_job_failed(job, MAPQ_PHASE_ABORTED,
                             "aborted: the execution was cancelled or failed",
                             NULL, true, &end);
        job_leave(job, &end);
        agent_step_soon(a);
        agent_check_exit(a);
        return;
    }
    job_set_state(job, ended_state(job, stopped));
    if (agent_files_cancel(job)) {
        /* Its files are not needed now: it ends at once. */
        job_start(job);
        agent_fill_slots(a);
        agent_step_soon(a);
        agent_check_exit(a);
        return;
    }
    if (job->cmd != NULL)
        mapq_cmd_kill(job->cmd, SIGKILL);
    agent_worker_kill(job, SIGKILL);
    agent_plugin_kill(job);
}

static void
agent_followed(struct mapq_agent *a, const char *ref)
{
    struct job *job = agent_job_find(a, ref);

    if (job != NULL && job->state == JOB_RUN && job->cmd != NULL)
        agent_live_send(job, NULL);
}

static void
agent_wake(struct mapq_agent *a)
{
    agent_step_soon(a);
}

static void
agent_left(struct mapq_agent *a)
{
    event_base_loopexit(a->base, NULL);
}

const struct agent_ops agent_controller_ops = {
    .claimed = agent_claimed,
    .wake = agent_wake,
    .spec_ready = agent_spec_ready,
    .fetched = agent_fetched,
    .stored = agent_stored,
    .reserved = agent_reserved,
    .lease_ended = agent_lease_ended,
    .followed = agent_followed,
    .left = agent_left,
};

/* ---- shutdown ---------------------------------------------------------- */

void
agent_check_exit(struct mapq_agent *a)
{
    if (!a->stopping || !TAILQ_EMPTY(&a->jobs) || a->leaving)
        return;
    if (a->outbox.argc > 0 || a->step_inflight) {
        agent_step_soon(a);
        return;
    }
    mapq_log(MAPQ_LOG_INFO, "drained; exiting");
    a->leaving = true;
    event_del(a->renew_ev); /* a late heartbeat would list it again */
    if (!mapq_redis_ready(a->cmd)) {
        event_base_loopexit(a->base, NULL);
        return;
    }
    agent_lease_leave(a);
}

void
agent_grace_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;
    struct job *job, *next;
    struct job_end end;
    struct timeval tv;

    (void)fd;
    (void)what;
    for (job = TAILQ_FIRST(&a->jobs); job != NULL; job = next) {
        next = TAILQ_NEXT(job, entry);
        if ((job->cmd != NULL || job->worker != NULL || job->child != NULL) &&
            !job_lost(job)) {
            /* Handed back when it ends, unless its execution ended. */
            if (job->state == JOB_RUN)
                job_set_state(job, JOB_RUN_INTERRUPTED);
            if (job->cmd != NULL)
                mapq_cmd_kill(job->cmd, SIGKILL);
            agent_worker_kill(job, SIGKILL);
            agent_plugin_kill(job);
        } else if (job_waits_spec(job) || job_waits_fetch(job) ||
                   job_waits_reserve(job)) {
            /* Never started (its task spec, its files or its reservation
             * is still on the way): handed back to the same list, costing
             * nothing. */
            agent_files_cancel(job);
            TAILQ_REMOVE(&a->jobs, job, entry);
            agent_job_requeued(job, 'R', NULL, &end);
            job_leave(job, &end);
        }
    }
    agent_ms_to_tv(EXIT_DEADLINE_MS, &tv);
    evtimer_add(a->deadline_ev, &tv);
    agent_check_exit(a);
}

void
agent_deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;

    (void)fd;
    (void)what;
    mapq_log(MAPQ_LOG_WARN,
             "exiting with %d unrecorded results: redis is unreachable or "
             "refuses them; their leases will expire and they will run "
             "again",
             a->outbox.argc / DONE_FIELDS);
    event_base_loopexit(a->base, NULL);
}

void
mapq_agent_shutdown(struct mapq_agent *a)
{
    struct job *job, *next;
    struct job_end end;
    struct timeval tv;

    if (a->stopping) {
        mapq_log(MAPQ_LOG_INFO, "second signal: skipping the grace period");
        evtimer_del(a->grace_ev);
        agent_grace_cb(-1, 0, a);
        return;
    }
    a->stopping = true;
    mapq_log(MAPQ_LOG_INFO,
             "stopping: no new subtasks; %d running get %lld ms to finish",
             a->running_cmds, (long long)a->cfg.grace_ms);
    /* Before anything goes back: each hand-back rings its list's bell. */
    agent_claim_stop(a);
    /* Prefetched subtasks go back to the head of their lists at once. */
    for (job = TAILQ_FIRST(&a->jobs); job != NULL; job = next) {
        next = TAILQ_NEXT(job, entry);
        if (job->state != JOB_QUEUED)
            continue;
        TAILQ_REMOVE(&a->jobs, job, entry);
        agent_job_requeued(job, 'R', NULL, &end);
        job_leave(job, &end);
    }
    agent_workers_release(a); /* idle: nothing new will run */
    agent_step_soon(a);
    agent_ms_to_tv(a->cfg.grace_ms, &tv);
    evtimer_add(a->grace_ev, &tv);
    agent_check_exit(a);
}
