/* ferry SDK service: an asynchronous HTTP client on the core's libuv loop (libcurl multi interface).
 *
 * One client per plugin instance. Connections are kept alive and reused per endpoint (scheme://host:port);
 * each endpoint has its own concurrency limit (requests in flight) and rate limit (requests per second,
 * token bucket); requests beyond them wait in a FIFO queue, so a production server is never flooded.
 * Nothing blocks the loop.
 *
 * Errors: a request that got any HTTP answer completes with status 0 and the response, whatever its HTTP
 * status (the caller decides what a 302 or a 500 means; ferry_http_status_error() helps). A request that got
 * no answer completes with FERRY_ETRANSIENT (connection refused or reset, timeout, DNS) or FERRY_EINVAL (bad
 * URL), with the curl text in err->detail.
 *
 * Idempotency (ABI 1.1). A request is idempotent when sending it twice does no more than sending it once.
 * By default only GET and HEAD are; the caller says otherwise with ferry_http_send_ex() flags. The service
 * never sends a request that is not idempotent twice, and makes sure the transport does not either: libcurl
 * silently re-sends a request, POST included, when a reused keep-alive connection turns out to be dead
 * before the first byte of the answer ("Connection died, retrying a fresh connect"), so such requests always
 * go out on a fresh connection (never a reused one; the connection may then serve idempotent requests). When
 * a request that is not idempotent was sent (at least partly) and no complete answer came (reset, closed,
 * timeout, a body cut short), it completes with FERRY_EINDOUBT instead of FERRY_ETRANSIENT: the server may
 * have done the work. The core retries such a task like a transient failure, and the sink reconciles first
 * (ferry_task_step()). A failure before anything was sent (refused, DNS, TLS handshake) stays
 * FERRY_ETRANSIENT. Idempotent requests are retried by the service itself when the client was created with
 * `retries` > 0 (see ferry_http_opts), on no answer and on HTTP 5xx/429, with capped exponential backoff and
 * full jitter; the callback then sees the last attempt only (ferry_http_response.attempts says how many).
 *
 * Ownership: everything in the request is copied by ferry_http_send() before it returns. The response and
 * the error passed to the callback are borrowed and valid only during the callback.
 */
#ifndef FERRY_HTTP_H
#define FERRY_HTTP_H

#include <stddef.h>
#include "ferry/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_http ferry_http;

typedef struct ferry_http_opts {
  uint32_t struct_size;        /* sizeof(ferry_http_opts) */
  unsigned max_per_endpoint;   /* requests in flight per endpoint; 0 = the instance's concurrency */
  double rate_per_endpoint;    /* requests per second per endpoint; 0 = the instance's rate (0 = none) */
  long connect_timeout_ms;     /* 0 = 10000 */
  long timeout_ms;             /* whole request; 0 = 60000 */
  int insecure;                /* 1 turns TLS verification off (config must say so explicitly) */
  const char *user_agent;      /* NULL = "ferry/<version>" */
  /* Fields below: ABI 1.1 (a smaller struct_size leaves them zero). */
  unsigned retries;            /* idempotent requests: extra tries after no answer or HTTP 5xx/429; 0 = none */
  unsigned retry_base_ms;      /* first backoff ceiling; 0 = 100 (doubles each try, full jitter) */
  unsigned retry_cap_ms;       /* backoff ceiling; 0 = 5000 */
} ferry_http_opts;

typedef struct ferry_http_request {
  const char *method;          /* "GET", "POST", ...; NULL = GET, or POST when body is set */
  const char *url;             /* absolute URL */
  const char *const *headers;  /* NULL-terminated "Name: value" lines, or NULL */
  const void *body;            /* request body or NULL */
  size_t body_len;
  const char *content_type;    /* for the body; NULL = application/x-www-form-urlencoded when body set */
  long timeout_ms;             /* 0 = the client's */
} ferry_http_request;

typedef struct ferry_http_response {
  long status;                 /* HTTP status code */
  const char *body;            /* NUL-terminated (an extra NUL after body_len bytes) */
  size_t body_len;
  const char *content_type;    /* or NULL */
  const char *location;        /* Location header of a redirect, or NULL (redirects are not followed) */
  double seconds;              /* total time (of the last attempt) */
  unsigned attempts;           /* ABI 1.1: attempts made, 1 = no retry */
} ferry_http_response;

typedef void (*ferry_http_cb)(void *arg, const ferry_http_response *res, const ferry_error *err);

/* Creates a client for `ins`. `opts` may be NULL (defaults). Owned by the caller: free with
 * ferry_http_free(), at the latest in fini(). */
FERRY_API ferry_http *ferry_http_new(ferry_instance *ins, const ferry_http_opts *opts, ferry_error *err);
/* Cancels what is queued or in flight (their callbacks run with FERRY_ECANCELED before this returns) and
 * frees the client. NULL allowed. */
FERRY_API void ferry_http_free(ferry_http *http);
/* Queues a request. Returns 0 (the callback will be called exactly once, never before this returns) or a
 * negative code (bad argument; the callback is never called). Same as ferry_http_send_ex(.., 0, ..). */
FERRY_API int ferry_http_send(ferry_http *http, const ferry_http_request *req, ferry_http_cb cb, void *arg);

/* Flags of ferry_http_send_ex (ABI 1.1). Without either, GET and HEAD are idempotent and every other method
 * is not. */
#define FERRY_HTTP_IDEMPOTENT 0x1u     /* safe to send twice (a POST that only reads, say) */
#define FERRY_HTTP_NOT_IDEMPOTENT 0x2u /* never sent twice (a GET that changes something) */
#define FERRY_HTTP_NO_RETRY 0x4u       /* idempotent, but the service must not retry it (the caller does) */
/* ferry_http_send with flags (see the file comment on idempotency). Unknown flags, or both IDEMPOTENT and
 * NOT_IDEMPOTENT, are refused with FERRY_EINVAL. ABI 1.1. */
FERRY_API int ferry_http_send_ex(ferry_http *http, const ferry_http_request *req, unsigned flags,
                                 ferry_http_cb cb, void *arg);
/* Requests currently queued or in flight. */
FERRY_API size_t ferry_http_pending(const ferry_http *http);

/* Helpers (no client needed). Both return malloc'd strings owned by the caller (ferry_free). */
/* Percent-encodes `s` for a URL path segment or a form value: every byte but ALPHA DIGIT - . _ ~ becomes
 * %XX (upper-case hex; UTF-8 byte by byte), by libcurl's curl_easy_escape(). NULL -> NULL. */
FERRY_API char *ferry_url_escape(const char *s);
/* Builds "k1=v1&k2=v2" from a NULL-terminated array of alternating keys and values, each escaped. */
FERRY_API char *ferry_form_encode(const char *const *kv);
/* Fills `err` for an HTTP status that is not 2xx: 5xx and 429 -> FERRY_ETRANSIENT, 401/403 -> FERRY_EPERM,
 * 404 -> FERRY_ENOENT, other 4xx -> FERRY_EINVAL; `what` names the call in the message. Returns the code, or
 * 0 for 2xx (err untouched). */
FERRY_API int ferry_http_status_error(const ferry_http_response *res, const char *what, ferry_error *err);

#ifdef __cplusplus
}
#endif
#endif
