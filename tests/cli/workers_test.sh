#!/usr/bin/env bash
# Several workers on one PostgreSQL journal (ferry run --worker; docs/journal.md, "Several workers"), with the
# runtime tests' rt-gen source and rt-sink sink (an async sink with a delay whose side effect is a line per
# item appended to a shared `target` file, after an intent "append"; an item in doubt is reconciled: found in
# the file, it is completed as skipped).
#   workers_test.sh <path to ferry> <plugin dir> PGSTATE      (WORKERS_KEEP=1 keeps the work directory)
# Checks: usage errors (an SQLite journal, a bad name, --lease without --worker) exit 2 naming the problem; a
# plain run is refused while a worker holds the journal, and a worker while a plain run does; two processes
# cannot be the same worker; three workers share 300 items (each writes its own JSON report) (each key once in the target, each item done
# once in the journal, every worker did some, `status` says "by NAME"); a worker SIGKILLed right after an
# append (its item in doubt, its claims left behind) is restarted and the items are reconciled, not
# appended again; the claims table is empty at the end; one worker SIGKILLed by its sink three times in a row
# (exit 137 each time), then restarted to the end: each key once in the target, each item done or skipped once,
# each killed item's append reconciled ("R KEY found", once per kill), no claim or worker row left; a worker
# stopped (SIGSTOP) longer than its lease while items it claimed wait in its queue loses them to another worker
# and, resumed, writes nothing for them; the journal server (a private cluster) restarted on the same port
# mid-run: the three workers say they lost it, pause, go on and exit 0, each key once in the target, each item
# done once, no claim or worker row left; a listed item corrupted by hand in the journal fails the stage
# with a message naming it, and a new run lists the source again and finishes, each key once; a note one
# worker shares (ferry_shared_put) is read by a worker that joins later (which starts once the first one's
# heartbeat has counted it), bad names and values are refused,
# the notes go with the listing, a later start of the stage does not see them, and a plain run keeps its own
# in memory.
set -uo pipefail
FERRY=$1
export FERRY_PLUGIN_PATH=$2
PGSTATE=$3
PGPORT=$(sed -n 3p "$PGSTATE")
PGCLUSTER=$(cd "$(dirname "$0")/../support" && pwd)/pgcluster.sh
if ! "$FERRY" plugins 2>/dev/null | grep -q "^rt-gen " || ! "$FERRY" plugins 2>/dev/null | grep -q "^rt-sink "; then
  echo "SKIP: the runtime tests' plugins rt-gen and rt-sink are not built"
  exit 77
fi
T=$(mktemp -d /tmp/ferry-workers-test.XXXXXX)
PGDIR= # the private cluster of "the journal server restarted mid-run" (the server runs as postgres: not in $T)
cleanup() {
  local p
  for p in $(jobs -p); do kill -CONT "$p" 2>/dev/null; kill -KILL "$p" 2>/dev/null; done # children still running
  if [ -n "$PGDIR" ]; then bash "$PGCLUSTER" stop "$PGDIR"; fi
  if [ -n "${WORKERS_KEEP:-}" ]; then echo "work directories kept: $T $PGDIR"; else rm -rf "$T" ${PGDIR:+"$PGDIR"}; fi
}
trap cleanup EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
# expect CODE DESCRIPTION -- command...   (stdout+stderr go to $T/out)
expect() {
  local want=$1 what=$2; shift 3
  "$@" >"$T/out" 2>&1
  local got=$?
  if [ "$got" = "$want" ]; then ok; else bad "$what: exit $got, expected $want"; sed 's/^/    /' "$T/out" | head -20; fi
}
has() { if grep -q -- "$1" "${3:-$T/out}"; then ok; else bad "$2: output lacks '$1'"; sed 's/^/    /' "${3:-$T/out}" | head -20; fi; }
eq() { if [ "$2" = "$3" ]; then ok; else bad "$1: got '$2', expected '$3'"; fi; }
newdb() {
  local db="workers_$1_$$"
  psql -q -X -v ON_ERROR_STOP=1 "host=127.0.0.1 port=$PGPORT user=ferry dbname=postgres" \
    -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null 2>&1 || { echo "cannot create $db" >&2; exit 1; }
  echo "postgresql://ferry@127.0.0.1:$PGPORT/$db"
}
# config FILE JOURNAL COUNT DELAY_MS [KILL_AT]: rt-gen -> rt-sink appending to $T/target
config() {
  cat >"$1" <<EOF
{ "journal": "$2", "report": "$T/report.json",
  "stages": [ { "name": "items",
    "source": { "plugin": "rt-gen", "options": { "count": $3 } },
    "sink": { "plugin": "rt-sink", "options": { "async": true, "delay_ms": $4, "target": "$T/target",
                                                "log": "$T/sink.log", "kill_at": ${5:-0}, "kill_where": "write" } },
    "concurrency": 4 } ] }
EOF
}
sql() { psql -X -At "$J" -c "$1"; }

