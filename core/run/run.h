/* ferry core: the pipeline and its run model (private to runtime.c, pipeline.c, stage.c, task.c, hook.c).
 *
 * Objects and who owns them:
 *   ferry_runtime   (runtime.c)  owns the loop, registry, config, the stages and, during a run, the journal,
 *                                the plugin instances, the progress display and the report.
 *   ferry_stage     (stage.c)    one source -> one sink with its hooks; owns its tasks and its queue.
 *   ferry_task      (task.c)     one item on its way through the sink; owns the item, its journal state
 *                                and its report object. Recycled through the stage's free list.
 *   hook firing     (hook.c)     one ferry_fire(): the hooks of a point run one after the other.
 *
 * Everything runs on the runtime's loop thread. Nothing here blocks except the journal's SQLite calls on a
 * local file (short, and committed in groups).
 */
#ifndef FERRY_CORE_RUN_H
#define FERRY_CORE_RUN_H

#include <signal.h>

#include "journal/journal.h"
#include "load/load.h"

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

typedef struct ferry_stage ferry_stage;

#define FERRY_FIRED_KEEP 256 /* finished hook firings kept per stage (see hook.c) */

/* Task phases (what the core is waiting for). */
typedef enum task_phase {
  TASK_FREE = 0, /* on the free list */
  TASK_QUEUED,   /* emitted, waiting for a sink slot */
  TASK_SINK,     /* in the sink's write/plan/verify: waiting for ferry_task_done/fail */
  TASK_HOOKS,    /* item_done / item_failed hooks running */
  TASK_RETRY,    /* waiting for its backoff timer */
} task_phase;

struct ferry_task {
  ferry_stage *stage;
  ferry_item *item; /* owned */
  task_phase phase;
  unsigned attempt;      /* 1 = first try */
  ferry_jstatus jstatus; /* what the journal said when the item came in */
  char *step;            /* last recorded step (owned) or NULL */
  json_t *state;         /* journal state (owned) or NULL until asked for */
  json_t *report;        /* report object (owned) or NULL until asked for */
  ferry_error err;       /* failure being processed */
  unsigned done_flags;   /* flags of ferry_task_done while the item_done hooks run */
  int repair;            /* a repair (ferry_task_repair): the journal holds the item with a verify mark (done:
                            in a repair run; in doubt or failed: an interrupted repair, in any run) */
  uv_timer_t *timer;     /* retry timer (allocated on first retry; freed by its close callback) */
  ferry_task *next;      /* queue / free list link */
};

/* A done item waiting for the sink's sync() before the journal may mark it done. */
typedef struct sync_entry {
  char *key;
  json_t *state;
  json_t *report; /* the task's report object (owned) or NULL */
  unsigned attempts;
  int skipped;
  int repair;
  struct sync_entry *next;
} sync_entry;

typedef enum stage_state {
  STAGE_PENDING = 0, /* not started yet */
  STAGE_RUNNING,
  STAGE_ENDING,   /* all items settled: sync, commit, stop plugins, stage_end hooks */
  STAGE_FINISHED, /* ended (status says how) */
  STAGE_NOT_RUN,  /* never started: a stage before it failed, or the run was interrupted */
} stage_state;

struct ferry_stage {
  struct ferry_runtime *rt;
  const ferry_stage_cfg *cfg; /* borrowed from rt->cfg */
  const char *name;           /* cfg->name */
  size_t order;               /* position in topological order */
  const ferry_plugin *source_plugin, *sink_plugin;
  const ferry_plugin **hook_plugins; /* cfg->nhooks */
  ferry__options *source_options, *sink_options; /* checked once, at load (owned) */
  ferry__options **hook_options;                 /* cfg->nhooks */
  ferry_stage **after;               /* stages this one waits for (borrowed) */
  size_t nafter;
  int selected; /* part of this run (ferry_run_opts.stages) */

  /* ---- per run (reset by ferry__stage_prepare from here to the end) ------------------------------------- */
  ferry_instance *source, *sink;
  ferry_instance **hooks; /* cfg->nhooks, in config order */
  char **hook_keys;       /* "<index>:<plugin>": key of the hook's state in the task state */
  stage_state state;
  int status;        /* 0 or the code that failed the stage */
  ferry_error error; /* why the stage failed */
  ferry_mode mode;
  int journal;       /* this stage reads the journal */
  int journal_write; /* ... and writes it (RUN mode) */
  int journal_marks; /* ... and writes verify marks (VERIFY mode, journal opened for writing) */
  unsigned concurrency;
  size_t window; /* max items asked for + queued + active */
  int64_t limit; /* 0 = none */

