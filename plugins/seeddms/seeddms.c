/* seeddms plugin: SeedDMS documents with their files and workflow runs, from one SeedDMS installation to
 * another (docs/plugins/seeddms.md). The descriptor, the options, init and fini, opening the database and
 * telling the layouts apart (docs/seeddms-facts.md 2). */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <ferry/util.h>

#include "seeddms.h"

static const ferry_opt_choice layouts[] = {
    {"auto", SEEDDMS_LAYOUT_AUTO}, {"5.1", SEEDDMS_LAYOUT_51}, {"6.0", SEEDDMS_LAYOUT_60}, {NULL, 0}};

static const ferry_opt_choice defs_modes[] = {{"match", SEEDDMS_DEFS_MATCH}, {"create", SEEDDMS_DEFS_CREATE}, {NULL, 0}};

static const ferry_option seeddms_options[] = {
    {.key = "dsn", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_NONEMPTY | FERRY_OPT_SECRET,
     offsetof(seeddms_ctx, dsn),
     "the SeedDMS database: an SQLite file path or sqlite:// URL, or mariadb://user:pw@host/db (mysql://)"},
    {.key = "content_dir", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_NONEMPTY,
     offsetof(seeddms_ctx, content_dir), "SeedDMS's contentDir: the directory holding <offset_dir>/<docid>/..."},
    {.key = "offset_dir", FERRY_OPT_STRING, "\"1048576\"", FERRY_OPT_NONEMPTY, offsetof(seeddms_ctx, offset_dir),
     "SeedDMS's contentOffsetDir below content_dir"},
    {.key = "max_dir_id", FERRY_OPT_INT, "0", FERRY_OPT_RANGE, offsetof(seeddms_ctx, max_dir_id),
     "SeedDMS's maxDirID (0: one directory per document)", .min = 0, .max = INT32_MAX},
    {.key = "layout", FERRY_OPT_ENUM, "\"auto\"", 0, offsetof(seeddms_ctx, layout),
     "database layout: auto (from tblWorkflowLog's columns), 5.1 or 6.0", .choices = layouts},
    {.key = "definitions", FERRY_OPT_ENUM, "\"match\"", 0, offsetof(seeddms_ctx, definitions),
     "sink: users, groups, attribute definitions and workflows are matched by name (match), or the missing ones "
     "created (create)", .choices = defs_modes},
    FERRY_OPTIONS_END,
};

int seeddms_open(seeddms_ctx *c, ferry_error *err) {
  if (c->db) return 0;
  c->db = ferry_sql_open(c->ins, c->dsn, NULL, err);
  return c->db ? 0 : -1;
}

typedef struct detect {
  seeddms_ctx *c;
  ferry_done_fn cb;
  void *arg;
  int probe; /* 0: asked for 6.0's column, 1: for 5.1's */
} detect;

static void probe(detect *d);

static void detect_done(void *arg, int status, const ferry_sql_done *info, const ferry_error *err) {
  (void)info;
  detect *d = arg;
  ferry_error e = FERRY_ERROR_INIT;
  int found = 0;
  if (status == FERRY_ETRANSIENT || status == FERRY_EPERM || status == FERRY_ECONFIG) {
    ferry_error_set(&e, status, "seeddms: cannot read %s: %s", ferry_sql_endpoint(d->c->db), err->message);
  } else if (status && d->probe == 0) {
    d->probe = 1;
    probe(d);
    return;
  } else if (status) {
    ferry_error_set(&e, FERRY_EINVAL, "seeddms: %s is no SeedDMS 5.1 or 6.x database (tblWorkflowLog has neither "
                    "workflowdocumentcontent nor workflow): %s", ferry_sql_endpoint(d->c->db), err->message);
  } else {
    found = d->probe == 0 ? SEEDDMS_LAYOUT_60 : SEEDDMS_LAYOUT_51;
    if (d->c->layout != SEEDDMS_LAYOUT_AUTO && d->c->layout != found)
      ferry_error_set(&e, FERRY_ECONFIG, "seeddms: option \"layout\" says %s but %s has the %s layout",
                      d->c->layout == SEEDDMS_LAYOUT_51 ? "5.1" : "6.0", ferry_sql_endpoint(d->c->db),
                      found == SEEDDMS_LAYOUT_51 ? "5.1" : "6.0");
    else
      d->c->detected = found;
  }
  d->cb(d->arg, e.code, e.code ? &e : NULL);
  ferry_error_clear(&e);
  ferry_free(d);
}

/* The layout from the columns of tblWorkflowLog (docs/seeddms-facts.md 2): a statement that reads no row. */
static void probe(detect *d) {
  const char *sql = d->probe == 0 ? "SELECT workflowdocumentcontent FROM tblWorkflowLog WHERE 1 = 0"
                                  : "SELECT workflow FROM tblWorkflowLog WHERE 1 = 0";
  int rc = ferry_sql_query(d->c->db, NULL, sql, 0, NULL, NULL, detect_done, d);
  if (rc < 0) {
    ferry_error e = FERRY_ERROR_INIT;
    ferry_error_set(&e, rc, "seeddms: cannot query %s", ferry_sql_endpoint(d->c->db));
    d->cb(d->arg, rc, &e);
    ferry_error_clear(&e);
    ferry_free(d);
  }
}

void seeddms_detect(seeddms_ctx *c, ferry_done_fn cb, void *arg) {
  detect *d = calloc(1, sizeof *d);
  d->c = c;
  d->cb = cb;
  d->arg = arg;
  probe(d);
}

static int seeddms_init(ferry_instance *ins, ferry_error *err) {
  seeddms_ctx *c = ferry_instance_ctx(ins);
  c->ins = ins;
  return seeddms_open(c, err);
}

static void seeddms_fini(ferry_instance *ins) {
  seeddms_ctx *c = ferry_instance_ctx(ins);
  ferry_sql_close(c->db); /* cancels what is pending: its callbacks run now, before the state goes */
  c->db = NULL;
  seeddms_source_free(c);
  seeddms_sink_free(c);
}

FERRY_PLUGIN_DEFINE(seeddms, .name = "seeddms", .version = "0.1.0", .license = "Apache-2.0",
                    .description = "SeedDMS 5.1/6.x: folders, documents, versions with their files, workflow runs",
                    .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK, .options = seeddms_options,
                    .ctx_size = sizeof(seeddms_ctx), .init = seeddms_init, .fini = seeddms_fini,
                    .source = &seeddms_source_ops, .sink = &seeddms_sink_ops);
