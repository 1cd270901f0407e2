/*
 * mapq_redis_sync.c - the blocking connection of short-lived commands:
 * connecting (through Sentinel when the URL says so), its setup, and
 * where a password comes from.
 */
#include "mapq_redis.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "mapq_alloc.h"
#include "mapq_fs.h"
#include "mapq_redis_setup.h"
#include "mapq_reply.h"
#include "mapq_sentinel.h"

/* Runs one setup command; returns its reply (caller frees with
 * freeReplyObject()), or NULL with err set when there is none or it is
 * an error other than those ok_error accepts (may be NULL). */
static redisReply *
sync_setup(redisContext *c, const char *what, char *err,
           bool (*ok_error)(const redisReply *), const struct mapq_argv *cmd)
{
    redisReply *reply = redisCommandArgv(c, cmd->argc, cmd->argv, cmd->lens);
    char why[MAPQ_ERR_LEN];

    if (reply == NULL) {
        /* The reader says OOM for a reply over the cap, too. */
        mapq_err_set(err, MAPQ_EREDIS, "%s: %s", what,
                     c->err == REDIS_ERR_OOM
                         ? "cannot read redis's reply: too large, or out of "
                           "memory"
                         : c->errstr);
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR &&
        (ok_error == NULL || !ok_error(reply))) {
        mapq_redis_setup_reason(why, sizeof(why), what, reply->str, reply->len);
        mapq_err_set(err, MAPQ_EREDIS, "%s", why);
        freeReplyObject(reply);
        return NULL;
    }
    return reply;
}

/* Whether reply is an error that FCALL_RO mapq1_version may give during
 * setup: the function is missing (the library then gets loaded). */
static bool
version_missing(const redisReply *reply)
{
    int rev;

    return mapq_redis_setup_held(reply, &rev) == MAPQ_HELD_NOTHING;
}

/* FCALL_RO mapq1_version once more: *rev is the revision, 0 for a library
 * older than revisions. Returns the reply (caller frees), or NULL with why
 * set. */
static redisReply *
held_again(redisContext *c, int *rev, char *why)
{
    struct mapq_argv cmd;
    redisReply *reply;

    mapq_redis_setup_version(&cmd);
    reply = sync_setup(c, "FCALL_RO mapq1_version", why, version_missing, &cmd);
    mapq_argv_release(&cmd);
    if (reply != NULL &&
        mapq_redis_setup_held(reply, rev) != MAPQ_HELD_REVISION)
        *rev = 0;
    return reply;
}

/* Replaces a library of revision held that this process cannot use
 * (under MAPQ_FUNCTIONS_OLDEST). Returns 0, or -1 with why set when Redis
 * would not. */
static int
replace_unusable(redisContext *c, int held, char *why)
{
    struct mapq_argv load;
    redisReply *reply;
    char refused[MAPQ_ERR_LEN];

    mapq_redis_setup_load(&load, true);
    reply = sync_setup(c, "FUNCTION LOAD REPLACE", refused, NULL, &load);
    mapq_argv_release(&load);
    if (reply == NULL) {
        mapq_redis_unusable_text(held, refused, why, MAPQ_ERR_LEN);
        return -1;
    }
    freeReplyObject(reply);
    return 0;
}

/* The blocking setup: the commands, then FUNCTION LOAD when Redis has no
 * mapq1_version. Short-lived, this process uses whatever revision Redis
 * holds and never replaces it, unless it is older than it can use
 * (MAPQ_FUNCTIONS_OLDEST). Returns 0 or -1 with why set. */
static int
sync_setup_all(redisContext *c, const struct mapq_redis_url *url, char *why)
{
    struct mapq_argv cmds[MAPQ_SETUP_MAX], load;
    const char *names[MAPQ_SETUP_MAX];
    redisReply *reply = NULL;
    int n, i, rev = MAPQ_FUNCTIONS_REVISION, rc = 0;

    mapq_redis_setup_commands(url, cmds, names, &n);
    for (i = 0; i < n && rc == 0; i++) {
        reply = sync_setup(c, names[i], why,
                           i == n - 1 ? version_missing : NULL, &cmds[i]);
        if (reply == NULL)
            rc = -1;
        else if (strcmp(names[i], "ROLE") == 0 &&
                 !mapq_redis_setup_primary(reply, why, MAPQ_ERR_LEN))
            rc = -1;
        if (reply != NULL && (i < n - 1 || rc != 0)) {
            freeReplyObject(reply);
            reply = NULL;
        }
    }
    for (i = 0; i < n; i++)
        mapq_argv_release(&cmds[i]);
    if (rc != 0 || reply == NULL)
        return -1;
    if (mapq_redis_setup_held(reply, &rev) == MAPQ_HELD_NOTHING) {
        mapq_redis_setup_load(&load, false);
        freeReplyObject(reply);
        reply =
            sync_setup(c, "FUNCTION LOAD", why, mapq_redis_setup_exists, &load);
        rc = reply != NULL ? 0 : -1;
        mapq_argv_release(&load);
        if (reply != NULL && mapq_redis_setup_exists(reply)) {
            /* Another process loaded one meanwhile, or it is older than
             * revisions (revision 0): asked again which. */
            freeReplyObject(reply);
            reply = held_again(c, &rev, why);
            rc = reply != NULL ? 0 : -1;
        }
    }
    if (reply != NULL)
        freeReplyObject(reply);
    if (rc == 0 && rev < MAPQ_FUNCTIONS_OLDEST)
        rc = replace_unusable(c, rev, why);
    return rc;
}

