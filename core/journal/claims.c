/* Claims of several workers on one PostgreSQL journal (ferry run --worker; docs/journal.md, "Several
 * workers").
 *
 * A worker has a connection of its own for its claims (so that a claim never waits behind the journal's
 * group transaction), a row in ferry_workers (its heartbeat and lease) and one row in ferry_claims per item
 * it holds. Every time is the server's (now()), so the clocks of the machines running workers do not
 * matter. An item is claimed as it is taken from a listing (ferry__listing_pick), with INSERT ... ON CONFLICT DO UPDATE ... WHERE the holder is this worker
 * or the claim has expired: the row lock PostgreSQL takes on the conflicting row makes that atomic, so at
 * most one live worker holds an item. The heartbeat renews the worker's row and all its claims at once.
 *
 * A worker name is held by a session advisory lock of the claims connection: two live processes cannot
 * be the same worker, while a worker restarted after kill -9 (its connection gone) takes its name, and its
 * claims, back at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "journal/jpg.h"
#include "journal/journal.h"

struct ferry__claims {
  ferry__jpg *pg;
  char *worker;
  char lease[32]; /* seconds, as text (a statement parameter) */
  char inc[32];   /* this process's incarnation of the name (ferry_workers.inc), as text */
  double lease_s;
  int named;      /* holds the name's lock: close() removes its claims and row */
  double renewed; /* ferry__now() when the last heartbeat that renewed every claim was sent (0: none yet) */
  int suspect;    /* two renewals were further apart than a lease allows: a claim may have been taken over */
  char seen_after[64]; /* ferry__claims_unseen: the server's time after this worker's row was committed */
};

const char *ferry__claims_worker(const ferry__claims *c) { return c ? c->worker : NULL; }

int ferry__claims_name_ok(const char *name) {
  if (!name || !*name || strlen(name) > 64) return 0;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
          *p == '_' || *p == '.'))
      return 0;
  return 1;
}

static int fail(ferry__claims *c, int rc, const char *what, ferry_error *err) {
  char *m = ferry_asprintf("journal %s: worker %s: %s: %s", ferry__jpg_endpoint(c->pg), c->worker, what,
                           err && err->message ? err->message : ferry_strerror(rc));
  ferry_error_set(err, rc < 0 ? rc : FERRY_EIO, "%s", m);
  free(m);
  return rc < 0 ? rc : FERRY_EIO;
}

