/* ferry/sql.h driver for PostgreSQL: each pooled connection is a ferry/pg.h connection (pg.c), so libpq,
 * the non-blocking poll loop, name resolution on the thread pool, connect timeouts, lost-connection handling
 * and the error texts are pg.c's. Rows stream in libpq's single-row mode (ferry__pg_query_rows); bulk
 * inserts go through COPY FROM STDIN (ferry_pg_copy_in). bytea cells are unescaped to raw bytes
 * (PQunescapeBytea); binary parameters are sent in binary format.
 * Quoting: PQescapeIdentifier / PQescapeLiteral on a PGconn that never connects (made at setup from an
 * option libpq refuses, so it never touches the network): with no server settings known it escapes
 * byte-wise and writes E'' literals when there is a backslash, valid on every server.
 */
#include <stdlib.h>
#include <string.h>

#include "services/sql_driver.h"

typedef struct pgdrv {
  char *conninfo;
  PGconn *esc;                 /* for PQescape*: never connected */
} pgdrv;

typedef struct pgconn {
  sqlconn base;
  ferry_pg *pg;
  int closing;
  int have_cols;
  int *bytea;                  /* per column: 1 = bytea */
  size_t ncols;
  char *what;
} pgconn;

static ferry_sql_type pg_class(Oid t) {
  switch (t) {
    case 25: case 1042: case 1043: case 19: return FERRY_SQL_T_TEXT;
    case 20: case 21: case 23: return FERRY_SQL_T_INT;
    case 700: case 701: return FERRY_SQL_T_FLOAT;
    case 1700: return FERRY_SQL_T_DECIMAL;
    case 16: return FERRY_SQL_T_BOOL;
    case 17: return FERRY_SQL_T_BINARY;
    case 1082: return FERRY_SQL_T_DATE;
    case 1083: case 1266: return FERRY_SQL_T_TIME;
    case 1114: return FERRY_SQL_T_TIMESTAMP;
    case 1184: return FERRY_SQL_T_TIMESTAMPTZ;
    case 114: case 3802: return FERRY_SQL_T_JSON;
    default: return FERRY_SQL_T_OTHER;
  }
}

static const char *pg_oid_name(Oid t) {
  switch (t) {
    case 25: return "text"; case 1042: return "bpchar"; case 1043: return "varchar"; case 19: return "name";
    case 20: return "int8"; case 21: return "int2"; case 23: return "int4"; case 700: return "float4";
    case 701: return "float8"; case 1700: return "numeric"; case 16: return "bool"; case 17: return "bytea";
    case 1082: return "date"; case 1083: return "time"; case 1266: return "timetz"; case 1114: return "timestamp";
    case 1184: return "timestamptz"; case 114: return "json"; case 3802: return "jsonb"; case 26: return "oid";
    case 2950: return "uuid";
    default: return "other";
  }
}

static void set_columns(pgconn *c, const PGresult *res) {
  size_t n = (size_t)PQnfields(res);
  ferry_sql_column *cols = ferry__xcalloc(n ? n : 1, sizeof *cols);
  free(c->bytea);
  c->bytea = ferry__xcalloc(n ? n : 1, sizeof(int));
  for (size_t i = 0; i < n; i++) {
    Oid t = PQftype(res, (int)i);
    cols[i].name = PQfname(res, (int)i);
    cols[i].type = pg_class(t);
    cols[i].type_name = pg_oid_name(t);
    c->bytea[i] = t == 17;
  }
  c->ncols = n;
  ferry__sql_columns(&c->base, n, cols);
  free(cols);
  c->have_cols = 1;
}

static void on_row(void *arg, const PGresult *res) {
  pgconn *c = arg;
  if (c->closing) return;
  if (!c->have_cols) set_columns(c, res);
  for (size_t i = 0; i < c->ncols; i++) {
    if (PQgetisnull(res, 0, (int)i)) {
      ferry__sql_cell(&c->base, NULL, 0, 0);
    } else if (c->bytea[i]) {
      size_t len = 0;
      unsigned char *raw = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, (int)i), &len);
      ferry__sql_cell(&c->base, raw ? (const char *)raw : "", raw ? len : 0, 1);
      if (raw) PQfreemem(raw);
    } else {
      ferry__sql_cell(&c->base, PQgetvalue(res, 0, (int)i), (size_t)PQgetlength(res, 0, (int)i), 0);
    }
  }
  ferry__sql_row_end(&c->base);
}

