/* pgsql plugin: memory, qualified names, JSON arrays as array literals and the COPY text format. */
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

void pgsql_strv_free(char **v, size_t n) {
  if (!v) return;
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

/* ---- names and arrays (the string buffer, quoting and array literals are the SDK's) ---------------------- */
char *pgsql_qname(const char *schema, const char *table) {
  ferry_buf sb = {0};
  ferry_pg_add_ident(&sb, schema);
  ferry_buf_add(&sb, ".");
  ferry_pg_add_ident(&sb, table);
  return ferry_buf_steal(&sb);
}

char *pgsql_json_text_array(const json_t *arr) {
  ferry_buf sb = {0};
  ferry_buf_add(&sb, "{");
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) if (json_is_string(v)) ferry_pg_array_elem(&sb, json_string_value(v));
  ferry_buf_add(&sb, "}");
  return ferry_buf_steal(&sb);
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

void pgsql_copy_escape(ferry_buf *sb, const char *s, size_t n) {
  if (!s) {
    ferry_buf_addn(sb, "\\N", 2);
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
    ferry_buf_addn(sb, run, (size_t)(p - run));
    ferry_buf_addn(sb, esc, 2);
    run = p + 1;
  }
  ferry_buf_addn(sb, run, (size_t)(end - run));
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
  ferry_buf sb = {0};
  ferry_buf_add(&sb, "SET LOCAL TIME ZONE ");
  ferry_pg_add_literal(&sb, timezone);
  ferry_buf_add(&sb, "; SET LOCAL DateStyle TO 'ISO, YMD'; SET LOCAL IntervalStyle TO 'postgres'; "
                    "SET LOCAL extra_float_digits TO 3; SET LOCAL bytea_output TO 'hex'; "
                    "SET LOCAL client_encoding TO 'UTF8'");
  return ferry_buf_steal(&sb);
}
