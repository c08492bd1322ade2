/* The database layer: one connection per worker thread, queries with parameters, rows as text, transactions,
   sequences and bulk loads, with one backend per engine (PostgreSQL here, MariaDB in db_mariadb.c). */
#define _GNU_SOURCE
#include "dbi.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

db_engine g_engine = ENG_POSTGRESQL;
static char *g_conninfo;
static pthread_mutex_t conns_mu = PTHREAD_MUTEX_INITIALIZER;
static dbconn **conns;
static int nconns, capconns;
static __thread dbconn *tl_conn;

static void notice_quiet(void *arg, const char *msg) { (void)arg; (void)msg; }

int db_setup(const char *target)
{
    if (!strncmp(target, "mariadb://", 10) || !strncmp(target, "mysql://", 8)) {
        g_engine = ENG_MARIADB;
        if (my_parse_url(target, &g_my_user, &g_my_pw, &g_my_host, &g_my_port, &g_my_db, &g_my_socket) < 0) return -1;
        if (mysql_library_init(0, NULL, NULL)) {
            fprintf(stderr, "joget-emulator: cannot initialise the MariaDB client library\n");
            return -1;
        }
        return 0;
    }
    g_engine = ENG_POSTGRESQL;
    g_conninfo = xstrdup(target);
    return 0;
}

const char *db_engine_name(void) { return g_engine == ENG_MARIADB ? "MariaDB" : "PostgreSQL"; }

static void autop_clear(dbconn *c)
{
    for (size_t i = 0; i < sizeof c->autop / sizeof c->autop[0]; i++) {
        free(c->autop[i].sql);
        c->autop[i].sql = NULL;
    }
}

static void conn_close(dbconn *c)
{
    autop_clear(c);
    if (c->pg) PQfinish(c->pg);
    if (c->my) mysql_close(c->my);
    if (c->my_ddl) mysql_close(c->my_ddl);
    free(c);
}

void db_shutdown(void)
{
    pthread_mutex_lock(&conns_mu);
    for (int i = 0; i < nconns; i++) conn_close(conns[i]);
    free(conns);
    conns = NULL;
    nconns = capconns = 0;
    pthread_mutex_unlock(&conns_mu);
    tl_conn = NULL;
    free(g_conninfo);
    g_conninfo = NULL;
    if (g_engine == ENG_MARIADB) {
        free(g_my_user); free(g_my_pw); free(g_my_host); free(g_my_db); free(g_my_socket);
        g_my_user = g_my_pw = g_my_host = g_my_db = g_my_socket = NULL;
        mysql_library_end();
    }
}

dbconn *db_conn(void)
{
    dbconn *c = tl_conn;
    if (c) {
        if (c->pg && PQstatus(c->pg) != CONNECTION_OK) { PQreset(c->pg); c->nprep = 0; autop_clear(c); }
        if (g_engine == ENG_MARIADB && !c->my) c->my = my_connect(0); /* lost earlier: reconnect */
        if (g_engine == ENG_MARIADB && !c->my) return NULL;
        return c;
    }
    c = calloc(1, sizeof *c);
    if (g_engine == ENG_MARIADB) {
        c->my = my_connect(0);
        if (!c->my) { free(c); return NULL; }
    } else {
        c->pg = PQconnectdb(g_conninfo);
        if (PQstatus(c->pg) != CONNECTION_OK) {
            fprintf(stderr, "joget-emulator: cannot connect to database (--db): %s", PQerrorMessage(c->pg));
            PQfinish(c->pg);
            free(c);
            return NULL;
        }
        PQsetNoticeProcessor(c->pg, notice_quiet, NULL);
        PQclear(PQexec(c->pg, "SET synchronous_commit = off"));
        /* statements are prepared once (db_query) but planned at each run: a plan made while a table was small
         * (a seq scan) would stay when it has grown */
        PQclear(PQexec(c->pg, "SET plan_cache_mode = force_custom_plan"));
    }
    pthread_mutex_lock(&conns_mu);
    if (nconns == capconns) {
        capconns = capconns ? capconns * 2 : 16;
        conns = realloc(conns, sizeof *conns * (size_t)capconns);
    }
    conns[nconns++] = c;
    pthread_mutex_unlock(&conns_mu);
    tl_conn = c;
    return c;
}