# ---- usage --------------------------------------------------------------------------------------------
config "$T/sqlite.json" "$T/j.db" 5 0
expect 2 "--worker with an SQLite journal" -- "$FERRY" run --config "$T/sqlite.json" --worker w1 --progress none
has "need a PostgreSQL journal" "--worker with an SQLite journal: said"
has "$T/j.db" "--worker with an SQLite journal: the journal is named"
if [ -e "$T/j.db" ]; then bad "--worker with an SQLite journal created the journal"; else ok; fi
expect 2 "--worker on verify" -- "$FERRY" verify --config "$T/sqlite.json" --worker w1
has "option of \`ferry run\` only" "--worker on verify: said"
expect 2 "--lease without --worker" -- "$FERRY" run --config "$T/sqlite.json" --lease 5
has "\-\-lease goes with --worker" "--lease without --worker: said"
expect 2 "--lease 0" -- "$FERRY" run --config "$T/sqlite.json" --worker w1 --lease 0
has "\-\-lease takes a number of seconds" "--lease 0: said"
J=$(newdb usage)
config "$T/usage.json" "$J" 5 0
expect 2 "a bad worker name" -- "$FERRY" run --config "$T/usage.json" --worker "w 1" --progress none
has 'worker name "w 1"' "a bad worker name: named"
expect 0 "run --help" -- "$FERRY" run --help
has "\-\-worker NAME" "run --help describes --worker"
has "\-\-lease SECONDS" "run --help describes --lease"

# ---- locks: plain run vs workers, one process per worker name ------------------------------------------
J=$(newdb locks)
config "$T/slow.json" "$J" 60 200
(exec "$FERRY" run --config "$T/slow.json" --worker w1 --lease 3 --progress none) >"$T/w1.log" 2>&1 &
w1=$!
for _ in $(seq 1 100); do [ -s "$T/target" ] && break; sleep 0.1; done
[ -s "$T/target" ] || bad "worker w1 did not start working"
expect 6 "a plain run while a worker holds the journal" -- "$FERRY" run --config "$T/slow.json" --progress none
has "in use by another ferry run" "plain run refused: said"
expect 6 "a verify while a worker holds the journal" -- "$FERRY" verify --config "$T/slow.json" --progress none
expect 6 "a second process as worker w1" -- "$FERRY" run --config "$T/slow.json" --worker w1 --progress none
has 'worker name "w1" is in use' "the same worker name twice: said"
eq "w1 is registered" "$(sql "select count(*) from ferry_workers where name = 'w1'")" 1
wait "$w1"
eq "worker w1 alone: exit 0" "$?" 0
eq "worker w1 alone: every item appended once" "$(sort "$T/target" | uniq | wc -l) $(wc -l <"$T/target")" "60 60"
eq "w1 left no claim" "$(sql "select count(*) from ferry_claims")" 0
eq "w1 left no worker row" "$(sql "select count(*) from ferry_workers")" 0
# a plain run holds it: a worker is refused
config "$T/slow2.json" "$J" 160 200 # 100 new items at 4 at once: about 5 s, long enough for the refusal
(exec "$FERRY" run --config "$T/slow2.json" --progress none) >"$T/plain.log" 2>&1 &
plain=$!
for _ in $(seq 1 100); do [ "$(wc -l <"$T/target")" -gt 60 ] && break; sleep 0.1; done
expect 6 "a worker while a plain run holds the journal" -- "$FERRY" run --config "$T/slow2.json" --worker w2 --progress none
has "not a worker" "worker refused: said"
wait "$plain"
eq "the plain run: exit 0" "$?" 0

