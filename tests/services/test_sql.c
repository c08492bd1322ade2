/* Tests of the SQL service (ferry/sql.h) against real engines: a private PostgreSQL cluster (pgfixture.sh), a
 * private MariaDB server (mariadbfixture.sh) and a real SQLite file.
 *
 *   test_sql <case> pg <pg statefile>          line 2 of the state file: a libpq conninfo
 *   test_sql <case> mariadb <mariadb statefile> line 2: mariadb://ferry:...@127.0.0.1:PORT/ferrytest
 *   test_sql <case> sqlite <directory>         a fresh database file in that directory
 *
 * The loop is driven until the expected callbacks ran (with a deadline). Each case ends by closing its
 * endpoints and running the loop until every handle is closed: uv_loop_close() must succeed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <malloc.h>
#include <sys/resource.h>
#if defined(__SANITIZE_ADDRESS__)
/* AddressSanitizer's allocator statistics (sanitizer/allocator_interface.h, not always installed) */
size_t __sanitizer_get_current_allocated_bytes(void);
#endif
#include <sys/socket.h>
#include <unistd.h>

#include "load/load.h"
#include "ferry/sql.h"
#include "ftest.h"
#include "ftest_net.h"

static uv_loop_t loop;
static struct ferry_instance ins;
static const char *engine;
static char url[1024];
static int in_queue;

#define IS(e) (!strcmp(engine, e))

/* ---- helpers ----------------------------------------------------------------------------------------- */

typedef struct res {
  int called, status;
  char *msg, *detail;
  ferry_sql_done info;
  size_t nrows, ncols, batches, max_batch;
  char **cells;                /* nrows * ncols, "<null>" for NULL (text), raw bytes for binary */
  size_t *lens;
  ferry_sql_type *types;
  int keep;                    /* keep cells (else only count) */
  int stop_after;              /* stop after this many batches (0 = never) */
  void (*on_batch)(struct res *r, const ferry_sql_batch *b);
  uint64_t sum0;               /* sum of column 0 as integers */
} res;

static void res_clear(res *r) {
  for (size_t i = 0; r->cells && i < r->nrows * r->ncols; i++) free(r->cells[i]);
  free(r->cells);
  free(r->lens);
  free(r->types);
  free(r->msg);
  free(r->detail);
  memset(r, 0, sizeof *r);
}

static int rows_cb(void *arg, const ferry_sql_batch *b) {
  res *r = arg;
  FT_ASSERT(!in_queue, "rows callback inside the queueing call");
  r->batches++;
  if (b->nrows > r->max_batch) r->max_batch = b->nrows;
  FT_ASSERT(b->first_row == r->nrows, "first_row %llu after %zu rows", (unsigned long long)b->first_row, r->nrows);
  if (!r->ncols) {
    r->ncols = b->ncols;
    r->types = calloc(b->ncols ? b->ncols : 1, sizeof *r->types);
    for (size_t c = 0; c < b->ncols; c++) r->types[c] = b->cols[c].type;
  }
  for (size_t i = 0; i < b->nrows; i++) {
    const ferry_sql_value *v0 = FERRY_SQL_CELL(b, i, 0);
    if (v0->data) r->sum0 += strtoull(v0->data, NULL, 10);
    if (r->keep) {
      r->cells = realloc(r->cells, (r->nrows + 1) * r->ncols * sizeof(char *));
      r->lens = realloc(r->lens, (r->nrows + 1) * r->ncols * sizeof(size_t));
      for (size_t c = 0; c < b->ncols; c++) {
        const ferry_sql_value *v = FERRY_SQL_CELL(b, i, c);
        size_t k = r->nrows * r->ncols + c;
        if (!v->data) {
          r->cells[k] = strdup("<null>");
          r->lens[k] = 6;
        } else {
          FT_ASSERT(v->data[v->len] == 0, "value NUL-terminated");
          r->cells[k] = malloc(v->len + 1);
          memcpy(r->cells[k], v->data, v->len + 1);
          r->lens[k] = v->len;
        }
      }
    }
    r->nrows++;
  }
  if (r->on_batch) r->on_batch(r, b);
  return r->stop_after && r->batches >= (size_t)r->stop_after;
}

static void done_cb(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  res *r = arg;
  FT_ASSERT(!in_queue, "done callback inside the queueing call");
  r->called++;
  r->status = status;
  if (status) {
    FT_ASSERT(!info && err && err->code == status, "error: no info, code in err");
    r->msg = strdup(err->message ? err->message : "");
    r->detail = strdup(err->detail ? err->detail : "");
  } else {
    FT_ASSERT(info && !err, "success: info, no err");
    r->info = *info;
  }
}

static void on_guard(uv_timer_t *t) { (void)t; }

static int run_until(const int *counter, int want, double secs) {
  uv_timer_t guard;
  uv_timer_init(&loop, &guard);
  /* wakes the loop every 10 ms: a callback run from a timer at the start of an iteration would otherwise
   * be followed by a poll that sleeps until the next timer */
  uv_timer_start(&guard, on_guard, 10, 10);
  double end = ferry__now() + secs;
  while (*counter < want && ferry__now() < end) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  return *counter >= want;
}

static ferry_sql *open_db(const char *u, unsigned max, double rate) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_sql_opts o = {.struct_size = sizeof o, .max_connections = max, .rate = rate, .batch_rows = 500};
  ferry_sql *db = ferry_sql_open(&ins, u, &o, &err);
  FT_ASSERT(db, "ferry_sql_open: %s", err.message);
  return db;
}

static void close_db(ferry_sql *db) {
  ferry_sql_close(db);
  uv_run(&loop, UV_RUN_DEFAULT);
}

/* Runs one statement to completion; fails the test unless it ends with `want`. */
static void q(ferry_sql *db, ferry_sql_txn *t, const char *sql, size_t n, const ferry_sql_value *p, res *r, int want) {
  int keep = r->keep, stop = r->stop_after;
  void (*ob)(res *, const ferry_sql_batch *) = r->on_batch;
  memset(r, 0, sizeof *r);
  r->keep = keep;
  r->stop_after = stop;
  r->on_batch = ob;
  in_queue = 1;
  int rc = ferry_sql_query(db, t, sql, n, p, rows_cb, done_cb, r);
  in_queue = 0;
  FT_ASSERT(rc == 0, "queue %s: %d", sql, rc);
  FT_ASSERT(run_until(&r->called, 1, 120), "done: %s", sql);
  FT_ASSERT(r->status == want, "%s -> %d (%s | %s), want %d", sql, r->status, r->msg, r->detail, want);
}

