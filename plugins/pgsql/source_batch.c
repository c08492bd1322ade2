/* pgsql source: batches: one COPY of a keyset page per fetch, split into items by batch_rows and
 * batch_bytes; the end of a table. */
#include "source.h"

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
static void key_text(ferry_buf *sb, char **k, size_t n) {
  for (size_t i = 0; i < n; i++) {
    if (i) ferry_buf_add(sb, ",");
    if (n == 1) {
      ferry_buf_add(sb, k[i]);
      continue;
    }
    for (const char *p = k[i]; *p; p++) {
      if (*p == ',' || *p == '\\') ferry_buf_add(sb, "\\");
      ferry_buf_addn(sb, p, 1);
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
  ferry_buf key = {0};
  ferry_buf_add(&key, t->name);
  ferry_buf_add(&key, ":");
  char **first = NULL, **last = NULL;
  if (w->rows > 0) {
    first = line_key(t, w->buf.buf, line_len(w->buf.buf, 0, w->buf.len));
    last = line_key(t, w->buf.buf + w->last_off, line_len(w->buf.buf, w->last_off, w->buf.len));
    key_text(&key, first, t->nkeys);
    ferry_buf_add(&key, "..");
    key_text(&key, last, t->nkeys);
  } else {
    ferry_buf_add(&key, "(empty)");
  }
  if (key.len > 240) { /* very long keys: a readable prefix and a hash of the whole */
    uint64_t h = ferry_hash64(key.buf, key.len);
    key.len = 200;
    ferry_buf_addf(&key, "...#%016llx", (unsigned long long)h);
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
  ferry_buf_free(&key);
  if (!it) abort();
  if (w->buf.len) {
    size_t n = w->buf.len;
    ferry_item_set_payload(it, ferry_buf_steal(&w->buf), n);
  }
  ferry_buf_free(&w->buf);
  w->rows = 0;
  w->last_off = 0;
  t->batches++;
  if (t->batches > t->est_batches) {
    s->total += t->batches - t->est_batches;
    t->est_batches = t->batches;
    if (s->c->count != PGSQL_COUNT_NONE) ferry_source_total(s->ins, s->total);
  }
  return it;
}

void pgsql_table_done(pgsql_src *s, stable *t) {
  t->state = T_DONE;
  if (t->est_batches != t->batches) {
    s->total += t->batches - t->est_batches;
    t->est_batches = t->batches;
    if (s->c->count != PGSQL_COUNT_NONE) ferry_source_total(s->ins, s->total);
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
      pgsql_table_done(w->s, t);
      w->t = NULL;
    }
  }
}

static int on_chunk(void *arg, const char *data, size_t len) {
  sworker *w = arg;
  pgsql_src *s = w->s;
  if (s->stopped || s->failed) return 1;
  w->last_off = w->buf.len;
  ferry_buf_addn(&w->buf, data, len);
  if (len == 0 || data[len - 1] != '\n') ferry_buf_addn(&w->buf, "\n", 1);
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

static void on_fetched(void *arg, int status, PGresult *res, const ferry_error *err) {
  sworker *w = arg;
  pgsql_src *s = w->s;
  if (s->stopped || s->failed) return;
  w->fetching = 0;
  stable *t = w->t;
  if (status && !(status == FERRY_ECANCELED && w->cut)) {
    char *doing = ferry_asprintf("reading table %s", t->name);
    pgsql_src_fail_q(s, doing, err);
    free(doing);
    return;
  }
  if (w->fetch_rows > 0) { /* the next fetch starts after the last row taken */
    pgsql_strv_free(t->cursor, t->nkeys);
    t->cursor = line_key(t, w->buf.buf + w->last_off, line_len(w->buf.buf, w->last_off, w->buf.len));
  }
  if (w->cut) batch_complete(w, 0);
  else if (w->fetch_rows < w->fetch_limit) batch_complete(w, 1);
  else pgsql_start_fetch(w); /* the batch is not full yet: fetch more rows for it */
  pgsql_src_pump(s);
}

void pgsql_start_fetch(sworker *w) {
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
  ferry_buf sql = {0};
  ferry_buf_add(&sql, "COPY (SELECT ");
  ferry_buf_add(&sql, t->select_cols);
  ferry_buf_add(&sql, " FROM ");
  ferry_buf_add(&sql, t->qname);
  if (t->cursor) {
    ferry_buf_add(&sql, " WHERE ");
    ferry_buf_add(&sql, t->key_tuple);
    ferry_buf_add(&sql, t->nkeys > 1 ? " > (" : " > ");
    for (size_t i = 0; i < t->nkeys; i++) {
      if (i) ferry_buf_add(&sql, ", ");
      ferry_pg_add_literal(&sql, t->cursor[i]);
    }
    if (t->nkeys > 1) ferry_buf_add(&sql, ")");
  }
  ferry_buf_addf(&sql, " ORDER BY %s LIMIT %lld) TO STDOUT", t->order_by, (long long)want);
  w->fetching = 1;
  w->cut = 0;
  w->fetch_rows = 0;
  w->fetch_limit = want;
  int rc = ferry_pg_copy_out(w->pg, sql.buf, on_chunk, on_fetched, w);
  ferry_buf_free(&sql);
  if (rc < 0) {
    w->fetching = 0;
    pgsql_src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue the read of table %s (code %d)", t->name, rc);
  }
}
