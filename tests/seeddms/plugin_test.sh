#!/usr/bin/env bash
# The seeddms plugin through the real ferry CLI (label seeddms), on real SQLite files, a real private MariaDB
# server (tests/support/mariadb.sh, stopped at exit also on failure) and real files:
#   plugin_test.sh FERRY PLUGIN_DIR SECTION
# Every section builds a source with mkfixture.py and a target holding only the definitions (users, groups,
# workflows) under other ids, then: plan names the planted missing file (document 2's latest version) as
# blocked and writes nothing (no row, no file); run carries everything else; sdcheck compare finds the target
# equal to the source (the document with the missing file left out: runs, logs, current states, who may fire
# the next transition, files by MD5); the id map holds folders, documents, versions and runs; a second run
# writes nothing (the target's canonical form is unchanged).
# Sections:
#   same     6.0 SQLite -> 6.0 SQLite; also: a user missing on the target blocks the documents that need it
#            (named), a workflow missing on the target blocks exactly the documents with a run of it (named),
#            a "layout" option that contradicts the database is refused
#   old      5.1 SQLite -> 6.0 MariaDB: finished runs rebuilt from the log (a version run twice through one
#            workflow keeps two runs)
#   mariadb  6.0 MariaDB -> 6.0 SQLite
#   crash    6.0 SQLite -> 6.0 SQLite, 300 documents: the run is killed with SIGKILL in the middle, the next run
#            finishes it; the target equals the source, no document twice, no temporary file left over
#   create   5.1 SQLite -> a fresh 6.0 MariaDB with "definitions": "create": users, groups, members, workflows
#            and transition users/groups created, target equal (who is offered each next step included), verify clean,
#            a plan with a new journal finds nothing to create; with "match", definitions that allow other people block in plan
#   repair   6.0 SQLite -> 6.0 MariaDB: differences planted on the target (a run's state, a log row, a name, an
#            ACL, a file, a folder's name): verify names each (exit 4), run --repair redoes exactly those items
#            under their target ids, the others keep theirs; then verify and sdcheck compare find it equal
#   crashpoints 6.0 SQLite -> 6.0 MariaDB, 40 documents: SIGKILL at seeded points of the sink (after the intent,
#            the rows, the files, the commit), each run resumed by the next: every document, folder and version
#            once, as many runs and log rows as the source, a document committed before the crash adopted, the
#            target equal to the source
#   same51   5.1 SQLite -> 5.1 SQLite: the runs written back in the 5.1 shape (only active runs are rows, the log by
#            document, version and workflow); no loss reported
#   to51     6.0 SQLite -> 5.1 MariaDB: as same51, and the versions that ran one workflow twice are reported as a
#            loss runs_51 (report and status); then an active run's state changed and a log row deleted on the
#            target: verify names both, run --repair rewrites those documents, verify clean, target equal
#   crashpoints51 as crashpoints, onto a 5.1 MariaDB target
set -uo pipefail
export LC_ALL=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
FERRY=$(cd "$(dirname "${1:?ferry}")" && pwd)/$(basename "$1") PLUGINS=$(cd "${2:?plugin dir}" && pwd) SECTION=${3:?section}
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$HERE/../..
. "$HERE/testlib.sh"
export FERRY_PLUGIN_PATH=$PLUGINS
py() { python3 "$HERE/$@"; }
# count SPEC TABLE: rows of TABLE, through the checker's own database access
count() {
  python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import sdlib; d = sdlib.Db(sys.argv[2]).open(); print(len(d.rows(sys.argv[3])))" \
    "$HERE" "$1" "$2"
}

