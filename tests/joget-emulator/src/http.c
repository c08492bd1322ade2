/* HTTP front: libmicrohttpd thread pool, one PostgreSQL connection per worker thread. */
#define _GNU_SOURCE
#include "emu.h"
#include <arpa/inet.h>
#include <ctype.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define PREFIX "/jw/web/json/"
#define MAX_BODY (4 * 1024 * 1024)

static const http_cfg *cfg;
static atomic_ullong req_counter;
static FILE *logf_;
static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static volatile sig_atomic_t stop_flag;

/* ---------- delayed (suspended) connections ----------
 * A request's latency is spent suspended. With --max-inflight N only N requests are inside their latency at
 * once (a server with N busy workers); the others wait, in arrival order, for a slot, and their latency starts
 * when they get one. */
typedef struct delayed {
    struct MHD_Connection *conn;
    int64_t due, ms;
    int slot;                  /* holds one of the --max-inflight slots */
    struct delayed *next;
} delayed;
static pthread_mutex_t dl_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t dl_cv = PTHREAD_COND_INITIALIZER;
static delayed *dl_head;
static delayed *wq_head, *wq_tail; /* waiting for a slot, oldest first */
static int inflight;
static int dl_quit;

static void delay_conn(struct MHD_Connection *conn, int64_t ms)
{
    delayed *d = calloc(1, sizeof *d);
    d->conn = conn;
    d->ms = ms;
    d->slot = cfg->max_inflight > 0;
    MHD_suspend_connection(conn);
    pthread_mutex_lock(&dl_mu);
    if (d->slot && inflight >= cfg->max_inflight) {
        if (wq_tail) wq_tail->next = d; else wq_head = d;
        wq_tail = d;
        pthread_mutex_unlock(&dl_mu);
        return;
    }
    inflight += d->slot;
    d->due = now_ms() + ms + 1; /* never earlier than asked (ms clock truncation) */
    d->next = dl_head;
    dl_head = d;
    pthread_cond_signal(&dl_cv);
    pthread_mutex_unlock(&dl_mu);
}

static void *delay_thread(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&dl_mu);
    for (;;) {
        int64_t now = now_ms(), next = now + 1000;
        for (delayed **pp = &dl_head; *pp;) {
            delayed *d = *pp;
            if (d->due <= now || dl_quit) {
                *pp = d->next;
                MHD_resume_connection(d->conn);
                if (d->slot && wq_head) { /* its slot goes to the oldest waiting request */
                    delayed *w = wq_head;
                    wq_head = w->next;
                    if (!wq_head) wq_tail = NULL;
                    w->due = now + w->ms + 1;
                    w->next = *pp;
                    *pp = w;  /* looked at next: due now when dl_quit, else later */
                } else {
                    inflight -= d->slot;
                }
                free(d);
            } else {
                if (d->due < next) next = d->due;
                pp = &d->next;
            }
        }
        if (dl_quit) break;
        struct timespec ts;
        ts.tv_sec = (time_t)(next / 1000);
        ts.tv_nsec = (long)(next % 1000) * 1000000L;
        /* now_ms() is wall clock; pthread_cond_timedwait uses CLOCK_REALTIME by default */
        pthread_cond_timedwait(&dl_cv, &dl_mu, &ts);
    }
    pthread_mutex_unlock(&dl_mu);
    return NULL;
}

/* ---------- request state ---------- */
enum { FAULT_NONE, FAULT_500, FAULT_RESET, FAULT_TIMEOUT, FAULT_LOST, FAULT_PARTIAL, FAULT_TWICE };
typedef struct { char *k, *v; } kv;
typedef struct {
    sbuf body;
    int delayed_done;
    int fault; /* FAULT_* */
    int discard; /* 'twice': the answer being built is not sent */
    int64_t t0;
    kv *p;
    int np, cap;
    user_t user;
    const char *method;
} req_t;

static void p_add(req_t *r, const char *k, const char *v)
{
    if (r->np == r->cap) { r->cap = r->cap ? r->cap * 2 : 16; r->p = realloc(r->p, sizeof *r->p * (size_t)r->cap); }
    r->p[r->np].k = xstrdup(k);
    r->p[r->np].v = xstrdup(v);
    r->np++;
}
static const char *P(req_t *r, const char *k)
{
    for (int i = 0; i < r->np; i++) if (!strcmp(r->p[i].k, k)) return r->p[i].v;
    return NULL;
}
static void p_set(req_t *r, const char *k, const char *v) /* path values override query and body values, as in Joget */
{
    for (int i = 0; i < r->np; i++)
        if (!strcmp(r->p[i].k, k)) { free(r->p[i].v); r->p[i].v = xstrdup(v); return; }
    p_add(r, k, v);
}

static enum MHD_Result arg_it(void *cls, enum MHD_ValueKind kind, const char *k, const char *v)
{
    (void)kind;
    p_add(cls, k, v ? v : "");
    return MHD_YES;
}

static int hexv(int c) { return isdigit(c) ? c - '0' : (tolower(c) >= 'a' && tolower(c) <= 'f') ? tolower(c) - 'a' + 10 : -1; }
static char *url_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1), *d = o;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '+') *d++ = ' ';
        else if (s[i] == '%' && i + 2 < n + 0 + 1 && i + 2 <= n - 1 + 1 && hexv((unsigned char)s[i + 1]) >= 0 &&
                 i + 2 < n && hexv((unsigned char)s[i + 2]) >= 0) {
            *d++ = (char)(hexv((unsigned char)s[i + 1]) * 16 + hexv((unsigned char)s[i + 2]));
            i += 2;
        } else *d++ = s[i];
    }
    *d = 0;
    return o;
}
static void parse_form(req_t *r, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && s[j] != '&') j++;
        size_t e = i;
        while (e < j && s[e] != '=') e++;
        if (j > i) {
            char *k = url_decode(s + i, e - i);
            char *v = e < j ? url_decode(s + e + 1, j - e - 1) : xstrdup("");
            p_add(r, k, v);
            free(k); free(v);
        }
        i = j + 1;
    }
}

/* ---------- responses ---------- */
static void log_line(req_t *r, struct MHD_Connection *c, const char *url, int status)
{
    if (!logf_) return;
    (void)c;
    char ts[64];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%SZ", &tm);
    static const char *fk[] = {"", " fault=500", " fault=reset", " fault=timeout", " fault=lost", " fault=partial",
                               " fault=twice"};
    pthread_mutex_lock(&log_mu);
    /* at=: when the request arrived, in ms since the epoch (per-second request counts, e2e.workers) */
    fprintf(logf_, "%s %s %s %d user=%s %lldms%s at=%lld\n", ts, r->method, url, status,
            r->user.anonymous ? "roleAnonymous" : r->user.username, (long long)(now_ms() - r->t0), fk[r->fault],
            (long long)r->t0);
    fflush(logf_);
    pthread_mutex_unlock(&log_mu);
}

/* 'partial' fault: the body is announced whole (Content-Length) but only its first half is sent, then the
   reader reports an error and libmicrohttpd closes the connection */
typedef struct { char *body; size_t half; } partial_t;
static ssize_t partial_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    partial_t *p = cls;
    if (pos >= p->half) return MHD_CONTENT_READER_END_WITH_ERROR;
    size_t n = p->half - (size_t)pos;
    if (n > max) n = max;
    memcpy(buf, p->body + pos, n);
    return (ssize_t)n;
}
static void partial_free(void *cls)
{
    partial_t *p = cls;
    free(p->body);
    free(p);
}

static enum MHD_Result send_raw(struct MHD_Connection *c, req_t *r, const char *url, int status, const char *ctype,
                                char *body, size_t n, const char *location)
{
    if (r->discard) { /* 'twice': the first execution's answer is dropped, the second one is sent */
        free(body);
        log_line(r, c, url, status);
        return MHD_YES;
    }
    if (r->fault == FAULT_LOST) { /* the work is done and committed; the answer never leaves */
        free(body);
        log_line(r, c, url, status);
        return MHD_NO;
    }
    struct MHD_Response *resp;
    if (r->fault == FAULT_PARTIAL) {
        partial_t *p = malloc(sizeof *p);
        p->body = body;
        p->half = n / 2;
        resp = MHD_create_response_from_callback(n, 4096, partial_read, p, partial_free);
    } else
        resp = MHD_create_response_from_buffer(n, body, MHD_RESPMEM_MUST_FREE);
    if (ctype) MHD_add_response_header(resp, "Content-Type", ctype);
    if (location) MHD_add_response_header(resp, "Location", location);
    enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
    MHD_destroy_response(resp);
    log_line(r, c, url, status);
    return ret;
}

static enum MHD_Result send_json(struct MHD_Connection *c, req_t *r, const char *url, int status, json_t *o)
{
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    const char *cb = P(r, "callback");
    if (cb && *cb) { /* JSONP: callback(json) as application/javascript */
        sbuf b;
        sb_init(&b);
        sb_printf(&b, "%s(%s)", cb, s);
        free(s);
        size_t n = b.len;
        return send_raw(c, r, url, status, "application/javascript;charset=UTF-8", sb_steal(&b), n, NULL);
    }
    return send_raw(c, r, url, status, "application/json;charset=UTF-8", s, strlen(s), NULL);
}

