/* ferry core, layer "run": the pipeline and its run model (core/run). Uses every layer below.
 *
 * From the top down (each part calls only the parts below it; test boundary.layers):
 *   runtime.c   ferry/runtime.h: owns the loop, registry, configuration and the stages (struct
 *               ferry_runtime, private to it); runs them: scheduling, interrupt, progress ticks, stall
 *               detection, and at the end the result and report through report.c.
 *   the stage machinery, one unit whose parts call each other:
 *     pipeline.c  load time: resolves each stage's plugins, checks how they fit and their options, orders
 *                 the stages; the iterator over a stage's plugin references.
 *     stage.c     ferry_stage: one source -> one sink with its hooks; owns its tasks, its queue and its
 *                 handles; reports its end through a callback.
 *     task.c      ferry_task: one item on its way through the sink; owns the item, its journal state and its
 *                 report object. Recycled through the stage's free list.
 *     hook.c      one ferry_fire(): the hooks of a point run one after the other.
 *     worker.c    ferry run --worker: heartbeat, shares, claims (docs/journal.md, "Several workers").
 *     listing.c   worker mode: a stage's source read once into the journal, every worker taking from it.
 *   below them:
 *     outcome.c   the run's journal writer: outcomes in groups, intents, ids, verify marks, the failure
 *                 state the pumps read.
 *     report.c    the report: spooled items, result, summary, the JSON report file.
 *     progress.c  the progress display.
 *
 * What the stages of a run share is a ferry__run, owned by the runtime; nothing below runtime.c knows
 * struct ferry_runtime.
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
  int finished;   /* the stage has ended (in any way) or will not run */
  int status;     /* finished: 0, FERRY_ECANCELED (interrupted, or not run because of the interrupt), or the
                     code that failed the stage (or kept it from running) */
} ferry_progress_row;
/* style: 1 plain lines (one line per stage every few seconds and at the end), 2 terminal display redrawn in
 * place (done, failed, total, rate, ETA; redrawn below every log line, cut to the terminal's width). In JSON
 * log format (ferry__log_json() when created) either style writes JSON lines instead, at the pace of the plain
 * lines: {"ts", "level": "info", "event": "progress", "stage", "state", counts, rates, "msg"}. `out`
 * borrowed. */
ferry_progress *ferry__progress_new(int style, FILE *out);
/* The terminal width to fit (tests; 0: ask the terminal, no limit when it is not one). */
void ferry__progress_set_columns(ferry_progress *p, int columns);
void ferry__progress_update(ferry_progress *p, const ferry_progress_row *rows, size_t n, int final);
/* The same at a given time `now` (ferry__now() scale; tests drive the clock with it). */
void ferry__progress_update_at(ferry_progress *p, const ferry_progress_row *rows, size_t n, int final,
                              double now);
void ferry__progress_free(ferry_progress *p);

typedef struct ferry_stage ferry_stage;

/* Tuning (also documented in docs/architecture.md). */
#define FERRY_GROUP_MAX 1000   /* outcomes per journal transaction */
#define FERRY_GROUP_MS 200     /* ... or at least every this many ms */
#define FERRY_YIELD_EVERY 4096 /* items handled before the pump yields to the loop */

/* ===== outcome.c: the run's journal writer ============================================================== */
typedef struct ferry__outcomes ferry__outcomes;
/* A writer over `journal` (borrowed; NULL: the run has none, every write is skipped). `writable`: the run
 * writes it (a run; a verify's marks). Its group commit timer runs on `loop` (unreferenced). */
ferry__outcomes *ferry__outcomes_new(uv_loop_t *loop, ferry_journal *journal, int writable);
/* Commits the open group, closes the timer, frees the writer; closed(arg) once the timer is closed (the
 * loop must run for it; at once when there is no timer). NULL allowed. */
void ferry__outcomes_close(ferry__outcomes *o, void (*closed)(void *arg), void *arg);
/* 1 when there is a journal and it has not failed. */
int ferry__outcomes_ok(const ferry__outcomes *o);
/* The first journal failure of the run (borrowed), or NULL: the stages read it in their pump. */
const ferry_error *ferry__outcomes_error(const ferry__outcomes *o);
/* Records a journal failure (the first one is kept and logged; later writes are skipped). */
void ferry__outcomes_fail(ferry__outcomes *o, const ferry_error *e);
/* The item's row (FERRY_J_NONE when absent; clear it with ferry__jrow_clear). get records a failure and
 * returns -1; peek returns -1 and records nothing (ferry_source_wanted: the emit looks again). */