# ---- three workers share the items; one is SIGKILLed after an append and restarted ---------------------
J=$(newdb share)
rm -f "$T/target" "$T/sink.log" "$T"/report*.json
N=300
config "$T/share.json" "$J" $N 20
config "$T/kill.json" "$J" $N 20 25 # the 25th append of that process: SIGKILL right after it
start() { (exec "$FERRY" run --config "$T/$2.json" --worker "$1" --lease 2 --progress none) >"$T/$1.$3.log" 2>&1 & }
start w1 share 1; p1=$!
start w2 kill 1; p2=$!
start w3 share 1; p3=$!
wait "$p2"
eq "w2 was killed by its sink (kill_at)" "$?" 137
has "K k" "w2's sink says where it was killed" "$T/sink.log"
killed=$(grep -o "^K k[0-9]*" "$T/sink.log" | head -1 | cut -c3-)
start w2 share 2; p2=$!
wait "$p1"; r1=$?
wait "$p2"; r2=$?
wait "$p3"; r3=$?
eq "the workers' exit codes (w1 w2-restarted w3)" "$r1 $r2 $r3" "0 0 0"
eq "every key once in the target" "$(sort "$T/target" | uniq | wc -l) $(wc -l <"$T/target")" "$N $N"
eq "every item done in the journal" "$(sql "select count(*) from items where stage = 'items' and status in ('done', 'skipped')")" $N
eq "the killed worker's in-doubt item was reconciled (found in the target, not appended again)" \
  "$(grep -c "^R $killed found" "$T/sink.log")" 1
for w in w1 w2 w3; do
  n=$(sql "select count(*) from items where report::json->>'worker' = '$w'")
  if [ "$n" -gt 0 ]; then ok; else bad "worker $w did no item"; fi
done
echo "items per worker: $(sql "select report::json->>'worker', count(*) from items group by 1 order by 1" | tr '\n' ' ')"
eq "every item names its worker" "$(sql "select count(*) from items where report::json->>'worker' is null")" 0
eq "no claim left" "$(sql "select count(*) from ferry_claims")" 0
eq "no worker row left" "$(sql "select count(*) from ferry_workers")" 0
for w in w1 w3; do
  eq "worker $w wrote its own JSON report, naming it" \
    "$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1])).get("worker"))' "$T/report.$w.json" 2>&1)" "$w"
done
if [ -e "$T/report.json" ]; then bad "a worker wrote the configured report path itself"; else ok; fi
expect 0 "status" -- "$FERRY" status --config "$T/share.json" --items
has "by w1" "status --items says which worker did an item"
has "by w3" "status --items names every worker"
expect 0 "a plain run after the workers" -- "$FERRY" run --config "$T/share.json" --progress none
has "already done $N" "the plain run finds everything done"

