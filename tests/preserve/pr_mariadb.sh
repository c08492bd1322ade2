#!/usr/bin/env bash
# preserve-records against a real MariaDB (label `preserve`), through the ferry CLI and the test sink pr-tsink (its
# "start-path tool" statements run on the same MariaDB). Joget's MySQL layout of a form table: mixed-case column
# names, datetime(6), longtext, plus a decimal beyond double precision and a blob.
#   pr_mariadb.sh <ferry> <plugin dir> <repo root>
# Cases: a changed column (and dateModified), a row the tool created (deleted again), a row it deleted (inserted
# again, blob and decimal exact), two tables in one item, a no-op (no UPDATE reaches the table: a trigger counts
# them), a record id with a quote, space, ';' and parentheses; tables from app_form; what the hook reports; a wrong
# password: a clear error naming the record and the database, nothing written; the password appears nowhere.
set -uo pipefail
FERRY=$1
export FERRY_PLUGIN_PATH=$2
ROOT=$3
MY="$ROOT/tests/support/mariadb.sh"
command -v mariadb >/dev/null 2>&1 || { echo "SKIP: no mariadb client"; exit 77; }
T=$(mktemp -d /tmp/ferry-preserve-my.XXXXXX)
MD=$(mktemp -d /tmp/ferry-preserve-mydb.XXXXXX)
cleanup() { "$MY" stop "$MD" >/dev/null 2>&1; rm -rf "$MD"; [ -n "${KEEP:-}" ] && echo "kept $T" || rm -rf "$T"; }
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
eq() { if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', expected '$3'"; fi; }
has() { if grep -qF -- "$2" "$3"; then ok; else bad "$1: $3 lacks '$2'"; sed 's/^/    /' "$3" | tail -20; fi; }

SECRET=pr-planted-secret-4711
export MARIADB_TEST_PASSWORD=$SECRET
PORT=$("$MY" start "$MD") || { echo "cannot start MariaDB"; exit 1; }
"$MY" createdb "$MD" target
export PR_DSN="mariadb://ferry:$SECRET@127.0.0.1:$PORT/target"
sql() { mariadb -h 127.0.0.1 -P "$PORT" -u ferry "-p$SECRET" --batch --skip-column-names --raw target -e "$1"; }
# a row as JSON text (every column, exact)
row() {
  sql "SELECT JSON_OBJECT('id', id, 'dateCreated', CAST(dateCreated AS CHAR), 'dateModified', CAST(dateModified AS CHAR),
       'createdBy', createdBy, 'c_status', c_status, 'c_amount', CAST(c_amount AS CHAR), 'c_blob', HEX(c_blob))
       FROM app_fd_leave WHERE id = '$1'"
}

mariadb -h 127.0.0.1 -P "$PORT" -u ferry "-p$SECRET" target <<'SQL' || { echo "setup failed"; exit 1; }
CREATE TABLE app_form (appId varchar(255) NOT NULL, appVersion bigint(20) NOT NULL, formId varchar(255) NOT NULL,
  name varchar(255), tableName varchar(255), PRIMARY KEY (appId, appVersion, formId)) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
INSERT INTO app_form VALUES ('hrapp', 1, 'leave_form', 'Leave', 'leave'), ('hrapp', 1, 'expense_form', 'Expense', 'expense');
CREATE TABLE app_fd_leave (id varchar(255) NOT NULL PRIMARY KEY, dateCreated datetime(6), dateModified datetime(6),
  createdBy varchar(255), c_status longtext, c_amount decimal(40,25), c_blob blob) DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE app_fd_expense (id varchar(255) NOT NULL PRIMARY KEY, dateCreated datetime(6), c_state longtext)
  DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
