/* Tasks: one item on its way through the sink, and the SDK functions a sink calls on it (ferry/plugin.h).
 *
 * Life of a task: QUEUED (emitted, waiting for a sink slot) -> SINK (write/plan/verify called) -> done or
 * fail. Done: item_done hooks (RUN) -> journal done (now, or after the sink's sync() for FERRY_DONE_SYNC) ->
 * released. Fail: transient and attempts left -> RETRY (backoff timer) -> QUEUED again; otherwise
 * item_failed hooks (RUN) -> journal failed -> released. Released tasks go to a FIFO free list and are
 * reused. Intents are written to the journal immediately (ferry_task_intent), with the task's state and hook
 * states.
 */
#include <stdlib.h>
#include <string.h>

#include "run/run.h"

static void finish_done(ferry_task *t);
static void finish_failed(ferry_task *t);
static void handle_failure(ferry_task *t, int retry);
static void after_failed_hooks(void *arg, int status, const ferry_error *err);

ferry_task *ferry__task_new(ferry_stage *st, ferry_item *item) {
  ferry_task *t = st->freelist;
  if (t) {
    st->freelist = t->next;
    if (!st->freelist) st->freetail = NULL;
  } else {
    t = ferry__xcalloc(1, sizeof *t);
    t->stage = st;
    if (st->ntasks == st->taskcap) {
      st->taskcap = st->taskcap ? 2 * st->taskcap : 32;
      st->tasks = ferry__xrealloc(st->tasks, st->taskcap * sizeof *st->tasks);
    }
    st->tasks[st->ntasks++] = t;
  }
  t->item = item;
  t->phase = TASK_QUEUED;
  t->attempt = 1;
  t->jstatus = FERRY_J_NONE;
  t->step = NULL;
  t->state = NULL;
  t->report = NULL;
  t->done_flags = 0;
  t->repair = 0;
  t->claimed = 0;
  t->lost = 0;
  t->next = NULL;
  return t;
}

static void release(ferry_task *t) {
  ferry_stage *st = t->stage;
  ferry_item_free(t->item);
  t->item = NULL;
  free(t->step);
  t->step = NULL;
  json_decref(t->state);
  t->state = NULL;
  json_decref(t->report);
  t->report = NULL;
  ferry_error_clear(&t->err);
  if (t->timer) uv_timer_stop(t->timer);
  t->phase = TASK_FREE;
  t->next = NULL;
  if (st->freetail)
    st->freetail->next = t;
  else
    st->freelist = t;
  st->freetail = t;
  st->active--;
  ferry__stage_kick(st);
}

void ferry__task_drop(ferry_task *t) { release(t); }

static void on_timer_closed(uv_handle_t *h) {
  ferry_stage *st = h->data;
  free(h);
  ferry__stage_handle_closed(st);
}

void ferry__task_free_all(ferry_stage *st) {
  for (size_t i = 0; i < st->ntasks; i++) {
    ferry_task *t = st->tasks[i];
    if (t->timer) {
      t->timer->data = st;
      ferry__stage_handle_closing(st);
      uv_close((uv_handle_t *)t->timer, on_timer_closed);
    }
    ferry_item_free(t->item);
    free(t->step);
    json_decref(t->state);
    json_decref(t->report);
    ferry_error_clear(&t->err);
    free(t);
  }
  free(st->tasks);
  st->tasks = NULL;
  st->ntasks = st->taskcap = 0;
  st->freelist = st->freetail = NULL;
  st->qhead = st->qtail = NULL;
}

/* ---- starting ------------------------------------------------------------------------------------------ */

