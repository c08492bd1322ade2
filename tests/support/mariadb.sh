#!/usr/bin/env bash
# Private MariaDB server for ferry's tests: never touches a system server, its data or its socket.
#
#   mariadb.sh start DIR [PORT]   mariadb-install-db into DIR/data (when new), start mariadbd on 127.0.0.1:PORT (a free
#                                 port when omitted) with its socket DIR/sock/mysqld.sock, wait until it answers, print
#                                 the port on stdout; DIR/port and DIR/url (mariadb://ferry:...@127.0.0.1:PORT/) too
#   mariadb.sh stop DIR           SIGTERM to the PID in DIR/mariadbd.pid, wait (SIGKILL after 30 s); no error when it
#                                 is not running or already gone
#   mariadb.sh url DIR [DB]       print the URL of database DB (default: no database), as the emulator's --db takes it
#   mariadb.sh createdb DIR NAME  create database NAME (utf8mb4, utf8mb4_unicode_ci; no error if it exists)
#
# The server: user "ferry" with password "ferry" (MARIADB_TEST_PASSWORD overrides) for TCP logins from 127.0.0.1 and
# socket logins, all privileges; utf8mb4 / utf8mb4_unicode_ci by default (as Joget's install script creates its
# tables); lower_case_table_names=0 (table names are case-sensitive, as on a Linux Joget server); InnoDB with small
# buffers, tables in the system tablespace (fast CREATE/DROP), no binary log, no fsync, no performance schema, no name
# resolution: a fresh start takes 1-3 s on 2 cores.
# The configuration is DIR/my.cnf (no other option file is read); the server log is DIR/server.log.
# As root the server runs as root (--user=root), so that DIR may be anywhere root can write.
set -euo pipefail

die() { echo "mariadb: $*" >&2; exit 1; }

free_port() {
  python3 - <<'PY' 2>/dev/null || echo $((20000 + RANDOM % 20000))
import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()
PY
}

find_bin() { # first of the names on PATH or in /usr/sbin
  local n
  for n in "$@"; do
    command -v "$n" >/dev/null 2>&1 && { command -v "$n"; return; }
    [ -x "/usr/sbin/$n" ] && { echo "/usr/sbin/$n"; return; }
  done
  return 1
}

cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || die "usage: mariadb.sh start|stop|url|createdb DIR [...]"
password=${MARIADB_TEST_PASSWORD:-ferry}

client() { # the command-line client over the private socket, as root (unix_socket) or ferry
  local cl
  cl=$(find_bin mariadb mysql) || die "mariadb client not found (apt-get install mariadb-client)"
  if [ "$(id -u)" = 0 ]; then "$cl" --no-defaults -S "$dir/sock/mysqld.sock" -u root "$@"
  else "$cl" --no-defaults -S "$dir/sock/mysqld.sock" -u ferry -p"$password" "$@"; fi
}

pid_alive() { [ -f "$dir/mariadbd.pid" ] && kill -0 "$(cat "$dir/mariadbd.pid")" 2>/dev/null; }

case "$cmd" in
start)
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  server=$(find_bin mariadbd mysqld) || die "mariadbd not found (apt-get install mariadb-server)"
  installer=$(find_bin mariadb-install-db mysql_install_db) || die "mariadb-install-db not found (apt-get install mariadb-server)"
  pid_alive && die "a server already runs in $dir (pid $(cat "$dir/mariadbd.pid")); stop it first"
  port=${3:-$(free_port)}
  run_user=$(id -un) # as root: --user=root (user mysql could not reach a DIR below a private mktemp directory)
  mkdir -p "$dir/sock" "$dir/tmp"
  # single quotes: the password may hold anything but a quote
  case "$password" in *"'"*|*\\*) die "MARIADB_TEST_PASSWORD must not contain quotes or backslashes" ;; esac
  cat > "$dir/init.sql" <<EOF
CREATE USER IF NOT EXISTS 'ferry'@'127.0.0.1' IDENTIFIED BY '$password';
CREATE USER IF NOT EXISTS 'ferry'@'localhost' IDENTIFIED BY '$password';
GRANT ALL PRIVILEGES ON *.* TO 'ferry'@'127.0.0.1' WITH GRANT OPTION;
GRANT ALL PRIVILEGES ON *.* TO 'ferry'@'localhost' WITH GRANT OPTION;
EOF
  cat > "$dir/my.cnf" <<EOF
[mysqld]
user=$run_user
datadir=$dir/data
socket=$dir/sock/mysqld.sock
pid-file=$dir/mariadbd.pid
tmpdir=$dir/tmp
log-error=$dir/server.log
bind-address=127.0.0.1
port=$port
skip-name-resolve
skip-log-bin
skip-external-locking
performance-schema=OFF
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
lower-case-table-names=0
max-connections=400
innodb-buffer-pool-size=128M
innodb-log-file-size=32M
innodb-flush-log-at-trx-commit=0
innodb-flush-method=nosync
innodb-doublewrite=0
innodb-file-per-table=0
sync-binlog=0
init-file=$dir/init.sql
EOF
  if [ ! -d "$dir/data/mysql" ]; then
    "$installer" --defaults-file="$dir/my.cnf" --skip-test-db --auth-root-authentication-method=socket \
      >"$dir/install.log" 2>&1 || { cat "$dir/install.log" >&2; die "mariadb-install-db failed in $dir"; }
  fi
  # a fast shutdown (no page flush: the redo log is enough for the next start) keeps stop quick
  setsid "$server" --defaults-file="$dir/my.cnf" --innodb-fast-shutdown=2 </dev/null >>"$dir/server.log" 2>&1 &
  spid=$!
  for _ in $(seq 1 300); do # 30 s
    if [ -S "$dir/sock/mysqld.sock" ] && client -e "SELECT 1" >/dev/null 2>&1; then break; fi
    kill -0 "$spid" 2>/dev/null || { tail -n 30 "$dir/server.log" >&2; die "mariadbd exited during start (port $port)"; }
    sleep 0.1
  done
  client -e "SELECT 1" >/dev/null 2>&1 || { tail -n 30 "$dir/server.log" >&2; kill -TERM "$spid" 2>/dev/null; die "server did not answer within 30 s (port $port)"; }
  [ -f "$dir/mariadbd.pid" ] || echo "$spid" > "$dir/mariadbd.pid"
  echo "$port" > "$dir/port"
  echo "mariadb://ferry:$password@127.0.0.1:$port/" > "$dir/url"
  echo "$port"
  ;;
stop)
  [ -f "$dir/mariadbd.pid" ] || exit 0
  pid=$(cat "$dir/mariadbd.pid")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
  fi
  rm -f "$dir/mariadbd.pid"
  ;;
url)
  [ -f "$dir/port" ] || die "no server started in $dir"
  echo "mariadb://ferry:$password@127.0.0.1:$(cat "$dir/port")/${3:-}"
  ;;
createdb)
  [ -f "$dir/port" ] || die "no server started in $dir"
  name=${3:?database name}
  [[ "$name" =~ ^[A-Za-z0-9_]+$ ]] || die "createdb: '$name' is not [A-Za-z0-9_]+"
  client -e "CREATE DATABASE IF NOT EXISTS \`$name\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci" \
    || die "cannot create database $name"
  ;;
*) die "unknown command $cmd" ;;
esac
