/* ferry/sql.h driver for MySQL and MariaDB: MariaDB Connector/C (libmariadb) in non-blocking mode.
 *
 * Only the *_start / *_cont calls touch the network: mysql_real_connect, mysql_real_query, mysql_fetch_row,
 * mysql_free_result. Each returns the events it waits for (MYSQL_WAIT_READ / WRITE / EXCEPT / TIMEOUT); one
 * uv_poll_t on mysql_get_socket() waits for them (and a uv timer for mysql_get_timeout_value_ms()), and the
 * matching *_cont runs on readiness. Host names are resolved on the thread pool first (uv_getaddrinfo):
 * libmariadb would call a blocking getaddrinfo() inside mysql_real_connect_start. Results stream with
 * mysql_use_result (rows read from the socket as they are fetched); at most DRAIN_ROWS rows are taken in
 * one loop callback, then a zero timer goes on, so other handles (timers) keep running during a big result.
 *
 * Parameters ($1..$n) are inlined as literals: mysql_real_escape_string() on the connection that runs the
 * statement (its character set, utf8mb4, and its NO_BACKSLASH_ESCAPES state), binary ones as X'..'
 * (mysql_hex_string). Identifiers go in backquotes (doubled inside): MySQL's rule; the client library has no
 * function for it.
 *
 * Bulk inserts (ferry_sql_insert without conflict handling) are LOAD DATA LOCAL INFILE statements fed from
 * memory by a local-infile handler of this connection: the server's file name is ignored and no file is ever
 * opened; a request of the server outside such a statement is refused. LOAD DATA LOCAL turns what would be
 * errors (a duplicate key, a value the column cannot take) into warnings and goes on, so a load that
 * loaded fewer rows than it sent or left a warning fails, with the first warning (SHOW WARNINGS) as the
 * error: ER_DUP_ENTRY is FERRY_ECONFLICT as for an INSERT; the caller's transaction is then rolled back.
 *
 * Closing: if a call is suspended (a query running), the socket is shut down first and the call resumed until
 * it fails (no I/O can wait on a shut socket), so that mysql_close() has nothing left to wait for; it sends
 * COM_QUIT (a few bytes into an empty send buffer) and frees. The server rolls back an open transaction.
 */
#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <errmsg.h>
#include <mysql.h>
#include <mysqld_error.h>

#include "services/sql_driver.h"

#define DRAIN_ROWS 2000

enum { A_NONE = 0, A_CONNECT, A_QUERY, A_FETCH, A_FREE };
/* what the connection's timer does when it fires */
enum { T_NONE = 0, T_TIMEOUT, T_ADVANCE, T_REPORT, T_DRAIN };

typedef struct mydrv {
  char *host, *user, *password, *dbname, *socket;
  unsigned port;
  MYSQL *esc;                  /* mysql_init() only: for ferry_sql_quote_literal */
} mydrv;

typedef struct myconn {
  sqlconn base;
  ferry_sql *db;
  MYSQL *my;
  MYSQL_RES *res;
  int acall;                   /* the suspended (or just finished) call */
  int suspended;               /* acall returned wait flags: only its *_cont may run next */
  int tmode;                   /* T_*: what the timer is armed for */
  MYSQL *ret_conn;
  int ret_int;
  MYSQL_ROW ret_row;
  uv_poll_t *poll;             /* on mysql_get_socket(), or NULL */
  int poll_fd;
  uv_timer_t *timer;           /* MYSQL_WAIT_TIMEOUT, and the zero timer that goes on draining */
  uv_getaddrinfo_t *gai;
  int closing;
  size_t ncols;
  int *binary;                 /* per column */
  char *query;                 /* the statement text with parameters inlined */
  /* the outcome of a statement, kept while its result is freed */
  int st_status;
  ferry_error st_err;
  int st_broken;
  /* LOAD DATA LOCAL INFILE from memory (the running statement's copy_data) */
  const char *ld_data;
  size_t ld_len, ld_pos;
  uint64_t ld_rows, ld_affected;
  unsigned ld_warnings;
  int warn_phase;              /* reading SHOW WARNINGS after a load that did not load every row cleanly */
  unsigned warn_code;
  char *warn_msg;
} myconn;

/* ---- local infile from memory -------------------------------------------------------------------------- */
static int ld_init(void **ptr, const char *fname, void *ud) {
  (void)fname; /* the server's name is never opened */
  myconn *c = ud;
  *ptr = c;
  if (!c->ld_data) return 1;
  c->ld_pos = 0;
  return 0;
}

static int ld_read(void *ptr, char *buf, unsigned int n) {
  myconn *c = ptr;
  if (!c->ld_data) return -1;
  size_t k = c->ld_len - c->ld_pos;
  if (k > n) k = n;
  memcpy(buf, c->ld_data + c->ld_pos, k);
  c->ld_pos += k;
  return (int)k;
}

