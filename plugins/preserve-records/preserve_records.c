/* preserve-records: a hook that keeps the target's form rows of an instance's record exactly as they were
 * before the instance was started there.
 *
 * Starting a process on the target runs its start path for real: tool activities ("set status to
 * submitted", "create the audit row") see and change the form rows that the forms stage has just copied.
 * Attached to the joget sink's points:
 *   before_start  snapshots, for the record id of the item, the row whose key column equals it in every
 *                 configured table (or null when there is none) into the hook state, which the journal keeps
 *                 with the task's state (so the snapshot survives a crash between the two points);
 *   after_start   puts every row back as it was, in one SQL statement (atomic): changed columns are updated
 *                 back, a row the start path created is deleted, a row it deleted is inserted again; and
 *                 reports what the tools had changed in the task report ("tools_changed") and the log.
 *
 * Idempotent: a snapshot already in the hook state is kept (a second before_start after a crash must not
 * snapshot rows the first start already changed), and a restore that finds the rows as in the snapshot writes
 * nothing. The record id comes from the fired data's "record_id", else from the item's body "record_id", so
 * the hook works with items of any kind.
 *
 * Values are kept as PostgreSQL text (col::text, restored with CAST(text AS <column type>)), so every type
 * round-trips exactly (numeric beyond double precision, timestamps, bytea); the connection fixes DateStyle,
 * IntervalStyle, TimeZone and bytea_output so that text stays readable in a later session.
 */
#define _GNU_SOURCE /* asprintf */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>
#include <ferry/pg.h>

/* ---- a small string builder ---------------------------------------------------------------------------- */
typedef struct sbuf {
  char *buf;
  size_t len, cap;
} sbuf;

static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) abort();
  return q;
}

static char *xstrdup(const char *s) {
  char *d = strdup(s ? s : "");
  if (!d) abort();
  return d;
}

static void sb_addn(sbuf *sb, const char *s, size_t n) {
  if (sb->len + n + 1 > sb->cap) {
    size_t cap = sb->cap ? sb->cap : 256;
    while (cap < sb->len + n + 1) cap *= 2;
    sb->buf = xrealloc(sb->buf, cap);
    sb->cap = cap;
  }
  memcpy(sb->buf + sb->len, s, n);
  sb->len += n;
  sb->buf[sb->len] = '\0';
}

static void sb_add(sbuf *sb, const char *s) { sb_addn(sb, s, strlen(s)); }

FERRY_PRINTF(2, 3) static void sb_addf(sbuf *sb, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  int n = vasprintf(&s, fmt, ap);
  va_end(ap);
  if (n < 0) abort();
  sb_addn(sb, s, (size_t)n);
  free(s);
}

/* Adds an identifier / literal quoted for SQL text. */
static void sb_ident(sbuf *sb, const char *ident) {
  char *q = ferry_pg_quote_ident(ident);
  if (!q) abort();
  sb_add(sb, q);
  free(q);
}

static void sb_lit(sbuf *sb, const char *value) {
  char *q = ferry_pg_quote_literal(value);
  if (!q) abort();
  sb_add(sb, q);
  free(q);
}

static char *sb_steal(sbuf *sb) {
  char *s = sb->buf ? sb->buf : xstrdup("");
  sb->buf = NULL;
  sb->len = sb->cap = 0;
  return s;
}

static void sb_free(sbuf *sb) {
  free(sb->buf);
  sb->buf = NULL;
  sb->len = sb->cap = 0;
}

/* ---- context ------------------------------------------------------------------------------------------- */
typedef struct app_tables {
  char *app;
  char **tables; /* NULL-terminated */
} app_tables;

typedef struct pr_ctx {
  /* options (written by the core) */
  char *dsn;
  char **tables;
  char **apps;
  char *key_column;
  char *schema;
  /* run state */
  ferry_instance *ins;
  ferry_pg *pg;
  app_tables *cache; /* resolved apps */
  size_t ncache;
} pr_ctx;

