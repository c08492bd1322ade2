/* ferry run --worker: a stage's source read once by all the workers together (docs/journal.md, "Several
 * workers").
 *
 * The first worker to start a stage becomes its lister: its source plugin runs, and what it emits goes into
 * the journal's listing of the stage (ferry_listed, in batches of LIST_BATCH), never straight into its own
 * queue. Every worker, the lister too, takes items from that listing in batches (ferry__listing_pick: each
 * taken once, claimed in the same statement) and hands them to its sink as if its source had emitted them.
 * The lister keeps at most LIST_AHEAD items listed and not yet taken, so that the listing follows the work
 * and a source's items are read shortly before they are migrated, as in a run of one.
 *
 * When the listing has nothing left for it, a worker looks at the listing's state: a lister that died is
 * replaced (this worker takes the listing over and starts its own source, whose items already listed keep
 * their place); the items a dead worker took and left unfinished are taken again (rescue); once the listing
 * has ended and no other live worker holds an unfinished item, the stage's source has ended for this worker.
 * Meanwhile it looks again every LIST_POLL_MS (a timer that keeps the loop alive only while it waits).
 */
#include <stdlib.h>
#include <string.h>

#include "run/run.h"

#define LIST_BATCH 256      /* items per insert into the listing */
#define LIST_AHEAD 1024     /* items listed and not taken yet, at most */
#define LIST_POLL_MS 100    /* a waiting worker looks at the listing again this often */
#define LIST_RESCUE_S 1.0   /* ... and for the items of dead workers at most this often */

struct ferry__listing {
  ferry_stage *st;
  ferry__claims *claims; /* the worker's (borrowed) */
  int64_t id;
  int64_t next_seq;  /* lister: the seq of the next item it lists */
  int64_t listed;    /* lister: the highest seq it listed (an item listed before keeps its seq) */
  int64_t cursor;    /* the highest seq this worker took fresh */
  int64_t taken_max; /* lister: the highest seq any worker took, as last read */
  double taken_read; /* ... when (ferry__now()) */
  int lister;        /* this worker lists the source */
  int src_started, src_ended, src_failed, src_stopped;
  size_t requested; /* asked of the source, not yet emitted */
  json_t *buf;      /* items emitted, not yet listed (ferry_item_to_json objects) */
  int64_t total;    /* the source's, -1 unknown */
  int waiting;      /* nothing to take: the timer looks again */
  double next_rescue;
  int ended_seen; /* the listing has ended: the stage's source has ended for this worker */
  uv_timer_t timer;
  int timer_init;
};

static int failed(ferry__listing *l, ferry_error *e) {
  ferry__outcomes_fail(l->st->run->out, e); /* the pump stops the stage */
  ferry_error_clear(e);
  ferry__stage_kick(l->st);
  return -1;
}

static void on_timer(uv_timer_t *h) {
  ferry__listing *l = h->data;
  uv_unref((uv_handle_t *)h);
  l->waiting = 0;
  if (l->st->state == STAGE_RUNNING) ferry__stage_kick(l->st);
}

static void wait_a_little(ferry__listing *l) {
  if (l->waiting) return;
  l->waiting = 1;
  uv_ref((uv_handle_t *)&l->timer);
  uv_timer_start(&l->timer, on_timer, LIST_POLL_MS, 0);
}

static int start_source(ferry__listing *l) {
  ferry_stage *st = l->st;
  const ferry_source_ops *s = st->source_plugin->source;
  ferry_error e = FERRY_ERROR_INIT;
  l->src_started = 1;
  if (s->start && s->start(st->source, &e) < 0) {
    if (!e.code) ferry_error_set(&e, FERRY_EIO, "start failed without saying why");
    ferry_error_prefix(&e, "source \"%s\" could not start", st->source_plugin->name);
    ferry__listing_source_fail(st, &e);
    ferry_error_clear(&e);
    return -1;
  }
  return 0;
}

int ferry__listing_open(ferry_stage *st) {
  ferry__listing *l = ferry__xcalloc(1, sizeof *l);
  l->st = st;
  l->claims = ferry__worker_claims(st->run);
  l->total = -1;
  l->buf = json_array();
  st->lst = l;
  uv_timer_init(st->run->loop, &l->timer);
  l->timer.data = l;
  l->timer_init = 1;
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry__listing_join(l->claims, st->name, &l->id, &l->lister, &l->next_seq, &e)) return failed(l, &e);
  l->listed = l->next_seq - 1;
  ferry_log_info(NULL, "worker %s: stage \"%s\": %s (listing %lld in the journal)", ferry__worker_name(st->run),
                 st->name, l->lister ? "this worker reads the source and lists its items for every worker"
                                     : "another worker reads the source: this one takes its items from the listing",
                 (long long)l->id);
  st->source_started = 1; /* the stage takes items (from the listing) */
  if (l->lister) {
    st->source->share = 1.0; /* the only worker reading the source */
    start_source(l);
  }
  ferry__stage_kick(st);
  return 0;
}

