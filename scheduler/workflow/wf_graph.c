/*
 * wf_graph.c - the order in which nodes run, and the cycles that leave
 * none.
 *
 * Reads the deps the bindings recorded in each node and fills
 * c->wf->order with a topological order, sources first (Kahn's
 * algorithm); every cycle is reported once, from its first node in file
 * order. Linear in nodes plus references.
 */
#include <stdlib.h>

#include "mapq_alloc.h"
#include "wf_int.h"

/* Reports path[0..len-1], each node referencing the next, as a cycle. */
static void
report_cycle(struct ctx *c, const size_t *path, size_t len)
{
    struct mapq_buf b;
    size_t start = 0, j;

    mapq_buf_init(&b, 0);
    for (j = 1; j < len; j++)
        if (path[j] < path[start])
            start = j;
    for (j = 0; j <= len; j++)
        mapq_buf_printf(&b, "%s%s", j ? " -> " : "",
                        c->wf->nodes[path[(start + j) % len]].name);
    wf_perr(c, c->ni[path[start]].key, "cycle: %s", b.data);
    mapq_buf_release(&b);
}

/*
 * Reports each cycle among the nodes a topological sort left undone. Every
 * undone node has an undone dependency, so following them always ends in
 * a cycle; seen[] keeps the walk linear.
 */
static void
find_cycles(struct ctx *c, const bool *done)
{
    const struct mapq_workflow *wf = c->wf;
    size_t n = wf->nnodes, s, u, j, len;
    size_t *onpath = mapq_xmalloc((n ? n : 1) * sizeof(*onpath));
    size_t *path = mapq_xmalloc((n ? n : 1) * sizeof(*path));
    bool *seen = mapq_xcalloc(n ? n : 1, sizeof(*seen));

    for (s = 0; s < n; s++)
        onpath[s] = SIZE_MAX;
    for (s = 0; s < n; s++) {
        if (done[s] || seen[s])
            continue;
        for (len = 0, u = s; !seen[u];) {
            seen[u] = true;
            onpath[u] = len;
            path[len++] = u;
            for (j = 0; done[wf->nodes[u].deps[j]]; j++)
                mapq_assert(j + 1 < wf->nodes[u].ndeps);
            u = wf->nodes[u].deps[j];
        }
        if (onpath[u] != SIZE_MAX)
            report_cycle(c, path + onpath[u], len - onpath[u]);
        for (j = 0; j < len; j++)
            onpath[path[j]] = SIZE_MAX;
    }
    free(seen);
    free(path);
    free(onpath);
}

/* Kahn's algorithm over deps; wf->order gets the nodes, sources first. */
void
wf_topo_order(struct ctx *c)
{
    struct mapq_workflow *wf = c->wf;
    size_t n = wf->nnodes, i, j, head = 0, tail = 0, nedges = 0, u, v;
    size_t *indeg = mapq_xcalloc(n + 1, sizeof(*indeg));
    size_t *start = mapq_xcalloc(n + 2, sizeof(*start));
    size_t *users, *fill;
    bool *done = mapq_xcalloc(n + 1, sizeof(*done));

    for (i = 0; i < n; i++) {
        indeg[i] = wf->nodes[i].ndeps;
        nedges += wf->nodes[i].ndeps;
        for (j = 0; j < wf->nodes[i].ndeps; j++)
            start[wf->nodes[i].deps[j] + 1]++;
    }
    for (i = 0; i < n; i++)
        start[i + 1] += start[i];
    users = mapq_xcalloc(nedges + 1, sizeof(*users));
    fill = mapq_xmemdup(start, (n + 1) * sizeof(*start));
    for (i = 0; i < n; i++)
        for (j = 0; j < wf->nodes[i].ndeps; j++)
            users[fill[wf->nodes[i].deps[j]]++] = i;
    wf->order = mapq_xcalloc(n + 1, sizeof(*wf->order));
    for (i = 0; i < n; i++)
        if (indeg[i] == 0)
            wf->order[tail++] = i;
    while (head < tail) {
        u = wf->order[head++];
        done[u] = true;
        for (j = start[u]; j < start[u + 1]; j++) {
            v = users[j];
            if (--indeg[v] == 0)
                wf->order[tail++] = v;
        }
    }
    if (tail < n)
        find_cycles(c, done);
    free(fill);
    free(users);
    free(done);
    free(start);
    free(indeg);
}
