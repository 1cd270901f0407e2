/*
 * cmd_agents.c - mapq agents: lists the agents that sent a heartbeat
 * lately (mapq_inspect.c reads them; nothing is written).
 */
#include <stdio.h>

#include "cli.h"
#include "mapq_inspect.h"

static enum mapq_err
read_agents(redisContext *c, const struct mapq_cli_opts *o, char *err)
{
    return mapq_inspect_agents(c, o->ns, o->json, stdout, err);
}

static int
cmd_agents(struct mapq_cli_opts *o)
{
    return mapq_cli_read(o, read_agents) == MAPQ_OK ? MAPQ_EXIT_OK
                                                    : MAPQ_EXIT_INFRA;
}

const struct mapq_cmd_entry mapq_cmd_agents_entry = {
    .name = "agents",
    .usage = "agents [--json]",
    .operands = MAPQ_CMD_NONE,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_agents,
};
