/* pr-tsink: a sink for the preserve-records tests that behaves like the joget sink around a start, without a
 * workflow server: for each item (of any kind)
 *   1. fires "before_start" with data {"record_id": body.fire_record_id?, "definition": body.definition?}
 *   2. records the intent "start" (the hook's snapshot goes to the journal with it)
 *   3. runs the item's "tool_sql" on the target database (the "start-path tool")
 *   4. fires "after_start" with data {"record_id", "target_process_id"}
 *   5. appends "<key>\t<task report as JSON>" to `reports` and completes the item.
 * An item handed back in doubt (step "start") does not run its tool again (the joget sink adopts the instance
 * it started): it fires before_start again when `refire_before` is set (the hook must keep its first
 * snapshot), then after_start.
 * On a mysql:// / mariadb:// dsn (the SQL service) "tool_sql" is a string or a list of statements, run one
 * after the other (the service runs one statement per call).
 * `kill_key` + `kill_where`: SIGKILL the process while handling that item, after the tool ("after_tool") or
 * after after_start ("after_restore").
 */
#define _GNU_SOURCE /* asprintf */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ferry/ferry.h>
#include <ferry/pg.h>
#include <ferry/sql.h>

typedef struct tsink {
  char *dsn;
  char *reports;
  char *kill_key;
  char *kill_where;
  int refire_before;
  ferry_pg *pg;
  ferry_sql *db; /* MySQL/MariaDB */
} tsink;

static const ferry_option ts_options[] = {
    {.key = "dsn", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_SECRET, offsetof(tsink, dsn),
     "target database the tools run on"},
    {.key = "reports", FERRY_OPT_STRING, "\"\"", 0, offsetof(tsink, reports),
     "file: one line per item with its report"},
    {.key = "kill_key", FERRY_OPT_STRING, "\"\"", 0, offsetof(tsink, kill_key), "SIGKILL while handling this key"},
    {.key = "kill_where", FERRY_OPT_STRING, "\"after_tool\"", 0, offsetof(tsink, kill_where),
     "after_tool|after_restore"},
    {.key = "refire_before", FERRY_OPT_BOOL, "false", 0, offsetof(tsink, refire_before),
     "in-doubt items: fire before_start again"},
    FERRY_OPTIONS_END};

static const char *const ts_points[] = {"before_start", "after_start", NULL};

typedef struct op {
  tsink *s;
  ferry_instance *ins;
  ferry_task *task;
  size_t next; /* MySQL: the next statement of tool_sql */
} op;

static void line(const char *path, const char *key, json_t *report) {
  if (!path || !*path) return;
  char *j = report ? json_dumps(report, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
  char *buf = NULL;
  int n = asprintf(&buf, "%s\t%s\n", key, j ? j : "{}");
  free(j);
  if (n < 0) return;
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd >= 0) {
    ssize_t w = write(fd, buf, (size_t)n);
    (void)w;
    close(fd);
  }
  free(buf);
}

static void maybe_kill(op *o, const char *where) {
  const char *key = ferry_task_item(o->task)->key;
  if (*o->s->kill_key && !strcmp(o->s->kill_key, key) && !strcmp(o->s->kill_where, where))
    kill(getpid(), SIGKILL);
}

static void fail(op *o, const ferry_error *err) {
  ferry_task *t = o->task;
  free(o);
  ferry_task_fail(t, err);
}

static json_t *fire_data(const ferry_item *it, int after) {
  json_t *d = json_object();
  json_t *rid = json_object_get(it->body, "fire_record_id");
  if (rid) json_object_set(d, "record_id", rid);
  json_t *def = json_object_get(it->body, "definition");
  if (def && !after) json_object_set(d, "definition", def);
  if (after) json_object_set_new(d, "target_process_id", json_sprintf("new-%s", it->key));
  return d;
}

static void after_after(void *arg, int status, const ferry_error *err) {
  op *o = arg;
  if (status) {
    fail(o, err);
    return;
  }
  maybe_kill(o, "after_restore");
  ferry_task *t = o->task;
  line(o->s->reports, ferry_task_item(t)->key, ferry_task_report(t));
  free(o);
  ferry_task_done(t, 0);
}

