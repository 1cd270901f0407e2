/*
 * example_plugin.c - a documented example of a mapq plugin library.
 *
 * Build: it is built with the project as mapq_example_plugin.so. Functions:
 *   noop    (any inputs)               -> null
 *   square  {x: int}                   -> int   x*x
 *   detect  {data_point: int, threshold: int} -> bool  data_point > threshold
 *   fail_on {x: int, bad: int}         -> int   user error when x == bad
 *
 * Each one reads its inputs from the msgpack map in call->input and reports
 * its output with call->set_output().
 */
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

#include "mapq/plugin.h"

MAPQ_PLUGIN_DEFINE();

mapq_plugin_fn noop, square, detect, fail_on;

/* Looks up an integer input; returns 0 when present. */
static int
get_int(const msgpack_object *map, const char *name, int64_t *out)
{
    size_t n = strlen(name);
    uint32_t i;

    if (map->type != MSGPACK_OBJECT_MAP)
        return -1;
    for (i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        const msgpack_object *v = &map->via.map.ptr[i].val;

        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != n ||
            memcmp(k->via.str.ptr, name, n) != 0)
            continue;
        if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            *out = (int64_t)v->via.u64;
            return 0;
        }
        if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
            *out = v->via.i64;
            return 0;
        }
        return -1;
    }
    return -1;
}

/* Unpacks the inputs, reads the named ints, reports a missing one. */
static int
read_ints(const struct mapq_plugin_call *call, const char *a, int64_t *va,
          const char *b, int64_t *vb)
{
    msgpack_unpacked u;
    size_t off = 0;
    int rc = -1;
    char msg[128];

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, call->input, call->input_len, &off) !=
        MSGPACK_UNPACK_SUCCESS) {
        call->set_error(call, "inputs are not a msgpack map");
        goto out;
    }
    if (get_int(&u.data, a, va) != 0 || (b && get_int(&u.data, b, vb) != 0)) {
        snprintf(msg, sizeof(msg), "missing integer input '%s'",
                 get_int(&u.data, a, va) != 0 ? a : b);
        call->set_error(call, msg);
        goto out;
    }
    rc = 0;
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}

static int
set_packed_int(const struct mapq_plugin_call *call, int64_t v)
{
    msgpack_sbuffer sb;
    msgpack_packer pk;
    int rc;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_int64(&pk, v);
    rc = call->set_output(call, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
    return rc == 0 ? MAPQ_PLUGIN_OK : MAPQ_PLUGIN_ERROR;
}

int
noop(const struct mapq_plugin_call *call)
{
    static const char nil = (char)0xc0;

    return call->set_output(call, &nil, 1) == 0 ? MAPQ_PLUGIN_OK
                                                : MAPQ_PLUGIN_ERROR;
}

int
square(const struct mapq_plugin_call *call)
{
    int64_t x;

    if (read_ints(call, "x", &x, NULL, NULL) != 0)
        return MAPQ_PLUGIN_ERROR;
    return set_packed_int(call, x * x);
}

int
detect(const struct mapq_plugin_call *call)
{
    int64_t v, t;
    char out;

    if (read_ints(call, "data_point", &v, "threshold", &t) != 0)
        return MAPQ_PLUGIN_ERROR;
    out = (char)(v > t ? 0xc3 : 0xc2); /* msgpack true / false */
    return call->set_output(call, &out, 1) == 0 ? MAPQ_PLUGIN_OK
                                                : MAPQ_PLUGIN_ERROR;
}

int
fail_on(const struct mapq_plugin_call *call)
{
    int64_t x, bad;
    char msg[64];

    if (read_ints(call, "x", &x, "bad", &bad) != 0)
        return MAPQ_PLUGIN_ERROR;
    if (x == bad) {
        snprintf(msg, sizeof(msg), "refusing x=%lld", (long long)x);
        call->set_error(call, msg);
        return MAPQ_PLUGIN_ERROR;
    }
    return set_packed_int(call, x);
}
