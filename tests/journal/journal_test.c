/* Unit tests of the journal (core/journal.c) on real SQLite files in a temporary directory.
 *
 *   journal-test <name>     runs one test: lifecycle, resume, idmap, read, group, reopen, readonly, version,
 *                           redact, foreach-writes, crash, lock, upgrade (v1 -> v2), report, marks, ids, runs,
 *                           public (the read-only API of ferry/journal.h); on PostgreSQL also restart and
 *                           terminated (the session of the journal's idle connection ends)
 * The crash test forks children that record intents and outcomes and kill themselves with SIGKILL at a
 * random moment (seeded: FERRY_TEST_SEED, default 20261121); the parent then checks that everything the
 * child reported as confirmed is in the journal and that the file is intact.
 */
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "journal/journal.h"
#include "journal/jpg.h"
#include "ferry/journal.h"
#include "ftest.h"

static char tmpdir[256];

static void cleanup_dir(void) {
  if (!tmpdir[0]) return;
  char *cmd = ferry_asprintf("rm -rf '%s'", tmpdir);
  if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", tmpdir);
  free(cmd);
}

/* FERRY_TEST_PG_STATE=<pgfixture state file>: the same tests on PostgreSQL journals, one new database per
 * journal (postgresql://ferry@127.0.0.1:PORT/jt_<pid>_<name>); tests of SQLite's files are skipped. */
static const char *pg_port(void) {
  static char port[16];
  const char *state = getenv("FERRY_TEST_PG_STATE");
  if (!state || !*state) return NULL;
  if (!port[0]) {
    FILE *f = fopen(state, "r");
    FT_ASSERT(f, "cannot read %s", state);
    char line[512];
    for (int i = 0; i < 3 && fgets(line, sizeof line, f); i++)
      if (i == 2) snprintf(port, sizeof port, "%.*s", (int)strcspn(line, "\n"), line);
    fclose(f);
  }
  return port;
}

