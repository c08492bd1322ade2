/* sql sink: one batch. Parse its rows (COPY text or JSON "rows"), check them against the prepared table
 * (binary values decoded, zero dates, keys), then in one transaction:
 *   SELECT the target rows of the batch's keys and compare them with the batch, value by value (text forms,
 *     normalised per type class: booleans, fractional zeros and a +00 zone of times);
 *   fail: a differing row rolls back and fails the batch naming up to max_keys_reported keys;
 *   rows the target lacks: ferry_sql_insert (bulk multi-row INSERT; COPY on PostgreSQL);
 *   overwrite: the differing rows through the service's upsert (ON DUPLICATE KEY UPDATE / ON CONFLICT);
 *   COMMIT. Identical rows are never conflicts and never rewritten, so a batch may be redone at will.
 */
#include <ctype.h>

#include "sink.h"

enum { W_BEGIN, W_SELECT, W_INSERT, W_UPDATE, W_COMMIT, W_ROLLBACK };

void sqlp_job_free_vals(job *j) {
  if (!j->vals) return;
  for (size_t i = 0; i < j->nrows * j->ncols; i++) free((char *)j->vals[i].data);
  free(j->vals);
  j->vals = NULL;
}

static void set_val(ferry_sql_value *v, const char *s, size_t n) {
  v->data = s ? ferry_strndup(s, n) : NULL;
  v->len = s ? n : 0;
}

int sqlp_job_parse(job *j, ferry_error *err) {
  const json_t *body = j->it->body;
  json_t *cols = json_object_get(body, "columns");
  if (!json_is_string(json_object_get(body, "table")) || !json_array_size(cols))
    return ferry_error_set(err, FERRY_EINVAL, "not a record batch: \"table\" and \"columns\" are required");
  j->ncols = json_array_size(cols);
  json_t *rows = json_object_get(body, "rows");
  if (json_is_array(rows)) {
    j->nrows = json_array_size(rows);
    j->vals = sqlp_xcalloc(j->nrows * j->ncols, sizeof(ferry_sql_value));
    for (size_t r = 0; r < j->nrows; r++) {
      json_t *row = json_array_get(rows, r);
      if (json_array_size(row) != j->ncols)
        return ferry_error_set(err, FERRY_EINVAL, "row %zu has %zu values for %zu columns", r + 1,
                               json_array_size(row), j->ncols);
      for (size_t c = 0; c < j->ncols; c++) {
        json_t *v = json_array_get(row, c);
        ferry_sql_value *d = &j->vals[r * j->ncols + c];
        if (json_is_null(v)) continue;
        if (json_is_string(v)) set_val(d, json_string_value(v), json_string_length(v));
        else if (json_is_boolean(v)) set_val(d, json_is_true(v) ? "1" : "0", 1);
        else {
          char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
          set_val(d, s, strlen(s));
          free(s);
        }
      }
    }
    return 0;
  }
  const char *p = j->it->payload;
  size_t len = j->it->payload_len, pos = 0;
  size_t cap = 0;
  while (pos < len) {
    const char *nl = memchr(p + pos, '\n', len - pos);
    size_t ll = nl ? (size_t)(nl - (p + pos)) : len - pos;
    if (j->nrows == cap) {
      cap = cap ? cap * 2 : 256;
      j->vals = sqlp_xrealloc(j->vals, cap * j->ncols * sizeof(ferry_sql_value));
    }
    char **f = sqlp_xcalloc(j->ncols, sizeof(char *));
    size_t *lens = sqlp_xcalloc(j->ncols, sizeof(size_t));
    size_t n = sqlp_copy_split(p + pos, ll, f, lens, j->ncols);
    for (size_t c = 0; c < j->ncols; c++) {
      j->vals[j->nrows * j->ncols + c].data = f[c];
      j->vals[j->nrows * j->ncols + c].len = lens[c];
      j->vals[j->nrows * j->ncols + c].binary = 0;
    }
    free(f);
    free(lens);
    j->nrows++;
    if (n != j->ncols)
      return ferry_error_set(err, FERRY_EINVAL, "row %zu of the COPY text has %zu fields for %zu columns", j->nrows,
                             n, j->ncols);
    pos += ll + 1;
  }
  return 0;
}

