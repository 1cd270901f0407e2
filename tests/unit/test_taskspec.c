/*
 * test_taskspec.c - encoding and decoding the task spec message.
 */
#include "mapq_test.h"

#include <msgpack.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_buf.h"
#include "mapq_taskspec.h"
#include "mapq_type.h"
#include "mapq_value.h"

/* Under ASan, any single allocation over 1 GiB aborts the test. */
const char *__asan_default_options(void);

const char *
__asan_default_options(void)
{
    return "max_allocation_size_mb=1024:allocator_may_return_null=0";
}

struct fx {
    struct mapq_buf mp;         /* msgpack built by the test or encoded */
    msgpack_packer pk;          /* appends to mp */
    msgpack_unpacked u;         /* the encoded spec, unpacked */
    struct mapq_type *type;     /* output type of the spec under test */
    struct mapq_taskspec *spec; /* decoded */
    char err[MAPQ_ERR_LEN];
};

static int
setup(void **state)
{
    struct fx *f = mapq_xcalloc(1, sizeof(*f));

    mapq_buf_init(&f->mp, 0);
    mapq_value_packer_init(&f->pk, &f->mp);
    msgpack_unpacked_init(&f->u);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    mapq_taskspec_free(f->spec);
    mapq_type_free(f->type);
    msgpack_unpacked_destroy(&f->u);
    mapq_buf_release(&f->mp);
    free(f);
    return 0;
}

/* Decodes f->mp into f->spec, asserting success. */
static const struct mapq_taskspec *
decode(struct fx *f)
{
    mapq_taskspec_free(f->spec);
    f->spec = mapq_taskspec_decode(f->mp.data, f->mp.len, f->err);
    if (f->spec == NULL)
        fail_msg("decode failed: %s", f->err);
    return f->spec;
}

/* Asserts that the len bytes at data are refused with message msg. */
static void
decode_fails_with(struct fx *f, const char *data, size_t len, const char *msg)
{
    mapq_taskspec_free(f->spec);
    f->err[0] = '\0';
    f->spec = mapq_taskspec_decode(data, len, f->err);
    assert_null(f->spec);
    assert_string_equal(f->err, msg);
}

/* Asserts that f->mp is refused with message msg, then empties it. */
static void
decode_fails(struct fx *f, const char *msg)
{
    decode_fails_with(f, f->mp.data, f->mp.len, msg);
    mapq_buf_reset(&f->mp);
}

/*
 * Starts a map holding a minimal valid command spec (task, node, kind,
 * argv, queue) without the key omit (may be NULL) and room for extra more
 * pairs, which the caller packs next.
 */
static void
begin_spec(struct fx *f, const char *omit, uint32_t extra)
{
    static const char *const keys[] = {"task", "node", "kind", "argv", "queue"};
    static const char *const vals[] = {"t", "n", "command", NULL, "default"};
    size_t i;

    msgpack_pack_map(&f->pk, (omit ? 4 : 5) + extra);
    for (i = 0; i < 5; i++) {
        if (omit != NULL && strcmp(keys[i], omit) == 0)
            continue;
        mapq_value_pack_str(&f->pk, keys[i]);
        if (vals[i] != NULL) {
            mapq_value_pack_str(&f->pk, vals[i]);
        } else {
            msgpack_pack_array(&f->pk, 1);
            mapq_value_pack_str(&f->pk, "echo");
        }
    }
}

/* Packs one str key with an int value. */
static void
pack_int(struct fx *f, const char *k, int64_t v)
{
    mapq_value_pack_str(&f->pk, k);
    msgpack_pack_int64(&f->pk, v);
}

/* Packs one str key with a str value. */
static void
pack_str(struct fx *f, const char *k, const char *v)
{
    mapq_value_pack_str(&f->pk, k);
    mapq_value_pack_str(&f->pk, v);
}

