/* joget source: the running top-level instances of a Joget server as FERRY_ITEM_INSTANCE items.
 *
 * Listing: /web/json/console/monitor/running/list (record ids included), one app at a time (apps option)
 * or all, sorted by id (sort and desc always together), paged with start/rows. Pages overlap by an eighth
 * and ids of the previous page are skipped, so an instance finishing on a live server while we page does not
 * shift the next page past an unread row.
 *
 * Details, two ways:
 * - with dsn (recommended; exact): per page, in one REPEATABLE READ READ ONLY transaction, the page's
 *   instances and their running sub-flow descendants (shkprocesses.activityrequesterprocessid), their open
 *   activities (shkactivities) and valid assignments (shkassignmentstable). Instances that are sub-flow
 *   children are dropped from the listing: they travel inside their parent.
 * - HTTP only: monitoring/process/view (definition), monitoring/activity/list?rows=100 (paged) and
 *   monitoring/activity/view of each open activity (definition id, assignees). Sub-flows cannot be told
 *   from the JSON API: an instance with an open activity that is running and has no assignee (a sub-flow
 *   activity) takes as its children the other running instances with the same record id and another
 *   process name; such an instance is dropped when listed on its own. Costs one more listing call per
 *   instance; see docs/plugins/joget.md.
 * Variables always come from workflow/variable/list (the JSON API knows Shark's types; the tables do not).
 *
 * Demand-driven: at most one page of rows and as many instances as the core asked for are held, so memory
 * stays flat whatever the number of instances. The source only reads: GET calls, read-only transactions.
 */
#include <stdlib.h>
#include <string.h>

#include "joget.h"

typedef struct joget_src {
  joget_ctx_t *c;
  ferry_instance *ins;
  int stopped, ended, failed;
  size_t want;      /* asked for and not yet emitted */
  size_t in_flight; /* instances being assembled */
  size_t max_flight;
  /* listing */
  size_t app_idx;  /* next app in c->apps */
  const char *app; /* app being listed (NULL: all) */
  int64_t next_start;
  int app_active; /* an app (or all) is being listed */
  int app_done;   /* the current app's listing reached its end */
  int list_done;  /* every app listed */
  int listing;    /* a page request or its SQL batch is in flight */
  json_t *rows;   /* entries waiting to be assembled */
  size_t row_pos;
  json_t *prev_ids; /* ids of the previous page: {id: true} */
  int total_sent;
  /* SQL batch of the current page */
  json_t *batch_page; /* rows of the page */
  json_t *batch_tree, *batch_acts, *batch_asg, *batch_joins, *batch_recs;
  int caps;          /* 0 unknown, 1 known: which Shark tables the database has (has_joins, has_deadlines) */
  int caps_wait;     /* a batch waits for the capability check */
  int has_joins;     /* shkandjointable exists (every Joget database has it) */
  int has_deadlines; /* shkdeadlines exists */
  int batch_err_set;
  ferry_error batch_err;
  int batch_tries;
  uv_timer_t timer;
  int timer_on;
} joget_src;

static void src_pump(joget_src *s);

static void src_fail(joget_src *s, const ferry_error *e) {
  if (s->failed || s->stopped) return;
  s->failed = 1;
  ferry_source_fail(s->ins, e);
}

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
  char *path = joget_asprintf("workflow/variable/list/%s", pid);
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
      char *path = joget_asprintf("workflow/variable/list/%s", pid);
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
    if (joget_str(doc, "state")) json_object_set_new(act, "state", json_string(joget_str(doc, "state")));
    json_t *as = joget_list(doc, "assignee");
    json_object_set_new(act, "assignees", as);
    const char *acc = joget_str(doc, "acceptedUser");
    const char *st = joget_str(act, "state");
    if (!acc && st && !strcmp(st, "open.running") && json_array_size(as) == 1)
      acc = json_string_value(json_array_get(as, 0)); /* accepting leaves only the accepter's assignment */
    json_object_set_new(act, "accepted_by", acc ? json_string(acc) : json_null());
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
    char *path = joget_asprintf("monitoring/activity/view/%s", aid);
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
    char *path = joget_asprintf("monitoring/process/view/%s", pid);
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