static void ok(ferry_sql *db, ferry_sql_txn *t, const char *sql) {
  res r = {0};
  q(db, t, sql, 0, NULL, &r, 0);
  res_clear(&r);
}

/* The first cell of a one-row query. malloc'd. */
static char *scalar(ferry_sql *db, ferry_sql_txn *t, const char *sql) {
  res r = {.keep = 1};
  q(db, t, sql, 0, NULL, &r, 0);
  FT_ASSERT(r.nrows == 1 && r.ncols >= 1, "%s: %zu rows", sql, r.nrows);
  char *v = strdup(r.cells[0]);
  res_clear(&r);
  return v;
}

static void expect_scalar(ferry_sql *db, ferry_sql_txn *t, const char *sql, const char *want) {
  char *v = scalar(db, t, sql);
  FT_ASSERT(!strcmp(v, want), "%s = %s, want %s", sql, v, want);
  free(v);
}

typedef struct beg { int called, status; ferry_sql_txn *txn; char *msg; } beg;
static void begin_cb(void *arg, int status, ferry_sql_txn *txn, const ferry_error *err) {
  beg *b = arg;
  FT_ASSERT(!in_queue, "begin callback inside the queueing call");
  b->called++;
  b->status = status;
  b->txn = txn;
  if (status) b->msg = strdup(err->message);
}

static ferry_sql_txn *begin(ferry_sql *db, unsigned mode, const char *import) {
  beg b = {0};
  in_queue = 1;
  FT_ASSERT(ferry_sql_begin(db, mode, import, begin_cb, &b) == 0, "queue begin");
  in_queue = 0;
  FT_ASSERT(run_until(&b.called, 1, 60), "begin done");
  FT_ASSERT(b.status == 0 && b.txn, "begin: %d %s", b.status, b.msg);
  return b.txn;
}

static void end(ferry_sql_txn *t, int commit) {
  res r = {0};
  in_queue = 1;
  int rc = commit ? ferry_sql_commit(t, done_cb, &r) : ferry_sql_rollback(t, done_cb, &r);
  in_queue = 0;
  FT_ASSERT(rc == 0, "queue end");
  FT_ASSERT(run_until(&r.called, 1, 60), "end done");
  FT_ASSERT(r.status == 0, "commit/rollback: %s | %s", r.msg, r.detail);
  res_clear(&r);
}

static const char *blob_type(void) { return IS("pg") ? "bytea" : IS("mariadb") ? "LONGBLOB" : "BLOB"; }
static const char *text_type(void) { return IS("mariadb") ? "LONGTEXT" : "TEXT"; }

static void drop(ferry_sql *db, const char *table) {
  char *qt = ferry_sql_quote_ident(db, table);
  char *s = malloc(strlen(qt) + 64);
  sprintf(s, "DROP TABLE IF EXISTS %s%s", qt, IS("pg") ? " CASCADE" : "");
  ok(db, NULL, s);
  free(s);
  free(qt);
}

/* The URL with another password / port. */
static char *url_with(const char *password, int port) {
  char *s = malloc(2048);
  if (IS("pg")) {
    /* the test cluster trusts every local login: a role that does not exist is refused instead */
    snprintf(s, 2048, "%s%s%s", url, password ? " user=ferry_no_such_role password=" : "", password ? password : "");
    if (port) {
      char *p = strstr(s, "port=");
      FT_ASSERT(p, "conninfo has a port");
      char tail[1024];
      const char *after = strchr(p, ' ');
      snprintf(tail, sizeof tail, "%s", after ? after : "");
      sprintf(p, "port=%d%s", port, tail);
    }
    return s;
  }
  /* mariadb://ferry:PW@127.0.0.1:PORT/ferrytest */
  const char *at = strchr(url, '@'), *colon = strchr(url + 10, ':');
  const char *pc = strchr(at, ':'), *slash = strchr(at, '/');
  int n = snprintf(s, 2048, "%.*s:%s@", (int)(colon - url), url, password ? password : "ferry");
  if (port) snprintf(s + n, 2048 - (size_t)n, "%.*s:%d%s", (int)(pc - at - 1), at + 1, port, slash);
  else snprintf(s + n, 2048 - (size_t)n, "%s", at + 1);
  return s;
}

/* ---- cases --------------------------------------------------------------------------------------------- */

