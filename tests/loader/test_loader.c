/* Loader tests: the registry (core/registry.c + core/module.c) with real module files built from the fixtures
 * in fixtures/, and the same fixture descriptors linked into this program as built-ins.
 *
 * Usage: test_loader <case>   (CTest runs each case as its own test, label `loader`)
 * FIXTURE_DIR is the directory of the fixture modules; BUILD_PLUGIN_DIR and INSTALL_PLUGIN_DIR are the
 * directories libferry was built to search by default.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ftest.h"
#include "load/load.h"
#include "onecore.h"
#include "fixtures/option_1_0.h"

#define CHECK FT_ASSERT

/* The fixture descriptors, linked in as data (bad_short really is a shorter struct; only its first fields
 * are ever read). */
extern const ferry_plugin ferry_plugin_good, ferry_plugin_dash_name, ferry_plugin_bad_major,
    ferry_plugin_bad_minor, ferry_plugin_bad_short, ferry_plugin_bad_noname, ferry_plugin_bad_name,
    ferry_plugin_bad_kind, ferry_plugin_bad_ops, ferry_plugin_old_layout;
/* The generated built-in table (plugins configured STATIC). */
extern const ferry_plugin *const ferry__builtin_plugins[];

static char *tmp_root;

/* This program holds the fixture descriptors twice on purpose (linked in, and in the module files it loads):
 * AddressSanitizer's one-definition-rule check would abort on that. Read only when built with ASan. */
__attribute__((used, visibility("default"))) const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "detect_odr_violation=0"; }

/* ---- helpers ------------------------------------------------------------------------------------------- */

static void expect_parts(const ferry_error *e, int code, const char *const *parts) {
  CHECK(e->code == code, "expected code %s, got %s: %s", ferry_err_name(code), ferry_err_name(e->code),
        e->message ? e->message : "(no message)");
  CHECK(e->message, "no message");
  for (size_t i = 0; parts[i]; i++)
    CHECK(strstr(e->message, parts[i]), "message lacks \"%s\":\n  %s", parts[i], e->message);
}

static char *fixture(const char *id) { return ferry_asprintf("%s/ferry_%s.so", FIXTURE_DIR, id); }

static char *mkdir_tmp(const char *name) {
  char *d = ferry_asprintf("%s/%s", tmp_root, name);
  CHECK(mkdir(d, 0755) == 0 || errno == EEXIST, "mkdir %s: %s", d, strerror(errno));
  return d;
}

static void copy_file(const char *from, const char *to) {
  FILE *in = fopen(from, "rb");
  CHECK(in, "open %s: %s", from, strerror(errno));
  FILE *out = fopen(to, "wb");
  CHECK(out, "create %s: %s", to, strerror(errno));
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, in)) > 0) CHECK(fwrite(buf, 1, n, out) == n, "write %s", to);
  CHECK(!ferror(in), "read %s", from);
  fclose(in);
  CHECK(fclose(out) == 0, "close %s", to);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "wb");
  CHECK(f, "create %s: %s", path, strerror(errno));
  fputs(text, f);
  CHECK(fclose(f) == 0, "close %s", path);
}

/* ---- the wrong-on-purpose fixtures ------------------------------------------------------------------- */

typedef struct bad_case {
  const char *id;
  const ferry_plugin *desc;
  const char *parts[4]; /* expected and found values, NULL-terminated */
} bad_case;

static bad_case bad_cases[8];
static char part_buf[8][4][200];

static void init_bad_cases(void) {
  int i = 0;
#define PART(j, ...) (snprintf(part_buf[i][j], sizeof part_buf[i][j], __VA_ARGS__), part_buf[i][j])
  bad_cases[i] = (bad_case){"bad_major", &ferry_plugin_bad_major,
                            {PART(0, "ABI major %d is not supported", FERRY_ABI_MAJOR + 1),
                             PART(1, "(this ferry has ABI %d.%d)", FERRY_ABI_MAJOR, FERRY_ABI_MINOR), NULL}};
  i++;
  bad_cases[i] = (bad_case){"bad_minor", &ferry_plugin_bad_minor,
                            {PART(0, "ABI %d.%d is newer", FERRY_ABI_MAJOR, FERRY_ABI_MINOR + 1),
                             PART(1, "than this ferry's ABI %d.%d", FERRY_ABI_MAJOR, FERRY_ABI_MINOR), NULL}};
  i++;
  bad_cases[i] = (bad_case){"bad_short", &ferry_plugin_bad_short,
                            {PART(0, "descriptor size %zu bytes is too short",
                                  offsetof(ferry_plugin, name) + sizeof(char *)),
                             PART(1, "expected at least %zu", (size_t)FERRY_PLUGIN_MIN_SIZE), NULL}};
  i++;
  bad_cases[i] = (bad_case){"bad_noname", &ferry_plugin_bad_noname,
                            {"has no name", "found NULL", NULL}};
  i++;
  bad_cases[i] = (bad_case){"bad_name", &ferry_plugin_bad_name,
                            {"name \"other_name\" does not match", "(expected \"bad_name\")", NULL}};
  i++;
  bad_cases[i] = (bad_case){"bad_kind", &ferry_plugin_bad_kind,
                            {"unknown kind bits 0x10", "known kinds: source 0x1, sink 0x2, hook 0x4",
                             "found kinds 0x11", NULL}};
  i++;
  bad_cases[i] = (bad_case){"bad_ops", &ferry_plugin_bad_ops,
                            {"declares kind sink but has no sink callback table",
                             "expected .sink = a ferry_sink_ops, found NULL", NULL}};
  i++;
#undef PART
}
#define NBAD 7

/* Every parts list plus file and symbol. */
static void expect_refusal(const ferry_error *e, const char *file_part, const bad_case *c) {
  char symbol_part[128];
  snprintf(symbol_part, sizeof symbol_part, ", symbol ferry_plugin_%s: ", c->id);
  const char *head[] = {file_part, symbol_part, NULL};
  expect_parts(e, FERRY_EABI, head);
  expect_parts(e, FERRY_EABI, c->parts);
  /* the file comes first, then the symbol */
  CHECK(strstr(e->message, file_part) < strstr(e->message, symbol_part), "order: %s", e->message);
}

