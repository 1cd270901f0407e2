/*
 * test_type.c - parsing, formatting, assignability and checking of types.
 */
#include "mapq_test.h"

#include <math.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_buf.h"
#include "mapq_type.h"
#include "mapq_value.h"

#define NTYPES 32

struct fx {
    struct mapq_type *t[NTYPES];
    size_t nt;
    struct mapq_buf buf;
    msgpack_packer pk;
    msgpack_unpacked u;
};

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    mapq_buf_init(&fx->buf, 0);
    mapq_value_packer_init(&fx->pk, &fx->buf);
    msgpack_unpacked_init(&fx->u);
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    size_t i;

    for (i = 0; i < fx->nt; i++)
        mapq_type_free(fx->t[i]);
    mapq_buf_release(&fx->buf);
    msgpack_unpacked_destroy(&fx->u);
    free(fx);
    return 0;
}

/* Parses s, which must be valid; the fixture frees it. */
static struct mapq_type *
T(struct fx *fx, const char *s)
{
    char err[MAPQ_ERR_LEN] = "";
    struct mapq_type *t = mapq_type_parse(s, err);

    assert_non_null(t);
    assert_true(fx->nt < NTYPES);
    fx->t[fx->nt++] = t;
    return t;
}

/* Keeps a built type for the fixture to free. */
static struct mapq_type *
keep(struct fx *fx, struct mapq_type *t)
{
    assert_true(fx->nt < NTYPES);
    fx->t[fx->nt++] = t;
    return t;
}

static void
parse_fails(const char *s, const char *msg)
{
    char err[MAPQ_ERR_LEN] = "";

    assert_null(mapq_type_parse(s, err));
    assert_string_equal(err, msg);
}

static void
assert_format(const struct mapq_type *t, const char *want)
{
    char buf[128];

    assert_string_equal(mapq_type_format(t, buf, sizeof(buf)), want);
}

/* Unpacks what the fixture's packer wrote. */
static const msgpack_object *
packed(struct fx *fx)
{
    char err[MAPQ_ERR_LEN];

    msgpack_unpacked_destroy(&fx->u);
    msgpack_unpacked_init(&fx->u);
    assert_int_equal(mapq_value_unpack(fx->buf.data, fx->buf.len, &fx->u, err),
                     MAPQ_OK);
    return &fx->u.data;
}

static void
check_fails(const struct mapq_type *t, const msgpack_object *o, const char *msg)
{
    char err[MAPQ_ERR_LEN] = "";

    assert_int_equal(mapq_type_check(t, o, err), MAPQ_ETYPE);
    assert_string_equal(err, msg);
}

static void
test_type_parse_scalars(void **state)
{
    static const char *const names[] = {"int", "float", "bool",
                                        "str", "bytes", "any"};
    static const enum mapq_type_kind kinds[] = {MAPQ_T_INT,   MAPQ_T_FLOAT,
                                                MAPQ_T_BOOL,  MAPQ_T_STR,
                                                MAPQ_T_BYTES, MAPQ_T_ANY};
    struct fx *fx = *state;
    struct mapq_type *t;
    size_t i;

    for (i = 0; i < 6; i++) {
        t = T(fx, names[i]);
        assert_int_equal(t->kind, kinds[i]);
        assert_false(t->optional);
        assert_null(t->elem);
        assert_format(t, names[i]);
    }
}

static void
test_type_parse_nested_optional(void **state)
{
    struct fx *fx = *state;
    struct mapq_type *t = T(fx, " list [ dict[int?] ] ? ");

    assert_int_equal(t->kind, MAPQ_T_LIST);
    assert_true(t->optional);
    assert_int_equal(t->elem->kind, MAPQ_T_DICT);
    assert_false(t->elem->optional);
    assert_int_equal(t->elem->elem->kind, MAPQ_T_INT);
    assert_true(t->elem->elem->optional);
    assert_format(t, "list[dict[int?]]?");
}

static void
test_type_parse_errors(void **state)
{
    (void)state;
    parse_fails("integer",
                "unknown type 'integer' (expected int, float, "
                "bool, str, bytes, any, file, list[T], dict[T], {name: "
                "T, ...} or T?)");
    parse_fails("Int",
                "unknown type 'Int' (expected int, float, bool, str, "
                "bytes, any, file, list[T], dict[T], {name: T, ...} or T?)");
    parse_fails("list[foo]",
                "unknown type 'foo' in 'list[foo]' (expected "
                "int, float, bool, str, bytes, any, file, list[T], "
                "dict[T], {name: T, ...} or T?)");
    parse_fails("list", "malformed type 'list'");
    parse_fails("list[int", "malformed type 'list[int'");
    parse_fails("list[]", "malformed type 'list[]'");
    /* Split so that "??'" does not read as a trigraph. */
    parse_fails("int?"
                "?",
                "malformed type 'int?"
                "?'");
    parse_fails("int x", "malformed type 'int x'");
    parse_fails("", "malformed type ''");
}

static void
test_type_parse_depth_cap(void **state)
{
    char s[512];
    size_t i, off = 0;

    (void)state;
    for (i = 0; i < 40; i++)
        off += (size_t)snprintf(s + off, sizeof(s) - off, "list[");
    off += (size_t)snprintf(s + off, sizeof(s) - off, "int");
    for (i = 0; i < 40; i++)
        off += (size_t)snprintf(s + off, sizeof(s) - off, "]");
    assert_null(mapq_type_parse(s, NULL));
}

static void
test_type_format_truncates(void **state)
{
    struct fx *fx = *state;
    char small[8], one[1] = {'x'};

    assert_string_equal(
        mapq_type_format(T(fx, "list[dict[int]]"), small, sizeof(small)),
        "list[di");
    assert_string_equal(mapq_type_format(T(fx, "int?"), one, sizeof(one)), "");
    assert_format(NULL, "none");
}

static void
test_type_equal(void **state)
{
    struct fx *fx = *state;

    assert_true(mapq_type_equal(T(fx, "list[int?]"), T(fx, "list[ int? ]")));
    assert_false(mapq_type_equal(T(fx, "list[int?]"), T(fx, "list[int]")));
    assert_false(mapq_type_equal(T(fx, "list[int]"), T(fx, "dict[int]")));
    assert_false(mapq_type_equal(T(fx, "int"), NULL));
    assert_true(mapq_type_equal(NULL, NULL));
}

