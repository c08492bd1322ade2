/* The journal: one SQLite file (WAL) that makes a run resumable and exactly once (docs/journal.md).
 *
 * Writes come in two kinds:
 * - "now" writes (intents, run begin/end) are committed before the function returns;
 * - outcomes (done, skipped, failed, id map) may be grouped: between group_begin and group_commit they go
 *   into one open transaction.
 * An intent made while a group is open is written into the group's transaction, which is then committed:
 * the intent and every outcome before it become durable together, and the group goes on in a new
 * transaction opened by the next write. So what the file holds after a crash is always a prefix of the
 * calls made, in order: if it holds an intent, it holds everything recorded before that intent.
 *
 * synchronous=NORMAL in WAL mode: a commit is written to the WAL file (write(2), no fsync) before COMMIT
 * returns, so it survives the process being killed; a power loss may lose the last commits, never corrupt.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "journal/journal.h"
#include "journal/jpg.h"

#define SCHEMA_VERSION 2
#define APPLICATION_ID 0x46525259 /* "FRRY" */
#define FOREACH_BATCH 256
#define BUSY_TIMEOUT_MS 10000

/* Version 2 (docs/journal.md). The columns added in version 2 (report, verify, run) come last, so that a
 * journal upgraded from version 1 (ALTER TABLE ... ADD COLUMN appends) has exactly this table. */
static const char *const schema_sql =
    "CREATE TABLE items("
    "  stage TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    /* the OR form: an IN list here would build a temporary index at every insert (half the throughput) */
    "  status TEXT NOT NULL CHECK (status = 'intent' OR status = 'done' OR status = 'skipped'"
    "                             OR status = 'failed'),"
    "  step TEXT,"
    "  state TEXT NOT NULL DEFAULT '{}',"
    "  attempts INTEGER NOT NULL DEFAULT 0,"
    "  error TEXT,"
    "  error_code INTEGER,"
    "  created INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  report TEXT,"
    "  verify TEXT,"
    "  run INTEGER,"
    "  PRIMARY KEY (stage, key)"
    ") WITHOUT ROWID;"
    "CREATE TABLE idmap("
    "  stage TEXT NOT NULL,"
    "  key TEXT NOT NULL,"
    "  kind TEXT NOT NULL,"
    "  old_id TEXT NOT NULL,"
    "  new_id TEXT NOT NULL,"
    "  created INTEGER NOT NULL,"
    "  PRIMARY KEY (kind, old_id)"
    ") WITHOUT ROWID;"
    "CREATE INDEX idmap_item ON idmap(stage, key);"
    "CREATE TABLE runs("
    "  id INTEGER PRIMARY KEY,"
    "  mode TEXT NOT NULL,"
    "  started INTEGER NOT NULL,"
    "  ended INTEGER,"
    "  status INTEGER,"
    "  summary TEXT"
    ");";

/* Version 1 -> 2, in the transaction that checks the schema. */
static const char *const upgrade_v1_sql =
    "ALTER TABLE items ADD COLUMN report TEXT;"
    "ALTER TABLE items ADD COLUMN verify TEXT;"
    "ALTER TABLE items ADD COLUMN run INTEGER;"
    "PRAGMA user_version = 2;";

enum {
  ST_BEGIN,
  ST_COMMIT,
  ST_GET,
  ST_GET_FULL,
  ST_INTENT,
  ST_DONE,
  ST_FAILED,
  ST_REPAIR_FAILED,
  ST_DOUBT,
  ST_VERIFY,
  ST_MAP,
  ST_MAP_OWNER,
  ST_LOOKUP,
  ST_RUN_BEGIN,
  ST_RUN_END,
  ST_COUNTS_STAGE,
  ST_COUNTS_ALL,
  ST_FOREACH_STAGE,
  ST_FOREACH_ALL,
  ST_FOREACH_RUN_STAGE,
  ST_FOREACH_RUN_ALL,
  ST_IDS_ALL,
  ST_IDS_STAGE,
  ST_IDS_ITEM,
  ST_IDS_RANGE,
  ST_STAGE_FIRST,
  ST_STAGE_NEXT,
  ST_RUNS,
  ST_COPY_ITEM,
  ST_COPY_ID,
  ST_COPY_RUN,
  ST_CLEAR_ITEMS,
  ST_CLEAR_IDS,
  ST_CLEAR_RUNS,
  ST_RUNS_SEQ,
  ST_COUNT
};

/* The columns of a row as row_from() reads them; a version-1 journal (read-only) has NULL for the new ones. */
#define ROW_COLS "status, step, state, attempts, error, error_code, created, updated, report, verify, run"
/* the resume lookup: everything but the report (parsing it would cost a fifth of the lookups) */
#define ROW_COLS_GET "status, step, state, attempts, error, error_code, created, updated, NULL, verify, run"
#define ROW_COLS_V1 "status, step, state, attempts, error, error_code, created, updated, NULL, NULL, NULL"
#define ID_COLS "kind, old_id, new_id, stage, key, created"

#define SQL_GET(cols) "SELECT " cols " FROM items WHERE stage = ?1 AND key = ?2"
/* P3: the status parameter (PostgreSQL needs its type: ?3::text) */
#define SQL_FOREACH_STAGE_P(cols, P3)                                          \
  "SELECT stage, key, " cols " FROM items"                                     \
  " WHERE stage = ?1 AND key >= ?2 AND (" P3 " IS NULL OR status = " P3 ")"    \
  " ORDER BY stage, key LIMIT ?4"
#define SQL_FOREACH_ALL_P(cols, P3)                                            \
  "SELECT stage, key, " cols " FROM items"                                     \
  " WHERE (stage, key) >= (?1, ?2) AND (" P3 " IS NULL OR status = " P3 ")"    \
  " ORDER BY stage, key LIMIT ?4"
#define SQL_FOREACH_STAGE(cols) SQL_FOREACH_STAGE_P(cols, "?3")
#define SQL_FOREACH_ALL(cols) SQL_FOREACH_ALL_P(cols, "?3")
#define SQL_FOREACH_RUN_STAGE(P3)                                                                      \
  "SELECT stage, key, " ROW_COLS " FROM items"                                                         \
  " WHERE stage = ?1 AND key >= ?2 AND run = ?5 AND (" P3 " IS NULL OR status = " P3 ")"               \
  " ORDER BY stage, key LIMIT ?4"
#define SQL_FOREACH_RUN_ALL(P3)                                                                        \
  "SELECT stage, key, " ROW_COLS " FROM items"                                                         \
  " WHERE (stage, key) >= (?1, ?2) AND run = ?5 AND (" P3 " IS NULL OR status = " P3 ")"               \
  " ORDER BY stage, key LIMIT ?4"

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_GET] = SQL_GET(ROW_COLS_GET),
    [ST_GET_FULL] = SQL_GET(ROW_COLS),
    [ST_INTENT] = "INSERT INTO items(stage, key, status, step, state, attempts, created, updated, run)"
                  " VALUES (?1, ?2, 'intent', ?3, coalesce(?4, '{}'), ?5, ?6, ?6, ?7)"
                  " ON CONFLICT (stage, key) DO UPDATE SET status = 'intent', step = ?3,"
                  " state = coalesce(?4, items.state), attempts = ?5, updated = ?6, run = ?7",
    /* done also clears the verify mark: the item was written again */
    [ST_DONE] = "INSERT INTO items(stage, key, status, state, attempts, created, updated, report, run)"
                " VALUES (?1, ?2, ?3, coalesce(?4, '{}'), coalesce(?8, 1), ?5, ?5, ?6, ?7)"
                " ON CONFLICT (stage, key) DO UPDATE SET status = ?3, state = coalesce(?4, items.state),"
                " attempts = coalesce(?8, items.attempts), error = NULL, error_code = NULL, updated = ?5,"
                " report = ?6, verify = NULL, run = ?7",
    [ST_FAILED] =
        "INSERT INTO items(stage, key, status, state, attempts, error, error_code, created, updated, report,"
        " run)"
        " VALUES (?1, ?2, 'failed', coalesce(?3, '{}'), ?4, ?5, ?6, ?7, ?7, ?8, ?9)"
        " ON CONFLICT (stage, key) DO UPDATE SET status = 'failed', state = coalesce(?3, items.state),"
        " attempts = ?4, error = ?5, error_code = ?6, updated = ?7, report = ?8, run = ?9",
    /* a failed repair: the item stays done (its target object exists), keeps its verify mark */
    [ST_REPAIR_FAILED] = "UPDATE items SET status = 'done', state = coalesce(?3, state), attempts = ?4,"
                         " error = ?5, error_code = ?6, updated = ?7, report = coalesce(?8, report), run = ?9"
                         " WHERE stage = ?1 AND key = ?2",
    [ST_DOUBT] = "UPDATE items SET error = ?3, error_code = ?4, updated = ?5, report = coalesce(?6, report),"
                 " run = ?7 WHERE stage = ?1 AND key = ?2",
    [ST_VERIFY] = "UPDATE items SET verify = ?3, run = ?4 WHERE stage = ?1 AND key = ?2",
    [ST_MAP] = "INSERT INTO idmap(stage, key, kind, old_id, new_id, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
               " ON CONFLICT (kind, old_id) DO UPDATE SET new_id = ?5"
               " WHERE idmap.stage = ?1 AND idmap.key = ?2",
    [ST_MAP_OWNER] = "SELECT stage, key, new_id FROM idmap WHERE kind = ?1 AND old_id = ?2",
    [ST_LOOKUP] = "SELECT new_id FROM idmap WHERE kind = ?1 AND old_id = ?2",
    [ST_RUN_BEGIN] = "INSERT INTO runs(mode, started) VALUES (?1, ?2)",
    [ST_RUN_END] = "UPDATE runs SET ended = ?2, status = ?3, summary = ?4 WHERE id = ?1",
    [ST_COUNTS_STAGE] = "SELECT status, count(*) FROM items WHERE stage = ?1 GROUP BY status",
    [ST_COUNTS_ALL] = "SELECT status, count(*) FROM items GROUP BY status",
    [ST_FOREACH_STAGE] = SQL_FOREACH_STAGE(ROW_COLS),
    [ST_FOREACH_ALL] = SQL_FOREACH_ALL(ROW_COLS),
    /* no index on run: one would cost about a third of the outcome throughput; the rows of a run are found by
     * scanning the stage's rows in key order (once, at the end of a run, for its report) */
    [ST_FOREACH_RUN_STAGE] = SQL_FOREACH_RUN_STAGE("?3"),
    [ST_FOREACH_RUN_ALL] = SQL_FOREACH_RUN_ALL("?3"),
    [ST_IDS_ALL] = "SELECT " ID_COLS " FROM idmap WHERE (kind, old_id) >= (?1, ?2) ORDER BY kind, old_id"
                   " LIMIT ?3",
    [ST_IDS_STAGE] = "SELECT " ID_COLS " FROM idmap WHERE stage = ?1 AND (key, kind, old_id) >= (?2, ?3, ?4)"
                     " ORDER BY key, kind, old_id LIMIT ?5",
    [ST_IDS_ITEM] = "SELECT " ID_COLS " FROM idmap WHERE stage = ?1 AND key = ?2 ORDER BY kind, old_id",
    [ST_IDS_RANGE] = "SELECT " ID_COLS " FROM idmap WHERE stage = ?1 AND key >= ?2 AND key <= ?3"
                     " ORDER BY key, kind, old_id",
    [ST_STAGE_FIRST] = "SELECT min(stage) FROM items",
    [ST_STAGE_NEXT] = "SELECT min(stage) FROM items WHERE stage > ?1",
    [ST_RUNS] = "SELECT id, mode, started, ended, status, summary FROM runs ORDER BY id DESC LIMIT ?1",
    /* ferry journal copy: rows as they are */
    [ST_COPY_ITEM] = "INSERT INTO items(stage, key, status, step, state, attempts, error, error_code, created,"
                     " updated, report, verify, run) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
    [ST_COPY_ID] = "INSERT INTO idmap(stage, key, kind, old_id, new_id, created) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_COPY_RUN] = "INSERT INTO runs(id, mode, started, ended, status, summary) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_CLEAR_ITEMS] = "DELETE FROM items",
    [ST_CLEAR_IDS] = "DELETE FROM idmap",
    [ST_CLEAR_RUNS] = "DELETE FROM runs",
    [ST_RUNS_SEQ] = "SELECT 1", /* SQLite: INTEGER PRIMARY KEY goes on from the highest id by itself */
};

