/* bench-null: the benchmark's discarding sink. Completes every item at once; every `every` items it prints
 * the count, the elapsed time since its first item, the rate, and the resident and peak memory. */
#include <stdio.h>
#include <sys/resource.h>
#include <unistd.h>

#include <ferry/ferry.h>

typedef struct bnull {
  int64_t every;
  int64_t n;
  uint64_t t0;
} bnull;

static const ferry_option bnull_options[] = {
    {.key = "every", FERRY_OPT_INT, "1000000", 0, offsetof(bnull, every), "print a line every that many items"},
    FERRY_OPTIONS_END};

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, res = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
    fclose(f);
  }
  return res * (sysconf(_SC_PAGESIZE) / 1024);
}

static void checkpoint(bnull *b) {
  double s = (double)(uv_hrtime() - b->t0) / 1e9;
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  printf("  %10lld items %8.2f s %12.0f items/s   RSS %7.1f MB   peak RSS %7.1f MB\n", (long long)b->n, s,
         s > 0 ? (double)b->n / s : 0.0, rss_kb() / 1024.0, ru.ru_maxrss / 1024.0);
  fflush(stdout);
}

static void bnull_write(ferry_instance *ins, ferry_task *task) {
  bnull *b = ferry_instance_ctx(ins);
  if (b->n++ == 0) b->t0 = uv_hrtime();
  ferry_task_done(task, 0);
  if (b->every > 0 && b->n % b->every == 0) checkpoint(b);
}

static const ferry_sink_ops bnull_ops = {
    .struct_size = sizeof(ferry_sink_ops), .accepts = FERRY_ITEM_ALL, .write = bnull_write};

FERRY_PLUGIN_DEFINE(bench_null, .kinds = FERRY_KIND_SINK, .name = "bench-null", .version = "1.0",
                    .description = "benchmark: discarding sink", .license = "Apache-2.0",
                    .options = bnull_options, .ctx_size = sizeof(bnull), .sink = &bnull_ops);
