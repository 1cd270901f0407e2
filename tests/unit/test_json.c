#include "mapq_test.h"

/*
 * test_json.c - msgpack <-> JSON conversion: every type both ways, float
 * text, limits of the mapping, type-directed parsing and error messages.
 */
#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_json.h"
#include "mapq_type.h"
#include "mapq_value.h"

struct fx {
    struct mapq_buf mp;   /* msgpack built by the test */
    struct mapq_buf out;  /* JSON text or msgpack produced by the module */
    struct mapq_buf json; /* JSON re-rendered from out */
    msgpack_packer pk;    /* appends to mp */
    msgpack_unpacked u;
    struct mapq_type *type;
    char err[MAPQ_ERR_LEN];
};

static int
setup(void **state)
{
    struct fx *f = mapq_xcalloc(1, sizeof(*f));

    mapq_buf_init(&f->mp, 0);
    mapq_buf_init(&f->out, 0);
    mapq_buf_init(&f->json, 0);
    mapq_value_packer_init(&f->pk, &f->mp);
    msgpack_unpacked_init(&f->u);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    mapq_buf_release(&f->mp);
    mapq_buf_release(&f->out);
    mapq_buf_release(&f->json);
    msgpack_unpacked_destroy(&f->u);
    mapq_type_free(f->type);
    free(f);
    return 0;
}

/* Empties the buffers between cases of one test. */
static void
reset(struct fx *f)
{
    mapq_buf_reset(&f->mp);
    mapq_buf_reset(&f->out);
    mapq_buf_reset(&f->json);
    f->err[0] = '\0';
}

static void
set_type(struct fx *f, const char *spelling)
{
    mapq_type_free(f->type);
    f->type = NULL;
    if (spelling != NULL) {
        f->type = mapq_type_parse(spelling, f->err);
        assert_non_null(f->type);
    }
}

/* JSON text of the msgpack in f->mp (asserting success). */
static const char *
render(struct fx *f, int flags)
{
    mapq_buf_reset(&f->out);
    assert_int_equal(
        mapq_json_from_bytes(f->mp.data, f->mp.len, &f->out, flags, f->err),
        MAPQ_OK);
    return f->out.data;
}

/* Result code of rendering f->mp as JSON; f->err holds the message. */
static enum mapq_err
render_rc(struct fx *f)
{
    mapq_buf_reset(&f->out);
    return mapq_json_from_bytes(f->mp.data, f->mp.len, &f->out, 0, f->err);
}

/* Parses text toward f->type into f->out. */
static enum mapq_err
parse(struct fx *f, const char *text)
{
    mapq_buf_reset(&f->out);
    return mapq_json_to_msgpack(text, strlen(text), f->type, &f->out, f->err);
}

/* The msgpack object in f->out. */
static const msgpack_object *
parsed(struct fx *f)
{
    assert_int_equal(mapq_value_unpack(f->out.data, f->out.len, &f->u, f->err),
                     MAPQ_OK);
    return &f->u.data;
}

/* Parses text toward f->type and renders the result back as JSON. */
static const char *
reparse(struct fx *f, const char *text)
{
    assert_int_equal(parse(f, text), MAPQ_OK);
    mapq_buf_reset(&f->json);
    assert_int_equal(
        mapq_json_from_bytes(f->out.data, f->out.len, &f->json, 0, f->err),
        MAPQ_OK);
    return f->json.data;
}

static void
test_json_scalars_to_json(void **state)
{
    struct fx *f = *state;

    msgpack_pack_nil(&f->pk);
    assert_string_equal(render(f, 0), "null");
    reset(f);
    msgpack_pack_true(&f->pk);
    assert_string_equal(render(f, 0), "true");
    reset(f);
    msgpack_pack_false(&f->pk);
    assert_string_equal(render(f, 0), "false");
    reset(f);
    msgpack_pack_int64(&f->pk, INT64_MIN);
    assert_string_equal(render(f, 0), "-9223372036854775808");
    reset(f);
    msgpack_pack_uint64(&f->pk, (uint64_t)INT64_MAX);
    assert_string_equal(render(f, 0), "9223372036854775807");
    reset(f);
    msgpack_pack_int(&f->pk, 0);
    assert_string_equal(render(f, 0), "0");
    reset(f);
    mapq_value_pack_str(&f->pk, "h\xc3\xa9llo \"q\"\n");
    assert_string_equal(render(f, 0), "\"h\xc3\xa9llo \\\"q\\\"\\n\"");
}

