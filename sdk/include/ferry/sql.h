/* ferry SDK service: SQL databases on the core's libuv loop, one API for PostgreSQL, MySQL/MariaDB and SQLite
 * (since ABI 1.3).
 *
 * A ferry_sql is one database endpoint: a pool of up to `max_connections` connections (the stage's
 * `concurrency` unless said otherwise) and a rate limit of `rate` operations per second (the stage's `rate`,
 * the same token bucket as the HTTP service). Operations wait in a FIFO queue for a connection and a token;
 * nothing blocks the loop:
 *   PostgreSQL     libpq in non-blocking mode on a uv poll handle (the ferry/pg.h connection);
 *   MySQL/MariaDB  MariaDB Connector/C's non-blocking API (*_start / *_cont) on a uv poll handle;
 *   SQLite         the libuv thread pool (uv_queue_work), one connection used by one thread at a time.
 *
 * Connecting: ferry_sql_open() takes a URL or a libpq conninfo:
 *   postgresql://user:pw@host:port/db?opt=v   (also postgres://; "host=... dbname=..." conninfo)
 *   mysql://user:pw@host:port/db              (also mariadb://; ?socket=/path for a Unix socket; host
 *                                              "localhost" is the local socket, as in the mysql client)
 *   sqlite:///abs/path.db, sqlite:rel/path.db, or a file path (ending .db, .sqlite, .sqlite3, or holding '/')
 *                                             (?mode=ro opens read-only)
 * The password is registered as a secret: it never reaches a log, an error or ferry_sql_endpoint().
 * Connections open on demand; a connection error reaches the callbacks of the operations waiting for it.
 *
 * SQL text: parameters are written $1, $2, ... on every engine (PostgreSQL natively; SQLite binds them by
 * name; MySQL gets them inlined as literals escaped by mysql_real_escape_string() on the connection that
 * runs the statement, binary ones as X'..'). One statement per operation.
 *
 * Results are streamed: the rows callback gets batches of at most `batch_rows` rows as they arrive; no
 * operation buffers a whole result. The done callback runs exactly once per accepted operation, never inside
 * the call that queued it.
 *
 * Errors (the `status` of a done callback, also err->code): FERRY_ETRANSIENT for connection failures and
 * lost connections (and deadlocks, serialization failures, too many connections), FERRY_EPERM for refused
 * logins and missing privileges, FERRY_ECONFIG for a database that does not exist, FERRY_ECONFLICT for a
 * unique violation, FERRY_EINVAL for other SQL errors, FERRY_ECANCELED when the rows callback stopped the
 * operation or the endpoint was closed. err->message names the endpoint (ferry_sql_endpoint(), no
 * password) and the statement's first words (never a literal); err->detail has the engine's own code and
 * message ("SQLSTATE 42P01: ...", "MySQL error 1146 (42S02): ...", "SQLite error 1: ...").
 *
 * Pooled connections are interchangeable: keep no session state (SET, temporary tables, session advisory
 * locks) between operations. A pooled PostgreSQL connection found dead while idle is replaced before the
 * next operation without an error, so such state would vanish unnoticed; a transaction's connection is never
 * replaced (its operations fail with FERRY_ETRANSIENT).
 *
 * Ownership: SQL text, parameters and insert values are copied when an operation is queued. Everything a
 * callback receives (batches, columns, values, the done info, the error) is borrowed: valid during the call
 * only. Strings returned by ferry_sql_quote_* and ferry_sql_upsert_sql() are malloc'd, owned by the caller.
 */
#ifndef FERRY_SQL_H
#define FERRY_SQL_H

#include <stddef.h>
#include <stdint.h>
#include "ferry/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_sql ferry_sql;         /* one endpoint: pool, queue, rate limit */
typedef struct ferry_sql_txn ferry_sql_txn; /* a transaction holding one connection of the pool */

typedef enum ferry_sql_engine {
  FERRY_SQL_POSTGRESQL = 1,
  FERRY_SQL_MYSQL = 2,                      /* MySQL and MariaDB */
  FERRY_SQL_SQLITE = 3
} ferry_sql_engine;

/* Engine-neutral classes of column types (results and catalogue). ferry_sql_type_name() gives each
 * engine's name for one. */