static char *tmp_path(const char *name) {
  if (pg_port()) {
    ferry_buf db = {0};
    ferry_buf_add(&db, "jt_");
    char pid[24];
    snprintf(pid, sizeof pid, "%ld_", (long)getpid());
    ferry_buf_add(&db, pid);
    for (const char *c = name; *c; c++) ferry_buf_addn(&db, (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') ? c : "_", 1);
    char *cmd = ferry_asprintf("psql -q -X -v ON_ERROR_STOP=1 'host=127.0.0.1 port=%s user=ferry dbname=postgres' "
                               "-c 'DROP DATABASE IF EXISTS %s' -c 'CREATE DATABASE %s' >/dev/null",
                               pg_port(), db.buf, db.buf);
    FT_ASSERT(system(cmd) == 0, "%s failed", cmd);
    free(cmd);
    char *url = ferry_asprintf("postgresql://ferry@127.0.0.1:%s/%s", pg_port(), db.buf);
    ferry_buf_free(&db);
    return url;
  }
  if (!tmpdir[0]) {
    const char *base = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    snprintf(tmpdir, sizeof tmpdir, "%s/ferry-journal-XXXXXX", base);
    FT_ASSERT(mkdtemp(tmpdir), "mkdtemp %s: %s", tmpdir, strerror(errno));
    atexit(cleanup_dir);
  }
  return ferry_asprintf("%s/%s", tmpdir, name);
}

static ferry_journal *open_ok(const char *path, int readonly) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(path, readonly, &err);
  FT_ASSERT(j, "open %s: %s", path, err.message);
  return j;
}

#define OK(call)                                                                      \
  do {                                                                                \
    ferry_error e_ = FERRY_ERROR_INIT;                                                \
    int rc_ = (call);                                                                 \
    FT_ASSERT(rc_ == 0 && !e_.message, "%s -> %d: %s", #call, rc_, e_.message);      \
  } while (0)
/* OK() passes &e_ as the error: calls write `E` for it. */
#define E (&e_)

static json_t *obj(const char *text) {
  json_error_t je;
  json_t *v = json_loads(text, 0, &je);
  FT_ASSERT(v, "bad test JSON %s: %s", text, je.text);
  return v;
}

static void get_row(ferry_journal *j, const char *stage, const char *key, ferry_jrow *row) {
  OK(ferry__journal_get(j, stage, key, row, E));
  FT_ASSERT(row->state && json_is_object(row->state), "state of %s/%s is not an object", stage, key);
}

static int64_t count_of(ferry_journal *j, const char *stage, ferry_jstatus s) {
  int64_t c[5];
  OK(ferry__journal_counts(j, stage, c, E));
  return c[s];
}

/* ---- lifecycle: intent -> done / skipped / failed ---------------------------------------------------- */
static void t_lifecycle(void) {
  char *path = tmp_path("life.db");
  ferry_journal *j = open_ok(path, 0);
  ferry_jrow row;
  get_row(j, "forms", "a", &row);
  FT_ASSERT(row.status == FERRY_J_NONE, "unknown item has status %s", ferry__jstatus_name(row.status));
  FT_ASSERT(json_object_size(row.state) == 0 && !row.step && !row.error, "unknown item has data");
  ferry__jrow_clear(&row);

  json_t *st = obj("{\"target\": 7}");
  OK(ferry__journal_intent(j, "forms", "a", "insert", st, 1, E));
  get_row(j, "forms", "a", &row);
  FT_ASSERT(row.status == FERRY_J_INTENT, "after intent: %s", ferry__jstatus_name(row.status));
  FT_ASSERT(row.step && !strcmp(row.step, "insert"), "step %s", row.step);
  FT_ASSERT(json_integer_value(json_object_get(row.state, "target")) == 7, "state lost");
  FT_ASSERT(row.attempts == 1, "attempts %u", row.attempts);
  ferry__jrow_clear(&row);

  OK(ferry__journal_done(j, "forms", "a", NULL, 0, E)); /* NULL state: keep the stored one */
  get_row(j, "forms", "a", &row);
  FT_ASSERT(row.status == FERRY_J_DONE, "after done: %s", ferry__jstatus_name(row.status));
  FT_ASSERT(json_integer_value(json_object_get(row.state, "target")) == 7, "done lost the state");
  FT_ASSERT(row.step && !strcmp(row.step, "insert"), "done lost the step");
  ferry__jrow_clear(&row);

  OK(ferry__journal_done(j, "forms", "b", NULL, 1, E)); /* no intent before: allowed */
  get_row(j, "forms", "b", &row);
  FT_ASSERT(row.status == FERRY_J_SKIPPED, "skipped: %s", ferry__jstatus_name(row.status));
  FT_ASSERT(!row.step && row.attempts == 1, "skipped row step %s attempts %u", row.step, row.attempts);
  ferry__jrow_clear(&row);

  ferry_error cause = FERRY_ERROR_INIT;
  ferry_error_set(&cause, FERRY_ECONFLICT, "row 12 differs on the target");
  ferry_error_set_detail(&cause, "column c_name: 'x' vs 'y'");
  OK(ferry__journal_intent(j, "forms", "c", "insert", NULL, 1, E));
  OK(ferry__journal_failed(j, "forms", "c", st, &cause, 3, E));
  get_row(j, "forms", "c", &row);
  FT_ASSERT(row.status == FERRY_J_FAILED, "failed: %s", ferry__jstatus_name(row.status));
  FT_ASSERT(row.error && strstr(row.error, "row 12 differs") && strstr(row.error, "c_name"), "error %s",
            row.error);
  FT_ASSERT(row.error_code == FERRY_ECONFLICT, "error code %d", row.error_code);
  FT_ASSERT(row.attempts == 3, "attempts %u", row.attempts);
  ferry__jrow_clear(&row);

  /* a retry after the failure: intent again, then done clears the error */
  OK(ferry__journal_intent(j, "forms", "c", "insert", NULL, 4, E));
  get_row(j, "forms", "c", &row);
  FT_ASSERT(row.status == FERRY_J_INTENT && row.attempts == 4, "retry intent %s %u",
            ferry__jstatus_name(row.status), row.attempts);
  ferry__jrow_clear(&row);
  OK(ferry__journal_done(j, "forms", "c", NULL, 0, E));
  get_row(j, "forms", "c", &row);
  FT_ASSERT(row.status == FERRY_J_DONE && !row.error && !row.error_code, "done after retry keeps the error");
  ferry__jrow_clear(&row);

  /* bad calls are refused with a message naming the journal */
  ferry_error err = FERRY_ERROR_INIT;
  FT_ASSERT(ferry__journal_intent(j, "forms", "d", NULL, NULL, 1, &err) == FERRY_EINVAL,
            "intent without step");
  FT_ASSERT(strstr(err.message, path) && strstr(err.message, "forms/d"), "message %s", err.message);
  json_t *arr = json_array();
  FT_ASSERT(ferry__journal_done(j, "forms", "d", arr, 0, &err) == FERRY_EINVAL, "array state accepted");
  FT_ASSERT(strstr(err.message, "JSON object"), "message %s", err.message);
  json_decref(arr);
  ferry_error_clear(&err);

  /* runs: listed newest first; one that never ended has nulls */
  int64_t run = 0, run2 = 0;
  OK(ferry__journal_run_begin(j, "run", &run, E));
  FT_ASSERT(run > 0, "run id %lld", (long long)run);
  OK(ferry__journal_run_end(j, run, 0, "{\"done\": 2}", E));
  FT_ASSERT(ferry__journal_run_end(j, run, 0, "{bad", &err) == FERRY_EINVAL, "bad summary accepted");
  ferry_error_clear(&err);
  OK(ferry__journal_run_begin(j, "verify", &run2, E));
  FT_ASSERT(run2 > run, "run ids %lld %lld", (long long)run, (long long)run2);
  json_t *runs = ferry__journal_runs(j, 0, &err);
  FT_ASSERT(runs && json_array_size(runs) == 2, "runs listing");
  json_t *r0 = json_array_get(runs, 0), *r1 = json_array_get(runs, 1);
  FT_ASSERT(json_integer_value(json_object_get(r0, "id")) == run2 &&
                !strcmp(json_string_value(json_object_get(r0, "mode")), "verify") &&
                json_is_null(json_object_get(r0, "ended")) && json_is_null(json_object_get(r0, "summary")),
            "unfinished run listed wrong");
  FT_ASSERT(json_integer_value(json_object_get(json_object_get(r1, "summary"), "done")) == 2 &&
                json_integer_value(json_object_get(r1, "status")) == 0 &&
                json_integer_value(json_object_get(r1, "ended")) >=
                    json_integer_value(json_object_get(r1, "started")),
            "ended run listed wrong");
  json_decref(runs);
  runs = ferry__journal_runs(j, 1, &err);
  FT_ASSERT(runs && json_array_size(runs) == 1, "runs limit");
  json_decref(runs);

  ferry_error_clear(&cause);
  json_decref(st);
  ferry__journal_close(j);
  free(path);
}

/* ---- resume: a later open reads the last step and state ----------------------------------------------- */
static void t_resume(void) {
  char *path = tmp_path("resume.db");
  ferry_journal *j = open_ok(path, 0);
  json_t *st = obj("{\"process\": \"p-1\", \"activities\": [\"a1\"]}");
  OK(ferry__journal_intent(j, "instances", "42", "start", NULL, 1, E));
  OK(ferry__journal_intent(j, "instances", "42", "activities", st, 1, E));
  OK(ferry__journal_intent(j, "instances", "43", "start", NULL, 1, E));
  OK(ferry__journal_done(j, "instances", "43", NULL, 0, E));
  json_decref(st);
  ferry__journal_close(j);

  j = open_ok(path, 0);
  ferry_jrow row;
  get_row(j, "instances", "42", &row);
  FT_ASSERT(row.status == FERRY_J_INTENT, "in doubt item: %s", ferry__jstatus_name(row.status));
  FT_ASSERT(row.step && !strcmp(row.step, "activities"), "last step %s", row.step);
  FT_ASSERT(!strcmp(json_string_value(json_object_get(row.state, "process")), "p-1"), "state not kept");
  ferry__jrow_clear(&row);
  get_row(j, "instances", "43", &row);
  FT_ASSERT(row.status == FERRY_J_DONE, "done item: %s", ferry__jstatus_name(row.status));
  ferry__jrow_clear(&row);
  ferry__journal_close(j);
  free(path);
}

/* ---- id map -------------------------------------------------------------------------------------------- */
static void t_idmap(void) {
  char *path = tmp_path("idmap.db");
  ferry_journal *j = open_ok(path, 0);
  ferry_error err = FERRY_ERROR_INIT;
  char *id = ferry__journal_lookup_id(j, "process", "old-1", &err);
  FT_ASSERT(!id && !err.message, "lookup of an unknown id: %s", id);
  OK(ferry__journal_map_id(j, "instances", "k1", "process", "old-1", "new-1", E));
  OK(ferry__journal_map_id(j, "instances", "k1", "activity", "old-1", "act-9", E)); /* another kind */
  id = ferry__journal_lookup_id(j, "process", "old-1", &err);
  FT_ASSERT(id && !strcmp(id, "new-1"), "lookup %s", id);
  free(id);
  id = ferry__journal_lookup_id(j, "activity", "old-1", &err);
  FT_ASSERT(id && !strcmp(id, "act-9"), "lookup %s", id);
  free(id);
  /* the same item may map again (it redid the step) */
  OK(ferry__journal_map_id(j, "instances", "k1", "process", "old-1", "new-2", E));
  id = ferry__journal_lookup_id(j, "process", "old-1", &err);
  FT_ASSERT(id && !strcmp(id, "new-2"), "remap %s", id);
  free(id);
  /* another item may not take an old id already mapped */
  FT_ASSERT(ferry__journal_map_id(j, "instances", "k2", "process", "old-1", "new-3", &err) == FERRY_ECONFLICT,
            "conflicting map accepted");
  FT_ASSERT(strstr(err.message, "instances/k1") && strstr(err.message, "new-2") && strstr(err.message, "k2"),
            "conflict message: %s", err.message);
  ferry_error_clear(&err);
  id = ferry__journal_lookup_id(j, "process", "old-1", &err);
  FT_ASSERT(id && !strcmp(id, "new-2"), "conflict changed the map: %s", id);
  free(id);
  ferry__journal_close(j);
  /* survives reopening, readable read-only */
  j = open_ok(path, 1);
  id = ferry__journal_lookup_id(j, "process", "old-1", &err);
  FT_ASSERT(id && !strcmp(id, "new-2"), "after reopen %s", id);
  free(id);
  ferry__journal_close(j);
  free(path);
}

/* ---- counts, foreach, stages --------------------------------------------------------------------------- */
typedef struct collect {
  ferry_buf keys;
  int n, stop_after;
} collect;

static int collect_fn(void *arg, const char *stage, const char *key, const ferry_jrow *row) {
  collect *c = arg;
  ferry_buf_addf(&c->keys, "%s/%s:%s ", stage, key, ferry__jstatus_name(row->status));
  c->n++;
  return c->stop_after && c->n >= c->stop_after;
}

static void t_read(void) {
  char *path = tmp_path("read.db");
  ferry_journal *j = open_ok(path, 0);
  char **stages = NULL;
  ferry_error err = FERRY_ERROR_INIT;
  stages = ferry__journal_stages(j, &err);
  FT_ASSERT(stages && !stages[0], "stages of an empty journal");
  ferry__strv_free(stages);
  int64_t c[5];
  OK(ferry__journal_counts(j, NULL, c, E));
  FT_ASSERT(c[0] == 0 && c[1] == 0 && c[2] == 0, "counts of an empty journal");

  /* keys in a scrambled order; 600 of them so that foreach goes through several batches */
  OK(ferry__journal_group_begin(j, E));
  for (int i = 599; i >= 0; i--) {
    char key[32];
    snprintf(key, sizeof key, "k%04d", (i * 7919) % 600);
    if (i % 10 == 0) {
      ferry_error cause = FERRY_ERROR_INIT;
      ferry_error_set(&cause, FERRY_EPROTO, "bad answer");
      OK(ferry__journal_failed(j, "files", key, NULL, &cause, 1, E));
      ferry_error_clear(&cause);
    } else if (i % 10 == 1) {
      OK(ferry__journal_done(j, "files", key, NULL, 1, E));
    } else if (i % 10 == 2) {
      OK(ferry__journal_intent(j, "files", key, "copy", NULL, 1, E));
    } else {
      OK(ferry__journal_done(j, "files", key, NULL, 0, E));
    }
  }
  OK(ferry__journal_group_commit(j, E));
  OK(ferry__journal_done(j, "a-first", "x", NULL, 0, E));
  OK(ferry__journal_done(j, "z-last", "", NULL, 0, E)); /* an empty key is a key */

  OK(ferry__journal_counts(j, "files", c, E));
  FT_ASSERT(c[FERRY_J_NONE] == 600 && c[FERRY_J_FAILED] == 60 && c[FERRY_J_SKIPPED] == 60 &&
                c[FERRY_J_INTENT] == 60 && c[FERRY_J_DONE] == 420,
            "counts files: all %lld intent %lld done %lld skipped %lld failed %lld", (long long)c[0],
            (long long)c[1], (long long)c[2], (long long)c[3], (long long)c[4]);
  OK(ferry__journal_counts(j, NULL, c, E));
  FT_ASSERT(c[FERRY_J_NONE] == 602 && c[FERRY_J_DONE] == 422, "counts all: %lld %lld", (long long)c[0],
            (long long)c[2]);
  OK(ferry__journal_counts(j, "nope", c, E));
  FT_ASSERT(c[0] == 0, "counts of an unknown stage");

  stages = ferry__journal_stages(j, &err);
  FT_ASSERT(stages && ferry__strv_len(stages) == 3 && !strcmp(stages[0], "a-first") &&
                !strcmp(stages[1], "files") && !strcmp(stages[2], "z-last"),
            "stages %s %s", stages && stages[0] ? stages[0] : "-", stages && stages[1] ? stages[1] : "-");
  ferry__strv_free(stages);

  /* foreach over one stage: every key once, in key order */
  collect col = {0};
  OK(ferry__journal_foreach(j, "files", FERRY_J_NONE, collect_fn, &col, E));
  FT_ASSERT(col.n == 600, "foreach saw %d items", col.n);
  ferry_buf expect = {0};
  for (int i = 0; i < 600; i++) ferry_buf_addf(&expect, "files/k%04d:", i);
  /* compare keys only (statuses vary) */
  const char *p = col.keys.buf;
  for (int i = 0; i < 600; i++) {
    char want[32];
    snprintf(want, sizeof want, "files/k%04d:", i);
    FT_ASSERT(!strncmp(p, want, strlen(want)), "item %d out of order: %.20s", i, p);
    p = strchr(p, ' ') + 1;
  }
  ferry_buf_free(&expect);
  ferry_buf_free(&col.keys);

  /* status filter, stop early, all stages in order */
  col = (collect){0};
  OK(ferry__journal_foreach(j, "files", FERRY_J_INTENT, collect_fn, &col, E));
  FT_ASSERT(col.n == 60 && !strstr(col.keys.buf, ":done"), "intent filter: %d", col.n);
  ferry_buf_free(&col.keys);
  col = (collect){.stop_after = 5};
  OK(ferry__journal_foreach(j, NULL, FERRY_J_NONE, collect_fn, &col, E));
  FT_ASSERT(col.n == 5 && !strncmp(col.keys.buf, "a-first/x:done files/k0000:", 27), "stop: %s",
            col.keys.buf);
  ferry_buf_free(&col.keys);
  col = (collect){0};
  OK(ferry__journal_foreach(j, NULL, FERRY_J_DONE, collect_fn, &col, E));
  FT_ASSERT(col.n == 422 && strstr(col.keys.buf, "z-last/:done"), "all stages done: %d", col.n);
  ferry_buf_free(&col.keys);
  ferry__journal_close(j);
  free(path);
}

/* ---- group commit -------------------------------------------------------------------------------------- */
static void t_group(void) {
  char *path = tmp_path("group.db");
  ferry_journal *j = open_ok(path, 0);
  ferry_journal *r = open_ok(path, 1); /* a reader, as `ferry status` during a run */
  OK(ferry__journal_group_begin(j, E));
  ferry_error err = FERRY_ERROR_INIT;
  FT_ASSERT(ferry__journal_group_begin(j, &err) == FERRY_EINTERNAL, "nested group accepted");
  ferry_error_clear(&err);
  OK(ferry__journal_done(j, "s", "1", NULL, 0, E));
  OK(ferry__journal_done(j, "s", "2", NULL, 0, E));
  /* the writer sees its own outcomes; the reader does not yet */
  FT_ASSERT(count_of(j, "s", FERRY_J_DONE) == 2, "writer does not see its group");
  FT_ASSERT(count_of(r, "s", FERRY_J_DONE) == 0, "reader sees an uncommitted group");
  /* an intent inside the group commits it now, with the outcomes before it */
  OK(ferry__journal_intent(j, "s", "3", "write", NULL, 1, E));
  FT_ASSERT(count_of(r, "s", FERRY_J_DONE) == 2 && count_of(r, "s", FERRY_J_INTENT) == 1,
            "intent in a group not committed at once");
  OK(ferry__journal_done(j, "s", "3", NULL, 0, E));
  OK(ferry__journal_map_id(j, "s", "3", "record", "o3", "n3", E));
  FT_ASSERT(count_of(r, "s", FERRY_J_DONE) == 2, "outcome after the intent committed early");
  OK(ferry__journal_group_commit(j, E));
  FT_ASSERT(count_of(r, "s", FERRY_J_DONE) == 3, "group commit did not commit");
  char *id = ferry__journal_lookup_id(r, "record", "o3", &err);
  FT_ASSERT(id && !strcmp(id, "n3"), "map in group: %s", id);
  free(id);
  FT_ASSERT(ferry__journal_group_commit(j, &err) == FERRY_EINTERNAL, "commit without a group accepted");
  ferry_error_clear(&err);
  /* an empty group is fine; a group left open is committed by close */
  OK(ferry__journal_group_begin(j, E));
  OK(ferry__journal_group_commit(j, E));
  OK(ferry__journal_group_begin(j, E));
  OK(ferry__journal_done(j, "s", "4", NULL, 0, E));
  ferry__journal_close(j);
  FT_ASSERT(count_of(r, "s", FERRY_J_DONE) == 4, "close dropped an open group");
  /* the reader cannot write */
  FT_ASSERT(ferry__journal_done(r, "s", "5", NULL, 0, &err) == FERRY_EINVAL, "read-only journal wrote");
  FT_ASSERT(strstr(err.message, "read-only"), "message %s", err.message);
  ferry_error_clear(&err);
  ferry__journal_close(r);
  free(path);
}

/* ---- reopen, readonly, version ------------------------------------------------------------------------- */
static void t_reopen(void) {
  char *path = tmp_path("reopen.db");
  for (int round = 0; round < 3; round++) {
    ferry_journal *j = open_ok(path, 0);
    FT_ASSERT(count_of(j, NULL, FERRY_J_DONE) == round, "round %d sees %lld", round,
              (long long)count_of(j, NULL, FERRY_J_DONE));
    char key[16];
    snprintf(key, sizeof key, "%d", round);
    OK(ferry__journal_done(j, "s", key, NULL, 0, E));
    ferry__journal_close(j);
  }
  struct stat sb;
  FT_ASSERT(pg_port() || (stat(path, &sb) == 0 && (sb.st_mode & 077) == 0), "journal file mode %o",
            sb.st_mode & 0777);
  free(path);
}

/* ---- one writer at a time ----------------------------------------------------------------------------- */
static void t_lock(void) {
  char *path = tmp_path("lock.db");
  ferry_journal *j = open_ok(path, 0);
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j2 = ferry__journal_open(path, 0, &err);
  char pid[32];
  snprintf(pid, sizeof pid, "process %ld", (long)getpid());
  FT_ASSERT(!j2 && err.message && strstr(err.message, "in use by another ferry run") &&
                strstr(err.message, pid) && strstr(err.message, path),
            "second writer: %s", err.message);
  ferry_error_clear(&err);
  /* another process is refused too */
  fflush(NULL);
  pid_t child = fork();
  if (child == 0) {
    ferry_journal *jc = ferry__journal_open(path, 0, &err);
    _exit(jc ? 1 : 0);
  }
  int status;
  FT_ASSERT(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "another process opened a locked journal");
  /* readers are welcome while it is held, even from another process during an open group: they see what
   * is committed */
  OK(ferry__journal_done(j, "s", "committed", NULL, 0, E));
  OK(ferry__journal_group_begin(j, E));
  OK(ferry__journal_done(j, "s", "pending", NULL, 0, E));
  fflush(NULL);
  child = fork();
  if (child == 0) {
    ferry_journal *rc = ferry__journal_open(path, 1, &err);
    int64_t c[5] = {0};
    int ok = rc && ferry__journal_counts(rc, "s", c, &err) == 0 && c[FERRY_J_DONE] == 1;
    _exit(ok ? 0 : 1);
  }
  FT_ASSERT(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "a reader in another process failed during an open group");
  OK(ferry__journal_group_commit(j, E));
  ferry_journal *r = open_ok(path, 1);
  FT_ASSERT(count_of(r, "s", FERRY_J_DONE) == 2, "reader after commit");
  ferry__journal_close(r);
  ferry__journal_close(j);
  j = open_ok(path, 0); /* free again once closed */
  ferry__journal_close(j);
  free(path);
}

/* The same refusals on PostgreSQL: an empty database, a database of something else, no server. */
static void t_readonly_pg(void) {
  char *url = tmp_path("empty");
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(url, 1, &err);
  FT_ASSERT(!j && err.code == FERRY_ENOENT && strstr(err.message, url), "read-only open of an empty database: %d %s",
            err.code, err.message);
  ferry_error_clear(&err);
  j = open_ok(url, 0); /* a writer creates the tables */
  ferry__journal_close(j);
  ferry_journal *r = open_ok(url, 1);
  FT_ASSERT(count_of(r, NULL, FERRY_J_NONE) == 0, "new journal not empty");
  ferry_error e = FERRY_ERROR_INIT;
  FT_ASSERT(ferry__journal_done(r, "s", "k", NULL, 0, &e) == FERRY_EINVAL, "read-only journal written");
  ferry_error_clear(&e);
  ferry__journal_close(r);
  char *other = tmp_path("other");
  char *cmd = ferry_asprintf("psql -q -X '%s' -c 'CREATE TABLE items(x int)' >/dev/null", other);
  FT_ASSERT(system(cmd) == 0, "%s", cmd);
  free(cmd);
  for (int ro = 0; ro < 2; ro++) {
    j = ferry__journal_open(other, ro, &err);
    FT_ASSERT(!j && err.message && strstr(err.message, "not a ferry journal") && strstr(err.message, other),
              "foreign database (ro %d): %s", ro, err.message);
    ferry_error_clear(&err);
  }
  /* nothing listens there: a clear error, after the retries (shortened here) */
  setenv("FERRY_JOURNAL_RETRY_S", "0.5", 1);
  j = ferry__journal_open("postgresql://ferry:pw-secret-77@127.0.0.1:1/nope", 0, &err);
  FT_ASSERT(!j && err.message && strstr(err.message, "127.0.0.1:1") && !strstr(err.message, "pw-secret-77"),
            "no server: %s", err.message);
  ferry_error_clear(&err);
  unsetenv("FERRY_JOURNAL_RETRY_S");
  free(other);
  free(url);
}

static void t_readonly(void) {
  if (pg_port()) {
    t_readonly_pg();
    return;
  }
  char *path = tmp_path("missing.db");
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(path, 1, &err);
  FT_ASSERT(!j && err.code == FERRY_ENOENT, "read-only open of a missing file: code %d", err.code);
  FT_ASSERT(strstr(err.message, path), "message does not name the file: %s", err.message);
  FT_ASSERT(access(path, F_OK) != 0, "read-only open created the file");
  ferry_error_clear(&err);

  /* a file that is not a database */
  char *junk = tmp_path("junk.db");
  FILE *f = fopen(junk, "w");
  FT_ASSERT(f, "fopen");
  fputs("this is not an SQLite database, just text that is long enough to have a header.....\n", f);
  fclose(f);
  for (int ro = 0; ro < 2; ro++) {
    j = ferry__journal_open(junk, ro, &err);
    FT_ASSERT(!j && err.message && strstr(err.message, junk) && strstr(err.message, "not a ferry journal"),
              "junk file (ro %d): %s", ro, err.message);
    ferry_error_clear(&err);
  }
  /* a database of something else */
  char *other = tmp_path("other.db");
  sqlite3 *db;
  FT_ASSERT(sqlite3_open(other, &db) == SQLITE_OK, "sqlite3_open");
  FT_ASSERT(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL) == SQLITE_OK, "create");
  sqlite3_close(db);
  j = ferry__journal_open(other, 0, &err);
  FT_ASSERT(!j && strstr(err.message, "not a ferry journal"), "foreign database: %s", err.message);
  ferry_error_clear(&err);
  /* read-only open of a directory that does not exist, read-write in a missing directory */
  char *nodir = tmp_path("no/such/dir/j.db");
  j = ferry__journal_open(nodir, 0, &err);
  FT_ASSERT(!j && strstr(err.message, nodir), "missing directory: %s", err.message);
  ferry_error_clear(&err);
  free(nodir);
  free(other);
  free(junk);
  free(path);
}

static void t_version(void) {
  char *path = tmp_path("version.db");
  ferry_journal *j = open_ok(path, 0);
  OK(ferry__journal_done(j, "s", "1", NULL, 0, E));
  ferry__journal_close(j);
  sqlite3 *db;
  FT_ASSERT(sqlite3_open(path, &db) == SQLITE_OK, "sqlite3_open");
  FT_ASSERT(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL) == SQLITE_OK, "set version");
  sqlite3_close(db);
  for (int ro = 0; ro < 2; ro++) {
    ferry_error err = FERRY_ERROR_INIT;
    j = ferry__journal_open(path, ro, &err);
    FT_ASSERT(!j && err.message && strstr(err.message, "version 99") && strstr(err.message, path) &&
                  strstr(err.message, "newer"),
              "newer schema (ro %d): %s", ro, err.message);
    ferry_error_clear(&err);
  }
  free(path);
}


