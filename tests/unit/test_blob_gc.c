/*
 * test_blob_gc.c - the holds and sweeps of the embedded store's blobs, on
 * a real redis-server (fixture_redis.c): mapq1_blob_hold's answers and
 * scores, the functions that copy a result record (field b) holding its
 * blobs for the new holder (mapq1_done's cache write, a cache hit,
 * mapq1_reserve's cached answer, mapq1_push_recover), and
 * mapq1_blob_sweep: what it deletes, what it keeps and when it looks
 * again, and its paging over every blob (mapq gc).
 */
#include "mapq_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_redis.h"
#include "mapq_blob.h"

/* Two blobs: their raw SHA-256 is 32 x 'A' or 32 x 'B' (no NUL in a
 * record that names them), their hex the same bytes spelled out. */
#define HEX_A "4141414141414141414141414141414141414141414141414141414141414141"
#define HEX_B "4242424242424242424242424242424242424242424242424242424242424242"
#define HEX_C "4343434343434343434343434343434343434343434343434343434343434343"
#define HEX_D "4444444444444444444444444444444444444444444444444444444444444444"
#define RAW_A "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
/* {"p": 3, "b": <bin 32: A>, "v": nil}: a success that names blob A. */
#define REC_A           \
    "\x83\xa1p\x03\xa1" \
    "b\xc4\x20" RAW_A "\xa1v\xc0"
#define OTHER   "fedcba987654"
#define HOUR_MS 3600000LL

static int
setup(void **state)
{
    return fx_setup(state);
}

static int
teardown(void **state)
{
    return fx_teardown(state);
}

/* "bh:<hex>" of a blob, as fx_key() takes it. */
static const char *
bh(const char *hex)
{
    static char k[2][80];
    static int next;

    next = (next + 1) % 2;
    snprintf(k[next], sizeof(k[next]), "bh:%s", hex);
    return k[next];
}

/* The score of member in the sorted set key suffix, or -1 when absent. */
static long long
score(struct fx *f, const char *suffix, const char *member)
{
    redisReply *r = fx_run(f, "ZSCORE", fx_key(f, suffix), member, NULL);

    return r->type == REDIS_REPLY_STRING ? atoll(r->str) : -1;
}

static long long
now_ms(struct fx *f)
{
    redisReply *r = fx_run(f, "TIME", NULL);

    return atoll(r->element[0]->str) * 1000 + atoll(r->element[1]->str) / 1000;
}

/* mapq1_blob_sweep; fills v with its four answers. */
static void
sweep(struct fx *f, const char *all, const char *start, const char *count,
      long long v[4])
{
    redisReply *r = fx_run(f, "FCALL", "mapq1_blob_sweep", "0", f->ns, all,
                           start, count, NULL);
    size_t i;

    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 4);
    for (i = 0; i < 4; i++)
        v[i] = r->element[i]->integer;
}

/* mapq1_blob_hold of holder, grace and one hash must be an error. */
static void
refused(struct fx *f, const char *holder, const char *grace, const char *hex)
{
    redisReply *r = redisCommand(f->c, "FCALL mapq1_blob_hold 0 %s %s %s %s",
                                 f->ns, holder, grace, hex);

    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    freeReplyObject(r);
}

static void
test_blob_gc_hold_answers_and_scores(void **state)
{
    struct fx *f = *state;
    long long t0 = now_ms(f);

    fx_run(f, "SET", fx_key(f, "blob:" HEX_A), "a", NULL);
    fx_run(f, "FCALL", "mapq1_blob_hold", "0", f->ns, "x:" EXEC, "0", HEX_A,
           HEX_B, NULL);
    /* A is there, B is not (yet). */
    assert_string_equal(f->reply->str, "10");
    assert_int_equal(score(f, bh(HEX_A), "x:" EXEC), 0);
    assert_int_equal(score(f, bh(HEX_B), "x:" EXEC), 0);
    /* Both queued for the sweep an hour on. */
    assert_in_range(score(f, "bx", HEX_A), t0 + HOUR_MS, t0 + HOUR_MS + 5000);
    /* A grace scores the hold; the queue's time stays (NX). */
    fx_run(f, "ZADD", fx_key(f, "bx"), "7", HEX_A, NULL);
    fx_run(f, "FCALL", "mapq1_blob_hold", "0", f->ns, "x:" OTHER, "60000",
           HEX_A, NULL);
    assert_in_range(score(f, bh(HEX_A), "x:" OTHER), t0 + 60000, t0 + 65000);
    assert_int_equal(score(f, "bx", HEX_A), 7);
    /* Refused: a holder of no known kind, a bad hash, a bad grace. */
    refused(f, "q:x", "0", HEX_A);
    refused(f, "x:" EXEC, "0", "abc");
    refused(f, "x:" EXEC, "-1", HEX_A);
}

