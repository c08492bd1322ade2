/* joget sink: a task's helpers, completion, requests with a continuation (HTTP and PostgreSQL). */
#define _GNU_SOURCE
#include "sink.h"

/* ---- tiny helpers ------------------------------------------------------------------------------------ */
const char *joget_item_id(jt *t) { return t->it->key; }

void joget_note(jt *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = ferry_vasprintf(fmt, ap);
  va_end(ap);
  json_t *n = json_object_get(t->rep, "notes");
  if (!n) {
    n = json_array();
    json_object_set_new(t->rep, "notes", n);
  }
  json_array_append_new(n, json_string(s));
  free(s);
}

void joget_rep_push(jt *t, const char *key, json_t *v) {
  json_t *a = json_object_get(t->rep, key);
  if (!a) {
    a = json_array();
    json_object_set_new(t->rep, key, a);
  }
  json_array_append_new(a, v);
}

/* A loss (what cannot be carried exactly): in the report and in the journal state (stolen). */
void joget_loss(jt *t, json_t *l) {
  json_t *a = json_object_get(t->st, "losses");
  if (!a) {
    a = json_array();
    json_object_set_new(t->st, "losses", a);
  }
  json_array_append(a, l);
  joget_rep_push(t, "losses", l);
}

/* Value of a variable as text (the JSON API prints every value as text). NULL for null. */
char *joget_var_text(json_t *v) {
  if (json_is_string(v)) return ferry_strdup(json_string_value(v));
  if (json_is_integer(v)) return ferry_asprintf("%lld", (long long)json_integer_value(v));
  if (json_is_real(v)) return ferry_asprintf("%.17g", json_real_value(v));
  if (json_is_boolean(v)) return ferry_strdup(json_is_true(v) ? "true" : "false");
  return NULL;
}

/* Sent with process/start? (see the file comment) */
int joget_var_at_start(const char *name, const char *val) {
  if (!val || !*val || strstr(name, "var_")) return 0;
  if (!strcasecmp(val, "true") || !strcasecmp(val, "false")) return 0;
  return 1;
}

/* ---- completion ---------------------------------------------------------------------------------------- */
/* What every report of an instance says, done or failed (the HTML report's per-instance table): its source
 * id, record id, definition (source, and the target's when resolved) and the open activities it carries,
 * each with its assignees and who accepted it. */
static void rep_identity(jt *t) {
  json_object_set_new(t->rep, "source_id", json_string(joget_item_id(t)));
  if (joget_str(t->src, "record_id") && !json_object_get(t->rep, "record_id"))
    json_object_set_new(t->rep, "record_id", json_string(joget_str(t->src, "record_id")));
  if (joget_str(t->src, "definition"))
    json_object_set_new(t->rep, "definition", json_string(joget_str(t->src, "definition")));
  if (t->tdef && !json_object_get(t->rep, "target_definition"))
    json_object_set_new(t->rep, "target_definition", json_string(t->tdef));
  json_t *acts = json_object_get(t->src, "activities");
  if (!json_is_array(acts)) return;
  json_t *open = json_array();
  size_t i;
  json_t *a;
  json_array_foreach(acts, i, a) {
    json_t *o = json_object();
    json_object_set_new(o, "activity", json_string(joget_str(a, "def_id") ? joget_str(a, "def_id") : "?"));
    if (joget_str(a, "name")) json_object_set_new(o, "name", json_string(joget_str(a, "name")));
    json_t *as = json_object_get(a, "assignees");
    json_object_set_new(o, "assignees", json_is_array(as) ? json_deep_copy(as) : json_array());
    if (joget_str(a, "accepted_by")) json_object_set_new(o, "accepted_by", json_string(joget_str(a, "accepted_by")));
    json_array_append_new(open, o);
  }
  json_object_set_new(t->rep, "open_activities", open);
}

void joget_jt_fail_err(jt *t, const ferry_error *e) {
  ferry_error x = FERRY_ERROR_INIT;
  ferry_error_copy(&x, e);
  if (t->mode == FERRY_MODE_PLAN && x.code != FERRY_ETRANSIENT && x.code != FERRY_ECANCELED)
    x.code = FERRY_EBLOCKED;
  if (t->mode == FERRY_MODE_RUN && json_is_string(json_object_get(t->st, "pid")))
    ferry_error_prefix(&x, "instance %s (target %s)", joget_item_id(t),
                       json_string_value(json_object_get(t->st, "pid")));
  else
    ferry_error_prefix(&x, "instance %s", joget_item_id(t));
  ferry_task *task = t->task;
  if (t->rep && t->src) rep_identity(t);
  joget_jt_free(t);
  ferry_task_fail(task, &x);
  ferry_error_clear(&x);
}

void joget_jt_fail(jt *t, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_setv(&e, code, fmt, ap);
  va_end(ap);
  joget_jt_fail_err(t, &e);
  ferry_error_clear(&e);
}

/* A hook point's firing failed: fail the task with the hooks' error, prefixed with the point. */
void joget_jt_fail_hook(jt *t, const char *point, int status, const ferry_error *err) {
  ferry_error e = FERRY_ERROR_INIT;
  if (err)
    ferry_error_copy(&e, err);
  else
    ferry_error_set(&e, status, "hook point %s failed", point);
  ferry_error_prefix(&e, "%s", point);
  joget_jt_fail_err(t, &e);
  ferry_error_clear(&e);
}

