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
 *
 * The sink's files: see sink.h.
 */
#include "sink.h"

/* ---- small helpers ----------------------------------------------------------------------------------------- */
const char *pgsql_jstr(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

int pgsql_sqlstate_is(const ferry_error *err, const char *st) {
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
      pgsql_job_go(j);
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

void pgsql_job_done(job *j, unsigned flags) {
  ferry_task_done(j->task, flags);
  job_end(j);
}

void pgsql_job_fail(job *j, const ferry_error *err) {
  ferry_task_fail(j->task, err);
  job_end(j);
}

void pgsql_job_failf(job *j, int code, const char *fmt, ...) {
  ferry_error e = FERRY_ERROR_INIT;
  va_list ap;
  va_start(ap, fmt);
  ferry_error_setv(&e, code, fmt, ap);
  va_end(ap);
  pgsql_job_fail(j, &e);
  ferry_error_clear(&e);
}

/* A failed query of a job: "<table>: <doing>: <service message>", the detail kept. */
void pgsql_job_fail_q(job *j, const char *doing, const ferry_error *err) {
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_copy(&e, err);
  if (!e.code) ferry_error_set(&e, FERRY_EIO, "failed");
  ferry_error_prefix(&e, "pgsql sink: table %s: %s", j->tt ? j->tt->qname : "?", doing);
  pgsql_job_fail(j, &e);
  ferry_error_clear(&e);
}

/* ---- dispatch ------------------------------------------------------------------------------------------------- */
void pgsql_job_go(job *j) {
  pgsql_sink *k = j->k;
  if (!j->tt) j->tt = pgsql_table_get(k, j->it);
  ttable *t = j->tt;
  switch (t->state) {
    case TT_PREPARING:
      j->next = t->waiters;
      t->waiters = j;
      return;
    case TT_REFUSED: {
      ferry_error e = FERRY_ERROR_INIT;
      ferry_error_copy(&e, &t->err);
      pgsql_job_fail(j, &e);
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
      pgsql_job_fail(j, &e);
      ferry_error_clear(&e);
      return;
    }
  }
  if (t->state == TT_NEW) {
    pgsql_prep_start(j);
    return;
  }
  if (k->mode == FERRY_MODE_RUN) pgsql_job_write(j);
  else pgsql_job_compare(j);
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
  if (pgsql_job_parse(j, &e) < 0) {
    ferry_error_prefix(&e, "pgsql sink: item \"%s\"", j->it->key);
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    job_free(j);
    return;
  }
  j->d = dep_get(k, pgsql_jstr(j->it->body, "table"));
  j->d->inflight++;
  if (after_busy(j)) { /* a batch of a table it refers to is still being written */
    j->next = k->waiting;
    k->waiting = j;
    return;
  }
  pgsql_job_go(j);
}

static int sink_start(ferry_instance *ins, ferry_error *err) {
  pgsql_ctx *c = ferry_instance_ctx(ins);
  pgsql_sink *k = pgsql_xcalloc(1, sizeof *k);
  c->sink = k;
  k->c = c;
  k->ins = ins;
  k->mode = ferry_instance_mode(ins);
  k->policy = c->on_conflict;
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
    pgsql_table_free(t);
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
