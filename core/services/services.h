/* ferry core, layer "services": what the services offer the layers above them (journal, run) beyond the
 * SDK's ferry/sql.h, ferry/pg.h and ferry/http.h. Internal: not in the SDK, no ABI promise.
 */
#ifndef FERRY_CORE_SERVICES_H
#define FERRY_CORE_SERVICES_H

#include "ferry/sql.h"

/* From now on, a PostgreSQL connection of `db` found dead while idle (the server restarted, the backend was
 * terminated) is not replaced unasked before the next operation: that operation fails with FERRY_ETRANSIENT
 * ("connection to PostgreSQL ... lost while idle") and the one after it opens a new connection, as after a
 * connection lost during a statement. For callers that keep state in the session (the journal's advisory
 * locks): without it, such state vanishes without a word. Call it before the first operation; no effect on
 * the other engines (MySQL connections are never replaced unasked; SQLite has no server). */
void ferry__sql_keep_session(ferry_sql *db);

#endif
