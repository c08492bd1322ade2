/* The embedding API (ferry/runtime.h), the top of a run: load a configuration (the pipeline's checks), list
 * and describe plugins, run the loaded stages on the runtime's loop (scheduling, interrupt, progress ticks,
 * stall detection) and hand the end to report.c (result, summary, JSON report).
 *
 * Nothing below calls up here: the stages get what they share as a ferry__run, report their end through a
 * callback, and read the run's state (journal failure, interrupt) in their pump. */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>
#include <libpq-fe.h>
#include <ltdl.h>
#include <sqlite3.h>

#include "run/run.h"

struct ferry_runtime {
  uv_loop_t loop;
  int loop_init;
  uv_async_t wake; /* ferry_runtime_interrupt */
  volatile sig_atomic_t interrupt_requested;
  char **plugin_path; /* opts->plugin_path (owned) */
  int no_default_path;
  char *journal_path; /* opts->journal_path (owned) or NULL */
  ferry_registry *reg;
  ferry_config *cfg;
  int loaded;
  json_t *settings; /* ferry_runtime_settings() of the loaded configuration (owned) */
  int path_ready;   /* the registry's search path is assembled: 1 without a configuration, 2 with it */
  ferry__run run;   /* what the stages share: run.stages (owned), in topological order */

  /* ---- per run ----------------------------------------------------------------------------------------- */
  int running;
  uv_timer_t tick; /* progress display and the stages' sync timing */
  ferry_progress *progress;
  size_t running_stages;
  int finished;
  int journal_noticed; /* the stages were woken to read the journal's failure */
  ferry_stage_summary *ssum;
  ferry_run_summary summary;
  size_t closing; /* what is being closed: the tick timer, stages being released, the journal writer */
};

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
      rt->journal_path = ferry_strdup(opts->journal_path);
  }
  rt->run.loop = &rt->loop;
  rt->run.interrupt_requested = &rt->interrupt_requested;
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
  ferry__pipeline_free(&rt->run);
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

/* The plugin path (ferry/runtime.h), assembled here only, once (again when a configuration brings its own
 * directories): the program's directories, the configuration's, then the default places. */
static void search_path(ferry_runtime *rt) {
  int want = rt->cfg ? 2 : 1;
  if (rt->path_ready == want) return;
  rt->path_ready = want;
  ferry__registry_clear_dirs(rt->reg);
  for (size_t i = 0; rt->plugin_path && rt->plugin_path[i]; i++)
    ferry__registry_add_dir(rt->reg, rt->plugin_path[i]);
  for (size_t i = 0; rt->cfg && rt->cfg->plugin_path && rt->cfg->plugin_path[i]; i++)
    ferry__registry_add_dir(rt->reg, rt->cfg->plugin_path[i]);
  if (!rt->no_default_path) ferry__registry_add_default_dirs(rt->reg);
}

static int load_common(ferry_runtime *rt, ferry_config *cfg, ferry_error *err) {
  rt->cfg = cfg;
  rt->run.cfg = cfg;
  search_path(rt);
  int rc = ferry__pipeline_build(&rt->run, rt->reg, err); /* plugins, their fit and options: every error */
  if (rc) {
    if (!err->code) ferry_error_set(err, rc, "%s", ferry_strerror(rc));
    ferry__pipeline_free(&rt->run);
    ferry__config_free(cfg);
    rt->cfg = NULL;
    rt->run.cfg = NULL;
    rt->path_ready = 0;
    return rc < 0 ? rc : FERRY_ECONFIG;
  }
  rt->ssum = ferry__xcalloc(rt->run.nstages, sizeof *rt->ssum);
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
  json_array_append_new(arg, json_pack("{s:s, s:s, s:s}", "path", path, "code", ferry_err_name(e->code),
                                       "error", e->message ? e->message : ferry_strerror(e->code)));
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

/* ---- scheduling ---------------------------------------------------------------------------------------- */

static void on_stage_end(ferry_stage *st, void *arg);

static void schedule(ferry_runtime *rt) {
  int changed;
  do {
    changed = 0;
    for (size_t i = 0; i < rt->run.nstages; i++) {
      ferry_stage *st = rt->run.stages[i];
      if (!st->selected || st->state != STAGE_PENDING) continue;
      const char *why = NULL, *dep = NULL;
      int ready = 1;
      if (rt->run.interrupted)
        why = "the run was interrupted";
      else if (ferry__outcomes_error(rt->run.out))
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
        ferry__stage_start(st, on_stage_end, rt);
        changed = 1;
      }
    }
  } while (changed);
  if (rt->running_stages == 0) rt->finished = 1;
}

