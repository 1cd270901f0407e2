/*
 * bench_exec.h - what the figures of mapq-bench share: running one map
 * execution in-process with the scheduler's driver and timing it, the
 * clock, reading INFO fields and integer replies.
 *
 * A struct bench_exec borrows its loop, connection and driver from its
 * owner (mapq_bench.c, bench_fleet.c), which attaches it to the driver
 * once with bench_exec_attach() before the first run.
 */
#ifndef MAPQ_BENCH_EXEC_H
#define MAPQ_BENCH_EXEC_H

#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdbool.h>

#include "mapq_driver.h"
#include "mapq_proto.h"

struct bench_exec {
    struct event_base *base;    /* borrowed */
    redisContext *c;            /* borrowed: creates the executions */
    struct mapq_driver *driver; /* borrowed: drives them */
    const char *ns;             /* borrowed */
    bool ended, succeeded;
    bool settled; /* the driver's last writes are acknowledged */
    char error[512];
    double t_end;
};

/* Seconds on the monotonic clock. */
double bench_now_s(void);

/* Value of "name:" at the start of a line of an INFO reply, or 0. */
double bench_info_field(const char *info, const char *name);

/* Integer reply of a command with up to two string arguments (fmt, a,
 * b: b may be NULL when fmt takes one), or -1. */
long long bench_redis_integer(redisContext *c, const char *fmt, const char *a,
                              const char *b);

/* Tells e when the driver's writes are acknowledged (mapq_driver_on_idle):
 * once, before the first bench_exec_run(). */
void bench_exec_attach(struct bench_exec *e);

/*
 * Creates and drives one execution of yaml (file: its name in messages)
 * over the inputs {xs: [0, ..., n-1]}, until its records are written.
 * Writes the seconds from creation to the assembled output into secs and
 * the id into id. Returns 0, or -1 with the reason printed (the workflow
 * does not parse, the execution cannot be created, or it failed).
 */
int bench_exec_run(struct bench_exec *e, const char *yaml, const char *file,
                   long n, double *secs, char id[MAPQ_EXEC_ID_LEN + 1]);

#endif
