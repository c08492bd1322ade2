/* joget plugin: the quirks of Joget's replies and ids that the plugin's internals absorb
 * (plugins/joget/client.c, sink_start.c, sink_task.c; docs/joget-facts.md 4.4, 5.1, 5.3, 6.1). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "joget.h"
#include "mock_core.h"
#include "sink.h"

static json_t *parse(const char *text) {
  json_error_t je;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
  if (!v) {
    fprintf(stderr, "bad test JSON %s: %s\n", text, je.text);
    exit(2);
  }
  return v;
}

/* joget_list(doc, "data") as compact JSON */
static void list_is(const char *doc_text, const char *want) {
  json_t *doc = doc_text ? parse(doc_text) : NULL;
  json_t *l = joget_list(doc, "data");
  char *got = json_dumps(l, JSON_COMPACT | JSON_ENCODE_ANY);
  MOCK_CHECK(json_is_array(l), "joget_list(%s) is not an array", doc_text ? doc_text : "NULL");
  MOCK_CHECK(got && !strcmp(got, want), "joget_list(%s): got %s, expected %s", doc_text ? doc_text : "NULL",
             got ? got : "NULL", want);
  free(got);
  json_decref(l);
  json_decref(doc);
}

static void test_list(void) {
  /* accumulate: several rows are an array, one row is the object itself, none is no key at all */
  list_is("{\"data\": [{\"id\": \"1\"}, {\"id\": \"2\"}], \"total\": 2}", "[{\"id\":\"1\"},{\"id\":\"2\"}]");
  list_is("{\"data\": {\"id\": \"1\"}, \"total\": 1}", "[{\"id\":\"1\"}]");
  list_is("{\"total\": 0}", "[]");
  list_is("{\"data\": null}", "[]");
  list_is("{\"data\": \"x\"}", "[\"x\"]");
  list_is("{\"data\": []}", "[]");
  /* what an unknown id answers (200 with an empty body: no document), or a body that is not an object */
  list_is(NULL, "[]");
  list_is("[{\"id\": \"1\"}]", "[]");
  /* the array is the document's own (a new reference), the single row is wrapped, not copied */
  json_t *doc = parse("{\"data\": {\"id\": \"1\"}}");
  json_t *l = joget_list(doc, "data");
  MOCK_CHECK(json_array_get(l, 0) == json_object_get(doc, "data"), "the single row must be the same object");
  json_decref(l);
  json_decref(doc);
  doc = parse("{\"data\": [1]}");
  l = joget_list(doc, "data");
  MOCK_CHECK(l == json_object_get(doc, "data"), "an array must be returned as it is");
  json_decref(l);
  json_decref(doc);
  /* strings only: Joget sends numbers as numbers in some views, and a missing key is null */
  doc = parse("{\"s\": \"x\", \"n\": 5, \"z\": null}");
  MOCK_STREQ(joget_str(doc, "s"), "x");
  MOCK_CHECK(joget_str(doc, "n") == NULL, "a number is not a string");
  MOCK_CHECK(joget_str(doc, "z") == NULL && joget_str(doc, "missing") == NULL, "null and missing");
  MOCK_CHECK(joget_str(NULL, "s") == NULL, "no document");
  json_decref(doc);
}

static void split_is(const char *def, int want_rc, const char *app, const char *ver, const char *proc) {
  char *a = (char *)"x", *v = (char *)"x", *p = (char *)"x";
  int rc = joget_def_split(def, &a, &v, &p);
  MOCK_CHECK(rc == want_rc, "joget_def_split(%s): %d, expected %d", def ? def : "NULL", rc, want_rc);
  if (!want_rc) {
    MOCK_STREQ(a, app);
    MOCK_STREQ(v, ver);
    MOCK_STREQ(p, proc);
  } else {
    MOCK_CHECK(!a && !v && !p, "joget_def_split(%s) failed but left parts set", def ? def : "NULL");
  }
  if (!want_rc || a) free(a);
  if (!want_rc || v) free(v);
  if (!want_rc || p) free(p);
}

