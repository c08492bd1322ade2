/* joget sink: re-creates running instances on a target Joget server (design.md section 6).
 *
 * Per instance (RUN), every side effect preceded by its journal intent:
 *   intent "start" -> hook point before_start -> intent "start" (saves the hooks' snapshot) ->
 *   workflow/process/start/<app>:<ver>:<proc> as the original requester, recordId = the source record id,
 *   var_* = the source variables (empty processId = failure) -> new id in the state, id map ->
 *   intent "started" -> for the instance and then each sub-flow child ("scopes"):
 *     activities: read the target's open activities; start what is missing with
 *       monitoring/activity/start (intent "activity" before each call; abortCurrent=true on the first call
 *       only, when the target holds activities the source has not); confirm with activity/list?rows=100
 *     sub-flow children: find the target children of the scope, abort stale duplicates, map them
 *     reassign (intent "reassign") to the source's assignees where the target computed others; accept as
 *     the source's accepting user
 *     variables (intent "variables"): set with monitoring/process/variable what differs from the source
 *       (this is also how true/false values and names containing "var_" are carried: see below)
 *   -> intent "after_start" -> hook point after_start -> check (read back, compare) -> done.
 * Resume: with a target id in the state, everything after "started" converges from what the target holds.
 * With step "start" and no id, reconcile: an instance of the target definition with the same record id,
 * created after the intent, running and unknown to the journal is adopted instead of starting a second one.
 *
 * Identities: monitoring calls as the admin (user/password|hash); process/start and assignment/accept as
 * the user concerned: master login + loginAs, a hash computed from the target's dir_user (dsn), or the
 * users option. Each identity is checked once with workflow/currentUsername (a failed master login runs
 * as anonymous without any error, docs/joget-facts.md 3.4).
 *
 * Variables: values "true"/"false", empty values and names containing "var_" are not sent with
 * process/start (a Boolean variable makes the start fail, an empty Long too, and var_ is deleted from
 * parameter names, docs/joget-facts.md 6.1); they are set right after the start with the variable setter.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "joget.h"

typedef struct jt jt;

typedef struct acts_pg {
  char *pid;
  int start;
} acts_pg;

/* One lock per (target definition, record id): two items whose instances share a record are never started
 * at the same time, so that the check after a start ("exactly one new instance of this definition for this
 * record since the intent") cannot take the other item's fresh instance for a duplicate. */
typedef struct jlock {
  char *key;
  jt *holder;
  jt *wait_head, *wait_tail;
  struct jlock *next;
} jlock;

typedef struct joget_snk {
  joget_ctx_t *c;
  jlock *locks;
  jt *ready;          /* tasks given a lock, to be resumed from the timer (a clean stack) */
  uv_timer_t *wake;   /* resumes `ready`; freed by its close callback */
  int gate; /* 0 unknown, 1 checking, 2 ok, 3 failed */
  ferry_error gate_err;
  jt *gate_wait;
  joget_cache users;    /* user -> "ok": the identity check */
  joget_cache hashes;   /* user -> login hash (start_as hash) */
  joget_cache defs;     /* target definition -> facts */
  joget_cache latest;   /* "app#proc" -> latest package version */
  joget_cache dirusers; /* user -> true/false: exists in dir_user (dsn) */
} joget_snk;

struct jt {
  joget_snk *k;
  joget_ctx_t *c;
  ferry_task *task;
  const ferry_item *it;
  json_t *src; /* item body (borrowed) */
  json_t *st;  /* task state (borrowed) */
  json_t *rep; /* task report (borrowed) */
  ferry_mode mode;
  char *tdef; /* target definition app#ver#proc */
  char *tapp, *tver, *tproc;
  int pending;
  ferry_error err;
  void (*then)(jt *);
  jt *gate_next;
  /* identity of the moment (user calls) */
  joget_ident uid;
  char *uid_label;
  /* scopes: [{"src": body, "pid": target id}] processed in order */
  json_t *scopes;
  size_t si;
  json_t *tacts; /* open activities of the current scope on the target */
  json_t *tvars; /* variables of the current scope on the target */
  json_t *calls; /* planned calls */
  size_t ci;
  json_t *cands; /* reconcile / children candidates */
  json_t *diffs; /* check / verify differences */
  json_t *plan;  /* plan: collected facts */
  json_t *reasons;
  int acts_called;
  int dirty;       /* the current scope was written to after its last read */
  int vars_stale;  /* engine logic ran (activity start, accept): variables must be read again */
  json_t *checked; /* scopes compared in this attempt: {pid: true} */
  json_t *tdbl;    /* variables read from the double column (compared as numbers) */
  int vars_http;   /* the SQL read of variables cannot be used: read them over HTTP */
  void (*after_vars)(jt *);
  json_t *cands_pg; /* acts_pg contexts to free */
  void (*after_def)(jt *);
  void (*after_cands)(jt *);
  /* the record lock (see jlock) */
  jlock *lock;
  void (*lock_next)(jt *);
  jt *lock_wait_next;
  int repair;          /* ferry run --repair: converge on the recorded target instance */
  int final_dup;       /* the duplicate check before done: 1 running, 2 done */
  json_t *jarr;        /* join arrivals of the current scope still to re-create: [{join, def_id, performer}] */
  size_t ji;
  json_t *tarrived;    /* arrivals the target already counts: {"join|def": n} */
  json_t *jcall;       /* the activity/start call of a join arrival (read by its answer) */
};

static void jt_kick(jt *t);
static void jt_free(jt *t);
static void lock_drop(jt *t);

/* ---- tiny helpers ------------------------------------------------------------------------------------ */
static const char *item_id(jt *t) { return t->it->key; }

static void note(jt *t, const char *fmt, ...) FERRY_PRINTF(2, 3);
static void note(jt *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) abort();
  va_end(ap);
  json_t *n = json_object_get(t->rep, "notes");
  if (!n) {
    n = json_array();
    json_object_set_new(t->rep, "notes", n);
  }
  json_array_append_new(n, json_string(s));
  free(s);
}

static void rep_push(jt *t, const char *key, json_t *v) {
  json_t *a = json_object_get(t->rep, key);
  if (!a) {
    a = json_array();
    json_object_set_new(t->rep, key, a);
  }
  json_array_append_new(a, v);
}

/* A loss (what cannot be carried exactly): in the report and in the journal state (stolen). */
static void loss(jt *t, json_t *l) {
  json_t *a = json_object_get(t->st, "losses");
  if (!a) {
    a = json_array();
    json_object_set_new(t->st, "losses", a);
  }
  json_array_append(a, l);
  rep_push(t, "losses", l);
}

/* Value of a variable as text (the JSON API prints every value as text). NULL for null. */
static char *var_text(json_t *v) {
  if (json_is_string(v)) return joget_strdup(json_string_value(v));
  if (json_is_integer(v)) return joget_asprintf("%lld", (long long)json_integer_value(v));
  if (json_is_real(v)) return joget_asprintf("%.17g", json_real_value(v));
  if (json_is_boolean(v)) return joget_strdup(json_is_true(v) ? "true" : "false");
  return NULL;
}

/* Sent with process/start? (see the file comment) */
static int var_at_start(const char *name, const char *val) {
  if (!val || !*val || strstr(name, "var_")) return 0;
  if (!strcasecmp(val, "true") || !strcasecmp(val, "false")) return 0;
  return 1;
}

/* ---- completion ---------------------------------------------------------------------------------------- */
static void jt_fail_err(jt *t, const ferry_error *e) {
  ferry_error x = FERRY_ERROR_INIT;
  ferry_error_copy(&x, e);
  if (t->mode == FERRY_MODE_PLAN && x.code != FERRY_ETRANSIENT && x.code != FERRY_ECANCELED)
    x.code = FERRY_EBLOCKED;
  if (t->mode == FERRY_MODE_RUN && json_is_string(json_object_get(t->st, "pid")))
    ferry_error_prefix(&x, "instance %s (target %s)", item_id(t),
                       json_string_value(json_object_get(t->st, "pid")));
  else
    ferry_error_prefix(&x, "instance %s", item_id(t));
  ferry_task *task = t->task;
  jt_free(t);
  ferry_task_fail(task, &x);
  ferry_error_clear(&x);
}

static void jt_fail(jt *t, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
static void jt_fail(jt *t, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_setv(&e, code, fmt, ap);
  va_end(ap);
  jt_fail_err(t, &e);
  ferry_error_clear(&e);
}

/* A hook point's firing failed: fail the task with the hooks' error, prefixed with the point. */
static void jt_fail_hook(jt *t, const char *point, int status, const ferry_error *err) {
  ferry_error e = FERRY_ERROR_INIT;
  if (err)
    ferry_error_copy(&e, err);
  else
    ferry_error_set(&e, status, "hook point %s failed", point);
  ferry_error_prefix(&e, "%s", point);
  jt_fail_err(t, &e);
  ferry_error_clear(&e);
}

static void jt_done(jt *t) {
  ferry_task *task = t->task;
  /* what earlier attempts found (resumed items) */
  if (json_object_get(t->st, "losses") && !json_object_get(t->rep, "losses"))
    json_object_set(t->rep, "losses", json_object_get(t->st, "losses"));
  if (json_is_true(json_object_get(t->st, "adopted"))) json_object_set_new(t->rep, "adopted", json_true());
  if (joget_str(t->st, "pid") && t->mode == FERRY_MODE_RUN) {
    json_object_set_new(t->rep, "target_id", json_string(joget_str(t->st, "pid")));
    json_object_set_new(t->rep, "record_id", json_string(joget_str(t->src, "record_id")));
  }
  jt_free(t);
  ferry_task_done(task, 0);
}

static void jt_free(jt *t) {
  lock_drop(t);
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

static int intent(jt *t, const char *step) {
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry_task_intent(t->task, step, &e) < 0) {
    jt_fail_err(t, &e);
    ferry_error_clear(&e);
    return -1;
  }
  return 0;
}

/* ---- requests with a continuation ------------------------------------------------------------------- */
typedef void (*jt_take)(jt *t, json_t *doc, void *ud);
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
  jt_kick(t);
}

static void jt_req(jt *t, const char *method, const char *path, const char *const *params, const joget_ident *id,
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

static void jt_admin(jt *t, const char *method, const char *path, const char *const *params, jt_take take,
                     void *ud) {
  joget_ident id;
  joget_admin_ident(t->c, &id);
  jt_req(t, method, path, params, &id, take, ud);
}

/* PostgreSQL read with a continuation (dsn). */
typedef void (*jt_take_pg)(jt *t, PGresult *res, void *ud);
typedef struct jt_pq {
  jt *t;
  jt_take_pg take;
  void *ud;
} jt_pq;

static void jt_on_pg(void *arg, int status, PGresult *res, const ferry_error *err) {
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
  jt_kick(t);
}

static void jt_pg(jt *t, const char *sql, int n, const char *const *params, jt_take_pg take, void *ud) {
  jt_pq *q = calloc(1, sizeof *q);
  if (!q) abort();
  q->t = t;
  q->take = take;
  q->ud = ud;
  ferry_error e = FERRY_ERROR_INIT;
  t->pending++;
  if (joget_pg_read(t->c, sql, n, params, jt_on_pg, q, &e) < 0) {
    t->pending--;
    if (!t->err.code) ferry_error_move(&t->err, &e);
    free(q);
  }
  ferry_error_clear(&e);
}

/* Runs `next` once every request issued so far has completed (now if none is pending). */
static void jt_then(jt *t, void (*next)(jt *)) {
  t->then = next;
  jt_kick(t);
}

static void jt_kick(jt *t) {
  if (t->pending > 0 || !t->then) return;
  void (*next)(jt *) = t->then;
  t->then = NULL;
  if (t->err.code) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_move(&e, &t->err);
    jt_fail_err(t, &e);
    ferry_error_clear(&e);
    return;
  }
  next(t);
}

/* ---- the record lock ---------------------------------------------------------------------------------- */
static void lock_wake_cb(uv_timer_t *h) {
  joget_snk *k = h->data;
  while (k->ready) {
    jt *t = k->ready;
    k->ready = t->lock_wait_next;
    t->lock_wait_next = NULL;
    void (*next)(jt *) = t->lock_next;
    t->lock_next = NULL;
    next(t);
  }
}

/* Runs next(t) once t holds the lock of `key` (now, or from a clean stack when another task gives it up). */
static void lock_take(jt *t, const char *key, void (*next)(jt *)) {
  joget_snk *k = t->k;
  jlock *l = k->locks;
  while (l && strcmp(l->key, key)) l = l->next;
  if (!l) {
    l = calloc(1, sizeof *l);
    if (!l) abort();
    l->key = joget_strdup(key);
    l->next = k->locks;
    k->locks = l;
  }
  t->lock = l;
  if (!l->holder) {
    l->holder = t;
    next(t);
    return;
  }
  ferry_log(t->c->ins, FERRY_LOG_DEBUG, "instance %s: waits: instance %s of the same record is being started",
            t->it->key, l->holder->it->key);
  t->lock_next = next;
  if (l->wait_tail)
    l->wait_tail->lock_wait_next = t;
  else
    l->wait_head = t;
  l->wait_tail = t;
}

static void lock_drop(jt *t) {
  jlock *l = t->lock;
  if (!l) return;
  joget_snk *k = t->k;
  t->lock = NULL;
  if (l->holder != t) return; /* a waiter is never freed while it waits */
  jt *w = l->wait_head;
  if (w) {
    l->wait_head = w->lock_wait_next;
    if (!l->wait_head) l->wait_tail = NULL;
    w->lock_wait_next = NULL;
    l->holder = w;
    jt **pp = &k->ready; /* FIFO */
    while (*pp) pp = &(*pp)->lock_wait_next;
    *pp = w;
    uv_timer_start(k->wake, lock_wake_cb, 0, 0);
    return;
  }
  for (jlock **pp = &k->locks; *pp; pp = &(*pp)->next)
    if (*pp == l) {
      *pp = l->next;
      break;
    }
  free(l->key);
  free(l);
}

/* ---- cached lookups -------------------------------------------------------------------------------------
 */
/* A lookup result for a task: stores value/error into t->plan[slot] (plan) or fails the task (run). */
typedef struct jt_lk {
  jt *t;
  char *slot;
  int soft; /* errors are recorded, not fatal */
} jt_lk;

static void lk_done(void *arg, json_t *value, const ferry_error *err) {
  jt_lk *l = arg;
  jt *t = l->t;
  t->pending--;
  if (err) {
    if (l->soft)
      json_object_set_new(
          t->plan, l->slot,
          json_pack("{s:s, s:i}", "error", err->message ? err->message : "", "code", err->code));
    else if (!t->err.code)
      ferry_error_copy(&t->err, err);
  } else {
    json_object_set(t->plan, l->slot, value ? value : json_null());
  }
  free(l->slot);
  free(l);
  jt_kick(t);
}

static void jt_lookup(jt *t, joget_cache *cc, const char *key, joget_once_start start, const char *slot, int soft) {
  jt_lk *l = calloc(1, sizeof *l);
  if (!l) abort();
  l->t = t;
  l->slot = joget_strdup(slot);
  l->soft = soft;
  t->pending++;
  joget_cache_get(t->c, cc, key, start, lk_done, l);
}

/* A request made on behalf of a cache entry. */
typedef struct once_rq {
  joget_once *o;
  joget_ctx_t *c;
  int step;
  json_t *acc;
} once_rq;

static once_rq *orq_new(joget_ctx_t *c, joget_once *o) {
  once_rq *r = calloc(1, sizeof *r);
  if (!r) abort();
  r->o = o;
  r->c = c;
  return r;
}

static void orq_finish(once_rq *r, json_t *value, const ferry_error *err) {
  joget_once *o = r->o;
  json_decref(r->acc);
  free(r);
  joget_once_finish(o, value, err);
}

static void orq_send_fail(once_rq *r, ferry_error *e) {
  orq_finish(r, NULL, e);
  ferry_error_clear(e);
}

/* -- identity of a user -- */
static void user_ident_from(joget_ctx_t *c, const char *user, const char *hash, joget_ident *id, char **label) {
  memset(id, 0, sizeof *id);
  id->role = JOGET_ROLE_USER;
  if (c->start_mode == JOGET_START_MASTER) {
    id->user = c->master_user;
    id->password = c->master_password && *c->master_password ? c->master_password : NULL;
    id->hash = id->password ? NULL : c->master_hash;
    id->login_as = user;
    *label = joget_asprintf("user \"%s\" (master login \"%s\" + loginAs)", user, c->master_user);
  } else if (c->start_mode == JOGET_START_HASH) {
    id->user = user;
    id->hash = hash;
    *label = joget_asprintf("user \"%s\" (login hash from the target's dir_user)", user);
  } else {
    json_t *u = json_object_get(c->user_pw, user);
    id->user = user;
    id->password = joget_str(u, "password");
    id->hash = joget_str(u, "hash");
    *label = joget_asprintf("user \"%s\" (credentials from the users option)", user);
  }
  id->label = *label;
}

