/* Runtime tests: whole pipelines through the runtime API (ferry/runtime.h) with the test plugins of
 * tests/runtime/plugins (rt-gen, rt-sink, rt-isink, rt-hook), JSON configs, a real journal file, no sleeps.
 *
 *   test_runtime <case> [args]      (CTest runs each case as its own test, label `runtime`)
 *
 * The plugins write what they see into files of a fresh temporary directory; the tests read those files,
 * the run summary, the JSON report and the journal. Backoff jitter is seeded (FERRY_SEED) and tiny. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ftest.h"
#include "journal/journal.h"
#include "onecore.h"
#include "rt_plugins.h"

static char T[256]; /* the test's temporary directory */

/* ---- helpers ------------------------------------------------------------------------------------------- */

/* A path in T (rotating static buffers: no frees in the tests). */
static const char *P(const char *name) {
  static char bufs[16][512];
  static int k;
  char *b = bufs[k++ % 16];
  snprintf(b, 512, "%s/%s", T, name);
  return b;
}

/* Parses a JSON config written with single quotes for readability; "$T" is the temporary directory. */
static json_t *J(const char *fmt, ...) {
  char raw[16384];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(raw, sizeof raw, fmt, ap);
  va_end(ap);
  ferry_buf sb = {0};
  for (const char *p = raw; *p; p++) {
    if (*p == '\'')
      ferry_buf_add(&sb, "\"");
    else if (p[0] == '$' && p[1] == 'T') {
      ferry_buf_add(&sb, T);
      p++;
    } else
      ferry_buf_addn(&sb, p, 1);
  }
  json_error_t je;
  json_t *j = json_loads(sb.buf, 0, &je);
  FT_ASSERT(j, "bad test config at %d:%d: %s\n%s", je.line, je.column, je.text, sb.buf);
  ferry_buf_free(&sb);
  return j;
}

typedef struct stage_res {
  char name[64];
  int64_t total, done, skipped, failed, retried, resumed;
  int status;
} stage_res;

typedef struct res {
  int rc;
  char msg[4096];
  int64_t done, skipped, failed;
  size_t n;
  stage_res st[8];
} res;

static ferry_runtime *new_runtime(void) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_runtime_opts o;
  rt_runtime_opts(&o);
  ferry_runtime *rt = ferry_runtime_new(&o, &err);
  FT_ASSERT(rt, "ferry_runtime_new: %s", err.message);
  FT_ASSERT(rt_add_plugins(rt, &err) == 0, "adding the test plugins: %s", err.message);
  return rt;
}

static ferry_runtime *g_rt;
static void on_usr1(uv_signal_t *h, int signum) {
  (void)h;
  (void)signum;
  ferry_runtime_interrupt(g_rt);
}

typedef struct run_opts {
  ferry_mode mode;
  int64_t limit;
  int ticks;            /* count 1 ms timer ticks during the run (loop not starved) */
  int repair;           /* ferry_run_opts.repair */
  uint32_t struct_size; /* ferry_run_opts.struct_size (0 = sizeof) */
  const char *log;      /* log lines (INFO and up) go to this file during the run */
} run_opts;
static int g_ticks;
static void on_tick(uv_timer_t *t) {
  (void)t;
  g_ticks++;
}

/* Loads (must succeed) and runs `cfg` (stolen); SIGUSR1 during the run interrupts it, as SIGINT does in the
 * CLI. */
static res run_ex(json_t *cfg, run_opts ro) {
  res r;
  memset(&r, 0, sizeof r);
  ferry_error err = FERRY_ERROR_INIT;
  ferry_runtime *rt = new_runtime();
  FT_ASSERT(ferry_runtime_load_json(rt, cfg, "test.json", &err) == 0, "load: %s", err.message);
  json_decref(cfg);
  g_rt = rt;
  uv_loop_t *loop = ferry_runtime_loop(rt);
  uv_signal_t sig;
  uv_signal_init(loop, &sig);
  uv_signal_start(&sig, on_usr1, SIGUSR1);
  uv_unref((uv_handle_t *)&sig);
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  g_ticks = 0;
  if (ro.ticks) {
    uv_timer_start(&tick, on_tick, 1, 1);
    uv_unref((uv_handle_t *)&tick);
  }
  ferry_run_opts o = {.struct_size = ro.struct_size ? ro.struct_size : sizeof o,
                      .mode = ro.mode ? ro.mode : FERRY_MODE_RUN,
                      .limit = ro.limit,
                      .repair = ro.repair};
  ferry_run_summary sum;
  memset(&sum, 0, sizeof sum);
  FILE *logf = NULL;
  if (ro.log) {
    logf = fopen(ro.log, "a");
    FT_ASSERT(logf, "%s: %s", ro.log, strerror(errno));
    ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, logf);
  }
  r.rc = ferry_runtime_run(rt, &o, &sum, &err);
  if (logf) {
    ferry_log_configure(FERRY_LOG_WARN, FERRY_LOG_TEXT, NULL);
    fclose(logf);
  }
  uv_close((uv_handle_t *)&sig, NULL);
  uv_close((uv_handle_t *)&tick, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  if (err.message) snprintf(r.msg, sizeof r.msg, "%s", err.message);
  FT_ASSERT((r.rc == 0) == (err.code == 0), "rc %d but error code %d", r.rc, err.code);
  r.done = sum.done;
  r.skipped = sum.skipped;
  r.failed = sum.failed;
  r.n = sum.nstages;
  for (size_t i = 0; i < sum.nstages && i < 8; i++) {
    const ferry_stage_summary *s = &sum.stages[i];
    snprintf(r.st[i].name, sizeof r.st[i].name, "%s", s->name);
    r.st[i].total = s->total;
    r.st[i].done = s->done;
    r.st[i].skipped = s->skipped;
    r.st[i].failed = s->failed;
    r.st[i].retried = s->retried;
    r.st[i].resumed = s->resumed;
    r.st[i].status = s->status;
  }
  ferry_error_clear(&err);
  ferry_runtime_free(rt);
  g_rt = NULL;
  return r;
}

static res run(json_t *cfg) { return run_ex(cfg, (run_opts){0}); }
static res run_mode(json_t *cfg, ferry_mode m) { return run_ex(cfg, (run_opts){.mode = m}); }

/* Loads `cfg` (stolen) expecting a refusal; returns the message (static buffer). */
static const char *load_error(json_t *cfg) {
  static char msg[4096];
  ferry_error err = FERRY_ERROR_INIT;
  ferry_runtime *rt = new_runtime();
  int rc = ferry_runtime_load_json(rt, cfg, "test.json", &err);
  json_decref(cfg);
  FT_ASSERT(rc < 0, "the config was accepted");
  FT_ASSERT(err.message, "refusal without a message");
  snprintf(msg, sizeof msg, "%s", err.message);
  ferry_error_clear(&err);
  ferry_runtime_free(rt);
  return msg;
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "r");
  if (!f) return ferry_strdup("");
  ferry_buf sb = {0};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) ferry_buf_addn(&sb, buf, n);
  fclose(f);
  return ferry_buf_steal(&sb);
}

/* Lines of a file that start with `prefix` (all when NULL). */
static int count_lines(const char *path, const char *prefix) {
  char *s = slurp(path);
  int n = 0;
  size_t pl = prefix ? strlen(prefix) : 0;
  for (char *line = s; *line;) {
    char *nl = strchr(line, '\n');
    if (!prefix || !strncmp(line, prefix, pl)) n++;
    if (!nl) break;
    line = nl + 1;
  }
  free(s);
  return n;
}

static int has_line(const char *path, const char *text) {
  char *s = slurp(path);
  int found = strstr(s, text) != NULL;
  free(s);
  return found;
}

/* Index of the first line containing `text`, or -1. */
static int line_index(const char *path, const char *text) {
  char *s = slurp(path);
  int idx = -1, i = 0;
  for (char *line = s; *line && idx < 0; i++) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    if (strstr(line, text)) idx = i;
    if (!nl) break;
    line = nl + 1;
  }
  free(s);
  return idx;
}

static json_t *load_json_file(const char *path) {
  json_error_t je;
  json_t *j = json_load_file(path, 0, &je);
  FT_ASSERT(j, "cannot read %s: %s", path, je.text);
  return j;
}

static json_t *report_item(json_t *report, size_t stage, const char *key) {
  json_t *items = json_object_get(json_array_get(json_object_get(report, "stages"), stage), "items");
  size_t i;
  json_t *it;
  json_array_foreach(items, i, it) if (!strcmp(json_string_value(json_object_get(it, "key")), key)) return it;
  return NULL;
}

static const char *dumps(json_t *v) {
  static char buf[4096];
  char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
  snprintf(buf, sizeof buf, "%s", s ? s : "-");
  free(s);
  return buf;
}

/* File bytes and size, to prove that a file did not change. */
typedef struct snap {
  char *bytes;
  off_t size;
} snap;
static snap snapshot(const char *path) {
  struct stat st;
  FT_ASSERT(stat(path, &st) == 0, "%s: %s", path, strerror(errno));
  return (snap){slurp(path), st.st_size};
}
static int unchanged(snap *s, const char *path) {
  snap now = snapshot(path);
  int same = now.size == s->size && !memcmp(now.bytes, s->bytes, (size_t)s->size);
  free(now.bytes);
  free(s->bytes);
  s->bytes = NULL;
  return same;
}

/* Whether a (binary) file contains `text`; 0 when the file does not exist. */
static int file_has(const char *path, const char *text) {
  FILE *f = fopen(path, "rb");
  if (!f) return 0;
  ferry_buf sb = {0};
  char buf[65536];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) ferry_buf_addn(&sb, buf, n);
  fclose(f);
  int found = sb.len && memmem(sb.buf, sb.len, text, strlen(text)) != NULL;
  ferry_buf_free(&sb);
  return found;
}

static const char *jstr(json_t *o, const char *k) {
  const char *s = json_string_value(json_object_get(o, k));
  return s ? s : "";
}

static void rm_rf(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  int rc = system(cmd);
  (void)rc;
}

/* A one-stage config: rt-gen -> rt-sink, with extra JSON members for the source options, the sink options and
 * the stage. */
static json_t *one_stage(const char *gen_opts, const char *sink_opts, const char *stage_extra) {
  return J(
      "{'journal': '$T/j.db', 'report': '$T/report.json', 'stages': [{'name': 's', "
      "'source': {'plugin': 'rt-gen', 'options': {%s}}, "
      "'sink': {'plugin': 'rt-sink', 'options': {'log': '$T/sink.log'%s%s}}%s%s}]}",
      gen_opts, *sink_opts ? ", " : "", sink_opts, *stage_extra ? ", " : "", stage_extra);
}

/* ---- cases --------------------------------------------------------------------------------------------- */

