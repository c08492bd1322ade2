#!/usr/bin/env bash
# Tests of the sql plugin through the ferry CLI against a real MariaDB (mariadbfixture.sh) and, for the
# cross-engine case, the PostgreSQL cluster (pgfixture.sh).
#   sql_test.sh <ferry> <plugin dir> <mariadb state> <pg state or -> <case>
# Every case makes its own databases (named after the case), runs ferry with JSON configs and checks the
# databases with the mariadb / psql clients. Every run also checks that the source did not change.
set -uo pipefail
FERRY=$1
export FERRY_PLUGIN_PATH=$2
MSTATE=$3 PSTATE=$4 CASE=$5
SUPPORT=$(cd "$(dirname "$0")/../support" && pwd)
MDIR=$(sed -n 1p "$MSTATE"); MPORT=$(sed -n 3p "$MSTATE")
[ -n "$MPORT" ] || { echo "no MariaDB server (state file $MSTATE)"; exit 1; }
MYCL=$(command -v mariadb || command -v mysql)
T=$(mktemp -d /tmp/ferry-sql-test.XXXXXX)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
cd "$T"
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL [$CASE]: $*"; fails=$((fails + 1)); }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

my() { "$MYCL" --no-defaults --default-character-set=utf8mb4 -h 127.0.0.1 -P "$MPORT" -u ferry -pferry -N -B -D "$1" -e "$2"; }
mynewdb() { my mysql "DROP DATABASE IF EXISTS \`$1\`; CREATE DATABASE \`$1\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"; }
murl() { echo "mysql://ferry:${PW:-ferry}@127.0.0.1:${PORT_OVERRIDE:-$MPORT}/$1"; }
# checksum of every table of a database: CHECKSUM TABLE over them, in name order
mysum() {
  local tabs
  tabs=$(my "$1" "SELECT GROUP_CONCAT(table_name ORDER BY table_name) FROM information_schema.tables WHERE table_schema = DATABASE()")
  my "$1" "CHECKSUM TABLE $tabs" | tr '\n' ' '
}
dump() { my "$1" "SELECT * FROM \`$2\` ORDER BY 1"; }

config() { # FILE SRC_URL SINK_URL 'source options' 'sink options'
  local f=$1 src=$2 dst=$3 so=$4 ko=$5
  cat > "$f" <<JSON
{"journal": "$T/${f%.json}.db", "report": "$T/${f%.json}.report.json",
 "stages": [{"name": "forms", "concurrency": ${CONC:-3},
   "source": {"plugin": "sql", "options": {"dsn": "$src" ${so:+, $so}}},
   "sink": {"plugin": "sql", "options": {"dsn": "$dst" ${ko:+, $ko}}}}]}
JSON
}
ferry() {
  local cmd=$1 cfg=$2; shift 2
  "$FERRY" "$cmd" --config "$cfg" --progress none "$@" >"$T/out" 2>&1
  rc=$?
  if grep -q "Sanitizer\|runtime error:" "$T/out"; then bad "ferry $cmd $cfg: sanitizer report"; cat "$T/out"; fi
}
expect_rc() { if [ "$rc" = "$1" ]; then ok; else bad "$2: exit $rc, expected $1"; sed 's/^/    /' "$T/out" | tail -25; fi; }
has() { if grep -qF -- "$1" "$T/out"; then ok; else bad "$2: output lacks '$1'"; sed 's/^/    /' "$T/out" | tail -25; fi; }
report() { python3 -c "import json,sys; r=json.load(open('$T/${1%.json}.report.json')); print(eval(sys.argv[1]))" "$2"; }

S=sql_${CASE}_src D=sql_${CASE}_dst
# A Joget-shaped source: app_form with two forms of app "hr" (one with a tableName, one without), their form
# tables as Hibernate makes them on MySQL, a composite-key table, a table of another app.
joget_source() {
  mynewdb $S
  my $S "CREATE TABLE app_form (appId varchar(255) NOT NULL, appVersion bigint(20) NOT NULL, formId varchar(255) NOT NULL,
            name varchar(255), tableName varchar(255), json longtext, PRIMARY KEY (appId, appVersion, formId));
         INSERT INTO app_form VALUES ('hr', 1, 'leave', 'Leave', 'leave', '{}'), ('hr', 1, 'employee', 'Employee', '', '{}'),
                                     ('crm', 1, 'lead', 'Lead', 'lead', '{}');
         CREATE TABLE app_fd_leave (id varchar(255) NOT NULL PRIMARY KEY, dateCreated datetime(6), dateModified datetime(6),
            createdBy varchar(255), createdByName varchar(255), modifiedBy varchar(255), modifiedByName varchar(255),
            c_days longtext, c_reason longtext, c_amount decimal(10,2), c_ok tinyint(1), c_doc longblob, c_day date);
         CREATE TABLE app_fd_employee (id varchar(255) NOT NULL PRIMARY KEY, dateCreated datetime(6), c_accountName longtext);
         CREATE TABLE app_fd_lead (id varchar(255) NOT NULL PRIMARY KEY, c_x longtext);
         CREATE TABLE pair (a int NOT NULL, b varchar(20) NOT NULL, v text, PRIMARY KEY (a, b));"
  python3 - > "$T/rows.sql" <<'PY'
