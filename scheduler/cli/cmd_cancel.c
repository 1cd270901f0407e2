/*
 * cmd_cancel.c - mapq cancel EXEC: cancels an execution through
 * mapq1_cancel on a blocking connection; its driver ends it.
 */
#include <stdio.h>

#include "cli.h"

static int
cmd_cancel(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);
    redisReply *r;
    int rc = MAPQ_EXIT_INFRA;

    if (c == NULL)
        return MAPQ_EXIT_INFRA;
    r = redisCommand(c, "FCALL mapq1_cancel 0 %s %s", o->ns, o->target);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        fprintf(stderr, "mapq cancel: %s\n", r && r->str ? r->str : c->errstr);
    } else if (r->integer < 0) {
        fprintf(stderr, "mapq: no execution '%s'\n", o->target);
        rc = MAPQ_EXIT_FAILED;
    } else {
        if (r->integer == 0)
            fprintf(stderr, "mapq: execution %s had already ended\n",
                    o->target);
        else if (!o->quiet)
            fprintf(stderr, "mapq: execution %s cancelled\n", o->target);
        rc = MAPQ_EXIT_OK;
    }
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

const struct mapq_cmd_entry mapq_cmd_cancel_entry = {
    .name = "cancel",
    .usage = "cancel EXEC",
    .operands = MAPQ_CMD_EXEC,
    .fn = cmd_cancel,
};
