/*
 * cli_files.c - the files a run's inputs name, stored before it is
 * submitted.
 *
 * Where an input's type says file, the value given (--input, an inputs
 * file, a default) is a local path, relative to the current directory, a
 * file:// URI, or a reference already ({uri, sha256, size}). A path is
 * stored as a blob of the run's store (--store: the embedded one,
 * mapq_blob.h, or a shared directory, mapq_store.h) and replaced by its
 * reference, whose URI keeps the file's name; a reference is kept as it
 * is. So what reaches Redis, agents and cache keys is always a reference.
 *
 * mapq result --fetch writes the files an output refers to into a
 * directory.
 *
 * Blocking, like every command before its loop: it runs on the command's
 * own connection, before the execution is created.
 */
#include <errno.h>
#include <limits.h>
#include <search.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "mapq_alloc.h"
#include "mapq_blob.h"
#include "mapq_dirval.h"
#include "mapq_http_get.h"
#include "mapq_manifest.h"
#include "mapq_pages.h"
#include "mapq_s3.h"
#include "mapq_store.h"
#include "mapq_value.h"

#define PATH_TEXT_MAX  256
#define PAGES_PER_READ 16 /* pages of a paged list read at once */

/* One walk over the inputs. */
struct walk {
    redisContext *c;
    const char *ns;
    const struct mapq_store *store;
    int64_t max;                       /* the embedded store's cap */
    char holder[MAPQ_EXEC_ID_LEN + 3]; /* "x:<exec>" */
    struct mapq_buf *held;    /* the raw SHA-256 of each blob it holds */
    char path[PATH_TEXT_MAX]; /* where in the inputs, for messages */
    char *err;
};

/* Stores the file at path in the run's store (mapq_dirval's put); its
 * URI keeps name (NULL: none); a blob of the embedded store is held for
 * the run from before it is looked for. */
static enum mapq_err
put_blob(void *arg, const char *path, const char *name,
         struct mapq_blob_ref *ref, char *err)
{
    const struct walk *w = arg;
    enum mapq_err rc;

    if (w->store->kind == MAPQ_STORE_DIR)
        return mapq_store_dir_put(w->store, path, name, ref, err);
    if (w->store->kind == MAPQ_STORE_S3)
        return mapq_s3_put(w->store, path, name, ref, err);
    rc = mapq_blob_put_file(w->c, w->ns, path, w->max, w->holder,
                            MAPQ_BLOB_GRACE_MS, ref, err);
    if (rc != MAPQ_OK)
        return rc;
    if (name != NULL)
        mapq_blob_uri_named(ref->sha256, name, ref->uri, sizeof(ref->uri));
    mapq_blob_held_add(w->held, ref->sha256);
    return MAPQ_OK;
}

/* Holds the files of the dir whose manifest is the blob hex (there), and
 * appends their hashes to w->held. */
static enum mapq_err
hold_manifest(struct walk *w, const char *hex)
{
    struct mapq_manifest m = {NULL, 0};
    struct mapq_buf text, raw = MAPQ_BUF_INIT;
    char why[MAPQ_ERR_LEN];
    enum mapq_err rc;
    size_t i;

    mapq_buf_init(&text, MAPQ_MANIFEST_READ_MAX);
    rc = mapq_blob_get_mem(w->c, w->ns, hex, &text, why);
    if (rc != MAPQ_OK) {
        mapq_err_set(w->err, rc, "%s: its manifest: %s", w->path, why);
        goto out;
    }
    rc = mapq_manifest_parse(text.data ? text.data : "", text.len, &m, why);
    if (rc != MAPQ_OK) {
        mapq_err_set(w->err, MAPQ_EINVAL, "%s: its manifest: %s", w->path, why);
        goto out;
    }
    for (i = 0; i < m.n; i++)
        mapq_blob_held_add(&raw, m.entries[i].sha256);
    rc = mapq_blob_hold(w->c, w->ns, w->holder, MAPQ_BLOB_GRACE_MS,
                        (const unsigned char *)raw.data, m.n, NULL, why);
    if (rc != MAPQ_OK)
        mapq_err_set(w->err, rc, "%s: %s", w->path, why);
    else
        mapq_buf_append(w->held, raw.data, raw.len);
out:
    mapq_manifest_release(&m);
    mapq_buf_release(&raw);
    mapq_buf_release(&text);
    return rc;
}