static void case_connect_errors(void) {
  ferry_error err = FERRY_ERROR_INIT;
  /* bad URLs: refused at open, naming what */
  FT_ASSERT(!ferry_sql_open(&ins, "oracle://scott:tiger@db/x", NULL, &err), "unknown scheme refused");
  FT_ASSERT(err.code == FERRY_ECONFIG && strstr(err.message, "unknown kind") && !strstr(err.message, "tiger"),
            "unknown scheme: %s", err.message);
  ferry_error_clear(&err);
  FT_ASSERT(!ferry_sql_open(&ins, "mysql://u:secretpw@host:99999/db", NULL, &err), "bad port refused");
  FT_ASSERT(err.code == FERRY_ECONFIG && strstr(err.message, "port") && !strstr(err.message, "secretpw"), "bad port: %s",
            err.message);
  ferry_error_clear(&err);
  if (IS("sqlite")) {
    /* a file in a directory that does not exist */
    ferry_sql *db = open_db("sqlite:///nonexistent-dir-ferry/x.db", 1, 0);
    res r = {0};
    q(db, NULL, "SELECT 1", 0, NULL, &r, FERRY_ECONFIG);
    FT_ASSERT(strstr(r.msg, "sqlite:///nonexistent-dir-ferry/x.db") && strstr(r.msg, "cannot open"), "msg: %s", r.msg);
    printf("sqlite open error: %s | %s\n", r.msg, r.detail);
    res_clear(&r);
    close_db(db);
    return;
  }
  /* wrong password */
  char *u = url_with("wrong-password-xyz", 0);
  ferry_sql *db = open_db(u, 2, 0);
  res r = {0};
  q(db, NULL, "SELECT 1", 0, NULL, &r, FERRY_EPERM);
  FT_ASSERT(strstr(r.msg, ferry_sql_endpoint(db)), "names the endpoint: %s", r.msg);
  FT_ASSERT(!strstr(r.msg, "wrong-password-xyz") && !strstr(r.detail, "wrong-password-xyz"), "no password: %s | %s",
            r.msg, r.detail);
  FT_ASSERT(!strstr(ferry_sql_endpoint(db), "wrong-password"), "endpoint without password");
  printf("wrong password: %s | %s\n", r.msg, r.detail);
  if (IS("mariadb")) FT_ASSERT(strstr(r.detail, "1045"), "engine code in detail: %s", r.detail);
  res_clear(&r);
  close_db(db);
  free(u);
  /* unreachable port */
  int fd;
  int port = ft_refused_port(&fd);
  u = url_with(NULL, port);
  db = open_db(u, 2, 0);
  char portstr[16];
  snprintf(portstr, sizeof portstr, ":%d", port);
  q(db, NULL, "SELECT 1", 0, NULL, &r, FERRY_ETRANSIENT);
  FT_ASSERT(strstr(r.msg, ferry_sql_endpoint(db)) && strstr(r.msg, portstr), "names the endpoint: %s", r.msg);
  printf("refused: %s | %s\n", r.msg, r.detail);
  res_clear(&r);
  /* two operations waiting for the same broken endpoint both fail (none hangs) */
  res r1 = {0}, r2 = {0};
  FT_ASSERT(ferry_sql_query(db, NULL, "SELECT 1", 0, NULL, NULL, done_cb, &r1) == 0, "queue");
  FT_ASSERT(ferry_sql_query(db, NULL, "SELECT 2", 0, NULL, NULL, done_cb, &r2) == 0, "queue");
  FT_ASSERT(run_until(&r1.called, 1, 30) && run_until(&r2.called, 1, 30), "both done");
  FT_ASSERT(r1.status == FERRY_ETRANSIENT && r2.status == FERRY_ETRANSIENT, "both transient");
  res_clear(&r1);
  res_clear(&r2);
  close_db(db);
  close(fd);
  free(u);
  /* an SQL error names the endpoint and carries the engine's code */
  db = open_db(url, 2, 0);
  q(db, NULL, "SELECT * FROM no_such_table_ferry", 0, NULL, &r, FERRY_EINVAL);
  FT_ASSERT(strstr(r.msg, ferry_sql_endpoint(db)) && strstr(r.msg, "SELECT"), "msg: %s", r.msg);
  FT_ASSERT(strstr(r.detail, IS("pg") ? "42P01" : "1146"), "engine code: %s", r.detail);
  printf("sql error: %s | %s\n", r.msg, r.detail);
  res_clear(&r);
  close_db(db);
}

static void case_params(void) {
  ferry_sql *db = open_db(url, 2, 0);
  drop(db, "ferry_params");
  char sql[256];
  snprintf(sql, sizeof sql, "CREATE TABLE ferry_params (id INTEGER PRIMARY KEY, t %s, b %s)", text_type(), blob_type());
  ok(db, NULL, sql);
  static const char bin[] = {'\0', '\'', '\\', '"', (char)0xff, (char)0x80, '\n', '$', '1', 0x1a, 'z'};
  const char *texts[] = {"it's \"quoted\" \\ back$1slash", NULL, "ümlaut ☃ 日本語 🎉", "", "-- not a comment /* no */ $2"};
  for (int i = 0; i < 5; i++) {
    char id[8];
    snprintf(id, sizeof id, "%d", i + 1);
    ferry_sql_value p[3] = {{id, strlen(id), 0},
                            {texts[i], texts[i] ? strlen(texts[i]) : 0, 0},
                            {i == 1 ? NULL : bin, i == 1 ? 0 : sizeof bin, 1}};
    res r = {0};
    q(db, NULL, "INSERT INTO ferry_params (id, t, b) VALUES ($1, $2, $3)", 3, p, &r, 0);
    FT_ASSERT(r.info.affected == 1, "one row inserted: %llu", (unsigned long long)r.info.affected);
    res_clear(&r);
  }
  res r = {.keep = 1};
  q(db, NULL, "SELECT id, t, b FROM ferry_params ORDER BY id", 0, NULL, &r, 0);
  FT_ASSERT(r.nrows == 5 && r.ncols == 3, "5 rows: %zu", r.nrows);
  FT_ASSERT(r.types[2] == FERRY_SQL_T_BINARY, "blob column is binary: %d", r.types[2]);
  for (int i = 0; i < 5; i++) {
    const char *t = r.cells[i * 3 + 1];
    if (texts[i]) FT_ASSERT(!strcmp(t, texts[i]), "row %d text: [%s] want [%s]", i, t, texts[i]);
    else FT_ASSERT(!strcmp(t, "<null>"), "row %d NULL: %s", i, t);
    if (i == 1) FT_ASSERT(!strcmp(r.cells[i * 3 + 2], "<null>"), "NULL blob");
    else
      FT_ASSERT(r.lens[i * 3 + 2] == sizeof bin && !memcmp(r.cells[i * 3 + 2], bin, sizeof bin), "row %d blob: %zu bytes",
                i, r.lens[i * 3 + 2]);
  }
  res_clear(&r);
  /* a parameter in a WHERE clause, reused twice */
  ferry_sql_value p = {texts[0], strlen(texts[0]), 0};
  r.keep = 1;
  q(db, NULL, "SELECT id FROM ferry_params WHERE t = $1 OR t = $1", 1, &p, &r, 0);
  FT_ASSERT(r.nrows == 1 && !strcmp(r.cells[0], "1"), "found by parameter");
  res_clear(&r);
  /* too few parameters: refused, not sent */
  q(db, NULL, "SELECT $2", 1, &p, &r, IS("pg") ? FERRY_EINVAL : FERRY_EINVAL);
  res_clear(&r);
  drop(db, "ferry_params");
  close_db(db);
}

/* Live heap in kB: what is allocated and not freed (RSS would count AddressSanitizer's quarantine of freed
 * blocks, hundreds of MB after 100 MB of rows went through). */
static size_t rss_kb(void) {
#if defined(__SANITIZE_ADDRESS__)
  return __sanitizer_get_current_allocated_bytes() / 1024;
#else
  struct mallinfo2 m = mallinfo2();
  return (m.uordblks + m.hblkhd) / 1024;
#endif
}

static size_t peak_rss;
static void track_rss(res *r, const ferry_sql_batch *b) {
  (void)r;
  (void)b;
  size_t k = rss_kb();
  if (k > peak_rss) peak_rss = k;
}