static void
test_taskspec_round_trip_command(void **state)
{
    static char task[] = "resize", node[] = "thumbs", queue[] = "gpu";
    static char a0[] = "convert", a1[] = "{src}", a2[] = "",
                a3[] = "--label=h\xc3\xa9";
    char *argv[] = {a0, a1, a2, a3};
    struct fx *f = *state;
    struct mapq_taskspec in = {0};
    const struct mapq_taskspec *s;

    f->type = mapq_type_parse("dict[list[int?]]?", f->err);
    assert_non_null(f->type);
    in.task = task;
    in.node = node;
    in.plugin = false;
    in.argv = argv;
    in.argc = 4;
    in.output = f->type;
    in.output_text = true;
    in.retries = 5;
    in.timeout_ms = INT64_C(123456789012);
    in.system_retries = 7;
    in.interruptible_failures = 2;
    in.interruptible = true;
    in.queue = queue;
    in.mem_bytes = INT64_C(2) << 30;
    in.backoff_initial_ms = 500;
    in.backoff_max_ms = 60000;
    in.backoff_factor_milli = 1500;
    in.cache = true;
    in.cache_ttl_ms = 3600000;
    in.cache_serialize = true;
    in.overwrite = true;
    mapq_taskspec_encode(&in, &f->mp);
    s = decode(f);
    assert_true(s->cache);
    assert_int_equal(s->cache_ttl_ms, 3600000);
    assert_true(s->cache_serialize);
    assert_true(s->overwrite);
    assert_int_equal(s->backoff_initial_ms, 500);
    assert_int_equal(s->backoff_max_ms, 60000);
    assert_int_equal(s->backoff_factor_milli, 1500);
    assert_string_equal(s->task, "resize");
    assert_string_equal(s->node, "thumbs");
    assert_false(s->plugin);
    assert_int_equal(s->argc, 4);
    assert_string_equal(s->argv[0], "convert");
    assert_string_equal(s->argv[1], "{src}");
    assert_string_equal(s->argv[2], "");
    assert_string_equal(s->argv[3], "--label=h\xc3\xa9");
    assert_null(s->library);
    assert_null(s->symbol);
    assert_non_null(s->output);
    assert_true(mapq_type_equal(s->output, f->type));
    assert_true(s->output_text);
    assert_int_equal(s->retries, 5);
    assert_int_equal(s->timeout_ms, INT64_C(123456789012));
    assert_int_equal(s->system_retries, 7);
    assert_int_equal(s->interruptible_failures, 2);
    assert_true(s->interruptible);
    assert_string_equal(s->queue, "gpu");
    assert_int_equal(s->mem_bytes, INT64_C(2) << 30);
}

static void
test_taskspec_round_trip_plugin(void **state)
{
    static char task[] = "square", node[] = "sq", queue[] = "default",
                lib[] = "mapq_example_plugin.so", sym[] = "square";
    struct fx *f = *state;
    struct mapq_taskspec in = {0};
    const struct mapq_taskspec *s;

    in.task = task;
    in.node = node;
    in.plugin = true;
    in.library = lib;
    in.symbol = sym;
    in.queue = queue;
    /* Zeros must survive, not turn into the decoder's defaults. */
    in.system_retries = 0;
    in.interruptible_failures = 0;
    mapq_taskspec_encode(&in, &f->mp);
    s = decode(f);
    assert_string_equal(s->task, "square");
    assert_string_equal(s->node, "sq");
    assert_true(s->plugin);
    assert_int_equal(s->argc, 0);
    assert_string_equal(s->library, "mapq_example_plugin.so");
    assert_string_equal(s->symbol, "square");
    assert_null(s->output);
    assert_false(s->output_text);
    assert_int_equal(s->retries, 0);
    assert_int_equal(s->timeout_ms, 0);
    assert_int_equal(s->system_retries, 0);
    assert_int_equal(s->interruptible_failures, 0);
    assert_false(s->interruptible);
    assert_string_equal(s->queue, "default");
    assert_int_equal(s->mem_bytes, 0);
}

