/* The progress display (core/progress.c) rendered into memory, with a clock driven by the test. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "run/run.h"
#include "ftest.h"

typedef struct mem {
  FILE *f;
  char *buf;
  size_t len;
} mem;

static void mem_open(mem *m) {
  m->buf = NULL;
  m->len = 0;
  m->f = open_memstream(&m->buf, &m->len);
  FT_ASSERT(m->f, "open_memstream");
}

/* The text written since the last call (the stream keeps growing; `from` remembers where we were). */
static char *mem_since(mem *m, size_t *from) {
  fflush(m->f);
  char *s = ferry_strndup(m->buf + *from, m->len - *from);
  *from = m->len;
  return s;
}

static void mem_close(mem *m) {
  fclose(m->f);
  free(m->buf);
}

#define HAS(text, needle) FT_ASSERT(strstr(text, needle), "missing \"%s\" in:\n%s", needle, text)
#define INTERRUPTED_MARK "interrupted, run again to resume"
#define HASNT(text, needle) FT_ASSERT(!strstr(text, needle), "unexpected \"%s\" in:\n%s", needle, text)

static void t_terminal(void) {
  mem m;
  mem_open(&m);
  size_t at = 0;
  ferry_progress *p = ferry__progress_new(2, m.f);
  ferry_progress_row rows[3] = {
      {.stage = "forms", .total = 1000, .started = 100.0},
      {.stage = "files", .total = -1, .started = 100.0},
      {.stage = "instances", .total = 50, .started = 0},
  };
  /* zero elapsed time, nothing done: no crash, no rate yet */
  ferry__progress_update_at(p, rows, 3, 0, 100.0);
  char *t = mem_since(&m, &at);
  HAS(t, "forms     [--------------------]   0%  0/1000");
  HAS(t, "--/s");
  HAS(t, "ETA --");
  HAS(t, "files     0 items");
  HAS(t, "instances");
  HAS(t, "waiting");
  HASNT(t, "\033[3A"); /* first draw: nothing to go back over */
  free(t);
  /* five seconds later, 500 finished of 1000 at 100/s: ETA 5 s; unknown total: rate and elapsed time */
  for (int s = 1; s <= 5; s++) {
    rows[0].done = 100 * s - 10 * s;
    rows[0].failed = 10 * s;
    rows[1].done = 2000 * s;
    rows[1].inflight = 8;
    ferry__progress_update_at(p, rows, 3, 0, 100.0 + s);
  }
  t = mem_since(&m, &at);
  HAS(t, "\r\033[3A");
  HAS(t, "[##########----------]  50%  500/1000  done 450  skipped 0  failed 50  100/s  ETA 0:05");
  HAS(t, "files     10000 items  done 10000  skipped 0  failed 0  2000/s  elapsed 0:05  (8 in flight)");
  free(t);
  /* within 0.1 s of the last redraw: nothing drawn */
  ferry__progress_update_at(p, rows, 3, 0, 105.05);
  t = mem_since(&m, &at);
  FT_ASSERT(!*t, "redrawn too often: %s", t);
  free(t);
  /* the stage finishes at t = 110: average rate and time */
  rows[0].done = 900;
  rows[0].skipped = 50;
  rows[0].failed = 50;
  rows[0].finished = 1;
  ferry__progress_update_at(p, rows, 3, 1, 110.0);
  t = mem_since(&m, &at);
  HAS(t, "[####################] 100%  1000/1000  done 900  skipped 50  failed 50  100/s  finished in 0:10");
  free(t);
  ferry__progress_free(p);
  mem_close(&m);
}