rows = []
for i in range(1, 2501):
    reason = "line one\nline\ttwo \\ back 'quote' é ü 😀" if i % 7 == 0 else ("NULL" if i % 11 == 0 else f"reason {i}")
    r = "NULL" if reason == "NULL" else "'" + reason.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n").replace("\t", "\\t") + "'"
    rows.append(f"('L{i:05d}', '2024-01-{1 + i % 28:02d} 10:{i % 60:02d}:00.{i:06d}', NULL, 'admin', 'Admin', NULL, NULL, '{i % 9}', {r}, {i}.{i % 100:02d}, {i % 2}, X'{(i % 256):02x}00ff', '2024-02-{1 + i % 28:02d}')")
print("INSERT INTO app_fd_leave VALUES " + ",".join(rows) + ";")
print("INSERT INTO app_fd_employee VALUES " + ",".join(f"('E{i}', NOW(), 'acc{i}')" for i in range(1, 301)) + ";")
print("INSERT INTO app_fd_lead VALUES ('x1', 'not hr');")
print("INSERT INTO pair VALUES " + ",".join(f"({i % 10}, 'b{i}', 'v{i}')" for i in range(1, 501)) + ";")
PY
  "$MYCL" --no-defaults --default-character-set=utf8mb4 -h 127.0.0.1 -P "$MPORT" -u ferry -pferry -D $S < "$T/rows.sql" 2>"$T/load.err" ||
    { echo "loading the source failed: $(tail -c 300 "$T/load.err")"; exit 1; }
  [ "$(my $S "SELECT COUNT(*) FROM app_fd_leave")" = 2500 ] || { echo "source not loaded"; exit 1; }
}

case "$CASE" in
copy_rerun)
  joget_source; mynewdb $D
  before=$(mysum $S)
  config c.json "$(murl $S)" "$(murl $D)" '"app": "hr", "tables": ["pair"], "batch_rows": 400' ''
  ferry run c.json; expect_rc 0 "first run"
  check '[ "$(my $D "SELECT COUNT(*) FROM app_fd_leave")" = 2500 ]' "app_fd_leave: not all rows copied"
  check '[ "$(my $D "SELECT COUNT(*) FROM pair")" = 500 ]' "pair: not all rows copied"
  for t in app_fd_leave app_fd_employee pair; do
    check '[ "$(dump $S $t | md5sum)" = "$(dump $D $t | md5sum)" ]' "table $t: rows differ after the run"
  done
  check '[ "$(my $D "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name = '\''app_fd_lead'\''")" = 0 ]' "another app's table was copied"
  check '[ "$(my $D "SELECT column_type FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '\''app_fd_leave'\'' AND column_name = '\''c_amount'\''")" = "decimal(10,2)" ]' "c_amount not created as decimal(10,2)"
  check '[ "$(report c.json "r[\"totals\"][\"skipped\"]")" = 0 ]' "first run: a batch was skipped"
  check '[ "$(mysum $S)" = "$before" ]' "the source changed"
  # second run without the journal: every row identical, nothing written
  rm -f c.db
  # every write on the target from now on leaves a row in audit
  my $D "CREATE TABLE audit (what varchar(20));
         CREATE TRIGGER a_ins AFTER INSERT ON app_fd_leave FOR EACH ROW INSERT INTO audit VALUES ('insert');
         CREATE TRIGGER a_upd AFTER UPDATE ON app_fd_leave FOR EACH ROW INSERT INTO audit VALUES ('update');
         CREATE TRIGGER p_upd AFTER UPDATE ON pair FOR EACH ROW INSERT INTO audit VALUES ('update')"
  ferry run c.json; expect_rc 0 "re-run without journal"
  check '[ "$(report c.json "r[\"totals\"][\"skipped\"] == r[\"stages\"][0][\"taken\"] > 0")" = True ]' "re-run: not every batch skipped"
  check '[ "$(my $D "SELECT COUNT(*) FROM audit")" = 0 ]' "re-run wrote rows on the target"
  check '[ "$(mysum $S)" = "$before" ]' "the source changed (re-run)"
  ;;
