/*
 * test_proto.c - phase names, queue classes and refs.
 */
#include "mapq_test.h"

#include <inttypes.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mapq_proto.h"

/* Formats a ref the way docs/PROTOCOL.md spells it. */
static void
format_ref(char *buf, size_t len, const struct mapq_ref *r)
{
    int n = snprintf(
        buf, len,
        "%s/%" PRIu32 "/%" PRIu64 "/%" PRIu32 "/%" PRIu32 "/%" PRIu32 "/%s/%s",
        r->exec, r->k, r->index, r->u, r->s, r->i, r->queue, r->cls);

    assert_true(n > 0 && (size_t)n < len);
}

/* Parses the C string s, asserting success. */
static struct mapq_ref
parse_ok(const char *s)
{
    struct mapq_ref r;

    memset(&r, 0x55, sizeof(r));
    if (mapq_ref_parse(s, strlen(s), &r) != MAPQ_OK)
        fail_msg("ref '%s' was refused", s);
    return r;
}

/* Asserts that the C string s is refused. */
static void
parse_fails(const char *s)
{
    struct mapq_ref r;

    if (mapq_ref_parse(s, strlen(s), &r) != MAPQ_EPROTO)
        fail_msg("malformed ref '%s' was accepted", s);
}

static void
test_proto_phase_names(void **state)
{
    static const char *const want[] = {"QUEUED",    "RUNNING",   "RETRYING",
                                       "SUCCEEDED", "CACHED",    "RECOVERED",
                                       "FAILED",    "TIMED_OUT", "ABORTED"};

    (void)state;
    assert_int_equal(sizeof(want) / sizeof(want[0]), MAPQ_PHASE_COUNT);
    assert_string_equal(mapq_phase_name(MAPQ_PHASE_QUEUED), want[0]);
    assert_string_equal(mapq_phase_name(MAPQ_PHASE_RUNNING), want[1]);
    assert_string_equal(mapq_phase_name(MAPQ_PHASE_RETRYING), want[2]);
    assert_string_equal(mapq_phase_name(MAPQ_PHASE_SUCCEEDED), want[3]);
    assert_string_equal(mapq_phase_name(MAPQ_PHASE_CACHED), want[4]);
    assert_string_equal(mapq_phase_name(MAPQ_PHASE_RECOVERED), want[5]);
    assert_string_equal(mapq_phase_name(MAPQ_PHASE_FAILED), want[6]);
    assert_string_equal(mapq_phase_name(MAPQ_PHASE_TIMED_OUT), want[7]);
    assert_string_equal(mapq_phase_name(MAPQ_PHASE_ABORTED), want[8]);
}

static void
test_proto_phase_name_out_of_range(void **state)
{
    (void)state;
    assert_string_equal(mapq_phase_name(-1), "UNKNOWN");
    assert_string_equal(mapq_phase_name(MAPQ_PHASE_COUNT), "UNKNOWN");
    assert_string_equal(mapq_phase_name(INT_MAX), "UNKNOWN");
    assert_string_equal(mapq_phase_name(INT_MIN), "UNKNOWN");
}

/* Counts of a node of total 10: 3 succeeded, 1 failed, 1 retrying, and
 * stale QUEUED and RUNNING figures the split replaces; then split with
 * held. */
static void
split(uint64_t *c, int64_t held)
{
    memset(c, 0, MAPQ_PHASE_COUNT * sizeof(*c));
    c[MAPQ_PHASE_SUCCEEDED] = 3;
    c[MAPQ_PHASE_FAILED] = 1;
    c[MAPQ_PHASE_RETRYING] = 1;
    c[MAPQ_PHASE_QUEUED] = 99;
    c[MAPQ_PHASE_RUNNING] = 99;
    mapq_phase_split(c, 10, held);
}

