/*
 * test_redis.c - redis URLs, argument vectors and the function library's
 * name and revision; connects to no server.
 */
#include "mapq_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "mapq_alloc.h"
#include "mapq_redis.h"

/* Parses s, asserting success. */
static struct mapq_redis_url
url_ok(const char *s)
{
    struct mapq_redis_url url;
    char err[MAPQ_ERR_LEN] = "";

    memset(&url, 0x55, sizeof(url));
    if (mapq_redis_url_parse(s, &url, err) != MAPQ_OK)
        fail_msg("'%s' was refused: %s", s, err);
    return url;
}

/* Asserts that s is refused with message tmpl, where %s stands for shown
 * (s as the message quotes it, its password hidden). */
static void
url_fails_shown(const char *s, const char *shown, const char *tmpl)
{
    struct mapq_redis_url url;
    char err[MAPQ_ERR_LEN] = "", want[MAPQ_ERR_LEN];
    const char *at = strstr(tmpl, "%s");

    assert_non_null(at);
    snprintf(want, sizeof(want), "%.*s%s%s", (int)(at - tmpl), tmpl, shown,
             at + 2);
    assert_int_equal(mapq_redis_url_parse(s, &url, err), MAPQ_EINVAL);
    assert_string_equal(err, want);
}

/* Asserts that s (holding nothing to hide) is refused with message tmpl,
 * where %s stands for s. */
static void
url_fails(const char *s, const char *tmpl)
{
    url_fails_shown(s, s, tmpl);
}

/* Asserts that url holds exactly these fields. */
static void
assert_url(const struct mapq_redis_url *url, const char *host, int port,
           const char *path, const char *user, const char *password, int db)
{
    assert_string_equal(url->host, host);
    assert_int_equal(url->port, port);
    assert_string_equal(url->path, path);
    assert_string_equal(url->user, user);
    assert_string_equal(url->password, password);
    assert_int_equal(url->db, db);
}

/* The library every process loads is named after the protocol that
 * --version prints: mapq<MAPQ_PROTOCOL>, its functions mapq<N>_*. */
static void
test_redis_library_named_after_protocol(void **state)
{
    char head[64], fn[64];

    (void)state;
    snprintf(head, sizeof(head), "#!lua name=mapq%d\n", MAPQ_PROTOCOL);
    snprintf(fn, sizeof(fn), "register_function('mapq%d_step'", MAPQ_PROTOCOL);
    assert_true(mapq_functions_lua_len > strlen(head));
    assert_memory_equal(mapq_functions_lua, head, strlen(head));
    assert_non_null(strstr(mapq_functions_lua, fn));
}

/* Every change of the library comes with a new revision: the text hashes
 * to the SHA-256 recorded with MAPQ_FUNCTIONS_REVISION, and the library
 * says that revision. When this fails after editing mapq_functions.lua,
 * raise REVISION there and MAPQ_FUNCTIONS_REVISION, and record the new
 * hash in MAPQ_FUNCTIONS_SHA256 (mapq_redis.h). */
static void
test_redis_library_revision_recorded(void **state)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;
    char hex[2 * EVP_MAX_MD_SIZE + 1], line[64];

    (void)state;
    assert_int_equal(EVP_Digest(mapq_functions_lua, mapq_functions_lua_len, md,
                                &mdlen, EVP_sha256(), NULL),
                     1);
    for (i = 0; i < mdlen; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(hex, MAPQ_FUNCTIONS_SHA256);
    snprintf(line, sizeof(line), "\nlocal REVISION = %d\n",
             MAPQ_FUNCTIONS_REVISION);
    assert_non_null(strstr(mapq_functions_lua, line));
}

/* ---- URLs --------------------------------------------------------------- */

static void
test_redis_url_defaults(void **state)
{
    struct mapq_redis_url url;

    (void)state;
    url = url_ok("redis://localhost");
    assert_url(&url, "localhost", 6379, "", "", "", 0);
    url = url_ok("redis://localhost/");
    assert_url(&url, "localhost", 6379, "", "", "", 0);
}

