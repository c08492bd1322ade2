/* pgsql sink: record items (batches of one table) into PostgreSQL tables.
 *
 * Per target table, before its first row: read the target's columns, types and primary key; create the
 * table when it is missing (create_tables), add or refuse missing columns (missing_columns), refuse
 * incompatible column types (types.c), a missing primary key, or NOT NULL columns the source cannot fill.
 * A refused table fails each of its batches with the same message; nothing of it is written.
 *
 * Per batch (one item), in one transaction on one connection of the pool:
 *   BEGIN; SET LOCAL ...; CREATE TEMP TABLE IF NOT EXISTS ferry_stage_<h> (...) ON COMMIT DELETE ROWS
 *   when no target row lies in the batch's key range: COPY straight into the table (a unique violation
 *     rolls back and takes the staging path);
 *   else COPY into the staging table, then (conflict "fail") look for keys whose target row differs, and
 *     INSERT ... SELECT ... ON CONFLICT (pk) DO NOTHING | DO UPDATE ... WHERE the row differs;
 *   COMMIT. The intent "write" is journaled before BEGIN; the task completes after COMMIT. Re-doing a batch
 *   is harmless (identical rows are neither conflicts nor rewritten), so an in-doubt batch is simply redone.
 * Batches of a table whose item says "after": [parents] wait until no batch of those tables is in flight,
 *   so that rows are written parents first even though batches run in parallel.
 * plan: the same checks, and per batch how many rows would be inserted, skipped, overwritten or conflict.
 * verify: per batch, the target rows of its keys compared column by column with the batch's values (cast
 *   to the target's types), naming missing and differing keys.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "pgsql.h"

enum { TT_NEW, TT_PREPARING, TT_READY, TT_REFUSED };
enum { POLICY_SKIP, POLICY_OVERWRITE, POLICY_FAIL };

typedef struct job job;

typedef struct sconn {
  ferry_pg *pg;
  int busy;
} sconn;

typedef struct tcolumn {
  char *name, *type;
  int notnull, hasdef, pkpos; /* pkpos: 1-based position in the primary key, 0 = not in it */
} tcolumn;

typedef struct ttable {
  struct ttable *next;
  char *sig;            /* identity: source table, columns, types, key columns */
  char *src_name, *name, *qname;
  int state;
  ferry_error err;
  job *waiters;
  /* the target as read */
  int exists;
  char relkind;
  tcolumn *tc;
  size_t ntc;
  /* per item column */
  size_t ncols;
  char **icol;          /* source column names */
  char **stype;         /* source types or NULL */
  char **tcol;          /* target column or NULL when left out */
  char **ttype;         /* target type (text for left-out columns, for staging) */
  int *present;         /* the target has (or, after DDL, will have) the column */
  int dropped;
  /* target primary key, as item column indices */
  size_t nkeys;
  size_t *kidx;
  /* what preparing did or would do */
  json_t *actions;
  pgsql_sb ddl;
  char **checks;        /* types to check with to_regtype before the DDL */
  size_t nchecks, ichk;
  /* SQL pieces */
  char *stage, *stage_cols_ddl, *ins_cols, *sel_cols;
} ttable;

typedef struct dep {
  struct dep *next;
  char *table;
  int inflight;
} dep;

struct job {
  job *next;
  pgsql_sink *k;
  ferry_task *task;
  const ferry_item *it;
  ttable *tt;
  dep *d;
  sconn *conn;
  const char *data;
  size_t len;
  char *owned;
  int64_t rows;
  int step, direct_failed;
  ferry_error err;      /* failure to report after ROLLBACK */
  int64_t inserted, updated;
  int policy;           /* the sink's conflict policy, or overwrite when the task repairs the batch */
};

struct pgsql_sink {
  pgsql_ctx *c;
  ferry_instance *ins;
  ferry_mode mode;
  int policy;
  sconn *conns;
  size_t nconns;
  ttable *tables;
  dep *deps;
  job *waiting;
  char *sets;
  int rechecking, recheck_again;
};

static void job_go(job *j);
static void prep_start(job *j);

