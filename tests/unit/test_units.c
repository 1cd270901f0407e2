/*
 * test_units.c - durations and sizes as people write them.
 */
#include "mapq_test.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mapq_err.h"
#include "mapq_units.h"

static int64_t
dur(const char *s)
{
    int64_t ms = -1;
    char err[MAPQ_ERR_LEN];

    assert_int_equal(mapq_duration_parse(s, &ms, err), MAPQ_OK);
    return ms;
}

static void
dur_fails(const char *s, const char *msg)
{
    int64_t ms = 42;
    char err[MAPQ_ERR_LEN] = "";

    assert_int_equal(mapq_duration_parse(s, &ms, err), MAPQ_EINVAL);
    assert_string_equal(err, msg);
    assert_int_equal(ms, 42);
}

static int64_t
size(const char *s)
{
    int64_t n = -1;
    char err[MAPQ_ERR_LEN];

    assert_int_equal(mapq_size_parse(s, &n, err), MAPQ_OK);
    return n;
}

static void
size_fails(const char *s, const char *msg)
{
    int64_t n = 42;
    char err[MAPQ_ERR_LEN] = "";

    assert_int_equal(mapq_size_parse(s, &n, err), MAPQ_EINVAL);
    assert_string_equal(err, msg);
    assert_int_equal(n, 42);
}

static void
test_units_duration_suffixes(void **state)
{
    (void)state;
    assert_int_equal(dur("500ms"), 500);
    assert_int_equal(dur("30s"), 30000);
    assert_int_equal(dur("10m"), 600000);
    assert_int_equal(dur("2h"), 7200000);
    assert_int_equal(dur("3d"), 259200000);
    assert_int_equal(dur("1d12h"), 129600000);
    assert_int_equal(dur("0s"), 0);
    assert_int_equal(dur("0"), 0);
}

static void
test_units_duration_bare_number_is_seconds(void **state)
{
    (void)state;
    assert_int_equal(dur("45"), 45000);
}

static void
test_units_duration_decimal(void **state)
{
    (void)state;
    assert_int_equal(dur("1.5s"), 1500);
    assert_int_equal(dur("0.25h"), 900000);
    assert_int_equal(dur("2.5"), 2500);
    /* Rounded to the nearest millisecond. */
    assert_int_equal(dur("0.4ms"), 0);
    assert_int_equal(dur("1.5ms"), 2);
    assert_int_equal(dur("0.0015s"), 2);
    /* Digits past nanoseconds are ignored, not an overflow. */
    assert_int_equal(dur("1.123456789123456789s"), 1123);
}

static void
test_units_duration_compound(void **state)
{
    (void)state;
    assert_int_equal(dur("1m30s"), 90000);
    assert_int_equal(dur("2h45m"), 9900000);
    assert_int_equal(dur("1h0m10s250ms"), 3610250);
    assert_int_equal(dur("1m0.5s"), 60500);
    assert_int_equal(dur("1.5h30m"), 7200000);
    assert_int_equal(dur("10s500ms"), 10500);
}

static void
test_units_duration_rejects_negative(void **state)
{
    (void)state;
    dur_fails("-5s", "duration '-5s' must not be negative");
}

static void
test_units_duration_rejects_junk(void **state)
{
    static const char *const bad[] = {
        "",     "s",    "5 s",   " 5s",    "5s ",    "5x",     "5sec",  "1e3s",
        "+5s",  ".5s",  "5.s",   "5.5.5s", "5S",     "5w",     "ms",    "0x10",
        "5ms5", "1m30", "30s1m", "1h1h",   "1m 30s", "1m-30s", "1ms1s", "1hm"};
    char want[MAPQ_ERR_LEN];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(want, sizeof(want),
                 "invalid duration '%s' (expected a number and a unit, "
                 "or several largest first: 500ms, 30s, 1m30s, 2h, 3d)",
                 bad[i]);
        dur_fails(bad[i], want);
    }
}

static void
test_units_duration_rejects_overflow(void **state)
{
    (void)state;
    /* INT64_MAX ms is about 2.56e12 hours. */
    dur_fails("9999999999999h", "duration '9999999999999h' is too large");
    dur_fails("99999999999999999999ms",
              "duration '99999999999999999999ms' is too large");
    assert_int_equal(dur("9223372036854775807ms"), INT64_MAX);
    dur_fails("9223372036854775807.9ms",
              "duration '9223372036854775807.9ms' is too large");
    assert_int_equal(dur("2562047788015h"), (int64_t)2562047788015 * 3600000);
    /* The sum of the parts too. */
    dur_fails("2562047788015h9999999999m",
              "duration '2562047788015h9999999999m' is too large");
}

