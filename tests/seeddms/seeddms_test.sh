#!/usr/bin/env bash
# Tests of the SeedDMS fixture builder, checker and reference converter (label seeddms), on real SQLite files, a
# real private MariaDB server (tests/support/mariadb.sh, stopped at exit also on failure) and real files.
#   seeddms_test.sh SECTION
# Sections:
#   flavours  the builder makes all four flavours (5.1/6.0 x SQLite/MariaDB): tables and columns of each layout,
#             row counts as the builder's summary says, files at SeedDMS's paths with the MD5 of the checksum
#             column, one file missing, maxDirID directories; same seed = same canonical form, another seed not;
#             every flavour equals itself, SQLite equals MariaDB, the 5.1 build equals the 6.0 build of one seed;
#             targets to migrate into: other ids, only the definitions, only the install rows
#   convert   the reference converter copies 5.1 SQLite -> 6.0 MariaDB, 6.0 MariaDB -> 5.1 SQLite,
#             6.0 SQLite -> 6.0 SQLite with another maxDirID, 5.1 MariaDB -> 5.1 SQLite, all ids renumbered,
#             and the checker finds each target equal; the 6.0.0 update's own semantics (runs merged) are caught
#   planted   planted differences make the checker exit 1 and name them: a state changed, a log entry dropped,
#             a file changed, a transition user removed (6.0 SQLite target), a state changed on MariaDB, a log
#             entry dropped on a 5.1 target, a document removed; a document with a missing file left out
#   errors    bad database specs, a database that is not SeedDMS, an existing fixture: exit 2, clear message
set -uo pipefail
export LC_ALL=C.UTF-8
export PYTHONDONTWRITEBYTECODE=1  # no __pycache__ in the source tree
SECTION=${1:?section}
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/testlib.sh"
# expect CODE DESCRIPTION -- command...   (stdout+stderr go to $T/out)
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$T/out" 2>&1
  local got=$?
  if [ "$got" = "$want" ]; then ok; else bad "$what: exit $got, expected $want"; sed 's/^/    /' "$T/out" | tail -25; fi
}
has() { if grep -qF -- "$1" "$T/out"; then ok; else bad "$2: output lacks '$1'"; sed 's/^/    /' "$T/out" | tail -25; fi; }
hasnt() { if grep -qF -- "$1" "$T/out"; then bad "$2: output has '$1'"; sed 's/^/    /' "$T/out" | tail -25; else ok; fi; }

MK="python3 $HERE/mkfixture.py"
CHECK="python3 $HERE/sdcheck.py"
CONV="python3 $HERE/refconv.py"

# compare SRC SRCDIR TGT TGTDIR [extra args]: checker, output in $T/out
compare() { local s=$1 sd=$2 t=$3 td=$4; shift 4; $CHECK compare --source "$s" --source-content "$sd" --target "$t" --target-content "$td" "$@"; }

# py_count SPEC TABLE: rows in TABLE
py_count() { python3 -B -c "import sys; sys.path.insert(0, '$HERE'); import sdlib; d = sdlib.Db(sys.argv[1]).open(); print(len(d.rows(sys.argv[2])))" "$1" "$2"; }