/* ---- small helpers ----------------------------------------------------------------------------------------- */
static const char *jstr(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

static int sqlstate_is(const ferry_error *err, const char *st) {
  return err && err->detail && !strncmp(err->detail, "SQLSTATE ", 9) && !strncmp(err->detail + 9, st, 5);
}

static dep *dep_get(pgsql_sink *k, const char *table) {
  for (dep *d = k->deps; d; d = d->next)
    if (!strcmp(d->table, table)) return d;
  dep *d = pgsql_xcalloc(1, sizeof *d);
  d->table = pgsql_xstrdup(table);
  d->next = k->deps;
  k->deps = d;
  return d;
}

static int after_busy(job *j) {
  json_t *after = json_object_get(j->it->body, "after");
  size_t i;
  json_t *v;
  json_array_foreach(after, i, v) {
    if (!json_is_string(v)) continue;
    for (dep *d = j->k->deps; d; d = d->next)
      if (d->inflight > 0 && !strcmp(d->table, json_string_value(v))) return 1;
  }
  return 0;
}

static sconn *conn_acquire(pgsql_sink *k, ferry_error *err) {
  for (size_t i = 0; i < k->nconns; i++) {
    sconn *s = &k->conns[i];
    if (s->busy) continue;
    if (!s->pg) {
      s->pg = ferry_pg_new(k->ins, k->c->dsn, err);
      if (!s->pg) {
        ferry_error_prefix(err, "pgsql sink: option \"dsn\"");
        return NULL;
      }
    }
    s->busy = 1;
    return s;
  }
  /* more tasks than the pool: grow it (the core keeps at most `concurrency` tasks in the sink) */
  k->conns = pgsql_xrealloc(k->conns, (k->nconns + 1) * sizeof(sconn));
  memset(&k->conns[k->nconns], 0, sizeof(sconn));
  k->nconns++;
  return conn_acquire(k, err);
}

/* ---- completing jobs ----------------------------------------------------------------------------------------- */
static void job_free(job *j) {
  ferry_error_clear(&j->err);
  free(j->owned);
  free(j);
}

static void recheck_waiting(pgsql_sink *k) {
  if (k->rechecking) {
    k->recheck_again = 1;
    return;
  }
  k->rechecking = 1;
  do {
    k->recheck_again = 0;
    job **pp = &k->waiting;
    while (*pp) {
      job *j = *pp;
      if (after_busy(j)) {
        pp = &j->next;
        continue;
      }
      *pp = j->next;
      j->next = NULL;
      job_go(j);
      pp = &k->waiting; /* the list may have changed */
    }
  } while (k->recheck_again);
  k->rechecking = 0;
}

static void job_end(job *j) {
  pgsql_sink *k = j->k;
  if (j->conn) j->conn->busy = 0;
  j->d->inflight--;
  job_free(j);
  recheck_waiting(k);
}

static void job_done(job *j, unsigned flags) {
  ferry_task_done(j->task, flags);
  job_end(j);
}

static void job_fail(job *j, const ferry_error *err) {
  ferry_task_fail(j->task, err);
  job_end(j);
}

static void job_failf(job *j, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
static void job_failf(job *j, int code, const char *fmt, ...) {
  ferry_error e = FERRY_ERROR_INIT;
  va_list ap;
  va_start(ap, fmt);
  ferry_error_setv(&e, code, fmt, ap);
  va_end(ap);
  job_fail(j, &e);
  ferry_error_clear(&e);
}

/* A failed query of a job: "<table>: <doing>: <service message>", the detail kept. */
static void job_fail_q(job *j, const char *doing, const ferry_error *err) {
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_copy(&e, err);
  if (!e.code) ferry_error_set(&e, FERRY_EIO, "failed");
  ferry_error_prefix(&e, "pgsql sink: table %s: %s", j->tt ? j->tt->qname : "?", doing);
  job_fail(j, &e);
  ferry_error_clear(&e);
}

/* ---- tables: preparing --------------------------------------------------------------------------------------- */
static void table_free(ttable *t) {
  free(t->sig);
  free(t->src_name);
  free(t->name);
  free(t->qname);
  ferry_error_clear(&t->err);
  for (size_t i = 0; i < t->ntc; i++) {
    free(t->tc[i].name);
    free(t->tc[i].type);
  }
  free(t->tc);
  pgsql_strv_free(t->icol, t->ncols);
  pgsql_strv_free(t->stype, t->ncols);
  pgsql_strv_free(t->tcol, t->ncols);
  pgsql_strv_free(t->ttype, t->ncols);
  free(t->present);
  free(t->kidx);
  json_decref(t->actions);
  pgsql_sb_free(&t->ddl);
  pgsql_strv_free(t->checks, t->nchecks);
  free(t->stage);
  free(t->stage_cols_ddl);
  free(t->ins_cols);
  free(t->sel_cols);
  free(t);
}

static const char *map_column(pgsql_sink *k, const char *table, const char *col, int *dropped) {
  *dropped = 0;
  const char *scopes[] = {table, "*"};
  for (int i = 0; i < 2; i++) {
    json_t *m = json_object_get(k->c->column_map, scopes[i]);
    json_t *v = m ? json_object_get(m, col) : NULL;
    if (!v) continue;
    if (json_is_null(v)) {
      *dropped = 1;
      return NULL;
    }
    return json_string_value(v);
  }
  return col;
}

static ttable *table_get(pgsql_sink *k, const ferry_item *it) {
  const json_t *b = it->body;
  const char *src = jstr(b, "table");
  char *cols = json_dumps(json_object_get(b, "columns"), JSON_COMPACT);
  char *types = json_dumps(json_object_get(b, "types"), JSON_COMPACT | JSON_ENCODE_ANY);
  char *keys = json_dumps(json_object_get(b, "key_columns"), JSON_COMPACT | JSON_ENCODE_ANY);
  char *sig = pgsql_xasprintf("%s\x1f%s\x1f%s\x1f%s", src, cols ? cols : "", types ? types : "",
                              keys ? keys : "");
  free(cols);
  free(types);
  free(keys);
  for (ttable *t = k->tables; t; t = t->next)
    if (!strcmp(t->sig, sig)) {
      free(sig);
      return t;
    }
  ttable *t = pgsql_xcalloc(1, sizeof *t);
  t->sig = sig;
  t->src_name = pgsql_xstrdup(src);
  const char *mapped = jstr(k->c->table_map, src);
  t->name = pgsql_xstrdup(mapped ? mapped : src);
  t->qname = pgsql_qname(k->c->schema, t->name);
  json_t *jc = json_object_get(b, "columns"), *jt = json_object_get(b, "types");
  t->ncols = json_array_size(jc);
  t->icol = pgsql_xcalloc(t->ncols, sizeof(char *));
  t->stype = pgsql_xcalloc(t->ncols, sizeof(char *));
  t->tcol = pgsql_xcalloc(t->ncols, sizeof(char *));
  t->ttype = pgsql_xcalloc(t->ncols, sizeof(char *));
  t->present = pgsql_xcalloc(t->ncols, sizeof(int));
  for (size_t i = 0; i < t->ncols; i++) {
    t->icol[i] = pgsql_xstrdup(json_string_value(json_array_get(jc, i)));
    const json_t *ty = json_array_get(jt, i);
    if (json_is_string(ty)) t->stype[i] = pgsql_xstrdup(json_string_value(ty));
    int dropped;
    const char *tc = map_column(k, src, t->icol[i], &dropped);
    if (dropped) t->dropped = 1;
    else t->tcol[i] = pgsql_xstrdup(tc);
  }
  t->actions = json_array();
  t->next = k->tables;
  k->tables = t;
  return t;
}

static tcolumn *tcol_find(ttable *t, const char *name) {
  for (size_t i = 0; i < t->ntc; i++)
    if (!strcmp(t->tc[i].name, name)) return &t->tc[i];
  return NULL;
}

/* Everything is decided: build the SQL pieces, mark ready, run the job and those that waited. */
static void table_ready(ttable *t) {
  pgsql_sb st = {0}, ic = {0}, sc = {0};
  for (size_t i = 0; i < t->ncols; i++) {
    if (i) pgsql_sb_add(&st, ", ");
    pgsql_sb_addf(&st, "f%zu %s", i + 1, t->tcol[i] ? t->ttype[i] : "text");
    if (!t->tcol[i]) continue;
    if (ic.len) {
      pgsql_sb_add(&ic, ", ");
      pgsql_sb_add(&sc, ", ");
    }
    pgsql_sb_ident(&ic, t->tcol[i]);
    pgsql_sb_addf(&sc, "f%zu", i + 1);
  }
  t->stage_cols_ddl = pgsql_sb_steal(&st);
  t->ins_cols = pgsql_sb_steal(&ic);
  t->sel_cols = pgsql_sb_steal(&sc);
  t->stage = pgsql_xasprintf("ferry_stage_%016llx",
                             (unsigned long long)pgsql_hash(t->stage_cols_ddl, strlen(t->stage_cols_ddl)) ^
                                 pgsql_hash(t->qname, strlen(t->qname)));
  t->state = TT_READY;
}

static void table_settle(ttable *t) {
  job *w = t->waiters;
  t->waiters = NULL;
  while (w) {
    job *next = w->next;
    w->next = NULL;
    job_go(w);
    w = next;
  }
}

static void table_refuse(job *j, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
static void table_refuse(job *j, int code, const char *fmt, ...) {
  ttable *t = j->tt;
  pgsql_sink *k = j->k;
  if (k->mode == FERRY_MODE_PLAN) code = FERRY_EBLOCKED;
  else if (k->mode == FERRY_MODE_VERIFY) code = FERRY_EMISMATCH;
  va_list ap;
  va_start(ap, fmt);
  ferry_error_setv(&t->err, code, fmt, ap);
  va_end(ap);
  t->state = TT_REFUSED;
  ferry_log_error(k->ins, "%s", t->err.message);
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_copy(&e, &t->err);
  job_fail(j, &e);
  ferry_error_clear(&e);
  table_settle(t);
}

/* A transient failure while preparing: the table is not refused; the job fails (and is retried) and the
 * next waiting job prepares again. */
static void prep_transient(job *j, const char *doing, const ferry_error *err) {
  ttable *t = j->tt;
  t->state = TT_NEW;
  pgsql_sb_free(&t->ddl);
  pgsql_strv_free(t->checks, t->nchecks);
  t->checks = NULL;
  t->nchecks = t->ichk = 0;
  json_array_clear(t->actions);
  for (size_t i = 0; i < t->ntc; i++) {
    free(t->tc[i].name);
    free(t->tc[i].type);
  }
  free(t->tc);
  t->tc = NULL;
  t->ntc = 0;
  free(t->kidx);
  t->kidx = NULL;
  t->nkeys = 0;
  job_fail_q(j, doing, err);
  table_settle(t);
}

static void prep_finish(job *j);

static void on_ddl(void *arg, int status, PGresult *res, const ferry_error *err) {
  job *j = arg;
  if (status) {
    if (err->code == FERRY_ETRANSIENT) return prep_transient(j, "changing the table", err);
    return table_refuse(j, err->code, "pgsql sink: table %s: changing the table failed: %s%s%s", j->tt->qname,
                        err->message, err->detail ? " (" : "", err->detail ? err->detail : "");
  }
  prep_finish(j);
}

static void prep_finish(job *j) {
  ttable *t = j->tt;
  pgsql_sink *k = j->k;
  if (t->ddl.len && k->mode == FERRY_MODE_RUN) {
    ferry_error e = FERRY_ERROR_INIT;
    if (ferry_task_intent(j->task, "write", &e) < 0) {
      job_fail(j, &e);
      ferry_error_clear(&e);
      t->state = TT_NEW;
      table_settle(t);
      return;
    }
    char *sql = pgsql_xasprintf("BEGIN; %s; COMMIT", t->ddl.buf);
    pgsql_sb_free(&t->ddl);
    int rc = ferry_pg_query(j->conn->pg, sql, 0, NULL, on_ddl, j);
    free(sql);
    if (rc < 0) job_failf(j, FERRY_EINTERNAL, "pgsql sink: cannot queue a query");
    return;
  }
  pgsql_sb_free(&t->ddl);
  table_ready(t);
  json_t *acts = t->actions;
  if (json_array_size(acts)) {
    size_t i;
    json_t *a;
    json_array_foreach(acts, i, a) ferry_log_info(k->ins, "table %s: %s%s", t->qname,
                                                  k->mode == FERRY_MODE_RUN ? "" : "would ", json_string_value(a));
  }
  job_go(j);
  table_settle(t);
}

static void check_next_type(job *j);

static void on_type_checked(void *arg, int status, PGresult *res, const ferry_error *err) {
  job *j = arg;
  ttable *t = j->tt;
  const char *type = t->checks[t->ichk];
  if (status && err->code == FERRY_ETRANSIENT) {
    prep_transient(j, "checking column types", err);
    return;
  }
  if (status || PQgetisnull(res, 0, 0)) {
    table_refuse(j, FERRY_EINVAL,
                 "pgsql sink: table %s: cannot create column(s) of type \"%s\" on the target: the type does not "
                 "exist there; create the table or column yourself, or use create_tables \"joget\"",
                 t->qname, type);
    return;
  }
  t->ichk++;
  check_next_type(j);
}

static void check_next_type(job *j) {
  ttable *t = j->tt;
  if (t->ichk >= t->nchecks) {
    prep_finish(j);
    return;
  }
  const char *p[] = {t->checks[t->ichk]};
  if (ferry_pg_query(j->conn->pg, "SELECT pg_catalog.to_regtype($1)::text", 1, p, on_type_checked, j) < 0)
    job_failf(j, FERRY_EINTERNAL, "pgsql sink: cannot queue a query");
}

/* Type for a column the sink creates: the source's type when allowed and usable, else Joget's. */
static char *create_type(job *j, size_t i, int joget, int *needs_check, char **base) {
  ttable *t = j->tt;
  *needs_check = 0;
  *base = NULL;
  if (!joget && t->stype[i]) {
    char *b = pgsql_type_base_for_check(t->stype[i]);
    if (b) {
      *needs_check = 1;
      *base = b;
      return pgsql_xstrdup(t->stype[i]);
    }
    return NULL; /* unusable type text: refused by the caller */
  }
  const char *c = t->tcol[i];
  if (!strcmp(c, "id") || !strcmp(c, "createdby") || !strcmp(c, "createdbyname") || !strcmp(c, "modifiedby") ||
      !strcmp(c, "modifiedbyname"))
    return pgsql_xstrdup("character varying(255)");
  if (!strcmp(c, "datecreated") || !strcmp(c, "datemodified")) return pgsql_xstrdup("timestamp without time zone");
  return pgsql_xstrdup("text");
}

static void add_check(ttable *t, char *base) {
  for (size_t i = 0; i < t->nchecks; i++)
    if (!strcmp(t->checks[i], base)) {
      free(base);
      return;
    }
  t->checks = pgsql_xrealloc(t->checks, (t->nchecks + 1) * sizeof(char *));
  t->checks[t->nchecks++] = base;
}

static void prep_missing_table(job *j) {
  ttable *t = j->tt;
  pgsql_sink *k = j->k;
  const char *policy = k->c->create_tables;
  if (!strcmp(policy, "refuse"))
    return table_refuse(j, FERRY_ENOENT, "pgsql sink: table %s does not exist on the target (create_tables is "
                        "\"refuse\"): create it first", t->qname);
  if (k->mode == FERRY_MODE_VERIFY)
    return table_refuse(j, FERRY_EMISMATCH, "pgsql sink: table %s does not exist on the target", t->qname);
  int joget = !strcmp(policy, "joget");
  for (size_t i = 0; i < t->ncols && !joget; i++)
    if (t->tcol[i] && !t->stype[i]) joget = 1; /* the item has no (complete) types: Joget's layout */
  /* key: the item's key columns, else Joget's "id" */
  json_t *keys = json_object_get(j->it->body, "key_columns");
  size_t nk = json_array_size(keys);
  t->kidx = pgsql_xcalloc(nk ? nk : 1, sizeof(size_t));
  t->nkeys = 0;
  for (size_t q = 0; q < nk; q++) {
    const char *kn = json_string_value(json_array_get(keys, q));
    size_t i = 0;
    for (; i < t->ncols; i++)
      if (kn && !strcmp(t->icol[i], kn) && t->tcol[i]) break;
    if (i == t->ncols)
      return table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s: key column \"%s\" of the source is left out "
                          "by column_map or missing: cannot create the table with a primary key", t->qname,
                          kn ? kn : "?");
    t->kidx[t->nkeys++] = i;
  }
  if (!t->nkeys) {
    for (size_t i = 0; i < t->ncols; i++)
      if (t->tcol[i] && !strcmp(t->tcol[i], "id")) t->kidx[t->nkeys++] = i;
  }
  if (!t->nkeys)
    return table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s does not exist and the items name no key column "
                        "(key_columns) nor an \"id\" column: cannot create it with a primary key", t->qname);
  pgsql_sb ddl = {0};
  pgsql_sb_addf(&ddl, "CREATE TABLE IF NOT EXISTS %s (", t->qname);
  int first = 1;
  for (size_t i = 0; i < t->ncols; i++) {
    if (!t->tcol[i]) {
      t->ttype[i] = pgsql_xstrdup("text");
      continue;
    }
    int check;
    char *base;
    char *type = create_type(j, i, joget, &check, &base);
    if (!type) {
      pgsql_sb_free(&ddl);
      return table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s: column \"%s\" has type \"%s\", which ferry "
                          "does not create by itself: create the table on the target first, or use "
                          "create_tables \"joget\"", t->qname, t->icol[i], t->stype[i]);
    }
    if (check) add_check(t, base);
    if (!first) pgsql_sb_add(&ddl, ", ");
    first = 0;
    pgsql_sb_ident(&ddl, t->tcol[i]);
    pgsql_sb_addf(&ddl, " %s", type);
    t->ttype[i] = type;
    t->present[i] = 1;
  }
  pgsql_sb_add(&ddl, ", PRIMARY KEY (");
  for (size_t q = 0; q < t->nkeys; q++) {
    if (q) pgsql_sb_add(&ddl, ", ");
    pgsql_sb_ident(&ddl, t->tcol[t->kidx[q]]);
  }
  pgsql_sb_add(&ddl, "))");
  t->ddl = ddl;
  json_array_append_new(t->actions, json_string(joget ? "create the table with Joget's layout"
                                                      : "create the table with the source's column types"));
  check_next_type(j);
}

