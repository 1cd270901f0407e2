/*
 * cmd_spawn.c - starting a command's child: its working directory, its
 * inputs as stdin JSON, MAPQ_IN_<name> variables and {name} placeholders,
 * its environment and its pipes (SPEC section 2); the PATH lookup and the
 * spawn itself are mapq_proc's, shared with persistent workers.
 *
 * Owns nothing after cmd_spawn() returns: everything it makes is stored
 * in the struct mapq_cmd, which mapq_cmd.c owns and frees. Never touches
 * the loop and never completes a command: it tells mapq_cmd.c how the
 * start went.
 */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cmd_int.h"
#include "mapq_alloc.h"
#include "mapq_argv.h"
#include "mapq_fs.h"
#include "mapq_json.h"
#include "mapq_proc.h"
#include "mapq_value.h"

/* Linux refuses a single environment string longer than this
 * (MAX_ARG_STRLEN, with its NUL); larger inputs go on stdin only. */
#define ENV_STRING_MAX (128 * 1024)

/* One input as text, for MAPQ_IN_<name> and {name}. */
struct input_var {
    const char *name; /* points into the inputs object */
    size_t nlen;
    char *text; /* owned, NUL-terminated */
    size_t tlen;
};

/* ---- strings ---------------------------------------------------------- */

/*
 * a, then b of blen bytes, then sep and c, as one string; caller frees.
 * The start of every command builds about ten of these: with memcpy they
 * cost a tenth of what formatting them with printf did.
 */
static char *
join(const char *a, const char *b, size_t blen, char sep, const char *c)
{
    size_t alen = strlen(a), clen = strlen(c);
    char *s = mapq_xmalloc(alen + blen + clen + 2), *p = s;

    memcpy(p, a, alen);
    p += alen;
    memcpy(p, b, blen);
    p += blen;
    *p++ = sep;
    memcpy(p, c, clen + 1);
    return s;
}

/* NAME=value; caller frees. */
static char *
env_entry(const char *name, const char *value)
{
    return join(name, "", 0, '=', value != NULL ? value : "");
}

/* ---- working directory ------------------------------------------------ */

static enum mapq_err
make_workdir(struct mapq_cmd *cmd, const struct mapq_cmd_ctx *ctx, char *err)
{
    cmd->dirs = ctx->dirs;
    cmd->dir = mapq_workdirs_take(ctx->dirs, err);
    if (cmd->dir == NULL)
        return MAPQ_EIO;
    cmd->output_path = join(cmd->dir, "", 0, '/', OUTPUT_FILE);
    cmd->checkpoint_path = join(cmd->dir, "", 0, '/', CHECKPOINT_FILE);
    if (ctx->checkpoint_in != NULL &&
        mapq_fs_write_new(cmd->checkpoint_path, ctx->checkpoint_in,
                          ctx->checkpoint_len) != 0)
        return mapq_err_set(err, MAPQ_EIO, "cannot write checkpoint '%s': %s",
                            cmd->checkpoint_path, strerror(errno));
    return MAPQ_OK;
}

/* ---- inputs, argv and environment ------------------------------------ */

/* The text of one input: str raw, null empty, anything else its JSON
 * (an integer's or a bool's written here, as the JSON writer would). */
static enum mapq_err
input_text(const msgpack_object *v, struct mapq_buf *b, char *err)
{
    char num[MAPQ_ARGV_DIGITS + 1];

    switch (v->type) {
    case MSGPACK_OBJECT_STR:
        return mapq_buf_append(b, v->via.str.ptr, v->via.str.size);
    case MSGPACK_OBJECT_NIL:
        return mapq_buf_append(b, "", 0);
    case MSGPACK_OBJECT_BOOLEAN:
        return mapq_buf_appendstr(b, v->via.boolean ? "true" : "false");
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (v->via.u64 > (uint64_t)INT64_MAX)
            break; /* out of JSON's range: the writer says so */
        return mapq_buf_append(b, num, mapq_argv_digits(num, v->via.u64));
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return mapq_buf_append(b, num, mapq_argv_sdigits(num, v->via.i64));
    default:
        break;
    }
    return mapq_json_from_msgpack(v, b, 0, err);
}

