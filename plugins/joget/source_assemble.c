/* joget source: assembling one instance's body: variables; in HTTP mode its definition, open
 * activities and sub-flow siblings; the finished item. */
#include "source.h"

/* ---- instance assembly -------------------------------------------------------------------------------- */
typedef struct asm_t {
  joget_src *s;
  json_t *body; /* the item body being built */
  json_t *row;  /* listing row */
  int pending;
  int top;   /* a listed instance (1) or a child / sibling probe (0) */
  int probe; /* only activities wanted (sibling check) */
  int gone;  /* instance vanished meanwhile */
  ferry_error err;
  int act_start;        /* activity list paging */
  json_t *siblings;     /* rows with the same record id (HTTP mode) */
  struct asm_t *parent; /* for children and probes */
  int is_child;         /* decided: this listed instance is a sub-flow child */
  void (*done)(struct asm_t *a);
} asm_t;

static void asm_check(asm_t *a);

static void asm_err(asm_t *a, const ferry_error *e) {
  if (!a->err.code) ferry_error_copy(&a->err, e);
}

static asm_t *asm_new(joget_src *s, json_t *body, json_t *row, int top) {
  asm_t *a = calloc(1, sizeof *a);
  if (!a) abort();
  a->s = s;
  a->body = body;
  a->row = json_incref(row);
  a->top = top;
  return a;
}

static void asm_free(asm_t *a) {
  json_decref(a->body);
  json_decref(a->row);
  json_decref(a->siblings);
  ferry_error_clear(&a->err);
  free(a);
}

static int asm_get(asm_t *a, const char *path, const char *const *params, joget_cb cb) {
  ferry_error e = FERRY_ERROR_INIT;
  a->pending++;
  if (joget_get(a->s->c, path, params, cb, a, &e) < 0) {
    a->pending--;
    asm_err(a, &e);
    ferry_error_clear(&e);
    return -1;
  }
  return 0;
}

/* Copies a workflow/variable/list answer ({"variable": {id: value} | [{id: value}, ...]}) into
 * body.variables; null values become "" as Joget prints them. */
static void merge_vars(json_t *body, json_t *doc) {
  json_t *vars = json_object_get(body, "variables");
  json_t *list = joget_list(doc, "variable");
  size_t i;
  json_t *v;
  json_array_foreach(list, i, v) {
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) {
      json_object_set_new(vars, k, json_is_null(x) ? json_string("") : json_incref(x));
    }
  }
  json_decref(list);
}

static void on_vars(void *arg, json_t *doc, const ferry_error *err) {
  asm_t *a = arg;
  a->pending--;
  if (err)
    asm_err(a, err);
  else {
    merge_vars(a->body, doc);
  }
  asm_check(a);
}

static void fetch_vars(asm_t *a) {
  char *pid = joget_seg(joget_str(a->body, "id"));
  char *path = ferry_asprintf("workflow/variable/list/%s", pid);
  asm_get(a, path, NULL, on_vars);
  free(path);
  free(pid);
}

/* ---- SQL mode: children bodies fetch their variables too ---- */
typedef struct child_t {
  asm_t *owner;
  json_t *body; /* borrowed from the owner's tree */
} child_t;

static void on_child_vars(void *arg, json_t *doc, const ferry_error *err) {
  child_t *ch = arg;
  asm_t *a = ch->owner;
  a->pending--;
  if (err)
    asm_err(a, err);
  else {
    merge_vars(ch->body, doc);
  }
  free(ch);
  asm_check(a);
}

static void fetch_child_vars(asm_t *a, json_t *body) {
  json_t *subs = json_object_get(json_object_get(body, "extra"), "subflows");
  size_t i;
  json_t *sf;
  json_array_foreach(subs, i, sf) {
    size_t j;
    json_t *ch;
    json_array_foreach(json_object_get(sf, "children"), j, ch) {
      child_t *c = calloc(1, sizeof *c);
      if (!c) abort();
      c->owner = a;
      c->body = ch;
      char *pid = joget_seg(joget_str(ch, "id"));
      char *path = ferry_asprintf("workflow/variable/list/%s", pid);
      ferry_error e = FERRY_ERROR_INIT;
      a->pending++;
      if (joget_get(a->s->c, path, NULL, on_child_vars, c, &e) < 0) {
        a->pending--;
        asm_err(a, &e);
        free(c);
      }
      ferry_error_clear(&e);
      free(path);
      free(pid);
      fetch_child_vars(a, ch);
    }
  }
}

