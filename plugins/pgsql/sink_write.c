/* pgsql sink: a batch's rows, and RUN: writing one batch in one transaction (direct COPY, or the
 * staging table and INSERT ... ON CONFLICT). */
#include "sink.h"

/* ---- the batch's rows ---------------------------------------------------------------------------------------- */
/* Key values (target key order) of one payload line; malloc'd array of nkeys strings. */
static char **line_keys(ttable *t, const char *line, size_t len) {
  char **k = pgsql_xcalloc(t->nkeys, sizeof(char *));
  for (size_t q = 0; q < t->nkeys; q++)
    if (!pgsql_copy_field(line, len, t->kidx[q], &k[q])) k[q] = NULL;
  return k;
}

/* Items with "rows" (JSON arrays) instead of COPY text: converted once. */
int pgsql_rows_to_copy(job *j, json_t *rows, ferry_error *err) {
  ferry_buf sb = {0};
  size_t r;
  json_t *row;
  size_t ncols = json_array_size(json_object_get(j->it->body, "columns"));
  json_array_foreach(rows, r, row) {
    if (!json_is_array(row) || json_array_size(row) != ncols) {
      ferry_buf_free(&sb);
      return ferry_error_set(err, FERRY_EINVAL, "row %zu is not an array of %zu values (one per column)", r,
                             ncols);
    }
    size_t i;
    json_t *v;
    json_array_foreach(row, i, v) {
      if (i) ferry_buf_add(&sb, "\t");
      if (json_is_null(v)) {
        pgsql_copy_escape(&sb, NULL, 0);
      } else if (json_is_string(v)) {
        pgsql_copy_escape(&sb, json_string_value(v), json_string_length(v));
      } else if (json_is_true(v) || json_is_false(v)) {
        ferry_buf_add(&sb, json_is_true(v) ? "t" : "f");
      } else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
        pgsql_copy_escape(&sb, s, s ? strlen(s) : 0);
        free(s);
      }
    }
    ferry_buf_add(&sb, "\n");
    j->rows++;
  }
  j->len = sb.len;
  j->owned = ferry_buf_steal(&sb);
  j->data = j->owned;
  return 0;
}

/* Checks the item's shape; fills data/len/rows. */
int pgsql_job_parse(job *j, ferry_error *err) {
  const json_t *b = j->it->body;
  const char *table = pgsql_jstr(b, "table");
  if (!table || !*table) return ferry_error_set(err, FERRY_EINVAL, "the item has no \"table\"");
  json_t *cols = json_object_get(b, "columns");
  if (!json_is_array(cols) || !json_array_size(cols))
    return ferry_error_set(err, FERRY_EINVAL, "the item has no \"columns\" (array of column names)");
  size_t i;
  json_t *v;
  json_array_foreach(cols, i, v) {
    if (!json_is_string(v) || !*json_string_value(v))
      return ferry_error_set(err, FERRY_EINVAL, "\"columns\"[%zu] is not a column name", i);
  }
  json_t *types = json_object_get(b, "types");
  if (types && (!json_is_array(types) || json_array_size(types) != json_array_size(cols)))
    return ferry_error_set(err, FERRY_EINVAL, "\"types\" must be an array with one type per column");
  json_t *keys = json_object_get(b, "key_columns");
  if (keys && !json_is_array(keys))
    return ferry_error_set(err, FERRY_EINVAL, "\"key_columns\" must be an array of column names");
  json_t *rows = json_object_get(b, "rows");
  const char *format = pgsql_jstr(b, "format");
  if (rows) {
    if (!json_is_array(rows)) return ferry_error_set(err, FERRY_EINVAL, "\"rows\" must be an array of rows");
    return pgsql_rows_to_copy(j, rows, err);
  }
  if (format && strcmp(format, "copy-text"))
    return ferry_error_set(err, FERRY_EINVAL, "unknown \"format\" \"%s\" (the sink takes \"copy-text\")", format);
  j->data = j->it->payload;
  j->len = j->it->payload_len;
  size_t pos = 0, len;
  const char *line;
  while (pgsql_copy_next_line(j->data, j->len, &pos, &line, &len)) j->rows++;
  return 0;
}

/* ---- RUN: writing one batch ---------------------------------------------------------------------------------- */
enum { W_BEGIN = 1, W_PROBE, W_DIRECT, W_RETRY, W_STAGE_COPY, W_CHECK, W_INSERT, W_COMMIT, W_ROLLBACK };

static void write_step(void *arg, int status, PGresult *res, const ferry_error *err);

static void run_q(job *j, int step, const char *sql, int np, const char *const *p) {
  j->step = step;
  if (ferry_pg_query(j->conn->pg, sql, np, p, write_step, j) < 0)
    pgsql_job_failf(j, FERRY_EINTERNAL, "pgsql sink: cannot queue a query");
}