static enum MHD_Result send_error(struct MHD_Connection *c, req_t *r, const char *url, int status, const char *msg)
{
    char d[64], code[16];
    fmt_java_date(now_ms(), d, sizeof d);
    snprintf(code, sizeof code, "%d", status);
    if (status == 500) msg = "System error, please refer to log files"; /* Joget hides the cause of a 500 */
    json_t *o = json_pack("{s{ssssss}}", "error", "code", code, "message", msg, "date", d);
    return send_json(c, r, url, status, o);
}

/* JSONObject.accumulate */
static void acc(json_t *o, const char *k, json_t *v)
{
    if (!v) return;
    json_t *cur = json_object_get(o, k);
    if (!cur) { json_object_set_new(o, k, v); return; }
    if (json_is_array(cur)) { json_array_append_new(cur, v); return; }
    json_t *a = json_array();
    json_array_append(a, cur);
    json_array_append_new(a, v);
    json_object_set_new(o, k, a);
}

/* the package version of a process definition id app#version#process ("" when none) */
static const char *pdef_version(const char *pdef, char *out, size_t n)
{
    const char *h1 = strchr(pdef, '#');
    snprintf(out, n, "%.*s", h1 ? (int)strcspn(h1 + 1, "#") : 0, h1 ? h1 + 1 : "");
    return out;
}

/* ---------- settings cache (per thread, 500 ms) ---------- */
typedef struct {
    int64_t at;
    char wl[2048], ipwl[2048], master_user[256], master_pw[256];
    int has_master;
} settings_t;
static __thread settings_t tl_set;
static settings_t *settings(dbconn *c)
{
    int64_t n = now_ms();
    if (tl_set.at && n - tl_set.at < 500) return &tl_set;
    memset(&tl_set, 0, sizeof tl_set);
    dbres *r = db_query(c, "SELECT property, value FROM wf_setup WHERE property IN ('jsonpWhitelist','jsonpIPWhitelist',"
                           "'masterLoginUsername','masterLoginPassword')", 0, NULL);
    int mu = 0, mp = 0;
    if (r)
        for (int i = 0; i < db_nrows(r); i++) {
            const char *k = db_get(r, i, 0), *v = db_get(r, i, 1);
            if (!strcmp(k, "jsonpWhitelist")) snprintf(tl_set.wl, sizeof tl_set.wl, "%s", v);
            else if (!strcmp(k, "jsonpIPWhitelist")) snprintf(tl_set.ipwl, sizeof tl_set.ipwl, "%s", v);
            else if (!strcmp(k, "masterLoginUsername")) { snprintf(tl_set.master_user, sizeof tl_set.master_user, "%s", v); mu = *v != 0; }
            else if (!strcmp(k, "masterLoginPassword")) { snprintf(tl_set.master_pw, sizeof tl_set.master_pw, "%s", v); mp = *v != 0; }
        }
    db_free(r);
    tl_set.has_master = mu && mp;
    tl_set.at = n;
    return &tl_set;
}

static int in_semilist(const char *list, const char *item)
{
    if (!item || !*item) return 0;
    char *d = xstrdup(list), *save = NULL;
    int found = 0;
    for (char *t = strtok_r(d, ";", &save); t && !found; t = strtok_r(NULL, ";", &save)) {
        while (isspace((unsigned char)*t)) t++;
        char *e = t + strlen(t);
        while (e > t && isspace((unsigned char)e[-1])) *--e = 0;
        found = !strcasecmp(t, item);
    }
    free(d);
    return found;
}

/* Joget's JSON API refuses a request unless its Referer host is the server's own host, is in jsonpWhitelist, or the
   client IP is in jsonpIPWhitelist (either list "*" admits everything) */
static int referer_ok(struct MHD_Connection *c, settings_t *s)
{
    if (!strcmp(s->wl, "*") || !strcmp(s->ipwl, "*")) return 1;
    const char *ref = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Referer");
    char rhost[512] = "", shost[512] = "";
    if (ref) {
        const char *h = strstr(ref, "://");
        h = h ? h + 3 : ref;
        size_t n = strcspn(h, ":/?#");
        snprintf(rhost, sizeof rhost, "%.*s", (int)n, h);
    }
    const char *host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Host");
    if (host) {
        if (host[0] == '[') snprintf(shost, sizeof shost, "%.*s", (int)strcspn(host, "]") + 1, host);
        else snprintf(shost, sizeof shost, "%.*s", (int)strcspn(host, ":"), host);
    }
    if (*rhost && !strcasecmp(rhost, shost)) return 1;
    if (*rhost && in_semilist(s->wl, rhost)) return 1;
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET && *s->ipwl) {
        char ip[64];
        inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)ci->client_addr)->sin_addr, ip, sizeof ip);
        if (in_semilist(s->ipwl, ip)) return 1;
    }
    return 0;
}

/* per-thread cache of successful logins (1 s): keeps authenticated requests off the database */
#define AUTH_CACHE 16
typedef struct { int64_t at; char key[800]; user_t u; } auth_ent;
static __thread auth_ent tl_auth[AUTH_CACHE];
static __thread unsigned tl_auth_next;

/* directory lookup; returns 1 found+credential ok, 0 bad */
static int check_user_db(dbconn *c, const char *username, const char *cred, int check_cred, user_t *u);
static int check_user(dbconn *c, const char *username, const char *cred, int check_cred, user_t *u)
{
    if (!username || !*username || (check_cred && (!cred || strlen(cred) > 512))) return 0;
    char key[800];
    snprintf(key, sizeof key, "%d\x1f%s\x1f%s", check_cred, username, check_cred ? cred : "");
    int64_t n = now_ms();
    for (int i = 0; i < AUTH_CACHE; i++)
        if (tl_auth[i].at && n - tl_auth[i].at < 1000 && !strcmp(tl_auth[i].key, key)) { *u = tl_auth[i].u; return 1; }
    if (!check_user_db(c, username, cred, check_cred, u)) return 0;
    auth_ent *e = &tl_auth[tl_auth_next++ % AUTH_CACHE];
    e->at = n;
    snprintf(e->key, sizeof e->key, "%s", key);
    e->u = *u;
    return 1;
}

static int check_user_db(dbconn *c, const char *username, const char *cred, int check_cred, user_t *u)
{
    const char *p[1] = {username};
    dbres *r = db_query(c, sqlq(Q_USER_ROLES), 1, p);
    int ok = 0;
    if (r && db_nrows(r) == 1 && atoi(db_get(r, 0, 1)) != 0) {
        const char *stored = db_get(r, 0, 0);
        ok = !check_cred;
        if (!ok) {
            char m[33];
            md5_hex(cred, strlen(cred), m, 0);
            ok = !strcasecmp(m, stored);
            if (!ok) { /* login hash: upper-case md5 of "username::<stored md5>" */
                sbuf b;
                sb_init(&b);
                sb_printf(&b, "%s::%s", username, stored);
                md5_hex(b.s, b.len, m, 1);
                sb_free(&b);
                ok = !strcasecmp(m, cred);
            }
        }
        if (ok) {
            memset(u, 0, sizeof *u);
            snprintf(u->username, sizeof u->username, "%s", username);
            char roles[1024];
            snprintf(roles, sizeof roles, ",%s,", db_get(r, 0, 2));
            u->admin = strstr(roles, ",ROLE_ADMIN,") != NULL;
            u->appadmin = strstr(roles, ",ROLE_APPADMIN,") != NULL;
            u->sysadmin = strstr(roles, ",ROLE_SYSADMIN,") != NULL ||
                          (u->admin && atoi(db_get(r, 0, 3)) == 0); /* ROLE_ADMIN counts as SYSADMIN without ROLE_SYSADMIN */
        }
    }
    db_free(r);
    return ok;
}

static int b64val(int ch)
{
    if (ch >= 'A' && ch <= 'Z') return ch - 'A';
    if (ch >= 'a' && ch <= 'z') return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9') return ch - '0' + 52;
    if (ch == '+') return 62;
    if (ch == '/') return 63;
    return -1;
}

