/* preserve-records: a hook that keeps the target's form rows of an instance's record exactly as they were
 * before the instance was started there.
 *
 * Starting a process on the target runs its start path for real: tool activities ("set status to
 * submitted", "create the audit row") see and change the form rows that the forms stage has just copied.
 * Attached to the joget sink's points:
 *   before_start  snapshots, for the record id of the item, the row whose key column equals it in every
 *                 configured table (or null when there is none) into the hook state, which the journal keeps
 *                 with the task's state (so the snapshot survives a crash between the two points);
 *   after_start   puts every row back as it was, in one SQL statement (atomic): changed columns are updated
 *                 back, a row the start path created is deleted, a row it deleted is inserted again; and
 *                 reports what the tools had changed in the task report ("tools_changed") and the log.
 *
 * Idempotent: a snapshot already in the hook state is kept (a second before_start after a crash must not
 * snapshot rows the first start already changed), and a restore that finds the rows as in the snapshot writes
 * nothing. The record id comes from the fired data's "record_id", else from the item's body "record_id", so
 * the hook works with items of any kind.
 *
 * Values are kept as PostgreSQL text (col::text, restored with CAST(text AS <column type>)), so every type
 * round-trips exactly (numeric beyond double precision, timestamps, bytea); the connection fixes DateStyle,
 * IntervalStyle, TimeZone and bytea_output so that text stays readable in a later session.
 *
 * The plugin's files: see preserve_records.h.
 */
#include "preserve_records.h"

/* ---- memory ------------------------------------------------------------------------------------------ */
void *preserve_xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) abort();
  return q;
}

char *preserve_xstrdup(const char *s) {
  char *d = strdup(s ? s : "");
  if (!d) abort();
  return d;
}

/* ---- context ------------------------------------------------------------------------------------------- */
static const ferry_option pr_options[] = {
    {.key = "dsn", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_SECRET | FERRY_OPT_NONEMPTY,
     offsetof(pr_ctx, dsn),
     "libpq conninfo (keywords or URI) of the TARGET Joget database, whose rows are snapshot and restored"},
    {.key = "tables", FERRY_OPT_STRING_LIST, NULL, FERRY_OPT_NONEMPTY, offsetof(pr_ctx, tables),
     "tables to preserve, by name (\"app_fd_leave\"); combined with \"apps\""},
    {.key = "apps", FERRY_OPT_STRING_LIST, NULL, FERRY_OPT_NONEMPTY, offsetof(pr_ctx, apps),
     "all form tables of these apps (app_fd_<tableName> of every form in the target's app_form); when "
     "neither this nor \"tables\" is set: the form tables of the instance item's own app",
     .deprecated_key = "app"},
    {.key = "key_column", FERRY_OPT_STRING, "\"id\"", FERRY_OPT_NONEMPTY, offsetof(pr_ctx, key_column),
     "column holding the record id in every preserved table (unique)"},
    {.key = "schema", FERRY_OPT_STRING, "\"\"", 0, offsetof(pr_ctx, schema),
     "schema of the tables (default: the connection's current schema)"},
    FERRY_OPTIONS_END};

static const char *const pr_points[] = {"before_start", "after_start", NULL};

/* Session settings that make the text form of values stable across sessions (the snapshot may be restored
 * by another run, on another connection). */
#define PR_SESSION_OPTIONS                                                                                \
  "-c DateStyle=ISO,YMD -c IntervalStyle=postgres -c TimeZone=UTC -c extra_float_digits=3 "            \
  "-c bytea_output=hex"

static void add_conn_value(ferry_buf *sb, const char *kw, const char *val) {
  ferry_buf_addf(sb, "%s%s='", sb->len ? " " : "", kw);
  for (const char *p = val; *p; p++) {
    if (*p == '\'' || *p == '\\') ferry_buf_addn(sb, "\\", 1);
    ferry_buf_addn(sb, p, 1);
  }
  ferry_buf_add(sb, "'");
}

/* The user's conninfo (keywords or URI) as keywords, with the session settings added to "options". */
static char *build_conninfo(const char *dsn, ferry_error *err) {
  char *perr = NULL;
  PQconninfoOption *opts = PQconninfoParse(dsn, &perr);
  if (!opts) {
    /* libpq's message may quote part of the string; do not repeat it (it could hold the password) */
    PQfreemem(perr);
    ferry_error_set(err, FERRY_ECONFIG, "preserve-records: option \"dsn\" is not a valid libpq conninfo "
                    "(keyword=value pairs or a postgresql:// URI)");
    return NULL;
  }
  ferry_buf sb = {0};
  int had_options = 0;
  for (PQconninfoOption *o = opts; o->keyword; o++) {
    if (!o->val) continue;
    if (!strcmp(o->keyword, "options")) {
      char *v = ferry_asprintf("%s %s", o->val, PR_SESSION_OPTIONS);
      add_conn_value(&sb, "options", v);
      free(v);
      had_options = 1;
    } else {
      add_conn_value(&sb, o->keyword, o->val);
    }
  }
  if (!had_options) add_conn_value(&sb, "options", PR_SESSION_OPTIONS);
  PQconninfoFree(opts);
  return ferry_buf_steal(&sb);
}

static int pr_init(ferry_instance *ins, ferry_error *err) {
  pr_ctx *c = ferry_instance_ctx(ins);
  c->ins = ins;
  char *ci = build_conninfo(c->dsn, err);
  if (!ci) return err->code;
  c->pg = ferry_pg_new(ins, ci, err);
  free(ci);
  if (!c->pg) {
    ferry_error_prefix(err, "preserve-records: option \"dsn\"");
    return err->code ? err->code : FERRY_ECONFIG;
  }
  return 0;
}

void preserve_free_list(char **l) {
  for (size_t i = 0; l && l[i]; i++) free(l[i]);
  free(l);
}

static void pr_fini(ferry_instance *ins) {
  pr_ctx *c = ferry_instance_ctx(ins);
  ferry_pg_free(c->pg);
  c->pg = NULL;
  for (size_t i = 0; i < c->ncache; i++) {
    free(c->cache[i].app);
    preserve_free_list(c->cache[i].tables);
  }
  free(c->cache);
  c->cache = NULL;
  c->ncache = 0;
}

/* ---- one firing ---------------------------------------------------------------------------------------- */
static const ferry_hook_ops pr_hook = {
    .struct_size = sizeof(ferry_hook_ops),
    .points = pr_points,
    .fire = preserve_pr_fire,
};

FERRY_PLUGIN_DEFINE(preserve_records, .kinds = FERRY_KIND_HOOK, .name = "preserve-records",
                    .version = FERRY_VERSION_STRING,
                    .description = "snapshot a record's target rows before an instance starts, restore them "
                                   "after",
                    .license = "Apache-2.0", .options = pr_options, .ctx_size = sizeof(pr_ctx),
                    .init = pr_init, .fini = pr_fini, .hook = &pr_hook);