static void ld_end(void *ptr) { (void)ptr; }

static int ld_error(void *ptr, char *msg, unsigned int n) {
  (void)ptr;
  snprintf(msg, n, "ferry sends no local file (LOCAL INFILE is for its own bulk inserts only)");
  return CR_UNKNOWN_ERROR;
}

/* ---- handles ------------------------------------------------------------------------------------------ */

static void on_handle_closed(uv_handle_t *h) { free(h); }
/* The connection's timer closes last: the struct goes with it (a callback that closed the endpoint from
 * inside this driver's call chain still finds it, marked closing). */
static void on_timer_closed(uv_handle_t *h) {
  free(h->data);
  free(h);
}

static void on_poll(uv_poll_t *h, int status, int events);
static void on_timer(uv_timer_t *t);

static void poll_stop(myconn *c) {
  if (c->poll) uv_poll_stop(c->poll);
  if (c->timer) uv_timer_stop(c->timer);
}

/* Waits for what libmariadb asked for. */
static void wait_for(myconn *c, int st) {
  int fd = (int)mysql_get_socket(c->my);
  if (c->poll && c->poll_fd != fd) {
    uv_poll_stop(c->poll);
    uv_close((uv_handle_t *)c->poll, on_handle_closed);
    c->poll = NULL;
  }
  if (!c->poll && fd >= 0) {
    c->poll = ferry__xcalloc(1, sizeof *c->poll);
    uv_poll_init_socket(c->db->loop, c->poll, fd);
    c->poll->data = c;
    c->poll_fd = fd;
  }
  int ev = 0;
  if (st & MYSQL_WAIT_READ) ev |= UV_READABLE;
  if (st & MYSQL_WAIT_WRITE) ev |= UV_WRITABLE;
  if (st & MYSQL_WAIT_EXCEPT) ev |= UV_PRIORITIZED;
  if (c->poll) {
    if (ev) uv_poll_start(c->poll, ev, on_poll);
    else uv_poll_stop(c->poll);
  }
  c->suspended = 1;
  if (st & MYSQL_WAIT_TIMEOUT) {
    c->tmode = T_TIMEOUT;
    uv_timer_start(c->timer, on_timer, mysql_get_timeout_value_ms(c->my), 0);
  } else {
    c->tmode = T_NONE;
    uv_timer_stop(c->timer);
  }
}

/* Runs `mode` from the loop (a zero timer): what finished inside a call must not be reported from it. */
static void later(myconn *c, int mode) {
  c->tmode = mode;
  uv_timer_start(c->timer, on_timer, 0, 0);
}

static int call_cont(myconn *c, int ev) {
  switch (c->acall) {
    case A_CONNECT: return mysql_real_connect_cont(&c->ret_conn, c->my, ev);
    case A_QUERY: return mysql_real_query_cont(&c->ret_int, c->my, ev);
    case A_FETCH: return mysql_fetch_row_cont(&c->ret_row, c->res, ev);
    case A_FREE: return mysql_free_result_cont(c->res, ev);
    default: return 0;
  }
}

static void advance(myconn *c);

static void resume(myconn *c, int ev) {
  if (!c->suspended) return;
  int st = call_cont(c, ev);
  if (st) return wait_for(c, st);
  c->suspended = 0;
  poll_stop(c);
  advance(c);
}

static void on_poll(uv_poll_t *h, int status, int events) {
  myconn *c = h->data;
  if (c->closing || h != c->poll) return;
  int ev = 0;
  if (status < 0) ev = MYSQL_WAIT_READ | MYSQL_WAIT_WRITE; /* let libmariadb find out what is wrong */
  if (events & UV_READABLE) ev |= MYSQL_WAIT_READ;
  if (events & UV_WRITABLE) ev |= MYSQL_WAIT_WRITE;
  if (events & UV_PRIORITIZED) ev |= MYSQL_WAIT_EXCEPT;
  resume(c, ev);
}

static void fetch_more(myconn *c);
static void stmt_over(myconn *c);

static void on_timer(uv_timer_t *t) {
  myconn *c = t->data;
  if (c->closing) return;
  int mode = c->tmode;
  c->tmode = T_NONE;
  switch (mode) {
    case T_TIMEOUT: return resume(c, MYSQL_WAIT_TIMEOUT);
    case T_ADVANCE: return advance(c);
    case T_REPORT: return stmt_over(c);
    case T_DRAIN: return fetch_more(c);
    default: return;
  }
}

/* ---- errors ------------------------------------------------------------------------------------------- */

static int lost_errno(unsigned e) {
  return e == CR_SERVER_LOST || e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST_EXTENDED || e == ER_CONNECTION_KILLED ||
         e == ER_SERVER_SHUTDOWN || e == CR_CONNECTION_ERROR || e == CR_CONN_HOST_ERROR || (e >= 2000 && e < 2100);
}

