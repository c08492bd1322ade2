/* SDK service ferry/pg.h: one PostgreSQL connection on the instance's libuv loop.
 *
 * libpq in non-blocking mode, one uv_poll_t on PQsocket():
 *   connecting  (optional) uv_getaddrinfo for the host name, then PQconnectStartParams + PQconnectPoll on
 *               readiness, a uv_timer for the connect timeout; the poll handle follows PQsocket(), which
 *               may change while libpq tries addresses.
 *   idle        no poll active (an idle connection does not keep the loop alive).
 *   busy        one operation at a time from a FIFO queue: PQsendQuery(Params), PQflush on writability,
 *               PQconsumeInput / PQisBusy / PQgetResult on readability; COPY OUT with PQgetCopyData(async),
 *               COPY IN with PQputCopyData / PQputCopyEnd and flush handling.
 * A lost connection fails the running operation with FERRY_ETRANSIENT; the next queued (or later) operation
 * connects again. Queued operations start from a zero timer, so no callback runs inside the call that queued.
 *
 * Lifetime: ferry_pg_free() cancels everything (callbacks with FERRY_ECANCELED), closes the connection and
 * closes its uv handles; the memory goes with the last close callback (the loop must run once more).
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <libpq-fe.h>

#include "load/load.h"
#include "ferry/log.h"
#include "ferry/pg.h"
#include "services/sql_driver.h"

#define PG_DEFAULT_CONNECT_TIMEOUT_S 10
#define PG_COPY_CHUNK (64 * 1024)

enum { S_DOWN, S_RESOLVING, S_CONNECTING, S_IDLE, S_BUSY };
enum { OP_QUERY = 1, OP_COPY_OUT, OP_COPY_IN };
enum { PH_RESULTS = 0, PH_COPY_OUT, PH_COPY_IN };

typedef struct pgop {
  struct pgop *next;
  int kind;
  char *sql;
  char *what;                  /* first words of the SQL, for messages */
  int nparams;
  char **params;               /* nparams entries, NULL = SQL NULL */
  int *lengths, *formats;      /* ferry__pg_query_rows: per parameter (format 1 = binary), or NULL */
  ferry__pg_row_cb row;        /* ferry__pg_query_rows: single-row mode, each row to row() */
  char *data;                  /* COPY IN data */
  size_t len, sent;
  int end_sent;
  int phase;
  int canceled;                /* chunk callback asked to stop: drain, then ECANCELED */
  PGresult *res;               /* last good result */
  PGresult *err_res;           /* first error result */
  ferry_pg_cb done;
  ferry_pg_chunk_cb chunk;
  void *arg;
  double sent_at;              /* ferry__now() when sent (0: not sent): the instance's latency */
} pgop;

typedef struct pgpoll {
  uv_poll_t h;
  ferry_pg *pg;
  int fd;
} pgpoll;

struct ferry_pg {
  ferry_instance *ins;
  uv_loop_t *loop;
  char **keys, **vals;         /* parsed conninfo (non-empty values), NULL-terminated keys */
  char *host;                  /* host option or NULL */
  int has_hostaddr;
  char *desc;                  /* "host:port/dbname" for messages */
  unsigned connect_timeout_s;
  PGconn *conn;
  int state;
  pgpoll *poll;
  int poll_events;
  int poll_errors;
  int flushing;                /* PQflush returned 1: wait for writability */
  int doomed;                  /* the server announced it closes the connection (FATAL notice) */
  int in_txn;                  /* the last operation left a transaction open */
  int keep_session;            /* ferry__pg_keep_session(): a dead idle connection is not replaced unasked */
  uv_timer_t kick;             /* starts queued work outside the queueing call */
  uv_timer_t ctimer;           /* connect timeout */
  uv_getaddrinfo_t *gai;       /* resolution in progress */
  pgop *head, *tail;           /* queue (head is the running operation when S_BUSY) */
  size_t nops;
  int freeing;
  unsigned open_handles;
};

/* ---- small helpers ------------------------------------------------------------------------------------- */

static void op_free(pgop *op) {
  if (!op) return;
  free(op->sql);
  free(op->what);
  for (int i = 0; i < op->nparams; i++) free(op->params[i]);
  free(op->params);
  free(op->lengths);
  free(op->formats);
  free(op->data);
  if (op->res) PQclear(op->res);
  if (op->err_res) PQclear(op->err_res);
  free(op);
}

static pgop *q_pop(ferry_pg *pg) {
  pgop *op = pg->head;
  if (op) {
    pg->head = op->next;
    if (!pg->head) pg->tail = NULL;
    op->next = NULL;
    pg->nops--;
  }
  return op;
}

static void handle_closed(ferry_pg *pg) {
  if (--pg->open_handles == 0 && pg->freeing) {
    ferry__strv_free(pg->keys);
    ferry__strv_free(pg->vals);
    free(pg->host);
    free(pg->desc);
    free(pg);
  }
}

static void on_timer_closed(uv_handle_t *t) { handle_closed(t->data); }

static void on_poll_closed(uv_handle_t *h) {
  pgpoll *p = h->data;
  ferry_pg *pg = p->pg;
  free(p);
  handle_closed(pg);
}