static void test_def_split(void) {
  split_is("leaveApp#3#leave_process", 0, "leaveApp", "3", "leave_process");
  split_is("hr#latest#onboarding", 0, "hr", "latest", "onboarding");
  split_is("a#1#p-with.dots_and-dashes", 0, "a", "1", "p-with.dots_and-dashes");
  split_is("leaveApp:3:leave_process", -1, NULL, NULL, NULL); /* the URL form is not a definition id */
  split_is("leaveApp#leave_process", -1, NULL, NULL, NULL);
  split_is("a#1#p#extra", -1, NULL, NULL, NULL);
  split_is("#1#p", -1, NULL, NULL, NULL);
  split_is("a##p", -1, NULL, NULL, NULL);
  split_is("a#1#", -1, NULL, NULL, NULL);
  split_is("", -1, NULL, NULL, NULL);
  split_is(NULL, -1, NULL, NULL, NULL);
}

static void test_bad_ident(void) {
  /* Joget's SqlFilterAspect answers 500 for any workflow argument with a space, '(', ')', ';' or the start of
   * a comment: such ids are blocked before anything is started */
  const char *bad[] = {"rec 1", "rec(1", "rec)", "a;b", "x/*y", "/*", " ", "a\tb(", NULL};
  const char *good[] = {"rec-1", "3f2c9e1a-0b7d-4c55-9e2b-1c1b9c9d0e11", "a/b", "a*b", "a*/b", "\xc3\xa9t\xc3\xa9",
                        "a\tb", "", "a'b", "a\"b", NULL};
  for (int i = 0; bad[i]; i++) MOCK_CHECK(joget_bad_ident(bad[i]), "\"%s\" must be refused", bad[i]);
  for (int i = 0; good[i]; i++) MOCK_CHECK(!joget_bad_ident(good[i]), "\"%s\" must pass", good[i]);
  MOCK_CHECK(!joget_bad_ident(NULL), "NULL passes (nothing is sent)");
}

static int64_t utc_ms(int y, int mo, int d, int h, int mi) {
  struct tm tm;
  memset(&tm, 0, sizeof tm);
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  return (int64_t)timegm(&tm) * 1000;
}

static void time_is(const char *s, int64_t want) {
  int64_t got = joget_parse_display_time(s);
  MOCK_CHECK(got == want, "joget_parse_display_time(\"%s\"): %lld, expected %lld", s ? s : "NULL", (long long)got,
             (long long)want);
}

static void test_display_time(void) {
  const int64_t minute = 59999, zone = 14LL * 3600 * 1000;
  /* the emulator: "yyyy-MM-dd hh:mm a", UTC; the latest instant of the minute */
  time_is("2024-03-05 01:07 PM", utc_ms(2024, 3, 5, 13, 7) + minute);
  time_is("2024-03-05 01:07 AM", utc_ms(2024, 3, 5, 1, 7) + minute);
  time_is("2024-03-05 12:00 AM", utc_ms(2024, 3, 5, 0, 0) + minute);
  time_is("2024-03-05 12:59 PM", utc_ms(2024, 3, 5, 12, 59) + minute);
  time_is("2024-12-31 11:59 PM", utc_ms(2024, 12, 31, 23, 59) + minute);
  /* Joget's default "dd-MM-yyyy hh:mm aa" is the server's local time: allow 14 h (the largest UTC offset),
   * so that an instance created after the intent is never taken for an older one */
  time_is("05-03-2024 01:07 PM", utc_ms(2024, 3, 5, 13, 7) + minute + zone);
  time_is("29-02-2024 12:30 am", utc_ms(2024, 2, 29, 0, 30) + minute + zone);
  time_is("31-12-2024 11:59 PM", utc_ms(2024, 12, 31, 23, 59) + minute + zone);
  /* anything else is unknown (the candidate is then judged by its view, not its date) */
  time_is(NULL, -1);
  time_is("", -1);
  time_is("2024-03-05 13:07", -1);
  time_is("2024-03-05 01:07 PM UTC", -1);
  time_is("2024-03-05T13:07:00Z", -1);
  time_is("5 March 2024", -1);
  time_is("13-2024-05 01:07 PM", -1);
}

