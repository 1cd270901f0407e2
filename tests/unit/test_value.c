/*
 * test_value.c - msgpack unpacking, canonical encoding and subtask keys.
 */
#include "mapq_test.h"

#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_buf.h"
#include "mapq_type.h"
#include "mapq_value.h"

/*
 * Under ASan, any single allocation over 1 GiB aborts the test, so a
 * passing sanitizer run shows that no declared length reached msgpack-c's
 * allocator (the 5-byte map32 header once asked for 256 GiB).
 */
const char *__asan_default_options(void);

const char *
__asan_default_options(void)
{
    return "max_allocation_size_mb=1024:allocator_may_return_null=0";
}

struct fx {
    struct mapq_buf mp;  /* msgpack built by the test */
    struct mapq_buf out; /* canonical bytes produced by the module */
    struct mapq_buf alt; /* a second canonical encoding to compare with */
    struct mapq_buf key; /* the array a subtask key hashes */
    msgpack_packer pk;   /* appends to mp */
    msgpack_unpacked u;
    msgpack_unpacked u2;
    struct mapq_type *types[8]; /* parsed by type(), freed by teardown */
    size_t ntypes;
    char err[MAPQ_ERR_LEN];
};

static int
setup(void **state)
{
    struct fx *f = mapq_xcalloc(1, sizeof(*f));

    mapq_buf_init(&f->mp, 0);
    mapq_buf_init(&f->out, 0);
    mapq_buf_init(&f->alt, 0);
    mapq_buf_init(&f->key, 0);
    mapq_value_packer_init(&f->pk, &f->mp);
    msgpack_unpacked_init(&f->u);
    msgpack_unpacked_init(&f->u2);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    size_t i;

    for (i = 0; i < f->ntypes; i++)
        mapq_type_free(f->types[i]);
    msgpack_unpacked_destroy(&f->u2);
    msgpack_unpacked_destroy(&f->u);
    mapq_buf_release(&f->key);
    mapq_buf_release(&f->alt);
    mapq_buf_release(&f->out);
    mapq_buf_release(&f->mp);
    free(f);
    return 0;
}

/* Empties the buffers between cases of one test. */
static void
reset(struct fx *f)
{
    mapq_buf_reset(&f->mp);
    mapq_buf_reset(&f->out);
    mapq_buf_reset(&f->alt);
    mapq_buf_reset(&f->key);
    f->err[0] = '\0';
}

/* Replaces out with the canonical encoding of the len bytes at data. */
static void
canon(struct fx *f, const void *data, size_t len, struct mapq_buf *out)
{
    assert_int_equal(mapq_value_unpack(data, len, &f->u, f->err), MAPQ_OK);
    mapq_buf_reset(out);
    assert_int_equal(mapq_value_canonical(&f->u.data, out), MAPQ_OK);
}

/* Parses type s, which must be valid; the fixture frees it. */
static const struct mapq_type *
type(struct fx *f, const char *s)
{
    struct mapq_type *t = mapq_type_parse(s, f->err);

    assert_non_null(t);
    assert_true(f->ntypes < sizeof(f->types) / sizeof(f->types[0]));
    f->types[f->ntypes++] = t;
    return t;
}

/* Replaces out with the canonical encoding under type t of what mp holds. */
static void
canon_typed(struct fx *f, const struct mapq_type *t, struct mapq_buf *out)
{
    assert_int_equal(mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err),
                     MAPQ_OK);
    mapq_buf_reset(out);
    assert_int_equal(mapq_value_canonical_typed(&f->u.data, t, out), MAPQ_OK);
}

/* Asserts that out holds exactly the len bytes of want. */
static void
assert_bytes(const struct mapq_buf *out, const void *want, size_t len)
{
    assert_int_equal(out->len, len);
    assert_memory_equal(out->data, want, len);
}

/* Result code of unpacking len bytes of data; f->err holds the message. */
static enum mapq_err
unpack_rc(struct fx *f, const void *data, size_t len)
{
    f->err[0] = '\0';
    return mapq_value_unpack(data, len, &f->u, f->err);
}

/* Hex of the subtask key of the packed array in f->key. */
static void
key_hex(struct fx *f, char hex[2 * MAPQ_KEY_LEN + 1])
{
    unsigned char key[MAPQ_KEY_LEN];

    mapq_value_hash(f->key.data, f->key.len, key);
    mapq_value_key_hex(key, hex);
}

/* A scope for subtask_key: NULL exec means nil (a cached task). */
struct scope {
    const char *exec;
    const char *node;
    uint64_t index;
};

/*
 * The subtask key as docs/PROTOCOL.md lays it out: SHA-256/128 of [task,
 * cache version, interface, canonical inputs, scope]. inputs is msgpack of a
 * map in any key order. The driver's own builder is static, so this checks
 * that the layout, canonical encoding and hash agree with the document.
 */
static void
subtask_key(struct fx *f, const char *task, const char *version,
            const char *iface, const struct mapq_buf *inputs,
            const struct scope *scope, char hex[2 * MAPQ_KEY_LEN + 1])
{
    msgpack_packer kpk;

    mapq_buf_reset(&f->key);
    mapq_value_packer_init(&kpk, &f->key);
    msgpack_pack_array(&kpk, 5);
    mapq_value_pack_str(&kpk, task);
    mapq_value_pack_str(&kpk, version);
    mapq_value_pack_str(&kpk, iface);
    assert_int_equal(
        mapq_value_unpack(inputs->data, inputs->len, &f->u2, f->err), MAPQ_OK);
    assert_int_equal(mapq_value_canonical(&f->u2.data, &f->key), MAPQ_OK);
    if (scope->exec == NULL) {
        msgpack_pack_nil(&kpk);
    } else {
        msgpack_pack_array(&kpk, 3);
        mapq_value_pack_str(&kpk, scope->exec);
        mapq_value_pack_str(&kpk, scope->node);
        msgpack_pack_uint64(&kpk, scope->index);
    }
    key_hex(f, hex);
}

/* Packs {"x": x, "label": label} into mp, x first when x_first. */
static void
pack_inputs(struct fx *f, int64_t x, const char *label, int x_first)
{
    mapq_buf_reset(&f->mp);
    msgpack_pack_map(&f->pk, 2);
    if (x_first) {
        mapq_value_pack_str(&f->pk, "x");
        msgpack_pack_int64(&f->pk, x);
    }
    mapq_value_pack_str(&f->pk, "label");
    mapq_value_pack_str(&f->pk, label);
    if (!x_first) {
        mapq_value_pack_str(&f->pk, "x");
        msgpack_pack_int64(&f->pk, x);
    }
}

/* ---- unpacking ---------------------------------------------------------- */

