/* ferry: the command-line tool. Everything it does goes through libferry (ferry/runtime.h and the
 * internal registry/journal/config API); this file only parses arguments and prints. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

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

static const char usage_main[] =
    "ferry - move live workflow work (running instances, form records, files) between servers\n"
    "\n"
    "usage: ferry <command> [options]\n"
    "\n"
    "commands:\n"
    "  plan      check credentials, definitions, users, tables and files; write nothing anywhere;\n"
    "            report per item: would do / blocked, and why\n"
    "  run       carry the items over; resumes where an interrupted run stopped (--limit 1 = canary);\n"
    "            --repair: carry again only the items the last verify found different\n"
    "  verify    compare what the journal says was done with the target; marks the items that differ\n"
    "            in the journal (for run --repair)\n"
    "  status    what the journal holds: per stage done, skipped, failed, in doubt;\n"
    "            --items: every item with its ids, target, losses and verify mark\n"
    "  export-map  the id map (old id -> new id, per kind) as CSV or JSON, for the cutover\n"
    "  plugins   list the plugins ferry can load (--describe NAME: one plugin and its options)\n"
    "  version   versions of ferry, its plugin ABI and libraries\n"
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
    "     by another run or verify); status, export-map: the journal cannot be read\n";

static const char usage_common[] =
    "  -c, --config FILE      configuration file (default ./ferry.json)\n"
    "      --journal FILE     journal file (default: the config's \"journal\", else ./ferry-journal.db)\n"
    "      --plugin-path DIR  search plugins in DIR first (repeatable)\n"
    "  -v, --verbose          more log output (-vv: trace)\n"
    "  -q, --quiet            errors only\n"
    "      --log-format FMT   text (default) or json\n"
    "  -h, --help             this text\n";

static const char usage_pipeline[] =
    "      --limit N          at most N items per stage (--limit 1: one canary item)\n"
    "      --stage NAME       only this stage (repeatable)\n"
    "      --report FILE      write the JSON report there (default: the config's \"report\")\n"
    "      --progress MODE    auto (default: redrawn on a terminal, plain lines otherwise), tty, plain, none\n";

typedef struct cli {
  const char *command;
  const char *format; /* export-map: csv (default) or json */
  const char *kind;   /* export-map: only this kind */
  const char *output; /* export-map: the file (default stdout) */
  int repair, items;
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
  *v = ferry__xrealloc(*v, (*n + 2) * sizeof(char *));
  (*v)[(*n)++] = ferry__xstrdup(s);
  (*v)[*n] = NULL;
}

static void print_command_help(const char *cmd) {
  if (!strcmp(cmd, "plan") || !strcmp(cmd, "run") || !strcmp(cmd, "verify")) {
    const char *what =
        !strcmp(cmd, "plan")
            ? "Reads the sources and the targets and reports, per stage and per item, what a run\n"
              "would do or why it is blocked. Writes nothing anywhere (not even the journal).\n"
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
                               : "");
  } else if (!strcmp(cmd, "status")) {
    printf("usage: ferry status [--items [--stage NAME]] [--json] [options]\n\n"
           "Prints what the journal holds, per stage: done, skipped, failed, in doubt, and the\n"
           "failed and in-doubt items. With --items, every item instead: stage, key, status, step,\n"
           "attempts, error, verify mark, target id, adopted, losses and its ids (kind old -> new);\n"
           "one line per item, cut at 100 columns (--json has every field). Reads only the journal\n"
           "(also while a run uses it).\n\noptions:\n%s"
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
  } else if (!strcmp(cmd, "plugins")) {
    printf("usage: ferry plugins [--describe NAME] [options]\n\nLists the plugins built in and those found in "
           "the plugin path\n(--plugin-path, config \"plugin_path\", $FERRY_PLUGIN_PATH, the install "
           "directory).\n\noptions:\n"
           "      --describe NAME    one plugin: kinds, items, hook points and every option\n"
           "      --json             machine-readable output\n%s",
           usage_common);
  } else if (!strcmp(cmd, "version")) {
    printf("usage: ferry version\n\nPrints the versions of ferry, its plugin ABI and the libraries it uses.\n");
  } else {
    fputs(usage_main, stdout);
  }
}