ferry__claims *ferry__claims_open(const char *url, const char *worker, double lease_s, ferry_error *err) {
  if (!ferry__claims_name_ok(worker)) {
    ferry_error_set(err, FERRY_ECONFIG,
                    "worker name \"%s\": expected 1 to 64 letters, digits, '-', '_' or '.'", worker ? worker : "");
    return NULL;
  }
  int version = 0;
  ferry__jpg *pg = ferry__jpg_open_ex(url, 0, FERRY__JPG_LOCK_NONE, &version, err);
  if (!pg) return NULL;
  ferry__claims *c = ferry__xcalloc(1, sizeof *c);
  c->pg = pg;
  c->worker = ferry_strdup(worker);
  snprintf(c->lease, sizeof c->lease, "%.3f", lease_s);
  c->lease_s = lease_s;
  /* the tables, when the journal was made before workers existed: under a transaction lock, since several
   * workers may start at once */
  int rc = ferry__jpg_begin(pg, err);
  if (!rc)
    rc = ferry__jpg_exec(pg, "SELECT pg_advisory_xact_lock(hashtext('ferry claims ' || current_schema()))", 0, NULL,
                         NULL, err);
  if (!rc) rc = ferry__jpg_exec(pg, FERRY__JPG_WORKERS_TABLE, 0, NULL, NULL, err);
  if (!rc) rc = ferry__jpg_exec(pg, FERRY__JPG_CLAIMS_TABLE, 0, NULL, NULL, err);
  if (!rc) rc = ferry__jpg_exec(pg, "ALTER TABLE ferry_workers ADD COLUMN IF NOT EXISTS inc bigint", 0, NULL, NULL, err);
  if (!rc) rc = ferry__jpg_exec(pg, "CREATE SEQUENCE IF NOT EXISTS ferry_worker_inc", 0, NULL, NULL, err);
  if (!rc) rc = ferry__jpg_exec(pg, FERRY__JPG_LISTINGS_TABLE, 0, NULL, NULL, err);
  if (!rc) rc = ferry__jpg_exec(pg, FERRY__JPG_LISTING_MEMBERS_TABLE, 0, NULL, NULL, err);
  if (!rc) rc = ferry__jpg_exec(pg, FERRY__JPG_LISTED_TABLE, 0, NULL, NULL, err);
  if (!rc) rc = ferry__jpg_exec(pg, FERRY__JPG_NOTES_TABLE, 0, NULL, NULL, err);
  if (!rc) rc = ferry__jpg_commit(pg, err);
  else ferry__jpg_rollback(pg);
  if (rc) {
    fail(c, rc, "creating the workers' tables (ferry_workers, ferry_claims, ferry_listings, ferry_notes, ...)", err);
    ferry__claims_close(c);
    return NULL;
  }
  /* the name (taken again whenever the claims connection is made again) */
  ferry__jres r = {0};
  const char *p1[] = {worker};
  char *schema = NULL; /* the lock is per journal: two journals in one database may have the same names */
  ferry_error se = FERRY_ERROR_INIT;
  if (!ferry__jpg_exec(pg, "SELECT current_schema()", 0, NULL, &r, &se) && r.nrows == 1 && r.cells[0])
    schema = ferry_strdup(r.cells[0]);
  ferry_error_clear(&se);
  ferry__jres_clear(&r);
  char *key = ferry_asprintf("ferry worker %s %s", schema ? schema : "", worker);
  free(schema);
  char *what = ferry_asprintf("the worker name \"%s\"", worker);
  rc = ferry__jpg_name_lock(pg, key, what, err);
  free(key);
  free(what);
  int got = rc == 0;
  if (rc == 1) rc = 0;
  if (!rc && !got) {
    const char *who = NULL;
    ferry_error e = FERRY_ERROR_INIT;
    if (!ferry__jpg_exec(pg, "SELECT who FROM ferry_workers WHERE name = $1", 1, p1, &r, &e) && r.nrows == 1)
      who = r.cells[0];
    ferry_error_set(err, FERRY_EIO,
                    "journal %s: worker name \"%s\" is in use by another ferry run%s%s%s: give each worker its "
                    "own --worker name",
                    ferry__jpg_endpoint(pg), worker, who ? " (" : "", who ? who : "", who ? ")" : "");
    ferry_error_clear(&e);
    ferry__jres_clear(&r);
    ferry__claims_close(c);
    return NULL;
  }
  if (!rc) {
    c->named = 1;
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    char *who = ferry_asprintf("process %ld on %s", (long)getpid(), *host ? host : "?");
    const char *p[] = {worker, c->lease, who};
    /* a new incarnation: what the name's previous process had listed or taken is now a dead one's */
    rc = ferry__jpg_exec(pg,
                         "INSERT INTO ferry_workers(name, heartbeat, lease_s, who, inc)"
                         " VALUES ($1, now(), $2::float8, $3, nextval('ferry_worker_inc'))"
                         " ON CONFLICT (name) DO UPDATE SET heartbeat = now(), lease_s = excluded.lease_s,"
                         " who = excluded.who, inc = excluded.inc RETURNING inc",
                         3, p, &r, err);
    if (!rc && r.nrows == 1 && r.cells[0]) snprintf(c->inc, sizeof c->inc, "%s", r.cells[0]);
    ferry__jres_clear(&r);
    free(who);
    /* the claims of the name's previous process: it is gone (the name's lock was free), so what it held is
     * anyone's to take again now, not when its lease runs out */
    if (!rc) rc = ferry__jpg_exec(pg, "DELETE FROM ferry_claims WHERE worker = $1", 1, p1, NULL, err);
  }
  if (rc) {
    fail(c, rc, "registering the worker", err);
    ferry__claims_close(c);
    return NULL;
  }
  return c;
}