/* ---- secrets never stored ------------------------------------------------------------------------------ */
static int file_contains(const char *path, const char *needle) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  size_t n = strlen(needle), cap = 1 << 20, len;
  char *buf = ferry__xmalloc(cap);
  int found = 0;
  while ((len = fread(buf, 1, cap, f)) > 0 && !found)
    for (size_t i = 0; i + n <= len; i++)
      if (!memcmp(buf + i, needle, n)) found = 1;
  free(buf);
  fclose(f);
  return found;
}

static void t_redact(void) {
  const char *secret = "S3cr3t-pa55w0rd";
  ferry__secret_add(secret);
  char *path = tmp_path("secret.db");
  ferry_journal *j = open_ok(path, 0);
  json_t *st = json_pack("{s:s, s:{s:[s]}}", "dsn", "postgres://u:S3cr3t-pa55w0rd@db/x", "nested", "list",
                         "S3cr3t-pa55w0rd");
  OK(ferry__journal_intent(j, "s", "1", "connect", st, 1, E));
  /* the caller's object is not modified */
  FT_ASSERT(strstr(json_string_value(json_object_get(st, "dsn")), secret),
            "journal redacted the caller's state");
  ferry_error cause = FERRY_ERROR_INIT;
  ferry_error_set(&cause, FERRY_EPERM, "login refused for password S3cr3t-pa55w0rd");
  ferry_error_set_detail(&cause, "server said: bad password 'S3cr3t-pa55w0rd'");
  OK(ferry__journal_failed(j, "s", "1", st, &cause, 1, E));
  OK(ferry__journal_done(j, "s", "2", st, 0, E));
  int64_t run;
  OK(ferry__journal_run_begin(j, "run", &run, E));
  OK(ferry__journal_run_end(j, run, 1, "{\"note\": \"S3cr3t-pa55w0rd\"}", E));
  ferry_jrow row;
  get_row(j, "s", "1", &row);
  FT_ASSERT(!strstr(row.error, secret) && strstr(row.error, "***"), "error %s", row.error);
  char *dump = json_dumps(row.state, 0);
  FT_ASSERT(!strstr(dump, secret) && strstr(dump, "postgres://u:***@db/x"), "state %s", dump);
  free(dump);
  ferry__jrow_clear(&row);
  ferry_error_clear(&cause);
  json_decref(st);
  ferry__journal_close(j); /* checkpoints the WAL into the file */
  FT_ASSERT(!file_contains(path, secret), "the secret is in the journal file");
  char *wal = ferry_asprintf("%s-wal", path);
  FT_ASSERT(!file_contains(wal, secret), "the secret is in the WAL");
  free(wal);
  ferry__secret_clear();
  free(path);
}

/* ---- schema version 2: upgrade of a version-1 journal -------------------------------------------------- */

/* The version-1 schema exactly as ferry 0.1 created it (docs/journal.md, "Version 1"). */
static const char *const v1_schema =
    "CREATE TABLE items(stage TEXT NOT NULL, key TEXT NOT NULL,"
    "  status TEXT NOT NULL CHECK (status = 'intent' OR status = 'done' OR status = 'skipped'"
    "                             OR status = 'failed'),"
    "  step TEXT, state TEXT NOT NULL DEFAULT '{}', attempts INTEGER NOT NULL DEFAULT 0, error TEXT,"
    "  error_code INTEGER, created INTEGER NOT NULL, updated INTEGER NOT NULL,"
    "  PRIMARY KEY (stage, key)) WITHOUT ROWID;"
    "CREATE TABLE idmap(stage TEXT NOT NULL, key TEXT NOT NULL, kind TEXT NOT NULL, old_id TEXT NOT NULL,"
    "  new_id TEXT NOT NULL, created INTEGER NOT NULL, PRIMARY KEY (kind, old_id)) WITHOUT ROWID;"
    "CREATE INDEX idmap_item ON idmap(stage, key);"
    "CREATE TABLE runs(id INTEGER PRIMARY KEY, mode TEXT NOT NULL, started INTEGER NOT NULL, ended INTEGER,"
    "  status INTEGER, summary TEXT);"
    "PRAGMA application_id = 1179800153;" /* 0x46525259 */
    "PRAGMA user_version = 1;";

static const char *const v1_rows =
    "INSERT INTO items VALUES ('forms', 'a', 'done', 'insert', '{\"target\":7}', 1, NULL, NULL, 1000, 2000);"
    "INSERT INTO items VALUES ('forms', 'b', 'failed', NULL, '{}', 3, 'refused\nby the target', -7, 1000, 3000);"
    "INSERT INTO items VALUES ('forms', 'c', 'intent', 'start', '{\"p\":1}', 1, NULL, NULL, 1000, 4000);"
    "INSERT INTO idmap VALUES ('forms', 'a', 'record', 'old-a', 'new-a', 1500);"
    "INSERT INTO runs VALUES (1, 'run', 1000, 5000, -1, '{\"done\":1}');";

static void make_v1(const char *path, const char *extra_sql) {
  sqlite3 *db;
  FT_ASSERT(sqlite3_open(path, &db) == SQLITE_OK, "sqlite3_open %s", path);
  char *msg = NULL;
  FT_ASSERT(sqlite3_exec(db, v1_schema, NULL, NULL, &msg) == SQLITE_OK, "v1 schema: %s", msg);
  FT_ASSERT(sqlite3_exec(db, v1_rows, NULL, NULL, &msg) == SQLITE_OK, "v1 rows: %s", msg);
  if (extra_sql) FT_ASSERT(sqlite3_exec(db, extra_sql, NULL, NULL, &msg) == SQLITE_OK, "extra: %s", msg);
  sqlite3_close(db);
}

