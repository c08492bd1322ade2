#!/usr/bin/env bash
# End-to-end tests of the ferry CLI: usage and exit codes, a jsonl pipeline through plan/run/verify/status,
# resume without duplicates, bad input errors, a planted secret that must appear in no output, and (with the
# fixture test-mapper) verify marks, run --repair, status --items and export-map.
#   cli_test.sh <path to ferry> <plugin dir> [PGSTATE]
# With PGSTATE (a tests/support/pgfixture.sh state file) the pipeline and the mapper sections use PostgreSQL
# journals (--journal/"journal": "postgresql://...", one new database each) instead of SQLite files.
set -uo pipefail
FERRY=$1
export FERRY_PLUGIN_PATH=$2
PGSTATE=${3:-}
PGPORT=${PGSTATE:+$(sed -n 3p "$PGSTATE")}
# jr NAME: the journal of a section: j.db, or a new PostgreSQL database's URL
jr() {
  if [ -z "$PGSTATE" ]; then echo j.db; return; fi
  local db="cli_$1_$$"
  psql -q -X -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PGPORT user=ferry dbname=postgres" \
    -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1 || { echo "cannot create $db" >&2; exit 1; }
  echo "postgresql://ferry@127.0.0.1:$PGPORT/$db"
}
# jexists JOURNAL: 0 when the journal was created (the file, or the tables)
jexists() {
  if [ -z "$PGSTATE" ]; then [ -e "$1" ]; return; fi
  [ "$(psql -X -At "$1" -c "select count(*) from pg_tables where tablename = 'ferry_journal'" 2>/dev/null)" = 1 ]
}
T=$(mktemp -d /tmp/ferry-cli-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect CODE DESCRIPTION -- command...   (stdout+stderr go to $T/out)
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$T/out" 2>&1
  local got=$?
  if [ "$got" = "$want" ]; then ok; else bad "$what: exit $got, expected $want"; sed 's/^/    /' "$T/out" | head -20; fi
}
has() { if grep -q -- "$1" "$T/out"; then ok; else bad "$2: output lacks '$1'"; sed 's/^/    /' "$T/out" | head -20; fi; }

# ---- usage and exit codes -------------------------------------------------------------------------------
expect 0 "help" -- "$FERRY" --help
has "exit codes" "help lists exit codes"
has "export-map" "help lists export-map"
has "\-\-repair" "help mentions run --repair"
for c in plan run verify status export-map plugins version report; do
  expect 0 "$c --help" -- "$FERRY" "$c" --help
  has "usage: ferry $c" "$c --help"
done
expect 0 "run --help" -- "$FERRY" run --help
has "\-\-html FILE" "run --help describes --html"
expect 2 "report without --html" -- "$FERRY" report --journal "$T/none.db"
has "needs --html FILE" "report without --html: said"
expect 2 "--html on status" -- "$FERRY" status --html "$T/x.html"
has "\-\-html is an option of" "--html on status: said"
expect 2 "--run outside report" -- "$FERRY" status --run 1
expect 2 "report --run 0" -- "$FERRY" report --html "$T/x.html" --run 0
expect 6 "report: no journal" -- "$FERRY" report --journal "$T/none.db" --html "$T/x.html"
has "$T/none.db" "report: the missing journal is named"
if [ -e "$T/x.html" ] || [ -e "$T/x.html.tmp" ]; then bad "report: a failed report left a file"; else ok; fi
expect 2 "no command" -- "$FERRY"
expect 2 "unknown command" -- "$FERRY" frobnicate
has 'unknown command "frobnicate"' "unknown command named"
expect 2 "unknown option" -- "$FERRY" run --frob
has "unknown option --frob" "unknown option named"
expect 2 "bad limit" -- "$FERRY" run --limit 0
has "--limit takes a whole number" "bad limit explained"
expect 0 "version" -- "$FERRY" version
has "plugin ABI 1\.[0-9]" "version shows the ABI"
expect 0 "verify --help" -- "$FERRY" verify --help
has "Writes the journal" "verify --help says it writes the journal"
has "run lock" "verify --help says it takes the run lock"
expect 0 "run --help" -- "$FERRY" run --help
has "\-\-repair" "run --help describes --repair"
expect 0 "status --help" -- "$FERRY" status --help
has "\-\-items" "status --help describes --items"
expect 0 "export-map --help" -- "$FERRY" export-map --help
has "\-\-format FMT" "export-map --help describes --format"
has "RFC 4180" "export-map --help names the CSV rules"
expect 2 "plan --repair" -- "$FERRY" plan --repair
has "only" "plan --repair refused with a reason"
expect 2 "verify --repair" -- "$FERRY" verify --repair
expect 2 "status --stage without --items" -- "$FERRY" status --stage x
has "\-\-items" "status --stage explains"
expect 2 "export-map --repair" -- "$FERRY" export-map --repair
expect 2 "run --format" -- "$FERRY" run --format csv

