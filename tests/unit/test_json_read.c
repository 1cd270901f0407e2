#include "mapq_test.h"

/*
 * test_json_read.c - JSON text read as a stream (yajl): long lists convert
 * to the same bytes as msgpack-c packs them, errors in the middle of one
 * name the element and the line and column, the JSON language read is
 * exactly jansson's (UTF-8, escapes, integers, duplicates, depth, one
 * value), and an object is read member by member into buffers its caller
 * picks.
 */
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_json.h"
#include "mapq_type.h"
#include "mapq_value.h"

#define NMEMBER 3

struct fx {
    struct mapq_buf text; /* JSON built by the test */
    struct mapq_buf mp;   /* msgpack built by the test, independently */
    struct mapq_buf out;  /* msgpack made by the module */
    msgpack_packer pk;    /* appends to mp */
    msgpack_unpacked u;
    struct mapq_type *type;
    char err[MAPQ_ERR_LEN];
    /* mapq_json_read_members() */
    struct mapq_buf log;              /* one line per callback */
    struct mapq_buf vals[NMEMBER];    /* members "a", "b", "c" */
    struct mapq_type *types[NMEMBER]; /* what each is converted toward */
    struct mapq_json_pos pos;
};

static int
setup(void **state)
{
    struct fx *f = mapq_xcalloc(1, sizeof(*f));
    size_t i;

    mapq_buf_init(&f->text, 0);
    mapq_buf_init(&f->mp, 0);
    mapq_buf_init(&f->out, 0);
    mapq_buf_init(&f->log, 0);
    for (i = 0; i < NMEMBER; i++)
        mapq_buf_init(&f->vals[i], 0);
    mapq_value_packer_init(&f->pk, &f->mp);
    msgpack_unpacked_init(&f->u);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    size_t i;

    mapq_buf_release(&f->text);
    mapq_buf_release(&f->mp);
    mapq_buf_release(&f->out);
    mapq_buf_release(&f->log);
    for (i = 0; i < NMEMBER; i++) {
        mapq_buf_release(&f->vals[i]);
        mapq_type_free(f->types[i]);
    }
    msgpack_unpacked_destroy(&f->u);
    mapq_type_free(f->type);
    free(f);
    return 0;
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

/* Converts f->text toward f->type into f->out (emptied first). */
static enum mapq_err
convert(struct fx *f)
{
    mapq_buf_reset(&f->out);
    f->err[0] = '\0';
    return mapq_json_to_msgpack(f->text.data, f->text.len, f->type, &f->out,
                                f->err);
}

/* Converts the C string s toward f->type. */
static enum mapq_err
convert_str(struct fx *f, const char *s)
{
    mapq_buf_reset(&f->text);
    mapq_buf_appendstr(&f->text, s);
    return convert(f);
}

/* f->out holds exactly the bytes of f->mp. */
static void
assert_same_bytes(struct fx *f)
{
    assert_int_equal(f->out.len, f->mp.len);
    assert_memory_equal(f->out.data, f->mp.data, f->mp.len);
}

/* The one msgpack object in f->out. */
static const msgpack_object *
parsed(struct fx *f)
{
    assert_int_equal(mapq_value_unpack(f->out.data, f->out.len, &f->u, f->err),
                     MAPQ_OK);
    return &f->u.data;
}

/* "[\n  0,\n  1,\n ...]": element i alone on line i + 2, at column 3;
 * element bad (when < n) is the text bad_text instead. */
static void
int_list_text(struct fx *f, size_t n, size_t bad, const char *bad_text)
{
    size_t i;

    mapq_buf_reset(&f->text);
    mapq_buf_appendstr(&f->text, "[\n");
    for (i = 0; i < n; i++) {
        if (i == bad)
            mapq_buf_printf(&f->text, "  %s", bad_text);
        else
            mapq_buf_printf(&f->text, "  %zu", i * 7);
        mapq_buf_appendstr(&f->text, i + 1 < n ? ",\n" : "\n");
    }
    mapq_buf_appendstr(&f->text, "]");
}

static void
test_json_read_long_int_list_same_bytes(void **state)
{
    struct fx *f = *state;
    size_t i, n = 200000;

    int_list_text(f, n, n, NULL);
    msgpack_pack_array(&f->pk, n);
    for (i = 0; i < n; i++)
        msgpack_pack_int64(&f->pk, (int64_t)(i * 7));
    set_type(f, "list[int]");
    assert_int_equal(convert(f), MAPQ_OK);
    assert_same_bytes(f);
    /* The natural mapping and any: the same bytes. */
    set_type(f, NULL);
    assert_int_equal(convert(f), MAPQ_OK);
    assert_same_bytes(f);
    set_type(f, "any");
    assert_int_equal(convert(f), MAPQ_OK);
    assert_same_bytes(f);
}

static void
test_json_read_list_of_records_same_bytes(void **state)
{
    struct fx *f = *state;
    size_t i, n = 20000;
    char name[32];
    int len;

    mapq_buf_appendstr(&f->text, "[");
    msgpack_pack_array(&f->pk, n);
    for (i = 0; i < n; i++) {
        mapq_buf_printf(&f->text,
                        "%s{\"id\": %zu, \"name\": \"r%zu\", \"w\": %zu.25, "
                        "\"ok\": %s, \"tags\": [\"a\", null, []]}",
                        i ? ", " : "", i, i, i, i % 2 ? "true" : "false");
        msgpack_pack_map(&f->pk, 5);
        mapq_value_pack_str(&f->pk, "id");
        msgpack_pack_int64(&f->pk, (int64_t)i);
        mapq_value_pack_str(&f->pk, "name");
        len = snprintf(name, sizeof(name), "r%zu", i);
        msgpack_pack_str(&f->pk, (size_t)len);
        msgpack_pack_str_body(&f->pk, name, (size_t)len);
        mapq_value_pack_str(&f->pk, "w");
        msgpack_pack_double(&f->pk, (double)i + 0.25);
        mapq_value_pack_str(&f->pk, "ok");
        if (i % 2)
            msgpack_pack_true(&f->pk);
        else
            msgpack_pack_false(&f->pk);
        mapq_value_pack_str(&f->pk, "tags");
        msgpack_pack_array(&f->pk, 3);
        mapq_value_pack_str(&f->pk, "a");
        msgpack_pack_nil(&f->pk);
        msgpack_pack_array(&f->pk, 0);
    }
    mapq_buf_appendstr(&f->text, "]");
    set_type(f, "list[dict[any]]");
    assert_int_equal(convert(f), MAPQ_OK);
    assert_same_bytes(f);
    set_type(f, NULL);
    assert_int_equal(convert(f), MAPQ_OK);
    assert_same_bytes(f);
}

/* The list header is msgpack-c's for the final count, however many
 * elements came: fixarray, array 16 and array 32, at each boundary. */
static void
test_json_read_list_header_widths(void **state)
{
    static const size_t counts[] = {0, 1, 15, 16, 17, 65535, 65536, 65537};
    struct fx *f = *state;
    size_t c, i;

    set_type(f, "list[str]");
    for (c = 0; c < sizeof(counts) / sizeof(counts[0]); c++) {
        mapq_buf_reset(&f->text);
        mapq_buf_reset(&f->mp);
        mapq_buf_appendstr(&f->text, "[");
        msgpack_pack_array(&f->pk, counts[c]);
        for (i = 0; i < counts[c]; i++) {
            mapq_buf_appendstr(&f->text, i ? ",\"ab\"" : "\"ab\"");
            mapq_value_pack_str(&f->pk, "ab");
        }
        mapq_buf_appendstr(&f->text, "]");
        assert_int_equal(convert(f), MAPQ_OK);
        assert_same_bytes(f);
    }
}

static void
test_json_read_type_error_names_element(void **state)
{
    struct fx *f = *state;

    int_list_text(f, 200000, 150000, "\"x\"");
    set_type(f, "list[int]");
    assert_int_equal(convert(f), MAPQ_ETYPE);
    assert_string_equal(f->err, "[150000]: expected int, got str");
    assert_int_equal(f->out.len, 0);
    /* Inside an element, the path goes on. */
    set_type(f, "list[list[int]]");
    assert_int_equal(convert_str(f, "[[1], [2, \"y\"]]"), MAPQ_ETYPE);
    assert_string_equal(f->err, "[1][1]: expected int, got str");
    /* A type that takes no list at all: the list itself is refused. */
    set_type(f, "dict[int]");
    assert_int_equal(convert_str(f, "[1, 2, 3]"), MAPQ_ETYPE);
    assert_string_equal(f->err, "expected dict[int], got list");
    set_type(f, "int?");
    assert_int_equal(convert_str(f, "[]"), MAPQ_ETYPE);
    assert_string_equal(f->err, "expected int?, got list");
}

static void
test_json_read_syntax_error_line_and_column(void **state)
{
    struct fx *f = *state;

    /* Element 150000 is on line 150002, at column 3. */
    int_list_text(f, 200000, 150000, "x");
    assert_int_equal(convert(f), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 150002, column 3: "
                                "invalid char in json text near 'x'");
    assert_int_equal(f->out.len, 0);
    /* A missing comma: where the next token starts. */
    int_list_text(f, 200000, 150000, "1 2");
    assert_int_equal(convert(f), MAPQ_EINVAL);
    assert_string_equal(f->err,
                        "invalid JSON at line 150002, column 5: after array "
                        "element, I expect ',' or ']' near '2'");
    /* Columns count characters, not bytes. */
    assert_int_equal(convert_str(f, "[\"\xc3\xa9\xf0\x9f\x98\x80\", ]"),
                     MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 8: unallowed "
                                "token at this point in JSON text near ']'");
    /* Malformed JSON is told before a type error found earlier. */
    set_type(f, "list[int]");
    assert_int_equal(convert_str(f, "[\"a\", 1"), MAPQ_EINVAL);
    assert_string_equal(f->err,
                        "invalid JSON at line 1, column 7: premature end of "
                        "input");
}

static void
test_json_read_duplicate_keys_rejected(void **state)
{
    struct fx *f = *state;

    /* In an element of a long list: the second key, with its position. */
    int_list_text(f, 200000, 150000, "{\"a\": 1,\n   \"b\": 2, \"a\": 3}");
    assert_int_equal(convert(f), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 150003, column 14: "
                                "duplicate object key near '\"a\"'");
    /* Nested, and the same key spelled with an escape. */
    assert_int_equal(convert_str(f, "{\"x\": {\"k\": 1, \"\\u006b\": 2}}"),
                     MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 23: "
                                "duplicate object key near '\"\\u006b\"'");
    /* The same key in two objects is no duplicate. */
    assert_int_equal(convert_str(f, "[{\"k\": 1}, {\"k\": 2}]"), MAPQ_OK);
}

static void
test_json_read_depth_limits(void **state)
{
    struct fx *f = *state;
    size_t i;

    /* An element of a streamed list is at depth 1: 31 more levels fit. */
    mapq_buf_appendstr(&f->text, "[0, ");
    for (i = 0; i < 31; i++)
        mapq_buf_appendstr(&f->text, "[");
    for (i = 0; i < 31; i++)
        mapq_buf_appendstr(&f->text, "]");
    mapq_buf_appendstr(&f->text, "]");
    assert_int_equal(convert(f), MAPQ_OK);
    mapq_buf_reset(&f->text);
    mapq_buf_appendstr(&f->text, "[0, {\"k\": ");
    for (i = 0; i < 31; i++)
        mapq_buf_appendstr(&f->text, "[");
    for (i = 0; i < 31; i++)
        mapq_buf_appendstr(&f->text, "]");
    mapq_buf_appendstr(&f->text, "}]");
    assert_int_equal(convert(f), MAPQ_EINVAL);
    assert_non_null(strstr(f->err, "[1][\"k\"][0][0]"));
    assert_non_null(
        strstr(f->err, "[0]: value nested more than 32 levels deep"));
    /* Past 2048 levels the text is refused as JSON, as jansson does. */
    mapq_buf_reset(&f->text);
    for (i = 0; i < 2049; i++)
        mapq_buf_appendstr(&f->text, "[");
    assert_int_equal(convert(f), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 2049: maximum "
                                "parsing depth reached near '['");
}

static void
test_json_read_base64_bytes_in_list(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;

    set_type(f, "list[bytes]");
    assert_int_equal(convert_str(f, "[\"\", \"YQ==\", \"AP8Q\"]"), MAPQ_OK);
    o = parsed(f);
    assert_int_equal(o->via.array.size, 3);
    assert_int_equal(o->via.array.ptr[0].type, MSGPACK_OBJECT_BIN);
    assert_int_equal(o->via.array.ptr[0].via.bin.size, 0);
    assert_int_equal(o->via.array.ptr[1].via.bin.size, 1);
    assert_memory_equal(o->via.array.ptr[1].via.bin.ptr, "a", 1);
    assert_int_equal(o->via.array.ptr[2].via.bin.size, 3);
    assert_memory_equal(o->via.array.ptr[2].via.bin.ptr, "\x00\xff\x10", 3);
    assert_int_equal(convert_str(f, "[\"YQ==\", \"YQ=\"]"), MAPQ_ETYPE);
    assert_string_equal(f->err, "[1]: expected bytes as base64, got a string "
                                "that is not valid base64");
}

static void
test_json_read_int_to_float_in_list(void **state)
{
    struct fx *f = *state;
    size_t i, n = 1000;

    set_type(f, "list[float]");
    mapq_buf_appendstr(&f->text, "[");
    msgpack_pack_array(&f->pk, n);
    for (i = 0; i < n; i++) {
        mapq_buf_printf(&f->text, "%s%d", i ? "," : "", (int)i - 500);
        msgpack_pack_double(&f->pk, (double)i - 500.0);
    }
    mapq_buf_appendstr(&f->text, "]");
    assert_int_equal(convert(f), MAPQ_OK);
    assert_same_bytes(f);
}

static void
test_json_read_nul_in_strings(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;

    set_type(f, "list[str]");
    assert_int_equal(convert_str(f, "[\"a\\u0000b\", \"\\u0000\"]"), MAPQ_OK);
    o = parsed(f);
    assert_int_equal(o->via.array.ptr[0].via.str.size, 3);
    assert_memory_equal(o->via.array.ptr[0].via.str.ptr, "a\0b", 3);
    assert_int_equal(o->via.array.ptr[1].via.str.size, 1);
    assert_int_equal(o->via.array.ptr[1].via.str.ptr[0], '\0');
    /* Not in a key. */
    assert_int_equal(convert_str(f, "[{\"a\\u0000\": 1}]"), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 11: NUL byte "
                                "in object key not supported near "
                                "'\"a\\u0000\"'");
}

static void
test_json_read_invalid_utf8_rejected(void **state)
{
    struct fx *f = *state;

    /* yajl alone lets an overlong '/' and an encoded surrogate through. */
    assert_int_equal(convert_str(f, "[\"ok\",\n \"\xc0\xaf\"]"), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 2, column 3: text is "
                                "not valid UTF-8: unable to decode byte 0xc0");
    assert_int_equal(convert_str(f, "\"a\xed\xa0\x80\""), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 3: text is "
                                "not valid UTF-8: unable to decode byte 0xed");
    assert_int_equal(convert_str(f, "[1, \xff]"), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 5: text is "
                                "not valid UTF-8: unable to decode byte 0xff");
    /* A JSON error before the bad byte is the one told. */
    assert_int_equal(convert_str(f, "[1 2, \"\xff\"]"), MAPQ_EINVAL);
    assert_non_null(strstr(f->err, "after array element"));
}

static void
test_json_read_surrogate_escapes(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;

    assert_int_equal(
        convert_str(f, "[\"\\ud83d\\ude00!\", \"\\uDBFF\\uDFFF\"]"), MAPQ_OK);
    o = parsed(f);
    assert_int_equal(o->via.array.ptr[0].via.str.size, 5);
    assert_memory_equal(o->via.array.ptr[0].via.str.ptr, "\xf0\x9f\x98\x80!",
                        5);
    assert_int_equal(o->via.array.ptr[1].via.str.size, 4);
    assert_memory_equal(o->via.array.ptr[1].via.str.ptr, "\xf4\x8f\xbf\xbf", 4);
    /* Half a pair is no character (yajl would make it "?"). */
    assert_int_equal(convert_str(f, "\"\\ud83dx\""), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 9: invalid "
                                "Unicode '\\uD83D' near '\"\\ud83dx\"'");
    assert_int_equal(convert_str(f, "[\"\\ude00\"]"), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 9: invalid "
                                "Unicode '\\uDE00' near '\"\\ude00\"'");
    assert_int_equal(convert_str(f, "{\"\\ud83d\\u0041\": 1}"), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 15: invalid "
                                "Unicode '\\uD83D\\u0041' near "
                                "'\"\\ud83d\\u0041\"'");
    /* An escaped backslash before "u" is no escape. */
    assert_int_equal(convert_str(f, "\"\\\\ud83d\""), MAPQ_OK);
    assert_int_equal(parsed(f)->via.str.size, 6);
}

static void
test_json_read_integer_overflow(void **state)
{
    struct fx *f = *state;

    assert_int_equal(convert_str(f, "[1, 9223372036854775807, "
                                    "-9223372036854775808]"),
                     MAPQ_OK);
    assert_int_equal(parsed(f)->via.array.ptr[2].via.i64, INT64_MIN);
    int_list_text(f, 10, 5, "9223372036854775808");
    assert_int_equal(convert(f), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 7, column 21: too big "
                                "integer near '9223372036854775808'");
    assert_int_equal(convert_str(f, "[-9223372036854775809]"), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 21: too big "
                                "negative integer near "
                                "'-9223372036854775809'");
    /* Past 20 characters the token is not quoted, as jansson does. */
    assert_int_equal(convert_str(f, "123456789012345678901"), MAPQ_EINVAL);
    assert_string_equal(f->err,
                        "invalid JSON at line 1, column 21: too big integer");
    assert_int_equal(convert_str(f, "[1e400]"), MAPQ_EINVAL);
    assert_string_equal(f->err, "invalid JSON at line 1, column 6: real "
                                "number overflow near '1e400'");
}

static void
test_json_read_trailing_garbage(void **state)
{
    struct fx *f = *state;

    assert_int_equal(convert_str(f, "[1, 2] x"), MAPQ_EINVAL);
    assert_string_equal(
        f->err,
        "invalid JSON at line 1, column 8: end of input expected near 'x'");
    assert_int_equal(convert_str(f, "{}\n\n ]"), MAPQ_EINVAL);
    assert_string_equal(
        f->err,
        "invalid JSON at line 3, column 2: end of input expected near ']'");
    /* A token cut short after the value (yajl alone accepts these). */
    assert_int_equal(convert_str(f, "true \"ab"), MAPQ_EINVAL);
    assert_string_equal(
        f->err,
        "invalid JSON at line 1, column 6: end of input expected near '\"'");
    assert_int_equal(convert_str(f, "[] 12"), MAPQ_EINVAL);
    assert_string_equal(
        f->err,
        "invalid JSON at line 1, column 4: end of input expected near '1'");
    assert_int_equal(convert_str(f, "[] \n"), MAPQ_OK);
}

static void
test_json_read_empty_input(void **state)
{
    struct fx *f = *state;

    assert_int_equal(mapq_buf_appendstr(&f->out, "keep"), MAPQ_OK);
    assert_int_equal(mapq_json_to_msgpack(NULL, 0, NULL, &f->out, f->err),
                     MAPQ_EINVAL);
    assert_string_equal(
        f->err, "invalid JSON at line 1, column 1: premature end of input");
    assert_string_equal(f->out.data, "keep");
    assert_int_equal(convert_str(f, ""), MAPQ_EINVAL);
    assert_string_equal(
        f->err, "invalid JSON at line 1, column 1: premature end of input");
    assert_int_equal(convert_str(f, " \n\t"), MAPQ_EINVAL);
    assert_string_equal(
        f->err, "invalid JSON at line 2, column 1: premature end of input");
}

static void
test_json_read_size_cap_in_list(void **state)
{
    struct fx *f = *state;
    size_t i;

    /* 100 ints of 5 bytes and a 3-byte header: 503 bytes. */
    mapq_buf_init(&f->out, 300);
    assert_int_equal(mapq_buf_appendstr(&f->out, "ab"), MAPQ_OK);
    mapq_buf_appendstr(&f->text, "[");
    for (i = 0; i < 100; i++)
        mapq_buf_printf(&f->text, "%s%d", i ? "," : "", 100000 + (int)i);
    mapq_buf_appendstr(&f->text, "]");
    assert_int_equal(
        mapq_json_to_msgpack(f->text.data, f->text.len, NULL, &f->out, f->err),
        MAPQ_ETOOBIG);
    /* The element where the cap was met. */
    assert_string_equal(f->err, "[59]: value over the size cap (300 bytes)");
    assert_string_equal(f->out.data, "ab");
    /* The cap is the final size's: 503 bytes fit in 505. */
    mapq_buf_release(&f->out);
    mapq_buf_init(&f->out, 505);
    assert_int_equal(mapq_buf_appendstr(&f->out, "ab"), MAPQ_OK);
    assert_int_equal(
        mapq_json_to_msgpack(f->text.data, f->text.len, NULL, &f->out, f->err),
        MAPQ_OK);
    assert_int_equal(f->out.len, 505);
    /* Malformed JSON after the cap was met is still told as such. */
    mapq_buf_release(&f->out);
    mapq_buf_init(&f->out, 300);
    f->text.data[f->text.len - 1] = ',';
    assert_int_equal(
        mapq_json_to_msgpack(f->text.data, f->text.len, NULL, &f->out, f->err),
        MAPQ_EINVAL);
    assert_int_equal(f->out.len, 0);
}

/* ---- mapq_json_read_members() ------------------------------------------- */

/* Members "a", "b" and "c" go to f->vals[0..2] toward f->types[]; others
 * are skipped. */
static struct mapq_buf *
member_cb(void *arg, const struct mapq_json_member *m,
          const struct mapq_type **type)
{
    struct fx *f = arg;
    size_t k;

    mapq_buf_printf(&f->log, "member %s %d:%d\n", m->name, m->pos.line,
                    m->pos.col);
    if (m->len != 1 || m->name[0] < 'a' || m->name[0] > 'c')
        return NULL;
    k = (size_t)(m->name[0] - 'a');
    *type = f->types[k];
    return &f->vals[k];
}

static void
done_cb(void *arg, const struct mapq_json_member *m, enum mapq_err rc,
        const char *err, const struct mapq_json_pos *where)
{
    struct fx *f = arg;

    mapq_buf_printf(&f->log, "done %s %d %d:%d %s\n", m->name, (int)rc,
                    where->line, where->col, err);
}

static const struct mapq_json_member_ops ops = {.member = member_cb,
                                                .done = done_cb};

static enum mapq_err
read_members(struct fx *f, const char *text)
{
    size_t i;

    mapq_buf_reset(&f->log);
    for (i = 0; i < NMEMBER; i++)
        mapq_buf_reset(&f->vals[i]);
    f->pos.line = f->pos.col = 0;
    return mapq_json_read_members(text, strlen(text), &ops, f, &f->pos, f->err);
}

static void
test_json_read_members_in_order(void **state)
{
    struct fx *f = *state;

    f->types[0] = mapq_type_parse("list[float]", f->err);
    f->types[1] = mapq_type_parse("str", f->err);
    assert_int_equal(read_members(f, "{\"a\": [1, 2.5],\n"
                                     " \"zz\": {\"deep\": [1, {}]},\n"
                                     " \"b\": \"\\ud83d\\ude00\"}"),
                     MAPQ_OK);
    assert_string_equal(f->log.data, "member a 1:2\n"
                                     "done a 0 1:7 \n"
                                     "member zz 2:2\n"
                                     "member b 3:2\n"
                                     "done b 0 3:7 \n");
    mapq_buf_reset(&f->mp);
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_double(&f->pk, 1.0);
    msgpack_pack_double(&f->pk, 2.5);
    assert_int_equal(f->vals[0].len, f->mp.len);
    assert_memory_equal(f->vals[0].data, f->mp.data, f->mp.len);
    assert_int_equal(f->vals[1].len, 5);
    assert_memory_equal(f->vals[1].data, "\xa4\xf0\x9f\x98\x80", 5);
    /* An empty object: no callback. */
    assert_int_equal(read_members(f, " {} "), MAPQ_OK);
    assert_int_equal(f->log.len, 0);
}

static void
test_json_read_members_value_errors(void **state)
{
    struct fx *f = *state;
    size_t i;

    /* The failing element of a long list, then the next member. */
    f->types[0] = mapq_type_parse("list[int]", f->err);
    f->types[1] = mapq_type_parse("int", f->err);
    mapq_buf_appendstr(&f->text, "{\"a\": [\n");
    for (i = 0; i < 200000; i++)
        mapq_buf_printf(&f->text, "  %s,\n", i == 150000 ? "\"s\"" : "1");
    mapq_buf_appendstr(&f->text, "  1],\n \"b\": 2.5, \"c\": 7}");
    assert_int_equal(read_members(f, f->text.data), MAPQ_OK);
    assert_string_equal(f->log.data,
                        "member a 1:2\n"
                        "done a 8 150002:3 [150000]: expected int, got str\n"
                        "member b 200003:2\n"
                        "done b 8 200003:7 expected int, got float\n"
                        "member c 200003:12\n"
                        "done c 0 200003:17 \n");
    assert_int_equal(f->vals[0].len, 0);
    assert_int_equal(f->vals[1].len, 0);
    assert_int_equal(f->vals[2].len, 1);
    assert_int_equal((unsigned char)f->vals[2].data[0], 7);
}

static void
test_json_read_members_duplicate_key(void **state)
{
    struct fx *f = *state;

    assert_int_equal(read_members(f, "{\"a\": 1, \"x\": 2,\n \"a\": 3}"),
                     MAPQ_EINVAL);
    assert_string_equal(f->err, "duplicate object key near '\"a\"'");
    assert_int_equal(f->pos.line, 2);
    assert_int_equal(f->pos.col, 4);
    /* The first one was read, the second never reported. */
    assert_string_equal(f->log.data, "member a 1:2\n"
                                     "done a 0 1:7 \n"
                                     "member x 1:10\n");
    assert_int_equal(f->vals[0].len, 1);
}

static void
test_json_read_members_not_an_object(void **state)
{
    struct fx *f = *state;

    assert_int_equal(read_members(f, "\n  [1, {\"a\": 2}]"), MAPQ_ETYPE);
    assert_int_equal(f->pos.line, 2);
    assert_int_equal(f->pos.col, 3);
    assert_int_equal(f->log.len, 0);
    assert_int_equal(read_members(f, "7"), MAPQ_ETYPE);
    /* Not JSON comes first, and is told with its place. */
    assert_int_equal(read_members(f, "[1, {\"a\": 2, \"a\": 3}]"), MAPQ_EINVAL);
    assert_string_equal(f->err, "duplicate object key near '\"a\"'");
    assert_int_equal(f->pos.col, 16);
}

static void
test_json_read_members_cut_short(void **state)
{
    struct fx *f = *state;

    /* The member being read when the text breaks gets no done call, and
     * its buffer is as it was. */
    assert_int_equal(read_members(f, "{\"b\": [1], \"a\": [1, 2, 3"),
                     MAPQ_EINVAL);
    assert_string_equal(f->err, "premature end of input");
    assert_int_equal(f->pos.line, 1);
    assert_int_equal(f->pos.col, 24);
    assert_string_equal(f->log.data, "member b 1:2\n"
                                     "done b 0 1:7 \n"
                                     "member a 1:12\n");
    assert_int_equal(f->vals[0].len, 0);
    assert_int_equal(f->vals[1].len, 2);
}

/* ---- pages ------------------------------------------------------------ */

/* Each page of a member's list: logged, its bytes kept in f->mp, the
 * member's buffer checked to hold no more than it; page fail_at (when not
 * 0) is refused. */
static int page_fail_at;
static size_t pages_seen;

static enum mapq_err
page_cb(void *arg, const struct mapq_json_member *m, const char *elems,
        size_t len, uint32_t count, char *err)
{
    struct fx *f = arg;

    assert_true(f->vals[m->name[0] - 'a'].len <= len);
    mapq_buf_printf(&f->log, "page %s %u\n", m->name, count);
    if (page_fail_at > 0 && (int)++pages_seen == page_fail_at)
        return mapq_err_set(err, MAPQ_EIO, "cannot keep page %d", page_fail_at);
    mapq_buf_append(&f->mp, elems, len);
    return MAPQ_OK;
}

static void
done_paged_cb(void *arg, const struct mapq_json_member *m, enum mapq_err rc,
              const char *err, const struct mapq_json_pos *where)
{
    struct fx *f = arg;

    mapq_buf_printf(&f->log, "done %s %d paged %d %llu %d:%d %s\n", m->name,
                    (int)rc, m->paged, (unsigned long long)m->count,
                    where->line, where->col, err);
}

static size_t consumed_last, consumed_calls;

static void
consumed_cb(void *arg, size_t off)
{
    (void)arg;
    assert_true(off > consumed_last || consumed_calls == 0 || off > 0);
    consumed_last = off;
    consumed_calls++;
}

static const struct mapq_json_member_ops paged_ops = {.member = member_cb,
                                                      .done = done_paged_cb,
                                                      .page = page_cb,
                                                      .page_len = 1000,
                                                      .consumed = consumed_cb};

/* {"a": [0, ..., n-1], "b": 5} with element bad (if < n) a string. */
static void
paged_text(struct fx *f, size_t n, size_t bad)
{
    size_t i;

    mapq_buf_reset(&f->text);
    mapq_buf_appendstr(&f->text, "{\"a\": [");
    for (i = 0; i < n; i++)
        if (i == bad)
            mapq_buf_printf(&f->text, "%s\"x\"", i ? "," : "");
        else
            mapq_buf_printf(&f->text, "%s%zu", i ? "," : "", i);
    mapq_buf_appendstr(&f->text, "], \"b\": 5}");
}

static enum mapq_err
read_paged(struct fx *f)
{
    size_t i;

    mapq_buf_reset(&f->log);
    mapq_buf_reset(&f->mp);
    for (i = 0; i < NMEMBER; i++)
        mapq_buf_reset(&f->vals[i]);
    pages_seen = 0;
    return mapq_json_read_members(f->text.data, f->text.len, &paged_ops, f,
                                  &f->pos, f->err);
}

static void
test_json_read_members_in_pages(void **state)
{
    struct fx *f = *state;
    struct mapq_buf want = MAPQ_BUF_INIT;
    msgpack_packer pk;
    size_t i;

    f->types[0] = mapq_type_parse("list[int]", f->err);
    f->types[1] = mapq_type_parse("int", f->err);
    page_fail_at = 0;
    paged_text(f, 2500, SIZE_MAX);
    assert_int_equal(read_paged(f), MAPQ_OK);
    /* Three pages, the last short; the list is not in the buffer; a
     * member that is no list is appended as always. */
    assert_string_equal(f->log.data, "member a 1:2\n"
                                     "page a 1000\n"
                                     "page a 1000\n"
                                     "page a 500\n"
                                     "done a 0 paged 1 2500 1:7 \n"
                                     "member b 1:11400\n"
                                     "done b 0 paged 0 0 1:11405 \n");
    mapq_value_packer_init(&pk, &want);
    for (i = 0; i < 2500; i++)
        msgpack_pack_int64(&pk, (int64_t)i);
    assert_int_equal(f->mp.len, want.len);
    assert_memory_equal(f->mp.data, want.data, want.len);
    assert_int_equal(f->vals[0].len, 0);
    assert_int_equal(f->vals[1].len, 1);
    /* A list whose type is no list type is not paged. */
    mapq_type_free(f->types[0]);
    f->types[0] = mapq_type_parse("any", f->err);
    assert_int_equal(read_paged(f), MAPQ_OK);
    assert_null(strstr(f->log.data, "page a"));
    assert_true(f->vals[0].len > 2500);
    mapq_buf_release(&want);
}

static void
test_json_read_pages_stop_at_a_misfit(void **state)
{
    struct fx *f = *state;

    f->types[0] = mapq_type_parse("list[int]", f->err);
    f->types[1] = mapq_type_parse("int", f->err);
    page_fail_at = 0;
    paged_text(f, 2500, 1500);
    assert_int_equal(read_paged(f), MAPQ_OK);
    /* Page 0 went out before the bad element; none after it. */
    assert_non_null(strstr(f->log.data, "member a 1:2\n"
                                        "page a 1000\n"
                                        "done a 8 paged 1 2500 "));
    assert_non_null(strstr(f->log.data, " [1500]: expected int, got str\n"));
    assert_int_equal(f->vals[0].len, 0);
}

static void
test_json_read_page_refused_ends_the_value(void **state)
{
    struct fx *f = *state;

    f->types[0] = mapq_type_parse("list[int]", f->err);
    f->types[1] = mapq_type_parse("int", f->err);
    page_fail_at = 2;
    paged_text(f, 2500, SIZE_MAX);
    assert_int_equal(read_paged(f), MAPQ_OK);
    assert_non_null(strstr(f->log.data, "page a 1000\n"
                                        "page a 1000\n"
                                        "done a 4 paged 1 "));
    assert_non_null(strstr(f->log.data, "cannot keep page 2\n"));
    /* The next member is read all the same. */
    assert_non_null(strstr(f->log.data, "done b 0 "));
    page_fail_at = 0;
}

static void
test_json_read_consumed_every_few_mib(void **state)
{
    struct fx *f = *state;

    f->types[0] = mapq_type_parse("list[int]", f->err);
    f->types[1] = mapq_type_parse("int", f->err);
    page_fail_at = 0;
    paged_text(f, 1300000, SIZE_MAX); /* about 9 MB */
    consumed_last = consumed_calls = 0;
    assert_int_equal(read_paged(f), MAPQ_OK);
    /* Told during the UTF-8 check and again during the parse, a few
     * MiB apart, never past the text. */
    assert_true(consumed_calls >= 4);
    assert_true(consumed_last <= f->text.len);
    assert_true(consumed_last > f->text.len / 2);
    assert_non_null(strstr(f->log.data, "done a 0 paged 1 1300000 "));
}

/* ---- mapq_json_read_value() -------------------------------------------- */

static enum mapq_err
read_value(struct fx *f, const char *name, const char *text, size_t len)
{
    size_t i;

    mapq_buf_reset(&f->log);
    mapq_buf_reset(&f->mp);
    for (i = 0; i < NMEMBER; i++)
        mapq_buf_reset(&f->vals[i]);
    pages_seen = 0;
    f->pos.line = f->pos.col = 0;
    return mapq_json_read_value(text, len, name, &paged_ops, f, &f->pos,
                                f->err);
}

static void
test_json_read_value_as_one_member(void **state)
{
    struct fx *f = *state;
    struct mapq_buf want = MAPQ_BUF_INIT;
    msgpack_packer pk;
    size_t i;

    f->types[0] = mapq_type_parse("list[int]", f->err);
    f->types[1] = mapq_type_parse("int", f->err);
    page_fail_at = 0;
    /* A bare list, in pages, as member a's value would be. */
    mapq_buf_reset(&f->text);
    mapq_buf_appendstr(&f->text, " [");
    for (i = 0; i < 2500; i++)
        mapq_buf_printf(&f->text, "%s%zu", i ? "," : "", i);
    mapq_buf_appendstr(&f->text, "]\n");
    assert_int_equal(read_value(f, "a", f->text.data, f->text.len), MAPQ_OK);
    assert_string_equal(f->log.data, "member a 1:1\n"
                                     "page a 1000\n"
                                     "page a 1000\n"
                                     "page a 500\n"
                                     "done a 0 paged 1 2500 1:2 \n");
    mapq_value_packer_init(&pk, &want);
    for (i = 0; i < 2500; i++)
        msgpack_pack_int64(&pk, (int64_t)i);
    assert_int_equal(f->mp.len, want.len);
    assert_memory_equal(f->mp.data, want.data, want.len);
    assert_int_equal(f->vals[0].len, 0);
    /* A scalar goes to the buffer; a misfit is the done call's. */
    assert_int_equal(read_value(f, "b", "7", 1), MAPQ_OK);
    assert_string_equal(f->log.data, "member b 1:1\n"
                                     "done b 0 paged 0 0 1:1 \n");
    assert_int_equal(f->vals[1].len, 1);
    assert_int_equal(read_value(f, "b", "\"x\"", 3), MAPQ_OK);
    assert_non_null(strstr(f->log.data, "done b 8 paged 0 0 1:1 "));
    assert_int_equal(f->vals[1].len, 0);
    /* A name the caller skips: read, no done call. */
    assert_int_equal(read_value(f, "zz", "[1, {}]", 7), MAPQ_OK);
    assert_string_equal(f->log.data, "member zz 1:1\n");
    mapq_buf_release(&want);
}

static void
test_json_read_value_not_json(void **state)
{
    struct fx *f = *state;

    f->types[0] = mapq_type_parse("list[int]", f->err);
    page_fail_at = 0;
    /* Two values: the first was read whole (and told), then the error
     * with its place. */
    assert_int_equal(read_value(f, "a", "[1] [2]", 7), MAPQ_EINVAL);
    assert_string_equal(f->err, "end of input expected near '['");
    assert_int_equal(f->pos.line, 1);
    assert_int_equal(f->pos.col, 5);
    assert_non_null(strstr(f->log.data, "done a 0 "));
    /* A value cut short, nothing at all: no done call. */
    assert_int_equal(read_value(f, "a", "[1,\n 2", 6), MAPQ_EINVAL);
    assert_string_equal(f->err, "premature end of input");
    assert_int_equal(f->pos.line, 2);
    assert_null(strstr(f->log.data, "done"));
    assert_int_equal(f->vals[0].len, 0);
    assert_int_equal(read_value(f, "a", NULL, 0), MAPQ_EINVAL);
    assert_null(strstr(f->log.data, "done"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_json_read_long_int_list_same_bytes),
        T(test_json_read_list_of_records_same_bytes),
        T(test_json_read_list_header_widths),
        T(test_json_read_type_error_names_element),
        T(test_json_read_syntax_error_line_and_column),
        T(test_json_read_duplicate_keys_rejected),
        T(test_json_read_depth_limits),
        T(test_json_read_base64_bytes_in_list),
        T(test_json_read_int_to_float_in_list),
        T(test_json_read_nul_in_strings),
        T(test_json_read_invalid_utf8_rejected),
        T(test_json_read_surrogate_escapes),
        T(test_json_read_integer_overflow),
        T(test_json_read_trailing_garbage),
        T(test_json_read_empty_input),
        T(test_json_read_size_cap_in_list),
        T(test_json_read_members_in_order),
        T(test_json_read_members_value_errors),
        T(test_json_read_members_duplicate_key),
        T(test_json_read_members_not_an_object),
        T(test_json_read_members_cut_short),
        T(test_json_read_members_in_pages),
        T(test_json_read_pages_stop_at_a_misfit),
        T(test_json_read_page_refused_ends_the_value),
        T(test_json_read_consumed_every_few_mib),
        T(test_json_read_value_as_one_member),
        T(test_json_read_value_not_json),
#undef T
    };

    return cmocka_run_group_tests_name("json_read", tests, NULL, NULL);
}
