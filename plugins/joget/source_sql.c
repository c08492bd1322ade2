/* joget source: with dsn, one REPEATABLE READ READ ONLY transaction per listing page: the page's
 * instances with their running sub-flow descendants, open activities, assignments,
 * AND-join arrivals and records. */
#include "source.h"

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
      uint64_t delay = ferry_backoff_ms((unsigned)s->batch_tries, 200, 5000, &s->batch_rng);
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
    joget_src_fail(s, &e);
    ferry_error_clear(&e);
    return;
  }
  src_build_page(s);
}

void joget_batch_start(joget_src *s) {
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
      joget_src_fail(s, &e);
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
  joget_batch_start(s);
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
      if (!parent && joget_wanted(s->c, b)) json_array_append(out, b); /* else: a child listed on its own */
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
  joget_src_pump(s);
}