static void prep_existing_table(job *j) {
  ttable *t = j->tt;
  pgsql_sink *k = j->k;
  if (t->relkind != 'r' && t->relkind != 'p')
    return table_refuse(j, FERRY_EINVAL, "pgsql sink: %s on the target is not a table (relkind %c)", t->qname,
                        t->relkind);
  pgsql_sb missing = {0};
  for (size_t i = 0; i < t->ncols; i++) {
    if (!t->tcol[i]) {
      t->ttype[i] = pgsql_xstrdup("text");
      continue;
    }
    tcolumn *tc = tcol_find(t, t->tcol[i]);
    if (tc) {
      t->present[i] = 1;
      t->ttype[i] = pgsql_xstrdup(tc->type);
      const char *why;
      if (t->stype[i] && !pgsql_type_compatible(t->stype[i], tc->type, &why)) {
        pgsql_sb_free(&missing);
        return table_refuse(j, FERRY_EINVAL,
                            "pgsql sink: table %s: column \"%s\" is %s on the target but %s on the source: "
                            "incompatible (%s); nothing of this table was written. Change the target column's "
                            "type, or map the column elsewhere (column_map)",
                            t->qname, tc->name, tc->type, t->stype[i], why);
      }
      if (t->stype[i] && pgsql_type_narrower_string(t->stype[i], tc->type))
        ferry_log_warn(k->ins, "table %s: column \"%s\" is %s on the target but %s on the source: a longer value "
                       "fails its batch", t->qname, tc->name, tc->type, t->stype[i]);
      continue;
    }
    pgsql_sb_addf(&missing, "%s\"%s\"", missing.len ? ", " : "", t->tcol[i]);
  }
  if (missing.len && !strcmp(k->c->missing_columns, "refuse")) {
    table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s lacks column(s) %s of the source (missing_columns is "
                 "\"refuse\"); nothing of this table was written. Add them, or leave them out (column_map: null)",
                 t->qname, missing.buf);
    pgsql_sb_free(&missing);
    return;
  }
  if (missing.len && k->mode == FERRY_MODE_VERIFY) {
    table_refuse(j, FERRY_EMISMATCH, "pgsql sink: table %s lacks column(s) %s", t->qname, missing.buf);
    pgsql_sb_free(&missing);
    return;
  }
  /* primary key of the target, in key order, as item columns */
  size_t nk = 0;
  for (size_t q = 0; q < t->ntc; q++)
    if (t->tc[q].pkpos > 0) nk++;
  if (!nk) {
    pgsql_sb_free(&missing);
    return table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s has no primary key on the target: ferry needs one "
                        "to apply its conflict policy; add it", t->qname);
  }
  t->kidx = pgsql_xcalloc(nk, sizeof(size_t));
  t->nkeys = nk;
  for (size_t q = 0; q < t->ntc; q++) {
    tcolumn *tc = &t->tc[q];
    if (tc->pkpos <= 0) continue;
    size_t i = 0;
    for (; i < t->ncols; i++)
      if (t->tcol[i] && !strcmp(t->tcol[i], tc->name)) break;
    if (i == t->ncols || (size_t)tc->pkpos > nk) {
      pgsql_sb_free(&missing);
      return table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s: primary key column \"%s\" of the target gets "
                          "no value from the source; map a source column to it (column_map)", t->qname, tc->name);
    }
    t->kidx[tc->pkpos - 1] = i;
  }
  /* NOT NULL columns without a default the source does not fill */
  for (size_t q = 0; q < t->ntc; q++) {
    tcolumn *tc = &t->tc[q];
    if (!tc->notnull || tc->hasdef) continue;
    size_t i = 0;
    for (; i < t->ncols; i++)
      if (t->tcol[i] && !strcmp(t->tcol[i], tc->name)) break;
    if (i == t->ncols) {
      pgsql_sb_free(&missing);
      return table_refuse(j, FERRY_EINVAL, "pgsql sink: table %s: column \"%s\" is NOT NULL without a default on "
                          "the target and the source has no value for it; give it a default or map a source "
                          "column to it", t->qname, tc->name);
    }
  }
  if (missing.len) {
    pgsql_sb ddl = {0};
    for (size_t i = 0; i < t->ncols; i++) {
      if (!t->tcol[i] || t->present[i]) continue;
      int check;
      char *base;
      char *type = create_type(j, i, !strcmp(k->c->create_tables, "joget"), &check, &base);
      if (!type) type = pgsql_xstrdup("text"); /* a type we cannot create: its text form */
      if (check) add_check(t, base);
      if (ddl.len) pgsql_sb_add(&ddl, "; ");
      pgsql_sb_addf(&ddl, "ALTER TABLE %s ADD COLUMN IF NOT EXISTS ", t->qname);
      pgsql_sb_ident(&ddl, t->tcol[i]);
      pgsql_sb_addf(&ddl, " %s", type);
      free(t->ttype[i]);
      t->ttype[i] = type;
      t->present[i] = 2; /* added */
    }
    t->ddl = ddl;
    char *a = pgsql_xasprintf("add column(s) %s", missing.buf);
    json_array_append_new(t->actions, json_string(a));
    free(a);
  }
  pgsql_sb_free(&missing);
  check_next_type(j);
}

