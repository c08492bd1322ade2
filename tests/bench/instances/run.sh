#!/usr/bin/env bash
# Instances benchmark (issue 4): see README.md in this folder for what it measures and the figures.
#
#   tests/bench/instances/run.sh [--instances 1000] [--latency-ms 20] [--inventory 100000] [--inventory2 25000]
#                                [--build DIR] [--skip-speed] [--skip-memory]
#
# 1. Speed: INSTANCES running instances (the fixture generator's leave/expense kinds; sub-flow instances are
#    left out because the plain client cannot carry them) on a source and two target emulators, every reply
#    held LATENCY ms. The plain sequential client (seqclient.c, libcurl, one call at a time) carries them to
#    target 2; `ferry run` (joget source with dsn -> joget sink, default concurrency) to target 1. Both wall
#    clock times and the ratio are printed; ferry's result is compared with the source.
# 2. Memory: peak RSS (/usr/bin/time -v) of `ferry run` with a jsonl sink for an inventory of INVENTORY
#    instances (joget source with dsn, no latency), and of INVENTORY2 instances, to show it is flat.
# Release build (no sanitizers) in DIR (default build/bench-instances below the repository root).
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
N=1000 LAT=20 INV=100000 INV2=25000 BUILD=$root/build/bench-instances SPEED=1 MEM=1
while [ $# -gt 0 ]; do
  case "$1" in
  --instances) N=$2; shift 2 ;;
  --latency-ms) LAT=$2; shift 2 ;;
  --inventory) INV=$2; shift 2 ;;
  --inventory2) INV2=$2; shift 2 ;;
  --build) BUILD=$2; shift 2 ;;
  --skip-speed) SPEED=0; shift ;;
  --skip-memory) MEM=0; shift ;;
  *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
W=$(mktemp -d /tmp/ferry-bench-instances.XXXXXX)
ENVDIR=$W/env
PIDS=()
cleanup() {
  for p in "${PIDS[@]+"${PIDS[@]}"}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  (cd / && "$root/tests/support/joget-env.sh" stop "$ENVDIR" >/dev/null 2>&1) || true
  rm -rf "$W"
}
trap cleanup EXIT

echo "== build (Release) in $BUILD"
cmake -S "$root" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD" -j2 --target ferry_cli ferry_plugin_joget ferry_plugin_jsonl ferry_plugin_bench_null \
  joget-emulator >/dev/null
export FERRY="$BUILD/ferry" FERRY_PLUGIN_PATH="$BUILD/plugins-out" JG_DIR=$W
EMU=$BUILD/tests/joget-emulator/joget-emulator
cc -O2 -Wall -Wextra -o "$W/seqclient" "$here/seqclient.c" $(pkg-config --cflags --libs libcurl jansson)
. "$root/tests/joget/lib.sh"
gen=$root/tests/joget-emulator/tools/gen-fixture.py

# start_emulator DB FIXTURE PORTFILE [knobs]: an extra emulator on the env's cluster (its pid in PIDS, its URL
# in EMU_URL; not in a subshell, so that cleanup can stop it)
start_emulator() {
  local db=$1 fx=$2 pf=$3
  shift 3
  (cd / && "$root/tests/support/pgcluster.sh" createdb "$JOGET_PG_DIR" "$db") >/dev/null
  local ci
  ci=$(cd / && "$root/tests/support/pgcluster.sh" conninfo "$JOGET_PG_DIR" "$db")
  "$EMU" --db "$ci" --reset --fixture "$fx" --port 0 --port-file "$pf" "$@" >"$pf.log" 2>&1 &
  PIDS+=($!)
  local i
  for i in $(seq 1 3000); do [ -s "$pf" ] && break; kill -0 "${PIDS[-1]}" 2>/dev/null || { cat "$pf.log"; exit 1; }; sleep 0.1; done
  EMU_URL="http://127.0.0.1:$(cat "$pf")/jw"
}

if [ "$SPEED" = 1 ]; then
  echo "== speed: $N instances, --latency-ms $LAT"
  python3 "$gen" --instances "$N" --source "$W/all.json" --target "$W/target.json" --files-every 0
  python3 - "$W/all.json" "$W/source.json" <<'EOF'