/* A reference given as a value (o, a map): one of the embedded store is
 * held for the run, and must still be there (its dir's files held too). */
static enum mapq_err
keep_ref(struct walk *w, const msgpack_object *o, bool dir)
{
    const msgpack_object *u = mapq_value_map_get(o, "uri");
    char uri[MAPQ_BLOB_URI_MAX + 1], hex[MAPQ_BLOB_HEX_LEN + 1],
        why[MAPQ_ERR_LEN];
    unsigned char d[MAPQ_BLOB_RAW_LEN];
    char there = '0';
    enum mapq_err rc;

    if (u == NULL || u->type != MSGPACK_OBJECT_STR ||
        u->via.str.size >= sizeof(uri))
        return MAPQ_OK; /* checked as a value, later */
    memcpy(uri, u->via.str.ptr, u->via.str.size);
    uri[u->via.str.size] = '\0';
    if (!mapq_blob_uri_parse(uri, hex))
        return MAPQ_OK; /* not held: another store */
    mapq_assert(mapq_blob_unhex(hex, d));
    rc = mapq_blob_hold(w->c, w->ns, w->holder, MAPQ_BLOB_GRACE_MS, d, 1,
                        &there, why);
    if (rc != MAPQ_OK)
        return mapq_err_set(w->err, rc, "%s: %s", w->path, why);
    if (there != '1')
        return mapq_err_set(w->err, MAPQ_EINVAL,
                            "%s: %s is no longer in the store (its executions "
                            "and cache entries are gone)",
                            w->path, uri);
    mapq_buf_append(w->held, (const char *)d, sizeof(d));
    return dir ? hold_manifest(w, hex) : MAPQ_OK;
}

/* Packs the reference of the file at url, read once to learn its hash and
 * size; the reference keeps url, where agents read it again. */
static enum mapq_err
read_url(struct walk *w, const char *url, bool dir, msgpack_packer *pk)
{
    char hex[MAPQ_BLOB_HEX_LEN + 1], why[MAPQ_ERR_LEN];
    enum mapq_err rc;
    int64_t size;

    if (dir)
        return mapq_err_set(w->err, MAPQ_EINVAL,
                            "%s: '%s': a dir is given as a local directory, "
                            "not a URL",
                            w->path, url);
    if (strlen(url) > MAPQ_TYPE_URI_MAX)
        return mapq_err_set(w->err, MAPQ_EINVAL, "%s: URL over %d bytes",
                            w->path, MAPQ_TYPE_URI_MAX);
    rc = mapq_http_get(url, NULL, NULL, NULL, hex, &size, why);
    if (rc != MAPQ_OK)
        return mapq_err_set(w->err, rc == MAPQ_ENOENT ? MAPQ_EINVAL : rc,
                            "%s: %s", w->path, why);
    mapq_value_pack_fileref(pk, url, hex, size, -1);
    return MAPQ_OK;
}

/* Packs the reference of the file (or, when dir, the directory) at the
 * path in o (a str). */
