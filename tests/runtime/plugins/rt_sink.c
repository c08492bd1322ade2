/* rt-sink: a sink with knobs for the runtime tests.
 *
 * Writes one line per call to `log`: "W <key> attempt=<n> step=<recorded step|-> state=<json> repair=<0|1>",
 * "P ..." (plan), "V ..." (verify), "I <key> <step>" (intent), "R <key> found|absent" (reconcile), "S <n>"
 * (sync); repair= is what ferry_task_repair() said.
 * Knobs: complete synchronously or from a timer; fail transiently the first n attempts of chosen keys; fail
 * chosen keys permanently; plan: block chosen keys; verify: report chosen keys as different (FERRY_EMISMATCH,
 * with "differences" in the report); fail the repair of chosen keys; map ids and report a target id, losses
 * and adoption; record intents with steps; fire its hook points before_write/after_write; complete with
 * FERRY_DONE_SYNC and a sync(); raise SIGUSR1 after n writes (tests turn it into ferry_runtime_interrupt);
 * misuse the API on purpose; `note`: at each write, read the shared note of that name (ferry_shared_get) and
 * log "N <key> got=<value|->", and when there was none put `note_value` under it; the first write also
 * logs "X <rc> <message>" for a put with a name that is too long and one with a value that is not UTF-8.
 *
 * `target`: the real side effect of the crash test: each item appends "<key>\n" to that file, after an intent
 * "append". An item handed back in doubt (ferry_task_step() != NULL) is reconciled: if its line is already in
 * the file the sink completes it as skipped instead of writing it again. `kill_at` / `kill_where`: the
 * process SIGKILLs itself during its n-th append: right after the intent ("intent"), after the append
 * ("write") or after ferry_task_done ("done").
 *
 * Built twice: rt-sink (accepts records and files) and, with RT_ISINK, rt-isink (accepts instances only). */
#include <signal.h>

#include "rt_util.h"

typedef struct sink {
  int async;
  int64_t delay_ms;
  json_t *transient; /* {"key": n}: the first n attempts fail with FERRY_ETRANSIENT */
  char **permanent;
  char **blocked;
  char **mismatch;
  char **repair_fail;
  int map_ids;
  char **losses;
  char **steps;
  char *log;
  char *events;
  char *stats;
  char *target;
  int64_t kill_at;
  char *kill_where;
  int sync;
  int sync_async;
  int fire;
  int misuse;
  int64_t sigint_after;
  char *secret;
  char *note;
  char *note_value;
  /* run state */
  ferry_instance *ins;
  int64_t inflight, max_inflight, writes, syncs, appends;
} sink;

static const ferry_option sink_options[] = {
    {.key = "async", FERRY_OPT_BOOL, "false", 0, offsetof(sink, async), "complete from a timer"},
    {.key = "delay_ms", FERRY_OPT_INT, "0", 0, offsetof(sink, delay_ms), "async: completion delay"},
    {.key = "transient", FERRY_OPT_JSON, NULL, 0, offsetof(sink, transient), "{key: n}: fail the first n attempts"},
    {.key = "permanent", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(sink, permanent), "keys failed permanently"},
    {.key = "blocked", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(sink, blocked), "plan: keys reported blocked"},
    {.key = "mismatch", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(sink, mismatch), "verify: keys that differ"},
    {.key = "repair_fail", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(sink, repair_fail),
     "keys whose repair (ferry_task_repair() = 1) fails permanently"},
    {.key = "map_ids", FERRY_OPT_BOOL, "false", 0, offsetof(sink, map_ids),
     "map record <key> -> r-<key> and file <key> -> f-<key>; report target_id t-<key>"},
    {.key = "losses", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(sink, losses), "keys reported adopted and with a loss"},
    {.key = "steps", FERRY_OPT_STRING_LIST, NULL, 0, offsetof(sink, steps), "intents recorded per item, in order"},
    {.key = "log", FERRY_OPT_STRING, "\"\"", 0, offsetof(sink, log), "event log file"},
    {.key = "events", FERRY_OPT_STRING, "\"\"", 0, offsetof(sink, events), "file shared with rt-gen: C lines"},
    {.key = "stats", FERRY_OPT_STRING, "\"\"", 0, offsetof(sink, stats), "JSON stats written at stop"},
    {.key = "target", FERRY_OPT_STRING, "\"\"", 0, offsetof(sink, target), "file of written keys (crash test)"},
    {.key = "kill_at", FERRY_OPT_INT, "0", 0, offsetof(sink, kill_at), "SIGKILL during the n-th append (0 = never)"},
    {.key = "kill_where", FERRY_OPT_STRING, "\"write\"", 0, offsetof(sink, kill_where), "intent, write or done"},
    {.key = "sync", FERRY_OPT_BOOL, "false", 0, offsetof(sink, sync), "complete with FERRY_DONE_SYNC"},
    {.key = "sync_async", FERRY_OPT_BOOL, "false", 0, offsetof(sink, sync_async), "sync() completes from a timer"},
    {.key = "fire", FERRY_OPT_BOOL, "false", 0, offsetof(sink, fire), "fire before_write and after_write"},
    {.key = "misuse", FERRY_OPT_BOOL, "false", 0, offsetof(sink, misuse), "complete tasks twice"},
    {.key = "sigint_after", FERRY_OPT_INT, "0", 0, offsetof(sink, sigint_after), "raise SIGUSR1 at the n-th write"},
    {.key = "secret", FERRY_OPT_STRING, "\"\"", FERRY_OPT_SECRET, offsetof(sink, secret), "put into error messages"},
    {.key = "note", FERRY_OPT_STRING, "\"\"", 0, offsetof(sink, note), "shared note read (and put) at each write"},
    {.key = "note_value", FERRY_OPT_STRING, "\"\"", 0, offsetof(sink, note_value), "the value it puts"},
    FERRY_OPTIONS_END};

