/*
 * agent_retry.c - what the agent does when Redis refuses a call (OOM,
 * BUSY, NOPERM, ...): wait out a capped, jittered backoff (mapq_retry)
 * and log each cause once, and once more when it clears.
 *
 * Owns nothing: the retry state and the timer belong to the agent, one per
 * path; this file only counts, logs and arms the timer it is given.
 */
#include "agent_int.h"
#include "mapq_log.h"

const char *
agent_failure_text(const redisReply *reply, const char *why)
{
    if (reply == NULL)
        return why;
    return reply->type == REDIS_REPLY_ERROR && reply->str ? reply->str
                                                          : "unexpected reply";
}
/*
 * Counts a failure of path (the command, e.g. "FCALL mapq1_claim") and arms
 * ev to try again after the backoff; a cause not seen since the path last
 * worked is logged once. A permanent cause (NOPERM: the Redis user lacks a
 * permission) is an error an operator must fix; an agent is a daemon, so it
 * keeps trying, at the longest delay, and works again once it is fixed.
 */
void
agent_retry_later(struct mapq_retry *r, struct event *ev, const char *path,
                  const char *text)
{
    bool permanent = mapq_retry_classify(text) == MAPQ_RETRY_PERMANENT;
    struct timeval tv;
    int delay_ms;

    if (mapq_retry_fail(r, text, &delay_ms)) {
        if (permanent)
            mapq_log(MAPQ_LOG_ERROR,
                     "%s refused by redis: %s (this does not clear by "
                     "itself: fix the redis user or server; retrying every "
                     "%d ms)",
                     path, text, r->max_ms);
        else
            mapq_log(MAPQ_LOG_WARN, "%s failed, retrying with backoff: %s",
                     path, text);
    }
    if (permanent)
        delay_ms = r->max_ms;
    mapq_log(MAPQ_LOG_DEBUG, "%s failed (%u in a row), next try %s%d ms: %s",
             path, r->failures, ev != NULL ? "in " : "on its tick, not ",
             delay_ms, text);
    if (ev != NULL) {
        agent_ms_to_tv(delay_ms, &tv);
        evtimer_add(ev, &tv);
    }
}

void
agent_retry_done(struct mapq_retry *r, const char *path)
{
    if (mapq_retry_ok(r))
        mapq_log(MAPQ_LOG_INFO, "%s works again after %lu failures (%s)", path,
                 r->count, r->code);
}
