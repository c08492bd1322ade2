/* SDK service ferry/http.h: an asynchronous HTTP client on the instance's libuv loop.
 *
 * libcurl's multi interface does the protocol work; libuv does the waiting:
 *   - CURLMOPT_SOCKETFUNCTION: one uv_poll_t per socket curl wants watched (struct hsock), closed on
 *     CURL_POLL_REMOVE; readiness -> curl_multi_socket_action(fd, CURL_CSELECT_*).
 *   - CURLMOPT_TIMERFUNCTION: one uv_timer_t (http->timer); expiry -> curl_multi_socket_action(TIMEOUT).
 *   - completions are read with curl_multi_info_read after every socket_action.
 * Requests wait in a FIFO queue per endpoint (scheme://host:port) until the endpoint has room (fewer than
 * `max` in flight) and a token (token bucket of `rate` per second, burst 1: services/throttle.h, shared with
 * the SQL service); the bucket's timer runs the queue again when the next token is due. Keep-alive: all requests share the
 * multi handle's connection cache, so a finished request's connection is reused by the next one.
 *
 * Idempotency (ABI 1.1, see ferry/http.h and docs/services.md):
 *   - a request is idempotent by default for GET and HEAD; ferry_http_send_ex() flags override it.
 *   - a request that is not idempotent goes out with CURLOPT_FRESH_CONNECT: libcurl re-sends a request on its
 *     own (Curl_retry_request, "Connection died, retrying a fresh connect") only when the connection was a
 *     reused one (conn->bits.reuse) and nothing of the answer came; a fresh connection is never "reused", so
 *     libcurl sends it at most once. After the transfer its connection joins the cache like any other, for
 *     idempotent requests to reuse. Idempotent requests (the hot path: GETs) stay on keep-alive.
 *   - "was sent" rule: a request that is not idempotent and failed with no (complete) answer completes with
 *     FERRY_EINDOUBT when libcurl reports request bytes written to the connection (CURLINFO_REQUEST_SIZE or
 *     CURLINFO_SIZE_UPLOAD_T > 0; both restart at 0 for every transfer), else FERRY_ETRANSIENT (refused, DNS,
 *     connect timeout, TLS handshake: nothing reached the server). Bytes handed to the kernel may never have
 *     been read by the server: "in doubt" errs on the side of reconciling.
 *   - service retries: an idempotent request without FERRY_HTTP_NO_RETRY, on a client with `retries` > 0, is
 *     retried on no answer (ETRANSIENT) and on HTTP 5xx/429 after a delay uniform in [0, ceiling], ceiling =
 *     retry_base_ms << (retry - 1) capped at retry_cap_ms (full jitter: ferry_backoff_ms(), one generator per
 *     client). While it waits it is in http->waiting (sorted by due time, one uv_timer: http->retry_timer);
 *     when due it goes to the tail of its endpoint's queue, so each attempt takes a concurrency slot and a
 *     token like any request. The easy handle is kept and added to the multi handle again. The callback runs once, with
 *     the last attempt's result.
 *
 * Lifetime: ferry_http_free() cancels everything (callbacks with FERRY_ECANCELED) and closes every uv handle;
 * the memory is released by the last close callback, so the loop must run once more (see docs/services.md).
 * Callbacks that free the client are safe: every loop that calls user code checks `freeing` afterwards.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <curl/curl.h>

#include "load/load.h"
#include "services/throttle.h"
#include "ferry/http.h"
#include "ferry/log.h"
#include "ferry/version.h"

#define HTTP_DEFAULT_MAX 8
#define HTTP_DEFAULT_CONNECT_MS 10000
#define HTTP_DEFAULT_TIMEOUT_MS 60000
#define HTTP_DEFAULT_RETRY_BASE_MS 100
#define HTTP_DEFAULT_RETRY_CAP_MS 5000
#define HTTP_KNOWN_FLAGS (FERRY_HTTP_IDEMPOTENT | FERRY_HTTP_NOT_IDEMPOTENT | FERRY_HTTP_NO_RETRY)

typedef struct endpoint endpoint;
typedef struct hreq hreq;

enum { R_QUEUED = 1, R_INFLIGHT = 2, R_DEFERRED = 3, R_WAITING = 4 };

struct hreq {
  hreq *prev, *next;           /* endpoint queue, in-flight list, retry wait list or deferred list */
  ferry_http *http;
  endpoint *ep;
  int state;
  CURL *easy;
  struct curl_slist *headers;
  char *method;                /* upper case */
  char *safe_url;              /* scheme://host[:port]/path: no user info, no query, no fragment */
  char **scrub;                /* strings to blank out of curl's error text (query, password), or NULL */
  ferry_buf body;               /* response body */
  char errbuf[CURL_ERROR_SIZE];
  int fail_code;               /* R_DEFERRED: the error to deliver */
  int idempotent;              /* safe to send twice (method default or flags) */
  int may_retry;               /* idempotent, no FERRY_HTTP_NO_RETRY, client retries > 0 */
  unsigned attempts;           /* times handed to curl so far */
  uint64_t due_ms;             /* R_WAITING: loop time (uv_now) when the next attempt may be queued */
  ferry_http_cb cb;
  void *arg;
};

