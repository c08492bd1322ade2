/* sql source: tables as record items, read in one consistent read-only snapshot, in keyset batches.
 *
 * start: ferry_sql_begin(FERRY_SQL_SNAPSHOT) (MySQL/MariaDB: START TRANSACTION WITH CONSISTENT SNAPSHOT, READ
 *   ONLY; PostgreSQL: REPEATABLE READ READ ONLY), then in that transaction: the tables of the database, the
 *   forms of the app (app_form), the columns and primary keys of the selected tables.
 * streaming: one table after the other (by name) on the snapshot's one connection (MySQL cannot share a
 *   snapshot between connections): SELECT cols FROM t [WHERE (pk) > (last key)] ORDER BY pk LIMIT batch_rows.
 *   Each page is one item, in COPY text (binary values as \x hex); a page is fetched only for demand the core
 *   expressed, so one batch at most is held in memory. Items have the pgsql source's shape (docs/plugins/sql.md)
 *   plus "engine". Nothing is ever written to the source; the transaction is rolled back at the end.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "sql.h"

typedef struct stable {
  char *name;
  json_t *columns, *types, *keys;
  size_t ncols, nkeys;
  size_t *key_idx;
  char *select_sql, *order_by, *key_tuple;
  int64_t batches;
  int64_t limit;  /* LIMIT of the next page: batch_rows, less after a page cut by batch_bytes */
  char **cursor; /* key of the last row taken (nkeys strings), NULL at the start */
  json_t *after; /* selected tables it references (names), written before it */
} stable;

enum { PH_START, PH_STREAM, PH_END };

struct sqlp_src {
  sqlp_ctx *c;
  ferry_instance *ins;
  ferry_sql *db;
  ferry_sql_txn *txn;
  int phase, failed, stopped, fetching;
  size_t demand;
  json_t *all;      /* tables of the database: name -> true */
  json_t *sel;      /* selected: name -> true */
  json_t *cols;     /* name -> [[column, type], ...] */
  json_t *pkeys;    /* name -> [column, ...] */
  json_t *fkeys;    /* name -> {referenced table: true} */
  char *refusal;    /* foreign-key cycles: reported when the other tables are done */
  stable *t;
  size_t nt, cur;
  size_t nread;     /* the first nread tables of t are read (the others are refused) */
  ferry_buf buf;
  int64_t rows;
  int64_t received, asked; /* rows of the running page, its LIMIT */
  int cut;                 /* the page reached batch_bytes: its further rows wait for the next page */
  char **first, **last;
  ferry_item *ready;
  int ready_final;
};

static void src_fail(sqlp_src *s, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
static void src_fail(sqlp_src *s, int code, const char *fmt, ...) {
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

static void src_fail_q(sqlp_src *s, const char *doing, const ferry_error *err) {
  int code = err && err->code ? err->code : FERRY_EIO;
  if (code == FERRY_ETRANSIENT) code = FERRY_EIO; /* the snapshot is gone: the stage must run again */
  src_fail(s, code, "sql source: %s: %s%s%s%s", doing, err && err->message ? err->message : "failed",
           err && err->detail ? " (" : "", err && err->detail ? err->detail : "", err && err->detail ? ")" : "");
}

static void strv_free(char **v, size_t n) {
  if (!v) return;
  for (size_t i = 0; i < n; i++) free(v[i]);
  free(v);
}

void sqlp_source_free(sqlp_ctx *c) {
  sqlp_src *s = c->src;
  if (!s) return;
  s->stopped = 1;
  ferry_sql_close(s->db); /* rolls back the snapshot transaction */
  if (s->cur < s->nt) { /* a batch cut short by a failure or a stop */
    strv_free(s->first, s->t[s->cur].nkeys);
    strv_free(s->last, s->t[s->cur].nkeys);
  }
  for (size_t i = 0; i < s->nt; i++) {
    stable *t = &s->t[i];
    free(t->name);
    json_decref(t->columns);
    json_decref(t->types);
    json_decref(t->keys);
    free(t->key_idx);
    free(t->select_sql);
    free(t->order_by);
    free(t->key_tuple);
    strv_free(t->cursor, t->nkeys);
    json_decref(t->after);
  }
  free(s->t);
  json_decref(s->fkeys);
  free(s->refusal);
  json_decref(s->all);
  json_decref(s->sel);
  json_decref(s->cols);
  json_decref(s->pkeys);
  ferry_buf_free(&s->buf);
  ferry_item_free(s->ready);
  free(s);
  c->src = NULL;
}

/* ---- items ----------------------------------------------------------------------------------------------- */
static void key_text(ferry_buf *b, char **k, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i) ferry_buf_add(b, ",");
    for (const char *p = k[i]; *p; p++) {
      if (n > 1 && (*p == ',' || *p == '\\')) ferry_buf_add(b, "\\");
      ferry_buf_addn(b, p, 1);
    }
  }
}

