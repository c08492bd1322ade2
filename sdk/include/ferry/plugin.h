/* ferry SDK: the plugin descriptor (the ABI) and what a plugin instance sees of the core.
 *
 * A plugin exports exactly one symbol, the constant descriptor `ferry_plugin_<name>`, made with
 * FERRY_PLUGIN_DEFINE(). Everything else in the plugin is `static`. The core checks the descriptor before it
 * runs any plugin code (ABI major equal, minor not newer than the core's, struct_size at least the 1.0 size,
 * name present and equal to the name the plugin was asked for, kinds known, the callback table of every
 * declared kind present) and refuses it with an error naming the file, the symbol, the expected and the
 * found values. The same descriptor serves both ways of getting a plugin: linked into the binary (built in)
 * or opened at run time with libltdl.
 *
 * Instances: a plugin may be used several times in one pipeline (the pgsql source in two stages, say). Each
 * use is an instance (`ferry_instance`), with its own context of `ctx_size` bytes that the core allocates,
 * zeroes, fills from the options table, passes to init(), and frees after fini(). Instance pointers are owned
 * by the core and valid from init() to the end of fini().
 *
 * Threads: all callbacks run on the core's libuv loop thread. A plugin must never block that thread (no
 * blocking I/O, no sleeps): use the loop (ferry_instance_loop), the SDK services (ferry/http.h, ferry/pg.h),
 * or uv_queue_work for blocking work.
 */
#ifndef FERRY_PLUGIN_H
#define FERRY_PLUGIN_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include <uv.h>

#include "ferry/error.h"
#include "ferry/item.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ABI version. Major: incompatible change, the loader requires equality. Minor: fields appended to the
 * descriptor or the ops tables, or functions added to the SDK; the loader requires plugin minor <= core
 * minor, so a plugin built with newer headers than the core's is refused before it can call a function the
 * core lacks. History: 1.0 first release; 1.1 FERRY_EINDOUBT, ferry_http_send_ex() with idempotency flags
 * and service retries, ferry_task_repair(), the report conventions of ferry_task_report(); 1.2 reading a
 * journal (ferry/journal.h), ferry_runtime_plugins(), ferry_runtime_describe_plugin(),
 * ferry_config_settings(), ferry_runtime_settings(), ferry_log_configure(), ferry_log_level_parse(),
 * ferry_redact(), and ferry/ferry.h no longer includes the service headers (ferry/http.h, ferry/pg.h); 1.3
 * the option table validates more: FERRY_OPT_ENUM with ferry_opt_choice, FERRY_OPT_NONEMPTY, FERRY_OPT_RANGE,
 * and the fields roles, choices, min, max and deprecated_key appended to ferry_option (see there for how
 * tables of older plugins are read); and
 * the helpers of ferry/util.h (ferry_free(), ferry_asprintf(), the string buffer ferry_buf, the string set,
 * ferry_hash64(), ferry_backoff_ms()), and in ferry/pg.h ferry_pg_add_ident(), ferry_pg_add_literal(),
 * ferry_pg_array_elem(), ferry_pg_text_array(); ferry_log_item(),
 * ferry_runtime_libraries(); the SQL service (ferry/sql.h: PostgreSQL, MySQL/MariaDB and
 * SQLite behind one API); 1.4 ferry_journal_copy() (ferry/journal.h); 1.5 the fields worker and lease_s
 * appended to ferry_run_opts (several workers on one PostgreSQL journal); 1.6 ferry_shared_get() and
 * ferry_shared_put() (notes shared by the workers of a stage). */
#define FERRY_ABI_MAJOR 1
#define FERRY_ABI_MINOR 6

/* Plugin kinds (bits: one plugin may offer several). */
#define FERRY_KIND_SOURCE 0x1u
#define FERRY_KIND_SINK 0x2u
#define FERRY_KIND_HOOK 0x4u
#define FERRY_KIND_ALL 0x7u