static void
test_json_round_trip_every_type(void **state)
{
    static const char text[] =
        "{\"nil\":null,\"t\":true,\"f\":false,\"neg\":-5,"
        "\"max\":9223372036854775807,\"min\":-9223372036854775808,"
        "\"fl\":2.5,\"s\":\"h\xc3\xa9llo\",\"l\":[1,[2,{}],[]],"
        "\"d\":{\"x\":[0.5]}}";
    struct fx *f = *state;
    msgpack_unpacked back;
    enum mapq_err rc;

    msgpack_pack_map(&f->pk, 10);
    mapq_value_pack_str(&f->pk, "nil");
    msgpack_pack_nil(&f->pk);
    mapq_value_pack_str(&f->pk, "t");
    msgpack_pack_true(&f->pk);
    mapq_value_pack_str(&f->pk, "f");
    msgpack_pack_false(&f->pk);
    mapq_value_pack_str(&f->pk, "neg");
    msgpack_pack_int(&f->pk, -5);
    mapq_value_pack_str(&f->pk, "max");
    msgpack_pack_int64(&f->pk, INT64_MAX);
    mapq_value_pack_str(&f->pk, "min");
    msgpack_pack_int64(&f->pk, INT64_MIN);
    mapq_value_pack_str(&f->pk, "fl");
    msgpack_pack_double(&f->pk, 2.5);
    mapq_value_pack_str(&f->pk, "s");
    mapq_value_pack_str(&f->pk, "h\xc3\xa9llo");
    mapq_value_pack_str(&f->pk, "l");
    msgpack_pack_array(&f->pk, 3);
    msgpack_pack_int(&f->pk, 1);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_int(&f->pk, 2);
    msgpack_pack_map(&f->pk, 0);
    msgpack_pack_array(&f->pk, 0);
    mapq_value_pack_str(&f->pk, "d");
    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "x");
    msgpack_pack_array(&f->pk, 1);
    msgpack_pack_double(&f->pk, 0.5);

    assert_string_equal(render(f, 0), text);
    assert_int_equal(parse(f, text), MAPQ_OK);
    /* Same value back: compare objects, since int widths may differ. */
    assert_int_equal(mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err),
                     MAPQ_OK);
    msgpack_unpacked_init(&back);
    rc = mapq_value_unpack(f->out.data, f->out.len, &back, f->err);
    if (rc == MAPQ_OK)
        rc = msgpack_object_equal(f->u.data, back.data) ? MAPQ_OK : MAPQ_EINVAL;
    msgpack_unpacked_destroy(&back);
    assert_int_equal(rc, MAPQ_OK);
}

/* Renders d alone and checks the text and that it reads back exactly. */
static void
check_float(struct fx *f, double d, const char *want)
{
    const msgpack_object *o;

    reset(f);
    msgpack_pack_double(&f->pk, d);
    assert_string_equal(render(f, 0), want);
    assert_int_equal(parse(f, want), MAPQ_OK);
    o = parsed(f);
    assert_int_equal(o->type, MSGPACK_OBJECT_FLOAT64);
    assert_memory_equal(&o->via.f64, &d, sizeof(d));
}

static void
test_json_float_formatting(void **state)
{
    struct fx *f = *state;

    check_float(f, 13.0, "13.0");
    check_float(f, 0.1, "0.1");
    check_float(f, -0.0, "-0.0");
    check_float(f, 2.5, "2.5");
    check_float(f, 1e300, "1e300");
    check_float(f, 1.0 / 3.0, "0.3333333333333333");
    check_float(f, 0.1 + 0.2, "0.30000000000000004");
    check_float(f, 1e-7, "1e-7");
    /* One precision per document: 0.1 takes the 17 digits 0.1 + 0.2 needs,
     * and still reads back as 0.1. */
    reset(f);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_double(&f->pk, 0.1);
    msgpack_pack_double(&f->pk, 0.1 + 0.2);
    assert_string_equal(render(f, 0),
                        "[0.10000000000000001,0.30000000000000004]");
    set_type(f, "list[float]");
    assert_string_equal(reparse(f, "[0.10000000000000001,0.30000000000000004]"),
                        "[0.10000000000000001,0.30000000000000004]");
}

static void
test_json_float_nan_inf_rejected(void **state)
{
    struct fx *f = *state;

    msgpack_pack_double(&f->pk, NAN);
    assert_int_equal(render_rc(f), MAPQ_EINVAL);
    assert_string_equal(f->err, "float NaN cannot be written as JSON");
    reset(f);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_double(&f->pk, 1.0);
    msgpack_pack_double(&f->pk, -INFINITY);
    assert_int_equal(render_rc(f), MAPQ_EINVAL);
    assert_string_equal(f->err,
                        "[1]: float infinity cannot be written as JSON");
    assert_int_equal(f->out.len, 0);
}

static void
test_json_uint64_overflow(void **state)
{
    struct fx *f = *state;

    msgpack_pack_uint64(&f->pk, (uint64_t)INT64_MAX + 1);
    assert_int_equal(render_rc(f), MAPQ_EINVAL);
    assert_string_equal(f->err, "integer out of range: 9223372036854775808");
    reset(f);
    msgpack_pack_uint64(&f->pk, UINT64_MAX);
    assert_int_equal(render_rc(f), MAPQ_EINVAL);
    assert_string_equal(f->err, "integer out of range: 18446744073709551615");
    /* The other way, jansson refuses integers past long long. */
    assert_int_equal(parse(f, "18446744073709551615"), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 20: too big "
                                "integer near '18446744073709551615'");
}

static void
test_json_non_str_keys_rejected(void **state)
{
    struct fx *f = *state;

    msgpack_pack_map(&f->pk, 1);
    msgpack_pack_int(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "a");
    assert_int_equal(render_rc(f), MAPQ_EINVAL);
    assert_string_equal(f->err, "dict keys must be str, got int");
    reset(f);
    msgpack_pack_array(&f->pk, 1);
    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "a");
    msgpack_pack_map(&f->pk, 1);
    msgpack_pack_nil(&f->pk);
    msgpack_pack_int(&f->pk, 2);
    assert_int_equal(render_rc(f), MAPQ_EINVAL);
    assert_string_equal(f->err, "[0][\"a\"]: dict keys must be str, got null");
}

