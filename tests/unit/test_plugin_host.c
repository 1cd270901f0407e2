/*
 * test_plugin_host.c - plugin loading, lookup errors and the call glue.
 */
#include "mapq_test.h"

#include <limits.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq/plugin.h"
#include "mapq_alloc.h"
#include "mapq_buf.h"
#include "mapq_plugin_host.h"
#include "mapq_value.h"

#define EXAMPLE "mapq_example_plugin.so"

struct fx {
    struct mapq_plugin_host *h;
    struct mapq_plugin_outcome out;
    struct mapq_plugin_call call;
    struct mapq_buf in; /* msgpack inputs for call */
    msgpack_packer pk;  /* appends to in */
    msgpack_unpacked u; /* the output, unpacked */
    char *saved_path;   /* MAPQ_PLUGIN_PATH as the test found it */
    const char *dir;    /* the build directory, holding EXAMPLE */
    char lib[PATH_MAX]; /* dir/EXAMPLE */
    char err[MAPQ_ERR_LEN];
};

static int
setup(void **state)
{
    struct fx *f = mapq_xcalloc(1, sizeof(*f));
    const char *env = getenv("MAPQ_PLUGIN_PATH");

    f->dir = getenv("MAPQ_BUILD_DIR");
    if (f->dir == NULL) {
        fprintf(stderr, "MAPQ_BUILD_DIR is not set (ctest sets it)\n");
        free(f);
        return -1;
    }
    snprintf(f->lib, sizeof(f->lib), "%s/%s", f->dir, EXAMPLE);
    f->saved_path = env ? mapq_xstrdup(env) : NULL;
    unsetenv("MAPQ_PLUGIN_PATH");
    f->h = mapq_plugin_host_new(f->dir);
    mapq_plugin_outcome_init(&f->out);
    mapq_buf_init(&f->in, 0);
    mapq_value_packer_init(&f->pk, &f->in);
    msgpack_unpacked_init(&f->u);
    f->call.execution = "0123456789ab";
    f->call.node = "sq";
    f->call.index = 41;
    f->call.attempt = 2;
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;

    msgpack_unpacked_destroy(&f->u);
    mapq_buf_release(&f->in);
    mapq_plugin_outcome_release(&f->out);
    mapq_plugin_host_free(f->h);
    if (f->saved_path != NULL)
        setenv("MAPQ_PLUGIN_PATH", f->saved_path, 1);
    else
        unsetenv("MAPQ_PLUGIN_PATH");
    free(f->saved_path);
    free(f);
    return 0;
}

/* Looks up library:symbol, asserting success. */
static mapq_plugin_fn *
lookup(struct fx *f, const char *library, const char *symbol)
{
    mapq_plugin_fn *fn = mapq_plugin_host_lookup(f->h, library, symbol, f->err);

    if (fn == NULL)
        fail_msg("lookup of %s:%s failed: %s", library, symbol, f->err);
    return fn;
}

/* Asserts that library:symbol is not found, with a reason in f->err. */
static void
lookup_fails(struct fx *f, const char *library, const char *symbol)
{
    f->err[0] = '\0';
    assert_null(mapq_plugin_host_lookup(f->h, library, symbol, f->err));
    assert_true(f->err[0] != '\0');
}

/* Starts a fresh outcome and calls fn with the inputs in f->in. */
static void
call(struct fx *f, mapq_plugin_fn *fn, size_t output_max)
{
    mapq_plugin_outcome_release(&f->out);
    mapq_plugin_outcome_init(&f->out);
    f->call.input = f->in.data;
    f->call.input_len = f->in.len;
    mapq_plugin_host_call(fn, &f->call, output_max, &f->out);
}

/* Packs a map of n (name, int) pairs as the inputs. */
static void
inputs(struct fx *f, int n, const char *k1, int64_t v1, const char *k2,
       int64_t v2)
{
    mapq_buf_reset(&f->in);
    msgpack_pack_map(&f->pk, (uint32_t)n);
    if (n > 0) {
        mapq_value_pack_str(&f->pk, k1);
        msgpack_pack_int64(&f->pk, v1);
    }
    if (n > 1) {
        mapq_value_pack_str(&f->pk, k2);
        msgpack_pack_int64(&f->pk, v2);
    }
}

