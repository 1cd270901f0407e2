/*
 * drv_pages.c - the paged lists a node binds (an upstream node's output of
 * more than MAPQ_PAGED_MIN elements), read from P:pg:
 *   - a 'with' list, whole, before the node binds: PAGES_PER_READ pages
 *     per HMGET, appended to the binding's loaded[] list;
 *   - an 'over' list, a few pages at a time, as the window, the scan and
 *     the assembly reach them: PAGE_SLOTS pages per list are kept, the
 *     least recently used one is replaced, and each page's elements are
 *     checked against the parameter's type when it is read.
 *
 * Owns loaded[], the load cursor and the page slots of a node (node_reset()
 * in driver.c frees them). Reports to the controller when what waited may
 * go on (ops->pages_loaded) or a list cannot be read (ops->fail); never
 * binds, pushes, scans nor assembles itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_pages.h"

#define PAGES_PER_READ 64
/* Pages of an 'over' list read ahead of the first one missing. */
#define PAGES_AHEAD 3

struct pages_req {
    struct exec *x;
    size_t k, j;
    unsigned gen;
    uint64_t from, count; /* pages asked for */
    struct mapq_pages_ref ref;
};

static void pages_reply(redisReply *reply, const char *why, void *arg);

/* The binding j of node k (over first, then with). */
static const struct mapq_binding *
binding(const struct exec *x, size_t k, size_t j)
{
    const struct mapq_node *n = &x->wf->nodes[k];

    return j < n->nover ? &n->over[j] : &n->with[j - n->nover];
}

/* True when binding j of node k refers to a paged list; its reference. */
static bool
paged(const struct exec *x, size_t k, size_t j, struct mapq_pages_ref *ref)
{
    const char *v;
    size_t vlen;

    return drv_resolve(x, binding(x, k, j), &v, &vlen) &&
           mapq_pages_ref_read(v, vlen, ref);
}

bool
drv_pages_wanted(const struct exec *x, size_t k)
{
    const struct mapq_node *n = &x->wf->nodes[k];
    struct mapq_pages_ref ref;
    size_t j;

    for (j = n->nover; j < n->nover + n->nwith; j++)
        if (paged(x, k, j, &ref))
            return true;
    return false;
}

void
drv_pages_load(struct exec *x, size_t k)
{
    const struct mapq_node *n = &x->wf->nodes[k];
    struct node_run *nr = &x->nodes[k];
    size_t nb = n->nover + n->nwith;
    struct pages_req *req;
    struct mapq_argv cmd;
    char field[160];
    uint64_t p, end;

    if (nr->loaded == NULL) {
        nr->loaded = mapq_xcalloc(nb + 1, sizeof(*nr->loaded));
        nr->load_j = n->nover; /* 'over' lists are read page by page */
    }
    req = mapq_xcalloc(1, sizeof(*req));
    while (nr->load_j < nb && !paged(x, k, nr->load_j, &req->ref))
        nr->load_j++;
    if (nr->load_j == nb) {
        free(req);
        nr->page_wait |= PAGE_WAIT_BIND;
        x->d->ops->pages_loaded(x, k);
        return;
    }
    if (req->ref.n > UINT32_MAX) {
        x->d->ops->fail(x,
                        "node '%s': input '%s' has %llu elements, more "
                        "than a list may have",
                        n->name, binding(x, k, nr->load_j)->param,
                        (unsigned long long)req->ref.n);
        free(req);
        return;
    }
    if (nr->load_p == 0) {
        msgpack_packer pk;

        mapq_buf_init(&nr->loaded[nr->load_j], 0);
        mapq_value_packer_init(&pk, &nr->loaded[nr->load_j]);
        msgpack_pack_array(&pk, (uint32_t)req->ref.n);
    }
    end = nr->load_p + PAGES_PER_READ;
    if (end > mapq_pages_count(&req->ref))
        end = mapq_pages_count(&req->ref);
    req->x = x;
    req->k = k;
    req->gen = x->gen;
    req->j = nr->load_j;
    req->from = nr->load_p;
    req->count = end - nr->load_p;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HMGET");
    mapq_key_add(&cmd, mapq_key_pages(x->d->ns, req->ref.exec));
    for (p = req->from; p < end; p++) {
        mapq_pages_field(&req->ref, p, field, sizeof(field));
        mapq_argv_add(&cmd, field);
    }
    drv_exec_send(x, PATH_READ, &cmd, pages_reply, req)->gen_check = true;
}

