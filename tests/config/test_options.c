/* Plugin option tables: defaults and types written into a context, refusals with their messages, string
 * lists, secrets from the environment, from files and embedded in strings, and `plugins --describe`. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ftest.h"
#include "load/load.h"

typedef struct ctx {
  char *host;
  int64_t port;
  double ratio;
  int verbose;
  char **tags;
  json_t *extra;
  char *password;
  char *dsn;
  char **hosts;
  char *path;
  int64_t zero;
} ctx;

static const ferry_option table[] = {
    {.key = "host", FERRY_OPT_STRING, "\"localhost\"", 0, offsetof(ctx, host), "server name"},
    {.key = "port", FERRY_OPT_INT, "5432", 0, offsetof(ctx, port), "server port"},
    {.key = "ratio", FERRY_OPT_DOUBLE, "0.5", 0, offsetof(ctx, ratio), "a ratio"},
    {.key = "verbose", FERRY_OPT_BOOL, "true", 0, offsetof(ctx, verbose), "talk more"},
    {.key = "tags", FERRY_OPT_STRING_LIST, "[\"a\", \"b\"]", 0, offsetof(ctx, tags), "tags"},
    {.key = "extra", FERRY_OPT_JSON, "{\"k\": 1}", 0, offsetof(ctx, extra), "anything"},
    {.key = "password", FERRY_OPT_STRING, "\"default-pw-123\"", FERRY_OPT_SECRET, offsetof(ctx, password),
     "the password"},
    {.key = "dsn", FERRY_OPT_STRING, NULL, FERRY_OPT_SECRET, offsetof(ctx, dsn), "connection string"},
    {.key = "hosts", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(ctx, hosts), "more hosts"},
    {.key = "path", FERRY_OPT_STRING, NULL, 0, offsetof(ctx, path), "a plain path"},
    {.key = "zero", FERRY_OPT_INT, NULL, 0, offsetof(ctx, zero), "no default"},
    FERRY_OPTIONS_END};

static const ferry_option required_table[] = {
    {.key = "dsn", FERRY_OPT_STRING, NULL, FERRY_OPT_REQUIRED | FERRY_OPT_SECRET, offsetof(ctx, dsn),
     "where to connect"},
    {.key = "port", FERRY_OPT_INT, "1", 0, offsetof(ctx, port), "port"},
    FERRY_OPTIONS_END};

static const char *W = "cfg.json: stages[0] \"s\" sink \"t\" options";

static json_t *js(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, 0, &e);
  FT_ASSERT(j, "bad test JSON %s: %s", text, e.text);
  return j;
}

/* Applies `text` to a fresh zeroed context; returns rc, the message in *msg (malloc'd or NULL). */
static int apply(const ferry_option *t, const char *text, ctx *c, const char *base, char **msg) {
  memset(c, 0, sizeof *c);
  json_t *o = text ? js(text) : NULL;
  ferry_error err = FERRY_ERROR_INIT;
  int rc = ferry__options_apply_ex(t, o, c, W, base, 0, &err);
  json_decref(o);
  *msg = err.message ? strdup(err.message) : NULL;
  FT_ASSERT(rc == err.code, "rc %d but error code %d", rc, err.code);
  ferry_error_clear(&err);
  return rc;
}

static void all_null(const ctx *c) {
  FT_ASSERT(!c->host && !c->tags && !c->extra && !c->password && !c->dsn && !c->hosts && !c->path,
            "a field stayed allocated after a failure");
}

/* Expects a refusal whose message contains each of the NULL-terminated parts. */
static void refused(const ferry_option *t, const char *text, const char *base, int code, ...) {
  ctx c;
  char *msg;
  int rc = apply(t, text, &c, base, &msg);
  FT_ASSERT(rc == code, "%s: rc %d, expected %d (%s)", text, rc, code, msg ? msg : "no message");
  FT_ASSERT(msg && !strncmp(msg, W, strlen(W)), "%s: message does not start with where: %s", text, msg);
  va_list ap;
  va_start(ap, code);
  for (const char *part; (part = va_arg(ap, const char *));)
    FT_ASSERT(strstr(msg, part), "%s: message lacks [%s]: %s", text, part, msg);
  va_end(ap);
  all_null(&c);
  free(msg);
}

static void write_file(const char *path, const char *content) {
  FILE *f = fopen(path, "w");
  FT_ASSERT(f, "cannot write %s", path);
  fputs(content, f);
  fclose(f);
}

static void test_defaults(void) {
  ctx c;
  char *msg;
  FT_ASSERT(apply(table, NULL, &c, NULL, &msg) == 0, "defaults refused: %s", msg);
  FT_ASSERT(!strcmp(c.host, "localhost"), "host %s", c.host);
  FT_ASSERT(c.port == 5432, "port %lld", (long long)c.port);
  FT_ASSERT(c.ratio == 0.5, "ratio %g", c.ratio);
  FT_ASSERT(c.verbose == 1, "verbose %d", c.verbose);
  FT_ASSERT(ferry__strv_len(c.tags) == 2 && !strcmp(c.tags[0], "a") && !strcmp(c.tags[1], "b"), "tags");
  FT_ASSERT(json_is_object(c.extra) && json_integer_value(json_object_get(c.extra, "k")) == 1, "extra");
  FT_ASSERT(!strcmp(c.password, "default-pw-123"), "password default");
  FT_ASSERT(!c.dsn && !c.hosts && !c.path && c.zero == 0, "options without default must stay zero");
  ferry__options_release(table, &c);
  all_null(&c);
  /* an empty object is the same as no options */
  FT_ASSERT(apply(table, "{}", &c, NULL, &msg) == 0, "{} refused: %s", msg);
  FT_ASSERT(c.port == 5432, "port");
  ferry__options_release(table, &c);
}

