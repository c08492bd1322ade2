/* pgsql: PostgreSQL tables as record items (source) and into PostgreSQL tables (sink).
 *
 * Source (source.c): selects tables by name, LIKE pattern, Joget app (app_form) or the user directory
 * (dir_*), reads them in one read-only REPEATABLE READ snapshot (shared by several connections through
 * pg_export_snapshot), in foreign-key order, in batches of COPY text, as the stage asks for them.
 * Sink (sink.c): creates or checks each target table before its first row, then writes each batch in one
 * transaction (COPY into a staging table, INSERT ... ON CONFLICT per the conflict policy), and can plan and
 * verify without writing. The item contract and every option: docs/plugins/pgsql.md.
 */
#include <stdlib.h>
#include <string.h>

#include "pgsql.h"

static const ferry_opt_choice counts[] = {
    {"estimate", PGSQL_COUNT_ESTIMATE}, {"exact", PGSQL_COUNT_EXACT}, {"none", PGSQL_COUNT_NONE}, {NULL, 0}};
static const ferry_opt_choice conflicts[] = {
    {"skip", POLICY_SKIP}, {"overwrite", POLICY_OVERWRITE}, {"fail", POLICY_FAIL}, {NULL, 0}};
static const ferry_opt_choice missings[] = {
    {"add", PGSQL_MISSING_ADD}, {"refuse", PGSQL_MISSING_REFUSE}, {NULL, 0}};
static const ferry_opt_choice creates[] = {
    {"auto", PGSQL_CREATE_AUTO}, {"joget", PGSQL_CREATE_JOGET}, {"refuse", PGSQL_CREATE_REFUSE}, {NULL, 0}};

#define SRC .roles = FERRY_KIND_SOURCE
#define SNK .roles = FERRY_KIND_SINK

static const ferry_option pgsql_options[] = {
    {.key = "dsn", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_SECRET | FERRY_OPT_NONEMPTY,
     offsetof(pgsql_ctx, dsn), "libpq connection string or URI of the database (source: read only; sink: the target)"},
    {.key = "schema", FERRY_OPT_STRING, "\"public\"", FERRY_OPT_NONEMPTY, offsetof(pgsql_ctx, schema),
     "schema of the tables (source: where tables are selected; sink: where they are written)"},
    {.key = "timezone", FERRY_OPT_STRING, "\"UTC\"", FERRY_OPT_NONEMPTY, offsetof(pgsql_ctx, timezone),
     "session time zone for reading and writing (timestamp <-> timestamptz conversions use it)"},
    {.key = "tables", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(pgsql_ctx, tables),
     "source: tables to copy, by exact name (each must exist)", SRC},
    {.key = "patterns", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(pgsql_ctx, patterns),
     "source: SQL LIKE patterns of table names to copy (e.g. \"app_fd_%\"); each must match a table", SRC},
    {.key = "exclude", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(pgsql_ctx, exclude),
     "source: SQL LIKE patterns of table names to leave out of the selection", SRC},
    {.key = "app", FERRY_OPT_STRING, NULL, FERRY_OPT_NONEMPTY, offsetof(pgsql_ctx, app),
     "source: Joget app id: copy the form tables of its forms (app_form: app_fd_<tablename or form id>)", SRC},
    {.key = "app_version", FERRY_OPT_STRING, "\"all\"", 0, offsetof(pgsql_ctx, app_version),
     "source: with app: \"all\" versions, \"latest\", \"published\", or a version number", SRC},
    {.key = "users", FERRY_OPT_BOOL, "false", 0, offsetof(pgsql_ctx, users),
     "source: copy the Joget user directory (every dir_* table that exists)", SRC},
    {.key = "batch_rows", FERRY_OPT_INT, "10000", FERRY_OPT_RANGE, offsetof(pgsql_ctx, batch_rows),
     "source: most rows in one item (batch)", SRC, .min = 1, .max = INT64_MAX},
    {.key = "batch_bytes", FERRY_OPT_INT, "4194304", FERRY_OPT_RANGE, offsetof(pgsql_ctx, batch_bytes),
     "source: a batch ends at the row that brings it to this many bytes of COPY text", SRC, .min = 1024,
     .max = INT64_MAX},
    {.key = "connections", FERRY_OPT_INT, "0", FERRY_OPT_RANGE, offsetof(pgsql_ctx, connections),
     "source: connections reading tables in parallel (0 = the stage's concurrency)", SRC, .min = 0, .max = 1000},
    {.key = "defer_constraints", FERRY_OPT_BOOL, "false", 0, offsetof(pgsql_ctx, defer_constraints),
     "source: copy tables that form a foreign-key cycle too, with the sink's foreign-key triggers off for "
     "them (needs a superuser on the target); false = such tables are refused and reported", SRC},
    {.key = "count", FERRY_OPT_ENUM, "\"estimate\"", 0, offsetof(pgsql_ctx, count),
     "source: how the total for the progress display is found: estimate (statistics; count(*) for tables "
     "never analysed), exact (count(*)), none", SRC, .choices = counts},
    {.key = "on_conflict", FERRY_OPT_ENUM, "\"skip\"", 0, offsetof(pgsql_ctx, on_conflict),
     "sink: a row whose key exists on the target with other values: skip it, overwrite it, or fail the "
     "batch naming the keys (identical rows are never conflicts)", SNK, .choices = conflicts,
     .deprecated_key = "conflict"},
    {.key = "missing_columns", FERRY_OPT_ENUM, "\"add\"", 0, offsetof(pgsql_ctx, missing_columns),
     "sink: a source column the target table lacks: add it, or refuse the table", SNK, .choices = missings},
    {.key = "create_tables", FERRY_OPT_ENUM, "\"auto\"", 0, offsetof(pgsql_ctx, create_tables),
     "sink: a missing target table: auto creates it with the source's column types (Joget's layout when the "
     "item has no types), joget always with Joget's layout, refuse refuses it", SNK, .choices = creates},
    {.key = "table_map", FERRY_OPT_JSON, NULL, 0, offsetof(pgsql_ctx, table_map),
     "sink: {\"<source table>\": \"<target table>\"}; unmapped tables keep their name", SNK},
    {.key = "column_map", FERRY_OPT_JSON, NULL, 0, offsetof(pgsql_ctx, column_map),
     "sink: {\"<source table>\" or \"*\": {\"<source column>\": \"<target column>\" or null to leave it "
     "out}}; unmapped columns keep their name", SNK},
    {.key = "max_keys_reported", FERRY_OPT_INT, "20", FERRY_OPT_RANGE, offsetof(pgsql_ctx, max_keys_reported),
     "sink: how many conflicting (fail) or differing (verify) keys an error names", SNK, .min = 1,
     .max = INT64_MAX},
    FERRY_OPTIONS_END};