static void case_stream(void) {
  ferry_sql *db = open_db(url, 2, 0);
  const char *sql = IS("pg") ? "SELECT g, repeat('x', 1000) FROM generate_series(1, 100000) g"
                    : IS("mariadb") ? "SELECT seq, REPEAT('x', 1000) FROM seq_1_to_100000"
                                    : "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) "
                                      "SELECT x, printf('%.1000c', 'x') FROM c";
  size_t before = rss_kb();
  peak_rss = before;
  res r = {.on_batch = track_rss};
  double t0 = ferry__now();
  q(db, NULL, sql, 0, NULL, &r, 0);
  double secs = ferry__now() - t0;
  FT_ASSERT(r.nrows == 100000 && r.info.rows == 100000, "100k rows: %zu", r.nrows);
  FT_ASSERT(r.sum0 == 100000ull * 100001ull / 2, "every row once: sum %llu", (unsigned long long)r.sum0);
  FT_ASSERT(r.max_batch <= 500 && r.batches >= 200, "batches of at most 500 rows: %zu batches, max %zu", r.batches,
            r.max_batch);
  /* 100 MB went through; memory grew by far less */
  size_t grew = peak_rss > before ? peak_rss - before : 0;
  printf("streamed 100000 rows (~100 MB) in %.2f s, %zu batches, live heap grew %zu kB at most\n", secs, r.batches,
         grew);
  FT_ASSERT(grew < 8 * 1024, "bounded memory: the live heap grew by %zu kB", grew);
  res_clear(&r);
  /* the rows callback stops a result: ECANCELED, and the connection is usable after it */
  r.stop_after = 2;
  q(db, NULL, sql, 0, NULL, &r, FERRY_ECANCELED);
  FT_ASSERT(r.batches == 2, "no batch after the stop: %zu", r.batches);
  res_clear(&r);
  expect_scalar(db, NULL, "SELECT 42", "42");
  close_db(db);
}

static void case_txn(void) {
  ferry_sql *db = open_db(url, 2, 0);
  drop(db, "ferry_txn");
  ok(db, NULL, "CREATE TABLE ferry_txn (id INTEGER PRIMARY KEY, v VARCHAR(20))");
  ferry_sql_txn *t = begin(db, FERRY_SQL_READ_WRITE, NULL);
  ok(db, t, "INSERT INTO ferry_txn VALUES (1, 'a')");
  expect_scalar(db, t, "SELECT count(*) FROM ferry_txn", "1");
  end(t, 0);
  expect_scalar(db, NULL, "SELECT count(*) FROM ferry_txn", "0");
  t = begin(db, FERRY_SQL_READ_WRITE, NULL);
  ok(db, t, "INSERT INTO ferry_txn VALUES (2, 'b')");
  /* an error inside the transaction is reported; rollback then leaves nothing */
  res r = {0};
  q(db, t, "INSERT INTO ferry_txn VALUES (2, 'dup')", 0, NULL, &r, FERRY_ECONFLICT);
  printf("duplicate: %s | %s\n", r.msg, r.detail);
  res_clear(&r);
  end(t, 0);
  expect_scalar(db, NULL, "SELECT count(*) FROM ferry_txn", "0");
  t = begin(db, FERRY_SQL_READ_WRITE, NULL);
  ok(db, t, "INSERT INTO ferry_txn VALUES (3, 'c')");
  end(t, 1);
  expect_scalar(db, NULL, "SELECT count(*) FROM ferry_txn", "1");
  /* after commit the transaction takes nothing more */
  FT_ASSERT(ferry_sql_pending(db) == 0, "nothing pending: %zu", ferry_sql_pending(db));
  /* bulk insert with conflict policies */
  const char *cols[] = {"id", "v"};
  const char *keys[] = {"id"};
  ferry_sql_value vals[6] = {{"3", 1, 0}, {"new3", 4, 0}, {"4", 1, 0}, {"d", 1, 0}, {"5", 1, 0}, {NULL, 0, 0}};
  in_queue = 1;
  FT_ASSERT(ferry_sql_insert(db, NULL, "ferry_txn", 2, cols, 3, vals, FERRY_SQL_CONFLICT_ERROR, 0, NULL, done_cb, &r) == 0,
            "queue insert");
  in_queue = 0;
  FT_ASSERT(run_until(&r.called, 1, 60), "insert done");
  FT_ASSERT(r.status == FERRY_ECONFLICT, "conflict refused: %d %s", r.status, r.msg);
  res_clear(&r);
  expect_scalar(db, NULL, "SELECT count(*) FROM ferry_txn", "1"); /* all or nothing */
  FT_ASSERT(ferry_sql_insert(db, NULL, "ferry_txn", 2, cols, 3, vals, FERRY_SQL_CONFLICT_SKIP, 1, keys, done_cb, &r) == 0,
            "queue insert");
  FT_ASSERT(run_until(&r.called, 1, 60) && r.status == 0, "skip: %s", r.msg);
  res_clear(&r);
  expect_scalar(db, NULL, "SELECT count(*) FROM ferry_txn", "3");
  expect_scalar(db, NULL, "SELECT v FROM ferry_txn WHERE id = 3", "c");
  FT_ASSERT(ferry_sql_insert(db, NULL, "ferry_txn", 2, cols, 3, vals, FERRY_SQL_CONFLICT_UPDATE, 1, keys, done_cb, &r) == 0,
            "queue insert");
  FT_ASSERT(run_until(&r.called, 1, 60) && r.status == 0, "update: %s", r.msg);
  res_clear(&r);
  expect_scalar(db, NULL, "SELECT v FROM ferry_txn WHERE id = 3", "new3");
  expect_scalar(db, NULL, "SELECT count(*) FROM ferry_txn WHERE v IS NULL", "1");
  drop(db, "ferry_txn");
  close_db(db);
}

