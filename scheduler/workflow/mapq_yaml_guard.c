/*
 * mapq_yaml_guard.c - depth and size limits checked on libyaml's event
 * stream, so a costly document is refused before it is built.
 *
 * mapq_yaml_guard_load() is a composer: it builds the document itself from
 * the events with libyaml's document API, as yaml_parser_load() would, and
 * counts as it goes; one pass over the text, and nothing past a limit is
 * built. Error messages copy those of libyaml's loader.
 */
#include "mapq_yaml_guard.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "mapq_alloc.h"

/* What the events so far add up to. */
struct counts {
    int depth;
    size_t nodes;
    size_t anchors;
    size_t lookups; /* anchor comparisons libyaml's loader will make */
};

/* The anchor an event defines, or NULL. */
static const unsigned char *
anchor_of(const yaml_event_t *ev)
{
    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        return ev->data.scalar.anchor;
    case YAML_SEQUENCE_START_EVENT:
        return ev->data.sequence_start.anchor;
    case YAML_MAPPING_START_EVENT:
        return ev->data.mapping_start.anchor;
    default:
        return NULL;
    }
}

/* Counts the anchor or alias of one node event; false with msg past a
 * limit. */
static bool
count_anchor(const yaml_event_t *ev, struct counts *n, char *msg, size_t mlen)
{
    bool alias = ev->type == YAML_ALIAS_EVENT;

    if (!alias && anchor_of(ev) == NULL)
        return true;
    n->lookups += n->anchors;
    if (!alias && ++n->anchors > MAPQ_YAML_MAX_ANCHORS) {
        snprintf(msg, mlen, "YAML document has more than %d anchors (&name)",
                 MAPQ_YAML_MAX_ANCHORS);
        return false;
    }
    if (n->lookups > MAPQ_YAML_MAX_LOOKUPS) {
        snprintf(msg, mlen,
                 "YAML document has too many aliases (*name) for its %zu "
                 "anchors: more than %d alias lookups",
                 n->anchors, MAPQ_YAML_MAX_LOOKUPS);
        return false;
    }
    return true;
}

/* Applies one event to the counts; false with msg set past a limit. */
static bool
count_event(const yaml_event_t *ev, struct counts *n, char *msg, size_t mlen)
{
    switch (ev->type) {
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (++n->depth > MAPQ_YAML_MAX_DEPTH) {
            snprintf(msg, mlen, "YAML nested more than %d levels deep",
                     MAPQ_YAML_MAX_DEPTH);
            return false;
        }
        break;
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT:
        n->depth--;
        return true;
    case YAML_SCALAR_EVENT:
    case YAML_ALIAS_EVENT:
        break;
    default:
        return true;
    }
    if (++n->nodes > MAPQ_YAML_MAX_NODES) {
        snprintf(msg, mlen, "YAML document has more than %d values",
                 MAPQ_YAML_MAX_NODES);
        return false;
    }
    return count_anchor(ev, n, msg, mlen);
}

/* An anchor (&name) and the node it names. */
struct anchor {
    char *name;
    int id;
    yaml_mark_t mark;
};

/* The composer's state while one document is built. */
struct composer {
    yaml_document_t *doc;
    struct counts n;
    int open[MAPQ_YAML_MAX_DEPTH + 1]; /* ids of the open containers */
    int key[MAPQ_YAML_MAX_DEPTH + 1];  /* a mapping's pending key, or 0 */
    struct anchor anchors[MAPQ_YAML_MAX_ANCHORS]; /* of this document */
    size_t nanchors;
    char *msg;
    size_t mlen;
    yaml_mark_t where; /* of the problem, when msg is set */
};

static bool
fail(struct composer *c, yaml_mark_t mark, const char *what)
{
    snprintf(c->msg, c->mlen, "%s", what);
    c->where = mark;
    return false;
}