static int flush(ferry__listing *l) {
  size_t n = json_array_size(l->buf);
  if (!n || !l->lister) return 0;
  char *text = json_dumps(l->buf, JSON_COMPACT);
  ferry_error e = FERRY_ERROR_INIT;
  int rc = text ? ferry__listing_add(l->claims, l->id, l->next_seq, text, &l->listed, &e)
                : ferry_error_set(&e, FERRY_ENOMEM, "listing items: out of memory");
  free(text);
  json_array_clear(l->buf);
  if (rc < 0) return failed(l, &e);
  l->next_seq += (int64_t)n;
  if (rc == 0) { /* another worker took the listing over (it thought this one dead): it lists from now on */
    ferry_log_warn(NULL, "worker %s: stage \"%s\": another worker lists the source now: this one stops listing",
                   ferry__worker_name(l->st->run), l->st->name);
    l->lister = 0;
    if (l->src_started && !l->src_ended && !l->src_failed && !l->src_stopped) {
      l->src_stopped = 1;
      l->requested = 0;
      if (l->st->source_plugin->source->stop) l->st->source_plugin->source->stop(l->st->source);
    }
  }
  return 0;
}

static int source_open(const ferry__listing *l) {
  return l->lister && l->src_started && !l->src_ended && !l->src_failed && !l->src_stopped;
}

void ferry__listing_emit(ferry_stage *st, ferry_item *item) {
  ferry__listing *l = st->lst;
  if (l->requested) l->requested--;
  if (!source_open(l) || st->interrupted || st->status) {
    if (l->src_ended && !st->interrupted && !st->status)
      ferry_log_error(st->source, "item \"%s\" emitted after ferry_source_end(): dropped (a bug in the source plugin)",
                      item->key ? item->key : "");
    ferry_item_free(item);
    return;
  }
  if (!item->key) item->key = ferry_strdup("");
  if (!item->body) item->body = json_object();
  json_array_append_new(l->buf, ferry_item_to_json(item));
  ferry_item_free(item);
  if (json_array_size(l->buf) >= LIST_BATCH) flush(l);
  st->budget++;
  ferry__stage_kick(st);
}

void ferry__listing_source_end(ferry_stage *st) {
  ferry__listing *l = st->lst;
  if (l->src_ended) {
    ferry_log_warn(st->source, "ferry_source_end called twice: ignored");
    return;
  }
  l->src_ended = 1;
  l->requested = 0;
  if (l->lister && !flush(l) && l->lister) {
    ferry_error e = FERRY_ERROR_INIT;
    if (ferry__listing_end(l->claims, l->id, l->total, NULL, &e)) failed(l, &e);
  }
  ferry__stage_kick(st);
}

void ferry__listing_source_fail(ferry_stage *st, const ferry_error *err) {
  ferry__listing *l = st->lst;
  if (l->src_failed) return;
  l->src_failed = 1;
  l->requested = 0;
  ferry_error e = FERRY_ERROR_INIT;
  if (err && err->code)
    ferry_error_copy(&e, err);
  else
    ferry_error_set(&e, FERRY_EIO, "the source failed without saying why");
  if (l->lister) { /* the other workers stop with the same error */
    json_array_clear(l->buf);
    char *why = ferry_asprintf("worker %s: %s", ferry__worker_name(st->run), e.message ? e.message : "failed");
    ferry_error je = FERRY_ERROR_INIT;
    if (ferry__listing_end(l->claims, l->id, -1, why, &je)) failed(l, &je);
    free(why);
  }
  st->source_failed = 1;
  ferry__stage_fail(st, &e);
  ferry_error_clear(&e);
}

void ferry__listing_total(ferry_stage *st, int64_t total) { st->lst->total = total < 0 ? -1 : total; }

void ferry__listing_stop(ferry_stage *st) {
  ferry__listing *l = st->lst;
  if (l->src_started && !l->src_stopped) {
    l->src_stopped = 1;
    l->requested = 0;
    if (!st->interrupted && !st->status) flush(l);
    if (st->source_plugin->source->stop) st->source_plugin->source->stop(st->source);
  }
  json_array_clear(l->buf);
  if (l->timer_init) uv_timer_stop(&l->timer);
}

