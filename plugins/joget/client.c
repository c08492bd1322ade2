/* joget plugin: the client layer over ferry/http.h.
 *
 * - URLs: <url>/web/json/<path>; every call carries a Referer whose host is the URL's host (Joget's API
 *   domain whitelist answers 400 otherwise, docs/joget-facts.md 4.2).
 * - Credentials on every request (no sessions): j_username + j_password or hash, plus loginAs for the master
 *   login (docs/joget-facts.md 3). GET calls carry them in the query string (the HTTP service never prints queries),
 *   POST calls in the form body.
 * - Answers: Joget's JSON quirks are normalised by the callers with joget_list(); status codes are mapped to
 *   ferry error codes with messages that name the server, the call, the identity and what to check.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "joget.h"

/* ---- helpers ------------------------------------------------------------------------------------------- */
int64_t joget_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *joget_list(json_t *doc, const char *key) {
  json_t *v = json_is_object(doc) ? json_object_get(doc, key) : NULL;
  if (!v || json_is_null(v)) return json_array();
  if (json_is_array(v)) return json_incref(v);
  json_t *a = json_array();
  json_array_append(a, v);
  return a;
}

const char *joget_str(const json_t *obj, const char *key) {
  return json_string_value(json_object_get(obj, key));
}

char *joget_join(const json_t *strings, const char *sep) {
  ferry_buf b = FERRY_BUF_INIT;
  size_t i;
  json_t *v;
  json_array_foreach(strings, i, v) {
    const char *sv = json_string_value(v);
    ferry_buf_addf(&b, "%s%s", i ? sep : "", sv ? sv : "");
  }
  return ferry_buf_steal(&b);
}

void joget_act_view(json_t *act, json_t *doc) {
  if (joget_str(doc, "state")) json_object_set_new(act, "state", json_string(joget_str(doc, "state")));
  json_t *as = joget_list(doc, "assignee");
  json_object_set_new(act, "assignees", as);
  const char *acc = joget_str(doc, "acceptedUser");
  const char *st = joget_str(act, "state");
  if (!acc && st && !strcmp(st, "open.running") && json_array_size(as) == 1)
    acc = json_string_value(json_array_get(as, 0)); /* accepting leaves only the accepter's assignment */
  json_object_set_new(act, "accepted_by", acc ? json_string(acc) : json_null());
}

int joget_def_split(const char *def, char **app, char **ver, char **proc) {
  *app = *ver = *proc = NULL;
  if (!def) return -1;
  const char *a = strchr(def, '#');
  if (!a) return -1;
  const char *b = strchr(a + 1, '#');
  if (!b || strchr(b + 1, '#') || a == def || b == a + 1 || !b[1]) return -1;
  *app = strndup(def, (size_t)(a - def));
  *ver = strndup(a + 1, (size_t)(b - a - 1));
  *proc = ferry_strdup(b + 1);
  if (!*app || !*ver) abort();
  return 0;
}

int joget_bad_ident(const char *s) {
  if (!s) return 0;
  return strpbrk(s, " ();") != NULL || strstr(s, "/*") != NULL;
}

void joget_test_crash(const char *step) {
  static int seen;
  const char *e = getenv("FERRY_JOGET_TEST_CRASH_AFTER");
  if (!e || !*e) return;
  size_t n = strcspn(e, ":");
  if (strlen(step) != n || strncmp(e, step, n)) return;
  int at = e[n] == ':' ? atoi(e + n + 1) : 1;
  if (++seen >= (at > 0 ? at : 1)) {
    fprintf(stderr, "joget: FERRY_JOGET_TEST_CRASH_AFTER=%s: raising SIGKILL (test only)\n", e);
    fflush(stderr);
    raise(SIGKILL);
  }
}

char *joget_seg(const char *s) {
  char *e = ferry_url_escape(s ? s : "");
  if (!e) abort();
  return e;
}

void joget_admin_ident(joget_ctx_t *c, joget_ident *id) {
  memset(id, 0, sizeof *id);
  id->user = c->user;
  id->password = c->password && *c->password ? c->password : NULL;
  id->hash = id->password ? NULL : (c->hash && *c->hash ? c->hash : NULL);
  id->role = JOGET_ROLE_ADMIN;
  id->label = NULL; /* built on demand from user */
}