/* What differs on PostgreSQL (the others are stmt_sql with $N for ?N). BEGIN and COMMIT go through
 * journal_pg.c (a transaction of the SQL service). */
static const char *const stmt_sql_pg[ST_COUNT] = {
    [ST_RUN_BEGIN] = "INSERT INTO runs(mode, started) VALUES (?1, ?2) RETURNING id",
    /* after a copy with explicit ids: the next run gets the next id */
    [ST_RUNS_SEQ] = "SELECT setval(pg_get_serial_sequence('runs', 'id'), coalesce((SELECT max(id) FROM runs), 0) + 1,"
                    " false)",
    [ST_FOREACH_STAGE] = SQL_FOREACH_STAGE_P(ROW_COLS, "?3::text"),
    [ST_FOREACH_ALL] = SQL_FOREACH_ALL_P(ROW_COLS, "?3::text"),
    [ST_FOREACH_RUN_STAGE] = SQL_FOREACH_RUN_STAGE("?3::text"),
    [ST_FOREACH_RUN_ALL] = SQL_FOREACH_RUN_ALL("?3::text"),
    /* LIMIT NULL: all */
    [ST_RUNS] = "SELECT id, mode, started, ended, status, summary FROM runs ORDER BY id DESC"
                " LIMIT CASE WHEN ?1::bigint < 0 THEN NULL ELSE ?1::bigint END",
};

/* What differs when a version-1 journal is read (read-only opens; a writable open upgrades it first). */
static const char *const stmt_sql_v1[ST_COUNT] = {
    [ST_GET] = SQL_GET(ROW_COLS_V1),
    [ST_GET_FULL] = SQL_GET(ROW_COLS_V1),
    [ST_FOREACH_STAGE] = SQL_FOREACH_STAGE(ROW_COLS_V1),
    [ST_FOREACH_ALL] = SQL_FOREACH_ALL(ROW_COLS_V1),
};

typedef struct jstmt jstmt;

struct ferry_journal {
  sqlite3 *db;
  char *path;
  int readonly;
  int in_group;     /* between group_begin and group_commit */
  int in_tx;        /* the group's transaction is open */
  int64_t pending;  /* outcomes written into the open group since the last commit */
  char *lost;       /* set when a failure rolled the group's transaction back: why (reported at commit) */
  int lock_fd;      /* writers: flock'ed "<path>-lock", so that two runs never share a journal; -1 if none */
  int version;      /* schema version of the file (1 only for a read-only open of an old journal) */
  int64_t run;      /* the run begun with run_begin (0 = none): written into the rows' run column */
  jstmt *st[ST_COUNT];
  ferry__jpg *pg;   /* a PostgreSQL journal (journal_pg.c), or NULL: SQLite */
  ferry_error pgerr; /* PostgreSQL: the last failure of a statement */
  int64_t changes, last_id; /* PostgreSQL: rows written by the last statement; id RETURNING-ed */
};

/* ---- small helpers ------------------------------------------------------------------------------------ */

static const char *const status_names[] = {"none", "intent", "done", "skipped", "failed"};

const char *ferry__jstatus_name(ferry_jstatus s) {
  return (unsigned)s < 5 ? status_names[s] : "unknown";
}

static ferry_jstatus status_parse(const char *s) {
  for (int i = 1; s && i < 5; i++)
    if (!strcmp(s, status_names[i])) return (ferry_jstatus)i;
  return FERRY_J_NONE;
}

void ferry__jrow_clear(ferry_jrow *row) {
  if (!row) return;
  free(row->step);
  free(row->error);
  json_decref(row->state);
  json_decref(row->report);
  json_decref(row->verify);
  json_decref(row->ids);
  memset(row, 0, sizeof *row);
}

static int64_t now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A hint for the user for the SQLite errors that have a likely cause. */
static const char *hint(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED: return " (the journal is locked by another process: is another ferry run using it?)";
    case SQLITE_FULL: return " (the disk is full: free space and run again; nothing confirmed is lost)";
    case SQLITE_READONLY: return " (the file or its directory is read-only)";
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB: return " (the file is not a ferry journal, or it is damaged)";
    case SQLITE_CANTOPEN: return " (check that the directory exists and is writable)";
    default: return "";
  }
}

/* Fills err with "journal <path>: <op>: <sqlite message><hint>", SQLite codes in the detail; for a
 * PostgreSQL journal "journal <url>: <op>: <the SQL service's message>", the server's code in the detail. */
static int db_fail(ferry_journal *j, ferry_error *err, int rc, const char *fmt, ...) FERRY_PRINTF(4, 5);
static int db_fail(ferry_journal *j, ferry_error *err, int rc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *op = ferry_vasprintf(fmt, ap);
  va_end(ap);
  if (j->pg) {
    const char *pm = j->pgerr.message ? j->pgerr.message : "failed";
    size_t pl = strlen(j->path); /* the SQL service's message starts with the endpoint: named once */
    if (!strncmp(pm, j->path, pl) && !strncmp(pm + pl, ": ", 2)) pm += pl + 2;
    char *m = ferry_strdup(pm);
    char *d = j->pgerr.detail ? ferry_strdup(j->pgerr.detail) : NULL;
    ferry_error_set(err, FERRY_EIO, "journal %s: %s: %s", j->path, op, m);
    if (d) ferry_error_set_detail(err, "%s", d);
    free(m);
    free(d);
    free(op);
    return FERRY_EIO;
  }
  const char *msg = j->db && sqlite3_errcode(j->db) == rc ? sqlite3_errmsg(j->db) : sqlite3_errstr(rc);
  ferry_error_set(err, FERRY_EIO, "journal %s: %s: %s%s", j->path, op, msg, hint(rc));
  ferry_error_set_detail(err, "SQLite result code %d (%s)", rc, sqlite3_errstr(rc));
  free(op);
  return FERRY_EIO;
}

/* ---- statements: one interface over SQLite's prepared statements and PostgreSQL (journal_pg.c) ----------
 * The statement texts are SQLite's (?N parameters); for PostgreSQL they are the same text with $N, but for
 * the few of stmt_sql_pg. A PostgreSQL statement keeps its parameters as text and runs at its first step,
 * which reads the whole result (at most FOREACH_BATCH rows: every listing is batched); later steps walk it. */
#define JPG_MAXPARAMS 16
struct jstmt {
  sqlite3_stmt *lite;
  char *sql;                   /* PostgreSQL: the text with $N */
  int np;                      /* PostgreSQL: the highest $N of the text */
  char *par[JPG_MAXPARAMS];    /* PostgreSQL: bound values (text), NULL = SQL NULL */
  ferry__jres res;             /* PostgreSQL: the result, after the first step */
  size_t row;
  int ran;
};

static char *pg_text(const char *sql, int *np) {
  ferry_buf b = {0};
  *np = 0;
  for (const char *c = sql; *c; c++) {
    if (*c == '?' && c[1] >= '0' && c[1] <= '9') {
      int n = (int)strtol(c + 1, NULL, 10);
      if (n > *np) *np = n;
      ferry_buf_add(&b, "$");
      continue;
    }
    ferry_buf_addn(&b, c, 1);
  }
  return b.buf;
}

