/* seeddms source: the runs of a 5.1 database rebuilt in the 6.0 shape (docs/seeddms-facts.md 8 and 9). 5.1
 * keeps a row in tblWorkflowDocumentContent only while a workflow is active and links the log by (document,
 * version, workflow). The log of each triple is replayed in id order from the workflow's initial state: an
 * entry moves the run to its transition's next state when that state has no pre-condition function and a
 * transition into it has fired (every listed user acted, every listed group reached minusers, facts 7.2-7.3);
 * entering a state mapped to released (2) or rejected (-1) ends the run (state NULL, dated at its last log
 * entry), and the next entry starts a new one. The 5.1 row, if any, is the last, active run with its state
 * and date; its parentworkflow names the version's active run of that workflow as the parent. */
#include <stdlib.h>
#include <string.h>
#include <ferry/util.h>

#include "seeddms.h"

typedef struct defs {
  json_t *trans;   /* id -> transition row */
  json_t *tusers;  /* transition -> [userid] */
  json_t *tgroups; /* transition -> [[groupid, minusers]] */
  json_t *groups_of; /* user -> [groupid] */
  json_t *states;  /* id -> state row */
  json_t *init;    /* workflow -> initstate */
} defs;

static void push(json_t *map, const char *key, json_t *v) {
  json_t *a = json_object_get(map, key);
  if (!a) {
    a = json_array();
    json_object_set_new(map, key, a);
  }
  json_array_append_new(a, v);
}

static const char *s_(json_t *row, const char *col) {
  const char *s = seeddms_str(row, col);
  return s ? s : "";
}

static int fired(defs *d, const char *t, json_t *log) {
  json_t *acted = json_object(), *counts = json_object();
  size_t i, n = 0;
  json_t *e;
  json_array_foreach(log, i, e) {
    if (strcmp(s_(e, "transition"), t)) continue;
    n++;
    json_object_set_new(acted, s_(e, "userid"), json_true());
    size_t k;
    json_t *g;
    json_array_foreach(json_object_get(d->groups_of, s_(e, "userid")), k, g) {
      json_t *c = json_object_get(counts, json_string_value(g));
      json_object_set_new(counts, json_string_value(g), json_integer(c ? json_integer_value(c) + 1 : 1));
    }
  }
  int ok = n > 0;
  json_t *u;
  json_array_foreach(json_object_get(d->tusers, t), i, u) if (!json_object_get(acted, json_string_value(u))) ok = 0;
  json_t *gm;
  json_array_foreach(json_object_get(d->tgroups, t), i, gm) {
    json_t *c = json_object_get(counts, json_string_value(json_array_get(gm, 0)));
    const char *mu = json_string_value(json_array_get(gm, 1));
    if (!c || json_integer_value(c) < (mu ? strtoll(mu, NULL, 10) : 0)) ok = 0;
  }
  json_decref(acted);
  json_decref(counts);
  return ok;
}

static const char *step(defs *d, const char *wf, const char *state, json_t *log) {
  json_t *last = json_array_get(log, json_array_size(log) - 1);
  json_t *tr = json_object_get(d->trans, s_(last, "transition"));
  if (!tr) return state;
  const char *next = s_(tr, "nextstate");
  json_t *nx = json_object_get(d->states, next);
  if (!nx || *s_(nx, "precondfunc")) return state;
  const char *id;
  json_t *t;
  json_object_foreach(d->trans, id, t) {
    if (!strcmp(s_(t, "workflow"), wf) && !strcmp(s_(t, "nextstate"), next) && fired(d, id, log)) return next;
  }
  return state;
}

static int ends_run(defs *d, const char *state) {
  json_t *s = state ? json_object_get(d->states, state) : NULL;
  const char *ds = s ? seeddms_str(s, "documentstatus") : NULL;
  return ds && (!strcmp(ds, "2") || !strcmp(ds, "-1"));
}

static json_t *run_row(int n, json_t *first, const char *wf, const char *state, const char *date) {
  char id[32];
  snprintf(id, sizeof id, "r%d", n);
  return json_pack("{s:s, s:n, s:s, s:s, s:s, s:s?, s:s?, s:o}", "id", id, "parent", "workflow", wf, "document",
                   s_(first, "document"), "version", s_(first, "version"), "state", state, "date", date, "log",
                   json_array());
}

