/* sql: tables of MySQL/MariaDB (and PostgreSQL) databases through the SDK's SQL service (ferry/sql.h).
 *
 * Source (source.c): selects tables by name, LIKE pattern, Joget app (app_form) or the user directory
 * (dir_*), reads them in one consistent read-only snapshot (MySQL: START TRANSACTION WITH CONSISTENT
 * SNAPSHOT, READ ONLY) in keyset batches by primary key, as record items of the same shape as the pgsql
 * source's (COPY text payload), so that either sink takes them.
 * Sink (sink.c, sink_write.c): creates or checks each target table before its first row (create / add /
 * refuse columns, incompatible types refused), then writes each batch in one transaction with a conflict
 * policy, on MySQL/MariaDB or PostgreSQL, mapping types across engines. Every option: docs/plugins/sql.md.
 */
#include <stdlib.h>
#include <string.h>

#include "sql.h"

static const ferry_opt_choice conflicts[] = {
    {"skip", SQLP_SKIP}, {"overwrite", SQLP_OVERWRITE}, {"fail", SQLP_FAIL}, {NULL, 0}};
static const ferry_opt_choice missings[] = {{"add", SQLP_MISSING_ADD}, {"refuse", SQLP_MISSING_REFUSE}, {NULL, 0}};
static const ferry_opt_choice creates[] = {
    {"auto", SQLP_CREATE_AUTO}, {"joget", SQLP_CREATE_JOGET}, {"refuse", SQLP_CREATE_REFUSE}, {NULL, 0}};
static const ferry_opt_choice zeros[] = {{"error", SQLP_ZERO_ERROR}, {"null", SQLP_ZERO_NULL}, {NULL, 0}};

#define SRC .roles = FERRY_KIND_SOURCE
#define SNK .roles = FERRY_KIND_SINK

static const ferry_option sqlp_options[] = {
    {.key = "dsn", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_SECRET | FERRY_OPT_NONEMPTY,
     offsetof(sqlp_ctx, dsn),
     "URL of the database: mysql://user:pw@host:port/db (also mariadb://), postgresql://... or a libpq "
     "conninfo (source: read only; sink: the target)"},
    {.key = "tables", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(sqlp_ctx, tables),
     "source: tables to copy, by exact name (each must exist)", SRC},
    {.key = "patterns", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(sqlp_ctx, patterns),
     "source: SQL LIKE patterns of table names to copy (e.g. \"app_fd_%\"); each must match a table", SRC},
    {.key = "exclude", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(sqlp_ctx, exclude),
     "source: SQL LIKE patterns of table names to leave out of the selection", SRC},
    {.key = "app", FERRY_OPT_STRING, NULL, FERRY_OPT_NONEMPTY, offsetof(sqlp_ctx, app),
     "source: Joget app id: copy the form tables of its forms (app_form: app_fd_<tableName or formId>)", SRC},
    {.key = "app_version", FERRY_OPT_STRING, "\"all\"", 0, offsetof(sqlp_ctx, app_version),
     "source: with app: \"all\" versions, \"latest\", \"published\", or a version number", SRC},
    {.key = "users", FERRY_OPT_BOOL, "false", 0, offsetof(sqlp_ctx, users),
     "source: copy the Joget user directory (every dir_* table that exists)", SRC},
    {.key = "batch_rows", FERRY_OPT_INT, "10000", FERRY_OPT_RANGE, offsetof(sqlp_ctx, batch_rows),
     "source: most rows in one item (batch)", SRC, .min = 1, .max = 1000000},
    {.key = "batch_bytes", FERRY_OPT_INT, "4194304", FERRY_OPT_RANGE, offsetof(sqlp_ctx, batch_bytes),
     "source: a batch also ends at the row that brings its COPY text to this many bytes", SRC, .min = 1024,
     .max = INT64_MAX},
    {.key = "on_conflict", FERRY_OPT_ENUM, "\"skip\"", 0, offsetof(sqlp_ctx, on_conflict),
     "sink: a row whose key exists on the target with other values: skip it, overwrite it, or fail the "
     "batch naming the keys (identical rows are never conflicts)", SNK, .choices = conflicts},
    {.key = "missing_columns", FERRY_OPT_ENUM, "\"add\"", 0, offsetof(sqlp_ctx, missing_columns),
     "sink: a source column the target table lacks: add it, or refuse the table", SNK, .choices = missings},
    {.key = "create_tables", FERRY_OPT_ENUM, "\"auto\"", 0, offsetof(sqlp_ctx, create_tables),
     "sink: a missing target table: auto creates it with the source's column types mapped to the target "
     "engine, joget with Joget's form-table layout, refuse refuses it", SNK, .choices = creates},
    {.key = "zero_dates", FERRY_OPT_ENUM, "\"error\"", 0, offsetof(sqlp_ctx, zero_dates),
     "sink: a MySQL zero date (0000-00-00) bound for an engine without one: error names table, key and "
     "column and writes nothing of the batch; null writes NULL", SNK, .choices = zeros},
    {.key = "table_map", FERRY_OPT_JSON, NULL, 0, offsetof(sqlp_ctx, table_map),
     "sink: {\"<source table>\": \"<target table>\"}; unmapped tables keep their name", SNK},
    {.key = "column_map", FERRY_OPT_JSON, NULL, 0, offsetof(sqlp_ctx, column_map),
     "sink: {\"<source table>\" or \"*\": {\"<source column>\": \"<target column>\" or null}}: rename a column "
     "or leave it out (null); other columns keep their names", SNK},
    {.key = "max_keys_reported", FERRY_OPT_INT, "20", FERRY_OPT_RANGE, offsetof(sqlp_ctx, max_keys_reported),
     "sink: how many conflicting keys (on_conflict fail) an error names", SNK, .min = 1, .max = INT64_MAX},
    FERRY_OPTIONS_END};