static int parse_args(int argc, char **argv, cli *c) {
  enum { O_JOURNAL = 256, O_REPORT, O_LIMIT, O_STAGE, O_PLUGIN_PATH, O_PROGRESS, O_LOG_FORMAT, O_DESCRIBE,
         O_JSON, O_REPAIR, O_ITEMS, O_FORMAT, O_KIND, O_OUTPUT };
  static const struct option longopts[] = {
      {"config", required_argument, 0, 'c'},      {"journal", required_argument, 0, O_JOURNAL},
      {"report", required_argument, 0, O_REPORT}, {"limit", required_argument, 0, O_LIMIT},
      {"stage", required_argument, 0, O_STAGE},   {"plugin-path", required_argument, 0, O_PLUGIN_PATH},
      {"progress", required_argument, 0, O_PROGRESS}, {"log-format", required_argument, 0, O_LOG_FORMAT},
      {"describe", required_argument, 0, O_DESCRIBE}, {"json", no_argument, 0, O_JSON},
      {"repair", no_argument, 0, O_REPAIR},       {"items", no_argument, 0, O_ITEMS},
      {"format", required_argument, 0, O_FORMAT}, {"kind", required_argument, 0, O_KIND},
      {"output", required_argument, 0, O_OUTPUT},
      {"verbose", no_argument, 0, 'v'},           {"quiet", no_argument, 0, 'q'},
      {"help", no_argument, 0, 'h'},              {0, 0, 0, 0}};
  int opt;
  opterr = 0;
  while ((opt = getopt_long(argc, argv, ":c:vqh", longopts, NULL)) != -1) {
    switch (opt) {
      case 'c': c->config = optarg; break;
      case O_JOURNAL: c->journal = optarg; break;
      case O_REPORT: c->report = optarg; break;
      case O_LIMIT: {
        char *end;
        long long v = strtoll(optarg, &end, 10);
        if (*end || v < 1) {
          fprintf(stderr, "%s: --limit takes a whole number >= 1 (got \"%s\")\n", prog, optarg);
          return -1;
        }
        c->limit = v;
        break;
      }
      case O_STAGE: strv_push(&c->stages, &c->nstages, optarg); break;
      case O_PLUGIN_PATH: strv_push(&c->plugin_path, &c->npath, optarg); break;
      case O_PROGRESS:
        if (strcmp(optarg, "auto") && strcmp(optarg, "tty") && strcmp(optarg, "plain") && strcmp(optarg, "none")) {
          fprintf(stderr, "%s: --progress takes auto, tty, plain or none (got \"%s\")\n", prog, optarg);
          return -1;
        }
        c->progress = optarg;
        break;
      case O_LOG_FORMAT:
        if (strcmp(optarg, "text") && strcmp(optarg, "json")) {
          fprintf(stderr, "%s: --log-format takes text or json (got \"%s\")\n", prog, optarg);
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
          fprintf(stderr, "%s: --format takes csv or json (got \"%s\")\n", prog, optarg);
          return -1;
        }
        c->format = optarg;
        break;
      case O_KIND: c->kind = optarg; break;
      case O_OUTPUT: c->output = optarg; break;
      case 'v': c->verbose++; break;
      case 'q': c->quiet = 1; break;
      case 'h': print_command_help(c->command ? c->command : ""); exit(EXIT_OK);
      case ':':
        fprintf(stderr, "%s: option %s needs a value (see `ferry %s --help`)\n", prog, argv[optind - 1],
                c->command ? c->command : "");
        return -1;
      default:
        fprintf(stderr, "%s: unknown option %s (see `ferry %s --help`)\n", prog, argv[optind - 1],
                c->command ? c->command : "");
        return -1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "%s: unexpected argument \"%s\" (see `ferry %s --help`)\n", prog, argv[optind],
            c->command ? c->command : "");
    return -1;
  }
  /* the options of the newer commands are refused where they mean nothing */
  const char *cmd = c->command ? c->command : "";
  if (c->repair && strcmp(cmd, "run")) {
    fprintf(stderr,
            "%s: --repair is an option of `ferry run` only: a %s does not repair (the items a repair would take "
            "are those with a verify mark: `ferry status --items` shows them)\n",
            prog, cmd);
    return -1;
  }
  if (c->items && strcmp(cmd, "status")) {
    fprintf(stderr, "%s: --items is an option of `ferry status`\n", prog);
    return -1;
  }
  if ((c->format || c->kind || c->output) && strcmp(cmd, "export-map")) {
    fprintf(stderr, "%s: --%s is an option of `ferry export-map`\n", prog,
            c->format ? "format" : c->kind ? "kind" : "output");
    return -1;
  }
  if (c->nstages && !strcmp(cmd, "status") && !c->items) {
    fprintf(stderr, "%s: --stage goes with --items in `ferry status` (see `ferry status --help`)\n", prog);
    return -1;
  }
  return 0;
}

