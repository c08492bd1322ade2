/* sql plugin: shared declarations of its source (source.c), sink (sink.c, sink_write.c) and helpers (util.c).
 * Everything here has hidden visibility and an sqlp_ prefix, so that the plugin can be linked into libferry
 * next to others; the module exports only its descriptor (sql.c). */
#ifndef FERRY_SQLP_H
#define FERRY_SQLP_H

#include <stddef.h>
#include <stdint.h>

#include <ferry/ferry.h>
#include <ferry/sql.h>

/* values of the enum options (sql.c has the names) */
enum { SQLP_SKIP, SQLP_OVERWRITE, SQLP_FAIL };             /* on_conflict */
enum { SQLP_MISSING_ADD, SQLP_MISSING_REFUSE };            /* missing_columns */
enum { SQLP_CREATE_AUTO, SQLP_CREATE_JOGET, SQLP_CREATE_REFUSE }; /* create_tables */
enum { SQLP_ZERO_ERROR, SQLP_ZERO_NULL };                  /* zero_dates */

typedef struct sqlp_src sqlp_src;
typedef struct sqlp_sink sqlp_sink;

typedef struct sqlp_ctx {
  char *dsn;
  /* source */
  char **tables;
  char **patterns;
  char **exclude;
  char *app;
  char *app_version;
  int users;
  int64_t batch_rows;
  int64_t batch_bytes;
  /* sink */
  int on_conflict;
  int missing_columns;
  int create_tables;
  int zero_dates;
  json_t *table_map;
  json_t *column_map;
  int64_t max_keys_reported;
  /* state */
  ferry_instance *ins;
  sqlp_src *src;
  sqlp_sink *sink;
} sqlp_ctx;

extern const ferry_source_ops sqlp_source_ops;
extern const ferry_sink_ops sqlp_sink_ops;
void sqlp_source_free(sqlp_ctx *c);
void sqlp_sink_free(sqlp_ctx *c);

/* ---- util.c ---------------------------------------------------------------------------------------------- */
void *sqlp_xcalloc(size_t n, size_t size);
void *sqlp_xrealloc(void *p, size_t n);
char *sqlp_xstrdup(const char *s);
/* "postgresql" / "mysql" / "sqlite": the body's "engine" value of an endpoint */
const char *sqlp_engine_name(ferry_sql_engine e);
/* Appends a value in PostgreSQL COPY text form (NULL -> \N); binary values as \x<hex>. */
void sqlp_copy_escape(ferry_buf *b, const ferry_sql_value *v);
/* Splits one COPY text line (no '\n') into n decoded fields (malloc'd, NULL = SQL NULL, lengths in lens).
 * Returns the number of fields found. */
size_t sqlp_copy_split(const char *line, size_t len, char **out, size_t *lens, size_t n);
/* SQL LIKE with % and _ ('\' escapes), case-sensitive. */
int sqlp_like(const char *s, const char *pat);
/* The engine-neutral class of a type as the PostgreSQL or MySQL catalogue prints it ("character varying(255)",
 * "longtext", "tinyint(1)", "timestamp with time zone", "datetime(6)", ...). `engine` is the engine that
 * printed it (MySQL "timestamp" has a zone, PostgreSQL's would say so). */
ferry_sql_type sqlp_type_class(const char *type, ferry_sql_engine engine);
/* The offset of the first byte of s[0..n) that is not part of a valid UTF-8 sequence (overlong forms,
 * surrogates and code points above U+10FFFF included), or (size_t)-1 when all of it is valid. */
size_t sqlp_utf8_invalid(const char *s, size_t n);
/* The type to create for a source column on the target (static or malloc'd into *owned); NULL for a type
 * of no known class (FERRY_SQL_T_OTHER) from another engine, which the sink refuses. */
const char *sqlp_target_type(const ferry_sql *db, const char *stype, ferry_sql_engine sengine, int key,
                             char **owned);
/* 1 when values of type src (engine se) go into a column of type dst (engine de) without loss; else 0 with
 * *why (static string). */
int sqlp_type_compatible(const char *src, ferry_sql_engine se, const char *dst, ferry_sql_engine de,
                         const char **why);

#endif
