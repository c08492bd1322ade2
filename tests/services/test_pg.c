/* Tests of the PostgreSQL service (ferry/pg.h) against a real private cluster (pgfixture.sh).
 *
 *   test_pg <case> <statefile>    the state file holds the cluster dir and a conninfo (line 2)
 *
 * The loop is driven until the expected callbacks ran (with a deadline); no sleeps. Each case ends by
 * freeing its connections and running the loop until every handle is closed: uv_loop_close() must succeed.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "load/load.h"
#include "ferry/pg.h"
#include "ftest.h"
#include "ftest_net.h"

static uv_loop_t loop;
static struct ferry_instance ins;
static char conninfo[512];
static int in_queue; /* set around the queueing calls: a callback must never see it */

/* ---- helpers ------------------------------------------------------------------------------------------- */

typedef struct qres {
  int called;
  int status;
  int order;            /* completion rank */
  char *v0;             /* first row, first column (or "<null>") */
  int ntuples;
  char *cmd_tuples;
  char *msg, *detail;
} qres;

static int completions;

static void qres_clear(qres *r) {
  free(r->v0);
  free(r->cmd_tuples);
  free(r->msg);
  free(r->detail);
  memset(r, 0, sizeof *r);
}

static void qcb(void *arg, int status, PGresult *res, const ferry_error *err) {
  qres *r = arg;
  FT_ASSERT(!in_queue, "callback ran inside the queueing call");
  r->called++;
  r->status = status;
  r->order = completions++;
  if (status) {
    FT_ASSERT(res == NULL && err && err->code == status, "error without result, code in err");
    r->msg = ferry_strdup(err->message);
    r->detail = ferry_strdup(err->detail);
    return;
  }
  FT_ASSERT(res != NULL, "success with a result");
  r->ntuples = PQntuples(res);
  if (r->ntuples > 0 && PQnfields(res) > 0)
    r->v0 = ferry_strdup(PQgetisnull(res, 0, 0) ? "<null>" : PQgetvalue(res, 0, 0));
  r->cmd_tuples = ferry_strdup(PQcmdTuples(res));
}

static void on_guard(uv_timer_t *t) { (void)t; }

static int run_until(const int *counter, int want, double secs) {
  uv_timer_t guard;
  uv_timer_init(&loop, &guard);
  uv_timer_start(&guard, on_guard, (uint64_t)(secs * 1000), 0);
  double end = ferry__now() + secs;
  while (*counter < want && ferry__now() < end) uv_run(&loop, UV_RUN_ONCE);
  uv_close((uv_handle_t *)&guard, NULL);
  uv_run(&loop, UV_RUN_NOWAIT);
  return *counter >= want;
}

static ferry_pg *connect_pg(const char *ci) {
  ferry_error err = FERRY_ERROR_INIT;
  ferry_pg *pg = ferry_pg_new(&ins, ci, &err);
  FT_ASSERT(pg, "ferry_pg_new: %s", err.message);
  return pg;
}

static void close_pg(ferry_pg *pg) {
  ferry_pg_free(pg);
  uv_run(&loop, UV_RUN_DEFAULT);
}

/* Runs one query to completion; fails the test unless it ends with `want` status. */
static void q(ferry_pg *pg, const char *sql, int n, const char *const *params, qres *r, int want) {
  memset(r, 0, sizeof *r);
  in_queue = 1;
  int rc = ferry_pg_query(pg, sql, n, params, qcb, r);
  in_queue = 0;
  FT_ASSERT(rc == 0, "queue %s", sql);
  FT_ASSERT(run_until(&r->called, 1, 60), "query done: %s", sql);
  FT_ASSERT(r->status == want, "%s -> %d (%s | %s), want %d", sql, r->status, r->msg, r->detail, want);
}

static void exec_ok(ferry_pg *pg, const char *sql) {
  qres r;
  q(pg, sql, 0, NULL, &r, 0);
  qres_clear(&r);
}

/* ---- cases --------------------------------------------------------------------------------------------- */

