#!/usr/bin/env bash
# Tests of the fs plugin through the ferry CLI, on real files in a temporary directory.
#   fs_test.sh <path to ferry> <plugin dir> SECTION
# Sections: copy (copy, mtime/mode, checksums, odd names, plan, re-runs, changed files, on_conflict, source
# unchanged), refuse (symlinks, special files, bad names and escaping paths refused and reported while the
# rest is copied; target-side symlinks), select (tables/records/records_file), crash (SIGKILL mid-copy,
# resume, no temporary file left), verify (verify finds corrupted and missing target files).
set -uo pipefail
export LC_ALL=C
FERRY=$1
export FERRY_PLUGIN_PATH=$2
SECTION=${3:-all}
T=$(mktemp -d /tmp/ferry-fs-test.XXXXXX)
BGPID=""
cleanup() {
  if [ -n "$BGPID" ]; then kill -9 "$BGPID" 2>/dev/null; wait "$BGPID" 2>/dev/null; fi
  chmod -R u+rwX "$T" 2>/dev/null
  rm -rf "$T"
}
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
check() { local what=$1; shift; if "$@"; then ok; else bad "$what"; fi; }
# expect CODE DESCRIPTION -- command...   (stdout+stderr go to $T/out)
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$T/out" 2>&1
  local got=$?
  if [ "$got" = "$want" ]; then ok; else bad "$what: exit $got, expected $want"; sed 's/^/    /' "$T/out" | tail -25; fi
}
has() { if grep -q -- "$1" "$T/out"; then ok; else bad "$2: output lacks '$1'"; sed 's/^/    /' "$T/out" | tail -25; fi; }

# tree_sum DIR: one line per entry (path, size, mtime_ns, mode, sha256 for files; link targets), sorted;
# names printed with Python's repr, so newlines and non-UTF-8 bytes are shown exactly.
tree_sum() {
  python3 - "$1" <<'PY'
import hashlib, os, stat, sys
root = os.fsencode(sys.argv[1])
out = []
for dp, dns, fns in os.walk(root):
    for n in fns + [d for d in dns if os.path.islink(os.path.join(dp, d))]:
        p = os.path.join(dp, n)
        st = os.lstat(p)
        rel = os.path.relpath(p, root)
        if stat.S_ISREG(st.st_mode):
            with open(p, 'rb') as f:
                h = hashlib.sha256(f.read()).hexdigest()
            out.append("F %r %d %d %o %s" % (rel, st.st_size, st.st_mtime_ns, stat.S_IMODE(st.st_mode), h))
        elif stat.S_ISLNK(st.st_mode):
            out.append("L %r -> %r" % (rel, os.readlink(p)))
        else:
            out.append("O %r" % (rel,))
print("\n".join(sorted(out)))
PY
}
# report_num FILE FIELD: a number from the report's totals
report_num() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["totals"][sys.argv[2]])' "$1" "$2"; }
tmp_files() { find "$1" -name '*.ferry-tmp-*' 2>/dev/null | wc -l; }

config() { # config FILE SRC DST [source options json] [sink options json] [stage extra]
  local f=$1 src=$2 dst=$3 so=${4:-} ko=${5:-} extra=${6:-}
  cat > "$f" <<JSON
{"journal": "j.db", "report": "report.json",
 "stages": [{"name": "uploads", $extra
             "source": {"plugin": "fs", "options": {"root": "$src" ${so:+, $so}}},
             "sink": {"plugin": "fs", "options": {"root": "$dst" ${ko:+, $ko}}}}]}
JSON
}

