/*
 * mapq_shell.c - finding the script argument of `sh -c` and its kin.
 *
 * Pure string inspection of an argv: nothing is run or looked up on PATH.
 * Each wrapper program is described by a table of its options, read the way
 * its getopt_long reads them (clusters of short options, an argument
 * attached or in the next entry, long options with `=` or the next entry,
 * unique prefixes of long names, option parsing ending at the first
 * operand or `--`). An option missing from a table ends the search: the
 * wrapper might then not run the rest as a command at all.
 */
#include "mapq_shell.h"

#include <stdbool.h>
#include <string.h>

/* An index meaning "not known": the rest of argv is not followed. */
#define UNKNOWN ((size_t)-1)

enum arg { ARG_NONE, ARG_REQUIRED, ARG_OPTIONAL };

struct opt {
    char letter;      /* the short option, or 0 */
    const char *name; /* the long option without "--", or NULL */
    enum arg arg;
    bool code; /* its argument is code that is run (env -S, fish -c) */
};

enum prog_flags {
    /* nice's -N, --N and -+N adjustments */
    PROG_NUMBERS = 1 << 0,
    /* NAME=VALUE entries after the options (env) */
    PROG_ASSIGN_AFTER = 1 << 1,
    /* NAME=VALUE entries among and after the options, before a `--`;
     * one starting with '/' is the command (sudo) */
    PROG_ASSIGN_MIXED = 1 << 2,
    /* `-` alone is an option (env: same as -i) */
    PROG_DASH = 1 << 3,
    /* the operand is taken only when it is a number (chrt's priority,
     * which newer versions let policies without one leave out) */
    PROG_NUMERIC_OPERAND = 1 << 4,
    /* FILE -c SCRIPT after the operand (flock): SCRIPT goes to $SHELL */
    PROG_FLOCK_C = 1 << 5,
};

struct prog {
    const char *name;
    const struct opt *opts;
    size_t nopts;
    unsigned operands; /* operands before the command: DURATION, MASK */
    unsigned flags;    /* enum prog_flags */
};

#define NOPTS(a) (sizeof(a) / sizeof((a)[0]))

static const struct opt env_opts[] = {
    {'a', "argv0", ARG_REQUIRED, false},
    {'C', "chdir", ARG_REQUIRED, false},
    {'i', "ignore-environment", ARG_NONE, false},
    {'S', "split-string", ARG_REQUIRED, true},
    {'u', "unset", ARG_REQUIRED, false},
    {'v', "debug", ARG_NONE, false},
    {'0', "null", ARG_NONE, false},
    {0, "block-signal", ARG_OPTIONAL, false},
    {0, "default-signal", ARG_OPTIONAL, false},
    {0, "ignore-signal", ARG_OPTIONAL, false},
    {0, "list-signal-handling", ARG_NONE, false},
};

static const struct opt timeout_opts[] = {
    {'f', "foreground", ARG_NONE, false},
    {'k', "kill-after", ARG_REQUIRED, false},
    {'p', "preserve-status", ARG_NONE, false},
    {'s', "signal", ARG_REQUIRED, false},
    {'v', "verbose", ARG_NONE, false},
};

static const struct opt nice_opts[] = {
    {'n', "adjustment", ARG_REQUIRED, false},
};

static const struct opt setsid_opts[] = {
    {'c', "ctty", ARG_NONE, false},
    {'f', "fork", ARG_NONE, false},
    {'w', "wait", ARG_NONE, false},
};

static const struct opt stdbuf_opts[] = {
    {'i', "input", ARG_REQUIRED, false},
    {'o', "output", ARG_REQUIRED, false},
    {'e', "error", ARG_REQUIRED, false},
};

/* -p, -P and -u (a process, group or user instead of a command) are
 * left out on purpose. */
static const struct opt ionice_opts[] = {
    {'c', "class", ARG_REQUIRED, false},
    {'n', "classdata", ARG_REQUIRED, false},
    {'t', "ignore", ARG_NONE, false},
};