# ---- config errors --------------------------------------------------------------------------------------
printf '{\n  "stages": [\n    { "name": "x",, }\n  ]\n}\n' > "$T/syntax.json"
expect 2 "syntax error" -- "$FERRY" run --config "$T/syntax.json"
has "syntax.json:3:" "syntax error has file:line:column"
expect 2 "missing config" -- "$FERRY" run --config "$T/nope.json"
has "nope.json" "missing config named"
cat > "$T/unknown-opt.json" <<JSON
{"stages": [{"name": "s", "source": {"plugin": "jsonl", "options": {"path": "a.jsonl", "pth": 1}},
             "sink": {"plugin": "jsonl", "options": {"path": "b.jsonl"}}}]}
JSON
expect 2 "unknown plugin option" -- "$FERRY" run --config "$T/unknown-opt.json"
has '"pth"' "unknown option key named"
has "path" "valid keys listed"
cat > "$T/unknown-plugin.json" <<JSON
{"stages": [{"name": "s", "source": {"plugin": "nosuchplugin"}, "sink": {"plugin": "jsonl", "options": {"path": "b"}}}]}
JSON
expect 2 "unknown plugin" -- "$FERRY" run --config "$T/unknown-plugin.json"
has "nosuchplugin" "unknown plugin named"

# ---- plugins --------------------------------------------------------------------------------------------
expect 0 "plugins" -- "$FERRY" plugins
has "jsonl" "plugins lists jsonl"
expect 0 "describe jsonl" -- "$FERRY" plugins --describe jsonl
has "path" "describe shows options"
has "(required)" "describe marks required options"
has "(source only; 16 or more)" "describe shows an option's role and range"
expect 0 "describe pgsql" -- "$FERRY" plugins --describe pgsql
has '(sink only; one of: skip, overwrite, fail; also accepted: "conflict" (deprecated))' \
  "describe shows the choices of an enum and its deprecated name"
has "(source only; 0 to 1000)" "describe shows a two-sided range"
expect 2 "describe unknown" -- "$FERRY" plugins --describe nosuchplugin

# ---- a jsonl pipeline: plan, canary, run, resume, verify, status -----------------------------------------
mkdir -p "$T/p" && cd "$T/p"
JP=$(jr p)
for i in $(seq 1 300); do
  printf '{"kind":"record","key":"r%03d","body":{"table":"t","rows":[["%d"]]}}\n' "$i" "$i"
done > in.jsonl
cat > ferry.json <<JSON
{"journal": "$JP", "report": "report.json",
 "stages": [{"name": "copy", "source": {"plugin": "jsonl", "options": {"path": "in.jsonl"}},
             "sink": {"plugin": "jsonl", "options": {"path": "out.jsonl"}}, "concurrency": 4}]}
JSON
expect 0 "plan" -- "$FERRY" plan --config ferry.json --progress none
jexists "$JP" && bad "plan created the journal" || ok
[ ! -e out.jsonl ] && ok || bad "plan created the target file"
expect 0 "canary" -- "$FERRY" run --config ferry.json --limit 1 --progress none
[ "$(wc -l < out.jsonl)" = 1 ] && ok || bad "canary wrote $(wc -l < out.jsonl) lines"
expect 0 "run" -- "$FERRY" run --config ferry.json --progress plain
[ "$(wc -l < out.jsonl)" = 300 ] && ok || bad "run wrote $(wc -l < out.jsonl) lines, expected 300"
[ "$(sort -u out.jsonl | wc -l)" = 300 ] && ok || bad "duplicates in the target"
expect 0 "second run" -- "$FERRY" run --config ferry.json --progress none
[ "$(wc -l < out.jsonl)" = 300 ] && ok || bad "second run changed the target"
expect 0 "verify" -- "$FERRY" verify --config ferry.json --progress none
expect 0 "status" -- "$FERRY" status --config ferry.json
has "copy" "status names the stage"
has "300" "status counts 300 done"
expect 0 "status json" -- "$FERRY" status --config ferry.json --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); s=d["stages"][0]; assert s["done"]+s["skipped"]==300, s' "$T/out" && ok || bad "status --json counts"
grep -v '"key":"r150"' out.jsonl > out2 && mv out2 out.jsonl
expect 4 "verify finds a missing item" -- "$FERRY" verify --config ferry.json --progress none
has "r150" "verify names the missing key"

