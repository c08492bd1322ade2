/* The embedding API (ferry/runtime.h): load a configuration (config, loader, checks, order), run it on the
 * runtime's loop (stage scheduling, journal group commits, progress, interrupt, stall detection), and
 * produce the summary, the JSON report and the exit status. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run/run.h"

/* ---- lifetime ------------------------------------------------------------------------------------------ */

static void on_wake(uv_async_t *h);

FERRY_API ferry_runtime *ferry_runtime_new(const ferry_runtime_opts *opts, ferry_error *err) {
  ferry_runtime *rt = ferry__xcalloc(1, sizeof *rt);
  int r = uv_loop_init(&rt->loop);
  if (r < 0) {
    ferry_error_set(err, FERRY_EIO, "cannot create the event loop: %s", uv_strerror(r));
    free(rt);
    return NULL;
  }
  rt->loop_init = 1;
  uv_async_init(&rt->loop, &rt->wake, on_wake);
  rt->wake.data = rt;
  uv_unref((uv_handle_t *)&rt->wake);
  if (opts) {
    size_t sz = opts->struct_size ? opts->struct_size : sizeof *opts;
    if (sz >= offsetof(ferry_runtime_opts, plugin_path) + sizeof opts->plugin_path)
      rt->plugin_path = ferry__strv_dup(opts->plugin_path);
    if (sz >= offsetof(ferry_runtime_opts, no_default_path) + sizeof opts->no_default_path)
      rt->no_default_path = opts->no_default_path;
    if (sz >= offsetof(ferry_runtime_opts, journal_path) + sizeof opts->journal_path)
      rt->journal_path = ferry__xstrdup(opts->journal_path);
  }
  const char *seed = getenv("FERRY_SEED");
  rt->rng = seed && *seed ? strtoull(seed, NULL, 0) : uv_hrtime() ^ ((uint64_t)getpid() << 32);
  if (!rt->rng) rt->rng = 0x9e3779b97f4a7c15ull;
  rt->reg = ferry__registry_new();
  if (ferry__registry_add_static(rt->reg, err) < 0) {
    ferry_runtime_free(rt);
    return NULL;
  }
  return rt;
}

static void on_closed_free(uv_handle_t *h) { (void)h; }

FERRY_API void ferry_runtime_free(ferry_runtime *rt) {
  if (!rt) return;
  ferry__pipeline_free(rt);
  if (rt->cfg) ferry__config_free(rt->cfg);
  if (rt->reg) ferry__registry_free(rt->reg);
  if (rt->loop_init) {
    uv_close((uv_handle_t *)&rt->wake, on_closed_free);
    uv_run(&rt->loop, UV_RUN_NOWAIT);
    if (uv_loop_close(&rt->loop) == UV_EBUSY)
      ferry_log_warn(NULL, "a plugin left handles open on the loop after the run");
  }
  ferry__strv_free(rt->plugin_path);
  free(rt->journal_path);
  free(rt->ssum);
  json_decref(rt->settings);
  ferry_error_clear(&rt->journal_error);
  free(rt);
}

FERRY_API uv_loop_t *ferry_runtime_loop(ferry_runtime *rt) { return rt ? &rt->loop : NULL; }

FERRY_API int ferry_runtime_add_plugin(ferry_runtime *rt, const ferry_plugin *plugin, ferry_error *err) {
  if (!rt || !plugin) return ferry_error_set(err, FERRY_EINVAL, "ferry_runtime_add_plugin: no plugin given");
  if (rt->loaded)
    return ferry_error_set(err, FERRY_EINVAL,
                           "ferry_runtime_add_plugin: add plugins before loading the config");
  return ferry__registry_add_builtin(rt->reg, plugin, "built-in", err);
}

/* ---- load ---------------------------------------------------------------------------------------------- */

/* The plugin path (ferry/runtime.h), assembled here only: the program's directories, the configuration's
 * (once one is loaded), then the default places. */
static void search_path(ferry_runtime *rt) {
  ferry__registry_clear_dirs(rt->reg);
  for (size_t i = 0; rt->plugin_path && rt->plugin_path[i]; i++)
    ferry__registry_add_dir(rt->reg, rt->plugin_path[i]);
  for (size_t i = 0; rt->cfg && rt->cfg->plugin_path && rt->cfg->plugin_path[i]; i++)
    ferry__registry_add_dir(rt->reg, rt->cfg->plugin_path[i]);
  if (!rt->no_default_path) ferry__registry_add_default_dirs(rt->reg);
}

static int load_common(ferry_runtime *rt, ferry_config *cfg, ferry_error *err) {
  rt->cfg = cfg;
  search_path(rt);
  int rc = ferry__pipeline_build(rt, err); /* plugins, their fit and their options: every load error */
  if (rc) {
    if (!err->code) ferry_error_set(err, rc, "%s", ferry_strerror(rc));
    ferry__pipeline_free(rt);
    ferry__config_free(cfg);
    rt->cfg = NULL;
    return rc < 0 ? rc : FERRY_ECONFIG;
  }
  rt->ssum = ferry__xcalloc(rt->nstages, sizeof *rt->ssum);
  rt->settings = ferry__config_settings(cfg);
  rt->loaded = 1;
  return 0;
}

