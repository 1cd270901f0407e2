/*
 * mapq_xfer.h - the agent's transfer thread: fetches the blobs of an
 * attempt's file and dir inputs to local paths, and stores the files and
 * directories its task returns, off the event loop (docs/ARCHITECTURE.md,
 * "Files and directories", data flow 2, 3 and 5).
 *
 * A blob of the embedded store is read and written over Redis, one of a
 * shared directory (mapq_store.h) on the file system, an http(s):// input
 * through libcurl (mapq_http_get.h); a dir is its manifest and its files
 * (mapq_dirval.h), one item. Each is a series of blocking calls, so one
 * thread of this module does them, one request at a time in the order
 * they were queued, one item at a time within a request; it has a blocking
 * Redis connection of its own, made when first needed and made again once
 * when it breaks. It reports a finished request back on the loop through a
 * pipe watched by an event of the loop's base, where the request's done
 * callback runs.
 *
 * With a content cache, blobs are kept as cache_dir/<sha256> (mode 0444),
 * bounded in total size and evicted least recently used (by mtime, which a
 * hit renews). A fetch of a hash the cache holds is a hard link to the
 * cache file, or a copy when linking fails (another file system): the
 * destination of a hard link is the cache's own read-only file, which the
 * task must not change. Cache entries are trusted by name and size.
 *
 * Every function here is called on the loop's thread, and none of them
 * blocks on Redis or on the file system, save mapq_xfer_new() (one mkdir)
 * and mapq_xfer_free() (which waits for the item being fetched).
 */
#ifndef MAPQ_XFER_H
#define MAPQ_XFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapq_blob.h"
#include "mapq_buf.h"
#include "mapq_err.h"
#include "mapq_redis_url.h"
#include "mapq_store.h"

struct event_base;
struct mapq_xfer;
struct mapq_xfer_req;

/* One blob to fetch and where to put it; or a directory (a dir value:
 * its manifest's blob and the blobs of its files, mapq_dirval.h). */
struct mapq_xfer_item {
    struct mapq_blob_ref ref; /* what to fetch */
    char *dest;    /* where (absolute path; its directory exists); owned */
    bool dir;      /* a directory: fetched as a new directory dest, or the
                      directory dest stored */
    int64_t files; /* a directory stored: how many files it holds */
};

/*
 * Runs on the loop's thread, once per request not cancelled, when all of
 * its items are fetched or one failed. rc is MAPQ_OK (err "") or the error
 * of the first item that failed, with err "cannot fetch <uri>: <reason>"
 * (borrowed for the call). held: for a store, the raw SHA-256
 * (MAPQ_BLOB_RAW_LEN bytes each) of every blob stored in the embedded
 * store, a dir's files and manifest among them; NULL for a fetch. The
 * request is freed when it returns; the callback may queue, cancel other
 * requests or free the module.
 */
typedef void mapq_xfer_done_fn(enum mapq_err rc, const char *err,
                               const struct mapq_xfer_item *items, size_t n,
                               const struct mapq_buf *held, void *arg);

/*
 * Starts the thread, reporting to base (borrowed; it must outlive the
 * result). url and ns are copied; so are stores[0..nstores), the shared
 * directories (MAPQ_STORE_DIR) the agent was given: the only ones whose
 * file:// blobs it reads or where it stores. cache_dir: the content cache's
 * directory, created (mode 0700) if missing, its parent must exist; or NULL for
 * no cache. cache_max: the cache's bound in bytes. Returns the module (caller
 * frees with mapq_xfer_free()) or NULL with err set.
 */
struct mapq_xfer *mapq_xfer_new(struct event_base *base,
                                const struct mapq_redis_url *url,
                                const char *ns, const struct mapq_store *stores,
                                size_t nstores, const char *cache_dir,
                                int64_t cache_max, char *err);

/*
 * Queues the fetch of items[0..n), each item's blob written to its dest,
 * which is replaced if it exists. Takes ownership of the array (malloc'd;
 * NULL when n is 0) and of each dest. done runs with arg on the loop once all
 * are fetched or one failed; the items fetched before a failure stay. Returns
 * the request, valid until done ran or it was cancelled.
 */
struct mapq_xfer_req *mapq_xfer_fetch(struct mapq_xfer *x,
                                      struct mapq_xfer_item *items, size_t n,
                                      mapq_xfer_done_fn *done, void *arg);

/*
 * Queues the storing of items[0..n): each item's dest names a local file
 * (ref.uri, for messages, what its task called it), stored as a blob of
 * store (copied): the embedded one, where a blob is at most max bytes and
 * held for holder (copied; "x:<exec>", see mapq_blob_hold()) before it is
 * looked for, or a shared directory, which must be one the module was
 * given. The thread fills each ref, whose URI keeps the file's name.
 * Ownership and done as for mapq_xfer_fetch(); done gets the items with
 * their refs and what was held, err "cannot store <ref.uri>: <reason>".
 */
struct mapq_xfer_req *
mapq_xfer_store(struct mapq_xfer *x, const struct mapq_store *store,
                const char *holder, struct mapq_xfer_item *items, size_t n,
                int64_t max, mapq_xfer_done_fn *done, void *arg);

/*
 * Gives up req (the attempt lost its lease or its execution ended): its
 * done will not run, and the thread stops working on it at the next item
 * boundary; req is invalid afterwards. Files fetched already stay.
 * NULL-safe.
 */
void mapq_xfer_cancel(struct mapq_xfer_req *req);

/*
 * Cancels every request (no done runs any more), stops the thread, waiting
 * for the item it is fetching, and frees x. NULL-safe. Called from a done
 * callback, the freeing finishes when that callback returns.
 */
void mapq_xfer_free(struct mapq_xfer *x);

#endif
