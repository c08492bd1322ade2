/* The HTML report's pieces: the file (written through "<path>.tmp"), escaping (every text redacted first),
 * the page's head, style and script, and the charts drawn as inline SVG. Nothing here loads anything: the
 * page has no external reference, and its Content-Security-Policy forbids any. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"

struct html {
  FILE *f;
  char *path, *tmp;
};

html *html_open(const char *path, ferry_error *err) {
  html *h = calloc(1, sizeof *h);
  size_t n = strlen(path);
  char *tmp = malloc(n + 5);
  char *p = malloc(n + 1);
  if (!h || !tmp || !p) {
    free(h);
    free(tmp);
    free(p);
    ferry_error_set(err, FERRY_ENOMEM, "out of memory");
    return NULL;
  }
  memcpy(p, path, n + 1);
  memcpy(tmp, path, n);
  memcpy(tmp + n, ".tmp", 5);
  h->f = fopen(tmp, "w");
  if (!h->f) {
    ferry_error_set(err, FERRY_EIO, "cannot write the HTML report %s: %s", tmp, strerror(errno));
    free(h);
    free(tmp);
    free(p);
    return NULL;
  }
  h->path = p;
  h->tmp = tmp;
  return h;
}

int html_close(html *h, int ok, ferry_error *err) {
  int werr = ferror(h->f) ? errno : 0;
  if (fclose(h->f) != 0 && !werr) werr = errno;
  int rc = 0;
  if (werr) {
    rc = ferry_error_set(err, FERRY_EIO, "cannot write the HTML report %s: %s", h->tmp,
                         strerror(werr ? werr : EIO));
    unlink(h->tmp);
  } else if (!ok) {
    rc = FERRY_EIO;
    unlink(h->tmp);
  } else if (rename(h->tmp, h->path) < 0) {
    rc = ferry_error_set(err, FERRY_EIO, "cannot write the HTML report %s: %s", h->path, strerror(errno));
    unlink(h->tmp);
  }
  free(h->tmp);
  free(h->path);
  free(h);
  return rc;
}

void html_raw(html *h, const char *s) { fputs(s, h->f); }

void html_rawf(html *h, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vfprintf(h->f, fmt, ap);
  va_end(ap);
}

static void escaped(FILE *f, const char *s) {
  for (; *s; s++) {
    switch (*s) {
      case '&': fputs("&amp;", f); break;
      case '<': fputs("&lt;", f); break;
      case '>': fputs("&gt;", f); break;
      case '"': fputs("&quot;", f); break;
      case '\'': fputs("&#39;", f); break;
      default: fputc(*s, f);
    }
  }
}

void html_text(html *h, const char *s) {
  if (!s) return;
  char *r = ferry_redact(s);
  escaped(h->f, r ? r : "");
  free(r);
}

void html_textf(html *h, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  char *t = malloc((size_t)n + 1);
  if (!t) return;
  va_start(ap, fmt);
  vsnprintf(t, (size_t)n + 1, fmt, ap);
  va_end(ap);
  html_text(h, t);
  free(t);
}

void html_json(html *h, json_t *v) {
  char *raw = json_dumps(v, JSON_COMPACT | JSON_ENSURE_ASCII | JSON_ENCODE_ANY);
  char *r = ferry_redact(raw ? raw : "null");
  free(raw);
  for (const char *s = r ? r : "null"; *s; s++) {
    if (*s == '<')
      fputs("\\u003c", h->f);
    else if (*s == '>')
      fputs("\\u003e", h->f);
    else if (*s == '&')
      fputs("\\u0026", h->f);
    else
      fputc(*s, h->f);
  }
  free(r);
}

/* ---- head, style, script ------------------------------------------------------------------------------- */

