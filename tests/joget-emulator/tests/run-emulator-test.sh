#!/usr/bin/env bash
# CTest driver for the joget-emulator tests.
#   run-emulator-test.sh pg-start STATE SUPPORT        start the private PostgreSQL cluster (fixture setup)
#   run-emulator-test.sh pg-stop STATE SUPPORT         stop it and remove its directory (fixture cleanup)
#   run-emulator-test.sh suite STATE SUPPORT EMU TESTBIN SUITE FIXDIR
#   run-emulator-test.sh cli STATE SUPPORT EMU FIXDIR
#   run-emulator-test.sh generator STATE SUPPORT EMU GEN TESTBIN
# Each suite gets its own database and its own emulator processes on free ports; they are stopped (SIGTERM, and
# their exit status checked, so sanitizer leak reports fail the test) whatever happens.
set -uo pipefail
mode=$1 state=$2 support=$3
shift 3
die() { echo "run-emulator-test: $*" >&2; exit 1; }

case "$mode" in
joget-env) # joget-env SUPPORT(already shifted as state/support) EMU FIXDIR: start + stop the helper's environment
  emu=$1 fix=$2
  d=$(mktemp -d /tmp/emu-jenv.XXXXXX)
  out=$("$support/joget-env.sh" start "$d/state" --source-fixture "$fix/source.json" --target-fixture "$fix/target.json" \
        --emulator-bin "$emu" --threads 2) || { "$support/joget-env.sh" stop "$d/state"; die "joget-env start failed"; }
  . "$d/state/env"
  st=0
  code=$(curl -s -o /dev/null -w '%{http_code}' -H "Referer: http://127.0.0.1/jw/" \
         "$JOGET_TARGET_URL/web/json/workflow/currentUsername?j_username=admin&j_password=admin")
  [ "$code" = 200 ] || { echo "FAIL: target does not answer ($code)"; st=1; }
  n=$(curl -s -H "Referer: http://127.0.0.1/jw/" "$JOGET_SOURCE_URL/web/json/console/monitor/running/list?j_username=admin&j_password=admin&rows=1" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["total"])')
  [ "$n" = 10 ] || { echo "FAIL: source should hold 10 running instances, has $n"; st=1; }
  echo "$out" | grep -q "^JOGET_SOURCE_DB='host=" || { echo "FAIL: env lacks JOGET_SOURCE_DB"; st=1; }
  spid=$JOGET_SOURCE_PID tpid=$JOGET_TARGET_PID
  "$support/joget-env.sh" stop "$d/state" || st=1
  kill -0 "$spid" 2>/dev/null && { echo "FAIL: source emulator still running"; st=1; }
  kill -0 "$tpid" 2>/dev/null && { echo "FAIL: target emulator still running"; st=1; }
  [ -d "$JOGET_PG_DIR" ] && { echo "FAIL: cluster dir left behind"; st=1; }
  "$support/joget-env.sh" stop "$d/state" || { echo "FAIL: second stop"; st=1; }
  grep -q "shutting down" "$d/state/source.log" || { echo "FAIL: source did not shut down cleanly"; st=1; }
  [ $st -eq 0 ] && echo "joget-env: ok" && rm -rf "$d"
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
esac

[ -f "$state/pgdir" ] || die "no PostgreSQL cluster (the emulator.pg.start fixture did not run)"
pgdir=$(cat "$state/pgdir")
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

newdb() { "$support/pgcluster.sh" createdb "$pgdir" "$1" >/dev/null && "$support/pgcluster.sh" conninfo "$pgdir" "$1"; }

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
    EMU_URL=$URL_f1 EMU_URL2=$URL_f2 EMU_URL3=$URL_f3 EMU_URL4=$URL_f4 EMU_DB=$ci \
      EMU_LOG1=$work/f1.requests "$testbin" faults ;;
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
  check "--fail-kinds boom refused" '[ $st -eq 2 ] && grep -q "boom" "$work/e2"'
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
  "$emu" --db "$ci" --reset --fixture "$fix/conformance.json" --uploads "$work/up" --load-only 2>"$work/e8"; st=$?
  check "conformance fixture loads" '[ $st -eq 0 ]'
  "$emu" --db "$ci" --fixture "$fix/conformance.json" --load-only 2>"$work/e9"; st=$?
  check "second start reuses the database" '[ $st -eq 0 ] && grep -q "reusing" "$work/e9"'
  exit $fail ;;
generator)
  emu=$1 gen=$2 testbin=$3
  ci=$(newdb emu_generator)
  n=400
  python3 "$gen" --instances $n --source "$work/gs.json" --target "$work/gt.json" || die "generator failed"
  t0=$(date +%s%N)
  "$emu" --db "$ci" --reset --fixture "$work/gs.json" --uploads "$work/up-gen" --load-only || die "loading the generated fixture failed"
  t1=$(date +%s%N)
  echo "loaded $n generated instances in $(( (t1 - t0) / 1000000 )) ms"
  start_emu gen "$ci"
  EMU_URL=$URL_gen EMU_DB=$ci EMU_UPLOADS=$work/up-gen EMU_N=$n "$testbin" generator ;;
*) die "unknown mode $mode" ;;
esac
