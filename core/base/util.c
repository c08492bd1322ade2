/* Small utilities shared by the core: checked allocation, growable strings, string vectors, time. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/base.h"

static void oom(size_t n) {
  fprintf(stderr, "ferry: out of memory (allocating %zu bytes)\n", n);
  abort();
}

void *ferry__xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) oom(n);
  return p;
}

void *ferry__xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) oom(n * size);
  return p;
}

void *ferry__xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) oom(n);
  return q;
}

char *ferry__xstrdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = ferry__xmalloc(n);
  memcpy(d, s, n);
  return d;
}

char *ferry__xstrndup(const char *s, size_t n) {
  if (!s) return NULL;
  size_t len = strnlen(s, n);
  char *d = ferry__xmalloc(len + 1);
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

char *ferry__xvasprintf(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0;
  char *s = ferry__xmalloc((size_t)n + 1);
  vsnprintf(s, (size_t)n + 1, fmt, ap);
  return s;
}

char *ferry__xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = ferry__xvasprintf(fmt, ap);
  va_end(ap);
  return s;
}

static void sb_grow(ferry_sb *sb, size_t extra) {
  if (sb->len + extra + 1 <= sb->cap) return;
  size_t cap = sb->cap ? sb->cap : 64;
  while (cap < sb->len + extra + 1) cap *= 2;
  sb->buf = ferry__xrealloc(sb->buf, cap);
  sb->cap = cap;
}

void ferry__sb_addn(ferry_sb *sb, const char *s, size_t n) {
  sb_grow(sb, n);
  memcpy(sb->buf + sb->len, s, n);
  sb->len += n;
  sb->buf[sb->len] = '\0';
}

void ferry__sb_add(ferry_sb *sb, const char *s) { ferry__sb_addn(sb, s, strlen(s)); }

void ferry__sb_addf(ferry_sb *sb, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n > 0) {
    sb_grow(sb, (size_t)n);
    vsnprintf(sb->buf + sb->len, (size_t)n + 1, fmt, ap);
    sb->len += (size_t)n;
  }
  va_end(ap);
}

char *ferry__sb_steal(ferry_sb *sb) {
  char *s = sb->buf ? sb->buf : ferry__xstrdup("");
  sb->buf = NULL;
  sb->len = sb->cap = 0;
  return s;
}

void ferry__sb_free(ferry_sb *sb) {
  free(sb->buf);
  sb->buf = NULL;
  sb->len = sb->cap = 0;
}

double ferry__now(void) { return (double)uv_hrtime() / 1e9; }

uint64_t ferry__rng_seed(uint64_t salt) {
  const char *seed = getenv("FERRY_SEED");
  uint64_t x = seed && *seed ? strtoull(seed, NULL, 0) : uv_hrtime() ^ ((uint64_t)getpid() << 32);
  x ^= salt * 0x9e3779b97f4a7c15ull;
  return x ? x : 0x9e3779b97f4a7c15ull;
}

uint64_t ferry__rng_next(uint64_t *state) {
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

size_t ferry__strv_len(char *const *v) {
  size_t n = 0;
  while (v && v[n]) n++;
  return n;
}

void ferry__strv_free(char **v) {
  if (!v) return;
  for (size_t i = 0; v[i]; i++) free(v[i]);
  free(v);
}

char **ferry__strv_dup(const char *const *v) {
  size_t n = ferry__strv_len((char *const *)v);
  char **d = ferry__xcalloc(n + 1, sizeof(char *));
  for (size_t i = 0; i < n; i++) d[i] = ferry__xstrdup(v[i]);
  return d;
}

const char *ferry__json_kind(const json_t *v) {
  switch (json_typeof(v)) {
    case JSON_OBJECT: return "object";
    case JSON_ARRAY: return "array";
    case JSON_STRING: return "string";
    case JSON_INTEGER: return "integer";
    case JSON_REAL: return "number with a fraction";
    case JSON_TRUE:
    case JSON_FALSE: return "boolean";
    case JSON_NULL: return "null";
  }
  return "unknown";
}