/* Key values joined by \x1f (no collision between "a,b"+"c" and "a"+"b,c"); key_shown() for messages. */
char *sqlp_row_key(const job *j, size_t r) {
  ferry_buf b = {0};
  for (size_t i = 0; i < j->tt->nkeys; i++) {
    const ferry_sql_value *v = &j->vals[r * j->ncols + j->tt->kidx[i]];
    if (i) ferry_buf_add(&b, "\x1f");
    if (v->data) ferry_buf_addn(&b, v->data, v->len);
  }
  if (!b.buf) ferry_buf_add(&b, "");
  return ferry_buf_steal(&b);
}

/* the key as messages show it: values joined by ',' */
static char *key_shown(char *k) {
  for (char *p = k; *p; p++)
    if (*p == '\x1f') *p = ',';
  return k;
}

static int hexval(int ch) { return isdigit(ch) ? ch - '0' : tolower(ch) - 'a' + 10; }

int sqlp_job_check(job *j, ferry_error *err) {
  ttable *t = j->tt;
  int pg = j->k->engine != FERRY_SQL_MYSQL;
  for (size_t r = 0; r < j->nrows; r++) {
    for (size_t c = 0; c < j->ncols; c++) {
      ferry_sql_value *v = &j->vals[r * j->ncols + c];
      ferry_sql_type cls = t->tcls[c];
      if ((cls == FERRY_SQL_T_BINARY || t->tbit[c]) && v->data && !v->binary && v->len >= 2 && v->data[0] == '\\' &&
          v->data[1] == 'x') { /* bytea hex of the COPY text: the bytes */
        size_t n = (v->len - 2) / 2;
        char *b = sqlp_xcalloc(n + 1, 1);
        for (size_t i = 0; i < n; i++)
          b[i] = (char)(hexval((unsigned char)v->data[2 + 2 * i]) * 16 + hexval((unsigned char)v->data[3 + 2 * i]));
        free((char *)v->data);
        v->data = b;
        v->len = n;
        v->binary = 1;
      }
      if (v->data && !v->binary && cls != FERRY_SQL_T_BINARY) {
        size_t bad = sqlp_utf8_invalid(v->data, v->len);
        if (bad != (size_t)-1) {
          char *key = sqlp_row_key(j, r);
          char hex[16] = "";
          for (size_t q = 0; q < 3 && bad + q < v->len; q++)
            snprintf(hex + strlen(hex), sizeof hex - strlen(hex), "%s%02X", q ? " " : "", (unsigned char)v->data[bad + q]);
          ferry_error_set(err, FERRY_EINVAL,
                          "sql sink: table %s: key %s: column \"%s\" holds invalid UTF-8 at byte %zu (%s...); the "
                          "source column's character set does not match its bytes (latin1 or binary data in a "
                          "utf8mb4 column?); nothing of this batch was written",
                          t->name, key_shown(key), t->cols[c], bad + 1, hex);
          free(key);
          return -1;
        }
      }
      if (cls == FERRY_SQL_T_BOOL && v->data && v->len == 4 && v->data[0] == '\\' && v->data[1] == 'x' &&
          v->data[2] == '0' && (v->data[3] == '0' || v->data[3] == '1')) { /* MySQL bit(1) as COPY bytea hex */
        int tr = v->data[3] == '1';
        free((char *)v->data);
        set_val(v, tr ? "1" : "0", 1);
      }
      if (!pg && v->data && cls == FERRY_SQL_T_BOOL && (!strcmp(v->data, "t") || !strcmp(v->data, "f") ||
                                                         !strcmp(v->data, "true") || !strcmp(v->data, "false"))) {
        int tr = v->data[0] == 't'; /* PostgreSQL's booleans into tinyint(1) */
        free((char *)v->data);
        set_val(v, tr ? "1" : "0", 1);
      }
      if (!pg && v->data && (cls == FERRY_SQL_T_TIMESTAMP || cls == FERRY_SQL_T_TIMESTAMPTZ)) {
        char *d = (char *)v->data; /* MySQL takes no zone: a UTC time (the pgsql source's default) loses "+00" */
        if (v->len > 6 && !strcmp(d + v->len - 6, "+00:00")) d[v->len -= 6] = 0;
        else if (v->len > 3 && !strcmp(d + v->len - 3, "+00")) d[v->len -= 3] = 0;
      }
      if (t->tbit[c] && v->data && !v->binary && v->len == 1 && (v->data[0] == '0' || v->data[0] == '1')) {
        char b = (char)(v->data[0] - '0'); /* a MySQL bit column takes the bit as a byte, not as text */
        free((char *)v->data);
        set_val(v, &b, 1);
        v->binary = 1;
      }
      int dateish = cls == FERRY_SQL_T_DATE || cls == FERRY_SQL_T_TIMESTAMP || cls == FERRY_SQL_T_TIMESTAMPTZ;
      if (pg && dateish && v->data && !strncmp(v->data, "0000-00-00", 10)) {
        if (j->k->c->zero_dates == SQLP_ZERO_NULL) {
          free((char *)v->data);
          v->data = NULL;
          v->len = 0;
          continue;
        }
        char *key = sqlp_row_key(j, r);
        ferry_error_set(err, FERRY_EINVAL,
                        "sql sink: table %s: key %s: column \"%s\" holds the zero date \"%s\", which %s cannot "
                        "store; nothing of this batch was written (set \"zero_dates\": \"null\" to write NULL)",
                        t->name, key_shown(key), t->cols[c], v->data, ferry_sql_endpoint(j->k->db));
        free(key);
        return -1;
      }
    }
    for (size_t i = 0; i < t->nkeys; i++)
      if (!j->vals[r * j->ncols + t->kidx[i]].data)
        return ferry_error_set(err, FERRY_EINVAL, "sql sink: table %s: row %zu has no value for key column \"%s\"",
                               t->name, r + 1, t->cols[t->kidx[i]]);
  }
  return 0;
}

