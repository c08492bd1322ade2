/* Loads the out-of-tree example connector (examples/custom-connector, built against the installed SDK)
 * through the real loader and the real option handling: check_plugin <path of ferry_csv.so>. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ftest.h"
#include "internal.h"

static ferry_instance *make(const ferry_plugin *p, uv_loop_t *loop, const char *options_json,
                             ferry_error *err) {
  json_t *o = json_loads(options_json, 0, NULL);
  FT_ASSERT(o, "bad test JSON %s", options_json);
  ferry_instance *ins = ferry__instance_create(p, FERRY_KIND_SOURCE, "people", loop, FERRY_MODE_RUN, o,
                                              "test stage \"people\" source \"csv\"", err);
  json_decref(o);
  return ins;
}

int main(int argc, char **argv) {
  FT_ASSERT(argc == 2, "usage: check_plugin <ferry_csv.so>");
  const char *path = argv[1];
  ferry_error err = FERRY_ERROR_INIT;

  /* the name given (as from a config), and the name from the file name (as when listing) */
  ferry_registry *reg = ferry__registry_new();
  const ferry_plugin_entry *e = ferry__registry_load_file(reg, path, "csv", &err);
  FT_ASSERT(e, "the loader refused the example: %s", err.message);
  FT_ASSERT(!e->builtin && strcmp(e->origin, path) == 0, "origin %s", e->origin);
  const ferry_plugin *p = e->plugin;
  FT_ASSERT(strcmp(p->name, "csv") == 0, "name %s", p->name);
  FT_ASSERT(p->kinds == (FERRY_KIND_SOURCE | FERRY_KIND_SINK), "kinds 0x%x", (unsigned)p->kinds);
  ferry_registry *reg2 = ferry__registry_new();
  FT_ASSERT(ferry__registry_load_file(reg2, path, NULL, &err), "name from the file name: %s", err.message);
  ferry__registry_free(reg2);

  /* what `ferry plugins --describe csv` prints */
  json_t *d = ferry__plugin_describe(p);
  char *text = json_dumps(d, JSON_INDENT(2));
  printf("%s\n", text);
  const char *keys[] = {"path", "table", "header", "delimiter", "fsync", NULL};
  json_t *opts = json_object_get(d, "options");
  for (size_t i = 0; keys[i]; i++) {
    int found = 0;
    size_t j;
    json_t *o;
    json_array_foreach(opts, j, o) found |= !strcmp(json_string_value(json_object_get(o, "key")), keys[i]);
    FT_ASSERT(found, "option %s not described: %s", keys[i], text);
  }
  free(text);
  json_decref(d);

  /* init/fini with real options; option errors from the core and from the plugin's init() */
  uv_loop_t loop;
  FT_ASSERT(uv_loop_init(&loop) == 0, "loop");
  ferry_instance *ins = make(p, &loop, "{\"path\": \"data/people.csv\"}", &err);
  FT_ASSERT(ins, "instance: %s", err.message);
  ferry__instance_destroy(ins);
  FT_ASSERT(!make(p, &loop, "{\"path\": \"x.csv\", \"delimiter\": \";;\"}", &err), "two-character delimiter");
  FT_ASSERT(strstr(err.message, "option \"delimiter\" must be one character") && strstr(err.message, ";;"),
            "message: %s", err.message);
  ferry_error_clear(&err);
  FT_ASSERT(!make(p, &loop, "{\"file\": \"x.csv\"}", &err), "unknown key accepted");
  FT_ASSERT(strstr(err.message, "file") && strstr(err.message, "path"), "message: %s", err.message);
  printf("unknown key -> %s\n", err.message);
  ferry_error_clear(&err);
  FT_ASSERT(uv_loop_close(&loop) == 0, "loop not closed");

  ferry__registry_free(reg);
  printf("ok: %s loads and initialises\n", path);
  return 0;
}
