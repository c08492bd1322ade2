/* joget sink: the record lock; RUN: start as the requester, reconcile an answer lost after the start,
 * adopt, the duplicate check. */
#define _GNU_SOURCE
#include "sink.h"

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
void joget_lock_take(jt *t, const char *key, void (*next)(jt *)) {
  joget_snk *k = t->k;
  jlock *l = k->locks;
  while (l && strcmp(l->key, key)) l = l->next;
  if (!l) {
    l = calloc(1, sizeof *l);
    if (!l) abort();
    l->key = ferry_strdup(key);
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

void joget_lock_drop(jt *t) {
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

/* ---- RUN: start ------------------------------------------------------------------------------------------
 */

static char *reverse_owner(jt *t, const char *pid);

static void adopt(jt *t, const char *pid, int adopted) {
  ferry_error e = FERRY_ERROR_INIT;
  json_object_set_new(t->st, "pid", json_string(pid));
  json_object_set_new(t->rep, "target_process_id", json_string(pid));
  json_object_set_new(t->rep, "target_id", json_string(pid));
  if (adopted) {
    json_object_set_new(t->rep, "adopted", json_true());
    json_object_set_new(t->st, "adopted", json_true());
  }
  if (ferry_task_map_id(t->task, "process", joget_item_id(t), pid, &e) < 0 ||
      ferry_task_map_id(t->task, JOGET_REVERSE_KIND, pid, joget_item_id(t), &e) < 0) {
    joget_jt_fail_err(t, &e);
    ferry_error_clear(&e);
    return;
  }
  if (joget_intent(t, "started") < 0) return;
  /* defence in depth: exactly one new target instance of this definition for this record since the intent,
     whatever made a second one (a transport that re-sent the start, a proxy, an operator) */
  joget_cands_find(t, joget_single_check);
}

/* t->cands (this definition, this record, created since the intent) holds another instance unknown to the
 * journal: a duplicate of the one just confirmed or adopted. Abort it, and say so. */

/* After the duplicate check: right after the start, on to the scopes; at the final check (a start the
 * server ran late, after its answer was lost), on to comparing. */
static void duplicates_aborted(jt *t) {
  joget_lock_drop(t);
  if (t->final_dup) {
    t->final_dup = 2;
    joget_check_begin(t);
    return;
  }
  joget_scopes_begin(t);
}

void joget_single_check(jt *t) {
  const char *pid = joget_str(t->st, "pid");
  int64_t since = json_integer_value(json_object_get(t->st, "intent_ms")) - t->c->clock_skew_ms;
  json_t *dups = json_array();
  size_t i;
  json_t *c;
  json_array_foreach(t->cands, i, c) {
    const char *id = joget_str(c, "id");
    json_t *cm = json_object_get(c, "created_ms");
    if (!id || !strcmp(id, pid) || (json_is_integer(cm) && json_integer_value(cm) < since)) continue;
    if (joget_known_elsewhere(t, id, joget_item_id(t))) continue;
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
  if (joget_intent(t, "abort-duplicate") < 0) {
    json_decref(dups);
    return;
  }
  json_array_foreach(dups, i, c) {
    const char *id = json_string_value(c);
    ferry_log(t->c->ins, FERRY_LOG_WARN,
              "instance %s: the target holds a second new instance %s of %s for record %s besides %s: aborting "
              "it",
              joget_item_id(t), id, t->tdef, joget_str(t->src, "record_id"), pid);
    joget_rep_push(t, "duplicates_aborted", json_string(id));
    joget_loss(t, json_pack("{s:s, s:s, s:s}", "kind", "duplicate", "instance", id, "what",
                            "a second target instance for this record appeared with the start (a re-sent "
                            "request?); it was aborted"));
    char *seg = joget_seg(id);
    char *path = ferry_asprintf("workflow/process/abort/%s", seg);
    joget_jt_admin(t, "POST", path, NULL, NULL, NULL);
    free(path);
    free(seg);
  }
  json_decref(dups);
  joget_jt_then(t, duplicates_aborted);
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
    joget_note(t, "process/start answered recordId %s, sent %s", rid, joget_str(t->src, "record_id"));
  json_object_set_new(t->plan, "new_pid", json_string(pid));
}

static void after_start_call(jt *t) {
  joget_test_crash("start");
  const char *pid = joget_str(t->plan, "new_pid");
  char *p = ferry_strdup(pid);
  adopt(t, p, 0);
  free(p);
}

static void start_with_ident(jt *t) {
  const char *req = joget_str(t->src, "requester");
  const char *hash = json_string_value(json_object_get(t->plan, "hash"));
  free(t->uid_label);
  t->uid_label = NULL;
  joget_user_ident_from(t->c, req, hash, &t->uid, &t->uid_label);
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
    char *val = joget_var_text(v);
    if (!joget_var_at_start(name, val)) {
      free(val);
      continue;
    }
    own[o] = ferry_asprintf("var_%s", name);
    kv[k++] = own[o++];
    own[o] = val;
    kv[k++] = own[o++];
  }
  kv[k] = NULL;
  char *seg_app = joget_seg(t->tapp), *seg_proc = joget_seg(t->tproc);
  char *path = ferry_asprintf("workflow/process/start/%s:%s:%s", seg_app, t->tver, seg_proc);
  joget_jt_req(t, "POST", path, kv, &t->uid, take_start, NULL);
  for (size_t i = 0; i < o; i++) free(own[i]);
  free(own);
  free(kv);
  free(path);
  free(seg_app);
  free(seg_proc);
  joget_jt_then(t, after_start_call);
}

static void on_before_start(void *arg, int status, const ferry_error *err) {
  jt *t = arg;
  if (status) {
    joget_jt_fail_hook(t, "before_start", status, err);
    return;
  }
  if (joget_intent(t, "start") < 0) return; /* saves the hooks' state (snapshots) before the side effect */
  joget_test_crash("before_start");
  if (t->c->start_mode == JOGET_START_HASH)
    joget_jt_lookup(t, &t->k->hashes, joget_str(t->src, "requester"), joget_hash_start, "hash", 0);
  joget_jt_then(t, start_with_ident);
}

void joget_do_start(jt *t) {
  json_object_set_new(t->st, "intent_ms", json_integer(joget_now_ms()));
  json_object_set_new(t->st, "target_definition", json_string(t->tdef));
  if (joget_intent(t, "start") < 0) return;
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

int joget_known_elsewhere(jt *t, const char *pid, const char *src_id) {
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
    if (joget_known_elsewhere(t, id, joget_item_id(t))) continue;
    ferry_log(t->c->ins, FERRY_LOG_INFO,
              "instance %s: adopting target instance %s started by an interrupted run", joget_item_id(t), id);
    char *p = ferry_strdup(id);
    adopt(t, p, 1);
    free(p);
    return;
  }
  ferry_log(t->c->ins, FERRY_LOG_DEBUG, "instance %s: nothing to adopt on the target: starting", joget_item_id(t));
  joget_do_start(t);
}

static void take_cands_pg(jt *t, const joget_res *res, void *ud) {
  for (int i = 0; i < joget_res_n(res); i++)
    json_array_append_new(t->cands, json_pack("{s:s, s:I}", "id", joget_res_val(res, i, 0), "created_ms",
                                              (json_int_t)atoll(joget_res_val(res, i, 1))));
}

/* "yyyy-MM-dd hh:mm a" (the emulator's and a default Joget's display format) in UTC -> ms, or -1 */
/* A start time as the running list prints it, as an upper bound in ms (the list has minute precision and
 * the server's display time zone is unknown): "yyyy-MM-dd hh:mm a" (the emulator's, in UTC) or Joget's
 * default "dd-MM-yyyy hh:mm aa" in the user's or server's time zone (docs/joget-facts.md 5.3), for which
 * 14 hours are added (the widest UTC offset), so that reconcile never drops an instance created after the
 * intent; with dsn the exact creation time is read instead. -1 when unreadable (then not filtered). */
int64_t joget_parse_display_time(const char *s) {
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
    int64_t ms = joget_parse_display_time(joget_str(r, "startedTime"));
    if (ms >= 0) json_object_set_new(c, "created_ms", json_integer(ms));
    json_array_append_new(t->cands, c);
    char *seg = joget_seg(id);
    char *path = ferry_asprintf("monitoring/process/view/%s", seg);
    joget_jt_admin(t, "GET", path, NULL, take_cand_view, c);
    free(path);
    free(seg);
  }
  json_decref(rows);
}

/* Fills t->cands with the running target instances of t->tdef linked to the item's record id and created
 * since the intent (less clock_skew_ms), oldest first, then runs next(t). The query reconcile and the
 * duplicate check share. */
void joget_cands_find(jt *t, void (*next)(jt *)) {
  json_decref(t->cands);
  t->cands = json_array();
  if (t->c->db) {
    char since[32];
    snprintf(since, sizeof since, "%lld",
             (long long)(json_integer_value(json_object_get(t->st, "intent_ms")) - t->c->clock_skew_ms));
    const char *p[3] = {t->tdef, joget_str(t->src, "record_id"), since};
    /* The record id is COALESCE(link origin, instance id); written as two branches, so each one is an index
     * lookup (wf_process_link.idx_origin, SHKProcesses.Id) instead of a scan of every instance of the process
     * (one such scan per item made a migration quadratic in the target's size). "Top level" is written as an
     * expression no index serves: on a target that grew since its last ANALYZE the planner took the index on
     * ActivityRequesterProcessId for IS NULL, which holds every top-level instance. */
    joget_jt_pg(t,
                JOGET_SQL(t->c,
                          "SELECT p.id, p.created FROM wf_process_link l JOIN shkprocesses p ON p.id = l.processid "
                          "WHERE l.originprocessid = $2 AND p.pdefname = $1 AND p.activityrequesterprocessid || '' "
                          "IS NULL AND p.state IN (1000000, 1000004) AND p.created >= $3::bigint UNION ALL SELECT "
                          "p.id, p.created FROM shkprocesses p WHERE p.id = $2 AND p.pdefname = $1 AND NOT EXISTS "
                          "(SELECT 1 FROM wf_process_link l WHERE l.processid = p.id) AND "
                          "p.activityrequesterprocessid || '' IS NULL AND p.state IN (1000000, 1000004) AND "
                          "p.created >= $3::bigint ORDER BY 2, 1",
                          "SELECT p.Id, p.Created FROM wf_process_link l JOIN SHKProcesses p ON p.Id = l.processId "
                          "WHERE l.originProcessId = $2 AND p.PDefName = $1 AND "
                          "CONCAT(p.ActivityRequesterProcessId, '') IS NULL AND p.State IN (1000000, 1000004) AND "
                          "p.Created >= CAST($3 AS SIGNED) UNION ALL SELECT p.Id, p.Created FROM SHKProcesses p "
                          "WHERE p.Id = $2 AND p.PDefName = $1 AND NOT EXISTS (SELECT 1 FROM wf_process_link l "
                          "WHERE l.processId = p.Id) AND CONCAT(p.ActivityRequesterProcessId, '') IS NULL AND "
                          "p.State IN (1000000, 1000004) AND p.Created >= CAST($3 AS SIGNED) ORDER BY 2, 1"),
                3, p, take_cands_pg, NULL);
    joget_jt_then(t, next);
    return;
  }
  const char *params[] = {
      "recordId", joget_str(t->src, "record_id"), "appId", t->tapp, "sort", "id", "desc", "false", "rows", "100",
      NULL};
  joget_jt_admin(t, "GET", "console/monitor/running/list", params, take_cands_http, NULL);
  t->after_cands = next;
  joget_jt_then(t, cands_views_done);
}

void joget_reconcile_start(jt *t) { joget_cands_find(t, reconcile_pick); }
