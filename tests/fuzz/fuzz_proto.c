/*
 * fuzz_proto.c - the strings agents and the scheduler read from Redis
 * outside msgpack: subtask refs (the fencing token); and Redis URLs
 * (--redis, MAPQ_REDIS_URL), parsed, shown and their password hidden.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_proto.h"
#include "mapq_redis.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mapq_redis_url url;
    struct mapq_ref ref;
    char err[MAPQ_ERR_LEN], shown[600], *s;

    if (mapq_ref_parse((const char *)data, size, &ref) == MAPQ_OK)
        mapq_ref_attempt(&ref);
    s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = '\0';
    if (mapq_redis_url_parse(s, &url, err) == MAPQ_OK)
        mapq_redis_url_format(&url, shown, sizeof(shown));
    mapq_redis_url_hide_password(s);
    free(s);
    return 0;
}
