/* ferry core, layer "load": from a configuration to checked plugins and their instances (core/load:
 * config.c, options.c, registry.c + module.c (the loader), instance.c). Uses the base layer only.
 */
#ifndef FERRY_CORE_LOAD_H
#define FERRY_CORE_LOAD_H

#include "base/base.h"

/* ===== options.c ========================================================================================= */
/* Validates `options` (a JSON object, or NULL for none) against `table` and writes values into `ctx` (see
 * ferry/plugin.h for the field types). `where` names the place for messages, e.g.
 * "config.json: stages[0] \"forms\" sink \"pgsql\" options". Unknown key -> FERRY_ECONFIG naming the key and
 * listing the valid ones; wrong type -> naming key, expected and found type; missing required key; an enum
 * name not in the choices, an integer out of its range, an empty string or list where non-empty is asked
 * for -> naming key, the value found and what is allowed. A deprecated key is taken as its option's key
 * (a warning "<where>: option \"old\" is deprecated: write \"new\"" is logged); both given -> refused.
 * Secrets ("${ENV}", {"env":..}, {"file":..}) are resolved and registered with ferry__secret_add(). On
 * failure nothing stays allocated in ctx. Any role: no option is refused for its role. */
int ferry__options_apply(const ferry_option *table, json_t *options, void *ctx, const char *where,
                        ferry_error *err);
/* Same, with `base_dir`: the directory against which relative {"file": PATH} secrets are resolved (the
 * config file's directory, ferry_config.base_dir); NULL = the current directory (what ferry__options_apply
 * uses); and `role`, the instance's role (FERRY_KIND_SOURCE, _SINK or _HOOK; 0 = any): an option given
 * whose ferry_option.roles lacks it is refused ("<where>: option \"tables\" applies to the source only
 * (this is the sink)"), and a required option of another role is not required. */
int ferry__options_apply_ex(const ferry_option *table, json_t *options, void *ctx, const char *where,
                           const char *base_dir, uint32_t role, ferry_error *err);
/* Frees what ferry__options_apply() stored in ctx (and sets those fields to NULL). Safe on a zeroed ctx. */
void ferry__options_release(const ferry_option *table, void *ctx);
/* A plugin's options checked and applied once (at load): a context filled as the core fills it before
 * init(), kept to start each instance from. prepare: as ferry__options_apply_ex into a context of
 * plugin->ctx_size bytes (secrets resolved and registered here, once); a plugin without an options table
 * refuses a non-empty object ("<where>: plugin \"<name>\" takes no options"). NULL with err set on failure.
 * copy_to: writes a copy of every option value into `ctx` (ctx_size bytes, zeroed): strings and lists
 * duplicated, JSON values deep-copied, so the instance owns them (ferry__options_release) whatever it does
 * with them. free: NULL allowed. */
typedef struct ferry__options ferry__options;
ferry__options *ferry__options_prepare(const ferry_plugin *plugin, json_t *options, const char *where,
                                       const char *base_dir, uint32_t role, ferry_error *err);
void ferry__options_copy_to(const ferry__options *o, void *ctx);
void ferry__options_free(ferry__options *o);
/* Describes a plugin for `ferry plugins --describe`: a new JSON object {name, version, description,
 * license, kinds: [...], emits/accepts: [...], hook_points: [...], options: [{key, type, default, required,
 * secret, help, and when they apply: roles: [...], choices: [...] (enum), min, max (range), non_empty: true,
 * deprecated_name}]} (secret defaults never shown). */
json_t *ferry__plugin_describe(const ferry_plugin *plugin);
const char *ferry__opt_type_name(ferry_opt_type t);

/* ===== config.c ========================================================================================== */
/* Config file format (docs/config.md):
 * { "journal": "path.db", "report": "report.json", "plugin_path": ["dir", ...], "log_level": "info",
 *   "stages": [ { "name": "forms", "after": ["users"],
 *                 "source": {"plugin": "pgsql", "options": {...}},
 *                 "sink":   {"plugin": "pgsql", "options": {...}},
 *                 "hooks":  [ {"plugin": "preserve-records", "points": ["before_start","after_start"],
 *                              "options": {...}} ],
 *                 "concurrency": 8, "rate": 0, "journal": true,
 *                 "retry": {"max": 5, "base_ms": 200, "cap_ms": 30000} } ] }
 * Unknown keys anywhere are refused (naming the path and the valid keys). Relative paths (journal, report,
 * plugin_path) are relative to the config file's directory. */