static void
test_value_unpack_one_object(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;

    msgpack_pack_array(&f->pk, 3);
    msgpack_pack_int(&f->pk, -3);
    mapq_value_pack_str(&f->pk, "ab");
    msgpack_pack_nil(&f->pk);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_OK);
    o = &f->u.data;
    assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(o->via.array.size, 3);
    assert_int_equal(o->via.array.ptr[0].type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_int_equal(o->via.array.ptr[0].via.i64, -3);
    assert_true(mapq_value_str_eq(&o->via.array.ptr[1], "ab"));
    assert_int_equal(o->via.array.ptr[2].type, MSGPACK_OBJECT_NIL);
}

static void
test_value_unpack_strings_point_into_input(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;

    mapq_value_pack_str(&f->pk, "hello");
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_OK);
    o = &f->u.data;
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    assert_ptr_equal(o->via.str.ptr, f->mp.data + 1);
}

static void
test_value_unpack_truncated_rejected(void **state)
{
    struct fx *f = *state;
    size_t n;

    msgpack_pack_map(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "a");
    msgpack_pack_uint64(&f->pk, UINT64_MAX);
    mapq_value_pack_str(&f->pk, "b");
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_double(&f->pk, 0.5);
    msgpack_pack_bin(&f->pk, 3);
    msgpack_pack_bin_body(&f->pk, "xyz", 3);
    /* Every proper prefix, including the empty one, is refused. */
    for (n = 0; n < f->mp.len; n++) {
        assert_int_equal(unpack_rc(f, f->mp.data, n), MAPQ_EPROTO);
        assert_string_equal(f->err, "truncated msgpack value");
    }
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_OK);
}

/* Headers that declare far more than their input holds are refused before
 * msgpack-c allocates for them: under ASan an allocation of gigabytes
 * would abort the test. */
static void
test_value_unpack_huge_declared_lengths_refused(void **state)
{
    static const struct {
        const char *bytes;
        size_t len;
    } cases[] = {
        {"\xdd\xff\xff\xff\xff", 5},             /* array32 of 4G */
        {"\xdf\xff\xff\xff\xff", 5},             /* map32 of 4G pairs */
        {"\xdc\xff\xff\x01\x02", 5},             /* array16 of 65535 */
        {"\xde\x00\x03\x01\x02\x03\x04\x05", 8}, /* map16: 6 needed */
        {"\xdb\xff\xff\xff\xff", 5},             /* str32 of 4 GiB */
        {"\xc6\x7f\xff\xff\xff", 5},             /* bin32 of 2 GiB */
        {"\xc9\xff\xff\xff\xff\x01", 6},         /* ext32 */
        {"\x91\xdd\xff\xff\xff\xff", 6},         /* nested array32 */
        {"\x92\x01\xdf\x00\x00\x10\x00", 7},     /* map32 in an array */
        {"\xda\xff\xff", 3},                     /* str16 */
        {"\xd9\x05"
         "abcd",
         6},                                     /* str8, one short */
        {"\xc4\x02\x01", 3},                     /* bin8 */
        {"\xc5\xff\xff\x00", 4},                 /* bin16 */
        {"\xc7\xff\x01", 3},                     /* ext8 */
        {"\xc8\xff\xff\x01", 4},                 /* ext16 */
        {"\xd8\x01\x00", 3},                     /* fixext16 */
        {"\xdd\x00\x00\x00\x02\xc0", 6},         /* array32: 2 needed */
        {"\x81\xa1k\xdf\xff\xff\xff\xff", 8},    /* map32 as a value */
        {"\x9f\xc0\xc0\xc0\xc0\xc0\xc0\xc0", 8}, /* fixarray of 15 */
    };
    struct fx *f = *state;
    size_t i, off = 0;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(unpack_rc(f, cases[i].bytes, cases[i].len),
                         MAPQ_EPROTO);
        assert_string_equal(f->err, "truncated msgpack value");
    }
    /* The 5-byte header in a stream, and an offset at or past the end. */
    assert_int_equal(mapq_value_unpack_next(cases[0].bytes, cases[0].len, &off,
                                            &f->u, f->err),
                     MAPQ_EPROTO);
    assert_int_equal(off, 0);
    off = 6;
    assert_int_equal(mapq_value_unpack_next(cases[0].bytes, cases[0].len, &off,
                                            &f->u, f->err),
                     MAPQ_EPROTO);
    assert_int_equal(off, 6);
}

static void
test_value_unpack_next_walks_a_stream(void **state)
{
    struct fx *f = *state;
    size_t off = 0;

    msgpack_pack_int(&f->pk, 7);
    mapq_value_pack_str(&f->pk, "ab");
    assert_int_equal(
        mapq_value_unpack_next(f->mp.data, f->mp.len, &off, &f->u2, f->err),
        MAPQ_OK);
    assert_int_equal(f->u2.data.via.i64, 7);
    assert_int_equal(off, 1);
    assert_int_equal(
        mapq_value_unpack_next(f->mp.data, f->mp.len, &off, &f->u2, f->err),
        MAPQ_OK);
    assert_true(mapq_value_str_eq(&f->u2.data, "ab"));
    assert_int_equal(off, f->mp.len);
    /* An impossible header after them is refused, off unchanged. */
    mapq_buf_append(&f->mp, "\xdd\xff\xff\xff\xff", 5);
    assert_int_equal(
        mapq_value_unpack_next(f->mp.data, f->mp.len, &off, &f->u2, f->err),
        MAPQ_EPROTO);
    assert_int_equal(off, f->mp.len - 5);
}

static void
test_value_unpack_trailing_bytes_rejected(void **state)
{
    struct fx *f = *state;

    msgpack_pack_int(&f->pk, 1);
    msgpack_pack_int(&f->pk, 2);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_EPROTO);
    assert_string_equal(f->err, "1 trailing bytes after msgpack value");
    mapq_value_pack_str(&f->pk, "zz");
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_EPROTO);
    assert_string_equal(f->err, "4 trailing bytes after msgpack value");
}

static void
test_value_unpack_malformed_rejected(void **state)
{
    /* 0xc1 is the one byte msgpack never uses, alone or inside a value. */
    static const char alone[] = "\xc1";
    static const char inside[] = "\x92\x01\xc1";
    struct fx *f = *state;

    assert_int_equal(unpack_rc(f, alone, 1), MAPQ_EPROTO);
    assert_string_equal(f->err, "malformed msgpack value");
    assert_int_equal(unpack_rc(f, inside, 3), MAPQ_EPROTO);
    assert_string_equal(f->err, "malformed msgpack value");
}

static void
test_value_unpack_nesting_limit(void **state)
{
    struct fx *f = *state;
    int i;

    /* msgpack-c unpacks 32 levels; a 33rd is refused, not overflowed. */
    for (i = 0; i < 31; i++)
        msgpack_pack_array(&f->pk, 1);
    msgpack_pack_array(&f->pk, 0);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_OK);
    reset(f);
    for (i = 0; i < 32; i++)
        msgpack_pack_array(&f->pk, 1);
    msgpack_pack_array(&f->pk, 0);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_EPROTO);
}

