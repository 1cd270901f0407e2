/*
 * mapq_redis_setup.h - what a new Redis connection sends before it is
 * used, shared by the async connection (mapq_redis.c) and the blocking
 * one (mapq_redis_sync.c): AUTH or PING, SELECT, ROLE for Sentinel, and
 * the function library's revision, loaded when missing; and how their
 * replies read. Internal to those two files. Pure: no I/O.
 */
#ifndef MAPQ_REDIS_SETUP_H
#define MAPQ_REDIS_SETUP_H

#include <hiredis/hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#include "mapq_argv.h"
#include "mapq_redis_url.h"

/* The most setup commands: PING or AUTH, SELECT, ROLE, FCALL_RO
 * mapq1_version. */
#define MAPQ_SETUP_MAX 4

/* What the reply of FCALL_RO mapq1_version says. */
enum mapq_held {
    MAPQ_HELD_REVISION, /* a library of that revision */
    MAPQ_HELD_NOTHING,  /* no such function: no library, or one older
                           than revisions */
    MAPQ_HELD_REFUSED,  /* anything else: setup fails */
};

/*
 * Writes "what: reason" into out (cap bytes), reason being an error
 * reply's text (len bytes, not necessarily terminated) cut to one short
 * line: the echo of the arguments that Redis appends to an unknown
 * command ("..., with args beginning with: 'LOAD' '#!lua ...") is left
 * out, and line breaks become blanks.
 */
void mapq_redis_setup_reason(char *out, size_t cap, const char *what,
                             const char *text, size_t len);

/* Whether reply is FUNCTION LOAD's refusal of a library that Redis holds
 * already (loaded meanwhile by another process, or one older than
 * revisions, which has no mapq1_version). */
bool mapq_redis_setup_exists(const redisReply *reply);

/* What a reply of FCALL_RO mapq1_version says; *rev is set for
 * MAPQ_HELD_REVISION. */
enum mapq_held mapq_redis_setup_held(const redisReply *reply, int *rev);

/* Fills cmd with FCALL_RO mapq1_version. */
void mapq_redis_setup_version(struct mapq_argv *cmd);

/* Fills cmd with FUNCTION LOAD [REPLACE] of the library. */
void mapq_redis_setup_load(struct mapq_argv *cmd, bool replace);

/*
 * Whether reply, ROLE's, says the server is a primary; if not, writes why
 * (len bytes) for the setup to fail with.
 */
bool mapq_redis_setup_primary(const redisReply *reply, char *why, size_t len);

/*
 * Fills cmds (MAPQ_SETUP_MAX, each to be released by the caller) with the
 * setup commands for url (PING or AUTH, SELECT, ROLE for Sentinel,
 * FCALL_RO mapq1_version), names with what error messages call them
 * (static strings), and *ncmds with how many. The library is loaded after
 * them only when Redis does not hold it.
 */
void mapq_redis_setup_commands(const struct mapq_redis_url *url,
                               struct mapq_argv *cmds, const char **names,
                               int *ncmds);

#endif
