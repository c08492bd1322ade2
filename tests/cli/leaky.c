/* test-leaky: a deliberately careless plugin used by the CLI tests. Its sink puts its secret option into
 * every place a plugin can write to (log lines, journal state, intents, the report, error messages), so
 * that the test can prove that the core's redaction keeps the secret out of every output anyway. */
#include <stdio.h>
#include <string.h>

#include <ferry/ferry.h>

typedef struct leaky {
  char *password;
  int64_t count;
  char *fail_key;
  int64_t emitted;
  int ended;
} leaky;

static const ferry_option leaky_options[] = {
    {.key = "password", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_SECRET, offsetof(leaky, password),
     "a secret the plugin is careless with"},
    {.key = "count", FERRY_OPT_INT, "5", 0, offsetof(leaky, count), "items the source emits"},
    {.key = "fail_key", FERRY_OPT_STRING, "\"\"", 0, offsetof(leaky, fail_key), "key of an item the sink fails"},
    FERRY_OPTIONS_END};

static int leaky_init(ferry_instance *ins, ferry_error *err) {
  leaky *c = ferry_instance_ctx(ins);
  ferry_log_info(ins, "init with password=%s", c->password);
  (void)err;
  return 0;
}

static void src_demand(ferry_instance *ins, size_t n) {
  leaky *c = ferry_instance_ctx(ins);
  while (n-- > 0 && c->emitted < c->count) {
    char key[32];
    snprintf(key, sizeof key, "k%lld", (long long)c->emitted++);
    json_t *body = json_pack("{s:s}", "secret_in_body", "not-a-secret");
    ferry_emit(ins, ferry_item_new(FERRY_ITEM_RECORD, key, body));
  }
  if (c->emitted >= c->count && !c->ended) {
    c->ended = 1;
    ferry_source_end(ins);
  }
}

static void sink_any(ferry_instance *ins, ferry_task *task) {
  leaky *c = ferry_instance_ctx(ins);
  const ferry_item *it = ferry_task_item(task);
  ferry_log_info(ins, "writing %s using dsn host=x password=%s", it->key, c->password);
  json_object_set_new(ferry_task_state(task), "dsn", json_sprintf("host=x password=%s", c->password));
  json_object_set_new(ferry_task_report(task), "note", json_sprintf("used %s", c->password));
  if (ferry_task_mode(task) == FERRY_MODE_RUN) {
    ferry_error e = FERRY_ERROR_INIT;
    if (ferry_task_intent(task, "write", &e) < 0) {
      ferry_task_fail(task, &e);
      ferry_error_clear(&e);
      return;
    }
  }
  if (c->fail_key && !strcmp(c->fail_key, it->key)) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EPERM, "login refused for password %s", c->password);
    ferry_error_set_detail(&e, "server said: bad password %s", c->password);
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    return;
  }
  ferry_task_done(task, 0);
}

static const ferry_source_ops leaky_source = {
    .struct_size = sizeof(ferry_source_ops), .emits = FERRY_ITEM_RECORD, .demand = src_demand};
static const ferry_sink_ops leaky_sink = {.struct_size = sizeof(ferry_sink_ops),
                                          .accepts = FERRY_ITEM_RECORD,
                                          .write = sink_any,
                                          .plan = sink_any,
                                          .verify = sink_any};

FERRY_PLUGIN_DEFINE(test_leaky, .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK, .name = "test-leaky",
                    .version = "1.0", .description = "test plugin that tries to leak its secret",
                    .license = "Apache-2.0", .options = leaky_options, .ctx_size = sizeof(leaky),
                    .init = leaky_init, .source = &leaky_source, .sink = &leaky_sink);
