/*
 * test_spool.c - pages of long input lists held on disk: written in
 * order, read back as msgpack arrays with their list and page number.
 */
#include "mapq_test.h"

#include <string.h>

#include "mapq_spool.h"
#include "mapq_value.h"

static void
test_spool_pages_read_back_in_order(void **state)
{
    struct mapq_spool *s;
    struct mapq_buf out = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    const char *list;
    uint64_t p;
    uint32_t n;
    size_t hlen;

    (void)state;
    s = mapq_spool_new(err);
    assert_non_null(s);
    assert_int_equal(mapq_spool_count(s), 0);
    /* Two lists interleaved, as two inputs of one file would not be, and
     * an empty page: each comes back as it went in. */
    assert_int_equal(mapq_spool_add(s, "i:xs", 0, "\x01\x02\x03", 3, 3, err),
                     MAPQ_OK);
    assert_int_equal(mapq_spool_add(s, "i:ys", 0, "\xa1z", 2, 1, err), MAPQ_OK);
    assert_int_equal(mapq_spool_add(s, "i:xs", 1, "\x04", 1, 1, err), MAPQ_OK);
    assert_int_equal(mapq_spool_add(s, "i:zs", 7, "", 0, 0, err), MAPQ_OK);
    assert_int_equal(mapq_spool_count(s), 4);
    assert_int_equal(mapq_spool_read(s, 2, &list, &p, &out, err), MAPQ_OK);
    assert_string_equal(list, "i:xs");
    assert_int_equal(p, 1);
    assert_int_equal(out.len, 2);
    assert_memory_equal(out.data, "\x91\x04", 2);
    assert_int_equal(mapq_spool_read(s, 0, &list, &p, &out, err), MAPQ_OK);
    assert_string_equal(list, "i:xs");
    assert_int_equal(p, 0);
    assert_memory_equal(out.data, "\x93\x01\x02\x03", 4);
    assert_int_equal(mapq_value_check(out.data, out.len, err), MAPQ_OK);
    assert_int_equal(mapq_spool_read(s, 1, &list, &p, &out, err), MAPQ_OK);
    assert_string_equal(list, "i:ys");
    assert_memory_equal(out.data, "\x91\xa1z", 3);
    assert_int_equal(mapq_spool_read(s, 3, &list, &p, &out, err), MAPQ_OK);
    assert_string_equal(list, "i:zs");
    assert_int_equal(p, 7);
    assert_true(mapq_value_array_header(out.data, out.len, &n, &hlen));
    assert_int_equal(n, 0);
    assert_int_equal(out.len, hlen);
    mapq_buf_release(&out);
    mapq_spool_free(s);
    mapq_spool_free(NULL);
}

static void
test_spool_a_big_page(void **state)
{
    struct mapq_spool *s;
    struct mapq_buf out = MAPQ_BUF_INIT, page = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    const char *list;
    uint64_t p;
    msgpack_packer pk;
    int i;

    (void)state;
    mapq_value_packer_init(&pk, &page);
    for (i = 0; i < 1000; i++)
        msgpack_pack_int64(&pk, (int64_t)i * 1000003);
    s = mapq_spool_new(err);
    assert_non_null(s);
    assert_int_equal(
        mapq_spool_add(s, "i:big", 0, page.data, page.len, 1000, err), MAPQ_OK);
    assert_int_equal(mapq_spool_read(s, 0, &list, &p, &out, err), MAPQ_OK);
    assert_int_equal(out.len, page.len + 3);
    assert_memory_equal(out.data, "\xdc\x03\xe8", 3);
    assert_memory_equal(out.data + 3, page.data, page.len);
    mapq_buf_release(&page);
    mapq_buf_release(&out);
    mapq_spool_free(s);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spool_pages_read_back_in_order),
        cmocka_unit_test(test_spool_a_big_page),
    };

    return cmocka_run_group_tests_name("spool", tests, NULL, NULL);
}
