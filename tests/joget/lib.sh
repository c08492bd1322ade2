# Helpers for the joget plugin tests (sourced by joget_test.sh and tests/bench/instances/run.sh).
# Needs: FERRY (ferry binary), JG_DIR (work directory), and a sourced joget-env file (JOGET_*).

jg_fail() { echo "FAIL: $*" >&2; exit 1; }
jg_assert() { # jg_assert "message" test-args...
  local msg=$1; shift
  "$@" || jg_fail "$msg"
}

# jg_config FILE JOURNAL SOURCE_OPTS_JSON SINK_PLUGIN SINK_OPTS_JSON [STAGE_EXTRA_JSON]
jg_config() {
  local file=$1 journal=$2 src=$3 sinkp=$4 sink=$5 extra=${6:-}
  cat > "$file" <<EOF
{ "journal": "$journal", "report": "$file.report",
  "stages": [ { "name": "instances",
    "source": { "plugin": "joget", "options": $src },
    "sink": { "plugin": "$sinkp", "options": $sink }${extra:+, $extra} } ] }
EOF
}

jg_src_opts() { # [dsn]
  if [ "${1:-dsn}" = dsn ]; then
    echo "{\"url\": \"$JOGET_SOURCE_URL\", \"password\": \"admin\", \"dsn\": \"$JOGET_SOURCE_DB\"}"
  else
    echo "{\"url\": \"$JOGET_SOURCE_URL\", \"password\": \"admin\"}"
  fi
}

jg_tgt_opts() { # [extra json members]; these tests carry instances without their form rows: no record check
  echo "{\"url\": \"$JOGET_TARGET_URL\", \"password\": \"admin\", \"dsn\": \"$JOGET_TARGET_DB\", \"master_user\": \"master\", \"master_password\": \"master-secret\", \"record_check\": false${1:+, $1}}"
}

# Inventory of a server into a jsonl file: jg_inventory URL DSN OUT (DSN may be empty: HTTP only); more
# source options (JSON members) in $JG_INV_OPTS
jg_inventory() {
  local url=$1 dsn=$2 out=$3 cfg
  cfg=$(mktemp "$JG_DIR/inv.XXXXXX.json")
  local opts="{\"url\": \"$url\", \"password\": \"admin\"${dsn:+, \"dsn\": \"$dsn\"}${JG_INV_OPTS:+, $JG_INV_OPTS}}"
  rm -f "$out"
  jg_config "$cfg" "$cfg.db" "$opts" jsonl "{\"path\": \"$out\"}"
  "$FERRY" run -c "$cfg" -q --progress none || jg_fail "inventory of $url failed"
  rm -f "$cfg" "$cfg".db* "$cfg.report"
}

# psql on a conninfo
jg_psql() { psql "$1" -X -A -t -q -v ON_ERROR_STOP=1 -c "$2"; }

# Checksum of the engine tables of a Joget database (source unchanged)
jg_checksum() {
  local t out=""
  for t in shkprocesses shkactivities shkassignmentstable shkprocessdata wf_process_link app_fd_leave; do
    out="$out $(jg_psql "$1" "SELECT md5(COALESCE(string_agg(x::text, '|' ORDER BY x::text), '')) FROM $t x")"
  done
  echo "$out"
}

jg_running_count() { # top-level running instances in a database
  jg_psql "$1" "SELECT count(*) FROM shkprocesses WHERE state IN (1000000,1000002,1000004) AND activityrequesterprocessid IS NULL"
}
jg_all_count() { jg_psql "$1" "SELECT count(*) FROM shkprocesses"; }

# Compares two inventories by record id: same definition (by process), requester, variables, open activities
# with states/assignees/accepted_by, sub-flow children. Prints differences; exit 1 when any.
jg_compare() {
  python3 - "$1" "$2" <<'EOF'
import json, os, sys
def load(p):
    d = {}
    for line in open(p):
        b = json.loads(line)["body"]
        def norm(b):
            return {"process": b["definition"].split("#")[2], "requester": b.get("requester"),
                    "variables": b["variables"],
                    "activities": sorted((a["def_id"], a["state"], tuple(sorted(a["assignees"])), a.get("accepted_by"))
                                         for a in b["activities"]),
                    "joins": [] if os.environ.get("JG_COMPARE_NO_JOINS") else
                             sorted((j["join"], a["def_id"], a["performer"]) for j in b["extra"].get("joins", [])
                                    for a in j["arrived"]),
                    "children": sorted(json.dumps(norm(c), sort_keys=True)
                                       for sf in b["extra"]["subflows"] for c in sf["children"])}
        d.setdefault(b["record_id"], []).append(norm(b))
    return d
a, b = load(sys.argv[1]), load(sys.argv[2])
bad = 0
for k in sorted(a):
    if a[k] != b.get(k):
        bad += 1
        print("DIFF record %s\n  source %s\n  target %s" % (k, json.dumps(a[k]), json.dumps(b.get(k))))
for k in sorted(b):
    if k not in a:
        bad += 1
        print("EXTRA record on the target: %s" % k)
print("compared %d source records with %d target records: %d differ" % (len(a), len(b), bad))
sys.exit(1 if bad else 0)
EOF
}
