/*
 * mapq_pages.h - paged lists: a list too long to be held or sent as one
 * value lives in Redis as pages, and values hold a small reference to it.
 *
 * The pages of an execution's lists are the fields of one hash,
 * P:pg:<exec> (mapq_key_pages()): field "<list>/<p>" holds elements
 * [p * page_len, (p + 1) * page_len) as one msgpack array; every page but
 * the last is full. <list> names the list within the execution ("o:<k>"
 * for node k's output, "i:<name>" for an input's list). A reference is a
 * msgpack ext of type MAPQ_EXT_PAGES whose data is the msgpack array
 * [exec, list, n, page_len]: it says where the pages are, so a value
 * copied into another execution (mapq recover) still finds them. This
 * module is pure: it encodes and reads references and checks pages; the
 * driver and the CLI do the reading and writing.
 */
#ifndef MAPQ_PAGES_H
#define MAPQ_PAGES_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_err.h"

/* The msgpack ext type of a reference. */
#define MAPQ_EXT_PAGES 1
/* Elements per page: one assembly read (1,000 results) makes one page. */
#define MAPQ_PAGE_LEN 1000
/* A map node's output of more elements than this is paged. */
#define MAPQ_PAGED_MIN 65536

struct mapq_pages_ref {
    char exec[64];     /* the execution whose P:pg holds the pages */
    char list[128];    /* "o:<k>", "i:<name>" */
    uint64_t n;        /* elements in the list */
    uint32_t page_len; /* elements per full page */
};

/* Packs r as a reference (an ext value) with pk. */
void mapq_pages_ref_pack(msgpack_packer *pk, const struct mapq_pages_ref *r);

/*
 * Reads the reference that (data, len) is into r: true when it is exactly
 * one well-formed reference (names that fit, page_len > 0), false when it
 * is any other value or a malformed one.
 */
bool mapq_pages_ref_read(const char *data, size_t len,
                         struct mapq_pages_ref *r);

/* True when o is an ext of type MAPQ_EXT_PAGES (well formed or not). */
bool mapq_pages_is_ref(const msgpack_object *o);

/* The number of pages of r's list. */
uint64_t mapq_pages_count(const struct mapq_pages_ref *r);

/* Writes page p's field, "<list>/<p>", into out (len bytes). */
void mapq_pages_field(const struct mapq_pages_ref *r, uint64_t p, char *out,
                      size_t len);

/*
 * Checks that (data, len) is page p of r (a msgpack array of exactly the
 * elements that page holds, each a well-formed value) and appends its
 * elements, without the array header, to out. MAPQ_EPROTO with the
 * reason in err otherwise, MAPQ_ETOOBIG when out's cap is met.
 */
enum mapq_err mapq_pages_append(const struct mapq_pages_ref *r, uint64_t p,
                                const char *data, size_t len,
                                struct mapq_buf *out, char *err);

#endif
