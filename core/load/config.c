/* The JSON configuration (docs/config.md): parsing, validation of its shape, resolution of relative paths.
 * Plugins are not resolved here and cycles are not looked for (the pipeline does both); every error names
 * the file, the line and column of the offending key or value when the text is known, and the path to it. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/load.h"

/* ---- locating a JSON path in the text ------------------------------------------------------------------ */

#define JPATH_MAX 8
typedef struct jpath {
  int n;
  struct {
    const char *key; /* NULL: array index */
    size_t idx;
  } c[JPATH_MAX];
} jpath;

static jpath jp_key(const jpath *base, const char *key) {
  jpath p = base ? *base : (jpath){0};
  if (p.n < JPATH_MAX) {
    p.c[p.n].key = key;
    p.c[p.n].idx = 0;
    p.n++;
  }
  return p;
}

static jpath jp_idx(const jpath *base, size_t idx) {
  jpath p = base ? *base : (jpath){0};
  if (p.n < JPATH_MAX) {
    p.c[p.n].key = NULL;
    p.c[p.n].idx = idx;
    p.n++;
  }
  return p;
}

static size_t skip_ws(const char *t, size_t n, size_t i) {
  while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) i++;
  return i;
}

static size_t skip_string(const char *t, size_t n, size_t i) { /* t[i] == '"' */
  for (i++; i < n && t[i] != '"'; i++)
    if (t[i] == '\\') i++;
  return i < n ? i + 1 : n;
}

static size_t skip_value(const char *t, size_t n, size_t i) {
  i = skip_ws(t, n, i);
  if (i >= n) return n;
  if (t[i] == '"') return skip_string(t, n, i);
  if (t[i] == '{' || t[i] == '[') {
    int depth = 0;
    while (i < n) {
      char c = t[i];
      if (c == '"') {
        i = skip_string(t, n, i);
        continue;
      }
      if (c == '{' || c == '[') depth++;
      if (c == '}' || c == ']') depth--;
      i++;
      if (!depth) break;
    }
    return i;
  }
  while (i < n && !strchr(",}] \t\r\n", t[i])) i++;
  return i;
}

static int key_equals(const char *t, size_t s, size_t e, const char *key) {
  if (e < s + 2) return 0;
  const char *raw = t + s + 1;
  size_t rl = e - s - 2;
  if (!memchr(raw, '\\', rl)) return strlen(key) == rl && !memcmp(raw, key, rl);
  json_t *k = json_loadb(t + s, e - s, JSON_DECODE_ANY, NULL);
  int eq = json_is_string(k) && !strcmp(json_string_value(k), key);
  json_decref(k);
  return eq;
}

/* Byte offset of the value at `path` (of its key when at_key and the last component is a key), or -1. The
 * text is known to be valid JSON without duplicate keys. */
static long locate(const char *t, size_t n, const jpath *path, int at_key) {
  size_t i = skip_ws(t, n, 0);
  for (int d = 0; d < path->n; d++) {
    if (i >= n) return -1;
    if (path->c[d].key) {
      if (t[i] != '{') return -1;
      i++;
      for (;;) {
        i = skip_ws(t, n, i);
        if (i >= n || t[i] == '}') return -1;
        if (t[i] == ',') {
          i++;
          continue;
        }
        if (t[i] != '"') return -1;
        size_t ks = i, ke = skip_string(t, n, i);
        i = skip_ws(t, n, ke);
        if (i >= n || t[i] != ':') return -1;
        i = skip_ws(t, n, i + 1);
        if (key_equals(t, ks, ke, path->c[d].key)) {
          if (d == path->n - 1 && at_key) return (long)ks;
          break;
        }
        i = skip_value(t, n, i);
      }
    } else {
      if (t[i] != '[') return -1;
      i++;
      size_t k = 0;
      for (;;) {
        i = skip_ws(t, n, i);
        if (i >= n || t[i] == ']') return -1;
        if (t[i] == ',') {
          i++;
          continue;
        }
        if (k == path->c[d].idx) break;
        i = skip_value(t, n, i);
        k++;
      }
    }
  }
  return (long)i;
}