/* -p (a process instead of a command) and -m are left out on purpose. */
static const struct opt chrt_opts[] = {
    {'a', "all-tasks", ARG_NONE, false},
    {'b', "batch", ARG_NONE, false},
    {'d', "deadline", ARG_NONE, false},
    {'f', "fifo", ARG_NONE, false},
    {'i', "idle", ARG_NONE, false},
    {'o', "other", ARG_NONE, false},
    {'r', "rr", ARG_NONE, false},
    {'R', "reset-on-fork", ARG_NONE, false},
    {'v', "verbose", ARG_NONE, false},
    {'T', "sched-runtime", ARG_REQUIRED, false},
    {'P', "sched-period", ARG_REQUIRED, false},
    {'D', "sched-deadline", ARG_REQUIRED, false},
};

/* -p (a process instead of a command) is left out on purpose. */
static const struct opt taskset_opts[] = {
    {'a', "all-tasks", ARG_NONE, false},
    {'c', "cpu-list", ARG_NONE, false},
};

/*
 * The options that run the command as given. -s and -i (which hand the
 * command to a shell with sudo's own quoting), -e, -l, -v, -K and -h are
 * left out on purpose.
 */
static const struct opt sudo_opts[] = {
    {'A', "askpass", ARG_NONE, false},
    {'B', "bell", ARG_NONE, false},
    {'b', "background", ARG_NONE, false},
    {'E', NULL, ARG_NONE, false},
    {0, "preserve-env", ARG_OPTIONAL, false},
    {'H', "set-home", ARG_NONE, false},
    {'k', "reset-timestamp", ARG_NONE, false},
    {'N', "no-update", ARG_NONE, false},
    {'n', "non-interactive", ARG_NONE, false},
    {'P', "preserve-groups", ARG_NONE, false},
    {'S', "stdin", ARG_NONE, false},
    {'a', NULL, ARG_REQUIRED, false},
    {'c', NULL, ARG_REQUIRED, false},
    {'C', "close-from", ARG_REQUIRED, false},
    {'D', "chdir", ARG_REQUIRED, false},
    {'g', "group", ARG_REQUIRED, false},
    {'p', "prompt", ARG_REQUIRED, false},
    {'R', "chroot", ARG_REQUIRED, false},
    {'r', "role", ARG_REQUIRED, false},
    {'t', "type", ARG_REQUIRED, false},
    {'T', "command-timeout", ARG_REQUIRED, false},
    {'u', "user", ARG_REQUIRED, false},
};

/* -s (a shell, no command), -L and -C are left out on purpose. */
static const struct opt doas_opts[] = {
    {'a', NULL, ARG_REQUIRED, false},
    {'n', NULL, ARG_NONE, false},
    {'u', NULL, ARG_REQUIRED, false},
};

static const struct opt xargs_opts[] = {
    {'0', "null", ARG_NONE, false},
    {'a', "arg-file", ARG_REQUIRED, false},
    {'d', "delimiter", ARG_REQUIRED, false},
    {'E', NULL, ARG_REQUIRED, false},
    {'e', "eof", ARG_OPTIONAL, false},
    {'I', NULL, ARG_REQUIRED, false},
    {'i', "replace", ARG_OPTIONAL, false},
    {'L', NULL, ARG_REQUIRED, false},
    {'l', "max-lines", ARG_OPTIONAL, false},
    {'n', "max-args", ARG_REQUIRED, false},
    {'o', "open-tty", ARG_NONE, false},
    {'P', "max-procs", ARG_REQUIRED, false},
    {'p', "interactive", ARG_NONE, false},
    {'r', "no-run-if-empty", ARG_NONE, false},
    {'s', "max-chars", ARG_REQUIRED, false},
    {'t', "verbose", ARG_NONE, false},
    {'x', "exit", ARG_NONE, false},
    {0, "process-slot-var", ARG_REQUIRED, false},
    {0, "show-limits", ARG_NONE, false},
};

