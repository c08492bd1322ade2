/* joget sink: once-per-key lookups shared by many items (identity checks, login hashes, dir_user,
 * latest versions, a target definition's facts), the admin gate, the target definition. */
#define _GNU_SOURCE
#include <openssl/evp.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>

#include "sink.h"

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
  joget_jt_kick(t);
}

void joget_jt_lookup(jt *t, joget_cache *cc, const char *key, joget_once_start start, const char *slot, int soft) {
  jt_lk *l = calloc(1, sizeof *l);
  if (!l) abort();
  l->t = t;
  l->slot = ferry_strdup(slot);
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
void joget_user_ident_from(joget_ctx_t *c, const char *user, const char *hash, joget_ident *id, char **label) {
  memset(id, 0, sizeof *id);
  id->role = JOGET_ROLE_USER;
  if (c->start_mode == JOGET_START_MASTER) {
    id->user = c->master_user;
    id->password = c->master_password && *c->master_password ? c->master_password : NULL;
    id->hash = id->password ? NULL : c->master_hash;
    id->login_as = user;
    *label = ferry_asprintf("user \"%s\" (master login \"%s\" + loginAs)", user, c->master_user);
  } else if (c->start_mode == JOGET_START_HASH) {
    id->user = user;
    id->hash = hash;
    *label = ferry_asprintf("user \"%s\" (login hash from the target's dir_user)", user);
  } else {
    json_t *u = json_object_get(c->user_pw, user);
    id->user = user;
    id->password = joget_str(u, "password");
    id->hash = joget_str(u, "hash");
    *label = ferry_asprintf("user \"%s\" (credentials from the users option)", user);
  }
  id->label = *label;
}

static void hash_take(void *arg, int status, const joget_res *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_copy(&e, err);
    ferry_error_prefix(&e, "joget %s: reading dir_user for a login hash", r->c->host_label);
    orq_send_fail(r, &e);
    return;
  }
  if (joget_res_n(res) != 1 || joget_res_null(res, 0, 0)) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(
        &e, FERRY_EPERM,
        "joget %s: user \"%s\" does not exist (or has no password) in the target's dir_user: copy the "
        "users first (stage \"users\"), or use start_as master",
        r->c->host_label, joget_once_key(r->o));
    orq_send_fail(r, &e);
    return;
  }
  const char *h = joget_res_val(res, 0, 0);
  ferry_secret(r->c->ins, h);
  orq_finish(r, json_string(h), NULL);
}

void joget_hash_start(joget_ctx_t *c, const char *key, joget_once *o) {
  once_rq *r = orq_new(c, o);
  const char *p[1] = {key};
  ferry_error e = FERRY_ERROR_INIT;
  if (joget_sql_read(c, NULL,
                    JOGET_SQL(c,
                              "SELECT upper(md5(username || '::' || password)) FROM dir_user WHERE username = $1 "
                              "AND password IS NOT NULL LIMIT 1",
                              "SELECT upper(md5(CONCAT(username, '::', password))) FROM dir_user WHERE username = "
                              "$1 AND password IS NOT NULL LIMIT 1"),
                    1, p, hash_take, r, &e) < 0)
    orq_send_fail(r, &e);
}

/* -- identity check: currentUsername as that user must answer that user --
 * Each worker of `ferry run --worker` has its own sink, so each would check every user once. A user checked
 * by one worker is noted for the others (ferry_shared_put: under the stage's listing in the journal, gone with
 * it). The note's name is a fingerprint of the user and of everything this sink's calls as that user depend
 * on (start_as, the master login or the users option's credentials, the dsn the login hashes come from, the
 * target's URL), so that a worker whose configuration differs checks again. Nobody who reads the journal can
 * test a password guess against it cheaply: the key is PBKDF2-HMAC-SHA256 of those settings (NOTE_ROUNDS
 * rounds, salted with the target's URL), derived once per sink; the name is HMAC-SHA256(key, user). */
#define NOTE_ROUNDS 100000

