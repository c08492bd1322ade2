/* One stage at run time: source demand and emission (backpressure), the journal check of each item, the
 * queue of tasks waiting for a sink slot, and the end of the stage (sync, commit, stop, stage_end hooks).
 *
 * The pump. Everything that moves items forward happens in pump(), which only ever runs from the stage's
 * uv_idle callback, i.e. from a clean stack: plugin callbacks (emit, done, fail, end) only update counters
 * and "kick" the stage. When a kick happens while the pump is running (a sink that completes inside
 * write(), a source that emits inside demand()), the pump just loops again instead of recursing, so
 * millions of synchronous completions never grow the stack. After FERRY_YIELD_EVERY items the pump returns
 * to the loop (the idle handle stays active), so timers, I/O and the progress display keep running.
 *
 * Backpressure: the source is asked for n items so that asked-not-yet-emitted + queued + active (in the
 * sink, in item hooks, waiting for a retry) never exceeds the stage window (2 x concurrency); at most
 * `concurrency` tasks are in the sink at once.
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/run.h"

static void pump(ferry_stage *st);
static void end_continue(ferry_stage *st);
static void take_item(ferry_stage *st, ferry_item *item);

static const char *stage_origin(const ferry_stage *st) { return st->run->cfg->origin; }

/* ---- preparation --------------------------------------------------------------------------------------- */

static ferry_instance *make_instance(ferry_stage *st, const ferry__stage_ref *r, ferry_error *err) {
  const ferry_plugin_ref *ref = r->ref;
  char *where = ref->where ? ferry_strdup(ref->where)
                           : ferry_asprintf("%s: stage \"%s\" %s \"%s\"", stage_origin(st), st->name, r->what,
                                            ref->plugin);
  ferry_instance_params params = {.base_dir = st->run->cfg->base_dir,
                                  .concurrency = st->concurrency,
                                  .rate = st->cfg->rate,
                                  .stage = st,
                                  .points = (const char *const *)ref->points,
                                  .options = *r->options};
  ferry_instance *ins = ferry__instance_create_ex(*r->plugin, r->role, st->name, st->run->loop, st->mode,
                                                  ref->options, where, &params, err);
  free(where);
  if (!ins) {
    if (!err->code)
      ferry_error_set(err, FERRY_ECONFIG, "stage \"%s\": %s \"%s\" could not be created", st->name, r->what,
                      ref->plugin);
    return NULL;
  }
  return ins;
}

int ferry__stage_prepare(ferry_stage *st, ferry_mode mode, ferry_error *err) {
  const ferry_stage_cfg *sc = st->cfg;
  const ferry__run *run = st->run;
  ferry_error_clear(&st->error);
  size_t off = offsetof(ferry_stage, source);
  memset((char *)st + off, 0, sizeof *st - off);
  st->mode = mode;
  st->state = STAGE_PENDING;
  st->concurrency = sc->concurrency ? sc->concurrency : 1;
  st->window = 2 * (size_t)st->concurrency;
  st->journal = run->journal && sc->journal;
  st->journal_write = st->journal && mode == FERRY_MODE_RUN;
  st->journal_marks = st->journal && mode == FERRY_MODE_VERIFY && run->journal_write;
  st->total = -1;
  st->rng = ferry__rng_seed(st->order + 1);
  st->has_item_done = ferry__hooks_at(st, "item_done") > 0;
  st->has_item_failed = ferry__hooks_at(st, "item_failed") > 0;
  st->hooks = ferry__xcalloc(sc->nhooks ? sc->nhooks : 1, sizeof *st->hooks);
  st->hook_keys = ferry__xcalloc(sc->nhooks + 1, sizeof *st->hook_keys);
  for (size_t h = 0; h < sc->nhooks; h++) st->hook_keys[h] = ferry_asprintf("%zu:%s", h, sc->hooks[h].plugin);
  /* source, sink, hooks: every option and init() error before anything runs */
  for (size_t i = 0; i < ferry__stage_refs(st); i++) {
    ferry__stage_ref r;
    ferry__stage_ref_at(st, i, &r);
    *r.instance = make_instance(st, &r, err);
    if (!*r.instance) return err->code;
  }
  return 0;
}

