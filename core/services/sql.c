/* SDK service ferry/sql.h: one SQL endpoint (pool, queue, transactions, rate limit, batches of rows) over an
 * engine driver (sql_driver.h: sql_pg.c, sql_mysql.c, sql_sqlite.c).
 *
 * One FIFO queue of operations per endpoint. pump() walks it in order and starts what can start:
 *   - an operation of a transaction when the transaction's connection is idle and nothing of the same
 *     transaction is queued before it;
 *   - any other operation (autocommit statement, begin) on an idle connection that no transaction holds, or
 *     on a new one while the pool has fewer than `max` connections (it waits in the queue meanwhile);
 * and each start takes a token of the endpoint's bucket (services/throttle.h, the HTTP service's). pump runs
 * from a zero timer (kick), so no callback ever runs inside the call that queued.
 * An operation is a list of statements run one after the other on its connection (begin: BEGIN and the
 * snapshot statements; a bulk insert: its INSERT chunks, inside BEGIN/COMMIT without a transaction). Rows
 * are copied into a batch (one arena per connection) and handed to the rows callback every `batch_rows`
 * rows and at the end: memory stays bounded by one batch whatever the result's size.
 * A connection that breaks is closed; the transaction holding it is marked lost (its operations fail with
 * FERRY_ETRANSIENT); the next operation opens a new one. A connection that cannot be opened fails every
 * waiting operation without a transaction when no other connection is up (a wrong password fails now, it
 * does not wait forever).
 *
 * Lifetime: ferry_sql_close() cancels everything, closes the connections (drivers may keep memory until their
 * uv handles or thread-pool work are done) and the two uv timers; the struct goes with the last close.
 */
#include <stdlib.h>
#include <string.h>

#include "services/services.h"
#include "services/sql_driver.h"
#include "services/throttle.h"
#include "ferry/log.h"

#define SQL_DEFAULT_MAX 4
#define SQL_DEFAULT_BATCH 1000
#define SQL_DEFAULT_CONNECT_MS 10000
#define SQL_INSERT_CHUNK_BYTES (1024 * 1024)
#define SQL_INSERT_CHUNK_ROWS 1000
#define SQL_SQLITE_CHUNK_PARAMS 30000

enum { C_CONNECTING = 1, C_IDLE, C_BUSY };
enum { OP_STMT = 1, OP_BEGIN, OP_COMMIT, OP_ROLLBACK };

typedef struct sqlop {
  struct sqlop *next;
  int kind;
  ferry_sql_txn *txn;          /* target transaction (OP_STMT, COMMIT, ROLLBACK) or the one begun (BEGIN) */
  sqlstmt *stmts, *cur;
  sqlstmt *on_fail;            /* run after a failure before reporting it (ROLLBACK), or NULL */
  int failing;                 /* running on_fail */
  char *what;
  ferry_sql_rows_cb rows;
  ferry_sql_done_cb done;
  ferry_sql_begin_cb begun;
  void *arg;
  int stopped;                 /* the rows callback asked to stop */
  int internal_rows;           /* rows of this statement are not the caller's (BEGIN, capture) */
  ferry_sql_done info;
  int err_code;
  ferry_error err;             /* first failure */
  char *captured;
} sqlop;

struct ferry_sql_txn {
  ferry_sql *db;
  sqlconn *conn;
  int ended;                   /* commit/rollback queued */
  int lost;                    /* its connection broke */
  unsigned mode;
  char *snapshot_id;
  struct ferry_sql_txn *next_open; /* sqlpriv.open: begun and not yet ended */
  ferry_error lost_err;
};

typedef struct sqlbatch {
  size_t ncols;
  ferry_sql_column *cols;
  ferry_buf names;              /* column names and type names, NUL-separated (offsets in cols during setup) */
  ferry_sql_value *cells;
  size_t *offs;                /* cell data offsets in arena (pointers are set at flush) */
  size_t ncells, cap;
  size_t cur;                  /* cells of the current row so far */
  ferry_buf arena;
  uint64_t first_row, rows;
} sqlbatch;

typedef struct sqlpriv {
  sqlop *head, *tail;
  size_t nops;
  sqlconn *conns;
  unsigned nconns;
  size_t ntxn;
  ferry_sql_txn *open;         /* begun, not yet ended (freed by close) */
  ferry__throttle bucket;
  uv_timer_t kick;
  int freeing;
  unsigned open_handles;
  int pumping;
} sqlpriv;

static sqlbatch *batch_of(sqlconn *c) {
  if (!c->batch) c->batch = ferry__xcalloc(1, sizeof(sqlbatch));
  return c->batch;
}

static void batch_reset(sqlbatch *b) {
  free(b->cols);
  ferry_buf_free(&b->names);
  free(b->cells);
  free(b->offs);
  ferry_buf_free(&b->arena);
  memset(b, 0, sizeof *b);
}

static void batch_forget(sqlconn *c) {
  if (!c->batch) return;
  batch_reset(c->batch);
  free(c->batch);
  c->batch = NULL;
}

/* ---- statements and operations ----------------------------------------------------------------------- */

static sqlstmt *stmt_new(const char *sql, size_t nparams, const ferry_sql_value *params) {
  sqlstmt *st = ferry__xcalloc(1, sizeof *st);
  st->sql = ferry_strdup(sql);
  st->nparams = nparams;
  if (nparams) {
    st->params = ferry__xcalloc(nparams, sizeof *st->params);
    for (size_t i = 0; i < nparams; i++) {
      st->params[i].binary = params[i].binary;
      st->params[i].len = params[i].data ? params[i].len : 0;
      if (params[i].data) {
        char *d = ferry__xmalloc(params[i].len + 1);
        memcpy(d, params[i].data, params[i].len);
        d[params[i].len] = 0;
        st->params[i].data = d;
      }
    }
  }
  return st;
}

