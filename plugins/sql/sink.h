/* sql sink: declarations shared by sink.c (tables: reading, checking, DDL; dispatch, ops) and sink_write.c
 * (a batch: parsing, comparing with the target, writing). Private to the plugin (see sql.h). */
#ifndef FERRY_SQLP_SINK_H
#define FERRY_SQLP_SINK_H

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sql.h"

enum { TT_NEW, TT_PREPARING, TT_READY, TT_REFUSED };

typedef struct job job;

typedef struct ttable {
  struct ttable *next;
  char *src_name, *name, *qname;
  ferry_sql_engine se;  /* the engine the item's types come from */
  int state;
  ferry_error err;
  job *waiters;
  json_t *tcols;        /* target: column -> type (as read) */
  json_t *tpk;          /* target primary key columns */
  size_t ncols;
  char **cols, **stype; /* target columns (after column_map) and their source types (NULL = unknown) */
  size_t nitem;         /* columns of the items */
  size_t *src_idx;      /* item column index of each of cols */
  ferry_sql_type *tcls; /* class of each column on the target */
  unsigned char *tbit;  /* 1: a MySQL bit(n) column on the target (values go as bytes) */
  size_t nkeys;
  size_t *kidx;         /* item column index of each target key column */
  int fresh;            /* created by this sink, or empty when prepared: batches insert without reading the
                           target first (a duplicate key sends the batch down the comparing path) */
  int missing;          /* plan/verify: the table does not exist on the target */
  unsigned char *absent;/* plan/verify: the column does not exist on the target */
  json_t *ddl;          /* statements still to run */
  json_t *actions;
} ttable;

struct job {
  job *next;
  sqlp_sink *k;
  ferry_task *task;
  const ferry_item *it;
  ttable *tt;
  size_t nrows, ncols;
  ferry_sql_value *vals; /* nrows x ncols, strings owned */
  ferry_sql_txn *txn;
  json_t *existing;      /* key text -> 1 identical, 2 differs */
  int64_t inserted, updated, differ, found;
  json_t *diffs;         /* verify: [{key, columns}] of differing rows, up to max_keys_reported */
  int step, counted;
  int direct;            /* this attempt inserts without reading the target (ttable.fresh) */
  int redo;              /* the direct insert met a duplicate key: roll back, then the comparing path */
  ferry_error err;
};

struct sqlp_sink {
  sqlp_ctx *c;
  ferry_instance *ins;
  ferry_sql *db;
  ferry_sql_engine engine;
  ferry_mode mode;       /* RUN writes; PLAN and VERIFY only read the target */
  ttable *tables;
  json_t *inflight;      /* table -> batches accepted and not finished */
  job *waiting;          /* batches held until the tables of their "after" have none in flight */
  int rechecking, recheck_again;
};

/* sink.c */
/* dst = err (a copy) with the engine's detail in the message, prefixed by the formatted text. */
void sqlp_error_from(ferry_error *dst, const ferry_error *err, const char *fmt, ...) FERRY_PRINTF(3, 4);
void sqlp_job_done(job *j, unsigned flags);
void sqlp_job_fail(job *j, const ferry_error *err);
void sqlp_job_failf(job *j, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
void sqlp_job_fail_q(job *j, const char *doing, const ferry_error *err);
/* sink_write.c */
int sqlp_job_parse(job *j, ferry_error *err);
/* the parsed values reduced to the table's columns (column_map): 0, or -1 with err */
int sqlp_job_project(job *j, ferry_error *err);
/* column_map: the target name of a source column of table `src` (NULL = left out), borrowed */
const char *sqlp_map_column(const sqlp_ctx *c, const char *src, const char *col);
/* checks the values against the prepared table (zero dates, key values): 0 or fills err */
int sqlp_job_check(job *j, ferry_error *err);
void sqlp_job_write(job *j);
/* PLAN and VERIFY: the batch against the target's rows, nothing written */
void sqlp_job_compare(job *j);
void sqlp_job_free_vals(job *j);
/* key text of row r (key values joined by \x1f), malloc'd */
char *sqlp_row_key(const job *j, size_t r);

#endif
