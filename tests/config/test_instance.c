/* Plugin instances: create applies options and calls init with every accessor already answering, destroy
 * calls fini once; bad options and a failing init leave nothing behind and never call fini; a planted
 * secret logged by a plugin through ferry_log comes out as "***" in text and JSON log formats. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ftest.h"
#include "load/load.h"

typedef struct tctx {
  char *password;
  int64_t n;
  int fail;
  int fail_silently;
  char *token;
} tctx;

static const ferry_option topts[] = {
    {.key = "password", FERRY_OPT_STRING, NULL, FERRY_OPT_SECRET, offsetof(tctx, password), "password"},
    {.key = "n", FERRY_OPT_INT, "1", 0, offsetof(tctx, n), "a number"},
    {.key = "fail", FERRY_OPT_BOOL, "false", 0, offsetof(tctx, fail), "fail in init"},
    {.key = "fail_silently", FERRY_OPT_BOOL, "false", 0, offsetof(tctx, fail_silently), "fail without a message"},
    {.key = "token", FERRY_OPT_STRING, NULL, FERRY_OPT_SECRET, offsetof(tctx, token), "token"},
    FERRY_OPTIONS_END};

static struct {
  int init_calls, fini_calls;
  const ferry_instance *ins;
  tctx values; /* copy of the context as init saw it */
  const char *stage, *plugin;
  uint32_t role;
  ferry_mode mode;
  uv_loop_t *loop;
  unsigned concurrency;
  double rate;
} seen;

static int t_init(ferry_instance *ins, ferry_error *err) {
  seen.init_calls++;
  seen.ins = ins;
  tctx *c = ferry_instance_ctx(ins);
  seen.values = *c;
  seen.stage = ferry_instance_stage(ins);
  seen.plugin = ferry_instance_plugin(ins);
  seen.role = ferry_instance_role(ins);
  seen.mode = ferry_instance_mode(ins);
  seen.loop = ferry_instance_loop(ins);
  seen.concurrency = ferry_instance_concurrency(ins);
  seen.rate = ferry_instance_rate(ins);
  if (c->fail) return ferry_error_set(err, FERRY_EPERM, "login refused for user bob");
  if (c->fail_silently) return FERRY_EIO;
  ferry_log_info(ins, "connecting with password=%s token=%s n=%lld", c->password ? c->password : "-",
                 c->token ? c->token : "-", (long long)c->n);
  return 0;
}

static void t_fini(ferry_instance *ins) {
  seen.fini_calls++;
  FT_ASSERT(ins == seen.ins, "fini got another instance");
  tctx *c = ferry_instance_ctx(ins);
  FT_ASSERT(c->n == seen.values.n, "options must stay valid until fini returns");
}

static void t_write(ferry_instance *ins, ferry_task *task) { (void)ins, (void)task; }
static const ferry_sink_ops tsink = {
    .struct_size = sizeof(ferry_sink_ops), .accepts = FERRY_ITEM_RECORD, .write = t_write};
static const ferry_plugin tplug = {.abi_major = FERRY_ABI_MAJOR,
                                   .abi_minor = FERRY_ABI_MINOR,
                                   .struct_size = sizeof(ferry_plugin),
                                   .kinds = FERRY_KIND_SINK,
                                   .name = "testplug",
                                   .version = "1",
                                   .description = "test",
                                   .license = "MIT",
                                   .options = topts,
                                   .ctx_size = sizeof(tctx),
                                   .init = t_init,
                                   .fini = t_fini,
                                   .sink = &tsink};
static const ferry_plugin bare = {.abi_major = FERRY_ABI_MAJOR,
                                  .struct_size = sizeof(ferry_plugin),
                                  .kinds = FERRY_KIND_SINK,
                                  .name = "bare",
                                  .version = "1",
                                  .description = "",
                                  .license = "MIT",
                                  .sink = &tsink};

static const char *W = "cfg.json:3:5: stages[0] \"stage1\" sink \"testplug\"";
static char dir[64];

