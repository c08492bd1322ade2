/* ferry SDK: error object and error codes.
 *
 * Conventions (as libuv): functions that can fail return 0 on success or a negative FERRY_E* code, and when
 * given a `ferry_error *err` they fill it. An error carries two texts: `message`, written for the user (what
 * failed, on what, what to do), and `detail`, for a developer (server body, SQL state, errno text). Both are
 * heap strings owned by the error object; ferry_error_clear() frees them. A zero-initialised error
 * (FERRY_ERROR_INIT) is "no error". Never put a secret in either text.
 */
#ifndef FERRY_ERROR_H
#define FERRY_ERROR_H

#include <stdarg.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FERRY_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define FERRY_PRINTF(a, b)
#endif

#ifndef FERRY_API
#define FERRY_API __attribute__((visibility("default")))
#endif

/* Error codes. Stable numbers: they may appear in journals and JSON reports. */
#define FERRY_OK 0
#define FERRY_EINVAL -1      /* bad input: data, argument, file name */
#define FERRY_ECONFIG -2     /* bad configuration */
#define FERRY_ENOENT -3      /* something named does not exist */
#define FERRY_EIO -4         /* local I/O error */
#define FERRY_ETRANSIENT -5  /* temporary: connection refused/reset, timeout, HTTP 5xx; retried by the core */
#define FERRY_EPERM -6       /* authentication or permission refused */
#define FERRY_ECONFLICT -7   /* target already holds something different */
#define FERRY_EPROTO -8      /* a server answered something we cannot understand */
#define FERRY_ENOMEM -9      /* out of memory */
#define FERRY_EABI -10       /* plugin descriptor refused */
#define FERRY_EMISMATCH -11  /* verify: target differs from source */
#define FERRY_EBLOCKED -12   /* plan: the item cannot be done as things stand */
#define FERRY_ECANCELED -13  /* operation canceled (shutdown, limit reached) */
#define FERRY_EINTERNAL -14  /* a bug in ferry or a plugin */
#define FERRY_EUNSUPPORTED -15 /* the plugin does not implement this */
#define FERRY_EINDOUBT -16   /* in doubt: a state-changing request was sent and no (complete) answer came, so
                                the target may or may not have done it (ABI 1.1). Retried by the core like a
                                transient error; the sink's next attempt must reconcile (look on the target)
                                before it sends the request again. */

typedef struct ferry_error {
  int code;      /* FERRY_E*, 0 when no error */
  char *message; /* user text, owned; NULL when no error */
  char *detail;  /* developer text, owned; may be NULL */
} ferry_error;

#define FERRY_ERROR_INIT {0, 0, 0}

/* Sets code and the user message (printf format), replacing what was there; returns `code` so that
 * `return ferry_error_set(err, FERRY_EINVAL, ...);` reads well. `err` may be NULL (then only returns). */
FERRY_API int ferry_error_set(ferry_error *err, int code, const char *fmt, ...) FERRY_PRINTF(3, 4);
FERRY_API int ferry_error_setv(ferry_error *err, int code, const char *fmt, va_list ap);
/* Sets the developer detail text (printf format), replacing any previous detail. */
FERRY_API void ferry_error_set_detail(ferry_error *err, const char *fmt, ...) FERRY_PRINTF(2, 3);
/* Prefixes the user message with "<prefix>: " (for adding context while an error travels up). */
FERRY_API void ferry_error_prefix(ferry_error *err, const char *fmt, ...) FERRY_PRINTF(2, 3);
/* Frees both texts and resets to "no error". Safe on an already clear error and on NULL. */
FERRY_API void ferry_error_clear(ferry_error *err);
/* Moves src into dst (dst cleared first); src is left clear. */
FERRY_API void ferry_error_move(ferry_error *dst, ferry_error *src);
/* Deep copy; dst cleared first. */
FERRY_API void ferry_error_copy(ferry_error *dst, const ferry_error *src);
/* 1 when the core should retry the operation that failed with this error (FERRY_ETRANSIENT, or
 * FERRY_EINDOUBT: retried too, and the retry reconciles first). */
FERRY_API int ferry_error_is_transient(const ferry_error *err);
/* Static strings: "EINVAL"..., and a short English description of a code. Never NULL. */
FERRY_API const char *ferry_err_name(int code);
FERRY_API const char *ferry_strerror(int code);

#ifdef __cplusplus
}
#endif
#endif
