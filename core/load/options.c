/* Plugin option tables (ferry/plugin.h): a plugin's JSON options are checked against its table, written into
 * its context at the declared offsets, and secrets are resolved from the environment or from files and
 * registered for redaction. Everything stored in the context is owned here and freed by
 * ferry__options_release(). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load/load.h"

#define SECRET_FILE_MAX (1024 * 1024)

const char *ferry__opt_type_name(ferry_opt_type t) {
  switch (t) {
    case FERRY_OPT_STRING: return "string";
    case FERRY_OPT_INT: return "integer";
    case FERRY_OPT_DOUBLE: return "number";
    case FERRY_OPT_BOOL: return "boolean";
    case FERRY_OPT_STRING_LIST: return "string list";
    case FERRY_OPT_JSON: return "json";
    case FERRY_OPT_ENUM: return "enum";
  }
  return "unknown";
}

/* "source", "sink", "hook" */
static const char *role_name(uint32_t role) {
  return role == FERRY_KIND_SOURCE ? "source"
         : role == FERRY_KIND_SINK ? "sink"
         : role == FERRY_KIND_HOOK ? "hook"
                                   : "?";
}

/* "the source", "the source and the sink", ... */
static char *roles_text(uint32_t roles) {
  ferry_buf sb = {0};
  const uint32_t all[] = {FERRY_KIND_SOURCE, FERRY_KIND_SINK, FERRY_KIND_HOOK};
  for (size_t i = 0; i < 3; i++)
    if (roles & all[i]) ferry_buf_addf(&sb, "%sthe %s", sb.len ? " and " : "", role_name(all[i]));
  return ferry_buf_steal(&sb);
}

/* "\"skip\", \"overwrite\", \"fail\"" */
static char *choices_text(const ferry_opt_choice *c) {
  ferry_buf sb = {0};
  for (; c && c->name; c++) ferry_buf_addf(&sb, "%s\"%s\"", sb.len ? ", " : "", c->name);
  return ferry_buf_steal(&sb);
}


typedef struct opt_run {
  const char *where;
  const char *base_dir;
  ferry_error *err;
} opt_run;

/* ---- secrets and substitution ----------------------------------------------------------------------- */

static int env_name_ok(const char *s, size_t n) {
  if (!n || !((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return 0;
  for (size_t i = 1; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) return 0;
  }
  return 1;
}

/* Expands "${NAME}" (and the escape "$${" -> "${") in `s`. Each substituted value is appended to `pieces`
 * (for redaction). `label` names the option in messages; the value itself never appears in them. */
static int expand(const opt_run *r, const char *label, const char *s, char **out, char ***pieces,
                  size_t *npieces) {
  ferry_buf sb = {0};
  const char *p = s;
  while (*p) {
    if (p[0] == '$' && p[1] == '$' && p[2] == '{') {
      ferry_buf_add(&sb, "${");
      p += 3;
    } else if (p[0] == '$' && p[1] == '{') {
      const char *name = p + 2, *end = strchr(name, '}');
      if (!end) {
        ferry_buf_free(&sb);
        return ferry_error_set(r->err, FERRY_ECONFIG,
                               "%s: %s: \"${\" without a closing \"}\" (write \"$${\" for a literal \"${\")",
                               r->where, label);
      }
      size_t n = (size_t)(end - name);
      if (!env_name_ok(name, n)) {
        ferry_buf_free(&sb);
        return ferry_error_set(
            r->err, FERRY_ECONFIG,
            "%s: %s: \"${%.*s}\" is not a valid environment variable name (letters, digits "
            "and '_', not starting with a digit)",
            r->where, label, (int)(n > 64 ? 64 : n), name);
      }
      char *nm = ferry_strndup(name, n);
      const char *val = getenv(nm);
      if (!val) {
        ferry_error_set(r->err, FERRY_ECONFIG, "%s: %s: environment variable %s is not set", r->where, label,
                        nm);
        free(nm);
        ferry_buf_free(&sb);
        return FERRY_ECONFIG;
      }
      free(nm);
      ferry_buf_add(&sb, val);
      *pieces = ferry__xrealloc(*pieces, (*npieces + 1) * sizeof **pieces);
      (*pieces)[(*npieces)++] = ferry_strdup(val);
      p = end + 1;
    } else {
      ferry_buf_addn(&sb, p, 1);
      p++;
    }
  }
  *out = ferry_buf_steal(&sb);
  return 0;
}

static char *join_path(const char *base, const char *path) {
  if (path[0] == '/' || !base || !*base || !strcmp(base, ".")) return ferry_strdup(path);
  size_t n = strlen(base);
  return ferry_asprintf("%s%s%s", base, base[n - 1] == '/' ? "" : "/", path);
}

static int read_secret_file(const opt_run *r, const char *label, const char *path, char **out) {
  char *full = join_path(r->base_dir, path);
  FILE *f = fopen(full, "rb");
  if (!f) {
    int e = errno;
    ferry_error_set(r->err, FERRY_ECONFIG, "%s: %s: cannot read secret file \"%s\": %s", r->where, label,
                    full, strerror(e));
    free(full);
    return FERRY_ECONFIG;
  }
  ferry_buf sb = {0};
  char buf[4096];
  size_t n;
  int rc = 0;
  while (!rc && (n = fread(buf, 1, sizeof buf, f)) > 0) {
    if (memchr(buf, '\0', n))
      rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: %s: secret file \"%s\" contains a NUL byte", r->where,
                           label, full);
    ferry_buf_addn(&sb, buf, n);
    if (!rc && sb.len > SECRET_FILE_MAX)
      rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: %s: secret file \"%s\" is larger than %d bytes",
                           r->where, label, full, SECRET_FILE_MAX);
  }
  if (!rc && ferror(f)) {
    int e = errno;
    rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: %s: cannot read secret file \"%s\": %s", r->where, label,
                         full, strerror(e));
  }
  fclose(f);
  free(full);
  if (rc) {
    ferry_buf_free(&sb);
    return rc;
  }
  char *s = ferry_buf_steal(&sb);
  size_t len = strlen(s);
  while (len && (s[len - 1] == '\n' || s[len - 1] == '\r')) s[--len] = '\0';
  *out = s;
  return 0;
}