static json_t *js(const char *text) {
  json_t *j = json_loads(text, 0, NULL);
  FT_ASSERT(j, "bad test JSON %s", text);
  return j;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  FT_ASSERT(f, "open %s", path);
  ferry_buf sb = {0};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) ferry_buf_addn(&sb, buf, n);
  fclose(f);
  return ferry_buf_steal(&sb);
}

static void write_file(const char *path, const char *content) {
  FILE *f = fopen(path, "w");
  FT_ASSERT(f, "cannot write %s", path);
  fputs(content, f);
  fclose(f);
}

static void test_lifecycle(uv_loop_t *loop) {
  const char *planted = "pl4nted-s3cret-value";
  setenv("FT_INST_PW", planted, 1);
  char *tokfile = ferry_asprintf("%s/token", dir);
  write_file(tokfile, "t0ken-from-file-42\n");
  char *logpath = ferry_asprintf("%s/log.txt", dir);
  FILE *log = fopen(logpath, "w");
  FT_ASSERT(log, "log file");
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, log);

  memset(&seen, 0, sizeof seen);
  json_t *o = js("{\"password\": \"${FT_INST_PW}\", \"n\": 3, \"token\": {\"file\": \"token\"}}");
  const char *const points[] = {"before_start", "after_start", NULL};
  ferry_instance_params prm = {.base_dir = dir, .concurrency = 4, .rate = 1.5, .points = points};
  ferry_error err = FERRY_ERROR_INIT;
  ferry_instance *ins =
      ferry__instance_create_ex(&tplug, FERRY_KIND_SINK, "stage1", loop, FERRY_MODE_PLAN, o, W, &prm, &err);
  json_decref(o);
  FT_ASSERT(ins, "create failed: %s", err.message);
  FT_ASSERT(seen.init_calls == 1 && seen.fini_calls == 0, "init %d fini %d", seen.init_calls,
            seen.fini_calls);
  FT_ASSERT(seen.ins == ins, "init saw another instance");
  FT_ASSERT(seen.values.n == 3 && !seen.values.fail && !strcmp(seen.values.password, planted),
            "options in init");
  FT_ASSERT(!strcmp(seen.values.token, "t0ken-from-file-42"), "token [%s]", seen.values.token);
  FT_ASSERT(!strcmp(seen.stage, "stage1") && !strcmp(seen.plugin, "testplug"), "names");
  FT_ASSERT(seen.role == FERRY_KIND_SINK && seen.mode == FERRY_MODE_PLAN && seen.loop == loop,
            "role/mode/loop");
  FT_ASSERT(seen.concurrency == 4 && seen.rate == 1.5, "concurrency %u rate %g", seen.concurrency, seen.rate);
  FT_ASSERT(ins->points && ins->points != (char **)points && !strcmp(ins->points[1], "after_start") &&
                !ins->points[2],
            "points copied");
  /* a value the plugin computes and registers itself */
  ferry_secret(ins, "computed-hash-abcdef");
  ferry_log_warn(ins, "hash is computed-hash-abcdef, password %s", planted);
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_JSON, log);
  ferry_log_error(ins, "json line with %s and t0ken-from-file-42", planted);
  ferry_log_debug(ins, "filtered out %s", "debug-line");
  ferry_log(NULL, FERRY_LOG_INFO, "core line %s", planted);
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, NULL);
  fclose(log);

  char *text = slurp(logpath);
  FT_ASSERT(!strstr(text, planted), "the planted secret leaked into the log:\n%s", text);
  FT_ASSERT(!strstr(text, "t0ken-from-file-42") && !strstr(text, "computed-hash-abcdef"), "leak:\n%s", text);
  FT_ASSERT(strstr(text, "[sink:testplug:stage1] connecting with password=*** token=*** n=3"), "log:\n%s",
            text);
  FT_ASSERT(strstr(text, "[sink:testplug:stage1] hash is ***, password ***"), "log:\n%s", text);
  FT_ASSERT(strstr(text, "\"level\":\"info\",\"msg\":\"core line ***\"}"), "log:\n%s", text);
  FT_ASSERT(!strstr(text, "debug-line"), "debug line not filtered:\n%s", text);
  /* the JSON line parses and carries the instance's fields */
  char *jl = strstr(text, "{\"ts\"");
  FT_ASSERT(jl, "no JSON line:\n%s", text);
  char *nl = strchr(jl, '\n');
  json_t *line = json_loadb(jl, (size_t)(nl - jl), 0, NULL);
  FT_ASSERT(line, "JSON log line does not parse");
  FT_ASSERT(!strcmp(json_string_value(json_object_get(line, "msg")), "json line with *** and ***"), "msg");
  FT_ASSERT(!strcmp(json_string_value(json_object_get(line, "plugin")), "testplug"), "plugin");
  FT_ASSERT(!strcmp(json_string_value(json_object_get(line, "role")), "sink"), "role");
  FT_ASSERT(!strcmp(json_string_value(json_object_get(line, "stage")), "stage1"), "stage");
  FT_ASSERT(!strcmp(json_string_value(json_object_get(line, "level")), "error"), "level");
  json_decref(line);
  free(text);

  ferry__instance_destroy(ins);
  FT_ASSERT(seen.init_calls == 1 && seen.fini_calls == 1, "init %d fini %d", seen.init_calls,
            seen.fini_calls);
  ferry__instance_destroy(NULL);
  unlink(logpath);
  unlink(tokfile);
  free(logpath);
  free(tokfile);
  ferry__secret_clear();
}