/* What a run does; sinks see it through their ops (write/plan/verify) and ferry_instance_mode(). */
typedef enum ferry_mode {
  FERRY_MODE_RUN = 1,    /* do the work */
  FERRY_MODE_PLAN = 2,   /* read everything, write nothing anywhere: report would-do / blocked per item */
  FERRY_MODE_VERIFY = 3  /* compare source and target through the journal; write nothing */
} ferry_mode;

/* ---- options: the schema of a plugin's JSON configuration ----------------------------------------------
 * The core validates the instance's "options" object against this table before init(), once per instance:
 * unknown keys are refused with the list of valid ones, types are checked, required keys must be present,
 * defaults applied, and (since 1.3) enum values, integer ranges, non-empty strings and lists and the role
 * an option belongs to are checked, so that init() need not repeat any of it. Every refusal names the
 * instance (config file, stage, role, plugin), the option, the value found and what was expected.
 * It then writes each value into the context at `offset`:
 *   FERRY_OPT_STRING       char *    NUL-terminated, owned by the core
 *   FERRY_OPT_INT          int64_t
 *   FERRY_OPT_DOUBLE       double    (JSON integers accepted)
 *   FERRY_OPT_BOOL         int       0 or 1
 *   FERRY_OPT_STRING_LIST  char **   NULL-terminated array (a JSON string is taken as a one-element list),
 *                                    owned by the core
 *   FERRY_OPT_JSON         json_t *  any JSON value, a borrowed reference owned by the core
 *   FERRY_OPT_ENUM         int       (since 1.3) the `value` of the choice whose `name` the JSON string is;
 *                                    the default is a name too ("\"skip\""); no default: 0
 * Values written by the core stay valid until fini() has returned; the plugin must not free them.
 * A FERRY_OPT_SECRET value (password, DSN, hash) may be given as "${ENV_NAME}", {"env": "NAME"} or
 * {"file": "path"}; it is registered with the core's redaction so it never appears in logs, journal,
 * reports or `plan` output, and `plugins --describe` shows only that it is a secret.
 */
typedef enum ferry_opt_type {
  FERRY_OPT_STRING = 1,
  FERRY_OPT_INT = 2,
  FERRY_OPT_DOUBLE = 3,
  FERRY_OPT_BOOL = 4,
  FERRY_OPT_STRING_LIST = 5,
  FERRY_OPT_JSON = 6,
  FERRY_OPT_ENUM = 7 /* since 1.3 */
} ferry_opt_type;

#define FERRY_OPT_REQUIRED 0x1u
#define FERRY_OPT_SECRET 0x2u
/* Since 1.3. STRING: "" is refused; STRING_LIST: [] and lists with an "" element are refused (also for
 * defaults). An option left out is not affected (that is FERRY_OPT_REQUIRED). */
#define FERRY_OPT_NONEMPTY 0x4u
/* Since 1.3. INT: the value must lie in min..max (both inclusive; INT64_MIN / INT64_MAX for one side). */
#define FERRY_OPT_RANGE 0x8u

/* One allowed value of a FERRY_OPT_ENUM option (since 1.3): a table of these ends with {NULL, 0}. Several
 * names may share a value (an old spelling kept working); `plugins --describe` lists every name. */
typedef struct ferry_opt_choice {
  const char *name;  /* the JSON string, e.g. "skip"; NULL ends the table */
  int value;         /* written into the context's int */
} ferry_opt_choice;

/* One option. Write entries with designated initialisers, at least from the first field on
 * ({.key = "dsn", FERRY_OPT_STRING, ...} or all of them named): fields are only ever appended, and an
 * entry so written compiles unchanged against newer headers (a fully positional entry draws
 * -Wmissing-field-initializers under -Wextra since 1.3, and still works).
 * ABI: the table is an array, so its stride is sizeof(ferry_option) as the plugin was compiled. The core
 * reads the table of a plugin built for ABI 1.0 to 1.2 (the descriptor's abi_minor) with the 1.0 layout
 * (FERRY_OPTION_SIZE_1_0 bytes per entry, the fields up to `help`) and takes the fields added since as
 * zero; a plugin built for 1.3 has the whole struct. */