static void t_query(void) {
  ferry_pg *pg = connect_pg(conninfo);
  qres r;
  const char *p[] = {"41", "hello 'world'", NULL};
  q(pg, "SELECT $1::int + 1, $2::text, $3::text IS NULL", 3, p, &r, 0);
  FT_ASSERT(r.ntuples == 1 && !strcmp(r.v0, "42"), "value %s", r.v0);
  qres_clear(&r);
  exec_ok(pg, "DROP TABLE IF EXISTS svc_query; CREATE TABLE svc_query (id int PRIMARY KEY, name text)");
  for (int i = 0; i < 10; i++) {
    char id[16], name[32];
    snprintf(id, sizeof id, "%d", i);
    snprintf(name, sizeof name, "name-%d", i);
    const char *ip[] = {id, i == 3 ? NULL : name};
    q(pg, "INSERT INTO svc_query (id, name) VALUES ($1, $2)", 2, ip, &r, 0);
    FT_ASSERT(!strcmp(r.cmd_tuples, "1"), "one row inserted");
    qres_clear(&r);
  }
  q(pg, "SELECT count(*) FROM svc_query WHERE name IS NOT NULL", 0, NULL, &r, 0);
  FT_ASSERT(!strcmp(r.v0, "9"), "9 non-null names, got %s", r.v0);
  qres_clear(&r);
  const char *one[] = {"3"};
  q(pg, "SELECT name FROM svc_query WHERE id = $1", 1, one, &r, 0);
  FT_ASSERT(!strcmp(r.v0, "<null>"), "NULL parameter stored as NULL: %s", r.v0);
  qres_clear(&r);
  /* several statements without parameters: the last result */
  q(pg, "SELECT 1; SELECT 2", 0, NULL, &r, 0);
  FT_ASSERT(!strcmp(r.v0, "2"), "last result: %s", r.v0);
  qres_clear(&r);
  exec_ok(pg, "DROP TABLE svc_query");
  FT_ASSERT(ferry_pg_pending(pg) == 0, "nothing pending");
  FT_ASSERT(ferry_pg_query(pg, NULL, 0, NULL, qcb, &r) == FERRY_EINVAL, "NULL sql refused");
  FT_ASSERT(ferry_pg_query(pg, "SELECT 1", 1, NULL, qcb, &r) == FERRY_EINVAL, "params missing refused");
  FT_ASSERT(ferry_pg_query(pg, "SELECT 1", 0, NULL, NULL, &r) == FERRY_EINVAL, "NULL callback refused");
  close_pg(pg);
}

static void t_errors(void) {
  ferry_pg *pg = connect_pg(conninfo);
  qres r;
  q(pg, "SELEC 1", 0, NULL, &r, FERRY_EINVAL);
  FT_ASSERT(strstr(r.detail, "42601") && strstr(r.detail, "syntax error"), "detail: %s", r.detail);
  FT_ASSERT(strstr(r.msg, "syntax error") && strstr(r.msg, "SQLSTATE 42601"), "message: %s", r.msg);
  printf("syntax: %s | %s\n", r.msg, r.detail);
  qres_clear(&r);
  exec_ok(pg, "DROP TABLE IF EXISTS svc_err; CREATE TABLE svc_err (k text PRIMARY KEY)");
  const char *p[] = {"Val_Secret_123"};
  q(pg, "INSERT INTO svc_err (k) VALUES ($1)", 1, p, &r, 0);
  qres_clear(&r);
  q(pg, "INSERT INTO svc_err (k) VALUES ($1)", 1, p, &r, FERRY_ECONFLICT);
  FT_ASSERT(strstr(r.msg, "INSERT INTO svc_err") && strstr(r.msg, "unique violation"), "message: %s", r.msg);
  FT_ASSERT(!strstr(r.msg, "Val_Secret_123"), "no parameter value in the message: %s", r.msg);
  FT_ASSERT(strstr(r.detail, "23505"), "SQLSTATE in detail: %s", r.detail);
  printf("unique: %s | %s\n", r.msg, r.detail);
  qres_clear(&r);
  q(pg, "SELECT * FROM svc_no_such_table", 0, NULL, &r, FERRY_EINVAL);
  FT_ASSERT(strstr(r.detail, "42P01"), "undefined table: %s", r.detail);
  qres_clear(&r);
  const char *bad[] = {"not-a-number"};
  q(pg, "SELECT $1::int", 1, bad, &r, FERRY_EINVAL);
  FT_ASSERT(!strstr(r.msg, "not-a-number"), "no parameter value in the message: %s", r.msg);
  qres_clear(&r);
  /* the connection is still good after errors */
  q(pg, "SELECT 7", 0, NULL, &r, 0);
  FT_ASSERT(!strcmp(r.v0, "7"), "after errors");
  qres_clear(&r);
  exec_ok(pg, "DROP TABLE svc_err");
  close_pg(pg);

  /* connection refused -> ETRANSIENT for the queued operations */
  int fd;
  int port = ft_refused_port(&fd);
  char ci[256];
  snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=ferry dbname=postgres", port);
  pg = connect_pg(ci);
  q(pg, "SELECT 1", 0, NULL, &r, FERRY_ETRANSIENT);
  FT_ASSERT(strstr(r.msg, "cannot connect") && strstr(r.detail, "refused"), "refused: %s | %s", r.msg, r.detail);
  printf("refused: %s | %s\n", r.msg, r.detail);
  qres_clear(&r);
  close_pg(pg);
  close(fd);

  /* host name resolution (asynchronous) then connect; an unknown host is transient */
  const char *port_at = strstr(conninfo, "port=");
  FT_ASSERT(port_at, "conninfo has a port");
  int cport = atoi(port_at + 5);
  snprintf(ci, sizeof ci, "host=localhost port=%d user=ferry dbname=postgres", cport);
  pg = connect_pg(ci);
  q(pg, "SELECT 'via localhost'", 0, NULL, &r, 0);
  FT_ASSERT(!strcmp(r.v0, "via localhost"), "resolved host");
  qres_clear(&r);
  close_pg(pg);
  snprintf(ci, sizeof ci, "host=no-such-host.invalid port=%d user=ferry dbname=postgres", cport);
  pg = connect_pg(ci);
  q(pg, "SELECT 1", 0, NULL, &r, FERRY_ETRANSIENT);
  printf("resolve: %s | %s\n", r.msg, r.detail);
  qres_clear(&r);
  close_pg(pg);

  /* refusals that a retry cannot cure */
  snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=svc_nobody dbname=postgres", cport);
  pg = connect_pg(ci);
  q(pg, "SELECT 1", 0, NULL, &r, FERRY_EPERM);
  printf("no role: %s | %s\n", r.msg, r.detail);
  qres_clear(&r);
  close_pg(pg);
  snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=ferry dbname=svc_no_such_db", cport);
  pg = connect_pg(ci);
  q(pg, "SELECT 1", 0, NULL, &r, FERRY_ECONFIG);
  printf("no database: %s | %s\n", r.msg, r.detail);
  qres_clear(&r);
  close_pg(pg);

  /* a server that accepts the TCP connection but never answers: the connect timeout */
  int lfd;
  port = ft_refused_port(&lfd);
  FT_ASSERT(listen(lfd, 8) == 0, "listen");
  snprintf(ci, sizeof ci, "host=127.0.0.1 port=%d user=ferry dbname=postgres connect_timeout=1", port);
  pg = connect_pg(ci);
  double t0 = ferry__now();
  q(pg, "SELECT 1", 0, NULL, &r, FERRY_ETRANSIENT);
  double took = ferry__now() - t0;
  FT_ASSERT(took >= 0.9, "timed out after %.3f s, before connect_timeout=1", took);
  FT_ASSERT(strstr(r.detail, "connect_timeout"), "timeout detail: %s", r.detail);
  printf("timeout: %s | %s (%.2f s)\n", r.msg, r.detail, took);
  qres_clear(&r);
  close_pg(pg);
  close(lfd);

  ferry_error err = FERRY_ERROR_INIT;
  FT_ASSERT(ferry_pg_new(&ins, "host=x password=abc def", &err) == NULL, "bad conninfo refused");
  FT_ASSERT(err.code == FERRY_ECONFIG && !strstr(err.detail ? err.detail : "", "def"),
            "bad conninfo: %s | %s", err.message, err.detail);
  ferry_error_clear(&err);
}

