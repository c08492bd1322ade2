/* ferry SDK service: PostgreSQL on the core's libuv loop (libpq in non-blocking mode on a uv poll handle).
 *
 * A ferry_pg is one connection. Operations queue and run one at a time, in order; nothing blocks the loop.
 * Connection failures and lost connections complete operations with FERRY_ETRANSIENT; SQL errors with
 * FERRY_EINVAL (or FERRY_ECONFLICT for unique violations), the SQLSTATE and server message in err->detail.
 * The conninfo is registered as a secret (its password never reaches a log).
 *
 * Reconnection: a connection lost during an operation fails that operation (FERRY_ETRANSIENT) and the next
 * one opens a new connection. A connection found dead while idle (the server restarted, the backend was
 * terminated) is replaced unasked before the next operation, which then runs normally: session state (SET,
 * temporary tables, prepared statements, session advisory locks) does not survive that, so keep none you
 * rely on, or check it. Inside an open transaction (BEGIN without COMMIT/ROLLBACK yet) a dead connection is
 * never replaced: the operations queued for it fail with FERRY_ETRANSIENT.
 *
 * Ownership: SQL text and parameters are copied when an operation is queued. A PGresult passed to a
 * callback is borrowed: valid during the callback only (the service clears it afterwards).
 */
#ifndef FERRY_PG_H
#define FERRY_PG_H

#include <stddef.h>
#include <libpq-fe.h>
#include "ferry/plugin.h"
#include "ferry/util.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct ferry_pg ferry_pg;

/* Result of a query: `res` has the rows (PGRES_TUPLES_OK or PGRES_COMMAND_OK); NULL when status != 0. */
typedef void (*ferry_pg_cb)(void *arg, int status, PGresult *res, const ferry_error *err);
/* One chunk of COPY TO STDOUT data (borrowed; valid during the call). Return 0 to go on, non-zero to cancel
 * the copy (the operation then completes with FERRY_ECANCELED). */
typedef int (*ferry_pg_chunk_cb)(void *arg, const char *data, size_t len);

/* Starts connecting (asynchronously; operations queued meanwhile wait). Owned by the caller: free with
 * ferry_pg_free(). Returns NULL with err filled when the conninfo cannot be parsed. */
FERRY_API ferry_pg *ferry_pg_new(ferry_instance *ins, const char *conninfo, ferry_error *err);
/* Cancels queued operations (their callbacks run with FERRY_ECANCELED), closes the connection, frees. */
FERRY_API void ferry_pg_free(ferry_pg *pg);
/* Queues a query with text parameters ($1..$n; NULL entries are SQL NULL). Returns 0, or a negative code
 * (then the callback is never called). */
FERRY_API int ferry_pg_query(ferry_pg *pg, const char *sql, int nparams, const char *const *params,
                             ferry_pg_cb cb, void *arg);
/* Queues `COPY ... TO STDOUT`: chunk() gets the data as it arrives, done() the final status. */
FERRY_API int ferry_pg_copy_out(ferry_pg *pg, const char *sql, ferry_pg_chunk_cb chunk, ferry_pg_cb done,
                                void *arg);
/* Queues `COPY ... FROM STDIN` with all of `data` (copied), then done(). */
FERRY_API int ferry_pg_copy_in(ferry_pg *pg, const char *sql, const void *data, size_t len, ferry_pg_cb done,
                               void *arg);
/* Operations queued or running. */
FERRY_API size_t ferry_pg_pending(const ferry_pg *pg);
/* ---- SQL text ------------------------------------------------------------------------------------------
 * Quoting and array literals need no connection (done by libpq's PQescapeIdentifier / PQescapeLiteral on a
 * connection that never connects, so standard_conforming_strings counts as off and the result is valid
 * whatever the server's setting). They assume a client encoding in which no byte of a multibyte character is
 * a quote or a backslash (UTF8, what ferry's connections use). Prefer parameters ($1) for values. */
/* Quotes an identifier ("we""ird") / a literal ('it''s'; E'a\\b' when it holds a backslash; NULL -> the
 * text NULL) for SQL text. malloc'd, owned by the caller (ferry_free). ferry_pg_quote_ident(NULL) is NULL. */
FERRY_API char *ferry_pg_quote_ident(const char *ident);
FERRY_API char *ferry_pg_quote_literal(const char *value);
/* Append ferry_pg_quote_ident(ident) (NULL: "") / ferry_pg_quote_literal(value) to a buffer. Since 1.3. */
FERRY_API void ferry_pg_add_ident(ferry_buf *b, const char *ident);
FERRY_API void ferry_pg_add_literal(ferry_buf *b, const char *value);
/* PostgreSQL array literals of text ('{"a","b\"c",NULL}', for a $n::text[] parameter). Since 1.3.
 * ferry_pg_array_elem() appends one element, quoted (NULL: an SQL NULL element), with a comma before it
 * unless the buffer ends with '{':
 *   ferry_buf_add(&b, "{"); for (...) ferry_pg_array_elem(&b, v[i]); ferry_buf_add(&b, "}");
 * ferry_pg_text_array() builds the literal of n values (NULL entries are NULL elements): malloc'd, owned by
 * the caller (ferry_free). */
FERRY_API void ferry_pg_array_elem(ferry_buf *b, const char *v);
FERRY_API char *ferry_pg_text_array(const char *const *v, size_t n);

#ifdef __cplusplus
}
#endif
#endif