static void test_defaults(uv_loop_t *loop) {
  memset(&seen, 0, sizeof seen);
  ferry_error err = FERRY_ERROR_INIT;
  ferry_instance *ins =
      ferry__instance_create(&tplug, FERRY_KIND_SOURCE, "s", loop, FERRY_MODE_RUN, NULL, W, &err);
  FT_ASSERT(ins, "create: %s", err.message);
  FT_ASSERT(seen.concurrency == 8 && seen.rate == 0 && seen.role == FERRY_KIND_SOURCE, "defaults");
  FT_ASSERT(seen.values.n == 1 && !seen.values.password, "option defaults");
  FT_ASSERT(!ins->points && !ins->stage, "no points, no stage");
  ferry__instance_destroy(ins);
  FT_ASSERT(seen.fini_calls == 1, "fini");
  /* no context, no options, no init/fini */
  ins = ferry__instance_create(&bare, FERRY_KIND_SINK, "s", loop, FERRY_MODE_RUN, NULL, NULL, &err);
  FT_ASSERT(ins && ferry_instance_ctx(ins), "bare: %s", err.message);
  ferry__instance_destroy(ins);
  json_t *o = js("{\"x\": 1}");
  FT_ASSERT(!ferry__instance_create(&bare, FERRY_KIND_SINK, "s", loop, FERRY_MODE_RUN, o, NULL, &err),
            "bare x");
  FT_ASSERT(!strcmp(err.message,
                    "stage \"s\" plugin \"bare\" options: unknown key \"x\"; this plugin takes no "
                    "options"),
            "%s", err.message);
  json_decref(o);
  ferry_error_clear(&err);
  /* options outside the context are refused before anything is written */
  static const ferry_option far[] = {{.key = "n", FERRY_OPT_INT, "1", 0, 64, "n"}, FERRY_OPTIONS_END};
  ferry_plugin small = bare;
  small.options = far;
  small.ctx_size = 68;
  FT_ASSERT(!ferry__instance_create(&small, FERRY_KIND_SINK, "s", loop, FERRY_MODE_RUN, NULL, "w", &err),
            "far");
  FT_ASSERT(
      err.code == FERRY_EINTERNAL && strstr(err.message, "w: option \"n\" lies outside the plugin's context"),
      "%s", err.message);
  ferry_error_clear(&err);
  small.ctx_size = 72;
  ins = ferry__instance_create(&small, FERRY_KIND_SINK, "s", loop, FERRY_MODE_RUN, NULL, "w", &err);
  FT_ASSERT(ins && *(int64_t *)((char *)ferry_instance_ctx(ins) + 64) == 1, "an option at the very end fits");
  ferry__instance_destroy(ins);
  FT_ASSERT(!ferry_instance_ctx(NULL) && !ferry_instance_stage(NULL) && !ferry_instance_plugin(NULL) &&
                ferry_instance_concurrency(NULL) == 1 && ferry_instance_rate(NULL) == 0,
            "accessors on NULL");
}

