/* The report of a run: the items a stage reports that the journal does not hold (spooled while the run
 * goes), and at the end the result (the run's return code and message), the summary and the JSON report,
 * written piece by piece from the journal and the spools so that its size never sits in memory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "run/run.h"

/* ---- items the journal does not hold -------------------------------------------------------------------- */

void ferry__report_entry(ferry_stage *st, json_t *entry) {
  if (!st->source) { /* not prepared, or released: the run's report is written already */
    json_decref(entry);
    return;
  }
  ferry__redact_json(entry);
  st->nentries++;
  if (!st->spool && !st->items) {
    st->spool = tmpfile();
    if (!st->spool) {
      ferry_log_warn(NULL, "stage \"%s\": cannot create a temporary file for the report's items (%s): they are "
                     "kept in memory", st->name, strerror(errno));
      st->items = json_array();
    }
  }
  if (st->items) {
    json_array_append_new(st->items, entry);
    return;
  }
  if (json_dumpf(entry, st->spool, JSON_COMPACT | JSON_ENSURE_ASCII) < 0 || fputc('\n', st->spool) == EOF)
    ferry_log_warn(NULL, "stage \"%s\": cannot write a report item to the temporary file: %s", st->name,
                   strerror(errno));
  json_decref(entry);
}

static int foreach_entry(ferry_stage *st, int (*fn)(void *arg, const char *json, size_t len), void *arg) {
  if (st->items) {
    size_t i;
    json_t *v;
    json_array_foreach(st->items, i, v) {
      char *text = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII);
      int stop = fn(arg, text, strlen(text));
      free(text);
      if (stop) break;
    }
    return 0;
  }
  if (!st->spool) return 0;
  if (fflush(st->spool) != 0 || fseek(st->spool, 0, SEEK_SET) != 0) return -1;
  char *line = NULL;
  size_t cap = 0;
  ssize_t n;
  int rc = 0;
  while ((n = getline(&line, &cap, st->spool)) > 0) {
    if (line[n - 1] == '\n') line[--n] = '\0';
    if (n && fn(arg, line, (size_t)n)) break;
  }
  if (ferror(st->spool)) rc = -1;
  free(line);
  fseek(st->spool, 0, SEEK_END); /* later entries go at the end */
  return rc;
}

void ferry__report_item(ferry_stage *st, const char *key, const char *status, const ferry_error *e,
                        unsigned attempts, json_t *report) {
  json_t *o = json_object();
  json_object_set_new(o, "key", json_string(key));
  json_object_set_new(o, "status", json_string(status));
  if (e && e->code) {
    json_object_set_new(o, "code", json_string(ferry_err_name(e->code)));
    json_object_set_new(o, "error", json_string(e->message ? e->message : ferry_strerror(e->code)));
    if (e->detail) json_object_set_new(o, "detail", json_string(e->detail));
  }
  if (attempts) json_object_set_new(o, "attempts", json_integer(attempts));
  if (report && json_object_size(report)) json_object_set_new(o, "report", json_deep_copy(report));
  ferry__report_entry(st, o);
}

void ferry__report_spool_free(ferry_stage *st) {
  json_decref(st->items);
  st->items = NULL;
  if (st->spool) fclose(st->spool);
  st->spool = NULL;
}

/* ---- result, summary, report --------------------------------------------------------------------------- */