static enum mapq_err
store(struct walk *w, const msgpack_object *o, bool dir, msgpack_packer *pk)
{
    const struct mapq_dirval_io io = {put_blob, NULL, w};
    struct mapq_blob_ref ref;
    char file[PATH_MAX], why[MAPQ_ERR_LEN];
    const char *name;
    size_t len = o->via.str.size, skip = 0;
    int64_t files = -1;
    enum mapq_err rc;

    if (len > 7 && memcmp(o->via.str.ptr, "file://", 7) == 0)
        skip = 7;
    else if (len < sizeof(file) && memchr(o->via.str.ptr, '\0', len) == NULL) {
        memcpy(file, o->via.str.ptr, len);
        file[len] = '\0';
        if (mapq_http_get_is_url(file))
            return read_url(w, file, dir, pk);
    }
    if (len - skip == 0 || len - skip >= sizeof(file) ||
        memchr(o->via.str.ptr, '\0', len) != NULL)
        return mapq_err_set(w->err, MAPQ_EINVAL, "%s: not a %s path", w->path,
                            dir ? "directory" : "file");
    if (skip == 0 && memchr(o->via.str.ptr, ':', len) != NULL &&
        memchr(o->via.str.ptr, '/', len) != NULL &&
        memchr(o->via.str.ptr, ':', len) < memchr(o->via.str.ptr, '/', len))
        return mapq_err_set(w->err, MAPQ_EINVAL,
                            "%s: '%.*s': only local paths, file:// and "
                            "http(s):// URIs are taken at submit",
                            w->path, (int)len, o->via.str.ptr);
    memcpy(file, o->via.str.ptr + skip, len - skip);
    file[len - skip] = '\0';
    /* "photos/" names the directory photos. */
    while (len - skip > 1 && file[len - skip - 1] == '/')
        file[--len - skip] = '\0';
    name = strrchr(file, '/') != NULL ? strrchr(file, '/') + 1 : file;
    if (dir)
        rc = mapq_dirval_put(&io, file, name, &ref, &files, why);
    else
        rc = put_blob(w, file, name, &ref, why);
    if (rc != MAPQ_OK)
        return mapq_err_set(w->err, rc, "%s: %s", w->path, why);
    mapq_value_pack_fileref(pk, ref.uri, ref.sha256, ref.size, files);
    return MAPQ_OK;
}

static enum mapq_err walk_value(struct walk *w, const msgpack_object *o,
                                const struct mapq_type *t, msgpack_packer *pk);

/* Walks the elements of a list or the values of a dict or record. */
static enum mapq_err
walk_children(struct walk *w, const msgpack_object *o,
              const struct mapq_type *t, msgpack_packer *pk)
{
    size_t plen = strlen(w->path);
    enum mapq_err rc = MAPQ_OK;
    uint32_t i;

    if (o->type == MSGPACK_OBJECT_ARRAY) {
        msgpack_pack_array(pk, o->via.array.size);
        for (i = 0; i < o->via.array.size && rc == MAPQ_OK; i++) {
            snprintf(w->path + plen, sizeof(w->path) - plen, "[%u]", i);
            rc = walk_value(w, &o->via.array.ptr[i], t->elem, pk);
        }
    } else {
        msgpack_pack_map(pk, o->via.map.size);
        for (i = 0; i < o->via.map.size && rc == MAPQ_OK; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            const struct mapq_type *et = t->elem;

            if (kv->key.type != MSGPACK_OBJECT_STR)
                return mapq_err_set(w->err, MAPQ_ETYPE, "%s: a key is no str",
                                    w->path);
            if (t->kind == MAPQ_T_RECORD)
                et = mapq_type_member(t, kv->key.via.str.ptr,
                                      kv->key.via.str.size);
            mapq_type_path_key(w->path, sizeof(w->path), kv->key.via.str.ptr,
                               kv->key.via.str.size);
            msgpack_pack_object(pk, kv->key);
            if (et == NULL)
                msgpack_pack_object(pk, kv->val);
            else
                rc = walk_value(w, &kv->val, et, pk);
            w->path[plen] = '\0';
        }
    }
    w->path[plen] = '\0';
    return rc;
}