/* user_version and whether items has a column named `col`, read with SQLite directly. */
static int64_t file_version(const char *path, const char *col, int *has_col) {
  sqlite3 *db;
  FT_ASSERT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK, "open %s", path);
  sqlite3_stmt *st;
  int64_t v = -1;
  FT_ASSERT(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK, "prepare");
  if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  *has_col = 0;
  FT_ASSERT(sqlite3_prepare_v2(db, "SELECT name FROM pragma_table_info('items')", -1, &st, NULL) == SQLITE_OK,
            "prepare");
  while (sqlite3_step(st) == SQLITE_ROW) *has_col |= !strcmp((const char *)sqlite3_column_text(st, 0), col);
  sqlite3_finalize(st);
  sqlite3_close(db);
  return v;
}

static int count_ids(void *arg, const ferry_jid *id) {
  (void)id;
  ++*(int *)arg;
  return 0;
}

typedef struct rowcount {
  int rows, ids, reports;
  ferry_buf keys;
} rowcount;

static int count_rows(void *arg, const char *stage, const char *key, const ferry_jrow *row) {
  rowcount *c = arg;
  c->rows++;
  c->ids += row->ids ? (int)json_array_size(row->ids) : 0;
  c->reports += row->report != NULL;
  ferry_buf_addf(&c->keys, "%s/%s ", stage, key);
  return 0;
}

static void t_upgrade(void) {
  char *path = tmp_path("v1.db");
  make_v1(path, NULL);
  int has;
  /* read-only: the old file is read as it is (status, export-map on an old journal), and not changed */
  ferry_journal *j = open_ok(path, 1);
  FT_ASSERT(ferry__journal_version(j) == 1, "version %d", ferry__journal_version(j));
  ferry_jrow row;
  OK(ferry__journal_get_full(j, "forms", "a", &row, E));
  FT_ASSERT(row.status == FERRY_J_DONE && !strcmp(row.step, "insert") &&
                json_integer_value(json_object_get(row.state, "target")) == 7 && row.created == 1000 &&
                row.updated == 2000 && !row.report && !row.verify && row.run == 0,
            "v1 row a read-only");
  ferry__jrow_clear(&row);
  get_row(j, "forms", "b", &row);
  FT_ASSERT(row.status == FERRY_J_FAILED && row.error_code == FERRY_ECONFLICT && strstr(row.error, "refused"),
            "v1 row b");
  ferry__jrow_clear(&row);
  FT_ASSERT(count_of(j, "forms", FERRY_J_NONE) == 3, "v1 counts");
  int n = 0;
  OK(ferry__journal_foreach_id(j, NULL, NULL, NULL, count_ids, &n, E));
  FT_ASSERT(n == 1, "v1 id map: %d", n);
  rowcount c = {0};
  ferry_jquery q = {.stage = "forms", .ids = 1};
  OK(ferry__journal_foreach_ex(j, &q, count_rows, &c, E));
  FT_ASSERT(c.rows == 3 && c.ids == 1 && c.reports == 0, "v1 foreach with ids: %d rows %d ids", c.rows, c.ids);
  ferry_buf_free(&c.keys);
  memset(&c, 0, sizeof c);
  OK(ferry__journal_foreach_run(j, 1, NULL, count_rows, &c, E));
  FT_ASSERT(c.rows == 0, "a v1 journal has rows of a run: %d", c.rows);
  ferry__journal_close(j);
  FT_ASSERT(file_version(path, "report", &has) == 1 && !has, "a read-only open changed the v1 file");

  /* writable: upgraded in place; the data is kept and the new columns work */
  j = open_ok(path, 0);
  FT_ASSERT(ferry__journal_version(j) == 2, "version after a writable open %d", ferry__journal_version(j));
  get_row(j, "forms", "c", &row);
  FT_ASSERT(row.status == FERRY_J_INTENT && !strcmp(row.step, "start") &&
                json_integer_value(json_object_get(row.state, "p")) == 1 && row.attempts == 1,
            "v1 row c after the upgrade");
  ferry__jrow_clear(&row);
  char *id = ferry__journal_lookup_id(j, "record", "old-a", NULL);
  FT_ASSERT(id && !strcmp(id, "new-a"), "id map after the upgrade: %s", id);
  free(id);
  json_t *runs = ferry__journal_runs(j, 0, NULL);
  FT_ASSERT(json_array_size(runs) == 1, "runs after the upgrade");
  json_decref(runs);
  int64_t run;
  OK(ferry__journal_run_begin(j, "run", &run, E));
  FT_ASSERT(run == 2, "run id after the upgrade %lld", (long long)run);
  json_t *rep = obj("{\"target_id\": \"T-c\"}");
  ferry_joutcome o = {.status = FERRY_J_DONE, .report = rep, .attempts = 2};
  OK(ferry__journal_outcome(j, "forms", "c", &o, E));
  OK(ferry__journal_verify_mark(j, "forms", "a", "differs", NULL, NULL, E));
  json_decref(rep);
  OK(ferry__journal_get_full(j, "forms", "c", &row, E));
  FT_ASSERT(row.status == FERRY_J_DONE &&
                !strcmp(json_string_value(json_object_get(row.report, "target_id")), "T-c") &&
                row.run == run && row.attempts == 2 && json_integer_value(json_object_get(row.state, "p")) == 1,
            "new columns after the upgrade");
  ferry__jrow_clear(&row);
  ferry__journal_close(j);
  FT_ASSERT(file_version(path, "verify", &has) == 2 && has, "the file was not upgraded");
  j = open_ok(path, 1);
  FT_ASSERT(ferry__journal_version(j) == 2, "reopened version");
  get_row(j, "forms", "a", &row);
  FT_ASSERT(row.verify && !strcmp(json_string_value(json_object_get(row.verify, "message")), "differs"),
            "mark after reopen");
  ferry__jrow_clear(&row);
  ferry__journal_close(j);

  /* the upgrade is one transaction: when a step fails, the file stays a complete version-1 journal */
  char *bad = tmp_path("v1-bad.db");
  make_v1(bad, "ALTER TABLE items ADD COLUMN run INTEGER;"); /* the third ALTER fails: duplicate column */
  ferry_error err = FERRY_ERROR_INIT;
  j = ferry__journal_open(bad, 0, &err);
  FT_ASSERT(!j && err.message && strstr(err.message, "upgrading the journal from schema version 1 to 2") &&
                strstr(err.message, bad),
            "failed upgrade: %s", err.message);
  ferry_error_clear(&err);
  FT_ASSERT(file_version(bad, "report", &has) == 1 && !has, "a failed upgrade left a half-upgraded file");
  free(bad);
  free(path);
}


/* ---- report objects with outcomes, failed repairs, errors of items in doubt ---------------------------- */
static const char *jget_str(json_t *o, const char *k) {
  const char *v = json_string_value(json_object_get(o, k));
  return v ? v : "";
}

static void t_report(void) {
  const char *secret = "R3port-s3cret-42";
  ferry__secret_add(secret);
  char *path = tmp_path("report.db");
  ferry_journal *j = open_ok(path, 0);
  json_t *rep = json_pack("{s:s, s:b, s:[{s:s, s:s}], s:s}", "target_id", "P-1", "adopted", 1, "losses", "kind",
                          "tool", "what", "mail tool", "note", "token R3port-s3cret-42");
  ferry_joutcome o = {.status = FERRY_J_DONE, .report = rep, .attempts = 2};
  OK(ferry__journal_group_begin(j, E));
  OK(ferry__journal_outcome(j, "inst", "p1", &o, E));
  OK(ferry__journal_group_commit(j, E));
  FT_ASSERT(strstr(jget_str(rep, "note"), secret), "the caller's report was redacted in place");
  ferry_jrow row;
  OK(ferry__journal_get_full(j, "inst", "p1", &row, E));
  FT_ASSERT(row.status == FERRY_J_DONE && row.attempts == 2 && !strcmp(jget_str(row.report, "target_id"), "P-1") &&
                json_is_true(json_object_get(row.report, "adopted")) &&
                json_array_size(json_object_get(row.report, "losses")) == 1 &&
                !strcmp(jget_str(row.report, "note"), "token ***"),
            "stored report: %s", row.report ? json_dumps(row.report, 0) : "-");
  ferry__jrow_clear(&row);
  /* the resume lookup does not read it */
  get_row(j, "inst", "p1", &row);
  FT_ASSERT(!row.report && row.status == FERRY_J_DONE, "get read the report");
  ferry__jrow_clear(&row);
  /* an empty report is stored as NULL; the report is the last outcome's */
  json_t *empty = json_object();
  o.report = empty;
  o.attempts = 0; /* keeps the stored count */
  OK(ferry__journal_outcome(j, "inst", "p1", &o, E));
  OK(ferry__journal_get_full(j, "inst", "p1", &row, E));
  FT_ASSERT(!row.report && row.attempts == 2, "empty report stored, or attempts changed (%u)", row.attempts);
  ferry__jrow_clear(&row);
  /* failed, with a report */
  ferry_error cause = FERRY_ERROR_INIT;
  ferry_error_set(&cause, FERRY_ECONFLICT, "row differs");
  ferry_error_set_detail(&cause, "column x");
  json_t *frep = obj("{\"target\": \"refused\"}");
  ferry_joutcome f = {.status = FERRY_J_FAILED, .report = frep, .cause = &cause, .attempts = 3};
  OK(ferry__journal_outcome(j, "inst", "p2", &f, E));
  OK(ferry__journal_get_full(j, "inst", "p2", &row, E));
  FT_ASSERT(row.status == FERRY_J_FAILED && row.attempts == 3 && !strcmp(row.error, "row differs\ncolumn x") &&
                !strcmp(jget_str(row.report, "target"), "refused"),
            "failed with a report");
  ferry__jrow_clear(&row);
  /* a failed repair: done, with its mark, the error and attempts; an empty report keeps the stored one */
  o.report = rep;
  OK(ferry__journal_outcome(j, "inst", "p3", &o, E));
  OK(ferry__journal_verify_mark(j, "inst", "p3", "differs", NULL, NULL, E));
  ferry_joutcome rf = {.status = FERRY_J_FAILED, .report = empty, .cause = &cause, .attempts = 1, .repair = 1};
  OK(ferry__journal_outcome(j, "inst", "p3", &rf, E));
  OK(ferry__journal_get_full(j, "inst", "p3", &row, E));
  FT_ASSERT(row.status == FERRY_J_DONE && row.verify && row.error && row.error_code == FERRY_ECONFLICT &&
                row.attempts == 1 && !strcmp(jget_str(row.report, "target_id"), "P-1"),
            "failed repair: %s", ferry__jstatus_name(row.status));
  ferry__jrow_clear(&row);
  /* done again (the repair worked): the error and the mark are cleared */
  OK(ferry__journal_outcome(j, "inst", "p3", &o, E));
  OK(ferry__journal_get_full(j, "inst", "p3", &row, E));
  FT_ASSERT(row.status == FERRY_J_DONE && !row.verify && !row.error && !row.error_code, "done after a repair");
  ferry__jrow_clear(&row);
  /* an item in doubt whose sync failed: the error goes on the row, the status stays */
  OK(ferry__journal_intent(j, "inst", "p4", "write", NULL, 1, E));
  int recorded = 0;
  OK(ferry__journal_doubt(j, "inst", "p4", &cause, rep, &recorded, E));
  FT_ASSERT(recorded, "doubt not recorded");
  OK(ferry__journal_get_full(j, "inst", "p4", &row, E));
  FT_ASSERT(row.status == FERRY_J_INTENT && !strcmp(row.step, "write") && strstr(row.error, "row differs") &&
                !strcmp(jget_str(row.report, "target_id"), "P-1"),
            "doubt: %s %s", ferry__jstatus_name(row.status), row.error);
  ferry__jrow_clear(&row);
  OK(ferry__journal_doubt(j, "inst", "nope", &cause, NULL, &recorded, E));
  FT_ASSERT(!recorded, "doubt recorded for an item the journal does not have");
  get_row(j, "inst", "nope", &row);
  FT_ASSERT(row.status == FERRY_J_NONE, "doubt created a row");
  ferry__jrow_clear(&row);
  /* bad calls */
  ferry_error err = FERRY_ERROR_INIT;
  ferry_joutcome bad = {.status = FERRY_J_INTENT};
  FT_ASSERT(ferry__journal_outcome(j, "inst", "x", &bad, &err) == FERRY_EINVAL && strstr(err.message, "inst/x"),
            "intent as an outcome: %s", err.message);
  ferry_error_clear(&err);
  json_decref(frep);
  json_decref(empty);
  json_decref(rep);
  ferry_error_clear(&cause);
  ferry__journal_close(j);
  FT_ASSERT(!file_contains(path, secret), "the secret of a report is in the journal file");
  char *wal = ferry_asprintf("%s-wal", path);
  FT_ASSERT(!file_contains(wal, secret), "the secret of a report is in the WAL");
  free(wal);
  ferry__secret_clear();
  free(path);
}

