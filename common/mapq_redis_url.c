/*
 * mapq_redis_url.c - Redis URLs: parsing redis://, redis+sentinel:// and
 * unix:// URLs, the printable form without secrets, and hiding a password
 * in place.
 *
 * Pure: no I/O, no logging. Every error quotes the URL with anything that
 * may be a password overwritten.
 */
#include "mapq_redis_url.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_hex.h"

/*
 * Writes s into buf (len bytes, truncated, terminated) with whatever may be
 * a password overwritten by '*', byte for byte, so that an error message
 * can quote a URL the parser refused. Wider than what the parser takes as
 * the password, since a refused URL may be mistyped: all of the part
 * before the last '@' but a user (what precedes a ':' that comes before
 * every '@'); and, with no '@', a port that is not all digits, as in
 * "redis://user:password" without its host.
 */
static void
show_url(const char *s, char *buf, size_t len)
{
    const char *a = strstr(s, "://"), *at, *colon, *end;
    size_t n = strlen(s), from = 0, to = 0;

    a = a ? a + 3 : s;
    at = strrchr(a, '@');
    if (at != NULL) {
        /* A user is what comes before a ':' that precedes every '@'. */
        colon = memchr(a, ':', strcspn(a, "@"));
        from = (size_t)((colon ? colon + 1 : a) - s);
        to = (size_t)(at - s);
    } else {
        const char *h = a; /* past an IPv6 literal's brackets */

        end = a + strcspn(a, "/?,");
        if (*a == '[' && memchr(a, ']', (size_t)(end - a)) != NULL)
            h = (const char *)memchr(a, ']', (size_t)(end - a)) + 1;
        colon = memchr(h, ':', (size_t)(end - h));
        if (colon != NULL &&
            strspn(colon + 1, "0123456789") != (size_t)(end - colon - 1)) {
            from = (size_t)(colon + 1 - s);
            to = (size_t)(end - s);
        }
    }
    if (len == 0)
        return;
    if (n >= len)
        n = len - 1;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if (to > n)
        to = n;
    if (from < to)
        memset(buf + from, '*', to - from);
}

/* Sets err to "<before>redis URL '<s, password hidden>'<after>". */
static enum mapq_err
url_err(char *err, const char *s, const char *before, const char *after)
{
    char shown[MAPQ_ERR_LEN];

    show_url(s, shown, sizeof(shown));
    return mapq_err_set(err, MAPQ_EINVAL, "%sredis URL '%s'%s", before, shown,
                        after);
}