static void test_order(void) {
  const char *hook =
      "'hooks': [{'plugin': 'rt-hook', 'points': ['stage_start', 'stage_end'], "
      "'options': {'out': '$T/h.txt'}}]";
  res r =
      run(J("{'journal': '$T/j.db', 'stages': ["
            "{'name': 'c', 'after': ['a', 'b'], 'source': {'plugin': 'rt-gen', 'options': {'count': 3}}, "
            " 'sink': {'plugin': 'rt-sink'}, %s},"
            "{'name': 'b', 'after': ['a'], 'source': {'plugin': 'rt-gen', 'options': {'count': 3}}, "
            " 'sink': {'plugin': 'rt-sink'}, %s},"
            "{'name': 'a', 'source': {'plugin': 'rt-gen', 'options': {'count': 3}}, "
            " 'sink': {'plugin': 'rt-sink', 'options': {'async': true}}, %s},"
            "{'name': 'x', 'source': {'plugin': 'rt-gen', 'options': {'count': 20}}, "
            " 'sink': {'plugin': 'rt-sink', 'options': {'async': true, 'delay_ms': 1}}, %s},"
            "{'name': 'y', 'source': {'plugin': 'rt-gen', 'options': {'count': 20, 'async': true}}, "
            " 'sink': {'plugin': 'rt-sink', 'options': {'async': true, 'delay_ms': 1}}, %s}]}",
            hook, hook, hook, hook, hook));
  FT_ASSERT(r.rc == 0, "rc %d: %s", r.rc, r.msg);
  FT_ASSERT(r.done == 49, "done %lld", (long long)r.done);
  const char *names[] = {"a", "b", "c", "x", "y"};
  FT_ASSERT(r.n == 5, "%zu stages", r.n);
  for (int i = 0; i < 5; i++) FT_ASSERT(!strcmp(r.st[i].name, names[i]), "stage %d is %s", i, r.st[i].name);
  const char *h = P("h.txt");
  int a_end = line_index(h, " a stage_end"), b_start = line_index(h, " b stage_start"),
      b_end = line_index(h, " b stage_end"), c_start = line_index(h, " c stage_start"),
      x_start = line_index(h, " x stage_start"), y_start = line_index(h, " y stage_start"),
      x_end = line_index(h, " x stage_end"), y_end = line_index(h, " y stage_end");
  FT_ASSERT(a_end >= 0 && b_start > a_end, "b started (%d) before a ended (%d)", b_start, a_end);
  FT_ASSERT(b_end >= 0 && c_start > b_end, "c started (%d) before b ended (%d)", c_start, b_end);
  FT_ASSERT(x_start >= 0 && y_start >= 0 && x_end > 0 && y_end > 0, "x/y hook lines missing");
  int first_end = x_end < y_end ? x_end : y_end;
  FT_ASSERT(x_start < first_end && y_start < first_end, "independent stages x and y did not run together");
  FT_ASSERT(count_lines(h, NULL) == 10, "%d hook lines", count_lines(h, NULL));
}

static void test_cycle(void) {
  const char *m = load_error(
      J("{'stages': ["
        "{'name': 'a', 'after': ['c'], 'source': {'plugin': 'rt-gen'}, 'sink': {'plugin': 'rt-sink'}},"
        "{'name': 'b', 'after': ['a'], 'source': {'plugin': 'rt-gen'}, 'sink': {'plugin': 'rt-sink'}},"
        "{'name': 'c', 'after': ['b'], 'source': {'plugin': 'rt-gen'}, 'sink': {'plugin': 'rt-sink'}},"
        "{'name': 'd', 'source': {'plugin': 'rt-gen'}, 'sink': {'plugin': 'rt-sink'}}]}"));
  FT_ASSERT(strstr(m, "stages form a cycle: a -> b -> c -> a"), "message: %s", m);
  m = load_error(
      J("{'stages': [{'name': 'd', 'source': {'plugin': 'rt-gen'}, 'sink': {'plugin': 'rt-sink'}},"
        "{'name': 'e', 'after': ['f', 'd'], 'source': {'plugin': 'rt-gen'}, 'sink': {'plugin': 'rt-sink'}},"
        "{'name': 'f', 'after': ['e'], 'source': {'plugin': 'rt-gen'}, 'sink': {'plugin': 'rt-sink'}}]}"));
  FT_ASSERT(strstr(m, "stages form a cycle: e -> f -> e") || strstr(m, "stages form a cycle: f -> e -> f"),
            "message: %s", m);
  m =
      load_error(J("{'stages': [{'name': 's', 'after': ['s'], 'source': {'plugin': 'rt-gen'}, "
                   "'sink': {'plugin': 'rt-sink'}}]}"));
  FT_ASSERT(strstr(m, "s") && (strstr(m, "cycle") || strstr(m, "itself")), "message: %s", m);
  m =
      load_error(J("{'stages': [{'name': 's', 'after': ['nope'], 'source': {'plugin': 'rt-gen'}, "
                   "'sink': {'plugin': 'rt-sink'}}]}"));
  FT_ASSERT(strstr(m, "nope"), "message: %s", m);
}

static void test_kinds(void) {
  const char *m =
      load_error(J("{'stages': [{'name': 's', 'source': {'plugin': 'rt-gen'}, "
                   "'sink': {'plugin': 'rt-isink'}}]}"));
  FT_ASSERT(strstr(m, "rt-gen") && strstr(m, "rt-isink") && strstr(m, "record") && strstr(m, "instance") &&
                strstr(m, "\"s\""),
            "message: %s", m);
  m = load_error(
      J("{'stages': [{'name': 's', 'source': {'plugin': 'rt-hook'}, 'sink': {'plugin': 'rt-sink'}}]}"));
  FT_ASSERT(strstr(m, "rt-hook") && strstr(m, "source"), "message: %s", m);
  m = load_error(
      J("{'stages': [{'name': 's', 'source': {'plugin': 'rt-gen'}, 'sink': {'plugin': 'rt-gen'}}]}"));
  FT_ASSERT(strstr(m, "rt-gen") && strstr(m, "sink"), "message: %s", m);
  m =
      load_error(J("{'stages': [{'name': 's', 'source': {'plugin': 'rt-gen'}, 'sink': {'plugin': 'rt-sink'}, "
                   "'hooks': [{'plugin': 'rt-sink', 'points': ['stage_start']}]}]}"));
  FT_ASSERT(strstr(m, "rt-sink") && strstr(m, "hook"), "message: %s", m);
  /* plugin options are checked at load, before anything runs */
  m =
      load_error(J("{'stages': [{'name': 's', 'source': {'plugin': 'rt-gen', 'options': {'cuont': 3}}, "
                   "'sink': {'plugin': 'rt-sink'}}]}"));
  FT_ASSERT(strstr(m, "cuont") && strstr(m, "count"), "message: %s", m);
}

static void test_points(void) {
  const char *m =
      load_error(J("{'stages': [{'name': 's', 'source': {'plugin': 'rt-gen'}, "
                   "'sink': {'plugin': 'rt-sink'}, "
                   "'hooks': [{'plugin': 'rt-hook', 'points': ['item_done', 'bogus']}]}]}"));
  FT_ASSERT(strstr(m, "\"bogus\""), "message: %s", m);
  const char *valid[] = {"stage_start", "stage_end",    "item_done",
                         "item_failed", "before_write", "after_write"};
  for (int i = 0; i < 6; i++) FT_ASSERT(strstr(m, valid[i]), "valid point %s not listed: %s", valid[i], m);
  /* a point of the sink is fine */
  res r = run(
      J("{'journal': '$T/j.db', 'stages': [{'name': 's', 'source': {'plugin': 'rt-gen'}, "
        "'sink': {'plugin': 'rt-sink'}, 'hooks': [{'plugin': 'rt-hook', 'points': ['before_write']}]}]}"));
  FT_ASSERT(r.rc == 0, "rc %d: %s", r.rc, r.msg);
}

/* max over time of (asked of the source) - (completed by the sink), from the shared events file */
static int max_outstanding(const char *path, int *demands) {
  char *s = slurp(path);
  int out = 0, max = 0;
  *demands = 0;
  for (char *line = strtok(s, "\n"); line; line = strtok(NULL, "\n")) {
    if (line[0] == 'D') {
      out += atoi(line + 2);
      (*demands)++;
    } else if (line[0] == 'C') {
      out--;
    }
    if (out > max) max = out;
  }
  free(s);
  return max;
}

static void test_backpressure(void) {
  const char *variants[][2] = {
      {"'async': false", "'async': true, 'delay_ms': 1"},
      {"'async': true, 'per_tick': 5", "'async': false"},
      {"'async': true, 'per_tick': 2", "'async': true"},
      {"'async': false", "'async': false"},
  };
  for (int v = 0; v < 4; v++) {
    unlink(P("ev.txt"));
    unlink(P("stats.json"));
    char gen[256], sink[256];
    snprintf(gen, sizeof gen, "'count': 200, 'events': '$T/ev.txt', %s", variants[v][0]);
    snprintf(sink, sizeof sink, "'events': '$T/ev.txt', 'stats': '$T/stats.json', %s", variants[v][1]);
    res r = run(one_stage(gen, sink, "'concurrency': 4, 'journal': false"));
    FT_ASSERT(r.rc == 0 && r.done == 200, "variant %d: rc %d done %lld: %s", v, r.rc, (long long)r.done,
              r.msg);
    int demands;
    int max = max_outstanding(P("ev.txt"), &demands);
    FT_ASSERT(max <= 8, "variant %d: the source was asked for up to %d items beyond completions (window 8)",
              v, max);
    FT_ASSERT(demands > 10, "variant %d: only %d demand calls: not demand-driven", v, demands);
    json_t *stats = load_json_file(P("stats.json"));
    json_int_t inflight = json_integer_value(json_object_get(stats, "max_inflight"));
    json_decref(stats);
    FT_ASSERT(inflight <= 4, "variant %d: %lld items in the sink at once (concurrency 4)", v,
              (long long)inflight);
    if (v == 0) {
      FT_ASSERT(max > 4, "variant 0: the window (8) was never used beyond the concurrency: max %d", max);
      FT_ASSERT(inflight == 4, "variant 0: the async sink never had 4 items at once: %lld",
                (long long)inflight);
    }
  }
}

static void test_concurrency(void) {
  for (int c = 1; c <= 5; c += 2) {
    unlink(P("stats.json"));
    char stage[64];
    snprintf(stage, sizeof stage, "'concurrency': %d", c);
    res r = run(one_stage("'count': 40", "'async': true, 'delay_ms': 1, 'stats': '$T/stats.json'", stage));
    FT_ASSERT(r.rc == 0 && r.done == 40, "rc %d done %lld", r.rc, (long long)r.done);
    json_t *stats = load_json_file(P("stats.json"));
    json_int_t inflight = json_integer_value(json_object_get(stats, "max_inflight"));
    json_decref(stats);
    FT_ASSERT(inflight == c, "concurrency %d: max in sink %lld", c, (long long)inflight);
    unlink(P("j.db"));
  }
}