typedef struct ferry_option {
  const char *key;           /* JSON key; NULL ends the table */
  ferry_opt_type type;
  const char *default_json;  /* default as JSON text ("8", "\"skip\"", "true"), or NULL for none (zero) */
  uint32_t flags;            /* FERRY_OPT_REQUIRED | FERRY_OPT_SECRET | FERRY_OPT_NONEMPTY | FERRY_OPT_RANGE */
  size_t offset;             /* offsetof(<context struct>, <field>) */
  const char *help;          /* one line, shown by `ferry plugins --describe` */
  /* ---- since 1.3 ---- */
  /* The roles (FERRY_KIND_SOURCE / _SINK / _HOOK bits, a subset of the plugin's kinds) this option means
   * something for; 0 = every role. An instance of another role that is given the option is refused
   * ("option \"tables\" applies to the source only"); its field still gets the default. */
  uint32_t roles;
  const ferry_opt_choice *choices; /* FERRY_OPT_ENUM: the allowed names (required); NULL otherwise */
  int64_t min, max;                /* FERRY_OPT_INT with FERRY_OPT_RANGE: the allowed range */
  /* An older name of this option, still accepted: the value is taken as if given under `key`, and a
   * warning naming the instance and `key` is logged once per instance. Giving both names is refused. The
   * old name must not be the key (or the old name) of another option. NULL: none. */
  const char *deprecated_key;
} ferry_option;

/* Bytes of one table entry as plugins built for ABI 1.0 to 1.2 lay it out. */
#define FERRY_OPTION_SIZE_1_0 (offsetof(ferry_option, help) + sizeof(const char *))

#define FERRY_OPTIONS_END {0}

/* ---- opaque core objects -------------------------------------------------------------------------------- */
typedef struct ferry_instance ferry_instance;     /* one configured use of a plugin */
typedef struct ferry_task ferry_task;             /* one item on its way through a sink */
typedef struct ferry_hook_event ferry_hook_event; /* one firing of a hook point for one hook instance */

/* Completion callback shape used for asynchronous operations offered to plugins: call it exactly once,
 * status 0 for success or a FERRY_E* code with `err` (borrowed, may be NULL on success). */
typedef void (*ferry_done_fn)(void *arg, int status, const ferry_error *err);

/* ---- per-kind callback tables --------------------------------------------------------------------------
 * Every table starts with its own struct_size (fields are only ever appended). Unused optional callbacks
 * are NULL. */

typedef struct ferry_source_ops {
  uint32_t struct_size;       /* sizeof(ferry_source_ops) as compiled */
  uint32_t emits;             /* FERRY_ITEM_* bits this source can emit */
  /* Plugin-defined hook points this source fires (NULL-terminated), for config validation; may be NULL. */
  const char *const *hook_points;
  /* Optional. Called once when the stage starts, before the first demand. May start asynchronous work. */
  int (*start)(ferry_instance *ins, ferry_error *err);
  /* Required. The core can take `n` more items: emit up to n with ferry_emit(), now or later, and call
   * ferry_source_end() after the last item of the run (or ferry_source_fail()). The core calls demand again
   * as items complete; a source never needs to buffer more than it was asked for. */
  void (*demand)(ferry_instance *ins, size_t n);
  /* Optional. The stage is ending early (limit reached, fatal error, interrupt): stop work and release
   * what start() took; no emit after this returns. Also called after a normal end. */
  void (*stop)(ferry_instance *ins);
} ferry_source_ops;