/* ---- canonical encoding ------------------------------------------------- */

static void
test_value_canonical_map_order_irrelevant(void **state)
{
    /* {"b": 1, "a": {"y": 2, "x": [3]}} canonically: keys sorted. */
    static const char want[] = "\x82\xa1"
                               "a"
                               "\x82\xa1"
                               "x"
                               "\x91\x03\xa1"
                               "y"
                               "\x02\xa1"
                               "b"
                               "\x01";
    struct fx *f = *state;

    msgpack_pack_map(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "b");
    msgpack_pack_int(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "a");
    msgpack_pack_map(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "y");
    msgpack_pack_int(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "x");
    msgpack_pack_array(&f->pk, 1);
    msgpack_pack_int(&f->pk, 3);
    canon(f, f->mp.data, f->mp.len, &f->out);
    assert_bytes(&f->out, want, sizeof(want) - 1);

    mapq_buf_reset(&f->mp);
    msgpack_pack_map(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "a");
    msgpack_pack_map(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "x");
    msgpack_pack_array(&f->pk, 1);
    msgpack_pack_int(&f->pk, 3);
    mapq_value_pack_str(&f->pk, "y");
    msgpack_pack_int(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "b");
    msgpack_pack_int(&f->pk, 1);
    canon(f, f->mp.data, f->mp.len, &f->alt);
    assert_bytes(&f->alt, f->out.data, f->out.len);
}

static void
test_value_canonical_keys_sorted_by_encoding(void **state)
{
    /* Sorted by encoded bytes: 0x01 (int 1) < 0xa1 "b" < 0xa2 "aa", so a
     * shorter string sorts first whatever its letters. */
    static const char want[] = "\x83\x01\xc3\xa1"
                               "b"
                               "\x02\xa2"
                               "aa"
                               "\x03";
    struct fx *f = *state;

    msgpack_pack_map(&f->pk, 3);
    mapq_value_pack_str(&f->pk, "aa");
    msgpack_pack_int(&f->pk, 3);
    mapq_value_pack_str(&f->pk, "b");
    msgpack_pack_int(&f->pk, 2);
    msgpack_pack_int(&f->pk, 1);
    msgpack_pack_true(&f->pk);
    canon(f, f->mp.data, f->mp.len, &f->out);
    assert_bytes(&f->out, want, sizeof(want) - 1);
}

static void
test_value_canonical_floats_as_float64(void **state)
{
    static const char want[] = "\xcb\x3f\xf8\x00\x00\x00\x00\x00\x00";
    struct fx *f = *state;

    msgpack_pack_float(&f->pk, 1.5f);
    assert_int_equal(f->mp.len, 5);
    canon(f, f->mp.data, f->mp.len, &f->out);
    assert_bytes(&f->out, want, 9);
    mapq_buf_reset(&f->mp);
    msgpack_pack_double(&f->pk, 1.5);
    canon(f, f->mp.data, f->mp.len, &f->alt);
    assert_bytes(&f->alt, want, 9);
}

static void
test_value_canonical_shortest_ints_and_strings(void **state)
{
    /* int64 5, uint16 200, str8 "a" and bin32 "z" in a wide encoding. */
    static const char wide[] = "\x94"
                               "\xd3\x00\x00\x00\x00\x00\x00\x00\x05"
                               "\xcd\x00\xc8"
                               "\xd9\x01"
                               "a"
                               "\xc6\x00\x00\x00\x01"
                               "z";
    static const char want[] = "\x94\x05\xcc\xc8\xa1"
                               "a"
                               "\xc4\x01"
                               "z";
    struct fx *f = *state;

    canon(f, wide, sizeof(wide) - 1, &f->out);
    assert_bytes(&f->out, want, sizeof(want) - 1);
}

static void
test_value_canonical_round_trip(void **state)
{
    struct fx *f = *state;

    msgpack_pack_map(&f->pk, 6);
    mapq_value_pack_str(&f->pk, "neg");
    msgpack_pack_int64(&f->pk, INT64_MIN);
    mapq_value_pack_str(&f->pk, "big");
    msgpack_pack_uint64(&f->pk, UINT64_MAX);
    mapq_value_pack_str(&f->pk, "bin");
    msgpack_pack_bin(&f->pk, 3);
    msgpack_pack_bin_body(&f->pk, "\x00\xff\x01", 3);
    mapq_value_pack_str(&f->pk, "l");
    msgpack_pack_array(&f->pk, 4);
    msgpack_pack_true(&f->pk);
    msgpack_pack_false(&f->pk);
    msgpack_pack_nil(&f->pk);
    msgpack_pack_double(&f->pk, -0.25);
    mapq_value_pack_str(&f->pk, "m");
    msgpack_pack_map(&f->pk, 0);
    mapq_value_pack_str(&f->pk, "s");
    mapq_value_pack_str(&f->pk, "h\xc3\xa9llo");
    canon(f, f->mp.data, f->mp.len, &f->out);
    assert_int_equal(f->out.len, f->mp.len);
    /* The same value comes back (in another key order)... */
    assert_int_equal(mapq_value_unpack(f->out.data, f->out.len, &f->u2, f->err),
                     MAPQ_OK);
    assert_int_equal(f->u2.data.type, MSGPACK_OBJECT_MAP);
    assert_int_equal(f->u2.data.via.map.size, 6);
    assert_int_equal(mapq_value_map_get(&f->u2.data, "neg")->via.i64,
                     INT64_MIN);
    assert_true(mapq_value_map_get(&f->u2.data, "big")->via.u64 == UINT64_MAX);
    assert_memory_equal(mapq_value_map_get(&f->u2.data, "bin")->via.bin.ptr,
                        "\x00\xff\x01", 3);
    assert_true(msgpack_object_equal(*mapq_value_map_get(&f->u.data, "l"),
                                     *mapq_value_map_get(&f->u2.data, "l")));
    assert_true(mapq_value_str_eq(mapq_value_map_get(&f->u2.data, "s"),
                                  "h\xc3\xa9llo"));
    /* ...and canonical encoding is idempotent. */
    canon(f, f->out.data, f->out.len, &f->alt);
    assert_bytes(&f->alt, f->out.data, f->out.len);
}

static void
test_value_canonical_appends(void **state)
{
    struct fx *f = *state;

    assert_int_equal(mapq_buf_appendstr(&f->out, "AB"), MAPQ_OK);
    msgpack_pack_int(&f->pk, 7);
    assert_int_equal(mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err),
                     MAPQ_OK);
    assert_int_equal(mapq_value_canonical(&f->u.data, &f->out), MAPQ_OK);
    assert_bytes(&f->out, "AB\x07", 3);
}

