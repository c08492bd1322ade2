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
static void *before_line_arg;

void ferry__log_set_before_line(void (*fn)(void *arg), void *arg) {
  before_line = fn;
  before_line_arg = arg;
}

static const char *level_names[] = {"error", "warn", "info", "debug", "trace"};

FERRY_API void ferry_log_configure(ferry_log_level level, ferry_log_format format, FILE *out) {
  cur_level = level;
  cur_format = format;
  cur_out = out;
}

FERRY_API int ferry_log_enabled(ferry_log_level level) { return level <= cur_level; }

static const char *role_name(uint32_t role) {
  switch (role) {
    case FERRY_KIND_SOURCE: return "source";
    case FERRY_KIND_SINK: return "sink";
    case FERRY_KIND_HOOK: return "hook";
    default: return "plugin";
  }
}

FERRY_API void ferry_log(const ferry_instance *ins, ferry_log_level level, const char *fmt, ...) {
  if (level > cur_level) return;
  const ferry__log_id *id = (const ferry__log_id *)ins; /* the first member of every instance */
  va_list ap;
  va_start(ap, fmt);
  char *raw = ferry_vasprintf(fmt, ap);
  va_end(ap);
  char *msg = ferry_redact(raw);
  free(raw);
  FILE *out = cur_out ? cur_out : stderr;
  char ts[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  unsigned lv = (unsigned)level < 5 ? (unsigned)level : 4;
  if (before_line) before_line(before_line_arg);
  if (cur_format == FERRY_LOG_JSON) {
    json_t *o = json_object();
    json_object_set_new(o, "ts", json_string(ts));
    json_object_set_new(o, "level", json_string(level_names[lv]));
    if (id) {
      json_object_set_new(o, "role", json_string(role_name(id->role)));
      json_object_set_new(o, "plugin", json_string(id->plugin ? id->plugin : "?"));
      json_object_set_new(o, "stage", json_string(id->stage ? id->stage : ""));
    }
    json_object_set_new(o, "msg", json_string(msg));
    char *line = json_dumps(o, JSON_COMPACT);
    fprintf(out, "%s\n", line ? line : "{}");
    free(line);
    json_decref(o);
  } else if (id) {
    fprintf(out, "%s %-5s [%s:%s:%s] %s\n", ts, level_names[lv], role_name(id->role),
            id->plugin ? id->plugin : "?", id->stage ? id->stage : "", msg);
  } else {
    fprintf(out, "%s %-5s [ferry] %s\n", ts, level_names[lv], msg);
  }
  fflush(out);
  free(msg);
}

FERRY_API int ferry_log_level_parse(const char *name) {
  for (int i = 0; name && i < 5; i++)
    if (!strcmp(level_names[i], name)) return i;
  return -1;
}