static void case_snapshot(void) {
  if (IS("sqlite")) {
    ferry_sql *w = open_db(url, 1, 0);
    ok(w, NULL, "PRAGMA journal_mode=WAL");
    close_db(w);
  }
  ferry_sql *db = open_db(url, 3, 0);
  drop(db, "ferry_snap");
  ok(db, NULL, "CREATE TABLE ferry_snap (id INTEGER PRIMARY KEY)");
  ok(db, NULL, "INSERT INTO ferry_snap VALUES (1)");
  ferry_sql_txn *s = begin(db, FERRY_SQL_SNAPSHOT | FERRY_SQL_EXPORT, NULL);
  if (IS("pg")) FT_ASSERT(ferry_sql_txn_snapshot_id(s) && *ferry_sql_txn_snapshot_id(s), "exported snapshot id");
  /* a write after the snapshot started, on another connection */
  ok(db, NULL, "INSERT INTO ferry_snap VALUES (2)");
  expect_scalar(db, NULL, "SELECT count(*) FROM ferry_snap", "2");
  expect_scalar(db, s, "SELECT count(*) FROM ferry_snap", "1");
  if (IS("pg")) { /* a second transaction on the same snapshot */
    ferry_sql_txn *s2 = begin(db, FERRY_SQL_SNAPSHOT, ferry_sql_txn_snapshot_id(s));
    expect_scalar(db, s2, "SELECT count(*) FROM ferry_snap", "1");
    end(s2, 1);
  }
  /* read only: a write inside the snapshot is refused */
  if (!IS("sqlite")) {
    res r = {0};
    q(db, s, "INSERT INTO ferry_snap VALUES (3)", 0, NULL, &r, IS("pg") ? FERRY_EINVAL : FERRY_EINVAL);
    res_clear(&r);
    if (IS("pg")) { /* the transaction is aborted now: roll back */
      end(s, 0);
      s = NULL;
    }
  }
  if (s) {
    expect_scalar(db, s, "SELECT count(*) FROM ferry_snap", "1");
    end(s, 1);
  }
  expect_scalar(db, NULL, "SELECT count(*) FROM ferry_snap", "2");
  drop(db, "ferry_snap");
  close_db(db);
}

static int has_row(res *r, const char *a, const char *b, const char *c) {
  for (size_t i = 0; i < r->nrows; i++) {
    char **row = r->cells + i * r->ncols;
    if (!strcmp(row[0], a) && (!b || !strcmp(row[1], b)) && (!c || !strcmp(row[2], c))) return 1;
  }
  return 0;
}

static void cat(ferry_sql *db, ferry_sql_catalog_kind k, const char *table, res *r) {
  memset(r, 0, sizeof *r);
  r->keep = 1;
  FT_ASSERT(ferry_sql_catalog(db, NULL, k, table, rows_cb, done_cb, r) == 0, "queue catalog");
  FT_ASSERT(run_until(&r->called, 1, 60), "catalog done");
  FT_ASSERT(r->status == 0, "catalog %d: %s | %s", k, r->msg, r->detail);
}

static void case_catalog(void) {
  ferry_sql *db = open_db(url, 2, 0);
  drop(db, "ferry_child");
  drop(db, "ferry_Parent");
  char sql[512];
  snprintf(sql, sizeof sql, "CREATE TABLE %s (a INTEGER NOT NULL, b VARCHAR(40) NOT NULL, note %s, data %s, "
           "PRIMARY KEY (a, b))", IS("mariadb") ? "`ferry_Parent`" : "\"ferry_Parent\"", text_type(), blob_type());
  ok(db, NULL, sql);
  snprintf(sql, sizeof sql, "CREATE TABLE ferry_child (id INTEGER PRIMARY KEY, pa INTEGER, pb VARCHAR(40), "
           "CONSTRAINT fk_child_parent FOREIGN KEY (pa, pb) REFERENCES %s (a, b))",
           IS("mariadb") ? "`ferry_Parent`" : "\"ferry_Parent\"");
  ok(db, NULL, sql);
  res r;
  cat(db, FERRY_SQL_TABLES, NULL, &r);
  int found = 0;
  for (size_t i = 0; i < r.nrows; i++)
    found += !strcmp(r.cells[i * 2 + 1], "ferry_Parent") || !strcmp(r.cells[i * 2 + 1], "ferry_child");
  FT_ASSERT(found == 2, "both tables listed (%zu rows)", r.nrows);
  res_clear(&r);
  cat(db, FERRY_SQL_TABLES, "ferry_parent", &r); /* case matters */
  FT_ASSERT(r.nrows == 0, "no table ferry_parent (lower case): %zu", r.nrows);
  res_clear(&r);
  cat(db, FERRY_SQL_COLUMNS, "ferry_Parent", &r);
  FT_ASSERT(r.nrows == 4 && r.ncols == 6, "4 columns: %zu", r.nrows);
  FT_ASSERT(!strcmp(r.cells[0 * 6 + 1], "a") && !strcmp(r.cells[0 * 6 + 2], "1") && !strcmp(r.cells[0 * 6 + 4], "0"),
            "a first, not null");
  FT_ASSERT(!strcmp(r.cells[0 * 6 + 5], "2"), "a is INT: %s", r.cells[5]);
  FT_ASSERT(!strcmp(r.cells[1 * 6 + 5], "1") && strstr(r.cells[1 * 6 + 3], "40"), "b is text(40): %s %s", r.cells[11],
            r.cells[9]);
  FT_ASSERT(!strcmp(r.cells[2 * 6 + 5], "1") && !strcmp(r.cells[2 * 6 + 4], "1"), "note is nullable text");
  FT_ASSERT(!strcmp(r.cells[3 * 6 + 5], "6"), "data is binary: %s (%s)", r.cells[3 * 6 + 5], r.cells[3 * 6 + 3]);
  for (size_t i = 0; i < r.nrows; i++) printf("column %s.%s %s\n", r.cells[i * 6], r.cells[i * 6 + 1], r.cells[i * 6 + 3]);
  res_clear(&r);
  cat(db, FERRY_SQL_PKEYS, "ferry_Parent", &r);
  FT_ASSERT(r.nrows == 2 && has_row(&r, "ferry_Parent", "a", "1") && has_row(&r, "ferry_Parent", "b", "2"), "pk (a, b)");
  res_clear(&r);
  cat(db, FERRY_SQL_FKEYS, NULL, &r);
  int fk = 0;
  for (size_t i = 0; i < r.nrows; i++) {
    char **row = r.cells + i * 6;
    if (strcmp(row[0], "ferry_child")) continue;
    fk++;
    FT_ASSERT(!strcmp(row[4], "ferry_Parent"), "references ferry_Parent: %s", row[4]);
    if (!strcmp(row[3], "1")) FT_ASSERT(!strcmp(row[2], "pa") && !strcmp(row[5], "a"), "pa -> a: %s -> %s", row[2], row[5]);
    else FT_ASSERT(!strcmp(row[2], "pb") && !strcmp(row[5], "b"), "pb -> b");
  }
  FT_ASSERT(fk == 2, "two fk columns: %d", fk);
  res_clear(&r);
  drop(db, "ferry_child");
  drop(db, "ferry_Parent");
  close_db(db);
}

