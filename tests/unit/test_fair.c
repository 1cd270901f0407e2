/*
 * test_fair.c - how executions share a queue (common/mapq_functions.lua,
 * enqueue and pop): each has its own ready list, and claims serve the
 * lowest pass of P:qx:<queue>:<cls>, advanced by 1000 / priority per
 * subtask, against a real redis-server (fixture_redis.c).
 */
#include "mapq_test.h"

#include <stdio.h>
#include <string.h>

#include "fixture_redis.h"

#define EXEC_A "aaaaaaaaaaaa"
#define EXEC_B "bbbbbbbbbbbb"

/* Claims up to n command subtasks; returns the executions they belong to,
 * one letter each ('a' or 'b'), in claim order. */
static const char *
claim_execs(struct fx *f, const char *n)
{
    static char out[64];
    char ref[128];
    uint32_t i, got;

    got = fx_claim(f, "60000", n, "0", "0");
    assert_true(got < sizeof(out));
    for (i = 0; i < got; i++) {
        fx_claimed(f, i, false, ref, sizeof(ref));
        out[i] = ref[0];
    }
    out[got] = '\0';
    return out;
}

static void
test_fair_late_small_run_takes_turns(void **state)
{
    struct fx *f = *state;
    char seq[16] = "";
    int i;

    fx_push_exec(f, EXEC_A, 20, "nc");
    assert_string_equal(claim_execs(f, "1"), "a");
    /* B arrives while A has 19 waiting: it joins level with A. */
    fx_push_exec(f, EXEC_B, 2, "nc");
    assert_int_equal(fx_integer(f, "ZCARD", fx_key(f, "qx:q:nc"), NULL), 2);
    for (i = 0; i < 6; i++)
        strcat(seq, claim_execs(f, "1"));
    assert_string_equal(seq, "ababaa");
    /* B's list is empty, so B left the turns; A waits alone. */
    assert_int_equal(fx_integer(f, "ZCARD", fx_key(f, "qx:q:nc"), NULL), 1);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "q:q:nc:" EXEC_B), NULL),
                     0);
}

static void
test_fair_one_claim_spreads_over_executions(void **state)
{
    struct fx *f = *state;
    const char *got;

    fx_push_exec(f, EXEC_A, 10, "nc");
    fx_push_exec(f, EXEC_B, 10, "nc");
    got = claim_execs(f, "6");
    assert_int_equal(strlen(got), 6);
    /* Bodies are read per execution, so refs come grouped: 3 of each. */
    assert_string_equal(got, "aaabbb");
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "q:q:nc:" EXEC_A), NULL),
                     7);
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "q:q:nc:" EXEC_B), NULL),
                     7);
}

static void
test_fair_priority_weights_turns(void **state)
{
    struct fx *f = *state;
    int i, a = 0, b = 0;
    const char *got;

    fx_run(f, "HSET", fx_key(f, "x:" EXEC_A), "priority", "10", NULL);
    fx_run(f, "HSET", fx_key(f, "x:" EXEC_B), "priority", "30", NULL);
    fx_push_exec(f, EXEC_A, 40, "nc");
    fx_push_exec(f, EXEC_B, 40, "nc");
    for (i = 0; i < 40; i++) {
        got = claim_execs(f, "1");
        assert_int_equal(strlen(got), 1);
        if (got[0] == 'a')
            a++;
        else
            b++;
    }
    /* Three turns of B for one of A: 10 and 30, give or take a tie. */
    assert_in_range(a, 9, 11);
    assert_int_equal(a + b, 40);
}

static void
test_fair_out_of_range_priority_is_the_default(void **state)
{
    struct fx *f = *state;
    char seq[8] = "";
    int i;

    fx_run(f, "HSET", fx_key(f, "x:" EXEC_A), "priority", "100000", NULL);
    fx_push_exec(f, EXEC_A, 4, "nc");
    fx_push_exec(f, EXEC_B, 4, "nc");
    assert_string_equal(
        fx_run(f, "ZRANGE", fx_key(f, "qx:q:nc"), "0", "0", NULL)
            ->element[0]
            ->str,
        EXEC_A "/10");
    for (i = 0; i < 4; i++)
        strcat(seq, claim_execs(f, "1"));
    assert_string_equal(seq, "abab");
}

