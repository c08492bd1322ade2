/* ferry/sql.h driver for SQLite: every call into SQLite runs on the libuv thread pool (uv_queue_work), never
 * on the loop. A pooled connection is one sqlite3 handle (SQLITE_OPEN_NOMUTEX: sql.c gives it one statement
 * at a time, so one thread at a time uses it). A statement runs in steps: each work item steps up to
 * batch_rows rows into a buffer of its own; the loop side hands them to sql.c and queues the next step, so
 * a result of any size needs one batch of memory. Parameters $1..$n become ?1..?n (positional) before
 * prepare. Closing finalizes and closes in a last work item (closing may checkpoint the WAL).
 */
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "services/sql_driver.h"

enum { W_OPEN = 1, W_STEP, W_CLOSE };

typedef struct sqdrv {
  char *path;
  int flags;
} sqdrv;

typedef struct sqcell { size_t off, len; int null, binary; } sqcell;

typedef struct sqconn {
  sqlconn base;
  uv_loop_t *loop;
  uv_work_t work;
  int job;
  int busy;                    /* a work item is queued or running */
  int closing;
  sqlite3 *h;
  char *path;
  int flags;
  unsigned batch;
  char *sql;                   /* the running statement's text and parameters: the worker's own copies (the */
  ferry_sql_value *params;     /* operation may be freed by a close while a work item runs); freed once bound */
  size_t nparams;
  sqlite3_stmt *stmt;
  int started, finished;
  /* filled by the worker */
  int rc;
  char *errmsg;
  size_t ncols;
  ferry_sql_column *cols;
  ferry_buf colnames;
  sqcell *cells;
  size_t ncells, cap;
  ferry_buf arena;
  uint64_t changes, rowid;
} sqconn;

static ferry_sql_type decl_class(const char *t) {
  if (!t || !*t) return FERRY_SQL_T_OTHER;
  char u[64];
  size_t n = strlen(t) < sizeof u - 1 ? strlen(t) : sizeof u - 1;
  for (size_t i = 0; i < n; i++) u[i] = (char)(t[i] >= 'a' && t[i] <= 'z' ? t[i] - 32 : t[i]);
  u[n] = 0;
  if (strstr(u, "BOOL")) return FERRY_SQL_T_BOOL;
  if (strstr(u, "INT")) return FERRY_SQL_T_INT;
  if (strstr(u, "CHAR") || strstr(u, "CLOB") || strstr(u, "TEXT")) return FERRY_SQL_T_TEXT;
  if (strstr(u, "BLOB")) return FERRY_SQL_T_BINARY;
  if (strstr(u, "REAL") || strstr(u, "FLOA") || strstr(u, "DOUB")) return FERRY_SQL_T_FLOAT;
  if (strstr(u, "DEC") || strstr(u, "NUM")) return FERRY_SQL_T_DECIMAL;
  if (strstr(u, "DATETIME") || strstr(u, "TIMESTAMP")) return FERRY_SQL_T_TIMESTAMP;
  if (strstr(u, "DATE")) return FERRY_SQL_T_DATE;
  if (strstr(u, "TIME")) return FERRY_SQL_T_TIME;
  if (strstr(u, "JSON")) return FERRY_SQL_T_JSON;
  return FERRY_SQL_T_OTHER;
}

static void set_err(sqconn *c, int rc) {
  free(c->errmsg);
  c->rc = rc;
  c->errmsg = ferry_strdup(c->h ? sqlite3_errmsg(c->h) : sqlite3_errstr(rc));
}

/* ---- worker side ---------------------------------------------------------------------------------------- */

static void w_bind(sqconn *c) {
  /* positional(): parameter N has index N; the largest index is the count */
  int n = sqlite3_bind_parameter_count(c->stmt);
  if ((size_t)n > c->nparams) {
    c->rc = SQLITE_RANGE;
    free(c->errmsg);
    c->errmsg = ferry_asprintf("parameter $%d given but %zu parameters passed", n, c->nparams);
    return;
  }
  for (int i = 1; i <= n; i++) {
    const ferry_sql_value *v = &c->params[i - 1];
    int rc;
    if (!v->data) rc = sqlite3_bind_null(c->stmt, i);
    else if (v->binary) rc = sqlite3_bind_blob64(c->stmt, i, v->data, v->len, SQLITE_TRANSIENT);
    else rc = sqlite3_bind_text64(c->stmt, i, v->data, v->len, SQLITE_TRANSIENT, SQLITE_UTF8);
    if (rc != SQLITE_OK) return set_err(c, rc);
  }
}

