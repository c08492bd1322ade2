/* The workflow engine: every public eng_* function runs inside one transaction opened by the caller. */
#define _GNU_SOURCE
#include "emu.h"
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct ictx {
    dbconn *c;
    const proc_t *p;
    char pid[256], poid[32], requester[256], record[512];
    char parent_act[256], parent_pid[256];
    const user_t *u;
    int nested; /* started synchronously by a parent's sub-flow activity */
} ictx;

/* a transition to follow: target activity index, source activity index (-1 = none: a start activity or an
   activity started by monitoring/activity/start) and the SHKActivities oid of the source activity */
typedef struct { int to, from; long long from_oid; } witem;
typedef struct { witem *v; int n, cap; } wlist;
static void wl_push(wlist *w, int to, int from, long long from_oid)
{
    if (w->n == w->cap) { w->cap = w->cap ? w->cap * 2 : 8; w->v = realloc(w->v, sizeof *w->v * (size_t)w->cap); }
    w->v[w->n].to = to; w->v[w->n].from = from; w->v[w->n].from_oid = from_oid; w->n++;
}

static int run(ictx *x, wlist *w);
static int check_finish(ictx *x);

static const char *cur_user(const ictx *x)
{
    if (!x->u || x->u->anonymous) return x->requester;
    return x->u->username;
}

static char *ll(char *buf, long long v) { sprintf(buf, "%lld", v); return buf; }

/* ---------- audit log (--audit-log) ----------
   Lines are collected per thread while a transaction runs and written when it commits (db_commit calls
   eng_audit_end(1)), so a rolled back operation notifies nobody, like a mail that was never sent. */
static FILE *g_audit;
static pthread_mutex_t audit_mu = PTHREAD_MUTEX_INITIALIZER;
static __thread sbuf tl_audit;

int eng_audit_open(const char *path)
{
    g_audit = fopen(path, "a");
    if (!g_audit) { fprintf(stderr, "joget-emulator: --audit-log %s: cannot open for appending\n", path); return -1; }
    return 0;
}

void eng_audit_close(void)
{
    if (g_audit) fclose(g_audit);
    g_audit = NULL;
}

void eng_audit_end(int commit)
{
    if (commit && g_audit && tl_audit.len) {
        pthread_mutex_lock(&audit_mu);
        fwrite(tl_audit.s, 1, tl_audit.len, g_audit);
        fflush(g_audit);
        pthread_mutex_unlock(&audit_mu);
    }
    sb_free(&tl_audit);
}

/* "app#3#proc" -> app and the package version; -1 unless the version is a number as PostgreSQL prints a bigint */
static int pdef_split(const char *pdef, char *app, size_t an, char *ver, size_t vn)
{
    const char *h1 = strchr(pdef, '#'), *h2 = h1 ? strchr(h1 + 1, '#') : NULL;
    if (!h1) return -1;
    size_t vl = h2 ? (size_t)(h2 - h1 - 1) : strlen(h1 + 1);
    if (!vl || vl >= vn || vl > 18 || (h1[1] == '0' && vl > 1)) return -1;
    for (size_t i = 0; i < vl; i++) if (h1[1 + i] < '0' || h1[1 + i] > '9') return -1;
    snprintf(app, an, "%.*s", (int)(h1 - pdef), pdef);
    snprintf(ver, vn, "%.*s", (int)vl, h1 + 1);
    return 0;
}

/* does the app of process definition pdefname have the user-notification audit trail as a default plugin? */
static int audit_wanted(dbconn *c, const char *pdefname)
{
    if (!g_audit) return 0;
    char app[512], ver[32];
    if (pdef_split(pdefname, app, sizeof app, ver, sizeof ver) < 0) return 0;
    const char *p[2] = {app, ver};
    dbres *r = db_query(c, "SELECT count(*) FROM app_plugin_default d JOIN app_package k ON k.appid=d.appid"
                         " AND k.appversion=d.appversion WHERE k.packageid=$1 AND k.packageversion=$2::bigint"
                         " AND d.pluginname LIKE '%UserNotificationAuditTrail'", 2, p);
    int n = r ? atoi(db_get(r, 0, 0)) : 0;
    db_free(r);
    return n > 0;
}

