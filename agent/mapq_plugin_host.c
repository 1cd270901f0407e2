/*
 * mapq_plugin_host.c - dlopen'd plugin libraries and the call glue.
 */
#include "mapq_plugin_host.h"

#include <dlfcn.h>
#include <limits.h>
#include <link.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_value.h"

#define CHECKPOINT_MAX (16u * 1024 * 1024)

/* The data symbol MAPQ_PLUGIN_DEFINE() puts in every plugin. */
#define ABI_SYMBOL "mapq_plugin_abi_version"

struct library {
    char *name; /* as written in the workflow */
    void *handle;
    LIST_ENTRY(library) entry;
};

struct mapq_plugin_host {
    char *self_dir;
    LIST_HEAD(, library) libs;
};

struct mapq_plugin_host *
mapq_plugin_host_new(const char *self_dir)
{
    struct mapq_plugin_host *h = mapq_xcalloc(1, sizeof(*h));

    h->self_dir = mapq_xstrdup(self_dir ? self_dir : ".");
    LIST_INIT(&h->libs);
    return h;
}

void
mapq_plugin_host_free(struct mapq_plugin_host *h)
{
    struct library *l;

    if (h == NULL)
        return;
    while ((l = LIST_FIRST(&h->libs)) != NULL) {
        LIST_REMOVE(l, entry);
        /* Libraries stay mapped: a plugin may have left threads or atexit
         * handlers behind, and unloading buys nothing at exit. */
        free(l->name);
        free(l);
    }
    free(h->self_dir);
    free(h);
}

/* Tries dir/name; returns a handle or NULL. */
static void *
open_in(const char *dir, const char *name)
{
    char path[PATH_MAX];

    if (snprintf(path, sizeof(path), "%s/%s", dir, name) >= (int)sizeof(path))
        return NULL;
    if (access(path, R_OK) != 0)
        return NULL;
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

static void *
open_library(struct mapq_plugin_host *h, const char *name, char *err)
{
    const char *env = getenv("MAPQ_PLUGIN_PATH");
    char *dirs, *dir, *save = NULL;
    void *handle = NULL;

    if (strchr(name, '/') == NULL) {
        if (env != NULL) {
            dirs = mapq_xstrdup(env);
            for (dir = strtok_r(dirs, ":", &save); dir && !handle;
                 dir = strtok_r(NULL, ":", &save))
                handle = open_in(dir, name);
            free(dirs);
        }
        if (handle == NULL)
            handle = open_in(h->self_dir, name);
    }
    if (handle == NULL)
        handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (handle == NULL)
        mapq_err_set(err, MAPQ_ENOENT, "cannot load plugin library '%s': %s",
                     name, dlerror());
    return handle;
}

/* True when addr lies in the object of handle, not in a dependency. */
static bool
in_library(void *handle, const void *addr)
{
    struct link_map *own = NULL, *found = NULL;
    Dl_info info;

    if (dlinfo(handle, RTLD_DI_LINKMAP, &own) != 0 || own == NULL)
        return false;
    if (dladdr1(addr, &info, (void **)&found, RTLD_DL_LINKMAP) == 0)
        return false;
    return found == own;
}

/*
 * dlsym() limited to the library itself: on a handle it also searches the
 * library's dependencies (libc, msgpack-c, ...).
 */
static void *
own_symbol(void *handle, const char *symbol)
{
    void *sym = dlsym(handle, symbol);

    return sym != NULL && in_library(handle, sym) ? sym : NULL;
}

mapq_plugin_fn *
mapq_plugin_host_lookup(struct mapq_plugin_host *h, const char *library,
                        const char *symbol, char *err)
{
    struct library *l;
    const uint32_t *abi;
    void *sym;

    LIST_FOREACH (l, &h->libs, entry)
        if (strcmp(l->name, library) == 0)
            break;
    if (l == NULL) {
        void *handle = open_library(h, library, err);

        if (handle == NULL)
            return NULL;
        l = mapq_xcalloc(1, sizeof(*l));
        l->name = mapq_xstrdup(library);
        l->handle = handle;
        LIST_INSERT_HEAD(&h->libs, l, entry);
    }
    abi = own_symbol(l->handle, ABI_SYMBOL);
    if (abi == NULL || *abi != MAPQ_PLUGIN_ABI_VERSION) {
        mapq_err_set(err, MAPQ_EINVAL,
                     "plugin library '%s' was built for ABI %u, this agent "
                     "speaks %u (rebuild it against mapq/plugin.h)",
                     library, abi ? *abi : 0u, MAPQ_PLUGIN_ABI_VERSION);
        return NULL;
    }
    /* Every plugin has this data symbol; called as a task it would crash
     * the agent. */
    if (strcmp(symbol, ABI_SYMBOL) == 0) {
        mapq_err_set(err, MAPQ_EINVAL,
                     "symbol '%s' of plugin library '%s' is not a task "
                     "function",
                     symbol, library);
        return NULL;
    }
    sym = dlsym(l->handle, symbol);
    if (sym == NULL) {
        mapq_err_set(err, MAPQ_ENOENT, "plugin library '%s' has no symbol '%s'",
                     library, symbol);
        return NULL;
    }
    if (!in_library(l->handle, sym)) {
        mapq_err_set(err, MAPQ_ENOENT,
                     "plugin library '%s' has no symbol '%s' of its own (it "
                     "comes from a dependency)",
                     library, symbol);
        return NULL;
    }
    /* POSIX guarantees data and function pointers convert through dlsym. */
    return (mapq_plugin_fn *)(uintptr_t)sym;
}

void
mapq_plugin_outcome_init(struct mapq_plugin_outcome *o)
{
    memset(o, 0, sizeof(*o));
    mapq_buf_init(&o->output, 0);
    mapq_buf_init(&o->checkpoint, CHECKPOINT_MAX);
}

void
mapq_plugin_outcome_release(struct mapq_plugin_outcome *o)
{
    mapq_buf_release(&o->output);
    mapq_buf_release(&o->checkpoint);
}

static int
set_output_cb(const struct mapq_plugin_call *call, const char *data, size_t len)
{
    struct mapq_plugin_outcome *o = call->agent_private;
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN];
    int rc = -1;

    msgpack_unpacked_init(&u);
    if (mapq_value_unpack(data, len, &u, err) == MAPQ_OK) {
        mapq_buf_reset(&o->output);
        rc = mapq_buf_append(&o->output, data, len) == MAPQ_OK ? 0 : -1;
        if (rc != 0)
            snprintf(o->error, sizeof(o->error),
                     "output over the size cap (%zu bytes)", o->output.max);
    } else {
        snprintf(o->error, sizeof(o->error), "plugin output: %.400s", err);
    }
    msgpack_unpacked_destroy(&u);
    return rc;
}