static const ferry_option pr_options[] = {
    {"dsn", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_SECRET, offsetof(pr_ctx, dsn),
     "libpq conninfo (keywords or URI) of the TARGET Joget database, whose rows are snapshot and restored"},
    {"tables", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(pr_ctx, tables),
     "tables to preserve, by name (\"app_fd_leave\"); combined with \"app\""},
    {"app", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(pr_ctx, apps),
     "all form tables of these apps (app_fd_<tableName> of every form in the target's app_form); when "
     "neither this nor \"tables\" is set: the form tables of the instance item's own app"},
    {"key_column", FERRY_OPT_STRING, "\"id\"", 0, offsetof(pr_ctx, key_column),
     "column holding the record id in every preserved table (unique)"},
    {"schema", FERRY_OPT_STRING, "\"\"", 0, offsetof(pr_ctx, schema),
     "schema of the tables (default: the connection's current schema)"},
    FERRY_OPTIONS_END};

static const char *const pr_points[] = {"before_start", "after_start", NULL};

/* Session settings that make the text form of values stable across sessions (the snapshot may be restored
 * by another run, on another connection). */
#define PR_SESSION_OPTIONS                                                                                \
  "-c DateStyle=ISO,YMD -c IntervalStyle=postgres -c TimeZone=UTC -c extra_float_digits=3 "            \
  "-c bytea_output=hex"

static void add_conn_value(sbuf *sb, const char *kw, const char *val) {
  sb_addf(sb, "%s%s='", sb->len ? " " : "", kw);
  for (const char *p = val; *p; p++) {
    if (*p == '\'' || *p == '\\') sb_addn(sb, "\\", 1);
    sb_addn(sb, p, 1);
  }
  sb_add(sb, "'");
}

/* The user's conninfo (keywords or URI) as keywords, with the session settings added to "options". */
static char *build_conninfo(const char *dsn, ferry_error *err) {
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
  if (!opts) {
    /* libpq's message may quote part of the string; do not repeat it (it could hold the password) */
    PQfreemem(perr);
    ferry_error_set(err, FERRY_ECONFIG, "preserve-records: option \"dsn\" is not a valid libpq conninfo "
                    "(keyword=value pairs or a postgresql:// URI)");
    return NULL;
  }
  sbuf sb = {0};
  int had_options = 0;
  for (PQconninfoOption *o = opts; o->keyword; o++) {
    if (!o->val) continue;
    if (!strcmp(o->keyword, "options")) {
      char *v = NULL;
      if (asprintf(&v, "%s %s", o->val, PR_SESSION_OPTIONS) < 0) abort();
      add_conn_value(&sb, "options", v);
      free(v);
      had_options = 1;
    } else {
      add_conn_value(&sb, o->keyword, o->val);
    }
  }
  if (!had_options) add_conn_value(&sb, "options", PR_SESSION_OPTIONS);
  PQconninfoFree(opts);
  return sb_steal(&sb);
}

static int pr_init(ferry_instance *ins, ferry_error *err) {
  pr_ctx *c = ferry_instance_ctx(ins);
  c->ins = ins;
  if (!c->key_column || !*c->key_column)
    return ferry_error_set(err, FERRY_ECONFIG, "preserve-records: option \"key_column\" must not be empty");
  for (size_t i = 0; c->tables && c->tables[i]; i++)
    if (!*c->tables[i])
      return ferry_error_set(err, FERRY_ECONFIG, "preserve-records: option \"tables\": element %zu is empty",
                             i);
  for (size_t i = 0; c->apps && c->apps[i]; i++)
    if (!*c->apps[i])
      return ferry_error_set(err, FERRY_ECONFIG, "preserve-records: option \"app\": element %zu is empty", i);
  char *ci = build_conninfo(c->dsn, err);
  if (!ci) return err->code;
  c->pg = ferry_pg_new(ins, ci, err);
  free(ci);
  if (!c->pg) {
    ferry_error_prefix(err, "preserve-records: option \"dsn\"");
    return err->code ? err->code : FERRY_ECONFIG;
  }
  return 0;
}