/* Registers a secret value; one of 1 or 2 characters cannot be masked (it would hide those letters everywhere,
 * ferry__secret_add() ignores it), so the user is told once per option. */
static void secret_value(const opt_run *r, const char *label, const char *value) {
  ferry__secret_add(value);
  size_t n = value ? strlen(value) : 0;
  if (n > 0 && n < FERRY__SECRET_MIN)
    ferry_log(NULL, FERRY_LOG_WARN,
              "%s: %s: the secret is %zu character%s long; secrets shorter than %d characters are not masked in "
              "logs and reports", r->where, label, n, n == 1 ? "" : "s", FERRY__SECRET_MIN);
}

static void free_pieces(char **pieces, size_t n) {
  for (size_t i = 0; i < n; i++) free(pieces[i]);
  free(pieces);
}

/* One string value: a JSON string (with "${NAME}" substitution) or {"env": NAME} / {"file": PATH}. Values of
 * the object forms are always registered as secrets; the whole value and the substituted parts of a string
 * only when the option is a secret (so that "${HOME}/data" in a plain path is not hidden from logs). */
static int resolve_string(const opt_run *r, const ferry_option *o, const char *label, json_t *v, char **out) {
  int secret = (o->flags & FERRY_OPT_SECRET) != 0;
  if (json_is_string(v)) {
    char **pieces = NULL;
    size_t npieces = 0;
    int rc = expand(r, label, json_string_value(v), out, &pieces, &npieces);
    if (!rc && secret) {
      secret_value(r, label, *out);
      for (size_t i = 0; i < npieces; i++) ferry__secret_add(pieces[i]);
    }
    free_pieces(pieces, npieces);
    return rc;
  }
  if (json_is_object(v) && json_object_size(v) == 1) {
    json_t *env = json_object_get(v, "env"), *file = json_object_get(v, "file");
    if (json_is_string(env)) {
      const char *name = json_string_value(env);
      if (!env_name_ok(name, strlen(name)))
        return ferry_error_set(r->err, FERRY_ECONFIG,
                               "%s: %s: {\"env\": \"%s\"} is not a valid environment "
                               "variable name (letters, digits and '_', not starting with a digit)",
                               r->where, label, name);
      const char *val = getenv(name);
      if (!val)
        return ferry_error_set(r->err, FERRY_ECONFIG, "%s: %s: environment variable %s is not set", r->where,
                               label, name);
      *out = ferry_strdup(val);
      secret_value(r, label, *out);
      return 0;
    }
    if (json_is_string(file)) {
      int rc = read_secret_file(r, label, json_string_value(file), out);
      if (!rc) secret_value(r, label, *out);
      return rc;
    }
  }
  if (json_is_object(v))
    return ferry_error_set(
        r->err, FERRY_ECONFIG,
        "%s: %s: expected a string, {\"env\": \"NAME\"} or {\"file\": \"PATH\"}, found an object "
        "with other keys",
        r->where, label);
  return ferry_error_set(r->err, FERRY_ECONFIG, "%s: %s: expected %s, found %s", r->where, label,
                         o->type == FERRY_OPT_STRING_LIST ? "a string or a list of strings" : "string",
                         ferry__json_kind(v));
}

