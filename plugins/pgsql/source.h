/* pgsql source: declarations shared by the source's files (private to the plugin; see pgsql.h).
 *
 * Files: source.c (the outline; failing, freeing, the pump, workers, ops), source_batch.c (batches: keyset
 * pagination over COPY, items), source_order.c (foreign-key order: components, cycles, ranks),
 * source_catalog.c (the catalog phase: the selection, columns, keys, counts, the exported snapshot).
 * Functions shared between these files start with pgsql_ (the plugin's rule for non-static symbols).
 */
#ifndef FERRY_PGSQL_SOURCE_H
#define FERRY_PGSQL_SOURCE_H

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "pgsql.h"

enum { T_WAIT, T_READY, T_ACTIVE, T_DONE, T_REFUSED };
enum { PH_CATALOG, PH_STREAM, PH_END };

typedef struct stable {
  char *name, *qname, *oid;
  int64_t reltuples, size_bytes, count;
  json_t *columns, *types, *keys; /* arrays of strings */
  size_t ncols, nkeys;
  size_t *key_idx;                /* column index of each key column */
  char *select_cols, *order_by, *key_tuple;
  size_t *parents;
  size_t nparents;
  int self_ref, scc, cyclic, state;
  size_t rank;                    /* topological position */
  json_t *after;                  /* names of the tables it must come after */
  int64_t est_batches, batches;
  int64_t rows_seen, bytes_seen;
  char **cursor;                  /* key of the last row taken, NULL at the start */
} stable;

typedef struct sworker {
  pgsql_src *s;
  ferry_pg *pg;
  int conn_ready;
  stable *t;
  int fetching, cut, final;
  ferry_buf buf;
  int64_t rows, fetch_rows, fetch_limit;
  size_t last_off;
  ferry_item *ready;
} sworker;

struct pgsql_src {
  pgsql_ctx *c;
  ferry_instance *ins;
  ferry_pg *pg0;
  char *sets;
  char *snapshot;
  int phase, failed, stopped;
  size_t demand;
  json_t *names;        /* selected table names (object used as a set) */
  stable *t;
  size_t nt;
  sworker *w;
  size_t nw;
  char *refusal;        /* cycle report, when tables were refused */
  int64_t total;
};

/* ---- source.c ------------------------------------------------------------------------------------------ */
void pgsql_src_fail(pgsql_src *s, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
void pgsql_src_fail_q(pgsql_src *s, const char *doing, const ferry_error *err);
void pgsql_src_pump(pgsql_src *s);
void pgsql_start_workers(pgsql_src *s);

/* ---- source_batch.c ------------------------------------------------------------------------------------ */
void pgsql_table_done(pgsql_src *s, stable *t);
void pgsql_start_fetch(sworker *w);

/* ---- source_order.c ------------------------------------------------------------------------------------ */
void pgsql_order_tables(pgsql_src *s);

/* ---- source_catalog.c ---------------------------------------------------------------------------------- */
void pgsql_on_begun(void *arg, int status, PGresult *res, const ferry_error *err);

#endif