static const char *default_config(const cli *c) { return c->config ? c->config : "ferry.json"; }

static void print_error(const char *what, const ferry_error *e) {
  char *m = ferry__redact(e->message ? e->message : ferry_strerror(e->code));
  fprintf(stderr, "%s: %s%s%s\n", prog, what ? what : "", what ? ": " : "", m);
  free(m);
  if (e->detail) {
    char *d = ferry__redact(e->detail);
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
  const ferry_config *cfg = ferry__runtime_config(rt);
  if (cfg && cfg->log_level && !c->verbose && !c->quiet && ferry__log_level_parse(cfg->log_level) >= 0)
    ferry__log_configure((ferry_log_level)ferry__log_level_parse(cfg->log_level),
                        c->json_log ? FERRY_LOG_JSON : FERRY_LOG_TEXT, stderr);
  int progress = 1;
  const char *pm = c->progress ? c->progress : "auto";
  if (!strcmp(pm, "none") || c->quiet) progress = 0;
  else if (!strcmp(pm, "tty") || (!strcmp(pm, "auto") && isatty(STDERR_FILENO))) progress = 2;
  ferry_run_opts opts = {.struct_size = sizeof opts,
                         .mode = mode,
                         .limit = c->limit,
                         .stages = (const char *const *)c->stages,
                         .progress = progress,
                         .report_path = c->report,
                         .repair = c->repair};
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

  const char *verb = mode == FERRY_MODE_PLAN ? "plan" : mode == FERRY_MODE_VERIFY ? "verify" : "run";
  if (!c->quiet && sum.nstages) {
    fprintf(stderr, "\n%s summary:\n", verb);
    fprintf(stderr, "  %-24s %10s %10s %10s %10s %9s\n", "stage",
            mode == FERRY_MODE_PLAN ? "would do" : mode == FERRY_MODE_VERIFY ? "equal" : "done",
            mode == FERRY_MODE_PLAN ? "skip" : "skipped",
            mode == FERRY_MODE_PLAN ? "blocked" : mode == FERRY_MODE_VERIFY ? "differ" : "failed", "retried",
            "seconds");
    for (size_t i = 0; i < sum.nstages; i++) {
      const ferry_stage_summary *s = &sum.stages[i];
      fprintf(stderr, "  %-24s %10lld %10lld %10lld %10lld %9.2f%s\n", s->name, (long long)s->done,
              (long long)(s->skipped + s->resumed), (long long)s->failed, (long long)s->retried, s->seconds,
              s->status ? "  (stage failed)" : "");
    }
    fprintf(stderr, "  %-24s %10lld %10lld %10lld %10s %9.2f\n", "total", (long long)sum.done,
            (long long)sum.skipped, (long long)sum.failed, "", sum.seconds);
  }
  int exit_code = EXIT_OK;
  if (rc < 0) {
    if (err.code || err.message) print_error(NULL, &err);
    switch (rc) {
      case FERRY_EBLOCKED: exit_code = EXIT_BLOCKED; break;
      case FERRY_EMISMATCH: exit_code = EXIT_MISMATCH; break;
      case FERRY_ECANCELED: exit_code = EXIT_INTERRUPTED; break;
      case FERRY_ECONFIG: exit_code = EXIT_USAGE; break;
      default: exit_code = sum.failed > 0 && rc != FERRY_EIO ? EXIT_FAILED_ITEMS : EXIT_ERROR; break;
    }
  }
  ferry_error_clear(&err);
  ferry_runtime_free(rt);
  return exit_code;
}

/* ---- status --------------------------------------------------------------------------------------------- */
static char *journal_path_for(const cli *c, ferry_error *err) {
  if (c->journal) return ferry__xstrdup(c->journal);
  if (c->config || access("ferry.json", F_OK) == 0) {
    ferry_config *cfg = ferry__config_load_file(default_config(c), err);
    if (!cfg) return NULL;
    char *p = ferry__xstrdup(cfg->journal ? cfg->journal : "ferry-journal.db");
    ferry__config_free(cfg);
    return p;
  }
  return ferry__xstrdup("ferry-journal.db");
}

typedef struct listing {
  int json;
  json_t *arr;
  int shown, max;
} listing;

static int list_item(void *arg, const char *stage, const char *key, const ferry_jrow *row) {
  listing *l = arg;
  if (l->json) {
    json_t *o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:i}", "stage", stage, "key", key, "status",
                          ferry__jstatus_name(row->status), "step", row->step, "error", row->error, "attempts",
                          (int)row->attempts);
    json_array_append_new(l->arr, o);
  } else if (l->shown < l->max) {
    printf("  %-8s %s / %s%s%s%s%s\n", ferry__jstatus_name(row->status), stage, key,
           row->step ? "  step: " : "", row->step ? row->step : "", row->error ? "  error: " : "",
           row->error ? row->error : "");
  }
  l->shown++;
  return 0;
}