/* GNU time, the program (/usr/bin/time), not the shell keyword. */
static const struct opt time_opts[] = {
    {'a', "append", ARG_NONE, false},     {'f', "format", ARG_REQUIRED, false},
    {'o', "output", ARG_REQUIRED, false}, {'p', "portability", ARG_NONE, false},
    {'q', "quiet", ARG_NONE, false},      {'v', "verbose", ARG_NONE, false},
};

static const struct opt flock_opts[] = {
    {'s', "shared", ARG_NONE, false},
    {'x', "exclusive", ARG_NONE, false},
    {'e', NULL, ARG_NONE, false},
    {'u', "unlock", ARG_NONE, false},
    {'n', "nonblocking", ARG_NONE, false},
    {0, "nb", ARG_NONE, false},
    {'o', "close", ARG_NONE, false},
    {'F', "no-fork", ARG_NONE, false},
    {'w', "timeout", ARG_REQUIRED, false},
    {0, "wait", ARG_REQUIRED, false},
    {'E', "conflict-exit-code", ARG_REQUIRED, false},
    {0, "verbose", ARG_NONE, false},
};

/* fish: -c and -C (--init-command) take code as their argument. */
static const struct opt fish_opts[] = {
    {'c', "command", ARG_REQUIRED, true},
    {'C', "init-command", ARG_REQUIRED, true},
    {'d', "debug", ARG_REQUIRED, false},
    {'o', "debug-output", ARG_REQUIRED, false},
    {'p', "profile", ARG_REQUIRED, false},
    {0, "profile-startup", ARG_REQUIRED, false},
    {'f', "features", ARG_REQUIRED, false},
    {'D', "debug-stack-frames", ARG_REQUIRED, false},
    {'h', "help", ARG_NONE, false},
    {'i', "interactive", ARG_NONE, false},
    {'l', "login", ARG_NONE, false},
    {'N', "no-config", ARG_NONE, false},
    {'n', "no-execute", ARG_NONE, false},
    {'P', "private", ARG_NONE, false},
    {'v', "version", ARG_NONE, false},
    {0, "print-rusage-self", ARG_NONE, false},
    {0, "print-debug-categories", ARG_NONE, false},
};

static const struct prog wrappers[] = {
    {"env", env_opts, NOPTS(env_opts), 0, PROG_ASSIGN_AFTER | PROG_DASH},
    {"timeout", timeout_opts, NOPTS(timeout_opts), 1, 0},
    {"nice", nice_opts, NOPTS(nice_opts), 0, PROG_NUMBERS},
    {"nohup", NULL, 0, 0, 0},
    {"setsid", setsid_opts, NOPTS(setsid_opts), 0, 0},
    {"stdbuf", stdbuf_opts, NOPTS(stdbuf_opts), 0, 0},
    {"ionice", ionice_opts, NOPTS(ionice_opts), 0, 0},
    {"chrt", chrt_opts, NOPTS(chrt_opts), 1, PROG_NUMERIC_OPERAND},
    {"taskset", taskset_opts, NOPTS(taskset_opts), 1, 0},
    {"sudo", sudo_opts, NOPTS(sudo_opts), 0, PROG_ASSIGN_MIXED},
    {"doas", doas_opts, NOPTS(doas_opts), 0, 0},
    {"xargs", xargs_opts, NOPTS(xargs_opts), 0, 0},
    {"time", time_opts, NOPTS(time_opts), 0, 0},
    {"flock", flock_opts, NOPTS(flock_opts), 1, PROG_FLOCK_C},
};

static const struct prog fish = {"fish", fish_opts, NOPTS(fish_opts), 0, 0};

enum shell_kind { NOT_SHELL, SHELL_POSIX, SHELL_CSH, SHELL_FISH };

static const char *
base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

static enum shell_kind
shell_kind(const char *name)
{
    static const char *const posix[] = {
        "sh",   "bash",  "rbash", "dash", "zsh",  "ksh",  "ksh93", "mksh",
        "lksh", "pdksh", "oksh",  "ash",  "hush", "yash", "posh"};
    size_t i;

    for (i = 0; i < NOPTS(posix); i++)
        if (strcmp(name, posix[i]) == 0)
            return SHELL_POSIX;
    if (strcmp(name, "csh") == 0 || strcmp(name, "tcsh") == 0)
        return SHELL_CSH;
    if (strcmp(name, "fish") == 0)
        return SHELL_FISH;
    return NOT_SHELL;
}