static void
test_taskspec_encoding_matches_protocol(void **state)
{
    static const char *const keys[] = {
        "task", "node",    "kind",    "argv", "lib",   "sym",  "out",
        "text", "retries", "timeout", "sysr", "intrf", "intr", "queue",
        "mem",  "bo_i",    "bo_m",    "bo_f", "c",     "cttl", "cser",
        "ow",   "wk",      "batch",   "cpu",  "fin"};
    static char task[] = "t", node[] = "n", queue[] = "q", a0[] = "true";
    char *argv[] = {a0};
    struct fx *f = *state;
    struct mapq_taskspec in = {0};
    const msgpack_object *m, *v;
    size_t i;

    f->type = mapq_type_parse("list[int]", f->err);
    assert_non_null(f->type);
    in.task = task;
    in.node = node;
    in.argv = argv;
    in.argc = 1;
    in.output = f->type;
    in.queue = queue;
    in.timeout_ms = 1500;
    mapq_taskspec_encode(&in, &f->mp);
    assert_int_equal(mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err),
                     MAPQ_OK);
    m = &f->u.data;
    assert_int_equal(m->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(m->via.map.size, 26);
    for (i = 0; i < 26; i++)
        if (mapq_value_map_get(m, keys[i]) == NULL)
            fail_msg("encoded spec has no key '%s'", keys[i]);
    assert_true(mapq_value_str_eq(mapq_value_map_get(m, "kind"), "command"));
    assert_int_equal(mapq_value_map_get(m, "lib")->type, MSGPACK_OBJECT_NIL);
    assert_int_equal(mapq_value_map_get(m, "sym")->type, MSGPACK_OBJECT_NIL);
    assert_true(mapq_value_str_eq(mapq_value_map_get(m, "out"), "list[int]"));
    v = mapq_value_map_get(m, "argv");
    assert_int_equal(v->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(v->via.array.size, 1);
    assert_true(mapq_value_str_eq(&v->via.array.ptr[0], "true"));
    v = mapq_value_map_get(m, "text");
    assert_int_equal(v->type, MSGPACK_OBJECT_BOOLEAN);
    assert_false(v->via.boolean);
    v = mapq_value_map_get(m, "timeout");
    assert_int_equal(v->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(v->via.u64, 1500);
    /* No output type is nil, not "none". */
    mapq_buf_reset(&f->mp);
    in.output = NULL;
    mapq_taskspec_encode(&in, &f->mp);
    assert_int_equal(mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err),
                     MAPQ_OK);
    assert_int_equal(mapq_value_map_get(&f->u.data, "out")->type,
                     MSGPACK_OBJECT_NIL);
    assert_int_equal(mapq_value_map_get(&f->u.data, "fin")->type,
                     MSGPACK_OBJECT_NIL);
}

/* The inputs that hold files travel as a record of their types. */
static void
test_taskspec_file_inputs_round_trip(void **state)
{
    static char task[] = "t", node[] = "n", queue[] = "q", a0[] = "cat";
    char *argv[] = {a0};
    struct fx *f = *state;
    struct mapq_taskspec in = {0}, *out;
    char buf[128];

    f->type = mapq_type_parse("{doc: file, pages: list[file?]}", f->err);
    assert_non_null(f->type);
    in.task = task;
    in.node = node;
    in.argv = argv;
    in.argc = 1;
    in.files = f->type;
    in.queue = queue;
    mapq_taskspec_encode(&in, &f->mp);
    out = mapq_taskspec_decode(f->mp.data, f->mp.len, f->err);
    assert_non_null(out);
    assert_non_null(out->files);
    assert_string_equal(mapq_type_format(out->files, buf, sizeof(buf)),
                        "{doc: file, pages: list[file?]}");
    mapq_taskspec_free(out);
}

/* The run's store travels as its URI, absent for the embedded one; a
 * store the agent cannot read is a malformed spec. */
static void
test_taskspec_store_round_trip(void **state)
{
    static char task[] = "t", node[] = "n", queue[] = "q", a0[] = "cat";
    char *argv[] = {a0};
    struct fx *f = *state;
    struct mapq_taskspec in = {0}, *out;

    in.task = task;
    in.node = node;
    in.argv = argv;
    in.argc = 1;
    in.queue = queue;
    mapq_taskspec_encode(&in, &f->mp);
    assert_int_equal(mapq_value_unpack(f->mp.data, f->mp.len, &f->u, f->err),
                     MAPQ_OK);
    assert_null(mapq_value_map_get(&f->u.data, "st"));
    out = mapq_taskspec_decode(f->mp.data, f->mp.len, f->err);
    assert_non_null(out);
    assert_int_equal(out->store.kind, MAPQ_STORE_REDIS);
    mapq_taskspec_free(out);

    assert_int_equal(mapq_store_parse("file:///mnt/shared/", &in.store, f->err),
                     MAPQ_OK);
    mapq_buf_reset(&f->mp);
    mapq_taskspec_encode(&in, &f->mp);
    out = mapq_taskspec_decode(f->mp.data, f->mp.len, f->err);
    assert_non_null(out);
    assert_int_equal(out->store.kind, MAPQ_STORE_DIR);
    assert_string_equal(out->store.dir, "/mnt/shared");
    mapq_taskspec_free(out);
    mapq_buf_reset(&f->mp);

    begin_spec(f, NULL, 1);
    pack_str(f, "st", "ftp://bucket");
    decode_fails(f, "task spec: store 'ftp://bucket': not 'redis', "
                    "file:///DIR or s3://BUCKET[/PREFIX]");
    begin_spec(f, NULL, 1);
    pack_int(f, "st", 1);
    decode_fails(f, "task spec: 'st' is not a string or nil");
}

static void
test_taskspec_decode_defaults(void **state)
{
    struct fx *f = *state;
    const struct mapq_taskspec *s;

    begin_spec(f, NULL, 0);
    s = decode(f);
    assert_string_equal(s->task, "t");
    assert_string_equal(s->node, "n");
    assert_string_equal(s->queue, "default");
    assert_false(s->plugin);
    assert_int_equal(s->argc, 1);
    assert_string_equal(s->argv[0], "echo");
    assert_null(s->library);
    assert_null(s->symbol);
    assert_null(s->output);
    assert_false(s->output_text);
    assert_false(s->interruptible);
    assert_int_equal(s->retries, 0);
    assert_int_equal(s->timeout_ms, 0);
    assert_int_equal(s->system_retries, 3);
    assert_int_equal(s->interruptible_failures, 2);
    assert_int_equal(s->mem_bytes, 0);
    /* intrf defaults to one less than sysr, and never below 0. */
    mapq_buf_reset(&f->mp);
    begin_spec(f, NULL, 1);
    pack_int(f, "sysr", 0);
    assert_int_equal(decode(f)->interruptible_failures, 0);
    mapq_buf_reset(&f->mp);
    begin_spec(f, NULL, 1);
    pack_int(f, "sysr", 10);
    assert_int_equal(decode(f)->interruptible_failures, 9);
    /* nil is the same as absent. */
    mapq_buf_reset(&f->mp);
    begin_spec(f, NULL, 2);
    mapq_value_pack_str(&f->pk, "sysr");
    msgpack_pack_nil(&f->pk);
    mapq_value_pack_str(&f->pk, "out");
    msgpack_pack_nil(&f->pk);
    s = decode(f);
    assert_int_equal(s->system_retries, 3);
    assert_null(s->output);
}

static void
test_taskspec_unknown_keys_ignored(void **state)
{
    struct fx *f = *state;
    const struct mapq_taskspec *s;

    begin_spec(f, NULL, 3);
    pack_str(f, "future", "x");
    mapq_value_pack_str(&f->pk, "nested");
    msgpack_pack_map(&f->pk, 1);
    msgpack_pack_int(&f->pk, 1);
    msgpack_pack_array(&f->pk, 0);
    pack_int(f, "retries", 4);
    s = decode(f);
    assert_int_equal(s->retries, 4);
    assert_string_equal(s->task, "t");
}

static void
test_taskspec_not_msgpack_rejected(void **state)
{
    static const char json[] = "{\"task\":\"t\"}";
    struct fx *f = *state;
    size_t n;

    decode_fails_with(f, "\xc1", 1, "malformed msgpack value");
    decode_fails_with(f, json, sizeof(json) - 1,
                      "11 trailing bytes after msgpack value");
    decode_fails_with(f, "", 0, "truncated msgpack value");
    /* Every proper prefix of a good spec is refused. */
    begin_spec(f, NULL, 1);
    pack_int(f, "mem", 1 << 20);
    for (n = 0; n < f->mp.len; n++)
        decode_fails_with(f, f->mp.data, n, "truncated msgpack value");
    /* So are trailing bytes after it. */
    msgpack_pack_nil(&f->pk);
    decode_fails(f, "1 trailing bytes after msgpack value");
}

/*
 * A spec read from Redis whose headers declare more than its bytes hold:
 * the 5-byte map32 of 4G entries, and an argv array32 of 4G strings after
 * good keys, are refused as truncated before msgpack-c allocates for them
 * (under ASan an allocation of gigabytes would abort).
 */
static void
test_taskspec_impossible_lengths_rejected(void **state)
{
    struct fx *f = *state;

    decode_fails_with(f, "\xdf\xff\xff\xff\xff", 5, "truncated msgpack value");
    decode_fails_with(f, "\xdd\xff\xff\xff\xff", 5, "truncated msgpack value");
    msgpack_pack_map(&f->pk, 2);
    pack_str(f, "task", "t");
    mapq_value_pack_str(&f->pk, "argv");
    mapq_buf_append(&f->mp,
                    "\xdd\xff\xff\xff\xff\xa4"
                    "echo",
                    10);
    decode_fails(f, "truncated msgpack value");
    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "task");
    mapq_buf_append(&f->mp, "\xdb\x7f\xff\xff\xfft", 6);
    decode_fails(f, "truncated msgpack value");
}

