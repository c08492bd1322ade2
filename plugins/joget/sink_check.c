/* joget sink: reading a target instance (open activities, variables), comparing a scope with the
 * source (the check after RUN, and VERIFY). */
#define _GNU_SOURCE
#include "sink.h"

/* ---- reading a target instance: open activities, variables --------------------------------------------- */
static void take_act_view(jt *t, json_t *doc, void *ud) {
  json_t *act = ud;
  if (!doc) {
    json_object_set_new(act, "_gone", json_true());
    return;
  }
  json_object_set_new(act, "def_id",
                      json_string(joget_str(doc, "activityDefId") ? joget_str(doc, "activityDefId") : ""));
  joget_act_view(act, doc);
}

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
    char *path = ferry_asprintf("monitoring/activity/view/%s", aid);
    joget_jt_admin(t, "GET", path, NULL, take_act_view, act);
    free(path);
    free(aid);
  }
  int64_t total = json_integer_value(json_object_get(doc, "total"));
  if (total > pg->start + 100 && json_array_size(rows) > 0)
    joget_read_acts_page(t, pg->pid, pg->start + 100, take_act_list);
  json_decref(rows);
}

/* Replaces t->tacts with the open activities of `pid` (confirm with activity/list?rows=100 + view). */
static void read_acts(jt *t, const char *pid) {
  json_decref(t->tacts);
  t->tacts = json_array();
  joget_read_acts_page(t, pid, 0, take_act_list);
}

static void take_acts_pg(jt *t, const joget_res *res, void *ud) {
  for (int i = 0; i < joget_res_n(res); i++) {
    json_t *as = json_loads(joget_res_val(res, i, 3), 0, NULL);
    json_t *act =
        json_pack("{s:s, s:s, s:s, s:o, s:o}", "def_id", joget_res_val(res, i, 1), "id", joget_res_val(res, i, 0),
                  "state", joget_res_val(res, i, 2), "assignees", json_is_array(as) ? as : json_array(),
                  "accepted_by", joget_res_null(res, i, 4) ? json_null() : json_string(joget_res_val(res, i, 4)));
    if (as && !json_is_array(as)) json_decref(as);
    json_array_append_new(t->tacts, act);
  }
}

/* Open activities of `pid` into t->tacts: from the tables with dsn (one query), else as read_acts. */
void joget_read_scope_acts(jt *t, const char *pid) {
  if (!t->c->db) {
    read_acts(t, pid);
    return;
  }
  json_decref(t->tacts);
  t->tacts = json_array();
  const char *p[1] = {pid};
  joget_jt_pg(
      t,
      JOGET_SQL(t->c,
                "SELECT a.id, a.activitydefinitionid, s.name, COALESCE((SELECT json_agg(x.resourceid ORDER BY "
                "x.cnt) FROM shkassignmentstable x WHERE x.activityid = a.id AND x.isvalid), '[]'), (SELECT "
                "x.resourceid FROM shkassignmentstable x WHERE x.activityid = a.id AND x.isvalid AND x.isaccepted "
                "ORDER BY x.cnt LIMIT 1) FROM shkactivities a JOIN shkactivitystates s ON s.oid = a.state WHERE "
                "a.processid = $1 AND s.name LIKE 'open.%' ORDER BY a.activated, a.id",
                /* MySQL's JSON_ARRAYAGG has no ORDER BY: a JSON array from GROUP_CONCAT, its length limit raised
                   by the hint (MySQL 8.0.3+; MariaDB reads it as a comment, its default is 1 MiB) */
                "SELECT /*+ SET_VAR(group_concat_max_len = 16777216) */ a.id, a.activitydefinitionid, s.name, "
                "COALESCE((SELECT CONCAT('[', GROUP_CONCAT(JSON_QUOTE(x.resourceid) ORDER BY x.cnt SEPARATOR "
                "','), ']') FROM SHKAssignmentsTable x WHERE x.activityid = a.id AND x.isvalid), '[]'), (SELECT "
                "x.resourceid FROM SHKAssignmentsTable x WHERE x.activityid = a.id AND x.isvalid AND x.isaccepted "
                "ORDER BY x.cnt LIMIT 1) FROM SHKActivities a JOIN SHKActivityStates s ON s.oid = a.state WHERE "
                "a.processid = $1 AND s.name LIKE 'open.%' ORDER BY a.activated, a.id"),
      1, p, take_acts_pg, NULL);
}

void joget_tidy_acts(jt *t) {
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
  char *path = ferry_asprintf("workflow/variable/list/%s", s);
  joget_jt_admin(t, "GET", path, NULL, take_vars, NULL);
  free(path);
  free(s);
}

/* Variables from the tables (dsn): the value column that is set gives the text the JSON API would print;
 * doubles are compared as numbers. Dates, XML and blobs (and variables the source has but the rows lack:
 * Shark may keep them elsewhere) make the caller read them over HTTP instead (workflow/variable/list). */

static void take_vars_pg(jt *t, const joget_res *res, void *ud) {
  for (int i = 0; i < joget_res_n(res); i++) {
    const char *name = joget_res_val(res, i, 0);
    if (json_object_get(t->tvars, name)) continue; /* first part only */
    if (joget_res_true(res, i, 5)) t->vars_http = 1;
    const char *v = "";
    if (!joget_res_null(res, i, 1))
      v = joget_res_val(res, i, 1);
    else if (!joget_res_null(res, i, 2))
      v = joget_res_val(res, i, 2);
    else if (!joget_res_null(res, i, 3)) {
      v = joget_res_val(res, i, 3);
      json_object_set_new(t->tdbl, name, json_true());
    } else if (!joget_res_null(res, i, 4))
      v = joget_res_true(res, i, 4) ? "true" : "false";
    json_object_set_new(t->tvars, name, json_string(v));
  }
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(joget_scope_src(t), "variables"), k, v)
    if (!json_object_get(t->tvars, k)) t->vars_http = 1;
}

