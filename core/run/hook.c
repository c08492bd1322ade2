/* Hooks: ferry_fire() runs the hook instances attached to a point of a stage, in configuration order, one
 * after the other (each may complete now or later); `done` is called once at the end with the status of the
 * first failure. Hook state: per task and hook instance, a JSON object kept in the task's journal state under
 * "hooks" -> "<hook index>:<plugin>", so it is saved with every intent and comes back on resume.
 */
#include <stdlib.h>
#include <string.h>

#include "run/run.h"

typedef struct fire_ctx fire_ctx;

struct ferry_hook_event {
  fire_ctx *fc;
  size_t hook; /* index in the stage's hooks */
  int completed;
};

struct fire_ctx {
  ferry_stage *st;
  ferry_task *task;
  char *point;
  json_t *data;
  ferry_done_fn done;
  void *arg;
  size_t next; /* next hook index to look at */
  int waiting; /* a hook is running */
  int looping; /* fire_step is on the stack */
  int status;
  ferry_error err;
  int finished;          /* done was called; kept a while in st->fired to catch late completions */
  ferry_hook_event *evs; /* one per hook of the stage */
};

static void fire_free(fire_ctx *fc) {
  if (!fc) return;
  json_decref(fc->data);
  free(fc->point);
  free(fc->evs);
  free(fc);
}

void ferry__hooks_release(ferry_stage *st) {
  for (unsigned i = 0; i < FERRY_FIRED_KEEP; i++) {
    fire_free(st->fired[i]);
    st->fired[i] = NULL;
  }
}

static int attached(const ferry_stage *st, size_t h, const char *point) {
  const ferry_plugin_ref *ref = &st->cfg->hooks[h];
  for (size_t i = 0; ref->points && ref->points[i]; i++)
    if (!strcmp(ref->points[i], point)) return 1;
  return 0;
}

int ferry__hooks_at(const ferry_stage *st, const char *point) {
  int n = 0;
  for (size_t h = 0; h < st->cfg->nhooks; h++) n += attached(st, h, point);
  return n;
}

static void fire_finish(fire_ctx *fc) {
  ferry_done_fn done = fc->done;
  void *arg = fc->arg;
  int status = fc->status;
  ferry_error err = fc->err; /* moved out */
  fc->err = (ferry_error)FERRY_ERROR_INIT;
  fc->finished = 1;
  json_decref(fc->data);
  fc->data = NULL;
  /* not freed at once: a hook completing twice finds a finished firing instead of freed memory */
  ferry_stage *st = fc->st;
  unsigned slot = st->fired_pos++ % FERRY_FIRED_KEEP;
  fire_free(st->fired[slot]);
  st->fired[slot] = fc;
  if (done) done(arg, status, status ? &err : NULL);
  ferry_error_clear(&err);
}

/* Runs hooks until one is asynchronous (then ferry_hook_done continues) or all are done. Never recursive: a
 * hook completing inside fire() just lets this loop go on. */
static void fire_step(fire_ctx *fc) {
  if (fc->looping) return;
  fc->looping = 1;
  ferry_stage *st = fc->st;
  while (!fc->waiting) {
    size_t h = fc->next;
    while (h < st->cfg->nhooks && !attached(st, h, fc->point)) h++;
    if (h >= st->cfg->nhooks) {
      fc->looping = 0;
      fire_finish(fc);
      return;
    }
    fc->next = h + 1;
    fc->waiting = 1;
    ferry_hook_event *ev = &fc->evs[h];
    ev->fc = fc;
    ev->hook = h;
    ev->completed = 0;
    st->hook_plugins[h]->hook->fire(st->hooks[h], ev);
  }
  fc->looping = 0;
}

void ferry__fire_core(ferry_stage *st, ferry_task *task, const char *point, json_t *data, ferry_done_fn done,
                     void *arg) {
  if (!ferry__hooks_at(st, point)) {
    if (done) done(arg, 0, NULL);
    return;
  }
  fire_ctx *fc = ferry__xcalloc(1, sizeof *fc);
  fc->st = st;
  fc->task = task;
  fc->point = ferry_strdup(point);
  fc->data = data ? json_incref(data) : NULL;
  fc->done = done;
  fc->arg = arg;
  fc->evs = ferry__xcalloc(st->cfg->nhooks, sizeof *fc->evs);
  fire_step(fc);
}