typedef struct rlist { hreq *head, *tail; size_t n; } rlist;

struct endpoint {
  endpoint *next;
  ferry_http *http;
  char *key;                   /* scheme://host:port */
  rlist queue;
  unsigned inflight;
  ferry__throttle rate;        /* token bucket (rate limit); its timer runs the queue when a token is due */
};

typedef struct hsock {
  uv_poll_t poll;
  ferry_http *http;
  curl_socket_t fd;
  int events;                  /* UV_READABLE | UV_WRITABLE that curl asked for */
  int errors;                  /* poll errors reported in a row */
  struct hsock *prev, *next;
} hsock;

struct ferry_http {
  ferry_instance *ins;
  uv_loop_t *loop;
  CURLM *multi;
  uv_timer_t timer;            /* curl's timeout */
  uv_timer_t later;            /* delivers deferred failures outside ferry_http_send */
  uv_timer_t retry_timer;      /* queues the first request of `waiting` when it is due */
  endpoint *endpoints;
  rlist inflight;
  rlist deferred;
  rlist waiting;               /* requests waiting for a retry, earliest due first */
  hsock *socks;
  size_t pending;              /* queued + in flight + waiting for a retry + deferred */
  unsigned max;
  double rate;
  long connect_timeout_ms, timeout_ms;
  unsigned retries, retry_base_ms, retry_cap_ms;
  uint64_t prng;               /* backoff jitter (ferry_backoff_ms; 0 = seeded on first use) */
  int insecure;
  char *user_agent;
  int freeing;
  unsigned open_handles;       /* uv handles not yet closed (the struct lives until 0 after free) */
};

/* ---- small helpers ------------------------------------------------------------------------------------ */

static void rl_push(rlist *l, hreq *r) {
  r->next = NULL;
  r->prev = l->tail;
  if (l->tail) l->tail->next = r;
  else l->head = r;
  l->tail = r;
  l->n++;
}

static void rl_remove(rlist *l, hreq *r) {
  if (r->prev) r->prev->next = r->next;
  else l->head = r->next;
  if (r->next) r->next->prev = r->prev;
  else l->tail = r->prev;
  r->prev = r->next = NULL;
  l->n--;
}

static hreq *rl_pop(rlist *l) {
  hreq *r = l->head;
  if (r) rl_remove(l, r);
  return r;
}

static void curl_init_once(void) { curl_global_init(CURL_GLOBAL_DEFAULT); }

static void req_free(hreq *r) {
  if (!r) return;
  if (r->easy) curl_easy_cleanup(r->easy);
  curl_slist_free_all(r->headers);
  free(r->method);
  free(r->safe_url);
  ferry__strv_free(r->scrub);
  ferry_buf_free(&r->body);
  free(r);
}

/* Replaces each scrub string in `s` by "***", then applies the registered secrets. Returns malloc'd. */
static char *scrub_text(const hreq *r, const char *s) {
  char *cur = ferry_strdup(s);
  for (size_t i = 0; r->scrub && r->scrub[i]; i++) {
    const char *needle = r->scrub[i];
    size_t n = strlen(needle);
    if (!n) continue;
    ferry_buf sb = {0};
    const char *p = cur, *hit;
    while ((hit = strstr(p, needle))) {
      ferry_buf_addn(&sb, p, (size_t)(hit - p));
      ferry_buf_add(&sb, "***");
      p = hit + n;
    }
    ferry_buf_add(&sb, p);
    free(cur);
    cur = ferry_buf_steal(&sb);
  }
  char *out = ferry_redact(cur);
  free(cur);
  return out;
}

static void handle_closed(ferry_http *h) {
  if (--h->open_handles == 0 && h->freeing) {
    free(h->user_agent);
    free(h);
  }
}

static void on_timer_closed(uv_handle_t *t) { handle_closed(t->data); }

