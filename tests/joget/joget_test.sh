#!/usr/bin/env bash
# Tests of the joget plugin against real emulators (tests/support/joget-env.sh: a private PostgreSQL cluster,
# a source and a target emulator), driven through the ferry CLI.
#
#   joget_test.sh CASE FERRY EMULATOR PLUGIN_DIR
#
# Cases:
#   inventory   source content: record ids, variables, activities, assignees, accepted, sub-flows folded into
#               their parents; the dsn (SQL) and HTTP-only ways give the same inventory; the source unchanged
#   migrate     plan, run, verify of 32 instances (8 kinds: first activity, later one, two parallel, sub-flow,
#               performer reassign, accepted, one branch of an AND split, another app); one target instance
#               per source instance at the same activities, assignees, variables, record id; a second run
#               changes nothing; the source unchanged
#   faults      the emulators fail 8% of requests (500, reset, never answered): retried to a correct end
#   crash       SIGKILL (test knob FERRY_JOGET_TEST_CRASH_AFTER) after process/start and before "started",
#               before the start, in the middle of the activities: resume adopts / continues, no duplicate
#   http        the same without dsn on either side (HTTP only), with a crash after a start: adopted
#   options     start_as hash with version latest; start_as users with version_map (a target where the app
#               has another package version); a requester without credentials is blocked
#   joins       instances waiting at a partly joined AND-join: with and_joins report, plan names the loss
#               ("join J has 1 of 2 arrivals"); killed right after an arrival was re-created, the resumed run
#               does not re-create it twice; the target's join counts what the source's does and fires when
#               the open branch is completed there
#   duplicates  the target runs some process/start calls twice (a proxy that re-sent them): the sink's check
#               after the start aborts the extra instance, names it, and every source instance has exactly one
#   plan        plan errors against a broken target (missing app, unknown activity id, missing user), a record
#               id with a space, wrong admin password, wrong master password: each blocked with a clear error,
#               and run writes nothing for them (target instances counted before and after)
set -uo pipefail
CASE=$1
export FERRY=$2
EMU=$3
export FERRY_PLUGIN_PATH=$4
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
support=$(cd "$here/../support" && pwd)
JG_DIR=$(mktemp -d /tmp/ferry-joget-test.XXXXXX)
export JG_DIR
. "$here/lib.sh"
ENVDIR=$JG_DIR/env
cleanup() {
  "$support/joget-env.sh" stop "$ENVDIR" >/dev/null 2>&1 || true
  [ -n "${EXTRA_PID:-}" ] && kill "$EXTRA_PID" 2>/dev/null && wait "$EXTRA_PID" 2>/dev/null
  if [ -z "${FERRY_TEST_KEEP:-}" ]; then rm -rf "$JG_DIR"; else echo "kept $JG_DIR"; fi
}
trap cleanup EXIT
cd "$JG_DIR" || exit 1

start_env() { # N [emulator knobs...]   (TARGET_FX: target fixture name, default target.json)
  local n=$1
  shift
  python3 "$here/make-fixture.py" --instances "$n" --out "$JG_DIR/fx" || jg_fail "fixture"
  (cd / && "$support/joget-env.sh" start "$ENVDIR" --source-fixture "$JG_DIR/fx/source.json" \
    --target-fixture "$JG_DIR/fx/${TARGET_FX:-target.json}" --emulator-bin "$EMU" "$@" >/dev/null) ||
    jg_fail "joget-env start"
  . "$ENVDIR/env"
}

# extra_target NAME FIXTURE: one more target emulator on the env's cluster; sets XURL and XDB
extra_target() {
  (cd / && "$support/pgcluster.sh" createdb "$JOGET_PG_DIR" "$1") >/dev/null || jg_fail "createdb $1"
  XDB=$(cd / && "$support/pgcluster.sh" conninfo "$JOGET_PG_DIR" "$1")
  "$EMU" --db "$XDB" --reset --fixture "$2" --port 0 --port-file "$JG_DIR/$1.port" >"$JG_DIR/$1.log" 2>&1 &
  EXTRA_PID=$!
  local i
  for i in $(seq 1 300); do [ -s "$JG_DIR/$1.port" ] && break; sleep 0.1; done
  XURL="http://127.0.0.1:$(cat "$JG_DIR/$1.port")/jw"
  for i in $(seq 1 300); do
    curl -s -o /dev/null -H "Referer: $XURL/" "$XURL/web/json/workflow/currentUsername" && return 0
    sleep 0.1
  done
  jg_fail "emulator $1 did not start: $(tail -5 "$JG_DIR/$1.log")"
}