static void
test_type_assignable(void **state)
{
    static const struct {
        const char *src, *dst;
        bool ok;
    } cases[] = {
        {"int", "int", true},
        {"int", "float", true},
        {"float", "int", false},
        {"int", "int?", true},
        {"int?", "int", false},
        {"list[int]", "list[float]", true},
        {"list[int?]", "list[int]", false},
        {"list[int]", "list[int?]", true},
        {"list[int]?", "list[int]", false},
        {"dict[str]", "dict[str?]", true},
        {"dict[int?]", "dict[int]", false},
        {"any", "list[int]", true},
        {"list[int]", "any", true},
        {"int?", "any", true},
        {"list[any]", "list[str]", true},
        {"list[int]", "dict[int]", false},
        {"str", "bytes", false},
        {"bool", "int", false},
    };
    struct fx *fx = *state;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mapq_type *s = mapq_type_parse(cases[i].src, NULL);
        struct mapq_type *d = mapq_type_parse(cases[i].dst, NULL);
        bool ok = mapq_type_assignable(s, d);

        mapq_type_free(s);
        mapq_type_free(d);
        if (ok != cases[i].ok)
            fail_msg("%s -> %s: expected %d", cases[i].src, cases[i].dst,
                     cases[i].ok);
    }
    (void)fx;
}

static void
test_type_is_list(void **state)
{
    struct fx *fx = *state;

    assert_true(mapq_type_is_list(T(fx, "list[int]")));
    assert_true(mapq_type_is_list(T(fx, "list[int]?")));
    assert_false(mapq_type_is_list(T(fx, "any")));
    assert_false(mapq_type_is_list(T(fx, "dict[int]")));
}

static void
test_type_check_accepts(void **state)
{
    struct fx *fx = *state;
    char err[MAPQ_ERR_LEN];

    /* [1, 2.5, null] fits list[float?]. */
    msgpack_pack_array(&fx->pk, 3);
    msgpack_pack_int(&fx->pk, 1);
    msgpack_pack_double(&fx->pk, 2.5);
    msgpack_pack_nil(&fx->pk);
    assert_int_equal(mapq_type_check(T(fx, "list[float?]"), packed(fx), err),
                     MAPQ_OK);
    assert_int_equal(mapq_type_check(T(fx, "any"), packed(fx), err), MAPQ_OK);
}

static void
test_type_check_reports_path(void **state)
{
    struct fx *fx = *state;

    /* {"a": [1, "x"]} against dict[list[int]]. */
    msgpack_pack_map(&fx->pk, 1);
    mapq_value_pack_str(&fx->pk, "a");
    msgpack_pack_array(&fx->pk, 2);
    msgpack_pack_int(&fx->pk, 1);
    mapq_value_pack_str(&fx->pk, "x");
    check_fails(T(fx, "dict[list[int]]"), packed(fx),
                "[\"a\"][1]: expected int, got str");
}

static void
test_type_check_null(void **state)
{
    struct fx *fx = *state;
    char err[MAPQ_ERR_LEN];

    msgpack_pack_nil(&fx->pk);
    check_fails(T(fx, "int"), packed(fx), "expected int, got null");
    assert_int_equal(mapq_type_check(T(fx, "int?"), packed(fx), err), MAPQ_OK);
    assert_int_equal(mapq_type_check(T(fx, "any"), packed(fx), err), MAPQ_OK);
}

static void
test_type_check_dict_keys(void **state)
{
    struct fx *fx = *state;

    msgpack_pack_map(&fx->pk, 1);
    msgpack_pack_int(&fx->pk, 1);
    msgpack_pack_int(&fx->pk, 2);
    check_fails(T(fx, "dict[int]"), packed(fx),
                "dict keys must be str, got int");
}

static void
test_type_check_any_walks_nested(void **state)
{
    struct fx *fx = *state;

    /* [{1: 2}]: not representable as JSON even under any. */
    msgpack_pack_array(&fx->pk, 1);
    msgpack_pack_map(&fx->pk, 1);
    msgpack_pack_int(&fx->pk, 1);
    msgpack_pack_int(&fx->pk, 2);
    check_fails(T(fx, "any"), packed(fx),
                "[0]: dict keys must be str, got int");
    mapq_buf_reset(&fx->buf);
    msgpack_pack_array(&fx->pk, 1);
    msgpack_pack_ext(&fx->pk, 1, 1);
    msgpack_pack_ext_body(&fx->pk, "x", 1);
    check_fails(T(fx, "list[any]"), packed(fx), "[0]: expected any, got ext");
    check_fails(T(fx, "any"), packed(fx), "[0]: expected any, got ext");
}

/* Packs one str of n bytes. */
static void
pack_bytes_str(struct fx *fx, const char *s, size_t n)
{
    msgpack_pack_str(&fx->pk, n);
    msgpack_pack_str_body(&fx->pk, s, n);
}

