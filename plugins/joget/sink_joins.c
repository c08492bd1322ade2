/* joget sink: RUN: AND-join arrivals of a scope (and_joins: carry). */
#define _GNU_SOURCE
#include "sink.h"

/* -- AND-joins: re-create the arrivals the source's join counts (and_joins: carry) --
 * For each arrival the source's SHKAndJoinTable holds (the source reads it with dsn) that the target's join
 * does not count yet: make the arrived branch's activity open on the target (it usually is: the start path
 * ran the AND split; else monitoring/activity/start), give it to its original performer (reassign) and
 * complete it as that user (workflow/assignment/complete), so that the target's join counts the same
 * arrivals and fires when the open branches complete, as it would have on the source. What the target's
 * join already counts is read from its tables (dsn) or, over HTTP, from the completed activities of the
 * instance, so that a resumed run never completes an arrival twice. */
static void join_next(jt *t);

static void take_tarrived_pg(jt *t, const joget_res *res, void *ud) {
  for (int i = 0; i < joget_res_n(res); i++) {
    char *key = ferry_asprintf("%s|%s", joget_res_val(res, i, 0), joget_res_val(res, i, 1));
    json_object_set_new(t->tarrived, key, json_integer(json_integer_value(json_object_get(t->tarrived, key)) + 1));
    free(key);
  }
}

/* HTTP: completed activities of the instance; the definition id is the part of the activity id after
 * "<process id>_" (Joget's activity ids are <counter>_<process id>_<activity definition id>). */
static void take_closed(jt *t, json_t *doc, void *ud) {
  acts_pg *pg = ud;
  json_t *rows = joget_list(doc, "data");
  size_t i;
  json_t *r;
  char *mark = ferry_asprintf("_%s_", pg->pid);
  json_array_foreach(rows, i, r) {
    const char *st = joget_str(r, "state"), *id = joget_str(r, "id");
    if (!id || !st || strcmp(st, "closed.completed")) continue;
    const char *m = strstr(id, mark);
    if (!m) continue;
    char *key = ferry_asprintf("*|%s", m + strlen(mark));
    json_object_set_new(t->tarrived, key, json_integer(json_integer_value(json_object_get(t->tarrived, key)) + 1));
    free(key);
  }
  free(mark);
  int64_t total = json_integer_value(json_object_get(doc, "total"));
  if (total > pg->start + 100 && json_array_size(rows) > 0)
    joget_read_acts_page(t, pg->pid, pg->start + 100, take_closed);
  json_decref(rows);
}

static void joins_planned(jt *t) {
  json_t *joins = json_object_get(json_object_get(joget_scope_src(t), "extra"), "joins");
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
      char *key = ferry_asprintf("%s|%s", jid, d);
      char *any = ferry_asprintf("*|%s", d);
      int64_t had = json_integer_value(json_object_get(t->tarrived, t->c->db ? key : any));
      int64_t n = json_integer_value(json_object_get(seen, key)) + 1;
      json_object_set_new(seen, key, json_integer(n));
      if (n > had)
        json_array_append_new(t->jarr, json_pack("{s:s, s:s, s:s}", "join", jid, "def_id", d, "performer",
                                                 joget_str(a, "performer") ? joget_str(a, "performer") : ""));
      else
        joget_rep_push(t, "joins_carried",
                       json_pack("{s:s, s:s, s:s, s:b}", "join", jid, "activity", d, "performer",
                           joget_str(a, "performer") ? joget_str(a, "performer") : "", "already", 1));
      free(key);
      free(any);
    }
  }
  json_decref(seen);
  if (json_array_size(t->jarr) == 0) {
    joget_scope_acts_read(t);
    return;
  }
  join_next(t);
}

void joget_scope_joins(jt *t) {
  json_t *joins = json_object_get(json_object_get(joget_scope_src(t), "extra"), "joins");
  if (t->c->joins_report || json_array_size(joins) == 0) {
    joget_scope_acts_read(t);
    return;
  }
  json_decref(t->tarrived);
  t->tarrived = json_object();
  if (t->c->db) {
    const char *p[1] = {joget_scope_pid(t)};
    joget_jt_pg(t,
                JOGET_SQL(t->c,
                          "SELECT j.activitydefinitionid, a.activitydefinitionid FROM shkandjointable j JOIN "
                          "shkprocesses p ON p.oid = j.process JOIN shkactivities a ON a.oid = j.activity WHERE "
                          "p.id = $1",
                          "SELECT j.activitydefinitionid, a.activitydefinitionid FROM SHKAndJoinTable j JOIN "
                          "SHKProcesses p ON p.oid = j.process JOIN SHKActivities a ON a.oid = j.activity WHERE "
                          "p.id = $1"),
                1, p, take_tarrived_pg, NULL);
  } else {
    joget_read_acts_page(t, joget_scope_pid(t), 0, take_closed);
  }
  joget_jt_then(t, joins_planned);
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
  joget_rep_push(t, "joins_carried",
                 json_pack("{s:s, s:s, s:s}", "join", joget_str(arr, "join"), "activity", joget_str(arr, "def_id"),
                     "performer", joget_str(arr, "performer")));
  t->ji++;
  t->vars_stale = 1;
  t->dirty = 1;
  joget_read_scope_acts(t, joget_scope_pid(t));
  joget_jt_then(t, join_next);
}

