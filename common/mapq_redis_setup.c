/*
 * mapq_redis_setup.c - the setup commands of a Redis connection and the
 * reading of their replies.
 */
#include "mapq_redis_setup.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "mapq_redis.h"

void
mapq_redis_setup_reason(char *out, size_t cap, const char *what,
                        const char *text, size_t len)
{
    static const char echo[] = ", with args beginning with:";
    size_t n = len < 200 ? len : 200, i, k;
    int w;

    for (i = 0; i + sizeof(echo) - 1 <= n; i++)
        if (memcmp(text + i, echo, sizeof(echo) - 1) == 0) {
            n = i;
            break;
        }
    w = snprintf(out, cap, "%s: ", what);
    if (w < 0 || (size_t)w >= cap)
        return; /* cut and terminated by snprintf */
    k = (size_t)w;
    for (i = 0; i < n && k + 1 < cap; i++, k++)
        out[k] = text[i] == '\r' || text[i] == '\n' ? ' ' : text[i];
    if (k < cap)
        out[k] = '\0';
}

bool
mapq_redis_setup_exists(const redisReply *reply)
{
    static const char prefix[] = "ERR Library 'mapq";
    static const char suffix[] = "' already exists";

    return reply->type == REDIS_REPLY_ERROR &&
           reply->len > sizeof(prefix) + sizeof(suffix) - 2 &&
           memcmp(reply->str, prefix, sizeof(prefix) - 1) == 0 &&
           memcmp(reply->str + reply->len - (sizeof(suffix) - 1), suffix,
                  sizeof(suffix) - 1) == 0;
}

enum mapq_held
mapq_redis_setup_held(const redisReply *reply, int *rev)
{
    static const char missing[] = "ERR Function not found";

    if (reply->type == REDIS_REPLY_INTEGER && reply->integer >= 0 &&
        reply->integer <= INT_MAX) {
        *rev = (int)reply->integer;
        return MAPQ_HELD_REVISION;
    }
    if (reply->type == REDIS_REPLY_ERROR && reply->len >= sizeof(missing) - 1 &&
        memcmp(reply->str, missing, sizeof(missing) - 1) == 0)
        return MAPQ_HELD_NOTHING;
    return MAPQ_HELD_REFUSED;
}

void
mapq_redis_setup_version(struct mapq_argv *cmd)
{
    mapq_argv_init(cmd);
    mapq_argv_add(cmd, "FCALL_RO");
    mapq_argv_add(cmd, "mapq1_version");
    mapq_argv_add(cmd, "0");
}

void
mapq_redis_setup_load(struct mapq_argv *cmd, bool replace)
{
    mapq_argv_init(cmd);
    mapq_argv_add(cmd, "FUNCTION");
    mapq_argv_add(cmd, "LOAD");
    if (replace)
        mapq_argv_add(cmd, "REPLACE");
    mapq_argv_addlen(cmd, mapq_functions_lua, mapq_functions_lua_len);
}

bool
mapq_redis_setup_primary(const redisReply *reply, char *why, size_t len)
{
    const redisReply *e =
        reply->type == REDIS_REPLY_ARRAY && reply->elements > 0
            ? reply->element[0]
            : NULL;

    if (e != NULL && e->type == REDIS_REPLY_STRING &&
        strcmp(e->str, "master") == 0)
        return true;
    snprintf(why, len,
             "ROLE: a %s, not the primary (the sentinels named it; asking "
             "them again)",
             e != NULL && e->type == REDIS_REPLY_STRING ? e->str : "server");
    return false;
}

void
mapq_redis_setup_commands(const struct mapq_redis_url *url,
                          struct mapq_argv *cmds, const char **names,
                          int *ncmds)
{
    int n = 0;

    if (url->password[0] == '\0') {
        /* A small command first: without it a server that wants a
         * password answers a large FUNCTION LOAD with "unauthenticated
         * bulk length" and closes, hiding the NOAUTH. */
        mapq_argv_init(&cmds[n]);
        mapq_argv_add(&cmds[n], "PING");
        names[n++] = "PING";
    } else {
        mapq_argv_init(&cmds[n]);
        mapq_argv_add(&cmds[n], "AUTH");
        if (url->user[0] != '\0')
            mapq_argv_add(&cmds[n], url->user);
        mapq_argv_add(&cmds[n], url->password);
        names[n++] = "AUTH";
    }
    if (url->db != 0) {
        mapq_argv_init(&cmds[n]);
        mapq_argv_add(&cmds[n], "SELECT");
        mapq_argv_addf(&cmds[n], "%d", url->db);
        names[n++] = "SELECT";
    }
    if (url->master[0] != '\0') {
        /* Around a failover a Sentinel may still name the old primary. */
        mapq_argv_init(&cmds[n]);
        mapq_argv_add(&cmds[n], "ROLE");
        names[n++] = "ROLE";
    }
    mapq_redis_setup_version(&cmds[n]);
    names[n++] = "FCALL_RO mapq1_version";
    *ncmds = n;
}