static void stmt_free(sqlstmt *st) {
  if (!st) return;
  free(st->sql);
  for (size_t i = 0; i < st->nparams; i++) free((char *)st->params[i].data);
  free(st->params);
  free(st->copy_data);
  free(st);
}

static void op_append(sqlop *op, sqlstmt *st) {
  sqlstmt **p = &op->stmts;
  while (*p) p = &(*p)->next;
  *p = st;
}

static void op_free(sqlop *op) {
  while (op->stmts) {
    sqlstmt *n = op->stmts->next;
    stmt_free(op->stmts);
    op->stmts = n;
  }
  stmt_free(op->on_fail);
  free(op->what);
  free(op->captured);
  ferry_error_clear(&op->err);
  free(op);
}

static void q_remove(sqlpriv *p, sqlop *op) {
  for (sqlop **pp = &p->head; *pp; pp = &(*pp)->next)
    if (*pp == op) {
      *pp = op->next;
      if (p->tail == op) {
        p->tail = NULL;
        for (sqlop *o = p->head; o; o = o->next) p->tail = o;
      }
      op->next = NULL;
      p->nops--;
      return;
    }
}

static void kick(ferry_sql *db);

static void txn_free(ferry_sql_txn *t) {
  free(t->snapshot_id);
  ferry_error_clear(&t->lost_err);
  free(t);
}

/* Calls the operation's callback with its outcome and frees it. */
static void deliver(ferry_sql *db, sqlop *op, int status, const ferry_error *err) {
  if (op->kind == OP_BEGIN) {
    ferry_sql_txn *t = op->txn;
    if (status) {
      txn_free(t);
      op->begun(op->arg, status, NULL, err);
    } else {
      t->snapshot_id = op->captured;
      op->captured = NULL;
      op->begun(op->arg, 0, t, NULL);
    }
  } else {
    ferry_sql_txn *t = (op->kind == OP_COMMIT || op->kind == OP_ROLLBACK) ? op->txn : NULL;
    op->done(op->arg, status, status ? NULL : &op->info, status ? err : NULL);
    if (t) {
      db->priv->ntxn--;
      for (ferry_sql_txn **pp = &db->priv->open; *pp; pp = &(*pp)->next_open)
        if (*pp == t) {
          *pp = t->next_open;
          break;
        }
      txn_free(t);
    }
  }
  op_free(op);
}

static void fail_op(ferry_sql *db, sqlop *op, int code, const char *msg, const char *detail) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_error_set(&err, code, "%s: %s: %s", db->endpoint, op->what, msg);
  if (detail) ferry_error_set_detail(&err, "%s", detail);
  if (op->kind == OP_ROLLBACK && code == FERRY_ETRANSIENT && op->txn && op->txn->lost) {
    ferry_error_clear(&err);
    deliver(db, op, 0, NULL); /* nothing was committed: the rollback has its effect */
    return;
  }
  deliver(db, op, code, &err);
  ferry_error_clear(&err);
}

/* ---- connections --------------------------------------------------------------------------------------- */

static void conn_drop(ferry_sql *db, sqlconn *c) {
  sqlpriv *p = db->priv;
  for (sqlconn **pp = &p->conns; *pp; pp = &(*pp)->next)
    if (*pp == c) {
      *pp = c->next;
      p->nconns--;
      break;
    }
  if (c->txn) {
    c->txn->conn = NULL;
    c->txn->lost = 1;
  }
  c->txn = NULL;
  if (c->in_user) { /* a rows callback of this connection runs: close it when the callback returns */
    c->dropped = 1;
    return;
  }
  batch_forget(c);
  db->drv->conn_close(c);
}

static int conns_up(ferry_sql *db) {
  for (sqlconn *c = db->priv->conns; c; c = c->next)
    if (c->state != C_CONNECTING) return 1;
  return 0;
}

void ferry__sql_conn_ready(sqlconn *c, int status, const ferry_error *err) {
  ferry_sql *db = c->db;
  sqlpriv *p = db->priv;
  if (status == 0) {
    c->state = C_IDLE;
    kick(db);
    return;
  }
  conn_drop(db, c);
  if (conns_up(db)) return kick(db);
  /* nobody can run the waiting operations: they fail with this error (not the transactions' ones) */
  sqlop *list = NULL, **tailp = &list;
  for (sqlop **pp = &p->head; *pp;) {
    sqlop *op = *pp;
    if (!op->txn || op->kind == OP_BEGIN) {
      *pp = op->next;
      op->next = NULL;
      p->nops--;
      *tailp = op;
      tailp = &op->next;
    } else {
      pp = &op->next;
    }
  }
  p->tail = NULL;
  for (sqlop *o = p->head; o; o = o->next) p->tail = o;
  while (list) {
    sqlop *n = list->next;
    if (p->freeing) fail_op(db, list, FERRY_ECANCELED, "canceled (endpoint closed)", NULL);
    else fail_op(db, list, status, err && err->message ? err->message : "cannot connect", err ? err->detail : NULL);
    list = n;
  }
  if (!p->freeing) kick(db);
}

/* ---- rows ------------------------------------------------------------------------------------------------ */

void ferry__sql_columns(sqlconn *c, size_t ncols, const ferry_sql_column *cols) {
  sqlbatch *b = batch_of(c);
  free(b->cols);
  ferry_buf_free(&b->names);
  b->ncols = ncols;
  b->cols = ferry__xcalloc(ncols ? ncols : 1, sizeof *b->cols);
  size_t *o = ferry__xcalloc(ncols * 2 + 1, sizeof *o);
  for (size_t i = 0; i < ncols; i++) {
    o[2 * i] = b->names.len;
    ferry_buf_addn(&b->names, cols[i].name ? cols[i].name : "", strlen(cols[i].name ? cols[i].name : "") + 1);
    o[2 * i + 1] = b->names.len;
    const char *tn = cols[i].type_name ? cols[i].type_name : "";
    ferry_buf_addn(&b->names, tn, strlen(tn) + 1);
    b->cols[i].type = cols[i].type;
  }
  for (size_t i = 0; i < ncols; i++) {
    b->cols[i].name = b->names.buf + o[2 * i];
    b->cols[i].type_name = b->names.buf + o[2 * i + 1];
  }
  free(o);
}