static void
test_json_duplicate_msgpack_keys_rejected(void **state)
{
    struct fx *f = *state;

    msgpack_pack_map(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "k");
    msgpack_pack_int(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "k");
    msgpack_pack_int(&f->pk, 2);
    assert_int_equal(render_rc(f), MAPQ_EINVAL);
    assert_string_equal(f->err, "[\"k\"]: duplicate dict key");
}

/* Renders the str s (n bytes) as element 1 of a list; expects a refusal
 * naming the element, the byte and its offset. */
static void
bad_utf8(struct fx *f, const char *s, size_t n, const char *want)
{
    reset(f);
    msgpack_pack_array(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "ok");
    msgpack_pack_str(&f->pk, n);
    msgpack_pack_str_body(&f->pk, s, n);
    assert_int_equal(render_rc(f), MAPQ_EINVAL);
    assert_string_equal(f->err, want);
    assert_int_equal(f->out.len, 0);
}

static void
test_json_invalid_utf8_rejected(void **state)
{
    struct fx *f = *state;

    msgpack_pack_str(&f->pk, 2);
    msgpack_pack_str_body(&f->pk, "\xc3(", 2);
    assert_int_equal(render_rc(f), MAPQ_EINVAL);
    assert_string_equal(f->err,
                        "string is not valid UTF-8 (byte 0xc3 at offset 0)");
    /* Latin-1, an overlong '/', a surrogate, past U+10FFFF, a cut emoji. */
    bad_utf8(f, "caf\xe9", 4,
             "[1]: string is not valid UTF-8 (byte 0xe9 at offset 3)");
    bad_utf8(f, "\xc0\xaf", 2,
             "[1]: string is not valid UTF-8 (byte 0xc0 at offset 0)");
    bad_utf8(f, "a\xed\xa0\x80", 4,
             "[1]: string is not valid UTF-8 (byte 0xed at offset 1)");
    bad_utf8(f, "\xf4\x90\x80\x80", 4,
             "[1]: string is not valid UTF-8 (byte 0xf4 at offset 0)");
    bad_utf8(f, "\xf0\x9f\x98", 3,
             "[1]: string is not valid UTF-8 (byte 0xf0 at offset 0)");
    /* A key: the path shows it with the bad byte escaped. */
    reset(f);
    msgpack_pack_map(&f->pk, 1);
    msgpack_pack_str(&f->pk, 4);
    msgpack_pack_str_body(&f->pk, "caf\xe9", 4);
    msgpack_pack_int(&f->pk, 1);
    assert_int_equal(render_rc(f), MAPQ_EINVAL);
    assert_string_equal(f->err, "[\"caf\\xe9\"]: dict key is not valid UTF-8");
    /* JSON text that is not UTF-8 says so, with line and column. */
    assert_int_equal(parse(f, "[\"ok\", \"caf\xe9\"]"), MAPQ_EINVAL);
    assert_non_null(strstr(f->err, "invalid JSON at line 1, column "));
    assert_non_null(strstr(f->err, ": text is not valid UTF-8: "));
    assert_non_null(strstr(f->err, "0xe9"));
    /* A lone surrogate escape is no character either. */
    assert_int_equal(parse(f, "\"\\ud83d\""), MAPQ_EINVAL);
}

/*
 * Reads JSON text in toward type (NULL: natural), expects text out back,
 * then checks that out reads back to the very same msgpack bytes, so the
 * value went both ways unchanged.
 */
static void
edge(struct fx *f, const char *type, const char *in, const char *out)
{
    struct mapq_buf first = MAPQ_BUF_INIT;

    reset(f);
    set_type(f, type);
    assert_string_equal(reparse(f, in), out);
    assert_int_equal(mapq_buf_append(&first, f->out.data, f->out.len), MAPQ_OK);
    assert_string_equal(reparse(f, out), out);
    assert_int_equal(f->out.len, first.len);
    assert_memory_equal(f->out.data, first.data, first.len);
    mapq_buf_release(&first);
}

