/*
 * mapq_hex.h - bytes as lower-case hexadecimal text, and hex digits read.
 *
 * Hashes, cache keys, execution ids and signatures are written in hex,
 * and URLs carry %XX escapes; these are the one place that knows the
 * digits. Pure functions: the caller owns every buffer.
 */
#ifndef MAPQ_HEX_H
#define MAPQ_HEX_H

#include <stddef.h>

/* Writes the n bytes at p as 2n lower-case hex digits and a NUL into hex
 * (2n + 1 bytes). Borrows p. */
void mapq_hex_encode(const unsigned char *p, size_t n, char *hex);

/* The value of hex digit c (either case), or -1 when c is not one. */
int mapq_hex_digit(char c);

#endif
