/* joget: running process instances of a Joget DX server, over its JSON API (docs/plugins/joget.md).
 *
 * Source: the running top-level instances of the source server with their record id, variables, open
 * activities (definition ids, states, assignees) and their sub-flow children folded in (source.c).
 * Sink: the per-instance protocol of design.md section 6 with the journal's exactly-once rule, plan and
 * verify (sink.c). The HTTP client layer is client.c.
 */
#include <stdlib.h>
#include <string.h>

#include "joget.h"

static const ferry_opt_choice start_modes[] = {
    {"master", JOGET_START_MASTER}, {"hash", JOGET_START_HASH}, {"users", JOGET_START_USERS}, {NULL, 0}};
static const ferry_opt_choice activities_modes[] = {{"converge", 0}, {"always", 1}, {NULL, 0}};
static const ferry_opt_choice joins_modes[] = {{"carry", 0}, {"report", 1}, {NULL, 0}};

#define SRC .roles = FERRY_KIND_SOURCE
#define SNK .roles = FERRY_KIND_SINK

static const ferry_option joget_options[] = {
    {.key = "url", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_NONEMPTY, offsetof(joget_ctx_t, url),
     "base URL of the Joget server including its context, e.g. http://joget:8080/jw"},
    {.key = "user", FERRY_OPT_STRING, "\"admin\"", FERRY_OPT_NONEMPTY, offsetof(joget_ctx_t, user),
     "administrator used for listing and monitoring calls (needs ROLE_ADMIN)"},
    {.key = "password", FERRY_OPT_STRING, NULL, FERRY_OPT_SECRET, offsetof(joget_ctx_t, password),
     "password of user (or give hash)"},
    {.key = "hash", FERRY_OPT_STRING, NULL, FERRY_OPT_SECRET, offsetof(joget_ctx_t, hash),
     "login hash of user instead of its password: upper-case MD5 of user::<dir_user.password>"},
    {.key = "referer", FERRY_OPT_STRING, NULL, 0, offsetof(joget_ctx_t, referer),
     "Referer header sent with every call (default: the url with a trailing '/'; its host must pass the "
     "server's API domain whitelist)"},
    {.key = "dsn", FERRY_OPT_STRING, NULL, FERRY_OPT_SECRET, offsetof(joget_ctx_t, dsn),
     "optional: this server's database, only read: a PostgreSQL conninfo/URL or a mysql:// / mariadb:// URL "
     "(MySQL/MariaDB in Joget's MySQL layout); source: sub-flows, open activities "
     "and assignees in one read-only snapshot per page; sink: hashes from dir_user (start_as hash), plan "
     "checks (users, published apps, activity ids) and reconcile"},
    {.key = "apps", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(joget_ctx_t, apps),
     "source: only instances of these app ids (default: all)", SRC},
    {.key = "processes", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(joget_ctx_t, processes),
     "source: only instances of these processes: process id (leave_request) or full id (app#ver#proc)", SRC},
    {.key = "page_size", FERRY_OPT_INT, "200", FERRY_OPT_RANGE, offsetof(joget_ctx_t, page_size),
     "source: rows per page of console/monitor/running/list", SRC, .min = 1, .max = 10000},
    {.key = "fetch_concurrency", FERRY_OPT_INT, "0", FERRY_OPT_RANGE, offsetof(joget_ctx_t, fetch_concurrency),
     "source: instances whose details are read at once (0 = what the stage asks for)", SRC, .min = 0,
     .max = INT64_MAX},
    {.key = "start_as", FERRY_OPT_ENUM, "\"master\"", 0, offsetof(joget_ctx_t, start_mode),
     "sink: how process/start authenticates as the original requester: master (master login + loginAs), "
     "hash (login hash computed from the target's dir_user through dsn), users (credentials in users)", SNK,
     .choices = start_modes},
    {.key = "master_user", FERRY_OPT_STRING, NULL, 0, offsetof(joget_ctx_t, master_user),
     "sink, start_as master: the server's masterLoginUsername", SNK},
    {.key = "master_password", FERRY_OPT_STRING, NULL, FERRY_OPT_SECRET, offsetof(joget_ctx_t, master_password),
     "sink, start_as master: the server's masterLoginPassword", SNK},
    {.key = "master_hash", FERRY_OPT_STRING, NULL, FERRY_OPT_SECRET, offsetof(joget_ctx_t, master_hash),
     "sink, start_as master: master hash instead of master_password (upper MD5 of master::md5(password))", SNK},
    {.key = "users", FERRY_OPT_JSON, NULL, 0, offsetof(joget_ctx_t, users),
     "sink, start_as users: {\"username\": \"password\" | {\"password\"|\"hash\": value | {\"env\": NAME}}}", SNK},
    {.key = "version", FERRY_OPT_STRING, "\"same\"", 0, offsetof(joget_ctx_t, version),
     "sink: target package version of every process: same (as on the source), latest (the target's latest, "
     "resolved with workflow/process/list), or a number", SNK},
    {.key = "version_map", FERRY_OPT_JSON, NULL, 0, offsetof(joget_ctx_t, version_map),
     "sink: per app or app version: {\"app#<source version>\" | \"app\": \"<target version>\" | \"latest\" | "
     "\"same\"}; wins over version", SNK},
    {.key = "activities", FERRY_OPT_ENUM, "\"converge\"", 0, offsetof(joget_ctx_t, mode_always),
     "sink: converge (start only the activities the new instance is missing; abortCurrent on the first call "
     "when it holds others) or always (every open activity of the source with activity/start, abortCurrent "
     "on the first call, as the documented procedure)", SNK, .choices = activities_modes},
    {.key = "activity_ids_sql", FERRY_OPT_STRING,
     "\"" JOGET_ACTIVITY_IDS_SQL_PG "\"",
     0, offsetof(joget_ctx_t, activity_ids_sql),
     "sink, plan: SQL on dsn giving the activity ids of definition $1 (app#ver#proc); the default reads the "
     "emulator's emu_process_graph; a real server keeps them in its XPDL (see docs/plugins/joget.md)", SNK},
    {.key = "and_joins", FERRY_OPT_ENUM, "\"carry\"", 0, offsetof(joget_ctx_t, joins_report),
     "sink: carry (re-create each arrival at a partly joined AND-join: the arrived branch's activity is "
     "started and completed on the target as its performer, so that the join counts the same arrivals) or "
     "report (do not; name the loss per instance); the source needs dsn to read the arrivals", SNK,
     .choices = joins_modes},
    {.key = "join_branches_sql", FERRY_OPT_STRING,
     "\"" JOGET_JOIN_BRANCHES_SQL_PG "\"",
     0, offsetof(joget_ctx_t, join_branches_sql),
     "sink, reports: SQL on dsn giving (join activity id, number of incoming branches) of every AND-join of "
     "definition $1, for \"k of n arrivals\"; the default reads the emulator's emu_process_graph (a real server "
     "keeps the graph in its XPDL); empty = not read", SNK},
    {.key = "record_check", FERRY_OPT_BOOL, "true", 0, offsetof(joget_ctx_t, record_check),
     "sink: refuse to start an instance whose form record the source holds (dsn) but the target does not "
     "(its row failed or was not copied): blocked, nothing written", SNK},
    {.key = "timeout_ms", FERRY_OPT_INT, "120000", FERRY_OPT_RANGE, offsetof(joget_ctx_t, timeout_ms),
     "per request; must exceed the server's longest processing time (a start that the server runs after "
     "ferry gave up would not be seen by reconcile)", .min = 100, .max = INT64_MAX},
    {.key = "insecure", FERRY_OPT_BOOL, "false", 0, offsetof(joget_ctx_t, insecure),
     "turn TLS certificate verification off"},
    {.key = "clock_skew_ms", FERRY_OPT_INT, "300000", 0, offsetof(joget_ctx_t, clock_skew_ms),
     "sink, reconcile: an instance counts as created after the intent if created at most this much before "
     "it (clocks of ferry and the server differ)", SNK},
    {.key = "check", FERRY_OPT_BOOL, "true", 0, offsetof(joget_ctx_t, check),
     "sink: after each instance, read it back and compare open activities, assignees and variables", SNK},
    FERRY_OPTIONS_END};