/* Hands the batch to the rows callback. 1 when the callback closed the endpoint (c is closed). */
static int batch_flush(sqlconn *c, sqlbatch *b) {
  sqlop *op = c->op;
  size_t nrows = b->ncols ? b->ncells / b->ncols : 0;
  if (!nrows) {
    b->ncells = 0;
    b->arena.len = 0;
    return 0;
  }
  for (size_t i = 0; i < b->ncells; i++)
    if (b->cells[i].data) b->cells[i].data = b->arena.buf + b->offs[i];
  if (op && !op->stopped && !op->internal_rows && op->rows) {
    ferry_sql_batch out = {.ncols = b->ncols, .cols = b->cols, .nrows = nrows, .cells = b->cells,
                           .first_row = b->first_row};
    c->in_user++;
    int stop = op->rows(op->arg, &out);
    c->in_user--;
    if (c->dropped) { /* the callback closed the endpoint (op is gone): finish the drop now */
      c->dropped = 0;
      batch_forget(c);
      c->db->drv->conn_close(c);
      return 1;
    }
    if (stop) op->stopped = 1;
  }
  if (op && !op->internal_rows) op->info.rows += nrows;
  b->first_row += nrows;
  b->ncells = 0;
  b->arena.len = 0;
  return 0;
}

void ferry__sql_cell(sqlconn *c, const char *data, size_t len, int binary) {
  sqlbatch *b = batch_of(c);
  sqlop *op = c->op;
  if (op && op->cur && op->cur->capture && !op->captured && data) op->captured = ferry_strndup(data, len);
  if (b->ncells == b->cap) {
    b->cap = b->cap ? b->cap * 2 : 64;
    b->cells = ferry__xrealloc(b->cells, b->cap * sizeof *b->cells);
    b->offs = ferry__xrealloc(b->offs, b->cap * sizeof *b->offs);
  }
  ferry_sql_value *v = &b->cells[b->ncells];
  v->binary = binary;
  v->len = data ? len : 0;
  v->data = data ? "" : NULL; /* the real pointer is set at flush */
  b->offs[b->ncells] = b->arena.len;
  if (data) {
    ferry_buf_addn(&b->arena, data, len);
    ferry_buf_addn(&b->arena, "", 1); /* NUL after the value */
  }
  b->ncells++;
}

void ferry__sql_row_end(sqlconn *c) {
  sqlbatch *b = batch_of(c);
  unsigned want = c->db->batch_rows;
  if (b->ncols && b->ncells / b->ncols >= want) batch_flush(c, b);
}

/* ---- running ------------------------------------------------------------------------------------------ */

static void start_stmt(sqlconn *c, sqlstmt *st) {
  sqlbatch *b = batch_of(c);
  b->ncells = 0;
  b->arena.len = 0;
  b->first_row = 0;
  c->op->internal_rows = c->op->kind != OP_STMT;
  c->db->drv->exec(c, st);
}

static void finish(ferry_sql *db, sqlconn *c, sqlop *op) {
  c->op = NULL;
  if (c->state == C_BUSY) c->state = C_IDLE;
  if (op->err_code) {
    if (op->kind == OP_BEGIN && c->txn == op->txn) c->txn = NULL;
    if (op->kind == OP_COMMIT || op->kind == OP_ROLLBACK) {
      if (op->txn->conn) op->txn->conn->txn = NULL;
    }
    deliver(db, op, op->err_code, &op->err);
  } else if (op->stopped) {
    ferry_error err = FERRY_ERROR_INIT;
    ferry_error_set(&err, FERRY_ECANCELED, "%s: %s: stopped by the rows callback", db->endpoint, op->what);
    deliver(db, op, FERRY_ECANCELED, &err);
    ferry_error_clear(&err);
  } else {
    if (op->kind == OP_BEGIN) {
      c->txn = op->txn;
      op->txn->conn = c;
      db->priv->ntxn++;
      op->txn->next_open = db->priv->open;
      db->priv->open = op->txn;
    } else if (op->kind == OP_COMMIT || op->kind == OP_ROLLBACK) {
      c->txn = NULL;
    }
    deliver(db, op, 0, NULL);
  }
  if (!db->priv->freeing) kick(db);
}

void ferry__sql_stmt_done(sqlconn *c, int status, uint64_t affected, uint64_t insert_id, const ferry_error *err,
                          int broken) {
  ferry_sql *db = c->db;
  sqlop *op = c->op;
  sqlbatch *b = batch_of(c);
  if (!status && batch_flush(c, b)) return; /* the rows callback closed the endpoint */
  b->ncells = 0;
  b->arena.len = 0;
  if (status && !op->err_code) {
    op->err_code = status;
    ferry_error_set(&op->err, status, "%s: %s: %s", db->endpoint, op->what,
                    err && err->message ? err->message : "failed");
    if (err && err->detail) ferry_error_set_detail(&op->err, "%s", err->detail);
  }
  if (!status && !op->failing) {
    op->info.affected += affected;
    if (insert_id) op->info.insert_id = insert_id;
  }
  if (broken) {
    /* the connection is gone: its transaction too */
    ferry_sql_txn *t = c->txn ? c->txn : (op->kind == OP_BEGIN ? NULL : op->txn);
    if (t && !t->lost_err.code) {
      ferry_error_set(&t->lost_err, FERRY_ETRANSIENT, "the connection of the transaction was lost");
      if (op->err.detail) ferry_error_set_detail(&t->lost_err, "%s", op->err.detail);
    }
    c->op = NULL;
    conn_drop(db, c);
    if (op->kind == OP_COMMIT || op->kind == OP_ROLLBACK) {
      if (op->kind == OP_ROLLBACK) {
        op->err_code = 0; /* nothing was committed */
        ferry_error_clear(&op->err);
      } else if (!op->err_code) {
        op->err_code = FERRY_ETRANSIENT;
      }
    }
    sqlconn dummy = {0};
    dummy.state = 0;
    finish(db, &dummy, op);
    return;
  }
  if (op->failing || (status && !op->on_fail)) return finish(db, c, op);
  if (status) {
    op->failing = 1;
    if (!db->priv->freeing) return start_stmt(c, op->on_fail);
    return finish(db, c, op);
  }
  if (op->stopped) return finish(db, c, op);
  op->cur = op->cur->next;
  if (!op->cur) return finish(db, c, op);
  if (db->priv->freeing) return finish(db, c, op);
  start_stmt(c, op->cur);
}