static void
test_type_check_edge_values_accepted(void **state)
{
    struct fx *fx = *state;
    char err[MAPQ_ERR_LEN];

    /* ["", "a\0b", "\U0001F600", {}, [], 0, INT64_MIN, INT64_MAX, -0.0,
     * 5e-324, 1e308, {"": ""}] */
    msgpack_pack_array(&fx->pk, 12);
    pack_bytes_str(fx, "", 0);
    pack_bytes_str(fx, "a\0b", 3);
    pack_bytes_str(fx, "\xf0\x9f\x98\x80", 4);
    msgpack_pack_map(&fx->pk, 0);
    msgpack_pack_array(&fx->pk, 0);
    msgpack_pack_int(&fx->pk, 0);
    msgpack_pack_int64(&fx->pk, INT64_MIN);
    msgpack_pack_uint64(&fx->pk, (uint64_t)INT64_MAX);
    msgpack_pack_double(&fx->pk, -0.0);
    msgpack_pack_double(&fx->pk, 5e-324);
    msgpack_pack_double(&fx->pk, 1e308);
    msgpack_pack_map(&fx->pk, 1);
    pack_bytes_str(fx, "", 0);
    pack_bytes_str(fx, "", 0);
    assert_int_equal(mapq_type_check(T(fx, "any"), packed(fx), err), MAPQ_OK);
    assert_int_equal(mapq_type_check(T(fx, "list[any]"), packed(fx), err),
                     MAPQ_OK);
    /* Each typed on its own. */
    mapq_buf_reset(&fx->buf);
    msgpack_pack_array(&fx->pk, 3);
    pack_bytes_str(fx, "", 0);
    pack_bytes_str(fx, "a\0b", 3);
    pack_bytes_str(fx, "\xf0\x9f\x98\x80", 4);
    assert_int_equal(mapq_type_check(T(fx, "list[str]"), packed(fx), err),
                     MAPQ_OK);
    mapq_buf_reset(&fx->buf);
    msgpack_pack_array(&fx->pk, 2);
    msgpack_pack_int64(&fx->pk, INT64_MIN);
    msgpack_pack_uint64(&fx->pk, (uint64_t)INT64_MAX);
    assert_int_equal(mapq_type_check(T(fx, "list[int]"), packed(fx), err),
                     MAPQ_OK);
    assert_int_equal(mapq_type_check(T(fx, "list[float]"), packed(fx), err),
                     MAPQ_OK);
}

static void
test_type_check_unrepresentable_refused(void **state)
{
    struct fx *fx = *state;

    msgpack_pack_uint64(&fx->pk, (uint64_t)INT64_MAX + 1);
    check_fails(T(fx, "int"), packed(fx),
                "integer out of range: 9223372036854775808");
    check_fails(T(fx, "float"), packed(fx),
                "integer out of range: 9223372036854775808");
    mapq_buf_reset(&fx->buf);
    msgpack_pack_array(&fx->pk, 3);
    msgpack_pack_double(&fx->pk, 1.5);
    msgpack_pack_double(&fx->pk, NAN);
    msgpack_pack_double(&fx->pk, INFINITY);
    check_fails(T(fx, "list[float]"), packed(fx),
                "[1]: float NaN cannot be written as JSON");
    check_fails(T(fx, "any"), packed(fx),
                "[1]: float NaN cannot be written as JSON");
    mapq_buf_reset(&fx->buf);
    msgpack_pack_map(&fx->pk, 1);
    mapq_value_pack_str(&fx->pk, "k");
    msgpack_pack_float(&fx->pk, -INFINITY);
    check_fails(T(fx, "dict[float]"), packed(fx),
                "[\"k\"]: float infinity cannot be written as JSON");
    /* Text that is not UTF-8: the element and the byte. */
    mapq_buf_reset(&fx->buf);
    msgpack_pack_array(&fx->pk, 3);
    mapq_value_pack_str(&fx->pk, "ok");
    mapq_value_pack_str(&fx->pk, "ok");
    pack_bytes_str(fx, "caf\xe9", 4);
    check_fails(T(fx, "list[str]"), packed(fx),
                "[2]: string is not valid UTF-8 (byte 0xe9 at offset 3)");
    check_fails(T(fx, "any"), packed(fx),
                "[2]: string is not valid UTF-8 (byte 0xe9 at offset 3)");
    mapq_buf_reset(&fx->buf);
    pack_bytes_str(fx, "\xed\xa0\x80", 3); /* a surrogate */
    check_fails(T(fx, "str"), packed(fx),
                "string is not valid UTF-8 (byte 0xed at offset 0)");
    /* Keys: not UTF-8, or holding NUL. */
    mapq_buf_reset(&fx->buf);
    msgpack_pack_map(&fx->pk, 1);
    pack_bytes_str(fx, "\xff", 1);
    msgpack_pack_int(&fx->pk, 1);
    check_fails(T(fx, "dict[int]"), packed(fx),
                "[\"\\xff\"]: dict key is not valid UTF-8");
    mapq_buf_reset(&fx->buf);
    msgpack_pack_map(&fx->pk, 1);
    pack_bytes_str(fx, "a\0", 2);
    msgpack_pack_int(&fx->pk, 1);
    check_fails(T(fx, "any"), packed(fx),
                "[\"a\\x00\"]: dict key holds a NUL byte");
    /* bytes may hold anything. */
    mapq_buf_reset(&fx->buf);
    msgpack_pack_bin(&fx->pk, 2);
    msgpack_pack_bin_body(&fx->pk, "\xff\0", 2);
    check_fails(T(fx, "str"), packed(fx), "expected str, got bytes");
}

static void
test_type_utf8_prefix(void **state)
{
    (void)state;
    assert_int_equal(mapq_type_utf8_prefix(NULL, 0), 0);
    assert_int_equal(mapq_type_utf8_prefix("a\0b", 3), 3);
    assert_int_equal(mapq_type_utf8_prefix("\xc3\xa9", 2), 2);
    assert_int_equal(mapq_type_utf8_prefix("\xe2\x82\xac", 3), 3);
    assert_int_equal(mapq_type_utf8_prefix("\xf0\x9f\x98\x80", 4), 4);
    assert_int_equal(mapq_type_utf8_prefix("\xf4\x8f\xbf\xbf", 4), 4);
    assert_int_equal(mapq_type_utf8_prefix("ab\xf4\x90\x80\x80", 6), 2);
    assert_int_equal(mapq_type_utf8_prefix("a\xc0\x80", 3), 1);
    assert_int_equal(mapq_type_utf8_prefix("a\xe0\x80\x80", 4), 1);
    assert_int_equal(mapq_type_utf8_prefix("a\xf0\x80\x80\x80", 5), 1);
    assert_int_equal(mapq_type_utf8_prefix("a\xed\xbf\xbf", 4), 1);
    assert_int_equal(mapq_type_utf8_prefix("\xee\x80\x80", 3), 3);
    assert_int_equal(mapq_type_utf8_prefix("ab\xe2\x82", 4), 2);
    assert_int_equal(mapq_type_utf8_prefix("\x80", 1), 0);
    assert_int_equal(mapq_type_utf8_prefix("\xf8\x88\x80\x80\x80", 5), 0);
}

