/*
 * mapq_json_conv.c - one JSON value from its parse events to msgpack,
 * converted toward a type, with a list at the top streamed.
 *
 * Owns struct mapq_json_conv (mapq_json_int.h): the events of one value
 * build a jansson tree, which mapq_json_pack() packs, so every conversion
 * rule stays in mapq_json.c. A list at the top is never built whole: each
 * element is built, packed and checked against the element type alone,
 * behind a list header that grows with the count (msgpack's 1, 3, then 5
 * bytes), so that memory is the output plus the largest element; or, when
 * the caller asks (mapq_json_conv_pages()), given away a page at a time
 * with no header, so that memory is one page. Never
 * sees the text: the reader (mapq_json_read.c) checks it and gives each
 * event the offset of its token, for messages.
 */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_json_int.h"
#include "mapq_value.h"

/* What a list or dict type built with a NULL elem holds. */
static const struct mapq_type any_type = {.kind = MAPQ_T_ANY};

/* Frees the tree being built, if any. */
static void
conv_drop(struct mapq_json_conv *c)
{
    if (c->depth > 0)
        json_decref(c->stack[0]);
    c->depth = 0;
    free(c->key);
    c->key = NULL;
}

void
mapq_json_conv_start(struct mapq_json_conv *c, const struct mapq_type *type,
                     struct mapq_buf *out)
{
    json_t **stack = c->stack;
    size_t cap = c->cap;

    conv_drop(c);
    memset(c, 0, sizeof(*c));
    c->stack = stack;
    c->cap = cap;
    c->type = type;
    c->out = out;
    c->w.precision = 15;
    c->w.err = c->msg;
    if (out != NULL) {
        c->before = out->len;
        c->w.max = out->max;
        mapq_value_packer_init(&c->pk, out);
    }
}

void
mapq_json_conv_abort(struct mapq_json_conv *c)
{
    conv_drop(c);
    if (c->out != NULL)
        mapq_json_truncate(c->out, c->before);
}

void
mapq_json_conv_release(struct mapq_json_conv *c)
{
    conv_drop(c);
    free(c->stack);
    c->stack = NULL;
}

void
mapq_json_conv_pages(struct mapq_json_conv *c, uint32_t page_len,
                     enum mapq_err (*fn)(void *arg, const char *elems,
                                         size_t len, uint32_t count, char *err),
                     void *arg)
{
    mapq_assert(page_len > 0 && !c->started);
    c->page = fn;
    c->page_arg = arg;
    c->page_len = page_len;
}

enum mapq_err
mapq_json_conv_finish(struct mapq_json_conv *c)
{
    if (c->rc != MAPQ_OK && c->out != NULL)
        mapq_json_truncate(c->out, c->before);
    return c->rc;
}

/* A conversion error, its message in c->msg: nothing more is packed. */
static void
conv_stop(struct mapq_json_conv *c, enum mapq_err rc, size_t at)
{
    c->rc = rc;
    c->stopped = true;
    c->err_at = at;
}

/* A list header being made: at most 5 bytes. */
struct header {
    char b[8];
    size_t n;
};

static int
header_write(void *data, const char *buf, size_t len)
{
    struct header *h = data;

    if (len > sizeof(h->b) - h->n)
        return -1;
    memcpy(h->b + h->n, buf, len);
    h->n += len;
    return 0;
}

/* Bytes of msgpack's header for a list of n elements. */
static size_t
header_len(size_t n)
{
    return n < 16 ? 1 : n < 65536 ? 3 : 5;
}

/* Makes the list header say n elements, moving the elements when it grows;
 * MAPQ_ETOOBIG when out cannot grow. */
static enum mapq_err
put_header(struct mapq_json_conv *c, size_t n)
{
    struct mapq_buf *out = c->out;
    size_t body = c->hpos + c->hlen, end = out->len;
    struct header h = {.n = 0};
    msgpack_packer pk;
    int rc;

    msgpack_packer_init(&pk, &h, header_write);
    rc = msgpack_pack_array(&pk, n);
    mapq_assert(rc == 0);
    if (h.n > c->hlen) {
        if (mapq_buf_append(out, h.b, h.n - c->hlen) != MAPQ_OK)
            return mapq_json_packed(&c->w, -1);
        memmove(out->data + c->hpos + h.n, out->data + body, end - body);
    }
    memcpy(out->data + c->hpos, h.b, h.n);
    c->hlen = h.n;
    return MAPQ_OK;
}

