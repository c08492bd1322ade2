/* The SDK error object (ferry/error.h). */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

FERRY_API int ferry_error_setv(ferry_error *err, int code, const char *fmt, va_list ap) {
  if (!err) return code;
  char *msg = ferry_vasprintf(fmt, ap);
  free(err->message);
  free(err->detail);
  err->detail = NULL;
  err->message = msg;
  err->code = code;
  return code;
}

FERRY_API int ferry_error_set(ferry_error *err, int code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  ferry_error_setv(err, code, fmt, ap);
  va_end(ap);
  return code;
}

FERRY_API void ferry_error_set_detail(ferry_error *err, const char *fmt, ...) {
  if (!err) return;
  va_list ap;
  va_start(ap, fmt);
  char *d = ferry_vasprintf(fmt, ap);
  va_end(ap);
  free(err->detail);
  err->detail = d;
}

FERRY_API void ferry_error_prefix(ferry_error *err, const char *fmt, ...) {
  if (!err) return;
  va_list ap;
  va_start(ap, fmt);
  char *p = ferry_vasprintf(fmt, ap);
  va_end(ap);
  char *m = ferry_asprintf("%s: %s", p, err->message ? err->message : ferry_strerror(err->code));
  free(p);
  free(err->message);
  err->message = m;
}

FERRY_API void ferry_error_clear(ferry_error *err) {
  if (!err) return;
  free(err->message);
  free(err->detail);
  err->message = err->detail = NULL;
  err->code = 0;
}

FERRY_API void ferry_error_move(ferry_error *dst, ferry_error *src) {
  if (!dst || dst == src) return;
  ferry_error_clear(dst);
  if (!src) return;
  *dst = *src;
  src->message = src->detail = NULL;
  src->code = 0;
}

FERRY_API void ferry_error_copy(ferry_error *dst, const ferry_error *src) {
  if (!dst || dst == src) return;
  ferry_error_clear(dst);
  if (!src) return;
  dst->code = src->code;
  dst->message = ferry_strdup(src->message);
  dst->detail = ferry_strdup(src->detail);
}

FERRY_API int ferry_error_is_transient(const ferry_error *err) {
  return err && (err->code == FERRY_ETRANSIENT || err->code == FERRY_EINDOUBT);
}

static const struct {
  int code;
  const char *name, *text;
} codes[] = {
    {FERRY_OK, "OK", "success"},
    {FERRY_EINVAL, "EINVAL", "invalid input"},
    {FERRY_ECONFIG, "ECONFIG", "invalid configuration"},
    {FERRY_ENOENT, "ENOENT", "not found"},
    {FERRY_EIO, "EIO", "input/output error"},
    {FERRY_ETRANSIENT, "ETRANSIENT", "temporary failure"},
    {FERRY_EPERM, "EPERM", "permission denied"},
    {FERRY_ECONFLICT, "ECONFLICT", "conflict with existing data"},
    {FERRY_EPROTO, "EPROTO", "unexpected answer from a server"},
    {FERRY_ENOMEM, "ENOMEM", "out of memory"},
    {FERRY_EABI, "EABI", "plugin refused"},
    {FERRY_EMISMATCH, "EMISMATCH", "target differs from source"},
    {FERRY_EBLOCKED, "EBLOCKED", "blocked"},
    {FERRY_ECANCELED, "ECANCELED", "canceled"},
    {FERRY_EINTERNAL, "EINTERNAL", "internal error"},
    {FERRY_EUNSUPPORTED, "EUNSUPPORTED", "not supported"},
    {FERRY_EINDOUBT, "EINDOUBT", "no answer to a request that changes the target: done or not is unknown"},
};

FERRY_API const char *ferry_err_name(int code) {
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (codes[i].code == code) return codes[i].name;
  return "EUNKNOWN";
}

FERRY_API const char *ferry_strerror(int code) {
  for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
    if (codes[i].code == code) return codes[i].text;
  return "unknown error";
}
