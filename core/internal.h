/* ferry core: internal interfaces between the parts of libferry. Not installed; plugins never see this.
 *
 * Parts (one file each unless said): error.c item.c util.c (small SDK/utility functions), log.c + secret.c
 * (logging and redaction), options.c (plugin option tables), config.c (the JSON config), registry.c +
 * module.c (the loader: built-in table and libltdl), journal.c (SQLite), instance.c (plugin instances),
 * pipeline.c + stage.c + task.c + hook.c (ordering, run model), progress.c (display), http.c, pg.c (SDK
 * services), runtime.c (ferry/runtime.h). The CLI lives in main.c.
 */
#ifndef FERRY_CORE_INTERNAL_H
#define FERRY_CORE_INTERNAL_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include <uv.h>

#include "ferry/ferry.h"
#include "ferry/runtime.h"

#define FERRY_INTERNAL __attribute__((visibility("hidden")))

/* ===== util.c ============================================================================================ */
/* Allocation that aborts with a message when out of memory (ferry does not try to limp on). */
void *ferry__xmalloc(size_t n);
void *ferry__xcalloc(size_t n, size_t size);
void *ferry__xrealloc(void *p, size_t n);
char *ferry__xstrdup(const char *s);            /* NULL -> NULL */
char *ferry__xstrndup(const char *s, size_t n);
char *ferry__xasprintf(const char *fmt, ...) FERRY_PRINTF(1, 2);
char *ferry__xvasprintf(const char *fmt, va_list ap);
/* Growable string. Zero-initialise ({0}); ferry__sb_free releases; ferry__sb_steal hands the buffer out. */
typedef struct ferry_sb { char *buf; size_t len, cap; } ferry_sb;
void ferry__sb_add(ferry_sb *sb, const char *s);
void ferry__sb_addn(ferry_sb *sb, const char *s, size_t n);
void ferry__sb_addf(ferry_sb *sb, const char *fmt, ...) FERRY_PRINTF(2, 3);
char *ferry__sb_steal(ferry_sb *sb);            /* never NULL ("" when empty) */
void ferry__sb_free(ferry_sb *sb);
/* Monotonic seconds (uv_hrtime based). */
double ferry__now(void);
/* The JSON type of a value as a user reads it in a message ("object", "number with a fraction", ...). */
const char *ferry__json_kind(const json_t *v);
/* NULL-terminated string vector helpers. */
size_t ferry__strv_len(char *const *v);
void ferry__strv_free(char **v);
char **ferry__strv_dup(const char *const *v);

/* ===== log.c / secret.c ================================================================================= */
/* ferry_log_configure(), ferry_log_level_parse(), ferry_redact(): ferry/runtime.h. */
/* Called before each log line is written (NULL to unset): the terminal progress display uses it to erase
 * itself so that log lines never interleave with its redrawn block. One at a time. */
void ferry__log_set_before_line(void (*fn)(void *arg), void *arg);
/* Registers a secret: every later log line, journal text, report and plan output has it replaced by "***".
 * Copied. Strings shorter than 3 characters are ignored (they would redact everything). */
void ferry__secret_add(const char *value);
/* Redacts in place inside a JSON value (all strings, recursively). */
void ferry__redact_json(json_t *v);
/* Forget all secrets (tests, runtime free). */
void ferry__secret_clear(void);

/* ===== options.c ========================================================================================= */
/* Validates `options` (a JSON object, or NULL for none) against `table` and writes values into `ctx` (see
 * ferry/plugin.h for the field types). `where` names the place for messages, e.g.
 * "config.json: stages[0] \"forms\" sink \"pgsql\" options". Unknown key -> FERRY_ECONFIG naming the key and
 * listing the valid ones; wrong type -> naming key, expected and found type; missing required key.
 * Secrets ("${ENV}", {"env":..}, {"file":..}) are resolved and registered with ferry__secret_add(). On
 * failure nothing stays allocated in ctx. */
int ferry__options_apply(const ferry_option *table, json_t *options, void *ctx, const char *where,
                        ferry_error *err);
/* Same, with `base_dir`: the directory against which relative {"file": PATH} secrets are resolved (the
 * config file's directory, ferry_config.base_dir); NULL = the current directory (what ferry__options_apply
 * uses). */
int ferry__options_apply_ex(const ferry_option *table, json_t *options, void *ctx, const char *where,
                           const char *base_dir, ferry_error *err);
