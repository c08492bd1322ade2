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
 */
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
  pgsql_sb buf;
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

static void src_pump(pgsql_src *s);

/* ---- failing ---------------------------------------------------------------------------------------------- */
static void src_fail(pgsql_src *s, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
static void src_fail(pgsql_src *s, int code, const char *fmt, ...) {
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
static void src_fail_q(pgsql_src *s, const char *doing, const ferry_error *err) {
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
    pgsql_sb_free(&s->w[i].buf);
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

/* ---- batches ---------------------------------------------------------------------------------------------- */
/* The key values of one COPY line (nkeys strings, malloc'd). */
static char **line_key(const stable *t, const char *line, size_t len) {
  char **k = pgsql_xcalloc(t->nkeys, sizeof(char *));
  for (size_t i = 0; i < t->nkeys; i++) {
    if (!pgsql_copy_field(line, len, t->key_idx[i], &k[i]) || !k[i]) k[i] = pgsql_xstrdup("");
  }
  return k;
}

static size_t line_len(const char *buf, size_t off, size_t total) {
  const char *nl = memchr(buf + off, '\n', total - off);
  return nl ? (size_t)(nl - (buf + off)) : total - off;
}

/* "a" or "a,b" (',' and '\' escaped with '\' in composite keys) */
static void key_text(pgsql_sb *sb, char **k, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i) pgsql_sb_add(sb, ",");
    if (n == 1) {
      pgsql_sb_add(sb, k[i]);
      continue;
    }
    for (const char *p = k[i]; *p; p++) {
      if (*p == ',' || *p == '\\') pgsql_sb_add(sb, "\\");
      pgsql_sb_addn(sb, p, 1);
    }
  }
}

static json_t *key_json(char **k, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(k[i]));
  return a;
}

/* Builds the item of the worker's current batch (possibly the empty item of an empty table). */
static ferry_item *make_item(sworker *w) {
  pgsql_src *s = w->s;
  stable *t = w->t;
  pgsql_sb key = {0};
  pgsql_sb_add(&key, t->name);
  pgsql_sb_add(&key, ":");
  char **first = NULL, **last = NULL;
  if (w->rows > 0) {
    first = line_key(t, w->buf.buf, line_len(w->buf.buf, 0, w->buf.len));
    last = line_key(t, w->buf.buf + w->last_off, line_len(w->buf.buf, w->last_off, w->buf.len));
    key_text(&key, first, t->nkeys);
    pgsql_sb_add(&key, "..");
    key_text(&key, last, t->nkeys);
  } else {
    pgsql_sb_add(&key, "(empty)");
  }
  if (key.len > 240) { /* very long keys: a readable prefix and a hash of the whole */
    uint64_t h = pgsql_hash(key.buf, key.len);
    key.len = 200;
    pgsql_sb_addf(&key, "...#%016llx", (unsigned long long)h);
  }
  json_t *body = json_object();
  json_object_set_new(body, "table", json_string(t->name));
  json_object_set_new(body, "schema", json_string(s->c->schema));
  json_object_set(body, "columns", t->columns);
  json_object_set(body, "types", t->types);
  json_object_set(body, "key_columns", t->keys);
  json_object_set_new(body, "format", json_string("copy-text"));
  json_object_set_new(body, "row_count", json_integer(w->rows));
  json_object_set_new(body, "batch", json_integer(t->batches));
  if (first) {
    json_object_set_new(body, "first_key", key_json(first, t->nkeys));
    json_object_set_new(body, "last_key", key_json(last, t->nkeys));
  }
  json_object_set(body, "after", t->after);
  if (t->cyclic) json_object_set_new(body, "defer_constraints", json_true());
  pgsql_strv_free(first, t->nkeys);
  pgsql_strv_free(last, t->nkeys);
  ferry_item *it = ferry_item_new(FERRY_ITEM_RECORD, key.buf, body);
  pgsql_sb_free(&key);
  if (!it) abort();
  if (w->buf.len) {
    size_t n = w->buf.len;
    ferry_item_set_payload(it, pgsql_sb_steal(&w->buf), n);
  }
  pgsql_sb_free(&w->buf);
  w->rows = 0;
  w->last_off = 0;
  t->batches++;
  if (t->batches > t->est_batches) {
    s->total += t->batches - t->est_batches;
    t->est_batches = t->batches;
    if (strcmp(s->c->count, "none")) ferry_source_total(s->ins, s->total);
  }
  return it;
}

