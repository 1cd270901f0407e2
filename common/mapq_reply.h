/*
 * mapq_reply.h - hiredis replies: a cap on what one reply may declare, and
 * a deep copy of a reply (hiredis 0.14 frees an async reply after its
 * callback returns).
 */
#ifndef MAPQ_REPLY_H
#define MAPQ_REPLY_H

#include <hiredis/hiredis.h>

/* The size of the buffer mapq_reply_cap() writes its refusal into. */
#define MAPQ_REPLY_FAULT_LEN 300

/*
 * Makes reader refuse a reply that declares more elements than any reply
 * of mapq holds (a reader error, so the connection ends); why, when not
 * NULL, is a buffer of MAPQ_REPLY_FAULT_LEN bytes that then says so. The
 * buffer must outlive the reader.
 */
void mapq_reply_cap(redisReader *reader, char *why);

/* A deep copy of r that freeReplyObject() frees (caller owns). */
redisReply *mapq_reply_dup(const redisReply *r);

#endif
