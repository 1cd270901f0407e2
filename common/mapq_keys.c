/*
 * mapq_keys.c - builds mapq's Redis key names (docs/PROTOCOL.md, "Keys").
 *
 * Owns the spelling of every key the C side uses: a key's shape changes
 * here and nowhere else. Never logs, never touches Redis.
 */
#include "mapq_keys.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_redis.h"

char *
mapq_key_exec(const char *ns, const char *exec)
{
    return mapq_xasprintf("%s:x:%s", ns, exec);
}

char *
mapq_key_execs(const char *ns)
{
    return mapq_xasprintf("%s:execs", ns);
}

char *
mapq_key_submitted(const char *ns)
{
    return mapq_xasprintf("%s:submitted", ns);
}

char *
mapq_key_owners(const char *ns)
{
    return mapq_xasprintf("%s:owners", ns);
}

char *
mapq_key_bell(const char *ns, const char *queue, const char *cls)
{
    return mapq_xasprintf("%s:bell:%s:%s", ns, queue, cls);
}

char *
mapq_key_bodies(const char *ns, const char *exec)
{
    return mapq_xasprintf("%s:b:%s", ns, exec);
}

char *
mapq_key_results(const char *ns, const char *exec, size_t k)
{
    return mapq_xasprintf("%s:r:%s:%zu", ns, exec, k);
}

char *
mapq_key_events(const char *ns, const char *exec, long long epoch)
{
    return mapq_xasprintf("%s:ev:%s:%lld", ns, exec, epoch);
}

char *
mapq_key_cache(const char *ns, const char *task, const char *hex)
{
    return mapq_xasprintf("%s:c:%s:%s", ns, task, hex);
}

char *
mapq_key_pages(const char *ns, const char *exec)
{
    return mapq_xasprintf("%s:pg:%s", ns, exec);
}

char *
mapq_key_log(const char *ns, const char *exec)
{
    return mapq_xasprintf("%s:log:%s", ns, exec);
}

char *
mapq_key_live(const char *ns, const char *exec, uint32_t k, uint64_t index,
              uint32_t attempt)
{
    return mapq_xasprintf("%s:live:%s:%" PRIu32 "/%" PRIu64 "/%" PRIu32, ns,
                          exec, k, index, attempt);
}

char *
mapq_key_follow(const char *ns)
{
    return mapq_xasprintf("%s:follow", ns);
}

char *
mapq_key_wake(const char *ns, const char *id)
{
    return mapq_xasprintf("%s:wake:%s", ns, id);
}

char *
mapq_key_agents(const char *ns)
{
    return mapq_xasprintf("%s:agents", ns);
}

char *
mapq_key_agent(const char *ns, const char *name)
{
    return mapq_xasprintf("%s:agent:%s", ns, name);
}

char *
mapq_key_blob(const char *ns, const char *hex)
{
    return mapq_xasprintf("%s:blob:%s", ns, hex);
}

char *
mapq_key_blob_tmp(const char *ns, const char *rnd)
{
    return mapq_xasprintf("%s:blobtmp:%s", ns, rnd);
}

char *
mapq_key_all(const char *ns)
{
    return mapq_xasprintf("%s:*", ns);
}

bool
mapq_key_cache_split(const char *ns, const char *key, const char **task,
                     size_t *tlen, const char **hex)
{
    size_t plen = strlen(ns) + strlen(":c:");
    const char *last = strrchr(key, ':');

    if (strlen(key) <= plen || last == NULL || last < key + plen)
        return false;
    *task = key + plen;
    *tlen = (size_t)(last - *task);
    *hex = last + 1;
    return true;
}

void
mapq_key_add(struct mapq_argv *a, char *key)
{
    mapq_argv_add(a, key);
    free(key);
}
