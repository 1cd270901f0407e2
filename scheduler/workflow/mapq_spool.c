/*
 * mapq_spool.c - pages of long input lists on disk: one anonymous file
 * written in order, an index of (list, page, offset, length, count).
 */
#include "mapq_spool.h"

#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_value.h"

struct spool_page {
    size_t list; /* index into lists */
    uint64_t p;
    long off;
    size_t len;
    uint32_t count;
};

struct mapq_spool {
    FILE *f;
    long end; /* bytes written */
    struct spool_page *pages;
    size_t n, cap;
    char **lists;
    size_t nlists;
};

struct mapq_spool *
mapq_spool_new(char *err)
{
    const char *dir = getenv("TMPDIR");
    struct mapq_spool *s;
    char path[4096];
    int fd;

    snprintf(path, sizeof(path), "%s/mapq-spool-XXXXXX",
             dir != NULL && dir[0] != '\0' ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0) {
        mapq_err_set(err, MAPQ_EIO, "cannot create '%s' for input pages: %s",
                     path, strerror(errno));
        return NULL;
    }
    /* Nameless from now on: gone with the process, however it ends. */
    unlink(path);
    s = mapq_xcalloc(1, sizeof(*s));
    s->f = fdopen(fd, "w+");
    mapq_assert(s->f != NULL);
    return s;
}

void
mapq_spool_free(struct mapq_spool *s)
{
    size_t i;

    if (s == NULL)
        return;
    fclose(s->f);
    for (i = 0; i < s->nlists; i++)
        free(s->lists[i]);
    free(s->lists);
    free(s->pages);
    free(s);
}

/* The index of list in s->lists, added if new. */
static size_t
list_index(struct mapq_spool *s, const char *list)
{
    size_t i;

    for (i = s->nlists; i > 0; i--)
        if (strcmp(s->lists[i - 1], list) == 0)
            return i - 1;
    s->lists = mapq_xrealloc(s->lists, (s->nlists + 1) * sizeof(*s->lists));
    s->lists[s->nlists] = mapq_xstrdup(list);
    return s->nlists++;
}

enum mapq_err
mapq_spool_add(struct mapq_spool *s, const char *list, uint64_t p,
               const char *data, size_t len, uint32_t count, char *err)
{
    struct spool_page *pg;

    if (fseek(s->f, s->end, SEEK_SET) != 0 ||
        (len > 0 && fwrite(data, 1, len, s->f) != len))
        return mapq_err_set(err, MAPQ_EIO, "cannot write input pages: %s",
                            strerror(errno));
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->pages = mapq_xrealloc(s->pages, s->cap * sizeof(*s->pages));
    }
    pg = &s->pages[s->n++];
    pg->list = list_index(s, list);
    pg->p = p;
    pg->off = s->end;
    pg->len = len;
    pg->count = count;
    s->end += (long)len;
    return MAPQ_OK;
}

size_t
mapq_spool_count(const struct mapq_spool *s)
{
    return s != NULL ? s->n : 0;
}

enum mapq_err
mapq_spool_read(struct mapq_spool *s, size_t i, const char **list, uint64_t *p,
                struct mapq_buf *out, char *err)
{
    const struct spool_page *pg;
    msgpack_packer pk;
    char *bytes;
    enum mapq_err rc = MAPQ_OK;

    mapq_assert(i < s->n);
    pg = &s->pages[i];
    mapq_buf_reset(out);
    mapq_value_packer_init(&pk, out);
    msgpack_pack_array(&pk, pg->count);
    bytes = mapq_xmalloc(pg->len + 1);
    if (fflush(s->f) != 0 || fseek(s->f, pg->off, SEEK_SET) != 0 ||
        (pg->len > 0 && fread(bytes, 1, pg->len, s->f) != pg->len))
        rc = mapq_err_set(err, MAPQ_EIO, "cannot read input pages back: %s",
                          ferror(s->f) ? strerror(errno) : "short read");
    else if (mapq_buf_append(out, bytes, pg->len) != MAPQ_OK)
        rc = mapq_err_set(err, MAPQ_ETOOBIG, "an input page is too large");
    free(bytes);
    if (rc != MAPQ_OK)
        return rc;
    *list = s->lists[pg->list];
    *p = pg->p;
    return MAPQ_OK;
}