static void
test_taskspec_not_a_map_rejected(void **state)
{
    struct fx *f = *state;

    msgpack_pack_array(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "task");
    mapq_value_pack_str(&f->pk, "t");
    decode_fails(f, "task spec is not a map");
    mapq_value_pack_str(&f->pk, "t:0");
    decode_fails(f, "task spec is not a map");
    msgpack_pack_nil(&f->pk);
    decode_fails(f, "task spec is not a map");
}

static void
test_taskspec_missing_required_rejected(void **state)
{
    static const char *const keys[] = {"task", "node", "kind", "queue"};
    static const char msg[] = "task spec: missing task, node, queue or kind";
    struct fx *f = *state;
    size_t i;

    for (i = 0; i < 4; i++) {
        begin_spec(f, keys[i], 0);
        decode_fails(f, msg);
        /* Present but not a string counts as missing. */
        begin_spec(f, keys[i], 1);
        pack_int(f, keys[i], 1);
        decode_fails(f, msg);
    }
    begin_spec(f, "kind", 1);
    pack_str(f, "kind", "shell");
    decode_fails(f, msg);
    begin_spec(f, "kind", 1);
    pack_str(f, "kind", "");
    decode_fails(f, msg);
}

static void
test_taskspec_plugin_without_lib_or_sym_rejected(void **state)
{
    static const char msg[] = "task spec: plugin without lib or sym";
    struct fx *f = *state;

    begin_spec(f, "kind", 2);
    pack_str(f, "kind", "plugin");
    pack_str(f, "lib", "x.so");
    decode_fails(f, msg);
    begin_spec(f, "kind", 2);
    pack_str(f, "kind", "plugin");
    pack_str(f, "sym", "square");
    decode_fails(f, msg);
    /* nil is the same as absent. */
    begin_spec(f, "kind", 3);
    pack_str(f, "kind", "plugin");
    pack_str(f, "sym", "square");
    mapq_value_pack_str(&f->pk, "lib");
    msgpack_pack_nil(&f->pk);
    decode_fails(f, msg);
    /* With both it decodes, argv and all. */
    begin_spec(f, "kind", 3);
    pack_str(f, "kind", "plugin");
    pack_str(f, "lib", "x.so");
    pack_str(f, "sym", "square");
    assert_true(decode(f)->plugin);
}

