/* ferry: the command-line tool. A client of libferry's public API like any other program (ferry/runtime.h
 * for pipelines, plugins, settings and logging; ferry/journal.h for status and export-map): it includes no
 * internal header and links the shared libferry, so the plugin modules it opens share its one core. This
 * file only parses arguments and prints. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <ferry/ferry.h>
#include <ferry/journal.h>
#include <ferry/runtime.h>

#include "cli.h"

/* Exit codes (documented in --help, README and docs/cli.md). */
enum {
  EXIT_OK = 0,
  EXIT_FAILED_ITEMS = 1, /* run: some items failed (the others were done) */
  EXIT_USAGE = 2,        /* bad command line or configuration: nothing was done */
  EXIT_BLOCKED = 3,      /* plan: some items would be blocked */
  EXIT_MISMATCH = 4,     /* verify: the target differs from the source */
  EXIT_INTERRUPTED = 5,  /* stopped by a signal; run again to resume */
  EXIT_ERROR = 6         /* the run could not proceed (a source or stage failed, journal error, ...) */
};

static const char *prog = "ferry";

/* ---- small helpers (out of memory: a message and exit 6) ------------------------------------------------ */
static void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) {
    fprintf(stderr, "%s: out of memory (allocating %zu bytes)\n", prog, n);
    exit(6);
  }
  return q;
}

static char *xstrdup(const char *s) {
  size_t n = strlen(s) + 1;
  return memcpy(xrealloc(NULL, n), s, n);
}

static void strv_free(char **v) {
  for (size_t i = 0; v && v[i]; i++) free(v[i]);
  free(v);
}

/* A JSON value as compact text, secrets redacted (malloc'd). */
static char *json_text(json_t *v, size_t flags) {
  char *raw = json_dumps(v, flags);
  char *text = ferry_redact(raw ? raw : "null");
  free(raw);
  return text;
}

/* --log-format json: every message of the CLI on standard error is a JSON object on one line too. */
static int log_json;

/* {"ts", "level", <fields>} on standard error; `fields` stolen, secrets redacted. */
static void json_event(const char *level, json_t *fields) {
  char ts[32];
  time_t now = time(NULL);
  struct tm tm;
  gmtime_r(&now, &tm);
  strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
  json_t *o = json_pack("{s:s, s:s}", "ts", ts, "level", level);
  json_object_update(o, fields);
  json_decref(fields);
  char *text = json_text(o, JSON_COMPACT | JSON_REAL_PRECISION(12));
  fprintf(stderr, "%s\n", text);
  free(text);
  json_decref(o);
}

/* A message of the CLI itself: "ferry: <message>" or, in JSON log format, {"level", "msg"}. */
static void say(const char *level, const char *fmt, ...) FERRY_PRINTF(2, 3);
static void say(const char *level, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ferry_buf sb = {0};
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  sb.buf = xrealloc(NULL, (size_t)n + 1);
  va_start(ap, fmt);
  vsnprintf(sb.buf, (size_t)n + 1, fmt, ap);
  va_end(ap);
  if (log_json) {
    json_event(level, json_pack("{s:s}", "msg", sb.buf));
  } else {
    char *m = ferry_redact(sb.buf);
    fprintf(stderr, "%s: %s%s\n", prog, strcmp(level, "warn") ? "" : "warning: ", m);
    free(m);
  }
  free(sb.buf);
}

static const char usage_main[] =
    "ferry - move live workflow work (running instances, form records, files) between servers\n"
    "\n"
    "usage: ferry <command> [options]\n"
    "\n"
    "commands:\n"
    "  plan      check credentials, definitions, users, tables and files; report per item: would do /\n"
    "            blocked, and why; writes nothing but its report (not even the journal)\n"
    "  run       carry the items over; resumes where an interrupted run stopped (--limit 1 = canary);\n"
    "            --repair: carry again only the items the last verify found different\n"
    "  verify    compare what the journal says was done with the target; marks the items that differ\n"
    "            in the journal (for run --repair) and writes its report; never writes the targets\n"
    "  status    what the journal holds: per stage done, skipped, failed, in doubt;\n"
    "            --items: every item with its ids, target, losses and verify mark\n"
    "  export-map  the id map (old id -> new id, per kind) as CSV or JSON, for the cutover\n"
    "  report    --html FILE: one self-contained HTML page of a run, built from the journal\n"
    "            (verdict, stages, charts, every item, failures by cause, the id map as CSV)\n"
    "  journal   copy FROM TO: move a journal between SQLite and PostgreSQL (every item, id and run)\n"
    "  plugins   list the plugins ferry can load (--describe NAME: one plugin and its options)\n"
    "  version   versions of ferry, its plugin ABI and every library it uses\n"
    "\n"
    "`ferry <command> --help` describes each command's options.\n"
    "\n"
    "exit codes:\n"
    "  0  success\n"
    "  1  run: some items (or, with --repair, some repairs) failed; the others were done\n"
    "     (see the report or `ferry status`, fix, run again)\n"
    "  2  usage or configuration error: nothing was done\n"
    "  3  plan: some items are blocked\n"
    "  4  verify: the target differs from the source (the differing items are marked for run --repair)\n"
    "  5  interrupted: run again to resume\n"
    "  6  the run could not proceed (a source or a stage failed, journal error, the journal is in use\n"
    "     by another run or verify); status, export-map, report: the journal cannot be read;\n"
    "     --html: the page cannot be written\n"
    "  status: 1 some items failed, 5 some items are in doubt (none failed), 6 unreadable journal\n";

static const char usage_common[] =
    "  -c, --config FILE      configuration file (default ./ferry.json)\n"
    "      --journal FILE|URL journal: an SQLite file or postgresql://... (default: the config's\n"
    "                         \"journal\", else ./ferry-journal.db)\n"
    "      --plugin-path DIR  search plugins in DIR first (repeatable)\n"
    "  -v, --verbose          more log output (-vv: trace)\n"
    "  -q, --quiet            errors only\n"
    "      --log-format FMT   text (default) or json: every line on standard error a JSON object\n"
    "                         (log lines, progress, summary, errors; fields item, stage, code)\n"
    "  -h, --help             this text\n";

static const char usage_pipeline[] =
    "      --limit N          at most N items per stage (--limit 1: one canary item)\n"
    "      --stage NAME       only this stage (repeatable)\n"
    "      --report FILE      write the JSON report there (default: the config's \"report\")\n"
    "      --progress MODE    auto (default: redrawn on a terminal, plain lines otherwise), tty, plain, none\n"
    "                         (with --log-format json: JSON lines)\n"
    "      --html FILE        also write the HTML report there (as `ferry report --html`)\n";

typedef struct cli {
  const char *command;
  const char *format; /* export-map: csv (default) or json */
  const char *kind;   /* export-map: only this kind */
  const char *output; /* export-map: the file (default stdout) */
  const char *html;   /* plan, run, verify, report: the HTML report */
  int64_t run_id;     /* report: --run */
  int repair, items, replace;
  const char *worker; /* run: --worker NAME */
  double lease_s;     /* run: --lease SECONDS (0 = default) */
  char **args;        /* journal: the words after the command (copy FROM TO) */
  size_t nargs;
  const char *config;
  const char *journal;
  const char *report;
  const char *describe;
  const char *progress;
  int64_t limit;
  int verbose, quiet, json_log, json_out;
  char **plugin_path;
  size_t npath;
  char **stages;
  size_t nstages;
} cli;

static void strv_push(char ***v, size_t *n, const char *s) {
  *v = xrealloc(*v, (*n + 2) * sizeof(char *));
  (*v)[(*n)++] = xstrdup(s);
  (*v)[*n] = NULL;
}

