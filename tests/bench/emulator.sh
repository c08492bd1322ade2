#!/usr/bin/env bash
# Throughput of the Joget emulator on loopback with keep-alive.
#   tests/bench/emulator.sh [--build-dir DIR] [--instances N] [--seconds S] [--connections C] [--threads T]
# Builds tests/joget-emulator in Release (non-sanitizer) into --build-dir (default /tmp/emu-bench-build), generates a
# source fixture with N running instances (default 1000), starts a private PostgreSQL and one emulator, and measures
# requests/second of (1) anonymous workflow/currentUsername, (2) authenticated workflow/currentUsername,
# (3) an authenticated admin list console/monitor/running/list?rows=10, with wrk (apt-get install wrk) or, when wrk
# is missing, the bundled libcurl-multi load generator emu-loadgen. Prints one line per request kind.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
build=/tmp/emu-bench-build n=1000 secs=5 conns=32 threads=8
while [ $# -gt 0 ]; do
  case "$1" in
  --build-dir) build=$2; shift 2 ;;
  --instances) n=$2; shift 2 ;;
  --seconds) secs=$2; shift 2 ;;
  --connections) conns=$2; shift 2 ;;
  --threads) threads=$2; shift 2 ;;
  *) echo "emulator.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
cmake -S "$root/tests/joget-emulator" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS= >/dev/null
cmake --build "$build" -j2 >/dev/null
work=$(mktemp -d /tmp/emu-bench.XXXXXX)
pg=$(mktemp -d /tmp/emu-bench-pg.XXXXXX)
emu_pid=""
cleanup() {
  [ -n "$emu_pid" ] && kill -TERM "$emu_pid" 2>/dev/null && wait "$emu_pid" 2>/dev/null || true
  "$root/tests/support/pgcluster.sh" stop "$pg" || true
  rm -rf "$work" "$pg"
}
trap cleanup EXIT
"$root/tests/support/pgcluster.sh" start "$pg" >/dev/null
"$root/tests/support/pgcluster.sh" createdb "$pg" bench
ci=$("$root/tests/support/pgcluster.sh" conninfo "$pg" bench)
python3 "$root/tests/joget-emulator/tools/gen-fixture.py" --instances "$n" --source "$work/s.json" --target "$work/t.json"
"$build/joget-emulator" --db "$ci" --reset --fixture "$work/s.json" --uploads "$work/up" --port 0 --port-file "$work/port" \
  --threads "$threads" >"$work/emu.log" 2>&1 &
emu_pid=$!
for i in $(seq 1 600); do [ -s "$work/port" ] && break; sleep 0.1; done
[ -s "$work/port" ] || { cat "$work/emu.log"; exit 1; }
base="http://127.0.0.1:$(cat "$work/port")/jw/web/json"
for i in $(seq 1 100); do curl -sf -H "Referer: http://127.0.0.1/jw/" "$base/workflow/currentUsername" >/dev/null && break; sleep 0.1; done
run() { # label url
  local label=$1 url=$2 rps
  if command -v wrk >/dev/null; then
    rps=$(wrk -t2 -c"$conns" -d"${secs}s" -H "Referer: http://127.0.0.1/jw/" "$url" | awk '/Requests\/sec/ {print $2}')
    echo "$label: $rps requests/second (wrk, $conns keep-alive connections, ${secs}s, $threads emulator threads)"
  else
    rps=$("$build/emu-loadgen" "$url" "$conns" "$secs" "Referer: http://127.0.0.1/jw/")
    echo "$label: $rps (emu-loadgen, $conns connections, $threads emulator threads)"
  fi
}
run "currentUsername (anonymous)" "$base/workflow/currentUsername"
run "currentUsername (j_username+j_password)" "$base/workflow/currentUsername?j_username=admin&j_password=admin"
pid=$(curl -s -H "Referer: http://127.0.0.1/jw/" "$base/console/monitor/running/list?j_username=admin&j_password=admin&rows=1" \
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["data"]["id"])')
run "monitoring/activity/list?processId=<one instance> (admin)" "$base/monitoring/activity/list?j_username=admin&j_password=admin&processId=$pid"
run "console/monitor/running/list rows=10 ($n instances, admin)" "$base/console/monitor/running/list?j_username=admin&j_password=admin&rows=10"
