/* Tests of the HTTP client service (ferry/http.h) against a real HTTP server on 127.0.0.1 (testhttpd).
 *
 *   test_http <case>     one case (see `cases` at the end); CTest runs each as its own test.
 *
 * The loop is driven until the expected completions arrived (with a deadline); no sleeps. Each case ends
 * by freeing its clients and running the loop until every handle is closed: uv_loop_close() must succeed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "load/load.h"
#include "ferry/http.h"
#include "ftest.h"
#include "ftest_net.h"
#include "testhttpd.h"
#include "rawhttpd.h"

#include <curl/curl.h>

static uv_loop_t loop;
static struct ferry_instance ins;
static testhttpd *srv;
static char base[64];
static rawhttpd *raw;     /* scripted raw-socket server (rawhttpd.h) */
static char rbase[64];
static int in_send;       /* set around ferry_http_send: a callback must never see it set */

/* ---- helpers ------------------------------------------------------------------------------------------- */

typedef struct result {
  int called;
  int code;               /* 0 or err->code */
  long status;
  char *body;
  size_t len;
  char *ctype, *location;
  char *msg, *detail;
  double at;              /* ferry__now() when the callback ran */
  unsigned attempts;      /* res->attempts */
} result;

/* A callback may run from a timer at the start of a UV_RUN_ONCE iteration (libuv runs timers before polling),
 * e.g. when curl finishes a transfer inside its timeout handler; the same iteration would then block in poll
 * until the next event. uv_stop() makes that poll return at once, so run_until sees the completion. */
static int driving; /* inside drive() */
static void wake_driver(void) {
  if (driving) uv_stop(&loop);
}

static void result_clear(result *r) {
  free(r->body);
  free(r->ctype);
  free(r->location);
  free(r->msg);
  free(r->detail);
  memset(r, 0, sizeof *r);
}

static void store_cb(void *arg, const ferry_http_response *res, const ferry_error *err) {
  result *r = arg;
  FT_ASSERT(!in_send, "callback ran inside ferry_http_send");
  r->called++;
  wake_driver();
  r->at = ferry__now();
  if (err && err->code) {
    FT_ASSERT(res == NULL, "an error comes without a response");
    r->code = err->code;
    r->msg = ferry_strdup(err->message);
    r->detail = ferry_strdup(err->detail);
    return;
  }
  FT_ASSERT(res != NULL, "success comes with a response");
  FT_ASSERT(res->body != NULL && res->body[res->body_len] == '\0', "body NUL-terminated");
  r->status = res->status;
  r->attempts = res->attempts;
  r->body = ferry__xmalloc(res->body_len + 1);
  memcpy(r->body, res->body, res->body_len + 1);
  r->len = res->body_len;
  r->ctype = ferry_strdup(res->content_type);
  r->location = ferry_strdup(res->location);
}

static int send_req(ferry_http *h, const ferry_http_request *req, ferry_http_cb cb, void *arg) {
  in_send = 1;
  int rc = ferry_http_send(h, req, cb, arg);
  in_send = 0;
  return rc;
}

static int get(ferry_http *h, const char *path, result *r) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", base, path);
  ferry_http_request req = {.url = url};
  return send_req(h, &req, store_cb, r);
}

static void on_guard(uv_timer_t *t) {
  *(int *)t->data = 1;
  wake_driver();
}

/* Runs the loop until done(arg) or `secs` passed (a guard timer: loop time is refreshed first, so a stale
 * loop clock cannot fire it early); returns done(arg). */
static int drive(int (*done)(const void *), const void *arg, double secs) {
  int fired = 0;
  uv_timer_t guard;
  uv_timer_init(&loop, &guard);
  guard.data = &fired;
  uv_update_time(&loop);
  uv_timer_start(&guard, on_guard, (uint64_t)(secs * 1000), 0);
  driving = 1;
  while (!done(arg) && !fired) uv_run(&loop, UV_RUN_ONCE);
  driving = 0;
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  return done(arg);
}

typedef struct counter_goal { const int *counter; int want; } counter_goal;
static int counter_reached(const void *arg) {
  const counter_goal *g = arg;
  return *g->counter >= g->want;
}

/* Runs the loop until *counter >= want or `secs` passed; returns 1 when reached. */
static int run_until(const int *counter, int want, double secs) {
  counter_goal g = {counter, want};
  return drive(counter_reached, &g, secs);
}

typedef struct results_goal { const result *r; int n; } results_goal;
static int results_called(const void *arg) {
  const results_goal *g = arg;
  int done = 0;
  for (int i = 0; i < g->n; i++) done += g->r[i].called;
  return done >= g->n;
}

/* Runs the loop until every result in r[0..n) was called once, or `secs` passed. */
static int run_results(result *r, int n, double secs) {
  results_goal g = {r, n};
  return drive(results_called, &g, secs);
}

static ferry_http *client(unsigned max, double rate, long timeout_ms) {
  ferry_http_opts o = {.struct_size = sizeof o, .max_per_endpoint = max, .rate_per_endpoint = rate,
                       .timeout_ms = timeout_ms};
  ferry_error err = FERRY_ERROR_INIT;
  ferry_http *h = ferry_http_new(&ins, &o, &err);
  FT_ASSERT(h, "ferry_http_new: %s", err.message);
  return h;
}

static void close_client(ferry_http *h) {
  ferry_http_free(h);
  uv_run(&loop, UV_RUN_DEFAULT); /* lets the close callbacks run */
}

/* ---- cases --------------------------------------------------------------------------------------------- */

static void t_get_post(void) {
  ferry_http *h = client(4, 0, 0);
  result r[6] = {{0}};
  const char *hdrs[] = {"X-Test: hello there", NULL};
  char url[256];
  snprintf(url, sizeof url, "%s/echo?a=1%%202", base);
  ferry_http_request g = {.url = url, .headers = hdrs};
  FT_ASSERT(send_req(h, &g, store_cb, &r[0]) == 0, "send GET");
  snprintf(url, sizeof url, "%s/echo", base);
  ferry_http_request p = {.url = url, .body = "k=v&x=y", .body_len = 7};
  FT_ASSERT(send_req(h, &p, store_cb, &r[1]) == 0, "send POST");
  static const char bin[] = {'a', 0, 'b', '\n', 0};
  ferry_http_request put = {.method = "put", .url = url, .body = bin, .body_len = sizeof bin,
                            .content_type = "application/octet-stream"};
  FT_ASSERT(send_req(h, &put, store_cb, &r[2]) == 0, "send PUT");
  ferry_http_request del = {.method = "DELETE", .url = url};
  FT_ASSERT(send_req(h, &del, store_cb, &r[3]) == 0, "send DELETE");
  FT_ASSERT(get(h, "/big/1000000", &r[4]) == 0, "send big");
  ferry_http_request empty_post = {.method = "POST", .url = url};
  FT_ASSERT(send_req(h, &empty_post, store_cb, &r[5]) == 0, "send empty POST");
  FT_ASSERT(ferry_http_pending(h) == 6, "6 pending, got %zu", ferry_http_pending(h));

  FT_ASSERT(run_results(r, 6, 30), "all 6 completed");
  for (int i = 0; i < 6; i++) FT_ASSERT(r[i].called == 1 && r[i].code == 0, "req %d: %d %s", i, r[i].code, r[i].msg);
  FT_ASSERT(ferry_http_pending(h) == 0, "nothing pending");
  FT_ASSERT(r[0].status == 200, "GET status %ld", r[0].status);
  FT_ASSERT(strstr(r[0].body, "method=GET\n") && strstr(r[0].body, "x-test=hello there\n") &&
                strstr(r[0].body, "query-a=1 2\n") && strstr(r[0].body, "body-len=0\n"),
            "GET echo: %s", r[0].body);
  FT_ASSERT(r[0].ctype && !strncmp(r[0].ctype, "text/plain", 10), "content type %s", r[0].ctype);
  FT_ASSERT(strstr(r[1].body, "method=POST\n") &&
                strstr(r[1].body, "content-type=application/x-www-form-urlencoded\n") &&
                strstr(r[1].body, "body=k=v&x=y"),
            "POST echo: %s", r[1].body);
  FT_ASSERT(strstr(r[2].body, "method=PUT\n") && strstr(r[2].body, "content-type=application/octet-stream\n") &&
                strstr(r[2].body, "body-len=5\n"),
            "PUT echo: %s", r[2].body);
  const char *b = strstr(r[2].body, "body=");
  FT_ASSERT(b && r[2].len - (size_t)(b + 5 - r[2].body) == 5 && !memcmp(b + 5, bin, 5), "binary body intact");
  FT_ASSERT(strstr(r[3].body, "method=DELETE\n"), "DELETE echo: %s", r[3].body);
  FT_ASSERT(r[4].len == 1000000, "big body length %zu", r[4].len);
  for (size_t i = 0; i < r[4].len; i++) FT_ASSERT(r[4].body[i] == (char)('a' + i % 26), "big body byte %zu", i);
  FT_ASSERT(strstr(r[5].body, "method=POST\n") && strstr(r[5].body, "body-len=0\n"), "empty POST: %s", r[5].body);
  for (int i = 0; i < 6; i++) result_clear(&r[i]);
  close_client(h);
}

