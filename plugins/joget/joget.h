/* joget plugin: internal declarations shared by its files (never installed, never seen by the core).
 *
 * Files: joget.c (descriptor, options, init/fini), client.c (the HTTP client layer over ferry/http.h: URLs,
 * Referer, identities, Joget's JSON quirks, error mapping; small helpers), source*.c (inventory of running
 * instances; see source.h), sink*.c (run: the per-instance protocol; plan; verify; see sink.h).
 * Every non-static symbol starts with joget_ so that the plugin links into libferry (STATIC) without clashes.
 */
#ifndef FERRY_JOGET_H
#define FERRY_JOGET_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <ferry/ferry.h>
#include <ferry/http.h>
#include <ferry/sql.h>

typedef struct joget_ctx joget_ctx_t;
typedef struct joget_once joget_once;

/* ---- small helpers (client.c) ------------------------------------------------------------------------ */
/* Strings and the string buffer are the SDK's (ferry/util.h: ferry_strdup, ferry_asprintf, ferry_buf). */
int64_t joget_now_ms(void);

/* JSON: Joget's accumulate quirk. Returns a NEW reference to an array: the value under `key` when it is an
 * array, [value] when it is a single value, [] when the key is missing (zero rows) or doc is not an object.
 */
json_t *joget_list(json_t *doc, const char *key);
/* String field or NULL (numbers are not converted). */
const char *joget_str(const json_t *obj, const char *key);
/* From a monitoring/activity/view answer into the activity object `act`: "state", "assignees" (always a list)
 * and "accepted_by" (acceptedUser; for an open.running activity with one assignee and no acceptedUser, that
 * assignee: accepting leaves only the accepter's assignment; else null). */
void joget_act_view(json_t *act, json_t *doc);
/* The strings of a JSON array joined with sep (other values as ""); malloc'd, never NULL. */
char *joget_join(const json_t *strings, const char *sep);
/* Definition id helpers: "app#ver#proc" split into parts (each malloc'd, NULL on bad input). */
int joget_def_split(const char *def, char **app, char **ver, char **proc);
/* 1 when Joget's SQL filter (docs/joget-facts.md 4.4: SqlFilterAspect) would answer 500 for this identifier. */
int joget_bad_ident(const char *s);
/* The step named in FERRY_JOGET_TEST_CRASH_AFTER (test only): raises SIGKILL when `step` matches. */
void joget_test_crash(const char *step);

/* ---- the plugin context ---------------------------------------------------------------------------- */
struct joget_ctx {
  /* options (written by the core; owned by the core) */
  char *url;
  char *user;
  char *password;
  char *hash;
  char *referer;
  char *dsn;
  char **apps;
  char **processes;
  int64_t page_size;
  int start_mode;     /* start_as: JOGET_START_* */
  char *master_user;
  char *master_password;
  char *master_hash;
  json_t *users;
  char *version;
  json_t *version_map;
  int mode_always;    /* activities: "always" (1) or "converge" (0) */
  char *activity_ids_sql;
  int64_t timeout_ms;
  int insecure;
  int64_t clock_skew_ms;
  int check;
  int64_t fetch_concurrency;
  int joins_report;   /* and_joins: "report" (1: arrivals at AND-joins are reported as losses, not re-created)
                         or "carry" (0) */
  char *join_branches_sql;
  int record_check;
  /* runtime */
  ferry_instance *ins;
  char *base;        /* url without trailing '/' */
  char *referer_hdr; /* "Referer: ..." */
  char *host_label;  /* "http://host:port/jw" for messages */
  ferry_http *http;
  ferry_sql *db; /* optional (dsn): PostgreSQL or MySQL/MariaDB, through the SQL service */
  const char *acts_sql;  /* activity_ids_sql, or its MySQL form when the default is used on MySQL */
  const char *joins_sql; /* join_branches_sql, likewise */
  int mysql;     /* the dsn's engine is MySQL/MariaDB (SQL text picked per engine, see JOGET_SQL) */
  json_t *user_pw;    /* users option normalised: {user: {"password"|"hash": value}} */
  struct joget_src *src; /* source state (source.c) */
  struct joget_snk *snk; /* sink state (sink.c) */
};

