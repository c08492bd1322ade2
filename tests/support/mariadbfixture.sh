#!/usr/bin/env bash
# CTest fixture for tests that need MariaDB: one private server (tests/support/mariadb.sh) per suite.
#   mariadbfixture.sh start STATEFILE [NAME]  start a server in a fresh mktemp dir with database "ferrytest";
#                                             STATEFILE gets three lines: DIR, URL (of ferrytest), PORT
#   mariadbfixture.sh stop STATEFILE          stop it and remove DIR and STATEFILE (no error when not started)
set -euo pipefail
support=$(cd "$(dirname "$0")" && pwd)
cmd=${1:?start|stop}
state=${2:?state file}
case "$cmd" in
start)
  if [ -f "$state" ]; then "$0" stop "$state"; fi
  dir=$(mktemp -d "/tmp/ferry-mariadb-${3:-test}.XXXXXX")
  chmod 755 "$dir"
  port=$(bash "$support/mariadb.sh" start "$dir")
  bash "$support/mariadb.sh" createdb "$dir" ferrytest
  { echo "$dir"; bash "$support/mariadb.sh" url "$dir" ferrytest; echo "$port"; } > "$state.tmp"
  mv "$state.tmp" "$state"
  echo "MariaDB test server (${3:-test}): $dir, port $port"
  ;;
stop)
  [ -f "$state" ] || exit 0
  dir=$(sed -n 1p "$state")
  bash "$support/mariadb.sh" stop "$dir" || true
  rm -rf "$dir" "$state"
  ;;
*) echo "mariadbfixture: unknown command $cmd" >&2; exit 2 ;;
esac