typedef struct ferry_plugin_ref {
  char *plugin;      /* plugin name */
  json_t *options;   /* owned reference to the options object, or NULL */
  char **points;     /* hooks only: NULL-terminated hook point names */
  char *where;       /* names this reference in messages, with the place in the file when known:
                        "config.json:12:17: stages[0] \"forms\" sink \"pgsql\"" (pass it to
                        ferry__instance_create) */
} ferry_plugin_ref;

typedef struct ferry_stage_cfg {
  char *name;
  ferry_plugin_ref source, sink;
  ferry_plugin_ref *hooks;
  size_t nhooks;
  char **after;       /* NULL-terminated stage names */
  unsigned concurrency; /* default 8 */
  double rate;          /* default 0 = unlimited */
  int journal;          /* default 1; 0 = items are not journaled (pure streaming, no resume) */
  unsigned retry_max;   /* default 5 */
  unsigned retry_base_ms; /* default 200 */
  unsigned retry_cap_ms;  /* default 30000 */
  size_t index;         /* position in the file */
} ferry_stage_cfg;

typedef struct ferry_config {
  char *origin;        /* file path or the origin given for JSON */
  char *base_dir;      /* directory of the file ("." for JSON) */
  char *journal;       /* resolved path, or NULL (default "ferry-journal.db" in the current directory) */
  char *report;        /* resolved path, or NULL */
  char **plugin_path;  /* resolved, NULL-terminated (may be empty) */
  char *log_level;     /* or NULL */
  ferry_stage_cfg *stages;
  size_t nstages;
  json_t *root;        /* owned */
} ferry_config;

/* The journal a run uses when neither the configuration nor the program names one (current directory). */
#define FERRY__DEFAULT_JOURNAL "ferry-journal.db"

/* Syntax errors: "<file>:<line>:<column>: <jansson text>". */
ferry_config *ferry__config_load_file(const char *path, ferry_error *err);
/* `root` is not stolen. */
ferry_config *ferry__config_from_json(json_t *root, const char *origin, ferry_error *err);
void ferry__config_free(ferry_config *cfg);
/* The settings of ferry_config_settings() (ferry/runtime.h): a new JSON object. */
json_t *ferry__config_settings(const ferry_config *cfg);

/* ===== registry.c + module.c (the loader) ================================================================
 * One registry for both ways of getting a plugin: built-in descriptors and modules "ferry_<id>.so" opened at
 * run time with libltdl (module.c, the only user of libltdl) from a search path, symbol "ferry_plugin_<id>"
 * (<id> = the plugin name with '-' written '_'; "a-b" and "a_b" name the same plugin). Every descriptor goes
 * through ferry__plugin_check() before any of its callbacks can be reached. A registry is not thread-safe;
 * use it from one thread. Errors: FERRY_EINVAL (a name that cannot be a plugin name, never looked up on
 * disk), FERRY_ENOENT (not built in and no file in the search path: the message lists the directories
 * searched, in order), FERRY_EIO (the file exists but the dynamic linker refused it: its reason follows),
 * FERRY_EABI (opened but no symbol, or the descriptor refused, or a second plugin of the same name). */
typedef struct ferry_registry ferry_registry;
typedef struct ferry_plugin_entry {
  const ferry_plugin *plugin; /* checked descriptor (in the module's memory for modules; for a plugin built
                                 for ABI < 1.3 with options, a copy owned by the registry whose options
                                 table is in this ferry's ferry_option layout) */
  const char *origin;         /* "built-in" (or the origin given to add_builtin) or the module file path */
  int builtin;
} ferry_plugin_entry;
/* Entries (and the strings and descriptors they point to) are owned by the registry and valid until
 * ferry__registry_free(); their addresses do not change when more plugins are added. */

