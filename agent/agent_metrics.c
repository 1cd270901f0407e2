/*
 * agent_metrics.c - what an agent serves on --metrics: the subtasks it
 * claimed, how each of their attempts ended and how long it ran, its slots,
 * beside what every mapq process serves (mapq_observe.h).
 *
 * A leaf: the controller tells it of claims and of ends (job_leave()), and
 * it reads the agent's counts when scraped. Owns its mapq_observe.
 */
#include <stdlib.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_observe.h"
#include "mapq_taskspec.h"

struct agent_metrics {
    struct mapq_observe *obs;
    struct mapq_metric *claimed, *ended, *refused, *duration, *slots, *held,
        *draining;
};

/* How an attempt ended, as mapq_subtasks_total's outcome label (each
 * claimed subtask ends with exactly one; see docs/OPERATIONS.md). */
static const char *
outcome(const struct job *job, const struct job_end *end)
{
    switch (end->kind) {
    case 'T':
        switch (end->phase) {
        case MAPQ_PHASE_SUCCEEDED:
            return "succeeded";
        case MAPQ_PHASE_CACHED:
            return "cached";
        case MAPQ_PHASE_TIMED_OUT:
            return "timed_out";
        case MAPQ_PHASE_ABORTED:
            return "aborted";
        default:
            return "failed";
        }
    case 'U':
    case 'S':
        return "retried";
    case 'I':
        return "interrupted";
    case 'R':
        return "handed_back";
    default:
        /* Nothing recorded: its execution ended, or its lease was lost
         * (another agent may run it). */
        return job_stopped(job) ? "aborted" : "lost";
    }
}

static void
scrape_cb(struct mapq_metrics *m, void *arg)
{
    struct mapq_agent *a = arg;
    const char *busy[] = {"busy"}, *total[] = {"total"};
    const char *running[] = {"running"}, *starting[] = {"starting"},
               *prefetched[] = {"prefetched"};

    (void)m;
    mapq_metrics_set(a->metrics->slots, busy, a->running_cmds + a->waiting);
    mapq_metrics_set(a->metrics->slots, total, a->cfg.slots);
    mapq_metrics_set(a->metrics->held, running, a->running_cmds);
    mapq_metrics_set(a->metrics->held, starting, a->waiting);
    mapq_metrics_set(a->metrics->held, prefetched, a->queued);
    mapq_metrics_set(a->metrics->draining, NULL, a->stopping);
}

/* The agent's own queues. */
static size_t
queues_cb(const char **out, size_t max, void *arg)
{
    const struct mapq_agent *a = arg;
    size_t k;

    for (k = 0; k < a->cfg.nqueues && k < max; k++)
        out[k] = a->queues[k];
    return k;
}

struct agent_metrics *
agent_metrics_new(struct mapq_agent *a, const char *addr, char *err)
{
    static const char *const by_outcome[] = {"outcome", "node", "queue", NULL};
    static const char *const by_node[] = {"node", "queue", NULL};
    static const char *const by_state[] = {"state", NULL};
    static const double buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1,  0.25,
                                     0.5,   1,    2.5,   5,    10,   30,
                                     60,    300,  900,   1800, 3600, 14400};
    struct mapq_observe *obs = mapq_observe_new(a->base, addr, "agent", err);
    struct agent_metrics *am;
    struct mapq_metrics *m;

    if (obs == NULL)
        return NULL;
    am = mapq_xcalloc(1, sizeof(*am));
    am->obs = obs;
    m = mapq_observe_registry(obs);
    am->claimed = mapq_metrics_declare(
        m, "mapq_subtasks_claimed_total",
        "Subtasks this agent claimed (to run now or prefetched).",
        MAPQ_METRIC_COUNTER, by_node, NULL, 0);
    am->ended = mapq_metrics_declare(
        m, "mapq_subtasks_total",
        "Attempts this agent ended, by how: succeeded, cached, failed, "
        "timed_out, retried, interrupted, aborted, handed_back, lost.",
        MAPQ_METRIC_COUNTER, by_outcome, NULL, 0);
    am->refused = mapq_metrics_declare(
        m, "mapq_results_refused_total",
        "Results of attempts that ended here which Redis refused: the "
        "attempt no longer held its lease (another attempt owns the "
        "subtask, or a batch sent again was recorded the first time).",
        MAPQ_METRIC_COUNTER, NULL, NULL, 0);
    mapq_metrics_add(am->refused, NULL, 0); /* served as 0 from the start */
    am->duration = mapq_metrics_declare(
        m, "mapq_subtask_duration_seconds",
        "How long the attempts that ran took, from start to end.",
        MAPQ_METRIC_HISTOGRAM, by_node, buckets,
        sizeof(buckets) / sizeof(buckets[0]));
    am->slots =
        mapq_metrics_declare(m, "mapq_slots",
                             "This agent's slots: busy (running or starting a "
                             "subtask) and total (--slots).",
                             MAPQ_METRIC_GAUGE, by_state, NULL, 0);
    am->held = mapq_metrics_declare(
        m, "mapq_agent_subtasks",
        "Subtasks this agent holds: running, starting (waiting for their "
        "task or cache reservation) and prefetched.",
        MAPQ_METRIC_GAUGE, by_state, NULL, 0);
    am->draining = mapq_metrics_declare(
        m, "mapq_agent_draining", "1 once the agent stops claiming and drains.",
        MAPQ_METRIC_GAUGE, NULL, NULL, 0);
    mapq_observe_set_scrape_cb(obs, scrape_cb, a);
    mapq_observe_redis(obs, a->cmd, a->ns, 0, queues_cb, a);
    return am;
}

void
agent_metrics_free(struct agent_metrics *am)
{
    if (am == NULL)
        return;
    mapq_observe_free(am->obs);
    free(am);
}

/* The node label of job: "_unknown" while its spec is not read. */
static const char *
node_of(const struct job *job)
{
    const struct mapq_taskspec *spec = job->spec ? job->spec->spec : NULL;

    return spec != NULL ? spec->node : "_unknown";
}

void
agent_metrics_claimed(struct agent_metrics *am, struct job *job)
{
    const char *labels[] = {node_of(job), job->r.queue};

    if (am == NULL || job->claim_counted)
        return;
    job->claim_counted = true;
    mapq_metrics_add(am->claimed, labels, 1);
}

void
agent_metrics_ended(struct agent_metrics *am, struct job *job,
                    const struct job_end *end)
{
    const char *labels[] = {outcome(job, end), node_of(job), job->r.queue};
    int64_t ms;

    if (am == NULL)
        return;
    agent_metrics_claimed(am, job);
    mapq_metrics_add(am->ended, labels, 1);
    if (!job_running(job) || end->kind == 'R')
        return;
    ms = job->res ? job->res->duration_ms : agent_now_ms() - job->started_ms;
    mapq_metrics_observe(am->duration, labels + 1, (double)ms / 1000.0);
}

void
agent_metrics_refused(struct agent_metrics *am, int n)
{
    if (am != NULL && n > 0)
        mapq_metrics_add(am->refused, NULL, n);
}
