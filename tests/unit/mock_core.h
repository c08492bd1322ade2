/* A small mock of the ferry core for unit tests of plugin internals (the idea of collectd's plugin_mock.c).
 *
 * It defines every SDK function the in-tree plugins call, so that a test can compile a plugin's files (all of
 * them, or the few it needs) and call their internal functions through the plugin's private headers, without
 * libferry and without running a pipeline:
 *   - errors: the real ones (core/base/error.c, compiled in);
 *   - logging: every line is kept in memory (mock_log_text) and, with FERRY_MOCK_LOG=1, printed to stderr;
 *   - instances: mock_instance_new() gives a context, a role, a mode and a libuv loop (the default loop);
 *   - items: real items (ferry_item_new / _free / _str / _int / _set_payload);
 *   - pure helpers: the real ones, compiled in (core/base/util.c: ferry/util.h; core/services/text.c: the URL
 *     escaping and SQL quoting of ferry/http.h and ferry/pg.h);
 *   - the services (HTTP, PostgreSQL) refuse to start (FERRY_EUNSUPPORTED), so code paths that need a server
 *     fail cleanly;
 *   - pipeline calls (emit, source_*, task_*, fire) are counted (mock_calls); those that need a real task or
 *     event abort with a message: a unit test must not reach them.
 * Not thread-safe (the tests are single-threaded). */
#ifndef FERRY_TESTS_MOCK_CORE_H
#define FERRY_TESTS_MOCK_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <ferry/ferry.h>
#include <ferry/http.h>
#include <ferry/pg.h>

/* An instance whose ferry_instance_ctx() is `ctx` (borrowed), of `role` (FERRY_KIND_*) and `mode`, plugin
 * name `plugin` (copied). Free with mock_instance_free(). */
ferry_instance *mock_instance_new(const char *plugin, void *ctx, uint32_t role, ferry_mode mode);
void mock_instance_free(ferry_instance *ins);

/* Everything logged since the last mock_log_clear(), one line per call ("LEVEL text\n"). Borrowed. */
const char *mock_log_text(void);
void mock_log_clear(void);
/* Log level that ferry_log_enabled() reports as enabled (default FERRY_LOG_DEBUG). */
void mock_log_set_level(ferry_log_level level);

/* Number of calls of the pipeline function `name` (e.g. "ferry_emit") since the start. */
unsigned mock_calls(const char *name);
/* 1 when `value` was registered with ferry_secret(). */
int mock_secret_registered(const char *value);

/* Assertions for the tests: print file:line and the message, count the failure, go on. */
extern int mock_failures;
extern int mock_checks;
#define MOCK_CHECK(cond, ...)                                                          \
  do {                                                                                 \
    mock_checks++;                                                                     \
    if (!(cond)) {                                                                     \
      mock_failures++;                                                                 \
      fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);       \
      fprintf(stderr, __VA_ARGS__);                                                    \
      fputc('\n', stderr);                                                             \
    }                                                                                  \
  } while (0)
/* Two strings equal (either may be NULL). */
#define MOCK_STREQ(got, want)                                                                         \
  do {                                                                                                \
    const char *g_ = (got), *w_ = (want);                                                             \
    MOCK_CHECK((!g_ && !w_) || (g_ && w_ && !strcmp(g_, w_)), "got \"%s\", expected \"%s\"",          \
               g_ ? g_ : "(null)", w_ ? w_ : "(null)");                                                \
  } while (0)
/* Ends a test program: prints "N passed, N failed" and returns the exit status. */
int mock_report(const char *name);

#endif