/* ---- comparing ------------------------------------------------------------------------------------------ */
static size_t norm(ferry_sql_type cls, const char *s, size_t n, char *out) {
  if (cls == FERRY_SQL_T_BOOL) {
    int tr = (n == 1 && (*s == 't' || *s == '1')) || (n == 4 && !strncmp(s, "true", 4));
    out[0] = tr ? '1' : '0';
    return 1;
  }
  memcpy(out, s, n);
  if (cls == FERRY_SQL_T_TIMESTAMP || cls == FERRY_SQL_T_TIMESTAMPTZ || cls == FERRY_SQL_T_TIME) {
    if (n >= 6 && !memcmp(out + n - 6, "+00:00", 6)) n -= 6;
    else if (n >= 3 && !memcmp(out + n - 3, "+00", 3)) n -= 3;
    const char *dot = memchr(out, '.', n);
    if (dot) {
      while (n > 0 && out[n - 1] == '0') n--;
      if (n > 0 && out[n - 1] == '.') n--;
    }
  }
  return n;
}

static int same(ferry_sql_type cls, const ferry_sql_value *a, const ferry_sql_value *b) {
  if (!a->data || !b->data) return !a->data && !b->data;
  if (a->len == b->len && !memcmp(a->data, b->data, a->len)) return 1;
  if (a->binary || b->binary) return 0;
  char *x = sqlp_xcalloc(a->len + 1, 1), *y = sqlp_xcalloc(b->len + 1, 1);
  size_t nx = norm(cls, a->data, a->len, x), ny = norm(cls, b->data, b->len, y);
  int r = nx == ny && !memcmp(x, y, nx);
  free(x);
  free(y);
  return r;
}