static void test_retry(void) {
  res r = run(one_stage("'count': 8", "'async': true, 'transient': {'k000003': 2, 'k000005': 10}",
                        "'retry': {'max': 3, 'base_ms': 1, 'cap_ms': 4}"));
  FT_ASSERT(r.rc < 0 && r.rc != FERRY_EIO && r.rc != FERRY_ECONFIG, "rc %d", r.rc);
  FT_ASSERT(r.done == 7 && r.failed == 1, "done %lld failed %lld", (long long)r.done, (long long)r.failed);
  FT_ASSERT(r.st[0].retried == 5, "retried %lld, expected 2 + 3", (long long)r.st[0].retried);
  const char *log = P("sink.log");
  FT_ASSERT(has_line(log, "W k000003 attempt=3"), "k000003 not retried until it worked");
  FT_ASSERT(!has_line(log, "W k000003 attempt=4"), "k000003 retried after success");
  FT_ASSERT(has_line(log, "W k000005 attempt=4") && !has_line(log, "W k000005 attempt=5"),
            "k000005 not tried exactly 1 + 3 times");
  FT_ASSERT(count_lines(log, "W ") == 8 + 5, "%d writes", count_lines(log, "W "));
  json_t *rep = load_json_file(P("report.json"));
  json_t *it = report_item(rep, 0, "k000005");
  FT_ASSERT(it, "k000005 not in the report");
  FT_ASSERT(!strcmp(jstr(it, "status"), "failed"), "status %s", jstr(it, "status"));
  FT_ASSERT(json_integer_value(json_object_get(it, "attempts")) == 4, "attempts");
  FT_ASSERT(strstr(jstr(it, "error"), "gave up after 4 attempts") && strstr(jstr(it, "error"), "target busy"),
            "error: %s", jstr(it, "error"));
  it = report_item(rep, 0, "k000003");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "done") && json_integer_value(json_object_get(it, "attempts")) == 3,
            "k000003 (done at the third attempt): %s", dumps(it));
  /* the time series: every completion and every retry counted once, in some interval */
  json_t *series = json_object_get(json_array_get(json_object_get(rep, "stages"), 0), "series");
  FT_ASSERT(json_number_value(json_object_get(series, "step_s")) > 0, "no series: %s", dumps(series));
  int64_t sum[3] = {0};
  static const char *const counters[3] = {"completed", "failed", "retries"};
  for (int c = 0; c < 3; c++) {
    size_t i;
    json_t *v;
    json_t *a = json_object_get(series, counters[c]);
    FT_ASSERT(json_array_size(a) == (size_t)json_integer_value(json_object_get(series, "points")), "points");
    json_array_foreach(a, i, v) sum[c] += json_integer_value(v);
  }
  FT_ASSERT(sum[0] == 8 && sum[1] == 1 && sum[2] == 5, "series sums: completed %lld, failed %lld, retries %lld",
            (long long)sum[0], (long long)sum[1], (long long)sum[2]);
  json_decref(rep);
  /* the journal's run summary holds the same stages (ferry report draws from it) */
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(P("j.db"), 1, &err);
  FT_ASSERT(j, "journal: %s", err.message);
  json_t *runs = ferry__journal_runs(j, 1, &err);
  json_t *sm = json_object_get(json_array_get(runs, 0), "summary");
  FT_ASSERT(json_integer_value(json_object_get(sm, "done")) == 7 && json_integer_value(json_object_get(sm, "failed")) == 1,
            "summary totals: %s", dumps(sm));
  json_t *s0 = json_array_get(json_object_get(sm, "stages"), 0);
  FT_ASSERT(!strcmp(jstr(s0, "name"), "s") && json_object_get(s0, "series") && !json_object_get(s0, "items") &&
                !strcmp(jstr(sm, "mode"), "run"),
            "summary stages: %s", dumps(sm));
  json_decref(runs);
  ferry__journal_close(j);
}

/* base/stats.c: the latency histogram's buckets and quantiles, the series' merging when full. */
static void test_stats(void) {
  ferry__latency l = {0};
  ferry__latency_add(&l, 0.5);
  ferry__latency_add(&l, 1.0);   /* a bound belongs to the next bucket */
  ferry__latency_add(&l, 12.0);  /* 10 <= 12 < 15.85: bucket 6 */
  ferry__latency_add(&l, 2e5);   /* over 100 s: the last */
  FT_ASSERT(l.count == 4 && l.b[0] == 1 && l.b[1] == 1 && l.b[6] == 1 && l.b[FERRY_LAT_BUCKETS - 1] == 1,
            "buckets %lld %lld %lld %lld", (long long)l.b[0], (long long)l.b[1], (long long)l.b[6],
            (long long)l.b[FERRY_LAT_BUCKETS - 1]);
  json_t *j = ferry__latency_json(&l);
  json_t *b = json_object_get(j, "buckets");
  FT_ASSERT(json_array_size(b) == 4 && json_is_null(json_array_get(json_array_get(b, 3), 0)) &&
                json_number_value(json_array_get(json_array_get(b, 2), 0)) > 15.8 &&
                json_number_value(json_array_get(json_array_get(b, 2), 0)) < 15.9,
            "buckets: %s", dumps(j));
  FT_ASSERT(json_number_value(json_object_get(j, "p50_ms")) > 1.5 && json_number_value(json_object_get(j, "p50_ms")) < 1.6 &&
                json_number_value(json_object_get(j, "p99_ms")) == 2e5 && json_number_value(json_object_get(j, "max_ms")) == 2e5,
            "quantiles: %s", dumps(j));
  json_decref(j);
  /* a quantile never above the maximum seen: 3 ms lies in the bucket [2.51, 3.98) */
  ferry__latency l2 = {0};
  ferry__latency_add(&l2, 3.0);
  j = ferry__latency_json(&l2);
  FT_ASSERT(json_number_value(json_object_get(j, "p99_ms")) == 3.0 && json_number_value(json_object_get(j, "p50_ms")) == 3.0,
            "quantiles above the maximum: %s", dumps(j));
  json_decref(j);

  ferry__series *s = calloc(1, sizeof *s);
  FT_ASSERT(!ferry__series_json(s), "a series not started is drawn");
  ferry__series_start(s, 100.0, 1.0);
  int64_t c[FERRY_SERIES_COUNTERS] = {3, 0, 1};
  ferry__series_sample(s, 100.5, c);
  c[0] = 5;
  ferry__series_sample(s, 101.5, c);
  ferry__series_sample(s, 105.2, c); /* nothing new */
  FT_ASSERT(s->n == 6 && s->v[0][0] == 3 && s->v[0][1] == 2 && s->v[0][5] == 0 && s->v[2][0] == 1, "n %zu", s->n);
  c[0] = 10;
  ferry__series_sample(s, 100.0 + 700.0, c); /* beyond 600 points of 1 s: pairs merge, step 2 s */
  FT_ASSERT(s->step == 2.0 && s->n == 351 && s->v[0][0] == 5 && s->v[0][350] == 5 && s->v[2][0] == 1,
            "after a merge: step %g n %zu first %lld last %lld", s->step, s->n, (long long)s->v[0][0],
            (long long)s->v[0][350]);
  c[0] = 11;
  ferry__series_sample(s, 100.0 + 5000.0, c); /* 2500 points of 2 s: merged three times, 16 s */
  int64_t total = 0;
  for (size_t i = 0; i < s->n; i++) total += s->v[0][i];
  FT_ASSERT(s->step == 16.0 && s->n <= FERRY_SERIES_MAX && total == 11, "step %g n %zu total %lld", s->step, s->n,
            (long long)total);
  free(s);
}

static void test_permanent(void) {
  res r =
      run(one_stage("'count': 10", "'async': true, 'permanent': ['k000002', 'k000007']", "'concurrency': 3"));
  FT_ASSERT(r.rc < 0 && r.rc != FERRY_EIO, "rc %d", r.rc);
  FT_ASSERT(strstr(r.msg, "2 item(s) failed"), "message: %s", r.msg);
  FT_ASSERT(r.done == 8 && r.failed == 2, "done %lld failed %lld", (long long)r.done, (long long)r.failed);
  FT_ASSERT(count_lines(P("sink.log"), "W ") == 10, "every item was not tried once");
  json_t *rep = load_json_file(P("report.json"));
  FT_ASSERT(json_integer_value(json_object_get(json_object_get(rep, "totals"), "failed")) == 2, "totals");
  for (int k = 0; k < 2; k++) {
    json_t *it = report_item(rep, 0, k ? "k000007" : "k000002");
    FT_ASSERT(it, "failed item missing from the report");
    FT_ASSERT(strstr(jstr(it, "error"), "refused by the target"), "error: %s", jstr(it, "error"));
    FT_ASSERT(!strcmp(jstr(it, "code"), "EINVAL"), "code %s", jstr(it, "code"));
    FT_ASSERT(!strcmp(jstr(json_object_get(it, "report"), "target"), "refused"), "task report not carried");
  }
  json_decref(rep);
  /* the journal has them failed; a second run takes them again (fresh) and skips the others */
  r = run(one_stage("'count': 10", "'async': true", "'concurrency': 3"));
  FT_ASSERT(r.rc == 0 && r.done == 2 && r.st[0].resumed == 8, "rc %d done %lld resumed %lld", r.rc,
            (long long)r.done, (long long)r.st[0].resumed);
  FT_ASSERT(has_line(P("sink.log"), "W k000002 attempt=1 step=- state={}"), "k000002 not retried fresh");
}

static void test_limit(void) {
  res r = run_ex(one_stage("'count': 10, 'events': '$T/ev.txt'", "", ""), (run_opts){.limit = 3});
  FT_ASSERT(r.rc == 0 && r.done == 3, "rc %d done %lld: %s", r.rc, (long long)r.done, r.msg);
  FT_ASSERT(count_lines(P("sink.log"), "W ") == 3, "%d writes", count_lines(P("sink.log"), "W "));
  FT_ASSERT(has_line(P("ev.txt"), "STOP"), "the source was not stopped");
  FT_ASSERT(count_lines(P("ev.txt"), "E ") <= 3, "the source emitted %d items",
            count_lines(P("ev.txt"), "E "));
  r = run_ex(one_stage("'count': 10", "", ""), (run_opts){.limit = 3});
  FT_ASSERT(r.rc == 0 && r.done == 3 && r.st[0].resumed == 3, "second canary: done %lld resumed %lld",
            (long long)r.done, (long long)r.st[0].resumed);
  FT_ASSERT(has_line(P("sink.log"), "W k000005 ") && !has_line(P("sink.log"), "W k000006 "), "wrong items");
  r = run(one_stage("'count': 10", "", ""));
  FT_ASSERT(r.rc == 0 && r.done == 4 && r.st[0].resumed == 6, "rest: done %lld", (long long)r.done);
  FT_ASSERT(count_lines(P("sink.log"), "W ") == 10, "an item was written twice");
}

static void test_resume(void) {
  const char *hooks =
      "'hooks': [{'plugin': 'rt-hook', 'points': ['after_write'], 'options': {'out': '$T/h.txt'}}]";
  res r = run(one_stage("'count': 10", "'permanent': ['k000004'], 'fire': true", hooks));
  FT_ASSERT(r.done == 9 && r.failed == 1, "first run: done %lld failed %lld", (long long)r.done,
            (long long)r.failed);
  /* an item in doubt: an earlier run recorded the intent "remote_write" (with the hook's state) and died */
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(P("j.db"), 0, &err);
  FT_ASSERT(j, "journal: %s", err.message);
  json_t *state = J("{'target_id': 'T10', 'hooks': {'0:rt-hook': {'seen': ['before_write']}}}");
  FT_ASSERT(ferry__journal_intent(j, "s", "k000010", "remote_write", state, 1, &err) == 0, "intent: %s",
            err.message);
  json_decref(state);
  ferry__journal_close(j);
  unlink(P("sink.log"));
  unlink(P("h.txt"));
  r = run(one_stage("'count': 12", "'fire': true", hooks));
  FT_ASSERT(r.rc == 0, "rc %d: %s", r.rc, r.msg);
  FT_ASSERT(r.done == 3 && r.st[0].resumed == 9, "second run: done %lld resumed %lld", (long long)r.done,
            (long long)r.st[0].resumed);
  const char *log = P("sink.log");
  FT_ASSERT(count_lines(log, "W ") == 3, "%d writes", count_lines(log, "W "));
  FT_ASSERT(has_line(log, "W k000004 attempt=1 step=- state={}"), "failed item not retried fresh");
  FT_ASSERT(has_line(log,
                     "W k000010 attempt=1 step=remote_write state={\"hooks\":{\"0:rt-hook\":{\"seen\":"
                     "[\"before_write\"]}},\"target_id\":\"T10\"}"),
            "in-doubt item not handed back with its step and state:\n%s", slurp(log));
  FT_ASSERT(has_line(log, "W k000011 attempt=1 step=- "), "new item not written");
  FT_ASSERT(
      has_line(P("h.txt"), "after_write k000010 data={\"target_id\":\"k000010\"} seen=[\"before_write\"]"),
      "hook state not restored from the journal");
  r = run(one_stage("'count': 12", "'fire': true", hooks));
  FT_ASSERT(r.rc == 0 && r.done == 0 && r.st[0].resumed == 12, "third run: done %lld resumed %lld",
            (long long)r.done, (long long)r.st[0].resumed);
}

