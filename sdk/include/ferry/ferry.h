/* ferry SDK umbrella header: everything a connector needs. */
#ifndef FERRY_FERRY_H
#define FERRY_FERRY_H
#include "ferry/version.h"
#include "ferry/error.h"
#include "ferry/item.h"
#include "ferry/plugin.h"
#include "ferry/log.h"
#include "ferry/http.h"
#include "ferry/pg.h"
#endif
