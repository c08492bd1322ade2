/* test-mapper: the CLI tests' source and sink for verify, repair, status --items and export-map.
 *
 * The source emits `count` record items "k0", "k1", ... . The sink, in a run, records the intent "write",
 * maps record <old> -> r-<key> and file <old> -> f-<key> (<old> is "o-<key>", except for k2 whose old id
 * `o,"2"` needs CSV quoting), reports target_id t-<key> (and adopted + a loss for k4), and appends
 * "<key> repair=<ferry_task_repair()> step=<ferry_task_step() or ->" to `log`. Keys in `repair_fail` fail
 * when repaired. Verify fails the keys in `differ` with FERRY_EMISMATCH and two differences. */
#include <stdio.h>
#include <string.h>

#include <ferry/ferry.h>

typedef struct mapper {
  int64_t count;
  char *log;
  char **differ;
  char **repair_fail;
  int64_t emitted;
  int ended;
} mapper;

static const ferry_option mapper_options[] = {
    {.key = "count", FERRY_OPT_INT, "5", 0, offsetof(mapper, count), "items the source emits"},
    {.key = "log", FERRY_OPT_STRING, "\"\"", 0, offsetof(mapper, log), "file: one line per item written"},
    {.key = "differ", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(mapper, differ), "verify: keys found different"},
    {.key = "repair_fail", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(mapper, repair_fail), "keys whose repair fails"},
    FERRY_OPTIONS_END};

static int in_list(char **list, const char *s) {
  for (size_t i = 0; list && list[i]; i++)
    if (!strcmp(list[i], s)) return 1;
  return 0;
}

static void src_demand(ferry_instance *ins, size_t n) {
  mapper *c = ferry_instance_ctx(ins);
  while (n-- > 0 && c->emitted < c->count) {
    char key[32];
    snprintf(key, sizeof key, "k%lld", (long long)c->emitted++);
    ferry_emit(ins, ferry_item_new(FERRY_ITEM_RECORD, key, json_object()));
  }
  if (c->emitted >= c->count && !c->ended) {
    c->ended = 1;
    ferry_source_end(ins);
  }
}

static void sink_write(ferry_instance *ins, ferry_task *task) {
  mapper *c = ferry_instance_ctx(ins);
  const char *key = ferry_task_item(task)->key;
  const char *step = ferry_task_step(task);
  if (*c->log) {
    FILE *f = fopen(c->log, "a");
    if (f) {
      fprintf(f, "%s repair=%d step=%s\n", key, ferry_task_repair(task), step ? step : "-");
      fclose(f);
    }
  }
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry_task_intent(task, "write", &e) < 0) {
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    return;
  }
  if (ferry_task_repair(task) && in_list(c->repair_fail, key)) {
    ferry_error_set(&e, FERRY_EPROTO, "test-mapper: the target refused the repair of %s", key);
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    return;
  }
  char old[64], id[64];
  snprintf(old, sizeof old, strcmp(key, "k2") ? "o-%s" : "o,\"2\"", key);
  snprintf(id, sizeof id, "r-%s", key);
  int rc = ferry_task_map_id(task, "record", old, id, &e);
  snprintf(id, sizeof id, "f-%s", key);
  if (!rc) rc = ferry_task_map_id(task, "file", old, id, &e);
  if (rc < 0) {
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    return;
  }
  json_t *rep = ferry_task_report(task);
  json_object_set_new(rep, "target_id", json_sprintf("t-%s", key));
  if (!strcmp(key, "k4")) {
    json_object_set_new(rep, "adopted", json_true());
    json_object_set_new(rep, "losses", json_pack("[{s:s, s:s}]", "kind", "deadline", "what", "test loss"));
  }
  ferry_task_done(task, 0);
}

static void sink_verify(ferry_instance *ins, ferry_task *task) {
  mapper *c = ferry_instance_ctx(ins);
  const char *key = ferry_task_item(task)->key;
  if (in_list(c->differ, key)) {
    json_object_set_new(ferry_task_report(task), "differences",
                        json_pack("[s, s]", "field status: open vs closed", "attachment missing"));
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EMISMATCH, "test-mapper: %s differs on the target", key);
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    return;
  }
  ferry_task_done(task, 0);
}

static const ferry_source_ops mapper_source = {
    .struct_size = sizeof(ferry_source_ops), .emits = FERRY_ITEM_RECORD, .demand = src_demand};
static const ferry_sink_ops mapper_sink = {.struct_size = sizeof(ferry_sink_ops),
                                           .accepts = FERRY_ITEM_RECORD,
                                           .write = sink_write,
                                           .verify = sink_verify};

FERRY_PLUGIN_DEFINE(test_mapper, .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK, .name = "test-mapper",
                    .version = "1.0", .description = "test plugin: ids, verify differences, repairs",
                    .license = "Apache-2.0", .options = mapper_options, .ctx_size = sizeof(mapper),
                    .source = &mapper_source, .sink = &mapper_sink);