/* Each refusal through ferry__registry_find on the module. */
static void case_module_find(void) {
  for (int i = 0; i < NBAD; i++) {
    const bad_case *c = &bad_cases[i];
    ferry_registry *reg = ferry__registry_new();
    ferry__registry_add_dir(reg, FIXTURE_DIR);
    ferry_error e = FERRY_ERROR_INIT;
    CHECK(ferry__registry_find(reg, c->id, &e) == NULL, "%s was accepted", c->id);
    char *path = fixture(c->id);
    char *file_part = ferry_asprintf("plugin file %s", path);
    expect_refusal(&e, file_part, c);
    CHECK(ferry__registry_count(reg) == 0, "a refused plugin was registered");
    printf("find %-10s -> %s\n", c->id, e.message);
    free(file_part);
    free(path);
    ferry_error_clear(&e);
    ferry__registry_free(reg);
  }
}

/* Each refusal through ferry__registry_load_file, with the name given and with the name from the file. */
static void case_module_load_file(void) {
  for (int i = 0; i < NBAD; i++) {
    const bad_case *c = &bad_cases[i];
    for (int named = 0; named < 2; named++) {
      ferry_registry *reg = ferry__registry_new();
      char *path = fixture(c->id);
      ferry_error e = FERRY_ERROR_INIT;
      CHECK(ferry__registry_load_file(reg, path, named ? c->id : NULL, &e) == NULL, "%s was accepted", c->id);
      char *file_part = ferry_asprintf("plugin file %s", path);
      expect_refusal(&e, file_part, c);
      CHECK(ferry__registry_count(reg) == 0, "a refused plugin was registered");
      free(file_part);
      free(path);
      ferry_error_clear(&e);
      ferry__registry_free(reg);
    }
  }
}

/* Each refusal through ferry__registry_add_builtin on the same descriptors linked into this program. */
static void case_builtin(void) {
  for (int i = 0; i < NBAD; i++) {
    const bad_case *c = &bad_cases[i];
    ferry_registry *reg = ferry__registry_new();
    ferry_error e = FERRY_ERROR_INIT;
    CHECK(ferry__registry_add_builtin(reg, c->desc, "test-fixture", &e) != 0, "%s was accepted", c->id);
    expect_refusal(&e, "plugin test-fixture", c);
    CHECK(ferry__registry_count(reg) == 0, "a refused plugin was registered");
    printf("builtin %-10s -> %s\n", c->id, e.message);
    ferry_error_clear(&e);
    /* the default origin */
    CHECK(ferry__registry_add_builtin(reg, c->desc, NULL, &e) != 0, "%s was accepted", c->id);
    expect_refusal(&e, "built-in plugin", c);
    ferry_error_clear(&e);
    ferry__registry_free(reg);
  }
}

/* The good fixture, both ways, and how the registry holds entries. */
static void case_good(void) {
  ferry_error e = FERRY_ERROR_INIT;
  ferry_registry *reg = ferry__registry_new();
  ferry__registry_add_dir(reg, FIXTURE_DIR);
  const ferry_plugin_entry *g = ferry__registry_find(reg, "good", &e);
  CHECK(g, "good refused: %s", e.message);
  char *path = fixture("good");
  CHECK(strcmp(g->origin, path) == 0, "origin %s", g->origin);
  CHECK(!g->builtin, "module marked built-in");
  CHECK(strcmp(g->plugin->name, "good") == 0 && strcmp(g->plugin->version, "1.2.3") == 0, "descriptor");
  CHECK(g->plugin != &ferry_plugin_good, "the module's descriptor must be the module's own copy");
  CHECK(g->plugin->kinds == (FERRY_KIND_SOURCE | FERRY_KIND_SINK | FERRY_KIND_HOOK), "kinds");
  CHECK(ferry__registry_find(reg, "good", &e) == g, "second find gives another entry");
  CHECK(ferry__registry_load_file(reg, path, NULL, &e) == g, "load_file of the same file gives another entry");
  CHECK(ferry__registry_count(reg) == 1 && ferry__registry_at(reg, 0) == g && !ferry__registry_at(reg, 1), "at");

  /* '-' in names is '_' in file and symbol names */
  const ferry_plugin_entry *d = ferry__registry_find(reg, "dash-name", &e);
  CHECK(d, "dash-name refused: %s", e.message);
  CHECK(strcmp(d->plugin->name, "dash-name") == 0, "name %s", d->plugin->name);
  CHECK(ferry__registry_find(reg, "dash_name", &e) == d, "dash_name is the same plugin");
  CHECK(ferry__registry_count(reg) == 2, "count");

  /* a second file with a plugin of the same name is refused */
  char *dir = mkdir_tmp("dup");
  char *copy = ferry_asprintf("%s/ferry_good.so", dir);
  copy_file(path, copy);
  CHECK(!ferry__registry_load_file(reg, copy, "good", &e), "duplicate accepted");
  const char *dup_parts[] = {copy, "a plugin named \"good\" is already registered", path, NULL};
  expect_parts(&e, FERRY_EABI, dup_parts);
  ferry_error_clear(&e);
  ferry__registry_free(reg);

  /* built-in: accepted, and found before any module of the same name */
  reg = ferry__registry_new();
  ferry__registry_add_dir(reg, FIXTURE_DIR);
  CHECK(ferry__registry_add_builtin(reg, &ferry_plugin_good, NULL, &e) == 0, "good built-in: %s", e.message);
  g = ferry__registry_find(reg, "good", &e);
  CHECK(g && g->builtin && g->plugin == &ferry_plugin_good && strcmp(g->origin, "built-in") == 0,
        "built-in not found first");
  CHECK(ferry__registry_add_builtin(reg, &ferry_plugin_good, "again", &e) != 0, "duplicate built-in accepted");
  const char *dup2[] = {"plugin again, symbol ferry_plugin_good: ", "already registered (from built-in)",
                        NULL};
  expect_parts(&e, FERRY_EABI, dup2);
  ferry_error_clear(&e);
  CHECK(ferry__registry_add_builtin(reg, &ferry_plugin_dash_name, "mine", &e) == 0, "%s", e.message);
  CHECK(strcmp(ferry__registry_find(reg, "dash-name", &e)->origin, "mine") == 0, "origin kept");
  ferry__registry_free(reg);
  free(copy);
  free(dir);
  free(path);
}