static void run_on(ferry_sql *db, sqlconn *c, sqlop *op) {
  q_remove(db->priv, op);
  c->state = C_BUSY;
  c->op = op;
  op->cur = op->stmts;
  if (!op->cur) return finish(db, c, op);
  start_stmt(c, op->cur);
}

static sqlconn *idle_free_conn(ferry_sql *db) {
  for (sqlconn *c = db->priv->conns; c; c = c->next)
    if (c->state == C_IDLE && !c->txn) return c;
  return NULL;
}

static unsigned connecting(ferry_sql *db) {
  unsigned n = 0;
  for (sqlconn *c = db->priv->conns; c; c = c->next) n += c->state == C_CONNECTING;
  return n;
}

static void pump(ferry_sql *db) {
  sqlpriv *p = db->priv;
  if (p->pumping) return;
  p->pumping = 1;
  unsigned waiting_pool = 0;
  for (sqlop *op = p->head, *next; op && !p->freeing; op = next) {
    next = op->next;
    ferry_sql_txn *t = op->kind == OP_BEGIN ? NULL : op->txn;
    if (t) {
      int earlier = 0; /* an operation of the same transaction before this one */
      for (sqlop *o = p->head; o != op; o = o->next)
        if (o->txn == t && o->kind != OP_BEGIN) earlier = 1;
      if (earlier) continue;
      if (t->lost || !t->conn) {
        q_remove(p, op);
        if (op->kind == OP_ROLLBACK) {
          deliver(db, op, 0, NULL);
        } else {
          fail_op(db, op, FERRY_ETRANSIENT,
                  t->lost_err.message ? t->lost_err.message : "the connection of the transaction was lost",
                  t->lost_err.detail);
        }
        next = p->head; /* the queue changed under us: start over */
        continue;
      }
      if (t->conn->state != C_IDLE) continue;
      if (!ferry__throttle_take(&p->bucket)) break;
      run_on(db, t->conn, op);
      next = p->head;
      continue;
    }
    sqlconn *c = idle_free_conn(db);
    if (!c) {
      waiting_pool++;
      if (p->nconns < db->max && connecting(db) < waiting_pool) {
        sqlconn *nc = db->drv->conn_open(db);
        if (nc) {
          nc->db = db;
          nc->state = nc->ready_now ? C_IDLE : C_CONNECTING;
          if (nc->ready_now) kick(db);
          nc->next = p->conns;
          p->conns = nc;
          p->nconns++;
        }
      }
      continue;
    }
    if (!ferry__throttle_take(&p->bucket)) break;
    run_on(db, c, op);
    next = p->head;
    waiting_pool = 0;
  }
  p->pumping = 0;
}

static void on_kick(uv_timer_t *t) { pump(t->data); }
static void on_token(void *db) { pump(db); }

static void kick(ferry_sql *db) {
  if (!db->priv->freeing) uv_timer_start(&db->priv->kick, on_kick, 0, 0);
}

static int enqueue(ferry_sql *db, sqlop *op) {
  sqlpriv *p = db->priv;
  if (!op->what) op->what = ferry__sql_what(op->stmts ? op->stmts->sql : "SQL");
  if (p->tail) p->tail->next = op;
  else p->head = op;
  p->tail = op;
  p->nops++;
  kick(db);
  return 0;
}

/* ---- URL helpers -------------------------------------------------------------------------------------- */

void ferry__sql_url_decode(char *s) {
  char *w = s;
  for (char *r = s; *r; r++) {
    if (*r == '%' && r[1] && r[2]) {
      char hex[3] = {r[1], r[2], 0};
      char *end;
      long v = strtol(hex, &end, 16);
      if (!*end) {
        *w++ = (char)v;
        r += 2;
        continue;
      }
    }
    *w++ = *r;
  }
  *w = 0;
}

static const sql_driver *driver_for(const char *url) {
  if (!strncmp(url, "postgresql:", 11) || !strncmp(url, "postgres:", 9)) return &ferry__sql_pg_driver;
  if (!strncmp(url, "mysql:", 6) || !strncmp(url, "mariadb:", 8)) return &ferry__sql_mysql_driver;
  if (!strncmp(url, "sqlite:", 7) || !strncmp(url, "file:", 5)) return &ferry__sql_sqlite_driver;
  const char *scheme_end = strstr(url, "://");
  if (scheme_end) return NULL;
  if (strchr(url, '=')) return &ferry__sql_pg_driver; /* libpq conninfo: key=value ... */
  size_t n = strlen(url);
  if (strchr(url, '/') || (n > 3 && !strcmp(url + n - 3, ".db")) || (n > 7 && !strcmp(url + n - 7, ".sqlite")) ||
      (n > 8 && !strcmp(url + n - 8, ".sqlite3")))
    return &ferry__sql_sqlite_driver;
  return NULL;
}

