#!/usr/bin/env bash
# The main job, on embedded defaults, from a fresh clone: installs missing dependencies, builds ferry
# (Release) and runs a real pipeline end to end — plan, a one-item canary, the run, verify and status — with
# the journal in an SQLite file, so you can see every command at work.
#
# Until the Joget plugins land (issue "Migrate running Joget instances end to end") the pipeline is a
# jsonl -> jsonl transfer of a generated inventory of running-instance items; the same commands will then
# run the migration between two emulated Joget servers.
#
#   bash examples/quickstart.sh [N]     N = number of instance items (default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
bash tests/deps.sh
build=build/release
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=Release -DFERRY_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j"$(nproc 2>/dev/null || echo 2)" 2>&1 | grep -E 'error|warning' || true
ferry="$PWD/$build/ferry"
work=$(mktemp -d /tmp/ferry-quickstart.XXXXXX)
echo "==> work directory: $work"

# An inventory of running instances, as a source server would list them.
awk -v n="$n" 'BEGIN {
  split("alice bob carol dave erin", users, " ");
  for (i = 1; i <= n; i++) {
    u = users[(i % 5) + 1];
    printf("{\"kind\":\"instance\",\"key\":\"%d_leave_app_leave_process\",\"body\":{\"id\":\"%d_leave_app_leave_process\",", i, i);
    printf("\"definition\":\"leave_app#3#leave_process\",\"record_id\":\"rec-%06d\",\"requester\":\"%s\",", i, u);
    printf("\"variables\":{\"days\":\"%d\",\"status\":\"pending\"},", i % 20 + 1);
    printf("\"activities\":[{\"def_id\":\"approve\",\"id\":\"%d_%d_leave_app_leave_process_approve\",\"state\":\"open.not_running.not_started\",\"assignees\":[\"%s\"]}]}}\n", i * 7, i, users[((i + 2) % 5) + 1]);
  }
}' > "$work/inventory.jsonl"

cat > "$work/ferry.json" <<JSON
{
  "journal": "journal.db",
  "report": "report.json",
  "stages": [
    { "name": "instances",
      "source": { "plugin": "jsonl", "options": { "path": "inventory.jsonl" } },
      "sink":   { "plugin": "jsonl", "options": { "path": "target.jsonl" } },
      "concurrency": 64 }
  ]
}
JSON

cd "$work"
echo; echo "==> ferry plan (reads everything, writes nothing)"
"$ferry" plan --config ferry.json --progress plain
echo; echo "==> ferry run --limit 1 (the canary)"
"$ferry" run --config ferry.json --limit 1 --progress plain
echo; echo "==> ferry run (resumes: the canary is not carried twice)"
"$ferry" run --config ferry.json
echo; echo "==> ferry verify"
"$ferry" verify --config ferry.json --progress plain
echo; echo "==> ferry status"
"$ferry" status --config ferry.json
echo
echo "source lines: $(wc -l < inventory.jsonl), target lines: $(wc -l < target.jsonl), unique keys in target: $(grep -o '"key":"[^"]*"' target.jsonl | sort -u | wc -l)"
echo "report: $work/report.json   journal: $work/journal.db"