typedef enum ferry_sql_type {
  FERRY_SQL_T_OTHER = 0,
  FERRY_SQL_T_TEXT,                         /* text, varchar, char, longtext, ... */
  FERRY_SQL_T_INT,                          /* integers of any width */
  FERRY_SQL_T_FLOAT,                        /* real, double */
  FERRY_SQL_T_DECIMAL,                      /* numeric, decimal */
  FERRY_SQL_T_BOOL,                         /* boolean (MySQL: tinyint(1)) */
  FERRY_SQL_T_BINARY,                       /* bytea, blob, varbinary */
  FERRY_SQL_T_DATE,
  FERRY_SQL_T_TIME,
  FERRY_SQL_T_TIMESTAMP,                    /* without time zone (MySQL datetime) */
  FERRY_SQL_T_TIMESTAMPTZ,                  /* with time zone (MySQL timestamp) */
  FERRY_SQL_T_JSON
} ferry_sql_type;

typedef struct ferry_sql_opts {
  uint32_t struct_size;        /* sizeof(ferry_sql_opts) */
  unsigned max_connections;    /* pool size = operations in flight; 0 = the instance's concurrency (or 4) */
  double rate;                 /* operations per second; 0 = the instance's rate (0 there = no limit) */
  unsigned connect_timeout_ms; /* MySQL: 0 = 10000; PostgreSQL takes connect_timeout from the URL (default
                                  10 s); SQLite waits up to 10 s for a lock */
  unsigned batch_rows;         /* rows per batch callback; 0 = 1000 */
} ferry_sql_opts;

/* A parameter or a result cell. data NULL = SQL NULL. Text is the engine's text form (UTF-8), always
 * followed by a NUL (not counted in len). binary = 1: raw bytes (bytea, blob): results of binary columns
 * come as raw bytes on every engine; a binary parameter is sent as bytes. */
typedef struct ferry_sql_value {
  const char *data;
  size_t len;
  int binary;
} ferry_sql_value;

typedef struct ferry_sql_column {
  const char *name;
  ferry_sql_type type;
  const char *type_name;       /* the engine's name ("int4", "VARCHAR", "TEXT", ...) */
} ferry_sql_column;

/* A batch of rows: nrows x ncols cells, row-major (FERRY_SQL_CELL). */
typedef struct ferry_sql_batch {
  size_t ncols;
  const ferry_sql_column *cols;
  size_t nrows;
  const ferry_sql_value *cells;
  uint64_t first_row;          /* rank of the first row of this batch in the whole result, from 0 */
} ferry_sql_batch;
#define FERRY_SQL_CELL(b, row, col) (&(b)->cells[(size_t)(row) * (b)->ncols + (size_t)(col)])

typedef struct ferry_sql_done {
  uint64_t rows;               /* rows delivered to the rows callback */
  uint64_t affected;           /* rows inserted/updated/deleted (engine's count), 0 for queries */
  uint64_t insert_id;          /* MySQL/SQLite: last auto-increment id; 0 otherwise */
} ferry_sql_done;

/* Return 0 to go on; non-zero stops the operation (its done callback gets FERRY_ECANCELED). */
typedef int (*ferry_sql_rows_cb)(void *arg, const ferry_sql_batch *batch);
/* info is NULL when status != 0; err is NULL when status == 0. */
typedef void (*ferry_sql_done_cb)(void *arg, int status, const ferry_sql_done *info, const ferry_error *err);
/* txn is NULL when status != 0. */
typedef void (*ferry_sql_begin_cb)(void *arg, int status, ferry_sql_txn *txn, const ferry_error *err);

/* ---- endpoints -------------------------------------------------------------------------------------- */

/* Parses `url` (see the file comment) and sets the pool up; opens no connection yet. Owned by the caller:
 * close with ferry_sql_close(), at the latest in fini(). NULL with err filled (FERRY_ECONFIG) for a URL
 * it cannot read. `opts` may be NULL. */
FERRY_API ferry_sql *ferry_sql_open(ferry_instance *ins, const char *url, const ferry_sql_opts *opts,
                                    ferry_error *err);
/* Cancels every queued or running operation and open transaction (callbacks with FERRY_ECANCELED before
 * this returns; an open transaction is rolled back by the server), closes the connections and frees.
 * Transactions not ended are freed too: no ferry_sql_txn of this endpoint may be used afterwards. May be
 * called from any callback of the endpoint (a rows callback included). The memory goes with the last uv
 * close callback or thread-pool work item (the loop must run once more). NULL allowed. */