static void register_json_strings(json_t *v) {
  if (json_is_string(v)) {
    ferry__secret_add(json_string_value(v));
  } else if (json_is_object(v)) {
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) register_json_strings(x);
  } else if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) register_json_strings(x);
  }
}

static int type_error(const opt_run *r, const ferry_option *o, json_t *v) {
  return ferry_error_set(r->err, FERRY_ECONFIG, "%s: \"%s\": expected %s, found %s", r->where, o->key,
                         ferry__opt_type_name(o->type), ferry__json_kind(v));
}

/* Converts `v` for option `o` and stores it at its offset. Nothing is stored on failure. */
static int set_value(const opt_run *r, const ferry_option *o, json_t *v, char *ctx) {
  void *field = ctx + o->offset;
  char *label = ferry_asprintf("\"%s\"", o->key);
  int rc = 0;
  int nonempty = (o->flags & FERRY_OPT_NONEMPTY) != 0;
  switch (o->type) {
    case FERRY_OPT_STRING: {
      char *s = NULL;
      rc = resolve_string(r, o, label, v, &s);
      if (!rc && nonempty && !*s) {
        free(s);
        rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: \"%s\": must not be empty", r->where, o->key);
      }
      if (!rc) *(char **)field = s;
      break;
    }
    case FERRY_OPT_INT: {
      int64_t n = 0;
      if (json_is_integer(v)) {
        n = (int64_t)json_integer_value(v);
      } else if (json_is_real(v)) {
        double d = json_real_value(v);
        if (d >= -9223372036854775808.0 && d < 9223372036854775808.0 && d == (double)(int64_t)d)
          n = (int64_t)d;
        else
          rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: \"%s\": expected integer, found %g", r->where,
                               o->key, d);
      } else {
        rc = type_error(r, o, v);
      }
      if (!rc && (o->flags & FERRY_OPT_RANGE) && (n < o->min || n > o->max)) {
        if (o->flags & FERRY_OPT_SECRET) /* the value is not shown */
          rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: \"%s\": must be between %lld and %lld", r->where,
                               o->key, (long long)o->min, (long long)o->max);
        else if (o->max == INT64_MAX)
          rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: \"%s\": must be %lld or more, found %lld", r->where,
                               o->key, (long long)o->min, (long long)n);
        else if (o->min == INT64_MIN)
          rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: \"%s\": must be %lld or less, found %lld", r->where,
                               o->key, (long long)o->max, (long long)n);
        else
          rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: \"%s\": must be between %lld and %lld, found %lld",
                               r->where, o->key, (long long)o->min, (long long)o->max, (long long)n);
      }
      if (!rc) *(int64_t *)field = n;
      break;
    }
    case FERRY_OPT_ENUM: {
      const ferry_opt_choice *c = o->choices;
      while (c && c->name && !(json_is_string(v) && !strcmp(c->name, json_string_value(v)))) c++;
      if (c && c->name) {
        *(int *)field = c->value;
        break;
      }
      char *names = choices_text(o->choices);
      if (json_is_string(v))
        rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: \"%s\": must be one of %s, found \"%s\"", r->where,
                             o->key, names, json_string_value(v));
      else
        rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: \"%s\": must be one of %s, found %s", r->where,
                             o->key, names, ferry__json_kind(v));
      free(names);
      break;
    }
    case FERRY_OPT_DOUBLE:
      if (json_is_number(v))
        *(double *)field = json_number_value(v);
      else
        rc = type_error(r, o, v);
      break;
    case FERRY_OPT_BOOL:
      if (json_is_boolean(v))
        *(int *)field = json_is_true(v);
      else
        rc = type_error(r, o, v);
      break;
    case FERRY_OPT_STRING_LIST: {
      if (json_is_array(v)) {
        size_t n = json_array_size(v);
        char **list = ferry__xcalloc(n + 1, sizeof(char *));
        if (nonempty && n == 0)
          rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: \"%s\": must not be an empty list", r->where,
                               o->key);
        for (size_t i = 0; i < n && !rc; i++) {
          char *el = ferry_asprintf("\"%s\"[%zu]", o->key, i);
          rc = resolve_string(r, o, el, json_array_get(v, i), &list[i]);
          if (!rc && nonempty && !*list[i])
            rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: %s: must not be empty", r->where, el);
          free(el);
        }
        if (rc)
          ferry__strv_free(list);
        else
          *(char ***)field = list;
      } else if (json_is_string(v) || json_is_object(v)) {
        char *s = NULL;
        rc = resolve_string(r, o, label, v, &s);
        if (!rc && nonempty && !*s) {
          free(s);
          rc = ferry_error_set(r->err, FERRY_ECONFIG, "%s: \"%s\": must not be empty", r->where, o->key);
        }
        if (!rc) {
          char **list = ferry__xcalloc(2, sizeof(char *));
          list[0] = s;
          *(char ***)field = list;
        }
      } else {
        rc = ferry_error_set(r->err, FERRY_ECONFIG,
                             "%s: \"%s\": expected a string or a list of strings, found %s", r->where, o->key,
                             ferry__json_kind(v));
      }
      break;
    }
    case FERRY_OPT_JSON:
      if (o->flags & FERRY_OPT_SECRET) register_json_strings(v);
      *(json_t **)field = json_incref(v);
      break;
    default:
      rc = ferry_error_set(r->err, FERRY_EINTERNAL,
                           "%s: \"%s\": the plugin declares an unknown option type %d", r->where, o->key,
                           (int)o->type);
  }
  free(label);
  return rc;
}