/* ---- handles: the stage counts its own (the idle handle, its tasks' retry timers) ---------------------- */

void ferry__stage_handle_closing(ferry_stage *st) { st->closing++; }

void ferry__stage_handle_closed(ferry_stage *st) {
  if (--st->closing || !st->on_released) return;
  void (*released)(void *) = st->on_released;
  st->on_released = NULL;
  released(st->on_released_arg);
}

static void on_handle_closed(uv_handle_t *h) { ferry__stage_handle_closed(h->data); }

void ferry__stage_release(ferry_stage *st, void (*released)(void *arg), void *arg) {
  st->on_released = released;
  st->on_released_arg = arg;
  ferry__stage_handle_closing(st); /* until everything below is started */
  ferry__task_free_all(st);
  ferry__hooks_release(st);
  /* the hooks first, then the sink, then the source (fini() in the reverse order of the data flow) */
  size_t nrefs = st->hooks ? ferry__stage_refs(st) : 2;
  for (size_t k = 0; k < nrefs; k++) {
    ferry__stage_ref r;
    ferry__stage_ref_at(st, k + 2 < nrefs ? k + 2 : nrefs - 1 - k, &r);
    if (r.instance && *r.instance) ferry__instance_destroy(*r.instance);
    if (r.instance) *r.instance = NULL;
  }
  free(st->hooks);
  st->hooks = NULL;
  ferry__strv_free(st->hook_keys);
  st->hook_keys = NULL;
  for (sync_entry *lists[2] = {st->sync_head, st->syncing}, **l = lists; l < lists + 2; l++)
    for (sync_entry *e = *l, *n; e; e = n) {
      n = e->next;
      free(e->key);
      json_decref(e->state);
      json_decref(e->report);
      free(e);
    }
  st->sync_head = st->sync_tail = st->syncing = NULL;
  if (st->idle_init) {
    st->idle_init = 0;
    st->idle.data = st;
    ferry__stage_handle_closing(st);
    uv_close((uv_handle_t *)&st->idle, on_handle_closed);
  }
  ferry__report_spool_free(st);
  ferry__listing_release(st);
  json_decref(st->notes);
  st->notes = NULL;
  free(st->wanted_key);
  st->wanted_key = NULL;
  ferry__jrow_clear(&st->wanted_row);
  ferry__stage_handle_closed(st);
}

/* ---- failure ------------------------------------------------------------------------------------------ */

void ferry__stage_fail(ferry_stage *st, const ferry_error *e) {
  if (st->status) return;
  st->status = e && e->code ? e->code : FERRY_EIO;
  if (e && e->message)
    ferry_error_copy(&st->error, e);
  else
    ferry_error_set(&st->error, st->status, "%s", ferry_strerror(st->status));
  ferry_log_error(NULL, "stage \"%s\" failed: %s", st->name, st->error.message);
  ferry__stage_kick(st);
}

/* ---- source side (ferry/plugin.h) ---------------------------------------------------------------------- */

static ferry_stage *source_stage(ferry_instance *ins, const char *fn) {
  if (!ins) {
    ferry_log_error(NULL, "%s called without an instance: ignored", fn);
    return NULL;
  }
  if (ins->role != FERRY_KIND_SOURCE || !ins->stage) {
    ferry_log_error(ins, "%s called by an instance that is not the source of a running stage: ignored", fn);
    return NULL;
  }
  return ins->stage;
}

static int taking(const ferry_stage *st) {
  return st->state == STAGE_RUNNING && st->source_started && !st->source_ended && !st->source_failed &&
         !st->source_stopped && !st->interrupted && !st->status && !ferry__outcomes_error(st->run->out);
}

/* Whether a journal row makes the item a repair (ferry_task_repair): it carries a verify mark and is done
 * (taken by a repair run only), or in doubt / failed (a repair that was interrupted or failed after its
 * intent: taken by any run, as a repair, so that the sink works on the recorded target objects). */
static int repairable(const ferry_jrow *row) {
  if (!row->verify) return 0;
  return row->status == FERRY_J_DONE || row->status == FERRY_J_SKIPPED || row->status == FERRY_J_INTENT ||
         row->status == FERRY_J_FAILED;
}