/* How much of a lease the fast claim check (ferry__claims_holds) leaves unused: the claims of a worker are
 * surely its own while less than lease - margin has passed since its last renewal was sent. */
static double renew_margin(const ferry__claims *c) {
  double m = c->lease_s / 4;
  return m < 0.5 ? 0.5 : m;
}

int ferry__claims_heartbeat(ferry__claims *c, int64_t run, int *live, ferry_error *err) {
  ferry__jres r = {0};
  const char *p[] = {c->worker, c->lease};
  if (run > 0) { /* the claims of items whose outcome this run has committed: nobody needs to wait for them */
    char rs[32];
    snprintf(rs, sizeof rs, "%lld", (long long)run);
    const char *pd[] = {c->worker, rs};
    int rc = ferry__jpg_exec(c->pg,
                             "DELETE FROM ferry_claims k USING items i WHERE k.worker = $1 AND i.stage = k.stage"
                             " AND i.key = k.item_key AND i.run = $2::bigint AND i.status <> 'intent'",
                             2, pd, NULL, err);
    if (rc) return fail(c, rc, "releasing the claims of finished items", err);
  }
  /* the SELECT sees the rows as they were before the updates of its CTEs: this worker counts itself */
  double sent = ferry__now();
  int rc = ferry__jpg_exec(
      c->pg,
      "WITH w AS (UPDATE ferry_workers SET heartbeat = now() WHERE name = $1 RETURNING 1),"
      " c AS (UPDATE ferry_claims SET expires = now() + make_interval(secs => $2::float8) WHERE worker = $1"
      " RETURNING 1)"
      " SELECT 1 + (SELECT count(*) FROM ferry_workers WHERE name <> $1"
      "   AND heartbeat + make_interval(secs => lease_s) > now()),"
      " (SELECT count(*) FROM w), (SELECT count(*) FROM c)",
      2, p, &r, err);
  if (rc) return fail(c, rc, "heartbeat", err);
  if (c->renewed && sent - c->renewed > c->lease_s - renew_margin(c)) c->suspect = 1;
  c->renewed = sent;
  if (live) *live = r.nrows == 1 && r.cells[0] ? atoi(r.cells[0]) : 1;
  if (r.nrows == 1 && r.cells[1] && !strcmp(r.cells[1], "0")) { /* the row was deleted by hand: made again */
    ferry__jres_clear(&r);
    rc = ferry__jpg_exec(c->pg,
                         "INSERT INTO ferry_workers(name, heartbeat, lease_s) VALUES ($1, now(), $2::float8)"
                         " ON CONFLICT (name) DO UPDATE SET heartbeat = now()",
                         2, p, NULL, err);
    if (rc) return fail(c, rc, "heartbeat", err);
  }
  ferry__jres_clear(&r);
  return 0;
}

int ferry__claims_unseen(ferry__claims *c, int *unseen, ferry_error *err) {
  ferry__jres r = {0};
  int rc = 0;
  if (!c->seen_after[0]) { /* the server's time once this worker's row is committed (now(): a new transaction) */
    rc = ferry__jpg_exec(c->pg, "SELECT now()::text", 0, NULL, &r, err);
    if (!rc && r.nrows == 1 && r.cells[0]) snprintf(c->seen_after, sizeof c->seen_after, "%s", r.cells[0]);
    ferry__jres_clear(&r);
    if (rc) return fail(c, rc, "reading the server's time", err);
  }
  const char *p[] = {c->worker, c->seen_after};
  /* a heartbeat whose transaction began after that time counted this worker (its snapshot holds the row) */
  rc = ferry__jpg_exec(c->pg,
                       "SELECT count(*) FROM ferry_workers WHERE name <> $1"
                       " AND heartbeat + make_interval(secs => lease_s) > now() AND heartbeat <= $2::timestamptz",
                       2, p, &r, err);
  *unseen = !rc && r.nrows == 1 && r.cells[0] ? atoi(r.cells[0]) : 0;
  ferry__jres_clear(&r);
  return rc ? fail(c, rc, "reading the other workers' heartbeats", err) : 0;
}