const char *ferry__mode_name(ferry_mode m) {
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

int ferry__report_result(const ferry__run *run, ferry_error *out) {
  int64_t failed = 0, blocked = 0, mismatched = 0, not_migrated = 0;
  ferry_stage *first_failed_stage = NULL, *first_item_stage = NULL;
  for (size_t i = 0; i < run->nstages; i++) {
    ferry_stage *st = run->stages[i];
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
  const ferry_error *journal_error = ferry__outcomes_error(run->out);
  if (journal_error) {
    ferry_error_copy(out, journal_error);
    ferry_error_prefix(out, "journal failure");
    out->code = FERRY_EIO;
    return out->code;
  }
  if (first_failed_stage) {
    ferry_error_set(out, FERRY_EIO, "stage \"%s\" failed: %s%s", first_failed_stage->name,
                    first_failed_stage->error.message, failed ? " (and items failed: see the report)" : "");
    return out->code;
  }
  if (run->interrupted)
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
  if (run->mode == FERRY_MODE_PLAN && blocked)
    return ferry_error_set(out, FERRY_EBLOCKED, "plan: %lld item(s) are blocked; see the report for why",
                           (long long)blocked);
  if (run->mode == FERRY_MODE_VERIFY && (mismatched || not_migrated))
    return ferry_error_set(out, FERRY_EMISMATCH, "verify: %lld item(s) differ and %lld are not migrated",
                           (long long)mismatched, (long long)not_migrated);
  return 0;
}

void ferry__report_summary(const ferry__run *run, double seconds, ferry_stage_summary *ssum,
                          ferry_run_summary *summary) {
  memset(summary, 0, sizeof *summary);
  for (size_t i = 0; i < run->nstages; i++) {
    ferry_stage *st = run->stages[i];
    ferry_stage_summary *s = &ssum[i];
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
    summary->done += s->done;
    summary->skipped += s->skipped + s->resumed;
    summary->failed += s->failed;
  }
  summary->nstages = run->nstages;
  summary->stages = ssum;
  summary->seconds = seconds;
}

/* The target calls of the stage's instances (source, sink, hooks), per service: [{"instance": "sink
 * joget", "role", "plugin", "service": "http" | "pg", histogram (ferry__latency_json)}], NULL when none
 * made any call. */
static json_t *stage_latency(const ferry_stage *st) {
  static const char *const service[2] = {"http", "pg"};
  json_t *a = NULL;
  size_t n = 2 + st->cfg->nhooks;
  for (size_t i = 0; i < n; i++) {
    const ferry_instance *ins = i == 0 ? st->source : i == 1 ? st->sink : st->hooks ? st->hooks[i - 2] : NULL;
    if (!ins) continue;
    const char *role = ins->role == FERRY_KIND_SOURCE ? "source" : ins->role == FERRY_KIND_SINK ? "sink" : "hook";
    for (int k = 0; k < 2; k++) {
      if (!ins->latency[k].count) continue;
      json_t *o = ferry__latency_json(&ins->latency[k]);
      char *name = ferry_asprintf("%s %s", role, ins->plugin->name);
      json_object_set_new(o, "instance", json_string(name));
      free(name);
      json_object_set_new(o, "role", json_string(role));
      json_object_set_new(o, "plugin", json_string(ins->plugin->name));
      json_object_set_new(o, "service", json_string(service[k]));
      if (!a) a = json_array();
      json_array_append_new(a, o);
    }
  }
  return a;
}

/* The report without its item lists (those are streamed by write_report): small whatever the item count.
 * Its "totals" are also the run's summary in the journal. */
json_t *ferry__report_build(const ferry__run *run, int rc, const ferry_error *res, double seconds) {
  json_t *r = json_object();
  json_object_set_new(r, "mode", json_string(ferry__mode_name(run->mode)));
  json_object_set_new(r, "status", json_integer(rc));
  json_object_set_new(r, "status_name", json_string(ferry_err_name(rc)));
  if (rc && res->message) json_object_set_new(r, "message", json_string(res->message));
  json_object_set_new(r, "interrupted", json_boolean(run->interrupted));
  json_object_set_new(r, "seconds", json_real(seconds));
  if (run->mode == FERRY_MODE_RUN) json_object_set_new(r, "repair", json_boolean(run->repair));
  if (run->worker_name) json_object_set_new(r, "worker", json_string(run->worker_name));
  if (run->run_id) json_object_set_new(r, "run", json_integer(run->run_id));
  json_t *tot = json_object();
  enum { NCOUNT = 14 };
  int64_t t[NCOUNT] = {0};
  static const char *const names[NCOUNT] = {"total",      "taken",        "done",         "skipped",
                                            "resumed",    "failed",       "retried",      "blocked",
                                            "mismatched", "not_migrated", "equal",        "not_selected",
                                            "repaired",   "repair_failed"};
  json_t *stages = json_array();
  for (size_t i = 0; i < run->nstages; i++) {
    ferry_stage *st = run->stages[i];
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
      if (st->t_start > 0 && run->t0 > 0)
        json_object_set_new(s, "started_s", json_real(st->t_start > run->t0 ? st->t_start - run->t0 : 0));
      json_object_set_new(s, "peak_outstanding", json_integer(st->max_outstanding));
      json_object_set_new(s, "peak_in_sink", json_integer(st->max_insink));
      json_t *series = ferry__series_json(&st->series);
      if (series) json_object_set_new(s, "series", series);
      json_t *lat = stage_latency(st);
      if (lat) json_object_set_new(s, "latency", lat);
    }
    json_array_append_new(stages, s);
  }
  for (int k = 2; k < NCOUNT; k++) json_object_set_new(tot, names[k], json_integer(t[k]));
  json_object_set_new(r, "totals", tot);
  json_object_set_new(r, "stages", stages);
  ferry__redact_json(r);
  return r;
}

json_t *ferry__report_journal_summary(json_t *report) {
  json_t *sum = json_deep_copy(json_object_get(report, "totals"));
  if (!sum) sum = json_object();
  const char *k;
  json_t *v;
  json_object_foreach(report, k, v) {
    if (strcmp(k, "totals") && strcmp(k, "run")) json_object_set_new(sum, k, json_deep_copy(v));
  }
  return sum;
}

/* ---- the report file: written incrementally ------------------------------------------------------------- */

typedef struct report_out {
  FILE *f;
  const ferry__run *run;
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
  if (o->run->repair) json_object_set_new(e, "repair", json_true());
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
int ferry__report_write(const ferry__run *run, json_t *report, const char *path, ferry_error *err) {
  char *tmp = ferry_asprintf("%s.tmp", path);
  int rc = 0;
  report_out o = {.f = fopen(tmp, "w"), .run = run};
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
  for (size_t i = 0; i < run->nstages; i++) {
    ferry_stage *st = run->stages[i];
    fputs(i ? ",\n    {\n" : "\n    {\n", o.f);
    out_members(&o, json_array_get(stages, i), NULL, "      ", 1);
    fputs("      \"items\": [", o.f);
    o.st = st;
    o.n = 0;
    if (st->selected) {
      if (st->journal_write && run->journal && run->run_id && !je.code) {
        ferry_jquery q = {.stage = st->name, .run = run->run_id, .ids = 1};
        if (ferry__journal_foreach_ex(run->journal, &q, out_row, &o, &je) < 0)
          ferry_log_error(NULL, "report %s: the items of stage \"%s\" could not be read from the journal: %s",
                          path, st->name, je.message);
      }
      if (foreach_entry(st, out_spooled, &o) < 0)
        ferry_log_error(NULL, "report %s: the items of stage \"%s\" could not be read back: %s", path,
                        st->name, strerror(errno));
    }
    fputs(o.n ? "\n      ]\n    }" : "]\n    }", o.f);
  }
  fputs(run->nstages ? "\n  ]\n}\n" : "]\n}\n", o.f);
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