ferry_registry *ferry__registry_new(void);
void ferry__registry_free(ferry_registry *reg); /* closes modules: their descriptors become invalid */
/* Search path, in order of addition (the caller adds the config's plugin_path first). Copied; trailing '/'
 * dropped; a directory already present is not added twice. */
void ferry__registry_add_dir(ferry_registry *reg, const char *dir);
/* Empties the search path (modules already loaded stay registered). */
void ferry__registry_clear_dirs(ferry_registry *reg);
/* Adds the default places, in this order: each directory of $FERRY_PLUGIN_PATH (':'-separated, empty
 * elements skipped); the build tree's plugin directory (FERRY_BUILD_PLUGIN_DIR) when it exists and this
 * libferry is the build tree's own; <libdir>/ferry/plugins beside the libferry in use when it exists (an
 * installed tree moved or installed with `cmake --install --prefix`); the configured install directory
 * (FERRY_INSTALL_PLUGIN_DIR). */
void ferry__registry_add_default_dirs(ferry_registry *reg);
/* Checks then adds a built-in descriptor; `plugin` must outlive the registry (a static constant). `origin`
 * (copied; NULL = "built-in") names it in messages and entries. Its symbol is taken from the dynamic symbol
 * table when the descriptor is exported there (FERRY_API descriptors in libferry or in a program linked
 * with exported symbols), and the name is then checked against it as for a module; otherwise the symbol
 * is derived from the descriptor's name. Duplicate names refused. Returns 0 or FERRY_EABI. */
int ferry__registry_add_builtin(ferry_registry *reg, const ferry_plugin *plugin, const char *origin,
                               ferry_error *err);
/* Adds every plugin of the generated built-in table (plugins configured STATIC in CMake), each checked
 * against its symbol name (the generated ferry__builtin_plugin_symbols[]). Stops at the first refusal. */
int ferry__registry_add_static(ferry_registry *reg, ferry_error *err);
/* Finds `name`: a registered plugin (built-ins first, then modules already loaded), else the file
 * "ferry_<id>.so" in the search path, opened with libltdl, symbol "ferry_plugin_<id>" checked by
 * ferry__plugin_check with `name` as the expected name. The first file found in the search path is the one
 * used, even when it is refused (as with $PATH). Returns the entry, or NULL with err set. */
const ferry_plugin_entry *ferry__registry_find(ferry_registry *reg, const char *name, ferry_error *err);
/* Opens a module file directly (tests, `ferry plugins --file`). `name` may be NULL: then derived from the
 * file name "ferry_<id>.so" (for the symbol and the expected name), refused (FERRY_EINVAL) when the file
 * name has another form. Loading the same file again returns the same entry. */
const ferry_plugin_entry *ferry__registry_load_file(ferry_registry *reg, const char *path, const char *name,
                                                   ferry_error *err);
/* Loads every module "ferry_<id>.so" found in the search path (for `ferry plugins`), directory by
 * directory, files in name order; a file whose id is already registered or was met in an earlier directory
 * is shadowed and skipped silently. For each one refused (and each existing directory that cannot be
 * read), calls bad(arg, path, err); `path` and `err` are valid during the call only. */
void ferry__registry_scan(ferry_registry *reg, void (*bad)(void *arg, const char *path, const ferry_error *e),
                         void *arg);
size_t ferry__registry_count(const ferry_registry *reg);
/* The i-th entry in order of registration, or NULL when i >= count. */
const ferry_plugin_entry *ferry__registry_at(const ferry_registry *reg, size_t i);
/* The descriptor checks (both ways of loading). `file` and `symbol` name the place in messages (file NULL or
 * "built-in": "built-in plugin, symbol S: ..."; a path: "plugin file F, symbol S: ..."; another origin O:
 * "plugin O, symbol S: ..."; symbol NULL: "symbol unknown ..."). Reads nothing past abi_major, abi_minor
 * and struct_size until those are accepted. Checks: abi_major == FERRY_ABI_MAJOR; abi_minor <=
 * FERRY_ABI_MINOR; FERRY_PLUGIN_MIN_SIZE <= struct_size <= sizeof(ferry_plugin); flags zero; name non-NULL,
 * valid ([a-z0-9][a-z0-9_-]*, at most 64), equal to expected_name when given ('-' = '_');
 * version/description/license non-NULL; kinds non-zero and within FERRY_KIND_ALL; for each declared kind
 * its ops table present, struct_size between its 1.0 size and this ferry's, required callback set
 * (demand, write, fire), emitted/accepted item kinds non-zero and known; no ops table for an undeclared
 * kind; ctx_size > 0 when options exist; options table well-formed, read with the layout of the plugin's
 * ABI minor (keys and deprecated keys valid and unique, types and flags known to that minor, each field
 * within ctx_size, defaults valid JSON of the option's type, within the range, non-empty when asked, one of
 * the choices; roles within the plugin's kinds; enums with choices, not secret). Returns 0 or FERRY_EABI with
 * a message naming the expected and the found values, e.g. "plugin file /x/ferry_bad.so, symbol
 * ferry_plugin_bad: ABI major 2 is not supported (this ferry has ABI 1.0)". */