/* many queued queries complete in order, once each, even with a failure among them */
static void t_order(void) {
  ferry_pg *pg = connect_pg(conninfo);
  enum { N = 500 };
  qres *rs = ferry__xcalloc(N, sizeof *rs);
  completions = 0;
  for (int i = 0; i < N; i++) {
    char v[16];
    snprintf(v, sizeof v, "%d", i);
    const char *p[] = {v};
    in_queue = 1;
    int rc = i == 250 ? ferry_pg_query(pg, "SELECT 1/0", 0, NULL, qcb, &rs[i])
                      : ferry_pg_query(pg, "SELECT $1::int * 2", 1, p, qcb, &rs[i]);
    in_queue = 0;
    FT_ASSERT(rc == 0, "queue");
  }
  FT_ASSERT(ferry_pg_pending(pg) == N, "pending %zu", ferry_pg_pending(pg));
  double t0 = ferry__now();
  FT_ASSERT(run_until(&completions, N, 60), "all done (%d)", completions);
  double took = ferry__now() - t0;
  for (int i = 0; i < N; i++) {
    FT_ASSERT(rs[i].called == 1 && rs[i].order == i, "query %d: called %d, rank %d", i, rs[i].called, rs[i].order);
    if (i == 250) {
      FT_ASSERT(rs[i].status == FERRY_EINVAL && strstr(rs[i].detail, "22012"), "division by zero: %s",
                rs[i].detail);
    } else {
      char want[16];
      snprintf(want, sizeof want, "%d", i * 2);
      FT_ASSERT(rs[i].status == 0 && !strcmp(rs[i].v0, want), "query %d -> %s", i, rs[i].v0);
    }
    qres_clear(&rs[i]);
  }
  printf("order: %d queued queries in %.3f s (%.0f queries/s, one connection)\n", N, took, N / took);
  free(rs);
  close_pg(pg);
}

/* COPY OUT: 100k rows, count and checksum against the server's own md5 of the same text */
typedef struct copyctx {
  size_t bytes, lines, chunks;
  long long sum;
  char partial[64];
  size_t plen;
  EVP_MD_CTX *md;
  size_t stop_after;
  qres r;
} copyctx;

static int chunk_cb(void *arg, const char *data, size_t len) {
  copyctx *c = arg;
  FT_ASSERT(!in_queue, "chunk inside the queueing call");
  FT_ASSERT(!c->r.called, "chunk after done");
  c->chunks++;
  c->bytes += len;
  EVP_DigestUpdate(c->md, data, len);
  for (size_t i = 0; i < len; i++) {
    if (data[i] == '\n') {
      c->lines++;
      c->partial[c->plen] = '\0';
      c->sum += atoll(c->partial);
      c->plen = 0;
    } else if (c->plen < sizeof c->partial - 1) {
      c->partial[c->plen++] = data[i];
    }
  }
  return c->stop_after && c->chunks >= c->stop_after;
}