#undef SRC
#undef SNK

/* What the options table cannot say: the dsn's syntax, what a source selects, the version given with app,
 * the shape of the maps. */
static int pgsql_init(ferry_instance *ins, ferry_error *err) {
  pgsql_ctx *c = ferry_instance_ctx(ins);
  c->ins = ins;
  char *perr = NULL;
  PQconninfoOption *o = PQconninfoParse(c->dsn, &perr);
  if (!o) {
    if (perr) PQfreemem(perr); /* its text may quote a piece of the password: not shown */
    return ferry_error_set(err, FERRY_ECONFIG,
                           "pgsql: option \"dsn\" is not a valid libpq connection string or URI (expected "
                           "e.g. \"host=db port=5432 dbname=jwdb user=joget\" or "
                           "\"postgresql://joget@db/jwdb\")");
  }
  PQconninfoFree(o);
  uint32_t role = ferry_instance_role(ins);
  if (role == FERRY_KIND_SOURCE) {
    if (!c->tables && !c->patterns && !c->app && !c->users)
      return ferry_error_set(err, FERRY_ECONFIG,
                             "pgsql source: nothing selected: give \"tables\", \"patterns\", \"app\" or "
                             "\"users\": true");
    const char *v = c->app_version;
    if (strcmp(v, "all") && strcmp(v, "latest") && strcmp(v, "published")) {
      char *end = NULL;
      long long n = strtoll(v, &end, 10);
      if (!*v || *end || n < 0)
        return ferry_error_set(err, FERRY_ECONFIG,
                               "pgsql: option \"app_version\" must be \"all\", \"latest\", \"published\" or "
                               "a version number (is \"%s\")", v);
    }
  } else if (role == FERRY_KIND_SINK) {
    if (c->table_map) {
      if (!json_is_object(c->table_map))
        return ferry_error_set(err, FERRY_ECONFIG, "pgsql: option \"table_map\" must be an object");
      const char *k;
      json_t *v;
      json_object_foreach(c->table_map, k, v) {
        if (!json_is_string(v) || !*json_string_value(v))
          return ferry_error_set(err, FERRY_ECONFIG,
                                 "pgsql: option \"table_map\": the value for \"%s\" must be a table name", k);
      }
    }
    if (c->column_map) {
      if (!json_is_object(c->column_map))
        return ferry_error_set(err, FERRY_ECONFIG, "pgsql: option \"column_map\" must be an object");
      const char *k, *k2;
      json_t *v, *v2;
      json_object_foreach(c->column_map, k, v) {
        if (!json_is_object(v))
          return ferry_error_set(err, FERRY_ECONFIG,
                                 "pgsql: option \"column_map\": the value for \"%s\" must be an object of "
                                 "source column -> target column", k);
        json_object_foreach(v, k2, v2) {
          if (!json_is_null(v2) && (!json_is_string(v2) || !*json_string_value(v2)))
            return ferry_error_set(err, FERRY_ECONFIG,
                                   "pgsql: option \"column_map\": \"%s\".\"%s\" must be a column name or null",
                                   k, k2);
        }
      }
    }
  }
  return 0;
}

static void pgsql_fini(ferry_instance *ins) {
  pgsql_ctx *c = ferry_instance_ctx(ins);
  pgsql_source_free(c);
  pgsql_sink_free(c);
}

FERRY_PLUGIN_DEFINE(pgsql, .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK, .name = "pgsql",
                    .version = FERRY_VERSION_STRING,
                    .description = "PostgreSQL tables: read in one snapshot in foreign-key order, written with "
                                   "a conflict policy",
                    .license = "Apache-2.0", .options = pgsql_options, .ctx_size = sizeof(pgsql_ctx),
                    .init = pgsql_init, .fini = pgsql_fini, .source = &pgsql_source_ops,
                    .sink = &pgsql_sink_ops);
