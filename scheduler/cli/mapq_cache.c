/*
 * mapq_cache.c - cache management for the CLI: SCAN over P:c:<task>:*,
 * pipelined reads for the listing, UNLINK in batches for removal.
 */
#include "mapq_cache.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_value.h"

#define SCAN_COUNT "1000"

/* Called with one SCAN batch of keys (borrowed); returns MAPQ_OK to go on. */
typedef enum mapq_err scan_fn(redisContext *c, const redisReply *keys,
                              void *arg, char *err);

static void
reply_free(redisReply *r)
{
    if (r != NULL)
        freeReplyObject(r);
}

static enum mapq_err
redis_error(redisContext *c, const redisReply *r, char *err)
{
    return mapq_err_set(err, MAPQ_EREDIS, "redis: %s",
                        r && r->str ? r->str : c->errstr);
}

/* Runs fn on every batch of keys matching pattern. */
static enum mapq_err
scan_each(redisContext *c, const char *pattern, scan_fn *fn, void *arg,
          char *err)
{
    char cursor[32] = "0";
    enum mapq_err rc = MAPQ_OK;
    redisReply *r;

    do {
        r = redisCommand(c, "SCAN %s MATCH %s COUNT " SCAN_COUNT, cursor,
                         pattern);
        if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2 ||
            r->element[0]->type != REDIS_REPLY_STRING) {
            rc = redis_error(c, r, err);
            reply_free(r);
            break;
        }
        snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
        if (r->element[1]->elements > 0)
            rc = fn(c, r->element[1], arg, err);
        reply_free(r);
    } while (rc == MAPQ_OK && strcmp(cursor, "0") != 0);
    return rc;
}

/* The pattern of task's entries (every task's when NULL). */
static char *
entries_pattern(const char *ns, const char *task)
{
    return mapq_key_cache(ns, task ? task : "*", "*");
}

/* ---- ls ---------------------------------------------------------------- */

struct ls {
    const char *ns;
    bool json;
    json_t *arr;
    FILE *out;
    size_t count;
};

static void
ls_show(struct ls *l, const char *key, long long bytes, long long ttl)
{
    const char *task, *hex;
    size_t tlen;
    json_t *o;

    if (!mapq_key_cache_split(l->ns, key, &task, &tlen, &hex))
        return;
    l->count++;
    if (!l->json) {
        if (ttl >= 0)
            fprintf(l->out, "%-24.*s %s %9lld  expires in %llds\n", (int)tlen,
                    task, hex, bytes, (ttl + 999) / 1000);
        else
            fprintf(l->out, "%-24.*s %s %9lld  never expires\n", (int)tlen,
                    task, hex, bytes);
        return;
    }
    o = json_object();
    json_object_set_new(o, "task", mapq_cli_json_text(task, tlen));
    json_object_set_new(o, "key", json_string(hex));
    json_object_set_new(o, "bytes", json_integer(bytes));
    json_object_set_new(o, "ttl_ms",
                        ttl >= 0 ? json_integer(ttl) : json_null());
    json_array_append_new(l->arr, o);
}

/* Reads size and time to live of a batch with one pipelined round trip. */
static enum mapq_err
ls_batch(redisContext *c, const redisReply *keys, void *arg, char *err)
{
    struct ls *l = arg;
    redisReply *bytes = NULL, *ttl = NULL;
    enum mapq_err rc = MAPQ_OK;
    size_t i;

    for (i = 0; i < keys->elements; i++) {
        redisAppendCommand(c, "STRLEN %s", keys->element[i]->str);
        redisAppendCommand(c, "PTTL %s", keys->element[i]->str);
    }
    for (i = 0; i < keys->elements; i++) {
        if (redisGetReply(c, (void **)&bytes) != REDIS_OK ||
            redisGetReply(c, (void **)&ttl) != REDIS_OK) {
            rc = redis_error(c, NULL, err);
            break;
        }
        /* An entry that expired between SCAN and now reads as 0 bytes. */
        if (bytes->type == REDIS_REPLY_INTEGER && bytes->integer > 0 &&
            ttl->type == REDIS_REPLY_INTEGER)
            ls_show(l, keys->element[i]->str, bytes->integer, ttl->integer);
        reply_free(bytes);
        reply_free(ttl);
        bytes = ttl = NULL;
    }
    reply_free(bytes);
    return rc;
}

enum mapq_err
mapq_cache_ls(redisContext *c, const char *ns, const char *task, bool json,
              FILE *out, char *err)
{
    struct ls l = {ns, json, json ? json_array() : NULL, out, 0};
    char *pattern = entries_pattern(ns, task), *text;
    enum mapq_err rc;

    rc = scan_each(c, pattern, ls_batch, &l, err);
    if (rc == MAPQ_OK && json) {
        text = json_dumps(l.arr, JSON_COMPACT | JSON_PRESERVE_ORDER);
        fprintf(out, "%s\n", text ? text : "[]");
        free(text);
    } else if (rc == MAPQ_OK && l.count == 0) {
        fprintf(out, "no cache entries%s%s\n", task ? " of task " : "",
                task ? task : "");
    }
    json_decref(l.arr);
    free(pattern);
    return rc;
}

/* ---- rm and clear ------------------------------------------------------ */

static enum mapq_err
unlink_batch(redisContext *c, const redisReply *keys, void *arg, char *err)
{
    size_t *removed = arg, i;
    const char **argv = mapq_xcalloc(keys->elements + 1, sizeof(char *));
    redisReply *r;
    enum mapq_err rc = MAPQ_OK;

    argv[0] = "UNLINK";
    for (i = 0; i < keys->elements; i++)
        argv[i + 1] = keys->element[i]->str;
    r = redisCommandArgv(c, (int)keys->elements + 1, argv, NULL);
    if (r == NULL || r->type != REDIS_REPLY_INTEGER)
        rc = redis_error(c, r, err);
    else
        *removed += (size_t)r->integer;
    reply_free(r);
    free(argv);
    return rc;
}

static bool
is_key_hex(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return i == 2 * MAPQ_KEY_LEN;
}

enum mapq_err
mapq_cache_rm(redisContext *c, const char *ns, const char *task,
              const char *const *keys, size_t nkeys, size_t *removed, char *err)
{
    enum mapq_err rc = MAPQ_OK;
    char *pattern;
    size_t i;

    *removed = 0;
    for (i = 0; i < nkeys; i++)
        if (!is_key_hex(keys[i]))
            return mapq_err_set(err, MAPQ_EINVAL,
                                "'%s' is not a cache key (32 hex digits, as "
                                "mapq cache ls prints them)",
                                keys[i]);
    for (i = 0; i < nkeys && rc == MAPQ_OK; i++) {
        pattern = mapq_key_cache(ns, task ? task : "*", keys[i]);
        rc = scan_each(c, pattern, unlink_batch, removed, err);
        free(pattern);
    }
    return rc;
}

enum mapq_err
mapq_cache_clear(redisContext *c, const char *ns, const char *task,
                 size_t *removed, char *err)
{
    char *pattern = entries_pattern(ns, task);
    enum mapq_err rc;

    *removed = 0;
    rc = scan_each(c, pattern, unlink_batch, removed, err);
    free(pattern);
    return rc;
}