# A Joget-like upload tree with odd names, an empty file, a larger file, modes and old mtimes.
make_tree() {
  local r=$1
  mkdir -p "$r/t1/r1" "$r/t1/r2" "$r/t2/r3/deep/er" "$r/t3/r4"
  echo "hello" > "$r/t1/r1/a.txt"
  : > "$r/t1/r1/empty"
  echo "spaces" > "$r/t1/r2/name with spaces & 'quotes'.pdf"
  echo "newline" > "$r/t1/r2/new"$'\n'"line"
  echo "unicode" > "$r/t1/r2/ünïcödé-文件.txt"
  echo "dash" > "$r/t1/r2/-leading-dash"
  echo "backslash" > "$r/t1/r2/back\\slash"
  echo "tab" > "$r/t1/r2/tab"$'\t'"name"
  head -c 5000000 /dev/urandom > "$r/t2/r3/big.bin"
  echo "nested" > "$r/t2/r3/deep/er/nested.txt"
  printf 'x%.0s' $(seq 1 100) > "$r/t3/r4/$(printf 'L%.0s' $(seq 1 250))"
  echo "root file" > "$r/README"
  chmod 600 "$r/t1/r1/a.txt"
  chmod 755 "$r/t2/r3/deep/er/nested.txt"
  touch -d '2001-02-03 04:05:06.123456789' "$r/t1/r2/name with spaces & 'quotes'.pdf"
  touch -d '1999-12-31 23:59:59.5' "$r/t2/r3/big.bin"
}