conflicts)
  joget_source; mynewdb $D
  config c.json "$(murl $S)" "$(murl $D)" '"tables": ["pair"]' '"on_conflict": "fail"'
  ferry run c.json; expect_rc 0 "first run"
  my $D "UPDATE pair SET v = 'changed' WHERE a = 3 AND b = 'b13'"
  rm -f c.db
  ferry run c.json; check '[ "$rc" != 0 ]' "on_conflict fail: a differing row must fail the run"
  has "3,b13" "the conflict error names the key"
  has "on_conflict is \"fail\"" "the conflict error names the policy"
  check '[ "$(my $D "SELECT v FROM pair WHERE a = 3 AND b = '\''b13'\''")" = changed ]' "fail overwrote the row"
  config o.json "$(murl $S)" "$(murl $D)" '"tables": ["pair"]' '"on_conflict": "overwrite"'
  ferry run o.json; expect_rc 0 "overwrite run"
  check '[ "$(my $D "SELECT v FROM pair WHERE a = 3 AND b = '\''b13'\''")" = v13 ]' "overwrite did not restore the row"
  check '[ "$(dump $S pair | md5sum)" = "$(dump $D pair | md5sum)" ]' "rows differ after overwrite"
  my $D "UPDATE pair SET v = 'changed' WHERE a = 3 AND b = 'b13'"
  config k.json "$(murl $S)" "$(murl $D)" '"tables": ["pair"]' '"on_conflict": "skip"'
  ferry run k.json; expect_rc 0 "skip run"
  check '[ "$(my $D "SELECT v FROM pair WHERE a = 3 AND b = '\''b13'\''")" = changed ]' "skip changed the target row"
  ;;
incompatible)
  joget_source; mynewdb $D
  my $D "CREATE TABLE pair (a int NOT NULL, b int NOT NULL, v text, PRIMARY KEY (a, b))"
  config c.json "$(murl $S)" "$(murl $D)" '"tables": ["pair"]' ''
  ferry run c.json; check '[ "$rc" != 0 ]' "an incompatible type must fail"
  has 'column "b" is int(11) on the target but varchar(20) on the source: incompatible' "the refusal names column and types"
  check '[ "$(my $D "SELECT COUNT(*) FROM pair")" = 0 ]' "rows were written into a refused table"
  mynewdb $D
  my $D "CREATE TABLE pair (a int NOT NULL, b varchar(20) NOT NULL, PRIMARY KEY (a, b))"
  config r.json "$(murl $S)" "$(murl $D)" '"tables": ["pair"]' '"missing_columns": "refuse", "create_tables": "refuse"'
  ferry run r.json; check '[ "$rc" != 0 ]' "missing column with refuse must fail"
  has 'has no column "v"' "the refusal names the missing column"
  check '[ "$(my $D "SELECT COUNT(*) FROM pair")" = 0 ]' "rows were written"
  config a.json "$(murl $S)" "$(murl $D)" '"tables": ["pair"]' '"missing_columns": "add"'
  ferry run a.json; expect_rc 0 "missing column added"
  check '[ "$(dump $S pair | md5sum)" = "$(dump $D pair | md5sum)" ]' "rows differ after adding the column"
  ;;
bad_input)
  joget_source
  config u.json "$(murl $S)" "$(murl $S)_x" '"tables": ["nope"]' ''
  ferry run u.json; check '[ "$rc" != 0 ]' "unknown table must fail"
  has 'table "nope" (option "tables") does not exist in mysql://' "unknown table named"
  has "@127.0.0.1:$MPORT/$S" "unknown table: the error names the endpoint"
  PW=wrong config p.json "$(PW=wrong murl $S)" "$(murl $S)" '"tables": ["pair"]' ''
  ferry run p.json; check '[ "$rc" != 0 ]' "wrong password must fail"
  has "@127.0.0.1:$MPORT/$S" "the login error names the endpoint"
  check '! grep -q wrong "$T/out"' "the password leaked into the output"
  dead=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
  config n.json "$(PORT_OVERRIDE=$dead murl $S)" "$(murl $S)" '"tables": ["pair"]' ''
  ferry run n.json; check '[ "$rc" != 0 ]' "unreachable server must fail"
  has "127.0.0.1:$dead" "the connection error names host and port"
  my $S "CREATE TABLE nokey (v int)"
  config k.json "$(murl $S)" "$(murl $S)" '"tables": ["nokey"]' ''
  ferry run k.json; check '[ "$rc" != 0 ]' "a table without a primary key must fail"
  has "nokey" "the error names the table without a key"
  ;;
