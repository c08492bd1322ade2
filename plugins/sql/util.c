/* sql plugin: memory, COPY text, LIKE, and the type rules across engines (docs/plugins/sql.md, "Types"). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql.h"

void *sqlp_xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size ? size : 1);
  if (!p) abort();
  return p;
}

void *sqlp_xrealloc(void *p, size_t n) {
  p = realloc(p, n ? n : 1);
  if (!p) abort();
  return p;
}

char *sqlp_xstrdup(const char *s) {
  char *d = strdup(s ? s : "");
  if (!d) abort();
  return d;
}

const char *sqlp_engine_name(ferry_sql_engine e) {
  return e == FERRY_SQL_MYSQL ? "mysql" : e == FERRY_SQL_SQLITE ? "sqlite" : "postgresql";
}

/* ---- COPY text ------------------------------------------------------------------------------------------- */
void sqlp_copy_escape(ferry_buf *b, const ferry_sql_value *v) {
  if (!v->data) {
    ferry_buf_add(b, "\\N");
    return;
  }
  if (v->binary) { /* bytea hex: \x.. (the backslash itself escaped) */
    static const char hx[] = "0123456789abcdef";
    ferry_buf_add(b, "\\\\x");
    for (size_t i = 0; i < v->len; i++) {
      char two[2] = {hx[(unsigned char)v->data[i] >> 4], hx[(unsigned char)v->data[i] & 15]};
      ferry_buf_addn(b, two, 2);
    }
    return;
  }
  size_t start = 0;
  for (size_t i = 0; i < v->len; i++) {
    const char *esc = NULL;
    switch (v->data[i]) {
      case '\\': esc = "\\\\"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\t': esc = "\\t"; break;
      default: continue;
    }
    ferry_buf_addn(b, v->data + start, i - start);
    ferry_buf_add(b, esc);
    start = i + 1;
  }
  ferry_buf_addn(b, v->data + start, v->len - start);
}

size_t sqlp_copy_split(const char *line, size_t len, char **out, size_t *lens, size_t n) {
  size_t f = 0, i = 0;
  for (;;) {
    size_t s = i;
    while (i < len && line[i] != '\t') i++;
    if (f < n) {
      if (i - s == 2 && line[s] == '\\' && line[s + 1] == 'N') {
        out[f] = NULL;
        lens[f] = 0;
      } else {
        char *d = sqlp_xcalloc(i - s + 1, 1);
        size_t o = 0;
        for (size_t k = s; k < i; k++) {
          char ch = line[k];
          if (ch == '\\' && k + 1 < i) {
            ch = line[++k];
            switch (ch) {
              case 'n': ch = '\n'; break;
              case 'r': ch = '\r'; break;
              case 't': ch = '\t'; break;
              case 'b': ch = '\b'; break;
              case 'f': ch = '\f'; break;
              case 'v': ch = '\v'; break;
              default: break;
            }
          }
          d[o++] = ch;
        }
        d[o] = 0;
        out[f] = d;
        lens[f] = o;
      }
    }
    f++;
    if (i >= len) break;
    i++;
  }
  return f;
}

int sqlp_like(const char *s, const char *p) {
  for (; *p; p++, s++) {
    if (*p == '%') {
      while (p[1] == '%') p++;
      if (!p[1]) return 1;
      for (; *s; s++)
        if (sqlp_like(s, p + 1)) return 1;
      return sqlp_like(s, p + 1);
    }
    if (!*s) return 0;
    if (*p == '\\' && p[1]) {
      p++;
      if (*s != *p) return 0;
    } else if (*p != '_' && *p != *s) {
      return 0;
    }
  }
  return !*s;
}

/* ---- types ------------------------------------------------------------------------------------------------ */
static int starts(const char *s, const char *w) { return !strncmp(s, w, strlen(w)); }