static void free_list(char **l) {
  for (size_t i = 0; l && l[i]; i++) free(l[i]);
  free(l);
}

static void pr_fini(ferry_instance *ins) {
  pr_ctx *c = ferry_instance_ctx(ins);
  ferry_pg_free(c->pg);
  c->pg = NULL;
  for (size_t i = 0; i < c->ncache; i++) {
    free(c->cache[i].app);
    free_list(c->cache[i].tables);
  }
  free(c->cache);
  c->cache = NULL;
  c->ncache = 0;
}

/* ---- one firing ---------------------------------------------------------------------------------------- */
typedef struct column {
  char *name;
  char *type;       /* format_type() of the column: usable in CAST(... AS type) */
  int generated;    /* GENERATED ... STORED: never written */
  int ident_always; /* GENERATED ALWAYS AS IDENTITY: not updated; inserted with OVERRIDING SYSTEM VALUE */
} column;

typedef struct table_info {
  char *name;
  char *schema;   /* where it was found; NULL when the table does not exist */
  column *cols;
  size_t ncols;
  int key;        /* index of the key column in cols, -1 when missing */
} table_info;

typedef struct pr_op {
  pr_ctx *c;
  ferry_hook_event *ev;
  int restore;        /* after_start */
  char *record_id;
  char **apps;        /* apps still to resolve (NULL-terminated), next index in next_app */
  size_t next_app;
  char **tables;      /* NULL-terminated, sorted, unique */
  size_t ntables;
  table_info *info;   /* ntables entries */
  char **params;      /* restore: $2.. values */
  size_t nparams;
} pr_op;

static void op_free(pr_op *op) {
  free(op->record_id);
  free_list(op->apps);
  free_list(op->tables);
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
  free_list(op->params);
  free(op);
}

static void op_finish(pr_op *op, int status, const ferry_error *err) {
  ferry_hook_event *ev = op->ev;
  op_free(op);
  ferry_hook_done(ev, status, err);
}

FERRY_PRINTF(3, 4) static void op_failf(pr_op *op, int code, const char *fmt, ...) {
  ferry_error e = FERRY_ERROR_INIT;
  va_list ap;
  va_start(ap, fmt);
  ferry_error_setv(&e, code, fmt, ap);
  va_end(ap);
  op_finish(op, code, &e);
  ferry_error_clear(&e);
}

/* A failure of the database: keeps the code (transient ones are retried with the item) and the detail. */
static void op_fail_pg(pr_op *op, const char *what, const ferry_error *err) {
  ferry_error e = FERRY_ERROR_INIT;
  if (err && err->code) ferry_error_copy(&e, err);
  else ferry_error_set(&e, FERRY_EINTERNAL, "no error text");
  ferry_error_prefix(&e, "%s of record \"%s\" on the target database", what, op->record_id);
  op_finish(op, e.code, &e);
  ferry_error_clear(&e);
}

static void list_add_unique(char ***list, size_t *n, const char *s) {
  for (size_t i = 0; i < *n; i++)
    if (!strcmp((*list)[i], s)) return;
  *list = xrealloc(*list, (*n + 2) * sizeof **list);
  (*list)[(*n)++] = xstrdup(s);
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
  if (app && *app) return xstrdup(app);
  const char *def = json_string_value(json_object_get(data, "definition"));
  if (!def && it) def = ferry_item_str(it, "definition", NULL);
  if (!def || !*def) return NULL;
  size_t n = strcspn(def, "#:");
  if (!n) return NULL;
  char *s = xstrdup(def);
  s[n] = '\0';
  return s;
}

static void op_resolve_apps(pr_op *op);
static void op_catalog(pr_op *op);

