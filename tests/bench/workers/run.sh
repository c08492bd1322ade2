#!/usr/bin/env bash
# Workers benchmark (issue 12): see README.md in this folder for what it measures and the figures.
#
#   tests/bench/workers/run.sh [--instances 2000] [--latency-ms 20] [--server-concurrency 8] [--concurrency 8]
#                              [--workers "1 2 4"] [--employees N] [--build DIR]
#
# INSTANCES running Joget instances (the fixture generator's leave/expense kinds, no sub-flows) on a source
# emulator with no latency; per worker count K a fresh target emulator whose every reply takes LATENCY ms and
# that serves at most SERVER-CONCURRENCY requests at once (--max-inflight), and a fresh PostgreSQL journal.
# K `ferry run --worker` processes share the instances stage with a total concurrency of CONCURRENCY (each
# takes its share). The server's own bound is calls x latency / server concurrency: no client can be faster.
# EMPLOYEES: how many users start the instances (default: the generator's, 200 for 2,000 instances); every
# worker checks each of them once (workflow/currentUsername), so fewer users mean fewer extra calls per worker.
# Prints the wall time, the bound and their ratio per K, and checks one target instance per source instance.
# Release build (no sanitizers) in DIR (default build/bench-workers below the repository root).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
N=2000 LAT=20 SRV=8 C=8 WORKERS="1 2 4" EMP=0 BUILD=$root/build/bench-workers
while [ $# -gt 0 ]; do
  case "$1" in
  --instances) N=$2; shift 2 ;;
  --latency-ms) LAT=$2; shift 2 ;;
  --server-concurrency) SRV=$2; shift 2 ;;
  --concurrency) C=$2; shift 2 ;;
  --workers) WORKERS=$2; shift 2 ;;
  --employees) EMP=$2; shift 2 ;;
  --build) BUILD=$2; shift 2 ;;
  *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
W=$(mktemp -d /tmp/ferry-bench-workers.XXXXXX)
ENVDIR=$W/env
PIDS=()
cleanup() {
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  (cd / && "$root/tests/support/joget-env.sh" stop "$ENVDIR" >/dev/null 2>&1) || true
  if [ -z "${BENCH_KEEP:-}" ]; then rm -rf "$W"; else echo "kept $W"; fi
}
trap cleanup EXIT

echo "== build (Release) in $BUILD"
cmake -S "$root" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target ferry_cli ferry_plugin_joget joget-emulator >/dev/null
export FERRY="$BUILD/ferry" FERRY_PLUGIN_PATH="$BUILD/plugins-out" JG_DIR=$W
EMU=$BUILD/tests/joget-emulator/joget-emulator
# timed FILE COMMAND...: runs it; /usr/bin/time, when there is one, writes its CPU seconds (user system) to FILE
timed() {
  local out=$1; shift
  if [ -x /usr/bin/time ]; then /usr/bin/time -f "%U %S" -o "$out" "$@"; else "$@"; fi
}
. "$root/tests/joget/lib.sh"
gen=$root/tests/joget-emulator/tools/gen-fixture.py

python3 "$gen" --instances "$N" --employees "$EMP" --source "$W/all.json" --target "$W/target.json" --files-every 0
python3 - "$W/all.json" "$W/source.json" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1]))
f["instances"] = [i for i in f["instances"] if not i["process"].endswith("onboarding")]
f["records"] = []
json.dump(f, open(sys.argv[2], "w"))
print("source fixture: %d instances (no sub-flows)" % len(f["instances"]))
EOF
(cd / && "$root/tests/support/joget-env.sh" start "$ENVDIR" --source-fixture "$W/source.json" \
   --target-fixture "$W/target.json" --emulator-bin "$EMU") >/dev/null
. "$ENVDIR/env"
NS=$(jg_running_count "$JOGET_SOURCE_DB")

for k in $WORKERS; do
  db=joget_w$k jdb=journal_w$k
  (cd / && "$root/tests/support/pgcluster.sh" createdb "$JOGET_PG_DIR" "$db") >/dev/null
  (cd / && "$root/tests/support/pgcluster.sh" createdb "$JOGET_PG_DIR" "$jdb") >/dev/null
  ci=$(cd / && "$root/tests/support/pgcluster.sh" conninfo "$JOGET_PG_DIR" "$db")
  jurl="postgresql://ferry@127.0.0.1:$JOGET_PG_PORT/$jdb"
  "$EMU" --db "$ci" --reset --fixture "$W/target.json" --port 0 --port-file "$W/t$k.port" --latency-ms "$LAT" \
    --max-inflight "$SRV" --threads 8 --request-log "$W/t$k.requests" >"$W/t$k.log" 2>&1 &
  PIDS+=($!)
  for i in $(seq 1 3000); do [ -s "$W/t$k.port" ] && break; kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$W/t$k.log"; exit 1; }; sleep 0.1; done
  url="http://127.0.0.1:$(cat "$W/t$k.port")/jw"
  jg_config "$W/w$k.json" "$jurl" "$(jg_src_opts)" joget \
    "{\"url\": \"$url\", \"password\": \"admin\", \"dsn\": \"$ci\", \"master_user\": \"master\", \"master_password\": \"master-secret\", \"record_check\": false}" \
    "\"concurrency\": $C"
  wp=()
  t0=$(date +%s.%N)
  for i in $(seq 1 "$k"); do
    timed "$W/w$k.$i.time" "$FERRY" run -c "$W/w$k.json" --progress none --worker "w$i" >"$W/w$k.$i.out" 2>&1 &
    wp+=($!)
  done
  rc=0
  for p in "${wp[@]}"; do wait "$p" || rc=$?; done
  t1=$(date +%s.%N)
  [ "$rc" = 0 ] || { echo "a worker failed (exit $rc)"; tail -5 "$W"/w$k.*.out; exit 1; }
  # CPU seconds: the workers' (user + system, from /usr/bin/time) and the target emulator's (/proc, so far)
  wcpu=$(cat "$W"/w$k.*.time 2>/dev/null | awk '{s += $1 + $2} END {printf "%.1f", s}')
  tcpu=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/${PIDS[-1]}/stat")
  NT=$(jg_running_count "$ci")
  calls=$(grep -c '' "$W/t$k.requests")
  python3 - "$k" "$t0" "$t1" "$calls" "$LAT" "$SRV" "$C" "$NT" "$NS" "${wcpu:-?}" "$tcpu" "$(nproc)" <<'EOF'
import sys
k, t0, t1, calls, lat, srv, c, nt, ns = sys.argv[1], *map(float, sys.argv[2:4]), *map(int, sys.argv[4:10])
wcpu, tcpu, ncpu = sys.argv[10], sys.argv[11], int(sys.argv[12])
wall, bound = t1 - t0, calls * lat / 1000.0 / srv
print("RESULT workers %s: %.1f s for %d target calls (%d instances, target holds %d); server bound %.1f s "
      "(calls x %d ms / %d at once); bound / wall = %.2f (goal >= 0.9); total concurrency %d"
      % (k, wall, calls, ns, nt, bound, lat, srv, bound / wall, c))
print("CPU workers %s: workers %s s, target emulator %s s, of %.1f s (%d cores x wall); the rest: PostgreSQL, "
      "the source emulator" % (k, wcpu, tcpu, ncpu * wall, ncpu))
sys.exit(0 if nt == ns else 1)
EOF
  kill "${PIDS[-1]}" && wait "${PIDS[-1]}" 2>/dev/null || true
  unset 'PIDS[-1]'
done