static void case_quote(void) {
  ferry_sql *db = open_db(url, 2, 0);
  const char *odd[] = {"we\"ird", "back`tick", "Mixed Case", "semi;colon", "ümlaut", "it's"};
  for (size_t i = 0; i < sizeof odd / sizeof *odd; i++) {
    drop(db, odd[i]);
    char *qt = ferry_sql_quote_ident(db, odd[i]);
    char *qc = ferry_sql_quote_ident(db, odd[(i + 1) % 6]);
    char sql[512];
    snprintf(sql, sizeof sql, "CREATE TABLE %s (id INTEGER PRIMARY KEY, %s VARCHAR(50))", qt, qc);
    ok(db, NULL, sql);
    const char *cols[] = {"id", odd[(i + 1) % 6]};
    char *up = ferry_sql_upsert_sql(db, odd[i], 2, cols, 1, FERRY_SQL_CONFLICT_UPDATE, 1, cols);
    FT_ASSERT(up, "upsert sql");
    const char *lit = "va'l\\ue \"x\" `y`";
    ferry_sql_value p[2] = {{"1", 1, 0}, {lit, strlen(lit), 0}};
    res r = {0};
    q(db, NULL, up, 2, p, &r, 0);
    res_clear(&r);
    q(db, NULL, up, 2, p, &r, 0); /* again: the upsert updates */
    res_clear(&r);
    free(up);
    snprintf(sql, sizeof sql, "SELECT %s FROM %s", qc, qt);
    expect_scalar(db, NULL, sql, lit);
    char *ql = ferry_sql_quote_literal(db, lit, strlen(lit));
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s = %s", qt, qc, ql);
    expect_scalar(db, NULL, sql, "1");
    free(ql);
    free(qt);
    free(qc);
    drop(db, odd[i]);
  }
  char *qn = ferry_sql_quote_literal(db, NULL, 0);
  FT_ASSERT(!strcmp(qn, "NULL"), "NULL literal");
  free(qn);
  printf("TEXT is %s, BINARY is %s\n", ferry_sql_type_name(db, FERRY_SQL_T_TEXT), ferry_sql_type_name(db, FERRY_SQL_T_BINARY));
  close_db(db);
}

typedef struct limit_probe { int inflight, peak, done; double t_first, t_last; } limit_probe;
static limit_probe probe;
static int probe_rows(void *arg, const ferry_sql_batch *b) { return 0; }
static void probe_done(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  FT_ASSERT(status == 0, "probe: %s", err ? err->message : "");
  probe.done++;
  probe.t_last = ferry__now();
}

static void case_limits(void) {
  if (IS("sqlite")) {
    /* the rate limit only (no server-side sleep) */
  }
  const char *sleep_sql = IS("pg") ? "SELECT pg_sleep(0.3)" : IS("mariadb") ? "SELECT SLEEP(0.3)" : NULL;
  if (sleep_sql) {
    ferry_sql *db = open_db(url, 2, 0);
    memset(&probe, 0, sizeof probe);
    double t0 = ferry__now();
    for (int i = 0; i < 6; i++)
      FT_ASSERT(ferry_sql_query(db, NULL, sleep_sql, 0, NULL, probe_rows, probe_done, NULL) == 0, "queue");
    FT_ASSERT(run_until(&probe.done, 6, 60), "6 done");
    double secs = ferry__now() - t0;
    printf("concurrency 2: 6 x 0.3 s statements took %.2f s (want >= 0.9, < 1.8)\n", secs);
    FT_ASSERT(secs >= 0.88 && secs < 1.75, "two at a time: %.2f s", secs);
    close_db(db);
  }
  ferry_sql *db = open_db(url, 4, 5.0);
  memset(&probe, 0, sizeof probe);
  double t0 = ferry__now();
  for (int i = 0; i < 6; i++) FT_ASSERT(ferry_sql_query(db, NULL, "SELECT 1", 0, NULL, NULL, probe_done, NULL) == 0, "queue");
  FT_ASSERT(run_until(&probe.done, 6, 60), "6 done");
  double secs = ferry__now() - t0;
  printf("rate 5/s: 6 statements took %.2f s (want >= 1.0)\n", secs);
  FT_ASSERT(secs >= 0.98 && secs < 2.5, "rate honoured: %.2f s", secs);
  close_db(db);
  /* the instance's rate is the default */
  ins.rate = 10;
  db = open_db(url, 4, 0);
  memset(&probe, 0, sizeof probe);
  t0 = ferry__now();
  for (int i = 0; i < 6; i++) FT_ASSERT(ferry_sql_query(db, NULL, "SELECT 1", 0, NULL, NULL, probe_done, NULL) == 0, "queue");
  FT_ASSERT(run_until(&probe.done, 6, 60), "6 done");
  secs = ferry__now() - t0;
  printf("instance rate 10/s: 6 statements took %.2f s (want >= 0.5)\n", secs);
  FT_ASSERT(secs >= 0.48, "instance rate honoured: %.2f s", secs);
  ins.rate = 0;
  close_db(db);
}

static int ticks;
static void on_tick(uv_timer_t *t) { ticks++; }

static void case_noblock(void) {
  ferry_sql *db = open_db(url, 2, 0);
  const char *sql = IS("pg") ? "SELECT pg_sleep(1)" : IS("mariadb") ? "SELECT SLEEP(1)"
                    : "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000) "
                      "SELECT count(*) FROM c";
  uv_timer_t tick;
  uv_timer_init(&loop, &tick);
  ticks = 0;
  uv_timer_start(&tick, on_tick, 20, 20);
  res r = {0};
  double t0 = ferry__now();
  q(db, NULL, sql, 0, NULL, &r, 0);
  double secs = ferry__now() - t0;
  uv_timer_stop(&tick);
  uv_close((uv_handle_t *)&tick, NULL);
  printf("a 20 ms timer fired %d times during a %.2f s statement\n", ticks, secs);
  FT_ASSERT(ticks >= (int)(secs * 1000 / 20 * 0.6), "the loop kept running: %d ticks in %.2f s", ticks, secs);
  FT_ASSERT(secs > 0.3, "the statement took time: %.2f", secs);
  res_clear(&r);
  close_db(db);
}