/* rows of the SELECT: key columns first (in target key order), then the item's columns */
static json_t *index_of(job *j) {
  json_t *ix = json_object_get(j->existing, "\x01index");
  return ix;
}

static int on_target_rows(void *arg, const ferry_sql_batch *b) {
  job *j = arg;
  ttable *t = j->tt;
  json_t *ix = index_of(j);
  for (size_t r = 0; r < b->nrows; r++) {
    ferry_buf kb = {0};
    for (size_t i = 0; i < t->nkeys; i++) {
      const ferry_sql_value *v = FERRY_SQL_CELL(b, r, i);
      if (i) ferry_buf_add(&kb, "\x1f");
      if (v->data) ferry_buf_addn(&kb, v->data, v->len);
    }
    if (!kb.buf) ferry_buf_add(&kb, "");
    json_t *row = json_object_get(ix, kb.buf);
    if (row) {
      size_t br = (size_t)json_integer_value(row);
      int diff = 0;
      ferry_buf dc = {0};
      for (size_t c = 0; c < j->ncols && (!diff || j->diffs); c++) {
        if (same(t->tcls[c], FERRY_SQL_CELL(b, r, t->nkeys + c), &j->vals[br * j->ncols + c])) continue;
        diff = 1;
        if (j->diffs) ferry_buf_addf(&dc, "%s%s", dc.len ? ", " : "", t->cols[c]);
      }
      json_object_set_new(j->existing, kb.buf, json_integer(diff ? 2 : 1));
      j->found++;
      if (diff) j->differ++;
      if (diff && j->diffs && (int64_t)json_array_size(j->diffs) < j->k->c->max_keys_reported) {
        char *shown = key_shown(sqlp_xstrdup(kb.buf));
        json_array_append_new(j->diffs, json_pack("{s:s, s:s}", "key", shown, "columns", dc.buf));
        free(shown);
      }
      ferry_buf_free(&dc);
    }
    ferry_buf_free(&kb);
  }
  return 0;
}

static void step_cb(void *arg, int status, const ferry_sql_done *info, const ferry_error *err);

static void finish(job *j) {
  json_t *rep = ferry_task_report(j->task), *st = ferry_task_state(j->task);
  int64_t skipped = (int64_t)j->nrows - j->inserted - j->updated;
  json_object_set_new(rep, "table", json_string(j->tt->name));
  json_object_set_new(rep, "rows", json_integer((json_int_t)j->nrows));
  json_object_set_new(rep, "inserted", json_integer(j->inserted));
  json_object_set_new(rep, "updated", json_integer(j->updated));
  json_object_set_new(rep, "skipped", json_integer(skipped));
  json_object_set_new(st, "inserted", json_integer(j->inserted));
  json_object_set_new(st, "updated", json_integer(j->updated));
  sqlp_job_done(j, j->inserted + j->updated == 0 ? FERRY_DONE_SKIPPED : 0);
}

/* Rows of the batch with status `want` in existing (0 = not on the target). */
static int insert_rows(job *j, int want, ferry_sql_conflict conflict) {
  ttable *t = j->tt;
  size_t n = 0;
  ferry_sql_value *v = sqlp_xcalloc(j->nrows * j->ncols, sizeof *v);
  for (size_t r = 0; r < j->nrows; r++) {
    if (!j->direct) { /* direct: nothing was read, every row is new */
      char *key = sqlp_row_key(j, r);
      json_t *e = json_object_get(j->existing, key);
      free(key);
      if ((e ? (int)json_integer_value(e) : 0) != want) continue;
    }
    memcpy(&v[n * j->ncols], &j->vals[r * j->ncols], j->ncols * sizeof *v);
    n++;
  }
  if (!n) {
    free(v);
    return 0;
  }
  const char **keys = sqlp_xcalloc(t->nkeys, sizeof(char *));
  for (size_t i = 0; i < t->nkeys; i++) keys[i] = t->cols[t->kidx[i]];
  if (want == 0) j->inserted = (int64_t)n;
  else j->updated = (int64_t)n;
  int rc = ferry_sql_insert(j->k->db, j->txn, t->name, j->ncols, (const char *const *)t->cols, n, v, conflict,
                            t->nkeys, keys, step_cb, j);
  free(keys);
  free(v);
  return rc < 0 ? rc : 1;
}