void ferry__task_start(ferry_task *t) {
  ferry_stage *st = t->stage;
  t->phase = TASK_SINK;
  st->insink++;
  if ((int64_t)st->insink > st->max_insink) st->max_insink = (int64_t)st->insink;
  const ferry_sink_ops *k = st->sink_plugin->sink;
  switch (st->mode) {
    case FERRY_MODE_PLAN:
      if (k->plan) {
        k->plan(st->sink, t);
      } else {
        json_object_set_new(ferry_task_report(t), "would", json_string("no plan check"));
        ferry_task_done(t, 0);
      }
      break;
    case FERRY_MODE_VERIFY:
      if (k->verify) {
        k->verify(st->sink, t);
      } else {
        json_object_set_new(ferry_task_report(t), "verify", json_string("no verify check"));
        ferry_task_done(t, 0);
      }
      break;
    default:
      k->write(st->sink, t);
      break;
  }
}

/* ---- checks against misuse ----------------------------------------------------------------------------- */

static int in_progress(ferry_task *t, const char *fn, int hooks_ok) {
  if (!t) {
    ferry_log_error(NULL, "%s called with a NULL task: ignored (a bug in a plugin)", fn);
    return 0;
  }
  if (t->phase == TASK_SINK || (hooks_ok && t->phase == TASK_HOOKS)) return 1;
  ferry_log_error(t->stage->sink,
                  "%s called on a task that is not in progress (%s): ignored (a bug in the "
                  "plugin)",
                  fn, t->phase == TASK_FREE ? "already completed" : "not handed to the sink");
  return 0;
}

/* ---- done ---------------------------------------------------------------------------------------------- */

static void after_done_hooks(void *arg, int status, const ferry_error *err) {
  ferry_task *t = arg;
  if (status) {
    if (err && err->code)
      ferry_error_copy(&t->err, err);
    else
      ferry_error_set(&t->err, status, "%s", ferry_strerror(status));
    ferry_error_prefix(&t->err, "hook at item_done");
    handle_failure(t, 1);
    return;
  }
  finish_done(t);
}

FERRY_API void ferry_task_done(ferry_task *task, unsigned flags) {
  if (!in_progress(task, "ferry_task_done", 0)) return;
  ferry_stage *st = task->stage;
  st->insink--;
  task->done_flags = flags;
  if (st->mode == FERRY_MODE_RUN && st->has_item_done) {
    task->phase = TASK_HOOKS;
    ferry__fire_core(st, task, "item_done", NULL, after_done_hooks, task);
    return;
  }
  finish_done(task);
}

/* Worker mode: the claim of the item expired before an intent, so another worker may carry it: this one
 * writes nothing more about it and counts it as done elsewhere. */
static int lost_claim(ferry_task *t) {
  if (!t->lost) return 0;
  ferry_stage *st = t->stage;
  ferry_log_item(st->sink, FERRY_LOG_WARN, t->item->key, 0,
                 "worker %s lost its claim of the item (its lease expired and another worker took it): left to the worker that holds it now",
                 ferry__worker_name(st->run));
  st->resumed++;
  st->elsewhere++;
  release(t);
  return 1;
}

/* Worker mode: the worker that did the item, in its report (ferry status: "by NAME"). */
static void note_worker(ferry_task *t) {
  const char *w = ferry__worker_name(t->stage->run);
  if (w && t->stage->mode == FERRY_MODE_RUN) json_object_set_new(ferry_task_report(t), "worker", json_string(w));
}

