/*
 * bench_exec.c - one timed map execution for mapq-bench (bench_exec.h).
 *
 * Owns only the execution's transient workflow and inputs; the loop,
 * connection and driver are its caller's.
 */
#include "bench_exec.h"

#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mapq_buf.h"
#include "mapq_value.h"
#include "mapq_workflow.h"

double
bench_now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double
bench_info_field(const char *info, const char *name)
{
    size_t len = strlen(name);
    const char *p = info;

    while ((p = strstr(p, name)) != NULL) {
        if ((p == info || p[-1] == '\n') && p[len] == ':')
            return strtod(p + len + 1, NULL);
        p += len;
    }
    return 0;
}

long long
bench_redis_integer(redisContext *c, const char *fmt, const char *a,
                    const char *b)
{
    redisReply *r = redisCommand(c, fmt, a, b);
    long long v = -1;

    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        v = r->integer;
    if (r != NULL)
        freeReplyObject(r);
    return v;
}

/* mapq_driver_on_idle(): the ended execution's records are written. */
static void
settled_cb(void *arg)
{
    struct bench_exec *e = arg;

    e->settled = true;
    event_base_loopbreak(e->base);
}

void
bench_exec_attach(struct bench_exec *e)
{
    mapq_driver_on_idle(e->driver, settled_cb, e);
}

static void
exec_done(const struct mapq_exec_outcome *out, void *arg)
{
    struct bench_exec *e = arg;

    e->t_end = bench_now_s();
    e->ended = true;
    e->succeeded = out->succeeded;
    if (!out->succeeded)
        snprintf(e->error, sizeof(e->error), "%s", out->error);
    event_base_loopbreak(e->base);
}

/* Inputs {xs: [0, 1, ..., n-1]} as msgpack. */
static void
range_inputs(long n, struct mapq_buf *out)
{
    msgpack_packer pk;
    long i;

    mapq_buf_reset(out);
    mapq_value_packer_init(&pk, out);
    msgpack_pack_map(&pk, 1);
    mapq_value_pack_str(&pk, "xs");
    msgpack_pack_array(&pk, (uint32_t)n);
    for (i = 0; i < n; i++)
        msgpack_pack_int64(&pk, i);
}

int
bench_exec_run(struct bench_exec *e, const char *yaml, const char *file, long n,
               double *secs, char id[MAPQ_EXEC_ID_LEN + 1])
{
    struct mapq_buf errors = MAPQ_BUF_INIT, inputs = MAPQ_BUF_INIT;
    struct mapq_workflow *wf;
    char err[MAPQ_ERR_LEN];
    double t0;
    int rc = -1;

    wf = mapq_workflow_parse(yaml, strlen(yaml), file, &errors);
    if (wf == NULL) {
        fprintf(stderr, "mapq-bench: %.*s", (int)errors.len, errors.data);
        goto out;
    }
    range_inputs(n, &inputs);
    e->ended = false;
    e->settled = false;
    t0 = bench_now_s();
    id[0] = '\0'; /* a new one */
    if (mapq_exec_create(e->c, e->ns, wf, yaml, strlen(yaml), &inputs, NULL, id,
                         err) != MAPQ_OK) {
        fprintf(stderr, "mapq-bench: cannot create an execution: %s\n", err);
        goto out;
    }
    mapq_driver_add(e->driver, id, wf, &inputs, NULL, exec_done, e);
    wf = NULL; /* owned by the driver */
    while (!e->ended)
        event_base_dispatch(e->base);
    *secs = e->t_end - t0;
    while (!e->settled)
        event_base_dispatch(e->base);
    if (!e->succeeded) {
        fprintf(stderr, "mapq-bench: execution %s failed: %s\n", id, e->error);
        goto out;
    }
    rc = 0;
out:
    mapq_workflow_free(wf);
    mapq_buf_release(&inputs);
    mapq_buf_release(&errors);
    return rc;
}
