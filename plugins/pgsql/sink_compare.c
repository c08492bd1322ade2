/* pgsql sink: PLAN and VERIFY: a batch's rows compared with the target's. */
#include "sink.h"

/* ---- PLAN and VERIFY: the batch's rows against the target ---------------------------------------------------- */
static void cmp_report(job *j, int nres, PGresult *res);

/* BEGIN, the comparison and COMMIT are queued together; the first error is kept in j->err and the job ends
 * in the COMMIT's callback. */
static void on_cmp(void *arg, int status, PGresult *res, const ferry_error *err) {
  job *j = arg;
  if (status) {
    if (!j->err.code) ferry_error_copy(&j->err, err);
    return;
  }
  if (j->step == 1 && !j->err.code) cmp_report(j, PQntuples(res), res);
  j->step++;
}

static void cmp_report(job *j, int nres, PGresult *res) {
  ttable *t = j->tt;
  pgsql_sink *k = j->k;
  json_t *rep = ferry_task_report(j->task);
  int64_t n_missing = nres ? atoll(PQgetvalue(res, 0, (int)t->nkeys + 2)) : 0;
  int64_t n_differ = nres ? atoll(PQgetvalue(res, 0, (int)t->nkeys + 3)) : 0;
  json_object_set_new(rep, "table", json_string(t->qname));
  json_object_set_new(rep, "rows", json_integer(j->rows));
  ferry_buf names = {0};
  json_t *diffs = json_array();
  for (int r = 0; r < nres; r++) {
    ferry_buf key = {0};
    if (t->nkeys > 1) ferry_buf_add(&key, "(");
    for (size_t q = 0; q < t->nkeys; q++) ferry_buf_addf(&key, "%s%s", q ? ", " : "", PQgetvalue(res, r, (int)q));
    if (t->nkeys > 1) ferry_buf_add(&key, ")");
    int missing = PQgetvalue(res, r, (int)t->nkeys)[0] == 't';
    const char *cols = PQgetvalue(res, r, (int)t->nkeys + 1);
    json_t *d = json_pack("{s:s}", "key", key.buf);
    if (missing) json_object_set_new(d, "missing", json_true());
    else json_object_set_new(d, "columns", json_string(cols));
    json_array_append_new(diffs, d);
    ferry_buf_addf(&names, "%s%s (%s%s)", r ? "; " : "", key.buf, missing ? "missing" : "differs in ",
                   missing ? "" : cols);
    ferry_buf_free(&key);
  }
  if (k->mode == FERRY_MODE_VERIFY) {
    json_object_set_new(rep, "missing", json_integer(n_missing));
    json_object_set_new(rep, "differing", json_integer(n_differ));
    if (nres) json_object_set_new(rep, "differences", diffs);
    else json_decref(diffs);
    if (nres)
      ferry_error_set(&j->err, FERRY_EMISMATCH,
                      "pgsql sink: table %s: %lld of %lld row(s) missing and %lld differing on the target: %s%s",
                      t->qname, (long long)n_missing, (long long)j->rows, (long long)n_differ, names.buf,
                      n_missing + n_differ > nres ? "; ..." : "");
  } else {
    int64_t existing = j->rows - n_missing; /* approximately: keys found on the target */
    json_object_set_new(rep, "would_insert", json_integer(n_missing));
    json_object_set_new(rep, "would_skip_identical", json_integer(existing - n_differ));
    json_object_set_new(rep, "conflicts", json_integer(n_differ));
    json_t *acts = json_copy(t->actions);
    char *w = ferry_asprintf("insert %lld row(s); %lld identical row(s) already there; %lld row(s) differ (%s)",
                             (long long)n_missing, (long long)(existing - n_differ), (long long)n_differ,
                             k->policy == POLICY_SKIP ? "would be skipped"
                             : k->policy == POLICY_OVERWRITE ? "would be overwritten" : "would fail the batch");
    json_array_append_new(acts, json_string(w));
    free(w);
    json_object_set_new(rep, "would", acts);
    if (n_differ && k->policy == POLICY_FAIL) {
      json_t *keys = json_array();
      size_t i;
      json_t *d;
      json_array_foreach(diffs, i, d) if (!json_object_get(d, "missing")) json_array_append(keys, json_object_get(d, "key"));
      json_object_set_new(rep, "conflicting_keys", keys);
      ferry_error_set(&j->err, FERRY_EBLOCKED,
                      "pgsql sink: table %s: %lld row(s) of this batch exist on the target with other values and "
                      "on_conflict is \"fail\"", t->qname, (long long)n_differ);
    }
    json_decref(diffs);
  }
  ferry_buf_free(&names);
}

static void on_cmp_end(void *arg, int status, PGresult *res, const ferry_error *err) {
  job *j = arg;
  if (j->err.code) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_move(&e, &j->err);
    if (e.code != FERRY_EMISMATCH && e.code != FERRY_EBLOCKED)
      ferry_error_prefix(&e, "pgsql sink: table %s: comparing with the target", j->tt->qname);
    pgsql_job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  if (status) {
    pgsql_job_fail_q(j, "comparing with the target", err);
    return;
  }
  json_t *rep = ferry_task_report(j->task);
  int nothing = j->k->mode == FERRY_MODE_PLAN && json_integer_value(json_object_get(rep, "would_insert")) == 0 &&
                (j->policy == POLICY_SKIP || json_integer_value(json_object_get(rep, "conflicts")) == 0) &&
                json_array_size(j->tt->actions) == 0;
  pgsql_job_done(j, nothing ? FERRY_DONE_SKIPPED : 0);
}