static void
test_redis_url_host_port_db(void **state)
{
    struct mapq_redis_url url;

    (void)state;
    url = url_ok("redis://10.0.0.5:6380/3");
    assert_url(&url, "10.0.0.5", 6380, "", "", "", 3);
    url = url_ok("redis://cache.example.org:1/0");
    assert_url(&url, "cache.example.org", 1, "", "", "", 0);
    url = url_ok("redis://h:65535/1048576");
    assert_url(&url, "h", 65535, "", "", "", 1 << 20);
    url = url_ok("redis://h/15");
    assert_url(&url, "h", 6379, "", "", "", 15);
}

static void
test_redis_url_user_and_password(void **state)
{
    struct mapq_redis_url url;

    (void)state;
    url = url_ok("redis://secret@h");
    assert_url(&url, "h", 6379, "", "", "secret", 0);
    url = url_ok("redis://:secret@h:7000");
    assert_url(&url, "h", 7000, "", "", "secret", 0);
    /* The first ':' separates user from password. */
    url = url_ok("redis://alice:s3:cr@h:7000/2");
    assert_url(&url, "h", 7000, "", "alice", "s3:cr", 2);
    url = url_ok("redis://alice:pw@h/4");
    assert_url(&url, "h", 6379, "", "alice", "pw", 4);
}

static void
test_redis_url_unix_socket(void **state)
{
    struct mapq_redis_url url;

    (void)state;
    url = url_ok("unix:///tmp/redis.sock");
    assert_url(&url, "", 6379, "/tmp/redis.sock", "", "", 0);
    url = url_ok("unix:///run/redis/redis-server.sock?db=5");
    assert_url(&url, "", 6379, "/run/redis/redis-server.sock", "", "", 5);
    url = url_ok("unix:///s?db=0");
    assert_url(&url, "", 6379, "/s", "", "", 0);
}

static void
test_redis_url_unix_rejected(void **state)
{
    static const char *const relative[] = {"unix://", "unix://redis.sock",
                                           "unix://?db=1", "unix://./r.sock"};
    static const char *const baddb[] = {
        "unix:///p?db=",       "unix:///p?db=x",  "unix:///p?foo=1",
        "unix:///p?db=-1",     "unix:///p?db=1x", "unix:///p?db=1048577",
        "unix:///p?db=1&db=2", "unix:///p?"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(relative) / sizeof(relative[0]); i++)
        url_fails(relative[i], "redis URL '%s' needs an absolute socket path");
    for (i = 0; i < sizeof(baddb) / sizeof(baddb[0]); i++)
        url_fails(baddb[i], "bad database in redis URL '%s'");
}

static void
test_redis_url_bad_port_rejected(void **state)
{
    /* A port that is not all digits is hidden in the message when the URL
     * has no '@': it may be a password whose host was left out. */
    static const char *const bad[][2] = {
        {"redis://h:0", "redis://h:0"},
        {"redis://h:65536", "redis://h:65536"},
        {"redis://h:abc", "redis://h:***"},
        {"redis://h:", "redis://h:"},
        {"redis://h:80x", "redis://h:***"},
        {"redis://h:-1", "redis://h:**"},
        {"redis://h:1:2", "redis://h:***"},
        {"redis://h:6379 ", "redis://h:*****"},
        {"redis://h:99999999999999999999", "redis://h:99999999999999999999"},
        {"redis://h:0x10/1", "redis://h:****/1"},
        {"redis://u:p@h:/1", "redis://u:*@h:/1"},
        {"redis://h:1.5", "redis://h:***"}};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        url_fails_shown(bad[i][0], bad[i][1], "bad port in redis URL '%s'");
}