static int stmt_get(ferry_journal *j, int id, jstmt **out, ferry_error *err) {
  if (!j->st[id]) {
    jstmt *st = ferry__xcalloc(1, sizeof *st);
    if (j->pg) {
      st->sql = pg_text(stmt_sql_pg[id] ? stmt_sql_pg[id] : stmt_sql[id], &st->np);
    } else {
      const char *sql = j->version < 2 && stmt_sql_v1[id] ? stmt_sql_v1[id] : stmt_sql[id];
      int rc = sqlite3_prepare_v3(j->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st->lite, NULL);
      if (rc != SQLITE_OK) {
        free(st);
        return db_fail(j, err, rc, "preparing a statement");
      }
    }
    j->st[id] = st;
  }
  *out = j->st[id];
  return 0;
}

static void stmt_free(jstmt *st) {
  if (!st) return;
  sqlite3_finalize(st->lite);
  for (int i = 0; i < JPG_MAXPARAMS; i++) free(st->par[i]);
  ferry__jres_clear(&st->res);
  free(st->sql);
  free(st);
}

static void stmt_done(jstmt *st) {
  if (st->lite) {
    sqlite3_reset(st->lite);
    sqlite3_clear_bindings(st->lite);
    return;
  }
  for (int i = 0; i < JPG_MAXPARAMS; i++) {
    free(st->par[i]);
    st->par[i] = NULL;
  }
  ferry__jres_clear(&st->res);
  st->ran = 0;
  st->row = 0;
}

static void pg_bind(jstmt *st, int i, char *owned) {
  if (i < 1 || i > JPG_MAXPARAMS) {
    free(owned);
    return;
  }
  free(st->par[i - 1]);
  st->par[i - 1] = owned;
}

static void bind_text(jstmt *st, int i, const char *s) {
  if (!st->lite)
    pg_bind(st, i, s ? ferry_strdup(s) : NULL);
  else if (s)
    sqlite3_bind_text(st->lite, i, s, -1, SQLITE_STATIC);
  else
    sqlite3_bind_null(st->lite, i);
}

static void jbind_int64(jstmt *st, int i, int64_t v) {
  if (st->lite)
    sqlite3_bind_int64(st->lite, i, v);
  else
    pg_bind(st, i, ferry_asprintf("%lld", (long long)v));
}

static void jbind_null(jstmt *st, int i) { bind_text(st, i, NULL); }

/* SQLITE_ROW, SQLITE_DONE, or an error code (PostgreSQL: SQLITE_ERROR, the failure in j->pgerr). */
static int jstep(ferry_journal *j, jstmt *st) {
  if (st->lite) return sqlite3_step(st->lite);
  if (st->ran) return ++st->row < st->res.nrows ? SQLITE_ROW : SQLITE_DONE;
  st->ran = 1;
  st->row = 0;
  ferry_error_clear(&j->pgerr);
  int rc = ferry__jpg_exec(j->pg, st->sql, (size_t)st->np, (const char *const *)st->par, &st->res, &j->pgerr);
  if (rc) {
    st->res.nrows = 0;
    return SQLITE_ERROR;
  }
  j->changes = (int64_t)st->res.affected;
  if (st->res.nrows && st->res.ncols == 1 && strstr(st->sql, "RETURNING") && st->res.cells[0])
    j->last_id = strtoll(st->res.cells[0], NULL, 10);
  return st->res.nrows ? SQLITE_ROW : SQLITE_DONE;
}

static const unsigned char *jcol_text(jstmt *st, int i) {
  if (st->lite) return sqlite3_column_text(st->lite, i);
  if (st->row >= st->res.nrows || (size_t)i >= st->res.ncols) return NULL;
  return (const unsigned char *)st->res.cells[st->row * st->res.ncols + (size_t)i];
}

static int64_t jcol_int64(jstmt *st, int i) {
  if (st->lite) return sqlite3_column_int64(st->lite, i);
  const unsigned char *t = jcol_text(st, i);
  return t ? strtoll((const char *)t, NULL, 10) : 0;
}

static int jcol_bytes(jstmt *st, int i) {
  if (st->lite) return sqlite3_column_bytes(st->lite, i);
  const unsigned char *t = jcol_text(st, i);
  return t ? (int)strlen((const char *)t) : 0;
}

static int jcol_type(jstmt *st, int i) {
  if (st->lite) return sqlite3_column_type(st->lite, i);
  return jcol_text(st, i) ? SQLITE_TEXT : SQLITE_NULL;
}

static int64_t jchanges(ferry_journal *j) { return j->pg ? j->changes : sqlite3_changes(j->db); }
static int jautocommit(ferry_journal *j) { return j->pg ? !ferry__jpg_in_tx(j->pg) : sqlite3_get_autocommit(j->db); }
static void jrollback(ferry_journal *j) {
  if (j->pg)
    ferry__jpg_rollback(j->pg);
  else
    sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
}

/* Runs a statement that returns no rows. */
static int exec_stmt(ferry_journal *j, jstmt *st) {
  int rc = jstep(j, st);
  stmt_done(st);
  return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int writable(ferry_journal *j, const char *op, ferry_error *err) {
  if (!j->readonly) return 0;
  return ferry_error_set(err, FERRY_EINVAL, "journal %s: cannot %s: the journal was opened read-only",
                         j->path, op);
}

/* A JSON object as stored text, with every registered secret redacted. NULL state -> NULL (keep stored). */
static int string_has_secret(const char *s) {
  char *r = ferry_redact(s);
  int changed = strcmp(r, s) != 0;
  free(r);
  return changed;
}

static int json_has_secret(json_t *v) {
  if (json_is_string(v)) return string_has_secret(json_string_value(v));
  if (json_is_object(v)) {
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) if (json_has_secret(x)) return 1;
  } else if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) if (json_has_secret(x)) return 1;
  }
  return 0;
}

static int state_text(ferry_journal *j, json_t *state, const char *what, char **out, ferry_error *err) {
  *out = NULL;
  if (!state) return 0;
  if (!json_is_object(state))
    return ferry_error_set(err, FERRY_EINVAL, "journal %s: %s: the state must be a JSON object", j->path,
                           what);
  json_t *clean = NULL;
  if (json_has_secret(state)) { /* rare: redact a copy, never the caller's object */
    clean = json_deep_copy(state);
    ferry__redact_json(clean);
  }
  *out = json_dumps(clean ? clean : state, JSON_COMPACT | JSON_ENCODE_ANY);
  json_decref(clean);
  if (!*out)
    return ferry_error_set(err, FERRY_EINVAL, "journal %s: %s: the state cannot be encoded as JSON", j->path,
                           what);
  return 0;
}

/* ---- transactions ---------------------------------------------------------------------------------------
 * Outside a group every statement is its own (committed) transaction. Inside a group the first write opens
 * the group's transaction (BEGIN IMMEDIATE). */

static int tx_open(ferry_journal *j, ferry_error *err) {
  if (!j->in_group || j->in_tx) return 0;
  if (j->pg) {
    ferry_error_clear(&j->pgerr);
    if (ferry__jpg_begin(j->pg, &j->pgerr)) return db_fail(j, err, SQLITE_ERROR, "starting a transaction");
    j->in_tx = 1;
    return 0;
  }
  jstmt *st = NULL;
  int rc = stmt_get(j, ST_BEGIN, &st, err);
  if (rc) return rc;
  rc = exec_stmt(j, st);
  if (rc != SQLITE_OK) return db_fail(j, err, rc, "starting a transaction");
  j->in_tx = 1;
  return 0;
}

/* After a failed write inside the group: if SQLite rolled the transaction back, the group's outcomes are
 * gone; remember why so that group_commit reports it. */
static void tx_check_lost(ferry_journal *j, const ferry_error *err) {
  if (!j->in_tx || !jautocommit(j)) return;
  j->in_tx = 0;
  if (j->pending && !j->lost)
    j->lost = ferry_asprintf("%lld outcome(s) recorded in this group were rolled back: %s",
                              (long long)j->pending, err && err->message ? err->message : "write failed");
  j->pending = 0;
}

static int tx_commit(ferry_journal *j, ferry_error *err) {
  if (!j->in_tx) return 0;
  jstmt *st = NULL;
  int rc = 0;
  if (j->pg) {
    ferry_error_clear(&j->pgerr);
    rc = ferry__jpg_commit(j->pg, &j->pgerr) ? SQLITE_ERROR : SQLITE_OK;
  } else {
    if ((rc = stmt_get(j, ST_COMMIT, &st, err))) return rc;
    rc = exec_stmt(j, st);
  }
  if (rc != SQLITE_OK) {
    db_fail(j, err, rc, "committing %lld recorded outcome(s)", (long long)j->pending);
    if (!jautocommit(j)) jrollback(j);
    j->in_tx = 0;
    if (j->pending && !j->lost)
      j->lost = ferry_asprintf("%lld outcome(s) recorded in this group were rolled back: %s",
                                (long long)j->pending, err && err->message ? err->message : "commit failed");
    j->pending = 0;
    return FERRY_EIO;
  }
  j->in_tx = 0;
  j->pending = 0;
  return 0;
}

/* Runs a prepared write statement (bindings done). now = 1: committed before return. */
static int write_stmt(ferry_journal *j, jstmt *st, int now, ferry_error *err, const char *fmt, ...)
    FERRY_PRINTF(5, 6);
static int write_stmt(ferry_journal *j, jstmt *st, int now, ferry_error *err, const char *fmt, ...) {
  int rc = tx_open(j, err);
  if (rc) {
    stmt_done(st);
    return rc;
  }
  rc = exec_stmt(j, st);
  if (rc != SQLITE_OK) {
    va_list ap;
    va_start(ap, fmt);
    char *op = ferry_vasprintf(fmt, ap);
    va_end(ap);
    db_fail(j, err, rc, "%s", op);
    free(op);
    tx_check_lost(j, err);
    return FERRY_EIO;
  }
  if (j->in_tx) j->pending++;
  if (now) return tx_commit(j, err);
  return 0;
}

