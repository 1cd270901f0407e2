/*
 * drv_calls.c - calls Redis may refuse: sent again after a capped,
 * jittered backoff per kind of call (enum path), each cause logged once.
 *
 * Owns struct call and the parked calls of a driver (d->parked,
 * d->nrefused, d->retry). A permanent refusal in mapq run is reported to
 * the controller (ops->refused), which ends the executions concerned; this
 * file never changes an execution's state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_log.h"

/* Whether a permanent refusal on the path ends the executions of mapq run:
 * without it they cannot go on. A cancel refused is only reported, a read
 * for progress leaves the progress as it was, and an execution whose abort
 * is refused ends failed at once. */
static const bool path_fatal[PATH_COUNT] = {
    [PATH_PUSH] = true,  [PATH_EVENTS] = true, [PATH_OWN] = true,
    [PATH_RENEW] = true, [PATH_ADOPT] = true,  [PATH_RECORD] = true,
    [PATH_SCAN] = true,  [PATH_READ] = true,   [PATH_FINISH] = true,
    [PATH_STATE] = true, [PATH_REAP] = true,   [PATH_CANCEL] = false,
    [PATH_LOAD] = false, [PATH_HELD] = false,  [PATH_ABORT] = false,
};

static void call_cb(redisReply *reply, const char *why, void *arg);
/* "FCALL mapq1_push", "HSET ns:x:<id>", "BLMPOP": what a log line names. */
static void
call_name(const struct mapq_argv *cmd, char *buf, size_t len)
{
    if (cmd->argc >= 2 && cmd->lens[0] == 5 &&
        memcmp(cmd->argv[0], "FCALL", 5) == 0)
        snprintf(buf, len, "FCALL %.*s", (int)cmd->lens[1], cmd->argv[1]);
    else if (cmd->argc >= 2 &&
             !(cmd->lens[0] == 6 && memcmp(cmd->argv[0], "BLMPOP", 6) == 0))
        snprintf(buf, len, "%.*s %.*s", (int)cmd->lens[0], cmd->argv[0],
                 (int)(cmd->lens[1] > 100 ? 100 : cmd->lens[1]), cmd->argv[1]);
    else if (cmd->argc >= 1)
        snprintf(buf, len, "%.*s", (int)cmd->lens[0], cmd->argv[0]);
    else
        snprintf(buf, len, "a command");
}

/*
 * The error of mapq run for a permanent refusal: the command, Redis's
 * words, and what the operator must change (the key pattern or command
 * the Redis user lacks, the password, the Redis version).
 */
static void
describe_refusal(const struct mapq_driver *d, const char *what,
                 const char *text, char *out, size_t len)
{
    size_t n = strlen(text);
    const char *fix;
    bool keys = true; /* fix ends with the key pattern */

    while (n > 0 && (text[n - 1] == '.' || text[n - 1] == ' ' ||
                     text[n - 1] == '\n' || text[n - 1] == '\r'))
        n--;
    if (strncmp(text, "ERR unknown command", 19) == 0) {
        fix = "this Redis lacks the command: mapq needs Redis 7.0 or later";
        keys = false;
    } else if (strncmp(text, "NOAUTH", 6) == 0 ||
               strncmp(text, "WRONGPASS", 9) == 0) {
        fix = "check the user and password in the Redis URL";
        keys = false;
    } else if (strstr(text, "key") != NULL) {
        fix = "the Redis user lacks access to keys it uses: grant it the key "
              "pattern";
    } else {
        fix = "the Redis user lacks a command mapq uses: grant it the "
              "command, or '+@all -@dangerous', on keys";
    }
    if (keys) {
        char *all = mapq_key_all(d->ns);

        snprintf(out, len, "%s refused by Redis: %.*s; %s '~%s'", what, (int)n,
                 text, fix, all);
        free(all);
    } else {
        snprintf(out, len, "%s refused by Redis: %.*s; %s", what, (int)n, text,
                 fix);
    }
}

/* Logs a failure of path p once per cause; returns the wait before trying
 * again (the cap for a permanent cause: only an operator clears it). */
static int
note_failure(struct mapq_driver *d, enum path p, const char *what,
             const char *text)
{
    struct mapq_retry *r = &d->retry[p];
    bool permanent =
        text != NULL && mapq_retry_classify(text) == MAPQ_RETRY_PERMANENT;
    int delay_ms;

    if (mapq_retry_fail(r, text, &delay_ms))
        mapq_log(permanent ? MAPQ_LOG_ERROR : MAPQ_LOG_WARN,
                 "%s failed, retrying with backoff: %s", what,
                 text ? text : "no reply");
    return permanent ? r->max_ms : delay_ms;
}

void
drv_note_success(struct mapq_driver *d, enum path p, const char *what)
{
    struct mapq_retry *r = &d->retry[p];

    /* As loud as the failure was: mapq run shows warnings only. */
    if (mapq_retry_ok(r))
        mapq_log(MAPQ_LOG_WARN, "%s works again after %lu failures (%s)", what,
                 r->count, r->code);
}

/*
 * Redis refused a call of path p made for x (NULL: for the whole driver)
 * with text. Returns true when the call is to be tried again after
 * *delay_ms. Returns false when it is not: the driver stops; or x has
 * ended and nothing waits for the call; or, in mapq run, the cause is
 * permanent, and the executions concerned (x, or all) have ended with
 * the reason instead (ops->refused), so that mapq run says it once and
 * exits 3.
 */