static void print_command_help(const char *cmd) {
  if (!strcmp(cmd, "plan") || !strcmp(cmd, "run") || !strcmp(cmd, "verify")) {
    const char *what =
        !strcmp(cmd, "plan")
            ? "Reads the sources and the targets and reports, per stage and per item, what a run\n"
              "would do or why it is blocked. Writes nothing but its report (--report): not the\n"
              "targets, not the journal.\n"
        : !strcmp(cmd, "run")
            ? "Carries the items over, stage by stage. Every step is journaled; running the\n"
              "same configuration again skips what is done and reconciles what is in doubt.\n"
              "The report (--report) lists every item the run handled, with its ids.\n"
              "\n"
              "With --repair, carries only the items the journal holds as done and the last\n"
              "`ferry verify` found different (their verify mark): the sink writes them again onto\n"
              "the target objects the journal recorded. A repaired item is done again and its mark\n"
              "is cleared; a failed repair keeps the mark (exit code 1). Every other item is left\n"
              "untouched and reported \"not selected\". Works with --limit and --stage.\n"
              "\n"
              "With --worker NAME, this run is one of several workers sharing a PostgreSQL journal\n"
              "(on one machine or several, same configuration): each item is claimed in the journal\n"
              "with a lease (--lease, default 30 s, renewed every second) so that exactly one live\n"
              "worker carries it; the others skip it, or wait and look again. A worker killed\n"
              "mid-run leaves its claims to expire; another worker, or the same one restarted,\n"
              "then reconciles its in-doubt items as a resume does. With n live workers each uses\n"
              "1/n of every stage's rate and max(1, concurrency/n). A plain run (no --worker) is\n"
              "refused while workers hold the journal, and the other way round.\n"
            : "Compares, for every item the journal says is done, the target with the source.\n"
              "Writes nothing to the targets. Writes the journal: each item that differs gets a\n"
              "verify mark (its message and differences), an item found equal loses its mark, and\n"
              "the verify is recorded as a run of mode \"verify\"; `ferry run --repair` then carries\n"
              "exactly the marked items again. Items the journal does not hold as done are reported\n"
              "\"not migrated\" and not touched. Like a run, verify takes the journal's run lock:\n"
              "it cannot run while a `ferry run` uses the journal (and the other way round).\n"
              "The report (--report) lists every verified item with its result.\n";
    printf("usage: ferry %s [options]\n\n%s\noptions:\n%s%s%s", cmd, what, usage_common, usage_pipeline,
           !strcmp(cmd, "run") ? "      --repair           carry only the items verify marked as different\n"
                                 "      --worker NAME      be one of several workers on a PostgreSQL journal\n"
                                 "                         (NAME: 1-64 of A-Z a-z 0-9 . _ -, one process each)\n"
                                 "      --lease SECONDS    with --worker: how long a claim lasts unrenewed\n"
                                 "                         (default 30; must exceed the longest single call)\n"
                               : "");
  } else if (!strcmp(cmd, "status")) {
    printf("usage: ferry status [--items [--stage NAME]] [--json] [options]\n\n"
           "Prints what the journal holds, per stage: done, skipped, failed, in doubt, and the\n"
           "failed and in-doubt items. With --items, every item instead: stage, key, status, step,\n"
           "attempts, error, verify mark, target id, adopted, losses and its ids (kind old -> new);\n"
           "one line per item, cut at 100 columns (--json has every field). Reads only the journal\n"
           "(also while a run uses it).\n"
           "\n"
           "exit codes: 0 nothing failed and nothing in doubt; 1 some items failed; 5 some items are\n"
           "in doubt and none failed (an earlier run stopped in the middle of them: `ferry run`\n"
           "resumes); 6 the journal cannot be read; 2 usage error. With --items, of the items listed.\n"
           "\noptions:\n%s"
           "      --items            every item of the journal\n"
           "      --stage NAME       with --items: only this stage (repeatable)\n"
           "      --json             machine-readable output (with --items: an array of items)\n",
           usage_common);
  } else if (!strcmp(cmd, "export-map")) {
    printf("usage: ferry export-map [--format csv|json] [--kind KIND] [--stage NAME] [--output FILE]\n"
           "                        [options]\n\n"
           "Writes the journal's id map, what the cutover needs: for every object a run created on a\n"
           "target, its kind (\"process\", \"activity\", \"record\", \"file\", ...), its id on the source\n"
           "(old_id) and on the target (new_id), the stage and key of the item that created it, and\n"
           "when (created, ISO 8601 UTC). CSV has a header row and RFC 4180 quoting (CRLF line ends);\n"
           "JSON is an array of objects with the same fields. Kinds starting with '_' are a plugin's\n"
           "own bookkeeping and are left out unless --kind names them. Reads the journal read-only\n"
           "(also while a run uses it).\n\noptions:\n%s"
           "      --format FMT       csv (default) or json\n"
           "      --kind KIND        only ids of this kind\n"
           "      --stage NAME       only ids created by the items of this stage (repeatable)\n"
           "      --output FILE      write to FILE (replaced at the end; default: standard output)\n",
           usage_common);
  } else if (!strcmp(cmd, "report")) {
    printf("usage: ferry report --html FILE [--run ID] [options]\n\n"
           "Writes one self-contained HTML page (no network: inline style, script and SVG only) of a\n"
           "run, built from the journal, so it can be made again at any time: the verdict (all equal,\n"
           "N differ, N failed, N blocked), the configuration's stages, per stage the journal's counts\n"
           "and the run's counts and timing, charts (items per second, outcomes, target call latency,\n"
           "retries over time), every item in a searchable, sortable table (source id, target id,\n"
           "record id, definition, open activities, assignees, adopted, start-path changes, losses),\n"
           "the failures and blocks grouped by cause with what to do, and the id map as a CSV\n"
           "download. Secrets of the configuration never reach the page. The table is capped at %d\n"
           "items and the id map at %d ids (the page says so). Reads the journal read-only.\n\noptions:\n%s"
           "      --html FILE        the page to write (replaced only once complete)\n"
           "      --run ID           this run (default: the newest one that ended; the page shows its id)\n",
           CLI_HTML_MAX_ROWS, CLI_HTML_MAX_IDS, usage_common);
  } else if (!strcmp(cmd, "plugins")) {
    printf("usage: ferry plugins [--describe NAME] [options]\n\nLists the plugins built in and those found in "
           "the plugin path\n(--plugin-path, config \"plugin_path\", $FERRY_PLUGIN_PATH, the install "
           "directory).\n\noptions:\n"
           "      --describe NAME    one plugin: kinds, items, hook points and every option\n"
           "      --json             machine-readable output\n%s",
           usage_common);
  } else if (!strcmp(cmd, "journal")) {
    printf("usage: ferry journal copy FROM TO [--replace]\n\n"
           "Copies the journal FROM into the journal TO; each is an SQLite file or a PostgreSQL URL\n"
           "(postgresql://user@host:port/db): a migration started with a journal on a laptop goes on\n"
           "with one on a server, or the other way round. Every item (status, step, state, attempts,\n"
           "error, report, verify mark, run), the whole id map and every run (same ids, summaries) are\n"
           "copied; FROM is only read. TO is created if needed and locked like a run (no run may be\n"
           "using it). A TO that holds anything is refused unless --replace. Prints what it copied.\n"
           "Exit: 0 copied; 2 usage error; 6 a journal cannot be read or written, or TO is not empty.\n"
           "\noptions:\n"
           "      --replace          delete what TO holds first\n"
           "  -q, --quiet            print nothing when the copy succeeds\n"
           "  -h, --help             this help\n");
  } else if (!strcmp(cmd, "version")) {
    printf("usage: ferry version\n\nPrints the versions of ferry and its plugin ABI, then every library it uses with\n"
           "its version and file: libuv, jansson, libcurl, libpq, SQLite, libltdl (the version of its\n"
           "library file: it has no version function), and OpenSSL and libmariadb when they are loaded.\n");
  } else {
    fputs(usage_main, stdout);
  }
}

/* A whole number >= 1 into *out; else says "<what> >= 1 (got "ARG")" and returns -1. */
static int positive_arg(const char *what, const char *arg, int64_t *out) {
  char *end;
  long long v = strtoll(arg, &end, 10);
  if (*end || end == arg || v < 1) {
    say("error", "%s >= 1 (got \"%s\")", what, arg);
    return -1;
  }
  *out = v;
  return 0;
}

