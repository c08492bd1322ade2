/* Reading a journal through the public API (ferry/journal.h): a read-only handle over the internal journal
 * (journal.c), its rows turned into JSON objects and its id map into ferry_journal_id records. */
#include <stdlib.h>
#include <string.h>

#include "journal/journal.h"
#include "ferry/journal.h"

FERRY_API ferry_journal *ferry_journal_open_readonly(const char *path, ferry_error *err) {
  return ferry__journal_open(path, 1, err);
}

FERRY_API void ferry_journal_close(ferry_journal *j) { ferry__journal_close(j); }

FERRY_API int ferry_journal_schema_version(const ferry_journal *j) { return ferry__journal_version(j); }

FERRY_API json_t *ferry_journal_stages(ferry_journal *j, ferry_error *err) {
  if (!j) {
    ferry_error_set(err, FERRY_EINVAL, "ferry_journal_stages: no journal");
    return NULL;
  }
  char **names = ferry__journal_stages(j, err);
  if (!names) return NULL;
  json_t *out = json_array();
  for (size_t i = 0; names[i]; i++) {
    int64_t n[5];
    if (ferry__journal_counts(j, names[i], n, err) < 0) {
      json_decref(out);
      out = NULL;
      break;
    }
    json_array_append_new(out, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I}", "name", names[i], "total",
                                         (json_int_t)n[FERRY_J_NONE], "done", (json_int_t)n[FERRY_J_DONE],
                                         "skipped", (json_int_t)n[FERRY_J_SKIPPED], "failed",
                                         (json_int_t)n[FERRY_J_FAILED], "in_doubt",
                                         (json_int_t)n[FERRY_J_INTENT]));
  }
  ferry__strv_free(names);
  return out;
}

typedef struct items_ctx {
  ferry_journal_item_cb cb;
  void *arg;
  int ids;
} items_ctx;

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static int on_row(void *arg, const char *stage, const char *key, const ferry_jrow *row) {
  items_ctx *c = arg;
  json_t *e = json_object();
  json_object_set_new(e, "stage", json_string(stage));
  json_object_set_new(e, "key", json_string(key));
  json_object_set_new(e, "status", json_string(ferry__jstatus_name(row->status)));
  json_object_set_new(e, "step", str_or_null(row->step));
  json_object_set_new(e, "attempts", json_integer(row->attempts));
  const char *nl = row->error ? strchr(row->error, '\n') : NULL;
  json_object_set_new(e, "error", !row->error ? json_null()
                                  : nl        ? json_stringn(row->error, (size_t)(nl - row->error))
                                              : json_string(row->error));
  json_object_set_new(e, "detail", nl ? json_string(nl + 1) : json_null());
  json_object_set_new(e, "code", row->error ? json_string(ferry_err_name(row->error_code)) : json_null());
  json_object_set_new(e, "report", row->report ? json_incref(row->report) : json_null());
  json_object_set_new(e, "verify", row->verify ? json_incref(row->verify) : json_null());
  json_object_set_new(e, "run", row->run ? json_integer(row->run) : json_null());
  json_object_set_new(e, "created", json_integer(row->created));
  json_object_set_new(e, "updated", json_integer(row->updated));
  if (c->ids) json_object_set_new(e, "ids", row->ids ? json_incref(row->ids) : json_array());
  int stop = c->cb(c->arg, e);
  json_decref(e);
  return stop;
}

FERRY_API int ferry_journal_items(ferry_journal *j, const char *stage, const char *status, unsigned flags,
                                  ferry_journal_item_cb cb, void *arg, ferry_error *err) {
  if (!j || !cb) return ferry_error_set(err, FERRY_EINVAL, "ferry_journal_items: no journal or no callback");
  if (flags & ~FERRY_JOURNAL_IDS)
    return ferry_error_set(err, FERRY_EINVAL, "ferry_journal_items: unknown flags 0x%x",
                           flags & ~FERRY_JOURNAL_IDS);
  ferry_jstatus want = FERRY_J_NONE;
  if (status) {
    static const ferry_jstatus all[] = {FERRY_J_INTENT, FERRY_J_DONE, FERRY_J_SKIPPED, FERRY_J_FAILED};
    for (size_t i = 0; i < sizeof all / sizeof *all && !want; i++)
      if (!strcmp(status, ferry__jstatus_name(all[i]))) want = all[i];
    if (!want)
      return ferry_error_set(err, FERRY_EINVAL,
                             "ferry_journal_items: unknown status \"%s\" (intent, done, skipped or failed)",
                             status);
  }
  items_ctx c = {cb, arg, (flags & FERRY_JOURNAL_IDS) != 0};
  ferry_jquery q = {.stage = stage, .status = want, .ids = c.ids};
  return ferry__journal_foreach_ex(j, &q, on_row, &c, err);
}

typedef struct ids_ctx {
  ferry_journal_id_cb cb;
  void *arg;
} ids_ctx;

static int on_id(void *arg, const ferry_jid *id) {
  ids_ctx *c = arg;
  ferry_journal_id out = {id->kind, id->old_id, id->new_id, id->stage, id->key, id->created};
  return c->cb(c->arg, &out);
}

FERRY_API int ferry_journal_ids(ferry_journal *j, const char *stage, const char *key, const char *kind,
                                ferry_journal_id_cb cb, void *arg, ferry_error *err) {
  if (!j || !cb) return ferry_error_set(err, FERRY_EINVAL, "ferry_journal_ids: no journal or no callback");
  ids_ctx c = {cb, arg};
  return ferry__journal_foreach_id(j, stage, key, kind, on_id, &c, err);
}

FERRY_API json_t *ferry_journal_runs(ferry_journal *j, int limit, ferry_error *err) {
  if (!j) {
    ferry_error_set(err, FERRY_EINVAL, "ferry_journal_runs: no journal");
    return NULL;
  }
  return ferry__journal_runs(j, limit, err);
}

FERRY_API int ferry_journal_copy(const char *from, const char *to, unsigned flags, int64_t counts[3],
                                 ferry_error *err) {
  return ferry__journal_copy(from, to, (flags & FERRY_JOURNAL_COPY_REPLACE) != 0, counts, err);
}