to_pg)
  PPORT=$(sed -n 3p "$PSTATE")
  PSQL=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | tail -n 1)
  pg() { "$PSQL" -h 127.0.0.1 -p "$PPORT" -U ferry -d "$1" -qAtX -v ON_ERROR_STOP=1 -c "$2"; }
  joget_source
  pg postgres "DROP DATABASE IF EXISTS $D" 2>/dev/null; pg postgres "CREATE DATABASE $D"
  before=$(mysum $S)
  config c.json "$(murl $S)" "postgresql://ferry@127.0.0.1:$PPORT/$D" '"app": "hr", "tables": ["pair"], "batch_rows": 700' ''
  ferry run c.json; expect_rc 0 "MariaDB -> PostgreSQL"
  check '[ "$(pg $D "SELECT count(*) FROM \"app_fd_leave\"")" = 2500 ]' "app_fd_leave rows on PostgreSQL"
  check '[ "$(pg $D "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '\''\"app_fd_leave\"'\''::regclass AND attname = '\''c_ok'\''")" = boolean ]' "tinyint(1) not mapped to boolean"
  check '[ "$(pg $D "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '\''\"app_fd_leave\"'\''::regclass AND attname = '\''c_doc'\''")" = bytea ]' "longblob not mapped to bytea"
  # values equal: text forms through both clients
  a=$(my $S "SELECT id, IFNULL(c_reason, '<null>'), c_amount, c_ok, HEX(c_doc), DATE_FORMAT(dateCreated, '%Y-%m-%d %H:%i:%s.%f') FROM app_fd_leave ORDER BY id" | md5sum)
  b=$(pg $D "COPY (SELECT id, coalesce(c_reason, '<null>'), c_amount, c_ok::int, upper(encode(c_doc, 'hex')), to_char(\"dateCreated\", 'YYYY-MM-DD HH24:MI:SS.US') FROM \"app_fd_leave\" ORDER BY id COLLATE \"C\") TO STDOUT" | md5sum)
  check '[ "$a" = "$b" ]' "app_fd_leave values differ between MariaDB and PostgreSQL"
  check '[ "$(pg $D "SELECT count(*) FROM \"app_fd_leave\" WHERE c_reason LIKE '\''%😀'\''")" = 357 ]' "4-byte UTF-8 not carried"
  check '[ "$(pg $D "SELECT count(*) FROM pair")" = 500 ]' "pair rows on PostgreSQL"
  xmins=$(pg $D "SELECT md5(string_agg(xmin::text, ',' ORDER BY id)) FROM \"app_fd_leave\"")
  rm -f c.db
  ferry run c.json; expect_rc 0 "re-run to PostgreSQL"
  check '[ "$(report c.json "r[\"totals\"][\"skipped\"] == r[\"stages\"][0][\"taken\"] > 0")" = True ]' "re-run to PostgreSQL: not every batch skipped"
  check '[ "$(pg $D "SELECT md5(string_agg(xmin::text, '\'','\'' ORDER BY id)) FROM \"app_fd_leave\"")" = "$xmins" ]' "re-run to PostgreSQL rewrote rows (xmin changed)"
  check '[ "$(mysum $S)" = "$before" ]' "the source changed (to PostgreSQL)"
  # zero dates: an error naming table, key, column; with zero_dates null they become NULL
  my $S "SET SESSION sql_mode = ''; CREATE TABLE zd (id int PRIMARY KEY, d date); INSERT INTO zd VALUES (1, '2024-01-01'), (2, '0000-00-00')"
  before=$(mysum $S)
  config z.json "$(murl $S)" "postgresql://ferry@127.0.0.1:$PPORT/$D" '"tables": ["zd"]' ''
  ferry run z.json; check '[ "$rc" != 0 ]' "a zero date must fail"
  has 'table zd: key 2: column "d" holds the zero date' "the zero-date error names table, key and column"
  check '[ "$(pg $D "SELECT count(*) FROM zd")" = 0 ]' "rows of the zero-date batch were written"
  config zn.json "$(murl $S)" "postgresql://ferry@127.0.0.1:$PPORT/$D" '"tables": ["zd"]' '"zero_dates": "null"'
  ferry run zn.json; expect_rc 0 "zero_dates null"
  check '[ "$(pg $D "SELECT count(*) FROM zd WHERE d IS NULL")" = 1 ]' "zero date not written as NULL"
  check '[ "$(mysum $S)" = "$before" ]' "the source changed"
  ;;
