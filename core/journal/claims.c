/* Claims of several workers on one PostgreSQL journal (ferry run --worker; docs/journal.md, "Several
 * workers").
 *
 * A worker has a connection of its own for its claims (so that a claim never waits behind the journal's
 * group transaction), a row in ferry_workers (its heartbeat and lease) and one row in ferry_claims per item
 * it holds. Every time is the server's (now()), so the clocks of the machines running workers do not
 * matter. An item is claimed with one INSERT ... ON CONFLICT DO UPDATE ... WHERE the holder is this worker
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
  int named;      /* holds the name's lock: close() removes its claims and row */
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
  /* the tables, when the journal was made before workers existed: under a transaction lock, since several
   * workers may start at once */
  int rc = ferry__jpg_begin(pg, err);
  if (!rc)
    rc = ferry__jpg_exec(pg, "SELECT pg_advisory_xact_lock(hashtext('ferry claims ' || current_schema()))", 0, NULL,
                         NULL, err);
  if (!rc) rc = ferry__jpg_exec(pg, FERRY__JPG_WORKERS_TABLE, 0, NULL, NULL, err);
  if (!rc) rc = ferry__jpg_exec(pg, FERRY__JPG_CLAIMS_TABLE, 0, NULL, NULL, err);
  if (!rc) rc = ferry__jpg_commit(pg, err);
  else ferry__jpg_rollback(pg);
  if (rc) {
    fail(c, rc, "creating the tables ferry_workers and ferry_claims", err);
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
    rc = ferry__jpg_exec(pg,
                         "INSERT INTO ferry_workers(name, heartbeat, lease_s, who) VALUES ($1, now(), $2::float8, $3)"
                         " ON CONFLICT (name) DO UPDATE SET heartbeat = now(), lease_s = excluded.lease_s,"
                         " who = excluded.who",
                         3, p, NULL, err);
    free(who);
  }
  if (rc) {
    fail(c, rc, "registering the worker", err);
    ferry__claims_close(c);
    return NULL;
  }
  return c;
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

int ferry__claims_take(ferry__claims *c, const char *stage, const char *key, ferry_error *err) {
  return claim_stmt(c,
                    "INSERT INTO ferry_claims AS c (stage, item_key, worker, expires)"
                    " VALUES ($1, $2, $3, now() + make_interval(secs => $4::float8))"
                    " ON CONFLICT (stage, item_key) DO UPDATE SET worker = excluded.worker,"
                    " expires = excluded.expires WHERE c.worker = excluded.worker OR c.expires <= now()"
                    " RETURNING 1",
                    "claiming", stage, key, err);
}

int ferry__claims_holds(ferry__claims *c, const char *stage, const char *key, ferry_error *err) {
  return claim_stmt(c,
                    "UPDATE ferry_claims SET expires = now() + make_interval(secs => $4::float8)"
                    " WHERE stage = $1 AND item_key = $2 AND worker = $3 AND expires > now() RETURNING 1",
                    "checking the claim of", stage, key, err);
}

void ferry__claims_close(ferry__claims *c) {
  if (!c) return;
  if (c->pg && c->named) {
    const char *p[] = {c->worker};
    ferry_error e = FERRY_ERROR_INIT;
    ferry__jpg_exec(c->pg, "DELETE FROM ferry_claims WHERE worker = $1", 1, p, NULL, &e);
    ferry_error_clear(&e);
    ferry__jpg_exec(c->pg, "DELETE FROM ferry_workers WHERE name = $1", 1, p, NULL, &e);
    ferry_error_clear(&e);
  }
  ferry__jpg_close(c->pg);
  free(c->worker);
  free(c);
}
