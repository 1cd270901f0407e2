/*
 * cmd_agents.c - mapq agents: lists the agents that sent a heartbeat
 * lately (mapq_inspect.c reads them; nothing is written).
 */
#include <stdio.h>

#include "cli.h"
#include "mapq_inspect.h"

static int
cmd_agents(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    if (c == NULL)
        return MAPQ_EXIT_INFRA;
    rc = mapq_inspect_agents(c, o->ns, o->json, stdout, err);
    redisFree(c);
    if (rc != MAPQ_OK)
        fprintf(stderr, "mapq agents: %s\n", err);
    return rc == MAPQ_OK ? MAPQ_EXIT_OK : MAPQ_EXIT_INFRA;
}

const struct mapq_cmd_entry mapq_cmd_agents_entry = {
    .name = "agents",
    .usage = "agents [--json]",
    .operands = MAPQ_CMD_NONE,
    .fn = cmd_agents,
};