typedef struct ferry_sink_ops {
  uint32_t struct_size;       /* sizeof(ferry_sink_ops) as compiled */
  uint32_t accepts;           /* FERRY_ITEM_* bits this sink takes; `plan` refuses a stage otherwise */
  const char *const *hook_points; /* plugin-defined hook points this sink fires (NULL-terminated) or NULL */
  /* Optional. Called once when the stage starts, before the first task. */
  int (*start)(ferry_instance *ins, ferry_error *err);
  /* Required. RUN mode: carry the task's item to the target. Record each step's intent with
   * ferry_task_intent() before its side effect, then complete with ferry_task_done() or ferry_task_fail(),
   * now or later. When ferry_task_step() is not NULL the journal says an earlier run stopped after that
   * intent: reconcile (find out what the target already has) before doing anything again. */
  void (*write)(ferry_instance *ins, ferry_task *task);
  /* Optional (the stage reports "no plan check" when NULL). PLAN mode: check, write nothing, complete with
   * ferry_task_done() = would do, or ferry_task_fail() with FERRY_EBLOCKED = blocked (and why). */
  void (*plan)(ferry_instance *ins, ferry_task *task);
  /* Optional. VERIFY mode: compare the target with the item, using ferry_task_state() (what the run
   * recorded); done = equal, fail with FERRY_EMISMATCH naming the difference. */
  void (*verify)(ferry_instance *ins, ferry_task *task);
  /* Optional. Make durable everything completed with FERRY_DONE_SYNC so far (fsync, syncfs, COMMIT), then
   * call done(arg, status, err). The core calls it before it marks such items done in the journal, in
   * groups. */
  void (*sync)(ferry_instance *ins, ferry_done_fn done, void *arg);
  /* Optional. The stage is over (all tasks completed): release what start() took. */
  void (*stop)(ferry_instance *ins);
} ferry_sink_ops;

typedef struct ferry_hook_ops {
  uint32_t struct_size;       /* sizeof(ferry_hook_ops) as compiled */
  uint32_t reserved;
  /* Hook points this hook can serve (NULL-terminated), or NULL for any point. */
  const char *const *points;
  /* Required. Run at a point; complete with ferry_hook_done(ev, status, err), now or later. A failure at
   * an item point fails that item (transient errors are retried with it). */
  void (*fire)(ferry_instance *ins, ferry_hook_event *ev);
} ferry_hook_ops;

/* ---- the descriptor ----------------------------------------------------------------------------------- */
typedef struct ferry_plugin {
  uint16_t abi_major;         /* FERRY_ABI_MAJOR when compiled; always first, never moved */
  uint16_t abi_minor;         /* FERRY_ABI_MINOR when compiled */
  uint32_t struct_size;       /* sizeof(ferry_plugin) as compiled */
  uint32_t kinds;             /* FERRY_KIND_* bits */
  uint32_t flags;             /* reserved, zero */
  const char *name;           /* [a-z0-9_-]+; must equal the <name> of the symbol ferry_plugin_<name> ('-'
                                 written '_' in the symbol) */
  const char *version;        /* the plugin's own version */
  const char *description;    /* one line */
  const char *license;        /* SPDX identifier */
  const ferry_option *options;/* options table, ended by FERRY_OPTIONS_END; NULL for none */
  size_t ctx_size;            /* bytes of per-instance context, allocated and zeroed by the core */
  /* Optional. Called after the options were written into the context. Fail with err filled. */
  int (*init)(ferry_instance *ins, ferry_error *err);
  /* Optional. Called once if init succeeded (or was NULL); release everything init and the run took. */
  void (*fini)(ferry_instance *ins);
  const ferry_source_ops *source; /* required when kinds has FERRY_KIND_SOURCE, else NULL */
  const ferry_sink_ops *sink;     /* required when kinds has FERRY_KIND_SINK, else NULL */
  const ferry_hook_ops *hook;     /* required when kinds has FERRY_KIND_HOOK, else NULL */
} ferry_plugin;

