/* pgsql sink: preparing a target table before its first batch: its columns, types and primary key;
 * CREATE TABLE / ALTER TABLE (create_tables, missing_columns), type checks, refusals. */
#include "sink.h"

/* ---- tables: preparing --------------------------------------------------------------------------------------- */
void pgsql_table_free(ttable *t) {
  free(t->sig);
  free(t->src_name);
  free(t->name);
  free(t->qname);
  ferry_error_clear(&t->err);
  for (size_t i = 0; i < t->ntc; i++) {
    free(t->tc[i].name);
    free(t->tc[i].type);
  }
  free(t->tc);
  pgsql_strv_free(t->icol, t->ncols);
  pgsql_strv_free(t->stype, t->ncols);
  pgsql_strv_free(t->tcol, t->ncols);
  pgsql_strv_free(t->ttype, t->ncols);
  free(t->present);
  free(t->kidx);
  json_decref(t->actions);
  ferry_buf_free(&t->ddl);
  pgsql_strv_free(t->checks, t->nchecks);
  free(t->stage);
  free(t->stage_cols_ddl);
  free(t->ins_cols);
  free(t->sel_cols);
  free(t);
}

static const char *map_column(pgsql_sink *k, const char *table, const char *col, int *dropped) {
  *dropped = 0;
  const char *scopes[] = {table, "*"};
  for (int i = 0; i < 2; i++) {
    json_t *m = json_object_get(k->c->column_map, scopes[i]);
    json_t *v = m ? json_object_get(m, col) : NULL;
    if (!v) continue;
    if (json_is_null(v)) {
      *dropped = 1;
      return NULL;
    }
    return json_string_value(v);
  }
  return col;
}

ttable *pgsql_table_get(pgsql_sink *k, const ferry_item *it) {
  const json_t *b = it->body;
  const char *src = pgsql_jstr(b, "table");
  char *cols = json_dumps(json_object_get(b, "columns"), JSON_COMPACT);
  char *types = json_dumps(json_object_get(b, "types"), JSON_COMPACT | JSON_ENCODE_ANY);
  char *keys = json_dumps(json_object_get(b, "key_columns"), JSON_COMPACT | JSON_ENCODE_ANY);
  char *sig = ferry_asprintf("%s\x1f%s\x1f%s\x1f%s", src, cols ? cols : "", types ? types : "",
                             keys ? keys : "");
  free(cols);
  free(types);
  free(keys);
  for (ttable *t = k->tables; t; t = t->next)
    if (!strcmp(t->sig, sig)) {
      free(sig);
      return t;
    }
  ttable *t = pgsql_xcalloc(1, sizeof *t);
  t->sig = sig;
  t->src_name = pgsql_xstrdup(src);
  const char *mapped = pgsql_jstr(k->c->table_map, src);
  t->name = pgsql_xstrdup(mapped ? mapped : src);
  t->qname = pgsql_qname(k->c->schema, t->name);
  json_t *jc = json_object_get(b, "columns"), *jt = json_object_get(b, "types");
  t->ncols = json_array_size(jc);
  t->icol = pgsql_xcalloc(t->ncols, sizeof(char *));
  t->stype = pgsql_xcalloc(t->ncols, sizeof(char *));
  t->tcol = pgsql_xcalloc(t->ncols, sizeof(char *));
  t->ttype = pgsql_xcalloc(t->ncols, sizeof(char *));
  t->present = pgsql_xcalloc(t->ncols, sizeof(int));
  for (size_t i = 0; i < t->ncols; i++) {
    t->icol[i] = pgsql_xstrdup(json_string_value(json_array_get(jc, i)));
    const json_t *ty = json_array_get(jt, i);
    if (json_is_string(ty)) t->stype[i] = pgsql_xstrdup(json_string_value(ty));
    int dropped;
    const char *tc = map_column(k, src, t->icol[i], &dropped);
    if (dropped) t->dropped = 1;
    else t->tcol[i] = pgsql_xstrdup(tc);
  }
  t->actions = json_array();
  t->next = k->tables;
  k->tables = t;
  return t;
}

static tcolumn *tcol_find(ttable *t, const char *name) {
  for (size_t i = 0; i < t->ntc; i++)
    if (!strcmp(t->tc[i].name, name)) return &t->tc[i];
  return NULL;
}