/* 1-based line and column (in characters, as jansson counts them) of byte offset `off`. */
static void line_col(const char *t, size_t off, int *line, int *col) {
  int l = 1, c = 1;
  for (size_t i = 0; i < off; i++) {
    if (t[i] == '\n') {
      l++;
      c = 1;
    } else if (((unsigned char)t[i] & 0xC0) != 0x80) {
      c++;
    }
  }
  *line = l;
  *col = c;
}

/* ---- loader state and errors --------------------------------------------------------------------------- */

typedef struct loader {
  const char *origin;
  const char *text; /* NULL when built from a JSON value */
  size_t len;
  ferry_error *err;
} loader;

/* "<origin>[:line:col]: " for the value (or key) at `path`. */
static char *place(const loader *L, const jpath *path, int at_key) {
  if (L->text && path) {
    long off = locate(L->text, L->len, path, at_key);
    if (off >= 0) {
      int line, col;
      line_col(L->text, (size_t)off, &line, &col);
      return ferry_asprintf("%s:%d:%d", L->origin, line, col);
    }
  }
  return ferry_strdup(L->origin);
}

static int cfail(const loader *L, const jpath *path, int at_key, const char *human, const char *fmt, ...)
    FERRY_PRINTF(5, 6);
static int cfail(const loader *L, const jpath *path, int at_key, const char *human, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *msg = ferry_vasprintf(fmt, ap);
  va_end(ap);
  char *where = place(L, path, at_key);
  if (human && *human)
    ferry_error_set(L->err, FERRY_ECONFIG, "%s: %s: %s", where, human, msg);
  else
    ferry_error_set(L->err, FERRY_ECONFIG, "%s: %s", where, msg);
  free(where);
  free(msg);
  return FERRY_ECONFIG;
}


/* Refuses keys of `obj` not in the NULL-terminated `valid`. */
static int check_keys(const loader *L, json_t *obj, const jpath *path, const char *human,
                      const char *const *valid) {
  const char *key;
  json_t *v;
  json_object_foreach(obj, key, v) {
    size_t i = 0;
    while (valid[i] && strcmp(valid[i], key)) i++;
    if (valid[i]) continue;
    ferry_buf sb = {0};
    for (i = 0; valid[i]; i++) {
      if (i) ferry_buf_add(&sb, ", ");
      ferry_buf_add(&sb, valid[i]);
    }
    jpath kp = jp_key(path, key);
    cfail(L, &kp, 1, human, "unknown key \"%s\"; valid keys: %s", key, sb.buf);
    ferry_buf_free(&sb);
    return FERRY_ECONFIG;
  }
  return 0;
}

static int name_ok(const char *s, int allow_upper_dot) {
  if (!*s) return 0;
  for (; *s; s++) {
    char c = *s;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-') continue;
    if (allow_upper_dot && ((c >= 'A' && c <= 'Z') || c == '.')) continue;
    return 0;
  }
  return 1;
}

static char *resolve_path(const char *base, const char *p) {
  if (p[0] == '/' || !base || !strcmp(base, ".")) return ferry_strdup(p);
  size_t n = strlen(base);
  return ferry_asprintf("%s%s%s", base, n && base[n - 1] == '/' ? "" : "/", p);
}

/* Optional non-empty string member; *out borrowed from the JSON. */
static int get_string(const loader *L, json_t *obj, const jpath *path, const char *human, const char *key,
                      const char **out) {
  json_t *v = json_object_get(obj, key);
  *out = NULL;
  if (!v) return 0;
  jpath kp = jp_key(path, key);
  if (!json_is_string(v))
    return cfail(L, &kp, 0, human, "\"%s\": expected a string, found %s", key, ferry__json_kind(v));
  if (!*json_string_value(v)) return cfail(L, &kp, 0, human, "\"%s\": must not be empty", key);
  *out = json_string_value(v);
  return 0;
}

/* Optional member: a string or an array of non-empty strings -> NULL-terminated vector (empty when absent).
 */
