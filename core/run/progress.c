/* The progress display: one line per stage.
 *
 * Style 2 (a terminal): the lines are redrawn in place (cursor up, clear line) at most 10 times a second:
 *   forms    [########------------]  42%  4200/10000  done 4180  skipped 0  failed 20  1.2k/s  ETA 0:05
 * Style 1 (not a terminal: a log file, CI): plain lines, one per running stage every few seconds, and one
 * final line per stage when it finishes:
 *   progress forms: 4200/10000 (42%), done 4180, skipped 0, failed 20, 1200/s, ETA 0:05
 *   progress forms: finished: 10000 items, done 9980, skipped 0, failed 20 in 0:08 (1250/s)
 * The rate counts items finished (done + skipped + failed) over a sliding window of the last ~10 seconds;
 * an unknown total (-1) shows no bar, no percentage and no ETA.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "run/run.h"

#define WINDOW 10.0          /* seconds of history behind the rate */
#define NSAMPLES 40          /* samples kept per stage, at least WINDOW / NSAMPLES seconds apart */
#define PLAIN_INTERVAL 5.0   /* seconds between two plain lines of a stage */
#define REDRAW_INTERVAL 0.1  /* seconds between two terminal redraws */
#define BAR_WIDTH 20
#define NAME_MAX_WIDTH 24

typedef struct sample {
  double t;
  int64_t n;
} sample;

typedef struct pstage {
  char *name;
  sample ring[NSAMPLES]; /* oldest at `first` */
  size_t first, count;
  double finished_at;    /* when first seen finished, 0 = not yet */
  double last_plain;     /* last plain line, 0 = none */
  int final_printed;
} pstage;

struct ferry_progress {
  int style;
  FILE *out;
  pstage *st;
  size_t n;
  int lines;          /* terminal: lines drawn last time */
  double last_draw;   /* terminal: time of the last redraw */
};

/* Before a log line: erase the block drawn last time; the next update draws it again below the line. */
static void erase_block(void *arg) {
  ferry_progress *p = arg;
  if (p->lines <= 0) return;
  fprintf(p->out, "\r\033[%dA\033[J", p->lines);
  p->lines = 0;
  p->last_draw = -1;
}

ferry_progress *ferry__progress_new(int style, FILE *out) {
  ferry_progress *p = ferry__xcalloc(1, sizeof *p);
  p->style = style == 2 ? 2 : 1;
  p->out = out ? out : stderr;
  p->last_draw = -1;
  if (p->style == 2) ferry__log_set_before_line(erase_block, p);
  return p;
}

void ferry__progress_free(ferry_progress *p) {
  if (!p) return;
  if (p->style == 2) ferry__log_set_before_line(NULL, NULL);
  for (size_t i = 0; i < p->n; i++) free(p->st[i].name);
  free(p->st);
  free(p);
}

static pstage *stage_of(ferry_progress *p, const char *name) {
  if (!name) name = "?";
  for (size_t i = 0; i < p->n; i++)
    if (!strcmp(p->st[i].name, name)) return &p->st[i];
  p->st = ferry__xrealloc(p->st, (p->n + 1) * sizeof *p->st);
  pstage *s = &p->st[p->n++];
  memset(s, 0, sizeof *s);
  s->name = ferry_strdup(name);
  return s;
}

static int64_t processed(const ferry_progress_row *r) { return r->done + r->skipped + r->failed; }

static void add_sample(pstage *s, double now, int64_t n) {
  if (s->count) {
    sample *last = &s->ring[(s->first + s->count - 1) % NSAMPLES];
    if (now - last->t < WINDOW / NSAMPLES) return;
  }
  if (s->count == NSAMPLES) {
    s->first = (s->first + 1) % NSAMPLES;
    s->count--;
  }
  s->ring[(s->first + s->count) % NSAMPLES] = (sample){now, n};
  s->count++;
  /* drop samples older than the window, keeping at least two */
  while (s->count > 2 && now - s->ring[(s->first + 1) % NSAMPLES].t >= WINDOW) {
    s->first = (s->first + 1) % NSAMPLES;
    s->count--;
  }
}

/* Items per second over the window; -1 when not known yet. */
static double window_rate(const pstage *s, double now, int64_t n) {
  if (!s->count) return -1;
  const sample *o = &s->ring[s->first];
  double dt = now - o->t;
  if (dt < 0.05) return -1;
  double r = (double)(n - o->n) / dt;
  return r < 0 ? 0 : r;
}

