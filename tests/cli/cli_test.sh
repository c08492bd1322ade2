#!/usr/bin/env bash
# End-to-end tests of the ferry CLI: usage and exit codes, a jsonl pipeline through plan/run/verify/status,
# resume without duplicates, bad input errors, and a planted secret that must appear in no output.
#   cli_test.sh <path to ferry> <plugin dir>
set -uo pipefail
FERRY=$1
export FERRY_PLUGIN_PATH=$2
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
for c in plan run verify status plugins version; do
  expect 0 "$c --help" -- "$FERRY" "$c" --help
  has "usage: ferry $c" "$c --help"
done
expect 2 "no command" -- "$FERRY"
expect 2 "unknown command" -- "$FERRY" frobnicate
has 'unknown command "frobnicate"' "unknown command named"
expect 2 "unknown option" -- "$FERRY" run --frob
has "unknown option --frob" "unknown option named"
expect 2 "bad limit" -- "$FERRY" run --limit 0
has "--limit takes a whole number" "bad limit explained"
expect 0 "version" -- "$FERRY" version
has "plugin ABI 1.0" "version shows the ABI"

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
expect 2 "describe unknown" -- "$FERRY" plugins --describe nosuchplugin

# ---- a jsonl pipeline: plan, canary, run, resume, verify, status -----------------------------------------
mkdir -p "$T/p" && cd "$T/p"
for i in $(seq 1 300); do
  printf '{"kind":"record","key":"r%03d","body":{"table":"t","rows":[["%d"]]}}\n' "$i" "$i"
done > in.jsonl
cat > ferry.json <<JSON
{"journal": "j.db", "report": "report.json",
 "stages": [{"name": "copy", "source": {"plugin": "jsonl", "options": {"path": "in.jsonl"}},
             "sink": {"plugin": "jsonl", "options": {"path": "out.jsonl"}}, "concurrency": 4}]}
JSON
expect 0 "plan" -- "$FERRY" plan --config ferry.json --progress none
[ ! -e j.db ] && ok || bad "plan created the journal"
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

echo
echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