static int parse_args(int argc, char **argv, cli *c) {
  enum { O_JOURNAL = 256, O_REPORT, O_LIMIT, O_STAGE, O_PLUGIN_PATH, O_PROGRESS, O_LOG_FORMAT, O_DESCRIBE,
         O_JSON, O_REPAIR, O_ITEMS, O_FORMAT, O_KIND, O_OUTPUT, O_HTML, O_RUN, O_REPLACE, O_WORKER, O_LEASE };
  static const struct option longopts[] = {
      {"config", required_argument, 0, 'c'},      {"journal", required_argument, 0, O_JOURNAL},
      {"report", required_argument, 0, O_REPORT}, {"limit", required_argument, 0, O_LIMIT},
      {"stage", required_argument, 0, O_STAGE},   {"plugin-path", required_argument, 0, O_PLUGIN_PATH},
      {"progress", required_argument, 0, O_PROGRESS}, {"log-format", required_argument, 0, O_LOG_FORMAT},
      {"describe", required_argument, 0, O_DESCRIBE}, {"json", no_argument, 0, O_JSON},
      {"repair", no_argument, 0, O_REPAIR},       {"items", no_argument, 0, O_ITEMS},
      {"format", required_argument, 0, O_FORMAT}, {"kind", required_argument, 0, O_KIND},
      {"output", required_argument, 0, O_OUTPUT}, {"html", required_argument, 0, O_HTML},
      {"run", required_argument, 0, O_RUN},      {"replace", no_argument, 0, O_REPLACE},
      {"worker", required_argument, 0, O_WORKER}, {"lease", required_argument, 0, O_LEASE},
      {"verbose", no_argument, 0, 'v'},           {"quiet", no_argument, 0, 'q'},
      {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
  int opt;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":c:vqh", longopts, NULL)) != -1) {
    switch (opt) {
      case 'c': c->config = optarg; break;
      case O_JOURNAL: c->journal = optarg; break;
      case O_REPORT: c->report = optarg; break;
      case O_LIMIT:
        if (positive_arg("--limit takes a whole number", optarg, &c->limit)) return -1;
        break;
      case O_STAGE: strv_push(&c->stages, &c->nstages, optarg); break;
      case O_PLUGIN_PATH: strv_push(&c->plugin_path, &c->npath, optarg); break;
      case O_PROGRESS:
        if (strcmp(optarg, "auto") && strcmp(optarg, "tty") && strcmp(optarg, "plain") && strcmp(optarg, "none")) {
          say("error", "--progress takes auto, tty, plain or none (got \"%s\")", optarg);
          return -1;
        }
        c->progress = optarg;
        break;
      case O_LOG_FORMAT:
        if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
          say("error", "--log-format takes text or json (got \"%s\")", optarg);
          return -1;
        }
        c->json_log = !strcmp(optarg, "json");
        break;
      case O_DESCRIBE: c->describe = optarg; break;
      case O_JSON: c->json_out = 1; break;
      case O_REPAIR: c->repair = 1; break;
      case O_ITEMS: c->items = 1; break;
      case O_FORMAT:
        if (strcmp(optarg, "csv") && strcmp(optarg, "json")) {
          say("error", "--format takes csv or json (got \"%s\")", optarg);
          return -1;
        }
        c->format = optarg;
        break;
      case O_KIND: c->kind = optarg; break;
      case O_OUTPUT: c->output = optarg; break;
      case O_HTML: c->html = optarg; break;
      case O_REPLACE: c->replace = 1; break;
      case O_WORKER: c->worker = optarg; break;
      case O_LEASE: {
        char *end;
        double v = strtod(optarg, &end);
        if (*end || end == optarg || !(v >= 1) || v > 86400) {
          say("error", "--lease takes a number of seconds from 1 to 86400 (got \"%s\")", optarg);
          return -1;
        }
        c->lease_s = v;
        break;
      }
      case O_RUN:
        if (positive_arg("--run takes a run id, a whole number", optarg, &c->run_id)) return -1;
        break;
      case 'v': c->verbose++; break;
      case 'q': c->quiet = 1; break;
      case 'h': print_command_help(c->command ? c->command : ""); exit(EXIT_OK);
      case ':':
        say("error", "option %s needs a value (see `ferry %s --help`)", argv[optind - 1],
                c->command ? c->command : "");
        return -1;
      default:
        say("error", "unknown option %s (see `ferry %s --help`)", argv[optind - 1],
                c->command ? c->command : "");
        return -1;
    }
  }
  if (c->command && !strcmp(c->command, "journal"))
    while (optind < argc) strv_push(&c->args, &c->nargs, argv[optind++]);
  if (c->replace && (!c->command || strcmp(c->command, "journal"))) {
    say("error", "--replace is an option of `ferry journal copy` only");
    return -1;
  }
  if (optind < argc) {
    say("error", "unexpected argument \"%s\" (see `ferry %s --help`)", argv[optind],
            c->command ? c->command : "");
    return -1;
  }
  /* the options of the newer commands are refused where they mean nothing */
  const char *cmd = c->command ? c->command : "";
  if (c->repair && strcmp(cmd, "run")) {
    say("error",
        "--repair is an option of `ferry run` only: a %s does not repair (the items a repair would take "
        "are those with a verify mark: `ferry status --items` shows them)",
        cmd);
    return -1;
  }
  if ((c->worker || c->lease_s) && strcmp(cmd, "run")) {
    say("error", "--%s is an option of `ferry run` only", c->worker ? "worker" : "lease");
    return -1;
  }
  if (c->lease_s && !c->worker) {
    say("error", "--lease goes with --worker NAME (see `ferry run --help`)");
    return -1;
  }
  if (c->worker && c->html) {
    say("error", "--html does not go with --worker (the journal's newest run may be another worker's): make "
        "the page of a worker's run with `ferry report --html FILE --run ID` (`ferry status` lists the runs)");
    return -1;
  }
  if (c->worker && c->repair) {
    say("error", "--worker and --repair do not go together: repair with one plain `ferry run --repair`");
    return -1;
  }
  if (c->items && strcmp(cmd, "status")) {
    say("error", "--items is an option of `ferry status`");
    return -1;
  }
  if ((c->format || c->kind || c->output) && strcmp(cmd, "export-map")) {
    say("error", "--%s is an option of `ferry export-map`",
            c->format ? "format" : c->kind ? "kind" : "output");
    return -1;
  }
  if (c->html && strcmp(cmd, "plan") && strcmp(cmd, "run") && strcmp(cmd, "verify") && strcmp(cmd, "report")) {
    say("error", "--html is an option of `ferry report`, `plan`, `run` and `verify`");
    return -1;
  }
  if (c->run_id && strcmp(cmd, "report")) {
    say("error", "--run is an option of `ferry report`");
    return -1;
  }
  if (!strcmp(cmd, "report") && !c->html) {
    say("error", "`ferry report` needs --html FILE (see `ferry report --help`)");
    return -1;
  }
  if (c->nstages && !strcmp(cmd, "status") && !c->items) {
    say("error", "--stage goes with --items in `ferry status` (see `ferry status --help`)");
    return -1;
  }
  return 0;
}

static const char *default_config(const cli *c) { return c->config ? c->config : "ferry.json"; }

static void print_error(const char *what, const ferry_error *e) {
  if (log_json) {
    ferry_buf msg = {0};
    if (what) ferry_buf_addf(&msg, "%s: ", what);
    ferry_buf_add(&msg, e->message ? e->message : ferry_strerror(e->code));
    json_t *f = json_pack("{s:s, s:s}", "event", "error", "msg", msg.buf);
    if (e->code) json_object_set_new(f, "code", json_string(ferry_err_name(e->code)));
    if (e->detail) json_object_set_new(f, "detail", json_string(e->detail));
    json_event("error", f);
    free(msg.buf);
    return;
  }
  char *m = ferry_redact(e->message ? e->message : ferry_strerror(e->code));
  say("error", "%s%s%s", what ? what : "", what ? ": " : "", m);
  free(m);
  if (e->detail) {
    char *d = ferry_redact(e->detail);
    fprintf(stderr, "  detail: %s\n", d);
    free(d);
  }
}

/* ---- plan / run / verify -------------------------------------------------------------------------------- */
static ferry_runtime *signal_rt;
static void on_signal(uv_signal_t *h, int signum) {
  (void)signum;
  if (signal_rt) ferry_runtime_interrupt(signal_rt);
  if (!uv_is_closing((uv_handle_t *)h)) {
    /* a second signal kills at once */
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
  }
}

/* How a stage ended, for the summary: "finished", "interrupted" (also a stage the interrupt kept from
 * starting: run again to resume), "not_run" (a stage before it failed) or "failed". */
static const char *stage_state(const ferry_stage_summary *s, int interrupted) {
  if (!s->status) return "finished";
  if (s->status == FERRY_ECANCELED) return interrupted ? "interrupted" : "not_run";
  return "failed";
}