static void table_done(pgsql_src *s, stable *t) {
  t->state = T_DONE;
  if (t->est_batches != t->batches) {
    s->total += t->batches - t->est_batches;
    t->est_batches = t->batches;
    if (strcmp(s->c->count, "none")) ferry_source_total(s->ins, s->total);
  }
  ferry_log_debug(s->ins, "table %s: %lld batch(es), %lld row(s)", t->name, (long long)t->batches,
                  (long long)t->rows_seen);
  /* tables waiting for it may be ready now: every table they come after is done */
  for (size_t i = 0; i < s->nt; i++) {
    stable *u = &s->t[i];
    if (u->state != T_WAIT) continue;
    int ready = 1;
    for (size_t k = 0; k < s->nt && ready; k++) {
      stable *v = &s->t[k];
      if (v->scc != u->scc) continue; /* a component starts when all its outside parents are done */
      for (size_t p = 0; p < v->nparents; p++) {
        stable *par = &s->t[v->parents[p]];
        if (par->scc != u->scc && par->state != T_DONE) ready = 0;
      }
    }
    if (ready) u->state = T_READY;
  }
}

static void batch_complete(sworker *w, int exhausted) {
  stable *t = w->t;
  if (w->rows > 0 || t->batches == 0) w->ready = make_item(w);
  if (exhausted) {
    if (w->ready) {
      w->final = 1;
    } else {
      table_done(w->s, t);
      w->t = NULL;
    }
  }
}

static int on_chunk(void *arg, const char *data, size_t len) {
  sworker *w = arg;
  pgsql_src *s = w->s;
  if (s->stopped || s->failed) return 1;
  w->last_off = w->buf.len;
  pgsql_sb_addn(&w->buf, data, len);
  if (len == 0 || data[len - 1] != '\n') pgsql_sb_addn(&w->buf, "\n", 1);
  w->rows++;
  w->fetch_rows++;
  w->t->rows_seen++;
  w->t->bytes_seen += (int64_t)len;
  if (w->rows >= s->c->batch_rows || (int64_t)w->buf.len >= s->c->batch_bytes) {
    w->cut = 1;
    return 1; /* the batch is full: the service drops the rest of this fetch */
  }
  return 0;
}

static void start_fetch(sworker *w);

static void on_fetched(void *arg, int status, PGresult *res, const ferry_error *err) {
  sworker *w = arg;
  pgsql_src *s = w->s;
  if (s->stopped || s->failed) return;
  w->fetching = 0;
  stable *t = w->t;
  if (status && !(status == FERRY_ECANCELED && w->cut)) {
    char *doing = pgsql_xasprintf("reading table %s", t->name);
    src_fail_q(s, doing, err);
    free(doing);
    return;
  }
  if (w->fetch_rows > 0) { /* the next fetch starts after the last row taken */
    pgsql_strv_free(t->cursor, t->nkeys);
    t->cursor = line_key(t, w->buf.buf + w->last_off, line_len(w->buf.buf, w->last_off, w->buf.len));
  }
  if (w->cut) batch_complete(w, 0);
  else if (w->fetch_rows < w->fetch_limit) batch_complete(w, 1);
  else start_fetch(w); /* the batch is not full yet: fetch more rows for it */
  src_pump(s);
}

static void start_fetch(sworker *w) {
  pgsql_src *s = w->s;
  stable *t = w->t;
  int64_t want = s->c->batch_rows - w->rows;
  double avg = t->rows_seen > 0 ? (double)t->bytes_seen / (double)t->rows_seen
               : t->reltuples > 0 && t->size_bytes > 0 ? (double)t->size_bytes / (double)t->reltuples : 0;
  if (avg > 0) {
    double fit = (double)(s->c->batch_bytes - (int64_t)w->buf.len) / avg;
    int64_t n = (int64_t)ceil(fit * 1.05) + 1; /* a little more than what fits: the cut rule decides */
    if (n < want) want = n;
  } else if (want > 256) {
    want = 256; /* nothing known about the rows yet: a small first fetch */
  }
  if (want < 1) want = 1;
  pgsql_sb sql = {0};
  pgsql_sb_add(&sql, "COPY (SELECT ");
  pgsql_sb_add(&sql, t->select_cols);
  pgsql_sb_add(&sql, " FROM ");
  pgsql_sb_add(&sql, t->qname);
  if (t->cursor) {
    pgsql_sb_add(&sql, " WHERE ");
    pgsql_sb_add(&sql, t->key_tuple);
    pgsql_sb_add(&sql, t->nkeys > 1 ? " > (" : " > ");
    for (size_t i = 0; i < t->nkeys; i++) {
      if (i) pgsql_sb_add(&sql, ", ");
      pgsql_sb_literal(&sql, t->cursor[i]);
    }
    if (t->nkeys > 1) pgsql_sb_add(&sql, ")");
  }
  pgsql_sb_addf(&sql, " ORDER BY %s LIMIT %lld) TO STDOUT", t->order_by, (long long)want);
  w->fetching = 1;
  w->cut = 0;
  w->fetch_rows = 0;
  w->fetch_limit = want;
  int rc = ferry_pg_copy_out(w->pg, sql.buf, on_chunk, on_fetched, w);
  pgsql_sb_free(&sql);
  if (rc < 0) {
    w->fetching = 0;
    src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue the read of table %s (code %d)", t->name, rc);
  }
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

static void src_pump(pgsql_src *s) {
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
          table_done(s, w->t);
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
      start_fetch(w);
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
    src_fail_q(s, "opening a reading connection in the snapshot", err);
    return;
  }
  w->conn_ready = 1;
  src_pump(s);
}