from_pg)
  # PostgreSQL -> MariaDB: the pgsql source's items into the sql sink, types mapped the other way
  PPORT=$(sed -n 3p "$PSTATE")
  PSQL=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | tail -n 1)
  pg() { "$PSQL" -h 127.0.0.1 -p "$PPORT" -U ferry -d "$1" -qAtX -v ON_ERROR_STOP=1 -c "$2"; }
  pg postgres "DROP DATABASE IF EXISTS $S" 2>/dev/null; pg postgres "CREATE DATABASE $S"; mynewdb $D
  pg $S "CREATE TABLE app_fd_t (id varchar(255) PRIMARY KEY, \"dateCreated\" timestamp, c_t text, c_n numeric(10,2), c_i integer,
           c_b boolean, c_bin bytea, c_tz timestamptz, c_d date, c_j jsonb);
         INSERT INTO app_fd_t SELECT 'r' || g, timestamp '2024-01-01 10:00:00' + g * interval '1 minute 1.5 second', 'text ' || g || E'\n\\é',
           g + 0.25, g, g % 2 = 0, decode(lpad(to_hex(g % 256), 2, '0') || '00ff', 'hex'), timestamptz '2024-03-01 12:00:00+00' + g * interval '1 hour',
           date '2024-02-01' + g, jsonb_build_object('n', g) FROM generate_series(1, 1200) g;"
  cat > c.json <<JSON
{"journal": "$T/c.db", "report": "$T/c.report.json",
 "stages": [{"name": "forms", "concurrency": 3,
   "source": {"plugin": "pgsql", "options": {"dsn": "host=127.0.0.1 port=$PPORT user=ferry dbname=$S", "tables": ["app_fd_t"], "batch_rows": 500}},
   "sink": {"plugin": "sql", "options": {"dsn": "$(murl $D)"}}}]}
JSON
  ferry run c.json; expect_rc 0 "PostgreSQL -> MariaDB"
  check '[ "$(my $D "SELECT COUNT(*) FROM app_fd_t")" = 1200 ]' "rows on MariaDB"
  ty=$(my $D "SELECT GROUP_CONCAT(CONCAT(column_name, ':', column_type) ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = 'app_fd_t'")
  check '[ "$ty" = "id:varchar(255),dateCreated:datetime(6),c_t:longtext,c_n:decimal(10,2),c_i:int(11),c_b:tinyint(1),c_bin:longblob,c_tz:timestamp(6),c_d:date,c_j:longtext" ]' "column types on MariaDB: $ty"
  a=$(pg $S "COPY (SELECT id, to_char(\"dateCreated\", 'YYYY-MM-DD HH24:MI:SS.US'), c_t, c_n, c_i, c_b::int, upper(encode(c_bin, 'hex')), c_d FROM app_fd_t ORDER BY id COLLATE \"C\") TO STDOUT" | md5sum)
  b=$(my $D "SELECT id, DATE_FORMAT(dateCreated, '%Y-%m-%d %H:%i:%s.%f'), c_t, c_n, c_i, c_b, HEX(c_bin), c_d FROM app_fd_t ORDER BY id" | md5sum)
  check '[ "$a" = "$b" ]' "values differ between PostgreSQL and MariaDB"
  check '[ "$(my $D "SELECT JSON_VALUE(c_j, '\''$.n'\'') FROM app_fd_t WHERE id = '\''r7'\''")" = 7 ]' "jsonb value"
  rm -f c.db
  ferry run c.json; expect_rc 0 "re-run PostgreSQL -> MariaDB"
  check '[ "$(report c.json "r[\"totals\"][\"skipped\"] == r[\"stages\"][0][\"taken\"] > 0")" = True ]' "re-run: not every batch skipped"
  ;;
fk_order)
  # grand <- parent <- child, many small batches, 4 sink connections, the target with the same foreign keys;
  # cyc_a <-> cyc_b form a cycle and cyc_c depends on it: refused and reported, the others copied
  mynewdb $S; mynewdb $D
  cat > schema.sql <<'SQL'
CREATE TABLE grand (id int PRIMARY KEY, name varchar(50));
CREATE TABLE parent (id int PRIMARY KEY, grand_id int NOT NULL, name varchar(50), FOREIGN KEY (grand_id) REFERENCES grand(id));
CREATE TABLE child (id varchar(40) PRIMARY KEY, parent_id int, note longtext, FOREIGN KEY (parent_id) REFERENCES parent(id));
SQL
  my $S "$(cat schema.sql)"; my $D "$(cat schema.sql)"
  my $S "CREATE TABLE cyc_a (id int PRIMARY KEY, b_id int); CREATE TABLE cyc_b (id int PRIMARY KEY, a_id int REFERENCES cyc_a(id));
         ALTER TABLE cyc_a ADD FOREIGN KEY (b_id) REFERENCES cyc_b(id);
         CREATE TABLE cyc_c (id int PRIMARY KEY, a_id int, FOREIGN KEY (a_id) REFERENCES cyc_a(id));
         INSERT INTO cyc_a VALUES (1, NULL); INSERT INTO cyc_c VALUES (1, 1);
         INSERT INTO grand SELECT seq, CONCAT('g', seq) FROM seq_1_to_300;
         INSERT INTO parent SELECT seq, 1 + (seq * 7) % 300, CONCAT('p', seq) FROM seq_1_to_900;
         INSERT INTO child SELECT CONCAT('c', seq), 1 + (seq * 13) % 900, CONCAT('n', seq) FROM seq_1_to_2000;"
  before=$(mysum $S)
  CONC=4 config c.json "$(murl $S)" "$(murl $D)" '"patterns": ["%"], "batch_rows": 50' ''
  ferry run c.json; check '[ "$rc" != 0 ]' "a cycle must fail the stage"
  has "foreign-key cycle cyc_" "the cycle is reported"
  has "cyc_c" "the table depending on the cycle is named"
  for t in grand parent child; do
    check '[ "$(dump $S $t | md5sum)" = "$(dump $D $t | md5sum)" ]' "table $t: rows differ"
  done
  check '[ "$(report c.json "r[\"totals\"][\"failed\"]")" = 0 ]' "a batch failed (parents not first?)"
  check '[ "$(my $D "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name LIKE '\''cyc%'\''")" = 0 ]' "a refused table was created"
  check '[ "$(mysum $S)" = "$before" ]' "the source changed"
  ;;
