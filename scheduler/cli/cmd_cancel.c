/*
 * cmd_cancel.c - mapq cancel EXEC: cancels an execution through
 * mapq1_cancel on a blocking connection; its driver ends it. With --json,
 * {"execution", "cancelled", "status"} on stdout (docs/JSON.md).
 */
#include <stdio.h>

#include "cli.h"

/* --json: whether this call cancelled execution o->target, and the state
 * its record holds now. */
static int
print_cancelled(redisContext *c, const struct mapq_cli_opts *o, bool done)
{
    redisReply *st = mapq_cli_hget(c, o, "state");
    json_t *doc = json_object();

    json_object_set_new(doc, "execution", mapq_cli_json_str(o->target));
    json_object_set_new(doc, "cancelled", json_boolean(done));
    json_object_set_new(doc, "status",
                        st != NULL && st->type == REDIS_REPLY_STRING
                            ? mapq_cli_json_text(st->str, st->len)
                            : json_null());
    if (st != NULL)
        freeReplyObject(st);
    return mapq_cli_print_json(doc);
}

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
        else if (!o->quiet && !o->json)
            fprintf(stderr, "mapq: execution %s cancelled\n", o->target);
        rc = o->json ? print_cancelled(c, o, r->integer == 1) : MAPQ_EXIT_OK;
    }
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

const struct mapq_cmd_entry mapq_cmd_cancel_entry = {
    .name = "cancel",
    .usage = "cancel EXEC [--json]",
    .operands = MAPQ_CMD_EXEC,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_cancel,
};