static void hash_take(void *arg, int status, PGresult *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_copy(&e, err);
    ferry_error_prefix(&e, "joget %s: reading dir_user for a login hash", r->c->host_label);
    orq_send_fail(r, &e);
    return;
  }
  if (PQntuples(res) != 1 || PQgetisnull(res, 0, 0)) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(
        &e, FERRY_EPERM,
        "joget %s: user \"%s\" does not exist (or has no password) in the target's dir_user: copy the "
        "users first (stage \"users\"), or use start_as master",
        r->c->host_label, joget_once_key(r->o));
    orq_send_fail(r, &e);
    return;
  }
  const char *h = PQgetvalue(res, 0, 0);
  ferry_secret(r->c->ins, h);
  orq_finish(r, json_string(h), NULL);
}

static void hash_start(joget_ctx_t *c, const char *key, joget_once *o) {
  once_rq *r = orq_new(c, o);
  const char *p[1] = {key};
  ferry_error e = FERRY_ERROR_INIT;
  if (joget_pg_read(c,
                    "SELECT upper(md5(username || '::' || password)) FROM dir_user WHERE username = $1 "
                    "AND password IS NOT NULL LIMIT 1",
                    1, p, hash_take, r, &e) < 0)
    orq_send_fail(r, &e);
}

/* -- identity check: currentUsername as that user must answer that user -- */
static void user_check_take(void *arg, json_t *doc, const ferry_error *err) {
  once_rq *r = arg;
  if (err) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_copy(&e, err);
    orq_send_fail(r, &e);
    return;
  }
  const char *got = joget_str(doc, "username");
  const char *want = joget_once_key(r->o);
  if (!got || strcmp(got, want)) {
    ferry_error e = FERRY_ERROR_INIT;
    if (r->c->start_mode == JOGET_START_MASTER)
      ferry_error_set(
          &e, FERRY_EPERM,
          "joget %s: calls as user \"%s\" through the master login run as \"%s\": the master login did "
          "not take, and Joget then starts processes as anonymous (docs/joget-facts.md 3.4); check "
          "master_user / master_password against the server's masterLoginUsername / "
          "masterLoginPassword settings",
          r->c->host_label, want, got ? got : "(nobody)");
    else
      ferry_error_set(&e, FERRY_EPERM, "joget %s: calls as user \"%s\" run as \"%s\": check the credentials",
                      r->c->host_label, want, got ? got : "(nobody)");
    orq_send_fail(r, &e);
    return;
  }
  orq_finish(r, json_true(), NULL);
}

static void user_check_send(joget_ctx_t *c, once_rq *r, const char *hash) {
  joget_ident id;
  char *label = NULL;
  user_ident_from(c, joget_once_key(r->o), hash, &id, &label);
  ferry_error e = FERRY_ERROR_INIT;
  if (c->start_mode == JOGET_START_USERS && !id.password && !id.hash) {
    ferry_error_set(&e, FERRY_EPERM, "joget %s: no credentials for user \"%s\" in the users option",
                    c->host_label, joget_once_key(r->o));
    free(label);
    orq_send_fail(r, &e);
    return;
  }
  int rc = joget_call(c, "GET", "workflow/currentUsername", NULL, &id, 0, user_check_take, r, &e);
  free(label);
  if (rc < 0) orq_send_fail(r, &e);
}

static void user_check_hash(void *arg, json_t *value, const ferry_error *err) {
  once_rq *r = arg;
  if (err) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_copy(&e, err);
    orq_send_fail(r, &e);
    return;
  }
  user_check_send(r->c, r, json_string_value(value));
}

static void user_check_start(joget_ctx_t *c, const char *key, joget_once *o) {
  once_rq *r = orq_new(c, o);
  if (c->start_mode == JOGET_START_HASH)
    joget_cache_get(c, &c->snk->hashes, key, hash_start, user_check_hash, r);
  else
    user_check_send(c, r, NULL);
}

/* -- dir_user existence (dsn) -- */
static void diruser_take(void *arg, int status, PGresult *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_copy(&e, err);
    orq_send_fail(r, &e);
    return;
  }
  orq_finish(r, json_boolean(PQntuples(res) > 0), NULL);
}

static void diruser_start(joget_ctx_t *c, const char *key, joget_once *o) {
  once_rq *r = orq_new(c, o);
  const char *p[1] = {key};
  ferry_error e = FERRY_ERROR_INIT;
  if (joget_pg_read(c, "SELECT 1 FROM dir_user WHERE username = $1 AND COALESCE(active, 1) <> 0", 1, p,
                    diruser_take, r, &e) < 0)
    orq_send_fail(r, &e);
}

/* -- latest package version of a process on the target -- */
static void latest_take(void *arg, json_t *doc, const ferry_error *err) {
  once_rq *r = arg;
  if (err) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_copy(&e, err);
    orq_send_fail(r, &e);
    return;
  }
  const char *key = joget_once_key(r->o); /* app#proc */
  const char *h = strchr(key, '#');
  char *app = strndup(key, (size_t)(h - key));
  const char *proc = h + 1;
  json_t *rows = joget_list(doc, "data");
  long best = -1;
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    char *a, *v, *p;
    if (joget_def_split(joget_str(row, "id"), &a, &v, &p)) continue;
    if (!strcmp(a, app) && !strcmp(p, proc) && atol(v) > best) best = atol(v);
    free(a);
    free(v);
    free(p);
  }
  json_decref(rows);
  if (best < 0) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(
        &e, FERRY_ENOENT,
        "joget %s: no process \"%s\" in app \"%s\" on the target (workflow/process/list): import the "
        "app there first",
        r->c->host_label, proc, app);
    free(app);
    orq_send_fail(r, &e);
    return;
  }
  free(app);
  orq_finish(r, json_sprintf("%ld", best), NULL);
}

static void latest_start(joget_ctx_t *c, const char *key, joget_once *o) {
  once_rq *r = orq_new(c, o);
  const char *h = strchr(key, '#');
  char *app = strndup(key, (size_t)(h - key));
  const char *params[] = {"packageId", app, NULL};
  joget_ident id;
  joget_admin_ident(c, &id);
  ferry_error e = FERRY_ERROR_INIT;
  int rc = joget_call(c, "GET", "workflow/process/list", params, &id, 0, latest_take, r, &e);
  free(app);
  if (rc < 0) orq_send_fail(r, &e);
}

/* -- facts of a target definition: exists (process/view), published and activity ids (dsn) -- */
static void def_maybe_finish(once_rq *r) {
  if (--r->step > 0) return;
  json_t *v = r->acc;
  r->acc = NULL;
  if (json_is_true(json_object_get(v, "transient"))) { /* not cached: the next item asks again */
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_ETRANSIENT, "looking up the definition %s on the target: %s", joget_once_key(r->o),
                    joget_str(v, "view_error")        ? joget_str(v, "view_error")
                    : joget_str(v, "published_error") ? joget_str(v, "published_error")
                                                   : joget_str(v, "activities_error"));
    json_decref(v);
    orq_send_fail(r, &e);
    return;
  }
  orq_finish(r, v, NULL);
}

static void def_view_take(void *arg, json_t *doc, const ferry_error *err) {
  once_rq *r = arg;
  if (err)
    json_object_set_new(r->acc, "view_error", json_string(err->message ? err->message : ""));
  else
    json_object_set_new(r->acc, "exists", json_boolean(doc && joget_str(doc, "processId")));
  if (err && err->code == FERRY_ETRANSIENT) json_object_set_new(r->acc, "transient", json_true());
  def_maybe_finish(r);
}

static void def_pub_take(void *arg, int status, PGresult *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) json_object_set_new(r->acc, "published_error", json_string(err->message ? err->message : ""));
  if (status && err->code == FERRY_ETRANSIENT)
    json_object_set_new(r->acc, "transient", json_true());
  else if (PQntuples(res) > 0)
    json_object_set_new(r->acc, "published", json_boolean(PQgetvalue(res, 0, 0)[0] == 't'));
  else
    json_object_set_new(r->acc, "published", json_null());
  if (!status && PQntuples(res) > 0)
    json_object_set_new(r->acc, "app_version", json_string(PQgetvalue(res, 0, 1)));
  def_maybe_finish(r);
}

static void def_acts_take(void *arg, int status, PGresult *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) {
    json_object_set_new(r->acc, "activities_error", json_string(err->message ? err->message : ""));
    if (err->code == FERRY_ETRANSIENT) json_object_set_new(r->acc, "transient", json_true());
    if (err->detail && strstr(err->detail, "42P01") && strstr(r->c->activity_ids_sql, "emu_process_graph"))
      json_object_set_new(r->acc, "activities_default", json_true()); /* the default query on a real server */
  } else {
    json_t *a = json_array();
    for (int i = 0; i < PQntuples(res); i++)
      if (!PQgetisnull(res, i, 0)) json_array_append_new(a, json_string(PQgetvalue(res, i, 0)));
    json_object_set_new(r->acc, "activities", a);
  }
  def_maybe_finish(r);
}

/* Tool plugins mapped to activities of the definition (app_package_activity_plugin): what re-creating an
 * instance may run again. Errors are recorded, never fatal (a report detail). */
static void def_tools_take(void *arg, int status, PGresult *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) {
    json_object_set_new(r->acc, "tools_error", json_string(err->message ? err->message : ""));
    if (err->code == FERRY_ETRANSIENT) json_object_set_new(r->acc, "transient", json_true());
  } else {
    json_t *tools = json_object();
    for (int i = 0; i < PQntuples(res); i++)
      json_object_set_new(tools, PQgetvalue(res, i, 0), json_string(PQgetvalue(res, i, 1)));
    json_object_set_new(r->acc, "tools", tools);
  }
  def_maybe_finish(r);
}

/* The app's default plugins (app_plugin_default): a notification audit-trail plugin e-mails the assignees
 * of every assignment the target creates, so re-created activities notify their assignees again. */
static void def_notify_take(void *arg, int status, PGresult *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) {
    if (err->code == FERRY_ETRANSIENT) json_object_set_new(r->acc, "transient", json_true());
    json_object_set_new(r->acc, "notify_error", json_string(err->message ? err->message : ""));
  } else if (PQntuples(res) > 0) {
    json_object_set_new(r->acc, "notify", json_string(PQgetvalue(res, 0, 0)));
  }
  def_maybe_finish(r);
}

/* AND-joins of the definition with their number of incoming branches (join_branches_sql). */
static void def_joins_take(void *arg, int status, PGresult *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) {
    if (err->code == FERRY_ETRANSIENT) json_object_set_new(r->acc, "transient", json_true());
    json_object_set_new(r->acc, "joins_error", json_string(err->message ? err->message : ""));
  } else {
    json_t *j = json_object();
    for (int i = 0; i < PQntuples(res); i++)
      if (!PQgetisnull(res, i, 0))
        json_object_set_new(j, PQgetvalue(res, i, 0), json_integer(atoll(PQgetvalue(res, i, 1))));
    json_object_set_new(r->acc, "joins", j);
  }
  def_maybe_finish(r);
}

static void def_start(joget_ctx_t *c, const char *key, joget_once *o) {
  once_rq *r = orq_new(c, o);
  r->acc = json_object();
  r->step = 1; /* hold */
  char *app, *ver, *proc;
  joget_def_split(key, &app, &ver, &proc);
  char *seg = joget_seg(app);
  char *segp = joget_seg(proc);
  char *path = joget_asprintf("workflow/process/view/%s:%s:%s", seg, ver, segp);
  joget_ident id;
  joget_admin_ident(c, &id);
  ferry_error e = FERRY_ERROR_INIT;
  r->step++;
  if (joget_call(c, "GET", path, NULL, &id, 0, def_view_take, r, &e) < 0) {
    r->step--;
    json_object_set_new(r->acc, "view_error", json_string(e.message ? e.message : ""));
  }
  ferry_error_clear(&e);
  if (c->pg) {
    const char *p2[2] = {app, ver};
    r->step++;
    if (joget_pg_read(
            c,
            "SELECT a.published, a.appversion FROM app_package p JOIN app_app a ON a.appid = p.appid AND "
            "a.appversion = p.appversion WHERE p.packageid = $1 AND p.packageversion::text = $2",
            2, p2, def_pub_take, r, &e) < 0)
      r->step--;
    ferry_error_clear(&e);
    if (c->activity_ids_sql && *c->activity_ids_sql) {
      const char *p1[1] = {key};
      r->step++;
      if (joget_pg_read(c, c->activity_ids_sql, 1, p1, def_acts_take, r, &e) < 0) r->step--;
      ferry_error_clear(&e);
    }
    const char *p3[3] = {app, ver, proc};
    r->step++;
    if (joget_pg_read(c,
                      "SELECT activitydefid, COALESCE(pluginname, '') FROM app_package_activity_plugin WHERE "
                      "packageid = $1 AND packageversion::text = $2 AND processdefid = $3 ORDER BY 1",
                      3, p3, def_tools_take, r, &e) < 0)
      r->step--;
    ferry_error_clear(&e);
    r->step++;
    if (joget_pg_read(c,
                      "SELECT d.pluginname FROM app_plugin_default d JOIN app_package p ON p.appid = d.appid AND "
                      "p.appversion = d.appversion WHERE p.packageid = $1 AND p.packageversion::text = $2 AND "
                      "d.pluginname LIKE '%NotificationAuditTrail' ORDER BY 1 LIMIT 1",
                      2, p2, def_notify_take, r, &e) < 0)
      r->step--;
    ferry_error_clear(&e);
    if (c->join_branches_sql && *c->join_branches_sql) {
      const char *p1[1] = {key};
      r->step++;
      if (joget_pg_read(c, c->join_branches_sql, 1, p1, def_joins_take, r, &e) < 0) r->step--;
      ferry_error_clear(&e);
    }
  }
  free(path);
  free(seg);
  free(segp);
  free(app);
  free(ver);
  free(proc);
  def_maybe_finish(r);
}

/* ---- gate: the admin identity, once per run --------------------------------------------------------------
 */
static void run_item(jt *t);

static void dispatch(jt *t);

static void gate_release(joget_snk *k) {
  jt *w = k->gate_wait;
  k->gate_wait = NULL;
  while (w) {
    jt *next = w->gate_next;
    if (k->gate == 2)
      dispatch(w);
    else
      jt_fail_err(w, &k->gate_err);
    w = next;
  }
}

typedef struct gate_rq {
  joget_snk *k;
  int step;
} gate_rq;

static void gate_fail(joget_snk *k, const ferry_error *e) {
  ferry_error_copy(&k->gate_err, e);
  if (e->code == FERRY_ETRANSIENT) {
    k->gate = 0; /* tried again by the next item (the waiting ones fail and are retried by the core) */
  } else {
    k->gate = 3;
  }
  if (!k->gate_err.code) ferry_error_set(&k->gate_err, FERRY_EINTERNAL, "gate failed");
  jt *w = k->gate_wait;
  k->gate_wait = NULL;
  while (w) {
    jt *next = w->gate_next;
    jt_fail_err(w, &k->gate_err);
    w = next;
  }
}

static void gate_list_take(void *arg, json_t *doc, const ferry_error *err) {
  gate_rq *g = arg;
  joget_snk *k = g->k;
  free(g);
  if (err) {
    gate_fail(k, err);
    return;
  }
  k->gate = 2;
  gate_release(k);
}

static void gate_user_take(void *arg, json_t *doc, const ferry_error *err) {
  gate_rq *g = arg;
  joget_snk *k = g->k;
  joget_ctx_t *c = k->c;
  if (err) {
    free(g);
    gate_fail(k, err);
    return;
  }
  const char *got = joget_str(doc, "username");
  if (!got || strcmp(got, c->user)) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(
        &e, FERRY_EPERM,
        "joget %s: the administrator \"%s\" is not authenticated (workflow/currentUsername answers "
        "\"%s\"): check the user and password (or hash) options",
        c->host_label, c->user, got ? got : "");
    free(g);
    gate_fail(k, &e);
    ferry_error_clear(&e);
    return;
  }
  /* the role: a console call needs ROLE_ADMIN (SYSADMIN) */
  const char *params[] = {"sort", "id", "desc", "false", "rows", "1", NULL};
  joget_ident id;
  joget_admin_ident(c, &id);
  ferry_error e = FERRY_ERROR_INIT;
  if (joget_call(c, "GET", "console/monitor/running/list", params, &id, 0, gate_list_take, g, &e) < 0) {
    free(g);
    gate_fail(k, &e);
  }
  ferry_error_clear(&e);
}

