/* The pipeline at load time: resolve every plugin of every stage, check that they fit together (roles,
 * item kinds, hook points), and order the stages by their `after` edges. Every error is found here, before
 * anything runs. */
#include <stdlib.h>
#include <string.h>

#include "run/run.h"

const char *const ferry__core_points[] = {"stage_start", "stage_end", "item_done", "item_failed", NULL};

/* What the checks read: the configuration and the registry the plugins come from. */
typedef struct build {
  const ferry_config *cfg;
  ferry_registry *reg;
} build;

static int strv_has(const char *const *v, const char *s) {
  for (size_t i = 0; v && v[i]; i++)
    if (!strcmp(v[i], s)) return 1;
  return 0;
}

static char *kinds_text(uint32_t bits) {
  ferry_buf sb = {0};
  for (uint32_t b = 1; b <= FERRY_ITEM_ALL; b <<= 1)
    if (bits & b) ferry_buf_addf(&sb, "%s%s", sb.len ? ", " : "", ferry_item_kind_name(b));
  if (!sb.len) ferry_buf_add(&sb, "nothing");
  return ferry_buf_steal(&sb);
}

static const ferry_plugin *resolve(const build *b, const ferry_stage_cfg *sc, const ferry_plugin_ref *ref,
                                   uint32_t role, const char *what, ferry_error *err) {
  const char *rname = role == FERRY_KIND_SOURCE ? "source" : role == FERRY_KIND_SINK ? "sink" : "hook";
  if (!ref->plugin || !*ref->plugin) {
    ferry_error_set(err, FERRY_ECONFIG, "%s: stage \"%s\": %s has no plugin name", b->cfg->origin, sc->name,
                    what);
    return NULL;
  }
  const ferry_plugin_entry *e = ferry__registry_find(b->reg, ref->plugin, err);
  if (!e) {
    ferry_error_prefix(err, "%s: stage \"%s\" %s", b->cfg->origin, sc->name, what);
    return NULL;
  }
  if (!(e->plugin->kinds & role)) {
    ferry_error_set(err, FERRY_ECONFIG,
                    "%s: stage \"%s\": plugin \"%s\" (%s) cannot be used as a %s: it is not "
                    "a %s plugin",
                    b->cfg->origin, sc->name, ref->plugin, e->origin, rname, rname);
    return NULL;
  }
  return e->plugin;
}

/* Hook points valid in a stage: the core's, the source's and the sink's. */
static char *valid_points_text(const ferry_plugin *src, const ferry_plugin *sink) {
  ferry_buf sb = {0};
  for (size_t i = 0; ferry__core_points[i]; i++)
    ferry_buf_addf(&sb, "%s%s", i ? ", " : "", ferry__core_points[i]);
  const char *const *sp = src->source->hook_points, *const *kp = sink->sink->hook_points;
  for (size_t i = 0; sp && sp[i]; i++) ferry_buf_addf(&sb, ", %s", sp[i]);
  for (size_t i = 0; kp && kp[i]; i++)
    if (!strv_has(sp, kp[i])) ferry_buf_addf(&sb, ", %s", kp[i]);
  return ferry_buf_steal(&sb);
}

size_t ferry__stage_refs(const ferry_stage *st) { return 2 + st->cfg->nhooks; }

void ferry__stage_ref_at(ferry_stage *st, size_t i, ferry__stage_ref *r) {
  memset(r, 0, sizeof *r);
  if (i < 2) {
    int src = i == 0;
    r->ref = src ? &st->cfg->source : &st->cfg->sink;
    r->role = src ? FERRY_KIND_SOURCE : FERRY_KIND_SINK;
    snprintf(r->what, sizeof r->what, "%s", src ? "source" : "sink");
    r->plugin = src ? &st->source_plugin : &st->sink_plugin;
    r->options = src ? &st->source_options : &st->sink_options;
    r->instance = src ? &st->source : &st->sink;
    return;
  }
  size_t h = r->hook = i - 2;
  r->ref = &st->cfg->hooks[h];
  r->role = FERRY_KIND_HOOK;
  snprintf(r->what, sizeof r->what, "hooks[%zu]", h);
  r->plugin = &st->hook_plugins[h];
  r->options = &st->hook_options[h];
  r->instance = st->hooks ? &st->hooks[h] : NULL;
}

/* The sink can take what the source emits. */
static int check_kinds(const build *b, ferry_stage *st, ferry_error *err) {
  const ferry_stage_cfg *sc = st->cfg;
  uint32_t emits = st->source_plugin->source->emits, accepts = st->sink_plugin->sink->accepts;
  if (emits & accepts) return 0;
  char *e = kinds_text(emits), *a = kinds_text(accepts);
  ferry_error_set(
      err, FERRY_ECONFIG,
      "%s: stage \"%s\": source \"%s\" emits %s but sink \"%s\" accepts %s: no item could reach "
      "the sink",
      b->cfg->origin, sc->name, sc->source.plugin, e, sc->sink.plugin, a);
  free(e);
  free(a);
  return FERRY_ECONFIG;
}