/* Frees what ferry__options_apply() stored in ctx (and sets those fields to NULL). Safe on a zeroed ctx. */
void ferry__options_release(const ferry_option *table, void *ctx);
/* Describes a plugin for `ferry plugins --describe`: a new JSON object {name, version, description,
 * license, kinds: [...], emits/accepts: [...], hook_points: [...], options: [{key, type, default, required,
 * secret, help}]} (secret defaults never shown). */
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
  const ferry_plugin *plugin; /* checked descriptor (in the module's memory for modules) */
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
 * kind; ctx_size > 0 when options exist; options table well-formed (keys valid and unique, types and flags
 * known, each field within ctx_size, defaults valid JSON of the option's type). Returns 0 or FERRY_EABI with
 * a message naming the expected and the found values, e.g. "plugin file /x/ferry_bad.so, symbol
 * ferry_plugin_bad: ABI major 2 is not supported (this ferry has ABI 1.0)". */
int ferry__plugin_check(const ferry_plugin *p, const char *file, const char *symbol, const char *expected_name,
                       ferry_error *err);

/* ===== journal.c (SQLite, WAL) =========================================================================== */
typedef struct ferry_journal ferry_journal;
typedef enum ferry_jstatus {
  FERRY_J_NONE = 0,   /* not in the journal */
  FERRY_J_INTENT = 1, /* in doubt: an intent was recorded, no outcome yet */
  FERRY_J_DONE = 2,
  FERRY_J_SKIPPED = 3,
  FERRY_J_FAILED = 4
} ferry_jstatus;
const char *ferry__jstatus_name(ferry_jstatus s);

typedef struct ferry_jrow {
  ferry_jstatus status;
  char *step;         /* owned, or NULL */
  json_t *state;      /* owned reference (object), never NULL after a successful get */
  unsigned attempts;
  char *error;        /* owned, or NULL: "<message>" or "<message>\n<detail>" (redacted) */
  int error_code;     /* FERRY_E* of the last failure (failed items), 0 otherwise */
  int64_t created, updated; /* ms since the epoch; 0 for an item not in the journal */
  /* schema version 2 (NULL / 0 when a version-1 journal is read) */
  json_t *report;     /* owned, or NULL: the task's report object of the last outcome (redacted) */
  json_t *verify;     /* owned, or NULL: what the last verify found when it found the item different:
                         {"result": "mismatch", "at": ms, "run": id, "message": "...", "differences": [...]} */
  int64_t run;        /* id of the run (or verify run) that last wrote the row; 0 = none */
  json_t *ids;        /* owned, or NULL: only iterations with ferry_jquery.ids fill it: the item's id map,
                         [{"kind": "...", "old": "...", "new": "..."}] in (kind, old) order */
} ferry_jrow;
void ferry__jrow_clear(ferry_jrow *row);

/* Opens (creating unless readonly) the journal; WAL mode, synchronous=NORMAL (a commit survives kill -9).
 * A writable open takes the journal's run lock (flock on "<path>-lock"): a second writable open, from this
 * process or another, is refused until the first is closed. Read-only opens never lock and never create.
 * Schema: a writable open upgrades a version-1 journal to version 2 (one transaction); a read-only open
 * reads a version-1 journal as it is (the version-2 fields read as NULL / 0); a newer version is refused. */
ferry_journal *ferry__journal_open(const char *path, int readonly, ferry_error *err);
void ferry__journal_close(ferry_journal *j);
/* The schema version of the open file (2, or 1 for a read-only open of an old journal). */
int ferry__journal_version(const ferry_journal *j);
/* Run bookkeeping (ferry status shows runs). run_begin makes the new run the journal's current run: every
 * row written afterwards (intents, outcomes, verify marks) gets its id in the `run` column, until run_end of
 * that run. */
int ferry__journal_run_begin(ferry_journal *j, const char *mode, int64_t *run_id, ferry_error *err);
int ferry__journal_run_end(ferry_journal *j, int64_t run_id, int status, const char *summary_json,
                          ferry_error *err);
/* The current run (0 = none). */
int64_t ferry__journal_run_id(const ferry_journal *j);
/* One item (status FERRY_J_NONE and an empty state when absent). get leaves row->report NULL (the resume
 * lookup of every item does not need it); get_full reads it too. */
int ferry__journal_get(ferry_journal *j, const char *stage, const char *key, ferry_jrow *row, ferry_error *err);
int ferry__journal_get_full(ferry_journal *j, const char *stage, const char *key, ferry_jrow *row,
                           ferry_error *err);
/* Records an intent now (committed before return, even inside a group). */
int ferry__journal_intent(ferry_journal *j, const char *stage, const char *key, const char *step,
                         json_t *state, unsigned attempts, ferry_error *err);

/* Outcomes; they may be grouped (see group_begin/commit) — committed at the latest by group_commit. */
typedef struct ferry_joutcome {
  ferry_jstatus status;     /* FERRY_J_DONE, FERRY_J_SKIPPED or FERRY_J_FAILED */
  json_t *state;            /* the item's state (object); NULL keeps the stored one */
  json_t *report;           /* the task's report object (redacted when stored); NULL or {} stores NULL (for a
                               failed repair: keeps the stored report) */
  const ferry_error *cause; /* FAILED: why (stored as "<message>\n<detail>", detail capped, redacted) */
  unsigned attempts;        /* FAILED: attempts so far; done/skipped: 0 keeps the stored count */
  int repair;               /* FAILED of a repair (ferry run --repair): the row keeps status done and its
                               verify mark, and gets the error, attempts and report */
} ferry_joutcome;
/* Done/skipped also clear the item's error and its verify mark. */
int ferry__journal_outcome(ferry_journal *j, const char *stage, const char *key, const ferry_joutcome *o,
                          ferry_error *err);
/* ferry__journal_outcome without a report. */
int ferry__journal_done(ferry_journal *j, const char *stage, const char *key, json_t *state, int skipped,
                       ferry_error *err);
int ferry__journal_failed(ferry_journal *j, const char *stage, const char *key, json_t *state,
                         const ferry_error *cause, unsigned attempts, ferry_error *err);
/* The outcome of an item is not known (the sink's sync() failed): records the error (and a non-empty
 * report) on the item's row, which keeps its status (normally the intent: in doubt). Grouped like an
 * outcome. *recorded (may be NULL) = 0 when the journal has no row for the item (nothing written). */
int ferry__journal_doubt(ferry_journal *j, const char *stage, const char *key, const ferry_error *cause,
                        json_t *report, int *recorded, ferry_error *err);
/* Verify marks (ferry verify; grouped like outcomes). mark: sets the item's `verify` column to
 * {"result": "mismatch", "at": now, "run": the current run, "message": message, "differences": a copy of
 * `differences` (an array; anything else: [])}, redacted. clear: sets it to NULL. Both set the row's run
 * and change nothing else; *found (may be NULL) = 0 when the journal has no row for the item. */
int ferry__journal_verify_mark(ferry_journal *j, const char *stage, const char *key, const char *message,
                              json_t *differences, int *found, ferry_error *err);
int ferry__journal_verify_clear(ferry_journal *j, const char *stage, const char *key, int *found,
                               ferry_error *err);
int ferry__journal_map_id(ferry_journal *j, const char *stage, const char *key, const char *kind,
                         const char *old_id, const char *new_id, ferry_error *err);
/* Looks up a mapped id (NULL when none; malloc'd, owned by the caller). */
char *ferry__journal_lookup_id(ferry_journal *j, const char *kind, const char *old_id, ferry_error *err);
/* Group commit of outcomes: begin opens a transaction; commit ends it. Intents commit immediately. */
int ferry__journal_group_begin(ferry_journal *j, ferry_error *err);
int ferry__journal_group_commit(ferry_journal *j, ferry_error *err);
/* Counts per status for one stage (NULL = all stages): out[FERRY_J_*]; out[FERRY_J_NONE] = all items. */
int ferry__journal_counts(ferry_journal *j, const char *stage, int64_t out[5], ferry_error *err);
/* Calls fn for each item of a stage (NULL = all) with that status (FERRY_J_NONE = any), in key order. fn
 * returns non-zero to stop. Borrowed arguments valid during the call. Rows are read in batches and fn runs
 * with no statement open: it may use the journal (even write). */
int ferry__journal_foreach(ferry_journal *j, const char *stage, ferry_jstatus status,
                          int (*fn)(void *arg, const char *stage, const char *key, const ferry_jrow *row),
                          void *arg, ferry_error *err);
/* The same for the items whose row the run `run` wrote last, of one stage (NULL = all), in (stage, key)
 * order. There is no index on the run: this reads every row of the stage (of all stages for NULL). Nothing
 * for a version-1 journal. */
int ferry__journal_foreach_run(ferry_journal *j, int64_t run, const char *stage,
                              int (*fn)(void *arg, const char *stage, const char *key, const ferry_jrow *row),
                              void *arg, ferry_error *err);
/* ferry__journal_foreach with every filter: stage (NULL = all), status (FERRY_J_NONE = any), run (0 = any;
 * else only rows that run wrote last, as foreach_run), ids (1: fill row->ids, read with one range query per
 * batch of rows rather than one per item). */
typedef struct ferry_jquery {
  const char *stage;
  ferry_jstatus status;
  int64_t run;
  int ids;
} ferry_jquery;
int ferry__journal_foreach_ex(ferry_journal *j, const ferry_jquery *q,
                             int (*fn)(void *arg, const char *stage, const char *key, const ferry_jrow *row),
                             void *arg, ferry_error *err);
/* One mapping of the id map (borrowed strings, valid during the callback). */
typedef struct ferry_jid {
  const char *kind, *old_id, *new_id;
  const char *stage, *key; /* the item that mapped it */
  int64_t created;         /* ms since the epoch */
} ferry_jid;
/* Calls fn for each mapping: of one item (stage and key given; index idmap_item; order kind, old_id), of
 * one stage (key NULL; order key, kind, old_id) or all (both NULL; order kind, old_id); `kind` (may be NULL)
 * keeps only that kind. fn returns non-zero to stop; it runs with no statement open (batches). */
int ferry__journal_foreach_id(ferry_journal *j, const char *stage, const char *key, const char *kind,
                             int (*fn)(void *arg, const ferry_jid *id), void *arg, ferry_error *err);
/* Names of stages present in the journal (NULL-terminated, owned by the caller: ferry__strv_free). */
char **ferry__journal_stages(ferry_journal *j, ferry_error *err);
/* The last `limit` runs (0 = all), newest first: a new JSON array of {id, mode, started, ended, status,
 * summary} (times in milliseconds since the epoch; ended, status and summary null while a run has not
 * ended, or when it was killed). Owned by the caller. */
json_t *ferry__journal_runs(ferry_journal *j, int limit, ferry_error *err);

/* ===== instance.c ======================================================================================== */
struct ferry_stage; /* pipeline.c */
struct ferry_instance {
  const ferry_plugin *plugin;
  uint32_t role;            /* FERRY_KIND_SOURCE / _SINK / _HOOK */
  char *stage_name;         /* owned */
  void *ctx;                /* owned, ctx_size bytes (a 1-byte dummy when ctx_size is 0) */
  uv_loop_t *loop;          /* borrowed */
  ferry_mode mode;
  unsigned concurrency;
  double rate;
  struct ferry_stage *stage;/* NULL when standalone (service tests) */
  char **points;            /* hooks: the points this hook instance is attached to (owned) */
  int initialized;          /* init() succeeded */
};
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
} ferry_instance_params;
/* ferry__instance_create with `params` (NULL = the defaults above). */
ferry_instance *ferry__instance_create_ex(const ferry_plugin *plugin, uint32_t role, const char *stage_name,
                                         uv_loop_t *loop, ferry_mode mode, json_t *options, const char *where,
                                         const ferry_instance_params *params, ferry_error *err);
/* Calls fini() (if initialized), releases options and the context. */
void ferry__instance_destroy(ferry_instance *ins);

/* ===== progress.c ======================================================================================== */
typedef struct ferry_progress ferry_progress;
typedef struct ferry_progress_row {
  const char *stage;
  int64_t total; /* -1 unknown */
  int64_t done, skipped, failed, inflight;
  double started; /* ferry__now() at stage start, 0 = not started */
  int finished;
} ferry_progress_row;
/* style: 1 plain lines (one line per stage every `interval` seconds and at the end), 2 terminal display
 * redrawn in place (done, failed, total, rate, ETA). `out` borrowed. */
ferry_progress *ferry__progress_new(int style, FILE *out);
void ferry__progress_update(ferry_progress *p, const ferry_progress_row *rows, size_t n, int final);
/* The same at a given time `now` (ferry__now() scale; tests drive the clock with it). */
void ferry__progress_update_at(ferry_progress *p, const ferry_progress_row *rows, size_t n, int final,
                              double now);
void ferry__progress_free(ferry_progress *p);

#endif
