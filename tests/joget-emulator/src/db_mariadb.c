/* The MariaDB backend of the database layer (MariaDB Connector/C).
   - --db mariadb://user:password@host:port/dbname (also mysql://; ?socket=PATH for a Unix socket; %XX escapes).
   - Parameters: the layer's $N placeholders become literals here (escaped with the connection's character set):
     $N::bigint|int|integer|numeric|float8|double -> the number unquoted (anything else is refused, as PostgreSQL
     refuses it), $N::boolean -> 1 or 0, $N or $N::text -> a quoted string, a NULL parameter -> NULL. A '::' cast
     anywhere else is refused: such SQL is not portable and belongs in sql.c.
   - Each connection: utf8mb4 (utf8mb4_unicode_ci), time zone UTC, READ COMMITTED (as PostgreSQL: a locking read
     after a wait sees the other transaction's commit, and so does the next plain read), PIPES_AS_CONCAT (|| joins
     strings, as in PostgreSQL), CLIENT_FOUND_ROWS (an UPDATE reports the rows it matched).
   - A failed statement inside a transaction marks it: further statements are refused and COMMIT rolls back, the way
     PostgreSQL treats a transaction with an error.
   - Results: BIT values come out as "0"/"1", DATETIME/TIMESTAMP values as PostgreSQL prints a UTC timestamptz.
   - Bulk loads: multi-row INSERTs of at most 1 MiB. */
#define _GNU_SOURCE
#include "dbi.h"
#include <ctype.h>
#include <errmsg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

char *g_my_user, *g_my_pw, *g_my_host, *g_my_db, *g_my_socket;
unsigned g_my_port = 3306;

static char *pct_decode(const char *s, size_t n)
{
    char *o = malloc(n + 1), *d = o;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '%' && i + 2 < n + 1 && isxdigit((unsigned char)s[i + 1]) && i + 2 < n && isxdigit((unsigned char)s[i + 2])) {
            char h[3] = {s[i + 1], s[i + 2], 0};
            *d++ = (char)strtol(h, NULL, 16);
            i += 2;
        } else *d++ = s[i];
    }
    *d = 0;
    return o;
}

int my_parse_url(const char *url, char **user, char **pw, char **host, unsigned *port, char **db, char **socket)
{
    const char *s = strstr(url, "://") + 3, *at = NULL;
    const char *slash = strchr(s, '/');
    if (!slash) {
        fprintf(stderr, "joget-emulator: --db %s: a MariaDB URL needs a database: mariadb://user:password@host:port/dbname\n",
                url);
        return -1;
    }
    for (const char *q = s; q < slash; q++) if (*q == '@') at = q;
    *user = *pw = *socket = NULL;
    if (at) {
        const char *colon = memchr(s, ':', (size_t)(at - s));
        *user = pct_decode(s, (size_t)((colon ? colon : at) - s));
        if (colon) *pw = pct_decode(colon + 1, (size_t)(at - colon - 1));
        s = at + 1;
    }
    const char *colon = memchr(s, ':', (size_t)(slash - s));
    *host = pct_decode(s, (size_t)((colon ? colon : slash) - s));
    *port = 3306;
    if (colon) {
        char *e;
        long p = strtol(colon + 1, &e, 10);
        if (e != slash || p <= 0 || p > 65535) {
            fprintf(stderr, "joget-emulator: --db %s: '%.*s' is not a port\n", url, (int)(slash - colon - 1), colon + 1);
            free(*user); free(*pw); free(*host);
            return -1;
        }
        *port = (unsigned)p;
    }
    const char *q = strchr(slash, '?');
    *db = pct_decode(slash + 1, q ? (size_t)(q - slash - 1) : strlen(slash + 1));
    if (q && !strncmp(q + 1, "socket=", 7)) *socket = pct_decode(q + 8, strlen(q + 8));
    else if (q) {
        fprintf(stderr, "joget-emulator: --db %s: unknown option '%s' (valid: ?socket=PATH)\n", url, q + 1);
        free(*user); free(*pw); free(*host); free(*db);
        return -1;
    }
    if (!**db) {
        fprintf(stderr, "joget-emulator: --db %s: the database name is missing (mariadb://user:password@host:port/dbname)\n",
                url);
        free(*user); free(*pw); free(*host); free(*db);
        return -1;
    }
    if (!**host) { free(*host); *host = xstrdup("127.0.0.1"); }
    return 0;
}