/* Items per second from the stage's start to `end`; -1 when not known. */
static double average_rate(const ferry_progress_row *r, double end) {
  double dt = r->started > 0 ? end - r->started : 0;
  return dt > 0.001 ? (double)processed(r) / dt : -1;
}

static void fmt_rate(char *buf, size_t n, double rate) {
  if (rate < 0)
    snprintf(buf, n, "--");
  else if (rate < 10)
    snprintf(buf, n, "%.1f", rate);
  else if (rate < 10000)
    snprintf(buf, n, "%.0f", rate);
  else if (rate < 10e6)
    snprintf(buf, n, "%.1fk", rate / 1e3);
  else
    snprintf(buf, n, "%.1fM", rate / 1e6);
}

static void fmt_duration(char *buf, size_t n, double secs) {
  if (secs < 0 || secs > 99 * 3600.0) {
    snprintf(buf, n, "--");
    return;
  }
  long s = (long)(secs + 0.5);
  if (s >= 3600)
    snprintf(buf, n, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
  else
    snprintf(buf, n, "%ld:%02ld", s / 60, s % 60);
}

/* Seconds left, or -1 when unknown. */
static double eta(const ferry_progress_row *r, double rate) {
  if (r->total < 0) return -1;
  int64_t left = r->total - processed(r);
  if (left <= 0) return 0;
  return rate > 0 ? (double)left / rate : -1;
}

static int percent(const ferry_progress_row *r) {
  if (r->total <= 0) return r->total == 0 ? 100 : -1;
  int64_t pct = processed(r) * 100 / r->total;
  return pct > 100 ? 100 : (int)pct;
}

/* ---- terminal ------------------------------------------------------------------------------------------ */

static void term_line(ferry_buf *sb, const ferry_progress_row *r, pstage *s, double now, int width) {
  ferry_buf_addf(sb, "%-*.*s ", width, NAME_MAX_WIDTH, r->stage ? r->stage : "?");
  int pct = percent(r);
  if (pct >= 0) {
    char bar[BAR_WIDTH + 1];
    int fill = pct * BAR_WIDTH / 100;
    for (int i = 0; i < BAR_WIDTH; i++) bar[i] = i < fill ? '#' : '-';
    bar[BAR_WIDTH] = '\0';
    ferry_buf_addf(sb, "[%s] %3d%%  %lld/%lld", bar, pct, (long long)processed(r), (long long)r->total);
  } else {
    ferry_buf_addf(sb, "%lld items", (long long)processed(r));
  }
  ferry_buf_addf(sb, "  done %lld  skipped %lld  failed %lld", (long long)r->done, (long long)r->skipped,
                (long long)r->failed);
  char rate[32], left[32];
  if (s->finished_at > 0) {
    fmt_rate(rate, sizeof rate, average_rate(r, s->finished_at));
    fmt_duration(left, sizeof left, r->started > 0 ? s->finished_at - r->started : -1);
    ferry_buf_addf(sb, "  %s/s  finished in %s", rate, left);
    return;
  }
  if (r->started <= 0 && !processed(r)) {
    ferry_buf_add(sb, "  waiting");
    return;
  }
  double wr = window_rate(s, now, processed(r));
  fmt_rate(rate, sizeof rate, wr);
  ferry_buf_addf(sb, "  %s/s", rate);
  if (r->total >= 0) {
    fmt_duration(left, sizeof left, eta(r, wr));
    ferry_buf_addf(sb, "  ETA %s", left);
  }
  if (r->inflight > 0) ferry_buf_addf(sb, "  (%lld in flight)", (long long)r->inflight);
}

static int terminal_columns(FILE *out) {
  int fd = fileno(out);
  struct winsize ws;
  if (fd >= 0 && isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 0;
}

static void draw_terminal(ferry_progress *p, const ferry_progress_row *rows, size_t n, double now) {
  int width = 0;
  for (size_t i = 0; i < n; i++) {
    int w = rows[i].stage ? (int)strlen(rows[i].stage) : 1;
    if (w > width) width = w;
  }
  if (width > NAME_MAX_WIDTH) width = NAME_MAX_WIDTH;
  int cols = terminal_columns(p->out);
  ferry_buf sb = {0};
  if (p->lines > 0) ferry_buf_addf(&sb, "\r\033[%dA", p->lines); /* back to the first line drawn */
  for (size_t i = 0; i < n; i++) {
    ferry_buf line = {0};
    term_line(&line, &rows[i], stage_of(p, rows[i].stage), now, width);
    size_t len = line.len;
    if (cols > 1 && len > (size_t)cols - 1)
      len = (size_t)cols - 1; /* a wrapped line would break the redraw */
    ferry_buf_add(&sb, "\r\033[K");
    ferry_buf_addn(&sb, line.buf ? line.buf : "", len);
    ferry_buf_add(&sb, "\n");
    ferry_buf_free(&line);
  }
  /* fewer rows than last time: clear what is left below */
  for (int i = (int)n; i < p->lines; i++) ferry_buf_add(&sb, "\r\033[K\n");
  if (p->lines > (int)n) ferry_buf_addf(&sb, "\033[%dA", p->lines - (int)n);
  p->lines = (int)n;
  fputs(sb.buf ? sb.buf : "", p->out);
  fflush(p->out);
  ferry_buf_free(&sb);
}

/* ---- plain lines --------------------------------------------------------------------------------------- */

static void plain_running(ferry_progress *p, const ferry_progress_row *r, pstage *s, double now) {
  char rate[32], left[32];
  fmt_rate(rate, sizeof rate, window_rate(s, now, processed(r)));
  fprintf(p->out, "progress %s: ", r->stage ? r->stage : "?");
  int pct = percent(r);
  if (pct >= 0)
    fprintf(p->out, "%lld/%lld (%d%%)", (long long)processed(r), (long long)r->total, pct);
  else
    fprintf(p->out, "%lld items", (long long)processed(r));
  fprintf(p->out, ", done %lld, skipped %lld, failed %lld, %s/s", (long long)r->done, (long long)r->skipped,
          (long long)r->failed, rate);
  if (r->total >= 0) {
    fmt_duration(left, sizeof left, eta(r, window_rate(s, now, processed(r))));
    fprintf(p->out, ", ETA %s", left);
  }
  fputc('\n', p->out);
}

static void plain_final(ferry_progress *p, const ferry_progress_row *r, pstage *s, double now) {
  double end = s->finished_at > 0 ? s->finished_at : now;
  char rate[32], took[32];
  fmt_rate(rate, sizeof rate, average_rate(r, end));
  fmt_duration(took, sizeof took, r->started > 0 ? end - r->started : -1);
  fprintf(p->out, "progress %s: %s: ", r->stage ? r->stage : "?", r->finished ? "finished" : "stopped");
  if (r->total >= 0 && r->total != processed(r))
    fprintf(p->out, "%lld/%lld items", (long long)processed(r), (long long)r->total);
  else
    fprintf(p->out, "%lld items", (long long)processed(r));
  fprintf(p->out, ", done %lld, skipped %lld, failed %lld in %s (%s/s)\n", (long long)r->done,
          (long long)r->skipped, (long long)r->failed, took, rate);
}

static void draw_plain(ferry_progress *p, const ferry_progress_row *rows, size_t n, int final, double now) {
  for (size_t i = 0; i < n; i++) {
    const ferry_progress_row *r = &rows[i];
    pstage *s = stage_of(p, r->stage);
    if (s->final_printed) continue;
    if (r->finished || final) {
      if (!r->finished && r->started <= 0 && !processed(r)) continue; /* never started: nothing to say */
      plain_final(p, r, s, now);
      s->final_printed = 1;
    } else if (r->started > 0 || processed(r)) {
      if (s->last_plain == 0) s->last_plain = r->started > 0 ? r->started : now; /* first line after 5 s */
      if (now - s->last_plain < PLAIN_INTERVAL) continue;
      plain_running(p, r, s, now);
      s->last_plain = now;
    }
  }
  fflush(p->out);
}

/* ---- update -------------------------------------------------------------------------------------------- */

void ferry__progress_update_at(ferry_progress *p, const ferry_progress_row *rows, size_t n, int final,
                              double now) {
  if (!p || (!rows && n)) return;
  for (size_t i = 0; i < n; i++) {
    pstage *s = stage_of(p, rows[i].stage);
    if (rows[i].started > 0 || processed(&rows[i])) add_sample(s, now, processed(&rows[i]));
    if (rows[i].finished && s->finished_at == 0) s->finished_at = now;
  }
  if (p->style == 2) {
    if (!final && p->last_draw >= 0 && now - p->last_draw < REDRAW_INTERVAL) return;
    p->last_draw = now;
    draw_terminal(p, rows, n, now);
  } else {
    draw_plain(p, rows, n, final, now);
  }
}

void ferry__progress_update(ferry_progress *p, const ferry_progress_row *rows, size_t n, int final) {
  ferry__progress_update_at(p, rows, n, final, ferry__now());
}