FERRY_API void ferry_emit(ferry_instance *ins, ferry_item *item) {
  ferry_stage *st = source_stage(ins, "ferry_emit");
  if (!st) {
    ferry_item_free(item);
    return;
  }
  if (!item) {
    ferry_log_error(ins, "ferry_emit called with a NULL item: ignored");
    return;
  }
  if (st->lst) { /* worker mode: into the listing, which every worker takes from */
    ferry__listing_emit(st, item);
    return;
  }
  if (st->requested) st->requested--;
  if (!taking(st) || st->limit_reached) {
    if (st->source_ended && !st->interrupted && !st->limit_reached && !st->status)
      ferry_log_error(ins,
                      "item \"%s\" emitted after ferry_source_end(): dropped (a bug in the source plugin)",
                      item->key ? item->key : "");
    else if (st->source_stopped && !st->interrupted && !st->limit_reached && !st->status)
      ferry_log_error(ins, "item \"%s\" emitted after stop(): dropped (a bug in the source plugin)",
                      item->key ? item->key : "");
    ferry_item_free(item);
    return;
  }
  if (!item->key) item->key = ferry_strdup("");
  if (!item->body) item->body = json_object();
  st->budget++;
  take_item(st, item);
}

unsigned ferry__stage_concurrency(const ferry_stage *st) {
  unsigned n = st->share_n > 1 ? st->share_n : 1;
  unsigned c = st->concurrency / n;
  return c ? c : 1;
}

static void take_row(ferry_stage *st, ferry_item *item, ferry_jrow row, int listed);

/* An emitted item: the journal's row decides what happens. */
static void take_item(ferry_stage *st, ferry_item *item) {
  const ferry__run *run = st->run;
  ferry_jrow row = {0};
  if (st->journal && st->wanted_key && !strcmp(st->wanted_key, item->key)) { /* just read by _wanted() */
    row = st->wanted_row;
    memset(&st->wanted_row, 0, sizeof st->wanted_row);
    free(st->wanted_key);
    st->wanted_key = NULL;
  } else if (st->journal && ferry__outcomes_get(run->out, st->name, item->key, &row) < 0) {
    ferry_item_free(item); /* the journal failed: the pump stops the stage */
    ferry__jrow_clear(&row);
    ferry__stage_kick(st);
    return;
  }
  take_row(st, item, row, 0);
}

/* Worker mode: an item taken from the listing (claimed by this worker unless the journal has it as done),
 * with the journal's status of it: no row, done (outside a repair: done by another worker, or before), or
 * another (its row is read: the sink continues from its step). */
void ferry__stage_take_listed(ferry_stage *st, ferry_item *item, const char *status) {
  ferry_jrow row = {0};
  st->budget++;
  if (status && !st->run->repair && (!strcmp(status, "done") || !strcmp(status, "skipped"))) {
    st->resumed++;
    st->elsewhere++;
    ferry_item_free(item);
    ferry__stage_kick(st);
    return;
  }
  if (status && ferry__outcomes_get(st->run->out, st->name, item->key, &row) < 0) {
    ferry_item_free(item); /* the journal failed: the pump stops the stage */
    ferry__jrow_clear(&row);
    ferry__stage_kick(st);
    return;
  }
  take_row(st, item, row, 1);
}

/* The item with its journal row (owned by this call from here on); listed: taken from the listing (and so
 * claimed already). */
