/* pgsql source: tables as record items, read in one snapshot, in foreign-key order, in batches.
 *
 * start: the first connection opens BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY and exports its snapshot
 *   (pg_export_snapshot), then resolves the selection (names, LIKE patterns, a Joget app's forms from
 *   app_form, dir_* tables) and reads the catalog: columns, primary keys, foreign keys, sizes.
 * order: tables are ordered by their foreign keys (strongly connected components, then topologically);
 *   a table may start once every table it references (in the selection) has emitted all its batches. A
 *   cycle (or a table referencing itself) is reported; its tables and those depending on them are refused,
 *   unless defer_constraints is set.
 * streaming: up to `connections` worker connections, each in its own REPEATABLE READ READ ONLY transaction
 *   that imported the snapshot (SET TRANSACTION SNAPSHOT), read one table at a time with keyset pagination:
 *   COPY (SELECT cols FROM t WHERE (pk) > (last) ORDER BY pk LIMIT n) TO STDOUT. A batch ends at batch_rows
 *   rows or at the row that brings it to batch_bytes bytes: a rule that depends only on the data, so the
 *   batch keys ("<table>:<first pk>..<last pk>") are the same on every run. A fetch is started only for
 *   demand the core has expressed, so memory stays flat: at most one batch per worker.
 * Nothing is ever written to the source.
 *
 * The source's files: see source.h.
 */
#include "source.h"

/* ---- failing ---------------------------------------------------------------------------------------------- */
void pgsql_src_fail(pgsql_src *s, int code, const char *fmt, ...) {
  if (s->failed || s->stopped) return;
  s->failed = 1;
  ferry_error e = FERRY_ERROR_INIT;
  va_list ap;
  va_start(ap, fmt);
  ferry_error_setv(&e, code, fmt, ap);
  va_end(ap);
  ferry_log_error(s->ins, "%s", e.message);
  ferry_source_fail(s->ins, &e);
  ferry_error_clear(&e);
}

/* A failed query: what we were doing, the service's message, its detail (SQLSTATE, server text). */
void pgsql_src_fail_q(pgsql_src *s, const char *doing, const ferry_error *err) {
  if (s->failed || s->stopped) return;
  s->failed = 1;
  ferry_error e = FERRY_ERROR_INIT;
  int code = err && err->code ? err->code : FERRY_EIO;
  if (code == FERRY_ETRANSIENT) code = FERRY_EIO; /* the snapshot is gone: the stage must run again */
  ferry_error_set(&e, code, "pgsql source: %s: %s%s%s", doing, err && err->message ? err->message : "failed",
                  err && err->detail ? " (" : "", err && err->detail ? err->detail : "");
  if (err && err->code == FERRY_ETRANSIENT)
    ferry_error_prefix(&e, "the source connection failed, run again (batches already copied are skipped)");
  ferry_log_error(s->ins, "%s", e.message);
  ferry_source_fail(s->ins, &e);
  ferry_error_clear(&e);
}

/* ---- freeing ---------------------------------------------------------------------------------------------- */
static void table_clear(stable *t) {
  free(t->name);
  free(t->qname);
  free(t->oid);
  json_decref(t->columns);
  json_decref(t->types);
  json_decref(t->keys);
  json_decref(t->after);
  free(t->key_idx);
  free(t->select_cols);
  free(t->order_by);
  free(t->key_tuple);
  free(t->parents);
  pgsql_strv_free(t->cursor, t->nkeys);
}

void pgsql_source_free(pgsql_ctx *c) {
  pgsql_src *s = c->src;
  if (!s) return;
  s->stopped = 1;
  for (size_t i = 0; i < s->nw; i++) {
    if (s->w[i].pg && s->w[i].pg != s->pg0) ferry_pg_free(s->w[i].pg);
    s->w[i].pg = NULL;
  }
  if (s->pg0) ferry_pg_free(s->pg0);
  s->pg0 = NULL;
  for (size_t i = 0; i < s->nw; i++) {
    ferry_buf_free(&s->w[i].buf);
    ferry_item_free(s->w[i].ready);
  }
  free(s->w);
  for (size_t i = 0; i < s->nt; i++) table_clear(&s->t[i]);
  free(s->t);
  json_decref(s->names);
  free(s->sets);
  free(s->snapshot);
  free(s->refusal);
  free(s);
  c->src = NULL;
}

/* ---- the pump: emit, assign tables, fetch, end ------------------------------------------------------------ */
static void finish(pgsql_src *s) {
  s->phase = PH_END;
  if (s->refusal) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EINVAL, "%s", s->refusal);
    ferry_source_fail(s->ins, &e);
    ferry_error_clear(&e);
    s->failed = 1;
    return;
  }
  ferry_source_end(s->ins);
}