/* The successful output of the last call, unpacked. */
static const msgpack_object *
output(struct fx *f)
{
    assert_int_equal(f->out.status, MAPQ_PLUGIN_OK);
    assert_string_equal(f->out.error, "");
    assert_int_equal(
        mapq_value_unpack(f->out.output.data, f->out.output.len, &f->u, f->err),
        MAPQ_OK);
    return &f->u.data;
}

/* Asserts that the last call failed with message msg. */
static void
assert_failed(struct fx *f, const char *msg)
{
    assert_int_equal(f->out.status, MAPQ_PLUGIN_ERROR);
    assert_string_equal(f->out.error, msg);
}

/* ---- task functions of our own, for the call glue ----------------------- */

/* Outputs [abi_version, execution, node, index, attempt, input_len]. */
static int
fn_identity(const struct mapq_plugin_call *c)
{
    struct mapq_buf b = MAPQ_BUF_INIT;
    msgpack_packer pk;
    int rc;

    mapq_value_packer_init(&pk, &b);
    msgpack_pack_array(&pk, 6);
    msgpack_pack_uint32(&pk, c->abi_version);
    mapq_value_pack_str(&pk, c->execution);
    mapq_value_pack_str(&pk, c->node);
    msgpack_pack_uint64(&pk, c->index);
    msgpack_pack_uint32(&pk, c->attempt);
    msgpack_pack_uint64(&pk, c->input_len);
    rc = c->set_output(c, b.data, b.len);
    mapq_buf_release(&b);
    return rc == 0 ? MAPQ_PLUGIN_OK : MAPQ_PLUGIN_ERROR;
}

static int
fn_malformed_output(const struct mapq_plugin_call *c)
{
    c->set_output(c, "\xc1", 1);
    return MAPQ_PLUGIN_OK;
}

static int
fn_trailing_output(const struct mapq_plugin_call *c)
{
    c->set_output(c, "\x01\x02", 2);
    return MAPQ_PLUGIN_OK;
}

static int
fn_no_output(const struct mapq_plugin_call *c)
{
    (void)c;
    return MAPQ_PLUGIN_OK;
}

static int
fn_silent_error(const struct mapq_plugin_call *c)
{
    (void)c;
    return MAPQ_PLUGIN_ERROR;
}

static int
fn_error_but_ok(const struct mapq_plugin_call *c)
{
    c->set_output(c, "\x05", 1);
    c->set_error(c, "disk on fire");
    return MAPQ_PLUGIN_OK;
}

static int
fn_null_error(const struct mapq_plugin_call *c)
{
    c->set_error(c, NULL);
    return MAPQ_PLUGIN_ERROR;
}

static int
fn_second_output_wins(const struct mapq_plugin_call *c)
{
    if (c->set_output(c, "\x01", 1) != 0 || c->set_output(c, "\xa1x", 2) != 0)
        return MAPQ_PLUGIN_ERROR;
    return MAPQ_PLUGIN_OK;
}

/* Saves the previous checkpoint with "+1" appended. */
static int
fn_checkpoint(const struct mapq_plugin_call *c)
{
    char buf[64];
    size_t n = c->checkpoint ? c->checkpoint_len : 0;

    if (n + 2 > sizeof(buf))
        return MAPQ_PLUGIN_ERROR;
    if (n > 0)
        memcpy(buf, c->checkpoint, n);
    memcpy(buf + n, "+1", 2);
    return c->save_checkpoint(c, buf, n + 2) == 0 ? MAPQ_PLUGIN_OK
                                                  : MAPQ_PLUGIN_ERROR;
}

/* Saves 5 bytes; reports whether the host refused them. */
static int
fn_checkpoint_5(const struct mapq_plugin_call *c)
{
    if (c->save_checkpoint(c, "12345", 5) == -1) {
        c->set_error(c, "checkpoint refused");
        return MAPQ_PLUGIN_ERROR;
    }
    return MAPQ_PLUGIN_OK;
}

/* ---- loading ------------------------------------------------------------ */

static void
test_plugin_host_lookup_by_path(void **state)
{
    struct fx *f = *state;
    mapq_plugin_fn *sq, *noop;

    sq = lookup(f, f->lib, "square");
    noop = lookup(f, f->lib, "noop");
    assert_ptr_not_equal(sq, noop);
    /* The library is kept: the same name finds the same function. */
    assert_ptr_equal(lookup(f, f->lib, "square"), sq);
}

