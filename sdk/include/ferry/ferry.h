/* ferry SDK umbrella header: the descriptor, items, errors, logging and the helpers (ferry/util.h), what every
 * connector needs.
 *
 * The services are not included: a plugin that uses one includes its header itself, and links what that
 * header needs (ferry/pg.h includes <libpq-fe.h>: link libpq; ferry/http.h needs nothing more). So a plugin
 * that talks to no PostgreSQL never sees libpq's headers. */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H
#include "ferry/version.h"
#include "ferry/error.h"
#include "ferry/item.h"
#include "ferry/plugin.h"
#include "ferry/log.h"
#include "ferry/util.h"
#endif
