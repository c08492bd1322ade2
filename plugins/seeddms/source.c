/* seeddms source: reads one SeedDMS installation in a snapshot and emits one item per folder (parents
 * first) and one per document, each carrying its rows (docs/seeddms-facts.md 3) with the references to
 * users, groups, attribute definitions, states, workflows and transitions written as names, and the paths and
 * checksums of its versions' files. Read-only. */
#include <stdlib.h>
#include <string.h>
#include <ferry/util.h>

#include "seeddms.h"



typedef struct seeddms_src {
  seeddms_ctx *c;
  ferry_sql_txn *txn;
  json_t *names[M_NMAPS]; /* id -> name */
  json_t *tables;         /* table -> rows */
  int pending;
  int failed;
  ferry_error err;
  json_t *items;          /* [[key, body], ...] ready to emit */
  size_t next;
  size_t demand;
  int ready, ended, stopped;
} seeddms_src;

void seeddms_source_free(seeddms_ctx *c) {
  seeddms_src *s = c->src;
  if (!s) return;
  for (int i = 0; i < M_NMAPS; i++) json_decref(s->names[i]);
  json_decref(s->tables);
  json_decref(s->items);
  ferry_error_clear(&s->err);
  ferry_free(s);
  c->src = NULL;
}

static void pump(seeddms_src *s) {
  if (!s->ready || s->ended || s->stopped) return;
  while (s->demand > 0 && s->next < json_array_size(s->items)) {
    json_t *p = json_array_get(s->items, s->next++);
    json_t *body = json_array_get(p, 1);
    json_incref(body);
    ferry_emit(s->c->ins, ferry_item_new(FERRY_ITEM_RECORD, json_string_value(json_array_get(p, 0)), body));
    s->demand--;
  }
  if (s->next >= json_array_size(s->items)) {
    s->ended = 1;
    ferry_source_end(s->c->ins);
  }
}

static void fail(seeddms_src *s) {
  if (s->ended || s->stopped) return;
  s->ended = 1;
  ferry_source_fail(s->c->ins, &s->err);
}

/* Replaces a reference by {"n": name} ({"n": null, "id": old} when dangling); 0, -1 and NULL stay. */
static void name_refs(seeddms_src *s, const seeddms_table *t, json_t *row) {
  for (const seeddms_col *col = t->cols; col->name; col++) {
    int m = seeddms_ref_map(col->ref);
    if (m < 0) continue;
    const char *v = seeddms_str(row, col->name);
    if (!v || !strcmp(v, "0") || !strcmp(v, "-1")) continue;
    json_t *n = json_object_get(s->names[m], v);
    json_object_set_new(row, col->name, n ? json_pack("{s:O}", "n", n) : json_pack("{s:n, s:s}", "n", "id", v));
  }
}

static json_t *owner_get(json_t *owners, const char *key, const char *table) {
  json_t *o = json_object_get(owners, key);
  if (!o) {
    o = json_object();
    json_object_set_new(owners, key, o);
  }
  json_t *a = json_object_get(o, table);
  if (!a) {
    a = json_array();
    json_object_set_new(o, table, a);
  }
  return a;
}

/* The definitions item: users (with their role as number and, on 6.x, role name), groups with members,
 * attribute definitions, workflow states, actions, workflows (initial state by name) and transitions (by
 * workflow, state, action and next state names, with their users by login and groups by name and minusers).
 * The sink matches them by name, or creates the missing ones (option "definitions": "create"). */