ok() { echo "ok: $*"; }

run_ferry() { # expected-exit what args...
  local want=$1 what=$2
  shift 2
  "$FERRY" "$@" --progress none >"$JG_DIR/out" 2>&1
  local got=$?
  if [ "$got" != "$want" ]; then
    sed 's/^/    /' "$JG_DIR/out" | tail -40
    jg_fail "$what: exit $got, expected $want"
  fi
}

report_items() { # CONFIG -> "key status error" lines
  python3 - "$1.report" <<'EOF'
import json, sys
r = json.load(open(sys.argv[1]))
for st in r["stages"]:
    for it in st.get("items", []):
        print(it["key"], it["status"], it.get("error", ""))
EOF
}

case_inventory() {
  start_env 16
  local before
  before=$(jg_checksum "$JOGET_SOURCE_DB")
  jg_inventory "$JOGET_SOURCE_URL" "$JOGET_SOURCE_DB" sql.jsonl
  jg_inventory "$JOGET_SOURCE_URL" "" http.jsonl
  python3 - sql.jsonl http.jsonl <<'EOF' || jg_fail "inventory content"
import json, sys
def load(p):
    return {json.loads(l)["key"]: json.loads(l)["body"] for l in open(p)}
sql, http = load(sys.argv[1]), load(sys.argv[2])
fx = json.load(open("fx/source.json"))
assert len(sql) == 16, "16 top-level items expected, got %d" % len(sql)
rids = sorted(b["record_id"] for b in sql.values())
assert rids == sorted(i["recordId"] for i in fx["instances"]), rids
byrid = {b["record_id"]: b for b in sql.values()}
for i, inst in enumerate(fx["instances"]):
    b = byrid[inst["recordId"]]
    assert b["requester"] == inst["requester"], (b["id"], b["requester"])
    assert b["definition"].replace("#", ":") == inst["process"], b["definition"]
    for k, v in inst["variables"].items():
        want = ("true" if v else "false") if isinstance(v, bool) else str(v)
        assert b["variables"].get(k) == want, (b["id"], k, b["variables"].get(k), want)
    acts = [(a["def_id"], sorted(a["assignees"])) for a in b["activities"]]
    want = [(a["id"], sorted(a.get("assignees", []))) for a in inst["activities"]]
    assert sorted(acts) == sorted(want), (b["id"], acts, want)
    for a, fa in zip(sorted(b["activities"], key=lambda x: x["def_id"]), sorted(inst["activities"], key=lambda x: x["id"])):
        if fa.get("accepted"):
            assert a["accepted_by"] == fa["assignees"][0] and a["state"] == "open.running", a
        elif "children" in fa:
            assert a["state"] == "open.running" and not a["assignees"], a
        else:
            assert a["accepted_by"] is None and a["state"] == "open.not_running.not_started", a
    subs = b["extra"]["subflows"]
    if any("children" in a for a in inst["activities"]):
        assert len(subs) == 1 and subs[0]["activity_def_id"] == "provision", subs
        ch = subs[0]["children"]
        assert len(ch) == 1 and ch[0]["definition"] == "hrapp#3#provision_account", ch
        assert ch[0]["record_id"] == b["record_id"] and ch[0]["parent"] == b["id"], ch[0]
        assert [(a["def_id"], a["assignees"]) for a in ch[0]["activities"]] == [("create_account", ["it1"])], ch
        assert ch[0]["variables"]["employee"] == inst["variables"]["employee"]
        assert ch[0]["id"] not in sql, "a sub-flow child is an item of its own"
    else:
        assert subs == [], subs
    # the form tables holding the record on the source (the sink refuses to start on a record left behind)
    want_tables = sorted("app_fd_" + r["table"] for r in fx.get("records", []) if r["id"] == inst["recordId"])
    got_tables = sorted(t["table"] for t in b["extra"].get("record_tables", []))
    assert got_tables == want_tables, (b["id"], got_tables, want_tables)
    assert b["extra"]["joins_read"] is True, b["extra"]
    got_j = sorted((a["def_id"], a["performer"]) for j in b["extra"]["joins"] for a in j["arrived"])
    assert got_j == sorted((a["id"], a["performer"]) for a in inst.get("arrived", [])), (b["id"], got_j)
# HTTP-only mode: the same content (minus what only SQL knows)
def strip(b):
    b = json.loads(json.dumps(b))
    b.pop("app_version", None)
    for k in ("record_tables", "joins_read", "joins"):
        b["extra"].pop(k, None)
    for a in b["activities"]:
        a.pop("due_ms", None)
        a.pop("deadlines", None)
        a.pop("due", None)
    for sf in b["extra"]["subflows"]:
        sf.pop("activity_id", None)
        sf["children"] = [strip(c) for c in sf["children"]]
    return b
assert set(sql) == set(http), (sorted(sql), sorted(http))
for k in sql:
    assert strip(sql[k]) == strip(http[k]), (k, strip(sql[k]), strip(http[k]))
print("inventory content ok")
EOF
  ok "inventory content, sub-flows folded, SQL and HTTP inventories equal"
  # --limit and filters
  jg_config f.json f.db "{\"url\": \"$JOGET_SOURCE_URL\", \"password\": \"admin\", \"apps\": [\"opsapp\"]}" jsonl '{"path": "f.jsonl"}'
  run_ferry 0 "apps filter" run -c f.json -q
  [ "$(wc -l < f.jsonl)" = 2 ] || jg_fail "apps filter: $(wc -l < f.jsonl) items, expected 2"
  jg_config p.json p.db "{\"url\": \"$JOGET_SOURCE_URL\", \"password\": \"admin\", \"dsn\": \"$JOGET_SOURCE_DB\", \"processes\": [\"expense_claim\"], \"page_size\": 3}" jsonl '{"path": "p.jsonl"}'
  run_ferry 0 "processes filter" run -c p.json -q
  [ "$(wc -l < p.jsonl)" = 4 ] || jg_fail "processes filter: $(wc -l < p.jsonl) items, expected 4"
  ok "apps and processes filters, small pages"
  # wrong admin password: a clear error naming the identity
  jg_config w.json w.db "{\"url\": \"$JOGET_SOURCE_URL\", \"password\": \"nope\"}" jsonl '{"path": "w.jsonl"}'
  run_ferry 6 "wrong source password" run -c w.json
  grep -q 'admin user "admin" was refused (HTTP 401' "$JG_DIR/out" || jg_fail "wrong password message: $(cat out)"
  ok "wrong source password: clear error"
  [ "$before" = "$(jg_checksum "$JOGET_SOURCE_DB")" ] || jg_fail "the source database changed"
  ! grep -q ' POST ' "$ENVDIR/source.requests" || jg_fail "the source received POST requests"
  ok "source unchanged"
}