section_flavours() {
  start_mariadb f51 f60
  local specs=("sqlite:$T/s51.db" "sqlite:$T/s60.db" "mariadb:$SOCK:f51" "mariadb:$SOCK:f60")
  local layouts=(5.1 6.0 5.1 6.0) names=(s51 s60 m51 m60)
  for i in 0 1 2 3; do
    expect 0 "build ${names[$i]}" -- $MK --db "${specs[$i]}" --layout "${layouts[$i]}" --content "$T/c-${names[$i]}" \
      --seed 7 --summary "$T/sum-${names[$i]}.json"
  done
  # layout-specific columns (the columns are read from the database itself)
  cols() { python3 -B -c "import sys; sys.path.insert(0, '$HERE'); import sdlib; d = sdlib.Db(sys.argv[1]).open(); print(' '.join(d.columns(sys.argv[2])))" "$1" "$2"; }
  for i in 0 2; do
    [ "$(cols "${specs[$i]}" tblWorkflowDocumentContent)" = "parentworkflow workflow document version state date" ] \
      && ok || bad "${names[$i]}: 5.1 run table columns: $(cols "${specs[$i]}" tblWorkflowDocumentContent)"
    [ "$(cols "${specs[$i]}" tblWorkflowLog)" = "id document version workflow userid transition date comment" ] \
      && ok || bad "${names[$i]}: 5.1 log columns"
  done
  for i in 1 3; do
    [ "$(cols "${specs[$i]}" tblWorkflowDocumentContent)" = "id parent workflow document version state date" ] \
      && ok || bad "${names[$i]}: 6.0 run table columns: $(cols "${specs[$i]}" tblWorkflowDocumentContent)"
    [ "$(cols "${specs[$i]}" tblWorkflowLog)" = "id workflowdocumentcontent userid transition date comment" ] \
      && ok || bad "${names[$i]}: 6.0 log columns"
    [ "$(cols "${specs[$i]}" tblUsers | cut -d' ' -f1-4)" = "id login pwd secret" ] && ok || bad "${names[$i]}: secret after pwd"
    [ "$(py_count "${specs[$i]}" tblRoles)" = 3 ] && ok || bad "${names[$i]}: tblRoles rows"
  done
  # every table holds what the summary says
  for i in 0 1 2 3; do
    python3 -B - "$T/sum-${names[$i]}.json" "${specs[$i]}" "$HERE" >"$T/out" 2>&1 <<'PY'
import json, sys
sys.path.insert(0, sys.argv[3]); import sdlib
s = json.load(open(sys.argv[1])); d = sdlib.Db(sys.argv[2]).open(); bad = 0
for t, n in s["counts"].items():
    got = len(d.rows(t))
    if got != n: print(f"{t}: {got} rows, summary says {n}"); bad += 1
v = d.rows("tblVersion")
want = (5, 1) if s["layout"] == "5.1" else (6, 0)
if len(v) != 1 or (v[0]["major"], v[0]["minor"]) != want: print("tblVersion", v); bad += 1
if s["counts"]["tblWorkflowLog"] < 20 or s["counts"]["tblDocumentContent"] < 24: print("too few rows", s["counts"]); bad += 1
sys.exit(1 if bad else 0)
PY
    [ $? = 0 ] && ok || { bad "${names[$i]}: row counts"; cat "$T/out"; }
  done
  # the builder covers every case, and SQLite and MariaDB builds of one seed and layout have equal summaries
  python3 - "$T"/sum-*.json >"$T/out" 2>&1 <<'PY'
import json, sys
sums = [json.load(open(p)) for p in sys.argv[1:]]
need = {"none", "active-draft", "active-review", "active-approval", "active-approval-partial", "released",
        "rejected", "twice-finished", "twice-active", "quick-released", "quick-active"}
for s in sums:
    missing = need - set(s["versions"].values())
    if missing: print("cases missing:", missing); sys.exit(1)
    if s["missing_files"] != [2]: print("missing files:", s["missing_files"]); sys.exit(1)
if sums[0]["versions"] != sums[1]["versions"] or sums[0]["versions"] != sums[2]["versions"]:
    print("the flavours of one seed hold different cases"); sys.exit(1)
PY
  [ $? = 0 ] && ok || { bad "cases covered"; cat "$T/out"; }
  # files: at <content>/1048576/<doc>/<version><fileType>, MD5 = checksum column, size = fileSize; doc 2's latest
  # version missing; dir column = "<doc>/"
  python3 -B - "sqlite:$T/s60.db" "$T/c-s60/1048576" "$HERE" >"$T/out" 2>&1 <<'PY'
import hashlib, os, sys
sys.path.insert(0, sys.argv[3]); import sdlib
d = sdlib.Db(sys.argv[1]).open(); base = sys.argv[2]; bad = 0; missing = []
latest = {}
for c in d.rows("tblDocumentContent"): latest[c["document"]] = max(latest.get(c["document"], 0), c["version"])
for c in d.rows("tblDocumentContent"):
    p = os.path.join(base, str(c["document"]), f"{c['version']}{c['fileType']}")
    if c["dir"] != f"{c['document']}/": print("dir", c["dir"]); bad += 1
    if not os.path.isfile(p): missing.append((c["document"], c["version"])); continue
    data = open(p, "rb").read()
    if hashlib.md5(data).hexdigest() != c["checksum"] or len(data) != c["fileSize"]: print("checksum/size", p); bad += 1
if missing != [(2, latest[2])]: print("missing", missing); bad += 1
if not any(c["fileType"] == "" for c in d.rows("tblDocumentContent")): print("no version without extension"); bad += 1
sys.exit(1 if bad else 0)
PY
  [ $? = 0 ] && ok || { bad "files and checksums"; cat "$T/out"; }
  expect 0 "build with maxDirID 4" -- $MK --db "sqlite:$T/d.db" --layout 6.0 --content "$T/c-d" --max-dir-id 4 --docs 9 --summary /dev/null
  [ -d "$T/c-d/1048576/3/9" ] && [ -d "$T/c-d/1048576/1/4" ] && [ -d "$T/c-d/1048576/2/5" ] && [ ! -e "$T/c-d/1048576/9" ] \
    && ok || { bad "maxDirID layout"; find "$T/c-d" -maxdepth 3 | head; }
  expect 0 "maxDirID build checks against itself" -- compare "sqlite:$T/d.db" "$T/c-d" "sqlite:$T/d.db" "$T/c-d" \
    --source-max-dir-id 4 --target-max-dir-id 4
  hasnt "DIFF" "maxDirID build"
  expect 1 "maxDirID read as 0 finds files missing" -- compare "sqlite:$T/d.db" "$T/c-d" "sqlite:$T/d.db" "$T/c-d" \
    --source-max-dir-id 4
  has '["file"]: source {"md5"' "wrong maxDirID"
  # deterministic: the same seed builds the same canonical form; another seed another one
  expect 0 "rebuild seed 7" -- $MK --db "sqlite:$T/s60b.db" --layout 6.0 --content "$T/c-s60b" --seed 7 --summary /dev/null
  expect 0 "build seed 8" -- $MK --db "sqlite:$T/s60c.db" --layout 6.0 --content "$T/c-s60c" --seed 8 --summary /dev/null
  for n in s60 s60b s60c; do
    $CHECK canon --db "sqlite:$T/$n.db" --content "$T/c-$n" | grep -v '"engine"' | sed "s#$T/c-$n##" >"$T/canon-$n.json" || bad "canon $n"
  done
  cmp -s "$T/canon-s60.json" "$T/canon-s60b.json" && ok || bad "same seed, different canonical form"
  cmp -s "$T/canon-s60.json" "$T/canon-s60c.json" && bad "seeds 7 and 8 give the same canonical form" || ok
  python3 -c "import json,sys; c=json.load(open(sys.argv[1])); assert c['meta']['layout']=='6.0' and len(c['documents'])==24" \
    "$T/canon-s60.json" && ok || bad "canon is JSON with 24 documents"
  # equal to itself, across engines, across layouts (5.1's runs rebuilt from the log = the 6.0 build's runs)
  for i in 0 1 2 3; do
    expect 0 "${names[$i]} equals itself" -- compare "${specs[$i]}" "$T/c-${names[$i]}" "${specs[$i]}" "$T/c-${names[$i]}"
    has "target equals source" "${names[$i]} itself"
    has "Document 0002 version" "${names[$i]}: the missing file is noted"
  done
  expect 0 "5.1 SQLite = 5.1 MariaDB" -- compare "${specs[0]}" "$T/c-s51" "${specs[2]}" "$T/c-m51"
  expect 0 "6.0 MariaDB = 6.0 SQLite" -- compare "${specs[3]}" "$T/c-m60" "${specs[1]}" "$T/c-s60"
  expect 0 "6.0 SQLite (started dates) -> 5.1 SQLite: finished dates not comparable" -- compare "${specs[1]}" "$T/c-s60" "${specs[0]}" "$T/c-s51"
  expect 1 "5.1 -> 6.0 with finished runs dated at their start" -- compare "${specs[0]}" "$T/c-s51" "${specs[1]}" "$T/c-s60"
  has '["runs"][0]["date"]' "finished run dates differ"
  bash "$SUPPORT/mariadb.sh" createdb "$MY" f60l
  expect 0 "build 6.0 MariaDB, finished runs dated at the last log entry" -- $MK --db "mariadb:$SOCK:f60l" --layout 6.0 \
    --content "$T/c-m60l" --seed 7 --finished-run-date last-log --summary /dev/null
  expect 0 "5.1 SQLite = 6.0 MariaDB (last-log dates)" -- compare "${specs[0]}" "$T/c-s51" "mariadb:$SOCK:f60l" "$T/c-m60l"
  has "(5.1 sqlite -> 6.0 mysql)" "cross-layout equal"
  # targets to migrate into: other ids (--id-offset), only the definitions (--part definitions), only the install
  expect 0 "build with other ids" -- $MK --db "sqlite:$T/o.db" --layout 6.0 --content "$T/c-o" --seed 7 --id-offset 500 --summary /dev/null
  expect 0 "other ids, same installation" -- compare "${specs[1]}" "$T/c-s60" "sqlite:$T/o.db" "$T/c-o"
  [ "$(sqlite3 "$T/o.db" "SELECT id FROM tblUsers WHERE login = 'user01'")" = "$(( $(sqlite3 "$T/s60.db" "SELECT id FROM tblUsers WHERE login = 'user01'") + 500 ))" ] \
    && [ "$(sqlite3 "$T/o.db" "SELECT id FROM tblUsers WHERE login = 'admin'")" = 1 ] && ok || bad "--id-offset ids"
  bash "$SUPPORT/mariadb.sh" createdb "$MY" fdef
  expect 0 "build definitions only" -- $MK --db "mariadb:$SOCK:fdef" --layout 6.0 --content "$T/c-def" --seed 7 --id-offset 300 \
    --part definitions --summary /dev/null
  expect 0 "build install only" -- $MK --db "sqlite:$T/i.db" --layout 5.1 --content "$T/c-i" --part install --summary /dev/null
  $CHECK canon --db "mariadb:$SOCK:fdef" --content "$T/c-def" >"$T/canon-def.json" || bad "canon definitions"
  $CHECK canon --db "sqlite:$T/i.db" --content "$T/c-i" >"$T/canon-i.json" || bad "canon install"
  python3 - "$T/canon-s60.json" "$T/canon-def.json" "$T/canon-i.json" >"$T/out" 2>&1 <<'PY'
import json, sys
full, defs, inst = (json.load(open(p)) for p in sys.argv[1:])
bad = 0
for k in ("groups", "attrdefs", "states", "actions", "workflows", "roles"):
    if full[k] != defs[k]: print("definitions differ in", k); bad += 1
for login, u in full["users"].items():
    if dict(u, homefolder=None) != defs["users"].get(login): print("user", login); bad += 1
if defs["documents"] or list(defs["folders"]) != ["/DMS"]: print("definitions hold documents or folders"); bad += 1
if sorted(inst["users"]) != ["admin", "guest"] or inst["workflows"] or inst["groups"] or inst["documents"]:
    print("install part holds more than the install rows"); bad += 1
sys.exit(1 if bad else 0)
PY
  [ $? = 0 ] && ok || { bad "definitions and install parts"; cat "$T/out"; }
  # the canonical form of the 5.1 build: the twice-through version has two runs, the first finished
  $CHECK canon --db "${specs[0]}" --content "$T/c-s51" >"$T/canon-s51.json"
  python3 - "$T/canon-s51.json" "$T/sum-s51.json" >"$T/out" 2>&1 <<'PY'
import json, sys
c = json.load(open(sys.argv[1])); s = json.load(open(sys.argv[2]))
vers = {}
for key, d in c["documents"].items():
    did = int(key.rsplit(" ", 1)[1])
    for v, ver in d["versions"].items(): vers[f"{did}/{v}"] = ver
bad = 0
for k, case in s["versions"].items():
    runs = vers[k]["runs"]; cur = vers[k]["current"]
    want = {"none": 0, "twice-finished": 2, "twice-active": 2}.get(case, 1)
    if len(runs) != want: print(k, case, "runs", len(runs)); bad += 1
    active = case.startswith("active") or case in ("twice-active", "quick-active")
    if (cur is not None) != active: print(k, case, "current", cur); bad += 1
    if case.startswith("twice") and (runs[0]["state"] is not None or runs[0]["workflow"] != runs[1]["workflow"]):
        print(k, "first run not finished"); bad += 1
    if case == "active-approval-partial":
        if len(cur["offered"]["in approval --approve--> released"]) != 2: print(k, "partial quota", cur); bad += 1
    for r in runs:
        if r["state"] is None and r["date"] != r["log"][-1]["date"]: print(k, "finished run date"); bad += 1
sys.exit(1 if bad else 0)
PY
  [ $? = 0 ] && ok || { bad "5.1 runs rebuilt from the log"; cat "$T/out"; }
}