static const char style[] =
    "body{font:14px/1.4 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0 auto;max-width:1240px;"
    "padding:16px 20px;color:#1d2329;background:#fff}\n"
    "h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #dde1e5;"
    "padding-bottom:4px}h3{font-size:15px;margin:12px 0 4px}\n"
    ".verdict{font-size:20px;font-weight:600;padding:8px 14px;border-radius:6px;display:inline-block;margin:8px "
    "0}"
    ".verdict.ok{background:#e6f4ea;color:#1e6b34}.verdict.bad{background:#fdecea;color:#a31515}"
    ".verdict.warn{background:#fff4e5;color:#8a4b00}\n"
    "dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 14px;margin:8px 0}dl.meta "
    "dt{color:#5b6670}"
    "dl.meta dd{margin:0}\n"
    "table{border-collapse:collapse;width:100%;font-size:13px}th,td{border-bottom:1px solid #e5e8eb;"
    "padding:4px 6px;text-align:left;vertical-align:top}th{background:#f4f6f8;position:sticky;top:0}"
    "td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}\n"
    "#items th{cursor:pointer;user-select:none}#items th.asc::after{content:' \\25B2'}"
    "#items th.desc::after{content:' \\25BC'}\n"
    ".st{display:inline-block;padding:0 6px;border-radius:3px;color:#fff;font-size:12px}\n"
    ".cause{border-left:4px solid #c62828;padding:4px 12px;margin:10px 0;background:#fafafa}"
    ".cause.blocked{border-color:#6a1b9a}.cause.differs{border-color:#ad1457}.cause.in_doubt{border-color:#"
    "ef6c00}"
    ".fix{color:#1e4f8a}.msg{font-family:ui-monospace,monospace;white-space:pre-wrap;word-break:break-word}\n"
    ".charts{display:flex;flex-wrap:wrap;gap:16px}.chart{border:1px solid #e5e8eb;border-radius:6px;padding:8px}"
    ".chart h3{margin:0 0 4px}svg text{font:11px system-ui,sans-serif;fill:#39434d}\n"
    ".note{color:#5b6670}.toolbar{display:flex;gap:10px;align-items:center;margin:8px 0}"
    "input[type=search]{padding:4px 8px;width:320px}button{padding:4px 10px}\n"
    "td.err{max-width:380px;word-break:break-word}#items td{max-width:240px;overflow-wrap:anywhere}"
    "#items td.err{max-width:420px;min-width:240px}\n";

void html_head(html *h, const char *title) {
  html_raw(
      h,
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; script-src 'unsafe-inline'; "
      "style-src 'unsafe-inline'; img-src data:; connect-src 'none'; form-action 'none'; base-uri 'none'\">\n"
      "<meta name=\"referrer\" content=\"no-referrer\">\n"
      "<meta name=\"generator\" content=\"ferry ");
  html_raw(h, FERRY_VERSION_STRING);
  html_raw(h, "\">\n<title>");
  html_text(h, title);
  html_raw(h, "</title>\n<style>\n");
  html_raw(h, style);
  html_raw(h, "</style>\n</head>\n<body>\n");
}

/* Search (every cell's text, case-insensitive), status and stage filters, sort on a header click (numbers
 * as numbers), the id map as CSV (RFC 4180, CRLF) through a Blob. No framework, nothing loaded. The
 * address's fragment may preset them (a link to a view; the tests use it): #q=TEXT&status=S&stage=NAME&sort=N
 * (column N from 1, -N descending). */