int ferry__plugin_check(const ferry_plugin *p, const char *file, const char *symbol, const char *expected_name,
                       ferry_error *err);

/* ===== instance.c ======================================================================================== */
struct ferry_stage; /* run/run.h */
struct ferry_instance {
  ferry__log_id id;         /* first: role, plugin and stage names for log lines (base/base.h) */
  const ferry_plugin *plugin;
  uint32_t role;            /* FERRY_KIND_SOURCE / _SINK / _HOOK */
  char *stage_name;         /* owned */
  void *ctx;                /* owned, ctx_size bytes (a 1-byte dummy when ctx_size is 0) */
  uv_loop_t *loop;          /* borrowed */
  ferry_mode mode;
  unsigned concurrency;
  double rate;
  double share;             /* ferry run --worker: this worker's share of rate and concurrency (1/n of n live
                               workers; 1 otherwise), read by the services at every request */
  struct ferry_stage *stage;/* NULL when standalone (service tests) */
  char **points;            /* hooks: the points this hook instance is attached to (owned) */
  int initialized;          /* init() succeeded */
  /* target calls the services made for this instance: time from sending to the answer, per attempt */
  ferry__latency latency[2]; /* FERRY__LAT_HTTP, FERRY__LAT_PG */
};
enum { FERRY__LAT_HTTP = 0, FERRY__LAT_PG = 1 };
/* Allocates the context, applies options (ferry__options_apply), calls init(). `where` names the instance in
 * errors (ferry_plugin_ref.where, e.g. "config.json:12:17: stages[0] \"forms\" sink \"pgsql\""): option
 * errors read "<where> options: unknown key ...", an init failure "<where>: <the plugin's message>". On
 * failure returns NULL with err set; nothing is left allocated and fini() is not called. Concurrency 8, rate
 * 0, no stage, no points, relative secret files resolved against the current directory. */
ferry_instance *ferry__instance_create(const ferry_plugin *plugin, uint32_t role, const char *stage_name,
                                      uv_loop_t *loop, ferry_mode mode, json_t *options, const char *where,
                                      ferry_error *err);
/* What the pipeline knows before init() runs, so that init() can already see it. */
typedef struct ferry_instance_params {
  const char *base_dir;          /* for relative {"file": PATH} secrets (ferry_config.base_dir); NULL = cwd */
  unsigned concurrency;          /* the stage's concurrency; 0 = 8 */
  double rate;                   /* the stage's rate (0 = no limit) */
  struct ferry_stage *stage;     /* may be NULL */
  const char *const *points;     /* hooks: the points this instance is attached to (copied); may be NULL */
  const ferry__options *options; /* the options checked at load (ferry__options_prepare): the context starts
                                    as a copy of them and `options` (JSON) is not looked at; NULL: `options`
                                    is checked and applied here */
} ferry_instance_params;
/* ferry__instance_create with `params` (NULL = the defaults above). */
ferry_instance *ferry__instance_create_ex(const ferry_plugin *plugin, uint32_t role, const char *stage_name,
                                         uv_loop_t *loop, ferry_mode mode, json_t *options, const char *where,
                                         const ferry_instance_params *params, ferry_error *err);
/* Calls fini() (if initialized), releases options and the context. */
void ferry__instance_destroy(ferry_instance *ins);

#endif
