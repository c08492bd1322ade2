/* pgsql source: the catalog phase: the selection (names, patterns, a Joget app, users), columns,
 * primary and foreign keys, counts; then the stream begins. */
#include "source.h"

/* ---- catalog phase ----------------------------------------------------------------------------------------- */
static stable *table_by_oid(pgsql_src *s, const char *oid) {
  for (size_t i = 0; i < s->nt; i++)
    if (!strcmp(s->t[i].oid, oid)) return &s->t[i];
  return NULL;
}

static char *oid_array(pgsql_src *s) {
  ferry_buf sb = {0};
  ferry_buf_add(&sb, "{");
  for (size_t i = 0; i < s->nt; i++) ferry_pg_array_elem(&sb, s->t[i].oid);
  ferry_buf_add(&sb, "}");
  return ferry_buf_steal(&sb);
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
  if (s->c->count != PGSQL_COUNT_NONE) ferry_source_total(s->ins, total);
  size_t copying = 0;
  for (size_t i = 0; i < s->nt; i++) copying += s->t[i].state != T_REFUSED;
  ferry_log_info(s->ins, "%zu table(s) selected, %zu to copy in foreign-key order, about %lld batch(es)",
                 s->nt, copying, (long long)total);
  s->phase = PH_STREAM;
  pgsql_start_workers(s);
  pgsql_src_pump(s);
}

static void on_counts(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return pgsql_src_fail_q(s, "counting rows", err);
  int col = 0;
  for (size_t i = 0; i < s->nt; i++) {
    stable *t = &s->t[i];
    if (t->count == -2) t->count = atoll(PQgetvalue(res, 0, col++));
  }
  begin_stream(s);
}

static void count_rows(pgsql_src *s) {
  int exact = s->c->count == PGSQL_COUNT_EXACT, none = s->c->count == PGSQL_COUNT_NONE;
  ferry_buf sql = {0};
  for (size_t i = 0; i < s->nt; i++) {
    stable *t = &s->t[i];
    t->count = -1;
    if (none || t->state == T_REFUSED || (!exact && t->reltuples >= 0)) continue;
    t->count = -2; /* to be counted */
    ferry_buf_addf(&sql, "%s(SELECT count(*) FROM %s)", sql.len ? ", " : "SELECT ", t->qname);
  }
  if (!sql.len) {
    begin_stream(s);
    return;
  }
  if (ferry_pg_query(s->pg0, sql.buf, 0, NULL, on_counts, s) < 0)
    pgsql_src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  ferry_buf_free(&sql);
}

static void on_fkeys(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return pgsql_src_fail_q(s, "reading foreign keys", err);
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
  pgsql_order_tables(s);
  count_rows(s);
}

static void on_pkeys(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return pgsql_src_fail_q(s, "reading primary keys", err);
  for (size_t i = 0; i < s->nt; i++) s->t[i].keys = json_array();
  for (int r = 0; r < PQntuples(res); r++) {
    stable *t = table_by_oid(s, PQgetvalue(res, r, 0));
    if (t) json_array_append_new(t->keys, json_string(PQgetvalue(res, r, 1)));
  }
  ferry_buf nokey = {0};
  for (size_t i = 0; i < s->nt; i++) {
    stable *t = &s->t[i];
    t->nkeys = json_array_size(t->keys);
    if (!t->nkeys) {
      ferry_buf_addf(&nokey, "%s%s", nokey.len ? ", " : "", t->name);
      continue;
    }
    t->key_idx = pgsql_xcalloc(t->nkeys, sizeof(size_t));
    ferry_buf ob = {0}, kt = {0};
    for (size_t k = 0; k < t->nkeys; k++) {
      const char *kn = json_string_value(json_array_get(t->keys, k));
      for (size_t ci = 0; ci < t->ncols; ci++)
        if (!strcmp(kn, json_string_value(json_array_get(t->columns, ci)))) t->key_idx[k] = ci;
      if (k) {
        ferry_buf_add(&ob, ", ");
        ferry_buf_add(&kt, ", ");
      }
      ferry_pg_add_ident(&ob, kn);
      ferry_pg_add_ident(&kt, kn);
    }
    t->order_by = ferry_buf_steal(&ob);
    t->key_tuple = t->nkeys > 1 ? ferry_asprintf("(%s)", kt.buf) : ferry_buf_steal(&kt);
    ferry_buf_free(&kt);
  }
  if (nokey.len) {
    pgsql_src_fail(s, FERRY_EINVAL,
                   "pgsql source: table(s) without a primary key: %s. ferry reads and writes tables in key "
                   "order and needs the key to copy again safely; leave them out (option \"exclude\") or "
                   "give them a key",
                   nokey.buf);
    ferry_buf_free(&nokey);
    return;
  }
  char *oids = oid_array(s);
  const char *p[] = {oids};
  if (ferry_pg_query(s->pg0,
                     "SELECT conrelid::text, confrelid::text, conname, confrelid::regclass::text "
                     "FROM pg_catalog.pg_constraint WHERE contype = 'f' AND conrelid = ANY($1::oid[]) "
                     "ORDER BY conrelid, conname",
                     1, p, on_fkeys, s) < 0)
    pgsql_src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  free(oids);
}

