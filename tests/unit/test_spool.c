/*
 * test_spool.c - long input lists: pages held on disk (mapq_spool),
 * written in order and read back as msgpack arrays with their list and
 * page number; and the pager that holds a list while it is short and
 * spools it once it is long (wf_pager.c).
 */
#include "mapq_test.h"

#include <string.h>

#include "mapq_pages.h"
#include "mapq_spool.h"
#include "mapq_value.h"
#include "mapq_workflow.h"
#include "wf_int.h"

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

/* Feeds a pager the list 0..n-1 in pages of MAPQ_PAGE_LEN. */
static void
feed(struct wf_pager *pg, uint64_t n)
{
    struct mapq_buf page = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    msgpack_packer pk;
    uint64_t i = 0, c;

    mapq_value_packer_init(&pk, &page);
    while (i < n) {
        mapq_buf_reset(&page);
        for (c = 0; c < MAPQ_PAGE_LEN && i < n; c++, i++)
            msgpack_pack_uint64(&pk, i);
        assert_int_equal(
            wf_pager_page(pg, page.data, page.len, (uint32_t)c, err), MAPQ_OK);
    }
    mapq_buf_release(&page);
}

static void
test_spool_pager_holds_a_short_list(void **state)
{
    struct mapq_spool *s = mapq_spool_new(NULL);
    struct mapq_bind_pages bp = {.exec = "e1", .spool = s};
    struct mapq_buf val = MAPQ_BUF_INIT;
    struct wf_pager pg;
    char err[MAPQ_ERR_LEN];
    uint32_t n;
    size_t hlen;

    (void)state;
    wf_pager_init(&pg, &bp, "xs");
    feed(&pg, MAPQ_PAGED_MIN);
    assert_int_equal(wf_pager_finish(&pg, &val, err), MAPQ_OK);
    /* The list itself, nothing spooled. */
    assert_true(mapq_value_array_header(val.data, val.len, &n, &hlen));
    assert_int_equal(n, MAPQ_PAGED_MIN);
    assert_int_equal(mapq_value_check(val.data, val.len, err), MAPQ_OK);
    assert_int_equal(mapq_spool_count(s), 0);
    wf_pager_release(&pg);
    mapq_buf_release(&val);
    mapq_spool_free(s);
}

static void
test_spool_pager_spools_a_long_list(void **state)
{
    struct mapq_spool *s = mapq_spool_new(NULL);
    struct mapq_bind_pages bp = {.exec = "e1", .spool = s};
    struct mapq_buf val = MAPQ_BUF_INIT, page = MAPQ_BUF_INIT;
    struct mapq_pages_ref ref;
    struct wf_pager pg;
    char err[MAPQ_ERR_LEN];
    const char *list;
    uint64_t p, total = MAPQ_PAGED_MIN + 1500;
    size_t i;

    (void)state;
    wf_pager_init(&pg, &bp, "xs");
    feed(&pg, total);
    assert_int_equal(wf_pager_finish(&pg, &val, err), MAPQ_OK);
    /* A reference, and every page in the spool in order: the held ones
     * first, the last one short. */
    assert_true(mapq_pages_ref_read(val.data, val.len, &ref));
    assert_string_equal(ref.exec, "e1");
    assert_string_equal(ref.list, "i:xs");
    assert_int_equal(ref.n, total);
    assert_int_equal(ref.page_len, MAPQ_PAGE_LEN);
    assert_int_equal(mapq_spool_count(s), mapq_pages_count(&ref));
    for (i = 0; i < mapq_spool_count(s); i++) {
        struct mapq_buf elems = MAPQ_BUF_INIT;
        msgpack_unpacked u;
        size_t off = 0;

        assert_int_equal(mapq_spool_read(s, i, &list, &p, &page, err), MAPQ_OK);
        assert_string_equal(list, "i:xs");
        assert_int_equal(p, i);
        assert_int_equal(
            mapq_pages_append(&ref, p, page.data, page.len, &elems, err),
            MAPQ_OK);
        msgpack_unpacked_init(&u);
        assert_int_equal(
            mapq_value_unpack_next(elems.data, elems.len, &off, &u, err),
            MAPQ_OK);
        assert_int_equal(u.data.via.u64, p * MAPQ_PAGE_LEN);
        msgpack_unpacked_destroy(&u);
        mapq_buf_release(&elems);
    }
    wf_pager_release(&pg);
    mapq_buf_release(&page);
    mapq_buf_release(&val);
    mapq_spool_free(s);
}

static void
test_spool_pager_without_a_spool_drops_pages(void **state)
{
    struct mapq_bind_pages bp = {.exec = "-", .spool = NULL};
    struct mapq_buf val = MAPQ_BUF_INIT;
    struct mapq_pages_ref ref;
    struct wf_pager pg;
    char err[MAPQ_ERR_LEN];

    (void)state;
    /* mapq validate: the list is read and counted, nothing kept. */
    wf_pager_init(&pg, &bp, "xs");
    feed(&pg, 3 * MAPQ_PAGED_MIN);
    assert_int_equal(pg.held.len, 0);
    assert_int_equal(wf_pager_finish(&pg, &val, err), MAPQ_OK);
    assert_true(mapq_pages_ref_read(val.data, val.len, &ref));
    assert_int_equal(ref.n, 3 * MAPQ_PAGED_MIN);
    wf_pager_release(&pg);
    mapq_buf_release(&val);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spool_pages_read_back_in_order),
        cmocka_unit_test(test_spool_a_big_page),
        cmocka_unit_test(test_spool_pager_holds_a_short_list),
        cmocka_unit_test(test_spool_pager_spools_a_long_list),
        cmocka_unit_test(test_spool_pager_without_a_spool_drops_pages),
    };

    return cmocka_run_group_tests_name("spool", tests, NULL, NULL);
}
