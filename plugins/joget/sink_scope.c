/* joget sink: RUN: the scopes (the instance, then each sub-flow child): open activities, then
 * variables (set what differs from the source). */
#define _GNU_SOURCE
#include "sink.h"

/* ---- RUN: scopes (the instance, then each sub-flow child) -----------------------------------------------
 */
static void scope_next(jt *t);

json_t *joget_scope_src(jt *t) { return json_object_get(json_array_get(t->scopes, t->si), "src"); }
const char *joget_scope_pid(jt *t) { return joget_str(json_array_get(t->scopes, t->si), "pid"); }

static json_t *scope_state(jt *t) {
  json_t *ss = json_object_get(t->st, "scopes");
  if (!ss) {
    ss = json_object();
    json_object_set_new(t->st, "scopes", ss);
  }
  json_t *s = json_object_get(ss, joget_scope_pid(t));
  if (!s) {
    s = json_object();
    json_object_set_new(ss, joget_scope_pid(t), s);
  }
  return s;
}

void joget_scopes_begin(jt *t) {
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
  json_t *subs = json_object_get(json_object_get(joget_scope_src(t), "extra"), "subflows");
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
    joget_finish_run(t);
    return;
  }
  if (json_is_true(json_object_get(scope_state(t), "done")) && push_recorded_children(t)) {
    t->si++;
    scope_next(t);
    return;
  }
  t->dirty = 0;
  t->vars_stale = 0;
  joget_read_scope_acts(t, joget_scope_pid(t));
  /* in parallel: used by the variables step unless engine logic runs first */
  joget_read_scope_vars(t, joget_scope_pid(t));
  joget_then_vars(t, joget_scope_joins);
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

json_t *joget_minus(json_t *a, json_t *b) {
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
void joget_take_act_start(jt *t, json_t *doc, void *ud) {
  json_t *call = ud;
  json_t *res = json_object_get(doc, "result");
  if (!json_is_true(res) && !(json_is_string(res) && !strcmp(json_string_value(res), "true")))
    ferry_error_set(
        &t->err, FERRY_EINVAL,
        "monitoring/activity/start/%s/%s answered result:false: the activity does not exist in the "
        "target definition %s, or the engine refused it (see the server log; `ferry plan` checks "
        "activity ids)",
        joget_scope_pid(t), joget_str(call, "def"), t->tdef);
}

static void after_call(jt *t) {
  t->acts_called++;
  t->vars_stale = 1;
  joget_test_crash("activity");
  t->ci++;
  scope_call_next(t);
}

static void scope_confirmed(jt *t) {
  joget_tidy_acts(t);
  json_t *s = defs_of(json_object_get(joget_scope_src(t), "activities"));
  json_t *g = defs_of(t->tacts);
  json_t *m1 = joget_minus(s, g), *m2 = joget_minus(g, s);
  int ok = json_array_size(m1) == 0 && json_array_size(m2) == 0;
  json_decref(m1);
  json_decref(m2);
  json_decref(s);
  json_decref(g);
  if (!ok) {
    char *a = joget_defs_text(json_object_get(joget_scope_src(t), "activities")), *b = joget_defs_text(t->tacts);
    joget_jt_fail(
        t, FERRY_ECONFLICT,
        "after activity/start the target instance %s holds the open activities %s, the source %s (a tool, "
        "route or sub-flow on the way may have moved it on; see the server log)",
        joget_scope_pid(t), b, a);
    free(a);
    free(b);
    return;
  }
  joget_scope_children(t);
}

static void scope_call_next(jt *t) {
  if (t->ci >= json_array_size(t->calls)) {
    /* confirm: activity/list?rows=100 + view over HTTP, or the tables with dsn */
    joget_read_scope_acts(t, joget_scope_pid(t));
    joget_jt_then(t, scope_confirmed);
    return;
  }
  json_t *call = json_array_get(t->calls, t->ci);
  json_t *ss = scope_state(t);
  json_object_set_new(ss, "acts", json_string("begun"));
  json_object_set(ss, "call", call);
  if (joget_intent(t, "activity") < 0) return;
  char *p = joget_seg(joget_scope_pid(t)), *d = joget_seg(joget_str(call, "def"));
  int abort_only = joget_str(call, "kind") && !strcmp(joget_str(call, "kind"), "abort");
  char *path = ferry_asprintf("monitoring/activity/%s/%s/%s", abort_only ? "abort" : "start", p, d);
  const char *params[] = {"abortCurrent", json_is_true(json_object_get(call, "abort")) ? "true" : "false",
                          NULL};
  joget_jt_admin(t, "POST", path, abort_only ? NULL : params, abort_only ? NULL : joget_take_act_start, call);
  free(path);
  free(p);
  free(d);
  joget_jt_then(t, after_call);
}

void joget_scope_acts_read(jt *t) {
  joget_tidy_acts(t);
  json_t *sacts = json_object_get(joget_scope_src(t), "activities");
  json_t *S = defs_of(sacts), *T = defs_of(t->tacts);
  json_t *extras = joget_minus(T, S), *missing = joget_minus(S, T);
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
    joget_scope_children(t);
    return;
  }
  scope_call_next(t);
}

/* -- variables: set what differs from the source -- */
static void scope_done(jt *t) {
  json_object_set_new(scope_state(t), "done", json_true());
  if (!t->dirty) { /* nothing written since the reads: they are the check */
    joget_compare_scope(t, joget_scope_src(t), joget_scope_pid(t));
    json_object_set_new(t->checked, joget_scope_pid(t), json_true());
  }
  t->si++;
  scope_next(t);
}

static void vars_read(jt *t) {
  json_t *svars = json_object_get(joget_scope_src(t), "variables");
  json_t *sets = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(svars, k, v) {
    char *sv = joget_var_text(v);
    const char *tv = joget_str(t->tvars, k);
    if (sv && (*sv || (tv && *tv)) && !joget_tv_same(t, k, sv))
      json_array_append_new(sets, json_pack("{s:s, s:s}", "name", k, "value", sv));
    free(sv);
  }
  if (json_array_size(sets) == 0) {
    json_decref(sets);
    scope_done(t);
    return;
  }
  if (joget_intent(t, "variables") < 0) {
    json_decref(sets);
    return;
  }
  t->dirty = 1;
  char *p = joget_seg(joget_scope_pid(t));
  size_t i;
  json_t *x;
  json_array_foreach(sets, i, x) {
    if (joget_bad_ident(joget_str(x, "name"))) {
      joget_note(t, "%s variable %s: its name cannot be passed to Joget (SQL filter): not set", joget_scope_pid(t),
                 joget_str(x, "name"));
      continue;
    }
    char *n = joget_seg(joget_str(x, "name"));
    char *path = ferry_asprintf("monitoring/process/variable/%s/%s", p, n);
    const char *params[] = {"value", joget_str(x, "value"), NULL};
    joget_jt_admin(t, "POST", path, params, NULL, NULL);
    joget_rep_push(t, "variables_set",
                   json_pack("{s:s, s:s}", "process", joget_scope_pid(t), "name", joget_str(x, "name")));
    free(path);
    free(n);
  }
  free(p);
  json_decref(sets);
  joget_jt_then(t, scope_done);
}

void joget_scope_vars(jt *t) {
  if (!t->vars_stale && t->tvars) {
    vars_read(t);
    return;
  }
  joget_read_scope_vars(t, joget_scope_pid(t));
  joget_then_vars(t, vars_read);
}