static void audit_add(const char *event, const char *actid, const char *pid, const char *user)
{
    int64_t t = now_ms();
    time_t sec = (time_t)(t / 1000);
    struct tm tm;
    char ts[48];
    gmtime_r(&sec, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    sb_printf(&tl_audit, "%s.%03dZ %s %s %s %s\n", ts, (int)(t % 1000), event, actid, pid, user);
}

/* ---------- instance loading ---------- */
static int load_inst(dbconn *c, const char *pid, ictx *x, int *state)
{
    memset(x, 0, sizeof *x);
    x->c = c;
    const char *p[1] = {pid};
    dbres *r = db_query(c, sqlq(Q_LOCK_INSTANCE), 1, p);
    if (!r || db_nrows(r) != 1) { db_free(r); return -1; }
    snprintf(x->pid, sizeof x->pid, "%s", pid);
    snprintf(x->poid, sizeof x->poid, "%s", db_get(r, 0, 0));
    snprintf(x->requester, sizeof x->requester, "%s", db_get(r, 0, 2));
    snprintf(x->record, sizeof x->record, "%s", db_get(r, 0, 4));
    snprintf(x->parent_act, sizeof x->parent_act, "%s", db_get(r, 0, 5));
    snprintf(x->parent_pid, sizeof x->parent_pid, "%s", db_get(r, 0, 6));
    if (state) *state = atoi(db_get(r, 0, 3));
    x->p = proc_find(db_get(r, 0, 1));
    db_free(r);
    return x->p ? 0 : -1;
}

/* ---------- variables ---------- */
static int var_type_code(const char *t)
{
    if (!strcmp(t, "Long")) return VT_LONG;
    if (!strcmp(t, "Double")) return VT_DOUBLE;
    if (!strcmp(t, "Boolean")) return VT_BOOLEAN;
    return VT_STRING;
}

/* mode 1 = process start coercion (Joget parses a Boolean var_ value with Long.parseLong, so "true" fails), 0 = normal setter.
   Returns 0 ok, 1 unknown variable (ignored), -2 coercion error, -1 SQL error. */
static int var_write(ictx *x, const char *name, const char *value, int mode)
{
    const var_t *v = proc_var(x->p, name);
    if (!v) return 1;
    int vt = var_type_code(v->type);
    char lbuf[32] = "", dbuf[64] = "";
    const char *vch = NULL, *vl = NULL, *vd = NULL, *vb = NULL;
    if (value) {
        char *end;
        if (vt == VT_STRING) vch = value;
        else if (vt == VT_LONG || (vt == VT_BOOLEAN && mode == 1)) {
            errno = 0;
            long long n = strtoll(value, &end, 10);
            if (!*value || *end || errno) return -2;
            if (vt == VT_LONG) vl = ll(lbuf, n);
            else vb = n ? "true" : "false";
        } else if (vt == VT_DOUBLE) {
            errno = 0;
            double d = strtod(value, &end);
            if (!*value || *end || errno) return -2;
            snprintf(dbuf, sizeof dbuf, "%.17g", d);
            vd = dbuf;
        } else {
            if (str_ieq(value, "true")) vb = "true";
            else if (str_ieq(value, "false")) vb = "false";
            else return -2;
        }
    }
    char tbuf[8];
    snprintf(tbuf, sizeof tbuf, "%d", vt);
    const char *p[7] = {x->poid, name, tbuf, vch, vd, vl, vb};
    dbres *r = db_query(x->c, "UPDATE SHKProcessData SET variabletype=$3::int, variablevaluevchar=$4, variablevaluedbl=$5::float8,"
                            " variablevaluelong=$6::bigint, variablevaluebool=$7::boolean, version=version+1"
                            " WHERE process=$1::numeric AND variabledefinitionid=$2 AND ordno=0", 7, p);
    if (!r) { db_free(r); return -1; }
    int upd = (int)db_affected(r);
    db_free(r);
    if (upd) return 0;
    return db_exec(x->c, sqlq(Q_VAR_INSERT), 7, p);
}

/* value of a process variable as Joget prints it; NULL when unset */
static char *var_read(ictx *x, const char *name)
{
    const char *p[2] = {x->poid, name};
    dbres *r = db_query(x->c, "SELECT variabletype, variablevaluevchar, variablevaluelong, variablevaluedbl, variablevaluebool"
                            " FROM SHKProcessData WHERE process=$1::numeric AND variabledefinitionid=$2 AND ordno=0", 2, p);
    char *out = NULL;
    if (r && db_nrows(r) == 1) {
        int vt = atoi(db_get(r, 0, 0));
        int col = vt == VT_LONG ? 2 : vt == VT_DOUBLE ? 3 : vt == VT_BOOLEAN ? 4 : 1;
        if (!db_isnull(r, 0, col)) {
            if (vt == VT_DOUBLE) {
                char b[64];
                fmt_double(strtod(db_get(r, 0, col), NULL), b, sizeof b);
                out = xstrdup(b);
            } else if (vt == VT_BOOLEAN) out = xstrdup(db_bool(db_get(r, 0, col)) ? "true" : "false");
            else out = xstrdup(db_get(r, 0, col));
        }
    }
    db_free(r);
    return out;
}

int eng_set_variable(dbconn *c, const char *pid, const char *name, const char *value, int strict)
{
    ictx x;
    if (load_inst(c, pid, &x, NULL) < 0) return -1;
    int rc = var_write(&x, name, value, strict);
    return rc == -1 ? -1 : 0;
}

/* ---------- conditions ---------- */
static int cond_true(ictx *x, json_t *cond)
{
    if (!cond) return 1;
    const char *var = json_string_value(json_object_get(cond, "variable"));
    const char *op = json_string_value(json_object_get(cond, "op"));
    if (!op) op = "==";
    json_t *jv = json_object_get(cond, "value");
    char vb[64];
    const char *want = "";
    if (json_is_string(jv)) want = json_string_value(jv);
    else if (json_is_integer(jv)) { snprintf(vb, sizeof vb, "%lld", (long long)json_integer_value(jv)); want = vb; }
    else if (json_is_real(jv)) { snprintf(vb, sizeof vb, "%.17g", json_real_value(jv)); want = vb; }
    else if (json_is_boolean(jv)) want = json_is_true(jv) ? "true" : "false";
    char *have = var_read(x, var);
    const var_t *v = proc_var(x->p, var);
    int cmp;
    if (v && (!strcmp(v->type, "Long") || !strcmp(v->type, "Double"))) {
        double a = have ? strtod(have, NULL) : 0, b = strtod(want, NULL);
        cmp = a < b ? -1 : a > b ? 1 : 0;
    } else cmp = strcmp(have ? have : "", want);
    free(have);
    if (!strcmp(op, "==")) return cmp == 0;
    if (!strcmp(op, "!=")) return cmp != 0;
    if (!strcmp(op, ">")) return cmp > 0;
    if (!strcmp(op, "<")) return cmp < 0;
    if (!strcmp(op, ">=")) return cmp >= 0;
    return cmp <= 0;
}

/* ---------- resources, activities, assignments ---------- */
static int resource_oid(dbconn *c, const char *username, char out[32])
{
    const char *p[1] = {username};
    dbres *r = db_query(c, sqlq(Q_RESOURCE_OID), 1, p);
    int ok = r && db_nrows(r) == 1;
    if (ok) snprintf(out, 32, "%s", db_get(r, 0, 0));
    db_free(r);
    return ok ? 0 : -1;
}

static int insert_activity(ictx *x, const act_t *a, int state, char *actid, size_t idn, char oid[32])
{
    long long cnt = db_nextval(x->c, "emu_counter_seq");
    long long o = db_nextval(x->c, "emu_oid_seq");
    if (cnt < 0 || o < 0) return -1;
    snprintf(actid, idn, "%lld_%s_%s", cnt, x->pid, a->id);
    snprintf(oid, 32, "%lld", o);
    char st[16], now[32], limit[32];
    snprintf(st, sizeof st, "%d", state);
    long long t = (long long)now_ms();
    ll(now, t);
    ll(limit, a->deadline_ms > 0 ? t + a->deadline_ms : 0);
    const char *q[11] = {actid, a->id, x->poid, x->p->pdefname, x->pid, st, a->performer, a->name, now, oid, limit};
    if (db_exec(x->c, "INSERT INTO SHKActivities (id, activitydefinitionid, process, pdefname, processid, state, performer,"
                      " name, activated, activatedtzo, laststatetime, laststatetimetzo, limittime, limittimetzo, oid, version)"
                      " VALUES ($1,$2,$3::numeric,$4,$5,$6::numeric,$7,$8,$9::bigint,0,$9::bigint,0,$11::bigint,0,$10::numeric,0)",
                11, q) < 0)
        return -1;
    if (a->deadline_ms <= 0) return 0;
    const char *d[3] = {x->poid, oid, limit};
    return db_exec(x->c, sqlq(Q_DEADLINE_INSERT), 3, d);
}

static int set_act_state(ictx *x, const char *actoid, int state, const char *performer)
{
    char st[16], now[32], roid[32] = "";
    snprintf(st, sizeof st, "%d", state);
    ll(now, (long long)now_ms());
    if (performer && resource_oid(x->c, performer, roid) < 0) return -1;
    const char *p[5] = {actoid, st, now, performer, performer ? roid : NULL};
    if (db_exec(x->c, "UPDATE SHKActivities SET state=$2::numeric, laststatetime=$3::bigint, version=version+1,"
                      " resourceid=COALESCE($4, resourceid), theresource=COALESCE($5::numeric, theresource),"
                      " accepted=CASE WHEN $4::text IS NOT NULL AND accepted IS NULL THEN $3::bigint ELSE accepted END,"
                      " acceptedtzo=CASE WHEN $4::text IS NOT NULL AND accepted IS NULL THEN 0 ELSE acceptedtzo END"
                      " WHERE oid=$1::numeric", 5, p) < 0)
        return -1;
    if (state < AS_COMPLETED) return 0;
    return db_exec(x->c, "DELETE FROM SHKDeadlines WHERE activity=$1::numeric", 1, p); /* a closed activity has no deadline */
}

static void add_name(json_t *arr, const char *u)
{
    if (!u || !*u) return;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (!strcmp(json_string_value(v), u)) return;
    json_array_append_new(arr, json_string(u));
}

static void split_names(json_t *arr, const char *s, dbconn *c, int groups)
{
    char *d = xstrdup(s), *save = NULL;
    for (char *t = strtok_r(d, ";,", &save); t; t = strtok_r(NULL, ";,", &save)) {
        while (isspace((unsigned char)*t)) t++;
        if (!*t) continue;
        if (!groups) { add_name(arr, t); continue; }
        const char *p[1] = {t};
        dbres *r = db_query(c, "SELECT u.username FROM dir_user_group g JOIN dir_user u ON u.id = g.userid"
                             " WHERE g.groupid = $1 ORDER BY u.username", 1, p);
        if (r)
            for (int i = 0; i < db_nrows(r); i++) add_name(arr, db_get(r, i, 0));
        db_free(r);
    }
    free(d);
}

static char *performer_of(ictx *x, const char *pid, const char *actdef)
{
    const char *p[2] = {pid, actdef};
    dbres *r = db_query(x->c, "SELECT resourceid FROM SHKActivities WHERE processid=$1 AND activitydefinitionid=$2"
                            " AND resourceid IS NOT NULL ORDER BY laststatetime DESC, oid DESC LIMIT 1", 2, p);
    char *out = NULL;
    if (r && db_nrows(r) == 1) out = xstrdup(db_get(r, 0, 0));
    db_free(r);
    return out;
}

/* participant mapping (app_package_participant) -> usernames; see README "Assignees" */
static json_t *resolve_assignees(ictx *x, const act_t *a)
{
    json_t *arr = json_array();
    char ver[32];
    snprintf(ver, sizeof ver, "%ld", x->p->pkgver);
    const char *p[4] = {x->p->procid, a->performer, x->p->appid, ver};
    dbres *r = db_query(x->c, "SELECT type, value FROM app_package_participant WHERE processdefid=$1 AND participantid=$2"
                            " AND packageid=$3 AND packageversion=$4::bigint", 4, p);
    if (r && db_nrows(r) == 1) {
        const char *type = db_get(r, 0, 0), *val = db_get(r, 0, 1);
        if (!strcmp(type, "requester") || !strcmp(type, "performer")) {
            if (!*val || !strcmp(val, "runProcess")) add_name(arr, x->requester);
            else {
                char *u = performer_of(x, x->pid, val);
                if (!u && strcmp(x->record, x->pid)) u = performer_of(x, x->record, val); /* origin fallback */
                add_name(arr, u);
                free(u);
            }
        } else if (!strcmp(type, "user")) split_names(arr, val, x->c, 0);
        else if (!strcmp(type, "group")) split_names(arr, val, x->c, 1);
        else if (!strcmp(type, "role")) {
            if (!strcmp(val, "adminUser")) {
                dbres *q = db_query(x->c, "SELECT u.username FROM dir_user u JOIN dir_user_role r ON r.userid=u.id"
                                           " WHERE r.roleid='ROLE_ADMIN' ORDER BY 1", 0, NULL);
                if (q)
                    for (int i = 0; i < db_nrows(q); i++) add_name(arr, db_get(q, i, 0));
                db_free(q);
            } else add_name(arr, cur_user(x));
        }
    }
    db_free(r);
    if (json_array_size(arr) == 0) add_name(arr, cur_user(x)); /* Shark default: the current user */
    return arr;
}

static int assign(ictx *x, const char *actoid, const char *actid, json_t *users)
{
    size_t i;
    json_t *v;
    int audit = audit_wanted(x->c, x->p->pdefname);
    json_array_foreach(users, i, v) {
        char roid[32];
        const char *u = json_string_value(v);
        if (resource_oid(x->c, u, roid) < 0) return -1;
        const char *p[6] = {actoid, roid, actid, x->pid, x->p->pdefname, u};
        if (db_exec(x->c, sqlq(Q_ASSIGN), 6, p) < 0)
            return -1;
        if (audit) audit_add("getDefaultAssignments", actid, x->pid, u);
    }
    return 0;
}

/* ---------- tools ---------- */
static char *subst(ictx *x, const char *in)
{
    sbuf b;
    sb_init(&b);
    const char *s = in;
    while (*s) {
        const char *h = strchr(s, '#');
        if (!h) { sb_add(&b, s); break; }
        sb_addn(&b, s, (size_t)(h - s));
        const char *e = strchr(h + 1, '#');
        if (!e) { sb_add(&b, h); break; }
        char key[256];
        snprintf(key, sizeof key, "%.*s", (int)(e - h - 1), h + 1);
        if (!strncmp(key, "variable.", 9)) { char *v = var_read(x, key + 9); sb_add(&b, nz(v)); free(v); }
        else if (!strcmp(key, "requester")) sb_add(&b, x->requester);
        else if (!strcmp(key, "recordId")) sb_add(&b, x->record);
        else if (!strcmp(key, "processId")) sb_add(&b, x->pid);
        else sb_addn(&b, h, (size_t)(e - h + 1));
        s = e + 1;
    }
    return sb_steal(&b);
}

static int run_tool(ictx *x, const act_t *a)
{
    char ver[32];
    snprintf(ver, sizeof ver, "%ld", x->p->pkgver);
    const char *p[4] = {x->p->procid, a->id, x->p->appid, ver};
    dbres *r = db_query(x->c, "SELECT pluginproperties FROM app_package_activity_plugin WHERE processdefid=$1 AND activitydefid=$2"
                            " AND packageid=$3 AND packageversion=$4::bigint", 4, p);
    if (!r) { db_free(r); return -1; }
    if (db_nrows(r) != 1) { db_free(r); return 0; } /* unmapped tool: Joget runs nothing and reports success */
    json_t *props = json_loads(db_get(r, 0, 0), 0, NULL);
    db_free(r);
    int rc = 0;
    size_t i;
    json_t *act;
    json_array_foreach(json_object_get(props, "actions"), i, act) {
        const char *type = json_string_value(json_object_get(act, "type"));
        const char *val = json_string_value(json_object_get(act, "value"));
        char *v = subst(x, nz(val));
        if (type && !strcmp(type, "setVariable")) {
            const char *name = json_string_value(json_object_get(act, "variable"));
            if (name && var_write(x, name, v, 0) == -1) rc = -1;
        } else if (type && !strcmp(type, "setColumn")) {
            const char *t = json_string_value(json_object_get(act, "table"));
            const char *col = json_string_value(json_object_get(act, "column"));
            if (ident_ok(t) && ident_ok(col)) {
                char tbl[600], cn[600];
                db_fd_name("app_fd_", t, tbl, sizeof tbl);
                db_fd_name("c_", col, cn, sizeof cn);
                const char *cols[1] = {cn};
                if (db_fd_ensure(x->c, tbl, cols, 1) < 0) rc = -1;
                else {
                    sbuf b;
                    sb_init(&b);
                    db_fd_upsert_sql(&b, tbl, cn);
                    const char *q[3] = {x->record, v, x->requester};
                    if (db_exec(x->c, b.s, 3, q) < 0) rc = -1;
                    sb_free(&b);
                }
            }
        }
        free(v);
    }
    json_decref(props);
    return rc;
}

/* ---------- instance creation and the run loop ---------- */
static int create_instance(dbconn *c, const proc_t *p, const char *requester, const char *par_act, const char *par_pid,
                           ictx *x)
{
    memset(x, 0, sizeof *x);
    x->c = c;
    x->p = p;
    long long cnt = db_nextval(c, "emu_counter_seq"), o = db_nextval(c, "emu_oid_seq");
    if (cnt < 0 || o < 0) return -1;
    snprintf(x->pid, sizeof x->pid, "%lld_%s_%s", cnt, p->appid, p->procid);
    snprintf(x->poid, sizeof x->poid, "%lld", o);
    snprintf(x->requester, sizeof x->requester, "%s", requester);
    snprintf(x->record, sizeof x->record, "%s", x->pid);
    snprintf(x->parent_act, sizeof x->parent_act, "%s", nz(par_act));
    snprintf(x->parent_pid, sizeof x->parent_pid, "%s", nz(par_pid));
    char now[32];
    ll(now, (long long)now_ms());
    const char *q[8] = {x->pid, p->pdefname, par_act, par_pid, requester, p->name, now, x->poid};
    if (db_exec(c, "INSERT INTO SHKProcesses (syncversion, id, processdefinition, pdefname, activityrequesterid,"
                   " activityrequesterprocessid, resourcerequesterid, state, priority, name, created, createdtzo,"
                   " laststatetime, laststatetimetzo, limittime, limittimetzo, oid, version)"
                   " SELECT 0, $1, COALESCE((SELECT oid FROM SHKProcessDefinitions WHERE name=$2), 0), $2, $3, $4, $5,"
                   " 1000002, 3, $6, $7::bigint, 0, $7::bigint, 0, 0, 0, $8::numeric, 0", 8, q) < 0)
        return -1;
    for (int i = 0; i < p->nvars; i++)
        if (var_write(x, p->vars[i].id, p->vars[i].initial, 0) == -1) return -1;
    return 0;
}

static int link_instance(ictx *x, const char *parent)
{
    const char *p[2] = {x->pid, parent};
    if (db_exec(x->c, "INSERT INTO wf_process_link (processid, parentprocessid, originprocessid)"
                      " SELECT $1::text, $2::text, COALESCE((SELECT originprocessid FROM wf_process_link WHERE processid=$2::text),"
                      " (SELECT originprocessid FROM wf_process_link_history WHERE processid=$2::text), $2::text)"
                      " WHERE NOT EXISTS (SELECT 1 FROM wf_process_link WHERE processid=$1::text)", 2, p) < 0)
        return -1;
    dbres *r = db_query(x->c, "SELECT originprocessid FROM wf_process_link WHERE processid=$1", 1, p);
    if (r && db_nrows(r) == 1) snprintf(x->record, sizeof x->record, "%s", db_get(r, 0, 0));
    db_free(r);
    return 0;
}

static int start_instance_path(ictx *x)
{
    char now[32];
    ll(now, (long long)now_ms());
    const char *p[2] = {x->poid, now};
    if (db_exec(x->c, "UPDATE SHKProcesses SET state=1000000, started=$2::bigint, startedtzo=0, laststatetime=$2::bigint"
                      " WHERE oid=$1::numeric", 2, p) < 0)
        return -1;
    wlist w = {0};
    for (int i = 0; i < x->p->nacts; i++)
        if (x->p->acts[i].nin == 0) wl_push(&w, i, -1, 0);
    if (w.n == 0) wl_push(&w, 0, -1, 0);
    int rc = run(x, &w);
    free(w.v);
    if (rc == 0) rc = check_finish(x);
    return rc;
}

/* push the transitions to take after activity ai (SHKActivities oid from_oid) completed */
static void follow(ictx *x, int ai, const char *from_oid, wlist *w)
{
    long long fo = strtoll(from_oid, NULL, 10);
    const act_t *a = &x->p->acts[ai];
    int pushed = 0;
    for (int k = 0; k < a->nout; k++) {
        const trans_t *t = &x->p->tr[a->out[k]];
        if (t->otherwise) continue;
        if (cond_true(x, t->cond)) {
            wl_push(w, t->to, ai, fo);
            pushed++;
            if (!a->split_and) return;
        }
    }
    if (pushed) return;
    for (int k = 0; k < a->nout; k++) {
        const trans_t *t = &x->p->tr[a->out[k]];
        if (t->otherwise) { wl_push(w, t->to, ai, fo); if (!a->split_and) return; }
    }
}

static int proc_state(ictx *x)
{
    const char *p[1] = {x->poid};
    dbres *r = db_query(x->c, "SELECT state FROM SHKProcesses WHERE oid=$1::numeric", 1, p);
    int st = (r && db_nrows(r) == 1) ? atoi(db_get(r, 0, 0)) : PS_COMPLETED; /* archived = closed */
    db_free(r);
    return st;
}

static int run(ictx *x, wlist *w)
{
    for (int guard = 0; w->n > 0; guard++) {
        if (guard > 10000) { fprintf(stderr, "joget-emulator: %s: endless loop in process graph\n", x->pid); return -1; }
        witem it = w->v[--w->n];
        const act_t *a = &x->p->acts[it.to];
        if (a->join_and && a->nin > 1 && it.from >= 0) {
            /* Shark's AND-join: record the arrival in SHKAndJoinTable; the join starts when every distinct incoming
               branch (source activity definition) has arrived, and its rows are then deleted */
            char from_oid[32];
            ll(from_oid, it.from_oid);
            const char *p[3] = {x->poid, a->id, from_oid};
            if (db_exec(x->c, sqlq(Q_ANDJOIN_INSERT), 3, p) < 0)
                return -1;
            dbres *r = db_query(x->c, "SELECT count(DISTINCT a.activitydefinitionid) FROM SHKAndJoinTable j"
                                    " JOIN SHKActivities a ON a.oid=j.activity WHERE j.process=$1::numeric"
                                    " AND j.activitydefinitionid=$2", 2, p);
            int n = r ? atoi(db_get(r, 0, 0)) : -1;
            db_free(r);
            if (n < 0) return -1;
            if (n < proc_join_need(x->p, a)) continue;
            if (db_exec(x->c, "DELETE FROM SHKAndJoinTable WHERE process=$1::numeric AND activitydefinitionid=$2", 2, p) < 0)
                return -1;
        }
        char actid[600], aoid[32];
        if (!strcmp(a->type, "manual")) {
            if (insert_activity(x, a, AS_NOT_STARTED, actid, sizeof actid, aoid) < 0) return -1;
            json_t *users = resolve_assignees(x, a);
            int rc = assign(x, aoid, actid, users);
            json_decref(users);
            if (rc < 0) return -1;
        } else if (!strcmp(a->type, "tool") || !strcmp(a->type, "route")) {
            if (insert_activity(x, a, AS_RUNNING, actid, sizeof actid, aoid) < 0) return -1;
            if (!strcmp(a->type, "tool") && run_tool(x, a) < 0) return -1;
            if (set_act_state(x, aoid, AS_COMPLETED, NULL) < 0) return -1;
            follow(x, it.to, aoid, w);
        } else { /* subflow */
            if (insert_activity(x, a, AS_RUNNING, actid, sizeof actid, aoid) < 0) return -1;
            char sub[800];
            snprintf(sub, sizeof sub, "%s#%ld#%s", x->p->appid, x->p->pkgver, a->subflow);
            const proc_t *sp = proc_find(sub);
            if (!sp) { fprintf(stderr, "joget-emulator: sub-flow process %s not found\n", sub); return -1; }
            ictx child;
            if (create_instance(x->c, sp, x->requester, actid, x->pid, &child) < 0) return -1;
            child.u = x->u;
            child.nested = 1;
            for (int i = 0; i < sp->nvars; i++) { /* same-named variables flow into the sub-process */
                char *v = var_read(x, sp->vars[i].id);
                if (v && var_write(&child, sp->vars[i].id, v, 0) == -1) { free(v); return -1; }
                free(v);
            }
            if (link_instance(&child, x->pid) < 0) return -1;
            if (start_instance_path(&child) < 0) return -1;
            int done = proc_state(&child) >= PS_COMPLETED;
            if (done || a->async_sub) {
                if (set_act_state(x, aoid, AS_COMPLETED, NULL) < 0) return -1;
                follow(x, it.to, aoid, w);
            }
        }
    }
    return 0;
}

static int archive_or_delete(ictx *x)
{
    char *mode = db_setting(x->c, "deleteProcessOnCompletion");
    int rc = 0;
    const char *p[2] = {x->poid, x->pid};
    if (mode && !strcmp(mode, "archive")) {
        rc |= db_exec(x->c, sqlq(Q_ARCHIVE_PROCESS), 1, p);
        rc |= db_exec(x->c, sqlq(Q_ARCHIVE_ACTIVITIES), 1, p);
        rc |= db_exec(x->c, sqlq(Q_ARCHIVE_LINK), 1, p + 1);
    }
    if (mode && (!strcmp(mode, "archive") || !strcmp(mode, "true"))) {
        rc |= db_exec(x->c, "DELETE FROM SHKAssignmentsTable WHERE activityprocessid=$1", 1, p + 1);
        rc |= db_exec(x->c, "DELETE FROM SHKProcessData WHERE process=$1::numeric", 1, p);
        rc |= db_exec(x->c, "DELETE FROM SHKActivities WHERE process=$1::numeric", 1, p);
        rc |= db_exec(x->c, "DELETE FROM SHKAndJoinTable WHERE process=$1::numeric", 1, p);
        rc |= db_exec(x->c, "DELETE FROM SHKDeadlines WHERE process=$1::numeric", 1, p);
        rc |= db_exec(x->c, "DELETE FROM wf_process_link WHERE processid=$1", 1, p + 1);
        rc |= db_exec(x->c, "DELETE FROM SHKProcesses WHERE oid=$1::numeric", 1, p);
    }
    free(mode);
    return rc ? -1 : 0;
}

static int close_process(ictx *x, int pstate)
{
    char st[16], ast[16], now[32];
    snprintf(st, sizeof st, "%d", pstate);
    snprintf(ast, sizeof ast, "%d", pstate == PS_COMPLETED ? AS_COMPLETED : pstate == PS_TERMINATED ? AS_TERMINATED : AS_ABORTED);
    ll(now, (long long)now_ms());
    const char *p[4] = {x->poid, st, now, ast};
    if (db_exec(x->c, "DELETE FROM SHKAssignmentsTable WHERE activity IN (SELECT oid FROM SHKActivities WHERE process=$1::numeric"
                      " AND state IN (1000001,1000003,1000005))", 1, p) < 0) return -1;
    /* every activity closes now: no deadline and no waiting join is left */
    if (db_exec(x->c, "DELETE FROM SHKDeadlines WHERE process=$1::numeric", 1, p) < 0) return -1;
    if (db_exec(x->c, "DELETE FROM SHKAndJoinTable WHERE process=$1::numeric", 1, p) < 0) return -1;
    const char *q[3] = {x->poid, ast, now};
    if (db_exec(x->c, "UPDATE SHKActivities SET state=$2::numeric, laststatetime=$3::bigint WHERE process=$1::numeric"
                      " AND state IN (1000001,1000003,1000005)", 3, q) < 0) return -1;
    if (db_exec(x->c, "UPDATE SHKProcesses SET state=$2::numeric, laststatetime=$3::bigint, version=version+1"
                      " WHERE oid=$1::numeric", 3, p) < 0) return -1;
    return archive_or_delete(x);
}

/* A finished sub-process resumes its parent's sub-flow activity. */
static int resume_parent(ictx *x)
{
    if (!x->parent_act[0] || !x->parent_pid[0]) return 0;
    ictx par;
    if (load_inst(x->c, x->parent_pid, &par, NULL) < 0) return 0;
    par.u = x->u;
    const char *p[1] = {x->parent_act};
    dbres *r = db_query(x->c, "SELECT oid, activitydefinitionid FROM SHKActivities WHERE id=$1 AND state=1000001", 1, p);
    if (!r || db_nrows(r) != 1) { db_free(r); return 0; }
    char aoid[32];
    snprintf(aoid, sizeof aoid, "%s", db_get(r, 0, 0));
    int ai = proc_act(par.p, db_get(r, 0, 1));
    db_free(r);
    if (ai < 0) return 0;
    if (set_act_state(&par, aoid, AS_COMPLETED, NULL) < 0) return -1;
    wlist w = {0};
    follow(&par, ai, aoid, &w);
    int rc = run(&par, &w);
    free(w.v);
    return rc < 0 ? -1 : check_finish(&par);
}

static int check_finish(ictx *x)
{
    const char *p[1] = {x->poid};
    dbres *r = db_query(x->c, "SELECT count(*) FROM SHKActivities WHERE process=$1::numeric AND state IN (1000001,1000003,1000005)",
                      1, p);
    int open = r ? atoi(db_get(r, 0, 0)) : -1;
    db_free(r);
    if (open != 0) return open < 0 ? -1 : 0;
    if (close_process(x, PS_COMPLETED) < 0) return -1;
    if (!x->nested) return resume_parent(x);
    return 0;
}

/* ---------- public operations ---------- */
char *eng_resolve_pdef(dbconn *c, const char *url)
{
    char *d = xstrdup(url);
    for (char *q = d; *q; q++) if (*q == ':') *q = '#';
    char *h1 = strchr(d, '#'), *h2 = h1 ? strchr(h1 + 1, '#') : NULL;
    if (h1 && h2 && !strchr(h2 + 1, '#') && (size_t)(h2 - h1 - 1) == 6 && !strncmp(h1 + 1, "latest", 6)) {
        char app[512];
        snprintf(app, sizeof app, "%.*s", (int)(h1 - d), d);
        const char *p[1] = {app};
        dbres *r = db_query(c, "SELECT p.packageversion FROM app_package p JOIN app_app a ON a.appid=p.appid AND a.appversion=p.appversion"
                             " WHERE a.appid=$1 AND a.published ORDER BY a.appversion DESC LIMIT 1", 1, p);
        if (r && db_nrows(r) == 1) {
            sbuf b;
            sb_init(&b);
            sb_printf(&b, "%s#%s#%s", app, db_get(r, 0, 0), h2 + 1);
            free(d);
            d = sb_steal(&b);
        }
        db_free(r);
    }
    return d;
}

static int user_in_list(dbconn *c, const user_t *u, const char *type, const char *val)
{
    if (!strcmp(type, "role")) return !strcmp(val, "adminUser") ? u->admin : !u->anonymous;
    if (u->anonymous) return 0;
    json_t *arr = json_array();
    split_names(arr, val, c, !strcmp(type, "group"));
    int found = 0;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) found |= !strcmp(json_string_value(v), u->username);
    json_decref(arr);
    return found;
}

