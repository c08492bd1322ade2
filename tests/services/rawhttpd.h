/* A scripted HTTP/1.1 server over raw sockets for the idempotency and retry tests (127.0.0.1, one thread per
 * connection). Unlike testhttpd (libmicrohttpd) it can misbehave exactly: close a kept-alive connection after
 * reading a request, cut a body short, answer one byte at a time.
 *
 * Every request is logged once its head and body (Content-Length) were read completely: method, path (query
 * left out), which connection it came on and its number on that connection. Paths:
 *   /fail/N/KIND[/...]  the first N requests with this exact path (any method) misbehave as KIND, later ones
 *                       get 200 "ok"; KIND is one of
 *                         drop   close the connection without an answer (after reading the whole request)
 *                         half   status, headers with Content-Length 100, 50 body bytes, then close
 *                         503    answer 503 (kept alive);  429: answer 429
 *                         drip   a complete 200 answer written one byte every 200 ms (stops when the client
 *                                goes away or the server stops)
 *   /drop-reused[/...]  200 "ok" when it is the first request on its connection; otherwise the request is read
 *                       completely and the connection closed without an answer (a server that closed an idle
 *                       keep-alive connection just as the client reused it)
 *   anything else       200 "ok" (kept alive)
 */
#ifndef FERRY_RAWHTTPD_H
#define FERRY_RAWHTTPD_H
#include <stddef.h>

typedef struct rawhttpd rawhttpd;

typedef struct rawhttpd_entry {
  char method[16];
  char path[256];
  long conn;      /* connection number, 1 = the first accepted since start */
  long nth;       /* the request's number on its connection, 1 = first */
  double at;      /* arrival (monotonic seconds, same clock as uv_hrtime) */
} rawhttpd_entry;

rawhttpd *rawhttpd_start(void); /* exits the test on failure */
int rawhttpd_port(const rawhttpd *s);
/* Requests logged with this method (NULL = any) and exact path (NULL = any). */
long rawhttpd_count(rawhttpd *s, const char *method, const char *path);
/* Connections accepted so far. */
long rawhttpd_connections(rawhttpd *s);
/* Copies the last logged request with this method and path into *out; 0 if there is none. */
int rawhttpd_last(rawhttpd *s, const char *method, const char *path, rawhttpd_entry *out);
/* Arrival times of the requests to `path`, in order; returns how many there were. */
size_t rawhttpd_arrivals(rawhttpd *s, const char *path, double *out, size_t max);
/* Closes every connection, joins every thread, frees. */
void rawhttpd_stop(rawhttpd *s);
#endif
