/* ferry embedding API: build and run a pipeline from a program (the `ferry` CLI and the runtime tests use
 * exactly this), list and describe the plugins it can load, read a configuration's settings, and set up
 * logging. Reading a journal: ferry/journal.h.
 *
 * Lifetime: a ferry_runtime owns its loop, registry, configuration, journal and plugin instances; everything
 * it hands out (summaries, reports) is valid until the next call on the same runtime or ferry_runtime_free(),
 * unless a function says otherwise. A runtime runs on the calling thread and is not thread-safe.
 *
 * One core per process: a program that embeds ferry links libferry (shared), and so do the plugin modules
 * it opens; the dynamic linker loads libferry once, so the program, the core and every plugin share one
 * registry of secrets and one log configuration.
 */
#ifndef FERRY_RUNTIME_H
#define FERRY_RUNTIME_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include "ferry/plugin.h"
#include "ferry/log.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_runtime ferry_runtime;

typedef struct ferry_runtime_opts {
  uint32_t struct_size;          /* sizeof(ferry_runtime_opts) */
  const char *const *plugin_path;/* extra plugin directories searched first (NULL-terminated) or NULL */
  int no_default_path;           /* 1: do not search the build tree / install prefix / FERRY_PLUGIN_PATH */
  const char *journal_path;      /* overrides the config's "journal"; NULL = config or "ferry-journal.db" */
} ferry_runtime_opts;

typedef struct ferry_run_opts {
  uint32_t struct_size;          /* sizeof(ferry_run_opts) */
  ferry_mode mode;
  int64_t limit;                 /* at most this many items per stage (0 = all): the canary run */
  const char *const *stages;     /* only these stages (NULL-terminated) or NULL = all */
  int progress;                  /* 0 none, 1 plain lines, 2 terminal display (redrawn) */
  const char *report_path;       /* JSON report file, or NULL (config "report", else none) */
  /* Appended in ABI 1.1 (read only when struct_size covers it): RUN mode only (other modes refuse it). 1:
   * repair: carry only the items the journal holds as done and the last verify found different (their
   * verify mark), with ferry_task_repair() = 1 and the journal's step and state; every other item is not
   * carried ("not selected for repair"). */
  int repair;
  /* Appended in ABI 1.5 (read only when struct_size covers them): RUN mode with a PostgreSQL journal
   * only. worker: this run is one of several workers sharing the journal (docs/journal.md, "Several
   * workers"): its name (1 to 64 of [A-Za-z0-9._-], one live process per name); items are claimed in the
   * journal with a lease of lease_s seconds (0 = 30), renewed every second, and each worker uses its share
   * of every stage's rate and concurrency. NULL: the one run on the journal, as before. */
  const char *worker;
  double lease_s;
} ferry_run_opts;

typedef struct ferry_stage_summary {
  const char *name;
  int64_t total;                 /* as announced by the source, -1 unknown */
  int64_t done, skipped, failed, retried, resumed;
  double seconds;
  int status;                    /* 0, or the code that stopped the stage (source failure, ...) */
} ferry_stage_summary;

typedef struct ferry_run_summary {
  size_t nstages;
  const ferry_stage_summary *stages; /* owned by the runtime */
  int64_t done, skipped, failed;
  double seconds;
} ferry_run_summary;

FERRY_API ferry_runtime *ferry_runtime_new(const ferry_runtime_opts *opts, ferry_error *err);
FERRY_API void ferry_runtime_free(ferry_runtime *rt);
/* Adds a built-in plugin (descriptor checked exactly like a loaded one). The descriptor must outlive the
 * runtime (normally a static constant). */
FERRY_API int ferry_runtime_add_plugin(ferry_runtime *rt, const ferry_plugin *plugin, ferry_error *err);
/* Loads the configuration from a file (errors carry file:line:column) or from a JSON value (`origin` names it
 * in errors; `config` is not stolen). Validates stages, plugins and their options; loads plugins. */
FERRY_API int ferry_runtime_load_file(ferry_runtime *rt, const char *path, ferry_error *err);
FERRY_API int ferry_runtime_load_json(ferry_runtime *rt, json_t *config, const char *origin, ferry_error *err);
/* Runs the loaded pipeline. Returns 0 when every item succeeded, FERRY_EBLOCKED / FERRY_EMISMATCH /
 * another negative code otherwise; the summary (optional) is filled in any case once the run started. */
FERRY_API int ferry_runtime_run(ferry_runtime *rt, const ferry_run_opts *opts, ferry_run_summary *summary,
                                ferry_error *err);
/* Asks a running pipeline to stop soon (safe from a signal handler via uv_async). */
FERRY_API void ferry_runtime_interrupt(ferry_runtime *rt);
/* The loop the runtime runs on (owned by the runtime). */
FERRY_API uv_loop_t *ferry_runtime_loop(ferry_runtime *rt);