/* returns 0 authenticated or anonymous, -1 bad credentials (401) */
static int authenticate(struct MHD_Connection *conn, dbconn *c, req_t *r)
{
    memset(&r->user, 0, sizeof r->user);
    r->user.anonymous = 1;
    snprintf(r->user.username, sizeof r->user.username, "roleAnonymous");
    const char *ju = P(r, "j_username");
    if (ju) {
        const char *pw = P(r, "j_password"), *hash = P(r, "hash"), *login_as = P(r, "loginAs");
        if (login_as) { /* master login: runs as loginAs; a master login that does not match is anonymous */
            settings_t *s = settings(c);
            if (!s->has_master || strcmp(ju, s->master_user)) return 0; /* silently anonymous */
            int ok = 0;
            if (pw && !strcmp(pw, s->master_pw)) ok = 1;
            if (!ok && hash) {
                char m[33], h[33];
                md5_hex(s->master_pw, strlen(s->master_pw), m, 0);
                sbuf b;
                sb_init(&b);
                sb_printf(&b, "%s::%s", s->master_user, m);
                md5_hex(b.s, b.len, h, 1);
                sb_free(&b);
                ok = !strcasecmp(h, hash);
            }
            if (!ok) return 0;
            user_t u;
            if (!check_user(c, login_as, NULL, 0, &u)) return -1; /* unknown loginAs user -> 401 */
            r->user = u;
            return 0;
        }
        user_t u;
        if (!check_user(c, ju, pw ? pw : hash, 1, &u)) return -1;
        r->user = u;
        return 0;
    }
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    if (auth && !strncasecmp(auth, "Basic ", 6)) {
        const char *s = auth + 6;
        char dec[1024];
        size_t n = 0;
        int bits = 0;
        unsigned acc_ = 0;
        for (; *s && n < sizeof dec - 1; s++) {
            int v = b64val((unsigned char)*s);
            if (v < 0) continue;
            acc_ = ((acc_ << 6) | (unsigned)v) & 0xffffffu;
            bits += 6;
            if (bits >= 8) { bits -= 8; dec[n++] = (char)((acc_ >> bits) & 0xff); }
        }
        dec[n] = 0;
        char *colon = strchr(dec, ':');
        if (!colon) return -1;
        *colon = 0;
        user_t u;
        if (!check_user(c, dec, colon + 1, 1, &u)) return -1;
        r->user = u;
    }
    return 0;
}

/* ---------- endpoint helpers ---------- */
typedef struct {
    struct MHD_Connection *c;
    req_t *r;
    const char *url;
    dbconn *db;
} ctx_t;

#define ERR(st, m) send_error(x->c, x->r, x->url, st, m)
#define JSON(o) send_json(x->c, x->r, x->url, 200, o)

static int parse_bool(const char *s, int *out)
{
    if (!s) { *out = -1; return 0; }
    if (!strcasecmp(s, "true") || !strcasecmp(s, "on") || !strcasecmp(s, "yes") || !strcmp(s, "1")) { *out = 1; return 0; }
    if (!strcasecmp(s, "false") || !strcasecmp(s, "off") || !strcasecmp(s, "no") || !strcmp(s, "0") || !*s) { *out = 0; return 0; }
    return -1;
}
static int parse_int(const char *s, long *out, long def)
{
    if (!s || !*s) { *out = def; return 0; }
    char *e;
    long v = strtol(s, &e, 10);
    if (*e) return -1;
    *out = v;
    return 0;
}

static const char *state_name(int oid)
{
    switch (oid) {
    case 1000000: case 1000001: return "open.running";
    case 1000002: case 1000003: return "open.not_running.not_started";
    case 1000004: case 1000005: return "open.not_running.suspended";
    case 1000006: case 1000007: return "closed.completed";
    case 1000008: case 1000009: return "closed.terminated";
    default: return "closed.aborted";
    }
}

static json_t *app_date(const char *ms)
{
    if (!ms || !*ms) return NULL;
    char b[64];
    fmt_app_date(strtoll(ms, NULL, 10), b, sizeof b);
    return json_string(b);
}

static void envelope(json_t *o, long total, const char *start, const char *sort, int desc)
{
    json_object_set_new(o, "total", json_integer(total));
    if (start) json_object_set_new(o, "start", json_integer(strtol(start, NULL, 10)));
    if (sort) json_object_set_new(o, "sort", json_string(sort));
    if (desc >= 0) json_object_set_new(o, "desc", json_boolean(desc));
}

/* ---------- endpoints ---------- */
static enum MHD_Result ep_process_start(ctx_t *x, const char *pdef_url)
{
    const char *rec = P(x->r, "recordId"), *piid = P(x->r, "processInstanceId");
    char *pdef = eng_resolve_pdef(x->db, pdef_url);
    if (sfa_bad(pdef) || sfa_bad(rec) || sfa_bad(piid)) { free(pdef); return ERR(500, ""); }
    json_t *vars = json_object();
    for (int i = 0; i < x->r->np; i++) {
        const char *k = x->r->p[i].k;
        if (strncmp(k, "var_", 4)) continue;
        sbuf b; /* Joget removes every "var_" in the name, not just the prefix */
        sb_init(&b);
        for (const char *s = k; *s;) {
            if (!strncmp(s, "var_", 4)) s += 4;
            else sb_addc(&b, *s++);
        }
        char *name = sb_steal(&b);
        if (!json_object_get(vars, name)) json_object_set_new(vars, name, json_string(x->r->p[i].v));
        free(name);
    }
    start_res res;
    if (db_begin(x->db) < 0) { json_decref(vars); free(pdef); return ERR(500, ""); }
    eng_process_start(x->db, &x->r->user, pdef, rec, vars, &res);
    if (res.ok || res.leave_commit) { if (db_commit(x->db) < 0) res.ok = 0; }
    else db_rollback(x->db);
    json_decref(vars);
    free(pdef);
    json_t *o = json_object();
    if (res.ok) json_object_set_new(o, "recordId", json_string(res.record));
    json_object_set_new(o, "processId", json_string(res.ok ? res.pid : ""));
    json_object_set_new(o, "activityId", json_string(""));
    return JSON(o);
}


static int tx(ctx_t *x, int (*fn)(ctx_t *, void *), void *arg)
{
    if (db_begin(x->db) < 0) return -1;
    int rc = fn(x, arg);
    if (rc < 0) { db_rollback(x->db); return rc; }
    if (db_commit(x->db) < 0) return -1;
    return rc;
}

struct act_args { const char *pid, *adef; int abort; };
static int do_act_start(ctx_t *x, void *a_) { struct act_args *a = a_; return eng_activity_start(x->db, &x->r->user, a->pid, a->adef, a->abort); }
static int do_act_abort(ctx_t *x, void *a_) { struct act_args *a = a_; return eng_activity_abort(x->db, a->pid, a->adef); }
static int do_proc_abort(ctx_t *x, void *a_) { struct act_args *a = a_; return eng_process_abort(x->db, a->pid); }

static enum MHD_Result ep_activity_start(ctx_t *x, const char *pid, const char *adef)
{
    int ab;
    if (parse_bool(P(x->r, "abortCurrent"), &ab) < 0) return ERR(400, "Failed to convert value of type 'java.lang.String' to required type 'java.lang.Boolean'");
    if (sfa_bad(pid) || sfa_bad(adef)) return ERR(500, "");
    struct act_args a = {pid, adef, ab == 1};
    int rc = tx(x, do_act_start, &a);
    return JSON(json_pack("{sssssb}", "processId", pid, "activityDefId", adef, "result", rc == 1));
}

static enum MHD_Result ep_activity_abort(ctx_t *x, const char *pid, const char *adef)
{
    if (sfa_bad(pid) || sfa_bad(adef)) return ERR(500, "");
    struct act_args a = {pid, adef, 0};
    tx(x, do_act_abort, &a);
    return JSON(json_pack("{ssssss}", "processId", pid, "activityDefId", adef, "status", "aborted"));
}

static enum MHD_Result ep_process_abort(ctx_t *x, const char *pid)
{
    if (sfa_bad(pid)) return ERR(500, "");
    struct act_args a = {pid, NULL, 0};
    tx(x, do_proc_abort, &a);
    return JSON(json_pack("{ssss}", "processId", pid, "status", "aborted"));
}

static const char *sort_col(const char *sort, int procs)
{
    if (!sort) return procs ? "p.started" : "a.activated";
    if (!strcmp(sort, "startedTime") || !strcmp(sort, "Started")) return "p.started";
    if (!strcmp(sort, "createdTime") || !strcmp(sort, "Created")) return "p.created";
    if (!strcmp(sort, "id")) return procs ? "p.id" : "a.id";
    if (!strcmp(sort, "name")) return procs ? "p.name" : "a.name";
    if (!strcmp(sort, "requesterId") && procs) return "p.resourcerequesterid";
    return procs ? "p.started" : "a.activated";
}