plan_verify)
  # plan: nothing written, what would be created / added / inserted / skipped / overwritten; verify: equal
  # after a run, then a changed and a deleted row named with key and column
  mynewdb $S; mynewdb $D
  my $S "CREATE TABLE app_fd_p (id varchar(255) PRIMARY KEY, c_a longtext, c_new longtext);
         INSERT INTO app_fd_p SELECT CONCAT('p', seq), 'a', 'n' FROM seq_1_to_25;
         CREATE TABLE app_fd_q (id varchar(255) PRIMARY KEY, c_a longtext, c_f bit(1));
         INSERT INTO app_fd_q SELECT CONCAT('q', seq), 'a', seq % 2 FROM seq_1_to_5"
  my $D "CREATE TABLE app_fd_p (id varchar(255) PRIMARY KEY, c_a longtext); INSERT INTO app_fd_p VALUES ('p1', 'a'), ('p2', 'other')"
  before=$(mysum $S); d0=$(mysum $D)
  cat0=$(my $D "SELECT GROUP_CONCAT(CONCAT(table_name, '.', column_name) ORDER BY 1) FROM information_schema.columns WHERE table_schema = DATABASE()")
  config c.json "$(murl $S)" "$(murl $D)" '"patterns": ["app\\_fd\\_%"]' ''
  ferry plan c.json; expect_rc 0 "plan"
  check '[ ! -e c.db ]' "plan made a journal"
  check '[ "$(my $D "SELECT GROUP_CONCAT(CONCAT(table_name, '\''.'\'', column_name) ORDER BY 1) FROM information_schema.columns WHERE table_schema = DATABASE()")" = "$cat0" ]' "plan changed the target's tables"
  check '[ "$(mysum $D)" = "$d0" ]' "plan wrote rows on the target"
  would=$(report c.json "[i['report'].get('would') for i in r['stages'][0]['items']]")
  echo "$would" | grep -q 'create table app_fd_q' && ok || bad "plan names the table it would create ($would)"
  echo "$would" | grep -q 'add column c_new longtext to app_fd_p' && ok || bad "plan names the column it would add ($would)"
  echo "$would" | grep -q 'insert 23 row(s); 0 identical row(s) already there; 2 row(s) differ (would be skipped)' && ok ||
    bad "plan counts (the target's rows lack c_new: both differ) ($would)"
  check '[ "$(report c.json "sum(i['"'"'report'"'"'].get('"'"'would_insert'"'"', 0) for i in r['"'"'stages'"'"'][0]['"'"'items'"'"'])")" = 28 ]' "would_insert total"
  config f.json "$(murl $S)" "$(murl $D)" '"tables": ["app_fd_p"]' '"on_conflict": "fail"'
  ferry plan f.json; check '[ "$rc" = 3 ]' "plan with on_conflict fail and differing rows: blocked (exit $rc)"
  has 'exist on the target with other values and on_conflict is "fail"' "plan says why it is blocked"
  config o.json "$(murl $S)" "$(murl $D)" '"tables": ["app_fd_p"]' '"on_conflict": "overwrite"'
  ferry plan o.json; expect_rc 0 "plan overwrite"
  check '[ "$(report o.json "r['"'"'stages'"'"'][0]['"'"'items'"'"'][0]['"'"'report'"'"']['"'"'would_overwrite'"'"']")" = 2 ]' "plan: rows that would be overwritten"
  check '[ "$(mysum $D)" = "$d0" ]' "plan wrote rows on the target"
  # run (overwrite), then verify
  ferry run o.json; expect_rc 0 "run overwrite"
  ferry run c.json; expect_rc 0 "run"
  check '[ "$(my $D "SELECT column_type FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '\''app_fd_q'\'' AND column_name = '\''c_f'\''")" = "bit(1)" ]' "bit(1) kept on MariaDB"
  check '[ "$(my $D "SELECT GROUP_CONCAT(c_f + 0 ORDER BY id) FROM app_fd_q")" = "1,0,1,0,1" ]' "bit(1) values"
  ferry verify c.json; expect_rc 0 "verify after the run"
  my $D "UPDATE app_fd_p SET c_new = 'changed' WHERE id = 'p7'; DELETE FROM app_fd_p WHERE id = 'p20'"
  ferry verify c.json; check '[ "$rc" = 4 ]' "verify finds the differences (exit $rc)"
  has 'p7 (differs in c_new)' "the changed row and column are named"
  has 'p20 (missing)' "the missing row is named"
  check '[ "$(mysum $S)" = "$before" ]' "the source changed"
  ;;