/* $N -> ? when the parameters appear once each, in order ($1, $2, ...: a multi-row INSERT), else ?N; outside
 * quotes and comments. Both are positional (parameter N has index N). SQLite keeps a name list for $N and
 * ?N and searches it linearly, O(n^2) for the thousands of parameters of a multi-row INSERT: 37 s instead
 * of under one for 100,000 rows. */
static char *positional(const char *sql) {
  ferry_buf sb = {0}, anon = {0};
  unsigned long expect = 1;
  int in_order = 1;
  const char *s = sql;
  while (*s) {
    char ch = *s;
    if (ch == '\'' || ch == '"' || ch == '`' || ch == '[') {
      char close = ch == '[' ? ']' : ch;
      const char *start = s++;
      while (*s && *s != close) s++;
      if (*s) s++;
      ferry_buf_addn(&sb, start, (size_t)(s - start));
      ferry_buf_addn(&anon, start, (size_t)(s - start));
      continue;
    }
    if ((ch == '-' && s[1] == '-') || (ch == '/' && s[1] == '*')) {
      const char *e = ch == '-' ? strchr(s, '\n') : strstr(s + 2, "*/");
      size_t n = e ? (size_t)(e - s) + (ch == '/' ? 2 : 0) : strlen(s);
      ferry_buf_addn(&sb, s, n);
      ferry_buf_addn(&anon, s, n);
      s += n;
      continue;
    }
    if (ch == '$' && s[1] >= '1' && s[1] <= '9') {
      char *end;
      unsigned long k = strtoul(s + 1, &end, 10);
      if (k != expect++) in_order = 0;
      ferry_buf_add(&sb, "?");
      ferry_buf_addn(&sb, s + 1, (size_t)(end - s - 1));
      ferry_buf_add(&anon, "?");
      s = end;
      continue;
    }
    ferry_buf_addn(&sb, s, 1);
    ferry_buf_addn(&anon, s, 1);
    s++;
  }
  if (in_order) {
    ferry_buf_free(&sb);
    return ferry_buf_steal(&anon);
  }
  ferry_buf_free(&anon);
  return ferry_buf_steal(&sb);
}

static void free_params(sqconn *c) {
  for (size_t i = 0; i < c->nparams; i++) free((char *)c->params[i].data);
  free(c->params);
  c->params = NULL;
  c->nparams = 0;
  free(c->sql);
  c->sql = NULL;
}

static void w_step(sqconn *c) {
  c->ncells = 0;
  c->arena.len = 0;
  c->rc = SQLITE_OK;
  if (!c->started) {
    c->started = 1;
    char *sql = positional(c->sql);
    int rc = sqlite3_prepare_v2(c->h, sql, -1, &c->stmt, NULL);
    free(sql);
    if (rc != SQLITE_OK) {
      set_err(c, rc);
      c->finished = 1;
      free_params(c);
      return;
    }
    if (!c->stmt) { /* empty statement */
      free_params(c);
      c->finished = 1;
      return;
    }
    w_bind(c);
    free_params(c); /* SQLite copied them */
    if (c->rc != SQLITE_OK) {
      sqlite3_finalize(c->stmt);
      c->stmt = NULL;
      c->finished = 1;
      return;
    }
    c->ncols = (size_t)sqlite3_column_count(c->stmt);
    c->colnames.len = 0;
    free(c->cols);
    c->cols = ferry__xcalloc(c->ncols ? c->ncols : 1, sizeof *c->cols);
    size_t *offs = ferry__xcalloc(c->ncols * 2 + 1, sizeof *offs);
    for (size_t i = 0; i < c->ncols; i++) {
      const char *nm = sqlite3_column_name(c->stmt, (int)i);
      const char *dt = sqlite3_column_decltype(c->stmt, (int)i);
      offs[2 * i] = c->colnames.len;
      ferry_buf_addn(&c->colnames, nm ? nm : "", strlen(nm ? nm : "") + 1);
      offs[2 * i + 1] = c->colnames.len;
      ferry_buf_addn(&c->colnames, dt ? dt : "", strlen(dt ? dt : "") + 1);
      c->cols[i].type = decl_class(dt);
    }
    for (size_t i = 0; i < c->ncols; i++) {
      c->cols[i].name = c->colnames.buf + offs[2 * i];
      c->cols[i].type_name = c->colnames.buf + offs[2 * i + 1];
    }
    free(offs);
  }
  for (unsigned r = 0; r < c->batch; r++) {
    sqlite3_int64 before = sqlite3_total_changes64(c->h);
    int rc = sqlite3_step(c->stmt);
    if (rc == SQLITE_DONE) {
      /* this statement's own rows (sqlite3_changes64 keeps the last INSERT's count through BEGIN/COMMIT) */
      c->changes = (uint64_t)(sqlite3_total_changes64(c->h) - before);
      c->rowid = (uint64_t)sqlite3_last_insert_rowid(c->h);
      break;
    }
    if (rc != SQLITE_ROW) {
      set_err(c, rc);
      break;
    }
    for (size_t i = 0; i < c->ncols; i++) {
      if (c->ncells == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->cells = ferry__xrealloc(c->cells, c->cap * sizeof *c->cells);
      }
      sqcell *cell = &c->cells[c->ncells++];
      int t = sqlite3_column_type(c->stmt, (int)i);
      cell->null = t == SQLITE_NULL;
      cell->binary = t == SQLITE_BLOB;
      cell->off = c->arena.len;
      cell->len = 0;
      if (cell->null) continue;
      const void *p = t == SQLITE_BLOB ? sqlite3_column_blob(c->stmt, (int)i) : sqlite3_column_text(c->stmt, (int)i);
      cell->len = (size_t)sqlite3_column_bytes(c->stmt, (int)i);
      if (cell->len) ferry_buf_addn(&c->arena, p, cell->len);
    }
    if (r + 1 == c->batch) return; /* more may follow */
  }
  /* done or failed */
  sqlite3_finalize(c->stmt);
  c->stmt = NULL;
  c->finished = 1;
}

