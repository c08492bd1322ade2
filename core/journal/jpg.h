/* ferry core, layer "journal": the PostgreSQL connection under a journal (journal_pg.c). Internal to
 * core/journal: journal.c runs its statements through it for a "postgresql://" journal.
 *
 * Every call is synchronous: it drives the SDK's SQL service on the handle's private uv loop until done.
 * Lost connections are retried (with backoff, said on stderr); a transaction's writes are replayed into a
 * new transaction when the old one was lost or aborted (docs/journal.md, "PostgreSQL").
 */
#ifndef FERRY_CORE_JPG_H
#define FERRY_CORE_JPG_H

#include "base/base.h"

#define FERRY__JPG_SCHEMA 2

/* The tables of several workers (claims.c), in a new journal's schema and created by a worker when missing. */
#define FERRY__JPG_WORKERS_TABLE                                                                                \
  "CREATE TABLE IF NOT EXISTS ferry_workers("                                                                  \
  "  name text COLLATE \"C\" PRIMARY KEY,"                                                                      \
  "  heartbeat timestamptz NOT NULL,"                                                                          \
  "  lease_s double precision NOT NULL,"                                                                       \
  "  who text)"
#define FERRY__JPG_CLAIMS_TABLE                                                                                 \
  "CREATE TABLE IF NOT EXISTS ferry_claims("                                                                   \
  "  stage text COLLATE \"C\" NOT NULL,"                                                                        \
  "  item_key text COLLATE \"C\" NOT NULL,"                                                                     \
  "  worker text COLLATE \"C\" NOT NULL,"                                                                       \
  "  expires timestamptz NOT NULL,"                                                                            \
  "  PRIMARY KEY (stage, item_key))"

typedef struct ferry__jpg ferry__jpg;
/* A whole result, as text: cells[row * ncols + col], NULL for SQL NULL; all owned (ferry__jres_clear). */
typedef struct ferry__jres {
  size_t ncols, nrows;
  char **cells;
  uint64_t affected; /* rows written by the statement */
} ferry__jres;
void ferry__jres_clear(ferry__jres *r);

/* 1 when `path` is a PostgreSQL URL (postgresql:// or postgres://). */
int ferry__jpg_is_url(const char *path);
/* Connects, takes the run lock (writable), checks or creates the schema; *version = its version. NULL with
 * err set. */
ferry__jpg *ferry__jpg_open(const char *url, int readonly, int *version, ferry_error *err);
/* The same with the run lock chosen: none, exclusive (a run, a verify) or shared (workers: ferry run
 * --worker; several share the journal, a plain run is refused while one works, and the other way round). A
 * connection without the lock may still write (the claims of workers, core/journal/claims.c). */
enum { FERRY__JPG_LOCK_NONE = 0, FERRY__JPG_LOCK_EXCLUSIVE = 1, FERRY__JPG_LOCK_SHARED = 2 };
ferry__jpg *ferry__jpg_open_ex(const char *url, int readonly, int lock, int *version, ferry_error *err);
/* Takes the session advisory lock on hashtext(key) (a worker's name, claims.c): 0 taken, 1 held by another
 * session, or an error code with err. Once taken it is taken again after every reconnection (the server
 * forgets a lost session's locks); when another session holds it by then, every later call fails with
 * FERRY_EIO naming `what`. key and what are copied. */
int ferry__jpg_name_lock(ferry__jpg *p, const char *key, const char *what, ferry_error *err);
void ferry__jpg_close(ferry__jpg *p);
/* The URL without its password (borrowed, valid until close). */
const char *ferry__jpg_endpoint(const ferry__jpg *p);
/* One statement ($1.. parameters, text or NULL), in the open transaction if any. res may be NULL. */
int ferry__jpg_exec(ferry__jpg *p, const char *sql, size_t n, const char *const *params, ferry__jres *res,
                    ferry_error *err);
int ferry__jpg_begin(ferry__jpg *p, ferry_error *err);
int ferry__jpg_commit(ferry__jpg *p, ferry_error *err);
void ferry__jpg_rollback(ferry__jpg *p);
int ferry__jpg_in_tx(const ferry__jpg *p);

#endif