/* ---- public API ------------------------------------------------------------------------------------------ */

static void db_free_memory(ferry_sql *db) {
  if (db->drv && db->drv->teardown) db->drv->teardown(db);
  free(db->endpoint);
  free(db->priv);
  free(db);
}

static void on_handle_closed(ferry_sql *db) {
  if (--db->priv->open_handles == 0) db_free_memory(db);
}
static void on_kick_closed(uv_handle_t *h) { on_handle_closed(h->data); }
static void on_bucket_closed(void *db) { on_handle_closed(db); }

FERRY_API ferry_sql *ferry_sql_open(ferry_instance *ins, const char *url, const ferry_sql_opts *opts,
                                    ferry_error *err) {
  if (!ins || !ins->loop) {
    ferry_error_set(err, FERRY_EINVAL, "SQL service: no plugin instance (or it has no loop)");
    return NULL;
  }
  if (!url || !*url) {
    ferry_error_set(err, FERRY_ECONFIG, "SQL service: no database URL");
    return NULL;
  }
  const sql_driver *drv = driver_for(url);
  if (!drv) {
    char *r = ferry_redact(url);
    const char *at = strchr(r, '@');
    ferry_error_set(err, FERRY_ECONFIG,
                    "database URL %s%.*s: unknown kind (expected postgresql://, mysql://, mariadb://, sqlite:// or a "
                    "file path)", at ? "<user>" : "", (int)strcspn(at ? at : r, "?"), at ? at : r);
    free(r);
    return NULL;
  }
  ferry_sql_opts o = {0};
  if (opts) memcpy(&o, opts, opts->struct_size && opts->struct_size < sizeof o ? opts->struct_size : sizeof o);
  ferry_sql *db = ferry__xcalloc(1, sizeof *db);
  db->ins = ins;
  db->loop = ins->loop;
  db->drv = drv;
  db->max = o.max_connections ? o.max_connections : ins->concurrency ? ins->concurrency : SQL_DEFAULT_MAX;
  db->batch_rows = o.batch_rows ? o.batch_rows : SQL_DEFAULT_BATCH;
  db->connect_timeout_ms = o.connect_timeout_ms ? o.connect_timeout_ms : SQL_DEFAULT_CONNECT_MS;
  if (drv->setup(db, url, err) < 0) {
    if (drv->teardown) drv->teardown(db);
    free(db->endpoint);
    free(db);
    return NULL;
  }
  db->priv = ferry__xcalloc(1, sizeof *db->priv);
  double rate = o.rate > 0 ? o.rate : ins->rate > 0 ? ins->rate : 0;
  ferry__throttle_init(&db->priv->bucket, db->loop, rate, on_token, db);
  db->priv->bucket.scale = &ins->share; /* ferry run --worker: this worker's share */
  uv_timer_init(db->loop, &db->priv->kick);
  db->priv->kick.data = db;
  db->priv->open_handles = 2;
  return db;
}

void ferry__sql_keep_session(ferry_sql *db) {
  if (db) db->keep_session = 1;
}

FERRY_API void ferry_sql_close(ferry_sql *db) {
  if (!db || db->priv->freeing) return;
  sqlpriv *p = db->priv;
  p->freeing = 1;
  /* running operations first (their connections go), then the queue */
  while (p->conns) {
    sqlconn *c = p->conns;
    sqlop *op = c->op;
    c->op = NULL;
    c->txn = NULL;
    conn_drop(db, c);
    if (op) fail_op(db, op, FERRY_ECANCELED, "canceled (endpoint closed)", NULL);
  }
  while (p->head) {
    sqlop *op = p->head;
    q_remove(p, op);
    fail_op(db, op, FERRY_ECANCELED, "canceled (endpoint closed)", NULL);
  }
  /* transactions the caller never ended: gone with the endpoint */
  while (p->open) {
    ferry_sql_txn *t = p->open;
    p->open = t->next_open;
    txn_free(t);
  }
  uv_timer_stop(&p->kick);
  uv_close((uv_handle_t *)&p->kick, on_kick_closed);
  ferry__throttle_close(&p->bucket, on_bucket_closed);
}

FERRY_API ferry_sql_engine ferry_sql_engine_of(const ferry_sql *db) { return db ? db->drv->engine : 0; }
FERRY_API const char *ferry_sql_endpoint(const ferry_sql *db) { return db ? db->endpoint : NULL; }
FERRY_API size_t ferry_sql_pending(const ferry_sql *db) {
  if (!db) return 0;
  size_t n = db->priv->nops + db->priv->ntxn;
  for (sqlconn *c = db->priv->conns; c; c = c->next) n += c->op != NULL && !c->txn;
  return n;
}

static sqlop *op_new(int kind, ferry_sql_txn *txn, ferry_sql_done_cb done, void *arg) {
  sqlop *op = ferry__xcalloc(1, sizeof *op);
  op->kind = kind;
  op->txn = txn;
  op->done = done;
  op->arg = arg;
  return op;
}

static int check_txn(ferry_sql *db, ferry_sql_txn *txn) {
  if (db->priv->freeing) return FERRY_ECANCELED;
  if (txn && (txn->db != db || txn->ended)) return txn->db != db ? FERRY_EINVAL : FERRY_ECANCELED;
  return 0;
}

FERRY_API int ferry_sql_query(ferry_sql *db, ferry_sql_txn *txn, const char *sql, size_t nparams,
                              const ferry_sql_value *params, ferry_sql_rows_cb rows, ferry_sql_done_cb done,
                              void *arg) {
  if (!db || !sql || !done || (nparams && !params)) return FERRY_EINVAL;
  int rc = check_txn(db, txn);
  if (rc) return rc;
  sqlop *op = op_new(OP_STMT, txn, done, arg);
  op->rows = rows;
  op_append(op, stmt_new(sql, nparams, params));
  return enqueue(db, op);
}