static const char script[] =
    "(function(){\n"
    "'use strict';\n"
    "var tb=document.querySelector('#items tbody');\n"
    "var "
    "q=document.getElementById('q'),fs=document.getElementById('fstatus'),fg=document.getElementById('fstage');\n"
    "var shown=document.getElementById('shown');\n"
    "function apply(){if(!tb)return;var t=(q&&q.value||'').toLowerCase(),s=fs?fs.value:'',g=fg?fg.value:'',n=0;\n"
    " var rows=tb.rows;for(var i=0;i<rows.length;i++){var r=rows[i];\n"
    "  var ok=(!s||r.getAttribute('data-status')===s)&&(!g||r.getAttribute('data-stage')===g)&&\n"
    "   (!t||r.textContent.toLowerCase().indexOf(t)>=0);r.hidden=!ok;if(ok)n++;}\n"
    " if(shown)shown.textContent=String(n);}\n"
    "if(q)q.addEventListener('input',apply);if(fs)fs.addEventListener('change',apply);\n"
    "if(fg)fg.addEventListener('change',apply);\n"
    "var ths=document.querySelectorAll('#items thead th');\n"
    "function cell(r,i){var c=r.cells[i];return c?c.textContent:'';}\n"
    "Array.prototype.forEach.call(ths,function(th,i){th.addEventListener('click',function(){\n"
    " var "
    "asc=!th.classList.contains('asc');Array.prototype.forEach.call(ths,function(x){x.classList.remove('asc','"
    "desc');})"
    ";\n"
    " th.classList.add(asc?'asc':'desc');var rows=Array.prototype.slice.call(tb.rows);\n"
    " rows.sort(function(a,b){var x=cell(a,i),y=cell(b,i),nx=parseFloat(x),ny=parseFloat(y),c;\n"
    "  if(x!==''&&y!==''&&!isNaN(nx)&&!isNaN(ny)&&String(nx)===x.trim()&&String(ny)===y.trim())c=nx-ny;\n"
    "  else c=x.localeCompare(y,undefined,{numeric:true});return asc?c:-c;});\n"
    " var "
    "frag=document.createDocumentFragment();rows.forEach(function(r){frag.appendChild(r);});tb.appendChild(frag);"
    "});});"
    "\n"
    "var b=document.getElementById('csv'),m=document.getElementById('idmap');\n"
    "function f(v){v=v==null?'':String(v);return /[\",\\r\\n]/.test(v)?'\"'+v.replace(/\"/g,'\"\"')+'\"':v;}\n"
    "if(b&&m){b.addEventListener('click',function(){var ids=JSON.parse(m.textContent);\n"
    " var out=['kind,old_id,new_id,stage,key,created'];ids.forEach(function(r){out.push(r.map(f).join(','));});\n"
    " var blob=new Blob([out.join('\\r\\n')+'\\r\\n'],{type:'text/csv'});var a=document.createElement('a');\n"
    " a.href=URL.createObjectURL(blob);a.download='ferry-id-map.csv';document.body.appendChild(a);a.click();\n"
    " setTimeout(function(){URL.revokeObjectURL(a.href);a.remove();},0);});}\n"
    "var hp={};location.hash.replace(/^#/,'').split('&').forEach(function(p){var i=p.indexOf('=');\n"
    " if(i>0)hp[p.slice(0,i)]=decodeURIComponent(p.slice(i+1));});\n"
    "if(hp.q&&q)q.value=hp.q;if(hp.status&&fs)fs.value=hp.status;if(hp.stage&&fg)fg.value=hp.stage;\n"
    "if(hp.sort){var "
    "si=Math.abs(parseInt(hp.sort,10))-1;if(ths[si]){ths[si].click();if(parseInt(hp.sort,10)<0)ths[si].click();}}"
    "\n"
    "apply();document.documentElement.setAttribute('data-ready','1');\n"
    "})();\n";

void html_tail(html *h) {
  html_raw(h, "<script>\n");
  html_raw(h, script);
  html_raw(h, "</script>\n</body>\n</html>\n");
}

const char *html_status_color(const char *s) {
  static const struct {
    const char *name, *color;
  } map[] = {{"done", "#2e7d32"},         {"equal", "#2e7d32"},        {"would_do", "#1565c0"},
             {"skipped", "#78909c"},      {"would_skip", "#78909c"},   {"already_done", "#78909c"},
             {"resumed", "#78909c"},      {"failed", "#c62828"},       {"in_doubt", "#ef6c00"},
             {"blocked", "#6a1b9a"},      {"differs", "#ad1457"},      {"mismatched", "#ad1457"},
             {"not_migrated", "#795548"}, {"not_selected", "#b0bec5"}, {"retried", "#f9a825"}};
  for (size_t i = 0; s && i < sizeof map / sizeof map[0]; i++)
    if (!strcmp(map[i].name, s)) return map[i].color;
  return "#607d8b";
}

