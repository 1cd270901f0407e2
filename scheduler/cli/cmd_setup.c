/*
 * cmd_setup.c - mapq setup: the operator's step that puts this release's
 * function library in Redis (loaded when there is none, replacing an older
 * revision), so that agents and schedulers can run as ACL users without
 * FUNCTION (docs/OPERATIONS.md, "Redis users"). A newer revision is kept.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mapq_redis.h"

/* The revision Redis holds (mapq1_version), or -1 with why on stderr. */
static long long
held_revision(redisContext *c)
{
    redisReply *r = redisCommand(c, "FCALL_RO mapq1_version 0");
    long long rev = -1;

    if (r != NULL && r->type == REDIS_REPLY_INTEGER)
        rev = r->integer;
    else
        fprintf(stderr, "mapq setup: FCALL_RO mapq1_version: %s\n",
                r != NULL && r->str != NULL ? r->str : c->errstr);
    if (r != NULL)
        freeReplyObject(r);
    return rev;
}

static int
cmd_setup(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);
    const char *action = "kept";
    redisReply *r = NULL;
    long long rev;
    int rc = MAPQ_EXIT_INFRA;

    /* Connecting loaded the library if Redis held none. */
    if (c == NULL)
        return MAPQ_EXIT_INFRA;
    rev = held_revision(c);
    if (rev < 0)
        goto out;
    if (rev < MAPQ_FUNCTIONS_REVISION) {
        r = redisCommand(c, "FUNCTION LOAD REPLACE %b", mapq_functions_lua,
                         mapq_functions_lua_len);
        if (r == NULL || r->type == REDIS_REPLY_ERROR) {
            fprintf(stderr,
                    "mapq setup: cannot replace revision %lld of the mapq%d "
                    "functions: %s\n",
                    rev, MAPQ_PROTOCOL,
                    r != NULL && r->str != NULL ? r->str : c->errstr);
            goto out;
        }
        action = "replaced";
        rev = MAPQ_FUNCTIONS_REVISION;
    } else if (rev > MAPQ_FUNCTIONS_REVISION) {
        action = "newer";
    }
    if (o->json)
        printf("{\"protocol\":%d,\"revision\":%lld,\"action\":\"%s\"}\n",
               MAPQ_PROTOCOL, rev, action);
    else if (!o->quiet)
        fprintf(stderr,
                "mapq: redis holds revision %lld of the mapq%d functions%s\n",
                rev, MAPQ_PROTOCOL,
                strcmp(action, "replaced") == 0 ? " (replaced an older one)"
                : strcmp(action, "newer") == 0  ? " (newer than this release's)"
                                                : "");
    rc = MAPQ_EXIT_OK;
out:
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

const struct mapq_cmd_entry mapq_cmd_setup_entry = {
    .name = "setup",
    .usage = "setup [--json]",
    .operands = MAPQ_CMD_NONE,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_setup,
};
