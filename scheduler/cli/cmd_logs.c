/*
 * cmd_logs.c - mapq logs EXEC NODE [INDEX]: prints the logged attempts of
 * a node's subtasks (mapq_inspect.c reads them; nothing is written).
 */
#include <stdio.h>

#include "cli.h"
#include "mapq_inspect.h"

static int
cmd_logs(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    if (c == NULL)
        return MAPQ_EXIT_INFRA;
    rc = mapq_inspect_logs(c, o->ns, o->target, o->node, o->index, o->json,
                           stdout, err);
    redisFree(c);
    if (rc != MAPQ_OK)
        fprintf(stderr, "mapq logs: %s\n", err);
    return rc == MAPQ_OK       ? MAPQ_EXIT_OK
           : rc == MAPQ_EINVAL ? MAPQ_EXIT_FAILED
                               : MAPQ_EXIT_INFRA;
}

const struct mapq_cmd_entry mapq_cmd_logs_entry = {
    .name = "logs",
    .usage = "logs EXEC NODE [INDEX] [--json]",
    .operands = MAPQ_CMD_LOGS,
    .fn = cmd_logs,
};