CREATE TABLE upd_log (id varchar(255));
CREATE TRIGGER leave_upd AFTER UPDATE ON app_fd_leave FOR EACH ROW INSERT INTO upd_log VALUES (NEW.id);
INSERT INTO app_fd_leave VALUES
  ('r-changed', '2024-01-02 03:04:05.123456', NULL, 'emp001', 'approved by clerk', 12.3456789012345678901234567, X'00ff10'),
  ('r-deleted', '2024-02-01 00:00:00', '2024-02-02 00:00:00', 'emp002', 'waiting', 1.5, X'0a0b'),
  ('r-two', '2024-03-01 00:00:00', NULL, 'emp003', 'in review', NULL, NULL),
  ('r-noop', '2024-04-01 00:00:00', NULL, 'emp004', 'untouched', NULL, NULL),
  ('r''q; x (y)', '2024-04-04 00:00:00', NULL, 'emp007', 'odd id', NULL, NULL);
INSERT INTO app_fd_expense VALUES ('r-two', '2024-03-01 00:00:00', 'open');
SQL
for id in r-changed r-deleted r-two r-noop; do row "$id" >"$T/before.$id"; done
row "r''q; x (y)" >"$T/before.odd"
exp_two=$(sql "SELECT c_state FROM app_fd_expense WHERE id = 'r-two'")

item() { printf '{"kind":"instance","key":"%s","body":%s}\n' "$1" "$2"; }
{
  item i-changed '{"record_id":"r-changed","app":"hrapp","tool_sql":["UPDATE app_fd_leave SET c_status = '"'"'submitted'"'"', dateModified = NOW(6) WHERE id = '"'"'r-changed'"'"'"]}'
  item i-created '{"record_id":"r-created","app":"hrapp","tool_sql":"INSERT INTO app_fd_expense (id, c_state) VALUES ('"'"'r-created'"'"', '"'"'open'"'"')"}'
  item i-deleted '{"record_id":"r-deleted","app":"hrapp","tool_sql":["DELETE FROM app_fd_leave WHERE id = '"'"'r-deleted'"'"'"]}'
  item i-two '{"record_id":"r-two","app":"hrapp","tool_sql":["UPDATE app_fd_leave SET c_status = '"'"'x'"'"', c_amount = 99 WHERE id = '"'"'r-two'"'"'","UPDATE app_fd_expense SET c_state = NULL WHERE id = '"'"'r-two'"'"'"]}'
  item i-noop '{"record_id":"r-noop","app":"hrapp"}'
  item i-odd '{"record_id":"r'"'"'q; x (y)","app":"hrapp","tool_sql":["UPDATE app_fd_leave SET c_status = '"'"'changed'"'"' WHERE id = '"'"'r'"''"'q; x (y)'"'"'"]}'
} >"$T/items.jsonl"

config() { # file
  cat >"$1" <<JSON
{ "journal": "journal.db", "report": "report.json",
  "stages": [ { "name": "instances", "concurrency": 4,
    "source": { "plugin": "jsonl", "options": { "path": "items.jsonl" } },
    "sink": { "plugin": "pr-tsink", "options": { "dsn": "\${PR_DSN}", "reports": "reports.txt" } },
    "hooks": [ { "plugin": "preserve-records", "points": ["before_start", "after_start"],
                 "options": { "dsn": "\${PR_HOOK_DSN}" } } ] } ] }
JSON
}
cd "$T"
config run.json

# ---- a wrong password in the hook's dsn: every item fails before its tool, nothing written ----------------------
export PR_HOOK_DSN="mariadb://ferry:wrong-$SECRET-x@127.0.0.1:$PORT/target"
"$FERRY" run --config run.json --progress none >bad.log 2>&1
eq "wrong password: the run fails (exit 1: items failed)" "$?" 1
has "wrong password: the record and the database are named" \
  "of record \"r-changed\" on the target database: mysql://ferry@127.0.0.1:$PORT/target" bad.log
