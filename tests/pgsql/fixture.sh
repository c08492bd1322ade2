#!/usr/bin/env bash
# CTest fixture for the pgsql plugin tests: one private cluster (tests/support/pgcluster.sh) for all cases.
#   fixture.sh start STATEFILE   start a cluster in a fresh mktemp dir; STATEFILE gets "DIR\nPORT"
#   fixture.sh stop STATEFILE    stop it and remove DIR and STATEFILE
set -euo pipefail
support=$(cd "$(dirname "$0")/../support" && pwd)
cmd=${1:?start|stop}; state=${2:?state file}
stop_dir() {
  bash "$support/pgcluster.sh" stop "$1" || true
  rm -rf "$1"
}
case "$cmd" in
start)
  if [ -f "$state" ]; then stop_dir "$(head -n 1 "$state")"; rm -f "$state"; fi
  dir=$(mktemp -d /tmp/ferry-pg-pgsql.XXXXXX)
  chmod 755 "$dir"
  port=$(bash "$support/pgcluster.sh" start "$dir")
  printf '%s\n%s\n' "$dir" "$port" > "$state.tmp"
  mv "$state.tmp" "$state"
  echo "PostgreSQL test cluster for pgsql: $dir, port $port"
  ;;
stop)
  [ -f "$state" ] || exit 0
  stop_dir "$(head -n 1 "$state")"
  rm -f "$state"
  ;;
*) echo "fixture: unknown command $cmd" >&2; exit 2 ;;
esac