/* A list at the top of the value begins: an empty list so far. */
static void
list_start(struct mapq_json_conv *c)
{
    const struct mapq_type *t = c->type;
    enum mapq_err rc;

    c->streaming = true;
    if (t != NULL && t->kind == MAPQ_T_LIST) {
        c->etype = t->elem;
        c->echeck = t->elem != NULL ? t->elem : &any_type;
    } else if (t != NULL && t->kind == MAPQ_T_ANY) {
        c->echeck = &any_type;
    } else if (t != NULL) {
        c->misfit = true;
    }
    if (c->out == NULL)
        return;
    if (c->page != NULL && t != NULL && t->kind == MAPQ_T_LIST) {
        /* Pages carry no header: the list is never whole here. */
        c->paged = true;
        c->page_from = c->out->len;
        return;
    }
    c->hpos = c->out->len;
    rc = mapq_json_packed(&c->w, msgpack_pack_array(&c->pk, 0));
    if (rc != MAPQ_OK)
        conv_stop(c, rc, c->at);
    c->hlen = 1;
}

/* Puts the element's index before the message in c->msg: "[3]: ...", or
 * "[3][\"k\"]: ..." when it names a place inside the element. Elements are
 * packed from an empty path, so that no index is printed unless needed. */
static void
name_element(struct mapq_json_conv *c)
{
    char inner[MAPQ_ERR_LEN];

    memcpy(inner, c->msg, sizeof(inner));
    mapq_err_set(c->msg, c->rc, "[%zu]%s%s", c->count,
                 inner[0] == '[' ? "" : ": ", inner);
}