static enum mapq_err
copy_part(char *dst, size_t cap, const char *src, size_t n, const char *what,
          const char *url, char *err)
{
    char shown[MAPQ_ERR_LEN];

    if (n >= cap) {
        show_url(url, shown, sizeof(shown));
        return mapq_err_set(err, MAPQ_EINVAL, "%s too long in redis URL '%s'",
                            what, shown);
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return MAPQ_OK;
}

/* Parses n decimal digits (no sign, no blanks) as a number in [lo, hi]. */
static enum mapq_err
parse_int(const char *s, size_t n, int lo, int hi, int *out)
{
    char tmp[16], *end;
    long v;

    if (n == 0 || n >= sizeof(tmp))
        return MAPQ_EINVAL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    /* strtol alone would take a sign and leading blanks. */
    if (strspn(tmp, "0123456789") != n)
        return MAPQ_EINVAL;
    errno = 0;
    v = strtol(tmp, &end, 10);
    if (errno != 0 || *end != '\0' || v < lo || v > hi)
        return MAPQ_EINVAL;
    *out = (int)v;
    return MAPQ_OK;
}

static enum mapq_err
parse_unix(const char *s, struct mapq_redis_url *url, char *err)
{
    const char *path = s + strlen("unix://");
    const char *q = strchr(path, '?');
    size_t n = q ? (size_t)(q - path) : strlen(path);

    if (n == 0 || path[0] != '/')
        return url_err(err, s, "", " needs an absolute socket path");
    if (copy_part(url->path, sizeof(url->path), path, n, "path", s, err))
        return MAPQ_EINVAL;
    if (q != NULL) {
        if (strncmp(q, "?db=", 4) != 0 ||
            parse_int(q + 4, strlen(q + 4), 0, 1 << 20, &url->db) != MAPQ_OK)
            return url_err(err, s, "bad database in ", "");
    }
    return MAPQ_OK;
}

/* copy_part() with %XX escapes decoded (a '@', '/' or ':' in a password
 * is written %40, %2F, %3A); a bad escape or an escaped NUL is refused. */
static enum mapq_err
copy_decoded(char *dst, size_t cap, const char *src, size_t n, const char *what,
             const char *url, char *err)
{
    char buf[512];
    size_t i, o = 0;
    int hi, lo;

    for (i = 0; i < n && o < sizeof(buf); i++, o++) {
        buf[o] = src[i];
        if (src[i] != '%')
            continue;
        hi = i + 2 < n ? mapq_hex_digit(src[i + 1]) : -1;
        lo = i + 2 < n ? mapq_hex_digit(src[i + 2]) : -1;
        if (hi < 0 || lo < 0 || hi + lo == 0)
            return url_err(err, url, "bad %-escape in ", "");
        buf[o] = (char)(hi * 16 + lo);
        i += 2;
    }
    /* Past buf: longer than any part may be, as copy_part() says. */
    return copy_part(dst, cap, buf, i < n ? cap : o, what, url, err);
}

static enum mapq_err
parse_auth(const char *a, size_t n, struct mapq_redis_url *url, const char *s,
           char *err)
{
    const char *colon = memchr(a, ':', n);

    if (colon == NULL)
        return copy_decoded(url->password, sizeof(url->password), a, n,
                            "password", s, err);
    if (copy_decoded(url->user, sizeof(url->user), a, (size_t)(colon - a),
                     "user", s, err))
        return MAPQ_EINVAL;
    return copy_decoded(url->password, sizeof(url->password), colon + 1,
                        n - (size_t)(colon - a) - 1, "password", s, err);
}

/*
 * Parses a server, "host[:port]" or "[IPv6][:port]", from p to end into
 * host (cap bytes) and *port (left as it is without ":port"). s is the
 * whole URL, for errors.
 */
static enum mapq_err
parse_server(const char *p, const char *end, char *host, size_t cap, int *port,
             const char *s, char *err)
{
    const char *colon;

    if (p[0] == '[') {
        /* An IPv6 literal: redis://[::1]:6379/0. */
        const char *close = memchr(p, ']', (size_t)(end - p));

        if (close == NULL || (close + 1 < end && close[1] != ':'))
            return url_err(err, s, "bad host in ", "");
        if (copy_part(host, cap, p + 1, (size_t)(close - p - 1), "host", s,
                      err))
            return MAPQ_EINVAL;
        colon = close + 1 < end ? close + 1 : NULL;
    } else {
        colon = memchr(p, ':', (size_t)(end - p));
        if (copy_part(host, cap, p, (size_t)((colon ? colon : end) - p), "host",
                      s, err))
            return MAPQ_EINVAL;
    }
    if (host[0] == '\0')
        return url_err(err, s, "", " has no host");
    /* In "redis://a@b@h" no one can tell which '@' ends the password. */
    if (strchr(host, '@') != NULL)
        return url_err(err, s, "bad host in ", "");
    if (colon != NULL && parse_int(colon + 1, (size_t)(end - colon - 1), 1,
                                   65535, port) != MAPQ_OK)
        return url_err(err, s, "bad port in ", "");
    return MAPQ_OK;
}

/* Parses "/db" (or nothing, or "/") into url->db. */
static enum mapq_err
parse_db(const char *slash, struct mapq_redis_url *url, const char *s,
         char *err)
{
    if (slash != NULL && slash[1] != '\0' &&
        parse_int(slash + 1, strlen(slash + 1), 0, 1 << 20, &url->db) !=
            MAPQ_OK)
        return url_err(err, s, "bad database in ", "");
    return MAPQ_OK;
}

/*
 * Parses what follows the scheme up to the first '/': "[auth@]" into url
 * and returns where the servers begin in *p, or fails.
 */
static enum mapq_err
parse_userinfo(const char **p, const char *slash, struct mapq_redis_url *url,
               const char *s, char *err)
{
    const char *at = memchr(*p, '@', slash ? (size_t)(slash - *p) : strlen(*p));

    if (at == NULL)
        return MAPQ_OK;
    if (parse_auth(*p, (size_t)(at - *p), url, s, err) != MAPQ_OK)
        return MAPQ_EINVAL;
    *p = at + 1;
    return MAPQ_OK;
}

/* redis+sentinel://[auth@]host[:port][,host[:port]]...'/'name[/db]. */
static enum mapq_err
parse_sentinel(const char *s, struct mapq_redis_url *url, char *err)
{
    const char *p = s + strlen(MAPQ_SENTINEL_SCHEME), *slash, *end, *comma;
    const char *name, *db;
    struct mapq_redis_addr *a;

    slash = strchr(p, '/');
    if (parse_userinfo(&p, slash, url, s, err) != MAPQ_OK)
        return MAPQ_EINVAL;
    end = slash ? slash : p + strlen(p);
    while (p < end) {
        if (url->nsentinels == MAPQ_REDIS_SENTINELS_MAX)
            return url_err(err, s, "", " names more than 8 sentinels");
        comma = memchr(p, ',', (size_t)(end - p));
        a = &url->sentinels[url->nsentinels++];
        a->port = MAPQ_SENTINEL_PORT;
        if (parse_server(p, comma ? comma : end, a->host, sizeof(a->host),
                         &a->port, s, err) != MAPQ_OK)
            return MAPQ_EINVAL;
        p = comma ? comma + 1 : end;
        if (comma != NULL && p == end)
            return url_err(err, s, "", " has no host");
    }
    if (url->nsentinels == 0)
        return url_err(err, s, "", " has no host");
    name = slash ? slash + 1 : "";
    db = strchr(name, '/');
    if (copy_part(url->master, sizeof(url->master), name,
                  db ? (size_t)(db - name) : strlen(name), "primary name", s,
                  err))
        return MAPQ_EINVAL;
    if (url->master[0] == '\0')
        return url_err(err, s, "",
                       " names no primary: redis+sentinel://HOST[:PORT][,"
                       "HOST[:PORT]]/NAME[/DB]");
    return parse_db(db, url, s, err);
}

enum mapq_err
mapq_redis_url_parse(const char *s, struct mapq_redis_url *url, char *err)
{
    const char *p, *slash;

    memset(url, 0, sizeof(*url));
    url->port = 6379;
    if (strncmp(s, "unix://", 7) == 0)
        return parse_unix(s, url, err);
    if (strncmp(s, MAPQ_SENTINEL_SCHEME, strlen(MAPQ_SENTINEL_SCHEME)) == 0)
        return parse_sentinel(s, url, err);
    if (strncmp(s, "rediss://", 9) == 0)
        return url_err(err, s, "",
                       " asks for TLS, which mapq cannot speak itself "
                       "(Debian 12's hiredis has no TLS): run a local TLS "
                       "tunnel such as stunnel and give its redis:// "
                       "address (docs/OPERATIONS.md, \"TLS\")");
    if (strncmp(s, "redis://", 8) != 0)
        return url_err(err, s, "",
                       " must start with redis://, redis+sentinel:// or "
                       "unix://");
    p = s + 8;
    slash = strchr(p, '/');
    if (parse_userinfo(&p, slash, url, s, err) != MAPQ_OK ||
        parse_server(p, slash ? slash : p + strlen(p), url->host,
                     sizeof(url->host), &url->port, s, err) != MAPQ_OK)
        return MAPQ_EINVAL;
    return parse_db(slash, url, s, err);
}

/* Appends "host:port" ("[host]:port" for IPv6) at buf + *at. */
static void
format_server(const char *host, int port, char *buf, size_t len, size_t *at)
{
    int n;

    if (*at >= len)
        return;
    n = snprintf(buf + *at, len - *at,
                 strchr(host, ':') != NULL ? "[%s]:%d" : "%s:%d", host, port);
    *at = n < 0 ? len : *at + (size_t)n;
}

void
mapq_redis_url_format(const struct mapq_redis_url *url, char *buf, size_t len)
{
    size_t at = 0;
    int i, n;

    if (len == 0)
        return;
    if (url->master[0] != '\0') {
        n = snprintf(buf, len, "%s", MAPQ_SENTINEL_SCHEME);
        at = n < 0 ? len : (size_t)n;
        for (i = 0; i < url->nsentinels; i++) {
            if (i > 0 && at + 1 < len)
                buf[at++] = ',';
            format_server(url->sentinels[i].host, url->sentinels[i].port, buf,
                          len, &at);
        }
        if (at < len)
            snprintf(buf + at, len - at, "/%s/%d", url->master, url->db);
        buf[len - 1] = '\0';
    } else if (url->path[0] != '\0')
        snprintf(buf, len, "unix://%s?db=%d", url->path, url->db);
    else if (strchr(url->host, ':') != NULL)
        snprintf(buf, len, "redis://[%s]:%d/%d", url->host, url->port, url->db);
    else
        snprintf(buf, len, "redis://%s:%d/%d", url->host, url->port, url->db);
}

void
mapq_redis_url_hide_password(char *s)
{
    char *p, *slash, *at, *colon, *start;

    if (s != NULL && strncmp(s, "redis://", 8) == 0)
        p = s + 8;
    else if (s != NULL && strncmp(s, MAPQ_SENTINEL_SCHEME,
                                  strlen(MAPQ_SENTINEL_SCHEME)) == 0)
        p = s + strlen(MAPQ_SENTINEL_SCHEME);
    else
        return;
    slash = strchr(p, '/');
    at = memchr(p, '@', slash ? (size_t)(slash - p) : strlen(p));
    if (at == NULL)
        return;
    colon = memchr(p, ':', (size_t)(at - p));
    start = colon ? colon + 1 : p;
    memset(start, '*', (size_t)(at - start));
}