MYSQL *my_connect(int side)
{
    MYSQL *m = mysql_init(NULL);
    if (!m) return NULL;
    unsigned timeout = 10;
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    if (!mysql_real_connect(m, g_my_host, g_my_user, g_my_pw, g_my_db, g_my_port, g_my_socket, CLIENT_FOUND_ROWS)) {
        fprintf(stderr, "joget-emulator: cannot connect to MariaDB (--db) %s@%s:%u/%s: %s\n", g_my_user ? g_my_user : "",
                g_my_host, g_my_port, g_my_db, mysql_error(m));
        mysql_close(m);
        return NULL;
    }
    static const char *setup[] = {
        "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci", "SET time_zone = '+00:00'",
        "SET SESSION sql_mode = 'STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_ENGINE_SUBSTITUTION,PIPES_AS_CONCAT'",
        "SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED", NULL};
    for (int i = 0; setup[i]; i++)
        if (mysql_query(m, setup[i])) {
            fprintf(stderr, "joget-emulator: MariaDB session setup '%s' failed: %s\n", setup[i], mysql_error(m));
            mysql_close(m);
            return NULL;
        }
    if (side && mysql_query(m, "SET SESSION lock_wait_timeout = 10"))
        fprintf(stderr, "joget-emulator: MariaDB: %s\n", mysql_error(m));
    return m;
}

/* ---------- parameters ---------- */
static int is_number(const char *v)
{
    const char *s = v;
    if (*s == '-' || *s == '+') s++;
    int digits = 0;
    while (isdigit((unsigned char)*s)) { s++; digits++; }
    if (*s == '.') { s++; while (isdigit((unsigned char)*s)) { s++; digits++; } }
    if (!digits) return 0;
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+') s++;
        if (!isdigit((unsigned char)*s)) return 0;
        while (isdigit((unsigned char)*s)) s++;
    }
    return *s == 0;
}

static void add_quoted(sbuf *b, MYSQL *m, const char *v)
{
    size_t n = strlen(v);
    char *t = malloc(2 * n + 1);
    unsigned long k = mysql_real_escape_string(m, t, v, (unsigned long)n);
    sb_addc(b, '\'');
    sb_addn(b, t, k);
    sb_addc(b, '\'');
    free(t);
}

