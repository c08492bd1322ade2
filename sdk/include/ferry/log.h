/* ferry SDK: logging.
 *
 * Every line a plugin logs is prefixed with its role, plugin and stage: "[sink:pgsql:forms] ...", or carries
 * those as fields in JSON log format (one object per line: "ts", "level", "role", "plugin", "stage", "msg", and
 * "item" and "code" for ferry_log_item()). Registered secrets (ferry_secret, FERRY_OPT_SECRET options) are
 * replaced by "***" before anything is written. Messages are formatted into a core buffer; nothing the
 * caller passes is kept after the call returns.
 */
#ifndef FERRY_LOG_H
#define FERRY_LOG_H

#include "ferry/plugin.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ferry_log_level {
  FERRY_LOG_ERROR = 0,
  FERRY_LOG_WARN = 1,
  FERRY_LOG_INFO = 2,
  FERRY_LOG_DEBUG = 3,
  FERRY_LOG_TRACE = 4
} ferry_log_level;

/* Logs one line for instance `ins` (NULL: the core itself). Cheap when the level is filtered out. */
FERRY_API void ferry_log(const ferry_instance *ins, ferry_log_level level, const char *fmt, ...)
    FERRY_PRINTF(3, 4);
FERRY_API int ferry_log_enabled(ferry_log_level level);
/* Since 1.3. Logs one line about the item `key` (NULL: none) with the error code `code` (0: none): in JSON log
 * format they are the fields "item" and "code" ("EIO", ...: ferry_err_name()); in text the line reads
 * "item \"<key>\": <message>". Nothing passed is kept after the call returns. */
FERRY_API void ferry_log_item(const ferry_instance *ins, ferry_log_level level, const char *key, int code,
                              const char *fmt, ...) FERRY_PRINTF(5, 6);

#define ferry_log_error(ins, ...) do { ferry_log((ins), FERRY_LOG_ERROR, __VA_ARGS__); } while (0)
#define ferry_log_warn(ins, ...) do { ferry_log((ins), FERRY_LOG_WARN, __VA_ARGS__); } while (0)
#define ferry_log_info(ins, ...) do { ferry_log((ins), FERRY_LOG_INFO, __VA_ARGS__); } while (0)
#define ferry_log_debug(ins, ...)                                                                 \
  do {                                                                                            \
    if (ferry_log_enabled(FERRY_LOG_DEBUG)) ferry_log((ins), FERRY_LOG_DEBUG, __VA_ARGS__);       \
  } while (0)

#ifdef __cplusplus
}
#endif
#endif
