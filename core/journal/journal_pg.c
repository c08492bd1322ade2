/* The journal in PostgreSQL: the connection under journal.c's statements (docs/journal.md, "PostgreSQL").
 *
 * journal.c keeps every rule of the journal (statements, grouping, redaction, errors) for both engines; for
 * a PostgreSQL journal it runs its statements through this file, which drives the SDK's SQL service
 * (ferry/sql.h) on a private uv loop until each call completes: the journal API stays synchronous.
 *
 * What this file adds for a server that may go away:
 * - a lost connection (FERRY_ETRANSIENT: server restarted, network cut, too many connections) is retried
 *   with backoff (0.1 s doubling to 2 s, for up to FERRY_JOURNAL_RETRY_S seconds, default 300), saying so on
 *   stderr once per outage; the run simply pauses in the journal call;
 * - a group's transaction is replayed: every write made in the open transaction is kept (SQL and
 *   parameters) until the commit, so that when the connection is lost mid-group, or a statement fails and
 *   PostgreSQL aborts the transaction, a new transaction gets the same writes again. Every journal write is
 *   an upsert or an update to given values, so writing it twice leaves the same rows: nothing recorded
 *   before a commit returned is lost, nothing is written twice;
 * - a commit lost with its connection is ambiguous (committed or not): the group is replayed and committed
 *   again, which is the same rows either way;
 * - the run lock is a session advisory lock of the connection (released by the server when the process
 *   dies: its connection closes); it is taken again after every reconnection, and a run that finds it taken
 *   by another after an outage stops with the "in use" error rather than write beside it.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "ferry/sql.h"
#include "journal/jpg.h"
#include "load/load.h"
#include "services/services.h"

#define RETRY_FIRST_S 0.1
#define RETRY_MAX_S 2.0
#define RETRY_TOTAL_S 300.0

typedef struct jw { /* a write of the open transaction, kept for a replay */
  char *sql;
  size_t n;
  char **params;
} jw;

struct ferry__jpg {
  uv_loop_t loop;
  struct ferry_instance ins;
  ferry_sql *db;
  ferry_sql_txn *txn; /* the open transaction (a group), or NULL */
  int want_tx;        /* a transaction was begun by the caller and not ended (txn may be NULL while lost) */
  jw *w;              /* writes of the open transaction */
  size_t nw, capw;
  char *endpoint;     /* no password */
  int readonly;
  int locked;         /* the run lock was taken (writers) */
  int shared;         /* ... shared (several workers, ferry run --worker), else exclusive */
  int relock;         /* a connection was lost: take the lock again (new session) before going on */
  char *name_key;     /* a session lock of its own (ferry__jpg_name_lock: a worker's name), or NULL */
  char *name_what;    /* ... what it holds, for the error when another took it meanwhile */
  double total_s;     /* how long a lost server is waited for */
};

/* ---- one call on the private loop, run to its end -------------------------------------------------------- */

typedef struct call {
  ferry__jpg *p;
  int finished, status;
  ferry_error err;
  ferry__jres *res;
  ferry_sql_txn *txn;
} call;

static int on_rows(void *arg, const ferry_sql_batch *b) {
  call *c = arg;
  ferry__jres *r = c->res;
  if (!r) return 0;
  r->ncols = b->ncols;
  r->cells = ferry__xrealloc(r->cells, (r->nrows + b->nrows) * b->ncols * sizeof *r->cells);
  for (size_t i = 0; i < b->nrows; i++)
    for (size_t k = 0; k < b->ncols; k++) {
      const ferry_sql_value *v = FERRY_SQL_CELL(b, i, k);
      r->cells[(r->nrows + i) * b->ncols + k] = v->data ? ferry_strndup(v->data, v->len) : NULL;
    }
  r->nrows += b->nrows;
  return 0;
}

static void on_done(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  call *c = arg;
  c->finished = 1;
  c->status = status;
  if (status) ferry_error_copy(&c->err, err);
  if (!status && info && c->res) c->res->affected = info->affected;
  uv_stop(&c->p->loop);
}

static void on_begin(void *arg, int status, ferry_sql_txn *txn, const ferry_error *err) {
  call *c = arg;
  c->txn = txn;
  on_done(arg, status, NULL, err);
}

