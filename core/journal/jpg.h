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
