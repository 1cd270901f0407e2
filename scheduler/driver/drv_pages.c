/*
 * drv_pages.c - the paged lists a node binds (an upstream node's output of
 * more than MAPQ_PAGED_MIN elements), read from P:pg whole before the node
 * binds: PAGES_PER_READ pages per HMGET, each checked and its elements
 * appended to the binding's list.
 *
 * Owns the loaded lists and the load cursor of a node_run (loaded[],
 * load_j, load_p; node_reset() in driver.c frees them). Reports to the
 * controller when every list is read (ops->pages_loaded) or one cannot be
 * (ops->fail); never binds nor starts a node itself.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_pages.h"

#define PAGES_PER_READ 64

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

    for (j = 0; j < n->nover + n->nwith; j++)
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
    char field[64];
    uint64_t p, end;

    if (nr->loaded == NULL)
        nr->loaded = mapq_xcalloc(nb + 1, sizeof(*nr->loaded));
    req = mapq_xcalloc(1, sizeof(*req));
    while (nr->load_j < nb && !paged(x, k, nr->load_j, &req->ref))
        nr->load_j++;
    if (nr->load_j == nb) {
        free(req);
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