import json, sys
f = json.load(open(sys.argv[1]))
f["instances"] = [i for i in f["instances"] if not i["process"].endswith("onboarding")]
f["records"] = []
json.dump(f, open(sys.argv[2], "w"))
print("source fixture: %d instances (no sub-flows)" % len(f["instances"]))
EOF
  (cd / && "$root/tests/support/joget-env.sh" start "$ENVDIR" --source-fixture "$W/source.json" \
     --target-fixture "$W/target.json" --emulator-bin "$EMU" --latency-ms "$LAT") >/dev/null
  . "$ENVDIR/env"
  start_emulator joget_target2 "$W/target.json" "$W/t2.port" --latency-ms "$LAT"
  T2=$EMU_URL
  T2DB=$(cd / && "$root/tests/support/pgcluster.sh" conninfo "$JOGET_PG_DIR" joget_target2)
  NS=$(jg_running_count "$JOGET_SOURCE_DB")

  echo "-- plain sequential client -> target 2"
  s0=$(date +%s.%N)
  "$W/seqclient" "$JOGET_SOURCE_URL" "$T2" admin master master-secret | tee "$W/seq.out"
  s1=$(date +%s.%N)
  echo "   target 2 now holds $(jg_running_count "$T2DB") running instances"

  echo "-- ferry run (default concurrency) -> target 1"
  jg_config "$W/m.json" "$W/m.db" "$(jg_src_opts)" joget "$(jg_tgt_opts)"
  f0=$(date +%s.%N)
  "$FERRY" run -c "$W/m.json" --progress none 2>&1 | tail -4
  f1=$(date +%s.%N)
  NT=$(jg_running_count "$JOGET_TARGET_DB")
  echo "   target 1 now holds $NT running instances (source: $NS)"
  echo "   ferry's requests to the target: $(grep -c '' "$ENVDIR/target.requests") ($(grep -c 'process/start' \
    "$ENVDIR/target.requests" || true) process/start, $(grep -c 'activity/start' "$ENVDIR/target.requests" || true) \
    activity/start); to the source: $(grep -c '' "$ENVDIR/source.requests")"
  echo "   emulator load: $(uptime | sed 's/.*load/load/')"
  jg_inventory "$JOGET_SOURCE_URL" "$JOGET_SOURCE_DB" "$W/src.jsonl"
  jg_inventory "$JOGET_TARGET_URL" "$JOGET_TARGET_DB" "$W/tgt.jsonl"
  jg_compare "$W/src.jsonl" "$W/tgt.jsonl" | tail -1
  python3 - "$s0" "$s1" "$f0" "$f1" "$N" <<'EOF'
import sys
s0, s1, f0, f1 = map(float, sys.argv[1:5])
seq, fer = s1 - s0, f1 - f0
print("RESULT speed: sequential client %.1f s, ferry %.1f s: ferry is %.1fx faster (goal >= 10x)" % (seq, fer, seq / fer))
EOF
  (cd / && "$root/tests/support/joget-env.sh" stop "$ENVDIR") >/dev/null
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  PIDS=()
fi

if [ "$MEM" = 1 ]; then
  echo "== memory: inventory of $INV and $INV2 instances (joget source with dsn -> jsonl)"
  python3 "$gen" --instances 8 --source "$W/s8.json" --target "$W/t8.json" --files-every 0
  (cd / && "$root/tests/support/joget-env.sh" start "$ENVDIR" --source-fixture "$W/s8.json" \
     --target-fixture "$W/t8.json" --emulator-bin "$EMU") >/dev/null
  . "$ENVDIR/env"
  for count in "$INV2" "$INV"; do
    python3 "$gen" --instances "$count" --source "$W/inv$count.json" --target "$W/t.json" --files-every 0
    python3 -c 'import json,sys; f=json.load(open(sys.argv[1])); f["records"]=[]; json.dump(f, open(sys.argv[1], "w"))' \
      "$W/inv$count.json"
    l0=$(date +%s)
    start_emulator "joget_inv$count" "$W/inv$count.json" "$W/inv$count.port" --threads 8
    url=$EMU_URL
    l1=$(date +%s)
    ci=$(cd / && "$root/tests/support/pgcluster.sh" conninfo "$JOGET_PG_DIR" "joget_inv$count")
    echo "-- $count instances generated ($(jg_running_count "$ci") top-level running, $(jg_all_count "$ci") with sub-flows), loaded in $((l1 - l0)) s"
    jg_config "$W/i$count.json" "$W/i$count.db" "{\"url\": \"$url\", \"password\": \"admin\", \"dsn\": \"$ci\"}" \
      jsonl "{\"path\": \"$W/i$count.jsonl\"}"
    /usr/bin/time -v "$FERRY" run -c "$W/i$count.json" --progress none >"$W/i$count.out" 2>&1 || { tail "$W/i$count.out"; exit 1; }
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/i$count.out")
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$W/i$count.out")
    items=$(wc -l < "$W/i$count.jsonl")
    echo "RESULT memory: $items items inventoried in $secs, peak RSS $((rss / 1024)) MiB ($rss KiB) (goal < 64 MiB)"
    # the source alone: a discarding sink, no journal
    jg_config "$W/n$count.json" "$W/n$count.db" "{\"url\": \"$url\", \"password\": \"admin\", \"dsn\": \"$ci\"}" \
      bench-null '{"every": 1000000000}' '"journal": false'
    /usr/bin/time -v "$FERRY" run -c "$W/n$count.json" --progress none >"$W/n$count.out" 2>&1 || { tail "$W/n$count.out"; exit 1; }
    rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$W/n$count.out")
    secs=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$W/n$count.out")
    echo "       joget source alone (bench-null sink, journal off): $secs, peak RSS $((rss / 1024)) MiB ($rss KiB)"
    rm -f "$W/i$count.jsonl" "$W/inv$count.json"
    kill "${PIDS[-1]}" && wait "${PIDS[-1]}" 2>/dev/null || true
    unset 'PIDS[-1]'
  done
fi