static void
pages_reply(redisReply *reply, const char *why, void *arg)
{
    struct pages_req *req = arg;
    struct exec *x = req->x;
    struct node_run *nr = &x->nodes[req->k];
    const char *name = x->wf->nodes[req->k].name;
    char err[MAPQ_ERR_LEN];
    const redisReply *e;
    uint64_t i;

    (void)why;
    x->calls--;
    if (drv_exec_ended(x) || reply == NULL || req->gen != x->gen) {
        /* stale, or the reconcile after reconnecting binds again */
    } else if (reply->type != REDIS_REPLY_ARRAY ||
               reply->elements != req->count) {
        x->d->ops->fail(x, "node '%s': cannot read the pages of input '%s': %s",
                        name, binding(x, req->k, req->j)->param,
                        reply->str ? reply->str : "bad reply");
    } else {
        for (i = 0; i < req->count; i++) {
            e = reply->element[i];
            if (mapq_pages_append(&req->ref, req->from + i,
                                  e->type == REDIS_REPLY_STRING ? e->str : NULL,
                                  e->type == REDIS_REPLY_STRING ? e->len : 0,
                                  &nr->loaded[req->j], err) != MAPQ_OK) {
                x->d->ops->fail(x, "node '%s': input '%s': %s", name,
                                binding(x, req->k, req->j)->param, err);
                free(req);
                return;
            }
        }
        nr->load_p = req->from + req->count;
        if (nr->load_p == mapq_pages_count(&req->ref)) {
            nr->load_j++;
            nr->load_p = 0;
        }
        drv_pages_load(x, req->k);
    }
    free(req);
}

/* ---- 'over' lists, page by page ---------------------------------------- */

struct slot_req {
    struct exec *x;
    size_t k, j; /* node, parameter */
    unsigned gen;
    uint64_t from, count; /* pages asked for */
};

static void slots_reply(redisReply *reply, const char *why, void *arg);

/* The slot of ps holding page p, or -1. */
static int
slot_of(const struct param_src *ps, uint64_t p)
{
    int s;

    for (s = 0; s < PAGE_SLOTS; s++)
        if (ps->pages[s].used && ps->pages[s].p == p)
            return s;
    return -1;
}

/* Asks for pages from, ... of parameter j of node k (up to PAGES_AHEAD
 * more than the one missing, those not held yet). */
static void
read_slots(struct exec *x, size_t k, size_t j, uint64_t from)
{
    struct node_run *nr = &x->nodes[k];
    const struct param_src *ps = &nr->params[j];
    struct slot_req *req = mapq_xcalloc(1, sizeof(*req));
    uint64_t p, end = from + 1 + PAGES_AHEAD;
    struct mapq_argv cmd;
    char field[160];

    if (end > mapq_pages_count(&ps->ref))
        end = mapq_pages_count(&ps->ref);
    while (end > from + 1 && slot_of(ps, end - 1) >= 0)
        end--;
    req->x = x;
    req->k = k;
    req->j = j;
    req->gen = x->gen;
    req->from = from;
    req->count = end - from;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HMGET");
    mapq_key_add(&cmd, mapq_key_pages(x->d->ns, ps->ref.exec));
    for (p = from; p < end; p++) {
        mapq_pages_field(&ps->ref, p, field, sizeof(field));
        mapq_argv_add(&cmd, field);
    }
    nr->page_reading = true;
    drv_exec_send(x, PATH_READ, &cmd, slots_reply, req)->gen_check = true;
}

bool
drv_pages_cover(struct exec *x, size_t k, uint64_t from, uint64_t end,
                unsigned what)
{
    struct node_run *nr = &x->nodes[k];
    uint64_t p, last;
    size_t j;
    int s;

    if (from >= end)
        return true;
    for (j = 0; j < nr->nparams; j++) {
        struct param_src *ps = &nr->params[j];

        if (ps->pages == NULL || from >= ps->n)
            continue;
        last = ((end < ps->n ? end : ps->n) - 1) / ps->ref.page_len;
        for (p = from / ps->ref.page_len; p <= last; p++) {
            s = slot_of(ps, p);
            if (s >= 0) {
                ps->pages[s].stamp = ++nr->page_clock;
                continue;
            }
            nr->page_wait |= what;
            if (!nr->page_reading)
                read_slots(x, k, j, p);
            return false;
        }
    }
    return true;
}