static void var_is(const char *json, const char *want) {
  json_t *v = parse(json);
  char *got = joget_var_text(v);
  MOCK_CHECK((!got && !want) || (got && want && !strcmp(got, want)), "joget_var_text(%s): %s, expected %s", json,
             got ? got : "NULL", want ? want : "NULL");
  free(got);
  json_decref(v);
}

static void test_variables(void) {
  /* the text a variable is sent and compared as */
  var_is("\"approved\"", "approved");
  var_is("\"\"", "");
  var_is("42", "42");
  var_is("-9223372036854775807", "-9223372036854775807");
  var_is("2.5", "2.5");
  var_is("0.1", "0.10000000000000001");
  var_is("true", "true");
  var_is("false", "false");
  var_is("null", NULL);
  var_is("{\"a\": 1}", NULL);
  var_is("[1]", NULL);
  /* which variables go with process/start (var_<name>=value) and which are set right after it:
   * a Boolean makes the start fail, an empty value too, and "var_" is cut out of parameter names */
  MOCK_CHECK(joget_var_at_start("status", "approved"), "a plain variable goes with the start");
  MOCK_CHECK(joget_var_at_start("amount", "0"), "\"0\" goes with the start");
  MOCK_CHECK(joget_var_at_start("note", "truest"), "\"truest\" is not a Boolean");
  MOCK_CHECK(!joget_var_at_start("flag", "true"), "\"true\" is set after the start");
  MOCK_CHECK(!joget_var_at_start("flag", "FALSE"), "\"FALSE\" is set after the start (any case)");
  MOCK_CHECK(!joget_var_at_start("flag", "True"), "\"True\" is set after the start (any case)");
  MOCK_CHECK(!joget_var_at_start("empty", ""), "an empty value is set after the start");
  MOCK_CHECK(!joget_var_at_start("none", NULL), "no value is set after the start");
  MOCK_CHECK(!joget_var_at_start("my_var_x", "1"), "a name containing var_ is set after the start");
  MOCK_CHECK(!joget_var_at_start("var_x", "1"), "a name starting with var_ is set after the start");
  MOCK_CHECK(joget_var_at_start("variable", "1"), "\"variable\" does not contain \"var_\"");
}

/* monitoring/activity/view -> state, assignees (a list whatever Joget sent), accepted_by. */
static void view_is(const char *doc_text, const char *want) {
  json_t *doc = json_loads(doc_text, 0, NULL);
  json_t *act = json_pack("{s:s}", "id", "a1");
  joget_act_view(act, doc);
  char *got = json_dumps(act, JSON_COMPACT | JSON_SORT_KEYS);
  MOCK_STREQ(got, want);
  free(got);
  json_decref(act);
  json_decref(doc);
}

static void test_act_view(void) {
  /* one assignee, running, no acceptedUser: accepting left only the accepter's assignment */
  view_is("{\"state\":\"open.running\",\"assignee\":\"ann\"}",
          "{\"accepted_by\":\"ann\",\"assignees\":[\"ann\"],\"id\":\"a1\",\"state\":\"open.running\"}");
  /* acceptedUser wins */
  view_is("{\"state\":\"open.running\",\"assignee\":[\"ann\",\"bob\"],\"acceptedUser\":\"bob\"}",
          "{\"accepted_by\":\"bob\",\"assignees\":[\"ann\",\"bob\"],\"id\":\"a1\",\"state\":\"open.running\"}");
  /* not yet accepted: several assignees, or not running */
  view_is("{\"state\":\"open.running\",\"assignee\":[\"ann\",\"bob\"]}",
          "{\"accepted_by\":null,\"assignees\":[\"ann\",\"bob\"],\"id\":\"a1\",\"state\":\"open.running\"}");
  view_is("{\"state\":\"open.not_running.not_started\",\"assignee\":\"ann\"}",
          "{\"accepted_by\":null,\"assignees\":[\"ann\"],\"id\":\"a1\",\"state\":\"open.not_running.not_started\"}");
  /* no assignee at all (null), no state: an empty list, the state left as it was */
  view_is("{\"assignee\":null}", "{\"accepted_by\":null,\"assignees\":[],\"id\":\"a1\"}");
}