static void on_app_forms(void *arg, int status, PGresult *res, const ferry_error *err) {
  pr_op *op = arg;
  const char *app = op->apps[op->next_app];
  if (status) {
    op_fail_pg(op, "looking up the form tables of app", err);
    return;
  }
  int n = PQntuples(res);
  if (n == 0) {
    op_failf(op, FERRY_ENOENT,
             "app \"%s\" has no forms in app_form of the target database (is the app imported there? or "
             "list the tables with option \"tables\")", app);
    return;
  }
  pr_ctx *c = op->c;
  if (!cache_get(c, app)) {
    c->cache = xrealloc(c->cache, (c->ncache + 1) * sizeof *c->cache);
    app_tables *at = &c->cache[c->ncache++];
    at->app = xstrdup(app);
    at->tables = xrealloc(NULL, ((size_t)n + 1) * sizeof *at->tables);
    for (int i = 0; i < n; i++) at->tables[i] = xstrdup(PQgetvalue(res, i, 0));
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
      const char *sql = "SELECT DISTINCT 'app_fd_' || COALESCE(NULLIF(tablename, ''), formid) FROM app_form "
                        "WHERE appid = $1 ORDER BY 1";
      const char *params[] = {op->apps[op->next_app]};
      int rc = ferry_pg_query(c->pg, sql, 1, params, on_app_forms, op);
      if (rc < 0) op_failf(op, rc, "looking up the form tables of app \"%s\": cannot queue the query (%s)",
                           op->apps[op->next_app], ferry_strerror(rc));
      return;
    }
    for (size_t i = 0; at->tables[i]; i++) list_add_unique(&op->tables, &op->ntables, at->tables[i]);
    op->next_app++;
  }
  if (!op->ntables) {
    op_failf(op, FERRY_ECONFIG, "no table to preserve for record \"%s\": set option \"tables\" or \"app\" "
             "(the item names no app)", op->record_id);
    return;
  }
  qsort(op->tables, op->ntables, sizeof *op->tables, cmp_str);
  op_catalog(op);
}

/* ---- catalog ------------------------------------------------------------------------------------------- */
static void on_catalog(void *arg, int status, PGresult *res, const ferry_error *err);

static void op_catalog(pr_op *op) {
  op->info = xrealloc(NULL, op->ntables * sizeof *op->info);
  memset(op->info, 0, op->ntables * sizeof *op->info);
  sbuf arr = {0};
  sb_add(&arr, "{");
  for (size_t i = 0; i < op->ntables; i++) {
    op->info[i].name = xstrdup(op->tables[i]);
    op->info[i].key = -1;
    sb_add(&arr, i ? ",\"" : "\"");
    for (const char *p = op->tables[i]; *p; p++) {
      if (*p == '"' || *p == '\\') sb_addn(&arr, "\\", 1);
      sb_addn(&arr, p, 1);
    }
    sb_add(&arr, "\"");
  }
  sb_add(&arr, "}");
  const char *sql =
      "SELECT c.relname, n.nspname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
      "a.attgenerated <> '', a.attidentity = 'a' "
      "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
      "JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
      "WHERE n.nspname = COALESCE(NULLIF($1, ''), current_schema()) AND c.relname = ANY($2::text[]) "
      "AND c.relkind IN ('r', 'p') ORDER BY c.relname, a.attnum";
  const char *params[] = {op->c->schema ? op->c->schema : "", arr.buf};
  int rc = ferry_pg_query(op->c->pg, sql, 2, params, on_catalog, op);
  sb_free(&arr);
  if (rc < 0)
    op_failf(op, rc, "reading the target's catalog: cannot queue the query (%s)", ferry_strerror(rc));
}

static table_info *find_table(pr_op *op, const char *name) {
  for (size_t i = 0; i < op->ntables; i++)
    if (!strcmp(op->info[i].name, name)) return &op->info[i];
  return NULL;
}

static void op_snapshot(pr_op *op);
static void op_restore(pr_op *op);

