/* rt-hook: a hook for the runtime tests. At every point it serves it writes one line to `out`:
 *   "<name> <stage> <point> <item key|-> data=<json|-> seen=<json|->"
 * where `seen` is the list of points this hook instance saw before for the same item, read from its hook
 * state (ferry_hook_state) and then extended with the current point — so the state's life across points and
 * across runs (saved with each intent) is visible. It can fail at a chosen point, the first n times or
 * always, with a transient or a permanent error, and complete from a timer. */
#include "rt_util.h"

typedef struct hook {
  char *out;
  char *name;
  char *fail_point;
  int64_t fail_times; /* -1 = always */
  int transient;
  int async;
  int misuse;
  /* run state */
  int64_t failed;
} hook;

static const ferry_option hook_options[] = {
    {.key = "out", FERRY_OPT_STRING, "\"\"", 0, offsetof(hook, out), "file of the points seen"},
    {.key = "name", FERRY_OPT_STRING, "\"h\"", 0, offsetof(hook, name), "name written at the start of each line"},
    {.key = "fail_point", FERRY_OPT_STRING, "\"\"", 0, offsetof(hook, fail_point), "point at which to fail"},
    {.key = "fail_times", FERRY_OPT_INT, "-1", 0, offsetof(hook, fail_times), "fail that many times (-1: always)"},
    {.key = "transient", FERRY_OPT_BOOL, "false", 0, offsetof(hook, transient), "the failure is transient"},
    {.key = "async", FERRY_OPT_BOOL, "false", 0, offsetof(hook, async), "complete from a timer"},
    {.key = "misuse", FERRY_OPT_BOOL, "false", 0, offsetof(hook, misuse),
     "complete twice (a bug the core survives)"},
    FERRY_OPTIONS_END};

typedef struct hop {
  hook *h;
  ferry_hook_event *ev;
  int status;
} hop;

static void hop_done(void *arg) {
  hop *o = arg;
  ferry_hook_event *ev = o->ev;
  hook *h = o->h;
  int status = o->status;
  free(o);
  ferry_error e = FERRY_ERROR_INIT;
  if (status)
    ferry_error_set(&e, status, "rt-hook %s: failing at %s as asked", h->name, ferry_hook_point(ev));
  ferry_hook_done(ev, status, status ? &e : NULL);
  if (h->misuse) ferry_hook_done(ev, FERRY_EINVAL, NULL);
  ferry_error_clear(&e);
}

static void hook_fire(ferry_instance *ins, ferry_hook_event *ev) {
  hook *h = ferry_instance_ctx(ins);
  const char *point = ferry_hook_point(ev);
  const ferry_item *it = ferry_hook_item(ev);
  json_t *state = ferry_hook_state(ev);
  char seen[2048] = "-";
  if (state) {
    json_t *list = json_object_get(state, "seen");
    if (!json_is_array(list)) {
      list = json_array();
      json_object_set_new(state, "seen", list);
    }
    snprintf(seen, sizeof seen, "%s", rt_json(list));
    json_array_append_new(list, json_string(point));
  }
  char data[2048];
  snprintf(data, sizeof data, "%s", rt_json(ferry_hook_data(ev)));
  rt_line(h->out, "%s %s %s %s data=%s seen=%s", h->name, ferry_instance_stage(ins), point,
          it ? it->key : "-", data, seen);
  hop *o = calloc(1, sizeof *o);
  if (!o) abort();
  o->h = h;
  o->ev = ev;
  if (*h->fail_point && !strcmp(h->fail_point, point) && (h->fail_times < 0 || h->failed < h->fail_times)) {
    h->failed++;
    o->status = h->transient ? FERRY_ETRANSIENT : FERRY_EPERM;
  }
  if (h->async)
    rt_after(ferry_instance_loop(ins), 0, hop_done, o);
  else
    hop_done(o);
}

static const ferry_hook_ops hook_ops = {
    .struct_size = sizeof(ferry_hook_ops),
    .points = NULL, /* any point */
    .fire = hook_fire,
};

FERRY_PLUGIN_DEFINE(rt_hook, .kinds = FERRY_KIND_HOOK, .name = "rt-hook", .version = "1.0",
                    .description = "runtime tests: a hook that records the points it sees",
                    .license = "Apache-2.0", .options = hook_options, .ctx_size = sizeof(hook),
                    .hook = &hook_ops);