static const struct opt *
find_short(const struct prog *p, char c)
{
    size_t i;

    for (i = 0; i < p->nopts; i++)
        if (p->opts[i].letter == c)
            return &p->opts[i];
    return NULL;
}

/* The long option named by the n bytes at s: an exact name, or a prefix
 * of exactly one name, as getopt_long takes it. */
static const struct opt *
find_long(const struct prog *p, const char *s, size_t n)
{
    const struct opt *found = NULL;
    size_t i, matches = 0;

    if (n == 0)
        return NULL;
    for (i = 0; i < p->nopts; i++) {
        const char *name = p->opts[i].name;

        if (name == NULL || strncmp(name, s, n) != 0)
            continue;
        if (name[n] == '\0')
            return &p->opts[i];
        found = &p->opts[i];
        matches++;
    }
    return matches == 1 ? found : NULL;
}

/*
 * Reads the option in argv[*i] (a long option or a cluster of short ones),
 * moving *i to the last entry it uses. Returns false for an option not in
 * the table or one missing its argument. *code is set to the index of an
 * argument that is code, or left alone.
 */
static bool
read_option(const struct prog *p, const char *const *argv, size_t argc,
            size_t *i, size_t *code)
{
    const char *a = argv[*i];
    const struct opt *o;
    size_t j;

    if (a[1] == '-') {
        const char *eq = strchr(a + 2, '=');
        size_t n = eq != NULL ? (size_t)(eq - (a + 2)) : strlen(a + 2);

        o = find_long(p, a + 2, n);
        if (o == NULL || (o->arg == ARG_NONE && eq != NULL))
            return false;
        if (o->arg == ARG_REQUIRED && eq == NULL) {
            if (*i + 1 >= argc)
                return false;
            ++*i;
        }
        if (o->code)
            *code = *i;
        return true;
    }
    for (j = 1; a[j] != '\0'; j++) {
        o = find_short(p, a[j]);
        if (o == NULL)
            return false;
        if (o->arg == ARG_NONE)
            continue;
        /* The rest of the cluster is the argument, or the next entry. */
        if (a[j + 1] == '\0' && o->arg == ARG_REQUIRED) {
            if (*i + 1 >= argc)
                return false;
            ++*i;
        }
        if (o->code && (a[j + 1] != '\0' || o->arg == ARG_REQUIRED))
            *code = *i;
        return true;
    }
    return true;
}

static bool
is_number(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

static bool
is_nice_number(const char *a)
{
    size_t d = a[1] == '-' || a[1] == '+' ? 2 : 1;

    return a[0] == '-' && a[d] >= '0' && a[d] <= '9';
}

/*
 * Reads the options and operands of the program p at argv[at]. Returns the
 * index of the command it runs (argc when there is none), or UNKNOWN. When
 * an option's argument is code, *code is set to its index.
 */
static size_t
skip_prog(const struct prog *p, const char *const *argv, size_t argc, size_t at,
          size_t *code)
{
    size_t i = at + 1;
    unsigned k;
    bool ended = false;

    *code = UNKNOWN;
    for (; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--") == 0) {
            i++;
            ended = true;
            break;
        }
        if ((p->flags & PROG_NUMBERS) && is_nice_number(a))
            continue;
        if ((p->flags & PROG_DASH) && strcmp(a, "-") == 0)
            continue;
        if ((p->flags & PROG_ASSIGN_MIXED) && a[0] != '-' && a[0] != '/' &&
            strchr(a, '=') != NULL)
            continue;
        if (a[0] != '-' || a[1] == '\0')
            break;
        if (!read_option(p, argv, argc, &i, code))
            return UNKNOWN;
        if (*code != UNKNOWN)
            return argc;
    }
    if (p->flags & (PROG_ASSIGN_AFTER | PROG_ASSIGN_MIXED))
        while (
            i < argc && strchr(argv[i], '=') != NULL &&
            ((p->flags & PROG_ASSIGN_AFTER) || (!ended && argv[i][0] != '/')))
            i++;
    for (k = 0; k < p->operands && i < argc; k++) {
        if ((p->flags & PROG_NUMERIC_OPERAND) && !is_number(argv[i]))
            break;
        i++;
    }
    if ((p->flags & PROG_FLOCK_C) && i < argc &&
        (strcmp(argv[i], "-c") == 0 || strcmp(argv[i], "--command") == 0)) {
        *code = i + 1 < argc ? i + 1 : UNKNOWN;
        return *code == UNKNOWN ? UNKNOWN : argc;
    }
    return i;
}