static json_t *key_json(char **k, size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(a, json_string(k[i]));
  return a;
}

static ferry_item *make_item(sqlp_src *s, stable *t) {
  ferry_buf key = {0};
  ferry_buf_addf(&key, "%s:", t->name);
  if (s->rows > 0) {
    key_text(&key, s->first, t->nkeys);
    ferry_buf_add(&key, "..");
    key_text(&key, s->last, t->nkeys);
  } else {
    ferry_buf_add(&key, "(empty)");
  }
  if (key.len > 240) {
    uint64_t h = ferry_hash64(key.buf, key.len);
    key.len = 200;
    ferry_buf_addf(&key, "...#%016llx", (unsigned long long)h);
  }
  json_t *body = json_object();
  json_object_set_new(body, "table", json_string(t->name));
  json_object_set_new(body, "engine", json_string(sqlp_engine_name(ferry_sql_engine_of(s->db))));
  json_object_set(body, "columns", t->columns);
  json_object_set(body, "types", t->types);
  json_object_set(body, "key_columns", t->keys);
  json_object_set_new(body, "format", json_string("copy-text"));
  json_object_set_new(body, "row_count", json_integer(s->rows));
  json_object_set_new(body, "batch", json_integer(t->batches));
  if (s->rows > 0) {
    json_object_set_new(body, "first_key", key_json(s->first, t->nkeys));
    json_object_set_new(body, "last_key", key_json(s->last, t->nkeys));
  }
  json_object_set(body, "after", t->after);
  ferry_item *it = ferry_item_new(FERRY_ITEM_RECORD, key.buf, body);
  ferry_buf_free(&key);
  if (!it) abort();
  if (s->buf.len) {
    size_t n = s->buf.len;
    ferry_item_set_payload(it, ferry_buf_steal(&s->buf), n);
  }
  ferry_buf_free(&s->buf);
  strv_free(s->first, t->nkeys);
  s->first = NULL; /* s->last becomes the cursor */
  s->rows = 0;
  t->batches++;
  return it;
}

/* ---- fetching ------------------------------------------------------------------------------------------- */
static void pump(sqlp_src *s);

static int on_rows(void *arg, const ferry_sql_batch *b) {
  sqlp_src *s = arg;
  if (s->stopped || s->failed) return 1;
  stable *t = &s->t[s->cur];
  for (size_t r = 0; r < b->nrows; r++) {
    s->received++;
    if (s->cut) continue; /* read again by the next page (WHERE key > the last taken) */
    for (size_t c = 0; c < b->ncols; c++) {
      if (c) ferry_buf_add(&s->buf, "\t");
      sqlp_copy_escape(&s->buf, FERRY_SQL_CELL(b, r, c));
    }
    ferry_buf_add(&s->buf, "\n");
    char **k = sqlp_xcalloc(t->nkeys, sizeof(char *));
    for (size_t i = 0; i < t->nkeys; i++) {
      const ferry_sql_value *v = FERRY_SQL_CELL(b, r, t->key_idx[i]);
      k[i] = v->data ? ferry_strndup(v->data, v->len) : sqlp_xstrdup("");
    }
    if (!s->first) {
      s->first = k;
      k = sqlp_xcalloc(t->nkeys, sizeof(char *));
      for (size_t i = 0; i < t->nkeys; i++) k[i] = sqlp_xstrdup(s->first[i]);
    }
    strv_free(s->last, t->nkeys);
    s->last = k;
    s->rows++;
    if ((int64_t)s->buf.len >= s->c->batch_bytes) s->cut = 1;
  }
  return 0;
}