/* ---- verify marks ------------------------------------------------------------------------------------- */
static void t_marks(void) {
  ferry__secret_add("M4rk-secret-99");
  char *path = tmp_path("marks.db");
  ferry_journal *j = open_ok(path, 0);
  OK(ferry__journal_done(j, "s", "a", NULL, 0, E));
  OK(ferry__journal_done(j, "s", "b", NULL, 0, E));
  int64_t run;
  OK(ferry__journal_run_begin(j, "verify", &run, E));
  json_t *diffs = json_pack("[s, s]", "column c: 1 vs 2", "password M4rk-secret-99 differs");
  int found = 0;
  OK(ferry__journal_group_begin(j, E));
  OK(ferry__journal_verify_mark(j, "s", "a", "a differs on the target", diffs, &found, E));
  FT_ASSERT(found, "mark not found");
  json_t *not_array = obj("{}");
  OK(ferry__journal_verify_mark(j, "s", "b", NULL, not_array, &found, E)); /* not an array: [] */
  json_decref(not_array);
  OK(ferry__journal_verify_mark(j, "s", "zz", "x", diffs, &found, E));
  FT_ASSERT(!found, "a mark on an item the journal does not have");
  OK(ferry__journal_group_commit(j, E));
  ferry_jrow row;
  get_row(j, "s", "a", &row);
  FT_ASSERT(row.verify && !strcmp(jget_str(row.verify, "result"), "mismatch") &&
                !strcmp(jget_str(row.verify, "message"), "a differs on the target") &&
                json_integer_value(json_object_get(row.verify, "run")) == run &&
                json_integer_value(json_object_get(row.verify, "at")) > 1600000000000LL &&
                json_array_size(json_object_get(row.verify, "differences")) == 2 &&
                !strcmp(json_string_value(json_array_get(json_object_get(row.verify, "differences"), 1)),
                        "password *** differs") &&
                row.status == FERRY_J_DONE && row.run == run,
            "mark of a: %s", row.verify ? json_dumps(row.verify, 0) : "-");
  ferry__jrow_clear(&row);
  get_row(j, "s", "b", &row);
  FT_ASSERT(row.verify && json_array_size(json_object_get(row.verify, "differences")) == 0 &&
                strlen(jget_str(row.verify, "message")) > 0,
            "mark of b");
  ferry__jrow_clear(&row);
  get_row(j, "s", "zz", &row);
  FT_ASSERT(row.status == FERRY_J_NONE, "a mark created a row");
  ferry__jrow_clear(&row);
  OK(ferry__journal_verify_clear(j, "s", "a", &found, E));
  FT_ASSERT(found, "clear not found");
  get_row(j, "s", "a", &row);
  FT_ASSERT(!row.verify && row.status == FERRY_J_DONE, "mark not cleared");
  ferry__jrow_clear(&row);
  OK(ferry__journal_run_end(j, run, 0, "{}", E));
  ferry__journal_close(j);
  /* read-only: no marks */
  j = open_ok(path, 1);
  ferry_error err = FERRY_ERROR_INIT;
  FT_ASSERT(ferry__journal_verify_mark(j, "s", "a", "x", NULL, NULL, &err) == FERRY_EINVAL &&
                strstr(err.message, "read-only"),
            "mark on a read-only journal: %s", err.message);
  ferry_error_clear(&err);
  ferry__journal_close(j);
  json_decref(diffs);
  FT_ASSERT(!file_contains(path, "M4rk-secret-99"), "the secret of a mark is in the journal");
  ferry__secret_clear();
  free(path);
}

/* ---- id map iteration --------------------------------------------------------------------------------- */
typedef struct idlist {
  ferry_buf sb;
  int n, stop_at;
} idlist;

static int starts(const char *s, const char *prefix) { return s && !strncmp(s, prefix, strlen(prefix)); }

static int collect_id(void *arg, const ferry_jid *id) {
  idlist *l = arg;
  l->n++;
  ferry_buf_addf(&l->sb, "%s:%s>%s@%s/%s ", id->kind, id->old_id, id->new_id, id->stage, id->key);
  FT_ASSERT(id->created > 0, "no created time");
  return l->stop_at && l->n >= l->stop_at;
}

static void t_ids(void) {
  char *path = tmp_path("ids.db");
  ferry_journal *j = open_ok(path, 0);
  OK(ferry__journal_group_begin(j, E));
  /* 300 items of stage "b" with a record and a file each (600 ids: more than two batches), and 2 of "a" */
  for (int i = 0; i < 300; i++) {
    char key[16], old[16], nw[16];
    snprintf(key, sizeof key, "k%03d", i);
    snprintf(old, sizeof old, "o%03d", 299 - i); /* old ids in the opposite order of the keys */
    snprintf(nw, sizeof nw, "n%03d", i);
    OK(ferry__journal_done(j, "b", key, NULL, 0, E));
    OK(ferry__journal_map_id(j, "b", key, "record", old, nw, E));
    OK(ferry__journal_map_id(j, "b", key, "file", old, nw, E));
  }
  OK(ferry__journal_map_id(j, "a", "x", "process", "p1", "q1", E));
  OK(ferry__journal_map_id(j, "a", "x", "activity", "a1", "b1", E));
  OK(ferry__journal_group_commit(j, E));
  idlist l = {0};
  OK(ferry__journal_foreach_id(j, NULL, NULL, NULL, collect_id, &l, E));
  FT_ASSERT(l.n == 602, "all ids: %d", l.n);
  FT_ASSERT(starts(l.sb.buf, "activity:a1>b1@a/x file:o000>n299@b/k299 file:o001>n298@b/k298 "),
            "order (kind, old_id): %.80s", l.sb.buf);
  ferry_buf_free(&l.sb);
  memset(&l, 0, sizeof l);
  OK(ferry__journal_foreach_id(j, NULL, NULL, "record", collect_id, &l, E));
  FT_ASSERT(l.n == 300 && !strstr(l.sb.buf, "file:") && starts(l.sb.buf, "record:o000>n299@b/k299 "),
            "kind record: %d %.60s", l.n, l.sb.buf);
  ferry_buf_free(&l.sb);
  memset(&l, 0, sizeof l);
  OK(ferry__journal_foreach_id(j, NULL, NULL, "nope", collect_id, &l, E));
  FT_ASSERT(l.n == 0, "unknown kind: %d", l.n);
  memset(&l, 0, sizeof l);
  OK(ferry__journal_foreach_id(j, "b", NULL, NULL, collect_id, &l, E));
  FT_ASSERT(l.n == 600 && starts(l.sb.buf, "file:o299>n000@b/k000 record:o299>n000@b/k000 file:o298>n001@b/k001 "),
            "stage b (order key, kind, old): %d %.80s", l.n, l.sb.buf);
  ferry_buf_free(&l.sb);
  memset(&l, 0, sizeof l);
  OK(ferry__journal_foreach_id(j, "b", NULL, "file", collect_id, &l, E));
  FT_ASSERT(l.n == 300 && !strstr(l.sb.buf, "record:"), "stage b, kind file: %d", l.n);
  ferry_buf_free(&l.sb);
  memset(&l, 0, sizeof l);
  OK(ferry__journal_foreach_id(j, "a", "x", NULL, collect_id, &l, E));
  FT_ASSERT(l.n == 2 && !strcmp(l.sb.buf, "activity:a1>b1@a/x process:p1>q1@a/x "), "item a/x: %s", l.sb.buf);
  ferry_buf_free(&l.sb);
  memset(&l, 0, sizeof l);
  l.stop_at = 5;
  OK(ferry__journal_foreach_id(j, NULL, NULL, NULL, collect_id, &l, E));
  FT_ASSERT(l.n == 5, "stop: %d", l.n);
  ferry_buf_free(&l.sb);
  ferry_error err = FERRY_ERROR_INIT;
  FT_ASSERT(ferry__journal_foreach_id(j, NULL, "x", NULL, collect_id, &l, &err) == FERRY_EINVAL, "key without stage");
  ferry_error_clear(&err);
  /* rows with their ids, across batches */
  rowcount c = {0};
  ferry_jquery q = {.ids = 1};
  OK(ferry__journal_foreach_ex(j, &q, count_rows, &c, E));
  FT_ASSERT(c.rows == 300 && c.ids == 600, "rows with ids: %d rows %d ids", c.rows, c.ids);
  ferry_buf_free(&c.keys);
  ferry__journal_close(j);
  free(path);
}

/* ---- the run column: which run wrote a row ------------------------------------------------------------- */
static void t_runs(void) {
  char *path = tmp_path("runs.db");
  ferry_journal *j = open_ok(path, 0);
  FT_ASSERT(ferry__journal_run_id(j) == 0, "a run before run_begin");
  OK(ferry__journal_done(j, "s", "before", NULL, 0, E));
  int64_t r1, r2;
  OK(ferry__journal_run_begin(j, "run", &r1, E));
  FT_ASSERT(ferry__journal_run_id(j) == r1, "current run");
  OK(ferry__journal_group_begin(j, E));
  for (int i = 0; i < 700; i++) { /* interleaved: even keys by run 1, odd keys by run 2 (below) */
    char key[16];
    snprintf(key, sizeof key, "k%04d", i);
    if (i % 2 == 0) OK(ferry__journal_done(j, i < 350 ? "s" : "t", key, NULL, 0, E));
  }
  OK(ferry__journal_intent(j, "s", "doubt", "step", NULL, 1, E));
  OK(ferry__journal_group_commit(j, E));
  OK(ferry__journal_run_end(j, r1, 0, "{}", E));
  FT_ASSERT(ferry__journal_run_id(j) == 0, "run_end keeps the run current");
  OK(ferry__journal_run_begin(j, "verify", &r2, E));
  OK(ferry__journal_group_begin(j, E));
  for (int i = 1; i < 700; i += 2) {
    char key[16];
    snprintf(key, sizeof key, "k%04d", i);
    OK(ferry__journal_done(j, i < 350 ? "s" : "t", key, NULL, 0, E));
  }
  OK(ferry__journal_verify_clear(j, "s", "k0000", NULL, E)); /* run 2 wrote this row last */
  OK(ferry__journal_group_commit(j, E));
  ferry_jrow row;
  get_row(j, "s", "before", &row);
  FT_ASSERT(row.run == 0, "a row written outside any run has run %lld", (long long)row.run);
  ferry__jrow_clear(&row);
  get_row(j, "s", "doubt", &row);
  FT_ASSERT(row.run == r1 && row.status == FERRY_J_INTENT, "an intent does not record its run");
  ferry__jrow_clear(&row);
  rowcount c = {0};
  OK(ferry__journal_foreach_run(j, r1, "s", count_rows, &c, E));
  FT_ASSERT(c.rows == 175 - 1 + 1, "run 1 in stage s: %d rows", c.rows); /* 175 even keys - k0000 + doubt */
  FT_ASSERT(strstr(c.keys.buf, "s/doubt ") && strstr(c.keys.buf, "s/k0002 ") && !strstr(c.keys.buf, "s/k0000 ") &&
                !strstr(c.keys.buf, "s/k0001 ") && !strstr(c.keys.buf, "t/"),
            "run 1 rows: %.200s", c.keys.buf);
  ferry_buf_free(&c.keys);
  memset(&c, 0, sizeof c);
  OK(ferry__journal_foreach_run(j, r1, NULL, count_rows, &c, E));
  FT_ASSERT(c.rows == 350, "run 1 in all stages: %d", c.rows); /* 350 even - k0000 + doubt */
  ferry_buf_free(&c.keys);
  memset(&c, 0, sizeof c);
  OK(ferry__journal_foreach_run(j, r2, NULL, count_rows, &c, E));
  FT_ASSERT(c.rows == 351 && strstr(c.keys.buf, "s/k0000 ") && strstr(c.keys.buf, "t/k0699 "), "run 2: %d",
            c.rows);
  ferry_buf_free(&c.keys);
  memset(&c, 0, sizeof c);
  OK(ferry__journal_foreach_run(j, 999, NULL, count_rows, &c, E));
  FT_ASSERT(c.rows == 0, "an unknown run wrote %d rows", c.rows);
  ferry_error err = FERRY_ERROR_INIT;
  FT_ASSERT(ferry__journal_foreach_run(j, 0, NULL, count_rows, &c, &err) == FERRY_EINVAL, "run 0 accepted");
  ferry_error_clear(&err);
  ferry__journal_close(j);
  free(path);
}