/* Rolls back, then fails the job with j->err. */
static void rollback_fail(job *j) { run_q(j, W_ROLLBACK, "ROLLBACK", 0, NULL); }

static void write_begin(job *j) {
  ttable *t = j->tt;
  ferry_buf sql = {0};
  ferry_buf_add(&sql, "BEGIN; ");
  ferry_buf_add(&sql, j->k->sets);
  if (json_is_true(json_object_get(j->it->body, "defer_constraints")))
    ferry_buf_add(&sql, "; SET LOCAL session_replication_role TO replica");
  ferry_buf_addf(&sql, "; CREATE TEMP TABLE IF NOT EXISTS %s (%s) ON COMMIT DELETE ROWS", t->stage,
                 t->stage_cols_ddl);
  run_q(j, W_BEGIN, sql.buf, 0, NULL);
  ferry_buf_free(&sql);
}

static int write_probe(job *j) {
  ttable *t = j->tt;
  size_t pos = 0, len, lastlen = 0;
  const char *line, *first = NULL, *last = NULL;
  size_t firstlen = 0;
  while (pgsql_copy_next_line(j->data, j->len, &pos, &line, &len)) {
    if (!first) {
      first = line;
      firstlen = len;
    }
    last = line;
    lastlen = len;
  }
  char **fk = line_keys(t, first, firstlen), **lk = line_keys(t, last, lastlen);
  const char **p = pgsql_xcalloc(2 * t->nkeys, sizeof(char *));
  ferry_buf sql = {0}, tup = {0}, lo = {0}, hi = {0};
  for (size_t q = 0; q < t->nkeys; q++) {
    if (q) {
      ferry_buf_add(&tup, ", ");
      ferry_buf_add(&lo, ", ");
      ferry_buf_add(&hi, ", ");
    }
    ferry_pg_add_ident(&tup, t->tcol[t->kidx[q]]);
    ferry_buf_addf(&lo, "$%zu::%s", q + 1, t->ttype[t->kidx[q]]);
    ferry_buf_addf(&hi, "$%zu::%s", t->nkeys + q + 1, t->ttype[t->kidx[q]]);
    p[q] = fk[q];
    p[t->nkeys + q] = lk[q];
  }
  const char *o = t->nkeys > 1 ? "(" : "", *c = t->nkeys > 1 ? ")" : "";
  ferry_buf_addf(&sql, "SELECT EXISTS (SELECT 1 FROM %s WHERE %s%s%s >= %s%s%s AND %s%s%s <= %s%s%s)", t->qname, o,
                 tup.buf, c, o, lo.buf, c, o, tup.buf, c, o, hi.buf, c);
  int any_null = 0;
  for (size_t q = 0; q < 2 * t->nkeys; q++) any_null |= !p[q];
  if (!any_null) run_q(j, W_PROBE, sql.buf, (int)(2 * t->nkeys), p); /* a NULL key: the staging path */
  ferry_buf_free(&sql);
  ferry_buf_free(&tup);
  ferry_buf_free(&lo);
  ferry_buf_free(&hi);
  free(p);
  pgsql_strv_free(fk, t->nkeys);
  pgsql_strv_free(lk, t->nkeys);
  return !any_null;
}

static void write_copy(job *j, int step) {
  ttable *t = j->tt;
  char *sql = step == W_DIRECT ? ferry_asprintf("COPY %s (%s) FROM STDIN", t->qname, t->ins_cols)
                               : ferry_asprintf("COPY %s FROM STDIN", t->stage);
  j->step = step;
  int rc = ferry_pg_copy_in(j->conn->pg, sql, j->data, j->len, write_step, j);
  free(sql);
  if (rc < 0) pgsql_job_failf(j, FERRY_EINTERNAL, "pgsql sink: cannot queue a COPY");
}

/* "d.k1 = s.fK1 AND ..." */
static void key_join(ferry_buf *sb, ttable *t, const char *d, const char *s) {
  for (size_t q = 0; q < t->nkeys; q++) {
    if (q) ferry_buf_add(sb, " AND ");
    ferry_buf_addf(sb, "%s.", d);
    ferry_pg_add_ident(sb, t->tcol[t->kidx[q]]);
    ferry_buf_addf(sb, " = %s.f%zu", s, t->kidx[q] + 1);
  }
}