static void
test_units_size_suffixes(void **state)
{
    (void)state;
    assert_int_equal(size("1024"), 1024);
    assert_int_equal(size("0"), 0);
    assert_int_equal(size("2K"), 2000);
    assert_int_equal(size("100M"), 100000000);
    assert_int_equal(size("3G"), 3000000000);
    assert_int_equal(size("1T"), 1000000000000);
    assert_int_equal(size("2Ki"), 2048);
    assert_int_equal(size("512Mi"), 512 * 1024 * 1024);
    assert_int_equal(size("2Gi"), (int64_t)2 << 30);
    assert_int_equal(size("1Ti"), (int64_t)1 << 40);
    /* A trailing B (bytes), and k for kilo. */
    assert_int_equal(size("4GiB"), (int64_t)4 << 30);
    assert_int_equal(size("512MiB"), 512 * 1024 * 1024);
    assert_int_equal(size("512MB"), 512000000);
    assert_int_equal(size("100KB"), 100000);
    assert_int_equal(size("100kB"), 100000);
    assert_int_equal(size("2k"), 2000);
    assert_int_equal(size("512B"), 512);
}

static void
test_units_size_fractions(void **state)
{
    (void)state;
    assert_int_equal(size("1.5Gi"), (int64_t)3 << 29);
    assert_int_equal(size("0.5K"), 500);
    assert_int_equal(size("1.5G"), 1500000000);
    assert_int_equal(size("2.0"), 2);
    assert_int_equal(size("1.25KiB"), 1280);
    assert_int_equal(size("1.0000001T"), 1000000100000);
    assert_int_equal(size("1.000000000000Gi"), (int64_t)1 << 30);
    size_fails("1.5", "size '1.5' is not a whole number of bytes");
    size_fails("1.0001K", "size '1.0001K' is not a whole number of bytes");
    size_fails("1.3Ki", "size '1.3Ki' is not a whole number of bytes");
    size_fails("1.0000000001Ti",
               "size '1.0000000001Ti' is not a whole number of bytes");
}

static void
test_units_size_rejects_negative(void **state)
{
    (void)state;
    size_fails("-1Gi", "size '-1Gi' must not be negative");
}

static void
test_units_size_rejects_junk(void **state)
{
    static const char *const bad[] = {"",     "Mi",    "1 Gi",  "1mi", "0x10",
                                      "1e6",  "1GiBB", "1Bi",   "B",   "1.Gi",
                                      ".5Gi", "1b",    "1KiB ", "1iB"};
    char want[MAPQ_ERR_LEN];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(want, sizeof(want),
                 "invalid size '%s' (expected a number of bytes and an "
                 "optional unit: 512MiB, 4Gi, 100M, 1.5G)",
                 bad[i]);
        size_fails(bad[i], want);
    }
}

static void
test_units_size_rejects_overflow(void **state)
{
    (void)state;
    size_fails("8388608Ti", "size '8388608Ti' is too large");
    size_fails("99999999999999999999",
               "size '99999999999999999999' is too large");
    assert_int_equal(size("8388607Ti"), (int64_t)8388607 << 40);
}

static void
test_units_err_may_be_null(void **state)
{
    int64_t v;

    (void)state;
    assert_int_equal(mapq_duration_parse("x", &v, NULL), MAPQ_EINVAL);
    assert_int_equal(mapq_size_parse("x", &v, NULL), MAPQ_EINVAL);
}

static void
test_units_size_format(void **state)
{
    char buf[32];

    (void)state;
    assert_string_equal(mapq_size_format(0, buf, sizeof(buf)), "0 bytes");
    assert_string_equal(mapq_size_format(1023, buf, sizeof(buf)), "1023 bytes");
    assert_string_equal(mapq_size_format(1024, buf, sizeof(buf)), "1 KiB");
    assert_string_equal(mapq_size_format(600 << 20, buf, sizeof(buf)),
                        "600 MiB");
    assert_string_equal(mapq_size_format(INT64_C(3891) << 20, buf, sizeof(buf)),
                        "3.8 GiB");
    assert_string_equal(mapq_size_format(INT64_C(24) << 30, buf, sizeof(buf)),
                        "24 GiB");
    assert_string_equal(mapq_size_format(INT64_MAX, buf, sizeof(buf)),
                        "8192 PiB");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_units_duration_suffixes),
        cmocka_unit_test(test_units_duration_bare_number_is_seconds),
        cmocka_unit_test(test_units_duration_decimal),
        cmocka_unit_test(test_units_duration_compound),
        cmocka_unit_test(test_units_duration_rejects_negative),
        cmocka_unit_test(test_units_duration_rejects_junk),
        cmocka_unit_test(test_units_duration_rejects_overflow),
        cmocka_unit_test(test_units_size_suffixes),
        cmocka_unit_test(test_units_size_fractions),
        cmocka_unit_test(test_units_size_rejects_negative),
        cmocka_unit_test(test_units_size_rejects_junk),
        cmocka_unit_test(test_units_size_rejects_overflow),
        cmocka_unit_test(test_units_err_may_be_null),
        cmocka_unit_test(test_units_size_format),
    };

    return cmocka_run_group_tests_name("units", tests, NULL, NULL);
}
