/* preserve-records: one firing: the record id, the tables to preserve (names, the apps' form tables from
 * app_form), their columns and keys from the catalog; fire() for both points. */
#include "preserve_records.h"

static void op_free(pr_op *op) {
  free(op->record_id);
  preserve_free_list(op->apps);
  preserve_free_list(op->tables);
  for (size_t i = 0; op->info && i < op->ntables; i++) {
    table_info *t = &op->info[i];
    free(t->name);
    free(t->schema);
    for (size_t k = 0; k < t->ncols; k++) {
      free(t->cols[k].name);
      free(t->cols[k].type);
    }
    free(t->cols);
  }
  free(op->info);
  json_decref(op->cur);
  ferry_error_clear(&op->err);
  preserve_free_list(op->params);
  free(op);
}

void preserve_op_finish(pr_op *op, int status, const ferry_error *err) {
  ferry_hook_event *ev = op->ev;
  op_free(op);
  ferry_hook_done(ev, status, err);
}

FERRY_PRINTF(3, 4) void preserve_op_failf(pr_op *op, int code, const char *fmt, ...) {
  ferry_error e = FERRY_ERROR_INIT;
  va_list ap;
  va_start(ap, fmt);
  ferry_error_setv(&e, code, fmt, ap);
  va_end(ap);
  preserve_op_finish(op, code, &e);
  ferry_error_clear(&e);
}

/* A failure of the database: keeps the code (transient ones are retried with the item) and the detail. */
void preserve_op_fail_pg(pr_op *op, const char *what, const ferry_error *err) {
  ferry_error e = FERRY_ERROR_INIT;
  if (err && err->code) ferry_error_copy(&e, err);
  else ferry_error_set(&e, FERRY_EINTERNAL, "no error text");
  ferry_error_prefix(&e, "%s of record \"%s\" on the target database", what, op->record_id);
  preserve_op_finish(op, e.code, &e);
  ferry_error_clear(&e);
}

