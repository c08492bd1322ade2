/* sql sink: record items (batches of one table) into MySQL/MariaDB or PostgreSQL tables, through the SQL
 * service.
 *
 * Per target table, before its first row (the table's other batches wait): read its columns and primary key
 * from the catalogue; a missing table is created (create_tables: the source's types, mapped to the target
 * engine by util.c, or Joget's form-table layout); a missing column is added or refuses the table
 * (missing_columns); a column whose type cannot take the source's values refuses the table, naming table,
 * column and both types. A refused table fails every batch of it; nothing of it is written.
 * Per batch: sink_write.c. The item contract and the type table: docs/plugins/sql.md.
 */
#include "sink.h"

/* ---- parents first: a batch waits while a batch of a table in its "after" is in flight ------------------- */
static void go(job *j);

static int after_busy(job *j) {
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(j->it->body, "after"), i, v) {
    json_t *n = json_is_string(v) ? json_object_get(j->k->inflight, json_string_value(v)) : NULL;
    if (n && json_integer_value(n) > 0) return 1;
  }
  return 0;
}

static void recheck_waiting(sqlp_sink *k) {
  if (k->rechecking) {
    k->recheck_again = 1;
    return;
  }
  k->rechecking = 1;
  do {
    k->recheck_again = 0;
    for (job **pp = &k->waiting; *pp;) {
      job *j = *pp;
      if (after_busy(j)) {
        pp = &j->next;
        continue;
      }
      *pp = j->next;
      j->next = NULL;
      go(j);
      pp = &k->waiting; /* the list may have changed */
    }
  } while (k->recheck_again);
  k->rechecking = 0;
}

static void count(job *j, int d) {
  const char *t = j->tt->src_name; /* the item is gone once its task is done */
  json_t *n = json_object_get(j->k->inflight, t);
  json_object_set_new(j->k->inflight, t, json_integer((n ? json_integer_value(n) : 0) + d));
}

/* ---- completing jobs ------------------------------------------------------------------------------------ */
static void job_free(job *j) {
  sqlp_job_free_vals(j);
  json_decref(j->existing);
  json_decref(j->diffs);
  ferry_error_clear(&j->err);
  free(j);
}

/* The batch no longer counts as in flight before the core hears of it (it may hand over the next one at
 * once); held batches are looked at again after. */
void sqlp_job_done(job *j, unsigned flags) {
  sqlp_sink *k = j->k;
  int counted = j->counted;
  if (counted) count(j, -1);
  ferry_task_done(j->task, flags);
  job_free(j);
  if (counted) recheck_waiting(k);
}

void sqlp_job_fail(job *j, const ferry_error *err) {
  sqlp_sink *k = j->k;
  int counted = j->counted;
  if (counted) count(j, -1);
  ferry_task_fail(j->task, err);
  job_free(j);
  if (counted) recheck_waiting(k);
}

void sqlp_job_failf(job *j, int code, const char *fmt, ...) {
  ferry_error e = FERRY_ERROR_INIT;
  va_list ap;
  va_start(ap, fmt);
  ferry_error_setv(&e, code, fmt, ap);
  va_end(ap);
  sqlp_job_fail(j, &e);
  ferry_error_clear(&e);
}

void sqlp_error_from(ferry_error *dst, const ferry_error *err, const char *fmt, ...) {
  ferry_error_copy(dst, err);
  if (!dst->code) ferry_error_set(dst, FERRY_EIO, "failed");
  if (dst->detail) { /* the engine's own words belong in the message the user sees */
    char *m = ferry_asprintf("%s (%s)", dst->message ? dst->message : "", dst->detail);
    ferry_error_set(dst, dst->code, "%s", m);
    free(m);
  }
  va_list ap;
  va_start(ap, fmt);
  char *pre = ferry_vasprintf(fmt, ap);
  va_end(ap);
  ferry_error_prefix(dst, "%s", pre);
  free(pre);
}

