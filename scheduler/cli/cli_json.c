/*
 * cli_json.c - the documents mapq's commands print with --json
 * (docs/JSON.md): an execution's summary, one object that run, recover,
 * status and each line of watch print alike, and the helpers the other
 * documents share.
 *
 * Documents are built with jansson, which escapes every string; text that
 * is not UTF-8 is made so first. A summary's output goes last, written
 * page by page (cli_pages.c), never held whole. Nothing here reads Redis
 * but those pages, nor writes anywhere but the FILE it is given.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mapq_json.h"

json_t *
mapq_cli_json_text(const char *s, size_t len)
{
    struct mapq_buf b = MAPQ_BUF_INIT;
    json_t *j = json_stringn(s, len);

    if (j != NULL)
        return j;
    /* Not UTF-8: the project's writer puts U+FFFD for each bad byte, and
     * jansson reads that text back. */
    mapq_json_append_text(&b, s, len);
    j = json_loadb(b.data, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
    mapq_buf_release(&b);
    return j != NULL ? j : json_string("");
}

json_t *
mapq_cli_json_str(const char *s)
{
    return s != NULL ? mapq_cli_json_text(s, strlen(s)) : json_null();
}

int
mapq_cli_print_json(json_t *doc)
{
    char *text = json_dumps(doc, JSON_COMPACT | JSON_PRESERVE_ORDER);
    int rc = MAPQ_EXIT_OK;

    json_decref(doc);
    if (text == NULL || printf("%s\n", text) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "mapq: cannot write the JSON document: %s\n",
                text == NULL ? "out of memory" : strerror(errno));
        rc = MAPQ_EXIT_INFRA;
    }
    free(text);
    return rc;
}

const char *
mapq_cli_phase_key(int phase)
{
    static char keys[MAPQ_PHASE_COUNT][16];
    const char *name;
    size_t i;

    if (phase < 0 || phase >= MAPQ_PHASE_COUNT)
        return "unknown";
    if (keys[phase][0] == '\0') {
        name = mapq_phase_name(phase);
        for (i = 0; name[i] != '\0' && i + 1 < sizeof(keys[phase]); i++)
            keys[phase][i] = (char)tolower((unsigned char)name[i]);
        keys[phase][i] = '\0';
    }
    return keys[phase];
}

/* {"name", "state", "total", "counts": {every phase}} of one node. */
static json_t *
node_json(const struct mapq_node_progress *p)
{
    json_t *o = json_object(), *counts = json_object();
    int ph;

    json_object_set_new(o, "name", mapq_cli_json_str(p->name));
    json_object_set_new(o, "state", json_string(p->state));
    json_object_set_new(o, "total", json_integer((json_int_t)p->total));
    for (ph = 0; ph < MAPQ_PHASE_COUNT; ph++)
        json_object_set_new(counts, mapq_cli_phase_key(ph),
                            json_integer((json_int_t)p->counts[ph]));
    json_object_set_new(o, "counts", counts);
    return o;
}

static json_t *
ms_json(int64_t ms)
{
    return ms >= 0 ? json_integer((json_int_t)ms) : json_null();
}

/* Every member of the summary but its output, in the documented order. */
static json_t *
summary_head(const struct mapq_cli_summary *s)
{
    json_t *o = json_object(), *nodes = json_array();
    size_t k;

    json_object_set_new(o, "execution", mapq_cli_json_str(s->execution));
    json_object_set_new(o, "workflow", mapq_cli_json_str(s->workflow));
    json_object_set_new(o, "status", mapq_cli_json_str(s->status));
    json_object_set_new(o, "created_ms", ms_json(s->created_ms));
    json_object_set_new(o, "finished_ms", ms_json(s->finished_ms));
    json_object_set_new(o, "duration_ms", ms_json(s->duration_ms));
    for (k = 0; k < s->nnodes; k++)
        json_array_append_new(nodes, node_json(&s->nodes[k]));
    json_object_set_new(o, "nodes", nodes);
    if (s->error != NULL)
        json_object_set_new(o, "error", mapq_cli_json_str(s->error));
    return o;
}

enum mapq_err
mapq_cli_write_summary(redisContext *c, const char *ns,
                       const struct mapq_cli_summary *s, FILE *out, char *err)
{
    enum mapq_err rc = MAPQ_OK;
    json_t *head;
    char *text;
    size_t len;

    if (out == NULL)
        return s->output == NULL
                   ? MAPQ_OK
                   : mapq_cli_write_output(c, ns, s->output, s->output_len, 0,
                                           NULL, err);
    head = summary_head(s);
    text = json_dumps(head, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(head);
    if (text == NULL)
        return mapq_err_set(err, MAPQ_EIO, "cannot make the summary");
    len = strlen(text);
    if (s->output == NULL) {
        fprintf(out, "%s\n", text);
    } else {
        /* The head without its closing brace, then the output. */
        fprintf(out, "%.*s,\"output\":", (int)(len - 1), text);
        rc =
            mapq_cli_write_output(c, ns, s->output, s->output_len, 0, out, err);
        if (rc == MAPQ_OK)
            fputs("}\n", out);
    }
    if (rc == MAPQ_OK && (fflush(out) != 0 || ferror(out)))
        rc = mapq_err_set(err, MAPQ_EIO, "cannot write the summary: %s",
                          strerror(errno));
    free(text);
    return rc;
}