static void t_status(void) {
  ferry_http *h = client(4, 0, 0);
  static const long codes[] = {204, 400, 401, 403, 404, 409, 429, 500, 503};
  static const int expect[] = {0, FERRY_EINVAL, FERRY_EPERM, FERRY_EPERM, FERRY_ENOENT, FERRY_EINVAL,
                               FERRY_ETRANSIENT, FERRY_ETRANSIENT, FERRY_ETRANSIENT};
  enum { N = sizeof codes / sizeof codes[0] };
  result r[N + 1] = {{0}};
  for (size_t i = 0; i < N; i++) {
    char path[32];
    snprintf(path, sizeof path, "/status/%ld", codes[i]);
    FT_ASSERT(get(h, path, &r[i]) == 0, "send");
  }
  FT_ASSERT(get(h, "/redirect", &r[N]) == 0, "send redirect");
  FT_ASSERT(run_results(r, N + 1, 10), "all answered");
  for (size_t i = 0; i < N; i++) {
    FT_ASSERT(r[i].code == 0, "an HTTP answer is not an error (%ld: %s)", codes[i], r[i].msg);
    FT_ASSERT(r[i].status == codes[i], "status passthrough %ld != %ld", r[i].status, codes[i]);
    ferry_http_response res = {.status = r[i].status, .body = r[i].body, .body_len = r[i].len};
    ferry_error err = FERRY_ERROR_INIT;
    int rc = ferry_http_status_error(&res, "list processes", &err);
    FT_ASSERT(rc == expect[i], "status %ld -> %d, expected %d", codes[i], rc, expect[i]);
    if (rc) {
      FT_ASSERT(err.code == rc && strstr(err.message, "list processes") && strstr(err.message, "HTTP"),
                "message: %s", err.message);
      FT_ASSERT(err.detail && strstr(err.detail, "status"), "detail has the body: %s", err.detail);
    } else {
      FT_ASSERT(err.code == 0 && err.message == NULL, "err untouched on 2xx");
    }
    ferry_error_clear(&err);
  }
  /* a redirect is not followed; Location is exposed */
  FT_ASSERT(r[N].code == 0 && r[N].status == 302, "redirect status %ld", r[N].status);
  FT_ASSERT(r[N].location && !strcmp(r[N].location, "/echo?from=redirect"), "location %s", r[N].location);
  testhttpd_stats st;
  testhttpd_stats_get(srv, &st);
  FT_ASSERT(st.by_path_target == 0, "the redirect target was requested (%ld)", st.by_path_target);
  ferry_http_response res = {.status = 302, .body = "", .location = r[N].location};
  ferry_error err = FERRY_ERROR_INIT;
  FT_ASSERT(ferry_http_status_error(&res, "login", &err) == FERRY_EPROTO, "302 -> EPROTO");
  FT_ASSERT(err.detail && strstr(err.detail, "/echo") && !strstr(err.detail, "from=redirect"),
            "Location without query in detail: %s", err.detail);
  ferry_error_clear(&err);
  for (size_t i = 0; i <= N; i++) result_clear(&r[i]);
  close_client(h);
}

static void t_timeout(void) {
  ferry_http *h = client(2, 0, 0);
  result r = {0};
  char url[256];
  snprintf(url, sizeof url, "%s/delay/5000?token=T0pSecretValue", base);
  ferry_http_request req = {.url = url, .timeout_ms = 200};
  double t0 = ferry__now();
  FT_ASSERT(send_req(h, &req, store_cb, &r) == 0, "send");
  FT_ASSERT(run_until(&r.called, 1, 10), "completed");
  double took = r.at - t0;
  FT_ASSERT(r.code == FERRY_ETRANSIENT, "timeout -> ETRANSIENT, got %d (%s)", r.code, r.msg);
  FT_ASSERT(took >= 0.19, "timed out after %.3f s, before the 200 ms timeout", took);
  char want[128];
  snprintf(want, sizeof want, "GET %s/delay/5000", base);
  FT_ASSERT(strstr(r.msg, want), "message names method and URL: %s", r.msg);
  FT_ASSERT(!strstr(r.msg, "T0pSecretValue") && !strstr(r.msg, "token"), "no query in message: %s", r.msg);
  FT_ASSERT(r.detail && *r.detail && !strstr(r.detail, "T0pSecretValue"), "detail: %s", r.detail);
  printf("timeout: %s | %s (%.3f s)\n", r.msg, r.detail, took);
  result_clear(&r);
  close_client(h);
}

static void t_refused(void) {
  int fd;
  int port = ft_refused_port(&fd);
  ferry_http *h = client(2, 0, 0);
  result r = {0};
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
  ferry_http_request req = {.url = url};
  FT_ASSERT(send_req(h, &req, store_cb, &r) == 0, "send");
  FT_ASSERT(run_until(&r.called, 1, 10), "completed");
  FT_ASSERT(r.called == 1 && r.code == FERRY_ETRANSIENT, "refused -> ETRANSIENT, got %d", r.code);
  FT_ASSERT(r.detail && *r.detail, "curl text in detail");
  printf("refused: %s | %s\n", r.msg, r.detail);
  result_clear(&r);
  /* an unresolvable host is transient too */
  ferry_http_request bad = {.url = "http://no-such-host.invalid/x"};
  FT_ASSERT(send_req(h, &bad, store_cb, &r) == 0, "send");
  FT_ASSERT(run_until(&r.called, 1, 30), "completed");
  FT_ASSERT(r.code == FERRY_ETRANSIENT, "resolve failure -> ETRANSIENT, got %d (%s)", r.code, r.msg);
  printf("resolve: %s | %s\n", r.msg, r.detail);
  result_clear(&r);
  close_client(h);
  close(fd);
}

