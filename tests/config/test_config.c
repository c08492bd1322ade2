/* The JSON configuration: syntax errors with exact line:column, every refusal with its message and the place
 * of the offending key or value, defaults, relative path resolution, and configs built from JSON values. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ftest.h"
#include "load/load.h"

static char dir[64];
static char *cfg_path;

static void write_file(const char *path, const char *content) {
  FILE *f = fopen(path, "w");
  FT_ASSERT(f, "cannot write %s", path);
  fputs(content, f);
  fclose(f);
}

/* Loads `text` from <dir>/config.json; expects failure with exactly "<path>:<loc>: <rest>" (loc may be NULL
 * for no location). */
static void refused_at(const char *text, int code, const char *loc, const char *rest) {
  write_file(cfg_path, text);
  ferry_error err = FERRY_ERROR_INIT;
  ferry_config *cfg = ferry__config_load_file(cfg_path, &err);
  FT_ASSERT(!cfg, "accepted:\n%s", text);
  char *want =
      loc ? ferry_asprintf("%s:%s: %s", cfg_path, loc, rest) : ferry_asprintf("%s: %s", cfg_path, rest);
  FT_ASSERT(err.code == code, "code %d, expected %d: %s", err.code, code, err.message);
  FT_ASSERT(!strcmp(err.message, want), "\n got: %s\nwant: %s\nfor:\n%s", err.message, want, text);
  free(want);
  ferry_error_clear(&err);
}

static ferry_config *load_ok(const char *text) {
  write_file(cfg_path, text);
  ferry_error err = FERRY_ERROR_INIT;
  ferry_config *cfg = ferry__config_load_file(cfg_path, &err);
  FT_ASSERT(cfg, "refused: %s\n%s", err.message, text);
  return cfg;
}

#define MIN_STAGE "\"source\": {\"plugin\": \"a\"}, \"sink\": {\"plugin\": \"b\"}"

static void test_syntax(void) {
  /* jansson's messages, positioned at the first character of the offending token */
  refused_at("{\n  \"stages\": [\n    {\"name\": tru}\n  ]\n}\n", FERRY_ECONFIG, "3:14",
             "invalid token near 'tru'");
  refused_at("{\n  \"journal\": \"a.db\",\n  \"journal\": \"b.db\"\n}\n", FERRY_ECONFIG, "3:3",
             "duplicate object key near '\"journal\"'");
  refused_at("{\n  \"stages\": [\n    { \"name\": \"x\",, }\n  ]\n}\n", FERRY_ECONFIG, "3:19",
             "string or '}' expected near ','");
  refused_at("{\"stages\": [1,]}", FERRY_ECONFIG, "1:15", "unexpected token near ']'");
  /* columns count characters, not bytes */
  refused_at("{\"\xc3\xa9t\xc3\xa9\": x}", FERRY_ECONFIG, "1:9", "invalid token near 'x'");
  refused_at("{\n  \"a\": 1\n", FERRY_ECONFIG, "3:1", "'}' expected near end of file");
  refused_at("", FERRY_ECONFIG, "1:1", "'[' or '{' expected near end of file");
  refused_at("{} x", FERRY_ECONFIG, "1:4", "end of file expected near 'x'");
  /* a file that cannot be read */
  char *nope = ferry_asprintf("%s/nope.json", dir);
  ferry_error err = FERRY_ERROR_INIT;
  FT_ASSERT(!ferry__config_load_file(nope, &err), "missing file loaded");
  FT_ASSERT(err.code == FERRY_ENOENT, "code %d", err.code);
  char *want = ferry_asprintf("cannot open config file \"%s\": No such file or directory", nope);
  FT_ASSERT(!strcmp(err.message, want), "%s", err.message);
  free(want);
  free(nope);
  ferry_error_clear(&err);
  FT_ASSERT(!ferry__config_load_file(dir, &err), "a directory loaded");
  want = ferry_asprintf("cannot read config file \"%s\": Is a directory", dir);
  FT_ASSERT(err.code == FERRY_EIO && !strcmp(err.message, want), "%s", err.message);
  free(want);
  ferry_error_clear(&err);
}