int ferry__outcomes_get(ferry__outcomes *o, const char *stage, const char *key, ferry_jrow *row);
int ferry__outcomes_peek(ferry__outcomes *o, const char *stage, const char *key, ferry_jrow *row);
/* The new id the journal maps (kind, old_id) to, or NULL (none, no journal, an error); malloc'd. */
char *ferry__outcomes_lookup_id(ferry__outcomes *o, const char *kind, const char *old_id);
/* Committed at once. Errors: FERRY_EIO "the journal failed earlier: ..." after a failure; a failure of the
 * write itself is recorded and moved into err. */
int ferry__outcomes_intent(ferry__outcomes *o, const char *stage, const char *key, const char *step,
                           json_t *state, unsigned attempts, ferry_error *err);
int ferry__outcomes_map_id(ferry__outcomes *o, const char *stage, const char *key, const char *kind,
                           const char *old_id, const char *new_id, ferry_error *err);
/* Grouped. Each returns 1 when the journal now holds the outcome (the report of the run then reads it from
 * there), 0 when it was not written (no journal, not writable, a failure: recorded). `state` NULL stores an
 * empty object; `report`: the task's report object (stored when not empty). done: done or skipped, clears
 * the error and the verify mark. failed: the error, attempts and report; `repair` (a failed repair) keeps
 * the row done with its mark. doubt: the sink's sync() failed: the row keeps its status (its intent) and
 * gets the error; 0 when the journal has no row for the item. verified: `mismatch` (the item differs: its
 * message and the report's "differences") marks the item, NULL (equal) clears its mark. */
int ferry__outcome_done(ferry__outcomes *o, const char *stage, const char *key, json_t *state, json_t *report,
                        unsigned attempts, int skipped);
int ferry__outcome_failed(ferry__outcomes *o, const char *stage, const char *key, json_t *state,
                          json_t *report, const ferry_error *cause, unsigned attempts, int repair);
int ferry__outcome_doubt(ferry__outcomes *o, const char *stage, const char *key, const ferry_error *cause,
                         json_t *report);
int ferry__outcome_verified(ferry__outcomes *o, const char *stage, const char *key, const ferry_error *mismatch,
                            json_t *report);
/* Commits the open group (the timer, the end of a stage, the end of the run). */
void ferry__outcomes_commit(ferry__outcomes *o);

/* ===== what the stages of a run share ==================================================================== */
typedef struct ferry__run {
  uv_loop_t *loop;                            /* the runtime's */
  const ferry_config *cfg;                    /* the loaded configuration */
  ferry_stage **stages;                       /* every stage, in topological order */
  size_t nstages;
  volatile sig_atomic_t *interrupt_requested; /* ferry_runtime_interrupt() (maybe from a signal handler) */
  /* per run (set by ferry_runtime_run) */
  ferry_mode mode;
  int repair;             /* ferry_run_opts.repair */
  int interrupted;        /* the run was interrupted */
  ferry_journal *journal; /* NULL when no stage journals (or plan/verify without a journal file) */
  int journal_write;      /* the run writes the journal (a run, or a verify's marks) */
  int64_t run_id;         /* the run's row in the journal's runs table (0 = none) */
  ferry__outcomes *out;   /* the run's journal writer (set during a run) */
  struct ferry__worker *worker; /* ferry run --worker: claims, heartbeat, shares (worker.c); NULL otherwise */
  const char *worker_name;      /* ... its name (the caller's, valid during the run), or NULL */
  double t0;              /* ferry__now() when the run started its stages */
} ferry__run;

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
  int claimed;           /* worker mode: this worker claimed the item (taken from the listing, listing.c) */
  int lost;              /* worker mode: the claim expired before an intent: nothing more is written */
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

typedef void (*ferry__stage_cb)(ferry_stage *st, void *arg);

