/* preserve-records: before_start: the snapshot of the record's rows into the hook state; after_start:
 * the restore in one statement, and what the tools had changed. */
#define _GNU_SOURCE /* asprintf */
#include "preserve_records.h"

/* ---- before_start: snapshot ---------------------------------------------------------------------------- */
static void on_snapshot(void *arg, int status, const pr_res *res, const ferry_error *err);

static void store_snapshot(pr_op *op, json_t *snapshot) {
  json_t *state = ferry_hook_state(op->ev);
  json_object_set_new(state, "record_id", json_string(op->record_id));
  json_object_set_new(state, "snapshot", snapshot);
  json_object_del(state, "restored");
  json_object_del(state, "tools_changed");
  size_t present = 0;
  const char *k;
  json_t *v;
  json_object_foreach(snapshot, k, v) present += !json_is_null(v);
  ferry_log_debug(op->c->ins, "record \"%s\": snapshot of %zu table(s), %zu row(s) present", op->record_id,
                  json_object_size(snapshot), present);
  preserve_op_finish(op, 0, NULL);
}

void preserve_op_snapshot(pr_op *op) {
  ferry_buf sql = {0};
  size_t n = 0;
  for (size_t i = 0; i < op->ntables; i++) {
    const table_info *t = &op->info[i];
    if (!t->schema) continue;
    if (n++) ferry_buf_add(&sql, " UNION ALL ");
    ferry_buf_addf(&sql, "SELECT %zu, count(*), min(", i);
    preserve_sb_row_json(&sql, op->c, t);
    ferry_buf_add(&sql, ") FROM ");
    preserve_sb_table(&sql, op->c, t);
    ferry_buf_add(&sql, " t WHERE ");
    preserve_sb_key_match(&sql, op->c, t);
  }
  if (!n) { /* none of the tables exists yet (Joget creates them lazily): every row is absent */
    ferry_buf_free(&sql);
    json_t *snap = json_object();
    for (size_t i = 0; i < op->ntables; i++) json_object_set_new(snap, op->info[i].name, json_null());
    store_snapshot(op, snap);
    return;
  }
  const char *params[] = {op->record_id};
  int rc = preserve_read(op->c, NULL, sql.buf, 1, params, on_snapshot, op);
  ferry_buf_free(&sql);
  if (rc < 0) preserve_op_failf(op, rc, "snapshot of record \"%s\": cannot queue the query (%s)", op->record_id,
                                ferry_strerror(rc));
}

static void on_snapshot(void *arg, int status, const pr_res *res, const ferry_error *err) {
  pr_op *op = arg;
  if (status) {
    preserve_op_fail_pg(op, "snapshot", err);
    return;
  }
  json_t *snap = json_object();
  for (size_t i = 0; i < op->ntables; i++) json_object_set_new(snap, op->info[i].name, json_null());
  for (int r = 0; r < preserve_res_n(res); r++) {
    size_t i = (size_t)strtoull(preserve_res_val(res, r, 0), NULL, 10);
    long long count = strtoll(preserve_res_val(res, r, 1), NULL, 10);
    if (i >= op->ntables) continue;
    const table_info *t = &op->info[i];
    if (count > 1) {
      json_decref(snap);
      preserve_op_failf(op, FERRY_EINVAL, "table %s.%s has %lld rows with %s = \"%s\": preserve-records needs a "
                        "unique key column (option \"key_column\")", t->schema, t->name, count, op->c->key_column,
                        op->record_id);
      return;
    }
    if (count == 0 || preserve_res_null(res, r, 2)) continue;
    json_error_t je;
    json_t *row = json_loads(preserve_res_val(res, r, 2), 0, &je);
    if (!json_is_object(row)) {
      json_decref(row);
      json_decref(snap);
      preserve_op_failf(op, FERRY_EPROTO,
                        "snapshot of record \"%s\" in %s: the database returned a row that is not a JSON object "
                        "(%s)",
                        op->record_id, t->name, je.text);
      return;
    }
    json_object_set_new(snap, t->name, row);
  }
  store_snapshot(op, snap);
}

/* ---- after_start: restore ------------------------------------------------------------------------------ */
static void on_restore(void *arg, int status, const pr_res *res, const ferry_error *err);
static json_t *no_rows(size_t n);

