#!/usr/bin/env bash
# End-to-end tests of a Joget -> Joget migration with the ferry CLI (label `e2e`): a private PostgreSQL, a
# source and a target Joget emulator (tests/support/joget-env.sh), real upload files, and the configuration
# users start from (examples/joget-to-joget.json, secrets from the environment).
#
#   e2e.sh SCENARIO FERRY PLUGIN_DIR EMULATOR ROOT
#
# Scenarios (one CTest test each):
#   migrate  plan (writes nothing), canary, run, verify, status; every source instance has exactly one target
#            instance with the same record id, definition, requester, variables, open activities, assignees and
#            sub-flow children; form rows and files equal the source's although start-path tools changed them
#            (preserve-records restored them and names the change); the source database and upload tree are
#            unchanged; a second run changes nothing; then every migrated instance is completed on the target as
#            its assignees, assignment by assignment, to its end.
#   crash    runs killed with SIGKILL at seeded points (an external kill -9 while files or instances are being
#            carried, the joget sink's test-only crash knob after before_start, after process/start, after an
#            activity start), resumed until done: no duplicate, nothing missing, verify passes.
#   faults   1,000 instances (E2E_FAULT_INSTANCES), both emulators fail 10% of the requests: 500, connection
#            reset, delayed answers, `lost` (the server did the work, the connection closed with no answer:
#            state-changing calls only) and `partial` (the answer cut mid-body): retried to a correct end with
#            0 duplicates, 0 missing, every instance equal to its source, and every migrated instance
#            completed to its end on the target; some instances wait at a partly joined AND-join.
#   giveup   as faults, after a first run without retries in which items fail half way (after their
#            instance was started): the next run must continue each from its recorded step — no second
#            instance, and preserve-records restores from the snapshot taken before the first start.
#   errors   wrong credentials, an app missing on the target, an activity the target's definition lacks, a record
#            id with a space: `ferry plan` names each before anything is written, `ferry run` refuses or fails
#            exactly those items (target instances counted before and after); a form row the target refuses
#            (a trigger) leaves its record behind, and its instance is blocked, not started on a missing record.
#   html     `ferry plan --html`, `ferry run --html` with a planted failure (a form row the target refuses), the
#            page loaded in headless chromium: its DOM against the journal (verdict, per-stage counts, one row
#            per item, the failure with its cause and fix, the id map), no request but the file (net log, and a
#            planted image proves the check and the page's Content-Security-Policy), no secret, a screenshot,
#            the script's filter and sort; `ferry report --html` later gives the same page, also from a copy of
#            the journal without the configuration; bad input (no such run, no journal, unwritable output).
#   repair   after a clean migration, a target form row, an upload file, an instance's variable and an
#            assignee are tampered with: verify finds each (exit 4), `ferry run --repair` writes exactly those
#            items again, verify passes (exit 0), and every source instance still has one target instance;
#            `ferry report --html` after each verify says "N differ" (the marked items), then "all equal".
#   mariadb  the migrate scenario (40 instances) with both Joget servers on MariaDB in Joget's MySQL layout, the
#            configuration of examples/joget-to-joget-mariadb.json (the sql plugin for users and forms; the joget
#            plugins' dsn and preserve-records on mariadb:// URLs); first, bad input through the joget source's
#            dsn (a wrong MariaDB password, a port nothing listens on): a clear error naming the stage and the
#            dsn, nothing written to the target.
#   mixed    the same with the source Joget on MariaDB and the target Joget on PostgreSQL (the sql sink writes
#            each column under the target's spelling: Joget's PostgreSQL tables say datecreated where MySQL's say
#            dateCreated; timestamps compare as text in UTC without a zero fraction).
#   workers  three `ferry run --worker` processes on one PostgreSQL journal, 100 instances, both emulators at 20 ms
#            latency, rate 30 and concurrency 6, leases of 3 s; one worker is SIGKILLed mid-run (holding claims),
#            restarted, SIGKILLed again ~20 starts later, and restarted to the end; a plain run is refused
#            meanwhile: one target instance and one process/start per source instance,
#            every item done once and naming its worker, no claim left, verify clean, and no second in the
#            target's or the source's request log (their at= times) with more than 30 requests (the source,
#            read by every worker, is where the limit binds: its busiest second must exceed one share, 10).
#   terminal on an 80-column pseudo-terminal: an interrupted run says so and exits 5, the run that resumes it
#            keeps the progress block on screen below every log line and within 79 columns, the uploads stage
#            has a total ("count"); status exits 0; verify --log-format json writes only JSON on stderr.
#
# Exit 77 (CTest: skipped) when a plugin it needs is not built. E2E_KEEP=1 keeps the work directory. E2E_SEED
# seeds the fixture and the kill points (default 1).
set -uo pipefail
SCEN=${1:?scenario}
FERRY=${2:?ferry}
export FERRY_PLUGIN_PATH=${3:?plugin dir}
EMU=${4:?emulator}
ROOT=${5:?repository root}
HERE=$ROOT/tests/e2e
SEED=${E2E_SEED:-1}
RANDOM=$SEED
W=$(mktemp -d "/tmp/ferry-e2e-$SCEN.XXXXXX")
JC="python3 $HERE/jcheck.py"

cleanup() {
  local st=$?
  bash "$ROOT/tests/support/joget-env.sh" stop "$W/env" >/dev/null 2>&1
  if [ -n "${E2E_KEEP:-}" ]; then echo "work directory kept: $W"; else rm -rf "$W"; fi
  exit $st
}
trap cleanup EXIT

fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
eq() { if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', expected '$3'"; fi; }
# show FILE: the end of a log, indented
show() { sed 's/^/    /' "$1" | tail -n "${2:-25}"; }
has() { if grep -qF -- "$2" "$3"; then ok; else bad "$1: $(basename "$3") lacks '$2'"; show "$3"; fi; }
# expect_rc WHAT WANT GOT LOG
expect_rc() { if [ "$3" = "$2" ]; then ok; else bad "$1: exit code $3, expected $2"; show "$4"; fi; }
finish() {
  echo "e2e $SCEN: $passes passed, $fails failed"
  [ "$fails" = 0 ]
  exit $?
}
step() { echo "--- $*"; }

# ---- setup ---------------------------------------------------------------------------------------------------
case "$SCEN" in
mariadb | mixed) need=(sql fs joget preserve-records) ;;
*) need=(pgsql fs joget preserve-records) ;;
esac
"$FERRY" plugins >"$W/plugins.txt" 2>&1
missing=()
for p in "${need[@]}"; do grep -q "^$p " "$W/plugins.txt" || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "SKIP: plugin(s) not built: ${missing[*]}"
  exit 77
fi

# setup N SCENARIO [EMULATOR KNOBS...]: fixture, emulators, environment for the example config
setup() {
  local n=$1 tune=$2
  shift 2
  python3 "$ROOT/tests/joget-emulator/tools/gen-fixture.py" --instances "$n" --seed "$SEED" --file-size 1500 \
    --joins "${GEN_JOINS:-0}" --source "$W/source.json" --target "$W/target.json" \
    || { echo "fixture generation failed"; exit 1; }
  python3 "$HERE/tune-fixture.py" --source "$W/source.json" --target "$W/target.json" --scenario "$tune" \
    || { echo "fixture tuning failed"; exit 1; }
  bash "$ROOT/tests/support/joget-env.sh" start "$W/env" --source-fixture "$W/source.json" \
    --target-fixture "$W/target.json" --emulator-bin "$EMU" "$@" >"$W/env.out" 2>&1 \
    || { echo "cannot start the Joget environment"; cat "$W/env.out"; exit 1; }
  # shellcheck disable=SC1091
  . "$W/env/env"
  export SOURCE_JOGET_URL=$JOGET_SOURCE_URL TARGET_JOGET_URL=$JOGET_TARGET_URL
  export SOURCE_JOGET_DSN=$JOGET_SOURCE_DB TARGET_JOGET_DSN=$JOGET_TARGET_DB
  export SOURCE_WFLOW=$JOGET_SOURCE_UPLOADS TARGET_WFLOW=$JOGET_TARGET_UPLOADS
  export SOURCE_JOGET_PASSWORD=admin TARGET_JOGET_PASSWORD=admin TARGET_MASTER_PASSWORD=master-secret
  cp "$ROOT/examples/${E2E_EXAMPLE:-joget-to-joget.json}" "$W/ferry.json"
  # local emulators: no need for the example's rate limit (requests per second per server)
  edit_config 'for s in c["stages"]: s["rate"] = 0'
  SRCDB=$JOGET_SOURCE_DB TGTDB=$JOGET_TARGET_DB
  TABLES=(app_fd_leave app_fd_expense app_fd_onboard)
}