static void
test_redis_url_bad_db_rejected(void **state)
{
    static const char *const bad[] = {
        "redis://h/x",   "redis://h/-1",  "redis://h/1048577",
        "redis://h/1/2", "redis://h/1x",  "redis://h:1/99999999999999999999",
        "redis://h//",   "redis://h/1.0", "redis://h/0x1"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        url_fails(bad[i], "bad database in redis URL '%s'");
}

static void
test_redis_url_wrong_scheme_rejected(void **state)
{
    static const char *const bad[] = {
        "",          "localhost:6379", "http://h", "redis:/h",
        "REDIS://h", " redis://h",     "unix:/p",  "//h"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        url_fails(bad[i], "redis URL '%s' must start with redis://, "
                          "redis+sentinel:// or unix://");
    url_fails_shown("redis:h:6379", "redis:******",
                    "redis URL '%s' must start with redis://, "
                    "redis+sentinel:// or unix://");
}

/* %-escapes in user and password, IPv6 literals, rediss:// answered. */
static void
test_redis_url_escapes_ipv6_and_tls(void **state)
{
    struct mapq_redis_url url;
    char buf[128];
    static const char *const bad_escape[] = {
        "redis://u:p%4@h", "redis://u:p%zz@h", "redis://u:%00@h",
        "redis://u%@h", "redis://:pw%2@h"};
    size_t i;

    (void)state;
    url = url_ok("redis://al%3Ace:p%40ss%2Fw%3ard@h:7000/1");
    assert_url(&url, "h", 7000, "", "al:ce", "p@ss/w:rd", 1);
    url = url_ok("redis://[::1]:6380/2");
    assert_url(&url, "::1", 6380, "", "", "", 2);
    mapq_redis_url_format(&url, buf, sizeof(buf));
    assert_string_equal(buf, "redis://[::1]:6380/2");
    url = url_ok("redis://u:pw@[fe80::1%25eth0]");
    assert_url(&url, "fe80::1%25eth0", 6379, "", "u", "pw", 0);
    url = url_ok("redis://[2001:db8::5]/3");
    assert_url(&url, "2001:db8::5", 6379, "", "", "", 3);
    for (i = 0; i < sizeof(bad_escape) / sizeof(bad_escape[0]); i++) {
        char err[MAPQ_ERR_LEN];

        assert_int_equal(mapq_redis_url_parse(bad_escape[i], &url, err),
                         MAPQ_EINVAL);
        assert_non_null(strstr(err, "bad %-escape in redis URL"));
    }
    /* Unclosed, it may be a mistyped password: shown hidden. */
    url_fails_shown("redis://[::1", "redis://[:**",
                    "bad host in redis URL '%s'");
    url_fails("redis://[::1]x:1", "bad host in redis URL '%s'");
    url_fails_shown("redis://[::1]:x/0", "redis://[::1]:*/0",
                    "bad port in redis URL '%s'");
    url_fails("rediss://h:6380",
              "redis URL '%s' asks for TLS, which mapq cannot speak itself "
              "(Debian 12's hiredis has no TLS): run a local TLS tunnel such "
              "as stunnel and give its redis:// address (docs/OPERATIONS.md, "
              "\"TLS\")");
}

static void
test_redis_url_no_host_rejected(void **state)
{
    static const char *const bad[] = {"redis://", "redis://:6379", "redis:///0",
                                      "redis://@:1/2"};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        url_fails(bad[i], "redis URL '%s' has no host");
    url_fails_shown("redis://u:p@", "redis://u:*@",
                    "redis URL '%s' has no host");
}

static void
test_redis_url_overlong_rejected(void **state)
{
    /* Each field holds one byte less than its array, for the NUL. */
    char part[300], s[400], shown[400];
    struct mapq_redis_url url;

    (void)state;
    memset(part, 'h', 255);
    part[255] = '\0';
    snprintf(s, sizeof(s), "redis://%s:1/2", part);
    url = url_ok(s);
    assert_int_equal(strlen(url.host), 255);
    snprintf(s, sizeof(s), "redis://%sh:1/2", part);
    url_fails(s, "host too long in redis URL '%s'");

    memset(part, 'p', 255);
    part[255] = '\0';
    snprintf(s, sizeof(s), "redis://%s@h", part);
    url = url_ok(s);
    assert_int_equal(strlen(url.password), 255);
    snprintf(s, sizeof(s), "redis://u:%sp@h", part);
    memset(part, '*', 255);
    snprintf(shown, sizeof(shown), "redis://u:%s*@h", part);
    url_fails_shown(s, shown, "password too long in redis URL '%s'");

    memset(part, 'u', 127);
    part[127] = '\0';
    snprintf(s, sizeof(s), "redis://%s:pw@h", part);
    url = url_ok(s);
    assert_int_equal(strlen(url.user), 127);
    snprintf(s, sizeof(s), "redis://%su:pw@h", part);
    snprintf(shown, sizeof(shown), "redis://%su:**@h", part);
    url_fails_shown(s, shown, "user too long in redis URL '%s'");

    memset(part, 's', 255);
    part[0] = '/';
    part[255] = '\0';
    snprintf(s, sizeof(s), "unix://%s", part);
    url = url_ok(s);
    assert_int_equal(strlen(url.path), 255);
    snprintf(s, sizeof(s), "unix://%ss?db=1", part);
    url_fails(s, "path too long in redis URL '%s'");
}

static void
test_redis_url_huge_input_message_bounded(void **state)
{
    size_t n = 20000;
    char *s = mapq_xmalloc(n + 1);
    struct mapq_redis_url url;
    char err[MAPQ_ERR_LEN + 16];
    enum mapq_err rc;

    (void)state;
    memcpy(s, "redis://", 8);
    memset(s + 8, 'h', n - 8);
    s[n] = '\0';
    memset(err, '#', sizeof(err));
    rc = mapq_redis_url_parse(s, &url, err);
    free(s);
    assert_int_equal(rc, MAPQ_EINVAL);
    assert_int_equal(strlen(err), MAPQ_ERR_LEN - 1);
    assert_memory_equal(err, "host too long in redis URL 'redis://hhh", 39);
    assert_int_equal(err[MAPQ_ERR_LEN], '#');
}

static void
test_redis_url_reparse_resets_fields(void **state)
{
    struct mapq_redis_url url;
    char err[MAPQ_ERR_LEN];

    (void)state;
    assert_int_equal(
        mapq_redis_url_parse("redis://alice:pw@h:7000/3", &url, err), MAPQ_OK);
    assert_int_equal(mapq_redis_url_parse("redis://g", &url, err), MAPQ_OK);
    assert_url(&url, "g", 6379, "", "", "", 0);
    assert_int_equal(mapq_redis_url_parse("unix:///s", &url, err), MAPQ_OK);
    assert_url(&url, "", 6379, "/s", "", "", 0);
}

static void
test_redis_url_format(void **state)
{
    struct mapq_redis_url url;
    char buf[128];

    (void)state;
    url = url_ok("redis://alice:hunter2@cache:6380/3");
    mapq_redis_url_format(&url, buf, sizeof(buf));
    assert_string_equal(buf, "redis://cache:6380/3");
    assert_null(strstr(buf, "hunter2"));
    url = url_ok("redis://h");
    mapq_redis_url_format(&url, buf, sizeof(buf));
    assert_string_equal(buf, "redis://h:6379/0");
    url = url_ok("unix:///tmp/redis.sock");
    mapq_redis_url_format(&url, buf, sizeof(buf));
    assert_string_equal(buf, "unix:///tmp/redis.sock?db=0");
    /* Truncated to the buffer, always terminated. */
    memset(buf, '#', sizeof(buf));
    url = url_ok("redis://h");
    mapq_redis_url_format(&url, buf, 8);
    assert_string_equal(buf, "redis:/");
    assert_int_equal(buf[8], '#');
}

/* ---- argument vectors --------------------------------------------------- */

static int
argv_setup(void **state)
{
    struct mapq_argv *a = mapq_xmalloc(sizeof(*a));

    mapq_argv_init(a);
    *state = a;
    return 0;
}

static int
argv_teardown(void **state)
{
    struct mapq_argv *a = *state;

    mapq_argv_release(a);
    free(a);
    return 0;
}

/* Asserts that argument i of a is the n bytes at want. */
static void
assert_arg(const struct mapq_argv *a, int i, const void *want, size_t n)
{
    assert_true(i < a->argc);
    assert_int_equal(a->lens[i], n);
    assert_memory_equal(a->argv[i], want, n);
}

static void
test_redis_argv_add_copies(void **state)
{
    struct mapq_argv *a = *state;
    char src[] = "FCALL";
    static const char bin[] = "a\0b\xff";

    assert_int_equal(a->argc, 0);
    mapq_argv_add(a, src);
    mapq_argv_addlen(a, bin, 4);
    mapq_argv_addlen(a, "", 0);
    mapq_argv_addf(a, "%s:%d:%llu", "k", -7, 18446744073709551615ull);
    /* The vector holds copies, not the caller's buffers. */
    memcpy(src, "XXXXX", 5);
    assert_int_equal(a->argc, 4);
    assert_arg(a, 0, "FCALL", 5);
    assert_arg(a, 1, bin, 4);
    assert_int_equal(a->lens[2], 0);
    assert_non_null(a->argv[2]);
    assert_arg(a, 3, "k:-7:18446744073709551615", 25);
    assert_ptr_not_equal(a->argv[0], src);
}

static void
test_redis_argv_grows(void **state)
{
    struct mapq_argv *a = *state;
    char want[32];
    int i;

    for (i = 0; i < 1000; i++)
        mapq_argv_addf(a, "arg%d", i);
    assert_int_equal(a->argc, 1000);
    assert_true(a->cap >= 1000);
    for (i = 0; i < 1000; i++) {
        snprintf(want, sizeof(want), "arg%d", i);
        assert_arg(a, i, want, strlen(want));
    }
}

static void
test_redis_argv_reset_and_release_reuse(void **state)
{
    struct mapq_argv *a = *state;
    int i;

    for (i = 0; i < 20; i++)
        mapq_argv_add(a, "x");
    mapq_argv_reset(a);
    assert_int_equal(a->argc, 0);
    assert_true(a->cap >= 20);
    mapq_argv_add(a, "again");
    assert_int_equal(a->argc, 1);
    assert_arg(a, 0, "again", 5);
    /* Release leaves an empty vector that may be used again. */
    mapq_argv_release(a);
    assert_int_equal(a->argc, 0);
    assert_int_equal(a->cap, 0);
    assert_null(a->argv);
    mapq_argv_add(a, "third");
    assert_arg(a, 0, "third", 5);
}

/*
 * Port and db are decimal digits only: a sign or leading blanks are
 * refused ("redis://h:+80", "redis://h: 80", "redis://h/+1", "redis://h/ 1",
 * "unix:///p?db=+1").
 */
static void
test_redis_url_sign_and_blank_rejected(void **state)
{
    (void)state;
    url_fails_shown("redis://h:+80", "redis://h:***",
                    "bad port in redis URL '%s'");
    url_fails_shown("redis://h: 80", "redis://h:***",
                    "bad port in redis URL '%s'");
    url_fails("redis://h/+1", "bad database in redis URL '%s'");
    url_fails("redis://h/ 1", "bad database in redis URL '%s'");
    url_fails("unix:///p?db=+1", "bad database in redis URL '%s'");
}

/* A host holding '@' is refused: which '@' ends the password is unclear. */
static void
test_redis_url_at_in_host_rejected(void **state)
{
    /* The message hides all before the last '@', the password possibly
     * ending there. */
    static const char *const bad[][2] = {
        {"redis://a@b@h", "redis://***@h"},
        {"redis://u:p@h@x:1/2", "redis://u:***@x:1/2"},
        {"redis://@@h", "redis://*@h"},
        {"redis://p@h@", "redis://***@"}};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        url_fails_shown(bad[i][0], bad[i][1], "bad host in redis URL '%s'");
    /* One '@' still separates the password, and '@' after the host's '/'
     * is part of the database field, which then fails as a number. */
    url_fails_shown("redis://p@h/1@", "redis://*****@",
                    "bad database in redis URL '%s'");
}

/*
 * A unix URL formats with its database as "?db=N", the way the parser
 * spells it, just as a redis:// URL always shows "/db"; the result parses
 * back to the same fields.
 */
static void
test_redis_url_format_unix_db(void **state)
{
    static const char *const urls[] = {"unix:///run/redis.sock?db=5",
                                       "unix:///s?db=1048576",
                                       "unix:///s?db=0"};
    struct mapq_redis_url url, again;
    char buf[300];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(urls) / sizeof(urls[0]); i++) {
        url = url_ok(urls[i]);
        mapq_redis_url_format(&url, buf, sizeof(buf));
        assert_string_equal(buf, urls[i]);
        again = url_ok(buf);
        assert_url(&again, "", 6379, url.path, "", "", url.db);
    }
    url = url_ok("unix:///s");
    mapq_redis_url_format(&url, buf, sizeof(buf));
    assert_string_equal(buf, "unix:///s?db=0");
}

/*
 * Every argument is also NUL-terminated just past its length, binary ones
 * included, so that a command's name (argv[0]) can be printed as a string.
 */
static void
test_redis_argv_args_terminated(void **state)
{
    struct mapq_argv *a = *state;
    static const char bin[] = {'x', '\0', 'y', 'z'};
    char big[600];
    int i;

    memset(big, 'L', sizeof(big));
    mapq_argv_add(a, "FUNCTION");
    mapq_argv_addlen(a, "LOADX", 4); /* a prefix of a longer buffer */
    mapq_argv_addlen(a, bin, sizeof(bin));
    mapq_argv_addlen(a, big, sizeof(big));
    mapq_argv_addlen(a, "", 0);
    for (i = 0; i < a->argc; i++)
        assert_int_equal(a->argv[i][a->lens[i]], '\0');
    assert_string_equal(a->argv[0], "FUNCTION");
    assert_string_equal(a->argv[1], "LOAD");
}

/* Integers are added in decimal, as printf("%lld") writes them, at both
 * ends of their range. */
static void
test_redis_argv_addint_decimal(void **state)
{
    struct mapq_argv *a = *state;
    static const int64_t v[] = {0, 7, -1, 10, 1234567890, INT64_MAX, INT64_MIN};
    char want[32], digits[MAPQ_ARGV_DIGITS + 1];
    size_t i, n;

    for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        mapq_argv_addint(a, v[i]);
        snprintf(want, sizeof(want), "%lld", (long long)v[i]);
        assert_int_equal(a->lens[i], strlen(want));
        assert_string_equal(a->argv[i], want);
    }
    n = mapq_argv_digits(digits, UINT64_MAX);
    digits[n] = '\0';
    assert_string_equal(digits, "18446744073709551615");
}

