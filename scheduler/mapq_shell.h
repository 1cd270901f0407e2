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
 * shell runs, or -1 when argv does not run one; *runner is set to the index
 * of the program that takes the script (the shell, or env for -S). Recognised:
 * argv[0] whose base name is sh, bash, dash, zsh, ksh, mksh, ash or busybox's
 * `sh` applet, possibly behind `env` (with its options and NAME=VALUE
 * assignments), given -c alone or among other single-letter options (-c,
 * -ec, -euxc, -e -c); `-o NAME` and `-O NAME` take their argument with
 * them. The script is the first operand after the options. `env -S
 * STRING` (--split-string) counts too, STRING being the script: env splits
 * it into a command line, so a placeholder there could add arguments or,
 * through a shell it names, code.
 *
 * Not recognised (the docs say so): other interpreters' code arguments
 * (python -c, perl -e), wrappers other than env and busybox (nice,
 * timeout, xargs), and ssh, which joins its arguments into a remote shell
 * command. A placeholder in those is pasted in as it is.
 */
long mapq_shell_script_index(const char *const *argv, size_t argc,
                             size_t *runner);

#endif