/* ---- calls --------------------------------------------------------------------------------------------- */
typedef struct joget_req {
  joget_ctx_t *c;
  joget_cb cb;
  void *arg;
  char *method;
  char *path;  /* without query */
  char *label; /* identity, for messages */
  int role;
  int login_as;
} joget_req;

static char *ident_label(const joget_ident *id) {
  if (!id) return ferry_strdup("anonymous");
  if (id->label) return ferry_strdup(id->label);
  if (id->login_as)
    return ferry_asprintf("user \"%s\" (master login \"%s\" + loginAs)", id->login_as, id->user ? id->user : "");
  return ferry_asprintf("%s \"%s\"", id->role == JOGET_ROLE_ADMIN ? "admin user" : "user",
                        id->user ? id->user : "");
}

static const char *err_message(json_t *doc) {
  json_t *e = json_object_get(doc, "error");
  const char *m = joget_str(e, "message");
  return m ? m : "";
}

static void req_free(joget_req *r) {
  free(r->method);
  free(r->path);
  free(r->label);
  free(r);
}

static void on_http(void *arg, const ferry_http_response *res, const ferry_error *herr) {
  joget_req *r = arg;
  joget_ctx_t *c = r->c;
  ferry_error e = FERRY_ERROR_INIT;
  json_t *doc = NULL;
  if (herr) {
    ferry_error_copy(&e, herr);
    goto out;
  }
  long st = res->status;
  if (res->body_len > 0) {
    size_t i = 0;
    while (i < res->body_len && isspace((unsigned char)res->body[i])) i++;
    if (i < res->body_len) doc = json_loadb(res->body, res->body_len, 0, NULL);
  }
  const char *where = r->path;
  if (st >= 200 && st < 300) {
    size_t i = 0;
    while (i < res->body_len && isspace((unsigned char)res->body[i])) i++;
    if (i < res->body_len && !doc) {
      ferry_error_set(&e, FERRY_EPROTO,
                      "joget %s: %s %s/web/json/%s: the server answered HTTP %ld with something that is not "
                      "JSON (is the url option the Joget context, e.g. http://host:8080/jw?)",
                      c->host_label, r->method, c->base, where, st);
      ferry_error_set_detail(&e, "first bytes: %.200s", res->body);
    }
    goto out;
  }
  if (st >= 300 && st < 400) {
    const char *loc = res->location ? res->location : "";
    if (strstr(loc, "login")) {
      if (r->login_as)
        ferry_error_set(
            &e, FERRY_EPERM,
            "joget %s: %s %s: the call ran as anonymous: the master login for %s did not take "
            "(Joget silently falls back to anonymous when masterLoginUsername/masterLoginPassword "
            "are not set on the server or do not match); check master_user and master_password "
            "(or master_hash) and the server's system settings",
            c->host_label, r->method, where, r->label);
      else
        ferry_error_set(&e, FERRY_EPERM,
                        "joget %s: %s %s: not authenticated: %s was not accepted (the server redirected to "
                        "its login page); check the user and password (or hash) options and that the user "
                        "has ROLE_ADMIN",
                        c->host_label, r->method, where, r->label);
    } else {
      ferry_error_set(&e, FERRY_EPROTO, "joget %s: %s %s: unexpected redirect (HTTP %ld) to %s",
                      c->host_label, r->method, where, st, loc);
    }
    goto out;
  }
  const char *msg = err_message(doc);
  if (st == 401) {
    ferry_error_set(&e, FERRY_EPERM,
                    "joget %s: %s %s: %s was refused (HTTP 401 %s): check the password or hash%s",
                    c->host_label, r->method, where, r->label, msg,
                    r->login_as ? " of the master login, and that the user exists on this server" : "");
  } else if (st == 403) {
    ferry_error_set(&e, FERRY_EPERM,
                    "joget %s: %s %s: %s is logged in but may not make this call (HTTP 403 %s): give it "
                    "ROLE_ADMIN (monitoring and console calls need an administrator)",
                    c->host_label, r->method, where, r->label, msg);
  } else if (st == 400 && (strstr(msg, "Referer") || strstr(msg, "whitelist") || !*msg)) {
    /* Joget's API domain whitelist answers 400 with an empty message (docs/joget-facts.md 4.2) */
    ferry_error_set(
        &e, FERRY_EINVAL,
        "joget %s: %s %s: the server refused the call with HTTP 400%s: the usual cause is the API domain "
        "whitelist refusing ferry's Referer \"%s\"; set the referer option to a URL whose host the server "
        "accepts, or add ferry's host to jsonpWhitelist / jsonpIPWhitelist in the server's settings",
        c->host_label, r->method, where, *msg ? "" : " and no message",
        c->referer_hdr + strlen("Referer: "));
  } else if (st == 404) {
    ferry_error_set(&e, FERRY_ENOENT, "joget %s: %s %s: not found (HTTP 404 %s)", c->host_label, r->method,
                    where, msg);
  } else if ((st == 502 || st == 504) && strcmp(r->method, "GET")) {
    /* a proxy answered: the Joget behind it may have done the work (docs/services.md, in doubt) */
    ferry_error_set(&e, FERRY_EINDOUBT,
                    "joget %s: %s %s: HTTP %ld from a gateway: the server behind it may have done it", c->host_label,
                    r->method, where, st);
  } else if (st >= 500 || st == 429) {
    ferry_error_set(&e, FERRY_ETRANSIENT, "joget %s: %s %s: server error (HTTP %ld %s)", c->host_label,
                    r->method, where, st, msg);
  } else if (st >= 400) {
    ferry_error_set(&e, FERRY_EINVAL, "joget %s: %s %s: request refused (HTTP %ld %s)", c->host_label,
                    r->method, where, st, msg);
  } else {
    ferry_error_set(&e, FERRY_EPROTO, "joget %s: %s %s: unexpected HTTP %ld", c->host_label, r->method, where,
                    st);
  }
  if (res->body_len) ferry_error_set_detail(&e, "HTTP %ld: %.300s", st, res->body);
out:
  if (e.code) {
    json_decref(doc);
    doc = NULL;
  }
  r->cb(r->arg, doc, e.code ? &e : NULL);
  json_decref(doc);
  ferry_error_clear(&e);
  req_free(r);
}

