/* pgsql sink: declarations shared by the sink's files (private to the plugin; see pgsql.h).
 *
 * Files: sink.c (the outline; small helpers, completing jobs, dispatch, ops), sink_tables.c (preparing a
 * target table: reading it, type checks, DDL, refusals), sink_write.c (a batch's rows; RUN: writing one
 * batch), sink_compare.c (PLAN and VERIFY: a batch's rows against the target).
 * Functions shared between these files start with pgsql_ (the plugin's rule for non-static symbols).
 */
#ifndef FERRY_PGSQL_SINK_H
#define FERRY_PGSQL_SINK_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "pgsql.h"

enum { TT_NEW, TT_PREPARING, TT_READY, TT_REFUSED };

typedef struct job job;

typedef struct sconn {
  ferry_pg *pg;
  int busy;
} sconn;

typedef struct tcolumn {
  char *name, *type;
  int notnull, hasdef, pkpos; /* pkpos: 1-based position in the primary key, 0 = not in it */
} tcolumn;

typedef struct ttable {
  struct ttable *next;
  char *sig;            /* identity: source table, columns, types, key columns */
  char *src_name, *name, *qname;
  int state;
  ferry_error err;
  job *waiters;
  /* the target as read */
  int exists;
  char relkind;
  tcolumn *tc;
  size_t ntc;
  /* per item column */
  size_t ncols;
  char **icol;          /* source column names */
  char **stype;         /* source types or NULL */
  char **tcol;          /* target column or NULL when left out */
  char **ttype;         /* target type (text for left-out columns, for staging) */
  int *present;         /* the target has (or, after DDL, will have) the column */
  int dropped;
  /* target primary key, as item column indices */
  size_t nkeys;
  size_t *kidx;
  /* what preparing did or would do */
  json_t *actions;
  ferry_buf ddl;
  char **checks;        /* types to check with to_regtype before the DDL */
  size_t nchecks, ichk;
  /* SQL pieces */
  char *stage, *stage_cols_ddl, *ins_cols, *sel_cols;
} ttable;

typedef struct dep {
  struct dep *next;
  char *table;
  int inflight;
} dep;

struct job {
  job *next;
  pgsql_sink *k;
  ferry_task *task;
  const ferry_item *it;
  ttable *tt;
  dep *d;
  sconn *conn;
  const char *data;
  size_t len;
  char *owned;
  int64_t rows;
  int step, direct_failed;
  ferry_error err;      /* failure to report after ROLLBACK */
  int64_t inserted, updated;
  int policy;           /* the sink's conflict policy, or overwrite when the task repairs the batch */
};

struct pgsql_sink {
  pgsql_ctx *c;
  ferry_instance *ins;
  ferry_mode mode;
  int policy;
  sconn *conns;
  size_t nconns;
  ttable *tables;
  dep *deps;
  job *waiting;
  char *sets;
  int rechecking, recheck_again;
};

/* ---- sink.c -------------------------------------------------------------------------------------------- */
const char *pgsql_jstr(const json_t *o, const char *k);
int pgsql_sqlstate_is(const ferry_error *err, const char *st);
void pgsql_job_done(job *j, unsigned flags);
void pgsql_job_fail(job *j, const ferry_error *err);
void pgsql_job_failf(job *j, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
void pgsql_job_fail_q(job *j, const char *doing, const ferry_error *err);
void pgsql_job_go(job *j);

/* ---- sink_tables.c ------------------------------------------------------------------------------------- */
void pgsql_table_free(ttable *t);
ttable *pgsql_table_get(pgsql_sink *k, const ferry_item *it);
void pgsql_prep_start(job *j);

/* ---- sink_write.c -------------------------------------------------------------------------------------- */
int pgsql_job_parse(job *j, ferry_error *err);
/* The rows of a JSON batch (arrays of values, one per column of j->it's "columns") as COPY text into
 * j->owned / j->data / j->len, counting j->rows: null -> \N, strings escaped, true/false -> t/f, numbers,
 * objects and arrays as compact JSON. 0, or FERRY_EINVAL naming the first row of the wrong shape. */
int pgsql_rows_to_copy(job *j, json_t *rows, ferry_error *err);
void pgsql_job_write(job *j);

/* ---- sink_compare.c ------------------------------------------------------------------------------------ */
void pgsql_job_compare(job *j);

#endif