static void on_target_info(void *arg, int status, PGresult *res, const ferry_error *err) {
  job *j = arg;
  ttable *t = j->tt;
  if (status) {
    if (err->code == FERRY_ETRANSIENT) return prep_transient(j, "reading the target table", err);
    return table_refuse(j, err->code, "pgsql sink: table %s: reading the target table failed: %s%s%s", t->qname,
                        err->message, err->detail ? " (" : "", err->detail ? err->detail : "");
  }
  int n = PQntuples(res);
  t->exists = n > 0;
  if (t->exists) {
    t->relkind = PQgetvalue(res, 0, 0)[0];
    t->tc = pgsql_xcalloc((size_t)n, sizeof(tcolumn));
    for (int r = 0; r < n; r++) {
      if (PQgetisnull(res, r, 1)) continue;
      tcolumn *tc = &t->tc[t->ntc++];
      tc->name = pgsql_xstrdup(PQgetvalue(res, r, 1));
      tc->type = pgsql_xstrdup(PQgetvalue(res, r, 2));
      tc->notnull = PQgetvalue(res, r, 3)[0] == 't';
      tc->hasdef = PQgetvalue(res, r, 4)[0] == 't';
      tc->pkpos = PQgetisnull(res, r, 5) ? 0 : atoi(PQgetvalue(res, r, 5));
    }
    prep_existing_table(j);
  } else {
    prep_missing_table(j);
  }
}

static void prep_start(job *j) {
  ttable *t = j->tt;
  t->state = TT_PREPARING;
  const char *p[] = {j->k->c->schema, t->name};
  if (ferry_pg_query(j->conn->pg,
                     "SELECT c.relkind::text, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), "
                     "a.attnotnull, (a.atthasdef OR a.attidentity <> '' OR a.attgenerated <> ''), "
                     "(SELECT k.ord FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(n, ord) WHERE k.n = a.attnum) "
                     "FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                     "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 "
                     "AND NOT a.attisdropped "
                     "LEFT JOIN pg_catalog.pg_index i ON i.indrelid = c.oid AND i.indisprimary "
                     "WHERE n.nspname = $1 AND c.relname = $2 ORDER BY a.attnum",
                     2, p, on_target_info, j) < 0)
    job_failf(j, FERRY_EINTERNAL, "pgsql sink: cannot queue a query");
}

/* ---- the batch's rows ---------------------------------------------------------------------------------------- */
/* Key values (target key order) of one payload line; malloc'd array of nkeys strings. */
static char **line_keys(ttable *t, const char *line, size_t len) {
  char **k = pgsql_xcalloc(t->nkeys, sizeof(char *));
  for (size_t q = 0; q < t->nkeys; q++)
    if (!pgsql_copy_field(line, len, t->kidx[q], &k[q])) k[q] = NULL;
  return k;
}

/* Items with "rows" (JSON arrays) instead of COPY text: converted once. */
static int rows_to_copy(job *j, json_t *rows, ferry_error *err) {
  pgsql_sb sb = {0};
  size_t r;
  json_t *row;
  size_t ncols = json_array_size(json_object_get(j->it->body, "columns"));
  json_array_foreach(rows, r, row) {
    if (!json_is_array(row) || json_array_size(row) != ncols) {
      pgsql_sb_free(&sb);
      return ferry_error_set(err, FERRY_EINVAL, "row %zu is not an array of %zu values (one per column)", r,
                             ncols);
    }
    size_t i;
    json_t *v;
    json_array_foreach(row, i, v) {
      if (i) pgsql_sb_add(&sb, "\t");
      if (json_is_null(v)) {
        pgsql_copy_escape(&sb, NULL, 0);
      } else if (json_is_string(v)) {
        pgsql_copy_escape(&sb, json_string_value(v), json_string_length(v));
      } else if (json_is_true(v) || json_is_false(v)) {
        pgsql_sb_add(&sb, json_is_true(v) ? "t" : "f");
      } else {
        char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
        pgsql_copy_escape(&sb, s, s ? strlen(s) : 0);
        free(s);
      }
    }
    pgsql_sb_add(&sb, "\n");
    j->rows++;
  }
  j->len = sb.len;
  j->owned = pgsql_sb_steal(&sb);
  j->data = j->owned;
  return 0;
}

