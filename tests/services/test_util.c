/* Tests of the SDK helpers (ferry/util.h; the escaping of ferry/http.h and ferry/pg.h), through the shared
 * libferry like a plugin or a program would use them (public API only).
 *
 *   test_util <case>
 *
 * The SQL texts are also checked by a real PostgreSQL in services.pg.quote and services.pg.array. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ferry/ferry.h>
#include <ferry/http.h>
#include <ferry/pg.h>

#include "ftest.h"

/* ---- string buffer ------------------------------------------------------------------------------------- */
static void t_buf_growth(void) {
  ferry_buf b = FERRY_BUF_INIT;
  FT_ASSERT(b.buf == NULL && b.len == 0 && b.cap == 0, "starts empty, nothing allocated");
  ferry_buf_addn(&b, "", 0);
  FT_ASSERT(b.buf && b.buf[0] == '\0' && b.len == 0, "addn 0 allocates and terminates");
  /* 10000 appends of growing pieces: many reallocations; every byte where it belongs */
  size_t want = 0, caps = 0, last_cap = b.cap;
  for (int i = 0; i < 10000; i++) {
    char piece[16];
    int n = snprintf(piece, sizeof piece, "%d,", i);
    ferry_buf_add(&b, piece);
    want += (size_t)n;
    FT_ASSERT(b.len == want, "len %zu after %d appends, want %zu", b.len, i + 1, want);
    FT_ASSERT(b.cap > b.len && b.buf[b.len] == '\0', "terminated inside the allocation");
    if (b.cap != last_cap) caps++, last_cap = b.cap;
  }
  FT_ASSERT(caps >= 5, "the buffer grew (%zu times)", caps);
  FT_ASSERT(caps <= 20, "growth is geometric: %zu reallocations for %zu bytes", caps, b.len);
  const char *p = b.buf;
  for (int i = 0; i < 10000; i++) {
    char *end;
    long v = strtol(p, &end, 10);
    FT_ASSERT(v == i && *end == ',', "piece %d reads %ld", i, v);
    p = end + 1;
  }
  FT_ASSERT(*p == '\0', "nothing after the last piece");
  /* one append much larger than the capacity */
  char *big = malloc(1 << 20);
  memset(big, 'x', 1 << 20);
  ferry_buf_reset(&b);
  FT_ASSERT(b.len == 0 && b.buf && b.buf[0] == '\0', "reset empties and keeps the memory");
  ferry_buf_addn(&b, big, 1 << 20);
  FT_ASSERT(b.len == 1u << 20 && b.buf[b.len] == '\0' && b.buf[12345] == 'x', "one large append");
  free(big);
  ferry_buf_free(&b);
  FT_ASSERT(b.buf == NULL && b.len == 0 && b.cap == 0, "free leaves it empty");
  ferry_buf_free(&b); /* twice: fine */
  ferry_buf_free(NULL);
  ferry_buf_add(&b, "reused");
  FT_ASSERT(!strcmp(b.buf, "reused"), "usable after free");
  ferry_buf_free(&b);
}

static void t_buf_nul(void) {
  ferry_buf b = FERRY_BUF_INIT;
  ferry_buf_addn(&b, "a\0b", 3);
  ferry_buf_addn(&b, "\0", 1);
  ferry_buf_add(&b, "c");
  FT_ASSERT(b.len == 5, "embedded NULs counted: %zu", b.len);
  FT_ASSERT(!memcmp(b.buf, "a\0b\0c", 6), "bytes kept, terminated after them");
  size_t n = b.len;
  char *s = ferry_buf_steal(&b);
  FT_ASSERT(!memcmp(s, "a\0b\0c", n + 1), "stolen with its NULs");
  ferry_free(s);
}

