/*
 * mapq_dirval.c - storing a directory as blobs and a manifest, and writing
 * one back out (see mapq_dirval.h).
 *
 * Owns the order of a dir value's writes: every file's blob before the
 * manifest's, so a manifest that exists never names a blob not yet
 * written; and on the way out, the manifest checked whole before any file
 * is written. Paths come from a manifest only after mapq_manifest_parse()
 * accepted them (relative, no "." or ".."), so nothing lands outside dest.
 */
#include "mapq_dirval.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_buf.h"
#include "mapq_fs.h"
#include "mapq_manifest.h"
#include "mapq_store.h"

/* The largest manifest read back: a full one of long paths. */

/* A new empty file in $TMPDIR (or /tmp) for a manifest: its path, which
 * the caller unlinks and frees; NULL with err set. */
static char *
temp_file(char *err)
{
    const char *dir = getenv("TMPDIR");
    char *path;
    int fd;

    path = mapq_xasprintf("%s/mapq-manifest-XXXXXX",
                          dir != NULL && *dir != '\0' ? dir : "/tmp");
    fd = mkstemp(path);
    if (fd < 0) {
        mapq_err_set(err, MAPQ_EIO, "cannot create '%s': %s", path,
                     strerror(errno));
        free(path);
        return NULL;
    }
    close(fd);
    return path;
}

enum mapq_err
mapq_dirval_put(const struct mapq_dirval_io *io, const char *path,
                const char *name, struct mapq_blob_ref *ref, int64_t *files,
                char *err)
{
    struct mapq_manifest m = {NULL, 0};
    struct mapq_buf text = MAPQ_BUF_INIT;
    struct mapq_blob_ref r;
    enum mapq_err rc;
    char *full, *tmp = NULL;
    size_t i;

    rc = mapq_manifest_scan(path, &m, err);
    for (i = 0; rc == MAPQ_OK && i < m.n; i++) {
        full = mapq_xasprintf("%s/%s", path, m.entries[i].path);
        rc = io->put(io->arg, full, NULL, &r, err);
        free(full);
        if (rc == MAPQ_OK) {
            memcpy(m.entries[i].sha256, r.sha256, sizeof(r.sha256));
            m.entries[i].size = r.size;
        }
    }
    if (rc != MAPQ_OK)
        goto out;
    mapq_manifest_format(&m, &text);
    tmp = temp_file(err);
    if (tmp == NULL) {
        rc = MAPQ_EIO;
        goto out;
    }
    unlink(tmp);
    if (mapq_fs_write_new(tmp, text.data ? text.data : "", text.len) != 0) {
        rc = mapq_err_set(err, MAPQ_EIO, "cannot write '%s': %s", tmp,
                          strerror(errno));
        goto out;
    }
    rc = io->put(io->arg, tmp, name, ref, err);
    if (rc == MAPQ_OK)
        *files = (int64_t)m.n;
out:
    if (tmp != NULL) {
        unlink(tmp);
        free(tmp);
    }
    mapq_buf_release(&text);
    mapq_manifest_release(&m);
    return rc;
}

/* Makes the directories of rel (a manifest path) below dest, up to but not
 * including its last component. */
static enum mapq_err
make_parents(const char *dest, const char *rel, char *err)
{
    char *path = mapq_xasprintf("%s/%s", dest, rel);
    char *p = path + strlen(dest) + 1, *slash;
    enum mapq_err rc = MAPQ_OK;
    struct stat st;

    for (slash = strchr(p, '/'); slash != NULL;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdir(path, 0755) != 0 &&
            (errno != EEXIST || lstat(path, &st) != 0 ||
             !S_ISDIR(st.st_mode))) {
            rc = mapq_err_set(err, MAPQ_EIO, "cannot create '%s': %s", path,
                              errno == EEXIST ? "a file is in the way"
                                              : strerror(errno));
            break;
        }
        *slash = '/';
    }
    free(path);
    return rc;
}

/* Reads the manifest ref names into *m, through a temporary file. */
static enum mapq_err
read_manifest(const struct mapq_dirval_io *io, const struct mapq_blob_ref *ref,
              struct mapq_manifest *m, char *err)
{
    struct mapq_buf text = MAPQ_BUF_INIT;
    char why[MAPQ_ERR_LEN];
    enum mapq_err rc;
    char *tmp;

    tmp = temp_file(err);
    if (tmp == NULL)
        return MAPQ_EIO;
    rc = io->get(io->arg, ref, tmp, err);
    mapq_buf_init(&text, MAPQ_MANIFEST_READ_MAX);
    if (rc == MAPQ_OK)
        rc = mapq_fs_read_file(tmp, &text, err);
    if (rc == MAPQ_OK) {
        rc = mapq_manifest_parse(text.data ? text.data : "", text.len, m, why);
        if (rc != MAPQ_OK)
            mapq_err_set(err, rc, "%s: %s", ref->uri, why);
    }
    unlink(tmp);
    free(tmp);
    mapq_buf_release(&text);
    return rc;
}

enum mapq_err
mapq_dirval_get(const struct mapq_dirval_io *io,
                const struct mapq_blob_ref *ref, const char *dest, char *err)
{
    struct mapq_manifest m = {NULL, 0};
    char hex[MAPQ_BLOB_HEX_LEN + 1];
    struct mapq_blob_ref r;
    enum mapq_err rc;
    struct stat st;
    char *full;
    size_t i;

    rc = read_manifest(io, ref, &m, err);
    if (rc != MAPQ_OK)
        return rc;
    if (mkdir(dest, 0755) != 0 &&
        (errno != EEXIST || lstat(dest, &st) != 0 || !S_ISDIR(st.st_mode))) {
        rc = mapq_err_set(err, MAPQ_EIO, "cannot create '%s': %s", dest,
                          strerror(errno));
        goto out;
    }
    for (i = 0; rc == MAPQ_OK && i < m.n; i++) {
        const struct mapq_manifest_entry *e = &m.entries[i];

        if (!mapq_store_sibling_uri(ref->uri, e->sha256, r.uri,
                                    sizeof(r.uri))) {
            rc = mapq_err_set(err, MAPQ_EINVAL,
                              "'%s' is no blob of a store: its files cannot "
                              "be found",
                              ref->uri);
            break;
        }
        memcpy(r.sha256, e->sha256, sizeof(r.sha256));
        r.size = e->size;
        rc = make_parents(dest, e->path, err);
        if (rc != MAPQ_OK)
            break;
        full = mapq_xasprintf("%s/%s", dest, e->path);
        rc = io->get(io->arg, &r, full, err);
        /* An executable gets an inode of its own: what io->get() wrote may
         * be a link to a read-only cache entry, whose mode is not ours. */
        if (rc == MAPQ_OK && e->exec)
            rc = mapq_blob_copy_file(full, full, 0755, false, &r, hex, NULL,
                                     err);
        free(full);
    }
out:
    mapq_manifest_release(&m);
    return rc;
}
