#!/usr/bin/env bash
# The test command: installs missing dependencies, builds ferry twice with AddressSanitizer and UBSan
# (plugins opened at run time, then plugins built in), runs the whole CTest suite on the first build and, on the
# second, the tests that go through the plugin lookup.
#
#   bash tests/run.sh                 both build modes
#   bash tests/run.sh --mode MODULE   one mode (MODULE or STATIC)
#   bash tests/run.sh --no-sanitize   plain RelWithDebInfo builds
#   bash tests/run.sh -L runtime      pass arguments after the options to ctest (here: one label)
set -euo pipefail
cd "$(dirname "$0")/.."
modes=(MODULE STATIC)
sanitize=ON
while [ $# -gt 0 ]; do
  case "$1" in
    --mode) modes=("$2"); shift 2 ;;
    --no-sanitize) sanitize=OFF; shift ;;
    -h|--help) sed -n '2,10p' "$0"; exit 0 ;;
    *) break ;;
  esac
done
bash tests/deps.sh
jobs=$(nproc 2>/dev/null || echo 2)
# LeakSanitizer is on; libltdl/libcurl keep a few process-lifetime allocations that are suppressed here.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:detect_stack_use_after_return=0}"
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/support/lsan.supp:print_suppressions=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# The second build mode differs from the first only in how plugins are found: linked into libferry instead of
# opened at run time. It reruns the tests that go through that lookup for every plugin (the loader, boundary,
# configuration, runtime and CLI tests, the custom connector example, one scenario of each plugin: e2e.migrate
# carries joget, pgsql, fs and preserve-records, seeddms.plugin.same the seeddms plugin, the sql and fs suites);
# the fault, crash and scale scenarios test code that is the same in both builds and run in the first mode only.
# Arguments after the options (a label, a regex) turn this off.
second='^((loader|boundary|config|runtime|sql|pgsql)\.|fs-|example\.|cli$|cli\.onecore$|e2e\.migrate$|joget\.migrate$|seeddms\.plugin\.same$)'
status=0
mkdir -p build
first=1
for mode in "${modes[@]}"; do
  skip=()
  [ $first = 1 ] || [ $# -gt 0 ] || skip=(-R "$second")
  first=0
  dir="build/test-$(echo "$mode" | tr A-Z a-z)$([ "$sanitize" = ON ] && echo -asan)"
  echo "==> ferry: building ($mode plugins, sanitizers $sanitize) in $dir"
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Debug -DFERRY_SANITIZE=$sanitize -DFERRY_PLUGINS_DEFAULT="$mode" >"$dir.configure.log" 2>&1 \
    || { cat "$dir.configure.log"; exit 2; }
  cmake --build "$dir" -j"$jobs" 2>&1 | grep -vE '^\[ *[0-9]+%\] (Building|Linking|Built)' || true
  [ "${PIPESTATUS[0]}" = 0 ] || { echo "build failed ($mode)"; exit 2; }
  echo "==> ferry: testing ($mode plugins)"
  if ! ctest --test-dir "$dir" --output-on-failure -j"$jobs" --timeout 600 "${skip[@]}" "$@"; then
    status=1
  fi
done
exit $status