static void
test_plugin_host_lookup_in_self_dir(void **state)
{
    struct fx *f = *state;

    lookup(f, EXAMPLE, "square");
    /* Not in the agent's directory nor on MAPQ_PLUGIN_PATH: not found. */
    mapq_plugin_host_free(f->h);
    f->h = mapq_plugin_host_new("/nonexistent-mapq-dir");
    lookup_fails(f, EXAMPLE, "square");
    assert_string_equal(f->err, "cannot load plugin library "
                                "'mapq_example_plugin.so': "
                                "mapq_example_plugin.so: cannot open shared "
                                "object file: No such file or directory");
}

static void
test_plugin_host_lookup_in_plugin_path(void **state)
{
    struct fx *f = *state;
    char path[PATH_MAX + 64];

    mapq_plugin_host_free(f->h);
    f->h = mapq_plugin_host_new("/nonexistent-mapq-dir");
    snprintf(path, sizeof(path), "/nonexistent-a::%s:/nonexistent-b", f->dir);
    assert_int_equal(setenv("MAPQ_PLUGIN_PATH", path, 1), 0);
    lookup(f, EXAMPLE, "detect");
}

static void
test_plugin_host_missing_library(void **state)
{
    static const char want[] = "cannot load plugin library "
                               "'/nonexistent-mapq-dir/libnope.so': ";
    struct fx *f = *state;

    lookup_fails(f, "/nonexistent-mapq-dir/libnope.so", "square");
    assert_memory_equal(f->err, want, sizeof(want) - 1);
    assert_non_null(strstr(f->err, "No such file or directory"));
    assert_null(strchr(f->err, '\n'));
    /* Still missing on a second try: failures are not cached as found. */
    lookup_fails(f, "/nonexistent-mapq-dir/libnope.so", "square");
    assert_memory_equal(f->err, want, sizeof(want) - 1);
}

static void
test_plugin_host_missing_symbol(void **state)
{
    struct fx *f = *state;
    char want[PATH_MAX + 64];

    lookup_fails(f, f->lib, "cube");
    snprintf(want, sizeof(want), "plugin library '%s' has no symbol 'cube'",
             f->lib);
    assert_string_equal(f->err, want);
    /* The library itself stays usable. */
    lookup(f, f->lib, "square");
}

static void
test_plugin_host_abi_mismatch_refused(void **state)
{
    struct fx *f = *state;

    /* libm defines no mapq_plugin_abi_version: a library built for no (or
     * another) ABI is refused before any symbol is looked up. */
    lookup_fails(f, "libm.so.6", "sqrt");
    assert_string_equal(f->err,
                        "plugin library 'libm.so.6' was built for ABI 0, this "
                        "agent speaks 1 (rebuild it against mapq/plugin.h)");
    /* Refused again, from the kept handle. */
    lookup_fails(f, "libm.so.6", "cbrt");
    assert_non_null(strstr(f->err, "was built for ABI 0"));
}

/* ---- calling the example plugin ----------------------------------------- */