/* ---------- PostgreSQL results ---------- */
static dbres *pg_wrap(PGresult *r, const char *sql)
{
    ExecStatusType st = PQresultStatus(r);
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        fprintf(stderr, "joget-emulator: SQL error: %s", PQresultErrorMessage(r));
        if (sql) fprintf(stderr, "  in: %.200s\n", sql);
        PQclear(r);
        return NULL;
    }
    dbres *d = calloc(1, sizeof *d);
    d->pg = r;
    d->nrows = PQntuples(r);
    d->ncols = PQnfields(r);
    d->affected = atol(PQcmdTuples(r));
    return d;
}

/* PostgreSQL: a statement with parameters is prepared once per connection, found again by its text (the
 * engine runs some fifty statements per started process; parsing and planning each one every time made the
 * emulator, not the latency it is told to add, the limit of a benchmark). Not for statements whose result
 * columns can change under a cached plan: `*` (SELECT *, p.*) and the form tables (app_fd_*, given columns
 * at run time). A statement that cannot be prepared runs unprepared. */
static int autop_ok(const char *sql, int n) { return n > 0 && !strchr(sql, '*') && !strcasestr(sql, "app_fd"); }

dbres *db_query(dbconn *c, const char *sql, int n, const char *const *p)
{
    if (g_engine == ENG_MARIADB) return my_query(c, c->my, sql, n, p);
    if (!autop_ok(sql, n)) return pg_wrap(PQexecParams(c->pg, sql, n, NULL, p, NULL, NULL, 0), sql);
    unsigned h = 2166136261u;
    for (const unsigned char *s = (const unsigned char *)sql; *s; s++) h = (h ^ *s) * 16777619u;
    size_t cap = sizeof c->autop / sizeof c->autop[0], i = h % cap;
    for (size_t k = 0; k < cap && c->autop[i].sql && (c->autop[i].h != h || strcmp(c->autop[i].sql, sql)); k++)
        i = (i + 1) % cap;
    char name[24];
    snprintf(name, sizeof name, "emu_a%zu", i);
    if (!c->autop[i].sql) {
        if (PQtransactionStatus(c->pg) == PQTRANS_INERROR) /* keep the error the caller expects */
            return pg_wrap(PQexecParams(c->pg, sql, n, NULL, p, NULL, NULL, 0), sql);
        PGresult *r = PQprepare(c->pg, name, sql, n, NULL);
        if (PQresultStatus(r) != PGRES_COMMAND_OK) {
            if (PQtransactionStatus(c->pg) == PQTRANS_INERROR) return pg_wrap(r, sql); /* its own error */
            PQclear(r);
            return pg_wrap(PQexecParams(c->pg, sql, n, NULL, p, NULL, NULL, 0), sql);
        }
        PQclear(r);
        c->autop[i].h = h;
        c->autop[i].sql = xstrdup(sql);
    } else if (c->autop[i].h != h || strcmp(c->autop[i].sql, sql)) /* the table is full */
        return pg_wrap(PQexecParams(c->pg, sql, n, NULL, p, NULL, NULL, 0), sql);
    return pg_wrap(PQexecPrepared(c->pg, name, n, p, NULL, NULL, 0), sql);
}

dbres *db_prep_query(dbconn *c, const char *name, const char *sql, int n, const char *const *p)
{
    if (g_engine == ENG_MARIADB) return my_query(c, c->my, sql, n, p);
    int known = 0;
    for (int i = 0; i < c->nprep && !known; i++) known = !strcmp(c->prep[i], name);
    if (!known) {
        PGresult *r = PQprepare(c->pg, name, sql, n, NULL);
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st != PGRES_COMMAND_OK) return db_query(c, sql, n, p); /* e.g. already prepared after a reset: unprepared */
        if (c->nprep < 64) snprintf(c->prep[c->nprep++], sizeof c->prep[0], "%s", name);
    }
    PGresult *r = PQexecPrepared(c->pg, name, n, p, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_FATAL_ERROR && PQstatus(c->pg) != CONNECTION_OK) c->nprep = 0;
    return pg_wrap(r, sql);
}

