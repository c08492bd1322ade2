/* seqclient: the yardstick of tests/bench/instances — a plain sequential client doing the documented
 * procedure's calls one by one, with one keep-alive libcurl handle per server:
 *   source: console/monitor/running/list (pages of 100), then per instance monitoring/process/view
 *           (definition, requester), workflow/variable/list, monitoring/activity/list?rows=100 and
 *           monitoring/activity/view of each open activity (its definition id);
 *   target: workflow/process/start/<app>:<ver>:<proc> as the requester (master login + loginAs) with
 *           recordId and var_* (true/false and empty values left out: Joget's Boolean start quirk), then
 *           monitoring/activity/start/<new>/<def> for each open activity, abortCurrent=true on the first.
 * No checks, no journal, no retries, no sub-flows: the least a script following the documentation does.
 *
 *   seqclient SOURCE_URL TARGET_URL ADMIN_PW MASTER_USER MASTER_PW
 * prints "instances N started S activity_calls A failed F seconds T".
 */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct buf {
  char *p;
  size_t n;
} buf;

static size_t on_data(char *d, size_t sz, size_t nm, void *u) {
  buf *b = u;
  size_t k = sz * nm;
  b->p = realloc(b->p, b->n + k + 1);
  memcpy(b->p + b->n, d, k);
  b->n += k;
  b->p[b->n] = 0;
  return k;
}

static CURL *h_src, *h_tgt;
static const char *src_url, *tgt_url, *admin_pw, *master_user, *master_pw;
static struct curl_slist *hdr_src, *hdr_tgt;

static char *esc(CURL *h, const char *s) {
  char *e = curl_easy_escape(h, s, 0);
  char *r = strdup(e);
  curl_free(e);
  return r;
}

/* GET (body NULL) or POST; returns parsed JSON or NULL */
static json_t *call(CURL *h, struct curl_slist *hdr, const char *url, const char *body) {
  buf b = {0};
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  if (body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
  } else {
    curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
  }
  CURLcode rc = curl_easy_perform(h);
  long st = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
  json_t *j = NULL;
  if (rc == CURLE_OK && st == 200 && b.p) j = json_loads(b.p, 0, NULL);
  free(b.p);
  return j;
}

