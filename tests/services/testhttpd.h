/* A tiny HTTP server for the HTTP client tests (libmicrohttpd, one thread per connection, 127.0.0.1 only).
 *
 * Paths:
 *   /echo          200 text/plain: "method=M\nx-test=H\ncontent-type=C\nquery-a=A\nbody-len=N\nbody=B"
 *   /status/N      answers status N with body "status N"
 *   /delay/MS      waits MS milliseconds (cut short when the server stops), then 200 "slept"
 *   /close         closes the connection without answering
 *   /redirect      302 with "Location: /echo?from=redirect"
 *   /big/N         200 with N bytes: byte i is 'a' + i % 26
 *   anything else  200 "hello"
 * A second, raw listener (testhttpd_reset_port) reads each request head and resets the connection
 * (SO_LINGER 0, close): the client sees "connection reset by peer".
 * Every request to the HTTP port is counted (requests, requests running at once and their maximum, arrival times), and so
 * is every TCP connection accepted.
 */
#ifndef FERRY_TESTHTTPD_H
#define FERRY_TESTHTTPD_H
#include <stddef.h>

typedef struct testhttpd testhttpd;

typedef struct testhttpd_stats {
  long requests;       /* requests answered or refused so far */
  long connections;    /* TCP connections accepted so far */
  long running;        /* requests being handled now */
  long max_running;    /* highest `running` seen */
  long by_path_target; /* requests to /echo?from=redirect (proves a redirect was not followed) */
} testhttpd_stats;

testhttpd *testhttpd_start(void); /* exits the test on failure */
int testhttpd_port(const testhttpd *s);
int testhttpd_reset_port(const testhttpd *s);
void testhttpd_stats_get(testhttpd *s, testhttpd_stats *out);
void testhttpd_reset(testhttpd *s);
/* Copies up to `max` arrival times (monotonic seconds, same clock as uv_hrtime) of requests since the last
 * reset; returns how many there were. */
size_t testhttpd_arrivals(testhttpd *s, double *out, size_t max);
void testhttpd_stop(testhttpd *s);
#endif
