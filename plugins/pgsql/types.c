/* pgsql plugin: which source column types may be written into which target column types.
 *
 * The rule (docs/plugins/pgsql.md, "Compatible types"): a value must arrive without loss.
 *   - the same type (modifiers aside) is compatible;
 *   - strings (text, varchar, char, name, citext) are interchangeable; a shorter length limit on the target
 *     is only a warning (a value that does not fit fails its batch with the server's error);
 *   - any type may go into a string column (its text form is kept);
 *   - integers widen (smallint -> integer -> bigint -> numeric); smallint and integer also go into double
 *     precision, smallint into real; real into double precision; integers and floats into numeric without
 *     a precision; numeric(p,s) into numeric(p2,s2) when neither integer nor fraction digits shrink;
 *   - date -> timestamp / timestamptz; timestamp <-> timestamptz (read in the option `timezone`);
 *     time <-> timetz;
 *   - json <-> jsonb;
 *   - arrays: when their element types are compatible by these rules;
 *   - everything else (text -> integer, bigint -> integer, timestamp -> date, numeric -> integer, ...) is
 *     incompatible and refuses the table before any row is written.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pgsql.h"

typedef struct ptype {
  char base[256]; /* canonical short name: text, varchar, bpchar, int4, numeric, timestamptz, ... */
  int array;      /* number of [] */
  int mod1, mod2; /* modifiers, -1 when absent */
} ptype;

static const struct { const char *name, *canon; } aliases[] = {
    {"character varying", "varchar"}, {"varchar", "varchar"}, {"character", "bpchar"}, {"char", "bpchar"},
    {"bpchar", "bpchar"}, {"text", "text"}, {"name", "name"}, {"citext", "citext"},
    {"smallint", "int2"}, {"int2", "int2"}, {"integer", "int4"}, {"int", "int4"}, {"int4", "int4"},
    {"bigint", "int8"}, {"int8", "int8"}, {"numeric", "numeric"}, {"decimal", "numeric"},
    {"real", "float4"}, {"float4", "float4"}, {"double precision", "float8"}, {"float8", "float8"},
    {"timestamp without time zone", "timestamp"}, {"timestamp", "timestamp"},
    {"timestamp with time zone", "timestamptz"}, {"timestamptz", "timestamptz"}, {"date", "date"},
    {"time without time zone", "time"}, {"time", "time"}, {"time with time zone", "timetz"},
    {"timetz", "timetz"}, {"boolean", "bool"}, {"bool", "bool"}, {"json", "json"}, {"jsonb", "jsonb"},
    {NULL, NULL}};

/* Parses "character varying(255)", "timestamp(3) with time zone", "numeric(10,2)[]", "integer". */
static void parse_type(const char *s, ptype *t) {
  char buf[256];
  size_t o = 0;
  t->array = 0;
  t->mod1 = t->mod2 = -1;
  const char *p = s ? s : "";
  while (*p && o + 1 < sizeof buf) {
    if (*p == '(') {
      p++;
      t->mod1 = atoi(p);
      while (*p && *p != ',' && *p != ')') p++;
      if (*p == ',') t->mod2 = atoi(++p);
      while (*p && *p != ')') p++;
      if (*p) p++;
      continue;
    }
    if (*p == '[') {
      t->array++;
      while (*p && *p != ']') p++;
      if (*p) p++;
      continue;
    }
    char ch = (char)tolower((unsigned char)*p++);
    if (ch == ' ' && (o == 0 || buf[o - 1] == ' ')) continue; /* collapse spaces */
    if (ch == '"') continue;
    buf[o++] = ch;
  }
  while (o && buf[o - 1] == ' ') o--;
  buf[o] = '\0';
  const char *canon = buf;
  for (int i = 0; aliases[i].name; i++)
    if (!strcmp(buf, aliases[i].name)) canon = aliases[i].canon;
  snprintf(t->base, sizeof t->base, "%s", canon);
}

static int is_string(const char *b) {
  return !strcmp(b, "text") || !strcmp(b, "varchar") || !strcmp(b, "bpchar") || !strcmp(b, "name") ||
         !strcmp(b, "citext");
}

/* integer rank for widening: int2 1, int4 2, int8 3; 0 = not an integer */
static int int_rank(const char *b) {
  if (!strcmp(b, "int2")) return 1;
  if (!strcmp(b, "int4")) return 2;
  if (!strcmp(b, "int8")) return 3;
  return 0;
}

