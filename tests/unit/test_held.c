/*
 * test_held.c - the held counts of the mapq1 function library
 * (common/mapq_functions.lua) against a real redis-server: field h:<k> of
 * P:x:<exec>, the subtasks of node k that agents hold (leased in their
 * P:lease:<agent>), goes up with every lease a claim or a step hands out and
 * down with every lease that ends: an attempt finished or handed back, a
 * ref parked for a cache_serialize reservation, a lease reaped. A refused
 * attempt changes nothing, and a call writes each node's count once, not
 * once per subtask. mapq status and the driver's progress read it as
 * RUNNING.
 *
 * fixture_redis.c starts the group's redis-server and gives each test a
 * namespace of its own; test_step_groups.c covers groups (flag g).
 */
#include "mapq_test.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_redis.h"

/* The held count of node k of exec: 0 while the field is absent. */
static long long
held(struct fx *f, const char *exec, const char *k)
{
    char key[64], field[32];

    snprintf(key, sizeof(key), "x:%s", exec);
    snprintf(field, sizeof(field), "h:%s", k);
    fx_run(f, "HGET", fx_key(f, key), field, NULL);
    if (f->reply->type == REDIS_REPLY_NIL)
        return 0;
    assert_int_equal(f->reply->type, REDIS_REPLY_STRING);
    return strtoll(f->reply->str, NULL, 10);
}

/* Whether the held counts of EXEC's nodes 0 and 1 add up to the leases
 * agents hold (EXEC is the only execution of these tests that has any). */
static void
assert_held_is_leased(struct fx *f)
{
    assert_int_equal(held(f, EXEC, "0") + held(f, EXEC, "1"), fx_leased(f));
}

static void
test_held_claim_counts_per_node(void **state)
{
    struct fx *f = *state;

    fx_push(f, 3, "np");
    /* Node 1 of the same execution, on the same list. */
    fx_run(f, "FCALL", "mapq1_push", "0", f->ns, EXEC, "1", "q", "np", "0",
           "c0", "1", "c1", NULL);
    assert_int_equal(held(f, EXEC, "0"), 0);
    assert_int_equal(fx_claim(f, "60000", "0", "4", "0"), 4);
    assert_int_equal(held(f, EXEC, "0"), 3);
    assert_int_equal(held(f, EXEC, "1"), 1);
    assert_held_is_leased(f);
    /* A claim that finds nothing changes nothing. */
    assert_int_equal(fx_claim(f, "60000", "0", "0", "0"), 0);
    assert_int_equal(fx_claim(f, "60000", "0", "4", "0"), 1);
    assert_int_equal(held(f, EXEC, "1"), 2);
    assert_held_is_leased(f);
}

static void
test_held_done_lowers_it_refused_does_not(void **state)
{
    struct fx *f = *state;
    char r0[128], r1[128], r2[128];

    fx_push(f, 3, "np");
    assert_int_equal(fx_claim(f, "60000", "0", "3", "0"), 3);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_claimed(f, 1, false, r1, sizeof(r1));
    fx_claimed(f, 2, false, r2, sizeof(r2));
    assert_int_equal(held(f, EXEC, "0"), 3);
    /* A result recorded, a user retry queued, a system failure queued:
     * each lease ends. */
    assert_int_equal(fx_done1(f, r0, "T", "k0", "rec", ""), 0);
    assert_int_equal(held(f, EXEC, "0"), 2);
    assert_int_equal(fx_done1(f, r1, "U", "", "", "q/np"), 0);
    assert_int_equal(fx_done1(f, r2, "S", "", "", "q/np"), 0);
    assert_int_equal(held(f, EXEC, "0"), 0);
    /* The same attempts again are refused and count nothing. */
    assert_int_equal(fx_done1(f, r0, "T", "k0", "rec", ""), 1);
    assert_int_equal(fx_done1(f, r1, "U", "", "", "q/np"), 1);
    assert_int_equal(held(f, EXEC, "0"), 0);
    /* The retries are claimed again: held again. */
    assert_int_equal(fx_claim(f, "60000", "0", "5", "0"), 2);
    assert_int_equal(held(f, EXEC, "0"), 2);
    assert_held_is_leased(f);
}

static void
test_held_step_claims_prefetch_and_hands_back(void **state)
{
    struct fx *f = *state;
    char r0[128], r1[128];
    uint32_t got;

    fx_push(f, 40, "nc");
    /* One free slot and prefetch: held counts what was handed out. */
    got = fx_step(f, "1", "8", "", NULL);
    assert_true(got > 1);
    /* Read before the next command: the reply holds them. */
    fx_stepped(f, 0, r0, sizeof(r0));
    fx_stepped(f, 1, r1, sizeof(r1));
    assert_int_equal(held(f, EXEC, "0"), got);
    assert_held_is_leased(f);
    {
        /* One finished, one handed back (kind R) in the same step, which
         * claims nothing. */
        const char *const entries[] = {r0, "T", "3", "key0", "rec0", "",
                                       "", "",  r1,  "R",    "0",    "",
                                       "", "",  "",  "",     NULL};

        assert_int_equal(fx_step(f, "0", "0", "", entries), 0);
    }
    assert_int_equal(held(f, EXEC, "0"), got - 2);
    assert_held_is_leased(f);
    /* The handed-back ref is first on its list and counts when claimed. */
    assert_int_equal(fx_step(f, "1", "0", "", NULL), 1);
    fx_stepped(f, 0, r0, sizeof(r0));
    assert_string_equal(r0, r1);
    assert_int_equal(held(f, EXEC, "0"), got - 1);
    assert_held_is_leased(f);
}

