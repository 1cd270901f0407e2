/*
 * agent_live.c - the stderr of running commands that someone follows
 * (mapq logs -f): what a followed attempt wrote since the last send is
 * appended to P:live:<exec>:<k>/<index>/<attempt>, which expires
 * LIVE_TTL_MS after the last append.
 *
 * A leaf: the controller calls it when a renewal says a job is followed
 * (while it runs) and when that job's command ends (the rest). Owns only
 * its requests; job->live_sent is the offset sent so far.
 */
#include <inttypes.h>
#include <stdlib.h>

#include "agent_int.h"
#include "mapq_keys.h"
#include "mapq_log.h"

#define LIVE_TTL_MS 60000

static void
live_cb(redisReply *reply, const char *why, void *arg)
{
    (void)arg;
    /* Best effort: a follower sees the rest in the attempt's log. */
    if (reply == NULL || reply->type == REDIS_REPLY_ERROR)
        mapq_log(MAPQ_LOG_DEBUG, "live stderr not sent: %s",
                 reply ? reply->str : why);
}

/* Appends n bytes (and a note of skipped ones before them) to the live
 * key of job's attempt. */
static void
append(struct job *job, const char *p, size_t n, uint64_t skipped)
{
    struct mapq_agent *a = job->a;
    struct mapq_argv cmd;
    char *key = mapq_key_live(a->ns, job->r.exec, job->r.k, job->r.index,
                              mapq_ref_attempt(&job->r));

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "APPEND");
    mapq_argv_add(&cmd, key);
    if (skipped > 0) {
        char note[64];
        int len =
            snprintf(note, sizeof(note),
                     "\n[... %" PRIu64 " bytes not shown ...]\n", skipped);

        mapq_argv_addlen(&cmd, note, (size_t)len);
        mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, live_cb, NULL, cmd.argc,
                           cmd.argv, cmd.lens);
        mapq_argv_reset(&cmd);
        mapq_argv_add(&cmd, "APPEND");
        mapq_argv_add(&cmd, key);
    }
    mapq_argv_addlen(&cmd, p, n);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, live_cb, NULL, cmd.argc,
                       cmd.argv, cmd.lens);
    mapq_argv_reset(&cmd);
    mapq_argv_add(&cmd, "PEXPIRE");
    mapq_argv_add(&cmd, key);
    mapq_argv_addf(&cmd, "%d", LIVE_TTL_MS);
    mapq_redis_command(a->cmd, CALL_TIMEOUT_MS, live_cb, NULL, cmd.argc,
                       cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
    free(key);
}

void
agent_live_send(struct job *job, const struct mapq_cmd_result *res)
{
    const char *p = "";
    size_t n = 0;
    uint64_t skipped = 0;

    job->live_followed = true;
    if (res != NULL) {
        /* The end: the tail holds the last stderr_tail.len bytes. */
        uint64_t held_from = res->stderr_total - res->stderr_tail.len;

        skipped = job->live_sent < held_from ? held_from - job->live_sent : 0;
        n = (size_t)(res->stderr_total - job->live_sent - skipped);
        p = res->stderr_tail.data + (res->stderr_tail.len - n);
    } else if (job->cmd != NULL) {
        mapq_cmd_stderr_since(job->cmd, job->live_sent, &p, &n, &skipped);
    }
    /* Once sent, an empty key tells the follower the attempt started. */
    if (n == 0 && skipped == 0 && job->live_sent > 0)
        return;
    append(job, p, n, skipped);
    job->live_sent += skipped + n;
}