/* libpq's text on one line (runs of white space as one space, none at the ends), redacted; malloc'd. */
static char *pq_text(const char *s) {
  ferry_buf sb = {0};
  int space = 0;
  for (const char *p = s && *s ? s : "(no message)"; *p; p++) {
    if (isspace((unsigned char)*p)) {
      space = 1;
      continue;
    }
    if (space && sb.len) ferry_buf_add(&sb, " ");
    space = 0;
    ferry_buf_addn(&sb, p, 1);
  }
  char *t = ferry_buf_steal(&sb);
  char *r = ferry_redact(t);
  free(t);
  return r;
}

/* The first words of an SQL statement, never a literal or a parameter: up to 3 words / 48 characters,
 * stopping before a word holding a quote, a '$' or a digit first. */
char *ferry__sql_what(const char *sql) {
  ferry_buf sb = {0};
  const char *p = sql;
  int words = 0;
  while (*p && words < 3) {
    while (*p && isspace((unsigned char)*p)) p++;
    if (!*p) break;
    const char *w = p;
    while (*p && !isspace((unsigned char)*p) && *p != '(' && *p != ';') p++;
    size_t n = (size_t)(p - w);
    if (!n) break;
    if (memchr(w, '\'', n) || memchr(w, '$', n) || memchr(w, '"', n) || isdigit((unsigned char)*w)) break;
    if (sb.len + n + 1 > 48) break;
    if (sb.len) ferry_buf_add(&sb, " ");
    ferry_buf_addn(&sb, w, n);
    words++;
    if (*p == '(' || *p == ';') break;
  }
  if (!sb.len) ferry_buf_add(&sb, "SQL");
  for (char *c = sb.buf; *c; c++) *c = (char)((unsigned char)*c < 0x20 ? ' ' : *c);
  return ferry_buf_steal(&sb);
}

static const char *sqlstate_name(const char *st) {
  static const struct { const char *code, *name; } names[] = {
      {"23505", "unique violation"}, {"23503", "foreign key violation"}, {"23502", "not-null violation"},
      {"23514", "check violation"}, {"42601", "syntax error"}, {"42P01", "undefined table"},
      {"42703", "undefined column"}, {"42883", "undefined function"}, {"42501", "insufficient privilege"},
      {"22P02", "invalid text representation"}, {"22001", "value too long"}, {"40001", "serialization failure"},
      {"40P01", "deadlock detected"}, {"57014", "query canceled"}, {"57P01", "server shutting down"},
      {"53300", "too many connections"}, {"25P02", "transaction aborted"}, {NULL, NULL}};
  for (int i = 0; names[i].code; i++)
    if (!strcmp(st, names[i].code)) return names[i].name;
  if (!strncmp(st, "23", 2)) return "integrity constraint violation";
  if (!strncmp(st, "42", 2)) return "syntax error or access rule violation";
  if (!strncmp(st, "22", 2)) return "data exception";
  if (!strncmp(st, "08", 2)) return "connection exception";
  if (!strncmp(st, "28", 2)) return "invalid authorization";
  return "SQL error";
}

/* SQLSTATE -> ferry code. The retryable states are transient (the core retries the item). */
static int sqlstate_code(const char *st) {
  if (!strcmp(st, "23505")) return FERRY_ECONFLICT;
  if (!strncmp(st, "08", 2) || !strcmp(st, "40001") || !strcmp(st, "40P01") || !strncmp(st, "57P0", 4) ||
      !strncmp(st, "53", 2))
    return FERRY_ETRANSIENT;
  if (!strncmp(st, "28", 2) || !strcmp(st, "42501")) return FERRY_EPERM;
  return FERRY_EINVAL;
}

/* ---- poll handle management ----------------------------------------------------------------------------- */

static void on_poll(uv_poll_t *h, int status, int events);

static void poll_close(ferry_pg *pg) {
  if (!pg->poll) return;
  uv_poll_stop(&pg->poll->h);
  uv_close((uv_handle_t *)&pg->poll->h, on_poll_closed);
  pg->poll = NULL;
  pg->poll_events = 0;
}

/* Watches PQsocket(conn) for `events` (0 = stop). Follows a socket change. Returns 0 or -1. */
static int watch(ferry_pg *pg, int events) {
  int fd = pg->conn ? PQsocket(pg->conn) : -1;
  if (pg->poll && pg->poll->fd != fd) poll_close(pg);
  if (fd < 0) return events ? -1 : 0;
  if (!pg->poll) {
    if (!events) return 0;
    pgpoll *p = ferry__xcalloc(1, sizeof *p);
    p->pg = pg;
    p->fd = fd;
    int rc = uv_poll_init_socket(pg->loop, &p->h, fd);
    if (rc < 0) {
      ferry_log_error(pg->ins, "PostgreSQL: cannot watch socket %d: %s", fd, uv_strerror(rc));
      free(p);
      return -1;
    }
    p->h.data = p;
    pg->open_handles++;
    pg->poll = p;
  }
  pg->poll_events = events;
  if (events) uv_poll_start(&pg->poll->h, events, on_poll);
  else uv_poll_stop(&pg->poll->h);
  return 0;
}