static json_t *defs_item(seeddms_src *s) {
  json_t *t = s->tables, *roles = json_object(), *out = json_object();
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(t, "d:roles"), i, r) json_object_set(roles, seeddms_str(r, "id"), r);
  json_t *users = json_array();
  json_array_foreach(json_object_get(t, "d:users"), i, r) {
    json_t *u = json_deep_copy(r);
    json_object_del(u, "id");
    json_object_del(u, "homefolder"); /* set by the folder items (home_of) */
    json_t *role = json_object_get(roles, seeddms_str(r, "role"));
    json_object_set_new(u, "role", json_string(role ? seeddms_str(role, "role") : seeddms_str(r, "role")));
    if (role) json_object_set(u, "role_name", json_object_get(role, "name"));
    json_array_append_new(users, u);
  }
  json_object_set_new(out, "users", users);
  static const char *const plain[][2] = {{"groups", "d:groups"}, {"members", "d:members"}, {"attrdefs", "d:attrdefs"},
                                         {"states", "d:states"}, {"actions", "d:actions"}};
  for (size_t k = 0; k < sizeof plain / sizeof *plain; k++) {
    json_t *a = json_array();
    json_array_foreach(json_object_get(t, plain[k][1]), i, r) {
      json_t *c = json_deep_copy(r);
      json_object_del(c, "id");
      json_array_append_new(a, c);
    }
    json_object_set_new(out, plain[k][0], a);
  }
  json_t *wfs = json_array();
  json_array_foreach(json_object_get(t, "d:workflows"), i, r) {
    json_t *w = json_pack("{s:O, s:O}", "name", json_object_get(r, "name"), "initstate", json_object_get(r, "initname"));
    if (json_object_get(r, "layoutdata")) json_object_set(w, "layoutdata", json_object_get(r, "layoutdata"));
    json_array_append_new(wfs, w);
  }
  json_object_set_new(out, "workflows", wfs);
  json_t *trs = json_array();
  json_array_foreach(json_object_get(t, "d:transitions"), i, r) {
    const char *id = seeddms_str(r, "id");
    json_t *wn = json_object_get(s->names[M_WORKFLOW], seeddms_str(r, "workflow") ? seeddms_str(r, "workflow") : "");
    json_t *sn = json_object_get(s->names[M_STATE], seeddms_str(r, "state") ? seeddms_str(r, "state") : "");
    json_t *nn = json_object_get(s->names[M_STATE], seeddms_str(r, "nextstate") ? seeddms_str(r, "nextstate") : "");
    const char *an = NULL;
    size_t j;
    json_t *a;
    json_array_foreach(json_object_get(t, "d:actions"), j, a)
      if (seeddms_str(r, "action") && !strcmp(seeddms_str(a, "id"), seeddms_str(r, "action"))) an = seeddms_str(a, "name");
    if (!json_is_string(wn) || !json_is_string(sn) || !json_is_string(nn) || !an) continue; /* dangling */
    json_t *tu = json_array(), *tg = json_array();
    json_array_foreach(json_object_get(t, "d:tusers"), j, a)
      if (!strcmp(seeddms_str(a, "transition"), id)) json_array_append(tu, json_object_get(a, "login"));
    json_array_foreach(json_object_get(t, "d:tgroups"), j, a)
      if (!strcmp(seeddms_str(a, "transition"), id))
        json_array_append_new(tg, json_pack("{s:O, s:O}", "name", json_object_get(a, "grp"), "minusers",
                                            json_object_get(a, "minusers")));
    json_array_append_new(trs, json_pack("{s:O, s:O, s:s, s:O, s:O, s:o, s:o}", "workflow", wn, "state", sn, "action",
                                         an, "nextstate", nn, "maxtime", json_object_get(r, "maxtime") ?
                                         json_object_get(r, "maxtime") : json_null(), "users", tu, "groups", tg));
  }
  json_object_set_new(out, "transitions", trs);
  json_decref(roles);
  return json_pack("{s:s, s:s, s:o}", "object", "definitions", "id", "definitions", "defs", out);
}