/* Names node id by the event's anchor, if it has one. */
static bool
add_anchor(struct composer *c, const yaml_event_t *ev, int id)
{
    const char *name = (const char *)anchor_of(ev);
    size_t i, k;

    if (name == NULL)
        return true;
    /* count_event() caps a stream at MAPQ_YAML_MAX_ANCHORS: k fits. */
    k = c->nanchors++;
    for (i = 0; i < k; i++) {
        if (strcmp(c->anchors[i].name, name) != 0)
            continue;
        snprintf(c->msg, c->mlen,
                 "invalid YAML: second occurrence (found duplicate anchor; "
                 "first occurrence at %d:%d)",
                 (int)c->anchors[i].mark.line + 1,
                 (int)c->anchors[i].mark.column + 1);
        c->where = ev->start_mark;
        return false;
    }
    c->anchors[k].name = mapq_xstrdup(name);
    c->anchors[k].id = id;
    c->anchors[k].mark = ev->start_mark;
    return true;
}

/* Adds node id under the container open at depth d (0: id is the root). */
static bool
attach(struct composer *c, int d, int id)
{
    int parent;
    yaml_node_t *p;

    if (d == 0)
        return true; /* the root: node 1 */
    parent = c->open[d];
    p = yaml_document_get_node(c->doc, parent);
    if (p->type == YAML_SEQUENCE_NODE)
        return yaml_document_append_sequence_item(c->doc, parent, id) != 0;
    if (c->key[d] == 0) {
        c->key[d] = id;
        return true;
    }
    if (yaml_document_append_mapping_pair(c->doc, parent, c->key[d], id) == 0)
        return false;
    c->key[d] = 0;
    return true;
}

/* The tag a node gets: the event's, unless it is absent or "!". */
static const yaml_char_t *
tag_of(const yaml_char_t *tag)
{
    return tag != NULL && strcmp((const char *)tag, "!") != 0 ? tag : NULL;
}

/* Adds the node an event starts or names; the counts include it, so a
 * container it starts is already open at depth c->n.depth. */
static bool
add_node(struct composer *c, const yaml_event_t *ev)
{
    bool scalar = ev->type == YAML_SCALAR_EVENT;
    int d = c->n.depth - (scalar || ev->type == YAML_ALIAS_EVENT ? 0 : 1);
    yaml_node_t *node;
    size_t i;
    int id = 0;

    switch (ev->type) {
    case YAML_SCALAR_EVENT:
        id = yaml_document_add_scalar(
            c->doc, tag_of(ev->data.scalar.tag), ev->data.scalar.value,
            (int)ev->data.scalar.length, ev->data.scalar.style);
        break;
    case YAML_SEQUENCE_START_EVENT:
        id = yaml_document_add_sequence(c->doc,
                                        tag_of(ev->data.sequence_start.tag),
                                        ev->data.sequence_start.style);
        break;
    case YAML_MAPPING_START_EVENT:
        id = yaml_document_add_mapping(c->doc,
                                       tag_of(ev->data.mapping_start.tag),
                                       ev->data.mapping_start.style);
        break;
    default: /* an alias */
        for (i = 0; i < c->nanchors; i++)
            if (strcmp(c->anchors[i].name,
                       (const char *)ev->data.alias.anchor) == 0)
                id = c->anchors[i].id;
        if (id == 0)
            return fail(c, ev->start_mark,
                        "invalid YAML: found undefined alias");
        if (!attach(c, d, id))
            return fail(c, ev->start_mark, "invalid YAML: cannot build a node");
        return true;
    }
    if (id == 0)
        return fail(c, ev->start_mark, "invalid YAML: cannot build a node");
    node = yaml_document_get_node(c->doc, id);
    node->start_mark = ev->start_mark;
    node->end_mark = ev->end_mark;
    /* The anchor is known from here on: an alias inside its own node makes
     * a cycle, as with libyaml's loader (the converter's depth cap ends
     * it). */
    if (!add_anchor(c, ev, id))
        return false;
    if (!attach(c, d, id))
        return fail(c, ev->start_mark, "invalid YAML: cannot build a node");
    if (!scalar) {
        c->open[d + 1] = id;
        c->key[d + 1] = 0;
    }
    return true;
}