static void release_one(const ferry_option *o, char *ctx) {
  void *field = ctx + o->offset;
  switch (o->type) {
    case FERRY_OPT_STRING:
      free(*(char **)field);
      *(char **)field = NULL;
      break;
    case FERRY_OPT_STRING_LIST:
      ferry__strv_free(*(char ***)field);
      *(char ***)field = NULL;
      break;
    case FERRY_OPT_JSON:
      json_decref(*(json_t **)field);
      *(json_t **)field = NULL;
      break;
    default: break;
  }
}

void ferry__options_release(const ferry_option *table, void *ctx) {
  if (!table || !ctx) return;
  for (const ferry_option *o = table; o->key; o++) release_one(o, ctx);
}

static char *valid_keys(const ferry_option *table) {
  ferry_buf sb = {0};
  for (const ferry_option *o = table; o && o->key; o++) {
    if (sb.len) ferry_buf_add(&sb, ", ");
    ferry_buf_add(&sb, o->key);
  }
  return ferry_buf_steal(&sb);
}

/* The option `key` names, by its key or by its deprecated key, or NULL. */
static const ferry_option *find_option(const ferry_option *table, const char *key) {
  for (const ferry_option *o = table; o && o->key; o++)
    if (!strcmp(o->key, key) || (o->deprecated_key && !strcmp(o->deprecated_key, key))) return o;
  return NULL;
}

/* Whether option `o` means something for `role` (0: any role). */
static int for_role(const ferry_option *o, uint32_t role) { return !role || !o->roles || (o->roles & role); }