static void t_reset(void) {
  ferry_http *h = client(2, 0, 0);
  result r[3] = {{0}};
  char url[256];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/reset", testhttpd_reset_port(srv));
  ferry_http_request rreq = {.url = url};
  FT_ASSERT(send_req(h, &rreq, store_cb, &r[0]) == 0, "send");
  FT_ASSERT(get(h, "/close", &r[1]) == 0, "send");
  FT_ASSERT(get(h, "/hello", &r[2]) == 0, "send");
  FT_ASSERT(run_results(r, 3, 10), "all completed");
  FT_ASSERT(r[0].code == FERRY_ETRANSIENT, "reset -> ETRANSIENT, got %d (%s)", r[0].code, r[0].msg);
  FT_ASSERT(r[1].code == FERRY_ETRANSIENT, "closed without answer -> ETRANSIENT, got %d (%s)", r[1].code,
            r[1].msg);
  FT_ASSERT(r[2].code == 0 && r[2].status == 200 && !strcmp(r[2].body, "hello"), "a good request after them");
  printf("reset: %s | %s\nclose: %s | %s\n", r[0].msg, r[0].detail, r[1].msg, r[1].detail);
  for (int i = 0; i < 3; i++) result_clear(&r[i]);
  close_client(h);
}

/* cancel: requests in flight and queued are canceled by ferry_http_free, each callback exactly once, during
 * the free call; and a callback may free its client. */
static int in_free;
static int canceled;
static void cancel_cb(void *arg, const ferry_http_response *res, const ferry_error *err) {
  result *r = arg;
  store_cb(arg, res, err);
  FT_ASSERT(in_free, "canceled callback outside ferry_http_free");
  FT_ASSERT(r->code == FERRY_ECANCELED, "canceled with %d", r->code);
  canceled++;
}

typedef struct waiter {
  ferry_http *h;
  long want_running;
  int fired;
} waiter;

static void on_poll_server(uv_timer_t *t) {
  waiter *w = t->data;
  testhttpd_stats st;
  testhttpd_stats_get(srv, &st);
  if (st.running < w->want_running) return;
  uv_timer_stop(t);
  FT_ASSERT(ferry_http_pending(w->h) == 6, "6 pending before free (%zu)", ferry_http_pending(w->h));
  in_free = 1;
  ferry_http_free(w->h);
  in_free = 0;
  w->fired = 1;
  wake_driver();
}

static ferry_http *freeing_client;
static int chain_calls;
static void free_in_cb(void *arg, const ferry_http_response *res, const ferry_error *err) {
  result *r = arg;
  store_cb(arg, res, err);
  FT_ASSERT(r->code == 0, "first request ok (%s)", r->msg);
  chain_calls++;
  in_free = 1;
  ferry_http_free(freeing_client); /* the others are queued behind this one */
  in_free = 0;
  /* sending on a freed client is refused without a callback */
}

static void t_cancel(void) {
  testhttpd_reset(srv);
  ferry_http *h = client(2, 0, 0);
  result r[6] = {{0}};
  for (int i = 0; i < 6; i++) {
    char url[256];
    snprintf(url, sizeof url, "%s/delay/20000", base);
    ferry_http_request req = {.url = url};
    FT_ASSERT(send_req(h, &req, cancel_cb, &r[i]) == 0, "send");
  }
  waiter w = {.h = h, .want_running = 2};
  uv_timer_t poll;
  uv_timer_init(&loop, &poll);
  poll.data = &w;
  uv_timer_start(&poll, on_poll_server, 2, 2);
  FT_ASSERT(run_until(&w.fired, 1, 15), "two requests reached the server");
  uv_close((uv_handle_t *)&poll, NULL);
  FT_ASSERT(canceled == 6, "6 canceled, got %d", canceled);
  for (int i = 0; i < 6; i++) {
    FT_ASSERT(r[i].called == 1, "request %d called %d times", i, r[i].called);
    result_clear(&r[i]);
  }
  uv_run(&loop, UV_RUN_DEFAULT);

  /* free from inside a callback while others wait in the queue (max 1 in flight) */
  char url[256];
  snprintf(url, sizeof url, "%s/hello", base);
  ferry_http_request req = {.url = url};
  canceled = 0;
  freeing_client = client(1, 0, 0);
  result a = {0}, b[4] = {{0}};
  FT_ASSERT(ferry_http_send(freeing_client, &req, free_in_cb, &a) == 0, "send");
  for (int i = 0; i < 4; i++) FT_ASSERT(ferry_http_send(freeing_client, &req, cancel_cb, &b[i]) == 0, "send");
  FT_ASSERT(run_until(&chain_calls, 1, 10), "first completed");
  FT_ASSERT(canceled == 4, "the 4 queued were canceled, got %d", canceled);
  uv_run(&loop, UV_RUN_DEFAULT);
  result_clear(&a);
  for (int i = 0; i < 4; i++) result_clear(&b[i]);
}

/* many parallel requests complete exactly once; the server never sees more than `max` at once */
typedef struct par {
  int idx;
  int called;
  int ok;
} par;
static int par_done;
static void par_cb(void *arg, const ferry_http_response *res, const ferry_error *err) {
  par *p = arg;
  FT_ASSERT(!in_send, "callback inside send");
  p->called++;
  wake_driver();
  par_done++;
  if (err && err->code) {
    fprintf(stderr, "request %d: %s (%s)\n", p->idx, err->message, err->detail);
    return;
  }
  char want[64];
  snprintf(want, sizeof want, "body=n=%d", p->idx);
  const char *b = strstr(res->body, "body=");
  p->ok = res->status == 200 && b && !strcmp(b, want);
}

static void t_parallel(void) {
  testhttpd_reset(srv);
  enum { N = 1000, MAX = 16 };
  ferry_http *h = client(MAX, 0, 0);
  par *ps = ferry__xcalloc(N, sizeof *ps);
  char url[256];
  snprintf(url, sizeof url, "%s/echo", base);
  double t0 = ferry__now();
  for (int i = 0; i < N; i++) {
    ps[i].idx = i;
    char body[32];
    int n = snprintf(body, sizeof body, "n=%d", i);
    ferry_http_request req = {.url = url, .body = body, .body_len = (size_t)n};
    FT_ASSERT(send_req(h, &req, par_cb, &ps[i]) == 0, "send %d", i);
  }
  FT_ASSERT(ferry_http_pending(h) == N, "pending %zu", ferry_http_pending(h));
  FT_ASSERT(run_until(&par_done, N, 60), "all completed (%d)", par_done);
  double took = ferry__now() - t0;
  for (int i = 0; i < N; i++) FT_ASSERT(ps[i].called == 1 && ps[i].ok, "request %d: called %d ok %d", i,
                                        ps[i].called, ps[i].ok);
  testhttpd_stats st;
  testhttpd_stats_get(srv, &st);
  FT_ASSERT(st.requests == N, "server saw %ld requests", st.requests);
  FT_ASSERT(st.max_running <= MAX, "server saw %ld at once (max %d)", st.max_running, MAX);
  /* a POST is not idempotent: each one goes out on a fresh connection (never a reused one, see fresh_post) */
  FT_ASSERT(st.connections == N, "%ld connections for %d POST requests: each should have its own fresh one",
            st.connections, N);
  printf("parallel: %d POST requests, %d in flight max: %.3f s, %.0f requests/s, %ld connections, "
         "server max concurrency %ld\n", N, MAX, took, N / took, st.connections, st.max_running);
  free(ps);
  close_client(h);
}