/* console/monitor/running/list (with_record=1) and monitoring/running/process/list (0) */
static enum MHD_Result ep_running_list(ctx_t *x, int with_record)
{
    const char *sort = P(x->r, "sort");
    int desc;
    long start, rows;
    if (parse_bool(P(x->r, "desc"), &desc) < 0 || parse_int(P(x->r, "start"), &start, 0) < 0 ||
        parse_int(P(x->r, "rows"), &rows, -1) < 0)
        return ERR(400, "Type mismatch");
    if (sort && desc < 0) return ERR(500, ""); /* Joget throws on a sort without desc */
    const char *app = P(x->r, with_record ? "appId" : "packageId");
    const char *pid = P(x->r, "processId"), *pname = P(x->r, "processName"), *ver = P(x->r, "version");
    const char *rec = with_record ? P(x->r, "recordId") : NULL, *req = with_record ? P(x->r, "requester") : NULL;
    if (app && !*app) app = NULL;
    if (pid && !*pid) pid = NULL;
    if (pname && !*pname) pname = NULL;
    if (ver && !*ver) ver = NULL;
    if (rec && !*rec) rec = NULL;
    if (req && !*req) req = NULL;
    /* filters on SHKProcesses only; the link is joined after LIMIT (fast paging on big servers) */
    const char *where = " FROM SHKProcesses p WHERE p.state IN (1000000,1000002,1000004)"
                        " AND ($1::text IS NULL OR p.pdefname LIKE $1 || '#%')"
                        " AND ($2::text IS NULL OR p.id LIKE '%' || $2 || '%')"
                        " AND ($3::text IS NULL OR p.name LIKE '%' || $3 || '%')"
                        " AND ($4::text IS NULL OR p.pdefname LIKE '%#' || $4 || '#%')"
                        " AND ($5::text IS NULL OR p.id LIKE '%' || $5 || '%' OR COALESCE((SELECT originprocessid FROM"
                        " wf_process_link WHERE processid=p.id), p.id) LIKE '%' || $5 || '%')"
                        " AND ($6::text IS NULL OR p.resourcerequesterid = $6)";
    const char *params[6] = {app, pid, pname, ver, rec, req};
    static const char *cols[] = {"p.started", "p.created", "p.id", "p.name", "p.resourcerequesterid"};
    const char *sc = sort_col(sort, 1);
    int ci = 0;
    for (int i = 0; i < 5; i++) if (!strcmp(cols[i], sc)) ci = i;
    int variant = ci * 2 + (desc == 1); /* prepared once per connection: count + 10 sort variants */
    sbuf q;
    sb_init(&q);
    sb_printf(&q, "SELECT count(*)%s", where);
    dbres *r = db_prep_query(x->db, "emu_rl_count", q.s, 6, params);
    if (!r) { sb_free(&q); return ERR(500, ""); }
    long total = atol(db_get(r, 0, 0));
    db_free(r);
    const char *dir = desc == 1 ? "DESC" : "ASC";
    q.len = 0;
    /* due: the earliest deadline of the instance's open activities (the emulator has no process deadlines) */
    sbuf ord;
    sb_init(&ord);
    db_order(&ord, sc, ci >= 2, dir);
    sb_printf(&q, "SELECT p.id, p.name, p.state, p.pdefname, p.started, p.resourcerequesterid,"
                  " COALESCE(l.originprocessid, p.id), (SELECT min(a.limittime) FROM SHKActivities a WHERE a.process=p.oid"
                  " AND a.state IN (1000001,1000003,1000005) AND a.limittime > 0)"
                  " FROM (SELECT p.*%s ORDER BY %s, p.oid %s LIMIT $8::bigint OFFSET $7::bigint)"
                  " p LEFT JOIN wf_process_link l ON l.processid=p.id ORDER BY %s, p.oid %s",
              where, ord.s, dir, ord.s, dir);
    sb_free(&ord);
    char sname[32], offs[32], lim[32];
    snprintf(sname, sizeof sname, "emu_rl_%d", variant); /* prepared once per connection: count + 10 sort variants */
    snprintf(offs, sizeof offs, "%ld", start < 0 ? 0 : start);
    snprintf(lim, sizeof lim, "%ld", rows >= 0 ? rows : 9223372036854775807L);
    const char *p8[8] = {app, pid, pname, ver, rec, req, offs, lim};
    r = db_prep_query(x->db, sname, q.s, 8, p8);
    sb_free(&q);
    if (!r) return ERR(500, "");
    json_t *o = json_object();
    for (int i = 0; i < db_nrows(r); i++) {
        json_t *row = json_object();
        json_object_set_new(row, "id", json_string(db_get(r, i, 0)));
        json_object_set_new(row, "name", json_string(db_get(r, i, 1)));
        json_object_set_new(row, "state", json_string(state_name(atoi(db_get(r, i, 2)))));
        char vb[64];
        json_object_set_new(row, "version", json_string(pdef_version(db_get(r, i, 3), vb, sizeof vb)));
        json_t *d = app_date(db_get(r, i, 4));
        if (d) json_object_set_new(row, "startedTime", d);
        json_object_set_new(row, "requesterId", json_string(db_get(r, i, 5)));
        json_t *due = db_isnull(r, i, 7) ? NULL : app_date(db_get(r, i, 7));
        json_object_set_new(row, "due", due ? due : json_string("-"));
        json_object_set_new(row, "serviceLevelMonitor", json_string("-"));
        if (with_record) json_object_set_new(row, "recordId", json_string(db_get(r, i, 6)));
        acc(o, "data", row);
    }
    db_free(r);
    envelope(o, total, P(x->r, "start"), sort, desc);
    return JSON(o);
}

static enum MHD_Result ep_process_view(ctx_t *x, const char *pid)
{
    if (sfa_bad(pid)) return ERR(500, "");
    const char *p[1] = {pid};
    dbres *r = db_query(x->db, sqlq(Q_PROCESS_VIEW), 1, p);
    if (!r || db_nrows(r) != 1) { /* unknown id -> HTTP 200 with an empty body, as Joget answers */
        db_free(r);
        return send_raw(x->c, x->r, x->url, 200, "application/json;charset=UTF-8", xstrdup(""), 0, NULL);
    }
    const char *pdef = db_get(r, 0, 0);
    char app[512], ver[64];
    snprintf(app, sizeof app, "%.*s", (int)strcspn(pdef, "#"), pdef);
    const char *h1 = strchr(pdef, '#');
    snprintf(ver, sizeof ver, "%.*s", h1 ? (int)strcspn(h1 + 1, "#") : 0, h1 ? h1 + 1 : "");
    const char *st = state_name(atoi(db_get(r, 0, 2)));
    json_t *o = json_object();
    json_object_set_new(o, "processDefId", json_string(pdef));
    json_object_set_new(o, "processId", json_string(pid));
    json_object_set_new(o, "packageId", json_string(app));
    json_object_set_new(o, "packageName", json_string(db_get(r, 0, 6)));
    json_object_set_new(o, "name", json_string(db_get(r, 0, 1)));
    json_object_set_new(o, "version", json_string(ver));
    acc(o, "states", json_string(st));
    json_object_set_new(o, "serviceLevelMonitor", json_string("-"));
    json_object_set_new(o, "requester", json_string(db_get(r, 0, 3)));
    acc(o, "states", json_string(st)); /* Joget accumulates the state twice */
    json_t *d = app_date(db_get(r, 0, 4));
    if (d) json_object_set_new(o, "startedTime", d);
    json_object_set_new(o, "limit", json_string(""));
    json_object_set_new(o, "delay", json_string(""));
    d = app_date(db_get(r, 0, 5));
    if (d) json_object_set_new(o, "finishTime", d);
    db_free(r);
    return JSON(o);
}

static enum MHD_Result ep_activity_list(ctx_t *x)
{
    const char *pid = P(x->r, "processId"), *sort = P(x->r, "sort");
    int desc;
    long start, rows;
    if (parse_bool(P(x->r, "desc"), &desc) < 0 || parse_int(P(x->r, "start"), &start, 0) < 0 ||
        parse_int(P(x->r, "rows"), &rows, 10) < 0) /* rows defaults to 10 in Joget */
        return ERR(400, "Type mismatch");
    if (sfa_bad(pid) || sfa_bad(sort)) return ERR(500, "");
    if (pid && !*pid) pid = NULL;
    int ci = !sort ? 0 : !strcmp(sort, "id") ? 1 : !strcmp(sort, "name") ? 2 : 0;
    static const char *cols[] = {"activated", "id", "name"};
    /* two shapes (one process / all) so that prepared generic plans keep using the processid index */
    const char *base_one = sqlq(Q_ACTLIST_ONE), *base_all = sqlq(Q_ACTLIST_ALL);
    const char *base = pid ? base_one : base_all;
    char offs[32], lim[32], name[48];
    snprintf(offs, sizeof offs, "%ld", start < 0 ? 0 : start);
    snprintf(lim, sizeof lim, "%ld", rows < 0 ? 0 : rows);
    const char *p[3] = {pid, offs, lim};
    const char *const *pp = pid ? p : p + 1;
    sbuf q;
    sb_init(&q);
    sb_printf(&q, "SELECT count(*) FROM (%s) t", base);
    snprintf(name, sizeof name, "emu_al_count_%d", pid != NULL);
    dbres *r = db_prep_query(x->db, name, q.s, pid ? 1 : 0, p);
    if (!r) { db_free(r); sb_free(&q); return ERR(500, ""); }
    long total = atol(db_get(r, 0, 0));
    db_free(r);
    q.len = 0;
    sbuf ord;
    sb_init(&ord);
    db_order(&ord, cols[ci], ci > 0, desc == 1 ? "DESC" : "ASC");
    sb_printf(&ord, ", oid %s, ", desc == 1 ? "DESC" : "ASC");
    db_order(&ord, "id", 1, desc == 1 ? "DESC" : "ASC"); /* archived rows have oid 0: their id breaks the ties */
    sb_printf(&q, "SELECT * FROM (%s) t ORDER BY %s LIMIT $%d::bigint OFFSET $%d::bigint", base, ord.s, pid ? 3 : 2,
              pid ? 2 : 1);
    sb_free(&ord);
    snprintf(name, sizeof name, "emu_al_%d_%d_%d", pid != NULL, ci, desc == 1);
    r = db_prep_query(x->db, name, q.s, pid ? 3 : 2, pp);
    sb_free(&q);
    if (!r) { db_free(r); return ERR(500, ""); }
    json_t *o = json_object();
    for (int i = 0; i < db_nrows(r); i++) {
        json_t *row = json_object();
        json_object_set_new(row, "id", json_string(db_get(r, i, 0)));
        json_object_set_new(row, "name", json_string(db_get(r, i, 1)));
        json_object_set_new(row, "state", json_string(db_get(r, i, 2)));
        json_t *d = app_date(db_get(r, i, 3));
        if (d) json_object_set_new(row, "dateCreated", d);
        json_object_set_new(row, "serviceLevelMonitor", json_string("-"));
        acc(o, "data", row);
    }
    db_free(r);
    envelope(o, total, P(x->r, "start"), sort, desc);
    return JSON(o);
}