migrate_and_check() { # config
  local cfg=$1
  run_ferry 0 "plan" plan -c "$cfg"
  local tb
  tb=$(jg_all_count "$JOGET_TARGET_DB")
  [ "$tb" = 0 ] || jg_fail "plan wrote to the target ($tb instances)"
  run_ferry 0 "canary run" run -c "$cfg" --limit 1
  [ "$(jg_running_count "$JOGET_TARGET_DB")" = 1 ] || jg_fail "--limit 1 made $(jg_running_count "$JOGET_TARGET_DB") instances"
  run_ferry 0 "run" run -c "$cfg"
  jg_inventory "$JOGET_SOURCE_URL" "$JOGET_SOURCE_DB" src.jsonl
  jg_inventory "$JOGET_TARGET_URL" "$JOGET_TARGET_DB" tgt.jsonl
  jg_compare src.jsonl tgt.jsonl || jg_fail "target differs from the source"
  local ns nt
  ns=$(jg_all_count "$JOGET_SOURCE_DB")
  nt=$(jg_all_count "$JOGET_TARGET_DB")
  [ "$ns" = "$nt" ] || jg_fail "$ns instances (with sub-flows) on the source, $nt on the target"
  run_ferry 0 "verify" verify -c "$cfg"
  # the record link: wf_process_link of every target instance = the source record id (checked by verify too)
  local links
  links=$(jg_psql "$JOGET_TARGET_DB" "SELECT count(*) FROM shkprocesses p JOIN wf_process_link l ON l.processid = p.id")
  [ "$links" = "$nt" ] || jg_fail "$links of $nt target instances linked to a record"
}

