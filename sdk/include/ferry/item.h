/* ferry SDK: items, the unit of work that flows from a source to a sink.
 *
 * An item has a kind, a key and a JSON body whose fields depend on the kind (documented below), plus an
 * optional raw payload (bytes that are not worth turning into JSON, such as the COPY text of a batch of
 * rows). The key is stable across runs: the journal identifies the item by (stage, key), so a source must
 * produce the same key for the same object every time (a record's table + primary key, a file's root +
 * relative path, an instance's source id).
 *
 * Ownership: a source creates an item with ferry_item_new() and hands it to the core with ferry_emit(); from
 * then on the core owns it and frees it after the sink has finished with it. Sinks and hooks get `const
 * ferry_item *`: borrowed, valid until the task completes (ferry_task_done/ferry_task_fail), never freed by
 * them. The body must not be modified after emission.
 *
 * Body fields by kind (keys absent when unknown; extra keys allowed, engine-specific ones under "extra"):
 *
 * FERRY_ITEM_RECORD  rows of one table (one row, or a batch for bulk copies)
 *   "table": string            table name as on the source, unquoted ("app_fd_leave")
 *   "schema": string           optional schema
 *   "columns": [string]        column names, in the order of the row arrays / payload fields
 *   "types": [string]          optional, source column types ("text", "varchar(255)", "timestamp ...")
 *   "key_columns": [string]    primary-key columns
 *   "rows": [[value|null]]     rows as arrays, when the body carries them; or
 *   "format": "copy-text"      when the payload carries the rows in PostgreSQL COPY text format instead
 *   "row_count": integer       number of rows in this item
 *
 * FERRY_ITEM_FILE  one file under a root
 *   "root": string             logical root name (e.g. "app_formuploads")
 *   "path": string             path relative to the root, '/'-separated, normalised, never ".." or absolute
 *   "size": integer            bytes
 *   "mtime_ns": integer        modification time, nanoseconds since the epoch
 *   "mode": integer            permission bits
 *   "sha256": string           hex checksum of the content, when the source computed it
 *   "local_path": string       absolute path from which the bytes can be read on this machine
 *
 * FERRY_ITEM_INSTANCE  one running process instance
 *   "id": string               source instance id
 *   "definition": string       full definition id as the engine names it ("app#3#leave_process")
 *   "app": string, "app_version": string, "package_version": string, "process": string
 *   "record_id": string        the form record the instance is linked to
 *   "requester": string        user who started it
 *   "variables": {name: string|number|bool|null}
 *   "parent": string|null      parent instance id (sub-flows are carried inside their parent, not alone)
 *   "activities": [{"def_id": string, "id": string, "name": string, "state": string,
 *                   "assignees": [string], "accepted_by": string|null}]   the open activities
 *   "started": string           start time as the source reports it
 *   "extra": {...}              engine-specific
 */
#ifndef FERRY_ITEM_H
#define FERRY_ITEM_H

#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#include "ferry/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Item kinds are bits so that sources and sinks can declare sets of them. */
#define FERRY_ITEM_RECORD 0x1u
#define FERRY_ITEM_FILE 0x2u
#define FERRY_ITEM_INSTANCE 0x4u
#define FERRY_ITEM_ALL 0x7u

typedef struct ferry_item {
  uint32_t kind;      /* exactly one FERRY_ITEM_* bit */
  uint32_t reserved;  /* zero */
  char *key;          /* owned NUL-terminated string, never NULL */
  json_t *body;       /* owned reference to a JSON object, never NULL (may be empty) */
  void *payload;      /* owned malloc'd bytes, or NULL */
  size_t payload_len; /* length of payload */
} ferry_item;

/* Creates an item. `key` is copied; `body` is stolen (the item owns the caller's reference; pass NULL for an
 * empty object). Returns NULL only when out of memory (then `body` has been released). */
FERRY_API ferry_item *ferry_item_new(uint32_t kind, const char *key, json_t *body);
/* Frees the item, its key, body reference and payload. NULL is allowed. */
FERRY_API void ferry_item_free(ferry_item *item);
/* Gives the item a payload: takes ownership of `buf` (allocated with malloc), replacing and freeing any
 * previous payload. */
FERRY_API void ferry_item_set_payload(ferry_item *item, void *buf, size_t len);
/* Convenience getters on the body: a borrowed pointer into the body (valid as long as the item), or `dflt`
 * when the field is absent or not of that type. */
FERRY_API const char *ferry_item_str(const ferry_item *item, const char *field, const char *dflt);
FERRY_API int64_t ferry_item_int(const ferry_item *item, const char *field, int64_t dflt);
/* "record", "file", "instance", or "unknown". Static string. */
FERRY_API const char *ferry_item_kind_name(uint32_t kind);
/* Parses a kind name; returns 0 when unknown. */
FERRY_API uint32_t ferry_item_kind_parse(const char *name);
/* Serialises the item as {"kind": ..., "key": ..., "body": {...}[, "payload_base64": "..."]}: a new
 * reference owned by the caller. */
FERRY_API json_t *ferry_item_to_json(const ferry_item *item);
/* Inverse of ferry_item_to_json. Does not steal `json`. On bad input returns NULL and fills `err` naming
 * the field that is wrong. The returned item is owned by the caller. */
FERRY_API ferry_item *ferry_item_from_json(json_t *json, ferry_error *err);

#ifdef __cplusplus
}
#endif
#endif