FERRY_API int ferry_sql_begin(ferry_sql *db, unsigned mode, const char *import, ferry_sql_begin_cb cb, void *arg) {
  if (!db || !cb || (mode & ~(FERRY_SQL_SNAPSHOT | FERRY_SQL_EXPORT))) return FERRY_EINVAL;
  if (db->priv->freeing) return FERRY_ECANCELED;
  ferry_sql_txn *t = ferry__xcalloc(1, sizeof *t);
  t->db = db;
  t->mode = mode;
  sqlop *op = op_new(OP_BEGIN, t, NULL, arg);
  op->begun = cb;
  int snap = mode & FERRY_SQL_SNAPSHOT;
  op->what = ferry_strdup(snap ? "begin snapshot" : "begin");
  const char *b = snap ? db->drv->begin_snapshot : db->drv->begin_rw;
  /* begin statements are separated by ';' in the driver's text */
  while (*b) {
    size_t n = strcspn(b, ";");
    char *one = ferry_strndup(b, n);
    op_append(op, stmt_new(one, 0, NULL));
    free(one);
    b += n;
    while (*b == ';' || *b == ' ') b++;
  }
  if (db->drv->engine == FERRY_SQL_POSTGRESQL && snap) {
    if (import) {
      char *lit = db->drv->quote_literal(db, import, strlen(import));
      char *s = ferry_asprintf("SET TRANSACTION SNAPSHOT %s", lit);
      op_append(op, stmt_new(s, 0, NULL));
      free(s);
      free(lit);
    }
    sqlstmt *st = stmt_new((mode & FERRY_SQL_EXPORT) ? "SELECT pg_export_snapshot()" : "SELECT 1", 0, NULL);
    st->capture = (mode & FERRY_SQL_EXPORT) != 0;
    op_append(op, st); /* takes the snapshot now */
  } else if (db->drv->engine == FERRY_SQL_SQLITE && snap) {
    op_append(op, stmt_new("SELECT count(*) FROM sqlite_schema", 0, NULL)); /* starts the read transaction */
  }
  op->on_fail = stmt_new(db->drv->rollback, 0, NULL);
  return enqueue(db, op);
}

FERRY_API const char *ferry_sql_txn_snapshot_id(const ferry_sql_txn *txn) { return txn ? txn->snapshot_id : NULL; }

static int end_txn(ferry_sql_txn *txn, int kind, ferry_sql_done_cb done, void *arg) {
  if (!txn || !done) return FERRY_EINVAL;
  ferry_sql *db = txn->db;
  if (txn->ended) return FERRY_ECANCELED;
  if (db->priv->freeing) return FERRY_ECANCELED;
  txn->ended = 1;
  sqlop *op = op_new(kind, txn, done, arg);
  op->what = ferry_strdup(kind == OP_COMMIT ? "COMMIT" : "ROLLBACK");
  op_append(op, stmt_new(kind == OP_COMMIT ? db->drv->commit : db->drv->rollback, 0, NULL));
  if (kind == OP_COMMIT) op->on_fail = stmt_new(db->drv->rollback, 0, NULL);
  return enqueue(db, op);
}

FERRY_API int ferry_sql_commit(ferry_sql_txn *txn, ferry_sql_done_cb done, void *arg) {
  return end_txn(txn, OP_COMMIT, done, arg);
}
FERRY_API int ferry_sql_rollback(ferry_sql_txn *txn, ferry_sql_done_cb done, void *arg) {
  return end_txn(txn, OP_ROLLBACK, done, arg);
}

FERRY_API int ferry_sql_catalog(ferry_sql *db, ferry_sql_txn *txn, ferry_sql_catalog_kind kind, const char *table,
                                ferry_sql_rows_cb rows, ferry_sql_done_cb done, void *arg) {
  if (!db || !done || kind < FERRY_SQL_TABLES || kind > FERRY_SQL_FKEYS) return FERRY_EINVAL;
  int rc = check_txn(db, txn);
  if (rc) return rc;
  ferry_sql_value v = {table, table ? strlen(table) : 0, 0};
  sqlop *op = op_new(OP_STMT, txn, done, arg);
  op->rows = rows;
  static const char *const names[] = {"", "list tables", "list columns", "list primary keys", "list foreign keys"};
  op->what = ferry_strdup(names[kind]);
  op_append(op, stmt_new(db->drv->catalog[kind], 1, &v));
  return enqueue(db, op);
}

/* ---- writing rows ------------------------------------------------------------------------------------- */

static void add_list(ferry_buf *sb, const ferry_sql *db, size_t n, const char *const *names, const char *fmt) {
  for (size_t i = 0; i < n; i++) {
    char *q = db->drv->quote_ident(db, names[i]);
    ferry_buf_add(sb, i ? ", " : "");
    if (fmt) ferry_buf_addf(sb, fmt, q, q);
    else ferry_buf_add(sb, q);
    free(q);
  }
}

static int is_key(const char *c, size_t nkeys, const char *const *keys) {
  for (size_t k = 0; k < nkeys; k++)
    if (!strcmp(keys[k], c)) return 1;
  return 0;
}

/* "SET a = EXCLUDED.a, ..." for the columns that are not keys (fmt has the column twice). */
static void add_updates(ferry_buf *sb, const ferry_sql *db, size_t ncols, const char *const *cols, size_t nkeys,
                        const char *const *keys, const char *fmt) {
  int first = 1;
  for (size_t i = 0; i < ncols; i++) {
    if (is_key(cols[i], nkeys, keys)) continue;
    char *q = db->drv->quote_ident(db, cols[i]);
    ferry_buf_add(sb, first ? "" : ", ");
    ferry_buf_addf(sb, fmt, q, q);
    free(q);
    first = 0;
  }
  if (first) { /* only key columns: a no-op update on the first one */
    char *q = db->drv->quote_ident(db, cols[0]);
    ferry_buf_addf(sb, "%s = %s", q, q);
    free(q);
  }
}