column_map)
  # rename a column and leave one out, per table and for every table ("*")
  mynewdb $S; mynewdb $D
  my $S "CREATE TABLE app_fd_m (id varchar(255) PRIMARY KEY, c_old longtext, c_secret longtext, c_keep longtext);
         INSERT INTO app_fd_m SELECT CONCAT('m', seq), CONCAT('o', seq), 'pw', CONCAT('k', seq) FROM seq_1_to_700"
  config c.json "$(murl $S)" "$(murl $D)" '"tables": ["app_fd_m"], "batch_rows": 300' \
    '"column_map": {"app_fd_m": {"c_old": "c_new"}, "*": {"c_secret": null}}'
  ferry run c.json; expect_rc 0 "column_map run"
  check '[ "$(my $D "SELECT GROUP_CONCAT(column_name ORDER BY ordinal_position) FROM information_schema.columns WHERE table_schema = DATABASE() AND table_name = '\''app_fd_m'\''")" = "id,c_new,c_keep" ]' "columns after column_map"
  check '[ "$(my $S "SELECT id, c_old, c_keep FROM app_fd_m ORDER BY id" | md5sum)" = "$(my $D "SELECT id, c_new, c_keep FROM app_fd_m ORDER BY id" | md5sum)" ]' "values after column_map"
  ferry verify c.json; expect_rc 0 "verify with column_map"
  # batch_bytes: a batch ends at the row that brings its COPY text to 1024 bytes (about 50 rows here)
  mynewdb ${D}_b
  config b.json "$(murl $S)" "$(murl $D)_b" '"tables": ["app_fd_m"], "batch_rows": 300, "batch_bytes": 1024' ''
  ferry run b.json; expect_rc 0 "batch_bytes run"
  check '[ "$(report b.json "r['"'"'stages'"'"'][0]['"'"'taken'"'"'] >= 12 and max(i['"'"'report'"'"']['"'"'rows'"'"'] for i in r['"'"'stages'"'"'][0]['"'"'items'"'"']) < 80")" = True ]' "batch_bytes did not cut the batches"
  check '[ "$(my $S "SELECT * FROM app_fd_m ORDER BY id" | md5sum)" = "$(my ${D}_b "SELECT * FROM app_fd_m ORDER BY id" | md5sum)" ]' "rows differ with batch_bytes"
  mynewdb ${D}_k
  config k.json "$(murl $S)" "$(murl $D)_k" '"tables": ["app_fd_m"]' '"column_map": {"*": {"id": null}}'
  ferry run k.json; check '[ "$rc" != 0 ]' "leaving the key out must fail"
  has 'key column "id" is left out by column_map' "the error names the key column"
  config x.json "$(murl $S)" "$(murl $D)" '"tables": ["app_fd_m"]' '"column_map": {"app_fd_m": ["c_old"]}'
  ferry run x.json; check '[ "$rc" != 0 ]' "a bad column_map must fail"
  has 'option "column_map": the value for table "app_fd_m" must be an object' "the bad column_map is named"
  ;;
bad_values)
  # invalid UTF-8 in a source row, an unknown type, a bit(1) boolean: errors naming table, key and column,
  # nothing of the batch or table written
  mynewdb $S; mynewdb $D
  PPORT=$(sed -n 3p "$PSTATE")
  PSQL=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | tail -n 1)
  pg() { "$PSQL" -h 127.0.0.1 -p "$PPORT" -U ferry -d "$1" -qAtX -v ON_ERROR_STOP=1 -c "$2"; }
  pg postgres "DROP DATABASE IF EXISTS $D" 2>/dev/null; pg postgres "CREATE DATABASE $D"
  # MariaDB and PostgreSQL refuse invalid UTF-8 in their text columns (also from a binary client session),
  # so the bytes come the binary-safe way: a batch exported to JSON Lines (the jsonl source), latin1 é in it
  python3 - > u.jsonl <<'PY'
import base64, json
rows = b"u1\tfine\nu2\tok\nu3\tcaf\xe9 au lait\n"
print(json.dumps({"kind": "record", "key": "app_fd_u:u1..u3", "body": {"table": "app_fd_u", "engine": "mysql",
  "columns": ["id", "c_t"], "types": ["varchar(255)", "longtext"], "key_columns": ["id"], "format": "copy-text",
  "row_count": 3, "batch": 0}, "payload_base64": base64.b64encode(rows).decode()}))