static void put_field(ferry_buf *b, const char *tag, const char *v) {
  ferry_buf_addf(b, "%s=%zu:", tag, v ? strlen(v) : (size_t)0);
  if (v) ferry_buf_add(b, v);
  ferry_buf_addn(b, "\n", 1);
}

static int note_key(joget_ctx_t *c) {
  joget_snk *k = c->snk;
  if (k->note_key_set) return k->note_key_set > 0;
  k->note_key_set = -1;
  ferry_buf b = FERRY_BUF_INIT;
  char mode[16];
  snprintf(mode, sizeof mode, "%d", c->start_mode);
  put_field(&b, "start_as", mode);
  if (c->start_mode == JOGET_START_MASTER) {
    put_field(&b, "master_user", c->master_user);
    put_field(&b, "master_password", c->master_password);
    put_field(&b, "master_hash", c->master_hash);
  } else if (c->start_mode == JOGET_START_HASH) {
    put_field(&b, "dsn", c->dsn);
  } else {
    char *u = c->user_pw ? json_dumps(c->user_pw, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    put_field(&b, "users", u);
    if (u) {
      OPENSSL_cleanse(u, strlen(u));
      free(u);
    }
  }
  char *salt = ferry_asprintf("ferry joget identity note 1 %s", c->base ? c->base : "");
  int ok = b.buf && PKCS5_PBKDF2_HMAC(b.buf, (int)b.len, (const unsigned char *)salt, (int)strlen(salt),
                                       NOTE_ROUNDS, EVP_sha256(), (int)sizeof k->note_key, k->note_key) == 1;
  if (b.buf) OPENSSL_cleanse(b.buf, b.len);
  ferry_buf_free(&b);
  free(salt);
  if (ok) k->note_key_set = 1;
  else ferry_log_warn(c->ins, "identity notes: PBKDF2 failed: every worker checks its users itself");
  return ok;
}

char *joget_identity_note_name(joget_ctx_t *c, const char *user) {
  if (!note_key(c)) return NULL;
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  if (!HMAC(EVP_sha256(), c->snk->note_key, (int)sizeof c->snk->note_key, (const unsigned char *)user,
            strlen(user), mac, &n) || n != 32)
    return NULL;
  char hex[65];
  for (unsigned i = 0; i < 32; i++) snprintf(hex + 2 * i, 3, "%02x", mac[i]);
  return ferry_asprintf("joget identity %s", hex);
}

static void user_check_take(void *arg, json_t *doc, const ferry_error *err) {
  once_rq *r = arg;
  if (err) {
    orq_finish(r, NULL, err);
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
  char *name = joget_identity_note_name(r->c, want);
  ferry_error ne = FERRY_ERROR_INIT;
  if (name && ferry_shared_put(r->c->ins, name, want, &ne) < 0)
    ferry_log_warn(r->c->ins, "noting that user \"%s\" was checked: %s (the other workers check it themselves)",
                   want, ne.message ? ne.message : "?");
  ferry_error_clear(&ne);
  free(name);
  orq_finish(r, json_true(), NULL);
}

static void user_check_send(joget_ctx_t *c, once_rq *r, const char *hash) {
  joget_ident id;
  char *label = NULL;
  joget_user_ident_from(c, joget_once_key(r->o), hash, &id, &label);
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
    orq_finish(r, NULL, err);
    return;
  }
  user_check_send(r->c, r, json_string_value(value));
}

void joget_user_check_start(joget_ctx_t *c, const char *key, joget_once *o) {
  once_rq *r = orq_new(c, o);
  char *name = joget_identity_note_name(c, key);
  char *noted = name ? ferry_shared_get(c->ins, name) : NULL;
  int known = noted && !strcmp(noted, key); /* the value is the user: a check that another worker made */
  free(noted);
  free(name);
  if (known) {
    c->snk->users_noted++;
    ferry_log_debug(c->ins, "user \"%s\": checked by another worker (its note in the journal)", key);
    orq_finish(r, json_true(), NULL);
    return;
  }
  c->snk->users_checked++;
  if (c->start_mode == JOGET_START_HASH)
    joget_cache_get(c, &c->snk->hashes, key, joget_hash_start, user_check_hash, r);
  else
    user_check_send(c, r, NULL);
}

/* -- dir_user existence (dsn) -- */
static void diruser_take(void *arg, int status, const joget_res *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) {
    orq_finish(r, NULL, err);
    return;
  }
  orq_finish(r, json_boolean(joget_res_n(res) > 0), NULL);
}

