/*
 * mapq_taskspec.c - encoding and decoding the task spec message.
 *
 * Encoded as a msgpack map with short string keys (docs/PROTOCOL.md).
 * Decoding checks every field's type and ignores unknown keys, so newer
 * schedulers may add fields.
 */
#include "mapq_taskspec.h"

#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_value.h"

static void
pack_kv_str(msgpack_packer *pk, const char *k, const char *v)
{
    mapq_value_pack_str(pk, k);
    if (v == NULL)
        msgpack_pack_nil(pk);
    else
        mapq_value_pack_str(pk, v);
}

static void
pack_kv_int(msgpack_packer *pk, const char *k, int64_t v)
{
    mapq_value_pack_str(pk, k);
    msgpack_pack_int64(pk, v);
}

static void
pack_kv_bool(msgpack_packer *pk, const char *k, bool v)
{
    mapq_value_pack_str(pk, k);
    if (v)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

void
mapq_taskspec_encode(const struct mapq_taskspec *s, struct mapq_buf *out)
{
    msgpack_packer pk;
    char *otype = s->output ? mapq_type_format_alloc(s->output) : NULL;
    char *ftype = s->files ? mapq_type_format_alloc(s->files) : NULL;
    size_t i;

    char store[MAPQ_STORE_URI_MAX + 1];
    bool has_store = s->store.kind != MAPQ_STORE_REDIS;

    mapq_value_packer_init(&pk, out);
    msgpack_pack_map(&pk, 26 + has_store);
    pack_kv_str(&pk, "task", s->task);
    pack_kv_str(&pk, "node", s->node);
    pack_kv_str(&pk, "kind", s->plugin ? "plugin" : "command");
    mapq_value_pack_str(&pk, "argv");
    msgpack_pack_array(&pk, (uint32_t)s->argc);
    for (i = 0; i < s->argc; i++)
        mapq_value_pack_str(&pk, s->argv[i]);
    pack_kv_str(&pk, "lib", s->library);
    pack_kv_str(&pk, "sym", s->symbol);
    pack_kv_str(&pk, "out", otype);
    free(otype);
    pack_kv_str(&pk, "fin", ftype);
    free(ftype);
    pack_kv_bool(&pk, "text", s->output_text);
    pack_kv_bool(&pk, "wk", s->worker);
    pack_kv_int(&pk, "batch", s->batch);
    pack_kv_int(&pk, "retries", s->retries);
    pack_kv_int(&pk, "timeout", s->timeout_ms);
    pack_kv_int(&pk, "sysr", s->system_retries);
    pack_kv_int(&pk, "intrf", s->interruptible_failures);
    pack_kv_bool(&pk, "intr", s->interruptible);
    pack_kv_str(&pk, "queue", s->queue);
    pack_kv_int(&pk, "mem", s->mem_bytes);
    pack_kv_int(&pk, "cpu", s->cpu_milli);
    pack_kv_int(&pk, "bo_i", s->backoff_initial_ms);
    pack_kv_int(&pk, "bo_m", s->backoff_max_ms);
    pack_kv_int(&pk, "bo_f", s->backoff_factor_milli);
    pack_kv_bool(&pk, "c", s->cache);
    pack_kv_int(&pk, "cttl", s->cache_ttl_ms);
    pack_kv_bool(&pk, "cser", s->cache_serialize);
    pack_kv_bool(&pk, "ow", s->overwrite);
    if (has_store) {
        mapq_store_format(&s->store, store, sizeof(store));
        pack_kv_str(&pk, "st", store);
    }
}

int64_t
mapq_taskspec_backoff_ms(const struct mapq_taskspec *s, uint32_t failures,
                         double rnd)
{
    double d = (double)s->backoff_initial_ms;
    uint32_t i;

    if (s->backoff_initial_ms <= 0 || failures == 0)
        return 0;
    for (i = 1; i < failures && d < (double)s->backoff_max_ms &&
                s->backoff_factor_milli > 1000;
         i++)
        d *= (double)s->backoff_factor_milli / 1000.0;
    if (d > (double)s->backoff_max_ms)
        d = (double)s->backoff_max_ms;
    return (int64_t)(d / 2 + d / 2 * rnd);
}

static char *
dup_str(const msgpack_object *o)
{
    if (o == NULL || o->type != MSGPACK_OBJECT_STR)
        return NULL;
    return mapq_xstrndup(o->via.str.ptr, o->via.str.size);
}

static int
get_int(const msgpack_object *m, const char *k, int64_t lo, int64_t hi,
        int64_t *out)
{
    const msgpack_object *o = mapq_value_map_get(m, k);

    if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        o->via.u64 <= (uint64_t)hi)
        *out = (int64_t)o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && o->via.i64 >= lo)
        *out = o->via.i64;
    else
        return -1;
    return *out < lo ? -1 : 0;
}