# ---- copy ------------------------------------------------------------------------------------------------
sec_copy() {
  local d=$T/copy
  mkdir -p "$d" && cd "$d" || return
  make_tree src/app_formuploads
  mkdir dst
  tree_sum src/app_formuploads > before.sum
  local nfiles; nfiles=$(grep -c '^F' before.sum)
  config ferry.json src/app_formuploads dst/app_formuploads "" '"create_root": true'

  # plan: writes nothing, creates neither the target root nor the journal
  expect 0 "plan" -- "$FERRY" plan --config ferry.json --progress none
  check "plan created the target root" test ! -e dst/app_formuploads
  check "plan created the journal" test ! -e j.db
  check "plan: every file would be written" test "$(python3 -c 'import json; d=json.load(open("report.json")); print(sum(1 for i in d["stages"][0]["items"] if i["status"]=="would_do"))')" = "$nfiles"

  expect 0 "run" -- "$FERRY" run --config ferry.json --progress none
  tree_sum dst/app_formuploads > after.sum
  check "target equals source (names, sizes, mtimes, modes, sha256)" cmp -s before.sum after.sum
  [ -s after.sum ] || bad "empty target"
  check "done count" test "$(report_num report.json done)" = "$nfiles"
  check "no temporary file left" test "$(tmp_files dst)" = 0
  check "the run marker is removed at the end" test ! -e dst/app_formuploads/.ferry-sink.lock
  check "the journal records the checksums" test "$(python3 -c 'import sqlite3,json; c=sqlite3.connect("file:j.db?mode=ro", uri=True); print(sum(1 for (s,) in c.execute("select state from items where status=\"done\"") if len(json.loads(s).get("sha256",""))==64))')" = "$nfiles"

  # a second run with the same journal copies nothing
  expect 0 "second run" -- "$FERRY" run --config ferry.json --progress none
  check "second run: all already done" test "$(report_num report.json resumed)" = "$nfiles"
  check "second run: nothing done" test "$(report_num report.json done)" = 0
  tree_sum dst/app_formuploads > after2.sum
  check "second run changed the target" cmp -s before.sum after2.sum

  # a run with a fresh journal finds every file identical on the target: all skipped
  expect 0 "fresh-journal run" -- "$FERRY" run --config ferry.json --journal j2.db --progress none
  check "fresh journal: all skipped" test "$(report_num report.json skipped)" = "$nfiles"
  check "fresh journal: nothing written" test "$(report_num report.json done)" = 0

  # a second ferry run into the same target root is refused while one holds it
  exec 9>dst/app_formuploads/.ferry-sink.lock
  flock -x 9
  expect 6 "concurrent run refused" -- "$FERRY" run --config ferry.json --journal j-conc.db --progress none
  has "another ferry run is writing into the target root" "concurrent run explained"
  exec 9>&-
  rm -f dst/app_formuploads/.ferry-sink.lock

  # plan against an existing target writes nothing there either
  local snap; snap=$(tree_sum dst/app_formuploads)
  echo "new file" > src/app_formuploads/t1/r1/planned.txt
  expect 0 "plan on an existing target" -- "$FERRY" plan --config ferry.json --journal j3.db --progress none
  check "plan changed the target" test "$snap" = "$(tree_sum dst/app_formuploads)"
  check "plan created a journal" test ! -e j3.db
  rm src/app_formuploads/t1/r1/planned.txt

  # the source was never written to
  tree_sum src/app_formuploads > src-after.sum
  check "the source tree changed" cmp -s before.sum src-after.sum

  # a changed and a new source file: a catch-up run (fresh journal) replaces the one, adds the other and
  # skips the rest
  echo "changed content" > src/app_formuploads/t1/r1/a.txt
  touch -d '2020-01-01 00:00:00' src/app_formuploads/t1/r1/a.txt
  echo "brand new" > src/app_formuploads/t2/r3/new.txt
  expect 0 "catch-up run" -- "$FERRY" run --config ferry.json --journal j4.db --progress none
  check "catch-up: 2 written" test "$(report_num report.json done)" = 2
  check "catch-up: the rest skipped" test "$(report_num report.json skipped)" = "$((nfiles - 1))"
  check "changed file replaced" cmp -s src/app_formuploads/t1/r1/a.txt dst/app_formuploads/t1/r1/a.txt
  check "changed file's mtime kept" test "$(stat -c %Y src/app_formuploads/t1/r1/a.txt)" = "$(stat -c %Y dst/app_formuploads/t1/r1/a.txt)"
  tree_sum src/app_formuploads > before.sum
  check "catch-up: target equals source" test "$(cat before.sum)" = "$(tree_sum dst/app_formuploads)"

  # on_conflict: fail refuses to replace a different target file, skip keeps it
  echo "target was edited" > dst/app_formuploads/t1/r1/a.txt
  config ferry-fail.json src/app_formuploads dst/app_formuploads "" '"on_conflict": "fail"'
  expect 1 "on_conflict fail" -- "$FERRY" run --config ferry-fail.json --journal j5.db --progress none
  has "exists and differs" "on_conflict fail explains"
  has "t1/r1/a.txt" "on_conflict fail names the file"
  check "on_conflict fail kept the target" test "$(cat dst/app_formuploads/t1/r1/a.txt)" = "target was edited"
  config ferry-skip.json src/app_formuploads dst/app_formuploads "" '"on_conflict": "skip"'
  expect 0 "on_conflict skip" -- "$FERRY" run --config ferry-skip.json --journal j6.db --progress none
  check "on_conflict skip kept the target" test "$(cat dst/app_formuploads/t1/r1/a.txt)" = "target was edited"
  check "on_conflict skip: all skipped" test "$(report_num report.json skipped)" = "$((nfiles + 1))"

  # owner (needs the right to chown: only as root)
  if [ "$(id -u)" = 0 ]; then
    config ferry-owner.json src/app_formuploads dst-owner '' '"create_root": true, "owner": "65534:65534"'
    expect 0 "run with owner" -- "$FERRY" run --config ferry-owner.json --journal j-owner.db --progress none
    check "owner of a file" test "$(stat -c %u:%g dst-owner/t2/r3/deep/er/nested.txt)" = "65534:65534"
    check "owner of a created directory" test "$(stat -c %u:%g dst-owner/t2/r3/deep)" = "65534:65534"
    check "mode kept with an owner" test "$(stat -c %a dst-owner/t2/r3/deep/er/nested.txt)" = 755
  fi
  config ferry-badowner.json src/app_formuploads dst-x '' '"owner": "no-such-user-here"'
  expect 2 "unknown owner" -- "$FERRY" run --config ferry-badowner.json --journal j-bo.db --progress none
  has 'no user named "no-such-user-here"' "unknown owner named"

  # compare by mtime (quick check) with the source's checksums off: same answers for unchanged files
  config ferry-quick.json src/app_formuploads dst/app_formuploads '"checksum": false' '"compare": "mtime", "sync": "fsync"'
  expect 0 "quick-check run" -- "$FERRY" run --config ferry-quick.json --journal j7.db --progress none
  check "quick check: the edited file (other size, other mtime) replaced" cmp -s src/app_formuploads/t1/r1/a.txt dst/app_formuploads/t1/r1/a.txt
  check "quick check: 1 written" test "$(report_num report.json done)" = 1
  check "quick check: target equals source" test "$(cat before.sum)" = "$(tree_sum dst/app_formuploads)"
  check "no temporary file left" test "$(tmp_files dst)" = 0
}

