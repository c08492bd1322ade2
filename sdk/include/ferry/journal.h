/* ferry embedding API: reading a journal (ABI 1.2), what `ferry status` and `ferry export-map` show; copying
 * one (ABI 1.4, `ferry journal copy`).
 *
 * The journal is the SQLite file a run writes (docs/journal.md): one row per item of every stage (its
 * status, last step, attempts, error, stored report and verify mark), the id map (old id -> new id per
 * kind, with the item that mapped it) and the runs. These functions only read it: they never create,
 * lock, upgrade or change the file, and may be used while a run or a verify writes it (they see what that
 * run has committed). A journal of an older schema is read as it is (the newer fields read as null).
 *
 * Texts come as the journal stores them: errors, reports and verify marks were redacted when written.
 *
 * Ownership: a ferry_journal handle is owned by the caller (ferry_journal_close()). JSON values returned
 * are new references owned by the caller; values and structs passed to a callback are borrowed and valid
 * only during the call (json_incref a value to keep it). Callbacks return 0 to go on, non-zero to stop
 * (the function then returns 0); they run with no statement open and may call other functions of this
 * header on the same handle. A handle is not thread-safe: use it from one thread.
 *
 * Errors: functions that can fail return 0 (or a value) on success, and a negative FERRY_E* code (or NULL)
 * with `err` filled: FERRY_ENOENT (no such file, or an empty one: nothing has run with it), FERRY_EIO (the
 * file cannot be read or is damaged), FERRY_EINVAL (not a ferry journal, a schema newer than this ferry
 * reads, a bad argument).
 */
#ifndef FERRY_JOURNAL_H
#define FERRY_JOURNAL_H

#include <stdint.h>
#include <jansson.h>
#include "ferry/error.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_journal ferry_journal;

/* Opens the journal file `path` read-only. NULL with err set when it does not exist (nothing is created) or
 * cannot be read. */
FERRY_API ferry_journal *ferry_journal_open_readonly(const char *path, ferry_error *err);
/* Closes the handle; NULL allowed. */
FERRY_API void ferry_journal_close(ferry_journal *j);
/* The schema version of the file (2; 1 for a journal written by an older ferry). */
FERRY_API int ferry_journal_schema_version(const ferry_journal *j);

/* The stages the journal holds, in name order, with their item counts per status: a new JSON array
 * [{"name", "total", "done", "skipped", "failed", "in_doubt"}] ("in_doubt": an intent was recorded and no
 * outcome: the run stopped in the middle of the item). NULL with err set on a read error. */
FERRY_API json_t *ferry_journal_stages(ferry_journal *j, ferry_error *err);

/* ferry_journal_items() flags */
#define FERRY_JOURNAL_IDS 0x1u /* give each item its "ids" (read in batches, not one query per item) */

/* One item, borrowed during the callback:
 *   {"stage", "key", "status": "intent" (in doubt) | "done" | "skipped" | "failed", "step": the last step
 *    recorded or null, "attempts", "error": the message of the last failure or null, "detail": its developer
 *    text or null, "code": its FERRY_E* name ("ETRANSIENT") or null, "report": the report object stored with
 *    the last outcome or null, "verify": the mark of the last verify that found it different or null
 *    ({"result": "mismatch", "at", "run", "message", "differences"}), "run": id of the run that last wrote
 *    it or null, "created", "updated": milliseconds since the epoch,
 *    "ids": [{"kind", "old", "new"}] in (kind, old) order, only with FERRY_JOURNAL_IDS}
 * A done item with an "error" is a repair that failed (`ferry run --repair`): it stays done, with its mark. */
typedef int (*ferry_journal_item_cb)(void *arg, json_t *item);
/* Calls cb for each item of `stage` (NULL = every stage) whose status is `status` ("intent", "done",
 * "skipped" or "failed"; NULL = any), in (stage, key) order. Returns 0, or a negative code with err set
 * (FERRY_EINVAL for an unknown status name). */
FERRY_API int ferry_journal_items(ferry_journal *j, const char *stage, const char *status, unsigned flags,
                                  ferry_journal_item_cb cb, void *arg, ferry_error *err);

/* One mapping of the id map, borrowed during the callback (strings included). */
typedef struct ferry_journal_id {
  const char *kind;   /* "process", "activity", "record", "file", ...; '_' first: a plugin's own bookkeeping */
  const char *old_id; /* the id on the source */
  const char *new_id; /* the id on the target */
  const char *stage, *key; /* the item that mapped it */
  int64_t created;    /* milliseconds since the epoch */
} ferry_journal_id;
typedef int (*ferry_journal_id_cb)(void *arg, const ferry_journal_id *id);
/* Calls cb for each mapping, `kind` (NULL = any) only: of one item (stage and key given; order kind,
 * old_id), of one stage (key NULL; order key, kind, old_id) or of all (both NULL; order kind, old_id).
 * Returns 0, or a negative code with err set. */
FERRY_API int ferry_journal_ids(ferry_journal *j, const char *stage, const char *key, const char *kind,
                                ferry_journal_id_cb cb, void *arg, ferry_error *err);

/* The last `limit` runs (0 = all), newest first: a new JSON array [{"id", "mode": "run" | "verify",
 * "started", "ended", "status", "summary"}] (times in milliseconds since the epoch; ended, status and
 * summary are null while a run has not ended, or when it was killed; summary: the run's totals). NULL with
 * err set on a read error. */
FERRY_API json_t *ferry_journal_runs(ferry_journal *j, int limit, ferry_error *err);

/* Copies the journal `from` into the journal `to` (since ABI 1.4; what `ferry journal copy` does): each may
 * be an SQLite file or a "postgresql://" URL. Every item with all its fields, the whole id map and every run
 * (same ids, summaries) are copied; `from` is only read. `to` is created if needed and opened for writing
 * (it takes its run lock: no run may be using it); it must hold nothing (FERRY_ECONFLICT otherwise) unless
 * flags has FERRY_JOURNAL_COPY_REPLACE, which deletes what it holds first. Rows are written in transactions
 * of 1000: a copy that fails part way leaves a partial target, to copy again with REPLACE. counts (may be
 * NULL) gets the items, mappings and runs copied. 0 or a negative FERRY_E* code with err set. */
#define FERRY_JOURNAL_COPY_REPLACE 1u
FERRY_API int ferry_journal_copy(const char *from, const char *to, unsigned flags, int64_t counts[3],
                                 ferry_error *err);

#ifdef __cplusplus
}
#endif
#endif