static int wanted(joget_ctx_t *c, json_t *body) {
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
      char *alt = joget_strdup(*p);
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
    src_fail(s, &e);
    ferry_error_clear(&e);
    return;
  }
  if (a->gone || a->is_child || !wanted(s->c, a->body)) {
    ferry_log(s->ins, FERRY_LOG_DEBUG, "instance %s: %s", joget_str(a->body, "id"),
              a->gone       ? "finished meanwhile"
              : a->is_child ? "a sub-flow child: travels inside its parent"
                            : "not selected");
    asm_free(a);
    src_pump(s);
    return;
  }
  tidy(a->body);
  ferry_item *it = ferry_item_new(FERRY_ITEM_INSTANCE, joget_str(a->body, "id"), json_incref(a->body));
  asm_free(a);
  if (s->want > 0) s->want--;
  ferry_emit(s->ins, it);
  src_pump(s);
}

/* ---- SQL batch of one page ------------------------------------------------------------------------------
 */
#define TREE_CTE                                                                             \
  "WITH RECURSIVE tree AS ("                                                                 \
  " SELECT p.id, p.pdefname, p.resourcerequesterid, p.activityrequesterprocessid AS parent," \
  " p.activityrequesterid AS parent_act, p.created, p.name, 0 AS depth FROM shkprocesses p"  \
  " WHERE p.id IN (SELECT json_array_elements_text($1::json))"                               \
  " UNION ALL SELECT c.id, c.pdefname, c.resourcerequesterid, c.activityrequesterprocessid," \
  " c.activityrequesterid, c.created, c.name, t.depth + 1 FROM shkprocesses c JOIN tree t"   \
  " ON c.activityrequesterprocessid = t.id WHERE c.state IN (1000000, 1000002, 1000004) AND t.depth < 20) "

/* A child on the page is also reached from its parent (depth > 0): keep its deepest row. */
static const char *const sql_tree = TREE_CTE
    "SELECT * FROM (SELECT DISTINCT ON (t.id) t.id, t.pdefname, t.resourcerequesterid, t.parent,"
    " t.parent_act, pa.activitydefinitionid, t.depth, COALESCE(l.originprocessid, t.id), ap.appversion,"
    " t.name, t.created FROM tree t LEFT JOIN shkactivities pa ON pa.id = t.parent_act"
    " LEFT JOIN wf_process_link l ON l.processid = t.id"
    " LEFT JOIN app_package ap ON ap.packageid = split_part(t.pdefname, '#', 1)"
    " AND ap.packageversion::text = split_part(t.pdefname, '#', 2)"
    " ORDER BY t.id, t.depth DESC) x ORDER BY 7, 11, 1";
/* Open activities; limittime is Shark's deadline of the activity (epoch ms; 0 or absurdly far = none), and
 * the second variant counts its pending rows in shkdeadlines (docs/joget-facts.md: deadlines). */
static const char *const sql_acts = TREE_CTE
    "SELECT a.processid, a.id, a.activitydefinitionid, a.name, s.name, a.limittime, 0 FROM shkactivities a"
    " JOIN (SELECT DISTINCT id FROM tree) t ON a.processid = t.id JOIN shkactivitystates s ON s.oid = a.state"
    " WHERE s.name LIKE 'open.%' ORDER BY a.processid, a.activated, a.id";
static const char *const sql_acts_dl = TREE_CTE
    "SELECT a.processid, a.id, a.activitydefinitionid, a.name, s.name, a.limittime,"
    " (SELECT count(*) FROM shkdeadlines d WHERE d.activity = a.oid AND NOT d.isexecuted) FROM shkactivities a"
    " JOIN (SELECT DISTINCT id FROM tree) t ON a.processid = t.id JOIN shkactivitystates s ON s.oid = a.state"
    " WHERE s.name LIKE 'open.%' ORDER BY a.processid, a.activated, a.id";