# ---- refuse ----------------------------------------------------------------------------------------------
sec_refuse() {
  local d=$T/refuse
  mkdir -p "$d" && cd "$d" || return
  mkdir -p src/up/t1/r1 src/up/t2/r2 dst/up outside
  echo "good" > src/up/t1/r1/good.txt
  echo "also good" > src/up/t2/r2/good2.txt
  ln -s /etc/passwd src/up/t1/r1/evil                  # leads outside the root
  ln -s good.txt src/up/t1/r1/inside-link              # inside, refused by policy
  ln -s "$d/outside" src/up/t2/linkdir                  # a directory link
  echo "secret" > outside/secret.txt
  echo "bad" > src/up/t2/r2/$'bad\xff\xfename'         # not UTF-8
  mkfifo src/up/t2/r2/fifo
  tree_sum src > before.sum
  config ferry.json src/up dst/up
  expect 1 "run with refused paths" -- "$FERRY" run --config ferry.json --progress none
  check "good files copied" cmp -s src/up/t1/r1/good.txt dst/up/t1/r1/good.txt
  check "good files copied (2)" cmp -s src/up/t2/r2/good2.txt dst/up/t2/r2/good2.txt
  check "2 done" test "$(report_num report.json done)" = 2
  check "5 refused" test "$(report_num report.json failed)" = 5
  has 'evil" is a symbolic link to "/etc/passwd" (outside the root)' "escaping link refused and named"
  has 'inside-link" is a symbolic link to "good.txt" (inside the root)' "inside link refused and named"
  has 'linkdir" is a symbolic link' "directory link refused and named"
  has 'bad\\xFF\\xFEname" is not valid UTF-8' "non-UTF-8 name refused and shown exactly"
  has 'fifo" is a named pipe' "fifo refused"
  check "nothing from outside copied" test -z "$(find dst -name secret.txt -o -name passwd -o -name evil -o -name linkdir)"
  check "no link in the target" test -z "$(find dst -type l)"
  check "the source tree changed" test "$(cat before.sum)" = "$(tree_sum src)"
  python3 - report.json <<'PY' && ok || bad "report lists the refused items with their reasons"
import json, sys
d = json.load(open(sys.argv[1]))
items = {i["key"]: i for i in d["stages"][0]["items"]}
for k in ["up/t1/r1/evil", "up/t1/r1/inside-link", "up/t2/linkdir", "up/t2/r2/bad\\xFF\\xFEname", "up/t2/r2/fifo"]:
    assert k in items and items[k]["status"] == "failed" and "fs:" in items[k]["error"], (k, items.get(k))
PY

  # items with escaping paths (from a JSON Lines inventory) are refused by the sink; the rest is written
  local lp=$d/src/up/t1/r1/good.txt
  local size; size=$(stat -c %s "$lp")
  {
    for p in "../escape.txt" "/etc/abs.txt" "a/../../b.txt" "a//b.txt" "./c.txt" "" "ok/fine.txt"; do
      printf '{"kind":"file","key":"k:%s","body":{"root":"up","path":"%s","size":%s,"local_path":"%s"}}\n' \
        "$p" "$p" "$size" "$lp"
    done
  } > items.jsonl
  cat > ferry-jsonl.json <<JSON
{"journal": "jj.db", "report": "report-jsonl.json",
 "stages": [{"name": "import", "source": {"plugin": "jsonl", "options": {"path": "items.jsonl"}},
             "sink": {"plugin": "fs", "options": {"root": "dst2/root", "create_root": true}}}]}
JSON
  mkdir dst2
  expect 3 "plan with escaping paths" -- "$FERRY" plan --config ferry-jsonl.json --progress none
  check "plan blocked the escaping paths" test "$(report_num report-jsonl.json blocked)" = 6
  expect 1 "run with escaping paths" -- "$FERRY" run --config ferry-jsonl.json --progress none
  check "the good item was written" cmp -s "$lp" dst2/root/ok/fine.txt
  check "6 refused" test "$(report_num report-jsonl.json failed)" = 6
  has 'refused the path "../escape.txt": the path has a ".." component' "dot-dot refused"
  has 'refused the path "/etc/abs.txt": the path is absolute' "absolute refused"
  has 'refused the path "a/../../b.txt"' "inner dot-dot refused"
  check "nothing written outside the root" test ! -e dst2/escape.txt -a ! -e /etc/abs.txt -a ! -e b.txt
  check "only the good file in the target" test "$(find dst2 -type f | wc -l)" = 1

  # a symbolic link inside the target tree is never written through
  mkdir -p dst3/root victim
  ln -s "$d/victim" dst3/root/ok
  sed 's#dst2/root#dst3/root#; s#jj.db#jj3.db#' ferry-jsonl.json > ferry-jsonl3.json
  expect 1 "run into a target with a link" -- "$FERRY" run --config ferry-jsonl3.json --progress none
  has 'target directory "ok" is a symbolic link: refusing to write through it' "target link refused"
  check "nothing written through the link" test -z "$(ls -A victim)"
}