# edit_config PYTHON-EXPRESSION-ON-c: change the copied config (c is the parsed JSON)
edit_config() {
  python3 - "$W/ferry.json" "$1" <<'PY'
import json, sys
p, expr = sys.argv[1], sys.argv[2]
c = json.load(open(p))
exec(expr)
json.dump(c, open(p, "w"), indent=1)
PY
}

# ferry CMD LOG [ARGS...]: runs a command on the config; the exit code is in $rc
ferry() {
  local cmd=$1 log=$2
  shift 2
  (cd "$W" && "$FERRY" "$cmd" --config "$W/ferry.json" --progress none "$@") >"$W/$log" 2>&1
  rc=$?
}

tgt_count() { $JC count "$TGTDB"; }
starts() { grep -c "POST /jw/web/json/workflow/process/start" "$W/env/target.requests" 2>/dev/null || true; }
writes() { grep -cE "^[^ ]+ POST " "$W/env/target.requests" 2>/dev/null || true; }

# checks after a complete migration: instances, forms, files
check_migrated() {
  local tag=$1
  $JC instances "$SRCDB" >"$W/src.inst.json"
  $JC instances "$TGTDB" >"$W/tgt.inst.$tag.json"
  if $JC compare "$W/src.inst.json" "$W/tgt.inst.$tag.json" >"$W/compare.$tag.txt"; then ok; else
    bad "$tag: target instances differ from the source's"; show "$W/compare.$tag.txt" 40; fi
  if $JC forms "$SRCDB" "$TGTDB" "${TABLES[@]}" >"$W/forms.$tag.txt"; then ok; else
    bad "$tag: form rows differ"; show "$W/forms.$tag.txt" 40; fi
  $JC tree "$JOGET_SOURCE_UPLOADS/app_formuploads" >"$W/src.tree.now"
  $JC tree "$JOGET_TARGET_UPLOADS/app_formuploads" >"$W/tgt.tree.$tag" 2>/dev/null
  python3 - "$W/src.tree.now" "$W/tgt.tree.$tag" >"$W/files.$tag.txt" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
bad = 0
for p in sorted(set(a) | set(b)):
    x, y = a.get(p), b.get(p)
    if x is None or y is None:
        print("%s: %s" % (p, "missing on the target" if y is None else "on the target only")); bad += 1
    elif (x["sha256"], x["size"], x["mtime"]) != (y["sha256"], y["size"], y["mtime"]):
        print("%s: source %s, target %s" % (p, x, y)); bad += 1
print("files: %d source, %d target, %d different" % (len(a), len(b), bad))
sys.exit(1 if bad or not a else 0)
PY
  if [ $? = 0 ]; then ok; else bad "$tag: upload files differ"; show "$W/files.$tag.txt" 20; fi
}

# status --items and export-map: every instance of the run, its target instance and its activities
check_items_and_map() {
  (cd "$W" && "$FERRY" status --config "$W/ferry.json" --items --json) >"$W/items.json" 2>"$W/items.err"
  expect_rc "status --items" 0 $? "$W/items.err"
  (cd "$W" && "$FERRY" export-map --config "$W/ferry.json" --format csv --output "$W/map.csv") 2>"$W/map.err"
  expect_rc "export-map --format csv" 0 $? "$W/map.err"
  (cd "$W" && "$FERRY" export-map --config "$W/ferry.json" --format json) >"$W/map.json" 2>"$W/map.err"
  expect_rc "export-map --format json" 0 $? "$W/map.err"
  python3 - "$W/items.json" "$W/map.csv" "$W/map.json" <($JC instances "$SRCDB") <($JC instances "$TGTDB") \
    >"$W/items.txt" <<'PY'
import csv, json, sys
items, rows, mapj = json.load(open(sys.argv[1])), list(csv.DictReader(open(sys.argv[2]))), json.load(open(sys.argv[3]))
src, tgt = json.load(open(sys.argv[4])), json.load(open(sys.argv[5]))
items = items["items"] if isinstance(items, dict) else items
bad = 0
inst = {i["key"]: i for i in items if i["stage"] == "instances"}
tgt_ids = {t["id"] for t in tgt}
procs = {(r["old_id"]): r["new_id"] for r in rows if r["kind"] == "process"}
acts = [r for r in rows if r["kind"] == "activity"]
for s in src:
    it = inst.get(s["id"])
    if not it or it["status"] != "done":
        print("status --items: %s: %s" % (s["id"], it and it["status"])); bad += 1; continue
    tid = (it.get("report") or {}).get("target_id") or it.get("target_id")
    if tid not in tgt_ids:
        print("status --items: %s: target_id %s is not a running target instance" % (s["id"], tid)); bad += 1
    if procs.get(s["id"]) != tid:
        print("export-map: process %s -> %s, status says %s" % (s["id"], procs.get(s["id"]), tid)); bad += 1
    ids = {(x["kind"], x["old"]) for x in it.get("ids", [])}
    for a in s["acts"]:
        pass
    if ("process", s["id"]) not in ids:
        print("status --items: %s: no process id in its ids" % s["id"]); bad += 1
n_open = sum(len(s["acts"]) for s in src)
if len(acts) < n_open:
    print("export-map: %d activity rows, the source has %d open activities" % (len(acts), n_open)); bad += 1
if len(mapj) != len(rows):
    print("export-map: json has %d entries, csv %d" % (len(mapj), len(rows))); bad += 1
print("items: %d instance items, map: %d rows (%d process, %d activity)" % (len(inst), len(rows), len(procs), len(acts)))
sys.exit(1 if bad else 0)
PY
  if [ $? = 0 ]; then ok; else bad "status --items / export-map"; show "$W/items.txt" 30; fi
}

source_sums() { # the source database and upload tree, to prove them unchanged
  $JC dbsum "$SRCDB" >"$W/src.db.$1"
  $JC tree "$JOGET_SOURCE_UPLOADS" >"$W/src.tree.$1"
}

check_source_unchanged() {
  source_sums after
  if diff "$W/src.db.before" "$W/src.db.after" >"$W/src.db.diff"; then ok; else
    bad "the source database changed (tables: $(awk '/^[<>]/ {print $2}' "$W/src.db.diff" | sort -u | tr '\n' ' '))"; fi
  if diff -q "$W/src.tree.before" "$W/src.tree.after" >/dev/null; then ok; else
    bad "the source upload tree changed"; diff "$W/src.tree.before" "$W/src.tree.after" | head -10; fi
}