enum mapq_err
mapq_redis_url_password(struct mapq_redis_url *url, const char *file, char *err)
{
    const char *env = getenv("MAPQ_REDIS_PASSWORD");
    struct mapq_buf b;
    enum mapq_err rc;
    size_t n;

    if (file == NULL) {
        if (url->password[0] == '\0' && env != NULL && *env != '\0')
            snprintf(url->password, sizeof(url->password), "%s", env);
        return MAPQ_OK;
    }
    mapq_buf_init(&b, sizeof(url->password) + 2);
    rc = mapq_fs_read_file(file, &b, err);
    if (rc == MAPQ_OK) {
        n = strcspn(b.data != NULL ? b.data : "", "\r\n");
        if (n == 0 || n >= sizeof(url->password))
            rc = mapq_err_set(err, MAPQ_EINVAL, "password file '%s' %s", file,
                              n == 0 ? "is empty" : "holds over 255 bytes");
        else {
            memcpy(url->password, b.data, n);
            url->password[n] = '\0';
        }
    } else if (rc == MAPQ_ENOENT || rc == MAPQ_ETOOBIG) {
        mapq_err_set(err, rc, "password file '%s': %s", file,
                     rc == MAPQ_ENOENT ? "no such file"
                                       : "over 255 bytes: not a password");
    }
    if (b.data != NULL)
        memset(b.data, 0, b.cap);
    mapq_buf_release(&b);
    return rc;
}

redisContext *
mapq_redis_connect_sync(const struct mapq_redis_url *url, int timeout_ms,
                        char *err)
{
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    char shown[300], why[MAPQ_ERR_LEN];
    struct mapq_redis_url found;
    redisContext *c;

    mapq_redis_url_format(url, shown, sizeof(shown));
    if (url->master[0] != '\0') {
        found = *url;
        if (mapq_sentinel_find_sync(&found, timeout_ms, why) != MAPQ_OK) {
            mapq_err_set(err, MAPQ_EREDIS, "cannot connect to redis '%s': %s",
                         shown, why);
            return NULL;
        }
        url = &found;
    }
    if (url->path[0] != '\0')
        c = redisConnectUnixWithTimeout(url->path, tv);
    else
        c = redisConnectWithTimeout(url->host, url->port, tv);
    if (c == NULL || c->err) {
        mapq_err_set(err, MAPQ_EREDIS, "cannot connect to redis '%s': %s",
                     shown, c ? c->errstr : "out of memory");
        redisFree(c);
        return NULL;
    }
    /* Not inherited by any process this one starts (a task). */
    fcntl(c->fd, F_SETFD, FD_CLOEXEC);
    mapq_reply_cap(c->reader, NULL);
    redisSetTimeout(c, tv);
    if (sync_setup_all(c, url, why) != 0) {
        mapq_err_set(err, MAPQ_EREDIS, "cannot use redis '%s': %s", shown, why);
        redisFree(c);
        return NULL;
    }
    return c;
}

enum mapq_err
mapq_redis_wait_sync(redisContext *c, const struct mapq_redis_url *url,
                     int timeout_ms, char *err)
{
    redisReply *reply;
    enum mapq_err rc = MAPQ_OK;

    if (url->durable <= 0)
        return MAPQ_OK;
    reply = redisCommand(c, "WAIT %d %d", url->durable, timeout_ms);
    if (reply == NULL)
        rc = mapq_err_set(err, MAPQ_EREDIS, "WAIT: %s", c->errstr);
    else if (reply->type != REDIS_REPLY_INTEGER)
        rc = mapq_err_set(err, MAPQ_EREDIS, "WAIT: %s",
                          reply->str != NULL ? reply->str : "bad reply");
    else if (reply->integer < url->durable)
        rc = mapq_err_set(err, MAPQ_EREDIS,
                          "WAIT: %lld of the %d replicas --durable asks for "
                          "confirmed the write within %d ms",
                          reply->integer, url->durable, timeout_ms);
    if (reply != NULL)
        freeReplyObject(reply);
    return rc;
}