static void start_workers(pgsql_src *s) {
  size_t active = 0;
  for (size_t i = 0; i < s->nt; i++) active += s->t[i].state != T_REFUSED;
  size_t n = s->c->connections > 0 ? (size_t)s->c->connections : ferry_instance_concurrency(s->ins);
  if (n < 1) n = 1;
  if (n > active) n = active ? active : 1;
  s->w = pgsql_xcalloc(n, sizeof(sworker));
  s->nw = n;
  pgsql_sb begin = {0};
  pgsql_sb_add(&begin, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SET TRANSACTION SNAPSHOT ");
  pgsql_sb_literal(&begin, s->snapshot);
  pgsql_sb_add(&begin, "; ");
  pgsql_sb_add(&begin, s->sets);
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
      src_fail_q(s, "connecting", &e);
      ferry_error_clear(&e);
      break;
    }
    if (ferry_pg_query(w->pg, begin.buf, 0, NULL, on_worker_begun, w) < 0) {
      src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
      break;
    }
  }
  pgsql_sb_free(&begin);
}

/* ---- order: components, cycles, ranks ----------------------------------------------------------------------- */
typedef struct tarjan {
  pgsql_src *s;
  int *index, *low, *onstack;
  size_t *stack;
  size_t sp;
  int counter, nscc;
} tarjan;

static void strongconnect(tarjan *tj, size_t v) {
  tj->index[v] = tj->low[v] = tj->counter++;
  tj->stack[tj->sp++] = v;
  tj->onstack[v] = 1;
  stable *t = &tj->s->t[v];
  for (size_t i = 0; i < t->nparents; i++) {
    size_t u = t->parents[i];
    if (tj->index[u] < 0) {
      strongconnect(tj, u);
      if (tj->low[u] < tj->low[v]) tj->low[v] = tj->low[u];
    } else if (tj->onstack[u] && tj->index[u] < tj->low[v]) {
      tj->low[v] = tj->index[u];
    }
  }
  if (tj->low[v] == tj->index[v]) {
    size_t u;
    do {
      u = tj->stack[--tj->sp];
      tj->onstack[u] = 0;
      tj->s->t[u].scc = tj->nscc;
    } while (u != v);
    tj->nscc++;
  }
}

/* A cycle inside component `scc` starting at table `start`, as "a -> b -> a" (depth-first search). */
static int cycle_path(pgsql_src *s, size_t v, size_t start, int *seen, size_t *path, size_t depth,
                      pgsql_sb *out) {
  path[depth] = v;
  seen[v] = 1;
  stable *t = &s->t[v];
  for (size_t i = 0; i < t->nparents; i++) {
    size_t u = t->parents[i];
    if (s->t[u].scc != t->scc) continue;
    if (u == start) {
      for (size_t k = 0; k <= depth; k++) pgsql_sb_addf(out, "%s -> ", s->t[path[k]].name);
      pgsql_sb_add(out, s->t[start].name);
      return 1;
    }
    if (!seen[u] && cycle_path(s, u, start, seen, path, depth + 1, out)) return 1;
  }
  return 0;
}