/* ---- HTTP mode: definition, activities, siblings ---- */
static void on_view(void *arg, json_t *doc, const ferry_error *err) {
  asm_t *a = arg;
  a->pending--;
  if (err)
    asm_err(a, err);
  else if (!doc || !joget_str(doc, "processDefId"))
    a->gone = 1; /* unknown id: the instance is gone */
  else {
    const char *def = joget_str(doc, "processDefId");
    char *app, *ver, *proc;
    json_object_set_new(a->body, "definition", json_string(def));
    if (!joget_def_split(def, &app, &ver, &proc)) {
      json_object_set_new(a->body, "app", json_string(app));
      json_object_set_new(a->body, "package_version", json_string(ver));
      json_object_set_new(a->body, "process", json_string(proc));
      free(app);
      free(ver);
      free(proc);
    }
    if (!json_object_get(a->body, "requester") && joget_str(doc, "requester"))
      json_object_set_new(a->body, "requester", json_string(joget_str(doc, "requester")));
    if (joget_str(doc, "name"))
      json_object_set_new(json_object_get(a->body, "extra"), "name", json_string(joget_str(doc, "name")));
  }
  asm_check(a);
}

typedef struct actv_t {
  asm_t *a;
  json_t *act; /* borrowed: element of body.activities */
} actv_t;

static void on_act_view(void *arg, json_t *doc, const ferry_error *err) {
  actv_t *v = arg;
  asm_t *a = v->a;
  a->pending--;
  if (err)
    asm_err(a, err);
  else if (doc) {
    json_t *act = v->act;
    if (joget_str(doc, "activityDefId"))
      json_object_set_new(act, "def_id", json_string(joget_str(doc, "activityDefId")));
    joget_act_view(act, doc);
    const char *due = joget_str(doc, "dueDate");
    if (due && *due && strcmp(due, "-")) json_object_set_new(act, "due", json_string(due));
  } else {
    json_object_set_new(v->act, "_gone", json_true()); /* finished meanwhile */
  }
  free(v);
  asm_check(a);
}

static void fetch_acts(asm_t *a);

static void on_act_list(void *arg, json_t *doc, const ferry_error *err) {
  asm_t *a = arg;
  a->pending--;
  if (err) {
    asm_err(a, err);
    asm_check(a);
    return;
  }
  json_t *rows = joget_list(doc, "data");
  json_t *acts = json_object_get(a->body, "activities");
  size_t i;
  json_t *r;
  json_array_foreach(rows, i, r) {
    const char *st = joget_str(r, "state");
    const char *id = joget_str(r, "id");
    if (!id || !st || strncmp(st, "open", 4)) continue;
    json_t *act = json_pack("{s:s, s:s, s:s?, s:s, s:[], s:n}", "def_id", "", "id", id, "name",
                            joget_str(r, "name"), "state", st, "assignees", "accepted_by");
    json_array_append_new(acts, act);
    actv_t *v = calloc(1, sizeof *v);
    if (!v) abort();
    v->a = a;
    v->act = act;
    char *aid = joget_seg(id);
    char *path = ferry_asprintf("monitoring/activity/view/%s", aid);
    ferry_error e = FERRY_ERROR_INIT;
    a->pending++;
    if (joget_get(a->s->c, path, NULL, on_act_view, v, &e) < 0) {
      a->pending--;
      asm_err(a, &e);
      free(v);
    }
    ferry_error_clear(&e);
    free(path);
    free(aid);
  }
  int64_t total = json_integer_value(json_object_get(doc, "total"));
  a->act_start += 100;
  if (total > a->act_start && json_array_size(rows) > 0) fetch_acts(a);
  json_decref(rows);
  asm_check(a);
}

