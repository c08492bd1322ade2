#!/usr/bin/env bash
# Private PostgreSQL cluster for ferry's tests: never touches a system cluster.
#
#   pgcluster.sh start DIR [PORT]   initdb DIR (if new), start on 127.0.0.1:PORT (a free port when omitted),
#                                   print the port on stdout; DIR/port and DIR/conninfo are written too.
#   pgcluster.sh stop DIR           fast shutdown (no error if not running)
#   pgcluster.sh conninfo DIR [DB]  print a libpq conninfo string for database DB (default postgres)
#   pgcluster.sh createdb DIR NAME  create database NAME (no error if it exists)
#
# Runs the server as user "postgres" when called as root (initdb refuses root). Superuser "ferry", trust auth
# on loopback and the private socket directory DIR/sock only.
set -euo pipefail

die() { echo "pgcluster: $*" >&2; exit 1; }

pgbin() {
  local d
  for d in "${PG_BINDIR:-}" /usr/lib/postgresql/*/bin; do
    [ -n "$d" ] && [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  command -v initdb >/dev/null 2>&1 && { dirname "$(command -v initdb)"; return; }
  die "PostgreSQL server binaries not found (apt-get install postgresql)"
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: pgcluster.sh start|stop|conninfo|createdb DIR [...]"
bin=$(pgbin)

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  port=${3:-$(free_port)}
  [ "$(id -u)" = 0 ] && chown postgres: "$dir"
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$dir/data" -U ferry --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; die "initdb failed in $dir"; }
  fi
  as_owner mkdir -p "$dir/sock"
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=256MB" \
    start >/dev/null || { tail -n 30 "$dir/server.log" >&2; die "server did not start (port $port)"; }
  echo "$port" > "$dir/port"
  echo "host=127.0.0.1 port=$port user=ferry dbname=postgres" > "$dir/conninfo"
  echo "$port"
  ;;
stop)
  [ -f "$dir/data/postmaster.pid" ] || exit 0
  as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >/dev/null 2>&1 || true
  ;;
conninfo)
  [ -f "$dir/port" ] || die "no cluster started in $dir"
  echo "host=127.0.0.1 port=$(cat "$dir/port") user=ferry dbname=${3:-postgres}"
  ;;
createdb)
  [ -f "$dir/port" ] || die "no cluster started in $dir"
  name=${3:?database name}
  "$bin/psql" -h 127.0.0.1 -p "$(cat "$dir/port")" -U ferry -d postgres -qAt \
    -c "SELECT 1 FROM pg_database WHERE datname = '$name'" | grep -q 1 \
    || "$bin/createdb" -h 127.0.0.1 -p "$(cat "$dir/port")" -U ferry "$name"
  ;;
*) die "unknown command $cmd" ;;
esac