/* An item that failed permanently after recording a step (a side effect may have happened) must come back
 * with that step and its state, not as a fresh task that would repeat the side effect. */
static void test_failed_step(void) {
  res r = run(one_stage("'count': 4", "'steps': ['create', 'finish'], 'permanent': ['k000002']", ""));
  FT_ASSERT(r.done == 3 && r.failed == 1, "first run: done %lld failed %lld", (long long)r.done,
            (long long)r.failed);
  unlink(P("sink.log"));
  r = run(one_stage("'count': 4", "'steps': ['create', 'finish']", ""));
  FT_ASSERT(r.rc == 0 && r.done == 1 && r.st[0].resumed == 3, "second run: rc %d done %lld resumed %lld: %s",
            r.rc, (long long)r.done, (long long)r.st[0].resumed, r.msg);
  const char *log = P("sink.log");
  FT_ASSERT(count_lines(log, "W ") == 1, "%d writes:\n%s", count_lines(log, "W "), slurp(log));
  FT_ASSERT(has_line(log, "W k000002 attempt=1 step=finish state={\"last_step\":\"finish\""),
            "the failed item was not handed back with its step and state:\n%s", slurp(log));
}

static void test_plan(void) {
  json_t *cfg = one_stage("'count': 5", "'blocked': ['k000001']", "");
  res r = run_mode(cfg, FERRY_MODE_PLAN);
  FT_ASSERT(r.rc == FERRY_EBLOCKED, "rc %d: %s", r.rc, r.msg);
  FT_ASSERT(access(P("j.db"), F_OK) != 0, "plan created the journal");
  FT_ASSERT(count_lines(P("sink.log"), "P ") == 5 && count_lines(P("sink.log"), "W ") == 0, "plan wrote");
  json_t *rep = load_json_file(P("report.json"));
  FT_ASSERT(!strcmp(jstr(rep, "mode"), "plan"), "mode");
  FT_ASSERT(json_array_size(json_object_get(json_array_get(json_object_get(rep, "stages"), 0), "items")) == 5,
            "plan does not report every item");
  json_t *it = report_item(rep, 0, "k000000");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "would_do"), "k000000 not would_do");
  FT_ASSERT(!strcmp(jstr(json_object_get(it, "report"), "would"), "write k000000"), "task report missing");
  it = report_item(rep, 0, "k000001");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "blocked") && strstr(jstr(it, "error"), "no room"),
            "blocked item");
  json_decref(rep);
  /* a real run, then a plan that reads the journal but does not change it */
  r = run(one_stage("'count': 5", "", ""));
  FT_ASSERT(r.rc == 0 && r.done == 5, "run: %s", r.msg);
  snap before = snapshot(P("j.db"));
  unlink(P("sink.log"));
  r = run_mode(one_stage("'count': 7", "", ""), FERRY_MODE_PLAN);
  FT_ASSERT(r.rc == 0, "rc %d: %s", r.rc, r.msg);
  FT_ASSERT(r.st[0].resumed == 5 && r.done == 2, "plan: already done %lld, would do %lld",
            (long long)r.st[0].resumed, (long long)r.done);
  FT_ASSERT(count_lines(P("sink.log"), "P ") == 2, "planned items");
  FT_ASSERT(unchanged(&before, P("j.db")), "plan changed the journal");
  rep = load_json_file(P("report.json"));
  it = report_item(rep, 0, "k000003");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "already_done"), "done item not reported as already done");
  it = report_item(rep, 0, "k000006");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "would_do"), "new item not reported");
  json_decref(rep);
}

static void test_verify(void) {
  res r = run(one_stage("'count': 5", "", ""));
  FT_ASSERT(r.rc == 0 && r.done == 5, "run: %s", r.msg);
  unlink(P("sink.log"));
  r = run_mode(one_stage("'count': 5", "", ""), FERRY_MODE_VERIFY);
  FT_ASSERT(r.rc == 0 && r.done == 5, "verify: rc %d done %lld: %s", r.rc, (long long)r.done, r.msg);
  FT_ASSERT(has_line(P("sink.log"), "V k000002 step=- state={\"written\":\"k000002\"}"),
            "verify did not get the recorded state:\n%s", slurp(P("sink.log")));
  FT_ASSERT(count_lines(P("sink.log"), "W ") == 0, "verify wrote");
  r = run_mode(one_stage("'count': 6", "'mismatch': ['k000002']", ""), FERRY_MODE_VERIFY);
  FT_ASSERT(r.rc == FERRY_EMISMATCH, "rc %d: %s", r.rc, r.msg);
  json_t *rep = load_json_file(P("report.json"));
  json_t *it = report_item(rep, 0, "k000002");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "mismatched") && strstr(jstr(it, "error"), "differs"),
            "mismatch");
  it = report_item(rep, 0, "k000005");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "not_migrated"), "not migrated item");
  it = report_item(rep, 0, "k000001");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "equal") &&
                !strcmp(jstr(json_object_get(it, "report"), "verified"), "write k000001"),
            "an equal item is not listed with its result: %s", dumps(it));
  FT_ASSERT(json_array_size(json_object_get(json_array_get(json_object_get(rep, "stages"), 0), "items")) == 6,
            "verify does not list every item");
  json_decref(rep);
  /* verify writes the journal: only its marks (and the row's run), and a run of mode "verify" */
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(P("j.db"), 1, &err);
  FT_ASSERT(j, "journal: %s", err.message);
  json_t *runs = ferry__journal_runs(j, 0, &err);
  FT_ASSERT(json_array_size(runs) == 3 && !strcmp(jstr(json_array_get(runs, 0), "mode"), "verify") &&
                !strcmp(jstr(json_array_get(runs, 1), "mode"), "verify") &&
                !strcmp(jstr(json_array_get(runs, 2), "mode"), "run"),
            "runs: %s", dumps(runs));
  json_decref(runs);
  ferry_jrow row;
  FT_ASSERT(ferry__journal_get(j, "s", "k000002", &row, &err) == 0 && row.status == FERRY_J_DONE && row.verify,
            "k000002 not marked");
  ferry__jrow_clear(&row);
  FT_ASSERT(ferry__journal_get(j, "s", "k000001", &row, &err) == 0 && row.status == FERRY_J_DONE && !row.verify,
            "k000001 marked");
  ferry__jrow_clear(&row);
  FT_ASSERT(ferry__journal_get(j, "s", "k000005", &row, &err) == 0 && row.status == FERRY_J_NONE,
            "verify created a row for an item that is not migrated");
  ferry__jrow_clear(&row);
  ferry__journal_close(j);
}

static void test_hooks(void) {
  res r = run(one_stage(
      "'count': 3", "'fire': true, 'permanent': ['k000001']",
      "'concurrency': 1, 'hooks': ["
      "{'plugin': 'rt-hook', 'points': ['stage_start', 'item_done', 'stage_end'], 'options': {'out': "
      "'$T/h.txt', "
      " 'name': 'A', 'async': true}},"
      "{'plugin': 'rt-hook', 'points': ['before_write', 'after_write', 'item_done', 'item_failed'], "
      " 'options': {'out': '$T/h.txt', 'name': 'B'}}]"));
  FT_ASSERT(r.done == 2 && r.failed == 1, "done %lld failed %lld: %s", (long long)r.done, (long long)r.failed,
            r.msg);
  const char *h = P("h.txt");
  const char *expect[] = {
      "A s stage_start - data=- seen=-",
      "B s before_write k000000 data=- seen=[]",
      "B s after_write k000000 data={\"target_id\":\"k000000\"} seen=[\"before_write\"]",
      "A s item_done k000000 data=- seen=[]",
      "B s item_done k000000 data=- seen=[\"before_write\",\"after_write\"]",
      "B s before_write k000001 data=- seen=[]",
      "B s after_write k000001 data={\"target_id\":\"k000001\"} seen=[\"before_write\"]",
      "B s item_failed k000001 data=- seen=[\"before_write\",\"after_write\"]",
      "B s before_write k000002 data=- seen=[]",
      "B s after_write k000002 data={\"target_id\":\"k000002\"} seen=[\"before_write\"]",
      "A s item_done k000002 data=- seen=[]",
      "B s item_done k000002 data=- seen=[\"before_write\",\"after_write\"]",
      "A s stage_end - data=- seen=-",
  };
  char *all = slurp(h);
  FT_ASSERT(count_lines(h, NULL) == 13, "%d hook lines:\n%s", count_lines(h, NULL), all);
  /* hook A completes from a timer, so the next item may start meanwhile: the order holds per item (and
   * within one firing, A before B), stage_start first and stage_end last */
  int last[3] = {0, 0, 0};
  for (int i = 0; i < 13; i++) {
    int at = line_index(h, expect[i]);
    FT_ASSERT(at >= 0, "missing line \"%s\":\n%s", expect[i], all);
    const char *k = strstr(expect[i], " k00000");
    if (!k)
      FT_ASSERT(at == (i ? 12 : 0), "stage line \"%s\" at %d:\n%s", expect[i], at, all);
    else {
      int key = k[7] - '0';
      FT_ASSERT(at > last[key], "line \"%s\" out of order:\n%s", expect[i], all);
      last[key] = at;
    }
  }
  free(all);
  /* the hook states were saved in the journal with the item */
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(P("j.db"), 1, &err);
  FT_ASSERT(j, "journal: %s", err.message);
  ferry_jrow row = {0};
  FT_ASSERT(ferry__journal_get(j, "s", "k000000", &row, &err) == 0 && row.status == FERRY_J_DONE, "k000000");
  json_t *hs = json_object_get(row.state, "hooks");
  char *dump = json_dumps(hs, JSON_COMPACT | JSON_SORT_KEYS);
  FT_ASSERT(dump && !strcmp(dump,
                            "{\"0:rt-hook\":{\"seen\":[\"item_done\"]},\"1:rt-hook\":{\"seen\":"
                            "[\"before_write\",\"after_write\",\"item_done\"]}}"),
            "hook states in the journal: %s", dump ? dump : "-");
  free(dump);
  ferry__jrow_clear(&row);
  FT_ASSERT(ferry__journal_get(j, "s", "k000001", &row, &err) == 0 && row.status == FERRY_J_FAILED, "k000001");
  ferry__jrow_clear(&row);
  ferry__journal_close(j);

  /* a transient failure of a hook at item_done retries the item */
  rm_rf(T);
  mkdir(T, 0700);
  r = run(one_stage(
      "'count': 2", "",
      "'retry': {'max': 2, 'base_ms': 1, 'cap_ms': 1}, 'hooks': [{'plugin': 'rt-hook', 'points': "
      "['item_done'], 'options': {'fail_point': 'item_done', 'fail_times': 1, 'transient': true}}]"));
  FT_ASSERT(r.rc == 0 && r.done == 2 && r.st[0].retried == 1, "rc %d done %lld retried %lld: %s", r.rc,
            (long long)r.done, (long long)r.st[0].retried, r.msg);
  FT_ASSERT(has_line(P("sink.log"), "W k000000 attempt=2"), "the item was not retried");
  /* a failing stage_start hook fails the stage before any item */
  unlink(P("sink.log"));
  r = run(one_stage("'count': 2", "",
                    "'hooks': [{'plugin': 'rt-hook', 'points': ['stage_start'], 'options': {'fail_point': "
                    "'stage_start'}}]"));
  FT_ASSERT(r.rc == FERRY_EIO && r.st[0].status != 0, "rc %d", r.rc);
  FT_ASSERT(strstr(r.msg, "stage_start") && strstr(r.msg, "rt-hook"), "message: %s", r.msg);
  FT_ASSERT(count_lines(P("sink.log"), "W ") == 0, "items written although the stage failed to start");
}