# ---- one worker SIGKILLed repeatedly: three times in a row, then restarted to the end -------------------
J=$(newdb repeat)
rm -f "$T/target" "$T/sink.log" "$T"/report*.json
N=300
config "$T/repeat.json" "$J" $N 20
config "$T/repeat-kill.json" "$J" $N 20 10 # the 10th append of each process: SIGKILL right after it
config "$T/repeat-slow.json" "$J" $N 200 # w1 and w3: slow, so that items are left for each of w2's lives
start w1 repeat-slow r1; p1=$!
start w3 repeat-slow r1; p3=$!
for k in 1 2 3; do
  start w2 repeat-kill "r$k"; p2=$!
  wait "$p2"
  eq "w2, started $k time(s), was killed by its sink (kill_at)" "$?" 137
done
start w2 repeat r4; p2=$!
wait "$p1"; r1=$?
wait "$p2"; r2=$?
wait "$p3"; r3=$?
eq "the workers' exit codes (w1 w2-restarted-3-times w3)" "$r1 $r2 $r3" "0 0 0"
eq "every key once in the target" "$(sort "$T/target" | uniq | wc -l) $(wc -l <"$T/target")" "$N $N"
eq "every item done or skipped once in the journal" \
  "$(sql "select count(*), count(distinct key) from items where stage = 'items' and status in ('done', 'skipped')")" "$N|$N"
eq "no other item in the journal" "$(sql "select count(*) from items")" $N
killed=$(grep -o "^K k[0-9]*" "$T/sink.log" | cut -c3-)
eq "w2's sink says where it was killed, once per kill" "$(echo "$killed" | grep -c .)" 3
for k in $killed; do
  eq "the item $k w2 appended right before a kill was reconciled (found in the target, not appended again)" \
    "$(grep -c "^R $k found" "$T/sink.log")" 1
done
echo "killed after appending: $(echo "$killed" | tr '\n' ' '); items per worker: $(sql "select report::json->>'worker', count(*) from items group by 1 order by 1" | tr '\n' ' ')"
eq "no claim left" "$(sql "select count(*) from ferry_claims")" 0
eq "no worker row left" "$(sql "select count(*) from ferry_workers")" 0