static void test_failures(uv_loop_t *loop) {
  ferry_error err = FERRY_ERROR_INIT;
  /* bad options: init is never called */
  memset(&seen, 0, sizeof seen);
  json_t *o = js("{\"password\": \"x\", \"nope\": 1}");
  FT_ASSERT(!ferry__instance_create(&tplug, FERRY_KIND_SINK, "stage1", loop, FERRY_MODE_RUN, o, W, &err),
            "nope");
  json_decref(o);
  char *want = ferry_asprintf(
      "%s options: unknown key \"nope\"; valid keys: password, n, fail, fail_silently, "
      "token",
      W);
  FT_ASSERT(err.code == FERRY_ECONFIG && !strcmp(err.message, want), "%s", err.message);
  free(want);
  FT_ASSERT(seen.init_calls == 0 && seen.fini_calls == 0, "init/fini called on bad options");
  ferry_error_clear(&err);
  unsetenv("FT_INST_NOPE");
  o = js("{\"password\": \"${FT_INST_NOPE}\"}");
  FT_ASSERT(!ferry__instance_create(&tplug, FERRY_KIND_SINK, "stage1", loop, FERRY_MODE_RUN, o, W, &err),
            "env");
  json_decref(o);
  want = ferry_asprintf("%s options: \"password\": environment variable FT_INST_NOPE is not set", W);
  FT_ASSERT(!strcmp(err.message, want), "%s", err.message);
  free(want);
  ferry_error_clear(&err);
  /* init fails with a message: prefixed with where, code kept, fini not called, options released (ASan) */
  o = js("{\"password\": \"p4ss-word\", \"fail\": true}");
  FT_ASSERT(!ferry__instance_create(&tplug, FERRY_KIND_SINK, "stage1", loop, FERRY_MODE_RUN, o, W, &err),
            "fail");
  json_decref(o);
  want = ferry_asprintf("%s: login refused for user bob", W);
  FT_ASSERT(err.code == FERRY_EPERM && !strcmp(err.message, want), "%d %s", err.code, err.message);
  free(want);
  FT_ASSERT(seen.init_calls == 1 && seen.fini_calls == 0, "init %d fini %d", seen.init_calls,
            seen.fini_calls);
  ferry_error_clear(&err);
  /* init fails without saying why */
  o = js("{\"fail_silently\": true}");
  FT_ASSERT(!ferry__instance_create(&tplug, FERRY_KIND_SINK, "stage1", loop, FERRY_MODE_RUN, o, W, &err),
            "silent");
  json_decref(o);
  want = ferry_asprintf("%s: init failed (EIO: input/output error), the plugin gave no reason", W);
  FT_ASSERT(err.code == FERRY_EIO && !strcmp(err.message, want), "%d %s", err.code, err.message);
  free(want);
  FT_ASSERT(seen.init_calls == 2 && seen.fini_calls == 0, "init %d fini %d", seen.init_calls,
            seen.fini_calls);
  ferry_error_clear(&err);
  /* a NULL err is allowed */
  o = js("{\"fail\": true}");
  FT_ASSERT(!ferry__instance_create(&tplug, FERRY_KIND_SINK, "stage1", loop, FERRY_MODE_RUN, o, W, NULL),
            "null");
  json_decref(o);
  ferry__secret_clear();
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/ferry-instance-test.XXXXXX");
  FT_ASSERT(mkdtemp(dir), "mkdtemp");
  uv_loop_t loop;
  FT_ASSERT(uv_loop_init(&loop) == 0, "loop");
  test_lifecycle(&loop);
  test_defaults(&loop);
  test_failures(&loop);
  FT_ASSERT(uv_loop_close(&loop) == 0, "loop close");
  rmdir(dir);
  printf("instance: all passed\n");
  return 0;
}
