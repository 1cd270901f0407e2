/*
 * test_hex.c - bytes written as hex, and hex digits read back.
 */
#include "mapq_test.h"

#include <stdio.h>
#include <string.h>

#include "mapq_hex.h"

static void
test_hex_encode_every_byte_lower_case(void **state)
{
    unsigned char all[256];
    char hex[2 * sizeof(all) + 1], two[3];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(all); i++)
        all[i] = (unsigned char)i;
    memset(hex, 'x', sizeof(hex));
    mapq_hex_encode(all, sizeof(all), hex);
    assert_int_equal(strlen(hex), 2 * sizeof(all));
    for (i = 0; i < sizeof(all); i++) {
        snprintf(two, sizeof(two), "%02x", (unsigned)i);
        assert_memory_equal(hex + 2 * i, two, 2);
    }
    /* Nothing: an empty string. */
    hex[0] = 'x';
    mapq_hex_encode(all, 0, hex);
    assert_string_equal(hex, "");
}

static void
test_hex_digit_both_cases_and_nothing_else(void **state)
{
    int c, want;

    (void)state;
    for (c = -128; c < 128; c++) {
        if (c >= '0' && c <= '9')
            want = c - '0';
        else if (c >= 'a' && c <= 'f')
            want = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            want = c - 'A' + 10;
        else
            want = -1;
        assert_int_equal(mapq_hex_digit((char)c), want);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_encode_every_byte_lower_case),
        cmocka_unit_test(test_hex_digit_both_cases_and_nothing_else),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