/* Applies one event of the first document to the composer. */
static bool
compose(struct composer *c, const yaml_event_t *ev)
{
    yaml_node_t *node;
    int d = c->n.depth;

    if (ev->type == YAML_SEQUENCE_END_EVENT ||
        ev->type == YAML_MAPPING_END_EVENT) {
        node = yaml_document_get_node(c->doc, c->open[d + 1]);
        node->end_mark = ev->end_mark;
        return true;
    }
    if (ev->type == YAML_DOCUMENT_END_EVENT) {
        c->doc->end_implicit = ev->data.document_end.implicit;
        c->doc->end_mark = ev->end_mark;
        return true;
    }
    if (ev->type == YAML_SCALAR_EVENT || ev->type == YAML_ALIAS_EVENT ||
        ev->type == YAML_SEQUENCE_START_EVENT ||
        ev->type == YAML_MAPPING_START_EVENT)
        return add_node(c, ev);
    return true;
}

/* Forgets the anchors of the document before. */
static void
clear_anchors(struct composer *c)
{
    size_t i;

    for (i = 0; i < c->nanchors; i++) {
        free(c->anchors[i].name);
        c->anchors[i].name = NULL;
    }
    c->nanchors = 0;
}

/* Starts the document of a DOCUMENT-START event in c->doc. */
static bool
start_doc(struct composer *c, const yaml_event_t *ev)
{
    clear_anchors(c);
    if (yaml_document_initialize(c->doc,
                                 ev->data.document_start.version_directive,
                                 ev->data.document_start.tag_directives.start,
                                 ev->data.document_start.tag_directives.end,
                                 ev->data.document_start.implicit, 1) == 0)
        return fail(c, ev->start_mark, "invalid YAML: cannot build a document");
    c->doc->start_mark = ev->start_mark;
    return true;
}

/*
 * Applies one event of the stream. The first document is built in doc; a
 * second one is built too, as libyaml's loader would, so that its errors
 * come first, and then refused. *docs counts the documents started and
 * *inited those initialised.
 */
static enum mapq_err
step(struct composer *c, const yaml_event_t *ev, yaml_document_t *doc,
     yaml_document_t *extra, int *docs, int *inited)
{
    if (!count_event(ev, &c->n, c->msg, c->mlen)) {
        c->where = ev->start_mark;
        return MAPQ_ETOOBIG;
    }
    if (ev->type == YAML_DOCUMENT_START_EVENT) {
        c->doc = ++*docs == 1 ? doc : extra;
        if (!start_doc(c, ev))
            return MAPQ_EINVAL;
        ++*inited;
        return MAPQ_OK;
    }
    if (*docs == 0)
        return MAPQ_OK;
    if (!compose(c, ev))
        return MAPQ_EINVAL;
    if (ev->type == YAML_DOCUMENT_END_EVENT && *docs == 2) {
        c->where = extra->start_mark;
        snprintf(c->msg, c->mlen, "more than one YAML document (expected one)");
        return MAPQ_EINVAL;
    }
    return MAPQ_OK;
}

enum mapq_err
mapq_yaml_guard_load(yaml_parser_t *parser, yaml_document_t *doc, char *msg,
                     size_t mlen, int *line, int *col)
{
    struct composer *c = mapq_xcalloc(1, sizeof(*c));
    enum mapq_err rc = MAPQ_OK;
    yaml_document_t extra;
    yaml_event_t ev;
    int docs = 0, inited = 0;
    bool done = false;

    c->msg = msg;
    c->mlen = mlen;
    while (!done && rc == MAPQ_OK) {
        if (yaml_parser_parse(parser, &ev) == 0) {
            rc = MAPQ_EPROTO;
            break;
        }
        rc = step(c, &ev, doc, &extra, &docs, &inited);
        done = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
    }
    if (rc == MAPQ_OK && inited == 0)
        inited = yaml_document_initialize(doc, NULL, NULL, NULL, 1, 1) != 0;
    if (inited == 2)
        yaml_document_delete(&extra);
    if (rc != MAPQ_OK && inited >= 1)
        yaml_document_delete(doc);
    if (rc == MAPQ_ETOOBIG || rc == MAPQ_EINVAL) {
        *line = (int)c->where.line + 1;
        *col = (int)c->where.column + 1;
    }
    clear_anchors(c);
    free(c);
    return rc;
}
