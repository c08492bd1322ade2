/* bench-gen: the benchmark's generating source. Emits `count` record items with keys "b<n>" and an empty
 * body, synchronously inside demand(). */
#include <stdio.h>

#include <ferry/ferry.h>

typedef struct bgen {
  int64_t count;
  int64_t emitted;
  int ended;
} bgen;

static const ferry_option bgen_options[] = {
    {.key = "count", FERRY_OPT_INT, "10000000", 0, offsetof(bgen, count), "items to emit"}, FERRY_OPTIONS_END};

static int bgen_start(ferry_instance *ins, ferry_error *err) {
  bgen *g = ferry_instance_ctx(ins);
  (void)err;
  ferry_source_total(ins, g->count);
  return 0;
}

static void bgen_demand(ferry_instance *ins, size_t n) {
  bgen *g = ferry_instance_ctx(ins);
  char key[32];
  while (n-- > 0 && g->emitted < g->count) {
    snprintf(key, sizeof key, "b%lld", (long long)g->emitted++);
    ferry_emit(ins, ferry_item_new(FERRY_ITEM_RECORD, key, NULL));
  }
  if (g->emitted >= g->count && !g->ended) {
    g->ended = 1;
    ferry_source_end(ins);
  }
}

static const ferry_source_ops bgen_ops = {.struct_size = sizeof(ferry_source_ops),
                                          .emits = FERRY_ITEM_RECORD,
                                          .start = bgen_start,
                                          .demand = bgen_demand};

FERRY_PLUGIN_DEFINE(bench_gen, .kinds = FERRY_KIND_SOURCE, .name = "bench-gen", .version = "1.0",
                    .description = "benchmark: generating source", .license = "Apache-2.0",
                    .options = bgen_options, .ctx_size = sizeof(bgen), .source = &bgen_ops);