static void t_plain(void) {
  mem m;
  mem_open(&m);
  size_t at = 0;
  ferry_progress *p = ferry__progress_new(1, m.f);
  ferry_progress_row rows[2] = {
      {.stage = "forms", .total = 3000, .started = 200.0},
      {.stage = "files", .total = -1, .started = 0},
  };
  ferry__progress_update_at(p, rows, 2, 0, 200.0);
  char *t = mem_since(&m, &at);
  FT_ASSERT(!*t, "plain line at once: %s", t);
  free(t);
  /* one update per second: a line per running stage every 5 seconds, none for a stage not started */
  int lines = 0;
  for (int s = 1; s <= 12; s++) {
    rows[0].done = 100 * s;
    ferry__progress_update_at(p, rows, 2, 0, 200.0 + s);
    t = mem_since(&m, &at);
    if (*t) {
      lines++;
      FT_ASSERT(s == 5 || s == 10, "plain line at second %d: %s", s, t);
      HASNT(t, "\033");
      HASNT(t, "files");
      if (s == 5) HAS(t, "progress forms: 500/3000 (16%), done 500, skipped 0, failed 0, 100/s, ETA 0:25\n");
    }
    free(t);
  }
  FT_ASSERT(lines == 2, "%d plain lines in 12 s", lines);
  /* the other stage starts with an unknown total; forms finishes */
  rows[1].started = 212.0;
  rows[1].done = 10;
  rows[0].done = 2990;
  rows[0].failed = 10;
  rows[0].finished = 1;
  ferry__progress_update_at(p, rows, 2, 0, 215.0);
  t = mem_since(&m, &at);
  HAS(t, "progress forms: finished: 3000 items, done 2990, skipped 0, failed 10 in 0:15 (200/s)\n");
  HASNT(t, "progress files");
  free(t);
  rows[1].done = 70;
  ferry__progress_update_at(p, rows, 2, 0, 218.0);
  t = mem_since(&m, &at);
  HAS(t, "progress files: 70 items, done 70, skipped 0, failed 0, 20/s, elapsed 0:06\n");
  HASNT(t, "ETA");
  HASNT(t, "forms"); /* its final line is printed once */
  free(t);
  /* the run ends (interrupted): a final line for the stage that did not finish */
  ferry__progress_update_at(p, rows, 2, 1, 218.0);
  t = mem_since(&m, &at);
  HAS(t, "progress files: interrupted, run again to resume: 70 items, done 70, skipped 0, failed 0 in 0:06 "
         "(12/s)\n");
  HASNT(t, "finished");
  HASNT(t, "forms");
  free(t);
  ferry__progress_free(p);
  mem_close(&m);
}

static void t_edges(void) {
  mem m;
  mem_open(&m);
  size_t at = 0;
  for (int style = 1; style <= 2; style++) {
    ferry_progress *p = ferry__progress_new(style, m.f);
    /* total 0, total -1, no name, finished without a start time, counts beyond the total */
    ferry_progress_row rows[4] = {
        {.stage = "empty", .total = 0, .started = 5.0, .finished = 1},
        {.stage = NULL, .total = -1},
        {.stage = "nostart", .total = 10, .done = 3, .finished = 1},
        {.stage = "over", .total = 5, .done = 9, .started = 5.0},
    };
    ferry__progress_update_at(p, rows, 4, 0, 5.0);
    ferry__progress_update_at(p, rows, 4, 1, 5.0);
    ferry__progress_update_at(p, NULL, 0, 1, 6.0);
    ferry__progress_free(p);
    char *t = mem_since(&m, &at);
    HAS(t, "empty");
    HAS(t, "nostart");
    if (style == 2) HAS(t, "[####################] 100%  9/5");
    free(t);
  }
  ferry__progress_free(NULL);
  mem_close(&m);
}

/* The visible lines of terminal output: escape sequences and carriage returns left out. Checks that none is
 * wider than `max` columns; returns how many lines there are. */
static int check_widths(const char *t, int max) {
  int lines = 0, col = 0;
  for (const char *c = t; *c; c++) {
    if (*c == '\033') {
      c++;
      if (*c == '[')
        while (c[1] && !((c[1] >= 'A' && c[1] <= 'Z') || (c[1] >= 'a' && c[1] <= 'z'))) c++;
      if (c[1]) c++;
      continue;
    }
    if (*c == '\r') continue;
    if (*c == '\n') {
      lines++;
      col = 0;
      continue;
    }
    col++;
    FT_ASSERT(col <= max, "a line wider than %d columns in:\n%s", max, t);
  }
  return lines;
}