static void gate_enter(jt *t) {
  joget_snk *k = t->k;
  if (k->gate == 2) {
    dispatch(t);
    return;
  }
  if (k->gate == 3) {
    jt_fail_err(t, &k->gate_err);
    return;
  }
  t->gate_next = k->gate_wait;
  k->gate_wait = t;
  if (k->gate == 1) return;
  k->gate = 1;
  ferry_error_clear(&k->gate_err);
  gate_rq *g = calloc(1, sizeof *g);
  if (!g) abort();
  g->k = k;
  joget_ident id;
  joget_admin_ident(k->c, &id);
  ferry_error e = FERRY_ERROR_INIT;
  if (joget_call(k->c, "GET", "workflow/currentUsername", NULL, &id, 0, gate_user_take, g, &e) < 0) {
    free(g);
    gate_fail(k, &e);
  }
  ferry_error_clear(&e);
}

/* ---- target definition -------------------------------------------------------------------------------- */
/* Target package version for a source definition: version_map["app#ver"], version_map["app"], version.
 * Returns "same", "latest" or a number (borrowed). */
static const char *version_rule(joget_ctx_t *c, const char *app, const char *ver) {
  if (c->version_map) {
    char *k = joget_asprintf("%s#%s", app, ver);
    const char *v = json_string_value(json_object_get(c->version_map, k));
    free(k);
    if (v) return v;
    v = json_string_value(json_object_get(c->version_map, app));
    if (v) return v;
  }
  return c->version;
}

static void def_resolved(jt *t) {
  const char *ver = t->tver;
  if (!ver) ver = json_string_value(json_object_get(t->plan, "latest"));
  if (!ver) {
    jt_fail(t, FERRY_ENOENT, "no target version for %s", joget_str(t->src, "definition"));
    return;
  }
  if (!t->tver) t->tver = joget_strdup(ver);
  t->tdef = joget_asprintf("%s#%s#%s", t->tapp, t->tver, t->tproc);
  json_object_set_new(t->rep, "target_definition", json_string(t->tdef));
  t->after_def(t);
}

/* Maps a source definition to the target's (for children too); NULL when "latest" needs a lookup that is
 * in the cache as key "app#proc". */
static char *map_def(jt *t, const char *sdef, int *needs_latest) {
  char *app, *ver, *proc;
  *needs_latest = 0;
  if (joget_def_split(sdef, &app, &ver, &proc)) return NULL;
  const char *rule = version_rule(t->c, app, ver);
  char *out = NULL;
  if (!strcmp(rule, "same"))
    out = joget_asprintf("%s#%s#%s", app, ver, proc);
  else if (strcmp(rule, "latest"))
    out = joget_asprintf("%s#%s#%s", app, rule, proc);
  else {
    char *key = joget_asprintf("%s#%s", app, proc);
    json_t *v = json_object_get(t->k->latest.done, key);
    if (json_is_string(v))
      out = joget_asprintf("%s#%s#%s", app, json_string_value(v), proc);
    else
      *needs_latest = 1;
    free(key);
  }
  free(app);
  free(ver);
  free(proc);
  return out;
}

static void resolve_def(jt *t, void (*next)(jt *)) {
  const char *sdef = joget_str(t->src, "definition");
  char *app, *ver, *proc;
  if (joget_def_split(sdef, &app, &ver, &proc)) {
    jt_fail(t, FERRY_EINVAL, "bad definition \"%s\" in the item (expected app#version#process)",
            sdef ? sdef : "");
    return;
  }
  t->tapp = app;
  t->tproc = proc;
  const char *rule = version_rule(t->c, app, ver);
  if (!strcmp(rule, "same"))
    t->tver = joget_strdup(ver);
  else if (strcmp(rule, "latest"))
    t->tver = joget_strdup(rule);
  free(ver);
  t->after_def = next;
  if (!t->tver) {
    char *key = joget_asprintf("%s#%s", app, proc);
    jt_lookup(t, &t->k->latest, key, latest_start, "latest", 0);
    free(key);
  }
  jt_then(t, def_resolved);
}

/* ---- reading a target instance: open activities, variables --------------------------------------------- */
static void take_act_view(jt *t, json_t *doc, void *ud) {
  json_t *act = ud;
  if (!doc) {
    json_object_set_new(act, "_gone", json_true());
    return;
  }
  json_object_set_new(act, "def_id",
                      json_string(joget_str(doc, "activityDefId") ? joget_str(doc, "activityDefId") : ""));
  if (joget_str(doc, "state")) json_object_set_new(act, "state", json_string(joget_str(doc, "state")));
  json_t *as = joget_list(doc, "assignee");
  json_object_set_new(act, "assignees", as);
  const char *acc = joget_str(doc, "acceptedUser");
  const char *st = joget_str(act, "state");
  if (!acc && st && !strcmp(st, "open.running") && json_array_size(as) == 1)
    acc = json_string_value(json_array_get(as, 0));
  json_object_set_new(act, "accepted_by", acc ? json_string(acc) : json_null());
}

static void read_acts_page(jt *t, const char *pid, int start);

static void take_act_list(jt *t, json_t *doc, void *ud) {
  acts_pg *pg = ud;
  json_t *rows = joget_list(doc, "data");
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r) {
    const char *st = joget_str(r, "state"), *id = joget_str(r, "id");
    if (!id || !st || strncmp(st, "open", 4)) continue;
    json_t *act = json_pack("{s:s, s:s, s:s, s:[], s:n}", "def_id", "", "id", id, "state", st, "assignees",
                            "accepted_by");
    json_array_append_new(t->tacts, act);
    char *aid = joget_seg(id);
    char *path = joget_asprintf("monitoring/activity/view/%s", aid);
    jt_admin(t, "GET", path, NULL, take_act_view, act);
    free(path);
    free(aid);
  }
  int64_t total = json_integer_value(json_object_get(doc, "total"));
  if (total > pg->start + 100 && json_array_size(rows) > 0) read_acts_page(t, pg->pid, pg->start + 100);
  json_decref(rows);
}

static void read_acts_page(jt *t, const char *pid, int start) {
  char st[32];
  snprintf(st, sizeof st, "%d", start);
  const char *params[] = {"processId", pid, "rows", "100", "start", st, "sort", "id", "desc", "false", NULL};
  acts_pg *pg = calloc(1, sizeof *pg);
  if (!pg) abort();
  pg->pid = joget_strdup(pid);
  pg->start = start;
  /* the page context lives in a list of the task, freed with it */
  json_array_append_new(t->cands_pg, json_integer((json_int_t)(intptr_t)pg));
  jt_admin(t, "GET", "monitoring/activity/list", params, take_act_list, pg);
}

/* Replaces t->tacts with the open activities of `pid` (confirm with activity/list?rows=100 + view). */
static void read_acts(jt *t, const char *pid) {
  json_decref(t->tacts);
  t->tacts = json_array();
  read_acts_page(t, pid, 0);
}

static void take_acts_pg(jt *t, PGresult *res, void *ud) {
  for (int i = 0; i < PQntuples(res); i++) {
    json_t *as = json_loads(PQgetvalue(res, i, 3), 0, NULL);
    json_t *act =
        json_pack("{s:s, s:s, s:s, s:o, s:o}", "def_id", PQgetvalue(res, i, 1), "id", PQgetvalue(res, i, 0),
                  "state", PQgetvalue(res, i, 2), "assignees", json_is_array(as) ? as : json_array(),
                  "accepted_by", PQgetisnull(res, i, 4) ? json_null() : json_string(PQgetvalue(res, i, 4)));
    if (as && !json_is_array(as)) json_decref(as);
    json_array_append_new(t->tacts, act);
  }
}

/* Open activities of `pid` into t->tacts: from the tables with dsn (one query), else as read_acts. */
static void read_scope_acts(jt *t, const char *pid) {
  if (!t->c->pg) {
    read_acts(t, pid);
    return;
  }
  json_decref(t->tacts);
  t->tacts = json_array();
  const char *p[1] = {pid};
  jt_pg(
      t,
      "SELECT a.id, a.activitydefinitionid, s.name, COALESCE((SELECT json_agg(x.resourceid ORDER BY x.cnt) "
      "FROM shkassignmentstable x WHERE x.activityid = a.id AND x.isvalid), '[]'), (SELECT x.resourceid FROM "
      "shkassignmentstable x WHERE x.activityid = a.id AND x.isvalid AND x.isaccepted ORDER BY x.cnt LIMIT "
      "1) "
      "FROM shkactivities a JOIN shkactivitystates s ON s.oid = a.state WHERE a.processid = $1 AND s.name "
      "LIKE "
      "'open.%' ORDER BY a.activated, a.id",
      1, p, take_acts_pg, NULL);
}

static void tidy_acts(jt *t) {
  for (size_t i = json_array_size(t->tacts); i-- > 0;)
    if (json_object_get(json_array_get(t->tacts, i), "_gone")) json_array_remove(t->tacts, i);
}

static void take_vars(jt *t, json_t *doc, void *ud) {
  json_t *list = joget_list(doc, "variable");
  size_t i;
  json_t *v;
  json_array_foreach(list, i, v) {
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) json_object_set(t->tvars, k, x);
  }
  json_decref(list);
}

static void read_vars(jt *t, const char *pid) {
  json_decref(t->tvars);
  t->tvars = json_object();
  json_decref(t->tdbl);
  t->tdbl = json_object();
  char *s = joget_seg(pid);
  char *path = joget_asprintf("workflow/variable/list/%s", s);
  jt_admin(t, "GET", path, NULL, take_vars, NULL);
  free(path);
  free(s);
}

/* Variables from the tables (dsn): the value column that is set gives the text the JSON API would print;
 * doubles are compared as numbers. Dates, XML and blobs (and variables the source has but the rows lack:
 * Shark may keep them elsewhere) make the caller read them over HTTP instead (workflow/variable/list). */
static json_t *scope_src(jt *t);

static void take_vars_pg(jt *t, PGresult *res, void *ud) {
  for (int i = 0; i < PQntuples(res); i++) {
    const char *name = PQgetvalue(res, i, 0);
    if (json_object_get(t->tvars, name)) continue; /* first part only */
    if (PQgetvalue(res, i, 5)[0] == 't') t->vars_http = 1;
    const char *v = "";
    if (!PQgetisnull(res, i, 1))
      v = PQgetvalue(res, i, 1);
    else if (!PQgetisnull(res, i, 2))
      v = PQgetvalue(res, i, 2);
    else if (!PQgetisnull(res, i, 3)) {
      v = PQgetvalue(res, i, 3);
      json_object_set_new(t->tdbl, name, json_true());
    } else if (!PQgetisnull(res, i, 4))
      v = PQgetvalue(res, i, 4)[0] == 't' ? "true" : "false";
    json_object_set_new(t->tvars, name, json_string(v));
  }
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(scope_src(t), "variables"), k, v)
    if (!json_object_get(t->tvars, k)) t->vars_http = 1;
}

static void read_scope_vars(jt *t, const char *pid) {
  if (!t->c->pg) {
    read_vars(t, pid);
    return;
  }
  json_decref(t->tvars);
  t->tvars = json_object();
  json_decref(t->tdbl);
  t->tdbl = json_object();
  t->vars_http = 0;
  const char *p[1] = {pid};
  jt_pg(t,
        "SELECT d.variabledefinitionid, d.variablevaluevchar, d.variablevaluelong, d.variablevaluedbl, "
        "d.variablevaluebool, (d.variablevaluedate IS NOT NULL OR d.variablevalue IS NOT NULL OR "
        "d.variablevaluexml IS NOT NULL) FROM shkprocessdata d JOIN shkprocesses p ON p.oid = d.process "
        "WHERE p.id = $1 ORDER BY d.variabledefinitionid, d.ordno",
        1, p, take_vars_pg, NULL);
}

/* Continuation after read_scope_vars: falls back to HTTP when needed, then runs t->after_vars. */
static void vars_fix(jt *t) {
  if (t->vars_http) {
    t->vars_http = 0;
    read_vars(t, joget_str(json_array_get(t->scopes, t->si), "pid"));
    jt_then(t, t->after_vars);
    return;
  }
  t->after_vars(t);
}

static void then_vars(jt *t, void (*next)(jt *)) {
  t->after_vars = next;
  jt_then(t, vars_fix);
}

static int tv_same(jt *t, const char *name, const char *sv) {
  const char *tv = joget_str(t->tvars, name);
  if (!tv) return 0;
  if (!strcmp(tv, sv)) return 1;
  if (!json_object_get(t->tdbl, name) || !*sv) return 0;
  char *e1, *e2;
  double a = strtod(sv, &e1), b = strtod(tv, &e2);
  return !*e1 && !*e2 && a == b;
}

/* ---- comparing a scope (check and verify) ------------------------------------------------------------- */
static int str_in(json_t *arr, const char *s) {
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v)
    if (json_is_string(v) && !strcmp(json_string_value(v), s)) return 1;
  return 0;
}

/* Pairs source activity i with a target activity of the same definition (in order). Returns a new array:
 * index of the target activity for each source activity, or -1. */
static json_t *pair_acts(json_t *sacts, json_t *tacts) {
  size_t nt = json_array_size(tacts);
  char *used = calloc(nt + 1, 1);
  if (!used) abort();
  json_t *out = json_array();
  size_t i, j;
  json_t *sa, *ta;
  json_array_foreach(sacts, i, sa) {
    long found = -1;
    const char *sd = joget_str(sa, "def_id") ? joget_str(sa, "def_id") : "";
    json_array_foreach(tacts, j, ta) {
      if (used[j]) continue;
      if (!strcmp(sd, joget_str(ta, "def_id") ? joget_str(ta, "def_id") : "")) {
        found = (long)j;
        break;
      }
    }
    if (found >= 0) used[found] = 1;
    json_array_append_new(out, json_integer(found));
  }
  free(used);
  return out;
}

static int same_set(json_t *a, json_t *b) {
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v)
    if (!str_in(b, json_string_value(v))) return 0;
  json_array_foreach(b, i, v)
    if (!str_in(a, json_string_value(v))) return 0;
  return 1;
}

static char *defs_text(json_t *acts) {
  joget_sb sb = {0};
  joget_sb_add(&sb, "[");
  size_t i;
  json_t *a;
  json_array_foreach(acts, i, a)
    joget_sb_addf(&sb, "%s%s", i ? ", " : "", joget_str(a, "def_id") ? joget_str(a, "def_id") : "?");
  joget_sb_add(&sb, "]");
  return joget_sb_steal(&sb);
}

/* Appends differences between the source body and the target's activities/variables to t->diffs. */
static void compare_scope(jt *t, json_t *sbody, const char *pid) {
  json_t *sacts = json_object_get(sbody, "activities");
  json_t *pairs = pair_acts(sacts, t->tacts);
  int missing = 0;
  size_t i;
  json_t *sa;
  json_array_foreach(sacts, i, sa) {
    long j = (long)json_integer_value(json_array_get(pairs, i));
    if (j < 0) {
      missing = 1;
      continue;
    }
    json_t *ta = json_array_get(t->tacts, (size_t)j);
    if (t->mode == FERRY_MODE_RUN && joget_str(sa, "id") && joget_str(ta, "id")) {
      /* old -> new activity id, for the cutover's id map */
      ferry_error me = FERRY_ERROR_INIT;
      if (ferry_task_map_id(t->task, "activity", joget_str(sa, "id"), joget_str(ta, "id"), &me) < 0)
        ferry_log(t->c->ins, FERRY_LOG_WARN, "instance %s: mapping activity %s: %s", item_id(t),
                  joget_str(sa, "id"), me.message ? me.message : "");
      ferry_error_clear(&me);
    }
    json_t *sas = json_object_get(sa, "assignees");
    if (json_array_size(sas) > 0 && !same_set(sas, json_object_get(ta, "assignees"))) {
      char *a = json_dumps(sas, JSON_COMPACT),
           *b = json_dumps(json_object_get(ta, "assignees"), JSON_COMPACT);
      json_array_append_new(t->diffs,
                            json_sprintf("%s activity %s: assignees %s on the target, %s on the source", pid,
                                         joget_str(sa, "def_id"), b, a));
      free(a);
      free(b);
    }
    const char *sacc = joget_str(sa, "accepted_by"), *tacc = joget_str(ta, "accepted_by");
    if (sacc && (!tacc || strcmp(sacc, tacc)))
      json_array_append_new(
          t->diffs, json_sprintf("%s activity %s: accepted by %s on the source, %s on the target", pid,
                                 joget_str(sa, "def_id"), sacc, tacc ? tacc : "nobody"));
  }
  if (missing || json_array_size(sacts) != json_array_size(t->tacts)) {
    char *a = defs_text(sacts), *b = defs_text(t->tacts);
    json_array_append_new(t->diffs,
                          json_sprintf("%s: open activities %s on the target, %s on the source", pid, b, a));
    free(a);
    free(b);
  }
  json_decref(pairs);
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(sbody, "variables"), k, v) {
    char *sv = var_text(v);
    const char *tv = joget_str(t->tvars, k);
    if (sv && *sv && !tv_same(t, k, sv))
      json_array_append_new(t->diffs,
                            json_sprintf("%s variable %s: \"%s\" on the target, \"%s\" on the source", pid, k,
                                         tv ? tv : "(unset)", sv));
    free(sv);
  }
}

