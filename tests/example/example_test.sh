#!/usr/bin/env bash
# The out-of-tree example connector against an installed ferry.
#   example_test.sh BUILD_DIR SOURCE_DIR CHECK_PLUGIN HAVE_CLI(0|1)
# 1. installs BUILD_DIR into a temporary prefix (cmake --install --prefix), checks the package files;
# 2. builds examples/custom-connector against it, with find_package(Ferry) and with pkg-config;
# 3. loads the module through the real loader (CHECK_PLUGIN) and checks it exports only its descriptor;
# 4. when the ferry binary exists: the installed ferry finds its libferry (RPATH) and the plugin
#    (FERRY_PLUGIN_PATH, then its own plugin directory), and runs a csv -> csv pipeline, twice, then verify.
set -euo pipefail
build=$1 src=$2 check=$3 have_cli=${4:-0}
tmp=$(mktemp -d /tmp/ferry-example.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
step() { echo "== $*"; }

step "install $build into $tmp/prefix"
cmake --install "$build" --prefix "$tmp/prefix" >"$tmp/install.log" 2>&1 \
  || { cat "$tmp/install.log"; fail "install"; }
prefix=$tmp/prefix
lib=$(find "$prefix" -name 'libferry.so' -printf '%h\n' | head -n1)
[ -n "$lib" ] || fail "no libferry.so installed"
for f in "$prefix/include/ferry/plugin.h" "$prefix/include/ferry/version.h" "$lib/pkgconfig/ferry-sdk.pc" \
         "$lib/cmake/Ferry/FerryConfig.cmake" "$lib/cmake/Ferry/FerryConfigVersion.cmake" \
         "$lib/cmake/Ferry/FerryTargets.cmake"; do
  [ -f "$f" ] || fail "not installed: $f"
done
! grep -rq "$src/core" "$lib/cmake/Ferry" || fail "the CMake package points into the source tree"

step "pkg-config ferry-sdk"
export PKG_CONFIG_PATH=$lib/pkgconfig
pc_cflags=$(pkg-config --cflags ferry-sdk) && pc_libs=$(pkg-config --libs ferry-sdk) || fail "pkg-config"
plugindir=$(pkg-config --variable=plugindir ferry-sdk)
# libferry's own libraries are private: a plugin that needs no PostgreSQL does not link libpq
for private in -lpq -lcurl -lsqlite3; do
  ! grep -qw -- "$private" <<<"$pc_libs" || fail "pkg-config --libs ferry-sdk gives $private: $pc_libs"
done
grep -qw -- -lferry <<<"$pc_libs" || fail "pkg-config --libs ferry-sdk lacks -lferry: $pc_libs"
! grep -q "LIBPQ\|CURL" "$lib/cmake/Ferry/FerryTargets.cmake" || fail "the CMake package exports libpq or libcurl"
# a plugin that uses the PostgreSQL service includes ferry/pg.h and adds libpq itself
cat >"$tmp/pgplug.c" <<'C'
#include <ferry/ferry.h>
#include <ferry/pg.h>
int pgplug_check(void);
int pgplug_check(void) {
  char *q = ferry_pg_quote_ident("a b");
  int ok = q != NULL && PQlibVersion() > 0;
  ferry_item_free(NULL);
  return ok;
}
C
# shellcheck disable=SC2046
cc -shared -fPIC -fvisibility=hidden -Wall -Wextra -Werror $(pkg-config --cflags ferry-sdk libpq) "$tmp/pgplug.c" \
   -o "$tmp/pgplug.so" -Wl,--no-undefined $(pkg-config --libs ferry-sdk libpq) || fail "a pg plugin with libpq"
if cc -shared -fPIC -fvisibility=hidden -w $(pkg-config --cflags ferry-sdk libpq) "$tmp/pgplug.c" \
      -o "$tmp/pgplug-nolibpq.so" -Wl,--no-undefined $(pkg-config --libs ferry-sdk) 2>/dev/null; then
  fail "a plugin calling libpq linked without libpq: ferry-sdk's Libs carry libpq"
fi
[ "$(readlink -f "$plugindir")" = "$(readlink -f "$lib/ferry/plugins")" ] || fail "plugindir $plugindir"
mkdir -p "$tmp/pc"
# shellcheck disable=SC2086
cc -shared -fPIC -fvisibility=hidden -Wall -Wextra -Werror $pc_cflags "$src/examples/custom-connector/csv.c" \
   -o "$tmp/pc/ferry_csv.so" $pc_libs || fail "building with pkg-config"

step "build examples/custom-connector with find_package(Ferry)"
cmake -S "$src/examples/custom-connector" -B "$tmp/build" -DCMAKE_PREFIX_PATH="$prefix" \
      -DCMAKE_BUILD_TYPE=Release -DCMAKE_C_FLAGS=-Werror >"$tmp/configure.log" 2>&1 \
  || { cat "$tmp/configure.log"; fail "configure"; }
cmake --build "$tmp/build" >"$tmp/build.log" 2>&1 || { cat "$tmp/build.log"; fail "build"; }
module=$tmp/build/plugins/ferry_csv.so
[ -f "$module" ] || fail "no $module"
exported=$(nm -D --defined-only "$module" | awk '{print $3}' | grep -v '^_' || true)
[ "$exported" = "ferry_plugin_csv" ] || fail "the module exports more than its descriptor: $exported"

step "load it through the loader"
"$check" "$module" "$src/examples/custom-connector/data/people.csv" || fail "check_plugin on the find_package build"
"$check" "$tmp/pc/ferry_csv.so" "$src/examples/custom-connector/data/people.csv" >/dev/null \
  || fail "check_plugin on the pkg-config build"

step "install it next to ferry's plugins"
cmake --install "$tmp/build" --prefix "$prefix" >/dev/null || fail "installing the example"
[ -f "$lib/ferry/plugins/ferry_csv.so" ] || fail "ferry_csv.so not installed in $lib/ferry/plugins"

if [ "$have_cli" != 1 ]; then
  echo "ok (no ferry binary in this build: CLI checks skipped)"
  exit 0
fi

ferry=$prefix/bin/ferry
step "the installed ferry uses the installed libferry"
[ -x "$ferry" ] || fail "no $ferry"
resolved=$(env -u LD_LIBRARY_PATH ldd "$ferry" | awk '/libferry/ {print $3}')
[ "$(readlink -f "$resolved")" = "$(readlink -f "$lib/libferry.so.0")" ] || fail "ferry uses '$resolved'"
env -u LD_LIBRARY_PATH "$ferry" version || fail "ferry version"

step "ferry plugins --describe csv"
out=$(env -u LD_LIBRARY_PATH FERRY_PLUGIN_PATH="$tmp/build/plugins" "$ferry" plugins --describe csv) \
  || { echo "$out"; fail "describe with FERRY_PLUGIN_PATH"; }
echo "$out"
for want in csv delimiter fsync "$module"; do
  grep -qF -- "$want" <<<"$out" || fail "describe output lacks '$want'"
done
out=$(env -u LD_LIBRARY_PATH -u FERRY_PLUGIN_PATH "$ferry" plugins --describe csv) \
  || fail "describe from the prefix"
real_lib=$(readlink -f "$lib")
grep -qF "$lib/ferry/plugins/ferry_csv.so" <<<"$out" || grep -qF "$real_lib/ferry/plugins/ferry_csv.so" <<<"$out" \
  || fail "not found in the prefix: $out"

step "csv -> csv pipeline with the installed ferry"
run=$tmp/run
mkdir -p "$run"
cp "$src/examples/custom-connector/data/people.csv" "$run/people.csv"
cat >"$run/ferry.json" <<JSON
{
  "journal": "journal.db",
  "stages": [
    {"name": "people", "concurrency": 1,
     "source": {"plugin": "csv", "options": {"path": "$run/people.csv", "table": "people"}},
     "sink": {"plugin": "csv", "options": {"path": "$run/copy.csv"}}}
  ]
}
JSON
fy() { # ferry <command> on the test config, with nothing from the build tree in the environment
  (cd "$run" && env -u LD_LIBRARY_PATH FERRY_PLUGIN_PATH="$tmp/build/plugins" "$ferry" "$1" --config ferry.json)
}
fy run || fail "ferry run"
cmp "$run/people.csv" "$run/copy.csv" || { diff "$run/people.csv" "$run/copy.csv" || :; fail "copy differs"; }
fy run || fail "second ferry run"
cmp "$run/people.csv" "$run/copy.csv" || fail "the second run changed the copy"
fy verify || fail "ferry verify"
# without the journal, the sink itself finds the rows already in the file and does not repeat them
rm -f "$run"/journal.db*
fy run || fail "ferry run without the journal"
cmp "$run/people.csv" "$run/copy.csv" || fail "the run without the journal repeated rows"
echo ok
