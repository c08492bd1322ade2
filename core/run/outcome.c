/* Outcomes: the one place a run writes to the journal.
 *
 * The outcome of an item (done, skipped, failed, in doubt after a failed sync) and the verify marks go into
 * an open transaction, the group, committed every FERRY_GROUP_MAX outcomes, every FERRY_GROUP_MS (this
 * writer's timer), and whenever a stage ends (ferry__outcomes_commit): one fsync for a thousand items
 * instead of one each. Intents and id mappings are committed at once, because the sink does its side effect
 * right after them. Reads (the resume lookup of each item, mapped ids) go through here too, so that a
 * journal failure is seen in one place.
 *
 * A journal failure is a state, not an event sent to the stages: the first one is kept (and logged), every
 * later write is skipped, and each stage reads the state in its pump (ferry__outcomes_error) and stops
 * taking items. The run then ends with the journal's error.
 */
#include <stdlib.h>
#include <string.h>

#include "run/run.h"

struct ferry__outcomes {
  ferry_journal *journal; /* borrowed; NULL: no journal in this run */
  int writable;           /* the run writes it (a run, or a verify's marks) */
  int group_open;
  size_t group_n; /* outcomes in the open group */
  uv_timer_t timer;
  int timer_init;
  void (*closed)(void *arg);
  void *closed_arg;
  ferry_error error; /* the first journal failure */
  json_t *empty;     /* the state of items without one */
};

static void on_timer(uv_timer_t *h) { ferry__outcomes_commit(h->data); }

ferry__outcomes *ferry__outcomes_new(uv_loop_t *loop, ferry_journal *journal, int writable) {
  ferry__outcomes *o = ferry__xcalloc(1, sizeof *o);
  o->journal = journal;
  o->writable = journal && writable;
  o->empty = json_object();
  if (o->writable) {
    uv_timer_init(loop, &o->timer);
    o->timer.data = o;
    o->timer_init = 1;
    uv_timer_start(&o->timer, on_timer, FERRY_GROUP_MS, FERRY_GROUP_MS);
    uv_unref((uv_handle_t *)&o->timer);
  }
  return o;
}

static void free_now(ferry__outcomes *o) {
  void (*closed)(void *) = o->closed;
  void *arg = o->closed_arg;
  ferry_error_clear(&o->error);
  json_decref(o->empty);
  free(o);
  if (closed) closed(arg);
}

static void on_timer_closed(uv_handle_t *h) { free_now(h->data); }

void ferry__outcomes_close(ferry__outcomes *o, void (*closed)(void *arg), void *arg) {
  if (!o) {
    if (closed) closed(arg);
    return;
  }
  ferry__outcomes_commit(o);
  o->closed = closed;
  o->closed_arg = arg;
  if (o->timer_init)
    uv_close((uv_handle_t *)&o->timer, on_timer_closed);
  else
    free_now(o);
}

int ferry__outcomes_ok(const ferry__outcomes *o) { return o && o->journal && !o->error.code; }

const ferry_error *ferry__outcomes_error(const ferry__outcomes *o) {
  return o && o->error.code ? &o->error : NULL;
}

void ferry__outcomes_fail(ferry__outcomes *o, const ferry_error *e) {
  if (o->error.code) return;
  ferry_error_copy(&o->error, e);
  if (!o->error.code) ferry_error_set(&o->error, FERRY_EIO, "journal failure");
  ferry_log_error(NULL, "journal failure, stopping the run (items in flight finish, nothing else starts): %s",
                  o->error.message ? o->error.message : "");
}

/* ---- reads --------------------------------------------------------------------------------------------- */

int ferry__outcomes_get(ferry__outcomes *o, const char *stage, const char *key, ferry_jrow *row) {
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry__journal_get(o->journal, stage, key, row, &e) < 0) {
    ferry_error_prefix(&e, "journal lookup of item \"%s\" in stage \"%s\"", key, stage);
    ferry__outcomes_fail(o, &e);
    ferry_error_clear(&e);
    return -1;
  }
  return 0;
}

int ferry__outcomes_peek(ferry__outcomes *o, const char *stage, const char *key, ferry_jrow *row) {
  ferry_error e = FERRY_ERROR_INIT;
  int rc = ferry__journal_get(o->journal, stage, key, row, &e);
  ferry_error_clear(&e);
  return rc < 0 ? -1 : 0;
}

char *ferry__outcomes_lookup_id(ferry__outcomes *o, const char *kind, const char *old_id) {
  if (!o->journal) return NULL;
  ferry_error e = FERRY_ERROR_INIT;
  char *id = ferry__journal_lookup_id(o->journal, kind, old_id, &e);
  ferry_error_clear(&e);
  return id;
}

/* ---- writes committed at once --------------------------------------------------------------------------- */

static int failed_earlier(const ferry__outcomes *o, ferry_error *err) {
  return ferry_error_set(err, FERRY_EIO, "the journal failed earlier: %s",
                         o->error.message ? o->error.message : "no journal");
}

