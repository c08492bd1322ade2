/* seeddms sink: the "definitions" item (source.c, defs_item()): users, groups with their members, attribute
 * definitions, workflow states, actions, workflows and transitions with the users and groups who may fire
 * them. Matched on the target by login / name; what a matched definition allows that differs from the source
 * (group members, transition users, transition groups and their minusers: who is offered a step,
 * docs/seeddms-facts.md 7.2) is reported: in plan the item is blocked naming each difference, in a run it is
 * carried as a loss, in verify it is a mismatch. With option "definitions": "create" the missing ones are
 * inserted in one transaction (members and transition users/groups with them), so a fresh target works;
 * definitions that exist are never changed. Running it again creates nothing twice (matched by name). */
#include <stdlib.h>
#include <string.h>
#include <ferry/util.h>

#include "seeddms.h"

typedef struct defs {
  seeddms_ctx *c;
  ferry_task *task;
  int pending;
  json_t *tusers;   /* target transition id -> [login] */
  json_t *tgroups;  /* target transition id -> {group: minusers} */
  json_t *members;  /* group name -> {login: true} */
  json_t *actions;  /* action name -> target id */
  ferry_error err;
} defs;

static json_t *sub(json_t *o, const char *k, int array) {
  json_t *v = json_object_get(o, k);
  if (!v) {
    v = array ? json_array() : json_object();
    json_object_set_new(o, k, v);
  }
  return v;
}

/* The target id of a definition (a string) or the variable its insert saves ({"var"}), or NULL: missing. */
static json_t *ref(json_t *ids, json_t *vars_planned, const char *prefix, const char *name) {
  json_t *id = json_object_get(ids, name);
  if (id) return json_incref(id);
  char *var = ferry_asprintf("%s:%s", prefix, name);
  json_t *r = json_object_get(vars_planned, var) ? json_pack("{s:s}", "var", var) : NULL;
  ferry_free(var);
  return r;
}

static void plan_var(json_t *planned, const char *prefix, const char *name) {
  char *var = ferry_asprintf("%s:%s", prefix, name);
  json_object_set_new(planned, var, json_true());
  ferry_free(var);
}