static void on_endpoint_closed(void *arg) {
  endpoint *ep = arg;
  ferry_http *h = ep->http;
  free(ep->key);
  free(ep);
  handle_closed(h);
}

static void on_sock_closed(uv_handle_t *p) {
  hsock *s = p->data;
  ferry_http *h = s->http;
  free(s);
  handle_closed(h);
}

static void sock_close(ferry_http *h, hsock *s) {
  if (s->prev) s->prev->next = s->next;
  else h->socks = s->next;
  if (s->next) s->next->prev = s->prev;
  uv_poll_stop(&s->poll);
  uv_close((uv_handle_t *)&s->poll, on_sock_closed);
}

/* ---- completion ---------------------------------------------------------------------------------------- */

static int curl_code_to_ferry(CURLcode rc) {
  switch (rc) {
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_BAD_FUNCTION_ARGUMENT:
      return FERRY_EINVAL;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
      return FERRY_ECONFIG;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_TOO_MANY_REDIRECTS:
      return FERRY_EPROTO;
    case CURLE_OUT_OF_MEMORY:
      return FERRY_ENOMEM;
    default:
      /* resolve, connect, send/recv, reset, timeout, empty reply, partial body, TLS handshake, HTTP/2 ... */
      return FERRY_ETRANSIENT;
  }
}

/* Calls the request's callback once and frees it. The request must already be out of every list. */
static void deliver(ferry_http *h, hreq *r, const ferry_http_response *res, const ferry_error *err) {
  h->pending--;
  r->cb(r->arg, res, err);
  req_free(r);
}

static void deliver_error(ferry_http *h, hreq *r, int code, const char *what, const char *detail) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_error_set(&err, code, "%s %s: %s", r->method, r->safe_url, what);
  if (detail && *detail) {
    char *d = scrub_text(r, detail);
    ferry_error_set_detail(&err, "%s", d);
    free(d);
  }
  deliver(h, r, NULL, &err);
  ferry_error_clear(&err);
}

/* The "was sent" rule (see the file comment): 1 when libcurl wrote at least part of this transfer's request to
 * its connection. Both counters are reset by libcurl at the start of every transfer (also of a retry). */
static int request_was_sent(hreq *r) {
  long req_size = 0;
  curl_off_t uploaded = 0;
  curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &req_size);
  curl_easy_getinfo(r->easy, CURLINFO_SIZE_UPLOAD_T, &uploaded);
  return req_size > 0 || uploaded > 0;
}

static void finish(ferry_http *h, hreq *r, CURLcode rc) {
  if (rc != CURLE_OK) {
    int code = curl_code_to_ferry(rc);
    const char *what = curl_easy_strerror(rc);
    char tries[48] = "";
    if (r->attempts > 1) snprintf(tries, sizeof tries, " after %u attempts", r->attempts);
    char *msg;
    if (code == FERRY_ETRANSIENT && !r->idempotent && request_was_sent(r)) {
      code = FERRY_EINDOUBT;
      msg = ferry_asprintf("no answer after the request was sent: the server may have done it (%s)", what);
    } else if (code == FERRY_ETRANSIENT) {
      msg = ferry_asprintf("no answer (%s)%s", what, tries);
    } else {
      msg = ferry_asprintf("%s%s", what, tries);
    }
    deliver_error(h, r, code, msg, r->errbuf[0] ? r->errbuf : what);
    free(msg);
    return;
  }
  ferry_http_response res = {0};
  curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &res.status);
  char *ct = NULL;
  curl_easy_getinfo(r->easy, CURLINFO_CONTENT_TYPE, &ct);
  res.content_type = ct;
  struct curl_header *loc = NULL;
  if (curl_easy_header(r->easy, "Location", 0, CURLH_HEADER, -1, &loc) == CURLHE_OK && loc)
    res.location = loc->value;
  curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &res.seconds);
  if (!r->body.buf) ferry_buf_addn(&r->body, "", 0);
  res.body = r->body.buf;
  res.body_len = r->body.len;
  res.attempts = r->attempts;
  deliver(h, r, &res, NULL);
}

static void dispatch(endpoint *ep);
static void on_wake(void *ep) { dispatch(ep); }

/* ---- service retries ------------------------------------------------------------------------------------ */

static void on_retry_due(uv_timer_t *t);

static void retry_arm(ferry_http *h) {
  hreq *r = h->waiting.head;
  if (!r) {
    uv_timer_stop(&h->retry_timer);
    return;
  }
  uint64_t now = uv_now(h->loop);
  uv_timer_start(&h->retry_timer, on_retry_due, r->due_ms > now ? r->due_ms - now : 0, 0);
}