/* The points of hook h are fired in this stage and served by the hook. */
static int check_points(const build *b, ferry_stage *st, size_t h, ferry_error *err) {
  const ferry_stage_cfg *sc = st->cfg;
  const ferry_plugin_ref *ref = &sc->hooks[h];
  const ferry_plugin *hp = st->hook_plugins[h];
  if (!ref->points || !ref->points[0]) {
    char *valid = valid_points_text(st->source_plugin, st->sink_plugin);
    ferry_error_set(err, FERRY_ECONFIG,
                    "%s: stage \"%s\" hooks[%zu] \"%s\": no hook points given "
                    "(\"points\": [...]); valid points here: %s",
                    b->cfg->origin, sc->name, h, ref->plugin, valid);
    free(valid);
    return FERRY_ECONFIG;
  }
  for (size_t p = 0; ref->points[p]; p++) {
    const char *pt = ref->points[p];
    int fired = strv_has(ferry__core_points, pt) || strv_has(st->source_plugin->source->hook_points, pt) ||
                strv_has(st->sink_plugin->sink->hook_points, pt);
    if (!fired) {
      char *valid = valid_points_text(st->source_plugin, st->sink_plugin);
      ferry_error_set(err, FERRY_ECONFIG,
                      "%s: stage \"%s\" hooks[%zu] \"%s\": hook point \"%s\" is never fired in this stage "
                      "(source \"%s\", sink \"%s\"); valid points: %s",
                      b->cfg->origin, sc->name, h, ref->plugin, pt, sc->source.plugin, sc->sink.plugin,
                      valid);
      free(valid);
      return FERRY_ECONFIG;
    }
    if (hp->hook->points && !strv_has(hp->hook->points, pt)) {
      ferry_buf sb = {0};
      for (size_t i = 0; hp->hook->points[i]; i++)
        ferry_buf_addf(&sb, "%s%s", i ? ", " : "", hp->hook->points[i]);
      ferry_error_set(err, FERRY_ECONFIG,
                      "%s: stage \"%s\" hooks[%zu]: hook \"%s\" cannot serve point \"%s\"; "
                      "it serves: %s",
                      b->cfg->origin, sc->name, h, ref->plugin, pt, sb.buf ? sb.buf : "");
      ferry_buf_free(&sb);
      return FERRY_ECONFIG;
    }
  }
  return 0;
}

/* Every plugin of the stage found and of the right role, the source's items reach the sink, the hooks'
 * points exist: in the order of the stage's references (source, sink, hooks). */
static int check_stage(const build *b, ferry_stage *st, ferry_error *err) {
  const ferry_stage_cfg *sc = st->cfg;
  st->hook_plugins = ferry__xcalloc(sc->nhooks ? sc->nhooks : 1, sizeof *st->hook_plugins);
  st->hook_options = ferry__xcalloc(sc->nhooks ? sc->nhooks : 1, sizeof *st->hook_options);
  for (size_t i = 0; i < ferry__stage_refs(st); i++) {
    ferry__stage_ref r;
    ferry__stage_ref_at(st, i, &r);
    *r.plugin = resolve(b, sc, r.ref, r.role, r.what, err);
    if (!*r.plugin) return err->code ? err->code : FERRY_ECONFIG;
    int rc = r.role == FERRY_KIND_SINK ? check_kinds(b, st, err)
             : r.role == FERRY_KIND_HOOK ? check_points(b, st, r.hook, err)
                                         : 0;
    if (rc) return rc;
  }
  return 0;
}

/* The options of every plugin reference, checked and applied once; the instances of each run start from
 * them. */
static int check_options(const build *b, ferry_stage *st, ferry_error *err) {
  for (size_t i = 0; i < ferry__stage_refs(st); i++) {
    ferry__stage_ref r;
    ferry__stage_ref_at(st, i, &r);
    char *where = r.ref->where ? ferry_asprintf("%s options", r.ref->where)
                               : ferry_asprintf("%s: stage \"%s\" %s \"%s\" options", b->cfg->origin,
                                                  st->name, r.what, r.ref->plugin);
    *r.options = ferry__options_prepare(*r.plugin, r.ref->options, where, b->cfg->base_dir, r.role, err);
    free(where);
    if (!*r.options) return err->code ? err->code : FERRY_ECONFIG;
  }
  return 0;
}

/* Depth-first search for a cycle; on finding one, writes "a -> b -> c -> a" in running order. */
enum { WHITE = 0, GREY, BLACK };

static int dfs_cycle(ferry_stage **all, size_t n, size_t i, int *color, size_t *stack, size_t depth,
                     ferry_buf *out) {
  color[i] = GREY;
  stack[depth] = i;
  ferry_stage *st = all[i];
  for (size_t k = 0; k < st->nafter; k++) {
    size_t j = 0;
    while (j < n && all[j] != st->after[k]) j++;
    if (color[j] == GREY) {
      /* stack[d..depth] = j ... i, each waiting for the previous one's predecessor: reverse for running order
       */
      size_t d = 0;
      while (stack[d] != j) d++;
      ferry_buf_add(out, all[j]->name);
      for (size_t x = depth + 1; x-- > d;) ferry_buf_addf(out, " -> %s", all[stack[x]]->name);
      return 1;
    }
    if (color[j] == WHITE && dfs_cycle(all, n, j, color, stack, depth + 1, out)) return 1;
  }
  color[i] = BLACK;
  return 0;
}