int eng_whitelist_ok(dbconn *c, const user_t *u, const char *pdef)
{
    char *d = xstrdup(pdef);
    char *h1 = strchr(d, '#'), *h2 = h1 ? strchr(h1 + 1, '#') : NULL;
    if (!h1 || !h2 || strchr(h2 + 1, '#')) { free(d); return 1; } /* Joget skips the check unless the id has 3 parts */
    *h1 = 0; *h2 = 0;
    const char *p[3] = {d, h1 + 1, h2 + 1};
    int ok = 1;
    /* a version that is not a number as PostgreSQL prints one matches no package (no check) */
    char app_[512], ver_[32], pd_[600];
    snprintf(pd_, sizeof pd_, "%s#%s", d, h1 + 1);
    int num = pdef_split(pd_, app_, sizeof app_, ver_, sizeof ver_) == 0;
    dbres *r = !num ? NULL : db_query(c, "SELECT a.published FROM app_package p JOIN app_app a ON a.appid=p.appid"
                                       " AND a.appversion=p.appversion WHERE p.packageid=$1 AND p.packageversion=$2::bigint", 2, p);
    if (r && db_nrows(r) == 1) {
        if (!db_bool(db_get(r, 0, 0))) ok = u->admin;
        else {
            dbres *w = db_query(c, "SELECT type, value FROM app_package_participant WHERE packageid=$1 AND packageversion=$2::bigint"
                                 " AND processdefid=$3 AND participantid='processStartWhiteList'", 3, p);
            if (w && db_nrows(w) == 1) ok = user_in_list(c, u, db_get(w, 0, 0), db_get(w, 0, 1));
            db_free(w);
        }
    }
    db_free(r);
    free(d);
    return ok;
}