/* Due retries go to the tail of their endpoint's queue: they wait for a slot and a token like any request. */
static void on_retry_due(uv_timer_t *t) {
  ferry_http *h = t->data;
  uint64_t now = uv_now(h->loop);
  hreq *r;
  while (!h->freeing && (r = h->waiting.head) && r->due_ms <= now) {
    rl_remove(&h->waiting, r);
    r->state = R_QUEUED;
    rl_push(&r->ep->queue, r);
    dispatch(r->ep); /* only adds handles to curl: no user callback runs here */
  }
  if (!h->freeing) retry_arm(h);
}

/* Decides whether the service tries `r` (just out of curl, out of every list) again. If so, puts it in the
 * waiting list (sorted by due time), logs it and returns 1; the callback does not run now. */
static int retry_later(ferry_http *h, hreq *r, CURLcode rc) {
  if (!r->may_retry || r->attempts > h->retries) return 0;
  char why[160];
  if (rc != CURLE_OK) {
    if (curl_code_to_ferry(rc) != FERRY_ETRANSIENT) return 0;
    snprintf(why, sizeof why, "no answer (%s)", curl_easy_strerror(rc));
  } else {
    long st = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &st);
    if (st < 500 && st != 429) return 0;
    snprintf(why, sizeof why, "HTTP %ld", st);
  }
  /* retry number n (1 = first): ceiling = base << (n - 1), capped; delay uniform in [0, ceiling] */
  unsigned n = r->attempts;
  uint64_t delay = ferry_backoff_ms(n, h->retry_base_ms, h->retry_cap_ms, &h->prng);
  /* safe_url has no user info, query or fragment; `why` is curl's generic text or the status */
  ferry_log_debug(h->ins, "http: %s %s: %s; retry %u of %u in %llu ms", r->method, r->safe_url, why, n,
                  h->retries, (unsigned long long)delay);
  ferry_buf_free(&r->body);
  r->errbuf[0] = '\0';
  r->state = R_WAITING;
  r->due_ms = uv_now(h->loop) + delay;
  rlist *l = &h->waiting;
  hreq *after = l->tail;
  while (after && after->due_ms > r->due_ms) after = after->prev;
  r->prev = after;
  r->next = after ? after->next : l->head;
  if (r->next) r->next->prev = r;
  else l->tail = r;
  if (after) after->next = r;
  else l->head = r;
  l->n++;
  if (l->head == r) retry_arm(h);
  return 1;
}

/* Reads curl's completions; user callbacks run here. */
static void check_done(ferry_http *h) {
  CURLMsg *m;
  int left;
  while (!h->freeing && (m = curl_multi_info_read(h->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *easy = m->easy_handle;
    CURLcode rc = m->data.result;
    char *priv = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, &priv);
    hreq *r = (hreq *)priv;
    curl_off_t us = 0; /* this attempt, from the start of the transfer to its end */
    if (curl_easy_getinfo(easy, CURLINFO_TOTAL_TIME_T, &us) == CURLE_OK && h->ins)
      ferry__latency_add(&h->ins->latency[FERRY__LAT_HTTP], (double)us / 1000.0);
    curl_multi_remove_handle(h->multi, easy); /* the connection goes back to the cache for reuse */
    rl_remove(&h->inflight, r);
    endpoint *ep = r->ep;
    ep->inflight--;
    if (!retry_later(h, r, rc)) finish(h, r, rc);
    if (!h->freeing) dispatch(ep);
  }
}

/* ---- libuv <-> curl glue -------------------------------------------------------------------------------- */

static void on_poll(uv_poll_t *p, int status, int events) {
  hsock *s = p->data;
  ferry_http *h = s->http;
  int flags = 0;
  if (status < 0) {
    /* libuv stopped the handle (POLLERR). The first time, let curl read/write so that it finds the real
     * error (e.g. "Connection reset by peer") and re-arm; a second error in a row fails the transfer. */
    flags = ++s->errors > 1 ? CURL_CSELECT_ERR : CURL_CSELECT_ERR | CURL_CSELECT_IN | CURL_CSELECT_OUT;
  } else {
    s->errors = 0;
    if (events & UV_READABLE) flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE) flags |= CURL_CSELECT_OUT;
  }
  int running;
  curl_multi_socket_action(h->multi, s->fd, flags, &running); /* may close `s` (deferred free) */
  if (status < 0 && !h->freeing && !uv_is_closing((uv_handle_t *)p) && s->events)
    uv_poll_start(p, s->events, on_poll);
  check_done(h);
}