case_migrate() {
  start_env 32
  local before
  before=$(jg_checksum "$JOGET_SOURCE_DB")
  jg_config m.json m.db "$(jg_src_opts)" joget "$(jg_tgt_opts)"
  migrate_and_check m.json
  ok "32 instances migrated: same activities, assignees, accepted state, variables, record ids, sub-flows"
  grep -q 'reassign' "$ENVDIR/target.requests" || jg_fail "no reassign call (acknowledge needs one)"
  grep -q 'assignment/accept' "$ENVDIR/target.requests" || jg_fail "no accept call"
  grep -q 'monitoring/process/variable' "$ENVDIR/target.requests" || jg_fail "no variable set after the start"
  # second run: nothing changes, not a single call to the target
  local posts
  posts=$(grep -c ' POST ' "$ENVDIR/target.requests")
  local cb
  cb=$(jg_checksum "$JOGET_TARGET_DB")
  run_ferry 0 "second run" run -c m.json
  grep -q 'instances .* 0 .* 0 .* 0' "$JG_DIR/out" || true
  [ "$posts" = "$(grep -c ' POST ' "$ENVDIR/target.requests")" ] || jg_fail "the second run wrote to the target"
  [ "$cb" = "$(jg_checksum "$JOGET_TARGET_DB")" ] || jg_fail "the second run changed the target"
  ok "second run changes nothing"
  [ "$before" = "$(jg_checksum "$JOGET_SOURCE_DB")" ] || jg_fail "the source database changed"
  ! grep -q ' POST ' "$ENVDIR/source.requests" || jg_fail "the source received POST requests"
  ok "source unchanged"
  # no secret in journal, report or output
  if grep -a -q 'master-secret' m.db* m.json.report "$JG_DIR/out" 2>/dev/null; then jg_fail "a secret leaked"; fi
  ok "no secret in journal, report, output"
}

case_faults() {
  start_env 24 --fail-rate 0.08 --fail-kinds 500,reset,timeout --timeout-ms 0 --seed 7
  local before
  before=$(jg_checksum "$JOGET_SOURCE_DB")
  jg_config m.json m.db "$(jg_src_opts | sed 's/}$/, "timeout_ms": 1500}/')" joget "$(jg_tgt_opts '"timeout_ms": 1500')" \
    '"retry": {"max": 12, "base_ms": 20, "cap_ms": 500}, "concurrency": 4'
  run_ferry 0 "plan with faults" plan -c m.json
  run_ferry 0 "run with faults" run -c m.json
  grep -q 'fault=' "$ENVDIR/target.requests" || jg_fail "no fault was injected on the target"
  grep -q 'fault=' "$ENVDIR/source.requests" || jg_fail "no fault was injected on the source"
  # compare with faults still on: the inventories retry their reads
  export JG_INV_OPTS='"timeout_ms": 1500'
  jg_inventory "$JOGET_SOURCE_URL" "$JOGET_SOURCE_DB" src.jsonl
  jg_inventory "$JOGET_TARGET_URL" "$JOGET_TARGET_DB" tgt.jsonl
  jg_compare src.jsonl tgt.jsonl || jg_fail "target differs from the source after faults"
  [ "$(jg_all_count "$JOGET_SOURCE_DB")" = "$(jg_all_count "$JOGET_TARGET_DB")" ] || jg_fail "instance counts differ"
  run_ferry 0 "verify with faults" verify -c m.json
  [ "$before" = "$(jg_checksum "$JOGET_SOURCE_DB")" ] || jg_fail "the source database changed"
  ok "500s, resets and unanswered requests retried to a correct end ($(grep -c 'fault=' "$ENVDIR/target.requests") target faults)"
}

crash_round() { # knob [config]
  local knob=$1 cfg=${2:-m.json}
  FERRY_JOGET_TEST_CRASH_AFTER=$knob "$FERRY" run -c "$cfg" --progress none >"$JG_DIR/out" 2>&1
  local rc=$?
  cat "$JG_DIR/out" >> "$JG_DIR/crash.log"
  [ "$rc" = 137 ] || { tail -20 "$JG_DIR/out"; jg_fail "crash at $knob: exit $rc, expected 137 (SIGKILL)"; }
  grep -q "FERRY_JOGET_TEST_CRASH_AFTER=$knob" "$JG_DIR/out" || jg_fail "crash knob $knob did not fire"
}

