/* Fixture loader: one JSON file -> Joget tables (bulk rows with COPY). Format: README.md. */
#define _GNU_SOURCE
#include "emu.h"
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static const char *g_file;
static char g_err[1024];
#define FERR(...) do { snprintf(g_err, sizeof g_err, __VA_ARGS__); goto fail; } while (0)

static const char *js(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

/* scalar json -> malloc'ed text (NULL for null/absent) */
static char *jtext(json_t *v)
{
    char b[64];
    if (json_is_string(v)) return xstrdup(json_string_value(v));
    if (json_is_integer(v)) { snprintf(b, sizeof b, "%lld", (long long)json_integer_value(v)); return xstrdup(b); }
    if (json_is_real(v)) { fmt_double(json_real_value(v), b, sizeof b); return xstrdup(b); }
    if (json_is_boolean(v)) return xstrdup(json_is_true(v) ? "true" : "false");
    return NULL;
}

static int exec_p(dbconn *c, const char *sql, int n, const char *const *p)
{
    if (db_exec(c, sql, n, p) < 0) { snprintf(g_err, sizeof g_err, "database refused: %.120s", sql); return -1; }
    return 0;
}

static int mkdirs(const char *path)
{
    char *d = xstrdup(path);
    for (char *s = d + 1; *s; s++)
        if (*s == '/') { *s = 0; mkdir(d, 0755); *s = '/'; }
    int rc = mkdir(d, 0755);
    free(d);
    return (rc == 0 || errno == EEXIST) ? 0 : -1;
}

/* app_fd_<table> with the given field columns (c_<field>), created or extended lazily as Hibernate does */
static int ensure_fd_table(dbconn *c, const char *table, json_t *fields)
{
    char t[600];
    db_fd_name("app_fd_", table, t, sizeof t);
    size_t n = json_array_size(fields);
    char (*names)[600] = calloc(n + 1, sizeof *names);
    const char **cols = calloc(n + 1, sizeof *cols);
    size_t i;
    json_t *f;
    json_array_foreach(fields, i, f) {
        db_fd_name("c_", json_string_value(f), names[i], sizeof names[i]);
        cols[i] = names[i];
    }
    int rc = db_fd_ensure(c, t, cols, (int)n);
    free(cols);
    free(names);
    return rc;
}

/* ---------- participants -> app_package_participant (type, value) ---------- */
static int participant_row(json_t *pm, char **type, char **value)
{
    const char *t = js(pm, "type");
    if (!t) return -1;
    *value = NULL;
    if (!strcmp(t, "requester")) { *type = xstrdup("requester"); *value = xstrdup("runProcess"); }
    else if (!strcmp(t, "performer")) {
        if (!js(pm, "activity")) return -1;
        *type = xstrdup("requester");
        *value = xstrdup(js(pm, "activity"));
    } else if (!strcmp(t, "user") || !strcmp(t, "group")) {
        json_t *list = json_object_get(pm, !strcmp(t, "user") ? "users" : "groups");
        sbuf b;
        sb_init(&b);
        if (json_is_array(list)) {
            size_t i;
            json_t *v;
            json_array_foreach(list, i, v) { if (i) sb_addc(&b, ';'); sb_add(&b, nz(json_string_value(v))); }
        } else if (js(pm, "value")) sb_add(&b, js(pm, "value"));
        else return -1;
        *type = xstrdup(t);
        *value = sb_steal(&b);
    } else if (!strcmp(t, "role")) {
        *type = xstrdup("role");
        *value = xstrdup(js(pm, "value") ? js(pm, "value") : "loggedInUser");
    } else return -1;
    return 0;
}

static int load_app(dbconn *c, json_t *app, int ai)
{
    const char *id = js(app, "id");
    json_t *jv = json_object_get(app, "version");
    if (!id || !*id) FERR("apps[%d].id: missing", ai);
    if (sfa_bad(id) || strchr(id, '#') || strchr(id, ':')) FERR("apps[%d].id: '%s' is not a valid app id", ai, id);
    if (jv && !json_is_integer(jv)) FERR("apps[%d].version: must be an integer", ai);
    long ver = jv ? (long)json_integer_value(jv) : 1;
    json_t *jp = json_object_get(app, "packageVersion");
    if (jp && !json_is_integer(jp)) FERR("apps[%d].packageVersion: must be an integer", ai);
    long pver = jp ? (long)json_integer_value(jp) : ver;
    char vs[32], ps[32];
    snprintf(vs, sizeof vs, "%ld", ver);
    snprintf(ps, sizeof ps, "%ld", pver);
    const char *name = js(app, "name") ? js(app, "name") : id;
    const char *pub = json_is_true(json_object_get(app, "published")) ? "true" : "false";
    const char *p[5] = {id, vs, name, pub, ps};
    if (exec_p(c, sqlq(Q_APP_UPSERT), 4, p) < 0) goto fail;
    const char *pp[4] = {id, ps, name, vs};
    if (exec_p(c, sqlq(Q_PACKAGE_UPSERT), 4, pp) < 0) goto fail;
    size_t i;
    json_t *f;
    json_t *dps = json_object_get(app, "defaultPlugins");
    if (dps && !json_is_array(dps)) FERR("apps[%d].defaultPlugins: must be an array", ai);
    json_array_foreach(dps, i, f) {
        const char *did = js(f, "id"), *pn = js(f, "pluginName");
        if (!did || !*did) FERR("apps[%d].defaultPlugins[%zu].id: missing", ai, i);
        if (!pn || !*pn) FERR("apps[%d].defaultPlugins[%zu].pluginName: missing (a plugin class name)", ai, i);
        json_t *props = json_object_get(f, "properties");
        if (props && !json_is_object(props)) FERR("apps[%d].defaultPlugins[%zu].properties: must be an object", ai, i);
        char *pj = props ? json_dumps(props, JSON_COMPACT) : xstrdup("{}");
        const char *q[5] = {id, vs, did, pn, pj};
        const char *desc = js(f, "description");
        const char *q6[6] = {q[0], q[1], q[2], q[3], desc, q[4]};
        int rc = exec_p(c, sqlq(Q_PLUGIN_DEFAULT_UPSERT), 6, q6);
        free(pj);
        if (rc < 0) goto fail;
    }
    json_array_foreach(json_object_get(app, "forms"), i, f) {
        const char *fid = js(f, "id"), *tbl = js(f, "table") ? js(f, "table") : fid;
        if (!ident_ok(fid)) FERR("apps[%d].forms[%zu].id: missing or not [A-Za-z0-9_]", ai, i);
        if (!ident_ok(tbl)) FERR("apps[%d].forms[%zu].table: not [A-Za-z0-9_]", ai, i);
        json_t *fields = json_object_get(f, "fields");
        size_t k;
        json_t *fv;
        json_array_foreach(fields, k, fv) if (!ident_ok(json_string_value(fv)))
            FERR("apps[%d].forms[%zu].fields[%zu]: field ids must be [A-Za-z0-9_]", ai, i, k);
        char *fj = json_dumps(f, JSON_COMPACT);
        const char *q[5] = {id, vs, fid, tbl, fj};
        int rc = exec_p(c, sqlq(Q_FORM_INSERT), 5, q);
        free(fj);
        if (rc < 0 || ensure_fd_table(c, tbl, fields) < 0) FERR("apps[%d].forms[%zu]: cannot create table app_fd_%s", ai, i, tbl);
    }
    json_t *pr;
    json_array_foreach(json_object_get(app, "processes"), i, pr) {
        const char *pid = js(pr, "id");
        if (!pid || !*pid || sfa_bad(pid) || strchr(pid, '#'))
            FERR("apps[%d].processes[%zu].id: missing or invalid", ai, i);
        char pdef[800];
        snprintf(pdef, sizeof pdef, "%s#%ld#%s", id, pver, pid);
        proc_t tmp;
        char err[512];
        if (graph_parse(pdef, pr, &tmp, err, sizeof err) < 0) FERR("apps[%d].processes[%zu] (%s).%s", ai, i, pid, err);
        /* sub-flow targets must exist in the same package */
        for (int a = 0; a < tmp.nacts; a++)
            if (tmp.acts[a].subflow) {
                int found = 0;
                size_t k;
                json_t *o;
                json_array_foreach(json_object_get(app, "processes"), k, o) found |= !strcmp(nz(js(o, "id")), tmp.acts[a].subflow);
                if (!found) {
                    snprintf(g_err, sizeof g_err, "apps[%d].processes[%zu].activities[%d].subflow: process '%s' not in app",
                             ai, i, a, tmp.acts[a].subflow);
                    proc_free(&tmp);
                    goto fail;
                }
            }
        proc_free(&tmp);
        char *gj = json_dumps(pr, JSON_COMPACT);
        const char *pname = js(pr, "name") ? js(pr, "name") : pid;
        const char *q[5] = {pdef, id, pid, ps, gj};
        int rc = exec_p(c, sqlq(Q_PROCDEF_INSERT),
                      4, q);
        if (rc == 0)
            rc = exec_p(c, sqlq(Q_GRAPH_UPSERT), 5, q);
        free(gj);
        (void)pname;
        if (rc < 0) goto fail;
        /* tools -> app_package_activity_plugin */
        size_t k;
        json_t *a;
        json_array_foreach(json_object_get(pr, "activities"), k, a) {
            json_t *acts = json_object_get(a, "actions");
            if (!acts) continue;
            if (!json_is_array(acts)) FERR("apps[%d].processes[%zu].activities[%zu].actions: must be an array", ai, i, k);
            size_t m;
            json_t *x;
            json_array_foreach(acts, m, x) {
                const char *t = js(x, "type");
                if (!t || (strcmp(t, "setColumn") && strcmp(t, "setVariable")))
                    FERR("apps[%d].processes[%zu].activities[%zu].actions[%zu].type: must be setColumn or setVariable", ai, i, k, m);
                if (!strcmp(t, "setColumn") && (!ident_ok(js(x, "table")) || !ident_ok(js(x, "column"))))
                    FERR("apps[%d].processes[%zu].activities[%zu].actions[%zu]: setColumn needs table and column ([A-Za-z0-9_])",
                         ai, i, k, m);
                if (!strcmp(t, "setVariable") && !js(x, "variable"))
                    FERR("apps[%d].processes[%zu].activities[%zu].actions[%zu].variable: missing", ai, i, k, m);
            }
            json_t *props = json_pack("{sO}", "actions", acts);
            char *pj = json_dumps(props, JSON_COMPACT);
            json_decref(props);
            const char *q2[5] = {pid, js(a, "id"), id, ps, pj};
            rc = exec_p(c, sqlq(Q_TOOL_PLUGIN_INSERT), 5, q2);
            free(pj);
            if (rc < 0) goto fail;
        }
        /* participants */
        const char *pk;
        json_t *pm;
        json_object_foreach(json_object_get(pr, "participants"), pk, pm) {
            char *type = NULL, *value = NULL;
            if (participant_row(pm, &type, &value) < 0)
                FERR("apps[%d].processes[%zu].participants.%s: needs type requester|performer(+activity)|user(+users)|group(+groups)|role",
                     ai, i, pk);
            const char *q3[6] = {pid, pk, id, ps, type, value};
            rc = exec_p(c, sqlq(Q_PARTICIPANT_INSERT), 6, q3);
            free(type); free(value);
            if (rc < 0) goto fail;
        }
        json_t *wl = json_object_get(pr, "whitelist");
        if (wl) {
            char *type = NULL, *value = NULL;
            if (participant_row(wl, &type, &value) < 0) FERR("apps[%d].processes[%zu].whitelist: bad participant", ai, i);
            const char *q3[6] = {pid, "processStartWhiteList", id, ps, type, value};
            rc = exec_p(c, sqlq(Q_PARTICIPANT_INSERT), 6, q3);
            free(type); free(value);
            if (rc < 0) goto fail;
        }
    }
    return 0;
fail:
    return -1;
}

/* ---------- records and files ---------- */
static int write_file(const char *uploads, const char *table, const char *rid, json_t *f, const char *where)
{
    const char *name = js(f, "name");
    if (!name || !*name || strchr(name, '/') || !strcmp(name, "..") || strchr(name, ';'))
        FERR("%s.name: missing or not a plain file name", where);
    if (!uploads) FERR("%s: upload files need --uploads DIR", where);
    if (strstr(rid, "..") || strchr(rid, '/')) FERR("%s: record id unusable as directory", where);
    char dir[4096], path[4600];
    snprintf(dir, sizeof dir, "%s/app_formuploads/%s/%s", uploads, table, rid);
    if (mkdirs(dir) < 0) FERR("%s: cannot create %s", where, dir);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *fp = fopen(path, "wb");
    if (!fp) FERR("%s: cannot write %s", where, path);
    const char *text = js(f, "text");
    if (text) fputs(text, fp);
    else {
        json_t *sz = json_object_get(f, "size");
        long long n = json_is_integer(sz) ? json_integer_value(sz) : 0;
        char buf[8192];
        unsigned h = 2166136261u;
        for (const char *s = name; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
        for (size_t i = 0; i < sizeof buf; i++) { h = h * 1103515245u + 12345u; buf[i] = (char)(h >> 16); }
        while (n > 0) {
            size_t k = n > (long long)sizeof buf ? sizeof buf : (size_t)n;
            fwrite(buf, 1, k, fp);
            n -= (long long)k;
        }
    }
    if (fclose(fp) != 0) FERR("%s: write error on %s", where, path);
    return 0;
fail:
    return -1;
}

static int load_records(dbconn *c, json_t *recs, const char *uploads)
{
    /* group records by table; a table's column set = union of the keys used */
    json_t *tables = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(recs, i, r) {
        const char *t = js(r, "table"), *id = js(r, "id");
        if (!ident_ok(t)) { json_decref(tables); FERR("records[%zu].table: missing or not [A-Za-z0-9_]", i); }
        if (!id || !*id) { json_decref(tables); FERR("records[%zu].id: missing", i); }
        json_t *tab = json_object_get(tables, t);
        if (!tab) { tab = json_pack("{s[]s{}}", "rows", "cols"); json_object_set_new(tables, t, tab); }
        json_array_append(json_object_get(tab, "rows"), r);
        const char *k;
        json_t *v;
        json_object_foreach(json_object_get(r, "values"), k, v) {
            if (!ident_ok(k)) { json_decref(tables); FERR("records[%zu].values.%s: field ids must be [A-Za-z0-9_]", i, k); }
            json_object_set_new(json_object_get(tab, "cols"), k, json_true());
        }
        json_t *f;
        size_t fi;
        json_array_foreach(json_object_get(r, "files"), fi, f) {
            char where[128];
            snprintf(where, sizeof where, "records[%zu].files[%zu]", i, fi);
            if (js(f, "field") && !ident_ok(js(f, "field"))) { json_decref(tables); FERR("%s.field: not [A-Za-z0-9_]", where); }
            if (js(f, "field")) json_object_set_new(json_object_get(tab, "cols"), js(f, "field"), json_true());
            if (write_file(uploads, t, id, f, where) < 0) { json_decref(tables); return -1; }
        }
    }
    const char *t;
    json_t *tab;
    json_object_foreach(tables, t, tab) {
        json_t *cols = json_object_get(tab, "cols"), *fl = json_array();
        const char *k;
        json_t *v;
        json_object_foreach(cols, k, v) json_array_append_new(fl, json_string(k));
        int rc = ensure_fd_table(c, t, fl);
        sbuf sql;
        sb_init(&sql);
        char tl[600];
        db_fd_name("app_fd_", t, tl, sizeof tl);
        sb_add(&sql, "id, datecreated, datemodified, createdby, createdbyname, modifiedby, modifiedbyname");
        size_t ci;
        json_array_foreach(fl, ci, v) {
            char cn[600];
            db_fd_name("c_", json_string_value(v), cn, sizeof cn);
            sb_printf(&sql, ", %s", cn);
        }
        dbbulk data;
        db_bulk_init(&data, tl, sql.s);
        size_t ncols = 7 + json_array_size(fl);
        const char **vals = calloc(ncols, sizeof *vals);
        char **own = calloc(ncols, sizeof *own);
        json_array_foreach(json_object_get(tab, "rows"), i, r) {
            const char *by = js(r, "createdBy");
            vals[0] = js(r, "id");
            char dc[64], dm[64];
            vals[1] = db_ts(js(r, "dateCreated") ? js(r, "dateCreated") : "2024-01-01 00:00:00+00", dc, sizeof dc);
            vals[2] = js(r, "dateModified") ? db_ts(js(r, "dateModified"), dm, sizeof dm) : vals[1];
            vals[3] = by; vals[4] = by; vals[5] = by; vals[6] = by;
            json_array_foreach(fl, ci, v) {
                const char *field = json_string_value(v);
                own[7 + ci] = jtext(json_object_get(json_object_get(r, "values"), field));
                if (!own[7 + ci]) { /* upload column: ;-joined file names */
                    sbuf fn;
                    sb_init(&fn);
                    size_t fi;
                    json_t *f;
                    json_array_foreach(json_object_get(r, "files"), fi, f)
                        if (js(f, "field") && !strcmp(js(f, "field"), field)) {
                            if (fn.len) sb_addc(&fn, ';');
                            sb_add(&fn, js(f, "name"));
                        }
                    own[7 + ci] = fn.len ? sb_steal(&fn) : NULL;
                    sb_free(&fn);
                }
                vals[7 + ci] = own[7 + ci];
            }
            db_bulk_row(&data, (int)ncols, vals);
            for (size_t z = 7; z < ncols; z++) { free(own[z]); own[z] = NULL; }
        }
        free(vals);
        free(own);
        if (rc == 0) rc = db_bulk_load(c, &data);
        sb_free(&sql);
        db_bulk_free(&data);
        json_decref(fl);
        if (rc < 0) { json_decref(tables); FERR("records: cannot load table app_fd_%s (duplicate id?)", t); }
    }
    json_decref(tables);
    return 0;
fail:
    return -1;
}

/* ---------- running instances ---------- */
typedef struct {
    dbconn *c;
    long long oid, counter;
    dbbulk procs, acts, asg, data, links, res, joins, deadlines;
    json_t *resources; /* username -> oid */
    json_t *pdefs;     /* pdefname -> SHKProcessDefinitions.oid */
    int64_t now;
} iload;

static long long next_oid(iload *L) { return L->oid++; }

static const char *res_oid(iload *L, const char *user, char out[32])
{
    json_t *v = json_object_get(L->resources, user);
    if (!v) {
        dbres *r = db_query(L->c, "SELECT oid FROM SHKResourcesTable WHERE username=$1", 1, &user);
        long long o;
        if (r && db_nrows(r) == 1) o = strtoll(db_get(r, 0, 0), NULL, 10);
        else {
            o = next_oid(L);
            char os[32];
            snprintf(os, sizeof os, "%lld", o);
            const char *row[4] = {user, user, os, "0"};
            db_bulk_row(&L->res, 4, row);
        }
        db_free(r);
        v = json_integer(o);
        json_object_set_new(L->resources, user, v);
    }
    snprintf(out, 32, "%lld", (long long)json_integer_value(v));
    return out;
}

static int var_row(iload *L, const proc_t *p, const char *poid, const char *name, const char *value, const char *where)
{
    const var_t *v = proc_var(p, name);
    if (!v) FERR("%s.variables.%s: process %s declares no such variable", where, name, p->pdefname);
    const char *vch = NULL, *vl = NULL, *vd = NULL, *vb = NULL;
    char tb[8], os[32], cs[32];
    int vt = !strcmp(v->type, "Long") ? VT_LONG : !strcmp(v->type, "Double") ? VT_DOUBLE : !strcmp(v->type, "Boolean") ? VT_BOOLEAN : VT_STRING;
    if (value) {
        char *end;
        if (vt == VT_STRING) vch = value;
        else if (vt == VT_LONG) { strtoll(value, &end, 10); if (!*value || *end) FERR("%s.variables.%s: '%s' is not a Long", where, name, value); vl = value; }
        else if (vt == VT_DOUBLE) { strtod(value, &end); if (!*value || *end) FERR("%s.variables.%s: '%s' is not a Double", where, name, value); vd = value; }
        else {
            if (!str_ieq(value, "true") && !str_ieq(value, "false")) FERR("%s.variables.%s: '%s' is not a Boolean", where, name, value);
            vb = str_ieq(value, "true") ? "1" : "0"; /* booleans as 1/0: PostgreSQL and MariaDB read both */
        }
    }
    snprintf(tb, sizeof tb, "%d", vt);
    snprintf(os, sizeof os, "%lld", next_oid(L));
    snprintf(cs, sizeof cs, "%lld", next_oid(L));
    const char *row[13] = {poid, name, tb, vch, vd, vl, vb, "0", cs, os, "0", NULL, NULL};
    /* columns: process, variabledefinitionid, variabletype, vchar, dbl, long, bool, ordno, cnt, oid, version */
    db_bulk_row(&L->data, 11, row);
    return 0;
fail:
    return -1;
}

/* "arrived": activities completed on a branch into an AND-join that still waits for its other branches. Each entry
   becomes a closed.completed SHKActivities row (performed by "performer") and one SHKAndJoinTable row per AND-join
   that its outgoing transitions lead into. */
static int load_arrived(iload *L, json_t *in, const char *where, const proc_t *p, const char *pid, const char *poid,
                        const char *when)
{
    json_t *arr = json_object_get(in, "arrived");
    if (!arr) return 0;
    if (!json_is_array(arr)) FERR("%s.arrived: must be an array of {\"id\": activity, \"performer\": username}", where);
    char *seen = calloc((size_t)p->nacts * (size_t)p->nacts, 1); /* seen[join * nacts + source] */
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e) {
        char w2[300];
        snprintf(w2, sizeof w2, "%s.arrived[%zu]", where, i);
        const char *adef = js(e, "id"), *who = js(e, "performer");
        int ai = adef ? proc_act(p, adef) : -1;
        if (ai < 0) { free(seen); FERR("%s.id: '%s' is not an activity of %s", w2, nz(adef), p->pdefname); }
        if (!who || !*who) { free(seen); FERR("%s.performer: missing (the username who completed '%s')", w2, adef); }
        if (sfa_bad(who)) { free(seen); FERR("%s.performer: '%s' contains characters Joget rejects", w2, who); }
        const act_t *ad = &p->acts[ai];
        int njoins = 0;
        char aid[800], aoid[32], ro[32];
        snprintf(aid, sizeof aid, "%lld_%s_%s", L->counter++, pid, adef);
        snprintf(aoid, sizeof aoid, "%lld", next_oid(L));
        for (int k = 0; k < ad->nout; k++) {
            int ji = p->tr[ad->out[k]].to;
            const act_t *j = &p->acts[ji];
            if (!j->join_and || j->nin < 2) continue;
            njoins++;
            seen[(size_t)ji * (size_t)p->nacts + (size_t)ai] = 1;
            char cs[32], os[32];
            snprintf(cs, sizeof cs, "%lld", next_oid(L));
            snprintf(os, sizeof os, "%lld", next_oid(L));
            /* process, blockactivity, activitydefinitionid, activity, cnt, oid, version */
            const char *jrow[7] = {poid, NULL, j->id, aoid, cs, os, "0"};
            db_bulk_row(&L->joins, 7, jrow);
        }
        if (!njoins) {
            free(seen);
            FERR("%s.id: no transition of '%s' leads into an AND-join (an activity with \"join\": \"and\" and several"
                 " incoming transitions)", w2, adef);
        }
        res_oid(L, who, ro);
        const char *arow[20] = {aid, adef, poid, p->pdefname, pid, "1000007", ad->performer, ad->name, when, "0",
                                when, "0", when, "0", "0", "0", aoid, "0", who, ro};
        db_bulk_row(&L->acts, 20, arow);
    }
    /* a join whose every branch has arrived would have started already */
    for (int ji = 0; ji < p->nacts; ji++) {
        int have = 0;
        for (int k = 0; k < p->nacts; k++) have += seen[(size_t)ji * (size_t)p->nacts + (size_t)k];
        if (have && have >= proc_join_need(p, &p->acts[ji])) {
            free(seen);
            FERR("%s.arrived: every branch into the AND-join '%s' has arrived, so it would have started; list at least"
                 " one branch under \"activities\" instead", where, p->acts[ji].id);
        }
    }
    free(seen);
    return 0;
fail:
    return -1;
}

static int load_instance(iload *L, json_t *in, const char *where, const char *par_act, const char *par_pid,
                         const char *par_origin, const char *par_requester, const char *par_pdef)
{
    char pdefbuf[800];
    const char *pdef = js(in, "process");
    if (!pdef && par_pdef) pdef = par_pdef;
    if (!pdef) FERR("%s.process: missing (appId:version:processId)", where);
    snprintf(pdefbuf, sizeof pdefbuf, "%s", pdef);
    for (char *q = pdefbuf; *q; q++) if (*q == ':') *q = '#';
    const proc_t *p = proc_find(pdefbuf);
    if (!p) FERR("%s.process: '%s' is not a process of any app in the fixture (appId:packageVersion:processId)", where, pdef);
    const char *req = js(in, "requester") ? js(in, "requester") : par_requester;
    if (!req) FERR("%s.requester: missing", where);
    char pid[600], poid[32], now[32], started[32];
    const char *fixed = js(in, "id");
    if (fixed) {
        if (sfa_bad(fixed)) FERR("%s.id: '%s' contains characters Joget rejects", where, fixed);
        snprintf(pid, sizeof pid, "%s", fixed);
    } else snprintf(pid, sizeof pid, "%lld_%s_%s", L->counter++, p->appid, p->procid);
    snprintf(poid, sizeof poid, "%lld", next_oid(L));
    json_t *jst = json_object_get(in, "startedMs");
    long long st = json_is_integer(jst) ? json_integer_value(jst) : (long long)L->now;
    snprintf(now, sizeof now, "%lld", st);
    snprintf(started, sizeof started, "%lld", st);
    char pdo[32] = "0";
    json_t *cached = json_object_get(L->pdefs, p->pdefname);
    if (cached) snprintf(pdo, sizeof pdo, "%s", json_string_value(cached));
    else {
        dbres *r = db_query(L->c, "SELECT oid FROM SHKProcessDefinitions WHERE name=$1", 1, (const char *const *)&p->pdefname);
        if (r && db_nrows(r) == 1) snprintf(pdo, sizeof pdo, "%s", db_get(r, 0, 0));
        db_free(r);
        json_object_set_new(L->pdefs, p->pdefname, json_string(pdo));
    }
    /* syncversion,id,processdefinition,pdefname,activityrequesterid,activityrequesterprocessid,resourcerequesterid,state,
       priority,name,created,createdtzo,started,startedtzo,laststatetime,laststatetimetzo,limittime,limittimetzo,oid,version */
    const char *prow[20] = {"0", pid, pdo, p->pdefname, par_act, par_pid, req, "1000000", "3", p->name, now, "0", started, "0",
                            now, "0", "0", "0", poid, "0"};
    db_bulk_row(&L->procs, 20, prow);
    /* link */
    const char *rec = js(in, "recordId");
    char origin[600] = "";
    if (par_pid) {
        const char *lrow[3] = {pid, par_pid, par_origin};
        db_bulk_row(&L->links, 3, lrow);
        snprintf(origin, sizeof origin, "%s", par_origin);
    } else if (rec && *rec) {
        if (sfa_bad(rec)) FERR("%s.recordId: '%s' contains characters Joget rejects", where, rec);
        if (strcmp(rec, pid)) {
            const char *lrow[3] = {pid, rec, rec};
            db_bulk_row(&L->links, 3, lrow);
        }
        snprintf(origin, sizeof origin, "%s", rec);
    } else snprintf(origin, sizeof origin, "%s", pid);
    /* variables: declared initial values overridden by the fixture */
    json_t *vars = json_object_get(in, "variables");
    if (vars && !json_is_object(vars)) FERR("%s.variables: must be an object", where);
    const char *k;
    json_t *v;
    json_object_foreach(vars, k, v) if (!proc_var(p, k)) FERR("%s.variables.%s: process %s declares no such variable", where, k, p->pdefname);
    for (int i = 0; i < p->nvars; i++) {
        json_t *jv = json_object_get(vars, p->vars[i].id);
        char *val = jv ? jtext(jv) : (p->vars[i].initial ? xstrdup(p->vars[i].initial) : NULL);
        int rc = var_row(L, p, poid, p->vars[i].id, val, where);
        free(val);
        if (rc < 0) return -1;
    }
    if (load_arrived(L, in, where, p, pid, poid, now) < 0) return -1;
    /* open activities */
    json_t *acts = json_object_get(in, "activities");
    if (!json_is_array(acts) || !json_array_size(acts)) FERR("%s.activities: a running instance needs at least one open activity", where);
    size_t i;
    json_t *a;
    json_array_foreach(acts, i, a) {
        char w2[300];
        snprintf(w2, sizeof w2, "%s.activities[%zu]", where, i);
        const char *adef = js(a, "id");
        int ai = adef ? proc_act(p, adef) : -1;
        if (ai < 0) FERR("%s.id: '%s' is not an activity of %s", w2, nz(adef), p->pdefname);
        const act_t *ad = &p->acts[ai];
        if (!strcmp(ad->type, "tool") || !strcmp(ad->type, "route"))
            FERR("%s.id: '%s' is a %s activity; instances can only wait at manual or sub-flow activities", w2, adef, ad->type);
        char aid[800], aoid[32];
        snprintf(aid, sizeof aid, "%lld_%s_%s", L->counter++, pid, adef);
        snprintf(aoid, sizeof aoid, "%lld", next_oid(L));
        int accepted = json_is_true(json_object_get(a, "accepted"));
        int sub = !strcmp(ad->type, "subflow");
        const char *state = (sub || accepted) ? "1000001" : "1000003";
        json_t *jl = json_object_get(a, "limit_ms");
        if (jl && (!json_is_integer(jl) || json_integer_value(jl) < 0))
            FERR("%s.limit_ms: must be a non-negative integer (milliseconds)", w2);
        long long lim = jl ? (long long)json_integer_value(jl) : ad->deadline_ms;
        char limit[32] = "0";
        if (lim > 0) {
            snprintf(limit, sizeof limit, "%lld", st + lim);
            char cs[32], os[32];
            snprintf(cs, sizeof cs, "%lld", next_oid(L));
            snprintf(os, sizeof os, "%lld", next_oid(L));
            /* process, activity, cnt, timelimit, timelimittzo, exceptionname, issynchronous, isexecuted, oid, version */
            const char *drow[10] = {poid, aoid, cs, limit, "0", "deadline", "0", "0", os, "0"};
            db_bulk_row(&L->deadlines, 10, drow);
        }
        /* id,activitydefinitionid,process,pdefname,processid,state,performer,name,activated,activatedtzo,accepted,
           acceptedtzo,laststatetime,laststatetimetzo,limittime,limittimetzo,oid,version,resourceid,theresource */
        const char *arow[20] = {aid, adef, poid, p->pdefname, pid, state, ad->performer, ad->name, now, "0",
                                accepted ? now : NULL, accepted ? "0" : NULL, now, "0", limit, "0", aoid, "0", NULL, NULL};
        db_bulk_row(&L->acts, 20, arow);
        if (sub) {
            json_t *kids = json_object_get(a, "children");
            size_t ci;
            json_t *ch;
            char sp[800];
            snprintf(sp, sizeof sp, "%s#%ld#%s", p->appid, p->pkgver, ad->subflow);
            json_array_foreach(kids, ci, ch) {
                char w3[400];
                snprintf(w3, sizeof w3, "%s.children[%zu]", w2, ci);
                if (load_instance(L, ch, w3, aid, pid, origin, req, sp) < 0) return -1;
            }
            continue;
        }
        json_t *as = json_object_get(a, "assignees");
        if (!json_is_array(as) || !json_array_size(as)) FERR("%s.assignees: a waiting manual activity needs assignees", w2);
        size_t ui;
        json_t *u;
        json_array_foreach(as, ui, u) {
            const char *un = json_string_value(u);
            if (!un || !*un) FERR("%s.assignees[%zu]: must be a username", w2, ui);
            char ro[32], cs[32], os[32];
            res_oid(L, un, ro);
            snprintf(cs, sizeof cs, "%lld", next_oid(L));
            snprintf(os, sizeof os, "%lld", next_oid(L));
            const char *srow[11] = {aoid, ro, aid, pid, p->pdefname, un, accepted ? "1" : "0", "1", cs, os, "0"};
            db_bulk_row(&L->asg, 11, srow);
        }
    }
    return 0;
fail:
    return -1;
}

static int load_instances(dbconn *c, json_t *list)
{
    iload L;
    memset(&L, 0, sizeof L);
    L.c = c;
    L.resources = json_object();
    L.pdefs = json_object();
    L.now = now_ms();
    db_bulk_init(&L.res, "SHKResourcesTable", "username, name, oid, version");
    db_bulk_init(&L.procs, "SHKProcesses", "syncversion, id, processdefinition, pdefname, activityrequesterid,"
                 " activityrequesterprocessid, resourcerequesterid, state, priority, name, created, createdtzo, started,"
                 " startedtzo, laststatetime, laststatetimetzo, limittime, limittimetzo, oid, version");
    db_bulk_init(&L.links, "wf_process_link", "processid, parentprocessid, originprocessid");
    db_bulk_init(&L.data, "SHKProcessData", "process, variabledefinitionid, variabletype, variablevaluevchar, variablevaluedbl,"
                 " variablevaluelong, variablevaluebool, ordno, cnt, oid, version");
    db_bulk_init(&L.acts, "SHKActivities", "id, activitydefinitionid, process, pdefname, processid, state, performer, name,"
                 " activated, activatedtzo, accepted, acceptedtzo, laststatetime, laststatetimetzo, limittime, limittimetzo, oid,"
                 " version, resourceid, theresource");
    db_bulk_init(&L.joins, "SHKAndJoinTable", "process, blockactivity, activitydefinitionid, activity, cnt, oid, version");
    db_bulk_init(&L.deadlines, "SHKDeadlines", "process, activity, cnt, timelimit, timelimittzo, exceptionname, issynchronous,"
                 " isexecuted, oid, version");
    db_bulk_init(&L.asg, "SHKAssignmentsTable", "activity, theresource, activityid, activityprocessid, activityprocessdefname,"
                 " resourceid, isaccepted, isvalid, cnt, oid, version");
    L.oid = db_nextval(c, "emu_oid_seq");
    L.counter = db_nextval(c, "emu_counter_seq");
    int rc = -1;
    size_t i;
    json_t *in;
    json_array_foreach(list, i, in) {
        char where[64];
        snprintf(where, sizeof where, "instances[%zu]", i);
        if (load_instance(&L, in, where, NULL, NULL, NULL, NULL, NULL) < 0) goto out;
    }
    if (db_setval(c, "emu_oid_seq", L.oid) < 0 || db_setval(c, "emu_counter_seq", L.counter) < 0 ||
        db_bulk_load(c, &L.res) < 0 || db_bulk_load(c, &L.procs) < 0 || db_bulk_load(c, &L.links) < 0 ||
        db_bulk_load(c, &L.data) < 0 || db_bulk_load(c, &L.acts) < 0 || db_bulk_load(c, &L.joins) < 0 ||
        db_bulk_load(c, &L.deadlines) < 0 || db_bulk_load(c, &L.asg) < 0) {
        snprintf(g_err, sizeof g_err, "instances: database refused the rows (duplicate instance id?)");
        goto out;
    }
    rc = 0;
out:
    db_bulk_free(&L.procs); db_bulk_free(&L.acts); db_bulk_free(&L.asg); db_bulk_free(&L.data); db_bulk_free(&L.links);
    db_bulk_free(&L.res); db_bulk_free(&L.joins); db_bulk_free(&L.deadlines);
    json_decref(L.resources);
    json_decref(L.pdefs);
    return rc;
}

/* ---------- directory, settings ---------- */
static int load_directory(dbconn *c, json_t *root)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(root, "roles"), i, o) {
        const char *p[2] = {js(o, "id"), js(o, "name") ? js(o, "name") : js(o, "id")};
        if (!p[0]) FERR("roles[%zu].id: missing", i);
        if (exec_p(c, sqlq(Q_ROLE_INSERT), 2, p) < 0) goto fail;
    }
    json_array_foreach(json_object_get(root, "groups"), i, o) {
        const char *p[2] = {js(o, "id"), js(o, "name") ? js(o, "name") : js(o, "id")};
        if (!p[0]) FERR("groups[%zu].id: missing", i);
        if (exec_p(c, sqlq(Q_GROUP_INSERT), 2, p) < 0) goto fail;
    }
    json_array_foreach(json_object_get(root, "users"), i, o) {
        const char *un = js(o, "username"), *pw = js(o, "password");
        if (!un || !*un) FERR("users[%zu].username: missing", i);
        char md5[33] = "";
        const char *stored = js(o, "passwordMd5");
        if (!stored) {
            if (!pw) FERR("users[%zu].password: missing (or give passwordMd5)", i);
            md5_hex(pw, strlen(pw), md5, 0);
            stored = md5;
        }
        json_t *ja = json_object_get(o, "active");
        const char *active = (ja && !json_is_true(ja) && !(json_is_integer(ja) && json_integer_value(ja))) ? "0" : "1";
        const char *p[6] = {un, stored, js(o, "firstName") ? js(o, "firstName") : un, nz(js(o, "lastName")),
                            js(o, "email"), active};
        if (exec_p(c, sqlq(Q_USER_UPSERT),
                   6, p) < 0) goto fail;
        if (exec_p(c, sqlq(Q_RESOURCE_INSERT), 1, p) < 0)
            goto fail;
        size_t k;
        json_t *r;
        json_t *roles = json_object_get(o, "roles");
        if (!roles) roles = json_pack("[s]", "ROLE_USER"); else json_incref(roles);
        json_array_foreach(roles, k, r) {
            const char *q[2] = {json_string_value(r), un};
            if (!q[0]) { json_decref(roles); FERR("users[%zu].roles[%zu]: must be a role id", i, k); }
            if (exec_p(c, sqlq(Q_ROLE_SELF_INSERT), 1, q) < 0 ||
                exec_p(c, sqlq(Q_USER_ROLE_INSERT), 2, q) < 0) { json_decref(roles); goto fail; }
        }
        json_decref(roles);
        json_array_foreach(json_object_get(o, "groups"), k, r) {
            const char *q[2] = {json_string_value(r), un};
            if (!q[0]) FERR("users[%zu].groups[%zu]: must be a group id", i, k);
            if (exec_p(c, sqlq(Q_GROUP_SELF_INSERT), 1, q) < 0 ||
                exec_p(c, sqlq(Q_USER_GROUP_INSERT), 2, q) < 0) goto fail;
        }
    }
    const char *k;
    json_object_foreach(json_object_get(root, "settings"), k, o) {
        char *v = jtext(o);
        const char *p[2] = {k, v};
        int rc = exec_p(c, sqlq(Q_SETTING_UPSERT), 2, p);
        free(v);
        if (rc < 0) goto fail;
    }
    return 0;