/* keep-alive: sequential requests use one connection; the concurrency cap holds */
static ferry_http *seq_client;
static int seq_done;
static char seq_url[256];
static void seq_cb(void *arg, const ferry_http_response *res, const ferry_error *err) {
  FT_ASSERT(!err || !err->code, "seq request failed: %s", err->message);
  seq_done++;
  wake_driver();
  if (seq_done < 50) {
    ferry_http_request req = {.url = seq_url};
    FT_ASSERT(ferry_http_send(seq_client, &req, seq_cb, NULL) == 0, "send from callback");
  }
}

static void t_keepalive(void) {
  testhttpd_reset(srv);
  seq_client = client(4, 0, 0);
  snprintf(seq_url, sizeof seq_url, "%s/hello", base);
  ferry_http_request req = {.url = seq_url};
  FT_ASSERT(send_req(seq_client, &req, seq_cb, NULL) == 0, "send");
  FT_ASSERT(run_until(&seq_done, 50, 30), "50 sequential requests done (%d)", seq_done);
  testhttpd_stats st;
  testhttpd_stats_get(srv, &st);
  FT_ASSERT(st.requests == 50, "server saw %ld", st.requests);
  FT_ASSERT(st.connections == 1, "50 sequential requests used %ld connections (keep-alive reuse)", st.connections);
  close_client(seq_client);

  /* concurrency cap: 30 slow requests, at most 3 at once */
  testhttpd_reset(srv);
  enum { N = 30, MAX = 3 };
  ferry_http *h = client(MAX, 0, 0);
  par_done = 0;
  par ps[N] = {{0}};
  char url[256];
  snprintf(url, sizeof url, "%s/delay/30", base);
  double t0 = ferry__now();
  for (int i = 0; i < N; i++) {
    ferry_http_request r = {.url = url};
    FT_ASSERT(send_req(h, &r, par_cb, &ps[i]) == 0, "send");
  }
  FT_ASSERT(run_until(&par_done, N, 30), "all done");
  double took = ferry__now() - t0;
  testhttpd_stats_get(srv, &st);
  FT_ASSERT(st.max_running <= MAX, "server saw %ld at once, cap %d", st.max_running, MAX);
  FT_ASSERT(st.max_running >= 2, "requests ran in parallel (%ld)", st.max_running);
  FT_ASSERT(st.connections <= MAX, "%ld connections, cap %d", st.connections, MAX);
  FT_ASSERT(took >= (N / MAX) * 0.030 * 0.95, "30 x 30 ms with 3 at once took only %.3f s", took);
  printf("keepalive: 50 sequential on 1 connection; cap 3: max %ld at once, %ld connections, %.3f s\n",
         st.max_running, st.connections, took);
  close_client(h);
}

/* rate limit: 50/s, 25 requests take at least ~0.48 s (burst 1); lower bounds only */
static void t_rate(void) {
  testhttpd_reset(srv);
  enum { N = 25 };
  ferry_http *h = client(8, 50, 0);
  par_done = 0;
  par ps[N] = {{0}};
  char url[256];
  snprintf(url, sizeof url, "%s/hello", base);
  double t0 = ferry__now();
  for (int i = 0; i < N; i++) {
    ferry_http_request r = {.url = url};
    FT_ASSERT(send_req(h, &r, par_cb, &ps[i]) == 0, "send");
  }
  FT_ASSERT(run_until(&par_done, N, 30), "all done");
  double took = ferry__now() - t0;
  double arr[N];
  size_t n = testhttpd_arrivals(srv, arr, N);
  FT_ASSERT(n == N, "server saw %zu", n);
  double span = arr[N - 1] - arr[0];
  FT_ASSERT(took >= 0.45, "25 requests at 50/s took only %.3f s", took);
  FT_ASSERT(span >= 0.45, "arrivals spanned only %.3f s", span);
  printf("rate: 25 requests at 50/s: %.3f s (arrivals span %.3f s)\n", took, span);
  close_client(h);

  /* the instance's rate is the default */
  testhttpd_reset(srv);
  ins.rate = 20;
  h = client(8, 0, 0);
  ins.rate = 0;
  par_done = 0;
  memset(ps, 0, sizeof ps);
  t0 = ferry__now();
  for (int i = 0; i < 5; i++) {
    ferry_http_request r = {.url = url};
    FT_ASSERT(send_req(h, &r, par_cb, &ps[i]) == 0, "send");
  }
  FT_ASSERT(run_until(&par_done, 5, 30), "all done");
  took = ferry__now() - t0;
  FT_ASSERT(took >= 0.19, "5 requests at the instance rate 20/s took only %.3f s", took);
  close_client(h);
}

/* credentials in URLs never reach messages */
static void t_noquery(void) {
  int fd;
  int port = ft_refused_port(&fd);
  ferry_http *h = client(2, 0, 0);
  result r = {0};
  char url[512];
  snprintf(url, sizeof url,
           "http://admin:Pa55wordXyz@127.0.0.1:%d/jw/web/json/workflow/process/list?j_username=admin&"
           "j_password=S3cretPW&loginAs=bob#frag",
           port);
  ferry_http_request req = {.url = url};
  FT_ASSERT(send_req(h, &req, store_cb, &r) == 0, "send");
  FT_ASSERT(run_until(&r.called, 1, 10), "completed");
  FT_ASSERT(r.code == FERRY_ETRANSIENT, "refused -> ETRANSIENT");
  char want[256];
  snprintf(want, sizeof want, "GET http://127.0.0.1:%d/jw/web/json/workflow/process/list", port);
  FT_ASSERT(strstr(r.msg, want), "message names method and URL: %s", r.msg);
  const char *bad[] = {"S3cretPW", "j_password", "Pa55wordXyz", "loginAs", "frag", NULL};
  for (int i = 0; bad[i]; i++) {
    FT_ASSERT(!strstr(r.msg, bad[i]), "message has %s: %s", bad[i], r.msg);
    FT_ASSERT(!r.detail || !strstr(r.detail, bad[i]), "detail has %s: %s", bad[i], r.detail);
  }
  result_clear(&r);
  /* the same with an answer that is a timeout on a live server */
  snprintf(url, sizeof url, "%s/delay/3000?j_password=S3cretPW", base);
  ferry_http_request req2 = {.url = url, .timeout_ms = 100};
  FT_ASSERT(send_req(h, &req2, store_cb, &r) == 0, "send");
  FT_ASSERT(run_until(&r.called, 1, 10), "completed");
  FT_ASSERT(r.code == FERRY_ETRANSIENT, "timeout");
  FT_ASSERT(!strstr(r.msg, "S3cretPW") && (!r.detail || !strstr(r.detail, "S3cretPW")), "no secret");
  result_clear(&r);
  close_client(h);
  close(fd);
}

static void never_cb(void *arg, const ferry_http_response *res, const ferry_error *err) {
  FT_ASSERT(0, "callback of a refused send ran");
}

