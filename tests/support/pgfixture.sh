#!/usr/bin/env bash
# CTest fixture for tests that need PostgreSQL: one private cluster (tests/support/pgcluster.sh) per suite.
#   pgfixture.sh start STATEFILE [NAME]  start a cluster in a fresh mktemp dir; STATEFILE gets three lines:
#                                        DIR, CONNINFO (database postgres), PORT
#   pgfixture.sh stop STATEFILE          stop it and remove DIR and STATEFILE (no error when not started)
set -euo pipefail
support=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?start|stop}
state=${2:?state file}
case "$cmd" in
start)
  if [ -f "$state" ]; then "$0" stop "$state"; fi
  dir=$(mktemp -d "/tmp/ferry-pg-${3:-test}.XXXXXX")
  chmod 755 "$dir"
  port=$(bash "$support/pgcluster.sh" start "$dir")
  { echo "$dir"; bash "$support/pgcluster.sh" conninfo "$dir"; echo "$port"; } > "$state.tmp"
  mv "$state.tmp" "$state"
  echo "PostgreSQL test cluster (${3:-test}): $dir, port $port"
  ;;
stop)
  [ -f "$state" ] || exit 0
  dir=$(sed -n 1p "$state")
  bash "$support/pgcluster.sh" stop "$dir" || true
  rm -rf "$dir" "$state"
  ;;
*) echo "pgfixture: unknown command $cmd" >&2; exit 2 ;;
esac