FERRY_API int ferry_runtime_load_file(ferry_runtime *rt, const char *path, ferry_error *err) {
  if (!rt || !path) return ferry_error_set(err, FERRY_EINVAL, "ferry_runtime_load_file: no file given");
  if (rt->loaded) return ferry_error_set(err, FERRY_EINVAL, "a configuration is already loaded");
  ferry_config *cfg = ferry__config_load_file(path, err);
  if (!cfg) return err && err->code ? err->code : FERRY_ECONFIG;
  return load_common(rt, cfg, err);
}

FERRY_API int ferry_runtime_load_json(ferry_runtime *rt, json_t *config, const char *origin,
                                      ferry_error *err) {
  if (!rt || !config)
    return ferry_error_set(err, FERRY_EINVAL, "ferry_runtime_load_json: no configuration given");
  if (rt->loaded) return ferry_error_set(err, FERRY_EINVAL, "a configuration is already loaded");
  ferry_config *cfg = ferry__config_from_json(config, origin ? origin : "<config>", err);
  if (!cfg) return err && err->code ? err->code : FERRY_ECONFIG;
  return load_common(rt, cfg, err);
}

FERRY_API json_t *ferry_runtime_settings(ferry_runtime *rt) { return rt && rt->loaded ? rt->settings : NULL; }

/* ---- plugins ------------------------------------------------------------------------------------------- */

static void on_refused(void *arg, const char *path, const ferry_error *e) {
  json_array_append_new(arg, json_pack("{s:s, s:s, s:s}", "path", path, "code", ferry_err_name(e->code), "error",
                                       e->message ? e->message : ferry_strerror(e->code)));
}

FERRY_API json_t *ferry_runtime_plugins(ferry_runtime *rt, ferry_error *err) {
  if (!rt) {
    ferry_error_set(err, FERRY_EINVAL, "ferry_runtime_plugins: no runtime");
    return NULL;
  }
  search_path(rt);
  json_t *refused = json_array();
  ferry__registry_scan(rt->reg, on_refused, refused);
  json_t *list = json_array();
  for (size_t i = 0; i < ferry__registry_count(rt->reg); i++) {
    const ferry_plugin_entry *e = ferry__registry_at(rt->reg, i);
    const ferry_plugin *p = e->plugin;
    json_t *kinds = json_array();
    if (p->kinds & FERRY_KIND_SOURCE) json_array_append_new(kinds, json_string("source"));
    if (p->kinds & FERRY_KIND_SINK) json_array_append_new(kinds, json_string("sink"));
    if (p->kinds & FERRY_KIND_HOOK) json_array_append_new(kinds, json_string("hook"));
    json_array_append_new(list, json_pack("{s:s, s:o, s:s, s:s, s:s, s:s}", "name", p->name, "kinds", kinds,
                                          "version", p->version, "description", p->description, "license",
                                          p->license, "origin", e->origin));
  }
  return json_pack("{s:o, s:o}", "plugins", list, "refused", refused);
}

FERRY_API json_t *ferry_runtime_describe_plugin(ferry_runtime *rt, const char *name, ferry_error *err) {
  if (!rt || !name) {
    ferry_error_set(err, FERRY_EINVAL, "ferry_runtime_describe_plugin: no runtime or no plugin name");
    return NULL;
  }
  search_path(rt);
  const ferry_plugin_entry *e = ferry__registry_find(rt->reg, name, err);
  if (!e) return NULL;
  json_t *d = ferry__plugin_describe(e->plugin);
  json_object_set_new(d, "origin", json_string(e->origin));
  return d;
}

/* ---- services for the other parts ---------------------------------------------------------------------- */

uint64_t ferry__rt_random(ferry_runtime *rt) { /* xorshift64* */
  uint64_t x = rt->rng;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rt->rng = x;
  return x * 0x2545F4914F6CDD1Dull;
}

void ferry__rt_handle_closing(ferry_runtime *rt) { rt->closing++; }
void ferry__rt_handle_closed(ferry_runtime *rt) { rt->closing--; }

int ferry__rt_journal_ok(ferry_runtime *rt) { return rt->journal && !rt->journal_error.code; }

void ferry__rt_journal_failed(ferry_runtime *rt, const ferry_error *e) {
  if (rt->journal_error.code) return;
  ferry_error_copy(&rt->journal_error, e);
  if (!rt->journal_error.code) ferry_error_set(&rt->journal_error, FERRY_EIO, "journal failure");
  ferry_log_error(NULL, "journal failure, stopping the run (items in flight finish, nothing else starts): %s",
                  rt->journal_error.message ? rt->journal_error.message : "");
  for (size_t i = 0; i < rt->nstages; i++) {
    ferry_stage *st = rt->stages[i];
    if (st->selected && st->state == STAGE_RUNNING) {
      ferry__stage_fail(st, &rt->journal_error);
      ferry__stage_interrupt(st);
    }
  }
}

