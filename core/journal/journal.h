/* ferry core, layer "journal": the SQLite journal (core/journal: journal.c; reader.c is the public
 * read-only API of ferry/journal.h). Uses the base layer only.
 */
#ifndef FERRY_CORE_JOURNAL_H
#define FERRY_CORE_JOURNAL_H

#include "base/base.h"

/* ===== journal.c (SQLite, WAL; or PostgreSQL through journal_pg.c) =========================================================================== */
typedef struct ferry_journal ferry_journal;
typedef enum ferry_jstatus {
  FERRY_J_NONE = 0,   /* not in the journal */
  FERRY_J_INTENT = 1, /* in doubt: an intent was recorded, no outcome yet */
  FERRY_J_DONE = 2,
  FERRY_J_SKIPPED = 3,
  FERRY_J_FAILED = 4
} ferry_jstatus;
const char *ferry__jstatus_name(ferry_jstatus s);

typedef struct ferry_jrow {
  ferry_jstatus status;
  char *step;         /* owned, or NULL */
  json_t *state;      /* owned reference (object), never NULL after a successful get */
  unsigned attempts;
  char *error;        /* owned, or NULL: "<message>" or "<message>\n<detail>" (redacted) */
  int error_code;     /* FERRY_E* of the last failure (failed items), 0 otherwise */
  int64_t created, updated; /* ms since the epoch; 0 for an item not in the journal */
  /* schema version 2 (NULL / 0 when a version-1 journal is read) */
  json_t *report;     /* owned, or NULL: the task's report object of the last outcome (redacted) */
  json_t *verify;     /* owned, or NULL: what the last verify found when it found the item different:
                         {"result": "mismatch", "at": ms, "run": id, "message": "...", "differences": [...]} */
  int64_t run;        /* id of the run (or verify run) that last wrote the row; 0 = none */
  json_t *ids;        /* owned, or NULL: only iterations with ferry_jquery.ids fill it: the item's id map,
                         [{"kind": "...", "old": "...", "new": "..."}] in (kind, old) order */
} ferry_jrow;
void ferry__jrow_clear(ferry_jrow *row);

/* Opens (creating unless readonly) the journal; WAL mode, synchronous=NORMAL (a commit survives kill -9).
 * A writable open takes the journal's run lock (flock on "<path>-lock"): a second writable open, from this
 * process or another, is refused until the first is closed. Read-only opens never lock and never create.
 * Schema: a writable open upgrades a version-1 journal to version 2 (one transaction); a read-only open
 * reads a version-1 journal as it is (the version-2 fields read as NULL / 0); a newer version is refused. */
ferry_journal *ferry__journal_open(const char *path, int readonly, ferry_error *err);
/* 1 when `path` names a PostgreSQL journal ("postgresql://..." or "postgres://...": docs/journal.md), which
 * ferry__journal_open reaches through the SQL service; anything else is an SQLite file. */
int ferry__journal_is_url(const char *path);
/* A writable open of a PostgreSQL journal for one of several workers (ferry run --worker): the run lock is
 * taken shared, so other workers may hold it too while a plain run or a verify (exclusive) is refused, and
 * the other way round. An SQLite journal is FERRY_ECONFIG. */
ferry_journal *ferry__journal_open_worker(const char *path, ferry_error *err);
void ferry__journal_close(ferry_journal *j);
/* The schema version of the open file (2, or 1 for a read-only open of an old journal). */
int ferry__journal_version(const ferry_journal *j);
/* Run bookkeeping (ferry status shows runs). run_begin makes the new run the journal's current run: every
 * row written afterwards (intents, outcomes, verify marks) gets its id in the `run` column, until run_end of
 * that run. */
int ferry__journal_run_begin(ferry_journal *j, const char *mode, int64_t *run_id, ferry_error *err);
int ferry__journal_run_end(ferry_journal *j, int64_t run_id, int status, const char *summary_json,
                          ferry_error *err);
/* The current run (0 = none). */
int64_t ferry__journal_run_id(const ferry_journal *j);
/* One item (status FERRY_J_NONE and an empty state when absent). get leaves row->report NULL (the resume
 * lookup of every item does not need it); get_full reads it too. */
