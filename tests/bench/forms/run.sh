#!/usr/bin/env bash
# Form data benchmark: `ferry run` (pgsql -> pgsql) against `pg_dump --data-only -t ... src | psql dst`, side by
# side in one run, on a private PostgreSQL cluster.
#   tests/bench/forms/run.sh [--build-dir DIR] [--rows N] [--tables T] [--rounds R] [--concurrency C]
#                            [--batch-bytes B]   (the source's batch_bytes; default: the plugin's)
# Builds ferry in Release (no sanitizers) into --build-dir (default /tmp/ferry-bench-forms-build), starts a
# cluster, generates N rows (default 1,000,000) over T Joget-like form tables (default 20) with
# generate_series in a source database, then per round: two fresh target databases with the source's schema
# (pg_dump --schema-only, not timed), the source read once to warm the cache (not timed), then timed:
#   pg_dump --data-only -t 'app_fd_*' src | psql -q dst_dump          (alternating which goes first)
#   ferry run (source pgsql patterns app_fd_%, sink pgsql, stage concurrency C) into dst_ferry
# and the targets are checked equal to the source. Prints both times per round, the best of each and the
# ratio, and ferry's peak memory. Goal: ferry no slower than pg_dump | psql.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=/tmp/ferry-bench-forms-build rows=1000000 tables=20 rounds=3 conc=8 bbytes=""
while [ $# -gt 0 ]; do
  case "$1" in
  --build-dir) build=$2; shift 2 ;;
  --rows) rows=$2; shift 2 ;;
  --tables) tables=$2; shift 2 ;;
  --rounds) rounds=$2; shift 2 ;;
  --concurrency) conc=$2; shift 2 ;;
  --batch-bytes) bbytes=", \"batch_bytes\": $2"; shift 2 ;;
  *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -n 1)
PATH=$bin:$PATH
echo "building ferry (Release) in $build ..."
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFERRY_SANITIZE=OFF -DFERRY_BUILD_TESTS=OFF >/dev/null
cmake --build "$build" -j2 >/dev/null
work=$(mktemp -d /tmp/ferry-bench-forms.XXXXXX)
pg=$(mktemp -d /tmp/ferry-bench-forms-pg.XXXXXX)
chmod 755 "$pg"
cleanup() {
  bash "$root/tests/support/pgcluster.sh" stop "$pg" || true
  rm -rf "$work" "$pg"
}
trap cleanup EXIT
port=$(bash "$root/tests/support/pgcluster.sh" start "$pg")
conn="-h 127.0.0.1 -p $port -U ferry"
q() { psql $conn -d "$1" -qAtX -v ON_ERROR_STOP=1 -c "$2"; }
now() { date +%s.%N; }

echo "generating $rows rows over $tables tables ..."
q postgres "CREATE DATABASE src" >/dev/null
per=$((rows / tables))
for i in $(seq -w 1 "$tables"); do
  q src "CREATE TABLE app_fd_form$i (id varchar(255) PRIMARY KEY, datecreated timestamp, datemodified timestamp,
           createdby varchar(255), createdbyname varchar(255), modifiedby varchar(255), modifiedbyname varchar(255),
           c_title text, c_status text, c_amount text, c_requester text, c_notes text, c_date text, c_ref text)"
  q src "INSERT INTO app_fd_form$i SELECT md5('$i-' || g)::uuid::text,
           timestamp '2024-01-01' + g * interval '1 minute', timestamp '2024-02-01' + g * interval '1 minute',
           'user' || (g % 50), 'User ' || (g % 50), 'admin', 'Admin',
           'Request number ' || g, (ARRAY['new', 'approved', 'rejected'])[1 + g % 3], (g % 10000)::text || '.50',
           'employee' || (g % 500), repeat('note ' || g || ' ', 1 + g % 8), '2024-03-' || (1 + g % 28),
           'REF-' || lpad(g::text, 8, '0')
         FROM generate_series(1, $per) g"