# ---- scenarios -----------------------------------------------------------------------------------------------
# migrate [N [ENGINE ARGS...]]: N instances (48), Joget's databases as joget-env.sh's engine options say
scenario_migrate() {
  local n=${1:-48}
  shift $(($# > 0 ? 1 : 0))
  GEN_JOINS=3 setup "$n" main "$@"
  [ -n "${E2E_BAD_DSN:-}" ] && bad_dsn_checks
  source_sums before
  local tgt0
  tgt0=$($JC dbsum "$TGTDB")
  step "plan"
  ferry plan plan.log --report "$W/plan.json"
  expect_rc "plan" 0 "$rc" "$W/plan.log"
  eq "plan writes nothing: target database unchanged" "$($JC dbsum "$TGTDB")" "$tgt0"
  eq "plan: no target instance" "$(tgt_count)" 0
  eq "plan: no file written" "$(find "$JOGET_TARGET_UPLOADS" -type f | wc -l)" 0
  eq "plan: every instance would be carried" "$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
st = [s for s in r["stages"] if s["name"] == "instances"][0]
print(sum(1 for i in st.get("items", []) if i["status"] == "would_do"))' "$W/plan.json")" "$n"

  step "users, forms and uploads (no workflow side effect), then the canary: one instance"
  ferry run data.log --stage users --stage forms --stage uploads
  expect_rc "data stages" 0 "$rc" "$W/data.log"
  eq "data stages: no target instance" "$(tgt_count)" 0
  ferry run canary.log --stage instances --limit 1
  expect_rc "canary run" 0 "$rc" "$W/canary.log"
  eq "canary: one target instance" "$(tgt_count)" 1

  step "run"
  ferry run run.log
  expect_rc "run" 0 "$rc" "$W/run.log"
  step "verify"
  ferry verify verify.log
  expect_rc "verify" 0 "$rc" "$W/verify.log"
  step "status"
  ferry status status.log
  expect_rc "status" 0 "$rc" "$W/status.log"
  has "status lists the instances stage" "instances" "$W/status.log"
  check_items_and_map

  step "checks"
  eq "the fixture has instances waiting at a partly joined AND-join" \
    "$(python3 -c 'import json,sys; print(sum(1 for i in json.load(open(sys.argv[1])) if i["joins"]) > 0)' \
      <($JC instances "$SRCDB"))" True
  check_migrated run
  # preserve-records: the start-path tools' changes were restored, and named
  $JC tools-changed "$W/ferry-journal.db" instances >"$W/tools.json"
  python3 - "$W/src.inst.json" "$W/tools.json" >"$W/tools.txt" <<'PY'
import json, sys
src = {i["id"]: i for i in json.load(open(sys.argv[1]))}
tools = json.load(open(sys.argv[2]))
want = {"leave_request": ("app_fd_leave", "c_status", "submitted", "in review"),
        "expense_claim": ("app_fd_expense", "c_state", "open", "checked")}
bad = 0
n = 0
for key, inst in src.items():
    proc = inst["def"].split("#")[2]
    t = tools.get(key)
    if t is None:
        print("%s: no preserve-records state in the journal" % key); bad += 1; continue
    if not t["restored"]:
        print("%s: not restored" % key); bad += 1
    # the tool's own change, plus the bookkeeping columns a form store touches (datemodified, modifiedby...)
    got = sorted((c["table"], c["column"], c["tool_value"], c["restored_value"]) for c in t["tools_changed"]
                 if not c["column"].lower().startswith("modified") and c["column"].lower() != "datemodified")
    exp = [want[proc]] if proc in want else []
    if got != exp:
        print("%s (%s): tools_changed %s, expected %s" % (key, proc, got, exp)); bad += 1
    n += len(got)
print("tools_changed: %d change(s) restored over %d instance(s), %d problem(s)" % (n, len(src), bad))
sys.exit(1 if bad else 0)
PY
  if [ $? = 0 ]; then ok; else bad "preserve-records report"; show "$W/tools.txt" 20; fi
  grep 'start-path tools changed' "$W/run.log" >"$W/tools.log"
  has "the log names the tools' changes" "app_fd_leave.c_status" "$W/tools.log"
  check_source_unchanged

  step "second run: changes nothing"
  local tgt1 w1
  tgt1=$($JC dbsum "$TGTDB")
  w1=$(writes)
  ferry run run2.log
  expect_rc "second run" 0 "$rc" "$W/run2.log"
  eq "second run: target database unchanged" "$($JC dbsum "$TGTDB")" "$tgt1"
  eq "second run: no write request to the target" "$(writes)" "$w1"
  has "second run: everything already done" "done 0, skipped 0, already done $n" "$W/run2.log"

  step "complete every migrated instance on the target as its assignees"
  if $JC complete "$TARGET_JOGET_URL" "$TGTDB" '{"admin": "admin", "*": "pw"}' >"$W/complete.txt"; then ok; else
    bad "completing the migrated instances"; show "$W/complete.txt" 30; fi
  tail -1 "$W/complete.txt"
  check_source_unchanged
}

# bad input through the joget source's dsn (MariaDB): a wrong password, then a port nothing listens on; each run
# of the instances stage fails naming the stage and the dsn's endpoint (no password), and writes nothing
bad_dsn_checks() {
  local tgt0 good=$SOURCE_JOGET_DSN port
  tgt0=$($JC dbsum "$TGTDB")
  step "bad input: a wrong password in the joget source's dsn"
  export SOURCE_JOGET_DSN=${good/ferry:ferry@/ferry:wrong-pw@}
  ferry run bad-pw.log --stage instances
  expect_rc "wrong password: the run fails (exit 6: a source failed)" 6 "$rc" "$W/bad-pw.log"
  has "wrong password: the stage is named" 'stage "instances"' "$W/bad-pw.log"
  has "wrong password: the option is named" "reading instances from the database (dsn)" "$W/bad-pw.log"
  # (the user name is masked too here: the fixture's password equals it)
  has "wrong password: the endpoint is named" "@127.0.0.1:$JOGET_MARIADB_PORT/joget_source: begin snapshot" "$W/bad-pw.log"
  has "wrong password: the cause is named" "access refused; check user and password" "$W/bad-pw.log"
  if grep -q "wrong-pw" "$W/bad-pw.log"; then bad "wrong password: the password reached the log"; else ok; fi
  step "bad input: an unreachable MariaDB port in the joget source's dsn"
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  export SOURCE_JOGET_DSN="mariadb://ferry:ferry@127.0.0.1:$port/joget_source"
  ferry run bad-port.log --stage instances
  expect_rc "unreachable port: the run fails (exit 6)" 6 "$rc" "$W/bad-port.log"
  has "unreachable port: the stage is named" 'stage "instances"' "$W/bad-port.log"
  has "unreachable port: the endpoint is named" "@127.0.0.1:$port/joget_source: begin snapshot: cannot connect" "$W/bad-port.log"
  export SOURCE_JOGET_DSN=$good
  eq "bad dsn: nothing written to the target database" "$($JC dbsum "$TGTDB")" "$tgt0"
  eq "bad dsn: no target instance" "$(tgt_count)" 0
  eq "bad dsn: no write request to the target" "$(writes)" 0
  rm -f "$W/ferry-journal.db" "$W/ferry-journal.db-wal" "$W/ferry-journal.db-shm"
}

# run_until_killed LOG CONDITION: a run in the background, SIGKILLed as soon as CONDITION (a shell expression)
# holds; sets rc (137 when killed, else the run's exit code)
run_until_killed() {
  local log=$1 cond=$2 pid i
  (cd "$W" && exec "$FERRY" run --config "$W/ferry.json" --progress none) >"$W/$log" 2>&1 &
  pid=$!
  for i in $(seq 1 3000); do
    kill -0 "$pid" 2>/dev/null || break
    if eval "$cond"; then kill -KILL "$pid" 2>/dev/null; break; fi
    sleep 0.02
  done
  wait "$pid"
  rc=$?
}

scenario_crash() {
  setup 40 main
  source_sums before
  local k1 k2 k3 k4 base runs=0
  k1=$((1 + RANDOM % 3)); k2=$((1 + RANDOM % 4)); k3=$((1 + RANDOM % 4)); k4=$((2 + RANDOM % 6))
  echo "kill points (seed $SEED): files>=1, before_start:$k1, start:$k2, activity:$k3, process/start+$k4"
  step "run 1: SIGKILL while the uploads are copied"
  run_until_killed crash1.log '[ "$(find "$JOGET_TARGET_UPLOADS" -type f 2>/dev/null | head -3 | wc -l)" -ge 1 ]'
  echo "run 1: exit $rc"
  step "run 2: crash knob after before_start (snapshot journaled, nothing started)"
  FERRY_JOGET_TEST_CRASH_AFTER=before_start:$k1 ferry run crash2.log
  echo "run 2: exit $rc"
  step "run 3: crash knob right after process/start (the new id not journaled yet)"
  FERRY_JOGET_TEST_CRASH_AFTER=start:$k2 ferry run crash3.log
  echo "run 3: exit $rc"
  step "run 4: crash knob after an activity start"
  FERRY_JOGET_TEST_CRASH_AFTER=activity:$k3 ferry run crash4.log
  echo "run 4: exit $rc"
  step "run 5: SIGKILL after $k4 more process/start calls"
  base=$(starts)
  run_until_killed crash5.log '[ "$(starts)" -ge $((base + k4)) ]'
  echo "run 5: exit $rc"
  step "resume until done"
  for runs in 1 2 3; do
    ferry run resume$runs.log
    [ "$rc" = 0 ] && break
  done
  expect_rc "resumed run" 0 "$rc" "$W/resume$runs.log"
  local killed
  killed=$(grep -l "raising SIGKILL" "$W"/crash*.log 2>/dev/null | wc -l)
  echo "runs that crashed on the knob: $killed"
  ferry verify verify.log
  expect_rc "verify after the crashes" 0 "$rc" "$W/verify.log"
  check_migrated crash
  eq "no duplicate: target instances" "$(tgt_count)" 40
  check_source_unchanged
}

scenario_faults() {
  local n=${E2E_FAULT_INSTANCES:-1000}
  [ "$SCEN" = giveup ] && n=40
  GEN_JOINS=4 setup "$n" main --fail-rate 0.1 --fail-kinds 500,reset,timeout,lost,partial --timeout-ms 300 \
    --seed "$SEED"
  source_sums before
  if [ "$SCEN" = giveup ]; then
    step "a first run that gives up at once: items fail half way (some after their start)"
    edit_config 'c["stages"][3]["retry"] = {"max": 0}'
    ferry run run0.log
    echo "first run: exit $rc, $(grep -c 'failed in stage' "$W/run0.log") item(s) failed"
  fi
  step "run ($n instances) against failing servers, retrying transient failures"
  edit_config 'c["stages"][3]["retry"] = {"max": 12, "base_ms": 50, "cap_ms": 1000}'
  local t0=$SECONDS
  ferry run run.log
  expect_rc "run with faults" 0 "$rc" "$W/run.log"
  echo "run: $((SECONDS - t0)) s"
  ferry verify verify.log
  expect_rc "verify with faults" 0 "$rc" "$W/verify.log"
  local faults lost partial
  faults=$(cat "$W/env/source.requests" "$W/env/target.requests" | grep -c "fault=")
  lost=$(grep -c "fault=lost" "$W/env/target.requests")
  partial=$(cat "$W/env/source.requests" "$W/env/target.requests" | grep -c "fault=partial")
  echo "faults injected: $faults ($(grep -o 'fault=[a-z0-9]*' "$W/env/target.requests" "$W/env/source.requests" |
    cut -d= -f2 | sort | uniq -c | tr '\n' ' '))"
  if [ "$faults" -gt 0 ]; then ok; else bad "no fault was injected"; fi
  if [ "$SCEN" = faults ]; then # enough requests for each kind to show up
    if [ "$lost" -gt 0 ]; then ok; else bad "no lost reply was injected on the target"; fi
    if [ "$partial" -gt 0 ]; then ok; else bad "no answer was cut mid-body"; fi
  fi
  check_migrated faults
  grep "^compare: instances" "$W/compare.faults.txt"
  eq "no duplicate: target instances" "$(tgt_count)" "$n"
  eq "no duplicate, none missing" "$(grep -o 'duplicates [0-9]*, missing [0-9]*' "$W/compare.faults.txt")" \
    "duplicates 0, missing 0"
  step "complete every migrated instance on the target (the AND-joins count their arrivals)"
  if $JC complete "$TARGET_JOGET_URL" "$TGTDB" '{"admin": "admin", "*": "pw"}' >"$W/complete.txt"; then ok; else
    bad "completing the migrated instances"; show "$W/complete.txt" 30; fi
  tail -1 "$W/complete.txt"
  check_source_unchanged
}

