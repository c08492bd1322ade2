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
  ferry_pg *pg;
  app_tables *cache; /* resolved apps */
  size_t ncache;
} pr_ctx;

typedef struct column {
  char *name;
  char *type;       /* format_type() of the column: usable in CAST(... AS type) */
  int generated;    /* GENERATED ... STORED: never written */
  int ident_always; /* GENERATED ALWAYS AS IDENTITY: not updated; inserted with OVERRIDING SYSTEM VALUE */
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
} pr_op;

/* ---- preserve_records.c -------------------------------------------------------------------------------- */
void *preserve_xrealloc(void *p, size_t n);
char *preserve_xstrdup(const char *s);
void preserve_free_list(char **l);

/* ---- hook.c -------------------------------------------------------------------------------------------- */
void preserve_op_finish(pr_op *op, int status, const ferry_error *err);
FERRY_PRINTF(3, 4) void preserve_op_failf(pr_op *op, int code, const char *fmt, ...);
void preserve_op_fail_pg(pr_op *op, const char *what, const ferry_error *err);
void preserve_sb_row_json(ferry_buf *sb, const table_info *t);
void preserve_sb_table(ferry_buf *sb, const table_info *t);
void preserve_sb_key_match(ferry_buf *sb, const table_info *t);
void preserve_pr_fire(ferry_instance *ins, ferry_hook_event *ev);

/* ---- hook_snapshot.c ----------------------------------------------------------------------------------- */
void preserve_op_snapshot(pr_op *op);
void preserve_op_restore(pr_op *op);

#endif