/* "ROW(d.c1, d.c2)::text" over the mapped columns */
static void row_text(ferry_buf *sb, ttable *t, const char *alias, int target_names) {
  ferry_buf_add(sb, "ROW(");
  int first = 1;
  for (size_t i = 0; i < t->ncols; i++) {
    if (!t->tcol[i]) continue;
    if (!first) ferry_buf_add(sb, ", ");
    first = 0;
    ferry_buf_addf(sb, "%s.", alias);
    if (target_names) ferry_pg_add_ident(sb, t->tcol[i]);
    else ferry_buf_addf(sb, "f%zu", i + 1);
  }
  ferry_buf_add(sb, ")::text");
}

static void write_check(job *j) {
  ttable *t = j->tt;
  ferry_buf sql = {0};
  ferry_buf_add(&sql, "SELECT ");
  for (size_t q = 0; q < t->nkeys; q++) ferry_buf_addf(&sql, "%ss.f%zu::text", q ? ", " : "", t->kidx[q] + 1);
  ferry_buf_addf(&sql, ", count(*) OVER () FROM %s s JOIN %s d ON ", t->stage, t->qname);
  key_join(&sql, t, "d", "s");
  ferry_buf_add(&sql, " WHERE ");
  row_text(&sql, t, "d", 1);
  ferry_buf_add(&sql, " IS DISTINCT FROM ");
  row_text(&sql, t, "s", 0);
  ferry_buf_addf(&sql, " LIMIT %lld", (long long)j->k->c->max_keys_reported);
  run_q(j, W_CHECK, sql.buf, 0, NULL);
  ferry_buf_free(&sql);
}

static void write_insert(job *j) {
  ttable *t = j->tt;
  ferry_buf sql = {0}, keys = {0}, set = {0};
  for (size_t q = 0; q < t->nkeys; q++) {
    if (q) ferry_buf_add(&keys, ", ");
    ferry_pg_add_ident(&keys, t->tcol[t->kidx[q]]);
  }
  for (size_t i = 0; i < t->ncols; i++) {
    if (!t->tcol[i]) continue;
    int is_key = 0;
    for (size_t q = 0; q < t->nkeys; q++) is_key |= t->kidx[q] == i;
    if (is_key) continue;
    if (set.len) ferry_buf_add(&set, ", ");
    ferry_pg_add_ident(&set, t->tcol[i]);
    ferry_buf_add(&set, " = EXCLUDED.");
    ferry_pg_add_ident(&set, t->tcol[i]);
  }
  ferry_buf_addf(&sql, "WITH w AS (INSERT INTO %s AS d (%s) SELECT %s FROM %s ON CONFLICT (%s) ", t->qname,
                 t->ins_cols, t->sel_cols, t->stage, keys.buf);
  if (j->policy == POLICY_OVERWRITE && set.len) {
    ferry_buf_addf(&sql, "DO UPDATE SET %s WHERE ", set.buf);
    row_text(&sql, t, "d", 1);
    ferry_buf_add(&sql, " IS DISTINCT FROM ");
    row_text(&sql, t, "EXCLUDED", 1);
  } else {
    ferry_buf_add(&sql, "DO NOTHING");
  }
  ferry_buf_add(&sql, " RETURNING (xmax::text = '0') AS ins) "
                     "SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM w");
  run_q(j, W_INSERT, sql.buf, 0, NULL);
  ferry_buf_free(&sql);
  ferry_buf_free(&keys);
  ferry_buf_free(&set);
}

static void write_done(job *j) {
  json_t *rep = ferry_task_report(j->task), *st = ferry_task_state(j->task);
  int64_t skipped = j->rows - j->inserted - j->updated;
  json_object_set_new(rep, "table", json_string(j->tt->qname));
  json_object_set_new(rep, "rows", json_integer(j->rows));
  json_object_set_new(rep, "inserted", json_integer(j->inserted));
  json_object_set_new(rep, "updated", json_integer(j->updated));
  json_object_set_new(rep, "skipped", json_integer(skipped));
  json_object_set_new(st, "inserted", json_integer(j->inserted));
  json_object_set_new(st, "updated", json_integer(j->updated));
  pgsql_job_done(j, j->inserted + j->updated == 0 ? FERRY_DONE_SKIPPED : 0);
}