/* The summary table (text) or one JSON object per stage and one for the totals (JSON log format). */
static void print_summary(ferry_mode mode, const ferry_run_summary *sum, int exit_code) {
  const char *verb = mode == FERRY_MODE_PLAN ? "plan" : mode == FERRY_MODE_VERIFY ? "verify" : "run";
  int interrupted = exit_code == EXIT_INTERRUPTED;
  const char *ok = mode == FERRY_MODE_PLAN ? "would do" : mode == FERRY_MODE_VERIFY ? "equal" : "done";
  /* verify: items that differ and items the journal holds as not migrated are both not equal on the target;
   * the closing message ("N item(s) differ and M are not migrated") tells them apart */
  const char *bad = mode == FERRY_MODE_PLAN ? "blocked" : mode == FERRY_MODE_VERIFY ? "unequal" : "failed";
  if (log_json) {
    for (size_t i = 0; i < sum->nstages; i++) {
      const ferry_stage_summary *s = &sum->stages[i];
      const char *state = stage_state(s, interrupted);
      json_t *f = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:f}", "event", "summary", "command", verb,
                            "stage", s->name, "state", state, "done", (json_int_t)s->done, "skipped",
                            (json_int_t)(s->skipped + s->resumed), "failed", (json_int_t)s->failed, "retried",
                            (json_int_t)s->retried, "seconds", (double)(long long)(s->seconds * 1000) / 1000);
      json_object_set_new(f, "total", s->total >= 0 ? json_integer(s->total) : json_null());
      if (s->status) json_object_set_new(f, "code", json_string(ferry_err_name(s->status)));
      ferry_buf m = {0};
      ferry_buf_addf(&m, "%s summary: stage %s: %s %lld, skipped %lld, %s %lld, retried %lld, %.2f s%s%s", verb, s->name,
              ok, (long long)s->done, (long long)(s->skipped + s->resumed), bad, (long long)s->failed,
              (long long)s->retried, s->seconds, strcmp(state, "finished") ? ": " : "",
              !strcmp(state, "interrupted") ? "interrupted, run again to resume"
              : !strcmp(state, "finished")  ? ""
              : !strcmp(state, "not_run")   ? "not run"
                                            : "stage failed");
      json_object_set_new(f, "msg", json_string(m.buf));
      free(m.buf);
      json_event("info", f);
    }
    ferry_buf m = {0};
    ferry_buf_addf(&m, "%s summary: %s %lld, skipped %lld, %s %lld in %.2f s%s", verb, ok, (long long)sum->done,
            (long long)sum->skipped, bad, (long long)sum->failed, sum->seconds,
            interrupted ? "; interrupted, run again to resume" : "");
    json_event(interrupted ? "warn" : "info",
               json_pack("{s:s, s:s, s:b, s:I, s:I, s:I, s:f, s:i, s:s}", "event", "summary", "command", verb,
                         "totals", 1, "done", (json_int_t)sum->done, "skipped", (json_int_t)sum->skipped,
                         "failed", (json_int_t)sum->failed, "seconds", (double)(long long)(sum->seconds * 1000) / 1000,
                         "exit_code", exit_code,
                         "msg", m.buf));
    free(m.buf);
    return;
  }
  fprintf(stderr, "\n%s summary:\n", verb);
  /* 80 columns with the longest tag for a stage name of up to 16 characters */
  fprintf(stderr, "  %-16s %8s %8s %8s %8s %8s\n", "stage", ok, mode == FERRY_MODE_PLAN ? "skip" : "skipped", bad,
          "retried", "seconds");
  for (size_t i = 0; i < sum->nstages; i++) {
    const ferry_stage_summary *s = &sum->stages[i];
    const char *state = stage_state(s, interrupted);
    fprintf(stderr, "  %-16s %8lld %8lld %8lld %8lld %8.2f%s\n", s->name, (long long)s->done,
            (long long)(s->skipped + s->resumed), (long long)s->failed, (long long)s->retried, s->seconds,
            !strcmp(state, "interrupted") ? "  (interrupted)"
            : !strcmp(state, "not_run")   ? "  (not run)"
            : !strcmp(state, "failed")    ? "  (stage failed)"
                                          : "");
  }
  fprintf(stderr, "  %-16s %8lld %8lld %8lld %8s %8.2f\n", "total", (long long)sum->done,
          (long long)sum->skipped, (long long)sum->failed, "", sum->seconds);
  if (interrupted) fprintf(stderr, "interrupted, run again to resume (exit code %d)\n", EXIT_INTERRUPTED);
}

/* The id of the journal's newest run (0: none, or no journal). */
static int64_t last_run_id(const cli *c, json_t *settings) {
  const char *jp = c->journal ? c->journal : json_string_value(json_object_get(settings, "journal"));
  ferry_error err = FERRY_ERROR_INIT;
  ferry_journal *j = jp ? ferry_journal_open_readonly(jp, &err) : NULL;
  json_t *runs = j ? ferry_journal_runs(j, 1, &err) : NULL;
  int64_t id = (int64_t)json_integer_value(json_object_get(json_array_get(runs, 0), "id"));
  json_decref(runs);
  ferry_journal_close(j);
  ferry_error_clear(&err);
  return id;
}

static int cmd_pipeline(cli *c, ferry_mode mode) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_runtime_opts ro = {.struct_size = sizeof ro,
                           .plugin_path = (const char *const *)c->plugin_path,
                           .journal_path = c->journal};
  ferry_runtime *rt = ferry_runtime_new(&ro, &err);
  if (!rt) {
    print_error(NULL, &err);
    ferry_error_clear(&err);
    return EXIT_ERROR;
  }
  if (ferry_runtime_load_file(rt, default_config(c), &err) < 0) {
    print_error(NULL, &err);
    ferry_error_clear(&err);
    ferry_runtime_free(rt);
    return EXIT_USAGE;
  }
  /* The config's "log_level" applies when the command line chose none (-v, -q). */
  json_t *settings = ferry_runtime_settings(rt); /* borrowed */
  int level = ferry_log_level_parse(json_string_value(json_object_get(settings, "log_level")));
  if (level >= 0 && !c->verbose && !c->quiet)
    ferry_log_configure((ferry_log_level)level, c->json_log ? FERRY_LOG_JSON : FERRY_LOG_TEXT, stderr);
  int progress = 1;
  const char *pm = c->progress ? c->progress : "auto";
  if (!strcmp(pm, "none") || c->quiet) progress = 0;
  else if (!strcmp(pm, "tty") || (!strcmp(pm, "auto") && isatty(STDERR_FILENO))) progress = 2;
  /* plan --html: the page is made from the plan's JSON report (a plan writes no journal) */
  char plan_report[64] = "";
  const char *report_path = c->report ? c->report : json_string_value(json_object_get(settings, "report"));
  if (c->html && mode == FERRY_MODE_PLAN && !report_path) {
    snprintf(plan_report, sizeof plan_report, "/tmp/ferry-plan-XXXXXX");
    int fd = mkstemp(plan_report);
    if (fd < 0) {
      say("error", "cannot create a temporary file for the plan's report: %s", strerror(errno));
      ferry_runtime_free(rt);
      return EXIT_ERROR;
    }
    close(fd);
    report_path = plan_report;
  }
  /* run, verify --html: the page shows the run this command records, the first newer than this one */
  int64_t run_before = c->html && mode != FERRY_MODE_PLAN ? last_run_id(c, settings) : 0;
  ferry_run_opts opts = {.struct_size = sizeof opts,
                         .mode = mode,
                         .limit = c->limit,
                         .stages = (const char *const *)c->stages,
                         .progress = progress,
                         .report_path = plan_report[0] ? plan_report : c->report,
                         .repair = c->repair,
                         .worker = c->worker,
                         .lease_s = c->lease_s};
  uv_signal_t sigint, sigterm;
  uv_loop_t *loop = ferry_runtime_loop(rt);
  signal_rt = rt;
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  uv_unref((uv_handle_t *)&sigint);
  uv_unref((uv_handle_t *)&sigterm);

  ferry_run_summary sum;
  memset(&sum, 0, sizeof sum);
  int rc = ferry_runtime_run(rt, &opts, &sum, &err);

  uv_close((uv_handle_t *)&sigint, NULL);
  uv_close((uv_handle_t *)&sigterm, NULL);
  uv_run(loop, UV_RUN_NOWAIT);
  signal_rt = NULL;

  int exit_code = EXIT_OK;
  if (rc < 0) {
    switch (rc) {
      case FERRY_EBLOCKED: exit_code = EXIT_BLOCKED; break;
      case FERRY_EMISMATCH: exit_code = EXIT_MISMATCH; break;
      case FERRY_ECANCELED: exit_code = EXIT_INTERRUPTED; break;
      case FERRY_ECONFIG: exit_code = EXIT_USAGE; break;
      default: exit_code = sum.failed > 0 && rc != FERRY_EIO ? EXIT_FAILED_ITEMS : EXIT_ERROR; break;
    }
  }
  if (!c->quiet && sum.nstages) print_summary(mode, &sum, exit_code);
  if (rc < 0 && (err.code || err.message)) print_error(NULL, &err);
  ferry_error_clear(&err);
  if (c->html && exit_code != EXIT_USAGE) {
    /* run, verify: from the journal (the run just recorded); plan: from its report */
    cli_html_opts ho = {.html_path = c->html, .settings = settings};
    json_t *plan = NULL;
    const char *jp = c->journal ? c->journal : json_string_value(json_object_get(settings, "journal"));
    if (mode == FERRY_MODE_PLAN) {
      json_error_t je;
      plan = report_path ? json_load_file(report_path, 0, &je) : NULL;
      if (!plan)
        ferry_error_set(&err, FERRY_EIO, "cannot read the plan's report %s: %s", report_path ? report_path : "-",
                        report_path ? je.text : "none was written");
      ho.report = plan;
    } else {
      ho.journal_path = jp;
      ho.run_id = last_run_id(c, settings);
      if (ho.run_id <= run_before)
        ferry_error_set(&err, FERRY_ENOENT, "not written: the %s recorded no run in the journal %s",
                        mode == FERRY_MODE_VERIFY ? "verify" : "run", jp);
    }
    if (!err.code && cli_html_report(&ho, &err) == 0 && !c->quiet)
      say("info", "HTML report written to %s", c->html);
    if (err.code) {
      print_error("HTML report", &err);
      if (exit_code == EXIT_OK) exit_code = EXIT_ERROR;
    }
    json_decref(plan);
    ferry_error_clear(&err);
  }
  if (plan_report[0]) unlink(plan_report);
  ferry_runtime_free(rt);
  return exit_code;
}

