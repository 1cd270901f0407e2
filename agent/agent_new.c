/*
 * agent_new.c - making and freeing an agent: its connections, its working
 * directories, its timers, and the callbacks of those timers and of its
 * connections, which hand over to the controller (mapq_agent.c) or to the
 * leaf that owns the call.
 *
 * Nothing here changes a job's state: what a timer or a reconnect means
 * for the jobs is the controller's to decide.
 */
#include "mapq_agent.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_fs.h"
#include "mapq_log.h"
#include "mapq_proc.h"

static void
spec_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    agent_spec_refetch(arg);
}

static void
reserve_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    agent_reserve_resend(arg);
}

static void
register_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;

    (void)fd;
    (void)what;
    if (!a->leaving && mapq_redis_ready(a->cmd))
        agent_lease_register(a);
}

static void
renew_tick(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;
    int64_t now = agent_now_ms();

    (void)fd;
    (void)what;
    agent_workers_expire(a, now);
    if (agent_lease_beat(a, now))
        agent_claim_look(a);
}

static void
reap_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    agent_lease_reap_tick(arg);
}

static void
cmd_state_cb(struct mapq_redis *r, bool up, void *arg)
{
    struct mapq_agent *a = arg;
    int i;

    (void)r;
    if (!up) {
        mapq_log(MAPQ_LOG_WARN, "lost the redis connection; reconnecting");
        return;
    }
    mapq_log(MAPQ_LOG_INFO, "connected to redis");
    for (i = 0; i < NBELLS; i++)
        a->bells[i].dry = false; /* bells rung while away were not heard */
    if (!evtimer_pending(a->register_retry_ev, NULL))
        agent_lease_register(a);
    agent_spec_refetch(a);
    agent_reserve_resend(a);
    agent_step_soon(a);
}

/* Why the connection cannot be made or set up: each cause once. */
static void
redis_fault_cb(struct mapq_redis *r, const char *cause, void *arg)
{
    (void)r;
    (void)arg;
    if (cause != NULL)
        mapq_log(MAPQ_LOG_ERROR, "cannot use redis (still trying): %s", cause);
    else
        mapq_log(MAPQ_LOG_INFO, "redis accepts the connection again");
}

/* Another revision of the function library was in Redis: said once per
 * connect. */
static void
redis_library_cb(struct mapq_redis *r, int held, const char *refused, void *arg)
{
    char text[MAPQ_ERR_LEN + 256];
    bool warn = mapq_redis_library_text(held, refused, text, sizeof(text));

    (void)r;
    (void)arg;
    mapq_log(warn ? MAPQ_LOG_WARN : MAPQ_LOG_INFO, "%s", text);
}

static void
blk_state_cb(struct mapq_redis *r, bool up, void *arg)
{
    agent_claim_conn(arg, r, up);
}

/* Reconnecting is silent (with backoff): this says, now and then, why the
 * agent does nothing. */
static void
watch_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;
    char url[600];

    (void)fd;
    (void)what;
    if (mapq_redis_ready(a->cmd))
        return;
    mapq_redis_url_format(&a->cfg.url, url, sizeof(url));
    mapq_log(MAPQ_LOG_WARN, "redis at %s is unreachable; still trying", url);
}

/* The end of a pause for a task too large for this agent: claim again. */
static void
admit_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_agent *a = arg;

    (void)fd;
    (void)what;
    a->admit_paused = false;
    agent_step_soon(a);
}

/* --cpus and --mem, or what the host has; the CPUs this process may use
 * are the pool declared commands are pinned to. */
static void
init_resources(struct mapq_agent *a)
{
    int64_t cpu = a->cfg.cpu_milli, mem = a->cfg.mem_bytes;
    int allowed[CPU_IDS_MAX];
    int n = agent_res_cpus_allowed(allowed, CPU_IDS_MAX);

    if (cpu <= 0)
        cpu = (int64_t)sysconf(_SC_NPROCESSORS_ONLN) * 1000;
    if (mem <= 0)
        mem = (int64_t)sysconf(_SC_PHYS_PAGES) * sysconf(_SC_PAGESIZE);
    agent_res_init(&a->res, cpu, mem, allowed, n);
}

