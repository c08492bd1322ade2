#!/usr/bin/env bash
# The main job for SeedDMS, from a fresh clone on a fresh Debian/Ubuntu machine: a SeedDMS 5.1 installation on
# SQLite moved to a fresh SeedDMS 6.0 installation on MariaDB, with the procedure of docs/seeddms-runbook.md.
#
#   1. installs missing dependencies (tests/deps.sh) and builds ferry (Release, plugins built in);
#   2. builds the source with tests/seeddms/mkfixture.py: SeedDMS 5.1 tables on SQLite and a content
#      directory (documents in running workflows, finished runs, a version run twice through one workflow, a
#      version with no workflow, one file missing on disk); starts a private MariaDB (tests/support/mariadb.sh)
#      holding a fresh SeedDMS 6.0 database (install rows only: admin, guest, root folder, roles);
#   3. writes the configuration from examples/seeddms-to-seeddms.json with "definitions": "create" (users,
#      groups, attribute definitions and workflows are created on the fresh target);
#   4. ferry plan (the document with the missing file is blocked, named); a canary (the definitions, the
#      folders and one document: ferry run --limit); ferry run; ferry verify; ferry status; ferry report --html
#      (report.html); ferry export-map; then checks the target against the source with
#      tests/seeddms/sdcheck.py (every version's workflow state, log, and who is offered each next step) and
#      prints a summary;
#   5. stops MariaDB, also on failure. The work directory (config, journal, report, logs) is kept.
#
#   bash examples/seeddms-quickstart.sh [DOCS [TARGET_LAYOUT]]
#       DOCS = documents on the source (default 200); TARGET_LAYOUT = 6.0 (default) or 5.1: a fresh SeedDMS 5.1
#       target instead (the plugin writes the 5.1 layout; docs/plugins/seeddms.md, "A 5.1 target")
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
docs=${1:-200}
tlayout=${2:-6.0}
case "$tlayout" in 5.1|6.0) ;; *) echo "seeddms-quickstart: TARGET_LAYOUT must be 5.1 or 6.0, not \"$tlayout\"" >&2; exit 2 ;; esac
say() { printf '\n==> %s\n' "$*"; }

say "dependencies"
bash tests/deps.sh

say "building ferry (Release, plugins built in)"
build=build/release
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFERRY_PLUGINS_DEFAULT=STATIC -DFERRY_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target ferry_cli 2>&1 | grep -E 'error:|warning:' || true
ferry="$root/$build/ferry"
[ -x "$ferry" ] || { echo "seeddms-quickstart: the build failed" >&2; exit 1; }
"$ferry" plugins | grep -q '^seeddms' || { echo "seeddms-quickstart: this ferry has no seeddms plugin" >&2; exit 1; }

work=$(mktemp -d /tmp/ferry-seeddms-quickstart.XXXXXX)
my=$work/mariadb
stop_env() {
  local st=$?
  bash "$root/tests/support/mariadb.sh" stop "$my" >/dev/null 2>&1 || true
  echo
  echo "work directory: $work (config ferry.json, journal, report, logs; MariaDB stopped)"
  exit $st
}
trap stop_env EXIT INT TERM

say "the source: SeedDMS 5.1 on SQLite, $docs documents"
mkdir -p "$work/source"
python3 tests/seeddms/mkfixture.py --db "sqlite:$work/source/content.db" --layout 5.1 --content "$work/source/data" \
  --docs "$docs" --folders 12 --seed 42 --summary "$work/source-summary.json" >/dev/null
echo "source: $work/source/content.db, content $work/source/data"

say "the target: a fresh SeedDMS $tlayout on a private MariaDB"
bash tests/support/mariadb.sh start "$my" >"$work/mariadb.out"
bash tests/support/mariadb.sh createdb "$my" seeddms
python3 tests/seeddms/mkfixture.py --db "mariadb:$my/sock/mysqld.sock:seeddms" --layout "$tlayout" \
  --content "$work/target/data" --part install >/dev/null
target_url=$(bash tests/support/mariadb.sh url "$my" seeddms)
echo "target: MariaDB database seeddms (socket $my/sock/mysqld.sock), content $work/target/data"

# What examples/seeddms-to-seeddms.json reads from the environment.
export SOURCE_SEEDDMS_DSN=$work/source/content.db SOURCE_SEEDDMS_CONTENT=$work/source/data
export TARGET_SEEDDMS_DSN=$target_url TARGET_SEEDDMS_CONTENT=$work/target/data

say "configuration: examples/seeddms-to-seeddms.json with \"definitions\": \"create\" -> $work/ferry.json"
python3 - "$root/examples/seeddms-to-seeddms.json" "$work/ferry.json" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
for st in cfg["stages"]:
    if st["sink"]["plugin"] == "seeddms":
        st["sink"]["options"]["definitions"] = "create"
json.dump(cfg, open(sys.argv[2], "w"), indent=1)
PY

cd "$work"
ferry() { "$ferry" "$@" --config ferry.json 2>&1 | tee -a ferry.log; }
say "ferry plan (reads both sides, writes nothing; one document is blocked: its file is missing on the source)"
ferry plan --progress plain --report plan-report.json || true
grep -E 'blocked: ' ferry.log | sed 's/^.*item /blocked item /' || true
say "the canary: ferry run --limit 3 (the definitions, a folder, then check it by hand, see the runbook)"
ferry run --limit 3 --progress plain || true
say "ferry run (everything else; the canary is not carried twice)"
ferry run --progress plain || true
say "ferry verify (target against source, through the journal)"
ferry verify --progress plain || true
say "ferry status"
ferry status || true
say "ferry report --html"
ferry report --html report.html
say "ferry export-map"
ferry export-map --format csv --output idmap.csv
echo "idmap.csv: $(($(wc -l <idmap.csv) - 1)) mapping(s): $(tail -n +2 idmap.csv | cut -d, -f1 | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"

say "summary"
summary_rc=0
check="python3 $root/tests/seeddms/sdcheck.py compare --source sqlite:$SOURCE_SEEDDMS_DSN --source-content $SOURCE_SEEDDMS_CONTENT
  --target mariadb:$my/sock/mysqld.sock:seeddms --target-content $TARGET_SEEDDMS_CONTENT --ignore-missing-files"
if $check >compare.txt 2>&1; then :; else summary_rc=1; grep DIFF compare.txt | head -n 10; fi
grep -E '^sdcheck|^note: left out' compare.txt
if python3 "$root/tests/seeddms/sdfire.py" offers --source "sqlite:$SOURCE_SEEDDMS_DSN" --source-content "$SOURCE_SEEDDMS_CONTENT" \
     --target "mariadb:$my/sock/mysqld.sock:seeddms" --target-content "$TARGET_SEEDDMS_CONTENT" --skip-absent >offers.txt 2>&1
then cat offers.txt; else summary_rc=1; head -n 10 offers.txt; fi
echo "report: $work/seeddms-report.json   page: $work/report.html   journal: $work/seeddms-journal.db   log: $work/ferry.log"
exit $summary_rc