/* Adds a parameter; writes its reference ("$<n>::json") into ref. */
static void param_ref(pr_op *op, const char *value, char *ref, size_t size) {
  op->params = preserve_xrealloc(op->params, (op->nparams + 2) * sizeof *op->params);
  op->params[op->nparams++] = preserve_xstrdup(value);
  op->params[op->nparams] = NULL;
  snprintf(ref, size, "$%zu::json", op->nparams + 1); /* $1 is the record id */
}

/* CAST(<p>->>'col' AS type) */
static void sb_cast_from(ferry_buf *sb, const char *pref, const column *col) {
  ferry_buf_addf(sb, "CAST(%s->>", pref);
  ferry_pg_add_literal(sb, col->name);
  ferry_buf_addf(sb, " AS %s)", col->type);
}

static void my_restore(pr_op *op);

void preserve_op_restore(pr_op *op) {
  json_t *snapshot = json_object_get(ferry_hook_state(op->ev), "snapshot");
  if (op->c->mysql) {
    for (size_t i = 0; i < op->ntables; i++)
      if (!op->info[i].schema && json_is_object(json_object_get(snapshot, op->info[i].name))) {
        preserve_op_failf(op, FERRY_EINVAL,
                          "restore of record \"%s\": table %s held the record before the start but no longer "
                          "exists on the target; restore it from the snapshot in the journal by hand",
                          op->record_id, op->info[i].name);
        return;
      }
    my_restore(op);
    return;
  }
  ferry_buf sql = {0}, sel = {0};
  size_t n = 0;
  for (size_t i = 0; i < op->ntables; i++) {
    const table_info *t = &op->info[i];
    json_t *snap = json_object_get(snapshot, t->name);
    if (!t->schema) {
      if (json_is_object(snap)) {
        ferry_buf_free(&sql);
        ferry_buf_free(&sel);
        preserve_op_failf(op, FERRY_EINVAL,
                          "restore of record \"%s\": table %s held the record before the start but no longer "
                          "exists on the target; restore it from the snapshot in the journal by hand",
                          op->record_id, t->name);
        return;
      }
      continue; /* absent before, still absent */
    }
    ferry_buf_add(&sql, n++ ? ",\n" : "WITH ");
    /* o<i>: the row as the start path left it (locked) */
    ferry_buf_addf(&sql, "o%zu AS (SELECT ", i);
    preserve_sb_row_json(&sql, op->c, t);
    ferry_buf_add(&sql, " AS j FROM ");
    preserve_sb_table(&sql, op->c, t);
    ferry_buf_add(&sql, " t WHERE ");
    preserve_sb_key_match(&sql, op->c, t);
    ferry_buf_add(&sql, " FOR UPDATE)");
    if (!json_is_object(snap)) { /* no row before: delete what the start path created */
      ferry_buf_addf(&sql, ",\nd%zu AS (DELETE FROM ", i);
      preserve_sb_table(&sql, op->c, t);
      ferry_buf_add(&sql, " t WHERE ");
      preserve_sb_key_match(&sql, op->c, t);
      ferry_buf_add(&sql, " RETURNING 1)");
    } else {
      char *text = json_dumps(snap, JSON_COMPACT);
      char pref[32];
      param_ref(op, text, pref, sizeof pref);
      free(text);
      /* u<i>: changed columns back (only when something differs: an unchanged row is not written) */
      size_t nset = 0;
      for (size_t k = 0; k < t->ncols; k++)
        nset += (int)k != t->key && !t->cols[k].generated && !t->cols[k].ident_always;
      if (nset) {
        ferry_buf_addf(&sql, ",\nu%zu AS (UPDATE ", i);
        preserve_sb_table(&sql, op->c, t);
        ferry_buf_add(&sql, " t SET ");
        int first = 1;
        for (size_t k = 0; k < t->ncols; k++) {
          const column *col = &t->cols[k];
          if ((int)k == t->key || col->generated || col->ident_always) continue;
          if (!first) ferry_buf_add(&sql, ", ");
          first = 0;
          ferry_pg_add_ident(&sql, col->name);
          ferry_buf_add(&sql, " = ");
          sb_cast_from(&sql, pref, col);
        }
        ferry_buf_add(&sql, " WHERE ");
        preserve_sb_key_match(&sql, op->c, t);
        ferry_buf_add(&sql, " AND ARRAY[");
        first = 1;
        for (size_t k = 0; k < t->ncols; k++) {
          const column *col = &t->cols[k];
          if ((int)k == t->key || col->generated || col->ident_always) continue;
          if (!first) ferry_buf_add(&sql, ", ");
          first = 0;
          ferry_buf_add(&sql, "t.");
          ferry_pg_add_ident(&sql, col->name);
          ferry_buf_add(&sql, "::text");
        }
        ferry_buf_add(&sql, "]::text[] IS DISTINCT FROM ARRAY[");
        first = 1;
        for (size_t k = 0; k < t->ncols; k++) {
          const column *col = &t->cols[k];
          if ((int)k == t->key || col->generated || col->ident_always) continue;
          if (!first) ferry_buf_add(&sql, ", ");
          first = 0;
          ferry_buf_addf(&sql, "%s->>", pref);
          ferry_pg_add_literal(&sql, col->name);
        }
        ferry_buf_add(&sql, "]::text[] RETURNING 1)");
      }
      /* i<i>: the row again when the start path deleted it */
      ferry_buf_addf(&sql, ",\ni%zu AS (INSERT INTO ", i);
      preserve_sb_table(&sql, op->c, t);
      ferry_buf_add(&sql, " (");
      int first = 1;
      for (size_t k = 0; k < t->ncols; k++) {
        if (t->cols[k].generated) continue;
        if (!first) ferry_buf_add(&sql, ", ");
        first = 0;
        ferry_pg_add_ident(&sql, t->cols[k].name);
      }
      ferry_buf_add(&sql, ") OVERRIDING SYSTEM VALUE SELECT ");
      first = 1;
      for (size_t k = 0; k < t->ncols; k++) {
        if (t->cols[k].generated) continue;
        if (!first) ferry_buf_add(&sql, ", ");
        first = 0;
        sb_cast_from(&sql, pref, &t->cols[k]);
      }
      ferry_buf_addf(&sql, " WHERE NOT EXISTS (SELECT 1 FROM o%zu) RETURNING 1)", i);
    }
    if (sel.len) ferry_buf_add(&sel, " UNION ALL ");
    ferry_buf_addf(&sel, "SELECT %zu, (SELECT j FROM o%zu)", i, i);
  }
  if (!n) { /* nothing existed and nothing exists: nothing to restore */
    ferry_buf_free(&sql);
    ferry_buf_free(&sel);
    json_t *st = ferry_hook_state(op->ev);
    json_object_set_new(st, "restored", json_true());
    ferry_log_debug(op->c->ins, "record \"%s\": nothing to restore", op->record_id);
    preserve_op_finish(op, 0, NULL);
    return;
  }
  ferry_buf_add(&sql, "\n");
  ferry_buf_add(&sql, sel.buf);
  ferry_buf_free(&sel);
  size_t np = 1 + op->nparams;
  const char **params = preserve_xrealloc(NULL, np * sizeof *params);
  params[0] = op->record_id;
  for (size_t k = 0; k < op->nparams; k++) params[k + 1] = op->params[k];
  int rc = preserve_read(op->c, NULL, sql.buf, np, params, on_restore, op);
  free(params);
  ferry_buf_free(&sql);
  if (rc < 0) preserve_op_failf(op, rc, "restore of record \"%s\": cannot queue the statement (%s)", op->record_id,
                                ferry_strerror(rc));
}

