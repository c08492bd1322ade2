/* Journal throughput: how many outcomes per second the journal records.
 *
 *   journal-bench [COUNT [GROUP [DIR]]]     defaults: 1000000 items, groups of 1000, $TMPDIR or /tmp
 *
 * Phases, each on a fresh journal file:
 *   outcomes          outcome() (done, with a small state and report, as the core records them) for COUNT
 *                     items, grouped GROUP per transaction (a pipeline without intents), inside a run
 *   resume lookups    get() of every item of the first phase (what a resumed run does per item), in a
 *                     scattered order, alone and inside groups
 *   run rows          foreach_run() over the first phase's run (what the end of a run reads for its report),
 *                     and over a run that wrote no row (the scan a --limit 1 run pays at its end)
 *   intent+outcome    intent() (committed at once) then outcome() per item, outcomes grouped
 * Prints items/s per phase and the journal size.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "journal/journal.h"

/* CPU seconds used by the process (user + system): a figure that other load on the machine does not skew. */
static double cpu_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static double cpu_used; /* of the last phase */

static void check(int rc, ferry_error *err) {
  if (rc) {
    fprintf(stderr, "journal-bench: %s\n", err->message);
    exit(1);
  }
}

static void remove_journal(const char *path) {
  const char *sfx[] = {"", "-wal", "-shm", "-lock"};
  for (int i = 0; i < 4; i++) {
    char *p = ferry_asprintf("%s%s", path, sfx[i]);
    unlink(p);
    free(p);
  }
}

static double phase(const char *path, long count, long group, int intents) {
  ferry_error err = FERRY_ERROR_INIT;
  remove_journal(path);
  ferry_journal *j = ferry__journal_open(path, 0, &err);
  check(!j, &err);
  json_t *state = json_pack("{s:s, s:i}", "target", "4f1c2a9e-0b7d-4c55-9e1f-6a0d3b2c8e71", "rows", 1);
  json_t *report = json_pack("{s:s}", "target_id", "4f1c2a9e-0b7d-4c55-9e1f-6a0d3b2c8e71");
  ferry_joutcome o = {.status = FERRY_J_DONE, .state = state, .report = report, .attempts = 1};
  char key[48];
  double t0 = ferry__now(), c0 = cpu_now();
  check(ferry__journal_run_begin(j, "run", NULL, &err), &err);
  for (long i = 0; i < count; i++) {
    if (i % group == 0) check(ferry__journal_group_begin(j, &err), &err);
    snprintf(key, sizeof key, "app_fd_orders:%010ld", i);
    if (intents) check(ferry__journal_intent(j, "records", key, "insert", NULL, 1, &err), &err);
    check(ferry__journal_outcome(j, "records", key, &o, &err), &err);
    if (i % group == group - 1 || i == count - 1) check(ferry__journal_group_commit(j, &err), &err);
  }
  check(ferry__journal_run_end(j, ferry__journal_run_id(j), 0, "{}", &err), &err);
  json_decref(report);
  json_decref(state);
  ferry__journal_close(j); /* the final checkpoint counts too */
  cpu_used = cpu_now() - c0;
  return ferry__now() - t0;
}

static double lookups(const char *path, long count, long group) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(path, 0, &err);
  check(!j, &err);
  char key[48];
  double t0 = ferry__now(), c0 = cpu_now();
  for (long i = 0; i < count; i++) {
    if (group && i % group == 0) check(ferry__journal_group_begin(j, &err), &err);
    snprintf(key, sizeof key, "app_fd_orders:%010ld", (i * 7919) % count);
    ferry_jrow row;
    check(ferry__journal_get(j, "records", key, &row, &err), &err);
    if (row.status != FERRY_J_DONE) {
      fprintf(stderr, "journal-bench: %s not done\n", key);
      exit(1);
    }
    ferry__jrow_clear(&row);
    if (group && (i % group == group - 1 || i == count - 1)) check(ferry__journal_group_commit(j, &err), &err);
  }
  double dt = ferry__now() - t0;
  cpu_used = cpu_now() - c0;
  ferry__journal_close(j);
  return dt;
}

static int count_row(void *arg, const char *stage, const char *key, const ferry_jrow *row) {
  (void)stage;
  (void)key;
  if (row->report) ++*(long *)arg;
  return 0;
}

/* Reads the rows of run `run` (1 = the first phase's run, which wrote `count` rows) as the end of a run does
 * for its report. */
static double run_rows(const char *path, int64_t run, long count) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(path, 1, &err);
  check(!j, &err);
  long n = 0;
  double t0 = ferry__now(), c0 = cpu_now();
  check(ferry__journal_foreach_run(j, run, "records", count_row, &n, &err), &err);
  double dt = ferry__now() - t0;
  cpu_used = cpu_now() - c0;
  ferry__journal_close(j);
  if (n != count) {
    fprintf(stderr, "journal-bench: foreach_run saw %ld rows with a report, expected %ld\n", n, count);
    exit(1);
  }
  return dt;
}

int main(int argc, char **argv) {
  long count = argc > 1 ? atol(argv[1]) : 1000000;
  long group = argc > 2 ? atol(argv[2]) : 1000;
  const char *dir = argc > 3 ? argv[3] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  if (count <= 0 || group <= 0) {
    fprintf(stderr, "usage: journal-bench [COUNT [GROUP [DIR]]]\n");
    return 2;
  }
  char *path = ferry_asprintf("%s/ferry-journal-bench-%d.db", dir, (int)getpid());
  double t = phase(path, count, group, 0);
  struct stat sb;
  long long size = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
  printf(
      "outcomes (groups of %ld):  %ld in %.2f s = %.0f outcomes/s; %.0f per CPU second (journal %.1f MB)\n",
      group, count, t, count / t, count / cpu_used, size / 1e6);
  double tl = lookups(path, count, 0);
  printf("resume lookups (get):     %ld in %.2f s = %.0f gets/s; %.0f per CPU second\n", count, tl,
         count / tl, count / cpu_used);
  tl = lookups(path, count, group);
  printf("  the same inside groups: %ld in %.2f s = %.0f gets/s; %.0f per CPU second\n", count, tl,
         count / tl, count / cpu_used);
  tl = run_rows(path, 1, count);
  printf("run rows (foreach_run):   %ld in %.2f s = %.0f rows/s; %.0f per CPU second\n", count, tl,
         count / tl, count / cpu_used);
  tl = run_rows(path, 2, 0);
  printf("  a run that wrote none:  %ld rows scanned in %.2f s (%.2f CPU s)\n", count, tl, cpu_used);
  long icount = count / 4 > 0 ? count / 4 : count;
  double ti = phase(path, icount, group, 1);
  printf(
      "intent+outcome per item:  %ld in %.2f s = %.0f items/s; %.0f per CPU second (each intent committed)\n",
      icount, ti, icount / ti, icount / cpu_used);
  remove_journal(path);
  free(path);
  return 0;
}