/* ---- plugins (ABI 1.2) ----------------------------------------------------------------------------------
 * The plugin path of a runtime: the directories of ferry_runtime_opts.plugin_path, then (once a configuration
 * is loaded) its "plugin_path", then, unless no_default_path, $FERRY_PLUGIN_PATH, the build tree's plugin
 * directory (when this libferry is the build tree's), <libdir>/ferry/plugins beside this libferry and the
 * configured install directory. */

/* Every plugin the runtime can use: a new JSON object owned by the caller (json_decref):
 *   {"plugins": [{"name", "kinds": ["source", "sink", "hook"], "version", "description", "license",
 *                 "origin": "built-in" or the module's path}],
 *    "refused": [{"path", "code": "EABI", "error": the loader's message}]}
 * The built-in plugins and those added with ferry_runtime_add_plugin() come first, then every module
 * ferry_<id>.so of the plugin path, directory by directory, files in name order; a file whose id was met
 * before is shadowed and skipped (the first one found is the one a configuration gets). Modules are opened
 * and checked as for a configuration (a refused one is listed under "refused", and so is a directory that
 * cannot be read) and stay loaded until ferry_runtime_free(). Returns NULL with err set only for a bad
 * argument. */
FERRY_API json_t *ferry_runtime_plugins(ferry_runtime *rt, ferry_error *err);
/* One plugin, found as a configuration would find it (built in, else its file in the plugin path), as a new
 * JSON object owned by the caller: {"name", "version", "description", "license", "origin",
 * "kinds": [...], "emits": [...] (sources), "accepts": [...] (sinks), "hook_points": [...] (the points its
 * source or sink fires), "serves": [...] or "any" (hooks), "options": [{"key", "type", "default",
 * "required", "secret", "help"}]} ("default" absent when there is none; a secret's default reads "***").
 * NULL with err set when the name is not valid (FERRY_EINVAL), no such plugin exists (FERRY_ENOENT: the
 * message lists the directories searched), its file cannot be opened (FERRY_EIO) or it is refused
 * (FERRY_EABI). */
FERRY_API json_t *ferry_runtime_describe_plugin(ferry_runtime *rt, const char *name, ferry_error *err);

/* ---- configuration settings (ABI 1.2) ------------------------------------------------------------------ */
/* Reads and checks the configuration file `path` as ferry_runtime_load_file() does (syntax with
 * file:line:column, keys, stages), without loading any plugin, and returns its settings: a new JSON object
 * owned by the caller (json_decref):
 *   {"origin": path, "journal": the journal a run uses (the config's "journal" resolved against the file's
 *    directory, else "ferry-journal.db"), "report": resolved path or null, "plugin_path": [resolved
 *    directories], "log_level": "error".."trace" or null, "stages": [names, in file order]}
 * NULL with err set (FERRY_ENOENT, FERRY_EIO, FERRY_ECONFIG) when the file cannot be read or is not a valid
 * configuration. */
FERRY_API json_t *ferry_config_settings(const char *path, ferry_error *err);
/* The same settings of the configuration the runtime loaded (from a file or from JSON; "origin" as given).
 * Borrowed: owned by the runtime, valid until ferry_runtime_free(). NULL before a configuration is loaded. */
FERRY_API json_t *ferry_runtime_settings(ferry_runtime *rt);

/* ---- logging and redaction (ABI 1.2) --------------------------------------------------------------------
 * One log configuration and one registry of secrets per process (they live in libferry): what the program
 * sets here applies to the core and to every plugin. */
typedef enum ferry_log_format { FERRY_LOG_TEXT = 0, FERRY_LOG_JSON = 1 } ferry_log_format;
/* Where and how log lines go (default: standard error, text, FERRY_LOG_INFO). `out` is borrowed and must stay
 * open while ferry logs; NULL = standard error. */
FERRY_API void ferry_log_configure(ferry_log_level level, ferry_log_format format, FILE *out);
/* The level named "error", "warn", "info", "debug" or "trace" (a configuration's "log_level"); -1 for any
 * other text or NULL. */
FERRY_API int ferry_log_level_parse(const char *name);
/* A copy of `text` with every registered secret (FERRY_OPT_SECRET options, ferry_secret()) replaced by "***",
 * for a program that prints what ferry handed it (error messages) outside ferry's log. malloc'd, owned by the
 * caller (free()); NULL for NULL. */
FERRY_API char *ferry_redact(const char *text);

/* ---- libraries (since 1.3) ----------------------------------------------------------------------------
 * The libraries this libferry uses, with their versions as they report them at run time: a new JSON array
 * owned by the caller (json_decref) of {"name", "version", "file": the library file or null}: libuv,
 * jansson, libcurl, libpq, SQLite, libltdl (which has no version function: the version of its library file,
 * "7.3.2" for libltdl.so.7.3.2), then OpenSSL and libmariadb when they are loaded in the process; "unknown"
 * when a version cannot be found. */
FERRY_API json_t *ferry_runtime_libraries(void);

#ifdef __cplusplus
}
#endif
#endif