/* One statement about this worker's claim of (stage, key), parameters $1 stage, $2 key, $3 worker, $4 lease:
 * 1 when it returned a row, 0 when not, or a negative code with err (`what` names the attempt). */
static int claim_stmt(ferry__claims *c, const char *sql, const char *what, const char *stage, const char *key,
                      ferry_error *err) {
  ferry__jres r = {0};
  const char *p[] = {stage, key, c->worker, c->lease};
  int rc = ferry__jpg_exec(c->pg, sql, 4, p, &r, err);
  if (rc) {
    char *m = ferry_asprintf("%s item %s/%s", what, stage, key);
    rc = fail(c, rc, m, err);
    free(m);
    return rc;
  }
  int got = r.nrows == 1;
  ferry__jres_clear(&r);
  return got;
}

int ferry__claims_holds(ferry__claims *c, const char *stage, const char *key, int ask, ferry_error *err) {
  /* every claim was renewed (or taken) less than a lease ago by the server's clock, so none has expired and
   * none can have been taken over: no round trip. Only while the renewals came in time all along. Else the
   * server says: a claim that expired but that no other worker took (it would carry that worker's name:
   * another worker takes an item only by claiming it) is still this worker's, and renewed. */
  if (!ask && !c->suspect && c->renewed && ferry__now() - c->renewed < c->lease_s - renew_margin(c)) return 1;
  return claim_stmt(c,
                    "UPDATE ferry_claims SET expires = now() + make_interval(secs => $4::float8)"
                    " WHERE stage = $1 AND item_key = $2 AND worker = $3 RETURNING 1",
                    "checking the claim of", stage, key, err);
}

void ferry__claims_close(ferry__claims *c) {
  if (!c) return;
  if (c->pg && c->named) {
    const char *p[] = {c->worker};
    ferry_error e = FERRY_ERROR_INIT;
    /* the ended listings no other live worker works on (the last worker out leaves none behind; one still
     * being listed stays for a worker that comes back, or the next one to start the stage replaces it) */
    if (!ferry__jpg_begin(c->pg, &e) &&
        !ferry__jpg_exec(c->pg, "SELECT pg_advisory_xact_lock(hashtext('ferry claims ' || current_schema()))", 0,
                         NULL, NULL, &e) &&
        !ferry__jpg_exec(c->pg,
                         "DELETE FROM ferry_listings l WHERE state <> 'listing' AND NOT EXISTS (SELECT 1 FROM"
                         " ferry_listing_members m"
                         " JOIN ferry_workers w ON w.inc = m.inc WHERE m.listing = l.id AND w.name <> $1"
                         " AND w.heartbeat + make_interval(secs => w.lease_s) > now())",
                         1, p, NULL, &e))
      ferry__jpg_commit(c->pg, &e);
    else
      ferry__jpg_rollback(c->pg);
    ferry_error_clear(&e);
    ferry__jpg_exec(c->pg, "DELETE FROM ferry_claims WHERE worker = $1", 1, p, NULL, &e);
    ferry_error_clear(&e);
    ferry__jpg_exec(c->pg, "DELETE FROM ferry_workers WHERE name = $1", 1, p, NULL, &e);
    ferry_error_clear(&e);
  }
  ferry__jpg_close(c->pg);
  free(c->worker);
  free(c);
}

/* ---- listings: one worker lists a stage's source, every worker takes from it ------------------------------
 *
 * ferry_listings has one row per listing (a stage, its state, the incarnation listing it), ferry_listed the
 * listed items in order (seq) with the incarnation that took each (inc, NULL: not taken yet), and
 * ferry_listing_members the incarnations working on a listing. A listing lives as long as one of its members
 * does: a worker that starts a stage joins the newest listing of the stage that has a live member, or else
 * replaces the stage's listings with a new one, which it lists. Live: a heartbeat within its lease. */