static void add_variables(dbconn *db, json_t *o, const char *pid)
{
    const char *p[1] = {pid};
    dbres *r = db_query(db, "SELECT d.variabledefinitionid, d.variabletype, d.variablevaluevchar, d.variablevaluelong,"
                          " d.variablevaluedbl, d.variablevaluebool FROM SHKProcessData d JOIN SHKProcesses p ON p.oid=d.process"
                          " WHERE p.id=$1 ORDER BY d.oid", 1, p);
    if (r)
        for (int i = 0; i < db_nrows(r); i++) {
            int vt = atoi(db_get(r, i, 1));
            int col = vt == VT_LONG ? 3 : vt == VT_DOUBLE ? 4 : vt == VT_BOOLEAN ? 5 : 2;
            char b[64];
            const char *v = "";
            if (!db_isnull(r, i, col)) {
                v = db_get(r, i, col);
                if (vt == VT_DOUBLE) { fmt_double(strtod(v, NULL), b, sizeof b); v = b; }
                else if (vt == VT_BOOLEAN) v = db_bool(v) ? "true" : "false";
            }
            json_t *vo = json_object();
            json_object_set_new(vo, db_get(r, i, 0), json_string(v));
            acc(o, "variable", vo);
        }
    db_free(r);
}

static enum MHD_Result ep_activity_view(ctx_t *x, const char *aid)
{
    if (sfa_bad(aid)) return ERR(500, "");
    const char *p[1] = {aid};
    dbres *r = db_query(x->db, "SELECT a.activitydefinitionid, a.processid, a.pdefname, a.name, a.performer, a.state, a.activated,"
                             " a.resourceid, a.laststatetime, p.name, a.description, a.limittime FROM SHKActivities a"
                             " JOIN SHKProcesses p ON p.oid=a.process WHERE a.id=$1", 1, p);
    if (!r || db_nrows(r) != 1) {
        db_free(r);
        return send_raw(x->c, x->r, x->url, 200, "application/json;charset=UTF-8", xstrdup(""), 0, NULL);
    }
    const char *pdef = db_get(r, 0, 2);
    const char *h1 = strchr(pdef, '#');
    char ver[64], cdate[64];
    snprintf(ver, sizeof ver, "%.*s", h1 ? (int)strcspn(h1 + 1, "#") : 0, h1 ? h1 + 1 : "");
    int st = atoi(db_get(r, 0, 5));
    fmt_java_date(strtoll(db_get(r, 0, 6), NULL, 10), cdate, sizeof cdate);
    json_t *o = json_object();
    json_object_set_new(o, "activityId", json_string(aid));
    json_object_set_new(o, "activityDefId", json_string(db_get(r, 0, 0)));
    json_object_set_new(o, "processId", json_string(db_get(r, 0, 1)));
    json_object_set_new(o, "processDefId", json_string(pdef));
    json_object_set_new(o, "processVersion", json_string(ver));
    json_object_set_new(o, "processName", json_string(db_get(r, 0, 9)));
    json_object_set_new(o, "activityName", json_string(db_get(r, 0, 3)));
    if (!db_isnull(r, 0, 10)) json_object_set_new(o, "description", json_string(db_get(r, 0, 10)));
    if (!db_isnull(r, 0, 4)) json_object_set_new(o, "participant", json_string(db_get(r, 0, 4)));
    if (!db_isnull(r, 0, 7)) json_object_set_new(o, "acceptedUser", json_string(db_get(r, 0, 7)));
    json_object_set_new(o, "serviceLevelMonitor", json_string("-"));
    json_object_set_new(o, "state", json_string(state_name(st)));
    json_object_set_new(o, "createdTime", json_string(cdate));
    json_object_set_new(o, "dateLimit", json_string(""));
    json_object_set_new(o, "delay", json_string(""));
    if (strtoll(db_get(r, 0, 11), NULL, 10) > 0) json_object_set_new(o, "dueDate", app_date(db_get(r, 0, 11)));
    if (st >= AS_COMPLETED) {
        json_t *d = app_date(db_get(r, 0, 8));
        if (d) json_object_set_new(o, "finishTime", d);
    }
    char pid[256];
    snprintf(pid, sizeof pid, "%s", db_get(r, 0, 1));
    db_free(r);
    r = db_query(x->db, "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid=$1 AND isvalid ORDER BY cnt", 1, p);
    if (r)
        for (int i = 0; i < db_nrows(r); i++) acc(o, "assignee", json_string(db_get(r, i, 0)));
    db_free(r);
    add_variables(x->db, o, pid);
    return JSON(o);
}

static enum MHD_Result ep_variable_list(ctx_t *x, const char *pid)
{
    if (sfa_bad(pid)) return ERR(500, "");
    json_t *o = json_object();
    json_object_set_new(o, "processId", json_string(pid));
    add_variables(x->db, o, pid);
    return JSON(o);
}

static enum MHD_Result ep_process_variable(ctx_t *x, const char *pid, const char *var)
{
    if (sfa_bad(pid) || sfa_bad(var)) return ERR(500, "");
    json_t *tmp = json_object();
    add_variables(x->db, tmp, pid);
    json_t *vs = json_object_get(tmp, "variable"), *v = NULL;
    if (json_is_object(vs)) v = json_object_get(vs, var);
    else {
        size_t i;
        json_t *e;
        json_array_foreach(vs, i, e) if (json_object_get(e, var)) v = json_object_get(e, var);
    }
    json_t *o = json_pack("{ss}", "variableValue", v ? json_string_value(v) : "null");
    json_decref(tmp);
    return JSON(o);
}

struct var_args { const char *pid, *var, *value; };
static int do_set_var(ctx_t *x, void *a_) { struct var_args *a = a_; return eng_set_variable(x->db, a->pid, a->var, a->value, 0); }
static enum MHD_Result ep_set_variable(ctx_t *x, const char *pid, const char *var)
{
    const char *value = P(x->r, "value");
    if (!value) return ERR(400, "Required String parameter 'value' is not present");
    if (sfa_bad(pid) || sfa_bad(var)) return ERR(500, "");
    struct var_args a = {pid, var, value};
    tx(x, do_set_var, &a);
    return JSON(json_pack("{ss}", "status", "variableSet"));
}

#define ASG_SELECT \
    "SELECT a.id, a.processid, p.name, a.name, a.pdefname, a.activated, s.isaccepted, a.description," \
    " a.activitydefinitionid, a.pdefname, a.performer, s.resourceid, COALESCE(NULLIF(trim(u.firstname || ' ' || COALESCE(u.lastname,'')),''), s.resourceid)," \
    " a.limittime" \
    " FROM SHKAssignmentsTable s JOIN SHKActivities a ON a.oid=s.activity JOIN SHKProcesses p ON p.oid=a.process" \
    " LEFT JOIN dir_user u ON u.username=s.resourceid WHERE s.resourceid=$1 AND s.isvalid AND a.state IN (1000001,1000003)"

