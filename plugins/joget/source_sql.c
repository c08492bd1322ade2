/* joget source: with dsn, one consistent read-only snapshot transaction per listing page (PostgreSQL
 * REPEATABLE READ READ ONLY; MySQL/MariaDB START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY): the page's
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

/* MySQL/MariaDB: the same queries in its dialect (no DISTINCT ON, split_part, ::casts, JSON arrays of ids,
 * query_to_xml): the page's ids as an IN list ($1..$n), Joget's MySQL spelling of Shark's tables (SHKProcesses:
 * MySQL on Linux compares table names case-sensitively; docs/joget-facts.md 16.2), the deepest row of a child
 * by ROW_NUMBER(), and the record check in two steps: the candidate tables that exist (information_schema),
 * then one query per table inside the same snapshot. Recursive CTEs need MySQL 8.0 or MariaDB 10.2. */
#define MY_TREE_CTE                                                                                     \
  "WITH RECURSIVE tree AS ("                                                                           \
  " SELECT p.id AS id, p.pdefname AS pdefname, p.resourcerequesterid AS resourcerequesterid,"          \
  " p.activityrequesterprocessid AS parent, p.activityrequesterid AS parent_act, p.created AS created," \
  " p.name AS name, 0 AS depth FROM SHKProcesses p WHERE p.id IN (%s)"                                 \
  " UNION ALL SELECT c.id, c.pdefname, c.resourcerequesterid, c.activityrequesterprocessid,"           \
  " c.activityrequesterid, c.created, c.name, t.depth + 1 FROM SHKProcesses c JOIN tree t"             \
  " ON c.activityrequesterprocessid = t.id WHERE c.state IN (1000000, 1000002, 1000004) AND t.depth < 20) "
#define MY_APP "SUBSTRING_INDEX(t.pdefname, '#', 1)"
#define MY_PKGVER "SUBSTRING_INDEX(SUBSTRING_INDEX(t.pdefname, '#', 2), '#', -1)"
static const char *const my_tree = MY_TREE_CTE
    "SELECT id, pdefname, resourcerequesterid, parent, parent_act, activitydefinitionid, depth, rid, appversion,"
    " name, created FROM (SELECT t.id, t.pdefname, t.resourcerequesterid, t.parent, t.parent_act,"
    " pa.activitydefinitionid, t.depth, COALESCE(l.originprocessid, t.id) AS rid, ap.appversion, t.name,"
    " t.created, ROW_NUMBER() OVER (PARTITION BY t.id ORDER BY t.depth DESC) AS rn FROM tree t"
    " LEFT JOIN SHKActivities pa ON pa.id = t.parent_act LEFT JOIN wf_process_link l ON l.processid = t.id"
    " LEFT JOIN app_package ap ON ap.packageid = " MY_APP " AND ap.packageversion = " MY_PKGVER ") x"
    " WHERE rn = 1 ORDER BY 7, 11, 1";
static const char *const my_acts = MY_TREE_CTE
    "SELECT a.processid, a.id, a.activitydefinitionid, a.name, s.name, a.limittime, 0 FROM SHKActivities a"
    " JOIN (SELECT DISTINCT id FROM tree) t ON a.processid = t.id JOIN SHKActivityStates s ON s.oid = a.state"
    " WHERE s.name LIKE 'open.%%' ORDER BY a.processid, a.activated, a.id";
static const char *const my_acts_dl = MY_TREE_CTE
    "SELECT a.processid, a.id, a.activitydefinitionid, a.name, s.name, a.limittime,"
    " (SELECT count(*) FROM SHKDeadlines d WHERE d.activity = a.oid AND NOT d.isexecuted) FROM SHKActivities a"
    " JOIN (SELECT DISTINCT id FROM tree) t ON a.processid = t.id JOIN SHKActivityStates s ON s.oid = a.state"
    " WHERE s.name LIKE 'open.%%' ORDER BY a.processid, a.activated, a.id";