int ferry__journal_get(ferry_journal *j, const char *stage, const char *key, ferry_jrow *row, ferry_error *err);
int ferry__journal_get_full(ferry_journal *j, const char *stage, const char *key, ferry_jrow *row,
                           ferry_error *err);
/* Records an intent now (committed before return, even inside a group). */
int ferry__journal_intent(ferry_journal *j, const char *stage, const char *key, const char *step,
                         json_t *state, unsigned attempts, ferry_error *err);

/* Outcomes; they may be grouped (see group_begin/commit) — committed at the latest by group_commit. */
typedef struct ferry_joutcome {
  ferry_jstatus status;     /* FERRY_J_DONE, FERRY_J_SKIPPED or FERRY_J_FAILED */
  json_t *state;            /* the item's state (object); NULL keeps the stored one */
  json_t *report;           /* the task's report object (redacted when stored); NULL or {} stores NULL (for a
                               failed repair: keeps the stored report) */
  const ferry_error *cause; /* FAILED: why (stored as "<message>\n<detail>", detail capped, redacted) */
  unsigned attempts;        /* FAILED: attempts so far; done/skipped: 0 keeps the stored count */
  int repair;               /* FAILED of a repair (ferry run --repair): the row keeps status done and its
                               verify mark, and gets the error, attempts and report */
} ferry_joutcome;
/* Done/skipped also clear the item's error and its verify mark. */
int ferry__journal_outcome(ferry_journal *j, const char *stage, const char *key, const ferry_joutcome *o,
                          ferry_error *err);
/* ferry__journal_outcome without a report. */
int ferry__journal_done(ferry_journal *j, const char *stage, const char *key, json_t *state, int skipped,
                       ferry_error *err);
int ferry__journal_failed(ferry_journal *j, const char *stage, const char *key, json_t *state,
                         const ferry_error *cause, unsigned attempts, ferry_error *err);
/* The outcome of an item is not known (the sink's sync() failed): records the error (and a non-empty
 * report) on the item's row, which keeps its status (normally the intent: in doubt). Grouped like an
 * outcome. *recorded (may be NULL) = 0 when the journal has no row for the item (nothing written). */
int ferry__journal_doubt(ferry_journal *j, const char *stage, const char *key, const ferry_error *cause,
                        json_t *report, int *recorded, ferry_error *err);
/* Verify marks (ferry verify; grouped like outcomes). mark: sets the item's `verify` column to
 * {"result": "mismatch", "at": now, "run": the current run, "message": message, "differences": a copy of
 * `differences` (an array; anything else: [])}, redacted. clear: sets it to NULL. Both set the row's run
 * and change nothing else; *found (may be NULL) = 0 when the journal has no row for the item. */
int ferry__journal_verify_mark(ferry_journal *j, const char *stage, const char *key, const char *message,
                              json_t *differences, int *found, ferry_error *err);
int ferry__journal_verify_clear(ferry_journal *j, const char *stage, const char *key, int *found,
                               ferry_error *err);
int ferry__journal_map_id(ferry_journal *j, const char *stage, const char *key, const char *kind,
                         const char *old_id, const char *new_id, ferry_error *err);
/* Looks up a mapped id (NULL when none; malloc'd, owned by the caller). */
char *ferry__journal_lookup_id(ferry_journal *j, const char *kind, const char *old_id, ferry_error *err);
/* Group commit of outcomes: begin opens a transaction; commit ends it. Intents commit immediately. */
int ferry__journal_group_begin(ferry_journal *j, ferry_error *err);
int ferry__journal_group_commit(ferry_journal *j, ferry_error *err);
/* Counts per status for one stage (NULL = all stages): out[FERRY_J_*]; out[FERRY_J_NONE] = all items. */
int ferry__journal_counts(ferry_journal *j, const char *stage, int64_t out[5], ferry_error *err);
/* Calls fn for each item of a stage (NULL = all) with that status (FERRY_J_NONE = any), in key order. fn
 * returns non-zero to stop. Borrowed arguments valid during the call. Rows are read in batches and fn runs
 * with no statement open: it may use the journal (even write). */
int ferry__journal_foreach(ferry_journal *j, const char *stage, ferry_jstatus status,
                          int (*fn)(void *arg, const char *stage, const char *key, const ferry_jrow *row),
                          void *arg, ferry_error *err);