static int cmd_status(cli *c) {
  ferry_error err = FERRY_ERROR_INIT;
  char *path = journal_path_for(c, &err);
  if (!path) {
    print_error(NULL, &err);
    ferry_error_clear(&err);
    return EXIT_USAGE;
  }
  ferry_journal *j = ferry__journal_open(path, 1, &err);
  if (!j) {
    print_error(NULL, &err);
    ferry_error_clear(&err);
    free(path);
    return EXIT_ERROR;
  }
  char **stages = ferry__journal_stages(j, &err);
  int rc = EXIT_OK;
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
  for (size_t i = 0; stages[i]; i++) {
    int64_t n[5] = {0};
    if (ferry__journal_counts(j, stages[i], n, &err) < 0) {
      print_error(NULL, &err);
      rc = EXIT_ERROR;
      goto done;
    }
    failed_total += n[FERRY_J_FAILED];
    doubt_total += n[FERRY_J_INTENT];
    if (c->json_out)
      json_array_append_new(json_object_get(out, "stages"),
                            json_pack("{s:s, s:I, s:I, s:I, s:I}", "name", stages[i], "done",
                                      (json_int_t)n[FERRY_J_DONE], "skipped", (json_int_t)n[FERRY_J_SKIPPED],
                                      "failed", (json_int_t)n[FERRY_J_FAILED], "in_doubt",
                                      (json_int_t)n[FERRY_J_INTENT]));
    else
      printf("  %-24s %10lld %10lld %10lld %10lld\n", stages[i], (long long)n[FERRY_J_DONE],
             (long long)n[FERRY_J_SKIPPED], (long long)n[FERRY_J_FAILED], (long long)n[FERRY_J_INTENT]);
  }
  listing l = {.json = c->json_out, .arr = c->json_out ? json_array() : NULL, .max = 50};
  if (!c->json_out && (failed_total || doubt_total)) printf("\nitems needing attention:\n");
  if (ferry__journal_foreach(j, NULL, FERRY_J_FAILED, list_item, &l, &err) < 0 ||
      ferry__journal_foreach(j, NULL, FERRY_J_INTENT, list_item, &l, &err) < 0) {
    print_error(NULL, &err);
    rc = EXIT_ERROR;
  }
  if (!c->json_out && l.shown > l.max) printf("  ... and %d more (ferry status --json lists all)\n", l.shown - l.max);
  if (!c->json_out && doubt_total)
    printf("\nin doubt = an earlier run stopped in the middle of these; `ferry run` reconciles them.\n");
  if (c->json_out) {
    json_object_set_new(out, "attention", l.arr);
    ferry__redact_json(out);
    char *s = json_dumps(out, JSON_INDENT(2));
    printf("%s\n", s);
    free(s);
  }
done:
  json_decref(out);
  ferry__strv_free(stages);
  ferry__journal_close(j);
  ferry_error_clear(&err);
  free(path);
  return rc;
}