static void t_badargs(void) {
  ferry_http *h = client(2, 0, 0);
  const char *bad_urls[] = {"not a url", "ftp://127.0.0.1/x", "http://", "/relative/path", "", NULL};
  for (int i = 0; bad_urls[i]; i++) {
    ferry_http_request req = {.url = bad_urls[i]};
    int rc = ferry_http_send(h, &req, never_cb, NULL);
    FT_ASSERT(rc == FERRY_EINVAL, "url '%s' -> %d", bad_urls[i], rc);
  }
  char url[256];
  snprintf(url, sizeof url, "%s/echo", base);
  const char *inj[] = {"X-A: 1\r\nX-B: 2", NULL};
  ferry_http_request r1 = {.url = url, .headers = inj};
  FT_ASSERT(ferry_http_send(h, &r1, never_cb, NULL) == FERRY_EINVAL, "header injection refused");
  ferry_http_request r2 = {.url = url, .method = "GE T"};
  FT_ASSERT(ferry_http_send(h, &r2, never_cb, NULL) == FERRY_EINVAL, "bad method refused");
  ferry_http_request r3 = {.url = url, .body_len = 3};
  FT_ASSERT(ferry_http_send(h, &r3, never_cb, NULL) == FERRY_EINVAL, "body_len without body refused");
  FT_ASSERT(ferry_http_send(h, NULL, never_cb, NULL) == FERRY_EINVAL, "NULL request");
  ferry_http_request r4 = {.url = url};
  FT_ASSERT(ferry_http_send(h, &r4, NULL, NULL) == FERRY_EINVAL, "NULL callback");
  FT_ASSERT(ferry_http_pending(h) == 0, "nothing queued");
  close_client(h);

  ferry_error err = FERRY_ERROR_INIT;
  struct ferry_instance noloop = {0};
  FT_ASSERT(ferry_http_new(&noloop, NULL, &err) == NULL && err.code == FERRY_EINVAL, "no loop refused");
  ferry_error_clear(&err);
  h = ferry_http_new(&ins, NULL, &err); /* defaults */
  FT_ASSERT(h, "defaults");
  close_client(h);
  ferry_http_free(NULL);

  char *e = ferry_url_escape("a b/c?d=e&f~g.h_i-j%\xc3\xa9");
  FT_ASSERT(!strcmp(e, "a%20b%2Fc%3Fd%3De%26f~g.h_i-j%25%C3%A9"), "escape: %s", e);
  free(e);
  const char *kv[] = {"j_username", "ad min", "j_password", "p&ss=", "empty", "", NULL};
  char *f = ferry_form_encode(kv);
  FT_ASSERT(!strcmp(f, "j_username=ad%20min&j_password=p%26ss%3D&empty="), "form: %s", f);
  free(f);
  f = ferry_form_encode((const char *const[]){NULL});
  FT_ASSERT(!strcmp(f, ""), "empty form");
  free(f);
}

/* throughput figure for the report: small GETs, 8 in flight */
static void t_throughput(void) {
  enum { N = 5000, MAX = 8 };
  ferry_http *h = client(MAX, 0, 0);
  par_done = 0;
  par *ps = ferry__xcalloc(N, sizeof *ps);
  char url[256];
  snprintf(url, sizeof url, "%s/hello", base);
  double t0 = ferry__now();
  for (int i = 0; i < N; i++) {
    ferry_http_request r = {.url = url};
    FT_ASSERT(send_req(h, &r, par_cb, &ps[i]) == 0, "send");
  }
  FT_ASSERT(run_until(&par_done, N, 120), "all done");
  double took = ferry__now() - t0;
  for (int i = 0; i < N; i++) FT_ASSERT(ps[i].called == 1, "request %d called %d", i, ps[i].called);
  printf("throughput: %d GET requests, %d in flight: %.3f s, %.0f requests/s\n", N, MAX, took, N / took);
  free(ps);
  close_client(h);
}

/* ---- idempotency, in doubt, service retries (scripted server: rawhttpd) ---------------------------------- */

static ferry_http *rclient(unsigned retries, unsigned base_ms, unsigned cap_ms, double rate, long timeout_ms) {
  ferry_http_opts o = {.struct_size = sizeof o, .max_per_endpoint = 4, .rate_per_endpoint = rate,
                       .timeout_ms = timeout_ms, .retries = retries, .retry_base_ms = base_ms,
                       .retry_cap_ms = cap_ms};
  ferry_error err = FERRY_ERROR_INIT;
  ferry_http *h = ferry_http_new(&ins, &o, &err);
  FT_ASSERT(h, "ferry_http_new: %s", err.message);
  return h;
}

/* Sends `method path` (a small form body unless GET/HEAD) to the scripted server with `flags`. */
static int rsend(ferry_http *h, const char *method, const char *path, unsigned flags, result *r) {
  char url[256];
  snprintf(url, sizeof url, "%s%s", rbase, path);
  int body = strcmp(method, "GET") && strcmp(method, "HEAD");
  ferry_http_request req = {.method = method, .url = url, .body = body ? "k=v" : NULL, .body_len = body ? 3 : 0};
  in_send = 1;
  int rc = ferry_http_send_ex(h, &req, flags, store_cb, r);
  in_send = 0;
  return rc;
}

/* rsend, then runs the loop until the callback ran (generous deadline: timing is not the point). */
static void rcall(ferry_http *h, const char *method, const char *path, unsigned flags, result *r) {
  FT_ASSERT(rsend(h, method, path, flags, r) == 0, "send %s %s", method, path);
  FT_ASSERT(run_until(&r->called, 1, 30), "%s %s completed", method, path);
  FT_ASSERT(r->called == 1, "%s %s: callback ran %d times", method, path, r->called);
}

/* Runs the loop for `secs` (nothing expected: proves that nothing more happens). */
static void run_for(double secs) {
  int never = 0;
  run_until(&never, 1, secs);
}

static size_t discard(char *d, size_t size, size_t n, void *u) { return size * n; }

/* curl_resends: pins libcurl's own behaviour with a plain easy handle (not ferry): a POST on a reused keep-alive
 * connection that the server closes after reading it is sent twice. */
static void t_curl_resends(void) {
  CURL *e = curl_easy_init();
  char url[256];
  snprintf(url, sizeof url, "%s/hello", rbase);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  CURLcode rc = curl_easy_perform(e);
  FT_ASSERT(rc == CURLE_OK, "GET: %s", curl_easy_strerror(rc));
  snprintf(url, sizeof url, "%s/drop-reused/pin", rbase);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, "k=v");
  rc = curl_easy_perform(e);
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  long posts = rawhttpd_count(raw, "POST", "/drop-reused/pin");
  FT_ASSERT(posts == 2,
            "%s sent a POST on a reused keep-alive connection that the server closed after reading it %ld "
            "time(s), expected 2: libcurl silently re-sends such a request on a fresh connection "
            "(Curl_retry_request, \"Connection died, retrying a fresh connect\"). This is the libcurl behaviour "
            "ferry's HTTP service guards against (fresh connection for requests that are not idempotent); "
            "if libcurl changed it, review the rule in core/http.c",
            curl_version(), posts);
  FT_ASSERT(rc == CURLE_OK && status == 200, "and the caller got the second send's answer, unaware (%s, %ld)",
            curl_easy_strerror(rc), status);
  FT_ASSERT(rawhttpd_connections(raw) == 2, "%ld connections", rawhttpd_connections(raw));

  /* the guard, at libcurl level: CURLOPT_FRESH_CONNECT. The same race is not possible on a fresh connection,
   * and a fresh connection that dies after the request is not retried by libcurl. */
  snprintf(url, sizeof url, "%s/hello", rbase);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
  FT_ASSERT(curl_easy_perform(e) == CURLE_OK, "GET again (keeps connection 2 alive)");
  snprintf(url, sizeof url, "%s/drop-reused/pin2", rbase);
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, "k=v");
  curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
  rc = curl_easy_perform(e);
  FT_ASSERT(rc == CURLE_OK && rawhttpd_count(raw, "POST", "/drop-reused/pin2") == 1,
            "with CURLOPT_FRESH_CONNECT the POST was sent %ld time(s) (%s)",
            rawhttpd_count(raw, "POST", "/drop-reused/pin2"), curl_easy_strerror(rc));
  snprintf(url, sizeof url, "%s/fail/9/drop/pin3", rbase);
  curl_easy_setopt(e, CURLOPT_URL, url);
  rc = curl_easy_perform(e);
  FT_ASSERT(rc == CURLE_GOT_NOTHING, "closed without answer on a fresh connection: %s", curl_easy_strerror(rc));
  FT_ASSERT(rawhttpd_count(raw, "POST", "/fail/9/drop/pin3") == 1, "a fresh connection that died was re-sent "
            "by libcurl (%ld POSTs)", rawhttpd_count(raw, "POST", "/fail/9/drop/pin3"));
  printf("curl_resends: %s: POST on a reused connection closed by the server sent %ld times; with "
         "CURLOPT_FRESH_CONNECT once\n", curl_version(), posts);
  curl_easy_cleanup(e);
}