static void
test_taskspec_bad_argv_rejected(void **state)
{
    struct fx *f = *state;

    begin_spec(f, "argv", 0);
    decode_fails(f, "task spec: argv is not a list");
    begin_spec(f, "argv", 1);
    pack_str(f, "argv", "echo hi");
    decode_fails(f, "task spec: argv is not a list");
    begin_spec(f, "argv", 1);
    mapq_value_pack_str(&f->pk, "argv");
    msgpack_pack_array(&f->pk, 3);
    mapq_value_pack_str(&f->pk, "echo");
    mapq_value_pack_str(&f->pk, "hi");
    msgpack_pack_int(&f->pk, 5);
    decode_fails(f, "task spec: argv[2] is not a string");
    begin_spec(f, "argv", 1);
    mapq_value_pack_str(&f->pk, "argv");
    msgpack_pack_array(&f->pk, 0);
    decode_fails(f, "task spec: empty argv");
}

static void
test_taskspec_bad_output_type_rejected(void **state)
{
    struct fx *f = *state;

    begin_spec(f, NULL, 1);
    pack_str(f, "out", "lsit[int]");
    decode_fails(f,
                 "unknown type 'lsit' in 'lsit[int]' (expected int, "
                 "float, bool, str, bytes, any, file, list[T], dict[T], {name: "
                 "T, ...} or T?)");
    begin_spec(f, NULL, 1);
    pack_str(f, "out", "list[int");
    decode_fails(f, "malformed type 'list[int'");
    begin_spec(f, NULL, 1);
    pack_str(f, "fin", "file");
    decode_fails(f, "task spec: 'fin' is no record");
}