/* ---- open / close -------------------------------------------------------------------------------------- */

static int pragma_int(ferry_journal *j, const char *sql, int64_t *out, ferry_error *err) {
  sqlite3_stmt *st = NULL;
  int rc = sqlite3_prepare_v2(j->db, sql, -1, &st, NULL);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
      *out = sqlite3_column_int64(st, 0);
      rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
      *out = 0;
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(st);
  if (rc != SQLITE_OK) return db_fail(j, err, rc, "reading the file (%s)", sql);
  return 0;
}

static int exec_sql(ferry_journal *j, const char *sql, const char *op, ferry_error *err) {
  int rc = sqlite3_exec(j->db, sql, NULL, NULL, NULL);
  if (rc != SQLITE_OK) return db_fail(j, err, rc, "%s", op);
  return 0;
}

/* Checks (and, when writable and new, creates) the schema. */
static int check_schema(ferry_journal *j, ferry_error *err) {
  int64_t version = 0, app = 0, ntables = 0;
  int rc = 0;
  if (!j->readonly && (rc = exec_sql(j, "BEGIN IMMEDIATE", "locking the journal to check its schema", err)))
    return rc;
  if ((rc = pragma_int(j, "PRAGMA user_version", &version, err)) ||
      (rc = pragma_int(j, "PRAGMA application_id", &app, err)) ||
      (rc = pragma_int(j, "SELECT count(*) FROM sqlite_schema WHERE type = 'table'", &ntables, err)))
    goto out;
  if (app != 0 && app != APPLICATION_ID) {
    rc = ferry_error_set(err, FERRY_EINVAL,
                         "journal %s: not a ferry journal (SQLite application id 0x%llx): use another file",
                         j->path, (unsigned long long)app);
    goto out;
  }
  if (version > SCHEMA_VERSION) {
    rc = ferry_error_set(err, FERRY_EINVAL,
                         "journal %s: schema version %lld is newer than this ferry supports (%d): "
                         "use a newer ferry to read or resume it",
                         j->path, (long long)version, SCHEMA_VERSION);
    goto out;
  }
  if (version == 0) {
    if (ntables > 0) {
      rc = ferry_error_set(err, FERRY_EINVAL,
                           "journal %s: not a ferry journal (an SQLite database with other tables): "
                           "choose another file", j->path);
      goto out;
    }
    if (j->readonly) {
      rc = ferry_error_set(err, FERRY_ENOENT,
                           "journal %s: the journal is empty (nothing has run with it yet)", j->path);
      goto out;
    }
    char *sql = ferry_asprintf("%sPRAGMA user_version = %d; PRAGMA application_id = %d;", schema_sql,
                                SCHEMA_VERSION, APPLICATION_ID);
    rc = exec_sql(j, sql, "creating the journal's tables", err);
    free(sql);
    if (rc) goto out;
    version = SCHEMA_VERSION;
  }
  int upgraded = 0;
  if (version == 1 && !j->readonly) { /* one transaction: the old file is either untouched or version 2 */
    if ((rc = exec_sql(j, upgrade_v1_sql, "upgrading the journal from schema version 1 to 2", err))) goto out;
    version = 2;
    upgraded = 1;
  }
  j->version = (int)version;
  if (!j->readonly) rc = exec_sql(j, "COMMIT", upgraded ? "upgrading the journal from schema version 1 to 2"
                                                        : "creating the journal's tables", err);
  if (!rc && upgraded) ferry_log_info(NULL, "journal %s: upgraded from schema version 1 to 2", j->path);
out:
  if (rc && !j->readonly && !jautocommit(j)) jrollback(j);
  return rc;
}

/* A new journal file is created with mode 0600: states and errors may describe private data. */
static int precreate(const char *path, ferry_error *err) {
  int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd >= 0) {
    close(fd);
    return 0;
  }
  if (errno == EEXIST) return 0;
  return ferry_error_set(err, FERRY_EIO, "journal %s: cannot create the file: %s", path, strerror(errno));
}

/* One writer per journal: two runs writing the same journal at once would each carry the same items. The
 * lock is an flock() on "<path>-lock" (a separate file: opening and closing another descriptor of the
 * database itself would drop SQLite's own POSIX locks). The kernel releases it when the process dies. */
static int take_lock(const char *path, int *fd_out, ferry_error *err) {
  char *lp = ferry_asprintf("%s-lock", path);
  int fd = open(lp, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    ferry_error_set(err, FERRY_EIO, "journal %s: cannot create its lock file %s: %s", path, lp,
                    strerror(errno));
    free(lp);
    return FERRY_EIO;
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    int e = errno;
    char pid[32] = "";
    ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
    pid[n > 0 ? n : 0] = '\0';
    pid[strcspn(pid, "\n")] = '\0';
    if (e == EWOULDBLOCK)
      ferry_error_set(
          err, FERRY_EIO,
          "journal %s is in use by another ferry run%s%s%s: wait for it to end, or use another journal", path,
          *pid ? " (process " : "", pid, *pid ? ")" : "");
    else
      ferry_error_set(err, FERRY_EIO, "journal %s: cannot lock %s: %s", path, lp, strerror(e));
    close(fd);
    free(lp);
    return FERRY_EIO;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) != n) {
    /* the pid is only informative (for the message above): a failure to write it does not matter */
  }
  free(lp);
  *fd_out = fd;
  return 0;
}

int ferry__journal_is_url(const char *path) { return ferry__jpg_is_url(path); }

static ferry_journal *open_pg(const char *path, int readonly, int lock, ferry_error *err) {
  int version = 0;
  ferry__jpg *pg = ferry__jpg_open_ex(path, readonly, lock, &version, err);
  if (!pg) return NULL;
  ferry_journal *j = ferry__xcalloc(1, sizeof *j);
  j->pg = pg;
  j->path = ferry_strdup(ferry__jpg_endpoint(pg)); /* errors name the journal without its password */
  j->readonly = readonly;
  j->lock_fd = -1;
  j->version = version;
  return j;
}

ferry_journal *ferry__journal_open_worker(const char *path, ferry_error *err) {
  if (!ferry__jpg_is_url(path)) {
    ferry_error_set(err, FERRY_ECONFIG,
                    "journal %s: several workers (ferry run --worker) need a PostgreSQL journal "
                    "(\"journal\": \"postgresql://...\" or --journal URL); an SQLite journal has one run at a time",
                    path && *path ? path : "(none)");
    return NULL;
  }
  return open_pg(path, 0, FERRY__JPG_LOCK_SHARED, err);
}

ferry_journal *ferry__journal_open(const char *path, int readonly, ferry_error *err) {
  if (!path || !*path) {
    ferry_error_set(err, FERRY_EINVAL, "journal: no file name given");
    return NULL;
  }
  if (ferry__jpg_is_url(path))
    return open_pg(path, readonly, readonly ? FERRY__JPG_LOCK_NONE : FERRY__JPG_LOCK_EXCLUSIVE, err);
  struct stat sb;
  if (readonly && stat(path, &sb) != 0) {
    ferry_error_set(err, errno == ENOENT ? FERRY_ENOENT : FERRY_EIO, "journal %s: cannot open it: %s%s", path,
                    strerror(errno), errno == ENOENT ? " (nothing has run yet with this journal?)" : "");
    return NULL;
  }
  int lock_fd = -1;
  if (!readonly && take_lock(path, &lock_fd, err)) return NULL;
  if (!readonly && precreate(path, err)) {
    close(lock_fd);
    return NULL;
  }

  ferry_journal *j = ferry__xcalloc(1, sizeof *j);
  j->path = ferry_strdup(path);
  j->readonly = readonly;
  j->lock_fd = lock_fd;
  int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
              SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
  int rc = sqlite3_open_v2(path, &j->db, flags, NULL);
  if (rc != SQLITE_OK) {
    db_fail(j, err, rc, "cannot open it");
    ferry__journal_close(j);
    return NULL;
  }
  sqlite3_busy_timeout(j->db, BUSY_TIMEOUT_MS);
  sqlite3_extended_result_codes(j->db, 1);
  if (!readonly) {
    sqlite3_stmt *st = NULL;
    rc = sqlite3_prepare_v2(j->db, "PRAGMA journal_mode = WAL", -1, &st, NULL);
    if (rc == SQLITE_OK) rc = sqlite3_step(st);
    const char *mode = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
    int wal = mode && !strcmp(mode, "wal");
    sqlite3_finalize(st);
    if (!wal) {
      if (rc == SQLITE_ROW)
        ferry_error_set(err, FERRY_EIO, "journal %s: cannot switch the file to WAL mode (file system without "
                        "shared memory support?)", path);
      else
        db_fail(j, err, rc, "cannot open it");
      ferry__journal_close(j);
      return NULL;
    }
    if (exec_sql(
            j,
            "PRAGMA synchronous = NORMAL; PRAGMA cache_size = -16384; PRAGMA journal_size_limit = 67108864;"
            "PRAGMA foreign_keys = OFF;",
            "setting up the connection", err)) {
      ferry__journal_close(j);
      return NULL;
    }
  } else if (exec_sql(j, "PRAGMA query_only = ON", "setting up the connection", err)) {
    ferry__journal_close(j);
    return NULL;
  }
  if (check_schema(j, err)) {
    ferry__journal_close(j);
    return NULL;
  }
  return j;
}

void ferry__journal_close(ferry_journal *j) {
  if (!j) return;
  if (j->in_tx) { /* a group left open: keep what was recorded rather than drop it */
    ferry_error e = FERRY_ERROR_INIT;
    if (tx_commit(j, &e)) ferry_log(NULL, FERRY_LOG_ERROR, "%s", e.message);
    ferry_error_clear(&e);
  }
  for (int i = 0; i < ST_COUNT; i++) stmt_free(j->st[i]);
  if (j->db) sqlite3_close(j->db);
  ferry__jpg_close(j->pg);
  ferry_error_clear(&j->pgerr);
  if (j->lock_fd >= 0) close(j->lock_fd); /* the file stays: removing it would race with a new run */
  free(j->lost);
  free(j->path);
  free(j);
}

