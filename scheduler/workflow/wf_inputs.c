/*
 * wf_inputs.c - workflow inputs: their declarations in the file, and
 * their values from --input, an inputs file (YAML, or JSON by name) and
 * defaults.
 *
 * Fills c->wf->inputs during the parse, and the struct wf_bind of
 * mapq_workflow_bind_inputs() while binding. Values are converted to the
 * input's declared type as literals in a workflow file are; JSON files
 * are read with JSON's rules and streamed (mapq_json.h), so a long list in
 * one is never a tree. Reads the files it is given.
 */
#include <fcntl.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_json.h"
#include "mapq_pages.h"
#include "mapq_value.h"
#include "wf_int.h"

/* What a value of input p binds to: files may be local paths. */
#define GIVEN(p) ((p)->given != NULL ? (p)->given : (p)->type)

/* ---- declarations ------------------------------------------------------ */

enum { IF_TYPE, IF_DEFAULT, IF_N };
static const char *const input_fields[IF_N] = {"type", "default"};

static void
parse_input(struct ctx *c, yaml_node_t *k, yaml_node_t *v, struct mapq_param *p)
{
    struct fields f;
    yaml_node_t *tnode = v, *dnode = NULL;
    char where[256], subject[256];

    p->name = mapq_xstrdup(stext(k));
    p->pos = pos_of(k);
    mapq_buf_init(&p->value, MAPQ_VALUE_MAX);
    snprintf(where, sizeof(where), "in input '%s'", p->name);
    if (v->type == YAML_MAPPING_NODE) {
        wf_get_fields(c, v, input_fields, IF_N, &f, where);
        tnode = f.val[IF_TYPE];
        dnode = f.val[IF_DEFAULT];
        if (tnode == NULL)
            wf_perr(c, k, "input '%s' needs a 'type'", p->name);
    }
    snprintf(where, sizeof(where), "type of input '%s'", p->name);
    if (tnode != NULL)
        p->type = wf_get_type(c, tnode, where);
    p->given = mapq_type_file_paths(p->type);
    if (dnode == NULL || p->type == NULL)
        return;
    snprintf(subject, sizeof(subject), "default of '%s'", p->name);
    p->has_default = wf_conv_literal(c, dnode, GIVEN(p), &p->value, subject);
}

void
wf_parse_inputs(struct ctx *c, yaml_node_t *map)
{
    struct mapq_workflow *wf = c->wf;
    bool *skip;
    size_t i, n;
    yaml_node_t *k;

    if (!wf_expect_map(c, map, "'inputs' must be a mapping of name to type"))
        return;
    n = npairs(map);
    skip = wf_check_keys(c, map);
    wf->inputs = mapq_xcalloc(n ? n : 1, sizeof(*wf->inputs));
    for (i = 0; i < n; i++) {
        k = cnode(c, map->data.mapping.pairs.start[i].key);
        if (skip[i] || !wf_check_ident(c, k, "input"))
            continue;
        parse_input(c, k, cnode(c, map->data.mapping.pairs.start[i].value),
                    &wf->inputs[wf->ninputs++]);
    }
    free(skip);
}

/* ---- values ------------------------------------------------------------ */

/* Legal moves of an input's state (enum wf_input_state): from UNSET only. */
static const bool legal[WF_IN_NSTATES][WF_IN_NSTATES] = {
    [WF_IN_UNSET] =
        {[WF_IN_GIVEN] = true, [WF_IN_INVALID] = true, [WF_IN_DEFAULT] = true},
};

bool
wf_input_legal(enum wf_input_state from, enum wf_input_state to)
{
    return from < WF_IN_NSTATES && to < WF_IN_NSTATES && legal[from][to];
}

void
wf_input_set(struct wf_bind *bd, size_t k, enum wf_input_state to)
{
    mapq_assert(k < bd->wf->ninputs);
    mapq_assert(wf_input_legal(bd->state[k], to));
    bd->state[k] = to;
}