static void test_report(void) {
  setenv("RT_SECRET", "hunter2-xyzzy", 1);
  res r = run(one_stage("'count': 4", "'permanent': ['k000001'], 'secret': '${RT_SECRET}'", ""));
  FT_ASSERT(r.failed == 1 && r.done == 3, "failed %lld", (long long)r.failed);
  char *text = slurp(P("report.json"));
  FT_ASSERT(!strstr(text, "hunter2-xyzzy"), "the secret is in the report:\n%s", text);
  free(text);
  json_t *rep = load_json_file(P("report.json"));
  FT_ASSERT(!strcmp(jstr(rep, "mode"), "run") && json_integer_value(json_object_get(rep, "status")) == r.rc,
            "status");
  json_t *st = json_array_get(json_object_get(rep, "stages"), 0);
  FT_ASSERT(!strcmp(jstr(st, "name"), "s") && !strcmp(jstr(st, "state"), "finished"), "stage");
  FT_ASSERT(!strcmp(jstr(st, "source"), "rt-gen") && !strcmp(jstr(st, "sink"), "rt-sink"), "plugins");
  FT_ASSERT(json_integer_value(json_object_get(st, "done")) == 3 &&
                json_integer_value(json_object_get(st, "failed")) == 1 &&
                json_integer_value(json_object_get(st, "total")) == 4,
            "stage counts");
  json_t *it = report_item(rep, 0, "k000001");
  FT_ASSERT(it && strstr(jstr(it, "error"), "(password ***"), "error not redacted: %s", jstr(it, "error"));
  FT_ASSERT(strstr(jstr(it, "detail"), "password=***"), "detail not redacted: %s", jstr(it, "detail"));
  FT_ASSERT(json_array_size(json_object_get(st, "items")) == 4, "not every item is listed: %s",
            dumps(json_object_get(st, "items")));
  it = report_item(rep, 0, "k000002");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "done") && json_integer_value(json_object_get(it, "attempts")) == 1,
            "done item: %s", dumps(it));
  FT_ASSERT(!strcmp(jstr(json_object_get(it, "report"), "note"), "password ***"),
            "stored report not redacted: %s", dumps(it));
  json_decref(rep);
  FT_ASSERT(!file_has(P("j.db"), "hunter2") && !file_has(P("j.db-wal"), "hunter2"), "the secret is in the journal");
}

static void test_interrupt(void) {
  res r = run(one_stage("'count': 100",
                        "'async': true, 'delay_ms': 1, 'sigint_after': 10, 'stats': '$T/stats.json'",
                        "'concurrency': 4"));
  FT_ASSERT(r.rc == FERRY_ECANCELED, "rc %d: %s", r.rc, r.msg);
  FT_ASSERT(r.done >= 10 && r.done < 100 && r.failed == 0, "done %lld failed %lld", (long long)r.done,
            (long long)r.failed);
  FT_ASSERT(access(P("stats.json"), F_OK) == 0, "the sink was not stopped");
  int writes = count_lines(P("sink.log"), "W ");
  FT_ASSERT(writes == r.done, "%d writes for %lld done: in-flight items were not finished", writes,
            (long long)r.done);
  int64_t first = r.done;
  r = run(one_stage("'count': 100", "'async': true", "'concurrency': 4"));
  FT_ASSERT(r.rc == 0 && r.done == 100 - first && r.st[0].resumed == first, "resume: done %lld resumed %lld",
            (long long)r.done, (long long)r.st[0].resumed);
  FT_ASSERT(count_lines(P("sink.log"), "W ") == 100, "an item was written twice or never");

  /* an item waiting for its retry (20 s away) does not hold the interrupted run up, and is not failed */
  rm_rf(T);
  FT_ASSERT(mkdir(T, 0700) == 0, "mkdir");
  double t0 = ferry__now();
  r = run(one_stage("'count': 20", "'async': true, 'sigint_after': 5, 'transient': {'k000001': 1}",
                    "'concurrency': 1, 'retry': {'max': 5, 'base_ms': 20000, 'cap_ms': 20000}"));
  FT_ASSERT(r.rc == FERRY_ECANCELED && r.failed == 0, "rc %d failed %lld: %s", r.rc, (long long)r.failed,
            r.msg);
  FT_ASSERT(ferry__now() - t0 < 10, "the interrupted run waited for a retry (%.1f s)", ferry__now() - t0);
  FT_ASSERT(!has_line(P("sink.log"), "W k000001 attempt=2"), "retried although interrupted");
  r = run(one_stage("'count': 20", "'async': true", ""));
  FT_ASSERT(r.rc == 0 && has_line(P("sink.log"), "W k000001 attempt=1 step=- state={}"),
            "k000001 not taken again");
}

static void test_source_fail(void) {
  res r =
      run(J("{'journal': '$T/j.db', 'report': '$T/report.json', 'stages': ["
            "{'name': 'a', 'source': {'plugin': 'rt-gen', 'options': {'count': 10, 'fail_at': 5}}, "
            " 'sink': {'plugin': 'rt-sink', 'options': {'async': true}}},"
            "{'name': 'b', 'after': ['a'], 'source': {'plugin': 'rt-gen'}, 'sink': {'plugin': 'rt-sink'}},"
            "{'name': 'c', 'source': {'plugin': 'rt-gen'}, 'sink': {'plugin': 'rt-sink'}}]}"));
  FT_ASSERT(r.rc == FERRY_EIO, "rc %d: %s", r.rc, r.msg);
  FT_ASSERT(strstr(r.msg, "\"a\"") && strstr(r.msg, "rt-gen") && strstr(r.msg, "fail_at"), "message: %s",
            r.msg);
  FT_ASSERT(r.st[0].status == FERRY_EPROTO && r.st[0].done == 5, "a: status %d done %lld", r.st[0].status,
            (long long)r.st[0].done);
  FT_ASSERT(!strcmp(r.st[1].name, "b") && r.st[1].status != 0 && r.st[1].done == 0, "b ran");
  FT_ASSERT(!strcmp(r.st[2].name, "c") && r.st[2].status == 0 && r.st[2].done == 10,
            "independent c did not run");
  json_t *rep = load_json_file(P("report.json"));
  json_t *sts = json_object_get(rep, "stages");
  FT_ASSERT(!strcmp(jstr(json_array_get(sts, 0), "state"), "failed"), "a not failed");
  FT_ASSERT(!strcmp(jstr(json_array_get(sts, 1), "state"), "not_run"), "b not reported as not run");
  FT_ASSERT(strstr(jstr(json_array_get(sts, 1), "error"), "\"a\""), "b's reason does not name a");
  json_decref(rep);
}

static void test_misuse(void) {
  res r = run(one_stage("'count': 5, 'misuse': true, 'bad_kind_at': 2", "'misuse': true", ""));
  FT_ASSERT(r.done == 4 && r.failed == 1, "done %lld failed %lld: %s", (long long)r.done, (long long)r.failed,
            r.msg);
  json_t *rep = load_json_file(P("report.json"));
  json_t *it = report_item(rep, 0, "k000002");
  FT_ASSERT(it && strstr(jstr(it, "error"), "does not declare"), "wrong kind not reported");
  FT_ASSERT(!report_item(rep, 0, "after-end"), "item emitted after the end was taken");
  json_decref(rep);
  FT_ASSERT(!has_line(P("sink.log"), "W after-end"), "item emitted after the end reached the sink");
  FT_ASSERT(!has_line(P("sink.log"), "W k000002"), "item of the wrong kind reached the sink");
  /* hooks completing twice, at item points and stage points, synchronously and from a timer */
  r = run(
      one_stage("'count': 4, 'prefix': 'h'", "'fire': true",
                "'hooks': [{'plugin': 'rt-hook', 'points': ['stage_start', 'before_write', 'item_done', "
                "'stage_end'], 'options': {'misuse': true}}, {'plugin': 'rt-hook', 'points': ['item_done'], "
                "'options': {'misuse': true, 'async': true}}]"));
  FT_ASSERT(r.rc == 0 && r.done == 4, "hooks completing twice: rc %d done %lld: %s", r.rc, (long long)r.done,
            r.msg);
  /* completions with a failure twice */
  r = run(one_stage("'count': 4, 'prefix': 'm'", "'misuse': true, 'permanent': ['m000001']", ""));
  FT_ASSERT(r.done == 3 && r.failed == 1, "done %lld failed %lld", (long long)r.done, (long long)r.failed);
}

static void test_stall(void) {
  res r = run(one_stage("'count': 3, 'stall': true", "", ""));
  FT_ASSERT(r.rc == FERRY_EIO && strstr(r.msg, "stalled") && strstr(r.msg, "rt-gen"), "rc %d: %s", r.rc,
            r.msg);
  FT_ASSERT(r.done == 3, "done %lld", (long long)r.done);
}

static void test_sync(void) {
  res r =
      run(one_stage("'count': 50", "'sync': true, 'sync_async': true, 'async': true", "'concurrency': 4"));
  FT_ASSERT(r.rc == 0 && r.done == 50, "rc %d done %lld: %s", r.rc, (long long)r.done, r.msg);
  FT_ASSERT(count_lines(P("sink.log"), "S ") >= 1, "no sync");
  /* every W line comes before the last S line */
  char *s = slurp(P("sink.log"));
  char *last_s = NULL;
  for (char *p = s; (p = strstr(p, "\nS ")); p++) last_s = p;
  FT_ASSERT(last_s && !strstr(last_s, "\nW "), "items written after the last sync:\n%s", s);
  free(s);
  r = run(one_stage("'count': 50", "'sync': true", ""));
  FT_ASSERT(r.rc == 0 && r.done == 0 && r.st[0].resumed == 50, "not recorded done after sync: resumed %lld",
            (long long)r.st[0].resumed);
}

static void test_journal_off(void) {
  for (int i = 0; i < 2; i++) {
    res r =
        run(J("{'journal': '$T/j.db', 'stages': [{'name': 's', 'journal': false, 'source': {'plugin': "
              "'rt-gen', 'options': {'count': 5}}, 'sink': {'plugin': 'rt-sink', 'options': {'log': "
              "'$T/sink.log'}}}]}"));
    FT_ASSERT(r.rc == 0 && r.done == 5, "rc %d done %lld", r.rc, (long long)r.done);
  }
  FT_ASSERT(count_lines(P("sink.log"), "W ") == 10, "not written again without a journal");
  FT_ASSERT(access(P("j.db"), F_OK) != 0, "journal created although no stage journals");
}

static void test_many(void) {
  int64_t n = 200000;
  char gen[64];
  snprintf(gen, sizeof gen, "'count': %lld", (long long)n);
  res r = run_ex(
      J("{'stages': [{'name': 's', 'journal': false, 'concurrency': 16, 'source': {'plugin': 'rt-gen', "
        "'options': {%s}}, 'sink': {'plugin': 'rt-sink'}}]}",
        gen),
      (run_opts){.ticks = 1});
  FT_ASSERT(r.rc == 0 && r.done == n, "rc %d done %lld", r.rc, (long long)r.done);
  FT_ASSERT(g_ticks > 0, "the loop was starved: no timer ran during %lld synchronous items", (long long)n);
}

