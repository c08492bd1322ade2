/* The mock core (see mock_core.h). */
#define _GNU_SOURCE
#include <ferry/sql.h>
#include "mock_core.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int mock_failures, mock_checks;

int mock_report(const char *name) {
  printf("%s: %d passed, %d failed\n", name, mock_checks - mock_failures, mock_failures);
  return mock_failures ? 1 : 0;
}

/* The SDK's own errors and helpers (ferry/error.h: core/base/error.c; ferry/util.h: core/base/util.c; the
 * escaping of ferry/http.h and ferry/pg.h: core/services/text.c) are compiled into the mock core as they
 * are: plugin code under test uses the real ones. */
static void *xmalloc(size_t n) {
  void *p = calloc(1, n ? n : 1);
  if (!p) abort();
  return p;
}

/* ---- calls ------------------------------------------------------------------------------------------- */
#define MAX_NAMES 64
static struct {
  const char *name;
  unsigned n;
} calls[MAX_NAMES];

static void count(const char *name) {
  for (int i = 0; i < MAX_NAMES; i++) {
    if (!calls[i].name) calls[i].name = name;
    if (!strcmp(calls[i].name, name)) {
      calls[i].n++;
      return;
    }
  }
}

unsigned mock_calls(const char *name) {
  for (int i = 0; i < MAX_NAMES && calls[i].name; i++)
    if (!strcmp(calls[i].name, name)) return calls[i].n;
  return 0;
}

static void unavailable(const char *name) {
  fprintf(stderr, "mock core: %s() needs a pipeline (a task or a hook event): not available in a unit test\n",
          name);
  abort();
}

/* ---- errors: the SDK's own (core/base/error.c, compiled in) ------------------------------------------ */

/* ---- logging ----------------------------------------------------------------------------------------- */
static char *log_buf;
static size_t log_len;
static ferry_log_level log_level = FERRY_LOG_DEBUG;

void ferry_log(const ferry_instance *ins, ferry_log_level level, const char *fmt, ...) {
  (void)ins;
  static const char *const lv[] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
  va_list ap;
  va_start(ap, fmt);
  char *m = ferry_vasprintf(fmt, ap);
  va_end(ap);
  char *line = NULL;
  int n = asprintf(&line, "%s %s\n", (unsigned)level <= FERRY_LOG_TRACE ? lv[level] : "?", m);
  if (n < 0) abort();
  char *nb = realloc(log_buf, log_len + (size_t)n + 1);
  if (!nb) abort();
  log_buf = nb;
  memcpy(log_buf + log_len, line, (size_t)n + 1);
  log_len += (size_t)n;
  if (getenv("FERRY_MOCK_LOG")) fputs(line, stderr);
  free(line);
  free(m);
}

int ferry_log_enabled(ferry_log_level level) { return level <= log_level; }
void mock_log_set_level(ferry_log_level level) { log_level = level; }
const char *mock_log_text(void) { return log_buf ? log_buf : ""; }

void mock_log_clear(void) {
  free(log_buf);
  log_buf = NULL;
  log_len = 0;
}

/* ---- instances --------------------------------------------------------------------------------------- */
struct ferry_instance {
  char *plugin;
  void *ctx;
  uint32_t role;
  ferry_mode mode;
};

ferry_instance *mock_instance_new(const char *plugin, void *ctx, uint32_t role, ferry_mode mode) {
  ferry_instance *ins = xmalloc(sizeof *ins);
  ins->plugin = ferry_strdup(plugin ? plugin : "");
  ins->ctx = ctx;
  ins->role = role;
  ins->mode = mode;
  return ins;
}

void mock_instance_free(ferry_instance *ins) {
  if (!ins) return;
  free(ins->plugin);
  free(ins);
}

void *ferry_instance_ctx(const ferry_instance *ins) { return ins->ctx; }
uv_loop_t *ferry_instance_loop(const ferry_instance *ins) {
  (void)ins;
  return uv_default_loop();
}
const char *ferry_instance_stage(const ferry_instance *ins) {
  (void)ins;
  return "unit";
}
const char *ferry_instance_plugin(const ferry_instance *ins) { return ins->plugin; }
uint32_t ferry_instance_role(const ferry_instance *ins) { return ins->role; }
ferry_mode ferry_instance_mode(const ferry_instance *ins) { return ins->mode; }
unsigned ferry_instance_concurrency(const ferry_instance *ins) {
  (void)ins;
  return 4;
}
double ferry_instance_rate(const ferry_instance *ins) {
  (void)ins;
  return 0;
}