/* $N[::type] -> literals; returns 0, or -1 with err set */
static int render(MYSQL *m, const char *sql, int n, const char *const *p, sbuf *out, char *err, size_t errn)
{
    const char *s = sql;
    char quote = 0;
    while (*s) {
        char ch = *s;
        if (quote) {
            sb_addc(out, ch);
            if (ch == '\\' && quote == '\'' && s[1]) { sb_addc(out, s[1]); s += 2; continue; }
            if (ch == quote) quote = 0;
            s++;
            continue;
        }
        if (ch == '\'' || ch == '`' || ch == '"') { quote = ch; sb_addc(out, ch); s++; continue; }
        if (ch == ':' && s[1] == ':') { snprintf(err, errn, "a '::' cast outside a parameter is not portable"); return -1; }
        if (ch != '$' || !isdigit((unsigned char)s[1])) { sb_addc(out, ch); s++; continue; }
        char *e;
        long k = strtol(s + 1, &e, 10);
        s = e;
        char type[32] = "";
        if (s[0] == ':' && s[1] == ':') {
            s += 2;
            size_t t = 0;
            while ((isalnum((unsigned char)*s) || *s == '_') && t < sizeof type - 1) type[t++] = (char)tolower((unsigned char)*s++);
            type[t] = 0;
        }
        if (k < 1 || k > n) { snprintf(err, errn, "parameter $%ld without a value (%d given)", k, n); return -1; }
        const char *v = p[k - 1];
        if (!v) { sb_add(out, "NULL"); continue; }
        if (!strcmp(type, "bigint") || !strcmp(type, "int") || !strcmp(type, "integer") || !strcmp(type, "int8") ||
            !strcmp(type, "numeric") || !strcmp(type, "float8") || !strcmp(type, "double") || !strcmp(type, "smallint")) {
            if (!is_number(v)) { snprintf(err, errn, "invalid input syntax for type %s: \"%.60s\"", type, v); return -1; }
            sb_add(out, v);
        } else if (!strcmp(type, "boolean") || !strcmp(type, "bool")) {
            if (!strcasecmp(v, "t") || !strcasecmp(v, "true") || !strcmp(v, "1") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"))
                sb_addc(out, '1');
            else if (!strcasecmp(v, "f") || !strcasecmp(v, "false") || !strcmp(v, "0") || !strcasecmp(v, "no") ||
                     !strcasecmp(v, "off"))
                sb_addc(out, '0');
            else { snprintf(err, errn, "invalid input syntax for type boolean: \"%.60s\"", v); return -1; }
        } else if (!type[0] || !strcmp(type, "text") || !strcmp(type, "varchar")) add_quoted(out, m, v);
        else { snprintf(err, errn, "parameter type '%s' unknown to the MariaDB backend", type); return -1; }
    }
    return 0;
}

/* ---------- results ---------- */
typedef struct arena_blk { struct arena_blk *next; char s[]; } arena_blk;

static const char *arena_dup(dbres *r, const char *s, size_t n)
{
    arena_blk *b = malloc(sizeof *b + n + 1);
    memcpy(b->s, s, n);
    b->s[n] = 0;
    b->next = (arena_blk *)(void *)r->arena;
    r->arena = (char *)(void *)b;
    return b->s;
}

void my_free_result(dbres *r)
{
    if (r->my) mysql_free_result(r->my);
    free(r->v);
    free(r->names);
    for (arena_blk *b = (arena_blk *)(void *)r->arena; b;) { arena_blk *n = b->next; free(b); b = n; }
}

/* "2024-01-31 12:00:00.120000" -> "2024-01-31 12:00:00.12+00" (PostgreSQL's timestamptz text in UTC) */
static const char *pg_timestamp(dbres *r, const char *v, unsigned long len)
{
    char t[64];
    if (len >= sizeof t - 4) return arena_dup(r, v, len);
    memcpy(t, v, len);
    t[len] = 0;
    char *dot = strchr(t, '.');
    if (dot) {
        char *e = t + strlen(t);
        while (e > dot + 1 && e[-1] == '0') *--e = 0;
        if (e == dot + 1) *dot = 0;
    }
    if (strlen(t) > 10) strcat(t, "+00");
    return arena_dup(r, t, strlen(t));
}

static int lost_error(unsigned e) { return e == CR_SERVER_GONE_ERROR || e == CR_SERVER_LOST || e == CR_CONN_HOST_ERROR; }

dbres *my_query(dbconn *c, MYSQL *m, const char *sql, int n, const char *const *p)
{
    if (!m) { fprintf(stderr, "joget-emulator: SQL error: no connection to MariaDB\n  in: %.200s\n", sql); return NULL; }
    if (c && c->in_tx && c->tx_failed) {
        fprintf(stderr, "joget-emulator: SQL error: current transaction is aborted, statement refused\n  in: %.200s\n", sql);
        return NULL;
    }
    sbuf q;
    sb_init(&q);
    char err[200];
    if (render(m, sql, n, p, &q, err, sizeof err) < 0) {
        fprintf(stderr, "joget-emulator: SQL error: %s\n  in: %.200s\n", err, sql);
        sb_free(&q);
        if (c && c->in_tx) c->tx_failed = 1;
        return NULL;
    }
    int rc = mysql_real_query(m, q.s, q.len);
    MYSQL_RES *res = rc ? NULL : mysql_store_result(m);
    if (rc || (!res && mysql_field_count(m) > 0)) {
        unsigned e = mysql_errno(m);
        fprintf(stderr, "joget-emulator: SQL error: %s (MariaDB %u)\n  in: %.200s\n", mysql_error(m), e, q.s);
        sb_free(&q);
        if (c && c->in_tx) c->tx_failed = 1;
        if (c && lost_error(e) && m == c->my) { mysql_close(c->my); c->my = NULL; c->in_tx = 0; }
        return NULL;
    }
    sb_free(&q);
    dbres *r = calloc(1, sizeof *r);
    r->affected = (long)mysql_affected_rows(m);
    if (!res) return r;
    r->my = res;
    r->ncols = (int)mysql_num_fields(res);
    r->nrows = (int)mysql_num_rows(res);
    MYSQL_FIELD *f = mysql_fetch_fields(res);
    r->names = calloc((size_t)r->ncols + 1, sizeof *r->names);
    for (int j = 0; j < r->ncols; j++) r->names[j] = f[j].name;
    r->v = calloc((size_t)r->nrows * (size_t)r->ncols + 1, sizeof *r->v);
    MYSQL_ROW row;
    for (int i = 0; (row = mysql_fetch_row(res)); i++) {
        unsigned long *len = mysql_fetch_lengths(res);
        for (int j = 0; j < r->ncols; j++) {
            const char *v = row[j];
            if (v && f[j].type == MYSQL_TYPE_BIT) {
                unsigned long long x = 0;
                for (unsigned long k = 0; k < len[j]; k++) x = (x << 8) | (unsigned char)v[k];
                char b[24];
                snprintf(b, sizeof b, "%llu", x);
                v = arena_dup(r, b, strlen(b));
            } else if (v && (f[j].type == MYSQL_TYPE_DATETIME || f[j].type == MYSQL_TYPE_TIMESTAMP))
                v = pg_timestamp(r, v, len[j]);
            r->v[(size_t)i * (size_t)r->ncols + (size_t)j] = v;
        }
    }
    return r;
}

/* ---------- bulk loads ---------- */
int my_bulk_load(dbconn *c, dbbulk *b)
{
    sbuf q, val;
    sb_init(&q);
    sb_init(&val);
    const char *s = b->data.s, *end = b->data.s + b->data.len;
    int rc = 0, col = 0, inrow = 0;
    while (s < end && rc == 0) {
        if (!inrow) {
            if (!q.len) sb_printf(&q, "INSERT INTO %s VALUES ", b->target);
            else sb_addc(&q, ',');
            sb_addc(&q, '(');
            inrow = 1;
            col = 0;
        }
        /* one field up to \t or \n */
        val.len = 0;
        if (val.s) val.s[0] = 0;
        int isnull = 0;
        while (s < end && *s != '\t' && *s != '\n') {
            if (*s == '\\' && s + 1 < end) {
                char e = s[1];
                if (e == 'N') isnull = 1;
                else sb_addc(&val, e == 't' ? '\t' : e == 'n' ? '\n' : e == 'r' ? '\r' : e);
                s += 2;
            } else sb_addc(&val, *s++);
        }
        if (col++) sb_addc(&q, ',');
        if (isnull) sb_add(&q, "NULL");
        else add_quoted(&q, c->my, val.s ? val.s : "");
        if (s < end && *s == '\n') {
            sb_addc(&q, ')');
            inrow = 0;
            if (q.len > (1u << 20)) { rc = db_exec(c, q.s, 0, NULL); q.len = 0; }
        }
        s++;
    }
    if (rc == 0 && q.len) rc = db_exec(c, q.s, 0, NULL);
    sb_free(&q);
    sb_free(&val);
    return rc;
}
