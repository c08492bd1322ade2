#!/usr/bin/env bash
# Uploads benchmark: the fs plugin (fs -> fs) against what an administrator would otherwise use.
#
#   tests/bench/uploads/run.sh [--build-dir DIR] [--files N] [--mib M] [--rounds R] [--concurrency C]
#
# Builds ferry and the fs plugin in Release (no sanitizers) into --build-dir (default
# /tmp/ferry-bench-uploads-build), generates a Joget-like upload tree under a fresh /tmp directory
# (<table>/<record>/<file>: 20 tables, records of 1-4 files, mixed sizes from a few KB to ~20 MB plus some
# empty files, old mtimes; default 20,000 files totalling 1 GiB), then R rounds (default 3; the order of the
# contenders alternates from round to round):
#   1. copy into fresh targets: `cp -a SRC DST && sync` against `ferry run` (fs -> fs, durable: syncfs
#      before items count as done), with the default options (the source hashes, the sink hashes what it
#      writes and compares) and with "checksum": false (only the sink hashes);
#   2. re-run with nothing to do: `rsync -a SRC/ DST/` on the tree cp made against `ferry run` again with the
#      same journal;
# and once, for information, catch-up runs with a fresh journal (the sink compares every file): `rsync -a
# --checksum` against ferry (compare checksum), `rsync -a` against ferry (checksum off, compare mtime: the
# same quick check as rsync).
# Every timed command starts after a `sync`, with the source tree in the page cache (read once before each
# round), so the figures compare the copies, not the first read of the source. Prints each time with its CPU
# time, the median and best of the rounds, and the ratios. Everything generated is deleted at the end.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../../.." && pwd)
build=/tmp/ferry-bench-uploads-build files=20000 mib=1024 rounds=3 conc=8
while [ $# -gt 0 ]; do
  case "$1" in
  --build-dir) build=$2; shift 2 ;;
  --files) files=$2; shift 2 ;;
  --mib) mib=$2; shift 2 ;;
  --rounds) rounds=$2; shift 2 ;;
  --concurrency) conc=$2; shift 2 ;;
  *) echo "run.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
command -v rsync >/dev/null || { echo "run.sh: rsync is needed (apt-get install rsync)" >&2; exit 2; }

echo "building ferry (Release) in $build ..."
cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DFERRY_SANITIZE=OFF -DFERRY_BUILD_TESTS=OFF \
  -DFERRY_PLUGINS_DEFAULT=MODULE >/dev/null
cmake --build "$build" -j2 --target ferry_cli ferry_plugin_fs >/dev/null
FERRY=$build/ferry
export FERRY_PLUGIN_PATH=$build/plugins-out

work=$(mktemp -d /tmp/ferry-bench-uploads.XXXXXX)
cleanup() { rm -rf "$work"; }
trap cleanup EXIT
src=$work/src/app_formuploads
echo "generating $files files, $mib MiB in $src ..."
python3 - "$src" "$files" "$((mib * 1024 * 1024))" <<'PY'
import os, random, sys
root, nfiles, total = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rnd = random.Random(20240326)
sizes = []
for i in range(nfiles):
    r = rnd.random()
    if r < 0.01: s = 0                                    # empty files
    elif r < 0.60: s = rnd.randint(1_000, 30_000)         # small documents, thumbnails
    elif r < 0.92: s = rnd.randint(30_000, 300_000)       # images, PDFs
    elif r < 0.995: s = rnd.randint(300_000, 3_000_000)   # scans
    else: s = rnd.randint(3_000_000, 20_000_000)          # large attachments
    sizes.append(s)