static void write_step(void *arg, int status, PGresult *res, const ferry_error *err) {
  job *j = arg;
  ttable *t = j->tt;
  if (j->step == W_ROLLBACK) { /* whatever ROLLBACK said, report the failure that caused it */
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_move(&e, &j->err);
    pgsql_job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  if (status) {
    if (j->step == W_DIRECT && status == FERRY_ECONFLICT) { /* a key exists after all: staging path */
      j->direct_failed = 1;
      run_q(j, W_RETRY, "ROLLBACK", 0, NULL);
      return;
    }
    static const char *const doing[] = {"", "opening the transaction", "probing the key range",
                                        "copying the batch", "rolling back", "copying into the staging table",
                                        "looking for conflicts", "inserting the rows", "committing"};
    ferry_error_copy(&j->err, err);
    if (pgsql_sqlstate_is(err, "23503") && json_array_size(json_object_get(j->it->body, "after"))) {
      /* a parent's batch may still be on its way (retried): try again later */
      j->err.code = FERRY_ETRANSIENT;
    }
    if (j->step == W_BEGIN && pgsql_sqlstate_is(err, "42501"))
      ferry_error_prefix(&j->err, "defer_constraints needs a superuser (session_replication_role) on the target");
    ferry_error_prefix(&j->err, "pgsql sink: table %s: %s", t->qname, doing[j->step]);
    if (j->step == W_RETRY) { /* ROLLBACK failed: the connection is gone, and the transaction with it */
      ferry_error e = FERRY_ERROR_INIT;
      ferry_error_move(&e, &j->err);
      pgsql_job_fail(j, &e);
      ferry_error_clear(&e);
      return;
    }
    rollback_fail(j);
    return;
  }
  switch (j->step) {
    case W_BEGIN:
      if (!j->direct_failed && !t->dropped && write_probe(j)) return;
      write_copy(j, W_STAGE_COPY);
      return;
    case W_PROBE:
      if (PQgetvalue(res, 0, 0)[0] == 't') write_copy(j, W_STAGE_COPY);
      else write_copy(j, W_DIRECT);
      return;
    case W_DIRECT:
      j->inserted = j->rows;
      run_q(j, W_COMMIT, "COMMIT", 0, NULL);
      return;
    case W_RETRY:
      write_begin(j);
      return;
    case W_STAGE_COPY:
      if (j->policy == POLICY_FAIL) write_check(j);
      else write_insert(j);
      return;
    case W_CHECK: {
      int n = PQntuples(res);
      if (n == 0) {
        write_insert(j);
        return;
      }
      ferry_buf keys = {0};
      for (int r = 0; r < n; r++) {
        if (r) ferry_buf_add(&keys, "; ");
        if (t->nkeys > 1) ferry_buf_add(&keys, "(");
        for (size_t q = 0; q < t->nkeys; q++)
          ferry_buf_addf(&keys, "%s%s", q ? ", " : "", PQgetvalue(res, r, (int)q));
        if (t->nkeys > 1) ferry_buf_add(&keys, ")");
      }
      long long total = atoll(PQgetvalue(res, 0, (int)t->nkeys));
      ferry_error_set(&j->err, FERRY_ECONFLICT,
                      "pgsql sink: table %s: %lld row(s) of this batch exist on the target with other values "
                      "(conflict policy \"fail\"); keys: %s%s. Nothing of this batch was written; use conflict "
                      "\"skip\" or \"overwrite\", or fix the target rows",
                      t->qname, total, keys.buf, total > n ? " ..." : "");
      json_t *rep = ferry_task_report(j->task);
      json_t *arr = json_array();
      for (int r = 0; r < n; r++) json_array_append_new(arr, json_string(PQgetvalue(res, r, 0)));
      json_object_set_new(rep, "conflicting_keys", arr);
      json_object_set_new(rep, "conflicts", json_integer(total));
      ferry_buf_free(&keys);
      rollback_fail(j);
      return;
    }
    case W_INSERT:
      j->inserted = atoll(PQgetvalue(res, 0, 0));
      j->updated = atoll(PQgetvalue(res, 0, 1));
      run_q(j, W_COMMIT, "COMMIT", 0, NULL);
      return;
    case W_COMMIT:
      if (strcmp(PQcmdStatus(res), "COMMIT")) {
        ferry_error_set(&j->err, FERRY_EIO, "pgsql sink: table %s: the transaction was rolled back (%s)", t->qname,
                        PQcmdStatus(res));
        ferry_error e = FERRY_ERROR_INIT;
        ferry_error_move(&e, &j->err);
        pgsql_job_fail(j, &e);
        ferry_error_clear(&e);
        return;
      }
      write_done(j);
      return;
  }
}

void pgsql_job_write(job *j) {
  json_t *st = ferry_task_state(j->task);
  json_object_set_new(st, "table", json_string(j->tt->qname));
  json_object_set_new(st, "rows", json_integer(j->rows));
  if (j->rows == 0) { /* an empty table: it exists now, nothing else to do */
    json_t *rep = ferry_task_report(j->task);
    json_object_set_new(rep, "table", json_string(j->tt->qname));
    json_object_set_new(rep, "rows", json_integer(0));
    pgsql_job_done(j, FERRY_DONE_SKIPPED);
    return;
  }
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry_task_intent(j->task, "write", &e) < 0) {
    pgsql_job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  write_begin(j);
}