# ---- verify marks, run --repair, status --items, export-map (fixture test-mapper) -----------------------
mkdir -p "$T/m" && cd "$T/m"
JM=$(jr m)
# mcfg DIFFER REPAIR_FAIL: writes ferry.json with those JSON lists
mcfg() {
  cat > ferry.json <<JSON
{"journal": "$JM", "report": "report.json",
 "stages": [{"name": "copy", "source": {"plugin": "test-mapper", "options": {"count": 5}},
             "sink": {"plugin": "test-mapper", "options": {"log": "sink.log", "differ": $1, "repair_fail": $2}}}]}
JSON
}
mcfg '[]' '[]'
expect 6 "export-map: missing journal" -- "$FERRY" export-map --journal nope.db
cp "$T/out" missing-map.out
expect 6 "status: missing journal" -- "$FERRY" status --journal nope.db
has "nope.db: cannot open it" "status names the missing journal"
grep -q "nope.db: cannot open it" missing-map.out && grep -q "nothing has run yet" missing-map.out && ok \
  || bad "export-map does not give status's error for a missing journal: $(cat missing-map.out)"
expect 0 "mapper run" -- "$FERRY" run --progress none -q
python3 - report.json <<'PY' && ok || bad "run report does not list every done item with its ids"
import json, sys
r = json.load(open(sys.argv[1]))
items = {i["key"]: i for i in r["stages"][0]["items"]}
assert sorted(items) == ["k0", "k1", "k2", "k3", "k4"], items.keys()
k1 = items["k1"]
assert k1["status"] == "done" and k1["step"] == "write" and k1["report"]["target_id"] == "t-k1", k1
assert k1["ids"] == [{"kind": "file", "old": "o-k1", "new": "f-k1"},
                     {"kind": "record", "old": "o-k1", "new": "r-k1"}], k1
assert items["k4"]["report"]["adopted"] is True and items["k4"]["report"]["losses"][0]["kind"] == "deadline"
PY
# export-map: CSV (header, RFC 4180 quoting, CRLF, ISO 8601 UTC), JSON, --kind, --stage, --output
expect 0 "export-map csv" -- "$FERRY" export-map
cp "$T/out" map.csv
python3 - map.csv <<'PY' && ok || bad "export-map CSV"
import csv, re, sys
raw = open(sys.argv[1], newline="").read()
assert raw.startswith("kind,old_id,new_id,stage,key,created\r\n"), raw[:60]
assert raw.count("\r\n") == 11 and "\n" not in raw.replace("\r\n", ""), "line ends"
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
assert len(rows) == 10, len(rows)
assert [r["kind"] for r in rows] == ["file"] * 5 + ["record"] * 5, rows
k2 = [r for r in rows if r["key"] == "k2" and r["kind"] == "record"][0]
assert k2["old_id"] == 'o,"2"' and k2["new_id"] == "r-k2" and k2["stage"] == "copy", k2
assert '"o,""2"""' in raw, "quoting"
assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["created"]) for r in rows), rows[0]
PY
expect 0 "export-map json --kind record" -- "$FERRY" export-map --format json --kind record
python3 - "$T/out" <<'PY' && ok || bad "export-map JSON --kind"
import json, sys
a = json.load(open(sys.argv[1]))
assert len(a) == 5 and all(o["kind"] == "record" for o in a), a
assert set(a[0]) == {"kind", "old_id", "new_id", "stage", "key", "created"}, a[0]
assert {o["old_id"]: o["new_id"] for o in a}['o,"2"'] == "r-k2"
PY
expect 0 "export-map --kind nothing" -- "$FERRY" export-map --format json --kind process
python3 -c 'import json,sys; assert json.load(open(sys.argv[1])) == []' "$T/out" && ok || bad "unknown kind not empty"
expect 0 "export-map --output" -- "$FERRY" export-map --stage copy --output map2.csv
cmp -s map.csv map2.csv && ok || bad "export-map --stage copy --output differs from the whole map on standard output"
[ ! -e map2.csv.tmp ] && ok || bad "export-map left its temporary file"
expect 2 "export-map --stage unknown" -- "$FERRY" export-map --stage nope
has 'no stage "nope"' "unknown stage named"
has '"copy"' "the journal's stages listed"
expect 2 "export-map bad format" -- "$FERRY" export-map --format xml
has "csv or json" "bad format names the valid values"
# status --items: text (one line per item, <= 100 columns, ids as kind old -> new) and JSON
expect 0 "status --items" -- "$FERRY" status --items
has "copy/k1" "status --items lists the items"
has "copy/k1 .*target t-k1  ids: file o-k1 -> f-k1, +1 more$" "status --items: target first, then the ids that fit (kind old -> new), then how many more"
has "copy/k4 .*target t-k4  adopted  losses 1: deadline  2 ids$" "no id fits: only their number (adopted and losses come before the ids)"
has "cut at 100 columns" "status --items says when lines were cut"
[ "$(grep -c '^done ' "$T/out")" = 5 ] && ok || bad "status --items: not one line per item"
awk 'length > 100 { exit 1 }' "$T/out" && ok || bad "status --items has lines longer than 100 columns"
# verify marks k1 and k3; verify cannot run while a run holds the journal
mcfg '["k1", "k3"]' '[]'
if [ -z "$PGSTATE" ]; then
  ( exec 9>j.db-lock && flock 9 && exec sleep 30 ) & lockpid=$!   # holds the run lock as a run does
  for _ in $(seq 100); do flock -n j.db-lock true || break; sleep 0.05; done