static void
test_taskspec_bad_numbers_rejected(void **state)
{
    struct fx *f = *state;

    begin_spec(f, NULL, 1);
    pack_int(f, "retries", -1);
    decode_fails(f, "task spec: bad retries");
    begin_spec(f, NULL, 1);
    pack_int(f, "retries", 1000001);
    decode_fails(f, "task spec: bad retries");
    begin_spec(f, NULL, 1);
    pack_str(f, "retries", "3");
    decode_fails(f, "task spec: bad retries");
    begin_spec(f, NULL, 1);
    mapq_value_pack_str(&f->pk, "retries");
    msgpack_pack_double(&f->pk, 2.0);
    decode_fails(f, "task spec: bad retries");
    begin_spec(f, NULL, 1);
    pack_int(f, "timeout", -1);
    decode_fails(f, "task spec: bad timeout");
    begin_spec(f, NULL, 1);
    mapq_value_pack_str(&f->pk, "timeout");
    msgpack_pack_uint64(&f->pk, (uint64_t)INT64_MAX + 1);
    decode_fails(f, "task spec: bad timeout");
    begin_spec(f, NULL, 1);
    pack_int(f, "sysr", 1000001);
    decode_fails(f, "task spec: bad sysr");
    begin_spec(f, NULL, 1);
    pack_int(f, "intrf", -1);
    decode_fails(f, "task spec: bad intrf");
    begin_spec(f, NULL, 1);
    pack_int(f, "mem", -5);
    decode_fails(f, "task spec: bad mem");
    begin_spec(f, NULL, 1);
    pack_int(f, "cpu", MAPQ_CPU_MILLI_MAX + 1);
    decode_fails(f, "task spec: bad cpu");
}

static void
test_taskspec_number_limits_accepted(void **state)
{
    struct fx *f = *state;
    const struct mapq_taskspec *s;

    begin_spec(f, NULL, 6);
    pack_int(f, "retries", 1000000);
    pack_int(f, "timeout", INT64_MAX);
    pack_int(f, "sysr", 1000000);
    pack_int(f, "intrf", 1000000);
    pack_int(f, "mem", INT64_MAX);
    pack_int(f, "cpu", MAPQ_CPU_MILLI_MAX);
    s = decode(f);
    assert_int_equal(s->retries, 1000000);
    assert_int_equal(s->timeout_ms, INT64_MAX);
    assert_int_equal(s->system_retries, 1000000);
    assert_int_equal(s->interruptible_failures, 1000000);
    assert_int_equal(s->mem_bytes, INT64_MAX);
    assert_int_equal(s->cpu_milli, MAPQ_CPU_MILLI_MAX);
}

static void
test_taskspec_free_null_and_partial(void **state)
{
    struct fx *f = *state;

    mapq_taskspec_free(NULL);
    /* A spec refused half-way through is freed with its partial argv (the
     * leak check under valgrind is what this exercises). */
    begin_spec(f, "argv", 1);
    mapq_value_pack_str(&f->pk, "argv");
    msgpack_pack_array(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "ok");
    msgpack_pack_nil(&f->pk);
    decode_fails(f, "task spec: argv[1] is not a string");
}

/*
 * A known field of the wrong type is refused with a message naming it, not
 * ignored: "out": 1 is not "no output", "text"/"intr": 1 is not false,
 * "lib": 1 on a command is not absent.
 */