static void
set_error_cb(const struct mapq_plugin_call *call, const char *message)
{
    struct mapq_plugin_outcome *o = call->agent_private;

    snprintf(o->error, sizeof(o->error), "%s", message ? message : "error");
}

static int
save_checkpoint_cb(const struct mapq_plugin_call *call, const void *data,
                   size_t len)
{
    struct mapq_plugin_outcome *o = call->agent_private;

    /* Refuse before touching the saved checkpoint: a refused save keeps
     * the previous one, as has_checkpoint says. */
    if (o->checkpoint.max != 0 && len > o->checkpoint.max)
        return -1;
    mapq_buf_reset(&o->checkpoint);
    if (mapq_buf_append(&o->checkpoint, data, len) != MAPQ_OK) {
        o->has_checkpoint = 0;
        return -1;
    }
    o->has_checkpoint = 1;
    return 0;
}

void
mapq_plugin_host_call(mapq_plugin_fn *fn, struct mapq_plugin_call *call,
                      size_t output_max, struct mapq_plugin_outcome *out)
{
    static const char nil = (char)0xc0;

    out->output.max = output_max;
    call->abi_version = MAPQ_PLUGIN_ABI_VERSION;
    call->set_output = set_output_cb;
    call->set_error = set_error_cb;
    call->save_checkpoint = save_checkpoint_cb;
    call->agent_private = out;
    out->status = fn(call) == MAPQ_PLUGIN_OK && out->error[0] == '\0'
                      ? MAPQ_PLUGIN_OK
                      : MAPQ_PLUGIN_ERROR;
    if (out->status == MAPQ_PLUGIN_ERROR && out->error[0] == '\0')
        snprintf(out->error, sizeof(out->error),
                 "plugin reported an error without a message");
    if (out->status == MAPQ_PLUGIN_OK && out->output.len == 0)
        mapq_buf_append(&out->output, &nil, 1);
}
