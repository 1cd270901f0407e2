/*
 * mapq_redis_url.h - Redis URLs: redis://[user:password@]host[:port][/db]
 * (user and password %-escaped where needed, an IPv6 host in brackets),
 * redis+sentinel://[user:password@]host[:port][,host[:port]]...'/'name[/db]
 * (Sentinels that know the primary called name; the user and password
 * are the primary's) and unix:///path/to/redis.sock[?db=N]; rediss:// is
 * answered with how to reach a TLS port.
 */
#ifndef MAPQ_REDIS_URL_H
#define MAPQ_REDIS_URL_H

#include <stddef.h>

#include "mapq_err.h"

#define MAPQ_SENTINEL_SCHEME     "redis+sentinel://"
#define MAPQ_SENTINEL_PORT       26379
#define MAPQ_REDIS_SENTINELS_MAX 8

struct mapq_redis_addr {
    char host[256];
    int port;
};

struct mapq_redis_url {
    char host[256]; /* empty for unix sockets and until a Sentinel answers */
    int port;
    char path[256]; /* unix socket path, or empty */
    char user[128];
    char password[256];
    int db;
    char master[128]; /* the primary's name for Sentinel, else empty */
    int nsentinels;
    struct mapq_redis_addr sentinels[MAPQ_REDIS_SENTINELS_MAX];
    /* Replicas each write must reach before it counts (--durable), 0 for
     * none: set by the caller, never by the parser. */
    int durable;
};

/*
 * Parses redis://[user:password@]host[:port][/db] (host a name, an IPv4
 * address or [IPv6]; %XX escapes in user and password decoded), the same
 * with redis+sentinel:// and up to 8 comma-separated Sentinels (port
 * 26379 by default) followed by /name[/db], or
 * unix:///path/to/redis.sock[?db=N]. Returns MAPQ_EINVAL with err set;
 * err quotes s with its password (and anything that may be one in a
 * mistyped URL) overwritten by '*', so it is safe to print.
 */
enum mapq_err mapq_redis_url_parse(const char *s, struct mapq_redis_url *url,
                                   char *err);

/*
 * Writes a printable form without user or password into buf (len bytes,
 * truncated and always terminated): redis://host:port/db,
 * redis+sentinel://host:port,.../name/db or unix:///path?db=N, the
 * database always shown.
 */
void mapq_redis_url_format(const struct mapq_redis_url *url, char *buf,
                           size_t len);

/*
 * Overwrites the password of the URL s in place with '*', byte for byte
 * (the password as mapq_redis_url_parse() reads it), so that a process
 * can hide it in its own command line or environment once it is parsed.
 * s may be NULL or hold no password; anything that is not a redis:// or
 * redis+sentinel:// URL is left as it is.
 */
void mapq_redis_url_hide_password(char *s);

#endif