/* ---- report --------------------------------------------------------------------------------------------- */
static int cmd_report(cli *c) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_runtime *rt = NULL;
  json_t *settings = NULL; /* borrowed from rt */
  /* The configuration, when there is one, is loaded as a run would load it: its secrets are then known and
   * redacted from every text of the page. */
  if (c->config || access("ferry.json", F_OK) == 0) {
    ferry_runtime_opts ro = {.struct_size = sizeof ro, .plugin_path = (const char *const *)c->plugin_path,
                             .journal_path = c->journal};
    rt = ferry_runtime_new(&ro, &err);
    if (!rt || ferry_runtime_load_file(rt, default_config(c), &err) < 0) {
      print_error(NULL, &err);
      ferry_error_clear(&err);
      ferry_runtime_free(rt);
      return rt ? EXIT_USAGE : EXIT_ERROR;
    }
    settings = ferry_runtime_settings(rt);
  }
  const char *jp = c->journal ? c->journal
                   : settings ? json_string_value(json_object_get(settings, "journal"))
                              : "ferry-journal.db";
  cli_html_opts ho = {.html_path = c->html, .journal_path = jp, .run_id = c->run_id, .settings = settings};
  int rc = cli_html_report(&ho, &err), exit_code = EXIT_OK;
  if (rc < 0) {
    print_error(NULL, &err);
    exit_code = rc == FERRY_EINVAL && c->run_id ? EXIT_USAGE : EXIT_ERROR;
  } else if (!c->quiet) {
    say("info", "HTML report written to %s", c->html);
  }
  ferry_error_clear(&err);
  ferry_runtime_free(rt);
  return exit_code;
}

/* ---- status --------------------------------------------------------------------------------------------- */
/* The exit code of `ferry status` (documented in --help and docs/cli.md): 1 when items failed, else 5 when
 * items are in doubt (an earlier run stopped in the middle of them: `ferry run` resumes), else 0. */
static int status_exit(int64_t failed, int64_t in_doubt) {
  return failed ? EXIT_FAILED_ITEMS : in_doubt ? EXIT_INTERRUPTED : EXIT_OK;
}

/* The journal of the command line: --journal, else the configuration's (ferry.json when present), else the
 * default. NULL with err set when the configuration cannot be read. */
static char *journal_path_for(const cli *c, ferry_error *err) {
  if (c->journal) return xstrdup(c->journal);
  if (c->config || access("ferry.json", F_OK) == 0) {
    json_t *set = ferry_config_settings(default_config(c), err);
    if (!set) return NULL;
    char *p = xstrdup(json_string_value(json_object_get(set, "journal")));
    json_decref(set);
    return p;
  }
  return xstrdup("ferry-journal.db");
}

/* Opens the journal of the command line read-only; NULL with *exit_code set (and the error printed). */
static ferry_journal *open_journal_ro(const cli *c, char **path_out, int *exit_code) {
  ferry_error err = FERRY_ERROR_INIT;
  char *path = journal_path_for(c, &err);
  if (!path) {
    print_error(NULL, &err);
    ferry_error_clear(&err);
    *exit_code = EXIT_USAGE;
    return NULL;
  }
  ferry_journal *j = ferry_journal_open_readonly(path, &err);
  if (!j) {
    print_error(NULL, &err);
    ferry_error_clear(&err);
    free(path);
    *exit_code = EXIT_ERROR;
    return NULL;
  }
  *path_out = path;
  return j;
}

static const char *jstr(json_t *o, const char *key) { return json_string_value(json_object_get(o, key)); }

typedef struct listing {
  int json;
  json_t *arr;
  int shown, max;
} listing;

static int list_item(void *arg, json_t *item) {
  listing *l = arg;
  const char *step = jstr(item, "step"), *msg = jstr(item, "error"), *detail = jstr(item, "detail");
  json_t *rep = json_object_get(item, "report");
  const char *worker = json_is_object(rep) ? jstr(rep, "worker") : NULL; /* ferry run --worker */
  char *error = NULL; /* "<message>\n<detail>", as the journal keeps it */
  if (msg) {
    ferry_buf e = {0};
    ferry_buf_add(&e, msg);
    if (detail) ferry_buf_addf(&e, "\n%s", detail);
    error = ferry_buf_steal(&e);
  }
  if (l->json) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:i}", "stage", jstr(item, "stage"), "key",
                          jstr(item, "key"), "status", jstr(item, "status"), "step", step, "error", error,
                          "attempts", (int)json_integer_value(json_object_get(item, "attempts")));
    if (worker) json_object_set_new(o, "worker", json_string(worker));
    json_array_append_new(l->arr, o);
  } else if (l->shown < l->max) {
    printf("  %-8s %s / %s%s%s%s%s%s%s\n", jstr(item, "status"), jstr(item, "stage"), jstr(item, "key"),
           step ? "  step: " : "", step ? step : "", worker ? "  by " : "", worker ? worker : "",
           error ? "  error: " : "", error ? error : "");
  }
  free(error);
  l->shown++;
  return 0;
}

static int cmd_status(cli *c) {
  ferry_error err = FERRY_ERROR_INIT;
  int rc = EXIT_OK;
  char *path = NULL;
  ferry_journal *j = open_journal_ro(c, &path, &rc);
  if (!j) return rc;
  json_t *stages = ferry_journal_stages(j, &err);
  json_t *out = c->json_out ? json_object() : NULL;
  if (!stages) {
    print_error(NULL, &err);
    rc = EXIT_ERROR;
    goto done;
  }
  if (!c->json_out) {
    printf("journal %s\n", path);
    printf("  %-24s %10s %10s %10s %10s\n", "stage", "done", "skipped", "failed", "in doubt");
  } else {
    json_object_set_new(out, "journal", json_string(path));
    json_object_set_new(out, "stages", json_array());
  }
  int64_t failed_total = 0, doubt_total = 0;
  size_t i;
  json_t *st;
  json_array_foreach(stages, i, st) {
    json_int_t done = json_integer_value(json_object_get(st, "done")),
               skipped = json_integer_value(json_object_get(st, "skipped")),
               failed = json_integer_value(json_object_get(st, "failed")),
               doubt = json_integer_value(json_object_get(st, "in_doubt"));
    failed_total += failed;
    doubt_total += doubt;
    if (c->json_out)
      json_array_append_new(json_object_get(out, "stages"),
                            json_pack("{s:s, s:I, s:I, s:I, s:I}", "name", jstr(st, "name"), "done", done,
                                      "skipped", skipped, "failed", failed, "in_doubt", doubt));
    else
      printf("  %-24s %10lld %10lld %10lld %10lld\n", jstr(st, "name"), (long long)done, (long long)skipped,
             (long long)failed, (long long)doubt);
  }
  listing l = {.json = c->json_out, .arr = c->json_out ? json_array() : NULL, .max = 50};
  if (!c->json_out && (failed_total || doubt_total)) printf("\nitems needing attention:\n");
  if (ferry_journal_items(j, NULL, "failed", 0, list_item, &l, &err) < 0 ||
      ferry_journal_items(j, NULL, "intent", 0, list_item, &l, &err) < 0) {
    print_error(NULL, &err);
    rc = EXIT_ERROR;
  }
  if (!c->json_out && l.shown > l.max) printf("  ... and %d more (ferry status --json lists all)\n", l.shown - l.max);
  if (!c->json_out && doubt_total)
    printf("\nin doubt = an earlier run stopped in the middle of these; `ferry run` reconciles them.\n");
  if (c->json_out) {
    json_object_set_new(out, "attention", l.arr);
    char *text = json_text(out, JSON_INDENT(2));
    printf("%s\n", text);
    free(text);
  }
  if (rc == EXIT_OK) rc = status_exit(failed_total, doubt_total);
done:
  json_decref(out);
  json_decref(stages);
  ferry_journal_close(j);
  ferry_error_clear(&err);
  free(path);
  return rc;
}

/* ---- status --items, export-map ------------------------------------------------------------------------ */