void sqlp_job_fail_q(job *j, const char *doing, const ferry_error *err) {
  ferry_error e = FERRY_ERROR_INIT;
  sqlp_error_from(&e, err, "sql sink: table %s: %s", j->tt ? j->tt->name : "?", doing);
  sqlp_job_fail(j, &e);
  ferry_error_clear(&e);
}

/* ---- tables ------------------------------------------------------------------------------------------------ */
static void table_free(ttable *t) {
  free(t->src_name);
  free(t->name);
  free(t->qname);
  ferry_error_clear(&t->err);
  json_decref(t->tcols);
  json_decref(t->tpk);
  for (size_t i = 0; i < t->ncols; i++) free(t->cols[i]), free(t->stype[i]);
  free(t->cols);
  free(t->stype);
  free(t->tcls);
  free(t->tbit);
  free(t->absent);
  free(t->src_idx);
  free(t->kidx);
  json_decref(t->ddl);
  json_decref(t->actions);
  free(t);
}

static ttable *table_get(sqlp_sink *k, const ferry_item *it) {
  const char *src = json_string_value(json_object_get(it->body, "table"));
  for (ttable *t = k->tables; t; t = t->next)
    if (!strcmp(t->src_name, src)) return t;
  ttable *t = sqlp_xcalloc(1, sizeof *t);
  t->src_name = sqlp_xstrdup(src);
  json_t *m = k->c->table_map ? json_object_get(k->c->table_map, src) : NULL;
  t->name = sqlp_xstrdup(m ? json_string_value(m) : src);
  t->qname = ferry_sql_quote_ident(k->db, t->name);
  const char *eng = json_string_value(json_object_get(it->body, "engine"));
  t->se = eng && !strcmp(eng, "mysql") ? FERRY_SQL_MYSQL : eng && !strcmp(eng, "sqlite") ? FERRY_SQL_SQLITE
                                                                                          : FERRY_SQL_POSTGRESQL;
  json_t *cols = json_object_get(it->body, "columns"), *types = json_object_get(it->body, "types");
  t->nitem = json_array_size(cols);
  t->cols = sqlp_xcalloc(t->nitem ? t->nitem : 1, sizeof(char *));
  t->stype = sqlp_xcalloc(t->nitem ? t->nitem : 1, sizeof(char *));
  t->src_idx = sqlp_xcalloc(t->nitem ? t->nitem : 1, sizeof(size_t));
  for (size_t i = 0; i < t->nitem; i++) {
    const char *to = sqlp_map_column(k->c, src, json_string_value(json_array_get(cols, i)));
    if (!to) continue;
    t->src_idx[t->ncols] = i;
    t->cols[t->ncols] = sqlp_xstrdup(to);
    const char *ty = json_string_value(json_array_get(types, i));
    t->stype[t->ncols] = ty ? sqlp_xstrdup(ty) : NULL;
    t->ncols++;
  }
  t->tcls = sqlp_xcalloc(t->ncols, sizeof(ferry_sql_type));
  t->tbit = sqlp_xcalloc(t->ncols, 1);
  t->absent = sqlp_xcalloc(t->ncols, 1);
  t->tcols = json_object();
  t->tpk = json_array();
  t->ddl = json_array();
  t->actions = json_array();
  t->next = k->tables;
  k->tables = t;
  return t;
}

static void table_settle(ttable *t, int state) {
  t->state = state;
  job *w = t->waiters;
  t->waiters = NULL;
  while (w) {
    job *n = w->next;
    w->next = NULL;
    go(w);
    w = n;
  }
}

