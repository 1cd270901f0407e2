/*
 * wf_int.h - what the files of scheduler/workflow/ share: limits, the
 * problem list, resolved scalars, the value converter, the parse context
 * and the inputs binding, and the functions each file offers the others.
 * No file outside scheduler/workflow/ includes it.
 *
 * The files form layers; each calls only the layers below it:
 *
 *   workflow.c     controller: owns the parse (struct ctx) and the inputs
 *                  binding (struct wf_bind), calls each leaf in turn, and
 *                  decides when the problems are written out
 *   wf_inputs.c    leaves, which never call each other: workflow inputs,
 *   wf_tasks.c     tasks, nodes and their bindings, the zip check of
 *   wf_nodes.c     `over` lists, the order of nodes
 *   wf_zip.c
 *   wf_graph.c
 *   wf_opts.c      the settings a task or a node may set (both read them)
 *   wf_fields.c    typed readers of one field of the file, reporting
 *   wf_model.c     the model's lifetime and its name lookups
 *   wf_value.c     YAML values to msgpack, directed by a type
 *   wf_yaml.c      loading files and YAML documents; core schema scalars
 *   wf_problems.c  the list of problems, and "did you mean" hints
 *
 * Nothing here logs. Every string a prototype takes is borrowed unless it
 * says otherwise.
 */
#ifndef MAPQ_WF_INT_H
#define MAPQ_WF_INT_H

#include <msgpack.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include "mapq_buf.h"
#include "mapq_err.h"
#include "mapq_type.h"
#include "mapq_workflow.h"

/* msgpack-c's unpacker refuses containers nested deeper than 32. */
#define CONV_MAX_DEPTH 32
#define CONV_MAX_NODES 1200000
#define TEXT_MAX       (64u * 1024 * 1024) /* an inputs file */
#define MSG_MAX        2048
#define PROBLEMS_SHOWN 50
#define SHOW_MAX       40
#define EDIT_MAX       32
#define MAX_FIELDS     24

/* ---- problems (wf_problems.c) ------------------------------------------ */

struct problem {
    const char *file; /* borrowed; NULL: the message says where */
    int line;         /* 1-based; 0: no position */
    int col;
    size_t seq; /* keeps equal positions in the order found */
    char *msg;
};

/* Problems found so far; the list owns each msg. Zeroed is empty. */
struct problems {
    struct problem *v;
    size_t n;
    size_t cap;
};

/* Adds one problem (control characters become spaces). */
void wf_prob_vadd(struct problems *ps, const char *file, int line, int col,
                  const char *fmt, va_list ap)
    __attribute__((format(printf, 5, 0)));