# map_covers TGT_SPEC [TGT_LAYOUT]: the journal's id map (ferry export-map --format json, in the current
# directory) holds exactly the target's row ids of versions, status rows, runs (not on 5.1: its run rows have no
# id) and log rows, each once
map_covers() {
  "$FERRY" export-map -c ferry.json --format json >"$T/map.json" 2>"$T/map.err" || { bad "export-map: $(cat "$T/map.err")"; return; }
  local out
  out=$(python3 -c "import json, sys; sys.path.insert(0, sys.argv[1]); import sdlib
d = sdlib.Db(sys.argv[2]).open()
m = json.load(open(sys.argv[3]))
rows = m if isinstance(m, list) else m.get('ids', m.get('map', []))
for kind, table, col in (('version', 'tblDocumentContent', 'id'), ('status', 'tblDocumentStatus', 'statusID'),
                         ('run', 'tblWorkflowDocumentContent', 'id'), ('log', 'tblWorkflowLog', 'id')):
    new = [str(r['new_id']) for r in rows if r['kind'] == kind]
    if kind == 'run' and sys.argv[4] == '5.1':
        if new:
            print('run: %d ids in the map of a 5.1 target, whose run rows have none' % len(new))
        continue
    have = sorted(str(r[col]) for r in d.rows(table))
    if sorted(new) != have or not have:
        print('%s: %d ids in the map, %d rows of %s on the target, %d differ' % (kind, len(new), len(have), table,
              len(set(new) ^ set(have))))" "$HERE" "$1" "$T/map.json" "${2:-6.0}" 2>&1)
  [ -z "$out" ] && ok || bad "the id map does not cover the target's rows: $out"
}

# migrate SRC_SPEC SRC_LAYOUT SRC_DSN TGT_SPEC TGT_DSN [TGT_LAYOUT]
migrate() {
  local sspec=$1 slayout=$2 sdsn=$3 tspec=$4 tdsn=$5 tlayout=${6:-6.0}
  py mkfixture.py --db "$sspec" --layout "$slayout" --content "$T/sc" --seed 7 >/dev/null || bad "source fixture"
  py mkfixture.py --db "$tspec" --layout "$tlayout" --content "$T/tc" --seed 7 --part definitions --id-offset 100 \
    >/dev/null || bad "target fixture"
  export SOURCE_SEEDDMS_DSN=$sdsn SOURCE_SEEDDMS_CONTENT=$T/sc TARGET_SEEDDMS_DSN=$tdsn TARGET_SEEDDMS_CONTENT=$T/tc
  cp "$ROOT/examples/seeddms-to-seeddms.json" "$T/ferry.json"
  cd "$T" || exit 1

  "$FERRY" plan -c ferry.json >"$T/plan.out" 2>&1
  [ $? != 0 ] && ok || bad "plan with a blocked item exited 0"
  grep -q 'item "document:2": blocked: .*1048576/2/[0-9][^ ]* cannot be read on the source' "$T/plan.out" && ok \
    || { bad "plan does not name the missing file of document 2"; tail -5 "$T/plan.out"; }
  [ "$(grep -c ': blocked: ' "$T/plan.out")" = 1 ] && ok || bad "plan blocked other items: $(grep ': blocked' "$T/plan.out" | head -3)"
  grep -Eq 'documents +30 +0 +1 ' "$T/plan.out" && ok || bad "plan summary: $(grep -A2 'plan summary' "$T/plan.out")"
  # the plan's report names each blocked item with its reason
  python3 -c "import json,sys; its=[i for st in json.load(open(sys.argv[1]))['stages'] for i in st.get('items', [])]
b=[i for i in its if i.get('status') == 'blocked']
sys.exit(0 if len(b) == 1 and b[0]['key'] == 'document:2' and 'cannot be read on the source' in b[0]['error'] else 1)" seeddms-report.json \
    && ok || bad "the plan report does not name the blocked document and why"
  [ "$(count "$tspec" tblDocuments)" = 0 ] && ok || bad "plan wrote documents"
  [ "$(find "$T/tc" -type f | wc -l)" = 0 ] && ok || bad "plan wrote files"

  "$FERRY" run -c ferry.json >"$T/run.out" 2>&1
  grep -q 'item "document:2": failed' "$T/run.out" && ok || { bad "run did not fail document 2"; tail -5 "$T/run.out"; }
  local want=$(( $(count "$sspec" tblDocuments) - 1 ))
  [ "$(count "$tspec" tblDocuments)" = "$want" ] && ok || bad "target holds $(count "$tspec" tblDocuments) documents, expected $want"
  if py sdcheck.py compare --source "$sspec" --source-content "$T/sc" --target "$tspec" --target-content "$T/tc" \
       --ignore-missing-files >"$T/cmp.out" 2>&1; then ok
  else bad "sdcheck compare: $(grep -c DIFF "$T/cmp.out") differences"; grep -E 'DIFF|sdcheck' "$T/cmp.out" | head -10; fi
  grep -q "target equals source ($slayout" "$T/cmp.out" && ok || bad "compare did not say equal"
  # the next step of every active run is offered to the same logins on both sides; firing a sample on the
  # target (log row + state, as SeedDMS does) ends as the source's own definitions say it would
  local io="--source $sspec --source-content $T/sc --target $tspec --target-content $T/tc"
  if py sdfire.py offers $io --skip-absent >"$T/offers.out" 2>&1; then ok; else bad "offers differ"; head -10 "$T/offers.out"; fi
  grep -Eq '^offers equal: ([1-9][0-9]*) runs, [1-9][0-9]* .*; 1 runs of documents absent' "$T/offers.out" && ok || bad "no offers compared: $(cat "$T/offers.out")"

  "$FERRY" export-map -c ferry.json >"$T/map.out" 2>&1
  for kind in folder document version $([ "$tlayout" = 6.0 ] && echo run) log; do
    grep -q "^$kind," "$T/map.out" && ok || { bad "id map lacks $kind"; head -3 "$T/map.out"; }
  done
  map_covers "$tspec" "$tlayout"
  # losses: a 6.0 source's version that ran one workflow twice cannot keep two logs on 5.1 (runs_51, named
  # in the item's report and in status); a 5.1 source has nothing 5.1 cannot hold
  local twice
  twice=$(python3 -c "import json,sys; its=[i for st in json.load(open(sys.argv[1]))['stages'] for i in st.get('items', [])]
print(sum(1 for i in its for l in (i.get('report') or {}).get('losses', []) if l.get('kind') == 'runs_51'))" seeddms-report.json)
  if [ "$tlayout" = 5.1 ] && [ "$slayout" = 6.0 ]; then
    [ "$twice" -gt 0 ] && ok || bad "no runs_51 loss reported for the version run twice through one workflow"
    "$FERRY" status -c ferry.json --items >"$T/st.out" 2>&1
    grep -q 'document:[0-9]* .*runs_51' "$T/st.out" && ok || bad "status does not show the runs_51 loss: $(grep -m2 loss "$T/st.out")"
  else
    [ "$twice" = 0 ] && ok || bad "$twice runs_51 losses reported from a $slayout source to a $tlayout target"
  fi

  local before after
  before=$(py sdcheck.py canon --db "$tspec" --content "$T/tc" | md5sum)
  "$FERRY" run -c ferry.json >"$T/run2.out" 2>&1
  grep -Eq 'documents +0 +30 +1 ' "$T/run2.out" && ok || bad "second run: $(grep -A2 'run summary' "$T/run2.out")"
  after=$(py sdcheck.py canon --db "$tspec" --content "$T/tc" | md5sum)
  [ "$before" = "$after" ] && ok || bad "second run changed the target"
  # verify through the journal: every carried item equal, document 2 (blocked) not migrated
  "$FERRY" verify -c ferry.json >"$T/verify.out" 2>&1
  grep -Eq 'documents +30 +0 +1 ' "$T/verify.out" && grep -q 'verify: 0 item(s) differ and 1 are not migrated' "$T/verify.out" \
    && ok || { bad "verify after the run"; grep -E 'mismatch|differ' "$T/verify.out" | head -5; }
  if py sdfire.py fire $io --sample 6 >"$T/fire.out" 2>&1; then ok; else bad "firing on the target"; head -10 "$T/fire.out"; fi
  grep -Eq '^fired 6 transitions \([1-9]' "$T/fire.out" && ok || bad "fire: $(cat "$T/fire.out")"
}

case $SECTION in
same)
  migrate "sqlite:$T/s.db" 6.0 "$T/s.db" "sqlite:$T/t.db" "$T/t.db"
  # a user missing on the target (the owner of document 2, whose file is missing too): the documents that
  # need it are blocked, naming the user, and document 2's report lists both reasons; a fresh journal (in
  # m3/) so that nothing counts as done
  who=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT u.login FROM tblDocuments d JOIN tblUsers u ON u.id = d.owner WHERE d.id = 2\").fetchone()[0])" "$T/s.db")
  py mkfixture.py --db "sqlite:$T/t3.db" --layout 6.0 --content "$T/tc3" --seed 7 --part definitions --id-offset 100 >/dev/null
  python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA foreign_keys=ON'); c.execute('DELETE FROM tblUsers WHERE login = ?', (sys.argv[2],)); c.commit()" "$T/t3.db" "$who"
  mkdir -p m3 && cp ferry.json m3/
  (cd m3 && TARGET_SEEDDMS_DSN=$T/t3.db TARGET_SEEDDMS_CONTENT=$T/tc3 "$FERRY" plan -c ferry.json) >"$T/plan3.out" 2>&1
  grep -q "blocked: .*user \"$who\" is missing on the target" "$T/plan3.out" && ok \
    || { bad "a missing user ($who) does not block"; grep blocked "$T/plan3.out" | head -3; }
  python3 -c "import json,sys; its={i['key']: i for st in json.load(open(sys.argv[1]))['stages'] for i in st.get('items', [])}