void joget_jt_done(jt *t) {
  ferry_task *task = t->task;
  /* what earlier attempts found (resumed items) */
  if (json_object_get(t->st, "losses") && !json_object_get(t->rep, "losses"))
    json_object_set(t->rep, "losses", json_object_get(t->st, "losses"));
  if (json_is_true(json_object_get(t->st, "adopted"))) json_object_set_new(t->rep, "adopted", json_true());
  if (joget_str(t->st, "pid") && t->mode == FERRY_MODE_RUN) {
    json_object_set_new(t->rep, "target_id", json_string(joget_str(t->st, "pid")));
    json_object_set_new(t->rep, "record_id", json_string(joget_str(t->src, "record_id")));
  }
  rep_identity(t);
  joget_jt_free(t);
  ferry_task_done(task, 0);
}

void joget_jt_free(jt *t) {
  joget_lock_drop(t);
  json_decref(t->jarr);
  json_decref(t->tarrived);
  json_decref(t->jcall);
  size_t pi;
  json_t *pv;
  json_array_foreach(t->cands_pg, pi, pv) {
    acts_pg *pg = (acts_pg *)(intptr_t)json_integer_value(pv);
    free(pg->pid);
    free(pg);
  }
  json_decref(t->cands_pg);
  json_decref(t->checked);
  json_decref(t->tdbl);
  free(t->tdef);
  free(t->tapp);
  free(t->tver);
  free(t->tproc);
  free(t->uid_label);
  json_decref(t->scopes);
  json_decref(t->tacts);
  json_decref(t->tvars);
  json_decref(t->calls);
  json_decref(t->cands);
  json_decref(t->diffs);
  json_decref(t->plan);
  json_decref(t->reasons);
  ferry_error_clear(&t->err);
  free(t);
}

int joget_intent(jt *t, const char *step) {
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry_task_intent(t->task, step, &e) < 0) {
    joget_jt_fail_err(t, &e);
    ferry_error_clear(&e);
    return -1;
  }
  return 0;
}

/* ---- requests with a continuation ------------------------------------------------------------------- */
typedef struct jt_rq {
  jt *t;
  jt_take take;
  void *ud;
} jt_rq;

static void jt_on(void *arg, json_t *doc, const ferry_error *err) {
  jt_rq *q = arg;
  jt *t = q->t;
  t->pending--;
  if (err) {
    if (!t->err.code) ferry_error_copy(&t->err, err);
  } else if (q->take && !t->err.code) {
    q->take(t, doc, q->ud);
  }
  free(q);
  joget_jt_kick(t);
}

void joget_jt_req(jt *t, const char *method, const char *path, const char *const *params, const joget_ident *id,
                  jt_take take, void *ud) {
  jt_rq *q = calloc(1, sizeof *q);
  if (!q) abort();
  q->t = t;
  q->take = take;
  q->ud = ud;
  ferry_error e = FERRY_ERROR_INIT;
  t->pending++;
  if (joget_call(t->c, method, path, params, id, 0, jt_on, q, &e) < 0) {
    t->pending--;
    if (!t->err.code) ferry_error_move(&t->err, &e);
    free(q);
  }
  ferry_error_clear(&e);
}

void joget_jt_admin(jt *t, const char *method, const char *path, const char *const *params, jt_take take,
                    void *ud) {
  joget_ident id;
  joget_admin_ident(t->c, &id);
  joget_jt_req(t, method, path, params, &id, take, ud);
}

/* Database read with a continuation (dsn: PostgreSQL or MySQL/MariaDB). */
typedef struct jt_pq {
  jt *t;
  jt_take_pg take;
  void *ud;
} jt_pq;

static void jt_on_pg(void *arg, int status, const joget_res *res, const ferry_error *err) {
  jt_pq *q = arg;
  jt *t = q->t;
  t->pending--;
  if (status) {
    if (!t->err.code) {
      ferry_error_copy(&t->err, err);
      ferry_error_prefix(&t->err, "joget %s: reading the target database (dsn)", t->c->host_label);
    }
  } else if (q->take && !t->err.code) {
    q->take(t, res, q->ud);
  }
  free(q);
  joget_jt_kick(t);
}

void joget_jt_pg(jt *t, const char *sql, int n, const char *const *params, jt_take_pg take, void *ud) {
  jt_pq *q = calloc(1, sizeof *q);
  if (!q) abort();
  q->t = t;
  q->take = take;
  q->ud = ud;
  ferry_error e = FERRY_ERROR_INIT;
  t->pending++;
  if (joget_sql_read(t->c, NULL, sql, n, params, jt_on_pg, q, &e) < 0) {
    t->pending--;
    if (!t->err.code) ferry_error_move(&t->err, &e);
    free(q);
  }
  ferry_error_clear(&e);
}

/* Runs `next` once every request issued so far has completed (now if none is pending). */
void joget_jt_then(jt *t, void (*next)(jt *)) {
  t->then = next;
  joget_jt_kick(t);
}

void joget_jt_kick(jt *t) {
  if (t->pending > 0 || !t->then) return;
  void (*next)(jt *) = t->then;
  t->then = NULL;
  if (t->err.code) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_move(&e, &t->err);
    joget_jt_fail_err(t, &e);
    ferry_error_clear(&e);
    return;
  }
  next(t);
}

/* One page (100 rows, newest first) of monitoring/activity/list for process `pid` from row `start`, to
 * take(t, doc, pg): pg (the process id and start, for asking the next page) lives in the task's cands_pg
 * and is freed with the task. */
void joget_read_acts_page(jt *t, const char *pid, int start, jt_take take) {
  char st[32];
  snprintf(st, sizeof st, "%d", start);
  const char *params[] = {"processId", pid, "rows", "100", "start", st, "sort", "id", "desc", "false", NULL};
  acts_pg *pg = calloc(1, sizeof *pg);
  if (!pg) abort();
  pg->pid = ferry_strdup(pid);
  pg->start = start;
  json_array_append_new(t->cands_pg, json_integer((json_int_t)(intptr_t)pg));
  joget_jt_admin(t, "GET", "monitoring/activity/list", params, take, pg);
}
