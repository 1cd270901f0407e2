/*
 * mapq_test.h - the first include of every test: cmocka needs these system
 * headers before it, in their own block so that include sorting keeps them
 * there.
 */
#ifndef MAPQ_TEST_H
#define MAPQ_TEST_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#endif