/* 80 columns (and 40): every line fits, the ETA (or the elapsed time) stays, the least useful parts go. */
static void t_width(void) {
  mem m;
  mem_open(&m);
  size_t at = 0;
  ferry_progress *p = ferry__progress_new(2, m.f);
  ferry__progress_set_columns(p, 80);
  ferry_progress_row rows[3] = {
      {.stage = "instances", .total = 1000000, .started = 100.0},
      {.stage = "uploads-of-a-long-stage-name", .total = -1, .started = 100.0},
      {.stage = "forms", .total = 1000, .started = 100.0},
  };
  for (int s = 1; s <= 5; s++) {
    rows[0].done = 12345 * s;
    rows[0].skipped = 7 * s;
    rows[0].failed = 3 * s;
    rows[0].inflight = 64;
    rows[1].done = 99999 * s;
    rows[1].inflight = 16;
    rows[2].done = 100 * s;
    ferry__progress_update_at(p, rows, 3, 0, 100.0 + s);
  }
  char *t = mem_since(&m, &at);
  check_widths(t, 79);
  HAS(t, "ETA 1:17");       /* 1,000,000 - 61,775 left at 12.4k/s */
  HAS(t, "elapsed 0:05");   /* unknown total: the elapsed time */
  HAS(t, "12.4k/s");
  HAS(t, "failed 15");
  HAS(t, "forms            [####------]  40%");  /* the bar narrowed before anything useful goes */
  HASNT(t, "in flight");    /* the first to go */
  free(t);
  /* 40 columns: still the count and the ETA, and the name cut last */
  ferry__progress_set_columns(p, 40);
  rows[0].done += 1;
  ferry__progress_update_at(p, rows, 3, 0, 106.0);
  t = mem_since(&m, &at);
  check_widths(t, 39);
  HAS(t, "ETA ");
  HAS(t, "elapsed 0:06");
  HAS(t, "/1000000");
  HASNT(t, "skipped");
  free(t);
  /* 20 columns: the name is cut, the end of the line stays */
  ferry__progress_set_columns(p, 20);
  ferry__progress_update_at(p, rows, 3, 1, 107.0);
  t = mem_since(&m, &at);
  HAS(t, INTERRUPTED_MARK);
  free(t);
  ferry__progress_free(p);
  mem_close(&m);
}

/* An interrupted run: the stages say so, never "finished" nor "failed". */
static void t_interrupted(void) {
  mem m;
  mem_open(&m);
  size_t at = 0;
  for (int style = 1; style <= 2; style++) {
    ferry_progress *p = ferry__progress_new(style, m.f);
    ferry_progress_row rows[2] = {
        {.stage = "forms", .total = 100, .done = 40, .started = 10.0, .finished = 1, .status = FERRY_ECANCELED},
        {.stage = "instances", .total = -1, .finished = 1, .status = FERRY_ECANCELED},
    };
    ferry__progress_update_at(p, rows, 2, 1, 12.0);
    ferry__progress_free(p);
    char *t = mem_since(&m, &at);
    HAS(t, "forms");
    HAS(t, INTERRUPTED_MARK);
    HAS(t, "not run (" INTERRUPTED_MARK ")");
    HASNT(t, "finished");
    HASNT(t, "failed in");
    HASNT(t, "stage failed");
    free(t);
  }
  mem_close(&m);
}

