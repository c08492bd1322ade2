#!/usr/bin/env bash
# A private database server (PostgreSQL, MariaDB, or one of each) plus a "source" and a "target" Joget emulator, for
# tests and demos.
#
#   joget-env.sh start DIR --source-fixture F --target-fixture G [--engine postgresql|mariadb]
#                [--source-engine E] [--target-engine E] [--emulator-bin PATH] [EMULATOR KNOBS...]
#   joget-env.sh stop DIR
#
# start: creates DIR, starts the database server(s) the two sides need (PostgreSQL: tests/support/pgcluster.sh,
#   MariaDB: tests/support/mariadb.sh; data under fresh mktemp dirs in /tmp), databases joget_source and joget_target,
#   then one emulator per database on free ports (fixture loaded with --reset, uploads under DIR/source-uploads and
#   DIR/target-uploads), waits until both answer /jw/web/json/workflow/currentUsername (bounded, 60 s), and writes
#   DIR/env, a sourceable file that is also printed on stdout.
#   --engine sets both sides (default postgresql); --source-engine / --target-engine set one side, so a source Joget on
#   MariaDB and a target on PostgreSQL (or the reverse) is --source-engine mariadb --target-engine postgresql. On
#   MariaDB the emulator keeps Joget's MySQL layout (SHKProcesses, app_fd_<table>... as Joget's MySQL script has them).
#   The env file:
#     JOGET_SOURCE_URL=http://127.0.0.1:PORT/jw      JOGET_TARGET_URL=...
#     JOGET_SOURCE_DB='host=127.0.0.1 port=N user=ferry dbname=joget_source'   (PostgreSQL: a libpq conninfo)
#     JOGET_SOURCE_DB='mariadb://ferry:ferry@127.0.0.1:N/joget_source'        (MariaDB: a URL)   JOGET_TARGET_DB=...
#     JOGET_ENGINE=postgresql|mariadb|mixed, JOGET_SOURCE_ENGINE, JOGET_TARGET_ENGINE
#     JOGET_DB_DIR (the server's directory; mixed: the source side's), JOGET_SOURCE_DB_DIR, JOGET_TARGET_DB_DIR
#     JOGET_SOURCE_UPLOADS=DIR/source-uploads      JOGET_TARGET_UPLOADS=...   (wflow base: app_formuploads/ inside)
#     JOGET_SOURCE_PID / JOGET_TARGET_PID, and when used JOGET_PG_DIR, JOGET_PG_PORT, JOGET_MARIADB_DIR, JOGET_MARIADB_PORT
#   Every further argument (e.g. --latency-ms 5 --fail-rate 0.01 --fail-kinds 500,reset --seed 3 --threads 4) is passed
#   to both emulators. Requests are logged to DIR/source.requests and DIR/target.requests; stderr to DIR/*.log.
#   The emulator binary: --emulator-bin, else $JOGET_EMULATOR_BIN, else joget-emulator on PATH, else the first
#   build*/tests/joget-emulator/joget-emulator or build*/joget-emulator below the repository root.
#   Remember: every JSON call needs a Referer whose host equals the URL's host (or a fixture with jsonpWhitelist "*").
# stop: stops both emulators (SIGTERM, then SIGKILL after 10 s) and the database server(s) it started, removes their
#   directories. Safe to call twice or after a failed start.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
die() { echo "joget-env: $*" >&2; exit 1; }

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: joget-env.sh start DIR --source-fixture F --target-fixture G [--engine postgresql|mariadb] [--source-engine E] [--target-engine E] [--emulator-bin PATH] [knobs...] | stop DIR"
shift 2

stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

do_stop() {
  local side
  for side in source target; do
    [ -f "$dir/$side.pid" ] && stop_pid "$(cat "$dir/$side.pid")" && rm -f "$dir/$side.pid"
  done
  if [ -f "$dir/pgdir" ]; then
    "$here/pgcluster.sh" stop "$(cat "$dir/pgdir")" || true
    rm -rf "$(cat "$dir/pgdir")"
    rm -f "$dir/pgdir"
  fi
  if [ -f "$dir/mydir" ]; then
    "$here/mariadb.sh" stop "$(cat "$dir/mydir")" || true
    rm -rf "$(cat "$dir/mydir")"
    rm -f "$dir/mydir"
  fi
}

case "$cmd" in
stop) [ -d "$dir" ] && do_stop; exit 0 ;;
start) ;;
*) die "unknown command '$cmd' (start|stop)" ;;
esac

src_fix="" tgt_fix="" bin="${JOGET_EMULATOR_BIN:-}" knobs=() src_eng=postgresql tgt_eng=postgresql
engine_arg() { case "$2" in postgresql|mariadb) ;; *) die "$1: '$2' is not postgresql or mariadb" ;; esac; }
while [ $# -gt 0 ]; do
  case "$1" in
  --engine) engine_arg "$1" "${2:-}"; src_eng=$2 tgt_eng=$2; shift 2 ;;
  --source-engine) engine_arg "$1" "${2:-}"; src_eng=$2; shift 2 ;;
  --target-engine) engine_arg "$1" "${2:-}"; tgt_eng=$2; shift 2 ;;
  --source-fixture) src_fix=${2:?--source-fixture needs a file}; shift 2 ;;
  --target-fixture) tgt_fix=${2:?--target-fixture needs a file}; shift 2 ;;
  --emulator-bin) bin=${2:?--emulator-bin needs a path}; shift 2 ;;
  *) knobs+=("$1"); shift ;;
  esac