# ---- select ----------------------------------------------------------------------------------------------
sec_select() {
  local d=$T/select
  mkdir -p "$d" && cd "$d" || return
  make_tree src/app_formuploads
  mkdir -p src/app_formuploads/t2/r9 && echo r9 > src/app_formuploads/t2/r9/x.txt
  mkdir -p dst
  config ferry.json src/app_formuploads dst/a '"tables": ["t1", "app_fd_t2"], "records": ["r1", "r3", "nosuch"]' '"create_root": true'
  expect 0 "selected tables and records" -- "$FERRY" run --config ferry.json --progress none
  (cd dst/a && find . -type f | sort) > got.txt
  printf '%s\n' ./t1/r1/a.txt ./t1/r1/empty ./t2/r3/big.bin ./t2/r3/deep/er/nested.txt > want.txt
  check "only t1/r1 and t2/r3 copied" diff -u want.txt got.txt
  check "selected files equal" cmp -s src/app_formuploads/t2/r3/big.bin dst/a/t2/r3/big.bin

  # "count": the total is announced before the copy (report, plain progress with a percentage), equal to the
  # files carried, with a selection too; nothing is carried twice
  config ferry7.json src/app_formuploads dst/f '"count": true, "tables": ["t1", "app_fd_t2"], "records": ["r1", "r3"]' '"create_root": true'
  expect 0 "count before copying" -- "$FERRY" run --config ferry7.json --journal j7.db --progress plain
  check "count: the total is the files carried" test "$(python3 -c 'import json; s=json.load(open("report.json"))["stages"][0]; print(s["total"], s["done"])')" = "4 4"
  has "progress uploads: finished: 4 items" "count: the final progress line"
  check "count: the same files" test "$(cd dst/f && find . -type f | sort | tr '\n' ' ')" = "$(tr '\n' ' ' < want.txt)"
  config ferry8.json src/app_formuploads dst/g '"count": true' '"create_root": true'
  expect 0 "count, whole tree" -- "$FERRY" run --config ferry8.json --journal j8.db --progress none
  check "count: whole tree total" test "$(python3 -c 'import json; s=json.load(open("report.json"))["stages"][0]; print(s["total"] == s["done"] + s["failed"] and s["total"] > 10)')" = True
  config ferry9.json src/app_formuploads dst/h '' '"count": true'
  expect 2 "count on the sink" -- "$FERRY" run --config ferry9.json --journal j9.db --progress none
  has 'option "count" applies to the source only' "count on the sink explained"

  config ferry2.json src/app_formuploads dst/b '"tables": "t3"' '"create_root": true'
  expect 0 "one table" -- "$FERRY" run --config ferry2.json --journal j2.db --progress none
  check "only t3 copied" test "$(cd dst/b && find . -type f -printf '%h\n' | cut -d/ -f2 | sort -u)" = "t3"

  printf '# record ids\nr2\n\nr9\n' > ids.txt
  config ferry3.json src/app_formuploads dst/c '"records_file": "ids.txt"' '"create_root": true'
  expect 0 "records_file" -- "$FERRY" run --config ferry3.json --journal j3.db --progress none
  check "records from the file, in every table" test "$(cd dst/c && find . -type f -printf '%h\n' | cut -d/ -f2,3 | sort -u | tr '\n' ' ')" = "t1/r2 t2/r9 "

  printf 'ok\nbad/id\n' > bad-ids.txt
  config ferry4.json src/app_formuploads dst/d '"records_file": "bad-ids.txt"'
  expect 2 "bad record id" -- "$FERRY" run --config ferry4.json --journal j4.db --progress none
  has "bad-ids.txt:2" "bad record id named with file:line"
  config ferry5.json src/app_formuploads dst/e '' '"tables": ["t1"]'
  expect 2 "source option on the sink" -- "$FERRY" run --config ferry5.json --journal j5.db --progress none
  has 'option "tables" applies to the source only' "misplaced option explained"
  config ferry5b.json src/app_formuploads dst/e '"owner": "root"' ''
  expect 2 "sink option on the source" -- "$FERRY" run --config ferry5b.json --journal j5.db --progress none
  has 'source "fs" options: option "owner" applies to the sink only (this is the source)' "misplaced sink option explained"
  config ferry5c.json src/app_formuploads dst/e '' '"on_conflict": "replace"'
  expect 2 "bad on_conflict" -- "$FERRY" run --config ferry5c.json --journal j5.db --progress none
  has '"on_conflict": must be one of "skip", "overwrite", "fail", found "replace"' "bad on_conflict named with the allowed values"
  config ferry5d.json src/app_formuploads dst/e '' '"sync": "fdatasync"'
  expect 2 "bad sync" -- "$FERRY" run --config ferry5d.json --journal j5.db --progress none
  has '"sync": must be one of "syncfs", "fsync", "none", found "fdatasync"' "bad sync named with the allowed values"
  config ferry6.json src/app_formuploads dst/missing
  expect 6 "missing target root" -- "$FERRY" run --config ferry6.json --journal j6.db --progress none
  has 'does not exist (create it, or set "create_root": true)' "missing root explained"
  expect 3 "plan with a missing target root" -- "$FERRY" plan --config ferry6.json --journal j6.db --progress none
  has 'does not exist' "plan: missing root explained"
}