/* "not found in <dirs>" vs "found but could not be opened" vs "opened but has no symbol". */
static void case_errors(void) {
  ferry_error e = FERRY_ERROR_INIT;
  char *a = mkdir_tmp("err-a"), *b = mkdir_tmp("err-b");
  ferry_registry *reg = ferry__registry_new();

  CHECK(!ferry__registry_find(reg, "good", &e), "found without any directory");
  const char *none[] = {"plugin \"good\" is not built in", "no plugin directory is configured", NULL};
  expect_parts(&e, FERRY_ENOENT, none);
  ferry_error_clear(&e);

  ferry__registry_add_dir(reg, a);
  ferry__registry_add_dir(reg, b);
  ferry__registry_add_dir(reg, a); /* duplicates are dropped */
  CHECK(!ferry__registry_find(reg, "missing", &e), "missing found");
  char *dirs = ferry_asprintf("was not found in %s, %s (searched in this order", a, b);
  const char *nf[] = {"plugin \"missing\" is not built in", "ferry_missing.so", dirs, NULL};
  expect_parts(&e, FERRY_ENOENT, nf);
  printf("not found -> %s\n", e.message);
  ferry_error_clear(&e);

  char *broken = ferry_asprintf("%s/ferry_broken.so", b);
  write_file(broken, "this is not a shared object\n");
  CHECK(!ferry__registry_find(reg, "broken", &e), "broken accepted");
  char *p1 = ferry_asprintf("plugin file %s was found but could not be opened: ", broken);
  const char *br[] = {p1, "ldd", NULL};
  expect_parts(&e, FERRY_EIO, br);
  /* the dynamic linker's own words follow */
  CHECK(strstr(e.message, "ELF") || strstr(e.message, "too short"), "no reason given: %s", e.message);
  printf("broken -> %s\n", e.message);
  ferry_error_clear(&e);

  char *nosym = ferry_asprintf("%s/ferry_nosym.so", a);
  char *nosym_src = fixture("nosym");
  copy_file(nosym_src, nosym);
  CHECK(!ferry__registry_find(reg, "nosym", &e), "nosym accepted");
  char *p2 = ferry_asprintf("plugin file %s was opened but has no symbol ferry_plugin_nosym", nosym);
  const char *ns[] = {p2, NULL};
  expect_parts(&e, FERRY_EABI, ns);
  ferry_error_clear(&e);

  /* a module whose library is missing */
  CHECK(!ferry__registry_load_file(reg, FIXTURE_DIR "/ferry_needdep.so", NULL, &e), "needdep accepted");
  const char *nd[] = {"plugin file " FIXTURE_DIR "/ferry_needdep.so was found but could not be opened: ",
                      "libferry_fixture_dep.so: cannot open shared object file", NULL};
  expect_parts(&e, FERRY_EIO, nd);
  printf("needdep -> %s\n", e.message);
  ferry_error_clear(&e);

  /* a file whose name does not say which plugin it is */
  char *odd = ferry_asprintf("%s/libgood.so", a);
  char *good = fixture("good");
  copy_file(good, odd);
  CHECK(!ferry__registry_load_file(reg, odd, NULL, &e), "name guessed from libgood.so");
  const char *on[] = {"cannot tell the plugin name from the file name", odd, "ferry_<name>.so", NULL};
  expect_parts(&e, FERRY_EINVAL, on);
  ferry_error_clear(&e);
  /* ... but it loads when the name is given */
  const ferry_plugin_entry *g = ferry__registry_load_file(reg, odd, "good", &e);
  CHECK(g && strcmp(g->origin, odd) == 0, "named load of libgood.so: %s", e.message);

  /* a file that does not exist */
  char *gone = ferry_asprintf("%s/ferry_gone.so", a);
  CHECK(!ferry__registry_load_file(reg, gone, NULL, &e), "missing file loaded");
  const char *gn[] = {gone, "No such file", NULL};
  expect_parts(&e, FERRY_ENOENT, gn);
  ferry_error_clear(&e);

  /* names that cannot be plugin names never reach the file system */
  const char *bad_names[] = {"../good", "Good", "", "a b", "-x", "x/y", NULL};
  for (int i = 0; bad_names[i]; i++) {
    CHECK(!ferry__registry_find(reg, bad_names[i], &e), "name \"%s\" accepted", bad_names[i]);
    const char *bn[] = {"plugin name", "is not valid", NULL};
    expect_parts(&e, FERRY_EINVAL, bn);
    ferry_error_clear(&e);
  }
  CHECK(!ferry__registry_find(reg, NULL, &e), "NULL name accepted");
  ferry_error_clear(&e);

  ferry__registry_free(reg);
  free(gone);
  free(good);
  free(odd);
  free(p2);
  free(nosym_src);
  free(nosym);
  free(p1);
  free(broken);
  free(dirs);
  free(a);
  free(b);
}

/* Search path order: added directories (config plugin_path) first, then $FERRY_PLUGIN_PATH, then the build
 * tree, then the install directory; the first file found wins, even when it is refused. */