static const char *const sink_points[] = {"before_write", "after_write", NULL};

typedef struct op {
  sink *s;
  ferry_task *task;
  int64_t n;   /* target: number of this append in this process (0: no append) */
  int skipped; /* reconciled: already in the target */
} op;

static void maybe_kill(op *o, const char *where) {
  if (o->s->kill_at && o->n == o->s->kill_at && !strcmp(o->s->kill_where, where)) {
    rt_line(o->s->log, "K %s %s", ferry_task_item(o->task)->key, where);
    kill(getpid(), SIGKILL);
  }
}

static void complete(void *arg) {
  op *o = arg;
  sink *s = o->s;
  ferry_task *task = o->task;
  int skipped = o->skipped;
  int64_t append_no = o->n;
  free(o);
  const char *key = ferry_task_item(task)->key;
  ferry_error e = FERRY_ERROR_INIT;
  int64_t n = 0;
  json_t *tv = s->transient ? json_object_get(s->transient, key) : NULL;
  if (json_is_integer(tv)) n = json_integer_value(tv);
  s->inflight--;
  if (ferry_task_repair(task) && rt_in_list(s->repair_fail, key)) {
    ferry_error_set(&e, FERRY_EINVAL, "rt-sink: the repair of %s is refused by the target", key);
    json_object_set_new(ferry_task_report(task), "target", json_string("repair refused"));
  } else if (rt_in_list(s->permanent, key)) {
    ferry_error_set(&e, FERRY_EINVAL, "rt-sink: item %s is refused by the target%s%s", key,
                    *s->secret ? " (password " : "", *s->secret ? s->secret : "");
    if (*s->secret) ferry_error_set_detail(&e, "connection password=%s", s->secret);
    json_object_set_new(ferry_task_report(task), "target", json_string("refused"));
  } else if ((int64_t)ferry_task_attempt(task) <= n) {
    ferry_error_set(&e, FERRY_ETRANSIENT, "rt-sink: item %s: target busy (attempt %u)", key,
                    ferry_task_attempt(task));
  }
  rt_line(s->events, "C %s", key);
  if (e.code) {
    ferry_task_fail(task, &e);
    if (s->misuse) ferry_task_fail(task, &e);
  } else {
    ferry_task_done(task, (s->sync ? FERRY_DONE_SYNC : 0) | (skipped ? FERRY_DONE_SKIPPED : 0));
    /* the kill point "done": the core took the outcome (its journal group may not be committed yet) */
    if (s->kill_at && append_no == s->kill_at && !strcmp(s->kill_where, "done")) {
      rt_line(s->log, "K - done");
      kill(getpid(), SIGKILL);
    }
    if (s->misuse) {
      ferry_error_set(&e, FERRY_EINVAL, "misuse");
      ferry_task_done(task, 0);
      ferry_task_fail(task, &e);
    }
  }
  ferry_error_clear(&e);
}

static void finish(op *o) {
  if (o->s->async)
    rt_after(ferry_instance_loop(o->s->ins), (uint64_t)o->s->delay_ms, complete, o);
  else
    complete(o);
}

static void fail_op(op *o, const ferry_error *err) {
  ferry_task *task = o->task;
  o->s->inflight--;
  rt_line(o->s->events, "C %s", ferry_task_item(task)->key);
  free(o);
  ferry_task_fail(task, err);
}

static void after_after(void *arg, int status, const ferry_error *err) {
  op *o = arg;
  if (status) {
    fail_op(o, err);
    return;
  }
  finish(o);
}

