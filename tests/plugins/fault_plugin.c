/*
 * fault_plugin.c - a plugin library for fault tests, built as
 * mapq_fault_plugin.so beside the programs. Functions:
 *   crash_on {x: int, bad: int} -> int   abort()s the agent when x == bad,
 *                                        otherwise returns x
 *   count {x: int, path: str} -> int     appends x to the file at path (one
 *                                        line per call, so tests can count
 *                                        executions), returns 2x; a user
 *                                        error when x is negative
 *   step {target: int} -> int            adds one to the number in its
 *                                        checkpoint and saves it; a user
 *                                        error until it reaches target
 *   hang_on {x: int, bad: int} -> int    never returns when x == bad
 *                                        (sleeps for good), otherwise
 *                                        returns x
 *
 * It exists to prove that a poison subtask cannot bring the system down: it
 * is never loaded by anything but tests.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapq/plugin.h"

MAPQ_PLUGIN_DEFINE();

mapq_plugin_fn crash_on, count, step, hang_on, echo;

/* Looks up a non-negative integer input; returns 0 when present. */
static int
get_uint(const msgpack_object *map, const char *name, uint64_t *out)
{
    size_t n = strlen(name);
    uint32_t i;

    for (i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        const msgpack_object *v = &map->via.map.ptr[i].val;

        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, name, n) == 0 &&
            v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            *out = v->via.u64;
            return 0;
        }
    }
    return -1;
}

int
crash_on(const struct mapq_plugin_call *call)
{
    msgpack_unpacked u;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t off = 0;
    uint64_t x, bad;
    int rc = MAPQ_PLUGIN_ERROR;

    msgpack_unpacked_init(&u);
    msgpack_sbuffer_init(&sb);
    if (msgpack_unpack_next(&u, call->input, call->input_len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP || get_uint(&u.data, "x", &x) != 0 ||
        get_uint(&u.data, "bad", &bad) != 0) {
        call->set_error(call, "crash_on needs inputs x and bad (int >= 0)");
        goto out;
    }
    if (x == bad)
        abort();
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_uint64(&pk, x);
    rc = call->set_output(call, sb.data, sb.size) == 0 ? MAPQ_PLUGIN_OK
                                                       : MAPQ_PLUGIN_ERROR;
out:
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* Looks up a str input; returns a NUL-terminated copy (caller frees). */
static char *
get_str(const msgpack_object *map, const char *name)
{
    size_t n = strlen(name);
    uint32_t i;
    char *out;

    for (i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        const msgpack_object *v = &map->via.map.ptr[i].val;

        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, name, n) == 0 &&
            v->type == MSGPACK_OBJECT_STR) {
            out = malloc(v->via.str.size + 1);
            if (out == NULL)
                return NULL;
            memcpy(out, v->via.str.ptr, v->via.str.size);
            out[v->via.str.size] = '\0';
            return out;
        }
    }
    return NULL;
}

int
count(const struct mapq_plugin_call *call)
{
    msgpack_unpacked u;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    const msgpack_object *x = NULL;
    size_t off = 0;
    uint32_t i;
    char *path = NULL;
    FILE *f;
    int rc = MAPQ_PLUGIN_ERROR;

    msgpack_unpacked_init(&u);
    msgpack_sbuffer_init(&sb);
    if (msgpack_unpack_next(&u, call->input, call->input_len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        call->set_error(call, "count needs a map of inputs");
        goto out;
    }
    for (i = 0; i < u.data.via.map.size; i++)
        if (u.data.via.map.ptr[i].key.type == MSGPACK_OBJECT_STR &&
            u.data.via.map.ptr[i].key.via.str.size == 1 &&
            u.data.via.map.ptr[i].key.via.str.ptr[0] == 'x')
            x = &u.data.via.map.ptr[i].val;
    path = get_str(&u.data, "path");
    if (x == NULL || path == NULL ||
        (x->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
         x->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)) {
        call->set_error(call, "count needs inputs x (int) and path (str)");
        goto out;
    }
    f = fopen(path, "a");
    if (f != NULL) {
        fprintf(f, "%lld\n", (long long)x->via.i64);
        fclose(f);
    }
    if (x->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        call->set_error(call, "negative input");
        goto out;
    }
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_uint64(&pk, 2 * x->via.u64);
    rc = call->set_output(call, sb.data, sb.size) == 0 ? MAPQ_PLUGIN_OK
                                                       : MAPQ_PLUGIN_ERROR;
out:
    free(path);
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&u);
    return rc;
}

int
step(const struct mapq_plugin_call *call)
{
    msgpack_unpacked u;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t off = 0;
    uint64_t target, n = 0;
    char buf[32];
    int rc = MAPQ_PLUGIN_ERROR;

    msgpack_unpacked_init(&u);
    msgpack_sbuffer_init(&sb);
    if (msgpack_unpack_next(&u, call->input, call->input_len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP ||
        get_uint(&u.data, "target", &target) != 0) {
        call->set_error(call, "step needs input target (int >= 0)");
        goto out;
    }
    if (call->checkpoint != NULL && call->checkpoint_len < sizeof(buf)) {
        memcpy(buf, call->checkpoint, call->checkpoint_len);
        buf[call->checkpoint_len] = '\0';
        n = strtoull(buf, NULL, 10);
    }
    n++;
    snprintf(buf, sizeof(buf), "%llu", (unsigned long long)n);
    call->save_checkpoint(call, buf, strlen(buf));
    if (n < target) {
        call->set_error(call, "not there yet");
        goto out;
    }
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_uint64(&pk, n);
    rc = call->set_output(call, sb.data, sb.size) == 0 ? MAPQ_PLUGIN_OK
                                                       : MAPQ_PLUGIN_ERROR;
out:
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&u);
    return rc;
}

int
hang_on(const struct mapq_plugin_call *call)
{
    msgpack_unpacked u;
    size_t off = 0;
    uint64_t x, bad;
    int rc = MAPQ_PLUGIN_ERROR;
    char out[16];

    msgpack_unpacked_init(&u);
    if (msgpack_unpack_next(&u, call->input, call->input_len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP || get_uint(&u.data, "x", &x) != 0 ||
        get_uint(&u.data, "bad", &bad) != 0) {
        call->set_error(call, "hang_on needs inputs x and bad (ints >= 0)");
        goto out;
    }
    while (x == bad)
        sleep(60);
    /* x < 128: one msgpack positive fixint. */
    out[0] = (char)(x & 0x7f);
    rc = call->set_output(call, out, 1) == 0 ? MAPQ_PLUGIN_OK
                                             : MAPQ_PLUGIN_ERROR;
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* Returns its input "v" as it is: any value, e.g. a file reference. */
int
echo(const struct mapq_plugin_call *call)
{
    msgpack_unpacked u;
    msgpack_sbuffer sb;
    msgpack_packer pk;
    size_t off = 0;
    uint32_t i;
    int rc = MAPQ_PLUGIN_ERROR;

    msgpack_unpacked_init(&u);
    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    if (msgpack_unpack_next(&u, call->input, call->input_len, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP)
        goto out;
    for (i = 0; i < u.data.via.map.size; i++) {
        const msgpack_object *k = &u.data.via.map.ptr[i].key;

        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == 1 &&
            k->via.str.ptr[0] == 'v') {
            msgpack_pack_object(&pk, u.data.via.map.ptr[i].val);
            rc = call->set_output(call, sb.data, sb.size) == 0
                     ? MAPQ_PLUGIN_OK
                     : MAPQ_PLUGIN_ERROR;
        }
    }
out:
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&u);
    return rc;
}