static void take_row(ferry_stage *st, ferry_item *item, ferry_jrow row, int listed) {
  const ferry__run *run = st->run;
  ferry_instance *ins = st->source;
  int done_before = row.status == FERRY_J_DONE || row.status == FERRY_J_SKIPPED;
  int repair = st->mode == FERRY_MODE_RUN && repairable(&row);
  if (st->mode == FERRY_MODE_RUN && run->repair && !(repair && st->journal_write)) {
    /* a repair run carries only the items verify marked; the others are not touched */
    st->not_selected++;
    json_t *o = json_pack("{s:s, s:s, s:s}", "key", item->key, "status", "not_selected", "journal_status",
                          ferry__jstatus_name(row.status));
    ferry__report_entry(st, o);
    ferry__jrow_clear(&row);
    ferry_item_free(item);
    ferry__stage_kick(st);
    return;
  }
  if (st->mode == FERRY_MODE_RUN && done_before && !run->repair) {
    st->resumed++;
    ferry__jrow_clear(&row);
    ferry_item_free(item);
    ferry__stage_kick(st);
    return;
  }
  if (st->mode == FERRY_MODE_PLAN && done_before) {
    st->resumed++;
    ferry__report_item(st, item->key, "already_done", NULL, 0, NULL);
    ferry__jrow_clear(&row);
    ferry_item_free(item);
    ferry__stage_kick(st);
    return;
  }
  if (st->mode == FERRY_MODE_VERIFY && st->cfg->journal && !done_before) {
    /* only what the journal says was migrated can be verified */
    st->not_migrated++;
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EMISMATCH, "not migrated: the journal has %s for this item",
                    row.status == FERRY_J_NONE ? "no record" : ferry__jstatus_name(row.status));
    if (row.error) ferry_error_set_detail(&e, "%s", row.error);
    ferry__report_item(st, item->key, "not_migrated", &e, row.attempts, NULL);
    ferry_error_clear(&e);
    ferry__jrow_clear(&row);
    ferry_item_free(item);
    ferry__stage_kick(st);
    return;
  }
  if (st->limit && st->taken >= st->limit) {
    st->limit_reached = 1;
    ferry__jrow_clear(&row);
    ferry_item_free(item);
    ferry__stage_kick(st);
    return;
  }
  st->taken++;
  if (st->limit && st->taken >= st->limit) st->limit_reached = 1;
  ferry_task *t = ferry__task_new(st, item);
  t->jstatus = row.status;
  t->repair = repair;
  t->claimed = listed;
  if (row.status == FERRY_J_INTENT || (row.status == FERRY_J_FAILED && row.step) || repair ||
      (st->mode == FERRY_MODE_VERIFY && done_before)) {
    /* in doubt, or failed after a step with side effects, or repaired (or verified): the sink sees the step
     * and state the journal recorded, so it continues from there (or works on the recorded target objects)
     * instead of doing the side effect a second time */
    t->step = row.step;
    row.step = NULL;
    t->state = row.state;
    row.state = NULL;
  }
  ferry__jrow_clear(&row);
  uint32_t emits = st->source_plugin->source->emits;
  if (!item->kind || (item->kind & (item->kind - 1)) || !(item->kind & emits)) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EINVAL,
                    "source \"%s\" emitted an item of kind %s (0x%x), which it does not declare",
                    st->source_plugin->name, ferry_item_kind_name(item->kind), item->kind);
    ferry_log_item(ins, FERRY_LOG_ERROR, item->key, e.code, "%s", e.message);
    st->active++;
    ferry__task_fail_now(t, &e, 0);
    ferry_error_clear(&e);
    return;
  }
  if (!(item->kind & st->sink_plugin->sink->accepts)) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, FERRY_EINVAL, "sink \"%s\" does not accept items of kind %s", st->sink_plugin->name,
                    ferry_item_kind_name(item->kind));
    st->active++;
    ferry__task_fail_now(t, &e, 0);
    ferry_error_clear(&e);
    return;
  }
  t->phase = TASK_QUEUED;
  if (st->qtail)
    st->qtail->next = t;
  else
    st->qhead = t;
  st->qtail = t;
  st->queued++;
  ferry__stage_kick(st);
}

FERRY_API void ferry_source_end(ferry_instance *ins) {
  ferry_stage *st = source_stage(ins, "ferry_source_end");
  if (!st) return;
  if (st->lst) {
    ferry__listing_source_end(st);
    return;
  }
  if (st->source_ended) {
    ferry_log_warn(ins, "ferry_source_end called twice: ignored");
    return;
  }
  st->source_ended = 1;
  st->requested = 0;
  ferry__stage_kick(st);
}

FERRY_API void ferry_source_fail(ferry_instance *ins, const ferry_error *err) {
  ferry_stage *st = source_stage(ins, "ferry_source_fail");
  if (!st) return;
  if (st->source_failed) return;
  ferry_error e = FERRY_ERROR_INIT;
  if (err && err->code)
    ferry_error_copy(&e, err);
  else
    ferry_error_set(&e, FERRY_EIO, "the source failed without saying why");
  ferry_error_prefix(&e, "source \"%s\"", ins->plugin->name);
  if (st->lst) { /* worker mode: the other workers stop with the same error */
    ferry__listing_source_fail(st, &e);
    ferry_error_clear(&e);
    return;
  }
  st->source_failed = 1;
  st->requested = 0;
  ferry__stage_fail(st, &e);
  ferry_error_clear(&e);
}

