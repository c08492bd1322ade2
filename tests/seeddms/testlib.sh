# Shared by seeddms_test.sh and plugin_test.sh (sourced, after HERE is set): a temporary directory $T removed at
# exit, a private MariaDB server stopped at exit (also on failure), pass/fail counting.
SUPPORT=$HERE/../support
T=$(mktemp -d /tmp/ferry-seeddms-test.XXXXXX)
MY=""
cleanup() {
  if [ -n "$MY" ]; then bash "$SUPPORT/mariadb.sh" stop "$MY" >/dev/null 2>&1; fi
  [ -n "${SEEDDMS_KEEP:-}" ] && echo "kept $T" || rm -rf "$T"
}
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
# start_mariadb DB...: the server in $T/mariadb ($MY, socket $SOCK) with these databases
start_mariadb() {
  MY=$T/mariadb
  bash "$SUPPORT/mariadb.sh" start "$MY" >"$T/mariadb.out" 2>&1 || { cat "$T/mariadb.out"; echo "FAIL: mariadb did not start"; exit 1; }
  SOCK=$MY/sock/mysqld.sock
  for db in "$@"; do bash "$SUPPORT/mariadb.sh" createdb "$MY" "$db" || { echo "FAIL: createdb $db"; exit 1; }; done
}