f = total / sum(sizes)
sizes = [int(s * f) for s in sizes]
sizes[sizes.index(max(sizes))] += total - sum(sizes)
pool = os.urandom(64 << 20)
tables = ["app_t%02d" % t for t in range(20)]
i = 0
now = 1_700_000_000
while i < nfiles:
    table = rnd.choice(tables)
    rec = "%08x-%04x-%04x-%04x-%012x" % tuple(rnd.getrandbits(b) for b in (32, 16, 16, 16, 48))
    d = os.path.join(root, table, rec)
    os.makedirs(d)
    for k in range(min(rnd.randint(1, 4), nfiles - i)):
        name = rnd.choice(["scan", "photo", "contract", "invoice", "cv"]) + "_%d" % i + \
            rnd.choice([".pdf", ".jpg", ".png", ".docx", ".jpg.thumb.jpg"])
        n = sizes[i]
        with open(os.path.join(d, name), "wb") as fh:
            while n > 0:
                off = rnd.randrange(0, len(pool) - min(n, 1 << 20))
                chunk = pool[off:off + min(n, 1 << 20)]
                fh.write(chunk)
                n -= len(chunk)
        t = now - rnd.randrange(0, 3 * 365 * 86400)
        os.utime(os.path.join(d, name), ns=(t * 10**9 + 123456789, t * 10**9 + rnd.randrange(10**9)))
        i += 1
PY
sync
echo "source: $(find "$src" -type f | wc -l) files, $(du -sb "$src" | cut -f1) bytes, $(find "$src" -mindepth 2 -type d | wc -l) record directories"

warm() { find "$src" -type f -print0 | xargs -0 cat > /dev/null; sync; }
# timed LABEL -- command...: runs it after a sync, prints wall clock and CPU time, stores the wall clock
# seconds in $last and the CPU seconds (user + system of the command and its children) in $lastcpu
timed() {
  local label=$1; shift 2
  sync
  /usr/bin/time -f '%e %U %S' -o "$work/time" "$@"
  read -r last u s < "$work/time"
  lastcpu=$(python3 -c "print('%.2f' % ($u + $s))")
  printf '  %-60s %8.3f s   (cpu %6.2f s)\n' "$label" "$last" "$lastcpu"
}
median() { python3 -c "import statistics,sys; print('%.3f' % statistics.median(float(x) for x in sys.argv[1:]))" "$@"; }
best() { python3 -c "import sys; print('%.3f' % min(float(x) for x in sys.argv[1:]))" "$@"; }
ratio() { python3 -c "import sys; print('%.2f' % (float(sys.argv[1]) / float(sys.argv[2])))" "$1" "$2"; }

cfg() { # cfg FILE DST JOURNAL [source options] [sink options]
  cat > "$1" <<JSON
{"journal": "$3", "stages": [{"name": "uploads", "concurrency": $conc,
  "source": {"plugin": "fs", "options": {"root": "$src" ${4:+, $4}}},
  "sink": {"plugin": "fs", "options": {"root": "$2", "create_root": true ${5:+, $5}}}}]}
JSON
}

cp_t=() fe_t=() fn_t=() rs_t=() re_t=() cp_c=() fe_c=() fn_c=()
for r in $(seq 1 "$rounds"); do
  echo "round $r:"
  rm -rf "$work/cp" "$work/ferry" "$work/ferry-nc" "$work"/j*.db*
  mkdir -p "$work/cp" "$work/ferry" "$work/ferry-nc"
  cfg "$work/ferry.json" "$work/ferry/app_formuploads" "$work/j.db"
  cfg "$work/ferry-nc.json" "$work/ferry-nc/app_formuploads" "$work/jn.db" '"checksum": false'
  warm
  run_cp() { timed "cp -a + sync" -- /usr/bin/env bash -c 'cp -a "$0" "$1" && sync' "$src" "$work/cp/app_formuploads"
             cp_t+=("$last"); cp_c+=("$lastcpu"); }
  run_fe() { timed "ferry run (sha256 in source and sink, syncfs)" -- "$FERRY" run --config "$work/ferry.json" -q --progress none
             fe_t+=("$last"); fe_c+=("$lastcpu"); }
  run_fn() { timed "ferry run (\"checksum\": false: sha256 in the sink only)" -- "$FERRY" run --config "$work/ferry-nc.json" -q --progress none
             fn_t+=("$last"); fn_c+=("$lastcpu"); }
  if [ $((r % 2)) = 1 ]; then run_cp; run_fe; run_fn; else run_fn; run_fe; run_cp; fi
  run_rs() { timed "rsync -a (no change)" -- rsync -a "$src/" "$work/cp/app_formuploads/"; rs_t+=("$last"); }
  run_re() { timed "ferry run again, same journal (no change)" -- "$FERRY" run --config "$work/ferry.json" -q --progress none
             re_t+=("$last"); }
  if [ $((r % 2)) = 1 ]; then run_rs; run_re; else run_re; run_rs; fi
  diff -r "$src" "$work/ferry/app_formuploads" >/dev/null && diff -r "$src" "$work/ferry-nc/app_formuploads" >/dev/null \
    || { echo "ferry's copy differs from the source" >&2; exit 1; }