static void test_refusals(void) {
  /* the example of the brief, with the place of the key */
  refused_at(
      "{\"stages\": [\n"
      "  {\"name\": \"users\", " MIN_STAGE
      "},\n"
      "  {\"name\": \"forms\",\n"
      "   \"sorce\": {\"plugin\": \"pgsql\"}}\n"
      "]}\n",
      FERRY_ECONFIG, "4:4",
      "stages[1] \"forms\": unknown key \"sorce\"; valid keys: name, source, sink, hooks, after, "
      "concurrency, "
      "rate, journal, retry");
  refused_at("{\"stage\": []}", FERRY_ECONFIG, "1:2",
             "unknown key \"stage\"; valid keys: journal, report, plugin_path, log_level, stages");
  refused_at("[]", FERRY_ECONFIG, "1:1", "the configuration must be a JSON object, found array");
  refused_at("{\"journal\": \"j.db\"}", FERRY_ECONFIG, "1:1",
             "missing \"stages\" (the list of stages to run)");
  refused_at("{\"stages\": {}}", FERRY_ECONFIG, "1:12", "\"stages\": expected an array, found object");
  refused_at("{\"stages\": []}", FERRY_ECONFIG, "1:12", "\"stages\": must hold at least one stage");
  refused_at("{\"stages\": [\"x\"]}", FERRY_ECONFIG, "1:13", "stages[0]: expected an object, found string");
  refused_at("{\"stages\": [{" MIN_STAGE "}]}", FERRY_ECONFIG, "1:13", "stages[0]: missing \"name\"");
  refused_at("{\"stages\": [{\"name\": 5}]}", FERRY_ECONFIG, "1:22",
             "stages[0]: \"name\": expected a string, found integer");
  refused_at(
      "{\"stages\": [{\"name\": \"a b\"}]}", FERRY_ECONFIG, "1:22",
      "stages[0]: \"name\": \"a b\" is not a valid stage name (1 to 128 letters, digits, '_', '.' and '-')");
  refused_at("{\"stages\": [\n {\"name\": \"s\", " MIN_STAGE "},\n {\"name\": \"s\", " MIN_STAGE "}]}",
             FERRY_ECONFIG, "3:11", "stages[1] \"s\": \"name\": \"s\" is already the name of stages[0]");
  refused_at("{\"stages\": [{\"name\": \"s\", \"sink\": {\"plugin\": \"b\"}}]}", FERRY_ECONFIG, "1:13",
             "stages[0] \"s\": missing \"source\" ({\"plugin\": NAME, \"options\": {...}})");
  refused_at("{\"stages\": [{\"name\": \"s\", \"source\": {\"plugin\": \"a\"}}]}", FERRY_ECONFIG, "1:13",
             "stages[0] \"s\": missing \"sink\" ({\"plugin\": NAME, \"options\": {...}})");
  refused_at("{\"stages\": [{\"name\": \"s\", \"source\": \"pgsql\"}]}", FERRY_ECONFIG, "1:37",
             "stages[0] \"s\" source: expected an object, found string");
  refused_at("{\"stages\": [{\"name\": \"s\", \"source\": {}}]}", FERRY_ECONFIG, "1:37",
             "stages[0] \"s\" source: missing \"plugin\" (the name of the plugin to use)");
  refused_at("{\"stages\": [{\"name\": \"s\", \"source\": {\"plugin\": 1}}]}", FERRY_ECONFIG, "1:48",
             "stages[0] \"s\" source: \"plugin\": expected a string, found integer");
  refused_at(
      "{\"stages\": [{\"name\": \"s\", \"source\": {\"plugin\": \"Bad/Name\"}}]}", FERRY_ECONFIG, "1:48",
      "stages[0] \"s\" source: \"plugin\": \"Bad/Name\" is not a plugin name (lower-case letters, digits, "
      "'_' and '-')");
  refused_at("{\"stages\": [{\"name\": \"s\", \"source\": {\"plugin\": \"a\", \"options\": []}}]}",
             FERRY_ECONFIG, "1:64", "stages[0] \"s\" source: \"options\": expected an object, found array");
  refused_at("{\"stages\": [{\"name\": \"s\", \"source\": {\"plugin\": \"a\", \"option\": {}}}]}",
             FERRY_ECONFIG, "1:53",
             "stages[0] \"s\" source: unknown key \"option\"; valid keys: plugin, options");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"hooks\": [{\"plugin\": \"h\"}]}]}",
             FERRY_ECONFIG, "2:12",
             "stages[0] \"s\" hooks[0]: missing \"points\" (the hook points this hook runs at)");
  refused_at(
      "{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"hooks\": [{\"plugin\": \"h\", \"points\": []}]}]}",
      FERRY_ECONFIG, "2:38", "stages[0] \"s\" hooks[0]: \"points\": must name at least one hook point");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE
             ",\n \"hooks\": [{\"plugin\": \"h\", \"points\": [\"a\", 1]}]}]}",
             FERRY_ECONFIG, "2:44",
             "stages[0] \"s\" hooks[0]: \"points\"[1]: expected a string, found integer");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"hooks\": {}}]}", FERRY_ECONFIG, "2:11",
             "stages[0] \"s\": \"hooks\": expected an array, found object");
  refused_at("{\"stages\": [\n {\"name\": \"users\", " MIN_STAGE "},\n {\"name\": \"forms\", " MIN_STAGE
             ",\n  \"after\": [\"users\", \"usres\"]}]}",
             FERRY_ECONFIG, "4:22",
             "stages[1] \"forms\": \"after\": there is no stage named \"usres\"; stages are: users, forms");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ", \"after\": \"t\"}]}", FERRY_ECONFIG, "1:88",
             "stages[0] \"s\": \"after\": there is no stage named \"t\"; stages are: s");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ", \"after\": 3}]}", FERRY_ECONFIG, "1:88",
             "stages[0] \"s\": \"after\": expected a string or an array of strings, found integer");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"concurrency\": 0}]}", FERRY_ECONFIG, "2:17",
             "stages[0] \"s\": \"concurrency\": must be between 1 and 10000, found 0");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"concurrency\": 10001}]}", FERRY_ECONFIG,
             "2:17", "stages[0] \"s\": \"concurrency\": must be between 1 and 10000, found 10001");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"concurrency\": \"8\"}]}", FERRY_ECONFIG,
             "2:17", "stages[0] \"s\": \"concurrency\": expected an integer, found string");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"rate\": -1}]}", FERRY_ECONFIG, "2:10",
             "stages[0] \"s\": \"rate\": must be 0 (no limit) or more, found -1");
  refused_at(
      "{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"rate\": \"fast\"}]}", FERRY_ECONFIG, "2:10",
      "stages[0] \"s\": \"rate\": expected a number (requests per second, 0 = no limit), found string");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"journal\": 1}]}", FERRY_ECONFIG, "2:13",
             "stages[0] \"s\": \"journal\": expected true or false, found integer");
  refused_at(
      "{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"retry\": 3}]}", FERRY_ECONFIG, "2:11",
      "stages[0] \"s\": \"retry\": expected an object ({\"max\": 5, \"base_ms\": 200, \"cap_ms\": 30000}), "
      "found integer");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"retry\": {\"maxx\": 3}}]}", FERRY_ECONFIG,
             "2:12", "stages[0] \"s\" retry: unknown key \"maxx\"; valid keys: max, base_ms, cap_ms");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"retry\": {\"max\": -1}}]}", FERRY_ECONFIG,
             "2:19", "stages[0] \"s\" retry: \"max\": must be between 0 and 1000, found -1");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"retry\": {\"base_ms\": 60000}}]}",
             FERRY_ECONFIG, "2:11",
             "stages[0] \"s\" retry: \"cap_ms\" (30000) must not be less than \"base_ms\" (60000)");
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n \"retry\": {\"cap_ms\": 0}}]}", FERRY_ECONFIG,
             "2:22", "stages[0] \"s\" retry: \"cap_ms\": must be between 1 and 86400000, found 0");
  refused_at("{\"log_level\": \"loud\", \"stages\": [{\"name\": \"s\", " MIN_STAGE "}]}", FERRY_ECONFIG,
             "1:15", "\"log_level\": \"loud\" is not a level (error, warn, info, debug, trace)");
  refused_at("{\"journal\": 3, \"stages\": [{\"name\": \"s\", " MIN_STAGE "}]}", FERRY_ECONFIG, "1:13",
             "\"journal\": expected a string, found integer");
  refused_at("{\"report\": \"\", \"stages\": [{\"name\": \"s\", " MIN_STAGE "}]}", FERRY_ECONFIG, "1:12",
             "\"report\": must not be empty");
  refused_at("{\"plugin_path\": [\"a\", {}], \"stages\": [{\"name\": \"s\", " MIN_STAGE "}]}", FERRY_ECONFIG,
             "1:23", "\"plugin_path\"[1]: expected a string, found object");
  /* keys written with escapes are found too */
  refused_at("{\"stages\": [{\"name\": \"s\", " MIN_STAGE ",\n  \"r\\u0061te\": -2}]}", FERRY_ECONFIG, "2:16",
             "stages[0] \"s\": \"rate\": must be 0 (no limit) or more, found -2");
}