#undef SRC
#undef SNK

static const char *user_secret(joget_ctx_t *c, const char *user, json_t *v, const char **kind,
                               ferry_error *err) {
  *kind = "password";
  if (json_is_string(v)) return json_string_value(v);
  if (json_is_object(v)) {
    json_t *x = json_object_get(v, "password");
    if (!x) {
      x = json_object_get(v, "hash");
      *kind = "hash";
    }
    if (json_is_string(x)) return json_string_value(x);
    if (json_is_object(x) && json_is_string(json_object_get(x, "env"))) {
      const char *name = json_string_value(json_object_get(x, "env"));
      const char *val = getenv(name);
      if (!val) {
        ferry_error_set(err, FERRY_ECONFIG, "joget: users.%s: environment variable %s is not set", user,
                        name);
        return NULL;
      }
      return val;
    }
  }
  ferry_error_set(
      err, FERRY_ECONFIG,
      "joget: users.%s: expected a password string or {\"password\"|\"hash\": string | {\"env\": NAME}}",
      user);
  return NULL;
}

static int joget_init(ferry_instance *ins, ferry_error *err) {
  joget_ctx_t *c = ferry_instance_ctx(ins);
  c->ins = ins;
  if (!c->url || strncmp(c->url, "http", 4) || !strstr(c->url, "://"))
    return ferry_error_set(err, FERRY_ECONFIG,
                           "joget: option \"url\" must be an http(s) URL such as "
                           "http://joget:8080/jw (is \"%s\")",
                           c->url ? c->url : "");
  size_t n = strlen(c->url);
  while (n > 0 && c->url[n - 1] == '/') n--;
  c->base = strndup(c->url, n);
  if (!c->base) abort();
  if (strlen(c->base) >= 9 && !strcmp(c->base + strlen(c->base) - 9, "/web/json"))
    return ferry_error_set(err, FERRY_ECONFIG,
                           "joget: option \"url\" is the server's context (http://host:port/jw), "
                           "without /web/json (is \"%s\")",
                           c->url);
  c->host_label = ferry_strdup(c->base);
  c->referer_hdr = ferry_asprintf("Referer: %s", c->referer && *c->referer ? c->referer : c->base);
  if (!c->referer || !*c->referer) {
    free(c->referer_hdr);
    c->referer_hdr = ferry_asprintf("Referer: %s/", c->base);
  }
  if (strpbrk(c->referer_hdr, "\r\n"))
    return ferry_error_set(err, FERRY_ECONFIG, "joget: option \"referer\" must not contain line breaks");
  if ((!c->password || !*c->password) && (!c->hash || !*c->hash))
    return ferry_error_set(err, FERRY_ECONFIG,
                           "joget: give \"password\" (or \"hash\") of the administrator \"%s\" for %s",
                           c->user, c->base);
  if (strcmp(c->version, "same") && strcmp(c->version, "latest") &&
      (!*c->version || strspn(c->version, "0123456789") != strlen(c->version)))
    return ferry_error_set(err, FERRY_ECONFIG,
                           "joget: option \"version\" must be same, latest or a number (is \"%s\")",
                           c->version);
  if (c->version_map && !json_is_object(c->version_map))
    return ferry_error_set(err, FERRY_ECONFIG, "joget: option \"version_map\" must be an object");
  if (c->version_map) {
    const char *k;
    json_t *v;
    json_object_foreach(c->version_map, k, v) {
      const char *s = json_string_value(v);
      if (!s || (strcmp(s, "same") && strcmp(s, "latest") && (!*s || strspn(s, "0123456789") != strlen(s))))
        return ferry_error_set(err, FERRY_ECONFIG,
                               "joget: version_map.\"%s\": must be a version number, latest or same", k);
    }
  }
  int sink = ferry_instance_role(ins) == FERRY_KIND_SINK;
  if (sink) {
    if (c->start_mode == JOGET_START_MASTER &&
        (!c->master_user || !*c->master_user ||
         ((!c->master_password || !*c->master_password) && (!c->master_hash || !*c->master_hash))))
      return ferry_error_set(
          err, FERRY_ECONFIG,
          "joget: start_as master needs master_user and master_password (or master_hash): the "
          "server's masterLoginUsername / masterLoginPassword settings");
    if (c->start_mode == JOGET_START_HASH && (!c->dsn || !*c->dsn))
      return ferry_error_set(err, FERRY_ECONFIG,
                             "joget: start_as hash needs dsn (the target database, to read dir_user)");
    if (c->start_mode == JOGET_START_USERS && !json_is_object(c->users))
      return ferry_error_set(err, FERRY_ECONFIG,
                             "joget: start_as users needs users: {\"username\": \"password\", ...}");
  }
  c->user_pw = json_object();
  if (c->users) {
    if (!json_is_object(c->users))
      return ferry_error_set(err, FERRY_ECONFIG, "joget: option \"users\" must be an object");
    const char *k;
    json_t *v;
    json_object_foreach(c->users, k, v) {
      const char *kind;
      const char *s = user_secret(c, k, v, &kind, err);
      if (!s) return err->code;
      ferry_secret(ins, s);
      json_object_set_new(c->user_pw, k, json_pack("{ss}", kind, s));
    }
  }
  /* reads (GET) are retried by the service; state-changing calls never are (each goes out once, on a fresh
     connection, and a lost answer is FERRY_EINDOUBT: the sink's reconcile decides) */
  ferry_http_opts o = {.struct_size = sizeof o,
                       .timeout_ms = (long)c->timeout_ms,
                       .insecure = c->insecure,
                       .retries = JOGET_GET_RETRIES,
                       .retry_base_ms = 100,
                       .retry_cap_ms = 5000};
  c->http = ferry_http_new(ins, &o, err);
  if (!c->http) return err->code ? err->code : FERRY_EINTERNAL;
  c->acts_sql = c->activity_ids_sql;
  c->joins_sql = c->join_branches_sql;
  if (c->dsn && *c->dsn) {
    ferry_sql_opts so = {.struct_size = sizeof so};
    c->db = ferry_sql_open(ins, c->dsn, &so, err);
    if (!c->db) {
      if (!err->code) ferry_error_set(err, FERRY_ECONFIG, "joget: option \"dsn\" cannot be read");
      ferry_error_prefix(err, "joget: option \"dsn\"");
      return err->code;
    }
    ferry_sql_engine eng = ferry_sql_engine_of(c->db);
    if (eng != FERRY_SQL_POSTGRESQL && eng != FERRY_SQL_MYSQL)
      return ferry_error_set(err, FERRY_ECONFIG,
                             "joget: option \"dsn\" (%s): Joget's database is PostgreSQL or MySQL/MariaDB; give a "
                             "PostgreSQL conninfo/URL or a mysql:// / mariadb:// URL",
                             ferry_sql_endpoint(c->db));
    c->mysql = eng == FERRY_SQL_MYSQL;
    /* the defaults read the emulator's process graph with PostgreSQL's JSON functions: on MySQL/MariaDB the
       same with JSON_TABLE (MySQL 8.0.4+, MariaDB 10.6+) */
    if (c->mysql && c->acts_sql && !strcmp(c->acts_sql, JOGET_ACTIVITY_IDS_SQL_PG))
      c->acts_sql = JOGET_ACTIVITY_IDS_SQL_MY;
    if (c->mysql && c->joins_sql && !strcmp(c->joins_sql, JOGET_JOIN_BRANCHES_SQL_PG))
      c->joins_sql = JOGET_JOIN_BRANCHES_SQL_MY;
  }
  return 0;
}

static void joget_fini(ferry_instance *ins) {
  joget_ctx_t *c = ferry_instance_ctx(ins);
  /* free the services first: their callbacks (ECANCELED) still see the source/sink state */
  joget_source_stop(c);
  ferry_http *h = c->http;
  ferry_sql *db = c->db;
  c->http = NULL;
  c->db = NULL;
  ferry_http_free(h);
  ferry_sql_close(db);
  joget_source_fini(c);
  joget_sink_fini(c);
  json_decref(c->user_pw);
  free(c->base);
  free(c->host_label);
  free(c->referer_hdr);
}

FERRY_PLUGIN_DEFINE(joget, .name = "joget", .version = "1.0.0", .license = "Apache-2.0",
                    .description =
                        "running Joget process instances over the JSON API: inventory (source) and "
                        "re-creation with the journal's exactly-once rule (sink)",
                    .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK, .options = joget_options,
                    .ctx_size = sizeof(joget_ctx_t), .init = joget_init, .fini = joget_fini,
                    .source = &joget_source_ops, .sink = &joget_sink_ops);