/* A stage has finished (its end callback): the next ones may start. */
static void on_stage_end(ferry_stage *st, void *arg) {
  (void)st;
  ferry_runtime *rt = arg;
  rt->running_stages--;
  schedule(rt);
}

static void interrupt_all(ferry_runtime *rt) {
  if (!rt->running || rt->run.interrupted) return;
  rt->run.interrupted = 1;
  ferry_log_warn(NULL, "interrupted: finishing the items in flight, then stopping (run again to resume)");
  for (size_t i = 0; i < rt->run.nstages; i++) {
    ferry_stage *st = rt->run.stages[i];
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
  ferry_progress_row *rows = ferry__xcalloc(rt->run.nstages, sizeof *rows);
  size_t n = 0;
  for (size_t i = 0; i < rt->run.nstages; i++) {
    ferry_stage *st = rt->run.stages[i];
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
    r->status = r->finished ? st->status : 0;
    if (st->state == STAGE_NOT_RUN) /* its status is ECANCELED whatever the reason: say which */
      r->status = rt->run.interrupted ? FERRY_ECANCELED : FERRY_EIO;
  }
  ferry__progress_update(rt->progress, rows, n, final);
  free(rows);
}

static void on_tick(uv_timer_t *h) {
  ferry_runtime *rt = h->data;
  for (size_t i = 0; i < rt->run.nstages; i++) {
    ferry_stage *st = rt->run.stages[i];
    if (st->selected && (st->state == STAGE_RUNNING || st->state == STAGE_ENDING)) {
      ferry__stage_sync_maybe(st, 0);
      ferry__stage_sample(st);
    }
  }
  progress_update(rt, 0);
}

static void on_closed(void *arg) {
  ferry_runtime *rt = arg;
  rt->closing--;
}

static void on_tick_closed(uv_handle_t *h) { on_closed(h->data); }

/* Nothing on the loop can make progress but stages are not finished: a plugin lost an item or never ended. */
static void handle_stall(ferry_runtime *rt) {
  int any = 0;
  for (size_t i = 0; i < rt->run.nstages; i++) {
    ferry_stage *st = rt->run.stages[i];
    if (!st->selected || (st->state != STAGE_RUNNING && st->state != STAGE_ENDING)) continue;
    any = 1;
    ferry_error e = FERRY_ERROR_INIT;
    ferry_buf sb = {0};
    if (st->starting)
      ferry_buf_add(&sb, "a hook at stage_start never completed");
    else if (st->state == STAGE_ENDING)
      ferry_buf_add(&sb,
                   "the end of the stage (sync or stage_end hooks) never "
                   "completed");
    else {
      if (st->insink)
        ferry_buf_addf(&sb, "sink \"%s\" never completed %zu item(s)", st->sink_plugin->name, st->insink);
      if (st->active > st->insink)
        ferry_buf_addf(&sb, "%shooks never completed %zu item(s)", sb.len ? "; " : "",
                      st->active - st->insink);
      if (!st->insink && st->active == st->insink && !st->source_ended)
        ferry_buf_addf(&sb, "source \"%s\" neither emitted items nor ended (asked for %zu)",
                      st->source_plugin->name, st->requested);
    }
    ferry_error_set(&e, FERRY_EINTERNAL,
                    "stage stalled: nothing left on the event loop can complete it: %s (a "
                    "bug in a plugin)",
                    sb.buf ? sb.buf : "unknown state");
    ferry_buf_free(&sb);
    ferry__stage_force_end(st, &e);
    ferry_error_clear(&e);
  }
  if (!any) rt->finished = 1;
}

/* ---- run ----------------------------------------------------------------------------------------------- */

static int select_stages(ferry_runtime *rt, const char *const *names, ferry_error *err) {
  for (size_t i = 0; i < rt->run.nstages; i++) rt->run.stages[i]->selected = names == NULL;
  for (size_t k = 0; names && names[k]; k++) {
    ferry_stage *found = NULL;
    for (size_t i = 0; i < rt->run.nstages; i++)
      if (!strcmp(rt->run.stages[i]->name, names[k])) found = rt->run.stages[i];
    if (!found) {
      ferry_buf sb = {0};
      for (size_t i = 0; i < rt->run.nstages; i++)
        ferry_buf_addf(&sb, "%s\"%s\"", i ? ", " : "", rt->run.stages[i]->name);
      ferry_error_set(err, FERRY_ECONFIG, "no stage is named \"%s\"; stages: %s", names[k], sb.buf);
      ferry_buf_free(&sb);
      return FERRY_ECONFIG;
    }
    found->selected = 1;
  }
  return 0;
}

/* The end of a run: the stages release their instances, tasks and handles, the journal writer commits and
 * closes; the loop runs until every close has completed. */
static void release_run(ferry_runtime *rt) {
  for (size_t i = 0; i < rt->run.nstages; i++)
    if (rt->run.stages[i]->selected) {
      rt->closing++;
      ferry__stage_release(rt->run.stages[i], on_closed, rt);
    }
  if (rt->run.worker) {
    rt->closing++;
    ferry__worker_close_timers(&rt->run, on_closed, rt);
  }
  rt->closing++;
  ferry__outcomes_close(rt->run.out, on_closed, rt);
  rt->run.out = NULL;
  while (rt->closing > 0) uv_run(&rt->loop, UV_RUN_ONCE);
  ferry__worker_end(&rt->run); /* after the last commit: its claims and row go */
}

/* Wakes the running stages so that their pumps read the run's state (the journal failed). */
static void wake_stages(ferry_runtime *rt) {
  for (size_t i = 0; i < rt->run.nstages; i++)
    if (rt->run.stages[i]->selected && rt->run.stages[i]->state == STAGE_RUNNING)
      ferry__stage_kick(rt->run.stages[i]);
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
  if (opts && opts->struct_size && opts->struct_size < offsetof(ferry_run_opts, lease_s) + sizeof o.lease_s) {
    o.worker = NULL;
    o.lease_s = 0;
  }
  if (!o.mode) o.mode = FERRY_MODE_RUN;
  if (o.mode != FERRY_MODE_RUN && o.mode != FERRY_MODE_PLAN && o.mode != FERRY_MODE_VERIFY)
    return ferry_error_set(err, FERRY_EINVAL, "ferry_runtime_run: unknown mode %d", (int)o.mode);
  if (o.limit < 0) return ferry_error_set(err, FERRY_EINVAL, "ferry_runtime_run: negative limit");
  if (o.repair && o.mode != FERRY_MODE_RUN)
    return ferry_error_set(err, FERRY_EINVAL,
                           "ferry_runtime_run: repair is for a run only (mode %s): a plan or a verify does not "
                           "repair; the items a repair would take are those with a verify mark in the journal",
                           ferry__mode_name(o.mode));
  if (o.worker && o.mode != FERRY_MODE_RUN)
    return ferry_error_set(err, FERRY_ECONFIG, "a worker (--worker) is for a run only, not a %s",
                           ferry__mode_name(o.mode));
  if (o.worker && !ferry__claims_name_ok(o.worker))
    return ferry_error_set(err, FERRY_ECONFIG,
                           "worker name \"%s\": expected 1 to 64 letters, digits, '-', '_' or '.'", o.worker);
  if (o.worker && (o.lease_s < 0 || (o.lease_s > 0 && o.lease_s < 1)))
    return ferry_error_set(err, FERRY_ECONFIG, "worker lease %g s: expected 1 second or more", o.lease_s);
  int rc = select_stages(rt, o.stages, err);
  if (rc) return rc;
  ferry__run *run = &rt->run;
  run->mode = o.mode;
  run->repair = o.repair != 0;
  run->worker_name = o.worker;
  run->run_id = 0;
  run->interrupted = 0;
  rt->finished = 0;
  rt->running_stages = 0;
  rt->journal_noticed = 0;

  /* journal */
  const char *jpath = rt->journal_path   ? rt->journal_path
                      : rt->cfg->journal ? rt->cfg->journal
                                         : FERRY__DEFAULT_JOURNAL;
  int want_journal = 0;
  for (size_t i = 0; i < run->nstages; i++)
    want_journal |= run->stages[i]->selected && run->stages[i]->cfg->journal;
  int64_t run_id = 0;
  run->journal_write = 0;
  run->journal = NULL;
  /* run: read and written (created when missing); verify: written (its marks), never created, so it takes the
   * run lock like a run; plan: read only */
  int exists = ferry__journal_is_url(jpath) || access(jpath, F_OK) == 0; /* a PostgreSQL journal: its server */
  if (o.worker && !ferry__journal_is_url(jpath))
    return ferry_error_set(err, FERRY_ECONFIG,
                           "journal %s: several workers (--worker %s) need a PostgreSQL journal (\"journal\": "
                           "\"postgresql://...\" in the configuration, or --journal URL); an SQLite journal has "
                           "one run at a time", jpath, o.worker);
  if (o.worker && !want_journal)
    return ferry_error_set(err, FERRY_ECONFIG,
                           "--worker %s: none of the selected stages keeps a journal (\"journal\": false), so "
                           "workers could not share their items", o.worker);
  if (want_journal && (o.mode == FERRY_MODE_RUN || (o.mode == FERRY_MODE_VERIFY && exists))) {
    run->journal = o.worker ? ferry__journal_open_worker(jpath, err) : ferry__journal_open(jpath, 0, err);
    if (!run->journal) return err && err->code ? err->code : FERRY_EIO;
    run->journal_write = 1;
    if (ferry__journal_run_begin(run->journal, ferry__mode_name(o.mode), &run_id, err) < 0) {
      ferry__journal_close(run->journal);
      run->journal = NULL;
      return err && err->code ? err->code : FERRY_EIO;
    }
    run->run_id = run_id;
  } else if (want_journal && o.mode == FERRY_MODE_PLAN && exists) { /* read only */
    run->journal = ferry__journal_open(jpath, 1, err);
    if (!run->journal && ferry__journal_is_url(jpath) && err && err->code == FERRY_ENOENT)
      ferry_error_clear(err); /* a PostgreSQL journal nothing has run with yet: as a missing file */
    else if (!run->journal)
      return err && err->code ? err->code : FERRY_EIO;
  }
  run->out = ferry__outcomes_new(&rt->loop, run->journal, run->journal_write);

  /* instances: every option and init() error before anything runs */
  for (size_t i = 0; i < run->nstages && rc == 0; i++) {
    ferry_stage *st = run->stages[i];
    if (!st->selected) continue;
    rc = ferry__stage_prepare(st, o.mode, err);
    st->limit = o.limit;
  }
  /* a worker: its claims connection, its row, its shares (after the instances exist) */
  if (!rc && o.worker) rc = ferry__worker_start(run, jpath, o.worker, o.lease_s, err);
  if (rc) {
    release_run(rt);
    if (run->journal_write && run->journal) { /* the run ended before it began: say so in its row */
      ferry_error je = FERRY_ERROR_INIT;
      ferry__journal_run_end(run->journal, run_id, rc, "{}", &je);
      ferry_error_clear(&je);
    }
    if (run->journal) ferry__journal_close(run->journal);
    run->journal = NULL;
    return rc;
  }

  uv_timer_init(&rt->loop, &rt->tick);
  rt->tick.data = rt;
  uv_timer_start(&rt->tick, on_tick, FERRY_GROUP_MS, FERRY_GROUP_MS);
  uv_unref((uv_handle_t *)&rt->tick);
  rt->progress = o.progress ? ferry__progress_new(o.progress, stderr) : NULL;
  rt->running = 1;
  double t0 = ferry__now();
  run->t0 = t0;
  if (rt->interrupt_requested) interrupt_all(rt);
  schedule(rt);
  while (!rt->finished) {
    int alive = uv_run(&rt->loop, UV_RUN_ONCE);
    if (rt->interrupt_requested && !run->interrupted) interrupt_all(rt);
    if (!rt->journal_noticed && ferry__outcomes_error(run->out)) {
      rt->journal_noticed = 1;
      wake_stages(rt);
    }
    if (!alive && !rt->finished && !uv_loop_alive(&rt->loop)) handle_stall(rt);
  }
  rt->running = 0;
  rt->interrupt_requested = 0;
  double seconds = ferry__now() - t0;
  ferry__outcomes_commit(run->out);
  progress_update(rt, 1);
  ferry__progress_free(rt->progress);
  rt->progress = NULL;
  rt->closing++;
  uv_close((uv_handle_t *)&rt->tick, on_tick_closed);

  ferry_error res = FERRY_ERROR_INIT;
  rc = ferry__report_result(run, &res);
  ferry__report_summary(run, seconds, rt->ssum, &rt->summary);
  if (run->repair) {
    int64_t taken = 0;
    for (size_t i = 0; i < run->nstages; i++)
      if (run->stages[i]->selected) taken += run->stages[i]->taken;
    if (!taken && !rc)
      ferry_log_info(NULL, "repair: no item of the selected stages carries a verify mismatch: nothing to "
                     "repair (`ferry verify` marks the items that differ)");
  }
  json_t *report = ferry__report_build(run, rc, &res, seconds);
  if (run->journal_write && run->journal) {
    json_t *sum = ferry__report_journal_summary(report);
    char *sj = json_dumps(sum, JSON_COMPACT);
    json_decref(sum);
    ferry_error je = FERRY_ERROR_INIT;
    if (ferry__journal_run_end(run->journal, run_id, rc, sj ? sj : "{}", &je) < 0)
      ferry_log_warn(NULL, "could not record the end of the run in the journal: %s", je.message);
    ferry_error_clear(&je);
    free(sj);
  }
  /* the report reads the journal and the stages' spools: before they are released */
  const char *rpath = o.report_path ? o.report_path : rt->cfg->report;
  char *wpath = NULL; /* a worker's report: "<name>.<worker>.json", so that workers do not overwrite each other */
  if (rpath && o.worker) {
    const char *slash = strrchr(rpath, '/'), *dot = strrchr(rpath, '.');
    if (dot && (!slash || dot > slash + 1))
      wpath = ferry_asprintf("%.*s.%s%s", (int)(dot - rpath), rpath, o.worker, dot);
    else
      wpath = ferry_asprintf("%s.%s", rpath, o.worker);
    rpath = wpath;
  }
  if (rpath) {
    ferry_error we = FERRY_ERROR_INIT;
    if (ferry__report_write(run, report, rpath, &we) < 0) {
      ferry_log_error(NULL, "%s", we.message);
      if (!rc) {
        rc = we.code;
        ferry_error_move(&res, &we);
      }
    }
    ferry_error_clear(&we);
  }
  free(wpath);
  json_decref(report);
  release_run(rt);
  if (run->journal) ferry__journal_close(run->journal);
  run->journal = NULL;
  run->worker_name = NULL;
  if (summary) *summary = rt->summary;
  if (rc && err) ferry_error_move(err, &res);
  ferry_error_clear(&res);
  return rc;
}

/* ---- libraries (ABI 1.3) ------------------------------------------------------------------------------- */

/* The file a function comes from, resolved (NULL when unknown); malloc'd. */
static char *library_file(void *fn) {
  Dl_info info;
  if (!fn || !dladdr(fn, &info) || !info.dli_fname) return NULL;
  char *real = realpath(info.dli_fname, NULL);
  return real ? real : ferry_strdup(info.dli_fname);
}

static void add_library(json_t *list, const char *name, const char *version, void *fn) {
  char *file = library_file(fn);
  json_t *e = json_pack("{s:s, s:s}", "name", name, "version", version && *version ? version : "unknown");
  json_object_set_new(e, "file", file ? json_string(file) : json_null());
  free(file);
  json_array_append_new(list, e);
}

FERRY_API json_t *ferry_runtime_libraries(void) {
  json_t *list = json_array();
  char buf[64];
  add_library(list, "libuv", uv_version_string(), (void *)uv_version_string);
  add_library(list, "jansson", jansson_version_str(), (void *)jansson_version_str);
  const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
  add_library(list, "libcurl", cv ? cv->version : NULL, (void *)curl_version_info);
  int pqv = PQlibVersion(); /* major * 10000 + minor since PostgreSQL 10 */
  snprintf(buf, sizeof buf, "%d.%d", pqv / 10000, pqv % 10000);
  add_library(list, "libpq", buf, (void *)PQlibVersion);
  add_library(list, "SQLite", sqlite3_libversion(), (void *)sqlite3_libversion);
  /* libltdl has no version function: the version of its library file (libltdl.so.7.3.2 -> 7.3.2) */
  char *lt = library_file((void *)lt_dlopen);
  const char *so = lt ? strstr(lt, ".so.") : NULL;
  add_library(list, "libltdl", so ? so + 4 : NULL, (void *)lt_dlopen);
  free(lt);
  /* linked only indirectly, or not at all: listed when present in the process */
  const char *(*ossl)(int) = (const char *(*)(int))dlsym(RTLD_DEFAULT, "OpenSSL_version");
  if (ossl) add_library(list, "OpenSSL", ossl(0 /* OPENSSL_VERSION */), (void *)ossl);
  const char *(*my)(void) = (const char *(*)(void))dlsym(RTLD_DEFAULT, "mysql_get_client_info");
  if (my) add_library(list, "libmariadb", my(), (void *)my);
  return list;
}