/* The same for the items whose row the run `run` wrote last, of one stage (NULL = all), in (stage, key)
 * order. There is no index on the run: this reads every row of the stage (of all stages for NULL). Nothing
 * for a version-1 journal. */
int ferry__journal_foreach_run(ferry_journal *j, int64_t run, const char *stage,
                              int (*fn)(void *arg, const char *stage, const char *key, const ferry_jrow *row),
                              void *arg, ferry_error *err);
/* ferry__journal_foreach with every filter: stage (NULL = all), status (FERRY_J_NONE = any), run (0 = any;
 * else only rows that run wrote last, as foreach_run), ids (1: fill row->ids, read with one range query per
 * batch of rows rather than one per item). */
typedef struct ferry_jquery {
  const char *stage;
  ferry_jstatus status;
  int64_t run;
  int ids;
} ferry_jquery;
int ferry__journal_foreach_ex(ferry_journal *j, const ferry_jquery *q,
                             int (*fn)(void *arg, const char *stage, const char *key, const ferry_jrow *row),
                             void *arg, ferry_error *err);
/* One mapping of the id map (borrowed strings, valid during the callback). */
typedef struct ferry_jid {
  const char *kind, *old_id, *new_id;
  const char *stage, *key; /* the item that mapped it */
  int64_t created;         /* ms since the epoch */
} ferry_jid;
/* Calls fn for each mapping: of one item (stage and key given; index idmap_item; order kind, old_id), of
 * one stage (key NULL; order key, kind, old_id) or all (both NULL; order kind, old_id); `kind` (may be NULL)
 * keeps only that kind. fn returns non-zero to stop; it runs with no statement open (batches). */
int ferry__journal_foreach_id(ferry_journal *j, const char *stage, const char *key, const char *kind,
                             int (*fn)(void *arg, const ferry_jid *id), void *arg, ferry_error *err);
/* Names of stages present in the journal (NULL-terminated, owned by the caller: ferry__strv_free). */
char **ferry__journal_stages(ferry_journal *j, ferry_error *err);
/* The last `limit` runs (0 = all), newest first: a new JSON array of {id, mode, started, ended, status,
 * summary} (times in milliseconds since the epoch; ended, status and summary null while a run has not
 * ended, or when it was killed). Owned by the caller. */
json_t *ferry__journal_runs(ferry_journal *j, int limit, ferry_error *err);

/* ===== claims.c: several workers on one PostgreSQL journal (docs/journal.md, "Several workers") ============ */
typedef struct ferry__claims ferry__claims;
/* 1 when `name` can name a worker: 1 to 64 of [A-Za-z0-9._-]. */
int ferry__claims_name_ok(const char *name);
/* Its own connection to the journal `url` (the tables ferry_workers and ferry_claims created when missing),
 * the worker name taken (refused while another live process holds it) and the worker's row written with its
 * heartbeat (server time) and lease. NULL with err set. */
ferry__claims *ferry__claims_open(const char *url, const char *worker, double lease_s, ferry_error *err);
const char *ferry__claims_worker(const ferry__claims *c);
/* Drops the worker's claims of the items whose outcome the run `run` (0 = none) has committed (their rows
 * say so), renews its heartbeat and every claim it still holds (now() + lease); *live = the live workers
 * (this one included: heartbeats within their lease). */
int ferry__claims_heartbeat(ferry__claims *c, int64_t run, int *live, ferry_error *err);
/* 1 when this worker still holds the item (renewed; also when its lease expired but no other worker took
 * it), 0 when another worker took it over; < 0 error. No round trip while the heartbeats came in time,
 * unless `ask`. */
int ferry__claims_holds(ferry__claims *c, const char *stage, const char *key, int ask, ferry_error *err);
/* *unseen = the other live workers whose last heartbeat began before this worker's row was committed (so
 * their share does not count it yet); the first call reads that time. 0, or an error. */
int ferry__claims_unseen(ferry__claims *c, int *unseen, ferry_error *err);
/* Drops every claim of the worker and its row, and the listings no other live worker is a member of; then
 * the connection (and the name). */