static void finish_done(ferry_task *t) {
  ferry_stage *st = t->stage;
  ferry__outcomes *out = st->run->out;
  int skipped = (t->done_flags & FERRY_DONE_SKIPPED) != 0;
  if (lost_claim(t)) return;
  note_worker(t);
  if (st->mode == FERRY_MODE_PLAN) {
    ferry__report_item(st, t->item->key, skipped ? "would_skip" : "would_do", NULL, 0, t->report);
  } else if (st->mode == FERRY_MODE_VERIFY) {
    /* equal: a mark an earlier verify left is cleared */
    if (st->journal_marks) ferry__outcome_verified(out, st->name, t->item->key, NULL, t->report);
    st->equal++;
    ferry__report_item(st, t->item->key, "equal", NULL, 0, t->report);
  } else if (st->mode == FERRY_MODE_RUN) {
    if ((t->done_flags & FERRY_DONE_SYNC) && st->sink_plugin->sink->sync) {
      sync_entry *e = ferry__xmalloc(sizeof *e);
      e->key = t->item->key;
      t->item->key = NULL;
      e->state = t->state;
      t->state = NULL;
      e->report = t->report;
      t->report = NULL;
      e->attempts = t->attempt;
      e->skipped = skipped;
      e->repair = t->repair;
      e->next = NULL;
      if (st->sync_tail)
        st->sync_tail->next = e;
      else {
        st->sync_head = e;
        st->sync_since = ferry__now();
      }
      st->sync_tail = e;
      st->sync_count++;
      release(t); /* the pump (or the timer) calls sync() from a clean stack */
      return;
    }
    if (st->journal_write)
      ferry__outcome_done(out, st->name, t->item->key, t->state, t->report, t->attempt, skipped);
    if (t->repair) st->repaired++;
  }
  if (skipped)
    st->skipped++;
  else
    st->done++;
  release(t);
}

/* ---- failure ------------------------------------------------------------------------------------------- */

static void on_retry(uv_timer_t *h) {
  ferry_task *t = h->data;
  ferry_stage *st = t->stage;
  if (t->phase != TASK_RETRY) return;
  if (st->interrupted) {
    release(t);
    return;
  }
  t->attempt++;
  ferry_error_clear(&t->err);
  t->phase = TASK_QUEUED;
  t->next = st->qhead; /* retries go first */
  st->qhead = t;
  if (!st->qtail) st->qtail = t;
  st->queued++;
  st->active--;
  ferry__stage_kick(st);
}

static void handle_failure(ferry_task *t, int retry) {
  ferry_stage *st = t->stage;
  if (lost_claim(t)) return;
  if (!t->err.code) ferry_error_set(&t->err, FERRY_EINTERNAL, "failed without an error");
  if (retry && ferry_error_is_transient(&t->err)) {
    if (st->interrupted) { /* not failed: the next run takes it again */
      ferry_log_item(st->sink, FERRY_LOG_INFO, t->item->key, t->err.code, "%s; not retried (interrupted)",
                     t->err.message);
      release(t);
      return;
    }
    if (t->attempt <= st->cfg->retry_max) {
      uint64_t delay = ferry_backoff_ms(t->attempt, st->cfg->retry_base_ms, st->cfg->retry_cap_ms, &st->rng);
      st->retried++;
      ferry_log_item(st->sink, FERRY_LOG_WARN, t->item->key, t->err.code,
                     "attempt %u: %s; retrying in %llu ms (%u of %u)", t->attempt, t->err.message, (unsigned long long)delay, t->attempt, st->cfg->retry_max);
      t->phase = TASK_RETRY;
      if (!t->timer) {
        t->timer = ferry__xmalloc(sizeof *t->timer);
        uv_timer_init(st->run->loop, t->timer);
      }
      t->timer->data = t;
      uv_timer_start(t->timer, on_retry, delay, 0);
      ferry__stage_kick(st); /* its sink slot is free */
      return;
    }
    ferry_error_prefix(&t->err, "gave up after %u attempts", t->attempt);
  }
  if (st->mode == FERRY_MODE_RUN && st->has_item_failed) {
    t->phase = TASK_HOOKS;
    ferry__fire_core(st, t, "item_failed", NULL, after_failed_hooks, t);
    return;
  }
  finish_failed(t);
}

void ferry__task_fail_now(ferry_task *t, const ferry_error *e, int retry) {
  ferry_error_copy(&t->err, e);
  handle_failure(t, retry);
}

static void after_failed_hooks(void *arg, int status, const ferry_error *err) {
  ferry_task *t = arg;
  if (status)
    ferry_log_item(t->stage->sink, FERRY_LOG_WARN, t->item->key, status, "hook at item_failed failed: %s",
                   err && err->message ? err->message : ferry_strerror(status));
  finish_failed(t);
}

