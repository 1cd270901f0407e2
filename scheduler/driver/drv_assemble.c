/*
 * drv_assemble.c - outputs in input order: a finished node's result
 * records read with HMGET, BATCH at a time, into its output list (or its
 * failure message), and the workflow's output from its nodes'. A list of
 * more than MAPQ_PAGED_MIN elements is not held: each read becomes one
 * page of it in P:pg:<exec>, and the output is a reference to them.
 *
 * Owns the assembly cursor and buffer of a node_run (asm_next, asm_buf).
 * Reports to the controller when every record is read (ops->assembled) or
 * cannot be (ops->fail); never decides whether the node succeeded: the
 * controller does, with drv_assemble_output().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_keys.h"
#include "mapq_pages.h"
#include "mapq_value.h"

/* One read of results is one page. */
_Static_assert(BATCH == MAPQ_PAGE_LEN, "an assembly read is a page");

/* Counted from the records, not the events: an event without its record
 * (a foreign client's) is no success. */
int
drv_assemble_output(struct exec *x, size_t k, struct mapq_buf *out, char *why)
{
    const struct mapq_node *n = &x->wf->nodes[k];
    struct node_run *nr = &x->nodes[k];
    struct mapq_buf sum = MAPQ_BUF_INIT;
    uint64_t ok = nr->asm_ok;

    if (ok < nr->need) {
        drv_summarize_errors(nr, &sum);
        if (n->is_map)
            snprintf(why, EXEC_ERROR_LEN,
                     "node '%s' failed: %llu of %llu subtasks succeeded, "
                     "%llu needed: %s",
                     n->name, (unsigned long long)ok, (unsigned long long)nr->n,
                     (unsigned long long)nr->need, sum.data ? sum.data : "");
        else
            snprintf(why, EXEC_ERROR_LEN, "node '%s' failed: %s", n->name,
                     sum.data ? sum.data + strcspn(sum.data, ":") + 2 : "");
        mapq_buf_release(&sum);
        return -1;
    }
    if (nr->asm_paged) {
        struct mapq_pages_ref ref = {.n = nr->n, .page_len = MAPQ_PAGE_LEN};
        msgpack_packer pk;

        snprintf(ref.exec, sizeof(ref.exec), "%s", x->id);
        snprintf(ref.list, sizeof(ref.list), "o:%zu", k);
        mapq_buf_init(out, 0);
        mapq_value_packer_init(&pk, out);
        mapq_pages_ref_pack(&pk, &ref);
        return 0;
    }
    /* A map's list was built in place behind its header: no copy. */
    *out = nr->asm_buf;
    mapq_buf_init(&nr->asm_buf, 0);
    return 0;
}

static void assemble_reply(redisReply *reply, const char *why, void *arg);

struct asm_req {
    struct exec *x;
    size_t k;
    unsigned gen;
    uint64_t from, count;
    uint64_t nfailed; /* FAILED subtasks: also asked for "#<index>" */
};

void
drv_assemble_start(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];
    msgpack_packer pk;

    nr->asm_next = 0;
    nr->asm_ok = 0;
    mapq_buf_release(&nr->asm_buf);
    mapq_buf_init(&nr->asm_buf, 0);
    nr->asm_paged = x->wf->nodes[k].is_map && nr->n > MAPQ_PAGED_MIN;
    if (x->wf->nodes[k].is_map && !nr->asm_paged) {
        mapq_value_packer_init(&pk, &nr->asm_buf);
        msgpack_pack_array(&pk, (uint32_t)nr->n);
    }
    drv_assemble_next(x, k);
}

void
drv_assemble_next(struct exec *x, size_t k)
{
    struct node_run *nr = &x->nodes[k];
    struct asm_req *req;
    struct mapq_argv cmd;
    struct mapq_buf in = MAPQ_BUF_INIT;
    unsigned char key[MAPQ_KEY_LEN];
    uint64_t i, end;

    if (nr->asm_next >= nr->n) {
        x->d->ops->assembled(x, k);
        return;
    }
    end = nr->asm_next + BATCH < nr->n ? nr->asm_next + BATCH : nr->n;
    if (!drv_pages_cover(x, k, nr->asm_next, end, PAGE_WAIT_ASM))
        return;
    req = mapq_xcalloc(1, sizeof(*req));
    req->x = x;
    req->k = k;
    req->gen = x->gen;
    req->from = nr->asm_next;
    req->count = end - nr->asm_next;
    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "HMGET");
    mapq_key_add(&cmd, mapq_key_results(x->d->ns, x->id, k));
    for (i = nr->asm_next; i < end; i++) {
        mapq_buf_reset(&in);
        drv_subtask_inputs(nr, i, &in);
        drv_subtask_key(x, k, i, in.data, in.len, key);
        mapq_argv_addlen(&cmd, key, MAPQ_KEY_LEN);
    }
    /* A subtask whose body was corrupt has its record under "#<index>":
     * its agent could not know its key. */
    for (i = nr->asm_next; i < end; i++)
        if (phase_get(nr, i) == MAPQ_PHASE_FAILED) {
            mapq_argv_addf(&cmd, "#%llu", (unsigned long long)i);
            req->nfailed++;
        }
    nr->asm_next = end;
    drv_exec_send(x, PATH_READ, &cmd, assemble_reply, req)->gen_check = true;
    mapq_buf_release(&in);
}

