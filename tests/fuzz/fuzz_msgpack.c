/*
 * fuzz_msgpack.c - every message mapq reads from Redis or a plugin starts
 * as bytes handed to mapq_value_unpack(): subtask bodies, result records,
 * attempt logs, events, checkpoints. This target unpacks arbitrary bytes,
 * then does with the value what the readers do: walks it as JSON, encodes
 * it canonically, checks it against types, looks up map keys; and reads a
 * stream of values as the attempt log is read.
 */
#include <msgpack.h>
#include <stddef.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_json.h"
#include "mapq_type.h"
#include "mapq_value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mapq_type *types[4];

static void
read_value(const msgpack_object *o)
{
    struct mapq_buf out = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    size_t i;

    mapq_buf_init(&out, 1 << 20);
    mapq_json_from_msgpack(o, &out, 0, err);
    mapq_buf_reset(&out);
    mapq_value_canonical(o, &out);
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++)
        mapq_type_check(types[i], o, err);
    mapq_value_map_get(o, "i");
    mapq_value_map_get(o, "o");
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