int joget_call(joget_ctx_t *c, const char *method, const char *path, const char *const *params,
               const joget_ident *id, long timeout_ms, joget_cb cb, void *arg, ferry_error *err) {
  if (!c->http) return ferry_error_set(err, FERRY_ECANCELED, "joget: the HTTP client is closed");
  size_t np = 0;
  while (params && params[np]) np += 2;
  const char **kv = calloc(np + 10, sizeof *kv);
  if (!kv) abort();
  size_t k = 0;
  for (size_t i = 0; i < np; i++) kv[k++] = params[i];
  if (id && id->user) {
    kv[k++] = "j_username";
    kv[k++] = id->user;
    if (id->password) {
      kv[k++] = "j_password";
      kv[k++] = id->password;
    } else if (id->hash) {
      kv[k++] = "hash";
      kv[k++] = id->hash;
    }
    if (id->login_as) {
      kv[k++] = "loginAs";
      kv[k++] = id->login_as;
    }
  }
  kv[k] = NULL;
  char *form = k ? ferry_form_encode(kv) : NULL;
  free(kv);
  int post = !strcmp(method, "POST");
  char *url = (!post && form && *form) ? ferry_asprintf("%s/web/json/%s?%s", c->base, path, form)
                                       : ferry_asprintf("%s/web/json/%s", c->base, path);
  const char *headers[] = {c->referer_hdr, "Accept: application/json", NULL};
  ferry_http_request req = {.method = method, .url = url, .headers = headers, .timeout_ms = timeout_ms};
  if (post) {
    req.body = form ? form : "";
    req.body_len = form ? strlen(form) : 0;
    req.content_type = "application/x-www-form-urlencoded";
  }
  joget_req *r = calloc(1, sizeof *r);
  if (!r) abort();
  r->c = c;
  r->cb = cb;
  r->arg = arg;
  r->method = ferry_strdup(method);
  r->path = ferry_strdup(path);
  r->label = ident_label(id);
  r->role = id ? id->role : 0;
  r->login_as = id && id->login_as;
  int rc = ferry_http_send(c->http, &req, on_http, r);
  free(url);
  free(form);
  if (rc < 0) {
    req_free(r);
    return ferry_error_set(err, rc, "joget %s: %s %s: the request could not be sent (check the url option)",
                           c->host_label, method, path);
  }
  return 0;
}