/* The options of sh, bash, zsh and the like, up to the script of -c. */
static long
posix_script(const char *const *argv, size_t argc, size_t i)
{
    bool has_c = false;

    for (; i < argc; i++) {
        const char *a = argv[i];
        size_t j;

        /* `-` alone ends the options, as `--` does. */
        if (strcmp(a, "--") == 0 || strcmp(a, "-") == 0) {
            i++;
            break;
        }
        if ((a[0] != '-' && a[0] != '+') || a[1] == '\0')
            break;
        if (a[0] == '-' && a[1] == '-') {
            /* Long options: --norc, --login; these three take a value. */
            if (strcmp(a, "--rcfile") == 0 || strcmp(a, "--init-file") == 0 ||
                strcmp(a, "--emulate") == 0)
                i++;
            continue;
        }
        for (j = 1; a[j] != '\0'; j++) {
            if (a[j] == 'c' && a[0] == '-')
                has_c = true;
            /* -o NAME, +o NAME, -O NAME, +O NAME: each takes the next. */
            if (a[j] == 'o' || a[j] == 'O')
                i++;
        }
    }
    return has_c && i < argc ? (long)i : -1;
}

/* csh and tcsh: -c takes the entry after its cluster as the script. */
static long
csh_script(const char *const *argv, size_t argc, size_t i)
{
    for (; i < argc; i++) {
        const char *a = argv[i];

        if (a[0] != '-' || a[1] == '\0' || a[1] == '-')
            return -1;
        if (a[1] == 'D') /* -Dname=value */
            continue;
        if (strchr(a + 1, 'c') != NULL)
            return i + 1 < argc ? (long)(i + 1) : -1;
        if (strchr(a + 1, 'b') != NULL) /* -b: no more options */
            return -1;
    }
    return -1;
}

static const struct prog *
find_wrapper(const char *name)
{
    size_t i;

    for (i = 0; i < NOPTS(wrappers); i++)
        if (strcmp(name, wrappers[i].name) == 0)
            return &wrappers[i];
    return NULL;
}

long
mapq_shell_script_index(const char *const *argv, size_t argc, size_t *runner)
{
    size_t pos = 0, at, code;

    *runner = 0;
    while (pos < argc) {
        const char *name = base_name(argv[pos]);
        const struct prog *w;

        if (strcmp(name, "busybox") == 0) {
            /* busybox APPLET ARG...: the applet is read as a program. */
            pos++;
            if (pos < argc && argv[pos][0] == '-')
                return -1;
            continue;
        }
        switch (shell_kind(name)) {
        case SHELL_POSIX:
            *runner = pos;
            return posix_script(argv, argc, pos + 1);
        case SHELL_CSH:
            *runner = pos;
            return csh_script(argv, argc, pos + 1);
        case SHELL_FISH:
            /* The first -c or -C argument; none: a script file. */
            *runner = pos;
            (void)skip_prog(&fish, argv, argc, pos, &code);
            return code == UNKNOWN ? -1 : (long)code;
        case NOT_SHELL:
            break;
        }
        w = find_wrapper(name);
        if (w == NULL)
            return -1;
        at = pos;
        pos = skip_prog(w, argv, argc, at, &code);
        if (pos == UNKNOWN)
            return -1;
        if (code != UNKNOWN) {
            *runner = at; /* env -S, flock -c */
            return (long)code;
        }
    }
    return -1;
}