b=its['document:2'].get('report', {}).get('blocked', [])
sys.exit(0 if len(b) == 2 and ('\"%s\" is missing' % sys.argv[2]) in b[0] and 'cannot be read on the source' in b[1] else 1)" m3/seeddms-report.json "$who" \
    && ok || bad "document 2's plan report does not list both reasons: $(grep -o '"blocked": \[[^]]*' m3/seeddms-report.json | head -2)"
  # a workflow missing on the target: every document with a run of it is blocked, naming the workflow and
  # the run table; the others would do
  py mkfixture.py --db "sqlite:$T/t4.db" --layout 6.0 --content "$T/tc4" --seed 7 --part definitions --id-offset 100 >/dev/null
  python3 -c "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute('PRAGMA foreign_keys=ON'); c.execute(\"DELETE FROM tblWorkflows WHERE name = 'Quick release'\"); c.commit()" "$T/t4.db"
  want=$(python3 -c "import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(\"SELECT count(DISTINCT r.document) FROM tblWorkflowDocumentContent r JOIN tblWorkflows w ON w.id = r.workflow WHERE w.name = 'Quick release' AND r.document <> 2\").fetchone()[0])" "$T/s.db")
  mkdir -p m4 && cp ferry.json m4/
  (cd m4 && TARGET_SEEDDMS_DSN=$T/t4.db TARGET_SEEDDMS_CONTENT=$T/tc4 "$FERRY" plan -c ferry.json) >"$T/plan4.out" 2>&1
  got=$(grep -c 'blocked: .*workflow "Quick release" is missing on the target (tblWorkflowDocumentContent.workflow, version [0-9]*)' "$T/plan4.out")
  [ "$want" -gt 0 ] && [ "$got" = "$want" ] && ok || bad "a missing workflow blocked $got documents, expected $want"
  # a layout option that contradicts the database
  sed 's/"content_dir": "${SOURCE_SEEDDMS_CONTENT}"/"content_dir": "${SOURCE_SEEDDMS_CONTENT}", "layout": "5.1"/' ferry.json >bad.json
  "$FERRY" plan -c bad.json >"$T/bad.out" 2>&1
  grep -q 'option "layout" says 5.1 but .* has the 6.0 layout' "$T/bad.out" && ok || { bad "wrong layout accepted"; tail -3 "$T/bad.out"; }
  sed 's/"content_dir": "${SOURCE_SEEDDMS_CONTENT}"/"content_dir": "${SOURCE_SEEDDMS_CONTENT}", "layout": "7"/' ferry.json >bad2.json
  "$FERRY" plan -c bad2.json >"$T/bad2.out" 2>&1
  grep -q '"layout": must be one of "auto", "5.1", "6.0", found "7"' "$T/bad2.out" && ok || { bad "bad layout value"; tail -3 "$T/bad2.out"; }
  ;;
