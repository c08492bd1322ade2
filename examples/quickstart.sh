#!/usr/bin/env bash
# The main job, from a fresh clone on a fresh Debian/Ubuntu machine: a real Joget -> Joget migration between two
# emulated Joget servers, with the procedure of docs/joget-runbook.md.
#
#   1. installs missing dependencies (tests/deps.sh) and builds ferry and the Joget emulator (Release);
#   2. starts a private PostgreSQL (--db mariadb: MariaDB) and a source and a target Joget emulator (tests/support/joget-env.sh): the
#      source holds a generated fixture of N running instances over 3 processes (waiting at the first activity,
#      at a later one, at two parallel activities, inside a sub-flow), their form records and upload files, and
#      start-path tools that overwrite a form field; the target holds the same apps and users, no data;
#   3. writes the configuration from examples/joget-to-joget.json (secrets and addresses from the environment);
#   4. ferry plan; ferry run of the data stages (users, forms, uploads); a one-instance canary; ferry run;
#      ferry verify; ferry status; ferry report --html (report.html); ferry export-map; and prints a summary
#      (instances, records, files, what start-path tools changed and preserve-records restored);
#   5. stops the emulators and the database server, also on failure. The work directory (config, journal, report, logs)
#      is kept.
#
#   bash examples/quickstart.sh [--db postgresql|mariadb] [N]
#      N = running instances on the source (default 240, at least 200 advised)
#      --db mariadb: both Joget servers on a private MariaDB in Joget's MySQL layout, with
#      examples/joget-to-joget-mariadb.json (the sql plugin for users and forms; the joget plugins' dsn and
#      preserve-records on mariadb:// URLs). Default: PostgreSQL and examples/joget-to-joget.json.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
db=postgresql
n=240
while [ $# -gt 0 ]; do
  case "$1" in
  --db) db=${2:-}; shift 2 || { echo "quickstart: --db needs postgresql or mariadb" >&2; exit 2; } ;;
  --db=*) db=${1#--db=}; shift ;;
  -h | --help) sed -n '2,22p' "$0"; exit 0 ;;
  *) n=$1; shift ;;
  esac
done
case "$db" in
postgresql) example=joget-to-joget.json ;;
mariadb | mysql) db=mariadb example=joget-to-joget-mariadb.json ;;
*) echo "quickstart: --db: '$db' is not postgresql or mariadb" >&2; exit 2 ;;
esac
case "$n" in '' | *[!0-9]*) echo "quickstart: N must be a number of instances, got '$n'" >&2; exit 2 ;; esac
say() { printf '\n==> %s\n' "$*"; }

say "dependencies"
bash tests/deps.sh

say "building ferry and the Joget emulator (Release, plugins built in)"
build=build/release
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFERRY_PLUGINS_DEFAULT=STATIC -DFERRY_BUILD_TESTS=ON >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" --target ferry_cli joget-emulator 2>&1 |
  grep -E 'error:|warning:' || true
ferry="$root/$build/ferry"
emulator="$root/$build/tests/joget-emulator/joget-emulator"
[ -x "$ferry" ] && [ -x "$emulator" ] || { echo "quickstart: the build failed" >&2; exit 1; }

work=$(mktemp -d /tmp/ferry-quickstart.XXXXXX)
env_dir=$work/env
stop_env() {
  local st=$?
  bash "$root/tests/support/joget-env.sh" stop "$env_dir" >/dev/null 2>&1 || true
  echo
  echo "work directory: $work (config ferry.json, journal, report, logs; emulators and database stopped)"
  exit $st
}
trap stop_env EXIT INT TERM

say "a source and a target Joget server (emulated), $n running instances on the source"
python3 tests/joget-emulator/tools/gen-fixture.py --instances "$n" --source "$work/source.json" --target "$work/target.json"
python3 tests/e2e/tune-fixture.py --source "$work/source.json" --target "$work/target.json"
bash tests/support/joget-env.sh start "$env_dir" --source-fixture "$work/source.json" \
  --target-fixture "$work/target.json" --emulator-bin "$emulator" --engine "$db" >"$work/env.out"
# shellcheck disable=SC1091
. "$env_dir/env"
if [ "$db" = mariadb ]; then
  echo "source: $JOGET_SOURCE_URL   target: $JOGET_TARGET_URL   MariaDB: port $JOGET_MARIADB_PORT"
else
  echo "source: $JOGET_SOURCE_URL   target: $JOGET_TARGET_URL   PostgreSQL: port $JOGET_PG_PORT"
fi

# What examples/$example reads from the environment.
export SOURCE_JOGET_URL=$JOGET_SOURCE_URL TARGET_JOGET_URL=$JOGET_TARGET_URL
export SOURCE_JOGET_DSN=$JOGET_SOURCE_DB TARGET_JOGET_DSN=$JOGET_TARGET_DB
export SOURCE_WFLOW=$JOGET_SOURCE_UPLOADS TARGET_WFLOW=$JOGET_TARGET_UPLOADS
export SOURCE_JOGET_PASSWORD=admin TARGET_JOGET_PASSWORD=admin TARGET_MASTER_PASSWORD=master-secret

say "configuration: examples/$example -> $work/ferry.json"
"$ferry" plugins >"$work/plugins.txt"
# Stages whose plugins are not built are left out, with the reason (the `after` edges to them too).
python3 - "$root/examples/$example" "$work/ferry.json" "$work/plugins.txt" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
have = {l.split()[0] for l in open(sys.argv[3]) if l.strip() and not l.startswith((" ", "plugin "))}
kept, dropped = [], []
for st in cfg["stages"]:
    need = {st["source"]["plugin"], st["sink"]["plugin"]} | {h["plugin"] for h in st.get("hooks", [])}
    miss = sorted(need - have)
    (dropped if miss else kept).append((st, miss))