/* ---- runs ---------------------------------------------------------------------------------------------- */

int ferry__journal_run_begin(ferry_journal *j, const char *mode, int64_t *run_id, ferry_error *err) {
  jstmt *st = NULL;
  int rc = writable(j, "record a run", err);
  if (rc || (rc = stmt_get(j, ST_RUN_BEGIN, &st, err))) return rc;
  bind_text(st, 1, mode ? mode : "run");
  jbind_int64(st, 2, now_ms());
  rc = write_stmt(j, st, 1, err, "recording the start of a run");
  if (!rc) j->run = j->pg ? j->last_id : sqlite3_last_insert_rowid(j->db);
  if (!rc && run_id) *run_id = j->run;
  return rc;
}

int64_t ferry__journal_run_id(const ferry_journal *j) { return j ? j->run : 0; }
int ferry__journal_version(const ferry_journal *j) { return j ? j->version : 0; }

int ferry__journal_run_end(ferry_journal *j, int64_t run_id, int status, const char *summary_json,
                          ferry_error *err) {
  jstmt *st = NULL;
  int rc = writable(j, "record a run", err);
  if (rc) return rc;
  char *summary = NULL;
  if (summary_json) {
    json_error_t jerr;
    json_t *v = json_loads(summary_json, JSON_DECODE_ANY, &jerr);
    if (!v)
      return ferry_error_set(err, FERRY_EINVAL, "journal %s: run %lld summary is not valid JSON: %s", j->path,
                             (long long)run_id, jerr.text);
    ferry__redact_json(v);
    summary = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(v);
  }
  if (!(rc = stmt_get(j, ST_RUN_END, &st, err))) {
    jbind_int64(st, 1, run_id);
    jbind_int64(st, 2, now_ms());
    jbind_int64(st, 3, status);
    bind_text(st, 4, summary);
    rc = write_stmt(j, st, 1, err, "recording the end of run %lld", (long long)run_id);
  }
  if (!rc && run_id == j->run) j->run = 0;
  free(summary);
  return rc;
}

/* ---- items --------------------------------------------------------------------------------------------- */

static char *col_strdup(jstmt *st, int i) {
  const unsigned char *s = jcol_text(st, i);
  return s ? ferry_strdup((const char *)s) : NULL;
}

/* A stored JSON object column, or NULL (NULL column, or text that is not an object: ignored, these columns
 * only describe the item). */
static json_t *col_object(jstmt *st, int i) {
  const char *text = (const char *)jcol_text(st, i);
  if (!text) return NULL;
  json_t *v = json_loadb(text, (size_t)jcol_bytes(st, i), 0, NULL);
  if (v && !json_is_object(v)) {
    json_decref(v);
    v = NULL;
  }
  return v;
}

static void bind_run(ferry_journal *j, jstmt *st, int i) {
  if (j->run)
    jbind_int64(st, i, j->run);
  else
    jbind_null(st, i);
}

/* Fills row from the ROW_COLS columns starting at `c`. */
static int row_from(ferry_journal *j, jstmt *st, int c, const char *stage, const char *key,
                    ferry_jrow *row, ferry_error *err) {
  row->status = status_parse((const char *)jcol_text(st, c));
  row->step = col_strdup(st, c + 1);
  const char *text = (const char *)jcol_text(st, c + 2);
  int len = jcol_bytes(st, c + 2);
  json_error_t jerr;
  row->state = text ? json_loadb(text, (size_t)len, 0, &jerr) : json_object();
  row->attempts = (unsigned)jcol_int64(st, c + 3);
  row->error = col_strdup(st, c + 4);
  row->error_code = (int)jcol_int64(st, c + 5);
  row->created = jcol_int64(st, c + 6);
  row->updated = jcol_int64(st, c + 7);
  row->report = col_object(st, c + 8);
  row->verify = col_object(st, c + 9);
  row->run = jcol_int64(st, c + 10);
  if (!row->state || !json_is_object(row->state) || row->status == FERRY_J_NONE) {
    ferry_error_set(err, FERRY_EIO, "journal %s: item %s/%s: the stored record is damaged (%s)", j->path,
                    stage, key,
                    row->status == FERRY_J_NONE ? "unknown status" : "state is not a JSON object");
    ferry__jrow_clear(row);
    return FERRY_EIO;
  }
  return 0;
}

static int get_row(ferry_journal *j, int id, const char *stage, const char *key, ferry_jrow *row,
                   ferry_error *err) {
  memset(row, 0, sizeof *row);
  jstmt *st = NULL;
  /* inside a group, reads join the group's transaction: no lock/unlock of the file per read */
  int rc = tx_open(j, err);
  if (rc || (rc = stmt_get(j, id, &st, err))) return rc;
  bind_text(st, 1, stage);
  bind_text(st, 2, key);
  rc = jstep(j, st);
  if (rc == SQLITE_ROW) {
    rc = row_from(j, st, 0, stage, key, row, err);
  } else if (rc == SQLITE_DONE) {
    row->status = FERRY_J_NONE;
    row->state = json_object();
    rc = 0;
  } else {
    rc = db_fail(j, err, rc, "reading item %s/%s", stage, key);
  }
  stmt_done(st);
  return rc;
}

int ferry__journal_get(ferry_journal *j, const char *stage, const char *key, ferry_jrow *row,
                      ferry_error *err) {
  return get_row(j, ST_GET, stage, key, row, err);
}

int ferry__journal_get_full(ferry_journal *j, const char *stage, const char *key, ferry_jrow *row,
                           ferry_error *err) {
  return get_row(j, ST_GET_FULL, stage, key, row, err);
}

static int check_item(ferry_journal *j, const char *stage, const char *key, const char *op,
                      ferry_error *err) {
  int rc = writable(j, op, err);
  if (rc) return rc;
  if (!stage || !key)
    return ferry_error_set(err, FERRY_EINVAL, "journal %s: cannot %s: no %s given", j->path, op,
                           stage ? "item key" : "stage");
  return 0;
}

/* The stored text of a report object: NULL for none or an empty object; secrets redacted (in a copy). */
static int report_text(ferry_journal *j, json_t *report, char **out, ferry_error *err) {
  *out = NULL;
  if (!report || (json_is_object(report) && json_object_size(report) == 0)) return 0;
  return state_text(j, report, "report", out, err);
}

int ferry__journal_intent(ferry_journal *j, const char *stage, const char *key, const char *step,
                         json_t *state, unsigned attempts, ferry_error *err) {
  int rc = check_item(j, stage, key, "record an intent", err);
  if (rc) return rc;
  if (!step || !*step)
    return ferry_error_set(err, FERRY_EINVAL, "journal %s: intent of item %s/%s: no step named", j->path,
                           stage, key);
  char *text;
  jstmt *st = NULL;
  if ((rc = state_text(j, state, "intent", &text, err))) return rc;
  if (!(rc = stmt_get(j, ST_INTENT, &st, err))) {
    bind_text(st, 1, stage);
    bind_text(st, 2, key);
    bind_text(st, 3, step);
    bind_text(st, 4, text);
    jbind_int64(st, 5, attempts);
    jbind_int64(st, 6, now_ms());
    bind_run(j, st, 7);
    rc = write_stmt(j, st, 1, err, "recording the intent \"%s\" of item %s/%s", step, stage, key);
  }
  free(text);
  return rc;
}

#define ERROR_DETAIL_MAX 4000

/* The stored error: the user message, then the developer detail (capped), secrets redacted. */
static char *error_text(const ferry_error *cause) {
  ferry_buf sb = {0};
  ferry_buf_add(&sb, cause && cause->message ? cause->message : ferry_strerror(cause ? cause->code : 0));
  if (cause && cause->detail && *cause->detail) {
    size_t n = strlen(cause->detail);
    ferry_buf_add(&sb, "\n");
    ferry_buf_addn(&sb, cause->detail, n > ERROR_DETAIL_MAX ? ERROR_DETAIL_MAX : n);
    if (n > ERROR_DETAIL_MAX) ferry_buf_add(&sb, "...");
  }
  char *error = ferry_redact(sb.buf);
  ferry_buf_free(&sb);
  return error;
}

int ferry__journal_outcome(ferry_journal *j, const char *stage, const char *key, const ferry_joutcome *o,
                          ferry_error *err) {
  int rc = check_item(j, stage, key, "record an outcome", err);
  if (rc) return rc;
  if (!o || (o->status != FERRY_J_DONE && o->status != FERRY_J_SKIPPED && o->status != FERRY_J_FAILED))
    return ferry_error_set(err, FERRY_EINVAL, "journal %s: outcome of item %s/%s: not done, skipped or failed",
                           j->path, stage, key);
  char *text = NULL, *report = NULL, *error = NULL;
  jstmt *st = NULL;
  if ((rc = state_text(j, o->state, "outcome", &text, err)) || (rc = report_text(j, o->report, &report, err)))
    goto out;
  const char *what = o->status == FERRY_J_FAILED ? (o->repair ? "failed (repair)" : "failed")
                                                 : ferry__jstatus_name(o->status);
  if (o->status != FERRY_J_FAILED) {
    if ((rc = stmt_get(j, ST_DONE, &st, err))) goto out;
    bind_text(st, 1, stage);
    bind_text(st, 2, key);
    bind_text(st, 3, ferry__jstatus_name(o->status));
    bind_text(st, 4, text);
    jbind_int64(st, 5, now_ms());
    bind_text(st, 6, report);
    bind_run(j, st, 7);
    if (o->attempts) jbind_int64(st, 8, o->attempts);
  } else {
    error = error_text(o->cause);
    if ((rc = stmt_get(j, o->repair ? ST_REPAIR_FAILED : ST_FAILED, &st, err))) goto out;
    bind_text(st, 1, stage);
    bind_text(st, 2, key);
    bind_text(st, 3, text);
    jbind_int64(st, 4, o->attempts);
    bind_text(st, 5, error);
    jbind_int64(st, 6, o->cause && o->cause->code ? o->cause->code : FERRY_EINTERNAL);
    jbind_int64(st, 7, now_ms());
    bind_text(st, 8, report);
    bind_run(j, st, 9);
  }
  rc = write_stmt(j, st, 0, err, "recording item %s/%s as %s", stage, key, what);
out:
  free(error);
  free(report);
  free(text);
  return rc;
}