/* Checks the item's shape; fills data/len/rows. */
static int job_parse(job *j, ferry_error *err) {
  const json_t *b = j->it->body;
  const char *table = jstr(b, "table");
  if (!table || !*table) return ferry_error_set(err, FERRY_EINVAL, "the item has no \"table\"");
  json_t *cols = json_object_get(b, "columns");
  if (!json_is_array(cols) || !json_array_size(cols))
    return ferry_error_set(err, FERRY_EINVAL, "the item has no \"columns\" (array of column names)");
  size_t i;
  json_t *v;
  json_array_foreach(cols, i, v) {
    if (!json_is_string(v) || !*json_string_value(v))
      return ferry_error_set(err, FERRY_EINVAL, "\"columns\"[%zu] is not a column name", i);
  }
  json_t *types = json_object_get(b, "types");
  if (types && (!json_is_array(types) || json_array_size(types) != json_array_size(cols)))
    return ferry_error_set(err, FERRY_EINVAL, "\"types\" must be an array with one type per column");
  json_t *keys = json_object_get(b, "key_columns");
  if (keys && !json_is_array(keys))
    return ferry_error_set(err, FERRY_EINVAL, "\"key_columns\" must be an array of column names");
  json_t *rows = json_object_get(b, "rows");
  const char *format = jstr(b, "format");
  if (rows) {
    if (!json_is_array(rows)) return ferry_error_set(err, FERRY_EINVAL, "\"rows\" must be an array of rows");
    return rows_to_copy(j, rows, err);
  }
  if (format && strcmp(format, "copy-text"))
    return ferry_error_set(err, FERRY_EINVAL, "unknown \"format\" \"%s\" (the sink takes \"copy-text\")", format);
  j->data = j->it->payload;
  j->len = j->it->payload_len;
  size_t pos = 0, len;
  const char *line;
  while (pgsql_copy_next_line(j->data, j->len, &pos, &line, &len)) j->rows++;
  return 0;
}

/* ---- RUN: writing one batch ---------------------------------------------------------------------------------- */
enum { W_BEGIN = 1, W_PROBE, W_DIRECT, W_RETRY, W_STAGE_COPY, W_CHECK, W_INSERT, W_COMMIT, W_ROLLBACK };

static void write_step(void *arg, int status, PGresult *res, const ferry_error *err);

static void run_q(job *j, int step, const char *sql, int np, const char *const *p) {
  j->step = step;
  if (ferry_pg_query(j->conn->pg, sql, np, p, write_step, j) < 0)
    job_failf(j, FERRY_EINTERNAL, "pgsql sink: cannot queue a query");
}

/* Rolls back, then fails the job with j->err. */
static void rollback_fail(job *j) { run_q(j, W_ROLLBACK, "ROLLBACK", 0, NULL); }

static void write_begin(job *j) {
  ttable *t = j->tt;
  pgsql_sb sql = {0};
  pgsql_sb_add(&sql, "BEGIN; ");
  pgsql_sb_add(&sql, j->k->sets);
  if (json_is_true(json_object_get(j->it->body, "defer_constraints")))
    pgsql_sb_add(&sql, "; SET LOCAL session_replication_role TO replica");
  pgsql_sb_addf(&sql, "; CREATE TEMP TABLE IF NOT EXISTS %s (%s) ON COMMIT DELETE ROWS", t->stage, t->stage_cols_ddl);
  run_q(j, W_BEGIN, sql.buf, 0, NULL);
  pgsql_sb_free(&sql);
}

static int write_probe(job *j) {
  ttable *t = j->tt;
  size_t pos = 0, len, lastlen = 0;
  const char *line, *first = NULL, *last = NULL;
  size_t firstlen = 0;
  while (pgsql_copy_next_line(j->data, j->len, &pos, &line, &len)) {
    if (!first) {
      first = line;
      firstlen = len;
    }
    last = line;
    lastlen = len;
  }
  char **fk = line_keys(t, first, firstlen), **lk = line_keys(t, last, lastlen);
  const char **p = pgsql_xcalloc(2 * t->nkeys, sizeof(char *));
  pgsql_sb sql = {0}, tup = {0}, lo = {0}, hi = {0};
  for (size_t q = 0; q < t->nkeys; q++) {
    if (q) {
      pgsql_sb_add(&tup, ", ");
      pgsql_sb_add(&lo, ", ");
      pgsql_sb_add(&hi, ", ");
    }
    pgsql_sb_ident(&tup, t->tcol[t->kidx[q]]);
    pgsql_sb_addf(&lo, "$%zu::%s", q + 1, t->ttype[t->kidx[q]]);
    pgsql_sb_addf(&hi, "$%zu::%s", t->nkeys + q + 1, t->ttype[t->kidx[q]]);
    p[q] = fk[q];
    p[t->nkeys + q] = lk[q];
  }
  const char *o = t->nkeys > 1 ? "(" : "", *c = t->nkeys > 1 ? ")" : "";
  pgsql_sb_addf(&sql, "SELECT EXISTS (SELECT 1 FROM %s WHERE %s%s%s >= %s%s%s AND %s%s%s <= %s%s%s)", t->qname, o,
                tup.buf, c, o, lo.buf, c, o, tup.buf, c, o, hi.buf, c);
  int any_null = 0;
  for (size_t q = 0; q < 2 * t->nkeys; q++) any_null |= !p[q];
  if (!any_null) run_q(j, W_PROBE, sql.buf, (int)(2 * t->nkeys), p); /* a NULL key: the staging path */
  pgsql_sb_free(&sql);
  pgsql_sb_free(&tup);
  pgsql_sb_free(&lo);
  pgsql_sb_free(&hi);
  free(p);
  pgsql_strv_free(fk, t->nkeys);
  pgsql_strv_free(lk, t->nkeys);
  return !any_null;
}

static void write_copy(job *j, int step) {
  ttable *t = j->tt;
  char *sql = step == W_DIRECT ? pgsql_xasprintf("COPY %s (%s) FROM STDIN", t->qname, t->ins_cols)
                               : pgsql_xasprintf("COPY %s FROM STDIN", t->stage);
  j->step = step;
  int rc = ferry_pg_copy_in(j->conn->pg, sql, j->data, j->len, write_step, j);
  free(sql);
  if (rc < 0) job_failf(j, FERRY_EINTERNAL, "pgsql sink: cannot queue a COPY");
}

/* "d.k1 = s.fK1 AND ..." */
static void key_join(pgsql_sb *sb, ttable *t, const char *d, const char *s) {
  for (size_t q = 0; q < t->nkeys; q++) {
    if (q) pgsql_sb_add(sb, " AND ");
    pgsql_sb_addf(sb, "%s.", d);
    pgsql_sb_ident(sb, t->tcol[t->kidx[q]]);
    pgsql_sb_addf(sb, " = %s.f%zu", s, t->kidx[q] + 1);
  }
}

/* "ROW(d.c1, d.c2)::text" over the mapped columns */
static void row_text(pgsql_sb *sb, ttable *t, const char *alias, int target_names) {
  pgsql_sb_add(sb, "ROW(");
  int first = 1;
  for (size_t i = 0; i < t->ncols; i++) {
    if (!t->tcol[i]) continue;
    if (!first) pgsql_sb_add(sb, ", ");
    first = 0;
    pgsql_sb_addf(sb, "%s.", alias);
    if (target_names) pgsql_sb_ident(sb, t->tcol[i]);
    else pgsql_sb_addf(sb, "f%zu", i + 1);
  }
  pgsql_sb_add(sb, ")::text");
}

