/*
 * test_buf.c - the byte buffer: appends under a cap, and the tail a log
 * keeps (mapq_buf_keep_tail), cut on a UTF-8 boundary.
 */
#include "mapq_test.h"

#include <string.h>

#include "mapq_buf.h"

static void
test_buf_append_respects_the_cap(void **state)
{
    struct mapq_buf b;

    (void)state;
    mapq_buf_init(&b, 5);
    assert_int_equal(mapq_buf_appendstr(&b, "abc"), MAPQ_OK);
    assert_int_equal(mapq_buf_appendstr(&b, "def"), MAPQ_ETOOBIG);
    assert_string_equal(b.data, "abc");
    assert_int_equal(mapq_buf_appendstr(&b, "de"), MAPQ_OK);
    assert_string_equal(b.data, "abcde");
    mapq_buf_release(&b);
}

static void
test_buf_keep_tail_cuts_on_a_utf8_boundary(void **state)
{
    struct mapq_buf b = MAPQ_BUF_INIT;

    (void)state;
    /* Shorter than the tail: unchanged. */
    mapq_buf_appendstr(&b, "short");
    mapq_buf_keep_tail(&b, 8);
    assert_string_equal(b.data, "short");
    /* ASCII: exactly the last max bytes. */
    mapq_buf_reset(&b);
    mapq_buf_appendstr(&b, "0123456789");
    mapq_buf_keep_tail(&b, 4);
    assert_string_equal(b.data, "6789");
    assert_int_equal(b.len, 4);
    /* "é" is two bytes (C3 A9); a cut inside it skips its second byte. */
    mapq_buf_reset(&b);
    mapq_buf_appendstr(&b, "ab\xc3\xa9xy");
    mapq_buf_keep_tail(&b, 3);
    assert_string_equal(b.data, "xy");
    /* "€" is three bytes (E2 82 AC): a cut after its first skips two. */
    mapq_buf_reset(&b);
    mapq_buf_appendstr(&b, "a\xe2\x82\xacz");
    mapq_buf_keep_tail(&b, 3);
    assert_string_equal(b.data, "z");
    /* A cut on a lead byte keeps the whole character. */
    mapq_buf_reset(&b);
    mapq_buf_appendstr(&b, "a\xe2\x82\xacz");
    mapq_buf_keep_tail(&b, 4);
    assert_string_equal(b.data, "\xe2\x82\xacz");
    mapq_buf_release(&b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buf_append_respects_the_cap),
        cmocka_unit_test(test_buf_keep_tail_cuts_on_a_utf8_boundary),
    };

    return cmocka_run_group_tests_name("buf", tests, NULL, NULL);
}