static void
bind_unknown(struct wf_bind *bd, const char *name)
{
    const struct mapq_workflow *wf = bd->wf;
    const char **names =
        wf_names_of(wf->inputs, wf->ninputs, sizeof(*wf->inputs));
    char list[MSG_MAX / 2];

    if (wf->ninputs == 0)
        wf_prob_add(&bd->probs, NULL, 0, 0,
                    "--input %s: no such workflow input (the workflow has no "
                    "inputs)",
                    name);
    else
        wf_prob_add(&bd->probs, NULL, 0, 0,
                    "--input %s: no such workflow input (inputs: %s)", name,
                    wf_join_names(names, wf->ninputs, list, sizeof(list)));
    free(names);
}

/* True when path names a JSON file: read with JSON's rules, not YAML's
 * (YAML refuses the surrogate-pair escapes JSON writers use for "😀"). */
static bool
is_json_path(const char *path)
{
    size_t n = strlen(path);

    return n >= 5 && strcasecmp(path + n - 5, ".json") == 0;
}

/* The message of a JSON value over the cap, worded as for YAML values
 * wherever in the value the cap was met. */
static void
json_too_big(char *msg)
{
    mapq_err_set(msg, MAPQ_ETOOBIG, "value is larger than the %u MiB cap",
                 MAPQ_VALUE_MAX >> 20);
}

static void json_assign_file(struct wf_bind *bd, long k, const char *path);

/* One --input NAME=VALUE (VALUE may be @FILE: read as JSON when its name
 * ends in .json, else as a YAML literal). */
void
wf_bind_assign(struct wf_bind *bd, const char *assign)
{
    const char *eq = strchr(assign, '='), *val;
    char name[256], msg[MAPQ_ERR_LEN];
    struct mapq_buf file;
    long k;
    enum mapq_err rc;

    if (eq == NULL || eq == assign) {
        wf_prob_add(&bd->probs, NULL, 0, 0, "--input %s: expected NAME=VALUE",
                    assign);
        return;
    }
    snprintf(name, sizeof(name), "%.*s", (int)(eq - assign), assign);
    k = mapq_workflow_find_input(bd->wf, name);
    if (k < 0) {
        bind_unknown(bd, name);
        return;
    }
    if (bd->state[k] != WF_IN_UNSET) {
        wf_prob_add(&bd->probs, NULL, 0, 0, "--input %s: given more than once",
                    name);
        return;
    }
    val = eq + 1;
    if (val[0] == '@' && is_json_path(val + 1)) {
        json_assign_file(bd, k, val + 1);
        return;
    }
    if (val[0] != '@') {
        rc = wf_text_value(val, strlen(val), GIVEN(&bd->wf->inputs[k]),
                           &bd->vals[k], msg);
        if (rc != MAPQ_OK)
            wf_prob_add(&bd->probs, NULL, 0, 0, "--input %s: %s", name, msg);
    } else if (wf_read_file(val + 1, TEXT_MAX, &file, msg) != MAPQ_OK) {
        wf_prob_add(&bd->probs, NULL, 0, 0, "--input %s: %s", name, msg);
        wf_input_set(bd, (size_t)k, WF_IN_INVALID);
        return;
    } else {
        rc = wf_text_value(file.data != NULL ? file.data : "", file.len,
                           GIVEN(&bd->wf->inputs[k]), &bd->vals[k], msg);
        if (rc != MAPQ_OK)
            wf_prob_add(&bd->probs, NULL, 0, 0, "--input %s: %s: %s", name,
                        val + 1, msg);
        mapq_buf_release(&file);
    }
    wf_input_set(bd, (size_t)k, rc == MAPQ_OK ? WF_IN_GIVEN : WF_IN_INVALID);
}

/* Looks an --inputs key up: its input's index, or -1 with a problem. */
static long
bind_key(struct wf_bind *bd, const char *path, int line, int col,
         const char *key)
{
    char list[MSG_MAX / 2];
    const char **names;
    long idx = mapq_workflow_find_input(bd->wf, key);

    if (idx >= 0)
        return idx;
    if (bd->probs.n >= PROBLEMS_SHOWN) {
        /* Not shown: spare the list of names. */
        wf_prob_add(&bd->probs, path, line, col, "no such workflow input '%s'",
                    key);
        return -1;
    }
    names =
        wf_names_of(bd->wf->inputs, bd->wf->ninputs, sizeof(*bd->wf->inputs));
    wf_prob_add(&bd->probs, path, line, col,
                "no such workflow input '%s' (inputs: %s)", key,
                wf_join_names(names, bd->wf->ninputs, list, sizeof(list)));
    free(names);
    return -1;
}