FERRY_API char *ferry_sql_upsert_sql(const ferry_sql *db, const char *table, size_t ncols, const char *const *cols,
                                     size_t nrows, ferry_sql_conflict conflict, size_t nkeys,
                                     const char *const *keys) {
  if (!db || !table || !ncols || !cols || !nrows || (nkeys && !keys)) return NULL;
  ferry_sql_engine e = db->drv->engine;
  if (conflict == FERRY_SQL_CONFLICT_UPDATE && !nkeys && e != FERRY_SQL_MYSQL) return NULL;
  if (conflict == FERRY_SQL_CONFLICT_SKIP && !nkeys && e == FERRY_SQL_POSTGRESQL) {
    /* ON CONFLICT DO NOTHING without a target: any unique violation */
  }
  ferry_buf sb = {0};
  char *qt = db->drv->quote_ident(db, table);
  ferry_buf_addf(&sb, "INSERT %sINTO %s (",
                 e == FERRY_SQL_SQLITE && conflict == FERRY_SQL_CONFLICT_SKIP ? "OR IGNORE " : "", qt);
  free(qt);
  add_list(&sb, db, ncols, cols, NULL);
  ferry_buf_add(&sb, ") VALUES ");
  size_t n = 1;
  for (size_t r = 0; r < nrows; r++) {
    ferry_buf_add(&sb, r ? ", (" : "(");
    for (size_t c = 0; c < ncols; c++) ferry_buf_addf(&sb, "%s$%zu", c ? ", " : "", n++);
    ferry_buf_add(&sb, ")");
  }
  if (conflict == FERRY_SQL_CONFLICT_SKIP) {
    if (e == FERRY_SQL_POSTGRESQL) {
      ferry_buf_add(&sb, " ON CONFLICT ");
      if (nkeys) {
        ferry_buf_add(&sb, "(");
        add_list(&sb, db, nkeys, keys, NULL);
        ferry_buf_add(&sb, ") ");
      }
      ferry_buf_add(&sb, "DO NOTHING");
    } else if (e == FERRY_SQL_MYSQL) {
      char *q = db->drv->quote_ident(db, nkeys ? keys[0] : cols[0]);
      ferry_buf_addf(&sb, " ON DUPLICATE KEY UPDATE %s = %s", q, q);
      free(q);
    }
  } else if (conflict == FERRY_SQL_CONFLICT_UPDATE) {
    if (e == FERRY_SQL_MYSQL) {
      ferry_buf_add(&sb, " ON DUPLICATE KEY UPDATE ");
      add_updates(&sb, db, ncols, cols, nkeys, keys, "%s = VALUES(%s)");
    } else {
      ferry_buf_add(&sb, " ON CONFLICT (");
      add_list(&sb, db, nkeys, keys, NULL);
      ferry_buf_add(&sb, ") DO UPDATE SET ");
      add_updates(&sb, db, ncols, cols, nkeys, keys, e == FERRY_SQL_SQLITE ? "%s = excluded.%s" : "%s = EXCLUDED.%s");
    }
  }
  return ferry_buf_steal(&sb);
}

/* COPY text format of one value (PostgreSQL): \N for NULL, backslash escapes, bytea as \\x hex. */
static void copy_value(ferry_buf *sb, const ferry_sql_value *v) {
  static const char hex[] = "0123456789abcdef";
  if (!v->data) {
    ferry_buf_add(sb, "\\N");
    return;
  }
  if (v->binary) {
    ferry_buf_add(sb, "\\\\x");
    for (size_t i = 0; i < v->len; i++) {
      char h[2] = {hex[(unsigned char)v->data[i] >> 4], hex[(unsigned char)v->data[i] & 15]};
      ferry_buf_addn(sb, h, 2);
    }
    return;
  }
  for (size_t i = 0; i < v->len; i++) {
    char ch = v->data[i];
    switch (ch) {
      case '\\': ferry_buf_add(sb, "\\\\"); break;
      case '\t': ferry_buf_add(sb, "\\t"); break;
      case '\n': ferry_buf_add(sb, "\\n"); break;
      case '\r': ferry_buf_add(sb, "\\r"); break;
      default: ferry_buf_addn(sb, &ch, 1);
    }
  }
}

/* MySQL LOAD DATA text of one text value: \N for NULL; backslash, tab, newline, CR and NUL escaped. Runs of
 * plain bytes are copied at once. */
static void load_value(ferry_buf *sb, const ferry_sql_value *v) {
  if (!v->data) {
    ferry_buf_add(sb, "\\N");
    return;
  }
  size_t from = 0;
  for (size_t i = 0; i < v->len; i++) {
    const char *esc;
    switch (v->data[i]) {
      case '\\': esc = "\\\\"; break;
      case '\t': esc = "\\t"; break;
      case '\n': esc = "\\n"; break;
      case '\r': esc = "\\r"; break;
      case '\0': esc = "\\0"; break;
      default: continue;
    }
    ferry_buf_addn(sb, v->data + from, i - from);
    ferry_buf_add(sb, esc);
    from = i + 1;
  }
  ferry_buf_addn(sb, v->data + from, v->len - from);
}

/* The rows as tab-separated lines, each value written by `one` (COPY's or LOAD DATA's text escapes), as the
 * statement's in-memory data. */