/* Smallest descriptor the core accepts (ABI 1.0 layout). */
#define FERRY_PLUGIN_MIN_SIZE (offsetof(ferry_plugin, hook) + sizeof(const ferry_hook_ops *))

#define FERRY_PLUGIN_SYMBOL(name_) ferry_plugin_##name_
/* Defines the exported descriptor. `name_` is a C identifier (use '_' where the plugin name has '-');
 * pass the remaining fields as designated initialisers:
 *   FERRY_PLUGIN_DEFINE(jsonl, .name = "jsonl", .kinds = FERRY_KIND_SOURCE | FERRY_KIND_SINK, ...);  */
#define FERRY_PLUGIN_DEFINE(name_, ...)                                                              \
  FERRY_API extern const ferry_plugin FERRY_PLUGIN_SYMBOL(name_);                                    \
  const ferry_plugin FERRY_PLUGIN_SYMBOL(name_) = {.abi_major = FERRY_ABI_MAJOR,                      \
                                                   .abi_minor = FERRY_ABI_MINOR,                      \
                                                   .struct_size = sizeof(ferry_plugin),               \
                                                   __VA_ARGS__}

/* ---- what an instance can ask of the core ----------------------------------------------------------- */
/* The context (ctx_size bytes) of this instance; owned by the core, valid until fini() returns. */
FERRY_API void *ferry_instance_ctx(const ferry_instance *ins);
/* The loop every callback runs on; owned by the core. */
FERRY_API uv_loop_t *ferry_instance_loop(const ferry_instance *ins);
/* The stage name, the plugin name, and the role this instance plays (FERRY_KIND_SOURCE, _SINK or _HOOK).
 * Strings owned by the core, valid until fini() returns. */
FERRY_API const char *ferry_instance_stage(const ferry_instance *ins);
FERRY_API const char *ferry_instance_plugin(const ferry_instance *ins);
FERRY_API uint32_t ferry_instance_role(const ferry_instance *ins);
FERRY_API ferry_mode ferry_instance_mode(const ferry_instance *ins);
/* The stage's `concurrency` (items in flight) and `rate` (requests per second per endpoint, 0 = no limit)
 * settings, for plugins that size connection pools or HTTP clients. */
FERRY_API unsigned ferry_instance_concurrency(const ferry_instance *ins);
FERRY_API double ferry_instance_rate(const ferry_instance *ins);
/* Registers a value (a password, a token, a computed hash) so the core redacts it from every output.
 * The string is copied. */
FERRY_API void ferry_secret(const ferry_instance *ins, const char *value);

/* ---- sources ------------------------------------------------------------------------------------------- */
/* Hands an item to the core (ownership transferred). Only between start and end; an item of a kind the
 * source did not declare fails that item. */
FERRY_API void ferry_emit(ferry_instance *ins, ferry_item *item);
/* No more items in this run. */
FERRY_API void ferry_source_end(ferry_instance *ins);
/* The source cannot go on: the stage stops taking items, lets those in flight finish, and fails. `err` is
 * copied. */
FERRY_API void ferry_source_fail(ferry_instance *ins, const ferry_error *err);
/* Optional: how many items the source expects to emit in total (for the progress display and ETA). */
FERRY_API void ferry_source_total(ferry_instance *ins, int64_t total);
/* Optional: whether the core will hand an item with this key to the sink in this run, judging by the
 * journal: 0 when it will not (RUN and PLAN: the journal holds the item as done or skipped, so it is counted
 * as already done; VERIFY: the journal does not hold it as done, so it is reported not migrated), 1
 * otherwise (also without a journal, or when the journal cannot be read: the emit reports that). A source
 * whose items are expensive to build (checksums, detail requests) asks first and, for 0, still emits the
 * item with the key, but without doing the expensive part: the core counts it and frees it unseen.
 * The stage's --limit is not taken into account. Added in ABI 1.0 (after the first release of the SDK
 * headers): a plugin using it needs a core that has it. */
FERRY_API int ferry_source_wanted(ferry_instance *ins, const char *key);

