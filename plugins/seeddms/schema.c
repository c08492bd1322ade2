/* seeddms plugin: which columns of the carried tables refer to what (docs/seeddms-facts.md 3), the content
 * paths (facts 4), and a helper that collects a query's rows. */
#include <stdlib.h>
#include <string.h>
#include <ferry/util.h>

#include "seeddms.h"

/* Write order: folders, documents, versions, attributes, status, runs (parents first, by id), log, ACLs
 * (facts 3.9). A folder item carries tblFolders, tblFolderAttributes and its tblACLs; a document item the
 * rest. */
const seeddms_table seeddms_tables[] = {
    {"tblFolders", "id", "folder",
     {{"parent", SD_FOLDER, NULL}, {"owner", SD_USER, NULL}, {"folderList", SD_FLIST, NULL}}},
    {"tblFolderAttributes", "id", NULL, {{"folder", SD_VAR, "folder"}, {"attrdef", SD_ATTRDEF, NULL}}},
    {"tblDocuments", "id", "doc",
     {{"owner", SD_USER, NULL}, {"folder", SD_FOLDER, NULL}, {"folderList", SD_FLIST, NULL},
      {"locked", SD_USER, NULL}}},
    {"tblDocumentAttributes", "id", NULL, {{"document", SD_VAR, "doc"}, {"attrdef", SD_ATTRDEF, NULL}}},
    {"tblDocumentContent", "id", "content",
     {{"document", SD_VAR, "doc"}, {"createdBy", SD_USER, NULL}, {"dir", SD_DOCDIR, NULL}}},
    {"tblDocumentContentAttributes", "id", NULL, {{"content", SD_VAR, "content"}, {"attrdef", SD_ATTRDEF, NULL}}},
    {"tblDocumentStatus", "statusID", "status", {{"documentID", SD_VAR, "doc"}}},
    {"tblDocumentStatusLog", "statusLogID", NULL, {{"statusID", SD_VAR, "status"}, {"userID", SD_USER, NULL}}},
    {"tblWorkflowDocumentContent", "id", "run",
     {{"parent", SD_VAR, "run"}, {"workflow", SD_WORKFLOW, NULL}, {"document", SD_VAR, "doc"},
      {"state", SD_STATE, NULL}}},
    {"tblWorkflowLog", "id", "log",
     {{"workflowdocumentcontent", SD_VAR, "run"}, {"userid", SD_USER, NULL}, {"transition", SD_TRANSITION, NULL}}},
    {"tblACLs", "id", NULL, {{"target", SD_ACLTARGET, NULL}, {"userID", SD_USER, NULL}, {"groupID", SD_GROUP, NULL}}},
    {NULL, NULL, NULL, {{NULL, SD_PLAIN, NULL}}},
};

/* What differs on a 5.1 target (facts 5, 11): a run row has no id of its own (nothing refers to it), names its
 * parent by workflow, and exists only while the run is active; a log row names (document, version, workflow).
 * The item's 6.0-shaped rows are turned into these by seeddms_tables_to_51() (sink_51.c). */
static const seeddms_table tables_51[] = {
    {"tblWorkflowDocumentContent", NULL, NULL,
     {{"parentworkflow", SD_WORKFLOW, NULL}, {"workflow", SD_WORKFLOW, NULL}, {"document", SD_VAR, "doc"},
      {"state", SD_STATE, NULL}}},
    {"tblWorkflowLog", "id", "log",
     {{"document", SD_VAR, "doc"}, {"workflow", SD_WORKFLOW, NULL}, {"userid", SD_USER, NULL},
      {"transition", SD_TRANSITION, NULL}}},
    {NULL, NULL, NULL, {{NULL, SD_PLAIN, NULL}}},
};

const seeddms_table *seeddms_table_in(int layout, const char *name) {
  for (const seeddms_table *t = layout == SEEDDMS_LAYOUT_51 ? tables_51 : seeddms_tables; t->name; t++)
    if (!strcmp(t->name, name)) return t;
  return layout == SEEDDMS_LAYOUT_51 ? seeddms_table_in(SEEDDMS_LAYOUT_60, name) : NULL;
}