/* One runtime, several runs: plan, run of one selected stage, run of all, verify; and a bad stage name. */
static void test_reuse(void) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_runtime *rt = new_runtime();
  json_t *cfg = J(
      "{'journal': '$T/j.db', 'stages': ["
      "{'name': 'a', 'source': {'plugin': 'rt-gen', 'options': {'count': 4, 'prefix': 'a'}}, "
      " 'sink': {'plugin': 'rt-sink', 'options': {'log': '$T/sink.log'}}},"
      "{'name': 'b', 'after': ['a'], 'source': {'plugin': 'rt-gen', 'options': {'count': 3, 'prefix': 'b'}}, "
      " 'sink': {'plugin': 'rt-sink', 'options': {'log': '$T/sink.log'}}}]}");
  FT_ASSERT(!ferry_runtime_settings(rt), "settings before the load");
  FT_ASSERT(ferry_runtime_load_json(rt, cfg, "reuse.json", &err) == 0, "load: %s", err.message);
  json_decref(cfg);
  json_t *set = ferry_runtime_settings(rt); /* borrowed: the runtime's */
  FT_ASSERT(set && !strcmp(jstr(set, "origin"), "reuse.json") && !strcmp(jstr(set, "journal"), P("j.db")) &&
                json_array_size(json_object_get(set, "stages")) == 2 &&
                !strcmp(json_string_value(json_array_get(json_object_get(set, "stages"), 1)), "b"),
            "settings: %s", dumps(set));
  FT_ASSERT(ferry_runtime_load_json(rt, cfg = J("{'stages': []}"), "again", &err) < 0, "loaded twice");
  json_decref(cfg);
  ferry_error_clear(&err);
  ferry_run_summary sum;
  ferry_run_opts o = {.struct_size = sizeof o, .mode = FERRY_MODE_PLAN};
  FT_ASSERT(ferry_runtime_run(rt, &o, &sum, &err) == 0, "plan: %s", err.message);
  FT_ASSERT(sum.done == 7 && access(P("j.db"), F_OK) != 0, "plan: %lld", (long long)sum.done);
  const char *only_b[] = {"b", NULL};
  o.mode = FERRY_MODE_RUN;
  o.stages = only_b;
  FT_ASSERT(ferry_runtime_run(rt, &o, &sum, &err) == 0, "run b: %s", err.message);
  FT_ASSERT(sum.done == 3 && sum.stages[0].done == 0 && sum.stages[1].done == 3, "only b: %lld",
            (long long)sum.done);
  o.stages = NULL;
  FT_ASSERT(ferry_runtime_run(rt, &o, &sum, &err) == 0, "run all: %s", err.message);
  FT_ASSERT(sum.done == 4 && sum.skipped == 3 && sum.stages[1].resumed == 3, "all: done %lld skipped %lld",
            (long long)sum.done, (long long)sum.skipped);
  o.mode = FERRY_MODE_VERIFY;
  FT_ASSERT(ferry_runtime_run(rt, &o, &sum, &err) == 0, "verify: %s", err.message);
  FT_ASSERT(sum.done == 7, "verified %lld", (long long)sum.done);
  const char *bad[] = {"nope", NULL};
  o.stages = bad;
  FT_ASSERT(ferry_runtime_run(rt, &o, &sum, &err) == FERRY_ECONFIG && strstr(err.message, "nope") &&
                strstr(err.message, "\"a\""),
            "bad stage name: %s", err.message);
  ferry_error_clear(&err);
  ferry_runtime_free(rt);
  FT_ASSERT(count_lines(P("sink.log"), "W ") == 7 && count_lines(P("sink.log"), "P ") == 7 &&
                count_lines(P("sink.log"), "V ") == 7,
            "sink calls:\n%s", slurp(P("sink.log")));
}

/* Options are checked once, at load: a secret read from a file at load serves every run of the runtime, even
 * once the file is gone (each run's instances start from the checked values, each with its own copies). */
static void test_options_once(void) {
  ferry_error err = FERRY_ERROR_INIT;
  FILE *f = fopen(P("secret.txt"), "w");
  FT_ASSERT(f && fputs("once-4711-secret\n", f) >= 0 && fclose(f) == 0, "secret file");
  ferry_runtime *rt = new_runtime();
  json_t *cfg =
      J("{'journal': '$T/j.db', 'stages': [{'name': 's', "
        "'source': {'plugin': 'rt-gen', 'options': {'count': 3}}, "
        "'sink': {'plugin': 'rt-sink', 'options': {'secret': {'file': '$T/secret.txt'}, "
        "'permanent': ['k000001'], 'log': '$T/sink.log'}}}]}");
  FT_ASSERT(ferry_runtime_load_json(rt, cfg, "once.json", &err) == 0, "load: %s", err.message);
  json_decref(cfg);
  FT_ASSERT(unlink(P("secret.txt")) == 0, "unlink");
  ferry_run_summary sum;
  ferry_run_opts o = {.struct_size = sizeof o, .mode = FERRY_MODE_PLAN};
  FT_ASSERT(ferry_runtime_run(rt, &o, &sum, &err) != 0 || sum.done + sum.failed == 3, "plan: %s",
            err.message);
  ferry_error_clear(&err);
  o.mode = FERRY_MODE_RUN;
  o.report_path = P("report.json");
  int rc = ferry_runtime_run(rt, &o, &sum, &err);
  FT_ASSERT(rc != 0 && sum.done == 2 && sum.failed == 1,
            "run without the file: rc %d, done %lld, failed %lld: %s", rc, (long long)sum.done,
            (long long)sum.failed, err.message);
  ferry_error_clear(&err);
  ferry_runtime_free(rt);
  /* the secret the run read at load is known to the redaction: the failure the sink wrote it into shows ***
   */
  FT_ASSERT(file_has(P("report.json"), "***") && !file_has(P("report.json"), "once-4711-secret"),
            "report:\n%s", slurp(P("report.json")));
}

/* A journal that fails in the middle of a run (a real write error: the file size limit, RLIMIT_FSIZE, with
 * SIGXFSZ ignored, makes SQLite's writes fail with EFBIG): the run stops taking items, lets those in flight
 * finish, the stage fails with the journal's error, the stage after it does not run, and the run's result is
 * the journal failure. Run again without the limit, it resumes: every item is done once in the journal. */
static void test_journal_fail(void) {
  const char *cfg_text =
      "{'journal': '$T/j.db', 'stages': ["
      "{'name': 'a', 'concurrency': 4, 'source': {'plugin': 'rt-gen', 'options': {'count': 20000}}, "
      " 'sink': {'plugin': 'rt-sink', 'options': {'async': true}}},"
      "{'name': 'b', 'after': 'a', 'source': {'plugin': 'rt-gen', 'options': {'count': 3, 'prefix': 'b'}}, "
      " 'sink': {'plugin': 'rt-sink'}}]}";
  struct rlimit old, lim;
  FT_ASSERT(getrlimit(RLIMIT_FSIZE, &old) == 0, "getrlimit");
  void (*prev)(int) = signal(SIGXFSZ, SIG_IGN);
  lim = old;
  lim.rlim_cur = 192 * 1024;
  FT_ASSERT(setrlimit(RLIMIT_FSIZE, &lim) == 0, "setrlimit: %s", strerror(errno));
  res r = run(J(cfg_text, 0));
  FT_ASSERT(setrlimit(RLIMIT_FSIZE, &old) == 0, "setrlimit back: %s", strerror(errno));
  signal(SIGXFSZ, prev);
  FT_ASSERT(r.rc == FERRY_EIO && strstr(r.msg, "journal failure"), "rc %d: %s", r.rc, r.msg);
  FT_ASSERT(r.n == 2 && r.st[0].status != 0, "stage a not failed: status %d", r.st[0].status);
  FT_ASSERT(r.st[0].done > 0 && r.st[0].done < 20000, "stage a: %lld done before the failure",
            (long long)r.st[0].done);
  FT_ASSERT(r.st[1].status == FERRY_ECANCELED && r.st[1].done == 0, "stage b ran: status %d, done %lld",
            r.st[1].status, (long long)r.st[1].done);
  /* again, without the limit: everything done, nothing twice in the journal */
  r = run(J(cfg_text, 0));
  FT_ASSERT(r.rc == 0, "second run: rc %d: %s", r.rc, r.msg);
  FT_ASSERT(r.st[0].done + r.st[0].resumed == 20000 && r.st[1].done == 3, "second run: a %lld + %lld, b %lld",
            (long long)r.st[0].done, (long long)r.st[0].resumed, (long long)r.st[1].done);
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(P("j.db"), 1, &err);
  FT_ASSERT(j, "journal: %s", err.message);
  int64_t n[5];
  FT_ASSERT(ferry__journal_counts(j, NULL, n, &err) == 0, "counts: %s", err.message);
  FT_ASSERT(n[FERRY_J_DONE] == 20003 && n[FERRY_J_NONE] == 20003, "journal: %lld done of %lld",
            (long long)n[FERRY_J_DONE], (long long)n[FERRY_J_NONE]);
  ferry__journal_close(j);
}

/* ---- verify marks and repair --------------------------------------------------------------------------- */

/* Reads one item of stage "s" from the journal (read-only, everything: get_full). */
static void jget(const char *key, ferry_jrow *row) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(P("j.db"), 1, &err);
  FT_ASSERT(j, "journal: %s", err.message);
  FT_ASSERT(ferry__journal_get_full(j, "s", key, row, &err) == 0, "get %s: %s", key, err.message);
  ferry__journal_close(j);
}

/* The id of the newest run in the journal. */
static int64_t last_run_id(void) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(P("j.db"), 1, &err);
  FT_ASSERT(j, "journal: %s", err.message);
  json_t *runs = ferry__journal_runs(j, 1, &err);
  int64_t id = json_integer_value(json_object_get(json_array_get(runs, 0), "id"));
  json_decref(runs);
  ferry__journal_close(j);
  return id;
}

static size_t report_items(json_t *rep, size_t stage) {
  return json_array_size(json_object_get(json_array_get(json_object_get(rep, "stages"), stage), "items"));
}

static json_int_t report_total(json_t *rep, const char *name) {
  return json_integer_value(json_object_get(json_object_get(rep, "totals"), name));
}

#define REPAIR_SINK "'steps': ['create'], 'map_ids': true, 'losses': ['k000004']"

