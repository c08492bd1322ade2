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
 *
 * The sink's files: see sink.h.
 */
#define _GNU_SOURCE
#include "sink.h"

/* -- after_start, check, done -- */

static void check_scope_read(jt *t) {
  joget_tidy_acts(t);
  joget_compare_scope(t, joget_scope_src(t), joget_scope_pid(t));
  t->si++;
  joget_check_next(t);
}

void joget_check_next(jt *t) {
  while (t->si < json_array_size(t->scopes) && json_object_get(t->checked, joget_scope_pid(t))) t->si++;
  if (t->si < json_array_size(t->scopes)) {
    joget_read_scope_acts(t, joget_scope_pid(t));
    joget_read_scope_vars(t, joget_scope_pid(t));
    joget_then_vars(t, check_scope_read);
    return;
  }
  if (json_array_size(t->diffs) > 0) {
    json_object_set(t->rep, "differences", t->diffs);
    char *txt = joget_join(t->diffs, "; ");
    if (t->mode == FERRY_MODE_VERIFY)
      joget_jt_fail(t, FERRY_EMISMATCH, "the target differs from the source: %s", txt);
    else
      joget_jt_fail(t, FERRY_ECONFLICT,
                    "after migration the target differs from the source: %s (run again to retry; "
                    "see the report)",
                    txt);
    free(txt);
    return;
  }
  if (t->mode == FERRY_MODE_VERIFY) json_object_set_new(t->rep, "verify", json_string("equal"));
  joget_jt_done(t);
}

void joget_check_begin(jt *t) {
  if (t->mode == FERRY_MODE_RUN && !t->final_dup && json_is_integer(json_object_get(t->st, "intent_ms"))) {
    /* once more before done: a start the server ran late (after ferry gave up on its answer) shows now */
    t->final_dup = 1;
    char *key = ferry_asprintf("%s\n%s", t->tdef, joget_str(t->src, "record_id"));
    joget_lock_take(t, key, joget_resume_single); /* under the lock: another item's fresh start is no duplicate */
    free(key);
    return;
  }
  t->si = 0;
  joget_check_next(t);
}

static void on_after_start(void *arg, int status, const ferry_error *err) {
  jt *t = arg;
  if (status) {
    joget_jt_fail_hook(t, "after_start", status, err);
    return;
  }
  joget_test_crash("after_start");
  json_object_set_new(t->st, "after_start", json_true());
  if (t->acts_called) json_object_set_new(t->rep, "activity_calls", json_integer(t->acts_called));
  if (t->c->check)
    joget_check_begin(t);
  else
    joget_jt_done(t);
}

static void take_tools_ran(jt *t, const joget_res *res, void *ud) {
  for (int i = 0; i < joget_res_n(res); i++) {
    char *what = ferry_asprintf("tool %s (%s) ran again on the target while the instance was re-created",
                                joget_res_val(res, i, 0), joget_res_val(res, i, 1));
    joget_loss(t, json_pack("{s:s, s:s, s:s, s:s}", "kind", "tool", "activity", joget_res_val(res, i, 0), "plugin",
                            joget_res_val(res, i, 1), "what", what));
    free(what);
  }
}

static void run_hooks(jt *t);

void joget_finish_run(jt *t) {
  if (t->repair || json_is_true(json_object_get(t->st, "after_start"))) {
    on_after_start(t, 0, NULL);
    return;
  }
  if (t->c->db && !json_object_get(t->st, "tools_read")) {
    /* the tools the target ran for this instance (start path, started activities), named as losses */
    char *app, *ver, *proc;
    if (!joget_def_split(t->tdef, &app, &ver, &proc)) {
      const char *p[4] = {joget_str(t->st, "pid"), app, ver, proc};
      joget_jt_pg(t,
                  JOGET_SQL(t->c,
                            "SELECT a.activitydefinitionid, COALESCE(m.pluginname, '') FROM shkactivities a JOIN "
                            "app_package_activity_plugin m ON m.packageid = $2 AND m.packageversion::text = $3 AND "
                            "m.processdefid = $4 AND m.activitydefid = a.activitydefinitionid WHERE a.processid = "
                            "$1 AND a.state = 1000007 ORDER BY a.activated, a.id",
                            "SELECT a.activitydefinitionid, COALESCE(m.pluginname, '') FROM SHKActivities a JOIN "
                            "app_package_activity_plugin m ON m.packageid = $2 AND m.packageversion = $3 AND "
                            "m.processdefid = $4 AND m.activitydefid = a.activitydefinitionid WHERE a.processid = "
                            "$1 AND a.state = 1000007 ORDER BY a.activated, a.id"),
                  4, p, take_tools_ran, NULL);
      free(app);
      free(ver);
      free(proc);
    }
    json_object_set_new(t->st, "tools_read", json_true());
    joget_jt_then(t, run_hooks);
    return;
  }
  run_hooks(t);
}