/* ---- database reads (dsn) ------------------------------------------------------------------------- */
int joget_res_n(const joget_res *r) { return r ? (int)r->nrows : 0; }

const char *joget_res_val(const joget_res *r, int row, int col) {
  if (!r || row < 0 || col < 0 || (size_t)row >= r->nrows || (size_t)col >= r->ncols) return "";
  const char *v = r->cells[(size_t)row * r->ncols + (size_t)col];
  return v ? v : "";
}

int joget_res_null(const joget_res *r, int row, int col) {
  if (!r || row < 0 || col < 0 || (size_t)row >= r->nrows || (size_t)col >= r->ncols) return 1;
  return r->cells[(size_t)row * r->ncols + (size_t)col] == NULL;
}

int joget_res_true(const joget_res *r, int row, int col) {
  if (joget_res_null(r, row, col)) return 0;
  const char *v = joget_res_val(r, row, col);
  if (v[0] == 't' || v[0] == 'T' || v[0] == '\x01') return 1;
  if (v[0] == 'f' || v[0] == 'F' || !v[0]) return 0;
  return strtod(v, NULL) != 0;
}

typedef struct joget_rd {
  joget_sql_cb cb;
  void *arg;
  joget_res res;
} joget_rd;

static void rd_free(joget_rd *q) {
  for (size_t i = 0; i < q->res.nrows * q->res.ncols; i++) free(q->res.cells[i]);
  free(q->res.cells);
  free(q);
}

static int rd_rows(void *arg, const ferry_sql_batch *b) {
  joget_rd *q = arg;
  q->res.ncols = b->ncols;
  size_t need = (q->res.nrows + b->nrows) * b->ncols;
  if (need > q->res.cap) {
    size_t cap = q->res.cap ? q->res.cap : 64;
    while (cap < need) cap *= 2;
    q->res.cells = realloc(q->res.cells, cap * sizeof *q->res.cells);
    if (!q->res.cells) abort();
    q->res.cap = cap;
  }
  for (size_t r = 0; r < b->nrows; r++)
    for (size_t k = 0; k < b->ncols; k++) {
      const ferry_sql_value *v = FERRY_SQL_CELL(b, r, k);
      char *s = NULL;
      if (v->data) {
        s = malloc(v->len + 1);
        if (!s) abort();
        memcpy(s, v->data, v->len);
        s[v->len] = 0;
      }
      q->res.cells[(q->res.nrows + r) * b->ncols + k] = s;
    }
  q->res.nrows += b->nrows;
  return 0;
}

static void rd_done(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  joget_rd *q = arg;
  q->cb(q->arg, status, status ? NULL : &q->res, status ? err : NULL);
  rd_free(q);
}

int joget_sql_read(joget_ctx_t *c, ferry_sql_txn *txn, const char *sql, int n, const char *const *params,
                   joget_sql_cb cb, void *arg, ferry_error *err) {
  if (!c->db) return ferry_error_set(err, FERRY_ECONFIG, "joget: no dsn configured");
  if (n < 0) return ferry_error_set(err, FERRY_EINVAL, "joget: bad SQL parameters");
  ferry_sql_value *pv = calloc((size_t)n + 1, sizeof *pv);
  if (!pv) abort();
  for (int i = 0; i < n; i++) {
    pv[i].data = params[i];
    pv[i].len = params[i] ? strlen(params[i]) : 0;
    pv[i].binary = 0;
  }
  joget_rd *q = calloc(1, sizeof *q);
  if (!q) abort();
  q->cb = cb;
  q->arg = arg;
  int rc = ferry_sql_query(c->db, txn, sql, (size_t)n, n ? pv : NULL, rd_rows, rd_done, q);
  free(pv);
  if (rc < 0) {
    rd_free(q);
    return ferry_error_set(err, rc, "joget %s: cannot queue a database read", c->host_label);
  }
  return 0;
}