static void w_run(uv_work_t *w) {
  sqconn *c = w->data;
  switch (c->job) {
    case W_OPEN: {
      int rc = sqlite3_open_v2(c->path, &c->h, c->flags | SQLITE_OPEN_NOMUTEX, NULL);
      if (rc != SQLITE_OK) {
        set_err(c, rc);
        sqlite3_close(c->h);
        c->h = NULL;
        return;
      }
      sqlite3_busy_timeout(c->h, 10000);
      sqlite3_extended_result_codes(c->h, 1);
      c->rc = SQLITE_OK;
      return;
    }
    case W_STEP: return w_step(c);
    case W_CLOSE:
      if (c->stmt) sqlite3_finalize(c->stmt);
      c->stmt = NULL;
      if (c->h) sqlite3_close(c->h);
      c->h = NULL;
      return;
  }
}

/* ---- loop side ------------------------------------------------------------------------------------------- */

static void conn_free(sqconn *c) {
  free_params(c);
  free(c->path);
  free(c->errmsg);
  free(c->cols);
  ferry_buf_free(&c->colnames);
  free(c->cells);
  ferry_buf_free(&c->arena);
  free(c);
}

static void w_after(uv_work_t *w, int status);

static void queue(sqconn *c, int job) {
  c->job = job;
  c->busy = 1;
  c->work.data = c;
  uv_queue_work(c->loop, &c->work, w_run, w_after);
}

static int rc_code(int rc) {
  switch (rc & 0xff) {
    case SQLITE_CONSTRAINT:
      return (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) ? FERRY_ECONFLICT : FERRY_EINVAL;
    case SQLITE_BUSY: case SQLITE_LOCKED: return FERRY_ETRANSIENT;
    case SQLITE_PERM: case SQLITE_AUTH: case SQLITE_READONLY: return FERRY_EPERM;
    case SQLITE_CANTOPEN: case SQLITE_NOTADB: return FERRY_ECONFIG;
    case SQLITE_IOERR: case SQLITE_FULL: case SQLITE_CORRUPT: return FERRY_EIO;
    case SQLITE_NOMEM: return FERRY_ENOMEM;
    default: return FERRY_EINVAL;
  }
}

static void fill_err(sqconn *c, ferry_error *e, const char *what) {
  ferry_error_set(e, rc_code(c->rc), "%s (SQLite error %d: %s)", what, c->rc, sqlite3_errstr(c->rc));
  ferry_error_set_detail(e, "SQLite error %d: %s", c->rc, c->errmsg ? c->errmsg : "");
}