case_crash() {
  start_env 24
  jg_config m.json m.db "$(jg_src_opts)" joget "$(jg_tgt_opts)" '"concurrency": 2'
  # 1. killed after process/start answered, before "started" was recorded: the instance exists on the target
  #    and the journal does not know it
  crash_round start:3
  local n1
  n1=$(jg_all_count "$JOGET_TARGET_DB")
  [ "$n1" -ge 3 ] || jg_fail "expected at least 3 target instances after the first crash, got $n1"
  # the journal holds the in-doubt item at step "start"
  run_ferry 5 "status after the crash (in doubt: exit 5)" status -c m.json
  grep -q 'start' "$JG_DIR/out" || { cat "$JG_DIR/out"; jg_fail "status shows no item in doubt at step start"; }
  # 2. resume; then crash before a start and in the middle of the activities
  crash_round before_start:2
  crash_round activity:2
  crash_round reassign:1
  run_ferry 0 "resume" run -c m.json
  cat "$JG_DIR/out" >> "$JG_DIR/crash.log"
  grep -q 'adopting target instance' "$JG_DIR/crash.log" || { tail -30 "$JG_DIR/out"; jg_fail "nothing adopted on resume"; }
  jg_inventory "$JOGET_SOURCE_URL" "$JOGET_SOURCE_DB" src.jsonl
  jg_inventory "$JOGET_TARGET_URL" "$JOGET_TARGET_DB" tgt.jsonl
  jg_compare src.jsonl tgt.jsonl || jg_fail "target differs from the source after crashes"
  local ns nt
  ns=$(jg_all_count "$JOGET_SOURCE_DB")
  nt=$(jg_psql "$JOGET_TARGET_DB" "SELECT count(*) FROM shkprocesses WHERE state IN (1000000,1000002,1000004)")
  [ "$ns" = "$nt" ] || jg_fail "$ns source instances, $nt running target instances: duplicates or missing"
  run_ferry 0 "verify after crashes" verify -c m.json
  ok "SIGKILL after start, before start, mid-activities, mid-reassign: resumed without duplicate or gap"
}

case_joins() {
  start_env 24
  local n6
  n6=$(jg_psql "$JOGET_SOURCE_DB" "SELECT count(DISTINCT process) FROM shkandjointable")
  [ "$n6" -ge 2 ] || jg_fail "the fixture has $n6 partly joined instances"
  # and_joins report: plan says it, per instance
  jg_config r.json r.db "$(jg_src_opts)" joget "$(jg_tgt_opts '"and_joins": "report"')"
  run_ferry 0 "plan (and_joins report)" plan -c r.json
  python3 - r.json.report "$n6" <<'EOF' || jg_fail "plan does not name the join loss"
import json, sys
r = json.load(open(sys.argv[1]))
items = [i for s in r["stages"] for i in s["items"]]
hit = [i for i in items if "has 1 of 2 arrivals" in (i.get("report") or {}).get("would", "")]
assert len(hit) == int(sys.argv[2]), [(i.get("report") or {}).get("would") for i in items]
EOF
  ok "plan names the loss per instance with and_joins report"
  # carry, killed right after the first re-created arrival
  jg_config m.json m.db "$(jg_src_opts)" joget "$(jg_tgt_opts)" '"concurrency": 2'
  run_ferry 0 "plan (carry)" plan -c m.json
  grep -q "re-create 1 arrival(s) at join" m.json.report || jg_fail "plan does not say it re-creates the arrivals"
  crash_round join:1
  run_ferry 0 "resume" run -c m.json
  local tj
  tj=$(jg_psql "$JOGET_TARGET_DB" "SELECT count(*) FROM shkandjointable")
  [ "$tj" = "$n6" ] || jg_fail "$tj arrivals on the target's joins, $n6 on the source's"
  jg_inventory "$JOGET_SOURCE_URL" "$JOGET_SOURCE_DB" src.jsonl
  jg_inventory "$JOGET_TARGET_URL" "$JOGET_TARGET_DB" tgt.jsonl
  jg_compare src.jsonl tgt.jsonl || jg_fail "target differs (joins)"
  run_ferry 0 "verify" verify -c m.json
  # the target's join fires when the open branch completes there
  local pid aid
  pid=$(jg_psql "$JOGET_TARGET_DB" "SELECT p.id FROM shkandjointable j JOIN shkprocesses p ON p.oid = j.process ORDER BY 1 LIMIT 1")
  aid=$(jg_psql "$JOGET_TARGET_DB" "SELECT id FROM shkactivities WHERE processid = '$pid' AND activitydefinitionid = 'manager_ok' AND state = 1000003")
  curl -fsS -X POST -H "Referer: $JOGET_TARGET_URL/" --data "j_username=mgr1&j_password=pw" \
    "$JOGET_TARGET_URL/web/json/workflow/assignment/complete/$aid" >/dev/null || jg_fail "completing manager_ok"
  # the join (route "merge") fired: "pay", after it, is open
  [ "$(jg_psql "$JOGET_TARGET_DB" "SELECT count(*) FROM shkactivities WHERE processid = '$pid' AND activitydefinitionid = 'pay' AND state IN (1000001, 1000003)")" = 1 ] ||
    jg_fail "the target's join did not fire after the open branch completed: $(jg_psql "$JOGET_TARGET_DB" "SELECT activitydefinitionid, state FROM shkactivities WHERE processid = '$pid'")"
  ok "AND-join arrivals re-created as their performers, once, and the join fires on the target"
}