/* Log lines during a run: the block is erased before each and drawn again below it at once. */
static void t_loglines(void) {
  mem m;
  mem_open(&m);
  size_t at = 0;
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, m.f);
  ferry_progress *p = ferry__progress_new(2, m.f);
  ferry__progress_set_columns(p, 80);
  ferry_progress_row rows[1] = {{.stage = "instances", .total = 10, .done = 3, .started = ferry__now() - 1}};
  ferry__progress_update(p, rows, 1, 0);
  for (int i = 0; i < 3; i++) {
    ferry_log_item(NULL, FERRY_LOG_INFO, "p-1", 0, "record \"r-%d\": a long line that says what a hook did, "
                   "long enough to wrap on a terminal of eighty columns, as per-item lines do", i);
    char *t = mem_since(&m, &at);
    const char *logged = strstr(t, "[ferry] item \"p-1\": record");
    FT_ASSERT(logged, "no log line in:\n%s", t);
    FT_ASSERT(strstr(t, "\033[1A\033[J") && strstr(t, "\033[1A\033[J") < logged, "the block not erased first:\n%s", t);
    const char *block = strstr(logged, "instances [###");
    FT_ASSERT(block, "the block is not drawn again below the log line:\n%s", t);
    free(t);
  }
  ferry__progress_free(p);
  /* the display is gone: a log line is only the line */
  ferry_log(NULL, FERRY_LOG_INFO, "after the run");
  char *t = mem_since(&m, &at);
  HASNT(t, "instances");
  HASNT(t, "\033");
  free(t);
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, NULL);
  mem_close(&m);
}

/* JSON log format: the progress lines are JSON objects with the figures as fields, whatever the style. */
static void t_json(void) {
  mem m;
  mem_open(&m);
  size_t at = 0;
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_JSON, m.f);
  ferry_progress *p = ferry__progress_new(2, m.f);
  ferry_progress_row rows[2] = {
      {.stage = "forms", .total = 100, .started = 10.0},
      {.stage = "files", .total = -1, .started = 10.0},
  };
  for (int s = 1; s <= 6; s++) {
    rows[0].done = 10 * s;
    rows[1].done = 5 * s;
    ferry__progress_update_at(p, rows, 2, 0, 10.0 + s);
  }
  rows[0].finished = 1;
  rows[0].status = FERRY_ECANCELED;
  ferry__progress_update_at(p, rows, 2, 1, 17.0);
  ferry__progress_free(p);
  char *t = mem_since(&m, &at);
  HASNT(t, "\033");
  int n = 0, running = 0, interrupted = 0;
  for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    FT_ASSERT(json_is_object(o), "not a JSON object: %s (%s)", line, je.text);
    FT_ASSERT(!strcmp(json_string_value(json_object_get(o, "event")), "progress"), "event: %s", line);
    FT_ASSERT(json_string_value(json_object_get(o, "ts")) && json_string_value(json_object_get(o, "stage")),
              "ts, stage: %s", line);
    const char *state = json_string_value(json_object_get(o, "state"));
    if (!strcmp(state, "running")) {
      running++;
      FT_ASSERT(json_is_number(json_object_get(o, "rate")), "rate: %s", line);
    }
    if (!strcmp(state, "interrupted")) {
      interrupted++;
      FT_ASSERT(!strcmp(json_string_value(json_object_get(o, "code")), "ECANCELED"), "code: %s", line);
      FT_ASSERT(strstr(json_string_value(json_object_get(o, "msg")), INTERRUPTED_MARK), "msg: %s", line);
    }
    json_decref(o);
    n++;
  }
  FT_ASSERT(running == 2 && interrupted == 2 && n == 4, "%d lines: %d running, %d interrupted", n, running,
            interrupted);
  free(t);
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, NULL);
  mem_close(&m);
}

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  if (!strcmp(argv[1], "terminal"))
    t_terminal();
  else if (!strcmp(argv[1], "plain"))
    t_plain();
  else if (!strcmp(argv[1], "edges"))
    t_edges();
  else if (!strcmp(argv[1], "width"))
    t_width();
  else if (!strcmp(argv[1], "interrupted"))
    t_interrupted();
  else if (!strcmp(argv[1], "loglines"))
    t_loglines();
  else if (!strcmp(argv[1], "json"))
    t_json();
  else
    return 2;
  printf("ok %s\n", argv[1]);
  return 0;
}