names = {st["name"] for st, _ in kept}
for st, miss in dropped:
    print("quickstart: stage %r left out: plugin(s) %s not built into this ferry" % (st["name"], ", ".join(miss)))
for st, _ in kept:
    after = st.get("after", [])
    after = [after] if isinstance(after, str) else after
    st["after"] = [a for a in after if a in names]
cfg["stages"] = [st for st, _ in kept]
# The emulated servers run on this machine: the example's production-minded rate limit (requests per second
# per server) is lifted so that the demonstration does not wait on it.
for st in cfg["stages"]:
    if st.get("rate"):
        print("quickstart: stage %r: rate limit %s/s lifted for the local emulators" % (st["name"], st["rate"]))
        st["rate"] = 0
json.dump(cfg, open(sys.argv[2], "w"), indent=1)
print("stages: %s" % (", ".join(st["name"] for st in cfg["stages"]) or "none"))
PY
stages=$(python3 -c 'import json,sys; print(" ".join(s["name"] for s in json.load(open(sys.argv[1]))["stages"]))' \
  "$work/ferry.json")
if [ -z "$stages" ]; then
  echo "quickstart: none of the migration's plugins (pgsql or sql, fs, joget, preserve-records) is built yet: nothing to run"
  exit 0
fi
has_stage() { [[ " $stages " == *" $1 "* ]]; }

cd "$work"
# ferry COMMAND ARGS...: the full log goes to ferry.log; the console gets it without preserve-records' line per
# record (the summary below counts them)
ferry() {
  "$ferry" "$@" --config ferry.json 2>&1 | tee -a ferry.log | { grep -v 'start-path tools changed' || true; }
}
say "ferry plan (reads both servers, writes nothing)"
ferry plan --progress plain --report plan-report.json
data_stages=()
for s in users forms uploads; do has_stage "$s" && data_stages+=(--stage "$s"); done
if [ ${#data_stages[@]} -gt 0 ]; then
  say "ferry run of the data stages (${data_stages[*]//--stage /}): records and files before any instance"
  ferry run "${data_stages[@]}" --progress plain
fi
if has_stage instances; then
  say "ferry run --stage instances --limit 1 (the canary: check it by hand on the target, see the runbook)"
  ferry run --stage instances --limit 1 --progress plain
fi
say "ferry run (everything else; the canary and the data are not carried twice)"
ferry run --progress plain
say "ferry verify (target against source, through the journal)"
ferry verify --progress plain
say "ferry status"
ferry status
say "ferry report --html (one self-contained page: verdict, stages, charts, every instance, the id map)"
ferry report --html report.html
say "ferry export-map (the old -> new ids the cutover needs)"
ferry export-map --format csv --output idmap.csv
echo "idmap.csv: $(($(wc -l <idmap.csv) - 1)) mapping(s): $(tail -n +2 idmap.csv | cut -d, -f1 | sort | uniq -c | tr -s ' ' | tr '\n' ' ')"

say "summary"
jc="python3 $root/tests/e2e/jcheck.py"
summary_rc=0
if has_stage instances; then
  $jc instances "$JOGET_SOURCE_DB" >source-instances.json
  $jc instances "$JOGET_TARGET_DB" >target-instances.json
  if ! $jc compare source-instances.json target-instances.json >compare.txt; then
    summary_rc=1
    head -n 10 compare.txt
  fi
  tail -n 1 compare.txt
  $jc tools-changed ferry-journal.db instances >tools-changed.json
  python3 - tools-changed.json <<'PY'
import json, sys
t = json.load(open(sys.argv[1]))
cols = {}
for item in t.values():
    for c in item["tools_changed"]:
        k = "%s.%s" % (c["table"], c["column"])
        cols[k] = cols.get(k, 0) + 1
print("preserve-records: %d instance(s) had form fields overwritten by start-path tools, all restored:" %
      sum(1 for i in t.values() if i["tools_changed"]))
for k, v in sorted(cols.items()):
    print("  %-32s %d" % (k, v))
PY
fi
if has_stage forms; then
  $jc forms "$JOGET_SOURCE_DB" "$JOGET_TARGET_DB" app_fd_leave app_fd_expense app_fd_onboard >forms.txt || summary_rc=1
  sed 's/^forms: /records: /' forms.txt | head -n 20
fi
if has_stage uploads; then
  $jc tree "$JOGET_SOURCE_UPLOADS/app_formuploads" >source-files.json
  $jc tree "$JOGET_TARGET_UPLOADS/app_formuploads" >target-files.json
  python3 - source-files.json target-files.json <<'PY' || summary_rc=1
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
same = sum(1 for p in a if p in b and (a[p]["sha256"], a[p]["size"], a[p]["mtime"]) ==
           (b[p]["sha256"], b[p]["size"], b[p]["mtime"]))
print("files: %d on the source, %d on the target, %d identical (SHA-256, size, mtime)" % (len(a), len(b), same))
sys.exit(0 if same == len(a) == len(b) else 1)
PY
fi
echo "report: $work/ferry-report.json   page: $work/report.html   journal: $work/ferry-journal.db   log: $work/ferry.log"
exit $summary_rc