/* Groups every row under its folder ("f<id>") or document ("d<id>"). */
static int build(seeddms_src *s) {
  seeddms_ctx *c = s->c;
  json_t *owners = json_object(), *up = json_object(); /* up: "content:<id>", "status:<id>", "run:<id>" -> doc */
  char key[96];
  for (const seeddms_table *t = seeddms_tables; t->name; t++) {
    json_t *rows = json_object_get(s->tables, t->name);
    size_t i;
    json_t *row;
    json_array_foreach(rows, i, row) {
      const char *own = NULL, *id = t->id ? seeddms_str(row, t->id) : NULL;
      const char *n = t->name;
      if (!strcmp(n, "tblFolders")) {
        const char *p = seeddms_str(row, "parent");
        if (!strcmp(id, "1") || !p || !strcmp(p, "0")) continue; /* the root exists on every target */
        snprintf(key, sizeof key, "f%s", id);
      } else if (!strcmp(n, "tblFolderAttributes")) {
        snprintf(key, sizeof key, "f%s", seeddms_str(row, "folder"));
      } else if (!strcmp(n, "tblDocuments")) {
        snprintf(key, sizeof key, "d%s", id);
      } else if (!strcmp(n, "tblDocumentAttributes") || !strcmp(n, "tblDocumentContent") ||
                 !strcmp(n, "tblWorkflowDocumentContent")) {
        snprintf(key, sizeof key, "d%s", seeddms_str(row, "document"));
      } else if (!strcmp(n, "tblDocumentStatus")) {
        snprintf(key, sizeof key, "d%s", seeddms_str(row, "documentID"));
      } else if (!strcmp(n, "tblACLs")) {
        const char *tt = seeddms_str(row, "targetType");
        snprintf(key, sizeof key, "%s%s", tt && !strcmp(tt, "1") ? "f" : "d", seeddms_str(row, "target"));
      } else {
        const char *via = !strcmp(n, "tblDocumentContentAttributes") ? "content"
                        : !strcmp(n, "tblDocumentStatusLog") ? "status" : "run";
        const char *col = !strcmp(via, "content") ? "content" : !strcmp(via, "status") ? "statusID"
                        : "workflowdocumentcontent";
        char k2[96];
        snprintf(k2, sizeof k2, "%s:%s", via, seeddms_str(row, col) ? seeddms_str(row, col) : "");
        own = json_string_value(json_object_get(up, k2));
        if (!own) {
          ferry_error_set(&s->err, FERRY_EINVAL, "seeddms: %s row %s of %s refers to %s %s, which does not exist",
                          n, id ? id : "?", ferry_sql_endpoint(c->db), via, seeddms_str(row, col) ? seeddms_str(row, col) : "NULL");
          json_decref(owners);
          json_decref(up);
          return -1;
        }
        snprintf(key, sizeof key, "%s", own);
      }
      if (t->idvar && strcmp(t->idvar, "doc") && strcmp(t->idvar, "folder")) {
        char k2[96];
        snprintf(k2, sizeof k2, "%s:%s", t->idvar, id);
        json_object_set_new(up, k2, json_string(key));
      }
      json_t *copy = json_deep_copy(row);
      name_refs(s, t, copy);
      json_array_append_new(owner_get(owners, key, n), copy);
    }
  }
  json_decref(up);
  /* the definitions first, then folders parents first (by depth of folderList, then id), then documents by id */
  s->items = json_array();
  json_array_append_new(s->items, json_pack("[s, o]", "definitions", defs_item(s)));
  json_t *folders = json_object_get(s->tables, "tblFolders");
  for (int depth = 0; depth < 64; depth++) {
    size_t i;
    json_t *row;
    json_array_foreach(folders, i, row) {
      const char *fl = seeddms_str(row, "folderList"), *id = seeddms_str(row, "id");
      int d = 0;
      for (const char *p = fl ? fl : ""; *p; p++) d += *p == ':';
      snprintf(key, sizeof key, "f%s", id);
      json_t *o = json_object_get(owners, key);
      if (d != depth || !o || !json_object_get(o, "tblFolders")) continue;
      json_t *body = json_pack("{s:s, s:s, s:O}", "object", "folder", "id", id, "tables", o);
      json_t *home = json_array(); /* users whose home folder this is: users are matched, not written */
      size_t ui;
      json_t *u;
      json_array_foreach(json_object_get(s->tables, "tblUsersHome"), ui, u) {
        const char *h = seeddms_str(u, "homefolder");
        if (h && !strcmp(h, id)) json_array_append(home, json_object_get(u, "login"));
      }
      json_object_set_new(body, "home_of", home);
      char *k = ferry_asprintf("folder:%s", id);
      json_array_append_new(s->items, json_pack("[s, o]", k, body));
      ferry_free(k);
    }
  }
  size_t i;
  json_t *row;
  json_array_foreach(json_object_get(s->tables, "tblDocuments"), i, row) {
    const char *id = seeddms_str(row, "id");
    snprintf(key, sizeof key, "d%s", id);
    json_t *o = json_object_get(owners, key);
    json_t *files = json_array();
    size_t j;
    json_t *v;
    json_array_foreach(json_object_get(o, "tblDocumentContent"), j, v) {
      char *path = seeddms_version_path(c, strtoll(id, NULL, 10), seeddms_str(v, "version"), seeddms_str(v, "fileType"));
      json_array_append_new(files, json_pack("{s:s, s:s?, s:s, s:s?}", "version", seeddms_str(v, "version"),
                                             "fileType", seeddms_str(v, "fileType"), "local_path", path,
                                             "checksum", seeddms_str(v, "checksum")));
      ferry_free(path);
    }
    json_t *body = json_pack("{s:s, s:s, s:s?, s:s, s:O, s:o}", "object", "document", "id", id, "name",
                             seeddms_str(row, "name"), "layout", c->detected == SEEDDMS_LAYOUT_51 ? "5.1" : "6.0",
                             "tables", o, "files", files);
    char *k = ferry_asprintf("document:%s", id);
    json_array_append_new(s->items, json_pack("[s, o]", k, body));
    ferry_free(k);
  }
  json_decref(owners);
  return 0;
}