/* The lister asks its source for more while fewer than LIST_AHEAD listed items wait to be taken. */
static void feed(ferry__listing *l) {
  ferry_stage *st = l->st;
  if (!source_open(l) || l->requested) return;
  int64_t base = l->cursor > l->taken_max ? l->cursor : l->taken_max;
  /* (what a takeover lists again is not ahead: only the seqs of new items count) */
  int64_t ahead = l->listed + (int64_t)json_array_size(l->buf) - base;
  if (ahead >= LIST_AHEAD) { /* how far the others are: read now and then */
    double now = ferry__now();
    if (now - l->taken_read < LIST_POLL_MS / 1000.0) return;
    l->taken_read = now;
    ferry_error e = FERRY_ERROR_INIT;
    int64_t m = ferry__listing_taken_max(l->claims, l->id, &e);
    if (m < 0) {
      failed(l, &e);
      return;
    }
    l->taken_max = m;
    base = l->cursor > m ? l->cursor : m;
    ahead = l->listed + (int64_t)json_array_size(l->buf) - base;
    if (ahead >= LIST_AHEAD) return;
  }
  size_t n = (size_t)(LIST_AHEAD - ahead);
  if (n > LIST_BATCH) n = LIST_BATCH;
  l->requested = n;
  st->source_plugin->source->demand(st->source, n);
}

/* Hands picked items to the stage; returns how many. */
static size_t take(ferry__listing *l, ferry__picked *p, size_t n, int fresh) {
  ferry_stage *st = l->st;
  for (size_t i = 0; i < n; i++) {
    if (fresh && p[i].seq > l->cursor) l->cursor = p[i].seq;
    json_error_t je;
    json_t *o = json_loads(p[i].item, 0, &je);
    ferry_error e = FERRY_ERROR_INIT;
    ferry_item *item = o ? ferry_item_from_json(o, &e) : NULL;
    json_decref(o);
    if (!item) {
      ferry_error_set(&e, FERRY_EIO, "stage \"%s\": listed item %lld of listing %lld cannot be read: %s", st->name,
                      (long long)p[i].seq, (long long)l->id, o ? (e.message ? e.message : "?") : je.text);
      failed(l, &e);
      return i;
    }
    ferry__stage_take_listed(st, item, p[i].status);
  }
  return n;
}

static int pick(ferry__listing *l, int rescue, int64_t after, size_t want, size_t *got) {
  ferry_stage *st = l->st;
  ferry__picked *p = NULL;
  size_t n = 0;
  ferry_error e = FERRY_ERROR_INIT;
  *got = 0;
  if (ferry__listing_pick(l->claims, st->name, l->id, rescue, after, want, st->run->repair, &p, &n, &e))
    return failed(l, &e);
  if (n && rescue)
    ferry_log_info(NULL, "worker %s: stage \"%s\": took %zu item(s) left unfinished by a worker that is no longer live",
                   ferry__worker_name(st->run), st->name, n);
  *got = take(l, p, n, !rescue);
  ferry__picked_free(p, n);
  return 0;
}

void ferry__listing_intake(ferry_stage *st, size_t want) {
  ferry__listing *l = st->lst;
  if (l->ended_seen || st->interrupted || st->status || ferry__outcomes_error(st->run->out)) return;
  feed(l);
  if (!want || l->waiting) return;
  size_t got = 0;
  if (pick(l, 0, l->cursor, want, &got)) return;
  if (got == want) return;
  if (json_array_size(l->buf)) { /* what this worker has listed and not written yet */
    if (flush(l)) return;
    size_t more = 0;
    if (pick(l, 0, l->cursor, want - got, &more)) return;
    got += more;
    if (got == want) return;
  }
  feed(l);
  if (got) return; /* the pump comes back for the rest */
  /* nothing fresh: how is the listing? */
  ferry__listing_info info;
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry__listing_state(l->claims, st->name, l->id, &info, &e)) {
    failed(l, &e);
    return;
  }
  if (info.state == 2) {
    ferry_error_set(&e, FERRY_EIO, "the listing of the stage's source failed: %s",
                    info.error ? info.error : "(no message)");
    ferry__listing_info_clear(&info);
    st->source_failed = 1;
    ferry__stage_fail(st, &e);
    ferry_error_clear(&e);
    return;
  }
  if (info.state == 0 && !info.lister_live && !l->lister) {
    int64_t next = 0;
    int rc = ferry__listing_take_over(l->claims, l->id, &next, &e);
    if (rc < 0) {
      ferry__listing_info_clear(&info);
      failed(l, &e);
      return;
    }
    if (rc == 1) {
      ferry_log_warn(NULL, "worker %s: stage \"%s\": the worker listing the source (%s) is gone: this one lists it "
                     "from the start (what is listed already keeps its place)",
                     ferry__worker_name(st->run), st->name, info.lister ? info.lister : "?");
      l->lister = 1;
      l->next_seq = next;
      l->listed = next - 1;
      l->src_started = l->src_ended = l->src_failed = l->src_stopped = 0;
      l->requested = 0;
      st->source->share = 1.0;
      ferry__listing_info_clear(&info);
      if (!start_source(l)) ferry__stage_kick(st);
      return;
    }
  }
  double now = ferry__now();
  size_t rescued = 0;
  if (info.state == 1 && !info.gone) { /* an item passed over while another worker's pick held it locked, then let go */
    if (pick(l, 0, 0, want, &rescued)) {
      ferry__listing_info_clear(&info);
      return;
    }
  }
  if (!rescued && !info.gone && (now >= l->next_rescue || info.state == 1)) {
    l->next_rescue = now + LIST_RESCUE_S;
    if (pick(l, 1, 0, want, &rescued)) {
      ferry__listing_info_clear(&info);
      return;
    }
  }
  if (info.gone)
    ferry_log_warn(NULL, "worker %s: stage \"%s\": the listing was removed by the other workers, which had ended "
                   "(they took this one for dead: its heartbeat was late): nothing more to take",
                   ferry__worker_name(st->run), st->name);
  if (info.gone || (!rescued && info.state == 1 && info.others == 0 && !json_array_size(l->buf))) {
    l->ended_seen = 1; /* listed, taken and finished, or held by this worker */
    st->source_ended = 1;
    ferry__stage_kick(st);
  } else if (!rescued) {
    wait_a_little(l);
  }
  ferry__listing_info_clear(&info);
}