static void drop_conn(ferry_pg *pg) {
  poll_close(pg); /* before PQfinish closes the socket */
  if (pg->conn) PQfinish(pg->conn);
  pg->conn = NULL;
  pg->flushing = 0;
  pg->doomed = 0;
  pg->in_txn = 0;
  pg->poll_errors = 0;
  uv_timer_stop(&pg->ctimer);
  pg->state = S_DOWN;
}

/* ---- completing operations ------------------------------------------------------------------------------- */

static void deliver(ferry_pg *pg, pgop *op, int status, PGresult *res, const ferry_error *err) {
  if (op->sent_at > 0 && pg->ins)
    ferry__latency_add(&pg->ins->latency[FERRY__LAT_PG], (ferry__now() - op->sent_at) * 1000.0);
  op->done(op->arg, status, res, err);
  op_free(op);
}

static void fail_op(ferry_pg *pg, pgop *op, int code, const char *msg, const char *detail) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_error_set(&err, code, "%s: %s", op->what, msg);
  if (detail) ferry_error_set_detail(&err, "%s", detail);
  deliver(pg, op, code, NULL, &err);
  ferry_error_clear(&err);
}

/* Takes every queued operation out of the queue (callbacks may queue new ones meanwhile). */
static pgop *detach_all(ferry_pg *pg) {
  pgop *list = pg->head;
  pg->head = pg->tail = NULL;
  pg->nops = 0;
  return list;
}

/* Fails a detached list; if a callback frees the connection, the rest are canceled instead. */
static void fail_list(ferry_pg *pg, pgop *list, int code, const char *msg, const char *detail) {
  while (list) {
    pgop *next = list->next;
    list->next = NULL;
    if (pg->freeing) fail_op(pg, list, FERRY_ECANCELED, "canceled (PostgreSQL connection closed)", NULL);
    else fail_op(pg, list, code, msg, detail);
    list = next;
  }
}

static void kick(ferry_pg *pg);

/* What a failed connection attempt means. libpq gives no SQLSTATE for it, only (English, unless the
 * server's lc_messages says otherwise) text: refusals that retrying cannot cure are recognised by it;
 * everything else (refused, unreachable, timeout, server starting or full) is transient. */
static int connect_error_code(PGconn *conn, const char *why, const char **hint) {
  if ((conn && PQconnectionNeedsPassword(conn)) || strstr(why, "authentication failed") ||
      strstr(why, "no password supplied") || (strstr(why, "role \"") && strstr(why, "does not exist")) ||
      strstr(why, "no pg_hba.conf entry") || strstr(why, "permission denied for database")) {
    *hint = "access refused; check user, password and pg_hba.conf";
    return FERRY_EPERM;
  }
  if (strstr(why, "database \"") && strstr(why, "does not exist")) {
    *hint = "the database does not exist; check dbname";
    return FERRY_ECONFIG;
  }
  *hint = NULL;
  return FERRY_ETRANSIENT;
}

static void connect_failed(ferry_pg *pg, const char *why) {
  char *detail = pq_text(why);
  const char *hint;
  int code = connect_error_code(pg->conn, detail, &hint);
  char *msg = ferry_asprintf("cannot connect to PostgreSQL %s%s%s", pg->desc, hint ? ": " : "", hint ? hint : "");
  ferry_log_debug(pg->ins, "PostgreSQL %s: connection failed: %s", pg->desc, detail);
  drop_conn(pg);
  fail_list(pg, detach_all(pg), code, msg, detail);
  free(msg);
  free(detail);
}

/* The connection broke while the head operation was running. It fails, and so does every operation queued
 * before the loss: they belong to the lost session (a transaction, SET, temporary tables) and must not run
 * on a new one unasked. Operations queued from now on connect again. */
static void lost(ferry_pg *pg) {
  char *detail = pq_text(pg->conn ? PQerrorMessage(pg->conn) : NULL);
  ferry_log_debug(pg->ins, "PostgreSQL %s: connection lost: %s", pg->desc, detail);
  drop_conn(pg);
  char *msg = ferry_asprintf("connection to PostgreSQL %s lost", pg->desc);
  fail_list(pg, detach_all(pg), FERRY_ETRANSIENT, msg, detail);
  free(msg);
  free(detail);
}