static void loaded(seeddms_src *s) {
  if (s->failed) {
    fail(s);
    return;
  }
  if ((s->c->detected == SEEDDMS_LAYOUT_51 && seeddms_runs_from_51(s->tables, &s->err) < 0) || build(s) < 0) {
    fail(s);
    return;
  }
  ferry_source_total(s->c->ins, (int64_t)json_array_size(s->items));
  s->ready = 1;
  pump(s);
}

static void rolled_back(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)status, (void)info, (void)err;
  loaded(arg);
}

static void one_done(seeddms_src *s) {
  if (--s->pending > 0) return;
  if (s->txn && ferry_sql_rollback(s->txn, rolled_back, s) == 0) return;
  loaded(s);
}

typedef struct q {
  seeddms_src *s;
  int map;            /* M_* or -1 */
  const char *table;
} q;

static void q_done(void *arg, json_t *rows, const ferry_error *err) {
  q *x = arg;
  seeddms_src *s = x->s;
  if (!rows) {
    if (!s->failed) {
      s->failed = 1;
      ferry_error_set(&s->err, err->code, "seeddms: reading %s from %s failed: %s",
                      x->table ? x->table : "the definitions", ferry_sql_endpoint(s->c->db), err->message);
    }
  } else if (x->map >= 0) {
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
      char *n = seeddms_row_name(x->map, r);
      json_t *name = n ? json_string(n) : json_null();
      ferry_free(n);
      json_object_set_new(s->names[x->map], seeddms_str(r, "id"), name);
    }
  } else {
    json_object_set(s->tables, x->table, rows);
  }
  ferry_free(x);
  one_done(s);
}

static void queue(seeddms_src *s, const char *sql, int map, const char *table) {
  q *x = calloc(1, sizeof *x);
  x->s = s;
  x->map = map;
  x->table = table;
  s->pending++;
  if (seeddms_collect(s->c->db, s->txn, sql, 0, NULL, q_done, x) < 0) {
    ferry_error e = {FERRY_EINTERNAL, "seeddms: could not queue a query", NULL};
    q_done(x, NULL, &e);
  }
}

