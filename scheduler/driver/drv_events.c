/*
 * drv_events.c - reading events: one blocking BLMPOP on the event lists of
 * the executions owned (and P:submitted when serving), an LPOP drain when
 * a list holds more, and a wake entry that ends the wait early when a list
 * it lacks becomes wanted.
 *
 * While reports flow and none is awaited (the controller says so), reads
 * are paced: the next wait goes EVENT_PACE_MS after the last one, so that
 * Redis, idle between reports, is not woken twice for each (once by the
 * report, once by the wait sent again after it). A wanted list the last
 * wait lacked ends the pace at once.
 *
 * Owns the wait of a driver (d->wait, armed_ms, wait_keys, wake_sent,
 * wait_ev) and x->draining. Each event, each batch's end and each
 * submitted id is reported to the controller (ops->event, events_done,
 * submitted); this file never touches a window nor an execution's state.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_keys.h"
#include "mapq_log.h"

static void
event_cb(const struct mapq_event *ev, void *arg)
{
    struct exec *x = arg;

    x->d->ops->event(x, ev->node, ev->index, ev->phase);
}

/*
 * Applies one event entry: [k, index, phase] triples, one per subtask
 * recorded by one mapq1_done call, or the end marker. A bad triple is skipped
 * alone: the others are real subtasks. The windows are refilled afterwards, by
 * ops->events_done, once per batch rather than per event.
 */
static void
handle_event(struct exec *x, const char *data, size_t len)
{
    uint32_t bad;

    if (mapq_record_is_end(data, len)) {
        x->d->ops->end_marked(x);
        return;
    }
    if (mapq_record_events(data, len, x->wf->nnodes, event_cb, x, &bad) !=
        MAPQ_OK)
        mapq_log(MAPQ_LOG_WARN, "execution %s: malformed event set aside",
                 x->id);
}

static void drain(struct exec *x);

/* The one place the wait's state changes; a timer that would send the
 * next wait goes when that is no longer the state. */
static void
set_wait(struct mapq_driver *d, enum wait_state to, int delay_ms)
{
    struct timeval tv;

    if (d->wait == WAIT_BACKOFF || d->wait == WAIT_PACED)
        evtimer_del(d->wait_ev);
    d->wait = to;
    if (to == WAIT_SENT)
        d->armed_ms = drv_now_ms();
    if (to == WAIT_BACKOFF || to == WAIT_PACED) {
        tv.tv_sec = delay_ms / 1000;
        tv.tv_usec = (suseconds_t)(delay_ms % 1000) * 1000;
        evtimer_add(d->wait_ev, &tv);
    }
}

/* After a read that had events: the next wait now, or when the pace is
 * up if the controller says the events may wait. */
static void
wait_next(struct mapq_driver *d)
{
    int64_t left = d->armed_ms + EVENT_PACE_MS - drv_now_ms();

    if (left <= 0 || left > EVENT_PACE_MS || d->wait != WAIT_IDLE ||
        d->stopping || !d->ops->events_may_wait(d)) {
        drv_events_wait(d);
        return;
    }
    set_wait(d, WAIT_PACED, (int)left);
}

static void
drain_cb(redisReply *reply, const char *why, void *arg)
{
    struct exec *x = arg;
    size_t i;

    (void)why;
    x->calls--;
    x->draining = false;
    if (drv_exec_ended(x))
        return;
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
        for (i = 0; i < reply->elements; i++)
            handle_event(x, reply->element[i]->str, reply->element[i]->len);
        x->d->ops->events_done(x);
        if (reply->elements == BATCH && !drv_exec_ended(x)) {
            drain(x);
            return;
        }
        if (reply->elements > 0) {
            wait_next(x->d);
            return;
        }
    }
    drv_events_wait(x->d);
}

static void
drain(struct exec *x)
{
    struct mapq_argv cmd;

    if (x->draining || drv_exec_ended(x))
        return;
    x->draining = true;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "LPOP");
    mapq_argv_add(&cmd, x->evkey);
    mapq_argv_addf(&cmd, "%d", BATCH);
    drv_exec_send(x, PATH_EVENTS, &cmd, drain_cb, x);
}

/* The event wait refused (BUSY, NOPERM, ...): waits again after a
 * backoff, or, when drv_refused() ended the executions, not at all. */
static void
wait_refused(struct mapq_driver *d, const char *text)
{
    int delay_ms;

    if (drv_refused(d, NULL, PATH_EVENTS, "BLMPOP", text, &delay_ms))
        set_wait(d, WAIT_BACKOFF, delay_ms);
}

void
drv_events_again_cb(evutil_socket_t fd, short what, void *arg)
{
    struct mapq_driver *d = arg;

    (void)fd;
    (void)what;
    set_wait(d, WAIT_IDLE, 0);
    drv_events_wait(d);
}

void
drv_events_lost(struct mapq_driver *d)
{
    /* A wait backing off after a refusal, or paced, is redone on the new
     * connection instead. */
    set_wait(d, WAIT_IDLE, 0);
}

/* Whether list is the key P:submitted. */
static bool
is_submitted(const struct mapq_driver *d, const char *list)
{
    char *sub = mapq_key_submitted(d->ns);
    bool yes = strcmp(list, sub) == 0;

    free(sub);
    return yes;
}

/*
 * BLMPOP's reply: [list, [entry...]] from the first list that had entries,
 * up to BATCH of them, so a trickle of events costs one call each.
 */
