/* joget-emulator tests: real HTTP over loopback (libcurl) against a running emulator, real PostgreSQL (libpq) or
   MariaDB (Connector/C) behind it, chosen by the database URL (mariadb://...) or conninfo in the environment.
   usage: joget-emulator-tests conformance|engine|faults|features|generator   (URLs and conninfos from the environment,
   see run-emulator-test.sh) */
#define _GNU_SOURCE
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <mysql.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int fails, checks;
#define CHECK(c, ...)                                                                                                  \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(c)) {                                                                                                    \
            fails++;                                                                                                   \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                      \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

static const char *env(const char *k)
{
    const char *v = getenv(k);
    if (!v) { fprintf(stderr, "missing environment variable %s\n", k); exit(2); }
    return v;
}

/* ---------- HTTP ---------- */
typedef struct {
    long status;
    char *body;
    size_t len;
    json_t *j;
    char ctype[128], location[512];
    CURLcode err;
    double secs;
    curl_off_t cl; /* Content-Length announced, -1 when none */
} resp;

static CURL *curl_h;
/* 1 = every request on a new connection: libcurl silently sends a request again on a fresh connection when a
   reused one closes without an answer, which would hide (and double) a 'lost' fault */
static int fresh_connect;
static size_t wr(char *p, size_t s, size_t n, void *u)
{
    resp *r = u;
    r->body = realloc(r->body, r->len + s * n + 1);
    memcpy(r->body + r->len, p, s * n);
    r->len += s * n;
    r->body[r->len] = 0;
    return s * n;
}
static size_t hd(char *p, size_t s, size_t n, void *u)
{
    resp *r = u;
    size_t l = s * n;
    if (l > 10 && !strncasecmp(p, "Location: ", 10)) snprintf(r->location, sizeof r->location, "%.*s", (int)(l - 12), p + 10);
    return l;
}
static void rfree(resp *r) { free(r->body); json_decref(r->j); memset(r, 0, sizeof *r); }

