/*
 * cli_pages.c - outputs that hold paged lists (a map node's output of more
 * than MAPQ_PAGED_MIN elements, docs/PROTOCOL.md "Paged lists"), read back
 * by the CLI: a list printed page by page, never whole, compact or
 * indented as jansson indents (mapq result --json), checked whole before
 * anything is written.
 *
 * A reference is the whole output, or a value of an output that is a map
 * (the workflow's named outputs): the driver makes no other. Pages are
 * read with blocking HMGETs of PAGES_PER_READ pages.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "mapq_alloc.h"
#include "mapq_json.h"
#include "mapq_keys.h"
#include "mapq_pages.h"
#include "mapq_value.h"

#define PAGES_PER_READ 16
/* Deepest indent of a list written page by page: a map's value. */
#define MAX_INDENT 2

enum mapq_err
mapq_cli_read_pages(redisContext *c, const char *ns,
                    const struct mapq_pages_ref *ref, uint64_t from,
                    uint64_t count, struct mapq_buf *out, char *err)
{
    const char **argv = mapq_xcalloc(count + 2, sizeof(*argv));
    size_t *lens = mapq_xcalloc(count + 2, sizeof(*lens));
    char *key = mapq_key_pages(ns, ref->exec), (*fields)[160];
    enum mapq_err rc = MAPQ_OK;
    redisReply *r = NULL;
    uint64_t i;

    fields = mapq_xcalloc(count, sizeof(*fields));
    if (c == NULL) {
        rc = mapq_err_set(err, MAPQ_EREDIS,
                          "cannot read the pages of %s: not connected to "
                          "Redis",
                          ref->list);
        goto out;
    }
    argv[0] = "HMGET";
    argv[1] = key;
    for (i = 0; i < count; i++) {
        mapq_pages_field(ref, from + i, fields[i], sizeof(fields[i]));
        argv[i + 2] = fields[i];
    }
    for (i = 0; i < count + 2; i++)
        lens[i] = strlen(argv[i]);
    r = redisCommandArgv(c, (int)count + 2, argv, lens);
    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != count) {
        rc = mapq_err_set(err, MAPQ_EREDIS, "cannot read the pages of %s: %s",
                          ref->list,
                          r == NULL        ? c->errstr
                          : r->str != NULL ? r->str
                                           : "bad reply");
        goto out;
    }
    for (i = 0; i < count && rc == MAPQ_OK; i++) {
        const redisReply *e = r->element[i];

        rc = mapq_pages_append(
            ref, from + i, e->type == REDIS_REPLY_STRING ? e->str : NULL,
            e->type == REDIS_REPLY_STRING ? e->len : 0, out, err);
    }
out:
    if (r != NULL)
        freeReplyObject(r);
    free(fields);
    free(key);
    free(lens);
    free(argv);
    return rc;
}

/* Writes text to out (when not NULL), with indent after each newline in
 * it: a value indented by jansson at its own depth, placed deeper. */
static enum mapq_err
put(FILE *out, const char *text, size_t len, const char *indent, char *err)
{
    const char *nl;

    if (out == NULL)
        return MAPQ_OK;
    while (indent != NULL && (nl = memchr(text, '\n', len)) != NULL) {
        if (fwrite(text, 1, (size_t)(nl - text) + 1, out) !=
                (size_t)(nl - text) + 1 ||
            fputs(indent, out) == EOF)
            return mapq_err_set(err, MAPQ_EIO, "cannot write the output");
        len -= (size_t)(nl - text) + 1;
        text = nl + 1;
    }
    if (len > 0 && fwrite(text, 1, len, out) != len)
        return mapq_err_set(err, MAPQ_EIO, "cannot write the output");
    return MAPQ_OK;
}

static enum mapq_err
puts_to(FILE *out, const char *text, char *err)
{
    return put(out, text, strlen(text), NULL, err);
}

/*
 * One pass over the pages of ref: checks every element (out NULL) or
 * writes each as JSON, comma separated; indented (indent: the depth of
 * the list), each on a line of its own, as jansson would place it.
 */
