#define _GNU_SOURCE
#include "emu.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/time.h>
#include <openssl/evp.h>

void sb_init(sbuf *b) { b->s = NULL; b->len = b->cap = 0; }
void sb_free(sbuf *b) { free(b->s); sb_init(b); }
static void sb_grow(sbuf *b, size_t add)
{
    if (b->len + add + 1 <= b->cap) return;
    size_t nc = b->cap ? b->cap * 2 : 256;
    while (nc < b->len + add + 1) nc *= 2;
    char *n = realloc(b->s, nc);
    if (!n) { fprintf(stderr, "joget-emulator: out of memory\n"); abort(); }
    b->s = n; b->cap = nc;
}
void sb_addn(sbuf *b, const char *s, size_t n)
{
    sb_grow(b, n);
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}
void sb_add(sbuf *b, const char *s) { sb_addn(b, s, strlen(s)); }
void sb_addc(sbuf *b, char c) { sb_addn(b, &c, 1); }
void sb_printf(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    sb_grow(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}
char *sb_steal(sbuf *b)
{
    char *s = b->s ? b->s : xstrdup("");
    sb_init(b);
    return s;
}

void md5_hex(const char *in, size_t n, char out[33], int upper)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dl = 0;
    EVP_Digest(in, n, d, &dl, EVP_md5(), NULL);
    const char *hx = upper ? "0123456789ABCDEF" : "0123456789abcdef";
    for (unsigned i = 0; i < 16; i++) {
        out[2 * i] = hx[d[i] >> 4];
        out[2 * i + 1] = hx[d[i] & 15];
    }
    out[32] = 0;
}

int64_t now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

void fmt_app_date(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%d %I:%M %p", &tm);
}

void fmt_java_date(int64_t ms, char *out, size_t n)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%a %b %d %H:%M:%S UTC %Y", &tm);
}

int sfa_bad(const char *s)
{
    if (!s) return 0;
    return strpbrk(s, " ();") != NULL || strstr(s, "/*") != NULL;
}

int ident_ok(const char *s)
{
    if (!s || !*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_'))
            return 0;
    return 1;
}

char *xstrdup(const char *s)
{
    char *d = strdup(s ? s : "");
    if (!d) abort();
    return d;
}

void gen_uuid(char out[37])
{
    unsigned char r[16];
    FILE *f = fopen("/dev/urandom", "rb");
    if (!f || fread(r, 1, 16, f) != 16) {
        for (int i = 0; i < 16; i++) r[i] = (unsigned char)(rand() & 0xff);
    }
    if (f) fclose(f);
    r[6] = (r[6] & 0x0f) | 0x40;
    r[8] = (r[8] & 0x3f) | 0x80;
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
             r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]);
}

const char *nz(const char *s) { return s ? s : ""; }
int str_ieq(const char *a, const char *b) { return a && b && strcasecmp(a, b) == 0; }

void fmt_double(double d, char *out, size_t n)
{
    /* java Double.toString-like: integral values keep one decimal */
    if (d == (double)(long long)d && d < 1e7 && d > -1e7) snprintf(out, n, "%.1f", d);
    else snprintf(out, n, "%.17g", d);
    if (!strchr(out, '.') && !strchr(out, 'e')) return;
    /* trim %.17g noise */
    char tmp[64];
    for (int p = 1; p <= 17; p++) {
        snprintf(tmp, sizeof tmp, "%.*g", p, d);
        if (strtod(tmp, NULL) == d) {
            if (!(d == (double)(long long)d && d < 1e7 && d > -1e7)) snprintf(out, n, "%s", tmp);
            break;
        }
    }
}