static void on_done(void *arg, int status, PGresult *res, const ferry_error *err) {
  pgconn *c = arg;
  if (c->closing) return;
  char *what = c->what;
  c->what = NULL;
  if (status == 0) {
    if (!c->have_cols && res && PQnfields(res) > 0) set_columns(c, res);
    const char *ct = res ? PQcmdTuples(res) : "";
    uint64_t affected = *ct ? strtoull(ct, NULL, 10) : 0;
    if (res && PQresultStatus(res) == PGRES_TUPLES_OK) affected = 0;
    free(what);
    ferry__sql_stmt_done(&c->base, 0, affected, 0, NULL, 0);
    return;
  }
  /* pg.c's message starts with the statement's first words; sql.c adds them itself */
  const char *msg = err && err->message ? err->message : "failed";
  size_t wl = what ? strlen(what) : 0;
  if (what && !strncmp(msg, what, wl) && !strncmp(msg + wl, ": ", 2)) msg += wl + 2;
  int broken = strstr(msg, "cannot connect to PostgreSQL") || strstr(msg, "connection to PostgreSQL");
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_set(&e, status, "%s", msg);
  if (err && err->detail) ferry_error_set_detail(&e, "%s", err->detail);
  free(what);
  ferry__sql_stmt_done(&c->base, status, 0, 0, &e, broken);
  ferry_error_clear(&e);
}

static void pg_exec(sqlconn *base, sqlstmt *st) {
  pgconn *c = (pgconn *)base;
  c->have_cols = 0;
  free(c->what);
  c->what = ferry__sql_what(st->sql);
  int rc;
  if (st->copy_data) {
    rc = ferry_pg_copy_in(c->pg, st->sql, st->copy_data, st->copy_len, on_done, c);
  } else {
    size_t n = st->nparams;
    const char **vals = ferry__xcalloc(n ? n : 1, sizeof(char *));
    int *lens = ferry__xcalloc(n ? n : 1, sizeof(int));
    int *fmts = ferry__xcalloc(n ? n : 1, sizeof(int));
    for (size_t i = 0; i < n; i++) {
      vals[i] = st->params[i].data;
      lens[i] = (int)st->params[i].len;
      fmts[i] = st->params[i].binary ? 1 : 0;
    }
    rc = ferry__pg_query_rows(c->pg, st->sql, (int)n, vals, lens, fmts, on_row, on_done, c);
    free(vals);
    free(lens);
    free(fmts);
  }
  if (rc < 0) { /* only for bad arguments: report as the statement's failure (pg.c never calls back) */
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EINVAL, "the statement could not be queued");
    free(c->what);
    c->what = NULL;
    ferry__sql_stmt_done(base, FERRY_EINVAL, 0, 0, &e, 1);
    ferry_error_clear(&e);
  }
}

static sqlconn *pg_conn_open(ferry_sql *db) {
  pgdrv *d = db->drvdata;
  ferry_error err = FERRY_ERROR_INIT;
  ferry_pg *pg = ferry_pg_new(db->ins, d->conninfo, &err);
  ferry_error_clear(&err);
  if (!pg) return NULL; /* setup parsed the same conninfo: cannot happen */
  if (db->keep_session) ferry__pg_keep_session(pg);
  pgconn *c = ferry__xcalloc(1, sizeof *c);
  c->pg = pg;
  c->base.ready_now = 1; /* pg.c queues the statements until it is connected, and reports connect errors */
  return &c->base;
}

static void pg_conn_close(sqlconn *base) {
  pgconn *c = (pgconn *)base;
  c->closing = 1;
  ferry_pg_free(c->pg); /* cancels synchronously: on_done sees `closing` */
  free(c->bytea);
  free(c->what);
  free(c);
}

static int pg_setup(ferry_sql *db, const char *url, ferry_error *err) {
  PQconninfoOption *opts = ferry__pg_parse(url, err);
  if (!opts) return FERRY_ECONFIG;
  const char *host = NULL, *port = NULL, *db_ = NULL, *user = NULL;
  for (PQconninfoOption *o = opts; o->keyword; o++) {
    if (!o->val || !*o->val) continue;
    if (!strcmp(o->keyword, "host")) host = o->val;
    else if (!strcmp(o->keyword, "port")) port = o->val;
    else if (!strcmp(o->keyword, "dbname")) db_ = o->val;
    else if (!strcmp(o->keyword, "user")) user = o->val;
    else if (!strcmp(o->keyword, "password")) ferry__secret_add(o->val);
  }
  db->endpoint = ferry_asprintf("postgresql://%s%s%s:%s/%s", user ? user : "", user ? "@" : "",
                                  host ? host : "localhost", port ? port : "5432", db_ ? db_ : user ? user : "");
  PQconninfoFree(opts);
  pgdrv *d = ferry__xcalloc(1, sizeof *d);
  d->conninfo = ferry_strdup(url);
  const char *k[] = {"ferry_escape_only", NULL}, *v[] = {"1", NULL};
  d->esc = PQconnectStartParams(k, v, 0); /* refused option: CONNECTION_BAD, no network */
  db->drvdata = d;
  return 0;
}