/* The identity note's name (sink_lookups.c): a fingerprint of the user and of what calls as that user depend
 * on, equal for equal settings, different when any of them differs, and never the password itself. */
static char *note_for(int mode, const char *base, const char *mpw, const char *dsn, const char *users,
                      const char *user) {
  joget_ctx_t c;
  joget_snk k;
  memset(&c, 0, sizeof c);
  memset(&k, 0, sizeof k);
  c.snk = &k;
  k.c = &c;
  c.start_mode = mode;
  c.base = (char *)base;
  c.master_user = "master";
  c.master_password = (char *)mpw;
  c.dsn = (char *)dsn;
  c.user_pw = users ? parse(users) : NULL;
  char *n = joget_identity_note_name(&c, user);
  json_decref(c.user_pw);
  return n;
}

static void test_identity_note(void) {
  const char *b = "http://t:8080/jw";
  char *a = note_for(JOGET_START_MASTER, b, "s3cret", NULL, NULL, "alice");
  MOCK_CHECK(a && !strncmp(a, "joget identity ", 15) && strlen(a) == 15 + 64 && strspn(a + 15, "0123456789abcdef") == 64,
             "note name: got %s", a ? a : "NULL");
  MOCK_CHECK(a && !strstr(a, "s3cret") && !strstr(a, "alice"), "the note name holds the password or user: %s", a);
  char *same = note_for(JOGET_START_MASTER, b, "s3cret", NULL, NULL, "alice");
  MOCK_CHECK(a && same && !strcmp(a, same), "equal settings, different note names: %s %s", a, same);
  char *diff[] = {
      note_for(JOGET_START_MASTER, b, "s3cret", NULL, NULL, "bob"),                  /* another user */
      note_for(JOGET_START_MASTER, b, "other", NULL, NULL, "alice"),                 /* another master password */
      note_for(JOGET_START_MASTER, "http://u:8080/jw", "s3cret", NULL, NULL, "alice"), /* another target */
      note_for(JOGET_START_HASH, b, "s3cret", "host=a", NULL, "alice"),              /* start_as hash */
      note_for(JOGET_START_HASH, b, "s3cret", "host=b", NULL, "alice"),              /* ... another dsn */
      note_for(JOGET_START_USERS, b, NULL, NULL, "{\"alice\": {\"password\": \"p1\"}}", "alice"), /* users */
      note_for(JOGET_START_USERS, b, NULL, NULL, "{\"alice\": {\"password\": \"p2\"}}", "alice"), /* ... another */
  };
  size_t nd = sizeof diff / sizeof *diff;
  for (size_t i = 0; i < nd; i++) {
    MOCK_CHECK(diff[i] && a && strcmp(diff[i], a), "setting %zu: the same note name as the first (%s)", i,
               diff[i] ? diff[i] : "NULL");
    for (size_t j = 0; j < i; j++)
      MOCK_CHECK(diff[i] && diff[j] && strcmp(diff[i], diff[j]), "settings %zu and %zu: the same note name", j, i);
  }
  for (size_t i = 0; i < nd; i++) free(diff[i]);
  free(a);
  free(same);
}

int main(void) {
  test_identity_note();
  test_list();
  test_def_split();
  test_bad_ident();
  test_display_time();
  test_variables();
  test_act_view();
  return mock_report("unit.joget.quirks");
}
