#!/usr/bin/env bash
# CTest driver for the joget-emulator tests.
#   run-emulator-test.sh pg-start STATE SUPPORT        start the private PostgreSQL cluster (fixture setup)
#   run-emulator-test.sh pg-stop STATE SUPPORT         stop it and remove its directory (fixture cleanup)
#   run-emulator-test.sh my-start STATE SUPPORT        the same for the private MariaDB (tests/support/mariadb.sh)
#   run-emulator-test.sh my-stop STATE SUPPORT
#   run-emulator-test.sh suite STATE SUPPORT EMU TESTBIN SUITE FIXDIR   (SUITE: conformance engine faults features)
#   run-emulator-test.sh cli STATE SUPPORT EMU FIXDIR
#   run-emulator-test.sh generator STATE SUPPORT EMU GEN TESTBIN
#   run-emulator-test.sh compare STATE SUPPORT EMU FIXDIR   one emulator on PostgreSQL, one on MariaDB, same calls
# Each suite gets its own database and its own emulator processes on free ports; they are stopped (SIGTERM, and
# their exit status checked, so sanitizer leak reports fail the test) whatever happens. EMU_ENGINE=mariadb runs the
# suites, cli and generator on the private MariaDB instead of PostgreSQL (database URLs instead of conninfos).
set -uo pipefail
mode=$1 state=$2 support=$3
shift 3
die() { echo "run-emulator-test: $*" >&2; exit 1; }