static void copy_done(void *arg, int status, PGresult *res, const ferry_error *err) {
  copyctx *c = arg;
  qcb(&c->r, status, res, err);
}

static void md5_hex(EVP_MD_CTX *md, char out[33]) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned n = 0;
  EVP_DigestFinal_ex(md, d, &n);
  for (unsigned i = 0; i < n && i < 16; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

#define COPY_ROWS "SELECT i, md5(i::text) AS h FROM generate_series(1, 100000) i"

static void copy_reset(copyctx *c) {
  if (c->md) EVP_MD_CTX_free(c->md);
  qres_clear(&c->r);
  memset(c, 0, sizeof *c);
  c->md = EVP_MD_CTX_new();
  EVP_DigestInit_ex(c->md, EVP_md5(), NULL);
}

static void t_copy_out(void) {
  ferry_pg *pg = connect_pg(conninfo);
  copyctx c = {0};
  copy_reset(&c);
  double t0 = ferry__now();
  in_queue = 1;
  FT_ASSERT(ferry_pg_copy_out(pg, "COPY (" COPY_ROWS " ORDER BY i) TO STDOUT", chunk_cb, copy_done, &c) == 0,
            "queue copy");
  in_queue = 0;
  FT_ASSERT(run_until(&c.r.called, 1, 120), "copy done");
  double took = ferry__now() - t0;
  FT_ASSERT(c.r.status == 0, "copy out: %s | %s", c.r.msg, c.r.detail);
  FT_ASSERT(!strcmp(c.r.cmd_tuples, "100000"), "COPY 100000, got %s", c.r.cmd_tuples);
  FT_ASSERT(c.lines == 100000, "%zu lines", c.lines);
  FT_ASSERT(c.sum == 5000050000LL, "sum of ids %lld", c.sum);
  char mine[33] = "";
  md5_hex(c.md, mine);
  qres r;
  q(pg, "SELECT md5(string_agg(i::text || E'\\t' || h || E'\\n', '' ORDER BY i)) FROM (" COPY_ROWS ") s", 0, NULL,
    &r, 0);
  FT_ASSERT(!strcmp(r.v0, mine), "checksum: server %s, received %s", r.v0, mine);
  printf("copy out: 100000 rows, %zu bytes in %zu chunks, %.3f s, md5 %s\n", c.bytes, c.chunks, took, mine);
  qres_clear(&r);

  /* the chunk callback stops the copy: ECANCELED, and the connection is still usable */
  copy_reset(&c);
  c.stop_after = 3;
  in_queue = 1;
  FT_ASSERT(ferry_pg_copy_out(pg, "COPY (" COPY_ROWS ") TO STDOUT", chunk_cb, copy_done, &c) == 0, "queue");
  in_queue = 0;
  FT_ASSERT(run_until(&c.r.called, 1, 120), "copy done");
  FT_ASSERT(c.r.status == FERRY_ECANCELED, "stopped copy -> ECANCELED, got %d", c.r.status);
  FT_ASSERT(c.chunks == 3, "no chunk after stop (%zu)", c.chunks);
  q(pg, "SELECT 'still fine'", 0, NULL, &r, 0);
  FT_ASSERT(!strcmp(r.v0, "still fine"), "after a stopped copy");
  qres_clear(&r);

  /* a failing COPY OUT */
  copy_reset(&c);
  FT_ASSERT(ferry_pg_copy_out(pg, "COPY svc_missing TO STDOUT", chunk_cb, copy_done, &c) == 0, "queue");
  FT_ASSERT(run_until(&c.r.called, 1, 30), "done");
  FT_ASSERT(c.r.status == FERRY_EINVAL && strstr(c.r.msg, "COPY svc_missing"), "bad copy: %s", c.r.msg);
  qres_clear(&c.r);
  EVP_MD_CTX_free(c.md);
  close_pg(pg);
}

/* COPY IN: 100k rows then SELECT count */
static void t_copy_in(void) {
  ferry_pg *pg = connect_pg(conninfo);
  exec_ok(pg, "DROP TABLE IF EXISTS svc_copy_in; CREATE TABLE svc_copy_in (id int, name text)");
  ferry_buf sb = {0};
  for (int i = 1; i <= 100000; i++) ferry_buf_addf(&sb, "%d\tname %d with a tab\\there\n", i, i);
  qres r = {0};
  double t0 = ferry__now();
  in_queue = 1;
  FT_ASSERT(ferry_pg_copy_in(pg, "COPY svc_copy_in (id, name) FROM STDIN", sb.buf, sb.len, qcb, &r) == 0, "queue");
  in_queue = 0;
  size_t bytes = sb.len;
  ferry_buf_free(&sb); /* copied by ferry_pg_copy_in */
  FT_ASSERT(run_until(&r.called, 1, 120), "copy in done");
  double took = ferry__now() - t0;
  FT_ASSERT(r.status == 0, "copy in: %s | %s", r.msg, r.detail);
  FT_ASSERT(!strcmp(r.cmd_tuples, "100000"), "COPY 100000, got %s", r.cmd_tuples);
  qres_clear(&r);
  q(pg, "SELECT count(*) || ' ' || sum(id) || ' ' || count(*) FILTER (WHERE name = 'name ' || id || ' with a tab' "
        "|| E'\\t' || 'here') FROM svc_copy_in", 0, NULL, &r, 0);
  FT_ASSERT(!strcmp(r.v0, "100000 5000050000 100000"), "count, sum, intact names: %s", r.v0);
  qres_clear(&r);
  printf("copy in: 100000 rows, %zu bytes, %.3f s\n", bytes, took);

  /* bad data: EINVAL, the connection stays usable, nothing was added */
  const char bad[] = "1\tok\nnot-a-number\tbad\n";
  in_queue = 1;
  FT_ASSERT(ferry_pg_copy_in(pg, "COPY svc_copy_in (id, name) FROM STDIN", bad, sizeof bad - 1, qcb, &r) == 0, "q");
  in_queue = 0;
  FT_ASSERT(run_until(&r.called, 1, 30), "done");
  FT_ASSERT(r.status == FERRY_EINVAL && strstr(r.detail, "22P02"), "bad copy data: %s | %s", r.msg, r.detail);
  FT_ASSERT(strstr(r.msg, "COPY svc_copy_in"), "message names the operation: %s", r.msg);
  qres_clear(&r);
  q(pg, "SELECT count(*) FROM svc_copy_in", 0, NULL, &r, 0);
  FT_ASSERT(!strcmp(r.v0, "100000"), "count after a failed copy: %s", r.v0);
  qres_clear(&r);
  /* empty COPY IN */
  FT_ASSERT(ferry_pg_copy_in(pg, "COPY svc_copy_in FROM STDIN", NULL, 0, qcb, &r) == 0, "queue");
  FT_ASSERT(run_until(&r.called, 1, 30), "done");
  FT_ASSERT(r.status == 0 && !strcmp(r.cmd_tuples, "0"), "empty copy: %d %s", r.status, r.cmd_tuples);
  qres_clear(&r);
  exec_ok(pg, "DROP TABLE svc_copy_in");
  close_pg(pg);
}

/* lost connection: a running query gets ETRANSIENT, the next query reconnects */
typedef struct killer {
  ferry_pg *pg;
  const char *pid;
  int busy;
  int done;
} killer;

static void kill_cb(void *arg, int status, PGresult *res, const ferry_error *err) {
  killer *k = arg;
  k->busy = 0;
  FT_ASSERT(status == 0, "terminate query: %s", err ? err->message : "");
  if (PQntuples(res) == 1 && !strcmp(PQgetvalue(res, 0, 0), "t")) k->done = 1;
}

static void kill_try(uv_timer_t *t) {
  killer *k = t->data;
  if (k->busy || k->done) return;
  k->busy = 1;
  const char *p[] = {k->pid};
  FT_ASSERT(ferry_pg_query(k->pg,
                           "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = $1::int AND "
                           "state = 'active' AND query LIKE '%pg_sleep%'",
                           1, p, kill_cb, k) == 0,
            "queue terminate");
}

static void t_lost(void) {
  ferry_pg *pg = connect_pg(conninfo);
  ferry_pg *admin = connect_pg(conninfo);
  qres r;
  q(pg, "SELECT pg_backend_pid()", 0, NULL, &r, 0);
  char *pid1 = ferry_strdup(r.v0);
  qres_clear(&r);

  qres sleep = {0}, after = {0};
  FT_ASSERT(ferry_pg_query(pg, "SELECT pg_sleep(60)", 0, NULL, qcb, &sleep) == 0, "queue sleep");
  FT_ASSERT(ferry_pg_query(pg, "SELECT pg_backend_pid()", 0, NULL, qcb, &after) == 0, "queue after");
  killer k = {.pg = admin, .pid = pid1};
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  t.data = &k;
  uv_timer_start(&t, kill_try, 5, 5);
  double t0 = ferry__now();
  FT_ASSERT(run_until(&sleep.called, 1, 30), "the sleeping query ended");
  FT_ASSERT(run_until(&k.done, 1, 30), "the terminate query answered true");
  uv_close((uv_handle_t *)&t, NULL);
  FT_ASSERT(ferry__now() - t0 < 50, "ended by the kill, not by the sleep");
  FT_ASSERT(sleep.status == FERRY_ETRANSIENT, "lost connection -> ETRANSIENT, got %d (%s | %s)", sleep.status,
            sleep.msg, sleep.detail);
  FT_ASSERT(strstr(sleep.msg, "SELECT pg_sleep"), "message names the operation: %s", sleep.msg);
  printf("lost: %s | %s\n", sleep.msg, sleep.detail);
  /* the operation queued behind it belonged to the lost session: it fails too, without running */
  FT_ASSERT(run_until(&after.called, 1, 30), "queued query done");
  FT_ASSERT(after.status == FERRY_ETRANSIENT, "queued before the loss -> ETRANSIENT, got %d", after.status);
  qres_clear(&sleep);
  qres_clear(&after);
  while (!k.done || k.busy) uv_run(&loop, UV_RUN_ONCE); /* the last terminate query of the timer */
  /* a new operation connects again */
  q(pg, "SELECT pg_backend_pid()", 0, NULL, &r, 0);
  FT_ASSERT(strcmp(r.v0, pid1), "reconnected: new pid %s (old %s)", r.v0, pid1);
  char *pid2 = ferry_strdup(r.v0);
  qres_clear(&r);

  /* killed while idle: the next query notices and reconnects without failing */
  const char *p2[] = {pid2};
  q(admin, "SELECT pg_terminate_backend($1::int)", 1, p2, &r, 0);
  FT_ASSERT(!strcmp(r.v0, "t"), "terminated idle backend");
  qres_clear(&r);
  for (double end = ferry__now() + 30;;) { /* until the backend is gone */
    q(admin, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", 1, p2, &r, 0);
    int gone = !strcmp(r.v0, "0");
    qres_clear(&r);
    if (gone) break;
    FT_ASSERT(ferry__now() < end, "backend %s still there", pid2);
  }
  q(pg, "SELECT pg_backend_pid()", 0, NULL, &r, 0);
  FT_ASSERT(strcmp(r.v0, pid2), "a new connection after an idle loss (%s)", r.v0);
  char *pid3 = ferry_strdup(r.v0);
  qres_clear(&r);

  /* killed while idle inside a transaction: the next operation fails (it must not run outside the
   * transaction); nothing of the transaction was committed; the one after that reconnects */
  exec_ok(pg, "DROP TABLE IF EXISTS svc_lost; CREATE TABLE svc_lost (x int)");
  exec_ok(pg, "BEGIN");
  exec_ok(pg, "INSERT INTO svc_lost VALUES (1)");
  const char *p3[] = {pid3};
  q(admin, "SELECT pg_terminate_backend($1::int)", 1, p3, &r, 0);
  qres_clear(&r);
  for (double end = ferry__now() + 30;;) {
    q(admin, "SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", 1, p3, &r, 0);
    int gone = !strcmp(r.v0, "0");
    qres_clear(&r);
    if (gone) break;
    FT_ASSERT(ferry__now() < end, "backend %s still there", pid3);
  }
  q(pg, "INSERT INTO svc_lost VALUES (2)", 0, NULL, &r, FERRY_ETRANSIENT);
  FT_ASSERT(strstr(r.msg, "inside a transaction"), "message: %s", r.msg);
  qres_clear(&r);
  q(pg, "SELECT count(*) FROM svc_lost", 0, NULL, &r, 0);
  FT_ASSERT(!strcmp(r.v0, "0"), "nothing of the lost transaction committed (%s rows)", r.v0);
  qres_clear(&r);
  exec_ok(pg, "DROP TABLE svc_lost");
  free(pid1);
  free(pid2);
  free(pid3);
  close_pg(pg);
  close_pg(admin);
}

/* the password of the conninfo never reaches a log line or an error */
static void t_secret(void) {
  char path[] = "/tmp/ferry-pg-log.XXXXXX";
  int fd = mkstemp(path);
  FT_ASSERT(fd >= 0, "mkstemp");
  FILE *logf = fdopen(fd, "w+");
  ferry_log_configure(FERRY_LOG_TRACE, FERRY_LOG_TEXT, logf);
  const char *pw = "Pl4nted-Passw0rd-Zq";
  char ci[600];
  snprintf(ci, sizeof ci, "%s password=%s", conninfo, pw);
  ferry_pg *pg = connect_pg(ci);
  qres r;
  q(pg, "SELECT 1", 0, NULL, &r, 0);
  qres_clear(&r);
  q(pg, "SELEC oops", 0, NULL, &r, FERRY_EINVAL);
  ferry_log_error(&ins, "plugin reports: %s (%s)", r.msg, r.detail);
  qres_clear(&r);
  /* a notice goes to the log */
  q(pg, "DO $$ BEGIN RAISE NOTICE 'notice from the server'; END $$", 0, NULL, &r, 0);
  qres_clear(&r);
  close_pg(pg);
  /* a failed connection with the password, as keyword and as URI */
  int rfd;
  int port = ft_refused_port(&rfd);
  snprintf(ci, sizeof ci, "postgresql://ferry:%s@127.0.0.1:%d/postgres", pw, port);
  pg = connect_pg(ci);
  q(pg, "SELECT 1", 0, NULL, &r, FERRY_ETRANSIENT);
  FT_ASSERT(!strstr(r.msg, pw) && !strstr(r.detail ? r.detail : "", pw), "password in error: %s | %s", r.msg,
            r.detail);
  ferry_log_error(&ins, "plugin reports: %s (%s) conninfo was %s", r.msg, r.detail, ci);
  qres_clear(&r);
  close_pg(pg);
  close(rfd);
  ferry_log_configure(FERRY_LOG_INFO, FERRY_LOG_TEXT, NULL);

  fflush(logf);
  rewind(logf);
  ferry_buf all = {0};
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, logf)) > 0) ferry_buf_addn(&all, buf, n);
  fclose(logf);
  unlink(path);
  FT_ASSERT(all.len > 0, "something was logged");
  FT_ASSERT(strstr(all.buf, "notice from the server"), "notices are logged:\n%s", all.buf);
  FT_ASSERT(strstr(all.buf, "***"), "the planted password was redacted:\n%s", all.buf);
  FT_ASSERT(!strstr(all.buf, pw), "password in the log:\n%s", all.buf);
  printf("secret: %zu bytes of log, no password\n", all.len);
  ferry_buf_free(&all);
}