/* ---- status --items, export-map ------------------------------------------------------------------------ */

/* Opens the journal of the command line read-only, as `status` does; NULL with *exit_code set. */
static ferry_journal *open_journal_ro(const cli *c, char **path_out, int *exit_code) {
  ferry_error err = FERRY_ERROR_INIT;
  char *path = journal_path_for(c, &err);
  if (!path) {
    print_error(NULL, &err);
    ferry_error_clear(&err);
    *exit_code = EXIT_USAGE;
    return NULL;
  }
  ferry_journal *j = ferry__journal_open(path, 1, &err);
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

/* The stages to read: those of --stage (each must be in the journal), else all (NULL entry). NULL on error. */
static char **stages_to_read(const cli *c, ferry_journal *j, int *exit_code) {
  if (!c->nstages) {
    char **all = ferry__xcalloc(2, sizeof *all);
    return all; /* { NULL }: one pass over every stage, signalled by nstages == 0 */
  }
  ferry_error err = FERRY_ERROR_INIT;
  char **have = ferry__journal_stages(j, &err);
  if (!have) {
    print_error(NULL, &err);
    ferry_error_clear(&err);
    *exit_code = EXIT_ERROR;
    return NULL;
  }
  for (size_t i = 0; i < c->nstages; i++) {
    int found = 0;
    for (size_t k = 0; have[k] && !found; k++) found = !strcmp(have[k], c->stages[i]);
    if (!found) {
      ferry_sb sb = {0};
      for (size_t k = 0; have[k]; k++) ferry__sb_addf(&sb, "%s\"%s\"", k ? ", " : "", have[k]);
      fprintf(stderr, "%s: the journal has no stage \"%s\"; its stages: %s\n", prog, c->stages[i],
              sb.len ? sb.buf : "none");
      ferry__sb_free(&sb);
      ferry__strv_free(have);
      *exit_code = EXIT_USAGE;
      return NULL;
    }
  }
  ferry__strv_free(have);
  return ferry__strv_dup((const char *const *)c->stages);
}

/* "2026-11-21T10:00:00.123Z" */
static void iso_time(int64_t ms, char *buf, size_t n) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&t, &tm);
  size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf + k, n - k, ".%03dZ", (int)(ms % 1000));
}

static const char *item_status(const ferry_jrow *row) {
  return row->status == FERRY_J_INTENT ? "in_doubt" : ferry__jstatus_name(row->status);
}

#define ITEM_COLUMNS 100

typedef struct items_out {
  int json;
  int64_t n, cut, repair_failed;
} items_out;

/* Appends "  <label><text>" to sb: the first line of text, cut (at a UTF-8 character boundary, "...") after
 * max_text bytes. */
static void add_field(ferry_sb *sb, const char *label, const char *text, size_t max_text) {
  if (!text || !*text) return;
  size_t n = strcspn(text, "\n");
  int cut = 0;
  if (n > max_text) {
    n = max_text;
    while (n && ((unsigned char)text[n] & 0xC0) == 0x80) n--;
    cut = 1;
  }
  ferry__sb_addf(sb, "  %s", label);
  ferry__sb_addn(sb, text, n);
  if (cut) ferry__sb_add(sb, "...");
}