static void
test_proto_phase_split_running_and_queued(void **state)
{
    uint64_t c[MAPQ_PHASE_COUNT];

    (void)state;
    /* 5 open: 2 held by agents, 3 queued; ended phases kept. */
    split(c, 2);
    assert_int_equal(c[MAPQ_PHASE_RUNNING], 2);
    assert_int_equal(c[MAPQ_PHASE_QUEUED], 3);
    assert_int_equal(c[MAPQ_PHASE_SUCCEEDED], 3);
    assert_int_equal(c[MAPQ_PHASE_RETRYING], 1);
    /* Never more running than open, never below 0, never a negative
     * queue: the counts always add up to the total. */
    split(c, 7);
    assert_int_equal(c[MAPQ_PHASE_RUNNING], 5);
    assert_int_equal(c[MAPQ_PHASE_QUEUED], 0);
    split(c, -4);
    assert_int_equal(c[MAPQ_PHASE_RUNNING], 0);
    assert_int_equal(c[MAPQ_PHASE_QUEUED], 5);
    memset(c, 0, sizeof(c));
    c[MAPQ_PHASE_ABORTED] = 12; /* more ended than total: a bad record */
    mapq_phase_split(c, 10, 3);
    assert_int_equal(c[MAPQ_PHASE_RUNNING], 0);
    assert_int_equal(c[MAPQ_PHASE_QUEUED], 0);
}

static void
test_proto_queue_class(void **state)
{
    (void)state;
    assert_string_equal(mapq_queue_class(false, false), "nc");
    assert_string_equal(mapq_queue_class(false, true), "np");
    assert_string_equal(mapq_queue_class(true, false), "ic");
    assert_string_equal(mapq_queue_class(true, true), "ip");
}

static void
test_proto_ref_parse_fields(void **state)
{
    struct mapq_ref r;

    (void)state;
    r = parse_ok("0123456789ab/2/17/1/3/2/default/ic");
    assert_string_equal(r.exec, "0123456789ab");
    assert_int_equal(r.k, 2);
    assert_int_equal(r.index, 17);
    assert_int_equal(r.u, 1);
    assert_int_equal(r.s, 3);
    assert_int_equal(r.i, 2);
    assert_string_equal(r.queue, "default");
    assert_string_equal(r.cls, "ic");
}

static void
test_proto_ref_round_trip(void **state)
{
    static const struct mapq_ref refs[] = {
        {"0123456789ab", 0, 0, 0, 0, 0, "default", "nc"},
        {"ffffffffffff", UINT32_MAX, UINT64_MAX, UINT32_MAX, UINT32_MAX,
         UINT32_MAX, "gpu-big.queue_1", "ip"},
        /* Longest queue that fits its field. */
        {"0a1b2c3d4e5f", 7, 1000000, 2, 0, 1,
         "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq",
         "np"},
    };
    char text[MAPQ_REF_MAX], again[MAPQ_REF_MAX];
    struct mapq_ref r;
    size_t j;

    (void)state;
    for (j = 0; j < sizeof(refs) / sizeof(refs[0]); j++) {
        format_ref(text, sizeof(text), &refs[j]);
        r = parse_ok(text);
        assert_string_equal(r.exec, refs[j].exec);
        assert_int_equal(r.k, refs[j].k);
        assert_true(r.index == refs[j].index);
        assert_int_equal(r.u, refs[j].u);
        assert_int_equal(r.s, refs[j].s);
        assert_int_equal(r.i, refs[j].i);
        assert_string_equal(r.queue, refs[j].queue);
        assert_string_equal(r.cls, refs[j].cls);
        format_ref(again, sizeof(again), &r);
        assert_string_equal(again, text);
    }
}

static void
test_proto_ref_uses_len_not_nul(void **state)
{
    static const char s[] = "0123456789ab/1/2/0/0/0/q/ncXYZ";
    struct mapq_ref r;

    (void)state;
    assert_int_equal(mapq_ref_parse(s, sizeof(s) - 4, &r), MAPQ_OK);
    assert_string_equal(r.cls, "nc");
    assert_int_equal(mapq_ref_parse(s, sizeof(s) - 1, &r), MAPQ_EPROTO);
}

static void
test_proto_ref_attempt(void **state)
{
    struct mapq_ref r;

    (void)state;
    r = parse_ok("0123456789ab/0/0/0/0/0/q/nc");
    assert_int_equal(mapq_ref_attempt(&r), 1);
    /* User and system failures count; interruptions are already in s. */
    r = parse_ok("0123456789ab/0/0/2/3/1/q/nc");
    assert_int_equal(mapq_ref_attempt(&r), 6);
}