static void on_columns(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return pgsql_src_fail_q(s, "reading columns", err);
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
    ferry_buf sc = {0};
    for (size_t k = 0; k < t->ncols; k++) {
      if (k) ferry_buf_add(&sc, ", ");
      ferry_pg_add_ident(&sc, json_string_value(json_array_get(t->columns, k)));
    }
    t->select_cols = ferry_buf_steal(&sc);
  }
  char *oids = oid_array(s);
  const char *p[] = {oids};
  if (ferry_pg_query(s->pg0,
                     "SELECT i.indrelid::text, a.attname FROM pg_catalog.pg_index i "
                     "CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) "
                     "JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
                     "WHERE i.indisprimary AND i.indrelid = ANY($1::oid[]) ORDER BY i.indrelid, k.ord",
                     1, p, on_pkeys, s) < 0)
    pgsql_src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  free(oids);
}

static void on_tables(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return pgsql_src_fail_q(s, "reading the selected tables", err);
  int n = PQntuples(res);
  if (n == 0) {
    pgsql_src_fail(s, FERRY_EINVAL,
                   "pgsql source: nothing to copy: every selected table is left out by \"exclude\"");
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
    pgsql_src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  free(oids);
}

static void read_tables(pgsql_src *s) {
  if (json_object_size(s->names) == 0) {
    pgsql_src_fail(s, FERRY_EINVAL, "pgsql source: the selection matches no table in schema %s", s->c->schema);
    return;
  }
  ferry_buf names = {0}, excl = {0};
  ferry_buf_add(&names, "{");
  const char *k;
  json_t *v;
  json_object_foreach(s->names, k, v) ferry_pg_array_elem(&names, k);
  ferry_buf_add(&names, "}");
  ferry_buf_add(&excl, "{");
  for (size_t i = 0; s->c->exclude && s->c->exclude[i]; i++) ferry_pg_array_elem(&excl, s->c->exclude[i]);
  ferry_buf_add(&excl, "}");
  const char *p[] = {s->c->schema, names.buf, excl.buf};
  if (ferry_pg_query(s->pg0,
                     "SELECT c.oid::text, c.relname, c.reltuples::bigint, pg_catalog.pg_table_size(c.oid) "
                     "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                     "WHERE n.nspname = $1 AND c.relname = ANY($2::text[]) AND c.relkind IN ('r', 'p') "
                     "AND NOT c.relispartition AND NOT (c.relname LIKE ANY($3::text[])) ORDER BY c.relname",
                     3, p, on_tables, s) < 0)
    pgsql_src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  ferry_buf_free(&names);
  ferry_buf_free(&excl);
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
    char *doing = step == SEL_APP ? ferry_asprintf("selecting the form tables of app \"%s\" from %s.app_form "
                                                   "(is this a Joget database?)", c->app, c->schema)
                                  : pgsql_xstrdup("selecting tables");
    pgsql_src_fail_q(s, doing, err);
    free(doing);
    return;
  }
  ferry_buf missing = {0};
  int found = 0;
  for (int r = 0; r < PQntuples(res); r++) {
    const char *what = PQgetvalue(res, r, 0);
    if (PQgetisnull(res, r, 1)) {
      ferry_buf_addf(&missing, "%s\"%s\"", missing.len ? ", " : "", what);
      continue;
    }
    found++;
    json_object_set_new(s->names, PQgetvalue(res, r, 1), json_true());
  }
  if (missing.len) {
    switch (step) {
      case SEL_TABLES:
        pgsql_src_fail(s, FERRY_EINVAL, "pgsql source: table(s) %s not found in schema \"%s\" of the source "
                       "(names are exact and case-sensitive)", missing.buf, c->schema);
        break;
      case SEL_PATTERNS:
        pgsql_src_fail(s, FERRY_EINVAL, "pgsql source: pattern(s) %s match no table in schema \"%s\"", missing.buf,
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
  ferry_buf_free(&missing);
  if (s->failed) return;
  if (step == SEL_USERS && !found) {
    pgsql_src_fail(s, FERRY_EINVAL, "pgsql source: \"users\": no dir_* table in schema \"%s\" (is this a Joget "
                   "database?)", c->schema);
    return;
  }
  if (step == SEL_APP && !found && PQntuples(res) == 0) {
    pgsql_src_fail(s, FERRY_EINVAL, "pgsql source: app \"%s\" (version %s) has no forms in %s.app_form", c->app,
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
  ferry_buf sql = {0};
  char *arr = NULL, *appq = NULL;
  const char *p[3] = {c->schema, NULL, NULL};
  int np = 2;
  switch (step) {
    case SEL_TABLES:
      {
        size_t n = 0;
        while (c->tables[n]) n++;
        arr = ferry_pg_text_array((const char *const *)c->tables, n);
      }
      ferry_buf_addf(&sql, "SELECT x.name, c.relname FROM unnest($2::text[]) AS x(name) %s c.relname = x.name "
                          "ORDER BY 1", rel_join);
      break;
    case SEL_PATTERNS: {
      size_t n = 0;
      while (c->patterns[n]) n++;
      arr = ferry_pg_text_array((const char *const *)c->patterns, n);
      ferry_buf_addf(&sql, "SELECT x.pat, c.relname FROM unnest($2::text[]) AS x(pat) %s c.relname LIKE x.pat "
                          "ORDER BY 1, 2", rel_join);
      break;
    }
    case SEL_USERS:
      arr = pgsql_xstrdup("{\"dir\\\\_%\"}");
      ferry_buf_addf(&sql, "SELECT x.pat, c.relname FROM unnest($2::text[]) AS x(pat) %s c.relname LIKE x.pat "
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
        cond = ferry_asprintf("f.appversion = (SELECT max(g.appversion) FROM %s g WHERE g.appid = $2)", appq);
      } else if (!strcmp(v, "published")) {
        cond = ferry_asprintf("f.appversion IN (SELECT a.appversion FROM %s a WHERE a.appid = $2 AND "
                              "a.published)", appapp);
      } else {
        cond = pgsql_xstrdup("f.appversion = $3::bigint");
        p[2] = v;
        np = 3;
      }
      arr = pgsql_xstrdup(c->app);
      ferry_buf_addf(&sql,
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
    pgsql_src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
  }
  free(arr);
  free(appq);
  ferry_buf_free(&sql);
}

static void on_snapshot(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return pgsql_src_fail_q(s, "exporting the read snapshot", err);
  s->snapshot = pgsql_xstrdup(PQgetvalue(res, 0, 0));
  ferry_log_debug(s->ins, "reading in snapshot %s", s->snapshot);
  select_step(s, SEL_TABLES);
}

void pgsql_on_begun(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgsql_src *s = arg;
  if (s->stopped || s->failed) return;
  if (status) return pgsql_src_fail_q(s, "opening the read-only snapshot", err);
  if (ferry_pg_query(s->pg0, "SELECT pg_catalog.pg_export_snapshot()", 0, NULL, on_snapshot, s) < 0)
    pgsql_src_fail(s, FERRY_EINTERNAL, "pgsql source: cannot queue a query");
}