/* Arrivals at AND-joins that still wait (Shark's SHKAndJoinTable: one row per transition followed into the
 * join; activitydefinitionid = the join, activity = the activity that arrived). */
static const char *const sql_joins = TREE_CTE
    "SELECT p.id, j.activitydefinitionid, a.id, a.activitydefinitionid, COALESCE(a.resourceid, ''),"
    " a.laststatetime FROM shkandjointable j JOIN shkprocesses p ON p.oid = j.process"
    " JOIN (SELECT DISTINCT id FROM tree) t ON t.id = p.id JOIN shkactivities a ON a.oid = j.activity"
    " ORDER BY p.id, j.activitydefinitionid, j.cnt";
/* The form tables of the instance's app version that hold its record on the source (table name =
 * app_fd_ + the form's table property, or its id when that is empty; tables are created lazily, so a
 * missing one is skipped): the sink refuses to start an instance whose record did not reach the target. */
static const char *const sql_recs = TREE_CTE
    "SELECT x.id, min(x.formid), x.tbl FROM (SELECT t.id, f.formid,"
    " 'app_fd_' || COALESCE(NULLIF(f.tablename, ''), f.formid) AS tbl, t.rid FROM (SELECT DISTINCT t.id,"
    " COALESCE(l.originprocessid, t.id) AS rid, split_part(t.pdefname, '#', 1) AS app, ap.appversion"
    " FROM tree t LEFT JOIN wf_process_link l ON l.processid = t.id LEFT JOIN app_package ap"
    " ON ap.packageid = split_part(t.pdefname, '#', 1) AND ap.packageversion::text = split_part(t.pdefname, '#', 2)"
    " WHERE t.depth = 0) t JOIN app_form f ON f.appid = t.app AND f.appversion = t.appversion) x"
    " WHERE CASE WHEN to_regclass(quote_ident(x.tbl)) IS NULL THEN false ELSE (xpath('/row/c/text()',"
    " query_to_xml(format('SELECT count(*) AS c FROM %I WHERE id = %L', x.tbl, x.rid), false, true, '')))[1]"
    "::text::int > 0 END GROUP BY x.id, x.tbl ORDER BY x.id, x.tbl";
static const char *const sql_asg = TREE_CTE
    "SELECT s.activityid, s.resourceid, s.isaccepted FROM shkassignmentstable s"
    " JOIN shkactivities a ON a.id = s.activityid JOIN (SELECT DISTINCT id FROM tree) t ON a.processid = t.id"
    " WHERE s.isvalid AND a.state IN (1000001, 1000003, 1000005) ORDER BY s.activityid, s.cnt";

static json_t *pg_rows(PGresult *res) {
  json_t *rows = json_array();
  int nf = PQnfields(res);
  for (int i = 0; i < PQntuples(res); i++) {
    json_t *r = json_array();
    for (int f = 0; f < nf; f++)
      json_array_append_new(r, PQgetisnull(res, i, f) ? json_null() : json_string(PQgetvalue(res, i, f)));
    json_array_append_new(rows, r);
  }
  return rows;
}

static const char *cell(json_t *row, size_t i) { return json_string_value(json_array_get(row, i)); }

static void batch_retry(uv_timer_t *t);
static void src_build_page(joget_src *s);

static void batch_op(void *arg, int status, PGresult *res, const ferry_error *err, json_t **slot) {
  joget_src *s = arg;
  if (status) {
    if (!s->batch_err_set) {
      s->batch_err_set = 1;
      ferry_error_copy(&s->batch_err, err);
    }
    return;
  }
  if (slot) {
    json_decref(*slot);
    *slot = pg_rows(res);
  }
}

