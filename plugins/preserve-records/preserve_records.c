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
 *
 * The plugin's files: see preserve_records.h.
 */
#include "preserve_records.h"

/* ---- memory ------------------------------------------------------------------------------------------ */
void *preserve_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) abort();
  return q;
}

char *preserve_xstrdup(const char *s) {
  char *d = strdup(s ? s : "");
  if (!d) abort();
  return d;
}

/* ---- context ------------------------------------------------------------------------------------------- */
static const ferry_option pr_options[] = {
    {.key = "dsn", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_SECRET | FERRY_OPT_NONEMPTY,
     offsetof(pr_ctx, dsn),
     "the TARGET Joget database, whose rows are snapshot and restored: a libpq conninfo (keywords or URI) or "
     "a mysql:// / mariadb:// URL"},
    {.key = "tables", FERRY_OPT_STRING_LIST, NULL, FERRY_OPT_NONEMPTY, offsetof(pr_ctx, tables),
     "tables to preserve, by name (\"app_fd_leave\"); combined with \"apps\""},
    {.key = "apps", FERRY_OPT_STRING_LIST, NULL, FERRY_OPT_NONEMPTY, offsetof(pr_ctx, apps),
     "all form tables of these apps (app_fd_<tableName> of every form in the target's app_form); when "
     "neither this nor \"tables\" is set: the form tables of the instance item's own app",
     .deprecated_key = "app"},
    {.key = "key_column", FERRY_OPT_STRING, "\"id\"", FERRY_OPT_NONEMPTY, offsetof(pr_ctx, key_column),
     "column holding the record id in every preserved table (unique)"},
    {.key = "schema", FERRY_OPT_STRING, "\"\"", 0, offsetof(pr_ctx, schema),
     "schema of the tables (default: the connection's current schema)"},
    FERRY_OPTIONS_END};

static const char *const pr_points[] = {"before_start", "after_start", NULL};

/* Session settings that make the text form of values stable across sessions (the snapshot may be restored
 * by another run, on another connection). */
#define PR_SESSION_OPTIONS                                                                                \
  "-c DateStyle=ISO,YMD -c IntervalStyle=postgres -c TimeZone=UTC -c extra_float_digits=3 "            \
  "-c bytea_output=hex"

static void add_conn_value(ferry_buf *sb, const char *kw, const char *val) {
  ferry_buf_addf(sb, "%s%s='", sb->len ? " " : "", kw);
  for (const char *p = val; *p; p++) {
    if (*p == '\'' || *p == '\\') ferry_buf_addn(sb, "\\", 1);
    ferry_buf_addn(sb, p, 1);
  }
  ferry_buf_add(sb, "'");
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
  ferry_buf sb = {0};
  int had_options = 0;
  for (PQconninfoOption *o = opts; o->keyword; o++) {
    if (!o->val) continue;
    if (!strcmp(o->keyword, "options")) {
      char *v = ferry_asprintf("%s %s", o->val, PR_SESSION_OPTIONS);
      add_conn_value(&sb, "options", v);
      free(v);
      had_options = 1;
    } else {
      add_conn_value(&sb, o->keyword, o->val);
    }
  }
  if (!had_options) add_conn_value(&sb, "options", PR_SESSION_OPTIONS);
  PQconninfoFree(opts);
  return ferry_buf_steal(&sb);
}

static int is_mysql_url(const char *dsn) {
  return !strncmp(dsn, "mysql://", 8) || !strncmp(dsn, "mariadb://", 10);
}

static int pr_init(ferry_instance *ins, ferry_error *err) {
  pr_ctx *c = ferry_instance_ctx(ins);
  c->ins = ins;
  c->mysql = is_mysql_url(c->dsn);
  /* PostgreSQL: the user's conninfo with the session settings; MySQL: the URL as given (its text forms do
     not depend on session settings but time_zone, which only TIMESTAMP columns see, and which the server's
     default keeps the same for the snapshot and the restore) */
  char *ci = c->mysql ? preserve_xstrdup(c->dsn) : build_conninfo(c->dsn, err);
  if (!ci) return err->code;
  ferry_sql_opts so = {.struct_size = sizeof so};
  c->db = ferry_sql_open(ins, ci, &so, err);
  free(ci);
  if (!c->db) {
    ferry_error_prefix(err, "preserve-records: option \"dsn\"");
    return err->code ? err->code : FERRY_ECONFIG;
  }
  ferry_sql_engine eng = ferry_sql_engine_of(c->db);
  if (eng != FERRY_SQL_POSTGRESQL && eng != FERRY_SQL_MYSQL)
    return ferry_error_set(err, FERRY_ECONFIG,
                           "preserve-records: option \"dsn\" (%s): the target Joget database is PostgreSQL or "
                           "MySQL/MariaDB", ferry_sql_endpoint(c->db));
  c->mysql = eng == FERRY_SQL_MYSQL;
  return 0;
}