static int errno_code(unsigned e) {
  switch (e) {
    case ER_DUP_ENTRY: return FERRY_ECONFLICT;
    case ER_ACCESS_DENIED_ERROR: case ER_DBACCESS_DENIED_ERROR: case ER_TABLEACCESS_DENIED_ERROR: return FERRY_EPERM;
    case ER_BAD_DB_ERROR: return FERRY_ECONFIG;
    case ER_LOCK_DEADLOCK: case ER_LOCK_WAIT_TIMEOUT: case ER_CON_COUNT_ERROR: return FERRY_ETRANSIENT;
    default: return lost_errno(e) ? FERRY_ETRANSIENT : FERRY_EINVAL;
  }
}

static void my_error(myconn *c, ferry_error *e, const char *what) {
  unsigned n = mysql_errno(c->my);
  const char *m = mysql_error(c->my);
  char *red = ferry_redact(m && *m ? m : "(no message)");
  ferry_error_set(e, errno_code(n), "%s (MySQL error %u)", what, n);
  ferry_error_set_detail(e, "MySQL error %u (%s): %s", n, mysql_sqlstate(c->my), red);
  free(red);
}

/* ---- statements ------------------------------------------------------------------------------------ */

static ferry_sql_type my_class(const MYSQL_FIELD *f, int *binary) {
  *binary = 0;
  switch (f->type) {
    case MYSQL_TYPE_TINY:
      if (f->length == 1) return FERRY_SQL_T_BOOL;
      /* fall through */
    case MYSQL_TYPE_SHORT: case MYSQL_TYPE_LONG: case MYSQL_TYPE_LONGLONG: case MYSQL_TYPE_INT24:
    case MYSQL_TYPE_YEAR:
      return FERRY_SQL_T_INT;
    case MYSQL_TYPE_FLOAT: case MYSQL_TYPE_DOUBLE: return FERRY_SQL_T_FLOAT;
    case MYSQL_TYPE_DECIMAL: case MYSQL_TYPE_NEWDECIMAL: return FERRY_SQL_T_DECIMAL;
    case MYSQL_TYPE_DATE: case MYSQL_TYPE_NEWDATE: return FERRY_SQL_T_DATE;
    case MYSQL_TYPE_TIME: return FERRY_SQL_T_TIME;
    case MYSQL_TYPE_DATETIME: return FERRY_SQL_T_TIMESTAMP;
    case MYSQL_TYPE_TIMESTAMP: return FERRY_SQL_T_TIMESTAMPTZ;
    case MYSQL_TYPE_JSON: return FERRY_SQL_T_JSON;
    case MYSQL_TYPE_BIT: *binary = 1; return FERRY_SQL_T_BINARY;
    case MYSQL_TYPE_TINY_BLOB: case MYSQL_TYPE_MEDIUM_BLOB: case MYSQL_TYPE_LONG_BLOB: case MYSQL_TYPE_BLOB:
    case MYSQL_TYPE_VAR_STRING: case MYSQL_TYPE_STRING: case MYSQL_TYPE_VARCHAR:
      if (f->charsetnr == 63) {
        *binary = 1;
        return FERRY_SQL_T_BINARY;
      }
      return FERRY_SQL_T_TEXT;
    default: return FERRY_SQL_T_OTHER;
  }
}

static const char *my_type_name(const MYSQL_FIELD *f, int binary) {
  switch (f->type) {
    case MYSQL_TYPE_TINY: return "TINYINT"; case MYSQL_TYPE_SHORT: return "SMALLINT";
    case MYSQL_TYPE_LONG: return "INT"; case MYSQL_TYPE_LONGLONG: return "BIGINT";
    case MYSQL_TYPE_INT24: return "MEDIUMINT"; case MYSQL_TYPE_YEAR: return "YEAR";
    case MYSQL_TYPE_FLOAT: return "FLOAT"; case MYSQL_TYPE_DOUBLE: return "DOUBLE";
    case MYSQL_TYPE_DECIMAL: case MYSQL_TYPE_NEWDECIMAL: return "DECIMAL";
    case MYSQL_TYPE_DATE: case MYSQL_TYPE_NEWDATE: return "DATE"; case MYSQL_TYPE_TIME: return "TIME";
    case MYSQL_TYPE_DATETIME: return "DATETIME"; case MYSQL_TYPE_TIMESTAMP: return "TIMESTAMP";
    case MYSQL_TYPE_JSON: return "JSON"; case MYSQL_TYPE_BIT: return "BIT";
    case MYSQL_TYPE_TINY_BLOB: case MYSQL_TYPE_MEDIUM_BLOB: case MYSQL_TYPE_LONG_BLOB: case MYSQL_TYPE_BLOB:
      return binary ? "BLOB" : "TEXT";
    case MYSQL_TYPE_VAR_STRING: case MYSQL_TYPE_VARCHAR: return binary ? "VARBINARY" : "VARCHAR";
    case MYSQL_TYPE_STRING: return binary ? "BINARY" : "CHAR";
    case MYSQL_TYPE_NULL: return "NULL";
    default: return "OTHER";
  }
}