static void began(void *arg, int status, ferry_sql_txn *txn, const ferry_error *err) {
  seeddms_src *s = arg;
  if (status) {
    ferry_error_set(&s->err, status, "seeddms: cannot open a snapshot of %s: %s", ferry_sql_endpoint(s->c->db),
                    err ? err->message : "");
    fail(s);
    return;
  }
  s->txn = txn;
  s->pending = 1; /* held until everything is queued */
  for (int m = 0; m < M_NMAPS; m++) queue(s, seeddms_name_sql[m], m, NULL);
  int old = s->c->detected == SEEDDMS_LAYOUT_51;
  if (old) { /* 5.1: the runs are rebuilt from these (source_runs.c) */
    static const char *const x[] = {"x:tblWorkflowTransitions", "SELECT * FROM tblWorkflowTransitions",
        "x:tblWorkflowTransitionUsers", "SELECT * FROM tblWorkflowTransitionUsers",
        "x:tblWorkflowTransitionGroups", "SELECT * FROM tblWorkflowTransitionGroups",
        "x:tblGroupMembers", "SELECT * FROM tblGroupMembers", "x:tblWorkflowStates", "SELECT * FROM tblWorkflowStates",
        "x:tblWorkflows", "SELECT * FROM tblWorkflows", "x:tblWorkflowLog", "SELECT * FROM tblWorkflowLog ORDER BY id",
        "x:tblWorkflowDocumentContent", "SELECT * FROM tblWorkflowDocumentContent", NULL};
    for (size_t i = 0; x[i]; i += 2) queue(s, x[i + 1], -1, x[i]);
  }
  for (const seeddms_table *t = seeddms_tables; t->name; t++) {
    if (old && (!strcmp(t->name, "tblWorkflowDocumentContent") || !strcmp(t->name, "tblWorkflowLog"))) continue;
    char *sql = t->id ? ferry_asprintf("SELECT * FROM %s ORDER BY %s", t->name, t->id)
                      : ferry_asprintf("SELECT * FROM %s", t->name);
    queue(s, sql, -1, t->name);
    ferry_free(sql);
  }
  queue(s, "SELECT login, homefolder FROM tblUsers", -1, "tblUsersHome");
  /* the definitions item (defs_item()) */
  static const char *const d[] = {
      "d:users", "SELECT * FROM tblUsers ORDER BY id", "d:groups", "SELECT * FROM tblGroups ORDER BY id",
      "d:members", "SELECT g.name AS grp, u.login AS login, m.manager AS manager FROM tblGroupMembers m "
                   "JOIN tblGroups g ON g.id = m.groupID JOIN tblUsers u ON u.id = m.userID ORDER BY g.id, u.id",
      "d:attrdefs", "SELECT * FROM tblAttributeDefinitions ORDER BY id",
      "d:states", "SELECT * FROM tblWorkflowStates ORDER BY id", "d:actions", "SELECT * FROM tblWorkflowActions ORDER BY id",
      "d:workflows", "SELECT w.*, s.name AS initname FROM tblWorkflows w JOIN tblWorkflowStates s ON s.id = w.initstate "
                     "ORDER BY w.id",
      "d:transitions", "SELECT * FROM tblWorkflowTransitions ORDER BY id",
      "d:tusers", "SELECT x.transition AS transition, u.login AS login FROM tblWorkflowTransitionUsers x "
                  "JOIN tblUsers u ON u.id = x.userid ORDER BY x.id",
      "d:tgroups", "SELECT x.transition AS transition, g.name AS grp, x.minusers AS minusers FROM "
                   "tblWorkflowTransitionGroups x JOIN tblGroups g ON g.id = x.groupid ORDER BY x.id",
      NULL};
  for (size_t i = 0; d[i]; i += 2) queue(s, d[i + 1], -1, d[i]);
  if (!old) queue(s, "SELECT * FROM tblRoles", -1, "d:roles");
  one_done(s);
}

static void detected(void *arg, int status, const ferry_error *err) {
  seeddms_src *s = arg;
  if (status) {
    ferry_error_set(&s->err, status, "%s", err->message);
    fail(s);
    return;
  }
  if (ferry_sql_begin(s->c->db, FERRY_SQL_SNAPSHOT, NULL, began, s) < 0) {
    ferry_error_set(&s->err, FERRY_EINTERNAL, "seeddms: cannot start a snapshot of %s", ferry_sql_endpoint(s->c->db));
    fail(s);
  }
}

static int src_start(ferry_instance *ins, ferry_error *err) {
  (void)err;
  seeddms_ctx *c = ferry_instance_ctx(ins);
  seeddms_src *s = calloc(1, sizeof *s);
  s->c = c;
  c->src = s;
  for (int m = 0; m < M_NMAPS; m++) s->names[m] = json_object();
  s->tables = json_object();
  seeddms_detect(c, detected, s);
  return 0;
}

static void src_demand(ferry_instance *ins, size_t n) {
  seeddms_ctx *c = ferry_instance_ctx(ins);
  c->src->demand += n;
  pump(c->src);
}

static void src_stop(ferry_instance *ins) {
  seeddms_ctx *c = ferry_instance_ctx(ins);
  if (c->src) c->src->stopped = 1;
}

const ferry_source_ops seeddms_source_ops = {
    .struct_size = sizeof(ferry_source_ops), .emits = FERRY_ITEM_RECORD,
    .start = src_start, .demand = src_demand, .stop = src_stop,
};