/* ---- notes shared by the workers of a stage (ABI 1.6) -------------------------------------------------
 * Small named text values that one instance learned once and that the same stage's instances in the other
 * workers (ferry run --worker) need not learn again: the joget sink notes which users' credentials the
 * target accepted, so that N workers check each user once, not N times. Scope and lifetime:
 *  - worker mode: kept in the journal under the stage's listing, seen by every worker of that listing at
 *    once, and gone with it (when the last worker leaves the stage, or the next start of the stage replaces
 *    it). A note is never seen by a later start of the stage: it holds what was true during this one.
 *  - otherwise (one process): kept in memory for the stage, gone when the stage ends.
 *  - an instance outside a running stage: nothing is kept (put returns 0, get NULL).
 * A note is a hint, not a promise: get returns NULL also when the journal could not be read (logged), and
 * the plugin then asks the target itself. In worker mode each call is one round trip to the journal server
 * (synchronous, on the loop): call it once per key and cache the answer, never once per item. Anyone who can
 * read the journal reads the notes: never put a secret in a name or a value (a fingerprint of credentials
 * must be a slow, salted one, such as PBKDF2).
 * name: 1 to 256 bytes, value: at most 4096 bytes, both UTF-8; both copied. */
/* The value noted under `name`, or NULL (none, bad arguments, or a journal error). malloc'd, owned by the
 * caller (free()). */
FERRY_API char *ferry_shared_get(ferry_instance *ins, const char *name);
/* Notes `value` under `name`, replacing what was there (the last writer wins). 0, or FERRY_EINVAL (bad name
 * or value) or the journal's error (err set); a note for a listing that is gone is dropped, returning 0. */
FERRY_API int ferry_shared_put(ferry_instance *ins, const char *name, const char *value, ferry_error *err);

/* ---- sinks: tasks -------------------------------------------------------------------------------------- */
#define FERRY_DONE_SYNC 0x1u    /* durable only after the sink's sync(): the core marks it done after sync */
#define FERRY_DONE_SKIPPED 0x2u /* the target already had it: nothing was written */

/* The item (borrowed; valid until the task completes). */
FERRY_API const ferry_item *ferry_task_item(const ferry_task *task);
FERRY_API ferry_instance *ferry_task_instance(const ferry_task *task);
FERRY_API ferry_mode ferry_task_mode(const ferry_task *task);
/* 1 for the first try, 2 for the first retry, ... */
FERRY_API unsigned ferry_task_attempt(const ferry_task *task);
/* The last step recorded for this item in the journal by an earlier run or attempt, or NULL. Borrowed,
 * valid until the next ferry_task_intent() or the task's completion. */
FERRY_API const char *ferry_task_step(const ferry_task *task);
/* The item's journal state: a JSON object the sink may read and modify (target ids, progress of its steps).
 * Borrowed, owned by the task; loaded from the journal on resume; saved with each ferry_task_intent() and
 * at completion. Never put secrets in it. */
FERRY_API json_t *ferry_task_state(ferry_task *task);
/* Durably records "about to do `step`" together with the current state, before the side effect. Returns
 * 0, or a negative code (journal failure; the sink must then fail the task without doing the step). */
FERRY_API int ferry_task_intent(ferry_task *task, const char *step, ferry_error *err);
/* Records old id -> new id (kind: "process", "activity", "record", "file", ...) in the journal's id map.
 * Strings copied. */
FERRY_API int ferry_task_map_id(ferry_task *task, const char *kind, const char *old_id, const char *new_id,
                                ferry_error *err);
/* The new id the journal holds for (kind, old_id) — mapped by any item, in this run or an earlier one — or
 * NULL (unknown, no journal, or a journal error). malloc'd, owned by the caller (free()). Lets a sink tell
 * whether an object found on the target is already known to the journal (reconcile). Added in ABI 1.0. */
