/* ferry run --worker: one of several workers on one PostgreSQL journal (docs/journal.md, "Several workers").
 *
 * The claims themselves are the journal layer's (core/journal/claims.c, a connection of their own); this
 * file is what a run does with them:
 * - a heartbeat timer (every second, or lease / 3 when shorter) commits the run's open group of outcomes,
 *   drops the claims of items whose outcome is committed, renews the worker's heartbeat and its remaining
 *   claims, and reads how many workers are live: each stage then uses max(1, concurrency / n) sink slots and
 *   each plugin instance 1/n of its rate and of its services' concurrency (ferry_instance.share);
 * - the items themselves come from each stage's listing (listing.c), claimed as they are taken.
 * Every call is synchronous on the claims connection (a round trip to the journal server).
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "run/run.h"

typedef struct ferry__worker ferry__worker;
struct ferry__worker {
  ferry__run *run;
  ferry__claims *claims;
  double lease_s, beat_s;
  unsigned live;
  uv_timer_t beat;
  int timers;
  void (*closed)(void *arg);
  void *closed_arg;
};

const char *ferry__worker_name(const ferry__run *run) {
  return run && run->worker ? ferry__claims_worker(run->worker->claims) : NULL;
}

ferry__claims *ferry__worker_claims(const ferry__run *run) { return run && run->worker ? run->worker->claims : NULL; }

static void set_shares(ferry__worker *w, unsigned n) {
  if (!n) n = 1;
  if (n != w->live)
    ferry_log_info(NULL, "worker %s: %u live worker(s) on the journal: this one uses 1/%u of each stage's rate "
                   "and concurrency", ferry__claims_worker(w->claims), n, n);
  w->live = n;
  ferry__run *run = w->run;
  for (size_t i = 0; i < run->nstages; i++) {
    ferry_stage *st = run->stages[i];
    st->share_n = n;
    for (size_t k = 0; st->selected && st->hooks && k < ferry__stage_refs(st); k++) {
      ferry__stage_ref r;
      ferry__stage_ref_at(st, k, &r);
      if (r.instance && *r.instance)
        (*r.instance)->share = r.role == FERRY_KIND_SOURCE && ferry__listing_lister(st) ? 1.0 : 1.0 / n;
    }
    if (st->state == STAGE_RUNNING) ferry__stage_kick(st); /* a larger share may start more */
  }
}

static int beat(ferry__worker *w, ferry_error *err) {
  int live = 1;
  if (w->run->out) ferry__outcomes_commit(w->run->out); /* the claims of committed outcomes can go */
  int rc = ferry__claims_heartbeat(w->claims, w->run->run_id, &live, err);
  if (rc) return rc;
  set_shares(w, (unsigned)(live > 0 ? live : 1));
  return 0;
}

static void on_beat(uv_timer_t *h) {
  ferry__worker *w = h->data;
  ferry_error e = FERRY_ERROR_INIT;
  if (w->run->out && !ferry__outcomes_error(w->run->out) && beat(w, &e)) ferry__outcomes_fail(w->run->out, &e);
  ferry_error_clear(&e);
}

int ferry__worker_start(ferry__run *run, const char *url, const char *name, double lease_s, ferry_error *err) {
  ferry__worker *w = ferry__xcalloc(1, sizeof *w);
  w->run = run;
  w->lease_s = lease_s > 0 ? lease_s : 30;
  w->beat_s = w->lease_s / 3 < 1 ? w->lease_s / 3 : 1;
  w->claims = ferry__claims_open(url, name, w->lease_s, err);
  if (!w->claims) {
    free(w);
    return err && err->code ? err->code : FERRY_EIO;
  }
  int live = 1;
  int rc = ferry__claims_heartbeat(w->claims, 0, &live, err);
  if (rc) {
    ferry__claims_close(w->claims);
    free(w);
    return rc;
  }
  if (live > 1) {
    /* the others lower their shares at their next heartbeat: wait until each has had one that counted this
     * worker (at most 1.5 heartbeats, after which a late one is taken as counting it), so that together the
     * workers never exceed a server's limits */
    double max_wait = w->beat_s * 1.5, t0 = ferry__now(), waited = 0;
    int unseen = live - 1;
    ferry_log_info(NULL, "worker %s: %d other live worker(s) on the journal: starting once they have seen this "
                   "one (at most %.1f s)", name, live - 1, max_wait);
    while (!rc && (waited = ferry__now() - t0) < max_wait) {
      if ((rc = ferry__claims_unseen(w->claims, &unseen, err)) || !unseen) break;
      double left = max_wait - waited, step = left < 0.05 ? left : 0.05;
      struct timespec ts = {0, (long)(step * 1e9)};
      while (nanosleep(&ts, &ts) != 0) {
      }
    }
    if (!rc) {
      ferry_log_info(NULL, "worker %s: %s after %.2f s", name,
                     unseen ? "not every other worker had a heartbeat meanwhile: starting" : "seen by the others",
                     ferry__now() - t0);
      rc = ferry__claims_heartbeat(w->claims, 0, &live, err);
    }
    if (rc) {
      ferry__claims_close(w->claims);
      free(w);
      return rc;
    }
  }
  run->worker = w;
  w->live = 0;
  set_shares(w, (unsigned)live);
  uv_timer_init(run->loop, &w->beat);
  w->beat.data = w;
  uint64_t ms = (uint64_t)(w->beat_s * 1000);
  uv_timer_start(&w->beat, on_beat, ms, ms);
  uv_unref((uv_handle_t *)&w->beat);
  w->timers = 1;
  return 0;
}

static void on_timer_closed(uv_handle_t *h) {
  ferry__worker *w = h->data;
  if (--w->timers == 0 && w->closed) {
    void (*closed)(void *) = w->closed;
    w->closed = NULL;
    closed(w->closed_arg);
  }
}

void ferry__worker_close_timers(ferry__run *run, void (*closed)(void *arg), void *arg) {
  ferry__worker *w = run->worker;
  if (!w || !w->timers) {
    if (closed) closed(arg);
    return;
  }
  w->closed = closed;
  w->closed_arg = arg;
  uv_close((uv_handle_t *)&w->beat, on_timer_closed);
}

void ferry__worker_end(ferry__run *run) {
  ferry__worker *w = run->worker;
  if (!w) return;
  run->worker = NULL;
  for (size_t i = 0; i < run->nstages; i++) run->stages[i]->share_n = 1;
  ferry__claims_close(w->claims);
  free(w);
}

int ferry__worker_holds(ferry_stage *st, const char *key, int ask, ferry_error *err) {
  return ferry__claims_holds(st->run->worker->claims, st->name, key, ask, err);
}