static void case_search_order(void) {
  ferry_error e = FERRY_ERROR_INIT;
  char *a = mkdir_tmp("ord-a"), *b = mkdir_tmp("ord-b"), *c = mkdir_tmp("ord-c"), *empty = mkdir_tmp("ord-e");
  char *good = fixture("good");
  char *ga = ferry_asprintf("%s/ferry_good.so", a), *gb = ferry_asprintf("%s/ferry_good.so", b);
  copy_file(good, ga);
  copy_file(good, gb);

  ferry_registry *reg = ferry__registry_new();
  ferry__registry_add_dir(reg, a);
  ferry__registry_add_dir(reg, b);
  const ferry_plugin_entry *g = ferry__registry_find(reg, "good", &e);
  CHECK(g && strcmp(g->origin, ga) == 0, "a first: %s", g ? g->origin : e.message);
  ferry__registry_free(reg);

  reg = ferry__registry_new();
  ferry__registry_add_dir(reg, b);
  ferry__registry_add_dir(reg, a);
  g = ferry__registry_find(reg, "good", &e);
  CHECK(g && strcmp(g->origin, gb) == 0, "b first: %s", g ? g->origin : e.message);
  ferry__registry_free(reg);

  /* FERRY_PLUGIN_PATH after the added directories, empty elements skipped */
  char *env = ferry_asprintf("%s::%s:", empty, b);
  setenv("FERRY_PLUGIN_PATH", env, 1);
  reg = ferry__registry_new();
  ferry__registry_add_dir(reg, c);
  ferry__registry_add_default_dirs(reg);
  g = ferry__registry_find(reg, "good", &e);
  CHECK(g && strcmp(g->origin, gb) == 0, "FERRY_PLUGIN_PATH: %s", g ? g->origin : e.message);
  CHECK(!ferry__registry_find(reg, "missing", &e), "missing found");
  /* the whole default path, in order: added, $FERRY_PLUGIN_PATH, build tree (when it exists), install dir */
  struct stat st;
  int have_build_dir = stat(BUILD_PLUGIN_DIR, &st) == 0 && S_ISDIR(st.st_mode);
  char *order = ferry_asprintf("not found in %s, %s, %s, %s%s%s (searched", c, empty, b,
                                have_build_dir ? BUILD_PLUGIN_DIR : "", have_build_dir ? ", " : "",
                                INSTALL_PLUGIN_DIR);
  const char *op[] = {order, NULL};
  expect_parts(&e, FERRY_ENOENT, op);
  ferry_error_clear(&e);
  ferry__registry_free(reg);

  /* an added directory wins over FERRY_PLUGIN_PATH */
  reg = ferry__registry_new();
  ferry__registry_add_dir(reg, a);
  ferry__registry_add_default_dirs(reg);
  g = ferry__registry_find(reg, "good", &e);
  CHECK(g && strcmp(g->origin, ga) == 0, "added dir first: %s", g ? g->origin : e.message);
  ferry__registry_free(reg);

  /* without FERRY_PLUGIN_PATH: build tree (when it exists), install dir */
  unsetenv("FERRY_PLUGIN_PATH");
  reg = ferry__registry_new();
  ferry__registry_add_default_dirs(reg);
  CHECK(!ferry__registry_find(reg, "missing", &e), "missing found");
  free(order);
  order = ferry_asprintf("not found in %s%s%s (searched", have_build_dir ? BUILD_PLUGIN_DIR : "",
                          have_build_dir ? ", " : "", INSTALL_PLUGIN_DIR);
  const char *op2[] = {order, NULL};
  expect_parts(&e, FERRY_ENOENT, op2);
  ferry_error_clear(&e);
  ferry__registry_free(reg);

  /* the first file found wins even when it is refused: a broken ferry_good.so in c hides the one in a */
  char *gc = ferry_asprintf("%s/ferry_good.so", c);
  char *major = fixture("bad_major");
  copy_file(major, gc);
  reg = ferry__registry_new();
  ferry__registry_add_dir(reg, c);
  ferry__registry_add_dir(reg, a);
  CHECK(!ferry__registry_find(reg, "good", &e), "a later directory was used");
  char *p = ferry_asprintf("plugin file %s was opened but has no symbol ferry_plugin_good", gc);
  const char *pp[] = {p, NULL};
  expect_parts(&e, FERRY_EABI, pp);
  ferry_error_clear(&e);
  ferry__registry_free(reg);

  free(p);
  free(major);
  free(gc);
  free(order);
  free(env);
  free(ga);
  free(gb);
  free(good);
  free(a);
  free(b);
  free(c);
  free(empty);
}

typedef struct scan_log {
  char *paths[32];
  char *messages[32];
  size_t n;
} scan_log;

static void on_bad(void *arg, const char *path, const ferry_error *e) {
  scan_log *log = arg;
  CHECK(log->n < 32, "too many reports");
  log->paths[log->n] = ferry_strdup(path);
  log->messages[log->n] = ferry_strdup(e->message);
  log->n++;
}

/* ferry__registry_scan loads every ferry_*.so of the search path and reports the refused ones. */
static void case_scan(void) {
  char *a = mkdir_tmp("scan-a");
  char *good = fixture("good"), *ga = ferry_asprintf("%s/ferry_good.so", a);
  copy_file(good, ga);
  char *other = ferry_asprintf("%s/not-a-plugin.so", a); /* ignored: not ferry_*.so */
  write_file(other, "x");

  ferry_registry *reg = ferry__registry_new();
  ferry_error e = FERRY_ERROR_INIT;
  CHECK(ferry__registry_add_builtin(reg, &ferry_plugin_dash_name, NULL, &e) == 0, "%s", e.message);
  ferry__registry_add_dir(reg, a);
  ferry__registry_add_dir(reg, FIXTURE_DIR);
  scan_log log = {0};
  ferry__registry_scan(reg, on_bad, &log);
  /* dash_name is built in (the module is shadowed), good comes from a (the fixture copy is shadowed),
   * old_layout (built for ABI 1.2) is taken */
  CHECK(ferry__registry_count(reg) == 3, "count %zu", ferry__registry_count(reg));
  CHECK(ferry__registry_find(reg, "old_layout", &e), "old_layout not found: %s", e.message);
  const ferry_plugin_entry *g = ferry__registry_find(reg, "good", &e);
  CHECK(g && strcmp(g->origin, ga) == 0, "good from %s", g ? g->origin : e.message);
  CHECK(ferry__registry_find(reg, "dash-name", &e)->builtin, "dash-name not the built-in");
  /* every bad fixture and nosym reported, in file name order, with its path in the message */
  CHECK(log.n == NBAD + 2, "%zu reports", log.n);
  const char *expected[] = {"bad_kind", "bad_major", "bad_minor", "bad_name", "bad_noname", "bad_ops",
                            "bad_short", "needdep", "nosym"};
  for (size_t i = 0; i < log.n; i++) {
    char *path = fixture(expected[i]);
    CHECK(strcmp(log.paths[i], path) == 0, "report %zu: %s, expected %s", i, log.paths[i], path);
    CHECK(strstr(log.messages[i], path), "message lacks the path: %s", log.messages[i]);
    free(path);
    free(log.paths[i]);
    free(log.messages[i]);
  }
  ferry__registry_free(reg);
  free(other);
  free(ga);
  free(good);
  free(a);
}

/* The generated built-in table goes through the same check. */
static void case_static(void) {
  size_t n = 0;
  while (ferry__builtin_plugins[n]) n++;
  ferry_registry *reg = ferry__registry_new();
  ferry_error e = FERRY_ERROR_INIT;
  CHECK(ferry__registry_add_static(reg, &e) == 0, "built-in table refused: %s", e.message);
  CHECK(ferry__registry_count(reg) == n, "count %zu, table %zu", ferry__registry_count(reg), n);
  for (size_t i = 0; i < n; i++) {
    const ferry_plugin_entry *x = ferry__registry_at(reg, i);
    CHECK(x->builtin && x->plugin == ferry__builtin_plugins[i] && strcmp(x->origin, "built-in") == 0, "%zu",
          i);
  }
  CHECK(ferry__registry_add_static(reg, &e) != 0 || n == 0, "table added twice");
  ferry_error_clear(&e);
  printf("%zu built-in plugins\n", n);
  ferry__registry_free(reg);
}