/* Everything is decided: build the SQL pieces, mark ready, run the job and those that waited. */
static void table_ready(ttable *t) {
  ferry_buf st = {0}, ic = {0}, sc = {0};
  for (size_t i = 0; i < t->ncols; i++) {
    if (i) ferry_buf_add(&st, ", ");
    ferry_buf_addf(&st, "f%zu %s", i + 1, t->tcol[i] ? t->ttype[i] : "text");
    if (!t->tcol[i]) continue;
    if (ic.len) {
      ferry_buf_add(&ic, ", ");
      ferry_buf_add(&sc, ", ");
    }
    ferry_pg_add_ident(&ic, t->tcol[i]);
    ferry_buf_addf(&sc, "f%zu", i + 1);
  }
  t->stage_cols_ddl = ferry_buf_steal(&st);
  t->ins_cols = ferry_buf_steal(&ic);
  t->sel_cols = ferry_buf_steal(&sc);
  t->stage = ferry_asprintf("ferry_stage_%016llx",
                            (unsigned long long)ferry_hash64(t->stage_cols_ddl, strlen(t->stage_cols_ddl)) ^
                                 ferry_hash64(t->qname, strlen(t->qname)));
  t->state = TT_READY;
}

static void table_settle(ttable *t) {
  job *w = t->waiters;
  t->waiters = NULL;
  while (w) {
    job *next = w->next;
    w->next = NULL;
    pgsql_job_go(w);
    w = next;
  }
}