static json_t *change(const char *table, const char *col, json_t *tool, json_t *restored,
                      const char *action) {
  return json_pack("{s:s, s:s, s:O, s:O, s:s}", "table", table, "column", col, "tool_value",
                   tool ? tool : json_null(), "restored_value", restored ? restored : json_null(), "action",
                   action);
}

/* What the start path changed in one table: entries appended to `out`; a short description into `desc`. */
static void diff_table(const table_info *t, json_t *snap, json_t *cur, const char *key_col, json_t *out,
                       ferry_buf *desc) {
  const char *k;
  json_t *v;
  if (!json_is_object(snap) && json_is_object(cur)) {
    json_object_foreach(cur, k, v) {
      if (!json_is_null(v)) json_array_append_new(out, change(t->name, k, v, NULL, "deleted"));
    }
    ferry_buf_addf(desc, "%s%s (row created by the start path: deleted)", desc->len ? ", " : "", t->name);
    return;
  }
  if (json_is_object(snap) && !json_is_object(cur)) {
    json_object_foreach(snap, k, v) {
      if (!json_is_null(v)) json_array_append_new(out, change(t->name, k, NULL, v, "inserted"));
    }
    ferry_buf_addf(desc, "%s%s (row deleted by the start path: inserted again)", desc->len ? ", " : "", t->name);
    return;
  }
  if (!json_is_object(snap)) return;
  /* both present: compare the columns of today's row (a column added since is restored to null) */
  json_object_foreach(cur, k, v) {
    if (!strcmp(k, key_col)) continue;
    int settable = 1;
    for (size_t c = 0; c < t->ncols; c++)
      if (!strcmp(t->cols[c].name, k)) settable = !t->cols[c].ident_always && !t->cols[c].generated;
    if (!settable) continue;
    json_t *sv = json_object_get(snap, k);
    const char *a = json_string_value(v), *b = json_string_value(sv);
    if ((a == NULL) != (b == NULL) || (a && strcmp(a, b))) {
      json_array_append_new(out, change(t->name, k, v, sv, "updated"));
      ferry_buf_addf(desc, "%s%s.%s", desc->len ? ", " : "", t->name, k);
    }
  }
}