static void on_fetched(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  sqlp_src *s = arg;
  if (s->stopped || s->failed) return;
  s->fetching = 0;
  stable *t = &s->t[s->cur];
  if (status) {
    char *doing = ferry_asprintf("reading table %s", t->name);
    src_fail_q(s, doing, err);
    free(doing);
    return;
  }
  int exhausted = !s->cut && s->received < s->asked;
  /* a page cut by batch_bytes: ask for about as many rows next time (a quarter more), so that few rows are
   * read twice; the batches stay a function of the data alone */
  if (s->cut) t->limit = s->rows + s->rows / 4 + 1 < s->c->batch_rows ? s->rows + s->rows / 4 + 1 : s->c->batch_rows;
  else if (s->received >= s->asked && t->limit < s->c->batch_rows) /* the page was small: grow again */
    t->limit = t->limit * 2 < s->c->batch_rows ? t->limit * 2 : s->c->batch_rows;
  s->cut = 0;
  s->received = 0;
  if (s->rows > 0 || t->batches == 0) {
    char **last = s->last;
    s->ready = make_item(s, t);
    strv_free(t->cursor, t->nkeys);
    t->cursor = last;
    s->last = NULL;
  }
  s->ready_final = exhausted;
  if (exhausted && !s->ready) s->cur++;
  pump(s);
}

static void start_fetch(sqlp_src *s) {
  stable *t = &s->t[s->cur];
  ferry_buf q = {0};
  ferry_buf_add(&q, t->select_sql);
  ferry_sql_value *params = NULL;
  if (t->cursor) {
    ferry_buf_addf(&q, " WHERE %s > %s", t->key_tuple, t->nkeys > 1 ? "(" : "");
    params = sqlp_xcalloc(t->nkeys, sizeof *params);
    for (size_t i = 0; i < t->nkeys; i++) {
      ferry_buf_addf(&q, "%s$%zu", i ? ", " : "", i + 1);
      params[i].data = t->cursor[i];
      params[i].len = strlen(t->cursor[i]);
    }
    if (t->nkeys > 1) ferry_buf_add(&q, ")");
  }
  if (!t->limit) t->limit = s->c->batch_rows;
  s->asked = t->limit;
  s->received = 0;
  s->cut = 0;
  ferry_buf_addf(&q, " ORDER BY %s LIMIT %lld", t->order_by, (long long)s->asked);
  s->fetching = 1;
  int rc = ferry_sql_query(s->db, s->txn, q.buf, t->cursor ? t->nkeys : 0, params, on_rows, on_fetched, s);
  ferry_buf_free(&q);
  free(params);
  if (rc < 0) {
    s->fetching = 0;
    src_fail(s, FERRY_EINTERNAL, "sql source: cannot queue the read of table %s (code %d)", t->name, rc);
  }
}

static void on_ended(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)status, (void)info, (void)err;
  sqlp_src *s = arg;
  if (s->stopped || s->failed) return;
  if (s->refusal) { /* the other tables are copied; the stage fails with the cycle report */
    src_fail(s, FERRY_EINVAL, "%s", s->refusal);
    return;
  }
  ferry_source_end(s->ins);
}

static void pump(sqlp_src *s) {
  if (s->stopped || s->failed || s->phase != PH_STREAM) return;
  if (s->ready && s->demand > 0) {
    ferry_item *it = s->ready;
    s->ready = NULL;
    s->demand--;
    if (s->ready_final) s->cur++;
    ferry_emit(s->ins, it);
    if (s->stopped || s->failed) return;
  }
  if (s->ready || s->fetching) return;
  if (s->cur >= s->nread) {
    s->phase = PH_END;
    ferry_sql_txn *txn = s->txn;
    s->txn = NULL;
    if (ferry_sql_rollback(txn, on_ended, s) < 0) ferry_source_end(s->ins);
    return;
  }
  if (s->demand > 0) start_fetch(s);
}