int ferry__journal_done(ferry_journal *j, const char *stage, const char *key, json_t *state, int skipped,
                       ferry_error *err) {
  ferry_joutcome o = {.status = skipped ? FERRY_J_SKIPPED : FERRY_J_DONE, .state = state};
  return ferry__journal_outcome(j, stage, key, &o, err);
}

int ferry__journal_failed(ferry_journal *j, const char *stage, const char *key, json_t *state,
                         const ferry_error *cause, unsigned attempts, ferry_error *err) {
  ferry_joutcome o = {.status = FERRY_J_FAILED, .state = state, .cause = cause, .attempts = attempts};
  return ferry__journal_outcome(j, stage, key, &o, err);
}

int ferry__journal_doubt(ferry_journal *j, const char *stage, const char *key, const ferry_error *cause,
                        json_t *report, int *recorded, ferry_error *err) {
  if (recorded) *recorded = 0;
  int rc = check_item(j, stage, key, "record an error", err);
  if (rc) return rc;
  char *rtext = NULL;
  if ((rc = report_text(j, report, &rtext, err))) return rc;
  char *error = error_text(cause);
  jstmt *st = NULL;
  if (!(rc = stmt_get(j, ST_DOUBT, &st, err))) {
    bind_text(st, 1, stage);
    bind_text(st, 2, key);
    bind_text(st, 3, error);
    jbind_int64(st, 4, cause && cause->code ? cause->code : FERRY_EINTERNAL);
    jbind_int64(st, 5, now_ms());
    bind_text(st, 6, rtext);
    bind_run(j, st, 7);
    rc = write_stmt(j, st, 0, err, "recording the error of item %s/%s", stage, key);
    if (!rc && recorded) *recorded = jchanges(j) > 0;
  }
  free(error);
  free(rtext);
  return rc;
}

static int verify_write(ferry_journal *j, const char *stage, const char *key, const char *text, int *found,
                        ferry_error *err) {
  jstmt *st = NULL;
  int rc = stmt_get(j, ST_VERIFY, &st, err);
  if (rc) return rc;
  bind_text(st, 1, stage);
  bind_text(st, 2, key);
  bind_text(st, 3, text);
  bind_run(j, st, 4);
  rc = write_stmt(j, st, 0, err, "recording what verify found for item %s/%s", stage, key);
  if (!rc && found) *found = jchanges(j) > 0;
  return rc;
}

int ferry__journal_verify_mark(ferry_journal *j, const char *stage, const char *key, const char *message,
                              json_t *differences, int *found, ferry_error *err) {
  if (found) *found = 0;
  int rc = check_item(j, stage, key, "record a verify mismatch", err);
  if (rc) return rc;
  json_t *diffs = json_is_array(differences) ? json_deep_copy(differences) : json_array();
  json_t *mark = json_pack("{s:s, s:I, s:I, s:s, s:o}", "result", "mismatch", "at", (json_int_t)now_ms(),
                           "run", (json_int_t)j->run, "message", message ? message : "different on the target",
                           "differences", diffs);
  ferry__redact_json(mark);
  char *text = json_dumps(mark, JSON_COMPACT);
  json_decref(mark);
  rc = verify_write(j, stage, key, text, found, err);
  free(text);
  return rc;
}

int ferry__journal_verify_clear(ferry_journal *j, const char *stage, const char *key, int *found,
                               ferry_error *err) {
  if (found) *found = 0;
  int rc = check_item(j, stage, key, "clear a verify mark", err);
  if (rc) return rc;
  return verify_write(j, stage, key, NULL, found, err);
}

/* ---- id map -------------------------------------------------------------------------------------------- */

int ferry__journal_map_id(ferry_journal *j, const char *stage, const char *key, const char *kind,
                         const char *old_id, const char *new_id, ferry_error *err) {
  int rc = check_item(j, stage, key, "map an id", err);
  if (rc) return rc;
  if (!kind || !old_id || !new_id)
    return ferry_error_set(err, FERRY_EINVAL, "journal %s: id map of item %s/%s: kind, old id and new id are "
                           "required", j->path, stage, key);
  jstmt *st = NULL;
  if ((rc = stmt_get(j, ST_MAP, &st, err))) return rc;
  bind_text(st, 1, stage);
  bind_text(st, 2, key);
  bind_text(st, 3, kind);
  bind_text(st, 4, old_id);
  bind_text(st, 5, new_id);
  jbind_int64(st, 6, now_ms());
  rc = write_stmt(j, st, 0, err, "mapping %s %s -> %s for item %s/%s", kind, old_id, new_id, stage, key);
  if (rc || jchanges(j) > 0) return rc;
  /* Nothing written: another item owns this old id. */
  if ((rc = stmt_get(j, ST_MAP_OWNER, &st, err))) return rc;
  bind_text(st, 1, kind);
  bind_text(st, 2, old_id);
  if (jstep(j, st) == SQLITE_ROW)
    rc = ferry_error_set(
        err, FERRY_ECONFLICT,
        "journal %s: %s %s is already mapped to %s by item %s/%s; item %s/%s cannot map it to %s", j->path,
        kind, old_id, (const char *)jcol_text(st, 2), (const char *)jcol_text(st, 0),
        (const char *)jcol_text(st, 1), stage, key, new_id);
  else
    rc = ferry_error_set(err, FERRY_EINTERNAL, "journal %s: mapping %s %s: nothing was written", j->path,
                         kind, old_id);
  stmt_done(st);
  return rc;
}

char *ferry__journal_lookup_id(ferry_journal *j, const char *kind, const char *old_id, ferry_error *err) {
  jstmt *st = NULL;
  if (!kind || !old_id || stmt_get(j, ST_LOOKUP, &st, err)) return NULL;
  bind_text(st, 1, kind);
  bind_text(st, 2, old_id);
  char *out = NULL;
  int rc = jstep(j, st);
  if (rc == SQLITE_ROW)
    out = col_strdup(st, 0);
  else if (rc != SQLITE_DONE)
    db_fail(j, err, rc, "looking up the new id of %s %s", kind, old_id);
  stmt_done(st);
  return out;
}

/* ---- groups -------------------------------------------------------------------------------------------- */

int ferry__journal_group_begin(ferry_journal *j, ferry_error *err) {
  int rc = writable(j, "group outcomes", err);
  if (rc) return rc;
  if (j->in_group)
    return ferry_error_set(err, FERRY_EINTERNAL, "journal %s: a group of outcomes is already open", j->path);
  j->in_group = 1;
  return 0;
}

int ferry__journal_group_commit(ferry_journal *j, ferry_error *err) {
  int rc = writable(j, "group outcomes", err);
  if (rc) return rc;
  if (!j->in_group)
    return ferry_error_set(err, FERRY_EINTERNAL, "journal %s: no group of outcomes is open", j->path);
  rc = tx_commit(j, err);
  j->in_group = 0;
  if (!rc && j->lost) rc = ferry_error_set(err, FERRY_EIO, "journal %s: %s", j->path, j->lost);
  free(j->lost);
  j->lost = NULL;
  return rc;
}

/* ---- reading ------------------------------------------------------------------------------------------- */

int ferry__journal_counts(ferry_journal *j, const char *stage, int64_t out[5], ferry_error *err) {
  memset(out, 0, 5 * sizeof *out);
  jstmt *st = NULL;
  int rc = stmt_get(j, stage ? ST_COUNTS_STAGE : ST_COUNTS_ALL, &st, err);
  if (rc) return rc;
  if (stage) bind_text(st, 1, stage);
  while ((rc = jstep(j, st)) == SQLITE_ROW) {
    ferry_jstatus s = status_parse((const char *)jcol_text(st, 0));
    int64_t n = jcol_int64(st, 1);
    out[s] += s == FERRY_J_NONE ? 0 : n;
    out[FERRY_J_NONE] += n;
  }
  stmt_done(st);
  if (rc != SQLITE_DONE) return db_fail(j, err, rc, "counting the items of %s", stage ? stage : "all stages");
  return 0;
}

typedef struct frow {
  char *stage, *key;
  ferry_jrow row;
} frow;

/* Items in (stage, key) order, read in batches: see ferry__journal_foreach. run != 0: only the rows that run
 * wrote last. */
/* Attaches to the rows of a batch (ordered by stage, key) their ids: one range query per stage of the batch
 * (index idmap_item), merged by key. */
static int attach_ids(ferry_journal *j, frow *batch, size_t n, ferry_error *err) {
  for (size_t lo = 0; lo < n;) {
    size_t hi = lo;
    while (hi + 1 < n && !strcmp(batch[hi + 1].stage, batch[lo].stage)) hi++;
    for (size_t i = lo; i <= hi; i++) batch[i].row.ids = json_array();
    jstmt *st = NULL;
    int rc = stmt_get(j, ST_IDS_RANGE, &st, err);
    if (rc) return rc;
    bind_text(st, 1, batch[lo].stage);
    bind_text(st, 2, batch[lo].key);
    bind_text(st, 3, batch[hi].key);
    size_t i = lo;
    int src;
    while ((src = jstep(j, st)) == SQLITE_ROW) {
      const char *k = (const char *)jcol_text(st, 4);
      while (i <= hi && strcmp(batch[i].key, k) < 0) i++;
      if (i > hi) break;
      if (strcmp(batch[i].key, k)) continue; /* an item of another run (or status) */
      json_t *id = json_pack("{s:s, s:s, s:s}", "kind", (const char *)jcol_text(st, 0), "old",
                             (const char *)jcol_text(st, 1), "new",
                             (const char *)jcol_text(st, 2));
      json_array_append_new(batch[i].row.ids, id);
    }
    stmt_done(st);
    if (src != SQLITE_DONE && src != SQLITE_ROW)
      return db_fail(j, err, src, "reading the ids of the items of stage %s", batch[lo].stage);
    lo = hi + 1;
  }
  return 0;
}