static void test_values(void) {
  ctx c;
  char *msg;
  int rc =
      apply(table,
            "{\"host\": \"db.example\", \"port\": 6543, \"ratio\": 2, \"verbose\": false, \"tags\": \"one\","
            " \"extra\": [1, \"x\"], \"hosts\": [\"h1\", \"h2\", \"h3\"], \"zero\": 7.0}",
            &c, NULL, &msg);
  FT_ASSERT(rc == 0, "refused: %s", msg);
  FT_ASSERT(!strcmp(c.host, "db.example"), "host");
  FT_ASSERT(c.port == 6543, "port");
  FT_ASSERT(c.ratio == 2.0, "an integer must be accepted for a number option: %g", c.ratio);
  FT_ASSERT(c.verbose == 0, "verbose");
  FT_ASSERT(ferry__strv_len(c.tags) == 1 && !strcmp(c.tags[0], "one"), "a string is a one-element list");
  FT_ASSERT(json_is_array(c.extra) && json_array_size(c.extra) == 2, "extra");
  FT_ASSERT(ferry__strv_len(c.hosts) == 3 && !strcmp(c.hosts[2], "h3") && !c.hosts[3], "hosts");
  FT_ASSERT(c.zero == 7, "an integral number is an integer");
  ferry__options_release(table, &c);
  all_null(&c);
  /* an empty list is an empty (non-NULL) vector */
  FT_ASSERT(apply(table, "{\"hosts\": []}", &c, NULL, &msg) == 0, "empty list refused: %s", msg);
  FT_ASSERT(c.hosts && !c.hosts[0], "empty list");
  ferry__options_release(table, &c);
  /* JSON null for a JSON option is a value */
  FT_ASSERT(apply(table, "{\"extra\": null}", &c, NULL, &msg) == 0, "null json refused: %s", msg);
  FT_ASSERT(json_is_null(c.extra), "null json");
  ferry__options_release(table, &c);
}

static void test_refusals(void) {
  refused(table, "{\"host\": \"x\", \"hots\": 1}", NULL, FERRY_ECONFIG, "unknown key \"hots\"",
          "; valid keys: host, port, ratio, verbose, tags, extra, password, dsn, hosts, path, zero", NULL);
  refused(table, "{\"port\": \"8\"}", NULL, FERRY_ECONFIG, "\"port\": expected integer, found string", NULL);
  refused(table, "{\"port\": 8.5}", NULL, FERRY_ECONFIG, "\"port\": expected integer, found 8.5", NULL);
  refused(table, "{\"ratio\": \"x\"}", NULL, FERRY_ECONFIG, "\"ratio\": expected number, found string", NULL);
  refused(table, "{\"verbose\": 1}", NULL, FERRY_ECONFIG, "\"verbose\": expected boolean, found integer",
          NULL);
  refused(table, "{\"host\": 3}", NULL, FERRY_ECONFIG, "\"host\": expected string, found integer", NULL);
  refused(table, "{\"host\": null}", NULL, FERRY_ECONFIG, "\"host\": expected string, found null", NULL);
  refused(table, "{\"hosts\": 3}", NULL, FERRY_ECONFIG,
          "\"hosts\": expected a string or a list of strings, found integer", NULL);
  refused(table, "{\"hosts\": [\"a\", 2]}", NULL, FERRY_ECONFIG, "\"hosts\"[1]: expected", "found integer",
          NULL);
  refused(table, "{\"host\": {\"envv\": \"X\"}}", NULL, FERRY_ECONFIG,
          "\"host\": expected a string, {\"env\": \"NAME\"} or {\"file\": \"PATH\"}", NULL);
  refused(required_table, "{\"port\": 2}", NULL, FERRY_ECONFIG,
          "missing required key \"dsn\" (where to connect)", NULL);
  refused(required_table, NULL, NULL, FERRY_ECONFIG, "missing required key \"dsn\"", NULL);
  static const ferry_option none[] = {FERRY_OPTIONS_END};
  refused(none, "{\"a\": 1}", NULL, FERRY_ECONFIG, "unknown key \"a\"; this plugin takes no options", NULL);
  refused(NULL, "{\"a\": 1}", NULL, FERRY_ECONFIG, "unknown key \"a\"; this plugin takes no options", NULL);
  /* options that are not an object */
  ctx c;
  memset(&c, 0, sizeof c);
  json_t *arr = js("[1]");
  ferry_error err = FERRY_ERROR_INIT;
  FT_ASSERT(ferry__options_apply(table, arr, &c, W, &err) == FERRY_ECONFIG, "array accepted");
  FT_ASSERT(strstr(err.message, "expected an object, found array"), "%s", err.message);
  ferry_error_clear(&err);
  json_decref(arr);
  /* failure midway: the options before the bad one were stored and must be released again (ASan checks
   * that nothing leaks) */
  refused(table, "{\"host\": \"h\", \"tags\": [\"x\"], \"extra\": {}, \"hosts\": [\"ok\", {\"env\": 1}]}",
          NULL, FERRY_ECONFIG, "\"hosts\"[1]", NULL);
  /* a broken default in the plugin's own table is the plugin's bug */
  static const ferry_option bad_default[] = {{.key = "n", FERRY_OPT_INT, "\"eight\"", 0, offsetof(ctx, port), "n"},
                                             FERRY_OPTIONS_END};
  refused(bad_default, NULL, NULL, FERRY_EINTERNAL,
          "\"n\": the plugin's default value \"eight\" is not a valid integer", NULL);
  static const ferry_option bad_json_default[] = {
      {.key = "s", FERRY_OPT_STRING, "nope", 0, offsetof(ctx, host), "s"}, FERRY_OPTIONS_END};
  refused(bad_json_default, NULL, NULL, FERRY_EINTERNAL, "default value is not valid JSON", NULL);
}