static void finish_op(ferry_pg *pg) {
  pgop *op = q_pop(pg);
  pg->state = S_IDLE;
  watch(pg, 0);
  const char *sev = op->err_res ? PQresultErrorField(op->err_res, PG_DIAG_SEVERITY_NONLOCALIZED) : NULL;
  int bad = PQstatus(pg->conn) == CONNECTION_BAD || (sev && (!strcmp(sev, "FATAL") || !strcmp(sev, "PANIC")));
  if (!bad) pg->in_txn = PQtransactionStatus(pg->conn) != PQTRANS_IDLE;
  if (op->err_res || bad) {
    const char *st = op->err_res ? PQresultErrorField(op->err_res, PG_DIAG_SQLSTATE) : NULL;
    const char *primary = op->err_res ? PQresultErrorField(op->err_res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    const char *sdetail = op->err_res ? PQresultErrorField(op->err_res, PG_DIAG_MESSAGE_DETAIL) : NULL;
    const char *constraint = op->err_res ? PQresultErrorField(op->err_res, PG_DIAG_CONSTRAINT_NAME) : NULL;
    int code = bad ? FERRY_ETRANSIENT : st ? sqlstate_code(st) : FERRY_EINVAL;
    ferry_error err = FERRY_ERROR_INIT;
    if (bad)
      ferry_error_set(&err, code, "%s: connection to PostgreSQL %s lost", op->what, pg->desc);
    else if (st && !strcmp(sqlstate_name(st), "SQL error") && primary) { /* e.g. raised by a trigger */
      char *pt = pq_text(primary);
      ferry_error_set(&err, code, "%s: %s (SQLSTATE %s)", op->what, pt, st);
      free(pt);
    }
    else if (st)
      ferry_error_set(&err, code, "%s: %s%s%s (SQLSTATE %s)", op->what, sqlstate_name(st),
                      constraint ? " on constraint " : "", constraint ? constraint : "", st);
    else
      ferry_error_set(&err, code, "%s: failed", op->what);
    char *d = ferry_asprintf("%s%s%s%s%s", st ? "SQLSTATE " : "", st ? st : "", st ? ": " : "",
                              primary ? primary : PQerrorMessage(pg->conn), sdetail ? " DETAIL: " : "");
    if (sdetail) {
      char *d2 = ferry_asprintf("%s%s", d, sdetail);
      free(d);
      d = d2;
    }
    char *dr = pq_text(d);
    ferry_error_set_detail(&err, "%s", dr);
    free(dr);
    free(d);
    pgop *rest = NULL;
    if (bad) {
      rest = detach_all(pg); /* queued before the loss: they fail too (see lost()) */
      drop_conn(pg);
    }
    deliver(pg, op, code, NULL, &err);
    if (rest) {
      char *msg = ferry_asprintf("connection to PostgreSQL %s lost", pg->desc);
      fail_list(pg, rest, FERRY_ETRANSIENT, msg, err.detail);
      free(msg);
    }
    ferry_error_clear(&err);
  } else if (op->canceled) {
    ferry_error err = FERRY_ERROR_INIT;
    ferry_error_set(&err, FERRY_ECANCELED, "%s: canceled by the caller", op->what);
    deliver(pg, op, FERRY_ECANCELED, NULL, &err);
    ferry_error_clear(&err);
  } else {
    PGresult *res = op->res;
    op->res = NULL;
    op->done(op->arg, 0, res, NULL);
    if (res) PQclear(res);
    op_free(op);
  }
  if (!pg->freeing) kick(pg);
}

/* ---- running an operation --------------------------------------------------------------------------------- */

/* Sends COPY IN data and the end marker as far as the socket takes them. 0 done, 1 wait, -1 broken. */
static int copy_in_pump(ferry_pg *pg, pgop *op) {
  while (op->sent < op->len) {
    size_t n = op->len - op->sent;
    if (n > PG_COPY_CHUNK) n = PG_COPY_CHUNK;
    int r = PQputCopyData(pg->conn, op->data + op->sent, (int)n);
    if (r < 0) return -1;
    if (r == 0) {
      pg->flushing = 1;
      return 1;
    }
    op->sent += n;
  }
  if (!op->end_sent) {
    int r = PQputCopyEnd(pg->conn, op->kind == OP_COPY_IN ? NULL : "ferry: this operation has no COPY data");
    if (r < 0) return -1;
    if (r == 0) {
      pg->flushing = 1;
      return 1;
    }
    op->end_sent = 1;
  }
  int f = PQflush(pg->conn);
  if (f < 0) return -1;
  pg->flushing = f == 1;
  op->phase = PH_RESULTS;
  return 0;
}

/* Reads what the server sent for the running operation. Returns after the operation completed, or when
 * it has to wait for the socket. */
static void op_read(ferry_pg *pg) {
  for (;;) {
    pgop *op = pg->head;
    if (op->phase == PH_COPY_IN) {
      int r = copy_in_pump(pg, op);
      if (r < 0) return lost(pg);
      if (r > 0) return;
    }
    if (op->phase == PH_COPY_OUT) {
      for (;;) {
        char *buf = NULL;
        int n = PQgetCopyData(pg->conn, &buf, 1);
        if (n > 0) {
          int stop = 0;
          if (!op->canceled && op->chunk) stop = op->chunk(op->arg, buf, (size_t)n);
          PQfreemem(buf);
          if (pg->freeing) return;
          if (stop) op->canceled = 1; /* keep draining: the protocol has no cheap non-blocking cancel */
          continue;
        }
        if (n == 0) return; /* wait for more */
        if (n == -2 && PQstatus(pg->conn) == CONNECTION_BAD) return lost(pg);
        op->phase = PH_RESULTS; /* -1: copy done (or -2: error, reported by PQgetResult) */
        break;
      }
    }
    if (PQisBusy(pg->conn)) return;
    PGresult *res = PQgetResult(pg->conn);
    if (!res) return finish_op(pg);
    switch (PQresultStatus(res)) {
      case PGRES_COPY_OUT:
        PQclear(res);
        op->phase = PH_COPY_OUT;
        break;
      case PGRES_COPY_IN:
        PQclear(res);
        op->phase = PH_COPY_IN;
        break;
      case PGRES_SINGLE_TUPLE:
        if (op->row && !op->err_res) op->row(op->arg, res);
        PQclear(res);
        if (pg->freeing) return;
        break;
      case PGRES_TUPLES_OK:
      case PGRES_COMMAND_OK:
      case PGRES_EMPTY_QUERY:
        if (op->res) PQclear(op->res);
        op->res = res;
        break;
      default:
        if (!op->err_res) op->err_res = res;
        else PQclear(res);
        break;
    }
  }
}

static void update_busy_watch(ferry_pg *pg) {
  if (pg->state != S_BUSY || !pg->conn) return;
  if (watch(pg, UV_READABLE | (pg->flushing ? UV_WRITABLE : 0)) < 0) lost(pg);
}

static void busy_io(ferry_pg *pg, int status, int events) {
  if (status < 0) {
    if (++pg->poll_errors > 2) return lost(pg);
    events = UV_READABLE | UV_WRITABLE; /* let libpq find out what is wrong */
  } else {
    pg->poll_errors = 0;
  }
  if (events & UV_READABLE) {
    if (!PQconsumeInput(pg->conn)) return lost(pg);
  }
  if (pg->flushing) {
    int f = PQflush(pg->conn);
    if (f < 0) return lost(pg);
    pg->flushing = f == 1;
  }
  op_read(pg);
  if (!pg->freeing) update_busy_watch(pg);
}

/* An idle connection may have died meanwhile (server restart, pg_terminate_backend): the server then sent
 * an error and closed the socket. Peek without blocking; read and parse what is there (notices go to the
 * log), until the socket has nothing more or shows its end. 1 = looks alive, 0 = dead. */
static int idle_conn_alive(ferry_pg *pg) {
  for (int i = 0; i < 8; i++) {
    char b;
    ssize_t n = recv(PQsocket(pg->conn), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return 0;
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    if (!PQconsumeInput(pg->conn)) return 0;
    PQisBusy(pg->conn); /* parses what arrived */
    PGnotify *nt;
    while ((nt = PQnotifies(pg->conn))) PQfreemem(nt);
    if (PQstatus(pg->conn) == CONNECTION_BAD || pg->doomed) return 0;
  }
  return !pg->doomed;
}

static void start_op(ferry_pg *pg) {
  pgop *op = pg->head;
  /* Notice a dead idle connection before sending anything, so that the operation goes to a new connection
   * instead of failing. */
  if (!idle_conn_alive(pg)) {
    char *detail = pq_text(PQerrorMessage(pg->conn));
    if (pg->in_txn || pg->keep_session) {
      /* the open transaction is gone: the operations that belong to it must fail, not run outside it; or
       * the caller keeps state in the session (advisory locks): it must hear that the session is gone */
      int in_txn = pg->in_txn; /* drop_conn() forgets it */
      drop_conn(pg);
      char *msg = ferry_asprintf("connection to PostgreSQL %s lost %s", pg->desc,
                                 in_txn ? "inside a transaction" : "while idle (its session ended)");
      fail_list(pg, detach_all(pg), FERRY_ETRANSIENT, msg, detail);
      free(msg);
      free(detail);
      return;
    }
    ferry_log_debug(pg->ins, "PostgreSQL %s: idle connection was lost (%s); connecting again", pg->desc, detail);
    free(detail);
    drop_conn(pg);
    return kick(pg);
  }
  int ok;
  if (op->nparams == 0)
    ok = PQsendQuery(pg->conn, op->sql);
  else
    ok = PQsendQueryParams(pg->conn, op->sql, op->nparams, NULL, (const char *const *)op->params, op->lengths,
                           op->formats, 0);
  if (ok && op->row) PQsetSingleRowMode(pg->conn);
  pg->state = S_BUSY;
  if (ok) op->sent_at = ferry__now();
  if (!ok) {
    if (PQstatus(pg->conn) == CONNECTION_BAD) return lost(pg);
    char *detail = pq_text(PQerrorMessage(pg->conn));
    pgop *o = q_pop(pg);
    pg->state = S_IDLE;
    fail_op(pg, o, FERRY_EINVAL, "PostgreSQL refused to send the statement", detail);
    free(detail);
    if (!pg->freeing) kick(pg);
    return;
  }
  int f = PQflush(pg->conn);
  if (f < 0) return lost(pg);
  pg->flushing = f == 1;
  update_busy_watch(pg);
}

/* ---- connecting ------------------------------------------------------------------------------------------ */

static void connect_poll(ferry_pg *pg) {
  PostgresPollingStatusType r = PQconnectPoll(pg->conn);
  switch (r) {
    case PGRES_POLLING_READING:
      if (watch(pg, UV_READABLE) < 0) connect_failed(pg, "cannot watch the socket");
      return;
    case PGRES_POLLING_WRITING:
      if (watch(pg, UV_WRITABLE) < 0) connect_failed(pg, "cannot watch the socket");
      return;
    case PGRES_POLLING_OK:
      uv_timer_stop(&pg->ctimer);
      PQsetnonblocking(pg->conn, 1);
      pg->state = S_IDLE;
      watch(pg, 0);
      ferry_log_debug(pg->ins, "PostgreSQL %s: connected", pg->desc);
      kick(pg);
      return;
    default:
      connect_failed(pg, PQerrorMessage(pg->conn));
      return;
  }
}

static void on_poll(uv_poll_t *h, int status, int events) {
  pgpoll *p = h->data;
  ferry_pg *pg = p->pg;
  if (pg->freeing || p != pg->poll) return;
  if (pg->state == S_CONNECTING) connect_poll(pg);
  else if (pg->state == S_BUSY) busy_io(pg, status, events);
  else watch(pg, 0);
}

static void on_connect_timeout(uv_timer_t *t) {
  ferry_pg *pg = t->data;
  if (pg->state != S_CONNECTING && pg->state != S_RESOLVING) return;
  char *why = ferry_asprintf("no connection after %u s (connect_timeout)", pg->connect_timeout_s);
  if (pg->state == S_RESOLVING) {
    uv_cancel((uv_req_t *)pg->gai); /* its callback still runs (and is ignored) */
    pg->gai = NULL;
  }
  connect_failed(pg, why);
  free(why);
}

/* Notices go to the log. A FATAL one outside a query (pg_terminate_backend, server shutdown) means the
 * server is closing this connection: the next operation must not be sent on it. */
static void notice_receiver(void *arg, const PGresult *res) {
  ferry_pg *pg = arg;
  const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
  int fatal = sev && (!strcmp(sev, "FATAL") || !strcmp(sev, "PANIC"));
  if (fatal) pg->doomed = 1;
  char *t = pq_text(PQresultErrorMessage(res));
  if (fatal) ferry_log_info(pg->ins, "PostgreSQL %s: %s", pg->desc, t);
  else ferry_log_debug(pg->ins, "PostgreSQL %s: %s", pg->desc, t);
  free(t);
}

static void connect_with(ferry_pg *pg, const char *hostaddr) {
  size_t n = ferry__strv_len(pg->keys);
  const char **k = ferry__xcalloc(n + 2, sizeof(char *));
  const char **v = ferry__xcalloc(n + 2, sizeof(char *));
  for (size_t i = 0; i < n; i++) {
    k[i] = pg->keys[i];
    v[i] = pg->vals[i];
  }
  if (hostaddr) {
    k[n] = "hostaddr";
    v[n] = hostaddr;
  }
  pg->conn = PQconnectStartParams(k, v, 0);
  free(k);
  free(v);
  if (!pg->conn) {
    pg->state = S_DOWN;
    uv_timer_stop(&pg->ctimer);
    fail_list(pg, detach_all(pg), FERRY_ENOMEM, "out of memory while connecting to PostgreSQL", NULL);
    return;
  }
  PQsetNoticeReceiver(pg->conn, notice_receiver, pg);
  if (PQstatus(pg->conn) == CONNECTION_BAD) {
    connect_failed(pg, PQerrorMessage(pg->conn));
    return;
  }
  pg->state = S_CONNECTING;
  /* as if PQconnectPoll had returned PGRES_POLLING_WRITING */
  if (watch(pg, UV_WRITABLE) < 0) connect_failed(pg, "cannot watch the socket");
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *ai) {
  ferry_pg *pg = req->data;
  int current = pg->gai == req;
  free(req);
  if (!current || pg->freeing) {
    uv_freeaddrinfo(ai);
    handle_closed(pg);
    return;
  }
  pg->gai = NULL;
  handle_closed(pg); /* the request is over (pg stays: its timers are open) */
  if (status < 0 || !ai) {
    char *why = ferry_asprintf("could not resolve host name \"%s\": %s", pg->host, uv_strerror(status));
    uv_freeaddrinfo(ai);
    connect_failed(pg, why);
    free(why);
    return;
  }
  /* Every address, as libpq would try them: host=h,h,... hostaddr=a1,a2,... */
  ferry_buf addrs = {0};
  size_t count = 0;
  for (struct addrinfo *a = ai; a && count < 8; a = a->ai_next) {
    char buf[INET6_ADDRSTRLEN] = "";
    if (a->ai_family == AF_INET)
      uv_ip4_name((struct sockaddr_in *)a->ai_addr, buf, sizeof buf);
    else if (a->ai_family == AF_INET6)
      uv_ip6_name((struct sockaddr_in6 *)a->ai_addr, buf, sizeof buf);
    if (!*buf || (addrs.buf && strstr(addrs.buf, buf))) continue;
    if (count++) ferry_buf_add(&addrs, ",");
    ferry_buf_add(&addrs, buf);
  }
  uv_freeaddrinfo(ai);
  if (!count) {
    ferry_buf_free(&addrs);
    connect_failed(pg, "the host name has no IPv4 or IPv6 address");
    return;
  }
  /* host must list as many entries as hostaddr */
  size_t hi = 0;
  for (; pg->keys[hi] && strcmp(pg->keys[hi], "host"); hi++) {
  }
  char *saved = pg->vals[hi];
  ferry_buf hosts = {0};
  for (size_t i = 0; i < count; i++) ferry_buf_addf(&hosts, "%s%s", i ? "," : "", pg->host);
  pg->vals[hi] = hosts.buf;
  connect_with(pg, addrs.buf);
  pg->vals[hi] = saved;
  ferry_buf_free(&hosts);
  ferry_buf_free(&addrs);
}

static int is_literal_address(const char *h) {
  unsigned char buf[sizeof(struct in6_addr)];
  return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

static void connect_start(ferry_pg *pg) {
  uv_timer_start(&pg->ctimer, on_connect_timeout, (uint64_t)pg->connect_timeout_s * 1000, 0);
  /* libpq resolves host names with a blocking getaddrinfo(): do that on the thread pool first. */
  if (pg->host && !pg->has_hostaddr && pg->host[0] != '/' && pg->host[0] != '@' && !strchr(pg->host, ',') &&
      !is_literal_address(pg->host)) {
    uv_getaddrinfo_t *req = ferry__xcalloc(1, sizeof *req);
    req->data = pg;
    struct addrinfo hints = {0};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    int rc = uv_getaddrinfo(pg->loop, req, on_resolved, pg->host, NULL, &hints);
    if (rc == 0) {
      pg->gai = req;
      pg->open_handles++;
      pg->state = S_RESOLVING;
      return;
    }
    free(req);
  }
  connect_with(pg, NULL);
}

/* Starts what can start: a connection when there is work and none, or the next operation. */
static void kick(ferry_pg *pg) {
  if (pg->freeing || !pg->head) return;
  if (pg->state == S_DOWN) connect_start(pg);
  else if (pg->state == S_IDLE) start_op(pg);
}

static void on_kick(uv_timer_t *t) { kick(t->data); }

/* ---- public API ------------------------------------------------------------------------------------------ */

/* Replaces the text between double quotes in libpq's parse errors (it may be a piece of a password). */
static char *hide_quoted(const char *s) {
  ferry_buf sb = {0};
  int in = 0;
  for (const char *p = s ? s : ""; *p; p++) {
    if (*p == '"') {
      ferry_buf_add(&sb, in ? "...\"" : "\"");
      in = !in;
    } else if (!in && *p != '\n') {
      ferry_buf_addn(&sb, p, 1);
    }
  }
  return ferry_buf_steal(&sb);
}

PQconninfoOption *ferry__pg_parse(const char *conninfo, ferry_error *err) {
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", &perr);
  if (!opts) {
    char *h = hide_quoted(perr);
    ferry_error_set(err, FERRY_ECONFIG, "invalid PostgreSQL connection string");
    ferry_error_set_detail(err, "libpq: %s", h);
    free(h);
    if (perr) PQfreemem(perr);
  }
  return opts;
}

FERRY_API ferry_pg *ferry_pg_new(ferry_instance *ins, const char *conninfo, ferry_error *err) {
  if (!ins || !ins->loop) {
    ferry_error_set(err, FERRY_EINVAL, "PostgreSQL connection: no plugin instance (or it has no loop)");
    return NULL;
  }
  PQconninfoOption *opts = ferry__pg_parse(conninfo, err);
  if (!opts) return NULL;
  ferry_pg *pg = ferry__xcalloc(1, sizeof *pg);
  pg->ins = ins;
  pg->loop = ins->loop;
  pg->connect_timeout_s = PG_DEFAULT_CONNECT_TIMEOUT_S;
  size_t n = 0;
  for (PQconninfoOption *o = opts; o->keyword; o++)
    if (o->val && *o->val) n++;
  pg->keys = ferry__xcalloc(n + 1, sizeof(char *));
  pg->vals = ferry__xcalloc(n + 1, sizeof(char *));
  const char *port = NULL, *db = NULL, *user = NULL;
  n = 0;
  for (PQconninfoOption *o = opts; o->keyword; o++) {
    if (!o->val || !*o->val) continue;
    pg->keys[n] = ferry_strdup(o->keyword);
    pg->vals[n] = ferry_strdup(o->val);
    n++;
    if (!strcmp(o->keyword, "password")) ferry__secret_add(o->val);
    else if (!strcmp(o->keyword, "host")) pg->host = ferry_strdup(o->val);
    else if (!strcmp(o->keyword, "hostaddr")) pg->has_hostaddr = 1;
    else if (!strcmp(o->keyword, "port")) port = o->val;
    else if (!strcmp(o->keyword, "dbname")) db = o->val;
    else if (!strcmp(o->keyword, "user")) user = o->val;
    else if (!strcmp(o->keyword, "connect_timeout") && atoi(o->val) > 0)
      pg->connect_timeout_s = (unsigned)atoi(o->val);
  }
  pg->desc = ferry_asprintf("%s:%s/%s", pg->host ? pg->host : "localhost", port ? port : "5432",
                             db ? db : user ? user : "(default)");
  PQconninfoFree(opts);

  uv_timer_init(pg->loop, &pg->kick);
  pg->kick.data = pg;
  uv_timer_init(pg->loop, &pg->ctimer);
  pg->ctimer.data = pg;
  pg->open_handles = 2;
  pg->state = S_DOWN;
  connect_start(pg); /* connect now; no operation is waiting, so no callback can run here */
  return pg;
}

FERRY_API void ferry_pg_free(ferry_pg *pg) {
  if (!pg || pg->freeing) return;
  pg->freeing = 1;
  if (pg->gai) {
    uv_cancel((uv_req_t *)pg->gai); /* on_resolved still runs and drops its count */
    pg->gai = NULL;
  }
  drop_conn(pg); /* the running operation, if any, is abandoned: the server rolls it back or finishes it */
  pgop *op;
  while ((op = q_pop(pg))) {
    ferry_error err = FERRY_ERROR_INIT;
    ferry_error_set(&err, FERRY_ECANCELED, "%s: canceled (PostgreSQL connection closed)", op->what);
    deliver(pg, op, FERRY_ECANCELED, NULL, &err);
    ferry_error_clear(&err);
  }
  uv_timer_stop(&pg->kick);
  uv_close((uv_handle_t *)&pg->kick, on_timer_closed);
  uv_close((uv_handle_t *)&pg->ctimer, on_timer_closed);
}

static int enqueue(ferry_pg *pg, pgop *op) {
  op->what = ferry__sql_what(op->sql);
  if (pg->tail) pg->tail->next = op;
  else pg->head = op;
  pg->tail = op;
  pg->nops++;
  if (pg->state == S_DOWN || pg->state == S_IDLE) uv_timer_start(&pg->kick, on_kick, 0, 0);
  return 0;
}

FERRY_API int ferry_pg_query(ferry_pg *pg, const char *sql, int nparams, const char *const *params,
                             ferry_pg_cb cb, void *arg) {
  if (!pg || !sql || !cb || nparams < 0 || (nparams > 0 && !params)) return FERRY_EINVAL;
  int *lengths = ferry__xcalloc(nparams ? (size_t)nparams : 1, sizeof(int));
  int *formats = ferry__xcalloc(nparams ? (size_t)nparams : 1, sizeof(int)); /* text */
  for (int i = 0; i < nparams; i++) lengths[i] = params[i] ? (int)strlen(params[i]) : 0;
  int rc = ferry__pg_query_rows(pg, sql, nparams, params, lengths, formats, NULL, cb, arg);
  free(lengths);
  free(formats);
  return rc;
}

int ferry__pg_query_rows(ferry_pg *pg, const char *sql, int nparams, const char *const *values,
                         const int *lengths, const int *formats, ferry__pg_row_cb row, ferry_pg_cb done,
                         void *arg) {
  if (!pg || !sql || !done || nparams < 0 || (nparams > 0 && (!values || !lengths || !formats))) return FERRY_EINVAL;
  if (pg->freeing) return FERRY_ECANCELED;
  pgop *op = ferry__xcalloc(1, sizeof *op);
  op->kind = OP_QUERY;
  op->sql = ferry_strdup(sql);
  op->nparams = nparams;
  if (nparams) {
    op->params = ferry__xcalloc((size_t)nparams, sizeof(char *));
    op->lengths = ferry__xcalloc((size_t)nparams, sizeof(int));
    op->formats = ferry__xcalloc((size_t)nparams, sizeof(int));
    for (int i = 0; i < nparams; i++) {
      op->lengths[i] = lengths[i];
      op->formats[i] = formats[i];
      if (values[i]) {
        op->params[i] = ferry__xmalloc((size_t)lengths[i] + 1);
        memcpy(op->params[i], values[i], (size_t)lengths[i]);
        op->params[i][lengths[i]] = 0;
      }
    }
  }
  op->row = row;
  op->done = done;
  op->arg = arg;
  return enqueue(pg, op);
}

FERRY_API int ferry_pg_copy_out(ferry_pg *pg, const char *sql, ferry_pg_chunk_cb chunk, ferry_pg_cb done,
                                void *arg) {
  if (!pg || !sql || !chunk || !done) return FERRY_EINVAL;
  if (pg->freeing) return FERRY_ECANCELED;
  pgop *op = ferry__xcalloc(1, sizeof *op);
  op->kind = OP_COPY_OUT;
  op->sql = ferry_strdup(sql);
  op->chunk = chunk;
  op->done = done;
  op->arg = arg;
  return enqueue(pg, op);
}

FERRY_API int ferry_pg_copy_in(ferry_pg *pg, const char *sql, const void *data, size_t len, ferry_pg_cb done,
                               void *arg) {
  if (!pg || !sql || !done || (len && !data)) return FERRY_EINVAL;
  if (pg->freeing) return FERRY_ECANCELED;
  pgop *op = ferry__xcalloc(1, sizeof *op);
  op->kind = OP_COPY_IN;
  op->sql = ferry_strdup(sql);
  op->data = ferry__xmalloc(len ? len : 1);
  if (len) memcpy(op->data, data, len);
  op->len = len;
  op->done = done;
  op->arg = arg;
  return enqueue(pg, op);
}

void ferry__pg_keep_session(ferry_pg *pg) {
  if (pg) pg->keep_session = 1;
}

FERRY_API size_t ferry_pg_pending(const ferry_pg *pg) { return pg ? pg->nops : 0; }

/* ferry_pg_quote_ident(), ferry_pg_quote_literal() and the array literals: text.c (libpq's escaping). */