/* A default from the table, taken literally (no substitution, no env/file forms). */
static int set_default(const opt_run *r, const ferry_option *o, char *ctx) {
  json_error_t je;
  json_t *def = json_loads(o->default_json, JSON_DECODE_ANY, &je);
  if (!def)
    return ferry_error_set(r->err, FERRY_EINTERNAL,
                           "%s: \"%s\": the plugin's default value is not valid JSON (%s; a bug "
                           "in the plugin)",
                           r->where, o->key, je.text);
  int rc = 0;
  void *field = ctx + o->offset;
  if (o->type == FERRY_OPT_STRING && json_is_string(def)) {
    *(char **)field = ferry_strdup(json_string_value(def));
    if (o->flags & FERRY_OPT_SECRET) ferry__secret_add(json_string_value(def));
  } else if (o->type == FERRY_OPT_STRING_LIST && (json_is_string(def) || json_is_array(def))) {
    size_t n = json_is_array(def) ? json_array_size(def) : 1;
    char **list = ferry__xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n && !rc; i++) {
      json_t *e = json_is_array(def) ? json_array_get(def, i) : def;
      if (!json_is_string(e))
        rc = ferry_error_set(r->err, FERRY_EINTERNAL, "%s: \"%s\": the plugin's default list holds a %s",
                             r->where, o->key, ferry__json_kind(e));
      else
        list[i] = ferry_strdup(json_string_value(e));
      if (!rc && (o->flags & FERRY_OPT_SECRET)) ferry__secret_add(list[i]);
    }
    if (rc)
      ferry__strv_free(list);
    else
      *(char ***)field = list;
  } else if (o->type == FERRY_OPT_STRING || o->type == FERRY_OPT_STRING_LIST) {
    rc = ferry_error_set(r->err, FERRY_EINTERNAL, "%s: \"%s\": the plugin's default value is a %s, not a %s",
                         r->where, o->key, ferry__json_kind(def), ferry__opt_type_name(o->type));
  } else {
    ferry_error e2 = FERRY_ERROR_INIT;
    opt_run r2 = {r->where, r->base_dir, &e2};
    if (set_value(&r2, o, def, ctx))
      rc = ferry_error_set(r->err, FERRY_EINTERNAL,
                           "%s: \"%s\": the plugin's default value %s is not a valid %s "
                           "(a bug in the plugin)",
                           r->where, o->key, o->default_json, ferry__opt_type_name(o->type));
    ferry_error_clear(&e2);
  }
  json_decref(def);
  return rc;
}

int ferry__options_apply_ex(const ferry_option *table, json_t *options, void *ctx, const char *where,
                           const char *base_dir, uint32_t role, ferry_error *err) {
  opt_run r = {where ? where : "options", base_dir, err};
  if (options && json_is_null(options)) options = NULL;
  if (options && !json_is_object(options))
    return ferry_error_set(err, FERRY_ECONFIG, "%s: expected an object, found %s", r.where,
                           ferry__json_kind(options));
  /* unknown keys first, in file order */
  const char *key;
  json_t *v;
  json_object_foreach(options, key, v) {
    if (find_option(table, key)) continue;
    if (!table || !table->key)
      return ferry_error_set(err, FERRY_ECONFIG, "%s: unknown key \"%s\"; this plugin takes no options",
                             r.where, key);
    char *keys = valid_keys(table);
    ferry_error_set(err, FERRY_ECONFIG, "%s: unknown key \"%s\"; valid keys: %s", r.where, key, keys);
    free(keys);
    return FERRY_ECONFIG;
  }
  if (!table) return 0;
  /* then keys given to the wrong role, both names of one option, and required keys missing */
  json_object_foreach(options, key, v) {
    const ferry_option *o = find_option(table, key);
    if (for_role(o, role)) continue;
    char *roles = roles_text(o->roles);
    ferry_error_set(err, FERRY_ECONFIG, "%s: option \"%s\" applies to %s only (this is the %s)", r.where, key,
                    roles, role_name(role));
    free(roles);
    return FERRY_ECONFIG;
  }
  for (const ferry_option *o = table; o->key; o++) {
    json_t *now = json_object_get(options, o->key);
    json_t *old = o->deprecated_key ? json_object_get(options, o->deprecated_key) : NULL;
    if (now && old)
      return ferry_error_set(err, FERRY_ECONFIG,
                             "%s: both \"%s\" and \"%s\" are given; \"%s\" is the deprecated name of \"%s\": "
                             "keep only \"%s\"",
                             r.where, o->deprecated_key, o->key, o->deprecated_key, o->key, o->key);
    if (!(o->flags & FERRY_OPT_REQUIRED) || now || old || !for_role(o, role)) continue;
    if (o->help)
      return ferry_error_set(err, FERRY_ECONFIG, "%s: missing required key \"%s\" (%s)", r.where, o->key,
                             o->help);
    return ferry_error_set(err, FERRY_ECONFIG, "%s: missing required key \"%s\"", r.where, o->key);
  }
  size_t i = 0;
  int rc = 0;
  for (; table[i].key; i++) {
    const ferry_option *o = &table[i];
    json_t *val = json_object_get(options, o->key);
    if (!val && o->deprecated_key && (val = json_object_get(options, o->deprecated_key))) {
      /* the value under its old name: messages name the key as written */
      ferry_option as_given = *o;
      as_given.key = o->deprecated_key;
      rc = set_value(&r, &as_given, val, ctx);
      if (!rc)
        ferry_log(NULL, FERRY_LOG_WARN, "%s: option \"%s\" is deprecated: write \"%s\" (same values)", r.where,
                  o->deprecated_key, o->key);
    } else if (val) {
      rc = set_value(&r, o, val, ctx);
    } else if (o->default_json) {
      rc = set_default(&r, o, ctx);
    }
    /* else: left zero (the context was zeroed) */
    if (rc) break;
  }
  if (rc) {
    /* release what was stored before the failure (the failing option stored nothing) */
    for (size_t k = 0; k < i; k++) release_one(&table[k], ctx);
    return rc;
  }
  return 0;
}