FERRY_API void ferry_sql_close(ferry_sql *db);
FERRY_API ferry_sql_engine ferry_sql_engine_of(const ferry_sql *db);
/* "postgresql://user@host:port/db", "mysql://user@host:port/db", "sqlite:///path": no password. Borrowed,
 * valid until ferry_sql_close(). */
FERRY_API const char *ferry_sql_endpoint(const ferry_sql *db);
/* Operations queued or running (transactions count one each while open). */
FERRY_API size_t ferry_sql_pending(const ferry_sql *db);

/* ---- statements ------------------------------------------------------------------------------------- */

/* Queues one statement with nparams parameters ($1..$n). With txn it runs inside that transaction (after
 * the transaction's earlier operations); with txn NULL on any connection of the pool (autocommit). rows
 * may be NULL (rows are then read and dropped). Returns 0 (done will be called exactly once) or a negative
 * code (done is never called): FERRY_EINVAL for bad arguments, FERRY_ECANCELED after close or after the
 * transaction ended. */
FERRY_API int ferry_sql_query(ferry_sql *db, ferry_sql_txn *txn, const char *sql, size_t nparams,
                              const ferry_sql_value *params, ferry_sql_rows_cb rows, ferry_sql_done_cb done,
                              void *arg);

/* Transaction modes of ferry_sql_begin. */
#define FERRY_SQL_READ_WRITE 0u
/* A consistent read-only snapshot: PostgreSQL BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY (the snapshot
 * is taken before begin's callback runs); MySQL/MariaDB START TRANSACTION WITH CONSISTENT SNAPSHOT, READ
 * ONLY (REPEATABLE READ); SQLite BEGIN and a first read (WAL: writers go on; rollback journal: they wait). */
#define FERRY_SQL_SNAPSHOT 1u
/* With FERRY_SQL_SNAPSHOT on PostgreSQL: export the snapshot (ferry_sql_txn_snapshot_id), so that other
 * transactions can share it (`import` of ferry_sql_begin). Ignored on the other engines. */
#define FERRY_SQL_EXPORT 2u

/* Takes a connection from the pool (waiting for one like any operation), starts a transaction and calls
 * cb with it. `import`: PostgreSQL snapshot id of another open snapshot transaction (SET TRANSACTION
 * SNAPSHOT), or NULL. The transaction is owned by the caller until it ends with ferry_sql_commit() or
 * ferry_sql_rollback(). Returns 0 or a negative code (cb never called). */
FERRY_API int ferry_sql_begin(ferry_sql *db, unsigned mode, const char *import, ferry_sql_begin_cb cb, void *arg);
/* The exported snapshot id (FERRY_SQL_EXPORT on PostgreSQL) or NULL. Borrowed, valid while txn is open. */
FERRY_API const char *ferry_sql_txn_snapshot_id(const ferry_sql_txn *txn);
/* End the transaction after its queued operations; done gets the COMMIT's (ROLLBACK's) outcome. The
 * connection goes back to the pool and txn is freed right after done returns: no operation may be queued
 * on it after these calls (FERRY_ECANCELED). A transaction whose connection was lost fails its operations
 * with FERRY_ETRANSIENT; commit then fails too, rollback succeeds (nothing was committed). */
FERRY_API int ferry_sql_commit(ferry_sql_txn *txn, ferry_sql_done_cb done, void *arg);
FERRY_API int ferry_sql_rollback(ferry_sql_txn *txn, ferry_sql_done_cb done, void *arg);

/* ---- catalogue -------------------------------------------------------------------------------------- */

/* What ferry_sql_catalog lists; the columns of its rows (all text, NULL where the engine has no value):
 *   TABLES   table_schema, table_name                        (base tables; not views, not system tables)
 *   COLUMNS  table_name, column_name, ordinal (1..), type_name (the engine's full column type, e.g.
 *            "character varying(255)", "varchar(255)", "TEXT"), nullable ("1"/"0"), type (ferry_sql_type
 *            as a decimal number)
 *   PKEYS    table_name, column_name, position (1..)
 *   FKEYS    table_name, constraint_name, column_name, position (1..), ref_table, ref_column
 * Ordered by table, then ordinal/position. PostgreSQL: the schemas of search_path (current_schemas(false));
 * MySQL: the connection's database; SQLite: "main". */
