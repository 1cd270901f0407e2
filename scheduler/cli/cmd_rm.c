/*
 * cmd_rm.c - mapq rm EXEC: deletes an ended execution and everything it
 * left in Redis (mapq1_rm), before its retention would. A running one is
 * refused: cancel it first.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mapq_json.h"

static int
cmd_rm(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);
    redisReply *r;
    int rc = MAPQ_EXIT_INFRA;

    if (c == NULL)
        return MAPQ_EXIT_INFRA;
    r = redisCommand(c, "FCALL mapq1_rm 0 %s %s", o->ns, o->target);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER) {
        fprintf(stderr, "mapq rm: %s\n", r && r->str ? r->str : c->errstr);
    } else if (r->integer == -1) {
        fprintf(stderr, "mapq: no execution '%s'\n", o->target);
        rc = MAPQ_EXIT_FAILED;
    } else if (r->integer == -2) {
        fprintf(stderr,
                "mapq: execution %s has not ended: cancel it first (mapq "
                "cancel %s)\n",
                o->target, o->target);
        rc = MAPQ_EXIT_FAILED;
    } else {
        if (o->json) {
            struct mapq_buf out = MAPQ_BUF_INIT;

            mapq_buf_appendstr(&out, "{\"execution\":");
            mapq_json_append_text(&out, o->target, strlen(o->target));
            mapq_buf_appendstr(&out, ",\"removed\":true}\n");
            fputs(out.data, stdout);
            mapq_buf_release(&out);
        } else if (!o->quiet)
            fprintf(stderr, "mapq: execution %s removed\n", o->target);
        rc = MAPQ_EXIT_OK;
    }
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

const struct mapq_cmd_entry mapq_cmd_rm_entry = {
    .name = "rm",
    .usage = "rm EXEC [--json]",
    .operands = MAPQ_CMD_EXEC,
    .flags = MAPQ_CMD_USAGE_SAME_LINE | MAPQ_CMD_JSON,
    .fn = cmd_rm,
};