void eng_process_start(dbconn *c, const user_t *u, const char *pdef, const char *record, json_t *vars, start_res *res)
{
    memset(res, 0, sizeof *res);
    if (!eng_whitelist_ok(c, u, pdef)) return;
    const proc_t *p = proc_find(pdef);
    if (!p) return;
    ictx x;
    if (create_instance(c, p, u->anonymous ? "roleAnonymous" : u->username, NULL, NULL, &x) < 0) { res->sql_error = 1; return; }
    x.u = u;
    const char *k;
    json_t *v;
    json_object_foreach(vars, k, v) {
        int rc = var_write(&x, k, json_string_value(v), 1);
        if (rc == -1) { res->sql_error = 1; return; }
        if (rc == -2) { res->leave_commit = 1; return; } /* instance created but never started */
    }
    char parent[512];
    if (record && *record) snprintf(parent, sizeof parent, "%s", record);
    else {
        char *sp = db_setting(c, "startProcessId");
        if (sp && !strcmp(sp, "processId")) snprintf(parent, sizeof parent, "%s", x.pid);
        else { char uu[37]; gen_uuid(uu); snprintf(parent, sizeof parent, "%s", uu); }
        free(sp);
    }
    if (strcmp(parent, x.pid) && link_instance(&x, parent) < 0) { res->sql_error = 1; return; }
    if (start_instance_path(&x) < 0) { res->sql_error = 1; return; }
    res->ok = 1;
    snprintf(res->pid, sizeof res->pid, "%s", x.pid);
    snprintf(res->record, sizeof res->record, "%s", parent);
}

