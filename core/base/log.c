/* Logging (ferry/log.h): text or JSON lines, prefixed with role, plugin and stage, secrets redacted. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/base.h"

static ferry_log_level cur_level = FERRY_LOG_INFO;
static ferry_log_format cur_format = FERRY_LOG_TEXT;
static FILE *cur_out;

static void (*before_line)(void *);
static void (*after_line)(void *);
static void *line_arg;

void ferry__log_set_display(void (*before)(void *arg), void (*after)(void *arg), void *arg) {
  before_line = before;
  after_line = after;
  line_arg = arg;
}

static const char *level_names[] = {"error", "warn", "info", "debug", "trace"};

FERRY_API void ferry_log_configure(ferry_log_level level, ferry_log_format format, FILE *out) {
  cur_level = level;
  cur_format = format;
  cur_out = out;
}

FERRY_API int ferry_log_enabled(ferry_log_level level) { return level <= cur_level; }

int ferry__log_json(void) { return cur_format == FERRY_LOG_JSON; }

FILE *ferry__log_out(void) { return cur_out ? cur_out : stderr; }

static const char *role_name(uint32_t role) {
  switch (role) {
    case FERRY_KIND_SOURCE: return "source";
    case FERRY_KIND_SINK: return "sink";
    case FERRY_KIND_HOOK: return "hook";
    default: return "core"; /* an instance of the core's own (the journal's connection) */
  }
}

static void timestamp(char *ts, size_t n) {
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(ts, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* One JSON line, {"ts", "level", <fields>...}, malloc'd; `fields` stolen. */
static char *json_line(const char *level, json_t *fields) {
  char ts[32];
  timestamp(ts, sizeof ts);
  json_t *o = json_object();
  json_object_set_new(o, "ts", json_string(ts));
  json_object_set_new(o, "level", json_string(level));
  json_object_update(o, fields);
  json_decref(fields);
  char *line = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
  json_decref(o);
  return line ? line : ferry_strdup("{}");
}

static void write_json(FILE *out, const char *level, json_t *fields) {
  char *line = json_line(level, fields);
  fprintf(out, "%s\n", line);
  free(line);
}

char *ferry__log_event_line(ferry_log_level level, json_t *fields) {
  unsigned lv = (unsigned)level < 5 ? (unsigned)level : 4;
  if (!fields) fields = json_object();
  ferry__redact_json(fields);
  return json_line(level_names[lv], fields);
}

static void log_line(const ferry_instance *ins, ferry_log_level level, const char *key, int code,
                     const char *fmt, va_list ap) {
  const ferry__log_id *id = (const ferry__log_id *)ins; /* the first member of every instance */
  char *raw = ferry_vasprintf(fmt, ap);
  char *msg = ferry_redact(raw);
  free(raw);
  char *rkey = key ? ferry_redact(key) : NULL;
  FILE *out = ferry__log_out();
  unsigned lv = (unsigned)level < 5 ? (unsigned)level : 4;
  if (before_line) before_line(line_arg);
  if (cur_format == FERRY_LOG_JSON) {
    json_t *o = json_object();
    if (id) {
      json_object_set_new(o, "role", json_string(role_name(id->role)));
      json_object_set_new(o, "plugin", json_string(id->plugin ? id->plugin : "?"));
      json_object_set_new(o, "stage", json_string(id->stage ? id->stage : ""));
    }
    if (rkey) json_object_set_new(o, "item", json_string(rkey));
    if (code) json_object_set_new(o, "code", json_string(ferry_err_name(code)));
    json_object_set_new(o, "msg", json_string(msg));
    write_json(out, level_names[lv], o);
  } else {
    char ts[32];
    timestamp(ts, sizeof ts);
    fprintf(out, "%s %-5s ", ts, level_names[lv]);
    if (id)
      fprintf(out, "[%s:%s:%s] ", role_name(id->role), id->plugin ? id->plugin : "?", id->stage ? id->stage : "");
    else
      fputs("[ferry] ", out);
    if (rkey) fprintf(out, "item \"%s\": ", rkey);
    fprintf(out, "%s\n", msg);
  }
  fflush(out);
  if (after_line) after_line(line_arg);
  free(rkey);
  free(msg);
}

FERRY_API void ferry_log(const ferry_instance *ins, ferry_log_level level, const char *fmt, ...) {
  if (level > cur_level) return;
  va_list ap;
  va_start(ap, fmt);
  log_line(ins, level, NULL, 0, fmt, ap);
  va_end(ap);
}

FERRY_API void ferry_log_item(const ferry_instance *ins, ferry_log_level level, const char *key, int code,
                              const char *fmt, ...) {
  if (level > cur_level) return;
  va_list ap;
  va_start(ap, fmt);
  log_line(ins, level, key, code, fmt, ap);
  va_end(ap);
}

FERRY_API int ferry_log_level_parse(const char *name) {
  for (int i = 0; name && i < 5; i++)
    if (!strcmp(level_names[i], name)) return i;
  return -1;
}
