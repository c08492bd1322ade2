#define _GNU_SOURCE
#include "emu.h"
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *g_conninfo;
static pthread_mutex_t conns_mu = PTHREAD_MUTEX_INITIALIZER;
static PGconn **conns;
static int nconns, capconns;
static __thread PGconn *tl_conn;
/* per-connection prepared statements, keyed by name (the SQL for a name never changes) */
static __thread char tl_prep[64][32];
static __thread int tl_nprep;

static void notice_quiet(void *arg, const char *msg) { (void)arg; (void)msg; }

PGconn *db_conn(void)
{
    if (tl_conn) {
        if (PQstatus(tl_conn) != CONNECTION_OK) { PQreset(tl_conn); tl_nprep = 0; }
        return tl_conn;
    }
    PGconn *c = PQconnectdb(g_conninfo);
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "joget-emulator: cannot connect to database (--db): %s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    PQsetNoticeProcessor(c, notice_quiet, NULL);
    PQclear(PQexec(c, "SET synchronous_commit = off"));
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

void db_close_all(void)
{
    pthread_mutex_lock(&conns_mu);
    for (int i = 0; i < nconns; i++) PQfinish(conns[i]);
    free(conns);
    conns = NULL;
    nconns = capconns = 0;
    pthread_mutex_unlock(&conns_mu);
}

PGresult *dbq(PGconn *c, const char *sql, int n, const char *const *p)
{
    return PQexecParams(c, sql, n, NULL, p, NULL, NULL, 0);
}


PGresult *db_prep_exec(PGconn *c, const char *name, const char *sql, int n, const char *const *p)
{
    int known = 0;
    for (int i = 0; i < tl_nprep && !known; i++) known = !strcmp(tl_prep[i], name);
    if (!known) {
        PGresult *r = PQprepare(c, name, sql, n, NULL);
        ExecStatusType st = PQresultStatus(r);
        PQclear(r);
        if (st != PGRES_COMMAND_OK) return dbq(c, sql, n, p); /* e.g. already prepared after a reset: run unprepared */
        if (tl_nprep < 64) snprintf(tl_prep[tl_nprep++], sizeof tl_prep[0], "%s", name);
    }
    PGresult *r = PQexecPrepared(c, name, n, p, NULL, NULL, 0);
    if (PQresultStatus(r) == PGRES_FATAL_ERROR && PQstatus(c) != CONNECTION_OK) tl_nprep = 0;
    return r;
}

int db_ok(PGresult *r)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK || st == PGRES_COPY_IN) return 1;
    fprintf(stderr, "joget-emulator: SQL error: %s", PQresultErrorMessage(r));
    return 0;
}

int db_exec(PGconn *c, const char *sql, int n, const char *const *p)
{
    PGresult *r = dbq(c, sql, n, p);
    int ok = db_ok(r);
    if (!ok) fprintf(stderr, "  in: %.200s\n", sql);
    PQclear(r);
    return ok ? 0 : -1;
}

int db_begin(PGconn *c) { return db_exec(c, "BEGIN", 0, NULL); }
/* 0 only when PostgreSQL answered COMMIT: a transaction with a failed statement answers ROLLBACK to COMMIT */
int db_commit(PGconn *c)
{
    PGresult *r = PQexec(c, "COMMIT");
    int ok = db_ok(r) && !strcmp(PQcmdStatus(r), "COMMIT");
    if (!ok && PQresultStatus(r) == PGRES_COMMAND_OK)
        fprintf(stderr, "joget-emulator: COMMIT answered %s: the transaction was rolled back\n", PQcmdStatus(r));
    PQclear(r);
    eng_audit_end(ok); /* audit lines of the transaction are written only once it committed */
    return ok ? 0 : -1;
}
void db_rollback(PGconn *c)
{
    PQclear(PQexec(c, "ROLLBACK"));
    eng_audit_end(0);
}

int64_t db_nextval(PGconn *c, const char *seq)
{
    const char *p[1] = {seq};
    PGresult *r = dbq(c, "SELECT nextval($1::regclass)", 1, p);
    int64_t v = -1;
    if (db_ok(r) && PQntuples(r) == 1) v = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    return v;
}