static void run_hooks(jt *t) {
  if (joget_intent(t, "after_start") < 0) return;
  json_t *data = json_pack("{s:s, s:s, s:s}", "record_id", joget_str(t->src, "record_id"), "target_process_id",
                           joget_str(t->st, "pid"), "definition", t->tdef);
  ferry_fire(t->c->ins, t->task, "after_start", data, on_after_start, t);
  json_decref(data);
}

/* ---- RUN: entry -------------------------------------------------------------------------------------- */
void joget_collect_child_latest(jt *t, json_t *body) {
  json_t *subs = json_object_get(json_object_get(body, "extra"), "subflows");
  size_t i, j;
  json_t *sf, *ch;
  json_array_foreach(subs, i, sf)
    json_array_foreach(json_object_get(sf, "children"), j, ch) {
      int needs = 0;
      char *d = joget_map_def(t, joget_str(ch, "definition"), &needs);
      free(d);
      if (needs) {
        char *app, *ver, *proc;
        if (!joget_def_split(joget_str(ch, "definition"), &app, &ver, &proc)) {
          char *key = ferry_asprintf("%s#%s", app, proc);
          char *slot = ferry_asprintf("latest:%s", key);
          joget_jt_lookup(t, &t->k->latest, key, joget_latest_start, slot, t->mode == FERRY_MODE_PLAN);
          free(slot);
          free(key);
          free(app);
          free(ver);
          free(proc);
        }
      }
      joget_collect_child_latest(t, ch);
    }
}

static void run_locked(jt *t) {
  const char *step = ferry_task_step(t->task);
  if (step && (!strcmp(step, "start") || !strcmp(step, "started") || !strcmp(step, "abort-duplicate")) &&
      !json_is_string(json_object_get(t->st, "pid")))
    joget_reconcile_start(t);
  else
    joget_do_start(t);
}

void joget_run_checked(jt *t) {
  char *key = ferry_asprintf("%s\n%s", t->tdef, joget_str(t->src, "record_id"));
  joget_lock_take(t, key, run_locked);
  free(key);
}

void joget_resume_single(jt *t) { joget_cands_find(t, joget_single_check); }

static void run_def(jt *t) {
  const char *step = ferry_task_step(t->task);
  if (ferry_task_repair(t->task)) {
    /* verify found the target instance different: converge it again, never start a second one */
    if (!json_is_string(json_object_get(t->st, "pid"))) {
      joget_jt_fail(t, FERRY_EINVAL, "repair: the journal holds no target instance for it (run it normally)");
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
    joget_scopes_begin(t);
    return;
  }
  if (json_is_string(json_object_get(t->st, "pid")) && step &&
      (!strcmp(step, "started") || !strcmp(step, "abort-duplicate"))) {
    /* stopped right after the start was recorded: the duplicate check may not have run (or finished) */
    json_object_set_new(t->rep, "target_process_id", json_string(joget_str(t->st, "pid")));
    json_object_set_new(t->rep, "resumed_at", json_string(step));
    char *key = ferry_asprintf("%s\n%s", t->tdef, joget_str(t->src, "record_id"));
    joget_lock_take(t, key, joget_resume_single);
    free(key);
    return;
  }
  if (json_is_string(json_object_get(t->st, "pid"))) {
    json_object_set_new(t->rep, "target_process_id", json_string(joget_str(t->st, "pid")));
    json_object_set_new(t->rep, "resumed_at",
                        json_string(ferry_task_step(t->task) ? ferry_task_step(t->task) : ""));
    joget_scopes_begin(t);
    return;
  }
  /* before anything is written: the checks of plan (cached per definition and user) */
  joget_plan_latest(t);
}

void joget_run_item(jt *t) {
  const char *rid = joget_str(t->src, "record_id");
  if (!rid || !*rid || joget_bad_ident(rid)) {
    joget_jt_fail(t, FERRY_EINVAL,
                  "record id \"%s\" cannot be passed to Joget: ids with a space, '(', ')', ';' or '/*' make "
                  "every workflow call fail with HTTP 500 (docs/joget-facts.md 4.4); rename the record on "
                  "the source first",
                  rid ? rid : "");
    return;
  }
  if (!joget_str(t->src, "requester")) {
    joget_jt_fail(t, FERRY_EINVAL, "the item has no requester");
    return;
  }
  joget_resolve_def(t, run_def);
}

void joget_dispatch(jt *t) {
  if (t->mode == FERRY_MODE_PLAN)
    joget_plan_item(t);
  else if (t->mode == FERRY_MODE_VERIFY)
    joget_verify_item(t);
  else
    joget_run_item(t);
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
  joget_gate_enter(t);
}

static void snk_plan(ferry_instance *ins, ferry_task *task) {
  jt *t = jt_new(ins, task);
  joget_gate_enter(t); /* the admin check is part of the plan */
}

static void snk_verify(ferry_instance *ins, ferry_task *task) {
  jt *t = jt_new(ins, task);
  joget_gate_enter(t);
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
  if (k->users_noted)
    ferry_log_info(c->ins, "users' identities: %ld checked here, %ld already checked by another worker (its note)",
                   k->users_checked, k->users_noted);
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
