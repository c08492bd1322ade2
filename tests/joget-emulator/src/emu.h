/* joget-emulator: a Joget DX 8 compatible test server (see README.md). */
#ifndef EMU_H
#define EMU_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

/* ---- growable string buffer ---- */
typedef struct {
    char *s;
    size_t len, cap;
} sbuf;
void sb_init(sbuf *b);
void sb_free(sbuf *b);
void sb_add(sbuf *b, const char *s);
void sb_addn(sbuf *b, const char *s, size_t n);
void sb_addc(sbuf *b, char c);
void sb_printf(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char *sb_steal(sbuf *b);

/* ---- misc utilities ---- */
void md5_hex(const char *in, size_t n, char out[33], int upper);
int64_t now_ms(void);
void fmt_app_date(int64_t ms, char *out, size_t n);    /* Joget app date format yyyy-MM-dd hh:mm a */
void fmt_java_date(int64_t ms, char *out, size_t n);   /* java.util.Date.toString() */
int sfa_bad(const char *s);                          /* SqlFilterAspect: space ( ) ; slash-star */
int ident_ok(const char *s);                         /* [A-Za-z0-9_]+ */
char *xstrdup(const char *s);
void gen_uuid(char out[37]);
const char *nz(const char *s);                       /* NULL -> "" */
int str_ieq(const char *a, const char *b);

/* ---- state oids (Joget seeds) ---- */
#define PS_RUNNING 1000000
#define PS_NOT_STARTED 1000002
#define PS_SUSPENDED 1000004
#define PS_COMPLETED 1000006
#define PS_TERMINATED 1000008
#define PS_ABORTED 1000010
#define AS_RUNNING 1000001
#define AS_NOT_STARTED 1000003
#define AS_SUSPENDED 1000005
#define AS_COMPLETED 1000007
#define AS_TERMINATED 1000009
#define AS_ABORTED 1000011

/* variable type codes used in shkprocessdata.variabletype (emulator convention, see README) */
#define VT_BOOLEAN 0
#define VT_LONG 1
#define VT_DOUBLE 2
#define VT_STRING 3

/* ---- database (db.c: the layer and the PostgreSQL backend; db_mariadb.c: the MariaDB backend; sql.c: the SQL that
   differs between the engines) ----
   SQL is written once with $1..$N parameters, optionally typed ($2::bigint, $3::boolean, $4::text), and with table
   names spelled as Joget's MySQL install script spells them (PostgreSQL folds them to its lower-case names). Values go
   in and come out as text; NULL is a NULL pointer going in and "" (with db_isnull) coming out. Booleans come out as
   "t"/"f" (PostgreSQL) or "1"/"0" (MariaDB): read them with db_bool. Timestamps come out as PostgreSQL prints them
   in UTC ("2024-01-01 00:00:00+00"). */
typedef enum { ENG_POSTGRESQL, ENG_MARIADB } db_engine;
extern db_engine g_engine;
typedef struct dbconn dbconn;
typedef struct dbres dbres;
int db_setup(const char *target);   /* --db: a mariadb:// or mysql:// URL selects MariaDB, else a libpq conninfo;
                                       -1 (reported) when the URL is malformed */
void db_shutdown(void);             /* closes every connection, frees what db_setup kept */
const char *db_engine_name(void);
dbconn *db_conn(void);              /* per-thread connection (lazy, reconnects after a loss); NULL (reported) */
dbres *db_query(dbconn *c, const char *sql, int n, const char *const *p); /* NULL on error (reported); db_free it */
/* the same, prepared once per connection under name where the engine keeps prepared statements (PostgreSQL) */
dbres *db_prep_query(dbconn *c, const char *name, const char *sql, int n, const char *const *p);
int db_nrows(const dbres *r);       /* 0 for NULL */
int db_ncols(const dbres *r);
const char *db_get(const dbres *r, int row, int col);   /* "" for NULL values */
int db_isnull(const dbres *r, int row, int col);
const char *db_colname(const dbres *r, int col);
long db_affected(const dbres *r);   /* rows matched by an UPDATE/DELETE/INSERT */
void db_free(dbres *r);
int db_bool(const char *v);         /* "t"/"true"/"1" -> 1 */
int db_exec(dbconn *c, const char *sql, int n, const char *const *p); /* 0 ok, -1 error (reported) */
int db_ddl(dbconn *c, const char *sql); /* schema change; MariaDB runs it on a side connection, as Hibernate does,
                                           because DDL would commit the running transaction there */
int db_begin(dbconn *c);
int db_commit(dbconn *c);           /* 0 only when the whole transaction committed (none of its statements failed) */
void db_rollback(dbconn *c);
int64_t db_nextval(dbconn *c, const char *seq);
int db_setval(dbconn *c, const char *seq, int64_t last); /* as if nextval had returned last */
int db_schema(dbconn *c, int reset);  /* create/reuse/recreate Joget tables */
char *db_setting(dbconn *c, const char *prop); /* malloc'ed or NULL */
/* bulk rows: COPY (PostgreSQL) or multi-row INSERTs (MariaDB) */
typedef struct {
    char *target;    /* "table (col, col, ...)" */
    int ncols;
    sbuf data;
    long nrows;
} dbbulk;
void db_bulk_init(dbbulk *b, const char *table, const char *cols);
void db_bulk_row(dbbulk *b, int n, const char *const *v);   /* NULL = SQL NULL */
int db_bulk_load(dbconn *c, dbbulk *b);                      /* sends the rows (none: nothing) */
void db_bulk_free(dbbulk *b);
/* dialect (sql.c) */
typedef enum {
    Q_LOCK_INSTANCE, Q_VAR_INSERT, Q_RESOURCE_OID, Q_DEADLINE_INSERT, Q_ASSIGN, Q_ANDJOIN_INSERT, Q_ARCHIVE_PROCESS,
    Q_ARCHIVE_ACTIVITIES, Q_ARCHIVE_LINK, Q_USER_ROLES, Q_PROCESS_VIEW, Q_ACTLIST_ONE, Q_ACTLIST_ALL, Q_PROCDEF_NAME,
    Q_FD_COLUMNS, Q_FD_TABLES, Q_APP_UPSERT, Q_PACKAGE_UPSERT, Q_PLUGIN_DEFAULT_UPSERT, Q_FORM_INSERT, Q_PROCDEF_INSERT,
    Q_GRAPH_UPSERT, Q_TOOL_PLUGIN_INSERT, Q_PARTICIPANT_INSERT, Q_ROLE_INSERT, Q_GROUP_INSERT, Q_USER_UPSERT,
    Q_RESOURCE_INSERT, Q_ROLE_SELF_INSERT, Q_USER_ROLE_INSERT, Q_GROUP_SELF_INSERT, Q_USER_GROUP_INSERT, Q_SETTING_UPSERT,
    Q_META_FIXTURE, Q_META_LOADED, Q_ANALYZE,
    Q_COUNT
} qid;
const char *sqlq(qid q);            /* the statement for the engine in use */
void db_fd_name(const char *prefix, const char *id, char *out, size_t n); /* app_fd_<table> / c_<field> as Joget
                                                                            names them (PostgreSQL: lower case) */
int db_fd_ensure(dbconn *c, const char *table, const char *const *cols, int ncols); /* table + columns (names from
                                                                            db_fd_name), created lazily */
void db_fd_upsert_sql(sbuf *b, const char *table, const char *col); /* upsert of one column by id: $1 id, $2 value,
                                                                     $3 user */
void db_order(sbuf *b, const char *col, int text, const char *dir); /* "col dir" sorted as PostgreSQL sorts */
const char *db_ts(const char *in, char *out, size_t n); /* a timestamp with zone from a fixture, as the engine stores
                                                          it (MariaDB: UTC datetime) */

/* ---- process graphs (read-only after startup) ---- */
typedef struct {
    char *id, *name, *type, *performer, *subflow;
    int join_and, split_and, async_sub;
    long long deadline_ms; /* 0 = none; else limittime = activated + deadline_ms and a shkdeadlines row */
    int *in, nin;   /* incoming transition indexes */
    int *out, nout; /* outgoing transition indexes */
} act_t;
typedef struct {
    int from, to;
    json_t *cond;   /* borrowed from graph json; NULL = unconditional */
    int otherwise;
} trans_t;
typedef struct {
    char *id, *type, *initial;
} var_t;
typedef struct {
    char *pdefname, *appid, *procid, *name, *pkgname;
    long pkgver;
    act_t *acts; int nacts;
    trans_t *tr; int ntr;
    var_t *vars; int nvars;
    json_t *graph;
} proc_t;

int graphs_load(dbconn *c);   /* from emu_process_graph */
void graphs_free(void);
const proc_t *proc_find(const char *pdefname);
int proc_act(const proc_t *p, const char *actdef);
const var_t *proc_var(const proc_t *p, const char *id);
int proc_join_need(const proc_t *p, const act_t *join); /* distinct source activities of join's incoming transitions */
int graph_parse(const char *pdefname, json_t *graph, proc_t *out, char *err, size_t errn);
void proc_free(proc_t *p);

/* ---- fixtures ---- */
int fixture_load(dbconn *c, const char *file, const char *uploads);

/* ---- engine (all run inside a transaction opened by the caller) ---- */
typedef struct {
    char username[256];
    int anonymous;
    int admin, appadmin, sysadmin;
} user_t;

/* results */
typedef struct {
    int ok;          /* 1 started */
    int sql_error;   /* SFA or DB failure -> HTTP 500 */
    char pid[256];
    char record[512];
    int leave_commit; /* commit although not ok (unstarted instance left behind) */
} start_res;
void eng_process_start(dbconn *c, const user_t *u, const char *pdef, const char *record,
                       json_t *vars /* name->string */, start_res *res);
int eng_activity_start(dbconn *c, const user_t *u, const char *pid, const char *actdef, int abort_current);
int eng_activity_abort(dbconn *c, const char *pid, const char *actdef);
int eng_process_abort(dbconn *c, const char *pid);
int eng_assignment_accept(dbconn *c, const user_t *u, const char *actid);
int eng_assignment_complete(dbconn *c, const user_t *u, const char *actid, json_t *vars);
int eng_set_variable(dbconn *c, const char *pid, const char *name, const char *value, int strict);
int eng_reassign(dbconn *c, const char *actid, const char *username, const char *replace);
/* --audit-log: assignments created for apps whose default plugins include the user-notification audit trail
   append "time event activityId processId username" lines when their transaction commits */
int eng_audit_open(const char *path);   /* -1 (reported) when the file cannot be opened */
void eng_audit_close(void);
void eng_audit_end(int commit);         /* called by db_commit (1 on success) and db_rollback (0) */
char *eng_resolve_pdef(dbconn *c, const char *pdef_url); /* ':'->'#', latest resolution; malloc'ed */
int eng_whitelist_ok(dbconn *c, const user_t *u, const char *pdefname);
void fmt_double(double d, char *out, size_t n);

/* ---- http ---- */
typedef struct {
    const char *host;
    int port;
    int threads;
    int latency_ms;
    int max_inflight;   /* > 0: at most this many requests inside their latency at once, the rest queue */
    double fail_rate;
    int fail_500, fail_reset, fail_timeout;
    int timeout_ms;
    uint64_t seed;
    int fail_lost, fail_partial, fail_twice;
    const char *request_log;
    const char *uploads;
} http_cfg;
int http_run(const http_cfg *cfg, const char *port_file); /* blocks until SIGTERM/SIGINT */

#endif