case "$mode" in
joget-env) # joget-env SUPPORT(already shifted as state/support) EMU FIXDIR: start + stop the helper's environment
  # EMU_ENGINE=mariadb: both sides on one private MariaDB, then a mixed pair (source MariaDB, target PostgreSQL)
  emu=$1 fix=$2
  d=$(mktemp -d /tmp/emu-jenv.XXXXXX)
  st=0
  jenv_check() { # NAME EXPECT_SOURCE_DB_PREFIX EXPECT_TARGET_DB_PREFIX ENGINE ARGS...
    local name=$1 sp=$2 tp=$3 eng=$4 out code n spid tpid dirs f
    shift 4
    out=$("$support/joget-env.sh" start "$d/$name" --source-fixture "$fix/source.json" --target-fixture "$fix/target.json" \
          --emulator-bin "$emu" --threads 2 "$@") || { "$support/joget-env.sh" stop "$d/$name"; echo "FAIL: $name: joget-env start failed"; st=1; return; }
    ( . "$d/$name/env"
      code=$(curl -s -o /dev/null -w '%{http_code}' -H "Referer: http://127.0.0.1/jw/" \
             "$JOGET_TARGET_URL/web/json/workflow/currentUsername?j_username=admin&j_password=admin")
      [ "$code" = 200 ] || { echo "FAIL: $name: target does not answer ($code)"; exit 1; }
      n=$(curl -s -H "Referer: http://127.0.0.1/jw/" "$JOGET_SOURCE_URL/web/json/console/monitor/running/list?j_username=admin&j_password=admin&rows=1" \
          | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
      [ "$n" = 10 ] || { echo "FAIL: $name: source should hold 10 running instances, has $n"; exit 1; }
      [ "$JOGET_ENGINE" = "$eng" ] || { echo "FAIL: $name: JOGET_ENGINE=$JOGET_ENGINE, want $eng"; exit 1; }
      exit 0 ) || st=1
    echo "$out" | grep -q "^JOGET_SOURCE_DB='$sp" || { echo "FAIL: $name: JOGET_SOURCE_DB should start with $sp"; st=1; }
    echo "$out" | grep -q "^JOGET_TARGET_DB='$tp" || { echo "FAIL: $name: JOGET_TARGET_DB should start with $tp"; st=1; }
    . "$d/$name/env"
    spid=$JOGET_SOURCE_PID tpid=$JOGET_TARGET_PID dirs="$JOGET_SOURCE_DB_DIR $JOGET_TARGET_DB_DIR"
    "$support/joget-env.sh" stop "$d/$name" || st=1
    kill -0 "$spid" 2>/dev/null && { echo "FAIL: $name: source emulator still running"; st=1; }
    kill -0 "$tpid" 2>/dev/null && { echo "FAIL: $name: target emulator still running"; st=1; }
    for f in $dirs; do [ -d "$f" ] && { echo "FAIL: $name: database dir $f left behind"; st=1; }; done
    "$support/joget-env.sh" stop "$d/$name" || { echo "FAIL: $name: second stop"; st=1; }
    grep -q "shutting down" "$d/$name/source.log" || { echo "FAIL: $name: source did not shut down cleanly"; st=1; }
    unset JOGET_PG_DIR JOGET_MARIADB_DIR
  }
  if [ "${EMU_ENGINE:-postgresql}" = mariadb ]; then
    jenv_check my "mariadb://ferry:" "mariadb://ferry:" mariadb --engine mariadb
    jenv_check mixed "mariadb://ferry:" "host=" mixed --source-engine mariadb --target-engine postgresql
  else
    jenv_check pg "host=" "host=" postgresql
  fi
  [ $st -eq 0 ] && echo "joget-env: ok" && rm -rf "$d"
  exit $st ;;
mariadb-server) # tests/support/mariadb.sh on its own: start, logins, settings, createdb, restart, stop (also of a dead one)
  d=$(mktemp -d /tmp/emu-mysrv.XXXXXX)
  st=0
  ok() { if eval "$2"; then echo "ok: $1"; else echo "FAIL: $1" >&2; st=1; fi; }
  q() { mariadb --no-defaults -h 127.0.0.1 -P "$port" -u ferry -p"${PW:-ferry}" -N -B "$@" 2>&1; }
  t0=$(date +%s%N)
  port=$("$support/mariadb.sh" start "$d/s")
  t1=$(date +%s%N)
  echo "fresh start in $(( (t1 - t0) / 1000000 )) ms"
  ok "start prints the port and writes DIR/port and DIR/url" '[ -n "$port" ] && [ "$(cat "$d/s/port")" = "$port" ] && [ "$(cat "$d/s/url")" = "mariadb://ferry:ferry@127.0.0.1:$port/" ]'
  ok "url DIR DB" '[ "$("$support/mariadb.sh" url "$d/s" x1)" = "mariadb://ferry:ferry@127.0.0.1:$port/x1" ]'
  ok "TCP login with the password" '[ "$(q -e "SELECT 1")" = 1 ]'
  ok "a wrong password is refused" '! PW=wrong q -e "SELECT 1" >/dev/null'
  ok "case-sensitive table names, utf8mb4_unicode_ci" '[ "$(q -e "SELECT @@lower_case_table_names, @@character_set_server, @@collation_server")" = "$(printf "0\tutf8mb4\tutf8mb4_unicode_ci")" ]'
  "$support/mariadb.sh" createdb "$d/s" x1 && "$support/mariadb.sh" createdb "$d/s" x1
  ok "createdb (twice) makes a utf8mb4_unicode_ci database" '[ "$(q -e "SELECT default_collation_name FROM information_schema.schemata WHERE schema_name=\"x1\"")" = utf8mb4_unicode_ci ]'
  q x1 -e "CREATE TABLE T (a int); CREATE TABLE t (a int); INSERT INTO T VALUES (7)" >/dev/null
  ok "T and t are two tables" '[ "$(q x1 -e "SELECT count(*) FROM information_schema.tables WHERE table_schema=\"x1\"")" = 2 ]'
  ok "a second start while it runs is refused" '! "$support/mariadb.sh" start "$d/s" 2>/dev/null'
  pid=$(cat "$d/s/mariadbd.pid")
  "$support/mariadb.sh" stop "$d/s"
  ok "stop ends the server" '! kill -0 "$pid" 2>/dev/null && [ ! -f "$d/s/mariadbd.pid" ]'
  ok "stop again is fine" '"$support/mariadb.sh" stop "$d/s"'
  port=$("$support/mariadb.sh" start "$d/s" "$port")
  ok "a restart on the same directory keeps the data" '[ "$(q x1 -e "SELECT a FROM T")" = 7 ]'
  pid=$(cat "$d/s/mariadbd.pid")
  kill -KILL "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  ok "stop after the server died is fine" '"$support/mariadb.sh" stop "$d/s" && [ ! -f "$d/s/mariadbd.pid" ]'
  [ $st -eq 0 ] && rm -rf "$d"
  exit $st ;;
pg-start)
  mkdir -p "$state"
  if [ -f "$state/pgdir" ]; then "$support/pgcluster.sh" stop "$(cat "$state/pgdir")" || true; rm -rf "$(cat "$state/pgdir")"; fi
  dir=$(mktemp -d /tmp/emu-test-pg.XXXXXX)
  echo "$dir" > "$state/pgdir"
  "$support/pgcluster.sh" start "$dir" >/dev/null || die "cannot start PostgreSQL"
  exit 0 ;;