static void
test_taskspec_wrong_field_types_rejected(void **state)
{
    static const char *const keys[] = {"out", "text", "intr", "lib", "sym"};
    static const char *const msgs[] = {
        "task spec: 'out' is not a string or nil",
        "task spec: 'text' is not a bool", "task spec: 'intr' is not a bool",
        "task spec: 'lib' is not a string or nil",
        "task spec: 'sym' is not a string or nil"};
    struct fx *f = *state;
    size_t i;

    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        begin_spec(f, NULL, 1);
        pack_int(f, keys[i], 1);
        mapq_taskspec_free(f->spec);
        f->spec = mapq_taskspec_decode(f->mp.data, f->mp.len, f->err);
        if (f->spec != NULL)
            fail_msg("'%s': 1 was accepted", keys[i]);
        assert_string_equal(f->err, msgs[i]);
        mapq_buf_reset(&f->mp);
    }
    /* A str where a bool belongs, and a bool where a str belongs. */
    begin_spec(f, NULL, 1);
    pack_str(f, "text", "true");
    decode_fails(f, "task spec: 'text' is not a bool");
    begin_spec(f, NULL, 1);
    mapq_value_pack_str(&f->pk, "out");
    msgpack_pack_false(&f->pk);
    decode_fails(f, "task spec: 'out' is not a string or nil");
}

/* nil for a bool field is the same as absent: false. */
static void
test_taskspec_nil_bools_are_false(void **state)
{
    struct fx *f = *state;
    const struct mapq_taskspec *s;

    begin_spec(f, NULL, 2);
    mapq_value_pack_str(&f->pk, "text");
    msgpack_pack_nil(&f->pk);
    mapq_value_pack_str(&f->pk, "intr");
    msgpack_pack_nil(&f->pk);
    s = decode(f);
    assert_false(s->output_text);
    assert_false(s->interruptible);
}

static void
test_taskspec_backoff_grows_caps_and_jitters(void **state)
{
    struct mapq_taskspec s = {0};

    (void)state;
    /* No backoff: retries run at once. */
    assert_int_equal(mapq_taskspec_backoff_ms(&s, 1, 0.5), 0);
    s.backoff_initial_ms = 1000;
    s.backoff_max_ms = 5000;
    s.backoff_factor_milli = 2000;
    /* Jitter spans half to all of the step: 1 s, 2 s, 4 s, then 5 s. */
    assert_int_equal(mapq_taskspec_backoff_ms(&s, 1, 0.0), 500);
    assert_int_equal(mapq_taskspec_backoff_ms(&s, 1, 0.999999), 999);
    assert_int_equal(mapq_taskspec_backoff_ms(&s, 2, 0.0), 1000);
    assert_int_equal(mapq_taskspec_backoff_ms(&s, 3, 0.0), 2000);
    assert_int_equal(mapq_taskspec_backoff_ms(&s, 4, 0.0), 2500);
    assert_int_equal(mapq_taskspec_backoff_ms(&s, 1000000, 0.0), 2500);
    /* A factor of 1 keeps the step. */
    s.backoff_factor_milli = 1000;
    assert_int_equal(mapq_taskspec_backoff_ms(&s, 50, 0.0), 500);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_taskspec_round_trip_command),
        T(test_taskspec_backoff_grows_caps_and_jitters),
        T(test_taskspec_round_trip_plugin),
        T(test_taskspec_encoding_matches_protocol),
        T(test_taskspec_file_inputs_round_trip),
        T(test_taskspec_store_round_trip),
        T(test_taskspec_decode_defaults),
        T(test_taskspec_unknown_keys_ignored),
        T(test_taskspec_not_msgpack_rejected),
        T(test_taskspec_not_a_map_rejected),
        T(test_taskspec_missing_required_rejected),
        T(test_taskspec_plugin_without_lib_or_sym_rejected),
        T(test_taskspec_bad_argv_rejected),
        T(test_taskspec_bad_output_type_rejected),
        T(test_taskspec_bad_numbers_rejected),
        T(test_taskspec_number_limits_accepted),
        T(test_taskspec_free_null_and_partial),
        T(test_taskspec_wrong_field_types_rejected),
        T(test_taskspec_nil_bools_are_false),
        T(test_taskspec_impossible_lengths_rejected),
#undef T
    };

    return cmocka_run_group_tests_name("taskspec", tests, NULL, NULL);
}