static void fire_after(op *o) {
  json_t *d = fire_data(ferry_task_item(o->task), 1);
  ferry_fire(o->ins, o->task, "after_start", d, after_after, o);
  json_decref(d);
}

static void on_tool(void *arg, int status, PGresult *res, const ferry_error *err) {
  op *o = arg;
  (void)res;
  if (status) {
    fail(o, err);
    return;
  }
  maybe_kill(o, "after_tool");
  fire_after(o);
}

static void my_next(op *o);
static void on_my_tool(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  op *o = arg;
  if (status) {
    fail(o, err);
    return;
  }
  my_next(o);
}

static void my_next(op *o) {
  json_t *t = json_object_get(ferry_task_item(o->task)->body, "tool_sql");
  const char *sql = json_is_array(t) ? json_string_value(json_array_get(t, o->next)) : o->next ? NULL
                                                                                              : json_string_value(t);
  o->next++;
  if (!sql) {
    maybe_kill(o, "after_tool");
    fire_after(o);
    return;
  }
  int rc = ferry_sql_query(o->s->db, NULL, sql, 0, NULL, NULL, on_my_tool, o);
  if (rc < 0) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, rc, "pr-tsink: cannot queue the tool");
    fail(o, &e);
    ferry_error_clear(&e);
  }
}

static void after_before(void *arg, int status, const ferry_error *err) {
  op *o = arg;
  if (status) {
    fail(o, err);
    return;
  }
  if (ferry_task_step(o->task)) { /* resumed: the start happened already */
    fire_after(o);
    return;
  }
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry_task_intent(o->task, "start", &e) < 0) {
    fail(o, &e);
    ferry_error_clear(&e);
    return;
  }
  if (o->s->db) {
    my_next(o);
    return;
  }
  const char *sql = ferry_item_str(ferry_task_item(o->task), "tool_sql", "");
  if (!*sql) {
    fire_after(o);
    return;
  }
  int rc = ferry_pg_query(o->s->pg, sql, 0, NULL, on_tool, o);
  if (rc < 0) {
    ferry_error_set(&e, rc, "pr-tsink: cannot queue the tool");
    fail(o, &e);
    ferry_error_clear(&e);
  }
}

static void ts_write(ferry_instance *ins, ferry_task *task) {
  tsink *s = ferry_instance_ctx(ins);
  op *o = calloc(1, sizeof *o);
  if (!o) abort();
  o->s = s;
  o->ins = ins;
  o->task = task;
  const char *step = ferry_task_step(task);
  if (step && !strcmp(step, "start") && !s->refire_before) {
    fire_after(o);
    return;
  }
  json_t *d = fire_data(ferry_task_item(task), 0);
  ferry_fire(ins, task, "before_start", d, after_before, o);
  json_decref(d);
}

static int ts_init(ferry_instance *ins, ferry_error *err) {
  tsink *s = ferry_instance_ctx(ins);
  if (!strncmp(s->dsn, "mysql://", 8) || !strncmp(s->dsn, "mariadb://", 10)) {
    s->db = ferry_sql_open(ins, s->dsn, NULL, err);
    return s->db ? 0 : err->code;
  }
  s->pg = ferry_pg_new(ins, s->dsn, err);
  return s->pg ? 0 : err->code;
}

static void ts_fini(ferry_instance *ins) {
  tsink *s = ferry_instance_ctx(ins);
  ferry_pg_free(s->pg);
  ferry_sql_close(s->db);
}

static const ferry_sink_ops ts_sink = {
    .struct_size = sizeof(ferry_sink_ops),
    .accepts = FERRY_ITEM_ALL,
    .hook_points = ts_points,
    .write = ts_write,
};

FERRY_PLUGIN_DEFINE(pr_tsink, .kinds = FERRY_KIND_SINK, .name = "pr-tsink", .version = "1.0",
                    .description = "preserve-records tests: a sink firing before_start/after_start",
                    .license = "Apache-2.0", .options = ts_options, .ctx_size = sizeof(tsink),
                    .init = ts_init, .fini = ts_fini, .sink = &ts_sink);
