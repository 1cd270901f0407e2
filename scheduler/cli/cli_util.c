/*
 * cli_util.c - the steps several mapq commands share: loading a workflow
 * with its inputs, connecting to Redis, printing a value as JSON and
 * reading an execution's record.
 *
 * Each helper reports its own failure on stderr once and returns what the
 * command should exit with; none exits or keeps state.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "mapq_json.h"
#include "mapq_keys.h"
#include "mapq_seal.h"

#define CONNECT_TIMEOUT_MS 3000
#define REDIS_DEFAULT_URL  "redis://127.0.0.1:6379"

static char *
read_file(const char *path, size_t *len, char *err)
{
    struct mapq_buf b;

    /* Capped: a workflow file over MAPQ_WORKFLOW_FILE_MAX is not read. */
    if (mapq_workflow_read_file(path, &b, err) != MAPQ_OK) {
        mapq_buf_release(&b);
        return NULL;
    }
    return mapq_buf_detach(&b, len);
}

int
mapq_cli_load_workflow(const struct mapq_cli_opts *o, struct mapq_workflow **wf,
                       char **text, size_t *textlen,
                       const struct mapq_bind_pages *pages,
                       struct mapq_buf *inputs)
{
    struct mapq_buf errors = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    int rc = MAPQ_EXIT_OK;

    *text = read_file(o->target, textlen, err);
    if (*text == NULL) {
        fprintf(stderr, "mapq: %s\n", err);
        return MAPQ_EXIT_USAGE;
    }
    *wf = mapq_workflow_parse(*text, *textlen, o->target, &errors);
    if (*wf == NULL || mapq_workflow_bind_inputs_paged(
                           *wf, o->assigns, o->nassigns, o->inputs_file, pages,
                           inputs, &errors) != MAPQ_OK) {
        fputs(errors.data ? errors.data : "mapq: invalid workflow\n", stderr);
        rc = MAPQ_EXIT_USAGE;
    }
    mapq_buf_release(&errors);
    return rc;
}

redisContext *
mapq_cli_connect_url(const char *url_s, const struct mapq_cli_opts *o,
                     struct mapq_redis_url *url)
{
    char err[MAPQ_ERR_LEN];
    redisContext *c;

    if (mapq_redis_url_parse(url_s, url, err) != MAPQ_OK ||
        (o != NULL &&
         mapq_redis_url_password(url, o->password_file, err) != MAPQ_OK)) {
        fprintf(stderr, "mapq: %s\n", err);
        return NULL;
    }
    if (o != NULL && o->durable)
        url->durable = 1;
    c = mapq_redis_connect_sync(url, CONNECT_TIMEOUT_MS, err);
    if (c == NULL)
        fprintf(stderr, "mapq: %s\n", err);
    return c;
}

int
mapq_cli_seal(const struct mapq_cli_opts *o, struct mapq_seal **seal)
{
    char err[MAPQ_ERR_LEN];

    *seal = NULL;
    if (o->secret_file == NULL)
        return MAPQ_EXIT_OK;
    *seal = mapq_seal_load(o->secret_file, err);
    if (*seal != NULL)
        return MAPQ_EXIT_OK;
    fprintf(stderr, "mapq: %s\n", err);
    return MAPQ_EXIT_USAGE;
}

redisContext *
mapq_cli_connect(const struct mapq_cli_opts *o, struct mapq_redis_url *url)
{
    return mapq_cli_connect_url(o->redis ? o->redis : REDIS_DEFAULT_URL, o,
                                url);
}

int
mapq_cli_print_value(const char *data, size_t len, int flags)
{
    struct mapq_buf out = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    int rc = MAPQ_EXIT_OK;

    if (!(flags & MAPQ_JSON_PRETTY)) {
        /* A list of a million goes out element by element. */
        if (mapq_json_write(data, len, stdout, err) != MAPQ_OK) {
            fprintf(stderr, "mapq: the output cannot be written as JSON: %s\n",
                    err);
            rc = MAPQ_EXIT_FAILED;
        }
    } else if (mapq_json_from_bytes(data, len, &out, flags, err) != MAPQ_OK) {
        fprintf(stderr, "mapq: the output cannot be written as JSON: %s\n",
                err);
        rc = MAPQ_EXIT_FAILED;
    } else {
        printf("%s\n", out.data);
    }
    mapq_buf_release(&out);
    return rc;
}

redisReply *
mapq_cli_hget(redisContext *c, const struct mapq_cli_opts *o, const char *field)
{
    char *key = mapq_key_exec(o->ns, o->target);
    redisReply *r = redisCommand(c, "HGET %s %s", key, field);

    free(key);
    return r;
}

int
mapq_cli_exec_state(redisContext *c, const struct mapq_redis_url *url,
                    const struct mapq_cli_opts *o, char *state, size_t len)
{
    redisReply *r = mapq_cli_hget(c, o, "state");
    char shown[300];
    int rc = MAPQ_EXIT_OK;

    if (r != NULL && r->type == REDIS_REPLY_STRING) {
        snprintf(state, len, "%s", r->str);
    } else if (r == NULL || r->type == REDIS_REPLY_ERROR) {
        mapq_redis_url_format(url, shown, sizeof(shown));
        fprintf(stderr, "mapq: cannot use redis '%s': %s\n", shown,
                r != NULL ? r->str : c->errstr);
        rc = MAPQ_EXIT_INFRA;
    } else {
        fprintf(stderr, "mapq: no execution '%s'\n", o->target);
        rc = MAPQ_EXIT_FAILED;
    }
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

redisContext *
mapq_cli_open_exec(const struct mapq_cli_opts *o, char *state, size_t len,
                   int *rc)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);

    if (c == NULL) {
        *rc = MAPQ_EXIT_INFRA;
        return NULL;
    }
    *rc = mapq_cli_exec_state(c, &url, o, state, len);
    if (*rc != MAPQ_EXIT_OK) {
        redisFree(c);
        return NULL;
    }
    return c;
}

enum mapq_err
mapq_cli_read(const struct mapq_cli_opts *o, mapq_cli_read_fn *fn)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    if (c == NULL)
        return MAPQ_EREDIS;
    rc = fn(c, o, err);
    redisFree(c);
    if (rc != MAPQ_OK)
        fprintf(stderr, "mapq %s: %s\n", o->cmd, err);
    return rc;
}