  size_t requested;                /* asked of the source, not yet emitted */
  size_t queued;                   /* tasks waiting for a sink slot */
  size_t insink;                   /* tasks in the sink */
  size_t active;                   /* tasks taken out of the queue and not yet released */
  ferry_task *qhead, *qtail;       /* FIFO of queued tasks */
  ferry_task *freelist, *freetail; /* FIFO, so that a task completed twice is caught before it is reused */
  ferry_task **tasks;              /* every task allocated in this run (free or not), freed at the end */
  size_t ntasks, taskcap;

  int source_started, source_ended, source_failed, source_stopped, limit_reached, sink_started;
  int interrupted;
  int starting;  /* stage_start hooks running */
  int end_phase; /* stage.c: where the end sequence is */
  int in_end, end_again, reported_finished;
  int has_item_done, has_item_failed; /* hooks attached to these points */

  /* counters */
  int first_fail_code; /* code of the first item that failed (not blocked/mismatched) */
  int64_t total, taken, done, skipped, failed, retried, resumed, blocked, mismatched, not_migrated;
  int64_t not_selected, repaired, repair_failed, equal; /* repair runs; verify: items found equal */
  int64_t max_outstanding, max_insink; /* observed peaks (tests) */
  double t_start, t_end;

  /* synchronous-completion-safe pump */
  int pumping, pump_again;
  uv_idle_t idle; /* runs the pump from a clean stack */
  int idle_init;
  unsigned budget; /* items handled since the last yield to the loop */

  /* durable outcomes (FERRY_DONE_SYNC) */
  sync_entry *sync_head, *sync_tail;
  size_t sync_count;
  sync_entry *syncing; /* the group whose sync() is running */
  int sync_running;
  double sync_since; /* ferry__now() of the oldest pending entry */

  /* Report entries of this stage that the journal does not hold (the report of a run reads the items it
   * wrote from the journal): plan items, verify results, failures of stages without journal, items not
   * selected for repair. Spooled to an unlinked temporary file, one JSON object (redacted) per line, so that
   * memory stays flat; in `items` (an array) only when no temporary file can be created. */
  FILE *spool;
  json_t *items;
  int64_t nentries;
  void
      *fired[FERRY_FIRED_KEEP]; /* hook.c: the last finished firings, kept to catch late double completions */
  unsigned fired_pos;

  /* ferry_source_wanted(): the row it read, reused by the next ferry_emit() of the same key */
  char *wanted_key;
  ferry_jrow wanted_row;
};

struct ferry_runtime {
  uv_loop_t loop;
  int loop_init;
  uv_async_t wake; /* ferry_runtime_interrupt */
  volatile sig_atomic_t interrupt_requested;
  char **plugin_path; /* opts->plugin_path (owned) */
  int no_default_path;
  char *journal_path; /* opts->journal_path (owned) or NULL */
  ferry_registry *reg;
  ferry_config *cfg;
  int loaded;
  json_t *settings;     /* ferry_runtime_settings() of the loaded configuration (owned) */
  ferry_stage **stages; /* topological order */
  size_t nstages;

  /* ---- per run ----------------------------------------------------------------------------------------- */
  int running;
  ferry_mode mode;
  ferry_journal *journal; /* NULL when no stage journals (or plan/verify without a journal file) */
  int journal_write;
  int64_t run_id;   /* the run's row in the journal's runs table (0 = none) */
  int repair;       /* ferry_run_opts.repair */
  int group_open;
  size_t group_n;  /* outcomes in the open group */
  uv_timer_t tick; /* progress display + group commit timer */
  int tick_init;
  ferry_progress *progress;
  int progress_style;
  size_t running_stages;
  int finished;
  int interrupted;
  ferry_error journal_error; /* first journal failure (fails the run) */
  uint64_t rng;
  json_t *empty; /* shared empty object (journal state of items without one) */
  ferry_stage_summary *ssum;
  ferry_run_summary summary;
  size_t closing; /* handles being closed */
};