void joget_diruser_start(joget_ctx_t *c, const char *key, joget_once *o) {
  once_rq *r = orq_new(c, o);
  const char *p[1] = {key};
  ferry_error e = FERRY_ERROR_INIT;
  if (joget_sql_read(c, NULL, "SELECT 1 FROM dir_user WHERE username = $1 AND COALESCE(active, 1) <> 0", 1, p,
                    diruser_take, r, &e) < 0)
    orq_send_fail(r, &e);
}

/* -- latest package version of a process on the target -- */
static void latest_take(void *arg, json_t *doc, const ferry_error *err) {
  once_rq *r = arg;
  if (err) {
    orq_finish(r, NULL, err);
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

void joget_latest_start(joget_ctx_t *c, const char *key, joget_once *o) {
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

static void def_pub_take(void *arg, int status, const joget_res *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) json_object_set_new(r->acc, "published_error", json_string(err->message ? err->message : ""));
  if (status && err->code == FERRY_ETRANSIENT)
    json_object_set_new(r->acc, "transient", json_true());
  else if (joget_res_n(res) > 0)
    json_object_set_new(r->acc, "published", json_boolean(joget_res_true(res, 0, 0)));
  else
    json_object_set_new(r->acc, "published", json_null());
  if (!status && joget_res_n(res) > 0)
    json_object_set_new(r->acc, "app_version", json_string(joget_res_val(res, 0, 1)));
  def_maybe_finish(r);
}

static void def_acts_take(void *arg, int status, const joget_res *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) {
    json_object_set_new(r->acc, "activities_error", json_string(err->message ? err->message : ""));
    if (err->code == FERRY_ETRANSIENT) json_object_set_new(r->acc, "transient", json_true());
    if (err->detail && (strstr(err->detail, "42P01") || strstr(err->detail, "error 1146")) && strstr(r->c->acts_sql, "emu_process_graph"))
      json_object_set_new(r->acc, "activities_default", json_true()); /* the default query on a real server */
  } else {
    json_t *a = json_array();
    for (int i = 0; i < joget_res_n(res); i++)
      if (!joget_res_null(res, i, 0)) json_array_append_new(a, json_string(joget_res_val(res, i, 0)));
    json_object_set_new(r->acc, "activities", a);
  }
  def_maybe_finish(r);
}

/* Tool plugins mapped to activities of the definition (app_package_activity_plugin): what re-creating an
 * instance may run again. Errors are recorded, never fatal (a report detail). */
static void def_tools_take(void *arg, int status, const joget_res *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) {
    json_object_set_new(r->acc, "tools_error", json_string(err->message ? err->message : ""));
    if (err->code == FERRY_ETRANSIENT) json_object_set_new(r->acc, "transient", json_true());
  } else {
    json_t *tools = json_object();
    for (int i = 0; i < joget_res_n(res); i++)
      json_object_set_new(tools, joget_res_val(res, i, 0), json_string(joget_res_val(res, i, 1)));
    json_object_set_new(r->acc, "tools", tools);
  }
  def_maybe_finish(r);
}

/* The app's default plugins (app_plugin_default): a notification audit-trail plugin e-mails the assignees
 * of every assignment the target creates, so re-created activities notify their assignees again. */
static void def_notify_take(void *arg, int status, const joget_res *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) {
    if (err->code == FERRY_ETRANSIENT) json_object_set_new(r->acc, "transient", json_true());
    json_object_set_new(r->acc, "notify_error", json_string(err->message ? err->message : ""));
  } else if (joget_res_n(res) > 0) {
    json_object_set_new(r->acc, "notify", json_string(joget_res_val(res, 0, 0)));
  }
  def_maybe_finish(r);
}