static int foreach_rows(ferry_journal *j, const ferry_jquery *q,
                        int (*fn)(void *arg, const char *stage, const char *key, const ferry_jrow *row),
                        void *arg, ferry_error *err) {
  /* Read in batches in key order, and call fn with no statement active: fn may call the journal (even write
   * or nest a foreach), and no read snapshot is held for long. */
  const char *stage = q->stage;
  ferry_jstatus status = q->status;
  int64_t run = q->run;
  if (run && j->version < 2) return 0; /* a version-1 journal has no run column: no run wrote any row */
  frow *batch = ferry__xcalloc(FOREACH_BATCH, sizeof *batch);
  char *last_stage = ferry_strdup(stage ? stage : ""), *last_key = ferry_strdup("");
  int first = 1, rc = 0, stop = 0;
  int id = run     ? (stage ? ST_FOREACH_RUN_STAGE : ST_FOREACH_RUN_ALL)
           : stage ? ST_FOREACH_STAGE
                   : ST_FOREACH_ALL;
  while (!rc && !stop) {
    jstmt *st = NULL;
    if ((rc = stmt_get(j, id, &st, err))) break;
    bind_text(st, 1, last_stage);
    bind_text(st, 2, last_key);
    if (status != FERRY_J_NONE) bind_text(st, 3, ferry__jstatus_name(status));
    jbind_int64(st, 4, FOREACH_BATCH);
    if (run) jbind_int64(st, 5, run);
    size_t n = 0, nrows = 0;
    int src;
    while ((src = jstep(j, st)) == SQLITE_ROW) {
      nrows++;
      const char *s = (const char *)jcol_text(st, 0), *k = (const char *)jcol_text(st, 1);
      if (!first && !strcmp(s, last_stage) && !strcmp(k, last_key)) continue; /* seen in the last batch */
      frow *f = &batch[n];
      if ((rc = row_from(j, st, 2, s, k, &f->row, err))) break;
      f->stage = ferry_strdup(s);
      f->key = ferry_strdup(k);
      n++;
    }
    if (!rc && src != SQLITE_DONE && src != SQLITE_ROW)
      rc = db_fail(j, err, src, "listing the items of %s", stage ? stage : "all stages");
    int more = nrows == FOREACH_BATCH; /* LIMIT reached: maybe more rows */
    stmt_done(st);
    first = 0;
    if (n) {
      free(last_stage);
      free(last_key);
      last_stage = ferry_strdup(batch[n - 1].stage);
      last_key = ferry_strdup(batch[n - 1].key);
    }
    if (!rc && n && q->ids) rc = attach_ids(j, batch, n, err);
    for (size_t i = 0; i < n; i++) {
      if (!rc && !stop) stop = fn(arg, batch[i].stage, batch[i].key, &batch[i].row);
      free(batch[i].stage);
      free(batch[i].key);
      ferry__jrow_clear(&batch[i].row);
    }
    if (!more || !n) break;
  }
  free(last_stage);
  free(last_key);
  free(batch);
  return rc;
}

int ferry__journal_foreach(ferry_journal *j, const char *stage, ferry_jstatus status,
                          int (*fn)(void *arg, const char *stage, const char *key, const ferry_jrow *row),
                          void *arg, ferry_error *err) {
  ferry_jquery q = {.stage = stage, .status = status};
  return foreach_rows(j, &q, fn, arg, err);
}

int ferry__journal_foreach_run(ferry_journal *j, int64_t run, const char *stage,
                              int (*fn)(void *arg, const char *stage, const char *key, const ferry_jrow *row),
                              void *arg, ferry_error *err) {
  if (run <= 0) return ferry_error_set(err, FERRY_EINVAL, "journal %s: no run id given", j->path);
  ferry_jquery q = {.stage = stage, .run = run};
  return ferry__journal_foreach_ex(j, &q, fn, arg, err);
}

int ferry__journal_foreach_ex(ferry_journal *j, const ferry_jquery *q,
                             int (*fn)(void *arg, const char *stage, const char *key, const ferry_jrow *row),
                             void *arg, ferry_error *err) {
  if (!q) return ferry_error_set(err, FERRY_EINVAL, "journal %s: no query given", j->path);
  if (q->run < 0) return ferry_error_set(err, FERRY_EINVAL, "journal %s: bad run id %lld", j->path,
                                         (long long)q->run);
  return foreach_rows(j, q, fn, arg, err);
}

/* ---- id map iteration ---------------------------------------------------------------------------------- */

typedef struct idrow {
  char *kind, *old_id, *new_id, *stage, *key;
  int64_t created;
} idrow;

static void idrow_from(jstmt *st, idrow *r) {
  r->kind = col_strdup(st, 0);
  r->old_id = col_strdup(st, 1);
  r->new_id = col_strdup(st, 2);
  r->stage = col_strdup(st, 3);
  r->key = col_strdup(st, 4);
  r->created = jcol_int64(st, 5);
}

static void idrow_clear(idrow *r) {
  free(r->kind);
  free(r->old_id);
  free(r->new_id);
  free(r->stage);
  free(r->key);
  memset(r, 0, sizeof *r);
}

static int idrow_call(const idrow *r, int (*fn)(void *arg, const ferry_jid *id), void *arg) {
  ferry_jid id = {r->kind ? r->kind : "",   r->old_id ? r->old_id : "", r->new_id ? r->new_id : "",
                  r->stage ? r->stage : "", r->key ? r->key : "",       r->created};
  return fn(arg, &id);
}

int ferry__journal_foreach_id(ferry_journal *j, const char *stage, const char *key, const char *kind,
                             int (*fn)(void *arg, const ferry_jid *id), void *arg, ferry_error *err) {
  if (key && !stage)
    return ferry_error_set(err, FERRY_EINVAL, "journal %s: the ids of an item need its stage", j->path);
  int rc = 0, stop = 0;
  if (key) { /* one item: few rows, read at once (index idmap_item), then called */
    jstmt *st = NULL;
    if ((rc = stmt_get(j, ST_IDS_ITEM, &st, err))) return rc;
    bind_text(st, 1, stage);
    bind_text(st, 2, key);
    size_t n = 0, cap = 0;
    idrow *rows = NULL;
    int src;
    while ((src = jstep(j, st)) == SQLITE_ROW) {
      if (kind && strcmp((const char *)jcol_text(st, 0), kind)) continue;
      if (n == cap) {
        cap = cap ? 2 * cap : 8;
        rows = ferry__xrealloc(rows, cap * sizeof *rows);
      }
      idrow_from(st, &rows[n++]);
    }
    stmt_done(st);
    if (src != SQLITE_DONE) rc = db_fail(j, err, src, "reading the ids of item %s/%s", stage, key);
    for (size_t i = 0; i < n; i++) {
      if (!rc && !stop) stop = idrow_call(&rows[i], fn, arg);
      idrow_clear(&rows[i]);
    }
    free(rows);
    return rc;
  }
  /* all ids (order kind, old_id) or those of a stage (order key, kind, old_id), in batches */
  idrow *batch = ferry__xcalloc(FOREACH_BATCH, sizeof *batch);
  idrow last = {.kind = ferry_strdup(kind && !stage ? kind : ""), .old_id = ferry_strdup(""),
                .key = ferry_strdup("")};
  int first = 1;
  while (!rc && !stop) {
    jstmt *st = NULL;
    if ((rc = stmt_get(j, stage ? ST_IDS_STAGE : ST_IDS_ALL, &st, err))) break;
    if (stage) {
      bind_text(st, 1, stage);
      bind_text(st, 2, last.key);
      bind_text(st, 3, last.kind);
      bind_text(st, 4, last.old_id);
      jbind_int64(st, 5, FOREACH_BATCH);
    } else {
      bind_text(st, 1, last.kind);
      bind_text(st, 2, last.old_id);
      jbind_int64(st, 3, FOREACH_BATCH);
    }
    size_t n = 0, nrows = 0;
    int src, past = 0;
    while ((src = jstep(j, st)) == SQLITE_ROW) {
      nrows++;
      const char *k = (const char *)jcol_text(st, 0), *o = (const char *)jcol_text(st, 1);
      const char *ik = (const char *)jcol_text(st, 4);
      if (!first && !strcmp(k, last.kind) && !strcmp(o, last.old_id) && (!stage || !strcmp(ik, last.key)))
        continue; /* seen in the last batch */
      if (kind && !stage && strcmp(k, kind)) { /* ordered by kind: the kind asked for is over */
        past = 1;
        break;
      }
      idrow_from(st, &batch[n++]);
    }
    if (src != SQLITE_DONE && src != SQLITE_ROW)
      rc = db_fail(j, err, src, "listing the id map%s%s", stage ? " of stage " : "", stage ? stage : "");
    int more = nrows == FOREACH_BATCH && !past;
    stmt_done(st);
    first = 0;
    if (n) {
      idrow_clear(&last);
      last.kind = ferry_strdup(batch[n - 1].kind);
      last.old_id = ferry_strdup(batch[n - 1].old_id);
      last.key = ferry_strdup(batch[n - 1].key);
    }
    for (size_t i = 0; i < n; i++) {
      if (!rc && !stop && (!kind || !strcmp(batch[i].kind, kind))) stop = idrow_call(&batch[i], fn, arg);
      idrow_clear(&batch[i]);
    }
    if (!more || !n) break;
  }
  idrow_clear(&last);
  free(batch);
  return rc;
}