static void
test_json_edge_values_both_ways(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;
    double d;

    edge(f, "str", "\"\"", "\"\"");
    edge(f, "list[str]", "[\"\", \"a\", \"\"]", "[\"\",\"a\",\"\"]");
    edge(f, "list[int]", "[]", "[]");
    edge(f, "dict[int]", "{}", "{}");
    edge(f, "dict[str]", "{\"\": \"\"}", "{\"\":\"\"}");
    edge(f, "list[list[int]]", "[[], [1], []]", "[[],[1],[]]");
    edge(f, "int", "0", "0");
    edge(f, "int", "-0", "0");
    edge(f, "int", "-1", "-1");
    edge(f, "int", "9223372036854775807", "9223372036854775807");
    edge(f, "int", "-9223372036854775808", "-9223372036854775808");
    edge(f, "float", "0.0", "0.0");
    edge(f, "float", "-0.0", "-0.0");
    edge(f, "float", "0.1", "0.1");
    edge(f, "float", "1e308", "1e308");
    edge(f, "float", "-1.7976931348623157e308", "-1.7976931348623157e308");
    edge(f, "float", "2.2250738585072014e-308", "2.2250738585072014e-308");
    /* The smallest subnormal: 15 digits are enough to read it back. */
    edge(f, "float", "5e-324", "4.94065645841247e-324");
    o = parsed(f);
    d = 5e-324;
    assert_memory_equal(&o->via.f64, &d, sizeof(d));
    /* A float stays a float, also when written as an integer. */
    edge(f, "float", "1", "1.0");
    o = parsed(f);
    assert_int_equal(o->type, MSGPACK_OBJECT_FLOAT64);
    edge(f, "list[float]", "[1, 0, -2]", "[1.0,0.0,-2.0]");
    /* Beyond the BMP, raw or as the escapes JSON writers use. */
    edge(f, "str", "\"\xf0\x9f\x98\x80\"", "\"\xf0\x9f\x98\x80\"");
    edge(f, "str", "\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\"");
    o = parsed(f);
    assert_int_equal(o->via.str.size, 4);
    edge(f, "dict[int]", "{\"\\ud83d\\ude00\": 1}", "{\"\xf0\x9f\x98\x80\":1}");
    /* NUL bytes in a str, alone, first, last, in a key. */
    edge(f, "str", "\"\\u0000\"", "\"\\u0000\"");
    o = parsed(f);
    assert_int_equal(o->via.str.size, 1);
    edge(f, "list[str]", "[\"\\u0000a\", \"a\\u0000\"]",
         "[\"\\u0000a\",\"a\\u0000\"]");
    /* Not in a key: JSON readers refuse them there, so none is written. */
    reset(f);
    set_type(f, NULL);
    assert_int_equal(parse(f, "{\"a\\u0000b\": 1}"), MAPQ_EINVAL);
    assert_non_null(strstr(f->err, "NUL byte in object key not supported"));
    msgpack_pack_map(&f->pk, 1);
    msgpack_pack_str(&f->pk, 3);
    msgpack_pack_str_body(&f->pk, "a\0b", 3);
    msgpack_pack_int(&f->pk, 1);
    assert_int_equal(render_rc(f), MAPQ_EINVAL);
    assert_string_equal(f->err, "[\"a\\x00b\"]: dict key holds a NUL byte");
    /* Escapes JSON needs, and characters it does not. */
    edge(f, "str", "\"\\u00e9\\n\\t\\\"\\\\/\\u001f\"",
         "\"\xc3\xa9\\n\\t\\\"\\\\/\\u001F\"");
    /* Everything at once under any. */
    edge(
        f, "any",
        "[null, true, false, \"\", [], {}, 0, -0.0, [[[]]], {\"a\": {\"\": [null]}}]",
        "[null,true,false,\"\",[],{},0,-0.0,[[[]]],{\"a\":{\"\":[null]}}]");
}

/* What msgpack-c or a plugin may hand over: an empty str with no pointer. */
static void
test_json_empty_str_without_pointer(void **state)
{
    struct fx *f = *state;
    msgpack_object_kv kv;
    msgpack_object o, elems[2];

    memset(&o, 0, sizeof(o));
    o.type = MSGPACK_OBJECT_STR;
    o.via.str.ptr = NULL;
    o.via.str.size = 0;
    assert_int_equal(mapq_json_from_msgpack(&o, &f->out, 0, f->err), MAPQ_OK);
    assert_string_equal(f->out.data, "\"\"");
    elems[0] = o;
    memset(&elems[1], 0, sizeof(elems[1]));
    elems[1].type = MSGPACK_OBJECT_STR;
    elems[1].via.str.ptr = "a";
    elems[1].via.str.size = 1;
    memset(&o, 0, sizeof(o));
    o.type = MSGPACK_OBJECT_ARRAY;
    o.via.array.size = 2;
    o.via.array.ptr = elems;
    reset(f);
    assert_int_equal(mapq_json_from_msgpack(&o, &f->out, 0, f->err), MAPQ_OK);
    assert_string_equal(f->out.data, "[\"\",\"a\"]");
    /* The same as a dict key. */
    kv.key = elems[0];
    kv.val = elems[1];
    memset(&o, 0, sizeof(o));
    o.type = MSGPACK_OBJECT_MAP;
    o.via.map.size = 1;
    o.via.map.ptr = &kv;
    reset(f);
    assert_int_equal(mapq_json_from_msgpack(&o, &f->out, 0, f->err), MAPQ_OK);
    assert_string_equal(f->out.data, "{\"\":\"a\"}");
    /* And as packed bytes. */
    reset(f);
    msgpack_pack_str(&f->pk, 0);
    assert_string_equal(render(f, 0), "\"\"");
}

static void
test_json_bytes_to_base64(void **state)
{
    static const char *const want[] = {"\"\"", "\"YQ==\"", "\"YWI=\"",
                                       "\"YWJj\"", "\"YWJjZA==\""};
    struct fx *f = *state;
    size_t n;

    for (n = 0; n < 5; n++) {
        reset(f);
        msgpack_pack_bin(&f->pk, n);
        msgpack_pack_bin_body(&f->pk, "abcd", n);
        assert_string_equal(render(f, 0), want[n]);
    }
    reset(f);
    msgpack_pack_bin(&f->pk, 3);
    msgpack_pack_bin_body(&f->pk, "\x00\xff\x10", 3);
    assert_string_equal(render(f, 0), "\"AP8Q\"");
}