section_convert() {
  start_mariadb b51 c60 c51
  $MK --db "sqlite:$T/a51.db" --layout 5.1 --content "$T/c-a51" --seed 3 --docs 30 --summary /dev/null || bad "build a51"
  $MK --db "mariadb:$SOCK:b51" --layout 5.1 --content "$T/c-b51" --seed 4 --docs 20 --summary /dev/null || bad "build b51"
  $MK --db "sqlite:$T/a60.db" --layout 6.0 --content "$T/c-a60" --seed 5 --docs 20 --summary /dev/null || bad "build a60"
  expect 0 "convert 5.1 SQLite -> 6.0 MariaDB" -- $CONV --source "sqlite:$T/a51.db" --source-content "$T/c-a51" \
    --target "mariadb:$SOCK:c60" --target-content "$T/c-c60" --layout 6.0
  expect 0 "5.1 SQLite = 6.0 MariaDB (converted)" -- compare "sqlite:$T/a51.db" "$T/c-a51" "mariadb:$SOCK:c60" "$T/c-c60"
  has "(5.1 sqlite -> 6.0 mysql)" "5.1 -> 6.0"
  # ids really differ: no document keeps its id
  python3 -B - "sqlite:$T/a51.db" "mariadb:$SOCK:c60" "$HERE" >"$T/out" 2>&1 <<'PY'
import sys
sys.path.insert(0, sys.argv[3]); import sdlib
a = {d["name"]: d["id"] for d in sdlib.Db(sys.argv[1]).open().rows("tblDocuments")}
b = {d["name"]: d["id"] for d in sdlib.Db(sys.argv[2]).open().rows("tblDocuments")}
same = [n for n in a if a[n] == b.get(n)]
sys.exit(1 if same or set(a) != set(b) else 0)
PY
  [ $? = 0 ] && ok || { bad "converted ids are renumbered"; cat "$T/out"; }
  expect 0 "convert 6.0 MariaDB -> 5.1 SQLite" -- $CONV --source "mariadb:$SOCK:c60" --source-content "$T/c-c60" \
    --target "sqlite:$T/r51.db" --target-content "$T/c-r51" --layout 5.1
  expect 0 "6.0 MariaDB = 5.1 SQLite (converted back)" -- compare "mariadb:$SOCK:c60" "$T/c-c60" "sqlite:$T/r51.db" "$T/c-r51"
  expect 0 "the round trip equals the original 5.1" -- compare "sqlite:$T/a51.db" "$T/c-a51" "sqlite:$T/r51.db" "$T/c-r51"
  expect 0 "convert 6.0 SQLite -> 6.0 SQLite, maxDirID 0 -> 7" -- $CONV --source "sqlite:$T/a60.db" --source-content "$T/c-a60" \
    --target "sqlite:$T/b60.db" --target-content "$T/c-b60" --target-max-dir-id 7 --layout 6.0
  expect 0 "6.0 = 6.0 (maxDirID 7)" -- compare "sqlite:$T/a60.db" "$T/c-a60" "sqlite:$T/b60.db" "$T/c-b60" --target-max-dir-id 7
  # with maxDirID 7 every file lies at <n>/<doc>/<file>, and as many files as in the source
  [ "$(find "$T/c-b60/1048576" -mindepth 3 -maxdepth 3 -type f | wc -l)" = "$(find "$T/c-a60/1048576" -type f | wc -l)" ] \
    && [ -z "$(find "$T/c-b60/1048576" -maxdepth 2 -type f)" ] && ok || bad "maxDirID 7 directories"
  expect 0 "convert 5.1 MariaDB -> 5.1 MariaDB" -- $CONV --source "mariadb:$SOCK:b51" --source-content "$T/c-b51" \
    --target "mariadb:$SOCK:c51" --target-content "$T/c-c51" --layout 5.1
  expect 0 "5.1 MariaDB = 5.1 MariaDB (converted)" -- compare "mariadb:$SOCK:b51" "$T/c-b51" "mariadb:$SOCK:c51" "$T/c-c51"
  # SeedDMS's own 6.0.0 update merges the runs of a version through one workflow: the checker names those versions
  expect 0 "convert 5.1 -> 6.0 as the 6.0.0 update does" -- $CONV --source "sqlite:$T/a51.db" --source-content "$T/c-a51" \
    --target "sqlite:$T/u60.db" --target-content "$T/c-u60" --layout 6.0 --update-semantics
  expect 1 "update semantics: runs merged" -- compare "sqlite:$T/a51.db" "$T/c-a51" "sqlite:$T/u60.db" "$T/c-u60"
  has '["runs"]: source has 2 entries, target 1' "merged runs"
  local twice
  twice=$(python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print(sum(1 for c in s['versions'].values() if c.startswith('twice')))" \
    <($MK --db "sqlite:$T/x.db" --layout 5.1 --content "$T/c-x" --seed 3 --docs 30))
  [ "$(grep -c 'source has 2 entries, target 1' "$T/out")" = "$twice" ] && ok \
    || bad "one difference per twice-through version ($twice expected): $(grep -c 'source has 2 entries, target 1' "$T/out")"
}

section_planted() {
  start_mariadb p60 p60b
  $MK --db "sqlite:$T/src.db" --layout 5.1 --content "$T/c-src" --seed 11 --summary /dev/null || bad "build"
  $CONV --source "sqlite:$T/src.db" --source-content "$T/c-src" --target "sqlite:$T/tgt.db" --target-content "$T/c-tgt" \
    --layout 6.0 || bad "convert"
  expect 0 "unplanted target equals" -- compare "sqlite:$T/src.db" "$T/c-src" "sqlite:$T/tgt.db" "$T/c-tgt"
  fresh() { rm -rf "$T/p.db" "$T/c-p"; cp "$T/tgt.db" "$T/p.db"; cp -a "$T/c-tgt" "$T/c-p"; }
  sq() { sqlite3 "$T/p.db" "$1" || bad "sqlite3: $1"; }
  # 1. the state of an active run changed
  fresh
  sq "UPDATE tblWorkflowDocumentContent SET state = (SELECT id FROM tblWorkflowStates WHERE name = 'in approval')
      WHERE id = (SELECT min(r.id) FROM tblWorkflowDocumentContent r JOIN tblWorkflowStates s ON s.id = r.state WHERE s.name = 'in review')"
  expect 1 "state changed" -- compare "sqlite:$T/src.db" "$T/c-src" "sqlite:$T/p.db" "$T/c-p"
  has '["state"]: source "in review", target "in approval"' "state changed"
  has '["current"]["offered"]' "state changed: other transitions offered"
  # 2. a log entry dropped
  fresh
  sq "DELETE FROM tblWorkflowLog WHERE id = (SELECT max(id) FROM tblWorkflowLog)"
  expect 1 "log entry dropped" -- compare "sqlite:$T/src.db" "$T/c-src" "sqlite:$T/p.db" "$T/c-p"
  has '["log"]: missing in target:' "log entry dropped"
  # 3. a file changed (same size)
  fresh
  f=$(find "$T/c-p/1048576" -type f | sort | head -1)
  printf 'X' | dd of="$f" bs=1 seek=5 conv=notrunc 2>/dev/null
  expect 1 "file changed" -- compare "sqlite:$T/src.db" "$T/c-src" "sqlite:$T/p.db" "$T/c-p"
  has '["file"]["md5"]' "file changed"
  hasnt '["file"]["size"]' "file changed, size kept"
  # 4. a transition user removed: the definition differs and so does who is offered the transition
  fresh
  sq "DELETE FROM tblWorkflowTransitionUsers WHERE transition IN (SELECT t.id FROM tblWorkflowTransitions t
      JOIN tblWorkflowActions a ON a.id = t.action JOIN tblWorkflowStates s ON s.id = t.state
      WHERE a.name = 'reject' AND s.name = 'in review')"
  expect 1 "transition user removed" -- compare "sqlite:$T/src.db" "$T/c-src" "sqlite:$T/p.db" "$T/c-p"
  has '["workflows"]["Standard review"]["transitions"]["in review --reject--> rejected"]["users"]' "transition user removed"
  has '["offered"]["in review --reject--> rejected"]: missing in target: "user05"' "transition user no longer offered"
  # 5. on MariaDB: a state changed
  $CONV --source "sqlite:$T/src.db" --source-content "$T/c-src" --target "mariadb:$SOCK:p60" --target-content "$T/c-m" \
    --layout 6.0 || bad "convert to MariaDB"
  expect 0 "MariaDB target equals" -- compare "sqlite:$T/src.db" "$T/c-src" "mariadb:$SOCK:p60" "$T/c-m"
  python3 -B -c "import sys; sys.path.insert(0, '$HERE'); import sdlib; sdlib.Db(sys.argv[1]).execute(
      \"UPDATE tblWorkflowDocumentContent SET state = NULL WHERE state IS NOT NULL ORDER BY id LIMIT 1\")" "mariadb:$SOCK:p60" \
    || bad "plant on MariaDB"
  expect 1 "MariaDB: a running workflow ended" -- compare "sqlite:$T/src.db" "$T/c-src" "mariadb:$SOCK:p60" "$T/c-m"
  has '["state"]: source "' "MariaDB state"
  has '["current"]: source {' "MariaDB current run gone"
  # 6. a 5.1 target: a log entry of the first of two runs dropped changes the rebuilt runs
  $CONV --source "sqlite:$T/src.db" --source-content "$T/c-src" --target "sqlite:$T/t51.db" --target-content "$T/c-t51" \
    --layout 5.1 || bad "convert to 5.1"
  expect 0 "5.1 target equals" -- compare "sqlite:$T/src.db" "$T/c-src" "sqlite:$T/t51.db" "$T/c-t51"
  sqlite3 "$T/t51.db" "DELETE FROM tblWorkflowLog WHERE id = (SELECT min(id) FROM tblWorkflowLog)" || bad "plant on 5.1"
  expect 1 "5.1 target: first log entry dropped" -- compare "sqlite:$T/src.db" "$T/c-src" "sqlite:$T/t51.db" "$T/c-t51"
  has '["log"]' "5.1 log entry dropped"
  # 7. a document missing on the target is named; --ignore-document leaves it out
  fresh
  sq "PRAGMA foreign_keys = OFF; DELETE FROM tblDocumentContent WHERE document = (SELECT id FROM tblDocuments WHERE name = 'Document 0005');
      DELETE FROM tblDocuments WHERE name = 'Document 0005'"
  expect 1 "document removed" -- compare "sqlite:$T/src.db" "$T/c-src" "sqlite:$T/p.db" "$T/c-p"
  has 'Document 0005"]: only in source' "document removed"
  key=$(grep -o '\["documents"\]\["[^"]*Document 0005"\]' "$T/out" | head -1 | sed 's/.*\]\["//; s/"\]$//')
  expect 0 "document removed, ignored" -- compare "sqlite:$T/src.db" "$T/c-src" "sqlite:$T/p.db" "$T/c-p" --ignore-document "$key"
  # 8. the document whose file is missing on the source left out of the target (as a plan blocks it)
  fresh
  sq "PRAGMA foreign_keys = OFF; DELETE FROM tblDocumentContent WHERE document = (SELECT id FROM tblDocuments WHERE name = 'Document 0002');
      DELETE FROM tblDocuments WHERE name = 'Document 0002'"
  expect 1 "blocked document absent" -- compare "sqlite:$T/src.db" "$T/c-src" "sqlite:$T/p.db" "$T/c-p"
  has 'Document 0002"]: only in source' "blocked document absent"
  expect 0 "blocked document absent, --ignore-missing-files" -- compare "sqlite:$T/src.db" "$T/c-src" "sqlite:$T/p.db" "$T/c-p" \
    --ignore-missing-files
  has "left out (file missing on the source): " "blocked document named"
}