static int wait_call(call *c, int queued, ferry_error *err) {
  if (queued < 0) {
    c->status = queued;
    ferry_error_set(&c->err, queued, "the SQL service refused the statement");
  }
  while (queued >= 0 && !c->finished) uv_run(&c->p->loop, UV_RUN_DEFAULT);
  if (c->status) {
    ferry_error_clear(err);
    if (err) *err = c->err;
    else ferry_error_clear(&c->err);
  }
  return c->status;
}

static int raw_query(ferry__jpg *p, ferry_sql_txn *txn, const char *sql, size_t n, const char *const *params,
                     ferry__jres *res, ferry_error *err) {
  ferry_sql_value v[32];
  if (n > 32) return ferry_error_set(err, FERRY_EINTERNAL, "journal: too many parameters");
  for (size_t i = 0; i < n; i++)
    v[i] = (ferry_sql_value){.data = params[i], .len = params[i] ? strlen(params[i]) : 0};
  if (res) ferry__jres_clear(res);
  call c = {.p = p, .res = res};
  return wait_call(&c, ferry_sql_query(p->db, txn, sql, n, v, on_rows, on_done, &c), err);
}

static int raw_begin(ferry__jpg *p, ferry_error *err) {
  call c = {.p = p};
  int rc = wait_call(&c, ferry_sql_begin(p->db, FERRY_SQL_READ_WRITE, NULL, on_begin, &c), err);
  if (!rc) p->txn = c.txn;
  return rc;
}

static int raw_end(ferry__jpg *p, int commit, ferry_error *err) {
  ferry_sql_txn *t = p->txn;
  p->txn = NULL;
  if (!t) return 0;
  call c = {.p = p};
  return wait_call(&c, commit ? ferry_sql_commit(t, on_done, &c) : ferry_sql_rollback(t, on_done, &c), err);
}

/* ---- retries -------------------------------------------------------------------------------------------- */

typedef struct retry {
  double start, wait;
  int said;
} retry;