done
[ -n "$src_fix" ] && [ -f "$src_fix" ] || die "--source-fixture: '$src_fix' is not a file"
[ -n "$tgt_fix" ] && [ -f "$tgt_fix" ] || die "--target-fixture: '$tgt_fix' is not a file"
src_fix=$(cd "$(dirname "$src_fix")" && pwd)/$(basename "$src_fix")
tgt_fix=$(cd "$(dirname "$tgt_fix")" && pwd)/$(basename "$tgt_fix")
if [ -z "$bin" ]; then
  bin=$(command -v joget-emulator 2>/dev/null || true)
  if [ -z "$bin" ]; then
    for c in "$root"/build*/tests/joget-emulator/joget-emulator "$root"/build*/joget-emulator; do
      [ -x "$c" ] && { bin=$c; break; }
    done
  fi
fi
[ -n "$bin" ] && [ -x "$bin" ] || die "joget-emulator binary not found (build it, or pass --emulator-bin / set JOGET_EMULATOR_BIN)"

mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
{ [ -f "$dir/pgdir" ] || [ -f "$dir/mydir" ]; } && do_stop
trap 'st=$?; [ $st -ne 0 ] && do_stop; exit $st' EXIT

pgdir="" pgport="" mydir="" myport=""
if [ "$src_eng" = postgresql ] || [ "$tgt_eng" = postgresql ]; then
  pgdir=$(mktemp -d /tmp/joget-env-pg.XXXXXX)
  echo "$pgdir" > "$dir/pgdir"
  pgport=$("$here/pgcluster.sh" start "$pgdir")
fi
if [ "$src_eng" = mariadb ] || [ "$tgt_eng" = mariadb ]; then
  mydir=$(mktemp -d /tmp/joget-env-my.XXXXXX)
  echo "$mydir" > "$dir/mydir"
  myport=$("$here/mariadb.sh" start "$mydir")
fi
db_of() { # side engine -> conninfo / URL of joget_<side>
  if [ "$2" = mariadb ]; then "$here/mariadb.sh" url "$mydir" "joget_$1"; else "$here/pgcluster.sh" conninfo "$pgdir" "joget_$1"; fi
}
dir_of() { if [ "$1" = mariadb ]; then echo "$mydir"; else echo "$pgdir"; fi; }
for side in source target; do
  eng=$src_eng; [ "$side" = target ] && eng=$tgt_eng
  if [ "$eng" = mariadb ]; then "$here/mariadb.sh" createdb "$mydir" "joget_$side"; else "$here/pgcluster.sh" createdb "$pgdir" "joget_$side"; fi
done

start_side() {
  local side=$1 fix=$2 ci eng=$src_eng
  [ "$side" = target ] && eng=$tgt_eng
  ci=$(db_of "$side" "$eng")
  rm -f "$dir/$side.port"
  mkdir -p "$dir/$side-uploads"
  setsid "$bin" --db "$ci" --reset --fixture "$fix" --uploads "$dir/$side-uploads" --port 0 --port-file "$dir/$side.port" \
    --request-log "$dir/$side.requests" ${knobs[@]+"${knobs[@]}"} >"$dir/$side.log" 2>&1 < /dev/null &
  echo $! > "$dir/$side.pid"
}
start_side source "$src_fix"
start_side target "$tgt_fix"

ready() { # poll until the emulator answers currentUsername (port file first), 60 s deadline
  local side=$1 i port code
  for i in $(seq 1 600); do
    kill -0 "$(cat "$dir/$side.pid")" 2>/dev/null || die "$side emulator exited: $(tail -n 20 "$dir/$side.log")"
    if [ -s "$dir/$side.port" ]; then
      port=$(cat "$dir/$side.port")
      code=$(curl -s -o /dev/null -w '%{http_code}' -H "Referer: http://127.0.0.1/jw/" \
        "http://127.0.0.1:$port/jw/web/json/workflow/currentUsername" 2>/dev/null || true)
      [ "$code" = 200 ] && return 0
    fi
    sleep 0.1
  done
  die "$side emulator did not answer within 60 s (see $dir/$side.log)"
}
ready source
ready target

{
  echo "JOGET_SOURCE_URL=http://127.0.0.1:$(cat "$dir/source.port")/jw"
  echo "JOGET_TARGET_URL=http://127.0.0.1:$(cat "$dir/target.port")/jw"
  echo "JOGET_SOURCE_DB='$(db_of source "$src_eng")'"
  echo "JOGET_TARGET_DB='$(db_of target "$tgt_eng")'"
  if [ "$src_eng" = "$tgt_eng" ]; then echo "JOGET_ENGINE=$src_eng"; else echo "JOGET_ENGINE=mixed"; fi
  echo "JOGET_SOURCE_ENGINE=$src_eng"
  echo "JOGET_TARGET_ENGINE=$tgt_eng"
  echo "JOGET_DB_DIR=$(dir_of "$src_eng")"
  echo "JOGET_SOURCE_DB_DIR=$(dir_of "$src_eng")"
  echo "JOGET_TARGET_DB_DIR=$(dir_of "$tgt_eng")"
  echo "JOGET_SOURCE_UPLOADS=$dir/source-uploads"
  echo "JOGET_TARGET_UPLOADS=$dir/target-uploads"
  echo "JOGET_SOURCE_PID=$(cat "$dir/source.pid")"
  echo "JOGET_TARGET_PID=$(cat "$dir/target.pid")"
  if [ -n "$pgdir" ]; then echo "JOGET_PG_DIR=$pgdir"; echo "JOGET_PG_PORT=$pgport"; fi
  if [ -n "$mydir" ]; then echo "JOGET_MARIADB_DIR=$mydir"; echo "JOGET_MARIADB_PORT=$myport"; fi
} > "$dir/env"
cat "$dir/env"
