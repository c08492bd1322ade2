#!/usr/bin/env bash
# SQL table benchmark: `ferry run` (sql source -> sql sink) against plain pipelines of the standard clients,
# side by side in one run, on a private MariaDB server and a private PostgreSQL cluster. Not part of ctest
# or CI (minutes on a small machine).
#
#   tests/bench/sql/run.sh [--ferry PATH --plugin-path DIR | --build-dir DIR] [--rows N] [--tables T]
#                          [--concurrency C] [--batch-rows B] [--only mm|mp] [--keep] [--hold]
#
# Builds ferry in Release (no sanitizers) into --build-dir (default /tmp/ferry-bench-sql-build) unless
# --ferry is given, starts the servers (tests/support/mariadb.sh, pgcluster.sh), and generates N rows
# (default 1,000,000) over T Joget-shaped form tables app_fd_* (default 20) in the MariaDB database src:
# id varchar(255) primary key, dateCreated/dateModified datetime, createdBy/createdByName/modifiedBy/
# modifiedByName varchar(255), and eight c_* longtext columns of mixed length (0 bytes to ~2 KB; NULLs,
# newlines, tabs, backslashes, accents and 4-byte characters), as Joget creates them on MySQL. Then, timed:
#
#  (mm) MariaDB -> MariaDB, into two empty copies of the schema (mysqldump --no-data, not timed):
#       mysqldump --no-create-info --single-transaction --skip-lock-tables src | mysql dst_dump
#       ferry run: sql source (patterns app_fd_%) -> sql sink, stage concurrency C       into dst_ferry
#  (mp) MariaDB -> PostgreSQL, into two PostgreSQL databases with the same tables (varchar(255),
#       timestamp, text; created before the clock starts):
#       per table, T pipelines at most C at a time (as ferry's parallel tables):
#         mysql --batch -N -e 'SELECT * FROM t' src | psql -c "\copy t FROM STDIN (NULL 'NULL')"
#       (--batch without --raw escapes \n, \t and \ exactly as COPY's text format reads them; NULL is
#        printed as the word NULL, which none of the generated values is)
#       ferry run: sql source -> sql sink on PostgreSQL (COPY), concurrency C
#
# After each run the target is checked equal to the source: row count and an md5 over every table's rows in
# key order (the same text on both engines), so no tool can win by dropping or mangling rows. Printed per
# tool: wall time, CPU of the client processes (user+sys, /usr/bin/time), their max RSS, and the CPU the
# database servers spent during the run (from /proc: mariadbd's threads; the postgres backends, which are
# reaped by the postmaster). --hold keeps the servers up at the end until the file it names is removed (for
# profiling by hand); --keep keeps the work directory.  Goals (issue 9): mm ferry <= 0.8 x the dump pipeline; mp ferry <= 1.0 x.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=/tmp/ferry-bench-sql-build rows=1000000 tables=20 conc=4 batch=10000 only="" keep="" hold="" ferry="" ppath=""
while [ $# -gt 0 ]; do
  case "$1" in
  --build-dir) build=$2; shift 2 ;;
  --ferry) ferry=$2; shift 2 ;;
  --plugin-path) ppath=$2; shift 2 ;;
  --rows) rows=$2; shift 2 ;;
  --tables) tables=$2; shift 2 ;;
  --concurrency) conc=$2; shift 2 ;;
  --batch-rows) batch=$2; shift 2 ;;
  --only) only=$2; shift 2 ;;
  --keep) keep=1; shift ;;
  --hold) hold=1; shift ;;
  *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -n 1)
PATH=$pgbin:$PATH
MYCL=$(command -v mariadb || command -v mysql)
DUMP=$(command -v mariadb-dump || command -v mysqldump)
[ -x /usr/bin/time ] || { echo "run.sh: /usr/bin/time is needed (apt-get install time)" >&2; exit 2; }
if [ -z "$ferry" ]; then
  echo "building ferry (Release) in $build ..."
  cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFERRY_SANITIZE=OFF -DFERRY_BUILD_TESTS=OFF >/dev/null
  cmake --build "$build" -j2 >/dev/null
  ferry=$build/ferry ppath=$build/plugins-out
fi
[ -n "$ppath" ] || ppath=$(dirname "$ferry")/plugins-out

