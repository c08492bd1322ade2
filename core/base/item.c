/* Items (ferry/item.h). */
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

FERRY_API ferry_item *ferry_item_new(uint32_t kind, const char *key, json_t *body) {
  ferry_item *it = malloc(sizeof *it);
  if (!it) {
    json_decref(body);
    return NULL;
  }
  it->kind = kind;
  it->reserved = 0;
  it->key = ferry_strdup(key ? key : "");
  it->body = body ? body : json_object();
  it->payload = NULL;
  it->payload_len = 0;
  return it;
}

FERRY_API void ferry_item_free(ferry_item *item) {
  if (!item) return;
  free(item->key);
  json_decref(item->body);
  free(item->payload);
  free(item);
}

FERRY_API void ferry_item_set_payload(ferry_item *item, void *buf, size_t len) {
  free(item->payload);
  item->payload = buf;
  item->payload_len = buf ? len : 0;
}

FERRY_API const char *ferry_item_str(const ferry_item *item, const char *field, const char *dflt) {
  json_t *v = item && item->body ? json_object_get(item->body, field) : NULL;
  return json_is_string(v) ? json_string_value(v) : dflt;
}

FERRY_API int64_t ferry_item_int(const ferry_item *item, const char *field, int64_t dflt) {
  json_t *v = item && item->body ? json_object_get(item->body, field) : NULL;
  return json_is_integer(v) ? (int64_t)json_integer_value(v) : dflt;
}

FERRY_API const char *ferry_item_kind_name(uint32_t kind) {
  switch (kind) {
    case FERRY_ITEM_RECORD: return "record";
    case FERRY_ITEM_FILE: return "file";
    case FERRY_ITEM_INSTANCE: return "instance";
    default: return "unknown";
  }
}

FERRY_API uint32_t ferry_item_kind_parse(const char *name) {
  if (!name) return 0;
  if (!strcmp(name, "record")) return FERRY_ITEM_RECORD;
  if (!strcmp(name, "file")) return FERRY_ITEM_FILE;
  if (!strcmp(name, "instance")) return FERRY_ITEM_INSTANCE;
  return 0;
}

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *base64_encode(const unsigned char *p, size_t n) {
  char *out = ferry__xmalloc(4 * ((n + 2) / 3) + 1), *o = out;
  size_t i = 0;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
    *o++ = b64[v >> 18];
    *o++ = b64[(v >> 12) & 63];
    *o++ = b64[(v >> 6) & 63];
    *o++ = b64[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
    *o++ = b64[v >> 18];
    *o++ = b64[(v >> 12) & 63];
    *o++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
    *o++ = '=';
  }
  *o = '\0';
  return out;
}

static int b64val(int c) {
  const char *p = c ? strchr(b64, c) : NULL;
  return p ? (int)(p - b64) : -1;
}

/* Returns malloc'd bytes or NULL on bad input. */
static unsigned char *base64_decode(const char *s, size_t *outlen) {
  size_t n = strlen(s);
  if (n % 4) return NULL;
  unsigned char *out = ferry__xmalloc(n / 4 * 3 + 1);
  size_t o = 0;
  for (size_t i = 0; i < n; i += 4) {
    int a = b64val(s[i]), b = b64val(s[i + 1]);
    int c = s[i + 2] == '=' ? 0 : b64val(s[i + 2]);
    int d = s[i + 3] == '=' ? 0 : b64val(s[i + 3]);
    int pad = (s[i + 2] == '=') + (s[i + 3] == '=');
    if (a < 0 || b < 0 || c < 0 || d < 0 || (pad && i + 4 != n) || (s[i + 2] == '=' && s[i + 3] != '=')) {
      free(out);
      return NULL;
    }
    uint32_t v = (uint32_t)a << 18 | (uint32_t)b << 12 | (uint32_t)c << 6 | (uint32_t)d;
    out[o++] = (unsigned char)(v >> 16);
    if (pad < 2) out[o++] = (unsigned char)(v >> 8);
    if (pad < 1) out[o++] = (unsigned char)v;
  }
  *outlen = o;
  return out;
}

FERRY_API json_t *ferry_item_to_json(const ferry_item *item) {
  json_t *o = json_object();
  json_object_set_new(o, "kind", json_string(ferry_item_kind_name(item->kind)));
  json_object_set_new(o, "key", json_string(item->key));
  json_object_set(o, "body", item->body);
  if (item->payload) {
    char *enc = base64_encode(item->payload, item->payload_len);
    json_object_set_new(o, "payload_base64", json_string(enc));
    free(enc);
  }
  return o;
}

FERRY_API ferry_item *ferry_item_from_json(json_t *json, ferry_error *err) {
  if (!json_is_object(json)) {
    ferry_error_set(err, FERRY_EINVAL, "item is not a JSON object");
    return NULL;
  }
  json_t *kind = json_object_get(json, "kind"), *key = json_object_get(json, "key");
  json_t *body = json_object_get(json, "body"), *pl = json_object_get(json, "payload_base64");
  uint32_t k = ferry_item_kind_parse(json_string_value(kind));
  if (!k) {
    ferry_error_set(err, FERRY_EINVAL, "item field \"kind\" must be \"record\", \"file\" or \"instance\"");
    return NULL;
  }
  if (!json_is_string(key) || !json_string_length(key)) {
    ferry_error_set(err, FERRY_EINVAL, "item field \"key\" must be a non-empty string");
    return NULL;
  }
  if (body && !json_is_object(body)) {
    ferry_error_set(err, FERRY_EINVAL, "item field \"body\" must be an object");
    return NULL;
  }
  if (pl && !json_is_string(pl)) {
    ferry_error_set(err, FERRY_EINVAL, "item field \"payload_base64\" must be a string");
    return NULL;
  }
  unsigned char *bytes = NULL;
  size_t len = 0;
  if (pl && !(bytes = base64_decode(json_string_value(pl), &len))) {
    ferry_error_set(err, FERRY_EINVAL, "item field \"payload_base64\" is not valid base64");
    return NULL;
  }
  ferry_item *it = ferry_item_new(k, json_string_value(key), body ? json_deep_copy(body) : NULL);
  if (!it) {
    free(bytes);
    ferry_error_set(err, FERRY_ENOMEM, "out of memory");
    return NULL;
  }
  if (bytes) ferry_item_set_payload(it, bytes, len);
  return it;
}
