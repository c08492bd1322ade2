/* The core benchmark: a generating source (bench-gen) into a discarding sink (bench-null) through the whole
 * runtime (demand, emit, tasks, completion), on one loop thread.
 *
 *   bench_core [--items N] [--journal-items M] [--checkpoints C] [--concurrency K]
 *
 * Run 1: N items (default 10 million), journal off. Run 2: M items (default 1 million), journal on (a fresh
 * SQLite file in a temporary directory). The sink prints the rate and the resident / peak memory every C
 * items (default 1 million), which shows memory flat in the item count; each run ends with its overall
 * rate. See README.md for the command used for the published figures. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "rt_plugins.h"

static int run(int64_t items, int journal, int64_t every, int concurrency, const char *dir) {
  char text[1024];
  snprintf(text, sizeof text,
           "{\"journal\": \"%s/bench-journal.db\", \"stages\": [{\"name\": \"bench\", \"journal\": %s, "
           "\"concurrency\": %d, \"source\": {\"plugin\": \"bench-gen\", \"options\": {\"count\": %lld}}, "
           "\"sink\": {\"plugin\": \"bench-null\", \"options\": {\"every\": %lld}}}]}",
           dir, journal ? "true" : "false", concurrency, (long long)items, (long long)every);
  json_t *cfg = json_loads(text, 0, NULL);
  ferry_error err = FERRY_ERROR_INIT;
  ferry_runtime_opts o;
  rt_runtime_opts(&o);
  ferry_runtime *rt = ferry_runtime_new(&o, &err);
  if (!rt || rt_add_plugins(rt, &err) < 0 || ferry_runtime_load_json(rt, cfg, "bench", &err) < 0) {
    fprintf(stderr, "bench: %s\n", err.message ? err.message : "cannot start");
    return 1;
  }
  json_decref(cfg);
  printf("%lld items, journal %s, concurrency %d (%s plugins):\n", (long long)items, journal ? "on" : "off",
         concurrency, rt_plugin_mode());
  ferry_run_opts ro = {.struct_size = sizeof ro, .mode = FERRY_MODE_RUN};
  ferry_run_summary sum = {0};
  int rc = ferry_runtime_run(rt, &ro, &sum, &err);
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("  total: %lld items in %.2f s = %.0f items/s, peak RSS %.1f MB, rc %d\n", (long long)sum.done,
         sum.seconds, sum.seconds > 0 ? (double)sum.done / sum.seconds : 0.0, ru.ru_maxrss / 1024.0, rc);
  if (rc || sum.done != items) fprintf(stderr, "bench: %s\n", err.message ? err.message : "items missing");
  ferry_error_clear(&err);
  ferry_runtime_free(rt);
  return rc || sum.done != items;
}

int main(int argc, char **argv) {
  int64_t items = 10000000, jitems = 1000000, every = 1000000;
  int concurrency = 8;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--items"))
      items = strtoll(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--journal-items"))
      jitems = strtoll(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--checkpoints"))
      every = strtoll(argv[i + 1], NULL, 10);
    else if (!strcmp(argv[i], "--concurrency"))
      concurrency = atoi(argv[i + 1]);
  }
  char dir[] = "/tmp/ferry-bench.XXXXXX";
  if (!mkdtemp(dir)) return 1;
  int bad = 0;
  if (items > 0) bad |= run(items, 0, every, concurrency, dir);
  if (jitems > 0) bad |= run(jitems, 1, every / 10 > 0 ? every / 10 : every, concurrency, dir);
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  if (system(cmd) != 0) bad = 1;
  return bad;
}
