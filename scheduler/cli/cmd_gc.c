/*
 * cmd_gc.c - mapq gc: reclaims now, rather than at a scheduler's next
 * sweeps, every blob of the embedded store that nothing holds any more
 * (mapq1_blob_sweep over all of P:bx; docs/ARCHITECTURE.md, "Garbage
 * collection"), and says how many went and how many bytes they freed;
 * with --json, {"checked": N, "reclaimed": N, "bytes": N}.
 */
#include <stdio.h>

#include "cli.h"

#define GC_BATCH 500 /* blobs looked at per call */

/* One mapq1_blob_sweep from rank *start; adds to sums (looked at,
 * deleted, bytes) and moves *start on (-1 once the end is reached). */
static int
sweep_once(redisContext *c, const char *ns, long long *start, long long sums[3])
{
    redisReply *r = redisCommand(c, "FCALL mapq1_blob_sweep 0 %s 1 %lld %d", ns,
                                 *start, GC_BATCH);
    int rc = MAPQ_EXIT_INFRA;
    size_t i;

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        fprintf(stderr, "mapq gc: %s\n",
                r && r->str ? r->str
                : r         ? "unexpected reply"
                            : c->errstr);
        goto out;
    }
    for (i = 0; i < 4; i++)
        if (r->element[i]->type != REDIS_REPLY_INTEGER) {
            fprintf(stderr, "mapq gc: unexpected reply\n");
            goto out;
        }
    for (i = 0; i < 3; i++)
        sums[i] += r->element[i]->integer;
    *start = r->element[3]->integer;
    rc = MAPQ_EXIT_OK;
out:
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

static int
cmd_gc(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);
    long long start = 0, sums[3] = {0, 0, 0};
    int rc;

    if (c == NULL)
        return MAPQ_EXIT_INFRA;
    do
        rc = sweep_once(c, o->ns, &start, sums);
    while (rc == MAPQ_EXIT_OK && start >= 0);
    redisFree(c);
    if (rc != MAPQ_EXIT_OK)
        return rc;
    if (o->json) {
        json_t *doc = json_object();

        json_object_set_new(doc, "checked", json_integer(sums[0]));
        json_object_set_new(doc, "reclaimed", json_integer(sums[1]));
        json_object_set_new(doc, "bytes", json_integer(sums[2]));
        return mapq_cli_print_json(doc);
    }
    if (!o->quiet)
        printf("checked %lld blob%s, reclaimed %lld (%lld bytes)\n", sums[0],
               sums[0] == 1 ? "" : "s", sums[1], sums[2]);
    return MAPQ_EXIT_OK;
}

const struct mapq_cmd_entry mapq_cmd_gc_entry = {
    .name = "gc",
    .usage = "gc [--json]",
    .operands = MAPQ_CMD_NONE,
    .flags = MAPQ_CMD_USAGE_SAME_LINE | MAPQ_CMD_JSON,
    .fn = cmd_gc,
};
