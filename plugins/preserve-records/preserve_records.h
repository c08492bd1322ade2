/* preserve-records: declarations shared by the plugin's files (private: never installed, never seen by
 * the core).
 *
 * Files: preserve_records.c (what the hook does; memory helpers, options, the connection, init/fini,
 * the descriptor), hook.c (one firing: the record id, the apps' form tables, the catalog; fire),
 * hook_snapshot.c (before_start: the snapshot; after_start: the restore and what the tools had changed).
 * Every non-static symbol starts with preserve_, so that the plugin links into libferry (STATIC) without
 * clashes.
 */
#ifndef FERRY_PRESERVE_RECORDS_H
#define FERRY_PRESERVE_RECORDS_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>
#include <ferry/pg.h>
#include <ferry/sql.h>

typedef struct app_tables {
  char *app;
  char **tables; /* NULL-terminated */
} app_tables;

typedef struct pr_ctx {
  /* options (written by the core) */
  char *dsn;
  char **tables;
  char **apps;
  char *key_column;
  char *schema;
  /* run state */
  ferry_instance *ins;
  ferry_sql *db;      /* the target database through the SQL service: PostgreSQL or MySQL/MariaDB */
  int mysql;          /* its engine is MySQL/MariaDB: the SQL of hook*.c is picked per engine */
  app_tables *cache; /* resolved apps */
  size_t ncache;
} pr_ctx;

typedef struct column {
  char *name;
  char *type;       /* format_type() of the column: usable in CAST(... AS type) */
  int generated;    /* GENERATED ... STORED: never written */
  int ident_always; /* GENERATED ALWAYS AS IDENTITY: not updated; inserted with OVERRIDING SYSTEM VALUE */
  int binary;       /* MySQL: a binary type (blob, binary, varbinary): kept as HEX(), written with UNHEX() */
} column;

typedef struct table_info {
  char *name;
  char *schema;   /* where it was found; NULL when the table does not exist */
  column *cols;
  size_t ncols;
  int key;        /* index of the key column in cols, -1 when missing */
} table_info;

typedef struct pr_op {
  pr_ctx *c;
  ferry_hook_event *ev;
  int restore;        /* after_start */
  char *record_id;
  char **apps;        /* apps still to resolve (NULL-terminated), next index in next_app */
  size_t next_app;
  char **tables;      /* NULL-terminated, sorted, unique */
  size_t ntables;
  table_info *info;   /* ntables entries */
  char **params;      /* restore: $2.. values */
  size_t nparams;
  ferry_sql_txn *txn; /* MySQL restore: the transaction of the reads (FOR UPDATE) and the writes */
  json_t *cur;        /* MySQL restore: per table index, the row as the start path left it (object or null) */
  size_t reads;       /* MySQL restore: reads not answered yet */
  ferry_error err;    /* MySQL restore: the first failure */
} pr_op;

/* A whole (small) result of a read: nrows x ncols cells, each a malloc'd NUL-terminated string or NULL (SQL
 * NULL). Borrowed by the callback; freed when it returns. */
typedef struct pr_res {
  size_t nrows, ncols, cap;
  char **cells;
} pr_res;
typedef void (*pr_read_cb)(void *arg, int status, const pr_res *res, const ferry_error *err);
int preserve_res_n(const pr_res *r);
const char *preserve_res_val(const pr_res *r, int row, int col); /* "" for NULL */
int preserve_res_null(const pr_res *r, int row, int col);
int preserve_res_true(const pr_res *r, int row, int col);        /* "t" (PostgreSQL) or a non-zero number (MySQL) */
/* Queues one statement ($1..$n text parameters, NULL = SQL NULL), in txn when not NULL. 0 or a negative code
 * (cb never runs). */
int preserve_read(pr_ctx *c, ferry_sql_txn *txn, const char *sql, size_t n, const char *const *params,
                  pr_read_cb cb, void *arg);
/* An identifier / a literal quoted for the target's engine, appended to sb. */
void preserve_add_ident(ferry_buf *sb, const pr_ctx *c, const char *ident);
void preserve_add_literal(ferry_buf *sb, const pr_ctx *c, const char *value);

/* ---- preserve_records.c -------------------------------------------------------------------------------- */
void *preserve_xrealloc(void *p, size_t n);
char *preserve_xstrdup(const char *s);
void preserve_free_list(char **l);

/* ---- hook.c -------------------------------------------------------------------------------------------- */
void preserve_op_finish(pr_op *op, int status, const ferry_error *err);
FERRY_PRINTF(3, 4) void preserve_op_failf(pr_op *op, int code, const char *fmt, ...);
void preserve_op_fail_pg(pr_op *op, const char *what, const ferry_error *err);
void preserve_sb_row_json(ferry_buf *sb, const pr_ctx *c, const table_info *t);
void preserve_sb_table(ferry_buf *sb, const pr_ctx *c, const table_info *t);
void preserve_sb_key_match(ferry_buf *sb, const pr_ctx *c, const table_info *t);
void preserve_pr_fire(ferry_instance *ins, ferry_hook_event *ev);

/* ---- hook_snapshot.c ----------------------------------------------------------------------------------- */
void preserve_op_snapshot(pr_op *op);
void preserve_op_restore(pr_op *op);

#endif