/* Packs o (of type t) with references in place of the paths of files. */
static enum mapq_err
walk_value(struct walk *w, const msgpack_object *o, const struct mapq_type *t,
           msgpack_packer *pk)
{
    if (!mapq_type_has_file(t) || o->type == MSGPACK_OBJECT_NIL) {
        msgpack_pack_object(pk, *o);
        return MAPQ_OK;
    }
    if (t->kind == MAPQ_T_FILE || t->kind == MAPQ_T_DIR) {
        if (o->type == MSGPACK_OBJECT_STR)
            return store(w, o, t->kind == MAPQ_T_DIR, pk);
        msgpack_pack_object(pk, *o); /* a reference: checked as a value */
        return o->type == MSGPACK_OBJECT_MAP
                   ? keep_ref(w, o, t->kind == MAPQ_T_DIR)
                   : MAPQ_OK;
    }
    if ((t->kind == MAPQ_T_LIST && o->type == MSGPACK_OBJECT_ARRAY) ||
        ((t->kind == MAPQ_T_DICT || t->kind == MAPQ_T_RECORD) &&
         o->type == MSGPACK_OBJECT_MAP))
        return walk_children(w, o, t, pk);
    /* What binding checked and left as it is: a list long enough to be
     * paged (mapq_pages.h). */
    return mapq_err_set(w->err, MAPQ_EINVAL,
                        "%s: a list of files of more than %d elements is not "
                        "supported yet",
                        w->path, MAPQ_PAGED_MIN);
}

/* The declared type of workflow input name (len bytes), or NULL. */
static const struct mapq_type *
input_type(const struct mapq_workflow *wf, const char *name, size_t len)
{
    char key[256];
    long k;

    if (len >= sizeof(key))
        return NULL; /* longer than any input's name */
    memcpy(key, name, len);
    key[len] = '\0';
    k = mapq_workflow_find_input(wf, key);
    return k >= 0 ? wf->inputs[k].type : NULL;
}

/* Checks the inputs holding files (map in) against their types, now that
 * paths are references: a value given as something else is refused. */
static enum mapq_err
check_files(const struct mapq_workflow *wf, const msgpack_object *in, char *err)
{
    char why[MAPQ_ERR_LEN];
    enum mapq_err rc;
    uint32_t i;

    for (i = 0; i < in->via.map.size; i++) {
        const msgpack_object_kv *kv = &in->via.map.ptr[i];
        const struct mapq_type *t =
            input_type(wf, kv->key.via.str.ptr, kv->key.via.str.size);

        if (!mapq_type_has_file(t))
            continue;
        rc = mapq_type_check(t, &kv->val, why);
        if (rc != MAPQ_OK)
            return mapq_err_set(err, rc, "$inputs.%.*s%s%s",
                                (int)kv->key.via.str.size, kv->key.via.str.ptr,
                                why[0] == '[' ? "" : ": ", why);
    }
    return MAPQ_OK;
}

/* Rewrites the inputs map in into out. */
static enum mapq_err
rewrite(struct walk *w, const struct mapq_workflow *wf,
        const msgpack_object *in, struct mapq_buf *out)
{
    enum mapq_err rc = MAPQ_OK;
    msgpack_packer pk;
    uint32_t i;

    mapq_value_packer_init(&pk, out);
    msgpack_pack_map(&pk, in->via.map.size);
    for (i = 0; i < in->via.map.size && rc == MAPQ_OK; i++) {
        const msgpack_object_kv *kv = &in->via.map.ptr[i];
        const struct mapq_type *t = NULL;

        if (kv->key.type == MSGPACK_OBJECT_STR)
            t = input_type(wf, kv->key.via.str.ptr, kv->key.via.str.size);
        msgpack_pack_object(&pk, kv->key);
        if (t == NULL) {
            msgpack_pack_object(&pk, kv->val);
            continue;
        }
        snprintf(w->path, sizeof(w->path), "$inputs.%.*s",
                 (int)kv->key.via.str.size, kv->key.via.str.ptr);
        rc = walk_value(w, &kv->val, t, &pk);
    }
    return rc;
}

int
mapq_cli_store_files(redisContext *c, const struct mapq_cli_opts *o,
                     const struct mapq_workflow *wf, const char *exec,
                     struct mapq_buf *inputs, struct mapq_buf *held)
{
    struct mapq_buf out = MAPQ_BUF_INIT;
    struct walk w = {.c = c,
                     .ns = o->ns,
                     .store = &o->store,
                     .max = o->store_max,
                     .held = held};
    char err[MAPQ_ERR_LEN];
    msgpack_unpacked u;
    enum mapq_err rc;
    size_t i;
    bool any = false;

