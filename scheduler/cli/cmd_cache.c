/*
 * cmd_cache.c - mapq cache ls|rm|clear: lists or removes cache entries
 * (mapq_cache.c does the SCANs and removals) and says how many went;
 * with --json, ls prints a JSON array and rm and clear {"removed": N}.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mapq_cache.h"

static int
cmd_cache(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;
    size_t removed = 0;

    if (c == NULL)
        return MAPQ_EXIT_INFRA;
    if (strcmp(o->target, "ls") == 0)
        rc = mapq_cache_ls(c, o->ns, o->task, o->json, stdout, err);
    else if (strcmp(o->target, "rm") == 0)
        rc = mapq_cache_rm(c, o->ns, o->task, o->keys, o->nkeys, &removed, err);
    else
        rc = mapq_cache_clear(c, o->ns, o->task, &removed, err);
    redisFree(c);
    if (rc != MAPQ_OK) {
        fprintf(stderr, "mapq cache %s: %s\n", o->target, err);
        return rc == MAPQ_EINVAL ? MAPQ_EXIT_USAGE : MAPQ_EXIT_INFRA;
    }
    if (strcmp(o->target, "ls") == 0)
        return MAPQ_EXIT_OK;
    if (o->json) {
        json_t *doc = json_object();

        json_object_set_new(doc, "removed", json_integer((json_int_t)removed));
        return mapq_cli_print_json(doc);
    }
    if (!o->quiet)
        printf("removed %zu cache entr%s\n", removed,
               removed == 1 ? "y" : "ies");
    return MAPQ_EXIT_OK;
}

const struct mapq_cmd_entry mapq_cmd_cache_entry = {
    .name = "cache",
    .usage = "cache ls|clear [--task NAME] [--json]\n"
             "       mapq cache rm KEY... [--task NAME] [--json]",
    .operands = MAPQ_CMD_CACHE,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_cache,
};