static void on_curl_timeout(uv_timer_t *t) {
  ferry_http *h = t->data;
  int running;
  curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
  check_done(h);
}

static int curl_timer_cb(CURLM *multi, long timeout_ms, void *userp) {
  ferry_http *h = userp;
  if (h->freeing) return 0;
  if (timeout_ms < 0) uv_timer_stop(&h->timer);
  else uv_timer_start(&h->timer, on_curl_timeout, (uint64_t)timeout_ms, 0);
  return 0;
}

static int curl_socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp) {
  ferry_http *h = userp;
  hsock *s = socketp;
  if (what == CURL_POLL_REMOVE) {
    if (s) {
      curl_multi_assign(h->multi, fd, NULL);
      sock_close(h, s);
    }
    return 0;
  }
  if (h->freeing) return 0;
  if (!s) {
    s = ferry__xcalloc(1, sizeof *s);
    s->http = h;
    s->fd = fd;
    int rc = uv_poll_init_socket(h->loop, &s->poll, fd);
    if (rc < 0) {
      ferry_log_error(h->ins, "http: cannot watch socket %d: %s", (int)fd, uv_strerror(rc));
      free(s);
      return -1;
    }
    s->poll.data = s;
    h->open_handles++;
    s->next = h->socks;
    if (h->socks) h->socks->prev = s;
    h->socks = s;
    curl_multi_assign(h->multi, fd, s);
  }
  int ev = 0;
  if (what == CURL_POLL_IN || what == CURL_POLL_INOUT) ev |= UV_READABLE;
  if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT) ev |= UV_WRITABLE;
  s->events = ev;
  if (ev) uv_poll_start(&s->poll, ev, on_poll);
  else uv_poll_stop(&s->poll);
  return 0;
}

/* ---- queues and limits ---------------------------------------------------------------------------------- */

static void on_later(uv_timer_t *t) {
  ferry_http *h = t->data;
  hreq *r;
  while (!h->freeing && (r = rl_pop(&h->deferred)))
    deliver_error(h, r, r->fail_code, "could not start the request", r->errbuf);
}

static void defer_failure(ferry_http *h, hreq *r, int code, const char *detail) {
  r->state = R_DEFERRED;
  r->fail_code = code;
  snprintf(r->errbuf, sizeof r->errbuf, "%s", detail);
  rl_push(&h->deferred, r);
  uv_timer_start(&h->later, on_later, 0, 0);
}

static void dispatch(endpoint *ep) {
  ferry_http *h = ep->http;
  /* ferry run --worker: this worker's share of the endpoint's concurrency (at least 1) */
  double share = h->ins && h->ins->share > 0 && h->ins->share < 1 ? h->ins->share : 1.0;
  unsigned max = (unsigned)(h->max * share);
  if (max < 1) max = 1;
  while (!h->freeing && ep->queue.head && ep->inflight < max) {
    if (!ferry__throttle_take(&ep->rate)) return;
    hreq *r = rl_pop(&ep->queue);
    CURLMcode mc = curl_multi_add_handle(h->multi, r->easy);
    if (mc != CURLM_OK) {
      defer_failure(h, r, mc == CURLM_OUT_OF_MEMORY ? FERRY_ENOMEM : FERRY_EINTERNAL, curl_multi_strerror(mc));
      continue;
    }
    r->state = R_INFLIGHT;
    r->attempts++;
    ep->inflight++;
    rl_push(&h->inflight, r);
  }
}

static endpoint *endpoint_get(ferry_http *h, const char *key) {
  for (endpoint *ep = h->endpoints; ep; ep = ep->next)
    if (!strcmp(ep->key, key)) return ep;
  endpoint *ep = ferry__xcalloc(1, sizeof *ep);
  ep->http = h;
  ep->key = ferry_strdup(key);
  ferry__throttle_init(&ep->rate, h->loop, h->rate, on_wake, ep);
  ep->rate.scale = h->ins ? &h->ins->share : NULL;
  h->open_handles++;
  ep->next = h->endpoints;
  h->endpoints = ep;
  return ep;
}

/* ---- public API ------------------------------------------------------------------------------------------ */