pg-stop)
  [ -f "$state/pgdir" ] || exit 0
  dir=$(cat "$state/pgdir")
  "$support/pgcluster.sh" stop "$dir" || true
  rm -rf "$dir" "$state/pgdir"
  exit 0 ;;
my-start)
  mkdir -p "$state"
  if [ -f "$state/mydir" ]; then "$support/mariadb.sh" stop "$(cat "$state/mydir")" || true; rm -rf "$(cat "$state/mydir")"; fi
  dir=$(mktemp -d /tmp/emu-test-my.XXXXXX)
  echo "$dir" > "$state/mydir"
  "$support/mariadb.sh" start "$dir" >/dev/null || die "cannot start MariaDB"
  exit 0 ;;
my-stop)
  [ -f "$state/mydir" ] || exit 0
  dir=$(cat "$state/mydir")
  "$support/mariadb.sh" stop "$dir" || true
  rm -rf "$dir" "$state/mydir"
  exit 0 ;;
esac

engine=${EMU_ENGINE:-postgresql}
if [ "$engine" = mariadb ] || [ "$mode" = compare ]; then
  [ -f "$state/mydir" ] || die "no MariaDB server (the emulator.mariadb.start fixture did not run)"
  mydir=$(cat "$state/mydir")
fi
if [ "$engine" != mariadb ] || [ "$mode" = compare ]; then
  [ -f "$state/pgdir" ] || die "no PostgreSQL cluster (the emulator.pg.start fixture did not run)"
  pgdir=$(cat "$state/pgdir")
fi
work=$(mktemp -d /tmp/emu-test.XXXXXX)
pids=()
cleanup() {
  local rc=$? p st
  for p in "${pids[@]}"; do
    kill -TERM "$p" 2>/dev/null
    wait "$p"; st=$?
    if [ "$st" -ne 0 ]; then echo "emulator pid $p exited with status $st (see $work/emu-*.log)" >&2; rc=1; fi
  done
  if [ "$rc" -ne 0 ]; then for f in "$work"/emu-*.log; do [ -f "$f" ] && { echo "--- $f"; tail -n 60 "$f"; }; done >&2; fi
  [ "$rc" -eq 0 ] && rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT

newdb_pg() { "$support/pgcluster.sh" createdb "$pgdir" "$1" >/dev/null && "$support/pgcluster.sh" conninfo "$pgdir" "$1"; }
newdb_my() { "$support/mariadb.sh" createdb "$mydir" "$1" >/dev/null && "$support/mariadb.sh" url "$mydir" "$1"; }
newdb() { if [ "$engine" = mariadb ]; then newdb_my "$1"; else newdb_pg "$1"; fi; }

# start_emu NAME CONNINFO ARGS... -> sets URL_<NAME>; waits (bounded) for the port file
start_emu() {
  local name=$1 ci=$2; shift 2
  rm -f "$work/$name.port"
  "$emu" --db "$ci" --port 0 --port-file "$work/$name.port" --request-log "$work/$name.requests" "$@" \
    >"$work/emu-$name.log" 2>&1 &
  pids+=($!)
  local i
  for i in $(seq 1 600); do
    [ -s "$work/$name.port" ] && break
    kill -0 "${pids[-1]}" 2>/dev/null || die "emulator $name exited early: $(tail -n 20 "$work/emu-$name.log")"
    sleep 0.1
  done
  [ -s "$work/$name.port" ] || die "emulator $name did not listen within 60 s"
  printf -v "URL_$name" 'http://127.0.0.1:%s/jw/web/json' "$(cat "$work/$name.port")"
}

case "$mode" in
suite)
  emu=$1 testbin=$2 suite=$3 fix=$4
  case "$suite" in
  conformance)
    ci=$(newdb emu_conformance)
    start_emu conf "$ci" --reset --fixture "$fix/conformance.json" --uploads "$work/up-conf"
    EMU_URL=$URL_conf EMU_DB=$ci EMU_UPLOADS=$work/up-conf "$testbin" conformance ;;
  engine)
    cs=$(newdb emu_engine_src); ct=$(newdb emu_engine_tgt)
    start_emu src "$cs" --reset --fixture "$fix/source.json" --uploads "$work/up-src"
    start_emu tgt "$ct" --reset --fixture "$fix/target.json" --uploads "$work/up-tgt"
    EMU_URL=$URL_tgt EMU_DB=$ct EMU_SRC_URL=$URL_src EMU_SRC_DB=$cs EMU_SRC_UPLOADS=$work/up-src "$testbin" engine ;;
  faults)
    ci=$(newdb emu_faults)
    start_emu f1 "$ci" --reset --fixture "$fix/conformance.json" --uploads "$work/up-f" --fail-rate 0.4 --fail-kinds 500,reset --seed 7
    start_emu f2 "$ci" --fail-rate 0.4 --fail-kinds 500,reset --seed 7
    start_emu f3 "$ci" --latency-ms 150
    start_emu f4 "$ci" --fail-rate 1 --fail-kinds timeout --timeout-ms 0
    start_emu f5 "$ci" --fail-rate 1 --fail-kinds lost
    start_emu f6 "$ci" --fail-rate 1 --fail-kinds partial
    start_emu f7 "$ci" --fail-rate 0.5 --fail-kinds 500,lost --seed 11
    start_emu f8 "$ci" --fail-rate 0.5 --fail-kinds 500,lost --seed 11
    start_emu f9 "$ci" --latency-ms 200 --max-inflight 2
    EMU_URL9=$URL_f9 EMU_URL=$URL_f1 EMU_URL2=$URL_f2 EMU_URL3=$URL_f3 EMU_URL4=$URL_f4 EMU_URL5=$URL_f5 EMU_URL6=$URL_f6 \
      EMU_URL7=$URL_f7 EMU_URL8=$URL_f8 EMU_DB=$ci EMU_LOG1=$work/f1.requests EMU_LOG5=$work/f5.requests \
      EMU_LOG6=$work/f6.requests "$testbin" faults ;;
  features)
    ci=$(newdb emu_features)
    start_emu feat "$ci" --reset --fixture "$fix/features.json" --audit-log "$work/audit.log"
    EMU_URL=$URL_feat EMU_DB=$ci EMU_AUDIT=$work/audit.log "$testbin" features ;;
  *) die "unknown suite $suite" ;;
  esac
  exit $? ;;