static int print_item(void *arg, const char *stage, const char *key, const ferry_jrow *row) {
  items_out *o = arg;
  json_t *rep = row->report;
  const char *target = rep ? json_string_value(json_object_get(rep, "target_id")) : NULL;
  int adopted = rep && json_is_true(json_object_get(rep, "adopted"));
  json_t *losses = rep ? json_object_get(rep, "losses") : NULL;
  if (!json_is_array(losses)) losses = NULL;
  const char *msg = NULL, *detail = NULL;
  char *error = row->error ? ferry__xstrdup(row->error) : NULL;
  if (error) {
    char *nl = strchr(error, '\n');
    if (nl) {
      *nl = '\0';
      detail = nl + 1;
    }
    msg = error;
  }
  if (o->json) {
    char created[40], updated[40];
    iso_time(row->created, created, sizeof created);
    iso_time(row->updated, updated, sizeof updated);
    json_t *e = json_pack("{s:s, s:s, s:s, s:s?, s:i}", "stage", stage, "key", key, "status", item_status(row),
                          "step", row->step, "attempts", (int)row->attempts);
    if (!row->step) json_object_set_new(e, "step", json_null());
    json_object_set_new(e, "error", msg ? json_string(msg) : json_null());
    json_object_set_new(e, "detail", detail ? json_string(detail) : json_null());
    json_object_set_new(e, "code", row->error ? json_string(ferry_err_name(row->error_code)) : json_null());
    json_object_set_new(e, "verify", row->verify ? json_incref(row->verify) : json_null());
    json_object_set_new(e, "target_id", target ? json_string(target) : json_null());
    json_object_set_new(e, "adopted", json_boolean(adopted));
    json_object_set_new(e, "losses", losses ? json_incref(losses) : json_array());
    json_object_set_new(e, "report", rep ? json_incref(rep) : json_null());
    json_object_set_new(e, "ids", row->ids ? json_incref(row->ids) : json_array());
    json_object_set_new(e, "run", row->run ? json_integer(row->run) : json_null());
    json_object_set_new(e, "created", json_string(created));
    json_object_set_new(e, "updated", json_string(updated));
    ferry__redact_json(e);
    char *text = json_dumps(e, JSON_COMPACT | JSON_ENSURE_ASCII);
    printf("%s  %s", o->n ? ",\n" : "", text);
    free(text);
    json_decref(e);
  } else {
    ferry_sb line = {0};
    char *sk = ferry__xasprintf("%s/%s", stage, key);
    char tries[16];
    snprintf(tries, sizeof tries, "%u", row->attempts);
    int repair_failed = row->status == FERRY_J_DONE && row->error;
    o->repair_failed += repair_failed;
    const char *shown = row->status == FERRY_J_INTENT ? "in doubt"
                        : repair_failed                 ? "done*"
                                                        : ferry__jstatus_name(row->status);
    ferry__sb_addf(&line, "%-8s %-26s %-10s %3s", shown, sk, row->step ? row->step : "-", tries);
    free(sk);
    if (msg) add_field(&line, row->status == FERRY_J_DONE ? "repair failed: " : "error: ", msg, 60);
    if (row->verify) {
      json_t *d = json_object_get(row->verify, "differences");
      char label[48];
      snprintf(label, sizeof label, "verify: mismatch (%zu difference%s): ", json_array_size(d),
               json_array_size(d) == 1 ? "" : "s");
      add_field(&line, label, json_string_value(json_object_get(row->verify, "message")), 60);
    }
    size_t i;
    json_t *id;
    json_array_foreach(row->ids, i, id) ferry__sb_addf(&line, "%s%s %s -> %s", i ? ", " : "  ids: ",
                                                      json_string_value(json_object_get(id, "kind")),
                                                      json_string_value(json_object_get(id, "old")),
                                                      json_string_value(json_object_get(id, "new")));
    if (target) add_field(&line, "target ", target, 60);
    if (adopted) ferry__sb_add(&line, "  adopted");
    if (losses && json_array_size(losses)) {
      ferry__sb_addf(&line, "  losses %zu:", json_array_size(losses));
      size_t k;
      json_t *l;
      json_array_foreach(losses, k, l) {
        const char *lk = json_string_value(json_object_get(l, "kind"));
        ferry__sb_addf(&line, "%s%s", k ? "," : " ", lk ? lk : "?");
      }
    }
    char *text = ferry__redact(line.buf);
    ferry__sb_free(&line);
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
  free(error);
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
    ferry__journal_close(j);
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
    ferry_jquery q = {.stage = stages[i], .ids = 1};
    if (ferry__journal_foreach_ex(j, &q, print_item, &o, &err) < 0) {
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
  ferry_error_clear(&err);
  ferry__strv_free(stages);
  ferry__journal_close(j);
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

static int print_id(void *arg, const ferry_jid *id) {
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
    ferry__journal_close(j);
    free(path);
    return rc;
  }
  map_out o = {.f = stdout,
               .kind = c->kind,
               .json = c->format && !strcmp(c->format, "json"),
               .stages = c->nstages ? stages : NULL};
  char *tmp = NULL;
  if (c->output) {
    tmp = ferry__xasprintf("%s.tmp", c->output);
    o.f = fopen(tmp, "w");
    if (!o.f) {
      fprintf(stderr, "%s: cannot write %s: %s\n", prog, tmp, strerror(errno));
      free(tmp);
      ferry__strv_free(stages);
      ferry__journal_close(j);
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
  if (ferry__journal_foreach_id(j, NULL, NULL, c->kind, print_id, &o, &err) < 0) {
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
    fprintf(stderr, "%s: cannot write %s: %s\n", prog, c->output ? c->output : "the id map", strerror(werr));
    rc = EXIT_ERROR;
  }
  if (rc == EXIT_OK && c->output && !c->quiet)
    fprintf(stderr, "%s: %lld id(s) written to %s\n", prog, (long long)o.n, c->output);
  ferry_error_clear(&err);
  free(tmp);
  ferry__strv_free(stages);
  ferry__journal_close(j);
  free(path);
  return rc;
}

/* ---- plugins -------------------------------------------------------------------------------------------- */
static void on_bad_module(void *arg, const char *path, const ferry_error *e) {
  (void)path;
  int *nbad = arg;
  (*nbad)++;
  fprintf(stderr, "%s: warning: %s\n", prog, e->message ? e->message : "plugin refused");
}

static void kinds_text(uint32_t k, char *buf, size_t n) {
  snprintf(buf, n, "%s%s%s%s%s", k & FERRY_KIND_SOURCE ? "source" : "",
           (k & FERRY_KIND_SOURCE) && (k & (FERRY_KIND_SINK | FERRY_KIND_HOOK)) ? "," : "",
           k & FERRY_KIND_SINK ? "sink" : "", (k & FERRY_KIND_SINK) && (k & FERRY_KIND_HOOK) ? "," : "",
           k & FERRY_KIND_HOOK ? "hook" : "");
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
      free(dtext);
    }
  } else {
    printf("  options: none\n");
  }
}

static int cmd_plugins(cli *c) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_registry *reg = ferry__registry_new();
  int rc = EXIT_OK;
  for (size_t i = 0; i < c->npath; i++) ferry__registry_add_dir(reg, c->plugin_path[i]);
  if (c->config) {
    ferry_config *cfg = ferry__config_load_file(c->config, &err);
    if (!cfg) {
      print_error(NULL, &err);
      ferry_error_clear(&err);
      ferry__registry_free(reg);
      return EXIT_USAGE;
    }
    for (size_t i = 0; cfg->plugin_path && cfg->plugin_path[i]; i++)
      ferry__registry_add_dir(reg, cfg->plugin_path[i]);
    ferry__config_free(cfg);
  }
  ferry__registry_add_default_dirs(reg);
  if (ferry__registry_add_static(reg, &err) < 0) {
    print_error(NULL, &err);
    ferry_error_clear(&err);
  }
  if (c->describe) {
    const ferry_plugin_entry *e = ferry__registry_find(reg, c->describe, &err);
    if (!e) {
      print_error(NULL, &err);
      rc = EXIT_USAGE;
    } else {
      json_t *d = ferry__plugin_describe(e->plugin);
      json_object_set_new(d, "origin", json_string(e->origin));
      if (c->json_out) {
        char *s = json_dumps(d, JSON_INDENT(2));
        printf("%s\n", s);
        free(s);
      } else {
        print_description(d);
        printf("  from: %s\n", e->origin);
      }
      json_decref(d);
    }
  } else {
    int nbad = 0;
    ferry__registry_scan(reg, on_bad_module, &nbad);
    json_t *arr = c->json_out ? json_array() : NULL;
    if (!c->json_out) printf("%-20s %-18s %-10s %s\n", "plugin", "kinds", "version", "from");
    for (size_t i = 0; i < ferry__registry_count(reg); i++) {
      const ferry_plugin_entry *e = ferry__registry_at(reg, i);
      char kinds[32];
      kinds_text(e->plugin->kinds, kinds, sizeof kinds);
      if (arr)
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", e->plugin->name, "kinds",
                                             kinds, "version", e->plugin->version, "description",
                                             e->plugin->description, "origin", e->origin));
      else
        printf("%-20s %-18s %-10s %s\n    %s\n", e->plugin->name, kinds, e->plugin->version, e->origin,
               e->plugin->description);
    }
    if (arr) {
      char *s = json_dumps(arr, JSON_INDENT(2));
      printf("%s\n", s);
      free(s);
      json_decref(arr);
    }
    if (nbad) rc = EXIT_ERROR;
  }
  ferry_error_clear(&err);
  ferry__registry_free(reg);
  return rc;
}