static void
test_plugin_host_call_square(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;

    inputs(f, 1, "x", 7, NULL, 0);
    call(f, lookup(f, f->lib, "square"), MAPQ_VALUE_MAX);
    o = output(f);
    assert_int_equal(o->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_int_equal(o->via.u64, 49);
    inputs(f, 1, "x", -3, NULL, 0);
    call(f, lookup(f, f->lib, "square"), MAPQ_VALUE_MAX);
    assert_int_equal(output(f)->via.u64, 9);
    assert_int_equal(f->out.has_checkpoint, 0);
}

static void
test_plugin_host_call_detect_and_noop(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;

    inputs(f, 2, "data_point", 5, "threshold", 3);
    call(f, lookup(f, f->lib, "detect"), MAPQ_VALUE_MAX);
    o = output(f);
    assert_int_equal(o->type, MSGPACK_OBJECT_BOOLEAN);
    assert_true(o->via.boolean);
    inputs(f, 2, "threshold", 3, "data_point", 3);
    call(f, lookup(f, f->lib, "detect"), MAPQ_VALUE_MAX);
    assert_false(output(f)->via.boolean);
    inputs(f, 0, NULL, 0, NULL, 0);
    call(f, lookup(f, f->lib, "noop"), MAPQ_VALUE_MAX);
    assert_int_equal(output(f)->type, MSGPACK_OBJECT_NIL);
}

static void
test_plugin_host_call_user_error(void **state)
{
    struct fx *f = *state;

    inputs(f, 2, "x", 3, "bad", 3);
    call(f, lookup(f, f->lib, "fail_on"), MAPQ_VALUE_MAX);
    assert_failed(f, "refusing x=3");
    inputs(f, 2, "x", 4, "bad", 3);
    call(f, lookup(f, f->lib, "fail_on"), MAPQ_VALUE_MAX);
    assert_int_equal(output(f)->via.u64, 4);
    inputs(f, 0, NULL, 0, NULL, 0);
    call(f, lookup(f, f->lib, "square"), MAPQ_VALUE_MAX);
    assert_failed(f, "missing integer input 'x'");
}

static void
test_plugin_host_output_cap(void **state)
{
    struct fx *f = *state;

    /* 1000000 packs as a uint32: 5 bytes. */
    inputs(f, 1, "x", 1000, NULL, 0);
    call(f, lookup(f, f->lib, "square"), 4);
    assert_failed(f, "output over the size cap (4 bytes)");
    call(f, lookup(f, f->lib, "square"), 5);
    assert_int_equal(output(f)->via.u64, 1000000);
    assert_int_equal(f->out.output.len, 5);
}

/* ---- the call glue ------------------------------------------------------ */

static void
test_plugin_host_call_fills_identity(void **state)
{
    struct fx *f = *state;
    const msgpack_object *o;

    inputs(f, 1, "x", 1, NULL, 0);
    f->call.abi_version = 99;
    call(f, fn_identity, MAPQ_VALUE_MAX);
    o = output(f);
    assert_int_equal(o->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(o->via.array.size, 6);
    assert_int_equal(o->via.array.ptr[0].via.u64, MAPQ_PLUGIN_ABI_VERSION);
    assert_true(mapq_value_str_eq(&o->via.array.ptr[1], "0123456789ab"));
    assert_true(mapq_value_str_eq(&o->via.array.ptr[2], "sq"));
    assert_int_equal(o->via.array.ptr[3].via.u64, 41);
    assert_int_equal(o->via.array.ptr[4].via.u64, 2);
    assert_int_equal(o->via.array.ptr[5].via.u64, f->in.len);
    assert_ptr_equal(f->call.agent_private, &f->out);
}

static void
test_plugin_host_bad_output_refused(void **state)
{
    struct fx *f = *state;

    call(f, fn_malformed_output, MAPQ_VALUE_MAX);
    assert_failed(f, "plugin output: malformed msgpack value");
    call(f, fn_trailing_output, MAPQ_VALUE_MAX);
    assert_failed(f, "plugin output: 1 trailing bytes after msgpack value");
}

static void
test_plugin_host_no_output_is_nil(void **state)
{
    struct fx *f = *state;

    call(f, fn_no_output, MAPQ_VALUE_MAX);
    assert_int_equal(f->out.output.len, 1);
    assert_int_equal(output(f)->type, MSGPACK_OBJECT_NIL);
    call(f, fn_second_output_wins, MAPQ_VALUE_MAX);
    assert_true(mapq_value_str_eq(output(f), "x"));
}

static void
test_plugin_host_error_reporting(void **state)
{
    struct fx *f = *state;

    call(f, fn_silent_error, MAPQ_VALUE_MAX);
    assert_failed(f, "plugin reported an error without a message");
    /* An error message wins over a returned OK. */
    call(f, fn_error_but_ok, MAPQ_VALUE_MAX);
    assert_failed(f, "disk on fire");
    call(f, fn_null_error, MAPQ_VALUE_MAX);
    assert_failed(f, "error");
}

static void
test_plugin_host_checkpoint(void **state)
{
    struct fx *f = *state;

    call(f, fn_checkpoint, MAPQ_VALUE_MAX);
    assert_int_equal(f->out.status, MAPQ_PLUGIN_OK);
    assert_int_equal(f->out.has_checkpoint, 1);
    assert_int_equal(f->out.checkpoint.len, 2);
    assert_memory_equal(f->out.checkpoint.data, "+1", 2);
    /* The next attempt sees it; the host keeps a copy of what is saved. */
    f->call.checkpoint = "+1";
    f->call.checkpoint_len = 2;
    call(f, fn_checkpoint, MAPQ_VALUE_MAX);
    assert_int_equal(f->out.has_checkpoint, 1);
    assert_int_equal(f->out.checkpoint.len, 4);
    assert_memory_equal(f->out.checkpoint.data, "+1+1", 4);
}

static void
test_plugin_host_checkpoint_cap(void **state)
{
    struct fx *f = *state;

    mapq_plugin_outcome_release(&f->out);
    mapq_plugin_outcome_init(&f->out);
    f->out.checkpoint.max = 4;
    f->call.input = NULL;
    f->call.input_len = 0;
    mapq_plugin_host_call(fn_checkpoint_5, &f->call, MAPQ_VALUE_MAX, &f->out);
    assert_failed(f, "checkpoint refused");
    assert_int_equal(f->out.has_checkpoint, 0);
    assert_int_equal(f->out.checkpoint.len, 0);
}

/* Saves "ok", then 5 bytes over a 4-byte cap. */
static int
fn_checkpoint_then_too_big(const struct mapq_plugin_call *c)
{
    if (c->save_checkpoint(c, "ok", 2) != 0)
        return MAPQ_PLUGIN_ERROR;
    c->save_checkpoint(c, "12345", 5);
    return MAPQ_PLUGIN_OK;
}

/*
 * A refused save_checkpoint() keeps the checkpoint saved before it, rather
 * than emptying it while has_checkpoint stays set.
 */
static void
test_plugin_host_refused_checkpoint_keeps_previous(void **state)
{
    struct fx *f = *state;

    mapq_plugin_outcome_release(&f->out);
    mapq_plugin_outcome_init(&f->out);
    f->out.checkpoint.max = 4;
    mapq_plugin_host_call(fn_checkpoint_then_too_big, &f->call, MAPQ_VALUE_MAX,
                          &f->out);
    assert_int_equal(f->out.has_checkpoint, 1);
    assert_int_equal(f->out.checkpoint.len, 2);
    assert_memory_equal(f->out.checkpoint.data, "ok", 2);
}

/*
 * dlsym() on the library's handle also searches its dependencies: symbols
 * the plugin does not define (free from libc, msgpack_unpack_next) are not
 * task functions, and neither is the ABI version variable.
 */
static void
test_plugin_host_foreign_symbols_refused(void **state)
{
    struct fx *f = *state;

    lookup_fails(f, f->lib, "free");
    assert_non_null(strstr(f->err, "has no symbol 'free' of its own"));
    lookup_fails(f, f->lib, "msgpack_unpack_next");
    assert_non_null(
        strstr(f->err, "has no symbol 'msgpack_unpack_next' of its own"));
    lookup_fails(f, f->lib, "mapq_plugin_abi_version");
    assert_non_null(strstr(f->err, "is not a task function"));
    /* The library's own functions are still found. */
    lookup(f, f->lib, "square");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_plugin_host_lookup_by_path),
        T(test_plugin_host_lookup_in_self_dir),
        T(test_plugin_host_lookup_in_plugin_path),
        T(test_plugin_host_missing_library),
        T(test_plugin_host_missing_symbol),
        T(test_plugin_host_abi_mismatch_refused),
        T(test_plugin_host_call_square),
        T(test_plugin_host_call_detect_and_noop),
        T(test_plugin_host_call_user_error),
        T(test_plugin_host_output_cap),
        T(test_plugin_host_call_fills_identity),
        T(test_plugin_host_bad_output_refused),
        T(test_plugin_host_no_output_is_nil),
        T(test_plugin_host_error_reporting),
        T(test_plugin_host_checkpoint),
        T(test_plugin_host_checkpoint_cap),
        T(test_plugin_host_refused_checkpoint_keeps_previous),
        T(test_plugin_host_foreign_symbols_refused),
#undef T
    };

    return cmocka_run_group_tests_name("plugin_host", tests, NULL, NULL);
}
