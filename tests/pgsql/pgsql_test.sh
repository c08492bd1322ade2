#!/usr/bin/env bash
# Tests of the pgsql plugin through the ferry CLI, against a real PostgreSQL (the cluster of fixture.sh).
#   pgsql_test.sh <ferry> <plugin dir> <fixture state file> <case>
# Every case makes its own source and target databases (named after the case), runs ferry with JSON configs
# and checks the databases with psql. Every run also checks that the source did not change.
set -uo pipefail
FERRY=$1
export FERRY_PLUGIN_PATH=$2
STATE=$3
CASE=$4
SUPPORT=$(cd "$(dirname "$0")/../support" && pwd)
PORT=$(sed -n 3p "$STATE")
[ -n "$PORT" ] || { echo "no cluster (state file $STATE)"; exit 1; }
PSQL=$(command -v psql || ls /usr/lib/postgresql/*/bin/psql | tail -n 1)
T=$(mktemp -d /tmp/ferry-pgsql-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$T"
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL [$CASE]: $*"; fails=$((fails + 1)); }
check() { if eval "$1"; then ok; else bad "$2"; fi; }

# sql DB "statements" -> unaligned, tuples only
sql() { "$PSQL" -h 127.0.0.1 -p "$PORT" -U ferry -d "$1" -qAtX -v ON_ERROR_STOP=1 -c "$2"; }
sqlf() { "$PSQL" -h 127.0.0.1 -p "$PORT" -U ferry -d "$1" -qAtX -v ON_ERROR_STOP=1; }
newdb() {
  PGOPTIONS="-c client_min_messages=warning" sql postgres "DROP DATABASE IF EXISTS \"$1\"" >/dev/null
  sql postgres "CREATE DATABASE \"$1\"" >/dev/null
}
dsn() { echo "host=127.0.0.1 port=$PORT user=ferry dbname=$1"; }
# checksum DB: every table of schema public with the md5 of its rows in a fixed order
checksum() {
  sql "$1" "SELECT string_agg(format('%s:%s', c.relname, x.h), ' ' ORDER BY c.relname) FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
            CROSS JOIN LATERAL (SELECT (xpath('/row/h/text()',
               query_to_xml(format('SELECT md5(coalesce(string_agg(t::text, E''\\n'' ORDER BY t::text), '''')) AS h
                                    FROM %I.%I t', n.nspname, c.relname), false, false, '')))[1]::text AS h) x
            WHERE c.relkind = 'r'"
}
# one stage: config FILE SRC_DB SINK_DB 'source options json (without dsn)' 'sink options json' [stage extras]
config() {
  local f=$1 src=$2 dst=$3 so=$4 ko=$5 extra=${6:-}
  cat > "$f" <<JSON
{"journal": "$T/${f%.json}.db", "report": "$T/${f%.json}.report.json",
 "stages": [{"name": "forms", "concurrency": ${CONC:-4} $extra,
   "source": {"plugin": "pgsql", "options": {"dsn": "$(dsn "$src")" ${so:+, $so}}},
   "sink": {"plugin": "pgsql", "options": {"dsn": "$(dsn "$dst")" ${ko:+, $ko}}}}]}
JSON
}
# ferry CMD CONFIG [args] -> exit code in $rc, output in $T/out
ferry() {
  local cmd=$1 cfg=$2; shift 2
  "$FERRY" "$cmd" --config "$cfg" --progress none "$@" >"$T/out" 2>&1
  rc=$?
  if grep -q "Sanitizer\|runtime error:" "$T/out"; then bad "ferry $cmd $cfg: sanitizer report"; cat "$T/out"; fi
}
expect_rc() { if [ "$rc" = "$1" ]; then ok; else bad "$2: exit $rc, expected $1"; sed 's/^/    /' "$T/out" | tail -25; fi; }
has() { if grep -qF -- "$1" "$T/out"; then ok; else bad "$2: output lacks '$1'"; sed 's/^/    /' "$T/out" | tail -25; fi; }
lacks() { if grep -qF -- "$1" "$T/out"; then bad "$2: output has '$1'"; else ok; fi; }
report() { python3 -c "import json,sys; r=json.load(open('$T/${1%.json}.report.json')); print(eval(sys.argv[1]))" "$2"; }

S=${CASE}_src D=${CASE}_dst

case "$CASE" in
fk_order)
  # a chain grand <- parent <- child <- toy plus an independent table, many small batches, four connections
  newdb $S; newdb $D
  cat > schema.sql <<'SQL'
CREATE TABLE grand (id int PRIMARY KEY, name text);
CREATE TABLE parent (id int PRIMARY KEY, grand_id int NOT NULL REFERENCES grand(id), name text);
CREATE TABLE child (id varchar(40) PRIMARY KEY, parent_id int REFERENCES parent(id), note text);
CREATE TABLE toy (owner varchar(40) REFERENCES child(id), n int, color text, PRIMARY KEY (owner, n));
CREATE TABLE loner (id bigint PRIMARY KEY, v text);
SQL
  sqlf $S < schema.sql && sqlf $D < schema.sql
  sql $S "INSERT INTO grand SELECT g, 'g' || g FROM generate_series(1, 300) g;
          INSERT INTO parent SELECT g, 1 + (g * 7) % 300, 'p' || g FROM generate_series(1, 900) g;
          INSERT INTO child SELECT 'c' || g, 1 + (g * 13) % 900, 'n' || g FROM generate_series(1, 2000) g;
          INSERT INTO toy SELECT 'c' || (1 + g % 2000), g, 'red' FROM generate_series(1, 3000) g;
          INSERT INTO loner SELECT g, repeat('x', 50) FROM generate_series(1, 1500) g;"
  before=$(checksum $S)
  config c.json $S $D '"patterns": ["%"], "batch_rows": 100' '' ', "retry": {"max": 0}'
  ferry run c.json
  expect_rc 0 "copy of tables with foreign keys into a target that enforces them"
  check '[ "$(checksum $D)" = "$before" ]' "target equals source"
  check '[ "$(checksum $S)" = "$before" ]' "source unchanged"
  check '[ "$(report c.json "r[\"totals\"][\"retried\"]")" = 0 ]' "no batch needed a retry (parents were first)"
  has "5 table(s) selected, 5 to copy in foreign-key order" "selection logged"
  # batches of one table carry the tables they come after
  echo '{"journal": "x.db", "stages": [{"name": "e", "source": {"plugin": "pgsql", "options": {"dsn": "'"$(dsn $S)"'",
        "tables": ["toy", "child", "parent", "grand"], "batch_rows": 500}},
        "sink": {"plugin": "jsonl", "options": {"path": "'"$T"'/e.jsonl"}}, "concurrency": 1}]}' > e.json
  ferry run e.json
  expect_rc 0 "export to jsonl"
  python3 - "$T/e.jsonl" <<'PY' || bad "emission order is not parents first"
import json, sys
seen, order = set(), []
for line in open(sys.argv[1]):
    it = json.loads(line)
    b = it["body"]
    t = b["table"]
    for p in b["after"]:
        assert p in seen, (t, "before its parent", p)
    if t not in order: order.append(t)
    seen.add(t)
    assert it["key"].startswith(t + ":"), it["key"]
    assert b["format"] == "copy-text" and b["key_columns"], b
print(order)
assert order == ["grand", "parent", "child", "toy"], order
PY
  ;;

cycle)
  newdb $S; newdb $D
  cat > schema.sql <<'SQL'
CREATE TABLE a (id int PRIMARY KEY, b_id int);
CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a(id));
ALTER TABLE a ADD FOREIGN KEY (b_id) REFERENCES b(id) DEFERRABLE INITIALLY DEFERRED;
CREATE TABLE dep (id int PRIMARY KEY, a_id int REFERENCES a(id));
CREATE TABLE tree (id int PRIMARY KEY, up int REFERENCES tree(id));
CREATE TABLE free (id int PRIMARY KEY);
SQL
  sqlf $S < schema.sql && sqlf $D < schema.sql
  sql $S "BEGIN; INSERT INTO a SELECT g, g FROM generate_series(1, 50) g; INSERT INTO b SELECT g, g FROM generate_series(1, 50) g;
          COMMIT; INSERT INTO dep SELECT g, g FROM generate_series(1, 50) g;
          INSERT INTO tree VALUES (1, NULL), (2, 1), (3, 2); INSERT INTO free SELECT generate_series(1, 10)"
  before=$(checksum $S)
  config c.json $S $D '"patterns": ["%"]' ''
  ferry run c.json
  check '[ "$rc" != 0 ]' "a foreign-key cycle fails the stage (exit $rc)"
  has "foreign-key cycle" "the cycle is reported"
  has "a -> b -> a" "the cycle names its tables"
  has "tree -> tree" "a table referencing itself is a cycle"
  has "depending on them (dep)" "dependent tables are named"
  check '[ "$(sql $D "select count(*) from free")" = 10 ]' "tables outside the cycle are copied"
  check '[ "$(sql $D "select (select count(*) from a) + (select count(*) from b) + (select count(*) from dep)")" = 0 ]' \
    "the cycle's tables and their dependents are refused"
  config d.json $S $D '"patterns": ["%"], "defer_constraints": true' ''
  ferry run d.json
  expect_rc 0 "defer_constraints copies the cycle"
  check '[ "$(checksum $D)" = "$before" ]' "target equals source after defer_constraints"
  check '[ "$(checksum $S)" = "$before" ]' "source unchanged"
  ;;

select_app)
  newdb $S; newdb $D
  sql $S "CREATE TABLE app_app (appid varchar(255), appversion bigint, name varchar(255), published boolean,
                                PRIMARY KEY (appid, appversion));
          CREATE TABLE app_form (appid varchar(255), appversion bigint, formid varchar(255), name varchar(255),
                                 tablename varchar(255), json text, PRIMARY KEY (appid, appversion, formid));
          INSERT INTO app_app VALUES ('hr', 1, 'HR', false), ('hr', 2, 'HR', true), ('crm', 1, 'CRM', true);
          INSERT INTO app_form VALUES ('hr', 1, 'leave', 'Leave', 'leave', '{}'),
                                      ('hr', 1, 'oldform', 'Old', 'old', '{}'),
                                      ('hr', 2, 'leave', 'Leave', 'leave', '{}'),
                                      ('hr', 2, 'claim', 'Claim', '', '{}'),
                                      ('hr', 2, 'Expense', 'Expense', 'ExpenseItems', '{}'),
                                      ('hr', 2, 'ghost', 'Ghost', 'never_used', '{}'),
                                      ('crm', 1, 'lead', 'Lead', 'lead', '{}');"
  for t in leave old claim expenseitems lead other; do
    sql $S "CREATE TABLE app_fd_$t (id varchar(255) PRIMARY KEY, datecreated timestamp, c_x text);
            INSERT INTO app_fd_$t SELECT '$t-' || g, now(), 'v' || g FROM generate_series(1, 20) g"
  done
  before=$(checksum $S)
  config c.json $S $D '"app": "hr", "app_version": "published"' ''
  ferry run c.json
  expect_rc 0 "app selection (published version)"
  got=$(sql $D "select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname='public'")
  check '[ "$got" = "app_fd_claim,app_fd_expenseitems,app_fd_leave" ]' "published version's form tables (got $got)"
  has "never_used" "a form table that does not exist is named in a warning"
  config v.json $S $D '"app": "hr", "app_version": "1"' ''
  ferry run v.json
  expect_rc 0 "app selection (version 1)"
  check '[ "$(sql $D "select count(*) from app_fd_old")" = 20 ]' "version 1's form table copied"
  newdb ${D}2
  config a.json $S ${D}2 '"app": "hr"' ''
  ferry run a.json
  got=$(sql ${D}2 "select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname='public'")
  check '[ "$got" = "app_fd_claim,app_fd_expenseitems,app_fd_leave,app_fd_old" ]' "all versions (got $got)"
  newdb ${D}3
  config p.json $S ${D}3 '"patterns": ["app\\_fd\\_%"], "exclude": ["%lead", "app_fd_o%"]' ''
  ferry run p.json
  expect_rc 0 "pattern selection"
  got=$(sql ${D}3 "select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname='public'")
  check '[ "$got" = "app_fd_claim,app_fd_expenseitems,app_fd_leave" ]' "patterns with exclude (got $got)"
  config n.json $S ${D}3 '"app": "nosuchapp"' ''
  ferry run n.json
  check '[ "$rc" != 0 ]' "unknown app fails"
  has 'app "nosuchapp"' "unknown app named"
  config m.json $S ${D}3 '"tables": ["app_fd_leave", "app_fd_nope"]' ''
  ferry run m.json
  check '[ "$rc" != 0 ]' "a missing named table fails"
  has '"app_fd_nope" not found' "missing table named"
  config q.json $S ${D}3 '"patterns": ["zz%"]' ''
  ferry run q.json
  has '"zz%" match no table' "a pattern matching nothing is named"
  check '[ "$(checksum $S)" = "$before" ]' "source unchanged"
  ;;

select_users)
  newdb $S; newdb $D
  sql $S "CREATE TABLE dir_user (id varchar(255) PRIMARY KEY, username varchar(255), password varchar(255));
          CREATE TABLE dir_role (id varchar(255) PRIMARY KEY, name varchar(255));
          CREATE TABLE dir_user_role (roleid varchar(255) REFERENCES dir_role(id),
                                      userid varchar(255) REFERENCES dir_user(id), PRIMARY KEY (userid, roleid));
          CREATE TABLE directory_notes (id int PRIMARY KEY);
          CREATE TABLE app_fd_x (id varchar(255) PRIMARY KEY);
          INSERT INTO dir_user SELECT 'u' || g, 'user' || g, md5('p' || g) FROM generate_series(1, 100) g;
          INSERT INTO dir_role VALUES ('ROLE_ADMIN', 'Admin'), ('ROLE_USER', 'User');
          INSERT INTO dir_user_role SELECT 'ROLE_USER', 'u' || g FROM generate_series(1, 100) g;"
  sql $D "CREATE TABLE dir_user (id varchar(255) PRIMARY KEY, username varchar(255), password varchar(255));
          CREATE TABLE dir_role (id varchar(255) PRIMARY KEY, name varchar(255));
          CREATE TABLE dir_user_role (roleid varchar(255) REFERENCES dir_role(id),
                                      userid varchar(255) REFERENCES dir_user(id), PRIMARY KEY (userid, roleid));"
  before=$(checksum $S)
  config c.json $S $D '"users": true, "batch_rows": 30' '' ', "retry": {"max": 0}'
  ferry run c.json
  expect_rc 0 "users (dir_*) copy"
  got=$(sql $D "select string_agg(tablename, ',' order by tablename) from pg_tables where schemaname='public'")
  check '[ "$got" = "dir_role,dir_user,dir_user_role" ]' "only dir_* tables (got $got)"
  check '[ "$(sql $D "select count(*) from dir_user_role")" = 100 ]' "user roles copied after users and roles"
  check '[ "$(checksum $S)" = "$before" ]' "source unchanged"
  newdb ${S}2
  config n.json ${S}2 $D '"users": true' ''
  ferry run n.json
  has "no dir_* table" "no directory tables: clear error"
  ;;

create_columns)
  newdb $S; newdb $D
  sql $S "CREATE TABLE app_fd_leave (id varchar(255) PRIMARY KEY, datecreated timestamp, createdby varchar(255),
                                     c_days text, c_reason text, c_extra text);
          INSERT INTO app_fd_leave SELECT 'l' || g, '2024-01-01'::timestamp + g * interval '1 hour', 'admin',
                                          g::text, 'r' || g, 'e' || g FROM generate_series(1, 50) g;
          CREATE TABLE app_fd_claim (id varchar(255) PRIMARY KEY, c_amount text, c_new text);
          INSERT INTO app_fd_claim SELECT 'c' || g, g::text, 'n' FROM generate_series(1, 30) g;"
  sql $D "CREATE TABLE app_fd_claim (id varchar(255) PRIMARY KEY, c_amount text)"
  before=$(checksum $S)
  config r.json $S $D '"patterns": ["app_fd_claim"]' '"missing_columns": "refuse"'
  ferry run r.json
  check '[ "$rc" = 1 ]' "a missing column with policy refuse fails its items (exit $rc)"
  has 'lacks column(s) "c_new"' "the missing column is named"
  check '[ "$(sql $D "select count(*) from app_fd_claim")" = 0 ]' "nothing of the refused table was written"
  config c.json $S $D '"patterns": ["app_fd_%"]' ''
  ferry run c.json
  expect_rc 0 "missing table created, missing column added"
  check '[ "$(sql $D "select format_type(atttypid, atttypmod) from pg_attribute where attrelid = '"'"'app_fd_claim'"'"'::regclass and attname = '"'"'c_new'"'"'")" = text ]' \
    "column c_new added as text"
  cols=$(sql $D "select string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' order by attnum)
                 from pg_attribute where attrelid = 'app_fd_leave'::regclass and attnum > 0")
  check '[ "$cols" = "id character varying(255), datecreated timestamp without time zone, createdby character varying(255), c_days text, c_reason text, c_extra text" ]' \
    "created table has the source's layout (got $cols)"
  pk=$(sql $D "select string_agg(a.attname, ',') from pg_index i join pg_attribute a on a.attrelid = i.indrelid
               and a.attnum = any(i.indkey) where i.indrelid = 'app_fd_leave'::regclass and i.indisprimary")
  check '[ "$pk" = id ]' "created table has the primary key (got $pk)"
  check '[ "$(checksum $D)" = "$before" ]' "target equals source"
  # Joget's layout on request
  newdb ${D}2
  config j.json $S ${D}2 '"tables": ["app_fd_claim"]' '"create_tables": "joget"'
  ferry run j.json
  expect_rc 0 "create_tables joget"
  cols=$(sql ${D}2 "select string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' order by attnum)
                    from pg_attribute where attrelid = 'app_fd_claim'::regclass and attnum > 0")
  check '[ "$cols" = "id character varying(255), c_amount text, c_new text" ]' "Joget layout (got $cols)"
  config x.json $S ${D}2 '"tables": ["app_fd_leave"]' '"create_tables": "refuse"'
  ferry run x.json
  check '[ "$rc" = 1 ]' "create_tables refuse fails the items"
  has 'does not exist on the target' "missing table refused with a reason"
  # column_map and table_map
  newdb ${D}3
  sql ${D}3 "CREATE TABLE leave2 (id varchar(255) PRIMARY KEY, datecreated timestamptz, createdby varchar(255),
                                  c_days_count text, c_reason text)"
  config m.json $S ${D}3 '"tables": ["app_fd_leave"]' \
    '"table_map": {"app_fd_leave": "leave2"}, "column_map": {"app_fd_leave": {"c_days": "c_days_count", "c_extra": null}}'
  ferry run m.json
  expect_rc 0 "table_map and column_map"
  check '[ "$(sql ${D}3 "select count(*) from leave2 where c_days_count = substr(id, 2)")" = 50 ]' "mapped column filled"
  ferry verify m.json
  expect_rc 0 "verify with maps (timestamp into timestamptz)"
  check '[ "$(checksum $S)" = "$before" ]' "source unchanged"
  ;;

incompatible)
  newdb $S; newdb $D
  sql $S "CREATE TABLE app_fd_t (id varchar(255) PRIMARY KEY, c_amount text, c_n integer, c_big bigint, c_d date);
          INSERT INTO app_fd_t SELECT 't' || g, g::text, g, g, '2024-01-01' FROM generate_series(1, 40) g"
  sql $D "CREATE TABLE app_fd_t (id varchar(255) PRIMARY KEY, c_amount integer, c_n bigint, c_big bigint, c_d date);
          INSERT INTO app_fd_t VALUES ('keep', 1, 1, 1, '2020-01-01')"
  dbefore=$(checksum $D)
  config c.json $S $D '"tables": ["app_fd_t"], "batch_rows": 10' ''
  ferry run c.json
  check '[ "$rc" = 1 ]' "incompatible column fails (exit $rc)"
  has 'column "c_amount" is integer on the target but text on the source' "table, column and both types named"
  has '"public"."app_fd_t"' "table named"
  check '[ "$(checksum $D)" = "$dbefore" ]' "target unchanged: refused before any row"
  check '[ "$(report c.json "r[\"totals\"][\"failed\"]")" = 4 ]' "every batch of the table fails"
  ferry plan c.json
  check '[ "$rc" = 3 ]' "plan: blocked (exit $rc)"
  has 'incompatible' "plan says why"
  # widening is fine: integer -> bigint, text -> varchar
  sql $D "DROP TABLE app_fd_t; CREATE TABLE app_fd_t (id text PRIMARY KEY, c_amount varchar(10), c_n numeric,
                                                       c_big numeric(20,0), c_d timestamp)"
  ferry run c.json
  expect_rc 0 "compatible widening types"
  ferry verify c.json
  expect_rc 0 "verify across widened types"
  ;;

conflicts)
  newdb $S; newdb $D
  sql $S "CREATE TABLE app_fd_c (id varchar(255) PRIMARY KEY, c_a text, c_b text);
          INSERT INTO app_fd_c SELECT 'k' || g, 'a' || g, 'b' || g FROM generate_series(1, 60) g"
  sql $D "CREATE TABLE app_fd_c (id varchar(255) PRIMARY KEY, c_a text, c_b text, c_target_only text);
          INSERT INTO app_fd_c VALUES ('k7', 'a7', 'b7', 'mine'), ('k8', 'CHANGED', 'b8', 'mine'),
                                      ('zz', 'target row', NULL, NULL)"
  before=$(checksum $S)
  dbefore=$(checksum $D)
  config f.json $S $D '"tables": ["app_fd_c"], "batch_rows": 1000' '"on_conflict": "fail"'
  ferry plan f.json
  check '[ "$rc" = 3 ]' "plan with on_conflict fail and a differing row: blocked (exit $rc)"
  ferry run f.json
  check '[ "$rc" = 1 ]' "on_conflict fail: the batch fails (exit $rc)"
  has 'keys: k8' "the conflicting key is named (and only it: k7 is identical)"
  lacks 'k7' "an identical row is not a conflict"
  check '[ "$(checksum $D)" = "$dbefore" ]' "nothing of the failed batch was written"
  # "conflict" is the deprecated name of "on_conflict": still taken, with a warning naming the sink
  config s.json $S $D '"tables": ["app_fd_c"]' '"conflict": "skip"'
  ferry run s.json
  expect_rc 0 "conflict skip (the deprecated name)"
  has 'sink "pgsql" options: option "conflict" is deprecated: write "on_conflict"' "deprecation warning"
  check '[ "$(grep -c "is deprecated" "$T/out")" = 1 ]' "the deprecation warning is logged once"
  check '[ "$(sql $D "select c_a || c_target_only from app_fd_c where id = '"'"'k8'"'"'")" = CHANGEDmine ]' "skip keeps the target row"
  check '[ "$(sql $D "select count(*) from app_fd_c")" = 61 ]' "the other rows inserted"
  check '[ "$(report s.json "[i for i in r[\"stages\"][0][\"items\"] if i[\"status\"] == \"failed\"]")" = "[]" ]' "no failed item"
  config o.json $S $D '"tables": ["app_fd_c"]' '"on_conflict": "overwrite"'
  x7=$(sql $D "select xmin from app_fd_c where id = 'k7'")
  ferry run o.json
  expect_rc 0 "on_conflict overwrite"
  check '[ "$(sql $D "select c_a || c_target_only from app_fd_c where id = '"'"'k8'"'"'")" = a8mine ]' \
    "overwrite replaces the source's columns, keeps the target's own column"
  check '[ "$(sql $D "select xmin from app_fd_c where id = '"'"'k7'"'"'")" = "$x7" ]' "an identical row is not rewritten"
  check '[ "$(sql $D "select c_a from app_fd_c where id = '"'"'zz'"'"'")" = "target row" ]' "rows only on the target stay"
  check '[ "$(checksum $S)" = "$before" ]' "source unchanged"
  ;;

rerun)
  newdb $S; newdb $D
  sql $S "CREATE TABLE app_fd_r (id varchar(255) PRIMARY KEY, c_a text);
          INSERT INTO app_fd_r SELECT md5(g::text), repeat('v', g % 300) FROM generate_series(1, 3000) g"
  before=$(checksum $S)
  config c.json $S $D '"tables": ["app_fd_r"], "batch_rows": 400, "batch_bytes": 20000' ''
  ferry run c.json
  expect_rc 0 "first run"
  after=$(checksum $D)
  check '[ "$after" = "$before" ]' "target equals source"
  xmins=$(sql $D "select md5(string_agg(xmin::text, ',' order by id)) from app_fd_r")
  ferry run c.json
  expect_rc 0 "second run (journal)"
  check '[ "$(report c.json "r[\"totals\"][\"resumed\"]")" = "$(report c.json "r[\"stages\"][0][\"total\"]")" ]' \
    "second run: every batch already done"
  rm -f c.db
  ferry run c.json
  expect_rc 0 "third run (journal removed)"
  check '[ "$(report c.json "r[\"totals\"][\"skipped\"] == r[\"stages\"][0][\"taken\"]")" = True ]' \
    "without a journal every batch is skipped (nothing to write)"
  xmins2=$(sql $D "select md5(string_agg(xmin::text, ',' order by id)) from app_fd_r")
  check '[ "$xmins2" = "$xmins" ]' "re-runs changed no row (same xmin)"
  check '[ "$(checksum $D)" = "$after" ]' "target unchanged by re-runs"
  # the same batch keys every run: the byte rule depends on the data only
  keys1=$(report c.json "sorted(i['key'] for i in r['stages'][0]['items'])")
  check '[ "$(report c.json "r[\"stages\"][0][\"total\"]")" -gt 7 ]' "batches cut by bytes as well as rows"
  # a canary run with --limit 1 on a fresh target, then the rest
  newdb ${D}2
  config l.json $S ${D}2 '"tables": ["app_fd_r"], "batch_rows": 400, "batch_bytes": 20000' ''
  ferry run l.json --limit 1
  expect_rc 0 "canary"
  check '[ "$(sql ${D}2 "select count(*) > 0 and count(*) <= 400 from app_fd_r")" = t ]' "canary wrote one batch"
  ferry run l.json
  expect_rc 0 "the rest after the canary"
  check '[ "$(checksum ${D}2)" = "$before" ]' "target equals source after canary + run"
  check '[ "$(checksum $S)" = "$before" ]' "source unchanged"
  ;;

quoting)
  newdb $S; newdb $D
  sql $S 'CREATE TABLE "Odd ""Table"" Name" ("Key Col" text PRIMARY KEY, "UPPER" text, "with;semi" text,
                                              "tab	in" text);
          CREATE TABLE "app_fd_x""; DROP TABLE victim; --" (id text PRIMARY KEY);
          CREATE TABLE victim (id int PRIMARY KEY);'
  sql $S "INSERT INTO \"Odd \"\"Table\"\" Name\" VALUES ('it''s', 'TAB\there', E'new\\nline', E'back\\\\slash'),
            ('naïve ✓', NULL, '', ' '), (E'\\\\N', 'x', '\\N', 'NULL');
          INSERT INTO \"app_fd_x\"\"; DROP TABLE victim; --\" VALUES ('a'), ('b');
          INSERT INTO victim VALUES (1)"
  before=$(checksum $S)
  config c.json $S $D '"patterns": ["%"], "batch_rows": 1' ''
  ferry run c.json
  expect_rc 0 "identifiers with quotes, spaces, upper case and semicolons"
  check '[ "$(checksum $D)" = "$before" ]' "every value copied exactly (NULL vs empty vs \\N)"
  check '[ "$(sql $S "select count(*) from victim")" = 1 ]' "no injection on the source"
  check '[ "$(sql $D "select count(*) from victim")" = 1 ]' "no injection on the target"
  ferry verify c.json
  expect_rc 0 "verify of quoted identifiers"
  check '[ "$(checksum $S)" = "$before" ]' "source unchanged"
  ;;

values)
  newdb $S; newdb $D
  sql $S "CREATE TABLE v (id int PRIMARY KEY, ts timestamp, tz timestamptz, d date, n numeric(12,4), f float8,
                          r real, b bool, by bytea, j json, jb jsonb, arr text[], iarr int[], u uuid, iv interval,
                          t time, big bigint);
          INSERT INTO v SELECT g, '2024-03-01 10:00:00'::timestamp + g * interval '1 minute',
                 '2024-03-01 10:00:00+02'::timestamptz + g * interval '1 second', '2024-01-01'::date + g,
                 g / 7.0, g / 3.0, g / 3.0, g % 2 = 0, decode(md5(g::text), 'hex'), '{\"a\": [1, 2]}',
                 jsonb_build_object('k', g), ARRAY['x', NULL, 'y\"z'], ARRAY[g, g + 1],
                 md5(g::text)::uuid, g * interval '1 day 3 hours', '12:34:56', 9007199254740993 + g
          FROM generate_series(1, 500) g;
          INSERT INTO v (id) VALUES (0)"
  before=$(checksum $S)
  config c.json $S $D '"tables": ["v"], "batch_rows": 64, "timezone": "America/New_York"' '"timezone": "America/New_York"'
  ferry run c.json
  expect_rc 0 "every common type"
  check '[ "$(checksum $D)" = "$before" ]' "values equal (timestamps, floats, bytea, json, arrays, NULLs)"
  ferry verify c.json
  expect_rc 0 "verify typed values"
  check '[ "$(checksum $S)" = "$before" ]' "source unchanged"
  ;;

bad_dsn)
  newdb $S
  sql $S "CREATE TABLE t (id int PRIMARY KEY)"
  # unreachable server
  cat > u.json <<JSON
{"journal": "u.db", "stages": [{"name": "forms",
  "source": {"plugin": "pgsql", "options": {"dsn": "host=127.0.0.1 port=1 user=ferry password=Sup3rS3cret dbname=x connect_timeout=3", "tables": ["t"]}},
  "sink": {"plugin": "pgsql", "options": {"dsn": "$(dsn $S)"}}}]}
JSON
  ferry run u.json
  check '[ "$rc" != 0 ]' "unreachable source fails (exit $rc)"
  has "cannot connect to PostgreSQL 127.0.0.1:1/x" "unreachable server named (host:port/db)"
  lacks "Sup3rS3cret" "the password never appears"
  # a database that does not exist
  sed "s/port=1 user=ferry password=Sup3rS3cret dbname=x/port=$PORT user=ferry dbname=no_such_db/" u.json > n.json
  ferry run n.json
  check '[ "$rc" != 0 ]' "missing database fails"
  has "database does not exist" "missing database explained"
  # sink: unreachable target: every item fails with the reason, after the core's retries
  cat > k.json <<JSON
{"journal": "k.db", "stages": [{"name": "forms", "retry": {"max": 1, "base_ms": 10},
  "source": {"plugin": "pgsql", "options": {"dsn": "$(dsn $S)", "tables": ["t"]}},
  "sink": {"plugin": "pgsql", "options": {"dsn": "host=127.0.0.1 port=1 user=ferry password=Sup3rS3cret dbname=y connect_timeout=3"}}}]}
JSON
  ferry run k.json
  check '[ "$rc" = 1 ]' "unreachable target fails the items (exit $rc)"
  has "cannot connect to PostgreSQL 127.0.0.1:1/y" "target named"
  lacks "Sup3rS3cret" "the password never appears (sink)"
  # syntax
  sed 's/"host=127.0.0.1 port=1 user=ferry password=Sup3rS3cret dbname=x connect_timeout=3"/"host=x password=Sup3rS3cret nosuchkey=1"/' u.json > s.json
  ferry run s.json
  check '[ "$rc" = 2 ]' "a malformed dsn is a configuration error (exit $rc)"
  has 'option "dsn" is not a valid libpq connection string' "malformed dsn explained"
  lacks "Sup3rS3cret" "the password never appears (syntax)"
  # options
  config o.json $S $S '"tables": ["t"], "batch_rows": 0' ''
  ferry run o.json
  check '[ "$rc" = 2 ]' "bad option value"
  has '"batch_rows": must be 1 or more, found 0' "bad option named"
  config p.json $S $S '' ''
  ferry run p.json
  has 'nothing selected' "a source without a selection"
  config q.json $S $S '"tables": ["t"]' '"on_conflict": "merge"'
  ferry run q.json
  check '[ "$rc" = 2 ]' "bad on_conflict value (exit $rc)"
  has 'sink "pgsql" options: "on_conflict": must be one of "skip", "overwrite", "fail", found "merge"' \
    "bad conflict policy named with the allowed values"
  config q2.json $S $S '"tables": ["t"]' '"conflict": "merge"'
  ferry run q2.json
  has '"conflict": must be one of "skip", "overwrite", "fail", found "merge"' "bad value under the deprecated name"
  config q3.json $S $S '"tables": ["t"]' '"conflict": "skip", "on_conflict": "fail"'
  ferry run q3.json
  check '[ "$rc" = 2 ]' "both names of one option (exit $rc)"
  has 'both "conflict" and "on_conflict" are given' "both names refused"
  config q4.json $S $S '"tables": ["t"], "on_conflict": "skip"' ''
  ferry run q4.json
  check '[ "$rc" = 2 ]' "a sink option on the source (exit $rc)"
  has 'source "pgsql" options: option "on_conflict" applies to the sink only (this is the source)' \
    "a sink option on the source refused"
  config q5.json $S $S '"tables": ["t"]' '"tables": ["t"]'
  ferry run q5.json
  has 'sink "pgsql" options: option "tables" applies to the source only (this is the sink)' \
    "a source option on the sink refused"
  config q6.json $S $S '"tables": ["t"], "count": "all"' ''
  ferry run q6.json
  has '"count": must be one of "estimate", "exact", "none", found "all"' "bad count named"
  config q7.json $S $S '"tables": ["t"], "connections": 1001' ''
  ferry run q7.json
  has '"connections": must be between 0 and 1000, found 1001' "connections out of range"
  ;;

plan)
  newdb $S; newdb $D
  sql $S "CREATE TABLE app_fd_p (id varchar(255) PRIMARY KEY, c_a text, c_new text);
          INSERT INTO app_fd_p SELECT 'p' || g, 'a', 'n' FROM generate_series(1, 25) g;
          CREATE TABLE app_fd_q (id varchar(255) PRIMARY KEY, c_a text);
          INSERT INTO app_fd_q SELECT 'q' || g, 'a' FROM generate_series(1, 5) g"
  sql $D "CREATE TABLE app_fd_p (id varchar(255) PRIMARY KEY, c_a text); INSERT INTO app_fd_p VALUES ('p1', 'a')"
  before=$(checksum $S)
  catalog() { sql $D "select md5(string_agg(c.relname || ':' || a.attname, ',' order by 1)) from pg_class c
                      join pg_attribute a on a.attrelid = c.oid where c.relnamespace = 'public'::regnamespace"; }
  cat0=$(catalog); d0=$(checksum $D)
  config c.json $S $D '"patterns": ["app_fd_%"]' ''
  ferry plan c.json
  expect_rc 0 "plan"
  check '[ ! -e c.db ]' "plan creates no journal"
  check '[ "$(catalog)" = "$cat0" ] && [ "$(checksum $D)" = "$d0" ]' "plan writes nothing on the target"
  would=$(report c.json "[i['report']['would'] for i in r['stages'][0]['items']]")
  echo "$would" | grep -q 'create the table' && ok || bad "plan reports the table it would create ($would)"
  echo "$would" | grep -q 'add column(s) \"c_new\"' && ok || bad "plan reports the column it would add ($would)"
  echo "$would" | grep -q '1 identical row(s) already there' && ok || bad "plan counts rows already there ($would)"
  check '[ "$(checksum $S)" = "$before" ]' "source unchanged"
  ;;

verify)
  newdb $S; newdb $D
  sql $S "CREATE TABLE app_fd_v (id varchar(255) PRIMARY KEY, c_a text, c_b text);
          INSERT INTO app_fd_v SELECT 'v' || g, 'a' || g, 'b' || g FROM generate_series(1, 300) g"
  config c.json $S $D '"tables": ["app_fd_v"], "batch_rows": 100' ''
  ferry run c.json
  expect_rc 0 "run"
  ferry verify c.json
  expect_rc 0 "verify after a run"
  sql $D "UPDATE app_fd_v SET c_b = 'changed' WHERE id = 'v42'; DELETE FROM app_fd_v WHERE id = 'v250'"
  ferry verify c.json
  check '[ "$rc" = 4 ]' "verify finds differences (exit $rc)"
  has 'v42 (differs in c_b)' "the changed row and column are named"
  has 'v250 (missing)' "the missing row is named"
  check '[ "$(report c.json "r[\"totals\"][\"mismatched\"]")" = 2 ]' "two batches differ"
  ;;

kill_resume)
  # a run killed with SIGKILL in the middle, then resumed: nothing missing, nothing twice, journal consistent
  newdb $S; newdb $D
  sql $S "CREATE TABLE app_fd_k (id varchar(255) PRIMARY KEY, c_a text);
          INSERT INTO app_fd_k SELECT md5(g::text), repeat('k', g % 200) FROM generate_series(1, 60000) g"
  sql $D "CREATE TABLE app_fd_k (id varchar(255) PRIMARY KEY, c_a text)"
  before=$(checksum $S)
  CONC=2 config c.json $S $D '"tables": ["app_fd_k"], "batch_rows": 200' ''
  "$FERRY" run --config c.json --progress none >"$T/out1" 2>&1 &
  pid=$!
  deadline=$((SECONDS + 60))
  while kill -0 $pid 2>/dev/null && [ $SECONDS -lt $deadline ]; do
    n=$(sql $D "select count(*) from app_fd_k")
    [ "$n" -gt 2000 ] && break
  done
  killed=0
  if kill -9 $pid 2>/dev/null; then killed=1; fi
  wait $pid 2>/dev/null
  n=$(sql $D "select count(*) from app_fd_k")
  echo "killed=$killed with $n rows on the target"
  ferry run c.json
  expect_rc 0 "resumed run"
  check '[ "$(checksum $D)" = "$before" ]' "after the resume the target equals the source"
  check '[ "$(report c.json "r[\"totals\"][\"resumed\"] > 0 or not $killed")" = True ]' \
    "the resumed run skipped the batches the killed run had finished"
  ferry verify c.json
  expect_rc 0 "verify after resume"
  check '[ "$(checksum $S)" = "$before" ]' "source unchanged"
  ;;

rows_items)
  # items from another source (jsonl) with "rows" and no types: the sink creates Joget's layout
  newdb $D
  cat > in.jsonl <<'JSONL'
{"kind":"record","key":"app_fd_j:1","body":{"table":"app_fd_j","columns":["id","datecreated","c_name","c_n"],"key_columns":["id"],"rows":[["1","2024-01-01 00:00:00","tab\there",3],["2",null,"x",4.5]],"row_count":2}}
{"kind":"record","key":"app_fd_j:2","body":{"table":"app_fd_j","columns":["id","datecreated","c_name","c_n"],"key_columns":["id"],"rows":[["3","2024-01-02 00:00:00","y",true]],"row_count":1}}
{"kind":"record","key":"bad","body":{"table":"app_fd_j","columns":["id"],"rows":[["1","2"]]}}
JSONL
  cat > c.json <<JSON
{"journal": "c.db", "report": "c.report.json", "stages": [{"name": "in",
  "source": {"plugin": "jsonl", "options": {"path": "in.jsonl"}},
  "sink": {"plugin": "pgsql", "options": {"dsn": "$(dsn $D)"}}}]}
JSON
  ferry run c.json
  check '[ "$rc" = 1 ]' "one bad item fails (exit $rc)"
  has 'item "bad"' "the bad item is named"
  has 'row 0 is not an array of 1 values' "the bad row is explained"
  cols=$(sql $D "select string_agg(attname || ' ' || format_type(atttypid, atttypmod), ', ' order by attnum)
                 from pg_attribute where attrelid = 'app_fd_j'::regclass and attnum > 0")
  check '[ "$cols" = "id character varying(255), datecreated timestamp without time zone, c_name text, c_n text" ]' \
    "Joget layout for items without types (got $cols)"
  check '[ "$(sql $D "select string_agg(id || '"'"'='"'"'|| coalesce(c_name, '"'"'-'"'"') || '"'"'/'"'"' || c_n, '"'"','"'"' order by id) from app_fd_j")" = "1=tab	here/3,2=x/4.5,3=y/t" ]' \
    "row values written"
  ;;

*) echo "unknown case $CASE"; exit 2 ;;
esac

echo "[$CASE] $passes passed, $fails failed"
[ "$fails" = 0 ]