/* ---- charts -------------------------------------------------------------------------------------------- */

static const char *const palette[] = {"#1565c0", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f",
                                      "#c62828", "#5d4037", "#ad1457", "#827717", "#283593"};
#define NPALETTE (sizeof palette / sizeof palette[0])

/* A "nice" upper bound (1, 2 or 5 times a power of ten) at or above v. */
static double nice_max(double v) {
  if (!(v > 0)) return 1;
  double p = pow(10, floor(log10(v)));
  double m = v / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

static void num_text(char *buf, size_t n, double v) {
  if (v >= 1e6)
    snprintf(buf, n, "%.3gM", v / 1e6);
  else if (v >= 1e4)
    snprintf(buf, n, "%.3gk", v / 1e3);
  else if (v == floor(v))
    snprintf(buf, n, "%.0f", v);
  else
    snprintf(buf, n, "%.3g", v);
}

/* Five horizontal grid lines from 0 to ymax, labelled on the left, in a chart of W x H with margins L, R, T,
 * B (left, right, top, bottom). */
static void y_grid(html *h, double W, double H, double L, double R, double T, double B, double ymax) {
  for (int g = 0; g <= 4; g++) {
    double y = T + (H - T - B) * (1 - g / 4.0);
    char lab[32];
    num_text(lab, sizeof lab, ymax * g / 4.0);
    html_rawf(h,
              "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#e5e8eb\"/>"
              "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>\n",
              L, y, W - R, y, L - 4, y + 4, lab);
  }
}

void html_chart_series(html *h, json_t *stages, const char *counter, int per_second, const char *title,
                       const char *yunit) {
  const double W = 560, H = 220, L = 52, R = 12, T = 24, B = 34;
  double tmax = 0, ymax = 0;
  size_t i;
  json_t *st;
  int any = 0;
  json_array_foreach(stages, i, st) {
    json_t *s = json_object_get(st, "series");
    json_t *a = json_object_get(s, counter);
    double step = json_number_value(json_object_get(s, "step_s"));
    if (!json_is_array(a) || !(step > 0)) continue;
    any = 1;
    double t0 = json_number_value(json_object_get(st, "started_s"));
    double end = t0 + step * (double)json_array_size(a);
    if (end > tmax) tmax = end;
    size_t k;
    json_t *v;
    json_array_foreach(a, k, v) {
      double y = (double)json_integer_value(v) / (per_second ? step : 1);
      if (y > ymax) ymax = y;
    }
  }
  html_raw(h, "<div class=\"chart\"><h3>");
  html_text(h, title);
  html_raw(h, "</h3>\n");
  if (!any) {
    html_raw(h, "<p class=\"note\">no time series recorded for this run</p></div>\n");
    return;
  }
  tmax = nice_max(tmax);
  ymax = nice_max(ymax);
  html_rawf(h,
            "<svg class=\"series\" data-counter=\"%s\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" "
            "role=\"img\">\n",
            counter, W, H + 18, W, H + 18);
  y_grid(h, W, H, L, R, T, B, ymax);
  for (int g = 0; g <= 5; g++) {
    double x = L + (W - L - R) * g / 5.0;
    char lab[32];
    num_text(lab, sizeof lab, tmax * g / 5.0);
    html_rawf(h, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%s s</text>\n", x, H - B + 16, lab);
  }
  html_rawf(h, "<text x=\"%.1f\" y=\"14\">%s</text>\n", L, yunit);
  size_t si = 0;
  double lx = L;
  json_array_foreach(stages, i, st) {
    json_t *s = json_object_get(st, "series");
    json_t *a = json_object_get(s, counter);
    double step = json_number_value(json_object_get(s, "step_s"));
    if (!json_is_array(a) || !(step > 0)) continue;
    const char *color = palette[si++ % NPALETTE];
    double t0 = json_number_value(json_object_get(st, "started_s"));
    html_rawf(h, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.6\" points=\"", color);
    size_t k;
    json_t *v;
    json_array_foreach(a, k, v) {
      double y = (double)json_integer_value(v) / (per_second ? step : 1);
      double xa = L + (W - L - R) * (t0 + step * (double)k) / tmax;
      double xb = L + (W - L - R) * (t0 + step * (double)(k + 1)) / tmax;
      double py = T + (H - T - B) * (1 - y / ymax);
      html_rawf(h, "%.1f,%.1f %.1f,%.1f ", xa, py, xb, py);
    }
    html_raw(h, "\"/>\n");
    /* legend */
    const char *name = json_string_value(json_object_get(st, "name"));
    html_rawf(h,
              "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">",
              lx, H + 2, color, lx + 14, H + 11);
    html_text(h, name);
    html_raw(h, "</text>\n");
    lx += 24 + 7.0 * (double)strlen(name ? name : "");
  }
  html_raw(h, "</svg></div>\n");
}

void html_chart_outcomes(html *h, json_t *rows) {
  const double W = 560, L = 130, R = 12, RH = 22;
  size_t n = json_array_size(rows);
  double H = 14 + RH * (double)n + 26;
  html_raw(h, "<div class=\"chart\"><h3>Outcomes per stage</h3>\n");
  html_rawf(h, "<svg class=\"outcomes\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n",
            W, H, W, H);
  json_t *seen = json_object(); /* statuses for the legend, in order of appearance */
  json_t *order = json_array();
  size_t i;
  json_t *row;
  json_array_foreach(rows, i, row) {
    double y = 8 + RH * (double)i;
    html_rawf(h, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">", L - 6, y + 14);
    html_text(h, json_string_value(json_object_get(row, "name")));
    html_raw(h, "</text>\n");
    double total = 0;
    size_t k;
    json_t *c;
    json_array_foreach(json_object_get(row, "counts"), k, c) total +=
        (double)json_integer_value(json_array_get(c, 1));
    if (total <= 0) {
      html_rawf(h, "<text x=\"%.1f\" y=\"%.1f\" class=\"note\">no items</text>\n", L, y + 14);
      continue;
    }
    double x = L;
    json_array_foreach(json_object_get(row, "counts"), k, c) {
      const char *status = json_string_value(json_array_get(c, 0));
      json_int_t v = json_integer_value(json_array_get(c, 1));
      if (v <= 0) continue;
      if (!json_object_get(seen, status)) {
        json_object_set_new(seen, status, json_true());
        json_array_append_new(order, json_string(status));
      }
      double w = (W - L - R) * (double)v / total;
      html_rawf(h, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.0f\" fill=\"%s\" data-status=\"", x, y,
                w, RH - 6, html_status_color(status));
      html_text(h, status);
      html_rawf(h, "\" data-count=\"%lld\"><title>", (long long)v);
      html_textf(h, "%s: %lld", status, (long long)v);
      html_raw(h, "</title></rect>\n");
      if (w > 28)
        html_rawf(h, "<text x=\"%.1f\" y=\"%.1f\" style=\"fill:#fff\">%lld</text>\n", x + 3, y + 12,
                  (long long)v);
      x += w;
    }
  }
  double lx = L, ly = 8 + RH * (double)n + 8;
  json_t *s;
  json_array_foreach(order, i, s) {
    const char *status = json_string_value(s);
    html_rawf(h,
              "<rect x=\"%.1f\" y=\"%.1f\" width=\"10\" height=\"10\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">",
              lx, ly, html_status_color(status), lx + 14, ly + 9);
    html_text(h, status);
    html_raw(h, "</text>\n");
    lx += 24 + 7.0 * (double)strlen(status);
  }
  json_decref(seen);
  json_decref(order);
  html_raw(h, "</svg></div>\n");
}

void html_chart_latency(html *h, json_t *stages) {
  size_t i, k;
  json_t *st, *lat;
  int any = 0;
  json_array_foreach(stages, i, st) {
    json_array_foreach(json_object_get(st, "latency"), k, lat) {
      any = 1;
      const double W = 560, H = 190, L = 48, R = 10, T = 10, B = 40;
      /* every bucket from the fastest to the slowest one that has calls (the report lists the non-empty ones;
       * a bucket's index follows from its bound: 5 per decade from 1 ms) */
      json_t *given = json_object_get(lat, "buckets"), *buckets = json_array();
      double ymax = 0;
      size_t b;
      json_t *bv;
      int lo = 1000, hi = -1;
      json_array_foreach(given, b, bv) {
        json_t *le = json_array_get(bv, 0);
        int idx = json_is_null(le) ? 1000 : (int)lround(5.0 * log10(json_number_value(le)));
        if (idx < lo) lo = idx;
        if (idx > hi) hi = idx;
        double c = (double)json_integer_value(json_array_get(bv, 1));
        if (c > ymax) ymax = c;
      }
      json_array_foreach(given, b, bv) {
        json_t *le = json_array_get(bv, 0);
        int idx = json_is_null(le) ? 1000 : (int)lround(5.0 * log10(json_number_value(le)));
        while (!json_is_null(le) && lo < idx) {
          json_array_append_new(buckets, json_pack("[f, i]", round(pow(10.0, lo / 5.0) * 100) / 100, 0));
          lo++;
        }
        json_array_append(buckets, bv);
        lo = idx + 1;
      }
      (void)hi;
      ymax = nice_max(ymax);
      html_raw(h, "<div class=\"chart latency\"><h3>Target calls: ");
      html_textf(h, "stage %s, %s (%s)", json_string_value(json_object_get(st, "name")),
                 json_string_value(json_object_get(lat, "instance")),
                 json_string_value(json_object_get(lat, "service")));
      html_raw(h, "</h3>\n<p class=\"note\">");
      html_textf(
          h, "%lld calls; mean %.1f ms, p50 \xe2\x89\xa4 %.4g ms, p90 \xe2\x89\xa4 %.4g ms, p99 \xe2\x89\xa4 %.4g ms, max %.1f ms",
          (long long)json_integer_value(json_object_get(lat, "count")),
          json_number_value(json_object_get(lat, "mean_ms")), json_number_value(json_object_get(lat, "p50_ms")),
          json_number_value(json_object_get(lat, "p90_ms")), json_number_value(json_object_get(lat, "p99_ms")),
          json_number_value(json_object_get(lat, "max_ms")));
      html_raw(h, "</p>\n");
      size_t nb = json_array_size(buckets);
      html_rawf(h,
                "<svg class=\"latency\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n",
                W, H, W, H);
      y_grid(h, W, H, L, R, T, B, ymax);
      double bw = nb ? (W - L - R) / (double)nb : 0;
      json_array_foreach(buckets, b, bv) {
        json_t *le = json_array_get(bv, 0);
        double c = (double)json_integer_value(json_array_get(bv, 1));
        double bh = (H - T - B) * c / ymax;
        double x = L + bw * (double)b;
        char lab[32];
        if (json_is_null(le))
          snprintf(lab, sizeof lab, "more");
        else
          snprintf(lab, sizeof lab, "<%.3g", json_number_value(le));
        html_rawf(
            h,
            "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"#1565c0\" data-count=\"%.0f\">"
            "<title>",
            x + 2, H - B - bh, bw > 6 ? bw - 4 : bw, bh, c);
        html_textf(h, "%s ms: %.0f calls", lab, c);
        html_raw(h, "</title></rect><text x=\"");
        html_rawf(h, "%.1f\" y=\"%.1f\" text-anchor=\"middle\">", x + bw / 2, H - B + 14);
        html_text(h, lab);
        html_raw(h, "</text>\n");
      }
      html_rawf(h,
                "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">milliseconds (log-scaled buckets)</text>\n",
                L + (W - L - R) / 2, H - 6);
      html_raw(h, "</svg></div>\n");
      json_decref(buckets);
    }
  }
  if (!any)
    html_raw(h,
             "<div class=\"chart\"><h3>Target calls</h3><p class=\"note\">no target call (HTTP or PostgreSQL) "
             "was recorded for this run</p></div>\n");
}