/* ---- foreach callbacks that write ---------------------------------------------------------------------- */
typedef struct settle {
  ferry_journal *j;
  int n;
} settle;

static int settle_fn(void *arg, const char *stage, const char *key, const ferry_jrow *row) {
  settle *s = arg;
  s->n++;
  ferry_error e_ = FERRY_ERROR_INIT;
  FT_ASSERT(row->status == FERRY_J_INTENT, "filter broken: %s", ferry__jstatus_name(row->status));
  FT_ASSERT(ferry__journal_done(s->j, stage, key, NULL, 0, E) == 0, "write in callback: %s", e_.message);
  ferry_jrow inner;
  get_row(s->j, stage, key, &inner); /* nested read */
  FT_ASSERT(inner.status == FERRY_J_DONE, "nested get");
  ferry__jrow_clear(&inner);
  return 0;
}

static void t_foreach_writes(void) {
  char *path = tmp_path("settle.db");
  ferry_journal *j = open_ok(path, 0);
  OK(ferry__journal_group_begin(j, E));
  for (int i = 0; i < 1000; i++) {
    char key[16];
    snprintf(key, sizeof key, "%06d", i);
    if (i % 3)
      OK(ferry__journal_intent(j, "s", key, "write", NULL, 1, E));
    else
      OK(ferry__journal_done(j, "s", key, NULL, 0, E));
  }
  OK(ferry__journal_group_commit(j, E));
  settle s = {j, 0};
  OK(ferry__journal_group_begin(j, E));
  OK(ferry__journal_foreach(j, "s", FERRY_J_INTENT, settle_fn, &s, E));
  OK(ferry__journal_group_commit(j, E));
  FT_ASSERT(s.n == 666, "reconciled %d in-doubt items", s.n);
  FT_ASSERT(count_of(j, "s", FERRY_J_DONE) == 1000 && count_of(j, "s", FERRY_J_INTENT) == 0,
            "not all settled");
  ferry__journal_close(j);
  free(path);
}

/* ---- crash durability ---------------------------------------------------------------------------------- */
#define CRASH_KEYS 4000

static void die_now(int sig) {
  (void)sig;
  raise(SIGKILL);
}

static void say(int fd, const char *fmt, ...) FERRY_PRINTF(2, 3);
static void say(int fd, const char *fmt, ...) {
  char line[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  if (write(fd, line, (size_t)n) != n) _exit(3);
}

/* The child: a resuming worker. For each key not yet done: intent "send", sometimes intent "check", then
 * done or failed (grouped, several per group), sometimes an id map. Reports each confirmed call. */
static void crash_child(const char *path, int fd, unsigned seed, int fail_pct) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(path, 0, &err);
  if (!j) {
    fprintf(stderr, "child: %s\n", err.message);
    _exit(2);
  }
  int pending[160], npending = 0, group = 0, group_size = 1 + (int)(rand_r(&seed) % 64);
  char pend_kind[160];
  for (int i = 0; i < CRASH_KEYS; i++) {
    char key[16];
    snprintf(key, sizeof key, "%05d", i);
    ferry_jrow row;
    if (ferry__journal_get(j, "s", key, &row, &err)) _exit(2);
    int skip = row.status == FERRY_J_DONE;
    ferry__jrow_clear(&row);
    if (skip) continue;
    if (!group) {
      if (ferry__journal_group_begin(j, &err)) _exit(2);
      group = 1;
    }
    json_t *st = json_pack("{s:i, s:s}", "n", i, "pad", "some state of moderate size, like a target id");
    if (ferry__journal_intent(j, "s", key, "send", st, 1, &err)) _exit(2);
    say(fd, "I %s send\n", key);
    if (rand_r(&seed) % 2) {
      if (ferry__journal_intent(j, "s", key, "check", st, 1, &err)) _exit(2);
      say(fd, "I %s check\n", key);
    }
    if (rand_r(&seed) % 4 == 0) {
      char nid[32];
      snprintf(nid, sizeof nid, "new-%d", i);
      if (ferry__journal_map_id(j, "s", key, "record", key, nid, &err)) _exit(2);
      pend_kind[npending] = 'M';
      pending[npending++] = i;
    }
    if ((int)(rand_r(&seed) % 100) < fail_pct) {
      ferry_error cause = FERRY_ERROR_INIT;
      ferry_error_set(&cause, FERRY_ETRANSIENT, "timeout");
      if (ferry__journal_failed(j, "s", key, st, &cause, 1, &err)) _exit(2);
      ferry_error_clear(&cause);
      pend_kind[npending] = 'F';
    } else {
      if (ferry__journal_done(j, "s", key, st, 0, &err)) _exit(2);
      pend_kind[npending] = 'D';
    }
    pending[npending++] = i;
    json_decref(st);
    if (npending >= group_size - 1 || i == CRASH_KEYS - 1) {
      if (ferry__journal_group_commit(j, &err)) _exit(2);
      group = 0;
      for (int k = 0; k < npending; k++) say(fd, "%c %05d\n", pend_kind[k], pending[k]);
      npending = 0;
      group_size = 1 + (int)(rand_r(&seed) % 64);
    }
  }
  if (group && ferry__journal_group_commit(j, &err)) _exit(2);
  for (int k = 0; k < npending; k++) say(fd, "%c %05d\n", pend_kind[k], pending[k]);
  ferry__journal_close(j);
  close(fd);
  _exit(0);
}

/* What the parent knows was confirmed, per key: the last event ('I' send/check, 'D', 'F') and maps. */
typedef struct known {
  char last;      /* 0, 'I', 'D', 'F' */
  int check;      /* last intent was "check" */
  int mapped;
} known;

static void crash_round(const char *path, known *k, unsigned seed, int kill_it, int fail_pct) {
  int fds[2];
  FT_ASSERT(pipe(fds) == 0, "pipe");
  fflush(NULL);
  pid_t pid = fork();
  FT_ASSERT(pid >= 0, "fork");
  if (pid == 0) {
    close(fds[0]);
    if (kill_it) {
      signal(SIGALRM, die_now);
      struct itimerval it = {{0, 0}, {0, (suseconds_t)(2000 + rand_r(&seed) % 150000)}};
      setitimer(ITIMER_REAL, &it, NULL);
    }
    crash_child(path, fds[1], seed, fail_pct);
  }
  close(fds[1]);
  ferry_buf in = {0};
  char buf[4096];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) != 0) {
    if (n < 0 && errno == EINTR) continue;
    FT_ASSERT(n > 0, "read: %s", strerror(errno));
    ferry_buf_addn(&in, buf, (size_t)n);
  }
  close(fds[0]);
  int status;
  FT_ASSERT(waitpid(pid, &status, 0) == pid, "waitpid");
  FT_ASSERT((WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL) ||
                (WIFEXITED(status) && !WEXITSTATUS(status)),
            "child ended badly (status 0x%x)", status);
  int killed = WIFSIGNALED(status);
  /* apply the confirmations (complete lines only: the last one may be cut) */
  int nconf = 0;
  for (char *line = in.buf; line && *line;) {
    char *nl = strchr(line, '\n');
    if (!nl) break;
    *nl = '\0';
    char ev = line[0];
    int key = atoi(line + 2);
    FT_ASSERT(key >= 0 && key < CRASH_KEYS, "bad line %s", line);
    if (ev == 'M') {
      k[key].mapped = 1;
    } else {
      k[key].last = ev;
      k[key].check = ev == 'I' && strstr(line, "check") != NULL;
    }
    nconf++;
    line = nl + 1;
  }
  ferry_buf_free(&in);

  /* the file is intact */
  sqlite3 *db;
  FT_ASSERT(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK, "sqlite3_open");
  sqlite3_stmt *st;
  FT_ASSERT(sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) == SQLITE_OK, "prepare");
  FT_ASSERT(sqlite3_step(st) == SQLITE_ROW, "integrity_check");
  FT_ASSERT(!strcmp((const char *)sqlite3_column_text(st, 0), "ok"), "integrity: %s",
            sqlite3_column_text(st, 0));
  sqlite3_finalize(st);
  sqlite3_close(db);

  /* everything confirmed is there */
  ferry_journal *j = open_ok(path, 0);
  int64_t c[5];
  OK(ferry__journal_counts(j, NULL, c, E));
  FT_ASSERT(c[0] <= CRASH_KEYS, "more items than keys: %lld", (long long)c[0]);
  for (int i = 0; i < CRASH_KEYS; i++) {
    char key[16];
    snprintf(key, sizeof key, "%05d", i);
    ferry_jrow row;
    get_row(j, "s", key, &row);
    const char *sn = ferry__jstatus_name(row.status);
    switch (k[i].last) {
      case 'D':
        FT_ASSERT(row.status == FERRY_J_DONE, "key %s confirmed done, journal says %s", key, sn);
        break;
      case 'F':
        FT_ASSERT(row.status == FERRY_J_FAILED || row.status == FERRY_J_INTENT,
                  "key %s confirmed failed, journal says %s", key, sn);
        break;
      case 'I':
        FT_ASSERT(row.status != FERRY_J_NONE, "key %s confirmed intent, journal has nothing", key);
        if (row.status == FERRY_J_INTENT && k[i].check)
          FT_ASSERT(!strcmp(row.step, "check"), "key %s confirmed step check, journal says %s", key,
                    row.step);
        break;
      default: break;
    }
    if (row.status != FERRY_J_NONE)
      FT_ASSERT(json_integer_value(json_object_get(row.state, "n")) == i, "key %s: wrong state", key);
    ferry__jrow_clear(&row);
    if (k[i].mapped) {
      ferry_error err = FERRY_ERROR_INIT;
      char *id = ferry__journal_lookup_id(j, "record", key, &err);
      char want[32];
      snprintf(want, sizeof want, "new-%d", i);
      FT_ASSERT(id && !strcmp(id, want), "key %s: confirmed map lost (%s)", key, id ? id : "none");
      free(id);
    }
  }
  ferry__journal_close(j);
  printf("round: child %s after %d confirmations; journal holds %lld items (%lld done)\n",
         killed ? "killed" : "finished", nconf, (long long)c[0], (long long)c[FERRY_J_DONE]);
}