/* Tuning (also documented in docs/architecture.md). */
#define FERRY_GROUP_MAX 1000   /* outcomes per journal transaction */
#define FERRY_GROUP_MS 200     /* ... or at least every this many ms */
#define FERRY_YIELD_EVERY 4096 /* items handled before the pump yields to the loop */

/* pipeline.c: load-time checks and order */
int ferry__pipeline_build(struct ferry_runtime *rt, ferry_error *err);
void ferry__pipeline_free(struct ferry_runtime *rt);

/* The plugin references of a stage, in order: its source, its sink, then its hooks in configuration order.
 * The one walk over them (resolving plugins, checking options, creating and destroying instances). */
typedef struct ferry__stage_ref {
  const ferry_plugin_ref *ref; /* the configuration's */
  uint32_t role;               /* FERRY_KIND_SOURCE, _SINK or _HOOK */
  size_t hook;                 /* hooks: the index in cfg->hooks */
  char what[32];               /* "source", "sink", "hooks[<i>]": for messages */
  const ferry_plugin **plugin; /* where the stage keeps the resolved plugin, */
  ferry__options **options;    /* its checked options */
  ferry_instance **instance;   /* and, during a run, its instance (NULL before the run's slots exist) */
} ferry__stage_ref;
size_t ferry__stage_refs(const ferry_stage *st); /* 2 + the number of hooks */
void ferry__stage_ref_at(ferry_stage *st, size_t i, ferry__stage_ref *r);

/* stage.c */
int ferry__stage_prepare(ferry_stage *st, ferry_mode mode, ferry_error *err); /* instances; nothing runs */
void ferry__stage_start(ferry_stage *st);
void ferry__stage_kick(ferry_stage *st); /* schedule the pump */
void ferry__stage_interrupt(ferry_stage *st);
void ferry__stage_release(ferry_stage *st);       /* after the run: instances, tasks, handles */
void ferry__stage_sync_maybe(ferry_stage *st, int force);
int ferry__stage_settled(const ferry_stage *st);
void ferry__stage_add_report(ferry_stage *st, const char *key, const char *status, const ferry_error *e,
                            unsigned attempts, json_t *report);
void ferry__stage_add_entry(ferry_stage *st, json_t *entry); /* stolen; redacted and spooled */
/* Calls fn with each spooled entry (compact JSON text without newline), in order. 0, or -1 on a read error. */
int ferry__stage_foreach_entry(ferry_stage *st, int (*fn)(void *arg, const char *json, size_t len), void *arg);
void ferry__stage_fail(ferry_stage *st, const ferry_error *e);
void ferry__stage_force_end(ferry_stage *st, const ferry_error *e);

/* task.c */
ferry_task *ferry__task_new(ferry_stage *st, ferry_item *item);
void ferry__task_start(ferry_task *t); /* hand to the sink (phase QUEUED -> SINK) */
void ferry__task_drop(ferry_task *t);  /* release without an outcome (interrupt) */
void ferry__task_free_all(ferry_stage *st);
void ferry__task_fail_now(ferry_task *t, const ferry_error *e, int retry); /* core-side failure */

/* runtime.c: journal group commit and run bookkeeping */
int ferry__rt_journal_ok(struct ferry_runtime *rt);
void ferry__rt_group_touch(struct ferry_runtime *rt); /* an outcome was written (opens a group first) */
int ferry__rt_group_open(struct ferry_runtime *rt);
void ferry__rt_group_commit(struct ferry_runtime *rt);
void ferry__rt_journal_failed(struct ferry_runtime *rt, const ferry_error *e);
void ferry__rt_stage_finished(struct ferry_runtime *rt, ferry_stage *st);
uint64_t ferry__rt_random(struct ferry_runtime *rt);
void ferry__rt_handle_closing(struct ferry_runtime *rt);
void ferry__rt_handle_closed(struct ferry_runtime *rt);

/* hook.c */
int ferry__hooks_at(const ferry_stage *st, const char *point); /* number of hooks attached to a point */
/* Fires a core point; `done` called once (possibly before this returns). */
void ferry__fire_core(ferry_stage *st, ferry_task *task, const char *point, json_t *data, ferry_done_fn done,
                     void *arg);
extern const char *const ferry__core_points[];
void ferry__hooks_release(ferry_stage *st); /* frees the kept firings */

#endif