static void rollback_fail(job *j) {
  j->step = W_ROLLBACK;
  ferry_sql_txn *txn = j->txn;
  j->txn = NULL;
  if (ferry_sql_rollback(txn, step_cb, j) < 0) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_copy(&e, &j->err);
    sqlp_job_fail(j, &e);
    ferry_error_clear(&e);
  }
}

static void next(job *j) {
  ttable *t = j->tt;
  int rc = 0;
  switch (j->step) {
    case W_SELECT: {
      if (j->differ && j->k->c->on_conflict == SQLP_FAIL) {
        ferry_buf kb = {0};
        int64_t shown = 0;
        for (size_t r = 0; r < j->nrows && shown < j->k->c->max_keys_reported; r++) {
          char *key = sqlp_row_key(j, r);
          json_t *e = json_object_get(j->existing, key);
          if (e && json_integer_value(e) == 2) ferry_buf_addf(&kb, "%s%s", shown++ ? ", " : "", key_shown(key));
          free(key);
        }
        ferry_error_set(&j->err, FERRY_ECONFLICT,
                        "sql sink: table %s: %lld row(s) differ from the target's and on_conflict is \"fail\": "
                        "%s%s; nothing of this batch was written",
                        t->name, (long long)j->differ, kb.buf, j->differ > shown ? ", ..." : "");
        ferry_buf_free(&kb);
        rollback_fail(j);
        return;
      }
      j->step = W_INSERT;
      rc = insert_rows(j, 0, FERRY_SQL_CONFLICT_ERROR);
      if (rc) break;
      j->step = W_INSERT; /* nothing new */
    }
    /* fall through */
    case W_INSERT:
      j->step = W_UPDATE;
      if (!j->direct && (j->k->c->on_conflict == SQLP_OVERWRITE || ferry_task_repair(j->task))) {
        rc = insert_rows(j, 2, FERRY_SQL_CONFLICT_UPDATE);
        if (rc) break;
      }
    /* fall through */
    case W_UPDATE: {
      j->step = W_COMMIT;
      ferry_sql_txn *txn = j->txn;
      j->txn = NULL;
      rc = ferry_sql_commit(txn, step_cb, j);
      break;
    }
    case W_COMMIT:
      finish(j);
      return;
    default:
      break;
  }
  if (rc < 0) sqlp_job_failf(j, FERRY_EINTERNAL, "sql sink: table %s: cannot queue a statement (%d)", t->name, rc);
}

static void on_begun(void *arg, int status, ferry_sql_txn *txn, const ferry_error *err);
static int query_target(job *j, ferry_sql_txn *txn);
static void on_compared(void *arg, int status, const ferry_sql_done *info, const ferry_error *err);