/* ---- ferry__plugin_check on descriptors made here: the checks no fixture file covers -------------------- */

typedef struct t_ctx {
  char *s;
  int64_t i;
  int e;
} t_ctx;


static void t_demand(ferry_instance *ins, size_t n) {}
static void t_write(ferry_instance *ins, ferry_task *task) {}
static void t_fire(ferry_instance *ins, ferry_hook_event *ev) {}

static void expect_check(const ferry_plugin *p, const char *part) {
  ferry_error e = FERRY_ERROR_INIT;
  CHECK(ferry__plugin_check(p, "/x/ferry_t.so", "ferry_plugin_t", "t", &e) == FERRY_EABI, "accepted (%s)",
        part);
  const char *parts[] = {"plugin file /x/ferry_t.so, symbol ferry_plugin_t: ", part, NULL};
  expect_parts(&e, FERRY_EABI, parts);
  ferry_error_clear(&e);
}

static void case_check(void) {
  ferry_source_ops src = {.struct_size = sizeof src, .emits = FERRY_ITEM_RECORD, .demand = t_demand};
  ferry_sink_ops snk = {.struct_size = sizeof snk, .accepts = FERRY_ITEM_ALL, .write = t_write};
  ferry_hook_ops hk = {.struct_size = sizeof hk, .fire = t_fire};
  ferry_option opts[4] = {
    {.key = "s", FERRY_OPT_STRING, "\"x\"", FERRY_OPT_SECRET, offsetof(t_ctx, s), "s"},
    {.key = "i", FERRY_OPT_INT, "5", 0, offsetof(t_ctx, i), "i"},
    FERRY_OPTIONS_END,
    FERRY_OPTIONS_END,
  };
  const ferry_plugin ok = {.abi_major = FERRY_ABI_MAJOR, .abi_minor = FERRY_ABI_MINOR,
                           .struct_size = sizeof(ferry_plugin), .kinds = FERRY_KIND_ALL, .name = "t",
                           .version = "1", .description = "d", .license = "MIT", .options = opts,
                           .ctx_size = sizeof(t_ctx), .source = &src, .sink = &snk, .hook = &hk};
  ferry_error e = FERRY_ERROR_INIT;
  CHECK(ferry__plugin_check(&ok, "/x/ferry_t.so", "ferry_plugin_t", "t", &e) == 0, "ok refused: %s",
        e.message);
  CHECK(ferry__plugin_check(&ok, NULL, NULL, NULL, &e) == 0, "ok refused: %s", e.message);

  ferry_plugin p;
  ferry_source_ops s2;
  ferry_sink_ops k2;
  ferry_hook_ops h2;
  ferry_option o2[4];
#define RESET() (p = ok, s2 = src, k2 = snk, h2 = hk, memcpy(o2, opts, sizeof o2), p.source = &s2, \
                 p.sink = &k2, p.hook = &h2, p.options = o2)
  RESET(); p.struct_size = sizeof(ferry_plugin) + 8; expect_check(&p, "is larger than ABI");
  RESET(); p.flags = 4; expect_check(&p, "unknown flags 0x4 (expected 0)");
  RESET(); p.name = "T x"; expect_check(&p, "the name \"T x\" is not valid");
  RESET(); p.name = "\x01oops"; expect_check(&p, "the name \"\\x01oops\" is not valid");
  RESET(); p.version = NULL; expect_check(&p, "no version (expected a string, found NULL)");
  RESET(); p.description = NULL; expect_check(&p, "no description");
  RESET(); p.license = NULL; expect_check(&p, "no license");
  RESET(); p.kinds = 0; expect_check(&p, "declares no kind");
  RESET(); p.kinds = FERRY_KIND_SINK;
  expect_check(&p, "has a source callback table but does not declare kind source (kinds 0x2)");
  RESET(); p.source = NULL; expect_check(&p, "declares kind source but has no source callback table");
  RESET(); p.hook = NULL; expect_check(&p, "declares kind hook but has no hook callback table");
  RESET(); s2.struct_size = 8; expect_check(&p, "source callback table size is 8 bytes (expected");
  RESET(); k2.struct_size = 4096; expect_check(&p, "sink callback table size is 4096 bytes");
  RESET(); h2.struct_size = 0; expect_check(&p, "hook callback table size is 0 bytes");
  RESET(); s2.demand = NULL; expect_check(&p, "source callback table has no demand() (required, found NULL)");
  RESET(); k2.write = NULL; expect_check(&p, "sink callback table has no write()");
  RESET(); h2.fire = NULL; expect_check(&p, "hook callback table has no fire()");
  RESET(); s2.emits = 0; expect_check(&p, "source (emits) declares no item kind");
  RESET(); k2.accepts = 0x40; expect_check(&p, "sink (accepts) has unknown item kind bits 0x40");
  RESET(); p.ctx_size = 0; expect_check(&p, "has an options table but ctx_size 0");
  RESET(); p.ctx_size = 12; expect_check(&p, "option \"i\" (8 bytes at offset 8) does not fit in the context "
                                         "(expected an offset within ctx_size 12)");
  RESET(); o2[1].type = (ferry_opt_type)9; expect_check(&p, "option \"i\" has unknown type 9");
  RESET(); o2[1].flags = 0x10; expect_check(&p, "option \"i\" has unknown flags 0x10");
  RESET(); o2[1].default_json = "{"; expect_check(&p, "option \"i\" has a default that is not valid JSON");
  RESET(); o2[1].default_json = "\"5\""; expect_check(&p, "option \"i\" has the default \"\\\"5\\\"\" "
                                                      "(expected an integer)");
  RESET(); o2[1].key = "s"; expect_check(&p, "option \"s\" is declared twice");
  RESET(); o2[1].key = "a b"; expect_check(&p, "option 1 has an invalid key \"a b\"");
  RESET(); o2[2] = o2[1]; o2[2].key = "j"; o2[2].type = FERRY_OPT_STRING_LIST;
  o2[2].default_json = "[\"a\", 1]";
  expect_check(&p, "option \"j\" has the default");
  RESET(); o2[2] = o2[1]; o2[2].key = "j"; o2[2].type = FERRY_OPT_STRING_LIST; o2[2].default_json = "[\"a\"]";
  CHECK(ferry__plugin_check(&p, "f", "s", "t", &e) == 0, "string list default refused: %s", e.message);
  RESET(); p.name = "t-x";
  CHECK(ferry__plugin_check(&p, "f", "s", "t_x", &e) == 0, "t-x vs t_x: %s", e.message);
  RESET(); p.name = "u"; expect_check(&p, "the descriptor's name \"u\" does not match (expected \"t\")");
  /* the checks of ABI 1.3: enums, ranges, non-empty, roles, deprecated keys */
  static const ferry_opt_choice ch[] = {{"a", 1}, {"b", 2}, {"bee", 2}, {NULL, 0}};
  static const ferry_opt_choice ch_dup[] = {{"a", 1}, {"a", 2}, {NULL, 0}};
  static const ferry_opt_choice ch_empty[] = {{"", 1}, {NULL, 0}};