fail:
    return -1;
}

static const char *KNOWN[] = {"settings", "roles", "groups", "users", "apps", "records", "instances", "description", NULL};

int fixture_load(dbconn *c, const char *file, const char *uploads)
{
    g_file = file;
    g_err[0] = 0;
    json_error_t je;
    json_t *root = json_load_file(file, 0, &je);
    if (!root) {
        fprintf(stderr, "joget-emulator: fixture %s:%d:%d: %s\n", file, je.line, je.column, je.text);
        return -1;
    }
    int rc = -1;
    if (!json_is_object(root)) { snprintf(g_err, sizeof g_err, "top level must be an object"); goto out; }
    const char *k;
    json_t *v;
    json_object_foreach(root, k, v) {
        int ok = 0;
        for (int i = 0; KNOWN[i]; i++) ok |= !strcmp(KNOWN[i], k);
        if (!ok) { snprintf(g_err, sizeof g_err, "%s: unknown key (valid: settings roles groups users apps records instances)", k); goto out; }
    }
    if (db_begin(c) < 0) goto out;
    if (load_directory(c, root) < 0) goto rollback;
    size_t i;
    json_array_foreach(json_object_get(root, "apps"), i, v) if (load_app(c, v, (int)i) < 0) goto rollback;
    if (graphs_load(c) < 0) { snprintf(g_err, sizeof g_err, "cannot read emu_process_graph"); goto rollback; }
    if (load_records(c, json_object_get(root, "records"), uploads) < 0) goto rollback;
    if (load_instances(c, json_object_get(root, "instances")) < 0) goto rollback;
    const char *p[1] = {file};
    if (db_exec(c, sqlq(Q_META_FIXTURE), 1, p) < 0) goto rollback;
    if (db_commit(c) < 0) goto out;
    db_free(db_query(c, sqlq(Q_ANALYZE), 0, NULL)); /* planner statistics for the lists */
    rc = 0;
    goto out;
rollback:
    db_rollback(c);
out:
    if (rc < 0) fprintf(stderr, "joget-emulator: fixture %s: %s\n", file, g_err[0] ? g_err : "load failed");
    json_decref(root);
    return rc;
}
