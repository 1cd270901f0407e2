/*
 * mapq_spool.h - the pages of long input lists, held on disk between the
 * binding of a workflow's inputs (before anything talks to Redis) and the
 * creation of its execution, which writes them to P:pg:<exec>.
 *
 * A spool is an anonymous temporary file in $TMPDIR (or /tmp), unlinked
 * once made, so gone when closed or when the process dies, and an index
 * of its pages in memory (a few words per 1,000 elements), so a list of
 * ten million elements costs the mapq process one page at a time. Not
 * thread-safe; one owner.
 */
#ifndef MAPQ_SPOOL_H
#define MAPQ_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_err.h"

struct mapq_spool;

/* A new, empty spool, or NULL with the reason in err. Caller frees with
 * mapq_spool_free(). */
struct mapq_spool *mapq_spool_new(char *err);

/* Frees s and removes its file; NULL is a no-op. */
void mapq_spool_free(struct mapq_spool *s);

/*
 * Appends page p of list (e.g. "i:xs"; borrowed, copied) holding count
 * elements, their msgpack bytes (data, len; borrowed) without an array
 * header. MAPQ_EIO with the reason in err when the file cannot be written.
 */
enum mapq_err mapq_spool_add(struct mapq_spool *s, const char *list, uint64_t p,
                             const char *data, size_t len, uint32_t count,
                             char *err);

/* The number of pages in s (0 for NULL). */
size_t mapq_spool_count(const struct mapq_spool *s);

/*
 * Reads page i (0 <= i < mapq_spool_count()) of s: its list (borrowed from
 * s) and page number, and the page as a msgpack array (header and
 * elements) into out, which is reset first. MAPQ_EIO when the file
 * cannot be read.
 */
enum mapq_err mapq_spool_read(struct mapq_spool *s, size_t i, const char **list,
                              uint64_t *p, struct mapq_buf *out, char *err);

#endif