/* The statement with $n replaced by literals; quotes, backquotes and comments are skipped. NULL with err
 * set when a $n has no parameter. */
static char *inline_params(myconn *c, const sqlstmt *st, ferry_error *err) {
  ferry_buf sb = {0};
  const char *s = st->sql;
  while (*s) {
    char ch = *s;
    if (ch == '\'' || ch == '"' || ch == '`') {
      const char *start = s++;
      while (*s && *s != ch) {
        if (*s == '\\' && ch != '`' && s[1]) s++;
        s++;
      }
      if (*s) s++;
      ferry_buf_addn(&sb, start, (size_t)(s - start));
      continue;
    }
    if ((ch == '-' && s[1] == '-') || ch == '#') {
      const char *start = s;
      while (*s && *s != '\n') s++;
      ferry_buf_addn(&sb, start, (size_t)(s - start));
      continue;
    }
    if (ch == '/' && s[1] == '*') {
      const char *end = strstr(s + 2, "*/");
      size_t n = end ? (size_t)(end + 2 - s) : strlen(s);
      ferry_buf_addn(&sb, s, n);
      s += n;
      continue;
    }
    if (ch == '$' && s[1] >= '1' && s[1] <= '9') {
      char *end;
      unsigned long i = strtoul(s + 1, &end, 10);
      if (i == 0 || i > st->nparams) {
        ferry_buf_free(&sb);
        ferry_error_set(err, FERRY_EINVAL, "parameter $%lu given but %zu parameters passed", i, st->nparams);
        return NULL;
      }
      const ferry_sql_value *v = &st->params[i - 1];
      if (!v->data) {
        ferry_buf_add(&sb, "NULL");
      } else if (v->binary) {
        char *hex = ferry__xmalloc(v->len * 2 + 1);
        unsigned long n = mysql_hex_string(hex, v->data, (unsigned long)v->len);
        if (v->len) {
          ferry_buf_add(&sb, "X'");
          ferry_buf_addn(&sb, hex, n);
          ferry_buf_add(&sb, "'");
        } else {
          ferry_buf_add(&sb, "_binary''");
        }
        free(hex);
      } else {
        char *buf = ferry__xmalloc(v->len * 2 + 1);
        unsigned long n = mysql_real_escape_string(c->my, buf, v->data, (unsigned long)v->len);
        ferry_buf_add(&sb, "'");
        ferry_buf_addn(&sb, buf, n);
        ferry_buf_add(&sb, "'");
        free(buf);
      }
      s = end;
      continue;
    }
    ferry_buf_addn(&sb, s, 1);
    s++;
  }
  return ferry_buf_steal(&sb);
}

static void stmt_over(myconn *c) {
  int status = c->st_status;
  int broken = c->st_broken;
  ferry_error e = c->st_err;
  c->st_err = (ferry_error)FERRY_ERROR_INIT;
  c->st_status = 0;
  c->st_broken = 0;
  c->acall = A_NONE;
  free(c->query);
  c->query = NULL;
  uint64_t affected = 0, id = 0;
  if (c->warn_phase) { /* after a load: its outcome, not SHOW WARNINGS' */
    c->warn_phase = 0;
    if (!status) {
      status = c->warn_code == ER_DUP_ENTRY ? FERRY_ECONFLICT : FERRY_EINVAL;
      ferry_error_set(&e, status, "LOAD DATA loaded %llu of %llu rows with %u warning(s) (MySQL warning %u)",
                      (unsigned long long)c->ld_affected, (unsigned long long)c->ld_rows, c->ld_warnings,
                      c->warn_code);
      char *red = ferry_redact(c->warn_msg ? c->warn_msg : "(no warning text)");
      ferry_error_set_detail(&e, "MySQL warning %u: %s", c->warn_code, red);
      free(red);
    }
    free(c->warn_msg);
    c->warn_msg = NULL;
    c->warn_code = 0;
    c->ncols = 0;
  }
  if (!status && !c->ncols) {
    my_ulonglong a = mysql_affected_rows(c->my);
    affected = a == (my_ulonglong)~0ULL ? 0 : a;
    id = mysql_insert_id(c->my);
  }
  ferry__sql_stmt_done(&c->base, status, affected, id, status ? &e : NULL, broken);
  ferry_error_clear(&e);
}

/* The result is read (or broken): free it (may read what is left), then report. */
static void free_result(myconn *c) {
  if (!c->res) return stmt_over(c);
  c->acall = A_FREE;
  int st = mysql_free_result_start(c->res);
  if (st) return wait_for(c, st);
  c->res = NULL;
  stmt_over(c);
}