/* One entry of an --inputs file. */
static void
bind_entry(struct wf_bind *bd, const char *path, yaml_document_t *doc,
           yaml_node_t *k, yaml_node_t *v, size_t *budget)
{
    struct conv cv;
    msgpack_packer pk;
    struct mapq_pos p = pos_of(k);
    long idx;
    char d[96];

    if (k->type != YAML_SCALAR_NODE) {
        wf_prob_add(&bd->probs, path, p.line, p.col,
                    "keys must be input names, got %s",
                    wf_describe(k, d, sizeof(d)));
        return;
    }
    idx = bind_key(bd, path, p.line, p.col, stext(k));
    if (idx < 0)
        return;
    if (bd->state[idx] != WF_IN_UNSET)
        return; /* --input wins */
    wf_conv_init(&cv, doc, budget, v->start_mark);
    mapq_value_packer_init(&pk, &bd->vals[idx]);
    if (wf_conv_value(&cv, v, GIVEN(&bd->wf->inputs[idx]), 0, &pk) == MAPQ_OK) {
        wf_input_set(bd, (size_t)idx, WF_IN_GIVEN);
        return;
    }
    wf_input_set(bd, (size_t)idx, WF_IN_INVALID);
    p = pos_of_mark(cv.mark);
    wf_prob_add(&bd->probs, path, p.line, p.col, "'%s': %s", stext(k), cv.msg);
}

/* Reading a JSON inputs file, or the file of an --input NAME=@FILE.json:
 * where its members (its one value) go. */
struct json_bind {
    struct wf_bind *bd;
    const char *path;
    long idx;            /* the input of the member being read */
    struct wf_pager pgr; /* its list, when it comes in pages */
    const char *map;     /* the file, when it is mapped */
    bool assign;         /* --input NAME=@FILE.json: problems say so */
};

/* A member of a JSON inputs file: its input's buffer, or NULL to skip an
 * unknown name (reported) or an input --input gave (it wins). */
static struct mapq_buf *
json_member(void *arg, const struct mapq_json_member *m,
            const struct mapq_type **type)
{
    struct json_bind *jb = arg;
    struct wf_bind *bd = jb->bd;
    long idx = bind_key(bd, jb->path, m->pos.line, m->pos.col, m->name);

    if (idx < 0 || bd->state[idx] != WF_IN_UNSET)
        return NULL;
    jb->idx = idx;
    *type = GIVEN(&bd->wf->inputs[idx]);
    wf_pager_release(&jb->pgr);
    wf_pager_init(&jb->pgr, bd->pages, bd->wf->inputs[idx].name);
    return &bd->vals[idx];
}

/* A page of a member's list: held or spooled (wf_pager.c). */
static enum mapq_err
json_member_page(void *arg, const struct mapq_json_member *m, const char *elems,
                 size_t len, uint32_t count, char *err)
{
    struct json_bind *jb = arg;

    (void)m;
    return wf_pager_page(&jb->pgr, elems, len, count, err);
}

/* The text before off is read: a mapped file gives its pages back, so
 * that a file of any size costs a few MiB of memory. */
static void
json_consumed(void *arg, size_t off)
{
    struct json_bind *jb = arg;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);

    if (jb->map != NULL && off / page > 0)
        madvise((void *)(uintptr_t)jb->map, off / page * page, MADV_DONTNEED);
}