static void
test_json_base64_to_bytes(void **state)
{
    static const char *const text[] = {"\"\"", "\"YQ==\"", "\"YWI=\"",
                                       "\"YWJj\"", " \"YWJjZA==\" "};
    struct fx *f = *state;
    const msgpack_object *o;
    size_t n;

    set_type(f, "bytes");
    for (n = 0; n < 5; n++) {
        assert_int_equal(parse(f, text[n]), MAPQ_OK);
        o = parsed(f);
        assert_int_equal(o->type, MSGPACK_OBJECT_BIN);
        assert_int_equal(o->via.bin.size, n);
        assert_memory_equal(o->via.bin.ptr, "abcd", n);
    }
    assert_int_equal(parse(f, "\"AP8Q\""), MAPQ_OK);
    o = parsed(f);
    assert_int_equal(o->via.bin.size, 3);
    assert_memory_equal(o->via.bin.ptr, "\x00\xff\x10", 3);
    /* Without the declared type, the same text stays a string. */
    set_type(f, NULL);
    assert_int_equal(parse(f, "\"YQ==\""), MAPQ_OK);
    assert_int_equal(parsed(f)->type, MSGPACK_OBJECT_STR);
}

static void
test_json_base64_invalid_rejected(void **state)
{
    static const char *const bad[] = {"\"YWJ\"",     "\"YW=j\"", "\"YW Jj\"",
                                      "\"YWJj\\n\"", "\"Y===\"", "\"YWJ!\""};
    struct fx *f = *state;
    size_t i;

    set_type(f, "bytes");
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(parse(f, bad[i]), MAPQ_ETYPE);
        assert_string_equal(f->err, "expected bytes as base64, got a string "
                                    "that is not valid base64");
    }
    set_type(f, "list[bytes]");
    assert_int_equal(parse(f, "[\"YQ==\", \"YQ\"]"), MAPQ_ETYPE);
    assert_string_equal(f->err, "[1]: expected bytes as base64, got a string "
                                "that is not valid base64");
    assert_int_equal(f->out.len, 0);
}

static void
test_json_type_directed_conversion(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;

    set_type(f, "list[float]");
    assert_string_equal(reparse(f, "[1, 2.5, -3]"), "[1.0,2.5,-3.0]");
    o = parsed(f);
    assert_int_equal(o->via.array.ptr[0].type, MSGPACK_OBJECT_FLOAT64);
    set_type(f, "dict[list[float?]]");
    assert_string_equal(reparse(f, "{\"a\": [1, null]}"), "{\"a\":[1.0,null]}");
    set_type(f, "float");
    assert_string_equal(reparse(f, "7"), "7.0");
    set_type(f, "any");
    assert_string_equal(reparse(f, "[7, 7.0, \"YQ==\"]"), "[7,7.0,\"YQ==\"]");
    set_type(f, NULL);
    assert_string_equal(reparse(f, "7"), "7");
    set_type(f, "int?");
    assert_string_equal(reparse(f, "null"), "null");
}

static void
test_json_type_mismatch_reported(void **state)
{
    struct fx *f = *state;

    set_type(f, "int");
    assert_int_equal(parse(f, "1.0"), MAPQ_ETYPE);
    assert_string_equal(f->err, "expected int, got float");
    assert_int_equal(parse(f, "null"), MAPQ_ETYPE);
    assert_string_equal(f->err, "expected int, got null");
    set_type(f, "list[int]");
    assert_int_equal(parse(f, "[1, 2, \"x\"]"), MAPQ_ETYPE);
    assert_string_equal(f->err, "[2]: expected int, got str");
    set_type(f, "dict[str]");
    assert_int_equal(parse(f, "{\"a\": \"x\", \"b\": 1}"), MAPQ_ETYPE);
    assert_string_equal(f->err, "[\"b\"]: expected str, got int");
    set_type(f, "str");
    assert_int_equal(parse(f, "[]"), MAPQ_ETYPE);
    assert_string_equal(f->err, "expected str, got list");
    assert_int_equal(f->out.len, 0);
}

static void
test_json_invalid_json_message(void **state)
{
    struct fx *f = *state;

    assert_int_equal(parse(f, "[1, 2"), MAPQ_EINVAL);
    assert_string_equal(
        f->err, "invalid JSON at line 1, column 5: premature end of input");
    assert_int_equal(parse(f, "[1,\n  x]"), MAPQ_EINVAL);
    assert_string_equal(
        f->err,
        "invalid JSON at line 2, column 3: invalid char in json text near 'x'");
    assert_null(strchr(f->err, '\n'));
}

static void
test_json_duplicate_keys_rejected(void **state)
{
    struct fx *f = *state;

    assert_int_equal(parse(f, "{\"a\": 1, \"a\": 2}"), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 12: duplicate "
                                "object key near '\"a\"'");
}

static void
test_json_exactly_one_value(void **state)
{
    struct fx *f = *state;

    assert_int_equal(parse(f, " \n\t 7 \r\n"), MAPQ_OK);
    assert_int_equal(parsed(f)->via.i64, 7);
    assert_int_equal(parse(f, "1 2"), MAPQ_EINVAL);
    assert_string_equal(
        f->err,
        "invalid JSON at line 1, column 3: end of input expected near '2'");
    assert_int_equal(parse(f, ""), MAPQ_EINVAL);
    assert_int_equal(parse(f, "   "), MAPQ_EINVAL);
}