static void refuse(job *j, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
static void refuse(job *j, int code, const char *fmt, ...) {
  ttable *t = j->tt;
  va_list ap;
  va_start(ap, fmt);
  ferry_error_setv(&t->err, code, fmt, ap);
  va_end(ap);
  if (j->k->mode == FERRY_MODE_PLAN) t->err.code = FERRY_EBLOCKED; /* plan: the table would be refused */
  ferry_log_error(j->k->ins, "%s", t->err.message);
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_copy(&e, &t->err);
  sqlp_job_fail(j, &e);
  ferry_error_clear(&e);
  table_settle(t, TT_REFUSED);
}

static int item_col(const ttable *t, const char *name) {
  for (size_t i = 0; i < t->ncols; i++)
    if (!strcasecmp(t->cols[i], name)) return (int)i; /* MySQL column names are never case-sensitive */
  return -1;
}

static void run_ddl(job *j);

static void on_ddl(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  job *j = arg;
  ttable *t = j->tt;
  if (status) {
    ferry_error e = FERRY_ERROR_INIT;
    sqlp_error_from(&e, err, "sql sink: table %s: %s", t->name, json_string_value(json_array_get(t->ddl, 0)));
    ferry_error_copy(&t->err, &e);
    sqlp_job_fail(j, &e);
    ferry_error_clear(&e);
    table_settle(t, TT_REFUSED);
    return;
  }
  json_array_remove(t->ddl, 0);
  run_ddl(j);
}

static void run_ddl(job *j) {
  ttable *t = j->tt;
  if (j->k->mode != FERRY_MODE_RUN) json_array_clear(t->ddl); /* plan names them in "would"; verify reports */
  if (!json_array_size(t->ddl)) {
    table_settle(t, TT_READY);
    go(j);
    return;
  }
  const char *q = json_string_value(json_array_get(t->ddl, 0));
  ferry_log_info(j->k->ins, "sql sink: %s", q);
  if (ferry_sql_query(j->k->db, NULL, q, 0, NULL, NULL, on_ddl, j) < 0)
    sqlp_job_failf(j, FERRY_EINTERNAL, "sql sink: cannot queue DDL");
}

/* A source column of a type the sink has no mapping for, bound for a column it would create. */
static void refuse_unknown(job *j, size_t i) {
  ttable *t = j->tt;
  refuse(j, FERRY_EINVAL,
         "sql sink: table %s: column \"%s\" has the %s type %s, which this sink cannot map to %s (%s); nothing "
         "of the table was written (create the column on the target with a type that takes its text form, "
         "e.g. text, or leave it out with column_map)",
         t->name, t->cols[i], sqlp_engine_name(t->se), t->stype[i], sqlp_engine_name(j->k->engine),
         ferry_sql_endpoint(j->k->db));
}

static void prepare_keys(job *j, json_t *keys);

/* The target as read: decide create / add / refuse, then the key. */
static void prepare(job *j) {
  sqlp_sink *k = j->k;
  ttable *t = j->tt;
  json_t *keys = json_array(); /* the item's key columns, named as on the target (column_map) */
  {
    size_t n;
    json_t *kv;
    json_array_foreach(json_object_get(j->it->body, "key_columns"), n, kv) {
      const char *to = json_is_string(kv) ? sqlp_map_column(k->c, t->src_name, json_string_value(kv)) : NULL;
      if (!to) {
        json_decref(keys);
        refuse(j, FERRY_EINVAL, "sql sink: table %s: key column \"%s\" is left out by column_map", t->name,
               json_is_string(kv) ? json_string_value(kv) : "?");
        return;
      }
      json_array_append_new(keys, json_string(to));
    }
  }
  prepare_keys(j, keys);
  json_decref(keys);
}

static void prepare_keys(job *j, json_t *keys) {
  sqlp_sink *k = j->k;
  ttable *t = j->tt;
  const char *ep = ferry_sql_endpoint(k->db);
  if (!json_object_size(t->tcols)) { /* a missing table */
    if (k->c->create_tables == SQLP_CREATE_REFUSE) {
      refuse(j, FERRY_ENOENT, "sql sink: table %s does not exist in %s and create_tables is \"refuse\"", t->name, ep);
      return;
    }
    if (!json_array_size(keys) && item_col(t, "id") < 0) {
      refuse(j, FERRY_EINVAL, "sql sink: table %s: the items name no key columns and have no \"id\"", t->name);
      return;
    }
    ferry_buf ddl = {0};
    ferry_buf_addf(&ddl, "CREATE TABLE %s (", t->qname);
    for (size_t i = 0; i < t->ncols; i++) {
      int key = 0;
      size_t n;
      json_t *kv;
      json_array_foreach(keys, n, kv) key |= !strcmp(json_string_value(kv), t->cols[i]);
      if (!json_array_size(keys)) key = !strcmp(t->cols[i], "id");
      char *owned = NULL;
      const char *ty;
      if (k->c->create_tables == SQLP_CREATE_JOGET || !t->stype[i]) {
        int dt = !strcasecmp(t->cols[i], "dateCreated") || !strcasecmp(t->cols[i], "dateModified");
        ty = key || (!strncasecmp(t->cols[i], "createdBy", 9) || !strncasecmp(t->cols[i], "modifiedBy", 10))
                 ? "varchar(255)"
             : dt ? (k->engine == FERRY_SQL_MYSQL ? "datetime(6)" : "timestamp")
                  : ferry_sql_type_name(k->db, FERRY_SQL_T_TEXT);
      } else {
        ty = sqlp_target_type(k->db, t->stype[i], t->se, key, &owned);
        if (!ty) {
          ferry_buf_free(&ddl);
          refuse_unknown(j, i);
          return;
        }
      }
      char *qc = ferry_sql_quote_ident(k->db, t->cols[i]);
      ferry_buf_addf(&ddl, "%s%s %s%s", i ? ", " : "", qc, ty, key ? " NOT NULL" : "");
      json_object_set_new(t->tcols, t->cols[i], json_string(ty));
      free(qc);
      free(owned);
    }
    ferry_buf_add(&ddl, ", PRIMARY KEY (");
    if (!json_array_size(keys)) keys = json_pack("[s]", "id");
    else json_incref(keys);
    size_t n;
    json_t *kv;
    json_array_foreach(keys, n, kv) {
      char *qc = ferry_sql_quote_ident(k->db, json_string_value(kv));
      ferry_buf_addf(&ddl, "%s%s", n ? ", " : "", qc);
      free(qc);
      json_array_append(t->tpk, kv);
    }
    json_decref(keys);
    ferry_buf_add(&ddl, "))");
    json_array_append_new(t->ddl, json_string(ddl.buf));
    json_array_append_new(t->actions, json_sprintf("create table %s", t->name));
    ferry_buf_free(&ddl);
    t->fresh = 1;
    t->missing = k->mode != FERRY_MODE_RUN;
  } else {
    for (size_t i = 0; i < t->ncols; i++) {
      const char *tk;
      json_t *tv;
      const char *found = NULL, *spelt = NULL;
      /* The target's spelling of the column: the same name, else the same name in another case (a MySQL
       * source keeps Joget's "dateCreated" where Joget's PostgreSQL tables say "datecreated"). */
      json_object_foreach(t->tcols, tk, tv) {
        if (!strcmp(tk, t->cols[i])) found = json_string_value(tv), spelt = tk;
        else if (!spelt && !strcasecmp(tk, t->cols[i])) found = json_string_value(tv), spelt = tk;
      }
      if (found && strcmp(spelt, t->cols[i])) {
        free(t->cols[i]);
        t->cols[i] = sqlp_xstrdup(spelt);
      }
      if (!found) {
        if (k->c->missing_columns == SQLP_MISSING_REFUSE) {
          refuse(j, FERRY_EINVAL, "sql sink: table %s in %s has no column \"%s\" and missing_columns is \"refuse\"",
                 t->name, ep, t->cols[i]);
          return;
        }
        char *owned = NULL;
        const char *ty = t->stype[i] && k->c->create_tables != SQLP_CREATE_JOGET
                             ? sqlp_target_type(k->db, t->stype[i], t->se, 0, &owned)
                             : ferry_sql_type_name(k->db, FERRY_SQL_T_TEXT);
        if (!ty) {
          refuse_unknown(j, i);
          return;
        }
        char *qc = ferry_sql_quote_ident(k->db, t->cols[i]);
        json_array_append_new(t->ddl, json_sprintf("ALTER TABLE %s ADD COLUMN %s %s", t->qname, qc, ty));
        json_array_append_new(t->actions, json_sprintf("add column %s %s to %s", t->cols[i], ty, t->name));
        t->absent[i] = k->mode != FERRY_MODE_RUN;
        json_object_set_new(t->tcols, t->cols[i], json_string(ty));
        free(qc);
        free(owned);
        continue;
      }
      const char *why = NULL;
      if (!sqlp_type_compatible(t->stype[i], t->se, found, k->engine, &why)) {
        refuse(j, FERRY_EINVAL,
               "sql sink: table %s in %s: column \"%s\" is %s on the target but %s on the source: incompatible (%s); "
               "nothing of the table was written",
               t->name, ep, t->cols[i], found, t->stype[i] ? t->stype[i] : "untyped", why);
        return;
      }
    }
    if (!json_array_size(t->tpk)) {
      refuse(j, FERRY_EINVAL, "sql sink: table %s in %s has no primary key: the conflict policy works by key",
             t->name, ep);
      return;
    }
  }
  for (size_t i = 0; i < t->ncols; i++) {
    const char *tk, *ty = NULL;
    json_t *tv;
    json_object_foreach(t->tcols, tk, tv) if (!strcmp(tk, t->cols[i])) ty = json_string_value(tv);
    t->tcls[i] = sqlp_type_class(ty, k->engine);
    t->tbit[i] = k->engine == FERRY_SQL_MYSQL && ty && !strncmp(ty, "bit", 3);
  }
  t->nkeys = json_array_size(t->tpk);
  t->kidx = sqlp_xcalloc(t->nkeys, sizeof(size_t));
  for (size_t i = 0; i < t->nkeys; i++) {
    int c = item_col(t, json_string_value(json_array_get(t->tpk, i)));
    if (c < 0) {
      refuse(j, FERRY_EINVAL, "sql sink: table %s: key column \"%s\" of the target gets no value from the source",
             t->name, json_string_value(json_array_get(t->tpk, i)));
      return;
    }
    t->kidx[i] = (size_t)c;
  }
  run_ddl(j);
}

static int on_tcols(void *arg, const ferry_sql_batch *b) {
  job *j = arg;
  for (size_t r = 0; r < b->nrows; r++) {
    const char *cn = FERRY_SQL_CELL(b, r, 1)->data, *ty = FERRY_SQL_CELL(b, r, 3)->data;
    if (cn) json_object_set_new(j->tt->tcols, cn, json_string(ty ? ty : "text"));
  }
  return 0;
}

static int on_tpk(void *arg, const ferry_sql_batch *b) {
  job *j = arg;
  for (size_t r = 0; r < b->nrows; r++) {
    const char *cn = FERRY_SQL_CELL(b, r, 1)->data;
    if (cn) json_array_append_new(j->tt->tpk, json_string(cn));
  }
  return 0;
}

static int on_probe(void *arg, const ferry_sql_batch *b) {
  job *j = arg;
  if (b->nrows) j->tt->fresh = 0;
  return 0;
}

static void on_read(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  job *j = arg;
  ttable *t = j->tt;
  if (status) {
    ferry_error e = FERRY_ERROR_INIT;
    sqlp_error_from(&e, err, "sql sink: table %s: reading the target's catalogue", t->name);
    table_settle(t, TT_NEW); /* a transient failure: the next batch tries again */
    sqlp_job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  if (j->step == 0) {
    j->step = 1;
    if (ferry_sql_catalog(j->k->db, NULL, FERRY_SQL_PKEYS, t->name, on_tpk, on_read, j) < 0)
      sqlp_job_failf(j, FERRY_EINTERNAL, "sql sink: cannot queue a catalogue query");
    return;
  }
  if (j->step == 1 && json_object_size(t->tcols)) { /* an existing table: is it empty? */
    j->step = 2;
    t->fresh = 1;
    char *q = ferry_asprintf("SELECT 1 FROM %s LIMIT 1", t->qname);
    int rc = ferry_sql_query(j->k->db, NULL, q, 0, NULL, on_probe, on_read, j);
    free(q);
    if (rc < 0) sqlp_job_failf(j, FERRY_EINTERNAL, "sql sink: cannot queue a query");
    return;
  }
  j->step = 0;
  prepare(j);
}

static void go(job *j) {
  ttable *t = j->tt;
  switch (t->state) {
    case TT_PREPARING:
      j->next = t->waiters;
      t->waiters = j;
      return;
    case TT_REFUSED: {
      ferry_error e = FERRY_ERROR_INIT;
      ferry_error_copy(&e, &t->err);
      sqlp_job_fail(j, &e);
      ferry_error_clear(&e);
      return;
    }
    case TT_NEW:
      t->state = TT_PREPARING;
      json_object_clear(t->tcols);
      json_array_clear(t->tpk);
      j->step = 0;
      if (ferry_sql_catalog(j->k->db, NULL, FERRY_SQL_COLUMNS, t->name, on_tcols, on_read, j) < 0)
        sqlp_job_failf(j, FERRY_EINTERNAL, "sql sink: cannot queue a catalogue query");
      return;
    default:
      break;
  }
  ferry_error e = FERRY_ERROR_INIT;
  if (sqlp_job_check(j, &e) < 0) {
    if (j->k->mode == FERRY_MODE_PLAN && e.code == FERRY_EINVAL) e.code = FERRY_EBLOCKED;
    sqlp_job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  if (j->k->mode == FERRY_MODE_RUN) sqlp_job_write(j);
  else sqlp_job_compare(j);
}

/* ---- ops ------------------------------------------------------------------------------------------------------ */
static void sink_task(ferry_instance *ins, ferry_task *task) {
  sqlp_ctx *c = ferry_instance_ctx(ins);
  sqlp_sink *k = c->sink;
  job *j = sqlp_xcalloc(1, sizeof *j);
  j->k = k;
  j->task = task;
  j->it = ferry_task_item(task);
  ferry_error e = FERRY_ERROR_INIT;
  if (sqlp_job_parse(j, &e) < 0) {
    ferry_error_prefix(&e, "sql sink: item \"%s\"", j->it->key);
    sqlp_job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  j->tt = table_get(k, j->it);
  if (sqlp_job_project(j, &e) < 0) {
    ferry_error_prefix(&e, "sql sink: item \"%s\"", j->it->key);
    sqlp_job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  j->counted = 1;
  count(j, +1);
  if (after_busy(j)) { /* a batch of a table it refers to is still being written */
    j->next = k->waiting;
    k->waiting = j;
    return;
  }
  go(j);
}

static int sink_start(ferry_instance *ins, ferry_error *err) {
  sqlp_ctx *c = ferry_instance_ctx(ins);
  sqlp_sink *k = sqlp_xcalloc(1, sizeof *k);
  c->sink = k;
  k->c = c;
  k->ins = ins;
  k->db = ferry_sql_open(ins, c->dsn, NULL, err);
  if (!k->db) {
    ferry_error_prefix(err, "sql sink: option \"dsn\"");
    return err->code;
  }
  k->engine = ferry_sql_engine_of(k->db);
  k->mode = ferry_instance_mode(ins);
  k->inflight = json_object();
  return 0;
}

void sqlp_sink_free(sqlp_ctx *c) {
  sqlp_sink *k = c->sink;
  if (!k) return;
  ferry_sql_close(k->db);
  while (k->tables) {
    ttable *t = k->tables;
    k->tables = t->next;
    table_free(t);
  }
  json_decref(k->inflight);
  free(k);
  c->sink = NULL;
}

static void sink_stop(ferry_instance *ins) { sqlp_sink_free(ferry_instance_ctx(ins)); }

const ferry_sink_ops sqlp_sink_ops = {
    .struct_size = sizeof(ferry_sink_ops),
    .accepts = FERRY_ITEM_RECORD,
    .start = sink_start,
    .write = sink_task,
    .plan = sink_task,
    .verify = sink_task,
    .stop = sink_stop,
};