/* MariaDB: a second session KILLs the connection in the middle of a result. */
static ferry_sql *killer;
static char *victim_id;
static res kill_res;
static void kill_on_first(res *r, const ferry_sql_batch *b) {
  if (r->batches != 1) return;
  char sql[64];
  snprintf(sql, sizeof sql, "KILL %s", victim_id);
  FT_ASSERT(ferry_sql_query(killer, NULL, sql, 0, NULL, NULL, done_cb, &kill_res) == 0, "queue kill");
}

static void case_killed(void) {
  FT_ASSERT(IS("mariadb"), "mariadb only");
  ferry_sql *db = open_db(url, 1, 0);
  killer = open_db(url, 1, 0);
  victim_id = scalar(db, NULL, "SELECT CONNECTION_ID()");
  res r = {.on_batch = kill_on_first};
  memset(&kill_res, 0, sizeof kill_res);
  double t0 = ferry__now();
  q(db, NULL, "SELECT a.seq, REPEAT('y', 200) FROM seq_1_to_100000 a, seq_1_to_100 b", 0, NULL, &r, FERRY_ETRANSIENT);
  printf("killed after %zu rows in %.2f s: %s | %s\n", r.nrows, ferry__now() - t0, r.msg, r.detail);
  FT_ASSERT(r.nrows < 10000000, "stopped early");
  FT_ASSERT(strstr(r.msg, ferry_sql_endpoint(db)), "names the endpoint");
  res_clear(&r);
  FT_ASSERT(run_until(&kill_res.called, 1, 30) && kill_res.status == 0, "kill ran: %s", kill_res.msg);
  res_clear(&kill_res);
  /* the pool connects again */
  char *id2 = scalar(db, NULL, "SELECT CONNECTION_ID()");
  FT_ASSERT(strcmp(id2, victim_id), "a new connection: %s vs %s", id2, victim_id);
  free(id2);
  /* a transaction whose connection is killed: its statements fail, rollback succeeds */
  ferry_sql_txn *t = begin(db, FERRY_SQL_READ_WRITE, NULL);
  free(victim_id);
  victim_id = scalar(db, t, "SELECT CONNECTION_ID()");
  char sql[64];
  snprintf(sql, sizeof sql, "KILL %s", victim_id);
  ok(killer, NULL, sql);
  res r2 = {0};
  q(db, t, "SELECT 1", 0, NULL, &r2, FERRY_ETRANSIENT);
  res_clear(&r2);
  q(db, t, "SELECT 2", 0, NULL, &r2, FERRY_ETRANSIENT);
  FT_ASSERT(strstr(r2.msg, "lost"), "transaction lost: %s", r2.msg);
  res_clear(&r2);
  end(t, 0);
  free(victim_id);
  close_db(killer);
  close_db(db);
}

static ferry_sql *close_me;
static void close_in_rows(res *r, const ferry_sql_batch *b) {
  if (r->batches == 2 && close_me) {
    ferry_sql *db = close_me;
    close_me = NULL;
    ferry_sql_close(db);
  }
}

/* Closing the endpoint in the middle of everything: callbacks with ECANCELED, nothing leaks or hangs. */
static void case_close(void) {
  ferry_sql *db = open_db(url, 2, 0);
  const char *sql = IS("pg") ? "SELECT pg_sleep(5)" : IS("mariadb") ? "SELECT SLEEP(5)" : "SELECT 1";
  res a = {0}, b = {0}, c = {0};
  FT_ASSERT(ferry_sql_query(db, NULL, sql, 0, NULL, rows_cb, done_cb, &a) == 0, "queue");
  FT_ASSERT(ferry_sql_query(db, NULL, sql, 0, NULL, rows_cb, done_cb, &b) == 0, "queue");
  FT_ASSERT(ferry_sql_query(db, NULL, sql, 0, NULL, rows_cb, done_cb, &c) == 0, "queue");
  beg bg = {0};
  FT_ASSERT(ferry_sql_begin(db, 0, NULL, begin_cb, &bg) == 0, "begin");
  /* let them start */
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  int fired = 0;
  t.data = &fired;
  uv_timer_start(&t, on_guard, 10, 10); /* wakes the loop: the statements themselves answer after 5 s */
  double end_at = ferry__now() + 0.3;
  while (ferry__now() < end_at) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&t, NULL);
  double t0 = ferry__now();
  ferry_sql_close(db);
  FT_ASSERT(a.called == 1 && b.called == 1 && c.called == 1 && bg.called == 1, "every callback ran in close: %d %d %d %d",
            a.called, b.called, c.called, bg.called);
  FT_ASSERT(IS("sqlite") || (a.status == FERRY_ECANCELED && c.status == FERRY_ECANCELED), "canceled: %d %d %d %d (%s)",
            a.status, b.status, c.status, bg.status, a.msg ? a.msg : "");
  uv_run(&loop, UV_RUN_DEFAULT);
  printf("close with work in flight took %.3f s\n", ferry__now() - t0);
  FT_ASSERT(ferry__now() - t0 < 2.0, "close does not wait for the statements");
  res_clear(&a);
  res_clear(&b);
  res_clear(&c);
  free(bg.msg);
  /* closed from inside a rows callback: the statement ends with ECANCELED, nothing is touched after */
  db = open_db(url, 2, 0);
  close_me = db;
  const char *big = IS("pg") ? "SELECT g FROM generate_series(1, 100000) g"
                    : IS("mariadb") ? "SELECT seq FROM seq_1_to_100000"
                                    : "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000) "
                                      "SELECT x FROM c";
  res r = {.on_batch = close_in_rows};
  FT_ASSERT(ferry_sql_query(db, NULL, big, 0, NULL, rows_cb, done_cb, &r) == 0, "queue");
  FT_ASSERT(run_until(&r.called, 1, 60), "done after close in rows");
  FT_ASSERT(r.status == FERRY_ECANCELED && r.batches == 2, "canceled after the second batch: %d, %zu batches", r.status,
            r.batches);
  res_clear(&r);
  uv_run(&loop, UV_RUN_DEFAULT);
  /* closed while its connections connect, at every point of the handshake the loop reaches in 0 to 20 ms:
   * the statement ends with ECANCELED and nothing the driver started is left (LeakSanitizer at exit) */
  for (int ms = 0; ms <= 20; ms++) {
    db = open_db(url, 2, 0);
    res q = {0};
    FT_ASSERT(ferry_sql_query(db, NULL, "SELECT 1", 0, NULL, rows_cb, done_cb, &q) == 0, "queue");
    double until = ferry__now() + ms / 1000.0;
    do uv_run(&loop, UV_RUN_NOWAIT);
    while (ferry__now() < until && !q.called);
    ferry_sql_close(db);
    FT_ASSERT(q.called == 1, "closed while connecting (%d ms): the statement's callback ran", ms);
    res_clear(&q);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
}