/* The report of a restore: `curs` has, per table index, the row as the start path had left it (an object)
 * or null. */
static void restore_report(pr_op *op, json_t *curs) {
  json_t *state = ferry_hook_state(op->ev);
  json_t *snapshot = json_object_get(state, "snapshot");
  json_t *changes = json_array();
  ferry_buf desc = {0};
  for (size_t i = 0; i < op->ntables; i++) {
    const table_info *t = &op->info[i];
    if (!t->schema) continue;
    json_t *cur = json_array_get(curs, i);
    diff_table(t, json_object_get(snapshot, t->name), json_is_object(cur) ? cur : NULL, op->c->key_column,
               changes, &desc);
  }
  json_object_set_new(state, "restored", json_true());
  json_t *report = ferry_task_report(ferry_hook_task(op->ev));
  if (json_array_size(changes)) {
    json_object_set(state, "tools_changed", changes);
    const ferry_item *item = ferry_task_item(ferry_hook_task(op->ev));
    ferry_log_item(op->c->ins, FERRY_LOG_INFO, item ? item->key : NULL, 0,
                   "record \"%s\": start-path tools changed %s; restored as before the start", op->record_id,
                   desc.buf);
  } else {
    json_t *earlier = json_object_get(state, "tools_changed"); /* a restore before a crash already did it */
    if (json_array_size(earlier)) json_array_extend(changes, earlier);
    ferry_log_debug(op->c->ins, "record \"%s\": the rows are as before the start, nothing to restore",
                    op->record_id);
  }
  if (report) {
    json_t *list = json_object_get(report, "tools_changed");
    if (json_is_array(list)) json_array_extend(list, changes);
    else json_object_set(report, "tools_changed", changes);
  }
  json_decref(changes);
  ferry_buf_free(&desc);
  preserve_op_finish(op, 0, NULL);
}

static json_t *no_rows(size_t n) {
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) json_array_append_new(a, json_null());
  return a;
}

static void on_restore(void *arg, int status, const pr_res *res, const ferry_error *err) {
  pr_op *op = arg;
  if (status) {
    preserve_op_fail_pg(op, "restore", err);
    return;
  }
  json_t *curs = no_rows(op->ntables);
  for (int r = 0; r < preserve_res_n(res); r++) {
    size_t i = (size_t)strtoull(preserve_res_val(res, r, 0), NULL, 10);
    if (i >= op->ntables || preserve_res_null(res, r, 1)) continue;
    json_error_t je;
    json_t *cur = json_loads(preserve_res_val(res, r, 1), 0, &je);
    if (json_is_object(cur))
      json_array_set_new(curs, i, cur);
    else
      json_decref(cur);
  }
  restore_report(op, curs);
  json_decref(curs);
}