static void
test_json_pretty_output(void **state)
{
    struct fx *f = *state;

    msgpack_pack_map(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "a");
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_int(&f->pk, 1);
    msgpack_pack_double(&f->pk, 2.0);
    mapq_value_pack_str(&f->pk, "b");
    msgpack_pack_nil(&f->pk);
    assert_string_equal(render(f, 0), "{\"a\":[1,2.0],\"b\":null}");
    assert_string_equal(
        render(f, MAPQ_JSON_PRETTY),
        "{\n  \"a\": [\n    1,\n    2.0\n  ],\n  \"b\": null\n}");
}

static void
test_json_key_order_preserved(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;

    msgpack_pack_map(&f->pk, 3);
    mapq_value_pack_str(&f->pk, "zeta");
    msgpack_pack_int(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "alpha");
    msgpack_pack_int(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "mid");
    msgpack_pack_int(&f->pk, 3);
    assert_string_equal(render(f, 0), "{\"zeta\":1,\"alpha\":2,\"mid\":3}");
    assert_int_equal(parse(f, "{\"zeta\":1,\"alpha\":2,\"mid\":3}"), MAPQ_OK);
    o = parsed(f);
    assert_true(mapq_value_str_eq(&o->via.map.ptr[0].key, "zeta"));
    assert_true(mapq_value_str_eq(&o->via.map.ptr[1].key, "alpha"));
    assert_true(mapq_value_str_eq(&o->via.map.ptr[2].key, "mid"));
}

static void
test_json_nul_in_strings(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;

    assert_int_equal(parse(f, "\"a\\u0000b\""), MAPQ_OK);
    o = parsed(f);
    assert_int_equal(o->via.str.size, 3);
    assert_memory_equal(o->via.str.ptr, "a\0b", 3);
    assert_string_equal(reparse(f, "\"a\\u0000b\""), "\"a\\u0000b\"");
}

static void
test_json_nesting_limit(void **state)
{
    struct fx *f = *state;
    char text[80];

    /* 32 levels are what msgpack-c can unpack again; 33 are refused. */
    memset(text, '[', 32);
    memset(text + 32, ']', 32);
    text[64] = '\0';
    assert_int_equal(parse(f, text), MAPQ_OK);
    memset(text, '[', 33);
    memset(text + 33, ']', 33);
    text[66] = '\0';
    assert_int_equal(parse(f, text), MAPQ_EINVAL);
    assert_string_equal(f->err,
                        "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]"
                        "[0][0][0][0][0][0][0][0][0][0][0][0][0][0][0]: value "
                        "nested more than 32 levels deep");
}

static void
test_json_size_cap(void **state)
{
    struct fx *f = *state;

    mapq_buf_init(&f->out, 8);
    assert_int_equal(mapq_buf_appendstr(&f->out, "ab"), MAPQ_OK);
    assert_int_equal(
        mapq_json_to_msgpack("\"0123456789\"", 12, NULL, &f->out, f->err),
        MAPQ_ETOOBIG);
    assert_string_equal(f->err, "value over the size cap (8 bytes)");
    assert_string_equal(f->out.data, "ab");
    mapq_value_pack_str(&f->pk, "0123456789");
    assert_int_equal(
        mapq_json_from_bytes(f->mp.data, f->mp.len, &f->out, 0, f->err),
        MAPQ_ETOOBIG);
    assert_string_equal(f->err, "JSON text over the size cap (8 bytes)");
    assert_string_equal(f->out.data, "ab");
    /* A map of names and plain scalars, written without jansson's tree,
     * is capped alike. */
    reset(f);
    mapq_buf_release(&f->out);
    mapq_buf_init(&f->out, 8);
    assert_int_equal(mapq_buf_appendstr(&f->out, "ab"), MAPQ_OK);
    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "k");
    mapq_value_pack_str(&f->pk, "0123456789");
    assert_int_equal(
        mapq_json_from_bytes(f->mp.data, f->mp.len, &f->out, 0, f->err),
        MAPQ_ETOOBIG);
    assert_string_equal(f->err, "JSON text over the size cap (8 bytes)");
    assert_string_equal(f->out.data, "ab");
}

/* Packs into f->mp the map of case c of test_json_flat_maps_as_jansson
 * (the empty map, one of every scalar, then one map per string and
 * shapes next to the flat one); false past the last case. */