static void t_quote(void) {
  char *s = ferry_pg_quote_ident("we\"ird name");
  FT_ASSERT(!strcmp(s, "\"we\"\"ird name\""), "ident: %s", s);
  free(s);
  s = ferry_pg_quote_literal("it's");
  FT_ASSERT(!strcmp(s, "'it''s'"), "literal: %s", s);
  free(s);
  s = ferry_pg_quote_literal("back\\slash 'q'");
  FT_ASSERT(!strcmp(s, "E'back\\\\slash ''q'''"), "E literal: %s", s);
  free(s);
  s = ferry_pg_quote_literal(NULL);
  FT_ASSERT(!strcmp(s, "NULL"), "NULL literal: %s", s);
  free(s);
  FT_ASSERT(ferry_pg_quote_ident(NULL) == NULL, "NULL ident");

  /* round trip through the server */
  ferry_pg *pg = connect_pg(conninfo);
  const char *vals[] = {"plain", "it's", "back\\slash", "both \\' and ''", "tab\there", "", "\"dq\"", NULL};
  for (int i = 0; vals[i]; i++) {
    char *lit = ferry_pg_quote_literal(vals[i]);
    char *sql = ferry_asprintf("SELECT %s::text", lit);
    qres r;
    q(pg, sql, 0, NULL, &r, 0);
    FT_ASSERT(!strcmp(r.v0, vals[i]), "round trip of [%s] via %s: [%s]", vals[i], lit, r.v0);
    qres_clear(&r);
    free(sql);
    free(lit);
  }
  char *id = ferry_pg_quote_ident("svc \"quoted\" Table");
  char *sql = ferry_asprintf("DROP TABLE IF EXISTS %s; CREATE TABLE %s (x int); INSERT INTO %s VALUES (5); "
                              "SELECT x FROM %s",
                              id, id, id, id);
  qres r;
  q(pg, sql, 0, NULL, &r, 0);
  FT_ASSERT(!strcmp(r.v0, "5"), "quoted table");
  qres_clear(&r);
  free(sql);
  sql = ferry_asprintf("DROP TABLE %s", id);
  exec_ok(pg, sql);
  free(sql);
  free(id);
  close_pg(pg);
}