FERRY_API ferry_http *ferry_http_new(ferry_instance *ins, const ferry_http_opts *opts, ferry_error *err) {
  if (!ins || !ins->loop) {
    ferry_error_set(err, FERRY_EINVAL, "HTTP client: no plugin instance (or it has no loop)");
    return NULL;
  }
  ferry_http_opts o = {0};
  if (opts) {
    size_t n = opts->struct_size < sizeof o ? opts->struct_size : sizeof o;
    if (n < sizeof(uint32_t)) {
      ferry_error_set(err, FERRY_EINVAL, "HTTP client: options struct_size %u is too small",
                      (unsigned)opts->struct_size);
      return NULL;
    }
    memcpy(&o, opts, n);
  }
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, curl_init_once);

  ferry_http *h = ferry__xcalloc(1, sizeof *h);
  h->ins = ins;
  h->loop = ins->loop;
  h->max = o.max_per_endpoint ? o.max_per_endpoint : ins->concurrency ? ins->concurrency : HTTP_DEFAULT_MAX;
  h->rate = o.rate_per_endpoint > 0 ? o.rate_per_endpoint : ins->rate > 0 ? ins->rate : 0;
  h->connect_timeout_ms = o.connect_timeout_ms > 0 ? o.connect_timeout_ms : HTTP_DEFAULT_CONNECT_MS;
  h->timeout_ms = o.timeout_ms > 0 ? o.timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
  h->retries = o.retries;
  h->retry_base_ms = o.retry_base_ms ? o.retry_base_ms : HTTP_DEFAULT_RETRY_BASE_MS;
  h->retry_cap_ms = o.retry_cap_ms ? o.retry_cap_ms : HTTP_DEFAULT_RETRY_CAP_MS;
  h->insecure = o.insecure;
  h->user_agent = o.user_agent ? ferry_strdup(o.user_agent) : ferry_strdup("ferry/" FERRY_VERSION_STRING);
  h->multi = curl_multi_init();
  if (!h->multi) {
    free(h->user_agent);
    free(h);
    ferry_error_set(err, FERRY_ENOMEM, "HTTP client: libcurl could not create a multi handle");
    return NULL;
  }
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, curl_socket_cb);
  curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, curl_timer_cb);
  curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
  long maxconn = (long)h->max * 4 > 64 ? (long)h->max * 4 : 64;
  curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, maxconn);
  uv_timer_init(h->loop, &h->timer);
  h->timer.data = h;
  uv_timer_init(h->loop, &h->later);
  h->later.data = h;
  uv_timer_init(h->loop, &h->retry_timer);
  h->retry_timer.data = h;
  h->open_handles = 3;
  return h;
}

FERRY_API void ferry_http_free(ferry_http *h) {
  if (!h || h->freeing) return;
  h->freeing = 1;
  /* Take every request out first (callbacks may look at ferry_http_pending()), then cancel in order:
   * in flight (oldest first), then each endpoint's queue, then those waiting for a retry, then deferred
   * failures. */
  rlist all = {0};
  hreq *r;
  while ((r = rl_pop(&h->inflight))) {
    curl_multi_remove_handle(h->multi, r->easy);
    r->ep->inflight--;
    rl_push(&all, r);
  }
  for (endpoint *ep = h->endpoints; ep; ep = ep->next)
    while ((r = rl_pop(&ep->queue))) rl_push(&all, r);
  while ((r = rl_pop(&h->waiting))) rl_push(&all, r);
  while ((r = rl_pop(&h->deferred))) rl_push(&all, r);
  while ((r = rl_pop(&all))) deliver_error(h, r, FERRY_ECANCELED, "canceled (HTTP client closed)", NULL);

  curl_multi_cleanup(h->multi); /* closes cached connections (socket callbacks close their polls) */
  h->multi = NULL;
  while (h->socks) sock_close(h, h->socks);
  uv_timer_stop(&h->timer);
  uv_close((uv_handle_t *)&h->timer, on_timer_closed);
  uv_timer_stop(&h->later);
  uv_close((uv_handle_t *)&h->later, on_timer_closed);
  uv_timer_stop(&h->retry_timer);
  uv_close((uv_handle_t *)&h->retry_timer, on_timer_closed);
  endpoint *ep = h->endpoints;
  h->endpoints = NULL;
  while (ep) {
    endpoint *next = ep->next;
    ferry__throttle_close(&ep->rate, on_endpoint_closed);
    ep = next;
  }
  /* h itself is freed by the last close callback (handle_closed). */
}

FERRY_API size_t ferry_http_pending(const ferry_http *h) { return h ? h->pending : 0; }