/* ---- reads through the SQL service --------------------------------------------------------------------- */
int preserve_res_n(const pr_res *r) { return r ? (int)r->nrows : 0; }
int preserve_res_null(const pr_res *r, int row, int col) {
  if (!r || row < 0 || col < 0 || (size_t)row >= r->nrows || (size_t)col >= r->ncols) return 1;
  return r->cells[(size_t)row * r->ncols + (size_t)col] == NULL;
}
const char *preserve_res_val(const pr_res *r, int row, int col) {
  return preserve_res_null(r, row, col) ? "" : r->cells[(size_t)row * r->ncols + (size_t)col];
}
int preserve_res_true(const pr_res *r, int row, int col) {
  const char *v = preserve_res_val(r, row, col);
  if (v[0] == 't') return 1;
  if (v[0] == 'f' || !v[0]) return 0;
  return strtod(v, NULL) != 0;
}

typedef struct pr_rd {
  pr_read_cb cb;
  void *arg;
  pr_res res;
} pr_rd;

static int rd_rows(void *arg, const ferry_sql_batch *b) {
  pr_rd *q = arg;
  q->res.ncols = b->ncols;
  size_t need = (q->res.nrows + b->nrows) * b->ncols;
  if (need > q->res.cap) {
    size_t cap = q->res.cap ? q->res.cap : 32;
    while (cap < need) cap *= 2;
    q->res.cells = preserve_xrealloc(q->res.cells, cap * sizeof *q->res.cells);
    q->res.cap = cap;
  }
  for (size_t r = 0; r < b->nrows; r++)
    for (size_t k = 0; k < b->ncols; k++) {
      const ferry_sql_value *v = FERRY_SQL_CELL(b, r, k);
      char *s = NULL;
      if (v->data) {
        s = preserve_xrealloc(NULL, v->len + 1);
        memcpy(s, v->data, v->len);
        s[v->len] = 0;
      }
      q->res.cells[(q->res.nrows + r) * b->ncols + k] = s;
    }
  q->res.nrows += b->nrows;
  return 0;
}

static void rd_free(pr_rd *q) {
  for (size_t i = 0; i < q->res.nrows * q->res.ncols; i++) free(q->res.cells[i]);
  free(q->res.cells);
  free(q);
}

static void rd_done(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  pr_rd *q = arg;
  q->cb(q->arg, status, status ? NULL : &q->res, status ? err : NULL);
  rd_free(q);
}

int preserve_read(pr_ctx *c, ferry_sql_txn *txn, const char *sql, size_t n, const char *const *params,
                  pr_read_cb cb, void *arg) {
  ferry_sql_value *pv = preserve_xrealloc(NULL, (n + 1) * sizeof *pv);
  for (size_t i = 0; i < n; i++) {
    pv[i].data = params[i];
    pv[i].len = params[i] ? strlen(params[i]) : 0;
    pv[i].binary = 0;
  }
  pr_rd *q = preserve_xrealloc(NULL, sizeof *q);
  memset(q, 0, sizeof *q);
  q->cb = cb;
  q->arg = arg;
  int rc = ferry_sql_query(c->db, txn, sql, n, n ? pv : NULL, rd_rows, rd_done, q);
  free(pv);
  if (rc < 0) rd_free(q);
  return rc;
}

void preserve_add_ident(ferry_buf *sb, const pr_ctx *c, const char *ident) {
  if (!c->mysql) {
    ferry_pg_add_ident(sb, ident);
    return;
  }
  char *q = ferry_sql_quote_ident(c->db, ident ? ident : "");
  ferry_buf_add(sb, q);
  free(q);
}

void preserve_add_literal(ferry_buf *sb, const pr_ctx *c, const char *value) {
  if (!c->mysql) {
    ferry_pg_add_literal(sb, value);
    return;
  }
  char *q = ferry_sql_quote_literal(c->db, value, value ? strlen(value) : 0);
  ferry_buf_add(sb, q);
  free(q);
}

void preserve_free_list(char **l) {
  for (size_t i = 0; l && l[i]; i++) free(l[i]);
  free(l);
}

static void pr_fini(ferry_instance *ins) {
  pr_ctx *c = ferry_instance_ctx(ins);
  ferry_sql_close(c->db);
  c->db = NULL;
  for (size_t i = 0; i < c->ncache; i++) {
    free(c->cache[i].app);
    preserve_free_list(c->cache[i].tables);
  }
  free(c->cache);
  c->cache = NULL;
  c->ncache = 0;
}

/* ---- one firing ---------------------------------------------------------------------------------------- */
static const ferry_hook_ops pr_hook = {
    .struct_size = sizeof(ferry_hook_ops),
    .points = pr_points,
    .fire = preserve_pr_fire,
};

FERRY_PLUGIN_DEFINE(preserve_records, .kinds = FERRY_KIND_HOOK, .name = "preserve-records",
                    .version = FERRY_VERSION_STRING,
                    .description = "snapshot a record's target rows before an instance starts, restore them "
                                   "after",
                    .license = "Apache-2.0", .options = pr_options, .ctx_size = sizeof(pr_ctx),
                    .init = pr_init, .fini = pr_fini, .hook = &pr_hook);