/* array literals (ferry_pg_text_array, ferry_pg_array_elem) read back by the server element by element, and
 * identifiers and literals of awkward text through the SQL the SDK builds (ferry_pg_add_*) */
static void t_array(void) {
  ferry_pg *pg = connect_pg(conninfo);
  const char *v[] = {"a", "b\"c", NULL, "d\\e", "", "x,y", "{z}", "NULL", " sp ", "\xc3\xa9", "'q'"};
  size_t n = sizeof v / sizeof v[0];
  char *arr = ferry_pg_text_array(v, n);
  const char *p[] = {arr};
  qres r;
  q(pg, "SELECT cardinality($1::text[])::text", 1, p, &r, 0);
  FT_ASSERT(r.v0 && (size_t)atoi(r.v0) == n, "cardinality of %s: %s", arr, r.v0);
  qres_clear(&r);
  for (size_t i = 0; i < n; i++) {
    char *sql = ferry_asprintf("SELECT COALESCE(($1::text[])[%zu], '<null>')", i + 1);
    q(pg, sql, 1, p, &r, 0);
    FT_ASSERT(!strcmp(r.v0, v[i] ? v[i] : "<null>"), "element %zu of %s: [%s], want [%s]", i + 1, arr, r.v0,
              v[i] ? v[i] : "<null>");
    qres_clear(&r);
    free(sql);
  }
  free(arr);
  ferry_buf b = FERRY_BUF_INIT;
  ferry_buf_add(&b, "SELECT ");
  ferry_pg_add_literal(&b, "o'k \\ done");
  ferry_buf_add(&b, " AS ");
  ferry_pg_add_ident(&b, "a \"b\" \\ c");
  q(pg, b.buf, 0, NULL, &r, 0);
  FT_ASSERT(!strcmp(r.v0, "o'k \\ done"), "literal through the server: [%s] from %s", r.v0, b.buf);
  qres_clear(&r);
  ferry_buf_free(&b);
  close_pg(pg);
}