static int abort_open(ictx *x, const char *actdef)
{
    const char *p[2] = {x->poid, actdef};
    char now[32];
    ll(now, (long long)now_ms());
    const char *q[3] = {x->poid, actdef, now};
    if (db_exec(x->c, "DELETE FROM SHKAssignmentsTable WHERE activity IN (SELECT oid FROM SHKActivities WHERE process=$1::numeric"
                      " AND state IN (1000001,1000003) AND ($2::text IS NULL OR activitydefinitionid=$2))", 2, p) < 0) return -1;
    if (db_exec(x->c, "DELETE FROM SHKDeadlines WHERE activity IN (SELECT oid FROM SHKActivities WHERE process=$1::numeric"
                      " AND state IN (1000001,1000003) AND ($2::text IS NULL OR activitydefinitionid=$2))", 2, p) < 0) return -1;
    return db_exec(x->c, "UPDATE SHKActivities SET state=1000011, laststatetime=$3::bigint, version=version+1"
                         " WHERE process=$1::numeric AND state IN (1000001,1000003) AND ($2::text IS NULL OR activitydefinitionid=$2)",
                   3, q);
}

int eng_activity_start(dbconn *c, const user_t *u, const char *pid, const char *actdef, int abort_current)
{
    if (!pid || !*pid || !actdef || !*actdef) return 0;
    ictx x;
    int st;
    if (load_inst(c, pid, &x, &st) < 0 || st >= PS_COMPLETED) return 0;
    x.u = u;
    int ai = proc_act(x.p, actdef);
    if (ai < 0) return 0;
    if (abort_current && abort_open(&x, NULL) < 0) return -1;
    wlist w = {0};
    wl_push(&w, ai, -1, 0);
    int rc = run(&x, &w);
    free(w.v);
    if (rc < 0) return -1;
    if (check_finish(&x) < 0) return -1;
    return 1;
}

