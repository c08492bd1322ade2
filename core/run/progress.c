/* The progress display: one line per stage.
 *
 * Style 2 (a terminal): the lines are redrawn in place (cursor up, clear line) at most 10 times a second,
 * and at once below every log line (the log erases the block, writes its line and has the block drawn
 * again: the block stays on screen whatever the log says):
 *   forms    [########------------]  42%  4200/10000  done 4180  skipped 0  failed 20  1.2k/s  ETA 0:05
 * Each line fits the terminal's width (the stage names take at most a fifth of it): what does not fit is left
 * out, least useful first: the items in flight, the skipped count (first when 0), the failed count when 0,
 * the bar (first narrowed), the done count, the percentage, the failed count, the rate, the count; the ETA (or
 * the elapsed time, or how the stage ended) never; then the stage name is cut.
 * Style 1 (not a terminal: a log file, CI): plain lines, one per running stage every few seconds, and one
 * final line per stage when it ends:
 *   progress forms: 4200/10000 (42%), done 4180, skipped 0, failed 20, 1200/s, ETA 0:05
 *   progress forms: finished: 10000 items, done 9980, skipped 0, failed 20 in 0:08 (1250/s)
 *   progress forms: interrupted, run again to resume: 4200/10000 items, done 4180, ... in 0:03 (1400/s)
 * In JSON log format the plain lines come as JSON objects (event "progress", see run.h).
 * The rate counts items finished (done + skipped + failed) over a sliding window of the last ~10 seconds;
 * an unknown total (-1) shows no bar, no percentage and no ETA, but the rate and the elapsed time.
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
#define BAR_NARROW 10
#define NAME_MAX_WIDTH 24
#define NAME_MIN_WIDTH 6

enum { STYLE_PLAIN = 1, STYLE_TERMINAL = 2, STYLE_JSON = 3 };

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
  int columns;        /* ferry__progress_set_columns(), 0 = ask the terminal */
  ferry_progress_row *last; /* terminal: the rows of the last update (stage names: the pstages'), redrawn */
  size_t nlast;             /* below each log line */
  int drawing;
};

static void draw_terminal(ferry_progress *p, const ferry_progress_row *rows, size_t n, double now);

/* Before a log line: erase the block drawn last time. */
static void erase_block(void *arg) {
  ferry_progress *p = arg;
  if (p->lines <= 0 || p->drawing) return;
  fprintf(p->out, "\r\033[%dA\033[J", p->lines);
  p->lines = 0;
}

/* After a log line: the block again, below it. */
static void redraw_block(void *arg) {
  ferry_progress *p = arg;
  if (!p->nlast || p->drawing) return;
  double now = ferry__now();
  p->last_draw = now;
  draw_terminal(p, p->last, p->nlast, now);
}

ferry_progress *ferry__progress_new(int style, FILE *out) {
  ferry_progress *p = ferry__xcalloc(1, sizeof *p);
  p->style = ferry__log_json() ? STYLE_JSON : style == 2 ? STYLE_TERMINAL : STYLE_PLAIN;
  p->out = out ? out : stderr;
  p->last_draw = -1;
  if (p->style == STYLE_TERMINAL) ferry__log_set_display(erase_block, redraw_block, p);
  return p;
}

void ferry__progress_set_columns(ferry_progress *p, int columns) {
  if (p) p->columns = columns > 0 ? columns : 0;
}