/* ---- RUN: start ------------------------------------------------------------------------------------------
 */
static void scopes_begin(jt *t);
static void do_start(jt *t);

static void cands_find(jt *t, void (*next)(jt *));
static void single_check(jt *t);
static int known_elsewhere(jt *t, const char *pid, const char *src_id);
static char *reverse_owner(jt *t, const char *pid);
/* target instance -> source instance (the plugin's own bookkeeping: '_' keeps it out of export-map) */
#define JOGET_REVERSE_KIND "_joget-target-process"

static void adopt(jt *t, const char *pid, int adopted) {
  ferry_error e = FERRY_ERROR_INIT;
  json_object_set_new(t->st, "pid", json_string(pid));
  json_object_set_new(t->rep, "target_process_id", json_string(pid));
  json_object_set_new(t->rep, "target_id", json_string(pid));
  if (adopted) {
    json_object_set_new(t->rep, "adopted", json_true());
    json_object_set_new(t->st, "adopted", json_true());
  }
  if (ferry_task_map_id(t->task, "process", item_id(t), pid, &e) < 0 ||
      ferry_task_map_id(t->task, JOGET_REVERSE_KIND, pid, item_id(t), &e) < 0) {
    jt_fail_err(t, &e);
    ferry_error_clear(&e);
    return;
  }
  if (intent(t, "started") < 0) return;
  /* defence in depth: exactly one new target instance of this definition for this record since the intent,
     whatever made a second one (a transport that re-sent the start, a proxy, an operator) */
  cands_find(t, single_check);
}

/* t->cands (this definition, this record, created since the intent) holds another instance unknown to the
 * journal: a duplicate of the one just confirmed or adopted. Abort it, and say so. */
static void check_begin(jt *t);
static void resume_single(jt *t);

/* After the duplicate check: right after the start, on to the scopes; at the final check (a start the
 * server ran late, after its answer was lost), on to comparing. */
static void duplicates_aborted(jt *t) {
  lock_drop(t);
  if (t->final_dup) {
    t->final_dup = 2;
    check_begin(t);
    return;
  }
  scopes_begin(t);
}

static void single_check(jt *t) {
  const char *pid = joget_str(t->st, "pid");
  int64_t since = json_integer_value(json_object_get(t->st, "intent_ms")) - t->c->clock_skew_ms;
  json_t *dups = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(t->cands, i, c) {
    const char *id = joget_str(c, "id");
    json_t *cm = json_object_get(c, "created_ms");
    if (!id || !strcmp(id, pid) || (json_is_integer(cm) && json_integer_value(cm) < since)) continue;
    if (known_elsewhere(t, id, item_id(t))) continue;
    char *owner = reverse_owner(t, id);
    int mine = owner != NULL; /* mapped to this item: an id it had before (cannot be a duplicate) */
    free(owner);
    if (!mine) json_array_append_new(dups, json_string(id));
  }
  if (json_array_size(dups) == 0) {
    json_decref(dups);
    duplicates_aborted(t);
    return;
  }
  json_object_set(t->st, "duplicates", dups);
  if (intent(t, "abort-duplicate") < 0) {
    json_decref(dups);
    return;
  }
  json_array_foreach(dups, i, c) {
    const char *id = json_string_value(c);
    ferry_log(t->c->ins, FERRY_LOG_WARN,
              "instance %s: the target holds a second new instance %s of %s for record %s besides %s: aborting "
              "it",
              item_id(t), id, t->tdef, joget_str(t->src, "record_id"), pid);
    rep_push(t, "duplicates_aborted", json_string(id));
    loss(t, json_pack("{s:s, s:s, s:s}", "kind", "duplicate", "instance", id, "what",
                      "a second target instance for this record appeared with the start (a re-sent "
                      "request?); it was aborted"));
    char *seg = joget_seg(id);
    char *path = joget_asprintf("workflow/process/abort/%s", seg);
    jt_admin(t, "POST", path, NULL, NULL, NULL);
    free(path);
    free(seg);
  }
  json_decref(dups);
  jt_then(t, duplicates_aborted);
}

static void take_start(jt *t, json_t *doc, void *ud) {
  const char *pid = joget_str(doc, "processId");
  if (!pid || !*pid) {
    ferry_error_set(
        &t->err, FERRY_EINVAL,
        "workflow/process/start of %s as %s for record %s answered no processId: the target refused "
        "the start (the requester is not in the process start whitelist, the app version is not "
        "published, or a variable value does not fit its type; the server log names the cause; "
        "`ferry plan` checks the first two)",
        t->tdef, t->uid_label ? t->uid_label : "?", joget_str(t->src, "record_id"));
    return;
  }
  const char *rid = joget_str(doc, "recordId");
  if (rid && strcmp(rid, joget_str(t->src, "record_id")))
    note(t, "process/start answered recordId %s, sent %s", rid, joget_str(t->src, "record_id"));
  json_object_set_new(t->plan, "new_pid", json_string(pid));
}

static void after_start_call(jt *t) {
  joget_test_crash("start");
  const char *pid = joget_str(t->plan, "new_pid");
  char *p = joget_strdup(pid);
  adopt(t, p, 0);
  free(p);
}

static void start_with_ident(jt *t) {
  const char *req = joget_str(t->src, "requester");
  const char *hash = json_string_value(json_object_get(t->plan, "hash"));
  free(t->uid_label);
  t->uid_label = NULL;
  user_ident_from(t->c, req, hash, &t->uid, &t->uid_label);
  /* parameters: recordId and var_* */
  json_t *vars = json_object_get(t->src, "variables");
  size_t nv = json_object_size(vars);
  const char **kv = calloc(2 * nv + 3, sizeof *kv);
  char **own = calloc(2 * nv + 1, sizeof *own);
  if (!kv || !own) abort();
  size_t k = 0, o = 0;
  kv[k++] = "recordId";
  kv[k++] = joget_str(t->src, "record_id");
  const char *name;
  json_t *v;
  json_object_foreach(vars, name, v) {
    char *val = var_text(v);
    if (!var_at_start(name, val)) {
      free(val);
      continue;
    }
    own[o] = joget_asprintf("var_%s", name);
    kv[k++] = own[o++];
    own[o] = val;
    kv[k++] = own[o++];
  }
  kv[k] = NULL;
  char *seg_app = joget_seg(t->tapp), *seg_proc = joget_seg(t->tproc);
  char *path = joget_asprintf("workflow/process/start/%s:%s:%s", seg_app, t->tver, seg_proc);
  jt_req(t, "POST", path, kv, &t->uid, take_start, NULL);
  for (size_t i = 0; i < o; i++) free(own[i]);
  free(own);
  free(kv);
  free(path);
  free(seg_app);
  free(seg_proc);
  jt_then(t, after_start_call);
}

static void on_before_start(void *arg, int status, const ferry_error *err) {
  jt *t = arg;
  if (status) {
    jt_fail_hook(t, "before_start", status, err);
    return;
  }
  if (intent(t, "start") < 0) return; /* saves the hooks' state (snapshots) before the side effect */
  joget_test_crash("before_start");
  if (t->c->start_mode == JOGET_START_HASH)
    jt_lookup(t, &t->k->hashes, joget_str(t->src, "requester"), hash_start, "hash", 0);
  jt_then(t, start_with_ident);
}

static void do_start(jt *t) {
  json_object_set_new(t->st, "intent_ms", json_integer(joget_now_ms()));
  json_object_set_new(t->st, "target_definition", json_string(t->tdef));
  if (intent(t, "start") < 0) return;
  json_t *data = json_pack("{s:s, s:s, s:s}", "record_id", joget_str(t->src, "record_id"), "definition",
                           joget_str(t->src, "definition"), "target_definition", t->tdef);
  ferry_fire(t->c->ins, t->task, "before_start", data, on_before_start, t);
  json_decref(data);
}

/* -- reconcile: an instance started by a run that died before recording it -- */
/* Is target instance `pid` another object's? The journal maps it back to the source id it was created for
 * (mapped ids are visible to every item at once: the id map is written when mapped). */
/* The source id a target instance was created for, from the reverse map (the kind before ABI 1.1 had no
 * leading '_': journals of earlier runs keep it). malloc'd or NULL. */
static char *reverse_owner(jt *t, const char *pid) {
  char *o = ferry_task_lookup_id(t->task, JOGET_REVERSE_KIND, pid);
  return o ? o : ferry_task_lookup_id(t->task, JOGET_REVERSE_KIND + 1, pid);
}

static int known_elsewhere(jt *t, const char *pid, const char *src_id) {
  char *owner = reverse_owner(t, pid);
  int other = owner && strcmp(owner, src_id);
  free(owner);
  return other;
}

static void reconcile_pick(jt *t) {
  /* t->cands: [{"id", "created_ms"?}] already filtered by definition and record id; oldest first */
  int64_t since = json_integer_value(json_object_get(t->st, "intent_ms")) - t->c->clock_skew_ms;
  size_t i;
  json_t *c;
  json_array_foreach(t->cands, i, c) {
    const char *id = joget_str(c, "id");
    json_t *cm = json_object_get(c, "created_ms");
    if (json_is_integer(cm) && json_integer_value(cm) < since) continue;
    if (known_elsewhere(t, id, item_id(t))) continue;
    ferry_log(t->c->ins, FERRY_LOG_INFO,
              "instance %s: adopting target instance %s started by an interrupted run", item_id(t), id);
    char *p = joget_strdup(id);
    adopt(t, p, 1);
    free(p);
    return;
  }
  ferry_log(t->c->ins, FERRY_LOG_DEBUG, "instance %s: nothing to adopt on the target: starting", item_id(t));
  do_start(t);
}

static void take_cands_pg(jt *t, PGresult *res, void *ud) {
  for (int i = 0; i < PQntuples(res); i++)
    json_array_append_new(t->cands, json_pack("{s:s, s:I}", "id", PQgetvalue(res, i, 0), "created_ms",
                                              (json_int_t)atoll(PQgetvalue(res, i, 1))));
}

/* "yyyy-MM-dd hh:mm a" (the emulator's and a default Joget's display format) in UTC -> ms, or -1 */
/* A start time as the running list prints it, as an upper bound in ms (the list has minute precision and
 * the server's display time zone is unknown): "yyyy-MM-dd hh:mm a" (the emulator's, in UTC) or Joget's
 * default "dd-MM-yyyy hh:mm aa" in the user's or server's time zone (docs/joget-facts.md 5.3), for which
 * 14 hours are added (the widest UTC offset), so that reconcile never drops an instance created after the
 * intent; with dsn the exact creation time is read instead. -1 when unreadable (then not filtered). */
static int64_t parse_display_time(const char *s) {
  if (!s) return -1;
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  const char *e = strptime(s, "%Y-%m-%d %I:%M %p", &tm);
  if (e && !*e) return (int64_t)timegm(&tm) * 1000 + 59999;
  memset(&tm, 0, sizeof tm);
  e = strptime(s, "%d-%m-%Y %I:%M %p", &tm);
  if (e && !*e) return (int64_t)timegm(&tm) * 1000 + 59999 + 14 * 3600 * 1000LL;
  return -1;
}

static void take_cand_view(jt *t, json_t *doc, void *ud) {
  json_t *c = ud;
  if (doc && joget_str(doc, "processDefId") && !strcmp(joget_str(doc, "processDefId"), t->tdef))
    json_object_set_new(c, "def_ok", json_true());
}

static void cands_views_done(jt *t) {
  json_t *keep = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(t->cands, i, c)
    if (json_object_get(c, "def_ok")) json_array_append(keep, c);
  json_decref(t->cands);
  t->cands = keep;
  void (*next)(jt *) = t->after_cands;
  t->after_cands = NULL;
  next(t);
}

static void take_cands_http(jt *t, json_t *doc, void *ud) {
  json_t *rows = joget_list(doc, "data");
  const char *rid = joget_str(t->src, "record_id");
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r) {
    const char *id = joget_str(r, "id"), *rrid = joget_str(r, "recordId"), *st = joget_str(r, "state");
    if (!id || !rrid || strcmp(rrid, rid) || (st && !strcmp(st, "open.not_running.not_started"))) continue;
    json_t *c = json_pack("{s:s}", "id", id);
    int64_t ms = parse_display_time(joget_str(r, "startedTime"));
    if (ms >= 0) json_object_set_new(c, "created_ms", json_integer(ms));
    json_array_append_new(t->cands, c);
    char *seg = joget_seg(id);
    char *path = joget_asprintf("monitoring/process/view/%s", seg);
    jt_admin(t, "GET", path, NULL, take_cand_view, c);
    free(path);
    free(seg);
  }
  json_decref(rows);
}

/* Fills t->cands with the running target instances of t->tdef linked to the item's record id and created
 * since the intent (less clock_skew_ms), oldest first, then runs next(t). The query reconcile and the
 * duplicate check share. */
static void cands_find(jt *t, void (*next)(jt *)) {
  json_decref(t->cands);
  t->cands = json_array();
  if (t->c->pg) {
    char since[32];
    snprintf(since, sizeof since, "%lld",
             (long long)(json_integer_value(json_object_get(t->st, "intent_ms")) - t->c->clock_skew_ms));
    const char *p[3] = {t->tdef, joget_str(t->src, "record_id"), since};
    jt_pg(t,
          "SELECT p.id, p.created FROM shkprocesses p LEFT JOIN wf_process_link l ON l.processid = p.id "
          "WHERE p.pdefname = $1 AND COALESCE(l.originprocessid, p.id) = $2 AND p.activityrequesterprocessid "
          "IS NULL AND p.state IN (1000000, 1000004) AND p.created >= $3::bigint ORDER BY p.created, p.id",
          3, p, take_cands_pg, NULL);
    jt_then(t, next);
    return;
  }
  const char *params[] = {
      "recordId", joget_str(t->src, "record_id"), "appId", t->tapp, "sort", "id", "desc", "false", "rows", "100",
      NULL};
  jt_admin(t, "GET", "console/monitor/running/list", params, take_cands_http, NULL);
  t->after_cands = next;
  jt_then(t, cands_views_done);
}

static void reconcile_start(jt *t) { cands_find(t, reconcile_pick); }

/* ---- RUN: scopes (the instance, then each sub-flow child) -----------------------------------------------
 */
static void scope_next(jt *t);
static void scope_acts_read(jt *t);
static void scope_joins(jt *t);
static void scope_children(jt *t);
static void scope_reassign(jt *t);
static void scope_vars(jt *t);
static void finish_run(jt *t);

static json_t *scope_src(jt *t) { return json_object_get(json_array_get(t->scopes, t->si), "src"); }
static const char *scope_pid(jt *t) { return joget_str(json_array_get(t->scopes, t->si), "pid"); }

static json_t *scope_state(jt *t) {
  json_t *ss = json_object_get(t->st, "scopes");
  if (!ss) {
    ss = json_object();
    json_object_set_new(t->st, "scopes", ss);
  }
  json_t *s = json_object_get(ss, scope_pid(t));
  if (!s) {
    s = json_object();
    json_object_set_new(ss, scope_pid(t), s);
  }
  return s;
}