/* Asserts that mapq_argv_resp() makes the bytes hiredis's own formatter
 * makes for the same arguments. */
static void
assert_resp_as_hiredis(int argc, const char **argv, const size_t *lens)
{
    char *want = NULL, *got;
    int wlen = redisFormatCommandArgv(&want, argc, argv, lens);
    size_t len;

    assert_true(wlen > 0);
    got = mapq_argv_resp(argc, argv, lens, &len);
    assert_int_equal(len, (size_t)wlen);
    assert_memory_equal(got, want, len);
    /* hiredis looks one byte past a command for the next argument */
    assert_int_equal(got[len], '\0');
    free(got);
    redisFreeCommand(want);
}

/*
 * A command goes to Redis as the same bytes hiredis would send: binary
 * arguments (a NUL, CR LF), empty ones, one over ten thousand bytes, and
 * more than ten arguments, whose count takes two digits.
 */
static void
test_redis_argv_resp_as_hiredis(void **state)
{
    struct mapq_argv *a = *state;
    static const char bin[] = {'x', '\0', '\r', '\n', '$', '*', '\xff'};
    const char *plain[] = {"PING"};
    char *big = mapq_xmalloc(12345);
    int i;

    memset(big, 'b', 12345);
    assert_resp_as_hiredis(1, plain, NULL);
    mapq_argv_add(a, "FCALL");
    mapq_argv_addlen(a, bin, sizeof(bin));
    mapq_argv_addlen(a, "", 0);
    mapq_argv_addlen(a, big, 12345);
    for (i = 0; i < 9; i++)
        mapq_argv_addf(a, "%d", i * 1000);
    assert_int_equal(a->argc, 13);
    assert_resp_as_hiredis(a->argc, a->argv, a->lens);
    free(big);
}