int eng_activity_abort(dbconn *c, const char *pid, const char *actdef)
{
    ictx x;
    if (load_inst(c, pid, &x, NULL) < 0) return 0;
    return abort_open(&x, actdef) < 0 ? -1 : 1;
}

int eng_process_abort(dbconn *c, const char *pid)
{
    ictx x;
    int st;
    if (load_inst(c, pid, &x, &st) < 0 || st >= PS_COMPLETED) return 0;
    return close_process(&x, PS_ABORTED) < 0 ? -1 : 1;
}

static int find_assignment(dbconn *c, const user_t *u, const char *actid, char *pid, size_t pn, char aoid[32], int *accepted, char *adef, size_t an)
{
    const char *p[2] = {actid, u->username};
    dbres *r = db_query(c, "SELECT a.processid, a.oid, s.isaccepted, a.activitydefinitionid FROM SHKActivities a"
                         " JOIN SHKAssignmentsTable s ON s.activity=a.oid WHERE a.id=$1 AND s.resourceid=$2 AND s.isvalid"
                         " AND a.state IN (1000001,1000003)", 2, p);
    int found = r && db_nrows(r) >= 1;
    if (found) {
        snprintf(pid, pn, "%s", db_get(r, 0, 0));
        snprintf(aoid, 32, "%s", db_get(r, 0, 1));
        *accepted = db_bool(db_get(r, 0, 2));
        snprintf(adef, an, "%s", db_get(r, 0, 3));
    }
    db_free(r);
    return found;
}