#define MAX_SECRETS 32
static char *secrets[MAX_SECRETS];

void ferry_secret(const ferry_instance *ins, const char *value) {
  (void)ins;
  count("ferry_secret");
  for (int i = 0; i < MAX_SECRETS; i++)
    if (!secrets[i]) {
      secrets[i] = ferry_strdup(value);
      return;
    }
}

int mock_secret_registered(const char *value) {
  for (int i = 0; i < MAX_SECRETS && secrets[i]; i++)
    if (!strcmp(secrets[i], value)) return 1;
  return 0;
}

/* ---- items ------------------------------------------------------------------------------------------- */
ferry_item *ferry_item_new(uint32_t kind, const char *key, json_t *body) {
  ferry_item *it = xmalloc(sizeof *it);
  memset(it, 0, sizeof *it);
  it->kind = kind;
  it->key = ferry_strdup(key);
  it->body = body ? body : json_object();
  return it;
}

void ferry_item_free(ferry_item *it) {
  if (!it) return;
  free(it->key);
  json_decref(it->body);
  free(it->payload);
  free(it);
}

void ferry_item_set_payload(ferry_item *it, void *buf, size_t len) {
  free(it->payload);
  it->payload = buf;
  it->payload_len = len;
}

const char *ferry_item_str(const ferry_item *it, const char *field, const char *dflt) {
  const char *s = json_string_value(json_object_get(it->body, field));
  return s ? s : dflt;
}