static void write_check(job *j) {
  ttable *t = j->tt;
  pgsql_sb sql = {0};
  pgsql_sb_add(&sql, "SELECT ");
  for (size_t q = 0; q < t->nkeys; q++) pgsql_sb_addf(&sql, "%ss.f%zu::text", q ? ", " : "", t->kidx[q] + 1);
  pgsql_sb_addf(&sql, ", count(*) OVER () FROM %s s JOIN %s d ON ", t->stage, t->qname);
  key_join(&sql, t, "d", "s");
  pgsql_sb_add(&sql, " WHERE ");
  row_text(&sql, t, "d", 1);
  pgsql_sb_add(&sql, " IS DISTINCT FROM ");
  row_text(&sql, t, "s", 0);
  pgsql_sb_addf(&sql, " LIMIT %lld", (long long)j->k->c->max_keys_reported);
  run_q(j, W_CHECK, sql.buf, 0, NULL);
  pgsql_sb_free(&sql);
}

static void write_insert(job *j) {
  ttable *t = j->tt;
  pgsql_sb sql = {0}, keys = {0}, set = {0};
  for (size_t q = 0; q < t->nkeys; q++) {
    if (q) pgsql_sb_add(&keys, ", ");
    pgsql_sb_ident(&keys, t->tcol[t->kidx[q]]);
  }
  for (size_t i = 0; i < t->ncols; i++) {
    if (!t->tcol[i]) continue;
    int is_key = 0;
    for (size_t q = 0; q < t->nkeys; q++) is_key |= t->kidx[q] == i;
    if (is_key) continue;
    if (set.len) pgsql_sb_add(&set, ", ");
    pgsql_sb_ident(&set, t->tcol[i]);
    pgsql_sb_add(&set, " = EXCLUDED.");
    pgsql_sb_ident(&set, t->tcol[i]);
  }
  pgsql_sb_addf(&sql, "WITH w AS (INSERT INTO %s AS d (%s) SELECT %s FROM %s ON CONFLICT (%s) ", t->qname,
                t->ins_cols, t->sel_cols, t->stage, keys.buf);
  if (j->policy == POLICY_OVERWRITE && set.len) {
    pgsql_sb_addf(&sql, "DO UPDATE SET %s WHERE ", set.buf);
    row_text(&sql, t, "d", 1);
    pgsql_sb_add(&sql, " IS DISTINCT FROM ");
    row_text(&sql, t, "EXCLUDED", 1);
  } else {
    pgsql_sb_add(&sql, "DO NOTHING");
  }
  pgsql_sb_add(&sql, " RETURNING (xmax::text = '0') AS ins) "
                     "SELECT count(*) FILTER (WHERE ins), count(*) FILTER (WHERE NOT ins) FROM w");
  run_q(j, W_INSERT, sql.buf, 0, NULL);
  pgsql_sb_free(&sql);
  pgsql_sb_free(&keys);
  pgsql_sb_free(&set);
}

static void write_done(job *j) {
  json_t *rep = ferry_task_report(j->task), *st = ferry_task_state(j->task);
  int64_t skipped = j->rows - j->inserted - j->updated;
  json_object_set_new(rep, "table", json_string(j->tt->qname));
  json_object_set_new(rep, "rows", json_integer(j->rows));
  json_object_set_new(rep, "inserted", json_integer(j->inserted));
  json_object_set_new(rep, "updated", json_integer(j->updated));
  json_object_set_new(rep, "skipped", json_integer(skipped));
  json_object_set_new(st, "inserted", json_integer(j->inserted));
  json_object_set_new(st, "updated", json_integer(j->updated));
  job_done(j, j->inserted + j->updated == 0 ? FERRY_DONE_SKIPPED : 0);
}