static int get_string_list(const loader *L, json_t *obj, const jpath *path, const char *human,
                           const char *key, char ***out) {
  json_t *v = json_object_get(obj, key);
  jpath kp = jp_key(path, key);
  *out = NULL;
  if (v && !json_is_string(v) && !json_is_array(v))
    return cfail(L, &kp, 0, human, "\"%s\": expected a string or an array of strings, found %s", key,
                 ferry__json_kind(v));
  size_t n = !v ? 0 : json_is_string(v) ? 1 : json_array_size(v);
  char **list = ferry__xcalloc(n + 1, sizeof(char *));
  size_t k = 0;
  for (size_t i = 0; i < n; i++) {
    json_t *e = json_is_string(v) ? v : json_array_get(v, i);
    jpath ep = json_is_string(v) ? kp : jp_idx(&kp, i);
    if (!json_is_string(e)) {
      ferry__strv_free(list);
      return cfail(L, &ep, 0, human, "\"%s\"[%zu]: expected a string, found %s", key, i, ferry__json_kind(e));
    }
    if (!*json_string_value(e)) {
      ferry__strv_free(list);
      return cfail(L, &ep, 0, human, "\"%s\"[%zu]: must not be empty", key, i);
    }
    int dup = 0;
    for (size_t j = 0; j < k; j++) dup |= !strcmp(list[j], json_string_value(e));
    if (!dup) list[k++] = ferry_strdup(json_string_value(e));
  }
  *out = list;
  return 0;
}

/* Optional integer member within [lo, hi]. */
static int get_int(const loader *L, json_t *obj, const jpath *path, const char *human, const char *key,
                   long long lo, long long hi, unsigned *out) {
  json_t *v = json_object_get(obj, key);
  if (!v) return 0;
  jpath kp = jp_key(path, key);
  if (!json_is_integer(v))
    return cfail(L, &kp, 0, human, "\"%s\": expected an integer, found %s", key, ferry__json_kind(v));
  json_int_t x = json_integer_value(v);
  if (x < lo || x > hi)
    return cfail(L, &kp, 0, human, "\"%s\": must be between %lld and %lld, found %lld", key, lo, hi,
                 (long long)x);
  *out = (unsigned)x;
  return 0;
}

/* ---- building ------------------------------------------------------------------------------------------ */

static const char *const top_keys[] = {"journal", "report", "plugin_path", "log_level", "stages", NULL};
static const char *const stage_keys[] = {"name",        "source", "sink",    "hooks", "after",
                                         "concurrency", "rate",   "journal", "retry", NULL};
static const char *const ref_keys[] = {"plugin", "options", NULL};
static const char *const hook_keys[] = {"plugin", "points", "options", NULL};
static const char *const retry_keys[] = {"max", "base_ms", "cap_ms", NULL};
static const char *const log_levels[] = {"error", "warn", "info", "debug", "trace", NULL};

static void ref_clear(ferry_plugin_ref *r) {
  free(r->plugin);
  json_decref(r->options);
  ferry__strv_free(r->points);
  free(r->where);
  memset(r, 0, sizeof *r);
}

/* A source, sink (hook = 0) or hook (hook = 1) reference: {"plugin": ..., "options": {...}, "points": [...]}.
 * `human` names the place ("stages[0] \"forms\" source"). */
static int parse_ref(const loader *L, json_t *v, const jpath *path, const char *human, int hook,
                     ferry_plugin_ref *out) {
  if (!json_is_object(v)) return cfail(L, path, 0, human, "expected an object, found %s", ferry__json_kind(v));
  if (check_keys(L, v, path, human, hook ? hook_keys : ref_keys)) return FERRY_ECONFIG;
  json_t *pl = json_object_get(v, "plugin");
  jpath pp = jp_key(path, "plugin");
  if (!pl) return cfail(L, path, 0, human, "missing \"plugin\" (the name of the plugin to use)");
  if (!json_is_string(pl))
    return cfail(L, &pp, 0, human, "\"plugin\": expected a string, found %s", ferry__json_kind(pl));
  if (!name_ok(json_string_value(pl), 0))
    return cfail(L, &pp, 0, human,
                 "\"plugin\": \"%s\" is not a plugin name (lower-case letters, digits, '_' "
                 "and '-')",
                 json_string_value(pl));
  json_t *opts = json_object_get(v, "options");
  if (opts && !json_is_object(opts)) {
    jpath op = jp_key(path, "options");
    return cfail(L, &op, 0, human, "\"options\": expected an object, found %s", ferry__json_kind(opts));
  }
  char **points = NULL;
  if (hook) {
    json_t *pts = json_object_get(v, "points");
    jpath tp = jp_key(path, "points");
    if (!pts) return cfail(L, path, 0, human, "missing \"points\" (the hook points this hook runs at)");
    if (get_string_list(L, v, path, human, "points", &points)) return FERRY_ECONFIG;
    if (!points[0]) {
      ferry__strv_free(points);
      return cfail(L, &tp, 0, human, "\"points\": must name at least one hook point");
    }
  }
  out->plugin = ferry_strdup(json_string_value(pl));
  out->options = json_incref(opts);
  out->points = points;
  char *at = place(L, path, 0);
  out->where = ferry_asprintf("%s: %s \"%s\"", at, human, out->plugin);
  free(at);
  return 0;
}