int64_t ferry_item_int(const ferry_item *it, const char *field, int64_t dflt) {
  json_t *v = json_object_get(it->body, field);
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

/* ---- pipeline calls ---------------------------------------------------------------------------------- */
void ferry_emit(ferry_instance *ins, ferry_item *item) {
  (void)ins;
  count("ferry_emit");
  ferry_item_free(item);
}
void ferry_source_end(ferry_instance *ins) {
  (void)ins;
  count("ferry_source_end");
}
void ferry_source_fail(ferry_instance *ins, const ferry_error *err) {
  (void)ins;
  (void)err;
  count("ferry_source_fail");
}
void ferry_source_total(ferry_instance *ins, int64_t total) {
  (void)ins;
  (void)total;
  count("ferry_source_total");
}
int ferry_source_wanted(ferry_instance *ins, const char *key) {
  (void)ins;
  (void)key;
  count("ferry_source_wanted");
  return 1;
}

char *ferry_shared_get(ferry_instance *ins, const char *name) {
  (void)ins;
  (void)name;
  count("ferry_shared_get");
  return NULL; /* nothing shared: the plugin asks itself */
}

int ferry_shared_put(ferry_instance *ins, const char *name, const char *value, ferry_error *err) {
  (void)ins;
  (void)name;
  (void)value;
  (void)err;
  count("ferry_shared_put");
  return 0;
}

const ferry_item *ferry_task_item(const ferry_task *task) { (void)task; unavailable(__func__); return NULL; }
ferry_instance *ferry_task_instance(const ferry_task *task) { (void)task; unavailable(__func__); return NULL; }
ferry_mode ferry_task_mode(const ferry_task *task) { (void)task; unavailable(__func__); return FERRY_MODE_RUN; }
unsigned ferry_task_attempt(const ferry_task *task) { (void)task; unavailable(__func__); return 0; }
const char *ferry_task_step(const ferry_task *task) { (void)task; unavailable(__func__); return NULL; }
json_t *ferry_task_state(ferry_task *task) { (void)task; unavailable(__func__); return NULL; }
json_t *ferry_task_report(ferry_task *task) { (void)task; unavailable(__func__); return NULL; }
int ferry_task_repair(const ferry_task *task) { (void)task; unavailable(__func__); return 0; }
void ferry_task_done(ferry_task *task, unsigned flags) { (void)task; (void)flags; unavailable(__func__); }
void ferry_task_fail(ferry_task *task, const ferry_error *err) { (void)task; (void)err; unavailable(__func__); }
int ferry_task_intent(ferry_task *task, const char *step, ferry_error *err) {
  (void)task; (void)step; (void)err;
  unavailable(__func__);
  return 0;
}
int ferry_task_map_id(ferry_task *task, const char *kind, const char *old_id, const char *new_id, ferry_error *err) {
  (void)task; (void)kind; (void)old_id; (void)new_id; (void)err;
  unavailable(__func__);
  return 0;
}
char *ferry_task_lookup_id(ferry_task *task, const char *kind, const char *old_id) {
  (void)task; (void)kind; (void)old_id;
  unavailable(__func__);
  return NULL;
}
void ferry_fire(ferry_instance *ins, ferry_task *task, const char *point, json_t *data, ferry_done_fn done,
                void *arg) {
  (void)ins; (void)task; (void)point; (void)data; (void)done; (void)arg;
  unavailable(__func__);
}

/* ---- services: not started in unit tests --------------------------------------------------------------- */
ferry_http *ferry_http_new(ferry_instance *ins, const ferry_http_opts *opts, ferry_error *err) {
  (void)ins;
  (void)opts;
  count("ferry_http_new");
  ferry_error_set(err, FERRY_EUNSUPPORTED, "mock core: no HTTP service in a unit test");
  return NULL;
}
void ferry_http_free(ferry_http *http) { (void)http; }
int ferry_http_send(ferry_http *http, const ferry_http_request *req, ferry_http_cb cb, void *arg) {
  (void)http; (void)req; (void)cb; (void)arg;
  count("ferry_http_send");
  return FERRY_EUNSUPPORTED;
}
int ferry_http_send_ex(ferry_http *http, const ferry_http_request *req, unsigned flags, ferry_http_cb cb,
                       void *arg) {
  (void)flags;
  return ferry_http_send(http, req, cb, arg);
}
size_t ferry_http_pending(const ferry_http *http) {
  (void)http;
  return 0;
}

ferry_pg *ferry_pg_new(ferry_instance *ins, const char *conninfo, ferry_error *err) {
  (void)ins;
  (void)conninfo;
  count("ferry_pg_new");
  ferry_error_set(err, FERRY_EUNSUPPORTED, "mock core: no PostgreSQL service in a unit test");
  return NULL;
}
void ferry_pg_free(ferry_pg *pg) { (void)pg; }
int ferry_pg_query(ferry_pg *pg, const char *sql, int nparams, const char *const *params, ferry_pg_cb cb,
                   void *arg) {
  (void)pg; (void)sql; (void)nparams; (void)params; (void)cb; (void)arg;
  count("ferry_pg_query");
  return FERRY_EUNSUPPORTED;
}
int ferry_pg_copy_out(ferry_pg *pg, const char *sql, ferry_pg_chunk_cb chunk, ferry_pg_cb done, void *arg) {
  (void)pg; (void)sql; (void)chunk; (void)done; (void)arg;
  return FERRY_EUNSUPPORTED;
}
int ferry_pg_copy_in(ferry_pg *pg, const char *sql, const void *data, size_t len, ferry_pg_cb done, void *arg) {
  (void)pg; (void)sql; (void)data; (void)len; (void)done; (void)arg;
  return FERRY_EUNSUPPORTED;
}
size_t ferry_pg_pending(const ferry_pg *pg) {
  (void)pg;
  return 0;
}

/* the SQL service (ferry/sql.h): none in a unit test */
ferry_sql *ferry_sql_open(ferry_instance *ins, const char *url, const ferry_sql_opts *opts, ferry_error *err) {
  (void)ins; (void)url; (void)opts;
  count("ferry_sql_open");
  ferry_error_set(err, FERRY_EUNSUPPORTED, "mock core: no SQL service in a unit test");
  return NULL;
}
void ferry_sql_close(ferry_sql *db) { (void)db; }
ferry_sql_engine ferry_sql_engine_of(const ferry_sql *db) {
  (void)db;
  return FERRY_SQL_POSTGRESQL;
}
const char *ferry_sql_endpoint(const ferry_sql *db) {
  (void)db;
  return "";
}
int ferry_sql_query(ferry_sql *db, ferry_sql_txn *txn, const char *sql, size_t nparams,
                    const ferry_sql_value *params, ferry_sql_rows_cb rows, ferry_sql_done_cb done, void *arg) {
  (void)db; (void)txn; (void)sql; (void)nparams; (void)params; (void)rows; (void)done; (void)arg;
  count("ferry_sql_query");
  return FERRY_EUNSUPPORTED;
}
int ferry_sql_begin(ferry_sql *db, unsigned mode, const char *import, ferry_sql_begin_cb cb, void *arg) {
  (void)db; (void)mode; (void)import; (void)cb; (void)arg;
  return FERRY_EUNSUPPORTED;
}
int ferry_sql_commit(ferry_sql_txn *txn, ferry_sql_done_cb done, void *arg) {
  (void)txn; (void)done; (void)arg;
  return FERRY_EUNSUPPORTED;
}
char *ferry_sql_quote_ident(const ferry_sql *db, const char *ident) {
  (void)db;
  return ident ? ferry_asprintf("`%s`", ident) : NULL;
}

