/* The HTML report (`ferry report --html`, `--html` on run, plan and verify): one page built from the journal
 * (the items as it holds them now, the id map, and one run's summary: stages, timing, time series, target
 * call latency) or, for a plan, from the plan's JSON report. Items are streamed twice (once to count and
 * group the failures by cause, once to write the table), so the page's size, not the journal's, is what
 * sits in memory; the table and the id map are capped (CLI_HTML_MAX_ROWS, CLI_HTML_MAX_IDS) and the page
 * says what it left out. Every text goes through ferry_redact() (html.c). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

/* ---- where the items come from ------------------------------------------------------------------------- */
typedef struct source {
  ferry_journal *j; /* the journal, or */
  json_t *report;   /* a JSON report (its stages' "items") */
} source;

typedef int (*item_fn)(void *arg, json_t *item);

static const char *jstr(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* An item as the page shows it: {"stage", "key", "status" (done, skipped, failed, in_doubt, differs,
 * blocked, would_do, ...), "attempts", "code", "error", "detail", "report", "verify"}: a new object. */
static json_t *normalize(const char *stage, json_t *it, int from_journal) {
  json_t *o = json_object();
  const char *status = jstr(it, "status");
  if (!status) status = "?";
  if (from_journal && !strcmp(status, "intent")) status = "in_doubt";
  if (!strcmp(status, "done") && jstr(it, "error")) status = "failed"; /* a failed repair (it stays done) */
  if (!strcmp(status, "mismatched")) status = "differs";
  json_t *verify = json_object_get(it, "verify");
  if (json_is_object(verify) && !strcmp(status, "done")) status = "differs";
  json_object_set_new(o, "stage", json_string(stage ? stage : jstr(it, "stage") ? jstr(it, "stage") : "?"));
  json_object_set_new(o, "key", json_string(jstr(it, "key") ? jstr(it, "key") : "?"));
  json_object_set_new(o, "status", json_string(status));
  static const char *const copy[] = {"attempts", "code", "error", "detail", "report", "verify", NULL};
  for (size_t i = 0; copy[i]; i++) {
    json_t *v = json_object_get(it, copy[i]);
    if (v && !json_is_null(v)) json_object_set(o, copy[i], v);
  }
  return o;
}

typedef struct jwalk {
  item_fn fn;
  void *arg;
} jwalk;

static int journal_item(void *arg, json_t *item) {
  jwalk *w = arg;
  json_t *n = normalize(NULL, item, 1);
  int stop = w->fn(w->arg, n);
  json_decref(n);
  return stop;
}

static int foreach_item(source *s, item_fn fn, void *arg, ferry_error *err) {
  if (s->j) {
    jwalk w = {fn, arg};
    return ferry_journal_items(s->j, NULL, NULL, 0, journal_item, &w, err);
  }
  size_t i, k;
  json_t *st, *it;
  json_array_foreach(json_object_get(s->report, "stages"), i, st) {
    json_array_foreach(json_object_get(st, "items"), k, it) {
      json_t *n = normalize(jstr(st, "name"), it, 0);
      int stop = fn(arg, n);
      json_decref(n);
      if (stop) return 0;
    }
  }
  return 0;
}

/* ---- pass 1: counts and causes -------------------------------------------------------------------------- */
typedef struct tally {
  json_t *stage_counts; /* {stage: {status: n}} */
  json_t *stage_order;  /* stage names in the order met */
  json_t *causes; /* {cause key: {"class", "stage", "code", "pattern", "message", "detail", "count", "keys"}} */
  json_t *cause_order;
  int64_t items, other_causes, failed, blocked, differs, in_doubt, not_migrated;
} tally;

static int is_problem(const char *status) {
  return !strcmp(status, "failed") || !strcmp(status, "blocked") || !strcmp(status, "differs") ||
         !strcmp(status, "in_doubt") || !strcmp(status, "not_migrated");
}

/* The message with what names one item taken out: the item's key, and every word of six characters or more
 * holding a digit (ids, record numbers, timestamps), so that items failing for the same reason meet. */
static char *cause_pattern(const char *msg, const char *key) {
  size_t n = strlen(msg), klen = strlen(key);
  char *out = malloc(n * 3 + 4), *o = out;
  if (!out) return NULL;
  for (size_t i = 0; i < n;) {
    if (klen && !strncmp(msg + i, key, klen)) {
      o += sprintf(o, "\xe2\x80\xa6"); /* … */
      i += klen;
      continue;
    }
    if (isalnum((unsigned char)msg[i]) || msg[i] == '_' || msg[i] == '-' || msg[i] == '.') {
      size_t j = i;
      int digit = 0;
      while (j < n && (isalnum((unsigned char)msg[j]) || msg[j] == '_' || msg[j] == '-' || msg[j] == '.')) {
        digit |= isdigit((unsigned char)msg[j]) != 0;
        j++;
      }
      if (digit && j - i >= 6) {
        o += sprintf(o, "\xe2\x80\xa6");
      } else {
        memcpy(o, msg + i, j - i);
        o += j - i;
      }
      i = j;
      continue;
    }
    *o++ = msg[i++];
  }
  *o = '\0';
  return out;
}

static const char *problem_message(json_t *it) {
  const char *m = jstr(it, "error");
  if (!m) m = jstr(json_object_get(it, "verify"), "message");
  if (!m && !strcmp(jstr(it, "status"), "in_doubt")) m = "the run stopped in the middle of the item";
  if (!m && !strcmp(jstr(it, "status"), "not_migrated")) m = "not migrated";
  return m ? m : "(no message)";
}

static int tally_item(void *arg, json_t *it) {
  tally *t = arg;
  const char *stage = jstr(it, "stage"), *status = jstr(it, "status");
  t->items++;
  json_t *sc = json_object_get(t->stage_counts, stage);
  if (!sc) {
    sc = json_object();
    json_object_set_new(t->stage_counts, stage, sc);
    json_array_append_new(t->stage_order, json_string(stage));
  }
  json_object_set_new(sc, status, json_integer(json_integer_value(json_object_get(sc, status)) + 1));
  if (!is_problem(status)) return 0;
  if (!strcmp(status, "failed"))
    t->failed++;
  else if (!strcmp(status, "blocked"))
    t->blocked++;
  else if (!strcmp(status, "differs"))
    t->differs++;
  else if (!strcmp(status, "in_doubt"))
    t->in_doubt++;
  else
    t->not_migrated++;
  const char *msg = problem_message(it);
  const char *code = jstr(it, "code");
  char *pat = cause_pattern(msg, jstr(it, "key"));
  size_t klen = strlen(status) + strlen(stage) + strlen(code ? code : "") + strlen(pat ? pat : "") + 4;
  char *ckey = malloc(klen);
  if (!ckey) {
    free(pat);
    return 1;
  }
  snprintf(ckey, klen, "%s\n%s\n%s\n%s", status, stage, code ? code : "", pat ? pat : "");
  json_t *c = json_object_get(t->causes, ckey);
  if (!c) {
    if (json_object_size(t->causes) >= CLI_HTML_MAX_CAUSES) {
      t->other_causes++;
      free(ckey);
      free(pat);
      return 0;
    }
    c = json_pack("{s:s, s:s, s:s?, s:s, s:s, s:I, s:[]}", "class", status, "stage", stage, "code", code,
                  "pattern", pat ? pat : msg, "message", msg, "count", (json_int_t)0, "keys");
    const char *detail = jstr(it, "detail");
    if (detail) json_object_set_new(c, "detail", json_string(detail));
    json_t *reasons = json_object_get(json_object_get(it, "report"), "reasons");
    if (json_is_array(reasons)) json_object_set(c, "reasons", reasons);
    json_object_set_new(t->causes, ckey, c);
    json_array_append_new(t->cause_order, json_string(ckey));
  }
  json_object_set_new(c, "count", json_integer(json_integer_value(json_object_get(c, "count")) + 1));
  json_t *keys = json_object_get(c, "keys");
  if (json_array_size(keys) < CLI_HTML_CAUSE_KEYS) json_array_append_new(keys, json_string(jstr(it, "key")));
  free(ckey);
  free(pat);
  return 0;
}

/* What to do about a cause (the fix text of the page). */
static const char *fix_text(const char *cls, const char *code) {
  if (!strcmp(cls, "blocked"))
    return "A run cannot carry these items as things stand: fix what the message names (on the target, the "
           "source or in the configuration), then `ferry plan` again until nothing is blocked.";
  if (!strcmp(cls, "differs"))
    return "The target differs from the source: `ferry run --repair` carries exactly these items again, then "
           "`ferry verify` checks them.";
  if (!strcmp(cls, "in_doubt"))
    return "The run stopped in the middle of these items: run `ferry run` again; the sink first checks what the "
           "target holds, so nothing is created twice.";
  if (!strcmp(cls, "not_migrated")) return "These items were never carried: `ferry run` carries them.";
  static const struct {
    const char *code, *fix;
  } fixes[] = {
      {"ETRANSIENT",
       "The target did not answer (or answered 5xx) after every retry: check that it is up and "
       "reachable, then `ferry run` again (done items are skipped)."},
      {"EINDOUBT",
       "A request was sent and no answer came: `ferry run` again; the sink checks the target before it "
       "writes again."},
      {"EPERM",
       "Credentials or permissions were refused: fix the user, password or token in the configuration "
       "(or the target user's rights), then `ferry run` again."},
      {"ENOENT",
       "Something the item needs does not exist (a definition, user, table, record or file): create or "
       "publish it on the target, then `ferry run` again."},
      {"ECONFLICT",
       "The target already holds something different: look at the object the message names, resolve it "
       "(remove, rename or map it), then `ferry run` again."},
      {"EPROTO",
       "A server answered something ferry cannot understand: check the server's version and its log (the"
       " detail holds the answer), then `ferry run` again."},
      {"ECONFIG", "Fix the configuration as the message says, then `ferry run` again."},
      {"EINVAL",
       "The item's data cannot be carried as it is: fix it on the source or in the configuration's "
       "mapping, then `ferry run` again."},
  };
  for (size_t i = 0; code && i < sizeof fixes / sizeof fixes[0]; i++)
    if (!strcmp(fixes[i].code, code)) return fixes[i].fix;
  return "Fix the cause the message names, then `ferry run` again: done items are skipped, only these are "
         "tried again.";
}

/* ---- pass 2: the table ----------------------------------------------------------------------------------- */
typedef struct rows {
  html *h;
  int64_t n, left_out;
} rows;

static void td_text(html *h, const char *cls, const char *s) {
  html_rawf(h, "<td class=\"%s\">", cls);
  html_text(h, s);
  html_raw(h, "</td>");
}

/* Strings of an array joined with ", " (members `key` of objects when key given); NULL when empty. */
static char *join(json_t *a, const char *key) {
  size_t len = 0, i;
  json_t *v;
  json_array_foreach(a, i, v) {
    const char *s = key ? jstr(v, key) : json_string_value(v);
    if (s) len += strlen(s) + 2;
  }
  if (!len) return NULL;
  char *out = malloc(len + 1), *o = out;
  if (!out) return NULL;
  json_array_foreach(a, i, v) {
    const char *s = key ? jstr(v, key) : json_string_value(v);
    if (!s) continue;
    if (o != out) o += sprintf(o, ", ");
    o += sprintf(o, "%s", s);
  }
  *o = '\0';
  return out;
}

static int row_item(void *arg, json_t *it) {
  rows *r = arg;
  if (r->n >= CLI_HTML_MAX_ROWS + CLI_HTML_MAX_PROBLEM_ROWS ||
      (r->n >= CLI_HTML_MAX_ROWS && !is_problem(jstr(it, "status")))) {
    r->left_out++;
    return 0;
  }
  r->n++;
  html *h = r->h;
  json_t *rep = json_object_get(it, "report");
  const char *status = jstr(it, "status");
  html_raw(h, "<tr data-stage=\"");
  html_text(h, jstr(it, "stage"));
  html_raw(h, "\" data-status=\"");
  html_text(h, status);
  html_raw(h, "\">");
  td_text(h, "stage", jstr(it, "stage"));
  td_text(h, "key", jstr(it, "key"));
  html_rawf(h, "<td class=\"status\"><span class=\"st\" style=\"background:%s\">", html_status_color(status));
  html_text(h, status);
  html_raw(h, "</span></td>");
  const char *target = jstr(rep, "target_id") ? jstr(rep, "target_id") : jstr(rep, "target_process_id");
  td_text(h, "target", target);
  td_text(h, "record", jstr(rep, "record_id"));
  /* definition: the source's, and the target's when it differs */
  const char *def = jstr(rep, "definition"), *tdef = jstr(rep, "target_definition");
  html_raw(h, "<td class=\"definition\">");
  html_text(h, def ? def : tdef);
  if (def && tdef && strcmp(def, tdef)) {
    html_raw(h, " &#8594; ");
    html_text(h, tdef);
  }
  html_raw(h, "</td>");
  json_t *acts = json_object_get(rep, "open_activities");
  char *a = join(acts, "activity");
  td_text(h, "activities", a);
  free(a);
  /* assignees: every open activity's, once each; who accepted, marked */
  json_t *who = json_array(), *seen = json_object();
  size_t i, k;
  json_t *act, *u;
  json_array_foreach(acts, i, act) {
    json_array_foreach(json_object_get(act, "assignees"), k, u) {
      const char *s = json_string_value(u);
      if (s && !json_object_get(seen, s)) {
        json_object_set_new(seen, s, json_true());
        json_array_append_new(who, json_string(s));
      }
    }
  }
  char *as = join(who, NULL);
  td_text(h, "assignees", as);
  free(as);
  json_decref(who);
  json_decref(seen);
  td_text(h, "adopted", json_is_true(json_object_get(rep, "adopted")) ? "yes" : "");
  /* start-path changes (preserve-records' tools_changed): table.column (action) */
  html_raw(h, "<td class=\"startpath\">");
  json_t *ch;
  json_array_foreach(json_object_get(rep, "tools_changed"), i, ch) {
    if (i) html_raw(h, ", ");
    html_textf(h, "%s.%s (%s)", jstr(ch, "table") ? jstr(ch, "table") : "?",
               jstr(ch, "column") ? jstr(ch, "column") : "?",
               jstr(ch, "action") ? jstr(ch, "action") : "changed");
  }
  html_raw(h, "</td>");
  /* losses: their kinds, what each is in the tooltip */
  html_raw(h, "<td class=\"losses\">");
  json_t *l;
  json_array_foreach(json_object_get(rep, "losses"), i, l) {
    html_raw(h, i ? ", <span title=\"" : "<span title=\"");
    html_text(h, jstr(l, "what") ? jstr(l, "what") : jstr(l, "due"));
    html_raw(h, "\">");
    html_text(h, jstr(l, "kind") ? jstr(l, "kind") : "loss");
    html_raw(h, "</span>");
  }
  html_raw(h, "</td>");
  const char *note = jstr(it, "error");
  if (!note) note = jstr(json_object_get(it, "verify"), "message");
  if (!note) note = jstr(rep, "would");
  html_raw(h, "<td class=\"err\">");
  if (note && jstr(it, "code") && jstr(it, "error")) html_textf(h, "%s: ", jstr(it, "code"));
  html_text(h, note);
  html_raw(h, "</td></tr>\n");
  return 0;
}

/* ---- the id map ----------------------------------------------------------------------------------------- */
static void iso(int64_t ms, char *buf, size_t n) {
  if (ms <= 0) {
    snprintf(buf, n, "-");
    return;
  }
  time_t s = (time_t)(ms / 1000);
  struct tm tm;
  gmtime_r(&s, &tm);
  snprintf(buf, n, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
           tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

typedef struct ids {
  html *h;
  int64_t n, left_out;
} ids;

static int id_row(void *arg, const ferry_journal_id *id) {
  ids *x = arg;
  if (id->kind[0] == '_') return 0; /* a plugin's own bookkeeping (as export-map) */
  if (x->n >= CLI_HTML_MAX_IDS) {
    x->left_out++;
    return 0;
  }
  char when[96];
  iso(id->created, when, sizeof when);
  json_t *r = json_pack("[s, s, s, s, s, s]", id->kind, id->old_id, id->new_id, id->stage, id->key, when);
  html_raw(x->h, x->n++ ? ",\n" : "\n");
  html_json(x->h, r);
  json_decref(r);
  return 0;
}

/* ---- the page -------------------------------------------------------------------------------------------- */
static json_t *find_stage(json_t *stages, const char *name) {
  size_t i;
  json_t *s;
  json_array_foreach(stages, i, s) if (name && jstr(s, "name") && !strcmp(jstr(s, "name"), name)) return s;
  return NULL;
}

static void th(html *h, const char *cls, const char *label) {
  html_rawf(h, "<th class=\"%s\">%s</th>", cls, label);
}

static void td_num(html *h, const char *cls, int64_t v) {
  html_rawf(h, "<td class=\"n %s\">%lld</td>", cls, (long long)v);
}

static int64_t jint(json_t *o, const char *k) { return (int64_t)json_integer_value(json_object_get(o, k)); }

static json_t *pick_run(json_t *runs, int64_t want) {
  size_t i;
  json_t *r;
  if (want) {
    json_array_foreach(runs, i, r) if (jint(r, "id") == want) return r;
    return NULL;
  }
  json_array_foreach(runs, i, r) if (json_is_object(json_object_get(r, "summary"))) return r; /* newest first */
  return json_array_get(runs, 0);
}

int cli_html_report(const cli_html_opts *o, ferry_error *err) {
  source src = {0};
  json_t *runs = NULL, *run = NULL, *summary = NULL, *jstages = NULL, *names = NULL;
  int rc = 0;
  if (o->journal_path) {
    src.j = ferry_journal_open_readonly(o->journal_path, err);
    if (!src.j) return err && err->code ? err->code : FERRY_EIO;
    runs = ferry_journal_runs(src.j, 0, err);
    if (!runs) {
      ferry_journal_close(src.j);
      return err && err->code ? err->code : FERRY_EIO;
    }
    run = pick_run(runs, o->run_id);
    if (!run) {
      if (o->run_id) {
        char list[256] = "";
        size_t n = 0, k;
        json_t *r;
        json_array_foreach(runs, k, r) {
          if (n + 24 >= sizeof list) {
            snprintf(list + n, sizeof list - n, ", ...");
            break;
          }
          n += (size_t)snprintf(list + n, sizeof list - n, "%s%lld (%s)", k ? ", " : "", (long long)jint(r, "id"),
                                jstr(r, "mode") ? jstr(r, "mode") : "?");
        }
        rc = ferry_error_set(err, FERRY_EINVAL, "journal %s has no run %lld (its runs, newest first: %s)",
                             o->journal_path, (long long)o->run_id, n ? list : "none");
      } else {
        rc = ferry_error_set(err, FERRY_EINVAL, "journal %s holds no run yet: nothing to report", o->journal_path);
      }
      json_decref(runs);
      ferry_journal_close(src.j);
      return rc;
    }
    summary = json_object_get(run, "summary");
    jstages = ferry_journal_stages(src.j, err);
    if (!jstages) {
      json_decref(runs);
      ferry_journal_close(src.j);
      return err && err->code ? err->code : FERRY_EIO;
    }
  } else {
    src.report = o->report;
    summary = o->report;
  }
  json_t *rstages = json_object_get(summary, "stages"); /* the run's stages: counts, timing, series, latency */
  const char *mode = jstr(summary, "mode") ? jstr(summary, "mode") : run ? jstr(run, "mode") : "run";

  tally t = {.stage_counts = json_object(),
             .stage_order = json_array(),
             .causes = json_object(),
             .cause_order = json_array()};
  if (foreach_item(&src, tally_item, &t, err) < 0) rc = err && err->code ? err->code : FERRY_EIO;
  html *h = NULL;
  if (!rc) {
    h = html_open(o->html_path, err);
    if (!h) rc = err && err->code ? err->code : FERRY_EIO;
  }
  if (rc) goto out;

  /* ---- header: verdict, run, configuration ---- */
  char title[160];
  if (run)
    snprintf(title, sizeof title, "ferry report: %s %lld", mode, (long long)jint(run, "id"));
  else
    snprintf(title, sizeof title, "ferry report: %s", mode);
  html_head(h, title);
  html_raw(h, "<header>\n<h1>");
  html_text(h, title);
  html_raw(h, "</h1>\n");
  char verdict[256] = "";
  size_t vl = 0;
  struct {
    int64_t n;
    const char *what;
  } parts[] = {{t.failed, "failed"},
               {t.blocked, "blocked"},
               {t.differs, "differ"},
               {t.in_doubt, "in doubt"},
               {t.not_migrated, "not migrated"}};
  for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
    if (parts[i].n && vl < sizeof verdict)
      vl += (size_t)snprintf(verdict + vl, sizeof verdict - vl, "%s%lld %s", vl ? ", " : "",
                             (long long)parts[i].n, parts[i].what);
  const char *vclass = t.failed || t.blocked || t.differs ? "bad" : vl ? "warn" : "ok";
  if (!vl) {
    if (!strcmp(mode, "verify"))
      snprintf(verdict, sizeof verdict, "all equal (%lld items)", (long long)t.items);
    else if (!strcmp(mode, "plan"))
      snprintf(verdict, sizeof verdict, "nothing blocked (%lld items)", (long long)t.items);
    else
      snprintf(verdict, sizeof verdict, "all %lld items done", (long long)t.items);
  }
  if (json_is_true(json_object_get(summary, "interrupted")) && vl < sizeof verdict)
    snprintf(verdict + strlen(verdict), sizeof verdict - strlen(verdict), "; interrupted: run again to resume");
  html_rawf(
      h,
      "<p id=\"verdict\" class=\"verdict %s\" data-failed=\"%lld\" data-blocked=\"%lld\" data-differ=\"%lld\" "
      "data-in-doubt=\"%lld\" data-items=\"%lld\">",
      vclass, (long long)t.failed, (long long)t.blocked, (long long)t.differs, (long long)t.in_doubt,
      (long long)t.items);
  html_text(h, verdict);
  html_raw(h, "</p>\n<dl class=\"meta\">\n");
  if (o->settings && jstr(o->settings, "origin")) {
    html_raw(h, "<dt>configuration</dt><dd id=\"config\">");
    html_text(h, jstr(o->settings, "origin"));
    html_raw(h, "</dd>\n");
  }
  if (o->journal_path) {
    html_raw(h, "<dt>journal</dt><dd id=\"journal\">");
    html_text(h, o->journal_path);
    html_raw(h, "</dd>\n");
  }
  if (run) {
    char a[96], b[96];
    iso(jint(run, "started"), a, sizeof a);
    iso(jint(run, "ended"), b, sizeof b);
    html_rawf(h, "<dt>run</dt><dd id=\"run\" data-run=\"%lld\">", (long long)jint(run, "id"));
    html_textf(h, "%lld (%s), started %s, ended %s", (long long)jint(run, "id"), mode, a,
               json_is_null(json_object_get(run, "ended")) ? "- (still running, or killed)" : b);
    html_raw(h, "</dd>\n");
  }
  if (json_is_number(json_object_get(summary, "seconds")))
    html_rawf(h, "<dt>duration</dt><dd>%.2f s</dd>\n", json_number_value(json_object_get(summary, "seconds")));
  if (jstr(summary, "status_name")) {
    html_raw(h, "<dt>result</dt><dd id=\"result\">");
    html_text(h, jstr(summary, "status_name"));
    if (jstr(summary, "message")) {
      html_raw(h, ": ");
      html_text(h, jstr(summary, "message"));
    }
    html_raw(h, "</dd>\n");
  }
  /* the configuration's stages, in its order, with their plugins */
  json_t *cfg_stages = o->settings ? json_object_get(o->settings, "stages") : NULL;
  html_raw(h, "<dt>stages</dt><dd id=\"config-stages\">");
  size_t i;
  json_t *v;
  if (json_array_size(cfg_stages)) {
    json_array_foreach(cfg_stages, i, v) {
      json_t *rs = find_stage(rstages, json_string_value(v));
      if (i) html_raw(h, "; ");
      html_text(h, json_string_value(v));
      if (rs) html_textf(h, " (%s \xe2\x86\x92 %s)", jstr(rs, "source"), jstr(rs, "sink"));
    }
  } else {
    json_array_foreach(rstages, i, v) {
      if (i) html_raw(h, "; ");
      html_textf(h, "%s (%s \xe2\x86\x92 %s)", jstr(v, "name"), jstr(v, "source"), jstr(v, "sink"));
    }
  }
  html_raw(h, "</dd>\n</dl>\n</header>\n");

  /* ---- stages ---- */
  html_raw(h, "<h2>Stages</h2>\n<table id=\"stages\"><thead><tr>");
  th(h, "", "stage");
  th(h, "", "state");
  if (src.j) {
    th(h, "n", "journal: items");
    th(h, "n", "done");
    th(h, "n", "skipped");
    th(h, "n", "failed");
    th(h, "n", "in doubt");
  } else {
    th(h, "n", "items");
  }
  th(h, "n", "this run: done");
  th(h, "n", "skipped");
  th(h, "n", "already done");
  th(h, "n", "failed");
  th(h, "n", "retried");
  th(h, "n", "seconds");
  th(h, "n", "items/s");
  html_raw(h, "</tr></thead>\n<tbody>\n");
  /* every stage: the journal's (name order) or the run's */
  names = json_array();
  json_array_foreach(rstages, i, v) json_array_append(names, json_object_get(v, "name"));
  json_array_foreach(src.j ? jstages : NULL, i, v) {
    if (!find_stage(rstages, jstr(v, "name"))) json_array_append(names, json_object_get(v, "name"));
  }
  json_array_foreach(t.stage_order, i, v) {
    size_t k;
    json_t *x;
    int have = 0;
    json_array_foreach(names, k, x) have |= json_equal(x, v);
    if (!have) json_array_append(names, v);
  }
  json_array_foreach(names, i, v) {
    const char *name = json_string_value(v);
    json_t *rs = find_stage(rstages, name), *js = find_stage(jstages, name);
    html_raw(h, "<tr data-stage=\"");
    html_text(h, name);
    html_raw(h, "\">");
    td_text(h, "name", name);
    td_text(h, "state", rs ? jstr(rs, "state") : "not in this run");
    if (src.j) {
      td_num(h, "j-total", jint(js, "total"));
      td_num(h, "j-done", jint(js, "done"));
      td_num(h, "j-skipped", jint(js, "skipped"));
      td_num(h, "j-failed", jint(js, "failed"));
      td_num(h, "j-in-doubt", jint(js, "in_doubt"));
    } else {
      int64_t n = 0;
      const char *k;
      json_t *c;
      json_object_foreach(json_object_get(t.stage_counts, name), k, c) n += json_integer_value(c);
      td_num(h, "items", n);
    }
    if (rs && strcmp(jstr(rs, "state") ? jstr(rs, "state") : "", "not_selected")) {
      double secs = json_number_value(json_object_get(rs, "seconds"));
      int64_t handled = jint(rs, "done") + jint(rs, "skipped") + jint(rs, "failed") + jint(rs, "resumed");
      td_num(h, "r-done", jint(rs, "done"));
      td_num(h, "r-skipped", jint(rs, "skipped"));
      td_num(h, "r-resumed", jint(rs, "resumed"));
      td_num(h, "r-failed", jint(rs, "failed"));
      td_num(h, "r-retried", jint(rs, "retried"));
      html_rawf(h, "<td class=\"n seconds\">%.2f</td><td class=\"n rate\">%.1f</td>", secs,
                secs > 0 ? (double)handled / secs : 0);
    } else {
      html_raw(h, "<td class=\"n\" colspan=\"7\">-</td>");
    }
    html_raw(h, "</tr>\n");
    if (rs && jstr(rs, "error")) {
      html_raw(h, "<tr class=\"stage-error\"><td></td><td colspan=\"13\" class=\"msg\">");
      html_textf(h, "stage %s: %s", jstr(rs, "status") ? jstr(rs, "status") : "failed", jstr(rs, "error"));
      html_raw(h, "</td></tr>\n");
    }
  }
  html_raw(h, "</tbody></table>\n");
  if (src.j)
    html_raw(h,
             "<p class=\"note\">\"journal\": every item as the journal holds it now; \"this run\": what the run "
             "above did (its counts, time and rate).</p>\n");

  /* ---- charts ---- */
  html_raw(h, "<h2>Charts</h2>\n<div class=\"charts\">\n");
  html_chart_series(h, rstages, "completed", 1, "Items per second over the run", "items/s");
  json_t *orows = json_array();
  json_array_foreach(names, i, v) {
    json_t *counts = json_array();
    const char *k;
    json_t *c;
    json_object_foreach(json_object_get(t.stage_counts, json_string_value(v)), k, c)
        json_array_append_new(counts, json_pack("[s, O]", k, c));
    json_array_append_new(orows, json_pack("{s:O, s:o}", "name", v, "counts", counts));
  }
  html_chart_outcomes(h, orows);
  json_decref(orows);
  html_chart_series(h, rstages, "retries", 0, "Retries over time", "retries");
  html_chart_latency(h, rstages);
  html_raw(h, "</div>\n");

  /* ---- failures and blocks, by cause ---- */
  html_raw(h, "<h2 id=\"problems\">Failures and blocks by cause</h2>\n");
  if (!json_array_size(t.cause_order)) html_raw(h, "<p class=\"note\" id=\"no-problems\">none</p>\n");
  json_array_foreach(t.cause_order, i, v) {
    json_t *c = json_object_get(t.causes, json_string_value(v));
    const char *cls = jstr(c, "class");
    html_rawf(h, "<section class=\"cause %s\" data-class=\"%s\" data-count=\"%lld\" data-code=\"", cls, cls,
              (long long)jint(c, "count"));
    html_text(h, jstr(c, "code"));
    html_raw(h, "\" data-stage=\"");
    html_text(h, jstr(c, "stage"));
    html_raw(h, "\">\n<h3>");
    html_textf(h, "%lld %s in stage %s%s%s", (long long)jint(c, "count"), cls, jstr(c, "stage"),
               jstr(c, "code") ? ", " : "", jstr(c, "code") ? jstr(c, "code") : "");
    html_raw(h, "</h3>\n<p class=\"msg cause-text\">");
    html_text(h, jstr(c, "message"));
    html_raw(h, "</p>\n");
    if (jint(c, "count") > 1) {
      html_raw(h, "<p class=\"note\">pattern: <span class=\"msg\">");
      html_text(h, jstr(c, "pattern"));
      html_raw(h, "</span></p>\n");
    }
    json_t *reasons = json_object_get(c, "reasons");
    if (json_array_size(reasons)) {
      html_raw(h, "<ul class=\"reasons\">");
      size_t k;
      json_t *rv;
      json_array_foreach(reasons, k, rv) {
        const char *why = json_is_string(rv) ? json_string_value(rv)
                          : jstr(rv, "what") ? jstr(rv, "what")
                                             : jstr(rv, "message");
        if (!why || strstr(jstr(c, "message"), why)) continue; /* the message says it already */
        html_raw(h, "<li>");
        html_text(h, why);
        html_raw(h, "</li>");
      }
      html_raw(h, "</ul>\n");
    }
    html_raw(h, "<p class=\"fix\"><b>Fix:</b> ");
    html_text(h, fix_text(cls, jstr(c, "code")));
    html_raw(h, "</p>\n");
    if (jstr(c, "detail")) {
      html_raw(h, "<details><summary>detail</summary><p class=\"msg\">");
      html_text(h, jstr(c, "detail"));
      html_raw(h, "</p></details>\n");
    }
    json_t *keys = json_object_get(c, "keys");
    html_raw(h, "<details><summary>items</summary><ul class=\"keys\">");
    size_t k;
    json_t *kv;
    json_array_foreach(keys, k, kv) {
      html_raw(h, "<li>");
      html_text(h, json_string_value(kv));
      html_raw(h, "</li>");
    }
    if (jint(c, "count") > (int64_t)json_array_size(keys))
      html_rawf(h, "<li class=\"note\">and %lld more (`ferry status --items` lists every one)</li>",
                (long long)(jint(c, "count") - (int64_t)json_array_size(keys)));
    html_raw(h, "</ul></details>\n</section>\n");
  }
  if (t.other_causes)
    html_rawf(
        h,
        "<p class=\"note\">and %lld more items with %d+ other causes (`ferry status --items` lists them)</p>\n",
        (long long)t.other_causes, CLI_HTML_MAX_CAUSES);

  /* ---- the items ---- */
  html_raw(h,
           "<h2>Items</h2>\n<div class=\"toolbar\"><input type=\"search\" id=\"q\" placeholder=\"search every "
           "column\" "
           "aria-label=\"search\"><select id=\"fstatus\" aria-label=\"status\"><option value=\"\">every "
           "status</option>");
  json_t *all_status = json_object();
  json_array_foreach(t.stage_order, i, v) {
    const char *k;
    json_t *c;
    json_object_foreach(json_object_get(t.stage_counts, json_string_value(v)), k, c) json_object_set_new(
        all_status, k, json_integer(json_integer_value(json_object_get(all_status, k)) + json_integer_value(c)));
  }
  const char *sk;
  json_object_foreach(all_status, sk, v) {
    html_raw(h, "<option value=\"");
    html_text(h, sk);
    html_raw(h, "\">");
    html_textf(h, "%s (%lld)", sk, (long long)json_integer_value(v));
    html_raw(h, "</option>");
  }
  json_decref(all_status);
  html_raw(h, "</select><select id=\"fstage\" aria-label=\"stage\"><option value=\"\">every stage</option>");
  json_array_foreach(t.stage_order, i, v) {
    html_raw(h, "<option value=\"");
    html_text(h, json_string_value(v));
    html_raw(h, "\">");
    html_text(h, json_string_value(v));
    html_raw(h, "</option>");
  }
  html_raw(h, "</select><span class=\"note\"><span id=\"shown\"></span> shown</span></div>\n");
  html_raw(h, "<table id=\"items\"><thead><tr>");
  static const char *const cols[] = {"stage",     "source id",          "status",          "target id",
                                     "record id", "definition",         "open activities", "assignees",
                                     "adopted",   "start-path changes", "losses",          "error / note"};
  for (i = 0; i < sizeof cols / sizeof cols[0]; i++) th(h, "", cols[i]);
  html_raw(h, "</tr></thead>\n<tbody>\n");
  rows r = {.h = h};
  if (foreach_item(&src, row_item, &r, err) < 0) rc = err && err->code ? err->code : FERRY_EIO;
  html_raw(h, "</tbody></table>\n");
  html_rawf(h, "<p class=\"note\" id=\"rows\" data-rows=\"%lld\" data-left-out=\"%lld\">", (long long)r.n,
            (long long)r.left_out);
  if (r.left_out)
    html_textf(h,
               "The table shows %lld items: the first %d (stage and key order), then only failed, blocked, "
               "differing and in-doubt ones (at most %d more); %lld items are left out to keep the page usable: "
               "`ferry status --items` (or --json) lists every one.",
               (long long)r.n, CLI_HTML_MAX_ROWS, CLI_HTML_MAX_PROBLEM_ROWS, (long long)r.left_out);
  else
    html_textf(h, "%lld items.", (long long)r.n);
  html_raw(h, "</p>\n");

  /* ---- the id map ---- */
  html_raw(h, "<h2>Id map</h2>\n");
  if (src.j && !rc) {
    html_raw(h, "<script type=\"application/json\" id=\"idmap\">[");
    ids x = {.h = h};
    if (ferry_journal_ids(src.j, NULL, NULL, NULL, id_row, &x, err) < 0)
      rc = err && err->code ? err->code : FERRY_EIO;
    html_raw(h, "]</script>\n");
    html_rawf(
        h,
        "<p><button type=\"button\" id=\"csv\" data-ids=\"%lld\">Download the id map as CSV (%lld ids)</button> "
        "<span class=\"note\">old id &#8594; new id per kind, with the item that created it; the same "
        "as <code>ferry export-map</code>.</span></p>\n",
        (long long)x.n, (long long)x.n);
    if (x.left_out)
      html_rawf(h,
                "<p class=\"note\" id=\"ids-left-out\">%lld more ids are left out of the page: <code>ferry "
                "export-map</code> writes them all.</p>\n",
                (long long)x.left_out);
  } else if (!rc) {
    html_raw(h,
             "<p class=\"note\">a plan creates no id: the id map is in the journal once a run has carried "
             "items (<code>ferry report</code>, <code>ferry export-map</code>).</p>\n");
  }
  html_tail(h);

out:
  if (h) {
    ferry_error we = FERRY_ERROR_INIT;
    int crc = html_close(h, rc == 0, &we);
    if (!rc && crc) {
      rc = crc;
      if (err) {
        ferry_error_clear(err);
        *err = we;
        we = (ferry_error)FERRY_ERROR_INIT;
      }
    }
    ferry_error_clear(&we);
  }
  json_decref(names);
  json_decref(t.stage_counts);
  json_decref(t.stage_order);
  json_decref(t.causes);
  json_decref(t.cause_order);
  json_decref(jstages);
  json_decref(runs);
  if (src.j) ferry_journal_close(src.j);
  return rc;
}