section_errors() {
  expect 2 "unknown spec" -- $CHECK canon --db "postgres:x" --content "$T"
  has "expected sqlite:PATH or mariadb:SOCKET:DATABASE" "unknown spec"
  expect 2 "no such SQLite file" -- $CHECK canon --db "sqlite:$T/none.db" --content "$T"
  has "no such SQLite file" "missing file"
  sqlite3 "$T/empty.db" "CREATE TABLE x (a)"
  expect 2 "not a SeedDMS database" -- $CHECK canon --db "sqlite:$T/empty.db" --content "$T"
  has "table tblWorkflowLog is missing" "not SeedDMS"
  expect 2 "bad mariadb spec" -- $CHECK canon --db "mariadb:/nonexistent.sock" --content "$T"
  has "expected mariadb:SOCKET:DATABASE" "bad mariadb spec"
  expect 2 "mariadb socket absent" -- $CHECK canon --db "mariadb:$T/no.sock:db" --content "$T"
  has "mariadb:$T/no.sock:db" "socket absent names the spec"
  expect 0 "build" -- $MK --db "sqlite:$T/f.db" --layout 6.0 --content "$T/c" --docs 3 --summary /dev/null
  expect 2 "existing fixture kept" -- $MK --db "sqlite:$T/f.db" --layout 6.0 --content "$T/c2" --docs 3
  has "file exists (use --force" "existing fixture"
  expect 2 "content dir not empty" -- $MK --db "sqlite:$T/g.db" --layout 6.0 --content "$T/c" --docs 3
  has "content directory not empty" "content not empty"
  [ ! -e "$T/g.db" ] && ok || bad "nothing written when the content directory is refused"
  expect 2 "too few users" -- $MK --db "sqlite:$T/h.db" --layout 5.1 --content "$T/c3" --users 3
  has "--users must be at least 9" "too few users"
  expect 0 "empty installation (no documents)" -- $MK --db "sqlite:$T/e.db" --layout 5.1 --content "$T/c4" --docs 0 --summary /dev/null
  expect 0 "empty installation equals itself" -- compare "sqlite:$T/e.db" "$T/c4" "sqlite:$T/e.db" "$T/c4"
}

case "$SECTION" in
  flavours|convert|planted|errors) "section_$SECTION" ;;
  *) echo "unknown section $SECTION"; exit 2 ;;
esac
echo "seeddms $SECTION: $passes passed, $fails failed"
[ "$fails" = 0 ]