/* ---- the catalogue phase --------------------------------------------------------------------------------- */
static int on_tables(void *arg, const ferry_sql_batch *b) {
  sqlp_src *s = arg;
  for (size_t r = 0; r < b->nrows; r++) {
    const ferry_sql_value *v = FERRY_SQL_CELL(b, r, 1);
    if (v->data) json_object_set_new(s->all, v->data, json_true());
  }
  return 0;
}

static int on_cols(void *arg, const ferry_sql_batch *b) {
  sqlp_src *s = arg;
  for (size_t r = 0; r < b->nrows; r++) {
    const char *tn = FERRY_SQL_CELL(b, r, 0)->data, *cn = FERRY_SQL_CELL(b, r, 1)->data;
    const char *ty = FERRY_SQL_CELL(b, r, 3)->data;
    if (!tn || !cn || !json_object_get(s->sel, tn)) continue;
    json_t *a = json_object_get(s->cols, tn);
    if (!a) json_object_set_new(s->cols, tn, a = json_array());
    json_array_append_new(a, json_pack("[ss]", cn, ty ? ty : "text"));
  }
  return 0;
}

static int on_pkeys(void *arg, const ferry_sql_batch *b) {
  sqlp_src *s = arg;
  for (size_t r = 0; r < b->nrows; r++) {
    const char *tn = FERRY_SQL_CELL(b, r, 0)->data, *cn = FERRY_SQL_CELL(b, r, 1)->data;
    if (!tn || !cn || !json_object_get(s->sel, tn)) continue;
    json_t *a = json_object_get(s->pkeys, tn);
    if (!a) json_object_set_new(s->pkeys, tn, a = json_array());
    json_array_append_new(a, json_string(cn));
  }
  return 0;
}

static int on_fkeys(void *arg, const ferry_sql_batch *b) {
  sqlp_src *s = arg;
  for (size_t r = 0; r < b->nrows; r++) {
    const char *tn = FERRY_SQL_CELL(b, r, 0)->data, *ref = FERRY_SQL_CELL(b, r, 4)->data;
    if (!tn || !ref || !json_object_get(s->sel, tn)) continue;
    if (!json_object_get(s->sel, ref)) {
      ferry_log_info(s->ins, "sql source: table %s refers to %s, which is not copied: the target must hold its rows",
                     tn, ref);
      continue;
    }
    json_t *o = json_object_get(s->fkeys, tn);
    if (!o) json_object_set_new(s->fkeys, tn, o = json_object());
    json_object_set_new(o, ref, json_true());
  }
  return 0;
}

static int on_forms(void *arg, const ferry_sql_batch *b) {
  sqlp_src *s = arg;
  for (size_t r = 0; r < b->nrows; r++) {
    const ferry_sql_value *fid = FERRY_SQL_CELL(b, r, 0), *tn = FERRY_SQL_CELL(b, r, 1);
    const char *base = tn->data && *tn->data ? tn->data : fid->data;
    if (!base) continue;
    char *name = ferry_asprintf("app_fd_%s", base);
    if (json_object_get(s->all, name)) {
      json_object_set_new(s->sel, name, json_true());
    } else { /* a case-insensitive server, or a table Joget has not created yet */
      const char *k;
      json_t *v;
      int found = 0;
      json_object_foreach(s->all, k, v) {
        if (!strcasecmp(k, name)) {
          json_object_set_new(s->sel, k, json_true());
          found = 1;
          break;
        }
      }
      if (!found) ferry_log_warn(s->ins, "sql source: app %s: form table %s does not exist yet: skipped", s->c->app, name);
    }
    free(name);
  }
  return 0;
}

static void step(sqlp_src *s, int next);

static void on_step(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  sqlp_src *s = arg;
  if (s->stopped || s->failed) return;
  static const char *what[] = {"", "listing the tables", "reading app_form", "reading the columns",
                               "reading the primary keys", "reading the foreign keys"};
  if (status) {
    src_fail_q(s, what[s->phase], err);
    return;
  }
  step(s, s->phase + 1);
}