static void
test_type_path_key(void **state)
{
    char path[64] = "[1]";
    char key[60];

    (void)state;
    assert_int_equal(mapq_type_path_key(path, sizeof(path), "k", 1), 3);
    assert_string_equal(path, "[1][\"k\"]");
    path[3] = '\0';
    mapq_type_path_key(path, sizeof(path), "a\n\xff\0", 4);
    assert_string_equal(path, "[1][\"a\\x0a\\xff\\x00\"]");
    /* 14 three-byte characters: cut after 13 (39 bytes), not inside one. */
    for (int i = 0; i < 14; i++)
        memcpy(key + 3 * i, "\xe2\x82\xac", 3);
    path[0] = '\0';
    mapq_type_path_key(path, sizeof(path), key, 42);
    assert_int_equal(strlen(path), 4 + 39);
    assert_int_equal(mapq_type_utf8_prefix(path, strlen(path)), strlen(path));
    /* Never past the end of path. */
    memset(path, 'x', 60);
    path[60] = '\0';
    mapq_type_path_key(path, sizeof(path), "long key", 8);
    assert_int_equal(strlen(path), sizeof(path) - 1);
    /* nor cut inside a character when it is full */
    path[60] = '\0';
    mapq_type_path_key(path, sizeof(path), "\xe2\x82\xac", 3);
    assert_string_equal(path + 60, "[\"");
}

static void
test_type_null_elem_is_any(void **state)
{
    struct fx *fx = *state;
    struct mapq_type *t = keep(fx, mapq_type_new(MAPQ_T_LIST, false, NULL));
    char err[MAPQ_ERR_LEN];

    assert_format(t, "list[any]");
    msgpack_pack_array(&fx->pk, 2);
    msgpack_pack_int(&fx->pk, 1);
    mapq_value_pack_str(&fx->pk, "x");
    assert_int_equal(mapq_type_check(t, packed(fx), err), MAPQ_OK);
    assert_true(mapq_type_assignable(T(fx, "list[int]"), t));
}

static void
test_type_dup_is_deep(void **state)
{
    struct fx *fx = *state;
    struct mapq_type *a = T(fx, "list[dict[str?]]");
    struct mapq_type *b = keep(fx, mapq_type_dup(a));

    assert_true(mapq_type_equal(a, b));
    assert_ptr_not_equal(a->elem, b->elem);
    b->elem->elem->optional = false;
    assert_true(a->elem->elem->optional);
}

static void
test_type_record_parse_format(void **state)
{
    struct fx *fx = *state;
    struct mapq_type *t = T(fx, " { size:int, name : str?, tags: list[str] }?");
    char buf[64];

    assert_int_equal(t->kind, MAPQ_T_RECORD);
    assert_true(t->optional);
    assert_int_equal(t->nmembers, 3);
    /* Members by name, whatever the order written. */
    assert_format(t, "{name: str?, size: int, tags: list[str]}?");
    assert_format(T(fx, "list[{b: int, a: {y: float, x: float}}]"),
                  "list[{a: {x: float, y: float}, b: int}]");
    assert_int_equal(mapq_type_member(t, "size", 4)->kind, MAPQ_T_INT);
    assert_int_equal(mapq_type_member(t, "tagsX", 4)->kind, MAPQ_T_LIST);
    assert_null(mapq_type_member(t, "siz", 3));
    assert_null(mapq_type_member(t, "sizes", 5));
    assert_null(mapq_type_member(T(fx, "dict[int]"), "a", 1));
    /* The canonical spelling parses back to the same type. */
    mapq_type_format(t, buf, sizeof(buf));
    assert_true(mapq_type_equal(T(fx, buf), t));
}

static void
test_type_record_long_spelling(void **state)
{
    struct fx *fx = *state;
    struct mapq_buf b = MAPQ_BUF_INIT;
    struct mapq_type *t;
    char *whole, cut[256], err[MAPQ_ERR_LEN];
    int i;

    /* 64 members of long names: far past a fixed buffer. */
    mapq_buf_printf(&b, "{");
    for (i = 0; i < MAPQ_TYPE_MEMBERS_MAX; i++)
        mapq_buf_printf(&b, "%smember_with_a_long_name_%02d: list[str?]",
                        i ? ", " : "", i);
    mapq_buf_printf(&b, "}");
    t = T(fx, b.data);
    whole = mapq_type_format_alloc(t);
    assert_string_equal(whole, b.data);
    assert_true(mapq_type_equal(T(fx, whole), t));
    /* The fixed-size one cuts it. */
    assert_int_equal(strlen(mapq_type_format(t, cut, sizeof(cut))), 255);
    free(whole);
    mapq_buf_release(&b);
    /* One member more is refused. */
    mapq_buf_init(&b, 0);
    mapq_buf_printf(&b, "{");
    for (i = 0; i <= MAPQ_TYPE_MEMBERS_MAX; i++)
        mapq_buf_printf(&b, "%sm%d: int", i ? ", " : "", i);
    mapq_buf_printf(&b, "}");
    assert_null(mapq_type_parse(b.data, err));
    assert_non_null(strstr(err, "a record has at most 64 members"));
    mapq_buf_release(&b);
}

static void
test_type_record_parse_errors(void **state)
{
    (void)state;
    parse_fails("{}", "malformed type '{}' (a record is {name: T, ...})");
    parse_fails("{a int}", "malformed type '{a int}' (a record is {name: T, "
                           "...})");
    parse_fails("{a: int", "malformed type '{a: int' (a record is {name: T, "
                           "...})");
    parse_fails("{a: int,}", "malformed type '{a: int,}' (a record is {name: "
                             "T, ...})");
    parse_fails("{a: int, a: str}",
                "type '{a: int, a: str}': member 'a' declared twice");
    parse_fails("{1a: int}", "type '{1a: int}': bad member name '1a' "
                             "(letters, digits and _, not first a digit, at "
                             "most 64)");
    parse_fails("{a: intt}",
                "unknown type 'intt' in '{a: intt}' (expected "
                "int, float, bool, str, bytes, any, file, list[T], "
                "dict[T], {name: T, ...} or T?)");
}