int db_nrows(const dbres *r) { return r ? r->nrows : 0; }
int db_ncols(const dbres *r) { return r ? r->ncols : 0; }
const char *db_get(const dbres *r, int i, int j)
{
    if (!r || i < 0 || i >= r->nrows || j < 0 || j >= r->ncols) return "";
    if (r->pg) return PQgetvalue(r->pg, i, j);
    const char *v = r->v[(size_t)i * (size_t)r->ncols + (size_t)j];
    return v ? v : "";
}
int db_isnull(const dbres *r, int i, int j)
{
    if (!r || i < 0 || i >= r->nrows || j < 0 || j >= r->ncols) return 1;
    if (r->pg) return PQgetisnull(r->pg, i, j);
    return r->v[(size_t)i * (size_t)r->ncols + (size_t)j] == NULL;
}
const char *db_colname(const dbres *r, int j)
{
    if (!r || j < 0 || j >= r->ncols) return "";
    return r->pg ? PQfname(r->pg, j) : r->names[j];
}
long db_affected(const dbres *r) { return r ? r->affected : 0; }
void db_free(dbres *r)
{
    if (!r) return;
    if (r->pg) PQclear(r->pg);
    else my_free_result(r);
    free(r);
}
int db_bool(const char *v) { return v && (v[0] == 't' || v[0] == 'T' || v[0] == '1'); }

int db_exec(dbconn *c, const char *sql, int n, const char *const *p)
{
    dbres *r = db_query(c, sql, n, p);
    db_free(r);
    return r ? 0 : -1;
}

int db_ddl(dbconn *c, const char *sql)
{
    if (g_engine != ENG_MARIADB) {
        PGresult *r = PQexec(c->pg, sql);
        dbres *d = pg_wrap(r, sql);
        db_free(d);
        return d ? 0 : -1;
    }
    if (!c->my_ddl) c->my_ddl = my_connect(1);
    if (!c->my_ddl) return -1;
    dbres *d = my_query(NULL, c->my_ddl, sql, 0, NULL);
    if (!d) { mysql_close(c->my_ddl); c->my_ddl = NULL; }
    db_free(d);
    return d ? 0 : -1;
}

int db_begin(dbconn *c)
{
    if (g_engine == ENG_MARIADB) {
        c->in_tx = c->tx_failed = 0;
        if (db_exec(c, "START TRANSACTION", 0, NULL) < 0) return -1;
        c->in_tx = 1;
        return 0;
    }
    return db_exec(c, "BEGIN", 0, NULL);
}

/* 0 only when the transaction committed. PostgreSQL answers ROLLBACK to COMMIT after a failed statement; MariaDB would
   commit the other statements, so a failed one makes the commit a rollback there too (the same all-or-nothing). */
int db_commit(dbconn *c)
{
    int ok;
    if (g_engine == ENG_MARIADB) {
        int failed = c->tx_failed;
        c->in_tx = 0;
        if (failed) {
            fprintf(stderr, "joget-emulator: COMMIT refused: a statement of the transaction failed; rolled back\n");
            dbres *r = my_query(c, c->my, "ROLLBACK", 0, NULL);
            db_free(r);
            ok = 0;
        } else {
            dbres *r = my_query(c, c->my, "COMMIT", 0, NULL);
            ok = r != NULL;
            db_free(r);
        }
        c->tx_failed = 0;
    } else {
        PGresult *r = PQexec(c->pg, "COMMIT");
        ok = PQresultStatus(r) == PGRES_COMMAND_OK && !strcmp(PQcmdStatus(r), "COMMIT");
        if (PQresultStatus(r) != PGRES_COMMAND_OK) fprintf(stderr, "joget-emulator: SQL error: %s", PQresultErrorMessage(r));
        else if (!ok)
            fprintf(stderr, "joget-emulator: COMMIT answered %s: the transaction was rolled back\n", PQcmdStatus(r));
        PQclear(r);
    }
    eng_audit_end(ok); /* audit lines of the transaction are written only once it committed */
    return ok ? 0 : -1;
}