/* fresh_post: the same server with ferry_http: the POST goes on a fresh connection, sent once, answered; GETs
 * stay on keep-alive. */
static void t_fresh_post(void) {
  ferry_http *h = rclient(0, 0, 0, 0, 0);
  result r = {0};
  rcall(h, "GET", "/hello", 0, &r);
  FT_ASSERT(r.code == 0 && r.status == 200 && r.attempts == 1, "GET: %d %ld", r.code, r.status);
  result_clear(&r);
  rcall(h, "POST", "/drop-reused/ferry", 0, &r);
  FT_ASSERT(r.code == 0 && r.status == 200 && !strcmp(r.body, "ok"), "POST answered: %d %s", r.code, r.msg);
  result_clear(&r);
  FT_ASSERT(rawhttpd_count(raw, "POST", "/drop-reused/ferry") == 1, "the POST was sent %ld times",
            rawhttpd_count(raw, "POST", "/drop-reused/ferry"));
  rawhttpd_entry g, p;
  FT_ASSERT(rawhttpd_last(raw, "GET", "/hello", &g) && rawhttpd_last(raw, "POST", "/drop-reused/ferry", &p), "log");
  FT_ASSERT(p.conn != g.conn && p.nth == 1, "the POST came on connection %ld (#%ld), the GET on %ld", p.conn, p.nth,
            g.conn);
  /* GETs after it reuse the cached connections: no new one */
  for (int i = 0; i < 10; i++) {
    rcall(h, "GET", "/hello", 0, &r);
    FT_ASSERT(r.code == 0 && r.status == 200, "GET %d", i);
    result_clear(&r);
  }
  FT_ASSERT(rawhttpd_connections(raw) == 2, "GETs after the POST opened connections (%ld in all)",
            rawhttpd_connections(raw));
  /* every POST gets its own */
  for (int i = 0; i < 3; i++) {
    rcall(h, "POST", "/echo", 0, &r);
    FT_ASSERT(r.code == 0 && r.status == 200, "POST %d", i);
    result_clear(&r);
  }
  FT_ASSERT(rawhttpd_connections(raw) == 5, "3 POSTs: %ld connections in all, expected 5",
            rawhttpd_connections(raw));
  close_client(h);
}

static int is_transient(int code) {
  ferry_error e = {.code = code};
  return ferry_error_is_transient(&e);
}

/* indoubt: a POST read completely, then the connection closed without an answer; a body cut short; nothing
 * listening. The client retries idempotent requests (retries = 3): the POSTs must still be sent once. */