static void w_after(uv_work_t *w, int status) {
  sqconn *c = w->data;
  c->busy = 0;
  if (c->closing) {
    if (c->job == W_CLOSE) return conn_free(c);
    return queue(c, W_CLOSE);
  }
  if (c->job == W_OPEN) {
    if (c->rc != SQLITE_OK) {
      ferry_error e = FERRY_ERROR_INIT;
      fill_err(c, &e, "cannot open the database");
      ferry__sql_conn_ready(&c->base, e.code, &e);
      ferry_error_clear(&e);
      return;
    }
    return ferry__sql_conn_ready(&c->base, 0, NULL);
  }
  /* W_STEP: the first step brings the columns. While the rows go to sql.c, a callback may close the
   * endpoint: `busy` keeps sq_conn_close from queueing the close itself, done below. */
  c->busy = 1;
  if (c->cols) {
    ferry__sql_columns(&c->base, c->ncols, c->cols);
    free(c->cols);
    c->cols = NULL;
  }
  for (size_t i = 0; i < c->ncells; i++) {
    sqcell *cell = &c->cells[i];
    ferry__sql_cell(&c->base, cell->null ? NULL : cell->len ? c->arena.buf + cell->off : "", cell->len, cell->binary);
    if (c->ncols && (i + 1) % c->ncols == 0) {
      ferry__sql_row_end(&c->base);
      if (c->closing) break;
    }
  }
  c->ncells = 0;
  c->busy = 0;
  if (c->closing) return queue(c, W_CLOSE);
  if (!c->finished) return queue(c, W_STEP);
  if (c->rc != SQLITE_OK) {
    ferry_error e = FERRY_ERROR_INIT;
    fill_err(c, &e, "the statement failed");
    ferry__sql_stmt_done(&c->base, e.code, 0, 0, &e, 0);
    ferry_error_clear(&e);
    return;
  }
  ferry__sql_stmt_done(&c->base, 0, c->ncols ? 0 : c->changes, c->ncols ? 0 : c->rowid, NULL, 0);
}

static void sq_exec(sqlconn *base, sqlstmt *st) {
  sqconn *c = (sqconn *)base;
  free_params(c);
  c->sql = ferry_strdup(st->sql);
  c->nparams = st->nparams;
  c->params = ferry__xcalloc(st->nparams ? st->nparams : 1, sizeof *c->params);
  for (size_t i = 0; i < st->nparams; i++) {
    c->params[i] = st->params[i];
    if (st->params[i].data) { /* binary data may hold NULs */
      char *d = ferry__xmalloc(st->params[i].len + 1);
      memcpy(d, st->params[i].data, st->params[i].len);
      d[st->params[i].len] = 0;
      c->params[i].data = d;
    }
  }
  c->started = c->finished = 0;
  c->ncols = 0;
  c->batch = base->db->batch_rows;
  queue(c, W_STEP);
}

static sqlconn *sq_conn_open(ferry_sql *db) {
  sqdrv *d = db->drvdata;
  sqconn *c = ferry__xcalloc(1, sizeof *c);
  c->loop = db->loop;
  c->path = ferry_strdup(d->path);
  c->flags = d->flags;
  queue(c, W_OPEN);
  return &c->base;
}

static void sq_conn_close(sqlconn *base) {
  sqconn *c = (sqconn *)base;
  c->closing = 1;
  if (!c->busy) queue(c, W_CLOSE); /* else w_after queues it */
}

static int sq_setup(ferry_sql *db, const char *url, ferry_error *err) {
  sqdrv *d = ferry__xcalloc(1, sizeof *d);
  db->drvdata = d;
  d->flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
  const char *p = url;
  if (!strncmp(p, "file:", 5)) {
    d->flags |= SQLITE_OPEN_URI;
    d->path = ferry_strdup(url);
    db->endpoint = ferry_asprintf("sqlite:%.*s", (int)strcspn(url + 5, "?"), url + 5);
    return 0;
  }
  if (!strncmp(p, "sqlite://", 9)) {
    p += 9;
    if (*p != '/') {
      ferry_error_set(err, FERRY_ECONFIG, "SQLite URL %s: expected sqlite:///absolute/path or sqlite:relative/path", url);
      return FERRY_ECONFIG;
    }
  } else if (!strncmp(p, "sqlite:", 7)) {
    p += 7;
  }
  size_t n = strcspn(p, "?");
  d->path = ferry_strndup(p, n);
  ferry__sql_url_decode(d->path);
  if (!*d->path) {
    ferry_error_set(err, FERRY_ECONFIG, "SQLite URL %s: no file path", url);
    return FERRY_ECONFIG;
  }
  if (p[n] == '?') {
    if (!strcmp(p + n + 1, "mode=ro")) d->flags = SQLITE_OPEN_READONLY;
    else if (strcmp(p + n + 1, "mode=rw")) {
      ferry_error_set(err, FERRY_ECONFIG, "SQLite URL %s: unknown option (known: mode=ro, mode=rw)", url);
      return FERRY_ECONFIG;
    }
  }
  db->endpoint = ferry_asprintf("sqlite://%s%s", d->path[0] == '/' ? "" : "./", d->path);
  return 0;
}