else # the PostgreSQL run lock: the session advisory lock a run holds
  # (pg_locks covers the whole cluster, which other tests share: only this database's locks)
  THISDB=" and database = (select oid from pg_database where datname = current_database())"
  psql -X -q "$JM" -c "select pg_advisory_lock(hashtext('ferry journal ' || current_schema()))" \
    -c "select pg_sleep(30)" >/dev/null 2>&1 & lockpid=$!
  for _ in $(seq 100); do
    [ "$(psql -X -At "$JM" -c "select count(*) from pg_locks where locktype = 'advisory' and granted$THISDB")" = 1 ] && break
    sleep 0.05
  done
fi
expect 6 "verify while a run holds the journal" -- "$FERRY" verify --progress none
has "in use by another ferry run" "verify takes the run lock"
[ -n "$PGSTATE" ] && psql -X -q "$JM" -c "select pg_terminate_backend(pid) from pg_locks where locktype = 'advisory'$THISDB" >/dev/null 2>&1
kill "$lockpid" 2>/dev/null; wait "$lockpid" 2>/dev/null
expect 4 "verify finds k1 and k3 different" -- "$FERRY" verify --progress none
# the summary's column counts what is not equal on the target; the closing message splits it
grep -Eq '^  stage +equal +skipped +unequal ' "$T/out" && grep -Eq '^  copy +3 +0 +2 ' "$T/out" \
  && has "verify: 2 item(s) differ and 0 are not migrated" "verify's closing message" \
  || bad "verify summary: $(grep -A3 'verify summary' "$T/out")"
python3 - report.json <<'PY' && ok || bad "verify report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["mode"] == "verify"
st = {i["key"]: i["status"] for i in r["stages"][0]["items"]}
assert st == {"k0": "equal", "k1": "mismatched", "k2": "equal", "k3": "mismatched", "k4": "equal"}, st
PY
expect 0 "status --items --json" -- "$FERRY" status --items --json
python3 - "$T/out" <<'PY' && ok || bad "status --items --json: marks"
import json, sys
a = {i["key"]: i for i in json.load(open(sys.argv[1]))}
assert sorted(a) == ["k0", "k1", "k2", "k3", "k4"]
for k, i in a.items():
    assert (i["verify"] is not None) == (k in ("k1", "k3")), (k, i["verify"])
    for f in ("stage", "status", "step", "attempts", "error", "verify", "target_id", "adopted", "losses",
              "ids", "created"):
        assert f in i, (k, f)