/* free cancels queued operations (ECANCELED, during the call); a callback may free its connection */
static int in_free, canceled;
static void cancel_cb(void *arg, int status, PGresult *res, const ferry_error *err) {
  qcb(arg, status, res, err);
  FT_ASSERT(in_free && status == FERRY_ECANCELED, "canceled during free (%d, in_free %d)", status, in_free);
  canceled++;
}
static ferry_pg *self_free;
static void free_in_cb(void *arg, int status, PGresult *res, const ferry_error *err) {
  qcb(arg, status, res, err);
  FT_ASSERT(status == 0, "first ok");
  in_free = 1;
  ferry_pg_free(self_free);
  in_free = 0;
  FT_ASSERT(ferry_pg_query(self_free, "SELECT 1", 0, NULL, qcb, arg) == FERRY_ECANCELED, "refused after free");
}

static void t_free(void) {
  ferry_pg *pg = connect_pg(conninfo);
  qres rs[5] = {{0}};
  for (int i = 0; i < 5; i++)
    FT_ASSERT(ferry_pg_query(pg, "SELECT pg_sleep(30)", 0, NULL, cancel_cb, &rs[i]) == 0, "q");
  FT_ASSERT(ferry_pg_pending(pg) == 5, "5 pending");
  in_free = 1;
  ferry_pg_free(pg); /* while connecting */
  in_free = 0;
  uv_run(&loop, UV_RUN_DEFAULT);
  FT_ASSERT(canceled == 5, "5 canceled (%d)", canceled);
  for (int i = 0; i < 5; i++) {
    FT_ASSERT(rs[i].called == 1, "called once");
    qres_clear(&rs[i]);
  }

  /* free while the host name is being resolved */
  canceled = 0;
  const char *port_at = strstr(conninfo, "port=");
  char ci[256];
  snprintf(ci, sizeof ci, "host=localhost port=%d user=ferry dbname=postgres", atoi(port_at + 5));
  pg = connect_pg(ci);
  FT_ASSERT(ferry_pg_query(pg, "SELECT 1", 0, NULL, cancel_cb, &rs[0]) == 0, "q");
  in_free = 1;
  ferry_pg_free(pg);
  in_free = 0;
  uv_run(&loop, UV_RUN_DEFAULT);
  FT_ASSERT(canceled == 1 && rs[0].called == 1, "canceled while resolving");
  qres_clear(&rs[0]);

  /* free from inside a query's callback while others wait */
  canceled = 0;
  self_free = connect_pg(conninfo);
  qres first = {0}, rest[3] = {{0}};
  FT_ASSERT(ferry_pg_query(self_free, "SELECT 1", 0, NULL, free_in_cb, &first) == 0, "q");
  for (int i = 0; i < 3; i++)
    FT_ASSERT(ferry_pg_query(self_free, "SELECT pg_sleep(30)", 0, NULL, cancel_cb, &rest[i]) == 0, "q");
  FT_ASSERT(run_until(&first.called, 1, 30), "first done");
  FT_ASSERT(canceled == 3, "3 canceled (%d)", canceled);
  uv_run(&loop, UV_RUN_DEFAULT);
  qres_clear(&first);
  for (int i = 0; i < 3; i++) qres_clear(&rest[i]);

  /* free while a query runs on the server */
  canceled = 0;
  pg = connect_pg(conninfo);
  exec_ok(pg, "SELECT 1");
  qres a = {0};
  FT_ASSERT(ferry_pg_query(pg, "SELECT pg_sleep(30)", 0, NULL, cancel_cb, &a) == 0, "q");
  uv_run(&loop, UV_RUN_NOWAIT); /* the zero timer starts the query: it is sent, the server sleeps */
  in_free = 1;
  ferry_pg_free(pg);
  in_free = 0;
  FT_ASSERT(a.called == 1 && canceled == 1, "running query canceled");
  qres_clear(&a);
  uv_run(&loop, UV_RUN_DEFAULT);
}