/* AND-joins of the definition with their number of incoming branches (join_branches_sql). */
static void def_joins_take(void *arg, int status, const joget_res *res, const ferry_error *err) {
  once_rq *r = arg;
  if (status) {
    if (err->code == FERRY_ETRANSIENT) json_object_set_new(r->acc, "transient", json_true());
    json_object_set_new(r->acc, "joins_error", json_string(err->message ? err->message : ""));
  } else {
    json_t *j = json_object();
    for (int i = 0; i < joget_res_n(res); i++)
      if (!joget_res_null(res, i, 0))
        json_object_set_new(j, joget_res_val(res, i, 0), json_integer(atoll(joget_res_val(res, i, 1))));
    json_object_set_new(r->acc, "joins", j);
  }
  def_maybe_finish(r);
}

void joget_def_start(joget_ctx_t *c, const char *key, joget_once *o) {
  once_rq *r = orq_new(c, o);
  r->acc = json_object();
  r->step = 1; /* hold */
  char *app, *ver, *proc;
  joget_def_split(key, &app, &ver, &proc);
  char *seg = joget_seg(app);
  char *segp = joget_seg(proc);
  char *path = ferry_asprintf("workflow/process/view/%s:%s:%s", seg, ver, segp);
  joget_ident id;
  joget_admin_ident(c, &id);
  ferry_error e = FERRY_ERROR_INIT;
  r->step++;
  if (joget_call(c, "GET", path, NULL, &id, 0, def_view_take, r, &e) < 0) {
    r->step--;
    json_object_set_new(r->acc, "view_error", json_string(e.message ? e.message : ""));
  }
  ferry_error_clear(&e);
  if (c->db) {
    const char *p2[2] = {app, ver};
    r->step++;
    if (joget_sql_read(c, NULL,
                       JOGET_SQL(c,
                                 "SELECT a.published, a.appversion FROM app_package p JOIN app_app a ON a.appid = "
                                 "p.appid AND a.appversion = p.appversion WHERE p.packageid = $1 AND "
                                 "p.packageversion::text = $2",
                                 /* published is bit(1) on MySQL */
                                 "SELECT a.published = 1, a.appversion FROM app_package p JOIN app_app a ON a.appid = "
                                 "p.appid AND a.appversion = p.appversion WHERE p.packageid = $1 AND "
                                 "p.packageversion = $2"),
                       2, p2, def_pub_take, r, &e) < 0)
      r->step--;
    ferry_error_clear(&e);
    if (c->acts_sql && *c->acts_sql) {
      const char *p1[1] = {key};
      r->step++;
      if (joget_sql_read(c, NULL, c->acts_sql, 1, p1, def_acts_take, r, &e) < 0) r->step--;
      ferry_error_clear(&e);
    }
    const char *p3[3] = {app, ver, proc};
    r->step++;
    if (joget_sql_read(c, NULL,
                      JOGET_SQL(c,
                                "SELECT activitydefid, COALESCE(pluginname, '') FROM app_package_activity_plugin "
                                "WHERE packageid = $1 AND packageversion::text = $2 AND processdefid = $3 ORDER BY 1",
                                "SELECT activitydefid, COALESCE(pluginname, '') FROM app_package_activity_plugin "
                                "WHERE packageid = $1 AND packageversion = $2 AND processdefid = $3 ORDER BY 1"),
                      3, p3, def_tools_take, r, &e) < 0)
      r->step--;
    ferry_error_clear(&e);
    r->step++;
    if (joget_sql_read(c, NULL,
                      JOGET_SQL(c,
                                "SELECT d.pluginname FROM app_plugin_default d JOIN app_package p ON p.appid = "
                                "d.appid AND p.appversion = d.appversion WHERE p.packageid = $1 AND "
                                "p.packageversion::text = $2 AND d.pluginname LIKE '%NotificationAuditTrail' ORDER "
                                "BY 1 LIMIT 1",
                                "SELECT d.pluginname FROM app_plugin_default d JOIN app_package p ON p.appid = "
                                "d.appid AND p.appversion = d.appversion WHERE p.packageid = $1 AND "
                                "p.packageversion = $2 AND d.pluginname LIKE '%NotificationAuditTrail' ORDER "
                                "BY 1 LIMIT 1"),
                      2, p2, def_notify_take, r, &e) < 0)
      r->step--;
    ferry_error_clear(&e);
    if (c->joins_sql && *c->joins_sql) {
      const char *p1[1] = {key};
      r->step++;
      if (joget_sql_read(c, NULL, c->joins_sql, 1, p1, def_joins_take, r, &e) < 0) r->step--;
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

static void gate_release(joget_snk *k) {
  jt *w = k->gate_wait;
  k->gate_wait = NULL;
  while (w) {
    jt *next = w->gate_next;
    if (k->gate == 2)
      joget_dispatch(w);
    else
      joget_jt_fail_err(w, &k->gate_err);
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
    joget_jt_fail_err(w, &k->gate_err);
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

void joget_gate_enter(jt *t) {
  joget_snk *k = t->k;
  if (k->gate == 2) {
    joget_dispatch(t);
    return;
  }
  if (k->gate == 3) {
    joget_jt_fail_err(t, &k->gate_err);
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
    char *k = ferry_asprintf("%s#%s", app, ver);
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
    joget_jt_fail(t, FERRY_ENOENT, "no target version for %s", joget_str(t->src, "definition"));
    return;
  }
  if (!t->tver) t->tver = ferry_strdup(ver);
  t->tdef = ferry_asprintf("%s#%s#%s", t->tapp, t->tver, t->tproc);
  json_object_set_new(t->rep, "target_definition", json_string(t->tdef));
  t->after_def(t);
}

/* Maps a source definition to the target's (for children too); NULL when "latest" needs a lookup that is
 * in the cache as key "app#proc". */
char *joget_map_def(jt *t, const char *sdef, int *needs_latest) {
  char *app, *ver, *proc;
  *needs_latest = 0;
  if (joget_def_split(sdef, &app, &ver, &proc)) return NULL;
  const char *rule = version_rule(t->c, app, ver);
  char *out = NULL;
  if (!strcmp(rule, "same"))
    out = ferry_asprintf("%s#%s#%s", app, ver, proc);
  else if (strcmp(rule, "latest"))
    out = ferry_asprintf("%s#%s#%s", app, rule, proc);
  else {
    char *key = ferry_asprintf("%s#%s", app, proc);
    json_t *v = json_object_get(t->k->latest.done, key);
    if (json_is_string(v))
      out = ferry_asprintf("%s#%s#%s", app, json_string_value(v), proc);
    else
      *needs_latest = 1;
    free(key);
  }
  free(app);
  free(ver);
  free(proc);
  return out;
}

void joget_resolve_def(jt *t, void (*next)(jt *)) {
  const char *sdef = joget_str(t->src, "definition");
  char *app, *ver, *proc;
  if (joget_def_split(sdef, &app, &ver, &proc)) {
    joget_jt_fail(t, FERRY_EINVAL, "bad definition \"%s\" in the item (expected app#version#process)",
                  sdef ? sdef : "");
    return;
  }
  t->tapp = app;
  t->tproc = proc;
  const char *rule = version_rule(t->c, app, ver);
  if (!strcmp(rule, "same"))
    t->tver = ferry_strdup(ver);
  else if (strcmp(rule, "latest"))
    t->tver = ferry_strdup(rule);
  free(ver);
  t->after_def = next;
  if (!t->tver) {
    char *key = ferry_asprintf("%s#%s", app, proc);
    joget_jt_lookup(t, &t->k->latest, key, joget_latest_start, "latest", 0);
    free(key);
  }
  joget_jt_then(t, def_resolved);
}
