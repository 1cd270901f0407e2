/*
 * cmd_logs.c - mapq logs EXEC NODE [INDEX]: prints the logged attempts of
 * a node's subtasks (mapq_inspect.c reads them; nothing is written); with
 * -f, follows one subtask's stderr live (mapq_follow.c) until Ctrl-C or
 * its end.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mapq_follow.h"
#include "mapq_inspect.h"

static volatile sig_atomic_t interrupted;

static void
on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static enum mapq_err
follow_logs(redisContext *c, const struct mapq_cli_opts *o, char *err)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    return mapq_follow(c, o->ns, o->target, o->node, o->index, &interrupted,
                       stdout, err);
}

static enum mapq_err
read_logs(redisContext *c, const struct mapq_cli_opts *o, char *err)
{
    return mapq_inspect_logs(c, o->ns, o->target, o->node, o->index, o->json,
                             stdout, err);
}

static int
cmd_logs(struct mapq_cli_opts *o)
{
    enum mapq_err rc = mapq_cli_read(o, o->follow ? follow_logs : read_logs);

    if (rc == MAPQ_OK && interrupted)
        return MAPQ_EXIT_CANCELLED;
    return rc == MAPQ_OK       ? MAPQ_EXIT_OK
           : rc == MAPQ_EINVAL ? MAPQ_EXIT_FAILED
                               : MAPQ_EXIT_INFRA;
}

const struct mapq_cmd_entry mapq_cmd_logs_entry = {
    .name = "logs",
    .usage =
        "logs EXEC NODE [INDEX] [--json]      mapq logs -f EXEC NODE INDEX",
    .operands = MAPQ_CMD_LOGS,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_logs,
};
