/*
 * mapq_argv.h - an argument vector for Redis commands: strings and byte
 * strings are copied in, and argv/lens are what hiredis's *Argv calls
 * take. Embedded: init/release; the vector owns its copies.
 */
#ifndef MAPQ_ARGV_H
#define MAPQ_ARGV_H

#include <stddef.h>
#include <stdint.h>

struct mapq_argv {
    int argc;
    int cap;
    const char **argv; /* views of owned, for hiredis */
    size_t *lens;
    char **owned;
};

void mapq_argv_init(struct mapq_argv *a);
void mapq_argv_release(struct mapq_argv *a);
/* Drops the arguments, keeping the room. */
void mapq_argv_reset(struct mapq_argv *a);
void mapq_argv_add(struct mapq_argv *a, const char *s);
void mapq_argv_addlen(struct mapq_argv *a, const void *p, size_t n);
/* Adds a formatted argument (under 512 bytes). */
void mapq_argv_addf(struct mapq_argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Adds v in decimal, without printf (a step call adds several per
 * subtask). */
void mapq_argv_addint(struct mapq_argv *a, int64_t v);

/* Writes v in decimal at buf, which holds MAPQ_ARGV_DIGITS bytes, without a
 * NUL; returns how many it wrote. */
#define MAPQ_ARGV_DIGITS 20
size_t mapq_argv_digits(char *buf, uint64_t v);

/* The same for a signed v, with its '-': buf holds MAPQ_ARGV_DIGITS + 1
 * bytes. */
size_t mapq_argv_sdigits(char *buf, int64_t v);

/*
 * argc arguments (argvlen[i] bytes each, or up to their NUL when argvlen is
 * NULL) as Redis reads a command: one RESP array of bulk strings, the same
 * bytes redisFormatCommandArgv() makes. Returns them (*len bytes, then a
 * NUL that *len leaves out: hiredis reads the byte after a command);
 * caller frees with free().
 */
char *mapq_argv_resp(int argc, const char **argv, const size_t *argvlen,
                     size_t *len);

#endif