int seeddms_runs_from_51(json_t *tables, ferry_error *err) {
  defs d = {json_object(), json_object(), json_object(), json_object(), json_object(), json_object()};
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(tables, "x:tblWorkflowTransitions"), i, r)
    json_object_set(d.trans, s_(r, "id"), r);
  json_array_foreach(json_object_get(tables, "x:tblWorkflowTransitionUsers"), i, r)
    push(d.tusers, s_(r, "transition"), json_string(s_(r, "userid")));
  json_array_foreach(json_object_get(tables, "x:tblWorkflowTransitionGroups"), i, r)
    push(d.tgroups, s_(r, "transition"), json_pack("[s, s?]", s_(r, "groupid"), seeddms_str(r, "minusers")));
  json_array_foreach(json_object_get(tables, "x:tblGroupMembers"), i, r)
    push(d.groups_of, s_(r, "userID"), json_string(s_(r, "groupID")));
  json_array_foreach(json_object_get(tables, "x:tblWorkflowStates"), i, r) json_object_set(d.states, s_(r, "id"), r);
  json_array_foreach(json_object_get(tables, "x:tblWorkflows"), i, r)
    json_object_set_new(d.init, s_(r, "id"), json_string(s_(r, "initstate")));

  /* triples in first-seen order: log entries (id order) and the active rows (newest date last) */
  json_t *order = json_array(), *logs = json_object(), *active = json_object();
  char key[160];
  json_array_foreach(json_object_get(tables, "x:tblWorkflowLog"), i, r) {
    snprintf(key, sizeof key, "%s\x1f%s\x1f%s", s_(r, "document"), s_(r, "version"), s_(r, "workflow"));
    if (!json_object_get(logs, key) && !json_object_get(active, key)) json_array_append_new(order, json_string(key));
    push(logs, key, json_incref(r));
  }
  json_array_foreach(json_object_get(tables, "x:tblWorkflowDocumentContent"), i, r) {
    snprintf(key, sizeof key, "%s\x1f%s\x1f%s", s_(r, "document"), s_(r, "version"), s_(r, "workflow"));
    if (!json_object_get(logs, key) && !json_object_get(active, key)) json_array_append_new(order, json_string(key));
    json_t *cur = json_object_get(active, key);
    if (!cur || strcmp(s_(r, "date"), s_(cur, "date")) >= 0) json_object_set(active, key, r);
  }
  json_t *runs = json_array(), *log = json_array();
  int n = 0;
  json_t *k;
  json_array_foreach(order, i, k) {
    const char *tk = json_string_value(k);
    json_t *entries = json_object_get(logs, tk), *row = json_object_get(active, tk);
    json_t *first = row ? row : json_array_get(entries, 0);
    const char *wf = s_(first, "workflow");
    json_t *cur = NULL;
    const char *state = NULL;
    size_t j;
    json_t *e;
    json_array_foreach(entries, j, e) {
      if (!cur) {
        cur = run_row(++n, first, wf, NULL, NULL);
        json_array_append_new(runs, cur);
        state = json_string_value(json_object_get(d.init, wf));
      }
      json_array_append(json_object_get(cur, "log"), e);
      state = step(&d, wf, state, json_object_get(cur, "log"));
      json_object_set_new(cur, "date", json_string(s_(e, "date")));
      if (ends_run(&d, state)) cur = NULL; /* state stays NULL: finished, dated at its last entry */
    }
    if (row) {
      if (!cur) {
        cur = run_row(++n, first, wf, NULL, NULL);
        json_array_append_new(runs, cur);
      }
      json_object_set_new(cur, "state", json_string(s_(row, "state")));
      json_object_set_new(cur, "date", json_string(s_(row, "date")));
      const char *pw = seeddms_str(row, "parentworkflow");
      if (pw && strcmp(pw, "0")) json_object_set_new(cur, "_parentwf", json_string(pw));
    }
    /* with no row, a run the log leaves unfinished is taken as ended (state NULL), as the checker does */
  }
  /* parents: the version's active run of the parent workflow; runs with a parent after the others */
  json_t *sorted = json_array();
  for (int pass = 0; pass < 2; pass++) {
    json_array_foreach(runs, i, r) {
      const char *pw = seeddms_str(r, "_parentwf");
      if ((pass == 0) != (pw == NULL)) continue;
      if (pw) {
        size_t q;
        json_t *p;
        json_array_foreach(runs, q, p) {
          if (!strcmp(s_(p, "document"), s_(r, "document")) && !strcmp(s_(p, "version"), s_(r, "version")) &&
              !strcmp(s_(p, "workflow"), pw) && seeddms_str(p, "state"))
            json_object_set(r, "parent", json_object_get(p, "id"));
        }
        json_object_del(r, "_parentwf");
      }
      size_t q;
      json_t *e;
      json_array_foreach(json_object_get(r, "log"), q, e)
        json_array_append_new(log, json_pack("{s:O, s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(e, "id"),
                                             "workflowdocumentcontent", json_object_get(r, "id"), "userid",
                                             json_object_get(e, "userid"), "transition",
                                             json_object_get(e, "transition"), "date", json_object_get(e, "date"),
                                             "comment", json_object_get(e, "comment")));
      json_object_del(r, "log");
      json_array_append(sorted, r);
    }
  }
  json_object_set_new(tables, "tblWorkflowDocumentContent", sorted);
  json_object_set_new(tables, "tblWorkflowLog", log);
  json_decref(runs);
  json_decref(order);
  json_decref(logs);
  json_decref(active);
  json_decref(d.trans), json_decref(d.tusers), json_decref(d.tgroups), json_decref(d.groups_of);
  json_decref(d.states), json_decref(d.init);
  (void)err;
  return 0;
}
