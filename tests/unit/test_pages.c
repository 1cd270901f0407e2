/*
 * test_pages.c - paged lists: references written and read back, page
 * arithmetic, and pages checked before their elements are taken.
 */
#include "mapq_test.h"

#include <stdint.h>
#include <string.h>

#include "mapq_buf.h"
#include "mapq_pages.h"
#include "mapq_value.h"

static const struct mapq_pages_ref ref_2500 = {
    .exec = "3f2a", .list = "o:1", .n = 2500, .page_len = 1000};

static void
pack_ref(struct mapq_buf *b, const struct mapq_pages_ref *r)
{
    msgpack_packer pk;

    mapq_value_packer_init(&pk, b);
    mapq_pages_ref_pack(&pk, r);
}

/* Packs a page: elements from..from+n-1 as ints. */
static void
pack_page(struct mapq_buf *b, uint64_t from, uint64_t n)
{
    msgpack_packer pk;
    uint64_t i;

    mapq_value_packer_init(&pk, b);
    msgpack_pack_array(&pk, (uint32_t)n);
    for (i = from; i < from + n; i++)
        msgpack_pack_uint64(&pk, i);
}

static void
test_pages_ref_round_trip(void **state)
{
    struct mapq_buf b = MAPQ_BUF_INIT;
    struct mapq_pages_ref r;
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN];

    (void)state;
    pack_ref(&b, &ref_2500);
    memset(&r, 0, sizeof(r));
    assert_true(mapq_pages_ref_read(b.data, b.len, &r));
    assert_string_equal(r.exec, "3f2a");
    assert_string_equal(r.list, "o:1");
    assert_int_equal(r.n, 2500);
    assert_int_equal(r.page_len, 1000);
    /* It is a well-formed value, and an ext of its own type. */
    msgpack_unpacked_init(&u);
    assert_int_equal(mapq_value_unpack(b.data, b.len, &u, err), MAPQ_OK);
    assert_true(mapq_pages_is_ref(&u.data));
    msgpack_unpacked_destroy(&u);
    /* Trailing bytes make it no reference. */
    mapq_buf_append(&b, "\xc0", 1);
    assert_false(mapq_pages_ref_read(b.data, b.len, &r));
    mapq_buf_release(&b);
}

static void
test_pages_ref_read_refuses_other_values(void **state)
{
    struct mapq_buf b = MAPQ_BUF_INIT;
    struct mapq_pages_ref r, bad = ref_2500;
    msgpack_packer pk;

    (void)state;
    /* A list, and an ext of another type holding the same data. */
    pack_page(&b, 0, 3);
    assert_false(mapq_pages_ref_read(b.data, b.len, &r));
    mapq_buf_reset(&b);
    mapq_value_packer_init(&pk, &b);
    msgpack_pack_ext(&pk, 1, 2);
    msgpack_pack_ext_body(&pk, "x", 1);
    assert_false(mapq_pages_ref_read(b.data, b.len, &r));
    /* A page length of 0 would divide by zero: refused. */
    mapq_buf_reset(&b);
    bad.page_len = 0;
    pack_ref(&b, &bad);
    assert_false(mapq_pages_ref_read(b.data, b.len, &r));
    /* An ext of type 1 whose data is no reference. */
    mapq_buf_reset(&b);
    mapq_value_packer_init(&pk, &b);
    msgpack_pack_ext(&pk, 2, MAPQ_EXT_PAGES);
    msgpack_pack_ext_body(&pk, "\x91\x01", 2);
    assert_false(mapq_pages_ref_read(b.data, b.len, &r));
    assert_false(mapq_pages_ref_read("", 0, &r));
    mapq_buf_release(&b);
}

static void
test_pages_count_and_fields(void **state)
{
    struct mapq_pages_ref r = ref_2500;
    char field[64];

    (void)state;
    assert_int_equal(mapq_pages_count(&r), 3);
    r.n = 3000;
    assert_int_equal(mapq_pages_count(&r), 3);
    r.n = 3001;
    assert_int_equal(mapq_pages_count(&r), 4);
    r.n = 0;
    assert_int_equal(mapq_pages_count(&r), 0);
    mapq_pages_field(&ref_2500, 2, field, sizeof(field));
    assert_string_equal(field, "o:1/2");
}

static void
test_pages_append_checks_each_page(void **state)
{
    struct mapq_buf page = MAPQ_BUF_INIT, out = MAPQ_BUF_INIT,
                    want = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    uint64_t p;

    (void)state;
    /* The three pages, joined, are the list's elements in order. */
    for (p = 0; p < 3; p++) {
        mapq_buf_reset(&page);
        pack_page(&page, p * 1000, p < 2 ? 1000 : 500);
        assert_int_equal(
            mapq_pages_append(&ref_2500, p, page.data, page.len, &out, err),
            MAPQ_OK);
    }
    pack_page(&want, 0, 2500);
    assert_int_equal(out.len, want.len - 3); /* less the array 16 header */
    assert_memory_equal(out.data, want.data + 3, out.len);
    /* A short page, the last page full, a missing one, a page past the
     * end, a cut one: each refused, out unchanged. */
    mapq_buf_reset(&out);
    mapq_buf_reset(&page);
    pack_page(&page, 0, 999);
    assert_int_equal(
        mapq_pages_append(&ref_2500, 0, page.data, page.len, &out, err),
        MAPQ_EPROTO);
    assert_string_equal(err, "page 0 of o:1 is missing or is not a list of "
                             "1000 elements");
    mapq_buf_reset(&page);
    pack_page(&page, 2000, 1000);
    assert_int_equal(
        mapq_pages_append(&ref_2500, 2, page.data, page.len, &out, err),
        MAPQ_EPROTO);
    assert_int_equal(mapq_pages_append(&ref_2500, 1, NULL, 0, &out, err),
                     MAPQ_EPROTO);
    assert_int_equal(
        mapq_pages_append(&ref_2500, 3, page.data, page.len, &out, err),
        MAPQ_EPROTO);
    assert_string_equal(err, "no page 3 in o:1");
    mapq_buf_reset(&page);
    pack_page(&page, 2000, 500);
    assert_int_equal(
        mapq_pages_append(&ref_2500, 2, page.data, page.len - 1, &out, err),
        MAPQ_EPROTO);
    assert_int_equal(out.len, 0);
    mapq_buf_release(&page);
    mapq_buf_release(&out);
    mapq_buf_release(&want);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pages_ref_round_trip),
        cmocka_unit_test(test_pages_ref_read_refuses_other_values),
        cmocka_unit_test(test_pages_count_and_fields),
        cmocka_unit_test(test_pages_append_checks_each_page),
    };

    return cmocka_run_group_tests_name("pages", tests, NULL, NULL);
}