static void table_refuse(job *j, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
static void table_refuse(job *j, int code, const char *fmt, ...) {
  ttable *t = j->tt;
  pgsql_sink *k = j->k;
  if (k->mode == FERRY_MODE_PLAN) code = FERRY_EBLOCKED;
  else if (k->mode == FERRY_MODE_VERIFY) code = FERRY_EMISMATCH;
  va_list ap;
  va_start(ap, fmt);
  ferry_error_setv(&t->err, code, fmt, ap);
  va_end(ap);
  t->state = TT_REFUSED;
  ferry_log_error(k->ins, "%s", t->err.message);
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_copy(&e, &t->err);
  pgsql_job_fail(j, &e);
  ferry_error_clear(&e);
  table_settle(t);
}

/* A transient failure while preparing: the table is not refused; the job fails (and is retried) and the
 * next waiting job prepares again. */
static void prep_transient(job *j, const char *doing, const ferry_error *err) {
  ttable *t = j->tt;
  t->state = TT_NEW;
  ferry_buf_free(&t->ddl);
  pgsql_strv_free(t->checks, t->nchecks);
  t->checks = NULL;
  t->nchecks = t->ichk = 0;
  json_array_clear(t->actions);
  for (size_t i = 0; i < t->ntc; i++) {
    free(t->tc[i].name);
    free(t->tc[i].type);
  }
  free(t->tc);
  t->tc = NULL;
  t->ntc = 0;
  free(t->kidx);
  t->kidx = NULL;
  t->nkeys = 0;
  pgsql_job_fail_q(j, doing, err);
  table_settle(t);
}

static void prep_finish(job *j);

static void on_ddl(void *arg, int status, PGresult *res, const ferry_error *err) {
  job *j = arg;
  if (status) {
    if (err->code == FERRY_ETRANSIENT) return prep_transient(j, "changing the table", err);
    return table_refuse(j, err->code, "pgsql sink: table %s: changing the table failed: %s%s%s", j->tt->qname,
                        err->message, err->detail ? " (" : "", err->detail ? err->detail : "");
  }
  prep_finish(j);
}

static void prep_finish(job *j) {
  ttable *t = j->tt;
  pgsql_sink *k = j->k;
  if (t->ddl.len && k->mode == FERRY_MODE_RUN) {
    ferry_error e = FERRY_ERROR_INIT;
    if (ferry_task_intent(j->task, "write", &e) < 0) {
      pgsql_job_fail(j, &e);
      ferry_error_clear(&e);
      t->state = TT_NEW;
      table_settle(t);
      return;
    }
    char *sql = ferry_asprintf("BEGIN; %s; COMMIT", t->ddl.buf);
    ferry_buf_free(&t->ddl);
    int rc = ferry_pg_query(j->conn->pg, sql, 0, NULL, on_ddl, j);
    free(sql);
    if (rc < 0) pgsql_job_failf(j, FERRY_EINTERNAL, "pgsql sink: cannot queue a query");
    return;
  }
  ferry_buf_free(&t->ddl);
  table_ready(t);
  json_t *acts = t->actions;
  if (json_array_size(acts)) {
    size_t i;
    json_t *a;
    json_array_foreach(acts, i, a) ferry_log_info(k->ins, "table %s: %s%s", t->qname,
                                                  k->mode == FERRY_MODE_RUN ? "" : "would ", json_string_value(a));
  }
  pgsql_job_go(j);
  table_settle(t);
}

static void check_next_type(job *j);

static void on_type_checked(void *arg, int status, PGresult *res, const ferry_error *err) {
  job *j = arg;
  ttable *t = j->tt;
  const char *type = t->checks[t->ichk];
  if (status && err->code == FERRY_ETRANSIENT) {
    prep_transient(j, "checking column types", err);
    return;
  }
  if (status || PQgetisnull(res, 0, 0)) {
    table_refuse(j, FERRY_EINVAL,
                 "pgsql sink: table %s: cannot create column(s) of type \"%s\" on the target: the type does not "
                 "exist there; create the table or column yourself, or use create_tables \"joget\"",
                 t->qname, type);
    return;
  }
  t->ichk++;
  check_next_type(j);
}

static void check_next_type(job *j) {
  ttable *t = j->tt;
  if (t->ichk >= t->nchecks) {
    prep_finish(j);
    return;
  }
  const char *p[] = {t->checks[t->ichk]};
  if (ferry_pg_query(j->conn->pg, "SELECT pg_catalog.to_regtype($1)::text", 1, p, on_type_checked, j) < 0)
    pgsql_job_failf(j, FERRY_EINTERNAL, "pgsql sink: cannot queue a query");
}

/* Type for a column the sink creates: the source's type when allowed and usable, else Joget's. */
static char *create_type(job *j, size_t i, int joget, int *needs_check, char **base) {
  ttable *t = j->tt;
  *needs_check = 0;
  *base = NULL;
  if (!joget && t->stype[i]) {
    char *b = pgsql_type_base_for_check(t->stype[i]);
    if (b) {
      *needs_check = 1;
      *base = b;
      return pgsql_xstrdup(t->stype[i]);
    }
    return NULL; /* unusable type text: refused by the caller */
  }
  const char *c = t->tcol[i];
  if (!strcmp(c, "id") || !strcmp(c, "createdby") || !strcmp(c, "createdbyname") || !strcmp(c, "modifiedby") ||
      !strcmp(c, "modifiedbyname"))
    return pgsql_xstrdup("character varying(255)");
  if (!strcmp(c, "datecreated") || !strcmp(c, "datemodified")) return pgsql_xstrdup("timestamp without time zone");
  return pgsql_xstrdup("text");
}

static void add_check(ttable *t, char *base) {
  for (size_t i = 0; i < t->nchecks; i++)
    if (!strcmp(t->checks[i], base)) {
      free(base);
      return;
    }
  t->checks = pgsql_xrealloc(t->checks, (t->nchecks + 1) * sizeof(char *));
  t->checks[t->nchecks++] = base;
}

static void prep_missing_table(job *j) {
  ttable *t = j->tt;
  pgsql_sink *k = j->k;
  if (k->c->create_tables == PGSQL_CREATE_REFUSE)
    return table_refuse(j, FERRY_ENOENT, "pgsql sink: table %s does not exist on the target (create_tables is "
                        "\"refuse\"): create it first", t->qname);
  if (k->mode == FERRY_MODE_VERIFY)
    return table_refuse(j, FERRY_EMISMATCH, "pgsql sink: table %s does not exist on the target", t->qname);
  int joget = k->c->create_tables == PGSQL_CREATE_JOGET;
  for (size_t i = 0; i < t->ncols && !joget; i++)
    if (t->tcol[i] && !t->stype[i]) joget = 1; /* the item has no (complete) types: Joget's layout */
  /* key: the item's key columns, else Joget's "id" */
  json_t *keys = json_object_get(j->it->body, "key_columns");
  size_t nk = json_array_size(keys);
  t->kidx = pgsql_xcalloc(nk ? nk : 1, sizeof(size_t));
  t->nkeys = 0;
  for (size_t q = 0; q < nk; q++) {
    const char *kn = json_string_value(json_array_get(keys, q));
    size_t i = 0;
    for (; i < t->ncols; i++)
      if (kn && !strcmp(t->icol[i], kn) && t->tcol[i]) break;
    if (i == t->ncols)
      return table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s: key column \"%s\" of the source is left out "
                          "by column_map or missing: cannot create the table with a primary key", t->qname,
                          kn ? kn : "?");
    t->kidx[t->nkeys++] = i;
  }
  if (!t->nkeys) {
    for (size_t i = 0; i < t->ncols; i++)
      if (t->tcol[i] && !strcmp(t->tcol[i], "id")) t->kidx[t->nkeys++] = i;
  }
  if (!t->nkeys)
    return table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s does not exist and the items name no key column "
                        "(key_columns) nor an \"id\" column: cannot create it with a primary key", t->qname);
  ferry_buf ddl = {0};
  ferry_buf_addf(&ddl, "CREATE TABLE IF NOT EXISTS %s (", t->qname);
  int first = 1;
  for (size_t i = 0; i < t->ncols; i++) {
    if (!t->tcol[i]) {
      t->ttype[i] = pgsql_xstrdup("text");
      continue;
    }
    int check;
    char *base;
    char *type = create_type(j, i, joget, &check, &base);
    if (!type) {
      ferry_buf_free(&ddl);
      return table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s: column \"%s\" has type \"%s\", which ferry "
                          "does not create by itself: create the table on the target first, or use "
                          "create_tables \"joget\"", t->qname, t->icol[i], t->stype[i]);
    }
    if (check) add_check(t, base);
    if (!first) ferry_buf_add(&ddl, ", ");
    first = 0;
    ferry_pg_add_ident(&ddl, t->tcol[i]);
    ferry_buf_addf(&ddl, " %s", type);
    t->ttype[i] = type;
    t->present[i] = 1;
  }
  ferry_buf_add(&ddl, ", PRIMARY KEY (");
  for (size_t q = 0; q < t->nkeys; q++) {
    if (q) ferry_buf_add(&ddl, ", ");
    ferry_pg_add_ident(&ddl, t->tcol[t->kidx[q]]);
  }
  ferry_buf_add(&ddl, "))");
  t->ddl = ddl;
  json_array_append_new(t->actions, json_string(joget ? "create the table with Joget's layout"
                                                      : "create the table with the source's column types"));
  check_next_type(j);
}