old)
  start_mariadb tgt
  migrate "sqlite:$T/s.db" 5.1 "$T/s.db" "mariadb:$MY/sock/mysqld.sock:tgt" "$(bash "$SUPPORT/mariadb.sh" url "$MY" tgt)"
  ;;
same51)
  migrate "sqlite:$T/s.db" 5.1 "$T/s.db" "sqlite:$T/t.db" "$T/t.db" 5.1
  # "definitions": "create" onto a fresh 5.1 target from a 6.0 source: users get their role as the 5.1 number
  # (no tblRoles, no secret column), workflows no layoutdata; the target then equals the source
  py mkfixture.py --db "sqlite:$T/s6.db" --layout 6.0 --content "$T/sc6" --seed 3 --docs 10 --folders 3 \
    --missing-files 0 >/dev/null || bad "6.0 source fixture"
  py mkfixture.py --db "sqlite:$T/t6.db" --layout 5.1 --content "$T/tc6" --seed 3 --part install >/dev/null \
    || bad "fresh 5.1 target"
  mkdir -p c6 && sed 's/"content_dir": "${TARGET_SEEDDMS_CONTENT}"/"content_dir": "${TARGET_SEEDDMS_CONTENT}", "definitions": "create"/' \
    "$ROOT/examples/seeddms-to-seeddms.json" >c6/ferry.json
  (cd c6 && SOURCE_SEEDDMS_DSN=$T/s6.db SOURCE_SEEDDMS_CONTENT=$T/sc6 TARGET_SEEDDMS_DSN=$T/t6.db \
     TARGET_SEEDDMS_CONTENT=$T/tc6 "$FERRY" run -c ferry.json) >"$T/c6.out" 2>&1 && ok || { bad "create onto 5.1"; tail -5 "$T/c6.out"; }
  [ "$(count "sqlite:$T/t6.db" tblUsers)" = "$(count "sqlite:$T/s6.db" tblUsers)" ] && ok || bad "users created on 5.1: $(count "sqlite:$T/t6.db" tblUsers)"
  roles=$(python3 -c "import sqlite3,sys; print(sorted({r[0] for r in sqlite3.connect(sys.argv[1]).execute('SELECT role FROM tblUsers')}))" "$T/t6.db")
  [ "$roles" = "[0, 1, 2]" ] && ok || bad "5.1 roles of the created users: $roles"
  if py sdcheck.py compare --source "sqlite:$T/s6.db" --source-content "$T/sc6" --target "sqlite:$T/t6.db" \
       --target-content "$T/tc6" >"$T/cmp6.out" 2>&1; then ok
  else bad "compare 6.0 -> fresh 5.1: $(grep -c DIFF "$T/cmp6.out") differences"; grep -E 'DIFF|sdcheck' "$T/cmp6.out" | head -10; fi
  ;;
to51)
  start_mariadb tgt
  tspec="mariadb:$SOCK:tgt"
  migrate "sqlite:$T/s.db" 6.0 "$T/s.db" "$tspec" "$(bash "$SUPPORT/mariadb.sh" url "$MY" tgt)" 5.1
  # verify and repair in the 5.1 shape: besides the runs the fire step moved on, an active run's state is
  # changed and a log row deleted on the target; verify names both, run --repair writes those documents again
  # (their runs and log by document), then verify is clean and the target equals the source again
  planted=$(python3 - "$HERE" "$tspec" <<'PY'
import sys; sys.path.insert(0, sys.argv[1]); import sdlib
d = sdlib.Db(sys.argv[2]).open()
runs = sorted(d.rows("tblWorkflowDocumentContent"), key=lambda r: r["document"])
logs = sorted(d.rows("tblWorkflowLog"), key=lambda r: r["id"])
a = runs[-1]
other = next(s["id"] for s in d.rows("tblWorkflowStates") if s["id"] != a["state"])
d.execute("UPDATE tblWorkflowDocumentContent SET state = ? WHERE document = ? AND version = ? AND workflow = ?",
          (other, a["document"], a["version"], a["workflow"]))
b = next(e for e in logs if e["document"] != a["document"])
d.execute("DELETE FROM tblWorkflowLog WHERE id = ?", (b["id"],))
print(a["document"], b["document"])
PY
) || bad "planting"
  read -r da db <<<"$planted"
  sa=$(awk -F, -v n="$da" '$1 == "document" && $3 == n {print $2}' "$T/map.out")
  sb=$(awk -F, -v n="$db" '$1 == "document" && $3 == n {print $2}' "$T/map.out")
  "$FERRY" verify -c ferry.json >"$T/v1.out" 2>&1
  [ $? = 4 ] && ok || bad "verify of a changed 5.1 target did not exit 4"
  # differs KEY PATTERN: the verify report's differences of item KEY include one matching PATTERN
  differs() {
    python3 -c "import json, re, sys; its = {i['key']: i for st in json.load(open(sys.argv[1]))['stages'] for i in st.get('items', [])}
sys.exit(0 if any(re.search(sys.argv[3], d) for d in (its.get(sys.argv[2], {}).get('report') or {}).get('differences', [])) else 1)" \
      seeddms-report.json "$1" "$2"
  }
  differs "document:$sa" 'tblWorkflowDocumentContent: no row on the target has .*state=' && ok \
    || bad "verify does not name the changed run of document $sa: $(grep "document:$sa\"" "$T/v1.out" | head -2)"
  differs "document:$sb" 'tblWorkflowLog: [0-9]+ rows on the source, [0-9]+ on the target' && ok \
    || bad "verify does not name the deleted log row of document $sb: $(grep "document:$sb\"" "$T/v1.out" | head -2)"
  "$FERRY" run --repair -c ferry.json >"$T/r.out" 2>&1 && ok || { bad "run --repair"; tail -5 "$T/r.out"; }
  "$FERRY" verify -c ferry.json >"$T/v2.out" 2>&1
  grep -q 'verify: 0 item(s) differ and 1 are not migrated' "$T/v2.out" && ok || { bad "verify after repair"; grep mismatch "$T/v2.out" | head -5; }
  if py sdcheck.py compare --source "sqlite:$T/s.db" --source-content "$T/sc" --target "$tspec" --target-content "$T/tc" \
       --ignore-missing-files >"$T/cmp2.out" 2>&1; then ok
  else bad "compare after repair: $(grep -c DIFF "$T/cmp2.out") differences"; grep -E 'DIFF|sdcheck' "$T/cmp2.out" | head -10; fi
  ;;