#undef SRC
#undef SNK

/* What the options table cannot say: what a source selects, the version given with app, the map's shape.
 * The dsn's syntax is checked by ferry_sql_open when the role starts. */
static int sqlp_init(ferry_instance *ins, ferry_error *err) {
  sqlp_ctx *c = ferry_instance_ctx(ins);
  c->ins = ins;
  uint32_t role = ferry_instance_role(ins);
  if (role == FERRY_KIND_SOURCE) {
    if (!c->tables && !c->patterns && !c->app && !c->users)
      return ferry_error_set(err, FERRY_ECONFIG,
                             "sql source: nothing selected: give \"tables\", \"patterns\", \"app\" or "
                             "\"users\": true");
    const char *v = c->app_version;
    if (strcmp(v, "all") && strcmp(v, "latest") && strcmp(v, "published")) {
      char *end = NULL;
      long long n = strtoll(v, &end, 10);
      if (!*v || *end || n < 0)
        return ferry_error_set(err, FERRY_ECONFIG,
                               "sql: option \"app_version\" must be \"all\", \"latest\", \"published\" or a "
                               "version number (is \"%s\")", v);
    }
  }
  if (role == FERRY_KIND_SINK && c->column_map) {
    if (!json_is_object(c->column_map))
      return ferry_error_set(err, FERRY_ECONFIG, "sql: option \"column_map\" must be an object");
    const char *tk;
    json_t *tv;
    json_object_foreach(c->column_map, tk, tv) {
      if (!json_is_object(tv))
        return ferry_error_set(err, FERRY_ECONFIG,
                               "sql: option \"column_map\": the value for table \"%s\" must be an object", tk);
      const char *ck;
      json_t *cv;
      json_object_foreach(tv, ck, cv) {
        if (!json_is_null(cv) && (!json_is_string(cv) || !*json_string_value(cv)))
          return ferry_error_set(err, FERRY_ECONFIG,
                                 "sql: option \"column_map\": \"%s\".\"%s\" must be a column name or null", tk, ck);
      }
    }
  }
  if (role == FERRY_KIND_SINK && c->table_map) {
    if (!json_is_object(c->table_map))
      return ferry_error_set(err, FERRY_ECONFIG, "sql: option \"table_map\" must be an object");
    const char *k;
    json_t *v;
    json_object_foreach(c->table_map, k, v) {
      if (!json_is_string(v) || !*json_string_value(v))
        return ferry_error_set(err, FERRY_ECONFIG,
                               "sql: option \"table_map\": the value for \"%s\" must be a table name", k);
    }
  }
  return 0;
}

static void sqlp_fini(ferry_instance *ins) {
  sqlp_ctx *c = ferry_instance_ctx(ins);
  sqlp_source_free(c);
  sqlp_sink_free(c);
}

FERRY_PLUGIN_DEFINE(sql, .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK, .name = "sql",
                    .version = FERRY_VERSION_STRING,
                    .description = "MySQL/MariaDB (and PostgreSQL) tables through the SQL service: read in one "
                                   "snapshot, written with a conflict policy, types mapped across engines",
                    .license = "Apache-2.0", .options = sqlp_options, .ctx_size = sizeof(sqlp_ctx),
                    .init = sqlp_init, .fini = sqlp_fini, .source = &sqlp_source_ops, .sink = &sqlp_sink_ops);
