/*
 * cmd_result.c - mapq result EXEC [--node NODE] [--fetch DIR]: prints the
 * output of a succeeded execution, or of one of its nodes, as JSON;
 * otherwise says why there is none. With --fetch, the files the output
 * refers to are written into DIR.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mapq_json.h"

/* The reply holding the output asked for, or NULL when there is none.
 * Caller frees with freeReplyObject(). */
static redisReply *
read_output(redisContext *c, const struct mapq_cli_opts *o, const char *state)
{
    char field[32];
    redisReply *r = NULL, *nn, *name;
    long k, nodes;

    if (o->node == NULL)
        return strcmp(state, "succeeded") == 0 ? mapq_cli_hget(c, o, "output")
                                               : NULL;
    nn = mapq_cli_hget(c, o, "nodes");
    nodes =
        nn && nn->type == REDIS_REPLY_STRING ? strtol(nn->str, NULL, 10) : 0;
    for (k = 0; k < nodes && r == NULL; k++) {
        snprintf(field, sizeof(field), "node:%ld", k);
        name = mapq_cli_hget(c, o, field);
        if (name && name->type == REDIS_REPLY_STRING &&
            strcmp(name->str, o->node) == 0) {
            snprintf(field, sizeof(field), "o:%ld", k);
            r = mapq_cli_hget(c, o, field);
        }
        freeReplyObject(name);
    }
    if (nn != NULL)
        freeReplyObject(nn);
    return r;
}

static int
cmd_result(struct mapq_cli_opts *o)
{
    char state[32];
    redisReply *r;
    int rc;
    redisContext *c = mapq_cli_open_exec(o, state, sizeof(state), &rc);

    if (c == NULL)
        return rc;
    r = read_output(c, o, state);
    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        rc = mapq_cli_print_output(c, o->ns, r->str, r->len,
                                   o->json ? MAPQ_JSON_PRETTY : 0);
        if (rc == MAPQ_EXIT_OK && o->fetch_dir != NULL)
            rc = mapq_cli_fetch_files(c, o->ns, r->str, r->len, o->fetch_dir);
    } else {
        redisReply *e = mapq_cli_hget(c, o, "error");

        fprintf(stderr, "mapq: execution %s is %s%s%s; no output%s\n",
                o->target, state,
                e && e->type == REDIS_REPLY_STRING ? ": " : "",
                e && e->type == REDIS_REPLY_STRING ? e->str : "",
                o->node ? " for that node" : "");
        if (e != NULL)
            freeReplyObject(e);
        rc = MAPQ_EXIT_FAILED;
    }
    if (r != NULL)
        freeReplyObject(r);
    redisFree(c);
    return rc;
}

const struct mapq_cmd_entry mapq_cmd_result_entry = {
    .name = "result",
    .usage = "result EXEC [--node NODE] [--fetch DIR] [--json]",
    .operands = MAPQ_CMD_EXEC,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_result,
};