static void list_add_unique(char ***list, size_t *n, const char *s) {
  for (size_t i = 0; i < *n; i++)
    if (!strcmp((*list)[i], s)) return;
  *list = preserve_xrealloc(*list, (*n + 2) * sizeof **list);
  (*list)[(*n)++] = preserve_xstrdup(s);
  (*list)[*n] = NULL;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static const app_tables *cache_get(const pr_ctx *c, const char *app) {
  for (size_t i = 0; i < c->ncache; i++)
    if (!strcmp(c->cache[i].app, app)) return &c->cache[i];
  return NULL;
}

/* The app an item belongs to: body "app", else the first token of "definition" (app#version#process), from
 * the fired data or the item. Returns a malloc'd string or NULL. */
static char *item_app(const ferry_item *it, json_t *data) {
  const char *app = it ? ferry_item_str(it, "app", NULL) : NULL;
  if (app && *app) return preserve_xstrdup(app);
  const char *def = json_string_value(json_object_get(data, "definition"));
  if (!def && it) def = ferry_item_str(it, "definition", NULL);
  if (!def || !*def) return NULL;
  size_t n = strcspn(def, "#:");
  if (!n) return NULL;
  char *s = preserve_xstrdup(def);
  s[n] = '\0';
  return s;
}

static void op_resolve_apps(pr_op *op);
static void op_catalog(pr_op *op);

static void on_app_forms(void *arg, int status, const pr_res *res, const ferry_error *err) {
  pr_op *op = arg;
  const char *app = op->apps[op->next_app];
  if (status) {
    preserve_op_fail_pg(op, "looking up the form tables of app", err);
    return;
  }
  int n = preserve_res_n(res);
  if (n == 0) {
    preserve_op_failf(op, FERRY_ENOENT,
                      "app \"%s\" has no forms in app_form of the target database (is the app imported there? or "
                      "list the tables with option \"tables\")", app);
    return;
  }
  pr_ctx *c = op->c;
  if (!cache_get(c, app)) {
    c->cache = preserve_xrealloc(c->cache, (c->ncache + 1) * sizeof *c->cache);
    app_tables *at = &c->cache[c->ncache++];
    at->app = preserve_xstrdup(app);
    at->tables = preserve_xrealloc(NULL, ((size_t)n + 1) * sizeof *at->tables);
    for (int i = 0; i < n; i++) at->tables[i] = preserve_xstrdup(preserve_res_val(res, i, 0));
    at->tables[n] = NULL;
  }
  op_resolve_apps(op); /* takes the tables from the cache */
}

/* Resolves the apps one after the other (cached per instance for the run), then goes on to the catalog. */
static void op_resolve_apps(pr_op *op) {
  pr_ctx *c = op->c;
  while (op->apps && op->apps[op->next_app]) {
    const app_tables *at = cache_get(c, op->apps[op->next_app]);
    if (!at) {
      /* Table name = app_fd_ + the form's tableName, or the form id when it is empty (docs/joget-facts.md 9.11). */
      const char *sql = c->mysql ? "SELECT DISTINCT CONCAT('app_fd_', COALESCE(NULLIF(tablename, ''), formid)) "
                                   "FROM app_form WHERE appid = $1 ORDER BY 1"
                                 : "SELECT DISTINCT 'app_fd_' || COALESCE(NULLIF(tablename, ''), formid) FROM "
                                   "app_form WHERE appid = $1 ORDER BY 1";
      const char *params[] = {op->apps[op->next_app]};
      int rc = preserve_read(c, NULL, sql, 1, params, on_app_forms, op);
      if (rc < 0) preserve_op_failf(op, rc, "looking up the form tables of app \"%s\": cannot queue the query (%s)",
                                    op->apps[op->next_app], ferry_strerror(rc));
      return;
    }
    for (size_t i = 0; at->tables[i]; i++) list_add_unique(&op->tables, &op->ntables, at->tables[i]);
    op->next_app++;
  }
  if (!op->ntables) {
    preserve_op_failf(op, FERRY_ECONFIG, "no table to preserve for record \"%s\": set option \"tables\" or \"apps\" "
                      "(the item names no app)", op->record_id);
    return;
  }
  qsort(op->tables, op->ntables, sizeof *op->tables, cmp_str);
  op_catalog(op);
}

/* ---- catalog ------------------------------------------------------------------------------------------- */
static void on_catalog(void *arg, int status, const pr_res *res, const ferry_error *err);

static void op_catalog(pr_op *op) {
  op->info = preserve_xrealloc(NULL, op->ntables * sizeof *op->info);
  memset(op->info, 0, op->ntables * sizeof *op->info);
  for (size_t i = 0; i < op->ntables; i++) {
    op->info[i].name = preserve_xstrdup(op->tables[i]);
    op->info[i].key = -1;
  }
  if (op->c->mysql) {
    /* MySQL: information_schema of the dsn's database (or option schema); generated columns are never
       written; binary types are kept as hex */
    ferry_buf sql = {0};
    ferry_buf_add(&sql,
                  "SELECT table_name, table_schema, column_name, column_type, extra LIKE '%GENERATED%', 0, "
                  "data_type IN ('binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob') FROM "
                  "information_schema.columns WHERE table_schema = COALESCE(NULLIF($1, ''), DATABASE()) AND "
                  "table_name IN (");
    for (size_t i = 0; i < op->ntables; i++) ferry_buf_addf(&sql, "%s$%zu", i ? ", " : "", i + 2);
    ferry_buf_add(&sql, ") ORDER BY table_name, ordinal_position");
    const char **params = preserve_xrealloc(NULL, (op->ntables + 1) * sizeof *params);
    params[0] = op->c->schema ? op->c->schema : "";
    for (size_t i = 0; i < op->ntables; i++) params[i + 1] = op->tables[i];
    int rc = preserve_read(op->c, NULL, sql.buf, op->ntables + 1, params, on_catalog, op);
    free(params);
    ferry_buf_free(&sql);
    if (rc < 0)
      preserve_op_failf(op, rc, "reading the target's catalog: cannot queue the query (%s)", ferry_strerror(rc));
    return;
  }
  char *arr = ferry_pg_text_array((const char *const *)op->tables, op->ntables);
  const char *sql =
      "SELECT c.relname, n.nspname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
      "a.attgenerated <> '', a.attidentity = 'a' "
      "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
      "WHERE n.nspname = COALESCE(NULLIF($1, ''), current_schema()) AND c.relname = ANY($2::text[]) "
      "AND c.relkind IN ('r', 'p') ORDER BY c.relname, a.attnum";
  const char *params[] = {op->c->schema ? op->c->schema : "", arr};
  int rc = preserve_read(op->c, NULL, sql, 2, params, on_catalog, op);
  free(arr);
  if (rc < 0)
    preserve_op_failf(op, rc, "reading the target's catalog: cannot queue the query (%s)", ferry_strerror(rc));
}

static table_info *find_table(pr_op *op, const char *name) {
  for (size_t i = 0; i < op->ntables; i++)
    if (!strcmp(op->info[i].name, name)) return &op->info[i];
  return NULL;
}

static void on_catalog(void *arg, int status, const pr_res *res, const ferry_error *err) {
  pr_op *op = arg;
  if (status) {
    preserve_op_fail_pg(op, op->restore ? "restore" : "snapshot", err);
    return;
  }
  for (int r = 0; r < preserve_res_n(res); r++) {
    table_info *t = find_table(op, preserve_res_val(res, r, 0));
    if (!t) continue;
    if (!t->schema) t->schema = preserve_xstrdup(preserve_res_val(res, r, 1));
    t->cols = preserve_xrealloc(t->cols, (t->ncols + 1) * sizeof *t->cols);
    column *col = &t->cols[t->ncols];
    col->name = preserve_xstrdup(preserve_res_val(res, r, 2));
    col->type = preserve_xstrdup(preserve_res_val(res, r, 3));
    col->generated = preserve_res_true(res, r, 4);
    col->ident_always = preserve_res_true(res, r, 5);
    col->binary = op->c->mysql && preserve_res_true(res, r, 6);
    if (!strcmp(col->name, op->c->key_column)) t->key = (int)t->ncols;
    t->ncols++;
  }
  for (size_t i = 0; i < op->ntables; i++) {
    table_info *t = &op->info[i];
    if (t->schema && t->key < 0) {
      preserve_op_failf(op, FERRY_ECONFIG,
                        "table %s.%s has no column \"%s\" to find record \"%s\" by (option \"key_column\", or "
                        "leave the table out of \"tables\")", t->schema, t->name, op->c->key_column, op->record_id);
      return;
    }
  }
  if (op->restore) preserve_op_restore(op);
  else preserve_op_snapshot(op);
}

/* The row alias t as a JSON object of text values, without generated columns:
 *   PostgreSQL  json_object(ARRAY['c1', ...], ARRAY[t."c1"::text, ...])::text
 *   MySQL       JSON_OBJECT('c1', CAST(t.`c1` AS CHAR), ...)   (binary columns: HEX(t.`c`)) */
void preserve_sb_row_json(ferry_buf *sb, const pr_ctx *c, const table_info *t) {
  if (c->mysql) {
    ferry_buf_add(sb, "JSON_OBJECT(");
    int first = 1;
    for (size_t k = 0; k < t->ncols; k++) {
      if (t->cols[k].generated) continue;
      if (!first) ferry_buf_add(sb, ", ");
      first = 0;
      preserve_add_literal(sb, c, t->cols[k].name);
      ferry_buf_add(sb, t->cols[k].binary ? ", HEX(t." : ", CAST(t.");
      preserve_add_ident(sb, c, t->cols[k].name);
      ferry_buf_add(sb, t->cols[k].binary ? ")" : " AS CHAR)");
    }
    ferry_buf_add(sb, ")");
    return;
  }
  ferry_buf_add(sb, "json_object(ARRAY[");
  int first = 1;
  for (size_t k = 0; k < t->ncols; k++) {
    if (t->cols[k].generated) continue;
    if (!first) ferry_buf_add(sb, ", ");
    first = 0;
    ferry_pg_add_literal(sb, t->cols[k].name);
  }
  ferry_buf_add(sb, "]::text[], ARRAY[");
  first = 1;
  for (size_t k = 0; k < t->ncols; k++) {
    if (t->cols[k].generated) continue;
    if (!first) ferry_buf_add(sb, ", ");
    first = 0;
    ferry_buf_add(sb, "t.");
    ferry_pg_add_ident(sb, t->cols[k].name);
    ferry_buf_add(sb, "::text");
  }
  ferry_buf_add(sb, "]::text[])::text");
}

void preserve_sb_table(ferry_buf *sb, const pr_ctx *c, const table_info *t) {
  preserve_add_ident(sb, c, t->schema);
  ferry_buf_add(sb, ".");
  preserve_add_ident(sb, c, t->name);
}

/* PostgreSQL: t."key" = CAST($1::text AS <key type>); MySQL: t.`key` = $1 (the server converts) */
void preserve_sb_key_match(ferry_buf *sb, const pr_ctx *c, const table_info *t) {
  ferry_buf_add(sb, "t.");
  preserve_add_ident(sb, c, t->cols[t->key].name);
  if (c->mysql)
    ferry_buf_add(sb, " = $1");
  else
    ferry_buf_addf(sb, " = CAST($1::text AS %s)", t->cols[t->key].type);
}

/* ---- fire ---------------------------------------------------------------------------------------------- */
static char *record_id_of(ferry_hook_event *ev) {
  json_t *data = ferry_hook_data(ev);
  json_t *v = json_object_get(data, "record_id");
  const ferry_item *it = ferry_hook_item(ev);
  if (!v || json_is_null(v)) v = it ? json_object_get(it->body, "record_id") : NULL;
  if (json_is_string(v) && *json_string_value(v)) return preserve_xstrdup(json_string_value(v));
  if (json_is_integer(v)) {
    return ferry_asprintf("%" JSON_INTEGER_FORMAT, json_integer_value(v));
  }
  return NULL;
}

void preserve_pr_fire(ferry_instance *ins, ferry_hook_event *ev) {
  pr_ctx *c = ferry_instance_ctx(ins);
  const char *point = ferry_hook_point(ev);
  ferry_error e = FERRY_ERROR_INIT;
  int restore = !strcmp(point, "after_start");
  if (!restore && strcmp(point, "before_start")) {
    ferry_error_set(&e, FERRY_ECONFIG, "preserve-records runs at before_start and after_start, not at \"%s\"",
                    point);
    ferry_hook_done(ev, e.code, &e);
    ferry_error_clear(&e);
    return;
  }
  if (!ferry_hook_task(ev)) {
    ferry_error_set(&e, FERRY_EINVAL, "preserve-records: point \"%s\" was fired without an item", point);
    ferry_hook_done(ev, e.code, &e);
    ferry_error_clear(&e);
    return;
  }
  const ferry_item *it = ferry_hook_item(ev);
  char *rid = record_id_of(ev);
  if (!rid) {
    ferry_error_set(&e, FERRY_EINVAL, "preserve-records at %s: item \"%s\" has no record id (neither the "
                    "fired data nor the item's body has a non-empty \"record_id\")", point,
                    it ? it->key : "?");
    ferry_hook_done(ev, e.code, &e);
    ferry_error_clear(&e);
    return;
  }
  json_t *state = ferry_hook_state(ev);
  json_t *snapshot = json_object_get(state, "snapshot");
  const char *snap_rid = json_string_value(json_object_get(state, "record_id"));
  int have_snapshot = json_is_object(snapshot) && snap_rid && !strcmp(snap_rid, rid);
  if (!restore && have_snapshot) {
    /* An earlier attempt took it (before a crash or a retry): the rows may already have been changed by that
     * attempt's start, so the first snapshot is the one to keep. */
    ferry_log_debug(ins, "record \"%s\": keeping the snapshot taken by an earlier attempt", rid);
    free(rid);
    ferry_hook_done(ev, 0, NULL);
    return;
  }
  if (restore && ferry_instance_mode(ins) != FERRY_MODE_RUN) { /* plan / verify write nothing */
    free(rid);
    ferry_hook_done(ev, 0, NULL);
    return;
  }
  if (restore && !have_snapshot) {
    ferry_error_set(&e, FERRY_ECONFIG, "preserve-records at after_start: no snapshot of record \"%s\" for "
                    "item \"%s\" (attach the hook to before_start too; after a crash before the snapshot was "
                    "journaled, check the record's rows on the target by hand)", rid, it ? it->key : "?");
    free(rid);
    ferry_hook_done(ev, e.code, &e);
    ferry_error_clear(&e);
    return;
  }
  pr_op *op = preserve_xrealloc(NULL, sizeof *op);
  memset(op, 0, sizeof *op);
  op->c = c;
  op->ev = ev;
  op->restore = restore;
  op->record_id = rid;
  if (restore) { /* exactly the tables of the snapshot */
    const char *k;
    json_t *v;
    json_object_foreach(snapshot, k, v) list_add_unique(&op->tables, &op->ntables, k);
    qsort(op->tables, op->ntables, sizeof *op->tables, cmp_str);
    if (!op->ntables) {
      preserve_op_finish(op, 0, NULL);
      return;
    }
    op_catalog(op);
    return;
  }
  for (size_t i = 0; c->tables && c->tables[i]; i++) list_add_unique(&op->tables, &op->ntables, c->tables[i]);
  size_t napps = 0;
  for (size_t i = 0; c->apps && c->apps[i]; i++) list_add_unique(&op->apps, &napps, c->apps[i]);
  if (!(c->tables && c->tables[0]) && !(c->apps && c->apps[0])) {
    char *app = item_app(it, ferry_hook_data(ev));
    if (app) list_add_unique(&op->apps, &napps, app);
    free(app);
  }
  op_resolve_apps(op);
}