work=$(mktemp -d /tmp/ferry-bench-sql.XXXXXX)
mdir=$work/mariadb pdir=$(mktemp -d /tmp/ferry-bench-sql-pg.XXXXXX)
chmod 755 "$pdir"
cleanup() {
  bash "$root/tests/support/mariadb.sh" stop "$mdir" || true
  bash "$root/tests/support/pgcluster.sh" stop "$pdir" || true
  [ -n "$keep" ] && { echo "kept $work"; return; }
  rm -rf "$work" "$pdir"
}
trap cleanup EXIT
mport=$(bash "$root/tests/support/mariadb.sh" start "$mdir")
pport=$(bash "$root/tests/support/pgcluster.sh" start "$pdir")
mypid=$(cat "$mdir/mariadbd.pid") pgpid=$(head -n 1 "$pdir/data/postmaster.pid")
my() { "$MYCL" --no-defaults --default-character-set=utf8mb4 -h 127.0.0.1 -P "$mport" -u ferry -pferry -N -B "$@"; }
pg() { psql -h 127.0.0.1 -p "$pport" -U ferry -qAtX -v ON_ERROR_STOP=1 "$@"; }
# the defaults of the test server are small (128 MiB pool, 32 MiB redo log); a benchmark server gets room
my -e "SET GLOBAL innodb_buffer_pool_size = 2147483648; SET GLOBAL max_allowed_packet = 268435456" || true
now() { date +%s.%N; }
# CPU seconds (user+sys) a process and its reaped children used: fields 14-17 of /proc/PID/stat
proc_cpu() { awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15 + $16 + $17) / hz }' "/proc/$1/stat"; }
srv_cpu() { echo "$(proc_cpu "$mypid") + $(proc_cpu "$pgpid")" | bc -l; }

per=$((rows / tables))
echo "generating $((per * tables)) rows over $tables tables in MariaDB ..."
my -e "CREATE DATABASE src CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
cols="id varchar(255) NOT NULL, dateCreated datetime DEFAULT NULL, dateModified datetime DEFAULT NULL,
  createdBy varchar(255) DEFAULT NULL, createdByName varchar(255) DEFAULT NULL,
  modifiedBy varchar(255) DEFAULT NULL, modifiedByName varchar(255) DEFAULT NULL,
  c_title longtext, c_status longtext, c_amount longtext, c_requester longtext, c_date longtext,
  c_ref longtext, c_notes longtext, c_description longtext, PRIMARY KEY (id)"
for i in $(seq -w 1 "$tables"); do
  my -D src -e "CREATE TABLE app_fd_form$i ($cols) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci;
    INSERT INTO app_fd_form$i SELECT MD5(CONCAT('$i-', seq)),
      '2024-01-01 08:00:00' + INTERVAL seq MINUTE, '2024-02-01 08:00:00' + INTERVAL seq * 7 SECOND,
      CONCAT('user', seq % 50), CONCAT('User Näme ', seq % 50), 'admin', 'Admin',
      CONCAT('Request number ', seq), ELT(1 + seq % 3, 'new', 'approved', 'rejected'),
      CONCAT(seq % 10000, '.50'), CONCAT('employee', seq % 500), CONCAT('2024-03-', LPAD(1 + seq % 28, 2, '0')),
      IF(seq % 10 = 0, NULL, CONCAT('REF-', LPAD(seq, 8, '0'))),
      IF(seq % 4 = 0, NULL, CONCAT(REPEAT(CONCAT('note ', seq, ' '), 1 + seq % 12), IF(seq % 7 = 0, '\n2nd line\tend \\\\ ok', ''))),
      IF(seq % 3 = 0, '', CONCAT(REPEAT('Lorem ipsum dolor sit amet, consectetur adipiscing élit – ', IF(seq % 50 = 0, 35, seq % 9)),
         IF(seq % 101 = 0, ' 😀 done', '')))
    FROM seq_1_to_$per"
done
size=$(my -D src -e "SELECT CONCAT(ROUND(SUM(data_length) / 1048576), ' MiB') FROM information_schema.tables WHERE table_schema = 'src'")
echo "source: $((per * tables)) rows in $tables tables, $size (InnoDB data)"
list=$(for i in $(seq -w 1 "$tables"); do echo "app_fd_form$i"; done)