static bool
pack_flat_case(struct fx *f, int c)
{
    static const char *const strs[] = {
        "",          "a b/c~",      "x\"y", "back\\slash",
        "tab\there", "caf\xc3\xa9", "\x7f"};
    const int nstrs = (int)(sizeof(strs) / sizeof(strs[0]));
    char name[24];
    int i;

    mapq_buf_reset(&f->mp);
    if (c >= 2 && c < 2 + nstrs) {
        msgpack_pack_map(&f->pk, 1);
        mapq_value_pack_str(&f->pk, "s");
        mapq_value_pack_str(&f->pk, strs[c - 2]);
        return true;
    }
    switch (c < 2 ? c : c - nstrs) {
    case 0:
        msgpack_pack_map(&f->pk, 0);
        return true;
    case 1:
        msgpack_pack_map(&f->pk, 8);
        mapq_value_pack_str(&f->pk, "x");
        msgpack_pack_int(&f->pk, 36);
        mapq_value_pack_str(&f->pk, "nil");
        msgpack_pack_nil(&f->pk);
        mapq_value_pack_str(&f->pk, "Yes_1");
        msgpack_pack_true(&f->pk);
        mapq_value_pack_str(&f->pk, "no-2");
        msgpack_pack_false(&f->pk);
        mapq_value_pack_str(&f->pk, "min");
        msgpack_pack_int64(&f->pk, INT64_MIN);
        mapq_value_pack_str(&f->pk, "max");
        msgpack_pack_uint64(&f->pk, (uint64_t)INT64_MAX);
        mapq_value_pack_str(&f->pk, "zero");
        msgpack_pack_int(&f->pk, 0);
        mapq_value_pack_str(&f->pk, "neg");
        msgpack_pack_int(&f->pk, -1);
        return true;
    case 2: /* keys that are not names */
        msgpack_pack_map(&f->pk, 2);
        mapq_value_pack_str(&f->pk, "a key");
        msgpack_pack_int(&f->pk, 1);
        mapq_value_pack_str(&f->pk, "\xc3\xa9");
        msgpack_pack_int(&f->pk, 2);
        return true;
    case 3: /* values that are not plain */
        msgpack_pack_map(&f->pk, 3);
        mapq_value_pack_str(&f->pk, "f");
        msgpack_pack_double(&f->pk, 1.5);
        mapq_value_pack_str(&f->pk, "l");
        msgpack_pack_array(&f->pk, 1);
        msgpack_pack_int(&f->pk, 1);
        mapq_value_pack_str(&f->pk, "b");
        msgpack_pack_bin(&f->pk, 2);
        msgpack_pack_bin_body(&f->pk, "hi", 2);
        return true;
    case 4: /* more entries than a flat map has */
        msgpack_pack_map(&f->pk, 17);
        for (i = 0; i < 17; i++) {
            snprintf(name, sizeof(name), "k%d", i);
            mapq_value_pack_str(&f->pk, name);
            msgpack_pack_int(&f->pk, i);
        }
        return true;
    default:
        return false;
    }
}

/* A map of names to null, booleans, integers and strings of printable
 * ASCII without quote or backslash is written without jansson's tree:
 * the same bytes as through it (a list of one map goes through it), and
 * so is every shape next to it, which takes the tree. */
static void
test_json_flat_maps_as_jansson_writes_them(void **state)
{
    struct fx *f = *state;
    char flat[512];
    int c;

    for (c = 0; pack_flat_case(f, c); c++) {
        assert_true(strlen(render(f, 0)) < sizeof(flat));
        strcpy(flat, f->out.data);
        /* The same map as the one element of a list (0x91). */
        mapq_buf_reset(&f->json);
        assert_int_equal(mapq_buf_append(&f->json, "\x91", 1), MAPQ_OK);
        assert_int_equal(mapq_buf_append(&f->json, f->mp.data, f->mp.len),
                         MAPQ_OK);
        mapq_buf_reset(&f->out);
        assert_int_equal(
            mapq_json_from_bytes(f->json.data, f->json.len, &f->out, 0, f->err),
            MAPQ_OK);
        assert_int_equal(f->out.len, strlen(flat) + 2);
        assert_memory_equal(f->out.data + 1, flat, strlen(flat));
        if (c == 1)
            assert_string_equal(
                flat, "{\"x\":36,\"nil\":null,\"Yes_1\":true,\"no-2\":false,"
                      "\"min\":-9223372036854775808,"
                      "\"max\":9223372036854775807,\"zero\":0,\"neg\":-1}");
    }
    assert_int_equal(c, 12);
}

static void
test_json_appends_to_out(void **state)
{
    struct fx *f = *state;

    assert_int_equal(mapq_buf_appendstr(&f->out, "x="), MAPQ_OK);
    msgpack_pack_int(&f->pk, 5);
    assert_int_equal(
        mapq_json_from_bytes(f->mp.data, f->mp.len, &f->out, 0, f->err),
        MAPQ_OK);
    assert_string_equal(f->out.data, "x=5");
}

static void
test_json_truncated_msgpack_rejected(void **state)
{
    struct fx *f = *state;

    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_int(&f->pk, 1);
    assert_int_equal(render_rc(f), MAPQ_EPROTO);
    assert_string_equal(f->err, "truncated msgpack value");
}

/* Any bytes become a valid JSON string: bad ones as U+FFFD, controls,
 * quotes and NUL escaped, valid UTF-8 kept. */
static void
test_json_append_text(void **state)
{
    struct fx *f = *state;
    static const char text[] = "a\"b\\c\n\xff\xc3(d\0e\xc3\xa9";

    mapq_json_append_text(&f->out, text, sizeof(text) - 1);
    assert_string_equal(f->out.data, "\"a\\\"b\\\\c\\n\xef\xbf\xbd\xef\xbf\xbd("
                                     "d\\u0000e\xc3\xa9\"");
    mapq_buf_reset(&f->out);
    mapq_json_append_text(&f->out, NULL, 0);
    assert_string_equal(f->out.data, "\"\"");
}

