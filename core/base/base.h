/* ferry core, layer "base": what every other part uses (core/base: util.c, error.c, item.c, log.c,
 * secret.c). Depends on nothing else in the core. Internal: not installed, plugins never see it.
 *
 * Internal functions and globals are named ferry__* (two underscores); ferry_* names are the SDK's.
 */
#ifndef FERRY_CORE_BASE_H
#define FERRY_CORE_BASE_H

#include <stdint.h>
#include <stdio.h>
#include <jansson.h>
#include <uv.h>

#include "ferry/ferry.h"
#include "ferry/runtime.h"

/* ===== util.c ============================================================================================ */
/* Allocation that aborts with a message when out of memory (ferry does not try to limp on). */
void *ferry__xmalloc(size_t n);
void *ferry__xcalloc(size_t n, size_t size);
void *ferry__xrealloc(void *p, size_t n);
/* Strings, the string buffer (ferry_buf), the string set, the hash and retry backoff are the SDK's
 * (ferry/util.h, implemented in util.c): the core uses the same functions as the plugins. */
/* Monotonic seconds (uv_hrtime based). */
double ferry__now(void);
/* A small random generator (xorshift64*) for jitter. seed: from $FERRY_SEED when set (reproducible runs in
 * tests), else from the clock and the process id; `salt` tells the generators of one process apart. */
uint64_t ferry__rng_seed(uint64_t salt);
uint64_t ferry__rng_next(uint64_t *state);
/* The JSON type of a value as a user reads it in a message ("object", "number with a fraction", ...). */
const char *ferry__json_kind(const json_t *v);
/* NULL-terminated string vector helpers. */
size_t ferry__strv_len(char *const *v);
void ferry__strv_free(char **v);
char **ferry__strv_dup(const char *const *v);

/* ===== stats.c: latency histograms and time series (the report's charts) ==================================
 * A latency histogram: log-scaled buckets, five per decade. Bucket 0 holds calls under 1 ms, bucket k
 * (1..FERRY_LAT_BUCKETS-2) calls under 10^(k/5) ms, the last one everything slower (over 100 s). */
#define FERRY_LAT_BUCKETS 27
typedef struct ferry__latency {
  int64_t count;
  double sum_ms, max_ms;
  int64_t b[FERRY_LAT_BUCKETS];
} ferry__latency;
void ferry__latency_add(ferry__latency *l, double ms);
/* Upper bound of bucket i in ms (the last: -1, no bound). */
double ferry__latency_bound(int i);
/* The histogram as a new JSON object: {"count", "mean_ms", "max_ms", "p50_ms", "p90_ms", "p99_ms" (bucket
 * upper bounds), "buckets": [[upper bound in ms (null for the last), count], ...] (the non-empty ones)}. */
json_t *ferry__latency_json(const ferry__latency *l);

/* A time series of counters over a run: at most FERRY_SERIES_MAX points of `step` seconds each, from t0.
 * When a sample falls beyond the last point, neighbouring points are merged in pairs and the step doubles,
 * so that a run of any length keeps FERRY_SERIES_MAX points at most. Each point holds, per counter, what
 * happened during its interval (the difference between the samples). */
#define FERRY_SERIES_MAX 600
#define FERRY_SERIES_COUNTERS 3 /* completed (done + skipped + failed), failed, retries */
typedef struct ferry__series {
  double t0, step;                     /* step 0: not started */
  size_t n;                            /* points in use */
  int64_t last[FERRY_SERIES_COUNTERS]; /* the counters at the last sample */
  int64_t v[FERRY_SERIES_COUNTERS][FERRY_SERIES_MAX];
} ferry__series;
void ferry__series_start(ferry__series *s, double t0, double step);
/* The counters' current values at time `now` (ferry__now() scale): their increase since the last sample
 * goes to the point of `now`. */
void ferry__series_sample(ferry__series *s, double now, const int64_t counters[FERRY_SERIES_COUNTERS]);
/* {"step_s", "points": n, "completed": [...], "failed": [...], "retries": [...]}; NULL when not started. */
json_t *ferry__series_json(const ferry__series *s);

/* ===== log.c: who logs ====================================================================================
 * What a log line says of the instance that logs it. It is the first member of every ferry_instance
 * (load/load.h), so that logging names the instance without knowing the rest of it. */
typedef struct ferry__log_id {
  uint32_t role;      /* FERRY_KIND_SOURCE / _SINK / _HOOK */
  const char *plugin; /* the plugin's name (borrowed from its descriptor) */
  const char *stage;  /* the stage's name (owned by the instance) */
} ferry__log_id;

/* ===== log.c / secret.c ================================================================================= */
/* ferry_log_configure(), ferry_log_level_parse(), ferry_redact(): ferry/runtime.h. */
/* Called before and after each log line is written (NULL to unset): the terminal progress display erases
 * itself before the line and draws itself again below it, so that log lines never interleave with its block
 * and the block stays on screen whatever the log says. One display at a time. */
void ferry__log_set_display(void (*before)(void *arg), void (*after)(void *arg), void *arg);
/* 1 when the log format is JSON (ferry_log_configure). */
int ferry__log_json(void);
/* Where log lines go (standard error unless configured). */
FILE *ferry__log_out(void);
/* A JSON log line of a core event (the progress display), {"ts", "level", <the fields>}, as text without its
 * line end (malloc'd) for the caller to write; `fields` (an object, NULL: none) stolen and redacted. */
char *ferry__log_event_line(ferry_log_level level, json_t *fields);
/* Registers a secret: every later log line, journal text, report and plan output has it replaced by "***".
 * Copied. Strings shorter than 3 characters are ignored (they would redact everything). */
/* Registers a secret for ferry_redact(); values shorter than FERRY__SECRET_MIN are ignored (masking "ab"
 * would hide those letters in every message). */
#define FERRY__SECRET_MIN 3
void ferry__secret_add(const char *value);
/* Redacts in place inside a JSON value (all strings, recursively). */
void ferry__redact_json(json_t *v);
/* Forget all secrets (tests, runtime free). */
void ferry__secret_clear(void);

#endif