/* Bulk insert (the driver's fast path) against one INSERT per row, with the figures printed. */
static void case_bulk(void) {
  ferry_sql *db = open_db(url, 2, 0);
  drop(db, "ferry_bulk");
  char sql[256];
  snprintf(sql, sizeof sql, "CREATE TABLE ferry_bulk (id INTEGER PRIMARY KEY, name VARCHAR(100), note %s)", text_type());
  ok(db, NULL, sql);
  enum { N = 100000 };
  ferry_sql_value *vals = calloc(N * 3, sizeof *vals);
  char *buf = malloc((size_t)N * 64);
  for (int i = 0; i < N; i++) {
    char *id = buf + (size_t)i * 64, *name = id + 16;
    snprintf(id, 16, "%d", i + 1);
    snprintf(name, 48, "row %d it's \\ \"q\" ü", i + 1);
    vals[i * 3] = (ferry_sql_value){id, strlen(id), 0};
    vals[i * 3 + 1] = (ferry_sql_value){name, strlen(name), 0};
    vals[i * 3 + 2] = (ferry_sql_value){i % 7 ? "a note of some length, to look like a form field" : NULL, 48, 0};
  }
  const char *cols[] = {"id", "name", "note"};
  res r = {0};
  double t0 = ferry__now();
  FT_ASSERT(ferry_sql_insert(db, NULL, "ferry_bulk", 3, cols, N, vals, FERRY_SQL_CONFLICT_ERROR, 0, NULL, done_cb, &r) == 0,
            "queue bulk");
  FT_ASSERT(run_until(&r.called, 1, 120) && r.status == 0, "bulk: %s | %s", r.msg, r.detail);
  double bulk = ferry__now() - t0;
  FT_ASSERT(r.info.affected == N, "affected %llu", (unsigned long long)r.info.affected);
  res_clear(&r);
  expect_scalar(db, NULL, "SELECT count(*) FROM ferry_bulk", "100000");
  expect_scalar(db, NULL, "SELECT name FROM ferry_bulk WHERE id = 77", "row 77 it's \\ \"q\" ü");
  expect_scalar(db, NULL, "SELECT count(*) FROM ferry_bulk WHERE note IS NULL", "14286");
  /* the same rows with the upsert path (multi-row INSERT ... ON CONFLICT / ON DUPLICATE KEY) */
  const char *keys[] = {"id"};
  t0 = ferry__now();
  FT_ASSERT(ferry_sql_insert(db, NULL, "ferry_bulk", 3, cols, N, vals, FERRY_SQL_CONFLICT_UPDATE, 1, keys, done_cb, &r) == 0,
            "queue upsert");
  FT_ASSERT(run_until(&r.called, 1, 120) && r.status == 0, "upsert: %s | %s", r.msg, r.detail);
  double upsert = ferry__now() - t0;
  res_clear(&r);
  /* one INSERT per row, 2 connections, for 1000 rows */
  ok(db, NULL, "DELETE FROM ferry_bulk");
  memset(&probe, 0, sizeof probe);
  t0 = ferry__now();
  for (int i = 0; i < 1000; i++)
    FT_ASSERT(ferry_sql_query(db, NULL, "INSERT INTO ferry_bulk (id, name, note) VALUES ($1, $2, $3)", 3, vals + i * 3,
                              NULL, probe_done, NULL) == 0, "queue");
  FT_ASSERT(run_until(&probe.done, 1000, 150), "1000 single inserts");
  double single = ferry__now() - t0;
  printf("%s: bulk insert %d rows %.2f s (%.0f rows/s); upsert path %.2f s (%.0f rows/s); one INSERT per row "
         "(autocommit, 2 connections) %.0f rows/s\n", engine, N, bulk, N / bulk, upsert, N / upsert, 1000 / single);
  FT_ASSERT(N / bulk > 5 * (1000 / single), "the bulk path is faster than row by row");
  free(vals);
  free(buf);
  drop(db, "ferry_bulk");
  close_db(db);
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: test_sql <case> pg|mariadb|sqlite <statefile|dir>\n");
    return 2;
  }
  const char *cs = argv[1];
  engine = argv[2];
  if (IS("sqlite")) {
    snprintf(url, sizeof url, "sqlite://%s/ferry-%s.db", argv[3], cs);
    char path[1024];
    snprintf(path, sizeof path, "%s/ferry-%s.db", argv[3], cs);
    unlink(path);
    snprintf(path, sizeof path, "%s/ferry-%s.db-wal", argv[3], cs);
    unlink(path);
  } else {
    FILE *f = fopen(argv[3], "r");
    FT_ASSERT(f, "state file %s", argv[3]);
    char line[1024];
    FT_ASSERT(fgets(line, sizeof line, f) && fgets(url, sizeof url, f), "state file lines");
    fclose(f);
    url[strcspn(url, "\n")] = 0;
  }
  uv_loop_init(&loop);
  ins.loop = &loop;
  ins.concurrency = 4;
  if (!strcmp(cs, "connect_errors")) case_connect_errors();
  else if (!strcmp(cs, "params")) case_params();
  else if (!strcmp(cs, "stream")) case_stream();
  else if (!strcmp(cs, "txn")) case_txn();
  else if (!strcmp(cs, "snapshot")) case_snapshot();
  else if (!strcmp(cs, "catalog")) case_catalog();
  else if (!strcmp(cs, "quote")) case_quote();
  else if (!strcmp(cs, "limits")) case_limits();
  else if (!strcmp(cs, "noblock")) case_noblock();
  else if (!strcmp(cs, "killed")) case_killed();
  else if (!strcmp(cs, "close")) case_close();
  else if (!strcmp(cs, "bulk")) case_bulk();
  else {
    fprintf(stderr, "unknown case %s\n", cs);
    return 2;
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  FT_ASSERT(uv_loop_close(&loop) == 0, "every handle closed");
  ferry__secret_clear();
  printf("ok %s %s\n", cs, engine);
  return 0;
}
