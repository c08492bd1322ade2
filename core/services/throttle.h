/* ferry core, layer "services": the rate limit shared by the SDK services (ferry/http.h per endpoint,
 * ferry/sql.h per database endpoint). Internal.
 *
 * A token bucket of `rate` tokens per second, burst 1 (rate <= 0: no limit). ferry__throttle_take() takes a
 * token when one is there; otherwise it arms the bucket's timer to call `ready(arg)` when the next token is
 * due and returns 0: the caller keeps its queue and runs it again from `ready`.
 *
 * Lifetime: the bucket holds one uv timer. ferry__throttle_close() closes it; `closed(arg)` runs from the
 * close callback (the memory holding the bucket must stay until then).
 */
#ifndef FERRY_CORE_THROTTLE_H
#define FERRY_CORE_THROTTLE_H

#include <stdint.h>
#include <uv.h>

typedef struct ferry__throttle {
  uv_timer_t wake;             /* runs ready() when the next token is due */
  double rate;                 /* tokens per second; <= 0 = no limit */
  const double *scale;         /* NULL, or the instance's share of the rate (ferry run --worker: 1/n of n
                                  workers); read at every take, <= 0 counts as 1 */
  double tokens;               /* at most 1 */
  uint64_t refilled_ns;        /* uv_hrtime of the last refill */
  void (*ready)(void *arg);
  void (*closed)(void *arg);
  void *arg;
} ferry__throttle;

void ferry__throttle_init(ferry__throttle *t, uv_loop_t *loop, double rate, void (*ready)(void *arg), void *arg);
/* 1: a token was taken (go on); 0: none yet, ready() runs when it is due. */
int ferry__throttle_take(ferry__throttle *t);
void ferry__throttle_close(ferry__throttle *t, void (*closed)(void *arg));

#endif
