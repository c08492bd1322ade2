/* ferry embedding API: build and run a pipeline from a program (the `ferry` CLI and the runtime tests use
 * exactly this).
 *
 * Lifetime: a ferry_runtime owns its loop, registry, configuration, journal and plugin instances; everything
 * it hands out (summaries, reports) is valid until the next call on the same runtime or ferry_runtime_free().
 * A runtime runs on the calling thread and is not thread-safe.
 */
#ifndef FERRY_RUNTIME_H
#define FERRY_RUNTIME_H

#include <stdint.h>
#include <jansson.h>
#include "ferry/plugin.h"

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

#ifdef __cplusplus
}
#endif
#endif