/* ---- ABI 1.3: enums, ranges, non-empty, roles, deprecated keys ---------------------------------------- */
typedef struct ctx2 {
  int policy;
  int64_t batch;
  int64_t low;
  int64_t high;
  char *name;
  char **tables;
  char *owner;
  char *dsn;
  int mode;
} ctx2;

enum { POL_SKIP = 1, POL_OVERWRITE = 2, POL_FAIL = 3 };
static const ferry_opt_choice policies[] = {
    {"skip", POL_SKIP}, {"overwrite", POL_OVERWRITE}, {"fail", POL_FAIL}, {NULL, 0}};
static const ferry_opt_choice modes[] = {{"a", 10}, {"b", 20}, {NULL, 0}};

static const ferry_option table2[] = {
    {.key = "on_conflict", .type = FERRY_OPT_ENUM, .default_json = "\"skip\"", .offset = offsetof(ctx2, policy),
     .help = "policy", .roles = FERRY_KIND_SINK, .choices = policies, .deprecated_key = "conflict"},
    {.key = "batch", .type = FERRY_OPT_INT, .default_json = "10", .flags = FERRY_OPT_RANGE,
     .offset = offsetof(ctx2, batch), .help = "batch", .min = 1, .max = 1000},
    {.key = "low", .type = FERRY_OPT_INT, .flags = FERRY_OPT_RANGE, .offset = offsetof(ctx2, low),
     .help = "at least 0", .min = 0, .max = INT64_MAX},
    {.key = "high", .type = FERRY_OPT_INT, .flags = FERRY_OPT_RANGE, .offset = offsetof(ctx2, high),
     .help = "at most 5", .min = INT64_MIN, .max = 5},
    {.key = "name", .type = FERRY_OPT_STRING, .flags = FERRY_OPT_NONEMPTY, .offset = offsetof(ctx2, name),
     .help = "a name", .roles = FERRY_KIND_SOURCE},
    {.key = "tables", .type = FERRY_OPT_STRING_LIST, .flags = FERRY_OPT_NONEMPTY,
     .offset = offsetof(ctx2, tables), .help = "tables", .roles = FERRY_KIND_SOURCE | FERRY_KIND_HOOK},
    {.key = "owner", .type = FERRY_OPT_STRING, .flags = FERRY_OPT_REQUIRED, .offset = offsetof(ctx2, owner),
     .help = "the owner", .roles = FERRY_KIND_SINK},
    {.key = "dsn", .type = FERRY_OPT_STRING, .flags = FERRY_OPT_SECRET | FERRY_OPT_NONEMPTY,
     .offset = offsetof(ctx2, dsn), .help = "dsn"},
    {.key = "mode", .type = FERRY_OPT_ENUM, .offset = offsetof(ctx2, mode), .help = "mode", .choices = modes},
    FERRY_OPTIONS_END};

static int apply2(const char *text, uint32_t role, ctx2 *c, char **msg) {
  memset(c, 0, sizeof *c);
  json_t *o = text ? js(text) : NULL;
  ferry_error err = FERRY_ERROR_INIT;
  int rc = ferry__options_apply_ex(table2, o, c, W, NULL, role, &err);
  json_decref(o);
  *msg = err.message ? strdup(err.message) : NULL;
  FT_ASSERT(rc == err.code, "rc %d but error code %d", rc, err.code);
  ferry_error_clear(&err);
  return rc;
}

/* Expects `text` refused for `role` with a message starting with where and containing `part`, and nothing
 * left allocated. */
static void refused2(const char *text, uint32_t role, const char *part) {
  ctx2 c;
  char *msg;
  int rc = apply2(text, role, &c, &msg);
  FT_ASSERT(rc == FERRY_ECONFIG, "%s: rc %d (%s)", text, rc, msg ? msg : "no message");
  FT_ASSERT(msg && !strncmp(msg, W, strlen(W)) && strstr(msg, part), "%s: message lacks [%s]: %s", text, part,
            msg ? msg : "");
  FT_ASSERT(!c.name && !c.tables && !c.owner && !c.dsn, "%s: a field stayed allocated after a failure", text);
  free(msg);
}

