/*
 * agent_files.c - the files of an attempt: which blobs its inputs need,
 * where they go and the inputs its task sees; the files its output names,
 * stored before the output is recorded.
 *
 * A task whose spec names inputs that hold files (spec->files, a record of
 * their types) gets them before it starts: each file reference in those
 * inputs, found by walking the value with its type, is fetched by the
 * transfer thread (mapq_xfer.c) into a directory of the attempt's own,
 * <dir>/<input>/<n>/<name>, n counting the input's files from 0 and name
 * the last component of the reference's URI. The task then sees that path
 * where the reference was (environment, stdin, placeholders, the worker
 * protocol, plugins): job->inputs is rewritten once, here.
 *
 * A task whose output type holds files returns the paths of files it
 * wrote (agent_files_store()): each must be a regular file inside its
 * working directory (or one of its fetched inputs); it is hard-linked into
 * the job's directory at once, so that the working directory may go, and
 * stored by the transfer thread; the output is then packed again with a
 * reference in place of each path.
 *
 * This file reports to the controller through ops->fetched and
 * ops->stored and never changes a job's state. Making a few
 * subdirectories, resolving and linking the paths an output gives are
 * the only file system calls on the loop (metadata only): the directory
 * itself comes made ahead (mapq_workdirs.h), and content moves on the
 * transfer thread.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_blob.h"
#include "mapq_fs.h"
#include "mapq_log.h"
#include "mapq_taskspec.h"
#include "mapq_value.h"

/* What a walk of one input collects. */
struct walk {
    struct job *job;
    const char *input; /* its name */
    size_t n;          /* its files so far */
    struct mapq_xfer_item *items;
    size_t nitems, cap;
    char *err;
};

bool
agent_files_wanted(const struct job *job)
{
    const struct mapq_taskspec *s = job->spec->spec;

    return s != NULL && s->files != NULL && !job->files_ready;
}

/* The name a fetched file gets (mapq_store_uri_name()), into buf. */
static const char *
uri_name(const char *uri, char buf[MAPQ_BLOB_NAME_MAX + 1])
{
    const char *name = mapq_store_uri_name(uri, buf, MAPQ_BLOB_NAME_MAX + 1);

    if (!mapq_blob_name_ok(name))
        return "file";
    return name;
}

/* Copies a str member of map o into out (size bytes); false when it is
 * missing, no str or too long. */
static bool
get_str(const msgpack_object *o, const char *key, char *out, size_t size)
{
    const msgpack_object *v = mapq_value_map_get(o, key);

    if (v == NULL || v->type != MSGPACK_OBJECT_STR || v->via.str.size >= size)
        return false;
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = '\0';
    return true;
}

/* Makes <files_dir>/<input>/<n> (the first exists once the input had a
 * file) into sub (PATH_MAX bytes); errno set on failure. */
static int
make_sub(const struct walk *w, char *sub)
{
    snprintf(sub, PATH_MAX, "%s/%s", w->job->files_dir, w->input);
    if (w->n == 0 && mkdir(sub, 0700) != 0)
        return -1;
    snprintf(sub, PATH_MAX, "%s/%s/%zu", w->job->files_dir, w->input, w->n);
    return mkdir(sub, 0700);
}

/* Adds the file (or dir, when dir) reference o to w's items and packs the
 * path it will have. */