static int parse_stage(const loader *L, ferry_config *cfg, size_t i, json_t *v, const jpath *path) {
  ferry_stage_cfg *st = &cfg->stages[i];
  st->index = i;
  st->concurrency = 8;
  st->rate = 0;
  st->journal = 1;
  st->retry_max = 5;
  st->retry_base_ms = 200;
  st->retry_cap_ms = 30000;
  char human[64];
  snprintf(human, sizeof human, "stages[%zu]", i);
  if (!json_is_object(v)) return cfail(L, path, 0, human, "expected an object, found %s", ferry__json_kind(v));

  json_t *name = json_object_get(v, "name");
  jpath np = jp_key(path, "name");
  if (!name) return cfail(L, path, 0, human, "missing \"name\"");
  if (!json_is_string(name))
    return cfail(L, &np, 0, human, "\"name\": expected a string, found %s", ferry__json_kind(name));
  const char *nm = json_string_value(name);
  if (!name_ok(nm, 1) || strlen(nm) > 128)
    return cfail(L, &np, 0, human,
                 "\"name\": \"%s\" is not a valid stage name (1 to 128 letters, digits, '_', "
                 "'.' and '-')",
                 nm);
  char *hs = ferry_asprintf("stages[%zu] \"%s\"", i, nm);
  int rc = 0;
  for (size_t j = 0; j < i && !rc; j++)
    if (!strcmp(cfg->stages[j].name, nm))
      rc = cfail(L, &np, 0, hs, "\"name\": \"%s\" is already the name of stages[%zu]", nm, j);
  if (rc) goto out;
  st->name = ferry_strdup(nm);
  if ((rc = check_keys(L, v, path, hs, stage_keys))) goto out;

  const char *roles[2] = {"source", "sink"};
  ferry_plugin_ref *refs[2] = {&st->source, &st->sink};
  for (int r = 0; r < 2 && !rc; r++) {
    json_t *rv = json_object_get(v, roles[r]);
    if (!rv) {
      rc = cfail(L, path, 0, hs, "missing \"%s\" ({\"plugin\": NAME, \"options\": {...}})", roles[r]);
      break;
    }
    jpath rp = jp_key(path, roles[r]);
    char *rh = ferry_asprintf("%s %s", hs, roles[r]);
    rc = parse_ref(L, rv, &rp, rh, 0, refs[r]);
    free(rh);
  }
  if (rc) goto out;

  json_t *hooks = json_object_get(v, "hooks");
  if (hooks) {
    jpath hp = jp_key(path, "hooks");
    if (!json_is_array(hooks)) {
      rc = cfail(L, &hp, 0, hs, "\"hooks\": expected an array, found %s", ferry__json_kind(hooks));
      goto out;
    }
    st->hooks = ferry__xcalloc(json_array_size(hooks) + 1, sizeof *st->hooks);
    for (size_t h = 0; h < json_array_size(hooks) && !rc; h++) {
      jpath ep = jp_idx(&hp, h);
      char *rh = ferry_asprintf("%s hooks[%zu]", hs, h);
      rc = parse_ref(L, json_array_get(hooks, h), &ep, rh, 1, &st->hooks[h]);
      free(rh);
      if (!rc) st->nhooks++;
    }
    if (rc) goto out;
  }

  if ((rc = get_string_list(L, v, path, hs, "after", &st->after))) goto out;
  if ((rc = get_int(L, v, path, hs, "concurrency", 1, 10000, &st->concurrency))) goto out;

  json_t *rate = json_object_get(v, "rate");
  if (rate) {
    jpath rp = jp_key(path, "rate");
    if (!json_is_number(rate))
      rc = cfail(L, &rp, 0, hs, "\"rate\": expected a number (requests per second, 0 = no limit), found %s",
                 ferry__json_kind(rate));
    else if (json_number_value(rate) < 0)
      rc = cfail(L, &rp, 0, hs, "\"rate\": must be 0 (no limit) or more, found %g", json_number_value(rate));
    else
      st->rate = json_number_value(rate);
    if (rc) goto out;
  }

  json_t *jr = json_object_get(v, "journal");
  if (jr) {
    jpath jp = jp_key(path, "journal");
    if (!json_is_boolean(jr)) {
      rc = cfail(L, &jp, 0, hs, "\"journal\": expected true or false, found %s", ferry__json_kind(jr));
      goto out;
    }
    st->journal = json_is_true(jr);
  }

  json_t *retry = json_object_get(v, "retry");
  if (retry) {
    jpath rp = jp_key(path, "retry");
    char *rh = ferry_asprintf("%s retry", hs);
    if (!json_is_object(retry))
      rc = cfail(L, &rp, 0, hs,
                 "\"retry\": expected an object ({\"max\": 5, \"base_ms\": 200, \"cap_ms\": "
                 "30000}), found %s",
                 ferry__json_kind(retry));
    if (!rc) rc = check_keys(L, retry, &rp, rh, retry_keys);
    if (!rc) rc = get_int(L, retry, &rp, rh, "max", 0, 1000, &st->retry_max);
    if (!rc) rc = get_int(L, retry, &rp, rh, "base_ms", 1, 3600000, &st->retry_base_ms);
    if (!rc) rc = get_int(L, retry, &rp, rh, "cap_ms", 1, 86400000, &st->retry_cap_ms);
    if (!rc && st->retry_cap_ms < st->retry_base_ms)
      rc = cfail(L, &rp, 0, rh, "\"cap_ms\" (%u) must not be less than \"base_ms\" (%u)", st->retry_cap_ms,
                 st->retry_base_ms);
    free(rh);
    if (rc) goto out;
  }
out:
  free(hs);
  return rc;
}