int ferry__rt_group_open(ferry_runtime *rt) {
  if (rt->group_open || !ferry__rt_journal_ok(rt) || !rt->journal_write) return rt->group_open;
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry__journal_group_begin(rt->journal, &e) < 0)
    ferry__rt_journal_failed(rt, &e);
  else
    rt->group_open = 1;
  ferry_error_clear(&e);
  return rt->group_open;
}

void ferry__rt_group_commit(ferry_runtime *rt) {
  if (!rt->group_open) return;
  rt->group_open = 0;
  rt->group_n = 0;
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry__journal_group_commit(rt->journal, &e) < 0) ferry__rt_journal_failed(rt, &e);
  ferry_error_clear(&e);
}

void ferry__rt_group_touch(ferry_runtime *rt) {
  if (++rt->group_n >= FERRY_GROUP_MAX) ferry__rt_group_commit(rt);
}

/* ---- scheduling ---------------------------------------------------------------------------------------- */

static void schedule(ferry_runtime *rt) {
  int changed;
  do {
    changed = 0;
    for (size_t i = 0; i < rt->nstages; i++) {
      ferry_stage *st = rt->stages[i];
      if (!st->selected || st->state != STAGE_PENDING) continue;
      const char *why = NULL, *dep = NULL;
      int ready = 1;
      if (rt->interrupted)
        why = "the run was interrupted";
      else if (rt->journal_error.code)
        why = "the journal failed";
      for (size_t k = 0; !why && k < st->nafter; k++) {
        ferry_stage *d = st->after[k];
        if (!d->selected) continue; /* not part of this run: taken as done */
        if (d->state == STAGE_FINISHED && d->status == 0) continue;
        if (d->state == STAGE_FINISHED)
          why = "it comes after stage \"%s\", which failed";
        else if (d->state == STAGE_NOT_RUN)
          why = "it comes after stage \"%s\", which did not run";
        else
          ready = 0;
        dep = d->name;
      }
      if (why) {
        st->state = STAGE_NOT_RUN;
        st->status = FERRY_ECANCELED;
        ferry_error_set(&st->error, FERRY_ECANCELED, why, dep);
        ferry_log_warn(NULL, "stage \"%s\" not run: %s", st->name, st->error.message);
        changed = 1;
      } else if (ready) {
        rt->running_stages++;
        ferry__stage_start(st);
        changed = 1;
      }
    }
  } while (changed);
  if (rt->running_stages == 0) rt->finished = 1;
}

void ferry__rt_stage_finished(ferry_runtime *rt, ferry_stage *st) {
  (void)st;
  rt->running_stages--;
  schedule(rt);
}

static void interrupt_all(ferry_runtime *rt) {
  if (!rt->running || rt->interrupted) return;
  rt->interrupted = 1;
  ferry_log_warn(NULL, "interrupted: finishing the items in flight, then stopping (run again to resume)");
  for (size_t i = 0; i < rt->nstages; i++) {
    ferry_stage *st = rt->stages[i];
    if (st->selected && st->state == STAGE_RUNNING) ferry__stage_interrupt(st);
  }
  schedule(rt);
}

static void on_wake(uv_async_t *h) {
  ferry_runtime *rt = h->data;
  if (rt->interrupt_requested) interrupt_all(rt);
}

FERRY_API void ferry_runtime_interrupt(ferry_runtime *rt) {
  if (!rt) return;
  rt->interrupt_requested = 1;
  if (rt->loop_init) uv_async_send(&rt->wake);
}

/* ---- progress and periodic work ------------------------------------------------------------------------ */

static void progress_update(ferry_runtime *rt, int final) {
  if (!rt->progress) return;
  ferry_progress_row *rows = ferry__xcalloc(rt->nstages, sizeof *rows);
  size_t n = 0;
  for (size_t i = 0; i < rt->nstages; i++) {
    ferry_stage *st = rt->stages[i];
    if (!st->selected) continue;
    ferry_progress_row *r = &rows[n++];
    r->stage = st->name;
    r->total = st->total;
    r->done = st->done;
    r->skipped = st->skipped + st->resumed;
    r->failed = st->failed + st->not_migrated;
    r->inflight = (int64_t)(st->queued + st->active);
    r->started = st->state == STAGE_PENDING || st->state == STAGE_NOT_RUN ? 0 : st->t_start;
    r->finished = st->state == STAGE_FINISHED || st->state == STAGE_NOT_RUN;
  }
  ferry__progress_update(rt->progress, rows, n, final);
  free(rows);
}