static enum mapq_err
add_file(struct walk *w, const msgpack_object *o, bool dir, msgpack_packer *pk)
{
    struct mapq_xfer_item *it;
    const msgpack_object *size = mapq_value_map_get(o, "size");
    char sub[PATH_MAX], name[MAPQ_BLOB_NAME_MAX + 1];

    if (w->nitems == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 8;
        w->items = mapq_xrealloc(w->items, w->cap * sizeof(*w->items));
    }
    it = &w->items[w->nitems];
    memset(it, 0, sizeof(*it));
    if (!get_str(o, "uri", it->ref.uri, sizeof(it->ref.uri)) ||
        !get_str(o, "sha256", it->ref.sha256, sizeof(it->ref.sha256)) ||
        size == NULL || size->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return mapq_err_set(w->err, MAPQ_ETYPE,
                            "input '%s': %s %zu is no %s reference", w->input,
                            dir ? "dir" : "file", w->n, dir ? "dir" : "file");
    it->ref.size = (int64_t)size->via.u64;
    it->dir = dir;
    if (make_sub(w, sub) != 0)
        return mapq_err_set(w->err, MAPQ_EIO, "cannot create '%s': %s", sub,
                            strerror(errno));
    it->dest = mapq_xasprintf("%s/%s", sub, uri_name(it->ref.uri, name));
    mapq_value_pack_str(pk, it->dest);
    w->nitems++;
    w->n++;
    return MAPQ_OK;
}

/* Packs o (of type t) with a path in place of each file reference. */
static enum mapq_err
walk_value(struct walk *w, const msgpack_object *o, const struct mapq_type *t,
           msgpack_packer *pk)
{
    enum mapq_err rc = MAPQ_OK;
    uint32_t i;

    if (o->type == MSGPACK_OBJECT_NIL || !mapq_type_has_file(t)) {
        msgpack_pack_object(pk, *o);
        return MAPQ_OK;
    }
    if ((t->kind == MAPQ_T_FILE || t->kind == MAPQ_T_DIR) &&
        o->type == MSGPACK_OBJECT_MAP)
        return add_file(w, o, t->kind == MAPQ_T_DIR, pk);
    if (t->kind == MAPQ_T_LIST && o->type == MSGPACK_OBJECT_ARRAY) {
        msgpack_pack_array(pk, o->via.array.size);
        for (i = 0; i < o->via.array.size && rc == MAPQ_OK; i++)
            rc = walk_value(w, &o->via.array.ptr[i], t->elem, pk);
        return rc;
    }
    if ((t->kind == MAPQ_T_DICT || t->kind == MAPQ_T_RECORD) &&
        o->type == MSGPACK_OBJECT_MAP) {
        msgpack_pack_map(pk, o->via.map.size);
        for (i = 0; i < o->via.map.size && rc == MAPQ_OK; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            const struct mapq_type *et = t->elem;

            if (t->kind == MAPQ_T_RECORD && kv->key.type == MSGPACK_OBJECT_STR)
                et = mapq_type_member(t, kv->key.via.str.ptr,
                                      kv->key.via.str.size);
            msgpack_pack_object(pk, kv->key);
            rc = et != NULL ? walk_value(w, &kv->val, et, pk)
                            : (msgpack_pack_object(pk, kv->val), MAPQ_OK);
        }
        return rc;
    }
    return mapq_err_set(w->err, MAPQ_ETYPE,
                        "input '%s' does not hold what its type says",
                        w->input);
}

/* Rewrites job->inputs into job->files_inputs, collecting what to fetch
 * into w. */
static enum mapq_err
rewrite_inputs(struct job *job, struct walk *w)
{
    const struct mapq_type *files = job->spec->spec->files;
    const msgpack_object *in = job->inputs;
    enum mapq_err rc = MAPQ_OK;
    msgpack_packer pk;
    char name[MAPQ_TYPE_NAME_MAX + 1];
    uint32_t i;

    if (in->type != MSGPACK_OBJECT_MAP)
        return mapq_err_set(w->err, MAPQ_ETYPE, "inputs are no map");
    mapq_value_packer_init(&pk, &job->files_inputs);
    msgpack_pack_map(&pk, in->via.map.size);
    for (i = 0; i < in->via.map.size && rc == MAPQ_OK; i++) {
        const msgpack_object_kv *kv = &in->via.map.ptr[i];
        const struct mapq_type *t = NULL;

        if (kv->key.type == MSGPACK_OBJECT_STR)
            t = mapq_type_member(files, kv->key.via.str.ptr,
                                 kv->key.via.str.size);
        msgpack_pack_object(&pk, kv->key);
        if (t == NULL) {
            msgpack_pack_object(&pk, kv->val);
            continue;
        }
        snprintf(name, sizeof(name), "%.*s", (int)kv->key.via.str.size,
                 kv->key.via.str.ptr);
        w->input = name;
        w->n = 0;
        rc = walk_value(w, &kv->val, t, &pk);
    }
    return rc;
}

static void
fetched_cb(enum mapq_err rc, const char *err,
           const struct mapq_xfer_item *items, size_t n,
           const struct mapq_buf *held, void *arg)
{
    struct job *job = arg;

    (void)items;
    (void)n;
    (void)held;
    job->files_req = NULL;
    job->files_ready = rc == MAPQ_OK;
    job->a->ops->fetched(job, rc, err);
}

/* The transfer thread, made on first use. */
static struct mapq_xfer *
xfer_of(struct mapq_agent *a, char *err)
{
    char *dir = NULL;
    int64_t max =
        a->cfg.file_cache_max > 0 ? a->cfg.file_cache_max : MAPQ_FILE_CACHE_MAX;

    if (a->xfer != NULL)
        return a->xfer;
    if (a->cfg.file_cache == NULL)
        dir = mapq_xasprintf("%s/files", a->workroot);
    a->xfer = mapq_xfer_new(a->base, &a->cfg.url, a->ns, a->cfg.stores,
                            a->cfg.nstores,
                            dir != NULL ? dir : a->cfg.file_cache, max, err);
    free(dir);
    return a->xfer;
}

enum mapq_err
agent_files_fetch(struct job *job, char *err)
{
    struct walk w = {.job = job, .err = err};
    struct mapq_xfer *x;
    enum mapq_err rc;
    size_t i;

    x = xfer_of(job->a, err);
    if (x == NULL)
        return MAPQ_EIO;
    job->files_dir = mapq_workdirs_take(job->a->dirs, err);
    if (job->files_dir == NULL)
        return MAPQ_EIO;
    mapq_buf_init(&job->files_inputs, 0);
    msgpack_unpacked_init(&job->files_u);
    rc = rewrite_inputs(job, &w);
    if (rc == MAPQ_OK)
        rc = mapq_value_unpack(job->files_inputs.data, job->files_inputs.len,
                               &job->files_u, err);
    if (rc != MAPQ_OK) {
        for (i = 0; i < w.nitems; i++)
            free(w.items[i].dest);
        free(w.items);
        return rc;
    }
    job->inputs = &job->files_u.data;
    job->files_req = mapq_xfer_fetch(x, w.items, w.nitems, fetched_cb, job);
    return MAPQ_OK;
}

bool
agent_files_cancel(struct job *job)
{
    if (job->files_req == NULL)
        return false;
    mapq_xfer_cancel(job->files_req);
    job->files_req = NULL;
    return true;
}

void
agent_files_release(struct job *job)
{
    agent_files_cancel(job);
    mapq_xfer_cancel(job->store_req);
    job->store_req = NULL;
    mapq_buf_release(&job->store_value);
    mapq_buf_release(&job->store_held);
    if (job->kept != NULL) {
        mapq_buf_release(&job->kept->stderr_tail);
        mapq_buf_release(&job->kept->checkpoint);
        free(job->kept);
        job->kept = NULL;
    }
    if (job->files_dir == NULL)
        return;
    mapq_workdirs_drop(job->a->dirs, job->files_dir);
    job->files_dir = NULL;
    msgpack_unpacked_destroy(&job->files_u);
    mapq_buf_release(&job->files_inputs);
}

/* ---- outputs ----------------------------------------------------------- */

/* One walk over an output: collecting the files to store (got NULL), or
 * packing the output again with the references got back. */
struct out_walk {
    struct job *job;
    char dir[PATH_MAX];   /* where the command ran, resolved */
    char files[PATH_MAX]; /* the job's directory, resolved */
    char path[256];       /* where in the output, for messages */
    struct mapq_xfer_item *items;
    size_t nitems, cap;
    const struct mapq_xfer_item *got;
    char *err;
};

bool
agent_files_output(const struct job *job)
{
    const struct mapq_taskspec *s = job->spec->spec;

    return s != NULL && mapq_type_has_file(s->output);
}

/* Whether real (resolved) lies under root (resolved). */
static bool
inside(const char *real, const char *root)
{
    size_t n = strlen(root);

    return root[0] != '\0' && strncmp(real, root, n) == 0 &&
           (real[n] == '/' || real[n] == '\0');
}

/*
 * Hard-links the tree at from (a directory) as to, a new directory: its
 * subdirectories made, its regular files linked. Anything else in it (a
 * symlink, a device) is refused, named by given, the task's path for it.
 */
static enum mapq_err
link_tree(struct out_walk *w, const char *from, const char *to,
          const char *given)
{
    enum mapq_err rc = MAPQ_OK;
    char *src, *dst, *g;
    struct dirent *de;
    struct stat st;
    DIR *d;

    if (mkdir(to, 0700) != 0 || (d = opendir(from)) == NULL)
        return mapq_err_set(w->err, MAPQ_EIO, "%s: cannot keep %s: %s", w->path,
                            given, strerror(errno));
    while (rc == MAPQ_OK && (de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
            continue;
        src = mapq_xasprintf("%s/%s", from, de->d_name);
        dst = mapq_xasprintf("%s/%s", to, de->d_name);
        g = mapq_xasprintf("%s/%s", given, de->d_name);
        if (lstat(src, &st) != 0)
            rc = mapq_err_set(w->err, MAPQ_EIO, "%s: cannot keep %s: %s",
                              w->path, g, strerror(errno));
        else if (S_ISDIR(st.st_mode))
            rc = link_tree(w, src, dst, g);
        else if (!S_ISREG(st.st_mode))
            rc = mapq_err_set(w->err, MAPQ_EINVAL,
                              "%s: %s is not a regular file or directory",
                              w->path, g);
        else if (link(src, dst) != 0)
            rc = mapq_err_set(w->err, MAPQ_EIO, "%s: cannot keep %s: %s",
                              w->path, g, strerror(errno));
        free(g);
        free(dst);
        free(src);
    }
    closedir(d);
    return rc;
}

/* Checks the path the task gave (o, a str) and links the file (or the
 * directory's tree, when dir) into the job's directory as the next item. */
static enum mapq_err
take_file(struct out_walk *w, const msgpack_object *o, bool dir)
{
    char given[PATH_MAX], full[PATH_MAX], real[PATH_MAX], sub[PATH_MAX];
    struct mapq_xfer_item *it;
    const char *name;
    struct stat st;

    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
        o->via.str.size >= sizeof(given) ||
        memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
        return mapq_err_set(w->err, MAPQ_ETYPE, "%s: expected the path of a %s",
                            w->path, dir ? "directory" : "file");
    memcpy(given, o->via.str.ptr, o->via.str.size);
    given[o->via.str.size] = '\0';
    if (snprintf(full, sizeof(full), "%s%s%s", given[0] == '/' ? "" : w->dir,
                 given[0] == '/' ? "" : "/", given) >= (int)sizeof(full) ||
        realpath(full, real) == NULL || stat(real, &st) != 0)
        return mapq_err_set(w->err, MAPQ_ENOENT, "%s: no such file: %s",
                            w->path, given);
    if (!inside(real, w->dir) && !inside(real, w->files))
        return mapq_err_set(w->err, MAPQ_EINVAL,
                            "%s: %s is outside the task's working directory",
                            w->path, given);
    if (dir ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode))
        return mapq_err_set(w->err, MAPQ_EINVAL, "%s: %s is not a %s", w->path,
                            given, dir ? "directory" : "regular file");
    snprintf(sub, sizeof(sub), "%s/out-%zu", w->job->files_dir, w->nitems);
    name = strrchr(real, '/') + 1;
    if (w->nitems == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 8;
        w->items = mapq_xrealloc(w->items, w->cap * sizeof(*w->items));
    }
    it = &w->items[w->nitems];
    memset(it, 0, sizeof(*it));
    it->dest = mapq_xasprintf("%s/%s", sub, name);
    it->dir = dir;
    if (mkdir(sub, 0700) != 0 || (!dir && link(real, it->dest) != 0)) {
        free(it->dest);
        return mapq_err_set(w->err, MAPQ_EIO, "%s: cannot keep %s: %s", w->path,
                            given, strerror(errno));
    }
    if (dir) {
        enum mapq_err rc = link_tree(w, real, it->dest, given);

        if (rc != MAPQ_OK) {
            mapq_fs_rmtree(sub);
            free(it->dest);
            return rc;
        }
    }
    snprintf(it->ref.uri, sizeof(it->ref.uri), "%s", given);
    w->nitems++;
    return MAPQ_OK;
}

/* Packs the reference got back for the next file or dir. */
static void
pack_ref(struct out_walk *w, msgpack_packer *pk)
{
    const struct mapq_xfer_item *it = &w->got[w->nitems++];

    mapq_value_pack_fileref(pk, it->ref.uri, it->ref.sha256, it->ref.size,
                            it->dir ? it->files : -1);
}

/* Walks output value o of type t: collects its files, or (w->got) packs it
 * with references in their place. */
static enum mapq_err
walk_out(struct out_walk *w, const msgpack_object *o, const struct mapq_type *t,
         msgpack_packer *pk)
{
    size_t plen = strlen(w->path);
    enum mapq_err rc = MAPQ_OK;
    uint32_t i;

    if (o->type == MSGPACK_OBJECT_NIL || !mapq_type_has_file(t)) {
        if (pk != NULL)
            msgpack_pack_object(pk, *o);
        return MAPQ_OK;
    }
    if (t->kind == MAPQ_T_FILE || t->kind == MAPQ_T_DIR) {
        if (w->got == NULL)
            return take_file(w, o, t->kind == MAPQ_T_DIR);
        pack_ref(w, pk);
        return MAPQ_OK;
    }
    if (o->type == MSGPACK_OBJECT_ARRAY) {
        if (pk != NULL)
            msgpack_pack_array(pk, o->via.array.size);
        for (i = 0; i < o->via.array.size && rc == MAPQ_OK; i++) {
            snprintf(w->path + plen, sizeof(w->path) - plen, "[%u]", i);
            rc = walk_out(w, &o->via.array.ptr[i], t->elem, pk);
        }
    } else if (o->type == MSGPACK_OBJECT_MAP) {
        if (pk != NULL)
            msgpack_pack_map(pk, o->via.map.size);
        for (i = 0; i < o->via.map.size && rc == MAPQ_OK; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            const struct mapq_type *et = t->elem;

            if (t->kind == MAPQ_T_RECORD)
                et = mapq_type_member(t, kv->key.via.str.ptr,
                                      kv->key.via.str.size);
            mapq_type_path_key(w->path, sizeof(w->path), kv->key.via.str.ptr,
                               kv->key.via.str.size);
            if (pk != NULL)
                msgpack_pack_object(pk, kv->key);
            rc = walk_out(w, &kv->val, et, pk);
            w->path[plen] = '\0';
        }
    }
    w->path[plen] = '\0';
    return rc;
}

/* What the record of the attempt needs of its command's end. */
static struct mapq_cmd_result *
keep_result(const struct mapq_cmd_result *res)
{
    struct mapq_cmd_result *k = mapq_xcalloc(1, sizeof(*k));

    *k = *res;
    mapq_buf_init(&k->output, 0);
    mapq_buf_init(&k->stderr_tail, 0);
    mapq_buf_append(&k->stderr_tail, res->stderr_tail.data,
                    res->stderr_tail.len);
    mapq_buf_init(&k->checkpoint, 0);
    k->has_checkpoint = false; /* a success drops it */
    return k;
}

static void
stored_cb(enum mapq_err rc, const char *err, const struct mapq_xfer_item *items,
          size_t n, const struct mapq_buf *held, void *arg)
{
    struct job *job = arg;
    struct out_walk w = {.job = job, .got = items};
    struct mapq_buf value = MAPQ_BUF_INIT;
    char why[MAPQ_ERR_LEN];
    msgpack_unpacked u;
    msgpack_packer pk;

    (void)n;
    job->store_req = NULL;
    job->res = job->kept;
    if (rc == MAPQ_OK) {
        /* What its record holds (its field b). */
        mapq_buf_append(&job->store_held, held->data, held->len);
        /* The output was walked once already: it unpacks. */
        msgpack_unpacked_init(&u);
        mapq_assert(mapq_value_unpack(job->store_value.data,
                                      job->store_value.len, &u,
                                      why) == MAPQ_OK);
        w.err = why;
        mapq_value_packer_init(&pk, &value);
        snprintf(w.path, sizeof(w.path), "output");
        walk_out(&w, &u.data, job->spec->spec->output, &pk);
        msgpack_unpacked_destroy(&u);
    }
    job->a->ops->stored(job, rc, err, &value);
    mapq_buf_release(&value);
}

enum mapq_err
agent_files_store(struct job *job, const struct mapq_cmd_result *res,
                  const char *dir, char *err)
{
    struct out_walk w = {.job = job, .err = err};
    struct mapq_xfer *x = xfer_of(job->a, err);
    char why[MAPQ_ERR_LEN], holder[sizeof(job->r.exec) + 2];
    msgpack_unpacked u;
    enum mapq_err rc;
    size_t i;

    if (x == NULL)
        return MAPQ_EIO;
    if (job->files_dir == NULL)
        job->files_dir = mapq_workdirs_take(job->a->dirs, err);
    if (job->files_dir == NULL)
        return MAPQ_EIO;
    if (dir == NULL || realpath(dir, w.dir) == NULL)
        w.dir[0] = '\0';
    if (realpath(job->files_dir, w.files) == NULL)
        w.files[0] = '\0';
    snprintf(w.path, sizeof(w.path), "output");
    msgpack_unpacked_init(&u);
    rc = mapq_value_unpack(res->output.data, res->output.len, &u, why);
    if (rc == MAPQ_OK)
        rc = walk_out(&w, &u.data, job->spec->spec->output, NULL);
    else
        mapq_err_set(err, rc, "output: %s", why);
    msgpack_unpacked_destroy(&u);
    if (rc != MAPQ_OK) {
        for (i = 0; i < w.nitems; i++)
            free(w.items[i].dest);
        free(w.items);
        return rc;
    }
    mapq_buf_init(&job->store_value, 0);
    mapq_buf_append(&job->store_value, res->output.data, res->output.len);
    mapq_buf_init(&job->store_held, 0);
    job->kept = keep_result(res);
    snprintf(holder, sizeof(holder), "x:%s", job->r.exec);
    job->store_req =
        mapq_xfer_store(x, &job->spec->spec->store, holder, w.items, w.nitems,
                        job->a->cfg.store_max > 0 ? job->a->cfg.store_max
                                                  : MAPQ_BLOB_MAX_DEFAULT,
                        stored_cb, job);
    return MAPQ_OK;
}