static void join_complete(jt *t) {
  joget_tidy_acts(t);
  json_t *arr = json_array_get(t->jarr, t->ji);
  const char *d = joget_str(arr, "def_id");
  const char *who = joget_str(arr, "performer");
  json_t *act = open_act(t, d);
  if (!act) {
    joget_jt_fail(t, FERRY_ECONFLICT,
                  "re-creating the arrival of %s at join %s: the activity is not open on target instance %s after "
                  "reassigning it",
                  d, joget_str(arr, "join"), joget_scope_pid(t));
    return;
  }
  joget_ident id;
  char *label = NULL;
  if (*who) {
    char *key = ferry_asprintf("hash:%s", who);
    joget_user_ident_from(t->c, who, json_string_value(json_object_get(t->plan, key)), &id, &label);
    free(key);
  } else {
    joget_admin_ident(t->c, &id);
  }
  if (joget_intent(t, "join-arrival") < 0) {
    free(label);
    return;
  }
  char *seg = joget_seg(joget_str(act, "id"));
  char *path = ferry_asprintf("workflow/assignment/complete/%s", seg);
  joget_jt_req(t, "POST", path, NULL, &id, NULL, NULL);
  free(path);
  free(seg);
  free(label);
  joget_jt_then(t, join_done);
}

static void join_reassigned(jt *t) {
  joget_read_scope_acts(t, joget_scope_pid(t)); /* the new assignee, and the activity id (unchanged) */
  joget_jt_then(t, join_complete);
}

static void join_assign(jt *t) {
  joget_tidy_acts(t);
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
  if (joget_str_in(as, who)) {
    join_complete(t);
    return;
  }
  if (json_array_size(as) == 0) {
    joget_jt_fail(t, FERRY_ECONFLICT,
                  "re-creating the arrival of %s at join %s on target instance %s: the activity has no assignee to "
                  "hand to %s",
                  d, joget_str(arr, "join"), joget_scope_pid(t), who);
    return;
  }
  if (joget_intent(t, "join-arrival") < 0) return;
  const char *params[] = {"activityId", joget_str(act, "id"), "username", who, "replaceUser",
                          json_string_value(json_array_get(as, 0)), NULL};
  joget_jt_admin(t, "POST", "monitoring/activity/reassign", params, NULL, NULL);
  joget_jt_then(t, join_reassigned);
}

static void join_started(jt *t) {
  joget_read_scope_acts(t, joget_scope_pid(t));
  joget_jt_then(t, join_assign);
}

static void join_next(jt *t) {
  joget_tidy_acts(t);
  if (t->ji >= json_array_size(t->jarr)) {
    /* the activities as they are now (the open branches) are what the usual convergence works on */
    joget_scope_acts_read(t);
    return;
  }
  json_t *arr = json_array_get(t->jarr, t->ji);
  const char *d = joget_str(arr, "def_id");
  const char *who = joget_str(arr, "performer");
  if (*who && t->c->start_mode == JOGET_START_HASH) {
    char *slot = ferry_asprintf("hash:%s", who);
    if (!json_object_get(t->plan, slot)) joget_jt_lookup(t, &t->k->hashes, who, joget_hash_start, slot, 0);
    free(slot);
  }
  if (open_act(t, d)) {
    joget_jt_then(t, join_assign);
    return;
  }
  if (joget_intent(t, "join-arrival") < 0) return;
  char *p = joget_seg(joget_scope_pid(t)), *dd = joget_seg(d);
  char *path = ferry_asprintf("monitoring/activity/start/%s/%s", p, dd);
  const char *params[] = {"abortCurrent", "false", NULL};
  json_decref(t->jcall);
  t->jcall = json_pack("{s:s}", "def", d); /* read by take_act_start */
  joget_jt_admin(t, "POST", path, params, joget_take_act_start, t->jcall);
  free(path);
  free(p);
  free(dd);
  joget_jt_then(t, join_started);
}