static void
test_type_record_equal_assignable_dup(void **state)
{
    struct fx *fx = *state;
    struct mapq_type *a = T(fx, "{x: int, y: str}");

    assert_true(mapq_type_equal(a, T(fx, "{y: str, x: int}")));
    assert_false(mapq_type_equal(a, T(fx, "{x: int, y: str?}")));
    assert_false(mapq_type_equal(a, T(fx, "{x: int}")));
    assert_false(mapq_type_equal(a, T(fx, "dict[int]")));
    assert_true(mapq_type_assignable(a, T(fx, "{x: float, y: str?}")));
    assert_false(mapq_type_assignable(T(fx, "{x: float, y: str}"), a));
    assert_false(mapq_type_assignable(a, T(fx, "{x: int, z: str}")));
    assert_false(mapq_type_assignable(a, T(fx, "{x: int}")));
    assert_true(mapq_type_assignable(a, T(fx, "any")));
    assert_true(mapq_type_equal(keep(fx, mapq_type_dup(a)), a));
}

static void
test_type_record_check(void **state)
{
    struct fx *fx = *state;
    struct mapq_type *t = T(fx, "{n: int, tag: str?}");
    char err[MAPQ_ERR_LEN];

    /* {"tag": null, "n": 1}: members in any order, null for T?. */
    msgpack_pack_map(&fx->pk, 2);
    mapq_value_pack_str(&fx->pk, "tag");
    msgpack_pack_nil(&fx->pk);
    mapq_value_pack_str(&fx->pk, "n");
    msgpack_pack_int(&fx->pk, 1);
    assert_int_equal(mapq_type_check(t, packed(fx), err), MAPQ_OK);

    /* [{"n": 1}]: a member left out, even of type T?. */
    mapq_buf_reset(&fx->buf);
    msgpack_pack_array(&fx->pk, 1);
    msgpack_pack_map(&fx->pk, 1);
    mapq_value_pack_str(&fx->pk, "n");
    msgpack_pack_int(&fx->pk, 1);
    check_fails(T(fx, "list[{n: int, tag: str?}]"), packed(fx),
                "[0]: missing member 'tag' of {n: int, tag: str?}");

    /* {"n": 1, "tag": "a", "x": 2}: a member it does not have. */
    mapq_buf_reset(&fx->buf);
    msgpack_pack_map(&fx->pk, 3);
    mapq_value_pack_str(&fx->pk, "n");
    msgpack_pack_int(&fx->pk, 1);
    mapq_value_pack_str(&fx->pk, "tag");
    mapq_value_pack_str(&fx->pk, "a");
    mapq_value_pack_str(&fx->pk, "x");
    msgpack_pack_int(&fx->pk, 2);
    check_fails(t, packed(fx), "[\"x\"]: not a member of {n: int, tag: str?}");

    /* {"n": 1, "n": 2, "tag": "a"}: a member given twice. */
    mapq_buf_reset(&fx->buf);
    msgpack_pack_map(&fx->pk, 3);
    mapq_value_pack_str(&fx->pk, "n");
    msgpack_pack_int(&fx->pk, 1);
    mapq_value_pack_str(&fx->pk, "n");
    msgpack_pack_int(&fx->pk, 2);
    mapq_value_pack_str(&fx->pk, "tag");
    mapq_value_pack_str(&fx->pk, "a");
    check_fails(t, packed(fx), "[\"n\"]: member given twice");

    /* {"n": "1", "tag": "a"}: a member of the wrong type. */
    mapq_buf_reset(&fx->buf);
    msgpack_pack_map(&fx->pk, 2);
    mapq_value_pack_str(&fx->pk, "n");
    mapq_value_pack_str(&fx->pk, "1");
    mapq_value_pack_str(&fx->pk, "tag");
    mapq_value_pack_str(&fx->pk, "a");
    check_fails(t, packed(fx), "[\"n\"]: expected int, got str");

    /* A list is no record. */
    mapq_buf_reset(&fx->buf);
    msgpack_pack_array(&fx->pk, 0);
    check_fails(t, packed(fx), "expected {n: int, tag: str?}, got list");
}

/* ---- file ---------------------------------------------------------------- */

/* The SHA-256 of no bytes. */
#define SHA_EMPTY \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void
pack_kv_str(struct fx *fx, const char *k, const char *v)
{
    mapq_value_pack_str(&fx->pk, k);
    mapq_value_pack_str(&fx->pk, v);
}

static void
pack_kv_int(struct fx *fx, const char *k, int64_t v)
{
    mapq_value_pack_str(&fx->pk, k);
    msgpack_pack_int64(&fx->pk, v);
}

/* Packs {"uri": uri, "sha256": sha, "size": size}. */
static void
pack_ref(struct fx *fx, const char *uri, const char *sha, int64_t size)
{
    msgpack_pack_map(&fx->pk, 3);
    pack_kv_str(fx, "uri", uri);
    pack_kv_str(fx, "sha256", sha);
    pack_kv_int(fx, "size", size);
}

/* Starts over with a list of one element, which the caller packs. */
static void
one_of(struct fx *fx)
{
    mapq_buf_reset(&fx->buf);
    msgpack_pack_array(&fx->pk, 1);
}

