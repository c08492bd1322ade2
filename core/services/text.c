/* The services' text formats, done by the libraries that own them and needing no connection: URL escaping
 * through libcurl (ferry/http.h), SQL quoting through libpq and PostgreSQL array literals (ferry/pg.h).
 * Pure functions: a plugin calls them through the SDK and links neither library for them; the unit tests of
 * plugin internals compile this file into their mock core.
 *
 * SQL quoting: libpq escapes with PQescapeIdentifier / PQescapeLiteral, which need a PGconn (for its client
 * encoding and its standard_conforming_strings). The SDK's quoting has no connection at hand, so it uses one
 * PGconn per process that never connects (its conninfo is refused by libpq's parser, so nothing is looked up
 * or opened): such a connection reports standard_conforming_strings off, so a literal holding a backslash
 * comes out in the E'...' form, valid whatever the server's setting; and its encoding is SQL_ASCII, so bytes
 * above 0x7f are copied unchanged, right for UTF-8 (ferry's connections use UTF8, where no byte of a multibyte
 * character is a quote or a backslash). */
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <libpq-fe.h>

#include "base/base.h"
#include "ferry/http.h"
#include "ferry/pg.h"

/* ---- URL (libcurl) ------------------------------------------------------------------------------------- */
FERRY_API char *ferry_url_escape(const char *s) {
  if (!s) return NULL;
  /* libcurl >= 7.82 ignores the handle; it keeps ALPHA DIGIT - . _ ~ and percent-encodes every other byte */
  char *e = curl_easy_escape(NULL, s, (int)strnlen(s, (size_t)INT32_MAX));
  if (!e) {
    fputs("ferry: out of memory (curl_easy_escape)\n", stderr);
    abort();
  }
  char *d = ferry_strdup(e);
  curl_free(e);
  return d;
}

FERRY_API char *ferry_form_encode(const char *const *kv) {
  ferry_buf b = FERRY_BUF_INIT;
  ferry_buf_addn(&b, "", 0);
  for (size_t i = 0; kv && kv[i]; i += 2) {
    char *k = ferry_url_escape(kv[i]);
    char *v = ferry_url_escape(kv[i + 1] ? kv[i + 1] : "");
    ferry_buf_addf(&b, "%s%s=%s", i ? "&" : "", k, v);
    free(k);
    free(v);
    if (!kv[i + 1]) break;
  }
  return ferry_buf_steal(&b);
}

/* ---- SQL (libpq) --------------------------------------------------------------------------------------- */
static uv_once_t quoting_once = UV_ONCE_INIT;
static uv_mutex_t quoting_mu;
static PGconn *quoting_conn;

static void quoting_init(void) {
  uv_mutex_init(&quoting_mu);
  /* an unknown keyword: PQconnectStart returns a CONNECTION_BAD connection without any network activity */
  quoting_conn = PQconnectStart("ferry_quoting_only=1");
}

static char *pq_quote(const char *s, int ident) {
  uv_once(&quoting_once, quoting_init);
  if (!quoting_conn) {
    fputs("ferry: out of memory (libpq)\n", stderr);
    abort();
  }
  uv_mutex_lock(&quoting_mu); /* the escape functions write the connection's error text */
  char *q = ident ? PQescapeIdentifier(quoting_conn, s, strlen(s)) : PQescapeLiteral(quoting_conn, s, strlen(s));
  uv_mutex_unlock(&quoting_mu);
  if (!q) { /* out of memory (SQL_ASCII accepts every byte) */
    fputs("ferry: out of memory (libpq escaping)\n", stderr);
    abort();
  }
  /* PQescapeLiteral puts a space before E'...' (for pasting after an identifier): not ours to keep */
  char *d = ferry_strdup(q[0] == ' ' ? q + 1 : q);
  PQfreemem(q);
  return d;
}

FERRY_API char *ferry_pg_quote_ident(const char *ident) { return ident ? pq_quote(ident, 1) : NULL; }

FERRY_API char *ferry_pg_quote_literal(const char *value) {
  return value ? pq_quote(value, 0) : ferry_strdup("NULL");
}

FERRY_API void ferry_pg_add_ident(ferry_buf *b, const char *ident) {
  char *q = ferry_pg_quote_ident(ident ? ident : "");
  ferry_buf_add(b, q);
  free(q);
}

FERRY_API void ferry_pg_add_literal(ferry_buf *b, const char *value) {
  char *q = ferry_pg_quote_literal(value);
  ferry_buf_add(b, q);
  free(q);
}

/* ---- array literals ------------------------------------------------------------------------------------ */
FERRY_API void ferry_pg_array_elem(ferry_buf *b, const char *v) {
  if (b->len && b->buf[b->len - 1] != '{') ferry_buf_addn(b, ",", 1);
  if (!v) {
    ferry_buf_addn(b, "NULL", 4);
    return;
  }
  ferry_buf_addn(b, "\"", 1);
  const char *run = v;
  for (const char *p = v; *p; p++) {
    if (*p == '"' || *p == '\\') {
      ferry_buf_addn(b, run, (size_t)(p - run));
      ferry_buf_addn(b, "\\", 1);
      run = p;
    }
  }
  ferry_buf_add(b, run);
  ferry_buf_addn(b, "\"", 1);
}

FERRY_API char *ferry_pg_text_array(const char *const *v, size_t n) {
  ferry_buf b = FERRY_BUF_INIT;
  ferry_buf_addn(&b, "{", 1);
  for (size_t i = 0; i < n; i++) ferry_pg_array_elem(&b, v[i]);
  ferry_buf_addn(&b, "}", 1);
  return ferry_buf_steal(&b);
}
