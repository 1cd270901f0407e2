/*
 * bench_fleet.h - the fleet figures of mapq-bench (--fleet): many real
 * agents on one private Redis.
 *
 * For each configuration (agents x slots) it starts a private redis-server
 * and that many local agents (local mode), drives one map of short
 * commands (`sleep`) in-process with the scheduler's driver, and prints
 * the wall time beside the ideal (subtasks x sleep / total slots), the
 * Redis CPU and commands per subtask and the subtasks/s one Redis core
 * could serve at that cost. Then it starts idle agents alone and prints
 * the share of a Redis core they cost. Everything it starts it stops
 * before returning. It always runs its own Redis: there is no --redis
 * form, since it must choose the agents.
 */
#ifndef MAPQ_BENCH_FLEET_H
#define MAPQ_BENCH_FLEET_H

struct bench_fleet_opts {
    const char *ns;      /* key namespace; borrowed */
    const char *shapes;  /* "AxS,AxS,...": agents x slots per configuration
                            (at most 8); borrowed */
    long subtasks;       /* subtasks of each map */
    int sleep_ms;        /* what each subtask sleeps */
    int idle_agents;     /* agents of the idle figure; 0: skip it */
    int idle_settle_ms;  /* wait after they registered, before measuring */
    int idle_measure_ms; /* span the idle Redis CPU is measured over */
};

/* Fills o with the defaults: 16x8,64x1; 2,000 x 50 ms; 100 idle agents
 * settled 3 s and measured 5 s. */
void bench_fleet_opts_init(struct bench_fleet_opts *o);

/*
 * Runs every configuration of o (borrowed), then the idle figure, and
 * prints the figures on stdout, progress on stderr. Returns 0, or 1 with
 * the reason printed on stderr (bad shapes, a process limit too low, a
 * local Redis or agent that did not start, an execution that failed or
 * recorded fewer results than subtasks). Blocks until done; call it
 * outside any event loop.
 */
int bench_fleet_run(const struct bench_fleet_opts *o);

#endif