#define LIVE_INC(col)                                                                                           \
  "EXISTS (SELECT 1 FROM ferry_workers w WHERE w.inc = " col                                                   \
  " AND w.heartbeat + make_interval(secs => w.lease_s) > now())"

const char *ferry__claims_inc(const ferry__claims *c) { return c ? c->inc : NULL; }

static int64_t cell_i64(const ferry__jres *r, size_t row, size_t col) {
  const char *v = r->nrows > row && r->ncols > col ? r->cells[row * r->ncols + col] : NULL;
  return v ? strtoll(v, NULL, 10) : 0;
}

int ferry__listing_join(ferry__claims *c, const char *stage, int64_t *listing, int *lister, int64_t *next_seq,
                        ferry_error *err) {
  ferry__jres r = {0};
  *listing = 0;
  *lister = 0;
  *next_seq = 1;
  int rc = ferry__jpg_begin(c->pg, err);
  if (!rc)
    rc = ferry__jpg_exec(c->pg, "SELECT pg_advisory_xact_lock(hashtext('ferry claims ' || current_schema()))", 0,
                         NULL, NULL, err);
  const char *p[] = {stage, c->inc};
  if (!rc)
    rc = ferry__jpg_exec(c->pg,
                         "SELECT l.id, l.state, " LIVE_INC("l.lister") ","
                         " (SELECT coalesce(max(seq), 0) + 1 FROM ferry_listed d WHERE d.listing = l.id)"
                         " FROM ferry_listings l WHERE l.stage = $1 AND EXISTS (SELECT 1 FROM ferry_listing_members m"
                         " WHERE m.listing = l.id AND m.inc <> $2::bigint AND " LIVE_INC("m.inc") ")"
                         " ORDER BY l.id DESC LIMIT 1",
                         2, p, &r, err);
  int joined = 0;
  if (!rc && r.nrows == 1) { /* join it; list it when it is still being listed by a worker that died */
    joined = 1;
    *listing = cell_i64(&r, 0, 0);
    *lister = !strcmp(r.cells[1], "listing") && r.cells[2] && r.cells[2][0] == 'f';
    *next_seq = cell_i64(&r, 0, 3);
  } else if (!rc) { /* none has a live member: a new one */
    const char *ps[] = {stage};
    rc = ferry__jpg_exec(c->pg, "DELETE FROM ferry_listings WHERE stage = $1", 1, ps, NULL, err);
    ferry__jres_clear(&r);
    if (!rc)
      rc = ferry__jpg_exec(c->pg,
                           "INSERT INTO ferry_listings(stage, state, lister) VALUES ($1, 'listing', $2::bigint)"
                           " RETURNING id",
                           2, p, &r, err);
    if (!rc) *listing = cell_i64(&r, 0, 0);
    *lister = 1;
  }
  ferry__jres_clear(&r);
  char id[32];
  snprintf(id, sizeof id, "%lld", (long long)*listing);
  const char *pm[] = {id, c->inc};
  if (!rc && *lister && joined)
    rc = ferry__jpg_exec(c->pg, "UPDATE ferry_listings SET lister = $2::bigint WHERE id = $1::bigint", 2, pm, NULL,
                         err);
  if (!rc)
    rc = ferry__jpg_exec(c->pg,
                         "INSERT INTO ferry_listing_members(listing, inc) VALUES ($1::bigint, $2::bigint)"
                         " ON CONFLICT DO NOTHING",
                         2, pm, NULL, err);
  if (!rc)
    rc = ferry__jpg_commit(c->pg, err);
  else
    ferry__jpg_rollback(c->pg);
  if (rc) {
    char *m = ferry_asprintf("joining the listing of stage \"%s\"", stage);
    rc = fail(c, rc, m, err);
    free(m);
  }
  return rc;
}