/* A member's value has been converted, or has failed at where. */
static void
json_member_done(void *arg, const struct mapq_json_member *m, enum mapq_err rc,
                 const char *err, const struct mapq_json_pos *where)
{
    struct json_bind *jb = arg;
    char msg[MAPQ_ERR_LEN];

    if (rc == MAPQ_OK && m->paged)
        rc = wf_pager_finish(&jb->pgr, &jb->bd->vals[jb->idx], msg);
    if (rc == MAPQ_OK) {
        wf_input_set(jb->bd, (size_t)jb->idx, WF_IN_GIVEN);
        return;
    }
    wf_input_set(jb->bd, (size_t)jb->idx, WF_IN_INVALID);
    if (rc == MAPQ_ETOOBIG) {
        json_too_big(msg);
        err = msg;
    }
    if (jb->assign)
        wf_prob_add(&jb->bd->probs, NULL, 0, 0, "--input %s: %s: %s", m->name,
                    jb->path, err);
    else
        wf_prob_add(&jb->bd->probs, jb->path, where->line, where->col,
                    "'%s': %s", m->name, err);
}

/* How a JSON file's values are read: lists in pages when they may be
 * paged. */
static const struct mapq_json_member_ops *
json_ops(const struct wf_bind *bd)
{
    static const struct mapq_json_member_ops whole = {.member = json_member,
                                                      .done = json_member_done,
                                                      .consumed =
                                                          json_consumed};
    static const struct mapq_json_member_ops paged = {.member = json_member,
                                                      .done = json_member_done,
                                                      .page = json_member_page,
                                                      .page_len = MAPQ_PAGE_LEN,
                                                      .consumed =
                                                          json_consumed};

    return bd->pages ? &paged : &whole;
}

/* An --inputs file ending in .json: a JSON object of input name to value,
 * read member by member, each value streamed into its input's buffer, so
 * that neither the object nor a long list is ever one tree. Problems give
 * the line and column of the member's key, or of the element (of a list
 * value) or value that did not convert. */
static void
bind_json_file(struct wf_bind *bd, const char *path, const char *text,
               size_t len, bool mapped)
{
    struct json_bind jb = {.bd = bd, .path = path, .idx = -1};
    struct mapq_json_pos pos;
    char msg[MAPQ_ERR_LEN];
    enum mapq_err rc;

    jb.map = mapped ? text : NULL;
    wf_pager_init(&jb.pgr, NULL, "");
    rc = mapq_json_read_members(text, len, json_ops(bd), &jb, &pos, msg);
    wf_pager_release(&jb.pgr);
    if (rc == MAPQ_ETYPE)
        wf_prob_add(&bd->probs, path, pos.line, pos.col,
                    "an inputs file must be a JSON object of input name to "
                    "value");
    else if (rc != MAPQ_OK)
        wf_prob_add(&bd->probs, path, pos.line, pos.col, "invalid JSON: %s",
                    msg);
}

/*
 * The text of a JSON file. A regular file is mapped, not read: with its
 * long lists paged, it is never in memory whole, whatever its size. Other
 * files (a pipe) are read whole, under the cap of other inputs files.
 */
struct json_text {
    const char *data;
    size_t len;
    void *map; /* MAP_FAILED when read into buf */
    struct mapq_buf buf;
};

static enum mapq_err
json_text_open(struct json_text *t, const char *path, char *msg)
{
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    t->map = MAP_FAILED;
    mapq_buf_init(&t->buf, 0);
    if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0)
        t->map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (fd >= 0)
        close(fd);
    if (t->map != MAP_FAILED) {
        t->data = t->map;
        t->len = (size_t)st.st_size;
        return MAPQ_OK;
    }
    if (wf_read_file(path, TEXT_MAX, &t->buf, msg) != MAPQ_OK)
        return MAPQ_EIO;
    t->data = t->buf.data != NULL ? t->buf.data : "";
    t->len = t->buf.len;
    return MAPQ_OK;
}

static void
json_text_close(struct json_text *t)
{
    if (t->map != MAP_FAILED)
        munmap(t->map, t->len);
    mapq_buf_release(&t->buf);
}

static void
json_file(struct wf_bind *bd, const char *path)
{
    struct json_text t;
    char msg[MSG_MAX];

    if (json_text_open(&t, path, msg) != MAPQ_OK)
        wf_prob_add(&bd->probs, NULL, 0, 0, "--inputs: %s", msg);
    else
        bind_json_file(bd, path, t.data, t.len, t.map != MAP_FAILED);
    json_text_close(&t);
}

/*
 * --input NAME=@FILE.json, input k: the file is one JSON value, read as
 * the value of NAME in a JSON inputs file is (mapped, streamed, a long list
 * in pages), so that a list of any length costs a few MiB. Problems name
 * the input and the file.
 */
