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
 *
 * The source's files: see source.h.
 */
#include "source.h"

void joget_src_fail(joget_src *s, const ferry_error *e) {
  if (s->failed || s->stopped) return;
  s->failed = 1;
  ferry_source_fail(s->ins, e);
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
    joget_src_fail(s, &e);
    ferry_error_clear(&e);
    return;
  }
  json_t *data = joget_list(doc, "data");
  size_t n = json_array_size(data);
  if (!s->total_sent && !s->c->db && (!s->c->apps || !s->c->apps[0])) {
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
  if (s->c->db && json_array_size(fresh) > 0) {
    s->batch_page = fresh;
    s->batch_tries = 0;
    joget_batch_start(s);
    return;
  }
  if (!s->c->db) {
    /* HTTP mode: rows become bodies when assembled */
    json_decref(s->rows);
    s->rows = fresh;
    s->row_pos = 0;
  } else {
    json_decref(fresh);
  }
  s->listing = 0;
  joget_src_pump(s);
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
    joget_src_fail(s, &e);
  }
  ferry_error_clear(&e);
}
void joget_src_pump(joget_src *s) {
  if (s->stopped || s->failed || s->ended) return;
  for (;;) {
    while (s->want > s->in_flight && s->in_flight < s->max_flight && s->rows &&
           s->row_pos < json_array_size(s->rows)) {
      json_t *entry = json_incref(json_array_get(s->rows, s->row_pos++));
      joget_start_assembly(s, entry);
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
static void on_count(void *arg, int status, const joget_res *res, const ferry_error *err) {
  joget_src *s = arg;
  if (status || s->stopped) return; /* only for the progress display */
  ferry_source_total(s->ins, atoll(joget_res_val(res, 0, 0)));
}

/* Which of Shark's bookkeeping tables this database has (a real Joget has both; a database a test built by
 * hand may not). Queued before any batch, so it answers first; a batch that was ready before waits. */
static void on_caps(void *arg, int status, const joget_res *res, const ferry_error *err) {
  (void)err;
  joget_src *s = arg;
  if (!status && joget_res_n(res) == 1) {
    s->has_joins = joget_res_true(res, 0, 0);
    s->has_deadlines = joget_res_true(res, 0, 1);
  }
  if (!s->has_joins)
    ferry_log(s->ins, FERRY_LOG_WARN,
              "joget source %s: the database has no shkandjointable: arrivals at AND-joins cannot be read",
              s->c->host_label);
  s->caps = 1;
  if (s->caps_wait && !s->stopped && !s->failed) {
    s->caps_wait = 0;
    joget_batch_start(s);
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
  if (c->db &&
      joget_sql_read(c, NULL,
                     JOGET_SQL(c,
                               "SELECT to_regclass('shkandjointable') IS NOT NULL, to_regclass('shkdeadlines') IS "
                               "NOT NULL",
                               "SELECT EXISTS (SELECT 1 FROM information_schema.tables WHERE table_schema = "
                               "DATABASE() AND table_name = 'SHKAndJoinTable'), EXISTS (SELECT 1 FROM "
                               "information_schema.tables WHERE table_schema = DATABASE() AND table_name = "
                               "'SHKDeadlines')"),
                     0, NULL, on_caps, s, err) < 0)
    return err->code;
  if (c->db && !c->mysql) {
    json_t *apps = json_array();
    for (char **p = c->apps; p && *p; p++) json_array_append_new(apps, json_string(*p));
    char *aj = json_dumps(apps, JSON_COMPACT);
    json_decref(apps);
    const char *p[1] = {aj};
    joget_sql_read(c, NULL,
                   "SELECT count(*) FROM shkprocesses WHERE state IN (1000000, 1000002, 1000004) AND "
                   "activityrequesterprocessid IS NULL AND (json_array_length($1::json) = 0 OR split_part(pdefname, "
                   "'#', 1) IN (SELECT json_array_elements_text($1::json)))",
                   1, p, on_count, s, err);
    free(aj);
    ferry_error_clear(err);
  } else if (c->db) { /* MySQL: the apps as an IN list */
    int n = 0;
    for (char **p = c->apps; p && *p; p++) n++;
    char *in = joget_sql_in_list(1, n);
    char *sql = ferry_asprintf("SELECT count(*) FROM SHKProcesses WHERE state IN (1000000, 1000002, 1000004) AND "
                               "activityrequesterprocessid IS NULL%s%s%s",
                               n ? " AND SUBSTRING_INDEX(pdefname, '#', 1) IN (" : "", n ? in : "", n ? ")" : "");
    joget_sql_read(c, NULL, sql, n, (const char *const *)c->apps, on_count, s, err);
    free(sql);
    free(in);
    ferry_error_clear(err);
  }
  return 0;
}

static void src_demand(ferry_instance *ins, size_t n) {
  joget_ctx_t *c = ferry_instance_ctx(ins);
  joget_src *s = c->src;
  if (!s) return;
  s->want += n;
  joget_src_pump(s);
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
  json_decref(s->batch_found);
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