cli)
  emu=$1 fix=$2
  ci=$(newdb emu_cli)
  fail=0
  check() { if ! eval "$2"; then echo "FAIL: $1" >&2; fail=1; else echo "ok: $1"; fi; }
  "$emu" --help >"$work/help.txt"; st=$?
  check "--help exits 0 and documents --fail-kinds" '[ $st -eq 0 ] && grep -q -- "--fail-kinds" "$work/help.txt"'
  "$emu" --db "$ci" --port abc 2>"$work/e1"; st=$?
  check "--port abc refused naming the option" '[ $st -eq 2 ] && grep -q -- "--port" "$work/e1"'
  "$emu" --db "$ci" --fail-kinds 500,boom 2>"$work/e2"; st=$?
  check "--fail-kinds boom refused" '[ $st -eq 2 ] && grep -q "boom" "$work/e2" && grep -q "lost,partial" "$work/e2"'
  check "--help documents lost, partial and --audit-log" 'grep -q "lost" "$work/help.txt" && grep -q "partial" "$work/help.txt" && grep -q -- "--audit-log" "$work/help.txt"'
  "$emu" --db "$ci" --reset --audit-log /nonexistent-dir/audit.log --port 0 2>"$work/e2b"; st=$?
  check "--audit-log to an unwritable place refused naming it" '[ $st -eq 1 ] && grep -q -- "--audit-log /nonexistent-dir/audit.log" "$work/e2b"'
  "$emu" --port 0 2>"$work/e3"; st=$?
  check "missing --db refused" '[ $st -eq 2 ] && grep -q -- "--db" "$work/e3"'
  printf '{"apps": [ {"id": "x", "processes": [ {"id":"p", "activities":[{"id":"a","participant":"r"}],\n "transitions":[{"from":"a","to":"nowhere"}]}]}]}' >"$work/bad1.json"
  "$emu" --db "$ci" --reset --fixture "$work/bad1.json" --load-only 2>"$work/e4"; st=$?
  check "fixture error names file and field" '[ $st -ne 0 ] && grep -q "bad1.json" "$work/e4" && grep -q "transitions\[0\].to" "$work/e4"'
  printf '{"apps": [\n  {"id": "x",, }]}' >"$work/bad2.json"
  "$emu" --db "$ci" --reset --fixture "$work/bad2.json" --load-only 2>"$work/e5"; st=$?
  check "malformed JSON reported with file:line:column" '[ $st -ne 0 ] && grep -q "bad2.json:2:" "$work/e5"'
  printf '{"users":[{"username":"u"}]}' >"$work/bad3.json"
  "$emu" --db "$ci" --reset --fixture "$work/bad3.json" --load-only 2>"$work/e6"; st=$?
  check "missing password named" '[ $st -ne 0 ] && grep -q "users\[0\].password" "$work/e6"'
  printf '{"bogus": 1}' >"$work/bad4.json"
  "$emu" --db "$ci" --reset --fixture "$work/bad4.json" --load-only 2>"$work/e7"; st=$?
  check "unknown top-level key named" '[ $st -ne 0 ] && grep -q "bogus" "$work/e7"'
  # fixtures with AND-join arrivals, deadlines and default plugins: one error each, naming the field
  python3 - "$work" <<'EOF'
