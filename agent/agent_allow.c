/*
 * agent_allow.c - --allow-exec: the directories whose programs and plugin
 * libraries an agent may run, checked when a task spec arrives.
 *
 * Defence in depth beside signed subtasks (docs/OPERATIONS.md): a program
 * is found as the spawn will find it (absolute, or on PATH; a relative
 * path or a placeholder is refused), a plugin library as the plugin host
 * will load it (MAPQ_PLUGIN_PATH, then the agent's own directory; never
 * the system's library search), and the real path of what was found must
 * lie under one of the directories. An interpreter allowed runs whatever
 * script it is given: allow interpreters knowingly. Reports to nobody:
 * agent_specs.c fails the spec with the reason.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_int.h"
#include "mapq_alloc.h"
#include "mapq_proc.h"
#include "mapq_taskspec.h"

/* Whether the real path of path lies under one of the allowed dirs. */
static bool
under_allowed(const struct mapq_agent_config *cfg, const char *path)
{
    char real[PATH_MAX];
    size_t j, n;

    if (realpath(path, real) == NULL)
        return false;
    for (j = 0; j < cfg->nallow; j++) {
        n = strlen(cfg->allow_exec[j]);
        if (strcmp(cfg->allow_exec[j], "/") == 0 ||
            (strncmp(real, cfg->allow_exec[j], n) == 0 && real[n] == '/'))
            return true;
    }
    return false;
}

/* The file the plugin host would load for name, into path (PATH_MAX);
 * false when it would have to ask the system's library search. */
static bool
plugin_file(const char *self_dir, const char *name, char *path)
{
    const char *env = getenv("MAPQ_PLUGIN_PATH");
    char *dirs, *dir, *save = NULL;
    bool found = false;

    if (strchr(name, '/') != NULL) {
        snprintf(path, PATH_MAX, "%s", name);
        return access(path, R_OK) == 0;
    }
    if (env != NULL) {
        dirs = mapq_xstrdup(env);
        for (dir = strtok_r(dirs, ":", &save); dir != NULL && !found;
             dir = strtok_r(NULL, ":", &save))
            found = snprintf(path, PATH_MAX, "%s/%s", dir, name) < PATH_MAX &&
                    access(path, R_OK) == 0;
        free(dirs);
    }
    if (!found && self_dir != NULL)
        found = snprintf(path, PATH_MAX, "%s/%s", self_dir, name) < PATH_MAX &&
                access(path, R_OK) == 0;
    return found;
}

bool
agent_allow_spec(const struct mapq_agent_config *cfg,
                 const struct mapq_taskspec *s, char *err)
{
    char path[PATH_MAX], *found = NULL;
    const char *what = s->plugin ? s->library : s->argc > 0 ? s->argv[0] : "";
    bool ok = false;

    if (cfg->nallow == 0)
        return true;
    if (s->plugin)
        ok = plugin_file(cfg->self_dir, what, path) && under_allowed(cfg, path);
    else if (strchr(what, '{') == NULL &&
             (what[0] == '/' || strchr(what, '/') == NULL) &&
             mapq_proc_find(what, "/", &found, NULL) == 0)
        ok = under_allowed(cfg, found);
    free(found);
    if (!ok)
        snprintf(err, MAPQ_ERR_LEN,
                 "security: %s '%.200s' is not under a directory of "
                 "--allow-exec",
                 s->plugin ? "plugin library" : "program", what);
    return ok;
}