/* Applies `text` (must be accepted) and returns what was logged meanwhile (malloc'd). */
static char *accepted2(const char *text, uint32_t role, ctx2 *c, const char *dir) {
  char *path = ferry_asprintf("%s/warn.txt", dir);
  FILE *f = fopen(path, "w+");
  FT_ASSERT(f, "open %s", path);
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, f);
  char *msg;
  int rc = apply2(text, role, c, &msg);
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, NULL);
  FT_ASSERT(rc == 0, "%s refused: %s", text, msg);
  fflush(f);
  rewind(f);
  ferry_buf sb = {0};
  char line[1024];
  while (fgets(line, sizeof line, f)) ferry_buf_add(&sb, line);
  fclose(f);
  unlink(path);
  free(path);
  return ferry_buf_steal(&sb);
}

static void test_enum_range_roles(const char *dir) {
  ctx2 c;
  /* defaults: the enum's default name written as its value; no default = 0 */
  char *log = accepted2("{\"owner\": \"o\"}", FERRY_KIND_SINK, &c, dir);
  FT_ASSERT(c.policy == POL_SKIP && c.batch == 10 && c.mode == 0, "defaults: %d %lld %d", c.policy,
            (long long)c.batch, c.mode);
  FT_ASSERT(!*log, "nothing to warn about, logged: %s", log);
  free(log);
  ferry__options_release(table2, &c);
  /* enum: every name gives its value */
  const char *names[] = {"skip", "overwrite", "fail"};
  for (int i = 0; i < 3; i++) {
    char *text = ferry_asprintf("{\"owner\": \"o\", \"on_conflict\": \"%s\", \"mode\": \"b\"}", names[i]);
    log = accepted2(text, FERRY_KIND_SINK, &c, dir);
    FT_ASSERT(c.policy == policies[i].value && c.mode == 20, "%s: %d %d", names[i], c.policy, c.mode);
    free(log);
    free(text);
    ferry__options_release(table2, &c);
  }
  refused2("{\"owner\": \"o\", \"on_conflict\": \"merge\"}", FERRY_KIND_SINK,
           "\"on_conflict\": must be one of \"skip\", \"overwrite\", \"fail\", found \"merge\"");
  refused2("{\"owner\": \"o\", \"on_conflict\": \"Skip\"}", FERRY_KIND_SINK, "found \"Skip\"");
  refused2("{\"owner\": \"o\", \"on_conflict\": 1}", FERRY_KIND_SINK,
           "\"on_conflict\": must be one of \"skip\", \"overwrite\", \"fail\", found integer");
  refused2("{\"owner\": \"o\", \"mode\": null}", 0, "\"mode\": must be one of \"a\", \"b\", found null");
  /* ranges: both edges taken, one past each refused, with the range named */
  const char *ok[] = {"{\"batch\": 1}", "{\"batch\": 1000}", "{\"low\": 0}", "{\"low\": 9223372036854775807}",
                      "{\"high\": 5}", "{\"high\": -9223372036854775808}", "{\"batch\": 5.0}", NULL};
  for (int i = 0; ok[i]; i++) {
    log = accepted2(ok[i], FERRY_KIND_SOURCE, &c, dir);
    free(log);
    ferry__options_release(table2, &c);
  }
  log = accepted2("{\"batch\": 1000, \"low\": 0, \"high\": -3}", FERRY_KIND_SOURCE, &c, dir);
  FT_ASSERT(c.batch == 1000 && c.low == 0 && c.high == -3, "range values");
  free(log);
  ferry__options_release(table2, &c);
  refused2("{\"batch\": 0}", FERRY_KIND_SOURCE, "\"batch\": must be between 1 and 1000, found 0");
  refused2("{\"batch\": 1001}", FERRY_KIND_SOURCE, "\"batch\": must be between 1 and 1000, found 1001");
  refused2("{\"batch\": -1}", FERRY_KIND_SOURCE, "\"batch\": must be between 1 and 1000, found -1");
  refused2("{\"low\": -1}", FERRY_KIND_SOURCE, "\"low\": must be 0 or more, found -1");
  refused2("{\"high\": 6}", FERRY_KIND_SOURCE, "\"high\": must be 5 or less, found 6");
  refused2("{\"batch\": \"5\"}", FERRY_KIND_SOURCE, "\"batch\": expected integer, found string");
  /* non-empty strings and lists (a string list given as one string too), secrets alike */
  refused2("{\"name\": \"\"}", FERRY_KIND_SOURCE, "\"name\": must not be empty");
  refused2("{\"tables\": []}", FERRY_KIND_SOURCE, "\"tables\": must not be an empty list");
  refused2("{\"tables\": [\"a\", \"\"]}", FERRY_KIND_SOURCE, "\"tables\"[1]: must not be empty");
  refused2("{\"tables\": \"\"}", FERRY_KIND_SOURCE, "\"tables\": must not be empty");
  refused2("{\"dsn\": \"\"}", FERRY_KIND_SOURCE, "\"dsn\": must not be empty");
  setenv("FT_OPT_EMPTY", "", 1);
  refused2("{\"dsn\": {\"env\": \"FT_OPT_EMPTY\"}}", FERRY_KIND_SOURCE, "\"dsn\": must not be empty");
  unsetenv("FT_OPT_EMPTY");
  log = accepted2("{\"name\": \"n\", \"tables\": \"t\", \"dsn\": \"x\"}", FERRY_KIND_SOURCE, &c, dir);
  FT_ASSERT(!strcmp(c.name, "n") && c.tables && !strcmp(c.tables[0], "t") && !c.tables[1], "non-empty values");
  free(log);
  ferry__options_release(table2, &c);
  /* roles: an option of another role is refused, naming the roles it has; a required option of another role
   * is not required; role 0 (standalone checks) takes everything */
  refused2("{\"name\": \"n\"}", FERRY_KIND_SINK, "option \"name\" applies to the source only (this is the sink)");
  refused2("{\"owner\": \"o\", \"tables\": [\"t\"]}", FERRY_KIND_SINK,
           "option \"tables\" applies to the source and the hook only (this is the sink)");
  refused2("{\"on_conflict\": \"skip\"}", FERRY_KIND_SOURCE,
           "option \"on_conflict\" applies to the sink only (this is the source)");
  refused2("{\"conflict\": \"skip\"}", FERRY_KIND_HOOK,
           "option \"conflict\" applies to the sink only (this is the hook)");
  refused2("{}", FERRY_KIND_SINK, "missing required key \"owner\" (the owner)");
  log = accepted2("{\"tables\": [\"t\"]}", FERRY_KIND_HOOK, &c, dir);
  FT_ASSERT(c.policy == POL_SKIP && !c.owner, "hook: defaults of other roles still written, owner not required");
  free(log);
  ferry__options_release(table2, &c);
  log = accepted2("{\"name\": \"n\", \"owner\": \"o\"}", 0, &c, dir);
  free(log);
  ferry__options_release(table2, &c);
  /* deprecated key: taken, with one warning naming the instance and the new name */
  log = accepted2("{\"owner\": \"o\", \"conflict\": \"fail\"}", FERRY_KIND_SINK, &c, dir);
  FT_ASSERT(c.policy == POL_FAIL, "the deprecated key's value: %d", c.policy);
  char *want = ferry_asprintf("%s: option \"conflict\" is deprecated: write \"on_conflict\"", W);
  FT_ASSERT(strstr(log, want), "warning: [%s]", log);
  FT_ASSERT(strstr(log, "warn"), "not a warning: [%s]", log);
  size_t lines = 0;
  for (const char *q = log; (q = strchr(q, '\n')); q++) lines++;
  FT_ASSERT(lines == 1, "%zu lines logged: [%s]", lines, log);
  free(want);
  free(log);
  ferry__options_release(table2, &c);
  /* a bad value under the old name names the old name */
  refused2("{\"owner\": \"o\", \"conflict\": \"merge\"}", FERRY_KIND_SINK,
           "\"conflict\": must be one of \"skip\", \"overwrite\", \"fail\", found \"merge\"");
  /* both names */
  refused2("{\"owner\": \"o\", \"conflict\": \"fail\", \"on_conflict\": \"skip\"}", FERRY_KIND_SINK,
           "both \"conflict\" and \"on_conflict\" are given; \"conflict\" is the deprecated name of "
           "\"on_conflict\": keep only \"on_conflict\"");
  /* the list of valid keys names the current keys */
  refused2("{\"conflicts\": 1}", FERRY_KIND_SINK,
           "unknown key \"conflicts\"; valid keys: on_conflict, batch, low, high, name, tables, owner, dsn, mode");
}