static void scopes_begin(jt *t) {
  json_decref(t->scopes);
  t->scopes = json_pack("[{s:O, s:s}]", "src", t->src, "pid", joget_str(t->st, "pid"));
  t->si = 0;
  json_decref(t->diffs);
  t->diffs = json_array();
  scope_next(t);
}

/* A scope converged in an earlier attempt: its children as recorded. 0 when one is not recorded. */
static int push_recorded_children(jt *t) {
  json_t *children = json_object_get(t->st, "children");
  json_t *subs = json_object_get(json_object_get(scope_src(t), "extra"), "subflows");
  size_t i, j;
  json_t *sf, *ch;
  json_array_foreach(subs, i, sf)
    json_array_foreach(json_object_get(sf, "children"), j, ch)
      if (!joget_str(children, joget_str(ch, "id"))) return 0;
  json_array_foreach(subs, i, sf)
    json_array_foreach(json_object_get(sf, "children"), j, ch)
      json_array_append_new(t->scopes,
                            json_pack("{s:O, s:s}", "src", ch, "pid", joget_str(children, joget_str(ch, "id"))));
  return 1;
}

static void scope_next(jt *t) {
  if (t->si >= json_array_size(t->scopes)) {
    finish_run(t);
    return;
  }
  if (json_is_true(json_object_get(scope_state(t), "done")) && push_recorded_children(t)) {
    t->si++;
    scope_next(t);
    return;
  }
  t->dirty = 0;
  t->vars_stale = 0;
  read_scope_acts(t, scope_pid(t));
  read_scope_vars(t,
                  scope_pid(t)); /* in parallel: used by the variables step unless engine logic runs first */
  then_vars(t, scope_joins);
}

/* multiset difference helpers over def ids */
static json_t *defs_of(json_t *acts) {
  json_t *d = json_array();
  size_t i;
  json_t *a;
  json_array_foreach(acts, i, a)
    json_array_append_new(d, json_string(joget_str(a, "def_id") ? joget_str(a, "def_id") : ""));
  return d;
}

static json_t *minus(json_t *a, json_t *b) {
  json_t *bb = json_copy(b);
  json_t *out = json_array();
  size_t i, j;
  json_t *v, *w;
  json_array_foreach(a, i, v) {
    long hit = -1;
    json_array_foreach(bb, j, w)
      if (json_equal(v, w)) {
        hit = (long)j;
        break;
      }
    if (hit >= 0)
      json_array_remove(bb, (size_t)hit);
    else
      json_array_append(out, v);
  }
  json_decref(bb);
  return out;
}

static void scope_call_next(jt *t);
static void take_act_start(jt *t, json_t *doc, void *ud);
static void take_act_start(jt *t, json_t *doc, void *ud) {
  json_t *call = ud;
  json_t *res = json_object_get(doc, "result");
  if (!json_is_true(res) && !(json_is_string(res) && !strcmp(json_string_value(res), "true")))
    ferry_error_set(
        &t->err, FERRY_EINVAL,
        "monitoring/activity/start/%s/%s answered result:false: the activity does not exist in the "
        "target definition %s, or the engine refused it (see the server log; `ferry plan` checks "
        "activity ids)",
        scope_pid(t), joget_str(call, "def"), t->tdef);
}

static void after_call(jt *t) {
  t->acts_called++;
  t->vars_stale = 1;
  joget_test_crash("activity");
  t->ci++;
  scope_call_next(t);
}

static void scope_confirmed(jt *t) {
  tidy_acts(t);
  json_t *s = defs_of(json_object_get(scope_src(t), "activities"));
  json_t *g = defs_of(t->tacts);
  json_t *m1 = minus(s, g), *m2 = minus(g, s);
  int ok = json_array_size(m1) == 0 && json_array_size(m2) == 0;
  json_decref(m1);
  json_decref(m2);
  json_decref(s);
  json_decref(g);
  if (!ok) {
    char *a = defs_text(json_object_get(scope_src(t), "activities")), *b = defs_text(t->tacts);
    jt_fail(
        t, FERRY_ECONFLICT,
        "after activity/start the target instance %s holds the open activities %s, the source %s (a tool, "
        "route or sub-flow on the way may have moved it on; see the server log)",
        scope_pid(t), b, a);
    free(a);
    free(b);
    return;
  }
  scope_children(t);
}

static void scope_call_next(jt *t) {
  if (t->ci >= json_array_size(t->calls)) {
    /* confirm: activity/list?rows=100 + view over HTTP, or the tables with dsn */
    read_scope_acts(t, scope_pid(t));
    jt_then(t, scope_confirmed);
    return;
  }
  json_t *call = json_array_get(t->calls, t->ci);
  json_t *ss = scope_state(t);
  json_object_set_new(ss, "acts", json_string("begun"));
  json_object_set(ss, "call", call);
  if (intent(t, "activity") < 0) return;
  char *p = joget_seg(scope_pid(t)), *d = joget_seg(joget_str(call, "def"));
  int abort_only = joget_str(call, "kind") && !strcmp(joget_str(call, "kind"), "abort");
  char *path = joget_asprintf("monitoring/activity/%s/%s/%s", abort_only ? "abort" : "start", p, d);
  const char *params[] = {"abortCurrent", json_is_true(json_object_get(call, "abort")) ? "true" : "false",
                          NULL};
  jt_admin(t, "POST", path, abort_only ? NULL : params, abort_only ? NULL : take_act_start, call);
  free(path);
  free(p);
  free(d);
  jt_then(t, after_call);
}

static void scope_acts_read(jt *t) {
  tidy_acts(t);
  json_t *sacts = json_object_get(scope_src(t), "activities");
  json_t *S = defs_of(sacts), *T = defs_of(t->tacts);
  json_t *extras = minus(T, S), *missing = minus(S, T);
  json_t *ss = scope_state(t);
  int begun = json_object_get(ss, "acts") != NULL;
  json_decref(t->calls);
  t->calls = json_array();
  t->ci = 0;
  int all = (t->c->mode_always && !begun) || json_array_size(extras) > 0;
  if (!t->c->mode_always && json_array_size(extras) == 0 && json_array_size(missing) == 0) all = 0;
  if (all && json_array_size(S) == 0) {
    /* the source has no open activity here (e.g. a branch waiting at a join): abort what the start made */
    size_t i;
    json_t *d;
    json_array_foreach(extras, i, d) {
      int dup = 0;
      for (size_t j = 0; j < i; j++) dup |= json_equal(json_array_get(extras, j), d);
      if (!dup)
        json_array_append_new(t->calls, json_pack("{s:O, s:b, s:s}", "def", d, "abort", 0, "kind", "abort"));
    }
  } else if (all) {
    size_t i;
    json_t *d;
    json_array_foreach(S, i, d)
      json_array_append_new(t->calls, json_pack("{s:O, s:b}", "def", d, "abort", i == 0));
  } else {
    size_t i;
    json_t *d;
    json_array_foreach(missing, i, d)
      json_array_append_new(t->calls, json_pack("{s:O, s:b}", "def", d, "abort", 0));
  }
  if (json_array_size(S) == 0 && json_array_size(t->calls) == 0 && json_array_size(T) > 0) {
    /* the source has no open activity (only possible inside a sub-flow): nothing to do */
  }
  json_decref(S);
  json_decref(T);
  json_decref(extras);
  json_decref(missing);
  if (json_array_size(t->calls) == 0) {
    scope_children(t);
    return;
  }
  scope_call_next(t);
}

/* -- AND-joins: re-create the arrivals the source's join counts (and_joins: carry) --
 * For each arrival the source's SHKAndJoinTable holds (the source reads it with dsn) that the target's join
 * does not count yet: make the arrived branch's activity open on the target (it usually is: the start path
 * ran the AND split; else monitoring/activity/start), give it to its original performer (reassign) and
 * complete it as that user (workflow/assignment/complete), so that the target's join counts the same
 * arrivals and fires when the open branches complete, as it would have on the source. What the target's
 * join already counts is read from its tables (dsn) or, over HTTP, from the completed activities of the
 * instance, so that a resumed run never completes an arrival twice. */
static void join_next(jt *t);

static void take_tarrived_pg(jt *t, PGresult *res, void *ud) {
  for (int i = 0; i < PQntuples(res); i++) {
    char *key = joget_asprintf("%s|%s", PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
    json_object_set_new(t->tarrived, key, json_integer(json_integer_value(json_object_get(t->tarrived, key)) + 1));
    free(key);
  }
}

static void read_closed_page(jt *t, const char *pid, int start);

/* HTTP: completed activities of the instance; the definition id is the part of the activity id after
 * "<process id>_" (Joget's activity ids are <counter>_<process id>_<activity definition id>). */
static void take_closed(jt *t, json_t *doc, void *ud) {
  acts_pg *pg = ud;
  json_t *rows = joget_list(doc, "data");
  size_t i;
  json_t *r;
  char *mark = joget_asprintf("_%s_", pg->pid);
  json_array_foreach(rows, i, r) {
    const char *st = joget_str(r, "state"), *id = joget_str(r, "id");
    if (!id || !st || strcmp(st, "closed.completed")) continue;
    const char *m = strstr(id, mark);
    if (!m) continue;
    char *key = joget_asprintf("*|%s", m + strlen(mark));
    json_object_set_new(t->tarrived, key, json_integer(json_integer_value(json_object_get(t->tarrived, key)) + 1));
    free(key);
  }
  free(mark);
  int64_t total = json_integer_value(json_object_get(doc, "total"));
  if (total > pg->start + 100 && json_array_size(rows) > 0) read_closed_page(t, pg->pid, pg->start + 100);
  json_decref(rows);
}

static void read_closed_page(jt *t, const char *pid, int start) {
  char st[32];
  snprintf(st, sizeof st, "%d", start);
  const char *params[] = {"processId", pid, "rows", "100", "start", st, "sort", "id", "desc", "false", NULL};
  acts_pg *pg = calloc(1, sizeof *pg);
  if (!pg) abort();
  pg->pid = joget_strdup(pid);
  pg->start = start;
  json_array_append_new(t->cands_pg, json_integer((json_int_t)(intptr_t)pg));
  jt_admin(t, "GET", "monitoring/activity/list", params, take_closed, pg);
}

static void joins_planned(jt *t) {
  json_t *joins = json_object_get(json_object_get(scope_src(t), "extra"), "joins");
  json_decref(t->jarr);
  t->jarr = json_array();
  t->ji = 0;
  json_t *seen = json_object(); /* how many of each (join, def) the list already has */
  size_t i, j;
  json_t *jn, *a;
  json_array_foreach(joins, i, jn) {
    const char *jid = joget_str(jn, "join");
    json_array_foreach(json_object_get(jn, "arrived"), j, a) {
      const char *d = joget_str(a, "def_id");
      char *key = joget_asprintf("%s|%s", jid, d);
      char *any = joget_asprintf("*|%s", d);
      int64_t had = json_integer_value(json_object_get(t->tarrived, t->c->pg ? key : any));
      int64_t n = json_integer_value(json_object_get(seen, key)) + 1;
      json_object_set_new(seen, key, json_integer(n));
      if (n > had)
        json_array_append_new(t->jarr, json_pack("{s:s, s:s, s:s}", "join", jid, "def_id", d, "performer",
                                                 joget_str(a, "performer") ? joget_str(a, "performer") : ""));
      else
        rep_push(t, "joins_carried",
                 json_pack("{s:s, s:s, s:s, s:b}", "join", jid, "activity", d, "performer",
                           joget_str(a, "performer") ? joget_str(a, "performer") : "", "already", 1));
      free(key);
      free(any);
    }
  }
  json_decref(seen);
  if (json_array_size(t->jarr) == 0) {
    scope_acts_read(t);
    return;
  }
  join_next(t);
}

static void scope_joins(jt *t) {
  json_t *joins = json_object_get(json_object_get(scope_src(t), "extra"), "joins");
  if (t->c->joins_report || json_array_size(joins) == 0) {
    scope_acts_read(t);
    return;
  }
  json_decref(t->tarrived);
  t->tarrived = json_object();
  if (t->c->pg) {
    const char *p[1] = {scope_pid(t)};
    jt_pg(t,
          "SELECT j.activitydefinitionid, a.activitydefinitionid FROM shkandjointable j JOIN shkprocesses p ON "
          "p.oid = j.process JOIN shkactivities a ON a.oid = j.activity WHERE p.id = $1",
          1, p, take_tarrived_pg, NULL);
  } else {
    read_closed_page(t, scope_pid(t), 0);
  }
  jt_then(t, joins_planned);
}

static json_t *open_act(jt *t, const char *def) {
  size_t i;
  json_t *a;
  json_array_foreach(t->tacts, i, a) {
    const char *st = joget_str(a, "state");
    if (joget_str(a, "def_id") && !strcmp(joget_str(a, "def_id"), def) && st && !strncmp(st, "open", 4) &&
        !json_object_get(a, "_gone"))
      return a;
  }
  return NULL;
}

static void join_done(jt *t) {
  json_t *arr = json_array_get(t->jarr, t->ji);
  joget_test_crash("join");
  rep_push(t, "joins_carried",
           json_pack("{s:s, s:s, s:s}", "join", joget_str(arr, "join"), "activity", joget_str(arr, "def_id"),
                     "performer", joget_str(arr, "performer")));
  t->ji++;
  t->vars_stale = 1;
  t->dirty = 1;
  read_scope_acts(t, scope_pid(t));
  jt_then(t, join_next);
}

static void join_complete(jt *t) {
  tidy_acts(t);
  json_t *arr = json_array_get(t->jarr, t->ji);
  const char *d = joget_str(arr, "def_id");
  const char *who = joget_str(arr, "performer");
  json_t *act = open_act(t, d);
  if (!act) {
    jt_fail(t, FERRY_ECONFLICT,
            "re-creating the arrival of %s at join %s: the activity is not open on target instance %s after "
            "reassigning it",
            d, joget_str(arr, "join"), scope_pid(t));
    return;
  }
  joget_ident id;
  char *label = NULL;
  if (*who) {
    char *key = joget_asprintf("hash:%s", who);
    user_ident_from(t->c, who, json_string_value(json_object_get(t->plan, key)), &id, &label);
    free(key);
  } else {
    joget_admin_ident(t->c, &id);
  }
  if (intent(t, "join-arrival") < 0) {
    free(label);
    return;
  }
  char *seg = joget_seg(joget_str(act, "id"));
  char *path = joget_asprintf("workflow/assignment/complete/%s", seg);
  jt_req(t, "POST", path, NULL, &id, NULL, NULL);
  free(path);
  free(seg);
  free(label);
  jt_then(t, join_done);
}

static void join_reassigned(jt *t) {
  read_scope_acts(t, scope_pid(t)); /* the new assignee, and the activity id (unchanged) */
  jt_then(t, join_complete);
}

static void join_assign(jt *t) {
  tidy_acts(t);
  json_t *arr = json_array_get(t->jarr, t->ji);
  const char *d = joget_str(arr, "def_id");
  json_t *act = open_act(t, d);
  if (!act) {
    /* activity/start ran it to its end (a tool or route): the arrival happened with it */
    join_done(t);
    return;
  }
  const char *who = *joget_str(arr, "performer") ? joget_str(arr, "performer") : t->c->user;
  json_t *as = json_object_get(act, "assignees");
  if (str_in(as, who)) {
    join_complete(t);
    return;
  }
  if (json_array_size(as) == 0) {
    jt_fail(t, FERRY_ECONFLICT,
            "re-creating the arrival of %s at join %s on target instance %s: the activity has no assignee to "
            "hand to %s",
            d, joget_str(arr, "join"), scope_pid(t), who);
    return;
  }
  if (intent(t, "join-arrival") < 0) return;
  const char *params[] = {"activityId", joget_str(act, "id"), "username", who, "replaceUser",
                          json_string_value(json_array_get(as, 0)), NULL};
  jt_admin(t, "POST", "monitoring/activity/reassign", params, NULL, NULL);
  jt_then(t, join_reassigned);
}

static void join_started(jt *t) {
  read_scope_acts(t, scope_pid(t));
  jt_then(t, join_assign);
}

static void join_next(jt *t) {
  tidy_acts(t);
  if (t->ji >= json_array_size(t->jarr)) {
    /* the activities as they are now (the open branches) are what the usual convergence works on */
    scope_acts_read(t);
    return;
  }
  json_t *arr = json_array_get(t->jarr, t->ji);
  const char *d = joget_str(arr, "def_id");
  const char *who = joget_str(arr, "performer");
  if (*who && t->c->start_mode == JOGET_START_HASH) {
    char *slot = joget_asprintf("hash:%s", who);
    if (!json_object_get(t->plan, slot)) jt_lookup(t, &t->k->hashes, who, hash_start, slot, 0);
    free(slot);
  }
  if (open_act(t, d)) {
    jt_then(t, join_assign);
    return;
  }
  if (intent(t, "join-arrival") < 0) return;
  char *p = joget_seg(scope_pid(t)), *dd = joget_seg(d);
  char *path = joget_asprintf("monitoring/activity/start/%s/%s", p, dd);
  const char *params[] = {"abortCurrent", "false", NULL};
  json_decref(t->jcall);
  t->jcall = json_pack("{s:s}", "def", d); /* read by take_act_start */
  jt_admin(t, "POST", path, params, take_act_start, t->jcall);
  free(path);
  free(p);
  free(dd);
  jt_then(t, join_started);
}

/* -- sub-flow children of the scope -- */
static void children_matched(jt *t);

static void take_children_pg(jt *t, PGresult *res, void *ud) {
  for (int i = 0; i < PQntuples(res); i++)
    json_array_append_new(t->cands, json_pack("{s:s, s:s, s:s?, s:b}", "id", PQgetvalue(res, i, 0), "def",
                                              PQgetvalue(res, i, 1), "act",
                                              PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2),
                                              "act_open", PQgetvalue(res, i, 3)[0] == 't'));
}