int eng_assignment_accept(dbconn *c, const user_t *u, const char *actid)
{
    if (u->anonymous) return 0;
    char pid[256], aoid[32], adef[256];
    int acc;
    if (!find_assignment(c, u, actid, pid, sizeof pid, aoid, &acc, adef, sizeof adef)) return 0;
    ictx x;
    if (load_inst(c, pid, &x, NULL) < 0) return 0;
    /* re-check under the instance lock: another request may have completed it meanwhile */
    if (!find_assignment(c, u, actid, pid, sizeof pid, aoid, &acc, adef, sizeof adef)) return 0;
    const char *p[2] = {aoid, u->username};
    if (db_exec(c, "UPDATE SHKAssignmentsTable SET isaccepted = (resourceid=$2), isvalid = (resourceid=$2), version=version+1"
                   " WHERE activity=$1::numeric", 2, p) < 0) return -1;
    char now[32];
    ll(now, (long long)now_ms());
    const char *q[2] = {aoid, now};
    if (db_exec(c, "UPDATE SHKActivities SET state=1000001, accepted=COALESCE(accepted,$2::bigint), acceptedtzo=0,"
                   " laststatetime=$2::bigint WHERE oid=$1::numeric", 2, q) < 0) return -1;
    return 1;
}

int eng_assignment_complete(dbconn *c, const user_t *u, const char *actid, json_t *vars)
{
    if (u->anonymous) return 0;
    char pid[256], aoid[32], adef[256];
    int acc;
    if (!find_assignment(c, u, actid, pid, sizeof pid, aoid, &acc, adef, sizeof adef)) return 0;
    ictx x;
    if (load_inst(c, pid, &x, NULL) < 0) return 0;
    if (!find_assignment(c, u, actid, pid, sizeof pid, aoid, &acc, adef, sizeof adef)) return 0; /* under the lock */
    x.u = u;
    const char *k;
    json_t *v;
    json_object_foreach(vars, k, v) if (var_write(&x, k, json_string_value(v), 0) == -1) return -1;
    const char *p[1] = {aoid};
    if (db_exec(c, "DELETE FROM SHKAssignmentsTable WHERE activity=$1::numeric", 1, p) < 0) return -1;
    if (set_act_state(&x, aoid, AS_COMPLETED, u->username) < 0) return -1;
    int ai = proc_act(x.p, adef);
    if (ai < 0) return -1;
    wlist w = {0};
    follow(&x, ai, aoid, &w);
    int rc = run(&x, &w);
    free(w.v);
    if (rc < 0 || check_finish(&x) < 0) return -1;
    return 1;
}