static const char *s_of(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

static char *sorted_list(json_t *arr) {
  size_t n = json_array_size(arr);
  const char **v = calloc(n ? n : 1, sizeof *v);
  for (size_t i = 0; i < n; i++) v[i] = json_string_value(json_array_get(arr, i));
  for (size_t i = 1; i < n; i++)
    for (size_t k = i; k > 0 && strcmp(v[k - 1] ? v[k - 1] : "", v[k] ? v[k] : "") > 0; k--) {
      const char *t = v[k];
      v[k] = v[k - 1];
      v[k - 1] = t;
    }
  ferry_buf b = FERRY_BUF_INIT;
  ferry_buf_add(&b, "[");
  for (size_t i = 0; i < n; i++) ferry_buf_addf(&b, "%s%s", i ? ", " : "", v[i] ? v[i] : "?");
  ferry_buf_add(&b, "]");
  ferry_free(v);
  return ferry_buf_steal(&b);
}

/* An INSERT of the row's columns (except those in skip) plus extra columns; params stolen into the job. */
static void insert(seeddms_ctx *c, seeddms_job *j, const char *table, json_t *row, const char *const *skip,
                   json_t *extra, const char *save) {
  ferry_buf cols = FERRY_BUF_INIT, vals = FERRY_BUF_INIT;
  json_t *params = json_array();
  const char *k;
  json_t *v;
  size_t n = 0;
  json_object_foreach(row, k, v) {
    int skipped = 0;
    for (const char *const *s = skip; s && *s; s++) skipped |= !strcmp(*s, k);
    if (skipped || json_object_get(extra, k)) continue;
    char *qk = ferry_sql_quote_ident(c->db, k);
    ferry_buf_addf(&cols, "%s%s", n ? ", " : "", qk);
    ferry_free(qk);
    ferry_buf_addf(&vals, "%s$%zu", n ? ", " : "", n + 1);
    json_array_append(params, v);
    n++;
  }
  json_object_foreach(extra, k, v) {
    char *qk = ferry_sql_quote_ident(c->db, k);
    ferry_buf_addf(&cols, "%s%s", n ? ", " : "", qk);
    ferry_free(qk);
    if (json_is_object(v) && json_object_get(v, "sql")) { /* a subquery with its own parameters */
      char *q = ferry_strdup(json_string_value(json_object_get(v, "sql")));
      size_t i;
      json_t *p;
      ferry_buf sq = FERRY_BUF_INIT;
      const char *at = q;
      /* renumber its $1.. after ours */
      for (const char *d; (d = strchr(at, '$'));) {
        ferry_buf_addf(&sq, "%.*s", (int)(d - at), at);
        long num = strtol(d + 1, (char **)&at, 10);
        ferry_buf_addf(&sq, "$%zu", n + (size_t)num);
      }
      ferry_buf_add(&sq, at);
      ferry_buf_addf(&vals, "%s%s", n ? ", " : "", sq.buf);
      ferry_buf_free(&sq);
      ferry_free(q);
      size_t np = json_array_size(json_object_get(v, "params"));
      json_array_foreach(json_object_get(v, "params"), i, p) json_array_append(params, p);
      n += np;
      continue;
    }
    ferry_buf_addf(&vals, "%s$%zu", n ? ", " : "", n + 1);
    json_array_append(params, v);
    n++;
  }
  char *sql = ferry_asprintf("INSERT INTO %s (%s) VALUES (%s)", table, cols.buf ? cols.buf : "", vals.buf ? vals.buf : "");
  seeddms_job_add(j, sql, params, save);
  ferry_free(sql);
  ferry_buf_free(&cols);
  ferry_buf_free(&vals);
}

/* After the commit: the created definitions join the sink's name maps. */
static void created(seeddms_ctx *c, json_t *vars) {
  static const struct { const char *prefix; int map; } m[] = {{"user", M_USER}, {"group", M_GROUP},
      {"attrdef", M_ATTRDEF}, {"state", M_STATE}, {"workflow", M_WORKFLOW}, {"transition", M_TRANSITION}};
  const char *k;
  json_t *v;
  json_object_foreach(vars, k, v) {
    for (size_t i = 0; i < sizeof m / sizeof *m; i++) {
      size_t n = strlen(m[i].prefix);
      if (!strncmp(k, m[i].prefix, n) && k[n] == ':') json_object_set(seeddms_sink_ids(c, m[i].map), k + n + 1, v);
    }
  }
}

static void compute(defs *d) {
  seeddms_ctx *c = d->c;
  ferry_task *task = d->task;
  int create = c->definitions == SEEDDMS_DEFS_CREATE, plan = ferry_task_mode(task) == FERRY_MODE_PLAN;
  int verify = ferry_task_mode(task) == FERRY_MODE_VERIFY;
  json_t *in = json_object_get(ferry_task_item(task)->body, "defs");
  json_t *planned = json_object(), *diffs = json_array(), *missing = json_array();
  seeddms_job *j = seeddms_job_new(c, task);
  json_t *uid = seeddms_sink_ids(c, M_USER), *gid = seeddms_sink_ids(c, M_GROUP);
  size_t i, k;
  json_t *r, *x;
  int ncreate[8] = {0};
#define MISSING(...) do { char *m_ = ferry_asprintf(__VA_ARGS__); json_array_append_new(missing, json_string(m_)); ferry_free(m_); } while (0)
#define DIFF(...) do { char *m_ = ferry_asprintf(__VA_ARGS__); json_array_append_new(diffs, json_string(m_)); ferry_free(m_); } while (0)

  json_array_foreach(json_object_get(in, "users"), i, r) {
    const char *login = s_of(r, "login");
    if (!login || json_object_get(uid, login)) continue;
    MISSING("user \"%s\"", login);
    if (!create) continue;
    /* 6.0: the role by name, else by its number (tblRoles); 5.1: the number itself, no secret column */
    static const char *const skip[] = {"role", "role_name", NULL}, *const skip51[] = {"role_name", "secret", NULL};
    json_t *extra = c->detected == SEEDDMS_LAYOUT_51 ? NULL :
                    json_pack("{s:{s:s, s:[O, O]}}", "role", "sql",
                              "COALESCE((SELECT min(id) FROM tblRoles WHERE name = $1), "
                              "(SELECT min(id) FROM tblRoles WHERE role = $2))", "params",
                              json_object_get(r, "role_name") ? json_object_get(r, "role_name") : json_null(),
                              json_object_get(r, "role"));
    char *save = ferry_asprintf("user:%s", login);
    insert(c, j, "tblUsers", r, c->detected == SEEDDMS_LAYOUT_51 ? skip51 : skip, extra, save);
    plan_var(planned, "user", login);
    json_decref(extra);
    ferry_free(save);
    ncreate[0]++;
  }
  json_array_foreach(json_object_get(in, "groups"), i, r) {
    const char *name = s_of(r, "name");
    if (!name || json_object_get(gid, name)) continue;
    MISSING("group \"%s\"", name);
    if (!create) continue;
    char *save = ferry_asprintf("group:%s", name);
    insert(c, j, "tblGroups", r, NULL, NULL, save);
    plan_var(planned, "group", name);
    ferry_free(save);
    ncreate[1]++;
  }
  /* members: for a group or user created now, inserted; for both matched, compared */
  json_t *src_members = json_object();
  json_array_foreach(json_object_get(in, "members"), i, r) {
    const char *g = s_of(r, "grp"), *u = s_of(r, "login");
    if (!g || !u) continue;
    json_object_set_new(sub(src_members, g, 0), u, json_true());
    json_t *gr = ref(gid, planned, "group", g), *ur = ref(uid, planned, "user", u);
    if (gr && ur && (json_is_object(gr) || json_is_object(ur))) {
      seeddms_job_add(j, "INSERT INTO tblGroupMembers (groupID, userID, manager) VALUES ($1, $2, $3)",
                      json_pack("[O, O, O]", gr, ur, json_object_get(r, "manager")), NULL);
    } else if (gr && ur && !json_object_get(json_object_get(d->members, g), u)) {
      DIFF("user \"%s\" is a member of group \"%s\" on the source, not on the target", u, g);
    }
    json_decref(gr);
    json_decref(ur);
  }
  const char *gname;
  json_t *mem;
  json_object_foreach(d->members, gname, mem) {
    const char *u;
    json_t *dummy;
    json_t *sm = json_object_get(src_members, gname);
    int src_has_group = 0;
    json_array_foreach(json_object_get(in, "groups"), i, r) src_has_group |= s_of(r, "name") && !strcmp(s_of(r, "name"), gname);
    if (!src_has_group) continue;
    json_object_foreach(mem, u, dummy) {
      int src_has_user = 0;
      json_array_foreach(json_object_get(in, "users"), i, r) src_has_user |= s_of(r, "login") && !strcmp(s_of(r, "login"), u);
      if (src_has_user && !json_object_get(sm, u))
        DIFF("user \"%s\" is a member of group \"%s\" on the target, not on the source", u, gname);
    }
  }
  json_decref(src_members);
  json_array_foreach(json_object_get(in, "attrdefs"), i, r) {
    const char *name = s_of(r, "name");
    if (!name || json_object_get(seeddms_sink_ids(c, M_ATTRDEF), name)) continue;
    MISSING("attribute definition \"%s\"", name);
    if (!create) continue;
    char *save = ferry_asprintf("attrdef:%s", name);
    insert(c, j, "tblAttributeDefinitions", r, NULL, NULL, save);
    plan_var(planned, "attrdef", name);
    ferry_free(save);
    ncreate[2]++;
  }
  json_t *sid = seeddms_sink_ids(c, M_STATE);
  json_array_foreach(json_object_get(in, "states"), i, r) {
    const char *name = s_of(r, "name");
    if (!name || json_object_get(sid, name)) continue;
    MISSING("workflow state \"%s\"", name);
    if (!create) continue;
    char *save = ferry_asprintf("state:%s", name);
    insert(c, j, "tblWorkflowStates", r, NULL, NULL, save);
    plan_var(planned, "state", name);
    ferry_free(save);
    ncreate[3]++;
  }
  json_array_foreach(json_object_get(in, "actions"), i, r) {
    const char *name = s_of(r, "name");
    if (!name || json_object_get(d->actions, name)) continue;
    if (!create) continue; /* an action alone blocks nothing: its transitions are reported */
    char *save = ferry_asprintf("action:%s", name);
    insert(c, j, "tblWorkflowActions", r, NULL, NULL, save);
    plan_var(planned, "action", name);
    ferry_free(save);
  }
  json_t *wid = seeddms_sink_ids(c, M_WORKFLOW);
  json_array_foreach(json_object_get(in, "workflows"), i, r) {
    const char *name = s_of(r, "name");
    if (!name || json_object_get(wid, name)) continue;
    MISSING("workflow \"%s\"", name);
    if (!create) continue;
    json_t *init = ref(sid, planned, "state", s_of(r, "initstate") ? s_of(r, "initstate") : "");
    if (!init) continue;
    json_t *row = json_pack("{s:O, s:o}", "name", json_object_get(r, "name"), "initstate", init);
    if (json_object_get(r, "layoutdata") && c->detected != SEEDDMS_LAYOUT_51) /* 5.1 has no such column */
      json_object_set(row, "layoutdata", json_object_get(r, "layoutdata"));
    char *save = ferry_asprintf("workflow:%s", name);
    insert(c, j, "tblWorkflows", row, NULL, NULL, save);
    plan_var(planned, "workflow", name);
    json_decref(row);
    ferry_free(save);
    ncreate[4]++;
  }
  json_t *tid = seeddms_sink_ids(c, M_TRANSITION);
  json_array_foreach(json_object_get(in, "transitions"), i, r) {
    const char *w = s_of(r, "workflow"), *st = s_of(r, "state"), *a = s_of(r, "action"), *nx = s_of(r, "nextstate");
    char *key = ferry_asprintf("%s\x1f%s\x1f%s\x1f%s", w, st, a, nx);
    char *shown = ferry_asprintf("%s: %s --%s--> %s", w, st, a, nx);
    json_t *have = json_object_get(tid, key);
    if (have) { /* matched: who may fire it must agree */
      json_t *tu = json_object_get(d->tusers, json_string_value(have));
      char *su = sorted_list(json_object_get(r, "users")), *gu = sorted_list(tu); /* NULL: [] */
      if (strcmp(su, gu)) DIFF("transition \"%s\": users %s on the source, %s on the target", shown, su, gu);
      ferry_free(su);
      ferry_free(gu);
      json_t *tg = json_object_get(d->tgroups, json_string_value(have));
      ferry_buf sb = FERRY_BUF_INIT, tb = FERRY_BUF_INIT;
      json_t *sg = json_object();
      json_array_foreach(json_object_get(r, "groups"), k, x) {
        const char *mu = s_of(x, "minusers");
        json_object_set_new(sg, s_of(x, "name") ? s_of(x, "name") : "?", json_string(mu ? mu : "0"));
      }
      int differ = json_object_size(sg) != json_object_size(tg);
      const char *gk;
      json_t *gv;
      json_object_foreach(sg, gk, gv) {
        ferry_buf_addf(&sb, "%s%s (minusers %s)", sb.buf ? ", " : "", gk, json_string_value(gv));
        json_t *t2 = json_object_get(tg, gk);
        if (!t2 || strcmp(json_string_value(t2), json_string_value(gv))) differ = 1;
      }
      json_object_foreach(tg, gk, gv) ferry_buf_addf(&tb, "%s%s (minusers %s)", tb.buf ? ", " : "", gk, json_string_value(gv));
      if (differ)
        DIFF("transition \"%s\": groups [%s] on the source, [%s] on the target", shown, sb.buf ? sb.buf : "",
             tb.buf ? tb.buf : "");
      ferry_buf_free(&sb);
      ferry_buf_free(&tb);
      json_decref(sg);
    } else {
      MISSING("workflow transition \"%s\"", shown);
      json_t *wr = create ? ref(wid, planned, "workflow", w) : NULL, *sr = create ? ref(sid, planned, "state", st) : NULL;
      json_t *nr = create ? ref(sid, planned, "state", nx) : NULL, *ar = create ? ref(d->actions, planned, "action", a) : NULL;
      if (wr && sr && nr && ar) {
        char *save = ferry_asprintf("transition:%s", key);
        json_t *row = json_pack("{s:O, s:O, s:O, s:O, s:O}", "workflow", wr, "state", sr, "action", ar, "nextstate", nr,
                                "maxtime", json_object_get(r, "maxtime"));
        insert(c, j, "tblWorkflowTransitions", row, NULL, NULL, save);
        json_decref(row);
        plan_var(planned, "transition", key);
        json_array_foreach(json_object_get(r, "users"), k, x) {
          json_t *u = ref(uid, planned, "user", json_string_value(x) ? json_string_value(x) : "");
          if (u) seeddms_job_add(j, "INSERT INTO tblWorkflowTransitionUsers (transition, userid) VALUES ($1, $2)",
                                 json_pack("[{s:s}, o]", "var", save, u), NULL);
        }
        json_array_foreach(json_object_get(r, "groups"), k, x) {
          json_t *g = ref(gid, planned, "group", s_of(x, "name") ? s_of(x, "name") : "");
          if (g) seeddms_job_add(j, "INSERT INTO tblWorkflowTransitionGroups (transition, groupid, minusers) VALUES ($1, $2, $3)",
                                 json_pack("[{s:s}, o, O]", "var", save, g, json_object_get(x, "minusers")), NULL);
        }
        ferry_free(save);
        ncreate[5]++;
      }
      json_decref(wr);
      json_decref(sr);
      json_decref(nr);
      json_decref(ar);
    }
    ferry_free(key);
    ferry_free(shown);
  }
#undef MISSING
#undef DIFF
  json_t *rep = ferry_task_report(task);
  size_t nmiss = json_array_size(missing), ndiff = json_array_size(diffs);
  if (ndiff) json_object_set(rep, "differences", diffs);
  if (nmiss) json_object_set(rep, create ? "created" : "missing", missing);
  ferry_error e = FERRY_ERROR_INIT;
  if (verify) {
    if (nmiss || ndiff)
      ferry_error_set(&e, FERRY_EMISMATCH, "seeddms: definitions differ on the target: %s",
                      json_string_value(json_array_get(ndiff ? diffs : missing, 0)));
    if (nmiss && !ndiff) json_object_set(rep, "differences", missing);
  } else if (plan) {
    char *w = ferry_asprintf("definitions: %s %zu missing on the target%s", create ? "create" : "match", nmiss,
                             create ? "" : " (the items that need one are blocked)");
    json_object_set_new(rep, "would", json_string(w));
    ferry_free(w);
    if (ndiff)
      ferry_error_set(&e, FERRY_EBLOCKED, "seeddms: %zu definition(s) allow other people on the target than on the "
                      "source: %s%s", ndiff, json_string_value(json_array_get(diffs, 0)), ndiff > 1 ? " (and more)" : "");
    /* a plan creates nothing: the names it would create count as present for the items that follow */
    if (create) {
      json_t *zero = json_object();
      const char *vk;
      json_t *vv;
      json_object_foreach(planned, vk, vv) json_object_set_new(zero, vk, json_string("0"));
      created(c, zero);
      json_decref(zero);
    }
  } else if (ndiff) {
    json_t *losses = json_array();
    size_t li;
    json_t *lv;
    json_array_foreach(diffs, li, lv) json_array_append_new(losses, json_pack("{s:s, s:O}", "kind", "definition", "what", lv));
    json_object_set_new(rep, "losses", losses);
  }
  (void)ncreate;
  json_decref(planned);
  json_decref(diffs);
  json_decref(missing);
  if (e.code) {
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    seeddms_job_free(j);
  } else if (plan || verify || seeddms_job_size(j) == 0) {
    ferry_task_done(task, 0);
    seeddms_job_free(j);
  } else {
    seeddms_job_run(j, created);
  }
}

static void defs_free(defs *d) {
  json_decref(d->tusers);
  json_decref(d->tgroups);
  json_decref(d->members);
  json_decref(d->actions);
  ferry_error_clear(&d->err);
  ferry_free(d);
}

typedef struct dq {
  defs *d;
  int which;
} dq;

static void got(void *arg, json_t *rows, const ferry_error *err) {
  dq *q = arg;
  defs *d = q->d;
  if (!rows) {
    if (!d->err.code)
      ferry_error_set(&d->err, err ? err->code : FERRY_EINTERNAL, "seeddms: reading the target's definitions: %s",
                      err ? err->message : "?");
  } else {
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
      const char *a = seeddms_str(r, "a"), *b = seeddms_str(r, "b"), *n = seeddms_str(r, "n");
      if (!a || !b) continue;
      if (q->which == 0) json_array_append_new(sub(d->tusers, a, 1), json_string(b));
      else if (q->which == 1) json_object_set_new(sub(d->tgroups, a, 0), b, json_string(n ? n : "0"));
      else if (q->which == 2) json_object_set_new(sub(d->members, a, 0), b, json_true());
      else json_object_set_new(d->actions, a, json_string(b));
    }
  }
  ferry_free(q);
  if (--d->pending > 0) return;
  if (d->err.code) ferry_task_fail(d->task, &d->err);
  else compute(d);
  defs_free(d);
}