static void
test_type_file_parse_format(void **state)
{
    static const char *const spellings[] = {"file",
                                            "file?",
                                            "list[file]",
                                            "dict[file?]",
                                            "list[dict[file]]?",
                                            "{img: file, n: int}"};
    struct fx *fx = *state;
    struct mapq_type *t;
    size_t i;

    t = T(fx, "file");
    assert_int_equal(t->kind, MAPQ_T_FILE);
    assert_false(t->optional);
    assert_null(t->elem);
    t = T(fx, " file ? ");
    assert_int_equal(t->kind, MAPQ_T_FILE);
    assert_true(t->optional);
    assert_format(t, "file?");
    t = T(fx, "list[file]");
    assert_int_equal(t->elem->kind, MAPQ_T_FILE);
    t = T(fx, "{n: int, img: file}");
    assert_int_equal(mapq_type_member(t, "img", 3)->kind, MAPQ_T_FILE);
    assert_format(t, "{img: file, n: int}");
    for (i = 0; i < sizeof(spellings) / sizeof(spellings[0]); i++) {
        char buf[64];

        t = mapq_type_parse(spellings[i], NULL);
        assert_non_null(t);
        keep(fx, t);
        assert_string_equal(mapq_type_format(t, buf, sizeof(buf)),
                            spellings[i]);
        assert_true(mapq_type_equal(keep(fx, mapq_type_dup(t)), t));
    }
    assert_false(mapq_type_equal(T(fx, "file"), T(fx, "file?")));
    assert_false(mapq_type_equal(T(fx, "file"), T(fx, "str")));
    parse_fails("files",
                "unknown type 'files' (expected int, float, bool, "
                "str, bytes, any, file, list[T], dict[T], {name: T, ...} "
                "or T?)");
    parse_fails("file[int]", "malformed type 'file[int]'");
}

static void
test_type_file_assignable(void **state)
{
    static const struct {
        const char *src, *dst;
        bool ok;
    } cases[] = {
        {"file", "file", true},
        {"file", "file?", true},
        {"file?", "file", false},
        {"file", "any", true},
        {"any", "file", true},
        {"list[file]", "list[file?]", true},
        {"list[file]", "list[any]", true},
        {"dict[file]", "dict[file]", true},
        {"{img: file, n: int}", "{img: file, n: float}", true},
        {"str", "file", false},
        {"file", "str", false},
        {"bytes", "file", false},
        {"file", "dict[str]", false},
        {"dict[str]", "file", false},
        {"{sha256: str, size: int, uri: str}", "file", false},
        {"file", "{sha256: str, size: int, uri: str}", false},
        {"list[str]", "list[file]", false},
        {"{img: str}", "{img: file}", false},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mapq_type *s = mapq_type_parse(cases[i].src, NULL);
        struct mapq_type *d = mapq_type_parse(cases[i].dst, NULL);
        bool ok = mapq_type_assignable(s, d);

        mapq_type_free(s);
        mapq_type_free(d);
        if (ok != cases[i].ok)
            fail_msg("%s -> %s: expected %d", cases[i].src, cases[i].dst,
                     cases[i].ok);
    }
}

static void
test_type_has_file(void **state)
{
    struct fx *fx = *state;

    assert_true(mapq_type_has_file(T(fx, "file")));
    assert_true(mapq_type_has_file(T(fx, "file?")));
    assert_true(mapq_type_has_file(T(fx, "list[file]")));
    assert_true(mapq_type_has_file(T(fx, "dict[list[file?]]?")));
    assert_true(mapq_type_has_file(T(fx, "{a: int, z: {img: file}}")));
    assert_true(mapq_type_has_file(T(fx, "list[{a: int, b: dict[file]}]")));
    assert_false(mapq_type_has_file(T(fx, "str")));
    assert_false(mapq_type_has_file(T(fx, "any")));
    assert_false(mapq_type_has_file(T(fx, "list[dict[bytes]]")));
    assert_false(mapq_type_has_file(T(fx, "{sha256: str, size: int, uri: "
                                          "str}")));
    assert_false(
        mapq_type_has_file(keep(fx, mapq_type_new(MAPQ_T_LIST, false, NULL))));
    assert_false(mapq_type_has_file(NULL));
}

static void
test_type_file_check_accepts(void **state)
{
    struct fx *fx = *state;
    char err[MAPQ_ERR_LEN];
    char uri[MAPQ_TYPE_URI_MAX + 1];

    /* Members in any order; size 0; a URI of any scheme, UTF-8. */
    msgpack_pack_map(&fx->pk, 3);
    pack_kv_int(fx, "size", 0);
    pack_kv_str(fx, "sha256", SHA_EMPTY);
    pack_kv_str(fx, "uri", "mapq:sha256/" SHA_EMPTY);
    assert_int_equal(mapq_type_check(T(fx, "file"), packed(fx), err), MAPQ_OK);
    assert_int_equal(mapq_type_check(T(fx, "file?"), packed(fx), err), MAPQ_OK);
    assert_int_equal(mapq_type_check(T(fx, "any"), packed(fx), err), MAPQ_OK);

    /* [ref, null] fits list[file?]; {"img": ref, "n": 1} the record. */
    mapq_buf_reset(&fx->buf);
    msgpack_pack_array(&fx->pk, 2);
    pack_ref(fx, "file:///srv/caf\xc3\xa9.png", SHA_EMPTY, INT64_MAX);
    msgpack_pack_nil(&fx->pk);
    assert_int_equal(mapq_type_check(T(fx, "list[file?]"), packed(fx), err),
                     MAPQ_OK);
    mapq_buf_reset(&fx->buf);
    msgpack_pack_map(&fx->pk, 2);
    pack_kv_int(fx, "n", 1);
    mapq_value_pack_str(&fx->pk, "img");
    pack_ref(fx, "s3://b/k", SHA_EMPTY, 12);
    assert_int_equal(
        mapq_type_check(T(fx, "{img: file, n: int}"), packed(fx), err),
        MAPQ_OK);

    /* A URI of exactly the cap. */
    memset(uri, 'u', MAPQ_TYPE_URI_MAX);
    uri[MAPQ_TYPE_URI_MAX] = '\0';
    mapq_buf_reset(&fx->buf);
    pack_ref(fx, uri, SHA_EMPTY, 1);
    assert_int_equal(mapq_type_check(T(fx, "file"), packed(fx), err), MAPQ_OK);
}