int ferry__listing_take_over(ferry__claims *c, int64_t listing, int64_t *next_seq, ferry_error *err) {
  char id[32];
  snprintf(id, sizeof id, "%lld", (long long)listing);
  const char *p[] = {id, c->inc};
  ferry__jres r = {0};
  int rc = ferry__jpg_exec(c->pg,
                           "UPDATE ferry_listings l SET lister = $2::bigint WHERE id = $1::bigint AND state = 'listing'"
                           " AND (lister IS NULL OR NOT " LIVE_INC("l.lister") ")"
                           " RETURNING (SELECT coalesce(max(seq), 0) + 1 FROM ferry_listed d WHERE d.listing = l.id)",
                           2, p, &r, err);
  if (rc) return fail(c, rc, "taking over a listing", err);
  int got = r.nrows == 1;
  if (got) *next_seq = cell_i64(&r, 0, 0);
  ferry__jres_clear(&r);
  return got;
}

int ferry__listing_add(ferry__claims *c, int64_t listing, int64_t first_seq, const char *items, int64_t *max_seq,
                       ferry_error *err) {
  char id[32], seq[32];
  snprintf(id, sizeof id, "%lld", (long long)listing);
  snprintf(seq, sizeof seq, "%lld", (long long)first_seq);
  const char *p[] = {id, seq, items, c->inc};
  /* only while this incarnation lists it (another may have taken over, thinking it dead); an item listed
   * before (a listing taken over starts its source again) keeps its place */
  ferry__jres r = {0};
  int rc = ferry__jpg_exec(c->pg,
                           "WITH ok AS (SELECT 1 FROM ferry_listings WHERE id = $1::bigint AND lister = $4::bigint"
                           "   AND state = 'listing'),"
                           " ins AS (INSERT INTO ferry_listed(listing, seq, item_key, item)"
                           "   SELECT $1::bigint, $2::bigint + e.n - 1, e.v->>'key', e.v::text"
                           "   FROM json_array_elements($3::json) WITH ORDINALITY AS e(v, n)"
                           "   WHERE EXISTS (SELECT 1 FROM ok) ON CONFLICT DO NOTHING RETURNING seq)"
                           " SELECT (SELECT count(*) FROM ok), (SELECT max(seq) FROM ins)",
                           4, p, &r, err);
  int still = !rc && r.nrows == 1 && r.cells[0] && strcmp(r.cells[0], "0");
  if (still && r.cells[1]) *max_seq = cell_i64(&r, 0, 1);
  ferry__jres_clear(&r);
  return rc ? fail(c, rc, "listing items", err) : still;
}

int64_t ferry__listing_taken_max(ferry__claims *c, int64_t listing, ferry_error *err) {
  char id[32];
  snprintf(id, sizeof id, "%lld", (long long)listing);
  const char *p[] = {id};
  ferry__jres r = {0};
  int rc = ferry__jpg_exec(c->pg,
                           "SELECT coalesce(max(seq), 0) FROM ferry_listed WHERE listing = $1::bigint"
                           " AND inc IS NOT NULL",
                           1, p, &r, err);
  int64_t v = rc ? -1 : cell_i64(&r, 0, 0);
  ferry__jres_clear(&r);
  if (rc) fail(c, rc, "reading a listing", err);
  return v;
}

/* ---- notes: small values the workers of a listing share (ferry_shared_get/_put) ---------------------------
 * Kept under the listing, so that they go with it (ON DELETE CASCADE): what one start of a stage learned is
 * never taken for true by the next. A note put under a listing that is gone already is dropped. */
int ferry__note_get(ferry__claims *c, int64_t listing, const char *name, char **value, ferry_error *err) {
  char id[32];
  snprintf(id, sizeof id, "%lld", (long long)listing);
  const char *p[] = {id, name};
  ferry__jres r = {0};
  *value = NULL;
  int rc = ferry__jpg_exec(c->pg, "SELECT value FROM ferry_notes WHERE listing = $1::bigint AND name = $2", 2, p,
                           &r, err);
  if (!rc && r.nrows == 1 && r.cells[0]) *value = ferry_strdup(r.cells[0]);
  ferry__jres_clear(&r);
  return rc ? fail(c, rc, "reading a shared note", err) : 0;
}

