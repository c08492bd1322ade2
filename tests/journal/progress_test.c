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
  /* five seconds later, 500 finished of 1000 at 100/s: ETA 5 s; unknown total: rate, no ETA */
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
  HAS(t, "files     10000 items  done 10000  skipped 0  failed 0  2000/s  (8 in flight)");
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
  HAS(t, "progress files: 70 items, done 70, skipped 0, failed 0, 20/s\n");
  HASNT(t, "ETA");
  HASNT(t, "forms"); /* its final line is printed once */
  free(t);
  /* the run ends (interrupted): a final line for the stage that did not finish */
  ferry__progress_update_at(p, rows, 2, 1, 218.0);
  t = mem_since(&m, &at);
  HAS(t, "progress files: stopped: 70 items, done 70, skipped 0, failed 0 in 0:06 (12/s)\n");
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

int main(int argc, char **argv) {
  if (argc != 2) return 2;
  if (!strcmp(argv[1], "terminal"))
    t_terminal();
  else if (!strcmp(argv[1], "plain"))
    t_plain();
  else if (!strcmp(argv[1], "edges"))
    t_edges();
  else
    return 2;
  printf("ok %s\n", argv[1]);
  return 0;
}