static void stage_clear(ferry_stage_cfg *st) {
  free(st->name);
  ref_clear(&st->source);
  ref_clear(&st->sink);
  for (size_t h = 0; h < st->nhooks; h++) ref_clear(&st->hooks[h]);
  free(st->hooks);
  ferry__strv_free(st->after);
}

void ferry__config_free(ferry_config *cfg) {
  if (!cfg) return;
  for (size_t i = 0; i < cfg->nstages; i++) stage_clear(&cfg->stages[i]);
  free(cfg->stages);
  free(cfg->origin);
  free(cfg->base_dir);
  free(cfg->journal);
  free(cfg->report);
  ferry__strv_free(cfg->plugin_path);
  free(cfg->log_level);
  json_decref(cfg->root);
  free(cfg);
}

static int build(const loader *L, ferry_config *cfg, json_t *root) {
  const jpath top = {0};
  if (!json_is_object(root))
    return cfail(L, &top, 0, NULL, "the configuration must be a JSON object, found %s", ferry__json_kind(root));
  if (check_keys(L, root, &top, NULL, top_keys)) return FERRY_ECONFIG;

  const char *s;
  if (get_string(L, root, &top, NULL, "journal", &s)) return FERRY_ECONFIG;
  if (s && (!strncmp(s, "postgresql://", 13) || !strncmp(s, "postgres://", 11))) { /* a PostgreSQL journal */
    const char *at = strchr(s + 11, '@'), *colon = strchr(strstr(s, "//") + 2, ':');
    if (at && colon && colon < at) { /* its password is a secret from now on (settings, logs, reports) */
      char *pw = ferry_strndup(colon + 1, (size_t)(at - colon - 1));
      ferry__secret_add(pw);
      if (*pw && strlen(pw) < FERRY__SECRET_MIN)
        ferry_log(NULL, FERRY_LOG_WARN, "%s: \"journal\": its password is %zu character%s long; secrets shorter "
                  "than %d characters are not masked in logs and reports", L->origin ? L->origin : "config",
                  strlen(pw), strlen(pw) == 1 ? "" : "s", FERRY__SECRET_MIN);
      free(pw);
    }
    cfg->journal = ferry_strdup(s);
  } else if (s) {
    cfg->journal = resolve_path(cfg->base_dir, s);
  }
  if (get_string(L, root, &top, NULL, "report", &s)) return FERRY_ECONFIG;
  if (s) cfg->report = resolve_path(cfg->base_dir, s);
  if (get_string(L, root, &top, NULL, "log_level", &s)) return FERRY_ECONFIG;
  if (s) {
    size_t i = 0;
    while (log_levels[i] && strcmp(log_levels[i], s)) i++;
    if (!log_levels[i]) {
      jpath lp = jp_key(&top, "log_level");
      return cfail(L, &lp, 0, NULL, "\"log_level\": \"%s\" is not a level (error, warn, info, debug, trace)",
                   s);
    }
    cfg->log_level = ferry_strdup(s);
  }
  char **pp = NULL;
  if (get_string_list(L, root, &top, NULL, "plugin_path", &pp)) return FERRY_ECONFIG;
  for (size_t i = 0; pp[i]; i++) {
    char *r = resolve_path(cfg->base_dir, pp[i]);
    free(pp[i]);
    pp[i] = r;
  }
  cfg->plugin_path = pp;

  json_t *stages = json_object_get(root, "stages");
  jpath sp = jp_key(&top, "stages");
  if (!stages) return cfail(L, &top, 0, NULL, "missing \"stages\" (the list of stages to run)");
  if (!json_is_array(stages))
    return cfail(L, &sp, 0, NULL, "\"stages\": expected an array, found %s", ferry__json_kind(stages));
  if (!json_array_size(stages)) return cfail(L, &sp, 0, NULL, "\"stages\": must hold at least one stage");
  size_t n = json_array_size(stages);
  cfg->stages = ferry__xcalloc(n, sizeof *cfg->stages);
  for (size_t i = 0; i < n; i++) {
    jpath ep = jp_idx(&sp, i);
    cfg->nstages = i + 1; /* so that free releases what parse_stage stored, even on failure */
    if (parse_stage(L, cfg, i, json_array_get(stages, i), &ep)) return FERRY_ECONFIG;
  }
  /* "after" names existing stages (cycles are the pipeline's business) */
  for (size_t i = 0; i < n; i++) {
    ferry_stage_cfg *st = &cfg->stages[i];
    for (size_t a = 0; st->after[a]; a++) {
      size_t j = 0;
      while (j < n && strcmp(cfg->stages[j].name, st->after[a])) j++;
      if (j < n) continue;
      ferry_buf names = {0};
      for (j = 0; j < n; j++) {
        if (j) ferry_buf_add(&names, ", ");
        ferry_buf_add(&names, cfg->stages[j].name);
      }
      /* locate the element: "after" may be a single string or an array (deduplicated in st->after) */
      jpath ap = jp_idx(&sp, i);
      ap = jp_key(&ap, "after");
      json_t *av = json_object_get(json_array_get(stages, i), "after");
      if (json_is_array(av))
        for (size_t k = 0; k < json_array_size(av); k++)
          if (!strcmp(json_string_value(json_array_get(av, k)), st->after[a])) {
            ap = jp_idx(&ap, k);
            break;
          }
      char *hs = ferry_asprintf("stages[%zu] \"%s\"", i, st->name);
      cfail(L, &ap, 0, hs, "\"after\": there is no stage named \"%s\"; stages are: %s", st->after[a],
            names.buf);
      free(hs);
      ferry_buf_free(&names);
      return FERRY_ECONFIG;
    }
  }
  return 0;
}

