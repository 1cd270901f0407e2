/*
 * mapq_hex.c - bytes as hex text, and hex digits read (see mapq_hex.h).
 */
#include "mapq_hex.h"

void
mapq_hex_encode(const unsigned char *p, size_t n, char *hex)
{
    static const char digits[] = "0123456789abcdef";
    size_t i;

    for (i = 0; i < n; i++) {
        hex[2 * i] = digits[p[i] >> 4];
        hex[2 * i + 1] = digits[p[i] & 0xf];
    }
    hex[2 * n] = '\0';
}

int
mapq_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}
