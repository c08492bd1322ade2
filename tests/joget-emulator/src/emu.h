/* joget-emulator: a Joget DX 8 compatible test server (see README.md). */
#ifndef EMU_H
#define EMU_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
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

/* ---- database ---- */
extern char *g_conninfo;
PGconn *db_conn(void);          /* per-thread connection (lazy) */
void db_close_all(void);
PGresult *dbq(PGconn *c, const char *sql, int n, const char *const *p);  /* PQexecParams text */
PGresult *db_prep_exec(PGconn *c, const char *name, const char *sql, int n, const char *const *p);
int db_ok(PGresult *r);          /* command or tuples ok; logs otherwise */
int db_exec(PGconn *c, const char *sql, int n, const char *const *p); /* 0 ok, -1 error (logged) */
int db_begin(PGconn *c);
int db_commit(PGconn *c);
void db_rollback(PGconn *c);
int db_schema(PGconn *c, int reset);  /* create/reuse/recreate Joget tables */
int64_t db_nextval(PGconn *c, const char *seq);
char *db_setting(PGconn *c, const char *prop); /* malloc'ed or NULL */

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

int graphs_load(PGconn *c);   /* from emu_process_graph */
void graphs_free(void);
const proc_t *proc_find(const char *pdefname);
int proc_act(const proc_t *p, const char *actdef);
const var_t *proc_var(const proc_t *p, const char *id);
int proc_join_need(const proc_t *p, const act_t *join); /* distinct source activities of join's incoming transitions */
int graph_parse(const char *pdefname, json_t *graph, proc_t *out, char *err, size_t errn);
void proc_free(proc_t *p);

/* ---- fixtures ---- */
int fixture_load(PGconn *c, const char *file, const char *uploads);

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
void eng_process_start(PGconn *c, const user_t *u, const char *pdef, const char *record,
                       json_t *vars /* name->string */, start_res *res);
int eng_activity_start(PGconn *c, const user_t *u, const char *pid, const char *actdef, int abort_current);
int eng_activity_abort(PGconn *c, const char *pid, const char *actdef);
int eng_process_abort(PGconn *c, const char *pid);
int eng_assignment_accept(PGconn *c, const user_t *u, const char *actid);
int eng_assignment_complete(PGconn *c, const user_t *u, const char *actid, json_t *vars);
int eng_set_variable(PGconn *c, const char *pid, const char *name, const char *value, int strict);
int eng_reassign(PGconn *c, const char *actid, const char *username, const char *replace);
/* --audit-log: assignments created for apps whose default plugins include the user-notification audit trail
   append "time event activityId processId username" lines when their transaction commits */
int eng_audit_open(const char *path);   /* -1 (reported) when the file cannot be opened */
void eng_audit_close(void);
void eng_audit_end(int commit);         /* called by db_commit (1 on success) and db_rollback (0) */
char *eng_resolve_pdef(PGconn *c, const char *pdef_url); /* ':'->'#', latest resolution; malloc'ed */
int eng_whitelist_ok(PGconn *c, const user_t *u, const char *pdefname);
void fmt_double(double d, char *out, size_t n);

/* ---- http ---- */
typedef struct {
    const char *host;
    int port;
    int threads;
    int latency_ms;
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