void pgsql_src_pump(pgsql_src *s) {
  if (s->failed || s->stopped || s->phase != PH_STREAM) return;
  for (int again = 1; again;) {
    again = 0;
    for (size_t i = 0; i < s->nw; i++) {
      sworker *w = &s->w[i];
      if (w->ready && s->demand > 0) {
        ferry_item *it = w->ready;
        w->ready = NULL;
        s->demand--;
        ferry_emit(s->ins, it);
        if (s->stopped || s->failed) return;
        if (w->final) {
          w->final = 0;
          pgsql_table_done(s, w->t);
          w->t = NULL;
          again = 1;
        }
      }
    }
    for (size_t i = 0; i < s->nw; i++) { /* free workers take the next ready table in order */
      sworker *w = &s->w[i];
      if (!w->conn_ready || w->t) continue;
      stable *best = NULL;
      for (size_t k = 0; k < s->nt; k++)
        if (s->t[k].state == T_READY && (!best || s->t[k].rank < best->rank)) best = &s->t[k];
      if (!best) break;
      best->state = T_ACTIVE;
      w->t = best;
    }
    size_t reserved = 0;
    for (size_t i = 0; i < s->nw; i++) reserved += s->w[i].fetching || s->w[i].ready;
    for (size_t i = 0; i < s->nw && reserved < s->demand; i++) {
      sworker *w = &s->w[i];
      if (!w->t || w->fetching || w->ready) continue;
      pgsql_start_fetch(w);
      if (s->failed) return;
      reserved++;
    }
  }
  for (size_t i = 0; i < s->nt; i++)
    if (s->t[i].state != T_DONE && s->t[i].state != T_REFUSED) return;
  for (size_t i = 0; i < s->nw; i++)
    if (s->w[i].t || s->w[i].ready || s->w[i].fetching) return;
  finish(s);
}

/* ---- workers: a connection in a transaction with the exported snapshot ------------------------------------- */
static void on_worker_begun(void *arg, int status, PGresult *res, const ferry_error *err) {
  sworker *w = arg;
  pgsql_src *s = w->s;
  if (s->stopped || s->failed) return;
  if (status) {
    pgsql_src_fail_q(s, "opening a reading connection in the snapshot", err);
    return;
  }
  w->conn_ready = 1;
  pgsql_src_pump(s);
}

void pgsql_start_workers(pgsql_src *s) {
  size_t active = 0;
  for (size_t i = 0; i < s->nt; i++) active += s->t[i].state != T_REFUSED;
  size_t n = s->c->connections > 0 ? (size_t)s->c->connections : ferry_instance_concurrency(s->ins);
  if (n < 1) n = 1;
  if (n > active) n = active ? active : 1;
  s->w = pgsql_xcalloc(n, sizeof(sworker));
  s->nw = n;
  ferry_buf begin = {0};
  ferry_buf_add(&begin, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT ");
  ferry_pg_add_literal(&begin, s->snapshot);
  ferry_buf_add(&begin, "; ");
  ferry_buf_add(&begin, s->sets);
  for (size_t i = 0; i < n; i++) {
    sworker *w = &s->w[i];
    w->s = s;
    if (i == 0) {
      w->pg = s->pg0; /* the exporting transaction reads too */
      w->conn_ready = 1;
      continue;
    }
    ferry_error e = FERRY_ERROR_INIT;
    w->pg = ferry_pg_new(s->ins, s->c->dsn, &e);
    if (!w->pg) {
      pgsql_src_fail_q(s, "connecting", &e);
      ferry_error_clear(&e);
      break;
    }
    if (ferry_pg_query(w->pg, begin.buf, 0, NULL, on_worker_begun, w) < 0) {
      pgsql_src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
      break;
    }
  }
  ferry_buf_free(&begin);
}

/* ---- ops --------------------------------------------------------------------------------------------------- */
static int src_start(ferry_instance *ins, ferry_error *err) {
  pgsql_ctx *c = ferry_instance_ctx(ins);
  pgsql_src *s = pgsql_xcalloc(1, sizeof *s);
  c->src = s;
  s->c = c;
  s->ins = ins;
  s->names = json_object();
  s->sets = pgsql_session_sets(c->timezone);
  s->pg0 = ferry_pg_new(ins, c->dsn, err);
  if (!s->pg0) {
    ferry_error_prefix(err, "pgsql source: option \"dsn\"");
    return err->code;
  }
  char *begin = ferry_asprintf("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; %s", s->sets);
  int rc = ferry_pg_query(s->pg0, begin, 0, NULL, pgsql_on_begun, s);
  free(begin);
  if (rc < 0) return ferry_error_set(err, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  return 0;
}

static void src_demand(ferry_instance *ins, size_t n) {
  pgsql_ctx *c = ferry_instance_ctx(ins);
  pgsql_src *s = c->src;
  if (!s) return;
  s->demand += n;
  pgsql_src_pump(s);
}

static void src_stop(ferry_instance *ins) {
  pgsql_ctx *c = ferry_instance_ctx(ins);
  pgsql_source_free(c);
}

const ferry_source_ops pgsql_source_ops = {
    .struct_size = sizeof(ferry_source_ops),
    .emits = FERRY_ITEM_RECORD,
    .start = src_start,
    .demand = src_demand,
    .stop = src_stop,
};
