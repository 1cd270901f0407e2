/*
 * mapq_follow.c - following one subtask's stderr live (mapq logs -f).
 *
 * A loop of short polls: renew the follow entry (every FOLLOW_RENEW_MS),
 * read the subtask's attempt log (new attempts are printed, and the one
 * after the last is the one running), read what the running attempt's
 * live key holds past what was printed, stop once an attempt was final or
 * the execution ended.
 */
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mapq_alloc.h"
#include "mapq_follow.h"
#include "mapq_inspect.h"
#include "mapq_keys.h"
#include "mapq_record.h"

#define FOLLOW_POLL_MS  200
#define FOLLOW_RENEW_MS 2000
#define FOLLOW_TTL_MS   10000 /* a follower that died is forgotten then */

struct follow {
    redisContext *c;
    const char *ns, *exec, *node;
    long k;
    uint64_t index;
    char member[128];  /* "<exec>/<k>/<index>" in P:follow */
    size_t printed;    /* attempts printed */
    uint64_t live_off; /* bytes of the running attempt's live key printed */
    FILE *out;
};

static int64_t
server_ms(redisContext *c)
{
    redisReply *r = redisCommand(c, "TIME");
    int64_t ms = -1;

    if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        ms = strtoll(r->element[0]->str, NULL, 10) * 1000 +
             strtoll(r->element[1]->str, NULL, 10) / 1000;
    if (r != NULL)
        freeReplyObject(r);
    return ms;
}

/* Runs a command whose reply is only checked for errors. */
static enum mapq_err
run(redisContext *c, redisReply *r, char *err)
{
    enum mapq_err rc = MAPQ_OK;

    if (r == NULL || r->type == REDIS_REPLY_ERROR)
        rc = mapq_err_set(err, MAPQ_EREDIS, "redis: %s",
                          r && r->str ? r->str : c->errstr);
    if (r != NULL)
        freeReplyObject(r);
    return rc;
}

static enum mapq_err
renew(struct follow *f, char *err)
{
    char *key = mapq_key_follow(f->ns);
    int64_t now = server_ms(f->c);
    enum mapq_err rc =
        run(f->c,
            redisCommand(f->c, "ZADD %s %lld %s", key,
                         (long long)(now + FOLLOW_TTL_MS), f->member),
            err);

    /* Entries of followers that died: gone once stale. */
    if (rc == MAPQ_OK)
        rc = run(f->c,
                 redisCommand(f->c, "ZREMRANGEBYSCORE %s -inf %lld", key,
                              (long long)now),
                 err);
    free(key);
    return rc;
}

/* Prints what attempt's live key holds past f->live_off. */
static enum mapq_err
print_live(struct follow *f, uint32_t attempt, char *err)
{
    char *key =
        mapq_key_live(f->ns, f->exec, (uint32_t)f->k, f->index, attempt);
    redisReply *r = redisCommand(f->c, "GETRANGE %s %llu -1", key,
                                 (unsigned long long)f->live_off);
    enum mapq_err rc = MAPQ_OK;

    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        rc = mapq_err_set(err, MAPQ_EREDIS, "redis: %s",
                          r && r->str ? r->str : f->c->errstr);
    } else if (r->len > 0) {
        fwrite(r->str, 1, r->len, f->out);
        fflush(f->out);
        f->live_off += r->len;
    }
    if (r != NULL)
        freeReplyObject(r);
    free(key);
    return rc;
}

/* One poll: *done once the subtask had its final attempt or its execution
 * ended. */
static enum mapq_err
poll_once(struct follow *f, bool *done, char *err)
{
    char *log = mapq_key_log(f->ns, f->exec),
         *x = mapq_key_exec(f->ns, f->exec), page[MAPQ_LOG_FIELD_LEN];
    redisReply *l = NULL, *st = NULL;
    struct mapq_buf attempts = MAPQ_BUF_INIT;
    enum mapq_err rc;
    size_t n;
    bool final = false;

    /* Its own field, or its log page (a first attempt that succeeded). */
    mapq_record_page_field(page, (uint32_t)f->k, f->index);
    l = redisCommand(f->c, "HMGET %s %ld/%" PRIu64 " %s", log, f->k, f->index,
                     page);
    st = redisCommand(f->c, "HGET %s state", x);
    if (l == NULL || l->type != REDIS_REPLY_ARRAY || l->elements != 2 ||
        st == NULL) {
        rc = mapq_err_set(err, MAPQ_EREDIS, "redis: %s",
                          l && l->str ? l->str : f->c->errstr);
        goto out;
    }
    if (l->element[0]->type == REDIS_REPLY_STRING)
        mapq_buf_append(&attempts, l->element[0]->str, l->element[0]->len);
    if (l->element[1]->type == REDIS_REPLY_STRING)
        mapq_record_page_take(l->element[1]->str, l->element[1]->len, f->index,
                              &attempts);
    /* The running attempt's output; when it has ended, all of it: its
     * agent appends the last of it before it records the end. */
    rc = print_live(f, (uint32_t)f->printed + 1, err);
    if (rc != MAPQ_OK)
        goto out;
    if (attempts.len > 0) {
        /* Attempts streamed live have their stderr printed already. */
        n = mapq_inspect_print_attempts(f->out, f->node, f->index,
                                        attempts.data, attempts.len, f->printed,
                                        f->live_off == 0, &final);
        if (n > f->printed) {
            f->printed = n;
            f->live_off = 0;
        }
        fflush(f->out);
    }
    *done =
        final || st->type != REDIS_REPLY_STRING ||
        (strcmp(st->str, "running") != 0 && strcmp(st->str, "submitted") != 0);
out:
    mapq_buf_release(&attempts);
    if (l != NULL)
        freeReplyObject(l);
    if (st != NULL)
        freeReplyObject(st);
    free(log);
    free(x);
    return rc;
}

static void
pause_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};

    nanosleep(&ts, NULL);
}

enum mapq_err
mapq_follow(redisContext *c, const char *ns, const char *exec, const char *node,
            const char *index, volatile sig_atomic_t *stop, FILE *out,
            char *err)
{
    struct follow f = {
        .c = c, .ns = ns, .exec = exec, .node = node, .out = out};
    char *end, *key = NULL;
    long waited = FOLLOW_RENEW_MS;
    enum mapq_err rc;
    bool done = false;

    if (*index < '0' || *index > '9')
        return mapq_err_set(err, MAPQ_EINVAL,
                            "index must be a number, got '%s'", index);
    f.index = strtoull(index, &end, 10);
    if (*end != '\0')
        return mapq_err_set(err, MAPQ_EINVAL,
                            "index must be a number, got '%s'", index);
    f.k = mapq_inspect_node(c, ns, exec, node, err);
    if (f.k < 0)
        return f.k == -2 ? MAPQ_EREDIS : MAPQ_EINVAL;
    snprintf(f.member, sizeof(f.member), "%s/%ld/%" PRIu64, exec, f.k, f.index);
    key = mapq_key_follow(ns);
    for (;;) {
        if (waited >= FOLLOW_RENEW_MS) {
            rc = renew(&f, err);
            if (rc != MAPQ_OK)
                goto out;
            waited = 0;
        }
        rc = poll_once(&f, &done, err);
        if (rc != MAPQ_OK || done || *stop)
            break;
        pause_ms(FOLLOW_POLL_MS);
        waited += FOLLOW_POLL_MS;
    }
out:
    freeReplyObject(redisCommand(c, "ZREM %s %s", key, f.member));
    free(key);
    return rc;
}