/* Due blobs: one no live holder holds goes (with its bytes); one held by
 * a key with a TTL is looked at again when that expires; one held by a
 * key without is looked at in an hour; one in its grace when it ends. */
static void
test_blob_gc_sweep_deletes_the_unheld_and_reschedules_the_rest(void **state)
{
    struct fx *f = *state;
    static const char *const hexes[] = {HEX_A, HEX_B, HEX_C, HEX_D};
    long long v[4], t0;
    size_t i;

    for (i = 0; i < 4; i++) {
        char k[80];

        snprintf(k, sizeof(k), "blob:%s", hexes[i]);
        fx_run(f, "SET", fx_key(f, k), "12345", NULL);
    }
    fx_exec_record(f, EXEC);
    fx_exec_record(f, OTHER);
    fx_run(f, "PEXPIRE", fx_key(f, "x:" OTHER), "600000", NULL);
    /* A: an execution that is gone; B: one with a retention; C: one that
     * runs; D: one still to be created, within its grace. */
    fx_run(f, "FCALL", "mapq1_blob_hold", "0", f->ns, "x:000000000000", "0",
           hexes[0], NULL);
    fx_run(f, "FCALL", "mapq1_blob_hold", "0", f->ns, "x:" OTHER, "0", hexes[1],
           NULL);
    fx_run(f, "FCALL", "mapq1_blob_hold", "0", f->ns, "x:" EXEC, "0", hexes[2],
           NULL);
    fx_run(f, "FCALL", "mapq1_blob_hold", "0", f->ns, "x:111111111111",
           "7200000", hexes[3], NULL);
    for (i = 0; i < 4; i++)
        fx_run(f, "ZADD", fx_key(f, "bx"), "0", hexes[i], NULL);
    t0 = now_ms(f);
    sweep(f, "0", "0", "100", v);
    assert_int_equal(v[0], 4);
    assert_int_equal(v[1], 1);
    assert_int_equal(v[2], 5);
    assert_int_equal(v[3], -1);
    /* A is gone, with its holders and its place in the queue. */
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "blob:" HEX_A),
                                fx_key(f, bh(HEX_A)), NULL),
                     0);
    assert_int_equal(score(f, "bx", HEX_A), -1);
    /* B: in an hour (its holder's 10 minutes are sooner). C: an hour. */
    assert_in_range(score(f, "bx", hexes[1]), t0 + HOUR_MS,
                    t0 + HOUR_MS + 5000);
    assert_in_range(score(f, "bx", hexes[2]), t0 + HOUR_MS,
                    t0 + HOUR_MS + 5000);
    /* D: when its grace ends, two hours on. */
    assert_in_range(score(f, "bx", hexes[3]), t0 + 2 * HOUR_MS - 5000,
                    t0 + 2 * HOUR_MS + 5000);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "blob:" HEX_D), NULL),
                     1);
    /* Nothing is due any more. */
    sweep(f, "0", "0", "100", v);
    assert_int_equal(v[0], 0);
    /* Its execution removed, C goes at the next sweep of everything. */
    fx_run(f, "DEL", fx_key(f, "x:" EXEC), NULL);
    sweep(f, "1", "0", "100", v);
    assert_int_equal(v[0], 3);
    assert_int_equal(v[1], 1);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "blob:" HEX_C), NULL),
                     0);
}

/* mapq gc's walk: by rank, count at a time, on past what it keeps. */
static void
test_blob_gc_sweep_of_everything_pages(void **state)
{
    struct fx *f = *state;
    long long v[4], seen = 0, gone = 0;
    char start[24] = "0";
    int i, calls = 0;

    fx_exec_record(f, EXEC);
    for (i = 0; i < 7; i++) {
        char hex[MAPQ_BLOB_HEX_LEN + 1], k[80];

        memset(hex, 'a' + (i % 6), MAPQ_BLOB_HEX_LEN);
        hex[MAPQ_BLOB_HEX_LEN] = '\0';
        hex[0] = (char)('0' + i);
        snprintf(k, sizeof(k), "blob:%s", hex);
        fx_run(f, "SET", fx_key(f, k), "x", NULL);
        /* Every third is held by a live execution. */
        fx_run(f, "FCALL", "mapq1_blob_hold", "0", f->ns,
               i % 3 == 0 ? "x:" EXEC : "x:000000000000", "0", hex, NULL);
    }
    do {
        sweep(f, "1", start, "2", v);
        seen += v[0];
        gone += v[1];
        snprintf(start, sizeof(start), "%lld", v[3]);
        calls++;
    } while (v[3] >= 0 && calls < 20);
    assert_int_equal(seen, 7);
    assert_int_equal(gone, 4);
    assert_int_equal(fx_integer(f, "ZCARD", fx_key(f, "bx"), NULL), 3);
}

