/*
 * mapq_json_int.h - what the files of the mapq_json module share:
 * mapq_json.c (jansson trees both ways, and every rule of converting a
 * JSON value toward a type), mapq_json_conv.c (one value from its parse
 * events to msgpack, a list streamed element by element) and
 * mapq_json_read.c (JSON text read by yajl, checked, and its events given
 * to conversions). No other module includes it.
 *
 * Every string and tree a prototype takes is borrowed.
 */
#ifndef MAPQ_JSON_INT_H
#define MAPQ_JSON_INT_H

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_err.h"
#include "mapq_type.h"

/* msgpack-c's unpacker refuses values nested deeper than its fixed stack
 * (MSGPACK_EMBED_STACK_SIZE), so nothing deeper may be produced. */
#define MAPQ_JSON_MAX_DEPTH 32

#define MAPQ_JSON_PATH_LEN 256

/* Walk state of one conversion, either way. */
struct mapq_json_walk {
    char path[MAPQ_JSON_PATH_LEN]; /* "[1][\"key\"]" of the current element */
    int precision; /* digits needed so far for the floats (15..17) */
    size_t max;    /* the output buffer's cap, for messages */
    char *err;     /* MAPQ_ERR_LEN bytes: where failures are written */
};

/* Appends "[i]" to w's path; returns the old length, to restore. */
size_t mapq_json_walk_index(struct mapq_json_walk *w, uint32_t i);

/* Writes "<path>: <msg>" (msg alone at the top) to w->err; returns code. */
enum mapq_err mapq_json_walk_fail(struct mapq_json_walk *w, enum mapq_err code,
                                  const char *msg);

/* MAPQ_OK when msgpack-c's rc is 0; else the buffer is full: MAPQ_ETOOBIG,
 * "value over the size cap (N bytes)" at w's path. */
enum mapq_err mapq_json_packed(struct mapq_json_walk *w, int rc);

/*
 * Packs the tree j with pk, converted toward t (NULL: the natural
 * mapping): an integer where float is declared becomes a float, a string
 * where bytes is declared is decoded from base64. depth is j's nesting
 * level in the whole value (0 at the top); containers at
 * MAPQ_JSON_MAX_DEPTH are refused. Whether the result fits t is not
 * checked here (mapq_type_check() does). On failure returns MAPQ_EINVAL,
 * MAPQ_ETYPE (not base64) or MAPQ_ETOOBIG (pk's buffer is full), with w's
 * path and the reason in w->err; what was packed is left for the caller
 * to cut.
 */
enum mapq_err mapq_json_pack(json_t *j, const struct mapq_type *t,
                             msgpack_packer *pk, struct mapq_json_walk *w,
                             int depth);

/* Cuts out back to len bytes, undoing a partial append. */
void mapq_json_truncate(struct mapq_buf *out, size_t len);

/*
 * The conversion of one value (mapq_json_conv.c), fed the events of its
 * parse in text order. Its events build a tree on stack; a list at the
 * top is streamed instead, each element's tree packed after a header
 * at hpos that always counts the elements packed. The first conversion
 * error stops packing (stopped). Before one, the first element that does
 * not fit its type is kept in rc, and a conversion error after it still
 * wins: the order of errors is that of packing the whole value and then
 * checking it.
 */
struct mapq_json_conv {
    const struct mapq_type *type; /* NULL: the natural mapping */
    struct mapq_buf *out;         /* NULL: the value is only read */
    msgpack_packer pk;
    struct mapq_json_walk w;
    size_t before; /* out->len when the value started */
    bool started;  /* the value's first event came */
    size_t at;     /* offset of the value in the text */
    bool done;     /* the value has ended */
    /* a list at the top of the value */
    bool streaming;
    size_t hpos, hlen;              /* its header in out */
    size_t count;                   /* its elements so far */
    const struct mapq_type *etype;  /* elements are packed toward */
    const struct mapq_type *echeck; /* and checked against; NULL: not */
    bool misfit;                    /* type takes no list at all */
    /* a streamed list given away in pages (mapq_json_conv_pages()) */
    enum mapq_err (*page)(void *arg, const char *elems, size_t len,
                          uint32_t count, char *err);
    void *page_arg;
    uint32_t page_len;
    bool paged;       /* this value is such a list */
    size_t page_from; /* where the page being filled starts in out */
    uint32_t in_page; /* its elements so far */
    /* the tree being built: the value, or the current element */
    json_t **stack; /* open containers; stack[0] owns the tree */
    size_t depth, cap;
    char *key; /* the key awaiting its value (owned) */
    size_t klen;
    size_t tree_at; /* offset of the tree in the text */
    /* the outcome */
    enum mapq_err rc;
    bool stopped;
    size_t err_at; /* offset of the element (or value) rc is about */
    char msg[MAPQ_ERR_LEN];
};

/*
 * Starts c on a new value, converted toward type (borrowed; NULL: the
 * natural mapping) and appended to out (borrowed; NULL: the value is only
 * read, as JSON). c is zeroed memory or a conversion started before.
 */
void mapq_json_conv_start(struct mapq_json_conv *c,
                          const struct mapq_type *type, struct mapq_buf *out);

/*
 * Asks c (just started) to give a list at the top of its value away in
 * pages of page_len elements, when its type is a list type: each page's
 * elements, checked, without a list header, go to fn (arg borrowed) and
 * are then cut from out, so out never holds more than a page. The last
 * page may be short; an empty list makes none. An error fn returns (with
 * its message in err) stops the conversion with it. After the first
 * element that does not fit its type, pages are cut but not given.
 */
void mapq_json_conv_pages(struct mapq_json_conv *c, uint32_t page_len,
                          enum mapq_err (*fn)(void *arg, const char *elems,
                                              size_t len, uint32_t count,
                                              char *err),
                          void *arg);

/* The value's events; at is the offset of the token each comes from, kept
 * for the caller to place errors (c->at, c->err_at). A scalar's tree is
 * taken over. c->done turns true after the event that ends the value. */
void mapq_json_conv_scalar(struct mapq_json_conv *c, json_t *j, size_t at);
void mapq_json_conv_open(struct mapq_json_conv *c, bool array, size_t at);
void mapq_json_conv_close(struct mapq_json_conv *c);
/* A key of the innermost object (len bytes, UTF-8 without NUL, borrowed);
 * false when the object has it already. */
bool mapq_json_conv_key(struct mapq_json_conv *c, const char *key, size_t len);

/* The outcome of a value that has ended: MAPQ_OK, or the error with
 * c->msg saying why, at c->err_at, and out cut back as it was. */
enum mapq_err mapq_json_conv_finish(struct mapq_json_conv *c);

/* Undoes a value cut short (the JSON was bad): its tree and its bytes. */
void mapq_json_conv_abort(struct mapq_json_conv *c);

/* Frees what c holds; it may be started again. */
void mapq_json_conv_release(struct mapq_json_conv *c);

#endif