static void t_indoubt(void) {
  ferry_http *h = rclient(3, 10, 50, 0, 0);
  result r = {0};
  rcall(h, "GET", "/hello", 0, &r); /* a kept-alive connection is in the cache */
  result_clear(&r);

  rcall(h, "POST", "/fail/99/drop/a?j_password=S3cretPW", 0, &r);
  FT_ASSERT(r.code == FERRY_EINDOUBT, "POST read then closed -> EINDOUBT, got %d (%s)", r.code, r.msg);
  FT_ASSERT(strstr(r.msg, "POST ") && strstr(r.msg, "/fail/99/drop/a") &&
                strstr(r.msg, "no answer after the request was sent: the server may have done it"),
            "message: %s", r.msg);
  FT_ASSERT(!strstr(r.msg, "S3cretPW") && (!r.detail || !strstr(r.detail, "S3cretPW")), "secret in %s | %s",
            r.msg, r.detail);
  FT_ASSERT(is_transient(r.code), "EINDOUBT counts as transient");
  printf("indoubt: %s | %s\n", r.msg, r.detail);
  result_clear(&r);
  run_for(0.8); /* nothing re-sends it later either */
  FT_ASSERT(rawhttpd_count(raw, "POST", "/fail/99/drop/a") == 1, "the POST was sent %ld times",
            rawhttpd_count(raw, "POST", "/fail/99/drop/a"));
  FT_ASSERT(ferry_http_pending(h) == 0, "nothing pending");

  /* headers and half the announced Content-Length, then closed */
  rcall(h, "POST", "/fail/99/half/p", 0, &r);
  FT_ASSERT(r.code == FERRY_EINDOUBT, "POST with a body cut short -> EINDOUBT, got %d (%s)", r.code, r.msg);
  result_clear(&r);
  /* the same for a GET: retried, and the next attempt is answered in full */
  rcall(h, "GET", "/fail/1/half/g", 0, &r);
  FT_ASSERT(r.code == 0 && r.status == 200 && !strcmp(r.body, "ok"), "GET retried after a cut body: %d %s", r.code,
            r.msg);
  FT_ASSERT(r.attempts == 2, "attempts %u, expected 2", r.attempts);
  result_clear(&r);
  run_for(0.3);
  FT_ASSERT(rawhttpd_count(raw, "POST", "/fail/99/half/p") == 1, "cut POST sent %ld times",
            rawhttpd_count(raw, "POST", "/fail/99/half/p"));
  FT_ASSERT(rawhttpd_count(raw, "GET", "/fail/1/half/g") == 2, "cut GET sent %ld times",
            rawhttpd_count(raw, "GET", "/fail/1/half/g"));

  /* nothing listening: nothing was sent, so the POST is not in doubt */
  long before = rawhttpd_count(raw, NULL, NULL);
  int fd;
  int port = ft_refused_port(&fd);
  char url[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/x", port);
  ferry_http_request req = {.url = url, .body = "k=v", .body_len = 3};
  FT_ASSERT(send_req(h, &req, store_cb, &r) == 0, "send");
  FT_ASSERT(run_until(&r.called, 1, 30), "completed");
  FT_ASSERT(r.code == FERRY_ETRANSIENT, "refused POST -> ETRANSIENT (not in doubt), got %d (%s)", r.code, r.msg);
  FT_ASSERT(!strstr(r.msg, "may have done it") && !strstr(r.msg, "attempts"), "message: %s", r.msg);
  FT_ASSERT(rawhttpd_count(raw, NULL, NULL) == before, "requests were counted");
  result_clear(&r);
  close(fd);
  close_client(h);
}

/* retry_status: an idempotent GET against 503, 503, 200; retries off; FERRY_HTTP_NO_RETRY; POST not retried */
static void t_retry_status(void) {
  ferry_http *h = rclient(3, 10, 40, 0, 0);
  result r = {0};
  rcall(h, "GET", "/fail/2/503/a", 0, &r);
  FT_ASSERT(r.code == 0 && r.status == 200 && r.attempts == 3, "503, 503, 200 with retries 3: %d %ld, attempts %u",
            r.code, r.status, r.attempts);
  FT_ASSERT(rawhttpd_count(raw, "GET", "/fail/2/503/a") == 3, "server saw %ld", rawhttpd_count(raw, "GET",
            "/fail/2/503/a"));
  result_clear(&r);
  rcall(h, "GET", "/fail/1/429/a", 0, &r);
  FT_ASSERT(r.code == 0 && r.status == 200 && r.attempts == 2, "429 then 200: %ld, attempts %u", r.status,
            r.attempts);
  result_clear(&r);
  rcall(h, "HEAD", "/fail/1/503/h", 0, &r);
  FT_ASSERT(r.code == 0 && r.status == 200 && r.attempts == 2, "HEAD is idempotent: %ld, attempts %u", r.status,
            r.attempts);
  result_clear(&r);
  rcall(h, "GET", "/fail/2/503/c", FERRY_HTTP_NO_RETRY, &r);
  FT_ASSERT(r.code == 0 && r.status == 503 && r.attempts == 1, "NO_RETRY: %ld, attempts %u", r.status, r.attempts);
  result_clear(&r);
  rcall(h, "POST", "/fail/1/503/d", 0, &r);
  FT_ASSERT(r.code == 0 && r.status == 503 && r.attempts == 1, "a POST is not retried: %ld, attempts %u", r.status,
            r.attempts);
  result_clear(&r);
  rcall(h, "GET", "/fail/9/503/all", 0, &r);
  FT_ASSERT(r.code == 0 && r.status == 503 && r.attempts == 4, "retries exhausted: the last 503 comes back "
            "(%ld, attempts %u)", r.status, r.attempts);
  result_clear(&r);
  close_client(h);

  h = rclient(0, 0, 0, 0, 0);
  rcall(h, "GET", "/fail/2/503/b", 0, &r);
  FT_ASSERT(r.code == 0 && r.status == 503 && r.attempts == 1, "retries 0: %ld, attempts %u", r.status, r.attempts);
  result_clear(&r);
  close_client(h);

  /* an ABI 1.0 caller: fields beyond its struct_size are not read (here they hold garbage) */
  ferry_http_opts o;
  memset(&o, 0x5a, sizeof o);
  o.struct_size = (uint32_t)offsetof(ferry_http_opts, retries);
  o.max_per_endpoint = 2;
  o.rate_per_endpoint = 0;
  o.connect_timeout_ms = 0;
  o.timeout_ms = 0;
  o.insecure = 0;
  o.user_agent = NULL;
  ferry_error err = FERRY_ERROR_INIT;
  h = ferry_http_new(&ins, &o, &err);
  FT_ASSERT(h, "ABI 1.0 opts: %s", err.message);
  rcall(h, "GET", "/fail/1/503/e", 0, &r);
  FT_ASSERT(r.code == 0 && r.status == 503 && r.attempts == 1, "ABI 1.0 opts: no retries (%ld, attempts %u)",
            r.status, r.attempts);
  result_clear(&r);
  close_client(h);
  FT_ASSERT(rawhttpd_count(raw, NULL, "/fail/2/503/b") == 1 && rawhttpd_count(raw, NULL, "/fail/2/503/c") == 1 &&
                rawhttpd_count(raw, NULL, "/fail/1/503/d") == 1 && rawhttpd_count(raw, NULL, "/fail/1/503/e") == 1,
            "requests that must not be retried were sent once each");
}

/* flags: POST flagged idempotent is retried; GET flagged not idempotent is not, and goes on a fresh
 * connection; bad flags are refused */
static void t_flags(void) {
  ferry_http *h = rclient(3, 10, 40, 0, 0);
  result r = {0};
  rcall(h, "POST", "/fail/1/drop/i", FERRY_HTTP_IDEMPOTENT, &r);
  FT_ASSERT(r.code == 0 && r.status == 200 && r.attempts == 2, "idempotent POST retried: %d %s, attempts %u",
            r.code, r.msg, r.attempts);
  FT_ASSERT(rawhttpd_count(raw, "POST", "/fail/1/drop/i") == 2, "sent %ld times",
            rawhttpd_count(raw, "POST", "/fail/1/drop/i"));
  result_clear(&r);
  rcall(h, "POST", "/fail/1/503/j", FERRY_HTTP_IDEMPOTENT, &r);
  FT_ASSERT(r.code == 0 && r.status == 200 && r.attempts == 2, "idempotent POST retried after 503: %ld, %u",
            r.status, r.attempts);
  result_clear(&r);

  rcall(h, "GET", "/hello", 0, &r);
  result_clear(&r);
  rawhttpd_entry g, n;
  FT_ASSERT(rawhttpd_last(raw, "GET", "/hello", &g), "log");
  long conns = rawhttpd_connections(raw);
  rcall(h, "GET", "/fail/9/drop/n", FERRY_HTTP_NOT_IDEMPOTENT, &r);
  FT_ASSERT(r.code == FERRY_EINDOUBT, "GET flagged not idempotent, lost answer -> EINDOUBT, got %d (%s)", r.code,
            r.msg);
  result_clear(&r);
  FT_ASSERT(rawhttpd_last(raw, "GET", "/fail/9/drop/n", &n), "log");
  FT_ASSERT(n.conn != g.conn && n.nth == 1 && rawhttpd_connections(raw) == conns + 1,
            "the GET flagged not idempotent came on connection %ld (#%ld on it), not a fresh one", n.conn, n.nth);
  run_for(0.3);
  FT_ASSERT(rawhttpd_count(raw, "GET", "/fail/9/drop/n") == 1, "not retried: sent %ld times",
            rawhttpd_count(raw, "GET", "/fail/9/drop/n"));
  /* one that is answered: fresh connection too, although idle ones are cached */
  rcall(h, "GET", "/ok/n2", FERRY_HTTP_NOT_IDEMPOTENT | FERRY_HTTP_NO_RETRY, &r);
  FT_ASSERT(r.code == 0 && r.status == 200, "answered");
  result_clear(&r);
  FT_ASSERT(rawhttpd_last(raw, "GET", "/ok/n2", &n) && n.nth == 1, "fresh connection (#%ld on %ld)", n.nth, n.conn);

  char url[128];
  snprintf(url, sizeof url, "%s/hello", rbase);
  ferry_http_request req = {.url = url};
  FT_ASSERT(ferry_http_send_ex(h, &req, 0x8, never_cb, NULL) == FERRY_EINVAL, "unknown flag refused");
  FT_ASSERT(ferry_http_send_ex(h, &req, FERRY_HTTP_IDEMPOTENT | FERRY_HTTP_NOT_IDEMPOTENT, never_cb, NULL) ==
                FERRY_EINVAL,
            "IDEMPOTENT|NOT_IDEMPOTENT refused");
  FT_ASSERT(ferry_http_send_ex(h, &req, ~0u, never_cb, NULL) == FERRY_EINVAL, "all bits refused");
  FT_ASSERT(ferry_http_pending(h) == 0, "nothing queued");
  run_for(0.1);
  close_client(h);
}

/* drip: the answer comes one byte every 200 ms, the request timeout is 500 ms */
static void t_drip(void) {
  ferry_http *h = rclient(0, 0, 0, 0, 500);
  result r = {0};
  double t0 = ferry__now();
  rcall(h, "GET", "/fail/9/drip/g", 0, &r);
  double took = r.at - t0;
  FT_ASSERT(r.code == FERRY_ETRANSIENT, "slow GET -> ETRANSIENT, got %d (%s)", r.code, r.msg);
  FT_ASSERT(took >= 0.45 && took < 5, "GET failed after %.3f s (timeout 0.5 s)", took);
  printf("drip: %s (%.3f s)\n", r.msg, took);
  result_clear(&r);
  t0 = ferry__now();
  rcall(h, "POST", "/fail/9/drip/p", 0, &r);
  took = r.at - t0;
  FT_ASSERT(r.code == FERRY_EINDOUBT, "slow POST -> EINDOUBT, got %d (%s)", r.code, r.msg);
  FT_ASSERT(took >= 0.45 && took < 5, "POST failed after %.3f s (timeout 0.5 s)", took);
  printf("drip: %s (%.3f s)\n", r.msg, took);
  result_clear(&r);
  FT_ASSERT(rawhttpd_count(raw, NULL, "/fail/9/drip/g") == 1 && rawhttpd_count(raw, NULL, "/fail/9/drip/p") == 1,
            "each sent once");
  close_client(h);
}

/* retry_free: ferry_http_free() while a request waits for its retry timer */
static void t_retry_free(void) {
  ferry_http *h = rclient(3, 600000, 600000, 0, 0); /* the retry waits up to 10 minutes */
  result r = {0};
  FT_ASSERT(rsend(h, "GET", "/fail/99/503/z", 0, &r) == 0, "send");
  double end = ferry__now() + 30;
  while (rawhttpd_count(raw, NULL, "/fail/99/503/z") < 1 && ferry__now() < end) run_for(0.02);
  FT_ASSERT(rawhttpd_count(raw, NULL, "/fail/99/503/z") == 1, "first attempt reached the server");
  run_for(0.2); /* the 503 arrives; the request now waits for its timer */
  FT_ASSERT(r.called == 0, "no callback while a retry is due");
  FT_ASSERT(ferry_http_pending(h) == 1, "a request waiting for a retry is pending (%zu)", ferry_http_pending(h));
  in_free = 1;
  ferry_http_free(h);
  in_free = 0;
  FT_ASSERT(r.called == 1 && r.code == FERRY_ECANCELED, "canceled during free: called %d, code %d", r.called, r.code);
  FT_ASSERT(strstr(r.msg, "GET ") && strstr(r.msg, "canceled"), "message: %s", r.msg);
  result_clear(&r);
  uv_run(&loop, UV_RUN_DEFAULT);
  FT_ASSERT(rawhttpd_count(raw, NULL, "/fail/99/503/z") == 1, "no attempt after free");
}

/* retry_rate: each attempt takes a token: rate 10/s, 1 request with 3 retries takes >= 0.3 s */
static void t_retry_rate(void) {
  ferry_http *h = rclient(3, 1, 1, 10, 0);
  result r = {0};
  double t0 = ferry__now();
  rcall(h, "GET", "/fail/3/503/r", 0, &r);
  double took = r.at - t0;
  FT_ASSERT(r.code == 0 && r.status == 200 && r.attempts == 4, "200 after 3 retries: %ld, attempts %u", r.status,
            r.attempts);
  double at[8];
  size_t n = rawhttpd_arrivals(raw, "/fail/3/503/r", at, 8);
  FT_ASSERT(n == 4, "server saw %zu attempts", n);
  FT_ASSERT(took >= 0.29, "4 attempts at 10/s took only %.3f s", took);
  FT_ASSERT(at[3] - at[0] >= 0.27, "arrivals spanned only %.3f s", at[3] - at[0]);
  printf("retry_rate: 4 attempts at 10/s: %.3f s (arrivals span %.3f s)\n", took, at[3] - at[0]);
  result_clear(&r);
  close_client(h);
}

/* retry_log: retries on no answer, logged at debug level with the method and the safe URL only */
static void t_retry_log(void) {
  FILE *logf = tmpfile();
  FT_ASSERT(logf, "tmpfile");
  ferry_log_configure(FERRY_LOG_DEBUG, FERRY_LOG_TEXT, logf);
  ferry_http *h = rclient(2, 10, 20, 0, 0);
  int fd;
  int port = ft_refused_port(&fd);
  char url[256];
  snprintf(url, sizeof url, "http://admin:Pa55wordXyz@127.0.0.1:%d/x/y?j_password=S3cretPW#frag", port);
  ferry_http_request req = {.url = url};
  result r = {0};
  FT_ASSERT(send_req(h, &req, store_cb, &r) == 0, "send");
  FT_ASSERT(run_until(&r.called, 1, 30), "completed");
  FT_ASSERT(r.code == FERRY_ETRANSIENT && strstr(r.msg, "after 3 attempts"), "refused GET, 2 retries: %d %s", r.code,
            r.msg);
  result_clear(&r);
  rcall(h, "GET", "/fail/1/503/log?token=T0pSecretValue", 0, &r);
  FT_ASSERT(r.status == 200 && r.attempts == 2, "503 then 200");
  result_clear(&r);
  close_client(h);
  close(fd);
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, NULL);

  rewind(logf);
  char line[1024], want[128];
  snprintf(want, sizeof want, "GET http://127.0.0.1:%d/x/y: no answer", port);
  int retries = 0, status_retries = 0;
  while (fgets(line, sizeof line, logf)) {
    printf("log: %s", line);
    FT_ASSERT(!strstr(line, "S3cretPW") && !strstr(line, "j_password") && !strstr(line, "Pa55wordXyz") &&
                  !strstr(line, "admin") && !strstr(line, "frag") && !strstr(line, "T0pSecretValue"),
              "secret in the log: %s", line);
    if (strstr(line, "debug") && strstr(line, want) && strstr(line, "of 2 in ")) retries++;
    if (strstr(line, "debug") && strstr(line, "GET http://127.0.0.1:") && strstr(line, "/fail/1/503/log: HTTP 503") &&
        strstr(line, "retry 1 of 2"))
      status_retries++;
  }
  fclose(logf);
  FT_ASSERT(retries == 2, "2 retry lines for the refused GET, got %d", retries);
  FT_ASSERT(status_retries == 1, "1 retry line for the 503, got %d", status_retries);
}