static const char *const my_joins = MY_TREE_CTE
    "SELECT p.id, j.activitydefinitionid, a.id, a.activitydefinitionid, COALESCE(a.resourceid, ''),"
    " a.laststatetime FROM SHKAndJoinTable j JOIN SHKProcesses p ON p.oid = j.process"
    " JOIN (SELECT DISTINCT id FROM tree) t ON t.id = p.id JOIN SHKActivities a ON a.oid = j.activity"
    " ORDER BY p.id, j.activitydefinitionid, j.cnt";
/* candidates: instance, a form id, table, record id; tables that do not exist are left out */
static const char *const my_recs = MY_TREE_CTE
    "SELECT x.id, min(x.formid), x.tbl, x.rid FROM (SELECT t.id, f.formid,"
    " CONCAT('app_fd_', COALESCE(NULLIF(f.tablename, ''), f.formid)) AS tbl, t.rid FROM (SELECT DISTINCT t.id,"
    " COALESCE(l.originprocessid, t.id) AS rid, " MY_APP " AS app, ap.appversion"
    " FROM tree t LEFT JOIN wf_process_link l ON l.processid = t.id LEFT JOIN app_package ap"
    " ON ap.packageid = " MY_APP " AND ap.packageversion = " MY_PKGVER
    " WHERE t.depth = 0) t JOIN app_form f ON f.appid = t.app AND f.appversion = t.appversion) x"
    " WHERE EXISTS (SELECT 1 FROM information_schema.tables it WHERE it.table_schema = DATABASE()"
    " AND it.table_name = x.tbl) GROUP BY x.id, x.tbl, x.rid ORDER BY x.id, x.tbl";
static const char *const my_asg = MY_TREE_CTE
    "SELECT s.activityid, s.resourceid, s.isaccepted FROM SHKAssignmentsTable s"
    " JOIN SHKActivities a ON a.id = s.activityid JOIN (SELECT DISTINCT id FROM tree) t ON a.processid = t.id"
    " WHERE s.isvalid AND a.state IN (1000001, 1000003, 1000005) ORDER BY s.activityid, s.cnt";

static json_t *res_rows(const joget_res *res) {
  json_t *rows = json_array();
  int nf = (int)res->ncols;
  for (int i = 0; i < joget_res_n(res); i++) {
    json_t *r = json_array();
    for (int f = 0; f < nf; f++)
      json_array_append_new(r, joget_res_null(res, i, f) ? json_null() : json_string(joget_res_val(res, i, f)));
    json_array_append_new(rows, r);
  }
  return rows;
}

static const char *cell(json_t *row, size_t i) { return json_string_value(json_array_get(row, i)); }

static void batch_retry(uv_timer_t *t);
static void src_build_page(joget_src *s);

static void batch_err(joget_src *s, const ferry_error *err) {
  if (!s->batch_err_set) {
    s->batch_err_set = 1;
    ferry_error_copy(&s->batch_err, err);
  }
}

static void batch_op(void *arg, int status, const joget_res *res, const ferry_error *err, json_t **slot) {
  joget_src *s = arg;
  if (status) {
    batch_err(s, err);
    return;
  }
  if (slot) {
    json_decref(*slot);
    *slot = res_rows(res);
  }
}

static void on_tree(void *arg, int status, const joget_res *res, const ferry_error *err) {
  batch_op(arg, status, res, err, &((joget_src *)arg)->batch_tree);
}
static void on_acts(void *arg, int status, const joget_res *res, const ferry_error *err) {
  batch_op(arg, status, res, err, &((joget_src *)arg)->batch_acts);
}
static void on_asg(void *arg, int status, const joget_res *res, const ferry_error *err) {
  batch_op(arg, status, res, err, &((joget_src *)arg)->batch_asg);
}
static void on_joins(void *arg, int status, const joget_res *res, const ferry_error *err) {
  batch_op(arg, status, res, err, &((joget_src *)arg)->batch_joins);
}
static void on_recs(void *arg, int status, const joget_res *res, const ferry_error *err) {
  batch_op(arg, status, res, err, &((joget_src *)arg)->batch_recs);
}

