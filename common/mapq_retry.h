/*
 * mapq_retry.h - retrying Redis calls: capped, jittered exponential
 * backoff, and what an error reply means.
 *
 * Every call a daemon makes to Redis can fail with an error reply (OOM
 * under maxmemory, BUSY behind a slow script, LOADING after a restart,
 * READONLY on a demoted primary, NOPERM for an ACL user) or with no reply
 * at all (timeout, lost connection). The caller keeps one struct
 * mapq_retry per path (claim, record, renew, push, ...): it asks it how
 * long to wait before trying again, and it tells it whether the cause is
 * new (log it) or has cleared (log that), so that each distinct cause is
 * logged once, and once more when it clears, however often it recurs.
 * Nothing here logs, sleeps or touches a socket.
 */
#ifndef MAPQ_RETRY_H
#define MAPQ_RETRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAPQ_RETRY_CAUSE_LEN 256

/* Embedded; mapq_retry_init() before use, nothing to release. */
struct mapq_retry {
    int min_ms;        /* first delay */
    int max_ms;        /* cap on every delay */
    unsigned failures; /* in a row, since the last success */
    uint64_t rng;      /* jitter state */
    bool active;       /* a cause is current: failing since it began */
    char code[32];     /* the last cause's code ("OOM", "BUSY", ...) */
    char cause[MAPQ_RETRY_CAUSE_LEN]; /* its whole text */
    unsigned long count; /* failures since that cause was first seen */
};

enum mapq_retry_kind {
    MAPQ_RETRY_TRANSIENT, /* wait and try again: it clears by itself */
    MAPQ_RETRY_PERMANENT, /* a setting is wrong: trying again won't help
                             until an operator changes it */
};

/* Sets up r with delays growing from min_ms to max_ms (min_ms >= 1). */
void mapq_retry_init(struct mapq_retry *r, int min_ms, int max_ms);

/*
 * Records a failure whose cause is text (an error reply's text, or why
 * there was no reply; NULL reads as "no reply"). Returns true when the
 * cause differs from the current one, by its code (the reply's first word,
 * and for Redis's generic ERR the three words after it):
 * the caller logs it then, and only then. *delay_ms gets the wait before
 * the next try: drawn evenly from [d/2, d], d = min(max_ms, min_ms *
 * 2^(failures-1)), so that a fleet of agents does not retry in step.
 */
bool mapq_retry_fail(struct mapq_retry *r, const char *text, int *delay_ms);

/*
 * Records a success. Returns true when a cause was current: the caller
 * logs that it cleared (r->cause and r->count still hold it until the
 * next call). The next failure starts again from min_ms.
 */
bool mapq_retry_ok(struct mapq_retry *r);

/* Whether an error reply's text names a transient or a permanent cause:
 * NOPERM, NOAUTH, WRONGPASS and unknown-command errors are permanent;
 * OOM, BUSY, LOADING, READONLY, MASTERDOWN, MISCONF, TRYAGAIN, a missing
 * reply and the rest are transient. text may be NULL (no reply). */
enum mapq_retry_kind mapq_retry_classify(const char *text);

#endif