static void
wait_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_driver *d = arg;
    redisReply *list, *items;
    struct exec *x;
    size_t i;

    (void)why;
    set_wait(d, WAIT_IDLE, 0);
    if (reply != NULL && reply->type == REDIS_REPLY_ERROR) {
        wait_refused(d, reply->str);
        return;
    }
    if (reply == NULL)
        return; /* the state callback resumes waiting */
    drv_note_success(d, PATH_EVENTS, "BLMPOP");
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY)
        goto again; /* a timeout, or an error logged by the connection */
    list = reply->element[0];
    items = reply->element[1];
    if (strcmp(list->str, d->wake_key) == 0) {
        d->wake_sent = false;
        goto again;
    }
    if (is_submitted(d, list->str)) {
        for (i = 0; i < items->elements; i++)
            if (items->element[i]->type == REDIS_REPLY_STRING)
                d->ops->submitted(d, items->element[i]->str,
                                  items->element[i]->len);
        goto again;
    }
    TAILQ_FOREACH (x, &d->execs, entry)
        if (drv_exec_owned(x) && strcmp(x->evkey, list->str) == 0)
            break;
    if (x == NULL)
        goto again;
    for (i = 0; i < items->elements; i++)
        if (items->element[i]->type == REDIS_REPLY_STRING)
            handle_event(x, items->element[i]->str, items->element[i]->len);
    d->ops->events_done(x);
    if (items->elements == BATCH) {
        drain(x); /* there may be more: drain_cb waits again after */
        return;
    }
    if (items->elements > 0) {
        wait_next(d);
        return;
    }
again:
    drv_events_wait(d);
}

/* Adds key to the wanted set; notes whether the wait in flight lacks it. */
static void
want_key(struct mapq_driver *d, struct mapq_argv *keys, const char *key,
         bool *missing)
{
    char probe[256];

    mapq_argv_add(keys, key);
    snprintf(probe, sizeof(probe), "\n%s\n", key);
    if (d->wait_keys.len == 0 || strstr(d->wait_keys.data, probe) == NULL)
        *missing = true;
}

static void
wake_cb(redisReply *reply, const char *why, void *arg)
{
    struct mapq_driver *d = arg;

    if (reply != NULL && reply->type != REDIS_REPLY_ERROR)
        return;
    /* The wait in flight ends by its timeout instead (a second at most),
     * and a later wake may be sent. */
    if (d != NULL)
        d->wake_sent = false;
    mapq_log(MAPQ_LOG_DEBUG, "cannot wake the event wait: %s",
             reply ? reply->str : why);
}

/* Ends the wait in flight early, so that the next one covers new lists. */
static void
wake(struct mapq_driver *d)
{
    struct mapq_argv cmd;

    if (d->wake_sent || !mapq_redis_ready(d->cmd))
        return;
    d->wake_sent = true;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "RPUSH");
    mapq_argv_add(&cmd, d->wake_key);
    mapq_argv_add(&cmd, "1");
    mapq_redis_command(d->cmd, CALL_TIMEOUT_MS, wake_cb, d, cmd.argc, cmd.argv,
                       cmd.lens);
    mapq_argv_reset(&cmd);
    /* Should this driver die before its wait pops it, the list goes. */
    mapq_argv_add(&cmd, "PEXPIRE");
    mapq_argv_add(&cmd, d->wake_key);
    mapq_argv_add(&cmd, "60000");
    mapq_redis_command(d->cmd, CALL_TIMEOUT_MS, wake_cb, NULL, cmd.argc,
                       cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
}

/* A wait in flight that lacks a list wanted is woken; a pace is cut
 * short. */
void
drv_events_wait(struct mapq_driver *d)
{
    struct mapq_argv keys, call;
    struct exec *x;
    bool missing = false;
    char *sub;
    int j;

    if (d->stopping || !mapq_redis_ready(d->blk))
        return;
    mapq_argv_init(&keys);
    TAILQ_FOREACH (x, &d->execs, entry)
        if (drv_exec_owned(x) && !x->draining)
            want_key(d, &keys, x->evkey, &missing);
    if (d->serving) {
        sub = mapq_key_submitted(d->ns);
        want_key(d, &keys, sub, &missing);
        free(sub);
    }
    if (d->wait == WAIT_SENT) {
        if (missing)
            wake(d);
        goto out;
    }
    /* After a backoff, or at the pace, the wait covers every list wanted
     * then; a list the last one lacked cuts the pace short. */
    if (d->wait == WAIT_BACKOFF || (d->wait == WAIT_PACED && !missing))
        goto out;
    if (keys.argc == 0) {
        set_wait(d, WAIT_IDLE, 0);
        goto out;
    }
    mapq_buf_reset(&d->wait_keys);
    mapq_buf_append(&d->wait_keys, "\n", 1);
    mapq_argv_add(&keys, d->wake_key);
    mapq_argv_init(&call);
    mapq_argv_add(&call, "BLMPOP");
    mapq_argv_addf(&call, "%d", WAIT_BLOCK_S);
    mapq_argv_addf(&call, "%d", keys.argc);
    for (j = 0; j < keys.argc; j++) {
        mapq_argv_addlen(&call, keys.argv[j], keys.lens[j]);
        mapq_buf_printf(&d->wait_keys, "%.*s\n", (int)keys.lens[j],
                        keys.argv[j]);
    }
    mapq_argv_add(&call, "LEFT");
    mapq_argv_add(&call, "COUNT");
    mapq_argv_addf(&call, "%d", BATCH);
    set_wait(d, WAIT_SENT, 0);
    mapq_redis_command(d->blk, WAIT_BLOCK_S * 1000 + 3000, wait_cb, d,
                       call.argc, call.argv, call.lens);
    mapq_argv_release(&call);
out:
    mapq_argv_release(&keys);
}