/* Asserts that hiding the password of in gives want. */
static void
assert_hidden(const char *in, const char *want)
{
    char buf[256];

    snprintf(buf, sizeof(buf), "%s", in);
    mapq_redis_url_hide_password(buf);
    assert_string_equal(buf, want);
}

/*
 * The password is overwritten byte for byte where the parser finds it,
 * user, host, port and database staying readable; anything else is left
 * alone.
 */
static void
test_redis_url_hide_password(void **state)
{
    struct mapq_redis_url url;
    char buf[64];

    (void)state;
    assert_hidden("redis://:secret@h:1/2", "redis://:******@h:1/2");
    assert_hidden("redis://alice:pw@h", "redis://alice:**@h");
    assert_hidden("redis://onlypw@h:6379", "redis://******@h:6379");
    assert_hidden("redis://u:p:w@h", "redis://u:***@h");
    assert_hidden("redis://:@h", "redis://:@h");
    assert_hidden("redis://h:1/2", "redis://h:1/2");
    assert_hidden("redis://h/1@x", "redis://h/1@x");
    assert_hidden("unix:///tmp/r.sock?db=1", "unix:///tmp/r.sock?db=1");
    assert_hidden("--redis=x", "--redis=x");
    assert_hidden("", "");
    mapq_redis_url_hide_password(NULL);
    /* What is hidden is exactly what the parser took as the password. */
    snprintf(buf, sizeof(buf), "redis://bob:p:4@h:7/1");
    url = url_ok(buf);
    mapq_redis_url_hide_password(buf);
    assert_string_equal(buf, "redis://bob:***@h:7/1");
    assert_int_equal(strlen(url.password), 3);
}

