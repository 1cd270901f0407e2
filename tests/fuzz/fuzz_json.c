/*
 * fuzz_json.c - a task's output (JSON text) converted to msgpack under a
 * declared type, and the result written back as JSON.
 */
#include <stddef.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_json.h"
#include "mapq_type.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mapq_type *types[4];

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mapq_buf mp = MAPQ_BUF_INIT, back = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    size_t i;

    if (types[1] == NULL) {
        types[1] = mapq_type_parse("list[float]", err);
        types[2] = mapq_type_parse("dict[bytes?]", err);
        types[3] = mapq_type_parse("list[list[int]]", err);
    }
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        mapq_buf_init(&mp, 1 << 20);
        if (mapq_json_to_msgpack((const char *)data, size, types[i], &mp,
                                 err) == MAPQ_OK)
            mapq_json_from_bytes(mp.data, mp.len, &back, 0, err);
        mapq_buf_release(&mp);
        mapq_buf_release(&back);
    }
    return 0;
}