    for (i = 0; i < wf->ninputs; i++)
        any = any || mapq_type_has_file(wf->inputs[i].type);
    if (!any || inputs->len == 0)
        return MAPQ_EXIT_OK;
    w.err = err;
    snprintf(w.holder, sizeof(w.holder), "x:%s", exec);
    msgpack_unpacked_init(&u);
    rc = mapq_value_unpack(inputs->data, inputs->len, &u, err);
    if (rc == MAPQ_OK && u.data.type == MSGPACK_OBJECT_MAP)
        rc = rewrite(&w, wf, &u.data, &out);
    msgpack_unpacked_destroy(&u);
    msgpack_unpacked_init(&u);
    if (rc == MAPQ_OK)
        rc = mapq_value_unpack(out.data, out.len, &u, err);
    if (rc == MAPQ_OK)
        rc = check_files(wf, &u.data, err);
    msgpack_unpacked_destroy(&u);
    if (rc != MAPQ_OK) {
        fprintf(stderr, "mapq: %s\n", err);
        mapq_buf_release(&out);
        return rc == MAPQ_EREDIS || rc == MAPQ_EPROTO ? MAPQ_EXIT_INFRA
                                                      : MAPQ_EXIT_USAGE;
    }
    mapq_buf_release(inputs);
    *inputs = out;
    return MAPQ_EXIT_OK;
}

/* ---- mapq result --fetch ----------------------------------------------- */

/* A file in the fetch's directory whose content is known: one it wrote,
 * or one that was there and got hashed. */
struct seen {
    char *path;
    char sha256[MAPQ_BLOB_HEX_LEN + 1];
};

/* One walk over an output, writing its files. An output may name the same
 * file many times (a map's elements): seen (a tsearch tree of struct seen,
 * by path) keeps each path's content hash, so it is hashed once. */
struct fetch {
    redisContext *c;
    const char *ns, *dir;
    size_t written;
    void *seen;
    char *err;
};

/* Orders struct seen by path, for tsearch. */
static int
seen_cmp(const void *a, const void *b)
{
    return strcmp(((const struct seen *)a)->path,
                  ((const struct seen *)b)->path);
}

/* The content hash of path (borrowed) known to f, or NULL. */
static const struct seen *
seen_find(const struct fetch *f, char *path)
{
    const struct seen key = {path, ""};
    void *node = tfind(&key, &f->seen, seen_cmp);

    return node != NULL ? *(const struct seen **)node : NULL;
}

/* Records that path holds content of hash hex (borrowed, copied). */
static const struct seen *
seen_add(struct fetch *f, const char *path, const char *hex)
{
    struct seen *s = mapq_xcalloc(1, sizeof(*s));

    s->path = mapq_xstrdup(path);
    snprintf(s->sha256, sizeof(s->sha256), "%s", hex);
    mapq_assert(tsearch(s, &f->seen, seen_cmp) != NULL);
    return s;
}

/* Frees f's tree of struct seen, each entry with it. */
static void
seen_free(struct fetch *f)
{
    while (f->seen != NULL) {
        struct seen *s = *(struct seen **)f->seen;

        tdelete(s, &f->seen, seen_cmp);
        free(s->path);
        free(s);
    }
}

/* Whether o is a file (or dir) reference of the embedded store or of a
 * local file; fills ref and *files (-1 for a file). */
static bool
as_ref(const msgpack_object *o, struct mapq_blob_ref *ref, int64_t *files)
{
    const struct mapq_type file = {.kind = MAPQ_T_FILE};
    const struct mapq_type dir = {.kind = MAPQ_T_DIR};
    const msgpack_object *v;
    char hex[MAPQ_BLOB_HEX_LEN + 1], err[MAPQ_ERR_LEN], path[PATH_MAX];

    if (o->type != MSGPACK_OBJECT_MAP)
        return false;
    if (mapq_type_check(&file, o, err) == MAPQ_OK)
        *files = -1;
    else if (mapq_type_check(&dir, o, err) == MAPQ_OK)
        *files = mapq_value_map_get(o, "files")->via.i64;
    else
        return false;
    v = mapq_value_map_get(o, "uri");
    snprintf(ref->uri, sizeof(ref->uri), "%.*s", (int)v->via.str.size,
             v->via.str.ptr);
    v = mapq_value_map_get(o, "sha256");
    snprintf(ref->sha256, sizeof(ref->sha256), "%.*s", (int)v->via.str.size,
             v->via.str.ptr);
    ref->size = mapq_value_map_get(o, "size")->via.i64;
    return mapq_blob_uri_parse(ref->uri, hex) ||
           mapq_store_uri_path(ref->uri, path, sizeof(path)) ||
           mapq_s3_is_uri(ref->uri) ||
           (*files < 0 && mapq_http_get_is_url(ref->uri));
}