static void prep_existing_table(job *j) {
  ttable *t = j->tt;
  pgsql_sink *k = j->k;
  if (t->relkind != 'r' && t->relkind != 'p')
    return table_refuse(j, FERRY_EINVAL, "pgsql sink: %s on the target is not a table (relkind %c)", t->qname,
                        t->relkind);
  ferry_buf missing = {0};
  for (size_t i = 0; i < t->ncols; i++) {
    if (!t->tcol[i]) {
      t->ttype[i] = pgsql_xstrdup("text");
      continue;
    }
    tcolumn *tc = tcol_find(t, t->tcol[i]);
    if (tc) {
      t->present[i] = 1;
      t->ttype[i] = pgsql_xstrdup(tc->type);
      const char *why;
      if (t->stype[i] && !pgsql_type_compatible(t->stype[i], tc->type, &why)) {
        ferry_buf_free(&missing);
        return table_refuse(j, FERRY_EINVAL,
                            "pgsql sink: table %s: column \"%s\" is %s on the target but %s on the source: "
                            "incompatible (%s); nothing of this table was written. Change the target column's "
                            "type, or map the column elsewhere (column_map)",
                            t->qname, tc->name, tc->type, t->stype[i], why);
      }
      if (t->stype[i] && pgsql_type_narrower_string(t->stype[i], tc->type))
        ferry_log_warn(k->ins, "table %s: column \"%s\" is %s on the target but %s on the source: a longer value "
                       "fails its batch", t->qname, tc->name, tc->type, t->stype[i]);
      continue;
    }
    ferry_buf_addf(&missing, "%s\"%s\"", missing.len ? ", " : "", t->tcol[i]);
  }
  if (missing.len && k->c->missing_columns == PGSQL_MISSING_REFUSE) {
    table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s lacks column(s) %s of the source (missing_columns is "
                 "\"refuse\"); nothing of this table was written. Add them, or leave them out (column_map: null)",
                 t->qname, missing.buf);
    ferry_buf_free(&missing);
    return;
  }
  if (missing.len && k->mode == FERRY_MODE_VERIFY) {
    table_refuse(j, FERRY_EMISMATCH, "pgsql sink: table %s lacks column(s) %s", t->qname, missing.buf);
    ferry_buf_free(&missing);
    return;
  }
  /* primary key of the target, in key order, as item columns */
  size_t nk = 0;
  for (size_t q = 0; q < t->ntc; q++)
    if (t->tc[q].pkpos > 0) nk++;
  if (!nk) {
    ferry_buf_free(&missing);
    return table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s has no primary key on the target: ferry needs one "
                        "to apply its conflict policy; add it", t->qname);
  }
  t->kidx = pgsql_xcalloc(nk, sizeof(size_t));
  t->nkeys = nk;
  for (size_t q = 0; q < t->ntc; q++) {
    tcolumn *tc = &t->tc[q];
    if (tc->pkpos <= 0) continue;
    size_t i = 0;
    for (; i < t->ncols; i++)
      if (t->tcol[i] && !strcmp(t->tcol[i], tc->name)) break;
    if (i == t->ncols || (size_t)tc->pkpos > nk) {
      ferry_buf_free(&missing);
      return table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s: primary key column \"%s\" of the target gets "
                          "no value from the source; map a source column to it (column_map)", t->qname, tc->name);
    }
    t->kidx[tc->pkpos - 1] = i;
  }
  /* NOT NULL columns without a default the source does not fill */
  for (size_t q = 0; q < t->ntc; q++) {
    tcolumn *tc = &t->tc[q];
    if (!tc->notnull || tc->hasdef) continue;
    size_t i = 0;
    for (; i < t->ncols; i++)
      if (t->tcol[i] && !strcmp(t->tcol[i], tc->name)) break;
    if (i == t->ncols) {
      ferry_buf_free(&missing);
      return table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s: column \"%s\" is NOT NULL without a default on "
                          "the target and the source has no value for it; give it a default or map a source "
                          "column to it", t->qname, tc->name);
    }
  }
  if (missing.len) {
    ferry_buf ddl = {0};
    for (size_t i = 0; i < t->ncols; i++) {
      if (!t->tcol[i] || t->present[i]) continue;
      int check;
      char *base;
      char *type = create_type(j, i, k->c->create_tables == PGSQL_CREATE_JOGET, &check, &base);
      if (!type) type = pgsql_xstrdup("text"); /* a type we cannot create: its text form */
      if (check) add_check(t, base);
      if (ddl.len) ferry_buf_add(&ddl, "; ");
      ferry_buf_addf(&ddl, "ALTER TABLE %s ADD COLUMN IF NOT EXISTS ", t->qname);
      ferry_pg_add_ident(&ddl, t->tcol[i]);
      ferry_buf_addf(&ddl, " %s", type);
      free(t->ttype[i]);
      t->ttype[i] = type;
      t->present[i] = 2; /* added */
    }
    t->ddl = ddl;
    char *a = ferry_asprintf("add column(s) %s", missing.buf);
    json_array_append_new(t->actions, json_string(a));
    free(a);
  }
  ferry_buf_free(&missing);
  check_next_type(j);
}