ferry_sql_type sqlp_type_class(const char *t, ferry_sql_engine e) {
  if (!t) return FERRY_SQL_T_TEXT;
  if (starts(t, "tinyint(1)") || starts(t, "boolean") || starts(t, "bool") || !strcmp(t, "bit(1)") || !strcmp(t, "bit"))
    return FERRY_SQL_T_BOOL;
  if (strstr(t, "char") || strstr(t, "text") || starts(t, "enum") || starts(t, "set(") || starts(t, "name") ||
      starts(t, "citext") || starts(t, "uuid"))
    return FERRY_SQL_T_TEXT;
  if (starts(t, "point") || starts(t, "geometry") || starts(t, "linestring") || starts(t, "polygon") ||
      starts(t, "multi") || starts(t, "interval"))
    return FERRY_SQL_T_OTHER; /* before "int": spatial types and intervals have no class */
  if (strstr(t, "int") || starts(t, "serial") || starts(t, "bigserial")) return FERRY_SQL_T_INT;
  if (starts(t, "decimal") || starts(t, "numeric")) return FERRY_SQL_T_DECIMAL;
  if (starts(t, "double") || starts(t, "float") || starts(t, "real")) return FERRY_SQL_T_FLOAT;
  if (strstr(t, "blob") || starts(t, "bytea") || strstr(t, "binary")) return FERRY_SQL_T_BINARY;
  if (starts(t, "datetime") || starts(t, "timestamp without")) return FERRY_SQL_T_TIMESTAMP;
  if (starts(t, "timestamp with time zone")) return FERRY_SQL_T_TIMESTAMPTZ;
  if (starts(t, "timestamp")) /* PostgreSQL's bare name has no zone; MySQL's timestamp is UTC-based */
    return e == FERRY_SQL_MYSQL ? FERRY_SQL_T_TIMESTAMPTZ : FERRY_SQL_T_TIMESTAMP;
  if (starts(t, "date")) return FERRY_SQL_T_DATE;
  if (starts(t, "time")) return FERRY_SQL_T_TIME;
  if (starts(t, "json")) return FERRY_SQL_T_JSON;
  return FERRY_SQL_T_OTHER;
}

/* width rank of an integer type: 1 tiny, 2 small, 3 medium, 4 int, 5 big, 6 unsigned big */
static int int_rank(const char *t) {
  int u = strstr(t, "unsigned") != NULL;
  if (starts(t, "tinyint")) return 1 + u;
  if (starts(t, "smallint") || starts(t, "int2")) return 2 + u;
  if (starts(t, "mediumint")) return 3 + u;
  if (starts(t, "bigint") || starts(t, "int8") || starts(t, "bigserial")) return 5 + u;
  return 4 + u; /* int, integer, int4, serial */
}

/* a type text made of words, digits, spaces, one (n[,m]) modifier: safe to repeat in DDL */
static int plain_type(const char *t) {
  int paren = 0;
  for (const char *p = t; *p; p++) {
    if (islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == ' ' || *p == '_') continue;
    if (*p == '(' && !paren) { paren = 1; continue; }
    if (*p == ')' && paren == 1) { paren = 2; continue; }
    if (*p == ',' && paren == 1) continue;
    return 0;
  }
  return paren != 1 && *t;
}