enum { JOGET_START_MASTER = 1, JOGET_START_HASH = 2, JOGET_START_USERS = 3 };
/* A Shark limit time at or beyond this (year 3000, in ms) means "no deadline". */
#define JOGET_NO_LIMIT_MS 32503680000000LL

/* ---- identities ------------------------------------------------------------------------------------ */
/* Credentials sent with one request (strings borrowed). `label` names the identity in messages. */
typedef struct joget_ident {
  const char *user;     /* j_username */
  const char *password; /* j_password, or NULL */
  const char *hash;     /* hash, or NULL */
  const char *login_as; /* loginAs, or NULL */
  const char *label;    /* e.g. "admin user \"admin\"" */
  int role;             /* JOGET_ROLE_ADMIN (monitoring calls) or JOGET_ROLE_USER (start/assignment as a user) */
} joget_ident;
enum { JOGET_ROLE_ADMIN = 1, JOGET_ROLE_USER = 2 };

void joget_admin_ident(joget_ctx_t *c, joget_ident *id);

/* ---- HTTP calls -------------------------------------------------------------------------------------- */
/* Result of a call: `doc` is the parsed JSON answer (borrowed, valid during the callback; NULL when the
 * server answered 200 with an empty body, which Joget does for unknown ids), or `err` is set:
 *   no answer (refused, reset, timeout) and 5xx/429 -> FERRY_ETRANSIENT
 *   401, 403, 302 to the login page -> FERRY_EPERM, naming the identity and what to check
 *   400 -> FERRY_EINVAL (the Referer/whitelist case is named), 404 -> FERRY_ENOENT
 *   a 2xx answer that is not JSON -> FERRY_EPROTO naming the URL path */
typedef void (*joget_cb)(void *arg, json_t *doc, const ferry_error *err);

/* Sends one call. `method` "GET" or "POST"; `path` below /web/json/ with every segment already escaped
 * (joget_seg); `params` NULL-terminated key/value pairs (unescaped) or NULL; `id` the identity (NULL =
 * anonymous). Returns 0 (cb runs later, exactly once) or a negative code with err filled (cb never runs). */
int joget_call(joget_ctx_t *c, const char *method, const char *path, const char *const *params,
               const joget_ident *id, long timeout_ms, joget_cb cb, void *arg, ferry_error *err);
/* GET as the admin. Reads are idempotent: the HTTP service retries them (JOGET_GET_RETRIES, capped backoff
 * with jitter) on no answer and on 5xx/429; the callback sees the last attempt. Same contract as joget_call. */
#define JOGET_GET_RETRIES 8
int joget_get(joget_ctx_t *c, const char *path, const char *const *params, joget_cb cb, void *arg,
              ferry_error *err);
/* Percent-escaped path segment (malloc'd). */
char *joget_seg(const char *s);

/* ---- once-per-key asynchronous lookups (cached), with waiters ------------------------------------------
 * Used for things many items share: an identity check per user, a user's hash, a definition's facts. */
typedef void (*joget_once_cb)(void *arg, json_t *value, const ferry_error *err);
typedef void (*joget_once_start)(joget_ctx_t *c, const char *key, joget_once *o);
typedef struct joget_cache {
  json_t *done;   /* key -> value (json) */
  json_t *failed; /* key -> {"code": n, "message": s, "detail": s} */
  struct joget_once *pending;
} joget_cache;
void joget_cache_init(joget_cache *cc);
void joget_cache_free(joget_cache *cc);
/* Calls cb (now when known, else when the lookup completes). A transient failure is not cached. */
void joget_cache_get(joget_ctx_t *c, joget_cache *cc, const char *key, joget_once_start start, joget_once_cb cb,
                     void *arg);
/* Completes a lookup: value stolen (may be NULL on error). */
void joget_once_finish(joget_once *o, json_t *value, const ferry_error *err);
const char *joget_once_key(const joget_once *o);

/* ---- source and sink --------------------------------------------------------------------------------- */
extern const ferry_source_ops joget_source_ops;
extern const ferry_sink_ops joget_sink_ops;
void joget_source_stop(joget_ctx_t *c); /* no more emits; pending reads complete as canceled */
void joget_source_fini(joget_ctx_t *c);
void joget_sink_fini(joget_ctx_t *c);