#define REF_DEFAULT ((const char *)1)
/* method GET: params go to the query string; POST: form body. referer NULL = none. */
static resp http(const char *base, const char *method, const char *path, const char *params, const char *referer,
                 const char *basic, long timeout_ms)
{
    resp r;
    memset(&r, 0, sizeof r);
    char url[4096];
    int post = !strcmp(method, "POST");
    snprintf(url, sizeof url, "%s/%s%s%s", base, path, (!post && params && *params) ? "?" : "", (!post && params) ? params : "");
    curl_easy_reset(curl_h);
    curl_easy_setopt(curl_h, CURLOPT_URL, url);
    curl_easy_setopt(curl_h, CURLOPT_WRITEFUNCTION, wr);
    curl_easy_setopt(curl_h, CURLOPT_WRITEDATA, &r);
    curl_easy_setopt(curl_h, CURLOPT_HEADERFUNCTION, hd);
    curl_easy_setopt(curl_h, CURLOPT_HEADERDATA, &r);
    curl_easy_setopt(curl_h, CURLOPT_TIMEOUT_MS, timeout_ms ? timeout_ms : 30000L);
    if (fresh_connect) curl_easy_setopt(curl_h, CURLOPT_FRESH_CONNECT, 1L);
    if (post) {
        curl_easy_setopt(curl_h, CURLOPT_POST, 1L);
        curl_easy_setopt(curl_h, CURLOPT_COPYPOSTFIELDS, params ? params : "");
    }
    struct curl_slist *h = NULL;
    char rh[600];
    if (referer == REF_DEFAULT) referer = "http://127.0.0.1/jw/";
    if (referer) { snprintf(rh, sizeof rh, "Referer: %s", referer); h = curl_slist_append(h, rh); }
    curl_easy_setopt(curl_h, CURLOPT_HTTPHEADER, h);
    if (basic) {
        curl_easy_setopt(curl_h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
        curl_easy_setopt(curl_h, CURLOPT_USERPWD, basic);
    }
    r.err = curl_easy_perform(curl_h);
    curl_easy_getinfo(curl_h, CURLINFO_RESPONSE_CODE, &r.status);
    char *ct = NULL;
    curl_easy_getinfo(curl_h, CURLINFO_CONTENT_TYPE, &ct);
    if (ct) snprintf(r.ctype, sizeof r.ctype, "%s", ct);
    curl_easy_getinfo(curl_h, CURLINFO_TOTAL_TIME, &r.secs);
    curl_easy_getinfo(curl_h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &r.cl);
    curl_slist_free_all(h);
    if (r.body) r.j = json_loads(r.body, JSON_DECODE_ANY, NULL);
    return r;
}
static const char *BASE;
static resp GET(const char *path, const char *params) { return http(BASE, "GET", path, params, REF_DEFAULT, NULL, 0); }
static resp POST(const char *path, const char *params) { return http(BASE, "POST", path, params, REF_DEFAULT, NULL, 0); }

static const char *js(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }
static int jeq(json_t *o, const char *k, const char *v) { const char *s = js(o, k); return s && v && !strcmp(s, v); }
static size_t rows_of(json_t *o) /* data: object -> 1, array -> n, absent -> 0 */
{
    json_t *d = json_object_get(o, "data");
    return !d ? 0 : json_is_array(d) ? json_array_size(d) : 1;
}
static json_t *row(json_t *o, size_t i)
{
    json_t *d = json_object_get(o, "data");
    return json_is_array(d) ? json_array_get(d, i) : (i == 0 ? d : NULL);
}

static void wait_ready(const char *base)
{
    for (int i = 0; i < 300; i++) {
        resp r = http(base, "GET", "workflow/currentUsername", NULL, REF_DEFAULT, NULL, 2000);
        long st = r.status;
        rfree(&r);
        if (st == 200) return;
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    fprintf(stderr, "emulator at %s never answered\n", base);
    exit(1);
}

/* ---------- SQL ----------
   The SQL of the tests is written once: table names as Joget's MySQL script spells them (PostgreSQL folds them), no
   engine-specific functions (lists are read row by row with sqlcat). */
static PGconn *db;
static MYSQL *my;
static int is_my; /* the database behind the emulator is MariaDB */
static char *q1(const char *q, int all) /* first column: of the first row, or of all rows joined with ',' */
{
    char *v = NULL;
    if (my) {
        if (mysql_query(my, q)) { fprintf(stderr, "SQL error: %s in %s\n", mysql_error(my), q); return NULL; }
        MYSQL_RES *res = mysql_store_result(my);
        if (!res) return NULL;
        size_t n = 0;
        MYSQL_ROW row;
        while ((row = mysql_fetch_row(res))) {
            if (!row[0]) { if (!all) break; continue; }
            size_t l = strlen(row[0]);
            v = realloc(v, n + l + 2);
            if (n) v[n++] = ',';
            memcpy(v + n, row[0], l + 1);
            n += l;
            if (!all) break;
        }
        mysql_free_result(res);
        return v;
    }
    PGresult *r = PQexec(db, q);
    if (PQresultStatus(r) == PGRES_TUPLES_OK) {
        size_t n = 0;
        for (int i = 0; i < PQntuples(r) && (all || i == 0); i++) {
            if (PQgetisnull(r, i, 0)) continue;
            size_t l = strlen(PQgetvalue(r, i, 0));
            v = realloc(v, n + l + 2);
            if (n) v[n++] = ',';
            memcpy(v + n, PQgetvalue(r, i, 0), l + 1);
            n += l;
        }
    } else if (PQresultStatus(r) != PGRES_COMMAND_OK)
        fprintf(stderr, "SQL error: %s in %s\n", PQerrorMessage(db), q);
    PQclear(r);
    return v;
}
static char *sql1(const char *fmt, ...)
{
    char q[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    return q1(q, 0);
}
static long sqln(const char *fmt, ...)
{
    char q[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    char *v = q1(q, 0);
    long n = v ? atol(v) : -1;
    free(v);
    return n;
}
static int sqleq_(int all, const char *want, const char *q)
{
    char *v = q1(q, all);
    int ok = v && !strcmp(v, want);
    if (!ok) fprintf(stderr, "  sql: got '%s' want '%s' for %s\n", v ? v : "(null)", want, q);
    free(v);
    return ok;
}
static int sqleq(const char *want, const char *fmt, ...) /* the first row's first column */
{
    char q[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    return sqleq_(0, want, q);
}
static int sqlcat(const char *want, const char *fmt, ...) /* every row's first column, joined with ',' */
{
    char q[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q, sizeof q, fmt, ap);
    va_end(ap);
    return sqleq_(1, want, q);
}
static void sqlx(const char *q) /* a statement; failures are reported */
{
    char *v = q1(q, 0);
    free(v);
}
static char *pct(const char *s, size_t n)
{
    char *o = malloc(n + 1), *d = o;
    for (size_t i = 0; i < n; i++)
        if (s[i] == '%' && i + 2 < n) { char h[3] = {s[i + 1], s[i + 2], 0}; *d++ = (char)strtol(h, NULL, 16); i += 2; }
        else *d++ = s[i];
    *d = 0;
    return o;
}
static void dbclose(void)
{
    if (my) mysql_close(my);
    if (db) PQfinish(db);
    my = NULL;
    db = NULL;
}
static void dbopen(const char *ci)
{
    if (!strncmp(ci, "mariadb://", 10) || !strncmp(ci, "mysql://", 8)) { /* user:password@host:port/db */
        const char *s = strstr(ci, "://") + 3, *at = strchr(s, '@'), *sl = strchr(s, '/');
        if (!at || !sl || at > sl) { fprintf(stderr, "bad URL %s\n", ci); exit(1); }
        const char *colon = memchr(s, ':', (size_t)(at - s)), *pc = memchr(at, ':', (size_t)(sl - at));
        char *user = pct(s, (size_t)((colon ? colon : at) - s)), *pw = colon ? pct(colon + 1, (size_t)(at - colon - 1)) : NULL;
        char *host = pct(at + 1, (size_t)((pc ? pc : sl) - at - 1)), *name = pct(sl + 1, strlen(sl + 1));
        my = mysql_init(NULL);
        mysql_options(my, MYSQL_SET_CHARSET_NAME, "utf8mb4");
        if (!mysql_real_connect(my, host, user, pw, name, pc ? (unsigned)atoi(pc + 1) : 3306, NULL, 0)) {
            fprintf(stderr, "cannot connect %s: %s\n", ci, mysql_error(my));
            exit(1);
        }
        mysql_query(my, "SET time_zone = '+00:00'");
        free(user); free(pw); free(host); free(name);
        is_my = 1;
        return;
    }
    db = PQconnectdb(ci);
    if (PQstatus(db) != CONNECTION_OK) { fprintf(stderr, "cannot connect %s\n", ci); exit(1); }
}

static void md5hex(const char *s, char out[33], int upper)
{
    unsigned char d[16];
    unsigned int n;
    EVP_Digest(s, strlen(s), d, &n, EVP_md5(), NULL);
    for (int i = 0; i < 16; i++) sprintf(out + 2 * i, upper ? "%02X" : "%02x", d[i]);
}

#define ADM "j_username=admin&j_password=admin"

/* the open activity id of def `adef` in process pid (SQL) */
static char *open_act(const char *pid, const char *adef)
{
    return sql1("SELECT id FROM SHKActivities WHERE processid='%s' AND activitydefinitionid='%s' AND state IN (1000001,1000003)"
                " ORDER BY oid DESC LIMIT 1", pid, adef);
}

static char *start_proc(const char *pdef, const char *params)
{
    char path[512];
    snprintf(path, sizeof path, "workflow/process/start/%s", pdef);
    resp r = POST(path, params);
    char *pid = (r.status == 200 && js(r.j, "processId") && *js(r.j, "processId")) ? strdup(js(r.j, "processId")) : NULL;
    if (!pid) fprintf(stderr, "  start %s (%s) -> %ld %s\n", pdef, params, r.status, r.body ? r.body : "");
    rfree(&r);
    return pid;
}

static int complete_as(const char *aid, const char *user, const char *pw)
{
    char path[512], p[256];
    snprintf(path, sizeof path, "workflow/assignment/complete/%s", aid);
    snprintf(p, sizeof p, "j_username=%s&j_password=%s", user, pw);
    resp r = POST(path, p);
    int ok = r.status == 200 && jeq(r.j, "status", "completed");
    if (!ok) fprintf(stderr, "  complete %s as %s -> %ld %s\n", aid, user, r.status, r.body ? r.body : "");
    rfree(&r);
    return ok;
}

/* ================= conformance ================= */
static void t_referer_and_errors(void)
{
    resp r = http(BASE, "GET", "workflow/currentUsername", NULL, NULL, NULL, 0);
    CHECK(r.status == 400, "missing Referer -> 400, got %ld", r.status);
    json_t *e = json_object_get(r.j, "error");
    CHECK(jeq(e, "code", "400") && js(e, "message") && js(e, "date"), "error body shape {error:{code,message,date}}: %s", r.body);
    rfree(&r);
    r = http(BASE, "GET", "workflow/currentUsername", NULL, "http://evil.example.com/x", NULL, 0);
    CHECK(r.status == 400, "foreign Referer -> 400, got %ld", r.status);
    rfree(&r);
    r = http(BASE, "GET", "workflow/currentUsername", NULL, "https://partner.example.com:8443/app", NULL, 0);
    CHECK(r.status == 200, "whitelisted Referer host -> 200, got %ld", r.status);
    rfree(&r);
    r = GET("workflow/currentUsername", NULL);
    CHECK(r.status == 200 && jeq(r.j, "username", "roleAnonymous"), "anonymous currentUsername: %s", r.body);
    rfree(&r);
    r = GET("no/such/endpoint", ADM);
    CHECK(r.status == 404 && jeq(json_object_get(r.j, "error"), "code", "404"), "unknown URL -> 404 JSON error, got %ld", r.status);
    rfree(&r);
    r = GET("workflow/currentUsername", "callback=cb42");
    CHECK(r.status == 200 && r.body && !strncmp(r.body, "cb42(", 5) && strstr(r.ctype, "javascript"), "JSONP: %s %s", r.ctype, r.body);
    rfree(&r);
}

static void t_auth(void)
{
    resp r = GET("workflow/currentUsername", "j_username=alice&j_password=wrong");
    CHECK(r.status == 401 && jeq(json_object_get(r.j, "error"), "code", "401"), "bad password -> 401 JSON, got %ld %s", r.status, r.body);
    rfree(&r);
    r = GET("workflow/currentUsername", "j_username=alice&j_password=alice-pw");
    CHECK(r.status == 200 && jeq(r.j, "username", "alice"), "password login: %s", r.body);
    rfree(&r);
    char stored[33], pre[128], hash[33], q[256];
    md5hex("alice-pw", stored, 0);
    snprintf(pre, sizeof pre, "alice::%s", stored);
    md5hex(pre, hash, 1);
    snprintf(q, sizeof q, "j_username=alice&hash=%s", hash);
    r = GET("workflow/currentUsername", q);
    CHECK(r.status == 200 && jeq(r.j, "username", "alice"), "hash login: %ld %s", r.status, r.body);
    rfree(&r);
    for (char *c = hash; *c; c++) *c = (char)((*c >= 'A' && *c <= 'F') ? *c + 32 : *c);
    snprintf(q, sizeof q, "j_username=alice&hash=%s", hash);
    r = GET("workflow/currentUsername", q);
    CHECK(r.status == 200 && jeq(r.j, "username", "alice"), "hash login is case-insensitive: %ld", r.status);
    rfree(&r);
    r = GET("workflow/currentUsername", "j_username=alice&hash=0123456789ABCDEF0123456789ABCDEF");
    CHECK(r.status == 401, "wrong hash -> 401, got %ld", r.status);
    rfree(&r);
    r = http(BASE, "GET", "workflow/currentUsername", NULL, REF_DEFAULT, "bob:bob-pw", 0);
    CHECK(r.status == 200 && jeq(r.j, "username", "bob"), "HTTP Basic: %ld %s", r.status, r.body);
    rfree(&r);
    r = http(BASE, "GET", "workflow/currentUsername", NULL, REF_DEFAULT, "bob:nope", 0);
    CHECK(r.status == 401, "HTTP Basic bad password -> 401, got %ld", r.status);
    rfree(&r);
    r = GET("workflow/currentUsername", "j_username=gone&j_password=gone-pw");
    CHECK(r.status == 401, "inactive user -> 401, got %ld", r.status);
    rfree(&r);
    /* loginAs without a configured master login: Joget silently treats the request as anonymous */
    r = GET("workflow/currentUsername", "j_username=admin&j_password=admin&loginAs=alice");
    CHECK(r.status == 200 && jeq(r.j, "username", "roleAnonymous"), "loginAs w/o master login -> anonymous: %ld %s", r.status, r.body);
    rfree(&r);
    /* authorization matrix */
    r = GET("monitoring/activity/list", NULL);
    CHECK(r.status == 302 && strstr(r.location, "/web/login"), "anonymous admin URL -> 302 login, got %ld '%s'", r.status, r.location);
    rfree(&r);
    r = GET("console/monitor/running/list", "j_username=admin&j_password=admin&loginAs=alice");
    CHECK(r.status == 302, "loginAs fallback to anonymous then admin URL -> 302, got %ld", r.status);
    rfree(&r);
    r = GET("monitoring/activity/list", "j_username=alice&j_password=alice-pw");
    CHECK(r.status == 403 && jeq(json_object_get(r.j, "error"), "code", "403"), "no role -> 403, got %ld", r.status);
    rfree(&r);
    r = GET("monitoring/activity/list", "j_username=appadm&j_password=appadm");
    CHECK(r.status == 200, "ROLE_APPADMIN on monitoring -> 200, got %ld", r.status);
    rfree(&r);
    r = GET("console/monitor/running/list", "j_username=appadm&j_password=appadm");
    CHECK(r.status == 403, "ROLE_APPADMIN on console/monitor (SYSADMIN) -> 403, got %ld", r.status);
    rfree(&r);
    r = GET("console/monitor/running/list", ADM);
    CHECK(r.status == 200, "ROLE_ADMIN is SYSADMIN when no ROLE_SYSADMIN row -> 200, got %ld", r.status);
    rfree(&r);
    r = GET("directory/user/sso", NULL);
    CHECK(r.status == 401, "sso anonymous -> 401, got %ld", r.status);
    rfree(&r);
    r = GET("directory/user/sso", ADM);
    CHECK(r.status == 200 && jeq(r.j, "username", "admin") && jeq(r.j, "isAdmin", "true") && js(r.j, "token") &&
              strchr(js(r.j, "token"), '='), "sso admin: %s", r.body);
    rfree(&r);
    r = GET("directory/user/sso", "j_username=bob&j_password=bob-pw");
    CHECK(r.status == 200 && !json_object_get(r.j, "isAdmin"), "sso non-admin has no isAdmin: %s", r.body);
    rfree(&r);
}

static void t_lists(void)
{
    resp r = GET("console/monitor/running/list", ADM);
    CHECK(r.status == 200 && rows_of(r.j) == 2 && json_is_array(json_object_get(r.j, "data")) &&
              json_integer_value(json_object_get(r.j, "total")) == 2, "running list: 2 rows as array: %s", r.body);
    rfree(&r);
    r = GET("console/monitor/running/list", ADM "&recordId=r-1");
    json_t *d = json_object_get(r.j, "data");
    CHECK(json_is_object(d) && jeq(d, "recordId", "r-1") && jeq(d, "requesterId", "alice") && jeq(d, "state", "open.running") &&
              jeq(d, "version", "1") && js(d, "id") && strstr(js(d, "id"), "_conf_simple"),
          "one row -> object with recordId: %s", r.body);
    rfree(&r);
    r = GET("console/monitor/running/list", ADM "&recordId=nothing-like-this");
    CHECK(r.status == 200 && !json_object_get(r.j, "data") && json_integer_value(json_object_get(r.j, "total")) == 0,
          "zero rows -> no data key: %s", r.body);
    rfree(&r);
    r = GET("console/monitor/running/list", ADM "&rows=1&start=1&sort=id&desc=true");
    CHECK(json_is_object(json_object_get(r.j, "data")) && json_integer_value(json_object_get(r.j, "total")) == 2 &&
              json_is_true(json_object_get(r.j, "desc")) && jeq(r.j, "sort", "id"), "paging envelope: %s", r.body);
    rfree(&r);
    r = GET("console/monitor/running/list", ADM "&sort=id");
    CHECK(r.status == 500, "sort without desc throws -> 500, got %ld", r.status);
    rfree(&r);
    r = GET("monitoring/running/process/list", ADM "&packageId=conf");
    CHECK(rows_of(r.j) == 2 && !json_object_get(row(r.j, 0), "recordId"), "monitoring list has no recordId: %s", r.body);
    rfree(&r);
    r = GET("workflow/process/list", ADM);
    CHECK(r.status == 200 && rows_of(r.j) == 4, "process definition list (latest): %s", r.body);
    rfree(&r);
    r = GET("workflow/process/view/conf:1:simple", ADM);
    CHECK(jeq(r.j, "processId", "conf#1#simple") && jeq(r.j, "name", "Simple") && jeq(r.j, "version", "1"), "definition view: %s", r.body);
    rfree(&r);
    r = GET("workflow/process/view/conf:latest:simple", ADM);
    CHECK(jeq(r.j, "processId", "conf#1#simple"), "definition view with latest: %s", r.body);
    rfree(&r);
    r = GET("workflow/process/view/conf:1:nope", ADM);
    CHECK(r.status == 200 && json_is_object(r.j) && json_object_size(r.j) == 0, "unknown definition -> {}: %s", r.body);
    rfree(&r);
}

static void t_start(void)
{
    /* start as alice with a record id: tool t1 overwrites the record's status column */
    char *pid = start_proc("conf:latest:simple", "j_username=alice&j_password=alice-pw&recordId=r-2&var_s=fromstart&var_my_var_s=mangled");
    CHECK(pid != NULL, "start simple as alice");
    if (!pid) return;
    CHECK(strstr(pid, "_conf_simple") != NULL, "instance id <counter>_<app>_<proc>: %s", pid);
    CHECK(sqleq("started by alice", "SELECT c_status FROM app_fd_simple_t WHERE id='r-2'"), "start-path tool overwrote the row");
    CHECK(sqleq("r-2", "SELECT originprocessid FROM wf_process_link WHERE processid='%s'", pid), "link origin = recordId");
    CHECK(sqleq("alice", "SELECT resourcerequesterid FROM SHKProcesses WHERE id='%s'", pid), "requester = caller");
    char *a1 = open_act(pid, "a1");
    CHECK(a1 && strncmp(a1 + strcspn(a1, "_") + 1, pid, strlen(pid)) == 0, "activity id <counter>_<pid>_<def>: %s", a1 ? a1 : "-");
    CHECK(sqlcat("bob", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", a1 ? a1 : ""),
          "waits at a1 assigned to bob");
    /* var_ removed everywhere in a name; variables typed */
    char path[512];
    snprintf(path, sizeof path, "workflow/process/variable/%s/my_s", pid);
    resp r = GET(path, ADM);
    CHECK(jeq(r.j, "variableValue", "mangled"), "var_my_var_s -> my_s: %s", r.body);
    rfree(&r);
    snprintf(path, sizeof path, "workflow/process/variable/%s/s", pid);
    r = GET(path, ADM);
    CHECK(jeq(r.j, "variableValue", "fromstart"), "var_s: %s", r.body);
    rfree(&r);
    snprintf(path, sizeof path, "workflow/process/variable/%s/nosuch", pid);
    r = GET(path, ADM);
    CHECK(jeq(r.j, "variableValue", "null"), "missing variable -> \"null\": %s", r.body);
    rfree(&r);
    snprintf(path, sizeof path, "workflow/process/variable/%s/d", pid);
    r = GET(path, ADM);
    CHECK(jeq(r.j, "variableValue", ""), "null variable -> \"\": %s", r.body);
    rfree(&r);
    free(a1);
    free(pid);

    /* start without recordId: a UUID parent */
    r = POST("workflow/process/start/conf:1:simple", "j_username=alice&j_password=alice-pw");
    CHECK(r.status == 200 && js(r.j, "recordId") && strlen(js(r.j, "recordId")) == 36 && js(r.j, "processId") &&
              *js(r.j, "processId"), "start without recordId -> UUID: %s", r.body);
    rfree(&r);

    /* Boolean variable quirk: parsed as a long -> failure, HTTP 200, empty processId, no recordId */
    long before = sqln("SELECT count(*) FROM SHKProcesses WHERE state=1000002");
    r = POST("workflow/process/start/conf:1:simple", "j_username=alice&j_password=alice-pw&recordId=r-9&var_flag=true");
    CHECK(r.status == 200 && jeq(r.j, "processId", "") && !json_object_get(r.j, "recordId") && jeq(r.j, "activityId", ""),
          "Boolean var_ breaks the start: %ld %s", r.status, r.body);
    rfree(&r);
    CHECK(sqln("SELECT count(*) FROM SHKProcesses WHERE state=1000002") == before + 1, "unstarted instance left behind");
    r = POST("workflow/process/start/conf:1:simple", "j_username=alice&j_password=alice-pw&var_flag=1");
    CHECK(r.status == 200 && js(r.j, "processId") && *js(r.j, "processId"), "numeric Boolean value starts: %s", r.body);
    rfree(&r);

    /* failures with HTTP 200 and empty processId */
    r = POST("workflow/process/start/conf:1:nosuch", "j_username=alice&j_password=alice-pw");
    CHECK(r.status == 200 && jeq(r.j, "processId", ""), "unknown process -> empty processId: %s", r.body);
    rfree(&r);
    r = POST("workflow/process/start/conf:1:restricted", "j_username=bob&j_password=bob-pw");
    CHECK(r.status == 200 && jeq(r.j, "processId", ""), "whitelist denies bob: %s", r.body);
    rfree(&r);
    pid = start_proc("conf:1:restricted", "j_username=alice&j_password=alice-pw");
    CHECK(pid != NULL, "whitelist admits alice");
    free(pid);
    r = POST("workflow/process/start/draft:1:dproc", "j_username=alice&j_password=alice-pw");
    CHECK(r.status == 200 && jeq(r.j, "processId", ""), "unpublished app: non-admin cannot start: %s", r.body);
    rfree(&r);
    r = POST("workflow/process/start/draft:latest:dproc", ADM);
    CHECK(r.status == 200 && jeq(r.j, "processId", ""), "latest of an unpublished app does not resolve: %s", r.body);
    rfree(&r);
    pid = start_proc("draft:1:dproc", ADM);
    CHECK(pid != NULL, "unpublished app: admin may start");
    free(pid);
    pid = start_proc("conf:1:simple", NULL);
    CHECK(pid != NULL && sqleq("roleAnonymous", "SELECT resourcerequesterid FROM SHKProcesses WHERE id='%s'", pid ? pid : ""),
          "anonymous start of a published app without whitelist (requester roleAnonymous)");
    free(pid);
    r = GET("workflow/process/start/conf:1:simple", "j_username=alice&j_password=alice-pw");
    CHECK(r.status == 405, "GET on a POST-only endpoint -> 405, got %ld", r.status);
    rfree(&r);
    /* SQL-injection guard: identifiers with space ( ) ; slash-star -> 500 */
    r = POST("workflow/process/start/conf:1:simple", "j_username=alice&j_password=alice-pw&recordId=a%20b");
    CHECK(r.status == 500 && jeq(json_object_get(r.j, "error"), "message", "System error, please refer to log files"),
          "recordId with space -> 500: %ld %s", r.status, r.body);
    rfree(&r);
    r = POST("workflow/process/start/conf:1:simple", "j_username=alice&j_password=alice-pw&recordId=x(1)");
    CHECK(r.status == 500, "recordId with parenthesis -> 500, got %ld", r.status);
    rfree(&r);
    r = GET("monitoring/activity/list", ADM "&processId=1;drop");
    CHECK(r.status == 500, "processId with ; -> 500, got %ld", r.status);
    rfree(&r);
    r = GET("monitoring/activity/list", ADM "&processId=x/*y");
    CHECK(r.status == 500, "processId with /* -> 500, got %ld", r.status);
    rfree(&r);
}

static void t_activities(void)
{
    char *pid = sql1("SELECT p.id FROM SHKProcesses p JOIN wf_process_link l ON l.processid=p.id WHERE l.originprocessid='r-1'");
    CHECK(pid != NULL, "fixture instance r-1 present");
    if (!pid) return;
    char path[600], q[600];
    /* activity list: rows default 10 */
    resp r = GET("monitoring/activity/list", ADM);
    long total = json_integer_value(json_object_get(r.j, "total"));
    CHECK(total > 10 && rows_of(r.j) == 10, "rows defaults to 10 (total %ld, got %zu)", total, rows_of(r.j));
    rfree(&r);
    r = GET("monitoring/activity/list", ADM "&rows=1000");
    CHECK((long)rows_of(r.j) == total, "rows=1000 returns all %ld", total);
    rfree(&r);
    snprintf(q, sizeof q, ADM "&processId=%s", pid);
    r = GET("monitoring/activity/list", q);
    CHECK(rows_of(r.j) == 1 && json_is_object(json_object_get(r.j, "data")) && jeq(row(r.j, 0), "state", "open.not_running.not_started") &&
              !json_object_get(row(r.j, 0), "activityDefId"), "one activity as object, no activityDefId: %s", r.body);
    char *a1 = js(row(r.j, 0), "id") ? strdup(js(row(r.j, 0), "id")) : NULL;
    rfree(&r);
    /* activity view */
    snprintf(path, sizeof path, "monitoring/activity/view/%s", a1 ? a1 : "x");
    r = GET(path, ADM);
    CHECK(jeq(r.j, "activityDefId", "a1") && jeq(r.j, "assignee", "bob") && jeq(r.j, "processId", pid) &&
              jeq(r.j, "processDefId", "conf#1#simple") && json_is_array(json_object_get(r.j, "variable")),
          "activity view: single assignee as string: %s", r.body);
    rfree(&r);
    r = GET("monitoring/activity/view/999_nope", ADM);
    CHECK(r.status == 200 && r.len == 0, "unknown activity -> empty body, got %ld len %zu", r.status, r.len);
    rfree(&r);
    /* variable list */
    snprintf(path, sizeof path, "workflow/variable/list/%s", pid);
    r = GET(path, ADM);
    json_t *vars = json_object_get(r.j, "variable");
    int seen = 0;
    size_t i;
    json_t *v;
    json_array_foreach(vars, i, v) {
        seen += jeq(v, "s", "hello") + jeq(v, "n", "42") + jeq(v, "d", "2.5") + jeq(v, "flag", "false");
    }
    CHECK(jeq(r.j, "processId", pid) && seen == 4, "variable list typed values: %s", r.body);
    rfree(&r);
    /* monitoring set variable */
    snprintf(path, sizeof path, "monitoring/process/variable/%s/n", pid);
    r = POST(path, ADM "&value=77");
    CHECK(jeq(r.j, "status", "variableSet"), "set variable: %s", r.body);
    rfree(&r);
    r = POST(path, ADM);
    CHECK(r.status == 400, "set variable without value -> 400, got %ld", r.status);
    rfree(&r);
    CHECK(sqleq("77", "SELECT d.variablevaluelong FROM SHKProcessData d JOIN SHKProcesses p ON p.oid=d.process"
                      " WHERE p.id='%s' AND d.variabledefinitionid='n'", pid), "variable stored in SHKProcessData");
    /* process view */
    snprintf(path, sizeof path, "monitoring/process/view/%s", pid);
    r = GET(path, ADM);
    json_t *st = json_object_get(r.j, "states");
    CHECK(json_is_array(st) && json_array_size(st) == 2 && jeq(r.j, "requester", "alice") && jeq(r.j, "processDefId", "conf#1#simple"),
          "process view (states twice): %s", r.body);
    rfree(&r);
    r = GET("monitoring/process/view/1_no_such", ADM);
    CHECK(r.status == 200 && r.len == 0, "unknown process view -> empty body");
    rfree(&r);

    /* activity/start: abortCurrent aborts every open activity; assignees recomputed */
    snprintf(path, sizeof path, "monitoring/activity/start/%s/a2", pid);
    r = POST(path, ADM "&abortCurrent=true");
    CHECK(jeq(r.j, "processId", pid) && jeq(r.j, "activityDefId", "a2") && json_is_true(json_object_get(r.j, "result")),
          "activity/start result true: %s", r.body);
    rfree(&r);
    CHECK(sqleq("1000011", "SELECT state FROM SHKActivities WHERE id='%s'", a1 ? a1 : ""), "old a1 aborted");
    char *a2 = open_act(pid, "a2");
    CHECK(a2 && sqlcat("alice", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", a2),
          "new a2 assigned to the requester");
    snprintf(path, sizeof path, "monitoring/activity/start/%s/a1", pid);
    r = POST(path, ADM);
    CHECK(json_is_true(json_object_get(r.j, "result")), "activity/start without abort: %s", r.body);
    rfree(&r);
    CHECK(sqln("SELECT count(*) FROM SHKActivities WHERE processid='%s' AND state IN (1000001,1000003)", pid) == 2,
          "abortCurrent=false keeps the open activity");
    snprintf(path, sizeof path, "monitoring/activity/start/%s/a1", pid);
    r = POST(path, ADM "&abortCurrent=true");
    rfree(&r);
    CHECK(sqln("SELECT count(*) FROM SHKActivities WHERE processid='%s' AND state IN (1000001,1000003)", pid) == 1 &&
              sqleq("1000011", "SELECT state FROM SHKActivities WHERE id='%s'", a2 ? a2 : ""),
          "second abortCurrent=true aborts the activity created by the first");
    snprintf(path, sizeof path, "monitoring/activity/start/%s/nosuch", pid);
    r = POST(path, ADM);
    CHECK(r.status == 200 && json_is_false(json_object_get(r.j, "result")), "unknown activityDefId -> result false: %s", r.body);
    rfree(&r);
    r = POST("monitoring/activity/start/a%20b/a1", ADM);
    CHECK(r.status == 500, "activity/start with a space -> 500, got %ld", r.status);
    rfree(&r);
    free(a1);
    free(a2);

    /* performer of an earlier activity resolves inside the new instance: falls back to the calling admin */
    char *pp = start_proc("conf:1:perf", "j_username=alice&j_password=alice-pw");
    CHECK(pp != NULL, "start perf");
    if (pp) {
        snprintf(path, sizeof path, "monitoring/activity/start/%s/act2", pp);
        r = POST(path, ADM "&abortCurrent=true");
        rfree(&r);
        char *x2 = open_act(pp, "act2");
        CHECK(x2 && sqlcat("admin", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", x2),
              "performer-of-act1 with act1 never run -> current user (admin)");
        snprintf(path, sizeof path, "monitoring/activity/view/%s", x2 ? x2 : "");
        r = GET(path, ADM);
        CHECK(json_is_object(json_object_get(r.j, "variable")) && jeq(json_object_get(r.j, "variable"), "only", "one"),
              "one variable -> object: %s", r.body);
        rfree(&r);
        /* group participant -> two assignees as an array; normal flow: performer of act1 = who completed it */
        snprintf(path, sizeof path, "monitoring/activity/start/%s/act1", pp);
        r = POST(path, ADM "&abortCurrent=true");
        rfree(&r);
        char *x1 = open_act(pp, "act1");
        CHECK(x1 && complete_as(x1, "bob", "bob-pw"), "bob completes act1");
        char *y2 = open_act(pp, "act2");
        CHECK(y2 && sqlcat("bob", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", y2),
              "performer of act1 (bob) gets act2");
        CHECK(y2 && complete_as(y2, "bob", "bob-pw"), "bob completes act2");
        char *x3 = open_act(pp, "act3");
        snprintf(path, sizeof path, "monitoring/activity/view/%s", x3 ? x3 : "");
        r = GET(path, ADM);
        json_t *as = json_object_get(r.j, "assignee");
        CHECK(json_is_array(as) && json_array_size(as) == 2, "group participant -> assignee array: %s", r.body);
        rfree(&r);
        /* monitoring/activity/abort */
        snprintf(path, sizeof path, "monitoring/activity/abort/%s/act3", pp);
        r = POST(path, ADM);
        CHECK(jeq(r.j, "status", "aborted") && jeq(r.j, "activityDefId", "act3"), "activity abort: %s", r.body);
        rfree(&r);
        CHECK(sqleq("1000011", "SELECT state FROM SHKActivities WHERE id='%s'", x3 ? x3 : ""), "act3 aborted");
        free(x1); free(x2); free(y2); free(x3);
    }
    free(pp);
    free(pid);
}

static void t_assignments(void)
{
    char *pid = sql1("SELECT p.id FROM SHKProcesses p JOIN wf_process_link l ON l.processid=p.id WHERE l.originprocessid='r-2'"
                     " AND p.state=1000000 ORDER BY p.oid LIMIT 1");
    CHECK(pid != NULL, "fixture instance r-2");
    if (!pid) return;
    char *a1 = open_act(pid, "a1");
    char path[600], q[600];
    resp r = GET("workflow/assignment/list", "j_username=carol&j_password=carol-pw");
    CHECK(rows_of(r.j) == 1 && jeq(row(r.j, 0), "activityId", a1) && json_is_false(json_object_get(row(r.j, 0), "acceptedStatus")),
          "carol's assignment list: %s", r.body);
    rfree(&r);
    r = GET("workflow/assignment/list", NULL);
    CHECK(r.status == 200 && rows_of(r.j) == 0 && json_integer_value(json_object_get(r.j, "total")) == 0, "anonymous: no assignments");
    rfree(&r);
    snprintf(path, sizeof path, "workflow/assignment/view/%s", a1);
    r = GET(path, "j_username=alice&j_password=alice-pw");
    CHECK(r.status == 404, "assignment view without assignment -> 404, got %ld", r.status);
    rfree(&r);
    r = GET(path, "j_username=carol&j_password=carol-pw");
    CHECK(r.status == 200 && jeq(r.j, "activityDefId", "a1") && jeq(r.j, "assigneeId", "carol") && jeq(r.j, "processId", pid),
          "assignment view: %s", r.body);
    rfree(&r);
    /* reassign carol -> alice */
    snprintf(q, sizeof q, ADM "&activityId=%s&username=alice&replaceUser=carol", a1);
    r = POST("monitoring/activity/reassign", q);
    CHECK(jeq(r.j, "activityId", a1) && jeq(r.j, "username", "alice") && jeq(r.j, "replaceUser", "carol"), "reassign: %s", r.body);
    rfree(&r);
    r = POST("monitoring/activity/reassign", ADM "&activityId=1_nope&username=alice&replaceUser=carol");
    CHECK(r.status == 404, "reassign unknown activity -> 404, got %ld", r.status);
    rfree(&r);
    CHECK(sqlcat("alice,bob", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", a1),
          "assignees now alice,bob");
    /* accept by bob invalidates the others; complete by non-owner -> 404 */
    snprintf(path, sizeof path, "workflow/assignment/accept/%s", a1);
    r = POST(path, "j_username=bob&j_password=bob-pw");
    CHECK(jeq(r.j, "status", "accepted") && jeq(r.j, "assignment", a1), "accept: %s", r.body);
    rfree(&r);
    CHECK(sqleq("1000001", "SELECT state FROM SHKActivities WHERE id='%s'", a1), "accepted -> open.running");
    snprintf(path, sizeof path, "workflow/assignment/complete/%s", a1);
    r = POST(path, "j_username=alice&j_password=alice-pw");
    CHECK(r.status == 404, "complete by a non-assignee -> 404, got %ld", r.status);
    rfree(&r);
    snprintf(path, sizeof path, "workflow/assignment/completeWithVariable/%s", a1);
    r = POST(path, "j_username=bob&j_password=bob-pw&var_s=done-by-bob");
    CHECK(jeq(r.j, "status", "completed") && jeq(r.j, "processId", pid) && jeq(r.j, "assignment", "bob"), "completeWithVariable: %s", r.body);
    rfree(&r);
    snprintf(path, sizeof path, "workflow/process/variable/%s/s", pid);
    r = GET(path, ADM);
    CHECK(jeq(r.j, "variableValue", "done-by-bob"), "variable set on completion: %s", r.body);
    rfree(&r);
    CHECK(sqleq("bob", "SELECT resourceid FROM SHKActivities WHERE id='%s' AND state=1000007", a1), "a1 completed by bob");
    char *a2 = open_act(pid, "a2");
    CHECK(a2 != NULL, "moved on to a2");
    /* process abort -> archived */
    snprintf(path, sizeof path, "workflow/process/abort/%s", pid);
    r = POST(path, ADM);
    CHECK(jeq(r.j, "status", "aborted") && jeq(r.j, "processId", pid), "process abort: %s", r.body);
    rfree(&r);
    CHECK(sqleq("closed.aborted", "SELECT state FROM wf_history_process WHERE processid='%s'", pid), "aborted instance archived");
    CHECK(sqln("SELECT count(*) FROM SHKProcesses WHERE id='%s'", pid) == 0, "removed from SHKProcesses (archive)");
    CHECK(sqleq("r-2", "SELECT originprocessid FROM wf_process_link_history WHERE processid='%s'", pid), "link moved to history");
    snprintf(path, sizeof path, "monitoring/process/view/%s", pid);
    r = GET(path, ADM);
    CHECK(r.status == 200 && json_is_array(json_object_get(r.j, "states")),
          "archived process still viewable: %s", r.body);
    CHECK(r.body && strstr(r.body, "closed.aborted"), "archived view state closed.aborted: %s", r.body);
    rfree(&r);
    free(a1);
    free(a2);
    free(pid);
}

static void t_form_and_files(void)
{
    resp r = GET("data/form/load/conf/simple_form/r-1", ADM);
    CHECK(jeq(r.j, "id", "r-1") && jeq(r.j, "title", "first") && jeq(r.j, "doc", "hello.txt;big.bin") && jeq(r.j, "createdBy", "alice"),
          "form load: %s", r.body);
    rfree(&r);
    r = GET("data/form/load/conf/simple_form/none", ADM);
    CHECK(r.status == 200 && json_is_object(r.j) && json_object_size(r.j) == 0, "form load unknown -> {}: %s", r.body);
    rfree(&r);
    char p[1024];
    struct stat sb;
    snprintf(p, sizeof p, "%s/app_formuploads/simple_t/r-1/big.bin", env("EMU_UPLOADS"));
    CHECK(stat(p, &sb) == 0 && sb.st_size == 10000, "generated upload file of 10000 bytes at %s", p);
    snprintf(p, sizeof p, "%s/app_formuploads/simple_t/r-1/hello.txt", env("EMU_UPLOADS"));
    CHECK(stat(p, &sb) == 0 && sb.st_size == 6, "inline upload file at %s", p);
}

/* MariaDB: the tables as Joget's MySQL install script lays them out (names and their case, types, keys, engine and
   collations), and app_fd_<table> as Hibernate creates it there */
static void t_mysql_layout(void)
{
    static const char *tables = "'SHKProcesses','SHKProcessStates','SHKActivities','SHKActivityStates','SHKAssignmentsTable',"
                                "'SHKProcessData','SHKProcessDefinitions','SHKResourcesTable','SHKAndJoinTable','SHKDeadlines',"
                                "'wf_process_link','wf_process_link_history','wf_history_process','wf_history_activity',"
                                "'app_app','app_package','app_form','app_package_activity_plugin','app_package_participant',"
                                "'app_plugin_default','wf_setup','dir_user','dir_role','dir_user_role','dir_group','dir_user_group'";
    CHECK(sqln("SELECT count(*) FROM information_schema.tables WHERE table_schema=DATABASE() AND BINARY table_name IN (%s)"
               " AND engine='InnoDB' AND table_collation='utf8mb4_unicode_ci'", tables) == 26,
          "26 Joget tables with the MySQL script's names (case included), InnoDB, utf8mb4_unicode_ci");
    CHECK(sqln("SELECT count(*) FROM information_schema.tables WHERE table_schema=DATABASE() AND BINARY table_name LIKE 'shk%%'") == 0,
          "no lower-case Shark tables");
    CHECK(sqln("SELECT count(*) FROM information_schema.tables WHERE table_schema=DATABASE() AND BINARY table_name='app_fd_simple_t'"
               " AND engine='InnoDB'") == 1, "app_fd_simple_t exists with the form's table name");
    static const char *cols[][3] = {
        {"SHKProcesses", "oid", "decimal(19,0)"}, {"SHKProcesses", "Id", "varchar(100)"},
        {"SHKProcesses", "PDefName", "varchar(200)"}, {"SHKProcesses", "Started", "bigint(20)"},
        {"SHKProcesses", "ActivityRequesterProcessId", "varchar(100)"}, {"SHKProcesses", "version", "int(11)"},
        {"SHKActivities", "ActivityDefinitionId", "varchar(90)"}, {"SHKActivities", "IsPerformerAsynchronous", "smallint(6)"},
        {"SHKActivities", "ProcessId", "varchar(200)"}, {"SHKActivities", "LimitTime", "bigint(20)"},
        {"SHKAssignmentsTable", "IsAccepted", "smallint(6)"}, {"SHKAssignmentsTable", "IsValid", "smallint(6)"},
        {"SHKAssignmentsTable", "CNT", "decimal(19,0)"}, {"SHKProcessData", "VariableValueBOOL", "smallint(6)"},
        {"SHKProcessData", "VariableValueVCHAR", "varchar(4000)"}, {"SHKProcessData", "VariableValue", "mediumblob"},
        {"SHKProcessData", "VariableValueDBL", "double"}, {"SHKProcessData", "VariableValueDATE", "datetime"},
        {"SHKAndJoinTable", "BlockActivity", "decimal(19,0)"}, {"SHKDeadlines", "IsExecuted", "smallint(6)"},
        {"SHKDeadlines", "TimeLimit", "bigint(20)"}, {"SHKProcessStates", "KeyValue", "varchar(30)"},
        {"app_app", "published", "bit(1)"}, {"app_app", "description", "longtext"}, {"app_app", "appVersion", "bigint(20)"},
        {"app_form", "json", "longtext"}, {"app_form", "tableName", "varchar(255)"},
        {"app_package_activity_plugin", "pluginProperties", "text"}, {"app_plugin_default", "pluginDescription", "text"},
        {"wf_history_activity", "due", "datetime"}, {"wf_history_process", "variables", "text"},
        {"wf_process_link", "originProcessId", "varchar(255)"}, {"dir_user", "active", "int(11)"},
        {"dir_user", "firstName", "varchar(255)"}, {"wf_setup", "ordering", "int(11)"},
        {"app_fd_simple_t", "dateCreated", "datetime(6)"}, {"app_fd_simple_t", "createdByName", "varchar(255)"},
        {"app_fd_simple_t", "c_status", "longtext"}};
    for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++)
        CHECK(sqleq(cols[i][2], "SELECT column_type FROM information_schema.columns WHERE table_schema=DATABASE()"
                    " AND BINARY table_name='%s' AND BINARY column_name='%s'", cols[i][0], cols[i][1]),
              "%s.%s is %s", cols[i][0], cols[i][1], cols[i][2]);
    CHECK(sqlcat("Id,ActivitySetDefinitionId,ActivityDefinitionId,Process,TheResource,PDefName,ProcessId,ResourceId,State,"
                 "BlockActivityId,Performer,IsPerformerAsynchronous,Priority,Name,Activated,ActivatedTZO,Accepted,AcceptedTZO,"
                 "LastStateTime,LastStateTimeTZO,LimitTime,LimitTimeTZO,Description,oid,version",
                 "SELECT column_name FROM information_schema.columns WHERE table_schema=DATABASE() AND table_name='SHKActivities'"
                 " ORDER BY ordinal_position"), "SHKActivities columns in the script's order and spelling");
    CHECK(sqleq("utf8mb4_general_ci", "SELECT collation_name FROM information_schema.columns WHERE table_schema=DATABASE()"
                " AND table_name='wf_history_process' AND column_name='processId'") &&
              sqleq("utf8mb4_unicode_ci", "SELECT collation_name FROM information_schema.columns WHERE table_schema=DATABASE()"
                    " AND table_name='wf_history_process' AND column_name='variables'"),
          "history columns keep the charset's default collation, as in the dump");
    CHECK(sqlcat("Activity,TheResource", "SELECT column_name FROM information_schema.statistics WHERE table_schema=DATABASE()"
                 " AND table_name='SHKAssignmentsTable' AND index_name='I2_SHKAssignmentsTable' AND non_unique=0 ORDER BY seq_in_index"),
          "unique key I2_SHKAssignmentsTable (Activity, TheResource)");
    CHECK(sqlcat("dateCreated", "SELECT column_name FROM information_schema.statistics WHERE table_schema=DATABASE()"
                 " AND table_name='app_fd_simple_t' AND index_name='idx_datecreated'"), "app_fd index idx_datecreated");
    CHECK(sqleq("1", "SELECT published + 0 FROM app_app WHERE appid='conf' ORDER BY appversion LIMIT 1"), "bit(1) published");
}

static void t_schema(void)
{
    CHECK(sqleq("open.not_running.not_started", "SELECT name FROM SHKProcessStates WHERE oid=1000002"), "process state oids seeded");
    CHECK(sqleq("closed.aborted", "SELECT keyvalue FROM SHKActivityStates WHERE oid=1000011"), "activity state oids seeded");
    if (!is_my)
        CHECK(sqln("SELECT count(*) FROM information_schema.tables WHERE table_name IN ('shkprocesses','shkprocessstates','shkactivities',"
                   "'shkactivitystates','shkassignmentstable','shkprocessdata','shkprocessdefinitions','wf_process_link',"
                   "'wf_process_link_history','wf_history_process','wf_history_activity','app_app','app_package','app_form',"
                   "'app_package_activity_plugin','app_package_participant','wf_setup','dir_user','dir_role','dir_user_role',"
                   "'dir_group','dir_user_group')") == 22, "all Joget tables exist");
    else
        t_mysql_layout();
    CHECK(sqleq("conf#1#simple", "SELECT name FROM SHKProcessDefinitions WHERE packageid='conf' AND processdefinitionid='simple'"),
          "shkprocessdefinitions name appId#ver#procId");
    char md5[33];
    md5hex("alice-pw", md5, 0);
    CHECK(sqleq(md5, "SELECT password FROM dir_user WHERE username='alice'"), "dir_user password is lower-case md5");
    CHECK(sqleq("user", "SELECT type FROM app_package_participant WHERE participantid='processStartWhiteList' AND processdefid='restricted'"),
          "start whitelist stored as participant processStartWhiteList");
}

/* ================= engine (source + target) ================= */
static char *master_q(const char *user)
{
    char *q = malloc(256);
    snprintf(q, 256, "j_username=master&j_password=master-secret&loginAs=%s", user);
    return q;
}

static void t_engine(void)
{
    /* the source fixture: a server full of work */
    const char *src = env("EMU_SRC_URL");
    wait_ready(src);
    resp r = http(src, "GET", "console/monitor/running/list", ADM "&rows=100", REF_DEFAULT, NULL, 0);
    CHECK(rows_of(r.j) == 10, "source: 8 top-level + 2 sub-flow instances running: %s", r.body ? r.body : "");
    rfree(&r);
    PGconn *tdb = db;
    MYSQL *tmy = my;
    int tis = is_my;
    my = NULL; db = NULL; is_my = 0;
    dbopen(env("EMU_SRC_DB"));
    CHECK(sqln("SELECT count(*) FROM SHKProcesses WHERE activityrequesterprocessid IS NOT NULL") == 2, "source: sub-flow children linked");
    CHECK(sqln("SELECT count(*) FROM SHKProcesses c JOIN wf_process_link l ON l.processid=c.id JOIN wf_process_link pl"
               " ON pl.processid=c.activityrequesterprocessid WHERE l.originprocessid=pl.originprocessid") == 2,
          "source: children share the parent's record id");
    CHECK(sqln("SELECT count(*) FROM SHKActivities a WHERE a.activitydefinitionid IN ('finance_review','manager_ok')"
               " AND state=1000003") == 4, "source: parallel activities waiting");
    CHECK(sqln("SELECT count(*) FROM SHKAssignmentsTable") > 8, "source: assignments");
    char *erec = sql1("SELECT id FROM app_fd_expense ORDER BY id LIMIT 1");
    dbclose();
    db = tdb;
    my = tmy;
    is_my = tis;
    char p[1024];
    struct stat sb;
    snprintf(p, sizeof p, "%s/app_formuploads/expense/%s/receipt.txt", env("EMU_SRC_UPLOADS"), erec ? erec : "-");
    CHECK(stat(p, &sb) == 0, "source: upload file %s", p);
    free(erec);

    /* target: empty, same apps */
    r = GET("console/monitor/running/list", ADM);
    CHECK(r.status == 200 && !json_object_get(r.j, "data"), "target starts empty: %s", r.body);
    rfree(&r);

    /* master login + loginAs */
    char *mq = master_q("emp001");
    r = GET("workflow/currentUsername", mq);
    CHECK(jeq(r.j, "username", "emp001"), "master login + loginAs: %s", r.body);
    rfree(&r);
    char m[33], pre[200], h[33], q[600];
    md5hex("master-secret", m, 0);
    snprintf(pre, sizeof pre, "master::%s", m);
    md5hex(pre, h, 1);
    snprintf(q, sizeof q, "j_username=master&hash=%s&loginAs=emp002", h);
    r = GET("workflow/currentUsername", q);
    CHECK(jeq(r.j, "username", "emp002"), "master hash + loginAs: %s", r.body);
    rfree(&r);
    r = GET("workflow/currentUsername", "j_username=master&j_password=master-secret&loginAs=nobody");
    CHECK(r.status == 401, "loginAs unknown user -> 401, got %ld", r.status);
    rfree(&r);
    r = GET("monitoring/activity/list", mq);
    CHECK(r.status == 403, "loginAs carries only the user's roles -> 403, got %ld", r.status);
    rfree(&r);
    r = GET("workflow/currentUsername", "j_username=master&j_password=wrong&loginAs=emp001");
    CHECK(r.status == 200 && jeq(r.j, "username", "roleAnonymous"), "wrong master password -> anonymous: %s", r.body);
    rfree(&r);

    /* leave_request: tool changes the row, route, group assignment, completion to the end */
    sqlx("INSERT INTO app_fd_leave (id, c_status, c_days) VALUES ('L-1', 'draft', '7')");
    snprintf(q, sizeof q, "%s&recordId=L-1&var_days=7&var_comment=x", mq);
    char *pid = start_proc("hrapp:latest:leave_request", q);
    CHECK(pid != NULL, "start leave_request as emp001 (master loginAs)");
    if (pid) {
        CHECK(strstr(pid, "_hrapp_leave_request") != NULL, "id format: %s", pid);
        CHECK(sqleq("hrapp#3#leave_request", "SELECT pdefname FROM SHKProcesses WHERE id='%s'", pid), "latest -> package version 3");
        CHECK(sqleq("submitted", "SELECT c_status FROM app_fd_leave WHERE id='L-1'"), "start-path tool overwrote c_status");
        CHECK(sqleq("emp001", "SELECT resourcerequesterid FROM SHKProcesses WHERE id='%s'", pid), "requester emp001");
        CHECK(sqlcat("closed.completed", "SELECT DISTINCT s.name FROM SHKActivities a JOIN SHKActivityStates s"
                     " ON s.oid=a.state WHERE a.processid='%s' AND a.activitydefinitionid IN ('stamp','check_days')", pid),
              "tool and route activities completed");
        char *ap = open_act(pid, "approve");
        CHECK(ap && sqlcat("mgr1,mgr2", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", ap),
              "waits at approve for group managers");
        CHECK(ap && complete_as(ap, "mgr2", "pw"), "mgr2 completes approve");
        char *hc = open_act(pid, "hr_check");
        CHECK(hc && sqlcat("hr1,hr2", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", hc),
              "hr_check for hr1,hr2");
        CHECK(hc && complete_as(hc, "hr1", "pw"), "hr1 completes hr_check");
        char *ak = open_act(pid, "acknowledge");
        CHECK(ak && sqlcat("mgr2", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", ak),
              "acknowledge goes to the performer of approve (mgr2)");
        CHECK(ak && complete_as(ak, "mgr2", "pw"), "mgr2 completes acknowledge");
        CHECK(sqleq("closed.completed", "SELECT state FROM wf_history_process WHERE processid='%s'", pid), "process completed and archived");
        CHECK(sqln("SELECT count(*) FROM wf_history_activity WHERE processid='%s'", pid) == 5, "5 activities archived");
        free(ap); free(hc); free(ak);
    }
    free(pid);
    /* route: days <= 3 skips approve */
    snprintf(q, sizeof q, "%s&recordId=L-2&var_days=2", mq);
    pid = start_proc("hrapp:3:leave_request", q);
    char *hc0 = pid ? open_act(pid, "hr_check") : NULL;
    CHECK(hc0 && sqln("SELECT count(*) FROM SHKActivities WHERE processid='%s' AND activitydefinitionid='approve'", pid) == 0,
          "route condition days<=3 goes straight to hr_check");
    free(hc0);
    if (pid) {
        char *x = open_act(pid, "hr_check");
        free(x);
        /* recreate the source state with activity/start as the migrator would */
        char path[600];
        snprintf(path, sizeof path, "monitoring/activity/start/%s/approve", pid);
        r = POST(path, ADM "&abortCurrent=true");
        CHECK(json_is_true(json_object_get(r.j, "result")), "activity/start approve: %s", r.body);
        rfree(&r);
        char *ap = open_act(pid, "approve");
        CHECK(ap && sqln("SELECT count(*) FROM SHKActivities WHERE processid='%s' AND state IN (1000001,1000003)", pid) == 1 &&
                  sqlcat("mgr1,mgr2", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", ap),
              "only approve open, assignees from the target mapping");
        free(ap);
    }
    free(pid);

    /* parallel branches and an AND-join */
    snprintf(q, sizeof q, "%s&recordId=E-1&var_amount=12.5", mq);
    pid = start_proc("hrapp:latest:expense_claim", q);
    CHECK(pid != NULL, "start expense_claim");
    if (pid) {
        CHECK(sqleq("open", "SELECT c_state FROM app_fd_expense WHERE id='E-1'"), "expense tool created the row");
        char *fr = open_act(pid, "finance_review"), *mo = open_act(pid, "manager_ok");
        CHECK(fr && mo, "two parallel activities open");
        CHECK(fr && complete_as(fr, "fin2", "pw"), "fin2 completes finance_review");
        CHECK(sqln("SELECT count(*) FROM SHKActivities WHERE processid='%s' AND activitydefinitionid IN ('merge','pay')", pid) == 0,
              "AND-join waits for the other branch");
        CHECK(fr && sqln("SELECT count(*) FROM SHKAndJoinTable j JOIN SHKProcesses p ON p.oid=j.process JOIN SHKActivities a"
                         " ON a.oid=j.activity WHERE p.id='%s' AND j.activitydefinitionid='merge' AND j.blockactivity IS NULL"
                         " AND a.id='%s' AND a.state=1000007 AND a.resourceid='fin2'", pid, fr) == 1 &&
                  sqln("SELECT count(*) FROM SHKAndJoinTable j JOIN SHKProcesses p ON p.oid=j.process WHERE p.id='%s'", pid) == 1,
              "the arrival of finance_review is a SHKAndJoinTable row (its activity closed.completed by fin2)");
        CHECK(mo && complete_as(mo, "mgr1", "pw"), "mgr1 completes manager_ok");
        CHECK(sqln("SELECT count(*) FROM SHKAndJoinTable j JOIN SHKProcesses p ON p.oid=j.process WHERE p.id='%s'", pid) == 0,
              "the join fired: its SHKAndJoinTable rows are gone");
        char *pay = open_act(pid, "pay");
        CHECK(pay && sqlcat("emp001", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", pay),
              "join passed once; pay assigned to the requester");
        CHECK(sqln("SELECT count(*) FROM SHKActivities WHERE processid='%s' AND activitydefinitionid='merge'", pid) == 1, "join ran once");
        CHECK(pay && complete_as(pay, "emp001", "pw"), "emp001 completes pay");
        CHECK(sqleq("closed.completed", "SELECT state FROM wf_history_process WHERE processid='%s'", pid), "expense completed");
        free(fr); free(mo); free(pay);
    }
    free(pid);
    /* whitelist loggedInUser: anonymous cannot start; the anonymous-degradation pitfall on an open process */
    r = POST("workflow/process/start/hrapp:latest:expense_claim", "j_username=master&j_password=wrong&loginAs=emp001");
    CHECK(r.status == 200 && jeq(r.j, "processId", ""), "wrong master + loginAs -> anonymous -> whitelist denies: %s", r.body);
    rfree(&r);
    pid = start_proc("hrapp:latest:leave_request", "j_username=master&j_password=wrong&loginAs=emp001&recordId=L-3");
    CHECK(pid && sqleq("roleAnonymous", "SELECT resourcerequesterid FROM SHKProcesses WHERE id='%s'", pid),
          "wrong master + loginAs starts anonymously where the whitelist admits anyone");
    free(pid);

    /* sub-flow */
    snprintf(q, sizeof q, "%s&recordId=O-1&var_employee=newbie", mq);
    pid = start_proc("hrapp:latest:onboarding", q);
    CHECK(pid != NULL, "start onboarding");
    if (pid) {
        CHECK(sqleq("prepared", "SELECT c_step FROM app_fd_onboard WHERE id='O-1'"), "tool with #variable.step# wrote the row");
        char *child = sql1("SELECT id FROM SHKProcesses WHERE activityrequesterprocessid='%s'", pid);
        CHECK(child != NULL, "child instance created with activityrequesterprocessid");
        if (child) {
            CHECK(sqleq("O-1", "SELECT originprocessid FROM wf_process_link WHERE processid='%s'", child), "child origin = parent record");
            CHECK(sqleq(pid, "SELECT parentprocessid FROM wf_process_link WHERE processid='%s'", child), "child parent = parent instance");
            CHECK(sqleq("newbie", "SELECT variablevaluevchar FROM SHKProcessData d JOIN SHKProcesses p ON p.oid=d.process"
                        " WHERE p.id='%s' AND d.variabledefinitionid='employee'", child), "same-named variable passed to child");
            char *prov = open_act(pid, "provision");
            CHECK(prov && sqleq("1000001", "SELECT state FROM SHKActivities WHERE id='%s'", prov), "parent sub-flow activity running");
            char *ca = open_act(child, "create_account");
            CHECK(ca && complete_as(ca, "it1", "pw"), "it1 completes the child's create_account");
            CHECK(sqleq("closed.completed", "SELECT state FROM wf_history_process WHERE processid='%s'", child), "child completed");
            char *wel = open_act(pid, "welcome");
            CHECK(wel && sqlcat("emp001", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", wel),
                  "parent resumed at welcome");
            CHECK(wel && complete_as(wel, "emp001", "pw"), "welcome completed");
            CHECK(sqleq("closed.completed", "SELECT state FROM wf_history_process WHERE processid='%s'", pid), "parent completed");
            free(prov); free(ca); free(wel);
        }
        free(child);
    }
    free(pid);
    free(mq);
}

/* two POSTs at the same time (libcurl multi); returns the HTTP statuses */
static void post_pair(const char *p1, const char *q1, const char *p2, const char *q2, long st[2])
{
    CURLM *m = curl_multi_init();
    CURL *h[2];
    const char *paths[2] = {p1, p2}, *qs[2] = {q1, q2};
    struct curl_slist *hdr = curl_slist_append(NULL, "Referer: http://127.0.0.1/jw/");
    resp rs[2];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < 2; i++) {
        char url[1024];
        snprintf(url, sizeof url, "%s/%s", BASE, paths[i]);
        h[i] = curl_easy_init();
        curl_easy_setopt(h[i], CURLOPT_URL, url);
        curl_easy_setopt(h[i], CURLOPT_COPYPOSTFIELDS, qs[i]);
        curl_easy_setopt(h[i], CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h[i], CURLOPT_WRITEFUNCTION, wr);
        curl_easy_setopt(h[i], CURLOPT_WRITEDATA, &rs[i]);
        curl_multi_add_handle(m, h[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (int i = 0; i < 2; i++) {
        curl_easy_getinfo(h[i], CURLINFO_RESPONSE_CODE, &st[i]);
        curl_multi_remove_handle(m, h[i]);
        curl_easy_cleanup(h[i]);
        rfree(&rs[i]);
    }
    curl_slist_free_all(hdr);
    curl_multi_cleanup(m);
}

static void t_concurrency(void)
{
    char *mq = master_q("emp003");
    char q[600], p1[600], p2[600];
    for (int round = 0; round < 5; round++) {
        snprintf(q, sizeof q, "%s&recordId=C-%d", mq, round);
        char *pid = start_proc("hrapp:latest:expense_claim", q);
        char *fr = pid ? open_act(pid, "finance_review") : NULL, *mo = pid ? open_act(pid, "manager_ok") : NULL;
        CHECK(fr && mo, "concurrency round %d: parallel activities", round);
        if (fr && mo) {
            long st[2];
            snprintf(p1, sizeof p1, "workflow/assignment/complete/%s", fr);
            snprintf(p2, sizeof p2, "workflow/assignment/complete/%s", mo);
            post_pair(p1, "j_username=fin1&j_password=pw", p2, "j_username=mgr1&j_password=pw", st);
            CHECK(st[0] == 200 && st[1] == 200, "both branches completed at once (%ld, %ld)", st[0], st[1]);
            CHECK(sqln("SELECT count(*) FROM SHKActivities WHERE processid='%s' AND activitydefinitionid='pay'", pid) == 1,
                  "AND-join passed exactly once under concurrency (round %d)", round);
            CHECK(sqln("SELECT count(*) FROM SHKAndJoinTable j JOIN SHKProcesses p ON p.oid=j.process WHERE p.id='%s'", pid) == 0,
                  "no join rows left behind under concurrency (round %d)", round);
        }
        free(fr); free(mo); free(pid);
        /* two assignees of one activity complete it at the same time: one wins, one gets 404 */
        snprintf(q, sizeof q, "%s&recordId=D-%d&var_days=9", mq, round);
        pid = start_proc("hrapp:latest:leave_request", q);
        char *ap = pid ? open_act(pid, "approve") : NULL;
        if (ap) {
            long st[2];
            snprintf(p1, sizeof p1, "workflow/assignment/complete/%s", ap);
            post_pair(p1, "j_username=mgr1&j_password=pw", p1, "j_username=mgr2&j_password=pw", st);
            CHECK((st[0] == 200) + (st[1] == 200) == 1 && (st[0] == 404 || st[1] == 404),
                  "double completion: one 200, one 404 (%ld, %ld)", st[0], st[1]);
            CHECK(sqln("SELECT count(*) FROM SHKActivities WHERE processid='%s' AND activitydefinitionid='hr_check'", pid) == 1,
                  "the flow moved on exactly once (round %d)", round);
        }
        free(ap); free(pid);
    }
    free(mq);
}

/* ================= faults ================= */

/* N simultaneous GETs of currentUsername on their own connections (curl multi): the wall time until the last
 * answer; *ok = how many answered 200. */
static double simultaneous(const char *base, int n, int *ok)
{
    CURLM *m = curl_multi_init();
    CURL *e[16];
    char url[1024];
    snprintf(url, sizeof url, "%s/workflow/currentUsername", base);
    struct curl_slist *h = curl_slist_append(NULL, "Referer: http://127.0.0.1/jw/");
    resp rs[16];
    memset(rs, 0, sizeof rs);
    for (int i = 0; i < n && i < 16; i++) {
        e[i] = curl_easy_init();
        curl_easy_setopt(e[i], CURLOPT_URL, url);
        curl_easy_setopt(e[i], CURLOPT_HTTPHEADER, h);
        curl_easy_setopt(e[i], CURLOPT_WRITEFUNCTION, wr);
        curl_easy_setopt(e[i], CURLOPT_WRITEDATA, &rs[i]);
        curl_easy_setopt(e[i], CURLOPT_TIMEOUT_MS, 10000L);
        curl_easy_setopt(e[i], CURLOPT_FRESH_CONNECT, 1L);
        curl_multi_add_handle(m, e[i]);
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    int running = 1;
    while (running) {
        curl_multi_perform(m, &running);
        if (running) curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    *ok = 0;
    for (int i = 0; i < n && i < 16; i++) {
        long st = 0;
        curl_easy_getinfo(e[i], CURLINFO_RESPONSE_CODE, &st);
        *ok += st == 200;
        curl_multi_remove_handle(m, e[i]);
        curl_easy_cleanup(e[i]);
        rfree(&rs[i]);
    }
    curl_slist_free_all(h);
    curl_multi_cleanup(m);
    return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}
static void fault_pattern(const char *base, char *out, int n)
{
    for (int i = 0; i < n; i++) {
        resp r = http(base, "GET", "workflow/currentUsername", NULL, REF_DEFAULT, NULL, 5000);
        out[i] = r.err != CURLE_OK ? 'R' : r.status == 500 ? 'E' : r.status == 200 ? '.' : '?';
        rfree(&r);
    }
    out[n] = 0;
}

static void t_faults(void)
{
    char a[61], b[61];
    fault_pattern(BASE, a, 60);
    const char *u2 = env("EMU_URL2");
    fault_pattern(u2, b, 60);
    printf("fault pattern: %s\n", a);
    CHECK(strchr(a, 'R') && strchr(a, 'E') && strchr(a, '.'), "mix of resets, 500s and answers: %s", a);
    CHECK(!strcmp(a, b), "same seed -> same fault sequence:\n %s\n %s", a, b);
    resp r = http(BASE, "GET", "workflow/currentUsername", NULL, REF_DEFAULT, NULL, 5000);
    rfree(&r);
    /* the request log records faults */
    FILE *f = fopen(env("EMU_LOG1"), "r");
    char line[1024];
    int f500 = 0, freset = 0;
    while (f && fgets(line, sizeof line, f)) { f500 += strstr(line, "fault=500") != NULL; freset += strstr(line, "fault=reset") != NULL; }
    if (f) fclose(f);
    CHECK(f500 > 0 && freset > 0, "request log notes faults (500: %d, reset: %d)", f500, freset);
    /* latency */
    const char *u3 = env("EMU_URL3");
    wait_ready(u3);
    r = http(u3, "GET", "workflow/currentUsername", NULL, REF_DEFAULT, NULL, 5000);
    CHECK(r.status == 200 && r.secs >= 0.15, "latency knob adds 150 ms (took %.3f s)", r.secs);
    rfree(&r);
    /* --max-inflight 2 with 200 ms: six requests at once are served two at a time, three rounds (>= 0.6 s);
     * without a limit six at once overlap (f3: 150 ms each, well under four rounds) */
    int ok6;
    double unl = simultaneous(u3, 6, &ok6);
    CHECK(ok6 == 6 && unl < 0.6, "no limit: 6 requests at once overlap (%.3f s, %d answered)", unl, ok6);
    const char *u9 = env("EMU_URL9");
    wait_ready(u9);
    double lim = simultaneous(u9, 6, &ok6);
    printf("6 requests at once: %.3f s with no limit (150 ms each), %.3f s with --max-inflight 2 (200 ms each)\n", unl,
           lim);
    CHECK(ok6 == 6 && lim >= 0.6, "--max-inflight 2: 6 requests at once take 3 rounds of 200 ms (%.3f s, %d answered)",
          lim, ok6);
    /* timeout: never answers */
    const char *u4 = env("EMU_URL4");
    r = http(u4, "GET", "workflow/currentUsername", NULL, REF_DEFAULT, NULL, 700);
    CHECK(r.err == CURLE_OPERATION_TIMEDOUT, "timeout fault: client times out (curl %d)", (int)r.err);
    rfree(&r);
}

/* lines of a request log that contain every one of the given substrings (NULL-terminated) */
static int log_count(const char *file, ...)
{
    FILE *f = fopen(file, "r");
    char line[2048];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        va_list ap;
        va_start(ap, file);
        int all = 1;
        for (const char *w = va_arg(ap, const char *); w; w = va_arg(ap, const char *)) all &= strstr(line, w) != NULL;
        va_end(ap);
        n += all;
    }
    if (f) fclose(f);
    return n;
}

#define ALICE "j_username=alice&j_password=alice-pw"

/* 'lost' and 'partial': the server does the work, the client never learns it */
static void t_faults_lost_partial(void)
{
    const char *u5 = env("EMU_URL5"), *u6 = env("EMU_URL6"), *u7 = env("EMU_URL7"), *u8 = env("EMU_URL8");
    wait_ready(u5); /* a GET: 'lost' never hits it */
    fresh_connect = 1;
    /* lost: process/start is executed and committed, then the connection closes without a status line */
    resp r = http(u5, "POST", "workflow/process/start/conf:1:simple", ALICE "&recordId=lost-1", REF_DEFAULT, NULL, 5000);
    CHECK(r.err == CURLE_GOT_NOTHING && r.status == 0 && r.len == 0,
          "lost: connection closed with no answer (curl %d, status %ld, %zu bytes)", (int)r.err, r.status, r.len);
    rfree(&r);
    char *pid = sql1("SELECT processid FROM wf_process_link WHERE originprocessid='lost-1'");
    CHECK(pid && sqleq("1000000", "SELECT state FROM SHKProcesses WHERE id='%s'", pid), "lost: the instance exists and runs");
    char *a1 = pid ? open_act(pid, "a1") : NULL;
    CHECK(a1 && sqlcat("bob", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", a1),
          "lost: the start path ran to a1 (assigned to bob)");
    r = http(u5, "GET", "console/monitor/running/list", ADM "&recordId=lost-1", REF_DEFAULT, NULL, 5000);
    CHECK(r.status == 200 && rows_of(r.j) == 1 && jeq(row(r.j, 0), "id", pid), "lost: the instance is in running/list: %s",
          r.body ? r.body : "");
    rfree(&r);
    /* lost on a completion: a1 completed, a2 created */
    char path[600];
    snprintf(path, sizeof path, "workflow/assignment/complete/%s", a1 ? a1 : "x");
    r = http(u5, "POST", path, "j_username=bob&j_password=bob-pw", REF_DEFAULT, NULL, 5000);
    CHECK(r.err == CURLE_GOT_NOTHING, "lost completion: no answer (curl %d)", (int)r.err);
    rfree(&r);
    CHECK(a1 && sqleq("bob", "SELECT resourceid FROM SHKActivities WHERE id='%s' AND state=1000007", a1),
          "lost completion: a1 completed by bob");
    char *a2 = pid ? open_act(pid, "a2") : NULL;
    CHECK(a2 != NULL, "lost completion: the flow moved on to a2");
    /* lost never hits a GET: with --fail-rate 1 every GET is answered */
    int answered = 0;
    for (int i = 0; i < 20; i++) {
        r = http(u5, "GET", i % 2 ? "workflow/currentUsername" : "monitoring/activity/list", ADM, REF_DEFAULT, NULL, 5000);
        answered += r.err == CURLE_OK && r.status == 200 && r.j != NULL;
        rfree(&r);
    }
    CHECK(answered == 20, "lost never hits a GET: %d of 20 answered", answered);
    const char *log5 = env("EMU_LOG5");
    CHECK(log_count(log5, "POST /jw/web/json/workflow/process/start/conf:1:simple 200 ", "fault=lost", NULL) == 1 &&
              log_count(log5, "POST /jw/web/json/workflow/assignment/complete/", " 200 ", "fault=lost", NULL) == 1,
          "request log: fault=lost with the status the call would have had");
    CHECK(log_count(log5, "GET ", "fault=", NULL) == 0, "request log: no GET faulted");
    free(pid); free(a1); free(a2);

    /* partial: executed, headers with the full Content-Length, then half the body and a closed connection */
    r = http(u6, "POST", "workflow/process/start/conf:1:simple", ALICE "&recordId=partial-1", REF_DEFAULT, NULL, 5000);
    CHECK(r.err == CURLE_PARTIAL_FILE && r.status == 200 && r.cl > 0 && (curl_off_t)r.len == r.cl / 2 && r.j == NULL,
          "partial: 200, Content-Length %ld, %zu bytes received, body cut (curl %d)", (long)r.cl, r.len, (int)r.err);
    rfree(&r);
    pid = sql1("SELECT processid FROM wf_process_link WHERE originprocessid='partial-1'");
    CHECK(pid && sqleq("1000000", "SELECT state FROM SHKProcesses WHERE id='%s'", pid), "partial: the work is done (instance runs)");
    a1 = pid ? open_act(pid, "a1") : NULL;
    CHECK(a1 != NULL, "partial: instance waits at a1");
    r = http(u6, "GET", "console/monitor/running/list", ADM, REF_DEFAULT, NULL, 5000);
    CHECK(r.err == CURLE_PARTIAL_FILE && r.status == 200 && r.cl > 100 && (curl_off_t)r.len == r.cl / 2 &&
              !strncmp(r.body ? r.body : "", "{\"data\":[", 9),
          "partial GET: the first half of the list (%zu of %ld bytes)", r.len, (long)r.cl);
    rfree(&r);
    CHECK(log_count(env("EMU_LOG6"), "POST /jw/web/json/workflow/process/start/conf:1:simple 200 ", "fault=partial", NULL) == 1,
          "request log: fault=partial");
    free(pid); free(a1);

    /* mixed kinds: the draw is among the kinds that apply, deterministic per seed */
    char pa[41], pb[41];
    const char *bases[2] = {u7, u8};
    char *pats[2] = {pa, pb};
    for (int e = 0; e < 2; e++) {
        for (int i = 0; i < 40; i++) {
            char q[200];
            int post = i % 2;
            snprintf(q, sizeof q, ALICE "&recordId=mix-%d-%d", e, i);
            r = post ? http(bases[e], "POST", "workflow/process/start/conf:1:simple", q, REF_DEFAULT, NULL, 5000)
                     : http(bases[e], "GET", "workflow/currentUsername", NULL, REF_DEFAULT, NULL, 5000);
            pats[e][i] = r.err == CURLE_GOT_NOTHING ? 'L' : r.status == 500 ? 'E' : r.status == 200 ? '.' : '?';
            rfree(&r);
        }
        pats[e][40] = 0;
    }
    printf("mixed pattern (even = GET, odd = POST): %s\n", pa);
    CHECK(!strcmp(pa, pb), "same seed -> same faults with lost in the mix:\n %s\n %s", pa, pb);
    int get_lost = 0, post_lost = 0, errs = 0;
    for (int i = 0; i < 40; i++) {
        if (pa[i] == 'L') { if (i % 2) post_lost++; else get_lost++; }
        errs += pa[i] == 'E';
    }
    CHECK(get_lost == 0 && post_lost > 0 && errs > 0, "lost only on POSTs (GET %d, POST %d), 500s too (%d)", get_lost, post_lost, errs);
    long lost_started = sqln("SELECT count(*) FROM wf_process_link WHERE originprocessid LIKE 'mix-0-%%'");
    int answered_posts = 0;
    for (int i = 1; i < 40; i += 2) answered_posts += pa[i] == '.';
    CHECK(lost_started == answered_posts + post_lost, "every answered or lost start made an instance, no 500 did (%ld == %d + %d)",
          lost_started, answered_posts, post_lost);
    fresh_connect = 0;
}

/* ================= AND-joins, deadlines, default plugins, audit log ================= */
/* lines of the audit log with these fields (NULL = any); every line must have exactly 5 fields */
static int audit_count(const char *event, const char *actid, const char *pid, const char *user, int *malformed)
{
    FILE *f = fopen(env("EMU_AUDIT"), "r");
    char line[2048], t[64], ev[64], a[600], p[600], u[256], extra[8];
    int n = 0;
    while (f && fgets(line, sizeof line, f)) {
        int k = sscanf(line, "%63s %63s %599s %599s %255s %7s", t, ev, a, p, u, extra);
        if (k != 5 || strlen(t) != 24 || t[10] != 'T' || t[23] != 'Z') { if (malformed) (*malformed)++; continue; }
        n += (!event || !strcmp(ev, event)) && (!actid || !strcmp(a, actid)) && (!pid || !strcmp(p, pid)) &&
             (!user || !strcmp(u, user));
    }
    if (f) fclose(f);
    return n;
}

static char *activity_view_field(const char *aid, const char *key)
{
    char path[600];
    snprintf(path, sizeof path, "monitoring/activity/view/%s", aid);
    resp r = GET(path, ADM);
    char *v = js(r.j, key) ? strdup(js(r.j, key)) : NULL;
    rfree(&r);
    return v;
}

#define OPEN_STATES "(1000001,1000003,1000005)"

static void t_features(void)
{
    int bad = 0;
    /* app default plugins */
    CHECK(sqleq("org.joget.apps.app.lib.UserNotificationAuditTrail", "SELECT pluginname FROM app_plugin_default WHERE appid='feat'"
                " AND appversion=1 AND id='org.joget.apps.app.lib.UserNotificationAuditTrail'"), "app_plugin_default row of feat");
    CHECK(sqleq("{\"subject\":\"New task: #assignment.activityName#\"}", "SELECT pluginproperties FROM app_plugin_default WHERE appid='feat'") &&
              sqleq("e-mails the assignees of every new assignment", "SELECT plugindescription FROM app_plugin_default WHERE appid='feat'"),
          "plugin properties and description stored");
    CHECK(sqln("SELECT count(*) FROM app_plugin_default WHERE appid='quiet'") == 0, "quiet has no default plugin");
    CHECK(audit_count(NULL, NULL, NULL, NULL, &bad) == 0, "fixture assignments notify nobody");

    /* a fixture instance waiting at a partly joined AND-join */
    char *poid = sql1("SELECT oid FROM SHKProcesses WHERE id='fx_par_1'");
    char *left = sql1("SELECT oid FROM SHKActivities WHERE processid='fx_par_1' AND activitydefinitionid='left'");
    CHECK(poid && left && sqleq("1000007", "SELECT state FROM SHKActivities WHERE oid=%s", left) &&
              sqleq("u1", "SELECT resourceid FROM SHKActivities WHERE oid=%s", left) &&
              sqleq("1", "SELECT count(*) FROM SHKActivities a JOIN SHKResourcesTable r ON r.oid=a.theresource"
                         " WHERE a.oid=%s AND r.username='u1'", left),
          "arrived: 'left' closed.completed, performed by u1");
    CHECK(poid && left && sqleq("1", "SELECT count(*) FROM SHKAndJoinTable WHERE process=%s AND activitydefinitionid='meet'"
                                     " AND activity=%s AND blockactivity IS NULL AND cnt IS NOT NULL AND oid <> cnt", poid, left),
          "arrived: one SHKAndJoinTable row (process, join 'meet', activity 'left', no block activity)");
    char *right = open_act("fx_par_1", "right");
    CHECK(right && sqleq("7200000", "SELECT limittime - activated FROM SHKActivities WHERE id='%s'", right) &&
              sqln("SELECT count(*) FROM SHKDeadlines d JOIN SHKActivities a ON a.oid=d.activity WHERE a.id='%s'"
                   " AND d.timelimit=a.limittime", right) == 1,
          "fixture activity inherits the definition's deadline (limittime and SHKDeadlines)");
    CHECK(right && complete_as(right, "u2", "pw"), "u2 completes the open branch 'right'");
    char *meet = open_act("fx_par_1", "meet");
    CHECK(meet && sqlcat("alice", "SELECT resourceid FROM SHKAssignmentsTable WHERE activityid='%s' ORDER BY resourceid", meet),
          "the join fired: 'meet' open for the requester");
    CHECK(poid && sqln("SELECT count(*) FROM SHKAndJoinTable WHERE process=%s", poid) == 0, "join rows deleted when it fired");
    CHECK(sqln("SELECT count(*) FROM SHKDeadlines d JOIN SHKActivities a ON a.oid=d.activity WHERE a.id='%s'", right ? right : "") == 0,
          "the completed activity's deadline row is gone");
    CHECK(audit_count("getDefaultAssignments", meet, "fx_par_1", "alice", &bad) == 1, "audit: one line for the join's assignment");
    CHECK(meet && complete_as(meet, "alice", "alice-pw"), "alice completes meet");
    CHECK(sqleq("closed.completed", "SELECT state FROM wf_history_process WHERE processid='fx_par_1'") &&
              sqln("SELECT count(*) FROM wf_history_activity WHERE processid='fx_par_1'") == 3,
          "instance completed and archived with left, right, meet");
    free(poid); free(left); free(right); free(meet);

    /* the engine records arrivals itself; a second arrival from the same branch does not count twice */
    char *pid = start_proc("feat:1:par", ALICE);
    CHECK(pid != NULL, "start par");
    if (pid) {
        poid = sql1("SELECT oid FROM SHKProcesses WHERE id='%s'", pid);
        char *l1 = open_act(pid, "left");
        char *r1 = open_act(pid, "right");
        CHECK(l1 && r1, "both branches open");
        CHECK(audit_count("getDefaultAssignments", l1, pid, "u1", &bad) == 1 &&
                  audit_count("getDefaultAssignments", r1, pid, "u2", &bad) == 1 && audit_count(NULL, NULL, pid, NULL, &bad) == 2,
              "audit: one line per assignment of the start path");
        /* deadlines of an engine-created activity */
        CHECK(r1 && sqleq("7200000", "SELECT limittime - activated FROM SHKActivities WHERE id='%s'", r1),
              "limittime = activated + deadline_ms");
        CHECK(r1 && sqln("SELECT count(*) FROM SHKDeadlines d JOIN SHKActivities a ON a.oid=d.activity WHERE a.id='%s'"
                         " AND d.process=a.process AND d.timelimit=a.limittime AND d.timelimittzo=0 AND d.exceptionname='deadline'"
                         " AND NOT d.issynchronous AND NOT d.isexecuted AND d.cnt IS NOT NULL", r1) == 1,
              "one SHKDeadlines row for the activity");
        CHECK(l1 && sqleq("0", "SELECT limittime FROM SHKActivities WHERE id='%s'", l1) &&
                  sqln("SELECT count(*) FROM SHKDeadlines d JOIN SHKActivities a ON a.oid=d.activity WHERE a.id='%s'", l1) == 0,
              "no deadline where the definition has none");
        char *due = r1 ? activity_view_field(r1, "dueDate") : NULL, *want = NULL;
        long long lt = sqln("SELECT limittime FROM SHKActivities WHERE id='%s'", r1 ? r1 : "");
        if (lt > 0) { /* yyyy-MM-dd hh:mm a in UTC */
            time_t t = (time_t)(lt / 1000);
            struct tm tm;
            gmtime_r(&t, &tm);
            want = calloc(1, 64);
            strftime(want, 64, "%Y-%m-%d %I:%M %p", &tm);
        }
        CHECK(due && want && !strcmp(due, want), "activity view dueDate '%s' (want '%s')", due ? due : "-", want ? want : "-");
        char *ldue = l1 ? activity_view_field(l1, "dueDate") : NULL;
        CHECK(l1 && !ldue, "no dueDate without a deadline");
        char q[600];
        snprintf(q, sizeof q, ADM "&processId=%s", pid);
        resp r = GET("console/monitor/running/list", q);
        CHECK(jeq(row(r.j, 0), "due", want), "running list due = the earliest open deadline: %s", r.body ? r.body : "");
        rfree(&r);
        r = GET("workflow/assignment/list", "j_username=u2&j_password=pw");
        int seen = 0;
        for (size_t i = 0; i < rows_of(r.j); i++) seen += jeq(row(r.j, i), "activityId", r1) && jeq(row(r.j, i), "due", want);
        CHECK(seen == 1, "assignment list due: %s", r.body ? r.body : "");
        rfree(&r);
        free(due); free(ldue);

        CHECK(l1 && complete_as(l1, "u1", "pw"), "u1 completes left");
        CHECK(poid && l1 && sqln("SELECT count(*) FROM SHKAndJoinTable j JOIN SHKActivities a ON a.oid=j.activity"
                                 " WHERE j.process=%s AND j.activitydefinitionid='meet' AND a.id='%s' AND a.state=1000007"
                                 " AND a.resourceid='u1'", poid, l1) == 1,
              "engine: arrival of 'left' in SHKAndJoinTable, its row closed.completed by u1");
        CHECK(sqln("SELECT count(*) FROM SHKActivities WHERE processid='%s' AND activitydefinitionid='meet'", pid) == 0,
              "the join waits for 'right'");
        char path[600];
        snprintf(path, sizeof path, "monitoring/activity/start/%s/left", pid);
        r = POST(path, ADM);
        CHECK(json_is_true(json_object_get(r.j, "result")), "activity/start left again: %s", r.body ? r.body : "");
        rfree(&r);
        char *l2 = open_act(pid, "left");
        CHECK(l2 && audit_count("getDefaultAssignments", l2, pid, "u1", &bad) == 1, "audit: activity/start assignment");
        CHECK(l2 && complete_as(l2, "u1", "pw"), "u1 completes the second left");
        CHECK(poid && sqln("SELECT count(*) FROM SHKAndJoinTable WHERE process=%s", poid) == 2 &&
                  sqln("SELECT count(*) FROM SHKActivities WHERE processid='%s' AND activitydefinitionid='meet'", pid) == 0,
              "a second arrival from the same branch is recorded but does not fire the join");
        CHECK(r1 && complete_as(r1, "u2", "pw"), "u2 completes right");
        char *m1 = open_act(pid, "meet");
        CHECK(m1 && poid && sqln("SELECT count(*) FROM SHKAndJoinTable WHERE process=%s", poid) == 0, "join fired, rows gone");
        CHECK(poid && sqln("SELECT count(*) FROM SHKDeadlines WHERE process=%s", poid) == 0, "right's deadline row deleted");
        /* reassign -> audit line */
        snprintf(q, sizeof q, ADM "&activityId=%s&username=u3&replaceUser=alice", m1 ? m1 : "x");
        r = POST("monitoring/activity/reassign", q);
        CHECK(r.status == 200, "reassign meet to u3: %ld", r.status);
        rfree(&r);
        CHECK(audit_count("assignmentReassign", m1, pid, "u3", &bad) == 1, "audit: reassign line");
        snprintf(q, sizeof q, ADM "&activityId=%s&username=u2&replaceUser=nobody", m1 ? m1 : "x");
        r = POST("monitoring/activity/reassign", q);
        rfree(&r);
        CHECK(audit_count("assignmentReassign", m1, pid, "u2", &bad) == 0, "no line when nothing was reassigned");
        CHECK(m1 && complete_as(m1, "u3", "pw"), "u3 completes meet");
        CHECK(sqleq("closed.completed", "SELECT state FROM wf_history_process WHERE processid='%s'", pid), "par completed");
        CHECK(r1 && sqln("SELECT count(*) FROM wf_history_activity WHERE activityid='%s' AND due IS NOT NULL", r1) == 1,
              "archived activity keeps its due date");
        CHECK(audit_count(NULL, NULL, pid, NULL, &bad) == 5, "audit: 5 lines for the instance (left, right, left, meet, reassign)");
        free(l1); free(r1); free(l2); free(m1); free(want); free(poid);
    }
    free(pid);

    /* deadlines of fixture activities: due before the target would compute it */
    char *f1 = open_act("fx_dl_1", "first");
    CHECK(f1 && sqleq("1700172800000", "SELECT limittime FROM SHKActivities WHERE id='%s'", f1) &&
              sqln("SELECT count(*) FROM SHKDeadlines d JOIN SHKActivities a ON a.oid=d.activity WHERE a.id='%s'"
                   " AND d.timelimit=1700172800000 AND d.exceptionname='deadline'", f1) == 1,
          "fixture: startedMs + the definition's deadline_ms");
    char *due = f1 ? activity_view_field(f1, "dueDate") : NULL;
    CHECK(due && !strcmp(due, "2023-11-16 10:13 PM"), "fixture dueDate: %s", due ? due : "-");
    free(due);
    char *f2 = open_act("fx_dl_2", "second");
    CHECK(f2 && sqleq("1700000060000", "SELECT limittime FROM SHKActivities WHERE id='%s'", f2) &&
              sqln("SELECT count(*) FROM SHKDeadlines d JOIN SHKActivities a ON a.oid=d.activity WHERE a.id='%s'", f2) == 1,
          "fixture: limit_ms on an activity without a definition deadline");
    char *f3 = open_act("fx_dl_3", "first");
    CHECK(f3 && sqleq("0", "SELECT limittime FROM SHKActivities WHERE id='%s'", f3) &&
              sqln("SELECT count(*) FROM SHKDeadlines d JOIN SHKActivities a ON a.oid=d.activity WHERE a.id='%s'", f3) == 0,
          "fixture: limit_ms 0 overrides the definition's deadline");
    CHECK(f1 && complete_as(f1, "u1", "pw"), "u1 completes fx_dl_1 first");
    CHECK(f1 && sqln("SELECT count(*) FROM SHKDeadlines d JOIN SHKActivities a ON a.oid=d.activity WHERE a.id='%s'", f1) == 0,
          "completed: deadline row deleted");
    char *s1 = open_act("fx_dl_1", "second");
    CHECK(s1 && sqleq("0", "SELECT limittime FROM SHKActivities WHERE id='%s'", s1), "second has no deadline");
    resp r = POST("monitoring/activity/abort/fx_dl_2/second", ADM);
    rfree(&r);
    CHECK(f2 && sqleq("1000011", "SELECT state FROM SHKActivities WHERE id='%s'", f2) &&
              sqln("SELECT count(*) FROM SHKDeadlines d JOIN SHKActivities a ON a.oid=d.activity WHERE a.id='%s'", f2) == 0,
          "aborted activity: deadline row deleted");
    pid = start_proc("feat:1:dl", ALICE);
    char *dpoid = pid ? sql1("SELECT oid FROM SHKProcesses WHERE id='%s'", pid) : NULL;
    CHECK(dpoid && sqln("SELECT count(*) FROM SHKDeadlines WHERE process=%s", dpoid) == 1, "start path: deadline of first");
    char path[600];
    snprintf(path, sizeof path, "workflow/process/abort/%s", pid ? pid : "x");
    r = POST(path, ADM);
    rfree(&r);
    CHECK(dpoid && sqln("SELECT count(*) FROM SHKDeadlines WHERE process=%s", dpoid) == 0 &&
              sqleq("closed.aborted", "SELECT state FROM wf_history_process WHERE processid='%s'", pid ? pid : ""),
          "process abort: archived, deadline rows gone");
    free(f1); free(f2); free(f3); free(s1); free(dpoid); free(pid);

    /* an app without the audit-trail default plugin notifies nobody */
    pid = start_proc("quiet:1:q", ALICE);
    char *q1 = pid ? open_act(pid, "q1") : NULL;
    CHECK(q1 != NULL, "quiet process waits at q1");
    free(q1);
    CHECK(pid && audit_count(NULL, NULL, pid, NULL, &bad) == 0, "no audit line for quiet");
    free(pid);
    CHECK(bad == 0, "every audit line has 5 fields and an ISO time (%d malformed)", bad);
}

/* ================= generated fixture ================= */
static void t_generator(void)
{
    long n = atol(env("EMU_N"));
    resp r = GET("console/monitor/running/list", ADM "&rows=1");
    long total = json_integer_value(json_object_get(r.j, "total"));
    CHECK(total == n + n / 4, "running instances %ld == %ld top-level + %ld sub-flows", total, n, n / 4);
    rfree(&r);
    CHECK(sqln("SELECT count(*) FROM SHKProcesses WHERE activityrequesterprocessid IS NULL") == n, "top-level instances");
    CHECK(sqln("SELECT count(DISTINCT pdefname) FROM SHKProcesses") >= 4, "at least 3 processes + sub-flow");
    CHECK(sqln("SELECT count(*) FROM SHKActivities WHERE activitydefinitionid='finance_review'") == n / 4, "parallel activities");
    CHECK(sqln("SELECT count(*) FROM app_fd_leave") == n / 2, "leave records");
    /* approve carries a 2-day deadline; hrapp version 2 has the audit trail as a default plugin */
    CHECK(sqln("SELECT count(*) FROM SHKDeadlines d JOIN SHKActivities a ON a.oid=d.activity WHERE a.activitydefinitionid='approve'"
               " AND a.limittime = a.activated + 172800000 AND d.timelimit = a.limittime") == n / 4 &&
              sqln("SELECT count(*) FROM SHKDeadlines") == n / 4, "a deadline for every instance waiting at approve");
    CHECK(sqleq("org.joget.apps.app.lib.UserNotificationAuditTrail", "SELECT pluginname FROM app_plugin_default WHERE appid='hrapp'"
                " AND appversion=2") && sqln("SELECT count(*) FROM app_plugin_default WHERE appversion=1") == 0,
          "hrapp version 2 has the audit-trail default plugin");
    /* --joins J: every J-th expense instance waits at a partly joined AND-join */
    long j = atol(env("EMU_JOINS")), nexp = n / 4, nj = j ? nexp / j : 0;
    CHECK(sqln("SELECT count(*) FROM SHKAndJoinTable") == nj &&
              sqln("SELECT count(*) FROM SHKAndJoinTable j JOIN SHKActivities a ON a.oid=j.activity WHERE j.activitydefinitionid='merge'"
                   " AND a.activitydefinitionid='finance_review' AND a.state=1000007 AND a.resourceid IN ('fin1','fin2')"
                   " AND a.process=j.process") == nj,
          "%ld partly joined expense instances: finance_review arrived (fin1/fin2)", nj);
    CHECK(sqln("SELECT count(DISTINCT a.resourceid) FROM SHKAndJoinTable j JOIN SHKActivities a ON a.oid=j.activity") == (nj > 1 ? 2 : nj),
          "both finance users appear as performers");
    CHECK(sqln("SELECT count(*) FROM SHKActivities WHERE activitydefinitionid='manager_ok' AND state=1000003") == nexp &&
              sqln("SELECT count(*) FROM SHKActivities WHERE activitydefinitionid='finance_review' AND state=1000003") == nexp - nj,
          "manager_ok open everywhere, finance_review open where not arrived");
    char *jp = sql1("SELECT p.id FROM SHKAndJoinTable j JOIN SHKProcesses p ON p.oid=j.process ORDER BY p.oid LIMIT 1");
    if (nj) {
        char *mo = jp ? open_act(jp, "manager_ok") : NULL;
        CHECK(mo && complete_as(mo, "mgr1", "pw"), "partly joined instance: mgr1 completes manager_ok");
        char *pay = jp ? open_act(jp, "pay") : NULL;
        CHECK(pay != NULL && sqln("SELECT count(*) FROM SHKAndJoinTable j JOIN SHKProcesses p ON p.oid=j.process WHERE p.id='%s'",
                                  jp) == 0, "the join fired and moved on to pay");
        free(mo); free(pay);
    }
    free(jp);
    char p[1024];
    struct stat sb;
    snprintf(p, sizeof p, "%s/app_formuploads/leave", env("EMU_UPLOADS"));
    CHECK(stat(p, &sb) == 0 && S_ISDIR(sb.st_mode), "upload files written");
    /* a generated instance can be driven to the end */
    char *pid = sql1("SELECT processid FROM SHKActivities WHERE activitydefinitionid='approve' LIMIT 1");
    char *ap = pid ? open_act(pid, "approve") : NULL;
    CHECK(ap && complete_as(ap, "mgr1", "pw"), "generated instance: mgr1 completes approve");
    free(ap);
    free(pid);
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: joget-emulator-tests conformance|engine|faults|features|generator\n"); return 2; }
    curl_global_init(CURL_GLOBAL_ALL);
    curl_h = curl_easy_init();
    BASE = env("EMU_URL");
    dbopen(env("EMU_DB"));
    if (strcmp(argv[1], "faults")) wait_ready(BASE);
    if (!strcmp(argv[1], "conformance")) {
        t_schema();
        t_referer_and_errors();
        t_auth();
        t_lists();
        t_start();
        t_activities();
        t_assignments();
        t_form_and_files();
    } else if (!strcmp(argv[1], "engine")) { t_engine(); t_concurrency(); }
    else if (!strcmp(argv[1], "faults")) { t_faults(); t_faults_lost_partial(); }
    else if (!strcmp(argv[1], "features")) t_features();
    else if (!strcmp(argv[1], "generator")) t_generator();
    else { fprintf(stderr, "unknown suite %s\n", argv[1]); return 2; }
    dbclose();
    curl_easy_cleanup(curl_h);
    curl_global_cleanup();
    printf("%s: %d checks, %d failed\n", argv[1], checks, fails);
    return fails ? 1 : 0;
}