char **ferry__journal_stages(ferry_journal *j, ferry_error *err) {
  size_t n = 0, cap = 8;
  char **v = ferry__xcalloc(cap, sizeof *v);
  for (;;) {
    jstmt *st = NULL;
    if (stmt_get(j, n ? ST_STAGE_NEXT : ST_STAGE_FIRST, &st, err)) goto fail;
    if (n) bind_text(st, 1, v[n - 1]);
    int rc = jstep(j, st);
    char *s = rc == SQLITE_ROW ? col_strdup(st, 0) : NULL;
    stmt_done(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
      db_fail(j, err, rc, "listing the stages");
      goto fail;
    }
    if (!s) break;
    if (n + 1 >= cap) {
      cap *= 2;
      v = ferry__xrealloc(v, cap * sizeof *v);
    }
    v[n++] = s;
    v[n] = NULL;
  }
  return v;
fail:
  ferry__strv_free(v);
  return NULL;
}

json_t *ferry__journal_runs(ferry_journal *j, int limit, ferry_error *err) {
  jstmt *st = NULL;
  if (stmt_get(j, ST_RUNS, &st, err)) return NULL;
  jbind_int64(st, 1, limit > 0 ? limit : -1);
  json_t *out = json_array();
  int rc;
  while ((rc = jstep(j, st)) == SQLITE_ROW) {
    json_t *summary = NULL;
    const char *text = (const char *)jcol_text(st, 5);
    if (text) summary = json_loads(text, JSON_DECODE_ANY, NULL);
    json_t *r = json_pack("{s:I, s:s, s:I}", "id", (json_int_t)jcol_int64(st, 0), "mode",
                          (const char *)jcol_text(st, 1), "started",
                          (json_int_t)jcol_int64(st, 2));
    json_object_set_new(r, "ended", jcol_type(st, 3) == SQLITE_NULL
                                        ? json_null() : json_integer(jcol_int64(st, 3)));
    json_object_set_new(r, "status", jcol_type(st, 4) == SQLITE_NULL
                                         ? json_null() : json_integer((int)jcol_int64(st, 4)));
    json_object_set_new(r, "summary", summary ? summary : json_null());
    json_array_append_new(out, r);
  }
  stmt_done(st);
  if (rc != SQLITE_DONE) {
    db_fail(j, err, rc, "listing the runs");
    json_decref(out);
    return NULL;
  }
  return out;
}

/* ---- copy (ferry journal copy) ------------------------------------------------------------------------- */

#define COPY_GROUP 1000

typedef struct copier {
  ferry_journal *to;
  int64_t n, in_group;
  ferry_error *err;
  int rc;
} copier;

static int copy_step(copier *c) { /* a group of COPY_GROUP rows per transaction */
  if (++c->in_group < COPY_GROUP) return 0;
  c->in_group = 0;
  int rc = ferry__journal_group_commit(c->to, c->err);
  if (!rc) rc = ferry__journal_group_begin(c->to, c->err);
  return rc;
}

static char *dump_or_null(json_t *v) { return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL; }

static int copy_item(void *arg, const char *stage, const char *key, const ferry_jrow *row) {
  copier *c = arg;
  ferry_journal *j = c->to;
  jstmt *st = NULL;
  if ((c->rc = stmt_get(j, ST_COPY_ITEM, &st, c->err))) return 1;
  char *state = dump_or_null(row->state), *report = dump_or_null(row->report), *verify = dump_or_null(row->verify);
  bind_text(st, 1, stage);
  bind_text(st, 2, key);
  bind_text(st, 3, ferry__jstatus_name(row->status));
  bind_text(st, 4, row->step);
  bind_text(st, 5, state ? state : "{}");
  jbind_int64(st, 6, row->attempts);
  bind_text(st, 7, row->error);
  if (row->error_code) jbind_int64(st, 8, row->error_code);
  jbind_int64(st, 9, row->created);
  jbind_int64(st, 10, row->updated);
  bind_text(st, 11, report);
  bind_text(st, 12, verify);
  if (row->run) jbind_int64(st, 13, row->run);
  c->rc = write_stmt(j, st, 0, c->err, "copying item %s/%s", stage, key);
  free(state);
  free(report);
  free(verify);
  if (!c->rc) c->n++;
  if (!c->rc) c->rc = copy_step(c);
  return c->rc != 0;
}

static int copy_id(void *arg, const ferry_jid *id) {
  copier *c = arg;
  jstmt *st = NULL;
  if ((c->rc = stmt_get(c->to, ST_COPY_ID, &st, c->err))) return 1;
  bind_text(st, 1, id->stage);
  bind_text(st, 2, id->key);
  bind_text(st, 3, id->kind);
  bind_text(st, 4, id->old_id);
  bind_text(st, 5, id->new_id);
  jbind_int64(st, 6, id->created);
  c->rc = write_stmt(c->to, st, 0, c->err, "copying the mapping %s %s", id->kind, id->old_id);
  if (!c->rc) c->n++;
  if (!c->rc) c->rc = copy_step(c);
  return c->rc != 0;
}

static int first_id(void *arg, const ferry_jid *id) {
  (void)id;
  *(int *)arg = 1;
  return 1;
}

static int run_stmt(ferry_journal *j, int id, const char *what, ferry_error *err) {
  jstmt *st = NULL;
  int rc = stmt_get(j, id, &st, err);
  if (!rc) rc = write_stmt(j, st, 0, err, "%s", what);
  return rc;
}

int ferry__journal_copy(const char *from, const char *to, int replace, int64_t counts[3], ferry_error *err) {
  if (counts) counts[0] = counts[1] = counts[2] = 0;
  if (!from || !to) return ferry_error_set(err, FERRY_EINVAL, "journal copy: FROM and TO are both needed");
  if (!strcmp(from, to))
    return ferry_error_set(err, FERRY_EINVAL, "journal copy: FROM and TO are the same journal (%s)", from);
  ferry_journal *src = ferry__journal_open(from, 1, err);
  if (!src) return err && err->code ? err->code : FERRY_EIO;
  ferry_journal *dst = ferry__journal_open(to, 0, err);
  if (!dst) {
    ferry__journal_close(src);
    return err && err->code ? err->code : FERRY_EIO;
  }
  int rc = 0;
  int64_t n[5] = {0};
  int has_id = 0;
  json_t *runs = NULL;
  if (!replace) {
    json_t *r = NULL;
    if ((rc = ferry__journal_counts(dst, NULL, n, err)) ||
        (rc = ferry__journal_foreach_id(dst, NULL, NULL, NULL, first_id, &has_id, err)))
      goto out;
    if (!(r = ferry__journal_runs(dst, 1, err))) {
      rc = FERRY_EIO;
      goto out;
    }
    size_t nr = json_array_size(r);
    json_decref(r);
    if (n[FERRY_J_NONE] || has_id || nr) {
      rc = ferry_error_set(err, FERRY_ECONFLICT,
                           "journal copy: the target journal %s is not empty (%lld items%s%s): copy into a new "
                           "journal, or give --replace to delete what it holds first", dst->path,
                           (long long)n[FERRY_J_NONE], has_id ? ", id mappings" : "", nr ? ", runs" : "");
      goto out;
    }
  }
  copier c = {.to = dst, .err = err};
  if ((rc = ferry__journal_group_begin(dst, err))) goto out;
  if (replace && ((rc = run_stmt(dst, ST_CLEAR_ITEMS, "emptying the target (items)", err)) ||
                  (rc = run_stmt(dst, ST_CLEAR_IDS, "emptying the target (id map)", err)) ||
                  (rc = run_stmt(dst, ST_CLEAR_RUNS, "emptying the target (runs)", err))))
    goto group;
  ferry_jquery q = {0};
  rc = ferry__journal_foreach_ex(src, &q, copy_item, &c, err);
  if (!rc) rc = c.rc;
  if (counts) counts[0] = c.n;
  c.n = 0;
  if (!rc) rc = ferry__journal_foreach_id(src, NULL, NULL, NULL, copy_id, &c, err);
  if (!rc) rc = c.rc;
  if (counts) counts[1] = c.n;
  if (!rc && !(runs = ferry__journal_runs(src, 0, err))) rc = FERRY_EIO;
  for (size_t i = json_array_size(runs); !rc && i-- > 0;) { /* oldest first */
    json_t *r = json_array_get(runs, i);
    jstmt *st = NULL;
    if ((rc = stmt_get(dst, ST_COPY_RUN, &st, err))) break;
    json_t *e = json_object_get(r, "ended"), *s = json_object_get(r, "status"), *sum = json_object_get(r, "summary");
    char *summary = json_is_null(sum) ? NULL : dump_or_null(sum);
    jbind_int64(st, 1, json_integer_value(json_object_get(r, "id")));
    bind_text(st, 2, json_string_value(json_object_get(r, "mode")));
    jbind_int64(st, 3, json_integer_value(json_object_get(r, "started")));
    if (json_is_integer(e)) jbind_int64(st, 4, json_integer_value(e));
    if (json_is_integer(s)) jbind_int64(st, 5, json_integer_value(s));
    bind_text(st, 6, summary);
    rc = write_stmt(dst, st, 0, err, "copying run %lld", (long long)json_integer_value(json_object_get(r, "id")));
    free(summary);
    if (!rc && counts) counts[2]++;
  }
group:;
  int crc = ferry__journal_group_commit(dst, rc ? NULL : err);
  if (!rc) rc = crc;
  if (!rc) {
    jstmt *st = NULL;
    if (!(rc = stmt_get(dst, ST_RUNS_SEQ, &st, err)) && (rc = exec_stmt(dst, st)) != SQLITE_OK)
      rc = db_fail(dst, err, rc, "setting the next run id");
  }
out:
  json_decref(runs);
  ferry__journal_close(dst);
  ferry__journal_close(src);
  return rc;
}