/* ---- after_start on MySQL/MariaDB: one transaction (no data-changing CTEs there): each table's row read
 * FOR UPDATE, then the statements that put it back (DELETE / UPDATE of the columns that differ / INSERT),
 * then COMMIT; the report as on PostgreSQL. Values are the text forms of the snapshot (CAST ... AS CHAR,
 * binary columns as hex), which MySQL converts back on assignment. */
static void my_fail(pr_op *op, const ferry_error *err) {
  if (!op->err.code) ferry_error_copy(&op->err, err);
}

static void my_on_end(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  pr_op *op = arg;
  op->txn = NULL;
  if (status) my_fail(op, err);
  json_t *curs = op->cur;
  op->cur = NULL;
  if (op->err.code) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_move(&e, &op->err);
    json_decref(curs);
    preserve_op_fail_pg(op, "restore", &e);
    ferry_error_clear(&e);
    return;
  }
  restore_report(op, curs);
  json_decref(curs);
}

static void my_on_write(void *arg, int status, const pr_res *res, const ferry_error *err) {
  (void)res;
  if (status) my_fail(arg, err);
}

static void my_add_value(ferry_buf *sb, const pr_op *op, const column *col, json_t *v) {
  const char *s = json_string_value(v);
  if (!s) {
    ferry_buf_add(sb, "NULL");
    return;
  }
  if (col->binary) ferry_buf_add(sb, "UNHEX(");
  preserve_add_literal(sb, op->c, s);
  if (col->binary) ferry_buf_add(sb, ")");
}

static void my_queue(pr_op *op, ferry_buf *sql) {
  const char *params[] = {op->record_id};
  int rc = preserve_read(op->c, op->txn, sql->buf, 1, params, my_on_write, op);
  if (rc < 0) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, rc, "cannot queue a statement (%s)", ferry_strerror(rc));
    my_fail(op, &e);
    ferry_error_clear(&e);
  }
  ferry_buf_free(sql);
}

static void my_writes(pr_op *op) {
  json_t *snapshot = json_object_get(ferry_hook_state(op->ev), "snapshot");
  for (size_t i = 0; i < op->ntables && !op->err.code; i++) {
    const table_info *t = &op->info[i];
    if (!t->schema) continue;
    json_t *snap = json_object_get(snapshot, t->name), *cur = json_array_get(op->cur, i);
    ferry_buf sql = {0};
    if (!json_is_object(snap)) {
      if (!json_is_object(cur)) continue;
      ferry_buf_add(&sql, "DELETE FROM ");
      preserve_sb_table(&sql, op->c, t);
      ferry_buf_add(&sql, " WHERE ");
      preserve_add_ident(&sql, op->c, t->cols[t->key].name);
      ferry_buf_add(&sql, " = $1");
      my_queue(op, &sql);
    } else if (!json_is_object(cur)) {
      ferry_buf_add(&sql, "INSERT INTO ");
      preserve_sb_table(&sql, op->c, t);
      ferry_buf_add(&sql, " (");
      int first = 1;
      for (size_t k = 0; k < t->ncols; k++) {
        if (t->cols[k].generated) continue;
        ferry_buf_add(&sql, first ? "" : ", ");
        first = 0;
        preserve_add_ident(&sql, op->c, t->cols[k].name);
      }
      ferry_buf_add(&sql, ") VALUES (");
      first = 1;
      for (size_t k = 0; k < t->ncols; k++) {
        if (t->cols[k].generated) continue;
        ferry_buf_add(&sql, first ? "" : ", ");
        first = 0;
        my_add_value(&sql, op, &t->cols[k], json_object_get(snap, t->cols[k].name));
      }
      ferry_buf_add(&sql, ")");
      my_queue(op, &sql);
    } else {
      size_t nset = 0;
      ferry_buf_add(&sql, "UPDATE ");
      preserve_sb_table(&sql, op->c, t);
      ferry_buf_add(&sql, " SET ");
      for (size_t k = 0; k < t->ncols; k++) {
        const column *col = &t->cols[k];
        if ((int)k == t->key || col->generated) continue;
        const char *a = json_string_value(json_object_get(cur, col->name));
        const char *b = json_string_value(json_object_get(snap, col->name));
        if ((a == NULL) == (b == NULL) && (!a || !strcmp(a, b))) continue;
        ferry_buf_add(&sql, nset++ ? ", " : "");
        preserve_add_ident(&sql, op->c, col->name);
        ferry_buf_add(&sql, " = ");
        my_add_value(&sql, op, col, json_object_get(snap, col->name));
      }
      ferry_buf_add(&sql, " WHERE ");
      preserve_add_ident(&sql, op->c, t->cols[t->key].name);
      ferry_buf_add(&sql, " = $1");
      if (nset)
        my_queue(op, &sql);
      else
        ferry_buf_free(&sql);
    }
  }
  int rc = op->err.code ? ferry_sql_rollback(op->txn, my_on_end, op) : ferry_sql_commit(op->txn, my_on_end, op);
  if (rc < 0) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, rc, "cannot end the transaction (%s)", ferry_strerror(rc));
    my_fail(op, &e);
    ferry_error_clear(&e);
    my_on_end(op, 0, NULL, NULL);
  }
}