# One text per table: "name count md5", the md5 over the rows in key order, columns as text, NULL as <null>.
# The same SELECT on both engines (timestamps printed without fraction, as MariaDB's datetime and
# PostgreSQL's timestamp(0) print them).
rowsel="id, COALESCE(dateCreated, '<null>'), COALESCE(dateModified, '<null>'), COALESCE(createdBy, '<null>'),
  COALESCE(createdByName, '<null>'), COALESCE(modifiedBy, '<null>'), COALESCE(modifiedByName, '<null>'),
  COALESCE(c_title, '<null>'), COALESCE(c_status, '<null>'), COALESCE(c_amount, '<null>'),
  COALESCE(c_requester, '<null>'), COALESCE(c_date, '<null>'), COALESCE(c_ref, '<null>'),
  COALESCE(c_notes, '<null>'), COALESCE(c_description, '<null>')"
mysum() {
  local t
  for t in $list; do
    echo "$t $(my -D "$1" -e "SELECT COUNT(*) FROM $t") $(my -D "$1" -e "SELECT $rowsel FROM $t ORDER BY id COLLATE utf8mb4_bin" | md5sum | cut -c1-32)"
  done | md5sum | cut -c1-32
}
pgsum() {
  local t
  for t in $list; do
    # psql -A prints raw text: escape \, tab and newline as the mysql client's --batch does
    echo "$t $(pg -d "$1" -c "SELECT count(*) FROM $t") $(pg -d "$1" -c "COPY (SELECT id, COALESCE(to_char(\"dateCreated\", 'YYYY-MM-DD HH24:MI:SS'), '<null>'),
      COALESCE(to_char(\"dateModified\", 'YYYY-MM-DD HH24:MI:SS'), '<null>'), COALESCE(\"createdBy\", '<null>'),
      COALESCE(\"createdByName\", '<null>'), COALESCE(\"modifiedBy\", '<null>'), COALESCE(\"modifiedByName\", '<null>'),
      COALESCE(c_title, '<null>'), COALESCE(c_status, '<null>'), COALESCE(c_amount, '<null>'),
      COALESCE(c_requester, '<null>'), COALESCE(c_date, '<null>'), COALESCE(c_ref, '<null>'),
      COALESCE(c_notes, '<null>'), COALESCE(c_description, '<null>') FROM $t ORDER BY id COLLATE \"C\") TO STDOUT" | md5sum | cut -c1-32)"
  done | md5sum | cut -c1-32
}
echo "checksumming the source ..."
srcsum=$(mysum src)

results=()
# timed NAME CMD...: runs CMD under /usr/bin/time, records wall, client CPU, max RSS and server CPU
timed() {
  local name=$1; shift
  local s0 s1 t0 t1
  sync
  s0=$(srv_cpu); t0=$(now)
  /usr/bin/time -f "%U %S %M" -o "$work/time.out" "$@"
  t1=$(now); s1=$(srv_cpu)
  read -r u s m < <(tail -n 1 "$work/time.out")
  local wall cpu scpu
  wall=$(echo "$t1 - $t0" | bc -l); cpu=$(echo "$u + $s" | bc -l); scpu=$(echo "$s1 - $s0" | bc -l)
  results+=("$(printf '%-44s %8.2f s %8.2f s %7d MiB %8.2f s' "$name" "$wall" "$cpu" $((m / 1024)) "$scpu")")
  last_wall=$wall
  printf '  %s: %.2f s\n' "$name" "$wall"
}
ferry_cfg() { # ferry_cfg FILE SRC_URL DST_URL
  cat > "$1" <<JSON
{"journal": "$1.journal.db", "report": "$1.report.json",
 "stages": [{"name": "forms", "concurrency": $conc,
   "source": {"plugin": "sql", "options": {"dsn": "$2", "patterns": ["app\\\\_fd\\\\_%"], "batch_rows": $batch}},
   "sink": {"plugin": "sql", "options": {"dsn": "$3"}}}]}
JSON
}
murl="mysql://ferry:ferry@127.0.0.1:$mport"
purl="postgresql://ferry@127.0.0.1:$pport"
# the source once through the cache before the first timed run (not timed)
for t in $list; do my -D src -e "SELECT COUNT(*), SUM(LENGTH(c_description)) FROM $t" >/dev/null; done

mm_dump="" mm_ferry="" mp_pipe="" mp_ferry=""
if [ -z "$only" ] || [ "$only" = mm ]; then
  echo "MariaDB -> MariaDB ..."
  "$DUMP" --no-defaults -h 127.0.0.1 -P "$mport" -u ferry -pferry --no-data src > "$work/schema.sql"
  for db in dst_dump dst_ferry; do
    my -e "CREATE DATABASE $db CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
    my -D $db < "$work/schema.sql"
  done
  timed "mysqldump --no-create-info | mysql" bash -c "set -o pipefail; '$DUMP' --no-defaults -h 127.0.0.1 -P $mport -u ferry -pferry \
      --no-create-info --single-transaction --skip-lock-tables src | '$MYCL' --no-defaults -h 127.0.0.1 -P $mport -u ferry -pferry dst_dump"
  mm_dump=$last_wall
  ferry_cfg "$work/mm.json" "$murl/src" "$murl/dst_ferry"
  timed "ferry run (sql -> sql, concurrency $conc)" "$ferry" run --config "$work/mm.json" --progress none -q --plugin-path "$ppath"
  mm_ferry=$last_wall
  echo "  checking the targets ..."
  [ "$(mysum dst_dump)" = "$srcsum" ] || { echo "the mysqldump | mysql target differs from the source" >&2; exit 1; }
  [ "$(mysum dst_ferry)" = "$srcsum" ] || { echo "the ferry target (MariaDB) differs from the source" >&2; exit 1; }
  my -e "DROP DATABASE dst_dump; DROP DATABASE dst_ferry"
fi
if [ -z "$only" ] || [ "$only" = mp ]; then
  echo "MariaDB -> PostgreSQL ..."
  for db in dst_pipe dst_ferry; do
    pg -d postgres -c "CREATE DATABASE $db"
    for t in $list; do
      pg -d $db -c "CREATE TABLE $t (id varchar(255) PRIMARY KEY, \"dateCreated\" timestamp(0), \"dateModified\" timestamp(0),
        \"createdBy\" varchar(255), \"createdByName\" varchar(255), \"modifiedBy\" varchar(255), \"modifiedByName\" varchar(255),
        c_title text, c_status text, c_amount text, c_requester text, c_date text, c_ref text, c_notes text, c_description text)"
    done
  done
  cat > "$work/pipe.sh" <<SH
#!/usr/bin/env bash
# one table: mysql --batch (escaped text, NULL as the word NULL) into psql \\copy
set -euo pipefail
'$MYCL' --no-defaults --default-character-set=utf8mb4 -h 127.0.0.1 -P $mport -u ferry -pferry -N --batch -D src \\
  -e "SELECT * FROM \$1" \\
  | psql -h 127.0.0.1 -p $pport -U ferry -qX -v ON_ERROR_STOP=1 -d dst_pipe -c "\\\\copy \$1 FROM STDIN (NULL 'NULL')"
SH
  timed "mysql --batch | psql \\copy ($conc tables at once)" bash -c "printf '%s\n' $(echo $list) | xargs -P $conc -n 1 bash '$work/pipe.sh'"
  mp_pipe=$last_wall
  ferry_cfg "$work/mp.json" "$murl/src" "$purl/dst_ferry"
  timed "ferry run (sql -> sql on PostgreSQL, conc. $conc)" "$ferry" run --config "$work/mp.json" --progress none -q --plugin-path "$ppath"
  mp_ferry=$last_wall
  echo "  checking the targets ..."
  [ "$(pgsum dst_pipe)" = "$srcsum" ] || { echo "the mysql | psql target differs from the source" >&2; exit 1; }
  [ "$(pgsum dst_ferry)" = "$srcsum" ] || { echo "the ferry target (PostgreSQL) differs from the source" >&2; exit 1; }
fi

printf '\n%d rows, %d tables (%s), every target checked equal to the source (counts + md5 of all rows):\n' \
  "$((per * tables))" "$tables" "$size"
printf '%-44s %10s %10s %11s %10s\n' "tool" "wall" "client CPU" "max RSS" "server CPU"
for r in "${results[@]}"; do echo "$r"; done
[ -n "$mm_dump" ] && printf 'MariaDB -> MariaDB:    ferry / dump pipeline  = %.2f (goal <= 0.80)\n' "$(echo "$mm_ferry / $mm_dump" | bc -l)"
[ -n "$mp_pipe" ] && printf 'MariaDB -> PostgreSQL: ferry / mysql | psql   = %.2f (goal <= 1.00)\n' "$(echo "$mp_ferry / $mp_pipe" | bc -l)"
if [ -n "$hold" ]; then
  touch "$work/hold"
  echo "holding: MariaDB port $mport ($murl), PostgreSQL port $pport; ferry configs in $work; rm $work/hold to end"
  while [ -e "$work/hold" ]; do sleep 2; done
fi
exit 0
