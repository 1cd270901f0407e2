/*
 * mapq_dirval.h - dir values: a directory stored as one blob per file plus
 * its manifest (mapq_manifest.h), and written back out (docs/
 * ARCHITECTURE.md, "Files and directories").
 *
 * A dir value is the reference of its manifest's blob, with "files" the
 * number of files it lists. Each file is a blob of the same store, so its
 * URI follows from the manifest's (mapq_store_sibling_uri()), and two
 * directories that share files share their blobs.
 *
 * Storing and fetching a blob are the caller's (struct mapq_dirval_io): the
 * embedded store on a Redis connection, a shared directory, an agent's
 * content cache. Every call blocks; it is for a transfer thread or a
 * command before its loop. Nothing here logs.
 */
#ifndef MAPQ_DIRVAL_H
#define MAPQ_DIRVAL_H

#include <stdint.h>

#include "mapq_blob.h"
#include "mapq_err.h"

/* How a blob is stored and fetched; arg is passed to both. */
struct mapq_dirval_io {
    /* Stores the regular file at path, its URI keeping name (may be NULL),
     * and fills ref; MAPQ_OK or an error with err set. */
    enum mapq_err (*put)(void *arg, const char *path, const char *name,
                         struct mapq_blob_ref *ref, char *err);
    /* Writes the content ref names to dest (replacing it), checked against
     * ref's sha256 and size; MAPQ_OK or an error with err set. */
    enum mapq_err (*get)(void *arg, const struct mapq_blob_ref *ref,
                         const char *dest, char *err);
    void *arg;
};

/*
 * Stores the directory at path: every regular file under it (symlinks,
 * devices and the like refused, naming them), then its manifest, whose
 * URI keeps name (the directory's name; may be NULL). Fills ref (the
 * manifest's) and *files. Returns MAPQ_OK or the first failure, err
 * naming the file: what mapq_manifest_scan() returns, or what io->put()
 * does. Blobs stored before a failure stay (they are content-addressed:
 * a retry stores nothing twice). Borrows everything.
 */
enum mapq_err mapq_dirval_put(const struct mapq_dirval_io *io, const char *path,
                              const char *name, struct mapq_blob_ref *ref,
                              int64_t *files, char *err);

/*
 * Writes the directory ref (a manifest's reference) names as dest, a new
 * directory (mode 0755; its parent must exist): the manifest is fetched
 * and checked, then every file it lists, into its path below dest (mode
 * 0755 or 0644 as listed), each checked against its hash. Returns MAPQ_OK;
 * MAPQ_EPROTO "<uri>: manifest line N: ..." for a manifest that is not
 * one; MAPQ_EIO naming a path it cannot create; or what io->get() returns.
 * On failure dest may hold part of the tree; the caller removes it.
 * Borrows everything.
 */
enum mapq_err mapq_dirval_get(const struct mapq_dirval_io *io,
                              const struct mapq_blob_ref *ref, const char *dest,
                              char *err);

#endif