create)
  # a fresh target (install rows only) with "definitions": "create": 5.1 SQLite -> 6.0 MariaDB; plan writes
  # nothing and blocks only document 2; the run creates users, groups with members, attribute definitions and
  # workflows with who may fire each transition; the target equals the source,
  # verify is clean, a plan with a new journal finds nothing to create. Then "match" on a target whose definitions allow other people
  # (a transition user and a group member removed): plan blocks the definitions item naming both
  start_mariadb tgt
  tspec="mariadb:$SOCK:tgt"
  py mkfixture.py --db "sqlite:$T/s.db" --layout 5.1 --content "$T/sc" --seed 7 --docs 14 --folders 4 >/dev/null || bad "source fixture"
  py mkfixture.py --db "$tspec" --layout 6.0 --content "$T/tc" --seed 7 --part install >/dev/null || bad "target fixture"
  export SOURCE_SEEDDMS_DSN=$T/s.db SOURCE_SEEDDMS_CONTENT=$T/sc TARGET_SEEDDMS_CONTENT=$T/tc
  export TARGET_SEEDDMS_DSN=$(bash "$SUPPORT/mariadb.sh" url "$MY" tgt)
  sed 's/"content_dir": "${TARGET_SEEDDMS_CONTENT}"/"content_dir": "${TARGET_SEEDDMS_CONTENT}", "definitions": "create"/' \
    "$ROOT/examples/seeddms-to-seeddms.json" >"$T/ferry.json"
  cd "$T" || exit 1
  grep -q '"definitions": "create"' ferry.json && ok || bad "config edit"
  "$FERRY" plan -c ferry.json >"$T/plan.out" 2>&1
  [ "$(grep -c ': blocked: ' "$T/plan.out")" = 1 ] && grep -q 'item "document:2": blocked' "$T/plan.out" && ok \
    || bad "plan with create: $(grep ': blocked' "$T/plan.out" | head -3)"
  grep -q '"would": *"definitions: create [1-9][0-9]* missing on the target"' seeddms-report.json && ok || bad "plan report lacks the definitions"
  [ "$(count "$tspec" tblUsers)" = 2 ] && [ "$(count "$tspec" tblWorkflows)" = 0 ] && ok || bad "plan wrote definitions"
  "$FERRY" run -c ferry.json >"$T/run.out" 2>&1
  [ "$(count "$tspec" tblUsers)" = "$(count "sqlite:$T/s.db" tblUsers)" ] && ok || bad "users: $(count "$tspec" tblUsers)"
  for t in tblGroups tblGroupMembers tblWorkflowTransitions tblWorkflowTransitionUsers tblWorkflowTransitionGroups tblAttributeDefinitions; do
    [ "$(count "$tspec" $t)" = "$(count "sqlite:$T/s.db" $t)" ] && ok || bad "$t: $(count "$tspec" $t) rows on the target"
  done
  if py sdcheck.py compare --source "sqlite:$T/s.db" --source-content "$T/sc" --target "$tspec" --target-content "$T/tc" \
       --ignore-missing-files >"$T/cmp.out" 2>&1; then ok
  else bad "compare: $(grep -c DIFF "$T/cmp.out") differences"; grep -E 'DIFF|sdcheck' "$T/cmp.out" | head -10; fi
  "$FERRY" verify -c ferry.json >"$T/verify.out" 2>&1
  grep -q 'verify: 0 item(s) differ and 1 are not migrated' "$T/verify.out" && ok || bad "verify: $(tail -2 "$T/verify.out")"
  # a new journal: the definitions item finds everything by name, nothing left to create
  mkdir -p again && cp ferry.json again/ && (cd again && "$FERRY" plan -c ferry.json >"$T/plan2.out" 2>&1)
  grep -q '"would": *"definitions: create 0 missing on the target"' again/seeddms-report.json && ok \
    || bad "plan again: $(grep -o '"would": *"definitions[^"]*"' again/seeddms-report.json)"
  # match, with definitions that allow other people
  bash "$SUPPORT/mariadb.sh" createdb "$MY" tgt2 || bad "createdb"
  py mkfixture.py --db "mariadb:$SOCK:tgt2" --layout 6.0 --content "$T/tc2" --seed 7 --docs 14 --folders 4 --part definitions --id-offset 100 >/dev/null
  python3 - "$HERE" "mariadb:$SOCK:tgt2" <<'PY' || bad "planting"
import sys; sys.path.insert(0, sys.argv[1]); import sdlib
d = sdlib.Db(sys.argv[2]).open()
d.execute("DELETE FROM tblWorkflowTransitionUsers ORDER BY id LIMIT 1")
d.execute("DELETE FROM tblGroupMembers WHERE groupID = (SELECT id FROM tblGroups WHERE name = 'Authors') ORDER BY userID LIMIT 1")
PY
  mkdir -p m && cp "$ROOT/examples/seeddms-to-seeddms.json" m/ferry.json
  (cd m && TARGET_SEEDDMS_DSN=$(bash "$SUPPORT/mariadb.sh" url "$MY" tgt2) TARGET_SEEDDMS_CONTENT=$T/tc2 "$FERRY" plan -c ferry.json) >"$T/plan3.out" 2>&1
  grep -q 'item "definitions": blocked: seeddms: 2 definition(s) allow other people on the target than on the source' "$T/plan3.out" \
    && ok || bad "match: mismatch not blocked: $(grep definitions "$T/plan3.out" | head -2)"
  python3 -c "import json,sys; r=json.load(open(sys.argv[1])); s=json.dumps(r); sys.exit(0 if 'users [' in s and 'is a member of group' in s else 1)" m/seeddms-report.json \
    && ok || bad "the plan report does not list both differences"
  ;;
repair)
  # differences planted on the target after a run (a run's state, a log row gone, a document renamed, a file
  # changed, a folder renamed, an ACL added): verify names each (exit 4), `run --repair` writes exactly those
  # items again under their target ids, and then verify and sdcheck find the target equal
  start_mariadb tgt
  tspec="mariadb:$SOCK:tgt"
  py mkfixture.py --db "sqlite:$T/s.db" --layout 6.0 --content "$T/sc" --seed 9 --docs 16 --folders 5 \
    --missing-files 0 >/dev/null || bad "source fixture"
  py mkfixture.py --db "$tspec" --layout 6.0 --content "$T/tc" --seed 9 --docs 16 --folders 5 --part definitions \
    --id-offset 100 >/dev/null || bad "target fixture"
  export SOURCE_SEEDDMS_DSN=$T/s.db SOURCE_SEEDDMS_CONTENT=$T/sc TARGET_SEEDDMS_CONTENT=$T/tc
  export TARGET_SEEDDMS_DSN=$(bash "$SUPPORT/mariadb.sh" url "$MY" tgt)
  cp "$ROOT/examples/seeddms-to-seeddms.json" "$T/ferry.json"
  cd "$T" || exit 1
  "$FERRY" run -c ferry.json >"$T/run.out" 2>&1 && ok || { bad "run"; tail -60 "$T/run.out"; }
  "$FERRY" verify -c ferry.json >"$T/v0.out" 2>&1 && ok || { bad "verify of a fresh target"; grep mismatch "$T/v0.out" | head -5; }
  "$FERRY" export-map -c ferry.json >"$T/map.out" 2>&1
  # new id of a source document / folder: tgt KIND OLD
  tgt() { grep "^$1,$2," "$T/map.out" | head -1 | cut -d, -f3; }
  d3=$(tgt document 3) d5=$(tgt document 5) d7=$(tgt document 7) d9=$(tgt document 9) f3=$(tgt folder 3)
  run3=$(python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import sdlib; d = sdlib.Db(sys.argv[2]).open()
print(min(r['id'] for r in d.rows('tblWorkflowDocumentContent') if r['document'] == int(sys.argv[3])))" "$HERE" "$tspec" "$d3")
  python3 - "$HERE" "$tspec" "$d3" "$d5" "$d7" "$f3" "$run3" <<'PY' || bad "planting"
import sys; sys.path.insert(0, sys.argv[1]); import sdlib
d = sdlib.Db(sys.argv[2]).open(); d3, d5, d7, f3, run3 = sys.argv[3:]
d.execute("UPDATE tblWorkflowDocumentContent SET state = (SELECT min(id) FROM tblWorkflowStates), date = '2001-01-01 00:00:00' WHERE id = ?", (run3,))
d.execute("DELETE FROM tblWorkflowLog WHERE workflowdocumentcontent IN (SELECT id FROM tblWorkflowDocumentContent WHERE document = ?) ORDER BY id DESC LIMIT 1", (d5,))  # MariaDB
d.execute("UPDATE tblDocuments SET name = 'renamed' WHERE id = ?", (d7,))
d.execute("UPDATE tblFolders SET name = 'renamed folder' WHERE id = ?", (f3,))
d.execute("INSERT INTO tblACLs (target, targetType, userID, groupID, mode) VALUES (?, 2, -1, (SELECT min(id) FROM tblGroups), 4)", (d7,))
PY
  f9=$(find "$T/tc/1048576/$d9" -type f | sort | head -1)
  printf 'changed' >>"$f9"
  "$FERRY" verify -c ferry.json >"$T/v1.out" 2>&1
  [ $? = 4 ] && ok || bad "verify of a changed target did not exit 4"
  for want in "document:3\".*tblWorkflowDocumentContent row 1 .* state: " "document:5\".*tblWorkflowLog: [0-9]+ rows on the source, [0-9]+ on the target" \
              "document:7\".*tblDocuments row 1 .* name: \"Document 0007\" expected, \"renamed\" found" \
              "document:9\".*the file of version .* has MD5 " "folder:3\".*tblFolders row 1 .* name: "; do
    grep -Eq "item \"$want" "$T/v1.out" && ok || bad "verify does not name: $want"
  done
  grep -q 'verify: 5 item(s) differ' "$T/v1.out" && ok || bad "verify: $(grep 'item(s) differ' "$T/v1.out")"
  "$FERRY" status -c ferry.json --items >"$T/st.out" 2>&1
  grep -q 'document:7 .*verify: mismatch (2 differences)' "$T/st.out" && ok || bad "status does not show two differences of document 7: $(grep 'document:7 ' "$T/st.out")"
  ids_before=$(grep -v '^document,7,\|^document,9,\|^document,3,\|^document,5,\|^folder,3,' "$T/map.out" | grep '^document,\|^folder,' | md5sum)
  "$FERRY" run --repair -c ferry.json >"$T/r.out" 2>&1 && ok || { bad "run --repair"; tail -40 "$T/r.out"; }
  grep -Eq 'documents +5 +0 +0 ' "$T/r.out" && ok || bad "repair did not redo exactly 5 items: $(grep -A2 'run summary' "$T/r.out")"
  "$FERRY" export-map -c ferry.json >"$T/map2.out" 2>&1
  [ "$(tgt document 7)" = "$d7" ] && [ "$(grep '^document,7,' "$T/map2.out" | cut -d, -f3)" = "$d7" ] && ok || bad "repair gave document 7 another id"
  [ "$(grep -v '^document,7,\|^document,9,\|^document,3,\|^document,5,\|^folder,3,' "$T/map2.out" | grep '^document,\|^folder,' | md5sum)" = "$ids_before" ] \
    && ok || bad "repair changed the ids of other items"
  [ "$(count "$tspec" tblDocuments)" = 16 ] && ok || bad "after repair: $(count "$tspec" tblDocuments) documents"
  "$FERRY" verify -c ferry.json >"$T/v2.out" 2>&1 && ok || { bad "verify after repair"; tail -30 "$T/v2.out"; }
  if py sdcheck.py compare --source "sqlite:$T/s.db" --source-content "$T/sc" --target "$tspec" \
       --target-content "$T/tc" >"$T/cmp.out" 2>&1; then ok
  else bad "compare after repair: $(grep -c DIFF "$T/cmp.out") differences"; grep -E 'DIFF|sdcheck' "$T/cmp.out" | head -10; fi
  ;;
mariadb)
  start_mariadb src
  migrate "mariadb:$MY/sock/mysqld.sock:src" 6.0 "$(bash "$SUPPORT/mariadb.sh" url "$MY" src)" "sqlite:$T/t.db" "$T/t.db"
  ;;