static void take_child_view(jt *t, json_t *doc, void *ud) {
  json_t *c = ud;
  if (doc && joget_str(doc, "processDefId"))
    json_object_set_new(c, "def", json_string(joget_str(doc, "processDefId")));
}

static void take_children_http(jt *t, json_t *doc, void *ud) {
  json_t *rows = joget_list(doc, "data");
  const char *rid = joget_str(t->src, "record_id");
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r) {
    const char *id = joget_str(r, "id"), *rrid = joget_str(r, "recordId");
    if (!id || !rrid || strcmp(rrid, rid)) continue;
    int is_scope = 0;
    size_t k;
    json_t *sc;
    json_array_foreach(t->scopes, k, sc) is_scope |= !strcmp(joget_str(sc, "pid"), id);
    if (is_scope) continue;
    json_t *c = json_pack("{s:s, s:b}", "id", id, "act_open", 1);
    json_array_append_new(t->cands, c);
    char *seg = joget_seg(id);
    char *path = joget_asprintf("monitoring/process/view/%s", seg);
    jt_admin(t, "GET", path, NULL, take_child_view, c);
    free(path);
    free(seg);
  }
  json_decref(rows);
}

static int has_children(json_t *sbody) {
  json_t *subs = json_object_get(json_object_get(sbody, "extra"), "subflows");
  size_t i;
  json_t *sf;
  json_array_foreach(subs, i, sf)
    if (json_array_size(json_object_get(sf, "children")) > 0) return 1;
  return 0;
}

static void scope_children(jt *t) {
  if (!has_children(scope_src(t))) {
    scope_reassign(t);
    return;
  }
  json_decref(t->cands);
  t->cands = json_array();
  if (t->c->pg) {
    const char *p[1] = {scope_pid(t)};
    jt_pg(t,
          "SELECT c.id, c.pdefname, c.activityrequesterid, COALESCE(a.state IN (1000001, 1000003), false) "
          "FROM shkprocesses c LEFT JOIN shkactivities a ON a.id = c.activityrequesterid "
          "WHERE c.activityrequesterprocessid = $1 AND c.state IN (1000000, 1000002, 1000004) ORDER BY "
          "c.created, c.id",
          1, p, take_children_pg, NULL);
  } else {
    const char *params[] = {
        "recordId", joget_str(t->src, "record_id"), "sort", "id", "desc", "false", "rows", "200", NULL};
    jt_admin(t, "GET", "console/monitor/running/list", params, take_children_http, NULL);
  }
  jt_then(t, children_matched);
}

static long id_counter(const char *id) { return id ? atol(id) : 0; }

static void children_aborted(jt *t) { scope_reassign(t); }

static void children_matched(jt *t) {
  /* match each source child (by target definition) to a running target child; the newest first when
     restarting a sub-flow activity left an older child behind (HTTP: the highest id counter; dsn: the child
     whose calling activity is still open) */
  json_t *subs = json_object_get(json_object_get(scope_src(t), "extra"), "subflows");
  json_t *taken = json_object();
  json_t *children_state = json_object_get(t->st, "children");
  if (!children_state) {
    children_state = json_object();
    json_object_set_new(t->st, "children", children_state);
  }
  size_t i;
  json_t *sf;
  json_array_foreach(subs, i, sf) {
    size_t j;
    json_t *sch;
    json_array_foreach(json_object_get(sf, "children"), j, sch) {
      int needs_latest = 0;
      char *tdef = map_def(t, joget_str(sch, "definition"), &needs_latest);
      if (!tdef) tdef = joget_strdup(joget_str(sch, "definition"));
      const char *prev = joget_str(children_state, joget_str(sch, "id"));
      json_t *best = NULL;
      size_t k;
      json_t *c;
      json_array_foreach(t->cands, k, c) {
        const char *cid = joget_str(c, "id");
        if (json_object_get(taken, cid) || !joget_str(c, "def") || strcmp(joget_str(c, "def"), tdef)) continue;
        if (!json_is_true(json_object_get(c, "act_open"))) continue;
        if (prev && !strcmp(prev, cid)) {
          best = c;
          break;
        }
        if (known_elsewhere(t, cid, joget_str(sch, "id"))) continue;
        if (!best || id_counter(cid) > id_counter(joget_str(best, "id"))) best = c;
      }
      free(tdef);
      if (!best) {
        jt_fail(
            t, FERRY_ECONFLICT,
            "no running sub-flow instance of %s under target instance %s (the sub-flow activity %s should "
            "have created it)",
            joget_str(sch, "definition"), scope_pid(t), joget_str(sf, "activity_def_id"));
        json_decref(taken);
        return;
      }
      const char *cid = joget_str(best, "id");
      json_object_set_new(taken, cid, json_true());
      json_object_set_new(children_state, joget_str(sch, "id"), json_string(cid));
      ferry_error e = FERRY_ERROR_INIT;
      if (ferry_task_map_id(t->task, "process", joget_str(sch, "id"), cid, &e) < 0 ||
          ferry_task_map_id(t->task, JOGET_REVERSE_KIND, cid, joget_str(sch, "id"), &e) < 0) {
        json_decref(taken);
        jt_fail_err(t, &e);
        ferry_error_clear(&e);
        return;
      }
      json_array_append_new(t->scopes, json_pack("{s:O, s:s}", "src", sch, "pid", cid));
    }
  }
  /* stale children (dsn: their calling activity is no longer open, because a restart of the sub-flow
     activity left them behind): abort them. Over HTTP a stale child cannot be told: it is left and noted. */
  int aborts = 0;
  size_t k;
  json_t *c;
  json_array_foreach(t->cands, k, c) {
    const char *cid = joget_str(c, "id");
    if (json_object_get(taken, cid)) continue;
    if (!t->c->pg || json_is_true(json_object_get(c, "act_open"))) {
      if (t->c->pg)
        note(t, "target instance %s: sub-flow instance %s is not matched to a source child", scope_pid(t),
             cid);
      continue;
    }
    if (!aborts && intent(t, "abort-stale-subflow") < 0) {
      json_decref(taken);
      return;
    }
    aborts++;
    rep_push(t, "aborted_stale_subflows", json_string(cid));
    char *seg = joget_seg(cid);
    char *path = joget_asprintf("workflow/process/abort/%s", seg);
    jt_admin(t, "POST", path, NULL, NULL, NULL);
    free(path);
    free(seg);
  }
  json_decref(taken);
  jt_then(t, children_aborted);
}

/* -- reassign (one call at a time: calls on one activity must not overlap) -- */
static void scope_accept(jt *t);
static void reassign_next(jt *t);

static void reassign_after(jt *t) {
  joget_test_crash("reassign");
  t->ci++;
  reassign_next(t);
}

static void reassign_reread(jt *t) {
  tidy_acts(t);
  scope_accept(t);
}

static void reassign_next(jt *t) {
  if (t->ci >= json_array_size(t->calls)) {
    read_scope_acts(t, scope_pid(t)); /* the accept step needs the new assignees */
    jt_then(t, reassign_reread);
    return;
  }
  json_t *call = json_array_get(t->calls, t->ci);
  const char *params[] = {"activityId",  joget_str(call, "activityId"),  "username", joget_str(call, "username"),
                          "replaceUser", joget_str(call, "replaceUser"), NULL};
  jt_admin(t, "POST", "monitoring/activity/reassign", params, NULL, NULL);
  jt_then(t, reassign_after);
}

static void scope_reassign(jt *t) {
  json_t *sacts = json_object_get(scope_src(t), "activities");
  json_t *pairs = pair_acts(sacts, t->tacts);
  json_t *calls = json_array();
  size_t i;
  json_t *sa;
  json_array_foreach(sacts, i, sa) {
    long j = (long)json_integer_value(json_array_get(pairs, i));
    json_t *sas = json_object_get(sa, "assignees");
    if (j < 0 || json_array_size(sas) == 0) continue;
    json_t *ta = json_array_get(t->tacts, (size_t)j);
    json_t *tas = json_object_get(ta, "assignees");
    json_t *add = minus(sas, tas), *rem = minus(tas, sas);
    size_t n = json_array_size(add) < json_array_size(rem) ? json_array_size(add) : json_array_size(rem);
    for (size_t x = 0; x < json_array_size(rem); x++) {
      /* replace a surplus assignee by a missing one; with none missing, by one already assigned (which
         removes the surplus one) */
      const char *to =
          x < n ? json_string_value(json_array_get(add, x)) : json_string_value(json_array_get(sas, 0));
      json_array_append_new(
          calls,
          json_pack("{s:s, s:s, s:s, s:s}", "activityId", joget_str(ta, "id"), "username", to, "replaceUser",
                    json_string_value(json_array_get(rem, x)), "def", joget_str(sa, "def_id")));
    }
    for (size_t x = n; x < json_array_size(add); x++)
      note(t,
           "%s activity %s: the target computed fewer assignees than the source; %s cannot be added through "
           "the JSON API (monitoring/activity/reassign only replaces)",
           scope_pid(t), joget_str(sa, "def_id"), json_string_value(json_array_get(add, x)));
    json_decref(add);
    json_decref(rem);
  }
  json_decref(pairs);
  json_decref(t->calls);
  t->calls = calls;
  t->ci = 0;
  if (json_array_size(calls) == 0) {
    scope_accept(t);
    return;
  }
  if (intent(t, "reassign") < 0) return;
  t->dirty = 1;
  json_t *call;
  json_array_foreach(calls, i, call)
    rep_push(t, "reassigned",
             json_pack("{s:s, s:s, s:s, s:s}", "process", scope_pid(t), "activity", joget_str(call, "def"),
                       "from", joget_str(call, "replaceUser"), "to", joget_str(call, "username")));
  reassign_next(t);
}

/* -- accept as the user who had accepted on the source -- */
static void accept_send(jt *t) {
  size_t i;
  json_t *call;
  json_array_foreach(t->calls, i, call) {
    const char *u = joget_str(call, "user");
    char *key = joget_asprintf("hash:%s", u);
    joget_ident id;
    char *label = NULL;
    user_ident_from(t->c, u, json_string_value(json_object_get(t->plan, key)), &id, &label);
    char *seg = joget_seg(joget_str(call, "activityId"));
    char *path = joget_asprintf("workflow/assignment/accept/%s", seg);
    jt_req(t, "POST", path, NULL, &id, NULL, NULL);
    rep_push(t, "accepted", json_pack("{s:s, s:s}", "activity", joget_str(call, "def"), "by", u));
    free(path);
    free(seg);
    free(label);
    free(key);
  }
  jt_then(t, scope_vars);
}

static void scope_accept(jt *t) {
  json_t *sacts = json_object_get(scope_src(t), "activities");
  json_t *pairs = pair_acts(sacts, t->tacts);
  json_t *calls = json_array();
  size_t i;
  json_t *sa;
  json_array_foreach(sacts, i, sa) {
    long j = (long)json_integer_value(json_array_get(pairs, i));
    const char *u = joget_str(sa, "accepted_by");
    if (j < 0 || !u) continue;
    json_t *ta = json_array_get(t->tacts, (size_t)j);
    const char *tu = joget_str(ta, "accepted_by");
    const char *tst = joget_str(ta, "state");
    if (tu && !strcmp(tu, u) && tst && !strcmp(tst, "open.running")) continue;
    if (t->c->start_mode == JOGET_START_USERS && !json_object_get(t->c->user_pw, u)) {
      note(t, "%s activity %s was accepted by %s on the source; no credentials for %s in users: left pending",
           scope_pid(t), joget_str(sa, "def_id"), u, u);
      continue;
    }
    json_array_append_new(calls, json_pack("{s:s, s:s, s:s}", "activityId", joget_str(ta, "id"), "user", u,
                                           "def", joget_str(sa, "def_id")));
  }
  json_decref(pairs);
  json_decref(t->calls);
  t->calls = calls;
  if (json_array_size(calls) == 0) {
    scope_vars(t);
    return;
  }
  if (intent(t, "accept") < 0) return;
  t->dirty = 1;
  t->vars_stale = 1;
  if (t->c->start_mode == JOGET_START_HASH) {
    json_t *call;
    json_array_foreach(calls, i, call) {
      char *slot = joget_asprintf("hash:%s", joget_str(call, "user"));
      jt_lookup(t, &t->k->hashes, joget_str(call, "user"), hash_start, slot, 0);
      free(slot);
    }
  }
  jt_then(t, accept_send);
}

/* -- variables: set what differs from the source -- */
static void scope_done(jt *t) {
  json_object_set_new(scope_state(t), "done", json_true());
  if (!t->dirty) { /* nothing written since the reads: they are the check */
    compare_scope(t, scope_src(t), scope_pid(t));
    json_object_set_new(t->checked, scope_pid(t), json_true());
  }
  t->si++;
  scope_next(t);
}

static void vars_read(jt *t) {
  json_t *svars = json_object_get(scope_src(t), "variables");
  json_t *sets = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(svars, k, v) {
    char *sv = var_text(v);
    const char *tv = joget_str(t->tvars, k);
    if (sv && (*sv || (tv && *tv)) && !tv_same(t, k, sv))
      json_array_append_new(sets, json_pack("{s:s, s:s}", "name", k, "value", sv));
    free(sv);
  }
  if (json_array_size(sets) == 0) {
    json_decref(sets);
    scope_done(t);
    return;
  }
  if (intent(t, "variables") < 0) {
    json_decref(sets);
    return;
  }
  t->dirty = 1;
  char *p = joget_seg(scope_pid(t));
  size_t i;
  json_t *x;
  json_array_foreach(sets, i, x) {
    if (joget_bad_ident(joget_str(x, "name"))) {
      note(t, "%s variable %s: its name cannot be passed to Joget (SQL filter): not set", scope_pid(t),
           joget_str(x, "name"));
      continue;
    }
    char *n = joget_seg(joget_str(x, "name"));
    char *path = joget_asprintf("monitoring/process/variable/%s/%s", p, n);
    const char *params[] = {"value", joget_str(x, "value"), NULL};
    jt_admin(t, "POST", path, params, NULL, NULL);
    rep_push(t, "variables_set", json_pack("{s:s, s:s}", "process", scope_pid(t), "name", joget_str(x, "name")));
    free(path);
    free(n);
  }
  free(p);
  json_decref(sets);
  jt_then(t, scope_done);
}

static void scope_vars(jt *t) {
  if (!t->vars_stale && t->tvars) {
    vars_read(t);
    return;
  }
  read_scope_vars(t, scope_pid(t));
  then_vars(t, vars_read);
}

/* -- after_start, check, done -- */
static void check_next(jt *t);

static void check_scope_read(jt *t) {
  tidy_acts(t);
  compare_scope(t, scope_src(t), scope_pid(t));
  t->si++;
  check_next(t);
}