static enum MHD_Result ep_assignment_list(ctx_t *x)
{
    const char *sort = P(x->r, "sort");
    int desc;
    long start, rows;
    if (parse_bool(P(x->r, "desc"), &desc) < 0 || parse_int(P(x->r, "start"), &start, 0) < 0 ||
        parse_int(P(x->r, "rows"), &rows, -1) < 0)
        return ERR(400, "Type mismatch");
    const char *pkg = P(x->r, "packageId"), *pdef = P(x->r, "processDefId"), *pid = P(x->r, "processId");
    if (sfa_bad(pkg) || sfa_bad(pdef) || sfa_bad(pid) || sfa_bad(sort)) return ERR(500, "");
    char *pd = pdef && *pdef ? eng_resolve_pdef(x->db, pdef) : NULL;
    const char *p[4] = {x->r->user.username, pkg && *pkg ? pkg : NULL, pd, pid && *pid ? pid : NULL};
    const char *col = !sort ? "a.activated" : !strcmp(sort, "processName") ? "p.name" : !strcmp(sort, "activityName") ? "a.name" : "a.activated";
    sbuf q;
    sb_init(&q);
    sb_printf(&q, ASG_SELECT " AND ($2::text IS NULL OR a.pdefname LIKE $2 || '#%%') AND ($3::text IS NULL OR a.pdefname=$3)"
                  " AND ($4::text IS NULL OR a.processid=$4) ORDER BY ");
    db_order(&q, col, strcmp(col, "a.activated") != 0, desc == 1 ? "DESC" : "ASC");
    sb_add(&q, ", s.cnt");
    dbres *r = x->r->user.anonymous ? NULL : db_query(x->db, q.s, 4, p);
    sb_free(&q);
    free(pd);
    if (r && !r) { db_free(r); return ERR(500, ""); }
    json_t *o = json_object();
    int n = r ? db_nrows(r) : 0;
    for (int i = (int)(start < 0 ? 0 : start); i < n && (rows < 0 || i < start + rows); i++) {
        json_t *row = json_object();
        json_object_set_new(row, "processId", json_string(db_get(r, i, 1)));
        json_object_set_new(row, "activityId", json_string(db_get(r, i, 0)));
        json_object_set_new(row, "processName", json_string(db_get(r, i, 2)));
        json_object_set_new(row, "activityName", json_string(db_get(r, i, 3)));
        char vb[64];
        json_object_set_new(row, "processVersion", json_string(pdef_version(db_get(r, i, 4), vb, sizeof vb)));
        json_t *d = app_date(db_get(r, i, 5));
        if (d) json_object_set_new(row, "dateCreated", d);
        json_object_set_new(row, "acceptedStatus", json_boolean(db_bool(db_get(r, i, 6))));
        json_t *due = strtoll(db_get(r, i, 13), NULL, 10) > 0 ? app_date(db_get(r, i, 13)) : NULL;
        json_object_set_new(row, "due", due ? due : json_string("-"));
        json_object_set_new(row, "serviceLevelMonitor", json_string("-"));
        json_object_set_new(row, "id", json_string(db_get(r, i, 0)));
        json_object_set_new(row, "label", json_string(db_get(r, i, 3)));
        if (!db_isnull(r, i, 7)) json_object_set_new(row, "description", json_string(db_get(r, i, 7)));
        acc(o, "data", row);
    }
    db_free(r);
    envelope(o, n, P(x->r, "start"), sort, desc);
    return JSON(o);
}

static enum MHD_Result ep_assignment_view(ctx_t *x, const char *aid)
{
    if (sfa_bad(aid)) return ERR(500, "");
    const char *p[2] = {x->r->user.username, aid};
    dbres *r = x->r->user.anonymous ? NULL : db_query(x->db, ASG_SELECT " AND a.id=$2", 2, p);
    if (!r || !r || db_nrows(r) < 1) { db_free(r); return ERR(404, "Assignment does not exist."); }
    json_t *o = json_object();
    json_object_set_new(o, "activityId", json_string(db_get(r, 0, 0)));
    json_object_set_new(o, "activityDefId", json_string(db_get(r, 0, 8)));
    json_object_set_new(o, "processId", json_string(db_get(r, 0, 1)));
    json_object_set_new(o, "processDefId", json_string(db_get(r, 0, 9)));
    char vb[64];
    json_object_set_new(o, "processVersion", json_string(pdef_version(db_get(r, 0, 4), vb, sizeof vb)));
    json_object_set_new(o, "processName", json_string(db_get(r, 0, 2)));
    json_object_set_new(o, "activityName", json_string(db_get(r, 0, 3)));
    if (!db_isnull(r, 0, 7)) json_object_set_new(o, "description", json_string(db_get(r, 0, 7)));
    if (!db_isnull(r, 0, 10)) json_object_set_new(o, "participant", json_string(db_get(r, 0, 10)));
    json_object_set_new(o, "assigneeId", json_string(db_get(r, 0, 11)));
    json_object_set_new(o, "assigneeName", json_string(db_get(r, 0, 12)));
    json_t *d = app_date(db_get(r, 0, 5));
    if (d) json_object_set_new(o, "dateCreated", d);
    char pid[256];
    snprintf(pid, sizeof pid, "%s", db_get(r, 0, 1));
    db_free(r);
    add_variables(x->db, o, pid);
    return JSON(o);
}

struct asg_args { const char *aid; json_t *vars; };
static int do_accept(ctx_t *x, void *a_) { struct asg_args *a = a_; return eng_assignment_accept(x->db, &x->r->user, a->aid); }
static int do_complete(ctx_t *x, void *a_) { struct asg_args *a = a_; return eng_assignment_complete(x->db, &x->r->user, a->aid, a->vars); }

static char *process_of_assignment(ctx_t *x, const char *aid)
{
    const char *p[2] = {x->r->user.username, aid};
    if (x->r->user.anonymous) return NULL;
    dbres *r = db_query(x->db, ASG_SELECT " AND a.id=$2", 2, p);
    char *pid = (r && db_nrows(r) >= 1) ? xstrdup(db_get(r, 0, 1)) : NULL;
    db_free(r);
    return pid;
}

static enum MHD_Result ep_assignment_accept(ctx_t *x, const char *aid)
{
    if (sfa_bad(aid)) return ERR(500, "");
    struct asg_args a = {aid, NULL};
    int rc = tx(x, do_accept, &a);
    if (rc == 0) return ERR(404, "Assignment does not exist.");
    if (rc < 0) return ERR(500, "");
    return JSON(json_pack("{ssss}", "assignment", aid, "status", "accepted"));
}

static enum MHD_Result ep_assignment_complete(ctx_t *x, const char *aid, int with_vars)
{
    if (sfa_bad(aid)) return ERR(500, "");
    char *pid = process_of_assignment(x, aid);
    if (!pid) return ERR(404, "Assignment does not exist.");
    json_t *vars = json_object();
    if (with_vars)
        for (int i = 0; i < x->r->np; i++)
            if (!strncmp(x->r->p[i].k, "var_", 4)) json_object_set_new(vars, x->r->p[i].k + 4, json_string(x->r->p[i].v));
    struct asg_args a = {aid, vars};
    int rc = tx(x, do_complete, &a);
    json_decref(vars);
    if (rc <= 0) { free(pid); return rc == 0 ? ERR(404, "Assignment does not exist.") : ERR(500, ""); }
    json_t *o = json_object();
    if (with_vars) json_object_set_new(o, "assignment", json_string(x->r->user.username));
    json_object_set_new(o, "status", json_string("completed"));
    json_object_set_new(o, "processId", json_string(pid));
    json_object_set_new(o, "activityId", json_string(aid));
    free(pid);
    return JSON(o);
}

struct re_args { const char *aid, *user, *replace; };
static int do_reassign(ctx_t *x, void *a_) { struct re_args *a = a_; return eng_reassign(x->db, a->aid, a->user, a->replace); }
static enum MHD_Result ep_reassign(ctx_t *x)
{
    const char *u = P(x->r, "username"), *ru = P(x->r, "replaceUser"), *aid = P(x->r, "activityId");
    if (!u) return ERR(400, "Required String parameter 'username' is not present");
    if (!ru) return ERR(400, "Required String parameter 'replaceUser' is not present");
    if (!aid) return ERR(400, "Required String parameter 'activityId' is not present");
    if (sfa_bad(u) || sfa_bad(ru) || sfa_bad(aid)) return ERR(500, "");
    struct re_args a = {aid, u, ru};
    int rc = tx(x, do_reassign, &a);
    if (rc == 0) return ERR(404, "Assignment does not exist.");
    if (rc < 0) return ERR(500, "");
    return JSON(json_pack("{ssssss}", "activityId", aid, "username", u, "replaceUser", ru));
}

static enum MHD_Result ep_process_def_list(ctx_t *x)
{
    const char *all = P(x->r, "allVersion"), *pkg = P(x->r, "packageId"), *sort = P(x->r, "sort");
    int desc, cwl;
    long start, rows;
    if (parse_bool(P(x->r, "desc"), &desc) < 0 || parse_int(P(x->r, "start"), &start, 0) < 0 ||
        parse_int(P(x->r, "rows"), &rows, -1) < 0 || parse_bool(P(x->r, "checkWhiteList"), &cwl) < 0)
        return ERR(400, "Type mismatch");
    if (sfa_bad(pkg) || sfa_bad(sort)) return ERR(500, "");
    const char *p[2] = {pkg && *pkg ? pkg : NULL, (all && !strcmp(all, "yes")) ? "1" : NULL};
    const char *col = sort && !strcmp(sort, "name") ? "procname" : sort && !strcmp(sort, "version") ? "packageversion" : "pdefname";
    sbuf q;
    sb_init(&q);
    sb_printf(&q, "SELECT g.pdefname, g.appid, g.packageversion, COALESCE(ap.name, g.appid) AS pkgname, g.processdefid,"
                  " %s AS procname FROM emu_process_graph g"
                  " LEFT JOIN app_package ap ON ap.packageid=g.appid AND ap.packageversion=g.packageversion"
                  " WHERE ($1::text IS NULL OR g.appid=$1) AND ($2::text IS NOT NULL OR g.packageversion ="
                  " (SELECT max(packageversion) FROM app_package WHERE packageid=g.appid)) ORDER BY ",
              sqlq(Q_PROCDEF_NAME));
    db_order(&q, col, strcmp(col, "packageversion") != 0, desc == 1 ? "DESC" : "ASC");
    sb_printf(&q, ", g.pdefname %s", desc == 1 ? "DESC" : "ASC"); /* one name in several versions */
    dbres *r = db_query(x->db, q.s, 2, p);
    sb_free(&q);
    if (!r) { db_free(r); return ERR(500, ""); }
    json_t *o = json_object();
    long n = 0;
    for (int i = 0; i < db_nrows(r); i++) {
        if (cwl == 1 && !eng_whitelist_ok(x->db, &x->r->user, db_get(r, i, 0))) continue;
        n++;
        if (n <= start || (rows >= 0 && n > start + rows)) continue;
        const char *name = db_isnull(r, i, 5) ? db_get(r, i, 4) : db_get(r, i, 5);
        json_t *row = json_object();
        json_object_set_new(row, "id", json_string(db_get(r, i, 0)));
        json_object_set_new(row, "packageId", json_string(db_get(r, i, 1)));
        json_object_set_new(row, "packageName", json_string(db_get(r, i, 3)));
        json_object_set_new(row, "name", json_string(name));
        json_object_set_new(row, "version", json_string(db_get(r, i, 2)));
        char label[600];
        snprintf(label, sizeof label, "%s ver %s", name, db_get(r, i, 2));
        json_object_set_new(row, "label", json_string(label));
        acc(o, "data", row);
    }
    db_free(r);
    envelope(o, n, P(x->r, "start"), sort, desc);
    return JSON(o);
}

