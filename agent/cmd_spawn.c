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
#include <inttypes.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "cmd_int.h"
#include "mapq_alloc.h"
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

/* ---- pipes ------------------------------------------------------------ */

/* ---- working directory ------------------------------------------------ */

static enum mapq_err
make_workdir(struct mapq_cmd *cmd, const struct mapq_cmd_ctx *ctx, char *err)
{
    cmd->dirs = ctx->dirs;
    cmd->dir = mapq_workdirs_take(ctx->dirs, err);
    if (cmd->dir == NULL)
        return MAPQ_EIO;
    cmd->output_path = mapq_xasprintf("%s/" OUTPUT_FILE, cmd->dir);
    cmd->checkpoint_path = mapq_xasprintf("%s/" CHECKPOINT_FILE, cmd->dir);
    if (ctx->checkpoint_in != NULL &&
        mapq_fs_write_new(cmd->checkpoint_path, ctx->checkpoint_in,
                          ctx->checkpoint_len) != 0)
        return mapq_err_set(err, MAPQ_EIO, "cannot write checkpoint '%s': %s",
                            cmd->checkpoint_path, strerror(errno));
    return MAPQ_OK;
}

/* ---- inputs, argv and environment ------------------------------------ */

/* The text of one input: str raw, null empty, anything else its JSON. */
static enum mapq_err
input_text(const msgpack_object *v, struct mapq_buf *b, char *err)
{
    if (v->type == MSGPACK_OBJECT_STR)
        return mapq_buf_append(b, v->via.str.ptr, v->via.str.size);
    if (v->type == MSGPACK_OBJECT_NIL)
        return mapq_buf_append(b, "", 0);
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
    char **env;

    while (environ != NULL && environ[total] != NULL)
        total++;
    env = mapq_xcalloc(total + n + 7, sizeof(char *));
    for (i = 0; i < total; i++)
        if (!mapq_proc_env_is_ours(environ[i]))
            env[k++] = environ[i];
    *keep = k;
    env[k++] = mapq_xasprintf("MAPQ_EXECUTION=%s",
                              ctx->execution ? ctx->execution : "");
    env[k++] = mapq_xasprintf("MAPQ_NODE=%s", ctx->node ? ctx->node : "");
    env[k++] = mapq_xasprintf("MAPQ_INDEX=%" PRIu64, ctx->index);
    env[k++] = mapq_xasprintf("MAPQ_ATTEMPT=%" PRIu32, ctx->attempt);
    env[k++] = mapq_xasprintf("MAPQ_OUTPUT=%s", cmd->output_path);
    env[k++] = mapq_xasprintf("MAPQ_CHECKPOINT=%s", cmd->checkpoint_path);
    for (i = 0; i < n; i++)
        if (vars[i].nlen + vars[i].tlen + sizeof("MAPQ_IN_=") <= ENV_STRING_MAX)
            env[k++] = mapq_xasprintf("MAPQ_IN_%.*s=%s", (int)vars[i].nlen,
                                      vars[i].name, vars[i].text);
    return env;
}

/* ---- spawning --------------------------------------------------------- */

/* Creates the pipes and starts the child; CMD_UNRUNNABLE when the command
 * itself could not be executed (then it completes as FAILED). */
static enum cmd_spawned
launch(struct mapq_cmd *cmd, char **argv, char **envp, char *err)
{
    int p[NPIPES][2], i, e = 0;
    bool fork_path = mapq_proc_needs_fork(cmd->mem_bytes, cmd->ncpus);
    struct mapq_proc_child c = {cmd->path, argv,         envp,
                                cmd->dir,  {-1, -1, -1}, cmd->mem_bytes,
                                cmd->cpus, cmd->ncpus,   -1};
    int npipes = fork_path ? NPIPES : PIPE_STATUS;

    for (i = 0; i < npipes; i++) {
        if (mapq_proc_pipe(p[i], i == PIPE_IN ? 1 : 0) != 0) {
            e = errno;
            /* The parent ends are in cmd->fd, closed by mapq_cmd_free(). */
            while (i-- > 0)
                close(p[i][i == PIPE_IN ? 0 : 1]);
            mapq_err_set(err, MAPQ_EIO, "cannot create a pipe: %s",
                         strerror(e));
            return CMD_SPAWN_FAIL;
        }
        cmd->fd[i] = p[i][i == PIPE_IN ? 1 : 0];
    }
    c.fds[0] = p[PIPE_IN][0];
    c.fds[1] = p[PIPE_OUT][1];
    c.fds[2] = p[PIPE_ERR][1];
    if (fork_path)
        c.status_w = p[PIPE_STATUS][1];
    clock_gettime(CLOCK_MONOTONIC, &cmd->t0);
    e = mapq_proc_spawn(&c, &cmd->pid);
    if (e != 0)
        cmd->pid = -1;
    for (i = 0; i < 3; i++)
        close(c.fds[i]);
    if (c.status_w >= 0)
        close(c.status_w);
    if (e == 0)
        return CMD_SPAWNED;
    for (i = 0; i < NPIPES; i++)
        cmd_close_fd(&cmd->fd[i]);
    if (!mapq_proc_command_errno(e)) {
        mapq_err_set(err, MAPQ_EIO, "cannot start '%s': %s", cmd->name,
                     strerror(e));
        return CMD_SPAWN_FAIL;
    }
    cmd_exec_error(cmd, e, cmd->early_error, sizeof(cmd->early_error));
    return CMD_UNRUNNABLE;
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
        e = mapq_proc_find(cmd->name, cmd->dir, &cmd->path);
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
