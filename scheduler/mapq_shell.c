/*
 * mapq_shell.c - finding the script argument of `sh -c` and its kin.
 *
 * Pure string inspection of an argv: nothing is run or looked up on PATH.
 */
#include "mapq_shell.h"

#include <stdbool.h>
#include <string.h>

static const char *
base_name(const char *path)
{
    const char *slash = strrchr(path, '/');

    return slash != NULL ? slash + 1 : path;
}

static bool
is_shell(const char *path)
{
    static const char *const shells[] = {"sh",  "bash", "dash", "zsh",
                                         "ksh", "mksh", "ash",  "yash"};
    const char *b = base_name(path);
    size_t i;

    for (i = 0; i < sizeof(shells) / sizeof(shells[0]); i++)
        if (strcmp(b, shells[i]) == 0)
            return true;
    return false;
}

/* The index of the argument holding env's -S STRING (--split-string), or
 * 0 when a is not that option. */
static size_t
split_string(const char *const *argv, size_t argc, size_t i)
{
    const char *a = argv[i];

    if (strncmp(a, "--split-string", 14) == 0 ||
        (a[0] == '-' && a[1] != '-' && strchr(a, 'S') != NULL)) {
        /* The string is the rest of the argument or the next one. */
        if (a[strlen(a) - 1] == 'S' || strcmp(a, "--split-string") == 0)
            return i + 1 < argc ? i + 1 : 0;
        return i;
    }
    return 0;
}

/*
 * The index of the command that `env [OPTION...] [NAME=VALUE...]` at 0
 * runs, or 0 when argv[0] is not env. *split is set to the index of a -S
 * STRING, which env splits into a command line of its own, or 0.
 */
static size_t
skip_env(const char *const *argv, size_t argc, size_t *split)
{
    size_t i = 1;

    *split = 0;
    if (strcmp(base_name(argv[0]), "env") != 0)
        return 0;
    while (i < argc && (argv[i][0] == '-' || strchr(argv[i], '=') != NULL)) {
        *split = split_string(argv, argc, i);
        if (*split != 0)
            return argc;
        /* -u NAME and -C DIR take the next argument. */
        if (strcmp(argv[i], "-u") == 0 || strcmp(argv[i], "-C") == 0)
            i++;
        i++;
    }
    return i;
}

long
mapq_shell_script_index(const char *const *argv, size_t argc, size_t *runner)
{
    size_t i, first, split;
    bool has_c = false;

    *runner = 0;
    if (argc == 0)
        return -1;
    first = skip_env(argv, argc, &split);
    if (split != 0)
        return (long)split;
    if (first < argc && strcmp(base_name(argv[first]), "busybox") == 0)
        first++;
    if (first >= argc)
        return -1;
    if (!is_shell(argv[first]))
        return -1;
    *runner = first;
    for (i = first + 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--") == 0) {
            i++;
            break;
        }
        if ((a[0] != '-' && a[0] != '+') || a[1] == '\0')
            break;
        if (a[0] == '-' && a[1] == '-')
            continue; /* bash's long options: --norc, --posix */
        if (strchr(a + 1, 'c') != NULL && a[0] == '-')
            has_c = true;
        /* -o NAME / +o NAME / -O NAME: the name goes with it. */
        if (a[strlen(a) - 1] == 'o' || a[strlen(a) - 1] == 'O')
            i++;
    }
    return has_c && i < argc ? (long)i : -1;
}