static void
test_proto_ref_missing_fields_rejected(void **state)
{
    static const char *const bad[] = {
        "0123456789ab",
        "0123456789ab/1",
        "0123456789ab/1/2/0/0/0",
        "0123456789ab/1/2/0/0/0/q",
        "0123456789ab/1/2/0/0/q/nc",
        /* Each field present but empty. */
        "/1/2/0/0/0/q/nc",
        "0123456789ab//2/0/0/0/q/nc",
        "0123456789ab/1//0/0/0/q/nc",
        "0123456789ab/1/2//0/0/q/nc",
        "0123456789ab/1/2/0//0/q/nc",
        "0123456789ab/1/2/0/0//q/nc",
        "0123456789ab/1/2/0/0/0//nc",
        "0123456789ab/1/2/0/0/0/q/",
        "///////",
    };
    size_t j;

    (void)state;
    for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++)
        parse_fails(bad[j]);
}

static void
test_proto_ref_extra_fields_rejected(void **state)
{
    (void)state;
    parse_fails("0123456789ab/1/2/0/0/0/q/nc/x");
    parse_fails("0123456789ab/1/2/0/0/0/q/nc//");
}

/* msgpack hands over an empty str with a NULL pointer. */
static void
test_proto_ref_empty_rejected(void **state)
{
    struct mapq_ref r;

    (void)state;
    assert_int_equal(mapq_ref_parse(NULL, 0, &r), MAPQ_EPROTO);
    parse_fails("");
}

static void
test_proto_ref_non_numeric_counters_rejected(void **state)
{
    static const char *const nums[] = {"x",   "1a",  "-1",    "+1",
                                       " 1",  "1 ",  "0x1",   "1.0",
                                       "1e3", "\t1", "1\x80", "\xb0"};
    char text[MAPQ_REF_MAX];
    size_t j;
    int field;

    (void)state;
    /* Each of k, index, u, s and i in turn. */
    for (field = 0; field < 5; field++) {
        for (j = 0; j < sizeof(nums) / sizeof(nums[0]); j++) {
            snprintf(text, sizeof(text), "0123456789ab/%s/%s/%s/%s/%s/q/nc",
                     field == 0 ? nums[j] : "1", field == 1 ? nums[j] : "1",
                     field == 2 ? nums[j] : "1", field == 3 ? nums[j] : "1",
                     field == 4 ? nums[j] : "1");
            parse_fails(text);
        }
    }
}

static void
test_proto_ref_counter_overflow_rejected(void **state)
{
    (void)state;
    parse_fails("0123456789ab/4294967296/0/0/0/0/q/nc");
    parse_fails("0123456789ab/0/18446744073709551616/0/0/0/q/nc");
    parse_fails("0123456789ab/0/99999999999999999999999/0/0/0/q/nc");
    parse_fails("0123456789ab/0/0/4294967296/0/0/q/nc");
    parse_fails("0123456789ab/0/0/0/4294967296/0/q/nc");
    parse_fails("0123456789ab/0/0/0/0/4294967296/q/nc");
}

static void
test_proto_ref_overlong_rejected(void **state)
{
    char text[2 * MAPQ_REF_MAX], field[128];
    struct mapq_ref r;

    (void)state;
    /* exec is 12 characters (see test_proto_ref_exec_id_checked), queue
     * holds 63, cls 2. */
    memset(field, 'e', 64);
    field[64] = '\0';
    snprintf(text, sizeof(text), "%s/0/0/0/0/0/q/nc", field);
    parse_fails(text);
    snprintf(text, sizeof(text), "0123456789ab/0/0/0/0/0/%s/nc", field);
    parse_fails(text);
    parse_fails("0123456789ab/0/0/0/0/0/q/ncx");
    /* A ref of MAPQ_REF_MAX bytes or more is refused outright. */
    memset(text, 'q', sizeof(text));
    memcpy(text, "0123456789ab/0/0/0/0/0/", 23);
    memcpy(text + MAPQ_REF_MAX - 3, "/nc", 4);
    assert_int_equal(strlen(text), MAPQ_REF_MAX);
    assert_int_equal(mapq_ref_parse(text, strlen(text), &r), MAPQ_EPROTO);
}

static void
test_proto_ref_empty_and_nul_rejected(void **state)
{
    static const char withnul[] = "0123456789ab/1/2/0/0/0/q\0x/nc";
    struct mapq_ref r;

    (void)state;
    parse_fails("");
    assert_int_equal(mapq_ref_parse(withnul, sizeof(withnul) - 1, &r),
                     MAPQ_EPROTO);
}