static enum mapq_err
write_pages(redisContext *c, const char *ns, const struct mapq_pages_ref *ref,
            FILE *out, const char *indent, char *err)
{
    uint64_t p, pages = mapq_pages_count(ref), i = 0;
    struct mapq_buf page = MAPQ_BUF_INIT, text = MAPQ_BUF_INIT;
    char inner[MAX_INDENT + 3];
    msgpack_unpacked u;
    enum mapq_err rc = MAPQ_OK;
    size_t off;

    snprintf(inner, sizeof(inner), "%s  ", indent != NULL ? indent : "");
    msgpack_unpacked_init(&u);
    for (p = 0; p < pages && rc == MAPQ_OK; p += PAGES_PER_READ) {
        mapq_buf_reset(&page);
        rc = mapq_cli_read_pages(c, ns, ref, p,
                                 pages - p < PAGES_PER_READ ? pages - p
                                                            : PAGES_PER_READ,
                                 &page, err);
        for (off = 0; rc == MAPQ_OK && off < page.len; i++) {
            rc = mapq_value_unpack_next(page.data, page.len, &off, &u, err);
            mapq_buf_reset(&text);
            if (rc == MAPQ_OK)
                rc = mapq_json_from_msgpack(
                    &u.data, &text, indent != NULL ? MAPQ_JSON_PRETTY : 0, err);
            if (rc != MAPQ_OK) {
                char at[MAPQ_ERR_LEN];

                snprintf(at, sizeof(at), "[%llu]: %s", (unsigned long long)i,
                         err);
                snprintf(err, MAPQ_ERR_LEN, "%s", at);
                break;
            }
            if (i > 0)
                rc = puts_to(out, ",", err);
            if (rc == MAPQ_OK && indent != NULL) {
                rc = puts_to(out, "\n", err);
                if (rc == MAPQ_OK)
                    rc = puts_to(out, inner, err);
            }
            if (rc == MAPQ_OK)
                rc = put(out, text.data, text.len,
                         indent != NULL ? inner : NULL, err);
        }
    }
    msgpack_unpacked_destroy(&u);
    mapq_buf_release(&text);
    mapq_buf_release(&page);
    return rc;
}

/* One value of an output as JSON to out (NULL: only checked), indented
 * at indent (NULL: compact): a paged list page by page, anything else
 * whole (it is no larger than a value's cap). */
static enum mapq_err
write_value(redisContext *c, const char *ns, const char *data, size_t len,
            FILE *out, const char *indent, char *err)
{
    struct mapq_buf text = MAPQ_BUF_INIT;
    struct mapq_pages_ref ref;
    enum mapq_err rc;

    if (mapq_pages_ref_read(data, len, &ref)) {
        if (ref.n == 0)
            return puts_to(out, "[]", err);
        rc = puts_to(out, "[", err);
        if (rc == MAPQ_OK)
            rc = write_pages(c, ns, &ref, out, indent, err);
        if (rc == MAPQ_OK && indent != NULL) {
            rc = puts_to(out, "\n", err);
            if (rc == MAPQ_OK)
                rc = puts_to(out, indent, err);
        }
        return rc == MAPQ_OK ? puts_to(out, "]", err) : rc;
    }
    rc = mapq_json_from_bytes(data, len, &text,
                              indent != NULL ? MAPQ_JSON_PRETTY : 0, err);
    if (rc == MAPQ_OK)
        rc = put(out, text.data, text.len, indent, err);
    mapq_buf_release(&text);
    return rc;
}

/*
 * Whether the map (data, len), of n pairs from off, holds a paged list as
 * a value; its keys are checked on the way as JSON would check them (str,
 * UTF-8, no NUL, none twice), through a copy of the map whose values are
 * all nil, so that the keys written one by one make a valid object.
 */