static void t_buf_printf(void) {
  ferry_buf b = FERRY_BUF_INIT;
  ferry_buf_addf(&b, "%s=%d", "n", 42);
  ferry_buf_addf(&b, "%s", "");
  ferry_buf_addf(&b, " %5.2f|%-4s|%03u|%c", 3.14159, "ab", 7u, 'z');
  FT_ASSERT(!strcmp(b.buf, "n=42  3.14|ab  |007|z"), "formatted: [%s]", b.buf);
  /* a formatted piece larger than the capacity: the text is complete */
  char wide[3000];
  memset(wide, 'w', sizeof wide - 1);
  wide[sizeof wide - 1] = '\0';
  size_t before = b.len;
  ferry_buf_addf(&b, "<%s>", wide);
  FT_ASSERT(b.len == before + sizeof wide + 1, "len %zu, want %zu", b.len, before + sizeof wide + 1);
  FT_ASSERT(b.buf[before] == '<' && b.buf[b.len - 1] == '>' && b.buf[b.len] == '\0', "wide piece complete");
  ferry_buf_free(&b);
  char *s = ferry_asprintf("%s-%05d-%x", "id", 12, 255u);
  FT_ASSERT(!strcmp(s, "id-00012-ff"), "asprintf: %s", s);
  ferry_free(s);
  s = ferry_asprintf("%s", "");
  FT_ASSERT(s && !*s, "asprintf of nothing is \"\"");
  ferry_free(s);
  s = ferry_strndup("abcdef", 3);
  FT_ASSERT(!strcmp(s, "abc"), "strndup: %s", s);
  ferry_free(s);
  s = ferry_strndup("ab", 10);
  FT_ASSERT(!strcmp(s, "ab"), "strndup stops at the NUL: %s", s);
  ferry_free(s);
  FT_ASSERT(ferry_strdup(NULL) == NULL && ferry_strndup(NULL, 3) == NULL, "NULL copies to NULL");
  ferry_free(NULL);
}

static void t_buf_steal(void) {
  ferry_buf b = FERRY_BUF_INIT;
  char *s = ferry_buf_steal(&b);
  FT_ASSERT(s && !*s, "steal of an empty buffer: \"\", never NULL");
  ferry_free(s);
  ferry_buf_add(&b, "first");
  char *before = b.buf;
  s = ferry_buf_steal(&b);
  FT_ASSERT(s == before && !strcmp(s, "first"), "steal hands the buffer itself out");
  FT_ASSERT(b.buf == NULL && b.len == 0 && b.cap == 0, "the buffer is left empty");
  ferry_buf_add(&b, "second");
  FT_ASSERT(!strcmp(b.buf, "second") && b.buf != s, "reusable; the stolen string is the caller's");
  FT_ASSERT(!strcmp(s, "first"), "the stolen string is untouched by later additions");
  ferry_free(s);
  ferry_buf_free(&b);
}

static void t_buf_consume(void) {
  ferry_buf b = FERRY_BUF_INIT;
  ferry_buf_consume(&b, 3); /* nothing there: fine */
  FT_ASSERT(b.len == 0, "consume of nothing");
  ferry_buf_add(&b, "line 1\nline 2\npartial");
  size_t cap = b.cap;
  ferry_buf_consume(&b, 7);
  FT_ASSERT(b.len == 14 && !strcmp(b.buf, "line 2\npartial"), "first line dropped: [%s] %zu", b.buf, b.len);
  ferry_buf_consume(&b, 0);
  FT_ASSERT(b.len == 14, "consume 0 keeps all");
  ferry_buf_add(&b, " more");
  FT_ASSERT(!strcmp(b.buf, "line 2\npartial more"), "appends after a consume: [%s]", b.buf);
  ferry_buf_consume(&b, 1000);
  FT_ASSERT(b.len == 0 && b.buf && !*b.buf && b.cap == cap, "consume of more than all empties, keeps memory");
  ferry_buf_addn(&b, "a\0b\0c", 5);
  ferry_buf_consume(&b, 2);
  FT_ASSERT(b.len == 3 && !memcmp(b.buf, "b\0c", 4), "NULs moved too");
  ferry_buf_free(&b);
}

/* ---- string set, hash, backoff ------------------------------------------------------------------------- */
static void t_strset(void) {
  ferry_strset s = FERRY_STRSET_INIT;
  FT_ASSERT(!ferry_strset_has(&s, "x"), "empty set has nothing");
  char key[32];
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "key-%d", i);
    FT_ASSERT(ferry_strset_add(&s, key) == 1, "%s added", key);
  }
  FT_ASSERT(s.len == 5000, "len %zu", s.len);
  FT_ASSERT(s.cap >= 10000 && (s.cap & (s.cap - 1)) == 0, "at most half full, power of two: cap %zu", s.cap);
  for (int i = 0; i < 5000; i++) {
    snprintf(key, sizeof key, "key-%d", i);
    FT_ASSERT(ferry_strset_has(&s, key), "%s found after the rehashes", key);
    FT_ASSERT(ferry_strset_add(&s, key) == 0, "%s is already there", key);
  }
  FT_ASSERT(s.len == 5000, "duplicates not added: %zu", s.len);
  FT_ASSERT(!ferry_strset_has(&s, "key-5000") && !ferry_strset_has(&s, "") && !ferry_strset_has(&s, "key-"),
            "absent keys");
  snprintf(key, sizeof key, "copied");
  ferry_strset_add(&s, key);
  key[0] = 'X';
  FT_ASSERT(ferry_strset_has(&s, "copied") && !ferry_strset_has(&s, "Xopied"), "keys are copied");
  FT_ASSERT(ferry_strset_add(&s, "") == 1 && ferry_strset_has(&s, ""), "the empty key");
  ferry_strset_free(&s);
  FT_ASSERT(s.len == 0 && s.cap == 0 && !ferry_strset_has(&s, "key-1"), "free empties");
  ferry_strset_free(NULL);
}