static ferry_config *config_new(json_t *root, const char *origin, const char *base_dir, const char *text,
                                size_t len, ferry_error *err) {
  ferry_config *cfg = ferry__xcalloc(1, sizeof *cfg);
  cfg->origin = ferry_strdup(origin ? origin : "<config>");
  cfg->base_dir = ferry_strdup(base_dir ? base_dir : ".");
  cfg->root = json_incref(root);
  loader L = {cfg->origin, text, len, err};
  if (build(&L, cfg, root)) {
    ferry__config_free(cfg);
    return NULL;
  }
  return cfg;
}

ferry_config *ferry__config_from_json(json_t *root, const char *origin, ferry_error *err) {
  if (!root) {
    ferry_error_set(err, FERRY_EINVAL, "%s: no configuration given", origin ? origin : "<config>");
    return NULL;
  }
  return config_new(root, origin, ".", NULL, 0, err);
}

/* jansson reports the line and column of the last character of the offending token; point at its first
 * character instead when the token text in the message can be found just before `position`. */
static void syntax_position(const char *text, size_t len, const json_error_t *je, int *line, int *col) {
  *line = je->line;
  *col = je->column;
  const char *near = strstr(je->text, " near '");
  if (near && je->position >= 0 && (size_t)je->position <= len) {
    const char *tok = near + 7;
    size_t tl = strlen(tok);
    if (tl > 1 && tok[tl - 1] == '\'') {
      tl--;
      size_t pos = (size_t)je->position;
      if (tl <= pos && !memcmp(text + pos - tl, tok, tl)) {
        line_col(text, pos - tl, line, col);
        return;
      }
    }
  }
  if (*line < 1) *line = 1;
  if (*col < 1) *col = 1;
}

