/* The services' rate limit (throttle.h): a token bucket, burst 1, with a uv timer for the next token. */
#include "services/throttle.h"

static void on_wake(uv_timer_t *h) {
  ferry__throttle *t = h->data;
  if (t->ready) t->ready(t->arg);
}

static void on_closed(uv_handle_t *h) {
  ferry__throttle *t = h->data;
  if (t->closed) t->closed(t->arg);
}

void ferry__throttle_init(ferry__throttle *t, uv_loop_t *loop, double rate, void (*ready)(void *arg), void *arg) {
  t->rate = rate;
  t->scale = NULL;
  t->tokens = 1.0;
  t->refilled_ns = uv_hrtime();
  t->ready = ready;
  t->closed = NULL;
  t->arg = arg;
  uv_timer_init(loop, &t->wake);
  t->wake.data = t;
}

int ferry__throttle_take(ferry__throttle *t) {
  if (t->rate <= 0) return 1;
  double rate = t->rate * (t->scale && *t->scale > 0 && *t->scale < 1 ? *t->scale : 1.0);
  uint64_t now = uv_hrtime();
  t->tokens += (double)(now - t->refilled_ns) / 1e9 * rate;
  if (t->tokens > 1.0) t->tokens = 1.0;
  t->refilled_ns = now;
  if (t->tokens >= 1.0) {
    t->tokens -= 1.0;
    return 1;
  }
  double wait_ms = (1.0 - t->tokens) / rate * 1000.0;
  uv_timer_start(&t->wake, on_wake, (uint64_t)wait_ms + 1, 0);
  return 0;
}

void ferry__throttle_close(ferry__throttle *t, void (*closed)(void *arg)) {
  t->closed = closed;
  t->ready = NULL;
  uv_timer_stop(&t->wake);
  uv_close((uv_handle_t *)&t->wake, on_closed);
}
