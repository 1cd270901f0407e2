/*
 * mapq_reply.c - the reply cap of every Redis connection, and deep copies
 * of replies.
 */
#include "mapq_reply.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"

/*
 * The most elements one reply may hold. hiredis allocates an array for the
 * count a reply declares before reading any element (16 GiB for
 * "*2147483647"), and this version has no limit of its own. mapq's largest
 * replies (a batch of HMGET, a claim, a scan) are far below.
 */
#define REPLY_MAX_ELEMENTS (1 << 24)

/* hiredis's own reply functions, and the same with createArray capped: a
 * dispatch table set once, never state. */
static redisReplyObjectFunctions *hiredis_fns;
static redisReplyObjectFunctions capped_fns;

static void *
capped_array(const redisReadTask *task, int elements)
{
    char *why = task->privdata;

    if (elements > REPLY_MAX_ELEMENTS) {
        if (why != NULL)
            snprintf(why, MAPQ_REPLY_FAULT_LEN,
                     "redis sent a reply of %d elements, more than the %d "
                     "mapq reads",
                     elements, REPLY_MAX_ELEMENTS);
        return NULL; /* hiredis: a reader error, the connection ends */
    }
    return hiredis_fns->createArray(task, elements);
}

void
mapq_reply_cap(redisReader *reader, char *why)
{
    if (hiredis_fns == NULL) {
        hiredis_fns = reader->fn;
        capped_fns = *hiredis_fns;
        capped_fns.createArray = capped_array;
    }
    reader->fn = &capped_fns;
    reader->privdata = why;
}

redisReply *
mapq_reply_dup(const redisReply *r)
{
    /* hiredis frees a reply's parts with free(): they come from malloc. */
    redisReply *c = mapq_xcalloc(1, sizeof(*c));
    size_t i;

    c->type = r->type;
    c->integer = r->integer;
    c->len = r->len;
    if (r->str != NULL) {
        c->str = mapq_xmalloc(r->len + 1);
        memcpy(c->str, r->str, r->len);
        c->str[r->len] = '\0';
    }
    if (r->type == REDIS_REPLY_ARRAY && r->element != NULL) {
        c->elements = r->elements;
        c->element =
            mapq_xcalloc(r->elements ? r->elements : 1, sizeof(*c->element));
        for (i = 0; i < r->elements; i++)
            c->element[i] = mapq_reply_dup(r->element[i]);
    }
    return c;
}
