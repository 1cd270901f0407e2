/*
 * test_retry.c - backoff bounds, causes logged once and cleared once, and
 * which error replies are permanent.
 */
#include "mapq_test.h"

#include <string.h>

#include "mapq_retry.h"

static void
test_retry_delays_grow_jittered_and_capped(void **state)
{
    struct mapq_retry r;
    int d, i, lo[] = {50, 100, 200, 400, 500, 500, 500},
              hi[] = {100, 200, 400, 800, 1000, 1000, 1000};

    (void)state;
    mapq_retry_init(&r, 100, 1000);
    for (i = 0; i < 7; i++) {
        mapq_retry_fail(&r, "OOM command not allowed", &d);
        assert_in_range(d, lo[i], hi[i]);
    }
    /* A success starts the delays over. */
    mapq_retry_ok(&r);
    mapq_retry_fail(&r, "OOM command not allowed", &d);
    assert_in_range(d, 50, 100);
}

static void
test_retry_jitter_spreads_delays(void **state)
{
    struct mapq_retry r;
    int d, i, first = -1;
    bool differ = false;

    (void)state;
    mapq_retry_init(&r, 1000, 1000);
    for (i = 0; i < 50; i++) {
        mapq_retry_fail(&r, "BUSY", &d);
        assert_in_range(d, 500, 1000);
        if (first < 0)
            first = d;
        else if (d != first)
            differ = true;
    }
    assert_true(differ);
}

static void
test_retry_cause_reported_once_until_cleared(void **state)
{
    struct mapq_retry r;
    int d;

    (void)state;
    mapq_retry_init(&r, 1, 10);
    assert_true(mapq_retry_fail(&r,
                                "OOM command not allowed when used "
                                "memory > 'maxmemory'.",
                                &d));
    assert_false(mapq_retry_fail(&r, "OOM command not allowed", &d));
    assert_false(mapq_retry_fail(&r, "OOM again", &d));
    assert_string_equal(r.code, "OOM");
    assert_int_equal(r.count, 3);
    /* Another cause is new. */
    assert_true(mapq_retry_fail(&r, "BUSY Redis is busy running a script", &d));
    assert_int_equal(r.count, 1);
    assert_true(mapq_retry_ok(&r));
    assert_string_equal(r.code, "BUSY");
    assert_false(mapq_retry_ok(&r));
    /* After it cleared, the same cause is news again. */
    assert_true(mapq_retry_fail(&r, "BUSY Redis is busy", &d));
}

/* Redis's generic ERR covers unrelated causes: its next words tell them
 * apart, so a new one is reported, the same one is not. */
static void
test_retry_generic_err_causes_distinct(void **state)
{
    struct mapq_retry r;

    (void)state;
    mapq_retry_init(&r, 1, 10);
    assert_true(mapq_retry_fail(&r,
                                "ERR The user executing the script can't "
                                "access at least one of the keys",
                                NULL));
    assert_string_equal(r.code, "ERR The user executing");
    assert_false(mapq_retry_fail(&r, "ERR The user executing it", NULL));
    assert_true(mapq_retry_fail(&r, "ERR Error running script", NULL));
    assert_string_equal(r.code, "ERR Error running script");
    assert_true(mapq_retry_fail(&r, "ERR", NULL));
    assert_string_equal(r.code, "ERR");
    /* Long words are cut to fit the code. */
    assert_true(mapq_retry_fail(
        &r, "ERR aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa b", NULL));
    assert_int_equal(strlen(r.code), sizeof(r.code) - 1);
}

static void
test_retry_no_reply_is_a_cause(void **state)
{
    struct mapq_retry r;

    (void)state;
    mapq_retry_init(&r, 1, 10);
    assert_true(mapq_retry_fail(&r, NULL, NULL));
    assert_string_equal(r.cause, "no reply");
    assert_false(mapq_retry_fail(&r, "", NULL));
}

static void
test_retry_classify(void **state)
{
    (void)state;
    assert_int_equal(mapq_retry_classify("NOPERM this user has no "
                                         "permissions"),
                     MAPQ_RETRY_PERMANENT);
    assert_int_equal(mapq_retry_classify("WRONGPASS invalid username-password"),
                     MAPQ_RETRY_PERMANENT);
    assert_int_equal(mapq_retry_classify("NOAUTH Authentication required."),
                     MAPQ_RETRY_PERMANENT);
    assert_int_equal(mapq_retry_classify("ERR The user executing the script "
                                         "can't access at least one of the "
                                         "keys mentioned in the command"),
                     MAPQ_RETRY_PERMANENT);
    assert_int_equal(mapq_retry_classify("OOM command not allowed"),
                     MAPQ_RETRY_TRANSIENT);
    assert_int_equal(mapq_retry_classify("BUSY Redis is busy"),
                     MAPQ_RETRY_TRANSIENT);
    assert_int_equal(mapq_retry_classify("LOADING Redis is loading"),
                     MAPQ_RETRY_TRANSIENT);
    assert_int_equal(mapq_retry_classify("READONLY You can't write"),
                     MAPQ_RETRY_TRANSIENT);
    assert_int_equal(mapq_retry_classify(NULL), MAPQ_RETRY_TRANSIENT);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_retry_delays_grow_jittered_and_capped),
        cmocka_unit_test(test_retry_jitter_spreads_delays),
        cmocka_unit_test(test_retry_cause_reported_once_until_cleared),
        cmocka_unit_test(test_retry_generic_err_causes_distinct),
        cmocka_unit_test(test_retry_no_reply_is_a_cause),
        cmocka_unit_test(test_retry_classify),
    };

    return cmocka_run_group_tests_name("retry", tests, NULL, NULL);
}
