/* pgsql plugin: column type compatibility (plugins/pgsql/types.c) and value conversion (COPY text in
 * plugins/pgsql/util.c, JSON rows in plugins/pgsql/sink_write.c): what decides whether a table is refused
 * before any row is written, and how every value travels. */
#define _GNU_SOURCE
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock_core.h"
#include "pgsql.h"
#include "sink.h"

static void compat(const char *src, const char *dst, int want) {
  const char *why = NULL;
  int got = pgsql_type_compatible(src, dst, &why);
  MOCK_CHECK(got == want, "%s -> %s: got %d (%s), expected %d", src, dst, got, why ? why : "", want);
  if (!want) MOCK_CHECK(why && *why, "%s -> %s: refused without a reason", src, dst);
}

static void test_types(void) {
  /* the same type, spelled as format_type() prints it or short */
  compat("integer", "int4", 1);
  compat("character varying(255)", "varchar(255)", 1);
  compat("uuid", "uuid", 1);
  compat("UUID", "uuid", 1);
  /* strings take anything; strings go nowhere else */
  compat("text", "character varying(10)", 1);
  compat("bigint", "text", 1);
  compat("timestamp with time zone", "character(20)", 1);
  compat("integer[]", "text", 1);
  compat("text", "integer", 0);
  compat("text", "boolean", 0);
  compat("text", "uuid", 0);
  compat("character varying(36)", "timestamp without time zone", 0);
  /* integers widen, never narrow */
  compat("smallint", "integer", 1);
  compat("integer", "bigint", 1);
  compat("bigint", "integer", 0);
  compat("integer", "smallint", 0);
  compat("smallint", "double precision", 1);
  compat("integer", "double precision", 1);
  compat("bigint", "double precision", 0); /* 2^53 */
  compat("smallint", "real", 1);
  compat("integer", "real", 0);
  compat("real", "double precision", 1);
  compat("double precision", "real", 0);
  /* numerics: digits before and after the point must not shrink */
  compat("integer", "numeric", 1);
  compat("bigint", "numeric(19,0)", 1);
  compat("bigint", "numeric(18,0)", 0);
  compat("integer", "numeric(12,2)", 1);
  compat("integer", "numeric(11,2)", 0);
  compat("smallint", "numeric(5)", 1);
  compat("numeric(10,2)", "numeric(12,2)", 1);
  compat("numeric(10,2)", "numeric(12,4)", 1);
  compat("numeric(12,2)", "numeric(10,2)", 0);
  compat("numeric(10,3)", "numeric(10,2)", 0);
  compat("numeric", "numeric(30,10)", 0);
  compat("numeric(10,2)", "numeric", 1);
  compat("double precision", "numeric", 1);
  compat("double precision", "numeric(20,5)", 0);
  compat("numeric", "integer", 0);
  compat("numeric", "double precision", 0);
  /* dates and times: with and without zone both ways (read in the option timezone), never shortened */
  compat("date", "timestamp without time zone", 1);
  compat("date", "timestamp(3) with time zone", 1);
  compat("timestamp without time zone", "timestamp with time zone", 1);
  compat("timestamp with time zone", "timestamp without time zone", 1);
  compat("timestamp(6) without time zone", "timestamp(3) without time zone", 1);
  compat("timestamp without time zone", "date", 0);
  compat("timestamp with time zone", "time without time zone", 0);
  compat("time without time zone", "time with time zone", 1);
  compat("time with time zone", "time without time zone", 1);
  compat("interval", "time without time zone", 0);
  /* json, booleans, arrays */
  compat("json", "jsonb", 1);
  compat("jsonb", "json", 1);
  compat("boolean", "bool", 1);
  compat("boolean", "integer", 0);
  compat("integer[]", "bigint[]", 1);
  compat("bigint[]", "integer[]", 0);
  compat("integer[]", "integer", 0);
  compat("integer", "integer[]", 0);
  compat("text[]", "character varying(5)[]", 1);
  compat("integer[][]", "integer[]", 0);

  MOCK_CHECK(pgsql_type_narrower_string("text", "character varying(10)"), "text -> varchar(10) is narrower");
  MOCK_CHECK(pgsql_type_narrower_string("character varying(255)", "character varying(100)"), "255 -> 100");
  MOCK_CHECK(!pgsql_type_narrower_string("character varying(100)", "character varying(255)"), "100 -> 255");
  MOCK_CHECK(!pgsql_type_narrower_string("character varying(100)", "text"), "varchar(100) -> text");

  /* a type text from an item, checked before it reaches SQL text (to_regtype) */
  struct { const char *in, *want; } cases[] = {
      {"character varying(255)", "character varying"},
      {"numeric(10,2)", "numeric"},
      {"integer[]", "integer[]"},
      {"timestamp(3) with time zone", "timestamp with time zone"},
      {"int4", "int4"},
      {"integer; drop table app_fd_x", NULL},
      {"integer)--", NULL},
      {"text' ", NULL},
      {"\"quoted\"", NULL},
      {"Integer", NULL},
      {"", NULL},
      {"(10)", NULL},
      {"integer[", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *got = pgsql_type_base_for_check(cases[i].in);
    MOCK_CHECK((!got && !cases[i].want) || (got && cases[i].want && !strcmp(got, cases[i].want)),
               "type \"%s\": got %s, expected %s", cases[i].in, got ? got : "NULL",
               cases[i].want ? cases[i].want : "NULL");
    free(got);
  }
}

static char *escaped(const char *s, size_t n) {
  ferry_buf sb = {0};
  pgsql_copy_escape(&sb, s, n);
  return ferry_buf_steal(&sb);
}

static void test_copy_text(void) {
  char *e = escaped("a\tb\nc\\d\re\bf\fg\vh", 16);
  MOCK_STREQ(e, "a\\tb\\nc\\\\d\\re\\bf\\fg\\vh");
  free(e);
  e = escaped(NULL, 0);
  MOCK_STREQ(e, "\\N");
  free(e);
  e = escaped("", 0);
  MOCK_STREQ(e, "");
  free(e);
  /* the text "\N" is not NULL */
  e = escaped("\\N", 2);
  MOCK_STREQ(e, "\\\\N");
  free(e);
  /* bytea travels in its hex text form (bytea_output hex): the backslash is doubled */
  e = escaped("\\x00ff10", 8);
  MOCK_STREQ(e, "\\\\x00ff10");
  free(e);

  /* every byte 1..255 survives escape + decode, in one field and among others */
  char all[256];
  for (int i = 1; i < 256; i++) all[i - 1] = (char)i;
  all[255] = '\0';
  ferry_buf line = {0};
  pgsql_copy_escape(&line, "first", 5);
  ferry_buf_add(&line, "\t");
  pgsql_copy_escape(&line, all, 255);
  ferry_buf_add(&line, "\t");
  pgsql_copy_escape(&line, NULL, 0);
  ferry_buf_add(&line, "\t");
  pgsql_copy_escape(&line, "", 0);
  MOCK_CHECK(!memchr(line.buf, '\n', line.len), "an escaped line holds no newline");
  char *f[5] = {0};
  size_t n = pgsql_copy_fields(line.buf, line.len, f, 5);
  MOCK_CHECK(n == 4, "fields: %zu, expected 4", n);
  MOCK_STREQ(f[0], "first");
  MOCK_CHECK(f[1] && !strcmp(f[1], all), "the 255 bytes did not survive");
  MOCK_CHECK(f[2] == NULL, "\\N must decode to NULL");
  MOCK_STREQ(f[3], "");
  MOCK_CHECK(f[4] == NULL, "a missing field is NULL");
  for (int i = 0; i < 5; i++) free(f[i]);
  char *one = NULL;
  MOCK_CHECK(pgsql_copy_field(line.buf, line.len, 1, &one) == 1 && one && !strcmp(one, all), "field 1");
  free(one);
  one = (char *)"untouched";
  MOCK_CHECK(pgsql_copy_field(line.buf, line.len, 4, &one) == 0, "field 4 of 4 is not there");
  ferry_buf_free(&line);

  /* what PostgreSQL may send besides our own escapes: octal, hex, any escaped character */
  const char *in = "\\101\\x42\\x4a\\7\\q\\x\\\\N\tend\\";
  n = pgsql_copy_fields(in, strlen(in), f, 2);
  MOCK_CHECK(n == 2, "fields: %zu", n);
  MOCK_STREQ(f[0], "ABJ\aqx\\N");
  MOCK_STREQ(f[1], "end\\");
  free(f[0]);
  free(f[1]);

  /* lines */
  const char *data = "r1\na\tb\n\nlast";
  size_t pos = 0, len = 0;
  const char *l = NULL;
  const char *want[] = {"r1", "a\tb", "", "last"};
  int k = 0;
  while (pgsql_copy_next_line(data, strlen(data), &pos, &l, &len)) {
    MOCK_CHECK(k < 4 && len == strlen(want[k]) && !memcmp(l, want[k], len), "line %d", k);
    k++;
  }
  MOCK_CHECK(k == 4, "lines: %d, expected 4", k);
  pos = 0;
  MOCK_CHECK(!pgsql_copy_next_line("", 0, &pos, &l, &len), "no line in nothing");
  pos = 0;
  k = 0;
  while (pgsql_copy_next_line("x\n", 2, &pos, &l, &len)) k++;
  MOCK_CHECK(k == 1, "a final newline ends a line, it does not start one (%d lines)", k);

  /* array literals: quotes and backslashes escaped, NULL stays NULL */
  const char *v[] = {"a", "b\"c", NULL, "d\\e", ""};
  char *arr = ferry_pg_text_array(v, 5);
  MOCK_STREQ(arr, "{\"a\",\"b\\\"c\",NULL,\"d\\\\e\",\"\"}");
  free(arr);
}

/* JSON rows (a source other than pgsql: jsonl, a mapper) to COPY text. */
static void test_rows(void) {
  json_t *body = json_pack("{s:[s,s,s,s,s,s,s,s,s,s,s]}", "columns", "n", "s", "t", "f", "i", "r", "big", "obj",
                           "arr", "ts", "tstz");
  ferry_item *it = ferry_item_new(FERRY_ITEM_RECORD, "t:1..1", body);
  job j;
  memset(&j, 0, sizeof j);
  j.it = it;
  json_error_t je;
  json_t *rows = json_loads("[[null, \"tab\\there\\nand \\\\N\", true, false, -42, 0.1, 9007199254740993,"
                            " {\"k\": \"v\", \"n\": null}, [1, \"two\"], \"2024-02-29 23:59:59.123456\","
                            " \"2024-02-29 23:59:59.123456+05:30\"],"
                            " [\"\", \"\\u00e9\", false, true, 0, -1.5e-7, -9223372036854775808, {}, [], null, null]]",
                            0, &je);
  MOCK_CHECK(rows != NULL, "test rows do not parse: %s", je.text);
  ferry_error err = FERRY_ERROR_INIT;
  int rc = pgsql_rows_to_copy(&j, rows, &err);
  MOCK_CHECK(rc == 0, "pgsql_rows_to_copy: %d %s", rc, err.message ? err.message : "");
  MOCK_CHECK(j.rows == 2, "rows counted: %lld", (long long)j.rows);
  const char *want =
      "\\N\ttab\\there\\nand \\\\N\tt\tf\t-42\t0.10000000000000001\t9007199254740993\t{\"k\":\"v\",\"n\":null}\t"
      "[1,\"two\"]\t2024-02-29 23:59:59.123456\t2024-02-29 23:59:59.123456+05:30\n"
      "\t\xc3\xa9\tf\tt\t0\t-1.4999999999999999e-7\t-9223372036854775808\t{}\t[]\t\\N\t\\N\n";
  MOCK_CHECK(j.data && j.len == strlen(want) && !memcmp(j.data, want, j.len), "COPY text:\n%.*s\nexpected:\n%s",
             (int)j.len, j.data ? j.data : "", want);
  /* floats keep every bit: the text parses back to the same double */
  char *f[11] = {0};
  size_t pos = 0, len = 0;
  const char *line = NULL;
  pgsql_copy_next_line(j.data, j.len, &pos, &line, &len);
  pgsql_copy_fields(line, len, f, 11);
  MOCK_CHECK(f[5] && strtod(f[5], NULL) == 0.1, "0.1 did not round-trip: %s", f[5] ? f[5] : "NULL");
  for (int i = 0; i < 11; i++) free(f[i]);
  free(j.owned);
  json_decref(rows);

  /* a row of the wrong shape refuses the batch, naming the row */
  memset(&j, 0, sizeof j);
  j.it = it;
  rows = json_loads("[[1,2,3,4,5,6,7,8,9,10,11], [1, 2], 3]", 0, &je);
  rc = pgsql_rows_to_copy(&j, rows, &err);
  MOCK_CHECK(rc == FERRY_EINVAL, "a short row: %d", rc);
  MOCK_CHECK(err.message && strstr(err.message, "row 1 ") && strstr(err.message, "11 values"), "message: %s",
             err.message ? err.message : "");
  MOCK_CHECK(j.owned == NULL, "no COPY text is kept for a refused batch");
  ferry_error_clear(&err);
  json_decref(rows);
  ferry_item_free(it);
}

static void test_session(void) {
  /* every connection gets the same text forms of values: zone, ISO dates, hex bytea, full floats */
  char *s = pgsql_session_sets("Europe/Berlin");
  MOCK_CHECK(strstr(s, "SET LOCAL TIME ZONE 'Europe/Berlin'") != NULL, "%s", s);
  MOCK_CHECK(strstr(s, "DateStyle TO 'ISO, YMD'") != NULL, "%s", s);
  MOCK_CHECK(strstr(s, "bytea_output TO 'hex'") != NULL, "%s", s);
  MOCK_CHECK(strstr(s, "extra_float_digits TO 3") != NULL, "%s", s);
  MOCK_CHECK(strstr(s, "IntervalStyle TO 'postgres'") != NULL, "%s", s);
  MOCK_CHECK(strstr(s, "client_encoding TO 'UTF8'") != NULL, "%s", s);
  free(s);
  s = pgsql_session_sets("UTC'; DROP TABLE x; --");
  MOCK_CHECK(strstr(s, "TIME ZONE 'UTC''; DROP TABLE x; --'") != NULL, "the zone is quoted as a literal: %s", s);
  free(s);
  s = pgsql_qname("my \"schema\"", "app_fd_x");
  MOCK_STREQ(s, "\"my \"\"schema\"\"\".\"app_fd_x\"");
  free(s);
}

int main(void) {
  test_types();
  test_copy_text();
  test_rows();
  test_session();
  return mock_report("unit.pgsql.values");
}