/* The selection from the table list: names, patterns, users, minus exclude. */
static int select_tables(sqlp_src *s) {
  sqlp_ctx *c = s->c;
  const char *ep = ferry_sql_endpoint(s->db);
  for (char **p = c->tables; p && *p; p++) {
    if (!json_object_get(s->all, *p)) {
      src_fail(s, FERRY_ENOENT, "sql source: table \"%s\" (option \"tables\") does not exist in %s", *p, ep);
      return -1;
    }
    json_object_set_new(s->sel, *p, json_true());
  }
  for (char **p = c->patterns; p && *p; p++) {
    int n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(s->all, k, v) {
      if (sqlp_like(k, *p)) json_object_set_new(s->sel, k, json_true()), n++;
    }
    if (!n) {
      src_fail(s, FERRY_ENOENT, "sql source: pattern \"%s\" (option \"patterns\") matches no table in %s", *p, ep);
      return -1;
    }
  }
  if (c->users) {
    const char *k;
    json_t *v;
    json_object_foreach(s->all, k, v) {
      if (!strncmp(k, "dir_", 4)) json_object_set_new(s->sel, k, json_true());
    }
  }
  for (char **p = c->exclude; p && *p; p++) {
    const char *k;
    json_t *v;
    void *tmp;
    json_object_foreach_safe(s->sel, tmp, k, v) {
      if (sqlp_like(k, *p)) json_object_del(s->sel, k);
    }
  }
  return 0;
}

/* Parents first (Kahn's algorithm, ties by name). Tables on a foreign-key cycle, and those depending on
 * them, are left out and reported (the path of one cycle per start) once the others are copied. */
static void order_tables(sqlp_src *s) {
  size_t n = s->nt, done = 0;
  stable *out = sqlp_xcalloc(n, sizeof(stable));
  int *placed = sqlp_xcalloc(n, sizeof(int));
  for (size_t i = 0; i < n; i++) {
    json_t *deps = json_object_get(s->fkeys, s->t[i].name);
    s->t[i].after = json_array();
    const char *ref;
    json_t *v;
    json_object_foreach(deps, ref, v) json_array_append_new(s->t[i].after, json_string(ref));
  }
  for (int progress = 1; progress;) {
    progress = 0;
    for (size_t i = 0; i < n; i++) {
      if (placed[i]) continue;
      int ready = 1;
      size_t k;
      json_t *v;
      json_array_foreach(s->t[i].after, k, v) {
        for (size_t p = 0; p < n; p++)
          if (!strcmp(s->t[p].name, json_string_value(v)) && (!placed[p] || p == i)) ready = 0;
      }
      if (!ready) continue;
      placed[i] = 1;
      out[done++] = s->t[i];
      progress = 1;
      break; /* restart: the first ready table by name goes next */
    }
  }
  if (done < n) {
    ferry_buf msg = {0}, path = {0};
    /* one cycle: follow unplaced parents from the first unplaced table until a table repeats */
    size_t cur = 0;
    while (placed[cur]) cur++;
    json_t *seen = json_object();
    while (!json_object_get(seen, s->t[cur].name)) {
      json_object_set_new(seen, s->t[cur].name, json_true());
      size_t k, next = cur;
      json_t *v;
      json_array_foreach(s->t[cur].after, k, v) {
        for (size_t p = 0; p < n; p++)
          if (!placed[p] && !strcmp(s->t[p].name, json_string_value(v))) next = p;
      }
      cur = next;
    }
    const char *start = s->t[cur].name;
    ferry_buf_add(&path, start);
    do {
      size_t k, next = cur;
      json_t *v;
      json_array_foreach(s->t[cur].after, k, v) {
        for (size_t p = 0; p < n; p++)
          if (!placed[p] && !strcmp(s->t[p].name, json_string_value(v)) && json_object_get(seen, s->t[p].name))
            next = p;
      }
      cur = next;
      ferry_buf_addf(&path, " -> %s", s->t[cur].name);
    } while (strcmp(s->t[cur].name, start) && path.len < 2000);
    json_decref(seen);
    ferry_buf_addf(&msg, "sql source: foreign-key cycle %s: refused (with the tables depending on it):", path.buf);
    for (size_t i = 0; i < n; i++) {
      if (placed[i]) continue;
      ferry_buf_addf(&msg, " %s", s->t[i].name);
      out[done++] = s->t[i]; /* kept for freeing; never read */
    }
    ferry_buf_add(&msg, "; the other tables were copied");
    s->refusal = ferry_buf_steal(&msg);
    ferry_buf_free(&path);
    ferry_log_error(s->ins, "%s", s->refusal);
  }
  size_t keep = 0;
  for (size_t i = 0; i < n; i++) keep += placed[i];
  memcpy(s->t, out, n * sizeof(stable));
  s->nread = keep;
  free(out);
  free(placed);
}