static void
test_value_canonical_size_cap(void **state)
{
    struct fx *f = *state;

    mapq_buf_release(&f->out);
    mapq_buf_init(&f->out, 4);
    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "a");
    mapq_value_pack_str(&f->pk, "too long");
    assert_int_equal(mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err),
                     MAPQ_OK);
    assert_int_equal(mapq_value_canonical(&f->u.data, &f->out), MAPQ_ETOOBIG);
    assert_true(f->out.len <= 4);
    /* A float that does not fit. */
    mapq_buf_reset(&f->out);
    mapq_buf_reset(&f->mp);
    msgpack_pack_double(&f->pk, 2.0);
    assert_int_equal(mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err),
                     MAPQ_OK);
    assert_int_equal(mapq_value_canonical(&f->u.data, &f->out), MAPQ_ETOOBIG);
    /* Exactly at the cap fits. */
    mapq_buf_reset(&f->mp);
    mapq_value_pack_str(&f->pk, "abc");
    assert_int_equal(mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err),
                     MAPQ_OK);
    assert_int_equal(mapq_value_canonical(&f->u.data, &f->out), MAPQ_OK);
    assert_bytes(&f->out,
                 "\xa3"
                 "abc",
                 4);
}

/*
 * An empty array or map header that does not fit under the cap is refused,
 * not dropped with MAPQ_OK and a truncated value left in out.
 */
static void
test_value_canonical_size_cap_empty_containers(void **state)
{
    struct fx *f = *state;

    mapq_buf_release(&f->out);
    mapq_buf_init(&f->out, 1);
    msgpack_pack_array(&f->pk, 1);
    msgpack_pack_array(&f->pk, 0);
    assert_int_equal(mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err),
                     MAPQ_OK);
    assert_int_equal(mapq_value_canonical(&f->u.data, &f->out), MAPQ_ETOOBIG);
    /* The same with an empty map. */
    mapq_buf_reset(&f->out);
    mapq_buf_reset(&f->mp);
    msgpack_pack_array(&f->pk, 1);
    msgpack_pack_map(&f->pk, 0);
    assert_int_equal(mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err),
                     MAPQ_OK);
    assert_int_equal(mapq_value_canonical(&f->u.data, &f->out), MAPQ_ETOOBIG);
}

/*
 * A complete value nested 33 deep is refused as too deep, not reported as
 * "truncated msgpack value".
 */
/* Nesting: MAPQ_VALUE_MAX_DEPTH containers are a value (msgpack-c's own
 * stack holds them), one more is refused by the pre-walk with its own
 * message, whatever the innermost container or the kind of nesting. */
static void
test_value_unpack_too_deep_message(void **state)
{
    struct fx *f = *state;
    int i;

    for (i = 0; i < MAPQ_VALUE_MAX_DEPTH - 1; i++)
        msgpack_pack_array(&f->pk, 1);
    msgpack_pack_array(&f->pk, 0);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_OK);
    reset(f);
    for (i = 0; i < MAPQ_VALUE_MAX_DEPTH; i++)
        msgpack_pack_array(&f->pk, 1);
    msgpack_pack_array(&f->pk, 0);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_EPROTO);
    assert_string_equal(f->err, "msgpack value nested more than 32 deep");
    /* Maps nested as values, and a deep array after a finished sibling. */
    reset(f);
    for (i = 0; i < MAPQ_VALUE_MAX_DEPTH; i++) {
        msgpack_pack_map(&f->pk, 1);
        msgpack_pack_int(&f->pk, i);
    }
    msgpack_pack_nil(&f->pk);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_OK);
    reset(f);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_array(&f->pk, 0);
    for (i = 0; i < MAPQ_VALUE_MAX_DEPTH; i++)
        msgpack_pack_array(&f->pk, 1);
    msgpack_pack_nil(&f->pk);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_EPROTO);
    assert_string_equal(f->err, "msgpack value nested more than 32 deep");
}

/* 100,000 one-element arrays: refused at once, before msgpack-c builds
 * anything, and the same through the stream reader. */
static void
test_value_unpack_deep_nesting_refused(void **state)
{
    struct fx *f = *state;
    size_t off = 0;
    int i;

    for (i = 0; i < 100000; i++)
        mapq_buf_append(&f->mp, i % 2 ? "\x91" : "\x81\x01", i % 2 ? 1 : 2);
    mapq_buf_append(&f->mp, "\xc0", 1);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_EPROTO);
    assert_string_equal(f->err, "msgpack value nested more than 32 deep");
    assert_int_equal(
        mapq_value_unpack_next(f->mp.data, f->mp.len, &off, &f->u2, f->err),
        MAPQ_EPROTO);
    assert_int_equal(off, 0);
}

/* Lengths that are really there but over the documented caps: one str,
 * bin or ext over MAPQ_VALUE_MAX bytes, one container of more than
 * MAPQ_VALUE_MAX elements. A value just under the cap is read. */
static void
test_value_unpack_over_cap_refused(void **state)
{
    struct fx *f = *state;
    size_t n = (size_t)MAPQ_VALUE_MAX + 1;
    char *big = mapq_xcalloc(n + 8, 1);

    msgpack_pack_str(&f->pk, n);
    mapq_buf_append(&f->mp, big, n);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_ETOOBIG);
    assert_string_equal(
        f->err,
        "msgpack str, bin or ext of 16777217 bytes is over the 16 MiB cap");
    reset(f);
    msgpack_pack_bin(&f->pk, n);
    mapq_buf_append(&f->mp, big, n);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_ETOOBIG);
    reset(f);
    msgpack_pack_ext(&f->pk, n, 1);
    mapq_buf_append(&f->mp, big, n);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_ETOOBIG);
    /* n nils (0xc0) in an array: every element is there. */
    reset(f);
    memset(big, 0xc0, n);
    msgpack_pack_array(&f->pk, n);
    mapq_buf_append(&f->mp, big, n);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_ETOOBIG);
    assert_string_equal(
        f->err,
        "msgpack array or map of 16777217 objects is over the cap of 16777216");
    reset(f);
    msgpack_pack_map(&f->pk, n / 2 + 1);
    mapq_buf_append(&f->mp, big, n);
    mapq_buf_append(&f->mp, "\xc0", 1);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_ETOOBIG);
    reset(f);
    msgpack_pack_str(&f->pk, 1000);
    mapq_buf_append(&f->mp, big, 1000);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_OK);
    free(big);
}

/* ---- hashing and keys --------------------------------------------------- */