/* Ends the page's batch (after COMMIT, or when it could not run): retry, fail, or build the page. */
static void batch_end(joget_src *s) {
  s->batch_txn = NULL;
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

static void on_commit(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  joget_src *s = arg;
  if (status) batch_err(s, err);
  batch_end(s);
}

static void batch_commit(joget_src *s) {
  ferry_error e = FERRY_ERROR_INIT;
  int rc = ferry_sql_commit(s->batch_txn, on_commit, s);
  if (rc < 0) {
    ferry_error_set(&e, rc, "joget source %s: cannot end the snapshot transaction", s->c->host_label);
    batch_err(s, &e);
    ferry_error_clear(&e);
    batch_end(s);
  }
}

/* MySQL: which candidate records one table holds */
typedef struct rec_q {
  joget_src *s;
  char *tbl;
} rec_q;

static void on_rec_found(void *arg, int status, const joget_res *res, const ferry_error *err) {
  rec_q *q = arg;
  joget_src *s = q->s;
  if (status)
    batch_err(s, err);
  else
    for (int i = 0; i < joget_res_n(res); i++) {
      char *k = ferry_asprintf("%s\x01%s", q->tbl, joget_res_val(res, i, 0));
      json_object_set_new(s->batch_found, k, json_true());
      free(k);
    }
  free(q->tbl);
  free(q);
}

static void on_recs_my(void *arg, int status, const joget_res *res, const ferry_error *err) {
  joget_src *s = arg;
  batch_op(arg, status, res, err, &s->batch_recs);
  json_decref(s->batch_found);
  s->batch_found = json_object();
  if (!status && !s->stopped && !s->failed) {
    json_t *bytbl = json_object(); /* table -> [record ids] */
    size_t i;
    json_t *r;
    json_array_foreach(s->batch_recs, i, r) {
      json_t *l = json_object_get(bytbl, cell(r, 2));
      if (!l) {
        l = json_array();
        json_object_set_new(bytbl, cell(r, 2), l);
      }
      json_array_append_new(l, json_string(cell(r, 3) ? cell(r, 3) : ""));
    }
    const char *tbl;
    json_t *ids;
    json_object_foreach(bytbl, tbl, ids) {
      size_t n = json_array_size(ids);
      const char **p = calloc(n + 1, sizeof *p);
      if (!p) abort();
      for (size_t k = 0; k < n; k++) p[k] = json_string_value(json_array_get(ids, k));
      char *q = ferry_sql_quote_ident(s->c->db, tbl), *in = joget_sql_in_list(1, (int)n);
      char *sql = ferry_asprintf("SELECT id FROM %s WHERE id IN (%s)", q, in);
      rec_q *rq = calloc(1, sizeof *rq);
      if (!rq) abort();
      rq->s = s;
      rq->tbl = ferry_strdup(tbl);
      ferry_error e = FERRY_ERROR_INIT;
      if (joget_sql_read(s->c, s->batch_txn, sql, (int)n, p, on_rec_found, rq, &e) < 0) {
        batch_err(s, &e);
        free(rq->tbl);
        free(rq);
      }
      ferry_error_clear(&e);
      free(sql);
      free(in);
      free(q);
      free(p);
    }
    json_decref(bytbl);
  }
  batch_commit(s);
}

/* MySQL: keeps the candidates whose table holds the record, as (instance, form, table) */
static void my_recs_filter(joget_src *s) {
  json_t *keep = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(s->batch_recs, i, r) {
    char *k = ferry_asprintf("%s\x01%s", cell(r, 2), cell(r, 3) ? cell(r, 3) : "");
    if (json_object_get(s->batch_found, k))
      json_array_append_new(keep, json_pack("[s?, s?, s?]", cell(r, 0), cell(r, 1), cell(r, 2)));
    free(k);
  }
  json_decref(s->batch_recs);
  s->batch_recs = keep;
  json_decref(s->batch_found);
  s->batch_found = NULL;
}

static void on_begin(void *arg, int status, ferry_sql_txn *txn, const ferry_error *err) {
  joget_src *s = arg;
  if (status) {
    batch_err(s, err);
    batch_end(s);
    return;
  }
  joget_ctx_t *c = s->c;
  s->batch_txn = txn;
  if (s->stopped || s->failed) {
    batch_commit(s);
    return;
  }
  size_t n = json_array_size(s->batch_page);
  const char **ids = calloc(n + 1, sizeof *ids);
  if (!ids) abort();
  json_t *idj = json_array();
  size_t i;
  json_t *r;
  json_array_foreach(s->batch_page, i, r) {
    ids[i] = joget_str(r, "id");
    json_array_append_new(idj, json_string(ids[i]));
  }
  ferry_error e = FERRY_ERROR_INIT;
  int rc = 0;
  if (!c->mysql) {
    char *idt = json_dumps(idj, JSON_COMPACT);
    const char *p[1] = {idt};
    rc = joget_sql_read(c, txn, sql_tree, 1, p, on_tree, s, &e);
    if (!rc) rc = joget_sql_read(c, txn, s->has_deadlines ? sql_acts_dl : sql_acts, 1, p, on_acts, s, &e);
    if (!rc) rc = joget_sql_read(c, txn, sql_asg, 1, p, on_asg, s, &e);
    if (!rc && s->has_joins) rc = joget_sql_read(c, txn, sql_joins, 1, p, on_joins, s, &e);
    if (!rc) rc = joget_sql_read(c, txn, sql_recs, 1, p, on_recs, s, &e);
    free(idt);
    if (rc < 0) batch_err(s, &e);
    batch_commit(s);
  } else {
    char *in = joget_sql_in_list(1, (int)n);
    char *q_tree = ferry_asprintf(my_tree, in), *q_acts = ferry_asprintf(s->has_deadlines ? my_acts_dl : my_acts, in);
    char *q_asg = ferry_asprintf(my_asg, in), *q_joins = ferry_asprintf(my_joins, in);
    char *q_recs = ferry_asprintf(my_recs, in);
    rc = joget_sql_read(c, txn, q_tree, (int)n, ids, on_tree, s, &e);
    if (!rc) rc = joget_sql_read(c, txn, q_acts, (int)n, ids, on_acts, s, &e);
    if (!rc) rc = joget_sql_read(c, txn, q_asg, (int)n, ids, on_asg, s, &e);
    if (!rc && s->has_joins) rc = joget_sql_read(c, txn, q_joins, (int)n, ids, on_joins, s, &e);
    if (!rc) rc = joget_sql_read(c, txn, q_recs, (int)n, ids, on_recs_my, s, &e); /* it commits */
    if (rc < 0) {
      batch_err(s, &e);
      batch_commit(s);
    }
    free(q_tree);
    free(q_acts);
    free(q_asg);
    free(q_joins);
    free(q_recs);
    free(in);
  }
  ferry_error_clear(&e);
  json_decref(idj);
  free(ids);
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
  int rc = ferry_sql_begin(c->db, FERRY_SQL_SNAPSHOT, NULL, on_begin, s);
  if (rc < 0) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, rc, "joget source %s: cannot start a snapshot transaction on the dsn", c->host_label);
    s->listing = 0;
    joget_src_fail(s, &e);
    ferry_error_clear(&e);
  }
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
  if (s->c->mysql) my_recs_filter(s);
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
    if (cell(r, 2) && (cell(r, 2)[0] == 't' || (cell(r, 2)[0] >= '1' && cell(r, 2)[0] <= '9'))) json_object_set_new(act, "accepted_by", json_string(cell(r, 1)));
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
