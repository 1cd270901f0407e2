/*
 * mapq_redis_url.h - Redis URLs: redis://[user:password@]host[:port][/db]
 * (user and password %-escaped where needed, an IPv6 host in brackets)
 * and unix:///path/to/redis.sock[?db=N]; rediss:// is answered with how
 * to reach a TLS port.
 */
#ifndef MAPQ_REDIS_URL_H
#define MAPQ_REDIS_URL_H

#include <stddef.h>

#include "mapq_err.h"

struct mapq_redis_url {
    char host[256]; /* empty for unix sockets */
    int port;
    char path[256]; /* unix socket path, or empty */
    char user[128];
    char password[256];
    int db;
};

/*
 * Parses redis://[user:password@]host[:port][/db] (host a name, an IPv4
 * address or [IPv6]; %XX escapes in user and password decoded) or
 * unix:///path/to/redis.sock[?db=N]. Returns MAPQ_EINVAL with err set;
 * err quotes s with its password (and anything that may be one in a
 * mistyped URL) overwritten by '*', so it is safe to print.
 */
enum mapq_err mapq_redis_url_parse(const char *s, struct mapq_redis_url *url,
                                   char *err);

/*
 * Writes a printable form without user or password into buf (len bytes,
 * truncated and always terminated): redis://host:port/db or
 * unix:///path?db=N, the database always shown.
 */
void mapq_redis_url_format(const struct mapq_redis_url *url, char *buf,
                           size_t len);

/*
 * Overwrites the password of the URL s in place with '*', byte for byte
 * (the password as mapq_redis_url_parse() reads it), so that a process
 * can hide it in its own command line or environment once it is parsed.
 * s may be NULL or hold no password; anything that is not a redis:// URL
 * is left as it is.
 */
void mapq_redis_url_hide_password(char *s);

#endif
