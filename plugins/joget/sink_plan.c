/* joget sink: PLAN (what a run would do, and what it cannot carry), the record on the target, losses. */
#define _GNU_SOURCE
#include "sink.h"

/* ---- PLAN -------------------------------------------------------------------------------------------- */
static void reason(jt *t, const char *fmt, ...) FERRY_PRINTF(2, 3);
static void reason(jt *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = ferry_vasprintf(fmt, ap);
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
  char *tdef = top ? ferry_strdup(t->tdef) : joget_map_def(t, joget_str(body, "definition"), &needs);
  if (tdef) {
    char *slot = ferry_asprintf("def:%s", tdef);
    joget_jt_lookup(t, &t->k->defs, tdef, joget_def_start, slot, 1);
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
  char *tdef = top ? ferry_strdup(t->tdef) : joget_map_def(t, joget_str(body, "definition"), &needs);
  const char *id = joget_str(body, "id");
  if (!tdef) {
    char *slot = NULL;
    char *app, *ver, *proc;
    if (!joget_def_split(joget_str(body, "definition"), &app, &ver, &proc)) {
      slot = ferry_asprintf("latest:%s#%s", app, proc);
      free(app);
      free(ver);
      free(proc);
    }
    json_t *l = slot ? json_object_get(t->plan, slot) : NULL;
    reason(t, "sub-flow instance %s: no target version for %s: %s", id, joget_str(body, "definition"),
           joget_str(l, "error") ? joget_str(l, "error") : "unknown");
    free(slot);
  } else {
    char *slot = ferry_asprintf("def:%s", tdef);
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
      else if (!pub && top && !t->c->db)
        joget_note(t, "published state of %s not checked (no dsn)", tdef);
      json_t *ids = json_object_get(d, "activities");
      if (json_is_array(ids)) {
        size_t i;
        json_t *a;
        json_array_foreach(json_object_get(body, "activities"), i, a)
          if (!joget_str_in(ids, joget_str(a, "def_id")))
            reason(t,
                   "%s: open activity %s does not exist in the target definition %s (activity/start would "
                   "answer result:false): map the instance to a version that has it (version_map)",
                   id, joget_str(a, "def_id"), tdef);
      } else if (joget_str(d, "activities_error") && json_is_true(json_object_get(d, "activities_default"))) {
        joget_note(t,
                   "activity ids of %s not checked: this database has no emu_process_graph (the emulator's); set "
                   "activity_ids_sql for a real server (docs/plugins/joget.md)",
                   tdef);
      } else if (joget_str(d, "activities_error")) {
        reason(t, "%s: reading the activity ids of %s with activity_ids_sql failed: %s", id, tdef,
               joget_str(d, "activities_error"));
      } else {
        joget_note(t, "activity ids of %s not checked (needs dsn and activity_ids_sql)", tdef);
      }
    }
    free(tdef);
  }
  /* variables carried after the start */
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(body, "variables"), k, v) {
    char *val = joget_var_text(v);
    if (!joget_var_at_start(k, val) && val && *val) {
      if (joget_bad_ident(k))
        reason(t, "%s: variable name \"%s\" cannot be passed to Joget (SQL filter)", id, k);
      else if (strstr(k, "var_"))
        joget_note(t,
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
static void take_rec_pg(jt *t, const joget_res *res, void *ud) {
  json_t *slot = ud;
  json_object_set_new(slot, "found", json_boolean(joget_res_n(res) == 1 && joget_res_true(res, 0, 0)));
}

/* MySQL: the table exists (information_schema, the dsn's database), then whether it holds the record */
static void take_rec_table_my(jt *t, const joget_res *res, void *ud) {
  json_t *slot = ud;
  if (joget_res_n(res) != 1 || !joget_res_true(res, 0, 0)) {
    json_object_set_new(slot, "found", json_false());
    return;
  }
  char *q = ferry_sql_quote_ident(t->c->db, joget_str(slot, "table"));
  char *sql = ferry_asprintf("SELECT count(*) > 0 FROM %s WHERE id = $1", q);
  const char *p[1] = {joget_str(t->src, "record_id")};
  joget_jt_pg(t, sql, 1, p, take_rec_pg, slot);
  free(sql);
  free(q);
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
    char *key = ferry_asprintf("rec:%s", table);
    json_t *slot = json_pack("{s:s, s:s?}", "table", table, "form", form);
    json_object_set_new(t->plan, key, slot); /* borrowed by the request below, owned by t->plan */
    free(key);
    if (t->c->db && t->c->mysql) {
      const char *p[1] = {table};
      joget_jt_pg(t,
                  "SELECT count(*) > 0 FROM information_schema.tables WHERE table_schema = DATABASE() AND "
                  "table_name = $1",
                  1, p, take_rec_table_my, slot);
    } else if (t->c->db) {
      /* Joget's tables on PostgreSQL are lower case (Hibernate does not quote): a name from a MySQL source
         keeps the form's spelling */
      const char *p[2] = {table, rid};
      joget_jt_pg(t,
                  "SELECT CASE WHEN to_regclass(quote_ident(lower($1::text))) IS NULL THEN false ELSE "
                  "(xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM %I WHERE id = %L', "
                  "lower($1::text), $2::text), false, true, '')))[1]::text::int > 0 END",
                  2, p, take_rec_pg, slot);
    } else if (form) {
      char *a = joget_seg(t->tapp), *f = joget_seg(form), *k = joget_seg(rid);
      char *path = ferry_asprintf("data/form/load/%s/%s/%s", a, f, k);
      joget_jt_admin(t, "GET", path, NULL, take_rec_http, slot);
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
      joget_note(t,
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
  return ferry_strdup(b);
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
    char *when = json_is_integer(due) ? ms_text(json_integer_value(due)) : ferry_strdup(due_txt ? due_txt : "?");
    char *what = ferry_asprintf("the deadline of activity %s (due %s on the source) restarts on the target: its "
                                "clock starts again when the activity is re-created",
                                joget_str(a, "def_id"), when);
    joget_loss(t, json_pack("{s:s, s:s, s:s, s:s}", "kind", "deadline", "activity", joget_str(a, "def_id"), "due",
                            when, "what", what));
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
  char *slot = ferry_asprintf("def:%s", t->tdef);
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
      char *what = ferry_asprintf("join %s has %zu of %s arrivals; not carried (and_joins is report): on the "
                                  "target the join waits for branches that already arrived on the source",
                                  jid, k, nt);
      joget_loss(t, json_pack("{s:s, s:s, s:I, s:o, s:s}", "kind", "and_join", "join", jid, "arrivals",
                              (json_int_t)k, "branches", json_is_integer(n) ? json_incref(n) : json_null(), "what",
                              what));
      free(what);
    } else {
      char *txt = ferry_asprintf("re-create %zu arrival(s) at join %s (of %s)", k, jid, nt);
      joget_rep_push(t, "joins_to_carry", json_string(txt));
      free(txt);
    }
  }
  if (!json_is_true(json_object_get(extra, "joins_read")) &&
      (!json_is_object(nb) || json_object_size(nb) > 0)) {
    joget_loss(t, json_pack("{s:s, s:s}", "kind", "and_join", "what",
                            "arrivals at AND-joins were not read (the source has no dsn): if a branch of "
                            "this instance already reached an AND-join, the join waits for it forever on the "
                            "target"));
  }
  deadline_losses(t, t->src);
  const char *notify = joget_str(d, "notify");
  if (notify && json_array_size(json_object_get(t->src, "activities")) > 0) {
    char *acts = joget_defs_text(json_object_get(t->src, "activities"));
    char *what = ferry_asprintf("the app's %s notifies the assignees of the re-created activities %s again", notify,
                                acts);
    joget_loss(t, json_pack("{s:s, s:s, s:s}", "kind", "notification", "plugin", notify, "what", what));
    free(acts);
    free(what);
  }
  if (t->mode == FERRY_MODE_PLAN && json_object_size(json_object_get(d, "tools")) > 0) {
    ferry_buf sb = {0};
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(d, "tools"), k, v)
      ferry_buf_addf(&sb, "%s%s (%s)", sb.len ? ", " : "", k, json_string_value(v));
    char *list = ferry_buf_steal(&sb);
    char *what = ferry_asprintf("tools of %s run again if the start path or a re-created activity reaches them: %s",
                                t->tdef, list);
    joget_loss(t, json_pack("{s:s, s:s}", "kind", "tool", "what", what));
    free(list);
    free(what);
  }
}

static void plan_eval(jt *t) {
  const char *pk;
  json_t *val;
  json_object_foreach(t->plan, pk, val)
    if (json_integer_value(json_object_get(val, "code")) == FERRY_ETRANSIENT) {
      joget_jt_fail(t, FERRY_ETRANSIENT, "%s", joget_str(val, "error"));
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
    char *slot = ferry_asprintf("dir:%s", u);
    json_t *d = json_object_get(t->plan, slot);
    free(slot);
    if (d) {
      if (joget_str(d, "error"))
        reason(t, "checking user %s in dir_user failed: %s", u, joget_str(d, "error"));
      else if (!json_is_true(d))
        reason(t, "user %s does not exist (or is inactive) on the target: copy the users first", u);
      continue;
    }
    slot = ferry_asprintf("user:%s", u);
    d = json_object_get(t->plan, slot);
    free(slot);
    if (d) {
      if (joget_str(d, "error")) reason(t, "user %s: %s", u, joget_str(d, "error"));
      continue;
    }
    if (strcmp(u, req ? req : "")) joget_note(t, "user %s not checked (needs dsn or start_as master)", u);
  }
  json_decref(users);
  if (t->mode == FERRY_MODE_RUN) {
    if (json_array_size(t->reasons) > 0) {
      json_object_set(t->rep, "reasons", t->reasons);
      char *txt = joget_join(t->reasons, "; ");
      joget_jt_fail(t, FERRY_EINVAL, "not started (nothing was written): %s", txt);
      free(txt);
      return;
    }
    joget_run_checked(t);
    return;
  }
  /* what would be done */
  char *acts = joget_defs_text(json_object_get(t->src, "activities"));
  ferry_buf wb = {0};
  ferry_buf_addf(&wb, "start %s as %s with record %s, ", t->tdef, req ? req : "?", joget_str(t->src, "record_id"));
  size_t wi;
  json_t *wv;
  json_array_foreach(json_object_get(t->rep, "joins_to_carry"), wi, wv)
    ferry_buf_addf(&wb, "%s, ", json_string_value(wv));
  ferry_buf_addf(&wb, "then activities %s", acts);
  if (json_array_size(json_object_get(t->rep, "losses")) > 0) {
    ferry_buf_add(&wb, "; with loss: ");
    json_array_foreach(json_object_get(t->rep, "losses"), wi, wv)
      ferry_buf_addf(&wb, "%s%s", wi ? "; " : "", joget_str(wv, "what"));
  }
  char *would = ferry_buf_steal(&wb);
  json_object_set_new(t->rep, "would", json_string(would));
  free(would);
  free(acts);
  if (json_array_size(t->reasons) > 0) {
    json_object_set(t->rep, "reasons", t->reasons);
    char *txt = joget_join(t->reasons, "; ");
    joget_jt_fail(t, FERRY_EBLOCKED, "%s", txt);
    free(txt);
    return;
  }
  joget_jt_done(t);
}

static void plan_lookups(jt *t) {
  plan_child_defs(t, t->src, 1);
  record_lookups(t);
  const char *req = joget_str(t->src, "requester");
  joget_jt_lookup(t, &t->k->users, req, joget_user_check_start, "requester", 1);
  json_t *users = json_object();
  collect_users(t->src, users);
  json_object_set_new(users, req, json_true());
  const char *u;
  json_t *x;
  json_object_foreach(users, u, x) {
    if (t->c->db) {
      char *slot = ferry_asprintf("dir:%s", u);
      joget_jt_lookup(t, &t->k->dirusers, u, joget_diruser_start, slot, 1);
      free(slot);
    } else if (t->c->start_mode == JOGET_START_MASTER && strcmp(u, req)) {
      char *slot = ferry_asprintf("user:%s", u);
      joget_jt_lookup(t, &t->k->users, u, joget_user_check_start, slot, 1);
      free(slot);
    }
  }
  json_decref(users);
  joget_jt_then(t, plan_eval);
}

void joget_plan_latest(jt *t) {
  joget_collect_child_latest(t, t->src);
  joget_jt_then(t, plan_lookups);
}

void joget_plan_item(jt *t) {
  const char *rid = joget_str(t->src, "record_id");
  if (!rid || !*rid || joget_bad_ident(rid))
    reason(t,
           "record id \"%s\" cannot be passed to Joget: ids with a space, '(', ')', ';' or '/*' make every "
           "workflow call fail with HTTP 500 (docs/joget-facts.md 4.4); rename the record (and its form rows and "
           "files) on the source first",
           rid ? rid : "");
  if (!joget_str(t->src, "requester")) {
    joget_jt_fail(t, FERRY_EBLOCKED, "the item has no requester");
    return;
  }
  joget_resolve_def(t, joget_plan_latest);
}
