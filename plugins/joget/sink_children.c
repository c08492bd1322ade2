/* joget sink: RUN: the sub-flow children of a scope (find, abort stale duplicates, map). */
#define _GNU_SOURCE
#include "sink.h"

/* -- sub-flow children of the scope -- */
static void children_matched(jt *t);

static void take_children_pg(jt *t, const joget_res *res, void *ud) {
  for (int i = 0; i < joget_res_n(res); i++)
    json_array_append_new(t->cands, json_pack("{s:s, s:s, s:s?, s:b}", "id", joget_res_val(res, i, 0), "def",
                                              joget_res_val(res, i, 1), "act",
                                              joget_res_null(res, i, 2) ? NULL : joget_res_val(res, i, 2),
                                              "act_open", joget_res_true(res, i, 3)));
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
    char *path = ferry_asprintf("monitoring/process/view/%s", seg);
    joget_jt_admin(t, "GET", path, NULL, take_child_view, c);
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

void joget_scope_children(jt *t) {
  if (!has_children(joget_scope_src(t))) {
    joget_scope_reassign(t);
    return;
  }
  json_decref(t->cands);
  t->cands = json_array();
  if (t->c->db) {
    const char *p[1] = {joget_scope_pid(t)};
    joget_jt_pg(t,
                JOGET_SQL(t->c,
                          "SELECT c.id, c.pdefname, c.activityrequesterid, COALESCE(a.state IN (1000001, 1000003), "
                          "false) FROM shkprocesses c LEFT JOIN shkactivities a ON a.id = c.activityrequesterid "
                          "WHERE c.activityrequesterprocessid = $1 AND c.state IN (1000000, 1000002, 1000004) "
                          "ORDER BY c.created, c.id",
                          "SELECT c.id, c.pdefname, c.activityrequesterid, COALESCE(a.state IN (1000001, 1000003), "
                          "false) FROM SHKProcesses c LEFT JOIN SHKActivities a ON a.id = c.activityrequesterid "
                          "WHERE c.activityrequesterprocessid = $1 AND c.state IN (1000000, 1000002, 1000004) "
                          "ORDER BY c.created, c.id"),
                1, p, take_children_pg, NULL);
  } else {
    const char *params[] = {
        "recordId", joget_str(t->src, "record_id"), "sort", "id", "desc", "false", "rows", "200", NULL};
    joget_jt_admin(t, "GET", "console/monitor/running/list", params, take_children_http, NULL);
  }
  joget_jt_then(t, children_matched);
}

static long id_counter(const char *id) { return id ? atol(id) : 0; }

static void children_aborted(jt *t) { joget_scope_reassign(t); }

static void children_matched(jt *t) {
  /* match each source child (by target definition) to a running target child; the newest first when
     restarting a sub-flow activity left an older child behind (HTTP: the highest id counter; dsn: the child
     whose calling activity is still open) */
  json_t *subs = json_object_get(json_object_get(joget_scope_src(t), "extra"), "subflows");
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
      char *tdef = joget_map_def(t, joget_str(sch, "definition"), &needs_latest);
      if (!tdef) tdef = ferry_strdup(joget_str(sch, "definition"));
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
        if (joget_known_elsewhere(t, cid, joget_str(sch, "id"))) continue;
        if (!best || id_counter(cid) > id_counter(joget_str(best, "id"))) best = c;
      }
      free(tdef);
      if (!best) {
        joget_jt_fail(
            t, FERRY_ECONFLICT,
            "no running sub-flow instance of %s under target instance %s (the sub-flow activity %s should "
            "have created it)",
            joget_str(sch, "definition"), joget_scope_pid(t), joget_str(sf, "activity_def_id"));
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
        joget_jt_fail_err(t, &e);
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
    if (!t->c->db || json_is_true(json_object_get(c, "act_open"))) {
      if (t->c->db)
        joget_note(t, "target instance %s: sub-flow instance %s is not matched to a source child",
                   joget_scope_pid(t), cid);
      continue;
    }
    if (!aborts && joget_intent(t, "abort-stale-subflow") < 0) {
      json_decref(taken);
      return;
    }
    aborts++;
    joget_rep_push(t, "aborted_stale_subflows", json_string(cid));
    char *seg = joget_seg(cid);
    char *path = ferry_asprintf("workflow/process/abort/%s", seg);
    joget_jt_admin(t, "POST", path, NULL, NULL, NULL);
    free(path);
    free(seg);
  }
  json_decref(taken);
  joget_jt_then(t, children_aborted);
}