static void order_tables(pgsql_src *s) {
  size_t n = s->nt;
  tarjan tj = {.s = s};
  tj.index = pgsql_xmalloc(n * sizeof(int));
  tj.low = pgsql_xmalloc(n * sizeof(int));
  tj.onstack = pgsql_xcalloc(n, sizeof(int));
  tj.stack = pgsql_xmalloc(n * sizeof(size_t));
  for (size_t i = 0; i < n; i++) tj.index[i] = -1;
  for (size_t i = 0; i < n; i++)
    if (tj.index[i] < 0) strongconnect(&tj, i);
  /* cyclic components */
  size_t *members = pgsql_xcalloc((size_t)tj.nscc, sizeof(size_t));
  for (size_t i = 0; i < n; i++) members[s->t[i].scc]++;
  for (size_t i = 0; i < n; i++) s->t[i].cyclic = members[s->t[i].scc] > 1 || s->t[i].self_ref;
  pgsql_sb report = {0};
  int *seen = pgsql_xcalloc(n, sizeof(int));
  size_t *path = pgsql_xmalloc(n * sizeof(size_t));
  int *reported = pgsql_xcalloc((size_t)tj.nscc, sizeof(int));
  for (size_t i = 0; i < n; i++) {
    stable *t = &s->t[i];
    if (!t->cyclic || reported[t->scc]) continue;
    reported[t->scc] = 1;
    memset(seen, 0, n * sizeof(int));
    pgsql_sb cyc = {0};
    if (members[t->scc] == 1) pgsql_sb_addf(&cyc, "%s -> %s", t->name, t->name); /* refers to itself */
    else cycle_path(s, i, i, seen, path, 0, &cyc);
    if (s->c->defer_constraints) {
      ferry_log_warn(s->ins,
                     "tables form a foreign-key cycle: %s; copying them with the target's foreign-key "
                     "triggers off for their batches (defer_constraints)", cyc.buf ? cyc.buf : t->name);
    } else {
      pgsql_sb_addf(&report, "%s%s", report.len ? "; " : "", cyc.buf ? cyc.buf : t->name);
    }
    pgsql_sb_free(&cyc);
  }
  if (report.len) {
    /* refuse the cycles' tables and every table that depends on one of them */
    for (size_t i = 0; i < n; i++)
      if (s->t[i].cyclic) s->t[i].state = T_REFUSED;
    pgsql_sb deps = {0};
    for (int changed = 1; changed;) {
      changed = 0;
      for (size_t i = 0; i < n; i++) {
        stable *t = &s->t[i];
        if (t->state == T_REFUSED) continue;
        for (size_t p = 0; p < t->nparents; p++) {
          if (s->t[t->parents[p]].state == T_REFUSED) {
            t->state = T_REFUSED;
            pgsql_sb_addf(&deps, "%s%s", deps.len ? ", " : "", t->name);
            changed = 1;
            break;
          }
        }
      }
    }
    pgsql_sb msg = {0};
    pgsql_sb_addf(&msg, "pgsql source: tables form a foreign-key cycle, so no order puts parents first: %s. "
                        "Refused: the tables of the cycle", report.buf);
    if (deps.len) pgsql_sb_addf(&msg, " and the tables depending on them (%s)", deps.buf);
    pgsql_sb_add(&msg, "; the other tables were copied. Leave them out (option \"exclude\"), or set "
                       "\"defer_constraints\": true to copy them with the target's foreign-key checks off");
    s->refusal = pgsql_sb_steal(&msg);
    pgsql_sb_free(&deps);
    ferry_log_error(s->ins, "%s", s->refusal);
  }
  pgsql_sb_free(&report);
  /* ranks: components in topological order (parents first), ties by name (tables are sorted by name) */
  size_t rank = 0;
  int *placed = pgsql_xcalloc((size_t)tj.nscc, sizeof(int));
  for (int progress = 1; progress;) {
    progress = 0;
    for (size_t i = 0; i < n; i++) {
      stable *t = &s->t[i];
      if (placed[t->scc]) continue;
      int ok = 1;
      for (size_t k = 0; k < n && ok; k++) {
        if (s->t[k].scc != t->scc) continue;
        for (size_t p = 0; p < s->t[k].nparents; p++) {
          stable *par = &s->t[s->t[k].parents[p]];
          if (par->scc != t->scc && !placed[par->scc]) ok = 0;
        }
      }
      if (!ok) continue;
      placed[t->scc] = 1;
      for (size_t k = 0; k < n; k++)
        if (s->t[k].scc == t->scc) s->t[k].rank = rank++;
      progress = 1;
      break; /* lowest name first among the components that can go now */
    }
  }
  /* "after" and the initial states */
  for (size_t i = 0; i < n; i++) {
    stable *t = &s->t[i];
    t->after = json_array();
    int ready = 1;
    for (size_t p = 0; p < t->nparents; p++) {
      stable *par = &s->t[t->parents[p]];
      if (par->scc == t->scc) continue;
      json_array_append_new(t->after, json_string(par->name));
    }
    for (size_t k = 0; k < n; k++) {
      if (s->t[k].scc != t->scc) continue;
      for (size_t p = 0; p < s->t[k].nparents; p++)
        if (s->t[s->t[k].parents[p]].scc != t->scc) ready = 0;
    }
    if (t->state != T_REFUSED) t->state = ready ? T_READY : T_WAIT;
  }
  free(placed);
  free(reported);
  free(path);
  free(seen);
  free(members);
  free(tj.index);
  free(tj.low);
  free(tj.onstack);
  free(tj.stack);
}