char *db_setting(PGconn *c, const char *prop)
{
    const char *p[1] = {prop};
    PGresult *r = dbq(c, "SELECT value FROM wf_setup WHERE property=$1 ORDER BY ordering NULLS LAST LIMIT 1", 1, p);
    char *v = NULL;
    if (db_ok(r) && PQntuples(r) == 1 && !PQgetisnull(r, 0, 0)) v = xstrdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* The tables and columns of Joget DX 8.0.12 with the names its PostgreSQL install script gives them (lower case),
   plus the emulator-private emu_* tables. */
static const char *SCHEMA =
    "CREATE SEQUENCE IF NOT EXISTS emu_oid_seq START 1000200;"
    "CREATE SEQUENCE IF NOT EXISTS emu_counter_seq START 1;"
    "CREATE TABLE IF NOT EXISTS shkprocessstates (keyvalue varchar(60) NOT NULL UNIQUE, name varchar(100) NOT NULL UNIQUE,"
    " oid numeric(19,0) NOT NULL PRIMARY KEY, version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shkactivitystates (keyvalue varchar(60) NOT NULL UNIQUE, name varchar(100) NOT NULL UNIQUE,"
    " oid numeric(19,0) NOT NULL PRIMARY KEY, version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shkprocessdefinitions (name varchar(400) NOT NULL UNIQUE, packageid varchar(180) NOT NULL,"
    " processdefinitionid varchar(180) NOT NULL, processdefinitioncreated bigint NOT NULL,"
    " processdefinitionversion varchar(40) NOT NULL, state integer NOT NULL, oid numeric(19,0) NOT NULL PRIMARY KEY,"
    " version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shkresourcestable (username varchar(200) NOT NULL UNIQUE, name varchar(200),"
    " oid numeric(19,0) NOT NULL PRIMARY KEY, version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shkprocesses (syncversion bigint NOT NULL, id varchar(200) NOT NULL UNIQUE,"
    " processdefinition numeric(19,0) NOT NULL, pdefname varchar(400) NOT NULL, activityrequesterid varchar(200),"
    " activityrequesterprocessid varchar(200), resourcerequesterid varchar(200) NOT NULL,"
    " externalrequesterclassname varchar(508), state numeric(19,0) NOT NULL, priority integer, name varchar(508),"
    " created bigint NOT NULL, createdtzo bigint NOT NULL, started bigint, startedtzo bigint,"
    " laststatetime bigint NOT NULL, laststatetimetzo bigint NOT NULL, limittime bigint NOT NULL,"
    " limittimetzo bigint NOT NULL, description varchar(508), oid numeric(19,0) NOT NULL PRIMARY KEY,"
    " version integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS shkactivities (id varchar(200) NOT NULL UNIQUE, activitysetdefinitionid varchar(180),"
    " activitydefinitionid varchar(180) NOT NULL, process numeric(19,0) NOT NULL, theresource numeric(19,0),"
    " pdefname varchar(400) NOT NULL, processid varchar(400) NOT NULL, resourceid varchar(200),"
    " state numeric(19,0) NOT NULL, blockactivityid varchar(200), performer varchar(200),"
    " isperformerasynchronous boolean, priority integer, name varchar(508), activated bigint NOT NULL,"
    " activatedtzo bigint NOT NULL, accepted bigint, acceptedtzo bigint, laststatetime bigint NOT NULL,"
    " laststatetimetzo bigint NOT NULL, limittime bigint NOT NULL, limittimetzo bigint NOT NULL,"
    " description varchar(508), oid numeric(19,0) NOT NULL PRIMARY KEY, version integer NOT NULL);"
    "CREATE INDEX IF NOT EXISTS shkactivities_process ON shkactivities(process);"
    "CREATE INDEX IF NOT EXISTS shkactivities_processid ON shkactivities(processid);"
    "CREATE INDEX IF NOT EXISTS shkprocesses_started ON shkprocesses(started, oid);"
    "CREATE INDEX IF NOT EXISTS shkprocesses_requester ON shkprocesses(activityrequesterprocessid);"
    "CREATE TABLE IF NOT EXISTS shkassignmentstable (activity numeric(19,0) NOT NULL, theresource numeric(19,0) NOT NULL,"
    " activityid varchar(200) NOT NULL, activityprocessid varchar(200) NOT NULL,"
    " activityprocessdefname varchar(400) NOT NULL, resourceid varchar(200) NOT NULL, isaccepted boolean NOT NULL,"
    " isvalid boolean NOT NULL, cnt numeric(19,0) NOT NULL UNIQUE, oid numeric(19,0) NOT NULL PRIMARY KEY,"
    " version integer NOT NULL, UNIQUE (activity, theresource));"
    "CREATE INDEX IF NOT EXISTS shkassignments_res ON shkassignmentstable(resourceid);"
    "CREATE INDEX IF NOT EXISTS shkassignments_actid ON shkassignmentstable(activityid);"
    "CREATE TABLE IF NOT EXISTS shkprocessdata (process numeric(19,0) NOT NULL, variabledefinitionid varchar(200) NOT NULL,"
    " variabletype integer NOT NULL, variablevalue bytea, variablevaluexml text, variablevaluevchar varchar(8000),"
    " variablevaluedbl double precision, variablevaluelong bigint, variablevaluedate timestamp with time zone,"
    " variablevaluebool boolean, ordno integer NOT NULL, cnt numeric(19,0) NOT NULL UNIQUE,"
    " oid numeric(19,0) NOT NULL PRIMARY KEY, version integer NOT NULL, UNIQUE (process, variabledefinitionid, ordno));"
    "CREATE TABLE IF NOT EXISTS wf_process_link (processid varchar(510) NOT NULL PRIMARY KEY, parentprocessid varchar(510),"
    " originprocessid varchar(510));"
    "CREATE INDEX IF NOT EXISTS idx_origin ON wf_process_link(originprocessid);"
    "CREATE TABLE IF NOT EXISTS wf_process_link_history (processid varchar(255) NOT NULL PRIMARY KEY,"
    " parentprocessid varchar(255), originprocessid varchar(255));"
    "CREATE TABLE IF NOT EXISTS wf_history_process (processid varchar(255) NOT NULL PRIMARY KEY, processname varchar(255),"
    " processrequesterid varchar(255), resourcerequesterid varchar(255), version varchar(255), processdefid varchar(255),"
    " started bigint, created bigint, laststatetime bigint, limitduration varchar(255),"
    " due timestamp without time zone, state varchar(255), variables varchar(255));"
    "CREATE TABLE IF NOT EXISTS wf_history_activity (activityid varchar(255) NOT NULL PRIMARY KEY,"
    " activityname varchar(255), activitydefid varchar(255), activated bigint, accepted bigint, laststatetime bigint,"
    " limitduration varchar(255), participantid varchar(255), assignmentusers varchar(255), performer varchar(255),"
    " state varchar(255), type varchar(255), due timestamp without time zone, variables varchar(255),"
    " processid varchar(255));"
    "CREATE TABLE IF NOT EXISTS app_fd (id varchar(510) NOT NULL PRIMARY KEY, datecreated timestamp with time zone,"
    " datemodified timestamp with time zone);"
    "CREATE TABLE IF NOT EXISTS app_app (appid varchar(510) NOT NULL, appversion bigint NOT NULL, name varchar(510),"
    " published boolean, datecreated timestamp with time zone, datemodified timestamp with time zone, license text,"
    " description text, meta text, PRIMARY KEY (appid, appversion));"
    "CREATE TABLE IF NOT EXISTS app_package (packageid varchar(510) NOT NULL, packageversion bigint NOT NULL,"
    " name varchar(510), datecreated timestamp with time zone, datemodified timestamp with time zone,"
    " appid varchar(510), appversion bigint, PRIMARY KEY (packageid, packageversion));"
    "CREATE TABLE IF NOT EXISTS app_form (appid varchar(510) NOT NULL, appversion bigint NOT NULL,"
    " formid varchar(510) NOT NULL, name varchar(510), datecreated timestamp with time zone,"
    " datemodified timestamp with time zone, tablename varchar(510), json text, description text,"
    " PRIMARY KEY (appid, appversion, formid));"
    "CREATE TABLE IF NOT EXISTS app_package_activity_plugin (processdefid varchar(510) NOT NULL,"
    " activitydefid varchar(510) NOT NULL, packageid varchar(510) NOT NULL, packageversion bigint NOT NULL,"
    " ouid varchar(510), pluginname varchar(510), pluginproperties text,"
    " PRIMARY KEY (processdefid, activitydefid, packageid, packageversion));"
    "CREATE TABLE IF NOT EXISTS app_package_activity_form (processdefid varchar(510) NOT NULL,"
    " activitydefid varchar(510) NOT NULL, packageid varchar(510) NOT NULL, packageversion bigint NOT NULL,"
    " ouid varchar(510), type varchar(510), formid varchar(510), formurl varchar(510),"
    " formiframestyle varchar(510), autocontinue boolean, disablesaveasdraft boolean,"
    " PRIMARY KEY (processdefid, activitydefid, packageid, packageversion));"
    "CREATE TABLE IF NOT EXISTS app_package_participant (processdefid varchar(510) NOT NULL,"
    " participantid varchar(510) NOT NULL, packageid varchar(510) NOT NULL, packageversion bigint NOT NULL,"
    " ouid varchar(510), type varchar(510), value text, pluginproperties text,"
    " PRIMARY KEY (processdefid, participantid, packageid, packageversion));"
    "CREATE TABLE IF NOT EXISTS wf_setup (id varchar(510) NOT NULL PRIMARY KEY, property varchar(510), value text,"
    " ordering integer);"
    "CREATE TABLE IF NOT EXISTS dir_user (id varchar(510) NOT NULL PRIMARY KEY, username varchar(510),"
    " password varchar(510), firstname varchar(510), lastname varchar(510), email varchar(510), active integer,"
    " timezone varchar(510), locale varchar(510));"
    "CREATE INDEX IF NOT EXISTS dir_user_username ON dir_user(username);"
    "CREATE TABLE IF NOT EXISTS dir_role (id varchar(510) NOT NULL PRIMARY KEY, name varchar(510),"
    " description varchar(510));"
    "CREATE TABLE IF NOT EXISTS dir_user_role (roleid varchar(510) NOT NULL, userid varchar(510) NOT NULL,"
    " PRIMARY KEY (userid, roleid));"
    "CREATE TABLE IF NOT EXISTS dir_group (id varchar(510) NOT NULL PRIMARY KEY, name varchar(510),"
    " description varchar(510), organizationid varchar(510));"
    "CREATE TABLE IF NOT EXISTS dir_user_group (groupid varchar(510) NOT NULL, userid varchar(510) NOT NULL,"
    " PRIMARY KEY (userid, groupid));"
    "CREATE INDEX IF NOT EXISTS wf_history_activity_pid ON wf_history_activity(processid);"
    /* Shark's AND-join bookkeeping: one row per transition followed into a join that still waits */
    "CREATE TABLE IF NOT EXISTS shkandjointable (process numeric(19,0) NOT NULL, blockactivity numeric(19,0) DEFAULT NULL,"
    " activitydefinitionid varchar(180) NOT NULL, activity numeric(19,0) NOT NULL, cnt numeric(19,0) NOT NULL,"
    " oid numeric(19,0) NOT NULL, version integer NOT NULL, PRIMARY KEY (oid), UNIQUE (cnt));"
    "CREATE INDEX IF NOT EXISTS shkandjointable_process ON shkandjointable(process, activitydefinitionid);"
    /* Shark's deadlines: one row per deadline of an open activity */
    "CREATE TABLE IF NOT EXISTS shkdeadlines (process numeric(19,0) NOT NULL, activity numeric(19,0) NOT NULL,"
    " cnt numeric(19,0) NOT NULL, timelimit bigint NOT NULL, timelimittzo bigint NOT NULL,"
    " exceptionname varchar(200) NOT NULL, issynchronous boolean NOT NULL, isexecuted boolean NOT NULL,"
    " oid numeric(19,0) NOT NULL, version integer NOT NULL, PRIMARY KEY (oid), UNIQUE (cnt));"
    "CREATE INDEX IF NOT EXISTS shkdeadlines_activity ON shkdeadlines(activity);"
    "CREATE INDEX IF NOT EXISTS shkdeadlines_process ON shkdeadlines(process);"
    /* an app's default plugins (audit trail, notification) */
    "CREATE TABLE IF NOT EXISTS app_plugin_default (appid varchar(255) NOT NULL, appversion bigint NOT NULL,"
    " id varchar(255) NOT NULL, pluginname varchar(255), plugindescription text, pluginproperties text,"
    " PRIMARY KEY (appid, appversion, id));"
    /* emulator-private */
    "CREATE TABLE IF NOT EXISTS emu_process_graph (pdefname varchar(400) NOT NULL PRIMARY KEY,"
    " appid varchar(510) NOT NULL, packageversion bigint NOT NULL, processdefid varchar(180) NOT NULL, graph text NOT NULL);"
    "CREATE TABLE IF NOT EXISTS emu_meta (key varchar(100) PRIMARY KEY, value text);"
    "INSERT INTO shkprocessstates VALUES"
    " ('open.running','open.running',1000000,0),('open.not_running.not_started','open.not_running.not_started',1000002,0),"
    " ('open.not_running.suspended','open.not_running.suspended',1000004,0),('closed.completed','closed.completed',1000006,0),"
    " ('closed.terminated','closed.terminated',1000008,0),('closed.aborted','closed.aborted',1000010,0)"
    " ON CONFLICT DO NOTHING;"
    "INSERT INTO shkactivitystates VALUES"
    " ('open.running','open.running',1000001,0),('open.not_running.not_started','open.not_running.not_started',1000003,0),"
    " ('open.not_running.suspended','open.not_running.suspended',1000005,0),('closed.completed','closed.completed',1000007,0),"
    " ('closed.terminated','closed.terminated',1000009,0),('closed.aborted','closed.aborted',1000011,0)"
    " ON CONFLICT DO NOTHING;"
    "INSERT INTO dir_role VALUES ('ROLE_ADMIN','Admin','Administrator'),('ROLE_USER','User','Normal User')"
    " ON CONFLICT DO NOTHING;"
    "INSERT INTO wf_setup VALUES ('deleteProcessOnCompletion','deleteProcessOnCompletion','archive',NULL)"
    " ON CONFLICT DO NOTHING;";

static const char *TABLES[] = {
    "shkassignmentstable", "shkprocessdata", "shkactivities", "shkprocesses", "shkprocessdefinitions",
    "shkresourcestable", "shkprocessstates", "shkactivitystates", "wf_process_link", "wf_process_link_history",
    "wf_history_process", "wf_history_activity", "app_fd", "app_app", "app_package", "app_form",
    "app_package_activity_plugin", "app_package_activity_form", "app_package_participant", "wf_setup", "dir_user",
    "dir_role", "dir_user_role", "dir_group", "dir_user_group", "shkandjointable", "shkdeadlines", "app_plugin_default",
    "emu_process_graph", "emu_meta", NULL};

int db_schema(PGconn *c, int reset)
{
    if (reset) {
        sbuf b;
        sb_init(&b);
        PGresult *r = PQexec(c, "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                                " AND tablename LIKE 'app\\_fd\\_%'");
        if (db_ok(r))
            for (int i = 0; i < PQntuples(r); i++) {
                char *q = PQescapeIdentifier(c, PQgetvalue(r, i, 0), strlen(PQgetvalue(r, i, 0)));
                sb_printf(&b, "DROP TABLE IF EXISTS %s CASCADE;", q);
                PQfreemem(q);
            }
        PQclear(r);
        for (int i = 0; TABLES[i]; i++) sb_printf(&b, "DROP TABLE IF EXISTS %s CASCADE;", TABLES[i]);
        sb_add(&b, "DROP SEQUENCE IF EXISTS emu_oid_seq; DROP SEQUENCE IF EXISTS emu_counter_seq;");
        r = PQexec(c, b.s);
        int ok = db_ok(r);
        PQclear(r);
        sb_free(&b);
        if (!ok) return -1;
    }
    PGresult *r = PQexec(c, SCHEMA);
    int ok = db_ok(r);
    PQclear(r);
    return ok ? 0 : -1;
}