static void write_step(void *arg, int status, PGresult *res, const ferry_error *err) {
  job *j = arg;
  ttable *t = j->tt;
  if (j->step == W_ROLLBACK) { /* whatever ROLLBACK said, report the failure that caused it */
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_move(&e, &j->err);
    job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  if (status) {
    if (j->step == W_DIRECT && status == FERRY_ECONFLICT) { /* a key exists after all: staging path */
      j->direct_failed = 1;
      run_q(j, W_RETRY, "ROLLBACK", 0, NULL);
      return;
    }
    static const char *const doing[] = {"", "opening the transaction", "probing the key range",
                                        "copying the batch", "rolling back", "copying into the staging table",
                                        "looking for conflicts", "inserting the rows", "committing"};
    ferry_error_copy(&j->err, err);
    if (sqlstate_is(err, "23503") && json_array_size(json_object_get(j->it->body, "after"))) {
      /* a parent's batch may still be on its way (retried): try again later */
      j->err.code = FERRY_ETRANSIENT;
    }
    if (j->step == W_BEGIN && sqlstate_is(err, "42501"))
      ferry_error_prefix(&j->err, "defer_constraints needs a superuser (session_replication_role) on the target");
    ferry_error_prefix(&j->err, "pgsql sink: table %s: %s", t->qname, doing[j->step]);
    if (j->step == W_RETRY) { /* ROLLBACK failed: the connection is gone, and the transaction with it */
      ferry_error e = FERRY_ERROR_INIT;
      ferry_error_move(&e, &j->err);
      job_fail(j, &e);
      ferry_error_clear(&e);
      return;
    }
    rollback_fail(j);
    return;
  }
  switch (j->step) {
    case W_BEGIN:
      if (!j->direct_failed && !t->dropped && write_probe(j)) return;
      write_copy(j, W_STAGE_COPY);
      return;
    case W_PROBE:
      if (PQgetvalue(res, 0, 0)[0] == 't') write_copy(j, W_STAGE_COPY);
      else write_copy(j, W_DIRECT);
      return;
    case W_DIRECT:
      j->inserted = j->rows;
      run_q(j, W_COMMIT, "COMMIT", 0, NULL);
      return;
    case W_RETRY:
      write_begin(j);
      return;
    case W_STAGE_COPY:
      if (j->policy == POLICY_FAIL) write_check(j);
      else write_insert(j);
      return;
    case W_CHECK: {
      int n = PQntuples(res);
      if (n == 0) {
        write_insert(j);
        return;
      }
      pgsql_sb keys = {0};
      for (int r = 0; r < n; r++) {
        if (r) pgsql_sb_add(&keys, "; ");
        if (t->nkeys > 1) pgsql_sb_add(&keys, "(");
        for (size_t q = 0; q < t->nkeys; q++)
          pgsql_sb_addf(&keys, "%s%s", q ? ", " : "", PQgetvalue(res, r, (int)q));
        if (t->nkeys > 1) pgsql_sb_add(&keys, ")");
      }
      long long total = atoll(PQgetvalue(res, 0, (int)t->nkeys));
      ferry_error_set(&j->err, FERRY_ECONFLICT,
                      "pgsql sink: table %s: %lld row(s) of this batch exist on the target with other values "
                      "(conflict policy \"fail\"); keys: %s%s. Nothing of this batch was written; use conflict "
                      "\"skip\" or \"overwrite\", or fix the target rows",
                      t->qname, total, keys.buf, total > n ? " ..." : "");
      json_t *rep = ferry_task_report(j->task);
      json_t *arr = json_array();
      for (int r = 0; r < n; r++) json_array_append_new(arr, json_string(PQgetvalue(res, r, 0)));
      json_object_set_new(rep, "conflicting_keys", arr);
      json_object_set_new(rep, "conflicts", json_integer(total));
      pgsql_sb_free(&keys);
      rollback_fail(j);
      return;
    }
    case W_INSERT:
      j->inserted = atoll(PQgetvalue(res, 0, 0));
      j->updated = atoll(PQgetvalue(res, 0, 1));
      run_q(j, W_COMMIT, "COMMIT", 0, NULL);
      return;
    case W_COMMIT:
      if (strcmp(PQcmdStatus(res), "COMMIT")) {
        ferry_error_set(&j->err, FERRY_EIO, "pgsql sink: table %s: the transaction was rolled back (%s)", t->qname,
                        PQcmdStatus(res));
        ferry_error e = FERRY_ERROR_INIT;
        ferry_error_move(&e, &j->err);
        job_fail(j, &e);
        ferry_error_clear(&e);
        return;
      }
      write_done(j);
      return;
  }
}

static void job_write(job *j) {
  json_t *st = ferry_task_state(j->task);
  json_object_set_new(st, "table", json_string(j->tt->qname));
  json_object_set_new(st, "rows", json_integer(j->rows));
  if (j->rows == 0) { /* an empty table: it exists now, nothing else to do */
    json_t *rep = ferry_task_report(j->task);
    json_object_set_new(rep, "table", json_string(j->tt->qname));
    json_object_set_new(rep, "rows", json_integer(0));
    job_done(j, FERRY_DONE_SKIPPED);
    return;
  }
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry_task_intent(j->task, "write", &e) < 0) {
    job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  write_begin(j);
}

/* ---- PLAN and VERIFY: the batch's rows against the target ---------------------------------------------------- */
static void cmp_report(job *j, int nres, PGresult *res);

/* BEGIN, the comparison and COMMIT are queued together; the first error is kept in j->err and the job ends
 * in the COMMIT's callback. */
static void on_cmp(void *arg, int status, PGresult *res, const ferry_error *err) {
  job *j = arg;
  if (status) {
    if (!j->err.code) ferry_error_copy(&j->err, err);
    return;
  }
  if (j->step == 1 && !j->err.code) cmp_report(j, PQntuples(res), res);
  j->step++;
}

static void cmp_report(job *j, int nres, PGresult *res) {
  ttable *t = j->tt;
  pgsql_sink *k = j->k;
  json_t *rep = ferry_task_report(j->task);
  int64_t n_missing = nres ? atoll(PQgetvalue(res, 0, (int)t->nkeys + 2)) : 0;
  int64_t n_differ = nres ? atoll(PQgetvalue(res, 0, (int)t->nkeys + 3)) : 0;
  json_object_set_new(rep, "table", json_string(t->qname));
  json_object_set_new(rep, "rows", json_integer(j->rows));
  pgsql_sb names = {0};
  json_t *diffs = json_array();
  for (int r = 0; r < nres; r++) {
    pgsql_sb key = {0};
    if (t->nkeys > 1) pgsql_sb_add(&key, "(");
    for (size_t q = 0; q < t->nkeys; q++) pgsql_sb_addf(&key, "%s%s", q ? ", " : "", PQgetvalue(res, r, (int)q));
    if (t->nkeys > 1) pgsql_sb_add(&key, ")");
    int missing = PQgetvalue(res, r, (int)t->nkeys)[0] == 't';
    const char *cols = PQgetvalue(res, r, (int)t->nkeys + 1);
    json_t *d = json_pack("{s:s}", "key", key.buf);
    if (missing) json_object_set_new(d, "missing", json_true());
    else json_object_set_new(d, "columns", json_string(cols));
    json_array_append_new(diffs, d);
    pgsql_sb_addf(&names, "%s%s (%s%s)", r ? "; " : "", key.buf, missing ? "missing" : "differs in ",
                  missing ? "" : cols);
    pgsql_sb_free(&key);
  }
  if (k->mode == FERRY_MODE_VERIFY) {
    json_object_set_new(rep, "missing", json_integer(n_missing));
    json_object_set_new(rep, "differing", json_integer(n_differ));
    if (nres) json_object_set_new(rep, "differences", diffs);
    else json_decref(diffs);
    if (nres)
      ferry_error_set(&j->err, FERRY_EMISMATCH,
                      "pgsql sink: table %s: %lld of %lld row(s) missing and %lld differing on the target: %s%s",
                      t->qname, (long long)n_missing, (long long)j->rows, (long long)n_differ, names.buf,
                      n_missing + n_differ > nres ? "; ..." : "");
  } else {
    int64_t existing = j->rows - n_missing; /* approximately: keys found on the target */
    json_object_set_new(rep, "would_insert", json_integer(n_missing));
    json_object_set_new(rep, "would_skip_identical", json_integer(existing - n_differ));
    json_object_set_new(rep, "conflicts", json_integer(n_differ));
    json_t *acts = json_copy(t->actions);
    const char *pol = k->c->conflict;
    char *w = pgsql_xasprintf("insert %lld row(s); %lld identical row(s) already there; %lld row(s) differ (%s)",
                              (long long)n_missing, (long long)(existing - n_differ), (long long)n_differ,
                              k->policy == POLICY_SKIP ? "would be skipped"
                              : k->policy == POLICY_OVERWRITE ? "would be overwritten" : "would fail the batch");
    json_array_append_new(acts, json_string(w));
    free(w);
    json_object_set_new(rep, "would", acts);
    if (n_differ && k->policy == POLICY_FAIL) {
      json_t *keys = json_array();
      size_t i;
      json_t *d;
      json_array_foreach(diffs, i, d) if (!json_object_get(d, "missing")) json_array_append(keys, json_object_get(d, "key"));
      json_object_set_new(rep, "conflicting_keys", keys);
      ferry_error_set(&j->err, FERRY_EBLOCKED,
                      "pgsql sink: table %s: %lld row(s) of this batch exist on the target with other values and "
                      "the conflict policy is \"%s\"", t->qname, (long long)n_differ, pol);
    }
    json_decref(diffs);
  }
  pgsql_sb_free(&names);
}

static void on_cmp_end(void *arg, int status, PGresult *res, const ferry_error *err) {
  job *j = arg;
  if (j->err.code) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_move(&e, &j->err);
    if (e.code != FERRY_EMISMATCH && e.code != FERRY_EBLOCKED)
      ferry_error_prefix(&e, "pgsql sink: table %s: comparing with the target", j->tt->qname);
    job_fail(j, &e);
    ferry_error_clear(&e);
    return;
  }
  if (status) {
    job_fail_q(j, "comparing with the target", err);
    return;
  }
  json_t *rep = ferry_task_report(j->task);
  int nothing = j->k->mode == FERRY_MODE_PLAN && json_integer_value(json_object_get(rep, "would_insert")) == 0 &&
                (j->policy == POLICY_SKIP || json_integer_value(json_object_get(rep, "conflicts")) == 0) &&
                json_array_size(j->tt->actions) == 0;
  job_done(j, nothing ? FERRY_DONE_SKIPPED : 0);
}