static void test_good(void) {
  char *jpath = ferry_asprintf("%s/j.db", dir);
  ferry_config *cfg = load_ok(
      "{\n"
      "  \"journal\": \"j.db\",\n"
      "  \"report\": \"/var/tmp/report.json\",\n"
      "  \"plugin_path\": [\"plugins\", \"/opt/ferry/plugins\"],\n"
      "  \"log_level\": \"debug\",\n"
      "  \"stages\": [\n"
      "    {\"name\": \"users\", \"source\": {\"plugin\": \"pgsql\", \"options\": {\"dsn\": \"${X}\"}},\n"
      "     \"sink\": {\"plugin\": \"pgsql\"}},\n"
      "    {\"name\": \"forms.v2\", \"after\": \"users\",\n"
      "     \"source\": {\"plugin\": \"jsonl\", \"options\": {\"path\": \"a\"}},\n"
      "     \"sink\": {\"plugin\": \"joget-sink\", \"options\": {}},\n"
      "     \"hooks\": [{\"plugin\": \"preserve-records\", \"points\": [\"before_start\", \"after_start\"],\n"
      "                \"options\": {\"k\": 1}},\n"
      "               {\"plugin\": \"audit\", \"points\": \"item_done\"}],\n"
      "     \"concurrency\": 16, \"rate\": 2.5, \"journal\": false,\n"
      "     \"retry\": {\"max\": 0, \"base_ms\": 50, \"cap_ms\": 50}}\n"
      "  ]\n"
      "}\n");
  FT_ASSERT(!strcmp(cfg->origin, cfg_path), "origin %s", cfg->origin);
  char *rdir = realpath(dir, NULL);
  FT_ASSERT(!strcmp(cfg->base_dir, rdir), "base_dir %s", cfg->base_dir);
  char *want = ferry_asprintf("%s/j.db", rdir);
  FT_ASSERT(!strcmp(cfg->journal, want), "journal %s", cfg->journal);
  free(want);
  FT_ASSERT(!strcmp(cfg->report, "/var/tmp/report.json"), "absolute report kept: %s", cfg->report);
  want = ferry_asprintf("%s/plugins", rdir);
  FT_ASSERT(ferry__strv_len(cfg->plugin_path) == 2 && !strcmp(cfg->plugin_path[0], want) &&
                !strcmp(cfg->plugin_path[1], "/opt/ferry/plugins"),
            "plugin_path %s", cfg->plugin_path[0]);
  free(want);
  FT_ASSERT(!strcmp(cfg->log_level, "debug"), "log_level");
  FT_ASSERT(cfg->nstages == 2, "nstages %zu", cfg->nstages);
  ferry_stage_cfg *a = &cfg->stages[0], *b = &cfg->stages[1];
  FT_ASSERT(!strcmp(a->name, "users") && a->index == 0, "stage 0");
  FT_ASSERT(a->concurrency == 8 && a->rate == 0 && a->journal == 1, "defaults");
  FT_ASSERT(a->retry_max == 5 && a->retry_base_ms == 200 && a->retry_cap_ms == 30000, "retry defaults");
  FT_ASSERT(a->after && !a->after[0], "no after = empty list");
  FT_ASSERT(a->nhooks == 0, "no hooks");
  FT_ASSERT(!strcmp(a->source.plugin, "pgsql") && json_is_object(a->source.options), "source");
  FT_ASSERT(!strcmp(json_string_value(json_object_get(a->source.options, "dsn")), "${X}"),
            "options are kept as written (resolved by the instance)");
  FT_ASSERT(!a->sink.options && !a->sink.points, "sink without options");
  want = ferry_asprintf("%s:7:33: stages[0] \"users\" source \"pgsql\"", cfg_path);
  FT_ASSERT(!strcmp(a->source.where, want), "where %s", a->source.where);
  free(want);
  FT_ASSERT(!strcmp(b->name, "forms.v2") && b->index == 1, "stage 1");
  FT_ASSERT(ferry__strv_len(b->after) == 1 && !strcmp(b->after[0], "users"), "after");
  FT_ASSERT(b->concurrency == 16 && b->rate == 2.5 && b->journal == 0, "values");
  FT_ASSERT(b->retry_max == 0 && b->retry_base_ms == 50 && b->retry_cap_ms == 50, "retry");
  FT_ASSERT(b->nhooks == 2, "nhooks %zu", b->nhooks);
  FT_ASSERT(!strcmp(b->hooks[0].plugin, "preserve-records") && ferry__strv_len(b->hooks[0].points) == 2 &&
                !strcmp(b->hooks[0].points[1], "after_start"),
            "hook 0");
  FT_ASSERT(json_integer_value(json_object_get(b->hooks[0].options, "k")) == 1, "hook options");
  FT_ASSERT(ferry__strv_len(b->hooks[1].points) == 1 && !strcmp(b->hooks[1].points[0], "item_done"), "hook 1");
  want = ferry_asprintf("%s:14:16: stages[1] \"forms.v2\" hooks[1] \"audit\"", cfg_path);
  FT_ASSERT(!strcmp(b->hooks[1].where, want), "where %s", b->hooks[1].where);
  free(want);
  FT_ASSERT(json_is_object(cfg->root), "root kept");
  ferry__config_free(cfg);
  free(rdir);
  free(jpath);

  /* minimal: nothing but one stage */
  cfg = load_ok("{\"stages\": [{\"name\": \"only\", " MIN_STAGE "}]}");
  FT_ASSERT(!cfg->journal && !cfg->report && !cfg->log_level, "optional top-level keys");
  FT_ASSERT(cfg->plugin_path && !cfg->plugin_path[0], "empty plugin_path");
  ferry__config_free(cfg);

  /* a stage may come after a later one (ordering is the pipeline's job), after lists are deduplicated */
  cfg = load_ok("{\"stages\": [{\"name\": \"b\", \"after\": [\"a\", \"a\"], " MIN_STAGE
                "},"
                "{\"name\": \"a\", " MIN_STAGE "}]}");
  FT_ASSERT(ferry__strv_len(cfg->stages[0].after) == 1, "after deduplicated");
  ferry__config_free(cfg);
}