typedef struct my_rd {
  pr_op *op;
  size_t i;
} my_rd;

static void my_on_read(void *arg, int status, const pr_res *res, const ferry_error *err) {
  my_rd *q = arg;
  pr_op *op = q->op;
  size_t i = q->i;
  free(q);
  if (status)
    my_fail(op, err);
  else if (preserve_res_n(res) > 1) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EINVAL, "table %s.%s has %d rows with %s = \"%s\": preserve-records needs a unique key column (option \"key_column\")",
                    op->info[i].schema, op->info[i].name, preserve_res_n(res), op->c->key_column, op->record_id);
    my_fail(op, &e);
    ferry_error_clear(&e);
  } else if (preserve_res_n(res) == 1 && !preserve_res_null(res, 0, 0)) {
    json_error_t je;
    json_t *cur = json_loads(preserve_res_val(res, 0, 0), 0, &je);
    if (json_is_object(cur))
      json_array_set_new(op->cur, i, cur);
    else
      json_decref(cur);
  }
  if (--op->reads == 0) my_writes(op);
}

static void my_on_begin(void *arg, int status, ferry_sql_txn *txn, const ferry_error *err) {
  pr_op *op = arg;
  if (status) {
    preserve_op_fail_pg(op, "restore", err);
    return;
  }
  op->txn = txn;
  json_decref(op->cur);
  op->cur = no_rows(op->ntables);
  op->reads = 1; /* held until every read is queued */
  const char *params[] = {op->record_id};
  for (size_t i = 0; i < op->ntables; i++) {
    const table_info *t = &op->info[i];
    if (!t->schema) continue;
    ferry_buf sql = {0};
    ferry_buf_add(&sql, "SELECT ");
    preserve_sb_row_json(&sql, op->c, t);
    ferry_buf_add(&sql, " FROM ");
    preserve_sb_table(&sql, op->c, t);
    ferry_buf_add(&sql, " t WHERE ");
    preserve_sb_key_match(&sql, op->c, t);
    ferry_buf_add(&sql, " FOR UPDATE");
    my_rd *q = preserve_xrealloc(NULL, sizeof *q);
    q->op = op;
    q->i = i;
    op->reads++;
    int rc = preserve_read(op->c, txn, sql.buf, 1, params, my_on_read, q);
    ferry_buf_free(&sql);
    if (rc < 0) {
      op->reads--;
      free(q);
      ferry_error e = FERRY_ERROR_INIT;
      ferry_error_set(&e, rc, "cannot queue a read (%s)", ferry_strerror(rc));
      my_fail(op, &e);
      ferry_error_clear(&e);
    }
  }
  if (--op->reads == 0) my_writes(op);
}

static void my_restore(pr_op *op) {
  int rc = ferry_sql_begin(op->c->db, FERRY_SQL_READ_WRITE, NULL, my_on_begin, op);
  if (rc < 0)
    preserve_op_failf(op, rc, "restore of record \"%s\": cannot start a transaction (%s)", op->record_id,
                      ferry_strerror(rc));
}