static void job_compare(job *j) {
  ttable *t = j->tt;
  pgsql_sink *k = j->k;
  if (j->rows == 0 || (k->mode == FERRY_MODE_PLAN && !t->exists)) {
    json_t *rep = ferry_task_report(j->task);
    json_object_set_new(rep, "table", json_string(t->qname));
    json_object_set_new(rep, "rows", json_integer(j->rows));
    if (k->mode == FERRY_MODE_PLAN) {
      json_t *acts = json_copy(t->actions);
      char *w = pgsql_xasprintf("insert %lld row(s)", (long long)j->rows);
      json_array_append_new(acts, json_string(w));
      free(w);
      json_object_set_new(rep, "would", acts);
    }
    job_done(j, 0);
    return;
  }
  /* one text[] parameter per compared column: the batch's values */
  size_t ncmp = 0;
  size_t *ci = pgsql_xcalloc(t->ncols, sizeof(size_t));
  for (size_t i = 0; i < t->ncols; i++)
    if (t->tcol[i] && t->present[i] == 1) ci[ncmp++] = i;
  pgsql_sb *arr = pgsql_xcalloc(ncmp, sizeof(pgsql_sb));
  for (size_t c = 0; c < ncmp; c++) pgsql_sb_add(&arr[c], "{");
  char **f = pgsql_xcalloc(t->ncols, sizeof(char *));
  size_t pos = 0, len;
  const char *line;
  int64_t r = 0;
  while (pgsql_copy_next_line(j->data, j->len, &pos, &line, &len)) {
    pgsql_copy_fields(line, len, f, t->ncols);
    for (size_t c = 0; c < ncmp; c++) pgsql_sb_array_elem(&arr[c], f[ci[c]], r == 0);
    for (size_t i = 0; i < t->ncols; i++) {
      free(f[i]);
      f[i] = NULL;
    }
    r++;
  }
  free(f);
  const char **p = pgsql_xcalloc(ncmp, sizeof(char *));
  for (size_t c = 0; c < ncmp; c++) {
    pgsql_sb_add(&arr[c], "}");
    p[c] = arr[c].buf;
  }
  /* parameter number of item column i */
  pgsql_sb sql = {0};
  pgsql_sb_add(&sql, "SELECT ");
  for (size_t q = 0; q < t->nkeys; q++) pgsql_sb_addf(&sql, "%ss.f%zu", q ? ", " : "", t->kidx[q] + 1);
  pgsql_sb_add(&sql, ", d.ctid IS NULL, array_to_string(ARRAY[");
  for (size_t c = 0; c < ncmp; c++) {
    size_t i = ci[c];
    pgsql_sb_addf(&sql, "%sCASE WHEN d.", c ? ", " : "");
    pgsql_sb_ident(&sql, t->tcol[i]);
    pgsql_sb_addf(&sql, "::text IS DISTINCT FROM s.f%zu::%s::text THEN ", i + 1, t->ttype[i]);
    pgsql_sb_literal(&sql, t->tcol[i]);
    pgsql_sb_add(&sql, " END");
  }
  pgsql_sb_add(&sql, "]::text[], ', '), count(*) FILTER (WHERE d.ctid IS NULL) OVER (), "
                     "count(*) FILTER (WHERE d.ctid IS NOT NULL) OVER () FROM unnest(");
  for (size_t c = 0; c < ncmp; c++) pgsql_sb_addf(&sql, "%s$%zu::text[]", c ? ", " : "", c + 1);
  pgsql_sb_add(&sql, ") AS s(");
  for (size_t c = 0; c < ncmp; c++) pgsql_sb_addf(&sql, "%sf%zu", c ? ", " : "", ci[c] + 1);
  pgsql_sb_addf(&sql, ") LEFT JOIN %s d ON ", t->qname);
  for (size_t q = 0; q < t->nkeys; q++) {
    size_t i = t->kidx[q];
    if (q) pgsql_sb_add(&sql, " AND ");
    pgsql_sb_add(&sql, "d.");
    pgsql_sb_ident(&sql, t->tcol[i]);
    pgsql_sb_addf(&sql, " = s.f%zu::%s", i + 1, t->ttype[i]);
  }
  pgsql_sb_add(&sql, " WHERE d.ctid IS NULL OR ROW(");
  for (size_t c = 0; c < ncmp; c++) {
    pgsql_sb_add(&sql, c ? ", d." : "d.");
    pgsql_sb_ident(&sql, t->tcol[ci[c]]);
  }
  pgsql_sb_add(&sql, ")::text IS DISTINCT FROM ROW(");
  for (size_t c = 0; c < ncmp; c++) pgsql_sb_addf(&sql, "%ss.f%zu::%s", c ? ", " : "", ci[c] + 1, t->ttype[ci[c]]);
  pgsql_sb_addf(&sql, ")::text LIMIT %lld", (long long)k->c->max_keys_reported);
  char *begin = pgsql_xasprintf("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; %s", k->sets);
  j->step = 0;
  int rc = ferry_pg_query(j->conn->pg, begin, 0, NULL, on_cmp, j);
  if (rc >= 0) rc = ferry_pg_query(j->conn->pg, sql.buf, (int)ncmp, p, on_cmp, j);
  if (rc >= 0) rc = ferry_pg_query(j->conn->pg, "COMMIT", 0, NULL, on_cmp_end, j);
  free(begin);
  pgsql_sb_free(&sql);
  for (size_t c = 0; c < ncmp; c++) pgsql_sb_free(&arr[c]);
  free(arr);
  free(p);
  free(ci);
  if (rc < 0) job_failf(j, FERRY_EINTERNAL, "pgsql sink: cannot queue a query");
}

/* ---- dispatch ------------------------------------------------------------------------------------------------- */
static void job_go(job *j) {
  pgsql_sink *k = j->k;
  if (!j->tt) j->tt = table_get(k, j->it);
  ttable *t = j->tt;
  switch (t->state) {
    case TT_PREPARING:
      j->next = t->waiters;
      t->waiters = j;
      return;
    case TT_REFUSED: {
      ferry_error e = FERRY_ERROR_INIT;
      ferry_error_copy(&e, &t->err);
      job_fail(j, &e);
      ferry_error_clear(&e);
      return;
    }
    default:
      break;
  }
  if (!j->conn) {
    ferry_error e = FERRY_ERROR_INIT;
    j->conn = conn_acquire(k, &e);
    if (!j->conn) {
      job_fail(j, &e);
      ferry_error_clear(&e);
      return;
    }
  }
  if (t->state == TT_NEW) {
    prep_start(j);
    return;
  }
  if (k->mode == FERRY_MODE_RUN) job_write(j);
  else job_compare(j);
}

static void sink_task(ferry_instance *ins, ferry_task *task) {
  pgsql_ctx *c = ferry_instance_ctx(ins);
  pgsql_sink *k = c->sink;
  job *j = pgsql_xcalloc(1, sizeof *j);
  j->k = k;
  j->task = task;
  j->it = ferry_task_item(task);
  /* ferry run --repair: verify found the target rows different; write them again whatever the policy */
  j->policy = ferry_task_repair(task) ? POLICY_OVERWRITE : k->policy;
  if (ferry_task_repair(task)) json_object_set_new(ferry_task_report(task), "repaired", json_true());
  ferry_error e = FERRY_ERROR_INIT;
  if (job_parse(j, &e) < 0) {
    ferry_error_prefix(&e, "pgsql sink: item \"%s\"", j->it->key);
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    job_free(j);
    return;
  }
  j->d = dep_get(k, jstr(j->it->body, "table"));
  j->d->inflight++;
  if (after_busy(j)) { /* a batch of a table it refers to is still being written */
    j->next = k->waiting;
    k->waiting = j;
    return;
  }
  job_go(j);
}

static int sink_start(ferry_instance *ins, ferry_error *err) {
  pgsql_ctx *c = ferry_instance_ctx(ins);
  pgsql_sink *k = pgsql_xcalloc(1, sizeof *k);
  c->sink = k;
  k->c = c;
  k->ins = ins;
  k->mode = ferry_instance_mode(ins);
  k->policy = !strcmp(c->conflict, "overwrite") ? POLICY_OVERWRITE : !strcmp(c->conflict, "fail") ? POLICY_FAIL
                                                                                                   : POLICY_SKIP;
  k->sets = pgsql_session_sets(c->timezone);
  k->nconns = ferry_instance_concurrency(ins);
  if (k->nconns < 1) k->nconns = 1;
  k->conns = pgsql_xcalloc(k->nconns, sizeof(sconn));
  return 0;
}

void pgsql_sink_free(pgsql_ctx *c) {
  pgsql_sink *k = c->sink;
  if (!k) return;
  for (size_t i = 0; i < k->nconns; i++)
    if (k->conns[i].pg) ferry_pg_free(k->conns[i].pg);
  free(k->conns);
  while (k->tables) {
    ttable *t = k->tables;
    k->tables = t->next;
    table_free(t);
  }
  while (k->deps) {
    dep *d = k->deps;
    k->deps = d->next;
    free(d->table);
    free(d);
  }
  free(k->sets);
  free(k);
  c->sink = NULL;
}

static void sink_stop(ferry_instance *ins) { pgsql_sink_free(ferry_instance_ctx(ins)); }

const ferry_sink_ops pgsql_sink_ops = {
    .struct_size = sizeof(ferry_sink_ops),
    .accepts = FERRY_ITEM_RECORD,
    .start = sink_start,
    .write = sink_task,
    .plan = sink_task,
    .verify = sink_task,
    .stop = sink_stop,
};