/* What mapq_json_write() wrote for the msgpack in f->mp, in f->json (its
 * code returned); the text must be mapq_json_from_bytes()'s and a newline
 * when it succeeds, and nothing, with the same error, when it fails. */
static enum mapq_err
write_stream(struct fx *f)
{
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    char err[MAPQ_ERR_LEN] = "";
    enum mapq_err rc, whole;

    assert_non_null(mem);
    rc = mapq_json_write(f->mp.data, f->mp.len, mem, err);
    assert_int_equal(fclose(mem), 0);
    mapq_buf_reset(&f->json);
    mapq_buf_append(&f->json, text, len);
    mapq_buf_append(&f->json, "", 1);
    whole = render_rc(f);
    assert_int_equal(rc, whole);
    if (rc == MAPQ_OK) {
        assert_int_equal(len, f->out.len + 1);
        assert_memory_equal(text, f->out.data, f->out.len);
        assert_int_equal(text[len - 1], '\n');
    } else {
        assert_int_equal(len, 0);
        assert_string_equal(err, f->err);
    }
    free(text);
    return rc;
}

static void
test_json_write_streams_lists_as_whole(void **state)
{
    struct fx *f = *state;
    char whole_err[MAPQ_ERR_LEN];
    int i;

    /* A list whose later float needs 17 digits: every float of the
     * whole is written with them, as when it is converted at once. */
    msgpack_pack_array(&f->pk, 5);
    msgpack_pack_double(&f->pk, 0.5);
    msgpack_pack_int64(&f->pk, -3);
    msgpack_pack_array(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "a\"b");
    msgpack_pack_nil(&f->pk);
    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "k");
    msgpack_pack_true(&f->pk);
    msgpack_pack_double(&f->pk, 0.1 + 0.2);
    assert_int_equal(write_stream(f), MAPQ_OK);
    assert_string_equal(f->json.data, "[0.5,-3,[\"a\\\"b\",null],{\"k\":true},"
                                      "0.30000000000000004]\n");
    /* Empty, array 16, array 32 headers, and a value that is no list. */
    reset(f);
    msgpack_pack_array(&f->pk, 0);
    assert_int_equal(write_stream(f), MAPQ_OK);
    assert_string_equal(f->json.data, "[]\n");
    reset(f);
    msgpack_pack_array(&f->pk, 300);
    for (i = 0; i < 300; i++)
        msgpack_pack_int64(&f->pk, i);
    assert_int_equal(write_stream(f), MAPQ_OK);
    reset(f);
    msgpack_pack_array(&f->pk, 70000);
    for (i = 0; i < 70000; i++)
        msgpack_pack_int64(&f->pk, i % 7);
    assert_int_equal(write_stream(f), MAPQ_OK);
    reset(f);
    mapq_value_pack_str(&f->pk, "just text");
    assert_int_equal(write_stream(f), MAPQ_OK);
    assert_string_equal(f->json.data, "\"just text\"\n");
    /* An element that cannot be JSON: the same error, nothing written. */
    reset(f);
    msgpack_pack_array(&f->pk, 3);
    msgpack_pack_int64(&f->pk, 1);
    msgpack_pack_int64(&f->pk, 2);
    msgpack_pack_double(&f->pk, NAN);
    assert_int_equal(write_stream(f), MAPQ_EINVAL);
    snprintf(whole_err, sizeof(whole_err), "%s", f->err);
    assert_string_equal(whole_err, "[2]: float NaN cannot be written as JSON");
    /* Fewer elements than the header says, and bytes after the last. */
    reset(f);
    msgpack_pack_array(&f->pk, 3);
    msgpack_pack_int64(&f->pk, 1);
    assert_int_not_equal(write_stream(f), MAPQ_OK);
    reset(f);
    msgpack_pack_array(&f->pk, 1);
    msgpack_pack_int64(&f->pk, 1);
    msgpack_pack_int64(&f->pk, 2);
    assert_int_not_equal(write_stream(f), MAPQ_OK);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_json_scalars_to_json),
        T(test_json_round_trip_every_type),
        T(test_json_float_formatting),
        T(test_json_float_nan_inf_rejected),
        T(test_json_uint64_overflow),
        T(test_json_non_str_keys_rejected),
        T(test_json_duplicate_msgpack_keys_rejected),
        T(test_json_invalid_utf8_rejected),
        T(test_json_edge_values_both_ways),
        T(test_json_empty_str_without_pointer),
        T(test_json_bytes_to_base64),
        T(test_json_base64_to_bytes),
        T(test_json_base64_invalid_rejected),
        T(test_json_type_directed_conversion),
        T(test_json_type_mismatch_reported),
        T(test_json_invalid_json_message),
        T(test_json_duplicate_keys_rejected),
        T(test_json_exactly_one_value),
        T(test_json_pretty_output),
        T(test_json_key_order_preserved),
        T(test_json_nul_in_strings),
        T(test_json_nesting_limit),
        T(test_json_size_cap),
        T(test_json_flat_maps_as_jansson_writes_them),
        T(test_json_appends_to_out),
        T(test_json_truncated_msgpack_rejected),
        T(test_json_append_text),
        T(test_json_write_streams_lists_as_whole),
#undef T
    };

    return cmocka_run_group_tests_name("json", tests, NULL, NULL);
}