/* ---- catalog phase ----------------------------------------------------------------------------------------- */
static stable *table_by_oid(pgsql_src *s, const char *oid) {
  for (size_t i = 0; i < s->nt; i++)
    if (!strcmp(s->t[i].oid, oid)) return &s->t[i];
  return NULL;
}

static char *oid_array(pgsql_src *s) {
  pgsql_sb sb = {0};
  pgsql_sb_add(&sb, "{");
  for (size_t i = 0; i < s->nt; i++) pgsql_sb_addf(&sb, "%s%s", i ? "," : "", s->t[i].oid);
  pgsql_sb_add(&sb, "}");
  return pgsql_sb_steal(&sb);
}

static void begin_stream(pgsql_src *s) {
  int64_t total = 0;
  for (size_t i = 0; i < s->nt; i++) {
    stable *t = &s->t[i];
    if (t->state == T_REFUSED) continue;
    int64_t rows = t->count >= 0 ? t->count : t->reltuples;
    if (rows < 0) {
      t->est_batches = 0;
      continue;
    }
    double avg = t->reltuples > 0 && t->size_bytes > 0 ? (double)t->size_bytes / (double)t->reltuples : 0;
    int64_t b = (rows + s->c->batch_rows - 1) / s->c->batch_rows;
    int64_t bb = avg > 0 ? (int64_t)ceil((double)rows * avg / (double)s->c->batch_bytes) : 0;
    t->est_batches = b > bb ? b : bb;
    if (t->est_batches < 1) t->est_batches = 1;
    total += t->est_batches;
  }
  s->total = total;
  if (strcmp(s->c->count, "none")) ferry_source_total(s->ins, total);
  size_t copying = 0;
  for (size_t i = 0; i < s->nt; i++) copying += s->t[i].state != T_REFUSED;
  ferry_log_info(s->ins, "%zu table(s) selected, %zu to copy in foreign-key order, about %lld batch(es)",
                 s->nt, copying, (long long)total);
  s->phase = PH_STREAM;
  start_workers(s);
  src_pump(s);
}

static void on_counts(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return src_fail_q(s, "counting rows", err);
  int col = 0;
  for (size_t i = 0; i < s->nt; i++) {
    stable *t = &s->t[i];
    if (t->count == -2) t->count = atoll(PQgetvalue(res, 0, col++));
  }
  begin_stream(s);
}

static void count_rows(pgsql_src *s) {
  int exact = !strcmp(s->c->count, "exact"), none = !strcmp(s->c->count, "none");
  pgsql_sb sql = {0};
  for (size_t i = 0; i < s->nt; i++) {
    stable *t = &s->t[i];
    t->count = -1;
    if (none || t->state == T_REFUSED || (!exact && t->reltuples >= 0)) continue;
    t->count = -2; /* to be counted */
    pgsql_sb_addf(&sql, "%s(SELECT count(*) FROM %s)", sql.len ? ", " : "SELECT ", t->qname);
  }
  if (!sql.len) {
    begin_stream(s);
    return;
  }
  if (ferry_pg_query(s->pg0, sql.buf, 0, NULL, on_counts, s) < 0)
    src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  pgsql_sb_free(&sql);
}

static void on_fkeys(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return src_fail_q(s, "reading foreign keys", err);
  for (int r = 0; r < PQntuples(res); r++) {
    stable *child = table_by_oid(s, PQgetvalue(res, r, 0));
    stable *parent = table_by_oid(s, PQgetvalue(res, r, 1));
    if (!child) continue;
    if (!parent) {
      ferry_log_info(s->ins,
                     "table %s references %s (constraint %s), which is not selected: the target must already "
                     "hold the rows it refers to", child->name, PQgetvalue(res, r, 3), PQgetvalue(res, r, 2));
      continue;
    }
    if (child == parent) {
      child->self_ref = 1;
      continue;
    }
    size_t pi = (size_t)(parent - s->t);
    int dup = 0;
    for (size_t k = 0; k < child->nparents; k++) dup |= child->parents[k] == pi;
    if (dup) continue;
    child->parents = pgsql_xrealloc(child->parents, (child->nparents + 1) * sizeof(size_t));
    child->parents[child->nparents++] = pi;
  }
  order_tables(s);
  count_rows(s);
}