static void got_row(myconn *c) {
  unsigned long *len = mysql_fetch_lengths(c->res);
  if (c->warn_phase) { /* Level, Code, Message of SHOW WARNINGS: keep the first */
    if (!c->warn_msg && c->ncols >= 3) {
      c->warn_code = c->ret_row[1] ? (unsigned)strtoul(c->ret_row[1], NULL, 10) : 0;
      c->warn_msg = ferry_strndup(c->ret_row[2] ? c->ret_row[2] : "", c->ret_row[2] ? len[2] : 0);
    }
    return;
  }
  for (size_t i = 0; i < c->ncols; i++) {
    if (!c->ret_row[i]) ferry__sql_cell(&c->base, NULL, 0, 0);
    else ferry__sql_cell(&c->base, c->ret_row[i], len[i], c->binary[i]);
  }
  ferry__sql_row_end(&c->base);
}

static void fetch_end(myconn *c) {
  if (mysql_errno(c->my)) {
    c->st_status = errno_code(mysql_errno(c->my));
    my_error(c, &c->st_err, lost_errno(mysql_errno(c->my)) ? "connection lost while reading the result"
                                                           : "reading the result failed");
    c->st_status = c->st_err.code;
    c->st_broken = lost_errno(mysql_errno(c->my));
    if (c->st_broken) { /* nothing more to read: do not wait on a dead socket */
      mysql_free_result(c->res);
      c->res = NULL;
    }
  }
  free_result(c);
}

/* Fetches rows until one call has to wait, the result ends, or DRAIN_ROWS rows were taken (then a zero
 * timer goes on: the loop runs its other handles in between). */
static void fetch_more(myconn *c) {
  for (int n = 0; n < DRAIN_ROWS; n++) {
    c->acall = A_FETCH;
    int st = mysql_fetch_row_start(&c->ret_row, c->res);
    if (st) return wait_for(c, st);
    if (!c->ret_row) return fetch_end(c);
    got_row(c);
    if (c->closing) return;
  }
  later(c, T_DRAIN);
}

static void query_done(myconn *c) {
  if (c->ld_data && !c->ret_int) { /* a load: every row, no warning, or SHOW WARNINGS for the error */
    c->ld_data = NULL;
    my_ulonglong a = mysql_affected_rows(c->my);
    unsigned w = mysql_warning_count(c->my);
    if (!w && a == (my_ulonglong)c->ld_rows) return stmt_over(c);
    c->ld_affected = a == (my_ulonglong)~0ULL ? 0 : a;
    c->ld_warnings = w;
    c->warn_phase = 1;
    c->acall = A_QUERY;
    static const char sw[] = "SHOW WARNINGS LIMIT 1";
    int rst = mysql_real_query_start(&c->ret_int, c->my, sw, (unsigned long)strlen(sw));
    if (rst) return wait_for(c, rst);
    return query_done(c);
  }
  if (c->ld_data && c->ret_int) {
    unsigned n = mysql_errno(c->my);
    /* local files disabled on the server (MySQL 8's default; errors 1148, 3948; MariaDB 4166) or in the
     * client (2068): this endpoint's bulk inserts go by multi-row INSERT from now on; the batch fails as
     * transient, so that it is tried again that way */
    if (n == ER_NOT_ALLOWED_COMMAND || n == 3948 || n == 4166 || n == 2068) {
      c->db->no_local_infile = 1;
      c->ld_data = NULL;
      c->warn_phase = 0;
      my_error(c, &c->st_err, "LOAD DATA LOCAL INFILE is not allowed: bulk inserts fall back to multi-row INSERT");
      c->st_err.code = FERRY_ETRANSIENT;
      c->st_status = FERRY_ETRANSIENT;
      return stmt_over(c);
    }
  }
  c->ld_data = NULL;
  if (c->ret_int) {
    c->warn_phase = 0;
    unsigned n = mysql_errno(c->my);
    my_error(c, &c->st_err, lost_errno(n) ? "connection lost" : "the statement failed");
    c->st_status = c->st_err.code;
    c->st_broken = lost_errno(n);
    return stmt_over(c);
  }
  c->res = mysql_use_result(c->my);
  if (!c->res) {
    if (mysql_field_count(c->my) == 0) return stmt_over(c); /* no result set: INSERT, UPDATE, ... */
    my_error(c, &c->st_err, "reading the result failed");
    c->st_status = c->st_err.code;
    c->st_broken = lost_errno(mysql_errno(c->my));
    return stmt_over(c);
  }
  unsigned nf = mysql_num_fields(c->res);
  MYSQL_FIELD *f = mysql_fetch_fields(c->res);
  ferry_sql_column *cols = ferry__xcalloc(nf ? nf : 1, sizeof *cols);
  free(c->binary);
  c->binary = ferry__xcalloc(nf ? nf : 1, sizeof(int));
  for (unsigned i = 0; i < nf; i++) {
    cols[i].name = f[i].name;
    cols[i].type = my_class(&f[i], &c->binary[i]);
    cols[i].type_name = my_type_name(&f[i], c->binary[i]);
  }
  c->ncols = nf;
  if (!c->warn_phase) ferry__sql_columns(&c->base, nf, cols);
  free(cols);
  fetch_more(c);
}