void wf_prob_add(struct problems *ps, const char *file, int line, int col,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* Writes the problems to errors (sorted by position if sort), then frees
 * them and leaves ps empty. */
void wf_prob_flush(struct problems *ps, bool sort, struct mapq_buf *errors);
/* " (did you mean 'X'?)" for the closest of cands (NULLs skipped), or "";
 * written into buf, which is returned. */
const char *wf_suggest(const char *name, const char *const *cands, size_t n,
                       char *buf, size_t len);
/* "a, b, c" into buf, truncated; returns buf. */
const char *wf_join_names(const char *const *names, size_t n, char *buf,
                          size_t len);
/* The names of n structs of size bytes at arr whose first member is their
 * char *name; the caller frees the array (not the names) with free(). */
const char **wf_names_of(const void *arr, size_t n, size_t size);
/* wf_suggest() among the names of n structs of size bytes at arr. */
const char *wf_suggest_in(const char *name, const void *arr, size_t n,
                          size_t size, char *buf, size_t len);
/* A suggestion, else " (WHAT: a, b)"; "" once ps holds PROBLEMS_SHOWN. */
const char *wf_hint_names(const struct problems *ps, const char *name,
                          const void *arr, size_t n, size_t size,
                          const char *what, char *buf, size_t len);

/* ---- YAML nodes (wf_yaml.c) -------------------------------------------- */

static inline struct mapq_pos
pos_of_mark(yaml_mark_t m)
{
    struct mapq_pos p;

    p.line = (int)m.line + 1;
    p.col = (int)m.column + 1;
    return p;
}

static inline struct mapq_pos
pos_of(const yaml_node_t *n)
{
    return pos_of_mark(n->start_mark);
}

static inline const char *
stext(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static inline size_t
slen(const yaml_node_t *n)
{
    return n->data.scalar.length;
}

static inline bool
is_plain(const yaml_node_t *n)
{
    return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static inline size_t
npairs(const yaml_node_t *m)
{
    return (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
}

static inline size_t
nitems(const yaml_node_t *s)
{
    return (size_t)(s->data.sequence.items.top - s->data.sequence.items.start);
}

static inline yaml_node_t *
node_of(yaml_document_t *doc, int id)
{
    return yaml_document_get_node(doc, id);
}

static inline bool
is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static inline bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static inline char *
fmt_type(const struct mapq_type *t, char *buf, size_t len)
{
    return mapq_type_format(t, buf, len);
}

/* A scalar resolved with the YAML 1.2 core schema. */
enum skind { SK_NULL, SK_BOOL, SK_INT, SK_UINT, SK_FLOAT, SK_STR, SK_RANGE };

struct scal {
    enum skind kind;
    bool b;
    int64_t i;
    uint64_t u;
    double d;
};

/* Resolves a scalar with the core schema; quoted scalars are strings. */
void wf_resolve(const char *s, size_t len, bool plain, struct scal *v);
/* How a scalar reads in a message: null, 5, 1.5, true or "quoted". */
const char *wf_describe_text(const char *s, size_t len, bool plain, char *buf,
                             size_t blen);
/* How node n reads in a message: a scalar as above, "a list", "a dict". */
const char *wf_describe(const yaml_node_t *n, char *buf, size_t blen);
/* True when n is a string scalar: quoted, or plain and not null/bool/num. */
bool wf_is_string(const yaml_node_t *n);
/* Sets dup[i] (npairs(map) entries) for each pair repeating an earlier
 * pair's scalar key. */
void wf_mark_dups(yaml_document_t *doc, const yaml_node_t *map, bool *dup);
/* Loads the single YAML document in text into doc (the caller deletes it
 * with yaml_document_delete()). On failure returns false with a message
 * and its 1-based position; doc is then not initialised. */
bool wf_load_doc(const char *text, size_t len, yaml_document_t *doc, char *msg,
                 size_t mlen, int *line, int *col);
/* Reads path into out (initialised here; the caller releases it), at most
 * max bytes; "cannot read 'PATH': REASON" in err on failure. */
enum mapq_err wf_read_file(const char *path, size_t max, struct mapq_buf *out,
                           char *err);

/* ---- values (wf_value.c) ----------------------------------------------- */

/* One conversion of a YAML value to msgpack; on failure msg says what
 * failed and mark where. */
struct conv {
    yaml_document_t *doc;
    size_t *budget;   /* nodes converted so far, shared by a whole parse */
    yaml_mark_t root; /* where the value starts */
    yaml_mark_t mark; /* where the problem is */
    char path[256];   /* [2]["key"] of the node being converted */
    char msg[MAPQ_ERR_LEN];
};

/* Sets up cv for a value of doc starting at root; borrows doc and budget. */
void wf_conv_init(struct conv *cv, yaml_document_t *doc, size_t *budget,
                  yaml_mark_t root);
/* Converts one scalar (text s of len bytes, plain or quoted) to type t. */
enum mapq_err wf_conv_scalar(struct conv *cv, yaml_mark_t mark, const char *s,
                             size_t len, bool plain, const struct mapq_type *t,
                             msgpack_packer *pk);
/* Converts YAML node n to msgpack of type t (NULL: any) into pk. */
enum mapq_err wf_conv_value(struct conv *cv, yaml_node_t *n,
                            const struct mapq_type *t, int depth,
                            msgpack_packer *pk);
/* Element type of a list or dict type t; any for any. */
const struct mapq_type *wf_child_type(const struct mapq_type *t);
/* Converts the one YAML document in text to type t (NULL: any), appended
 * to out; out is unchanged on failure, with the reason in msg. */
enum mapq_err wf_text_value(const char *text, size_t len,
                            const struct mapq_type *t, struct mapq_buf *out,
                            char *msg);

/* ---- the parse context (workflow.c owns it) ---------------------------- */

/* What the bindings pass needs of a node that the model does not keep. */
struct nodeinfo {
    yaml_node_t *key;  /* the node's name */
    yaml_node_t *over; /* NULL when absent */
    yaml_node_t *over_key;
    yaml_node_t *with;
    bool task_ok; /* its task exists, so its bindings can be checked */
};

/* One parse: the document (borrowed), the problems found and the model
 * being built, which mapq_workflow_parse() hands out or frees. */
struct ctx {
    const char *file;
    yaml_document_t *doc;
    struct problems probs;
    struct mapq_workflow *wf;
    struct nodeinfo *ni; /* one per wf->nodes entry */
    bool *task_out_bad;  /* one per task: its output type failed to parse */
    size_t budget;       /* value nodes converted, against CONV_MAX_NODES */
    bool budget_told;
};

static inline yaml_node_t *
cnode(struct ctx *c, int id)
{
    return node_of(c->doc, id);
}

/* ---- field readers (wf_fields.c) --------------------------------------- */

/* The values (and keys) of a fixed-schema mapping, by field number. */
struct fields {
    yaml_node_t *key[MAX_FIELDS];
    yaml_node_t *val[MAX_FIELDS];
};

/* Reports a problem at node n. */
void wf_perr(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Converts literal v to type t into out; false (reported, out emptied) if
 * it does not fit. */
bool wf_conv_literal(struct ctx *c, yaml_node_t *v, const struct mapq_type *t,
                     struct mapq_buf *out, const char *subject);
/* Like wf_conv_literal for a string that is not a node's own text ($$x). */
bool wf_conv_string(struct ctx *c, yaml_node_t *v, const char *s,
                    const struct mapq_type *t, struct mapq_buf *out,
                    const char *subject);
/* Sorts the pairs of map into f by the key names[i], reporting unknown,
 * duplicate and non-string keys. */
void wf_get_fields(struct ctx *c, yaml_node_t *map, const char *const *names,
                   size_t n, struct fields *f, const char *where);
/* Reports bad keys of a mapping of names; returns which pairs to skip
 * (caller frees). */
bool *wf_check_keys(struct ctx *c, yaml_node_t *map);
bool wf_expect_map(struct ctx *c, yaml_node_t *v, const char *what);
bool wf_check_ident(struct ctx *c, yaml_node_t *k, const char *what);
bool wf_get_int(struct ctx *c, yaml_node_t *v, const char *key, int64_t min,
                int64_t max, int64_t *out);
bool wf_get_small(struct ctx *c, yaml_node_t *v, const char *key, int *out);
bool wf_get_bool(struct ctx *c, yaml_node_t *v, const char *key, bool *out);
bool wf_get_real(struct ctx *c, yaml_node_t *v, const char *key, double lo,
                 bool lo_open, double hi, const char *expect, double *out);
/* Any scalar, as written; a copy the caller frees, or NULL (reported). */
char *wf_get_string(struct ctx *c, yaml_node_t *v, const char *key,
                    bool nonempty);
bool wf_get_duration(struct ctx *c, yaml_node_t *v, const char *key,
                     int64_t *ms);
bool wf_get_size(struct ctx *c, yaml_node_t *v, const char *key,
                 int64_t *bytes);
/* Parses the type at v (a type string, or a mapping of member names to
 * types: a record); the caller frees it, or NULL (reported). */
struct mapq_type *wf_get_type(struct ctx *c, yaml_node_t *v, const char *what);
/* Length of the identifier [A-Za-z_][A-Za-z0-9_]* at s; 0 if none. */
size_t wf_ident_len(const char *s);
bool wf_valid_ident(const char *s);
/* True when s is non-empty and every character is in [a-z0-9] or extra. */
bool wf_valid_word(const char *s, const char *extra, bool upper);

/* ---- the model (wf_model.c) -------------------------------------------- */

void wf_opts_init(struct mapq_task_opts *o);
void wf_opts_copy(struct mapq_task_opts *dst, const struct mapq_task_opts *src);
/* An index by name of n structs of size bytes at arr (each starting with
 * its char *name); the caller frees it with free(). */
struct mapq_name_ref *wf_index_names(const void *arr, size_t n, size_t size);

/* ---- settings a node may override (wf_opts.c) -------------------------- */

/* The settings a node may override, as found in a task or a node. */
struct opt_nodes {
    yaml_node_t *retries;
    yaml_node_t *timeout;
    yaml_node_t *interruptible;
    yaml_node_t *cache;
    yaml_node_t *resources;
    yaml_node_t *queue;
};

/* Applies the overridable settings found (non-NULL) in on to o; owner
 * reads like "task 'x'". */
void wf_parse_overridable(struct ctx *c, const struct opt_nodes *on,
                          struct mapq_task_opts *o, const char *owner);

/* ---- leaves ------------------------------------------------------------ */

/* wf_inputs.c: the `inputs` section into c->wf->inputs. */
void wf_parse_inputs(struct ctx *c, yaml_node_t *map);
/* wf_tasks.c: the `tasks` section into c->wf->tasks, c->task_out_bad. */
void wf_parse_tasks(struct ctx *c, yaml_node_t *map);
/* wf_nodes.c: the `nodes` section into c->wf->nodes and c->ni. */
void wf_parse_nodes(struct ctx *c, yaml_node_t *map);
/* wf_nodes.c: node i's `over` and `with`, its references and deps. */
void wf_node_bindings(struct ctx *c, size_t i);
/* wf_nodes.c: the workflow's `output`. */
void wf_parse_output(struct ctx *c, yaml_node_t *v);
/* wf_graph.c: c->wf->order, reporting each cycle. */
void wf_topo_order(struct ctx *c);

/*
 * Where one workflow input's value stands while inputs are bound. Each
 * input starts UNSET and moves at most once: --input, then the --inputs
 * file, give it a value (GIVEN) or one that failed (INVALID); what is
 * still UNSET then takes its default (DEFAULT) or stays UNSET, reported
 * as required. The first source wins: a later one finds it set.
 */
enum wf_input_state {
    WF_IN_UNSET = 0, /* zeroed memory */
    WF_IN_GIVEN,     /* by --input or --inputs, converted to its type */
    WF_IN_INVALID,   /* by --input or --inputs, and reported */
    WF_IN_DEFAULT,   /* its default, already of its type */
    WF_IN_NSTATES
};

/* The inputs binding of mapq_workflow_bind_inputs(), which owns it. */
struct wf_bind {
    const struct mapq_workflow *wf;
    struct problems probs;
    struct mapq_buf *vals;      /* per input: its msgpack value when GIVEN or
                                   DEFAULT */
    enum wf_input_state *state; /* per input; changed by wf_input_set() */
    const struct mapq_bind_pages *pages; /* long lists paged; NULL: not */
};

/*
 * wf_pager.c: a list input read a page of MAPQ_PAGE_LEN elements at a time
 * (every page full but the last): held while short, spooled once long.
 */
struct wf_pager {
    const struct mapq_bind_pages *pages; /* borrowed; NULL: never paged */
    char list[128];                      /* "i:<name>" */
    struct mapq_buf held; /* the elements of the pages held, no header */
    size_t *ends;         /* where each held page ends in held */
    uint32_t *counts;     /* and how many elements it has */
    size_t nheld;
    uint64_t n, npages; /* elements and pages so far */
    bool spilled;       /* pages go to the spool (or nowhere) */
};
/* Starts reading input name's list, paged as pages (borrowed) says. */
void wf_pager_init(struct wf_pager *pg, const struct mapq_bind_pages *pages,
                   const char *name);
/* The next page: count elements, their msgpack bytes (borrowed). An error
 * when the spool cannot be written. */
enum mapq_err wf_pager_page(struct wf_pager *pg, const char *data, size_t len,
                            uint32_t count, char *err);
/* The list read: appends its value to val (the list, or a reference to
 * its pages). */
enum mapq_err wf_pager_finish(struct wf_pager *pg, struct mapq_buf *val,
                              char *err);
/* Frees what pg holds. */
void wf_pager_release(struct wf_pager *pg);

/* wf_inputs.c: whether an input may move from one state to the other. */
bool wf_input_legal(enum wf_input_state from, enum wf_input_state to);
/* wf_inputs.c: moves input k of bd to state to; aborts (mapq_assert) on a
 * move wf_input_legal() refuses. */
void wf_input_set(struct wf_bind *bd, size_t k, enum wf_input_state to);
/* True when input k of bd has a value of its type (GIVEN or DEFAULT). */
static inline bool
wf_input_ok(const struct wf_bind *bd, size_t k)
{
    return bd->state[k] == WF_IN_GIVEN || bd->state[k] == WF_IN_DEFAULT;
}

/* wf_inputs.c: one --input NAME=VALUE (VALUE may be @FILE). */
void wf_bind_assign(struct wf_bind *bd, const char *assign);
/* wf_inputs.c: an --inputs file, YAML or (by its name) JSON. */
void wf_bind_file(struct wf_bind *bd, const char *path);
/* wf_inputs.c: packs {name: value} for every input into out. */
enum mapq_err wf_bind_pack(struct wf_bind *bd, struct mapq_buf *out);

/*
 * wf_zip.c: the one zip check. Reports the first of node n's `over` lists
 * whose length differs from the first known one, at its position in file.
 * Literal lengths are always known; with bd (NULL while parsing) so are
 * those of workflow inputs bound without error, and an input whose value
 * is not a list is reported. Node outputs are known only at run time.
 */
void wf_zip_check(struct problems *ps, const char *file,
                  const struct mapq_node *n, const struct wf_bind *bd);

#endif