static void t_hash(void) {
  /* the values ferry has always computed (offset basis 1469598103934665603, FNV prime): they name things in
   * journals and on targets, so they must never change */
  FT_ASSERT(ferry_hash64("", 0) == 0x14650fb0739d0383ull, "hash of nothing");
  FT_ASSERT(ferry_hash64("a", 1) == 0x44bd8ad473cd9906ull, "hash of a");
  FT_ASSERT(ferry_hash64("foobar", 6) == 0x88fad7c0a8ff07f2ull, "hash of foobar");
  FT_ASSERT(ferry_hash64("a\0b", 3) != ferry_hash64("a", 1), "bytes after a NUL count");
}

static void t_backoff(void) {
  uint64_t rng = 0;
  unsigned above_half = 0, distinct = 0;
  uint64_t prev = UINT64_MAX;
  for (int i = 0; i < 2000; i++) {
    uint64_t d1 = ferry_backoff_ms(1, 100, 5000, &rng);
    FT_ASSERT(d1 <= 100, "retry 1: ceiling base: %llu", (unsigned long long)d1);
    uint64_t d3 = ferry_backoff_ms(3, 100, 5000, &rng);
    FT_ASSERT(d3 <= 400, "retry 3: ceiling base << 2: %llu", (unsigned long long)d3);
    uint64_t d40 = ferry_backoff_ms(40, 100, 5000, &rng);
    FT_ASSERT(d40 <= 5000, "retry 40: capped: %llu", (unsigned long long)d40);
    if (d3 > 200) above_half++;
    if (d40 != prev) distinct++;
    prev = d40;
  }
  FT_ASSERT(rng != 0, "the state was seeded");
  FT_ASSERT(above_half > 100, "jitter spreads over the whole range (%u of 2000 above half)",
            above_half);
  FT_ASSERT(distinct > 1000, "full jitter: %u distinct delays of 2000", distinct);
  FT_ASSERT(ferry_backoff_ms(0, 100, 5000, &rng) <= 100, "retry 0 counts as the first");
  FT_ASSERT(ferry_backoff_ms(5, 0, 5000, &rng) == 0, "base 0: no delay");
  /* the same state gives the same sequence (reproducible with $FERRY_SEED) */
  uint64_t a = 12345, b = 12345;
  for (int i = 0; i < 50; i++)
    FT_ASSERT(ferry_backoff_ms(4, 100, 5000, &a) == ferry_backoff_ms(4, 100, 5000, &b), "deterministic");
}