static void
free_vars(struct input_var *vars, size_t n)
{
    size_t i;

    for (i = 0; i < n && vars != NULL; i++)
        free(vars[i].text);
    free(vars);
}

/* Converts one input into var; the message in err names the input. */
static enum mapq_err
make_var(const msgpack_object_kv *kv, struct input_var *var, char *err)
{
    struct mapq_buf b = MAPQ_BUF_INIT;
    char why[MAPQ_ERR_LEN];
    const char *name = kv->key.via.str.ptr;
    int nlen = (int)kv->key.via.str.size;

    why[0] = '\0';
    var->name = name;
    var->nlen = kv->key.via.str.size;
    if (var->nlen == 0 || memchr(name, '=', var->nlen) != NULL ||
        memchr(name, '\0', var->nlen) != NULL)
        return mapq_err_set(err, MAPQ_EINVAL, "bad input name '%.*s'", nlen,
                            name);
    if (input_text(&kv->val, &b, why) != MAPQ_OK) {
        mapq_buf_release(&b);
        return mapq_err_set(err, MAPQ_EINVAL, "input '%.*s'%s%s", nlen, name,
                            why[0] == '[' ? "" : ": ", why);
    }
    var->text = mapq_buf_detach(&b, &var->tlen);
    if (memchr(var->text, '\0', var->tlen) != NULL)
        return mapq_err_set(err, MAPQ_EINVAL,
                            "input '%.*s' holds a NUL byte, which cannot be "
                            "passed in the environment or argv",
                            nlen, name);
    return MAPQ_OK;
}

/* Builds the input texts and the stdin JSON; a failure is a user error. */
static enum mapq_err
prepare_inputs(struct mapq_cmd *cmd, const msgpack_object *inputs,
               struct input_var **vars, size_t *nvars, char *err)
{
    char why[MAPQ_ERR_LEN];
    uint32_t i, n;

    *vars = NULL;
    *nvars = 0;
    if (inputs == NULL)
        return mapq_buf_appendstr(&cmd->in, "{}");
    if (inputs->type != MSGPACK_OBJECT_MAP)
        return mapq_err_set(err, MAPQ_EINVAL, "inputs are not a dict");
    n = inputs->via.map.size;
    *vars = mapq_xcalloc(n ? n : 1, sizeof(**vars));
    for (i = 0; i < n; i++) {
        if (inputs->via.map.ptr[i].key.type != MSGPACK_OBJECT_STR)
            return mapq_err_set(err, MAPQ_EINVAL, "input names must be str");
        (*nvars)++;
        if (make_var(&inputs->via.map.ptr[i], &(*vars)[i], err) != MAPQ_OK)
            return MAPQ_EINVAL;
    }
    /* Each input converted above; left: the dict itself (duplicate names). */
    if (mapq_json_from_msgpack(inputs, &cmd->in, 0, why) != MAPQ_OK)
        return mapq_err_set(err, MAPQ_EINVAL, "inputs%s", why);
    return MAPQ_OK;
}

static const struct input_var *
find_var(const struct input_var *vars, size_t n, const char *name, size_t len)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (vars[i].nlen == len && memcmp(vars[i].name, name, len) == 0)
            return &vars[i];
    return NULL;
}

/* arg with every {name} of an input replaced by its text; caller frees. */
static char *
expand_arg(const char *arg, const struct input_var *vars, size_t n)
{
    struct mapq_buf b = MAPQ_BUF_INIT; /* uncapped: appends cannot fail */
    const struct input_var *v;
    const char *p = arg, *lb, *rb;

    for (;;) {
        lb = strchr(p, '{');
        if (lb == NULL)
            break;
        mapq_buf_append(&b, p, (size_t)(lb - p));
        rb = strchr(lb + 1, '}');
        v = rb ? find_var(vars, n, lb + 1, (size_t)(rb - lb - 1)) : NULL;
        if (v == NULL) {
            mapq_buf_append(&b, "{", 1);
            p = lb + 1;
            continue;
        }
        mapq_buf_append(&b, v->text, v->tlen);
        p = rb + 1;
    }
    mapq_buf_appendstr(&b, p);
    return mapq_buf_detach(&b, NULL);
}