FERRY_API void ferry_source_total(ferry_instance *ins, int64_t total) {
  ferry_stage *st = source_stage(ins, "ferry_source_total");
  if (st && st->lst)
    ferry__listing_total(st, total);
  else if (st)
    st->total = total < 0 ? -1 : total;
}

FERRY_API int ferry_source_wanted(ferry_instance *ins, const char *key) {
  ferry_stage *st = source_stage(ins, "ferry_source_wanted");
  if (!st || !key) return 1;
  if (!st->journal) /* verify without a journal file: nothing is migrated; repair: nothing is marked */
    return !(st->mode == FERRY_MODE_VERIFY && st->cfg->journal) &&
           !(st->mode == FERRY_MODE_RUN && st->run->repair);
  ferry_jrow row = {0};
  if (ferry__outcomes_peek(st->run->out, st->name, key, &row) < 0)
    return 1; /* the emit looks again and reports the journal failure */
  int done_before = row.status == FERRY_J_DONE || row.status == FERRY_J_SKIPPED;
  /* kept for the ferry_emit() of this key, which normally follows at once for an unwanted item */
  free(st->wanted_key);
  ferry__jrow_clear(&st->wanted_row);
  st->wanted_key = ferry_strdup(key);
  st->wanted_row = row;
  if (st->mode == FERRY_MODE_VERIFY) return st->cfg->journal ? done_before : 1;
  if (st->mode == FERRY_MODE_RUN && st->run->repair) return repairable(&row);
  return !done_before;
}

/* ---- the pump ------------------------------------------------------------------------------------------ */

static void on_idle(uv_idle_t *h) {
  ferry_stage *st = h->data;
  uv_idle_stop(h);
  st->budget = 0;
  if (st->state == STAGE_RUNNING) pump(st);
}

void ferry__stage_kick(ferry_stage *st) {
  if (st->pumping) {
    st->pump_again = 1;
    return;
  }
  if (st->idle_init && st->state == STAGE_RUNNING) uv_idle_start(&st->idle, on_idle);
}

int ferry__stage_settled(const ferry_stage *st) {
  int no_more = st->source_ended || st->source_failed || st->limit_reached || st->interrupted || st->status;
  return no_more && st->queued == 0 && st->active == 0;
}

static void stop_source(ferry_stage *st) {
  if (st->source_stopped) return;
  st->source_stopped = 1;
  st->requested = 0;
  if (st->lst)
    ferry__listing_stop(st);
  else if (st->source_started && st->source_plugin->source->stop)
    st->source_plugin->source->stop(st->source);
}