import copy, json, sys
w = sys.argv[1]
app = {"id": "j", "version": 1, "published": True, "processes": [{"id": "p",
       "participants": {"u": {"type": "user", "users": ["admin"]}},
       "activities": [{"id": "fork", "type": "route", "split": "and"}, {"id": "b1", "participant": "u"},
                      {"id": "b2", "participant": "u"}, {"id": "m", "participant": "u", "join": "and"},
                      {"id": "solo", "participant": "u"}],
       "transitions": [{"from": "fork", "to": "b1"}, {"from": "fork", "to": "b2"}, {"from": "b1", "to": "m"},
                       {"from": "b2", "to": "m"}, {"from": "fork", "to": "solo"}]}]}
base = {"users": [{"username": "admin", "password": "admin", "roles": ["ROLE_ADMIN"]}], "apps": [app],
        "instances": [{"process": "j:1:p", "requester": "admin", "activities": [{"id": "b2", "assignees": ["admin"]}]}]}
def write(name, arrived=None, mutate=None):
    f = copy.deepcopy(base)
    if arrived is not None:
        f["instances"][0]["arrived"] = arrived
    if mutate:
        mutate(f)
    json.dump(f, open("%s/%s.json" % (w, name), "w"))
write("arr-ok", [{"id": "b1", "performer": "admin"}])
write("arr-unknown", [{"id": "nope", "performer": "admin"}])
write("arr-nojoin", [{"id": "solo", "performer": "admin"}])
write("arr-noperf", [{"id": "b1"}])
write("arr-all", [{"id": "b1", "performer": "admin"}, {"id": "b2", "performer": "admin"}])
write("arr-type", {"id": "b1"})
write("dl-bad", None, lambda f: f["apps"][0]["processes"][0]["activities"][1].update({"deadline_ms": "2d"}))
write("lim-bad", None, lambda f: f["instances"][0]["activities"][0].update({"limit_ms": -1}))
write("plug-bad", None, lambda f: f["apps"][0].update({"defaultPlugins": [{"id": "x"}]}))
EOF
  "$emu" --db "$ci" --reset --fixture "$work/arr-ok.json" --load-only 2>"$work/a0"; st=$?
  check "fixture with an arrived branch loads" '[ $st -eq 0 ]'
  "$emu" --db "$ci" --reset --fixture "$work/arr-unknown.json" --load-only 2>"$work/a1"; st=$?
  check "arrived: unknown activity named" '[ $st -eq 1 ] && grep -q "arr-unknown.json: instances\[0\].arrived\[0\].id: .nope. is not an activity" "$work/a1"'
  "$emu" --db "$ci" --reset --fixture "$work/arr-nojoin.json" --load-only 2>"$work/a2"; st=$?
  check "arrived: activity not leading into an AND-join named" '[ $st -eq 1 ] && grep -q "instances\[0\].arrived\[0\].id: no transition of .solo. leads into an AND-join" "$work/a2"'
  "$emu" --db "$ci" --reset --fixture "$work/arr-noperf.json" --load-only 2>"$work/a3"; st=$?
  check "arrived: missing performer named" '[ $st -eq 1 ] && grep -q "instances\[0\].arrived\[0\].performer: missing" "$work/a3"'
  "$emu" --db "$ci" --reset --fixture "$work/arr-all.json" --load-only 2>"$work/a4"; st=$?
  check "arrived: every branch of the join arrived refused" '[ $st -eq 1 ] && grep -q "instances\[0\].arrived: every branch into the AND-join .m." "$work/a4"'
  "$emu" --db "$ci" --reset --fixture "$work/arr-type.json" --load-only 2>"$work/a5"; st=$?
  check "arrived: not an array named" '[ $st -eq 1 ] && grep -q "instances\[0\].arrived: must be an array" "$work/a5"'
  "$emu" --db "$ci" --reset --fixture "$work/dl-bad.json" --load-only 2>"$work/a6"; st=$?
  check "deadline_ms not an integer named" '[ $st -eq 1 ] && grep -q "activities\[1\].deadline_ms: must be a non-negative integer" "$work/a6"'
  "$emu" --db "$ci" --reset --fixture "$work/lim-bad.json" --load-only 2>"$work/a7"; st=$?
  check "limit_ms negative named" '[ $st -eq 1 ] && grep -q "instances\[0\].activities\[0\].limit_ms: must be a non-negative integer" "$work/a7"'
  "$emu" --db "$ci" --reset --fixture "$work/plug-bad.json" --load-only 2>"$work/a8"; st=$?
  check "defaultPlugins without pluginName named" '[ $st -eq 1 ] && grep -q "apps\[0\].defaultPlugins\[0\].pluginName: missing" "$work/a8"'
  "$emu" --db "$ci" --reset --fixture "$fix/conformance.json" --uploads "$work/up" --load-only 2>"$work/e8"; st=$?
  check "conformance fixture loads" '[ $st -eq 0 ]'
  "$emu" --db "$ci" --fixture "$fix/conformance.json" --load-only 2>"$work/e9"; st=$?
  check "second start reuses the database" '[ $st -eq 0 ] && grep -q "reusing" "$work/e9"'
  exit $fail ;;