static void on_begin(void *arg, int status, PGresult *res, const ferry_error *err) {
  batch_op(arg, status, res, err, NULL);
}
static void on_tree(void *arg, int status, PGresult *res, const ferry_error *err) {
  batch_op(arg, status, res, err, &((joget_src *)arg)->batch_tree);
}
static void on_acts(void *arg, int status, PGresult *res, const ferry_error *err) {
  batch_op(arg, status, res, err, &((joget_src *)arg)->batch_acts);
}
static void on_asg(void *arg, int status, PGresult *res, const ferry_error *err) {
  batch_op(arg, status, res, err, &((joget_src *)arg)->batch_asg);
}
static void on_joins(void *arg, int status, PGresult *res, const ferry_error *err) {
  batch_op(arg, status, res, err, &((joget_src *)arg)->batch_joins);
}
static void on_recs(void *arg, int status, PGresult *res, const ferry_error *err) {
  batch_op(arg, status, res, err, &((joget_src *)arg)->batch_recs);
}

static void on_commit(void *arg, int status, PGresult *res, const ferry_error *err) {
  joget_src *s = arg;
  batch_op(arg, status, res, err, NULL);
  if (s->stopped || s->failed) {
    s->listing = 0;
    ferry_error_clear(&s->batch_err);
    return;
  }
  if (s->batch_err_set) {
    if (s->batch_err.code == FERRY_ETRANSIENT && s->batch_tries < 8) {
      uint64_t delay = 100u << s->batch_tries;
      if (delay > 5000) delay = 5000;
      ferry_log(s->ins, FERRY_LOG_WARN, "reading a page from the database failed, retrying in %llu ms: %s",
                (unsigned long long)delay, s->batch_err.message ? s->batch_err.message : "");
      if (!s->timer_on) {
        uv_timer_init(ferry_instance_loop(s->ins), &s->timer);
        s->timer.data = s;
        s->timer_on = 1;
      }
      uv_timer_start(&s->timer, batch_retry, delay, 0);
      return;
    }
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_copy(&e, &s->batch_err);
    ferry_error_prefix(&e, "joget source %s: reading instances from the database (dsn)", s->c->host_label);
    s->listing = 0;
    src_fail(s, &e);
    ferry_error_clear(&e);
    return;
  }
  src_build_page(s);
}