/* After a transient failure: waits (saying so once), 0 = try again, else gives up (err kept). */
static int retry_wait(ferry__jpg *p, retry *r, const char *what, ferry_error *err) {
  double now = ferry__now();
  if (!r->start) {
    r->start = now;
    r->wait = RETRY_FIRST_S;
  }
  if (now - r->start > p->total_s) {
    char *m = ferry_asprintf("journal %s: %s: the journal server did not answer for %.0f s, giving up: %s",
                             p->endpoint, what, now - r->start, err && err->message ? err->message : "");
    ferry_error_set(err, FERRY_EIO, "%s", m);
    free(m);
    return -1;
  }
  if (!r->said) {
    fprintf(stderr, "ferry: journal %s: %s: %s: the run pauses and retries (up to %.0f s)\n", p->endpoint,
            what, err && err->message ? err->message : "connection lost", p->total_s);
    r->said = 1;
  }
  struct timespec ts = {(time_t)r->wait, (long)((r->wait - (double)(time_t)r->wait) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
  r->wait = r->wait * 2 > RETRY_MAX_S ? RETRY_MAX_S : r->wait * 2;
  return 0;
}

/* After a success: says so when a pause was announced, and clears the error the failed attempts left in err
 * (the caller of a call that returned 0 never reads or clears it). */
static void retry_end(ferry__jpg *p, retry *r, ferry_error *err) {
  ferry_error_clear(err);
  if (r->said) fprintf(stderr, "ferry: journal %s: the journal server answers again after %.1f s: the run goes on\n",
                       p->endpoint, ferry__now() - r->start);
}

static int take_lock(ferry__jpg *p, ferry_error *err) {
  ferry__jres r = {0};
  const char *sql = p->shared ? "SELECT pg_try_advisory_lock_shared(hashtext('ferry journal ' || current_schema()))"
                              : "SELECT pg_try_advisory_lock(hashtext('ferry journal ' || current_schema()))";
  int rc = raw_query(p, NULL, sql, 0, NULL, &r, err);
  if (!rc && !(r.nrows == 1 && r.cells[0] && r.cells[0][0] == 't')) {
    /* who holds it, as the holder wrote it (see ferry__jpg_open); none when the journal has no tables yet */
    ferry__jres h = {0};
    ferry_error e = FERRY_ERROR_INIT;
    const char *who = NULL;
    if (!raw_query(p, NULL, "SELECT value FROM ferry_journal WHERE name = 'lock'", 0, NULL, &h, &e) && h.nrows == 1)
      who = h.cells[0];
    if (p->shared)
      rc = ferry_error_set(err, FERRY_EIO,
                           "journal %s is in use by a ferry run or verify that is not a worker%s%s%s: workers "
                           "(ferry run --worker) share a journal only with other workers; wait for it to end",
                           p->endpoint, who ? " (" : "", who ? who : "", who ? ")" : "");
    else
      rc = ferry_error_set(err, FERRY_EIO,
                           "journal %s is in use by another ferry run%s%s%s: wait for it to end, or use another journal",
                           p->endpoint, who ? " (" : "", who ? who : "", who ? ")" : "");
    ferry__jres_clear(&h);
    ferry_error_clear(&e);
  }
  ferry__jres_clear(&r);
  return rc;
}

/* 0 with *got = 1 when the session lock on hashtext(key) was taken, 0 when another session holds it; or the
 * error's code as it is (FERRY_ETRANSIENT stays one: the caller retries). */
static int try_name(ferry__jpg *p, const char *key, int *got, ferry_error *err) {
  ferry__jres r = {0};
  const char *k[] = {key};
  int rc = raw_query(p, NULL, "SELECT pg_try_advisory_lock(hashtext($1))", 1, k, &r, err);
  *got = !rc && r.nrows == 1 && r.cells[0] && r.cells[0][0] == 't';
  ferry__jres_clear(&r);
  return rc;
}

/* Brings the connection (and the locks, and the open transaction with its writes) back. */
static int restore(ferry__jpg *p, ferry_error *err) {
  int rc = 0;
  if (p->relock && (p->locked || p->name_key)) {
    if (p->locked && (rc = take_lock(p, err))) {
      if (rc != FERRY_EIO) return rc; /* transient: the caller retries */
      return ferry_error_set(err, FERRY_EIO,
                             "journal %s: the connection to the journal server was lost, and another ferry run "
                             "took the journal meanwhile: this one stops rather than work beside it",
                             p->endpoint);
    }
    if (p->name_key) { /* the server forgot the old session's locks: taken again, unless another took it */
      int got = 0;
      if ((rc = try_name(p, p->name_key, &got, err))) return rc;
      if (!got)
        return ferry_error_set(err, FERRY_EIO,
                               "journal %s: %s was taken by another ferry run while the connection was lost: "
                               "this one stops rather than work beside it",
                               p->endpoint, p->name_what);
    }
    p->relock = 0;
  }
  if (p->want_tx && !p->txn) {
    if ((rc = raw_begin(p, err))) return rc;
    for (size_t i = 0; i < p->nw; i++)
      if ((rc = raw_query(p, p->txn, p->w[i].sql, p->w[i].n, (const char *const *)p->w[i].params, NULL, err)))
        return rc;
  }
  return 0;
}

static void lose_tx(ferry__jpg *p) {
  p->relock = 1;
  if (!p->txn) return;
  ferry_error e = FERRY_ERROR_INIT;
  raw_end(p, 0, &e);
  ferry_error_clear(&e);
}

static void keep_write(ferry__jpg *p, const char *sql, size_t n, const char *const *params) {
  if (p->nw == p->capw) {
    p->capw = p->capw ? p->capw * 2 : 64;
    p->w = ferry__xrealloc(p->w, p->capw * sizeof *p->w);
  }
  jw *w = &p->w[p->nw++];
  w->sql = ferry_strdup(sql);
  w->n = n;
  w->params = ferry__xcalloc(n ? n : 1, sizeof *w->params);
  for (size_t i = 0; i < n; i++) w->params[i] = params[i] ? ferry_strdup(params[i]) : NULL;
}

static void drop_writes(ferry__jpg *p) {
  for (size_t i = 0; i < p->nw; i++) {
    for (size_t k = 0; k < p->w[i].n; k++) free(p->w[i].params[k]);
    free(p->w[i].params);
    free(p->w[i].sql);
  }
  p->nw = 0;
}

int ferry__jpg_exec(ferry__jpg *p, const char *sql, size_t n, const char *const *params, ferry__jres *res,
                    ferry_error *err) {
  retry r = {0};
  int is_write = strncmp(sql, "SELECT", 6) != 0;
  for (;;) {
    int rc = restore(p, err);
    if (!rc) rc = raw_query(p, p->txn, sql, n, params, res, err);
    if (!rc) {
      if (p->txn && is_write) keep_write(p, sql, n, params);
      retry_end(p, &r, err);
      return 0;
    }
    if (rc == FERRY_ETRANSIENT) {
      lose_tx(p);
      if (retry_wait(p, &r, "running a statement", err)) return FERRY_EIO;
      continue;
    }
    /* any other failure: PostgreSQL aborted the open transaction; a new one gets the earlier writes back
     * (the failing statement is not among them), as SQLite keeps the transaction of a failed statement */
    if (p->txn) {
      ferry_error keep = FERRY_ERROR_INIT;
      ferry_error_copy(&keep, err);
      lose_tx(p);
      ferry_error e = FERRY_ERROR_INIT;
      retry r2 = {0};
      int rr;
      while ((rr = restore(p, &e)) == FERRY_ETRANSIENT) {
        lose_tx(p);
        if (retry_wait(p, &r2, "replaying the group's writes", &e)) break;
      }
      ferry_error_clear(&e);
      ferry_error_clear(err);
      if (err) *err = keep;
      else ferry_error_clear(&keep);
    }
    return rc; /* no "answers again": the error says what stopped it */
  }
}

int ferry__jpg_begin(ferry__jpg *p, ferry_error *err) {
  p->want_tx = 1;
  drop_writes(p);
  retry r = {0};
  for (;;) {
    int rc = restore(p, err);
    if (!rc) {
      retry_end(p, &r, err);
      return 0;
    }
    lose_tx(p);
    if (rc != FERRY_ETRANSIENT || retry_wait(p, &r, "starting a transaction", err)) {
      p->want_tx = 0;
      return rc == FERRY_ETRANSIENT ? FERRY_EIO : rc;
    }
  }
}

int ferry__jpg_commit(ferry__jpg *p, ferry_error *err) {
  retry r = {0};
  for (;;) {
    int rc = restore(p, err);
    if (!rc) rc = raw_end(p, 1, err);
    if (!rc) {
      p->want_tx = 0;
      drop_writes(p);
      retry_end(p, &r, err);
      return 0;
    }
    lose_tx(p);
    /* lost with the connection: committed or not, replaying the writes and committing again gives the same
     * rows */
    if (rc != FERRY_ETRANSIENT || retry_wait(p, &r, "committing", err)) {
      p->want_tx = 0;
      drop_writes(p);
      return rc == FERRY_ETRANSIENT ? FERRY_EIO : rc;
    }
  }
}

void ferry__jpg_rollback(ferry__jpg *p) {
  lose_tx(p);
  p->want_tx = 0;
  drop_writes(p);
}

int ferry__jpg_in_tx(const ferry__jpg *p) { return p && p->want_tx; }
const char *ferry__jpg_endpoint(const ferry__jpg *p) { return p ? p->endpoint : NULL; }

void ferry__jres_clear(ferry__jres *r) {
  if (!r) return;
  for (size_t i = 0; i < r->nrows * r->ncols; i++) free(r->cells[i]);
  free(r->cells);
  memset(r, 0, sizeof *r);
}

/* ---- open / close --------------------------------------------------------------------------------------- */

int ferry__jpg_is_url(const char *path) {
  return path && (!strncmp(path, "postgresql://", 13) || !strncmp(path, "postgres://", 11));
}

static const char *const schema_pg[] = {
    "CREATE TABLE ferry_journal(name text PRIMARY KEY, value text NOT NULL)",
    "CREATE TABLE items("
    "  stage text COLLATE \"C\" NOT NULL,"
    "  key text COLLATE \"C\" NOT NULL,"
    "  status text NOT NULL CHECK (status IN ('intent', 'done', 'skipped', 'failed')),"
    "  step text,"
    "  state text NOT NULL DEFAULT '{}',"
    "  attempts bigint NOT NULL DEFAULT 0,"
    "  error text,"
    "  error_code integer,"
    "  created bigint NOT NULL,"
    "  updated bigint NOT NULL,"
    "  report text,"
    "  verify text,"
    "  run bigint,"
    "  PRIMARY KEY (stage, key))",
    "CREATE TABLE idmap("
    "  stage text COLLATE \"C\" NOT NULL,"
    "  key text COLLATE \"C\" NOT NULL,"
    "  kind text COLLATE \"C\" NOT NULL,"
    "  old_id text COLLATE \"C\" NOT NULL,"
    "  new_id text NOT NULL,"
    "  created bigint NOT NULL,"
    "  PRIMARY KEY (kind, old_id))",
    "CREATE INDEX idmap_item ON idmap(stage, key)",
    "CREATE TABLE runs("
    "  id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,"
    "  mode text NOT NULL,"
    "  started bigint NOT NULL,"
    "  ended bigint,"
    "  status integer,"
    "  summary text)",
    /* several workers (ferry run --worker; docs/journal.md, "Several workers"); also created, when missing,
     * by the first worker on a journal made before them (core/journal/claims.c) */
    FERRY__JPG_WORKERS_TABLE,
    FERRY__JPG_CLAIMS_TABLE,
    "CREATE SEQUENCE IF NOT EXISTS ferry_worker_inc",
    FERRY__JPG_LISTINGS_TABLE,
    FERRY__JPG_LISTING_MEMBERS_TABLE,
    FERRY__JPG_LISTED_TABLE,
    FERRY__JPG_NOTES_TABLE,
    NULL};

/* 0 with *version set, or an error. Creates the tables (writable, none there) in one transaction. */
static int check_schema(ferry__jpg *p, int *version, ferry_error *err) {
  ferry__jres r = {0};
  int rc = raw_query(p, NULL,
                     "SELECT c.relname FROM pg_class c WHERE c.relkind IN ('r', 'p', 'v')"
                     " AND c.relnamespace = current_schema()::regnamespace"
                     " AND c.relname IN ('ferry_journal', 'items', 'idmap', 'runs') ORDER BY 1",
                     0, NULL, &r, err);
  if (rc) return rc;
  int meta = 0, others = 0;
  for (size_t i = 0; i < r.nrows; i++) {
    if (!strcmp(r.cells[i], "ferry_journal")) meta = 1;
    else others++;
  }
  ferry__jres_clear(&r);
  if (!meta && others)
    return ferry_error_set(err, FERRY_EINVAL,
                           "journal %s: not a ferry journal (the schema has tables named items, idmap or runs "
                           "but no ferry_journal table): use another database or schema", p->endpoint);
  if (!meta) {
    if (p->readonly)
      return ferry_error_set(err, FERRY_ENOENT, "journal %s: the journal is empty (nothing has run with it yet)",
                             p->endpoint);
    if ((rc = raw_begin(p, err))) return rc;
    for (int i = 0; schema_pg[i] && !rc; i++) rc = raw_query(p, p->txn, schema_pg[i], 0, NULL, NULL, err);
    if (!rc) {
      char v[16];
      snprintf(v, sizeof v, "%d", FERRY__JPG_SCHEMA);
      const char *params[] = {v};
      rc = raw_query(p, p->txn,
                     "INSERT INTO ferry_journal(name, value) VALUES ('application', 'ferry'), ('schema_version', $1)",
                     1, params, NULL, err);
    }
    ferry_error e = FERRY_ERROR_INIT;
    if (!rc) rc = raw_end(p, 1, err);
    else raw_end(p, 0, &e);
    ferry_error_clear(&e);
    if (rc == FERRY_ECONFLICT || rc == FERRY_EINVAL) /* another writer created it at the same moment */
      return check_schema(p, version, err);
    if (rc) return rc;
  }
  if ((rc = raw_query(p, NULL, "SELECT value FROM ferry_journal WHERE name = 'schema_version'", 0, NULL, &r, err)))
    return rc;
  long v = r.nrows == 1 && r.cells[0] ? strtol(r.cells[0], NULL, 10) : 0;
  ferry__jres_clear(&r);
  if (v <= 0)
    return ferry_error_set(err, FERRY_EINVAL, "journal %s: not a ferry journal (no schema version in ferry_journal)",
                           p->endpoint);
  if (v > FERRY__JPG_SCHEMA)
    return ferry_error_set(err, FERRY_EINVAL,
                           "journal %s: schema version %ld is newer than this ferry supports (%d): use a newer "
                           "ferry to read or resume it", p->endpoint, v, FERRY__JPG_SCHEMA);
  *version = (int)v;
  return 0;
}

ferry__jpg *ferry__jpg_open(const char *url, int readonly, int *version, ferry_error *err) {
  return ferry__jpg_open_ex(url, readonly, readonly ? FERRY__JPG_LOCK_NONE : FERRY__JPG_LOCK_EXCLUSIVE, version, err);
}

ferry__jpg *ferry__jpg_open_ex(const char *url, int readonly, int lock, int *version, ferry_error *err) {
  ferry__jpg *p = ferry__xcalloc(1, sizeof *p);
  p->readonly = readonly;
  p->shared = lock == FERRY__JPG_LOCK_SHARED;
  p->total_s = RETRY_TOTAL_S;
  const char *t = getenv("FERRY_JOURNAL_RETRY_S");
  if (t && *t) p->total_s = strtod(t, NULL);
  uv_loop_init(&p->loop);
  p->ins.loop = &p->loop;
  p->ins.concurrency = 1;
  p->ins.id.plugin = "journal"; /* log lines of its connection: "[core:journal:]" */
  ferry_sql_opts o = {.struct_size = sizeof o, .max_connections = 1, .batch_rows = 1000};
  p->db = ferry_sql_open(&p->ins, url, &o, err);
  if (!p->db) {
    if (err && err->message) {
      char *m = ferry_asprintf("journal: %s", err->message);
      ferry_error_set(err, FERRY_ECONFIG, "%s", m);
      free(m);
    }
    ferry__jpg_close(p);
    return NULL;
  }
  /* the run lock and the worker-name lock live in the session: a session that ends while the connection is
   * idle must reach restore() (lose_tx), not be replaced by a new one that holds no lock */
  ferry__sql_keep_session(p->db);
  p->endpoint = ferry_strdup(ferry_sql_endpoint(p->db));
  int rc = 0;
  if (lock != FERRY__JPG_LOCK_NONE) {
    rc = take_lock(p, err);
    if (!rc) p->locked = 1;
  }
  if (!rc) rc = check_schema(p, version, err);
  if (!rc && lock != FERRY__JPG_LOCK_NONE) { /* who holds the lock, for the message another run gets */
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char *who = ferry_asprintf("%sprocess %ld on %s", p->shared ? "worker " : "", (long)getpid(),
                               *host ? host : "?");
    const char *params[] = {who};
    rc = raw_query(p, NULL,
                   "INSERT INTO ferry_journal(name, value) VALUES ('lock', $1)"
                   " ON CONFLICT (name) DO UPDATE SET value = excluded.value", 1, params, NULL, err);
    free(who);
  }
  if (rc) {
    if (err && err->message && !strstr(err->message, "journal ")) {
      char *m = ferry_asprintf("journal %s: cannot open it: %s", p->endpoint, err->message);
      ferry_error_set(err, rc, "%s", m);
      free(m);
    }
    ferry__jpg_close(p);
    return NULL;
  }
  return p;
}

int ferry__jpg_name_lock(ferry__jpg *p, const char *key, const char *what, ferry_error *err) {
  int got = 0;
  int rc = try_name(p, key, &got, err);
  if (rc) return rc;
  if (!got) return 1;
  free(p->name_key);
  free(p->name_what);
  p->name_key = ferry_strdup(key);
  p->name_what = ferry_strdup(what);
  return 0;
}

void ferry__jpg_close(ferry__jpg *p) {
  if (!p) return;
  free(p->name_key);
  free(p->name_what);
  lose_tx(p);
  drop_writes(p);
  free(p->w);
  if (p->db) {
    ferry_sql_close(p->db); /* the lock goes with the connection */
    uv_run(&p->loop, UV_RUN_DEFAULT);
  }
  uv_loop_close(&p->loop);
  free(p->endpoint);
  free(p);
}