static void
test_value_hash_is_truncated_sha256(void **state)
{
    unsigned char key[MAPQ_KEY_LEN];
    char hex[2 * MAPQ_KEY_LEN + 1];

    (void)state;
    mapq_value_hash("abc", 3, key);
    mapq_value_key_hex(key, hex);
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223");
    mapq_value_hash("", 0, key);
    mapq_value_key_hex(key, hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924");
}

static void
test_value_key_hex_format(void **state)
{
    unsigned char key[MAPQ_KEY_LEN];
    char hex[2 * MAPQ_KEY_LEN + 2];
    int i;

    (void)state;
    for (i = 0; i < MAPQ_KEY_LEN; i++)
        key[i] = (unsigned char)(i * 17);
    key[MAPQ_KEY_LEN - 1] = 0xa5;
    memset(hex, '#', sizeof(hex));
    mapq_value_key_hex(key, hex);
    assert_string_equal(hex, "00112233445566778899aabbccddeea5");
    assert_int_equal(hex[2 * MAPQ_KEY_LEN + 1], '#');
}

static void
test_value_subtask_key_known_value(void **state)
{
    static const struct scope cached = {NULL, NULL, 0};
    static const struct scope own = {"0123456789ab", "sq", 3};
    struct fx *f = *state;
    char hex[2 * MAPQ_KEY_LEN + 1];

    /* Computed independently from docs/PROTOCOL.md with Python's hashlib
     * over hand-encoded msgpack; a change here changes every cache key. */
    pack_inputs(f, 7, "a", 1);
    subtask_key(f, "square", "1", "label:str,x:int->int", &f->mp, &cached, hex);
    assert_string_equal(hex, "54251ff532b322b29b402b6f1527e80f");
    subtask_key(f, "square", "", "label:str,x:int->int", &f->mp, &own, hex);
    assert_string_equal(hex, "317d19a1a20ae75874600713526a53df");
}

static void
test_value_subtask_key_ignores_input_order(void **state)
{
    static const struct scope cached = {NULL, NULL, 0};
    struct fx *f = *state;
    char a[2 * MAPQ_KEY_LEN + 1], b[2 * MAPQ_KEY_LEN + 1];

    pack_inputs(f, 7, "a", 1);
    subtask_key(f, "square", "1", "label:str,x:int->int", &f->mp, &cached, a);
    pack_inputs(f, 7, "a", 0);
    subtask_key(f, "square", "1", "label:str,x:int->int", &f->mp, &cached, b);
    assert_string_equal(a, b);
    /* Same key again: hashing is deterministic. */
    subtask_key(f, "square", "1", "label:str,x:int->int", &f->mp, &cached, b);
    assert_string_equal(a, "54251ff532b322b29b402b6f1527e80f");
    assert_string_equal(b, "54251ff532b322b29b402b6f1527e80f");
}

static void
test_value_subtask_key_every_part_matters(void **state)
{
    static const struct scope cached = {NULL, NULL, 0};
    static const struct scope s1 = {"0123456789ab", "sq", 3};
    static const struct scope s2 = {"0123456789ab", "sq", 4};
    static const struct scope s3 = {"0123456789ac", "sq", 3};
    static const struct scope s4 = {"0123456789ab", "sr", 3};
    static const char *const iface = "label:str,x:int->int";
    char keys[10][2 * MAPQ_KEY_LEN + 1];
    struct fx *f = *state;
    int i, j;

    pack_inputs(f, 7, "a", 1);
    subtask_key(f, "square", "1", iface, &f->mp, &cached, keys[0]);
    subtask_key(f, "squares", "1", iface, &f->mp, &cached, keys[1]);
    subtask_key(f, "square", "2", iface, &f->mp, &cached, keys[2]);
    subtask_key(f, "square", "1", "label:str,x:int->float", &f->mp, &cached,
                keys[3]);
    subtask_key(f, "square", "1", iface, &f->mp, &s1, keys[4]);
    subtask_key(f, "square", "1", iface, &f->mp, &s2, keys[5]);
    subtask_key(f, "square", "1", iface, &f->mp, &s3, keys[6]);
    subtask_key(f, "square", "1", iface, &f->mp, &s4, keys[7]);
    pack_inputs(f, 8, "a", 1);
    subtask_key(f, "square", "1", iface, &f->mp, &cached, keys[8]);
    pack_inputs(f, 7, "b", 0);
    subtask_key(f, "square", "1", iface, &f->mp, &cached, keys[9]);
    for (i = 0; i < 10; i++)
        for (j = i + 1; j < 10; j++)
            if (strcmp(keys[i], keys[j]) == 0)
                fail_msg("keys %d and %d are both %s", i, j, keys[i]);
}

/* ---- helpers ------------------------------------------------------------ */

static void
test_value_pack_str_lengths(void **state)
{
    static const char s40[] = "0123456789012345678901234567890123456789";
    struct fx *f = *state;

    mapq_value_pack_str(&f->pk, "");
    assert_bytes(&f->mp, "\xa0", 1);
    mapq_buf_reset(&f->mp);
    mapq_value_pack_str(&f->pk, s40);
    assert_int_equal(f->mp.len, 42);
    assert_memory_equal(f->mp.data, "\xd9\x28", 2);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_OK);
    assert_true(mapq_value_str_eq(&f->u.data, s40));
}

static void
test_value_map_get(void **state)
{
    struct fx *f = *state;
    const msgpack_object *v;

    msgpack_pack_map(&f->pk, 3);
    msgpack_pack_int(&f->pk, 1);
    msgpack_pack_int(&f->pk, 10);
    mapq_value_pack_str(&f->pk, "ab");
    msgpack_pack_int(&f->pk, 20);
    mapq_value_pack_str(&f->pk, "a");
    msgpack_pack_int(&f->pk, 30);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_OK);
    v = mapq_value_map_get(&f->u.data, "a");
    assert_non_null(v);
    assert_int_equal(v->via.u64, 30);
    v = mapq_value_map_get(&f->u.data, "ab");
    assert_non_null(v);
    assert_int_equal(v->via.u64, 20);
    assert_null(mapq_value_map_get(&f->u.data, "b"));
    assert_null(mapq_value_map_get(&f->u.data, ""));
    assert_null(mapq_value_map_get(NULL, "a"));
    reset(f);
    msgpack_pack_array(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "a");
    msgpack_pack_int(&f->pk, 1);
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_OK);
    assert_null(mapq_value_map_get(&f->u.data, "a"));
}

static void
test_value_str_eq(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;

    msgpack_pack_array(&f->pk, 3);
    msgpack_pack_str(&f->pk, 3);
    msgpack_pack_str_body(&f->pk, "a\0b", 3);
    msgpack_pack_bin(&f->pk, 1);
    msgpack_pack_bin_body(&f->pk, "a", 1);
    mapq_value_pack_str(&f->pk, "abc");
    assert_int_equal(unpack_rc(f, f->mp.data, f->mp.len), MAPQ_OK);
    o = f->u.data.via.array.ptr;
    assert_false(mapq_value_str_eq(&o[0], "a"));
    assert_false(mapq_value_str_eq(&o[1], "a"));
    assert_true(mapq_value_str_eq(&o[2], "abc"));
    assert_false(mapq_value_str_eq(&o[2], "ab"));
    assert_false(mapq_value_str_eq(&o[2], "abcd"));
    assert_false(mapq_value_str_eq(&o[2], "abd"));
}

