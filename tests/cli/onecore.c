/* test-onecore: a plugin that proves it runs on the core of the process that opened it (tests/cli,
 * onecore_test.sh). Built twice from this file: test-onecore as an in-tree module (no libferry: its SDK calls
 * bind to the process's core) and test-onecore-linked linked with libferry, as a module built out of tree
 * with pkg-config or find_package is (ONECORE_LINKED).
 *
 * init() makes up a secret the core cannot know (from the option "seed"), registers it with ferry_secret()
 * and logs, at debug level, where its SDK calls go and how many libferry files the process has mapped. The
 * sink puts the secret into the report of one item and fails the other with the secret in the error. With
 * one core, the CLI's log level and format apply to these lines and the core's redaction (its log lines of
 * the failure, the journal, the report) knows the secret; with two, the second core's registry and log
 * configuration would be the ones this plugin writes to. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

#include <ferry/ferry.h>

#ifdef ONECORE_LINKED
#define ONECORE_ID test_onecore_linked
#define ONECORE_NAME "test-onecore-linked"
#else
#define ONECORE_ID test_onecore
#define ONECORE_NAME "test-onecore"
#endif

typedef struct onecore {
  char *seed;
  char secret[96];
  int emitted, ended;
} onecore;

static const ferry_option onecore_options[] = {{.key = "seed", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED,
                                                offsetof(onecore, seed), "the secret is made from it"},
                                               FERRY_OPTIONS_END};

/* Files named libferry.so* mapped in this process (distinct paths). */
static int libferry_mapped(void) {
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) return -1;
  char line[4352], seen[8][4096];
  int n = 0;
  while (fgets(line, sizeof line, f)) {
    char *path = strchr(line, '/');
    if (!path) continue;
    path[strcspn(path, "\n")] = '\0';
    if (strncmp(strrchr(path, '/') + 1, "libferry.so", 11)) continue;
    int dup = 0;
    for (int i = 0; i < n; i++) dup |= !strcmp(seen[i], path);
    if (!dup && n < 8) snprintf(seen[n++], sizeof seen[0], "%s", path);
  }
  fclose(f);
  return n;
}

static int onecore_init(ferry_instance *ins, ferry_error *err) {
  onecore *c = ferry_instance_ctx(ins);
  size_t n = strlen(c->seed);
  char rev[64];
  for (size_t i = 0; i < n && i < sizeof rev - 1; i++) rev[i] = c->seed[n - 1 - i];
  rev[n < sizeof rev - 1 ? n : sizeof rev - 1] = '\0';
  snprintf(c->secret, sizeof c->secret, "oc-%s-7193", rev);
  ferry_secret(ins, c->secret);
  Dl_info info;
  const char *from = dladdr((void *)&ferry_secret, &info) && info.dli_fname ? info.dli_fname : "?";
  ferry_log_debug(ins, "onecore: ferry_secret from %s, libferry mapped %d, secret %s", from,
                  libferry_mapped(), c->secret);
  (void)err;
  return 0;
}

static void src_demand(ferry_instance *ins, size_t n) {
  onecore *c = ferry_instance_ctx(ins);
  while (n-- > 0 && c->emitted < 2) {
    char key[16];
    snprintf(key, sizeof key, "k%d", c->emitted++);
    ferry_emit(ins, ferry_item_new(FERRY_ITEM_RECORD, key, NULL));
  }
  if (c->emitted >= 2 && !c->ended) {
    c->ended = 1;
    ferry_source_end(ins);
  }
}

static void sink_write(ferry_instance *ins, ferry_task *task) {
  onecore *c = ferry_instance_ctx(ins);
  if (!strcmp(ferry_task_item(task)->key, "k0")) {
    json_object_set_new(ferry_task_report(task), "note", json_sprintf("carried with %s", c->secret));
    ferry_task_done(task, 0);
    return;
  }
  ferry_error e = FERRY_ERROR_INIT;
  ferry_error_set(&e, FERRY_EPERM, "the target refused token %s", c->secret);
  ferry_task_fail(task, &e);
  ferry_error_clear(&e);
}

static const ferry_source_ops onecore_source = {
    .struct_size = sizeof(ferry_source_ops), .emits = FERRY_ITEM_RECORD, .demand = src_demand};
static const ferry_sink_ops onecore_sink = {
    .struct_size = sizeof(ferry_sink_ops), .accepts = FERRY_ITEM_RECORD, .write = sink_write};

FERRY_PLUGIN_DEFINE(ONECORE_ID, .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK, .name = ONECORE_NAME,
                    .version = "1.0", .description = "test plugin: proves it runs on the process's one core",
                    .license = "Apache-2.0", .options = onecore_options, .ctx_size = sizeof(onecore),
                    .init = onecore_init, .source = &onecore_source, .sink = &onecore_sink);