static void step_cb(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  job *j = arg;
  if (j->step == W_ROLLBACK && j->redo) { /* the direct insert is undone: compare with the target this time */
    j->redo = 0;
    j->inserted = 0;
    ferry_error_clear(&j->err);
    json_decref(j->existing);
    j->existing = NULL;
    if (ferry_sql_begin(j->k->db, FERRY_SQL_READ_WRITE, NULL, on_begun, j) < 0)
      sqlp_job_failf(j, FERRY_EINTERNAL, "sql sink: table %s: cannot start a transaction", j->tt->name);
    return;
  }
  if (j->step == W_ROLLBACK) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_copy(&e, &j->err);
    sqlp_job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  if (status == FERRY_ECONFLICT && j->direct && j->step == W_INSERT && j->txn) {
    /* a key of the batch is on the target after all (a batch redone after its commit, another writer):
     * the table is no longer taken as fresh */
    ferry_log_info(j->k->ins, "sql sink: table %s: a key of batch %s exists already: comparing with the target",
                   j->tt->name, j->it->key);
    j->tt->fresh = 0;
    j->direct = 0;
    j->redo = 1;
    rollback_fail(j);
    return;
  }
  if (status) {
    static const char *what[] = {"", "reading the target rows", "inserting", "overwriting", "committing"};
    ferry_error e = FERRY_ERROR_INIT;
    sqlp_error_from(&e, err, "sql sink: table %s: %s", j->tt->name, what[j->step]);
    if (j->txn) {
      ferry_error_copy(&j->err, &e);
      ferry_error_clear(&e);
      rollback_fail(j);
      return;
    }
    sqlp_job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  next(j);
}

static void on_begun(void *arg, int status, ferry_sql_txn *txn, const ferry_error *err) {
  job *j = arg;
  ttable *t = j->tt;
  if (status) {
    sqlp_job_fail_q(j, "starting a transaction", err);
    return;
  }
  j->txn = txn;
  j->step = W_SELECT;
  if (t->fresh && !ferry_task_repair(j->task)) { /* nothing to compare with: insert every row at once */
    j->direct = 1;
    j->existing = json_object();
    next(j);
    return;
  }
  j->direct = 0;
  int rc = query_target(j, txn);
  if (rc < 0) sqlp_job_failf(j, FERRY_EINTERNAL, "sql sink: table %s: cannot queue a query (%d)", t->name, rc);
}

/* SELECT k.., cols.. FROM t WHERE (k) IN ((..), ..): the target rows of the batch's keys, into existing
 * (on_target_rows), then step_cb. A column absent from the target (plan, verify) reads as NULL. */
static int query_target(job *j, ferry_sql_txn *txn) {
  ttable *t = j->tt;
  json_t *ix = json_object();
  ferry_buf q = {0}, kl = {0};
  for (size_t i = 0; i < t->nkeys; i++) {
    char *qc = ferry_sql_quote_ident(j->k->db, t->cols[t->kidx[i]]);
    ferry_buf_addf(&kl, "%s%s", i ? ", " : "", qc);
    free(qc);
  }
  ferry_buf_addf(&q, "SELECT %s", kl.buf);
  for (size_t c = 0; c < j->ncols; c++) {
    if (t->absent[c]) {
      ferry_buf_add(&q, ", NULL");
      continue;
    }
    char *qc = ferry_sql_quote_ident(j->k->db, t->cols[c]);
    ferry_buf_addf(&q, ", %s", qc);
    free(qc);
  }
  ferry_buf_addf(&q, " FROM %s WHERE %s%s%s IN (", t->qname, t->nkeys > 1 ? "(" : "", kl.buf, t->nkeys > 1 ? ")" : "");
  ferry_sql_value *p = sqlp_xcalloc(j->nrows * t->nkeys, sizeof *p);
  size_t np = 0;
  for (size_t r = 0; r < j->nrows; r++) {
    char *key = sqlp_row_key(j, r);
    json_object_set_new(ix, key, json_integer((json_int_t)r));
    free(key);
    ferry_buf_add(&q, r ? ", " : "");
    if (t->nkeys > 1) ferry_buf_add(&q, "(");
    for (size_t i = 0; i < t->nkeys; i++) {
      p[np] = j->vals[r * j->ncols + t->kidx[i]];
      ferry_buf_addf(&q, "%s$%zu", i ? ", " : "", ++np);
    }
    if (t->nkeys > 1) ferry_buf_add(&q, ")");
  }
  ferry_buf_add(&q, ")");
  j->existing = json_object();
  json_object_set_new(j->existing, "\x01index", ix);
  int rc = ferry_sql_query(j->k->db, txn, q.buf, np, p, on_target_rows, txn ? step_cb : on_compared, j);
  ferry_buf_free(&q);
  ferry_buf_free(&kl);
  free(p);
  return rc;
}

/* ---- PLAN and VERIFY ------------------------------------------------------------------------------------- */
static void compare_report(job *j) {
  ttable *t = j->tt;
  sqlp_sink *k = j->k;
  json_t *rep = ferry_task_report(j->task);
  int64_t rows = (int64_t)j->nrows, missing = rows - j->found, identical = j->found - j->differ;
  json_object_set_new(rep, "table", json_string(t->name));
  json_object_set_new(rep, "rows", json_integer(rows));
  if (k->mode == FERRY_MODE_PLAN) {
    int pol = k->c->on_conflict;
    json_object_set_new(rep, "would_insert", json_integer(missing));
    json_object_set_new(rep, "would_skip_identical", json_integer(identical));
    json_object_set_new(rep, "conflicts", json_integer(j->differ));
    json_object_set_new(rep, "would_overwrite", json_integer(pol == SQLP_OVERWRITE ? j->differ : 0));
    json_object_set_new(rep, "would_skip", json_integer(identical + (pol == SQLP_SKIP ? j->differ : 0)));
    json_t *acts = json_copy(t->actions);
    char *w = ferry_asprintf("insert %lld row(s); %lld identical row(s) already there; %lld row(s) differ (%s)",
                             (long long)missing, (long long)identical, (long long)j->differ,
                             pol == SQLP_SKIP ? "would be skipped" : pol == SQLP_OVERWRITE ? "would be overwritten"
                                                                                           : "would fail the batch");
    json_array_append_new(acts, json_string(w));
    free(w);
    json_object_set_new(rep, "would", acts);
    if (j->differ && pol == SQLP_FAIL) {
      json_t *keys = json_array();
      size_t i;
      json_t *d;
      json_array_foreach(j->diffs, i, d) json_array_append(keys, json_object_get(d, "key"));
      json_object_set_new(rep, "conflicting_keys", keys);
      ferry_error e = FERRY_ERROR_INIT;
      ferry_error_set(&e, FERRY_EBLOCKED,
                      "sql sink: table %s: %lld row(s) of this batch exist on the target with other values and "
                      "on_conflict is \"fail\"", t->name, (long long)j->differ);
      sqlp_job_fail(j, &e);
      ferry_error_clear(&e);
      return;
    }
    int nothing = missing == 0 && (pol == SQLP_SKIP || j->differ == 0) && json_array_size(t->actions) == 0;
    sqlp_job_done(j, nothing ? FERRY_DONE_SKIPPED : 0);
    return;
  }
  /* VERIFY: every row of the batch on the target, equal */
  json_object_set_new(rep, "missing", json_integer(missing));
  json_object_set_new(rep, "differing", json_integer(j->differ));
  if (!missing && !j->differ) {
    sqlp_job_done(j, 0);
    return;
  }
  json_t *diffs = json_array();
  ferry_buf names = {0};
  int64_t shown = 0;
  for (size_t r = 0; r < j->nrows && shown < k->c->max_keys_reported; r++) {
    char *key = sqlp_row_key(j, r);
    if (!json_object_get(j->existing, key)) {
      key_shown(key);
      json_array_append_new(diffs, json_pack("{s:s, s:b}", "key", key, "missing", 1));
      ferry_buf_addf(&names, "%s%s (missing)", shown++ ? "; " : "", key);
    }
    free(key);
  }
  size_t i;
  json_t *d;
  json_array_foreach(j->diffs, i, d) {
    if (shown >= k->c->max_keys_reported) break;
    json_array_append(diffs, d);
    ferry_buf_addf(&names, "%s%s (differs in %s)", shown++ ? "; " : "", json_string_value(json_object_get(d, "key")),
                   json_string_value(json_object_get(d, "columns")));
  }
  json_object_set_new(rep, "differences", diffs);
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_set(&e, FERRY_EMISMATCH,
                  "sql sink: table %s: %lld of %lld row(s) missing and %lld differing on the target: %s%s", t->name,
                  (long long)missing, (long long)rows, (long long)j->differ, names.buf ? names.buf : "",
                  missing + j->differ > shown ? "; ..." : "");
  ferry_buf_free(&names);
  sqlp_job_fail(j, &e);
  ferry_error_clear(&e);
}

static void on_compared(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  job *j = arg;
  if (status) {
    sqlp_job_fail_q(j, "comparing with the target", err);
    return;
  }
  compare_report(j);
}

void sqlp_job_compare(job *j) {
  ttable *t = j->tt;
  j->diffs = json_array(); /* existing: made by query_target */
  if (j->nrows == 0 || t->missing) { /* nothing to read: every row would be inserted / is missing */
    compare_report(j);
    return;
  }
  if (j->k->mode == FERRY_MODE_VERIFY) {
    for (size_t c = 0; c < t->ncols; c++) {
      if (!t->absent[c]) continue;
      ferry_error e = FERRY_ERROR_INIT;
      ferry_error_set(&e, FERRY_EMISMATCH, "sql sink: table %s in %s has no column \"%s\"", t->name,
                      ferry_sql_endpoint(j->k->db), t->cols[c]);
      sqlp_job_fail(j, &e);
      ferry_error_clear(&e);
      return;
    }
  }
  int rc = query_target(j, NULL);
  if (rc < 0) sqlp_job_failf(j, FERRY_EINTERNAL, "sql sink: table %s: cannot queue a query (%d)", t->name, rc);
}

void sqlp_job_write(job *j) {
  json_t *st = ferry_task_state(j->task);
  json_object_set_new(st, "table", json_string(j->tt->name));
  json_object_set_new(st, "rows", json_integer((json_int_t)j->nrows));
  if (j->nrows == 0) {
    json_t *rep = ferry_task_report(j->task);
    json_object_set_new(rep, "table", json_string(j->tt->name));
    json_object_set_new(rep, "rows", json_integer(0));
    sqlp_job_done(j, FERRY_DONE_SKIPPED);
    return;
  }
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry_task_intent(j->task, "write", &e) < 0) {
    sqlp_job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  if (ferry_sql_begin(j->k->db, FERRY_SQL_READ_WRITE, NULL, on_begun, j) < 0)
    sqlp_job_failf(j, FERRY_EINTERNAL, "sql sink: table %s: cannot start a transaction", j->tt->name);
}

/* ---- column_map ------------------------------------------------------------------------------------------ */
const char *sqlp_map_column(const sqlp_ctx *c, const char *src, const char *col) {
  if (!col) return NULL;
  if (!c->column_map) return col;
  const json_t *m = json_object_get(json_object_get(c->column_map, src), col);
  if (!m) m = json_object_get(json_object_get(c->column_map, "*"), col);
  if (!m) return col;
  return json_is_string(m) ? json_string_value(m) : NULL;
}

int sqlp_job_project(job *j, ferry_error *err) {
  ttable *t = j->tt;
  if (j->ncols != t->nitem)
    return ferry_error_set(err, FERRY_EINVAL, "the batch has %zu columns, the first batch of table %s had %zu",
                           j->ncols, t->name, t->nitem);
  if (t->ncols == t->nitem) return 0; /* nothing left out (renames keep the order) */
  ferry_sql_value *v = sqlp_xcalloc(j->nrows * t->ncols + 1, sizeof *v);
  for (size_t r = 0; r < j->nrows; r++) {
    unsigned char *kept = sqlp_xcalloc(j->ncols, 1);
    for (size_t c = 0; c < t->ncols; c++) {
      v[r * t->ncols + c] = j->vals[r * j->ncols + t->src_idx[c]];
      kept[t->src_idx[c]] = 1;
    }
    for (size_t c = 0; c < j->ncols; c++)
      if (!kept[c]) free((char *)j->vals[r * j->ncols + c].data);
    free(kept);
  }
  free(j->vals);
  j->vals = v;
  j->ncols = t->ncols;
  return 0;
}