static void test_repair(void) {
  res r = run(one_stage("'count': 10", REPAIR_SINK, ""));
  FT_ASSERT(r.rc == 0 && r.done == 10, "run: rc %d done %lld: %s", r.rc, (long long)r.done, r.msg);
  /* the report of a run lists the done items, with their stored report and their ids */
  json_t *rep = load_json_file(P("report.json"));
  FT_ASSERT(report_items(rep, 0) == 10, "%zu items listed", report_items(rep, 0));
  json_t *it = report_item(rep, 0, "k000003");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "done") && !strcmp(jstr(it, "step"), "create") &&
                !strcmp(jstr(json_object_get(it, "report"), "target_id"), "t-k000003") &&
                !strcmp(dumps(json_object_get(it, "ids")), "[{\"kind\":\"file\",\"new\":\"f-k000003\",\"old\":"
                                                           "\"k000003\"},{\"kind\":\"record\",\"new\":"
                                                           "\"r-k000003\",\"old\":\"k000003\"}]"),
            "done item: %s", dumps(it));
  it = report_item(rep, 0, "k000004");
  FT_ASSERT(it && json_is_true(json_object_get(json_object_get(it, "report"), "adopted")) &&
                !strcmp(jstr(json_array_get(json_object_get(json_object_get(it, "report"), "losses"), 0), "kind"),
                        "tool"),
            "adopted item with a loss: %s", dumps(it));
  json_decref(rep);

  /* verify marks exactly the items that differ, with the message and the differences */
  r = run_mode(one_stage("'count': 10", "'mismatch': ['k000001', 'k000002', 'k000005']", ""), FERRY_MODE_VERIFY);
  FT_ASSERT(r.rc == FERRY_EMISMATCH, "verify: rc %d: %s", r.rc, r.msg);
  int64_t verify_run = last_run_id();
  ferry_jrow row;
  for (int k = 0; k < 10; k++) {
    char key[16];
    snprintf(key, sizeof key, "k%06d", k);
    jget(key, &row);
    int want = k == 1 || k == 2 || k == 5;
    FT_ASSERT(!!row.verify == want, "%s: verify mark %s", key, dumps(row.verify));
    FT_ASSERT(row.status == FERRY_J_DONE && row.run == verify_run, "%s: status %s run %lld (verify run %lld)", key,
              ferry__jstatus_name(row.status), (long long)row.run, (long long)verify_run);
    if (want) {
      FT_ASSERT(!strcmp(jstr(row.verify, "result"), "mismatch") && strstr(jstr(row.verify, "message"), "differs") &&
                    json_integer_value(json_object_get(row.verify, "run")) == verify_run &&
                    json_integer_value(json_object_get(row.verify, "at")) > 0 &&
                    json_array_size(json_object_get(row.verify, "differences")) == 2 &&
                    strstr(json_string_value(json_array_get(json_object_get(row.verify, "differences"), 0)),
                           "c_value"),
                "%s: mark %s", key, dumps(row.verify));
      char tid[20];
      snprintf(tid, sizeof tid, "t-%s", key);
      FT_ASSERT(!strcmp(jstr(row.report, "target_id"), tid), "the mark changed the stored report: %s",
                dumps(row.report));
    }
    ferry__jrow_clear(&row);
  }
  FT_ASSERT(has_line(P("sink.log"), "V k000002 step=create state={\"last_step\":\"create\",\"written\":\"k000002\"} "
                                    "repair=0"),
            "verify task: %s", slurp(P("sink.log")));
  /* a second verify finds k000001 equal again: its mark is cleared, the others stay */
  r = run_mode(one_stage("'count': 10", "'mismatch': ['k000002', 'k000005']", ""), FERRY_MODE_VERIFY);
  FT_ASSERT(r.rc == FERRY_EMISMATCH, "second verify: rc %d", r.rc);
  jget("k000001", &row);
  FT_ASSERT(!row.verify, "k000001 still marked");
  ferry__jrow_clear(&row);
  jget("k000000", &row);
  int64_t untouched_run = row.run, untouched_updated = row.updated;
  ferry__jrow_clear(&row);

  /* an older caller (struct_size without `repair`) gets a normal run even with the field set in memory */
  unlink(P("sink.log"));
  r = run_ex(one_stage("'count': 10", REPAIR_SINK, ""),
             (run_opts){.repair = 1, .struct_size = offsetof(ferry_run_opts, repair)});
  FT_ASSERT(r.rc == 0 && r.done == 0 && r.st[0].resumed == 10, "old struct_size: rc %d done %lld resumed %lld",
            r.rc, (long long)r.done, (long long)r.st[0].resumed);
  FT_ASSERT(count_lines(P("sink.log"), "W ") == 0, "a normal run wrote marked items");
  jget("k000002", &row);
  FT_ASSERT(row.verify, "a normal run cleared a mark");
  ferry__jrow_clear(&row);

  /* plan and verify refuse to repair */
  r = run_ex(one_stage("'count': 10", "", ""), (run_opts){.mode = FERRY_MODE_PLAN, .repair = 1});
  FT_ASSERT(r.rc == FERRY_EINVAL && strstr(r.msg, "repair"), "plan --repair: rc %d: %s", r.rc, r.msg);
  r = run_ex(one_stage("'count': 10", "", ""), (run_opts){.mode = FERRY_MODE_VERIFY, .repair = 1});
  FT_ASSERT(r.rc == FERRY_EINVAL, "verify --repair: rc %d: %s", r.rc, r.msg);

  /* the repair: exactly the marked items, with repair=1 and their recorded step and state */
  unlink(P("sink.log"));
  r = run_ex(one_stage("'count': 11", REPAIR_SINK, ""), (run_opts){.repair = 1});
  FT_ASSERT(r.rc == 0 && r.done == 2 && r.failed == 0, "repair: rc %d done %lld failed %lld: %s", r.rc,
            (long long)r.done, (long long)r.failed, r.msg);
  int64_t repair_run = last_run_id();
  const char *log = P("sink.log");
  FT_ASSERT(count_lines(log, "W ") == 2, "%d writes:\n%s", count_lines(log, "W "), slurp(log));
  for (int k = 2; k <= 5; k += 3) {
    char want[160];
    snprintf(want, sizeof want,
             "W k%06d attempt=1 step=create state={\"last_step\":\"create\",\"written\":\"k%06d\"} repair=1", k, k);
    FT_ASSERT(has_line(log, want), "not repaired with its step and state: %s\n%s", want, slurp(log));
    char key[16];
    snprintf(key, sizeof key, "k%06d", k);
    jget(key, &row);
    FT_ASSERT(row.status == FERRY_J_DONE && !row.verify && !row.error && row.run == repair_run,
              "%s after the repair: %s mark %s run %lld", key, ferry__jstatus_name(row.status), dumps(row.verify),
              (long long)row.run);
    ferry__jrow_clear(&row);
  }
  jget("k000000", &row);
  FT_ASSERT(row.run == untouched_run && row.updated == untouched_updated && !row.verify,
            "an item not selected for repair was written");
  ferry__jrow_clear(&row);
  jget("k000010", &row);
  FT_ASSERT(row.status == FERRY_J_NONE, "a new item was carried by a repair run");
  ferry__jrow_clear(&row);
  rep = load_json_file(P("report.json"));
  FT_ASSERT(json_is_true(json_object_get(rep, "repair")) && report_total(rep, "repaired") == 2 &&
                report_total(rep, "not_selected") == 9 && report_items(rep, 0) == 11,
            "repair report: %s", dumps(json_object_get(rep, "totals")));
  it = report_item(rep, 0, "k000005");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "done") && json_is_true(json_object_get(it, "repair")) &&
                json_array_size(json_object_get(it, "ids")) == 2 && !json_object_get(it, "verify"),
            "repaired item: %s", dumps(it));
  it = report_item(rep, 0, "k000000");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "not_selected") && !strcmp(jstr(it, "journal_status"), "done"),
            "item not selected: %s", dumps(it));
  it = report_item(rep, 0, "k000010");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "not_selected") && !strcmp(jstr(it, "journal_status"), "none"),
            "new item in a repair run: %s", dumps(it));
  json_decref(rep);

  /* nothing marked any more: the repair run says so and succeeds */
  r = run_ex(one_stage("'count': 10", REPAIR_SINK, ""), (run_opts){.repair = 1, .log = P("run.log")});
  FT_ASSERT(r.rc == 0 && r.done == 0, "empty repair: rc %d done %lld: %s", r.rc, (long long)r.done, r.msg);
  FT_ASSERT(has_line(P("run.log"), "nothing to repair"), "the empty repair does not say so:\n%s",
            slurp(P("run.log")));
  FT_ASSERT(count_lines(log, "W ") == 2, "the empty repair wrote");
}

static void test_repair_fail(void) {
  res r = run(one_stage("'count': 6", REPAIR_SINK, ""));
  FT_ASSERT(r.rc == 0 && r.done == 6, "run: %s", r.msg);
  r = run_mode(one_stage("'count': 6", "'mismatch': ['k000001', 'k000003', 'k000004']", ""), FERRY_MODE_VERIFY);
  FT_ASSERT(r.rc == FERRY_EMISMATCH, "verify: rc %d", r.rc);
  /* a failing repair: the item stays done, keeps its mark, the error is recorded; the run fails its items */
  unlink(P("sink.log"));
  r = run_ex(one_stage("'count': 6", REPAIR_SINK ", 'repair_fail': ['k000003']", ""), (run_opts){.repair = 1});
  FT_ASSERT(r.rc < 0 && r.rc != FERRY_EIO && r.rc != FERRY_EMISMATCH && r.done == 2 && r.failed == 1,
            "failing repair: rc %d done %lld failed %lld: %s", r.rc, (long long)r.done, (long long)r.failed, r.msg);
  int64_t repair_run = last_run_id();
  ferry_jrow row;
  jget("k000003", &row);
  FT_ASSERT(row.status == FERRY_J_DONE && row.verify && row.error && strstr(row.error, "repair of k000003") &&
                row.error_code == FERRY_EINVAL && row.run == repair_run && row.attempts == 1,
            "k000003 after a failed repair: %s mark %s error %s", ferry__jstatus_name(row.status), dumps(row.verify),
            row.error);
  FT_ASSERT(!strcmp(jstr(row.report, "target"), "repair refused"), "report of the failed repair: %s",
            dumps(row.report));
  ferry__jrow_clear(&row);
  json_t *rep = load_json_file(P("report.json"));
  json_t *it = report_item(rep, 0, "k000003");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "failed") && json_is_true(json_object_get(it, "repair")) &&
                !strcmp(jstr(it, "code"), "EINVAL") && strstr(jstr(it, "error"), "repair of k000003") &&
                json_object_get(it, "verify"),
            "failed repair in the report: %s", dumps(it));
  FT_ASSERT(report_total(rep, "repair_failed") == 1 && report_total(rep, "repaired") == 2, "totals %s",
            dumps(json_object_get(rep, "totals")));
  json_decref(rep);
  /* the next repair takes it again (its step and state as recorded) and clears the mark */
  unlink(P("sink.log"));
  r = run_ex(one_stage("'count': 6", REPAIR_SINK, ""), (run_opts){.repair = 1});
  FT_ASSERT(r.rc == 0 && r.done == 1, "second repair: rc %d done %lld: %s", r.rc, (long long)r.done, r.msg);
  FT_ASSERT(count_lines(P("sink.log"), "W ") == 1 && has_line(P("sink.log"), "W k000003 attempt=1 step=create "),
            "second repair writes:\n%s", slurp(P("sink.log")));
  jget("k000003", &row);
  FT_ASSERT(row.status == FERRY_J_DONE && !row.verify && !row.error, "k000003 after its repair");
  ferry__jrow_clear(&row);

  /* --limit applies to a repair as to a run; an interrupted repair (intent + mark) is a repair in any run */
  r = run_mode(one_stage("'count': 6", "'mismatch': ['k000000', 'k000002', 'k000005']", ""), FERRY_MODE_VERIFY);
  FT_ASSERT(r.rc == FERRY_EMISMATCH, "verify: rc %d", r.rc);
  unlink(P("sink.log"));
  r = run_ex(one_stage("'count': 6", REPAIR_SINK, ""), (run_opts){.repair = 1, .limit = 1});
  FT_ASSERT(r.rc == 0 && r.done == 1 && count_lines(P("sink.log"), "W k000000 ") == 1,
            "repair --limit 1: done %lld:\n%s", (long long)r.done, slurp(P("sink.log")));
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = ferry__journal_open(P("j.db"), 0, &err);
  FT_ASSERT(j, "journal: %s", err.message);
  json_t *state = J("{'last_step': 'create', 'written': 'k000002', 'half': true}");
  FT_ASSERT(ferry__journal_intent(j, "s", "k000002", "rewrite", state, 1, &err) == 0, "intent: %s", err.message);
  FT_ASSERT(ferry__journal_intent(j, "s", "k000001", "create", state, 1, &err) == 0, "intent: %s", err.message);
  json_decref(state);
  ferry__journal_close(j);
  unlink(P("sink.log"));
  r = run_ex(one_stage("'count': 6", REPAIR_SINK, ""), (run_opts){.repair = 1});
  FT_ASSERT(r.rc == 0 && r.done == 2, "repair after an interrupted one: done %lld: %s", (long long)r.done, r.msg);
  FT_ASSERT(has_line(P("sink.log"), "W k000002 attempt=1 step=rewrite state={\"half\":true,\"last_step\":"
                                    "\"create\",\"written\":\"k000002\"} repair=1") &&
                !has_line(P("sink.log"), "W k000001 "),
            "in doubt: a marked one is a repair, an unmarked one is not selected:\n%s", slurp(P("sink.log")));
  jget("k000001", &row);
  FT_ASSERT(row.status == FERRY_J_INTENT, "the unmarked in-doubt item was touched by the repair run");
  ferry__jrow_clear(&row);
  /* a normal run: the unmarked in-doubt item is an ordinary one (repair=0); nothing else is marked */
  unlink(P("sink.log"));
  r = run(one_stage("'count': 6", REPAIR_SINK, ""));
  FT_ASSERT(r.rc == 0 && r.done == 1 &&
                has_line(P("sink.log"), "W k000001 attempt=1 step=create state={\"half\":true,\"last_step\":"
                                        "\"create\",\"written\":\"k000002\"} repair=0"),
            "normal run: done %lld:\n%s", (long long)r.done, slurp(P("sink.log")));
}