static void on_tick(uv_timer_t *h) {
  ferry_runtime *rt = h->data;
  ferry__rt_group_commit(rt);
  for (size_t i = 0; i < rt->nstages; i++) {
    ferry_stage *st = rt->stages[i];
    if (st->selected && (st->state == STAGE_RUNNING || st->state == STAGE_ENDING))
      ferry__stage_sync_maybe(st, 0);
  }
  progress_update(rt, 0);
}

static void on_tick_closed(uv_handle_t *h) { ferry__rt_handle_closed(h->data); }

/* Nothing on the loop can make progress but stages are not finished: a plugin lost an item or never ended. */
static void handle_stall(ferry_runtime *rt) {
  int any = 0;
  for (size_t i = 0; i < rt->nstages; i++) {
    ferry_stage *st = rt->stages[i];
    if (!st->selected || (st->state != STAGE_RUNNING && st->state != STAGE_ENDING)) continue;
    any = 1;
    ferry_error e = FERRY_ERROR_INIT;
    ferry_sb sb = {0};
    if (st->starting)
      ferry__sb_add(&sb, "a hook at stage_start never completed");
    else if (st->state == STAGE_ENDING)
      ferry__sb_add(&sb,
                   "the end of the stage (sync or stage_end hooks) never "
                   "completed");
    else {
      if (st->insink)
        ferry__sb_addf(&sb, "sink \"%s\" never completed %zu item(s)", st->sink_plugin->name, st->insink);
      if (st->active > st->insink)
        ferry__sb_addf(&sb, "%shooks never completed %zu item(s)", sb.len ? "; " : "",
                      st->active - st->insink);
      if (!st->insink && st->active == st->insink && !st->source_ended)
        ferry__sb_addf(&sb, "source \"%s\" neither emitted items nor ended (asked for %zu)",
                      st->source_plugin->name, st->requested);
    }
    ferry_error_set(&e, FERRY_EINTERNAL,
                    "stage stalled: nothing left on the event loop can complete it: %s (a "
                    "bug in a plugin)",
                    sb.buf ? sb.buf : "unknown state");
    ferry__sb_free(&sb);
    ferry__stage_force_end(st, &e);
    ferry_error_clear(&e);
  }
  if (!any) rt->finished = 1;
}

/* ---- result, summary, report --------------------------------------------------------------------------- */

static const char *mode_name(ferry_mode m) {
  return m == FERRY_MODE_PLAN ? "plan" : m == FERRY_MODE_VERIFY ? "verify" : "run";
}

static const char *stage_state_name(const ferry_stage *st) {
  if (!st->selected) return "not_selected";
  switch (st->state) {
    case STAGE_NOT_RUN:
      return "not_run";
    case STAGE_FINISHED:
      return st->status == FERRY_ECANCELED ? "interrupted" : st->status ? "failed" : "finished";
    case STAGE_PENDING:
      return "pending";
    default:
      return "running";
  }
}

/* Codes the CLI gives a meaning of their own (exit codes): an item's failure code is only passed on when it
 * is not one of them. A stage or journal failure is FERRY_EIO (the stage's own code is in the summary). */
static int map_item_code(int code) {
  switch (code) {
    case 0:
    case FERRY_EBLOCKED:
    case FERRY_EMISMATCH:
    case FERRY_ECANCELED:
    case FERRY_ECONFIG:
    case FERRY_EIO:
      return FERRY_EINVAL;
    default:
      return code;
  }
}

static int compute_result(ferry_runtime *rt, ferry_error *out) {
  int64_t failed = 0, blocked = 0, mismatched = 0, not_migrated = 0;
  ferry_stage *first_failed_stage = NULL, *first_item_stage = NULL;
  for (size_t i = 0; i < rt->nstages; i++) {
    ferry_stage *st = rt->stages[i];
    if (!st->selected) continue;
    int64_t plain = st->failed - st->blocked - st->mismatched;
    failed += plain;
    blocked += st->blocked;
    mismatched += st->mismatched;
    not_migrated += st->not_migrated;
    if (plain > 0 && !first_item_stage) first_item_stage = st;
    if (st->state == STAGE_FINISHED && st->status && st->status != FERRY_ECANCELED && !first_failed_stage)
      first_failed_stage = st;
  }
  if (rt->journal_error.code) {
    ferry_error_copy(out, &rt->journal_error);
    ferry_error_prefix(out, "journal failure");
    out->code = FERRY_EIO;
    return out->code;
  }
  if (first_failed_stage) {
    ferry_error_set(out, FERRY_EIO, "stage \"%s\" failed: %s%s", first_failed_stage->name,
                    first_failed_stage->error.message, failed ? " (and items failed: see the report)" : "");
    return out->code;
  }
  if (rt->interrupted)
    return ferry_error_set(out, FERRY_ECANCELED,
                           "interrupted: the items in flight were finished and recorded; "
                           "run the same configuration again to resume");
  if (failed) {
    ferry_error_set(
        out, map_item_code(first_item_stage->first_fail_code),
        "%lld item(s) failed (first in stage \"%s\"); see the log or the report for each item, fix the "
        "cause and run again: done items are skipped",
        (long long)failed, first_item_stage->name);
    return out->code;
  }
  if (rt->mode == FERRY_MODE_PLAN && blocked)
    return ferry_error_set(out, FERRY_EBLOCKED, "plan: %lld item(s) are blocked; see the report for why",
                           (long long)blocked);
  if (rt->mode == FERRY_MODE_VERIFY && (mismatched || not_migrated))
    return ferry_error_set(out, FERRY_EMISMATCH, "verify: %lld item(s) differ and %lld are not migrated",
                           (long long)mismatched, (long long)not_migrated);
  return 0;
}