/* The stages to read: those of --stage (each must be in the journal), else all (one NULL entry). NULL on
 * error (printed, *exit_code set). */
static char **stages_to_read(const cli *c, ferry_journal *j, int *exit_code) {
  char **v = xrealloc(NULL, (c->nstages + 1) * sizeof *v);
  v[0] = NULL; /* { NULL }: one pass over every stage, signalled by nstages == 0 */
  if (!c->nstages) return v;
  ferry_error err = FERRY_ERROR_INIT;
  json_t *have = ferry_journal_stages(j, &err);
  if (!have) {
    print_error(NULL, &err);
    ferry_error_clear(&err);
    free(v);
    *exit_code = EXIT_ERROR;
    return NULL;
  }
  for (size_t i = 0; i < c->nstages; i++) {
    int found = 0;
    size_t k;
    json_t *st;
    json_array_foreach(have, k, st) found |= !strcmp(jstr(st, "name"), c->stages[i]);
    if (!found) {
      ferry_buf sb = {0};
      json_array_foreach(have, k, st) ferry_buf_addf(&sb, "%s\"%s\"", k ? ", " : "", jstr(st, "name"));
      say("error", "the journal has no stage \"%s\"; its stages: %s", c->stages[i],
              sb.len ? sb.buf : "none");
      ferry_buf_free(&sb);
      json_decref(have);
      v[i] = NULL;
      strv_free(v);
      *exit_code = EXIT_USAGE;
      return NULL;
    }
    v[i] = xstrdup(c->stages[i]);
    v[i + 1] = NULL;
  }
  json_decref(have);
  return v;
}

/* "2026-11-21T10:00:00.123Z" */
static void iso_time(int64_t ms, char *buf, size_t n) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + k, n - k, ".%03dZ", (int)(ms % 1000));
}

#define ITEM_COLUMNS 100