void ferry__progress_free(ferry_progress *p) {
  if (!p) return;
  if (p->style == STYLE_TERMINAL) ferry__log_set_display(NULL, NULL, NULL);
  for (size_t i = 0; i < p->n; i++) free(p->st[i].name);
  free(p->st);
  free(p->last);
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

/* How a row stands. */
typedef enum row_state { R_WAITING, R_RUNNING, R_FINISHED, R_INTERRUPTED, R_FAILED, R_NOT_RUN } row_state;

static row_state state_of(const ferry_progress_row *r, int final) {
  int started = r->started > 0 || processed(r) > 0;
  if (r->finished) {
    if (!started && r->status) return R_NOT_RUN;
    if (r->status == FERRY_ECANCELED) return R_INTERRUPTED;
    return r->status ? R_FAILED : R_FINISHED;
  }
  if (final) return started ? R_INTERRUPTED : R_NOT_RUN; /* the run ended before the stage did */
  return started ? R_RUNNING : R_WAITING;
}

static const char *state_name(row_state s) {
  static const char *const names[] = {"waiting", "running", "finished", "interrupted", "failed", "not_run"};
  return names[s];
}

#define INTERRUPTED_TEXT "interrupted, run again to resume"

/* ---- terminal ------------------------------------------------------------------------------------------ */

/* A line is the stage name, then segments in display order, two spaces apart; each segment has a priority:
 * when the line is too wide, the lowest goes first. */
typedef struct seg {
  char text[64];
  int prio;
  int bar;  /* the bar: narrowed before anything is left out */
  int glue; /* one space after the segment before it (when both are shown), not two */
} seg;

enum { P_INFLIGHT = 10, P_SKIPPED = 30, P_BAR = 40, P_DONE = 50, P_PCT = 60, P_FAILED = 70, P_RATE = 80,
       P_COUNT = 90, P_END = 100 };

#define SEG(prio_, ...)                                                  \
  do {                                                                   \
    snprintf(segs[n].text, sizeof segs[n].text, __VA_ARGS__);             \
    segs[n].prio = (prio_);                                              \
    segs[n].bar = segs[n].glue = 0;                                      \
    n++;                                                                 \
  } while (0)

static size_t term_segments(seg *segs, const ferry_progress_row *r, pstage *s, double now, int bar_width) {
  size_t n = 0;
  row_state state = state_of(r, 0);
  if (state == R_NOT_RUN) {
    SEG(P_END, "%s", r->status == FERRY_ECANCELED ? "not run (" INTERRUPTED_TEXT ")" : "not run");
    return n;
  }
  if (state == R_WAITING) {
    SEG(P_END, "waiting");
    return n;
  }
  int pct = percent(r);
  if (pct >= 0) {
    char bar[BAR_WIDTH + 1];
    int fill = pct * bar_width / 100;
    for (int i = 0; i < bar_width; i++) bar[i] = i < fill ? '#' : '-';
    bar[bar_width] = '\0';
    SEG(P_BAR, "[%s]", bar);
    segs[n - 1].bar = 1;
    SEG(P_PCT, "%3d%%", pct);
    segs[n - 1].glue = 1;
    SEG(P_COUNT, "%lld/%lld", (long long)processed(r), (long long)r->total);
  } else {
    SEG(P_COUNT, "%lld items", (long long)processed(r));
  }
  SEG(P_DONE, "done %lld", (long long)r->done);
  SEG(r->skipped ? P_SKIPPED : P_SKIPPED - 5, "skipped %lld", (long long)r->skipped);
  SEG(r->failed ? P_FAILED : P_BAR - 5, "failed %lld", (long long)r->failed);
  char rate[32], t[32];
  if (state != R_RUNNING) {
    double end = s->finished_at > 0 ? s->finished_at : now;
    fmt_rate(rate, sizeof rate, average_rate(r, end));
    fmt_duration(t, sizeof t, r->started > 0 ? end - r->started : -1);
    SEG(P_RATE, "%s/s", rate);
    if (state == R_INTERRUPTED)
      SEG(P_END, INTERRUPTED_TEXT);
    else
      SEG(P_END, "%s in %s", state == R_FAILED ? "stage failed" : "finished", t);
    return n;
  }
  double wr = window_rate(s, now, processed(r));
  fmt_rate(rate, sizeof rate, wr);
  SEG(P_RATE, "%s/s", rate);
  if (r->total >= 0) {
    fmt_duration(t, sizeof t, eta(r, wr));
    SEG(P_END, "ETA %s", t);
  } else {
    fmt_duration(t, sizeof t, r->started > 0 ? now - r->started : -1);
    SEG(P_END, "elapsed %s", t);
  }
  if (r->inflight > 0) SEG(P_INFLIGHT, "(%lld in flight)", (long long)r->inflight);
  return n;
}

/* The line of a row, at most `cols` - 1 columns wide when cols > 0 (a line as wide as the terminal would
 * wrap and break the redraw). Names and figures are ASCII but a stage name may not be: its width counts
 * characters. */
static size_t utf8_prefix(const char *s, size_t max_chars, size_t *chars) {
  size_t at = 0, c = 0;
  while (s[at] && c < max_chars) {
    at++;
    while (((unsigned char)s[at] & 0xC0) == 0x80) at++;
    c++;
  }
  if (chars) *chars = c;
  return at;
}

/* What goes before segment i when shown: one space after the name or a glued segment's neighbour, else two. */
static const char *separator(const seg *segs, const int *keep, size_t i) {
  int first = 1;
  for (size_t k = 0; k < i; k++) first &= !keep[k];
  if (first || (segs[i].glue && keep[i - 1])) return " ";
  return "  ";
}

static int line_width(const seg *segs, const int *keep, size_t n, int name_width) {
  int len = name_width;
  for (size_t i = 0; i < n; i++)
    if (keep[i]) len += (int)strlen(separator(segs, keep, i)) + (int)strlen(segs[i].text);
  return len;
}

static void term_line(ferry_buf *sb, const ferry_progress_row *r, pstage *s, double now, int name_width,
                      int cols) {
  seg segs[16];
  int keep[16] = {0};
  const char *name = r->stage ? r->stage : "?";
  int width = name_width;
  int limit = cols > 1 ? cols - 1 : 0;
  int bar_width = BAR_WIDTH;
  size_t n = term_segments(segs, r, s, now, bar_width);
  for (size_t i = 0; i < n; i++) keep[i] = 1;
  int len = line_width(segs, keep, n, width);
  /* leave out the lowest priority first (among equals, the rightmost); the bar is narrowed before anything
     more useful than it goes */
  while (limit && len > limit) {
    int worst = -1;
    for (size_t i = 0; i < n; i++)
      if (keep[i] && segs[i].prio < P_END && (worst < 0 || segs[i].prio <= segs[worst].prio)) worst = (int)i;
    if (worst < 0) break;
    if (segs[worst].prio >= P_BAR && bar_width == BAR_WIDTH) {
      bar_width = BAR_NARROW;
      n = term_segments(segs, r, s, now, bar_width); /* the same segments, a narrower bar */
    } else {
      keep[worst] = 0;
    }
    len = line_width(segs, keep, n, width);
  }
  if (limit && len > limit) { /* still too wide: cut the name */
    width -= len - limit;
    if (width < NAME_MIN_WIDTH) width = NAME_MIN_WIDTH;
  }
  size_t shown_chars;
  size_t bytes = utf8_prefix(name, (size_t)width, &shown_chars);
  ferry_buf_addn(sb, name, bytes);
  for (size_t k = shown_chars; k < (size_t)width; k++) ferry_buf_add(sb, " ");
  for (size_t i = 0; i < n; i++)
    if (keep[i]) {
      ferry_buf_add(sb, separator(segs, keep, i));
      ferry_buf_add(sb, segs[i].text);
    }
}

static int terminal_columns(const ferry_progress *p) {
  if (p->columns > 0) return p->columns;
  int fd = fileno(p->out);
  struct winsize ws;
  if (fd >= 0 && isatty(fd) && ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 0;
}

static void draw_terminal(ferry_progress *p, const ferry_progress_row *rows, size_t n, double now) {
  int width = 0;
  for (size_t i = 0; i < n; i++) {
    size_t w;
    utf8_prefix(rows[i].stage ? rows[i].stage : "?", (size_t)-1, &w);
    if ((int)w > width) width = (int)w;
  }
  if (width > NAME_MAX_WIDTH) width = NAME_MAX_WIDTH;
  int cols = terminal_columns(p);
  if (cols > 0 && width > cols / 5 && width > NAME_MIN_WIDTH) /* a fifth of the line at most for the name */
    width = cols / 5 > NAME_MIN_WIDTH ? cols / 5 : NAME_MIN_WIDTH;
  p->drawing = 1;
  ferry_buf sb = {0};
  if (p->lines > 0) ferry_buf_addf(&sb, "\r\033[%dA", p->lines); /* back to the first line drawn */
  for (size_t i = 0; i < n; i++) {
    ferry_buf_add(&sb, "\r\033[K");
    term_line(&sb, &rows[i], stage_of(p, rows[i].stage), now, width, cols);
    ferry_buf_add(&sb, "\n");
  }
  /* fewer rows than last time: clear what is left below */
  for (int i = (int)n; i < p->lines; i++) ferry_buf_add(&sb, "\r\033[K\n");
  if (p->lines > (int)n) ferry_buf_addf(&sb, "\033[%dA", p->lines - (int)n);
  p->lines = (int)n;
  fputs(sb.buf ? sb.buf : "", p->out);
  fflush(p->out);
  ferry_buf_free(&sb);
  p->drawing = 0;
}

/* Keeps the rows of this update for the redraws below log lines (names: the pstages' copies). */
static void keep_rows(ferry_progress *p, const ferry_progress_row *rows, size_t n) {
  if (rows == p->last) return;
  p->last = ferry__xrealloc(p->last, (n ? n : 1) * sizeof *p->last);
  for (size_t i = 0; i < n; i++) {
    p->last[i] = rows[i];
    p->last[i].stage = stage_of(p, rows[i].stage)->name;
  }
  p->nlast = n;
}

/* ---- plain lines and JSON ------------------------------------------------------------------------------ */

static void plain_running(ferry_buf *sb, const ferry_progress_row *r, pstage *s, double now) {
  char rate[32], t[32];
  double wr = window_rate(s, now, processed(r));
  fmt_rate(rate, sizeof rate, wr);
  ferry_buf_addf(sb, "progress %s: ", r->stage ? r->stage : "?");
  int pct = percent(r);
  if (pct >= 0)
    ferry_buf_addf(sb, "%lld/%lld (%d%%)", (long long)processed(r), (long long)r->total, pct);
  else
    ferry_buf_addf(sb, "%lld items", (long long)processed(r));
  ferry_buf_addf(sb, ", done %lld, skipped %lld, failed %lld, %s/s", (long long)r->done, (long long)r->skipped,
                 (long long)r->failed, rate);
  if (r->total >= 0) {
    fmt_duration(t, sizeof t, eta(r, wr));
    ferry_buf_addf(sb, ", ETA %s", t);
  } else {
    fmt_duration(t, sizeof t, r->started > 0 ? now - r->started : -1);
    ferry_buf_addf(sb, ", elapsed %s", t);
  }
}

static void plain_final(ferry_buf *sb, const ferry_progress_row *r, pstage *s, row_state state, double now) {
  if (state == R_NOT_RUN) {
    ferry_buf_addf(sb, "progress %s: not run%s", r->stage ? r->stage : "?",
                   r->status == FERRY_ECANCELED ? " (" INTERRUPTED_TEXT ")" : "");
    return;
  }
  double end = s->finished_at > 0 ? s->finished_at : now;
  char rate[32], took[32];
  fmt_rate(rate, sizeof rate, average_rate(r, end));
  fmt_duration(took, sizeof took, r->started > 0 ? end - r->started : -1);
  ferry_buf_addf(sb, "progress %s: %s: ", r->stage ? r->stage : "?",
                 state == R_INTERRUPTED ? INTERRUPTED_TEXT
                 : state == R_FAILED    ? "stage failed"
                 : state == R_FINISHED  ? "finished"
                                        : "stopped");
  if (r->total >= 0 && r->total != processed(r))
    ferry_buf_addf(sb, "%lld/%lld items", (long long)processed(r), (long long)r->total);
  else
    ferry_buf_addf(sb, "%lld items", (long long)processed(r));
  ferry_buf_addf(sb, ", done %lld, skipped %lld, failed %lld in %s (%s/s)", (long long)r->done,
                 (long long)r->skipped, (long long)r->failed, took, rate);
}

static json_t *number_or_null(double v) { return v < 0 ? json_null() : json_real((double)(long long)(v * 10) / 10); }

/* The line as a JSON object: the figures as fields, the plain text as "msg". */
static void json_progress(ferry_progress *p, const ferry_progress_row *r, pstage *s, row_state state, double now,
                          const char *text) {
  double end = state == R_RUNNING ? now : s->finished_at > 0 ? s->finished_at : now;
  double rate = state == R_RUNNING ? window_rate(s, now, processed(r)) : average_rate(r, end);
  json_t *o = json_object();
  json_object_set_new(o, "event", json_string("progress"));
  json_object_set_new(o, "stage", json_string(r->stage ? r->stage : "?"));
  json_object_set_new(o, "state", json_string(state_name(state)));
  json_object_set_new(o, "total", r->total >= 0 ? json_integer(r->total) : json_null());
  json_object_set_new(o, "processed", json_integer(processed(r)));
  json_object_set_new(o, "done", json_integer(r->done));
  json_object_set_new(o, "skipped", json_integer(r->skipped));
  json_object_set_new(o, "failed", json_integer(r->failed));
  json_object_set_new(o, "in_flight", json_integer(state == R_RUNNING ? r->inflight : 0));
  json_object_set_new(o, "rate", number_or_null(rate));
  json_object_set_new(o, "elapsed_seconds", number_or_null(r->started > 0 ? end - r->started : -1));
  if (state == R_RUNNING) json_object_set_new(o, "eta_seconds", number_or_null(eta(r, rate)));
  if (state == R_INTERRUPTED || (state == R_NOT_RUN && r->status == FERRY_ECANCELED))
    json_object_set_new(o, "code", json_string(ferry_err_name(FERRY_ECANCELED)));
  else if (state == R_FAILED)
    json_object_set_new(o, "code", json_string(ferry_err_name(r->status)));
  json_object_set_new(o, "msg", json_string(text));
  char *line = ferry__log_event_line(FERRY_LOG_INFO, o);
  fprintf(p->out, "%s\n", line);
  free(line);
}

static void emit_line(ferry_progress *p, const ferry_progress_row *r, pstage *s, row_state state, double now,
                      ferry_buf *sb) {
  if (p->style == STYLE_JSON)
    json_progress(p, r, s, state, now, sb->buf ? sb->buf : "");
  else
    fprintf(p->out, "%s\n", sb->buf ? sb->buf : "");
  ferry_buf_free(sb);
}

static void draw_plain(ferry_progress *p, const ferry_progress_row *rows, size_t n, int final, double now) {
  for (size_t i = 0; i < n; i++) {
    const ferry_progress_row *r = &rows[i];
    pstage *s = stage_of(p, r->stage);
    if (s->final_printed) continue;
    row_state state = state_of(r, final);
    ferry_buf sb = {0};
    if (r->finished || final) {
      if (state == R_NOT_RUN && !r->status) continue; /* never started, no reason given: nothing to say */
      plain_final(&sb, r, s, state, now);
      emit_line(p, r, s, state, now, &sb);
      s->final_printed = 1;
    } else if (state == R_RUNNING) {
      if (s->last_plain == 0) s->last_plain = r->started > 0 ? r->started : now; /* first line after 5 s */
      if (now - s->last_plain < PLAIN_INTERVAL) continue;
      plain_running(&sb, r, s, now);
      emit_line(p, r, s, state, now, &sb);
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
  if (p->style == STYLE_TERMINAL) {
    keep_rows(p, rows, n);
    if (final) { /* the run ended: a stage still going was stopped by it */
      for (size_t i = 0; i < p->nlast; i++)
        if (!p->last[i].finished) {
          p->last[i].finished = 1;
          if (!p->last[i].status) p->last[i].status = FERRY_ECANCELED;
        }
    }
    if (!final && p->last_draw >= 0 && now - p->last_draw < REDRAW_INTERVAL) return;
    p->last_draw = now;
    draw_terminal(p, p->last, p->nlast, now);
    if (final) p->nlast = 0; /* no more redraws below later lines */
  } else {
    draw_plain(p, rows, n, final, now);
  }
}

void ferry__progress_update(ferry_progress *p, const ferry_progress_row *rows, size_t n, int final) {
  ferry__progress_update_at(p, rows, n, final, ferry__now());
}