has "wrong password: the cause is named" "access refused; check user and password" bad.log
eq "wrong password: no tool ran (r-changed unchanged)" "$(row r-changed)" "$(cat before.r-changed)"
eq "wrong password: no row created" "$(sql "SELECT count(*) FROM app_fd_expense WHERE id = 'r-created'")" 0
rm -f journal.db journal.db-wal journal.db-shm reports.txt

# ---- the run --------------------------------------------------------------------------------------------------
export PR_HOOK_DSN=$PR_DSN
sql "DELETE FROM upd_log"
"$FERRY" run --config run.json --progress none >run.log 2>&1
eq "run exit code" "$?" 0
for id in r-changed r-deleted r-two r-noop; do eq "row $id restored" "$(row "$id")" "$(cat "before.$id")"; done
eq "row with an odd id restored" "$(row "r''q; x (y)")" "$(cat before.odd)"
eq "r-two's expense restored" "$(sql "SELECT c_state FROM app_fd_expense WHERE id = 'r-two'")" "$exp_two"
eq "row created by the tool deleted" "$(sql "SELECT count(*) FROM app_fd_expense WHERE id = 'r-created'")" 0
eq "decimal beyond double precision kept" "$(sql "SELECT c_amount FROM app_fd_leave WHERE id = 'r-changed'")" \
  12.3456789012345678901234567
eq "blob of the re-inserted row exact" "$(sql "SELECT HEX(c_blob) FROM app_fd_leave WHERE id = 'r-deleted'")" 0A0B
eq "no-op: r-noop never updated" "$(sql "SELECT count(*) FROM upd_log WHERE id = 'r-noop'")" 0

rep() { grep -F "$(printf '%s\t' "$1")" reports.txt | head -1 | cut -f2-; }
chk() { # key python-expression-on-changes
  python3 -c 'import json, sys; c = json.loads(sys.argv[1]).get("tools_changed", []); print(eval(sys.argv[2]))' \
    "$(rep "$1")" "$2"
}
eq "i-changed: c_status named as updated" "$(chk i-changed \
  'sorted((x["table"], x["column"], x["tool_value"], x["restored_value"], x["action"]) for x in c if x["column"] == "c_status")')" \
  "[('app_fd_leave', 'c_status', 'submitted', 'approved by clerk', 'updated')]"
eq "i-changed: dateModified named too" "$(chk i-changed 'sorted(x["column"] for x in c)')" "['c_status', 'dateModified']"
eq "i-created: the created row named as deleted" "$(chk i-created 'sorted({(x["table"], x["action"]) for x in c})')" \
  "[('app_fd_expense', 'deleted')]"
eq "i-deleted: the deleted row named as inserted" "$(chk i-deleted 'sorted({(x["table"], x["action"]) for x in c})')" \
  "[('app_fd_leave', 'inserted')]"
eq "i-two: both tables named" "$(chk i-two 'sorted((x["table"], x["column"]) for x in c)')" \
  "[('app_fd_expense', 'c_state'), ('app_fd_leave', 'c_amount'), ('app_fd_leave', 'c_status')]"
eq "i-noop: nothing changed" "$(chk i-noop 'len(c)')" 0
has "the log names the tools' changes" 'record "r-changed": start-path tools changed app_fd_leave.dateModified, app_fd_leave.c_status' run.log

# ---- a second run changes nothing -----------------------------------------------------------------------------
sql "DELETE FROM upd_log"
"$FERRY" run --config run.json --progress none >run2.log 2>&1
eq "second run exit code" "$?" 0
eq "second run: no row updated" "$(sql "SELECT count(*) FROM upd_log")" 0

# ---- the password appears nowhere -----------------------------------------------------------------------------
if grep -rlF "$SECRET" "$T" --exclude=run.json --exclude=items.jsonl >found.txt 2>/dev/null; then
  bad "the dsn password appears in: $(tr '\n' ' ' <found.txt)"
else ok; fi

echo "preserve mariadb: $passes passed, $fails failed"
[ "$fails" = 0 ]
