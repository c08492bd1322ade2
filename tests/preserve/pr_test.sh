#!/usr/bin/env bash
# preserve-records against a real PostgreSQL (label `preserve`), through the ferry CLI and the test sink
# pr-tsink (a stand-in for the joget sink: before_start, intent, a "start-path tool" in SQL, after_start).
#   pr_test.sh <ferry> <plugin dir> <repo root>
# Cases: a changed column, a row the tool created, a row it deleted, two tables, a column the tool added, a
# table the tool created, a no-op (the row is not written: xmin unchanged), an item of kind record with the
# record id only in the fired data, a record id with a quote, space, ';' and parentheses; tables from
# app_form ("app") and by name ("tables"); SIGKILL between the points and after the restore, then resume
# (the first snapshot is kept although before_start fires again); clear errors (no record id, no key column,
# unknown app, after_start without before_start); a planted DSN password appears nowhere.
set -uo pipefail
FERRY=$1
export FERRY_PLUGIN_PATH=$2
ROOT=$3
PGC="$ROOT/tests/support/pgcluster.sh"
T=$(mktemp -d /tmp/ferry-preserve.XXXXXX)
PGD=$(mktemp -d /tmp/ferry-preserve-pg.XXXXXX)
cleanup() { "$PGC" stop "$PGD" >/dev/null 2>&1; rm -rf "$PGD"; [ -n "${KEEP:-}" ] && echo "kept $T" || rm -rf "$T"; }
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
# eq WHAT GOT WANT
eq() { if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', expected '$3'"; fi; }
has() { if grep -qF -- "$2" "$3"; then ok; else bad "$1: $3 lacks '$2'"; sed 's/^/    /' "$3" | tail -20; fi; }

"$PGC" start "$PGD" >/dev/null || { echo "cannot start PostgreSQL"; exit 1; }
"$PGC" createdb "$PGD" target
CI=$("$PGC" conninfo "$PGD" target)
SECRET=pr-planted-secret-4711
export PR_DSN="$CI password=$SECRET"
sql() { psql "$CI" -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
# a row as JSON, without the column one tool adds on the way (checked on its own)
row() { sql "SELECT (to_jsonb(t) - 'c_extra')::text FROM $1 t WHERE id = '$2'"; }

psql "$CI" -Xq -v ON_ERROR_STOP=1 <<'SQL' || { echo "setup failed"; exit 1; }
CREATE TABLE app_form (appid varchar(510) NOT NULL, appversion bigint NOT NULL, formid varchar(510) NOT NULL,
  name varchar(510), tablename varchar(510), PRIMARY KEY (appid, appversion, formid));
INSERT INTO app_form VALUES ('hrapp', 1, 'leave_form', 'Leave', 'leave'), ('hrapp', 2, 'leave_form', 'Leave', 'leave'),
  ('hrapp', 2, 'expense_form', 'Expense', 'expense'), ('hrapp', 2, 'onboard_form', 'Onboard', '');
CREATE TABLE app_fd_leave (id varchar(255) PRIMARY KEY, datecreated timestamptz, datemodified timestamptz,
  createdby varchar(255), c_status text, c_days text, c_amount numeric, c_flag boolean, c_blob bytea);
CREATE TABLE app_fd_expense (id varchar(255) PRIMARY KEY, datecreated timestamptz, c_state text, c_amount text);
CREATE TABLE app_fd_nokey (recid varchar(255) PRIMARY KEY, c_x text);
INSERT INTO app_fd_leave VALUES
  ('r-changed', '2024-01-02 03:04:05.123456+00', NULL, 'emp001', 'approved by clerk', '5',
   12.3456789012345678901234567, true, '\x00ff10'),
  ('r-deleted', '2024-02-01 00:00:00+00', '2024-02-02 00:00:00+00', 'emp002', 'waiting', '2', NULL, false, NULL),
  ('r-two', '2024-03-01 00:00:00+00', NULL, 'emp003', 'in review', '7', 1.5, NULL, NULL),
  ('r-noop', '2024-04-01 00:00:00+00', NULL, 'emp004', 'untouched', '1', NULL, NULL, NULL),
  ('r-newcol', '2024-04-02 00:00:00+00', NULL, 'emp005', 'plain', '3', NULL, NULL, NULL),
  ('r-rec', '2024-04-03 00:00:00+00', NULL, 'emp006', 'from a record item', '4', NULL, NULL, NULL),
  ($$r'q; x (y)$$, '2024-04-04 00:00:00+00', NULL, 'emp007', 'odd id', '4', NULL, NULL, NULL),
  ('r-kill', '2024-05-01 00:00:00+00', NULL, 'emp008', 'before kill', '9', NULL, NULL, NULL),
  ('r-kill2', '2024-05-02 00:00:00+00', NULL, 'emp009', 'before kill 2', '9', NULL, NULL, NULL);
INSERT INTO app_fd_expense VALUES ('r-two', '2024-03-01 00:00:00+00', 'open', '10.50');
SQL
# the source rows as they are before anything runs
for id in r-changed r-deleted r-two r-noop r-newcol r-rec "r'q; x (y)" r-kill r-kill2; do
  row app_fd_leave "${id//\'/\'\'}" > "$T/before.$(echo -n "$id" | md5sum | cut -c1-8)"
done
before() { cat "$T/before.$(echo -n "$1" | md5sum | cut -c1-8)"; }
exp_two=$(row app_fd_expense r-two)

# ---- items --------------------------------------------------------------------------------------------------
item() { # kind key body-json
  printf '{"kind":"%s","key":"%s","body":%s}\n' "$1" "$2" "$3"
}
{
  item instance i-changed '{"record_id":"r-changed","app":"hrapp","tool_sql":"UPDATE app_fd_leave SET c_status = '"'"'submitted'"'"', datemodified = '"'"'2030-01-01 00:00:00+00'"'"' WHERE id = '"'"'r-changed'"'"'"}'
  item instance i-kill '{"record_id":"r-kill","app":"hrapp","tool_sql":"UPDATE app_fd_leave SET c_status = '"'"'tool ran'"'"' WHERE id = '"'"'r-kill'"'"'"}'
  item instance i-kill2 '{"record_id":"r-kill2","app":"hrapp","tool_sql":"UPDATE app_fd_leave SET c_status = '"'"'tool ran 2'"'"' WHERE id = '"'"'r-kill2'"'"'"}'
  item instance i-created '{"record_id":"r-created","definition":"hrapp#3#expense_claim","tool_sql":"INSERT INTO app_fd_expense (id, c_state) VALUES ('"'"'r-created'"'"', '"'"'open'"'"')"}'
  item instance i-deleted '{"record_id":"r-deleted","app":"hrapp","tool_sql":"DELETE FROM app_fd_leave WHERE id = '"'"'r-deleted'"'"'"}'
  item instance i-two '{"record_id":"r-two","app":"hrapp","tool_sql":"UPDATE app_fd_leave SET c_status = '"'"'x'"'"', c_amount = 99 WHERE id = '"'"'r-two'"'"'; UPDATE app_fd_expense SET c_state = NULL WHERE id = '"'"'r-two'"'"'"}'
  item instance i-noop '{"record_id":"r-noop","app":"hrapp"}'
  item instance i-newcol '{"record_id":"r-newcol","app":"hrapp","tool_sql":"ALTER TABLE app_fd_leave ADD COLUMN IF NOT EXISTS c_extra text; UPDATE app_fd_leave SET c_extra = '"'"'added'"'"' WHERE id = '"'"'r-newcol'"'"'"}'
  item instance i-lazy '{"record_id":"r-lazy","app":"hrapp","tool_sql":"CREATE TABLE app_fd_onboard_form (id varchar(255) PRIMARY KEY, c_step text); INSERT INTO app_fd_onboard_form VALUES ('"'"'r-lazy'"'"', '"'"'prepared'"'"')"}'
  item record rec:app_fd_leave:r-rec '{"table":"app_fd_leave","definition":"hrapp#3#leave_request","fire_record_id":"r-rec","tool_sql":"UPDATE app_fd_leave SET c_days = '"'"'40'"'"' WHERE id = '"'"'r-rec'"'"'"}'
  item instance i-odd '{"record_id":"r'"'"'q; x (y)","app":"hrapp","tool_sql":"UPDATE app_fd_leave SET c_status = '"'"'changed'"'"' WHERE id = $$r'"'"'q; x (y)$$"}'
} > "$T/items.jsonl"

config() { # file hook-options-json sink-extra-json [concurrency]
  cat > "$1" <<JSON
{ "journal": "journal.db", "report": "report.json",
  "stages": [ { "name": "instances", "concurrency": ${4:-4},
    "source": { "plugin": "jsonl", "options": { "path": "items.jsonl" } },
    "sink": { "plugin": "pr-tsink", "options": { "dsn": "\${PR_DSN}", "reports": "reports.txt" $3 } },
    "hooks": [ { "plugin": "preserve-records", "points": ["before_start", "after_start"],
                 "options": $2 } ] } ] }
JSON
}
cd "$T"
# runs 1 and 2 take one item at a time, so that the kill finds no other item half done; run 3 takes the rest
# four at a time
config run1.json '{"dsn": "${PR_DSN}"}' ', "kill_key": "i-kill", "kill_where": "after_tool"' 1
"$FERRY" run --config run1.json --progress none >run1.log 2>&1
eq "run 1 killed with SIGKILL" "$?" 137
eq "run 1: the tool of i-kill ran" "$(sql "SELECT c_status FROM app_fd_leave WHERE id = 'r-kill'")" "tool ran"
# the snapshot is in the journal with the intent
snap=$(python3 - <<'PY'
import json, sqlite3
db = sqlite3.connect("journal.db")
st, step, state = db.execute("SELECT status, step, state FROM items WHERE stage='instances' AND key='i-kill'").fetchone()
h = json.loads(state)["hooks"]["0:preserve-records"]
print(st, step, h["record_id"], h["snapshot"]["app_fd_leave"]["c_status"], json.dumps(h["snapshot"]["app_fd_expense"]))
PY
)
eq "journal holds the snapshot of i-kill" "$snap" "intent start r-kill before kill null"

config run2.json '{"dsn": "${PR_DSN}"}' ', "kill_key": "i-kill2", "kill_where": "after_restore", "refire_before": true' 1
"$FERRY" run --config run2.json --progress none >run2.log 2>&1
eq "run 2 killed after the restore of i-kill2" "$?" 137
eq "i-kill restored after resume (before_start fired again: first snapshot kept)" "$(row app_fd_leave r-kill)" "$(before r-kill)"
eq "i-kill2 restored before the kill" "$(row app_fd_leave r-kill2)" "$(before r-kill2)"
xmin_k2=$(sql "SELECT xmin FROM app_fd_leave WHERE id = 'r-kill2'")

config run3.json '{"dsn": "${PR_DSN}"}' ', "refire_before": true'
"$FERRY" run --config run3.json --progress none >run3.log 2>&1
eq "run 3 exit code" "$?" 0
eq "i-kill2: second restore is a no-op (row not rewritten)" "$(sql "SELECT xmin FROM app_fd_leave WHERE id = 'r-kill2'")" "$xmin_k2"
eq "i-kill2 still as before" "$(row app_fd_leave r-kill2)" "$(before r-kill2)"

# ---- the rows -------------------------------------------------------------------------------------------------
for id in r-changed r-deleted r-two r-noop r-rec "r'q; x (y)" r-kill r-kill2; do
  eq "row $id restored" "$(row app_fd_leave "${id//\'/\'\'}")" "$(before "$id")"
done
eq "r-newcol restored" "$(row app_fd_leave r-newcol)" "$(before r-newcol)"
eq "r-newcol: the column the tool added is back to null" "$(sql "SELECT c_extra IS NULL FROM app_fd_leave WHERE id = 'r-newcol'")" t
eq "r-two expense restored" "$(row app_fd_expense r-two)" "$exp_two"
eq "row created by the tool deleted" "$(sql "SELECT count(*) FROM app_fd_expense WHERE id = 'r-created'")" 0
eq "row in a table the tool created deleted" "$(sql "SELECT count(*) FROM app_fd_onboard_form")" 0
eq "no-op: r-noop never rewritten" "$(sql "SELECT xmin = (SELECT xmin FROM app_fd_leave WHERE id = 'r-noop') FROM app_fd_leave WHERE id = 'r-noop'")" t
eq "numeric beyond double precision kept" "$(sql "SELECT c_amount FROM app_fd_leave WHERE id = 'r-changed'")" \
   12.3456789012345678901234567

# ---- what the hook reported ---------------------------------------------------------------------------------
# the first report of an item: a later run may hand a done item back when its outcome was not committed before
# a kill, and its restore then finds nothing left to do
rep() { grep -F "$(printf '%s\t' "$1")" reports.txt | head -1 | cut -f2-; }
tc() { rep "$1" | python3 -c 'import json,sys
r = json.load(sys.stdin); print(" | ".join(sorted("%s.%s:%s->%s:%s" % (c["table"], c["column"], c["tool_value"], c["restored_value"], c["action"]) for c in r.get("tools_changed", []))))'; }
eq "report i-changed" "$(tc i-changed)" \
   "app_fd_leave.c_status:submitted->approved by clerk:updated | app_fd_leave.datemodified:2030-01-01 00:00:00+00->None:updated"
eq "report i-created" "$(tc i-created)" "app_fd_expense.c_state:open->None:deleted | app_fd_expense.id:r-created->None:deleted"
case "$(tc i-deleted)" in
  *"app_fd_leave.c_status:None->waiting:inserted"*) ok ;;
  *) bad "report i-deleted: $(tc i-deleted)" ;;
esac
eq "report i-two" "$(tc i-two)" \
   "app_fd_expense.c_state:None->open:updated | app_fd_leave.c_amount:99->1.5:updated | app_fd_leave.c_status:x->in review:updated"
eq "report i-noop" "$(tc i-noop)" ""
eq "report i-newcol" "$(tc i-newcol)" "app_fd_leave.c_extra:added->None:updated"
eq "report i-lazy" "$(tc i-lazy)" "app_fd_onboard_form.c_step:prepared->None:deleted | app_fd_onboard_form.id:r-lazy->None:deleted"
eq "report record item" "$(tc rec:app_fd_leave:r-rec)" "app_fd_leave.c_days:40->4:updated"
eq "report odd id" "$(tc i-odd)" "app_fd_leave.c_status:changed->odd id:updated"
eq "report i-kill (after resume)" "$(tc i-kill)" "app_fd_leave.c_status:tool ran->before kill:updated"
eq "report i-kill2 (restored before the kill: nothing left to restore)" "$(tc i-kill2)" ""
has "log line names the record" 'record "r-changed": start-path tools changed' run1.log
has "log line names the column" 'app_fd_leave.c_status' <(grep 'record "r-changed"' run1.log)
# hook state in the journal keeps tools_changed
eq "journal: tools_changed of i-two" "$(python3 - <<'PY'
import json, sqlite3
db = sqlite3.connect("journal.db")
(state,) = db.execute("SELECT state FROM items WHERE stage='instances' AND key='i-two' AND status='done'").fetchone()
h = json.loads(state)["hooks"]["0:preserve-records"]
print(h["restored"], len(h["tools_changed"]), sorted(h["snapshot"]))
PY
)" "True 3 ['app_fd_expense', 'app_fd_leave', 'app_fd_onboard_form']"

# ---- a second run changes nothing ---------------------------------------------------------------------------
sum1=$(sql "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM app_fd_leave t")
"$FERRY" run --config run3.json --progress none >run4.log 2>&1
eq "second run exit code" "$?" 0
has "second run: everything already done" "already done 11" run4.log
eq "second run changes no row" "$(sql "SELECT md5(string_agg(t::text, '|' ORDER BY id)) FROM app_fd_leave t")" "$sum1"

# ---- tables by name ------------------------------------------------------------------------------------------
sql "INSERT INTO app_fd_leave (id, c_status) VALUES ('r-named', 'named')"
item instance n-1 '{"record_id":"r-named","tool_sql":"UPDATE app_fd_leave SET c_status = '"'"'tool'"'"' WHERE id = '"'"'r-named'"'"'"}' > items.jsonl
config named.json '{"dsn": "${PR_DSN}", "tables": ["app_fd_leave"]}' ''
sed -i 's/journal.db/journal-named.db/' named.json
"$FERRY" run --config named.json --progress none >named.log 2>&1
eq "tables by name: exit code" "$?" 0
eq "tables by name: restored" "$(sql "SELECT c_status FROM app_fd_leave WHERE id = 'r-named'")" named
eq "tables by name: report" "$(tc n-1)" "app_fd_leave.c_status:tool->named:updated"

# ---- errors ---------------------------------------------------------------------------------------------------
err_case() { # name hook-options items-line expected-text
  echo "$3" > items.jsonl
  config "err-$1.json" "$2" ''
  sed -i "s/journal.db/journal-err-$1.db/" "err-$1.json"
  "$FERRY" run --config "err-$1.json" --progress none >"err-$1.log" 2>&1
  eq "error $1: exit code" "$?" 1
  has "error $1: message" "$4" "err-$1.log"
}
err_case norid '{"dsn": "${PR_DSN}", "app": "hrapp"}' "$(item instance e-1 '{"app":"hrapp"}')" \
  'item "e-1" has no record id'
# "app" is the deprecated name of "apps": still taken, with a warning naming the hook and the new name
has "deprecated app: warning" 'hooks[0] "preserve-records" options: option "app" is deprecated: write "apps"' err-norid.log
err_case nokey '{"dsn": "${PR_DSN}", "tables": ["app_fd_nokey"]}' "$(item instance e-2 '{"record_id":"x"}')" \
  'has no column "id" to find record "x"'
err_case noapp '{"dsn": "${PR_DSN}", "apps": ["nosuchapp"]}' "$(item instance e-3 '{"record_id":"x"}')" \
  'app "nosuchapp" has no forms in app_form'
err_case notables '{"dsn": "${PR_DSN}"}' "$(item instance e-4 '{"record_id":"x"}')" 'no table to preserve for record "x"'
# after_start alone: no snapshot
echo "$(item instance e-5 '{"record_id":"r-noop"}')" > items.jsonl
cat > err-after.json <<'JSON'
{ "journal": "journal-err-after.db", "stages": [ { "name": "instances",
    "source": { "plugin": "jsonl", "options": { "path": "items.jsonl" } },
    "sink": { "plugin": "pr-tsink", "options": { "dsn": "${PR_DSN}" } },
    "hooks": [ { "plugin": "preserve-records", "points": "after_start", "options": {"dsn": "${PR_DSN}", "app": "hrapp"} } ] } ] }
JSON
"$FERRY" run --config err-after.json --progress none >err-after.log 2>&1
eq "after_start alone: exit code" "$?" 1
has "after_start alone: message" 'no snapshot of record "r-noop"' err-after.log
# a bad DSN is refused at load, without echoing it
cat > err-dsn.json <<'JSON'
{ "journal": "journal-err-dsn.db", "stages": [ { "name": "instances",
    "source": { "plugin": "jsonl", "options": { "path": "items.jsonl" } },
    "sink": { "plugin": "pr-tsink", "options": { "dsn": "${PR_DSN}" } },
    "hooks": [ { "plugin": "preserve-records", "points": ["before_start"], "options": {"dsn": "host=x password=pr-planted-secret-4711 =broken"} } ] } ] }
JSON
"$FERRY" run --config err-dsn.json --progress none >err-dsn.log 2>&1
rc=$?
if [ "$rc" = 2 ] || [ "$rc" = 6 ]; then ok; else bad "bad dsn: exit $rc"; cat err-dsn.log; fi
has "bad dsn: message" 'option "dsn" is not a valid libpq conninfo' err-dsn.log
# unknown point
cat > err-point.json <<'JSON'
{ "journal": "journal-err-point.db", "stages": [ { "name": "instances",
    "source": { "plugin": "jsonl", "options": { "path": "items.jsonl" } },
    "sink": { "plugin": "pr-tsink", "options": { "dsn": "${PR_DSN}" } },
    "hooks": [ { "plugin": "preserve-records", "points": ["item_done"], "options": {"dsn": "${PR_DSN}"} } ] } ] }
JSON
"$FERRY" run --config err-point.json --progress none >err-point.log 2>&1
eq "unknown point refused at load" "$?" 2
has "unknown point named" 'item_done' err-point.log

# ---- the planted secret -----------------------------------------------------------------------------------------
if grep -rl -- "$SECRET" "$T" --exclude='err-dsn.json' >/dev/null 2>&1; then
  bad "the DSN password appears in: $(grep -rl -- "$SECRET" "$T" --exclude='err-dsn.json' | tr '\n' ' ')"
else ok; fi

echo "preserve-records: $passes passed, $fails failed"
[ "$fails" = 0 ]