/* Checks the element just packed at out[from..] against its type. */
static enum mapq_err
check_element(struct mapq_json_conv *c, size_t from)
{
    msgpack_unpacked u;
    enum mapq_err rc;

    msgpack_unpacked_init(&u);
    rc = mapq_value_unpack(c->out->data + from, c->out->len - from, &u, c->msg);
    if (rc == MAPQ_OK)
        rc = mapq_type_check(c->echeck, &u.data, c->msg);
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* The page being filled is full, or the list ended: it is given away
 * (unless an element did not fit), then cut from out. */
static void
page_flush(struct mapq_json_conv *c)
{
    enum mapq_err rc = MAPQ_OK;

    if (c->in_page > 0 && c->rc == MAPQ_OK && !c->stopped)
        rc = c->page(c->page_arg, c->out->data + c->page_from,
                     c->out->len - c->page_from, c->in_page, c->msg);
    mapq_json_truncate(c->out, c->page_from);
    c->in_page = 0;
    if (rc != MAPQ_OK)
        conv_stop(c, rc, c->tree_at);
}

/* Packs element c->count of the streamed list, then checks it. */
static void
element_done(struct mapq_json_conv *c, json_t *j)
{
    size_t from;
    enum mapq_err rc;

    if (c->out == NULL || c->stopped)
        goto out_count;
    if (c->count >= UINT32_MAX && !c->paged)
        rc = mapq_json_walk_fail(&c->w, MAPQ_ETOOBIG, "list too long");
    else if (!c->paged && header_len(c->count + 1) != c->hlen)
        rc = put_header(c, c->count + 1);
    else
        rc = MAPQ_OK;
    from = c->out->len;
    if (rc == MAPQ_OK)
        rc = mapq_json_pack(j, c->etype, &c->pk, &c->w, 1);
    if (rc != MAPQ_OK) {
        conv_stop(c, rc, c->tree_at);
        name_element(c);
        goto out_count;
    }
    if (c->echeck != NULL && c->rc == MAPQ_OK) {
        c->rc = check_element(c, from);
        c->err_at = c->tree_at;
        if (c->rc != MAPQ_OK)
            name_element(c);
    }
    if (c->paged && ++c->in_page == c->page_len)
        page_flush(c);
out_count:
    c->count++;
}

/* The streamed list ends: its header gets the count, and a type that takes
 * no list is reported now, as it was after packing the whole value. */
static void
list_done(struct mapq_json_conv *c)
{
    msgpack_object empty;
    enum mapq_err rc;

    c->done = true;
    if (c->out == NULL || c->stopped)
        return;
    if (c->paged) {
        page_flush(c);
        return;
    }
    rc = put_header(c, c->count);
    mapq_assert(rc == MAPQ_OK); /* the same length as the last one */
    if (c->misfit && c->rc == MAPQ_OK) {
        memset(&empty, 0, sizeof(empty));
        empty.type = MSGPACK_OBJECT_ARRAY;
        c->rc = mapq_type_check(c->type, &empty, c->msg);
        c->err_at = c->at;
    }
}

/* Checks the whole value packed at out[before..] against c->type. */
static enum mapq_err
check_value(struct mapq_json_conv *c)
{
    msgpack_unpacked u;
    enum mapq_err rc;

    msgpack_unpacked_init(&u);
    rc = mapq_value_unpack(c->out->data + c->before, c->out->len - c->before,
                           &u, c->msg);
    if (rc == MAPQ_OK)
        rc = mapq_type_check(c->type, &u.data, c->msg);
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* A value that is no list has been built: packed, then checked. */
static void
value_done(struct mapq_json_conv *c, json_t *j)
{
    enum mapq_err rc;

    c->done = true;
    if (c->out == NULL)
        return;
    rc = mapq_json_pack(j, c->type, &c->pk, &c->w, 0);
    if (rc == MAPQ_OK && c->type != NULL)
        rc = check_value(c);
    if (rc != MAPQ_OK)
        conv_stop(c, rc, c->at);
}

/* A tree is complete (its reference taken): an element or the value. */
static void
tree_done(struct mapq_json_conv *c, json_t *j)
{
    if (c->streaming)
        element_done(c, j);
    else
        value_done(c, j);
    json_decref(j);
}

/* Notes where the value starts, at its first event. */
static void
note_start(struct mapq_json_conv *c, size_t at)
{
    if (!c->started) {
        c->started = true;
        c->at = at;
    }
}

/* Puts j (its reference taken) into the innermost open container. */
static void
tree_put(struct mapq_json_conv *c, json_t *j)
{
    json_t *parent = c->stack[c->depth - 1];
    int rc;

    if (json_is_array(parent)) {
        rc = json_array_append_new(parent, j);
    } else {
        /* The key was checked: UTF-8, no NUL, not there yet. */
        rc = json_object_setn_new_nocheck(parent, c->key, c->klen, j);
        free(c->key);
        c->key = NULL;
    }
    mapq_assert(rc == 0);
}

void
mapq_json_conv_scalar(struct mapq_json_conv *c, json_t *j, size_t at)
{
    mapq_assert(j != NULL);
    note_start(c, at);
    if (c->depth > 0) {
        tree_put(c, j);
        return;
    }
    c->tree_at = at;
    tree_done(c, j);
}

void
mapq_json_conv_open(struct mapq_json_conv *c, bool array, size_t at)
{
    json_t *j;

    if (!c->started && array) {
        note_start(c, at);
        list_start(c);
        return;
    }
    note_start(c, at);
    j = array ? json_array() : json_object();
    mapq_assert(j != NULL);
    if (c->depth > 0)
        tree_put(c, j);
    else
        c->tree_at = at;
    if (c->depth == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 8;
        c->stack = mapq_xrealloc(c->stack, c->cap * sizeof(*c->stack));
    }
    c->stack[c->depth++] = j;
}

void
mapq_json_conv_close(struct mapq_json_conv *c)
{
    if (c->depth == 0) {
        mapq_assert(c->streaming);
        list_done(c);
        return;
    }
    if (--c->depth == 0)
        tree_done(c, c->stack[0]);
}

bool
mapq_json_conv_key(struct mapq_json_conv *c, const char *key, size_t len)
{
    if (json_object_getn(c->stack[c->depth - 1], key, len) != NULL)
        return false;
    free(c->key);
    c->key = mapq_xstrndup(key, len);
    c->klen = len;
    return true;
}