static void on_target_info(void *arg, int status, PGresult *res, const ferry_error *err) {
  job *j = arg;
  ttable *t = j->tt;
  if (status) {
    if (err->code == FERRY_ETRANSIENT) return prep_transient(j, "reading the target table", err);
    return table_refuse(j, err->code, "pgsql sink: table %s: reading the target table failed: %s%s%s", t->qname,
                        err->message, err->detail ? " (" : "", err->detail ? err->detail : "");
  }
  int n = PQntuples(res);
  t->exists = n > 0;
  if (t->exists) {
    t->relkind = PQgetvalue(res, 0, 0)[0];
    t->tc = pgsql_xcalloc((size_t)n, sizeof(tcolumn));
    for (int r = 0; r < n; r++) {
      if (PQgetisnull(res, r, 1)) continue;
      tcolumn *tc = &t->tc[t->ntc++];
      tc->name = pgsql_xstrdup(PQgetvalue(res, r, 1));
      tc->type = pgsql_xstrdup(PQgetvalue(res, r, 2));
      tc->notnull = PQgetvalue(res, r, 3)[0] == 't';
      tc->hasdef = PQgetvalue(res, r, 4)[0] == 't';
      tc->pkpos = PQgetisnull(res, r, 5) ? 0 : atoi(PQgetvalue(res, r, 5));
    }
    prep_existing_table(j);
  } else {
    prep_missing_table(j);
  }
}

void pgsql_prep_start(job *j) {
  ttable *t = j->tt;
  t->state = TT_PREPARING;
  const char *p[] = {j->k->c->schema, t->name};
  if (ferry_pg_query(j->conn->pg,
                     "SELECT c.relkind::text, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
                     "a.attnotnull, (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''), "
                     "(SELECT k.ord FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(n, ord) WHERE k.n = a.attnum) "
                     "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                     "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                     "AND NOT a.attisdropped "
                     "LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary "
                     "WHERE n.nspname = $1 AND c.relname = $2 ORDER BY a.attnum",
                     2, p, on_target_info, j) < 0)
    pgsql_job_failf(j, FERRY_EINTERNAL, "pgsql sink: cannot queue a query");
}
