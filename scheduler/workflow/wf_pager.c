/*
 * wf_pager.c - a list input read a page at a time: its first pages are
 * held, and once it is long (more than MAPQ_PAGED_MIN elements, or
 * PAGER_HOLD_MAX bytes) every page goes to the spool instead and the bound
 * value becomes a reference to list "i:<name>" of the execution
 * (docs/PROTOCOL.md "Paged lists").
 *
 * Owns its held pages; the spool and the execution id are the caller's
 * (struct mapq_bind_pages). With no spool, pages past the threshold are
 * dropped once read (mapq validate checks them and keeps nothing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_pages.h"
#include "mapq_spool.h"
#include "mapq_value.h"
#include "wf_int.h"

/* Bytes of elements held before a list is paged whatever its length. */
#define PAGER_HOLD_MAX (4u * 1024 * 1024)

void
wf_pager_init(struct wf_pager *pg, const struct mapq_bind_pages *pages,
              const char *name)
{
    memset(pg, 0, sizeof(*pg));
    /* A name too long for a reference keeps its list whole. */
    if (snprintf(pg->list, sizeof(pg->list), "i:%s", name) <
        (int)sizeof(pg->list))
        pg->pages = pages;
    mapq_buf_init(&pg->held, 0);
}

void
wf_pager_release(struct wf_pager *pg)
{
    mapq_buf_release(&pg->held);
    free(pg->ends);
    free(pg->counts);
    memset(pg, 0, sizeof(*pg));
}

/* Page p (count elements, data) goes to the spool, or nowhere. */
static enum mapq_err
spool_page(struct wf_pager *pg, uint64_t p, const char *data, size_t len,
           uint32_t count, char *err)
{
    if (pg->pages->spool == NULL)
        return MAPQ_OK;
    return mapq_spool_add(pg->pages->spool, pg->list, p, data, len, count, err);
}

/* The pages held so far go to the spool; from now on every page does. */
static enum mapq_err
spill(struct wf_pager *pg, char *err)
{
    size_t i, from = 0;
    enum mapq_err rc = MAPQ_OK;

    for (i = 0; i < pg->nheld && rc == MAPQ_OK; i++) {
        rc = spool_page(pg, i, pg->held.data + from, pg->ends[i] - from,
                        pg->counts[i], err);
        from = pg->ends[i];
    }
    mapq_buf_release(&pg->held);
    mapq_buf_init(&pg->held, 0);
    pg->spilled = true;
    return rc;
}

enum mapq_err
wf_pager_page(struct wf_pager *pg, const char *data, size_t len, uint32_t count,
              char *err)
{
    uint64_t p = pg->npages++;

    pg->n += count;
    if (!pg->spilled && pg->pages != NULL &&
        (pg->n > MAPQ_PAGED_MIN || pg->held.len + len > PAGER_HOLD_MAX)) {
        enum mapq_err rc = spill(pg, err);

        if (rc != MAPQ_OK)
            return rc;
    }
    if (pg->spilled)
        return spool_page(pg, p, data, len, count, err);
    pg->ends = mapq_xrealloc(pg->ends, (pg->nheld + 1) * sizeof(*pg->ends));
    pg->counts =
        mapq_xrealloc(pg->counts, (pg->nheld + 1) * sizeof(*pg->counts));
    mapq_buf_append(&pg->held, data, len);
    pg->ends[pg->nheld] = pg->held.len;
    pg->counts[pg->nheld++] = count;
    return MAPQ_OK;
}

enum mapq_err
wf_pager_finish(struct wf_pager *pg, struct mapq_buf *val, char *err)
{
    struct mapq_pages_ref ref;
    msgpack_packer pk;

    mapq_value_packer_init(&pk, val);
    if (!pg->spilled) {
        if (pg->n > UINT32_MAX)
            return mapq_err_set(err, MAPQ_ETOOBIG, "list too long");
        msgpack_pack_array(&pk, (uint32_t)pg->n);
        if (mapq_buf_append(val, pg->held.data, pg->held.len) != MAPQ_OK)
            return mapq_err_set(err, MAPQ_ETOOBIG,
                                "value is larger than the %u MiB cap",
                                MAPQ_VALUE_MAX >> 20);
        return MAPQ_OK;
    }
    memset(&ref, 0, sizeof(ref));
    snprintf(ref.exec, sizeof(ref.exec), "%s", pg->pages->exec);
    snprintf(ref.list, sizeof(ref.list), "%s", pg->list);
    ref.n = pg->n;
    ref.page_len = MAPQ_PAGE_LEN;
    mapq_pages_ref_pack(&pk, &ref);
    return MAPQ_OK;
}