int ferry__outcomes_intent(ferry__outcomes *o, const char *stage, const char *key, const char *step,
                           json_t *state, unsigned attempts, ferry_error *err) {
  if (!ferry__outcomes_ok(o)) return failed_earlier(o, err);
  ferry_error je = FERRY_ERROR_INIT;
  int rc = ferry__journal_intent(o->journal, stage, key, step, state, attempts, &je);
  if (rc < 0) {
    ferry_error_prefix(&je, "journal intent \"%s\" of item \"%s\" in stage \"%s\"", step, key, stage);
    ferry__outcomes_fail(o, &je);
    if (err) ferry_error_move(err, &je);
    ferry_error_clear(&je);
  }
  return rc;
}

int ferry__outcomes_map_id(ferry__outcomes *o, const char *stage, const char *key, const char *kind,
                           const char *old_id, const char *new_id, ferry_error *err) {
  if (!ferry__outcomes_ok(o)) return failed_earlier(o, err);
  ferry_error je = FERRY_ERROR_INIT;
  int rc = ferry__journal_map_id(o->journal, stage, key, kind, old_id, new_id, &je);
  if (rc < 0) {
    ferry__outcomes_fail(o, &je);
    if (err) ferry_error_move(err, &je);
    ferry_error_clear(&je);
  }
  return rc;
}

/* ---- grouped writes ------------------------------------------------------------------------------------- */

/* Opens the group unless it is; 0 when nothing may be written (no journal, a failure). */
static int group(ferry__outcomes *o) {
  if (!ferry__outcomes_ok(o) || !o->writable) return 0;
  if (o->group_open) return 1;
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry__journal_group_begin(o->journal, &e) < 0)
    ferry__outcomes_fail(o, &e);
  else
    o->group_open = 1;
  ferry_error_clear(&e);
  return o->group_open;
}

/* After a grouped write: its failure recorded, or counted (the group committed when full). 1 = written. */
static int written(ferry__outcomes *o, int rc, ferry_error *je) {
  if (rc < 0) {
    ferry__outcomes_fail(o, je);
    ferry_error_clear(je);
    return 0;
  }
  ferry_error_clear(je);
  if (++o->group_n >= FERRY_GROUP_MAX) ferry__outcomes_commit(o);
  return 1;
}

void ferry__outcomes_commit(ferry__outcomes *o) {
  if (!o->group_open) return;
  o->group_open = 0;
  o->group_n = 0;
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry__journal_group_commit(o->journal, &e) < 0) ferry__outcomes_fail(o, &e);
  ferry_error_clear(&e);
}

int ferry__outcome_done(ferry__outcomes *o, const char *stage, const char *key, json_t *state, json_t *report,
                        unsigned attempts, int skipped) {
  if (!group(o)) return 0;
  ferry_error je = FERRY_ERROR_INIT;
  ferry_joutcome oc = {.status = skipped ? FERRY_J_SKIPPED : FERRY_J_DONE,
                       .state = state ? state : o->empty,
                       .report = report,
                       .attempts = attempts};
  return written(o, ferry__journal_outcome(o->journal, stage, key, &oc, &je), &je);
}

int ferry__outcome_failed(ferry__outcomes *o, const char *stage, const char *key, json_t *state,
                          json_t *report, const ferry_error *cause, unsigned attempts, int repair) {
  if (!group(o)) return 0;
  ferry_error je = FERRY_ERROR_INIT;
  /* a failed repair leaves the item done (its target object exists) with its verify mark */
  ferry_joutcome oc = {.status = FERRY_J_FAILED,
                       .state = state ? state : o->empty,
                       .report = report,
                       .cause = cause,
                       .attempts = attempts,
                       .repair = repair};
  return written(o, ferry__journal_outcome(o->journal, stage, key, &oc, &je), &je);
}

int ferry__outcome_doubt(ferry__outcomes *o, const char *stage, const char *key, const ferry_error *cause,
                         json_t *report) {
  if (!group(o)) return 0;
  ferry_error je = FERRY_ERROR_INIT;
  int recorded = 0;
  int ok = written(o, ferry__journal_doubt(o->journal, stage, key, cause, report, &recorded, &je), &je);
  return ok && recorded;
}

/* Verify marks: a mismatch marks the item (its message and the report's "differences"), an item found equal
 * loses the mark an earlier verify left. */
int ferry__outcome_verified(ferry__outcomes *o, const char *stage, const char *key, const ferry_error *mismatch,
                            json_t *report) {
  if (!group(o)) return 0;
  ferry_error je = FERRY_ERROR_INIT;
  int rc;
  if (mismatch) {
    json_t *d = report ? json_object_get(report, "differences") : NULL;
    rc = ferry__journal_verify_mark(o->journal, stage, key, mismatch->message, json_is_array(d) ? d : NULL, NULL,
                                    &je);
  } else {
    rc = ferry__journal_verify_clear(o->journal, stage, key, NULL, &je);
  }
  return written(o, rc, &je);
}