m = a["k3"]["verify"]
assert m["result"] == "mismatch" and "differs" in m["message"], m
assert m["differences"] == ["field status: open vs closed", "attachment missing"], m
assert a["k4"]["adopted"] is True and a["k4"]["losses"][0]["kind"] == "deadline" and a["k4"]["target_id"] == "t-k4"
assert len(a["k2"]["ids"]) == 2 and a["k2"]["status"] == "done"
PY
expect 0 "status --items --stage" -- "$FERRY" status --items --stage copy
has "verify: mismatch (2 differences)" "status --items shows the verify mark"
expect 0 "status still plain" -- "$FERRY" status --json
python3 - "$T/out" <<'PY' && ok || bad "plain status --json changed"
import json, sys
d = json.load(open(sys.argv[1]))
assert set(d) == {"journal", "stages", "attention"} and d["stages"][0]["done"] == 5, d
PY
# run --repair: exactly k1 and k3, with repair=1 and their step; the repair of k3 fails -> exit 1
mcfg '[]' '["k3"]'
: > sink.log
expect 1 "run --repair with a failing repair" -- "$FERRY" run --repair --progress none
[ "$(sort sink.log | tr '\n' ' ')" = "k1 repair=1 step=write k3 repair=1 step=write " ] && ok \
  || bad "repair handed the sink: $(cat sink.log)"
python3 - report.json <<'PY' && ok || bad "repair report"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["repair"] is True
items = {i["key"]: i for i in r["stages"][0]["items"]}
assert items["k1"]["status"] == "done" and items["k1"]["repair"] is True and len(items["k1"]["ids"]) == 2, items["k1"]
k3 = items["k3"]
assert k3["status"] == "failed" and "refused the repair" in k3["error"] and k3["verify"], k3
assert items["k0"]["status"] == "not_selected", items["k0"]
t = r["totals"]
assert t["repaired"] == 1 and t["repair_failed"] == 1 and t["not_selected"] == 3, t
PY
expect 0 "status --items after a failed repair" -- "$FERRY" status --items
grep -q '^done\* .*copy/k3.*repair failed: test-mapper: the target refuse' "$T/out" && ok \
  || { bad "the failed repair is not shown"; sed 's/^/    /' "$T/out" | head -12; }
grep -q 'copy/k1 .*verify' "$T/out" && bad "k1 still marked after its repair" || ok
mcfg '[]' '[]'
: > sink.log
expect 0 "run --repair again" -- "$FERRY" run --repair --progress none --limit 1
[ "$(cat sink.log)" = "k3 repair=1 step=write" ] && ok || bad "second repair: $(cat sink.log)"
expect 0 "run --repair with nothing marked" -- "$FERRY" run --repair --progress none
has "nothing to repair" "an empty repair says so"
[ "$(wc -l < sink.log)" = 1 ] && ok || bad "an empty repair wrote"
expect 0 "a normal run after the repairs" -- "$FERRY" run --progress none
[ "$(wc -l < sink.log)" = 1 ] && ok || bad "a normal run wrote items again"

# ---- bad input in the data ------------------------------------------------------------------------------
mkdir -p "$T/b" && cd "$T/b"
printf '{"kind":"record","key":"a","body":{}}\n{"kind":"record","key":"b","body":{}\n' > in.jsonl
sed 's/in.jsonl/in.jsonl/' "$T/p/ferry.json" > ferry.json
expect 6 "corrupt source line" -- "$FERRY" run --config ferry.json --progress none
has "in.jsonl:2" "corrupt line named with file:line"

# ---- a planted secret appears in no output --------------------------------------------------------------
mkdir -p "$T/s" && cd "$T/s"
export FERRY_TEST_PLANTED="s3cr3t-planted-$$-value"
cat > ferry.json <<'JSON'
{"journal": "j.db", "report": "report.json",
 "stages": [{"name": "leak", "source": {"plugin": "test-leaky", "options": {"password": "${FERRY_TEST_PLANTED}"}},
             "sink": {"plugin": "test-leaky", "options": {"password": "${FERRY_TEST_PLANTED}", "fail_key": "k3"}}}]}
JSON
: > all.out
for cmd in "plan" "run" "verify" "status" "status --json" "plugins --describe test-leaky" "run -vv --log-format json"; do
  # shellcheck disable=SC2086
  "$FERRY" $cmd --config ferry.json >>all.out 2>&1
  echo "[exit $? for $cmd]" >> all.out
done
"$FERRY" --help >>all.out 2>&1
"$FERRY" run --help >>all.out 2>&1
cat report.json j.db* >> all.out 2>/dev/null
if grep -a -q "$FERRY_TEST_PLANTED" all.out; then
  bad "the planted secret leaked:"; grep -a -n "$FERRY_TEST_PLANTED" all.out | head -5 | cut -c1-200