int ferry__note_put(ferry__claims *c, int64_t listing, const char *name, const char *value, ferry_error *err) {
  char id[32];
  snprintf(id, sizeof id, "%lld", (long long)listing);
  const char *p[] = {id, name, value};
  int rc = ferry__jpg_exec(c->pg,
                           "INSERT INTO ferry_notes(listing, name, value) SELECT $1::bigint, $2, $3"
                           " WHERE EXISTS (SELECT 1 FROM ferry_listings WHERE id = $1::bigint)"
                           " ON CONFLICT (listing, name) DO UPDATE SET value = excluded.value",
                           3, p, NULL, err);
  return rc ? fail(c, rc, "writing a shared note", err) : 0;
}

int ferry__listing_end(ferry__claims *c, int64_t listing, int64_t total, const char *error, ferry_error *err) {
  char id[32], tot[32];
  snprintf(id, sizeof id, "%lld", (long long)listing);
  snprintf(tot, sizeof tot, "%lld", (long long)total);
  const char *p[] = {id, c->inc, total >= 0 ? tot : NULL, error, error ? "failed" : "ended"};
  int rc = ferry__jpg_exec(c->pg,
                           "UPDATE ferry_listings SET state = $5, total = coalesce($3::bigint, total), error = $4"
                           " WHERE id = $1::bigint AND lister = $2::bigint AND state = 'listing'",
                           5, p, NULL, err);
  return rc ? fail(c, rc, "ending a listing", err) : 0;
}

int ferry__listing_pick(ferry__claims *c, const char *stage, int64_t listing, int rescue, int64_t after, size_t n,
                        int repair, ferry__picked **out, size_t *nout, ferry_error *err) {
  *out = NULL;
  *nout = 0;
  char id[32], aft[32], lim[32];
  snprintf(id, sizeof id, "%lld", (long long)listing);
  snprintf(aft, sizeof aft, "%lld", (long long)after);
  snprintf(lim, sizeof lim, "%zu", n);
  /* $1 listing, $2 limit, $3 inc, $4 stage, $5 worker, $6 lease, $7 repair, $8 after (fresh picks).
   * Fresh: items nobody took, after the last this worker took. Rescue: items taken by an incarnation that is
   * no longer live and not claimed by another live worker. The items the journal has as done (outside a
   * repair) are taken but not claimed: the taker counts them as done elsewhere. */
  const char *fresh = "SELECT seq FROM ferry_listed WHERE listing = $1::bigint AND inc IS NULL AND seq > $8::bigint"
                      " ORDER BY seq LIMIT $2::bigint FOR UPDATE SKIP LOCKED";
  const char *dead = "SELECT l.seq FROM ferry_listed l WHERE l.listing = $1::bigint AND l.inc IS NOT NULL"
                     " AND l.inc <> $3::bigint AND NOT " LIVE_INC("l.inc") " AND NOT EXISTS (SELECT 1 FROM"
                     " ferry_claims k WHERE k.stage = $4 AND k.item_key = l.item_key AND k.worker <> $5"
                     " AND k.expires > now()) AND NOT EXISTS (SELECT 1 FROM items i WHERE i.stage = $4"
                     " AND i.key = l.item_key AND i.status <> 'intent' AND NOT (i.verify IS NOT NULL AND $7::bool))"
                     " ORDER BY l.seq LIMIT $2::bigint FOR UPDATE OF l SKIP LOCKED";
  char *sql = ferry_asprintf(
      "WITH pick AS (%s),"
      " took AS (UPDATE ferry_listed l SET inc = $3::bigint FROM pick WHERE l.listing = $1::bigint"
      "   AND l.seq = pick.seq RETURNING l.seq, l.item_key, l.item),"
      " st AS (SELECT t.seq, t.item_key, t.item, i.status FROM took t LEFT JOIN items i ON i.stage = $4"
      "   AND i.key = t.item_key),"
      " cl AS (INSERT INTO ferry_claims AS k (stage, item_key, worker, expires)"
      "   SELECT $4, item_key, $5, now() + make_interval(secs => $6::float8) FROM st"
      "   WHERE $7::bool OR status IS NULL OR status NOT IN ('done', 'skipped')"
      "   ON CONFLICT (stage, item_key) DO UPDATE SET worker = excluded.worker, expires = excluded.expires"
      "   WHERE k.worker = excluded.worker OR k.expires <= now()"
      "   RETURNING k.item_key)"
      /* an item whose claim another worker renewed meanwhile (its holder came back) is not this worker's */
      " SELECT seq, item, status FROM st WHERE item_key IN (SELECT item_key FROM cl)"
      "   OR NOT ($7::bool OR status IS NULL OR status NOT IN ('done', 'skipped')) ORDER BY seq",
      rescue ? dead : fresh);
  const char *p[] = {id, lim, c->inc, stage, c->worker, c->lease, repair ? "true" : "false", aft};
  ferry__jres r = {0};
  int rc = ferry__jpg_exec(c->pg, sql, rescue ? 7 : 8, p, &r, err);
  free(sql);
  if (rc) {
    char *m = ferry_asprintf("taking listed items of stage \"%s\"", stage);
    rc = fail(c, rc, m, err);
    free(m);
    return rc;
  }
  if (r.nrows) {
    *out = ferry__xcalloc(r.nrows, sizeof **out);
    for (size_t i = 0; i < r.nrows; i++) {
      (*out)[i].seq = cell_i64(&r, i, 0);
      (*out)[i].item = r.cells[i * r.ncols + 1];
      (*out)[i].status = r.cells[i * r.ncols + 2];
      r.cells[i * r.ncols + 1] = r.cells[i * r.ncols + 2] = NULL;
    }
    *nout = r.nrows;
  }
  ferry__jres_clear(&r);
  return 0;
}