/*
 * Reads optional str field k into *out (NULL when absent or nil); -1 when
 * present with another type.
 */
static int
get_opt_str(const msgpack_object *m, const char *k, char **out)
{
    const msgpack_object *o = mapq_value_map_get(m, k);

    *out = NULL;
    if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (o->type != MSGPACK_OBJECT_STR)
        return -1;
    *out = dup_str(o);
    return 0;
}

/* Reads optional bool field k into *out (false when absent or nil). */
static int
get_bool(const msgpack_object *m, const char *k, bool *out)
{
    const msgpack_object *o = mapq_value_map_get(m, k);

    *out = false;
    if (o == NULL || o->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (o->type != MSGPACK_OBJECT_BOOLEAN)
        return -1;
    *out = o->via.boolean;
    return 0;
}

static enum mapq_err
decode_argv(struct mapq_taskspec *s, const msgpack_object *m, char *err)
{
    const msgpack_object *a = mapq_value_map_get(m, "argv");
    uint32_t i;

    if (a == NULL || a->type != MSGPACK_OBJECT_ARRAY)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: argv is not a list");
    s->argv = mapq_xcalloc(a->via.array.size + 1, sizeof(char *));
    for (i = 0; i < a->via.array.size; i++) {
        s->argv[i] = dup_str(&a->via.array.ptr[i]);
        if (s->argv[i] == NULL)
            return mapq_err_set(err, MAPQ_EPROTO,
                                "task spec: argv[%u] is not a string", i);
        s->argc++;
    }
    return MAPQ_OK;
}

/* Decodes the optional int fields, each defaulting when absent or nil. */
static enum mapq_err
decode_numbers(struct mapq_taskspec *s, const msgpack_object *m, char *err)
{
    int64_t v;

    v = 0;
    if (get_int(m, "retries", 0, 1000000, &v) != 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: bad retries");
    s->retries = (int)v;
    v = 0;
    if (get_int(m, "timeout", 0, INT64_MAX, &v) != 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: bad timeout");
    s->timeout_ms = v;
    v = 3;
    if (get_int(m, "sysr", 0, 1000000, &v) != 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: bad sysr");
    s->system_retries = (int)v;
    v = s->system_retries > 0 ? s->system_retries - 1 : 0;
    if (get_int(m, "intrf", 0, 1000000, &v) != 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: bad intrf");
    s->interruptible_failures = (int)v;
    v = 0;
    if (get_int(m, "mem", 0, INT64_MAX, &v) != 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: bad mem");
    s->mem_bytes = v;
    v = 0;
    if (get_int(m, "cpu", 0, MAPQ_CPU_MILLI_MAX, &v) != 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: bad cpu");
    s->cpu_milli = v;
    v = 0;
    if (get_int(m, "bo_i", 0, INT64_MAX, &v) != 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: bad bo_i");
    s->backoff_initial_ms = v;
    v = s->backoff_initial_ms;
    if (get_int(m, "bo_m", s->backoff_initial_ms, INT64_MAX, &v) != 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: bad bo_m");
    s->backoff_max_ms = v;
    v = 1000;
    if (get_int(m, "bo_f", 0, 1000000000, &v) != 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: bad bo_f");
    s->backoff_factor_milli = (int)v;
    v = 0;
    if (get_int(m, "cttl", 0, INT64_MAX, &v) != 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: bad cttl");
    s->cache_ttl_ms = v;
    v = 0;
    if (get_int(m, "batch", 0, MAPQ_BATCH_MAX, &v) != 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: bad batch");
    s->batch = (int)v;
    return MAPQ_OK;
}

/* Decodes "fin", the record of the inputs that hold files, if any. */
static enum mapq_err
decode_files(struct mapq_taskspec *s, const msgpack_object *m, char *err)
{
    char *fin;

    if (get_opt_str(m, "fin", &fin) != 0)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "task spec: 'fin' is not a string or nil");
    if (fin == NULL)
        return MAPQ_OK;
    s->files = mapq_type_parse(fin, err);
    free(fin);
    if (s->files == NULL)
        return MAPQ_EPROTO;
    if (s->files->kind != MAPQ_T_RECORD)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: 'fin' is no record");
    return MAPQ_OK;
}

/* The store its outputs go to: "st", absent for the embedded one. */
static enum mapq_err
decode_store(struct mapq_taskspec *s, const msgpack_object *m, char *err)
{
    char why[MAPQ_ERR_LEN];
    enum mapq_err rc;
    char *st;

    if (get_opt_str(m, "st", &st) != 0)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "task spec: 'st' is not a string or nil");
    if (st == NULL)
        return MAPQ_OK;
    rc = mapq_store_parse(st, &s->store, why);
    free(st);
    if (rc != MAPQ_OK)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: %s", why);
    return MAPQ_OK;
}

/* Decodes every known field of spec map m into s, checking its type. */
static enum mapq_err
decode_fields(struct mapq_taskspec *s, const msgpack_object *m, char *err)
{
    char *kind, *out;

    s->task = dup_str(mapq_value_map_get(m, "task"));
    s->node = dup_str(mapq_value_map_get(m, "node"));
    s->queue = dup_str(mapq_value_map_get(m, "queue"));
    kind = dup_str(mapq_value_map_get(m, "kind"));
    if (s->task == NULL || s->node == NULL || s->queue == NULL || !kind ||
        (strcmp(kind, "plugin") != 0 && strcmp(kind, "command") != 0)) {
        free(kind);
        return mapq_err_set(err, MAPQ_EPROTO,
                            "task spec: missing task, node, queue or kind");
    }
    s->plugin = strcmp(kind, "plugin") == 0;
    free(kind);
    if (get_opt_str(m, "lib", &s->library) != 0)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "task spec: 'lib' is not a string or nil");
    if (get_opt_str(m, "sym", &s->symbol) != 0)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "task spec: 'sym' is not a string or nil");
    if (s->plugin && (s->library == NULL || s->symbol == NULL))
        return mapq_err_set(err, MAPQ_EPROTO,
                            "task spec: plugin without lib or sym");
    if (decode_argv(s, m, err) != MAPQ_OK)
        return MAPQ_EPROTO;
    if (!s->plugin && s->argc == 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: empty argv");
    if (get_opt_str(m, "out", &out) != 0)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "task spec: 'out' is not a string or nil");
    if (out != NULL) {
        s->output = mapq_type_parse(out, err);
        free(out);
        if (s->output == NULL)
            return MAPQ_EPROTO;
        s->output_written = mapq_type_file_paths(s->output);
    }
    if (decode_files(s, m, err) != MAPQ_OK)
        return MAPQ_EPROTO;
    if (get_bool(m, "text", &s->output_text) != 0)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "task spec: 'text' is not a bool");
    if (get_bool(m, "wk", &s->worker) != 0)
        return mapq_err_set(err, MAPQ_EPROTO, "task spec: 'wk' is not a bool");
    if (get_bool(m, "intr", &s->interruptible) != 0)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "task spec: 'intr' is not a bool");
    if (get_bool(m, "c", &s->cache) != 0 ||
        get_bool(m, "cser", &s->cache_serialize) != 0 ||
        get_bool(m, "ow", &s->overwrite) != 0)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "task spec: 'c', 'cser' or 'ow' is not a bool");
    if (decode_store(s, m, err) != MAPQ_OK)
        return MAPQ_EPROTO;
    return decode_numbers(s, m, err);
}

struct mapq_taskspec *
mapq_taskspec_decode(const char *data, size_t len, char *err)
{
    struct mapq_taskspec *s = mapq_xcalloc(1, sizeof(*s));
    msgpack_unpacked u;
    enum mapq_err rc;

    msgpack_unpacked_init(&u);
    rc = mapq_value_unpack(data, len, &u, err);
    if (rc == MAPQ_OK && u.data.type != MSGPACK_OBJECT_MAP)
        rc = mapq_err_set(err, MAPQ_EPROTO, "task spec is not a map");
    if (rc == MAPQ_OK)
        rc = decode_fields(s, &u.data, err);
    msgpack_unpacked_destroy(&u);
    if (rc != MAPQ_OK) {
        mapq_taskspec_free(s);
        return NULL;
    }
    return s;
}

void
mapq_taskspec_free(struct mapq_taskspec *s)
{
    size_t i;

    if (s == NULL)
        return;
    free(s->task);
    free(s->node);
    for (i = 0; i < s->argc; i++)
        free(s->argv[i]);
    free(s->argv);
    free(s->library);
    free(s->symbol);
    mapq_type_free(s->output);
    mapq_type_free(s->files);
    mapq_type_free(s->output_written);
    free(s->queue);
    free(s);
}