static void
make_workroot(struct mapq_agent *a, char *err)
{
    const char *tmp = getenv("TMPDIR");
    char path[PATH_MAX];

    snprintf(path, sizeof(path), "%s/mapq-agent-XXXXXX",
             tmp && *tmp ? tmp : "/tmp");
    if (mkdtemp(path) == NULL) {
        mapq_err_set(err, MAPQ_EIO, "cannot create a working directory in %s",
                     tmp && *tmp ? tmp : "/tmp");
        return;
    }
    a->workroot = mapq_xstrdup(path);
}

/* Directories made ahead: two per command slot and two more, so that
 * slots finishing together each find one while the thread, woken once
 * half are taken, makes the next ones in one go. */
static size_t
workdirs_ahead(const struct mapq_agent_config *cfg)
{
    size_t slots = cfg->slots > 0 ? (size_t)cfg->slots : 1;

    return slots < WORKDIRS_AHEAD_MAX / 2 - 1 ? 2 * slots + 2
                                              : WORKDIRS_AHEAD_MAX;
}

struct mapq_agent *
mapq_agent_new(struct event_base *base, const struct mapq_agent_config *cfg,
               char *err)
{
    struct mapq_agent *a = mapq_xcalloc(1, sizeof(*a));
    struct timeval tv;
    size_t q;

    a->base = base;
    a->ops = &agent_controller_ops;
    a->cfg = *cfg;
    srandom(
        (unsigned)(agent_now_ms() ^ ((int64_t)getpid() << 16))); /* jitter */
    a->ns = mapq_xstrdup(cfg->ns);
    a->name = mapq_xstrdup(cfg->name);
    a->queues = mapq_xcalloc(cfg->nqueues, sizeof(char *));
    for (q = 0; q < cfg->nqueues; q++)
        a->queues[q] = mapq_xstrdup(cfg->queues[q]);
    a->cfg.queues = NULL;
    if (a->cfg.worker_idle_ms <= 0)
        a->cfg.worker_idle_ms = MAPQ_WORKER_IDLE_DEFAULT_MS;
    make_workroot(a, err);
    if (a->workroot != NULL)
        a->dirs = mapq_workdirs_new(a->workroot, workdirs_ahead(cfg), err);
    /* A cache the operator named is checked now, not at the first file. */
    if (a->dirs != NULL && cfg->file_cache != NULL)
        a->xfer = mapq_xfer_new(base, &cfg->url, cfg->ns, cfg->stores,
                                cfg->nstores, cfg->file_cache,
                                cfg->file_cache_max > 0 ? cfg->file_cache_max
                                                        : MAPQ_FILE_CACHE_MAX,
                                err);
    if (a->dirs == NULL || (cfg->file_cache != NULL && a->xfer == NULL)) {
        mapq_agent_free(a);
        return NULL;
    }
    TAILQ_INIT(&a->jobs);
    TAILQ_INIT(&a->idle_workers);
    LIST_INIT(&a->specs);
    a->bells[BELL_PLUGIN] = (struct bell){.a = a, .kind = 'p'};
    a->bells[BELL_CMD] = (struct bell){.a = a, .kind = 'c'};
    mapq_argv_init(&a->outbox);
    mapq_argv_init(&a->sending);
    a->plugins = mapq_plugin_host_new(cfg->self_dir);
    a->step_ev = evtimer_new(base, agent_step_ev_cb, a);
    a->defer_ev = evtimer_new(base, agent_defer_cb, a);
    a->promote_ev = evtimer_new(base, agent_promote_cb, a);
    a->step_retry_ev = evtimer_new(base, agent_step_ev_cb, a);
    a->spec_retry_ev = evtimer_new(base, spec_retry_cb, a);
    a->reserve_retry_ev = evtimer_new(base, reserve_retry_cb, a);
    a->register_retry_ev = evtimer_new(base, register_retry_cb, a);
    mapq_retry_init(&a->step_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    mapq_retry_init(&a->renew_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    mapq_retry_init(&a->reap_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    mapq_retry_init(&a->spec_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    mapq_retry_init(&a->reserve_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    mapq_retry_init(&a->register_retry, RETRY_MIN_MS, RETRY_MAX_MS);
    a->renew_ev = event_new(base, -1, EV_PERSIST, renew_tick, a);
    a->reap_ev = event_new(base, -1, EV_PERSIST, reap_tick, a);
    a->grace_ev = evtimer_new(base, agent_grace_cb, a);
    a->deadline_ev = evtimer_new(base, agent_deadline_cb, a);
    a->watch_ev = event_new(base, -1, EV_PERSIST, watch_cb, a);
    a->admit_ev = evtimer_new(base, admit_cb, a);
    init_resources(a);
    agent_ms_to_tv(UNREACHABLE_MS, &tv);
    event_add(a->watch_ev, &tv);
    /* Renewals also tell agents which executions ended, so running
     * subtasks of a failed or cancelled execution stop within a second. */
    agent_ms_to_tv(cfg->lease_ms / 3 < 1000 ? cfg->lease_ms / 3 : 1000, &tv);
    event_add(a->renew_ev, &tv);
    agent_ms_to_tv(cfg->lease_ms / 2, &tv);
    event_add(a->reap_ev, &tv);
    a->cmd = mapq_redis_new(base, &cfg->url, "agent", cmd_state_cb, a);
    mapq_redis_set_fault_cb(a->cmd, redis_fault_cb, a);
    mapq_redis_set_library_cb(a->cmd, redis_library_cb, a);
    a->bells[BELL_PLUGIN].conn =
        mapq_redis_new(base, &cfg->url, "agent-wait", blk_state_cb, a);
    a->bells[BELL_CMD].conn =
        mapq_redis_new(base, &cfg->url, "agent-waitc", blk_state_cb, a);
    if (cfg->metrics_addr != NULL) {
        a->metrics = agent_metrics_new(a, cfg->metrics_addr, err);
        if (a->metrics == NULL) {
            mapq_agent_free(a);
            return NULL;
        }
    }
    return a;
}

void
mapq_agent_free(struct mapq_agent *a)
{
    struct job *job;
    size_t q;

    if (a == NULL)
        return;
    /* The connections first: their pending requests are answered with no
     * reply now, while the jobs and specs they point to still exist; the
     * flags keep those callbacks from sending anything new. */
    a->stopping = a->leaving = true;
    mapq_redis_free(a->cmd);
    mapq_redis_free(a->bells[BELL_PLUGIN].conn);
    mapq_redis_free(a->bells[BELL_CMD].conn);
    agent_metrics_free(a->metrics);
    while ((job = TAILQ_FIRST(&a->jobs)) != NULL) {
        TAILQ_REMOVE(&a->jobs, job, entry);
        agent_job_free(job);
    }
    agent_workers_release(a);
    agent_specs_release(a);
    mapq_proc_forget(NULL);  /* the programs its commands were found at */
    mapq_xfer_free(a->xfer); /* after the jobs, which cancel their fetches */
    if (a->step_ev) {
        event_free(a->step_ev);
        event_free(a->defer_ev);
        event_free(a->promote_ev);
        event_free(a->step_retry_ev);
        event_free(a->spec_retry_ev);
        event_free(a->reserve_retry_ev);
        event_free(a->register_retry_ev);
        event_free(a->renew_ev);
        event_free(a->reap_ev);
        event_free(a->grace_ev);
        event_free(a->deadline_ev);
        event_free(a->watch_ev);
        event_free(a->admit_ev);
    }
    agent_res_release(&a->res);
    mapq_argv_release(&a->outbox);
    mapq_argv_release(&a->sending);
    mapq_plugin_host_free(a->plugins);
    /* After the jobs and workers, which hand their directories back. */
    mapq_workdirs_free(a->dirs);
    if (a->workroot != NULL)
        mapq_fs_rmtree(a->workroot);
    free(a->workroot);
    for (q = 0; q < a->cfg.nqueues; q++)
        free(a->queues[q]);
    free(a->queues);
    free(a->ns);
    free(a->name);
    free(a);
}