case_duplicates() {
  start_env 16 --fail-rate 0.4 --fail-kinds twice --seed 3
  jg_config m.json m.db "$(jg_src_opts)" joget "$(jg_tgt_opts)"
  run_ferry 0 "run against a target that starts some instances twice" run -c m.json
  local twice aborted
  twice=$(grep -c "fault=twice" "$ENVDIR/target.requests")
  [ "$twice" -ge 2 ] || jg_fail "only $twice start(s) were executed twice"
  grep -q "holds a second new instance" "$JG_DIR/out" || jg_fail "the log does not name the duplicates"
  aborted=$(python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
print(sum(len((i.get("report") or {}).get("duplicates_aborted", [])) for s in r["stages"] for i in s["items"]))' m.json.report)
  [ "$aborted" -ge 1 ] || jg_fail "the report names no aborted duplicate"
  local ns nt
  ns=$(jg_running_count "$JOGET_SOURCE_DB")
  nt=$(jg_running_count "$JOGET_TARGET_DB")
  [ "$ns" = "$nt" ] || jg_fail "$ns source instances, $nt running target instances"
  jg_inventory "$JOGET_SOURCE_URL" "$JOGET_SOURCE_DB" src.jsonl
  jg_inventory "$JOGET_TARGET_URL" "$JOGET_TARGET_DB" tgt.jsonl
  jg_compare src.jsonl tgt.jsonl || jg_fail "target differs after the duplicates"
  run_ferry 0 "status --items" status -c m.json --items --json
  grep -q '"duplicate"' "$JG_DIR/out" || jg_fail "status --items does not show the duplicate loss"
  ok "$twice doubled starts: $aborted extra instance(s) aborted and named, one target instance per source instance"
}

case_plan() {
  start_env 16
  # a record id with a space on the source (Joget's SQL filter answers 500 for it): instance of record rec-0000
  jg_psql "$JOGET_SOURCE_DB" "UPDATE wf_process_link SET originprocessid = 'rec 0000', parentprocessid = 'rec 0000' WHERE originprocessid = 'rec-0000'"
  local before
  before=$(jg_checksum "$JOGET_SOURCE_DB")
  # a second target: the broken one, on the same cluster
  extra_target joget_broken "$JG_DIR/fx/target-broken.json"
  local ci=$XDB burl=$XURL
  local bopts="{\"url\": \"$burl\", \"record_check\": false, \"password\": \"admin\", \"dsn\": \"$ci\", \"master_user\": \"master\", \"master_password\": \"master-secret\"}"
  jg_config b.json b.db "$(jg_src_opts)" joget "$bopts"
  run_ferry 3 "plan against the broken target" plan -c b.json
  report_items b.json > items.txt
  check_item() { # pattern-of-key-or-record status message-fragment
    grep -q -- "$2" items.txt || { cat items.txt; jg_fail "plan report lacks: $2"; }
  }
  check_item x "blocked .*the target has no process definition opsapp#1#ticket"
  check_item x "blocked .*open activity acknowledge does not exist in the target definition hrapp#3#leave_request"
  check_item x "blocked .*user hr2 does not exist"
  check_item x "blocked .*record id \"rec 0000\" cannot be passed to Joget"
  local blocked
  blocked=$(grep -c ' blocked ' items.txt)
  # kinds 1 (hr_check: hr2), 3? no; 4 (acknowledge), 7 (opsapp), record rec-0000 (kind 0): 2+2+2+1 of 16
  [ "$blocked" = 7 ] || { cat items.txt; jg_fail "$blocked items blocked, expected 7"; }
  ok "plan: missing app, unknown activity id, missing user, record id with a space: blocked with reasons"
  local nb
  nb=$(jg_all_count "$ci")
  [ "$nb" = 0 ] || jg_fail "plan wrote to the broken target"
  # run against the broken target: those items fail before anything is written
  run_ferry 1 "run against the broken target" run -c b.json
  report_items b.json > run-items.txt
  grep -q 'no process definition opsapp#1#ticket' run-items.txt || { cat run-items.txt; jg_fail "run: missing app"; }
  grep -q 'acknowledge' run-items.txt || { cat run-items.txt; jg_fail "run: unknown activity"; }
  grep -q 'rec 0000' run-items.txt || { cat run-items.txt; jg_fail "run: record id"; }
  local failed
  failed=$(grep -c ' failed ' run-items.txt)
  nb=$(jg_all_count "$ci")
  # 16 - 7 blocked items were migrated (their sub-flow children too): kinds 0 (1 of 2), 2, 3 (+child), 5, 6
  [ "$nb" = $((16 - 7 + 2)) ] || { cat run-items.txt; jg_fail "run wrote $nb instances to the broken target, expected 11"; }
  [ "$failed" = 7 ] || { cat run-items.txt; jg_fail "$failed items failed, expected 7"; }
  ok "run: the blocked items fail before anything is written for them"
  # wrong admin password / wrong master password: everything blocked, nothing written
  jg_config w.json w.db "$(jg_src_opts)" joget "$(jg_tgt_opts | sed 's/"password": "admin"/"password": "wrong"/')"
  run_ferry 3 "plan with a wrong admin password" plan -c w.json
  report_items w.json > w-items.txt
  grep -q 'blocked .*GET workflow/currentUsername: .* was refused (HTTP 401 Bad credentials): check the password or hash' w-items.txt || { head -3 w-items.txt; jg_fail "wrong admin password message"; }
  run_ferry 1 "run with a wrong admin password" run -c w.json
  [ "$(jg_all_count "$JOGET_TARGET_DB")" = 0 ] || jg_fail "run with a wrong admin password wrote to the target"
  jg_config wm.json wm.db "$(jg_src_opts)" joget "$(jg_tgt_opts | sed 's/master-secret/not-it/')"
  run_ferry 3 "plan with a wrong master password" plan -c wm.json
  report_items wm.json > wm-items.txt
  grep -q 'blocked .*the master login did not take' wm-items.txt || { head -3 wm-items.txt; jg_fail "wrong master password message"; }
  run_ferry 1 "run with a wrong master password" run -c wm.json
  [ "$(jg_all_count "$JOGET_TARGET_DB")" = 0 ] || jg_fail "run with a wrong master password wrote to the target"
  ok "wrong admin / master credentials: blocked in plan, nothing written by run"
  [ "$before" = "$(jg_checksum "$JOGET_SOURCE_DB")" ] || jg_fail "the source database changed"
  ok "source unchanged"
}

case_http() {
  # HTTP only on both sides (no dsn): inventory heuristics for sub-flows, reads over HTTP, reconcile over HTTP
  start_env 16
  local before
  before=$(jg_checksum "$JOGET_SOURCE_DB")
  local topts="{\"url\": \"$JOGET_TARGET_URL\", \"password\": \"admin\", \"master_user\": \"master\", \"master_password\": \"master-secret\"}"
  jg_config h.json h.db "$(jg_src_opts http)" joget "$topts" '"concurrency": 2'
  run_ferry 0 "plan over HTTP" plan -c h.json
  grep -q 'not checked' h.json.report || jg_fail "plan over HTTP does not say what it could not check"
  grep -q 'arrivals at AND-joins were not read' h.json.report || jg_fail "plan over HTTP does not name the join loss"
  crash_round start:2 h.json
  run_ferry 0 "run over HTTP" run -c h.json
  cat "$JG_DIR/out" >> "$JG_DIR/crash.log"
  grep -q 'adopting target instance' "$JG_DIR/crash.log" || jg_fail "nothing adopted over HTTP"
  jg_inventory "$JOGET_SOURCE_URL" "$JOGET_SOURCE_DB" src.jsonl
  jg_inventory "$JOGET_TARGET_URL" "$JOGET_TARGET_DB" tgt.jsonl
  # without a source dsn the arrivals at AND-joins cannot be read (named as a loss above): not compared
  JG_COMPARE_NO_JOINS=1 jg_compare src.jsonl tgt.jsonl || jg_fail "target differs from the source (HTTP only)"
  [ "$(jg_all_count "$JOGET_SOURCE_DB")" = "$(jg_all_count "$JOGET_TARGET_DB")" ] || jg_fail "instance counts differ"
  run_ferry 0 "verify over HTTP" verify -c h.json
  [ "$before" = "$(jg_checksum "$JOGET_SOURCE_DB")" ] || jg_fail "the source database changed"
  ok "HTTP only: plan, run with a crash after start (adopted), verify"
}

case_options() {
  # the target imported hrapp again (package version 5): version latest / version_map; start_as hash / users
  TARGET_FX=target-v5.json start_env 16
  jg_config a.json a.db "$(jg_src_opts)" joget "$(jg_tgt_opts '"start_as": "hash", "version": "latest"')"
  run_ferry 0 "plan (hash, latest)" plan -c a.json
  grep -q 'hrapp#5#leave_request' a.json.report || jg_fail "plan does not name the target definition hrapp#5#..."
  run_ferry 0 "run (hash, latest)" run -c a.json
  jg_inventory "$JOGET_SOURCE_URL" "$JOGET_SOURCE_DB" src.jsonl
  jg_inventory "$JOGET_TARGET_URL" "$JOGET_TARGET_DB" tgt.jsonl
  jg_compare src.jsonl tgt.jsonl || jg_fail "target differs (hash, latest)"
  [ "$(jg_psql "$JOGET_TARGET_DB" "SELECT count(*) FROM shkprocesses WHERE pdefname LIKE 'hrapp#5#%'")" = \
    "$(jg_psql "$JOGET_SOURCE_DB" "SELECT count(*) FROM shkprocesses WHERE pdefname LIKE 'hrapp#3#%'")" ] ||
    jg_fail "instances not on hrapp#5"
  run_ferry 0 "verify (hash, latest)" verify -c a.json
  ok "start_as hash, version latest"
  extra_target joget_t3 "$JG_DIR/fx/target-v5.json"
  local users='{"emp01": "pw", "emp02": {"password": "pw"}, "emp03": "pw", "emp04": "pw", "emp05": "pw", "emp06": "pw", "mgr1": "pw", "fin1": "pw", "fin2": "pw"}'
  jg_config u.json u.db "$(jg_src_opts)" joget \
    "{\"url\": \"$XURL\", \"record_check\": false, \"password\": \"admin\", \"dsn\": \"$XDB\", \"start_as\": \"users\", \"users\": $users, \"version_map\": {\"hrapp#3\": \"5\"}}"
  run_ferry 0 "run (users, version_map)" run -c u.json
  jg_inventory "$XURL" "$XDB" t3.jsonl
  jg_compare src.jsonl t3.jsonl || jg_fail "target differs (users, version_map)"
  run_ferry 0 "verify (users, version_map)" verify -c u.json
  # a requester without credentials: blocked in plan with a clear reason
  jg_config u2.json u2.db "$(jg_src_opts)" joget \
    "{\"url\": \"$XURL\", \"record_check\": false, \"password\": \"admin\", \"start_as\": \"users\", \"users\": {\"emp01\": \"pw\"}, \"version_map\": {\"hrapp\": \"5\"}}"
  run_ferry 3 "plan (users missing)" plan -c u2.json
  report_items u2.json > u2.txt
  grep -q 'blocked .*no credentials for user "emp02" in the users option' u2.txt || { head -3 u2.txt; jg_fail "users: message"; }
  ok "start_as users, version_map; missing credentials blocked"
}

"case_$CASE"
echo "PASS: $CASE"