void ferry__claims_close(ferry__claims *c);
/* This process's incarnation of the worker name (ferry_workers.inc), as text; borrowed. */
const char *ferry__claims_inc(const ferry__claims *c);

/* Listings (claims.c): one worker lists a stage's source into the journal, every worker takes from it.
 * join: joins the newest listing of the stage with a live member, or replaces the stage's listings with a
 * new one; *lister = 1 when this worker is to list it (new, or its lister died), *next_seq the seq its first
 * item gets. take_over: 1 when this worker now lists `listing` (its lister is no longer live), 0 not. add:
 * `items` a JSON array of ferry_item_to_json objects, listed from first_seq on, only while this worker is the
 * listing's lister (an item already listed keeps its place); 1 when it still is (*max_seq: the highest seq
 * it inserted, unchanged when every item was listed already), 0 when another took over. end: the listing is complete (error NULL; total
 * the source's, -1 unknown) or failed (error). pick: takes up to n items, fresh (not taken, seq > after) or,
 * with rescue, those an incarnation that is no longer live took and left unfinished (no journal row, or in
 * doubt; in a repair also those with a verify mark); claims each, except (outside a repair)
 * those the journal has as done; *out (freed with ferry__picked_free) the items taken, in seq order. */
typedef struct ferry__listing_info {
  int state;       /* 0 listing, 1 ended, 2 failed */
  char *error;     /* failed: why (owned) */
  int64_t total;   /* the source's total, -1 unknown */
  int lister_live; /* its lister is a live worker */
  char *lister;    /* the lister's worker name (owned), or NULL */
  int64_t others;  /* live claims of other workers in the stage on items not done */
  int gone;        /* the listing is gone (deleted once it had ended by a worker that thought this one dead):
                      reported as ended */
} ferry__listing_info;
int ferry__listing_join(ferry__claims *c, const char *stage, int64_t *listing, int *lister, int64_t *next_seq,
                        ferry_error *err);
int ferry__listing_take_over(ferry__claims *c, int64_t listing, int64_t *next_seq, ferry_error *err);
int ferry__listing_add(ferry__claims *c, int64_t listing, int64_t first_seq, const char *items, int64_t *max_seq,
                       ferry_error *err);
int ferry__listing_end(ferry__claims *c, int64_t listing, int64_t total, const char *error, ferry_error *err);
/* The highest seq any worker has taken of `listing` (0 none), -1 on error (err). */
int64_t ferry__listing_taken_max(ferry__claims *c, int64_t listing, ferry_error *err);
typedef struct ferry__picked {
  int64_t seq;
  char *item;   /* its ferry_item_to_json text (owned) */
  char *status; /* the journal's status of the item ("done", ...; owned), NULL: no row */
} ferry__picked;
int ferry__listing_pick(ferry__claims *c, const char *stage, int64_t listing, int rescue, int64_t after, size_t n,
                        int repair, ferry__picked **out, size_t *nout, ferry_error *err);
void ferry__picked_free(ferry__picked *p, size_t n);
int ferry__listing_state(ferry__claims *c, const char *stage, int64_t listing, ferry__listing_info *info,
                         ferry_error *err);
void ferry__listing_info_clear(ferry__listing_info *info);
/* Notes (ferry_shared_get/_put): get sets *value (malloc'd, NULL: none); put inserts or replaces, and drops
 * the note when the listing is gone. 0, or an error. */
int ferry__note_get(ferry__claims *c, int64_t listing, const char *name, char **value, ferry_error *err);
int ferry__note_put(ferry__claims *c, int64_t listing, const char *name, const char *value, ferry_error *err);

/* ferry journal copy: every row of the journal `from` (opened read-only) into the journal `to` (opened for
 * writing: its run lock is taken), SQLite or PostgreSQL either side: items with all their columns, the id map,
 * and the runs with their ids and summaries. `to` must hold nothing (no item, mapping or run) unless
 * replace = 1: then what it holds is deleted first. Written in transactions of 1000 rows: a copy that fails
 * part way leaves a partial target (copy again with replace). counts (may be NULL): items, mappings, runs
 * copied. */
int ferry__journal_copy(const char *from, const char *to, int replace, int64_t counts[3], ferry_error *err);

#endif
