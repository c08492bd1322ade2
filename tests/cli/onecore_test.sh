#!/usr/bin/env bash
# One core per process: modules opened by the `ferry` CLI run on the CLI's core (tests/cli/onecore.c).
#   onecore_test.sh <ferry> <plugin dir> <dir of ferry_test_onecore_linked.so> <libferry file>
# Two stages, one with the in-tree style module (no libferry: SDK calls bound to the process's core), one with
# the same plugin linked with libferry as out-of-tree modules are. Each registers a secret the core cannot
# know (ferry_secret) and logs at debug level; the CLI runs with -v and JSON log lines. With one core:
#   - each module's SDK calls go to the libferry the CLI runs, and the process maps one libferry;
#   - the CLI's log level and format apply to the modules' own lines (debug lines, in JSON);
#   - the core's redaction knows the secrets: its log line of the failed item, the journal, the report,
#     `ferry status --items` and the modules' own lines show "***", never the secret.
set -uo pipefail
FERRY=$1
export FERRY_PLUGIN_PATH=$2
LINKED=$3
LIBFERRY=$(readlink -f "$4")
T=$(mktemp -d /tmp/ferry-onecore-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }
cd "$T"
cat > ferry.json <<JSON
{"journal": "j.db", "report": "report.json", "plugin_path": ["$LINKED"],
 "stages": [
  {"name": "a", "source": {"plugin": "test-onecore", "options": {"seed": "alpha$$"}},
   "sink": {"plugin": "test-onecore", "options": {"seed": "alpha$$"}}},
  {"name": "b", "source": {"plugin": "test-onecore-linked", "options": {"seed": "bravo$$"}},
   "sink": {"plugin": "test-onecore-linked", "options": {"seed": "bravo$$"}}}]}
JSON
secret_a="oc-$(rev <<<"alpha$$")-7193" secret_b="oc-$(rev <<<"bravo$$")-7193"
"$FERRY" run -v --log-format json --progress none --config ferry.json >run.out 2>run.err
rc=$?
[ "$rc" = 1 ] || bad "run: exit $rc, expected 1 (one item of each stage fails)"
"$FERRY" status --items --json --config ferry.json >status.out 2>&1
rc=$?
[ "$rc" = 1 ] || bad "status --items: exit $rc, expected 1 (items failed)"

python3 - "$LIBFERRY" run.err <<'PY' || fails=$((fails + 1))
import json, os, re, sys
libferry, path = sys.argv[1], sys.argv[2]
lines = [l for l in open(path, errors="replace").read().splitlines() if l.strip()]
logs, fail = [], 0
for l in lines:
    if l.startswith("{"):
        logs.append(json.loads(l))
mine = [o for o in logs if o.get("msg", "").startswith("onecore: ")]
for plugin in ("test-onecore", "test-onecore-linked"):
    got = [o for o in mine if o.get("plugin") == plugin]
    # the source and the sink instance of the stage: two debug lines, as JSON (the CLI's format and level)
    if len(got) != 2 or any(o["level"] != "debug" for o in got):
        print(f"FAIL: {plugin}: expected 2 JSON debug lines from the module, got {len(got)}"); fail = 1
    for o in got:
        m = o["msg"]
        got_from = re.search(r"ferry_secret from (\S+),", m)
        if not got_from or os.path.realpath(got_from.group(1)) != os.path.realpath(libferry):
            print(f"FAIL: {plugin}: SDK calls do not go to the CLI's libferry {libferry}: {m}"); fail = 1
        if "libferry mapped 1," not in m:
            print(f"FAIL: {plugin}: not exactly one libferry in the process: {m}"); fail = 1
        if not m.endswith("secret ***"):
            print(f"FAIL: {plugin}: its own log line is not redacted: {m}"); fail = 1
# text lines on stderr: only the CLI's summary and its last error, never a module's log line
for l in lines:
    if not l.startswith("{") and ("[source:" in l or "[sink:" in l or "onecore:" in l):
        print(f"FAIL: a log line not in the configured format: {l}"); fail = 1
core = [o for o in logs if "failed in stage" in o.get("msg", "")]
if len(core) != 2 or not all("refused token ***" in o["msg"] for o in core):
    print("FAIL: the core's lines of the failed items are not redacted:", [o.get("msg") for o in core])
    fail = 1
sys.exit(fail)
PY
cat run.out run.err status.out report.json j.db* > all.out 2>/dev/null
for s in "$secret_a" "$secret_b"; do
  if grep -a -q -- "$s" all.out; then
    bad "the secret $s leaked:"; grep -a -n -- "$s" all.out | head -3 | cut -c1-200
  fi
done
grep -a -q "refused token \*\*\*" status.out || bad "status --items lacks the redacted error"
grep -a -q "carried with \*\*\*" report.json || bad "the report lacks the redacted note"
[ "$fails" = 0 ] && echo "ok: one core, one registry of secrets, one log configuration"
[ "$fails" = 0 ]