static void
json_assign_file(struct wf_bind *bd, long k, const char *path)
{
    struct json_bind jb = {.bd = bd, .path = path, .idx = -1, .assign = true};
    const char *name = bd->wf->inputs[k].name;
    struct mapq_json_pos pos;
    struct json_text t;
    char msg[MSG_MAX];

    if (json_text_open(&t, path, msg) != MAPQ_OK) {
        wf_prob_add(&bd->probs, NULL, 0, 0, "--input %s: %s", name, msg);
        wf_input_set(bd, (size_t)k, WF_IN_INVALID);
        json_text_close(&t);
        return;
    }
    jb.map = t.map != MAP_FAILED ? t.data : NULL;
    wf_pager_init(&jb.pgr, NULL, "");
    if (mapq_json_read_value(t.data, t.len, name, json_ops(bd), &jb, &pos,
                             msg) != MAPQ_OK) {
        wf_prob_add(&bd->probs, NULL, 0, 0,
                    "--input %s: %s: invalid JSON at line %d, column %d: %s",
                    name, path, pos.line, pos.col, msg);
        wf_input_set(bd, (size_t)k, WF_IN_INVALID);
    }
    wf_pager_release(&jb.pgr);
    json_text_close(&t);
}

/* An --inputs file: a mapping of input name to value. */
void
wf_bind_file(struct wf_bind *bd, const char *path)
{
    struct mapq_buf text;
    yaml_document_t doc;
    yaml_node_t *root, *k;
    char msg[MSG_MAX], d[96];
    int line = 1, col = 1;
    size_t i, n, budget = 0;
    bool *dup;

    if (is_json_path(path)) {
        json_file(bd, path);
        return;
    }
    if (wf_read_file(path, TEXT_MAX, &text, msg) != MAPQ_OK) {
        wf_prob_add(&bd->probs, NULL, 0, 0, "--inputs: %s", msg);
        return;
    }
    if (!wf_load_doc(text.data != NULL ? text.data : "", text.len, &doc, msg,
                     sizeof(msg), &line, &col)) {
        wf_prob_add(&bd->probs, path, line, col, "%s", msg);
        mapq_buf_release(&text);
        return;
    }
    root = yaml_document_get_root_node(&doc);
    if (root != NULL && root->type != YAML_MAPPING_NODE) {
        wf_prob_add(&bd->probs, path, pos_of(root).line, pos_of(root).col,
                    "an inputs file must be a mapping of input name to value, "
                    "got %s",
                    wf_describe(root, d, sizeof(d)));
    } else if (root != NULL) {
        n = npairs(root);
        dup = mapq_xcalloc(n ? n : 1, sizeof(*dup));
        wf_mark_dups(&doc, root, dup);
        for (i = 0; i < n; i++) {
            k = node_of(&doc, root->data.mapping.pairs.start[i].key);
            if (dup[i])
                wf_prob_add(&bd->probs, path, pos_of(k).line, pos_of(k).col,
                            "duplicate key '%s'", stext(k));
            else
                bind_entry(
                    bd, path, &doc, k,
                    node_of(&doc, root->data.mapping.pairs.start[i].value),
                    &budget);
        }
        free(dup);
    }
    yaml_document_delete(&doc);
    mapq_buf_release(&text);
}

/* Packs {name: value} for every input into out. */
enum mapq_err
wf_bind_pack(struct wf_bind *bd, struct mapq_buf *out)
{
    const struct mapq_workflow *wf = bd->wf;
    struct mapq_buf all;
    msgpack_packer pk;
    size_t k;
    enum mapq_err rc;

    mapq_buf_init(&all, 0);
    mapq_value_packer_init(&pk, &all);
    msgpack_pack_map(&pk, wf->ninputs);
    for (k = 0; k < wf->ninputs; k++) {
        mapq_value_pack_str(&pk, wf->inputs[k].name);
        mapq_buf_append(&all, bd->vals[k].data, bd->vals[k].len);
    }
    rc = mapq_buf_append(out, all.data, all.len);
    mapq_buf_release(&all);
    return rc;
}