static const struct {
  const char *name;
  void (*fn)(void);
} cases[] = {
    {"get_post", t_get_post}, {"status", t_status},       {"timeout", t_timeout},   {"refused", t_refused},
    {"reset", t_reset},       {"cancel", t_cancel},       {"parallel", t_parallel}, {"keepalive", t_keepalive},
    {"rate", t_rate},         {"noquery", t_noquery},     {"badargs", t_badargs},   {"throughput", t_throughput},
    {"curl_resends", t_curl_resends}, {"fresh_post", t_fresh_post}, {"indoubt", t_indoubt},
    {"retry_status", t_retry_status}, {"flags", t_flags},           {"drip", t_drip},
    {"retry_free", t_retry_free},     {"retry_rate", t_retry_rate}, {"retry_log", t_retry_log},
};

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: test_http CASE\n");
    return 2;
  }
  uv_loop_init(&loop);
  ins.loop = &loop;
  ins.role = FERRY_KIND_SINK;
  ins.stage_name = "services-test";
  ins.concurrency = 8;
  ins.rate = 0;
  srv = testhttpd_start();
  snprintf(base, sizeof base, "http://127.0.0.1:%d", testhttpd_port(srv));
  raw = rawhttpd_start();
  snprintf(rbase, sizeof rbase, "http://127.0.0.1:%d", rawhttpd_port(raw));
  int found = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (!strcmp(cases[i].name, argv[1])) {
      cases[i].fn();
      found = 1;
    }
  FT_ASSERT(found, "unknown case %s", argv[1]);
  uv_run(&loop, UV_RUN_DEFAULT);
  FT_ASSERT(uv_loop_close(&loop) == 0, "every uv handle closed");
  testhttpd_stop(srv);
  rawhttpd_stop(raw);
  printf("ok %s\n", argv[1]);
  return 0;
}