/* ---- URL escaping (libcurl) ---------------------------------------------------------------------------- */
static void t_url_escape(void) {
  static const struct {
    const char *in, *want, *what;
  } cases[] = {
      {":/?#[]@!$&'()*+,;= %", "%3A%2F%3F%23%5B%5D%40%21%24%26%27%28%29%2A%2B%2C%3B%3D%20%25",
       "RFC 3986 reserved characters, space, percent"},
      {"AZaz09-._~", "AZaz09-._~", "unreserved: kept"},
      /* UTF-8 byte by byte, upper-case hex; any high byte, valid UTF-8 or not */
      {"\xc3\xa9t\xc3\xa9 \xe2\x82\xac \xff\x80", "%C3%A9t%C3%A9%20%E2%82%AC%20%FF%80", "non-ASCII"},
      {"\t\n\x01\x7f\"<>\\^`{|}", "%09%0A%01%7F%22%3C%3E%5C%5E%60%7B%7C%7D", "controls and unsafe"},
      {"", "", "empty"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *e = ferry_url_escape(cases[i].in);
    FT_ASSERT(e && !strcmp(e, cases[i].want), "%s: [%s], want [%s]", cases[i].what, e, cases[i].want);
    ferry_free(e);
  }
  FT_ASSERT(ferry_url_escape(NULL) == NULL, "NULL");
  const char *kv[] = {"q", "a&b=c d", "\xc3\xa9", "+", NULL};
  char *f = ferry_form_encode(kv);
  FT_ASSERT(!strcmp(f, "q=a%26b%3Dc%20d&%C3%A9=%2B"), "form: %s", f);
  ferry_free(f);
}

/* ---- SQL quoting and array literals (libpq) ------------------------------------------------------------ */
static void t_sql_quote(void) {
  struct {
    const char *in, *ident, *lit;
  } cases[] = {
      {"plain", "\"plain\"", "'plain'"},
      {"it's", "\"it's\"", "'it''s'"},
      {"''", "\"''\"", "''''''"},
      {"we\"ird", "\"we\"\"ird\"", "'we\"ird'"},
      {"back\\slash", "\"back\\slash\"", "E'back\\\\slash'"},
      {"\\'", "\"\\'\"", "E'\\\\'''"},
      {"both \\ and '", "\"both \\ and '\"", "E'both \\\\ and '''"},
      {"", "\"\"", "''"},
      {"\xc3\xa9t\xc3\xa9", "\"\xc3\xa9t\xc3\xa9\"", "'\xc3\xa9t\xc3\xa9'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char *id = ferry_pg_quote_ident(cases[i].in), *lit = ferry_pg_quote_literal(cases[i].in);
    FT_ASSERT(!strcmp(id, cases[i].ident), "ident of [%s]: [%s], want [%s]", cases[i].in, id, cases[i].ident);
    FT_ASSERT(!strcmp(lit, cases[i].lit), "literal of [%s]: [%s], want [%s]", cases[i].in, lit, cases[i].lit);
    ferry_free(id);
    ferry_free(lit);
  }
  char *n = ferry_pg_quote_literal(NULL);
  FT_ASSERT(!strcmp(n, "NULL"), "NULL literal: %s", n);
  ferry_free(n);
  FT_ASSERT(ferry_pg_quote_ident(NULL) == NULL, "NULL ident");
  ferry_buf b = FERRY_BUF_INIT;
  ferry_buf_add(&b, "SELECT ");
  ferry_pg_add_ident(&b, "my \"col\"");
  ferry_buf_add(&b, " FROM t WHERE x = ");
  ferry_pg_add_literal(&b, "o'k\\");
  ferry_buf_add(&b, " OR x IS ");
  ferry_pg_add_literal(&b, NULL);
  FT_ASSERT(!strcmp(b.buf, "SELECT \"my \"\"col\"\"\" FROM t WHERE x = E'o''k\\\\' OR x IS NULL"), "added: %s",
            b.buf);
  ferry_buf_free(&b);
}

static void t_pg_array(void) {
  const char *v[] = {"a", "b\"c", NULL, "d\\e", "", "x,y", "{z}", "NULL"};
  char *arr = ferry_pg_text_array(v, 8);
  FT_ASSERT(!strcmp(arr, "{\"a\",\"b\\\"c\",NULL,\"d\\\\e\",\"\",\"x,y\",\"{z}\",\"NULL\"}"), "array: %s", arr);
  ferry_free(arr);
  arr = ferry_pg_text_array(NULL, 0);
  FT_ASSERT(!strcmp(arr, "{}"), "empty array: %s", arr);
  ferry_free(arr);
  /* incremental: a comma before every element but the first after '{' */
  ferry_buf b = FERRY_BUF_INIT;
  ferry_buf_add(&b, "{");
  ferry_pg_array_elem(&b, "1");
  ferry_pg_array_elem(&b, NULL);
  ferry_pg_array_elem(&b, "3");
  ferry_buf_add(&b, "}");
  FT_ASSERT(!strcmp(b.buf, "{\"1\",NULL,\"3\"}"), "incremental: %s", b.buf);
  ferry_buf_free(&b);
}

static const struct {
  const char *name;
  void (*fn)(void);
} cases[] = {
    {"buf_growth", t_buf_growth}, {"buf_nul", t_buf_nul},   {"buf_printf", t_buf_printf},
    {"buf_steal", t_buf_steal}, {"buf_consume", t_buf_consume},   {"strset", t_strset},     {"hash", t_hash},
    {"backoff", t_backoff},       {"url_escape", t_url_escape}, {"sql_quote", t_sql_quote},
    {"pg_array", t_pg_array},
};

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_util CASE\n");
    return 2;
  }
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (!strcmp(cases[i].name, argv[1])) {
      cases[i].fn();
      printf("ok %s\n", argv[1]);
      return 0;
    }
  FT_ASSERT(0, "unknown case %s", argv[1]);
  return 2;
}
