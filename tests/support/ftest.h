/* Tiny assertion helper for ferry's tests: FT_ASSERT(cond, fmt, ...) prints file:line and the message, then
 * exits 1. */
#ifndef FERRY_FTEST_H
#define FERRY_FTEST_H
#include <stdio.h>
#include <stdlib.h>

#define FT_ASSERT(cond, ...)                                                 \
  do {                                                                       \
    if (!(cond)) {                                                           \
      fprintf(stderr, "%s:%d: assertion failed: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                          \
      fputc('\n', stderr);                                                   \
      exit(1);                                                               \
    }                                                                        \
  } while (0)
#endif