struct ferry_stage {
  ferry__run *run;            /* the runtime's (borrowed) */
  const ferry_stage_cfg *cfg; /* borrowed from run->cfg */
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
  uint64_t rng;  /* retry jitter (ferry__rng_next) */
  ferry__stage_cb on_end; /* ferry__stage_start's: called once when the stage has finished */
  void *on_end_arg;
  size_t closing;               /* its handles being closed (idle, retry timers) */
  void (*on_released)(void *);  /* ferry__stage_release's: called once they are all closed */
  void *on_released_arg;

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
  ferry__series series; /* per interval: completed, failed, retries (ferry__stage_sample) */

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

  /* worker mode (ferry run --worker) */
  unsigned share_n;  /* live workers: this one's concurrency is max(1, concurrency / share_n) */
  int64_t elsewhere; /* items another worker did (also counted in resumed) */
  struct ferry__listing *lst; /* worker mode, a journaled stage: its source's listing (listing.c) */
  json_t *notes;              /* ferry_shared_put() without a listing: name -> value, kept in memory (listing.c) */
};


/* ===== pipeline.c: load-time checks and order ============================================================ */
/* Builds run->stages from run->cfg with the plugins of `reg`: every plugin found and of the right role, the
 * source's items reach the sink, the hook points exist, the options are checked (ferry__options_prepare),
 * the stages ordered by their `after` edges. Every load error is found here. On failure the caller frees
 * what was built (ferry__pipeline_free). */
int ferry__pipeline_build(ferry__run *run, ferry_registry *reg, ferry_error *err);
void ferry__pipeline_free(ferry__run *run);

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

/* ===== stage.c ============================================================================================ */
/* The run's instances of the stage (every option and init() error before anything runs); nothing runs. */
int ferry__stage_prepare(ferry_stage *st, ferry_mode mode, ferry_error *err);
/* Starts the stage; ended(st, arg) is called once when it has finished (possibly from inside a plugin
 * callback of the last item; the stage's status says how it went). */
void ferry__stage_start(ferry_stage *st, ferry__stage_cb ended, void *arg);
void ferry__stage_kick(ferry_stage *st); /* schedule the pump (it reads the run's state: journal, interrupt) */
void ferry__stage_interrupt(ferry_stage *st);
/* After the run: instances (fini), tasks, spool, handles; released(arg) once every handle is closed (the
 * loop must run for it; at once when there is none). */
void ferry__stage_release(ferry_stage *st, void (*released)(void *arg), void *arg);
void ferry__stage_handle_closing(ferry_stage *st); /* a handle of the stage (or of its tasks) closes */
void ferry__stage_handle_closed(ferry_stage *st);
void ferry__stage_sync_maybe(ferry_stage *st, int force);
int ferry__stage_settled(const ferry_stage *st);
void ferry__stage_fail(ferry_stage *st, const ferry_error *e);
/* Adds the counters' increase since the last sample to the stage's time series (the runtime's tick, the
 * stage's end). */
void ferry__stage_sample(ferry_stage *st);
void ferry__stage_force_end(ferry_stage *st, const ferry_error *e);

/* The stage's concurrency in this run: its configured one, or a worker's share of it. */
unsigned ferry__stage_concurrency(const ferry_stage *st);

/* ===== worker.c: ferry run --worker (docs/journal.md, "Several workers") =================================== */
/* Opens the claims connection and registers the worker; when other workers are live, waits until they have
 * seen it (one heartbeat) so that their shares drop before this one starts; starts the heartbeat timer. Sets
 * run->worker. */
int ferry__worker_start(ferry__run *run, const char *url, const char *name, double lease_s, ferry_error *err);
/* Closes the timers (closed(arg) when done: the loop must run). */
void ferry__worker_close_timers(ferry__run *run, void (*closed)(void *arg), void *arg);
/* After the run's last commit: drops the worker's claims and row, closes the connection. */
void ferry__worker_end(ferry__run *run);
/* Before an intent: 1 the worker still holds the item, 0 it lost it (another worker took it), < 0 error
 * (err); ask: always ask the journal server. */
int ferry__worker_holds(ferry_stage *st, const char *key, int ask, ferry_error *err);
const char *ferry__worker_name(const ferry__run *run);
/* The worker's claims connection (borrowed; NULL when not a worker). */
ferry__claims *ferry__worker_claims(const ferry__run *run);

