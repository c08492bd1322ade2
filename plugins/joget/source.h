/* joget source: declarations shared by the source's files (private to the plugin; see joget.h).
 *
 * Files: source.c (the outline; listing, total, ops), source_assemble.c (one instance's body: variables,
 * and in HTTP mode its definition, activities and sub-flow siblings), source_sql.c (with dsn: one
 * read-only transaction per page for the page's instances, sub-flows, activities, assignments, AND-join
 * arrivals and records).
 * Functions shared between these files start with joget_ (the plugin's rule for non-static symbols).
 */
#ifndef FERRY_JOGET_SOURCE_H
#define FERRY_JOGET_SOURCE_H

#include <stdlib.h>
#include <string.h>

#include "joget.h"

typedef struct joget_src {
  joget_ctx_t *c;
  ferry_instance *ins;
  int stopped, ended, failed;
  size_t want;      /* asked for and not yet emitted */
  size_t in_flight; /* instances being assembled */
  size_t max_flight;
  /* listing */
  size_t app_idx;  /* next app in c->apps */
  const char *app; /* app being listed (NULL: all) */
  int64_t next_start;
  int app_active; /* an app (or all) is being listed */
  int app_done;   /* the current app's listing reached its end */
  int list_done;  /* every app listed */
  int listing;    /* a page request or its SQL batch is in flight */
  json_t *rows;   /* entries waiting to be assembled */
  size_t row_pos;
  json_t *prev_ids; /* ids of the previous page: {id: true} */
  int total_sent;
  /* SQL batch of the current page */
  json_t *batch_page; /* rows of the page */
  json_t *batch_tree, *batch_acts, *batch_asg, *batch_joins, *batch_recs;
  ferry_sql_txn *batch_txn; /* the page's snapshot transaction while open */
  json_t *batch_found;      /* MySQL: "table\x01record id" -> true for the records the form tables hold */
  int caps;          /* 0 unknown, 1 known: which Shark tables the database has (has_joins, has_deadlines) */
  int caps_wait;     /* a batch waits for the capability check */
  int has_joins;     /* shkandjointable exists (every Joget database has it) */
  int has_deadlines; /* shkdeadlines exists */
  int batch_err_set;
  ferry_error batch_err;
  int batch_tries;
  uint64_t batch_rng; /* jitter of the page retries (ferry_backoff_ms) */
  uv_timer_t timer;
  int timer_on;
} joget_src;

/* ---- source.c ------------------------------------------------------------------------------------------ */
void joget_src_fail(joget_src *s, const ferry_error *e);
void joget_src_pump(joget_src *s);

/* ---- source_assemble.c --------------------------------------------------------------------------------- */
int joget_wanted(joget_ctx_t *c, json_t *body);
void joget_start_assembly(joget_src *s, json_t *entry);

/* ---- source_sql.c -------------------------------------------------------------------------------------- */
void joget_batch_start(joget_src *s);

#endif