static void test_secrets(const char *dir) {
  ctx c;
  char *msg;
  ferry__secret_clear();
  setenv("FT_OPT_PASS", "env-secret-4711", 1);
  setenv("FT_OPT_DIR", "/srv/data", 1);
  unsetenv("FT_OPT_NOPE");
  /* "${NAME}" as the whole value */
  FT_ASSERT(apply(table, "{\"password\": \"${FT_OPT_PASS}\"}", &c, NULL, &msg) == 0, "%s", msg);
  FT_ASSERT(!strcmp(c.password, "env-secret-4711"), "password %s", c.password);
  ferry__options_release(table, &c);
  char *r = ferry_redact("login with env-secret-4711 failed");
  FT_ASSERT(!strcmp(r, "login with *** failed"), "secret not registered: %s", r);
  free(r);
  /* embedded in a longer value: the whole value and the substituted part are both secrets */
  ferry__secret_clear();
  FT_ASSERT(apply(table, "{\"dsn\": \"host=db password=${FT_OPT_PASS} user=u\"}", &c, NULL, &msg) == 0, "%s",
            msg);
  FT_ASSERT(!strcmp(c.dsn, "host=db password=env-secret-4711 user=u"), "dsn %s", c.dsn);
  ferry__options_release(table, &c);
  r = ferry_redact("dsn host=db password=env-secret-4711 user=u; again env-secret-4711");
  FT_ASSERT(!strcmp(r, "dsn ***; again ***"), "embedded secret: %s", r);
  free(r);
  /* {"env": NAME} */
  ferry__secret_clear();
  FT_ASSERT(apply(table, "{\"host\": {\"env\": \"FT_OPT_PASS\"}}", &c, NULL, &msg) == 0, "%s", msg);
  FT_ASSERT(!strcmp(c.host, "env-secret-4711"), "host %s", c.host);
  ferry__options_release(table, &c);
  r = ferry_redact("env-secret-4711");
  FT_ASSERT(!strcmp(r, "***"), "{\"env\"} values are always secrets: %s", r);
  free(r);
  /* {"file": PATH}: relative to the base directory, trailing newline stripped, also in lists */
  char *pw = ferry_asprintf("%s/pw.txt", dir);
  write_file(pw, "file-secret-0815\n");
  ferry__secret_clear();
  FT_ASSERT(apply(table, "{\"password\": {\"file\": \"pw.txt\"}, \"hosts\": [\"a\", {\"file\": \"pw.txt\"}]}",
                  &c, dir, &msg) == 0,
            "%s", msg);
  FT_ASSERT(!strcmp(c.password, "file-secret-0815"), "password [%s]", c.password);
  FT_ASSERT(!strcmp(c.hosts[1], "file-secret-0815"), "list element from file [%s]", c.hosts[1]);
  ferry__options_release(table, &c);
  r = ferry_redact("pw file-secret-0815");
  FT_ASSERT(!strcmp(r, "pw ***"), "file secret not registered: %s", r);
  free(r);
  /* an absolute path ignores the base directory; CRLF stripped too */
  write_file(pw, "crlf-secret-99\r\n\r\n");
  char *abs = ferry_asprintf("{\"password\": {\"file\": \"%s\"}}", pw);
  FT_ASSERT(apply(table, abs, &c, "/nonexistent", &msg) == 0, "%s", msg);
  FT_ASSERT(!strcmp(c.password, "crlf-secret-99"), "password [%s]", c.password);
  ferry__options_release(table, &c);
  free(abs);
  /* "$${" is a literal "${"; substitution in a plain option is not a secret */
  ferry__secret_clear();
  FT_ASSERT(apply(table, "{\"path\": \"${FT_OPT_DIR}/in $${NOT_A_VAR}\"}", &c, NULL, &msg) == 0, "%s", msg);
  FT_ASSERT(!strcmp(c.path, "/srv/data/in ${NOT_A_VAR}"), "path %s", c.path);
  ferry__options_release(table, &c);
  r = ferry_redact("/srv/data/in");
  FT_ASSERT(!strcmp(r, "/srv/data/in"), "a plain option's substitution was redacted: %s", r);
  free(r);
  /* a secret too short to be masked (1-2 characters): taken, with one warning naming the option; 3 are masked */
  {
    char *path = ferry_asprintf("%s/short.txt", dir);
    const char *texts[] = {"{\"password\": \"ab\"}", "{\"password\": \"abc\"}"};
    for (int i = 0; i < 2; i++) {
      FILE *f = fopen(path, "w+");
      FT_ASSERT(f, "open %s", path);
      ferry__secret_clear();
      ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, f);
      int rc = apply(table, texts[i], &c, NULL, &msg);
      ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, NULL);
      FT_ASSERT(rc == 0, "%s: %s", texts[i], msg);
      ferry__options_release(table, &c);
      fflush(f);
      rewind(f);
      char line[1024] = "";
      size_t got = fread(line, 1, sizeof line - 1, f);
      line[got] = '\0';
      fclose(f);
      if (i == 0) {
        FT_ASSERT(strstr(line, "\"password\": the secret is 2 characters long; secrets shorter than 3 characters "
                               "are not masked in logs and reports") && strstr(line, "warn"),
                  "no warning for a 2-character secret: [%s]", line);
      } else {
        FT_ASSERT(!*line, "a 3-character secret warned: [%s]", line);
        r = ferry_redact("pw abc");
        FT_ASSERT(!strcmp(r, "pw ***"), "a 3-character secret is not masked: %s", r);
        free(r);
      }
    }
    unlink(path);
    free(path);
  }
  /* errors name the option and where the value should have come from, never the value */
  refused(table, "{\"password\": \"${FT_OPT_NOPE}\"}", NULL, FERRY_ECONFIG,
          "\"password\": environment variable FT_OPT_NOPE is not set", NULL);
  refused(table, "{\"dsn\": \"a=b password=${FT_OPT_NOPE}\"}", NULL, FERRY_ECONFIG,
          "\"dsn\": environment variable FT_OPT_NOPE is not set", NULL);
  refused(table, "{\"password\": {\"env\": \"FT_OPT_NOPE\"}}", NULL, FERRY_ECONFIG,
          "\"password\": environment variable FT_OPT_NOPE is not set", NULL);
  refused(table, "{\"password\": {\"env\": \"1BAD\"}}", NULL, FERRY_ECONFIG,
          "not a valid environment variable", NULL);
  refused(table, "{\"password\": \"abc${FT_OPT_PASS\"}", NULL, FERRY_ECONFIG,
          "\"${\" without a closing \"}\"", NULL);
  refused(table, "{\"password\": \"${A-B}\"}", NULL, FERRY_ECONFIG, "\"${A-B}\" is not a valid environment",
          NULL);
  char *missing =
      ferry_asprintf("cannot read secret file \"%s/missing.txt\": No such file or directory", dir);
  refused(table, "{\"password\": {\"file\": \"missing.txt\"}}", dir, FERRY_ECONFIG, "\"password\": ", missing,
          NULL);
  free(missing);
  /* a secret holding JSON special characters is also found inside serialised JSON */
  ferry__secret_clear();
  setenv("FT_OPT_QUOTED", "pa\"ss\\word", 1);
  FT_ASSERT(apply(table, "{\"password\": {\"env\": \"FT_OPT_QUOTED\"}}", &c, NULL, &msg) == 0, "%s", msg);
  json_t *doc = json_pack("{s:s}", "error", "login failed for pa\"ss\\word");
  char *dumped = json_dumps(doc, JSON_COMPACT);
  r = ferry_redact(dumped);
  FT_ASSERT(!strcmp(r, "{\"error\":\"login failed for ***\"}"), "escaped secret: %s", r);
  free(r);
  free(dumped);
  json_decref(doc);
  ferry__options_release(table, &c);
  ctx c2;
  FT_ASSERT(apply(table, "{\"password\": \"${FT_OPT_NOPE}\"}", &c2, NULL, &msg) == FERRY_ECONFIG, "x");
  FT_ASSERT(!strstr(msg, "env-secret-4711"), "an error shows a secret: %s", msg);
  free(msg);
  unlink(pw);
  free(pw);
  ferry__secret_clear();
}