bool
drv_refused(struct mapq_driver *d, struct exec *x, enum path p,
            const char *what, const char *text, int *delay_ms)
{
    char msg[1024];

    if (d->stopping)
        return false;
    if (x != NULL && drv_exec_ended(x) && p != PATH_RECORD && p != PATH_FINISH)
        return false;
    if (d->serving || text == NULL ||
        mapq_retry_classify(text) != MAPQ_RETRY_PERMANENT) {
        *delay_ms = note_failure(d, p, what, text);
        return true;
    }
    if (!path_fatal[p])
        return false;
    describe_refusal(d, what, text, msg, sizeof(msg));
    if (x != NULL && drv_exec_ended(x)) {
        /* Its outcome is out already: a write after it is refused. */
        if (!x->redis_error && mapq_retry_fail(&d->retry[p], text, NULL))
            mapq_log(MAPQ_LOG_ERROR, "execution %s: %s", x->id, msg);
    } else {
        d->ops->refused(d, x, msg);
    }
    return false;
}

static void
call_free(struct call *c)
{
    if (c->ev != NULL)
        event_free(c->ev);
    mapq_argv_release(&c->cmd);
    free(c);
}

static void
call_go(struct call *c)
{
    mapq_redis_command(c->conn, c->timeout_ms, call_cb, c, c->cmd.argc,
                       c->cmd.argv, c->cmd.lens);
}

/* True when a parked call is no longer worth sending. */
static bool
call_stale(const struct call *c)
{
    const struct exec *x = c->x;

    if (c->d->stopping || x == NULL)
        return c->d->stopping;
    if (drv_exec_ended(x) && c->path != PATH_RECORD && c->path != PATH_FINISH)
        return true;
    if (c->gen_check && c->gen != x->gen)
        return true;
    /* A newer write of the same progress record replaces it. */
    return c->node >= 0 && x->nodes[c->node].p_seq != c->seq;
}

/* fn has run: the call is over, and its execution may be settled. */
static void
call_done(struct call *c)
{
    struct mapq_driver *d = c->d;
    bool of_exec = c->x != NULL;

    call_free(c);
    if (of_exec)
        d->ops->settled(d);
}

static void
call_resend_cb(evutil_socket_t fd, short what, void *arg)
{
    struct call *c = arg;

    (void)fd;
    (void)what;
    TAILQ_REMOVE(&c->d->parked, c, entry);
    c->d->nrefused -= c->refusal;
    c->refusal = false;
    if (call_stale(c)) {
        c->fn(NULL, "no longer needed", c->arg);
        call_done(c);
        return;
    }
    call_go(c);
}

static void
call_park(struct call *c, int delay_ms, bool refusal)
{
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};

    c->refusal = refusal;
    c->d->nrefused += refusal;
    if (c->ev == NULL)
        c->ev = evtimer_new(c->d->base, call_resend_cb, c);
    TAILQ_INSERT_TAIL(&c->d->parked, c, entry);
    evtimer_add(c->ev, &tv);
}

static void
call_cb(redisReply *reply, const char *why, void *arg)
{
    struct call *c = arg;
    int delay_ms;

    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        if (drv_refused(c->d, c->x, c->path, c->what, reply->str, &delay_ms)) {
            call_park(c, delay_ms, true);
            return;
        }
    } else if (reply == NULL && c->path == PATH_RECORD && !call_stale(c)) {
        /* A record write waits for the connection rather than for the
         * reconcile, which does not redo it. */
        call_park(c, note_failure(c->d, c->path, c->what, why), false);
        return;
    } else if (reply != NULL) {
        drv_note_success(c->d, c->path, c->what);
    }
    c->fn(reply, why, c->arg);
    call_done(c);
}

struct call *
drv_call_send(struct mapq_driver *d, struct exec *x, enum path p,
              struct mapq_redis *conn, int timeout_ms, struct mapq_argv *cmd,
              mapq_redis_reply_fn *fn, void *arg)
{
    struct call *c = mapq_xcalloc(1, sizeof(*c));

    c->d = d;
    c->x = x;
    c->path = p;
    c->conn = conn;
    c->timeout_ms = timeout_ms;
    c->node = -1;
    c->gen = x != NULL ? x->gen : 0;
    c->cmd = *cmd;
    mapq_argv_init(cmd);
    call_name(&c->cmd, c->what, sizeof(c->what));
    c->fn = fn;
    c->arg = arg;
    if (x != NULL)
        x->calls++;
    call_go(c);
    return c;
}

struct call *
drv_exec_send(struct exec *x, enum path p, struct mapq_argv *cmd,
              mapq_redis_reply_fn *fn, void *arg)
{
    return drv_call_send(x->d, x, p, x->d->cmd, CALL_TIMEOUT_MS, cmd, fn, arg);
}

void
drv_calls_drop(struct mapq_driver *d)
{
    struct call *c;

    while ((c = TAILQ_FIRST(&d->parked)) != NULL) {
        TAILQ_REMOVE(&d->parked, c, entry);
        d->nrefused -= c->refusal;
        c->fn(NULL, "the driver stops", c->arg);
        call_free(c);
    }
}