static void on_pkeys(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return src_fail_q(s, "reading primary keys", err);
  for (size_t i = 0; i < s->nt; i++) s->t[i].keys = json_array();
  for (int r = 0; r < PQntuples(res); r++) {
    stable *t = table_by_oid(s, PQgetvalue(res, r, 0));
    if (t) json_array_append_new(t->keys, json_string(PQgetvalue(res, r, 1)));
  }
  pgsql_sb nokey = {0};
  for (size_t i = 0; i < s->nt; i++) {
    stable *t = &s->t[i];
    t->nkeys = json_array_size(t->keys);
    if (!t->nkeys) {
      pgsql_sb_addf(&nokey, "%s%s", nokey.len ? ", " : "", t->name);
      continue;
    }
    t->key_idx = pgsql_xcalloc(t->nkeys, sizeof(size_t));
    pgsql_sb ob = {0}, kt = {0};
    for (size_t k = 0; k < t->nkeys; k++) {
      const char *kn = json_string_value(json_array_get(t->keys, k));
      for (size_t ci = 0; ci < t->ncols; ci++)
        if (!strcmp(kn, json_string_value(json_array_get(t->columns, ci)))) t->key_idx[k] = ci;
      if (k) {
        pgsql_sb_add(&ob, ", ");
        pgsql_sb_add(&kt, ", ");
      }
      pgsql_sb_ident(&ob, kn);
      pgsql_sb_ident(&kt, kn);
    }
    t->order_by = pgsql_sb_steal(&ob);
    t->key_tuple = t->nkeys > 1 ? pgsql_xasprintf("(%s)", kt.buf) : pgsql_sb_steal(&kt);
    pgsql_sb_free(&kt);
  }
  if (nokey.len) {
    src_fail(s, FERRY_EINVAL,
             "pgsql source: table(s) without a primary key: %s. ferry reads and writes tables in key order and "
             "needs the key to copy again safely; leave them out (option \"exclude\") or give them a key",
             nokey.buf);
    pgsql_sb_free(&nokey);
    return;
  }
  char *oids = oid_array(s);
  const char *p[] = {oids};
  if (ferry_pg_query(s->pg0,
                     "SELECT conrelid::text, confrelid::text, conname, confrelid::regclass::text "
                     "FROM pg_catalog.pg_constraint WHERE contype = 'f' AND conrelid = ANY($1::oid[]) "
                     "ORDER BY conrelid, conname",
                     1, p, on_fkeys, s) < 0)
    src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  free(oids);
}

static void on_columns(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return src_fail_q(s, "reading columns", err);
  for (size_t i = 0; i < s->nt; i++) {
    s->t[i].columns = json_array();
    s->t[i].types = json_array();
  }
  for (int r = 0; r < PQntuples(res); r++) {
    stable *t = table_by_oid(s, PQgetvalue(res, r, 0));
    if (!t) continue;
    json_array_append_new(t->columns, json_string(PQgetvalue(res, r, 1)));
    json_array_append_new(t->types, json_string(PQgetvalue(res, r, 2)));
  }
  for (size_t i = 0; i < s->nt; i++) {
    stable *t = &s->t[i];
    t->ncols = json_array_size(t->columns);
    pgsql_sb sc = {0};
    for (size_t k = 0; k < t->ncols; k++) {
      if (k) pgsql_sb_add(&sc, ", ");
      pgsql_sb_ident(&sc, json_string_value(json_array_get(t->columns, k)));
    }
    t->select_cols = pgsql_sb_steal(&sc);
  }
  char *oids = oid_array(s);
  const char *p[] = {oids};
  if (ferry_pg_query(s->pg0,
                     "SELECT i.indrelid::text, a.attname FROM pg_catalog.pg_index i "
                     "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
                     "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                     "WHERE i.indisprimary AND i.indrelid = ANY($1::oid[]) ORDER BY i.indrelid, k.ord",
                     1, p, on_pkeys, s) < 0)
    src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  free(oids);
}

static void on_tables(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return src_fail_q(s, "reading the selected tables", err);
  int n = PQntuples(res);
  if (n == 0) {
    src_fail(s, FERRY_EINVAL, "pgsql source: nothing to copy: every selected table is left out by \"exclude\"");
    return;
  }
  s->t = pgsql_xcalloc((size_t)n, sizeof(stable));
  s->nt = (size_t)n;
  for (int r = 0; r < n; r++) {
    stable *t = &s->t[r];
    t->oid = pgsql_xstrdup(PQgetvalue(res, r, 0));
    t->name = pgsql_xstrdup(PQgetvalue(res, r, 1));
    t->qname = pgsql_qname(s->c->schema, t->name);
    t->reltuples = atoll(PQgetvalue(res, r, 2));
    t->size_bytes = atoll(PQgetvalue(res, r, 3));
    t->count = -1;
  }
  char *oids = oid_array(s);
  const char *p[] = {oids};
  if (ferry_pg_query(s->pg0,
                     "SELECT a.attrelid::text, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) "
                     "FROM pg_catalog.pg_attribute a WHERE a.attrelid = ANY($1::oid[]) AND a.attnum > 0 "
                     "AND NOT a.attisdropped AND a.attgenerated = '' ORDER BY a.attrelid, a.attnum",
                     1, p, on_columns, s) < 0)
    src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  free(oids);
}