static enum MHD_Result ep_process_def_view(ctx_t *x, const char *pdef_url)
{
    char *pdef = eng_resolve_pdef(x->db, pdef_url);
    if (sfa_bad(pdef)) { free(pdef); return ERR(500, ""); }
    const proc_t *p = proc_find(pdef);
    free(pdef);
    if (!p) return JSON(json_object());
    char ver[32];
    snprintf(ver, sizeof ver, "%ld", p->pkgver);
    return JSON(json_pack("{ssssssssss}", "processId", p->pdefname, "packageId", p->appid, "packageName", p->pkgname,
                          "name", p->name, "version", ver));
}

static enum MHD_Result ep_form_load(ctx_t *x, const char *app, const char *form, const char *pk)
{
    const char *p[2] = {app, form};
    dbres *r = db_query(x->db, "SELECT f.tablename FROM app_form f JOIN app_app a ON a.appid=f.appid AND a.appversion=f.appversion"
                             " WHERE f.appid=$1 AND f.formid=$2 AND a.published ORDER BY a.appversion DESC LIMIT 1", 2, p);
    if (!r || db_nrows(r) != 1 || !ident_ok(db_get(r, 0, 0))) { db_free(r); return JSON(json_object()); }
    char tbl[600];
    db_fd_name("app_fd_", db_get(r, 0, 0), tbl, sizeof tbl);
    db_free(r);
    sbuf q;
    sb_init(&q);
    sb_printf(&q, "SELECT * FROM %s WHERE id=$1", tbl);
    const char *pp[1] = {pk};
    r = db_query(x->db, q.s, 1, pp);
    sb_free(&q);
    json_t *o = json_object();
    if (r && db_nrows(r) == 1) {
        for (int i = 0; i < db_ncols(r); i++) {
            if (db_isnull(r, 0, i)) continue;
            const char *fn = db_colname(r, i);
            static const char *meta[][2] = {{"id", "id"}, {"datecreated", "dateCreated"}, {"datemodified", "dateModified"},
                                            {"createdby", "createdBy"}, {"createdbyname", "createdByName"},
                                            {"modifiedby", "modifiedBy"}, {"modifiedbyname", "modifiedByName"}};
            const char *key = NULL;
            for (size_t m = 0; m < sizeof meta / sizeof meta[0]; m++) if (!strcasecmp(fn, meta[m][0])) key = meta[m][1];
            if (!key && !strncasecmp(fn, "c_", 2)) key = fn + 2; /* MariaDB keeps the field id's case, PostgreSQL folds it */
            if (key) json_object_set_new(o, key, json_string(db_get(r, 0, i)));
        }
    }
    db_free(r);
    return JSON(o);
}

/* ---------- routing ---------- */
enum { OPEN, ADMIN, SYSADMIN, DIRADMIN };

static int seg_split(const char *rest, char **segs, int max)
{
    int n = 0;
    const char *s = rest;
    while (*s && n < max) {
        const char *e = strchr(s, '/');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        segs[n++] = strndup(s, len);
        if (!e) break;
        s = e + 1;
    }
    return n;
}

struct route { const char *prefix; int nargs; int auth; int post; int id; };
static const struct route routes[] = {
    {"workflow/process/start/", 1, OPEN, 1, 1},
    {"monitoring/activity/start/", 2, ADMIN, 1, 2},
    {"monitoring/activity/abort/", 2, ADMIN, 1, 3},
    {"workflow/process/abort/", 1, ADMIN, 1, 4},
    {"console/monitor/running/list", 0, SYSADMIN, 0, 5},
    {"monitoring/running/process/list", 0, ADMIN, 0, 6},
    {"monitoring/process/view/", 1, ADMIN, 0, 7},
    {"monitoring/activity/list", 0, ADMIN, 0, 8},
    {"monitoring/activity/view/", 1, ADMIN, 0, 9},
    {"workflow/variable/list/", 1, ADMIN, 0, 10},
    {"workflow/process/variable/", 2, ADMIN, 0, 11},
    {"monitoring/process/variable/", 2, ADMIN, 1, 12},
    {"workflow/assignment/list", 0, OPEN, 0, 13},
    {"workflow/assignment/view/", 1, OPEN, 0, 14},
    {"workflow/assignment/accept/", 1, OPEN, 1, 15},
    {"workflow/assignment/completeWithVariable/", 1, OPEN, 1, 16},
    {"workflow/assignment/complete/", 1, OPEN, 1, 17},
    {"monitoring/activity/reassign", 0, ADMIN, 1, 18},
    {"workflow/process/list", 0, ADMIN, 0, 19},
    {"workflow/process/view/", 1, ADMIN, 0, 20},
    {"workflow/currentUsername", 0, OPEN, 0, 21},
    {"directory/user/sso", 0, OPEN, 0, 22},
    {"data/form/load/", 3, ADMIN, 0, 23},
};

/* the route of path (below /jw/web/json/), NULL when none; *rest = what follows the prefix */
static const struct route *route_find(const char *path, const char **rest)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        size_t n = strlen(routes[i].prefix);
        if (strncmp(path, routes[i].prefix, n)) continue;
        if (routes[i].nargs == 0 && path[n] && strcmp(path + n, "/")) continue;
        if (rest) *rest = path + n;
        return &routes[i];
    }
    return NULL;
}

static enum MHD_Result dispatch(ctx_t *x, const char *path)
{
    const char *rest = NULL;
    const struct route *rt = route_find(path, &rest);
    /* authorization matrix of Joget's API filter: unmatched URLs are admin-only too */
    int need = rt ? rt->auth : (!strncmp(path, "console/", 8) ? SYSADMIN : !strncmp(path, "directory/", 10) ? DIRADMIN : ADMIN);
    user_t *u = &x->r->user;
    if (need != OPEN) {
        if (u->anonymous) {
            char loc[600];
            const char *host = MHD_lookup_connection_value(x->c, MHD_HEADER_KIND, "Host");
            snprintf(loc, sizeof loc, "http://%s/jw/web/login", host ? host : "localhost");
            return send_raw(x->c, x->r, x->url, 302, "text/html", xstrdup(""), 0, loc);
        }
        int ok = need == SYSADMIN ? u->sysadmin : need == DIRADMIN ? (u->sysadmin || u->appadmin) : (u->admin || u->appadmin);
        if (!ok) return ERR(403, "Access is denied");
    }
    if (!rt) return ERR(404, "Not Found");
    if (rt->post && strcmp(x->r->method, "POST")) return ERR(405, "Request method 'GET' not supported");
    char *seg[4] = {0};
    int n = rt->nargs ? seg_split(rest, seg, rt->nargs) : 0;
    enum MHD_Result ret;
    if (n < rt->nargs || (rt->nargs && !*seg[n - 1])) { ret = ERR(404, "Not Found"); goto out; }
    /* path values become request parameters (override) */
    static const char *names[][3] = {
        [1] = {"processDefId"}, [2] = {"processId", "activityDefId"}, [3] = {"processId", "activityDefId"}, [4] = {"processId"},
        [7] = {"processId"}, [9] = {"activityId"}, [10] = {"processId"}, [11] = {"processId", "variable"},
        [12] = {"processId", "variable"}, [14] = {"activityId"}, [15] = {"activityId"}, [16] = {"activityId"},
        [17] = {"activityId"}, [20] = {"processId"}, [23] = {"appId", "formId", "primaryKeyValue"}};
    for (int i = 0; i < n; i++) if (names[rt->id][i]) p_set(x->r, names[rt->id][i], seg[i]);
    switch (rt->id) {
    case 1: ret = ep_process_start(x, seg[0]); break;
    case 2: ret = ep_activity_start(x, seg[0], seg[1]); break;
    case 3: ret = ep_activity_abort(x, seg[0], seg[1]); break;
    case 4: ret = ep_process_abort(x, seg[0]); break;
    case 5: ret = ep_running_list(x, 1); break;
    case 6: ret = ep_running_list(x, 0); break;
    case 7: ret = ep_process_view(x, seg[0]); break;
    case 8: ret = ep_activity_list(x); break;
    case 9: ret = ep_activity_view(x, seg[0]); break;
    case 10: ret = ep_variable_list(x, seg[0]); break;
    case 11: ret = ep_process_variable(x, seg[0], seg[1]); break;
    case 12: ret = ep_set_variable(x, seg[0], seg[1]); break;
    case 13: ret = ep_assignment_list(x); break;
    case 14: ret = ep_assignment_view(x, seg[0]); break;
    case 15: ret = ep_assignment_accept(x, seg[0]); break;
    case 16: ret = ep_assignment_complete(x, seg[0], 1); break;
    case 17: ret = ep_assignment_complete(x, seg[0], 0); break;
    case 18: ret = ep_reassign(x); break;
    case 19: ret = ep_process_def_list(x); break;
    case 20: ret = ep_process_def_view(x, seg[0]); break;
    case 21: ret = JSON(json_pack("{ss}", "username", u->username)); break;
    case 22:
        if (u->anonymous) { ret = ERR(401, "Unauthorized"); break; }
        {
            char tok[37];
            gen_uuid(tok);
            json_t *o = json_pack("{ss}", "username", u->username);
            if (u->admin) json_object_set_new(o, "isAdmin", json_string("true"));
            char t[80];
            snprintf(t, sizeof t, "OWASP_CSRFTOKEN=%s", tok);
            json_object_set_new(o, "token", json_string(t));
            ret = JSON(o);
        }
        break;
    case 23: ret = ep_form_load(x, seg[0], seg[1], seg[2]); break;
    default: ret = ERR(404, "Not Found");
    }
out:
    for (int i = 0; i < 4; i++) free(seg[i]);
    return ret;
}

