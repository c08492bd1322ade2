/* Helpers shared by the runtime test plugins (each plugin is its own module, so these are static). */
#ifndef FERRY_RT_UTIL_H
#define FERRY_RT_UTIL_H
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <ferry/ferry.h>

/* Appends one line to `path` (nothing when path is NULL or empty). One write(2) with O_APPEND, so lines of
 * several plugins writing the same file keep their order and survive a SIGKILL of the process. */
static inline void rt_line(const char *path, const char *fmt, ...) FERRY_PRINTF(2, 3);
static inline void rt_line(const char *path, const char *fmt, ...) {
  if (!path || !*path) return;
  char buf[4096];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(buf, sizeof buf - 1, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n > sizeof buf - 2) n = (int)sizeof buf - 2;
  buf[n++] = '\n';
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t w = write(fd, buf, (size_t)n);
  (void)w;
  close(fd);
}

static inline int rt_in_list(char **list, const char *s) {
  for (size_t i = 0; list && list[i]; i++)
    if (!strcmp(list[i], s)) return 1;
  return 0;
}

/* A compact JSON text of v (static buffer, "-" for NULL). */
static inline const char *rt_json(json_t *v) {
  static char buf[2048];
  if (!v) return "-";
  char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  snprintf(buf, sizeof buf, "%s", s ? s : "?");
  free(s);
  return buf;
}

/* One-shot timer that frees itself: calls fn(arg) after ms milliseconds. */
typedef struct rt_later {
  uv_timer_t timer;
  void (*fn)(void *arg);
  void *arg;
} rt_later;

static inline void rt_later_closed(uv_handle_t *h) { free(h->data); }
static inline void rt_later_fire(uv_timer_t *t) {
  rt_later *l = t->data;
  l->fn(l->arg);
  uv_close((uv_handle_t *)&l->timer, rt_later_closed);
}
static inline void rt_after(uv_loop_t *loop, uint64_t ms, void (*fn)(void *arg), void *arg) {
  rt_later *l = calloc(1, sizeof *l);
  if (!l) abort();
  l->fn = fn;
  l->arg = arg;
  uv_timer_init(loop, &l->timer);
  l->timer.data = l;
  uv_timer_start(&l->timer, rt_later_fire, ms, 0);
}
#endif