/* Characters (not bytes) of UTF-8 text; NULL counts 0. */
static size_t utf8_columns(const char *s) {
  size_t n = 0;
  for (; s && *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

typedef struct items_out {
  int json;
  int64_t n, cut, repair_failed;
  int64_t failed, in_doubt; /* the exit code */
} items_out;

/* Appends "  <label><text>" to sb: the first line of text, cut (at a UTF-8 character boundary, "...") after
 * max_text bytes. */
static void add_field(ferry_buf *sb, const char *label, const char *text, size_t max_text) {
  if (!text || !*text) return;
  size_t n = strcspn(text, "\n");
  int cut = 0;
  if (n > max_text) {
    n = max_text;
    while (n && ((unsigned char)text[n] & 0xC0) == 0x80) n--;
    cut = 1;
  }
  ferry_buf_addf(sb, "  %s", label);
  ferry_buf_addn(sb, text, n);
  if (cut) ferry_buf_add(sb, "...");
}

static int print_item(void *arg, json_t *item) {
  items_out *o = arg;
  const char *stage = jstr(item, "stage"), *key = jstr(item, "key"), *status = jstr(item, "status");
  const char *step = jstr(item, "step"), *msg = jstr(item, "error");
  json_t *rep = json_object_get(item, "report"), *verify = json_object_get(item, "verify");
  json_t *ids = json_object_get(item, "ids");
  if (!json_is_object(rep)) rep = NULL;
  if (!json_is_object(verify)) verify = NULL;
  int in_doubt = !strcmp(status, "intent"), done = !strcmp(status, "done");
  o->failed += !strcmp(status, "failed");
  o->in_doubt += in_doubt;
  unsigned attempts = (unsigned)json_integer_value(json_object_get(item, "attempts"));
  const char *target = rep ? json_string_value(json_object_get(rep, "target_id")) : NULL;
  int adopted = rep && json_is_true(json_object_get(rep, "adopted"));
  const char *worker = rep ? json_string_value(json_object_get(rep, "worker")) : NULL; /* ferry run --worker */
  json_t *losses = rep ? json_object_get(rep, "losses") : NULL;
  if (!json_is_array(losses)) losses = NULL;
  if (o->json) {
    char created[40], updated[40];
    iso_time(json_integer_value(json_object_get(item, "created")), created, sizeof created);
    iso_time(json_integer_value(json_object_get(item, "updated")), updated, sizeof updated);
    json_t *e = json_pack("{s:s, s:s, s:s, s:s?, s:i}", "stage", stage, "key", key, "status",
                          in_doubt ? "in_doubt" : status, "step", step, "attempts", (int)attempts);
    if (!step) json_object_set_new(e, "step", json_null());
    json_object_set(e, "error", json_object_get(item, "error"));
    json_object_set(e, "detail", json_object_get(item, "detail"));
    json_object_set(e, "code", json_object_get(item, "code"));
    json_object_set_new(e, "verify", verify ? json_incref(verify) : json_null());
    json_object_set_new(e, "target_id", target ? json_string(target) : json_null());
    json_object_set_new(e, "adopted", json_boolean(adopted));
    json_object_set_new(e, "worker", worker ? json_string(worker) : json_null());
    json_object_set_new(e, "losses", losses ? json_incref(losses) : json_array());
    json_object_set_new(e, "report", rep ? json_incref(rep) : json_null());
    json_object_set_new(e, "ids", ids ? json_incref(ids) : json_array());
    json_object_set(e, "run", json_object_get(item, "run"));
    json_object_set_new(e, "created", json_string(created));
    json_object_set_new(e, "updated", json_string(updated));
    char *text = json_text(e, JSON_COMPACT | JSON_ENSURE_ASCII);
    printf("%s  %s", o->n ? ",\n" : "", text);
    free(text);
    json_decref(e);
  } else {
    ferry_buf line = {0}, sk = {0};
    ferry_buf_addf(&sk, "%s/%s", stage, key);
    char tries[16];
    snprintf(tries, sizeof tries, "%u", attempts);
    int repair_failed = done && msg;
    o->repair_failed += repair_failed;
    const char *shown = in_doubt ? "in doubt" : repair_failed ? "done*" : status;
    ferry_buf_addf(&line, "%-8s %-26s %-10s %3s", shown, sk.buf, step ? step : "-", tries);
    ferry_buf_free(&sk);
    if (msg) add_field(&line, done ? "repair failed: " : "error: ", msg, 60);
    if (verify) {
      json_t *d = json_object_get(verify, "differences");
      char label[48];
      snprintf(label, sizeof label, "verify: mismatch (%zu difference%s): ", json_array_size(d),
               json_array_size(d) == 1 ? "" : "s");
      add_field(&line, label, json_string_value(json_object_get(verify, "message")), 60);
    }
    if (target) add_field(&line, "target ", target, 60);
    if (adopted) ferry_buf_add(&line, "  adopted");
    if (worker) add_field(&line, "by ", worker, 64);
    if (losses && json_array_size(losses)) {
      ferry_buf_addf(&line, "  losses %zu:", json_array_size(losses));
      size_t k;
      json_t *l;
      json_array_foreach(losses, k, l) {
        const char *lk = json_string_value(json_object_get(l, "kind"));
        ferry_buf_addf(&line, "%s%s", k ? "," : " ", lk ? lk : "?");
      }
    }
    /* the ids last, as many as fit in the line, then how many more there are */
    size_t nids = json_array_size(ids), shown_ids = 0;
    for (size_t i = 0; i < nids; i++) {
      json_t *id = json_array_get(ids, i);
      ferry_buf one = {0};
      ferry_buf_addf(&one, "%s%s %s -> %s", i ? ", " : "  ids: ", jstr(id, "kind"), jstr(id, "old"), jstr(id, "new"));
      /* room for ", +N more" unless this is the last id */
      size_t need = utf8_columns(line.buf) + utf8_columns(one.buf) + (i + 1 < nids ? 12 : 0);
      if (need > ITEM_COLUMNS) {
        ferry_buf_free(&one);
        break;
      }
      ferry_buf_add(&line, one.buf);
      ferry_buf_free(&one);
      shown_ids++;
    }
    if (shown_ids < nids) {
      if (shown_ids) ferry_buf_addf(&line, ", +%zu more", nids - shown_ids);
      else ferry_buf_addf(&line, "  %zu ids", nids);
      o->cut++;
    }
    char *text = ferry_redact(line.buf);
    ferry_buf_free(&line);
    /* one line per item, cut at 100 columns (characters, not bytes) */
    size_t cols = 0, at = 0, len = strlen(text);
    while (at < len && cols < ITEM_COLUMNS) {
      at++;
      while (at < len && ((unsigned char)text[at] & 0xC0) == 0x80) at++;
      cols++;
    }
    if (at < len) {
      size_t back = at; /* room for "..." */
      for (int k = 0; k < 3 && back; k++) {
        back--;
        while (back && ((unsigned char)text[back] & 0xC0) == 0x80) back--;
      }
      while (back && text[back - 1] == ' ') back--;
      printf("%.*s...\n", (int)back, text);
      o->cut++;
    } else {
      printf("%s\n", text);
    }
    free(text);
  }
  o->n++;
  return 0;
}

static int cmd_status_items(cli *c) {
  int rc = EXIT_OK;
  char *path = NULL;
  ferry_journal *j = open_journal_ro(c, &path, &rc);
  if (!j) return rc;
  char **stages = stages_to_read(c, j, &rc);
  if (!stages) {
    ferry_journal_close(j);
    free(path);
    return rc;
  }
  ferry_error err = FERRY_ERROR_INIT;
  items_out o = {.json = c->json_out};
  if (o.json)
    printf("[\n");
  else
    printf("journal %s\n%-8s %-26s %-10s %3s  details\n", path, "status", "stage/key", "step", "try");
  size_t npass = c->nstages ? c->nstages : 1;
  for (size_t i = 0; i < npass && rc == EXIT_OK; i++) {
    if (ferry_journal_items(j, stages[i], NULL, FERRY_JOURNAL_IDS, print_item, &o, &err) < 0) {
      print_error(NULL, &err);
      rc = EXIT_ERROR;
    }
  }
  if (o.json)
    printf("%s]\n", o.n ? "\n" : "");
  else {
    printf("%lld item(s)\n", (long long)o.n);
    if (o.cut)
      printf("%lld line(s) cut at %d columns: `ferry status --items --json` has every field.\n",
             (long long)o.cut, ITEM_COLUMNS);
    if (o.repair_failed)
      printf("done* = done, but the last repair failed (its verify mark stays: `ferry run --repair` again).\n");
  }
  if (rc == EXIT_OK) rc = status_exit(o.failed, o.in_doubt);
  ferry_error_clear(&err);
  strv_free(stages);
  ferry_journal_close(j);
  free(path);
  return rc;
}

typedef struct map_out {
  FILE *f;
  int json;
  int64_t n;
  char **stages; /* only ids of these stages (NULL = all) */
  const char *kind; /* --kind given */
} map_out;

/* One CSV field, quoted (RFC 4180) when it holds a comma, a quote, CR or LF. */
static void csv_field(FILE *f, const char *s, int last) {
  if (strpbrk(s, ",\"\r\n")) {
    fputc('"', f);
    for (const char *p = s; *p; p++) {
      if (*p == '"') fputc('"', f);
      fputc(*p, f);
    }
    fputc('"', f);
  } else {
    fputs(s, f);
  }
  fputs(last ? "\r\n" : ",", f);
}

static int print_id(void *arg, const ferry_journal_id *id) {
  map_out *o = arg;
  /* kinds starting with '_' are a plugin's own bookkeeping (the joget sink's reverse map): shown only when
     asked for with --kind */
  if (id->kind[0] == '_' && !o->kind) return 0;
  if (o->stages) {
    int keep = 0;
    for (size_t i = 0; o->stages[i] && !keep; i++) keep = !strcmp(o->stages[i], id->stage);
    if (!keep) return 0;
  }
  char created[40];
  iso_time(id->created, created, sizeof created);
  if (o->json) {
    json_t *e = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kind", id->kind, "old_id", id->old_id, "new_id",
                          id->new_id, "stage", id->stage, "key", id->key, "created", created);
    char *text = json_dumps(e, JSON_COMPACT | JSON_ENSURE_ASCII);
    fprintf(o->f, "%s  %s", o->n ? ",\n" : "", text);
    free(text);
    json_decref(e);
  } else {
    const char *fields[] = {id->kind, id->old_id, id->new_id, id->stage, id->key, created};
    for (int i = 0; i < 6; i++) csv_field(o->f, fields[i], i == 5);
  }
  o->n++;
  return ferror(o->f) != 0;
}

static int cmd_export_map(cli *c) {
  int rc = EXIT_OK;
  char *path = NULL;
  ferry_journal *j = open_journal_ro(c, &path, &rc);
  if (!j) return rc;
  char **stages = stages_to_read(c, j, &rc);
  if (!stages) {
    ferry_journal_close(j);
    free(path);
    return rc;
  }
  map_out o = {.f = stdout,
               .kind = c->kind,
               .json = c->format && !strcmp(c->format, "json"),
               .stages = c->nstages ? stages : NULL};
  char *tmp = NULL;
  if (c->output) {
    size_t n = strlen(c->output) + 5;
    tmp = xrealloc(NULL, n);
    snprintf(tmp, n, "%s.tmp", c->output);
    o.f = fopen(tmp, "w");
    if (!o.f) {
      say("error", "cannot write %s: %s", tmp, strerror(errno));
      free(tmp);
      strv_free(stages);
      ferry_journal_close(j);
      free(path);
      return EXIT_ERROR;
    }
  }
  if (o.json)
    fputs("[\n", o.f);
  else
    fputs("kind,old_id,new_id,stage,key,created\r\n", o.f);
  ferry_error err = FERRY_ERROR_INIT;
  /* one pass in (kind, old_id) order whatever the filters: the stages are filtered here */
  if (ferry_journal_ids(j, NULL, NULL, c->kind, print_id, &o, &err) < 0) {
    print_error(NULL, &err);
    rc = EXIT_ERROR;
  }
  if (o.json) fprintf(o.f, "%s]\n", o.n ? "\n" : "");
  int werr = ferror(o.f) ? (errno ? errno : EIO) : 0;
  if (c->output) {
    if (fclose(o.f) != 0 && !werr) werr = errno;
    if (!werr && rc == EXIT_OK && rename(tmp, c->output) != 0) werr = errno;
    if (werr || rc != EXIT_OK) unlink(tmp);
  } else if (fflush(stdout) != 0 && !werr) {
    werr = errno;
  }
  if (werr && rc == EXIT_OK) {
    say("error", "cannot write %s: %s", c->output ? c->output : "the id map", strerror(werr));
    rc = EXIT_ERROR;
  }
  if (rc == EXIT_OK && c->output && !c->quiet)
    say("info", "%lld id(s) written to %s", (long long)o.n, c->output);
  ferry_error_clear(&err);
  free(tmp);
  strv_free(stages);
  ferry_journal_close(j);
  free(path);
  return rc;
}

/* ---- plugins -------------------------------------------------------------------------------------------- */
/* "source,sink" from ["source", "sink"] */
static void kinds_text(json_t *kinds, char *buf, size_t n) {
  size_t at = 0, i;
  json_t *k;
  buf[0] = '\0';
  json_array_foreach(kinds, i, k) {
    int w = snprintf(buf + at, n - at, "%s%s", i ? "," : "", json_string_value(k));
    if (w < 0 || (size_t)w >= n - at) break;
    at += (size_t)w;
  }
}

/* One line of what the option table checks besides the type: "sink only; one of: skip, overwrite, fail;
 * 1 to 1000; not empty; also accepted: \"conflict\" (deprecated)". Nothing when there is nothing to say. */
static void print_constraints(json_t *o) {
  ferry_buf lb = {0};
#define ADD(...) ferry_buf_addf(&lb, __VA_ARGS__)
  size_t i;
  json_t *v;
  json_t *roles = json_object_get(o, "roles");
  json_array_foreach(roles, i, v) ADD("%s%s", i ? " and " : "", json_string_value(v));
  if (json_array_size(roles)) ADD(" only");
  json_t *choices = json_object_get(o, "choices");
  json_array_foreach(choices, i, v) ADD("%s%s", i ? ", " : lb.len ? "; one of: " : "one of: ", json_string_value(v));
  json_t *mn = json_object_get(o, "min"), *mx = json_object_get(o, "max");
  if (mn && mx)
    ADD("%s%lld to %lld", lb.len ? "; " : "", (long long)json_integer_value(mn), (long long)json_integer_value(mx));
  else if (mn)
    ADD("%s%lld or more", lb.len ? "; " : "", (long long)json_integer_value(mn));
  else if (mx)
    ADD("%s%lld or less", lb.len ? "; " : "", (long long)json_integer_value(mx));
  if (json_is_true(json_object_get(o, "non_empty"))) ADD("%snot empty", lb.len ? "; " : "");
  json_t *old = json_object_get(o, "deprecated_name");
  if (old) ADD("%salso accepted: \"%s\" (deprecated)", lb.len ? "; " : "", json_string_value(old));
#undef ADD
  if (lb.len) printf("    %-22s (%s)\n", "", lb.buf);
  ferry_buf_free(&lb);
}

static void print_description(json_t *d) {
  printf("%s %s - %s\n", json_string_value(json_object_get(d, "name")),
         json_string_value(json_object_get(d, "version")), json_string_value(json_object_get(d, "description")));
  printf("  license: %s\n", json_string_value(json_object_get(d, "license")));
  const char *lists[] = {"kinds", "emits", "accepts", "hook_points"};
  for (size_t i = 0; i < 4; i++) {
    json_t *a = json_object_get(d, lists[i]);
    if (!json_is_array(a) || !json_array_size(a)) continue;
    printf("  %s:", lists[i]);
    size_t k;
    json_t *v;
    json_array_foreach(a, k, v) printf(" %s", json_string_value(v));
    printf("\n");
  }
  json_t *opts = json_object_get(d, "options");
  if (json_array_size(opts)) {
    printf("  options:\n");
    size_t k;
    json_t *o;
    json_array_foreach(opts, k, o) {
      json_t *dflt = json_object_get(o, "default");
      char *dtext = dflt ? json_dumps(dflt, JSON_ENCODE_ANY | JSON_COMPACT) : NULL;
      printf("    %-22s %-12s %s%s%s%s%s\n", json_string_value(json_object_get(o, "key")),
             json_string_value(json_object_get(o, "type")),
             json_is_true(json_object_get(o, "required")) ? "(required) " : "",
             json_is_true(json_object_get(o, "secret")) ? "(secret: \"${ENV}\", {\"env\"}, {\"file\"}) " : "",
             dtext ? "[default " : "", dtext ? dtext : "", dtext ? "] " : "");
      printf("    %-22s %s\n", "", json_string_value(json_object_get(o, "help")));
      print_constraints(o);
      free(dtext);
    }
  } else {
    printf("  options: none\n");
  }
}

static int cmd_plugins(cli *c) {
  ferry_error err = FERRY_ERROR_INIT;
  int rc = EXIT_OK;
  /* the plugin path: --plugin-path, then the configuration's "plugin_path", then the default places */
  char **dirs = NULL;
  size_t ndirs = 0;
  for (size_t i = 0; i < c->npath; i++) strv_push(&dirs, &ndirs, c->plugin_path[i]);
  if (c->config) {
    json_t *set = ferry_config_settings(c->config, &err);
    if (!set) {
      print_error(NULL, &err);
      ferry_error_clear(&err);
      strv_free(dirs);
      return EXIT_USAGE;
    }
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(set, "plugin_path"), i, d)
      strv_push(&dirs, &ndirs, json_string_value(d));
    json_decref(set);
  }
  ferry_runtime_opts ro = {.struct_size = sizeof ro, .plugin_path = (const char *const *)dirs};
  ferry_runtime *rt = ferry_runtime_new(&ro, &err);
  strv_free(dirs);
  if (!rt) {
    print_error(NULL, &err);
    ferry_error_clear(&err);
    return EXIT_ERROR;
  }
  if (c->describe) {
    json_t *d = ferry_runtime_describe_plugin(rt, c->describe, &err);
    if (!d) {
      print_error(NULL, &err);
      rc = EXIT_USAGE;
    } else {
      if (c->json_out) {
        char *s = json_dumps(d, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
      } else {
        print_description(d);
        printf("  from: %s\n", json_string_value(json_object_get(d, "origin")));
      }
      json_decref(d);
    }
  } else {
    json_t *all = ferry_runtime_plugins(rt, &err);
    if (!all) {
      print_error(NULL, &err);
      ferry_error_clear(&err);
      ferry_runtime_free(rt);
      return EXIT_ERROR;
    }
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(all, "refused"), i, e) {
      say("warn", "%s", jstr(e, "error"));
      rc = EXIT_ERROR;
    }
    json_t *arr = c->json_out ? json_array() : NULL;
    if (!c->json_out) printf("%-20s %-18s %-10s %s\n", "plugin", "kinds", "version", "from");
    json_array_foreach(json_object_get(all, "plugins"), i, e) {
      char kinds[32];
      kinds_text(json_object_get(e, "kinds"), kinds, sizeof kinds);
      if (arr)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", jstr(e, "name"), "kinds",
                                             kinds, "version", jstr(e, "version"), "description",
                                             jstr(e, "description"), "origin", jstr(e, "origin")));
      else
        printf("%-20s %-18s %-10s %s\n    %s\n", jstr(e, "name"), kinds, jstr(e, "version"), jstr(e, "origin"),
               jstr(e, "description"));
    }
    if (arr) {
      char *s = json_dumps(arr, JSON_INDENT(2));
      printf("%s\n", s);
      free(s);
      json_decref(arr);
    }
    json_decref(all);
  }
  ferry_error_clear(&err);
  ferry_runtime_free(rt);
  return rc;
}