static void finish_failed(ferry_task *t) {
  ferry_stage *st = t->stage;
  ferry__outcomes *out = st->run->out;
  if (lost_claim(t)) return;
  if (!t->repair) note_worker(t); /* a failed repair keeps the stored report */
  const char *status = "failed";
  if (st->mode == FERRY_MODE_PLAN && t->err.code == FERRY_EBLOCKED) {
    status = "blocked";
    st->blocked++;
  } else if (st->mode == FERRY_MODE_VERIFY && t->err.code == FERRY_EMISMATCH) {
    status = "mismatched";
    st->mismatched++;
  }
  st->failed++;
  if (!strcmp(status, "failed") && !st->first_fail_code) st->first_fail_code = t->err.code;
  if (!strcmp(status, "failed"))
    ferry_log_item(st->sink, FERRY_LOG_ERROR, t->item->key, t->err.code,
                   "failed in stage \"%s\" (sink %s, attempt %u): %s", st->name, st->sink_plugin->name,
                   t->attempt, t->err.message);
  else
    ferry_log_item(st->sink, FERRY_LOG_INFO, t->item->key, t->err.code, "%s: %s", status, t->err.message);
  int in_journal = 0; /* the report of the run reads the item from the journal */
  if (st->journal_write)
    in_journal = ferry__outcome_failed(out, st->name, t->item->key, t->state, t->report, &t->err, t->attempt,
                                       t->repair);
  else if (st->journal_marks && t->err.code == FERRY_EMISMATCH)
    ferry__outcome_verified(out, st->name, t->item->key, &t->err, t->report);
  if (t->repair) st->repair_failed++;
  if (!in_journal) ferry__report_item(st, t->item->key, status, &t->err, t->attempt, t->report);
  release(t);
}

FERRY_API void ferry_task_fail(ferry_task *task, const ferry_error *err) {
  if (!in_progress(task, "ferry_task_fail", 0)) return;
  ferry_stage *st = task->stage;
  st->insink--;
  if (err && err->code) {
    ferry_error_copy(&task->err, err);
    if (!task->err.message) ferry_error_set(&task->err, err->code, "%s", ferry_strerror(err->code));
  } else {
    ferry_error_set(&task->err, FERRY_EINTERNAL, "sink \"%s\" failed the item without an error",
                    st->sink_plugin->name);
  }
  handle_failure(task, 1);
}

/* ---- accessors ----------------------------------------------------------------------------------------- */

FERRY_API const ferry_item *ferry_task_item(const ferry_task *task) { return task ? task->item : NULL; }
FERRY_API ferry_instance *ferry_task_instance(const ferry_task *task) {
  return task ? task->stage->sink : NULL;
}
FERRY_API ferry_mode ferry_task_mode(const ferry_task *task) {
  return task ? task->stage->mode : FERRY_MODE_RUN;
}
FERRY_API unsigned ferry_task_attempt(const ferry_task *task) { return task ? task->attempt : 0; }
FERRY_API int ferry_task_repair(const ferry_task *task) {
  return task && task->stage->mode == FERRY_MODE_RUN && task->repair;
}
FERRY_API const char *ferry_task_step(const ferry_task *task) { return task ? task->step : NULL; }

FERRY_API json_t *ferry_task_state(ferry_task *task) {
  if (!task || task->phase == TASK_FREE) return NULL;
  if (!task->state || !json_is_object(task->state)) {
    json_decref(task->state);
    task->state = json_object();
  }
  return task->state;
}

FERRY_API char *ferry_task_lookup_id(ferry_task *task, const char *kind, const char *old_id) {
  if (!task || !kind || !old_id) return NULL;
  if (!task->stage->journal) return NULL;
  return ferry__outcomes_lookup_id(task->stage->run->out, kind, old_id);
}