void seeddms_defs(seeddms_ctx *c, ferry_task *task) {
  static const char *const sql[] = {
      "SELECT x.transition AS a, u.login AS b FROM tblWorkflowTransitionUsers x JOIN tblUsers u ON u.id = x.userid",
      "SELECT x.transition AS a, g.name AS b, x.minusers AS n FROM tblWorkflowTransitionGroups x "
      "JOIN tblGroups g ON g.id = x.groupid",
      "SELECT g.name AS a, u.login AS b FROM tblGroupMembers m JOIN tblGroups g ON g.id = m.groupID "
      "JOIN tblUsers u ON u.id = m.userID",
      "SELECT name AS a, id AS b FROM tblWorkflowActions"};
  defs *d = calloc(1, sizeof *d);
  d->c = c;
  d->task = task;
  d->tusers = json_object();
  d->tgroups = json_object();
  d->members = json_object();
  d->actions = json_object();
  d->pending = 1;
  for (int i = 0; i < 4; i++) {
    dq *q = calloc(1, sizeof *q);
    q->d = d;
    q->which = i;
    d->pending++;
    if (seeddms_collect(c->db, NULL, sql[i], 0, NULL, got, q) < 0) {
      ferry_error e = {FERRY_EINTERNAL, "could not queue a query", NULL};
      got(q, NULL, &e);
    }
  }
  dq *q = calloc(1, sizeof *q);
  q->d = d;
  q->which = -1;
  json_t *none = json_array();
  got(q, none, NULL);
  json_decref(none);
}