typedef enum ferry_sql_catalog_kind {
  FERRY_SQL_TABLES = 1,
  FERRY_SQL_COLUMNS,
  FERRY_SQL_PKEYS,
  FERRY_SQL_FKEYS
} ferry_sql_catalog_kind;
/* Queues a catalogue query, for one table (`table`) or all (NULL); rows/done/txn as ferry_sql_query. */
FERRY_API int ferry_sql_catalog(ferry_sql *db, ferry_sql_txn *txn, ferry_sql_catalog_kind kind,
                                const char *table, ferry_sql_rows_cb rows, ferry_sql_done_cb done, void *arg);

/* ---- writing rows ---------------------------------------------------------------------------------- */

/* What an insert does with a row whose key already exists. */
typedef enum ferry_sql_conflict {
  FERRY_SQL_CONFLICT_ERROR = 0, /* the statement fails (FERRY_ECONFLICT) */
  FERRY_SQL_CONFLICT_SKIP,      /* the existing row stays */
  FERRY_SQL_CONFLICT_UPDATE     /* the existing row gets the new values (its key columns stay) */
} ferry_sql_conflict;

/* The engine's INSERT for nrows rows of ncols columns with $n placeholders, row by row:
 *   PostgreSQL  INSERT INTO t (..) VALUES (..) [ON CONFLICT (keys) DO NOTHING | DO UPDATE SET c = EXCLUDED.c]
 *   MySQL       INSERT INTO t (..) VALUES (..) [ON DUPLICATE KEY UPDATE k = k | c = VALUES(c)]
 *   SQLite      INSERT [OR IGNORE] INTO t (..) VALUES (..) [ON CONFLICT (keys) DO UPDATE SET c = excluded.c]
 * `table` is one identifier (quoted here). keys: the conflict target (needed for UPDATE, and for SKIP on
 * PostgreSQL; NULL = any unique key where the engine allows it). malloc'd, or NULL for bad arguments. */
FERRY_API char *ferry_sql_upsert_sql(const ferry_sql *db, const char *table, size_t ncols,
                                     const char *const *cols, size_t nrows, ferry_sql_conflict conflict,
                                     size_t nkeys, const char *const *keys);
/* Bulk insert: nrows rows of ncols values (row-major, copied) into `table`, on the engine's fast path:
 * PostgreSQL COPY FROM STDIN when conflict is ERROR, else multi-row INSERT; MySQL with conflict ERROR and no
 * binary value: LOAD DATA LOCAL INFILE fed from memory (no file is opened; fewer rows loaded or any warning
 * fails it, a duplicate key with FERRY_ECONFLICT; a server that refuses local infile fails it once with
 * FERRY_ETRANSIENT and the endpoint uses INSERTs from then on), else multi-row INSERT statements of up to
 * ~1 MiB; SQLite multi-row INSERTs of up to 500 rows. Without txn the whole call is one transaction of its
 * own (all rows or none). done's info->affected counts the rows written. */
FERRY_API int ferry_sql_insert(ferry_sql *db, ferry_sql_txn *txn, const char *table, size_t ncols,
                               const char *const *cols, size_t nrows, const ferry_sql_value *values,
                               ferry_sql_conflict conflict, size_t nkeys, const char *const *keys,
                               ferry_sql_done_cb done, void *arg);

/* ---- dialect ---------------------------------------------------------------------------------------- */

/* An identifier / a literal quoted for this engine's SQL text, by the client library's own functions where
 * it has one (PQescapeIdentifier/PQescapeLiteral; mysql_real_escape_string, identifiers in backquotes;
 * sqlite3_mprintf %w / %Q). A literal of `len` bytes (NULL value = "NULL"). malloc'd; NULL only for a NULL
 * identifier. Prefer parameters for values. */
FERRY_API char *ferry_sql_quote_ident(const ferry_sql *db, const char *ident);
FERRY_API char *ferry_sql_quote_literal(const ferry_sql *db, const char *value, size_t len);
/* The engine's type name for a class ("text" / "longtext" / "TEXT" for FERRY_SQL_T_TEXT, ...): what a sink
 * creates a column with. Static string. */
FERRY_API const char *ferry_sql_type_name(const ferry_sql *db, ferry_sql_type type);

#ifdef __cplusplus
}
#endif
#endif