static void test_from_json(void) {
  json_t *root = json_loads("{\"journal\": \"rel/j.db\", \"stages\": [{\"name\": \"s\", " MIN_STAGE
                            ","
                            " \"sorce\": 1}]}",
                            0, NULL);
  ferry_error err = FERRY_ERROR_INIT;
  FT_ASSERT(!ferry__config_from_json(root, "api", &err), "accepted");
  FT_ASSERT(!strcmp(err.message,
                    "api: stages[0] \"s\": unknown key \"sorce\"; valid keys: name, source, sink, "
                    "hooks, after, concurrency, rate, journal, retry"),
            "%s", err.message);
  ferry_error_clear(&err);
  json_object_del(json_array_get(json_object_get(root, "stages"), 0), "sorce");
  ferry_config *cfg = ferry__config_from_json(root, "api", &err);
  FT_ASSERT(cfg, "refused: %s", err.message);
  FT_ASSERT(!strcmp(cfg->base_dir, ".") && !strcmp(cfg->journal, "rel/j.db"), "base_dir . for JSON");
  FT_ASSERT(!strcmp(cfg->stages[0].source.where, "api: stages[0] \"s\" source \"a\""), "%s",
            cfg->stages[0].source.where);
  FT_ASSERT(cfg->root == root && root->refcount == 2, "root is shared, not stolen");
  ferry__config_free(cfg);
  FT_ASSERT(root->refcount == 1, "root released");
  json_decref(root);
  FT_ASSERT(!ferry__config_from_json(NULL, "api", &err) && err.code == FERRY_EINVAL, "NULL root");
  ferry_error_clear(&err);
}

