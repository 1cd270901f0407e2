/*
 * test_record.c - reading claim replies, subtask bodies, result and
 * attempt records and event entries, well-formed and not.
 */
#include "mapq_test.h"

#include <msgpack.h>
#include <stdint.h>
#include <string.h>

#include "mapq_buf.h"
#include "mapq_proto.h"
#include "mapq_record.h"
#include "mapq_value.h"

/* A record under test: the packed bytes and their unpacked object. */
struct rec {
    struct mapq_buf buf;
    msgpack_packer pk;
    msgpack_unpacked u;
};

static int
rec_setup(void **state)
{
    struct rec *r = test_calloc(1, sizeof(*r));

    mapq_buf_init(&r->buf, 0);
    mapq_value_packer_init(&r->pk, &r->buf);
    msgpack_unpacked_init(&r->u);
    *state = r;
    return 0;
}

static int
rec_teardown(void **state)
{
    struct rec *r = *state;

    msgpack_unpacked_destroy(&r->u);
    mapq_buf_release(&r->buf);
    test_free(r);
    return 0;
}

/* Unpacks what was packed into r. */
static const msgpack_object *
rec_unpack(struct rec *r)
{
    char err[MAPQ_ERR_LEN];

    assert_int_equal(mapq_value_unpack(r->buf.data, r->buf.len, &r->u, err),
                     MAPQ_OK);
    return &r->u.data;
}

static void
pack_str(msgpack_packer *pk, const char *s)
{
    mapq_value_pack_str(pk, s);
}

static void
pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
    pack_str(pk, k);
    msgpack_pack_int64(pk, v);
}

static void
pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    pack_str(pk, k);
    pack_str(pk, v);
}

static void
test_record_claim_entries(void **state)
{
    struct rec *r = *state;
    const msgpack_object *o;
    struct mapq_claimed c;
    uint32_t pos = 0;

    msgpack_pack_array(&r->pk, 11);
    /* a subtask without a checkpoint */
    pack_str(&r->pk, "ref1");
    pack_str(&r->pk, "body1");
    msgpack_pack_false(&r->pk);
    /* a foreign message */
    pack_str(&r->pk, "hello");
    msgpack_pack_false(&r->pk);
    msgpack_pack_false(&r->pk);
    /* a bad entry: the body is an int */
    pack_str(&r->pk, "ref2");
    msgpack_pack_int(&r->pk, 7);
    msgpack_pack_nil(&r->pk);
    /* two elements left over: no entry */
    pack_str(&r->pk, "ref3");
    pack_str(&r->pk, "body3");
    o = rec_unpack(r);

    assert_int_equal(mapq_record_claim_next(o, &pos, &c), MAPQ_CLAIM_SUBTASK);
    assert_true(mapq_value_str_eq(c.ref, "ref1"));
    assert_true(mapq_value_str_eq(c.body, "body1"));
    assert_int_equal(c.ckpt->type, MSGPACK_OBJECT_BOOLEAN);
    assert_int_equal(mapq_record_claim_next(o, &pos, &c), MAPQ_CLAIM_FOREIGN);
    assert_true(mapq_value_str_eq(c.ref, "hello"));
    assert_int_equal(mapq_record_claim_next(o, &pos, &c), MAPQ_CLAIM_BAD);
    assert_int_equal(mapq_record_claim_next(o, &pos, &c), MAPQ_CLAIM_END);
    assert_int_equal(mapq_record_claim_next(o, &pos, &c), MAPQ_CLAIM_END);
}

static void
test_record_claim_not_an_array(void **state)
{
    struct rec *r = *state;
    struct mapq_claimed c;
    uint32_t pos = 0;

    pack_str(&r->pk, "ref1");
    assert_int_equal(mapq_record_claim_next(rec_unpack(r), &pos, &c),
                     MAPQ_CLAIM_END);
}