#define ENUM_E() (o2[2] = (ferry_option){.key = "e", .type = FERRY_OPT_ENUM, .default_json = "\"b\"", \
                                         .offset = offsetof(t_ctx, e), .choices = ch})
  RESET(); ENUM_E(); CHECK(ferry__plugin_check(&p, "f", "s", "t", &e) == 0, "enum refused: %s", e.message);
  RESET(); ENUM_E(); o2[2].choices = NULL; expect_check(&p, "option \"e\" is an enum without choices");
  RESET(); ENUM_E(); o2[2].choices = ch_dup; expect_check(&p, "option \"e\": choice \"a\" is declared twice");
  RESET(); ENUM_E(); o2[2].choices = ch_empty; o2[2].default_json = NULL;
  expect_check(&p, "option \"e\": choice 0 has an empty name");
  RESET(); ENUM_E(); o2[2].default_json = "\"c\""; expect_check(&p, "the default \"c\", which is not one of");
  RESET(); ENUM_E(); o2[2].default_json = "2"; expect_check(&p, "option \"e\" has the default \"2\" (expected");
  RESET(); ENUM_E(); o2[2].flags = FERRY_OPT_SECRET; expect_check(&p, "option \"e\" is an enum and FERRY_OPT_SECRET");
  RESET(); ENUM_E(); p.ctx_size = offsetof(t_ctx, e) + 2; expect_check(&p, "option \"e\" (4 bytes at offset");
  RESET(); o2[1].choices = ch; expect_check(&p, "option \"i\" has choices but is an integer");
  RESET(); o2[1].flags = FERRY_OPT_RANGE; o2[1].min = 1; o2[1].max = 9;
  CHECK(ferry__plugin_check(&p, "f", "s", "t", &e) == 0, "range refused: %s", e.message);
  RESET(); o2[1].flags = FERRY_OPT_RANGE; o2[1].min = 6; o2[1].max = 9;
  expect_check(&p, "option \"i\" has the default 5 outside its range 6..9");
  RESET(); o2[1].flags = FERRY_OPT_RANGE; o2[1].min = 9; o2[1].max = 1;
  expect_check(&p, "option \"i\" has the range 9..1 (expected min <= max)");
  RESET(); o2[0].flags |= FERRY_OPT_RANGE; expect_check(&p, "option \"s\" has FERRY_OPT_RANGE but is a string");
  RESET(); o2[1].flags = FERRY_OPT_NONEMPTY; expect_check(&p, "option \"i\" has FERRY_OPT_NONEMPTY but is an integer");
  RESET(); o2[0].flags |= FERRY_OPT_NONEMPTY;
  CHECK(ferry__plugin_check(&p, "f", "s", "t", &e) == 0, "non-empty refused: %s", e.message);
  RESET(); o2[0].flags |= FERRY_OPT_NONEMPTY; o2[0].default_json = "\"\"";
  expect_check(&p, "option \"s\" has FERRY_OPT_NONEMPTY and an empty default");
  RESET(); o2[2] = o2[1]; o2[2].key = "j"; o2[2].type = FERRY_OPT_STRING_LIST; o2[2].default_json = "[\"a\", \"\"]";
  o2[2].flags = FERRY_OPT_NONEMPTY; expect_check(&p, "option \"j\" has FERRY_OPT_NONEMPTY and an empty default");
  RESET(); o2[1].roles = FERRY_KIND_SINK;
  CHECK(ferry__plugin_check(&p, "f", "s", "t", &e) == 0, "roles refused: %s", e.message);
  RESET(); p.kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK; p.hook = NULL; o2[1].roles = FERRY_KIND_HOOK;
  expect_check(&p, "option \"i\" has roles 0x4 outside the plugin's kinds 0x3");
  RESET(); o2[1].deprecated_key = "old_i";
  CHECK(ferry__plugin_check(&p, "f", "s", "t", &e) == 0, "deprecated key refused: %s", e.message);
  RESET(); o2[1].deprecated_key = "s"; expect_check(&p, "its deprecated key \"s\" is already the name of option \"s\"");
  RESET(); o2[1].deprecated_key = "i"; expect_check(&p, "option \"i\" has itself as its deprecated key");
  RESET(); o2[0].deprecated_key = "i"; expect_check(&p, "option \"i\" is already the deprecated key of option \"s\"");
  RESET(); o2[0].deprecated_key = "x"; o2[1].deprecated_key = "x";
  expect_check(&p, "its deprecated key \"x\" is already the name of option \"s\"");
  RESET(); o2[1].deprecated_key = "a b"; expect_check(&p, "option \"i\" has an invalid deprecated key \"a b\"");