static int valid_token(const char *s) {
  if (!s || !*s) return 0;
  for (; *s; s++)
    if (!isalnum((unsigned char)*s) && !strchr("!#$%&'*+-.^_`|~", *s)) return 0;
  return 1;
}

static int has_header(const char *const *headers, const char *name) {
  size_t n = strlen(name);
  for (size_t i = 0; headers && headers[i]; i++)
    if (!strncasecmp(headers[i], name, n) && headers[i][n] == ':') return 1;
  return 0;
}

/* Parses the URL: endpoint key, message-safe URL and the strings to scrub. 0 or -1. */
static int parse_url(const char *url, char **key, char **safe, char ***scrub) {
  CURLU *u = curl_url();
  if (!u) return -1;
  int rc = -1;
  char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL, *pass = NULL, *user = NULL;
  char *given_port = NULL;
  if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK) goto out;
  if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK) goto out;
  if (strcasecmp(scheme, "http") && strcasecmp(scheme, "https")) goto out;
  if (curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !*host) goto out;
  if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) goto out;
  curl_url_get(u, CURLUPART_PORT, &given_port, 0);
  curl_url_get(u, CURLUPART_PATH, &path, 0);
  curl_url_get(u, CURLUPART_QUERY, &query, 0);
  curl_url_get(u, CURLUPART_USER, &user, 0);
  curl_url_get(u, CURLUPART_PASSWORD, &pass, 0);
  for (char *p = scheme; *p; p++) *p = (char)tolower((unsigned char)*p);
  for (char *p = host; *p; p++) *p = (char)tolower((unsigned char)*p);
  *key = ferry_asprintf("%s://%s:%s", scheme, host, port);
  *safe = ferry_asprintf("%s://%s%s%s%s", scheme, host, given_port ? ":" : "", given_port ? given_port : "",
                          path ? path : "/");
  char **v = ferry__xcalloc(4, sizeof(char *));
  size_t n = 0;
  if (query && *query) v[n++] = ferry_strdup(query);
  if (pass && *pass) v[n++] = ferry_strdup(pass);
  if (user && *user) v[n++] = ferry_strdup(user);
  *scrub = v;
  rc = 0;
out:
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_free(given_port);
  curl_free(path);
  curl_free(query);
  curl_free(user);
  curl_free(pass);
  curl_url_cleanup(u);
  return rc;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *userp) {
  hreq *r = userp;
  ferry_buf_addn(&r->body, data, size * nmemb);
  return size * nmemb;
}

FERRY_API int ferry_http_send(ferry_http *h, const ferry_http_request *req, ferry_http_cb cb, void *arg) {
  return ferry_http_send_ex(h, req, 0, cb, arg);
}