const seeddms_table *seeddms_table_get(const char *name) { return seeddms_table_in(SEEDDMS_LAYOUT_60, name); }

char *seeddms_doc_dir(int64_t doc, int64_t max_dir_id) {
  if (max_dir_id > 0) return ferry_asprintf("%lld/%lld/", (long long)((doc - 1) / max_dir_id + 1), (long long)doc);
  return ferry_asprintf("%lld/", (long long)doc);
}

char *seeddms_version_path(const seeddms_ctx *c, int64_t doc, const char *version, const char *file_type) {
  char *dir = seeddms_doc_dir(doc, c->max_dir_id);
  char *p = ferry_asprintf("%s/%s/%s%s%s", c->content_dir, c->offset_dir, dir, version, file_type ? file_type : "");
  ferry_free(dir);
  return p;
}

const char *seeddms_str(json_t *row, const char *col) { return json_string_value(json_object_get(row, col)); }

typedef struct collect {
  json_t *rows;
  seeddms_rows_fn cb;
  void *arg;
} collect;

static int collect_rows(void *arg, const ferry_sql_batch *b) {
  collect *k = arg;
  for (size_t r = 0; r < b->nrows; r++) {
    json_t *o = json_object();
    for (size_t i = 0; i < b->ncols; i++) {
      const ferry_sql_value *v = FERRY_SQL_CELL(b, r, i);
      json_object_set_new(o, b->cols[i].name, v->data ? json_stringn(v->data, v->len) : json_null());
    }
    json_array_append_new(k->rows, o);
  }
  return 0;
}

static void collect_done(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  collect *k = arg;
  k->cb(k->arg, status ? NULL : k->rows, status ? err : NULL);
  json_decref(k->rows);
  ferry_free(k);
}

int seeddms_collect(ferry_sql *db, ferry_sql_txn *txn, const char *sql, size_t nparams,
                    const ferry_sql_value *params, seeddms_rows_fn cb, void *arg) {
  collect *k = calloc(1, sizeof *k);
  k->rows = json_array();
  k->cb = cb;
  k->arg = arg;
  int rc = ferry_sql_query(db, txn, sql, nparams, params, collect_rows, collect_done, k);
  if (rc < 0) {
    json_decref(k->rows);
    ferry_free(k);
  }
  return rc;
}

/* The definitions matched by name, id -> name: the same queries on the source and the target. */
const char *const seeddms_name_sql[SD_NMAPS] = {
    "SELECT id, login AS name FROM tblUsers",
    "SELECT id, name FROM tblGroups",
    "SELECT id, name FROM tblAttributeDefinitions",
    "SELECT id, name FROM tblWorkflowStates",
    "SELECT id, name FROM tblWorkflows",
    "SELECT t.id AS id, w.name AS w, s.name AS s, a.name AS a, n.name AS n FROM tblWorkflowTransitions t "
    "JOIN tblWorkflows w ON w.id = t.workflow JOIN tblWorkflowStates s ON s.id = t.state "
    "JOIN tblWorkflowActions a ON a.id = t.action JOIN tblWorkflowStates n ON n.id = t.nextstate",
};

int seeddms_ref_map(seeddms_ref ref) {
  switch (ref) {
  case SD_USER: return M_USER;
  case SD_GROUP: return M_GROUP;
  case SD_ATTRDEF: return M_ATTRDEF;
  case SD_STATE: return M_STATE;
  case SD_WORKFLOW: return M_WORKFLOW;
  case SD_TRANSITION: return M_TRANSITION;
  default: return -1;
  }
}

char *seeddms_row_name(int map, json_t *row) {
  if (map == M_TRANSITION)
    return ferry_asprintf("%s\x1f%s\x1f%s\x1f%s", seeddms_str(row, "w"), seeddms_str(row, "s"), seeddms_str(row, "a"),
                          seeddms_str(row, "n"));
  const char *n = seeddms_str(row, "name");
  return n ? ferry_strdup(n) : NULL;
}