static void tsv_rows(sqlstmt *st, const ferry_sql_value *values, size_t nrows, size_t ncols,
                     void (*one)(ferry_buf *, const ferry_sql_value *)) {
  ferry_buf data = {0};
  for (size_t r = 0; r < nrows; r++) {
    for (size_t c = 0; c < ncols; c++) {
      if (c) ferry_buf_add(&data, "\t");
      one(&data, &values[r * ncols + c]);
    }
    ferry_buf_add(&data, "\n");
  }
  st->copy_len = data.len;
  st->copy_data = ferry_buf_steal(&data);
}

static int any_binary(const ferry_sql_value *v, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (v[i].binary && v[i].data) return 1;
  return 0;
}

FERRY_API int ferry_sql_insert(ferry_sql *db, ferry_sql_txn *txn, const char *table, size_t ncols,
                               const char *const *cols, size_t nrows, const ferry_sql_value *values,
                               ferry_sql_conflict conflict, size_t nkeys, const char *const *keys,
                               ferry_sql_done_cb done, void *arg) {
  if (!db || !table || !ncols || !cols || (nrows && !values) || !done || (nkeys && !keys)) return FERRY_EINVAL;
  if (conflict == FERRY_SQL_CONFLICT_UPDATE && !nkeys && db->drv->engine != FERRY_SQL_MYSQL) return FERRY_EINVAL;
  int rc = check_txn(db, txn);
  if (rc) return rc;
  sqlop *op = op_new(OP_STMT, txn, done, arg);
  char *qt = db->drv->quote_ident(db, table);
  op->what = ferry_asprintf("INSERT INTO %s", qt);
  if (!txn && nrows) {
    op_append(op, stmt_new(db->drv->begin_rw, 0, NULL));
    op->on_fail = stmt_new(db->drv->rollback, 0, NULL);
  }
  if (db->drv->engine == FERRY_SQL_POSTGRESQL && conflict == FERRY_SQL_CONFLICT_ERROR && nrows) {
    ferry_buf sb = {0};
    ferry_buf_addf(&sb, "COPY %s (", qt);
    add_list(&sb, db, ncols, cols, NULL);
    ferry_buf_add(&sb, ") FROM STDIN");
    sqlstmt *st = stmt_new(sb.buf, 0, NULL);
    ferry_buf_free(&sb);
    tsv_rows(st, values, nrows, ncols, copy_value);
    op_append(op, st);
  } else if (db->drv->engine == FERRY_SQL_MYSQL && conflict == FERRY_SQL_CONFLICT_ERROR && nrows &&
             !db->no_local_infile && !any_binary(values, nrows * ncols)) {
    /* LOAD DATA LOCAL INFILE fed from memory (sql_mysql.c): tab-separated, backslash escapes, \N = NULL */
    ferry_buf sb = {0};
    ferry_buf_addf(&sb, "LOAD DATA LOCAL INFILE 'ferry-rows' INTO TABLE %s CHARACTER SET utf8mb4 FIELDS "
                        "TERMINATED BY '\\t' ESCAPED BY '\\\\' LINES TERMINATED BY '\\n' (", qt);
    add_list(&sb, db, ncols, cols, NULL);
    ferry_buf_add(&sb, ")");
    sqlstmt *st = stmt_new(sb.buf, 0, NULL);
    ferry_buf_free(&sb);
    tsv_rows(st, values, nrows, ncols, load_value);
    st->load_rows = nrows;
    op_append(op, st);
  } else {
    size_t r = 0;
    size_t max_rows = SQL_INSERT_CHUNK_ROWS;
    if (db->drv->engine == FERRY_SQL_SQLITE && max_rows * ncols > SQL_SQLITE_CHUNK_PARAMS)
      max_rows = SQL_SQLITE_CHUNK_PARAMS / ncols ? SQL_SQLITE_CHUNK_PARAMS / ncols : 1;
    if (db->drv->engine == FERRY_SQL_POSTGRESQL && max_rows * ncols > 65535) max_rows = 65535 / ncols ? 65535 / ncols : 1;
    while (r < nrows) {
      size_t n = 0, bytes = 0;
      while (r + n < nrows && n < max_rows && (n == 0 || bytes < SQL_INSERT_CHUNK_BYTES)) {
        for (size_t c = 0; c < ncols; c++) bytes += values[(r + n) * ncols + c].len * 2 + 8;
        n++;
      }
      char *sql = ferry_sql_upsert_sql(db, table, ncols, cols, n, conflict, nkeys, keys);
      op_append(op, stmt_new(sql, n * ncols, values + r * ncols));
      free(sql);
      r += n;
    }
  }
  if (!txn && nrows) op_append(op, stmt_new(db->drv->commit, 0, NULL));
  free(qt);
  if (!op->stmts) op_append(op, stmt_new("SELECT 1", 0, NULL));
  return enqueue(db, op);
}

/* ---- dialect ------------------------------------------------------------------------------------------ */

char *ferry__sql_quote_doubling(const char *s, char q) {
  ferry_buf sb = {0};
  ferry_buf_addn(&sb, &q, 1);
  for (const char *p = s; *p; p++) {
    ferry_buf_addn(&sb, p, 1);
    if (*p == q) ferry_buf_addn(&sb, p, 1);
  }
  ferry_buf_addn(&sb, &q, 1);
  return ferry_buf_steal(&sb);
}

FERRY_API char *ferry_sql_quote_ident(const ferry_sql *db, const char *ident) {
  if (!db || !ident) return NULL;
  return db->drv->quote_ident(db, ident);
}

FERRY_API char *ferry_sql_quote_literal(const ferry_sql *db, const char *value, size_t len) {
  if (!db) return NULL;
  if (!value) return ferry_strdup("NULL");
  return db->drv->quote_literal(db, value, len);
}

FERRY_API const char *ferry_sql_type_name(const ferry_sql *db, ferry_sql_type type) {
  if (!db || (int)type < 0 || type > FERRY_SQL_T_JSON) return NULL;
  return db->drv->type_names[type];
}