static void fill_summary(ferry_runtime *rt, double seconds) {
  memset(&rt->summary, 0, sizeof rt->summary);
  for (size_t i = 0; i < rt->nstages; i++) {
    ferry_stage *st = rt->stages[i];
    ferry_stage_summary *s = &rt->ssum[i];
    memset(s, 0, sizeof *s);
    s->name = st->name;
    s->total = -1;
    if (!st->selected) continue; /* not part of this run: nothing counted (its fields hold an older run) */
    s->total = st->total;
    s->done = st->done;
    s->skipped = st->skipped;
    s->failed = st->failed + st->not_migrated;
    s->retried = st->retried;
    s->resumed = st->resumed;
    s->seconds = st->t_end > st->t_start ? st->t_end - st->t_start : 0;
    s->status = st->status;
    rt->summary.done += s->done;
    rt->summary.skipped += s->skipped + s->resumed;
    rt->summary.failed += s->failed;
  }
  rt->summary.nstages = rt->nstages;
  rt->summary.stages = rt->ssum;
  rt->summary.seconds = seconds;
}

/* The report without its item lists (those are streamed by write_report): small whatever the item count.
 * Its "totals" are also the run's summary in the journal. */
static json_t *build_report(ferry_runtime *rt, int rc, const ferry_error *res, double seconds) {
  json_t *r = json_object();
  json_object_set_new(r, "mode", json_string(mode_name(rt->mode)));
  json_object_set_new(r, "status", json_integer(rc));
  json_object_set_new(r, "status_name", json_string(ferry_err_name(rc)));
  if (rc && res->message) json_object_set_new(r, "message", json_string(res->message));
  json_object_set_new(r, "interrupted", json_boolean(rt->interrupted));
  json_object_set_new(r, "seconds", json_real(seconds));
  if (rt->mode == FERRY_MODE_RUN) json_object_set_new(r, "repair", json_boolean(rt->repair));
  if (rt->run_id) json_object_set_new(r, "run", json_integer(rt->run_id));
  json_t *tot = json_object();
  enum { NCOUNT = 14 };
  int64_t t[NCOUNT] = {0};
  static const char *const names[NCOUNT] = {"total",      "taken",        "done",         "skipped",
                                            "resumed",    "failed",       "retried",      "blocked",
                                            "mismatched", "not_migrated", "equal",        "not_selected",
                                            "repaired",   "repair_failed"};
  json_t *stages = json_array();
  for (size_t i = 0; i < rt->nstages; i++) {
    ferry_stage *st = rt->stages[i];
    json_t *s = json_object();
    json_object_set_new(s, "name", json_string(st->name));
    json_object_set_new(s, "state", json_string(stage_state_name(st)));
    json_object_set_new(s, "source", json_string(st->source_plugin->name));
    json_object_set_new(s, "sink", json_string(st->sink_plugin->name));
    if (st->selected && st->status) {
      json_object_set_new(s, "status", json_string(ferry_err_name(st->status)));
      if (st->error.message) json_object_set_new(s, "error", json_string(st->error.message));
    }
    int64_t v[NCOUNT] = {st->total,      st->taken,        st->done,     st->skipped,
                         st->resumed,    st->failed,       st->retried,  st->blocked,
                         st->mismatched, st->not_migrated, st->equal,    st->not_selected,
                         st->repaired,   st->repair_failed};
    for (int k = 0; k < NCOUNT; k++) {
      json_object_set_new(s, names[k], json_integer(st->selected ? v[k] : (k == 0 ? -1 : 0)));
      if (k >= 2 && st->selected) t[k] += v[k];
    }
    if (st->selected) {
      json_object_set_new(s, "seconds", json_real(st->t_end > st->t_start ? st->t_end - st->t_start : 0));
      json_object_set_new(s, "peak_outstanding", json_integer(st->max_outstanding));
      json_object_set_new(s, "peak_in_sink", json_integer(st->max_insink));
    }
    json_array_append_new(stages, s);
  }
  for (int k = 2; k < NCOUNT; k++) json_object_set_new(tot, names[k], json_integer(t[k]));
  json_object_set_new(r, "totals", tot);
  json_object_set_new(r, "stages", stages);
  ferry__redact_json(r);
  return r;
}

/* ---- the report file: written incrementally ------------------------------------------------------------- */

