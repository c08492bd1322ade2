/* seeddms sink: a document item's rows in the 5.1 layout (docs/seeddms-facts.md 5 and 11). Items always carry
 * runs in the 6.0 shape (a 5.1 source rebuilds them, source_runs.c); a 5.1 target keeps a run row only while
 * the run is active, without an id, its parent named by workflow, and links each log row to (document,
 * version, workflow). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/util.h>

#include "seeddms.h"

static const char *wf_name(json_t *run) {
  const char *n = json_string_value(json_object_get(json_object_get(run, "workflow"), "n"));
  return n ? n : "?";
}

static void loss(json_t *losses, const char *kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void loss(json_t *losses, const char *kind, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = ferry_vasprintf(fmt, ap);
  va_end(ap);
  json_array_append_new(losses, json_pack("{s:s, s:s}", "kind", kind, "what", s));
  ferry_free(s);
}

static int by_id(const void *a, const void *b) {
  const char *x = seeddms_str(*(json_t *const *)a, "id"), *y = seeddms_str(*(json_t *const *)b, "id");
  long long p = x ? strtoll(x, NULL, 10) : 0, q = y ? strtoll(y, NULL, 10) : 0;
  return p < q ? -1 : p > q;
}

json_t *seeddms_tables_to_51(json_t *tables, int from_51, json_t *losses, ferry_error *err) {
  json_t *out = json_copy(tables); /* shallow: the arrays replaced below are new */
  json_t *runs = json_object_get(tables, "tblWorkflowDocumentContent");
  json_t *byid = json_object();
  size_t i;
  json_t *r;
  json_array_foreach(runs, i, r) if (seeddms_str(r, "id")) json_object_set(byid, seeddms_str(r, "id"), r);

  /* versions: no revisiondate on 5.1 */
  json_t *versions = json_array();
  json_array_foreach(json_object_get(tables, "tblDocumentContent"), i, r) {
    json_t *v = json_copy(r);
    const char *rd = seeddms_str(v, "revisiondate");
    if (rd)
      loss(losses, "revisiondate", "version %s: its revision date %s (5.1 has no column for it)",
           seeddms_str(v, "version") ? seeddms_str(v, "version") : "?", rd);
    json_object_del(v, "revisiondate");
    json_array_append_new(versions, v);
  }
  json_object_set_new(out, "tblDocumentContent", versions);

  /* runs: only the active ones */
  json_t *rows = json_array(), *seen = json_object(), *logged = json_object();
  json_array_foreach(json_object_get(tables, "tblWorkflowLog"), i, r) {
    const char *run = seeddms_str(r, "workflowdocumentcontent");
    if (run) json_object_set_new(logged, run, json_true());
  }
  json_array_foreach(runs, i, r) {
    const char *ver = seeddms_str(r, "version") ? seeddms_str(r, "version") : "?";
    char *key = ferry_asprintf("%s\x1f%s", ver, wf_name(r));
    json_t *n = json_object_get(seen, key);
    json_int_t times = n ? json_integer_value(n) + 1 : 1;
    json_object_set_new(seen, key, json_integer(times));
    ferry_free(key);
    if (times == 2 && !from_51)
      loss(losses, "runs_51",
           "version %s ran workflow \"%s\" more than once: 5.1 links the log by document, version and workflow, so "
           "SeedDMS counts the earlier runs' entries as the later one's (who already acted)", ver, wf_name(r));
    json_t *state = json_object_get(r, "state");
    if (!state || json_is_null(state)) {
      if (!json_object_get(logged, seeddms_str(r, "id") ? seeddms_str(r, "id") : ""))
        loss(losses, "run", "version %s: a finished run of workflow \"%s\" with no log entry (5.1 keeps no row for "
             "a finished run, only its log)", ver, wf_name(r));
      continue;
    }
    json_t *parent = seeddms_str(r, "parent") ? json_object_get(byid, seeddms_str(r, "parent")) : NULL;
    json_t *pw = parent ? json_incref(json_object_get(parent, "workflow")) : json_string("0");
    json_array_append_new(rows, json_pack("{s:o, s:O?, s:O?, s:O?, s:O, s:O?}", "parentworkflow", pw, "workflow",
                                          json_object_get(r, "workflow"), "document", json_object_get(r, "document"),
                                          "version", json_object_get(r, "version"), "state", state, "date",
                                          json_object_get(r, "date")));
  }
  json_object_set_new(out, "tblWorkflowDocumentContent", rows);

  /* log rows: the run's triple, in source id order */
  size_t n = json_array_size(json_object_get(tables, "tblWorkflowLog"));
  json_t **log = calloc(n ? n : 1, sizeof *log);
  json_array_foreach(json_object_get(tables, "tblWorkflowLog"), i, r) log[i] = r;
  qsort(log, n, sizeof *log, by_id);
  json_t *lrows = json_array();
  for (i = 0; i < n; i++) {
    const char *rid = seeddms_str(log[i], "workflowdocumentcontent");
    json_t *run = rid ? json_object_get(byid, rid) : NULL;
    if (!run) {
      ferry_error_set(err, FERRY_EINVAL, "tblWorkflowLog row %s refers to run %s, which the item does not hold",
                      seeddms_str(log[i], "id") ? seeddms_str(log[i], "id") : "?", rid ? rid : "NULL");
      json_decref(lrows);
      lrows = NULL;
      break;
    }
    json_array_append_new(lrows, json_pack("{s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?, s:O?}", "id",
                                           json_object_get(log[i], "id"), "document", json_object_get(run, "document"),
                                           "version", json_object_get(run, "version"), "workflow",
                                           json_object_get(run, "workflow"), "userid", json_object_get(log[i], "userid"),
                                           "transition", json_object_get(log[i], "transition"), "date",
                                           json_object_get(log[i], "date"), "comment",
                                           json_object_get(log[i], "comment")));
  }
  ferry_free(log);
  json_decref(byid);
  json_decref(seen);
  json_decref(logged);
  if (!lrows) {
    json_decref(out);
    return NULL;
  }
  json_object_set_new(out, "tblWorkflowLog", lrows);
  return out;
}