static void on_catalog(void *arg, int status, PGresult *res, const ferry_error *err) {
  pr_op *op = arg;
  if (status) {
    op_fail_pg(op, op->restore ? "restore" : "snapshot", err);
    return;
  }
  for (int r = 0; r < PQntuples(res); r++) {
    table_info *t = find_table(op, PQgetvalue(res, r, 0));
    if (!t) continue;
    if (!t->schema) t->schema = xstrdup(PQgetvalue(res, r, 1));
    t->cols = xrealloc(t->cols, (t->ncols + 1) * sizeof *t->cols);
    column *col = &t->cols[t->ncols];
    col->name = xstrdup(PQgetvalue(res, r, 2));
    col->type = xstrdup(PQgetvalue(res, r, 3));
    col->generated = PQgetvalue(res, r, 4)[0] == 't';
    col->ident_always = PQgetvalue(res, r, 5)[0] == 't';
    if (!strcmp(col->name, op->c->key_column)) t->key = (int)t->ncols;
    t->ncols++;
  }
  for (size_t i = 0; i < op->ntables; i++) {
    table_info *t = &op->info[i];
    if (t->schema && t->key < 0) {
      op_failf(op, FERRY_ECONFIG, "table %s.%s has no column \"%s\" to find record \"%s\" by (option "
               "\"key_column\", or leave the table out of \"tables\")", t->schema, t->name, op->c->key_column,
               op->record_id);
      return;
    }
  }
  if (op->restore) op_restore(op);
  else op_snapshot(op);
}

/* json_object(ARRAY['c1', ...], ARRAY[t."c1"::text, ...])::text of the row alias t, without generated
 * columns */
static void sb_row_json(sbuf *sb, const table_info *t) {
  sb_add(sb, "json_object(ARRAY[");
  int first = 1;
  for (size_t k = 0; k < t->ncols; k++) {
    if (t->cols[k].generated) continue;
    if (!first) sb_add(sb, ", ");
    first = 0;
    sb_lit(sb, t->cols[k].name);
  }
  sb_add(sb, "]::text[], ARRAY[");
  first = 1;
  for (size_t k = 0; k < t->ncols; k++) {
    if (t->cols[k].generated) continue;
    if (!first) sb_add(sb, ", ");
    first = 0;
    sb_add(sb, "t.");
    sb_ident(sb, t->cols[k].name);
    sb_add(sb, "::text");
  }
  sb_add(sb, "]::text[])::text");
}

static void sb_table(sbuf *sb, const table_info *t) {
  sb_ident(sb, t->schema);
  sb_add(sb, ".");
  sb_ident(sb, t->name);
}

/* t."key" = CAST($1::text AS <key type>) */
static void sb_key_match(sbuf *sb, const table_info *t) {
  sb_add(sb, "t.");
  sb_ident(sb, t->cols[t->key].name);
  sb_addf(sb, " = CAST($1::text AS %s)", t->cols[t->key].type);
}

/* ---- before_start: snapshot ---------------------------------------------------------------------------- */
static void on_snapshot(void *arg, int status, PGresult *res, const ferry_error *err);

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
  op_finish(op, 0, NULL);
}

static void op_snapshot(pr_op *op) {
  sbuf sql = {0};
  size_t n = 0;
  for (size_t i = 0; i < op->ntables; i++) {
    const table_info *t = &op->info[i];
    if (!t->schema) continue;
    if (n++) sb_add(&sql, " UNION ALL ");
    sb_addf(&sql, "SELECT %zu, count(*), min(", i);
    sb_row_json(&sql, t);
    sb_add(&sql, ") FROM ");
    sb_table(&sql, t);
    sb_add(&sql, " t WHERE ");
    sb_key_match(&sql, t);
  }
  if (!n) { /* none of the tables exists yet (Joget creates them lazily): every row is absent */
    sb_free(&sql);
    json_t *snap = json_object();
    for (size_t i = 0; i < op->ntables; i++) json_object_set_new(snap, op->info[i].name, json_null());
    store_snapshot(op, snap);
    return;
  }
  const char *params[] = {op->record_id};
  int rc = ferry_pg_query(op->c->pg, sql.buf, 1, params, on_snapshot, op);
  sb_free(&sql);
  if (rc < 0) op_failf(op, rc, "snapshot of record \"%s\": cannot queue the query (%s)", op->record_id,
                       ferry_strerror(rc));
}