static void
test_record_body(void **state)
{
    struct rec *r = *state;
    struct mapq_body b;
    char err[MAPQ_ERR_LEN];

    msgpack_pack_map(&r->pk, 3);
    pack_kv_int(&r->pk, "i", 4);
    pack_str(&r->pk, "in");
    msgpack_pack_map(&r->pk, 1);
    pack_kv_int(&r->pk, "x", 4);
    pack_str(&r->pk, "h");
    msgpack_pack_bin(&r->pk, 16);
    msgpack_pack_bin_body(&r->pk, "0123456789abcdef", 16);

    assert_int_equal(mapq_record_body(rec_unpack(r), &b, err), MAPQ_OK);
    assert_int_equal(b.inputs->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(b.inputs->via.map.size, 1);
    assert_int_equal(b.keylen, 16);
    assert_memory_equal(b.key, "0123456789abcdef", 16);
}

static void
test_record_body_key_not_bin(void **state)
{
    struct rec *r = *state;
    struct mapq_body b;
    char err[MAPQ_ERR_LEN];

    msgpack_pack_map(&r->pk, 2);
    pack_str(&r->pk, "in");
    msgpack_pack_map(&r->pk, 0);
    pack_kv_str(&r->pk, "h", "0123456789abcdef");

    assert_int_equal(mapq_record_body(rec_unpack(r), &b, err), MAPQ_EPROTO);
    assert_non_null(strstr(err, "inputs or key"));
}

static void
test_record_body_not_a_map(void **state)
{
    struct rec *r = *state;
    struct mapq_body b;
    char err[MAPQ_ERR_LEN];

    msgpack_pack_array(&r->pk, 0);
    assert_int_equal(mapq_record_body(rec_unpack(r), &b, err), MAPQ_EPROTO);
}

static void
test_record_result_success(void **state)
{
    struct rec *r = *state;
    struct mapq_result res;

    msgpack_pack_map(&r->pk, 2);
    pack_kv_int(&r->pk, "p", MAPQ_PHASE_CACHED);
    pack_kv_str(&r->pk, "v", "out");

    mapq_record_result(rec_unpack(r), &res);
    assert_true(res.ok);
    assert_int_equal(res.phase, MAPQ_PHASE_CACHED);
    assert_true(mapq_value_str_eq(res.value, "out"));
    assert_null(res.error);
}

static void
test_record_result_failure(void **state)
{
    struct rec *r = *state;
    struct mapq_result res;

    msgpack_pack_map(&r->pk, 4);
    pack_kv_int(&r->pk, "p", MAPQ_PHASE_FAILED);
    pack_kv_str(&r->pk, "e", "exit status 3");
    pack_kv_int(&r->pk, "a", 2);
    pack_kv_str(&r->pk, "l", "boom\n");

    mapq_record_result(rec_unpack(r), &res);
    assert_false(res.ok);
    assert_null(res.value);
    assert_int_equal(res.phase, MAPQ_PHASE_FAILED);
    assert_int_equal(res.error_len, 13);
    assert_memory_equal(res.error, "exit status 3", 13);
    assert_int_equal(res.log_len, 5);
    assert_int_equal(res.attempt, 2);
}

/* A value under a phase that is no success, or a phase out of range, is
 * not an output; a field of the wrong type reads as absent. */
static void
test_record_result_odd(void **state)
{
    struct rec *r = *state;
    struct mapq_result res;

    msgpack_pack_map(&r->pk, 4);
    pack_kv_int(&r->pk, "p", 99);
    pack_kv_str(&r->pk, "v", "out");
    pack_kv_int(&r->pk, "e", 5);
    pack_kv_str(&r->pk, "a", "two");

    mapq_record_result(rec_unpack(r), &res);
    assert_false(res.ok);
    assert_int_equal(res.phase, -1);
    assert_null(res.value);
    assert_null(res.error);
    assert_int_equal(res.attempt, 0);
}

static void
test_record_attempt(void **state)
{
    struct rec *r = *state;
    struct mapq_attempt a;

    msgpack_pack_map(&r->pk, 7);
    pack_kv_int(&r->pk, "a", 3);
    pack_kv_str(&r->pk, "ag", "host-1");
    pack_kv_int(&r->pk, "t", 1700000000000);
    pack_kv_int(&r->pk, "d", 250);
    pack_kv_str(&r->pk, "k", "S");
    pack_kv_int(&r->pk, "x", -1);
    pack_kv_int(&r->pk, "sig", 9);

    mapq_record_attempt(rec_unpack(r), &a);
    assert_int_equal(a.number, 3);
    assert_true(mapq_value_str_eq(a.agent, "host-1"));
    assert_int_equal(a.started, 1700000000000);
    assert_int_equal(a.duration, 250);
    assert_int_equal(a.kind, 'S');
    assert_int_equal(a.exit_status, -1);
    assert_int_equal(a.signal, 9);
    assert_int_equal(a.phase, -1);
    assert_null(a.error);
    assert_null(a.tail);
}

/* An int past INT64_MAX reads as absent, not as a negative number. */
static void
test_record_attempt_huge_int(void **state)
{
    struct rec *r = *state;
    struct mapq_attempt a;

    msgpack_pack_map(&r->pk, 2);
    pack_str(&r->pk, "d");
    msgpack_pack_uint64(&r->pk, UINT64_MAX);
    pack_kv_str(&r->pk, "k", "long");

    mapq_record_attempt(rec_unpack(r), &a);
    assert_int_equal(a.duration, -1);
    assert_int_equal(a.kind, 'T');
}

/* Appends to r's buffer an attempt record of element index (or none
 * when index < 0) with attempt number a. */
static void
pack_paged(struct rec *r, int64_t index, int64_t a)
{
    msgpack_pack_map(&r->pk, index < 0 ? 2 : 3);
    pack_kv_int(&r->pk, "a", a);
    if (index >= 0)
        pack_kv_int(&r->pk, "i", index);
    pack_kv_str(&r->pk, "k", "T");
}

static void
test_record_page_fields(void **state)
{
    char buf[MAPQ_LOG_FIELD_LEN];

    (void)state;
    assert_int_equal(mapq_record_page_field(buf, 0, 0), 4);
    assert_string_equal(buf, "0/p0");
    assert_int_equal(mapq_record_page_field(buf, 3, MAPQ_LOG_PAGE - 1), 4);
    assert_string_equal(buf, "3/p0");
    mapq_record_page_field(buf, 3, MAPQ_LOG_PAGE);
    assert_string_equal(buf, "3/p1");
    mapq_record_page_field(buf, 3, 5 * MAPQ_LOG_PAGE + 2);
    assert_string_equal(buf, "3/p5");
    /* The longest: still within MAPQ_LOG_FIELD_LEN. */
    assert_true(mapq_record_page_field(buf, UINT32_MAX, UINT64_MAX) <
                MAPQ_LOG_FIELD_LEN);
    assert_non_null(strstr(buf, "4294967295/p"));
    assert_true(mapq_record_is_page_field("0/p0", 4));
    assert_false(mapq_record_is_page_field("12/p", 4));
    assert_false(mapq_record_is_page_field("0/12", 4));
    assert_false(mapq_record_is_page_field("/p1", 3));
    assert_false(mapq_record_is_page_field("x/p1", 4));
    assert_false(mapq_record_is_page_field("#3", 2));
}

/* A page is walked record by record; one without an element index is
 * passed over, and the walk stops where the rest cannot be read. */
static void
test_record_page_walk(void **state)
{
    struct rec *r = *state;
    struct mapq_buf one;
    size_t off = 0, n, first, bad;
    uint64_t index;
    const char *p;

    pack_paged(r, 5, 1);
    first = r->buf.len;
    pack_paged(r, -1, 1);
    pack_paged(r, 70, 1);
    pack_paged(r, 5, 2);
    bad = r->buf.len;
    mapq_buf_append(&r->buf, "\xc1", 1); /* never valid msgpack */
    pack_paged(r, 9, 1);

    assert_true(
        mapq_record_page_next(r->buf.data, r->buf.len, &off, &index, &p, &n));
    assert_int_equal(index, 5);
    assert_ptr_equal(p, r->buf.data);
    assert_int_equal(n, first);
    assert_true(
        mapq_record_page_next(r->buf.data, r->buf.len, &off, &index, &p, &n));
    assert_int_equal(index, 70);
    assert_true(
        mapq_record_page_next(r->buf.data, r->buf.len, &off, &index, &p, &n));
    assert_int_equal(index, 5);
    /* Stopped at the byte that is no msgpack: the rest is not read. */
    assert_false(
        mapq_record_page_next(r->buf.data, r->buf.len, &off, &index, &p, &n));
    assert_int_equal(off, bad);
    assert_false(
        mapq_record_page_next(r->buf.data, r->buf.len, &off, &index, &p, &n));

    /* Element 5's records, in order: attempt 1 then 2. */
    mapq_buf_init(&one, 0);
    mapq_record_page_take(r->buf.data, r->buf.len, 5, &one);
    assert_int_equal(one.len, 2 * first);
    assert_memory_equal(one.data, r->buf.data, first);
    mapq_record_page_take(r->buf.data, r->buf.len, 6, &one);
    assert_int_equal(one.len, 2 * first);
    mapq_buf_release(&one);
}

/* What the event callback saw. */
struct seen {
    struct mapq_event ev[8];
    size_t n;
};

static void
seen_cb(const struct mapq_event *ev, void *arg)
{
    struct seen *s = arg;

    assert_true(s->n < 8);
    s->ev[s->n++] = *ev;
}

static void
test_record_events(void **state)
{
    struct rec *r = *state;
    struct seen s = {0};
    uint32_t bad;

    msgpack_pack_array(&r->pk, 15);
    /* good */
    msgpack_pack_uint64(&r->pk, 1);
    msgpack_pack_uint64(&r->pk, 40);
    msgpack_pack_uint64(&r->pk, MAPQ_PHASE_SUCCEEDED);
    /* node out of range */
    msgpack_pack_uint64(&r->pk, 2);
    msgpack_pack_uint64(&r->pk, 1);
    msgpack_pack_uint64(&r->pk, MAPQ_PHASE_FAILED);
    /* a phase that is not final */
    msgpack_pack_uint64(&r->pk, 0);
    msgpack_pack_uint64(&r->pk, 1);
    msgpack_pack_uint64(&r->pk, MAPQ_PHASE_RUNNING);
    /* a negative index */
    msgpack_pack_uint64(&r->pk, 0);
    msgpack_pack_int64(&r->pk, -1);
    msgpack_pack_uint64(&r->pk, MAPQ_PHASE_FAILED);
    /* good */
    msgpack_pack_uint64(&r->pk, 0);
    msgpack_pack_uint64(&r->pk, 7);
    msgpack_pack_uint64(&r->pk, MAPQ_PHASE_ABORTED);

    assert_int_equal(
        mapq_record_events(r->buf.data, r->buf.len, 2, seen_cb, &s, &bad),
        MAPQ_EPROTO);
    assert_int_equal(bad, 3);
    assert_int_equal(s.n, 2);
    assert_int_equal(s.ev[0].node, 1);
    assert_int_equal(s.ev[0].index, 40);
    assert_int_equal(s.ev[0].phase, MAPQ_PHASE_SUCCEEDED);
    assert_int_equal(s.ev[1].node, 0);
    assert_int_equal(s.ev[1].index, 7);
    assert_int_equal(s.ev[1].phase, MAPQ_PHASE_ABORTED);
}

static void
test_record_events_all_good(void **state)
{
    struct rec *r = *state;
    struct seen s = {0};
    uint32_t bad;

    msgpack_pack_array(&r->pk, 3);
    msgpack_pack_uint64(&r->pk, 0);
    msgpack_pack_uint64(&r->pk, 0);
    msgpack_pack_uint64(&r->pk, MAPQ_PHASE_TIMED_OUT);

    assert_int_equal(
        mapq_record_events(r->buf.data, r->buf.len, 1, seen_cb, &s, &bad),
        MAPQ_OK);
    assert_int_equal(bad, 0);
    assert_int_equal(s.n, 1);
}

/* Not a multiple of three, not an array, or not msgpack: nothing applied. */
static void
test_record_events_malformed(void **state)
{
    struct rec *r = *state;
    struct seen s = {0};
    uint32_t bad;
    static const char junk[] = {(char)0xdd, 0x7f, (char)0xff, (char)0xff};

    msgpack_pack_array(&r->pk, 2);
    msgpack_pack_uint64(&r->pk, 0);
    msgpack_pack_uint64(&r->pk, 0);
    assert_int_equal(
        mapq_record_events(r->buf.data, r->buf.len, 1, seen_cb, &s, &bad),
        MAPQ_EPROTO);
    assert_int_equal(
        mapq_record_events(junk, sizeof(junk), 1, seen_cb, &s, &bad),
        MAPQ_EPROTO);
    assert_int_equal(mapq_record_events("", 0, 1, seen_cb, &s, &bad),
                     MAPQ_EPROTO);
    assert_int_equal(s.n, 0);
}

/* The end marker is the msgpack string "end" alone: not an event entry,
 * and nothing else is taken for it. */
static void
test_record_end_marker(void **state)
{
    struct rec *r = *state;
    struct seen s = {0};
    uint32_t bad;

    msgpack_pack_str(&r->pk, 3);
    msgpack_pack_str_body(&r->pk, "end", 3);
    assert_true(mapq_record_is_end(r->buf.data, r->buf.len));
    assert_true(mapq_record_is_end(MAPQ_EVENT_END, MAPQ_EVENT_END_LEN));
    assert_false(mapq_record_is_end("end", 3));
    assert_false(mapq_record_is_end("\243ends", 5));
    assert_false(mapq_record_is_end("", 0));
    assert_int_equal(
        mapq_record_events(r->buf.data, r->buf.len, 1, seen_cb, &s, &bad),
        MAPQ_EPROTO);
    assert_int_equal(s.n, 0);
}

/* Error groups quote a failure's last non-empty stderr line. */
static void
test_record_last_line(void **state)
{
    const char *p;
    size_t n;

    (void)state;
    mapq_record_last_line("a\nboom: bad\n\n  \r\n", 17, &p, &n);
    assert_int_equal(n, 9);
    assert_memory_equal(p, "boom: bad", 9);
    mapq_record_last_line("one line", 8, &p, &n);
    assert_int_equal(n, 8);
    mapq_record_last_line("\n\n", 2, &p, &n);
    assert_int_equal(n, 0);
    mapq_record_last_line("", 0, &p, &n);
    assert_int_equal(n, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(f) cmocka_unit_test_setup_teardown(f, rec_setup, rec_teardown)
        T(test_record_claim_entries),
        T(test_record_claim_not_an_array),
        T(test_record_body),
        T(test_record_body_key_not_bin),
        T(test_record_body_not_a_map),
        T(test_record_result_success),
        T(test_record_result_failure),
        T(test_record_result_odd),
        T(test_record_attempt),
        T(test_record_attempt_huge_int),
        T(test_record_page_fields),
        T(test_record_page_walk),
        T(test_record_events),
        T(test_record_events_all_good),
        T(test_record_events_malformed),
        T(test_record_end_marker),
        T(test_record_last_line),
#undef T
    };

    return cmocka_run_group_tests_name("record", tests, NULL, NULL);
}