int ferry__pipeline_build(ferry__run *run, ferry_registry *reg, ferry_error *err) {
  const ferry_config *cfg = run->cfg;
  const build bd = {cfg, reg}, *b = &bd;
  size_t n = cfg->nstages;
  if (n == 0) return ferry_error_set(err, FERRY_ECONFIG, "%s: no stages configured", cfg->origin);
  ferry_stage **all = ferry__xcalloc(n, sizeof *all);
  run->stages = all;
  run->nstages = n;
  for (size_t i = 0; i < n; i++) {
    ferry_stage *st = ferry__xcalloc(1, sizeof *st);
    st->run = run;
    st->cfg = &cfg->stages[i];
    st->name = cfg->stages[i].name;
    all[i] = st;
  }
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < i; j++)
      if (!strcmp(all[i]->name, all[j]->name))
        return ferry_error_set(err, FERRY_ECONFIG,
                               "%s: two stages are named \"%s\" (stages[%zu] and stages[%zu])", cfg->origin,
                               all[i]->name, j, i);
  for (size_t i = 0; i < n; i++) {
    ferry_stage *st = all[i];
    size_t na = ferry__strv_len(st->cfg->after);
    st->after = ferry__xcalloc(na ? na : 1, sizeof *st->after);
    for (size_t k = 0; k < na; k++) {
      const char *a = st->cfg->after[k];
      ferry_stage *dep = NULL;
      for (size_t j = 0; j < n; j++)
        if (!strcmp(all[j]->name, a)) dep = all[j];
      if (!dep) {
        ferry_buf sb = {0};
        for (size_t j = 0; j < n; j++) ferry_buf_addf(&sb, "%s\"%s\"", j ? ", " : "", all[j]->name);
        ferry_error_set(err, FERRY_ECONFIG,
                        "%s: stage \"%s\" comes after \"%s\", which is not a stage; stages: %s", cfg->origin,
                        st->name, a, sb.buf);
        ferry_buf_free(&sb);
        return FERRY_ECONFIG;
      }
      if (dep == st)
        return ferry_error_set(err, FERRY_ECONFIG,
                               "%s: stages form a cycle: %s -> %s (a stage cannot come after "
                               "itself)",
                               cfg->origin, st->name, st->name);
      int dup = 0;
      for (size_t x = 0; x < st->nafter; x++) dup |= st->after[x] == dep;
      if (!dup) st->after[st->nafter++] = dep;
    }
  }
  /* cycles */
  int *color = ferry__xcalloc(n, sizeof *color);
  size_t *stack = ferry__xcalloc(n + 1, sizeof *stack);
  ferry_buf cyc = {0};
  int found = 0;
  for (size_t i = 0; i < n && !found; i++)
    if (color[i] == WHITE) found = dfs_cycle(all, n, i, color, stack, 0, &cyc);
  free(color);
  free(stack);
  if (found) {
    ferry_error_set(err, FERRY_ECONFIG, "%s: stages form a cycle: %s", cfg->origin, cyc.buf);
    ferry_buf_free(&cyc);
    return FERRY_ECONFIG;
  }
  /* Kahn's algorithm, stable in configuration order */
  ferry_stage **order = ferry__xcalloc(n, sizeof *order);
  char *placed = ferry__xcalloc(n, 1);
  for (size_t k = 0; k < n; k++) {
    for (size_t i = 0; i < n; i++) {
      if (placed[i]) continue;
      int ready = 1;
      for (size_t x = 0; x < all[i]->nafter && ready; x++) {
        size_t j = 0;
        while (all[j] != all[i]->after[x]) j++;
        ready = placed[j];
      }
      if (ready) {
        placed[i] = 1;
        order[k] = all[i];
        order[k]->order = k;
        break;
      }
    }
  }
  free(placed);
  memcpy(all, order, n * sizeof *all);
  free(order);
  /* plugins, kinds, hook points (in topological order, so the first error is the first stage's), then every
   * plugin's options */
  for (size_t i = 0; i < n; i++) {
    int rc = check_stage(b, all[i], err);
    if (rc) return rc;
  }
  for (size_t i = 0; i < n; i++) {
    int rc = check_options(b, all[i], err);
    if (rc) return rc;
  }
  return 0;
}

void ferry__pipeline_free(ferry__run *run) {
  for (size_t i = 0; i < run->nstages; i++) {
    ferry_stage *st = run->stages[i];
    if (!st) continue;
    free(st->after);
    ferry__options_free(st->source_options);
    ferry__options_free(st->sink_options);
    for (size_t h = 0; st->hook_options && h < st->cfg->nhooks; h++) ferry__options_free(st->hook_options[h]);
    free(st->hook_options);
    free(st->hook_plugins);
    ferry_error_clear(&st->error);
    free(st);
  }
  free(run->stages);
  run->stages = NULL;
  run->nstages = 0;
}