static void
test_fair_bell_rings_only_while_work_is_left(void **state)
{
    struct fx *f = *state;

    fx_push_exec(f, EXEC_A, 2, "nc");
    fx_push_exec(f, EXEC_B, 1, "nc");
    fx_run(f, "DEL", fx_key(f, "bell:q:nc"), NULL);
    assert_string_equal(claim_execs(f, "2"), "ab");
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "bell:q:nc"), NULL), 1);
    fx_run(f, "DEL", fx_key(f, "bell:q:nc"), NULL);
    assert_string_equal(claim_execs(f, "2"), "a");
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "bell:q:nc"), NULL), 0);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "qx:q:nc"), NULL), 0);
}

static void
test_fair_foreign_turn_is_drained_and_dropped(void **state)
{
    struct fx *f = *state;
    char ref[128];

    /* Someone else's member in the turns, and its list of junk. */
    fx_run(f, "ZADD", fx_key(f, "qx:q:nc"), "0", "garbage", NULL);
    fx_run(f, "RPUSH", fx_key(f, "q:q:nc:garbage"), "junk", NULL);
    assert_int_equal(fx_claim(f, "60000", "4", "0", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_string_equal(ref, "junk");
    assert_int_equal(fx_leased(f), 0);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "qx:q:nc"), NULL), 0);
    /* A member whose list is gone is dropped without a claim. */
    fx_run(f, "ZADD", fx_key(f, "qx:q:nc"), "0", EXEC_B "/10", NULL);
    assert_int_equal(fx_claim(f, "60000", "4", "0", "0"), 0);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "qx:q:nc"), NULL), 0);
}

/* mapq1_queues (metrics): the refs ready per queue and class, summed over
 * the executions waiting there, the refs leased, and the queues of live
 * agents with live_ms > 0. */
static void
test_fair_queue_lengths_for_metrics(void **state)
{
    struct fx *f = *state;
    const redisReply *r, *row;

    fx_push_exec(f, EXEC_A, 5, "nc");
    fx_push_exec(f, EXEC_B, 3, "nc");
    fx_push_exec(f, EXEC_B, 2, "ip");
    assert_int_equal(strlen(claim_execs(f, "2")), 2);
    r = fx_run(f, "FCALL_RO", "mapq1_queues", "0", f->ns, "0", "q", "empty",
               NULL);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_int_equal(r->elements, 4);
    assert_int_equal(r->element[0]->integer, 2); /* leased */
    assert_int_equal(r->element[1]->integer, 0); /* delayed */
    row = r->element[2];
    assert_int_equal(row->elements, 5);
    assert_string_equal(row->element[0]->str, "q");
    assert_int_equal(row->element[1]->integer, 6); /* nc: 5 + 3 - 2 */
    assert_int_equal(row->element[2]->integer, 0); /* np */
    assert_int_equal(row->element[3]->integer, 0); /* ic */
    assert_int_equal(row->element[4]->integer, 2); /* ip */
    row = r->element[3];
    assert_string_equal(row->element[0]->str, "empty");
    assert_int_equal(row->element[1]->integer, 0);
    /* agent-1 claimed, so it is live; it registered no queues. */
    fx_run(f, "HSET", fx_key(f, "agent:agent-1"), "queues", "gpu,q", NULL);
    r = fx_run(f, "FCALL_RO", "mapq1_queues", "0", f->ns, "60000", NULL);
    assert_int_equal(r->elements, 4);
    assert_string_equal(r->element[2]->element[0]->str, "gpu");
    assert_string_equal(r->element[3]->element[0]->str, "q");
    assert_int_equal(r->element[3]->element[1]->integer, 6);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_fair_late_small_run_takes_turns),
        T(test_fair_one_claim_spreads_over_executions),
        T(test_fair_priority_weights_turns),
        T(test_fair_out_of_range_priority_is_the_default),
        T(test_fair_bell_rings_only_while_work_is_left),
        T(test_fair_foreign_turn_is_drained_and_dropped),
        T(test_fair_queue_lengths_for_metrics),
    };
#undef T

    return cmocka_run_group_tests_name("fair", tests, fx_group_setup,
                                       fx_group_teardown);
}