const char *sqlp_target_type(const ferry_sql *db, const char *st, ferry_sql_engine se, int key, char **owned) {
  ferry_sql_engine de = ferry_sql_engine_of(db);
  ferry_sql_type cls = sqlp_type_class(st, se);
  *owned = NULL;
  if (st && se == de && plain_type(st)) {
    if (!(key && de == FERRY_SQL_MYSQL && cls == FERRY_SQL_T_TEXT && strstr(st, "text")))
      return st; /* same engine: the source's own type */
  }
  unsigned a = 0, b = 0;
  const char *paren = st ? strchr(st, '(') : NULL;
  int nmod = paren ? sscanf(paren, "(%u,%u)", &a, &b) : 0;
  switch (cls) {
    case FERRY_SQL_T_BOOL:
      return de == FERRY_SQL_MYSQL ? "tinyint(1)" : "boolean"; /* bit(1) included: values become 0/1 */
    case FERRY_SQL_T_TEXT:
      if (st && nmod == 1 && (strstr(st, "varchar") || strstr(st, "character varying")))
        return *owned = ferry_asprintf("varchar(%u)", a);
      if (st && nmod == 1 && (starts(st, "char") || starts(st, "character(")))
        return *owned = ferry_asprintf("char(%u)", a);
      return key && de == FERRY_SQL_MYSQL ? "varchar(255)" : ferry_sql_type_name(db, FERRY_SQL_T_TEXT);
    case FERRY_SQL_T_INT: {
      int r = st ? int_rank(st) : 5;
      if (de == FERRY_SQL_POSTGRESQL)
        return r <= 2 ? "smallint" : r <= 4 ? "integer" : r == 5 ? "bigint" : "numeric(20,0)";
      return r <= 2 ? "smallint" : r <= 4 ? "int" : "bigint";
    }
    case FERRY_SQL_T_DECIMAL:
      if (nmod == 2) return *owned = ferry_asprintf("%s(%u,%u)", de == FERRY_SQL_MYSQL ? "decimal" : "numeric", a, b);
      if (nmod == 1) return *owned = ferry_asprintf("%s(%u,0)", de == FERRY_SQL_MYSQL ? "decimal" : "numeric", a);
      return ferry_sql_type_name(db, cls);
    case FERRY_SQL_T_FLOAT:
      if (st && (starts(st, "real") || (starts(st, "float") && !strstr(st, "float8"))))
        return de == FERRY_SQL_MYSQL ? "float" : "real";
      return ferry_sql_type_name(db, cls);
    case FERRY_SQL_T_TIMESTAMP:
    case FERRY_SQL_T_TIMESTAMPTZ:
    case FERRY_SQL_T_TIME: {
      unsigned p = nmod == 1 ? a : (se == FERRY_SQL_POSTGRESQL ? 6 : 0); /* PostgreSQL keeps microseconds */
      const char *base = cls == FERRY_SQL_T_TIME ? "time"
                         : de == FERRY_SQL_MYSQL ? (cls == FERRY_SQL_T_TIMESTAMP ? "datetime" : "timestamp")
                         : (cls == FERRY_SQL_T_TIMESTAMP ? "timestamp" : "timestamptz");
      if (de == FERRY_SQL_POSTGRESQL && cls == FERRY_SQL_T_TIMESTAMPTZ) return *owned = ferry_asprintf("timestamptz(%u)", p);
      return *owned = ferry_asprintf("%s(%u)", base, p);
    }
    case FERRY_SQL_T_OTHER:
      return NULL; /* a type the sink does not know: the caller refuses the table */
    default:
      return ferry_sql_type_name(db, cls);
  }
}

int sqlp_type_compatible(const char *src, ferry_sql_engine se, const char *dst, ferry_sql_engine de,
                         const char **why) {
  ferry_sql_type s = sqlp_type_class(src, se), d = sqlp_type_class(dst, de);
  *why = NULL;
  if (d == FERRY_SQL_T_TEXT) return 1; /* the text form is kept */
  if (!src) {
    *why = "the source gives no type, so its text values cannot be trusted to parse as this type";
    return 0;
  }
  if (s == d) {
    if (s == FERRY_SQL_T_INT && int_rank(src) > int_rank(dst)) {
      *why = "the target integer is narrower";
      return 0;
    }
    if (s == FERRY_SQL_T_OTHER && strcmp(src, dst)) {
      *why = "different types the sink does not know to be compatible";
      return 0;
    }
    return 1;
  }
  if (s == FERRY_SQL_T_INT && (d == FERRY_SQL_T_DECIMAL || d == FERRY_SQL_T_FLOAT)) return 1;
  if (s == FERRY_SQL_T_BOOL && d == FERRY_SQL_T_INT) return 1;
  if (s == FERRY_SQL_T_DATE && (d == FERRY_SQL_T_TIMESTAMP || d == FERRY_SQL_T_TIMESTAMPTZ)) return 1;
  if ((s == FERRY_SQL_T_TIMESTAMP || s == FERRY_SQL_T_TIMESTAMPTZ) &&
      (d == FERRY_SQL_T_TIMESTAMP || d == FERRY_SQL_T_TIMESTAMPTZ))
    return 1;
  if (s == FERRY_SQL_T_TEXT) *why = "text values cannot be trusted to parse as this type";
  else *why = "values of the source type do not fit the target type without loss";
  return 0;
}

size_t sqlp_utf8_invalid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    size_t k;
    unsigned min;
    unsigned cp;
    if ((c & 0xe0) == 0xc0) k = 1, min = 0x80, cp = c & 0x1f;
    else if ((c & 0xf0) == 0xe0) k = 2, min = 0x800, cp = c & 0x0f;
    else if ((c & 0xf8) == 0xf0) k = 3, min = 0x10000, cp = c & 0x07;
    else return i;
    for (size_t m = 1; m <= k; m++) {
      if (i + m >= n || (p[i + m] & 0xc0) != 0x80) return i;
      cp = (cp << 6) | (p[i + m] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += k + 1;
  }
  return (size_t)-1;
}