static void on_snapshot(void *arg, int status, PGresult *res, const ferry_error *err) {
  pr_op *op = arg;
  if (status) {
    op_fail_pg(op, "snapshot", err);
    return;
  }
  json_t *snap = json_object();
  for (size_t i = 0; i < op->ntables; i++) json_object_set_new(snap, op->info[i].name, json_null());
  for (int r = 0; r < PQntuples(res); r++) {
    size_t i = (size_t)strtoull(PQgetvalue(res, r, 0), NULL, 10);
    long long count = strtoll(PQgetvalue(res, r, 1), NULL, 10);
    if (i >= op->ntables) continue;
    const table_info *t = &op->info[i];
    if (count > 1) {
      json_decref(snap);
      op_failf(op, FERRY_EINVAL, "table %s.%s has %lld rows with %s = \"%s\": preserve-records needs a "
               "unique key column (option \"key_column\")", t->schema, t->name, count, op->c->key_column,
               op->record_id);
      return;
    }
    if (count == 0 || PQgetisnull(res, r, 2)) continue;
    json_error_t je;
    json_t *row = json_loads(PQgetvalue(res, r, 2), 0, &je);
    if (!json_is_object(row)) {
      json_decref(row);
      json_decref(snap);
      op_failf(op, FERRY_EPROTO, "snapshot of record \"%s\" in %s: the database returned a row that is not a "
               "JSON object (%s)", op->record_id, t->name, je.text);
      return;
    }
    json_object_set_new(snap, t->name, row);
  }
  store_snapshot(op, snap);
}

/* ---- after_start: restore ------------------------------------------------------------------------------ */
static void on_restore(void *arg, int status, PGresult *res, const ferry_error *err);

/* Adds a parameter; writes its reference ("$<n>::json") into ref. */
static void param_ref(pr_op *op, const char *value, char *ref, size_t size) {
  op->params = xrealloc(op->params, (op->nparams + 2) * sizeof *op->params);
  op->params[op->nparams++] = xstrdup(value);
  op->params[op->nparams] = NULL;
  snprintf(ref, size, "$%zu::json", op->nparams + 1); /* $1 is the record id */
}

/* CAST(<p>->>'col' AS type) */
static void sb_cast_from(sbuf *sb, const char *pref, const column *col) {
  sb_addf(sb, "CAST(%s->>", pref);
  sb_lit(sb, col->name);
  sb_addf(sb, " AS %s)", col->type);
}