#undef ENUM_E
  /* ABI minor: every older one is taken (a 1.2 plugin runs on this 1.3 ferry), a newer one refused. A plugin
   * built for a minor before 1.3 has its options table in the 1.0 layout, read with that stride. */
  option_1_0 old_opts[] = {
      {"s", FERRY_OPT_STRING, "\"x\"", FERRY_OPT_SECRET, offsetof(t_ctx, s), "s"},
      {"i", FERRY_OPT_INT, "5", 0, offsetof(t_ctx, i), "i"},
      {NULL, (ferry_opt_type)0, NULL, 0, 0, NULL}};
  for (unsigned m = 0; m <= FERRY_ABI_MINOR; m++) {
    RESET(); p.abi_minor = m;
    if (m < 3) p.options = (const ferry_option *)(const void *)old_opts;
    CHECK(ferry__plugin_check(&p, "f", "s", "t", &e) == 0, "ABI %d.%u refused: %s", FERRY_ABI_MAJOR, m, e.message);
  }
  /* the old layout knows neither the new type nor the new flags */
  RESET(); p.abi_minor = 2; p.options = (const ferry_option *)(const void *)old_opts; old_opts[1].type = FERRY_OPT_ENUM;
  expect_check(&p, "option \"i\" has type FERRY_OPT_ENUM, which ABI 1.2 does not have (since 1.3)");
  old_opts[1].type = FERRY_OPT_INT; old_opts[1].flags = FERRY_OPT_RANGE;
  expect_check(&p, "option \"i\" has unknown flags 0x8 (expected FERRY_OPT_REQUIRED 0x1, FERRY_OPT_SECRET 0x2)");
  old_opts[1].flags = 0;
  CHECK(FERRY_ABI_MAJOR == 1 && FERRY_ABI_MINOR == 6, "this test expects ABI 1.6, the headers say %d.%d",
        FERRY_ABI_MAJOR, FERRY_ABI_MINOR);
  RESET(); p.abi_minor = FERRY_ABI_MINOR + 1; expect_check(&p, "ABI 1.7 is newer than this ferry's ABI 1.6");
  RESET(); p.options = NULL; p.ctx_size = 0;
  CHECK(ferry__plugin_check(&p, "f", "s", "t", &e) == 0, "no options: %s", e.message);
  expect_check(NULL, "descriptor address is NULL");
#undef RESET
}

/* A plugin built for ABI 1.2 has its options table in the 1.0 layout: the registry hands out its
 * descriptor with the table in this ferry's layout, and the options work (module and built-in alike). */
typedef struct old_ctx {
  char *path;
  int64_t count;
  int verbose;
} old_ctx;

static void check_old_entry(const ferry_plugin_entry *x, const ferry_plugin *raw) {
  const ferry_plugin *p = x->plugin;
  CHECK(p->abi_minor == 2 && !strcmp(p->name, "old_layout") && p->source && p->ctx_size == sizeof(old_ctx),
        "descriptor");
  CHECK(p != raw && p->options != raw->options, "the table was not converted (still the plugin's own)");
  const char *keys[] = {"path", "count", "verbose"}, *helps[] = {"a path", "how many", "talk more"};
  for (size_t i = 0; i < 3; i++) {
    const ferry_option *o = &p->options[i];
    CHECK(o->key && !strcmp(o->key, keys[i]) && o->help && !strcmp(o->help, helps[i]), "option %zu: %s", i,
          o->key ? o->key : "(null)");
    CHECK(!o->roles && !o->choices && !o->min && !o->max && !o->deprecated_key, "option %zu: 1.3 fields not zero",
          i);
  }
  CHECK(p->options[1].type == FERRY_OPT_INT && !strcmp(p->options[1].default_json, "7") &&
            p->options[1].offset == offsetof(old_ctx, count),
        "count");
  CHECK(p->options[0].flags == FERRY_OPT_REQUIRED && !p->options[3].key, "flags, end");
  ferry_error e = FERRY_ERROR_INIT;
  json_t *opts = json_pack("{ss}", "path", "/data");
  ferry_instance *ins = ferry__instance_create(p, FERRY_KIND_SOURCE, "st", NULL, FERRY_MODE_RUN, opts, NULL, &e);
  CHECK(ins, "instance refused: %s", e.message);
  old_ctx *c = ferry_instance_ctx(ins);
  CHECK(!strcmp(c->path, "/data") && c->count == 7 && c->verbose == 1, "options applied: %s %lld %d", c->path,
        (long long)c->count, c->verbose);
  ferry__instance_destroy(ins);
  json_decref(opts);
  opts = json_pack("{si}", "count", 2);
  CHECK(!ferry__instance_create(p, FERRY_KIND_SOURCE, "st", NULL, FERRY_MODE_RUN, opts, NULL, &e),
        "missing required key accepted");
  CHECK(e.message && strstr(e.message, "missing required key \"path\" (a path)"), "message: %s", e.message);
  ferry_error_clear(&e);
  json_decref(opts);
  json_t *d = ferry__plugin_describe(p);
  json_t *dopts = json_object_get(d, "options");
  CHECK(json_array_size(dopts) == 3 &&
            !strcmp(json_string_value(json_object_get(json_array_get(dopts, 2), "key")), "verbose"),
        "describe");
  json_decref(d);
}

static void case_old_layout(void) {
  ferry_error e = FERRY_ERROR_INIT;
  ferry_registry *reg = ferry__registry_new();
  ferry__registry_add_dir(reg, FIXTURE_DIR);
  const ferry_plugin_entry *m = ferry__registry_find(reg, "old_layout", &e);
  CHECK(m, "the 1.2 module refused: %s", e.message);
  CHECK(!m->builtin, "module");
  void *lib = dlopen(m->origin, RTLD_NOW | RTLD_NOLOAD);
  CHECK(lib, "the module is not loaded: %s", dlerror());
  const ferry_plugin *raw = dlsym(lib, "ferry_plugin_old_layout");
  CHECK(raw && raw != &ferry_plugin_old_layout, "the module's own descriptor");
  check_old_entry(m, raw);
  dlclose(lib);
  ferry__registry_free(reg);
  reg = ferry__registry_new();
  CHECK(ferry__registry_add_builtin(reg, &ferry_plugin_old_layout, NULL, &e) == 0, "the 1.2 built-in refused: %s",
        e.message);
  check_old_entry(ferry__registry_at(reg, 0), &ferry_plugin_old_layout);
  ferry__registry_free(reg);
}

/* ---- the public listing and description (ferry/runtime.h): what `ferry plugins` shows -------------------- */
static json_t *by_name(json_t *list, const char *name) {
  size_t i;
  json_t *e;
  json_array_foreach(list, i, e) if (!strcmp(json_string_value(json_object_get(e, "name")), name)) return e;
  return NULL;
}