static void advance(myconn *c) {
  switch (c->acall) {
    case A_CONNECT:
      c->acall = A_NONE;
      if (!c->ret_conn) {
        ferry_error e = FERRY_ERROR_INIT;
        unsigned n = mysql_errno(c->my);
        const char *hint = n == ER_ACCESS_DENIED_ERROR ? ": access refused; check user and password"
                           : n == ER_BAD_DB_ERROR      ? ": the database does not exist"
                                                       : "";
        char *what = ferry_asprintf("cannot connect%s", hint);
        my_error(c, &e, what);
        free(what);
        ferry__sql_conn_ready(&c->base, e.code, &e);
        ferry_error_clear(&e);
        return;
      }
      ferry__sql_conn_ready(&c->base, 0, NULL);
      return;
    case A_QUERY: return query_done(c);
    case A_FETCH:
      if (!c->ret_row) return fetch_end(c);
      got_row(c);
      if (c->closing) return;
      return fetch_more(c);
    case A_FREE:
      c->res = NULL;
      return stmt_over(c);
    default: return;
  }
}

static void my_exec(sqlconn *base, sqlstmt *st) {
  myconn *c = (myconn *)base;
  c->ncols = 0;
  ferry_error e = FERRY_ERROR_INIT;
  free(c->query);
  c->query = inline_params(c, st, &e);
  if (!c->query) {
    c->st_status = e.code;
    c->st_err = e;
    return later(c, T_REPORT); /* report from the loop, not from inside exec */
  }
  c->acall = A_QUERY;
  c->ld_data = st->copy_data;
  c->ld_len = st->copy_len;
  c->ld_rows = st->load_rows;
  int rst = mysql_real_query_start(&c->ret_int, c->my, c->query, (unsigned long)strlen(c->query));
  if (rst) return wait_for(c, rst);
  later(c, T_ADVANCE); /* done at once: report from the loop */
}

/* ---- connecting ----------------------------------------------------------------------------------------- */

static void connect_to(myconn *c, const char *host) {
  mydrv *d = c->db->drvdata;
  c->acall = A_CONNECT;
  int st = mysql_real_connect_start(&c->ret_conn, c->my, host, d->user, d->password, d->dbname, d->port, d->socket,
                                    CLIENT_FOUND_ROWS);
  if (st) return wait_for(c, st);
  later(c, T_ADVANCE); /* finished at once (a socket): report from the loop */
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai) {
  myconn *c = req->data;
  free(req);
  if (c->closing) { /* conn_close left the rest to us */
    uv_freeaddrinfo(ai);
    uv_close((uv_handle_t *)c->timer, on_timer_closed);
    return;
  }
  c->gai = NULL;
  mydrv *d = c->db->drvdata;
  char buf[INET6_ADDRSTRLEN] = "";
  for (struct addrinfo *a = ai; a && !*buf; a = a->ai_next) {
    if (a->ai_family == AF_INET) uv_ip4_name((struct sockaddr_in *)a->ai_addr, buf, sizeof buf);
    else if (a->ai_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)a->ai_addr, buf, sizeof buf);
  }
  uv_freeaddrinfo(ai);
  if (status < 0 || !*buf) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_ETRANSIENT, "cannot connect: could not resolve host name \"%s\"", d->host);
    ferry_error_set_detail(&e, "%s", status < 0 ? uv_strerror(status) : "no address");
    ferry__sql_conn_ready(&c->base, FERRY_ETRANSIENT, &e);
    ferry_error_clear(&e);
    return;
  }
  connect_to(c, buf);
}

static int is_literal_address(const char *h) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