/* ferry_config_settings() (ferry/runtime.h): the settings `ferry status`, `export-map` and `plugins` read. */
static void test_settings(void) {
  write_file(cfg_path,
             "{\"journal\": \"j.db\", \"plugin_path\": [\"p\", \"/abs\"], \"log_level\": \"warn\",\n"
             " \"stages\": [{\"name\": \"b\", " MIN_STAGE "}, {\"name\": \"a\", " MIN_STAGE "}]}\n");
  ferry_error err = FERRY_ERROR_INIT;
  json_t *set = ferry_config_settings(cfg_path, &err);
  FT_ASSERT(set, "settings: %s", err.message);
  char *rdir = realpath(dir, NULL);
  char *want = ferry_asprintf("%s/j.db", rdir);
  FT_ASSERT(!strcmp(json_string_value(json_object_get(set, "journal")), want), "journal resolved");
  free(want);
  want = ferry_asprintf("%s/p", rdir);
  json_t *pp = json_object_get(set, "plugin_path");
  FT_ASSERT(json_array_size(pp) == 2 && !strcmp(json_string_value(json_array_get(pp, 0)), want) &&
                !strcmp(json_string_value(json_array_get(pp, 1)), "/abs"),
            "plugin_path");
  free(want);
  FT_ASSERT(!strcmp(json_string_value(json_object_get(set, "log_level")), "warn") &&
                ferry_log_level_parse("warn") == FERRY_LOG_WARN,
            "log_level");
  FT_ASSERT(json_is_null(json_object_get(set, "report")), "no report");
  FT_ASSERT(!strcmp(json_string_value(json_object_get(set, "origin")), cfg_path), "origin");
  json_t *names = json_object_get(set, "stages");
  FT_ASSERT(json_array_size(names) == 2 && !strcmp(json_string_value(json_array_get(names, 0)), "b") &&
                !strcmp(json_string_value(json_array_get(names, 1)), "a"),
            "stages in file order");
  json_decref(set);
  free(rdir);
  /* without "journal": the default one, in the current directory */
  write_file(cfg_path, "{\"stages\": [{\"name\": \"s\", " MIN_STAGE "}]}");
  set = ferry_config_settings(cfg_path, &err);
  FT_ASSERT(set && !strcmp(json_string_value(json_object_get(set, "journal")), "ferry-journal.db") &&
                json_is_null(json_object_get(set, "log_level")) &&
                !json_array_size(json_object_get(set, "plugin_path")),
            "defaults");
  json_decref(set);
  /* the same refusals as a load: syntax with its place, keys, a missing file */
  write_file(cfg_path, "{\"stages\": [}");
  FT_ASSERT(!ferry_config_settings(cfg_path, &err) && err.code == FERRY_ECONFIG, "syntax error accepted");
  char *loc = ferry_asprintf("%s:1:", cfg_path);
  FT_ASSERT(!strncmp(err.message, loc, strlen(loc)), "syntax error without its place: %s", err.message);
  free(loc);
  ferry_error_clear(&err);
  write_file(cfg_path, "{\"jornal\": \"x\", \"stages\": [{\"name\": \"s\", " MIN_STAGE "}]}");
  FT_ASSERT(
      !ferry_config_settings(cfg_path, &err) && err.code == FERRY_ECONFIG && strstr(err.message, "jornal"),
      "unknown key: %s", err.message);
  ferry_error_clear(&err);
  FT_ASSERT(!ferry_config_settings("/nonexistent/ferry.json", &err) && err.code == FERRY_ENOENT,
            "missing file");
  ferry_error_clear(&err);
  FT_ASSERT(!ferry_config_settings(NULL, &err) && err.code == FERRY_EINVAL, "no file");
  ferry_error_clear(&err);
  FT_ASSERT(ferry_log_level_parse("trace") == FERRY_LOG_TRACE &&
                ferry_log_level_parse("error") == FERRY_LOG_ERROR && ferry_log_level_parse("verbose") == -1 &&
                ferry_log_level_parse(NULL) == -1,
            "level names");
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/ferry-config-test.XXXXXX");
  FT_ASSERT(mkdtemp(dir), "mkdtemp");
  cfg_path = ferry_asprintf("%s/config.json", dir);
  test_syntax();
  test_refusals();
  test_good();
  test_from_json();
  test_settings();
  unlink(cfg_path);
  free(cfg_path);
  rmdir(dir);
  printf("config: all passed\n");
  return 0;
}