static int in_target(const char *path, const char *key) {
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  char line[512];
  int found = 0;
  size_t kl = strlen(key);
  while (!found && fgets(line, sizeof line, f)) found = !strncmp(line, key, kl) && line[kl] == '\n';
  fclose(f);
  return found;
}

static void do_steps(op *o) {
  sink *s = o->s;
  ferry_task *task = o->task;
  const char *key = ferry_task_item(task)->key;
  json_t *state = ferry_task_state(task);
  ferry_error e = FERRY_ERROR_INIT;
  for (size_t i = 0; s->steps && s->steps[i]; i++) {
    json_object_set_new(state, "last_step", json_string(s->steps[i]));
    if (ferry_task_intent(task, s->steps[i], &e) < 0) {
      fail_op(o, &e);
      ferry_error_clear(&e);
      return;
    }
    rt_line(s->log, "I %s %s", key, s->steps[i]);
    maybe_kill(o, "intent");
  }
  if (*s->target) {
    if (ferry_task_step(task) && !s->steps) { /* in doubt: does the target already have it? */
      int found = in_target(s->target, key);
      rt_line(s->log, "R %s %s", key, found ? "found" : "absent");
      if (found) {
        o->skipped = 1;
        finish(o);
        return;
      }
    }
    json_object_set_new(state, "target", json_string(s->target));
    o->n = ++s->appends;
    if (!s->steps) {
      if (ferry_task_intent(task, "append", &e) < 0) {
        fail_op(o, &e);
        ferry_error_clear(&e);
        return;
      }
      maybe_kill(o, "intent");
    }
    rt_line(s->target, "%s", key);
    maybe_kill(o, "write");
  }
  json_object_set_new(state, "written", json_string(key));
  if (s->map_ids) {
    char id[300];
    snprintf(id, sizeof id, "r-%s", key);
    if (ferry_task_map_id(task, "record", key, id, &e) == 0) {
      snprintf(id, sizeof id, "f-%s", key);
      ferry_task_map_id(task, "file", key, id, &e);
    }
    if (e.code) {
      fail_op(o, &e);
      ferry_error_clear(&e);
      return;
    }
    snprintf(id, sizeof id, "t-%s", key);
    json_object_set_new(ferry_task_report(task), "target_id", json_string(id));
  }
  if (rt_in_list(s->losses, key)) {
    json_t *rep = ferry_task_report(task);
    json_object_set_new(rep, "adopted", json_true());
    json_object_set_new(rep, "losses", json_pack("[{s:s, s:s}]", "kind", "tool", "what", "rt-sink test loss"));
  }
  if (*s->secret) json_object_set_new(ferry_task_report(task), "note", json_sprintf("password %s", s->secret));
  if (s->fire) {
    json_t *data = json_pack("{s:s}", "target_id", key);
    ferry_fire(s->ins, task, "after_write", data, after_after, o);
    json_decref(data);
    return;
  }
  finish(o);
}

static void after_before(void *arg, int status, const ferry_error *err) {
  op *o = arg;
  if (status) {
    fail_op(o, err);
    return;
  }
  do_steps(o);
}

static void sink_write(ferry_instance *ins, ferry_task *task) {
  sink *s = ferry_instance_ctx(ins);
  s->ins = ins;
  s->writes++;
  if (++s->inflight > s->max_inflight) s->max_inflight = s->inflight;
  const char *key = ferry_task_item(task)->key;
  const char *step = ferry_task_step(task);
  rt_line(s->log, "W %s attempt=%u step=%s state=%s repair=%d", key, ferry_task_attempt(task),
          step ? step : "-", rt_json(ferry_task_state(task)), ferry_task_repair(task));
  if (s->sigint_after && s->writes == s->sigint_after) raise(SIGUSR1);
  if (*s->note) {
    ferry_error ne = FERRY_ERROR_INIT;
    if (s->writes == 1) {
      char long_name[300];
      memset(long_name, 'n', sizeof long_name - 1);
      long_name[sizeof long_name - 1] = 0;
      int rc = ferry_shared_put(ins, long_name, "v", &ne);
      rt_line(s->log, "X %d %s", rc, ne.message ? ne.message : "-");
      ferry_error_clear(&ne);
      rc = ferry_shared_put(ins, s->note, "bad \xff value", &ne);
      rt_line(s->log, "X %d %s", rc, ne.message ? ne.message : "-");
      ferry_error_clear(&ne);
    }
    char *got = ferry_shared_get(ins, s->note);
    rt_line(s->log, "N %s got=%s", key, got ? got : "-");
    if (!got && ferry_shared_put(ins, s->note, s->note_value, &ne) < 0)
      rt_line(s->log, "X %d %s", ne.code, ne.message ? ne.message : "-");
    ferry_error_clear(&ne);
    free(got);
  }
  op *o = calloc(1, sizeof *o);
  if (!o) abort();
  o->s = s;
  o->task = task;
  if (s->fire) {
    ferry_fire(ins, task, "before_write", NULL, after_before, o);
    return;
  }
  do_steps(o);
}

