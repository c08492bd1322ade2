/* pgsql plugin: memory, string builder, quoting, PostgreSQL array literals and the COPY text format. */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgsql.h"

static void oom(void) {
  fputs("ferry pgsql plugin: out of memory\n", stderr);
  abort();
}

void *pgsql_xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) oom();
  return p;
}

void *pgsql_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) oom();
  return p;
}

void *pgsql_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) oom();
  return q;
}

char *pgsql_xstrdup(const char *s) {
  char *d = strdup(s ? s : "");
  if (!d) oom();
  return d;
}

char *pgsql_xstrndup(const char *s, size_t n) {
  char *d = pgsql_xmalloc(n + 1);
  if (n) memcpy(d, s, n);
  d[n] = '\0';
  return d;
}

char *pgsql_xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int r = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (r < 0) oom();
  return s;
}

void pgsql_strv_free(char **v, size_t n) {
  if (!v) return;
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* ---- string builder ------------------------------------------------------------------------------------ */
static void sb_grow(pgsql_sb *sb, size_t more) {
  if (sb->len + more + 1 <= sb->cap) return;
  size_t cap = sb->cap ? sb->cap : 64;
  while (cap < sb->len + more + 1) cap *= 2;
  sb->buf = pgsql_xrealloc(sb->buf, cap);
  sb->cap = cap;
}

void pgsql_sb_addn(pgsql_sb *sb, const char *s, size_t n) {
  sb_grow(sb, n);
  if (n) memcpy(sb->buf + sb->len, s, n);
  sb->len += n;
  sb->buf[sb->len] = '\0';
}

void pgsql_sb_add(pgsql_sb *sb, const char *s) { pgsql_sb_addn(sb, s, strlen(s)); }

void pgsql_sb_addf(pgsql_sb *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int r = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (r < 0) oom();
  pgsql_sb_addn(sb, s, (size_t)r);
  free(s);
}

void pgsql_sb_ident(pgsql_sb *sb, const char *s) {
  char *q = ferry_pg_quote_ident(s);
  if (!q) oom();
  pgsql_sb_add(sb, q);
  free(q);
}

void pgsql_sb_literal(pgsql_sb *sb, const char *s) {
  char *q = ferry_pg_quote_literal(s);
  if (!q) oom();
  pgsql_sb_add(sb, q);
  free(q);
}

char *pgsql_sb_steal(pgsql_sb *sb) {
  char *s = sb->buf ? sb->buf : pgsql_xstrdup("");
  sb->buf = NULL;
  sb->len = sb->cap = 0;
  return s;
}

void pgsql_sb_free(pgsql_sb *sb) {
  free(sb->buf);
  sb->buf = NULL;
  sb->len = sb->cap = 0;
}

char *pgsql_qname(const char *schema, const char *table) {
  pgsql_sb sb = {0};
  pgsql_sb_ident(&sb, schema);
  pgsql_sb_add(&sb, ".");
  pgsql_sb_ident(&sb, table);
  return pgsql_sb_steal(&sb);
}

/* ---- array literals -------------------------------------------------------------------------------------- */
void pgsql_sb_array_elem(pgsql_sb *sb, const char *v, int first) {
  if (!first) pgsql_sb_addn(sb, ",", 1);
  if (!v) {
    pgsql_sb_addn(sb, "NULL", 4);
    return;
  }
  pgsql_sb_addn(sb, "\"", 1);
  const char *run = v;
  for (const char *p = v; *p; p++) {
    if (*p == '"' || *p == '\\') {
      pgsql_sb_addn(sb, run, (size_t)(p - run));
      pgsql_sb_addn(sb, "\\", 1);
      run = p;
    }
  }
  pgsql_sb_add(sb, run);
  pgsql_sb_addn(sb, "\"", 1);
}

char *pgsql_text_array(const char *const *v, size_t n) {
  pgsql_sb sb = {0};
  pgsql_sb_add(&sb, "{");
  for (size_t i = 0; i < n; i++) pgsql_sb_array_elem(&sb, v[i], i == 0);
  pgsql_sb_add(&sb, "}");
  return pgsql_sb_steal(&sb);
}

char *pgsql_json_text_array(const json_t *arr) {
  pgsql_sb sb = {0};
  pgsql_sb_add(&sb, "{");
  size_t i;
  json_t *v;
  int first = 1;
  json_array_foreach(arr, i, v) {
    if (!json_is_string(v)) continue;
    pgsql_sb_array_elem(&sb, json_string_value(v), first);
    first = 0;
  }
  pgsql_sb_add(&sb, "}");
  return pgsql_sb_steal(&sb);
}

uint64_t pgsql_hash(const void *p, size_t n) {
  uint64_t h = 1469598103934665603ull; /* FNV-1a */
  const unsigned char *s = p;
  for (size_t i = 0; i < n; i++) h = (h ^ s[i]) * 1099511628211ull;
  return h;
}

/* ---- COPY text --------------------------------------------------------------------------------------------
 * One row per line; fields separated by TAB; \N is NULL; backslash escapes \b \f \n \r \t \v \\, \ooo (octal)
 * and \xhh (hex); a backslash before any other character stands for that character. */
static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

/* Decodes the field in [s, e) (raw, still escaped). */
static char *decode_field(const char *s, const char *e) {
  if (e - s == 2 && s[0] == '\\' && s[1] == 'N') return NULL;
  char *out = pgsql_xmalloc((size_t)(e - s) + 1);
  size_t o = 0;
  for (const char *p = s; p < e; p++) {
    if (*p != '\\' || p + 1 >= e) {
      out[o++] = *p;
      continue;
    }
    char c = *++p;
    switch (c) {
      case 'b': out[o++] = '\b'; break;
      case 'f': out[o++] = '\f'; break;
      case 'n': out[o++] = '\n'; break;
      case 'r': out[o++] = '\r'; break;
      case 't': out[o++] = '\t'; break;
      case 'v': out[o++] = '\v'; break;
      case 'x': {
        int v = 0, k = 0;
        while (k < 2 && p + 1 < e && hexval(p[1]) >= 0) v = v * 16 + hexval(*++p), k++;
        if (k) out[o++] = (char)v;
        else out[o++] = 'x';
        break;
      }
      default:
        if (c >= '0' && c <= '7') {
          int v = c - '0', k = 1;
          while (k < 3 && p + 1 < e && p[1] >= '0' && p[1] <= '7') v = v * 8 + (*++p - '0'), k++;
          out[o++] = (char)v;
        } else {
          out[o++] = c;
        }
    }
  }
  out[o] = '\0';
  return out;
}

int pgsql_copy_field(const char *line, size_t len, size_t idx, char **out) {
  const char *p = line, *end = line + len;
  size_t i = 0;
  for (;;) {
    const char *s = p;
    while (p < end && *p != '\t') p++;
    if (i == idx) {
      *out = decode_field(s, p);
      return 1;
    }
    if (p >= end) return 0;
    p++;
    i++;
  }
}

size_t pgsql_copy_fields(const char *line, size_t len, char **out, size_t n) {
  const char *p = line, *end = line + len;
  size_t i = 0;
  while (i < n) {
    const char *s = p;
    while (p < end && *p != '\t') p++;
    out[i++] = decode_field(s, p);
    if (p >= end) break;
    p++;
  }
  for (size_t k = i; k < n; k++) out[k] = NULL;
  return i;
}

void pgsql_copy_escape(pgsql_sb *sb, const char *s, size_t n) {
  if (!s) {
    pgsql_sb_addn(sb, "\\N", 2);
    return;
  }
  const char *run = s, *end = s + n;
  for (const char *p = s; p < end; p++) {
    const char *esc = NULL;
    switch (*p) {
      case '\\': esc = "\\\\"; break;
      case '\t': esc = "\\t"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\b': esc = "\\b"; break;
      case '\f': esc = "\\f"; break;
      case '\v': esc = "\\v"; break;
      default: continue;
    }
    pgsql_sb_addn(sb, run, (size_t)(p - run));
    pgsql_sb_addn(sb, esc, 2);
    run = p + 1;
  }
  pgsql_sb_addn(sb, run, (size_t)(end - run));
}

int pgsql_copy_next_line(const char *data, size_t size, size_t *pos, const char **line, size_t *len) {
  if (!data || *pos >= size) return 0;
  const char *s = data + *pos;
  const char *nl = memchr(s, '\n', size - *pos);
  size_t n = nl ? (size_t)(nl - s) : size - *pos;
  *line = s;
  *len = n;
  *pos += n + (nl ? 1 : 0);
  return 1;
}

char *pgsql_session_sets(const char *timezone) {
  pgsql_sb sb = {0};
  pgsql_sb_add(&sb, "SET LOCAL TIME ZONE ");
  pgsql_sb_literal(&sb, timezone);
  pgsql_sb_add(&sb, "; SET LOCAL DateStyle TO 'ISO, YMD'; SET LOCAL IntervalStyle TO 'postgres'; "
                    "SET LOCAL extra_float_digits TO 3; SET LOCAL bytea_output TO 'hex'; "
                    "SET LOCAL client_encoding TO 'UTF8'");
  return pgsql_sb_steal(&sb);
}