/* Writes ref's content to dest (mapq_dirval's get). A file:// URI is read
 * as whoever runs this command: the content must still hash as the
 * reference says. */
static enum mapq_err
get_blob(void *arg, const struct mapq_blob_ref *ref, const char *dest,
         char *err)
{
    const struct fetch *f = arg;
    char hex[MAPQ_BLOB_HEX_LEN + 1];
    int64_t size;

    if (strncmp(ref->uri, "file://", 7) == 0)
        return mapq_store_dir_get(ref, dest, err);
    if (mapq_http_get_is_url(ref->uri))
        return mapq_http_get(ref->uri, NULL, dest, ref, hex, &size, err);
    if (mapq_s3_is_uri(ref->uri))
        return mapq_s3_get(ref, dest, err);
    return mapq_blob_get_file(f->c, f->ns, ref, dest, err);
}

/*
 * Writes into path (PATH_MAX bytes) where ref's content goes in f->dir:
 * the name its URI keeps (else its hash), or "<n>-name" for the first n
 * not taken. Returns true when a file of that content is there already
 * (same_file: a file, compared by hash), path then naming it.
 */
static bool
pick_path(struct fetch *f, const struct mapq_blob_ref *ref, bool same_file,
          char *path)
{
    char buf[MAPQ_BLOB_NAME_MAX + 1], hex[MAPQ_BLOB_HEX_LEN + 1],
        why[MAPQ_ERR_LEN];
    const char *name = mapq_store_uri_name(ref->uri, buf, sizeof(buf));
    const struct seen *known;
    int64_t size;
    int n;

    if (!mapq_blob_name_ok(name))
        name = ref->sha256;
    for (n = 1;; n++) {
        if (n == 1)
            snprintf(path, PATH_MAX, "%s/%s", f->dir, name);
        else
            snprintf(path, PATH_MAX, "%s/%d-%s", f->dir, n, name);
        known = seen_find(f, path);
        if (known == NULL && access(path, F_OK) != 0)
            return false;
        if (!same_file)
            continue;
        if (known == NULL &&
            mapq_blob_hash_file(path, hex, &size, why) == MAPQ_OK)
            known = seen_add(f, path, hex);
        /* Written already (the same file twice in the output). */
        if (known != NULL && strcmp(known->sha256, ref->sha256) == 0)
            return true;
    }
}

/* Writes ref's directory of files files into f->dir under its name, or
 * "<n>-name" when that name is taken. */
static enum mapq_err
fetch_dir(struct fetch *f, const struct mapq_blob_ref *ref, int64_t files)
{
    const struct mapq_dirval_io io = {NULL, get_blob, f};
    char path[PATH_MAX], why[MAPQ_ERR_LEN];

    pick_path(f, ref, false, path);
    if (mapq_dirval_get(&io, ref, path, why) != MAPQ_OK)
        return mapq_err_set(f->err, MAPQ_EIO, "cannot fetch %s: %s", ref->uri,
                            why);
    f->written += (size_t)files;
    return MAPQ_OK;
}

/* Writes ref's file into f->dir under its name, or "<n>-name" when a file
 * of other content has that name. */