static void pump(ferry_stage *st) {
  if (st->pumping) {
    st->pump_again = 1;
    return;
  }
  st->pumping = 1;
  int yield = 0;
  do {
    st->pump_again = 0;
    if (st->state != STAGE_RUNNING) break;
    /* the run's state: a journal failure fails the stage, an interrupt stops it */
    const ferry_error *journal_error = ferry__outcomes_error(st->run->out);
    if (journal_error) { /* both at most once */
      ferry__stage_fail(st, journal_error);
      ferry__stage_interrupt(st);
    }
    if (*st->run->interrupt_requested && !st->interrupted) ferry__stage_interrupt(st);
    /* hand queued tasks to the sink */
    unsigned concurrency = ferry__stage_concurrency(st);
    while (st->qhead && st->insink < concurrency && !st->interrupted) {
      ferry_task *t = st->qhead;
      st->qhead = t->next;
      if (!st->qhead) st->qtail = NULL;
      t->next = NULL;
      st->queued--;
      st->active++;
      ferry__task_start(t);
      if (++st->budget >= FERRY_YIELD_EVERY) break;
    }
    if (st->budget >= FERRY_YIELD_EVERY) {
      yield = 1;
      break;
    }
    ferry__stage_sync_maybe(st, 0);
    if ((st->limit_reached || st->interrupted || st->status) && !st->source_stopped && st->source_started)
      stop_source(st);
    /* ask the source for what fits in the window */
    /* (a worker's window follows its share) */
    size_t window = st->share_n > 1 ? 2 * (size_t)concurrency : st->window;
    if (taking(st) && !st->limit_reached && st->sync_count < 8 * FERRY_GROUP_MAX) {
      size_t out = st->requested + st->queued + st->active;
      if (out < window) {
        size_t n = window - out;
        if (st->limit) {
          int64_t left = st->limit - st->taken - (int64_t)st->requested;
          n = left <= 0 ? 0 : (size_t)left < n ? (size_t)left : n;
        }
        if (st->lst) {
          /* worker mode: from the listing, in batches (a round trip each): when half the window is free, or
           * the sink has nothing queued */
          if (n && (st->queued == 0 || n >= window / 2)) ferry__listing_intake(st, n);
        } else if (n) {
          st->requested += n;
          if ((int64_t)(out + n) > st->max_outstanding) st->max_outstanding = (int64_t)(out + n);
          st->source_plugin->source->demand(st->source, n);
          st->pump_again = 1;
        }
      }
    }
    if (st->budget >= FERRY_YIELD_EVERY) {
      yield = 1;
      break;
    }
    if (ferry__stage_settled(st)) break;
  } while (st->pump_again);
  st->pumping = 0;
  if (st->state != STAGE_RUNNING) return;
  if (yield || st->pump_again) {
    uv_idle_start(&st->idle, on_idle);
    return;
  }
  if (ferry__stage_settled(st)) {
    st->state = STAGE_ENDING;
    end_continue(st);
  }
}

/* ---- start --------------------------------------------------------------------------------------------- */

static void begin_plugins(ferry_stage *st) {
  ferry_error e = FERRY_ERROR_INIT;
  if (*st->run->interrupt_requested) ferry__stage_interrupt(st);
  if (!st->status && !st->interrupted) {
    const ferry_sink_ops *k = st->sink_plugin->sink;
    if (k->start && k->start(st->sink, &e) < 0) {
      if (!e.code) ferry_error_set(&e, FERRY_EIO, "start failed without saying why");
      ferry_error_prefix(&e, "sink \"%s\" could not start", st->sink_plugin->name);
      ferry__stage_fail(st, &e);
      ferry_error_clear(&e);
    } else {
      st->sink_started = 1;
    }
  }
  if (!st->status && !st->interrupted && st->run->worker && st->journal_write) {
    ferry__listing_open(st); /* the source plugin runs on one worker only (listing.c) */
  } else if (!st->status && !st->interrupted) {
    const ferry_source_ops *s = st->source_plugin->source;
    if (s->start && s->start(st->source, &e) < 0) {
      if (!e.code) ferry_error_set(&e, FERRY_EIO, "start failed without saying why");
      ferry_error_prefix(&e, "source \"%s\" could not start", st->source_plugin->name);
      ferry__stage_fail(st, &e);
      ferry_error_clear(&e);
    } else {
      st->source_started = 1;
    }
  }
  ferry__stage_kick(st);
}

static void on_stage_started(void *arg, int status, const ferry_error *err) {
  ferry_stage *st = arg;
  st->starting = 0;
  if (status) {
    ferry_error e = FERRY_ERROR_INIT;
    if (err && err->code)
      ferry_error_copy(&e, err);
    else
      ferry_error_set(&e, status, "%s", ferry_strerror(status));
    ferry_error_prefix(&e, "hook at stage_start");
    ferry__stage_fail(st, &e);
    ferry_error_clear(&e);
  }
  begin_plugins(st);
}

void ferry__stage_start(ferry_stage *st, ferry__stage_cb ended, void *arg) {
  st->on_end = ended;
  st->on_end_arg = arg;
  st->state = STAGE_RUNNING;
  st->t_start = ferry__now();
  ferry__series_start(&st->series, st->t_start, 0.2); /* the runtime's tick */
  st->limit = st->limit > 0 ? st->limit : 0;
  uv_idle_init(st->run->loop, &st->idle);
  st->idle.data = st;
  st->idle_init = 1;
  ferry_log_info(NULL, "stage \"%s\" started (source %s, sink %s, concurrency %u)", st->name,
                 st->source_plugin->name, st->sink_plugin->name, st->concurrency);
  if (st->mode == FERRY_MODE_RUN && ferry__hooks_at(st, "stage_start")) {
    st->starting = 1;
    ferry__fire_core(st, NULL, "stage_start", NULL, on_stage_started, st);
  } else {
    begin_plugins(st);
  }
}

