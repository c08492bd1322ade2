/* Secret redaction: every registered secret is replaced by "***" in everything ferry writes. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static char **secrets;
static size_t nsecrets, capsecrets;

static void secret_add_one(const char *value);

/* A secret is also registered in its JSON-escaped form (a password holding '"' or '\\' as it appears inside
 * JSON text written by json_dumps), so that redacting serialised JSON finds it too. */
void ferry__secret_add(const char *value) {
  if (!value || strlen(value) < FERRY__SECRET_MIN) return;
  secret_add_one(value);
  json_t *s = json_string(value);
  char *esc = s ? json_dumps(s, JSON_ENCODE_ANY) : NULL;
  json_decref(s);
  if (esc) {
    size_t n = strlen(esc);
    if (n >= 2) {
      esc[n - 1] = '\0';
      if (strcmp(esc + 1, value)) secret_add_one(esc + 1);
    }
    free(esc);
  }
}

static void secret_add_one(const char *value) {
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < nsecrets; i++)
    if (!strcmp(secrets[i], value)) {
      pthread_mutex_unlock(&lock);
      return;
    }
  if (nsecrets == capsecrets) {
    capsecrets = capsecrets ? capsecrets * 2 : 8;
    secrets = ferry__xrealloc(secrets, capsecrets * sizeof *secrets);
  }
  secrets[nsecrets++] = ferry_strdup(value);
  /* longest first, so that a secret containing another is redacted whole */
  for (size_t i = nsecrets - 1; i > 0 && strlen(secrets[i]) > strlen(secrets[i - 1]); i--) {
    char *t = secrets[i];
    secrets[i] = secrets[i - 1];
    secrets[i - 1] = t;
  }
  pthread_mutex_unlock(&lock);
}

FERRY_API void ferry_secret(const ferry_instance *ins, const char *value) {
  (void)ins;
  ferry__secret_add(value);
}

void ferry__secret_clear(void) {
  pthread_mutex_lock(&lock);
  for (size_t i = 0; i < nsecrets; i++) free(secrets[i]);
  free(secrets);
  secrets = NULL;
  nsecrets = capsecrets = 0;
  pthread_mutex_unlock(&lock);
}

FERRY_API char *ferry_redact(const char *s) {
  if (!s) return NULL;
  pthread_mutex_lock(&lock);
  if (!nsecrets) {
    pthread_mutex_unlock(&lock);
    return ferry_strdup(s);
  }
  ferry_buf sb = {0};
  const char *p = s;
  while (*p) {
    size_t hit = 0;
    for (size_t i = 0; i < nsecrets; i++) {
      if (*p != secrets[i][0]) continue;
      size_t n = strlen(secrets[i]);
      if (!strncmp(p, secrets[i], n)) {
        hit = n;
        break;
      }
    }
    if (hit) {
      ferry_buf_add(&sb, "***");
      p += hit;
    } else {
      ferry_buf_addn(&sb, p, 1);
      p++;
    }
  }
  pthread_mutex_unlock(&lock);
  return ferry_buf_steal(&sb);
}

void ferry__redact_json(json_t *v) {
  if (!v) return;
  if (json_is_string(v)) {
    char *r = ferry_redact(json_string_value(v));
    if (strcmp(r, json_string_value(v))) json_string_set(v, r);
    free(r);
  } else if (json_is_object(v)) {
    const char *k;
    json_t *x;
    json_object_foreach(v, k, x) ferry__redact_json(x);
  } else if (json_is_array(v)) {
    size_t i;
    json_t *x;
    json_array_foreach(v, i, x) ferry__redact_json(x);
  }
}
