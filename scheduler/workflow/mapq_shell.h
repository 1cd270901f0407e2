/*
 * mapq_shell.h - recognising a command that hands a script to a shell.
 *
 * A {name} placeholder is replaced by the input's text as it is. In a plain
 * argv entry that text stays one argument, whatever it holds; inside the
 * script of `sh -c SCRIPT` it becomes shell code, so an input such as
 * "$(rm -rf ~)" would run. The workflow check uses this module to find
 * that script argument and refuse placeholders in it.
 */
#ifndef MAPQ_SHELL_H
#define MAPQ_SHELL_H

#include <stddef.h>

/*
 * Returns the index in argv (argc entries, borrowed) of the script that a
 * shell runs, or -1 when argv does not run one as far as this function
 * can tell; *runner is set to the index of the program that takes the
 * script (the shell, or env for -S, flock for -c). Programs are known by
 * their base name, with or without a path.
 *
 * Shells:
 * - sh, bash, rbash, dash, zsh, ksh, ksh93, mksh, lksh, pdksh, oksh, ash,
 *   hush, yash, posh: -c alone or among other single-letter options (-c,
 *   -ec, -euxc, -e -c, -lc); each o or O in a cluster (-o NAME, +o NAME,
 *   -O NAME, +O NAME, -eo NAME) takes the next entry; long options
 *   (--norc, --noprofile, --login, --posix) are skipped, and --rcfile
 *   FILE, --init-file FILE and zsh's --emulate NAME take their value. The
 *   script is the first operand after the options (`--` or `-` ends them).
 * - csh, tcsh: the entry after the option cluster holding c.
 * - fish: the argument of the first -c/--command or -C/--init-command
 *   (attached or next); fish's other options are known by name.
 *
 * Wrappers, before a shell or each other, nested to any depth, each read
 * with its own options the way its getopt reads them (short clusters,
 * attached or separate arguments, --long=VALUE or --long VALUE, unique
 * prefixes of long names, `--`):
 * - env: -i, -, -0, -v, -u NAME, -C DIR, -a ARG, --unset=NAME,
 *   --chdir=DIR, the signal options, then NAME=VALUE assignments; -S
 *   STRING (--split-string) counts as a script itself, env being the
 *   runner: env splits it into a command line, so a placeholder there
 *   could add arguments or, through a shell it names, code.
 * - timeout [-f -p -v -k DUR -s SIG] DURATION; nice [-n N | -N | --N |
 *   --adjustment=N]; nohup; setsid [-c -f -w]; stdbuf [-i/-o/-e MODE];
 *   ionice [-c CLASS -n LEVEL -t]; chrt [policy options, -T/-P/-D NS]
 *   PRIORITY (taken only when it is a number); taskset [-a -c] MASK|LIST;
 *   time (GNU time, -f FMT -o FILE -a -p -q -v).
 * - sudo with the options that run the command as given (-u USER, -g
 *   GROUP, -E, --preserve-env[=LIST], -n, -H, -k, -D DIR, -C N, -T T, ...)
 *   and NAME=VALUE assignments; doas [-n -u USER -a STYLE].
 * - xargs with all its options (-I R, -i[R], -n N, -P N, -d X, -0, -a
 *   FILE, -L N, -s N, -r, -t, -x, -p, -o and their long forms).
 * - flock [options] FILE COMMAND..., and flock FILE -c SCRIPT, whose
 *   SCRIPT goes to $SHELL -c and so is itself the script.
 * - busybox APPLET: the applet is read as a program of that name (sh,
 *   ash, hush, env, timeout, nice, xargs ...).
 *
 * Kept conservative: an option a wrapper's table does not list (including
 * those that make it run no command, such as ionice -p, chrt -p, taskset
 * -p, sudo -s/-i/-e/-l, doas -s), a missing option argument, or a program
 * that is neither a known wrapper nor a shell ends the search with -1.
 * A placeholder that is an argv entry of its own to any other program is
 * never the script.
 *
 * Not recognised: other interpreters' code arguments (python -c, perl -e,
 * ruby -e, node -e, awk programs), the command after an `env -S` string,
 * fish's second and later -c/-C, commands that join their arguments into
 * a shell command line (ssh, su -c, runuser -c, script -c, watch, sudo -s
 * and -i), and find -exec or parallel. A placeholder in those is pasted in
 * as it is.
 */
long mapq_shell_script_index(const char *const *argv, size_t argc,
                             size_t *runner);

#endif