/* mapq1_done: a success that names blobs holds them for its execution
 * and, when it goes to the cache, for the entry; one whose blob is gone
 * is recorded but not cached. A cache hit, a reservation's cached answer
 * and a recovery hold them for the execution that takes the record. */
static void
test_blob_gc_copies_of_a_record_hold_its_blobs(void **state)
{
    struct fx *f = *state;
    static const char key[] = "KKKKKKKKKKKKKKKK", key2[] = "LLLLLLLLLLLLLLLL";
    static const char ckey[] = "c:t:4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b";
    static const char ckey2[] = "c:t:4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c";
    char ref[128], ref2[128];

    fx_run(f, "SET", fx_key(f, "blob:" HEX_A), "a", NULL);
    fx_exec_record(f, EXEC);
    fx_run(f, "FCALL", "mapq1_push_cached", "0", f->ns, EXEC, "0", "q", "np",
           "t", "0", "0", key, "b0", "1", key2, "b1", NULL);
    assert_string_equal(f->reply->str, "qq");
    assert_int_equal(fx_claim(f, "60000", "0", "2", "0"), 2);
    /* Both read before the next call frees the claim's reply. */
    fx_claimed(f, 0, false, ref, sizeof(ref));
    fx_claimed(f, 1, false, ref2, sizeof(ref2));
    assert_int_equal(fx_done1(f, ref, "T", key, REC_A, "c:0:t"), 0);
    assert_int_equal(score(f, bh(HEX_A), "x:" EXEC), 0);
    assert_int_equal(score(f, bh(HEX_A), ckey), 0);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, ckey), NULL), 1);
    /* Blob A gone before the second records it: not cached. */
    fx_run(f, "DEL", fx_key(f, "blob:" HEX_A), NULL);
    assert_int_equal(fx_done1(f, ref2, "T", key2, REC_A, "c:0:t"), 0);
    assert_int_equal(
        fx_integer(f, "HEXISTS", fx_key(f, "r:" EXEC ":0"), key2, NULL), 1);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, ckey2), NULL), 0);
    fx_run(f, "SET", fx_key(f, "blob:" HEX_A), "a", NULL);

    /* A cache hit in another execution. */
    fx_exec_record(f, OTHER);
    fx_run(f, "FCALL", "mapq1_push_cached", "0", f->ns, OTHER, "0", "q", "np",
           "t", "0", "0", key, "b0", NULL);
    assert_string_equal(f->reply->str, "d");
    assert_int_equal(score(f, bh(HEX_A), "x:" OTHER), 0);

    /* A reservation that finds the entry. */
    fx_run(f, "ZREM", fx_key(f, bh(HEX_A)), "x:" OTHER, NULL);
    fx_run(f, "HSET", fx_key(f, "lease:agent-1"), OTHER "/1/0/0/0/0/q/nc",
           "99999999999999", NULL);
    fx_run(f, "FCALL", "mapq1_reserve", "0", f->ns, OTHER "/1/0/0/0/0/q/nc",
           key, "60000", "t", "agent-1", NULL);
    assert_string_equal(f->reply->element[0]->str, "cached");
    assert_int_equal(score(f, bh(HEX_A), "x:" OTHER), 0);

    /* A recovery takes EXEC's success. */
    fx_exec_record(f, "222222222222");
    fx_run(f, "FCALL", "mapq1_push_recover", "0", f->ns, "222222222222", "0",
           "q", "np", EXEC, "0", key, key, "b0", NULL);
    assert_int_equal(f->reply->integer, 0);
    assert_int_equal(score(f, bh(HEX_A), "x:222222222222"), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_blob_gc_hold_answers_and_scores),
        T(test_blob_gc_sweep_deletes_the_unheld_and_reschedules_the_rest),
        T(test_blob_gc_sweep_of_everything_pages),
        T(test_blob_gc_copies_of_a_record_hold_its_blobs),
    };

    return cmocka_run_group_tests_name("blob_gc", tests, fx_group_setup,
                                       fx_group_teardown);
}
