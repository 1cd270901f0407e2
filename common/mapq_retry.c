/*
 * mapq_retry.c - backoff and error-reply causes for retried Redis calls.
 *
 * Owns only arithmetic on a caller's struct: no clock, no log, no I/O.
 */
#include "mapq_retry.h"

#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#define NO_REPLY "no reply"

static uint64_t
next_rand(uint64_t *s)
{
    /* xorshift64*: jitter only, not for secrets. */
    uint64_t x = *s;

    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void
mapq_retry_init(struct mapq_retry *r, int min_ms, int max_ms)
{
    struct timeval tv;

    memset(r, 0, sizeof(*r));
    r->min_ms = min_ms > 0 ? min_ms : 1;
    r->max_ms = max_ms > r->min_ms ? max_ms : r->min_ms;
    gettimeofday(&tv, NULL);
    r->rng = ((uint64_t)tv.tv_sec << 20) ^ (uint64_t)tv.tv_usec ^
             ((uint64_t)getpid() << 40) ^ (uint64_t)(uintptr_t)r;
    if (r->rng == 0)
        r->rng = 0x9E3779B97F4A7C15ULL;
}

/* Words of a generic "ERR ..." reply that name its cause. */
#define ERR_WORDS 4

/*
 * The cause's code: the reply's first word (OOM, BUSY, NOPERM, ...), or
 * the whole of a short reason that has no reply behind it. Redis gives
 * many unrelated errors the generic code ERR, so for those the next words
 * count too ("ERR The user executing"), cut to fit.
 */
static void
cause_code(const char *text, char *code, size_t len)
{
    size_t n = strcspn(text, " \t\r\n");
    int words = 1;

    if (n == 3 && memcmp(text, "ERR", 3) == 0)
        while (words < ERR_WORDS && text[n] == ' ' && text[n + 1] != '\0' &&
               text[n + 1] != ' ') {
            n += 1 + strcspn(text + n + 1, " \t\r\n");
            words++;
        }

    if (n >= len)
        n = len - 1;
    memcpy(code, text, n);
    code[n] = '\0';
}

bool
mapq_retry_fail(struct mapq_retry *r, const char *text, int *delay_ms)
{
    char code[sizeof(r->code)];
    int64_t d = r->min_ms;
    unsigned i;
    bool fresh;

    if (text == NULL || *text == '\0')
        text = NO_REPLY;
    cause_code(text, code, sizeof(code));
    fresh = !r->active || strcmp(code, r->code) != 0;
    r->active = true;
    if (fresh) {
        memcpy(r->code, code, sizeof(code));
        strncpy(r->cause, text, sizeof(r->cause) - 1);
        r->cause[sizeof(r->cause) - 1] = '\0';
        r->count = 0;
    }
    r->count++;
    for (i = 0; i < r->failures && d < r->max_ms; i++)
        d *= 2;
    if (d > r->max_ms)
        d = r->max_ms;
    r->failures++;
    if (delay_ms != NULL)
        *delay_ms =
            (int)(d - (int64_t)(next_rand(&r->rng) % (uint64_t)(d / 2 + 1)));
    return fresh;
}

bool
mapq_retry_ok(struct mapq_retry *r)
{
    bool had = r->active;

    /* cause and count stay for the caller's "cleared" line. */
    r->active = false;
    r->failures = 0;
    return had;
}

enum mapq_retry_kind
mapq_retry_classify(const char *text)
{
    static const char *const permanent[] = {
        "NOPERM",
        "NOAUTH",
        "WRONGPASS",
        "ERR unknown command",
        /* Redis 7.0's NOPERM inside a function or script. */
        "ERR The user executing the script can't",
    };
    size_t i;

    if (text == NULL)
        return MAPQ_RETRY_TRANSIENT;
    for (i = 0; i < sizeof(permanent) / sizeof(permanent[0]); i++)
        if (strncmp(text, permanent[i], strlen(permanent[i])) == 0)
            return MAPQ_RETRY_PERMANENT;
    return MAPQ_RETRY_TRANSIENT;
}