else ok; fi
grep -a -q '\*\*\*' all.out && ok || bad "redaction never happened (the test would prove nothing)"
grep -a -q "login refused for password" all.out && ok || bad "the failing item's error is not reported"

# ---- status exit codes; --log-format json: every line on stderr a JSON object -----------------------------
mkdir -p "$T/j" && cd "$T/j"
cat > ferry.json <<'JSON'
{"journal": "j.db", "report": "report.json",
 "stages": [{"name": "leak", "source": {"plugin": "test-leaky", "options": {"password": "pw-123", "count": 20}},
             "sink": {"plugin": "test-leaky", "options": {"password": "pw-123", "fail_key": "k3"}}}]}
JSON
expect 6 "status before any run: no journal" -- "$FERRY" status --config ferry.json
"$FERRY" run --config ferry.json --log-format json --progress plain >run.out 2>run.err
rc=$?
[ "$rc" = 1 ] && ok || bad "json run: exit $rc, expected 1 (k3 fails)"
[ -s run.out ] && bad "json run: something on stdout: $(head -c 200 run.out)" || ok
python3 - run.err <<'PY' && ok || bad "--log-format json: stderr"
import json, sys
lines = open(sys.argv[1]).read().splitlines()
objs, bad = [], []
for n, l in enumerate(lines, 1):
    try:
        o = json.loads(l)
        assert isinstance(o, dict) and "ts" in o and "level" in o
        objs.append(o)
    except Exception:
        bad.append(f"line {n} is not a JSON log object: {l[:120]!r}")
fail = [o for o in objs if o.get("item") == "k3" and o.get("level") == "error"]
if len(fail) != 1 or fail[0].get("stage") != "leak" or not fail[0].get("code") or "failed in stage" not in fail[0]["msg"]:
    bad.append(f"the failed item's line lacks item/stage/code: {fail}")
prog = [o for o in objs if o.get("event") == "progress"]
if not prog or prog[-1].get("state") != "finished" or prog[-1].get("processed") != 20 or "total" not in prog[-1]:
    bad.append(f"progress events: {prog}")
summ = [o for o in objs if o.get("event") == "summary"]
st = [o for o in summ if o.get("stage") == "leak"]
tot = [o for o in summ if o.get("totals")]
if len(st) != 1 or st[0].get("failed") != 1 or st[0].get("done") != 19 or st[0].get("state") != "finished":
    bad.append(f"stage summary: {st}")
if len(tot) != 1 or tot[0].get("exit_code") != 1:
    bad.append(f"totals: {tot}")
errs = [o for o in objs if o.get("event") == "error"]
if not errs or not errs[-1].get("code"):
    bad.append(f"the final error: {errs}")
if bad:
    print("\n".join(bad)); sys.exit(1)
PY
# status: 1 when items failed, output unchanged (--json: the same document as before)
expect 1 "status with a failed item" -- "$FERRY" status --config ferry.json
has "items needing attention" "status lists the failed item"
expect 1 "status --json with a failed item" -- "$FERRY" status --config ferry.json --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert sorted(d)==["attention","journal","stages"] and d["stages"][0]["failed"]==1 and d["attention"][0]["key"]=="k3", d' "$T/out" && ok || bad "status --json document"
expect 1 "status --items with a failed item" -- "$FERRY" status --config ferry.json --items
expect 1 "status --items --json with a failed item" -- "$FERRY" status --config ferry.json --items --json
python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert len(d)==20 and [i["key"] for i in d if i["status"]=="failed"]==["k3"]' "$T/out" && ok || bad "status --items --json"
sed -i 's/"fail_key": "k3"/"fail_key": ""/' ferry.json
expect 0 "run again: k3 done" -- "$FERRY" run --config ferry.json --progress none
expect 0 "status: nothing failed" -- "$FERRY" status --config ferry.json
expect 2 "status usage error stays 2" -- "$FERRY" status --config ferry.json --frob
"$FERRY" status --config ferry.json --frob --log-format json >/dev/null 2>json.err
python3 -c 'import json,sys; [json.loads(l) for l in open(sys.argv[1])]' json.err && ok || bad "a usage error in JSON log format is not JSON: $(cat json.err)"

echo
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
