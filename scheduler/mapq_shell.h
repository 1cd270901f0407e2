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
 * shell runs, or -1 when argv does not run one. Recognised: argv[0] whose
 * base name is sh, bash, dash, zsh, ksh, mksh, ash or busybox's `sh`
 * applet, possibly behind `env` (with its options and NAME=VALUE
 * assignments), given -c alone or among other single-letter options (-c,
 * -ec, -euxc, -e -c); `-o NAME` and `-O NAME` take their argument with
 * them. The script is the first operand after the options.
 */
long mapq_shell_script_index(const char *const *argv, size_t argc);

#endif