static void
test_held_reap_takes_expired_leases_off(void **state)
{
    struct fx *f = *state;
    int i;

    fx_push(f, 2, "np");
    /* A lease of 0 ms (an agent killed) and one of another agent, live. */
    fx_run(f, "FCALL", "mapq1_claim", "0", f->ns, "agent-0", "0", "0", "1", "0",
           "q", NULL);
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    assert_int_equal(held(f, EXEC, "0"), 2);
    /* Bounded: the server clock may not have ticked a millisecond yet. */
    for (i = 0; i < 1000; i++) {
        if (fx_integer(f, "FCALL", "mapq1_reap", "0", f->ns, "100", NULL) == 1)
            break;
        fx_pause_ms(1);
    }
    assert_true(i < 1000);
    assert_int_equal(held(f, EXEC, "0"), 1);
    assert_held_is_leased(f);
    /* The attempt queued again is held again once claimed. */
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    assert_int_equal(held(f, EXEC, "0"), 2);
    assert_held_is_leased(f);
}

static void
test_held_parked_for_a_reservation_is_not_held(void **state)
{
    struct fx *f = *state;
    static const char k[] = "KKKKKKKKKKKKKKKK";
    char r0[128], r1[128];

    /* Two subtasks of node 0 with the same cache key (two executions, so
     * that neither follows the other). */
    fx_exec_record(f, EXEC);
    fx_exec_record(f, "fedcba987654");
    fx_run(f, "FCALL", "mapq1_push_cached", "0", f->ns, EXEC, "0", "q", "np",
           "t", "0", "0", k, "b", NULL);
    fx_run(f, "FCALL", "mapq1_push_cached", "0", f->ns, "fedcba987654", "0",
           "q", "np", "t", "0", "0", k, "b", NULL);
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 2);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_claimed(f, 1, false, r1, sizeof(r1));
    assert_int_equal(held(f, EXEC, "0") + held(f, "fedcba987654", "0"), 2);
    fx_run(f, "FCALL", "mapq1_reserve", "0", f->ns, r0, k, "60000", "t", NULL);
    assert_string_equal(f->reply->element[0]->str, "run");
    fx_run(f, "FCALL", "mapq1_reserve", "0", f->ns, r1, k, "60000", "t", NULL);
    assert_string_equal(f->reply->element[0]->str, "wait");
    /* The parked one left the leases and its node's count. */
    assert_int_equal(held(f, EXEC, "0") + held(f, "fedcba987654", "0"), 1);
    assert_int_equal(fx_leased(f), 1);
    /* The holder ends: the parked ref is queued again, and held once
     * claimed. */
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", r0, "T", "3", k,
           "\x82\xa1p\x03\xa1v\x01", "cs:0:t", "", "", NULL);
    assert_int_equal(held(f, EXEC, "0") + held(f, "fedcba987654", "0"), 0);
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 1);
    assert_int_equal(held(f, EXEC, "0") + held(f, "fedcba987654", "0"), 1);
}

/* How many HINCRBY Redis ran since the last CONFIG RESETSTAT (those of
 * functions included). */
static long long
hincrby_calls(struct fx *f)
{
    const char *at;

    fx_run(f, "INFO", "commandstats", NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_STRING);
    at = strstr(f->reply->str, "cmdstat_hincrby:calls=");
    return at != NULL ? strtoll(at + strlen("cmdstat_hincrby:calls="), NULL, 10)
                      : 0;
}

static void
test_held_one_write_per_node_and_call(void **state)
{
    struct fx *f = *state;
    char refs[4][128];
    uint32_t i;

    /* Command statistics are the server's: another client of a shared
     * Redis would be counted too. */
    if (getenv("MAPQ_TEST_REDIS_URL") != NULL)
        skip();
    fx_push(f, 20, "nc");
    fx_run(f, "CONFIG", "RESETSTAT", NULL);
    assert_int_equal(fx_step(f, "4", "0", "", NULL), 4);
    for (i = 0; i < 4; i++)
        fx_stepped(f, i, refs[i], sizeof(refs[i]));
    /* Four leases of one node: one write, not four. */
    assert_int_equal(hincrby_calls(f), 1);
    assert_int_equal(held(f, EXEC, "0"), 4);
    {
        /* Four finished and four claimed of the same node in one step:
         * the count does not change, and nothing is written. */
        const char *const entries[] = {refs[0], "T", "3", "k0", "r", "", "", "",
                                       refs[1], "T", "3", "k1", "r", "", "", "",
                                       refs[2], "T", "3", "k2", "r", "", "", "",
                                       refs[3], "T", "3", "k3", "r", "", "", "",
                                       NULL};

        fx_run(f, "CONFIG", "RESETSTAT", NULL);
        assert_int_equal(fx_step(f, "4", "0", "", entries), 4);
    }
    assert_int_equal(hincrby_calls(f), 0);
    assert_int_equal(held(f, EXEC, "0"), 4);
    assert_held_is_leased(f);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_held_claim_counts_per_node),
        T(test_held_done_lowers_it_refused_does_not),
        T(test_held_step_claims_prefetch_and_hands_back),
        T(test_held_reap_takes_expired_leases_off),
        T(test_held_parked_for_a_reservation_is_not_held),
        T(test_held_one_write_per_node_and_call),
    };
#undef T

    return cmocka_run_group_tests_name("held", tests, fx_group_setup,
                                       fx_group_teardown);
}