# ---- crash -----------------------------------------------------------------------------------------------
sec_crash() {
  local d=$T/crash
  mkdir -p "$d" && cd "$d" || return
  mkdir -p src/up dst
  local i
  for i in 1 2 3 4; do mkdir -p "src/up/big/r$i"; head -c 40000000 /dev/urandom > "src/up/big/r$i/file$i.bin"; done
  for i in $(seq 1 150); do mkdir -p "src/up/small/r$((i % 30))"; echo "file $i" > "src/up/small/r$((i % 30))/f$i.txt"; done
  tree_sum src/up > before.sum
  config ferry.json src/up dst/up '' '"create_root": true, "sync": "fsync"' '"concurrency": 2,'
  # a canary run: the source is stopped after one item while files are still being hashed
  expect 0 "canary run (--limit 1)" -- "$FERRY" run --config ferry.json --limit 1 --progress none
  check "canary: one file copied" test "$(find dst -type f | wc -l)" = 1
  local round midcopy=0 last=0
  for round in 1 2 3 4 5 6; do
    [ "$midcopy" -ge 2 ] && break
    "$FERRY" run --config ferry.json --progress none >"run$round.log" 2>&1 &
    BGPID=$!
    local deadline=$((SECONDS + 60)) seen=0
    while [ $SECONDS -lt $deadline ] && kill -0 "$BGPID" 2>/dev/null; do
      # a large file's temporary file: its copy takes long enough for the kill to land in the middle
      if [ -n "$(find dst -name '.file*.ferry-tmp-*' -print -quit 2>/dev/null)" ]; then seen=1; break; fi
    done
    last=0
    if [ "$seen" = 1 ] && kill -9 "$BGPID" 2>/dev/null; then
      wait "$BGPID" 2>/dev/null
      if [ "$(tmp_files dst)" -gt 0 ]; then midcopy=$((midcopy + 1)); last=1; fi
    else
      wait "$BGPID" 2>/dev/null
    fi
    BGPID=""
  done
  check "the run was killed mid-copy (a temporary file left) at least once" test "$midcopy" -ge 1
  expect 0 "resumed run" -- "$FERRY" run --config ferry.json --progress none -v
  check "after resume: every file correct" test "$(cat before.sum)" = "$(tree_sum dst/up)"
  check "after resume: no temporary file left" test "$(tmp_files dst)" = 0
  check "after resume: no run marker left" test ! -e dst/up/.ferry-sink.lock
  if [ "$last" = 1 ]; then has "temporary file(s) left by an interrupted run" "stale temporary files removed"; fi
  check "the source tree changed" test "$(cat before.sum)" = "$(tree_sum src/up)"
  expect 0 "verify after the crash" -- "$FERRY" verify --config ferry.json --progress none
}