void db_rollback(dbconn *c)
{
    if (g_engine == ENG_MARIADB) {
        c->in_tx = c->tx_failed = 0;
        if (c->my) db_free(my_query(c, c->my, "ROLLBACK", 0, NULL));
    } else
        PQclear(PQexec(c->pg, "ROLLBACK"));
    eng_audit_end(0);
}

int64_t db_nextval(dbconn *c, const char *seq)
{
    dbres *r;
    if (g_engine == ENG_MARIADB) {
        char q[200];
        snprintf(q, sizeof q, "SELECT nextval(%s)", seq); /* seq: a name of ours, not input */
        r = db_query(c, q, 0, NULL);
    } else {
        const char *p[1] = {seq};
        r = db_query(c, "SELECT nextval($1::regclass)", 1, p);
    }
    int64_t v = db_nrows(r) == 1 ? strtoll(db_get(r, 0, 0), NULL, 10) : -1;
    db_free(r);
    return v;
}

int db_setval(dbconn *c, const char *seq, int64_t last)
{
    char q[200];
    if (g_engine == ENG_MARIADB) snprintf(q, sizeof q, "SELECT setval(%s, %lld)", seq, (long long)last);
    else snprintf(q, sizeof q, "SELECT setval('%s', %lld)", seq, (long long)last);
    return db_exec(c, q, 0, NULL);
}

char *db_setting(dbconn *c, const char *prop)
{
    const char *p[1] = {prop};
    dbres *r = db_query(c, "SELECT value FROM wf_setup WHERE property=$1 ORDER BY ordering IS NULL, ordering LIMIT 1", 1, p);
    char *v = NULL;
    if (db_nrows(r) == 1 && !db_isnull(r, 0, 0)) v = xstrdup(db_get(r, 0, 0));
    db_free(r);
    return v;
}

/* ---------- bulk loads ---------- */
void db_bulk_init(dbbulk *b, const char *table, const char *cols)
{
    sbuf t;
    sb_init(&t);
    sb_printf(&t, "%s (%s)", table, cols);
    b->target = sb_steal(&t);
    b->ncols = 1;
    for (const char *s = cols; *s; s++) b->ncols += *s == ',';
    sb_init(&b->data);
    b->nrows = 0;
}

void db_bulk_free(dbbulk *b)
{
    free(b->target);
    b->target = NULL;
    sb_free(&b->data);
}

/* rows are kept in COPY's text format (tab-separated, \N for NULL, backslash escapes); db_mariadb.c reads the same */
void db_bulk_row(dbbulk *b, int n, const char *const *v)
{
    for (int i = 0; i < n; i++) {
        if (!v[i]) sb_add(&b->data, "\\N");
        else
            for (const char *s = v[i]; *s; s++) {
                if (*s == '\\') sb_add(&b->data, "\\\\");
                else if (*s == '\t') sb_add(&b->data, "\\t");
                else if (*s == '\n') sb_add(&b->data, "\\n");
                else if (*s == '\r') sb_add(&b->data, "\\r");
                else sb_addc(&b->data, *s);
            }
        sb_addc(&b->data, i == n - 1 ? '\n' : '\t');
    }
    b->nrows++;
}

int db_bulk_load(dbconn *c, dbbulk *b)
{
    if (!b->data.len) return 0;
    if (g_engine == ENG_MARIADB) return my_bulk_load(c, b);
    char sql[4200];
    snprintf(sql, sizeof sql, "COPY %s FROM STDIN", b->target);
    PGresult *r = PQexec(c->pg, sql);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        fprintf(stderr, "joget-emulator: SQL error: %s  in: %s\n", PQresultErrorMessage(r), sql);
        PQclear(r);
        return -1;
    }
    PQclear(r);
    if (PQputCopyData(c->pg, b->data.s, (int)b->data.len) != 1 || PQputCopyEnd(c->pg, NULL) != 1) return -1;
    r = PQgetResult(c->pg);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok) fprintf(stderr, "joget-emulator: SQL error: %s  in: %s\n", PQresultErrorMessage(r), sql);
    PQclear(r);
    while ((r = PQgetResult(c->pg))) PQclear(r);
    return ok ? 0 : -1;
}