static void batch_start(joget_src *s) {
  joget_ctx_t *c = s->c;
  if (!s->caps) { /* the capability check (queued first) has not answered yet: it starts the batch */
    s->caps_wait = 1;
    return;
  }
  s->batch_err_set = 0;
  ferry_error_clear(&s->batch_err);
  s->batch_tries++;
  json_t *ids = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(s->batch_page, i, r) json_array_append_new(ids, json_string(joget_str(r, "id")));
  char *idj = json_dumps(ids, JSON_COMPACT);
  json_decref(ids);
  const char *p[1] = {idj};
  ferry_error e = FERRY_ERROR_INIT;
  int rc = joget_pg_read(c, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", 0, NULL, on_begin, s, &e);
  if (!rc) rc = joget_pg_read(c, sql_tree, 1, p, on_tree, s, &e);
  if (!rc) rc = joget_pg_read(c, s->has_deadlines ? sql_acts_dl : sql_acts, 1, p, on_acts, s, &e);
  if (!rc) rc = joget_pg_read(c, sql_asg, 1, p, on_asg, s, &e);
  if (!rc && s->has_joins) rc = joget_pg_read(c, sql_joins, 1, p, on_joins, s, &e);
  if (!rc) rc = joget_pg_read(c, sql_recs, 1, p, on_recs, s, &e);
  if (!rc) rc = joget_pg_read(c, "COMMIT", 0, NULL, on_commit, s, &e);
  free(idj);
  if (rc < 0) {
    /* queued operations still call back; the COMMIT callback is what ends the batch: fail now only if
       nothing was queued */
    if (!ferry_pg_pending(c->pg)) {
      s->listing = 0;
      src_fail(s, &e);
    }
  }
  ferry_error_clear(&e);
}

static void batch_retry(uv_timer_t *t) {
  joget_src *s = t->data;
  if (s->stopped || s->failed) {
    s->listing = 0;
    return;
  }
  batch_start(s);
}

/* Turns the SQL rows of a page into item bodies (children folded) in s->rows. */
static void src_build_page(joget_src *s) {
  s->batch_tries = 0;
  json_t *byid = json_object();   /* id -> body */
  json_t *rowsby = json_object(); /* id -> listing row */
  size_t i;
  json_t *r;
  json_array_foreach(s->batch_page, i, r) json_object_set(rowsby, joget_str(r, "id"), r);
  json_t *out = json_array();
  json_array_foreach(s->batch_tree, i, r) {
    const char *id = cell(r, 0), *def = cell(r, 1), *req = cell(r, 2), *parent = cell(r, 3);
    const char *pact = cell(r, 4), *pactdef = cell(r, 5), *rid = cell(r, 7), *appver = cell(r, 8);
    int depth = atoi(cell(r, 6) ? cell(r, 6) : "0");
    json_t *row = json_object_get(rowsby, id);
    json_t *b = json_pack("{s:s, s:s, s:s, s:{}, s:o, s:[], s:{s:[], s:[], s:b}}", "id", id, "definition", def,
                          "record_id", rid ? rid : id, "variables", "parent",
                          parent ? json_string(parent) : json_null(), "activities", "extra", "subflows",
                          "joins", "joins_read", s->has_joins);
    char *app, *ver, *proc;
    if (!joget_def_split(def, &app, &ver, &proc)) {
      json_object_set_new(b, "app", json_string(app));
      json_object_set_new(b, "package_version", json_string(ver));
      json_object_set_new(b, "process", json_string(proc));
      free(app);
      free(ver);
      free(proc);
    }
    if (appver) json_object_set_new(b, "app_version", json_string(appver));
    if (req) json_object_set_new(b, "requester", json_string(req));
    if (cell(r, 9)) json_object_set_new(json_object_get(b, "extra"), "name", json_string(cell(r, 9)));
    if (row && joget_str(row, "startedTime"))
      json_object_set_new(b, "started", json_string(joget_str(row, "startedTime")));
    if (row && joget_str(row, "state"))
      json_object_set_new(json_object_get(b, "extra"), "state", json_string(joget_str(row, "state")));
    json_object_set_new(byid, id, b);
    if (depth == 0) {
      if (!parent && wanted(s->c, b)) json_array_append(out, b); /* else: a child listed on its own */
      continue;
    }
    json_t *pb = json_object_get(byid, parent);
    if (!pb) continue;
    json_t *subs = json_object_get(json_object_get(pb, "extra"), "subflows");
    json_t *entry = NULL;
    size_t k;
    json_t *e;
    json_array_foreach(subs, k, e)
      if (pact && joget_str(e, "activity_id") && !strcmp(joget_str(e, "activity_id"), pact)) entry = e;
    if (!entry) {
      entry = json_pack("{s:s, s:s?, s:[]}", "activity_def_id", pactdef ? pactdef : "", "activity_id", pact,
                        "children");
      json_array_append_new(subs, entry);
    }
    json_array_append(json_object_get(entry, "children"), b);
  }
  json_t *actby = json_object(); /* activity id -> activity */
  json_array_foreach(s->batch_acts, i, r) {
    json_t *b = json_object_get(byid, cell(r, 0));
    if (!b) continue;
    json_t *act = json_pack("{s:s, s:s, s:s?, s:s, s:[], s:n}", "def_id", cell(r, 2), "id", cell(r, 1),
                            "name", cell(r, 3), "state", cell(r, 4), "assignees", "accepted_by");
    long long due = cell(r, 5) ? atoll(cell(r, 5)) : 0, ndl = cell(r, 6) ? atoll(cell(r, 6)) : 0;
    if (due > 0 && due < JOGET_NO_LIMIT_MS) json_object_set_new(act, "due_ms", json_integer(due));
    if (ndl > 0) json_object_set_new(act, "deadlines", json_integer(ndl));
    json_array_append(json_object_get(b, "activities"), act);
    json_object_set_new(actby, cell(r, 1), act);
  }
  json_array_foreach(s->batch_joins, i, r) { /* pid, join def, arrived activity id, its def, performer, ms */
    json_t *b = json_object_get(byid, cell(r, 0));
    if (!b) continue;
    json_t *extra = json_object_get(b, "extra");
    json_t *joins = json_object_get(extra, "joins");
    json_t *entry = NULL;
    size_t k;
    json_t *e;
    json_array_foreach(joins, k, e) if (!strcmp(joget_str(e, "join"), cell(r, 1))) entry = e;
    if (!entry) {
      entry = json_pack("{s:s, s:[]}", "join", cell(r, 1), "arrived");
      json_array_append_new(joins, entry);
    }
    json_array_append_new(json_object_get(entry, "arrived"),
                          json_pack("{s:s, s:s, s:s, s:I}", "id", cell(r, 2), "def_id", cell(r, 3), "performer",
                                    cell(r, 4), "completed_ms", (json_int_t)atoll(cell(r, 5) ? cell(r, 5) : "0")));
  }
  json_array_foreach(s->batch_recs, i, r) { /* pid, a form id, table holding the record */
    json_t *b = json_object_get(byid, cell(r, 0));
    if (!b) continue;
    json_t *extra = json_object_get(b, "extra");
    json_t *recs = json_object_get(extra, "record_tables");
    if (!recs) {
      recs = json_array();
      json_object_set_new(extra, "record_tables", recs);
    }
    json_array_append_new(recs, json_pack("{s:s, s:s}", "table", cell(r, 2), "form", cell(r, 1)));
  }
  json_array_foreach(s->batch_asg, i, r) {
    json_t *act = json_object_get(actby, cell(r, 0));
    if (!act) continue;
    json_array_append_new(json_object_get(act, "assignees"), json_string(cell(r, 1)));
    if (cell(r, 2) && cell(r, 2)[0] == 't') json_object_set_new(act, "accepted_by", json_string(cell(r, 1)));
  }
  json_decref(actby);
  json_decref(byid);
  json_decref(rowsby);
  json_decref(s->batch_tree);
  json_decref(s->batch_acts);
  json_decref(s->batch_asg);
  json_decref(s->batch_joins);
  json_decref(s->batch_recs);
  json_decref(s->batch_page);
  s->batch_tree = s->batch_acts = s->batch_asg = s->batch_joins = s->batch_recs = s->batch_page = NULL;
  /* instances of the page gone before the snapshot are simply absent */
  json_decref(s->rows);
  s->rows = out;
  s->row_pos = 0;
  s->listing = 0;
  src_pump(s);
}

/* ---- listing ------------------------------------------------------------------------------------------ */
static void list_page(joget_src *s);

static void on_page(void *arg, json_t *doc, const ferry_error *err) {
  joget_src *s = arg;
  if (s->stopped || s->failed) {
    s->listing = 0;
    return;
  }
  if (err) {
    s->listing = 0;
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_copy(&e, err);
    ferry_error_prefix(&e, "joget source: listing running instances");
    src_fail(s, &e);
    ferry_error_clear(&e);
    return;
  }
  json_t *data = joget_list(doc, "data");
  size_t n = json_array_size(data);
  if (!s->total_sent && !s->c->pg && (!s->c->apps || !s->c->apps[0])) {
    /* announced for the progress display (counts sub-flow children too: with dsn the count is exact) */
    ferry_source_total(s->ins, json_integer_value(json_object_get(doc, "total")));
    s->total_sent = 1;
  }
  int64_t req_start = s->next_start;
  int64_t overlap = s->c->page_size >= 8 ? s->c->page_size / 8 : 0;
  if ((int64_t)n < s->c->page_size)
    s->app_done = 1;
  else
    s->next_start = req_start + (int64_t)n - overlap;
  json_t *ids = json_object();
  json_t *fresh = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(data, i, r) {
    const char *id = joget_str(r, "id");
    if (!id) continue;
    json_object_set_new(ids, id, json_true());
    if (json_object_get(s->prev_ids, id)) continue;
    json_array_append(fresh, r);
  }
  json_decref(data);
  json_decref(s->prev_ids);
  s->prev_ids = ids;
  if (s->app_done) {
    json_decref(s->prev_ids);
    s->prev_ids = json_object();
  }
  if (s->c->pg && json_array_size(fresh) > 0) {
    s->batch_page = fresh;
    s->batch_tries = 0;
    batch_start(s);
    return;
  }
  if (!s->c->pg) {
    /* HTTP mode: rows become bodies when assembled */
    json_decref(s->rows);
    s->rows = fresh;
    s->row_pos = 0;
  } else {
    json_decref(fresh);
  }
  s->listing = 0;
  src_pump(s);
}

/* Chooses the app to list next; 0 when every app is done. */
static int next_app(joget_src *s) {
  joget_ctx_t *c = s->c;
  if (s->app_active && !s->app_done) return 1;
  if (!c->apps || !c->apps[0]) {
    if (s->app_idx > 0) return 0;
    s->app_idx = 1;
    s->app = NULL;
  } else {
    if (!c->apps[s->app_idx]) return 0;
    s->app = c->apps[s->app_idx++];
  }
  s->app_active = 1;
  s->app_done = 0;
  s->next_start = 0;
  return 1;
}

static void list_page(joget_src *s) {
  if (!next_app(s)) {
    s->list_done = 1;
    return;
  }
  int64_t overlap = s->c->page_size >= 8 ? s->c->page_size / 8 : 0;
  if (s->next_start > 0 && s->next_start < overlap) s->next_start = 0;
  char st[32], rows[32];
  snprintf(st, sizeof st, "%lld", (long long)s->next_start);
  snprintf(rows, sizeof rows, "%lld", (long long)s->c->page_size);
  const char *params[] = {"sort", "id", "desc", "false", "start", st, "rows", rows, s->app ? "appId" : NULL,
                          s->app, NULL};
  s->listing = 1;
  ferry_error e = FERRY_ERROR_INIT;
  if (joget_get(s->c, "console/monitor/running/list", params, on_page, s, &e) < 0) {
    s->listing = 0;
    src_fail(s, &e);
  }
  ferry_error_clear(&e);
}

static void start_assembly(joget_src *s, json_t *entry) {
  s->in_flight++;
  if (s->c->pg) {
    asm_t *a = asm_new(s, json_incref(entry), NULL, 1);
    fetch_vars(a);
    fetch_child_vars(a, a->body);
    asm_check(a);
  } else {
    asm_t *a = asm_new(s, new_body(entry), entry, 1);
    asm_http_start(a);
  }
}

static void src_pump(joget_src *s) {
  if (s->stopped || s->failed || s->ended) return;
  for (;;) {
    while (s->want > s->in_flight && s->in_flight < s->max_flight && s->rows &&
           s->row_pos < json_array_size(s->rows)) {
      json_t *entry = json_incref(json_array_get(s->rows, s->row_pos++));
      start_assembly(s, entry);
      json_decref(entry);
      if (s->stopped || s->failed || s->ended) return;
    }
    int rows_left = s->rows && s->row_pos < json_array_size(s->rows);
    if (!rows_left && !s->listing && !s->list_done && s->want > s->in_flight) {
      list_page(s);
      if (s->listing || s->failed) return;
      continue; /* list_done may have been set */
    }
    break;
  }
  int rows_left = s->rows && s->row_pos < json_array_size(s->rows);
  if (s->list_done && !rows_left && !s->listing && s->in_flight == 0) {
    s->ended = 1;
    ferry_source_end(s->ins);
  }
}

/* ---- total (dsn): exact count of top-level running instances ---- */
static void on_count(void *arg, int status, PGresult *res, const ferry_error *err) {
  joget_src *s = arg;
  if (status || s->stopped) return; /* only for the progress display */
  ferry_source_total(s->ins, atoll(PQgetvalue(res, 0, 0)));
}

/* Which of Shark's bookkeeping tables this database has (a real Joget has both; a database a test built by
 * hand may not). Queued before any batch, so it answers first; a batch that was ready before waits. */
static void on_caps(void *arg, int status, PGresult *res, const ferry_error *err) {
  joget_src *s = arg;
  if (!status && PQntuples(res) == 1) {
    s->has_joins = PQgetvalue(res, 0, 0)[0] == 't';
    s->has_deadlines = PQgetvalue(res, 0, 1)[0] == 't';
  }
  if (!s->has_joins)
    ferry_log(s->ins, FERRY_LOG_WARN,
              "joget source %s: the database has no shkandjointable: arrivals at AND-joins cannot be read",
              s->c->host_label);
  s->caps = 1;
  if (s->caps_wait && !s->stopped && !s->failed) {
    s->caps_wait = 0;
    batch_start(s);
  }
}

static int src_start(ferry_instance *ins, ferry_error *err) {
  joget_ctx_t *c = ferry_instance_ctx(ins);
  joget_src *s = calloc(1, sizeof *s);
  if (!s) abort();
  s->c = c;
  s->ins = ins;
  s->prev_ids = json_object();
  unsigned conc = ferry_instance_concurrency(ins);
  s->max_flight = c->fetch_concurrency > 0 ? (size_t)c->fetch_concurrency : (conc ? conc * 2 : 16);
  c->src = s;
  if (c->pg &&
      joget_pg_read(c, "SELECT to_regclass('shkandjointable') IS NOT NULL, to_regclass('shkdeadlines') IS NOT NULL",
                    0, NULL, on_caps, s, err) < 0)
    return err->code;
  if (c->pg) {
    json_t *apps = json_array();
    for (char **p = c->apps; p && *p; p++) json_array_append_new(apps, json_string(*p));
    char *aj = json_dumps(apps, JSON_COMPACT);
    json_decref(apps);
    const char *p[1] = {aj};
    joget_pg_read(
        c,
        "SELECT count(*) FROM shkprocesses WHERE state IN (1000000, 1000002, 1000004) AND "
        "activityrequesterprocessid IS NULL AND (json_array_length($1::json) = 0 OR split_part(pdefname, "
        "'#', 1) IN (SELECT json_array_elements_text($1::json)))",
        1, p, on_count, s, err);
    free(aj);
    ferry_error_clear(err);
  }
  return 0;
}

static void src_demand(ferry_instance *ins, size_t n) {
  joget_ctx_t *c = ferry_instance_ctx(ins);
  joget_src *s = c->src;
  if (!s) return;
  s->want += n;
  src_pump(s);
}

static void timer_closed(uv_handle_t *h) { free(h->data); }

static void src_release(joget_ctx_t *c) {
  joget_src *s = c->src;
  if (!s) return;
  s->stopped = 1;
}

static void src_stop(ferry_instance *ins) { src_release(ferry_instance_ctx(ins)); }

void joget_source_stop(joget_ctx_t *c) { src_release(c); }

void joget_source_fini(joget_ctx_t *c) {
  joget_src *s = c->src;
  if (!s) return;
  src_release(c);
  json_decref(s->rows);
  json_decref(s->prev_ids);
  json_decref(s->batch_page);
  json_decref(s->batch_tree);
  json_decref(s->batch_acts);
  json_decref(s->batch_asg);
  json_decref(s->batch_joins);
  json_decref(s->batch_recs);
  ferry_error_clear(&s->batch_err);
  c->src = NULL;
  if (s->timer_on) {
    /* the memory goes with the handle's close */
    uv_timer_stop(&s->timer);
    s->timer.data = s;
    uv_close((uv_handle_t *)&s->timer, timer_closed);
  } else {
    free(s);
  }
}

const ferry_source_ops joget_source_ops = {
    .struct_size = sizeof(ferry_source_ops),
    .emits = FERRY_ITEM_INSTANCE,
    .start = src_start,
    .demand = src_demand,
    .stop = src_stop,
};