/* A trailing '/' after cls (an empty ninth field) is refused. */
static void
test_proto_ref_trailing_slash_rejected(void **state)
{
    (void)state;
    parse_fails("0123456789ab/1/2/0/0/0/q/nc/");
}

/* cls is one of nc, np, ic, ip and nothing else. */
static void
test_proto_ref_unknown_class_rejected(void **state)
{
    (void)state;
    parse_fails("0123456789ab/1/2/0/0/0/q/zz");
    parse_fails("0123456789ab/1/2/0/0/0/q/n");
}

/*
 * A counter with a leading zero is refused, so that formatting a parsed ref
 * gives back the same text; 0 itself and zeros after the first digit are
 * fine.
 */
static void
test_proto_ref_leading_zero_rejected(void **state)
{
    static const char *const nums[] = {"01", "00", "007",
                                       "00000000000000000001"};
    char text[MAPQ_REF_MAX], again[MAPQ_REF_MAX];
    struct mapq_ref r;
    size_t j;
    int field;

    (void)state;
    for (field = 0; field < 5; field++) {
        for (j = 0; j < sizeof(nums) / sizeof(nums[0]); j++) {
            snprintf(text, sizeof(text), "0123456789ab/%s/%s/%s/%s/%s/q/nc",
                     field == 0 ? nums[j] : "1", field == 1 ? nums[j] : "1",
                     field == 2 ? nums[j] : "1", field == 3 ? nums[j] : "1",
                     field == 4 ? nums[j] : "1");
            parse_fails(text);
        }
    }
    snprintf(text, sizeof(text), "0123456789ab/0/10/100/0/20/q/ip");
    r = parse_ok(text);
    format_ref(again, sizeof(again), &r);
    assert_string_equal(again, text);
}

/* The execution id is exactly MAPQ_EXEC_ID_LEN lowercase hex digits. */
static void
test_proto_ref_exec_id_checked(void **state)
{
    static const char *const bad[] = {"0123456789a",  "0123456789abc",
                                      "0123456789AB", "0123456789ag",
                                      "g123456789ab", "-123456789ab",
                                      " 123456789ab", "0123456789ab ",
                                      "0x0123456789", "e1"};
    static const char *const good[] = {"0123456789ab", "ffffffffffff",
                                       "000000000000"};
    char text[MAPQ_REF_MAX];
    struct mapq_ref r;
    size_t j;

    (void)state;
    assert_int_equal(MAPQ_EXEC_ID_LEN, 12);
    for (j = 0; j < sizeof(bad) / sizeof(bad[0]); j++) {
        snprintf(text, sizeof(text), "%s/1/2/0/0/0/q/nc", bad[j]);
        parse_fails(text);
    }
    for (j = 0; j < sizeof(good) / sizeof(good[0]); j++) {
        snprintf(text, sizeof(text), "%s/1/2/0/0/0/q/nc", good[j]);
        r = parse_ok(text);
        assert_string_equal(r.exec, good[j]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_proto_phase_names),
        cmocka_unit_test(test_proto_phase_name_out_of_range),
        cmocka_unit_test(test_proto_phase_split_running_and_queued),
        cmocka_unit_test(test_proto_queue_class),
        cmocka_unit_test(test_proto_ref_parse_fields),
        cmocka_unit_test(test_proto_ref_round_trip),
        cmocka_unit_test(test_proto_ref_uses_len_not_nul),
        cmocka_unit_test(test_proto_ref_attempt),
        cmocka_unit_test(test_proto_ref_missing_fields_rejected),
        cmocka_unit_test(test_proto_ref_extra_fields_rejected),
        cmocka_unit_test(test_proto_ref_empty_rejected),
        cmocka_unit_test(test_proto_ref_non_numeric_counters_rejected),
        cmocka_unit_test(test_proto_ref_counter_overflow_rejected),
        cmocka_unit_test(test_proto_ref_overlong_rejected),
        cmocka_unit_test(test_proto_ref_empty_and_nul_rejected),
        cmocka_unit_test(test_proto_ref_trailing_slash_rejected),
        cmocka_unit_test(test_proto_ref_unknown_class_rejected),
        cmocka_unit_test(test_proto_ref_leading_zero_rejected),
        cmocka_unit_test(test_proto_ref_exec_id_checked),
    };

    return cmocka_run_group_tests_name("proto", tests, NULL, NULL);
}