/* ---- interrupt ----------------------------------------------------------------------------------------- */

void ferry__stage_interrupt(ferry_stage *st) {
  if (st->interrupted) return;
  st->interrupted = 1;
  st->requested = 0;
  /* queued tasks are not started: they stay as the journal has them and are taken again next run */
  while (st->qhead) {
    ferry_task *t = st->qhead;
    st->qhead = t->next;
    t->next = NULL;
    st->queued--;
    st->active++;
    ferry__task_drop(t);
  }
  st->qtail = NULL;
  /* tasks waiting for a retry are not retried: dropped the same way */
  for (size_t i = 0; i < st->ntasks; i++) {
    ferry_task *t = st->tasks[i];
    if (t->phase == TASK_RETRY) {
      ferry_log_item(st->sink, FERRY_LOG_INFO, t->item->key, 0, "not retried (interrupted)");
      ferry__task_drop(t);
    }
  }
  ferry__stage_kick(st);
}

/* ---- durable outcomes: sync() then journal ------------------------------------------------------------- */

static void on_synced(void *arg, int status, const ferry_error *err) {
  ferry_stage *st = arg;
  ferry__outcomes *out = st->run->out;
  if (!st->sync_running) {
    ferry_log_error(st->sink, "sync completion reported twice: ignored (a bug in the sink plugin)");
    return;
  }
  st->sync_running = 0;
  sync_entry *list = st->syncing;
  st->syncing = NULL;
  for (sync_entry *e = list, *n; e; e = n) {
    n = e->next;
    if (status == 0) {
      if (st->journal_write)
        ferry__outcome_done(out, st->name, e->key, e->state, e->report, e->attempts, e->skipped);
      if (e->skipped)
        st->skipped++;
      else
        st->done++;
      if (e->repair) st->repaired++;
    } else {
      /* not durable: the journal keeps the item in doubt (its intent), so the next run reconciles it */
      ferry_error fe = FERRY_ERROR_INIT;
      if (err && err->code)
        ferry_error_copy(&fe, err);
      else
        ferry_error_set(&fe, status, "%s", ferry_strerror(status));
      ferry_error_prefix(&fe, "sink \"%s\" could not make the item durable (sync)", st->sink_plugin->name);
      st->failed++;
      if (!st->first_fail_code) st->first_fail_code = fe.code;
      ferry_log_item(st->sink, FERRY_LOG_ERROR, e->key, fe.code, "failed in stage \"%s\": %s", st->name, fe.message);
      /* the error goes on the item's row (the report of the run reads it there), else into the report */
      int recorded = st->journal_write && ferry__outcome_doubt(out, st->name, e->key, &fe, e->report);
      if (!recorded) ferry__report_item(st, e->key, "failed", &fe, e->attempts, e->report);
      ferry_error_clear(&fe);
    }
    free(e->key);
    json_decref(e->state);
    json_decref(e->report);
    free(e);
  }
  if (st->state == STAGE_ENDING)
    end_continue(st);
  else
    ferry__stage_kick(st);
}

void ferry__stage_sync_maybe(ferry_stage *st, int force) {
  if (st->sync_running || !st->sync_head) return;
  if (!force && st->sync_count < FERRY_GROUP_MAX && ferry__now() - st->sync_since < FERRY_GROUP_MS / 1000.0)
    return;
  st->syncing = st->sync_head;
  st->sync_head = st->sync_tail = NULL;
  st->sync_count = 0;
  st->sync_running = 1;
  st->sink_plugin->sink->sync(st->sink, on_synced, st);
}

void ferry__stage_sample(ferry_stage *st) {
  int64_t c[FERRY_SERIES_COUNTERS] = {st->done + st->skipped + st->resumed + st->failed + st->not_migrated,
                                      st->failed + st->not_migrated, st->retried};
  ferry__series_sample(&st->series, ferry__now(), c);
}

/* ---- end ----------------------------------------------------------------------------------------------- */