/* The slot to read a page into: a free one, else the least recently
 * used. */
static int
slot_free(struct param_src *ps)
{
    int s, best = 0;

    for (s = 0; s < PAGE_SLOTS; s++) {
        if (!ps->pages[s].used)
            return s;
        if (ps->pages[s].stamp < ps->pages[best].stamp)
            best = s;
    }
    if (ps->cur == best)
        ps->cur = -1;
    return best;
}

/* Checks each element of page p of ps (in slot s) against its type; -1
 * with the element's index and the reason in err. */
static int
check_page(const struct param_src *ps, int s, uint64_t p, uint64_t *bad,
           char *err)
{
    const struct mapq_buf *d = &ps->pages[s].data;
    msgpack_unpacked u;
    enum mapq_err rc = MAPQ_OK;
    size_t off = 0;
    uint64_t i = p * ps->ref.page_len;

    msgpack_unpacked_init(&u);
    while (rc == MAPQ_OK && off < d->len) {
        rc = mapq_value_unpack_next(d->data, d->len, &off, &u, err);
        if (rc == MAPQ_OK)
            rc = mapq_type_check(ps->type, &u.data, err);
        if (rc == MAPQ_OK)
            i++;
    }
    msgpack_unpacked_destroy(&u);
    *bad = i;
    return rc == MAPQ_OK ? 0 : -1;
}

static void
slots_reply(redisReply *reply, const char *why, void *arg)
{
    struct slot_req *req = arg;
    struct exec *x = req->x;
    struct node_run *nr = &x->nodes[req->k];
    struct param_src *ps;
    const char *name = x->wf->nodes[req->k].name;
    char err[MAPQ_ERR_LEN];
    const redisReply *e;
    uint64_t i, bad;
    int s;

    (void)why;
    x->calls--;
    if (drv_exec_ended(x) || reply == NULL || req->gen != x->gen) {
        /* stale, or the reconcile after reconnecting reads again */
        goto out;
    }
    nr->page_reading = false;
    ps = &nr->params[req->j];
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != req->count) {
        x->d->ops->fail(x, "node '%s': cannot read the pages of input '%s': %s",
                        name, ps->name, reply->str ? reply->str : "bad reply");
        goto out;
    }
    for (i = 0; i < req->count; i++) {
        e = reply->element[i];
        s = slot_free(ps);
        ps->pages[s].used = false;
        mapq_buf_reset(&ps->pages[s].data);
        if (mapq_pages_append(&ps->ref, req->from + i,
                              e->type == REDIS_REPLY_STRING ? e->str : NULL,
                              e->type == REDIS_REPLY_STRING ? e->len : 0,
                              &ps->pages[s].data, err) != MAPQ_OK) {
            x->d->ops->fail(x, "node '%s': input '%s': %s", name, ps->name,
                            err);
            goto out;
        }
        if (check_page(ps, s, req->from + i, &bad, err) != 0) {
            x->d->ops->fail(x, "node '%s': input '%s' element %llu: %s", name,
                            ps->name, (unsigned long long)bad, err);
            goto out;
        }
        ps->pages[s].used = true;
        ps->pages[s].p = req->from + i;
        ps->pages[s].stamp = ++nr->page_clock;
    }
    x->d->ops->pages_loaded(x, req->k);
out:
    free(req);
}

void
drv_pages_element(struct param_src *ps, uint64_t i, const char **data,
                  size_t *len, size_t *off)
{
    uint64_t p = i / ps->ref.page_len;
    int s = slot_of(ps, p);
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    mapq_assert(s >= 0);
    if (s != ps->cur || i < ps->at) {
        ps->cur = s;
        ps->at = p * ps->ref.page_len;
        ps->at_off = 0;
    }
    *data = ps->pages[s].data.data;
    *len = ps->pages[s].data.len;
    /* The page was checked when it was read: stepping cannot fail. */
    for (; ps->at < i; ps->at++) {
        rc = mapq_value_skip(*data, *len, &ps->at_off, err);
        mapq_assert(rc == MAPQ_OK);
    }
    *off = ps->at_off;
}

void
drv_pages_release(struct param_src *ps)
{
    int s;

    if (ps->pages == NULL)
        return;
    for (s = 0; s < PAGE_SLOTS; s++)
        mapq_buf_release(&ps->pages[s].data);
    free(ps->pages);
    ps->pages = NULL;
}