static void on_timer_closed(uv_handle_t *h) {
  ferry__listing *l = h->data;
  ferry_stage *st = l->st;
  free(l);
  ferry__stage_handle_closed(st);
}

void ferry__listing_release(ferry_stage *st) {
  ferry__listing *l = st->lst;
  if (!l) return;
  st->lst = NULL;
  json_decref(l->buf);
  if (!l->timer_init) {
    free(l);
    return;
  }
  ferry__stage_handle_closing(st);
  uv_close((uv_handle_t *)&l->timer, on_timer_closed);
}

int ferry__listing_lister(const ferry_stage *st) { return st->lst && st->lst->lister; }

/* ---- notes shared by the workers of a stage (ferry_shared_get/_put; ferry/plugin.h) -------------------- */
#define NOTE_NAME_MAX 256
#define NOTE_VALUE_MAX 4096

static int note_text_ok(const char *s, size_t max) {
  size_t n = strlen(s);
  if (n > max) return 0;
  json_t *j = json_stringn(s, n); /* NULL: not UTF-8 (the journal's text columns take only that) */
  json_decref(j);
  return j != NULL;
}

FERRY_API char *ferry_shared_get(ferry_instance *ins, const char *name) {
  ferry_stage *st = ins ? ins->stage : NULL;
  if (!st || !name || !*name || !note_text_ok(name, NOTE_NAME_MAX)) return NULL;
  if (!st->lst || !st->lst->claims || st->lst->id <= 0)
    return ferry_strdup(json_string_value(json_object_get(st->notes, name)));
  char *v = NULL;
  ferry_error e = FERRY_ERROR_INIT;
  if (ferry__note_get(st->lst->claims, st->lst->id, name, &v, &e) < 0) {
    ferry_log_warn(ins, "%s (taken as no note: the plugin asks again itself)", e.message ? e.message : "?");
    v = NULL;
  }
  ferry_error_clear(&e);
  return v;
}

FERRY_API int ferry_shared_put(ferry_instance *ins, const char *name, const char *value, ferry_error *err) {
  ferry_stage *st = ins ? ins->stage : NULL;
  if (!name || !*name || !note_text_ok(name, NOTE_NAME_MAX))
    return ferry_error_set(err, FERRY_EINVAL, "ferry_shared_put: the name must be 1 to %d bytes of UTF-8",
                           NOTE_NAME_MAX);
  if (!value || !note_text_ok(value, NOTE_VALUE_MAX))
    return ferry_error_set(err, FERRY_EINVAL, "ferry_shared_put \"%s\": the value must be at most %d bytes of UTF-8",
                           name, NOTE_VALUE_MAX);
  if (!st) return 0; /* an instance outside a run (service tests): nothing to share with */
  if (!st->lst || !st->lst->claims || st->lst->id <= 0) {
    if (!st->notes) st->notes = json_object();
    json_object_set_new(st->notes, name, json_string(value));
    return 0;
  }
  return ferry__note_put(st->lst->claims, st->lst->id, name, value, err);
}
