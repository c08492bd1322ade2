/* ferry CLI: what main.c shares with the HTML report (html.c: the page's pieces; report.c: the report built
 * from a journal or a JSON report). Like main.c, these files use only the public API (the headers of sdk/include/ferry). */
#ifndef FERRY_CLI_H
#define FERRY_CLI_H

#include <stdint.h>
#include <stdio.h>

#include <ferry/ferry.h>
#include <ferry/journal.h>
#include <ferry/runtime.h>

/* ===== html.c: one self-contained HTML file ============================================================== */
typedef struct html html;
/* Opens "<path>.tmp" for writing; NULL with err set (FERRY_EIO, naming the file) when it cannot. */
html *html_open(const char *path, ferry_error *err);
/* Ends the file: renamed to `path` when `ok` and every write succeeded (0), else removed (a negative code,
 * err set when a write failed). Frees `h`. */
int html_close(html *h, int ok, ferry_error *err);
/* Markup ferry writes itself (never a text from a journal, a report or a configuration). */
void html_raw(html *h, const char *s);
void html_rawf(html *h, const char *fmt, ...) FERRY_PRINTF(2, 3);
/* A text: secrets redacted (ferry_redact: every secret the loaded configuration registered), then escaped
 * for an element or an attribute value (& < > " '). NULL writes nothing. */
void html_text(html *h, const char *s);
void html_textf(html *h, const char *fmt, ...) FERRY_PRINTF(2, 3);
/* A JSON value for a <script type="application/json"> element: redacted, ASCII only, every '<', '>' and '&'
 * written as \u003c, \u003e, \u0026 (the element cannot be closed from inside). */
void html_json(html *h, json_t *v);
/* <!DOCTYPE> to <body>: the Content-Security-Policy (nothing may be loaded: inline style and script only),
 * the title (a text) and the style sheet. */
void html_head(html *h, const char *title);
/* The page's script (search, sort, status filter, the id map as CSV through a Blob) and </html>. */
void html_tail(html *h);
/* The colour of an item status (done, skipped, failed, in_doubt, blocked, differs, ...). */
const char *html_status_color(const char *status);

/* Charts, as inline SVG. `stages`: the run's stages as the report has them (name, started_s, series,
 * latency). */
/* One line per stage of a series counter ("completed", "retries", "failed"): per second when `per_second`,
 * else per interval. Nothing is drawn (a note instead) when no stage has a series. */
void html_chart_series(html *h, json_t *stages, const char *counter, int per_second, const char *title,
                       const char *yunit);
/* A stacked bar per row: rows [{"name", "counts": [[status, n], ...]}]. */
void html_chart_outcomes(html *h, json_t *rows);
/* The latency histogram of each instance that called a target (the stages' "latency"). */
void html_chart_latency(html *h, json_t *stages);

/* ===== report.c: the HTML report ========================================================================= */
typedef struct cli_html_opts {
  const char *html_path;    /* the file to write */
  const char *journal_path; /* read the items, the id map and the run from this journal ... */
  int64_t run_id;           /* ... this run (0: the last run of mode "run" or "verify") */
  json_t *report;           /* ... or from this JSON report (a plan's; borrowed) when journal_path is NULL */
  json_t *settings;         /* the configuration's settings (ferry_config_settings) or NULL (borrowed) */
} cli_html_opts;
/* Writes the report. Errors (err set): FERRY_ENOENT no journal file or no such run, FERRY_EIO the journal or
 * the output file, FERRY_EINVAL no run in the journal. On error no file is left at html_path. */
int cli_html_report(const cli_html_opts *o, ferry_error *err);

/* At most this many item rows and ids are put in the page; the page says how many it left out. */
#define CLI_HTML_MAX_ROWS 20000
#define CLI_HTML_MAX_IDS 200000
#define CLI_HTML_MAX_PROBLEM_ROWS 5000 /* beyond CLI_HTML_MAX_ROWS: failed, blocked, differing, in doubt */
#define CLI_HTML_MAX_CAUSES 200   /* failure causes listed one by one (the others are summed up) */
#define CLI_HTML_CAUSE_KEYS 50    /* item keys listed per cause */

#endif