static enum mapq_err
map_holds_pages(const char *data, size_t len, uint32_t n, size_t off,
                bool *holds, char *err)
{
    struct mapq_buf keys = MAPQ_BUF_INIT, text = MAPQ_BUF_INIT;
    struct mapq_pages_ref ref;
    msgpack_packer pk;
    enum mapq_err rc = MAPQ_OK;
    size_t at;
    uint32_t i;

    *holds = false;
    mapq_value_packer_init(&pk, &keys);
    msgpack_pack_map(&pk, n);
    for (i = 0; i < n && rc == MAPQ_OK; i++) {
        at = off;
        rc = mapq_value_skip(data, len, &off, err);
        if (rc != MAPQ_OK)
            break;
        mapq_buf_append(&keys, data + at, off - at);
        msgpack_pack_nil(&pk);
        at = off;
        rc = mapq_value_skip(data, len, &off, err);
        if (rc == MAPQ_OK && mapq_pages_ref_read(data + at, off - at, &ref))
            *holds = true;
    }
    if (rc == MAPQ_OK)
        rc = mapq_json_from_bytes(keys.data, keys.len, &text, 0, err);
    mapq_buf_release(&text);
    mapq_buf_release(&keys);
    return rc;
}

enum mapq_err
mapq_cli_write_output(redisContext *c, const char *ns, const char *data,
                      size_t len, int flags, FILE *out, char *err)
{
    const char *indent = (flags & MAPQ_JSON_PRETTY) ? "" : NULL;
    struct mapq_pages_ref ref;
    enum mapq_err rc = MAPQ_OK;
    size_t off, at;
    uint32_t n, i;
    bool holds;

    if (mapq_pages_ref_read(data, len, &ref) ||
        !mapq_value_map_header(data, len, &n, &off))
        return write_value(c, ns, data, len, out, indent, err);
    /* A map without paged lists is written whole, as any other value. */
    rc = map_holds_pages(data, len, n, off, &holds, err);
    if (rc != MAPQ_OK || !holds)
        return rc != MAPQ_OK ? rc
                             : write_value(c, ns, data, len, out, indent, err);
    rc = puts_to(out, "{", err);
    for (i = 0; i < n && rc == MAPQ_OK; i++) {
        at = off;
        rc = mapq_value_skip(data, len, &off, err); /* the key */
        if (rc == MAPQ_OK && i > 0)
            rc = puts_to(out, ",", err);
        if (rc == MAPQ_OK && indent != NULL)
            rc = puts_to(out, "\n  ", err);
        if (rc == MAPQ_OK)
            rc = write_value(c, ns, data + at, off - at, out, NULL, err);
        if (rc == MAPQ_OK)
            rc = puts_to(out, indent != NULL ? ": " : ":", err);
        at = off;
        if (rc == MAPQ_OK)
            rc = mapq_value_skip(data, len, &off, err);
        if (rc == MAPQ_OK)
            rc = write_value(c, ns, data + at, off - at, out,
                             indent != NULL ? "  " : NULL, err);
    }
    if (rc == MAPQ_OK && indent != NULL)
        rc = puts_to(out, "\n", err);
    return rc == MAPQ_OK ? puts_to(out, "}", err) : rc;
}

int
mapq_cli_print_output(redisContext *c, const char *ns, const char *data,
                      size_t len, int flags)
{
    struct mapq_pages_ref ref;
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;
    uint32_t n;
    size_t hlen;

    /* Only a map's values may be references besides the whole output:
     * anything else is printed as it is, not copied. */
    if (!mapq_pages_ref_read(data, len, &ref) &&
        !mapq_value_map_header(data, len, &n, &hlen))
        return mapq_cli_print_value(data, len, flags);
    /* Checked whole first, so that an error comes before output. */
    rc = mapq_cli_write_output(c, ns, data, len, flags, NULL, err);
    if (rc == MAPQ_OK)
        rc = mapq_cli_write_output(c, ns, data, len, flags, stdout, err);
    if (rc == MAPQ_OK && fputc('\n', stdout) == EOF)
        rc = mapq_err_set(err, MAPQ_EIO, "cannot write the output");
    if (rc == MAPQ_OK)
        return MAPQ_EXIT_OK;
    fprintf(stderr, "mapq: the output cannot be written as JSON: %s\n", err);
    return rc == MAPQ_EREDIS ? MAPQ_EXIT_INFRA : MAPQ_EXIT_FAILED;
}