compare)
  emu=$1 fix=$2
  engine=postgresql; cp=$(newdb_pg emu_compare)
  engine=mariadb; cm=$(newdb_my emu_compare)
  start_emu pg "$cp" --reset --fixture "$fix/source.json" --uploads "$work/up-pg" --threads 2
  start_emu my "$cm" --reset --fixture "$fix/source.json" --uploads "$work/up-my" --threads 2
  python3 "$(dirname "$0")/compare-engines.py" "$URL_pg" "$URL_my" "$fix/source.json" ;;
generator)
  emu=$1 gen=$2 testbin=$3
  ci=$(newdb emu_generator)
  n=400 joins=4
  python3 "$gen" --instances $n --source "$work/g0.json" --target "$work/gt0.json" || die "generator failed"
  python3 "$gen" --instances $n --joins 0 --source "$work/gz.json" --target "$work/gtz.json" || die "generator failed"
  cmp -s "$work/g0.json" "$work/gz.json" && cmp -s "$work/gt0.json" "$work/gtz.json" || die "--joins 0 changed the output"
  python3 "$gen" --instances $n --joins $joins --source "$work/gs.json" --target "$work/gt.json" || die "generator failed"
  cmp -s "$work/gt0.json" "$work/gt.json" || die "--joins changed the target fixture"
  python3 - "$work/g0.json" "$work/gs.json" $joins <<'EOF' || die "--joins changed more than the partly joined expense instances"
import json, sys
a, b, j = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), int(sys.argv[3])
assert {k: v for k, v in a.items() if k != "instances"} == {k: v for k, v in b.items() if k != "instances"}
changed = [i for i, (x, y) in enumerate(zip(a["instances"], b["instances"])) if x != y]
assert len(a["instances"]) == len(b["instances"]) and len(changed) == len(a["instances"]) // 4 // j, changed
assert all(b["instances"][i]["process"].endswith(":expense_claim") and "arrived" in b["instances"][i] for i in changed)
EOF
  t0=$(date +%s%N)
  "$emu" --db "$ci" --reset --fixture "$work/gs.json" --uploads "$work/up-gen" --load-only || die "loading the generated fixture failed"
  t1=$(date +%s%N)
  echo "loaded $n generated instances in $(( (t1 - t0) / 1000000 )) ms"
  start_emu gen "$ci"
  EMU_URL=$URL_gen EMU_DB=$ci EMU_UPLOADS=$work/up-gen EMU_N=$n EMU_JOINS=$joins "$testbin" generator ;;
*) die "unknown mode $mode" ;;
esac