/*
 * No refused URL puts its password in the message, whichever check
 * refuses it, the password ending at the first '@' or the last, with or
 * without a user, and whatever follows it.
 */
static void
test_redis_url_error_hides_password(void **state)
{
    static const char *const bad[][2] = {
        {"redis://:secret@host:notaport", "redis://:******@host:notaport"},
        {"redis://:secret@", "redis://:******@"},
        {"redis://u:secret@h:99999", "redis://u:******@h:99999"},
        {"redis://u:secret@h:1/x", "redis://u:******@h:1/x"},
        {"redis://secret@h:0", "redis://******@h:0"},
        {"redis://u:secret@@h", "redis://u:*******@h"},
        {"redis://u:sec@ret@h", "redis://u:*******@h"},
        {"redis://:sec/ret@h", "redis://:*******@h"},
        {"redis://:secret", "redis://:******"},
        {"redis://u:secret", "redis://u:******"},
        {"redis://u:secret/0", "redis://u:******/0"},
        {"rediss://u:secret@h", "rediss://u:******@h"},
        {"http://:secret@h", "http://:******@h"},
        {"redis:/:secret@h", "redis:********@h"},
        {"unix://:secret@/tmp/r.sock", "unix://:******@/tmp/r.sock"},
        {":secret@h:1", ":******@h:1"}};
    struct mapq_redis_url url;
    char err[MAPQ_ERR_LEN];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(err, 0, sizeof(err));
        assert_int_equal(mapq_redis_url_parse(bad[i][0], &url, err),
                         MAPQ_EINVAL);
        if (strstr(err, "secret") != NULL || strstr(err, "ret@") != NULL)
            fail_msg("'%s' gave '%s'", bad[i][0], err);
        if (strstr(err, bad[i][1]) == NULL)
            fail_msg("'%s' gave '%s', not quoting '%s'", bad[i][0], err,
                     bad[i][1]);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define A(name) cmocka_unit_test_setup_teardown(name, argv_setup, argv_teardown)
        cmocka_unit_test(test_redis_library_named_after_protocol),
        cmocka_unit_test(test_redis_library_revision_recorded),
        cmocka_unit_test(test_redis_url_defaults),
        cmocka_unit_test(test_redis_url_host_port_db),
        cmocka_unit_test(test_redis_url_user_and_password),
        cmocka_unit_test(test_redis_url_unix_socket),
        cmocka_unit_test(test_redis_url_unix_rejected),
        cmocka_unit_test(test_redis_url_bad_port_rejected),
        cmocka_unit_test(test_redis_url_bad_db_rejected),
        cmocka_unit_test(test_redis_url_wrong_scheme_rejected),
        cmocka_unit_test(test_redis_url_escapes_ipv6_and_tls),
        cmocka_unit_test(test_redis_url_no_host_rejected),
        cmocka_unit_test(test_redis_url_overlong_rejected),
        cmocka_unit_test(test_redis_url_huge_input_message_bounded),
        cmocka_unit_test(test_redis_url_reparse_resets_fields),
        cmocka_unit_test(test_redis_url_format),
        A(test_redis_argv_add_copies),
        A(test_redis_argv_grows),
        A(test_redis_argv_reset_and_release_reuse),
        cmocka_unit_test(test_redis_url_sign_and_blank_rejected),
        cmocka_unit_test(test_redis_url_at_in_host_rejected),
        cmocka_unit_test(test_redis_url_format_unix_db),
        A(test_redis_argv_args_terminated),
        A(test_redis_argv_resp_as_hiredis),
        A(test_redis_argv_addint_decimal),
        cmocka_unit_test(test_redis_url_hide_password),
        cmocka_unit_test(test_redis_url_error_hides_password),
#undef A
    };

    return cmocka_run_group_tests_name("redis", tests, NULL, NULL);
}