FERRY_API json_t *ferry_task_report(ferry_task *task) {
  if (!task || task->phase == TASK_FREE) return NULL;
  if (!task->report) task->report = json_object();
  return task->report;
}

/* Worker mode: 1 the worker still holds the task's item, 0 it lost it (task->lost set), < 0 the journal
 * failed (recorded as the run's failure, moved into err). ask: ask the journal server in any case. */
static int still_held(ferry_task *task, int ask, ferry_error *err) {
  ferry_stage *st = task->stage;
  ferry_error he = FERRY_ERROR_INIT;
  int held = ferry__worker_holds(st, task->item->key, ask, &he);
  if (held < 0) {
    ferry__outcomes_fail(st->run->out, &he);
    if (err) ferry_error_move(err, &he);
    ferry_error_clear(&he);
    return held;
  }
  if (!held) task->lost = 1;
  return held;
}

FERRY_API int ferry_task_intent(ferry_task *task, const char *step, ferry_error *err) {
  if (!in_progress(task, "ferry_task_intent", 1))
    return ferry_error_set(err, FERRY_EINVAL, "ferry_task_intent: the task is not in progress");
  ferry_stage *st = task->stage;
  if (!step || !*step) {
    ferry_log_error(st->sink, "ferry_task_intent called without a step name (item \"%s\")", task->item->key);
    return ferry_error_set(err, FERRY_EINVAL, "ferry_task_intent: no step name given");
  }
  if (st->journal_write && task->lost)
    return ferry_error_set(err, FERRY_ECONFLICT, "worker %s lost its claim of item \"%s\": nothing is written",
                           ferry__worker_name(st->run), task->item->key);
  double asked = ferry__now();
  if (st->journal_write && task->claimed) { /* worker mode: only while the claim holds (its lease renewed) */
    int held = still_held(task, 0, err);
    if (held < 0) return held;
    if (!held)
      return ferry_error_set(err, FERRY_ECONFLICT,
                             "worker %s lost its claim of item \"%s\" (its lease expired and another worker "
                             "took it): intent \"%s\" not written", ferry__worker_name(st->run),
                             task->item->key, step);
  }
  if (st->journal_write) {
    int rc = ferry__outcomes_intent(st->run->out, st->name, task->item->key, step, ferry_task_state(task),
                                    task->attempt, err);
    if (rc < 0) return rc;
    double took = ferry__now() - asked;
    if (task->claimed && took > 0.5) {
      /* the intent took long (the journal server was slow or away, the connection made again): the lease
       * may have run out meanwhile and another worker taken the item. Asked again (and renewed) before the
       * sink acts on it, so that two workers never act on one item. */
      int held = still_held(task, 1, err);
      if (held < 0) return held;
      if (!held)
        return ferry_error_set(err, FERRY_ECONFLICT,
                               "worker %s lost its claim of item \"%s\" while its intent \"%s\" was written (%.1f s: "
                               "the journal server was slow or away): another worker took it, this one stops here",
                               ferry__worker_name(st->run), task->item->key, step, took);
    }
  }
  free(task->step);
  task->step = ferry_strdup(step);
  return 0;
}

FERRY_API int ferry_task_map_id(ferry_task *task, const char *kind, const char *old_id, const char *new_id,
                                ferry_error *err) {
  if (!in_progress(task, "ferry_task_map_id", 1))
    return ferry_error_set(err, FERRY_EINVAL, "ferry_task_map_id: the task is not in progress");
  if (!kind || !old_id || !new_id)
    return ferry_error_set(err, FERRY_EINVAL, "ferry_task_map_id: kind, old id and new id are required");
  ferry_stage *st = task->stage;
  if (!st->journal_write) return 0;
  if (task->lost)
    return ferry_error_set(err, FERRY_ECONFLICT, "worker %s lost its claim of item \"%s\": no id is mapped",
                           ferry__worker_name(st->run), task->item->key);
  return ferry__outcomes_map_id(st->run->out, st->name, task->item->key, kind, old_id, new_id, err);
}