int ferry__options_apply(const ferry_option *table, json_t *options, void *ctx, const char *where,
                        ferry_error *err) {
  return ferry__options_apply_ex(table, options, ctx, where, NULL, 0, err);
}

/* ---- options checked once ------------------------------------------------------------------------------ */

struct ferry__options {
  const ferry_option *table; /* the plugin's (static) */
  size_t size;               /* ctx_size */
  char *ctx;                 /* the values, owned */
};

ferry__options *ferry__options_prepare(const ferry_plugin *plugin, json_t *options, const char *where,
                                       const char *base_dir, uint32_t role, ferry_error *err) {
  if (!plugin->options && options && json_is_object(options) && json_object_size(options)) {
    ferry_error_set(err, FERRY_ECONFIG, "%s: plugin \"%s\" takes no options", where ? where : "options",
                    plugin->name);
    return NULL;
  }
  ferry__options *o = ferry__xcalloc(1, sizeof *o);
  o->table = plugin->options;
  o->size = plugin->ctx_size ? plugin->ctx_size : 1;
  o->ctx = ferry__xcalloc(1, o->size);
  if (ferry__options_apply_ex(plugin->options, options, o->ctx, where, base_dir, role, err) < 0) {
    free(o->ctx);
    free(o);
    return NULL;
  }
  return o;
}

void ferry__options_copy_to(const ferry__options *o, void *ctx) {
  for (const ferry_option *op = o->table; op && op->key; op++) {
    const char *from = o->ctx + op->offset;
    char *to = (char *)ctx + op->offset;
    switch (op->type) {
      case FERRY_OPT_STRING: *(char **)to = ferry_strdup(*(char *const *)from); break;
      case FERRY_OPT_STRING_LIST:
        *(char ***)to = *(char **const *)from ? ferry__strv_dup(*(const char *const *const *)from) : NULL;
        break;
      case FERRY_OPT_JSON:
        *(json_t **)to = *(json_t *const *)from ? json_deep_copy(*(json_t *const *)from) : NULL;
        break;
      case FERRY_OPT_INT: memcpy(to, from, sizeof(int64_t)); break;
      case FERRY_OPT_DOUBLE: memcpy(to, from, sizeof(double)); break;
      case FERRY_OPT_BOOL:
      case FERRY_OPT_ENUM: memcpy(to, from, sizeof(int)); break;
      default: break;
    }
  }
}

void ferry__options_free(ferry__options *o) {
  if (!o) return;
  ferry__options_release(o->table, o->ctx);
  free(o->ctx);
  free(o);
}

/* ---- ferry plugins --describe ----------------------------------------------------------------------------
 */

static json_t *kind_names(uint32_t bits) {
  json_t *a = json_array();
  for (uint32_t b = 1; b & FERRY_ITEM_ALL; b <<= 1)
    if (bits & b) json_array_append_new(a, json_string(ferry_item_kind_name(b)));
  return a;
}