static void check_next(jt *t) {
  while (t->si < json_array_size(t->scopes) && json_object_get(t->checked, scope_pid(t))) t->si++;
  if (t->si < json_array_size(t->scopes)) {
    read_scope_acts(t, scope_pid(t));
    read_scope_vars(t, scope_pid(t));
    then_vars(t, check_scope_read);
    return;
  }
  if (json_array_size(t->diffs) > 0) {
    json_object_set(t->rep, "differences", t->diffs);
    joget_sb sb = {0};
    size_t i;
    json_t *d;
    json_array_foreach(t->diffs, i, d) joget_sb_addf(&sb, "%s%s", i ? "; " : "", json_string_value(d));
    char *txt = joget_sb_steal(&sb);
    if (t->mode == FERRY_MODE_VERIFY)
      jt_fail(t, FERRY_EMISMATCH, "the target differs from the source: %s", txt);
    else
      jt_fail(t, FERRY_ECONFLICT,
              "after migration the target differs from the source: %s (run again to retry; "
              "see the report)",
              txt);
    free(txt);
    return;
  }
  if (t->mode == FERRY_MODE_VERIFY) json_object_set_new(t->rep, "verify", json_string("equal"));
  jt_done(t);
}

static void check_begin(jt *t) {
  if (t->mode == FERRY_MODE_RUN && !t->final_dup && json_is_integer(json_object_get(t->st, "intent_ms"))) {
    /* once more before done: a start the server ran late (after ferry gave up on its answer) shows now */
    t->final_dup = 1;
    char *key = joget_asprintf("%s\n%s", t->tdef, joget_str(t->src, "record_id"));
    lock_take(t, key, resume_single); /* under the lock: another item's fresh start is no duplicate */
    free(key);
    return;
  }
  t->si = 0;
  check_next(t);
}

static void on_after_start(void *arg, int status, const ferry_error *err) {
  jt *t = arg;
  if (status) {
    jt_fail_hook(t, "after_start", status, err);
    return;
  }
  joget_test_crash("after_start");
  json_object_set_new(t->st, "after_start", json_true());
  if (t->acts_called) json_object_set_new(t->rep, "activity_calls", json_integer(t->acts_called));
  if (t->c->check)
    check_begin(t);
  else
    jt_done(t);
}

static void take_tools_ran(jt *t, PGresult *res, void *ud) {
  for (int i = 0; i < PQntuples(res); i++) {
    char *what = joget_asprintf("tool %s (%s) ran again on the target while the instance was re-created",
                                PQgetvalue(res, i, 0), PQgetvalue(res, i, 1));
    loss(t, json_pack("{s:s, s:s, s:s, s:s}", "kind", "tool", "activity", PQgetvalue(res, i, 0), "plugin",
                      PQgetvalue(res, i, 1), "what", what));
    free(what);
  }
}

static void run_hooks(jt *t);

static void finish_run(jt *t) {
  if (t->repair || json_is_true(json_object_get(t->st, "after_start"))) {
    on_after_start(t, 0, NULL);
    return;
  }
  if (t->c->pg && !json_object_get(t->st, "tools_read")) {
    /* the tools the target ran for this instance (start path, started activities), named as losses */
    char *app, *ver, *proc;
    if (!joget_def_split(t->tdef, &app, &ver, &proc)) {
      const char *p[4] = {joget_str(t->st, "pid"), app, ver, proc};
      jt_pg(t,
            "SELECT a.activitydefinitionid, COALESCE(m.pluginname, '') FROM shkactivities a JOIN "
            "app_package_activity_plugin m ON m.packageid = $2 AND m.packageversion::text = $3 AND m.processdefid "
            "= $4 AND m.activitydefid = a.activitydefinitionid WHERE a.processid = $1 AND a.state = 1000007 "
            "ORDER BY a.activated, a.id",
            4, p, take_tools_ran, NULL);
      free(app);
      free(ver);
      free(proc);
    }
    json_object_set_new(t->st, "tools_read", json_true());
    jt_then(t, run_hooks);
    return;
  }
  run_hooks(t);
}

static void run_hooks(jt *t) {
  if (intent(t, "after_start") < 0) return;
  json_t *data = json_pack("{s:s, s:s, s:s}", "record_id", joget_str(t->src, "record_id"), "target_process_id",
                           joget_str(t->st, "pid"), "definition", t->tdef);
  ferry_fire(t->c->ins, t->task, "after_start", data, on_after_start, t);
  json_decref(data);
}

/* ---- RUN: entry -------------------------------------------------------------------------------------- */
static void collect_child_latest(jt *t, json_t *body) {
  json_t *subs = json_object_get(json_object_get(body, "extra"), "subflows");
  size_t i, j;
  json_t *sf, *ch;
  json_array_foreach(subs, i, sf)
    json_array_foreach(json_object_get(sf, "children"), j, ch) {
      int needs = 0;
      char *d = map_def(t, joget_str(ch, "definition"), &needs);
      free(d);
      if (needs) {
        char *app, *ver, *proc;
        if (!joget_def_split(joget_str(ch, "definition"), &app, &ver, &proc)) {
          char *key = joget_asprintf("%s#%s", app, proc);
          char *slot = joget_asprintf("latest:%s", key);
          jt_lookup(t, &t->k->latest, key, latest_start, slot, t->mode == FERRY_MODE_PLAN);
          free(slot);
          free(key);
          free(app);
          free(ver);
          free(proc);
        }
      }
      collect_child_latest(t, ch);
    }
}

static void run_locked(jt *t) {
  const char *step = ferry_task_step(t->task);
  if (step && (!strcmp(step, "start") || !strcmp(step, "started") || !strcmp(step, "abort-duplicate")) &&
      !json_is_string(json_object_get(t->st, "pid")))
    reconcile_start(t);
  else
    do_start(t);
}

static void run_checked(jt *t) {
  char *key = joget_asprintf("%s\n%s", t->tdef, joget_str(t->src, "record_id"));
  lock_take(t, key, run_locked);
  free(key);
}

static void plan_latest(jt *t);

static void resume_single(jt *t) { cands_find(t, single_check); }

static void run_def(jt *t) {
  const char *step = ferry_task_step(t->task);
  if (ferry_task_repair(t->task)) {
    /* verify found the target instance different: converge it again, never start a second one */
    if (!json_is_string(json_object_get(t->st, "pid"))) {
      jt_fail(t, FERRY_EINVAL, "repair: the journal holds no target instance for it (run it normally)");
      return;
    }
    t->repair = 1;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(t->st, "scopes"), k, v) {
      json_object_del(v, "done");
      json_object_del(v, "acts");
      json_object_del(v, "call");
    }
    json_object_set_new(t->rep, "repaired", json_true());
    json_object_set_new(t->rep, "target_process_id", json_string(joget_str(t->st, "pid")));
    json_object_set_new(t->rep, "target_id", json_string(joget_str(t->st, "pid")));
    scopes_begin(t);
    return;
  }
  if (json_is_string(json_object_get(t->st, "pid")) && step &&
      (!strcmp(step, "started") || !strcmp(step, "abort-duplicate"))) {
    /* stopped right after the start was recorded: the duplicate check may not have run (or finished) */
    json_object_set_new(t->rep, "target_process_id", json_string(joget_str(t->st, "pid")));
    json_object_set_new(t->rep, "resumed_at", json_string(step));
    char *key = joget_asprintf("%s\n%s", t->tdef, joget_str(t->src, "record_id"));
    lock_take(t, key, resume_single);
    free(key);
    return;
  }
  if (json_is_string(json_object_get(t->st, "pid"))) {
    json_object_set_new(t->rep, "target_process_id", json_string(joget_str(t->st, "pid")));
    json_object_set_new(t->rep, "resumed_at",
                        json_string(ferry_task_step(t->task) ? ferry_task_step(t->task) : ""));
    scopes_begin(t);
    return;
  }
  /* before anything is written: the checks of plan (cached per definition and user) */
  plan_latest(t);
}

static void run_item(jt *t) {
  const char *rid = joget_str(t->src, "record_id");
  if (!rid || !*rid || joget_bad_ident(rid)) {
    jt_fail(t, FERRY_EINVAL,
            "record id \"%s\" cannot be passed to Joget: ids with a space, '(', ')', ';' or '/*' make every "
            "workflow call fail with HTTP 500 (docs/joget-facts.md 4.4); rename the record on the source first",
            rid ? rid : "");
    return;
  }
  if (!joget_str(t->src, "requester")) {
    jt_fail(t, FERRY_EINVAL, "the item has no requester");
    return;
  }
  resolve_def(t, run_def);
}

/* ---- PLAN -------------------------------------------------------------------------------------------- */
static void reason(jt *t, const char *fmt, ...) FERRY_PRINTF(2, 3);
static void reason(jt *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) abort();
  va_end(ap);
  json_array_append_new(t->reasons, json_string(s));
  free(s);
}

static void collect_users(json_t *body, json_t *users) {
  size_t i, j;
  json_t *a, *u;
  json_t *jn;
  json_array_foreach(json_object_get(json_object_get(body, "extra"), "joins"), i, jn)
    json_array_foreach(json_object_get(jn, "arrived"), j, a) {
      const char *p = joget_str(a, "performer");
      if (p && *p) json_object_set_new(users, p, json_true());
    }
  json_array_foreach(json_object_get(body, "activities"), i, a) {
    json_array_foreach(json_object_get(a, "assignees"), j, u)
      if (json_is_string(u)) json_object_set_new(users, json_string_value(u), json_true());
    if (joget_str(a, "accepted_by")) json_object_set_new(users, joget_str(a, "accepted_by"), json_true());
  }
  json_t *sf;
  json_array_foreach(json_object_get(json_object_get(body, "extra"), "subflows"), i, sf)
    json_array_foreach(json_object_get(sf, "children"), j, u) collect_users(u, users);
}

static void plan_child_defs(jt *t, json_t *body, int top) {
  /* every definition (top and children) with its activities */
  int needs = 0;
  char *tdef = top ? joget_strdup(t->tdef) : map_def(t, joget_str(body, "definition"), &needs);
  if (tdef) {
    char *slot = joget_asprintf("def:%s", tdef);
    jt_lookup(t, &t->k->defs, tdef, def_start, slot, 1);
    free(slot);
    free(tdef);
  }
  size_t i, j;
  json_t *sf, *ch;
  json_array_foreach(json_object_get(json_object_get(body, "extra"), "subflows"), i, sf)
    json_array_foreach(json_object_get(sf, "children"), j, ch) plan_child_defs(t, ch, 0);
}

static void plan_eval_body(jt *t, json_t *body, int top) {
  int needs = 0;
  char *tdef = top ? joget_strdup(t->tdef) : map_def(t, joget_str(body, "definition"), &needs);
  const char *id = joget_str(body, "id");
  if (!tdef) {
    char *slot = NULL;
    char *app, *ver, *proc;
    if (!joget_def_split(joget_str(body, "definition"), &app, &ver, &proc)) {
      slot = joget_asprintf("latest:%s#%s", app, proc);
      free(app);
      free(ver);
      free(proc);
    }
    json_t *l = slot ? json_object_get(t->plan, slot) : NULL;
    reason(t, "sub-flow instance %s: no target version for %s: %s", id, joget_str(body, "definition"),
           joget_str(l, "error") ? joget_str(l, "error") : "unknown");
    free(slot);
  } else {
    char *slot = joget_asprintf("def:%s", tdef);
    json_t *d = json_object_get(t->plan, slot);
    free(slot);
    if (joget_str(d, "error"))
      reason(t, "%s: checking definition %s failed: %s", id, tdef, joget_str(d, "error"));
    else if (joget_str(d, "view_error"))
      reason(t, "%s: checking definition %s failed: %s", id, tdef, joget_str(d, "view_error"));
    else if (!json_is_true(json_object_get(d, "exists")))
      reason(t,
             "%s: the target has no process definition %s: import the app there, or map the version with "
             "version / version_map",
             id, tdef);
    else {
      json_t *pub = json_object_get(d, "published");
      if (json_is_false(pub) && top)
        reason(t,
               "%s: app version %s (package %s) is not published on the target: only administrators may "
               "start its processes; publish it",
               id, joget_str(d, "app_version") ? joget_str(d, "app_version") : "?", t->tver);
      else if (!pub && top && !t->c->pg)
        note(t, "published state of %s not checked (no dsn)", tdef);
      json_t *ids = json_object_get(d, "activities");
      if (json_is_array(ids)) {
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(body, "activities"), i, a)
          if (!str_in(ids, joget_str(a, "def_id")))
            reason(t,
                   "%s: open activity %s does not exist in the target definition %s (activity/start would "
                   "answer result:false): map the instance to a version that has it (version_map)",
                   id, joget_str(a, "def_id"), tdef);
      } else if (joget_str(d, "activities_error") && json_is_true(json_object_get(d, "activities_default"))) {
        note(t,
             "activity ids of %s not checked: this database has no emu_process_graph (the emulator's); set "
             "activity_ids_sql for a real server (docs/plugins/joget.md)",
             tdef);
      } else if (joget_str(d, "activities_error")) {
        reason(t, "%s: reading the activity ids of %s with activity_ids_sql failed: %s", id, tdef,
               joget_str(d, "activities_error"));
      } else {
        note(t, "activity ids of %s not checked (needs dsn and activity_ids_sql)", tdef);
      }
    }
    free(tdef);
  }
  /* variables carried after the start */
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(body, "variables"), k, v) {
    char *val = var_text(v);
    if (!var_at_start(k, val) && val && *val) {
      if (joget_bad_ident(k))
        reason(t, "%s: variable name \"%s\" cannot be passed to Joget (SQL filter)", id, k);
      else if (strstr(k, "var_"))
        note(t,
             "%s: variable %s (name contains var_) is set after the start with monitoring/process/variable",
             id, k);
    }
    free(val);
  }
  size_t i, j;
  json_t *sf, *ch;
  json_array_foreach(json_object_get(json_object_get(body, "extra"), "subflows"), i, sf)
    json_array_foreach(json_object_get(sf, "children"), j, ch) plan_eval_body(t, ch, 0);
}

/* ---- record on the target, losses ----------------------------------------------------------------------- */
static void take_rec_pg(jt *t, PGresult *res, void *ud) {
  json_t *slot = ud;
  json_object_set_new(slot, "found", json_boolean(PQntuples(res) == 1 && PQgetvalue(res, 0, 0)[0] == 't'));
}

static void take_rec_http(jt *t, json_t *doc, void *ud) {
  json_t *slot = ud;
  json_object_set_new(slot, "found", json_boolean(doc && joget_str(doc, "id")));
}

/* The source said which of its form tables hold the instance's record (extra.record_tables, read with its
 * dsn): each must hold it on the target too before the instance is started there. */
static void record_lookups(jt *t) {
  if (!t->c->record_check) return;
  json_t *recs = json_object_get(json_object_get(t->src, "extra"), "record_tables");
  const char *rid = joget_str(t->src, "record_id");
  size_t i;
  json_t *r;
  json_array_foreach(recs, i, r) {
    const char *table = joget_str(r, "table"), *form = joget_str(r, "form");
    if (!table) continue;
    char *key = joget_asprintf("rec:%s", table);
    json_t *slot = json_pack("{s:s, s:s?}", "table", table, "form", form);
    json_object_set_new(t->plan, key, slot); /* borrowed by the request below, owned by t->plan */
    free(key);
    if (t->c->pg) {
      const char *p[2] = {table, rid};
      jt_pg(t,
            "SELECT CASE WHEN to_regclass(quote_ident($1::text)) IS NULL THEN false ELSE (xpath('/row/c/text()', "
            "query_to_xml(format('SELECT count(*) AS c FROM %I WHERE id = %L', $1::text, $2::text), false, true, "
            "'')))[1]::text::int > 0 END",
            2, p, take_rec_pg, slot);
    } else if (form) {
      char *a = joget_seg(t->tapp), *f = joget_seg(form), *k = joget_seg(rid);
      char *path = joget_asprintf("data/form/load/%s/%s/%s", a, f, k);
      jt_admin(t, "GET", path, NULL, take_rec_http, slot);
      free(path);
      free(a);
      free(f);
      free(k);
    }
  }
}

static void record_reasons(jt *t) {
  const char *k;
  json_t *v;
  json_object_foreach(t->plan, k, v) {
    if (strncmp(k, "rec:", 4) || !json_is_false(json_object_get(v, "found"))) continue;
    if (t->mode == FERRY_MODE_PLAN) { /* the stage that copies the rows has not run yet: that is normal */
      note(t,
           "record %s is not in %s on the target yet: the stage that copies form rows must run before this "
           "one (a run refuses to start the instance on a missing record)",
           joget_str(t->src, "record_id"), joget_str(v, "table"));
      continue;
    }
    reason(t,
           "record %s is in %s on the source but not on the target: its row did not arrive (the forms stage "
           "failed for it, or has not run); copy it first: the instance is not started on a missing record",
           joget_str(t->src, "record_id"), joget_str(v, "table"));
  }
}

