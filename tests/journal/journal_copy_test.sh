#!/usr/bin/env bash
# ferry journal copy between SQLite and PostgreSQL, through the CLI (label journal-pg):
# a jsonl pipeline (with a canary run) and the test-mapper pipeline (id map, verify marks)
# run on an SQLite journal; copied to PostgreSQL, and back to a new SQLite file; status --items --json,
# export-map and the runs are the same on all three; a non-empty target is refused, --replace replaces;
# a run resumed on the copy does nothing again and gets the next run id.
#   journal_copy_test.sh <ferry> <plugin dir> <pgfixture state file>
set -uo pipefail
FERRY=$1
export FERRY_PLUGIN_PATH=$2
PORT=$(sed -n 3p "$3")
T=$(mktemp -d /tmp/ferry-jcopy.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$T/out" 2>&1
  local got=$?
  if [ "$got" = "$want" ]; then ok; else bad "$what: exit $got, expected $want"; sed 's/^/    /' "$T/out" | head -20; fi
}
newdb() {
  psql -q -X -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PORT user=ferry dbname=postgres" \
    -c "DROP DATABASE IF EXISTS $1" -c "CREATE DATABASE $1" >/dev/null || exit 1
  echo "postgresql://ferry@127.0.0.1:$PORT/$1"
}
cd "$T"
for i in $(seq 1 40); do printf '{"kind":"record","key":"r%03d","body":{"n":%d}}\n' "$i" "$i"; done > in.jsonl
cat > ferry.json <<JSON
{"journal": "j.db", "report": "report.json",
 "stages": [{"name": "copy", "source": {"plugin": "jsonl", "options": {"path": "in.jsonl"}},
             "sink": {"plugin": "jsonl", "options": {"path": "out.jsonl"}}},
            {"name": "maps", "source": {"plugin": "test-mapper", "options": {"count": 5}},
             "sink": {"plugin": "test-mapper", "options": {"log": "sink.log", "differ": ["k2"], "repair_fail": []}}}]}
JSON
expect 0 "canary" -- "$FERRY" run --limit 1 --progress none
"$FERRY" run --progress none >/dev/null 2>&1
"$FERRY" verify --progress none >/dev/null 2>&1
# what a journal holds, as the CLI shows it (times and the journal's name left out of nothing: all compared)
view() {
  { "$FERRY" status --items --json --journal "$1"; "$FERRY" export-map --format json --journal "$1"
    "$FERRY" status --json --journal "$1" | python3 -c 'import json,sys; d=json.load(sys.stdin); d.pop("journal", None); print(json.dumps(d, sort_keys=True))'
  } 2>&1
}
view j.db > sqlite.view
python3 - sqlite.view <<'PY' && ok || bad "the SQLite journal does not hold what the test needs: $(head -c 300 sqlite.view)"
import json, sys
txt = open(sys.argv[1]).read()
assert '"mismatch"' in txt and '"r-k1"' in txt and "r040" in txt, txt[:200]
PY
PG=$(newdb jcopy_a)
expect 0 "copy SQLite -> PostgreSQL" -- "$FERRY" journal copy j.db "$PG"
grep -q "copied 45 items, 10 id mappings and 3 runs" "$T/out" && ok || bad "copy counts: $(cat "$T/out")"
view "$PG" > pg.view
cmp -s sqlite.view pg.view && ok || { bad "the PostgreSQL copy shows differently"; diff sqlite.view pg.view | head -10; }
sqlite3 j.db "select id, mode, started, ended, status, summary from runs order by id" > runs.sqlite
psql -X -At -F '|' "$PG" -c "select id, mode, started, ended, status, summary from runs order by id" > runs.pg
cmp -s runs.sqlite runs.pg && ok || { bad "runs differ"; diff runs.sqlite runs.pg | head -5; }
sqlite3 j.db "select stage, key, status, step, state, attempts, error, error_code, created, updated, report, verify, run from items order by stage, key" > items.sqlite
psql -X -At -F '|' "$PG" -c "select stage, key, status, step, state, attempts, error, error_code, created, updated, report, verify, run from items order by stage, key" > items.pg
cmp -s items.sqlite items.pg && ok || { bad "item rows differ"; diff items.sqlite items.pg | head -5; }
# a non-empty target is refused, and nothing in it changes; --replace replaces
expect 6 "copy into a non-empty target" -- "$FERRY" journal copy j.db "$PG"
grep -q "not empty" "$T/out" && grep -q -- "--replace" "$T/out" && ok || bad "refusal not explained: $(cat "$T/out")"
expect 0 "copy --replace" -- "$FERRY" journal copy --replace j.db "$PG"
view "$PG" > pg2.view
cmp -s sqlite.view pg2.view && ok || bad "--replace did not give the same journal"
# and back to a new SQLite file
expect 0 "copy PostgreSQL -> SQLite" -- "$FERRY" journal copy "$PG" back.db
view back.db > back.view
cmp -s sqlite.view back.view && ok || { bad "the copy back shows differently"; diff sqlite.view back.view | head -10; }
sqlite3 back.db "select id, mode, started, ended, status, summary from runs order by id" > runs.back
cmp -s runs.sqlite runs.back && ok || bad "runs differ after the copy back"
expect 2 "usage" -- "$FERRY" journal copy j.db
expect 2 "--replace elsewhere" -- "$FERRY" status --replace
expect 6 "missing source" -- "$FERRY" journal copy nope.db x.db
grep -q "nope.db" "$T/out" && ok || bad "missing source not named"
[ ! -e x.db ] && ok || bad "a failed copy created its target"
# the migration goes on with the PostgreSQL journal: nothing is done again, the next run id follows
: > sink.log
cp out.jsonl out.before
expect 0 "run on the copy" -- "$FERRY" run --journal "$PG" --progress none
cmp -s out.jsonl out.before && ok || bad "the run on the copy wrote the target again"
[ ! -s sink.log ] && ok || bad "the run on the copy handed items to the sink: $(cat sink.log)"
[ "$(psql -X -At "$PG" -c "select max(id) from runs")" = 4 ] && ok || bad "the next run id is not 4"
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