int eng_reassign(dbconn *c, const char *actid, const char *username, const char *replace)
{
    const char *p[1] = {actid};
    dbres *r = db_query(c, "SELECT oid, processid, pdefname FROM SHKActivities WHERE id=$1", 1, p);
    if (!r || db_nrows(r) != 1) { db_free(r); return 0; }
    char aoid[32], roid[32], pid[256], pdef[512];
    snprintf(aoid, sizeof aoid, "%s", db_get(r, 0, 0));
    snprintf(pid, sizeof pid, "%s", db_get(r, 0, 1));
    snprintf(pdef, sizeof pdef, "%s", db_get(r, 0, 2));
    db_free(r);
    if (resource_oid(c, username, roid) < 0) return -1;
    const char *q[4] = {aoid, replace, username, roid};
    if (db_exec(c, "DELETE FROM SHKAssignmentsTable WHERE activity=$1::numeric AND resourceid=$3 AND $2::text <> $3", 3, q) < 0)
        return -1;
    r = db_query(c, "UPDATE SHKAssignmentsTable SET resourceid=$3, theresource=$4::numeric, isaccepted=false, isvalid=true,"
               " version=version+1 WHERE activity=$1::numeric AND resourceid=$2", 4, q);
    if (!r) { db_free(r); return -1; }
    int moved = (int)db_affected(r);
    db_free(r);
    if (db_exec(c, "UPDATE SHKActivities SET state=1000003 WHERE oid=$1::numeric AND state=1000001 AND NOT EXISTS"
                   " (SELECT 1 FROM SHKAssignmentsTable WHERE activity=$1::numeric AND isaccepted)", 1, q) < 0)
        return -1;
    if (moved && audit_wanted(c, pdef)) audit_add("assignmentReassign", actid, pid, username);
    return 1;
}
