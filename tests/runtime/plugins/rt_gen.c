/* rt-gen: a generating source for the runtime tests. Emits `count` record items with keys
 * "<prefix><6-digit number>", synchronously inside demand() or asynchronously from a uv timer, and can fail
 * at item k, emit an undeclared kind, misbehave on purpose (emit after end), or never end (stall).
 * Writes "D <n>" for each demand, "E <key>" for each emitted item and "STOP" to the `events` file. */
#include "rt_util.h"

typedef struct gen {
  int64_t count;
  char *prefix;
  int async;
  int64_t per_tick;
  int64_t fail_at;
  int64_t bad_kind_at;
  char *events;
  int misuse;
  int stall;
  int announce;
  /* run state */
  ferry_instance *ins;
  int64_t emitted;
  size_t demand;
  int ended, stopped;
  uv_timer_t *timer;
} gen;

static const ferry_option gen_options[] = {
    {.key = "count", FERRY_OPT_INT, "10", 0, offsetof(gen, count), "items to emit"},
    {.key = "prefix", FERRY_OPT_STRING, "\"k\"", 0, offsetof(gen, prefix), "key prefix"},
    {.key = "async", FERRY_OPT_BOOL, "false", 0, offsetof(gen, async),
     "emit from a timer instead of inside demand()"},
    {.key = "per_tick", FERRY_OPT_INT, "3", 0, offsetof(gen, per_tick), "async: items emitted per timer tick"},
    {.key = "fail_at", FERRY_OPT_INT, "-1", 0, offsetof(gen, fail_at), "call ferry_source_fail instead of item k"},
    {.key = "bad_kind_at", FERRY_OPT_INT, "-1", 0, offsetof(gen, bad_kind_at), "item k has an undeclared kind"},
    {.key = "events", FERRY_OPT_STRING, "\"\"", 0, offsetof(gen, events), "file for D/E/STOP lines"},
    {.key = "misuse", FERRY_OPT_BOOL, "false", 0, offsetof(gen, misuse), "emit and end again after the end"},
    {.key = "stall", FERRY_OPT_BOOL, "false", 0, offsetof(gen, stall), "never call ferry_source_end"},
    {.key = "announce", FERRY_OPT_BOOL, "true", 0, offsetof(gen, announce), "announce the total"},
    FERRY_OPTIONS_END};

static void emit_some(gen *g, int64_t max) {
  while (g->demand > 0 && g->emitted < g->count && max-- > 0 && !g->stopped && !g->ended) {
    if (g->emitted == g->fail_at) {
      ferry_error e = FERRY_ERROR_INIT;
      ferry_error_set(&e, FERRY_EPROTO, "rt-gen: cannot read item %lld (fail_at)", (long long)g->emitted);
      g->ended = 1;
      ferry_source_fail(g->ins, &e);
      ferry_error_clear(&e);
      return;
    }
    char key[128];
    snprintf(key, sizeof key, "%s%06lld", g->prefix, (long long)g->emitted);
    uint32_t kind = g->emitted == g->bad_kind_at ? FERRY_ITEM_INSTANCE : FERRY_ITEM_RECORD;
    json_t *body = json_pack("{s:s,s:I}", "table", "t", "n", (json_int_t)g->emitted);
    g->emitted++;
    g->demand--;
    rt_line(g->events, "E %s", key);
    ferry_emit(g->ins, ferry_item_new(kind, key, body));
  }
  if (g->emitted >= g->count && !g->ended && !g->stall && !g->stopped) {
    g->ended = 1;
    ferry_source_end(g->ins);
    if (g->misuse) { /* both are bugs the core must survive */
      ferry_emit(g->ins, ferry_item_new(FERRY_ITEM_RECORD, "after-end", NULL));
      ferry_source_end(g->ins);
    }
  }
}

static void on_tick(uv_timer_t *t) {
  gen *g = t->data;
  emit_some(g, g->per_tick);
  if (g->demand == 0 || g->ended || g->stopped) uv_timer_stop(t);
}

static int gen_start(ferry_instance *ins, ferry_error *err) {
  gen *g = ferry_instance_ctx(ins);
  g->ins = ins;
  if (g->announce) ferry_source_total(ins, g->count);
  if (g->async) {
    g->timer = malloc(sizeof *g->timer);
    if (!g->timer) return ferry_error_set(err, FERRY_ENOMEM, "rt-gen: out of memory");
    uv_timer_init(ferry_instance_loop(ins), g->timer);
    g->timer->data = g;
  }
  return 0;
}

static void gen_demand(ferry_instance *ins, size_t n) {
  gen *g = ferry_instance_ctx(ins);
  rt_line(g->events, "D %zu", n);
  g->demand += n;
  if (g->async) {
    if (!uv_is_active((uv_handle_t *)g->timer)) uv_timer_start(g->timer, on_tick, 0, 1);
  } else {
    emit_some(g, INT64_MAX);
  }
}

static void close_free(uv_handle_t *h) { free(h); }

static void gen_stop(ferry_instance *ins) {
  gen *g = ferry_instance_ctx(ins);
  g->stopped = 1;
  rt_line(g->events, "STOP");
  if (g->timer) {
    uv_close((uv_handle_t *)g->timer, close_free);
    g->timer = NULL;
  }
}

static void gen_fini(ferry_instance *ins) {
  gen *g = ferry_instance_ctx(ins);
  if (g->timer) {
    uv_close((uv_handle_t *)g->timer, close_free);
    g->timer = NULL;
  }
}

static const ferry_source_ops gen_source = {
    .struct_size = sizeof(ferry_source_ops),
    .emits = FERRY_ITEM_RECORD,
    .start = gen_start,
    .demand = gen_demand,
    .stop = gen_stop,
};

FERRY_PLUGIN_DEFINE(rt_gen, .kinds = FERRY_KIND_SOURCE, .name = "rt-gen", .version = "1.0",
                    .description = "runtime tests: generating source", .license = "Apache-2.0",
                    .options = gen_options, .ctx_size = sizeof(gen), .fini = gen_fini, .source = &gen_source);