static sqlconn *my_conn_open(ferry_sql *db) {
  mydrv *d = db->drvdata;
  myconn *c = ferry__xcalloc(1, sizeof *c);
  c->db = db;
  c->my = mysql_init(NULL);
  c->timer = ferry__xcalloc(1, sizeof *c->timer);
  uv_timer_init(db->loop, c->timer);
  c->timer->data = c;
  mysql_options(c->my, MYSQL_OPT_NONBLOCK, 0);
  mysql_options(c->my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
  unsigned on = 1;
  mysql_options(c->my, MYSQL_OPT_LOCAL_INFILE, &on);
  mysql_set_local_infile_handler(c->my, ld_init, ld_read, ld_end, ld_error, c);
  unsigned ct = (db->connect_timeout_ms + 999) / 1000;
  mysql_options(c->my, MYSQL_OPT_CONNECT_TIMEOUT, &ct);
  unsigned proto = d->socket ? MYSQL_PROTOCOL_SOCKET : MYSQL_PROTOCOL_TCP;
  if (!d->socket && !strcmp(d->host, "localhost")) proto = MYSQL_PROTOCOL_DEFAULT;
  mysql_options(c->my, MYSQL_OPT_PROTOCOL, &proto);
  if (d->socket || !strcmp(d->host, "localhost") || is_literal_address(d->host)) {
    c->base.ready_now = 0;
    /* start from the loop: conn_open must not report */
    c->acall = A_NONE;
    connect_to(c, d->socket ? "localhost" : d->host);
    return &c->base;
  }
  c->gai = ferry__xcalloc(1, sizeof *c->gai);
  c->gai->data = c;
  struct addrinfo hints = {0};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  if (uv_getaddrinfo(db->loop, c->gai, on_resolved, d->host, NULL, &hints) < 0) {
    free(c->gai);
    c->gai = NULL;
    connect_to(c, d->host);
  }
  return &c->base;
}

static void my_conn_close(sqlconn *base) {
  myconn *c = (myconn *)base;
  c->closing = 1;
  if (c->poll) {
    uv_poll_stop(c->poll);
    uv_close((uv_handle_t *)c->poll, on_handle_closed);
    c->poll = NULL;
  }
  if ((c->suspended || c->res) && mysql_get_socket(c->my) >= 0) {
    /* a call is suspended or a result is open: shut the socket, so that nothing below can wait on it */
    shutdown((int)mysql_get_socket(c->my), SHUT_RDWR);
    int st = c->suspended;
    for (int i = 0; i < 10000 && st; i++) st = call_cont(c, MYSQL_WAIT_READ | MYSQL_WAIT_WRITE | MYSQL_WAIT_TIMEOUT);
    c->suspended = 0;
    if (c->acall == A_FREE) c->res = NULL; /* mysql_free_result_cont finished freeing it */
  }
  if (c->res) mysql_free_result(c->res);
  c->res = NULL;
  mysql_close(c->my);
  c->my = NULL;
  free(c->binary);
  free(c->query);
  free(c->warn_msg);
  ferry_error_clear(&c->st_err);
  if (c->gai) { /* on_resolved frees the rest */
    uv_cancel((uv_req_t *)c->gai);
    return;
  }
  uv_timer_stop(c->timer);
  uv_close((uv_handle_t *)c->timer, on_timer_closed);
}

/* ---- URL ------------------------------------------------------------------------------------------------ */

static char *part(const char *s, size_t n) {
  char *p = ferry_strndup(s, n);
  ferry__sql_url_decode(p);
  return p;
}

static int my_setup(ferry_sql *db, const char *url, ferry_error *err) {
  const char *p = strstr(url, "://");
  mydrv *d = ferry__xcalloc(1, sizeof *d);
  db->drvdata = d;
  if (!p) {
    ferry_error_set(err, FERRY_ECONFIG, "MySQL URL: expected mysql://user:password@host:port/database");
    return FERRY_ECONFIG;
  }
  p += 3;
  const char *end = p + strcspn(p, "/?");
  const char *at = NULL;
  for (const char *q = p; q < end; q++)
    if (*q == '@') at = q;
  const char *hp = p;
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    d->user = part(p, (size_t)((colon ? colon : at) - p));
    if (colon) d->password = part(colon + 1, (size_t)(at - colon - 1));
    hp = at + 1;
  }
  if (d->password && *d->password) ferry__secret_add(d->password);
  const char *portp = NULL, *hend = end;
  if (*hp == '[') {
    const char *rb = memchr(hp, ']', (size_t)(end - hp));
    if (!rb) {
      ferry_error_set(err, FERRY_ECONFIG, "MySQL URL: unclosed [ in the host");
      return FERRY_ECONFIG;
    }
    d->host = part(hp + 1, (size_t)(rb - hp - 1));
    if (rb + 1 < end && rb[1] == ':') portp = rb + 2;
  } else {
    const char *colon = memchr(hp, ':', (size_t)(end - hp));
    if (colon) {
      portp = colon + 1;
      hend = colon;
    }
    d->host = part(hp, (size_t)(hend - hp));
  }
  if (!*d->host) {
    free(d->host);
    d->host = ferry_strdup("localhost");
  }
  d->port = 3306;
  if (portp) {
    char *pe;
    unsigned long v = strtoul(portp, &pe, 10);
    if (pe != end || v == 0 || v > 65535) {
      ferry_error_set(err, FERRY_ECONFIG, "MySQL URL: bad port \"%.*s\" (expected 1..65535)", (int)(end - portp), portp);
      return FERRY_ECONFIG;
    }
    d->port = (unsigned)v;
  }
  if (*end == '/') {
    const char *ds = end + 1;
    size_t n = strcspn(ds, "?");
    if (n) d->dbname = part(ds, n);
    end = ds + n;
  }
  if (*end == '?') {
    const char *q = end + 1;
    while (*q) {
      size_t n = strcspn(q, "&");
      if (!strncmp(q, "socket=", 7)) d->socket = part(q + 7, n - 7);
      else {
        ferry_error_set(err, FERRY_ECONFIG, "MySQL URL: unknown option \"%.*s\" (known: socket)",
                        (int)strcspn(q, "=&"), q);
        return FERRY_ECONFIG;
      }
      q += n;
      if (*q == '&') q++;
    }
  }
  db->endpoint = ferry_asprintf("mysql://%s%s%s%s%s:%u/%s", d->user ? d->user : "", d->user ? "@" : "",
                                  strchr(d->host, ':') ? "[" : "", d->host, strchr(d->host, ':') ? "]" : "", d->port,
                                  d->dbname ? d->dbname : "");
  d->esc = mysql_init(NULL);
  return 0;
}