static void add_points(json_t *a, const char *const *pts) {
  for (size_t i = 0; pts && pts[i]; i++) {
    size_t k;
    json_t *x;
    int seen = 0;
    json_array_foreach(a, k, x) seen |= !strcmp(json_string_value(x), pts[i]);
    if (!seen) json_array_append_new(a, json_string(pts[i]));
  }
}

json_t *ferry__plugin_describe(const ferry_plugin *p) {
  json_t *o = json_object();
  json_object_set_new(o, "name", json_string(p->name ? p->name : ""));
  json_object_set_new(o, "version", json_string(p->version ? p->version : ""));
  json_object_set_new(o, "description", json_string(p->description ? p->description : ""));
  json_object_set_new(o, "license", json_string(p->license ? p->license : ""));
  json_t *kinds = json_array();
  if (p->kinds & FERRY_KIND_SOURCE) json_array_append_new(kinds, json_string("source"));
  if (p->kinds & FERRY_KIND_SINK) json_array_append_new(kinds, json_string("sink"));
  if (p->kinds & FERRY_KIND_HOOK) json_array_append_new(kinds, json_string("hook"));
  json_object_set_new(o, "kinds", kinds);
  json_t *points = json_array();
  if ((p->kinds & FERRY_KIND_SOURCE) && p->source) {
    json_object_set_new(o, "emits", kind_names(p->source->emits));
    add_points(points, p->source->hook_points);
  }
  if ((p->kinds & FERRY_KIND_SINK) && p->sink) {
    json_object_set_new(o, "accepts", kind_names(p->sink->accepts));
    add_points(points, p->sink->hook_points);
  }
  json_object_set_new(o, "hook_points", points);
  if ((p->kinds & FERRY_KIND_HOOK) && p->hook) {
    if (p->hook->points) {
      json_t *serves = json_array();
      add_points(serves, p->hook->points);
      json_object_set_new(o, "serves", serves);
    } else {
      json_object_set_new(o, "serves", json_string("any"));
    }
  }
  json_t *opts = json_array();
  for (const ferry_option *op = p->options; op && op->key; op++) {
    json_t *d = json_object();
    json_object_set_new(d, "key", json_string(op->key));
    json_object_set_new(d, "type", json_string(ferry__opt_type_name(op->type)));
    if (op->default_json) {
      if (op->flags & FERRY_OPT_SECRET) {
        json_object_set_new(d, "default", json_string("***"));
      } else {
        json_t *def = json_loads(op->default_json, JSON_DECODE_ANY, NULL);
        json_object_set_new(d, "default", def ? def : json_string(op->default_json));
      }
    }
    json_object_set_new(d, "required", json_boolean(op->flags & FERRY_OPT_REQUIRED));
    json_object_set_new(d, "secret", json_boolean(op->flags & FERRY_OPT_SECRET));
    json_object_set_new(d, "help", json_string(op->help ? op->help : ""));
    if (op->roles) {
      json_t *roles = json_array();
      for (uint32_t b = FERRY_KIND_SOURCE; b <= FERRY_KIND_HOOK; b <<= 1)
        if (op->roles & b) json_array_append_new(roles, json_string(role_name(b)));
      json_object_set_new(d, "roles", roles);
    }
    if (op->type == FERRY_OPT_ENUM) {
      json_t *names = json_array();
      for (const ferry_opt_choice *c = op->choices; c && c->name; c++)
        json_array_append_new(names, json_string(c->name));
      json_object_set_new(d, "choices", names);
    }
    if (op->type == FERRY_OPT_INT && (op->flags & FERRY_OPT_RANGE)) {
      if (op->min != INT64_MIN) json_object_set_new(d, "min", json_integer((json_int_t)op->min));
      if (op->max != INT64_MAX) json_object_set_new(d, "max", json_integer((json_int_t)op->max));
    }
    if (op->flags & FERRY_OPT_NONEMPTY) json_object_set_new(d, "non_empty", json_true());
    if (op->deprecated_key) json_object_set_new(d, "deprecated_name", json_string(op->deprecated_key));
    json_array_append_new(opts, d);
  }
  json_object_set_new(o, "options", opts);
  return o;
}
