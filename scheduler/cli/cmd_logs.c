/*
 * cmd_logs.c - mapq logs EXEC NODE [INDEX]: prints the logged attempts of
 * a node's subtasks (mapq_inspect.c reads them; nothing is written).
 */
#include <stdio.h>

#include "cli.h"
#include "mapq_inspect.h"

static enum mapq_err
read_logs(redisContext *c, const struct mapq_cli_opts *o, char *err)
{
    return mapq_inspect_logs(c, o->ns, o->target, o->node, o->index, o->json,
                             stdout, err);
}

static int
cmd_logs(struct mapq_cli_opts *o)
{
    enum mapq_err rc = mapq_cli_read(o, read_logs);

    return rc == MAPQ_OK       ? MAPQ_EXIT_OK
           : rc == MAPQ_EINVAL ? MAPQ_EXIT_FAILED
                               : MAPQ_EXIT_INFRA;
}

const struct mapq_cmd_entry mapq_cmd_logs_entry = {
    .name = "logs",
    .usage = "logs EXEC NODE [INDEX] [--json]",
    .operands = MAPQ_CMD_LOGS,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_logs,
};
