/*
 * agent_resources.c - what an agent has for command subtasks (--cpus,
 * --mem) and what the running ones declared (resources: {cpu, mem}): the
 * admission check, the CPUs a subtask is pinned to, and the question to
 * Redis whether any live agent could take a task that never fits here.
 *
 * Owns struct agent_res's arrays and its one kind of request (mapq1_fits);
 * the answer is noted in the task's spec entry, which the controller reads
 * when it next meets a subtask of that task. The counting is pure and has
 * no Redis.
 */
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_log.h"
#include "mapq_taskspec.h"
#include "mapq_units.h"

int
agent_res_cpus_allowed(int *ids, int max)
{
    cpu_set_t set;
    int i, n = 0;

    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return 0;
    for (i = 0; i < CPU_SETSIZE && n < max; i++)
        if (CPU_ISSET(i, &set))
            ids[n++] = i;
    return n;
}

void
agent_res_init(struct agent_res *r, int64_t cpu_milli, int64_t mem_bytes,
               const int *allowed, int nallowed)
{
    int whole = (int)((cpu_milli + 999) / 1000);

    memset(r, 0, sizeof(*r));
    r->cpu_milli = cpu_milli;
    r->mem_bytes = mem_bytes;
    /* Pinning bounds a subtask only when the agent's CPUs are real ones
     * it may use; an agent told it has more than that only counts. */
    if (whole <= 0 || whole > nallowed)
        return;
    r->npool = whole;
    r->pool = mapq_xcalloc((size_t)whole, sizeof(*r->pool));
    r->load = mapq_xcalloc((size_t)whole, sizeof(*r->load));
    memcpy(r->pool, allowed, (size_t)whole * sizeof(*r->pool));
}

void
agent_res_release(struct agent_res *r)
{
    free(r->pool);
    free(r->load);
    memset(r, 0, sizeof(*r));
}

bool
agent_res_fits(const struct agent_res *r, int64_t cpu_milli, int64_t mem_bytes)
{
    return r->cpu_used + cpu_milli <= r->cpu_milli &&
           r->mem_used + mem_bytes <= r->mem_bytes;
}

bool
agent_res_ever_fits(const struct agent_res *r, int64_t cpu_milli,
                    int64_t mem_bytes)
{
    return cpu_milli <= r->cpu_milli && mem_bytes <= r->mem_bytes;
}

void
agent_res_take(struct agent_res *r, int64_t cpu_milli, int64_t mem_bytes,
               struct job_res *jr)
{
    int want, i, j, best;

    mapq_assert(jr->cpus == NULL);
    jr->cpu_milli = cpu_milli;
    jr->mem_bytes = mem_bytes;
    r->cpu_used += cpu_milli;
    r->mem_used += mem_bytes;
    if (cpu_milli <= 0 || r->npool == 0)
        return;
    want = (int)((cpu_milli + 999) / 1000);
    if (want > r->npool)
        want = r->npool;
    jr->cpus = mapq_xcalloc((size_t)want, sizeof(*jr->cpus));
    /* The least loaded CPUs of the pool, lowest first on a tie: exclusive
     * while the declared CPUs are whole and fit, shared fairly when not. */
    for (i = 0; i < want; i++) {
        best = -1;
        for (j = 0; j < r->npool; j++) {
            bool taken = false;
            int m;

            for (m = 0; m < i; m++)
                taken = taken || jr->cpus[m] == j;
            if (!taken && (best < 0 || r->load[j] < r->load[best]))
                best = j;
        }
        jr->cpus[i] = best;
        r->load[best]++;
    }
    jr->ncpus = want;
    /* The pool's positions become CPU ids only now: the loop compared
     * positions. */
    for (i = 0; i < want; i++)
        jr->cpus[i] = r->pool[jr->cpus[i]];
}