static int cmd_version(void) {
  printf("ferry %s (plugin ABI %d.%d)\n", FERRY_VERSION_STRING, FERRY_ABI_MAJOR, FERRY_ABI_MINOR);
  printf("libuv %s, jansson %s\n", uv_version_string(), jansson_version_str());
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
  static const char *const commands[] = {"plan",    "run",     "verify", "status", "export-map",
                                         "plugins", "version", NULL};
  int known = 0;
  for (size_t i = 0; commands[i]; i++) known |= !strcmp(commands[i], c.command);
  if (!known) {
    fprintf(stderr, "%s: unknown command \"%s\"\n\n%s", prog, c.command, usage_main);
    return EXIT_USAGE;
  }
  if (parse_args(argc - 1, argv + 1, &c) < 0) {
    ferry__strv_free(c.plugin_path);
    ferry__strv_free(c.stages);
    return EXIT_USAGE;
  }
  ferry__log_configure(c.quiet ? FERRY_LOG_ERROR : c.verbose >= 2 ? FERRY_LOG_TRACE
                                               : c.verbose      ? FERRY_LOG_DEBUG
                                                                : FERRY_LOG_INFO,
                      c.json_log ? FERRY_LOG_JSON : FERRY_LOG_TEXT, stderr);
  int rc;
  if (!strcmp(c.command, "plan")) rc = cmd_pipeline(&c, FERRY_MODE_PLAN);
  else if (!strcmp(c.command, "run")) rc = cmd_pipeline(&c, FERRY_MODE_RUN);
  else if (!strcmp(c.command, "verify")) rc = cmd_pipeline(&c, FERRY_MODE_VERIFY);
  else if (!strcmp(c.command, "status")) rc = c.items ? cmd_status_items(&c) : cmd_status(&c);
  else if (!strcmp(c.command, "export-map")) rc = cmd_export_map(&c);
  else if (!strcmp(c.command, "plugins")) rc = cmd_plugins(&c);
  else rc = cmd_version();
  ferry__strv_free(c.plugin_path);
  ferry__strv_free(c.stages);
  ferry__secret_clear();
  return rc;
}