static void op_restore(pr_op *op) {
  json_t *snapshot = json_object_get(ferry_hook_state(op->ev), "snapshot");
  sbuf sql = {0}, sel = {0};
  size_t n = 0;
  for (size_t i = 0; i < op->ntables; i++) {
    const table_info *t = &op->info[i];
    json_t *snap = json_object_get(snapshot, t->name);
    if (!t->schema) {
      if (json_is_object(snap)) {
        sb_free(&sql);
        sb_free(&sel);
        op_failf(op, FERRY_EINVAL, "restore of record \"%s\": table %s held the record before the start but "
                 "no longer exists on the target; restore it from the snapshot in the journal by hand",
                 op->record_id, t->name);
        return;
      }
      continue; /* absent before, still absent */
    }
    sb_add(&sql, n++ ? ",\n" : "WITH ");
    /* o<i>: the row as the start path left it (locked) */
    sb_addf(&sql, "o%zu AS (SELECT ", i);
    sb_row_json(&sql, t);
    sb_add(&sql, " AS j FROM ");
    sb_table(&sql, t);
    sb_add(&sql, " t WHERE ");
    sb_key_match(&sql, t);
    sb_add(&sql, " FOR UPDATE)");
    if (!json_is_object(snap)) { /* no row before: delete what the start path created */
      sb_addf(&sql, ",\nd%zu AS (DELETE FROM ", i);
      sb_table(&sql, t);
      sb_add(&sql, " t WHERE ");
      sb_key_match(&sql, t);
      sb_add(&sql, " RETURNING 1)");
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
        sb_addf(&sql, ",\nu%zu AS (UPDATE ", i);
        sb_table(&sql, t);
        sb_add(&sql, " t SET ");
        int first = 1;
        for (size_t k = 0; k < t->ncols; k++) {
          const column *col = &t->cols[k];
          if ((int)k == t->key || col->generated || col->ident_always) continue;
          if (!first) sb_add(&sql, ", ");
          first = 0;
          sb_ident(&sql, col->name);
          sb_add(&sql, " = ");
          sb_cast_from(&sql, pref, col);
        }
        sb_add(&sql, " WHERE ");
        sb_key_match(&sql, t);
        sb_add(&sql, " AND ARRAY[");
        first = 1;
        for (size_t k = 0; k < t->ncols; k++) {
          const column *col = &t->cols[k];
          if ((int)k == t->key || col->generated || col->ident_always) continue;
          if (!first) sb_add(&sql, ", ");
          first = 0;
          sb_add(&sql, "t.");
          sb_ident(&sql, col->name);
          sb_add(&sql, "::text");
        }
        sb_add(&sql, "]::text[] IS DISTINCT FROM ARRAY[");
        first = 1;
        for (size_t k = 0; k < t->ncols; k++) {
          const column *col = &t->cols[k];
          if ((int)k == t->key || col->generated || col->ident_always) continue;
          if (!first) sb_add(&sql, ", ");
          first = 0;
          sb_addf(&sql, "%s->>", pref);
          sb_lit(&sql, col->name);
        }
        sb_add(&sql, "]::text[] RETURNING 1)");
      }
      /* i<i>: the row again when the start path deleted it */
      sb_addf(&sql, ",\ni%zu AS (INSERT INTO ", i);
      sb_table(&sql, t);
      sb_add(&sql, " (");
      int first = 1;
      for (size_t k = 0; k < t->ncols; k++) {
        if (t->cols[k].generated) continue;
        if (!first) sb_add(&sql, ", ");
        first = 0;
        sb_ident(&sql, t->cols[k].name);
      }
      sb_add(&sql, ") OVERRIDING SYSTEM VALUE SELECT ");
      first = 1;
      for (size_t k = 0; k < t->ncols; k++) {
        if (t->cols[k].generated) continue;
        if (!first) sb_add(&sql, ", ");
        first = 0;
        sb_cast_from(&sql, pref, &t->cols[k]);
      }
      sb_addf(&sql, " WHERE NOT EXISTS (SELECT 1 FROM o%zu) RETURNING 1)", i);
    }
    if (sel.len) sb_add(&sel, " UNION ALL ");
    sb_addf(&sel, "SELECT %zu, (SELECT j FROM o%zu)", i, i);
  }
  if (!n) { /* nothing existed and nothing exists: nothing to restore */
    sb_free(&sql);
    sb_free(&sel);
    json_t *st = ferry_hook_state(op->ev);
    json_object_set_new(st, "restored", json_true());
    ferry_log_debug(op->c->ins, "record \"%s\": nothing to restore", op->record_id);
    op_finish(op, 0, NULL);
    return;
  }
  sb_add(&sql, "\n");
  sb_add(&sql, sel.buf);
  sb_free(&sel);
  size_t np = 1 + op->nparams;
  const char **params = xrealloc(NULL, np * sizeof *params);
  params[0] = op->record_id;
  for (size_t k = 0; k < op->nparams; k++) params[k + 1] = op->params[k];
  int rc = ferry_pg_query(op->c->pg, sql.buf, (int)np, params, on_restore, op);
  free(params);
  sb_free(&sql);
  if (rc < 0) op_failf(op, rc, "restore of record \"%s\": cannot queue the statement (%s)", op->record_id,
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
                       sbuf *desc) {
  const char *k;
  json_t *v;
  if (!json_is_object(snap) && json_is_object(cur)) {
    json_object_foreach(cur, k, v) {
      if (!json_is_null(v)) json_array_append_new(out, change(t->name, k, v, NULL, "deleted"));
    }
    sb_addf(desc, "%s%s (row created by the start path: deleted)", desc->len ? ", " : "", t->name);
    return;
  }
  if (json_is_object(snap) && !json_is_object(cur)) {
    json_object_foreach(snap, k, v) {
      if (!json_is_null(v)) json_array_append_new(out, change(t->name, k, NULL, v, "inserted"));
    }
    sb_addf(desc, "%s%s (row deleted by the start path: inserted again)", desc->len ? ", " : "", t->name);
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
      sb_addf(desc, "%s%s.%s", desc->len ? ", " : "", t->name, k);
    }
  }
}