static void sq_teardown(ferry_sql *db) {
  sqdrv *d = db->drvdata;
  if (!d) return;
  free(d->path);
  free(d);
  db->drvdata = NULL;
}

static char *sq_quote_ident(const ferry_sql *db, const char *ident) {
  char *q = sqlite3_mprintf("\"%w\"", ident);
  char *r = ferry_strdup(q);
  sqlite3_free(q);
  return r;
}

static char *sq_quote_literal(const ferry_sql *db, const char *v, size_t len) {
  char *q = sqlite3_mprintf("%.*Q", (int)len, v);
  char *r = ferry_strdup(q);
  sqlite3_free(q);
  return r;
}

#define SQ_TABLES "m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' AND ($1 IS NULL OR m.name = $1)"

const sql_driver ferry__sql_sqlite_driver = {
    .engine = FERRY_SQL_SQLITE,
    .label = "SQLite",
    .setup = sq_setup,
    .teardown = sq_teardown,
    .conn_open = sq_conn_open,
    .conn_close = sq_conn_close,
    .exec = sq_exec,
    .quote_ident = sq_quote_ident,
    .quote_literal = sq_quote_literal,
    .type_names = {"TEXT", "TEXT", "INTEGER", "REAL", "NUMERIC", "BOOLEAN", "BLOB", "DATE", "TIME", "DATETIME",
                   "DATETIME", "TEXT"},
    .begin_rw = "BEGIN IMMEDIATE",
    .begin_snapshot = "BEGIN",
    .commit = "COMMIT",
    .rollback = "ROLLBACK",
    .catalog = {
        NULL,
        "SELECT 'main', m.name FROM sqlite_schema m WHERE " SQ_TABLES " ORDER BY 2",
        "SELECT m.name, p.name, CAST(p.cid + 1 AS TEXT), p.type, CASE WHEN p.\"notnull\" THEN '0' ELSE '1' END, "
        "CASE WHEN upper(p.type) LIKE '%BOOL%' THEN '5' WHEN upper(p.type) LIKE '%INT%' THEN '2' "
        "WHEN upper(p.type) LIKE '%CHAR%' OR upper(p.type) LIKE '%CLOB%' OR upper(p.type) LIKE '%TEXT%' THEN '1' "
        "WHEN upper(p.type) LIKE '%BLOB%' THEN '6' WHEN upper(p.type) LIKE '%REAL%' OR upper(p.type) LIKE '%FLOA%' "
        "OR upper(p.type) LIKE '%DOUB%' THEN '3' WHEN upper(p.type) LIKE '%DEC%' OR upper(p.type) LIKE '%NUM%' THEN '4' "
        "WHEN upper(p.type) LIKE '%DATETIME%' OR upper(p.type) LIKE '%TIMESTAMP%' THEN '9' "
        "WHEN upper(p.type) LIKE '%DATE%' THEN '7' WHEN upper(p.type) LIKE '%TIME%' THEN '8' "
        "WHEN upper(p.type) LIKE '%JSON%' THEN '11' ELSE '0' END "
        "FROM sqlite_schema m JOIN pragma_table_info(m.name) p WHERE " SQ_TABLES " ORDER BY m.name, p.cid",
        "SELECT m.name, p.name, CAST(p.pk AS TEXT) FROM sqlite_schema m JOIN pragma_table_info(m.name) p "
        "WHERE p.pk > 0 AND " SQ_TABLES " ORDER BY m.name, p.pk",
        "SELECT m.name, 'fk_' || m.name || '_' || f.id, f.\"from\", CAST(f.seq + 1 AS TEXT), f.\"table\", f.\"to\" "
        "FROM sqlite_schema m JOIN pragma_foreign_key_list(m.name) f WHERE " SQ_TABLES
        " ORDER BY m.name, f.id, f.seq",
    },
};