static void read_tables(pgsql_src *s) {
  if (json_object_size(s->names) == 0) {
    src_fail(s, FERRY_EINVAL, "pgsql source: the selection matches no table in schema %s", s->c->schema);
    return;
  }
  pgsql_sb names = {0}, excl = {0};
  pgsql_sb_add(&names, "{");
  const char *k;
  json_t *v;
  int first = 1;
  json_object_foreach(s->names, k, v) {
    pgsql_sb_array_elem(&names, k, first);
    first = 0;
  }
  pgsql_sb_add(&names, "}");
  pgsql_sb_add(&excl, "{");
  for (size_t i = 0; s->c->exclude && s->c->exclude[i]; i++) pgsql_sb_array_elem(&excl, s->c->exclude[i], i == 0);
  pgsql_sb_add(&excl, "}");
  const char *p[] = {s->c->schema, names.buf, excl.buf};
  if (ferry_pg_query(s->pg0,
                     "SELECT c.oid::text, c.relname, c.reltuples::bigint, pg_catalog.pg_table_size(c.oid) "
                     "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                     "WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind IN ('r', 'p') "
                     "AND NOT c.relispartition AND NOT (c.relname LIKE ANY($3::text[])) ORDER BY c.relname",
                     3, p, on_tables, s) < 0)
    src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  pgsql_sb_free(&names);
  pgsql_sb_free(&excl);
}

/* Selection steps, in this order: tables, patterns, users, app. Each adds names to s->names. */
enum { SEL_TABLES, SEL_PATTERNS, SEL_USERS, SEL_APP, SEL_DONE };
static void select_step(pgsql_src *s, int step);

typedef struct selq {
  pgsql_src *s;
  int step;
} selq;

static void on_select(void *arg, int status, PGresult *res, const ferry_error *err) {
  selq *q = arg;
  pgsql_src *s = q->s;
  int step = q->step;
  free(q);
  if (s->stopped || s->failed) return;
  pgsql_ctx *c = s->c;
  if (status) {
    char *doing = step == SEL_APP ? pgsql_xasprintf("selecting the form tables of app \"%s\" from %s.app_form "
                                                    "(is this a Joget database?)", c->app, c->schema)
                                  : pgsql_xstrdup("selecting tables");
    src_fail_q(s, doing, err);
    free(doing);
    return;
  }
  pgsql_sb missing = {0};
  int found = 0;
  for (int r = 0; r < PQntuples(res); r++) {
    const char *what = PQgetvalue(res, r, 0);
    if (PQgetisnull(res, r, 1)) {
      pgsql_sb_addf(&missing, "%s\"%s\"", missing.len ? ", " : "", what);
      continue;
    }
    found++;
    json_object_set_new(s->names, PQgetvalue(res, r, 1), json_true());
  }
  if (missing.len) {
    switch (step) {
      case SEL_TABLES:
        src_fail(s, FERRY_EINVAL, "pgsql source: table(s) %s not found in schema \"%s\" of the source "
                 "(names are exact and case-sensitive)", missing.buf, c->schema);
        break;
      case SEL_PATTERNS:
        src_fail(s, FERRY_EINVAL, "pgsql source: pattern(s) %s match no table in schema \"%s\"", missing.buf,
                 c->schema);
        break;
      case SEL_APP:
        ferry_log_warn(s->ins, "app \"%s\": form table(s) %s do not exist on the source (Joget creates a form "
                       "table when the form is first used): nothing to copy for them", c->app, missing.buf);
        break;
      default:
        break;
    }
  }
  pgsql_sb_free(&missing);
  if (s->failed) return;
  if (step == SEL_USERS && !found) {
    src_fail(s, FERRY_EINVAL, "pgsql source: \"users\": no dir_* table in schema \"%s\" (is this a Joget "
             "database?)", c->schema);
    return;
  }
  if (step == SEL_APP && !found && PQntuples(res) == 0) {
    src_fail(s, FERRY_EINVAL, "pgsql source: app \"%s\" (version %s) has no forms in %s.app_form", c->app,
             c->app_version, c->schema);
    return;
  }
  select_step(s, step + 1);
}