# ---- verify ----------------------------------------------------------------------------------------------
sec_verify() {
  local d=$T/verify
  mkdir -p "$d" && cd "$d" || return
  make_tree src/app_formuploads
  mkdir dst
  config ferry.json src/app_formuploads dst/app_formuploads '' '"create_root": true'
  expect 0 "run" -- "$FERRY" run --config ferry.json --progress none
  expect 0 "verify: equal" -- "$FERRY" verify --config ferry.json --progress none
  # flip one byte, same size, same mtime
  local f=dst/app_formuploads/t2/r3/big.bin
  cp -p "$f" big.orig
  printf 'Z' | dd of="$f" bs=1 seek=1000 conv=notrunc status=none
  touch -r big.orig "$f"
  rm dst/app_formuploads/t1/r1/empty
  expect 4 "verify: corrupted and missing" -- "$FERRY" verify --config ferry.json --progress none
  has 'the target "t2/r3/big.bin" differs from the source' "corruption named"
  has 'the target was changed or damaged after the copy' "corruption explained"
  has 't1/r1/empty" is missing' "missing file named"
  python3 -c 'import json,sys; d=json.load(open("report.json")); assert d["totals"]["mismatched"]==2, d["totals"]' && ok || bad "2 mismatched in the report"
  # a changed source is told apart from a damaged target
  cp -p big.orig "$f"
  echo "new" >> src/app_formuploads/t1/r1/a.txt
  touch -d '2001-01-01' src/app_formuploads/t1/r1/a.txt
  expect 4 "verify: changed source" -- "$FERRY" verify --config ferry.json --progress none
  has 'the target "t1/r1/a.txt" has 6 bytes, the source 10' "changed source: sizes named"
}

case "$SECTION" in
  copy) sec_copy ;;
  refuse) sec_refuse ;;
  select) sec_select ;;
  crash) sec_crash ;;
  verify) sec_verify ;;
  all) sec_copy; sec_refuse; sec_select; sec_crash; sec_verify ;;
  *) echo "unknown section $SECTION"; exit 2 ;;
esac
echo
echo "$SECTION: $passes passed, $fails failed"
[ "$fails" = 0 ]
