/* joget sink: RUN: reassign to the source's assignees, accept as the source's accepting user. */
#define _GNU_SOURCE
#include "sink.h"

/* -- reassign (one call at a time: calls on one activity must not overlap) -- */
static void scope_accept(jt *t);
static void reassign_next(jt *t);

static void reassign_after(jt *t) {
  joget_test_crash("reassign");
  t->ci++;
  reassign_next(t);
}

static void reassign_reread(jt *t) {
  joget_tidy_acts(t);
  scope_accept(t);
}

static void reassign_next(jt *t) {
  if (t->ci >= json_array_size(t->calls)) {
    joget_read_scope_acts(t, joget_scope_pid(t)); /* the accept step needs the new assignees */
    joget_jt_then(t, reassign_reread);
    return;
  }
  json_t *call = json_array_get(t->calls, t->ci);
  const char *params[] = {"activityId",  joget_str(call, "activityId"),  "username", joget_str(call, "username"),
                          "replaceUser", joget_str(call, "replaceUser"), NULL};
  joget_jt_admin(t, "POST", "monitoring/activity/reassign", params, NULL, NULL);
  joget_jt_then(t, reassign_after);
}

void joget_scope_reassign(jt *t) {
  json_t *sacts = json_object_get(joget_scope_src(t), "activities");
  json_t *pairs = joget_pair_acts(sacts, t->tacts);
  json_t *calls = json_array();
  size_t i;
  json_t *sa;
  json_array_foreach(sacts, i, sa) {
    long j = (long)json_integer_value(json_array_get(pairs, i));
    json_t *sas = json_object_get(sa, "assignees");
    if (j < 0 || json_array_size(sas) == 0) continue;
    json_t *ta = json_array_get(t->tacts, (size_t)j);
    json_t *tas = json_object_get(ta, "assignees");
    json_t *add = joget_minus(sas, tas), *rem = joget_minus(tas, sas);
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
      joget_note(t,
                 "%s activity %s: the target computed fewer assignees than the source; %s cannot be added through "
                 "the JSON API (monitoring/activity/reassign only replaces)",
                 joget_scope_pid(t), joget_str(sa, "def_id"), json_string_value(json_array_get(add, x)));
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
  if (joget_intent(t, "reassign") < 0) return;
  t->dirty = 1;
  json_t *call;
  json_array_foreach(calls, i, call)
    joget_rep_push(t, "reassigned",
                   json_pack("{s:s, s:s, s:s, s:s}", "process", joget_scope_pid(t), "activity",
                             joget_str(call, "def"), "from", joget_str(call, "replaceUser"), "to",
                             joget_str(call, "username")));
  reassign_next(t);
}

/* -- accept as the user who had accepted on the source -- */
static void accept_send(jt *t) {
  size_t i;
  json_t *call;
  json_array_foreach(t->calls, i, call) {
    const char *u = joget_str(call, "user");
    char *key = ferry_asprintf("hash:%s", u);
    joget_ident id;
    char *label = NULL;
    joget_user_ident_from(t->c, u, json_string_value(json_object_get(t->plan, key)), &id, &label);
    char *seg = joget_seg(joget_str(call, "activityId"));
    char *path = ferry_asprintf("workflow/assignment/accept/%s", seg);
    joget_jt_req(t, "POST", path, NULL, &id, NULL, NULL);
    joget_rep_push(t, "accepted", json_pack("{s:s, s:s}", "activity", joget_str(call, "def"), "by", u));
    free(path);
    free(seg);
    free(label);
    free(key);
  }
  joget_jt_then(t, joget_scope_vars);
}

static void scope_accept(jt *t) {
  json_t *sacts = json_object_get(joget_scope_src(t), "activities");
  json_t *pairs = joget_pair_acts(sacts, t->tacts);
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
      joget_note(t, "%s activity %s was accepted by %s on the source; no credentials for %s in users: left pending",
                 joget_scope_pid(t), joget_str(sa, "def_id"), u, u);
      continue;
    }
    json_array_append_new(calls, json_pack("{s:s, s:s, s:s}", "activityId", joget_str(ta, "id"), "user", u,
                                           "def", joget_str(sa, "def_id")));
  }
  json_decref(pairs);
  json_decref(t->calls);
  t->calls = calls;
  if (json_array_size(calls) == 0) {
    joget_scope_vars(t);
    return;
  }
  if (joget_intent(t, "accept") < 0) return;
  t->dirty = 1;
  t->vars_stale = 1;
  if (t->c->start_mode == JOGET_START_HASH) {
    json_t *call;
    json_array_foreach(calls, i, call) {
      char *slot = ferry_asprintf("hash:%s", joget_str(call, "user"));
      joget_jt_lookup(t, &t->k->hashes, joget_str(call, "user"), joget_hash_start, slot, 0);
      free(slot);
    }
  }
  joget_jt_then(t, accept_send);
}