static const char *const src_points[] = {"before_read", NULL};
static const char *const sink_points[] = {"before_start", "after_start", "before_read", NULL};
static void nop_demand(ferry_instance *ins, size_t n) { (void)ins, (void)n; }
static void nop_write(ferry_instance *ins, ferry_task *t) { (void)ins, (void)t; }
static const ferry_source_ops src_ops = {
    sizeof(ferry_source_ops), FERRY_ITEM_RECORD | FERRY_ITEM_FILE, src_points, NULL, nop_demand, NULL};
static const ferry_sink_ops sink_ops = {.struct_size = sizeof(ferry_sink_ops),
                                        .accepts = FERRY_ITEM_INSTANCE,
                                        .hook_points = sink_points,
                                        .write = nop_write};

static void test_describe(void) {
  ferry_plugin p = {.abi_major = FERRY_ABI_MAJOR,
                    .abi_minor = FERRY_ABI_MINOR,
                    .struct_size = sizeof p,
                    .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK,
                    .name = "demo",
                    .version = "1.2.3",
                    .description = "a demo",
                    .license = "Apache-2.0",
                    .options = table,
                    .ctx_size = sizeof(ctx),
                    .source = &src_ops,
                    .sink = &sink_ops};
  json_t *d = ferry__plugin_describe(&p);
  char *text = json_dumps(d, JSON_COMPACT);
  FT_ASSERT(!strstr(text, "default-pw-123"), "describe shows a secret default: %s", text);
  FT_ASSERT(!strcmp(json_string_value(json_object_get(d, "name")), "demo"), "name");
  FT_ASSERT(!strcmp(json_string_value(json_object_get(d, "version")), "1.2.3"), "version");
  FT_ASSERT(!strcmp(json_string_value(json_object_get(d, "license")), "Apache-2.0"), "license");
  FT_ASSERT(!strcmp(json_string_value(json_object_get(d, "description")), "a demo"), "description");
  json_t *want =
      js("{\"kinds\": [\"source\", \"sink\"], \"emits\": [\"record\", \"file\"], "
         "\"accepts\": [\"instance\"], \"hook_points\": [\"before_read\", \"before_start\", "
         "\"after_start\"]}");
  const char *k;
  json_t *v;
  json_object_foreach(want, k, v) {
    char *got = json_dumps(json_object_get(d, k), JSON_COMPACT | JSON_ENCODE_ANY);
    FT_ASSERT(json_equal(json_object_get(d, k), v), "%s: %s", k, got);
    free(got);
  }
  json_decref(want);
  json_t *opts = json_object_get(d, "options");
  FT_ASSERT(json_array_size(opts) == 11, "options %zu", json_array_size(opts));
  json_t *port = json_array_get(opts, 1), *pw = json_array_get(opts, 6), *dsn = json_array_get(opts, 7);
  json_t *want_port =
      js("{\"key\": \"port\", \"type\": \"integer\", \"default\": 5432, \"required\": false, "
         "\"secret\": false, \"help\": \"server port\"}");
  FT_ASSERT(json_equal(port, want_port), "port: %s", text);
  json_decref(want_port);
  FT_ASSERT(!strcmp(json_string_value(json_object_get(pw, "default")), "***"), "secret default: %s", text);
  FT_ASSERT(json_is_true(json_object_get(pw, "secret")), "secret flag");
  FT_ASSERT(!json_object_get(dsn, "default"), "no default shown when there is none");
  FT_ASSERT(!strcmp(json_string_value(json_object_get(json_array_get(opts, 4), "type")), "string list"),
            "type");
  json_t *ld = js("[\"a\", \"b\"]");
  FT_ASSERT(json_equal(json_object_get(json_array_get(opts, 4), "default"), ld), "list default: %s", text);
  json_decref(ld);
  free(text);
  json_decref(d);
  /* what ABI 1.3 added is shown: roles, choices, range, non-empty, the deprecated name */
  p.options = table2;
  p.ctx_size = sizeof(ctx2);
  d = ferry__plugin_describe(&p);
  opts = json_object_get(d, "options");
  json_t *want2 = js("[{\"key\": \"on_conflict\", \"type\": \"enum\", \"default\": \"skip\", \"required\": false, "
                     "\"secret\": false, \"help\": \"policy\", \"roles\": [\"sink\"], "
                     "\"choices\": [\"skip\", \"overwrite\", \"fail\"], \"deprecated_name\": \"conflict\"},"
                     "{\"key\": \"batch\", \"type\": \"integer\", \"default\": 10, \"required\": false, "
                     "\"secret\": false, \"help\": \"batch\", \"min\": 1, \"max\": 1000},"
                     "{\"key\": \"low\", \"type\": \"integer\", \"required\": false, "
                     "\"secret\": false, \"help\": \"at least 0\", \"min\": 0},"
                     "{\"key\": \"high\", \"type\": \"integer\", \"required\": false, "
                     "\"secret\": false, \"help\": \"at most 5\", \"max\": 5},"
                     "{\"key\": \"name\", \"type\": \"string\", \"required\": false, "
                     "\"secret\": false, \"help\": \"a name\", \"roles\": [\"source\"], \"non_empty\": true},"
                     "{\"key\": \"tables\", \"type\": \"string list\", \"required\": false, "
                     "\"secret\": false, \"help\": \"tables\", \"roles\": [\"source\", \"hook\"], \"non_empty\": true}]");
  for (size_t i = 0; i < json_array_size(want2); i++) {
    char *got = json_dumps(json_array_get(opts, i), JSON_COMPACT);
    FT_ASSERT(json_equal(json_array_get(opts, i), json_array_get(want2, i)), "describe option %zu: %s", i, got);
    free(got);
  }
  json_decref(want2);
  json_decref(d);
  /* a hook plugin without options */
  static const ferry_hook_ops hops = {sizeof(ferry_hook_ops), 0, NULL, NULL};
  ferry_plugin h = {.abi_major = 1,
                    .struct_size = sizeof h,
                    .kinds = FERRY_KIND_HOOK,
                    .name = "h",
                    .version = "0",
                    .description = "",
                    .license = "MIT",
                    .hook = &hops};
  d = ferry__plugin_describe(&h);
  FT_ASSERT(json_array_size(json_object_get(d, "options")) == 0, "no options");
  FT_ASSERT(!strcmp(json_string_value(json_object_get(d, "serves")), "any"), "hook serves any point");
  FT_ASSERT(!json_object_get(d, "emits") && !json_object_get(d, "accepts"), "hook: no emits/accepts");
  json_decref(d);
  FT_ASSERT(!strcmp(ferry__opt_type_name(FERRY_OPT_DOUBLE), "number"), "type name");
  FT_ASSERT(!strcmp(ferry__opt_type_name(FERRY_OPT_BOOL), "boolean"), "type name");
  FT_ASSERT(!strcmp(ferry__opt_type_name((ferry_opt_type)99), "unknown"), "type name");
}