done
q src "VACUUM ANALYZE" >/dev/null
size=$(q src "SELECT pg_size_pretty(sum(pg_table_size(c.oid))) FROM pg_class c WHERE relname LIKE 'app\_fd\_%' AND relkind = 'r'")
echo "source: $((per * tables)) rows in $tables tables, $size"
pg_dump $conn --schema-only src > "$work/schema.sql"
srcsum=$(q src "SELECT md5(string_agg(h, ',' ORDER BY h)) FROM (SELECT c.relname || ':' ||
                 (xpath('/row/h/text()', query_to_xml(format('SELECT md5(string_agg(t::text, '','' ORDER BY t::text)) AS h
                  FROM %I t', c.relname), false, false, '')))[1]::text AS h FROM pg_class c
                 WHERE c.relname LIKE 'app\_fd\_%' AND c.relkind = 'r') x")
sum_of() { q "$1" "SELECT md5(string_agg(h, ',' ORDER BY h)) FROM (SELECT c.relname || ':' ||
                 (xpath('/row/h/text()', query_to_xml(format('SELECT md5(string_agg(t::text, '','' ORDER BY t::text)) AS h
                  FROM %I t', c.relname), false, false, '')))[1]::text AS h FROM pg_class c
                 WHERE c.relname LIKE 'app\_fd\_%' AND c.relkind = 'r') x"; }

best_dump="" best_ferry="" peak_kb=0
for r in $(seq 1 "$rounds"); do
  for db in dst_dump dst_ferry; do
    q postgres "DROP DATABASE IF EXISTS $db" >/dev/null 2>&1 || true
    q postgres "CREATE DATABASE $db" >/dev/null
    psql $conn -d $db -qX -v ON_ERROR_STOP=1 -f "$work/schema.sql" >/dev/null
  done
  q src "SELECT sum(length(t::text)) FROM (SELECT * FROM app_fd_form01) t" >/dev/null   # warm-up
  for i in $(seq -w 1 "$tables"); do q src "SELECT count(*) FROM (SELECT * FROM app_fd_form$i ORDER BY id) t" >/dev/null; done
  q postgres "CHECKPOINT" >/dev/null

  run_dump() {
    local t0 t1
    t0=$(now)
    pg_dump $conn --data-only -t 'app_fd_*' src | psql $conn -d dst_dump -qX -v ON_ERROR_STOP=1 >/dev/null
    t1=$(now)
    dump_s=$(echo "$t1 - $t0" | bc -l)
    q postgres "CHECKPOINT" >/dev/null
  }
  run_ferry() {
    local t0 t1
    cat > "$work/ferry.json" <<JSON
{"journal": "$work/journal-$r.db", "report": "$work/report-$r.json",
 "stages": [{"name": "forms", "concurrency": $conc,
   "source": {"plugin": "pgsql", "options": {"dsn": "host=127.0.0.1 port=$port user=ferry dbname=src",
              "patterns": ["app\\\\_fd\\\\_%"] $bbytes}},
   "sink": {"plugin": "pgsql", "options": {"dsn": "host=127.0.0.1 port=$port user=ferry dbname=dst_ferry"}}}]}
JSON
    t0=$(now)
    /usr/bin/time -f "%M" -o "$work/time-$r" "$build/ferry" run --config "$work/ferry.json" --progress none -q \
      --plugin-path "$build/plugins-out"
    t1=$(now)
    ferry_s=$(echo "$t1 - $t0" | bc -l)
    kb=$(tail -n 1 "$work/time-$r")
    [ "$kb" -gt "$peak_kb" ] && peak_kb=$kb
    q postgres "CHECKPOINT" >/dev/null
  }
  # alternate which goes first, so that neither always gets the warmer cache
  if [ $((r % 2)) = 1 ]; then run_dump; run_ferry; else run_ferry; run_dump; fi

  [ "$(sum_of dst_dump)" = "$srcsum" ] || { echo "pg_dump | psql target differs from the source" >&2; exit 1; }
  [ "$(sum_of dst_ferry)" = "$srcsum" ] || { echo "ferry target differs from the source" >&2; exit 1; }
  printf 'round %d: pg_dump --data-only | psql %7.2f s    ferry run %7.2f s (peak RSS %d MiB)\n' \
    "$r" "$dump_s" "$ferry_s" $((kb / 1024))
  if [ -z "$best_dump" ] || [ "$(echo "$dump_s < $best_dump" | bc -l)" = 1 ]; then best_dump=$dump_s; fi
  if [ -z "$best_ferry" ] || [ "$(echo "$ferry_s < $best_ferry" | bc -l)" = 1 ]; then best_ferry=$ferry_s; fi
done
ratio=$(echo "$best_ferry / $best_dump" | bc -l)
printf '\n%d rows, %d tables (%s), best of %d round(s), both targets verified equal to the source:\n' \
  "$((per * tables))" "$tables" "$size" "$rounds"
printf '  pg_dump --data-only | psql  %7.2f s  (%.0f rows/s)\n' "$best_dump" "$(echo "$per * $tables / $best_dump" | bc -l)"
printf '  ferry run (concurrency %d)   %7.2f s  (%.0f rows/s), peak RSS %d MiB\n' "$conc" "$best_ferry" \
  "$(echo "$per * $tables / $best_ferry" | bc -l)" $((peak_kb / 1024))
printf '  ratio ferry / pg_dump|psql   %7.2f  (goal: <= 1.00)\n' "$ratio"