static int base_compatible(const ptype *s, const ptype *d, const char **why) {
  if (is_string(d->base)) return 1; /* any text form fits a string column */
  if (!strcmp(s->base, d->base)) {
    if (!strcmp(d->base, "numeric") && d->mod1 >= 0) {
      if (s->mod1 < 0) {
        *why = "unconstrained numeric into a numeric with a precision may lose digits";
        return 0;
      }
      int s_int = s->mod1 - (s->mod2 > 0 ? s->mod2 : 0), d_int = d->mod1 - (d->mod2 > 0 ? d->mod2 : 0);
      int s_frac = s->mod2 > 0 ? s->mod2 : 0, d_frac = d->mod2 > 0 ? d->mod2 : 0;
      if (d_int < s_int || d_frac < s_frac) {
        *why = "the target numeric has fewer integer or fraction digits";
        return 0;
      }
    }
    return 1;
  }
  int si = int_rank(s->base), di = int_rank(d->base);
  if (si && di) {
    if (di >= si) return 1;
    *why = "narrowing integer conversion";
    return 0;
  }
  if (!strcmp(d->base, "numeric")) {
    if (si) return d->mod1 < 0 || d->mod1 - (d->mod2 > 0 ? d->mod2 : 0) >= (si == 1 ? 5 : si == 2 ? 10 : 19)
                   ? 1 : (*why = "the target numeric has too few digits for the integer type", 0);
    if (!strcmp(s->base, "float4") || !strcmp(s->base, "float8")) {
      if (d->mod1 < 0) return 1;
      *why = "floating point into a numeric with a precision may lose digits";
      return 0;
    }
  }
  if (!strcmp(d->base, "float8") && (si == 1 || si == 2 || !strcmp(s->base, "float4"))) return 1;
  if (!strcmp(d->base, "float4") && si == 1) return 1;
  if ((!strcmp(d->base, "timestamp") || !strcmp(d->base, "timestamptz")) &&
      (!strcmp(s->base, "date") || !strcmp(s->base, "timestamp") || !strcmp(s->base, "timestamptz")))
    return 1;
  if ((!strcmp(d->base, "time") || !strcmp(d->base, "timetz")) &&
      (!strcmp(s->base, "time") || !strcmp(s->base, "timetz")))
    return 1;
  if ((!strcmp(d->base, "json") || !strcmp(d->base, "jsonb")) &&
      (!strcmp(s->base, "json") || !strcmp(s->base, "jsonb")))
    return 1;
  if (is_string(s->base)) *why = "text values cannot be trusted to parse as this type";
  else if (int_rank(s->base) || !strcmp(s->base, "numeric") || !strncmp(s->base, "float", 5))
    *why = "the numeric value may not fit";
  else *why = "different types";
  return 0;
}

int pgsql_type_compatible(const char *src, const char *dst, const char **why) {
  static const char *none = "";
  *why = none;
  ptype s, d;
  parse_type(src, &s);
  parse_type(dst, &d);
  if (d.array == 0 && is_string(d.base)) return 1;
  if (s.array != d.array) {
    *why = s.array ? "an array cannot go into a non-array column" : "a scalar cannot go into an array column";
    return 0;
  }
  return base_compatible(&s, &d, why);
}

int pgsql_type_narrower_string(const char *src, const char *dst) {
  ptype s, d;
  parse_type(src, &s);
  parse_type(dst, &d);
  if (d.array || !is_string(d.base) || d.mod1 < 0 || !strcmp(d.base, "text")) return 0;
  if (!is_string(s.base) || s.array) return 0; /* other types: text forms are short, not checked */
  return s.mod1 < 0 || !strcmp(s.base, "text") || s.mod1 > d.mod1;
}

char *pgsql_type_base_for_check(const char *type) {
  if (!type || !*type || strlen(type) > 200) return NULL;
  ferry_buf sb = {0};
  int mods = 0;
  const char *p = type;
  while (*p) {
    if (*p == '(') {
      if (mods++) goto bad;
      p++;
      if (!isdigit((unsigned char)*p)) goto bad;
      while (isdigit((unsigned char)*p)) p++;
      if (*p == ',') {
        p++;
        if (!isdigit((unsigned char)*p)) goto bad;
        while (isdigit((unsigned char)*p)) p++;
      }
      if (*p != ')') goto bad;
      p++;
      continue;
    }
    if (*p == '[') {
      if (p[1] != ']') goto bad;
      ferry_buf_add(&sb, "[]");
      p += 2;
      continue;
    }
    if (!(islower((unsigned char)*p) || isdigit((unsigned char)*p) || *p == '_' || *p == ' ')) goto bad;
    ferry_buf_addn(&sb, p, 1);
    p++;
  }
  if (!sb.len || !islower((unsigned char)sb.buf[0])) goto bad;
  return ferry_buf_steal(&sb);
bad:
  ferry_buf_free(&sb);
  return NULL;
}