typedef struct report_out {
  FILE *f;
  ferry_runtime *rt;
  ferry_stage *st;
  size_t n; /* items written in the current stage */
} report_out;

static void out_json(report_out *o, json_t *v) {
  if (json_dumpf(v, o->f, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY) < 0) {
    /* a write error: ferror() tells at the end */
  }
}

static void out_item_sep(report_out *o) { fputs(o->n++ ? ",\n        " : "\n        ", o->f); }

static int out_spooled(void *arg, const char *json, size_t len) {
  report_out *o = arg;
  out_item_sep(o);
  fwrite(json, 1, len, o->f);
  return ferror(o->f) != 0;
}

/* The report entry of an item the run wrote to the journal: status, attempts, error, the stored report
 * object, the verify mark and the item's ids, as the journal has them now. */
static int out_row(void *arg, const char *stage, const char *key, const ferry_jrow *row) {
  (void)stage;
  report_out *o = arg;
  const char *status = row->status == FERRY_J_INTENT ? "in_doubt" : ferry__jstatus_name(row->status);
  if (row->status == FERRY_J_DONE && row->error) status = "failed"; /* a failed repair: done, with the error */
  json_t *e = json_object();
  json_object_set_new(e, "key", json_string(key));
  json_object_set_new(e, "status", json_string(status));
  if (row->attempts) json_object_set_new(e, "attempts", json_integer(row->attempts));
  if (row->step) json_object_set_new(e, "step", json_string(row->step));
  if (row->error) {
    const char *nl = strchr(row->error, '\n');
    json_object_set_new(e, "code", json_string(ferry_err_name(row->error_code)));
    json_object_set_new(e, "error", nl ? json_stringn(row->error, (size_t)(nl - row->error))
                                       : json_string(row->error));
    if (nl) json_object_set_new(e, "detail", json_string(nl + 1));
  }
  if (o->rt->repair) json_object_set_new(e, "repair", json_true());
  if (row->report) json_object_set(e, "report", row->report);
  if (row->verify) json_object_set(e, "verify", row->verify);
  json_object_set_new(e, "ids", row->ids ? json_incref(row->ids) : json_array());
  ferry__redact_json(e);
  out_item_sep(o);
  out_json(o, e);
  json_decref(e);
  return ferror(o->f) != 0;
}

/* Writes an object's members (but `skip`) at `indent`, each followed by ",\n" when more follow or `more`. */
static void out_members(report_out *o, json_t *obj, const char *skip, const char *indent, int more) {
  const char *k;
  json_t *v;
  size_t n = json_object_size(obj) - (skip && json_object_get(obj, skip) ? 1 : 0), i = 0;
  json_object_foreach(obj, k, v) {
    if (skip && !strcmp(k, skip)) continue;
    json_t *ks = json_string(k);
    fputs(indent, o->f);
    out_json(o, ks);
    json_decref(ks);
    fputs(": ", o->f);
    out_json(o, v);
    fputs(++i < n || more ? ",\n" : "\n", o->f);
  }
}

/* The report, written to "<path>.tmp" piece by piece, then renamed: the item lists come from the journal
 * (the items this run wrote, read back in batches) and from each stage's spool, never from one big JSON
 * value in memory. Secrets redacted. */
static int write_report(ferry_runtime *rt, json_t *report, const char *path, ferry_error *err) {
  char *tmp = ferry__xasprintf("%s.tmp", path);
  int rc = 0;
  report_out o = {.f = fopen(tmp, "w"), .rt = rt};
  if (!o.f) {
    rc = ferry_error_set(err, FERRY_EIO, "cannot write the report %s: %s", tmp, strerror(errno));
    free(tmp);
    return rc;
  }
  ferry_error je = FERRY_ERROR_INIT;
  fputs("{\n", o.f);
  out_members(&o, report, "stages", "  ", 1);
  fputs("  \"stages\": [", o.f);
  json_t *stages = json_object_get(report, "stages");
  for (size_t i = 0; i < rt->nstages; i++) {
    ferry_stage *st = rt->stages[i];
    fputs(i ? ",\n    {\n" : "\n    {\n", o.f);
    out_members(&o, json_array_get(stages, i), NULL, "      ", 1);
    fputs("      \"items\": [", o.f);
    o.st = st;
    o.n = 0;
    if (st->selected) {
      if (st->journal_write && rt->journal && rt->run_id && !je.code) {
        ferry_jquery q = {.stage = st->name, .run = rt->run_id, .ids = 1};
        if (ferry__journal_foreach_ex(rt->journal, &q, out_row, &o, &je) < 0)
          ferry_log_error(NULL, "report %s: the items of stage \"%s\" could not be read from the journal: %s",
                          path, st->name, je.message);
      }
      if (ferry__stage_foreach_entry(st, out_spooled, &o) < 0)
        ferry_log_error(NULL, "report %s: the items of stage \"%s\" could not be read back: %s", path,
                        st->name, strerror(errno));
    }
    fputs(o.n ? "\n      ]\n    }" : "]\n    }", o.f);
  }
  fputs(rt->nstages ? "\n  ]\n}\n" : "]\n}\n", o.f);
  int werr = ferror(o.f) ? errno : 0;
  if (fclose(o.f) != 0 && !werr) werr = errno;
  if (werr || je.code) {
    if (je.code)
      rc = ferry_error_set(err, FERRY_EIO, "cannot write the report %s: %s", path, je.message);
    else
      rc = ferry_error_set(err, FERRY_EIO, "cannot write the report %s: %s", path, strerror(werr));
    unlink(tmp);
  } else if (rename(tmp, path) < 0) {
    rc = ferry_error_set(err, FERRY_EIO, "cannot write the report %s: %s", path, strerror(errno));
    unlink(tmp);
  }
  ferry_error_clear(&je);
  free(tmp);
  return rc;
}