static void my_teardown(ferry_sql *db) {
  mydrv *d = db->drvdata;
  if (!d) return;
  if (d->esc) mysql_close(d->esc);
  free(d->host);
  free(d->user);
  free(d->password);
  free(d->dbname);
  free(d->socket);
  free(d);
  db->drvdata = NULL;
}

static char *my_quote_ident(const ferry_sql *db, const char *ident) { return ferry__sql_quote_doubling(ident, '`'); }

static char *my_quote_literal(const ferry_sql *db, const char *v, size_t len) {
  mydrv *d = db->drvdata;
  char *buf = ferry__xmalloc(len * 2 + 3);
  buf[0] = '\'';
  unsigned long n = mysql_real_escape_string(d->esc, buf + 1, v, (unsigned long)len);
  buf[n + 1] = '\'';
  buf[n + 2] = 0;
  return buf;
}

#define MY_TABLE_FILTER(col) "($1 IS NULL OR BINARY " col " = BINARY $1)"

const sql_driver ferry__sql_mysql_driver = {
    .engine = FERRY_SQL_MYSQL,
    .label = "MySQL",
    .setup = my_setup,
    .teardown = my_teardown,
    .conn_open = my_conn_open,
    .conn_close = my_conn_close,
    .exec = my_exec,
    .quote_ident = my_quote_ident,
    .quote_literal = my_quote_literal,
    .type_names = {"longtext", "longtext", "bigint", "double", "decimal(65,30)", "tinyint(1)", "longblob", "date",
                   "time(6)", "datetime(6)", "timestamp(6)", "json"},
    .begin_rw = "START TRANSACTION",
    .begin_snapshot = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; "
                      "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
    .commit = "COMMIT",
    .rollback = "ROLLBACK",
    .catalog = {
        NULL,
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema = DATABASE() "
        "AND table_type = 'BASE TABLE' AND " MY_TABLE_FILTER("table_name") " ORDER BY 1, 2",
        "SELECT table_name, column_name, CAST(ordinal_position AS CHAR), column_type, "
        "IF(is_nullable = 'YES', '1', '0'), CASE "
        "WHEN data_type IN ('char', 'varchar', 'tinytext', 'text', 'mediumtext', 'longtext', 'enum', 'set') THEN '1' "
        "WHEN column_type LIKE 'tinyint(1)%' THEN '5' "
        "WHEN data_type IN ('tinyint', 'smallint', 'mediumint', 'int', 'bigint', 'year') THEN '2' "
        "WHEN data_type IN ('float', 'double', 'real') THEN '3' WHEN data_type = 'decimal' THEN '4' "
        "WHEN data_type IN ('binary', 'varbinary', 'tinyblob', 'blob', 'mediumblob', 'longblob', 'bit') THEN '6' "
        "WHEN data_type = 'date' THEN '7' WHEN data_type = 'time' THEN '8' WHEN data_type = 'datetime' THEN '9' "
        "WHEN data_type = 'timestamp' THEN '10' WHEN data_type = 'json' THEN '11' ELSE '0' END "
        "FROM information_schema.columns WHERE table_schema = DATABASE() AND " MY_TABLE_FILTER("table_name")
        " ORDER BY table_name, ordinal_position",
        "SELECT table_name, column_name, CAST(ordinal_position AS CHAR) FROM information_schema.key_column_usage "
        "WHERE table_schema = DATABASE() AND constraint_name = 'PRIMARY' AND " MY_TABLE_FILTER("table_name")
        " ORDER BY table_name, ordinal_position",
        "SELECT table_name, constraint_name, column_name, CAST(ordinal_position AS CHAR), referenced_table_name, "
        "referenced_column_name FROM information_schema.key_column_usage WHERE table_schema = DATABASE() "
        "AND referenced_table_name IS NOT NULL AND " MY_TABLE_FILTER("table_name")
        " ORDER BY table_name, constraint_name, ordinal_position",
    },
};
