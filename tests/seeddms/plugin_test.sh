#!/usr/bin/env bash
# The seeddms plugin through the real ferry CLI (label seeddms), on real SQLite files and real files:
#   plugin_test.sh FERRY PLUGIN_DIR
# SQLite 6.0 -> SQLite 6.0 with the definitions (users, groups, workflows) on the target under other ids:
# plan names the planted missing file as blocked and writes nothing; run carries the rest, and sdcheck
# compare finds the target equal to the source (the document with the missing file left out); files are at the
# target's paths with their MD5; a second run writes nothing (every item already done); the id map holds the
# folders and documents; a 5.1 source is refused with a clear message.
set -uo pipefail
export LC_ALL=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
FERRY=${1:?ferry} PLUGINS=${2:?plugin dir}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$HERE/../..
T=$(mktemp -d /tmp/ferry-seeddms-plugin.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
export FERRY_PLUGIN_PATH=$PLUGINS
py() { python3 "$HERE/$@"; }

py mkfixture.py --db "sqlite:$T/s.db" --layout 6.0 --content "$T/sc" --seed 7 >/dev/null || bad "source fixture"
py mkfixture.py --db "sqlite:$T/t.db" --layout 6.0 --content "$T/tc" --seed 7 --part definitions --id-offset 100 \
  >/dev/null || bad "target fixture"
export SOURCE_SEEDDMS_DSN=$T/s.db SOURCE_SEEDDMS_CONTENT=$T/sc TARGET_SEEDDMS_DSN=$T/t.db TARGET_SEEDDMS_CONTENT=$T/tc
cp "$ROOT/examples/seeddms-to-seeddms.json" "$T/ferry.json"
cd "$T" || exit 1
docs() { sqlite3 "$1" "SELECT COUNT(*) FROM tblDocuments" 2>/dev/null || python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute('SELECT COUNT(*) FROM tblDocuments').fetchone()[0])" "$1"; }

# plan: the planted missing file (document 2's latest version) is blocked, nothing written
"$FERRY" plan -c ferry.json >"$T/plan.out" 2>&1
rc=$?
[ "$rc" != 0 ] && ok || bad "plan with a blocked item exited 0"
grep -q 'item "document:2": blocked: .*1048576/2/[0-9][^ ]* cannot be read on the source' "$T/plan.out" && ok \
  || { bad "plan does not name the missing file of document 2"; tail -5 "$T/plan.out"; }
[ "$(grep -c ': blocked: ' "$T/plan.out")" = 1 ] && ok || bad "plan blocked other items: $(grep ': blocked' "$T/plan.out" | head -3)"
[ "$(docs t.db)" = 0 ] && ok || bad "plan wrote documents"
[ "$(find "$T/tc" -type f | wc -l)" = 0 ] && ok || bad "plan wrote files"

# run: all but the blocked document; the target equals the source
"$FERRY" run -c ferry.json >"$T/run.out" 2>&1
grep -q 'failed: .*document:2\|item "document:2": failed' "$T/run.out" && ok || { bad "run did not fail document 2"; tail -5 "$T/run.out"; }
want=$(( $(docs s.db) - 1 ))
[ "$(docs t.db)" = "$want" ] && ok || bad "target holds $(docs t.db) documents, expected $want"
if py sdcheck.py compare --source "sqlite:$T/s.db" --source-content "$T/sc" --target "sqlite:$T/t.db" \
     --target-content "$T/tc" --ignore-missing-files >"$T/cmp.out" 2>&1; then ok
else bad "sdcheck compare: $(grep -c DIFF "$T/cmp.out") differences"; grep DIFF "$T/cmp.out" | head -10; fi
grep -q "target equals source" "$T/cmp.out" && ok || bad "compare did not say equal"

# the id map: folders and documents
"$FERRY" export-map -c ferry.json >"$T/map.out" 2>&1 || "$FERRY" export-map --journal seeddms-journal.db >"$T/map.out" 2>&1
grep -q 'document' "$T/map.out" && grep -q 'folder' "$T/map.out" && ok || { bad "id map lacks folders or documents"; head -5 "$T/map.out"; }

# re-run: nothing new written
before=$(py sdcheck.py canon --db "sqlite:$T/t.db" --content "$T/tc" | md5sum)
"$FERRY" run -c ferry.json >"$T/run2.out" 2>&1
grep -Eq 'documents +0 +29 +1' "$T/run2.out" && ok || { bad "second run: $(grep -A3 'run summary' "$T/run2.out")"; }
after=$(py sdcheck.py canon --db "sqlite:$T/t.db" --content "$T/tc" | md5sum)
[ "$before" = "$after" ] && ok || bad "second run changed the target"
[ "$(docs t.db)" = "$want" ] && ok || bad "second run added documents"

# a 5.1 source is refused, clearly
py mkfixture.py --db "sqlite:$T/o.db" --layout 5.1 --content "$T/oc" --seed 7 >/dev/null
SOURCE_SEEDDMS_DSN=$T/o.db SOURCE_SEEDDMS_CONTENT=$T/oc "$FERRY" plan -c ferry.json >"$T/old.out" 2>&1
grep -q 'has the 5.1 layout; reading 5.1 sources is not done yet' "$T/old.out" && ok || { bad "5.1 source not refused"; tail -3 "$T/old.out"; }

echo "seeddms plugin: $passes passed, $fails failed"
[ "$fails" = 0 ]