void ferry__picked_free(ferry__picked *p, size_t n) {
  for (size_t i = 0; p && i < n; i++) {
    free(p[i].item);
    free(p[i].status);
  }
  free(p);
}

int ferry__listing_state(ferry__claims *c, const char *stage, int64_t listing, ferry__listing_info *info,
                         ferry_error *err) {
  char id[32];
  snprintf(id, sizeof id, "%lld", (long long)listing);
  const char *p[] = {id, stage, c->worker};
  ferry__jres r = {0};
  memset(info, 0, sizeof *info);
  int rc = ferry__jpg_exec(c->pg,
                           "SELECT l.state, l.error, l.total, l.lister IS NOT NULL AND " LIVE_INC("l.lister") ","
                           " (SELECT w.name FROM ferry_workers w WHERE w.inc = l.lister),"
                           " (SELECT count(*) FROM ferry_claims k WHERE k.stage = $2 AND k.worker <> $3"
                           "   AND k.expires > now() AND NOT EXISTS (SELECT 1 FROM items i WHERE i.stage = k.stage"
                           "   AND i.key = k.item_key AND i.status IN ('done', 'skipped')))"
                           " FROM ferry_listings l WHERE l.id = $1::bigint",
                           3, p, &r, err);
  if (rc) return fail(c, rc, "reading a listing", err);
  if (r.nrows != 1) { /* deleted by the last worker out, which thought this one dead: it had ended */
    ferry__jres_clear(&r);
    info->state = 1;
    info->total = -1;
    info->gone = 1;
    return 0;
  }
  info->state = !strcmp(r.cells[0], "ended") ? 1 : !strcmp(r.cells[0], "failed") ? 2 : 0;
  info->error = r.cells[1] ? ferry_strdup(r.cells[1]) : NULL;
  info->total = r.cells[2] ? cell_i64(&r, 0, 2) : -1;
  info->lister_live = r.cells[3] && r.cells[3][0] == 't';
  info->lister = r.cells[4] ? ferry_strdup(r.cells[4]) : NULL;
  info->others = cell_i64(&r, 0, 5);
  ferry__jres_clear(&r);
  return 0;
}

void ferry__listing_info_clear(ferry__listing_info *info) {
  free(info->error);
  free(info->lister);
  memset(info, 0, sizeof *info);
}