static void fetch_acts(asm_t *a) {
  char st[32];
  snprintf(st, sizeof st, "%d", a->act_start);
  const char *params[] = {
      "processId", joget_str(a->body, "id"), "rows", "100", "start", st, "sort", "id", "desc", "false", NULL};
  asm_get(a, "monitoring/activity/list", params, on_act_list);
}

static void on_siblings(void *arg, json_t *doc, const ferry_error *err) {
  asm_t *a = arg;
  a->pending--;
  if (err)
    asm_err(a, err);
  else {
    json_t *rows = joget_list(doc, "data");
    const char *rid = joget_str(a->body, "record_id"), *id = joget_str(a->body, "id");
    a->siblings = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
      const char *rrid = joget_str(r, "recordId"), *rtid = joget_str(r, "id");
      if (rrid && rtid && rid && !strcmp(rrid, rid) && strcmp(rtid, id)) json_array_append(a->siblings, r);
    }
    json_decref(rows);
  }
  asm_check(a);
}

static json_t *new_body(json_t *row) {
  const char *id = joget_str(row, "id");
  const char *rid = joget_str(row, "recordId");
  json_t *b = json_pack("{s:s, s:s, s:{}, s:n, s:[], s:{s:[], s:[], s:b}}", "id", id, "record_id",
                        rid ? rid : id, "variables", "parent", "activities", "extra", "subflows", "joins",
                        "joins_read", 0);
  if (joget_str(row, "requesterId"))
    json_object_set_new(b, "requester", json_string(joget_str(row, "requesterId")));
  if (joget_str(row, "startedTime")) json_object_set_new(b, "started", json_string(joget_str(row, "startedTime")));
  if (joget_str(row, "name"))
    json_object_set_new(json_object_get(b, "extra"), "name", json_string(joget_str(row, "name")));
  if (joget_str(row, "state"))
    json_object_set_new(json_object_get(b, "extra"), "state", json_string(joget_str(row, "state")));
  return b;
}

/* HTTP mode: start reading one instance (top: also its siblings by record id; probe: activities only). */
static void asm_http_start(asm_t *a) {
  char *pid = joget_seg(joget_str(a->body, "id"));
  if (!a->probe) {
    char *path = ferry_asprintf("monitoring/process/view/%s", pid);
    asm_get(a, path, NULL, on_view);
    free(path);
    fetch_vars(a);
  }
  fetch_acts(a);
  if (a->top) {
    const char *params[] = {
        "recordId", joget_str(a->body, "record_id"), "sort", "id", "desc", "false", "rows", "50", NULL};
    asm_get(a, "console/monitor/running/list", params, on_siblings);
  }
  free(pid);
  asm_check(a);
}

static int is_subflow_act(json_t *act) {
  const char *st = joget_str(act, "state");
  return st && !strcmp(st, "open.running") && json_array_size(json_object_get(act, "assignees")) == 0 &&
         !json_is_string(json_object_get(act, "accepted_by"));
}

static int has_subflow_act(json_t *body, const char **def) {
  size_t i;
  json_t *act;
  json_array_foreach(json_object_get(body, "activities"), i, act)
    if (is_subflow_act(act)) {
      if (def) *def = joget_str(act, "def_id");
      return 1;
    }
  return 0;
}

int joget_wanted(joget_ctx_t *c, json_t *body) {
  const char *def = joget_str(body, "definition"), *app = joget_str(body, "app"), *proc = joget_str(body, "process");
  if (!def) return 0;
  if (c->apps && c->apps[0]) {
    int ok = 0;
    for (char **p = c->apps; *p; p++) ok |= app && !strcmp(*p, app);
    if (!ok) return 0;
  }
  if (c->processes && c->processes[0]) {
    int ok = 0;
    for (char **p = c->processes; *p; p++) {
      char *alt = ferry_strdup(*p);
      for (char *q = alt; *q; q++)
        if (*q == ':') *q = '#';
      ok |= (proc && !strcmp(alt, proc)) || !strcmp(alt, def);
      free(alt);
    }
    if (!ok) return 0;
  }
  return 1;
}