# plant_poison: a form row the target refuses: a trigger on its (already created) table rejects that record
# (one row per batch, so only it fails); its instance must be blocked, not started on a missing record. Sets
# POISON (the record id).
plant_poison() {
  POISON=$(psql "$SRCDB" -XAtq -c "SELECT l.originprocessid FROM wf_process_link l JOIN shkprocesses p ON
    p.id = l.processid WHERE p.pdefname LIKE '%#onboarding' ORDER BY 1 LIMIT 1")
  [ "$(psql "$TGTDB" -XAtq -c "SELECT to_regclass('app_fd_onboard') IS NOT NULL")" = t ] \
    || pg_dump --schema-only --no-owner --table=app_fd_onboard "$SRCDB" | psql "$TGTDB" -Xq -v ON_ERROR_STOP=1 >/dev/null \
    || bad "creating the target table"
  psql "$TGTDB" -Xq -v ON_ERROR_STOP=1 -c "CREATE FUNCTION poison() RETURNS trigger LANGUAGE plpgsql AS
    \$\$BEGIN IF NEW.id = '$POISON' THEN RAISE EXCEPTION 'row % refused by the test', NEW.id; END IF;
    RETURN NEW; END\$\$; CREATE TRIGGER poison BEFORE INSERT OR UPDATE ON app_fd_onboard FOR EACH ROW
    EXECUTE FUNCTION poison()" >/dev/null || bad "creating the trigger"
  edit_config 'c["stages"][1]["source"]["options"]["batch_rows"] = 1'
}

scenario_errors() {
  setup 12 errors
  # a record id with a space: renamed in the source database (the fixture loader refuses such ids)
  psql "$SRCDB" -Xq -v ON_ERROR_STOP=1 -c "UPDATE wf_process_link SET originprocessid = 'rec to space',
      parentprocessid = 'rec to space' WHERE originprocessid = 'rec-to-space';
      UPDATE app_fd_leave SET id = 'rec to space' WHERE id = 'rec-to-space'" || { bad "renaming the record id"; finish; }
  # every app of the source, so that the one missing on the target is listed
  edit_config 'del c["stages"][3]["source"]["options"]["apps"]'
  plant_poison
  source_sums before
  local before
  before=$(tgt_count)
  eq "target starts empty" "$before" 0

  step "wrong credentials"
  TARGET_JOGET_PASSWORD=wrong-password ferry plan plan-cred.log --report "$W/plan-cred.json"
  if [ "$rc" != 0 ]; then ok; else bad "plan with a wrong password: exit 0"; fi
  grep -iE "401|credential|password|authenticat" "$W/plan-cred.log" | head -3
  if grep -qiE "401|credential|password|authenticat" "$W/plan-cred.log"; then ok; else
    bad "plan with a wrong password: no clear error"; show "$W/plan-cred.log"; fi
  if grep -q "wrong-password" "$W/plan-cred.log" "$W/plan-cred.json" 2>/dev/null; then
    bad "the wrong password appears in the output"; else ok; fi
  TARGET_JOGET_PASSWORD=wrong-password ferry run run-cred.log --stage instances
  if [ "$rc" != 0 ]; then ok; else bad "run with a wrong password: exit 0"; fi
  eq "wrong credentials: nothing started" "$(tgt_count)" 0

  step "plan: blocked items named"
  ferry plan plan.log --report "$W/plan.json"
  expect_rc "plan with blocked items" 3 "$rc" "$W/plan.log"
  eq "plan: nothing started" "$(tgt_count)" 0
  $JC instances "$SRCDB" >"$W/src.inst.json"
  python3 - "$W/src.inst.json" "$W/plan.json" >"$W/blocked.txt" <<'PY'
import json, sys
src = {i["rid"]: i["id"] for i in json.load(open(sys.argv[1]))}
rep = json.load(open(sys.argv[2]))
st = [s for s in rep["stages"] if s["name"] == "instances"][0]
items = {i["key"]: i for i in st.get("items", [])}
legacy = [i["id"] for i in json.load(open(sys.argv[1])) if any(a["def"] == "legacy_review" for a in i["acts"])][0]
want = {src["lead-1"]: ["crmapp"], src["rec to space"]: ["rec to space"], legacy: ["legacy_review"]}
bad = 0
for key, words in want.items():
    it = items.get(key)
    if not it or it["status"] != "blocked":
        print("%s: expected blocked, got %s" % (key, it and it["status"])); bad += 1; continue
    msg = (it.get("error") or "") + " " + json.dumps(it.get("report", {}))
    for w in words:
        if w not in msg:
            print("%s: the reason does not name %r: %s" % (key, w, it.get("error"))); bad += 1
    print("blocked %s: %s" % (key, it.get("error")))
others = [k for k, i in items.items() if i["status"] == "blocked" and k not in want]
if others:
    print("blocked but should not be: %s" % others); bad += 1
print("would_do: %d" % sum(1 for i in items.values() if i["status"] == "would_do"))
sys.exit(1 if bad else 0)
PY
  if [ $? = 0 ]; then ok; else bad "plan's blocked items"; fi
  cat "$W/blocked.txt"

  step "run: those items fail, the others are carried"
  ferry run run.log
  expect_rc "run with bad items" 1 "$rc" "$W/run.log"
  local n_src
  n_src=$(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))))' "$W/src.inst.json")
  eq "run: every good instance started, none of the bad ones" "$(tgt_count)" $((n_src - 4))
  has "the refused row fails its batch" "refused by the test" "$W/run.log"
  grep "record $POISON is in app_fd_onboard on the source but not on the target" "$W/run.log" | head -1
  has "its instance is blocked, naming the record and the table" \
    "record $POISON is in app_fd_onboard on the source but not on the target" "$W/run.log"
  eq "no target instance for the refused record" \
    "$(psql "$TGTDB" -XAtq -c "SELECT count(*) FROM wf_process_link WHERE originprocessid = '$POISON'")" 0
  $JC instances "$TGTDB" >"$W/tgt.inst.json"
  eq "no target instance for the refused items' records" "$(python3 -c '