static void plan_or_verify(ferry_instance *ins, ferry_task *task, int verify) {
  sink *s = ferry_instance_ctx(ins);
  const char *key = ferry_task_item(task)->key;
  const char *step = ferry_task_step(task);
  rt_line(s->log, "%s %s step=%s state=%s repair=%d", verify ? "V" : "P", key, step ? step : "-",
          rt_json(ferry_task_state(task)), ferry_task_repair(task));
  ferry_error e = FERRY_ERROR_INIT;
  if (!verify && rt_in_list(s->blocked, key))
    ferry_error_set(&e, FERRY_EBLOCKED, "rt-sink: %s is blocked: the target has no room for it", key);
  else if (verify && rt_in_list(s->mismatch, key)) {
    ferry_error_set(&e, FERRY_EMISMATCH, "rt-sink: %s differs on the target", key);
    json_object_set_new(ferry_task_report(task), "differences",
                        json_pack("[s, s]", "column c_value: 'a' on the source, 'b' on the target",
                                  "a file is missing"));
  }
  if (e.code) {
    ferry_task_fail(task, &e);
    ferry_error_clear(&e);
    return;
  }
  json_object_set_new(ferry_task_report(task), verify ? "verified" : "would", json_sprintf("write %s", key));
  ferry_task_done(task, 0);
}

static void sink_plan(ferry_instance *ins, ferry_task *task) { plan_or_verify(ins, task, 0); }
static void sink_verify(ferry_instance *ins, ferry_task *task) { plan_or_verify(ins, task, 1); }

typedef struct sync_op {
  ferry_done_fn done;
  void *arg;
} sync_op;

static void sync_later(void *arg) {
  sync_op *so = arg;
  ferry_done_fn done = so->done;
  void *a = so->arg;
  free(so);
  done(a, 0, NULL);
}

static void sink_sync(ferry_instance *ins, ferry_done_fn done, void *arg) {
  sink *s = ferry_instance_ctx(ins);
  rt_line(s->log, "S %lld", (long long)++s->syncs);
  if (s->sync_async) {
    sync_op *so = malloc(sizeof *so);
    if (!so) abort();
    so->done = done;
    so->arg = arg;
    rt_after(ferry_instance_loop(ins), 1, sync_later, so);
    return;
  }
  done(arg, 0, NULL);
}

static int sink_start(ferry_instance *ins, ferry_error *err) {
  sink *s = ferry_instance_ctx(ins);
  (void)err;
  s->ins = ins;
  return 0;
}

static void sink_stop(ferry_instance *ins) {
  sink *s = ferry_instance_ctx(ins);
  if (!*s->stats) return;
  FILE *f = fopen(s->stats, "w");
  if (!f) return;
  fprintf(f, "{\"max_inflight\": %lld, \"writes\": %lld, \"syncs\": %lld}\n", (long long)s->max_inflight,
          (long long)s->writes, (long long)s->syncs);
  fclose(f);
}

#ifdef RT_ISINK
#define SINK_ACCEPTS FERRY_ITEM_INSTANCE
#else
#define SINK_ACCEPTS (FERRY_ITEM_RECORD | FERRY_ITEM_FILE)
#endif

static const ferry_sink_ops sink_ops = {
    .struct_size = sizeof(ferry_sink_ops),
    .accepts = SINK_ACCEPTS,
    .hook_points = sink_points,
    .start = sink_start,
    .write = sink_write,
    .plan = sink_plan,
    .verify = sink_verify,
    .sync = sink_sync,
    .stop = sink_stop,
};

#ifdef RT_ISINK
FERRY_PLUGIN_DEFINE(rt_isink, .kinds = FERRY_KIND_SINK, .name = "rt-isink", .version = "1.0",
                    .description = "runtime tests: a sink of instances only", .license = "Apache-2.0",
                    .options = sink_options, .ctx_size = sizeof(sink), .sink = &sink_ops);
#else
FERRY_PLUGIN_DEFINE(rt_sink, .kinds = FERRY_KIND_SINK, .name = "rt-sink", .version = "1.0",
                    .description = "runtime tests: a sink with knobs", .license = "Apache-2.0",
                    .options = sink_options, .ctx_size = sizeof(sink), .sink = &sink_ops);
#endif