/* NULL-terminated argv with placeholders expanded; free with free_strv(). */
static char **
build_argv(const struct mapq_cmd_spec *spec, const struct input_var *vars,
           size_t n)
{
    char **argv = mapq_xcalloc(spec->argc + 1, sizeof(char *));
    size_t i;

    for (i = 0; i < spec->argc; i++)
        argv[i] = expand_arg(spec->argv[i], vars, n);
    return argv;
}

static void
free_strv(char **v, size_t from)
{
    size_t i;

    if (v == NULL)
        return;
    for (i = from; v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

/*
 * The agent's environment plus the MAPQ_* variables. Entries from *keep on
 * are owned (free with free_strv(env, *keep)); the ones before are
 * borrowed from environ.
 */
static char **
build_env(const struct mapq_cmd *cmd, const struct mapq_cmd_ctx *ctx,
          const struct input_var *vars, size_t n, size_t *keep)
{
    size_t i, k = 0, total = 0;
    char **env, num[MAPQ_ARGV_DIGITS + 1];

    while (environ != NULL && environ[total] != NULL)
        total++;
    env = mapq_xcalloc(total + n + 7, sizeof(char *));
    for (i = 0; i < total; i++)
        if (!mapq_proc_env_is_ours(environ[i]))
            env[k++] = environ[i];
    *keep = k;
    env[k++] = env_entry("MAPQ_EXECUTION", ctx->execution);
    env[k++] = env_entry("MAPQ_NODE", ctx->node);
    num[mapq_argv_digits(num, ctx->index)] = '\0';
    env[k++] = env_entry("MAPQ_INDEX", num);
    num[mapq_argv_digits(num, ctx->attempt)] = '\0';
    env[k++] = env_entry("MAPQ_ATTEMPT", num);
    env[k++] = env_entry("MAPQ_OUTPUT", cmd->output_path);
    env[k++] = env_entry("MAPQ_CHECKPOINT", cmd->checkpoint_path);
    for (i = 0; i < n; i++)
        if (vars[i].nlen + vars[i].tlen + sizeof("MAPQ_IN_=") <= ENV_STRING_MAX)
            env[k++] =
                join("MAPQ_IN_", vars[i].name, vars[i].nlen, '=', vars[i].text);
    return env;
}

/* ---- spawning --------------------------------------------------------- */

/* Stream i: the child's descriptor in child[i] and, when it is the
 * child's end of a pipe (the parent's in cmd->fd), in ends[i] too. The
 * stdout of a task that declares no output, which nobody would read, is
 * /dev/null. Nothing is opened on failure. */
static enum mapq_err
open_stream(struct mapq_cmd *cmd, int i, int child[], int ends[], char *err)
{
    int p[2], parent_end = i == PIPE_IN ? 1 : 0;

    if (i == PIPE_OUT && cmd->otype == NULL) {
        child[i] = mapq_proc_devnull();
        if (child[i] < 0)
            return mapq_err_set(err, MAPQ_EIO, "cannot open /dev/null: %s",
                                strerror(errno));
        return MAPQ_OK;
    }
    if (mapq_proc_pipe(p, parent_end) != 0)
        return mapq_err_set(err, MAPQ_EIO, "cannot create a pipe: %s",
                            strerror(errno));
    cmd->fd[i] = p[parent_end];
    child[i] = ends[i] = p[1 - parent_end];
    return MAPQ_OK;
}

/* Writes what of stdin fits in its pipe before the child exists, which
 * for most inputs is all of it: then stdin needs no event, and no write
 * races the exit of a child that does not read it. The rest is
 * mapq_cmd.c's to write once the child runs. */
static void
prefill_stdin(struct mapq_cmd *cmd)
{
    ssize_t n;

    do {
        n = write(cmd->fd[PIPE_IN], cmd->in.data, cmd->in.len);
    } while (n < 0 && errno == EINTR);
    if (n > 0)
        cmd->in_off = (size_t)n;
    if (cmd->in_off == cmd->in.len) {
        cmd_close_fd(&cmd->fd[PIPE_IN]);
        mapq_buf_release(&cmd->in);
    }
}

/* The program found before could not be executed (it moved or went): it
 * is looked for again, once, and c started if it is found. 0 or an
 * errno. */
static int
spawn_found_again(struct mapq_cmd *cmd, struct mapq_proc_child *c)
{
    bool again;
    int e;

    mapq_proc_forget(cmd->name);
    free(cmd->path);
    e = mapq_proc_find(cmd->name, cmd->dir, &cmd->path, &again);
    if (e != 0)
        return e;
    c->path = cmd->path;
    return mapq_proc_spawn(c, &cmd->pid);
}

/* Opens the streams and starts the child; CMD_UNRUNNABLE when the command
 * itself could not be executed (then it completes as FAILED). */
static enum cmd_spawned
launch(struct mapq_cmd *cmd, char **argv, char **envp, char *err)
{
    int child[NPIPES] = {-1, -1, -1}, ends[NPIPES] = {-1, -1, -1};
    int i, e = 0;
    struct mapq_proc_child c = {cmd->path, argv,         envp,
                                cmd->dir,  {-1, -1, -1}, cmd->mem_bytes,
                                cmd->cpus, cmd->ncpus};
    enum cmd_spawned rc = CMD_SPAWN_FAIL;

    for (i = 0; i < NPIPES; i++)
        if (open_stream(cmd, i, child, ends, err) != MAPQ_OK)
            goto out_close;
    prefill_stdin(cmd);
    memcpy(c.fds, child, sizeof(c.fds));
    clock_gettime(CLOCK_MONOTONIC, &cmd->t0);
    e = mapq_proc_spawn(&c, &cmd->pid);
    if (e != 0 && cmd->path_remembered && mapq_proc_command_errno(e))
        e = spawn_found_again(cmd, &c); /* its streams are still whole */
    if (e == 0) {
        rc = CMD_SPAWNED;
        goto out_close;
    }
    cmd->pid = -1;
    if (!mapq_proc_command_errno(e)) {
        mapq_err_set(err, MAPQ_EIO, "cannot start '%s': %s", cmd->name,
                     strerror(e));
    } else {
        cmd_exec_error(cmd, e, cmd->early_error, sizeof(cmd->early_error));
        rc = CMD_UNRUNNABLE;
    }
out_close:
    /* The child's ends are the child's now; when nothing runs, the
     * parent's go too. */
    for (i = 0; i < NPIPES; i++) {
        if (ends[i] >= 0)
            close(ends[i]);
        if (rc != CMD_SPAWNED)
            cmd_close_fd(&cmd->fd[i]);
    }
    return rc;
}

/* ---- the start -------------------------------------------------------- */

enum cmd_spawned
cmd_spawn(struct mapq_cmd *cmd, const struct mapq_cmd_spec *spec,
          const struct mapq_cmd_ctx *ctx, const msgpack_object *inputs,
          char *err)
{
    struct input_var *vars;
    char **argv = NULL, **envp = NULL;
    size_t nvars, keep = 0;
    enum cmd_spawned rc = CMD_SPAWN_FAIL;
    int e;

    if (prepare_inputs(cmd, inputs, &vars, &nvars, cmd->early_error) !=
        MAPQ_OK) {
        free_vars(vars, nvars);
        return CMD_UNRUNNABLE;
    }
    if (make_workdir(cmd, ctx, err) == MAPQ_OK) {
        argv = build_argv(spec, vars, nvars);
        free(cmd->name);
        cmd->name = mapq_xstrdup(argv[0]);
        e = mapq_proc_find(cmd->name, cmd->dir, &cmd->path,
                           &cmd->path_remembered);
        if (e != 0) {
            cmd_exec_error(cmd, e, cmd->early_error, sizeof(cmd->early_error));
            rc = CMD_UNRUNNABLE;
        } else {
            envp = build_env(cmd, ctx, vars, nvars, &keep);
            rc = launch(cmd, argv, envp, err);
        }
    }
    free_strv(envp, keep);
    free_strv(argv, 0);
    free_vars(vars, nvars);
    return rc;
}