/* The process's log configuration and redaction (ferry/runtime.h): what the CLI sets up, with a secret a
 * plugin registered (ferry_secret). */
static void test_log(const char *dir) {
  char *path = ferry_asprintf("%s/log.txt", dir);
  FILE *f = fopen(path, "w+");
  FT_ASSERT(f, "open %s", path);
  ferry_secret(NULL, "log-secret-2207");
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_JSON, f);
  ferry_log(NULL, FERRY_LOG_INFO, "connecting with log-secret-2207");
  ferry_log(NULL, FERRY_LOG_DEBUG, "filtered out");
  FT_ASSERT(!ferry_log_enabled(FERRY_LOG_DEBUG) && ferry_log_enabled(FERRY_LOG_WARN), "levels");
  ferry_log_configure(FERRY_LOG_DEBUG, FERRY_LOG_TEXT, f);
  ferry_log(NULL, FERRY_LOG_DEBUG, "now shown");
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, NULL);
  rewind(f);
  char line[512];
  FT_ASSERT(fgets(line, sizeof line, f), "no JSON line");
  json_t *o = json_loads(line, 0, NULL);
  FT_ASSERT(o && !strcmp(json_string_value(json_object_get(o, "msg")), "connecting with ***") &&
                !strcmp(json_string_value(json_object_get(o, "level")), "info"),
            "JSON line: %s", line);
  json_decref(o);
  FT_ASSERT(
      fgets(line, sizeof line, f) && strstr(line, "debug [ferry] now shown") && !strstr(line, "filtered"),
      "text line: %s", line);
  FT_ASSERT(!fgets(line, sizeof line, f), "extra line: %s", line);
  fclose(f);
  unlink(path);
  free(path);
  char *r = ferry_redact("token log-secret-2207.");
  FT_ASSERT(!strcmp(r, "token ***."), "redact: %s", r);
  free(r);
  FT_ASSERT(ferry_redact(NULL) == NULL, "redact NULL");
}

int main(void) {
  char tmpl[] = "/tmp/ferry-options-test.XXXXXX";
  char *dir = mkdtemp(tmpl);
  FT_ASSERT(dir, "mkdtemp");
  test_defaults();
  test_values();
  test_refusals();
  test_secrets(dir);
  test_enum_range_roles(dir);
  test_describe();
  test_log(dir);
  rmdir(dir);
  printf("options: all passed\n");
  return 0;
}