PY
  for dst in "$(murl $D)" "postgresql://ferry@127.0.0.1:$PPORT/$D"; do
    cat > u.json <<JSON
{"journal": "$T/u.db", "report": "$T/u.report.json",
 "stages": [{"name": "forms", "source": {"plugin": "jsonl", "options": {"path": "$T/u.jsonl"}},
   "sink": {"plugin": "sql", "options": {"dsn": "$dst"}}}]}
JSON
    ferry run u.json; check '[ "$rc" != 0 ]' "invalid UTF-8 must fail ($dst)"
    has 'table app_fd_u: key u3: column "c_t" holds invalid UTF-8 at byte 4 (E9 20 61...)' "the UTF-8 error names table, key, column ($dst)"
    rm -f u.db
  done
  check '[ "$(my $D "SELECT COUNT(*) FROM app_fd_u")" = 0 ]' "rows of the invalid batch were written (MariaDB)"
  check '[ "$(pg $D "SELECT count(*) FROM app_fd_u")" = 0 ]' "rows of the invalid batch were written (PostgreSQL)"
  my $S "CREATE TABLE app_fd_g (id varchar(255) PRIMARY KEY, c_p point);
         INSERT INTO app_fd_g VALUES ('g1', POINT(1, 2));
         CREATE TABLE app_fd_b (id varchar(255) PRIMARY KEY, c_f bit(1), c_n int);
         INSERT INTO app_fd_b VALUES ('b1', b'1', 1), ('b2', b'0', 2), ('b3', NULL, 3);
         CREATE TABLE app_fd_t (id varchar(255) PRIMARY KEY, c_t longtext);
         INSERT INTO app_fd_t SELECT CONCAT('t', seq), REPEAT('x\ty\\\\', seq) FROM seq_1_to_30"
  before=$(mysum $S)
  config g.json "$(murl $S)" "postgresql://ferry@127.0.0.1:$PPORT/$D" '"tables": ["app_fd_g"]' ''
  ferry run g.json; check '[ "$rc" != 0 ]' "an unknown type must fail"
  has 'table app_fd_g: column "c_p" has the mysql type point, which this sink cannot map to postgresql' "the unknown type is named with table and column"
  check '[ "$(pg $D "SELECT count(*) FROM pg_tables WHERE tablename = '\''app_fd_g'\''")" = 0 ]' "the table of the unknown type was created"
  config b.json "$(murl $S)" "postgresql://ferry@127.0.0.1:$PPORT/$D" '"tables": ["app_fd_b"]' ''
  ferry run b.json; expect_rc 0 "bit(1) into PostgreSQL"
  check '[ "$(pg $D "SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '\''app_fd_b'\''::regclass AND attname = '\''c_f'\''")" = boolean ]' "bit(1) becomes boolean"
  check '[ "$(pg $D "SELECT string_agg(coalesce(c_f::text, '\''null'\''), '\'','\'' ORDER BY id) FROM app_fd_b")" = "true,false,null" ]' "bit(1) values as booleans"
  rm -f b.db
  ferry run b.json; expect_rc 0 "bit(1) re-run"
  check '[ "$(report b.json "r[\"totals\"][\"skipped\"] == r[\"stages\"][0][\"taken\"] > 0")" = True ]' "bit(1) re-run: not every batch skipped"
  # a server that refuses LOAD DATA LOCAL (MySQL 8's default): the batch is retried with multi-row INSERTs
  mynewdb ${D}_l
  my mysql "SET GLOBAL local_infile = 0"
  config l.json "$(murl $S)" "$(murl $D)_l" '"tables": ["app_fd_b", "app_fd_t"]' ''
  ferry run l.json; rcl=$rc
  my mysql "SET GLOBAL local_infile = 1"
  rc=$rcl; expect_rc 0 "without local_infile"
  has 'LOAD DATA LOCAL INFILE is not allowed: bulk inserts fall back to multi-row INSERT' "the fallback is logged"
  check '[ "$(my ${D}_l "SELECT GROUP_CONCAT(CONCAT(id, c_f + 0, c_n) ORDER BY id) FROM app_fd_b")" = "b111,b202" ]' "rows without local_infile: $(my ${D}_l "SELECT GROUP_CONCAT(CONCAT(id, c_f + 0, c_n) ORDER BY id) FROM app_fd_b")"
  check '[ "$(dump $S app_fd_t | md5sum)" = "$(dump ${D}_l app_fd_t | md5sum)" ]' "app_fd_t rows without local_infile"
  check '[ "$(mysum $S)" = "$before" ]' "the source changed"
  ;;
*) echo "unknown case $CASE"; exit 2 ;;
esac
echo "[$CASE] $passes passed, $fails failed"
[ "$fails" = 0 ]