# ---- a worker stopped longer than its lease loses its claims: it writes nothing for them ---------------
J=$(newdb lost)
rm -f "$T/target" "$T/sink.log"
config "$T/lost.json" "$J" 40 300
(exec "$FERRY" run --config "$T/lost.json" --worker w1 --lease 2 --progress none) >"$T/w1.lost.log" 2>&1 &
p1=$!
for _ in $(seq 1 100); do [ "$({ wc -l <"$T/target"; } 2>/dev/null || echo 0)" -ge 6 ] && break; sleep 0.05; done
kill -STOP "$p1" # 4 items in its sink (appended), 4 more claimed and queued
# claims of w1 on items with no journal row: claimed and queued, not started
queued=$(sql "select count(*) from ferry_claims c left join items i on i.stage = c.stage and i.key = c.item_key
  where c.worker = 'w1' and i.key is null")
if [ "$queued" -ge 1 ]; then ok; else bad "w1 stopped with no item claimed and queued (got $queued)"; fi
(exec "$FERRY" run --config "$T/lost.json" --worker w2 --lease 2 --progress none) >"$T/w2.lost.log" 2>&1 &
p2=$!
# until w2 has taken over (w1's leases expired) every item w1 had not finished: queued or in its sink
for _ in $(seq 1 300); do
  [ "$(sql "select count(*) from ferry_claims c left join items i on i.stage = c.stage and i.key = c.item_key
    where c.worker = 'w1' and (i.key is null or i.status = 'intent')")" = 0 ] && break
  sleep 0.1
done
kill -CONT "$p1"
wait "$p1"; r1=$?
wait "$p2"; r2=$?
eq "stopped worker and the other: exit codes" "$r1 $r2" "0 0"
eq "every key once in the target" "$(sort "$T/target" | uniq | wc -l) $(wc -l <"$T/target")" "40 40"
lost=$(grep -c "lost its claim" "$T/w1.lost.log")
eq "w1, resumed, lost the claims of exactly the items it had queued" "$lost" "$queued"
echo "w1 lost $lost claim(s) while stopped"
eq "every item done in the journal" "$(sql "select count(*) from items where status in ('done', 'skipped')")" 40

# ---- the journal server restarted mid-run (a private cluster: the shared one serves other tests) ----------
PGDIR=$(mktemp -d /tmp/ferry-workers-pg.XXXXXX)
chmod 755 "$PGDIR"
if ! port=$(bash "$PGCLUSTER" start "$PGDIR" 2>"$T/pgcluster.err"); then
  bad "cannot start a private PostgreSQL cluster"; sed 's/^/    /' "$T/pgcluster.err"
else
  bash "$PGCLUSTER" createdb "$PGDIR" workers_restart >/dev/null || bad "cannot create the database workers_restart"
  J="postgresql://ferry@127.0.0.1:$port/workers_restart"
  rm -f "$T/target" "$T/sink.log" "$T"/report*.json
  N=300
  config "$T/restart.json" "$J" $N 20
  rstart() { (exec "$FERRY" run --config "$T/restart.json" --worker "$1" --lease 3 --progress none) >"$T/$1.restart.log" 2>&1 & }
  rstart w1; p1=$!
  rstart w2; p2=$!
  rstart w3; p3=$!
  for _ in $(seq 1 300); do [ "$({ wc -l <"$T/target"; } 2>/dev/null || echo 0)" -ge 60 ] && break; sleep 0.05; done
  at=$({ wc -l <"$T/target"; } 2>/dev/null || echo 0)
  if [ "$at" -ge 60 ] && [ "$at" -lt $N ]; then ok; else bad "the journal server was restarted at $at of $N appends"; fi
  bash "$PGCLUSTER" stop "$PGDIR"
  sleep 2
  if port2=$(bash "$PGCLUSTER" start "$PGDIR" "$port" 2>"$T/pgcluster.err"); then eq "the server is back on its port" "$port2" "$port"
  else bad "the journal server did not start again on port $port"; sed 's/^/    /' "$T/pgcluster.err"; fi
  echo "journal server restarted at $at of $N appends"
  for _ in $(seq 1 1200); do # 120 s at most
    kill -0 "$p1" 2>/dev/null || kill -0 "$p2" 2>/dev/null || kill -0 "$p3" 2>/dev/null || break
    sleep 0.1
  done
  for p in "$p1" "$p2" "$p3"; do
    if kill -0 "$p" 2>/dev/null; then bad "a worker (process $p) still runs 120 s after the restart: killed"; kill -KILL "$p"; fi
  done
  wait "$p1"; r1=$?
  wait "$p2"; r2=$?
  wait "$p3"; r3=$?
  eq "the workers' exit codes after the journal server restarted (w1 w2 w3)" "$r1 $r2 $r3" "0 0 0"
  i=0
  for r in "$r1" "$r2" "$r3"; do
    i=$((i + 1))
    [ "$r" = 0 ] || { echo "    w$i exited $r:"; tail -n 15 "$T/w$i.restart.log" | sed 's/^/      /'; }
  done
  eq "every key once in the target" "$(sort "$T/target" | uniq | wc -l) $(wc -l <"$T/target")" "$N $N"
  dups=$(sort "$T/target" | uniq -d | tr '\n' ' ')
  [ -z "$dups" ] || echo "    appended more than once: $dups"
  eq "every item done once in the journal" \
    "$(sql "select count(*), count(distinct key) from items where stage = 'items' and status in ('done', 'skipped')")" "$N|$N"
  eq "no claim and no worker row left" "$(sql "select (select count(*) from ferry_claims) + (select count(*) from ferry_workers)")" 0
  paused=$(grep -l "the run pauses and retries" "$T"/w[123].restart.log | wc -l)
  if [ "$paused" -ge 1 ]; then ok; else bad "no worker's log says the journal server was lost ('the run pauses and retries')"; fi
  back=$(grep -l "the journal server answers again" "$T"/w[123].restart.log | wc -l)
  if [ "$back" -ge 1 ]; then ok; else bad "no worker's log says the journal server answers again"; fi
  echo "workers that said they lost the journal server: $paused, that it answers again: $back"
  # the server's goodbye (a FATAL notice) is logged under the journal's name, not an unnamed plugin's
  if grep -q "\[plugin:?:" "$T"/w[123].restart.log; then bad "a worker's log has a line of an unnamed plugin:"
    grep -h "\[plugin:?:" "$T"/w[123].restart.log | head -3 | sed 's/^/    /'; else ok; fi
fi

# ---- one lister per stage: the source is read by one worker; a killed lister is replaced -----------------
# gcfg FILE JOURNAL COUNT SOURCE_OPTIONS DELAY_MS: rt-gen (with extra options) -> rt-sink
gcfg() {
  cat >"$1" <<EOF
{ "journal": "$2", "report": "$T/report.json",
  "stages": [ { "name": "items",
    "source": { "plugin": "rt-gen", "options": { "count": $3 $4 } },
    "sink": { "plugin": "rt-sink", "options": { "async": true, "delay_ms": $5, "target": "$T/target",
                                                "log": "$T/sink.log" } },
    "concurrency": 4 } ] }
EOF
}
J=$(newdb lister)
rm -f "$T/target" "$T/sink.log" "$T"/report*.json
N=2000
gcfg "$T/lister.json" "$J" $N ', "async": true, "per_tick": 1' 10 # about 1,000 items a second, from a timer
lstart() { (exec "$FERRY" run --config "$T/lister.json" --worker "$1" --lease 2 --progress none) >"$T/$1.lister$2.log" 2>&1 & }
lstart w1 1; p1=$!
for _ in $(seq 1 100); do grep -q "reads the source" "$T/w1.lister1.log" 2>/dev/null && break; sleep 0.1; done
has "reads the source and lists its items for every worker" "the first worker is the lister" "$T/w1.lister1.log"
lstart w2 1; p2=$!
lstart w3 1; p3=$!
for _ in $(seq 1 200); do [ "$(wc -l <"$T/target" 2>/dev/null || echo 0)" -ge 150 ] && break; sleep 0.05; done
listed=$(sql "select count(*) from ferry_listed")
kill -KILL "$p1"; wait "$p1"; r1=$?
eq "the lister w1 was SIGKILLed while listing" "$r1" 137
if [ "$listed" -lt "$N" ]; then ok; else bad "w1 had listed all $N items before it was killed ($listed): nothing to take over"; fi
wait "$p2"; r2=$?
wait "$p3"; r3=$?
eq "w2 and w3 finished" "$r2 $r3" "0 0"
for w in w2 w3; do has "takes its items from the listing" "$w took its items from the listing" "$T/$w.lister1.log"; done
if cat "$T/w2.lister1.log" "$T/w3.lister1.log" | grep -q "the worker listing the source (w1) is gone: this one lists it"; then ok
else bad "neither w2 nor w3 took the listing over from the killed w1"; fi
eq "every key once in the target" "$(sort "$T/target" | uniq | wc -l) $(wc -l <"$T/target")" "$N $N"
eq "every item done once in the journal" \
  "$(sql "select count(*), count(distinct key) from items where stage = 'items' and status in ('done', 'skipped')")" "$N|$N"
echo "listed when the lister was killed: $listed of $N; items per worker: $(sql "select report::json->>'worker', count(*) from items group by 1 order by 1" | tr '\n' ' ')"
lstart w1 2; p1=$! # w1 again: its old claims and row go, the listing with them when it is the last out
wait "$p1"; r1=$?
eq "w1 restarted afterwards: exit 0, nothing left to do" "$r1" 0
eq "no claim, worker or listing row left" \
  "$(sql "select (select count(*) from ferry_claims) + (select count(*) from ferry_workers) + (select count(*) from ferry_listings)")" 0

# ---- the lister's source fails: every worker stops with its message --------------------------------------
J=$(newdb listfail)
rm -f "$T/target" "$T/sink.log"
gcfg "$T/listfail.json" "$J" 2000 ', "async": true, "per_tick": 1, "fail_at": 1500' 50 # w2 joins before the failure
(exec "$FERRY" run --config "$T/listfail.json" --worker w1 --lease 2 --progress none) >"$T/w1.listfail.log" 2>&1 &
p1=$!
for _ in $(seq 1 100); do grep -q "reads the source" "$T/w1.listfail.log" 2>/dev/null && break; sleep 0.1; done
(exec "$FERRY" run --config "$T/listfail.json" --worker w2 --lease 2 --progress none) >"$T/w2.listfail.log" 2>&1 &
p2=$!
wait "$p1"; r1=$?
wait "$p2"; r2=$?
if [ "$r1" != 0 ] && [ "$r2" != 0 ]; then ok; else bad "a failed source: the workers exited $r1 and $r2, expected both non-zero"; fi
has "rt-gen: cannot read item 1500" "the lister says why its source failed" "$T/w1.listfail.log"
has "the listing of the stage's source failed: worker w1: source \"rt-gen\": rt-gen: cannot read item 1500" \
  "the other worker stops with the lister's message" "$T/w2.listfail.log"

# ---- a listed item corrupted by hand: the stage fails naming it; a new run lists again and finishes ------
J=$(newdb listbad)
rm -f "$T/target" "$T/sink.log"
gcfg "$T/listbad.json" "$J" 300 '' 50 # listed at once, migrated in about 4 s
(exec "$FERRY" run --config "$T/listbad.json" --worker w1 --lease 2 --progress none) >"$T/w1.listbad.log" 2>&1 &
p1=$!
for _ in $(seq 1 100); do [ "$(sql "select count(*) from ferry_listed" 2>/dev/null)" = 300 ] && break; sleep 0.05; done
bad_seq=$(sql "select max(seq) from ferry_listed where inc is null")
bad_listing=$(sql "select listing from ferry_listed where seq = ${bad_seq:-0}")
sql "update ferry_listed set item = '{\"kind\": broken' where seq = ${bad_seq:-0}" >/dev/null
wait "$p1"; r1=$?
if [ -n "$bad_seq" ] && [ "$r1" != 0 ]; then ok; else bad "a corrupted listed item (seq '$bad_seq'): w1 exited $r1"; fi
has "listed item $bad_seq of listing $bad_listing cannot be read" "the corrupted item is named" "$T/w1.listbad.log"
(exec "$FERRY" run --config "$T/listbad.json" --worker w1 --lease 2 --progress none) >"$T/w1.listbad2.log" 2>&1
eq "w1 run again after the corrupted listing: exit 0" "$?" 0
eq "every key once in the target" "$(sort "$T/target" | uniq | wc -l) $(wc -l <"$T/target")" "300 300"
eq "every item done once in the journal" \
  "$(sql "select count(*), count(distinct key) from items where stage = 'items' and status in ('done', 'skipped')")" "300|300"

# ---- notes shared by the workers of a listing (ferry_shared_get/_put) ----------------------------------
# ncfg FILE JOURNAL COUNT VALUE LOG: rt-sink reads the note "seen" at each write and puts VALUE when there is none
ncfg() {
  cat >"$1" <<EOF
{ "journal": "$2",
  "stages": [ { "name": "items",
    "source": { "plugin": "rt-gen", "options": { "count": $3 } },
    "sink": { "plugin": "rt-sink", "options": { "async": true, "delay_ms": 100, "log": "$5",
                                                "note": "seen", "note_value": "$4" } },
    "concurrency": 2 } ] }
EOF
}
J=$(newdb notes)
ncfg "$T/notes1.json" "$J" 60 from-w1 "$T/notes.w1.log"
ncfg "$T/notes2.json" "$J" 60 from-w2 "$T/notes.w2.log"
(exec "$FERRY" run --config "$T/notes1.json" --worker w1 --lease 2 --progress none) >"$T/w1.notes.log" 2>&1 &
p1=$!
for _ in $(seq 1 100); do [ "$(sql "select count(*) from ferry_notes" 2>/dev/null)" = 1 ] && break; sleep 0.05; done
eq "w1's note is in the journal, under its listing" \
  "$(sql "select n.value, n.listing = l.id from ferry_notes n join ferry_listings l on true")" "from-w1|t"
(exec "$FERRY" run --config "$T/notes2.json" --worker w2 --lease 2 --progress none) >"$T/w2.notes.log" 2>&1 &
p2=$!
wait "$p1"; r1=$?
wait "$p2"; r2=$?
eq "two workers with notes: exit codes" "$r1 $r2" "0 0"
# w2 joined a live w1: it started once w1's heartbeat had counted it (w1 beats every 0.67 s: lease 2 s / 3)
has "seen by the others after" "w2 waited for w1's heartbeat to count it" "$T/w2.notes.log"
secs=$(grep -o "seen by the others after [0-9.]*" "$T/w2.notes.log" | awk '{print $NF}')
if awk -v s="${secs:-9}" 'BEGIN {exit !(s <= 0.8)}'; then ok; else bad "w2 waited ${secs:-?} s to be seen (a heartbeat is 0.67 s)"; fi
eq "w1's first write found no note, the others w1's own" \
  "$(grep '^N ' "$T/notes.w1.log" | head -1 | sed 's/.* got=//') $(grep '^N ' "$T/notes.w1.log" | sed 1d | grep -vc 'got=from-w1$')" "- 0"
n2=$(grep -c '^N ' "$T/notes.w2.log")
if [ "$n2" -gt 0 ]; then ok; else bad "w2 wrote no item: the note was not tested across workers"; fi
eq "every write of w2 (which joined later) found w1's note" "$(grep '^N ' "$T/notes.w2.log" | grep -c 'got=from-w1$')" "$n2"
eq "a name too long, a value not UTF-8: refused" \
  "$(grep '^X ' "$T/notes.w1.log" | cut -c1-60 | tr '\n' '|')" \
  "X -1 ferry_shared_put: the name must be 1 to 256 bytes of UT|X -1 ferry_shared_put \"seen\": the value must be at most 4096|"
eq "the notes went with the listing (the last worker out)" \
  "$(sql "select (select count(*) from ferry_notes) + (select count(*) from ferry_listings)")" 0
# a new start of the stage never sees an old note; without --worker notes are kept in memory
ncfg "$T/notes3.json" "$J" 70 from-w3 "$T/notes.w3.log"
(exec "$FERRY" run --config "$T/notes3.json" --worker w3 --lease 2 --progress none) >"$T/w3.notes.log" 2>&1
eq "a later worker alone: exit 0" "$?" 0
eq "its first write found no note (a new listing), the others its own" \
  "$(grep '^N ' "$T/notes.w3.log" | head -1 | sed 's/.* got=//') $(grep -c '^N ' "$T/notes.w3.log") $(grep '^N ' "$T/notes.w3.log" | grep -c 'got=from-w3$')" "- 10 9"
ncfg "$T/notes4.json" "$T/notes.db" 5 plain "$T/notes.plain.log"
expect 0 "a plain run with notes (SQLite journal)" -- "$FERRY" run --config "$T/notes4.json" --progress none
eq "a plain run: the first write found no note, the others the one it put (in memory)" \
  "$(grep '^N ' "$T/notes.plain.log" | sed 's/.* got=//' | tr '\n' ' ')" "- plain plain plain plain "

echo "workers: $passes passed, $fails failed"
[ "$fails" = 0 ]