enum { END_STOP_SOURCE = 0, END_SYNC, END_STOP_SINK, END_HOOKS, END_HOOKS_WAIT, END_DONE };

static void finish(ferry_stage *st) {
  st->state = STAGE_FINISHED;
  if (st->idle_init) uv_idle_stop(&st->idle);
  st->t_end = ferry__now();
  ferry__stage_sample(st);
  if (st->interrupted && !st->status) {
    st->status = FERRY_ECANCELED;
    ferry_error_set(&st->error, FERRY_ECANCELED, "interrupted");
  }
  ferry_log_info(NULL,
                 "stage \"%s\" %s: done %lld, skipped %lld, already done %lld, failed %lld, retried %lld, "
                 "%.3f s",
                 st->name,
                 st->status == FERRY_ECANCELED ? "interrupted"
                 : st->status                  ? "failed"
                                               : "finished",
                 (long long)st->done, (long long)st->skipped, (long long)st->resumed, (long long)st->failed,
                 (long long)st->retried, st->t_end - st->t_start);
  if (st->mode == FERRY_MODE_RUN && st->run->repair)
    ferry_log_info(NULL, "stage \"%s\" repair: repaired %lld, repair failed %lld, not selected for repair %lld",
                   st->name, (long long)st->repaired, (long long)st->repair_failed, (long long)st->not_selected);
}

static void on_stage_end_hooks(void *arg, int status, const ferry_error *err) {
  ferry_stage *st = arg;
  if (status) {
    ferry_error e = FERRY_ERROR_INIT;
    if (err && err->code)
      ferry_error_copy(&e, err);
    else
      ferry_error_set(&e, status, "%s", ferry_strerror(status));
    ferry_error_prefix(&e, "hook at stage_end");
    ferry__stage_fail(st, &e);
    ferry_error_clear(&e);
  }
  st->end_phase = END_DONE;
  end_continue(st);
}

/* The end sequence. Never recursive: a step that completes synchronously (a sync() or a hook calling back
 * at once) sets end_again and this loop goes on. */
static void end_continue(ferry_stage *st) {
  if (st->in_end) {
    st->end_again = 1;
    return;
  }
  st->in_end = 1;
  do {
    st->end_again = 0;
    int waiting = 0;
    while (!waiting && st->state != STAGE_FINISHED) {
      switch (st->end_phase) {
        case END_STOP_SOURCE:
          stop_source(st);
          st->end_phase = END_SYNC;
          break;
        case END_SYNC:
          if (st->sync_running) { /* on_synced comes back here */
            waiting = 1;
            break;
          }
          if (st->sync_head && st->sink_started) {
            ferry__stage_sync_maybe(st, 1);
            break; /* look again: running (wait) or completed synchronously */
          }
          st->end_phase = END_STOP_SINK;
          break;
        case END_STOP_SINK:
          if (st->journal_write) ferry__outcomes_commit(st->run->out);
          if (st->sink_started && st->sink_plugin->sink->stop) st->sink_plugin->sink->stop(st->sink);
          st->sink_started = 0;
          st->end_phase = END_HOOKS;
          break;
        case END_HOOKS:
          if (st->mode == FERRY_MODE_RUN && ferry__hooks_at(st, "stage_end")) {
            st->end_phase = END_HOOKS_WAIT;
            ferry__fire_core(st, NULL, "stage_end", NULL, on_stage_end_hooks, st);
          } else {
            st->end_phase = END_DONE;
          }
          break;
        case END_HOOKS_WAIT:
          waiting = 1;
          break;
        case END_DONE:
        default:
          finish(st);
          break;
      }
    }
  } while (st->end_again && st->state != STAGE_FINISHED);
  st->in_end = 0;
  if (st->state == STAGE_FINISHED && !st->reported_finished) {
    st->reported_finished = 1;
    if (st->on_end) st->on_end(st, st->on_end_arg);
  }
}

/* Ends a stage that can make no progress (nothing on the loop can complete it): used by the runtime's
 * stall detection. */
void ferry__stage_force_end(ferry_stage *st, const ferry_error *e) {
  ferry__stage_fail(st, e);
  st->end_phase = END_DONE;
  st->state = STAGE_ENDING;
  end_continue(st);
}