/* ---- run ----------------------------------------------------------------------------------------------- */

static int select_stages(ferry_runtime *rt, const char *const *names, ferry_error *err) {
  for (size_t i = 0; i < rt->nstages; i++) rt->stages[i]->selected = names == NULL;
  for (size_t k = 0; names && names[k]; k++) {
    ferry_stage *found = NULL;
    for (size_t i = 0; i < rt->nstages; i++)
      if (!strcmp(rt->stages[i]->name, names[k])) found = rt->stages[i];
    if (!found) {
      ferry_sb sb = {0};
      for (size_t i = 0; i < rt->nstages; i++)
        ferry__sb_addf(&sb, "%s\"%s\"", i ? ", " : "", rt->stages[i]->name);
      ferry_error_set(err, FERRY_ECONFIG, "no stage is named \"%s\"; stages: %s", names[k], sb.buf);
      ferry__sb_free(&sb);
      return FERRY_ECONFIG;
    }
    found->selected = 1;
  }
  return 0;
}

static void drain_closes(ferry_runtime *rt) {
  while (rt->closing > 0) uv_run(&rt->loop, UV_RUN_ONCE);
}

static void release_stages(ferry_runtime *rt) {
  for (size_t i = 0; i < rt->nstages; i++)
    if (rt->stages[i]->selected) ferry__stage_release(rt->stages[i]);
  drain_closes(rt);
}