/* The report of 100,000 items is written with memory flat: a run with the report file costs no more peak
 * memory than the same run without. Measured in a child process where AddressSanitizer keeps no
 * quarantine of freed memory (else peak RSS measures the quarantine). */
static long peak_rss_kb(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

static void test_report_memory(void) {
  if (!getenv("RT_MEMORY_CHILD")) {
    const char *asan = getenv("ASAN_OPTIONS");
    char *opts = ferry_asprintf("%s%squarantine_size_mb=0:thread_local_quarantine_size_kb=0", asan ? asan : "",
                                 asan && *asan ? ":" : "");
    pid_t pid = fork();
    FT_ASSERT(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
      setenv("ASAN_OPTIONS", opts, 1);
      setenv("RT_MEMORY_CHILD", "1", 1);
      execl("/proc/self/exe", "test_runtime", "report_memory", (char *)NULL);
      _exit(127);
    }
    free(opts);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    FT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the measuring child failed (status %d)", status);
    return;
  }
  const int n = 100000;
  const char *stage =
      "{'name': 's', 'concurrency': 16, 'source': {'plugin': 'rt-gen', 'options': {'count': %d}}, "
      "'sink': {'plugin': 'rt-sink', 'options': {'map_ids': true}}}";
  char st[512];
  snprintf(st, sizeof st, stage, n);
  res r = run(J("{'journal': '$T/a.db', 'stages': [%s]}", st));
  FT_ASSERT(r.rc == 0 && r.done == n, "run without report: rc %d done %lld", r.rc, (long long)r.done);
  long without = peak_rss_kb();
  r = run(J("{'journal': '$T/b.db', 'report': '$T/big.json', 'stages': [%s]}", st));
  FT_ASSERT(r.rc == 0 && r.done == n, "run with report: rc %d done %lld: %s", r.rc, (long long)r.done, r.msg);
  long with = peak_rss_kb();
  struct stat sb;
  FT_ASSERT(stat(P("big.json"), &sb) == 0, "no report");
  printf("peak RSS: %ld kB after the run without report, %ld kB after the run with a report of %d items "
         "(%lld bytes)\n", without, with, n, (long long)sb.st_size);
  /* an in-memory report of these items (each with its report object and two ids) takes well over 50 MB */
  FT_ASSERT(with - without < 20 * 1024, "writing the report grew the peak RSS by %ld kB", with - without);
  FT_ASSERT(sb.st_size > (off_t)n * 100, "the report is too small to hold every item: %lld bytes",
            (long long)sb.st_size);
  json_t *rep = load_json_file(P("big.json"));
  FT_ASSERT(report_items(rep, 0) == (size_t)n, "%zu items in the report", report_items(rep, 0));
  json_t *it = report_item(rep, 0, "k099999");
  FT_ASSERT(it && !strcmp(jstr(it, "status"), "done") && json_array_size(json_object_get(it, "ids")) == 2,
            "last item: %s", dumps(it));
  json_decref(rep);
}

/* ---- crash test ---------------------------------------------------------------------------------------- */

static uint64_t rng_state;
static uint64_t rnd(void) {
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* Runs argv[...] + config file in a child; returns the wait status. */
static int run_child(char **cmd, int ncmd, const char *config) {
  pid_t pid = fork();
  FT_ASSERT(pid >= 0, "fork: %s", strerror(errno));
  if (pid == 0) {
    char *args[16];
    int k = 0;
    for (int i = 0; i < ncmd && k < 12; i++) args[k++] = cmd[i];
    args[k++] = (char *)config;
    args[k] = NULL;
    int fd = open(P("child.out"), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
    }
    execv(args[0], args);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return status;
}

static void write_config(const char *path, int64_t count, int64_t kill_at, const char *where, int sync) {
  json_t *cfg =
      J("{'journal': '$T/j.db', 'report': '$T/report.json', 'plugin_path': ['%s'], "
        "'stages': [{'name': 'copy', 'concurrency': 4, "
        "'source': {'plugin': 'rt-gen', 'options': {'count': %lld}}, "
        "'sink': {'plugin': 'rt-sink', 'options': {'target': '$T/target.txt', 'log': '$T/sink.log', "
        "'kill_at': %lld, 'kill_where': '%s', 'sync': %s}}}]}",
        RT_PLUGIN_DIR, (long long)count, (long long)kill_at, where, sync ? "true" : "false");
  FT_ASSERT(json_dump_file(cfg, path, JSON_INDENT(1)) == 0, "cannot write %s", path);
  json_decref(cfg);
}

static void test_crash(int argc, char **argv) {
  FT_ASSERT(argc >= 1, "crash: give the command that runs a config (it gets the config path appended)");
  const char *seed = getenv("FERRY_TEST_SEED");
  rng_state = seed && *seed ? strtoull(seed, NULL, 0) : 20261121;
  if (!rng_state) rng_state = 1;
  const int64_t count = 400;
  const char *where[] = {"intent", "write", "done"};
  int kills = 0, rounds = 0;
  const char *cfg = P("crash.json");
  for (; rounds < 12; rounds++) {
    int64_t kill_at = 1 + (int64_t)(rnd() % 80);
    const char *w = where[rounds % 3];
    write_config(cfg, count, kill_at, w, (int)(rnd() % 2));
    int status = run_child(argv, argc, cfg);
    printf("round %d: kill at append %lld (%s): %s\n", rounds, (long long)kill_at, w,
           WIFSIGNALED(status) ? "killed" : "finished");
    if (WIFSIGNALED(status)) {
      FT_ASSERT(WTERMSIG(status) == SIGKILL, "round %d: child died of signal %d:\n%s", rounds,
                WTERMSIG(status), slurp(P("child.out")));
      kills++;
      continue;
    }
    FT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "round %d: child exit %d:\n%s", rounds,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(P("child.out")));
    break; /* finished without reaching the kill point */
  }
  FT_ASSERT(kills >= 3, "only %d kills happened", kills);
  write_config(cfg, count, 0, "write", 0);
  int status = run_child(argv, argc, cfg);
  FT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "final run failed:\n%s", slurp(P("child.out")));
  /* every key exactly once in the target */
  char *target = slurp(P("target.txt"));
  int *seen = calloc((size_t)count, sizeof *seen);
  int lines = 0;
  for (char *line = strtok(target, "\n"); line; line = strtok(NULL, "\n")) {
    lines++;
    FT_ASSERT(line[0] == 'k', "bad line in the target: %s", line);
    long k = atol(line + 1);
    FT_ASSERT(k >= 0 && k < count, "unknown key %s", line);
    seen[k]++;
  }
  for (int64_t k = 0; k < count; k++)
    FT_ASSERT(seen[k] == 1, "key k%06lld is %d times in the target (after %d kills)", (long long)k, seen[k],
              kills);
  FT_ASSERT(lines == count, "%d lines", lines);
  free(seen);
  free(target);
  FT_ASSERT(count_lines(P("sink.log"), "R ") >= 1, "no item was ever in doubt: the kills proved nothing");
  /* the journal says all done: one more run finds nothing to do */
  status = run_child(argv, argc, cfg);
  FT_ASSERT(WIFEXITED(status) && WEXITSTATUS(status) == 0, "check run failed");
  json_t *rep = load_json_file(P("report.json"));
  json_t *tot = json_object_get(rep, "totals");
  FT_ASSERT(json_integer_value(json_object_get(tot, "resumed")) == count &&
                json_integer_value(json_object_get(tot, "done")) == 0,
            "journal does not say all done: %s", dumps(tot));
  json_decref(rep);
  printf("crash test: %d kills in %d rounds, %d items reconciled, every key once\n", kills, rounds,
         count_lines(P("sink.log"), "R "));
}

/* ---- main ---------------------------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  FT_ASSERT(argc >= 2, "usage: test_runtime <case> [args]");
  setenv("FERRY_SEED", "42", 1);
  ferry_log_configure(FERRY_LOG_WARN, FERRY_LOG_TEXT, NULL);
  snprintf(T, sizeof T, "/tmp/ferry-rt-%s.XXXXXX", argv[1]);
  FT_ASSERT(mkdtemp(T), "mkdtemp: %s", strerror(errno));
  const char *c = argv[1];
  struct {
    const char *name;
    void (*fn)(void);
  } cases[] = {{"order", test_order},
               {"cycle", test_cycle},
               {"kinds", test_kinds},
               {"points", test_points},
               {"backpressure", test_backpressure},
               {"concurrency", test_concurrency},
               {"retry", test_retry},
               {"permanent", test_permanent},
               {"limit", test_limit},
               {"resume", test_resume},
               {"failed_step", test_failed_step},
               {"plan", test_plan},
               {"verify", test_verify},
               {"hooks", test_hooks},
               {"report", test_report},
               {"interrupt", test_interrupt},
               {"source_fail", test_source_fail},
               {"misuse", test_misuse},
               {"stall", test_stall},
               {"sync", test_sync},
               {"journal_off", test_journal_off},
               {"many", test_many},
               {"reuse", test_reuse},
               {"options_once", test_options_once},
               {"journal_fail", test_journal_fail},
               {"repair", test_repair},
               {"repair_fail", test_repair_fail},
               {"report_memory", test_report_memory},
               {"stats", test_stats}};
  int found = 0;
  if (!strcmp(c, "crash")) {
    test_crash(argc - 2, argv + 2);
    found = 1;
  }
  for (size_t i = 0; !found && i < sizeof cases / sizeof cases[0]; i++)
    if (!strcmp(cases[i].name, c)) {
      cases[i].fn();
      found = 1;
    }
  FT_ASSERT(found, "unknown case %s", c);
  /* this program links the core objects: the modules it opened bound to them, none brought in libferry */
  FT_ASSERT(ft_libferry_mapped() == 0, "%d libferry file(s) mapped: a second core in this process",
            ft_libferry_mapped());
  if (!getenv("FERRY_TEST_KEEP")) rm_rf(T);
  printf("runtime %s (%s plugins): ok\n", c, rt_plugin_mode());
  return 0;
}