static void t_crash(void) {
  unsigned seed =
      getenv("FERRY_TEST_SEED") ? (unsigned)strtoul(getenv("FERRY_TEST_SEED"), NULL, 10) : 20261121;
  printf("crash test seed %u (set FERRY_TEST_SEED to replay)\n", seed);
  char *path = tmp_path("crash.db");
  known *k = ferry__xcalloc(CRASH_KEYS, sizeof *k);
  int rounds = 8;
  for (int r = 0; r < rounds; r++) crash_round(path, k, seed + (unsigned)r * 7919u, 1, 10);
  /* a last run without a kill and without failures finishes everything */
  crash_round(path, k, seed + 1u, 0, 0);
  ferry_journal *j = open_ok(path, 1);
  FT_ASSERT(count_of(j, "s", FERRY_J_DONE) == CRASH_KEYS, "after the last run: %lld done",
            (long long)count_of(j, "s", FERRY_J_DONE));
  ferry__journal_close(j);
  free(k);
  free(path);
}

/* ---- the public read-only API (ferry/journal.h) --------------------------------------------------------- */
typedef struct pubitems {
  ferry_buf sb;
  int n, stop_at;
} pubitems;

/* "stage/key status step attempts error|detail|code ids=N;" */
static int pub_item(void *arg, json_t *item) {
  pubitems *p = arg;
  const char *step = json_string_value(json_object_get(item, "step"));
  const char *error = json_string_value(json_object_get(item, "error"));
  const char *detail = json_string_value(json_object_get(item, "detail"));
  const char *code = json_string_value(json_object_get(item, "code"));
  json_t *ids = json_object_get(item, "ids");
  ferry_buf_addf(
      &p->sb, "%s/%s %s %s %lld %s|%s|%s ids=%s;", json_string_value(json_object_get(item, "stage")),
      json_string_value(json_object_get(item, "key")), json_string_value(json_object_get(item, "status")),
      step ? step : "-", (long long)json_integer_value(json_object_get(item, "attempts")),
      error ? error : "-", detail ? detail : "-", code ? code : "-",
      ids ? (json_array_size(ids) ? "some" : "0") : "absent");
  FT_ASSERT(json_integer_value(json_object_get(item, "created")) > 0 &&
                json_integer_value(json_object_get(item, "updated")) >=
                    json_integer_value(json_object_get(item, "created")),
            "times of %s", p->sb.buf);
  if (!strcmp(json_string_value(json_object_get(item, "key")), "k1") &&
      !strcmp(json_string_value(json_object_get(item, "stage")), "a")) {
    json_t *rep = json_object_get(item, "report"), *ver = json_object_get(item, "verify");
    FT_ASSERT(!strcmp(json_string_value(json_object_get(rep, "target_id")), "t1"), "report of a/k1");
    FT_ASSERT(!strcmp(json_string_value(json_object_get(ver, "message")), "title differs") &&
                  json_array_size(json_object_get(ver, "differences")) == 1,
              "verify mark of a/k1");
    FT_ASSERT(json_integer_value(json_object_get(item, "run")) > 0, "run of a/k1");
    if (ids) {
      FT_ASSERT(json_array_size(ids) == 2 &&
                    !strcmp(json_string_value(json_object_get(json_array_get(ids, 0), "kind")), "activity") &&
                    !strcmp(json_string_value(json_object_get(json_array_get(ids, 1), "new")), "q1"),
                "ids of a/k1");
    }
  }
  return ++p->n == p->stop_at;
}

static int pub_id(void *arg, const ferry_journal_id *id) {
  ferry_buf *sb = arg;
  FT_ASSERT(id->created > 0, "created of %s", id->old_id);
  ferry_buf_addf(sb, "%s:%s>%s@%s/%s ", id->kind, id->old_id, id->new_id, id->stage, id->key);
  return 0;
}

static void t_public(void) {
  char *path = tmp_path("public.db");
  ferry_error err = FERRY_ERROR_INIT;
  /* a missing journal is an error, and nothing is created */
  FT_ASSERT(!ferry_journal_open_readonly(path, &err) && err.code == FERRY_ENOENT, "missing: %s", err.message);
  FT_ASSERT(access(path, F_OK) != 0, "the read-only open created %s", path);
  ferry_error_clear(&err);
  FT_ASSERT(!ferry_journal_open_readonly(NULL, &err) && err.code == FERRY_EINVAL, "no path");
  ferry_error_clear(&err);

  /* a run writes (and keeps the run lock while the reader reads) */
  ferry_journal *w = open_ok(path, 0);
  int64_t run = 0;
  OK(ferry__journal_run_begin(w, "run", &run, E));
  json_t *rep = obj("{\"target_id\": \"t1\"}");
  ferry_joutcome done = {.status = FERRY_J_DONE, .report = rep};
  OK(ferry__journal_outcome(w, "a", "k1", &done, E));
  json_decref(rep);
  OK(ferry__journal_map_id(w, "a", "k1", "process", "p1", "q1", E));
  OK(ferry__journal_map_id(w, "a", "k1", "activity", "a1", "b1", E));
  OK(ferry__journal_intent(w, "a", "k2", "step1", NULL, 1, E));
  ferry_error cause = FERRY_ERROR_INIT;
  ferry_error_set(&cause, FERRY_ETRANSIENT, "boom");
  ferry_error_set_detail(&cause, "server said no");
  OK(ferry__journal_failed(w, "a", "k3", NULL, &cause, 3, E));
  ferry_error_clear(&cause);
  OK(ferry__journal_done(w, "b", "k1", NULL, 1, E));
  json_t *diffs = obj("[\"title: x != y\"]");
  OK(ferry__journal_verify_mark(w, "a", "k1", "title differs", diffs, NULL, E));
  json_decref(diffs);

  ferry_journal *r = ferry_journal_open_readonly(path, &err);
  FT_ASSERT(r, "read-only open while a run holds the lock: %s", err.message);
  FT_ASSERT(ferry_journal_schema_version(r) == 2, "schema %d", ferry_journal_schema_version(r));

  json_t *stages = ferry_journal_stages(r, &err);
  FT_ASSERT(stages, "stages: %s", err.message);
  char *st = json_dumps(stages, JSON_COMPACT | JSON_SORT_KEYS);
  FT_ASSERT(!strcmp(st,
                    "[{\"done\":1,\"failed\":1,\"in_doubt\":1,\"name\":\"a\",\"skipped\":0,\"total\":3},"
                    "{\"done\":0,\"failed\":0,\"in_doubt\":0,\"name\":\"b\",\"skipped\":1,\"total\":1}]"),
            "stages: %s", st);
  free(st);
  json_decref(stages);

  pubitems p = {0};
  OK(ferry_journal_items(r, NULL, NULL, FERRY_JOURNAL_IDS, pub_item, &p, E));
  FT_ASSERT(!strcmp(p.sb.buf,
                    "a/k1 done - 1 -|-|- ids=some;a/k2 intent step1 1 -|-|- ids=0;"
                    "a/k3 failed - 3 boom|server said no|ETRANSIENT ids=0;b/k1 skipped - 1 -|-|- ids=0;"),
            "items: %s", p.sb.buf);
  ferry_buf_free(&p.sb);
  memset(&p, 0, sizeof p);
  OK(ferry_journal_items(r, "a", "failed", 0, pub_item, &p, E));
  FT_ASSERT(!strcmp(p.sb.buf, "a/k3 failed - 3 boom|server said no|ETRANSIENT ids=absent;"),
            "failed of a: %s", p.sb.buf);
  ferry_buf_free(&p.sb);
  memset(&p, 0, sizeof p);
  OK(ferry_journal_items(r, NULL, "intent", 0, pub_item, &p, E));
  FT_ASSERT(p.n == 1 && strstr(p.sb.buf, "a/k2 intent step1"), "in doubt: %s", p.sb.buf);
  ferry_buf_free(&p.sb);
  memset(&p, 0, sizeof p);
  p.stop_at = 2;
  OK(ferry_journal_items(r, NULL, NULL, 0, pub_item, &p, E));
  FT_ASSERT(p.n == 2, "stop after 2: %d", p.n);
  ferry_buf_free(&p.sb);
  memset(&p, 0, sizeof p);
  FT_ASSERT(ferry_journal_items(r, NULL, "bogus", 0, pub_item, &p, &err) == FERRY_EINVAL &&
                strstr(err.message, "bogus"),
            "unknown status: %s", err.message);
  ferry_error_clear(&err);
  FT_ASSERT(ferry_journal_items(r, NULL, NULL, 0x10, pub_item, &p, &err) == FERRY_EINVAL, "unknown flag");
  ferry_error_clear(&err);
  FT_ASSERT(p.n == 0, "callback called on a refused call");

  ferry_buf ids = {0};
  OK(ferry_journal_ids(r, NULL, NULL, NULL, pub_id, &ids, E));
  FT_ASSERT(!strcmp(ids.buf, "activity:a1>b1@a/k1 process:p1>q1@a/k1 "), "ids: %s", ids.buf);
  ferry_buf_free(&ids);
  OK(ferry_journal_ids(r, "a", "k1", "process", pub_id, &ids, E));
  FT_ASSERT(!strcmp(ids.buf, "process:p1>q1@a/k1 "), "ids of a/k1, kind process: %s", ids.buf);
  ferry_buf_free(&ids);
  OK(ferry_journal_ids(r, "b", NULL, NULL, pub_id, &ids, E));
  FT_ASSERT(!ids.buf, "ids of stage b: %s", ids.buf);

  json_t *runs = ferry_journal_runs(r, 0, &err);
  FT_ASSERT(runs && json_array_size(runs) == 1, "runs: %s", err.message);
  json_t *r0 = json_array_get(runs, 0);
  FT_ASSERT(json_integer_value(json_object_get(r0, "id")) == run &&
                !strcmp(json_string_value(json_object_get(r0, "mode")), "run") &&
                json_is_null(json_object_get(r0, "ended")),
            "a running run");
  json_decref(runs);

  /* what the run commits later is seen by the reader */
  OK(ferry__journal_done(w, "b", "k2", NULL, 0, E));
  OK(ferry__journal_run_end(w, run, 0, "{\"done\": 2}", E));
  memset(&p, 0, sizeof p);
  OK(ferry_journal_items(r, "b", "done", 0, pub_item, &p, E));
  FT_ASSERT(p.n == 1 && strstr(p.sb.buf, "b/k2 done"), "a later outcome: %s", p.sb.buf);
  ferry_buf_free(&p.sb);
  runs = ferry_journal_runs(r, 1, &err);
  r0 = json_array_get(runs, 0);
  FT_ASSERT(json_integer_value(json_object_get(r0, "ended")) > 0 &&
                json_integer_value(json_object_get(r0, "status")) == 0 &&
                json_integer_value(json_object_get(json_object_get(r0, "summary"), "done")) == 2,
            "the ended run");
  json_decref(runs);
  ferry__journal_close(w);
  /* the reader changed nothing: a writable open still finds the same rows, and the lock was never taken */
  ferry_journal_close(r);
  ferry_journal_close(NULL);
  w = open_ok(path, 0);
  FT_ASSERT(count_of(w, NULL, FERRY_J_NONE) == 5, "rows after reading: %lld",
            (long long)count_of(w, NULL, FERRY_J_NONE));
  ferry__journal_close(w);
  free(path);
}

/* ---- PostgreSQL: the journal server restarted in the middle of a group ---------------------------------
 * The server is stopped while a group holds uncommitted outcomes, and started again 2 s later by a child;
 * the writer goes on meanwhile: its next statement waits (retries with backoff, said on stderr), then the
 * group's earlier writes are replayed into a new transaction. At the end every outcome, intent and mapping
 * is there exactly once, the run lock was taken again, and a statement that fails inside a group (invalid
 * UTF-8: PostgreSQL aborts the transaction) loses none of the group's other writes. */
static char *pg_dir(void) {
  FILE *f = fopen(getenv("FERRY_TEST_PG_STATE"), "r");
  FT_ASSERT(f, "state file");
  char line[512] = "";
  FT_ASSERT(fgets(line, sizeof line, f), "state file line 1");
  fclose(f);
  line[strcspn(line, "\n")] = '\0';
  return ferry_strdup(line);
}