FERRY_API void ferry_fire(ferry_instance *ins, ferry_task *task, const char *point, json_t *data,
                          ferry_done_fn done, void *arg) {
  ferry_error e = FERRY_ERROR_INIT;
  if (!ins || !ins->stage || (ins->role != FERRY_KIND_SOURCE && ins->role != FERRY_KIND_SINK)) {
    ferry_log_error(ins, "ferry_fire: only the source or sink of a running stage can fire hook points");
    ferry_error_set(&e, FERRY_EINVAL, "ferry_fire: not called by the source or sink of a running stage");
  } else if (!point || !*point) {
    ferry_log_error(ins, "ferry_fire called without a point name");
    ferry_error_set(&e, FERRY_EINVAL, "ferry_fire: no point name");
  } else if (task && task->stage != ins->stage) {
    ferry_log_error(ins, "ferry_fire: the task belongs to another stage");
    ferry_error_set(&e, FERRY_EINVAL, "ferry_fire: the task belongs to another stage");
  } else if (task && task->phase != TASK_SINK && task->phase != TASK_HOOKS) {
    ferry_log_error(ins, "ferry_fire(\"%s\") for a task that is not in progress", point);
    ferry_error_set(&e, FERRY_EINVAL, "ferry_fire: the task is not in progress");
  }
  if (e.code) {
    if (done) done(arg, e.code, &e);
    ferry_error_clear(&e);
    return;
  }
  ferry__fire_core(ins->stage, task, point, data, done, arg);
}

FERRY_API void ferry_hook_done(ferry_hook_event *ev, int status, const ferry_error *err) {
  if (!ev) {
    ferry_log_error(NULL, "ferry_hook_done called with a NULL event: ignored");
    return;
  }
  fire_ctx *fc = ev->fc;
  ferry_stage *st = fc->st;
  if (fc->finished || ev->completed || !fc->waiting || fc->next != ev->hook + 1) {
    ferry_log_error(st->hooks[ev->hook],
                    "ferry_hook_done called twice for point \"%s\": ignored (a bug in the "
                    "hook plugin)",
                    fc->point);
    return;
  }
  ev->completed = 1;
  if (status && !fc->status) {
    fc->status = status;
    if (err && err->code)
      ferry_error_copy(&fc->err, err);
    else
      ferry_error_set(&fc->err, status, "%s", ferry_strerror(status));
    ferry_error_prefix(&fc->err, "hook \"%s\"", st->hook_plugins[ev->hook]->name);
    ferry_log_warn(st->hooks[ev->hook], "at point \"%s\"%s%s%s: %s", fc->point, fc->task ? " (item \"" : "",
                   fc->task ? fc->task->item->key : "", fc->task ? "\")" : "", fc->err.message);
  }
  fc->waiting = 0;
  fire_step(fc);
}

FERRY_API const char *ferry_hook_point(const ferry_hook_event *ev) { return ev ? ev->fc->point : NULL; }
/* After the firing finished the task may be gone: the accessors below then give NULL. */
FERRY_API ferry_task *ferry_hook_task(const ferry_hook_event *ev) {
  return ev && !ev->fc->finished ? ev->fc->task : NULL;
}
FERRY_API const ferry_item *ferry_hook_item(const ferry_hook_event *ev) {
  return ev && !ev->fc->finished && ev->fc->task ? ev->fc->task->item : NULL;
}
FERRY_API json_t *ferry_hook_data(const ferry_hook_event *ev) { return ev ? ev->fc->data : NULL; }

FERRY_API json_t *ferry_hook_state(ferry_hook_event *ev) {
  if (!ev || ev->fc->finished || !ev->fc->task) return NULL;
  ferry_task *t = ev->fc->task;
  json_t *state = ferry_task_state(t);
  if (!state) return NULL;
  json_t *hooks = json_object_get(state, "hooks");
  if (!json_is_object(hooks)) {
    hooks = json_object();
    json_object_set_new(state, "hooks", hooks);
  }
  const char *key = ev->fc->st->hook_keys[ev->hook];
  json_t *mine = json_object_get(hooks, key);
  if (!json_is_object(mine)) {
    mine = json_object();
    json_object_set_new(hooks, key, mine);
  }
  return mine;
}
