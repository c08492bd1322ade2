/* ferry core, layer "services": what the SQL service (sql.c, ferry/sql.h) asks of an engine driver
 * (sql_pg.c, sql_mysql.c, sql_sqlite.c). Internal.
 *
 * sql.c owns the queue, the pool, transactions, the rate limit and the batching of rows; a driver runs one
 * statement at a time on one connection and reports what comes back through the ferry__sql_* calls below,
 * always on the loop thread and never from inside driver->exec() or driver->conn_open() (defer with a
 * timer or a poll callback).
 */
#ifndef FERRY_CORE_SQL_DRIVER_H
#define FERRY_CORE_SQL_DRIVER_H

#include <libpq-fe.h>

#include "load/load.h"
#include "ferry/pg.h"
#include "ferry/sql.h"

typedef struct sqlconn sqlconn;

/* One statement as a driver runs it. params are copied (data NUL-terminated). */
typedef struct sqlstmt {
  struct sqlstmt *next;
  char *sql;                   /* $1..$n placeholders */
  size_t nparams;
  ferry_sql_value *params;
  char *copy_data;             /* PostgreSQL COPY FROM STDIN data (sql is the COPY), or NULL; MySQL: the
                                  LOAD DATA LOCAL INFILE data (sql is the LOAD DATA) */
  size_t copy_len;
  uint64_t load_rows;          /* MySQL LOAD DATA: the rows in copy_data (fewer loaded, or a warning, fails) */
  int capture;                 /* keep the first cell of the first row (sqlop.captured) */
} sqlstmt;

/* The base of a driver's connection (first member of the driver's struct). */
struct sqlconn {
  sqlconn *next;
  ferry_sql *db;
  int state;                   /* C_CONNECTING, C_IDLE, C_BUSY (sql.c) */
  ferry_sql_txn *txn;          /* the transaction holding it, or NULL */
  struct sqlop *op;            /* the operation running on it */
  struct sqlbatch *batch;      /* rows of the running statement (sql.c) */
  int ready_now;               /* set by conn_open: usable at once (the driver queues until connected) */
  int in_user;                 /* sql.c is inside a user callback for it: dropping waits until it returns */
  int dropped;                 /* dropped meanwhile: sql.c closes it when the callback returns */
};

typedef struct sql_driver {
  ferry_sql_engine engine;
  const char *label;           /* "PostgreSQL", "MySQL", "SQLite" */
  /* Reads the URL into db->drv (driver data); sets db->endpoint (malloc'd, no password). 0 or a code. */
  int (*setup)(ferry_sql *db, const char *url, ferry_error *err);
  void (*teardown)(ferry_sql *db);
  /* Starts a connection; ferry__sql_conn_ready() follows (later). */
  sqlconn *(*conn_open)(ferry_sql *db);
  /* Closes; no ferry__sql_* call after this. It may run from inside ferry__sql_row_end(),
   * ferry__sql_stmt_done() or ferry__sql_conn_ready() (a user callback closed the endpoint): a driver that
   * goes on after those return must find its struct still there (free it later: uv close callback, the
   * last work item) and see that it is closing. */
  void (*conn_close)(sqlconn *c);
  /* Runs one statement: ferry__sql_columns(), then per row ferry__sql_cell() x ncols + ferry__sql_row_end(),
   * then ferry__sql_stmt_done(). */
  void (*exec)(sqlconn *c, sqlstmt *st);
  char *(*quote_ident)(const ferry_sql *db, const char *ident);
  char *(*quote_literal)(const ferry_sql *db, const char *v, size_t len);
  const char *type_names[FERRY_SQL_T_JSON + 1];
  const char *begin_rw, *begin_snapshot, *commit, *rollback;
  /* Catalogue queries indexed by ferry_sql_catalog_kind; $1 is the table name or NULL (all tables). */
  const char *catalog[FERRY_SQL_FKEYS + 1];
} sql_driver;

struct ferry_sql {
  ferry_instance *ins;
  uv_loop_t *loop;
  const sql_driver *drv;
  void *drvdata;
  char *endpoint;              /* ferry_sql_endpoint() */
  unsigned max, batch_rows, connect_timeout_ms;
  int keep_session;            /* ferry__sql_keep_session(): PostgreSQL connections tell a dead idle session */
  int no_local_infile;         /* MySQL: the server (or client) refused LOAD DATA LOCAL: bulk inserts use
                                  multi-row INSERTs from now on */
  /* the rest is sql.c's */
  struct sqlpriv *priv;
};

extern const sql_driver ferry__sql_pg_driver, ferry__sql_mysql_driver, ferry__sql_sqlite_driver;

/* A connection is up (status 0) or could not be opened (status < 0, err: the engine's words). */
void ferry__sql_conn_ready(sqlconn *c, int status, const ferry_error *err);
/* The running statement's result columns (copied). */
void ferry__sql_columns(sqlconn *c, size_t ncols, const ferry_sql_column *cols);
/* One cell of the current row (copied; data NULL = SQL NULL). */
void ferry__sql_cell(sqlconn *c, const char *data, size_t len, int binary);
void ferry__sql_row_end(sqlconn *c);
/* The statement is over. broken: the connection is unusable (sql.c closes it). err->message without the
 * endpoint (sql.c adds it). */
void ferry__sql_stmt_done(sqlconn *c, int status, uint64_t affected, uint64_t insert_id, const ferry_error *err,
                          int broken);
/* Helpers for drivers. */
char *ferry__sql_what(const char *sql);        /* the statement's first words (pg.c's rule) */
void ferry__sql_url_decode(char *s);            /* %XX in place */
/* s between two q, each q inside doubled ("we""ird", `back``tick`); malloc'd. */
char *ferry__sql_quote_doubling(const char *s, char q);

/* pg.c, for the libpq driver (sql_pg.c): a query with binary-capable parameters whose rows arrive one by one
 * (libpq single-row mode): row() gets each row (borrowed PGresult, PGRES_SINGLE_TUPLE); done() the final
 * result (zero rows, the column descriptions and the command status) or the error. */
typedef void (*ferry__pg_row_cb)(void *arg, const PGresult *row);
int ferry__pg_query_rows(ferry_pg *pg, const char *sql, int nparams, const char *const *values,
                         const int *lengths, const int *formats, ferry__pg_row_cb row, ferry_pg_cb done,
                         void *arg);
/* A dead idle connection fails the next operation (FERRY_ETRANSIENT) instead of being replaced unasked
 * (services.h, ferry__sql_keep_session). */
void ferry__pg_keep_session(ferry_pg *pg);
/* PQconninfoParse with ferry's error (ECONFIG, libpq's words without what it quotes: maybe a password).
 * PQconninfoFree() the result. */
PQconninfoOption *ferry__pg_parse(const char *conninfo, ferry_error *err);

#endif