static void
assemble_reply(redisReply *reply, const char *why, void *arg)
{
    struct asm_req *req = arg;
    struct exec *x = req->x;
    struct node_run *nr = &x->nodes[req->k];
    msgpack_packer pk;
    uint64_t j, f = 0;

    (void)why;
    x->calls--;
    if (drv_exec_ended(x) || reply == NULL || req->gen != x->gen) {
        /* stale, or the reconcile after reconnecting assembles again */
    } else if (reply->type != REDIS_REPLY_ARRAY ||
               reply->elements != req->count + req->nfailed) {
        x->d->ops->fail(x, "cannot read results of node '%s': %s",
                        x->wf->nodes[req->k].name,
                        reply->str ? reply->str : "bad reply");
    } else {
        mapq_value_packer_init(&pk, &nr->asm_buf);
        if (nr->asm_paged) {
            mapq_buf_reset(&nr->asm_buf);
            msgpack_pack_array(&pk, (uint32_t)req->count);
        }
        for (j = 0; j < req->count; j++) {
            uint64_t i = req->from + j;
            const redisReply *rec = reply->element[j];

            if (phase_get(nr, i) == MAPQ_PHASE_FAILED &&
                rec->type != REDIS_REPLY_STRING)
                rec = reply->element[req->count + f];
            f += phase_get(nr, i) == MAPQ_PHASE_FAILED;
            if (phase_done(phase_get(nr, i)))
                drv_take_record(nr, i, rec, &pk);
            else
                msgpack_pack_nil(&pk); /* dropped after early failure */
        }
        if (nr->asm_paged) {
            char field[160];

            snprintf(field, sizeof(field), "o:%zu/%llu", req->k,
                     (unsigned long long)(req->from / MAPQ_PAGE_LEN));
            drv_record_page(x, field, nr->asm_buf.data, nr->asm_buf.len);
        }
        drv_assemble_next(x, req->k);
    }
    free(req);
}

/* Missing values (a node that never ran, an unknown input) are nil. A
 * value is copied as its bytes: no tree of a million elements. */
int
drv_assemble_workflow(struct exec *x, char *why)
{
    const struct mapq_workflow *wf = x->wf;
    const struct mapq_binding *one = wf->outputs;
    struct mapq_pages_ref ref;
    msgpack_packer pk;
    const char *v;
    char perr[MAPQ_ERR_LEN + 16];
    size_t i, vlen;

    /* The output is one node's: it is taken, as nothing reads the node's
     * output once the execution ends. */
    if (wf->noutputs == 1 && !wf->output_is_map && one->kind == MAPQ_REF_NODE &&
        one->member == NULL && x->nodes[one->target].output.len > 0) {
        mapq_buf_release(&x->output);
        x->output = x->nodes[one->target].output;
        mapq_buf_init(&x->nodes[one->target].output, 0);
        x->output_of = (long)one->target;
        return 0;
    }
    mapq_value_packer_init(&pk, &x->output);
    if (wf->noutputs == 0)
        msgpack_pack_nil(&pk);
    else if (wf->output_is_map)
        msgpack_pack_map(&pk, (uint32_t)wf->noutputs);
    for (i = 0; i < wf->noutputs; i++) {
        const struct mapq_binding *b = &wf->outputs[i];

        if (wf->output_is_map)
            mapq_value_pack_str(&pk, b->param);
        if (!drv_resolve(x, b, &v, &vlen)) {
            msgpack_pack_nil(&pk);
        } else if (b->member == NULL) {
            mapq_buf_append(&x->output, v, vlen);
        } else if (mapq_pages_ref_read(v, vlen, &ref)) {
            snprintf(why, EXEC_ERROR_LEN,
                     "output: $%s.%s: an output of more than %d elements is "
                     "kept in pages, and a member of it cannot be the "
                     "workflow's output yet: output $%s",
                     b->ref, b->member, MAPQ_PAGED_MIN, b->ref);
            return -1;
        } else if (drv_project(v, vlen, b->member, &x->output, perr,
                               sizeof(perr)) != 0) {
            snprintf(why, EXEC_ERROR_LEN, "output: $%s.%s: %.*s", b->ref,
                     b->member, 600, perr);
            return -1;
        }
    }
    return 0;
}