char *joget_sql_in_list(int from, int n) {
  ferry_buf b = FERRY_BUF_INIT;
  for (int i = 0; i < n; i++) ferry_buf_addf(&b, "%s$%d", i ? ", " : "", from + i);
  if (!n) ferry_buf_add(&b, "NULL");
  return ferry_buf_steal(&b);
}

/* ---- once-per-key lookups ------------------------------------------------------------------------------ */
typedef struct joget_waiter {
  joget_once_cb cb;
  void *arg;
  struct joget_waiter *next;
} joget_waiter;

struct joget_once {
  joget_cache *cc;
  char *key;
  joget_waiter *w, **wtail;
  struct joget_once *next;
};

void joget_cache_init(joget_cache *cc) {
  cc->done = json_object();
  cc->failed = json_object();
  cc->pending = NULL;
}

void joget_cache_free(joget_cache *cc) {
  json_decref(cc->done);
  json_decref(cc->failed);
  cc->done = cc->failed = NULL;
  /* pending lookups were completed (canceled) when the HTTP client / pg connection was freed */
}

const char *joget_once_key(const joget_once *o) { return o->key; }

void joget_cache_get(joget_ctx_t *c, joget_cache *cc, const char *key, joget_once_start start, joget_once_cb cb,
                     void *arg) {
  json_t *v = json_object_get(cc->done, key);
  if (v) {
    cb(arg, v, NULL);
    return;
  }
  json_t *f = json_object_get(cc->failed, key);
  if (f) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, (int)json_integer_value(json_object_get(f, "code")), "%s", joget_str(f, "message"));
    if (joget_str(f, "detail")) ferry_error_set_detail(&e, "%s", joget_str(f, "detail"));
    cb(arg, NULL, &e);
    ferry_error_clear(&e);
    return;
  }
  joget_waiter *w = calloc(1, sizeof *w);
  if (!w) abort();
  w->cb = cb;
  w->arg = arg;
  for (joget_once *o = cc->pending; o; o = o->next)
    if (!strcmp(o->key, key)) {
      *o->wtail = w;
      o->wtail = &w->next;
      return;
    }
  joget_once *o = calloc(1, sizeof *o);
  if (!o) abort();
  o->cc = cc;
  o->key = ferry_strdup(key);
  o->w = w;
  o->wtail = &w->next;
  o->next = cc->pending;
  cc->pending = o;
  start(c, key, o);
}

void joget_once_finish(joget_once *o, json_t *value, const ferry_error *err) {
  joget_cache *cc = o->cc;
  for (joget_once **pp = &cc->pending; *pp; pp = &(*pp)->next)
    if (*pp == o) {
      *pp = o->next;
      break;
    }
  json_t *stored = NULL;
  if (!err) {
    stored = value ? value : json_null();
    json_object_set_new(cc->done, o->key, stored);
  } else {
    json_decref(value);
    if (err->code != FERRY_ETRANSIENT && err->code != FERRY_ECANCELED)
      json_object_set_new(cc->failed, o->key,
                          json_pack("{s:i, s:s, s:s?}", "code", err->code, "message",
                                    err->message ? err->message : "", "detail", err->detail));
  }
  if (stored) json_incref(stored); /* keep it alive while waiters run, even if the cache is cleared */
  joget_waiter *w = o->w;
  while (w) {
    joget_waiter *next = w->next;
    w->cb(w->arg, stored, err);
    free(w);
    w = next;
  }
  json_decref(stored);
  free(o->key);
  free(o);
}

/* ---- GET as the admin (reads: the HTTP service retries them, see joget.c) -------------------------- */
int joget_get(joget_ctx_t *c, const char *path, const char *const *params, joget_cb cb, void *arg,
              ferry_error *err) {
  joget_ident id;
  joget_admin_ident(c, &id);
  return joget_call(c, "GET", path, params, &id, 0, cb, arg, err);
}