void joget_read_scope_vars(jt *t, const char *pid) {
  if (!t->c->db) {
    read_vars(t, pid);
    return;
  }
  json_decref(t->tvars);
  t->tvars = json_object();
  json_decref(t->tdbl);
  t->tdbl = json_object();
  t->vars_http = 0;
  const char *p[1] = {pid};
  joget_jt_pg(t,
              JOGET_SQL(t->c,
                        "SELECT d.variabledefinitionid, d.variablevaluevchar, d.variablevaluelong, "
                        "d.variablevaluedbl, d.variablevaluebool, (d.variablevaluedate IS NOT NULL OR "
                        "d.variablevalue IS NOT NULL OR d.variablevaluexml IS NOT NULL) FROM shkprocessdata d JOIN "
                        "shkprocesses p ON p.oid = d.process WHERE p.id = $1 ORDER BY d.variabledefinitionid, "
                        "d.ordno",
                        "SELECT d.variabledefinitionid, d.variablevaluevchar, d.variablevaluelong, "
                        "d.variablevaluedbl, d.variablevaluebool, (d.variablevaluedate IS NOT NULL OR "
                        "d.variablevalue IS NOT NULL OR d.variablevaluexml IS NOT NULL) FROM SHKProcessData d JOIN "
                        "SHKProcesses p ON p.oid = d.process WHERE p.id = $1 ORDER BY d.variabledefinitionid, "
                        "d.ordno"),
              1, p, take_vars_pg, NULL);
}

/* Continuation after read_scope_vars: falls back to HTTP when needed, then runs t->after_vars. */
static void vars_fix(jt *t) {
  if (t->vars_http) {
    t->vars_http = 0;
    read_vars(t, joget_str(json_array_get(t->scopes, t->si), "pid"));
    joget_jt_then(t, t->after_vars);
    return;
  }
  t->after_vars(t);
}

void joget_then_vars(jt *t, void (*next)(jt *)) {
  t->after_vars = next;
  joget_jt_then(t, vars_fix);
}

int joget_tv_same(jt *t, const char *name, const char *sv) {
  const char *tv = joget_str(t->tvars, name);
  if (!tv) return 0;
  if (!strcmp(tv, sv)) return 1;
  if (!json_object_get(t->tdbl, name) || !*sv) return 0;
  char *e1, *e2;
  double a = strtod(sv, &e1), b = strtod(tv, &e2);
  return !*e1 && !*e2 && a == b;
}

/* ---- comparing a scope (check and verify) ------------------------------------------------------------- */
int joget_str_in(json_t *arr, const char *s) {
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v)
    if (json_is_string(v) && !strcmp(json_string_value(v), s)) return 1;
  return 0;
}

/* Pairs source activity i with a target activity of the same definition (in order). Returns a new array:
 * index of the target activity for each source activity, or -1. */
json_t *joget_pair_acts(json_t *sacts, json_t *tacts) {
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
    if (!joget_str_in(b, json_string_value(v))) return 0;
  json_array_foreach(b, i, v)
    if (!joget_str_in(a, json_string_value(v))) return 0;
  return 1;
}

char *joget_defs_text(json_t *acts) {
  ferry_buf sb = {0};
  ferry_buf_add(&sb, "[");
  size_t i;
  json_t *a;
  json_array_foreach(acts, i, a)
    ferry_buf_addf(&sb, "%s%s", i ? ", " : "", joget_str(a, "def_id") ? joget_str(a, "def_id") : "?");
  ferry_buf_add(&sb, "]");
  return ferry_buf_steal(&sb);
}

/* Appends differences between the source body and the target's activities/variables to t->diffs. */
void joget_compare_scope(jt *t, json_t *sbody, const char *pid) {
  json_t *sacts = json_object_get(sbody, "activities");
  json_t *pairs = joget_pair_acts(sacts, t->tacts);
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
        ferry_log(t->c->ins, FERRY_LOG_WARN, "instance %s: mapping activity %s: %s", joget_item_id(t),
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
    char *a = joget_defs_text(sacts), *b = joget_defs_text(t->tacts);
    json_array_append_new(t->diffs,
                          json_sprintf("%s: open activities %s on the target, %s on the source", pid, b, a));
    free(a);
    free(b);
  }
  json_decref(pairs);
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(sbody, "variables"), k, v) {
    char *sv = joget_var_text(v);
    const char *tv = joget_str(t->tvars, k);
    if (sv && *sv && !joget_tv_same(t, k, sv))
      json_array_append_new(t->diffs,
                            json_sprintf("%s variable %s: \"%s\" on the target, \"%s\" on the source", pid, k,
                                         tv ? tv : "(unset)", sv));
    free(sv);
  }
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

void joget_verify_item(jt *t) {
  const char *pid = joget_str(t->st, "pid");
  if (!pid) {
    joget_jt_fail(t, FERRY_EMISMATCH, "the journal holds no target instance for it");
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
  joget_jt_admin(t, "GET", "console/monitor/running/list", params, take_verify_record, NULL);
  t->si = 0;
  joget_jt_then(t, joget_check_next);
}