/* mapq_value_check() agrees with mapq_value_unpack(): code and message. */
static enum mapq_err
check_both(struct fx *f)
{
    char err[MAPQ_ERR_LEN] = "";
    enum mapq_err rc = mapq_value_check(f->mp.data, f->mp.len, err);

    assert_int_equal(rc,
                     mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err));
    if (rc != MAPQ_OK)
        assert_string_equal(err, f->err);
    return rc;
}

static void
test_value_array_header_and_check(void **state)
{
    struct fx *f = *state;
    uint32_t n;
    size_t hlen;
    int i;

    /* The three header forms, and what is no list. */
    msgpack_pack_array(&f->pk, 15);
    assert_true(mapq_value_array_header(f->mp.data, f->mp.len, &n, &hlen));
    assert_int_equal(n, 15);
    assert_int_equal(hlen, 1);
    reset(f);
    msgpack_pack_array(&f->pk, 65535);
    assert_true(mapq_value_array_header(f->mp.data, f->mp.len, &n, &hlen));
    assert_int_equal(n, 65535);
    assert_int_equal(hlen, 3);
    reset(f);
    msgpack_pack_array(&f->pk, 65536);
    assert_true(mapq_value_array_header(f->mp.data, f->mp.len, &n, &hlen));
    assert_int_equal(n, 65536);
    assert_int_equal(hlen, 5);
    assert_false(mapq_value_array_header(f->mp.data, 4, &n, &hlen));
    reset(f);
    msgpack_pack_map(&f->pk, 1);
    assert_false(mapq_value_array_header(f->mp.data, f->mp.len, &n, &hlen));
    assert_false(mapq_value_array_header(f->mp.data, 0, &n, &hlen));
    /* A good list, a list cut short, one with more after it, a scalar. */
    reset(f);
    msgpack_pack_array(&f->pk, 3);
    for (i = 0; i < 3; i++)
        msgpack_pack_int(&f->pk, i);
    assert_int_equal(check_both(f), MAPQ_OK);
    f->mp.len--;
    assert_int_equal(check_both(f), MAPQ_EPROTO);
    reset(f);
    msgpack_pack_array(&f->pk, 1);
    msgpack_pack_int(&f->pk, 1);
    msgpack_pack_int(&f->pk, 2);
    assert_int_equal(check_both(f), MAPQ_EPROTO);
    reset(f);
    msgpack_pack_nil(&f->pk);
    assert_int_equal(check_both(f), MAPQ_OK);
}

static void
test_value_skip_steps_over_one_value(void **state)
{
    struct fx *f = *state;
    msgpack_unpacked u;
    size_t off = 0, want = 0;
    char err[MAPQ_ERR_LEN];
    int i;

    /* A stream: a nested map, a long string, a list, an int. skip ends
     * where msgpack-c's own unpacking ends, object by object. */
    msgpack_pack_map(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "a");
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_double(&f->pk, 1.5);
    msgpack_pack_bin(&f->pk, 3);
    msgpack_pack_bin_body(&f->pk, "xyz", 3);
    mapq_value_pack_str(&f->pk, "b");
    msgpack_pack_nil(&f->pk);
    msgpack_pack_str(&f->pk, 300);
    for (i = 0; i < 300; i++)
        msgpack_pack_str_body(&f->pk, "s", 1);
    msgpack_pack_array(&f->pk, 70000);
    for (i = 0; i < 70000; i++)
        msgpack_pack_int(&f->pk, i);
    msgpack_pack_int64(&f->pk, -5);
    msgpack_unpacked_init(&u);
    for (i = 0; i < 4; i++) {
        assert_int_equal(
            mapq_value_unpack_next(f->mp.data, f->mp.len, &want, &u, err),
            MAPQ_OK);
        assert_int_equal(mapq_value_skip(f->mp.data, f->mp.len, &off, err),
                         MAPQ_OK);
        assert_int_equal(off, want);
    }
    msgpack_unpacked_destroy(&u);
    assert_int_equal(off, f->mp.len);
    /* At the end, and cut short: an error, *off unchanged. */
    assert_int_equal(mapq_value_skip(f->mp.data, f->mp.len, &off, err),
                     MAPQ_EPROTO);
    off = 0;
    assert_int_equal(mapq_value_skip(f->mp.data, 5, &off, err), MAPQ_EPROTO);
    assert_int_equal(off, 0);
}

static void
test_value_unpack_zone_walks_a_stream(void **state)
{
    struct fx *f = *state;
    msgpack_zone *zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    msgpack_object o;
    char err[MAPQ_ERR_LEN];
    size_t off = 0;

    /* An int, a list, a string: each read into the one zone, cleared in
     * between; the offset ends past each. */
    msgpack_pack_int(&f->pk, -3);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_true(&f->pk);
    msgpack_pack_nil(&f->pk);
    mapq_value_pack_str(&f->pk, "ab");
    assert_int_equal(
        mapq_value_unpack_zone(f->mp.data, f->mp.len, &off, zone, &o, err),
        MAPQ_OK);
    assert_int_equal(o.type, MSGPACK_OBJECT_NEGATIVE_INTEGER);
    assert_int_equal(o.via.i64, -3);
    assert_int_equal(off, 1);
    msgpack_zone_clear(zone);
    assert_int_equal(
        mapq_value_unpack_zone(f->mp.data, f->mp.len, &off, zone, &o, err),
        MAPQ_OK);
    assert_int_equal(o.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(o.via.array.size, 2);
    assert_int_equal(o.via.array.ptr[0].type, MSGPACK_OBJECT_BOOLEAN);
    assert_int_equal(off, 4);
    msgpack_zone_clear(zone);
    assert_int_equal(
        mapq_value_unpack_zone(f->mp.data, f->mp.len, &off, zone, &o, err),
        MAPQ_OK);
    assert_true(mapq_value_str_eq(&o, "ab"));
    assert_int_equal(off, f->mp.len);
    /* At the end, and a value cut short: errors, the offset unchanged. */
    assert_int_equal(
        mapq_value_unpack_zone(f->mp.data, f->mp.len, &off, zone, &o, err),
        MAPQ_EPROTO);
    off = 1;
    assert_int_equal(mapq_value_unpack_zone(f->mp.data, 3, &off, zone, &o, err),
                     MAPQ_EPROTO);
    assert_string_equal(err, "truncated msgpack value");
    assert_int_equal(off, 1);
    msgpack_zone_free(zone);
}

static void
test_value_map_find_without_a_tree(void **state)
{
    struct fx *f = *state;
    const char *v;
    size_t vlen, off;
    int i;

    msgpack_pack_map(&f->pk, 3);
    mapq_value_pack_str(&f->pk, "xs");
    msgpack_pack_array(&f->pk, 1000);
    for (i = 0; i < 1000; i++)
        msgpack_pack_int(&f->pk, i);
    mapq_value_pack_str(&f->pk, "n");
    msgpack_pack_int(&f->pk, 7);
    mapq_value_pack_str(&f->pk, "x");
    mapq_value_pack_str(&f->pk, "last");
    assert_true(mapq_value_map_find(f->mp.data, f->mp.len, "n", &v, &vlen));
    assert_int_equal(vlen, 1);
    assert_int_equal(v[0], 7);
    assert_true(mapq_value_map_find(f->mp.data, f->mp.len, "xs", &v, &vlen));
    assert_ptr_equal(v, f->mp.data + 4);
    off = 0;
    assert_int_equal(mapq_value_skip(v, vlen, &off, f->err), MAPQ_OK);
    assert_int_equal(off, vlen);
    assert_true(mapq_value_map_find(f->mp.data, f->mp.len, "x", &v, &vlen));
    assert_int_equal(vlen, 5);
    assert_memory_equal(v, "\xa4last", 5);
    /* No such key, a prefix of one, no map, cut short before the key. */
    assert_false(mapq_value_map_find(f->mp.data, f->mp.len, "y", &v, &vlen));
    assert_false(mapq_value_map_find(f->mp.data, f->mp.len, "xss", &v, &vlen));
    assert_false(mapq_value_map_find(f->mp.data + 4, vlen, "xs", &v, &vlen));
    assert_false(mapq_value_map_find(f->mp.data, 100, "x", &v, &vlen));
    /* A map whose key is no string is no map of names. */
    reset(f);
    msgpack_pack_map(&f->pk, 1);
    msgpack_pack_int(&f->pk, 1);
    msgpack_pack_int(&f->pk, 2);
    assert_false(mapq_value_map_find(f->mp.data, f->mp.len, "1", &v, &vlen));
}

static void
test_value_check_map_of_lists(void **state)
{
    struct fx *f = *state;
    int i;

    /* Inputs: a map of lists, checked element by element. */
    msgpack_pack_map(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "xs");
    msgpack_pack_array(&f->pk, 3);
    for (i = 0; i < 3; i++)
        msgpack_pack_int(&f->pk, i);
    mapq_value_pack_str(&f->pk, "y");
    msgpack_pack_true(&f->pk);
    assert_int_equal(check_both(f), MAPQ_OK);
    f->mp.len--;
    assert_int_equal(check_both(f), MAPQ_EPROTO);
    /* A list in a map that declares more than it has. */
    reset(f);
    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "xs");
    msgpack_pack_array(&f->pk, 3);
    msgpack_pack_int(&f->pk, 1);
    assert_int_equal(check_both(f), MAPQ_EPROTO);
    /* More after the map. */
    reset(f);
    msgpack_pack_map(&f->pk, 0);
    msgpack_pack_nil(&f->pk);
    assert_int_equal(check_both(f), MAPQ_EPROTO);
}