static void pg_teardown(ferry_sql *db) {
  pgdrv *d = db->drvdata;
  if (!d) return;
  if (d->esc) PQfinish(d->esc);
  free(d->conninfo);
  free(d);
  db->drvdata = NULL;
}

static char *pg_quote_ident(const ferry_sql *db, const char *ident) {
  pgdrv *d = db->drvdata;
  char *q = d->esc ? PQescapeIdentifier(d->esc, ident, strlen(ident)) : NULL;
  if (!q) return ferry_pg_quote_ident(ident);
  char *r = ferry_strdup(q);
  PQfreemem(q);
  return r;
}

static char *pg_quote_literal(const ferry_sql *db, const char *v, size_t len) {
  pgdrv *d = db->drvdata;
  char *q = d->esc ? PQescapeLiteral(d->esc, v, len) : NULL;
  if (!q) return ferry_pg_quote_literal(v);
  char *r = ferry_strdup(q);
  PQfreemem(q);
  return r;
}

#define PG_TYPE_CLASS(t)                                                                                        \
  "CASE WHEN " t " IN (25, 1042, 1043, 19) THEN '1' WHEN " t " IN (20, 21, 23) THEN '2' WHEN " t                 \
  " IN (700, 701) THEN '3' WHEN " t " = 1700 THEN '4' WHEN " t " = 16 THEN '5' WHEN " t " = 17 THEN '6' WHEN " t  \
  " = 1082 THEN '7' WHEN " t " IN (1083, 1266) THEN '8' WHEN " t " = 1114 THEN '9' WHEN " t                       \
  " = 1184 THEN '10' WHEN " t " IN (114, 3802) THEN '11' ELSE '0' END"

const sql_driver ferry__sql_pg_driver = {
    .engine = FERRY_SQL_POSTGRESQL,
    .label = "PostgreSQL",
    .setup = pg_setup,
    .teardown = pg_teardown,
    .conn_open = pg_conn_open,
    .conn_close = pg_conn_close,
    .exec = pg_exec,
    .quote_ident = pg_quote_ident,
    .quote_literal = pg_quote_literal,
    .type_names = {"text", "text", "bigint", "double precision", "numeric", "boolean", "bytea", "date", "time",
                   "timestamp", "timestamptz", "jsonb"},
    .begin_rw = "BEGIN",
    .begin_snapshot = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    .commit = "COMMIT",
    .rollback = "ROLLBACK",
    .catalog = {
        NULL,
        "SELECT table_schema::text, table_name::text FROM information_schema.tables WHERE table_type = 'BASE TABLE' "
        "AND table_schema = ANY (current_schemas(false)) AND ($1::text IS NULL OR table_name = $1::text) "
        "ORDER BY 1, 2",
        "SELECT c.relname::text, a.attname::text, a.attnum::text, format_type(a.atttypid, a.atttypmod), "
        "CASE WHEN a.attnotnull THEN '0' ELSE '1' END, " PG_TYPE_CLASS("a.atttypid") " "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE c.relkind IN ('r', 'p') AND n.nspname = ANY (current_schemas(false)) AND a.attnum > 0 "
        "AND NOT a.attisdropped AND ($1::text IS NULL OR c.relname = $1::text) ORDER BY 1, a.attnum",
        "SELECT c.relname::text, a.attname::text, k.ord::text FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
        "WHERE i.indisprimary AND n.nspname = ANY (current_schemas(false)) "
        "AND ($1::text IS NULL OR c.relname = $1::text) ORDER BY 1, k.ord",
        "SELECT c.relname::text, con.conname::text, a.attname::text, k.ord::text, rc.relname::text, "
        "ra.attname::text FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_class rc ON rc.oid = con.confrelid "
        "CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k(attnum, refnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
        "JOIN pg_attribute ra ON ra.attrelid = rc.oid AND ra.attnum = k.refnum "
        "WHERE con.contype = 'f' AND n.nspname = ANY (current_schemas(false)) "
        "AND ($1::text IS NULL OR c.relname = $1::text) ORDER BY 1, 2, k.ord",
    },
};