static int cmp_name(const void *a, const void *b) { return strcmp(((const stable *)a)->name, ((const stable *)b)->name); }

static int build_tables(sqlp_src *s) {
  size_t n = json_object_size(s->sel);
  s->t = sqlp_xcalloc(n, sizeof(stable));
  const char *name;
  json_t *v;
  json_object_foreach(s->sel, name, v) {
    stable *t = &s->t[s->nt++];
    t->name = sqlp_xstrdup(name);
    json_t *cols = json_object_get(s->cols, name), *pk = json_object_get(s->pkeys, name);
    if (!pk || !json_array_size(pk)) {
      src_fail(s, FERRY_EINVAL,
               "sql source: table %s in %s has no primary key: batches are key ranges and the sink's conflict "
               "policy works by key; add one or leave the table out (option \"exclude\")",
               name, ferry_sql_endpoint(s->db));
      return -1;
    }
    t->columns = json_array();
    t->types = json_array();
    t->keys = json_deep_copy(pk);
    t->ncols = json_array_size(cols);
    t->nkeys = json_array_size(pk);
    t->key_idx = sqlp_xcalloc(t->nkeys, sizeof(size_t));
    ferry_buf sel = {0}, ord = {0}, tup = {0};
    ferry_buf_add(&sel, "SELECT ");
    size_t i;
    json_t *cv;
    json_array_foreach(cols, i, cv) {
      const char *cn = json_string_value(json_array_get(cv, 0));
      json_array_append(t->columns, json_array_get(cv, 0));
      json_array_append(t->types, json_array_get(cv, 1));
      char *q = ferry_sql_quote_ident(s->db, cn);
      ferry_buf_addf(&sel, "%s%s", i ? ", " : "", q);
      free(q);
    }
    for (size_t k = 0; k < t->nkeys; k++) {
      const char *kn = json_string_value(json_array_get(pk, k));
      json_array_foreach(t->columns, i, cv) if (!strcmp(json_string_value(cv), kn)) t->key_idx[k] = i;
      char *q = ferry_sql_quote_ident(s->db, kn);
      ferry_buf_addf(&ord, "%s%s", k ? ", " : "", q);
      free(q);
    }
    if (t->nkeys > 1) ferry_buf_addf(&tup, "(%s)", ord.buf);
    else ferry_buf_add(&tup, ord.buf);
    char *qt = ferry_sql_quote_ident(s->db, name);
    ferry_buf_addf(&sel, " FROM %s", qt);
    free(qt);
    t->select_sql = ferry_buf_steal(&sel);
    t->order_by = ferry_buf_steal(&ord);
    t->key_tuple = ferry_buf_steal(&tup);
  }
  qsort(s->t, s->nt, sizeof(stable), cmp_name);
  order_tables(s);
  return 0;
}