static char *ms_text(int64_t ms) {
  time_t sec = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&sec, &tm);
  char b[64];
  strftime(b, sizeof b, "%Y-%m-%d %H:%M UTC", &tm);
  return joget_strdup(b);
}

/* What cannot be carried exactly and is known before the start (docs/plugins/joget.md, "Losses"): each
 * goes to the report and the journal state of the item. */
static void deadline_losses(jt *t, json_t *body) {
  size_t i;
  json_t *a;
  json_array_foreach(json_object_get(body, "activities"), i, a) {
    json_t *due = json_object_get(a, "due_ms");
    const char *due_txt = joget_str(a, "due");
    if (!json_is_integer(due) && !due_txt && json_integer_value(json_object_get(a, "deadlines")) <= 0) continue;
    char *when = json_is_integer(due) ? ms_text(json_integer_value(due)) : joget_strdup(due_txt ? due_txt : "?");
    char *what = joget_asprintf("the deadline of activity %s (due %s on the source) restarts on the target: its "
                                "clock starts again when the activity is re-created",
                                joget_str(a, "def_id"), when);
    loss(t, json_pack("{s:s, s:s, s:s, s:s}", "kind", "deadline", "activity", joget_str(a, "def_id"), "due", when,
                      "what", what));
    free(when);
    free(what);
  }
  json_t *sf, *ch;
  size_t j;
  json_array_foreach(json_object_get(json_object_get(body, "extra"), "subflows"), i, sf)
    json_array_foreach(json_object_get(sf, "children"), j, ch) deadline_losses(t, ch);
}

static void compute_losses(jt *t) {
  json_object_del(t->st, "losses");
  json_object_del(t->rep, "losses");
  char *slot = joget_asprintf("def:%s", t->tdef);
  json_t *d = json_object_get(t->plan, slot);
  free(slot);
  json_t *extra = json_object_get(t->src, "extra");
  json_t *joins = json_object_get(extra, "joins");
  json_t *nb = json_object_get(d, "joins"); /* join -> incoming branches, when known */
  size_t i;
  json_t *j;
  json_array_foreach(joins, i, j) {
    const char *jid = joget_str(j, "join");
    size_t k = json_array_size(json_object_get(j, "arrived"));
    json_t *n = json_object_get(nb, jid);
    char nt[32];
    if (json_is_integer(n))
      snprintf(nt, sizeof nt, "%lld", (long long)json_integer_value(n));
    else
      snprintf(nt, sizeof nt, "?");
    if (t->c->joins_report) {
      char *what = joget_asprintf("join %s has %zu of %s arrivals; not carried (and_joins is report): on the "
                                  "target the join waits for branches that already arrived on the source",
                                  jid, k, nt);
      loss(t, json_pack("{s:s, s:s, s:I, s:o, s:s}", "kind", "and_join", "join", jid, "arrivals", (json_int_t)k,
                        "branches", json_is_integer(n) ? json_incref(n) : json_null(), "what", what));
      free(what);
    } else {
      char *txt = joget_asprintf("re-create %zu arrival(s) at join %s (of %s)", k, jid, nt);
      rep_push(t, "joins_to_carry", json_string(txt));
      free(txt);
    }
  }
  if (!json_is_true(json_object_get(extra, "joins_read")) &&
      (!json_is_object(nb) || json_object_size(nb) > 0)) {
    loss(t, json_pack("{s:s, s:s}", "kind", "and_join", "what",
                      "arrivals at AND-joins were not read (the source has no dsn): if a branch of this instance "
                      "already reached an AND-join, the join waits for it forever on the target"));
  }
  deadline_losses(t, t->src);
  const char *notify = joget_str(d, "notify");
  if (notify && json_array_size(json_object_get(t->src, "activities")) > 0) {
    char *acts = defs_text(json_object_get(t->src, "activities"));
    char *what = joget_asprintf("the app's %s notifies the assignees of the re-created activities %s again", notify,
                                acts);
    loss(t, json_pack("{s:s, s:s, s:s}", "kind", "notification", "plugin", notify, "what", what));
    free(acts);
    free(what);
  }
  if (t->mode == FERRY_MODE_PLAN && json_object_size(json_object_get(d, "tools")) > 0) {
    joget_sb sb = {0};
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(d, "tools"), k, v)
      joget_sb_addf(&sb, "%s%s (%s)", sb.len ? ", " : "", k, json_string_value(v));
    char *list = joget_sb_steal(&sb);
    char *what = joget_asprintf("tools of %s run again if the start path or a re-created activity reaches them: %s",
                                t->tdef, list);
    loss(t, json_pack("{s:s, s:s}", "kind", "tool", "what", what));
    free(list);
    free(what);
  }
}

static void plan_eval(jt *t) {
  const char *pk;
  json_t *val;
  json_object_foreach(t->plan, pk, val)
    if (json_integer_value(json_object_get(val, "code")) == FERRY_ETRANSIENT) {
      jt_fail(t, FERRY_ETRANSIENT, "%s", joget_str(val, "error"));
      return;
    }
  json_t *r = json_object_get(t->plan, "requester");
  const char *req = joget_str(t->src, "requester");
  if (joget_str(r, "error")) reason(t, "requester: %s", joget_str(r, "error"));
  plan_eval_body(t, t->src, 1);
  record_reasons(t);
  compute_losses(t);
  if (!t->c->joins_report && t->c->start_mode == JOGET_START_USERS) {
    size_t i, j;
    json_t *jn, *a;
    json_array_foreach(json_object_get(json_object_get(t->src, "extra"), "joins"), i, jn)
      json_array_foreach(json_object_get(jn, "arrived"), j, a) {
        const char *p = joget_str(a, "performer");
        if (p && *p && !json_object_get(t->c->user_pw, p))
          reason(t,
                 "join %s: the arrived activity %s must be completed on the target as its performer %s, and "
                 "the users option has no credentials for %s (add them, or set and_joins to report)",
                 joget_str(jn, "join"), joget_str(a, "def_id"), p, p);
      }
  }
  json_t *users = json_object();
  collect_users(t->src, users);
  if (req) json_object_set_new(users, req, json_true());
  const char *u;
  json_t *x;
  json_object_foreach(users, u, x) {
    char *slot = joget_asprintf("dir:%s", u);
    json_t *d = json_object_get(t->plan, slot);
    free(slot);
    if (d) {
      if (joget_str(d, "error"))
        reason(t, "checking user %s in dir_user failed: %s", u, joget_str(d, "error"));
      else if (!json_is_true(d))
        reason(t, "user %s does not exist (or is inactive) on the target: copy the users first", u);
      continue;
    }
    slot = joget_asprintf("user:%s", u);
    d = json_object_get(t->plan, slot);
    free(slot);
    if (d) {
      if (joget_str(d, "error")) reason(t, "user %s: %s", u, joget_str(d, "error"));
      continue;
    }
    if (strcmp(u, req ? req : "")) note(t, "user %s not checked (needs dsn or start_as master)", u);
  }
  json_decref(users);
  if (t->mode == FERRY_MODE_RUN) {
    if (json_array_size(t->reasons) > 0) {
      json_object_set(t->rep, "reasons", t->reasons);
      joget_sb sb = {0};
      size_t i;
      json_t *s;
      json_array_foreach(t->reasons, i, s) joget_sb_addf(&sb, "%s%s", i ? "; " : "", json_string_value(s));
      char *txt = joget_sb_steal(&sb);
      jt_fail(t, FERRY_EINVAL, "not started (nothing was written): %s", txt);
      free(txt);
      return;
    }
    run_checked(t);
    return;
  }
  /* what would be done */
  char *acts = defs_text(json_object_get(t->src, "activities"));
  joget_sb wb = {0};
  joget_sb_addf(&wb, "start %s as %s with record %s, ", t->tdef, req ? req : "?", joget_str(t->src, "record_id"));
  size_t wi;
  json_t *wv;
  json_array_foreach(json_object_get(t->rep, "joins_to_carry"), wi, wv)
    joget_sb_addf(&wb, "%s, ", json_string_value(wv));
  joget_sb_addf(&wb, "then activities %s", acts);
  if (json_array_size(json_object_get(t->rep, "losses")) > 0) {
    joget_sb_add(&wb, "; with loss: ");
    json_array_foreach(json_object_get(t->rep, "losses"), wi, wv)
      joget_sb_addf(&wb, "%s%s", wi ? "; " : "", joget_str(wv, "what"));
  }
  char *would = joget_sb_steal(&wb);
  json_object_set_new(t->rep, "would", json_string(would));
  free(would);
  free(acts);
  if (json_array_size(t->reasons) > 0) {
    json_object_set(t->rep, "reasons", t->reasons);
    joget_sb sb = {0};
    size_t i;
    json_t *s;
    json_array_foreach(t->reasons, i, s) joget_sb_addf(&sb, "%s%s", i ? "; " : "", json_string_value(s));
    char *txt = joget_sb_steal(&sb);
    jt_fail(t, FERRY_EBLOCKED, "%s", txt);
    free(txt);
    return;
  }
  jt_done(t);
}

static void plan_lookups(jt *t) {
  plan_child_defs(t, t->src, 1);
  record_lookups(t);
  const char *req = joget_str(t->src, "requester");
  jt_lookup(t, &t->k->users, req, user_check_start, "requester", 1);
  json_t *users = json_object();
  collect_users(t->src, users);
  json_object_set_new(users, req, json_true());
  const char *u;
  json_t *x;
  json_object_foreach(users, u, x) {
    if (t->c->pg) {
      char *slot = joget_asprintf("dir:%s", u);
      jt_lookup(t, &t->k->dirusers, u, diruser_start, slot, 1);
      free(slot);
    } else if (t->c->start_mode == JOGET_START_MASTER && strcmp(u, req)) {
      char *slot = joget_asprintf("user:%s", u);
      jt_lookup(t, &t->k->users, u, user_check_start, slot, 1);
      free(slot);
    }
  }
  json_decref(users);
  jt_then(t, plan_eval);
}

static void plan_latest(jt *t) {
  collect_child_latest(t, t->src);
  jt_then(t, plan_lookups);
}

static void plan_item(jt *t) {
  const char *rid = joget_str(t->src, "record_id");
  if (!rid || !*rid || joget_bad_ident(rid))
    reason(t,
           "record id \"%s\" cannot be passed to Joget: ids with a space, '(', ')', ';' or '/*' make every "
           "workflow call fail with HTTP 500 (docs/joget-facts.md 4.4); rename the record (and its form rows and "
           "files) on the source first",
           rid ? rid : "");
  if (!joget_str(t->src, "requester")) {
    jt_fail(t, FERRY_EBLOCKED, "the item has no requester");
    return;
  }
  resolve_def(t, plan_latest);
}

/* ---- VERIFY ------------------------------------------------------------------------------------------- */
static void add_child_scopes(jt *t, json_t *body, json_t *children) {
  size_t i, j;
  json_t *sf, *ch;
  json_array_foreach(json_object_get(json_object_get(body, "extra"), "subflows"), i, sf)
    json_array_foreach(json_object_get(sf, "children"), j, ch) {
      const char *tid = joget_str(children, joget_str(ch, "id"));
      if (tid)
        json_array_append_new(t->scopes, json_pack("{s:O, s:s}", "src", ch, "pid", tid));
      else
        json_array_append_new(
            t->diffs, json_sprintf("sub-flow instance %s: no target instance recorded", joget_str(ch, "id")));
      add_child_scopes(t, ch, children);
    }
}

static void take_verify_record(jt *t, json_t *doc, void *ud) {
  json_t *rows = joget_list(doc, "data");
  const char *pid = joget_str(t->st, "pid");
  const char *rid = joget_str(t->src, "record_id");
  int found = 0;
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r)
    if (joget_str(r, "id") && !strcmp(joget_str(r, "id"), pid)) {
      found = 1;
      if (!joget_str(r, "recordId") || strcmp(joget_str(r, "recordId"), rid))
        json_array_append_new(t->diffs,
                              json_sprintf("%s: record id %s on the target, %s on the source", pid,
                                           joget_str(r, "recordId") ? joget_str(r, "recordId") : "(none)", rid));
    }
  if (!found)
    json_array_append_new(t->diffs,
                          json_sprintf("%s: not running on the target (completed or aborted since the "
                                       "migration?)",
                                       pid));
  json_decref(rows);
}

static void verify_item(jt *t) {
  const char *pid = joget_str(t->st, "pid");
  if (!pid) {
    jt_fail(t, FERRY_EMISMATCH, "the journal holds no target instance for it");
    return;
  }
  json_object_set_new(t->rep, "target_process_id", json_string(pid));
  json_decref(t->diffs);
  t->diffs = json_array();
  json_decref(t->scopes);
  t->scopes = json_pack("[{s:O, s:s}]", "src", t->src, "pid", pid);
  add_child_scopes(t, t->src, json_object_get(t->st, "children"));
  const char *params[] = {
      "recordId", joget_str(t->src, "record_id"), "processId", pid, "sort", "id", "desc", "false", "rows", "100",
      NULL};
  jt_admin(t, "GET", "console/monitor/running/list", params, take_verify_record, NULL);
  t->si = 0;
  jt_then(t, check_next);
}

static void dispatch(jt *t) {
  if (t->mode == FERRY_MODE_PLAN)
    plan_item(t);
  else if (t->mode == FERRY_MODE_VERIFY)
    verify_item(t);
  else
    run_item(t);
}

/* ---- ops -------------------------------------------------------------------------------------------- */
static jt *jt_new(ferry_instance *ins, ferry_task *task) {
  joget_ctx_t *c = ferry_instance_ctx(ins);
  jt *t = calloc(1, sizeof *t);
  if (!t) abort();
  t->c = c;
  t->k = c->snk;
  t->task = task;
  t->it = ferry_task_item(task);
  t->src = t->it->body;
  t->st = ferry_task_state(task);
  t->rep = ferry_task_report(task);
  t->mode = ferry_task_mode(task);
  t->plan = json_object();
  t->reasons = json_array();
  t->diffs = json_array();
  t->cands_pg = json_array();
  t->checked = json_object();
  return t;
}

static void snk_write(ferry_instance *ins, ferry_task *task) {
  jt *t = jt_new(ins, task);
  gate_enter(t);
}

static void snk_plan(ferry_instance *ins, ferry_task *task) {
  jt *t = jt_new(ins, task);
  gate_enter(t); /* the admin check is part of the plan */
}

static void snk_verify(ferry_instance *ins, ferry_task *task) {
  jt *t = jt_new(ins, task);
  gate_enter(t);
}

static int snk_start(ferry_instance *ins, ferry_error *err) {
  joget_ctx_t *c = ferry_instance_ctx(ins);
  joget_snk *k = calloc(1, sizeof *k);
  if (!k) abort();
  k->c = c;
  joget_cache_init(&k->users);
  joget_cache_init(&k->hashes);
  joget_cache_init(&k->defs);
  joget_cache_init(&k->latest);
  joget_cache_init(&k->dirusers);
  k->wake = malloc(sizeof *k->wake);
  if (!k->wake) abort();
  uv_timer_init(ferry_instance_loop(ins), k->wake);
  k->wake->data = k;
  c->snk = k;
  return 0;
}

static void wake_closed(uv_handle_t *h) { free(h); }

void joget_sink_fini(joget_ctx_t *c) {
  joget_snk *k = c->snk;
  if (!k) return;
  joget_cache_free(&k->users);
  joget_cache_free(&k->hashes);
  joget_cache_free(&k->defs);
  joget_cache_free(&k->latest);
  joget_cache_free(&k->dirusers);
  ferry_error_clear(&k->gate_err);
  if (k->wake) {
    uv_timer_stop(k->wake);
    uv_close((uv_handle_t *)k->wake, wake_closed);
  }
  while (k->locks) { /* none is left once every task completed */
    jlock *l = k->locks;
    k->locks = l->next;
    free(l->key);
    free(l);
  }
  free(k);
  c->snk = NULL;
}

static const char *const joget_hook_points[] = {"before_start", "after_start", NULL};

const ferry_sink_ops joget_sink_ops = {
    .struct_size = sizeof(ferry_sink_ops),
    .accepts = FERRY_ITEM_INSTANCE,
    .hook_points = joget_hook_points,
    .start = snk_start,
    .write = snk_write,
    .plan = snk_plan,
    .verify = snk_verify,
};