/* ferry journal copy FROM TO [--replace] */
static int cmd_journal(const cli *c) {
  if (c->nargs != 3 || strcmp(c->args[0], "copy")) {
    say("error", "usage: ferry journal copy FROM TO [--replace] (see `ferry journal --help`)");
    return EXIT_USAGE;
  }
  ferry_error err = FERRY_ERROR_INIT;
  int64_t n[3] = {0};
  int rc = ferry_journal_copy(c->args[1], c->args[2], c->replace ? FERRY_JOURNAL_COPY_REPLACE : 0, n, &err);
  if (rc) {
    say("error", "%s", err.message ? err.message : "journal copy failed");
    ferry_error_clear(&err);
    return EXIT_ERROR;
  }
  if (!c->quiet)
    printf("copied %lld items, %lld id mappings and %lld runs\n", (long long)n[0], (long long)n[1],
           (long long)n[2]);
  return EXIT_OK;
}

static int cmd_version(void) {
  printf("ferry %s (plugin ABI %d.%d)\n", FERRY_VERSION_STRING, FERRY_ABI_MAJOR, FERRY_ABI_MINOR);
  json_t *libs = ferry_runtime_libraries();
  size_t i;
  json_t *l;
  json_array_foreach(libs, i, l) {
    const char *file = jstr(l, "file");
    printf("  %-11s %-28s %s\n", jstr(l, "name"), jstr(l, "version"), file ? file : "");
  }
  json_decref(libs);
  return EXIT_OK;
}

int main(int argc, char **argv) {
  cli c;
  memset(&c, 0, sizeof c);
  if (argc < 2) {
    fputs(usage_main, stderr);
    return EXIT_USAGE;
  }
  c.command = argv[1];
  if (!strcmp(c.command, "-h") || !strcmp(c.command, "--help") || !strcmp(c.command, "help")) {
    if (argc > 2) print_command_help(argv[2]);
    else fputs(usage_main, stdout);
    return EXIT_OK;
  }
  if (!strcmp(c.command, "--version")) return cmd_version();
  static const char *const commands[] = {"plan",    "run",     "verify", "status",  "export-map",
                                         "plugins", "version", "report", "journal", NULL};
  int known = 0;
  for (size_t i = 0; commands[i]; i++) known |= !strcmp(commands[i], c.command);
  if (!known) {
    say("error", "unknown command \"%s\"\n\n%s", c.command, usage_main);
    return EXIT_USAGE;
  }
  for (int i = 2; i < argc; i++) /* messages about the command line already in the format asked for */
    log_json |= !strcmp(argv[i], "--log-format=json") ||
                (!strcmp(argv[i], "--log-format") && i + 1 < argc && !strcmp(argv[i + 1], "json"));
  if (parse_args(argc - 1, argv + 1, &c) < 0) {
    strv_free(c.plugin_path);
    strv_free(c.stages);
    strv_free(c.args);
    return EXIT_USAGE;
  }
  log_json = c.json_log;
  ferry_log_configure(c.quiet ? FERRY_LOG_ERROR : c.verbose >= 2 ? FERRY_LOG_TRACE
                                               : c.verbose      ? FERRY_LOG_DEBUG
                                                                : FERRY_LOG_INFO,
                      c.json_log ? FERRY_LOG_JSON : FERRY_LOG_TEXT, stderr);
  int rc;
  if (!strcmp(c.command, "plan")) rc = cmd_pipeline(&c, FERRY_MODE_PLAN);
  else if (!strcmp(c.command, "run")) rc = cmd_pipeline(&c, FERRY_MODE_RUN);
  else if (!strcmp(c.command, "verify")) rc = cmd_pipeline(&c, FERRY_MODE_VERIFY);
  else if (!strcmp(c.command, "status")) rc = c.items ? cmd_status_items(&c) : cmd_status(&c);
  else if (!strcmp(c.command, "export-map")) rc = cmd_export_map(&c);
  else if (!strcmp(c.command, "report")) rc = cmd_report(&c);
  else if (!strcmp(c.command, "plugins")) rc = cmd_plugins(&c);
  else if (!strcmp(c.command, "journal")) rc = cmd_journal(&c);
  else rc = cmd_version();
  strv_free(c.plugin_path);
  strv_free(c.stages);
  strv_free(c.args);
  return rc;
}
