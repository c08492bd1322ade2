/* Latency histograms and time series: what the report draws its charts from (base/base.h). */
#include <math.h>
#include <string.h>

#include "base/base.h"

/* ---- latency histogram ---------------------------------------------------------------------------------- */

double ferry__latency_bound(int i) {
  if (i < 0 || i >= FERRY_LAT_BUCKETS - 1) return -1;
  return pow(10.0, (double)i / 5.0); /* 1 ms, 1.58 ms, 2.51 ms, ... 10^5 ms */
}

void ferry__latency_add(ferry__latency *l, double ms) {
  if (!(ms >= 0)) ms = 0; /* also NaN */
  int i = 0;
  while (i < FERRY_LAT_BUCKETS - 1 && ms >= ferry__latency_bound(i)) i++;
  l->b[i]++;
  l->count++;
  l->sum_ms += ms;
  if (ms > l->max_ms) l->max_ms = ms;
}

static json_t *bound_json(int i) {
  double b = ferry__latency_bound(i);
  return b < 0 ? json_null() : json_real(round(b * 100.0) / 100.0);
}

/* The upper bound of the bucket holding the q-quantile, never more than the maximum seen (the maximum for
 * the last bucket, and for a bucket whose bound lies above it). */
static json_t *quantile(const ferry__latency *l, double q) {
  int64_t want = (int64_t)ceil(q * (double)l->count), seen = 0;
  json_t *max = json_real(round(l->max_ms * 100.0) / 100.0);
  if (want < 1) want = 1;
  for (int i = 0; i < FERRY_LAT_BUCKETS; i++) {
    seen += l->b[i];
    double b = ferry__latency_bound(i);
    if (seen >= want && b >= 0 && b < l->max_ms) {
      json_decref(max);
      return bound_json(i);
    }
    if (seen >= want) break;
  }
  return max;
}

json_t *ferry__latency_json(const ferry__latency *l) {
  json_t *o = json_object();
  json_object_set_new(o, "count", json_integer(l->count));
  json_object_set_new(o, "mean_ms", json_real(l->count ? round(l->sum_ms / (double)l->count * 100) / 100 : 0));
  json_object_set_new(o, "max_ms", json_real(round(l->max_ms * 100) / 100));
  if (l->count) {
    json_object_set_new(o, "p50_ms", quantile(l, 0.50));
    json_object_set_new(o, "p90_ms", quantile(l, 0.90));
    json_object_set_new(o, "p99_ms", quantile(l, 0.99));
  }
  json_t *b = json_array();
  for (int i = 0; i < FERRY_LAT_BUCKETS; i++)
    if (l->b[i]) json_array_append_new(b, json_pack("[o, I]", bound_json(i), (json_int_t)l->b[i]));
  json_object_set_new(o, "buckets", b);
  return o;
}

/* ---- time series ----------------------------------------------------------------------------------------- */

void ferry__series_start(ferry__series *s, double t0, double step) {
  memset(s, 0, sizeof *s);
  s->t0 = t0;
  s->step = step > 0 ? step : 1;
}

static void merge_pairs(ferry__series *s) {
  for (int c = 0; c < FERRY_SERIES_COUNTERS; c++)
    for (size_t i = 0; i < s->n; i += 2) s->v[c][i / 2] = s->v[c][i] + (i + 1 < s->n ? s->v[c][i + 1] : 0);
  size_t n = (s->n + 1) / 2;
  for (int c = 0; c < FERRY_SERIES_COUNTERS; c++) memset(&s->v[c][n], 0, (s->n - n) * sizeof s->v[c][0]);
  s->n = n;
  s->step *= 2;
}

void ferry__series_sample(ferry__series *s, double now, const int64_t counters[FERRY_SERIES_COUNTERS]) {
  if (!(s->step > 0)) return;
  double at = now - s->t0;
  if (at < 0) at = 0;
  size_t idx;
  for (;;) {
    double x = floor(at / s->step);
    if (x < FERRY_SERIES_MAX) {
      idx = (size_t)x;
      break;
    }
    merge_pairs(s);
  }
  if (idx + 1 > s->n) s->n = idx + 1; /* the points between stay 0: nothing happened then */
  for (int c = 0; c < FERRY_SERIES_COUNTERS; c++) {
    s->v[c][idx] += counters[c] - s->last[c];
    s->last[c] = counters[c];
  }
}

json_t *ferry__series_json(const ferry__series *s) {
  if (!(s->step > 0)) return NULL;
  static const char *const names[FERRY_SERIES_COUNTERS] = {"completed", "failed", "retries"};
  json_t *o = json_object();
  json_object_set_new(o, "step_s", json_real(s->step));
  json_object_set_new(o, "points", json_integer((json_int_t)s->n));
  for (int c = 0; c < FERRY_SERIES_COUNTERS; c++) {
    json_t *a = json_array();
    for (size_t i = 0; i < s->n; i++) json_array_append_new(a, json_integer(s->v[c][i]));
    json_object_set_new(o, names[c], a);
  }
  return o;
}