/* ---- canonical encoding by type: files by content --------------------- */

#define SHA_A "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define SHA_B "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

/* Packs the reference {"uri": uri, "sha256": sha, "size": size}, its
 * members in the order given by uri_first. */
static void
pack_ref(struct fx *f, const char *uri, const char *sha, int64_t size,
         bool uri_first)
{
    msgpack_pack_map(&f->pk, 3);
    if (uri_first) {
        mapq_value_pack_str(&f->pk, "uri");
        mapq_value_pack_str(&f->pk, uri);
    }
    mapq_value_pack_str(&f->pk, "size");
    msgpack_pack_int64(&f->pk, size);
    mapq_value_pack_str(&f->pk, "sha256");
    mapq_value_pack_str(&f->pk, sha);
    if (!uri_first) {
        mapq_value_pack_str(&f->pk, "uri");
        mapq_value_pack_str(&f->pk, uri);
    }
}

static void
test_value_canonical_typed_file_by_content(void **state)
{
    /* [sha256, size]: fixarray 2, str8 of 64, the size as the shortest
     * int. */
    static const char want[] = "\x92\xd9\x40" SHA_A "\xcd\x01\x2c";
    struct fx *f = *state;
    const struct mapq_type *t = type(f, "file");

    pack_ref(f, "mapq:sha256/" SHA_A, SHA_A, 300, true);
    canon_typed(f, t, &f->out);
    assert_bytes(&f->out, want, sizeof(want) - 1);
    /* Another URI, members in another order: the same bytes. */
    mapq_buf_reset(&f->mp);
    pack_ref(f, "s3://bucket/renamed.png", SHA_A, 300, false);
    canon_typed(f, t, &f->alt);
    assert_bytes(&f->alt, f->out.data, f->out.len);
    /* Another hash or another size: other bytes. */
    mapq_buf_reset(&f->mp);
    pack_ref(f, "mapq:sha256/" SHA_A, SHA_B, 300, true);
    canon_typed(f, t, &f->alt);
    assert_false(f->alt.len == f->out.len &&
                 memcmp(f->alt.data, f->out.data, f->out.len) == 0);
    mapq_buf_reset(&f->mp);
    pack_ref(f, "mapq:sha256/" SHA_A, SHA_A, 301, true);
    canon_typed(f, t, &f->alt);
    assert_false(f->alt.len == f->out.len &&
                 memcmp(f->alt.data, f->out.data, f->out.len) == 0);
    /* Untyped, the URI is part of the value. */
    mapq_buf_reset(&f->mp);
    pack_ref(f, "s3://bucket/renamed.png", SHA_A, 300, false);
    canon(f, f->mp.data, f->mp.len, &f->alt);
    assert_int_equal((unsigned char)f->alt.data[0], 0x83);
}

/* Packs {"n": 2, "imgs": [ref a, null, ref b], "by": {"k": ref c},
 * "meta": {"uri": meta}}, the references' URIs under prefix. */
static void
pack_nested(struct fx *f, const char *prefix, const char *meta)
{
    char uri[64];

    mapq_buf_reset(&f->mp);
    msgpack_pack_map(&f->pk, 4);
    mapq_value_pack_str(&f->pk, "n");
    msgpack_pack_int(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "imgs");
    msgpack_pack_array(&f->pk, 3);
    snprintf(uri, sizeof(uri), "%s/a", prefix);
    pack_ref(f, uri, SHA_A, 1, true);
    msgpack_pack_nil(&f->pk);
    snprintf(uri, sizeof(uri), "%s/b", prefix);
    pack_ref(f, uri, SHA_B, 2, false);
    mapq_value_pack_str(&f->pk, "by");
    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "k");
    snprintf(uri, sizeof(uri), "%s/c", prefix);
    pack_ref(f, uri, SHA_A, 1, true);
    mapq_value_pack_str(&f->pk, "meta");
    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "uri");
    mapq_value_pack_str(&f->pk, meta);
}

/* Whether two buffers hold the same bytes. */
static bool
same_bytes(const struct mapq_buf *a, const struct mapq_buf *b)
{
    return a->len == b->len && memcmp(a->data, b->data, a->len) == 0;
}