FERRY_API int ferry_http_send_ex(ferry_http *h, const ferry_http_request *req, unsigned flags, ferry_http_cb cb,
                                 void *arg) {
  if (!h || !req || !cb || !req->url) return FERRY_EINVAL;
  if ((flags & ~HTTP_KNOWN_FLAGS) ||
      (flags & (FERRY_HTTP_IDEMPOTENT | FERRY_HTTP_NOT_IDEMPOTENT)) ==
          (FERRY_HTTP_IDEMPOTENT | FERRY_HTTP_NOT_IDEMPOTENT))
    return FERRY_EINVAL;
  if (h->freeing) return FERRY_ECANCELED;
  if (req->body_len && !req->body) return FERRY_EINVAL;
  const char *method = req->method ? req->method : req->body ? "POST" : "GET";
  if (!valid_token(method)) return FERRY_EINVAL;
  for (size_t i = 0; req->headers && req->headers[i]; i++)
    if (strpbrk(req->headers[i], "\r\n") || !strchr(req->headers[i], ':')) return FERRY_EINVAL;
  if (req->content_type && strpbrk(req->content_type, "\r\n")) return FERRY_EINVAL;

  char *key = NULL, *safe = NULL, **scrub = NULL;
  if (parse_url(req->url, &key, &safe, &scrub) < 0) return FERRY_EINVAL;

  hreq *r = ferry__xcalloc(1, sizeof *r);
  r->http = h;
  r->cb = cb;
  r->arg = arg;
  r->safe_url = safe;
  r->scrub = scrub;
  r->method = ferry_strdup(method);
  for (char *p = r->method; *p; p++) *p = (char)toupper((unsigned char)*p);
  r->idempotent = flags & FERRY_HTTP_IDEMPOTENT       ? 1
                  : flags & FERRY_HTTP_NOT_IDEMPOTENT ? 0
                                                      : !strcmp(r->method, "GET") || !strcmp(r->method, "HEAD");
  r->may_retry = r->idempotent && !(flags & FERRY_HTTP_NO_RETRY) && h->retries > 0;
  r->easy = curl_easy_init();
  if (!r->easy) {
    free(key);
    req_free(r);
    return FERRY_ENOMEM;
  }
  CURL *e = r->easy;
  int bad = 0;
  bad |= curl_easy_setopt(e, CURLOPT_URL, req->url) != CURLE_OK;
  curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms > 0 ? req->timeout_ms : h->timeout_ms);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, h->insecure ? 0L : 1L);
  curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, h->insecure ? 0L : 2L);
  curl_easy_setopt(e, CURLOPT_USERAGENT, h->user_agent);
  curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  /* Never sent twice by libcurl: see the file comment (its silent re-send needs a reused connection). */
  if (!r->idempotent) curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);

  int is_get = !strcmp(r->method, "GET"), is_post = !strcmp(r->method, "POST");
  if (req->body) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    bad |= curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, req->body_len ? (const char *)req->body : "") != CURLE_OK;
    if (!is_post) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
  } else if (is_get) {
    curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  } else if (!strcmp(r->method, "HEAD")) {
    curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  } else if (is_post) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, 0L);
    curl_easy_setopt(e, CURLOPT_COPYPOSTFIELDS, "");
  } else {
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
  }

  for (size_t i = 0; req->headers && req->headers[i]; i++)
    r->headers = curl_slist_append(r->headers, req->headers[i]);
  if (req->body && !has_header(req->headers, "Content-Type")) {
    char *ct = ferry_asprintf("Content-Type: %s",
                               req->content_type ? req->content_type : "application/x-www-form-urlencoded");
    r->headers = curl_slist_append(r->headers, ct);
    free(ct);
  }
  if (!has_header(req->headers, "Expect")) r->headers = curl_slist_append(r->headers, "Expect:");
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
  if (bad) {
    free(key);
    req_free(r);
    return FERRY_EINVAL;
  }

  endpoint *ep = endpoint_get(h, key);
  free(key);
  r->ep = ep;
  r->state = R_QUEUED;
  rl_push(&ep->queue, r);
  h->pending++;
  dispatch(ep); /* only adds handles to curl: no callback can run before we return */
  return 0;
}

/* ---- helpers ------------------------------------------------------------------------------------------- */

/* ferry_url_escape() and ferry_form_encode(): text.c (libcurl's escaping, no client needed). */

FERRY_API int ferry_http_status_error(const ferry_http_response *res, const char *what, ferry_error *err) {
  if (!res) return ferry_error_set(err, FERRY_EINVAL, "%s: no HTTP response", what ? what : "HTTP request");
  long st = res->status;
  if (st >= 200 && st < 300) return 0;
  int code;
  const char *hint;
  if (st >= 500 || st == 429) {
    code = FERRY_ETRANSIENT;
    hint = st == 429 ? "the server asks to slow down" : "server error";
  } else if (st == 401 || st == 403) {
    code = FERRY_EPERM;
    hint = st == 401 ? "authentication refused; check the credentials" : "permission refused";
  } else if (st == 404) {
    code = FERRY_ENOENT;
    hint = "not found";
  } else if (st >= 400) {
    code = FERRY_EINVAL;
    hint = "request refused";
  } else {
    code = FERRY_EPROTO;
    hint = st >= 300 ? "unexpected redirect" : "unexpected status";
  }
  ferry_error_set(err, code, "%s: HTTP %ld (%s)", what ? what : "HTTP request", st, hint);
  if (err) {
    ferry_buf sb = {0};
    if (res->location) {
      /* never the query string: it may carry credentials */
      size_t n = strcspn(res->location, "?#");
      ferry_buf_add(&sb, "Location: ");
      ferry_buf_addn(&sb, res->location, n);
    }
    if (res->body && res->body_len) {
      size_t n = res->body_len < 512 ? res->body_len : 512;
      if (sb.len) ferry_buf_add(&sb, "; ");
      ferry_buf_add(&sb, "body: ");
      for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)res->body[i];
        char ch = c >= 0x20 || c == '\t' ? (char)c : ' ';
        ferry_buf_addn(&sb, &ch, 1);
      }
      if (res->body_len > n) ferry_buf_add(&sb, "...");
    }
    if (sb.len) {
      char *d = ferry_redact(sb.buf);
      ferry_error_set_detail(err, "%s", d);
      free(d);
    }
    ferry_buf_free(&sb);
  }
  return code;
}