static void select_step(pgsql_src *s, int step) {
  pgsql_ctx *c = s->c;
  for (; step < SEL_DONE; step++) {
    if (step == SEL_TABLES && c->tables) break;
    if (step == SEL_PATTERNS && c->patterns) break;
    if (step == SEL_USERS && c->users) break;
    if (step == SEL_APP && c->app) break;
  }
  if (step == SEL_DONE) {
    read_tables(s);
    return;
  }
  static const char rel_join[] =
      "LEFT JOIN (pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace) ON "
      "n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition AND ";
  pgsql_sb sql = {0};
  char *arr = NULL, *appq = NULL;
  const char *p[3] = {c->schema, NULL, NULL};
  int np = 2;
  switch (step) {
    case SEL_TABLES:
      {
        size_t n = 0;
        while (c->tables[n]) n++;
        arr = pgsql_text_array((const char *const *)c->tables, n);
      }
      pgsql_sb_addf(&sql, "SELECT x.name, c.relname FROM unnest($2::text[]) AS x(name) %s c.relname = x.name "
                          "ORDER BY 1", rel_join);
      break;
    case SEL_PATTERNS: {
      size_t n = 0;
      while (c->patterns[n]) n++;
      arr = pgsql_text_array((const char *const *)c->patterns, n);
      pgsql_sb_addf(&sql, "SELECT x.pat, c.relname FROM unnest($2::text[]) AS x(pat) %s c.relname LIKE x.pat "
                          "ORDER BY 1, 2", rel_join);
      break;
    }
    case SEL_USERS:
      arr = pgsql_xstrdup("{\"dir\\\\_%\"}");
      pgsql_sb_addf(&sql, "SELECT x.pat, c.relname FROM unnest($2::text[]) AS x(pat) %s c.relname LIKE x.pat "
                          "ORDER BY 1, 2", rel_join);
      break;
    case SEL_APP: {
      appq = pgsql_qname(c->schema, "app_form");
      char *appapp = pgsql_qname(c->schema, "app_app");
      const char *v = c->app_version;
      char *cond;
      if (!strcmp(v, "all")) {
        cond = pgsql_xstrdup("TRUE");
      } else if (!strcmp(v, "latest")) {
        cond = pgsql_xasprintf("f.appversion = (SELECT max(g.appversion) FROM %s g WHERE g.appid = $2)", appq);
      } else if (!strcmp(v, "published")) {
        cond = pgsql_xasprintf("f.appversion IN (SELECT a.appversion FROM %s a WHERE a.appid = $2 AND "
                               "a.published)", appapp);
      } else {
        cond = pgsql_xstrdup("f.appversion = $3::bigint");
        p[2] = v;
        np = 3;
      }
      arr = pgsql_xstrdup(c->app);
      pgsql_sb_addf(&sql,
                    "SELECT x.n, c.relname FROM (SELECT DISTINCT 'app_fd_' || COALESCE(NULLIF(f.tablename, ''), "
                    "f.formid) AS n FROM %s f WHERE f.appid = $2 AND %s) AS x %s c.relname IN (x.n, lower(x.n)) "
                    "ORDER BY 1, 2", appq, cond, rel_join);
      free(cond);
      free(appapp);
      break;
    }
  }
  p[1] = arr;
  selq *q = pgsql_xcalloc(1, sizeof *q);
  q->s = s;
  q->step = step;
  if (ferry_pg_query(s->pg0, sql.buf, np, p, on_select, q) < 0) {
    free(q);
    src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  }
  free(arr);
  free(appq);
  pgsql_sb_free(&sql);
}

static void on_snapshot(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return src_fail_q(s, "exporting the read snapshot", err);
  s->snapshot = pgsql_xstrdup(PQgetvalue(res, 0, 0));
  ferry_log_debug(s->ins, "reading in snapshot %s", s->snapshot);
  select_step(s, SEL_TABLES);
}

static void on_begun(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return src_fail_q(s, "opening the read-only snapshot", err);
  if (ferry_pg_query(s->pg0, "SELECT pg_catalog.pg_export_snapshot()", 0, NULL, on_snapshot, s) < 0)
    src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
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
  char *begin = pgsql_xasprintf("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; %s", s->sets);
  int rc = ferry_pg_query(s->pg0, begin, 0, NULL, on_begun, s);
  free(begin);
  if (rc < 0) return ferry_error_set(err, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  return 0;
}

static void src_demand(ferry_instance *ins, size_t n) {
  pgsql_ctx *c = ferry_instance_ctx(ins);
  pgsql_src *s = c->src;
  if (!s) return;
  s->demand += n;
  src_pump(s);
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