import json, sys
src = json.load(open(sys.argv[1]))
bad = {i["rid"] for i in src if i["rid"] in ("lead-1", "rec to space", sys.argv[3]) or
       any(a["def"] == "legacy_review" for a in i["acts"])}
print(sorted(i["rid"] + " (" + i["id"] + ")" for i in json.load(open(sys.argv[2])) if i["rid"] in bad))' \
    "$W/src.inst.json" "$W/tgt.inst.json" "$POISON")" "[]"
  has "run names the missing app" "crmapp" "$W/run.log"
  has "run names the unknown activity" "legacy_review" "$W/run.log"
  has "run names the record id" "rec to space" "$W/run.log"
  check_source_unchanged
}

# browse URL OUT [CHROMIUM FLAGS...]: headless chromium loads URL; the DOM after its scripts ran goes to OUT
browse() {
  local url=$1 out=$2
  shift 2
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --user-data-dir="$(mktemp -d "$W/chrome.XXXXXX")" \
    "$@" --dump-dom "$url" >"$out" 2>"$out.err"
}

scenario_html() {
  command -v chromium >/dev/null || { echo "SKIP: chromium is not installed (tests/deps.sh installs it)"; exit 77; }
  local HC="python3 $HERE/htmlcheck.py"
  setup 12 errors
  plant_poison
  # passwords that occur nowhere else (the fixtures' "admin" is also the user's name): none may reach the page
  export SOURCE_JOGET_PASSWORD=src-Pw-4711 TARGET_JOGET_PASSWORD=tgt-Pw-0815
  psql "$SRCDB" -Xq -c "UPDATE dir_user SET password = md5('$SOURCE_JOGET_PASSWORD') WHERE username = 'admin'"
  psql "$TGTDB" -Xq -c "UPDATE dir_user SET password = md5('$TARGET_JOGET_PASSWORD') WHERE username = 'admin'"
  sleep 1.2 # the emulators read a changed password within a second
  source_sums before

  step "plan --html: the blocked items, from the plan's report"
  ferry plan plan.log --html "$W/plan.html"
  expect_rc "plan --html" 3 "$rc" "$W/plan.log"
  has "plan --html says where the page is" "HTML report written to $W/plan.html" "$W/plan.log"
  local blocked
  blocked=$(python3 -c 'import json,sys; print(sum(1 for s in json.load(open(sys.argv[1]))["stages"]
    for i in s.get("items", []) if i["status"] == "blocked"))' "$W/ferry-report.json")
  if [ "${blocked:-0}" -gt 0 ]; then ok; else bad "the plan blocks nothing: the test plants nothing"; fi
  has "plan page: the verdict counts the blocked items" "data-blocked=\"$blocked\"" "$W/plan.html"
  has "plan page: the verdict says it" "$blocked blocked" "$W/plan.html"
  has "plan page: blocked items grouped by cause" "class=\"cause blocked\"" "$W/plan.html"
  eq "plan: nothing started" "$(tgt_count)" 0

  step "run --html with a planted failure (a form row the target refuses)"
  ferry run run.log --html "$W/run.html"
  expect_rc "run with a refused row" 1 "$rc" "$W/run.log"
  has "run --html says where the page is" "HTML report written to $W/run.html" "$W/run.log"
  has "run --html: the page of this run" 'data-run="1"' "$W/run.html"
  (cd "$W" && "$FERRY" status --config "$W/ferry.json" --json) >"$W/status.json" 2>"$W/status.err"
  (cd "$W" && "$FERRY" status --config "$W/ferry.json" --items --json) >"$W/items.json" 2>>"$W/status.err"
  (cd "$W" && "$FERRY" export-map --config "$W/ferry.json" --output "$W/map.csv") 2>>"$W/status.err"

  step "the page in a real browser (headless chromium): DOM, requests, screenshot"
  browse "file://$W/run.html" "$W/run.dom" --log-net-log="$W/run.netlog"
  expect_rc "chromium --dump-dom" 0 $? "$W/run.dom.err"
  if $HC dom "$W/run.dom" "$W/status.json" "$W/items.json" "$W/map.csv" "$POISON" >"$W/dom.txt"; then ok; else
    bad "the page's DOM does not match the journal"; fi
  cat "$W/dom.txt"
  if $HC netlog "$W/run.netlog" "file://$W/run.html" >"$W/net.txt"; then ok; else bad "the page made requests"; fi
  cat "$W/net.txt"
  if $HC static "$W/run.html" "$SOURCE_JOGET_PASSWORD" "$TARGET_JOGET_PASSWORD" \
    "$TARGET_MASTER_PASSWORD" "$JOGET_SOURCE_DB" "$JOGET_TARGET_DB" >"$W/static.txt"; then
    ok; else bad "the page's file"; fi
  cat "$W/static.txt"
  browse "file://$W/run.html" "$W/shot.dom" --screenshot="$W/run.png" --window-size=1280,2000
  if [ "$(head -c 8 "$W/run.png" 2>/dev/null | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ] &&
     [ "$(stat -c %s "$W/run.png")" -gt 20000 ]; then ok; else bad "no screenshot of the page"; fi
  # the script: a status filter and a sort preset by the fragment
  browse "file://$W/run.html#status=failed" "$W/failed.dom"
  # shellcheck disable=SC2046
  if $HC rows "$W/failed.dom" $(python3 -c 'import json,sys
for i in json.load(open(sys.argv[1])):
    if i["status"] == "failed": print(i["key"])' "$W/items.json"); then ok; else bad "the status filter"; fi
  browse "file://$W/run.html#stage=instances&sort=2" "$W/asc.dom"
  browse "file://$W/run.html#stage=instances&sort=-2" "$W/desc.dom"
  $HC order "$W/asc.dom" >"$W/asc.txt"
  $HC order "$W/desc.dom" | tac >"$W/desc.txt"
  if [ -s "$W/asc.txt" ] && cmp -s "$W/asc.txt" "$W/desc.txt"; then ok; else bad "sorting by source id"; fi
  eq "sort: every instance shown" "$(wc -l <"$W/asc.txt")" \
    "$(python3 -c 'import json,sys; print(sum(1 for i in json.load(open(sys.argv[1])) if i["stage"] == "instances"))' "$W/items.json")"
  # the checks can fail: a planted external image is blocked by the page's policy, and seen without it
  local port
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  sed "s|<body>|<body><img src=\"http://127.0.0.1:$port/planted.png\">|" "$W/run.html" >"$W/planted-csp.html"
  grep -v 'Content-Security-Policy' "$W/planted-csp.html" >"$W/planted.html"
  browse "file://$W/planted-csp.html" "$W/planted-csp.dom" --log-net-log="$W/planted-csp.netlog"
  if $HC netlog "$W/planted-csp.netlog" "file://$W/planted-csp.html" >/dev/null; then ok; else
    bad "the page's Content-Security-Policy let a planted image through"; fi
  browse "file://$W/planted.html" "$W/planted.dom" --log-net-log="$W/planted.netlog"
  if $HC netlog "$W/planted.netlog" "file://$W/planted.html" >/dev/null; then
    bad "the net log check does not see a planted image's request"; else ok; fi
  if $HC static "$W/planted.html" >/dev/null; then bad "the static check does not see a planted reference"; else ok; fi

  step "ferry report: the same page again from the journal, after the fact"
  sleep 1
  ferry report report.log --html "$W/report.html"
  expect_rc "ferry report --html" 0 "$rc" "$W/report.log"
  if cmp -s "$W/run.html" "$W/report.html"; then ok; else bad "ferry report gives another page than run --html"; fi
  local run_id
  run_id=$(grep -o 'data-run="[0-9]*"' "$W/run.html" | grep -o '[0-9]*')
  ferry report report2.log --html "$W/report2.html" --run "$run_id"
  expect_rc "ferry report --run $run_id" 0 "$rc" "$W/report2.log"
  if cmp -s "$W/run.html" "$W/report2.html"; then ok; else bad "ferry report --run $run_id differs"; fi
  # a copy of the journal, somewhere else, without the configuration
  mkdir -p "$W/later"
  cp "$W/ferry-journal.db" "$W/later/old.db"
  [ ! -s "$W/ferry-journal.db-wal" ] || cp "$W/ferry-journal.db-wal" "$W/later/old.db-wal"
  (cd "$W/later" && "$FERRY" report --journal old.db --html old.html) >"$W/old.log" 2>&1
  expect_rc "ferry report --journal (a copy, no configuration)" 0 $? "$W/old.log"
  browse "file://$W/later/old.html" "$W/old.dom"
  if $HC dom "$W/old.dom" "$W/status.json" "$W/items.json" "$W/map.csv" "$POISON" >"$W/old.txt"; then ok; else
    bad "the page from a copy of the journal"; cat "$W/old.txt"; fi
  if $HC static "$W/later/old.html" "$SOURCE_JOGET_PASSWORD" "$TARGET_JOGET_PASSWORD" \
    "$TARGET_MASTER_PASSWORD" "$JOGET_SOURCE_DB" "$JOGET_TARGET_DB" >/dev/null; then
    ok; else bad "the page from a copy of the journal: its file"; fi

  step "bad input"
  ferry report bad-run.log --html "$W/bad.html" --run 999
  expect_rc "no such run" 2 "$rc" "$W/bad-run.log"
  has "no such run: named" "has no run 999" "$W/bad-run.log"
  mkdir -p "$W/empty"
  (cd "$W/empty" && "$FERRY" report --journal "$W/empty/none.db" --html "$W/bad.html") >"$W/bad-j.log" 2>&1
  expect_rc "no journal" 6 $? "$W/bad-j.log"
  has "no journal: named" "$W/empty/none.db" "$W/bad-j.log"
  ferry report bad-out.log --html "$W/no-such-dir/r.html"
  expect_rc "unwritable output" 6 "$rc" "$W/bad-out.log"
  has "unwritable output: named" "$W/no-such-dir/r.html" "$W/bad-out.log"
  ferry report no-html.log
  expect_rc "report without --html" 2 "$rc" "$W/no-html.log"
  ferry status html-status.log --html "$W/bad.html"
  expect_rc "--html on status" 2 "$rc" "$W/html-status.log"
  if [ -e "$W/bad.html" ] || [ -e "$W/bad.html.tmp" ]; then bad "a failed report left a file"; else ok; fi

  step "verify --html: the page of the verify"
  ferry verify verify.log --html "$W/verify.html"
  expect_rc "verify with items not migrated" 4 "$rc" "$W/verify.log"
  has "verify page: its own run" "data-run=\"$((run_id + 1))\"" "$W/verify.html"
  has "verify page: the mode" "(verify), started" "$W/verify.html"
  has "verify page: the failed items still counted" \
    "data-failed=\"$(python3 -c 'import json,sys; print(sum(1 for i in json.load(open(sys.argv[1])) if i["status"] == "failed"))' "$W/items.json")\"" \
    "$W/verify.html"
  check_source_unchanged
}

scenario_repair() {
  setup 24 main
  source_sums before
  step "a clean migration"
  ferry run run.log
  expect_rc "run" 0 "$rc" "$W/run.log"
  ferry verify verify0.log
  expect_rc "verify after the run" 0 "$rc" "$W/verify0.log"
  local n_before
  n_before=$(tgt_count)
  step "tamper with the target: a form row, an upload file, a variable, an assignee"
  local rid file pid act
  rid=$(psql "$TGTDB" -XAtq -c "SELECT id FROM app_fd_leave ORDER BY id LIMIT 1")
  psql "$TGTDB" -Xq -v ON_ERROR_STOP=1 -c "UPDATE app_fd_leave SET c_status = 'tampered' WHERE id = '$rid'" \
    || bad "tampering a row"
  file=$(find "$JOGET_TARGET_UPLOADS/app_formuploads" -type f | sort | head -1)
  printf 'tampered' >"$file"
  touch -d '2001-01-01' "$file"
  pid=$(psql "$TGTDB" -XAtq -c "SELECT p.id FROM shkprocesses p WHERE p.activityrequesterprocessid IS NULL AND
    p.state = 1000000 AND EXISTS (SELECT 1 FROM shkprocessdata d WHERE d.process = p.oid AND
    d.variabledefinitionid = 'comment') ORDER BY p.id LIMIT 1")
  psql "$TGTDB" -Xq -v ON_ERROR_STOP=1 -c "UPDATE shkprocessdata SET variablevaluevchar = 'tampered' WHERE
    variabledefinitionid = 'comment' AND process = (SELECT oid FROM shkprocesses WHERE id = '$pid')" \
    || bad "tampering a variable"
  act=$(psql "$TGTDB" -XAtq -c "SELECT a.id FROM shkactivities a JOIN shkprocesses p ON p.id = a.processid
    WHERE a.state = 1000003 AND p.id <> '$pid' AND p.activityrequesterprocessid IS NULL AND
    (SELECT count(*) FROM shkassignmentstable x WHERE x.activityid = a.id AND x.isvalid) = 1 ORDER BY a.id LIMIT 1")
  psql "$TGTDB" -Xq -v ON_ERROR_STOP=1 -c "UPDATE shkassignmentstable SET resourceid = 'hr2' WHERE activityid = '$act'" \
    || bad "tampering an assignee"
  echo "tampered: row app_fd_leave/$rid, file ${file#$JOGET_TARGET_UPLOADS/}, variable comment of $pid, assignee of $act"
  step "verify finds each"
  ferry verify verify1.log --report "$W/verify1.json"
  expect_rc "verify after tampering" 4 "$rc" "$W/verify1.log"
  has "verify names the row's batch" "app_fd_leave" "$W/verify1.log"
  has "verify names the variable" "comment" "$W/verify1.log"
  has "verify names the assignee" "hr2" "$W/verify1.log"
  # the HTML report of that verify: the differing items (those the journal marked)
  (cd "$W" && "$FERRY" status --config "$W/ferry.json" --items --json) >"$W/marked.json" 2>/dev/null
  local marked
  marked=$(python3 -c 'import json,sys; print(sum(1 for i in json.load(open(sys.argv[1])) if i.get("verify")))' \
    "$W/marked.json")
  ferry report differ.log --html "$W/differ.html"
  expect_rc "ferry report after the verify" 0 "$rc" "$W/differ.log"
  has "report: the verdict counts the marked items" "data-differ=\"$marked\"" "$W/differ.html"
  has "report: the verdict says they differ" ">$marked differ<" "$W/differ.html"
  has "report: the differing items grouped by cause" 'class="cause differs"' "$W/differ.html"
  step "run --repair: exactly those items"
  local w0
  w0=$(starts)
  ferry run repair.log --repair --report "$W/repair.json"
  expect_rc "run --repair" 0 "$rc" "$W/repair.log"
  eq "repair: no process/start" "$(starts)" "$w0"
  python3 - "$W/repair.json" >"$W/repaired.txt" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
n = {s["name"]: sum(1 for i in s.get("items", []) if i["status"] == "done") for s in r["stages"]}
print(json.dumps(n, sort_keys=True))
# one batch of forms (or more, by table), one file, two instances
ok = n.get("forms", 0) >= 1 and n.get("uploads") == 1 and n.get("instances") == 2
sys.exit(0 if ok else 1)
PY
  if [ $? = 0 ]; then ok; else bad "repair carried other items than the tampered ones: $(cat "$W/repaired.txt")"; fi
  step "verify again"
  ferry verify verify2.log
  expect_rc "verify after the repair" 0 "$rc" "$W/verify2.log"
  ferry report equal.log --html "$W/equal.html"
  expect_rc "ferry report after the last verify" 0 "$rc" "$W/equal.log"
  has "report: all equal" '<p id="verdict" class="verdict ok"' "$W/equal.html"
  has "report: all equal, said" ">all equal (" "$W/equal.html"
  eq "still one target instance per source instance" "$(tgt_count)" "$n_before"
  check_migrated repair
  eq "the row is back" "$(psql "$TGTDB" -XAtq -c "SELECT c_status FROM app_fd_leave WHERE id = '$rid'")" \
    "$(psql "$SRCDB" -XAtq -c "SELECT c_status FROM app_fd_leave WHERE id = '$rid'")"
  ferry run repair2.log --repair
  expect_rc "a second repair run" 0 "$rc" "$W/repair2.log"
  eq "a second repair run changes nothing" "$(starts)" "$w0"
  check_source_unchanged
}

# terminal: what a person at an 80-column terminal sees (tests/e2e/ptyrun.py: a pseudo-terminal and a small
# terminal model). A run interrupted by SIGINT says "interrupted, run again to resume" (display and summary;
# never "finished" or "stage failed" for the stage it stopped) and exits 5; the run that resumes it, with a
# preserve-records line per instance in the log, keeps the progress block on screen after every log line,
# every block line fits 79 columns, the uploads stage (fs, "count": true) has a total; status exits 0; a
# verify with --log-format json writes only JSON objects on standard error, progress and summary included.
scenario_terminal() {
  setup 120 main --latency-ms 10
  edit_config 'c["stages"][2]["source"]["options"]["count"] = True'
  local PTY="python3 $HERE/ptyrun.py --cols 80 --rows 24"
  step "run, interrupted (SIGINT) once 10 instances are through"
  (cd "$W" && $PTY --raw "$W/pty1.raw" --report "$W/pty1.json" --interrupt-stage instances --interrupt-at 10 \
    -- "$FERRY" run --config "$W/ferry.json")
  python3 - "$W/pty1.json" "$W/pty1.raw" >"$W/pty1.txt" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
raw = open(sys.argv[2], "rb").read().decode("utf-8", "replace")
bad = []
if not r["interrupted"]: bad.append("the run ended before it could be interrupted")
if r["exit"] != 5: bad.append("exit code %s, expected 5" % r["exit"])
final = r["final"]
inst = [l for l in final if re.match(r"^instances\s", l)]
if not inst or "interrupted, run again to resume" not in inst[-1]:
    bad.append("the final display's instances line does not say interrupted: %r" % inst)
if any("finished" in l for l in inst): bad.append("the instances line says finished: %r" % inst)
summ = [l for l in final if re.match(r"^  instances\s+\d", l)]
if not summ or "(interrupted)" not in summ[-1]: bad.append("the summary's instances row: %r" % summ)
if "stage failed" in raw: bad.append("\"stage failed\" is shown")
if "interrupted, run again to resume (exit code 5)" not in raw: bad.append("no closing line")
if r["checks"]["widest"] > 79: bad.append("a block line is %d columns: %r" % (r["checks"]["widest"], r["checks"]["wide_examples"]))
up = [l for s in r["screens"] for l in s if re.match(r"^uploads\s+(\[[#-]+\]\s+)?\s*\d+%\s+\d+/\d+", l)]
if not up: bad.append("the uploads stage never showed a total (count)")
print("\n".join(bad) if bad else "ok")
print("--- final screen:"); print("\n".join(final))
sys.exit(1 if bad else 0)
PY
  if [ $? = 0 ]; then ok; else bad "interrupted run at a terminal:"; show "$W/pty1.txt" 40; fi
  local done1
  done1=$(tgt_count)
  [ "$done1" -gt 0 ] && [ "$done1" -lt 120 ] && ok || bad "the interrupted run carried $done1 instances (expected some, not all)"

  step "run again: resumes to the end, the block stays on screen whatever the log says"
  (cd "$W" && $PTY --raw "$W/pty2.raw" --report "$W/pty2.json" -- "$FERRY" run --config "$W/ferry.json")
  python3 - "$W/pty2.json" >"$W/pty2.txt" <<'PY'
import json, re, sys
r = json.load(open(sys.argv[1]))
bad, c = [], r["checks"]
if r["exit"] != 0: bad.append("exit code %s, expected 0" % r["exit"])
if c["log_lines"] < 20: bad.append("only %d log lines over the block (expected one per restored instance)" % c["log_lines"])
if c["not_followed"]: bad.append("%d of %d log lines were not followed by the block" % (c["not_followed"], c["log_lines"]))
if c["widest"] > 79: bad.append("a block line is %d columns: %r" % (c["widest"], c["wide_examples"]))
block = re.compile(r"^(users|forms|uploads|instances)\s+\S.*(/s|waiting|not run|resume)")
seen, missing, shown = False, 0, 0
for s in r["screens"]:
    if any("run summary:" in l for l in s): break
    has = any(block.match(l) for l in s)
    seen |= has
    if seen:
        shown += has
        missing += not has
if not seen: bad.append("the block was never on screen")
if missing: bad.append("the block is missing from %d of %d screens taken during the run" % (missing, missing + shown))
wide = [l for s in r["screens"] for l in s if len(l) > 80]
if wide: bad.append("a screen line wider than 80: %r" % wide[0])
print("\n".join(bad) if bad else "ok: %d screens with the block, %d log lines" % (shown, c["log_lines"]))
sys.exit(1 if bad else 0)
PY
  if [ $? = 0 ]; then ok; else bad "resumed run at a terminal:"; show "$W/pty2.txt" 20; fi
  eq "every instance carried once" "$(tgt_count)" 120

  step "status exits 0 when nothing failed and nothing is in doubt"
  ferry status status.log
  expect_rc "status" 0 "$rc" "$W/status.log"

  step "verify --log-format json: only JSON on standard error"
  (cd "$W" && "$FERRY" verify --config "$W/ferry.json" --log-format json --progress tty) >"$W/verify.out" 2>"$W/verify.err"
  expect_rc "verify" 0 $? "$W/verify.err"
  python3 - "$W/verify.err" <<'PY' >"$W/verify.txt"
import json, sys
bad, events, stages = [], {}, set()
for n, line in enumerate(open(sys.argv[1]), 1):
    try:
        o = json.loads(line)
    except ValueError:
        bad.append("line %d is not JSON: %r" % (n, line[:120])); continue
    if not isinstance(o, dict) or "ts" not in o or "level" not in o:
        bad.append("line %d lacks ts/level: %r" % (n, line[:120])); continue
    ev = o.get("event", "log")
    events[ev] = events.get(ev, 0) + 1
    if ev in ("progress", "summary") and "stage" in o: stages.add(o["stage"])
for ev in ("progress", "summary"):
    if not events.get(ev): bad.append("no %s event" % ev)
if stages != {"users", "forms", "uploads", "instances"}: bad.append("stages in progress/summary: %s" % sorted(stages))
print("\n".join(bad) if bad else "ok %s" % events)
sys.exit(1 if bad else 0)
PY
  if [ $? = 0 ]; then ok; else bad "verify --log-format json:"; show "$W/verify.txt" 10; fi
}

# workers: three `ferry run --worker` processes share one PostgreSQL journal (docs/journal.md, "Several workers"):
# 100 instances (E2E_WORKER_INSTANCES), both emulators answering after 20 ms, the instances stage at rate 30 and
# concurrency 6, leases of 3 s; worker w2 is SIGKILLed mid-run (after 25 starts), restarted, SIGKILLed again
# once 20 more instances were started, and restarted to the end; a restarted w2 takes the users' identity
# checks the others noted in the journal instead of asking the target again.
scenario_workers() {
  local n=${E2E_WORKER_INSTANCES:-100} jurl
  setup "$n" main --latency-ms 20
  psql "host=127.0.0.1 port=$JOGET_PG_PORT user=ferry dbname=postgres" -Xq -v ON_ERROR_STOP=1 \
    -c "CREATE DATABASE ferry_journal" >/dev/null || { bad "creating the journal database"; finish; }
  jurl="postgresql://ferry@127.0.0.1:$JOGET_PG_PORT/ferry_journal"
  edit_config "c['journal'] = '$jurl'
for s in c['stages']:
    if s['name'] == 'instances': s['rate'] = 30; s['concurrency'] = 6"
  JSQL() { psql "$jurl" -XAtq -c "$1"; }
  source_sums before
  step "users, forms and uploads: one plain run on the PostgreSQL journal"
  ferry run data.log --stage users --stage forms --stage uploads
  expect_rc "data stages" 0 "$rc" "$W/data.log"
  : >"$W/env/target.requests" # from here on: the instances stage only
  : >"$W/env/source.requests"
  step "three workers on the instances stage (lease 3 s); w2 SIGKILLed after 25 starts and 20 more, restarted each time"
  local p1 p2 p3 r1 r2 r3 i first at
  wstart() { (cd "$W" && exec "$FERRY" run --config "$W/ferry.json" --progress none --stage instances \
    --worker "$1" --lease 3) >"$W/$2" 2>&1 & }
  # wkill AT: SIGKILLs w2 ($p2) once the target has seen AT process/start calls; its exit code in $r2
  wkill() {
    for i in $(seq 1 3000); do
      kill -0 "$p2" 2>/dev/null || break
      [ "$(starts)" -ge "$1" ] && { kill -KILL "$p2"; break; }
      sleep 0.02
    done
    wait "$p2"; r2=$?
  }
  wstart w1 w1.log; p1=$!
  # w1 first, so that it is the lister (the one worker reading the source) and w2's kills are not a lister's
  for i in $(seq 1 150); do grep -q "reads the source" "$W/w1.log" 2>/dev/null && break; sleep 0.1; done
  has "w1 reads the source for every worker" "reads the source and lists its items for every worker" "$W/w1.log"
  wstart w2 w2.log; p2=$!
  wstart w3 w3.log; p3=$!
  wkill 25
  first=$(starts)
  expect_rc "w2 was SIGKILLed mid-run" 137 "$r2" "$W/w2.log"
  eq "w2 had claims when it was killed" "$(JSQL "SELECT count(*) > 0 FROM ferry_claims WHERE worker = 'w2'")" t
  ferry run plain-refused.log --stage instances
  expect_rc "a plain run while workers hold the journal is refused" 6 "$rc" "$W/plain-refused.log"
  has "the refusal says why" "in use by another ferry run" "$W/plain-refused.log"
  wstart w2 w2b.log; p2=$!
  at=$(starts)
  wkill $((at + 20))
  expect_rc "w2, restarted, was SIGKILLed again (at $((at + 20)) starts)" 137 "$r2" "$W/w2b.log"
  echo "w2 killed at $first starts and again at $(starts), then holding $(JSQL "SELECT count(*) FROM ferry_claims WHERE worker = 'w2'") claim(s)"
  wstart w2 w2c.log; p2=$!
  wait "$p1"; r1=$?
  wait "$p3"; r3=$?
  wait "$p2"; r2=$?
  expect_rc "w1" 0 "$r1" "$W/w1.log"
  expect_rc "w3" 0 "$r3" "$W/w3.log"
  expect_rc "w2 restarted a second time" 0 "$r2" "$W/w2c.log"
  echo "items per worker: $(JSQL "SELECT report::json->>'worker', count(*) FROM items WHERE stage = 'instances'
    GROUP BY 1 ORDER BY 1" | tr '\n' ' ')"
  eq "every instance item done once in the journal" \
    "$(JSQL "SELECT count(*), count(DISTINCT key) FROM items WHERE stage = 'instances' AND status = 'done'")" "$n|$n"
  eq "nothing in doubt or failed" "$(JSQL "SELECT count(*) FROM items WHERE status NOT IN ('done', 'skipped')")" 0
  eq "every instance names the worker that did it" \
    "$(JSQL "SELECT count(*) FROM items WHERE stage = 'instances' AND report::json->>'worker' IS NULL")" 0
  eq "the three workers shared the work" \
    "$(JSQL "SELECT count(DISTINCT report::json->>'worker') FROM items WHERE stage = 'instances'")" 3
  eq "no claim and no worker row left" "$(JSQL "SELECT (SELECT count(*) FROM ferry_claims) + (SELECT count(*) FROM ferry_workers)")" 0
  eq "one process/start per instance" "$(starts)" "$n"
  eq "exactly one target instance per source instance" "$(tgt_count)" "$n"
  # the source was read once for all the workers: the running list asked for once, each instance's
  # variables once (w1 listed it; w2 and w3 took their items from the listing)
  eq "one listing of the source's running instances" "$(grep -c 'console/monitor/running/list' "$W/env/source.requests")" 1
  eq "no instance's variables read twice from the source" \
    "$(grep -o 'workflow/variable/list/[^ ?]*' "$W/env/source.requests" | sort | uniq -d | wc -l)" 0
  has "w3 took its items from the listing" "takes its items from the listing" "$W/w3.log"
  # identity checks: one worker's check of a user is a note in the journal for the others, so a process that
  # starts after the others checked the users does not ask the target again (w2, restarted mid-run)
  if cat "$W/w2b.log" "$W/w2c.log" | grep -q "already checked by another worker (its note)"; then ok
  else bad "w2, restarted, checked every user again (no identity note taken from the journal)"; show "$W/w2c.log" 10; fi
  echo "identity checks (workflow/currentUsername as a user): $(grep 'workflow/currentUsername' "$W/env/target.requests" \
    | grep -vc ' user=\(admin\|master\|roleAnonymous\) ') for $(grep 'workflow/currentUsername' "$W/env/target.requests" \
    | grep -v ' user=\(admin\|master\|roleAnonymous\) ' | grep -o ' user=[^ ]*' | sort -u | wc -l) users in 5 worker processes"
  # the rate holds across the workers on both servers (the source, read by the lister alone at the whole
  # rate, is the busier one: it must see more than one worker's share in some second, or the lister's source
  # did not get the whole rate)
  local side
  for side in target source; do
    python3 - "$W/env/$side.requests" "$side" >"$W/rate.$side.txt" <<'PY'
import collections, re, sys
per = collections.Counter()
for line in open(sys.argv[1]):
    m = re.search(r" at=(\d+)$", line.rstrip("\n"))
    if not m:
        print("a request log line without at=: %r" % line[:100]); sys.exit(1)
    per[int(m.group(1)) // 1000] += 1
peak = max(per.values()) if per else 0
print("%s requests: %d over %d s, busiest second %d (limit 30)" % (sys.argv[2], sum(per.values()), len(per), peak))
sys.exit(0 if per and peak <= 30 and (sys.argv[2] != "source" or peak > 10) else 1)
PY
    if [ $? = 0 ]; then ok; else bad "$side: more than 30 requests in a second (or the workers never ran side by side)"; fi
    cat "$W/rate.$side.txt"
  done
  step "verify, status"
  ferry verify verify.log
  expect_rc "verify after the workers" 0 "$rc" "$W/verify.log"
  ferry status status.log --items --stage instances
  expect_rc "status --items" 0 "$rc" "$W/status.log"
  has "status --items names the workers" "by w1" "$W/status.log"
  has "status --items names the restarted worker or the killed one" "by w2" "$W/status.log"
  check_migrated workers
  check_source_unchanged
}

case "$SCEN" in
migrate | crash | faults | errors | repair | terminal | html | workers) "scenario_$SCEN" ;;
mariadb) E2E_EXAMPLE=joget-to-joget-mariadb.json E2E_BAD_DSN=1 scenario_migrate 40 --engine mariadb ;;
mixed) E2E_EXAMPLE=joget-to-joget-mariadb.json scenario_migrate 40 --source-engine mariadb --target-engine postgresql ;;
giveup) scenario_faults ;;
*) echo "unknown scenario $SCEN"; exit 2 ;;
esac
finish