crash)
  py mkfixture.py --db "sqlite:$T/s.db" --layout 6.0 --content "$T/sc" --seed 11 --docs 300 --folders 12 \
    --missing-files 0 >/dev/null || bad "source fixture"
  py mkfixture.py --db "sqlite:$T/t.db" --layout 6.0 --content "$T/tc" --seed 11 --docs 300 --folders 12 \
    --part definitions --id-offset 100 >/dev/null || bad "target fixture"
  export SOURCE_SEEDDMS_DSN=$T/s.db SOURCE_SEEDDMS_CONTENT=$T/sc TARGET_SEEDDMS_DSN=$T/t.db TARGET_SEEDDMS_CONTENT=$T/tc
  cp "$ROOT/examples/seeddms-to-seeddms.json" "$T/ferry.json"
  cd "$T" || exit 1
  "$FERRY" run -c ferry.json >"$T/run1.out" 2>&1 &
  pid=$!
  # kill once some documents are in, long before the last
  for _ in $(seq 1 200); do
    n=$(count "sqlite:$T/t.db" tblDocuments 2>/dev/null || echo 0)
    [ "${n:-0}" -ge 40 ] && break
    sleep 0.05
  done
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  n=$(count "sqlite:$T/t.db" tblDocuments)
  [ "$n" -gt 0 ] && [ "$n" -lt 300 ] && ok || bad "kill did not land in the middle ($n documents)"
  "$FERRY" run -c ferry.json >"$T/run2.out" 2>&1 && ok || { bad "second run failed"; tail -5 "$T/run2.out"; }
  [ "$(count "sqlite:$T/t.db" tblDocuments)" = 300 ] && ok || bad "after resume: $(count "sqlite:$T/t.db" tblDocuments) documents"
  if py sdcheck.py compare --source "sqlite:$T/s.db" --source-content "$T/sc" --target "sqlite:$T/t.db" \
       --target-content "$T/tc" >"$T/cmp.out" 2>&1; then ok
  else bad "sdcheck compare after resume: $(grep -c DIFF "$T/cmp.out") differences"; grep -E 'DIFF|sdcheck' "$T/cmp.out" | head -10; fi
  [ -z "$(find "$T/tc" -name '*.part')" ] || echo "note: leftover .part files: $(find "$T/tc" -name '*.part' | wc -l)"
  ;;