static enum mapq_err
fetch_one(struct fetch *f, const struct mapq_blob_ref *ref)
{
    char path[PATH_MAX], why[MAPQ_ERR_LEN];
    enum mapq_err rc;

    if (pick_path(f, ref, true, path))
        return MAPQ_OK;
    rc = get_blob(f, ref, path, why);
    if (rc != MAPQ_OK)
        return mapq_err_set(f->err, MAPQ_EIO, "cannot fetch %s: %s", ref->uri,
                            why);
    seen_add(f, path, ref->sha256);
    f->written++;
    return MAPQ_OK;
}

static enum mapq_err fetch_walk(struct fetch *f, const msgpack_object *o);

/* Walks the elements of the paged list o (a reference), PAGES_PER_READ
 * pages at a time. */
static enum mapq_err
fetch_paged(struct fetch *f, const msgpack_object *o)
{
    struct mapq_buf packed = MAPQ_BUF_INIT, page = MAPQ_BUF_INIT;
    struct mapq_pages_ref ref;
    enum mapq_err rc = MAPQ_OK;
    msgpack_packer pk;
    msgpack_unpacked u;
    uint64_t p, n, pages;
    size_t off;

    mapq_value_packer_init(&pk, &packed);
    msgpack_pack_object(&pk, *o);
    if (!mapq_pages_ref_read(packed.data, packed.len, &ref)) {
        rc = mapq_err_set(f->err, MAPQ_EPROTO, "a malformed paged list");
        goto out;
    }
    pages = mapq_pages_count(&ref);
    msgpack_unpacked_init(&u);
    for (p = 0; p < pages && rc == MAPQ_OK; p += n) {
        n = pages - p < PAGES_PER_READ ? pages - p : PAGES_PER_READ;
        mapq_buf_reset(&page);
        rc = mapq_cli_read_pages(f->c, f->ns, &ref, p, n, &page, f->err);
        for (off = 0; rc == MAPQ_OK && off < page.len &&
                      msgpack_unpack_next(&u, page.data, page.len, &off) ==
                          MSGPACK_UNPACK_SUCCESS;)
            rc = fetch_walk(f, &u.data);
    }
    msgpack_unpacked_destroy(&u);
out:
    mapq_buf_release(&page);
    mapq_buf_release(&packed);
    return rc;
}

static enum mapq_err
fetch_walk(struct fetch *f, const msgpack_object *o)
{
    struct mapq_blob_ref ref;
    enum mapq_err rc = MAPQ_OK;
    int64_t files;
    uint32_t i;

    if (as_ref(o, &ref, &files))
        return files >= 0 ? fetch_dir(f, &ref, files) : fetch_one(f, &ref);
    if (mapq_pages_is_ref(o))
        return fetch_paged(f, o);
    if (o->type == MSGPACK_OBJECT_ARRAY)
        for (i = 0; i < o->via.array.size && rc == MAPQ_OK; i++)
            rc = fetch_walk(f, &o->via.array.ptr[i]);
    else if (o->type == MSGPACK_OBJECT_MAP)
        for (i = 0; i < o->via.map.size && rc == MAPQ_OK; i++)
            rc = fetch_walk(f, &o->via.map.ptr[i].val);
    return rc;
}

int
mapq_cli_fetch_files(redisContext *c, const char *ns, const char *data,
                     size_t len, const char *dir)
{
    struct fetch f = {.c = c, .ns = ns, .dir = dir};
    char err[MAPQ_ERR_LEN];
    msgpack_unpacked u;
    enum mapq_err rc;

    f.err = err;
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "mapq: cannot create '%s': %s\n", dir, strerror(errno));
        return MAPQ_EXIT_USAGE;
    }
    msgpack_unpacked_init(&u);
    rc = mapq_value_unpack(data, len, &u, err);
    if (rc == MAPQ_OK)
        rc = fetch_walk(&f, &u.data);
    msgpack_unpacked_destroy(&u);
    seen_free(&f);
    if (rc != MAPQ_OK) {
        fprintf(stderr, "mapq: %s\n", err);
        return MAPQ_EXIT_INFRA;
    }
    fprintf(stderr, "mapq: %zu files written to %s\n", f.written, dir);
    return MAPQ_EXIT_OK;
}