static void t_restart(void) {
  if (!pg_port()) {
    printf("ok restart (PostgreSQL only: skipped on SQLite)\n");
    return;
  }
  const char *cluster = getenv("FERRY_TEST_PGCLUSTER");
  FT_ASSERT(cluster, "FERRY_TEST_PGCLUSTER (tests/support/pgcluster.sh) not set");
  char *dir = pg_dir(), *url = tmp_path("restart");
  char log[] = "/tmp/ferry-jrestart-XXXXXX";
  int lfd = mkstemp(log);
  FT_ASSERT(lfd >= 0, "mkstemp");
  ferry_journal *j = open_ok(url, 0);
  int64_t run = 0;
  OK(ferry__journal_run_begin(j, "run", &run, E));
  OK(ferry__journal_group_begin(j, E));
  for (int i = 0; i < 100; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%03d", i);
    OK(ferry__journal_done(j, "s", key, NULL, 0, E));
  }
  /* a failing statement inside the group: the group goes on with its writes */
  ferry_error bad = FERRY_ERROR_INIT;
  FT_ASSERT(ferry__journal_done(j, "s", "bad\xff\xfe", NULL, 0, &bad) == FERRY_EIO && bad.message &&
                strstr(bad.message, url),
            "invalid UTF-8 key: %s", bad.message);
  ferry_error_clear(&bad);

  char *stop = ferry_asprintf("bash '%s' stop '%s' >/dev/null 2>&1", cluster, dir);
  FT_ASSERT(system(stop) == 0, "%s", stop);
  fflush(NULL);
  pid_t child = fork();
  if (child == 0) {
    sleep(2);
    char *start = ferry_asprintf("bash '%s' start '%s' %s >/dev/null 2>&1", cluster, dir, pg_port());
    _exit(system(start) == 0 ? 0 : 1);
  }
  int saved = dup(2);
  dup2(lfd, 2);
  double t0 = ferry__now();
  for (int i = 100; i < 200; i++) {
    char key[16];
    snprintf(key, sizeof key, "k%03d", i);
    OK(ferry__journal_done(j, "s", key, NULL, 0, E));
  }
  double paused = ferry__now() - t0;
  OK(ferry__journal_intent(j, "s", "i1", "start", NULL, 1, E)); /* commits the group */
  OK(ferry__journal_map_id(j, "s", "i1", "process", "old-1", "new-1", E));
  OK(ferry__journal_group_commit(j, E));
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  int status;
  FT_ASSERT(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
            "restarting the server failed");
  FT_ASSERT(paused > 1.0, "the writer did not wait for the server (%.2f s)", paused);
  char said[4096] = "";
  ssize_t n = pread(lfd, said, sizeof said - 1, 0);
  said[n > 0 ? n : 0] = '\0';
  close(lfd);
  unlink(log);
  FT_ASSERT(strstr(said, "the run pauses and retries") && strstr(said, "answers again"),
            "stderr did not say the run paused and went on: %s", said);

  /* the lock was taken again on the new connection */
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j2 = ferry__journal_open(url, 0, &err);
  FT_ASSERT(!j2 && err.message && strstr(err.message, "in use by another ferry run"), "second writer after "
            "the restart: %s", err.message ? err.message : "opened");
  ferry_error_clear(&err);
  OK(ferry__journal_run_end(j, run, 0, "{\"done\": 200}", E));
  ferry__journal_close(j);

  ferry_journal *r = open_ok(url, 1);
  int64_t c[5];
  OK(ferry__journal_counts(r, "s", c, E));
  FT_ASSERT(c[FERRY_J_NONE] == 201 && c[FERRY_J_DONE] == 200 && c[FERRY_J_INTENT] == 1,
            "after the restart: %lld rows, %lld done, %lld intent", (long long)c[0], (long long)c[2],
            (long long)c[1]);
  ferry_jrow row;
  get_row(r, "s", "k000", &row);
  FT_ASSERT(row.status == FERRY_J_DONE && row.run == run, "k000 (written before the restart): %d run %lld",
            row.status, (long long)row.run);
  ferry__jrow_clear(&row);
  char *id = ferry__journal_lookup_id(r, "process", "old-1", &err);
  FT_ASSERT(id && !strcmp(id, "new-1"), "mapping after the restart: %s", id ? id : err.message);
  free(id);
  json_t *runs = ferry__journal_runs(r, 0, &err);
  FT_ASSERT(runs && json_array_size(runs) == 1 &&
                json_integer_value(json_object_get(json_array_get(runs, 0), "status")) == 0,
            "one run, ended: %s", runs ? "bad" : err.message);
  json_decref(runs);
  ferry__journal_close(r);
  free(stop);
  free(url);
  free(dir);
}

/* ---- PostgreSQL: the session of the journal's idle connection ends ---------------------------------------
 * The run lock is a session advisory lock. The journal's backend is terminated (pg_terminate_backend, as an
 * administrator or a pooler's timeout would) while the connection is idle: the next write must notice that
 * the session is gone and take the lock again on the new connection before writing, not write through a new
 * session that holds nothing. Nobody took the lock meanwhile: the write goes through and the lock is held
 * again. Another session (here: the test's own, as a worker would) took it meanwhile: the write fails, naming
 * what happened, and is not in the journal. */
static PGconn *pg_admin(const char *url) {
  PGconn *c = PQconnectdb(url);
  FT_ASSERT(PQstatus(c) == CONNECTION_OK, "admin connection to %s: %s", url, PQerrorMessage(c));
  return c;
}

static char *pg_one(PGconn *c, const char *sql) {
  PGresult *r = PQexec(c, sql);
  FT_ASSERT(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1, "%s: %s", sql, PQerrorMessage(c));
  char *v = ferry_strdup(PQgetvalue(r, 0, 0));
  PQclear(r);
  return v;
}

#define OTHER_ADVISORY                                                                                   \
  "FROM pg_locks WHERE locktype = 'advisory' AND pid <> pg_backend_pid() AND database = "                \
  "(SELECT oid FROM pg_database WHERE datname = current_database())"

/* Terminates the other sessions of this database that hold advisory locks; returns once they are gone. */
/* Terminates the one session that `from` ("FROM ... WHERE ...", its rows have a pid) finds and waits until
 * the server no longer lists it there. */
static void terminate_where(PGconn *a, const char *from) {
  char *sql = ferry_asprintf("SELECT count(pg_terminate_backend(pid)) %s", from);
  char *n = pg_one(a, sql);
  free(sql);
  FT_ASSERT(atoi(n) == 1, "sessions %s: %s, expected 1", from, n);
  free(n);
  sql = ferry_asprintf("SELECT count(*) %s", from);
  for (int i = 0; i < 200; i++) {
    n = pg_one(a, sql);
    int left = atoi(n);
    free(n);
    if (!left) {
      free(sql);
      return;
    }
    usleep(50000);
  }
  FT_ASSERT(0, "the terminated session is still there after 10 s (%s)", from);
}

static void terminate_holders(PGconn *a) { terminate_where(a, OTHER_ADVISORY); }

static void t_terminated(void) {
  if (!pg_port()) {
    printf("ok terminated (PostgreSQL only: skipped on SQLite)\n");
    return;
  }
  char *url = tmp_path("terminated");
  ferry_journal *j = open_ok(url, 0);
  OK(ferry__journal_done(j, "s", "before", NULL, 0, E));
  PGconn *a = pg_admin(url);
  const char *try_shared = "SELECT pg_try_advisory_lock_shared(hashtext('ferry journal ' || current_schema()))";

  terminate_holders(a);
  ferry_error err = FERRY_ERROR_INIT;
  int rc = ferry__journal_done(j, "s", "after-1", NULL, 0, &err); /* nobody took it: taken again, then written */
  /* a retry that succeeded leaves no error behind (the caller of a call that returned 0 never clears it) */
  FT_ASSERT(rc == 0 && !err.message && !err.code, "the write after the session ended: %d, error left: %s", rc,
            err.message ? err.message : "(none)");
  ferry_error_clear(&err);
  char *got = pg_one(a, try_shared);
  FT_ASSERT(!strcmp(got, "f"), "the run lock was not taken again on the new connection (another session got "
            "it: %s)", got);
  free(got);

  terminate_holders(a);
  got = pg_one(a, try_shared); /* another session takes it while the journal's connection is gone */
  FT_ASSERT(!strcmp(got, "t"), "the lock of a terminated session: %s", got);
  free(got);
  rc = ferry__journal_done(j, "s", "after-2", NULL, 0, &err);
  FT_ASSERT(rc != 0 && err.message && strstr(err.message, "another ferry run took the journal meanwhile") &&
                strstr(err.message, "postgresql://"),
            "a write after another run took the lock: %d %s", rc, err.message ? err.message : "(no error)");
  ferry_error_clear(&err);

  /* the layer under the journal and the claims: a statement that succeeds after its session ended clears the
   * error the failed attempt left (the claims pass their caller's error, which nobody clears after a 0) */
  int version = 0;
  ferry__jpg *q = ferry__jpg_open_ex(url, 0, FERRY__JPG_LOCK_NONE, &version, &err);
  FT_ASSERT(q, "ferry__jpg_open_ex: %s", err.message ? err.message : "?");
  ferry__jres res = {0};
  FT_ASSERT(!ferry__jpg_exec(q, "SELECT pg_backend_pid()", 0, NULL, &res, &err) && res.nrows == 1,
            "pg_backend_pid: %s", err.message ? err.message : "?");
  char *from = ferry_asprintf("FROM pg_stat_activity WHERE pid = %s", res.cells[0]);
  terminate_where(a, from);
  free(from);
  rc = ferry__jpg_exec(q, "SELECT 1", 0, NULL, &res, &err);
  FT_ASSERT(rc == 0 && !err.message && !err.code, "a statement after its session ended: %d, error left: %s", rc,
            err.message ? err.message : "(none)");
  ferry_error_clear(&err);
  ferry__jres_clear(&res);
  ferry__jpg_close(q);
  PQfinish(a);
  ferry__journal_close(j);

  ferry_journal *r = open_ok(url, 1);
  ferry_jrow row;
  get_row(r, "s", "after-1", &row);
  FT_ASSERT(row.status == FERRY_J_DONE, "after-1: %s", ferry__jstatus_name(row.status));
  ferry__jrow_clear(&row);
  get_row(r, "s", "after-2", &row);
  FT_ASSERT(row.status == FERRY_J_NONE, "after-2 was written without the lock: %s",
            ferry__jstatus_name(row.status));
  ferry__jrow_clear(&row);
  ferry__journal_close(r);
  free(url);
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    void (*fn)(void);
  } tests[] = {
      {"lifecycle", t_lifecycle}, {"resume", t_resume},   {"idmap", t_idmap},     {"read", t_read},
      {"group", t_group},         {"reopen", t_reopen},   {"readonly", t_readonly}, {"version", t_version},
      {"redact", t_redact},       {"foreach-writes", t_foreach_writes},           {"crash", t_crash},
      {"lock", t_lock},           {"upgrade", t_upgrade}, {"report", t_report},   {"marks", t_marks},
      {"ids", t_ids},             {"runs", t_runs},       {"public", t_public},     {"restart", t_restart},
      {"terminated", t_terminated},
  };
  if (argc != 2) {
    fprintf(stderr, "usage: %s TEST\n", argv[0]);
    return 2;
  }
  /* tests of SQLite's own files (the version pragma, the v1 upgrade, WAL contents after SIGKILL) */
  static const char *const sqlite_only[] = {"version", "upgrade", "crash", NULL};
  if (pg_port())
    for (int i = 0; sqlite_only[i]; i++)
      if (!strcmp(argv[1], sqlite_only[i])) {
        printf("ok %s (SQLite only: skipped on PostgreSQL)\n", argv[1]);
        return 0;
      }
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
    if (!strcmp(argv[1], tests[i].name)) {
      tests[i].fn();
      printf("ok %s\n", argv[1]);
      return 0;
    }
  fprintf(stderr, "unknown test %s\n", argv[1]);
  return 2;
}