void
agent_res_give(struct agent_res *r, struct job_res *jr)
{
    int i, j;

    r->cpu_used -= jr->cpu_milli;
    r->mem_used -= jr->mem_bytes;
    for (i = 0; i < jr->ncpus; i++)
        for (j = 0; j < r->npool; j++)
            if (r->pool[j] == jr->cpus[i] && r->load[j] > 0) {
                r->load[j]--;
                break;
            }
    free(jr->cpus);
    memset(jr, 0, sizeof(*jr));
}

/* "cpu: 4, mem: 8 GiB", what a task declared, for messages. */
static void
declared_text(const struct mapq_taskspec *s, char *buf, size_t len)
{
    char mem[32];

    mapq_size_format(s->mem_bytes, mem, sizeof(mem));
    if (s->cpu_milli > 0 && s->mem_bytes > 0)
        snprintf(buf, len, "cpu: %g, mem: %s", (double)s->cpu_milli / 1000,
                 mem);
    else if (s->cpu_milli > 0)
        snprintf(buf, len, "cpu: %g", (double)s->cpu_milli / 1000);
    else
        snprintf(buf, len, "mem: %s", mem);
}

/* Whether reply is mapq1_fits's: an array of four integers. */
static bool
fits_reply(const redisReply *reply)
{
    size_t i;

    if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != 4)
        return false;
    for (i = 0; i < 4; i++)
        if (reply->element[i]->type != REDIS_REPLY_INTEGER)
            return false;
    return true;
}

static void
fits_cb(redisReply *reply, const char *why, void *arg)
{
    struct spec_entry *e = arg;
    const struct mapq_taskspec *s = e->spec;
    char want[96], mem[32];

    e->fit_asking = false;
    if (!fits_reply(reply)) {
        /* Asked again at the next subtask that does not fit; no reply at
         * all is a connection going down, said elsewhere. */
        if (reply != NULL)
            mapq_log(MAPQ_LOG_WARN, "FCALL mapq1_fits: %s",
                     agent_failure_text(reply, why));
        return;
    }
    e->unfit[0] = '\0';
    /* No live agent serves the queue yet (heartbeats come once a second,
     * the first a second after start): no verdict, ask again. */
    e->fit_checked_ms = reply->element[0]->integer > 0 ? agent_now_ms() : 0;
    if (reply->element[0]->integer == 0 || reply->element[1]->integer > 0 ||
        s == NULL)
        return;
    declared_text(s, want, sizeof(want));
    mapq_size_format(reply->element[3]->integer, mem, sizeof(mem));
    snprintf(e->unfit, sizeof(e->unfit),
             "resources {%s} fit no live agent of queue '%s' (%lld serve "
             "it; the largest has %g CPUs and %s)",
             want, s->queue, (long long)reply->element[0]->integer,
             (double)reply->element[2]->integer / 1000, mem);
}

void
agent_res_ask(struct mapq_agent *a, struct spec_entry *e)
{
    const struct mapq_taskspec *s = e->spec;
    char want[96], mem[32];
    struct mapq_argv cmd;

    if (e->fit_asking || s == NULL)
        return;
    declared_text(s, want, sizeof(want));
    mapq_size_format(a->res.mem_bytes, mem, sizeof(mem));
    mapq_log(MAPQ_LOG_WARN,
             "task %s (node %s) declares resources {%s}: more than this "
             "agent has (--cpus %g, --mem %s); left for a larger agent",
             s->task, s->node, want, (double)a->res.cpu_milli / 1000, mem);
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_fits");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, a->ns);
    mapq_argv_add(&cmd, s->queue);
    mapq_argv_add(&cmd, s->interruptible ? "1" : "0");
    mapq_argv_addf(&cmd, "%lld", (long long)s->cpu_milli);
    mapq_argv_addf(&cmd, "%lld", (long long)s->mem_bytes);
    mapq_argv_addf(&cmd, "%d", MAPQ_AGENT_LIVE_MS);
    e->fit_asking = true;
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, fits_cb, e, cmd.argc, cmd.argv,
                       cmd.lens);
    mapq_argv_release(&cmd);
}