/* phases: 1 tables, 2 app_form, 3 columns, 4 primary keys, 5 foreign keys, then streaming */
static void step(sqlp_src *s, int next) {
  s->phase = next;
  int rc = 0;
  switch (next) {
    case 1:
      rc = ferry_sql_catalog(s->db, s->txn, FERRY_SQL_TABLES, NULL, on_tables, on_step, s);
      break;
    case 2: {
      if (select_tables(s) < 0) return;
      if (!s->c->app) {
        step(s, 3);
        return;
      }
      if (!json_object_get(s->all, "app_form")) {
        src_fail(s, FERRY_ENOENT, "sql source: option \"app\": %s has no table app_form (not a Joget database?)",
                 ferry_sql_endpoint(s->db));
        return;
      }
      const char *v = s->c->app_version;
      ferry_sql_value p[2] = {{s->c->app, strlen(s->c->app), 0}, {v, strlen(v), 0}};
      const char *q = !strcmp(v, "all") ? "SELECT formId, tableName FROM app_form WHERE appId = $1"
                      : !strcmp(v, "latest")
                          ? "SELECT formId, tableName FROM app_form WHERE appId = $1 AND appVersion = "
                            "(SELECT MAX(appVersion) FROM app_form WHERE appId = $1)"
                      : !strcmp(v, "published")
                          ? "SELECT formId, tableName FROM app_form WHERE appId = $1 AND appVersion IN "
                            "(SELECT appVersion FROM app_app WHERE appId = $1 AND published = 1)"
                          : "SELECT formId, tableName FROM app_form WHERE appId = $1 AND appVersion = $2";
      size_t np = strcmp(v, "all") && strcmp(v, "latest") && strcmp(v, "published") ? 2 : 1;
      rc = ferry_sql_query(s->db, s->txn, q, np, p, on_forms, on_step, s);
      break;
    }
    case 3:
      if (!json_object_size(s->sel)) {
        ferry_log_warn(s->ins, "sql source: nothing selected in %s", ferry_sql_endpoint(s->db));
      }
      rc = ferry_sql_catalog(s->db, s->txn, FERRY_SQL_COLUMNS, NULL, on_cols, on_step, s);
      break;
    case 4:
      rc = ferry_sql_catalog(s->db, s->txn, FERRY_SQL_PKEYS, NULL, on_pkeys, on_step, s);
      break;
    case 5:
      rc = ferry_sql_catalog(s->db, s->txn, FERRY_SQL_FKEYS, NULL, on_fkeys, on_step, s);
      break;
    default:
      if (build_tables(s) < 0) return;
      ferry_log_info(s->ins, "sql source: %zu table(s) from %s in one snapshot", s->nread, ferry_sql_endpoint(s->db));
      s->phase = PH_STREAM;
      pump(s);
      return;
  }
  if (rc < 0) src_fail(s, FERRY_EINTERNAL, "sql source: cannot queue a query (code %d)", rc);
}

static void on_begun(void *arg, int status, ferry_sql_txn *txn, const ferry_error *err) {
  sqlp_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) {
    src_fail_q(s, "opening the snapshot", err);
    return;
  }
  s->txn = txn;
  step(s, 1);
}

/* ---- ops ------------------------------------------------------------------------------------------------- */
static int src_start(ferry_instance *ins, ferry_error *err) {
  sqlp_ctx *c = ferry_instance_ctx(ins);
  sqlp_src *s = sqlp_xcalloc(1, sizeof *s);
  c->src = s;
  s->c = c;
  s->ins = ins;
  s->all = json_object();
  s->sel = json_object();
  s->cols = json_object();
  s->pkeys = json_object();
  s->fkeys = json_object();
  ferry_sql_opts o = {.struct_size = sizeof o, .max_connections = 1, .batch_rows = 1000};
  s->db = ferry_sql_open(ins, c->dsn, &o, err);
  if (!s->db) {
    ferry_error_prefix(err, "sql source: option \"dsn\"");
    return err->code;
  }
  if (ferry_sql_begin(s->db, FERRY_SQL_SNAPSHOT, NULL, on_begun, s) < 0)
    return ferry_error_set(err, FERRY_EINTERNAL, "sql source: cannot open the snapshot");
  return 0;
}

static void src_demand(ferry_instance *ins, size_t n) {
  sqlp_ctx *c = ferry_instance_ctx(ins);
  sqlp_src *s = c->src;
  if (!s) return;
  s->demand += n;
  pump(s);
}

static void src_stop(ferry_instance *ins) { sqlp_source_free(ferry_instance_ctx(ins)); }

const ferry_source_ops sqlp_source_ops = {
    .struct_size = sizeof(ferry_source_ops),
    .emits = FERRY_ITEM_RECORD,
    .start = src_start,
    .demand = src_demand,
    .stop = src_stop,
};