static const struct {
  const char *name;
  void (*fn)(void);
} cases[] = {
    {"query", t_query},     {"errors", t_errors}, {"order", t_order},   {"copy_out", t_copy_out},
    {"copy_in", t_copy_in}, {"lost", t_lost},     {"secret", t_secret}, {"quote", t_quote}, {"array", t_array},
    {"free", t_free},
};

int main(int argc, char **argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: test_pg CASE STATEFILE\n");
    return 2;
  }
  FILE *f = fopen(argv[2], "r");
  FT_ASSERT(f, "cannot read %s (is the pg fixture running?)", argv[2]);
  char line[512];
  FT_ASSERT(fgets(line, sizeof line, f) && fgets(conninfo, sizeof conninfo, f), "state file has 2 lines");
  fclose(f);
  conninfo[strcspn(conninfo, "\n")] = '\0';
  uv_loop_init(&loop);
  ins.loop = &loop;
  ins.role = FERRY_KIND_SINK;
  ins.stage_name = "services-test";
  ins.concurrency = 4;
  int found = 0;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    if (!strcmp(cases[i].name, argv[1])) {
      cases[i].fn();
      found = 1;
    }
  FT_ASSERT(found, "unknown case %s", argv[1]);
  uv_run(&loop, UV_RUN_DEFAULT);
  FT_ASSERT(uv_loop_close(&loop) == 0, "every uv handle closed");
  ferry__secret_clear();
  printf("ok %s\n", argv[1]);
  return 0;
}
