/*
 * fuzz_msgpack.c - every message mapq reads from Redis or a plugin starts
 * as bytes handed to mapq_value_unpack() or mapq_value_unpack_next():
 * claim replies, subtask bodies, result records, attempt logs, events,
 * execution inputs and outputs. This target unpacks arbitrary bytes, then
 * does with the value what those readers do: looks up the keys of each
 * record (docs/PROTOCOL.md), walks it as JSON, checks it against types and
 * encodes it canonically; and reads the bytes as a stream of values, as the
 * attempt log is read. The canonical encoding must unpack again and be its
 * own canonical encoding (an abort otherwise).
 */
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_buf.h"
#include "mapq_json.h"
#include "mapq_type.h"
#include "mapq_value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mapq_type *types[4];

/* The keys of a subtask body, a result record and an attempt record. */
static const char *const keys[] = {"i", "in", "h", "p", "v", "e", "a",
                                   "l", "ag", "t", "d", "k", "x", "sig"};

/* Canonical bytes must decode, and re-encode to themselves. */
static void
check_canonical(const struct mapq_buf *canon)
{
    struct mapq_buf again = MAPQ_BUF_INIT;
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN];

    msgpack_unpacked_init(&u);
    mapq_buf_init(&again, 0);
    if (mapq_value_unpack(canon->data, canon->len, &u, err) != MAPQ_OK)
        abort();
    if (mapq_value_canonical(&u.data, &again) != MAPQ_OK ||
        again.len != canon->len || memcmp(again.data, canon->data, again.len))
        abort();
    mapq_buf_release(&again);
    msgpack_unpacked_destroy(&u);
}

/* An event entry: a flat array of (k, index, phase) integer triples. */
static uint64_t events_seen;

static void
read_events(const msgpack_object *o)
{
    uint32_t i;

    if (o->type != MSGPACK_OBJECT_ARRAY)
        return;
    for (i = 0; i + 2 < o->via.array.size; i += 3)
        if (o->via.array.ptr[i].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            events_seen += o->via.array.ptr[i].via.u64;
}

static void
read_value(const msgpack_object *o)
{
    struct mapq_buf out = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    unsigned char key[MAPQ_KEY_LEN];
    size_t i;

    mapq_buf_init(&out, 1 << 20);
    mapq_json_from_msgpack(o, &out, 0, err);
    mapq_buf_reset(&out);
    if (mapq_value_canonical(o, &out) == MAPQ_OK) {
        check_canonical(&out);
        mapq_value_hash(out.data, out.len, key);
    }
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        mapq_type_check(types[i], o, err);
    for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const msgpack_object *v = mapq_value_map_get(o, keys[i]);

        if (v != NULL)
            mapq_value_str_eq(v, "T");
    }
    read_events(o);
    mapq_buf_release(&out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data;
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN];
    size_t off = 0;

    if (types[0] == NULL) {
        types[0] = mapq_type_parse("any", err);
        types[1] = mapq_type_parse("list[dict[int?]]", err);
        types[2] = mapq_type_parse("dict[list[str]]", err);
        types[3] = mapq_type_parse("list[bytes]", err);
    }
    msgpack_unpacked_init(&u);
    if (mapq_value_unpack(p, size, &u, err) == MAPQ_OK)
        read_value(&u.data);
    while (off < size &&
           mapq_value_unpack_next(p, size, &off, &u, err) == MAPQ_OK)
        read_value(&u.data);
    msgpack_unpacked_destroy(&u);
    return 0;
}