/* ---------- fault injection ---------- */
static uint64_t mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

/* The k-th request faults iff a hash of (seed, k) is below --fail-rate; its kind is drawn with the same hash among
   the configured kinds that apply to it ('lost' only to state-changing POST calls). */
static int pick_fault(int state_changing)
{
    if (cfg->fail_rate <= 0) return FAULT_NONE;
    uint64_t n = atomic_fetch_add(&req_counter, 1);
    uint64_t h = mix64(cfg->seed * 0x100000001b3ULL + n);
    double u = (double)(h >> 11) / 9007199254740992.0;
    if (u >= cfg->fail_rate) return FAULT_NONE;
    int kinds[6], nk = 0;
    if (cfg->fail_500) kinds[nk++] = FAULT_500;
    if (cfg->fail_reset) kinds[nk++] = FAULT_RESET;
    if (cfg->fail_timeout) kinds[nk++] = FAULT_TIMEOUT;
    if (cfg->fail_lost && state_changing) kinds[nk++] = FAULT_LOST;
    if (cfg->fail_partial) kinds[nk++] = FAULT_PARTIAL;
    if (cfg->fail_twice && state_changing == 2) kinds[nk++] = FAULT_TWICE;
    if (!nk) return FAULT_NONE;
    return kinds[mix64(h) % (uint64_t)nk];
}

/* ---------- MHD callbacks ---------- */
static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                               const char *version, const char *upload, size_t *upload_size, void **con_cls)
{
    (void)cls; (void)version;
    req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof *r);
        r->t0 = now_ms();
        r->method = method;
        sb_init(&r->body);
        *con_cls = r;
        return MHD_YES;
    }
    if (*upload_size) {
        if (r->body.len + *upload_size <= MAX_BODY) sb_addn(&r->body, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    if (!r->delayed_done) {
        r->delayed_done = 1;
        if (strncmp(url, PREFIX, strlen(PREFIX)) == 0) {
            const struct route *rt = route_find(url + strlen(PREFIX), NULL);
            int post = rt && rt->post && !strcmp(method, "POST");
            r->fault = pick_fault(post ? (rt->id == 1 ? 2 : 1) : 0); /* 2: process/start ('twice') */
        }
        if (r->fault == FAULT_RESET) { log_line(r, conn, url, 0); return MHD_NO; } /* close without an answer */
        int64_t delay = cfg->latency_ms;
        if (r->fault == FAULT_TIMEOUT) delay += cfg->timeout_ms > 0 ? cfg->timeout_ms : 24LL * 3600 * 1000;
        if (delay > 0 && !stop_flag) { delay_conn(conn, delay); return MHD_YES; }
    }
    if (r->fault == FAULT_500) {
        memset(&r->user, 0, sizeof r->user);
        r->user.anonymous = 1;
        return send_error(conn, r, url, 500, "");
    }
    if (strncmp(url, PREFIX, strlen(PREFIX)) != 0) {
        r->user.anonymous = 1;
        return send_error(conn, r, url, 404, "Not Found");
    }
    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, arg_it, r);
    const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
    if (r->body.len && (!ct || !strncasecmp(ct, "application/x-www-form-urlencoded", 33))) parse_form(r, r->body.s, r->body.len);
    dbconn *db = db_conn();
    r->user.anonymous = 1;
    snprintf(r->user.username, sizeof r->user.username, "roleAnonymous");
    if (!db) return send_error(conn, r, url, 500, "");
    ctx_t x = {conn, r, url, db};
    if (!referer_ok(conn, settings(db))) return send_error(conn, r, url, 400, "Invalid request: Referer/domain not whitelisted");
    if (authenticate(conn, db, r) < 0) {
        memset(&r->user, 0, sizeof r->user);
        r->user.anonymous = 1;
        snprintf(r->user.username, sizeof r->user.username, "roleAnonymous");
        return send_error(conn, r, url, 401, "Bad credentials");
    }
    if (r->fault == FAULT_TWICE) { /* a proxy that re-sent the start: executed twice, the second answered */
        r->discard = 1;
        dispatch(&x, url + strlen(PREFIX));
        r->discard = 0;
    }
    return dispatch(&x, url + strlen(PREFIX));
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)cls; (void)conn; (void)toe;
    req_t *r = *con_cls;
    if (!r) return;
    for (int i = 0; i < r->np; i++) { free(r->p[i].k); free(r->p[i].v); }
    free(r->p);
    sb_free(&r->body);
    free(r);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap); /* libmicrohttpd often passes "%s" and the message as an argument */
    if (strstr(msg, "Application reported internal error")) return; /* our own 'reset' and 'lost' faults */
    if (strstr(msg, "application reported error generating data")) return; /* our own 'partial' fault */
    fprintf(stderr, "joget-emulator: libmicrohttpd: %s", msg);
}

static void on_signal(int s) { (void)s; stop_flag = 1; }

int http_run(const http_cfg *c, const char *port_file)
{
    cfg = c;
    if (c->request_log) {
        logf_ = fopen(c->request_log, "a");
        if (!logf_) { fprintf(stderr, "joget-emulator: --request-log %s: cannot open\n", c->request_log); return 1; }
    }
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)c->port);
    if (inet_pton(AF_INET, c->host, &sa.sin_addr) != 1) {
        fprintf(stderr, "joget-emulator: --host %s: not an IPv4 address\n", c->host);
        if (logf_) fclose(logf_);
        return 1;
    }
    struct sigaction sg;
    memset(&sg, 0, sizeof sg);
    sg.sa_handler = on_signal;
    sigaction(SIGTERM, &sg, NULL);
    sigaction(SIGINT, &sg, NULL);
    signal(SIGPIPE, SIG_IGN);
    pthread_t dt;
    pthread_create(&dt, NULL, delay_thread, NULL);
    struct MHD_Daemon *d = MHD_start_daemon(
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        handler, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL, /* first, or MHD logs the options before it itself */
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned)c->threads,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL, MHD_OPTION_CONNECTION_LIMIT, 2000u,
        MHD_OPTION_CONNECTION_TIMEOUT, 600u, MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u, MHD_OPTION_END);
    int rc = 0;
    if (!d) {
        fprintf(stderr, "joget-emulator: cannot listen on %s:%d\n", c->host, c->port);
        rc = 1;
    } else {
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
        int port = di ? di->port : c->port;
        if (port_file) {
            char tmp[4096];
            snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
            FILE *f = fopen(tmp, "w");
            if (f) { fprintf(f, "%d\n", port); fclose(f); rename(tmp, port_file); }
        }
        printf("joget-emulator listening on http://%s:%d/jw/web/json/\n", c->host, port);
        fflush(stdout);
        while (!stop_flag) { struct timespec ts = {0, 50000000L}; nanosleep(&ts, NULL); }
        fprintf(stderr, "joget-emulator: shutting down\n");
    }
    pthread_mutex_lock(&dl_mu);
    dl_quit = 1;
    pthread_cond_signal(&dl_cv);
    pthread_mutex_unlock(&dl_mu);
    pthread_join(dt, NULL);
    if (d) MHD_stop_daemon(d);
    if (logf_) fclose(logf_);
    return rc;
}