static void
test_value_canonical_typed_nested(void **state)
{
    struct fx *f = *state;
    const struct mapq_type *t =
        type(f, "{by: dict[file], imgs: list[file?], meta: any, n: float}?");
    const msgpack_object *imgs;

    /* Through a record, a list, T? and a dict: files by content; the map
     * under any is kept whole. */
    pack_nested(f, "s3://one", "m");
    canon_typed(f, t, &f->out);
    assert_int_equal(mapq_value_unpack(f->out.data, f->out.len, &f->u2, f->err),
                     MAPQ_OK);
    imgs = mapq_value_map_get(&f->u2.data, "imgs");
    assert_int_equal(imgs->via.array.ptr[0].type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(imgs->via.array.ptr[1].type, MSGPACK_OBJECT_NIL);
    assert_true(
        mapq_value_str_eq(&imgs->via.array.ptr[2].via.array.ptr[0], SHA_B));
    assert_int_equal(imgs->via.array.ptr[2].via.array.ptr[1].via.i64, 2);
    assert_int_equal(
        mapq_value_map_get(mapq_value_map_get(&f->u2.data, "by"), "k")->type,
        MSGPACK_OBJECT_ARRAY);
    assert_int_equal(mapq_value_map_get(&f->u2.data, "meta")->type,
                     MSGPACK_OBJECT_MAP);
    /* Files elsewhere: the same bytes typed, other bytes untyped. */
    pack_nested(f, "file:///mnt/two", "m");
    canon_typed(f, t, &f->alt);
    assert_true(same_bytes(&f->alt, &f->out));
    canon(f, f->mp.data, f->mp.len, &f->alt);
    pack_nested(f, "s3://one", "m");
    canon(f, f->mp.data, f->mp.len, &f->key);
    assert_false(same_bytes(&f->alt, &f->key));
    /* What is not a file still counts. */
    pack_nested(f, "s3://one", "x");
    canon_typed(f, t, &f->alt);
    assert_false(same_bytes(&f->alt, &f->out));
}

static void
test_value_canonical_typed_without_file_is_canonical(void **state)
{
    static const char *const types[] = {
        "{by: dict[any], imgs: list[any], meta: any, n: float}",
        "{by: dict[dict[any]], imgs: list[any?], meta: dict[str], n: int}",
        "any",
        "dict[any]",
    };
    struct fx *f = *state;
    struct mapq_type *bare;
    size_t i;

    pack_nested(f, "s3://one", "m");
    canon(f, f->mp.data, f->mp.len, &f->out);
    canon_typed(f, NULL, &f->alt);
    assert_true(same_bytes(&f->alt, &f->out));
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        canon_typed(f, type(f, types[i]), &f->alt);
        assert_true(same_bytes(&f->alt, &f->out));
    }
    /* A list type built without an element type holds any. */
    assert_true(f->ntypes < sizeof(f->types) / sizeof(f->types[0]));
    bare = mapq_type_new(MAPQ_T_LIST, false, NULL);
    f->types[f->ntypes++] = bare;
    mapq_buf_reset(&f->mp);
    msgpack_pack_array(&f->pk, 1);
    pack_ref(f, "s3://one/a", SHA_A, 1, false);
    canon(f, f->mp.data, f->mp.len, &f->out);
    canon_typed(f, bare, &f->alt);
    assert_true(same_bytes(&f->alt, &f->out));
}

static void
test_value_canonical_typed_file_edges(void **state)
{
    static const char want[] = "AB\x92\xd9\x40" SHA_A "\x01";
    struct fx *f = *state;
    const struct mapq_type *t = type(f, "file");

    /* null under file? stays null. */
    msgpack_pack_nil(&f->pk);
    canon_typed(f, type(f, "file?"), &f->out);
    assert_bytes(&f->out, "\xc0", 1);
    /* A map that is no reference is written whole, as untyped. */
    mapq_buf_reset(&f->mp);
    msgpack_pack_map(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "uri");
    mapq_value_pack_str(&f->pk, "s3://one/a");
    mapq_value_pack_str(&f->pk, "sha256");
    mapq_value_pack_str(&f->pk, SHA_A);
    canon(f, f->mp.data, f->mp.len, &f->out);
    canon_typed(f, t, &f->alt);
    assert_true(same_bytes(&f->alt, &f->out));
    /* Appends to out, and meets its cap as mapq_value_canonical() does. */
    mapq_buf_reset(&f->mp);
    pack_ref(f, "s3://one/a", SHA_A, 1, true);
    assert_int_equal(mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err),
                     MAPQ_OK);
    mapq_buf_reset(&f->out);
    assert_int_equal(mapq_buf_appendstr(&f->out, "AB"), MAPQ_OK);
    assert_int_equal(mapq_value_canonical_typed(&f->u.data, t, &f->out),
                     MAPQ_OK);
    assert_bytes(&f->out, want, sizeof(want) - 1);
    mapq_buf_release(&f->alt);
    mapq_buf_init(&f->alt, 10);
    assert_int_equal(mapq_value_canonical_typed(&f->u.data, t, &f->alt),
                     MAPQ_ETOOBIG);
    assert_true(f->alt.len <= 10);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_value_unpack_one_object),
        T(test_value_unpack_strings_point_into_input),
        T(test_value_unpack_truncated_rejected),
        T(test_value_unpack_trailing_bytes_rejected),
        T(test_value_unpack_malformed_rejected),
        T(test_value_unpack_nesting_limit),
        T(test_value_canonical_map_order_irrelevant),
        T(test_value_canonical_keys_sorted_by_encoding),
        T(test_value_canonical_floats_as_float64),
        T(test_value_canonical_shortest_ints_and_strings),
        T(test_value_canonical_round_trip),
        T(test_value_canonical_appends),
        T(test_value_canonical_size_cap),
        T(test_value_hash_is_truncated_sha256),
        T(test_value_key_hex_format),
        T(test_value_subtask_key_known_value),
        T(test_value_subtask_key_ignores_input_order),
        T(test_value_subtask_key_every_part_matters),
        T(test_value_pack_str_lengths),
        T(test_value_map_get),
        T(test_value_str_eq),
        T(test_value_canonical_size_cap_empty_containers),
        T(test_value_unpack_too_deep_message),
        T(test_value_unpack_huge_declared_lengths_refused),
        T(test_value_unpack_next_walks_a_stream),
        T(test_value_unpack_deep_nesting_refused),
        T(test_value_unpack_over_cap_refused),
        T(test_value_array_header_and_check),
        T(test_value_skip_steps_over_one_value),
        T(test_value_map_find_without_a_tree),
        T(test_value_unpack_zone_walks_a_stream),
        T(test_value_check_map_of_lists),
        T(test_value_canonical_typed_file_by_content),
        T(test_value_canonical_typed_nested),
        T(test_value_canonical_typed_without_file_is_canonical),
        T(test_value_canonical_typed_file_edges),
#undef T
    };

    return cmocka_run_group_tests_name("value", tests, NULL, NULL);
}