static char *dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  char *dir = !slash          ? ferry_strdup(".")
              : slash == path ? ferry_strdup("/")
                              : ferry_strndup(path, (size_t)(slash - path));
  char *abs = realpath(dir, NULL);
  if (abs) {
    free(dir);
    return abs;
  }
  return dir;
}

ferry_config *ferry__config_load_file(const char *path, ferry_error *err) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    ferry_error_set(err, e == ENOENT ? FERRY_ENOENT : FERRY_EIO, "cannot open config file \"%s\": %s", path,
                    strerror(e));
    return NULL;
  }
  ferry_buf sb = {0};
  char buf[8192];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, f)) > 0) ferry_buf_addn(&sb, buf, n);
  if (ferror(f)) {
    int e = errno;
    fclose(f);
    ferry_buf_free(&sb);
    ferry_error_set(err, FERRY_EIO, "cannot read config file \"%s\": %s", path, strerror(e));
    return NULL;
  }
  fclose(f);
  size_t len = sb.len;
  char *text = ferry_buf_steal(&sb);
  json_error_t je;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    int line, col;
    syntax_position(text, len, &je, &line, &col);
    ferry_error_set(err, FERRY_ECONFIG, "%s:%d:%d: %s", path, line, col, je.text);
    free(text);
    return NULL;
  }
  char *dir = dir_of(path);
  ferry_config *cfg = config_new(root, path, dir, text, len, err);
  free(dir);
  json_decref(root);
  free(text);
  return cfg;
}

json_t *ferry__config_settings(const ferry_config *cfg) {
  json_t *o = json_object();
  json_object_set_new(o, "origin", json_string(cfg->origin));
  json_object_set_new(o, "journal", json_string(cfg->journal ? cfg->journal : FERRY__DEFAULT_JOURNAL));
  json_object_set_new(o, "report", cfg->report ? json_string(cfg->report) : json_null());
  json_t *pp = json_array();
  for (size_t i = 0; cfg->plugin_path && cfg->plugin_path[i]; i++)
    json_array_append_new(pp, json_string(cfg->plugin_path[i]));
  json_object_set_new(o, "plugin_path", pp);
  json_object_set_new(o, "log_level", cfg->log_level ? json_string(cfg->log_level) : json_null());
  json_t *names = json_array();
  for (size_t i = 0; i < cfg->nstages; i++) json_array_append_new(names, json_string(cfg->stages[i].name));
  json_object_set_new(o, "stages", names);
  return o;
}

FERRY_API json_t *ferry_config_settings(const char *path, ferry_error *err) {
  if (!path) {
    ferry_error_set(err, FERRY_EINVAL, "ferry_config_settings: no file given");
    return NULL;
  }
  ferry_config *cfg = ferry__config_load_file(path, err);
  if (!cfg) return NULL;
  json_t *o = ferry__config_settings(cfg);
  ferry__config_free(cfg);
  return o;
}
