/* Small utilities shared by the core: checked allocation, time, randomness, string vectors; and the SDK's
 * helpers (ferry/util.h: strings, the string buffer, the string set, the hash, backoff). */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
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

/* ---- ferry/util.h ------------------------------------------------------------------------------------ */
FERRY_API void ferry_free(void *p) { free(p); }

FERRY_API char *ferry_strdup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *d = ferry__xmalloc(n);
  memcpy(d, s, n);
  return d;
}

FERRY_API char *ferry_strndup(const char *s, size_t n) {
  if (!s) return NULL;
  size_t len = strnlen(s, n);
  char *d = ferry__xmalloc(len + 1);
  memcpy(d, s, len);
  d[len] = '\0';
  return d;
}

FERRY_API char *ferry_vasprintf(const char *fmt, va_list ap) {
  ferry_buf b = FERRY_BUF_INIT;
  ferry_buf_vaddf(&b, fmt, ap);
  return ferry_buf_steal(&b);
}

FERRY_API char *ferry_asprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = ferry_vasprintf(fmt, ap);
  va_end(ap);
  return s;
}

static void buf_grow(ferry_buf *b, size_t extra) {
  if (b->len + extra + 1 <= b->cap) return;
  if (extra > SIZE_MAX / 2 - b->len) oom(extra);
  size_t cap = b->cap ? b->cap : 64;
  while (cap < b->len + extra + 1) cap *= 2;
  b->buf = ferry__xrealloc(b->buf, cap);
  b->cap = cap;
}

FERRY_API void ferry_buf_addn(ferry_buf *b, const void *s, size_t n) {
  buf_grow(b, n);
  if (n) memcpy(b->buf + b->len, s, n);
  b->len += n;
  b->buf[b->len] = '\0';
}

FERRY_API void ferry_buf_add(ferry_buf *b, const char *s) { ferry_buf_addn(b, s, strlen(s)); }

FERRY_API void ferry_buf_vaddf(ferry_buf *b, const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) n = 0; /* an encoding error: nothing is added */
  buf_grow(b, (size_t)n);
  if (n) vsnprintf(b->buf + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  b->buf[b->len] = '\0';
}

FERRY_API void ferry_buf_addf(ferry_buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ferry_buf_vaddf(b, fmt, ap);
  va_end(ap);
}

FERRY_API void ferry_buf_reset(ferry_buf *b) {
  b->len = 0;
  if (b->buf) b->buf[0] = '\0';
}

FERRY_API void ferry_buf_consume(ferry_buf *b, size_t n) {
  if (n >= b->len) {
    ferry_buf_reset(b);
    return;
  }
  memmove(b->buf, b->buf + n, b->len - n);
  b->len -= n;
  b->buf[b->len] = '\0';
}

FERRY_API char *ferry_buf_steal(ferry_buf *b) {
  char *s = b->buf ? b->buf : ferry_strdup("");
  b->buf = NULL;
  b->len = b->cap = 0;
  return s;
}

FERRY_API void ferry_buf_free(ferry_buf *b) {
  if (!b) return;
  free(b->buf);
  b->buf = NULL;
  b->len = b->cap = 0;
}

FERRY_API uint64_t ferry_hash64(const void *p, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a with ferry's historical offset basis: see ferry/util.h */
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
  return h;
}

static size_t strset_slot(char *const *slots, size_t cap, const char *key) {
  size_t i = ferry_hash64(key, strlen(key)) & (cap - 1);
  while (slots[i] && strcmp(slots[i], key)) i = (i + 1) & (cap - 1);
  return i;
}

FERRY_API int ferry_strset_has(const ferry_strset *s, const char *key) {
  return s->cap && s->slots[strset_slot(s->slots, s->cap, key)] != NULL;
}

FERRY_API int ferry_strset_add(ferry_strset *s, const char *key) {
  if (ferry_strset_has(s, key)) return 0;
  if ((s->len + 1) * 2 > s->cap) { /* at most half full */
    size_t ncap = s->cap ? s->cap * 2 : 64;
    char **ns = ferry__xcalloc(ncap, sizeof *ns);
    for (size_t i = 0; i < s->cap; i++)
      if (s->slots[i]) ns[strset_slot(ns, ncap, s->slots[i])] = s->slots[i];
    free(s->slots);
    s->slots = ns;
    s->cap = ncap;
  }
  s->slots[strset_slot(s->slots, s->cap, key)] = ferry_strdup(key);
  s->len++;
  return 1;
}

FERRY_API void ferry_strset_free(ferry_strset *s) {
  if (!s) return;
  for (size_t i = 0; i < s->cap; i++) free(s->slots[i]);
  free(s->slots);
  s->slots = NULL;
  s->cap = s->len = 0;
}

FERRY_API uint64_t ferry_backoff_ms(unsigned retry, unsigned base_ms, unsigned cap_ms, uint64_t *rng) {
  static atomic_uint_fast64_t seeded; /* tells the generators seeded in one process apart */
  if (!*rng) *rng = ferry__rng_seed(atomic_fetch_add(&seeded, 1) + 0x6261636b6f6666ull);
  unsigned shift = retry > 1 ? retry - 1 : 0;
  uint64_t ceiling = (uint64_t)base_ms << (shift < 32 ? shift : 32);
  if (ceiling > cap_ms) ceiling = cap_ms;
  return ferry__rng_next(rng) % (ceiling + 1);
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
  for (size_t i = 0; i < n; i++) d[i] = ferry_strdup(v[i]);
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