static void
test_type_file_check_refuses(void **state)
{
    struct fx *fx = *state;
    struct mapq_type *lf = T(fx, "list[file]");
    char uri[MAPQ_TYPE_URI_MAX + 2];

    /* Not a map at all, or null. */
    one_of(fx);
    mapq_value_pack_str(&fx->pk, "./a.png");
    check_fails(lf, packed(fx), "[0]: expected file, got str");
    one_of(fx);
    msgpack_pack_nil(&fx->pk);
    check_fails(lf, packed(fx), "[0]: expected file, got null");

    /* A member missing, one extra, one twice, a key that is no str. */
    one_of(fx);
    msgpack_pack_map(&fx->pk, 2);
    pack_kv_str(fx, "uri", "s3://b/k");
    pack_kv_str(fx, "sha256", SHA_EMPTY);
    check_fails(lf, packed(fx), "[0]: missing member 'size' of file");
    mapq_buf_reset(&fx->buf);
    msgpack_pack_map(&fx->pk, 0);
    check_fails(T(fx, "file"), packed(fx), "missing member 'sha256' of file");
    one_of(fx);
    msgpack_pack_map(&fx->pk, 4);
    pack_kv_str(fx, "uri", "s3://b/k");
    pack_kv_str(fx, "sha256", SHA_EMPTY);
    pack_kv_int(fx, "size", 0);
    pack_kv_str(fx, "name", "k");
    check_fails(lf, packed(fx), "[0][\"name\"]: not a member of file");
    one_of(fx);
    msgpack_pack_map(&fx->pk, 3);
    pack_kv_str(fx, "uri", "s3://b/k");
    pack_kv_str(fx, "uri", "s3://b/j");
    pack_kv_int(fx, "size", 0);
    check_fails(lf, packed(fx), "[0][\"uri\"]: member given twice");
    one_of(fx);
    msgpack_pack_map(&fx->pk, 1);
    msgpack_pack_int(&fx->pk, 1);
    msgpack_pack_int(&fx->pk, 2);
    check_fails(lf, packed(fx), "[0]: dict keys must be str, got int");

    /* sha256: upper case, 63 digits, 65, not hex, no str. */
    one_of(fx);
    pack_ref(fx, "s3://b/k",
             "E3B0C44298FC1C149AFBF4C8996FB92427AE41E4649B934CA495991B7852B855",
             0);
    check_fails(lf, packed(fx),
                "[0][\"sha256\"]: expected 64 lowercase hex digits");
    one_of(fx);
    pack_ref(fx, "s3://b/k",
             "3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
             0);
    check_fails(lf, packed(fx),
                "[0][\"sha256\"]: expected 64 lowercase hex digits");
    one_of(fx);
    pack_ref(fx, "s3://b/k", SHA_EMPTY "0", 0);
    check_fails(lf, packed(fx),
                "[0][\"sha256\"]: expected 64 lowercase hex digits");
    one_of(fx);
    pack_ref(fx, "s3://b/k",
             "g3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
             0);
    check_fails(lf, packed(fx),
                "[0][\"sha256\"]: expected 64 lowercase hex digits");
    one_of(fx);
    msgpack_pack_map(&fx->pk, 3);
    pack_kv_str(fx, "uri", "s3://b/k");
    pack_kv_int(fx, "sha256", 1);
    pack_kv_int(fx, "size", 0);
    check_fails(lf, packed(fx), "[0][\"sha256\"]: expected str, got int");

    /* size: negative, a str, a float, past INT64_MAX. */
    one_of(fx);
    pack_ref(fx, "s3://b/k", SHA_EMPTY, -1);
    check_fails(lf, packed(fx), "[0][\"size\"]: expected an int >= 0, got -1");
    one_of(fx);
    msgpack_pack_map(&fx->pk, 3);
    pack_kv_str(fx, "uri", "s3://b/k");
    pack_kv_str(fx, "sha256", SHA_EMPTY);
    pack_kv_str(fx, "size", "12");
    check_fails(lf, packed(fx), "[0][\"size\"]: expected int, got str");
    one_of(fx);
    msgpack_pack_map(&fx->pk, 3);
    pack_kv_str(fx, "uri", "s3://b/k");
    pack_kv_str(fx, "sha256", SHA_EMPTY);
    mapq_value_pack_str(&fx->pk, "size");
    msgpack_pack_double(&fx->pk, 12.0);
    check_fails(lf, packed(fx), "[0][\"size\"]: expected int, got float");
    one_of(fx);
    msgpack_pack_map(&fx->pk, 3);
    pack_kv_str(fx, "uri", "s3://b/k");
    pack_kv_str(fx, "sha256", SHA_EMPTY);
    mapq_value_pack_str(&fx->pk, "size");
    msgpack_pack_uint64(&fx->pk, (uint64_t)INT64_MAX + 1);
    check_fails(lf, packed(fx),
                "[0][\"size\"]: integer out of range: 9223372036854775808");

    /* uri: empty, over the cap, holding NUL, not UTF-8, no str. */
    one_of(fx);
    pack_ref(fx, "", SHA_EMPTY, 0);
    check_fails(lf, packed(fx), "[0][\"uri\"]: URI is empty");
    memset(uri, 'u', MAPQ_TYPE_URI_MAX + 1);
    uri[MAPQ_TYPE_URI_MAX + 1] = '\0';
    one_of(fx);
    pack_ref(fx, uri, SHA_EMPTY, 0);
    check_fails(lf, packed(fx),
                "[0][\"uri\"]: URI of 4097 bytes is over the 4096-byte cap");
    one_of(fx);
    msgpack_pack_map(&fx->pk, 3);
    mapq_value_pack_str(&fx->pk, "uri");
    pack_bytes_str(fx, "a\0b", 3);
    pack_kv_str(fx, "sha256", SHA_EMPTY);
    pack_kv_int(fx, "size", 0);
    check_fails(lf, packed(fx), "[0][\"uri\"]: URI holds a NUL byte");
    one_of(fx);
    msgpack_pack_map(&fx->pk, 3);
    mapq_value_pack_str(&fx->pk, "uri");
    pack_bytes_str(fx, "caf\xe9", 4);
    pack_kv_str(fx, "sha256", SHA_EMPTY);
    pack_kv_int(fx, "size", 0);
    check_fails(lf, packed(fx),
                "[0][\"uri\"]: string is not valid UTF-8 (byte 0xe9 at offset "
                "3)");
    one_of(fx);
    msgpack_pack_map(&fx->pk, 3);
    pack_kv_int(fx, "uri", 7);
    pack_kv_str(fx, "sha256", SHA_EMPTY);
    pack_kv_int(fx, "size", 0);
    check_fails(lf, packed(fx), "[0][\"uri\"]: expected str, got int");
    one_of(fx);
    msgpack_pack_map(&fx->pk, 3);
    mapq_value_pack_str(&fx->pk, "uri");
    msgpack_pack_nil(&fx->pk);
    pack_kv_str(fx, "sha256", SHA_EMPTY);
    pack_kv_int(fx, "size", 0);
    check_fails(lf, packed(fx), "[0][\"uri\"]: expected str, got null");

    /* Within a record, and a reference is no record of its members. */
    mapq_buf_reset(&fx->buf);
    msgpack_pack_map(&fx->pk, 1);
    mapq_value_pack_str(&fx->pk, "img");
    pack_ref(fx, "s3://b/k", SHA_EMPTY, -5);
    check_fails(T(fx, "{img: file}"), packed(fx),
                "[\"img\"][\"size\"]: expected an int >= 0, got -5");
    mapq_buf_reset(&fx->buf);
    pack_ref(fx, "s3://b/k", SHA_EMPTY, 1);
    check_fails(T(fx, "str"), packed(fx), "expected str, got dict");
}