FERRY_API int ferry_runtime_run(ferry_runtime *rt, const ferry_run_opts *opts, ferry_run_summary *summary,
                                ferry_error *err) {
  if (!rt) return ferry_error_set(err, FERRY_EINVAL, "ferry_runtime_run: no runtime");
  if (!rt->loaded) return ferry_error_set(err, FERRY_EINVAL, "ferry_runtime_run: no configuration loaded");
  if (rt->running) return ferry_error_set(err, FERRY_EINVAL, "ferry_runtime_run: a run is already going on");
  ferry_run_opts o = {.struct_size = sizeof o, .mode = FERRY_MODE_RUN};
  if (opts)
    memcpy(&o, opts, opts->struct_size && opts->struct_size < sizeof o ? opts->struct_size : sizeof o);
  if (opts && opts->struct_size && opts->struct_size < offsetof(ferry_run_opts, repair) + sizeof o.repair)
    o.repair = 0; /* an older caller: the field is not theirs */
  if (!o.mode) o.mode = FERRY_MODE_RUN;
  if (o.mode != FERRY_MODE_RUN && o.mode != FERRY_MODE_PLAN && o.mode != FERRY_MODE_VERIFY)
    return ferry_error_set(err, FERRY_EINVAL, "ferry_runtime_run: unknown mode %d", (int)o.mode);
  if (o.limit < 0) return ferry_error_set(err, FERRY_EINVAL, "ferry_runtime_run: negative limit");
  if (o.repair && o.mode != FERRY_MODE_RUN)
    return ferry_error_set(err, FERRY_EINVAL,
                           "ferry_runtime_run: repair is for a run only (mode %s): a plan or a verify does not "
                           "repair; the items a repair would take are those with a verify mark in the journal",
                           mode_name(o.mode));
  int rc = select_stages(rt, o.stages, err);
  if (rc) return rc;
  rt->mode = o.mode;
  rt->repair = o.repair != 0;
  rt->run_id = 0;
  rt->interrupted = 0;
  rt->finished = 0;
  rt->running_stages = 0;
  rt->group_open = 0;
  rt->group_n = 0;
  ferry_error_clear(&rt->journal_error);

  /* journal */
  const char *jpath = rt->journal_path   ? rt->journal_path
                      : rt->cfg->journal ? rt->cfg->journal
                                         : FERRY__DEFAULT_JOURNAL;
  int want_journal = 0;
  for (size_t i = 0; i < rt->nstages; i++)
    want_journal |= rt->stages[i]->selected && rt->stages[i]->cfg->journal;
  int64_t run_id = 0;
  rt->journal_write = 0;
  rt->journal = NULL;
  /* run: read and written (created when missing); verify: written (its marks), never created, so it takes the
   * run lock like a run; plan: read only */
  int exists = access(jpath, F_OK) == 0;
  if (want_journal && (o.mode == FERRY_MODE_RUN || (o.mode == FERRY_MODE_VERIFY && exists))) {
    rt->journal = ferry__journal_open(jpath, 0, err);
    if (!rt->journal) return err && err->code ? err->code : FERRY_EIO;
    rt->journal_write = 1;
    if (ferry__journal_run_begin(rt->journal, mode_name(o.mode), &run_id, err) < 0) {
      ferry__journal_close(rt->journal);
      rt->journal = NULL;
      return err && err->code ? err->code : FERRY_EIO;
    }
    rt->run_id = run_id;
  } else if (want_journal && o.mode == FERRY_MODE_PLAN && exists) { /* read only */
    rt->journal = ferry__journal_open(jpath, 1, err);
    if (!rt->journal) return err && err->code ? err->code : FERRY_EIO;
  }
  rt->empty = json_object();

  /* instances: every option and init() error before anything runs */
  for (size_t i = 0; i < rt->nstages && rc == 0; i++) {
    ferry_stage *st = rt->stages[i];
    if (!st->selected) continue;
    rc = ferry__stage_prepare(st, o.mode, err);
    st->limit = o.limit;
  }
  if (rc) {
    release_stages(rt);
    if (rt->journal_write && rt->journal) { /* the run ended before it began: say so in its row */
      ferry_error je = FERRY_ERROR_INIT;
      ferry__journal_run_end(rt->journal, run_id, rc, "{}", &je);
      ferry_error_clear(&je);
    }
    if (rt->journal) ferry__journal_close(rt->journal);
    rt->journal = NULL;
    json_decref(rt->empty);
    rt->empty = NULL;
    return rc;
  }

  uv_timer_init(&rt->loop, &rt->tick);
  rt->tick.data = rt;
  rt->tick_init = 1;
  uv_timer_start(&rt->tick, on_tick, FERRY_GROUP_MS, FERRY_GROUP_MS);
  uv_unref((uv_handle_t *)&rt->tick);
  rt->progress = o.progress ? ferry__progress_new(o.progress, stderr) : NULL;
  rt->running = 1;
  double t0 = ferry__now();
  if (rt->interrupt_requested) interrupt_all(rt);
  schedule(rt);
  while (!rt->finished) {
    int alive = uv_run(&rt->loop, UV_RUN_ONCE);
    if (rt->interrupt_requested && !rt->interrupted) interrupt_all(rt);
    if (!alive && !rt->finished) handle_stall(rt);
  }
  rt->running = 0;
  rt->interrupt_requested = 0;
  double seconds = ferry__now() - t0;
  ferry__rt_group_commit(rt);
  progress_update(rt, 1);
  ferry__progress_free(rt->progress);
  rt->progress = NULL;
  ferry__rt_handle_closing(rt);
  uv_close((uv_handle_t *)&rt->tick, on_tick_closed);
  rt->tick_init = 0;

  ferry_error res = FERRY_ERROR_INIT;
  rc = compute_result(rt, &res);
  fill_summary(rt, seconds);
  if (rt->repair) {
    int64_t taken = 0;
    for (size_t i = 0; i < rt->nstages; i++)
      if (rt->stages[i]->selected) taken += rt->stages[i]->taken;
    if (!taken && !rc)
      ferry_log_info(NULL, "repair: no item of the selected stages carries a verify mismatch: nothing to "
                     "repair (`ferry verify` marks the items that differ)");
  }
  json_t *report = build_report(rt, rc, &res, seconds);
  if (rt->journal_write && rt->journal) {
    json_t *tot = json_object_get(report, "totals");
    char *sj = json_dumps(tot, JSON_COMPACT);
    ferry_error je = FERRY_ERROR_INIT;
    if (ferry__journal_run_end(rt->journal, run_id, rc, sj ? sj : "{}", &je) < 0)
      ferry_log_warn(NULL, "could not record the end of the run in the journal: %s", je.message);
    ferry_error_clear(&je);
    free(sj);
  }
  /* the report reads the journal and the stages' spools: before they are released */
  const char *rpath = o.report_path ? o.report_path : rt->cfg->report;
  if (rpath) {
    ferry_error we = FERRY_ERROR_INIT;
    if (write_report(rt, report, rpath, &we) < 0) {
      ferry_log_error(NULL, "%s", we.message);
      if (!rc) {
        rc = we.code;
        ferry_error_move(&res, &we);
      }
    }
    ferry_error_clear(&we);
  }
  json_decref(report);
  release_stages(rt);
  if (rt->journal) ferry__journal_close(rt->journal);
  rt->journal = NULL;
  json_decref(rt->empty);
  rt->empty = NULL;
  if (summary) *summary = rt->summary;
  if (rc && err) ferry_error_move(err, &res);
  ferry_error_clear(&res);
  return rc;
}