static json_t *list_of(json_t *doc, const char *key) {
  json_t *v = json_object_get(doc, key);
  if (!v) return json_array();
  if (json_is_array(v)) return json_incref(v);
  json_t *a = json_array();
  json_array_append(a, v);
  return a;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: seqclient SOURCE_URL TARGET_URL ADMIN_PW MASTER_USER MASTER_PW\n");
    return 2;
  }
  src_url = argv[1];
  tgt_url = argv[2];
  admin_pw = argv[3];
  master_user = argv[4];
  master_pw = argv[5];
  curl_global_init(CURL_GLOBAL_DEFAULT);
  h_src = curl_easy_init();
  h_tgt = curl_easy_init();
  char ref[1024];
  snprintf(ref, sizeof ref, "Referer: %s/", src_url);
  hdr_src = curl_slist_append(NULL, ref);
  snprintf(ref, sizeof ref, "Referer: %s/", tgt_url);
  hdr_tgt = curl_slist_append(NULL, ref);
  char *apw = esc(h_src, admin_pw), *mu = esc(h_tgt, master_user), *mpw = esc(h_tgt, master_pw);
  double t0 = now();
  long n = 0, started = 0, acalls = 0, failed = 0;
  char url[4096];
  for (long start = 0;; start += 100) {
    snprintf(url, sizeof url,
             "%s/web/json/console/monitor/running/list?sort=id&desc=false&start=%ld&rows=100&j_username=admin&"
             "j_password=%s",
             src_url, start, apw);
    json_t *page = call(h_src, hdr_src, url, NULL);
    if (!page) {
      fprintf(stderr, "seqclient: listing failed\n");
      return 1;
    }
    json_t *rows = list_of(page, "data");
    size_t nrows = json_array_size(rows);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r) {
      const char *id = json_string_value(json_object_get(r, "id"));
      const char *rid = json_string_value(json_object_get(r, "recordId"));
      char *eid = esc(h_src, id);
      n++;
      snprintf(url, sizeof url, "%s/web/json/monitoring/process/view/%s?j_username=admin&j_password=%s", src_url, eid,
               apw);
      json_t *view = call(h_src, hdr_src, url, NULL);
      snprintf(url, sizeof url, "%s/web/json/workflow/variable/list/%s?j_username=admin&j_password=%s", src_url, eid,
               apw);
      json_t *vars = call(h_src, hdr_src, url, NULL);
      snprintf(url, sizeof url,
               "%s/web/json/monitoring/activity/list?processId=%s&rows=100&j_username=admin&j_password=%s", src_url,
               eid, apw);
      json_t *acts = call(h_src, hdr_src, url, NULL);
      json_t *defs = json_array();
      json_t *arows = list_of(acts, "data");
      size_t k;
      json_t *a;
      json_array_foreach(arows, k, a) {
        const char *st = json_string_value(json_object_get(a, "state"));
        if (!st || strncmp(st, "open", 4)) continue;
        char *aid = esc(h_src, json_string_value(json_object_get(a, "id")));
        snprintf(url, sizeof url, "%s/web/json/monitoring/activity/view/%s?j_username=admin&j_password=%s", src_url,
                 aid, apw);
        free(aid);
        json_t *av = call(h_src, hdr_src, url, NULL);
        const char *def = json_string_value(json_object_get(av, "activityDefId"));
        if (def) json_array_append_new(defs, json_string(def));
        json_decref(av);
      }
      /* start on the target as the requester */
      const char *pdef = json_string_value(json_object_get(view, "processDefId"));
      const char *req = json_string_value(json_object_get(view, "requester"));
      if (!pdef || !req || !rid) {
        failed++;
        goto next;
      }
      {
        char pd[512];
        snprintf(pd, sizeof pd, "%s", pdef);
        for (char *c = pd; *c; c++)
          if (*c == '#') *c = ':';
        char *ereq = esc(h_tgt, req), *erid = esc(h_tgt, rid);
        size_t cap = 8192;
        char *body = malloc(cap);
        int len = snprintf(body, cap, "j_username=%s&j_password=%s&loginAs=%s&recordId=%s", mu, mpw, ereq, erid);
        json_t *vl = list_of(vars, "variable");
        size_t m;
        json_t *vo;
        json_array_foreach(vl, m, vo) {
          const char *key;
          json_t *val;
          json_object_foreach(vo, key, val) {
            const char *s = json_string_value(val);
            if (!s || !*s || !strcasecmp(s, "true") || !strcasecmp(s, "false")) continue;
            char *ek = esc(h_tgt, key), *ev = esc(h_tgt, s);
            len += snprintf(body + len, cap - (size_t)len, "&var_%s=%s", ek, ev);
            free(ek);
            free(ev);
          }
        }
        json_decref(vl);
        snprintf(url, sizeof url, "%s/web/json/workflow/process/start/%s", tgt_url, pd);
        json_t *res = call(h_tgt, hdr_tgt, url, body);
        const char *npid = json_string_value(json_object_get(res, "processId"));
        if (npid && *npid) {
          started++;
          char *enp = esc(h_tgt, npid);
          json_array_foreach(defs, k, a) {
            char *ed = esc(h_tgt, json_string_value(a));
            snprintf(url, sizeof url, "%s/web/json/monitoring/activity/start/%s/%s", tgt_url, enp, ed);
            snprintf(body, cap, "abortCurrent=%s&j_username=admin&j_password=%s", k == 0 ? "true" : "false", apw);
            json_t *ar = call(h_tgt, hdr_tgt, url, body);
            acalls++;
            if (!json_is_true(json_object_get(ar, "result"))) failed++;
            json_decref(ar);
            free(ed);
          }
          free(enp);
        } else {
          failed++;
        }
        json_decref(res);
        free(body);
        free(ereq);
        free(erid);
      }
    next:
      json_decref(arows);
      json_decref(defs);
      json_decref(acts);
      json_decref(vars);
      json_decref(view);
      free(eid);
    }
    json_decref(rows);
    json_decref(page);
    if (nrows < 100) break;
  }
  printf("instances %ld started %ld activity_calls %ld failed %ld seconds %.2f\n", n, started, acalls, failed,
         now() - t0);
  curl_slist_free_all(hdr_src);
  curl_slist_free_all(hdr_tgt);
  curl_easy_cleanup(h_src);
  curl_easy_cleanup(h_tgt);
  free(apw);
  free(mu);
  free(mpw);
  curl_global_cleanup();
  return failed ? 1 : 0;
}