crashpoints|crashpoints51)
  # (crashpoints51: the same onto a 5.1 target, whose runs have no id: only the active ones are rows)
  # SIGKILL at seeded points of the sink (FERRY_SEEDDMS_TEST_CRASH_AFTER, test only): after the intent, after
  # the rows, after the files, after the commit (the journal does not know it is done); each run is resumed by
  # the next; at the end every document is on the target exactly once and the target equals the source
  py mkfixture.py --db "sqlite:$T/s.db" --layout 6.0 --content "$T/sc" --seed 5 --docs 40 --folders 6 \
    --missing-files 0 >/dev/null || bad "source fixture"
  start_mariadb tgt
  tl=$([ "$SECTION" = crashpoints51 ] && echo 5.1 || echo 6.0)
  py mkfixture.py --db "mariadb:$SOCK:tgt" --layout $tl --content "$T/tc" --seed 5 --docs 40 --folders 6 \
    --part definitions --id-offset 100 >/dev/null || bad "target fixture"
  export SOURCE_SEEDDMS_DSN=$T/s.db SOURCE_SEEDDMS_CONTENT=$T/sc TARGET_SEEDDMS_CONTENT=$T/tc
  export TARGET_SEEDDMS_DSN=$(bash "$SUPPORT/mariadb.sh" url "$MY" tgt)
  cp "$ROOT/examples/seeddms-to-seeddms.json" "$T/ferry.json"
  cd "$T" || exit 1
  tspec="mariadb:$SOCK:tgt"
  for knob in intent:4 rows:6 files:5 commit:7 commit:1 rows:3; do
    FERRY_SEEDDMS_TEST_CRASH_AFTER=$knob "$FERRY" run -c ferry.json >"$T/crash.out" 2>&1
    rc=$?
    [ "$rc" = 137 ] && ok || { bad "crash at $knob: exit $rc, expected 137"; tail -5 "$T/crash.out"; }
    grep -q "FERRY_SEEDDMS_TEST_CRASH_AFTER=$knob" "$T/crash.out" && ok || bad "knob $knob did not fire"
  done
  n=$(count "$tspec" tblDocuments)
  [ "$n" -gt 0 ] && [ "$n" -lt 40 ] && ok || bad "the crashes did not land in the middle ($n documents)"
  "$FERRY" run -c ferry.json >"$T/last.out" 2>&1 && ok || { bad "the last run failed"; tail -5 "$T/last.out"; }
  [ "$(count "$tspec" tblDocuments)" = 40 ] && ok || bad "after resume: $(count "$tspec" tblDocuments) documents, expected 40"
  dup=$(python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import sdlib; d = sdlib.Db(sys.argv[2]).open()
from collections import Counter
for t, k in (('tblDocuments', ('name', 'folder')), ('tblFolders', ('name', 'parent')), ('tblDocumentContent', ('document', 'version'))):
    c = Counter(tuple(r[x] for x in k) for r in d.rows(t))
    print(sum(v - 1 for v in c.values()), end=' ')" "$HERE" "$tspec")
  [ "$dup" = "0 0 0 " ] && ok || bad "duplicates on the target (documents, folders, versions): $dup"
  runs=$(python3 -c "import sys; sys.path.insert(0, sys.argv[1]); import sdlib; d = sdlib.Db(sys.argv[2]).open()
print(sum(1 for r in d.rows('tblWorkflowDocumentContent') if sys.argv[3] == '6.0' or r['state'] is not None))" "$HERE" "sqlite:$T/s.db" $tl)
  [ "$(count "$tspec" tblWorkflowDocumentContent)" = "$runs" ] && ok \
    || bad "runs: $(count "$tspec" tblWorkflowDocumentContent) on the target, expected $runs"
  [ "$(count "$tspec" tblWorkflowLog)" = "$(count "sqlite:$T/s.db" tblWorkflowLog)" ] && ok || bad "log rows differ in number"
  # the two crashes after a commit: those documents were found on the target and adopted, not written again
  "$FERRY" status -c ferry.json --items >"$T/status.out" 2>&1
  [ "$(grep -c 'adopted' "$T/status.out")" = 2 ] && ok || bad "adopted after the crashes after a commit: $(grep -c adopted "$T/status.out"), expected 2"
  # the adopted documents' versions, status rows, runs and log rows are in the id map too
  map_covers "$tspec" $tl
  if py sdcheck.py compare --source "sqlite:$T/s.db" --source-content "$T/sc" --target "$tspec" \
       --target-content "$T/tc" >"$T/cmp.out" 2>&1; then ok
  else bad "compare after the crashes: $(grep -c DIFF "$T/cmp.out") differences"; grep -E 'DIFF|sdcheck' "$T/cmp.out" | head -10; fi
  ;;
*) echo "unknown section $SECTION"; exit 2 ;;
esac
echo "seeddms plugin $SECTION: $passes passed, $fails failed"
[ "$fails" = 0 ]
