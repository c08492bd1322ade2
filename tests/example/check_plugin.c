/* Loads the out-of-tree example connector (examples/custom-connector, built against the installed SDK)
 * through libferry's public API only, as any program embedding ferry would (and as `ferry` does): the
 * listing and description of `ferry plugins`, the option checks of a load, and init()/start()/fini() in a
 * plan of a csv -> csv pipeline.
 *
 *   check_plugin <path of ferry_csv.so> <a CSV file to read>
 *
 * This program links the shared libferry, like the module: the dynamic linker loads libferry once, so the
 * module's SDK calls reach the same core as this program's (checked below: one libferry mapped). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ferry/ferry.h>
#include <ferry/runtime.h>

#include "ftest.h"
#include "onecore.h"

static char dir[PATH_MAX];

/* A runtime searching only the module's directory. */
static ferry_runtime *runtime(void) {
  const char *dirs[] = {dir, NULL};
  ferry_runtime_opts ro = {.struct_size = sizeof ro, .plugin_path = dirs, .no_default_path = 1};
  ferry_error err = FERRY_ERROR_INIT;
  ferry_runtime *rt = ferry_runtime_new(&ro, &err);
  FT_ASSERT(rt, "runtime: %s", err.message);
  return rt;
}

/* Loads a csv -> csv stage with the given source options and plans it; returns the run's code (the load's
 * when it fails), the message in `err`. */
static int plan(const char *source_options, const char *out, ferry_run_summary *sum, ferry_error *err) {
  char text[4096];
  snprintf(text, sizeof text,
           "{\"stages\": [{\"name\": \"people\", \"concurrency\": 1,"
           " \"source\": {\"plugin\": \"csv\", \"options\": %s},"
           " \"sink\": {\"plugin\": \"csv\", \"options\": {\"path\": \"%s\"}}}]}",
           source_options, out);
  json_error_t je;
  json_t *cfg = json_loads(text, 0, &je);
  FT_ASSERT(cfg, "bad test JSON %s: %s", text, je.text);
  ferry_runtime *rt = runtime();
  int rc = ferry_runtime_load_json(rt, cfg, "check.json", err);
  json_decref(cfg);
  if (rc == 0) {
    ferry_run_opts o = {.struct_size = sizeof o, .mode = FERRY_MODE_PLAN};
    rc = ferry_runtime_run(rt, &o, sum, err);
  }
  ferry_runtime_free(rt);
  return rc;
}

int main(int argc, char **argv) {
  FT_ASSERT(argc == 3, "usage: check_plugin <ferry_csv.so> <file.csv>");
  char path[PATH_MAX];
  FT_ASSERT(realpath(argv[1], path), "%s: %s", argv[1], strerror(errno));
  snprintf(dir, sizeof dir, "%s", path);
  *strrchr(dir, '/') = '\0';
  ferry_error err = FERRY_ERROR_INIT;

  /* listed with the name from its file name, and described as `ferry plugins --describe csv` prints it */
  ferry_runtime *rt = runtime();
  json_t *all = ferry_runtime_plugins(rt, &err);
  FT_ASSERT(all, "listing: %s", err.message);
  FT_ASSERT(json_array_size(json_object_get(all, "refused")) == 0, "refused: %s",
            json_dumps(json_object_get(all, "refused"), 0));
  int listed = 0;
  size_t i;
  json_t *e;
  json_array_foreach(json_object_get(all, "plugins"), i, e) {
    if (strcmp(json_string_value(json_object_get(e, "name")), "csv")) continue;
    listed = 1;
    FT_ASSERT(!strcmp(json_string_value(json_object_get(e, "origin")), path), "listed from %s",
              json_string_value(json_object_get(e, "origin")));
  }
  FT_ASSERT(listed, "csv not listed");
  json_decref(all);
  json_t *d = ferry_runtime_describe_plugin(rt, "csv", &err);
  FT_ASSERT(d, "the loader refused the example: %s", err.message);
  char *text = json_dumps(d, JSON_INDENT(2));
  printf("%s\n", text);
  FT_ASSERT(!strcmp(json_string_value(json_object_get(d, "origin")), path), "origin");
  char *kinds = json_dumps(json_object_get(d, "kinds"), JSON_COMPACT);
  FT_ASSERT(!strcmp(kinds, "[\"source\",\"sink\"]"), "kinds %s", kinds);
  free(kinds);
  const char *keys[] = {"path", "table", "header", "delimiter", "fsync", NULL};
  json_t *opts = json_object_get(d, "options");
  for (size_t k = 0; keys[k]; k++) {
    int found = 0;
    json_t *o;
    json_array_foreach(opts, i, o) found |= !strcmp(json_string_value(json_object_get(o, "key")), keys[k]);
    FT_ASSERT(found, "option %s not described: %s", keys[k], text);
  }
  free(text);
  json_decref(d);
  /* one core in this process: the module's SDK calls bind to the libferry this program runs */
  FT_ASSERT(ft_libferry_mapped() == 1, "%d libferry files mapped", ft_libferry_mapped());
  ferry_runtime_free(rt);

  /* init()/start()/fini() with real options: a plan reads the file and writes nothing */
  char tmp[] = "/tmp/ferry-check-plugin.XXXXXX";
  FT_ASSERT(mkdtemp(tmp), "mkdtemp: %s", strerror(errno));
  char out[PATH_MAX + 16], opt[2 * PATH_MAX];
  snprintf(out, sizeof out, "%s/copy.csv", tmp);
  snprintf(opt, sizeof opt, "{\"path\": \"%s\"}", argv[2]);
  ferry_run_summary sum;
  int rc = plan(opt, out, &sum, &err);
  FT_ASSERT(rc == 0, "plan: %s", err.message);
  FT_ASSERT(sum.done > 0 && sum.failed == 0, "plan: %lld would do, %lld failed", (long long)sum.done,
            (long long)sum.failed);
  FT_ASSERT(access(out, F_OK) != 0, "the plan wrote %s", out);
  /* an option error found by the plugin's init() */
  snprintf(opt, sizeof opt, "{\"path\": \"%s\", \"delimiter\": \";;\"}", argv[2]);
  FT_ASSERT(plan(opt, out, &sum, &err) < 0, "two-character delimiter");
  FT_ASSERT(strstr(err.message, "option \"delimiter\" must be one character") && strstr(err.message, ";;"),
            "message: %s", err.message);
  ferry_error_clear(&err);
  /* an option error found by the core, at load */
  FT_ASSERT(plan("{\"file\": \"x.csv\"}", out, &sum, &err) == FERRY_ECONFIG, "unknown key accepted");
  FT_ASSERT(strstr(err.message, "file") && strstr(err.message, "path"), "message: %s", err.message);
  printf("unknown key -> %s\n", err.message);
  ferry_error_clear(&err);
  rmdir(tmp);
  printf("ok: %s loads and initialises\n", path);
  return 0;
}