static void case_runtime_api(void) {
  char *a = mkdir_tmp("api-a");
  char *good = fixture("good"), *ga = ferry_asprintf("%s/ferry_good.so", a);
  copy_file(good, ga);
  const char *dirs[] = {a, FIXTURE_DIR, NULL};
  ferry_runtime_opts ro = {.struct_size = sizeof ro, .plugin_path = dirs, .no_default_path = 1};
  ferry_error e = FERRY_ERROR_INIT;
  ferry_runtime *rt = ferry_runtime_new(&ro, &e);
  CHECK(rt, "runtime: %s", e.message);
  CHECK(ferry_runtime_add_plugin(rt, &ferry_plugin_dash_name, &e) == 0, "add dash_name: %s", e.message);
  json_t *all = ferry_runtime_plugins(rt, &e);
  CHECK(all, "plugins: %s", e.message);
  json_t *list = json_object_get(all, "plugins"), *refused = json_object_get(all, "refused");
  size_t nbuiltin = 0;
  while (ferry__builtin_plugins[nbuiltin]) nbuiltin++;
  /* the built-in table, dash-name (added: its module is shadowed), good from `a` (the fixture's copy is
   * shadowed), old_layout (a module built for ABI 1.2) */
  CHECK(json_array_size(list) == nbuiltin + 3, "%zu plugins", json_array_size(list));
  CHECK(by_name(list, "old_layout"), "the 1.2 module is not listed");
  json_t *g = by_name(list, "good"), *d = by_name(list, "dash-name");
  CHECK(g && !strcmp(json_string_value(json_object_get(g, "origin")), ga), "good from %s",
        g ? json_string_value(json_object_get(g, "origin")) : "nowhere");
  char *kinds = json_dumps(json_object_get(g, "kinds"), JSON_COMPACT);
  CHECK(!strcmp(kinds, "[\"source\",\"sink\",\"hook\"]"), "kinds %s", kinds);
  free(kinds);
  CHECK(!strcmp(json_string_value(json_object_get(g, "version")), "1.2.3") &&
            !strcmp(json_string_value(json_object_get(g, "license")), "Apache-2.0") &&
            !strcmp(json_string_value(json_object_get(g, "description")), "loader test fixture"),
        "good's fields");
  CHECK(d && !strcmp(json_string_value(json_object_get(d, "origin")), "built-in"), "dash-name built in");
  /* every refused module: path, code and the loader's message naming the file */
  const char *expected[] = {"bad_kind", "bad_major", "bad_minor", "bad_name", "bad_noname",
                            "bad_ops",  "bad_short", "needdep",   "nosym"};
  CHECK(json_array_size(refused) == sizeof expected / sizeof *expected, "%zu refused",
        json_array_size(refused));
  for (size_t i = 0; i < json_array_size(refused); i++) {
    json_t *r = json_array_get(refused, i);
    char *path = fixture(expected[i]);
    const char *code = json_string_value(json_object_get(r, "code"));
    CHECK(!strcmp(json_string_value(json_object_get(r, "path")), path), "refused %zu: %s", i,
          json_string_value(json_object_get(r, "path")));
    CHECK(!strcmp(code, !strcmp(expected[i], "needdep") ? "EIO" : "EABI"), "%s: code %s", expected[i], code);
    CHECK(strstr(json_string_value(json_object_get(r, "error")), path), "message without the path");
    free(path);
  }
  json_decref(all);

  /* describe: the module found as a configuration finds it, with its options and origin */
  json_t *desc = ferry_runtime_describe_plugin(rt, "good", &e);
  CHECK(desc, "describe good: %s", e.message);
  CHECK(!strcmp(json_string_value(json_object_get(desc, "origin")), ga), "described from %s",
        json_string_value(json_object_get(desc, "origin")));
  json_t *opts = json_object_get(desc, "options");
  CHECK(json_array_size(opts) == 3 &&
            !strcmp(json_string_value(json_object_get(json_array_get(opts, 0), "key")), "path") &&
            json_is_true(json_object_get(json_array_get(opts, 0), "required")) &&
            json_integer_value(json_object_get(json_array_get(opts, 1), "default")) == 3,
        "options");
  CHECK(!strcmp(json_string_value(json_object_get(desc, "serves")), "any"), "serves");
  json_decref(desc);
  CHECK(!ferry_runtime_describe_plugin(rt, "bad-major", &e) && e.code == FERRY_EABI &&
            strstr(e.message, "ABI major"),
        "bad_major described: %s", e.message);
  ferry_error_clear(&e);
  CHECK(!ferry_runtime_describe_plugin(rt, "missing", &e) && e.code == FERRY_ENOENT && strstr(e.message, a) &&
            strstr(e.message, FIXTURE_DIR),
        "missing: %s", e.message);
  ferry_error_clear(&e);
  CHECK(!ferry_runtime_describe_plugin(rt, "Not Valid", &e) && e.code == FERRY_EINVAL, "bad name: %s",
        e.message);
  ferry_error_clear(&e);
  CHECK(!ferry_runtime_plugins(NULL, &e) && e.code == FERRY_EINVAL, "no runtime");
  ferry_error_clear(&e);
  CHECK(!ferry_runtime_settings(rt), "settings before a configuration");
  ferry_runtime_free(rt);
  free(ga);
  free(good);
  free(a);
}

static void remove_tmp_root(void) {
  if (!tmp_root) return;
  char *cmd = ferry_asprintf("rm -rf '%s'", tmp_root);
  if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmp_root);
  free(cmd);
  free(tmp_root);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s module_find|module_load_file|builtin|good|old_layout|errors|search_order|scan|static|"
            "check|runtime_api\n", argv[0]);
    return 2;
  }
  char tmpl[] = "/tmp/ferry-loader-test-XXXXXX";
  CHECK(mkdtemp(tmpl), "mkdtemp: %s", strerror(errno));
  tmp_root = ferry_strdup(tmpl); /* outlives main() for the atexit handler */
  atexit(remove_tmp_root); /* also when a check fails */
  unsetenv("FERRY_PLUGIN_PATH");
  init_bad_cases();
  const char *c = argv[1];
  if (!strcmp(c, "module_find")) case_module_find();
  else if (!strcmp(c, "module_load_file")) case_module_load_file();
  else if (!strcmp(c, "builtin")) case_builtin();
  else if (!strcmp(c, "good")) case_good();
  else if (!strcmp(c, "old_layout")) case_old_layout();
  else if (!strcmp(c, "errors")) case_errors();
  else if (!strcmp(c, "search_order")) case_search_order();
  else if (!strcmp(c, "scan")) case_scan();
  else if (!strcmp(c, "static")) case_static();
  else if (!strcmp(c, "check")) case_check();
  else if (!strcmp(c, "runtime_api")) case_runtime_api();
  else {
    fprintf(stderr, "unknown case %s\n", c);
    return 2;
  }
  /* this program links the core objects: the modules it opened bound to them, none brought in libferry */
  CHECK(ft_libferry_mapped() == 0, "%d libferry file(s) mapped: a second core in this process", ft_libferry_mapped());
  printf("ok %s\n", c);
  return 0;
}