/* Removes helper fields, activities that finished meanwhile. */
static void tidy(json_t *body) {
  json_t *acts = json_object_get(body, "activities");
  for (size_t i = json_array_size(acts); i-- > 0;)
    if (json_object_get(json_array_get(acts, i), "_gone")) json_array_remove(acts, i);
}

static void asm_finish_top(asm_t *a);

/* HTTP mode, children / probes of a top instance finishing */
static void child_done(asm_t *ch) {
  asm_t *a = ch->parent;
  a->pending--;
  if (ch->err.code)
    asm_err(a, &ch->err);
  else if (!ch->gone) {
    tidy(ch->body);
    if (ch->probe) {
      if (has_subflow_act(ch->body, NULL)) a->is_child = 1;
    } else {
      /* attach to the parent's (first) sub-flow activity */
      const char *def = NULL;
      has_subflow_act(a->body, &def);
      json_t *subs = json_object_get(json_object_get(a->body, "extra"), "subflows");
      json_t *entry = json_array_get(subs, 0);
      if (!entry) {
        entry = json_pack("{s:s, s:[]}", "activity_def_id", def ? def : "", "children");
        json_array_append_new(subs, entry);
      }
      json_object_set(ch->body, "parent", json_object_get(a->body, "id"));
      json_object_set_new(ch->body, "record_id", json_string(joget_str(a->body, "record_id")));
      json_array_append(json_object_get(entry, "children"), ch->body);
    }
  }
  asm_free(ch);
  asm_check(a);
}

static void siblings_phase(asm_t *a) {
  /* HTTP mode only, once: decide child/parent from the siblings (same record id) */
  json_t *sib = a->siblings;
  a->siblings = NULL;
  const char *myname = joget_str(json_object_get(a->body, "extra"), "name");
  int parent = has_subflow_act(a->body, NULL);
  a->pending++; /* hold: children may complete while they are started */
  size_t i;
  json_t *r;
  json_array_foreach(sib, i, r) {
    const char *name = joget_str(r, "name");
    if (myname && name && !strcmp(myname, name)) continue; /* same process: an independent instance */
    json_t *b = new_body(r);
    asm_t *ch = asm_new(a->s, b, r, 0);
    ch->parent = a;
    ch->done = child_done;
    ch->probe = !parent;
    a->pending++;
    asm_http_start(ch);
  }
  json_decref(sib);
  a->pending--;
  asm_check(a);
}

static void asm_check(asm_t *a) {
  if (a->pending > 0) return;
  if (!a->err.code && !a->gone && a->siblings) {
    siblings_phase(a);
    return;
  }
  if (a->done)
    a->done(a);
  else
    asm_finish_top(a);
}

static void asm_finish_top(asm_t *a) {
  joget_src *s = a->s;
  s->in_flight--;
  if (s->stopped || s->failed) {
    asm_free(a);
    return;
  }
  if (a->err.code) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_copy(&e, &a->err);
    ferry_error_prefix(&e, "joget source: instance %s", joget_str(a->body, "id"));
    asm_free(a);
    joget_src_fail(s, &e);
    ferry_error_clear(&e);
    return;
  }
  if (a->gone || a->is_child || !joget_wanted(s->c, a->body)) {
    ferry_log(s->ins, FERRY_LOG_DEBUG, "instance %s: %s", joget_str(a->body, "id"),
              a->gone       ? "finished meanwhile"
              : a->is_child ? "a sub-flow child: travels inside its parent"
                            : "not selected");
    asm_free(a);
    joget_src_pump(s);
    return;
  }
  tidy(a->body);
  ferry_item *it = ferry_item_new(FERRY_ITEM_INSTANCE, joget_str(a->body, "id"), json_incref(a->body));
  asm_free(a);
  if (s->want > 0) s->want--;
  ferry_emit(s->ins, it);
  joget_src_pump(s);
}

void joget_start_assembly(joget_src *s, json_t *entry) {
  s->in_flight++;
  if (s->c->db) {
    asm_t *a = asm_new(s, json_incref(entry), NULL, 1);
    fetch_vars(a);
    fetch_child_vars(a, a->body);
    asm_check(a);
  } else {
    asm_t *a = asm_new(s, new_body(entry), entry, 1);
    asm_http_start(a);
  }
}
