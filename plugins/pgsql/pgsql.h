/* pgsql plugin: shared declarations of its source (source*.c, see source.h), sink (sink*.c, see sink.h) and
 * helpers (util.c, types.c).
 * Everything here has hidden visibility (the build's default) and a pgsql_ prefix, so that the plugin can be
 * linked into libferry next to others; the module exports only its descriptor (pgsql.c). */
#ifndef FERRY_PGSQL_H
#define FERRY_PGSQL_H

#include <stddef.h>
#include <stdint.h>

#include <ferry/ferry.h>
#include <ferry/pg.h>

/* ---- the instance context: options first (written by the core), then the role's state ---------------- */
typedef struct pgsql_src pgsql_src;
/* values of the enum options (written by the core, pgsql.c has the names) */
enum { PGSQL_COUNT_ESTIMATE, PGSQL_COUNT_EXACT, PGSQL_COUNT_NONE };
enum { POLICY_SKIP, POLICY_OVERWRITE, POLICY_FAIL }; /* on_conflict */
enum { PGSQL_MISSING_ADD, PGSQL_MISSING_REFUSE };
enum { PGSQL_CREATE_AUTO, PGSQL_CREATE_JOGET, PGSQL_CREATE_REFUSE };
typedef struct pgsql_sink pgsql_sink;

typedef struct pgsql_ctx {
  /* common */
  char *dsn;
  char *schema;
  char *timezone;
  /* source */
  char **tables;
  char **patterns;
  char **exclude;
  char *app;
  char *app_version;
  int users;
  int64_t batch_rows;
  int64_t batch_bytes;
  int64_t connections;
  int defer_constraints;
  int count;           /* PGSQL_COUNT_* */
  /* sink */
  int on_conflict;     /* POLICY_* */
  int missing_columns; /* PGSQL_MISSING_* */
  int create_tables;   /* PGSQL_CREATE_* */
  json_t *table_map;
  json_t *column_map;
  int64_t max_keys_reported;
  /* state */
  ferry_instance *ins;
  pgsql_src *src;
  pgsql_sink *sink;
} pgsql_ctx;

/* source.c / sink.c */
extern const ferry_source_ops pgsql_source_ops;
extern const ferry_sink_ops pgsql_sink_ops;
void pgsql_source_free(pgsql_ctx *c);
void pgsql_sink_free(pgsql_ctx *c);

/* ---- memory and strings (util.c); allocation failures abort ------------------------------------------- */
void *pgsql_xmalloc(size_t n);
void *pgsql_xcalloc(size_t n, size_t size);
void *pgsql_xrealloc(void *p, size_t n);
char *pgsql_xstrdup(const char *s);
char *pgsql_xstrndup(const char *s, size_t n);
void pgsql_strv_free(char **v, size_t n);

/* Strings: the SDK's (ferry_buf, ferry_asprintf, ferry_hash64 in ferry/util.h; quoting and array literals,
 * ferry_pg_add_ident, ferry_pg_add_literal, ferry_pg_array_elem, ferry_pg_text_array, in ferry/pg.h). */
/* "schema"."table" */
char *pgsql_qname(const char *schema, const char *table);
/* PostgreSQL array literal of the strings of a JSON array (others skipped); malloc'd. */
char *pgsql_json_text_array(const json_t *arr);
/* "SET LOCAL ..." statements that make the text forms of values the same on every connection (time zone,
 * DateStyle ISO, IntervalStyle postgres, extra_float_digits 3, bytea hex, UTF8); malloc'd. */
char *pgsql_session_sets(const char *timezone);

/* ---- COPY text format ----------------------------------------------------------------------------------- */
/* Decodes field `idx` (0-based) of one COPY text line (without its '\n'): returns 1 and the value in *out
 * (malloc'd; NULL for \N), 0 when the line has fewer fields. */
int pgsql_copy_field(const char *line, size_t len, size_t idx, char **out);
/* Splits one line into exactly n decoded fields (malloc'd; NULL entries = SQL NULL). Returns the number of
 * fields found (n on success). */
size_t pgsql_copy_fields(const char *line, size_t len, char **out, size_t n);
/* Appends a value escaped for COPY text (NULL -> \N). */
void pgsql_copy_escape(ferry_buf *sb, const char *s, size_t n);
/* Iterates the lines of a COPY text payload: returns 1 with line and len set (no newline), 0 at the end. */
int pgsql_copy_next_line(const char *data, size_t size, size_t *pos, const char **line, size_t *len);

/* ---- column types (types.c) ------------------------------------------------------------------------------ */
/* 1 when a value of type `src` can be written into a column of type `dst` without loss (rules in
 * docs/plugins/pgsql.md); else 0 and *why says why (static string). Type texts as format_type() prints them
 * (or the usual short names). */
int pgsql_type_compatible(const char *src, const char *dst, const char **why);
/* Whether `dst` limits the length of strings more than `src` does (a warning, not a refusal). */
int pgsql_type_narrower_string(const char *src, const char *dst);
/* Checks that a type text from an item is a plain type name (words, one (n[,m]) modifier, [] suffixes) and
 * returns it without its modifier (malloc'd) for a to_regtype() check; NULL when it is not. */
char *pgsql_type_base_for_check(const char *type);

#endif
