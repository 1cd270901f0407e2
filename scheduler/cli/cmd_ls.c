/*
 * cmd_ls.c - mapq ls: the executions Redis holds, newest first: id, state,
 * workflow, when it started, how long it ran, and when it expires (its
 * retention). Reads P:execs and a few fields of each record; an entry
 * whose record has expired is left out (mapq scheduler prunes them).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "mapq_json.h"
#include "mapq_keys.h"

/* Executions read per round trip. */
#define LS_PAGE 500

static long long
field_ll(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING ? strtoll(r->str, NULL, 10) : 0;
}

static const char *
field_str(const redisReply *r)
{
    return r->type == REDIS_REPLY_STRING ? r->str : "";
}

/* "2026-12-05 01:02:03" (UTC) for ms since the epoch, or "-". */
static void
format_time(long long ms, char *out, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;

    if (ms <= 0 || gmtime_r(&t, &tm) == NULL)
        snprintf(out, len, "-");
    else
        strftime(out, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void
format_duration(long long ms, char *out, size_t len)
{
    if (ms < 0)
        snprintf(out, len, "-");
    else if (ms < 60000)
        snprintf(out, len, "%.1fs", (double)ms / 1000);
    else if (ms < 3600000)
        snprintf(out, len, "%lldm%02llds", ms / 60000, ms / 1000 % 60);
    else
        snprintf(out, len, "%lldh%02lldm", ms / 3600000, ms / 60000 % 60);
}

/* One execution: the HMGET reply of state, name, created, finished,
 * expires; false when its record is gone. */
static bool
print_one(const struct mapq_cli_opts *o, const char *id, const redisReply *f,
          bool first, struct mapq_buf *json)
{
    long long created, finished, expires;
    char started[32], took[32], until[32];
    const char *state;

    if (f == NULL || f->type != REDIS_REPLY_ARRAY || f->elements != 5 ||
        f->element[0]->type != REDIS_REPLY_STRING)
        return false;
    state = f->element[0]->str;
    created = field_ll(f->element[2]);
    finished = field_ll(f->element[3]);
    expires = field_ll(f->element[4]);
    if (o->json) {
        mapq_buf_appendstr(json, first ? "" : ",");
        mapq_buf_appendstr(json, "{\"execution\":");
        mapq_json_append_text(json, id, strlen(id));
        mapq_buf_appendstr(json, ",\"status\":");
        mapq_json_append_text(json, state, strlen(state));
        mapq_buf_appendstr(json, ",\"workflow\":");
        mapq_json_append_text(json, field_str(f->element[1]),
                              strlen(field_str(f->element[1])));
        mapq_buf_printf(json, ",\"created_ms\":%lld", created);
        if (finished > 0)
            mapq_buf_printf(json, ",\"finished_ms\":%lld,\"duration_ms\":%lld",
                            finished, finished - created);
        if (expires > 0)
            mapq_buf_printf(json, ",\"expires_ms\":%lld", expires);
        mapq_buf_appendstr(json, "}");
        return true;
    }
    format_time(created, started, sizeof(started));
    format_duration(finished > 0 ? finished - created : -1, took, sizeof(took));
    format_time(expires, until, sizeof(until));
    printf("%-12s  %-9s  %-20.20s  %-19s  %-8s  %s\n", id, state,
           field_str(f->element[1]), started, took, until);
    return true;
}

static int
cmd_ls(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);
    struct mapq_buf json = MAPQ_BUF_INIT;
    char *execs = mapq_key_execs(o->ns);
    redisReply *ids = NULL, *f;
    long long from = 0;
    size_t i;
    bool first = true;
    int rc = MAPQ_EXIT_INFRA;

    if (c == NULL)
        goto out;
    if (!o->json)
        printf("%-12s  %-9s  %-20s  %-19s  %-8s  %s\n", "EXECUTION", "STATE",
               "WORKFLOW", "STARTED (UTC)", "TOOK", "EXPIRES (UTC)");
    for (;;) {
        ids = redisCommand(c, "ZREVRANGE %s %lld %lld", execs, from,
                           from + LS_PAGE - 1);
        if (ids == NULL || ids->type != REDIS_REPLY_ARRAY) {
            fprintf(stderr, "mapq ls: %s\n",
                    ids && ids->str ? ids->str : c->errstr);
            goto out;
        }
        for (i = 0; i < ids->elements; i++) {
            char *x = mapq_key_exec(o->ns, ids->element[i]->str);

            redisAppendCommand(
                c, "HMGET %s state name created finished expires", x);
            free(x);
        }
        for (i = 0; i < ids->elements; i++) {
            if (redisGetReply(c, (void **)&f) != REDIS_OK) {
                fprintf(stderr, "mapq ls: %s\n", c->errstr);
                goto out;
            }
            if (print_one(o, ids->element[i]->str, f, first, &json))
                first = false;
            freeReplyObject(f);
        }
        if (ids->elements < LS_PAGE)
            break;
        from += LS_PAGE;
        freeReplyObject(ids);
        ids = NULL;
    }
    if (o->json)
        printf("{\"executions\":[%s]}\n", json.data ? json.data : "");
    rc = MAPQ_EXIT_OK;
out:
    if (ids != NULL)
        freeReplyObject(ids);
    if (c != NULL)
        redisFree(c);
    mapq_buf_release(&json);
    free(execs);
    return rc;
}

const struct mapq_cmd_entry mapq_cmd_ls_entry = {
    .name = "ls",
    .usage = "ls [--json]",
    .operands = MAPQ_CMD_NONE,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_ls,
};