/* ---- database reads (optional dsn) ------------------------------------------------------------------
 * The dsn is a PostgreSQL conninfo/URL or a mysql:// / mariadb:// URL, opened with the SDK's SQL service
 * (ferry/sql.h). SQL text is written once where it can be: Joget's tables with the spelling of its MySQL
 * install script (SHKProcesses, ...: PostgreSQL folds unquoted names to its lower-case tables; MySQL on
 * Linux compares table names case-sensitively), columns in any case (MySQL ignores it). Where the dialects
 * differ, JOGET_SQL(c, pg, my) picks the text. Parameters are $1..$n on both engines. */
/* The defaults of activity_ids_sql and join_branches_sql: the emulator's process graph (a JSON text per
 * definition in emu_process_graph), with PostgreSQL's JSON functions, and on MySQL/MariaDB with JSON_TABLE
 * (MySQL 8.0.4+, MariaDB 10.6+), used when the option keeps its default and the dsn is MySQL. */
#define JOGET_ACTIVITY_IDS_SQL_PG \
  "SELECT a->>'id' FROM emu_process_graph g, json_array_elements(g.graph::json->'activities') a WHERE g.pdefname = $1"
#define JOGET_ACTIVITY_IDS_SQL_MY                                                                                  \
  "SELECT a.id FROM emu_process_graph g, JSON_TABLE(g.graph, '$.activities[*]' COLUMNS (id varchar(255) PATH "   \
  "'$.id')) a WHERE g.pdefname = $1"
#define JOGET_JOIN_BRANCHES_SQL_PG                                                                                 \
  "SELECT a->>'id', (SELECT count(DISTINCT t->>'from') FROM json_array_elements(g.graph::json->'transitions') t " \
  "WHERE t->>'to' = a->>'id') FROM emu_process_graph g, json_array_elements(g.graph::json->'activities') a "      \
  "WHERE g.pdefname = $1 AND a->>'join' = 'and'"
#define JOGET_JOIN_BRANCHES_SQL_MY                                                                                 \
  "SELECT a.id, (SELECT count(DISTINCT t.f) FROM emu_process_graph h, JSON_TABLE(h.graph, '$.transitions[*]' "    \
  "COLUMNS (f varchar(255) PATH '$.from', tt varchar(255) PATH '$.to')) t WHERE h.pdefname = g.pdefname AND "     \
  "t.tt = a.id) FROM emu_process_graph g, JSON_TABLE(g.graph, '$.activities[*]' COLUMNS (id varchar(255) PATH "  \
  "'$.id', jn varchar(20) PATH '$.join')) a WHERE g.pdefname = $1 AND a.jn = 'and'"
#define JOGET_SQL(c, pg, my) ((c)->mysql ? (my) : (pg))

/* A whole (small) result: nrows x ncols cells, row-major, each a NUL-terminated malloc'd string or NULL for
 * SQL NULL. Owned by the read: borrowed by the callback, freed when it returns. */
typedef struct joget_res {
  size_t nrows, ncols;
  char **cells;
  size_t cap;
} joget_res;
int joget_res_n(const joget_res *r);
/* The cell's text, "" for NULL (as PQgetvalue). */
const char *joget_res_val(const joget_res *r, int row, int col);
int joget_res_null(const joget_res *r, int row, int col);
/* A boolean cell as either engine prints it: PostgreSQL "t"/"true", MySQL a non-zero number (or bit(1)
 * byte 0x01). 0 for NULL. */
int joget_res_true(const joget_res *r, int row, int col);
/* status 0: res set, err NULL; else res NULL and err set. */
typedef void (*joget_sql_cb)(void *arg, int status, const joget_res *res, const ferry_error *err);
/* Queues a read ($1..$n text parameters, NULL entries are SQL NULL), inside txn when not NULL; returns 0
 * (cb runs later, exactly once) or a negative code with err filled (cb never runs). */
int joget_sql_read(joget_ctx_t *c, ferry_sql_txn *txn, const char *sql, int n, const char *const *params,
                   joget_sql_cb cb, void *arg, ferry_error *err);
/* "$<from>, $<from+1>, ..." (n placeholders) for an IN list; malloc'd. */
char *joget_sql_in_list(int from, int n);

#endif
