/* ferry SDK: small helpers every plugin would otherwise write again (ABI 1.3): a growable string buffer,
 * formatted strings, a set of strings, a stable hash, retry backoff, and ferry_free().
 *
 * Included by ferry/ferry.h; needs no library beyond libferry. The escaping helpers live with the service
 * whose format they write: ferry_url_escape() and ferry_form_encode() in ferry/http.h (through libcurl),
 * ferry_pg_quote_ident(), ferry_pg_quote_literal() and the array literal helpers in ferry/pg.h (through
 * libpq); a plugin calls them through the SDK and does not link libcurl or libpq for them.
 *
 * Memory: everything here allocates with malloc() and aborts the process with a message on stderr when
 * out of memory, as the core does everywhere (ferry does not try to limp on), so none of these functions
 * returns NULL for lack of memory. A pointer the SDK hands out that the caller owns ("owned by the caller"
 * in the SDK headers) is released with ferry_free(); free() is the same allocator and stays valid for
 * pointers documented as malloc'd before 1.3.
 *
 * Threads: the functions keep no global state (ferry_backoff_ms() keeps its state in the caller's variable)
 * and are safe on any thread as long as one object (buffer, set) is used by one thread at a time.
 */
#ifndef FERRY_UTIL_H
#define FERRY_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "ferry/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Releases a pointer the SDK handed out and documented as owned by the caller (strings of ferry_asprintf,
 * ferry_buf_steal, ferry_url_escape, ferry_pg_quote_*, ferry_redact, ...). NULL is allowed. Since 1.3. */
FERRY_API void ferry_free(void *p);

/* ---- formatted and copied strings (since 1.3) ------------------------------------------------------------
 * malloc'd, owned by the caller (ferry_free), never NULL. */
FERRY_API char *ferry_asprintf(const char *fmt, ...) FERRY_PRINTF(1, 2);
FERRY_API char *ferry_vasprintf(const char *fmt, va_list ap);
/* Copy of s; NULL when s is NULL. */
FERRY_API char *ferry_strdup(const char *s);
/* Copy of at most n bytes of s, stopping at a NUL, always NUL-terminated; NULL when s is NULL. */
FERRY_API char *ferry_strndup(const char *s, size_t n);

/* ---- string buffer (since 1.3) ---------------------------------------------------------------------------
 * A growable byte string, always NUL-terminated once anything was added (so `buf` can be used as a C string
 * when the content has no NUL of its own); bytes may include NULs (ferry_buf_addn), `len` counts them.
 *
 * Lifetime: a buffer starts zeroed (`ferry_buf b = FERRY_BUF_INIT;`, or zeroed memory); it owns `buf` until
 * ferry_buf_free() releases it or ferry_buf_steal() hands it to the caller. Either leaves the buffer empty and
 * ready for reuse. `buf` is NULL until the first addition and may move on every addition: do not keep a
 * pointer into it across one. The fields are read-only for the user; only the functions change them.
 *
 *   ferry_buf b = FERRY_BUF_INIT;
 *   ferry_buf_add(&b, "SELECT ");
 *   ferry_buf_addf(&b, "%d", 42);
 *   char *sql = ferry_buf_steal(&b);    // owned by the caller: ferry_free(sql)
 */
typedef struct ferry_buf {
  char *buf;  /* the bytes and a terminating NUL; NULL while nothing was added */
  size_t len; /* bytes in buf, without the terminating NUL */
  size_t cap; /* bytes allocated */
} ferry_buf;

#define FERRY_BUF_INIT {NULL, 0, 0}

/* Appends the C string s. */
FERRY_API void ferry_buf_add(ferry_buf *b, const char *s);
/* Appends n bytes of s (NULs included); n == 0 only makes sure `buf` is allocated and terminated. */
FERRY_API void ferry_buf_addn(ferry_buf *b, const void *s, size_t n);
/* Appends printf-formatted text. */
FERRY_API void ferry_buf_addf(ferry_buf *b, const char *fmt, ...) FERRY_PRINTF(2, 3);
FERRY_API void ferry_buf_vaddf(ferry_buf *b, const char *fmt, va_list ap);
/* Drops the content (len = 0) but keeps the memory for the next additions. */
FERRY_API void ferry_buf_reset(ferry_buf *b);
/* Drops the first n bytes (all of them when n >= len), moving the rest to the front: what was written out
 * of an output buffer, what was parsed of an input buffer. Keeps the memory. */
FERRY_API void ferry_buf_consume(ferry_buf *b, size_t n);
/* Hands the content out: malloc'd, NUL-terminated, owned by the caller (ferry_free); never NULL ("" when
 * nothing was added). Read b->len first when the content may hold NULs. The buffer is left empty. */
FERRY_API char *ferry_buf_steal(ferry_buf *b);
/* Releases the content; the buffer is left empty. NULL allowed. */
FERRY_API void ferry_buf_free(ferry_buf *b);

/* ---- a set of strings (since 1.3) ------------------------------------------------------------------------
 * Open addressing on ferry_hash64(); keys are copied. Starts zeroed (FERRY_STRSET_INIT); owns its keys until
 * ferry_strset_free(). The fields are read-only for the user (`len`: number of keys). */
typedef struct ferry_strset {
  char **slots;
  size_t cap; /* slots: 0 or a power of two */
  size_t len; /* keys in the set */
} ferry_strset;

#define FERRY_STRSET_INIT {NULL, 0, 0}

/* Adds a copy of key: 1 when it was added, 0 when it was already there. */
FERRY_API int ferry_strset_add(ferry_strset *s, const char *key);
/* 1 when key is in the set, else 0. */
FERRY_API int ferry_strset_has(const ferry_strset *s, const char *key);
/* Releases every key and the table; the set is left empty. NULL allowed. */
FERRY_API void ferry_strset_free(ferry_strset *s);

/* A 64-bit hash of n bytes: FNV-1a's algorithm and prime, with the offset basis 1469598103934665603 that
 * ferry's plugins have always used (not FNV's published 14695981039346656037: the values predate the SDK and
 * are kept). Stable across versions and machines: it names things that outlive a run (a staging table, a
 * shortened item key in a journal). Not for anything security-sensitive. Since 1.3. */
FERRY_API uint64_t ferry_hash64(const void *p, size_t n);

/* ---- retry backoff (since 1.3) ---------------------------------------------------------------------------
 * The delay before retry number `retry` (1 = the first retry) with capped exponential backoff and full
 * jitter, the rule of the core's task retries and of the HTTP service: uniform in [0, ceiling], ceiling =
 * base_ms << (retry - 1), at most cap_ms. `rng` is the caller's generator state: start it at 0 (it is then
 * seeded on first use, from $FERRY_SEED when set, so that tests can reproduce a run). For the retries of a
 * plugin's own work (a source re-reading a page); idempotent HTTP requests are retried by the HTTP service
 * (ferry_http_opts.retries) and failed tasks by the core. */
FERRY_API uint64_t ferry_backoff_ms(unsigned retry, unsigned base_ms, unsigned cap_ms, uint64_t *rng);

#ifdef __cplusplus
}
#endif
#endif
