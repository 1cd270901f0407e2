/*
 * wf_zip.c - the lengths of a map node's zipped `over` lists, and the one
 * check that they agree.
 *
 * A map node runs one subtask per element of its `over` lists, taken
 * together, so those lists must be equally long. The parse checks the
 * lists written in the file; binding the inputs checks again with the
 * lengths of the inputs' values known, the same function with more
 * lengths filled in. Lists that come from nodes are known only at run
 * time. Owns nothing; reports into the problems it is given.
 */
#include <stdint.h>
#include <stdlib.h>

#include "mapq_alloc.h"
#include "mapq_pages.h"
#include "mapq_value.h"
#include "wf_int.h"

/* Length of the list (data, len) is: a msgpack array or a paged list's
 * reference; false if neither. */
static bool
array_len(const char *data, size_t len, size_t *n)
{
    struct mapq_pages_ref ref;
    uint32_t cnt;
    size_t hlen;

    if (mapq_value_array_header(data, len, &cnt, &hlen)) {
        *n = cnt;
        return true;
    }
    if (mapq_pages_ref_read(data, len, &ref)) {
        *n = (size_t)ref.n;
        return true;
    }
    return false;
}

/*
 * The length of each of n's `over` lists into lens (SIZE_MAX: not known
 * yet); an input whose value is not a list is reported into ps.
 */
static void
over_lens(struct problems *ps, const char *file, const struct mapq_node *n,
          const struct wf_bind *bd, size_t *lens)
{
    const struct mapq_binding *b;
    const struct mapq_buf *val;
    size_t j;

    for (j = 0; j < n->nover; j++) {
        b = &n->over[j];
        lens[j] = SIZE_MAX;
        if (b->kind == MAPQ_REF_LITERAL)
            array_len(b->literal.data, b->literal.len, &lens[j]);
        if (b->kind != MAPQ_REF_INPUT || bd == NULL ||
            !wf_input_ok(bd, b->target))
            continue;
        val = &bd->vals[b->target];
        if (!array_len(val->data, val->len, &lens[j]))
            wf_prob_add(ps, file, b->pos.line, b->pos.col,
                        "cannot map over $inputs.%s: its value is not a list",
                        b->ref);
    }
}

void
wf_zip_check(struct problems *ps, const char *file, const struct mapq_node *n,
             const struct wf_bind *bd)
{
    size_t *lens = mapq_xcalloc(n->nover ? n->nover : 1, sizeof(*lens));
    size_t first = SIZE_MAX, j;

    over_lens(ps, file, n, bd, lens);
    for (j = 0; j < n->nover; j++) {
        if (lens[j] == SIZE_MAX)
            continue;
        if (first == SIZE_MAX) {
            first = j;
        } else if (lens[j] != lens[first]) {
            wf_prob_add(ps, file, n->over[j].pos.line, n->over[j].pos.col,
                        "input lists have different lengths: '%s' has %zu, "
                        "'%s' has %zu",
                        n->over[first].param, lens[first], n->over[j].param,
                        lens[j]);
            break;
        }
    }
    free(lens);
}