/* ===== listing.c: a stage's source read once by all the workers ============================================ */
typedef struct ferry__listing ferry__listing;
/* Joins (or makes) the stage's listing; the lister starts the source plugin. 0, or -1 with the run's journal
 * failure set. Sets st->lst (freed by ferry__listing_release). */
int ferry__listing_open(ferry_stage *st);
/* The source plugin's calls, in listing mode. */
void ferry__listing_emit(ferry_stage *st, ferry_item *item);
void ferry__listing_source_end(ferry_stage *st);
void ferry__listing_source_fail(ferry_stage *st, const ferry_error *err);
void ferry__listing_total(ferry_stage *st, int64_t total);
/* The pump wants up to `want` more items: the lister feeds the listing from its source, then items are taken
 * from it (ferry__stage_take_listed); when none is left, the listing's state decides (take over, rescue,
 * wait, or the end: st->source_ended). */
void ferry__listing_intake(ferry_stage *st, size_t want);
void ferry__listing_stop(ferry_stage *st);    /* the lister's source plugin stops (stage end, interrupt) */
void ferry__listing_release(ferry_stage *st); /* closes its timer (counted as a stage handle), frees it */
int ferry__listing_lister(const ferry_stage *st);
/* stage.c: an item taken from the listing, with the journal's status of it (NULL: no row). */
void ferry__stage_take_listed(ferry_stage *st, ferry_item *item, const char *status);

/* ===== task.c ============================================================================================= */
ferry_task *ferry__task_new(ferry_stage *st, ferry_item *item);
void ferry__task_start(ferry_task *t); /* hand to the sink (phase QUEUED -> SINK) */
void ferry__task_drop(ferry_task *t);  /* release without an outcome (interrupt) */
void ferry__task_free_all(ferry_stage *st);
void ferry__task_fail_now(ferry_task *t, const ferry_error *e, int retry); /* core-side failure */

/* ===== hook.c ============================================================================================= */
int ferry__hooks_at(const ferry_stage *st, const char *point); /* number of hooks attached to a point */
/* Fires a core point; `done` called once (possibly before this returns). */
void ferry__fire_core(ferry_stage *st, ferry_task *task, const char *point, json_t *data, ferry_done_fn done,
                     void *arg);
extern const char *const ferry__core_points[];
void ferry__hooks_release(ferry_stage *st); /* frees the kept firings */


/* ===== report.c =========================================================================================== */
/* An item a stage reports that the journal does not hold (plan items, verify results, failures of stages
 * without journal, items not selected for repair): redacted and spooled; dropped when the stage is not
 * prepared (the run's report is written already). entry: a JSON object, stolen. item: {"key", "status",
 * "code", "error", "detail", "attempts", "report"} from its parts. */
void ferry__report_entry(ferry_stage *st, json_t *entry);
void ferry__report_item(ferry_stage *st, const char *key, const char *status, const ferry_error *e,
                        unsigned attempts, json_t *report);
void ferry__report_spool_free(ferry_stage *st);
const char *ferry__mode_name(ferry_mode m); /* "run", "plan", "verify" */
/* The run's return code and message: the journal's failure, a stage's failure, an interruption, failed,
 * blocked or differing items, in that order; 0 when every item succeeded. */
int ferry__report_result(const ferry__run *run, ferry_error *out);
/* The summary of ferry_runtime_run(): ssum has run->nstages entries. */
void ferry__report_summary(const ferry__run *run, double seconds, ferry_stage_summary *ssum,
                           ferry_run_summary *summary);
/* The report without its item lists: a new object, small whatever the item count. Its "totals" are also the
 * run's summary in the journal. */
json_t *ferry__report_build(const ferry__run *run, int rc, const ferry_error *res, double seconds);
/* The run's summary in the journal (a new object): the report's "totals" members at the top (what older
 * ferry versions stored), and the rest of the report but its items: "mode", "status", "status_name",
 * "message", "interrupted", "repair", "seconds" and "stages" (each with its counts, time series and target
 * call latency), so that `ferry report` can draw the run again from the journal. */
json_t *ferry__report_journal_summary(json_t *report);
/* Writes the report to `path` (through "<path>.tmp", then renamed): the item lists streamed from the journal
 * (the items this run wrote) and from each stage's spool. */
int ferry__report_write(const ferry__run *run, json_t *report, const char *path, ferry_error *err);

#endif
