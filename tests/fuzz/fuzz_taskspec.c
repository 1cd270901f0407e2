/*
 * fuzz_taskspec.c - the task spec an agent reads from Redis before it runs
 * anything; a decoded spec is encoded again and must decode again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mapq_buf.h"
#include "mapq_taskspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mapq_buf again = MAPQ_BUF_INIT;
    struct mapq_taskspec *spec, *spec2;
    char err[MAPQ_ERR_LEN];

    spec = mapq_taskspec_decode((const char *)data, size, err);
    if (spec == NULL)
        return 0;
    mapq_taskspec_backoff_ms(spec, 3, 0.5);
    mapq_taskspec_encode(spec, &again);
    spec2 = mapq_taskspec_decode(again.data, again.len, err);
    if (spec2 == NULL)
        abort(); /* what was encoded must decode */
    mapq_taskspec_free(spec2);
    mapq_taskspec_free(spec);
    mapq_buf_release(&again);
    return 0;
}