static void on_restore(void *arg, int status, PGresult *res, const ferry_error *err) {
  pr_op *op = arg;
  if (status) {
    op_fail_pg(op, "restore", err);
    return;
  }
  json_t *state = ferry_hook_state(op->ev);
  json_t *snapshot = json_object_get(state, "snapshot");
  json_t *changes = json_array();
  sbuf desc = {0};
  for (int r = 0; r < PQntuples(res); r++) {
    size_t i = (size_t)strtoull(PQgetvalue(res, r, 0), NULL, 10);
    if (i >= op->ntables) continue;
    const table_info *t = &op->info[i];
    json_t *cur = NULL;
    if (!PQgetisnull(res, r, 1)) {
      json_error_t je;
      cur = json_loads(PQgetvalue(res, r, 1), 0, &je);
      if (!json_is_object(cur)) {
        json_decref(cur);
        cur = NULL;
      }
    }
    diff_table(t, json_object_get(snapshot, t->name), cur, op->c->key_column, changes, &desc);
    json_decref(cur);
  }
  json_object_set_new(state, "restored", json_true());
  json_t *report = ferry_task_report(ferry_hook_task(op->ev));
  if (json_array_size(changes)) {
    json_object_set(state, "tools_changed", changes);
    ferry_log_info(op->c->ins, "record \"%s\": start-path tools changed %s; restored as before the start",
                   op->record_id, desc.buf);
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
  sb_free(&desc);
  op_finish(op, 0, NULL);
}

/* ---- fire ---------------------------------------------------------------------------------------------- */
static char *record_id_of(ferry_hook_event *ev) {
  json_t *data = ferry_hook_data(ev);
  json_t *v = json_object_get(data, "record_id");
  const ferry_item *it = ferry_hook_item(ev);
  if (!v || json_is_null(v)) v = it ? json_object_get(it->body, "record_id") : NULL;
  if (json_is_string(v) && *json_string_value(v)) return xstrdup(json_string_value(v));
  if (json_is_integer(v)) {
    char *s = NULL;
    if (asprintf(&s, "%" JSON_INTEGER_FORMAT, json_integer_value(v)) < 0) abort();
    return s;
  }
  return NULL;
}

static void pr_fire(ferry_instance *ins, ferry_hook_event *ev) {
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
  pr_op *op = xrealloc(NULL, sizeof *op);
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
      op_finish(op, 0, NULL);
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

static const ferry_hook_ops pr_hook = {
    .struct_size = sizeof(ferry_hook_ops),
    .points = pr_points,
    .fire = pr_fire,
};

FERRY_PLUGIN_DEFINE(preserve_records, .kinds = FERRY_KIND_HOOK, .name = "preserve-records",
                    .version = FERRY_VERSION_STRING,
                    .description = "snapshot a record's target rows before an instance starts, restore them "
                                   "after",
                    .license = "Apache-2.0", .options = pr_options, .ctx_size = sizeof(pr_ctx),
                    .init = pr_init, .fini = pr_fini, .hook = &pr_hook);