FERRY_API char *ferry_task_lookup_id(ferry_task *task, const char *kind, const char *old_id);
/* Report object of this item (borrowed, owned by the task): plan and verify put their findings here
 * ("would": "...", "differences": [...]); it goes to the JSON report. In RUN mode the core also stores a
 * non-empty report object in the journal with the item's outcome (done or failed), so that reports and
 * `ferry status --items` can show it later; never put secrets in it (they are redacted anyway).
 * Conventions (ABI 1.1; reports, status and the HTML report read these keys):
 *   "target_id": string      the main object created on the target (a process instance id, a path)
 *   "adopted": true          the target object was found and adopted (created by an interrupted attempt)
 *   "losses": [{"kind": string, "what": string, ...}]  what could not be carried exactly and why; kinds used
 *                             in tree: "and_join", "deadline", "tool", "notification", "duplicate", "definition",
 *                             "revisiondate", "runs_51", "run"
 *   "differences": [string]  verify (and the sink's own check): what differs
 *   "would": string          plan: what a run would do
 * The old -> new ids themselves go through ferry_task_map_id(). */
FERRY_API json_t *ferry_task_report(ferry_task *task);
/* 1 when this task repairs the item (`ferry run --repair`, ABI 1.1): the journal holds it as done, and the
 * last `ferry verify` found the target different. The sink writes it again onto the target objects the
 * journal recorded (ferry_task_state(), ferry_task_step() as after a resume): rows and files are written
 * again whatever the conflict policy, an instance is converged on its recorded target instance; never
 * create a second target object. 0 otherwise (also in PLAN and VERIFY). */
FERRY_API int ferry_task_repair(const ferry_task *task);
/* Completes the task successfully. `flags`: FERRY_DONE_SYNC, FERRY_DONE_SKIPPED. The task and its item
 * must not be used afterwards. */
FERRY_API void ferry_task_done(ferry_task *task, unsigned flags);
/* Completes the task with a failure; `err` is copied. Transient errors (ferry_error_is_transient) are
 * retried by the core with capped exponential backoff and jitter, up to the stage's retry limit; others
 * mark the item failed and the run goes on. The task must not be used afterwards. */
FERRY_API void ferry_task_fail(ferry_task *task, const ferry_error *err);

/* ---- hooks ----------------------------------------------------------------------------------------------
 * Points fired by the core: "stage_start", "stage_end" (no task), "item_done", "item_failed" (with task).
 * Sources and sinks fire their own points (e.g. the joget sink: "before_start", "after_start").
 * Firing runs every hook attached to that point in the stage, in configuration order, one after the other;
 * `done` is called once when all have completed (status of the first failure, if any). `task` may be NULL
 * for stage-level points. `data` is borrowed for the duration of the firing (hooks see it read-only). */
FERRY_API void ferry_fire(ferry_instance *ins, ferry_task *task, const char *point, json_t *data,
                          ferry_done_fn done, void *arg);

FERRY_API const char *ferry_hook_point(const ferry_hook_event *ev);
/* The task and item the point was fired for, or NULL at stage-level points. Borrowed. */
FERRY_API ferry_task *ferry_hook_task(const ferry_hook_event *ev);
FERRY_API const ferry_item *ferry_hook_item(const ferry_hook_event *ev);
/* Data the firer passed (borrowed, may be NULL), e.g. {"target_id": "..."}. */
FERRY_API json_t *ferry_hook_data(const ferry_hook_event *ev);
/* Per task and hook instance state kept across points (snapshot at before_start, used at after_start).
 * A JSON object owned by the task, saved in the journal with the task's state, so it survives a crash.
 * NULL at stage-level points. */
FERRY_API json_t *ferry_hook_state(ferry_hook_event *ev);
/* Completes the firing for this hook; `err` is copied. */
FERRY_API void ferry_hook_done(ferry_hook_event *ev, int status, const ferry_error *err);

#ifdef __cplusplus
}
#endif
#endif
