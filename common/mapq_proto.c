/*
 * mapq_proto.c - phase names, the split of a node's open subtasks between
 * RUNNING and QUEUED, and ref parsing.
 */
#include "mapq_proto.h"

#include <stdlib.h>
#include <string.h>

static const char *const phase_names[MAPQ_PHASE_COUNT] = {
    "QUEUED",    "RUNNING", "RETRYING",  "SUCCEEDED", "CACHED",
    "RECOVERED", "FAILED",  "TIMED_OUT", "ABORTED"};

const char *
mapq_phase_name(int phase)
{
    if (phase < 0 || phase >= MAPQ_PHASE_COUNT)
        return "UNKNOWN";
    return phase_names[phase];
}

void
mapq_phase_split(uint64_t *counts, uint64_t total, int64_t held)
{
    uint64_t ended = counts[MAPQ_PHASE_RETRYING], open;
    int ph;

    for (ph = MAPQ_PHASE_SUCCEEDED; ph < MAPQ_PHASE_COUNT; ph++)
        ended += counts[ph];
    open = ended < total ? total - ended : 0;
    counts[MAPQ_PHASE_RUNNING] = held <= 0               ? 0
                                 : (uint64_t)held < open ? (uint64_t)held
                                                         : open;
    counts[MAPQ_PHASE_QUEUED] = open - counts[MAPQ_PHASE_RUNNING];
}

const char *
mapq_queue_class(bool interruptible, bool plugin)
{
    if (interruptible)
        return plugin ? "ip" : "ic";
    return plugin ? "np" : "nc";
}

/*
 * Copies the next field into out (cap bytes): up to the next '/', which
 * must follow unless last, and must not follow when last.
 */
static int
next_field(const char **p, const char *end, char *out, size_t cap, bool last)
{
    const char *q = *p;
    size_t n;

    while (q < end && *q != '/')
        q++;
    n = (size_t)(q - *p);
    if (n == 0 || n >= cap || (q < end) == last)
        return -1;
    memcpy(out, *p, n);
    out[n] = '\0';
    *p = last ? q : q + 1;
    return 0;
}

/* Reads a decimal counter, which a '/' must follow: digits only, no
 * leading zero, at most max. Read in place, digit by digit: every ref an
 * agent claims or finishes goes through here five times. */
static int
next_number(const char **p, const char *end, uint64_t max, uint64_t *out)
{
    const char *q = *p;
    uint64_t v = 0, d;

    if (q == end || *q == '/' || (*q == '0' && q + 1 < end && q[1] != '/'))
        return -1;
    for (; q < end && *q != '/'; q++) {
        if (*q < '0' || *q > '9')
            return -1;
        d = (uint64_t)(*q - '0');
        if (v > (max - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    if (q == end)
        return -1;
    *p = q + 1;
    *out = v;
    return 0;
}

static bool
valid_exec(const char *exec)
{
    return strlen(exec) == MAPQ_EXEC_ID_LEN &&
           strspn(exec, "0123456789abcdef") == MAPQ_EXEC_ID_LEN;
}

static bool
valid_cls(const char *cls)
{
    return strcmp(cls, "nc") == 0 || strcmp(cls, "np") == 0 ||
           strcmp(cls, "ic") == 0 || strcmp(cls, "ip") == 0;
}

enum mapq_err
mapq_ref_parse(const char *s, size_t len, struct mapq_ref *ref)
{
    const char *p, *end;
    uint64_t k, u, sy, in;

    /* An empty str from msgpack may come with a NULL pointer. */
    if (len == 0 || len >= MAPQ_REF_MAX || memchr(s, '\0', len) != NULL)
        return MAPQ_EPROTO;
    p = s;
    end = s + len;
    if (next_field(&p, end, ref->exec, sizeof(ref->exec), false) != 0 ||
        !valid_exec(ref->exec) || next_number(&p, end, UINT32_MAX, &k) != 0 ||
        next_number(&p, end, UINT64_MAX, &ref->index) != 0 ||
        next_number(&p, end, UINT32_MAX, &u) != 0 ||
        next_number(&p, end, UINT32_MAX, &sy) != 0 ||
        next_number(&p, end, UINT32_MAX, &in) != 0 ||
        next_field(&p, end, ref->queue, sizeof(ref->queue), false) != 0 ||
        next_field(&p, end, ref->cls, sizeof(ref->cls), true) != 0 ||
        !valid_cls(ref->cls))
        return MAPQ_EPROTO;
    ref->k = (uint32_t)k;
    ref->u = (uint32_t)u;
    ref->s = (uint32_t)sy;
    ref->i = (uint32_t)in;
    return MAPQ_OK;
}

uint32_t
mapq_ref_attempt(const struct mapq_ref *ref)
{
    return ref->u + ref->s + 1;
}