void pgsql_job_compare(job *j) {
  ttable *t = j->tt;
  pgsql_sink *k = j->k;
  if (j->rows == 0 || (k->mode == FERRY_MODE_PLAN && !t->exists)) {
    json_t *rep = ferry_task_report(j->task);
    json_object_set_new(rep, "table", json_string(t->qname));
    json_object_set_new(rep, "rows", json_integer(j->rows));
    if (k->mode == FERRY_MODE_PLAN) {
      json_t *acts = json_copy(t->actions);
      char *w = ferry_asprintf("insert %lld row(s)", (long long)j->rows);
      json_array_append_new(acts, json_string(w));
      free(w);
      json_object_set_new(rep, "would", acts);
    }
    pgsql_job_done(j, 0);
    return;
  }
  /* one text[] parameter per compared column: the batch's values */
  size_t ncmp = 0;
  size_t *ci = pgsql_xcalloc(t->ncols, sizeof(size_t));
  for (size_t i = 0; i < t->ncols; i++)
    if (t->tcol[i] && t->present[i] == 1) ci[ncmp++] = i;
  ferry_buf *arr = pgsql_xcalloc(ncmp, sizeof(ferry_buf));
  for (size_t c = 0; c < ncmp; c++) ferry_buf_add(&arr[c], "{");
  char **f = pgsql_xcalloc(t->ncols, sizeof(char *));
  size_t pos = 0, len;
  const char *line;
  int64_t r = 0;
  while (pgsql_copy_next_line(j->data, j->len, &pos, &line, &len)) {
    pgsql_copy_fields(line, len, f, t->ncols);
    for (size_t c = 0; c < ncmp; c++) ferry_pg_array_elem(&arr[c], f[ci[c]]);
    for (size_t i = 0; i < t->ncols; i++) {
      free(f[i]);
      f[i] = NULL;
    }
    r++;
  }
  free(f);
  const char **p = pgsql_xcalloc(ncmp, sizeof(char *));
  for (size_t c = 0; c < ncmp; c++) {
    ferry_buf_add(&arr[c], "}");
    p[c] = arr[c].buf;
  }
  /* parameter number of item column i */
  ferry_buf sql = {0};
  ferry_buf_add(&sql, "SELECT ");
  for (size_t q = 0; q < t->nkeys; q++) ferry_buf_addf(&sql, "%ss.f%zu", q ? ", " : "", t->kidx[q] + 1);
  ferry_buf_add(&sql, ", d.ctid IS NULL, array_to_string(ARRAY[");
  for (size_t c = 0; c < ncmp; c++) {
    size_t i = ci[c];
    ferry_buf_addf(&sql, "%sCASE WHEN d.", c ? ", " : "");
    ferry_pg_add_ident(&sql, t->tcol[i]);
    ferry_buf_addf(&sql, "::text IS DISTINCT FROM s.f%zu::%s::text THEN ", i + 1, t->ttype[i]);
    ferry_pg_add_literal(&sql, t->tcol[i]);
    ferry_buf_add(&sql, " END");
  }
  ferry_buf_add(&sql, "]::text[], ', '), count(*) FILTER (WHERE d.ctid IS NULL) OVER (), "
                     "count(*) FILTER (WHERE d.ctid IS NOT NULL) OVER () FROM unnest(");
  for (size_t c = 0; c < ncmp; c++) ferry_buf_addf(&sql, "%s$%zu::text[]", c ? ", " : "", c + 1);
  ferry_buf_add(&sql, ") AS s(");
  for (size_t c = 0; c < ncmp; c++) ferry_buf_addf(&sql, "%sf%zu", c ? ", " : "", ci[c] + 1);
  ferry_buf_addf(&sql, ") LEFT JOIN %s d ON ", t->qname);
  for (size_t q = 0; q < t->nkeys; q++) {
    size_t i = t->kidx[q];
    if (q) ferry_buf_add(&sql, " AND ");
    ferry_buf_add(&sql, "d.");
    ferry_pg_add_ident(&sql, t->tcol[i]);
    ferry_buf_addf(&sql, " = s.f%zu::%s", i + 1, t->ttype[i]);
  }
  ferry_buf_add(&sql, " WHERE d.ctid IS NULL OR ROW(");
  for (size_t c = 0; c < ncmp; c++) {
    ferry_buf_add(&sql, c ? ", d." : "d.");
    ferry_pg_add_ident(&sql, t->tcol[ci[c]]);
  }
  ferry_buf_add(&sql, ")::text IS DISTINCT FROM ROW(");
  for (size_t c = 0; c < ncmp; c++) ferry_buf_addf(&sql, "%ss.f%zu::%s", c ? ", " : "", ci[c] + 1, t->ttype[ci[c]]);
  ferry_buf_addf(&sql, ")::text LIMIT %lld", (long long)k->c->max_keys_reported);
  char *begin = ferry_asprintf("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; %s", k->sets);
  j->step = 0;
  int rc = ferry_pg_query(j->conn->pg, begin, 0, NULL, on_cmp, j);
  if (rc >= 0) rc = ferry_pg_query(j->conn->pg, sql.buf, (int)ncmp, p, on_cmp, j);
  if (rc >= 0) rc = ferry_pg_query(j->conn->pg, "COMMIT", 0, NULL, on_cmp_end, j);
  free(begin);
  ferry_buf_free(&sql);
  for (size_t c = 0; c < ncmp; c++) ferry_buf_free(&arr[c]);
  free(arr);
  free(p);
  free(ci);
  if (rc < 0) pgsql_job_failf(j, FERRY_EINTERNAL, "pgsql sink: cannot queue a query");
}