static void
test_type_describe(void **state)
{
    struct fx *fx = *state;
    const msgpack_object *o;

    msgpack_pack_array(&fx->pk, 7);
    msgpack_pack_nil(&fx->pk);
    msgpack_pack_true(&fx->pk);
    msgpack_pack_int(&fx->pk, -1);
    msgpack_pack_double(&fx->pk, 1.5);
    mapq_value_pack_str(&fx->pk, "s");
    msgpack_pack_bin(&fx->pk, 1);
    msgpack_pack_bin_body(&fx->pk, "b", 1);
    msgpack_pack_map(&fx->pk, 0);
    o = packed(fx);
    assert_string_equal(mapq_type_describe(o), "list");
    assert_string_equal(mapq_type_describe(&o->via.array.ptr[0]), "null");
    assert_string_equal(mapq_type_describe(&o->via.array.ptr[1]), "bool");
    assert_string_equal(mapq_type_describe(&o->via.array.ptr[2]), "int");
    assert_string_equal(mapq_type_describe(&o->via.array.ptr[3]), "float");
    assert_string_equal(mapq_type_describe(&o->via.array.ptr[4]), "str");
    assert_string_equal(mapq_type_describe(&o->via.array.ptr[5]), "bytes");
    assert_string_equal(mapq_type_describe(&o->via.array.ptr[6]), "dict");
}

/* dir: a file reference with "files" too; the two never fit each other,
 * and a dir counts as holding files. */
static void
test_type_dir(void **state)
{
    struct fx *fx = *state;
    struct mapq_type *ld = T(fx, "list[dir]");
    char err[MAPQ_ERR_LEN], buf[64];

    assert_int_equal(T(fx, "dir")->kind, MAPQ_T_DIR);
    assert_string_equal(
        mapq_type_format(T(fx, "{d: dir?, ds: list[dir]}"), buf, sizeof(buf)),
        "{d: dir?, ds: list[dir]}");
    assert_true(mapq_type_has_file(T(fx, "dict[dir]")));
    assert_true(mapq_type_assignable(T(fx, "dir"), T(fx, "dir?")));
    assert_false(mapq_type_assignable(T(fx, "dir"), T(fx, "file")));
    assert_false(mapq_type_assignable(T(fx, "file"), T(fx, "dir")));
    assert_false(mapq_type_assignable(T(fx, "str"), T(fx, "dir")));

    /* {files, sha256, size, uri}, in any order. */
    msgpack_pack_map(&fx->pk, 4);
    pack_kv_str(fx, "uri", "mapq:sha256/" SHA_EMPTY "/photos");
    pack_kv_int(fx, "files", 0);
    pack_kv_str(fx, "sha256", SHA_EMPTY);
    pack_kv_int(fx, "size", 0);
    assert_int_equal(mapq_type_check(T(fx, "dir"), packed(fx), err), MAPQ_OK);
    check_fails(T(fx, "file"), packed(fx), "[\"files\"]: not a member of file");

    /* A file reference is no dir: "files" is missing. */
    one_of(fx);
    pack_ref(fx, "mapq:sha256/" SHA_EMPTY, SHA_EMPTY, 0);
    check_fails(ld, packed(fx), "[0]: missing member 'files' of dir");
    one_of(fx);
    msgpack_pack_map(&fx->pk, 4);
    pack_kv_str(fx, "uri", "mapq:sha256/" SHA_EMPTY);
    pack_kv_int(fx, "files", -1);
    pack_kv_str(fx, "sha256", SHA_EMPTY);
    pack_kv_int(fx, "size", 0);
    check_fails(ld, packed(fx), "[0][\"files\"]: expected an int >= 0, got -1");
    one_of(fx);
    mapq_value_pack_str(&fx->pk, "./photos");
    check_fails(ld, packed(fx), "[0]: expected dir, got str");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_type_parse_scalars, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_parse_nested_optional, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_parse_errors, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_parse_depth_cap, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_format_truncates, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_equal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_assignable, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_is_list, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_check_accepts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_check_reports_path, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_check_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_check_dict_keys, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_check_any_walks_nested, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_check_edge_values_accepted,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_check_unrepresentable_refused,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_record_parse_format, setup,
                                        teardown),
        cmocka_unit_test(test_type_record_parse_errors),
        cmocka_unit_test_setup_teardown(test_type_record_long_spelling, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_record_equal_assignable_dup,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_record_check, setup,
                                        teardown),
        cmocka_unit_test(test_type_utf8_prefix),
        cmocka_unit_test(test_type_path_key),
        cmocka_unit_test_setup_teardown(test_type_null_elem_is_any, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_dup_is_deep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_describe, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_file_parse_format, setup,
                                        teardown),
        cmocka_unit_test(test_type_file_assignable),
        cmocka_unit_test_setup_teardown(test_type_has_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_type_file_check_accepts, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_file_check_refuses, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_type_dir, setup, teardown),
    };

    return cmocka_run_group_tests_name("type", tests, NULL, NULL);
}