done
echo "  (both ferry copies equal the source: diff -r)"

echo "catch-up runs with a fresh journal (every file compared on the target), once:"
timed "rsync -a --checksum (no change)" -- rsync -a --checksum "$src/" "$work/cp/app_formuploads/"; rsc=$last
cfg "$work/ferry-c.json" "$work/ferry/app_formuploads" "$work/jc.db"
timed "ferry run, fresh journal, compare checksum" -- "$FERRY" run --config "$work/ferry-c.json" -q --progress none
fec=$last
cfg "$work/ferry-m.json" "$work/ferry/app_formuploads" "$work/jm.db" '"checksum": false' '"compare": "mtime"'
timed "ferry run, fresh journal, checksum off, compare mtime" -- "$FERRY" run --config "$work/ferry-m.json" -q --progress none
fem=$last
timed "rsync -a (no change)" -- rsync -a "$src/" "$work/cp/app_formuploads/"; rsm=$last

echo
echo "$files files / $mib MiB, $rounds round(s), median (best) wall clock; cpu = user + system of the command:"
printf '  copy:   cp -a + sync           %7.3f s (%7.3f)  cpu %6.2f s\n' "$(median "${cp_t[@]}")" "$(best "${cp_t[@]}")" "$(median "${cp_c[@]}")"
printf '          ferry                  %7.3f s (%7.3f)  cpu %6.2f s   ferry/cp = %s (goal <= 1.10)\n' \
  "$(median "${fe_t[@]}")" "$(best "${fe_t[@]}")" "$(median "${fe_c[@]}")" "$(ratio "$(median "${fe_t[@]}")" "$(median "${cp_t[@]}")")"
printf '          ferry, checksum false  %7.3f s (%7.3f)  cpu %6.2f s   ferry/cp = %s\n' \
  "$(median "${fn_t[@]}")" "$(best "${fn_t[@]}")" "$(median "${fn_c[@]}")" "$(ratio "$(median "${fn_t[@]}")" "$(median "${cp_t[@]}")")"
printf '  re-run: rsync -a               %7.3f s (%7.3f)\n' "$(median "${rs_t[@]}")" "$(best "${rs_t[@]}")"
printf '          ferry                  %7.3f s (%7.3f)                  ferry/rsync = %s (goal <= 1.00)\n' \
  "$(median "${re_t[@]}")" "$(best "${re_t[@]}")" "$(ratio "$(median "${re_t[@]}")" "$(median "${rs_t[@]}")")"
printf '  catch-up, fresh journal: ferry (checksum) %.3f s vs rsync -a --checksum %.3f s (%s); ferry (mtime) %.3f s vs rsync -a %.3f s (%s)\n' \
  "$fec" "$rsc" "$(ratio "$fec" "$rsc")" "$fem" "$rsm" "$(ratio "$fem" "$rsm")"
echo "  load average at the end: $(cut -d' ' -f1-3 /proc/loadavg) (2 shared vCPUs: compare the ratios, not the seconds)"
