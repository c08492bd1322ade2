#!/usr/bin/env python3
"""Checks for the end-to-end tests of a Joget migration (standard library + psql / the mariadb client only).

A DSN is a libpq conninfo/URL (PostgreSQL, read with psql) or a mysql:// / mariadb:// URL (MariaDB/MySQL in
Joget's MySQL layout, read with the mariadb client: plain rows as JSON arrays, assembled here into the same
canonical JSON as the PostgreSQL queries give, so that a MariaDB source compares with a PostgreSQL target).

  jcheck.py instances DSN                       canonical JSON of the running top-level instances (stdout)
  jcheck.py compare SRC.json TGT.json           every source instance has exactly one target instance with the
                                                same record id, definition, requester, variables, open
                                                activities, assignees, arrivals waiting at AND-joins (with
                                                who completed the arrived activity) and sub-flow children;
                                                the last line counts instances, duplicates, missing, equal
  jcheck.py forms SRC_DSN TGT_DSN TABLE...      the target's rows equal the source's (the source's columns)
  jcheck.py tree DIR                            sha256, size, mtime and mode of every file below DIR (stdout)
  jcheck.py dbsum DSN [--exclude T,...]         md5 of the sorted rows of every table (stdout)
  jcheck.py tools-changed JOURNAL STAGE         per item: the preserve-records hook's tools_changed (stdout)
  jcheck.py complete URL DSN PASSWORDS          complete every open assignment of the target's running
                                                instances as its assignee, until every instance ended
  jcheck.py count DSN                           number of running top-level instances

Exit status 0 when equal / done, 1 with every difference printed otherwise.
"""
import hashlib, http.client, json, os, sqlite3, subprocess, sys, urllib.error, urllib.parse, urllib.request


def is_my(dsn):
    return dsn.startswith("mysql://") or dsn.startswith("mariadb://")


def my_args(dsn):
    u = urllib.parse.urlsplit(dsn)
    args = ["mariadb", "--batch", "--skip-column-names", "--raw", "--default-character-set=utf8mb4",
            "-h", u.hostname or "127.0.0.1", "-P", str(u.port or 3306), "-u", urllib.parse.unquote(u.username or "")]
    if u.password:
        args.append("-p" + urllib.parse.unquote(u.password))
    args.append(u.path.lstrip("/"))
    return args


def my_rows(dsn, sql):
    """Rows of a MariaDB query whose one column is JSON_ARRAY(...): a list of lists."""
    out = subprocess.run(my_args(dsn) + ["-e", sql], check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def psql_json(dsn, sql):
    out = subprocess.run(["psql", dsn, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql], check=True,
                         capture_output=True, text=True).stdout.strip()
    return json.loads(out) if out else None


# A process as JSON: definition, requester, state, variables, open activities with valid assignees, for the
# process row aliased P (state row PS); @EXTRA@ adds more fields.
PROC_JSON = """json_build_object(
  'id', P.id, 'def', P.pdefname, 'requester', P.resourcerequesterid, 'state', PS.name,
  'vars', COALESCE((SELECT json_object_agg(d.variabledefinitionid, COALESCE(d.variablevaluevchar,
            d.variablevaluelong::text, d.variablevaluedbl::text, d.variablevaluebool::text))
          FROM shkprocessdata d WHERE d.process = P.oid), '{}'::json),
  'acts', COALESCE((SELECT json_agg(json_build_object('def', a.activitydefinitionid, 'state', ast.name,
            'assignees', COALESCE((SELECT json_agg(x.resourceid ORDER BY x.resourceid) FROM shkassignmentstable x
                                   WHERE x.activityid = a.id AND x.isvalid), '[]'::json))
            ORDER BY a.activitydefinitionid, a.id)
          FROM shkactivities a JOIN shkactivitystates ast ON ast.oid = a.state
          WHERE a.processid = P.id AND ast.name LIKE 'open.%'), '[]'::json),
  'joins', COALESCE((SELECT json_agg(json_build_object('join', j.activitydefinitionid, 'from', ja.activitydefinitionid,
            'by', ja.resourceid) ORDER BY j.activitydefinitionid, ja.activitydefinitionid, ja.resourceid)
          FROM shkandjointable j JOIN shkactivities ja ON ja.oid = j.activity WHERE j.process = P.oid), '[]'::json)@EXTRA@)"""

CHILDREN = """, 'children', COALESCE((SELECT json_agg(@CHILD@ ORDER BY c.pdefname, c.id)
            FROM shkprocesses c JOIN shkprocessstates cps ON cps.oid = c.state
            WHERE c.activityrequesterprocessid = p.id AND cps.name LIKE 'open.%'), '[]'::json)""".replace(
    "@CHILD@", PROC_JSON.replace("P.", "c.").replace("PS.", "cps.").replace("@EXTRA@", ""))

INSTANCES_SQL = """
SELECT COALESCE(json_agg(x ORDER BY x->>'rid', x->>'id'), '[]'::json) FROM (
  SELECT json_build_object('rid', COALESCE(l.originprocessid, p.id))::jsonb || (@TOP@)::jsonb AS x
  FROM shkprocesses p JOIN shkprocessstates ps ON ps.oid = p.state LEFT JOIN wf_process_link l ON l.processid = p.id
  WHERE ps.name LIKE 'open.%' AND p.activityrequesterprocessid IS NULL) s
""".replace("@TOP@", PROC_JSON.replace("P.", "p.").replace("PS.", "ps.").replace("@EXTRA@", CHILDREN))


def my_var(vchar, lng, dbl, boo):
    """The text PostgreSQL's COALESCE(vchar, long::text, dbl::text, bool::text) gives."""
    if vchar is not None:
        return vchar
    if lng is not None:
        return str(lng)
    if dbl is not None:
        f = float(dbl)
        return str(int(f)) if f.is_integer() and abs(f) < 1e15 else repr(f)
    if boo is not None:
        return "true" if int(boo) else "false"
    return None


def my_instances(dsn):
    procs = my_rows(dsn, "SELECT JSON_ARRAY(CAST(p.oid AS CHAR), p.id, p.pdefname, p.resourcerequesterid, ps.name, "
                    "p.activityrequesterprocessid, COALESCE(l.originprocessid, p.id)) FROM SHKProcesses p JOIN "
                    "SHKProcessStates ps ON ps.oid = p.state LEFT JOIN wf_process_link l ON l.processid = p.id")
    vars_ = my_rows(dsn, "SELECT JSON_ARRAY(CAST(d.process AS CHAR), d.variabledefinitionid, d.variablevaluevchar, "
                    "d.variablevaluelong, CAST(d.variablevaluedbl AS CHAR), d.variablevaluebool) FROM SHKProcessData d")
    acts = my_rows(dsn, "SELECT JSON_ARRAY(a.processid, a.id, a.activitydefinitionid, s.name) FROM SHKActivities a "
                   "JOIN SHKActivityStates s ON s.oid = a.state WHERE s.name LIKE 'open.%'")
    asg = my_rows(dsn, "SELECT JSON_ARRAY(activityid, resourceid) FROM SHKAssignmentsTable WHERE isvalid")
    joins = my_rows(dsn, "SELECT JSON_ARRAY(CAST(j.process AS CHAR), j.activitydefinitionid, ja.activitydefinitionid, "
                    "ja.resourceid) FROM SHKAndJoinTable j JOIN SHKActivities ja ON ja.oid = j.activity")
    by_act = {}
    for aid, who in asg:
        by_act.setdefault(aid, []).append(who)
    vars_by, acts_by, joins_by = {}, {}, {}
    for oid, name, vc, lg, db, bo in vars_:
        vars_by.setdefault(oid, {})[name] = my_var(vc, lg, db, bo)
    for pid, aid, adef, st in acts:
        acts_by.setdefault(pid, []).append((adef, aid, st))
    for oid, jdef, fdef, by in joins:
        joins_by.setdefault(oid, []).append({"join": jdef, "from": fdef, "by": by})

    def proc(r):
        oid, pid, pdef, req, st = r[0], r[1], r[2], r[3], r[4]
        return {"id": pid, "def": pdef, "requester": req, "state": st, "vars": vars_by.get(oid, {}),
                "acts": [{"def": d, "state": s_, "assignees": sorted(by_act.get(a, []))}
                         for d, a, s_ in sorted(acts_by.get(pid, []))],
                "joins": sorted(joins_by.get(oid, []), key=lambda j: (j["join"], j["from"], j["by"] or ""))}
    res = []
    for r in procs:
        if r[5] is not None or not r[4].startswith("open."):
            continue
        x = proc(r)
        x["rid"] = r[6]
        x["children"] = [proc(c) for c in sorted((c for c in procs if c[5] == r[1] and c[4].startswith("open.")),
                                                 key=lambda c: (c[2], c[1]))]
        res.append(x)
    return sorted(res, key=lambda x: (x["rid"], x["id"]))


def instances(dsn):
    if is_my(dsn):
        return my_instances(dsn)
    return psql_json(dsn, INSTANCES_SQL)


def strip_proc(p):
    """What must be equal between a source process and its copy (ids differ)."""
    return {"def": p["def"], "requester": p["requester"], "state": p["state"], "vars": p["vars"],
            "acts": [{"def": a["def"], "state": a["state"], "assignees": a["assignees"]} for a in p["acts"]],
            "joins": p.get("joins", []),
            "children": sorted((strip_proc(c) for c in p.get("children", [])), key=json.dumps)}


def diff(path, a, b, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            diff("%s.%s" % (path, k), a.get(k), b.get(k), out)
    elif isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        for i, (x, y) in enumerate(zip(a, b)):
            diff("%s[%d]" % (path, i), x, y, out)
    elif a != b:
        out.append("%s: source %s, target %s" % (path, json.dumps(a), json.dumps(b)))


def compare(src_file, tgt_file):
    src = json.load(open(src_file))
    tgt = json.load(open(tgt_file))
    by_rid = {}
    for t in tgt:
        by_rid.setdefault(t["rid"], []).append(t)
    problems = []
    seen = set()
    for s in src:
        rid = s["rid"]
        if rid in seen:
            continue
        seen.add(rid)
        srcs = [x for x in src if x["rid"] == rid]
        tgts = by_rid.get(rid, [])
        if len(tgts) != len(srcs):
            problems.append("record %s: %d source instance(s) (%s), %d target instance(s) (%s)" % (
                rid, len(srcs), " ".join(x["id"] for x in srcs), len(tgts), " ".join(x["id"] for x in tgts)))
            continue
        for sx, tx in zip(sorted(srcs, key=lambda x: json.dumps(strip_proc(x), sort_keys=True)),
                          sorted(tgts, key=lambda x: json.dumps(strip_proc(x), sort_keys=True))):
            d = []
            diff("", strip_proc(sx), strip_proc(tx), d)
            for line in d:
                problems.append("record %s (source %s, target %s)%s" % (rid, sx["id"], tx["id"], line))
    for rid, ts in by_rid.items():
        if rid not in seen:
            problems.append("record %s: target instance(s) %s have no source instance" % (
                rid, " ".join(t["id"] for t in ts)))
    dup = sum(max(0, len(by_rid.get(r, [])) - len([x for x in src if x["rid"] == r])) for r in seen)
    dup += sum(len(ts) for r, ts in by_rid.items() if r not in seen)
    missing = sum(max(0, len([x for x in src if x["rid"] == r]) - len(by_rid.get(r, []))) for r in seen)
    unequal = len({p.split(" ")[1] for p in problems if p.startswith("record ") and " (source " in p})
    for p in problems:
        print(p)
    print("compare: %d source instance(s), %d target instance(s), %d difference(s)" % (len(src), len(tgt),
                                                                                        len(problems)))
    print("compare: instances %d, duplicates %d, missing %d, equal %d" % (
        len(src), dup, missing, len(src) - missing - unequal))
    return 1 if problems else 0


def my_columns(dsn, table):
    return [r[0] for r in my_rows(dsn, "SELECT JSON_ARRAY(column_name) FROM information_schema.columns WHERE "
                                  "table_schema = DATABASE() AND table_name = '%s' ORDER BY ordinal_position" % table)]


def rows_by_id(dsn, table, cols):
    """{id: [text of each column]} of a table, on either engine (PostgreSQL: col::text, UTC)."""
    if is_my(dsn):
        have = {c.lower(): c for c in my_columns(dsn, table)}
        sel = ", ".join("CAST(`%s` AS CHAR)" % have.get(c.lower(), c).replace("`", "``") for c in cols)
        return {r[0]: r[1:] for r in my_rows(dsn, "SELECT JSON_ARRAY(CAST(id AS CHAR), %s) FROM `%s`" % (sel, table))}
    sel = ", ".join('"%s"::text' % c.lower().replace('"', '""') for c in cols)
    q = ("SELECT COALESCE(json_object_agg(id, r), '{}'::json) FROM (SELECT id::text AS id, json_build_array(%s) "
         "AS r FROM %s) s" % (sel, table.lower()))
    return psql_json(dsn, "SET TimeZone = 'UTC'; " + q) or {}


def norm_cell(v):
    """Across engines: a PostgreSQL timestamp with time zone in UTC ('... 10:00:00+00') is MySQL's datetime text,
    and MySQL's datetime(6) fraction '.000000' (PostgreSQL prints no zero fraction) is dropped, as trailing
    zeros of any fraction are."""
    if isinstance(v, str) and len(v) >= 19 and v[4] == "-" and v[10] == " " and v[13] == ":":
        if len(v) >= 22 and v.endswith("+00"):
            v = v[:-3]
        if len(v) > 19 and v[19] == ".":
            v = v[:20] + v[20:].rstrip("0")
            v = v.rstrip(".")
    return v


def forms(src_dsn, tgt_dsn, tables):
    if is_my(src_dsn) or is_my(tgt_dsn):
        return forms_any(src_dsn, tgt_dsn, tables)
    problems = []
    for t in tables:
        cols = psql_json(src_dsn, "SELECT json_agg(column_name ORDER BY ordinal_position) FROM "
                         "information_schema.columns WHERE table_schema = current_schema() AND table_name = '%s'" % t)
        if not cols:
            problems.append("%s: no such table on the source" % t)
            continue
        sel = ", ".join('"%s"::text' % c.replace('"', '""') for c in cols)
        q = ("SELECT COALESCE(json_object_agg(id, r), '{}'::json) FROM (SELECT id::text AS id, json_build_array(%s) "
             "AS r FROM %s) s" % (sel, t))
        a = psql_json(src_dsn, "SET TimeZone = 'UTC'; " + q)
        try:
            b = psql_json(tgt_dsn, "SET TimeZone = 'UTC'; " + q)
        except subprocess.CalledProcessError as e:
            problems.append("%s: cannot read the target's rows: %s" % (t, e.stderr.strip()))
            continue
        for rid in sorted(set(a) | set(b)):
            if rid not in b:
                problems.append("%s/%s: missing on the target" % (t, rid))
            elif rid not in a:
                problems.append("%s/%s: on the target only" % (t, rid))
            elif a[rid] != b[rid]:
                for c, x, y in zip(cols, a[rid], b[rid]):
                    if x != y:
                        problems.append("%s/%s.%s: source %s, target %s" % (t, rid, c, json.dumps(x), json.dumps(y)))
        print("forms: %s: %d source row(s), %d target row(s)" % (t, len(a), len(b)))
    for p in problems:
        print(p)
    return 1 if problems else 0


def forms_any(src_dsn, tgt_dsn, tables):
    """forms when one side (or both) is MariaDB: the source's columns, matched by name case-insensitively."""
    problems = []
    cross = is_my(src_dsn) != is_my(tgt_dsn)
    for t in tables:
        if is_my(src_dsn):
            cols = my_columns(src_dsn, t)
        else:
            cols = psql_json(src_dsn, "SELECT json_agg(column_name ORDER BY ordinal_position) FROM "
                             "information_schema.columns WHERE table_schema = current_schema() AND table_name = '%s'"
                             % t)
        if not cols:
            problems.append("%s: no such table on the source" % t)
            continue
        a = rows_by_id(src_dsn, t, cols)
        try:
            b = rows_by_id(tgt_dsn, t, cols)
        except subprocess.CalledProcessError as e:
            problems.append("%s: cannot read the target's rows: %s" % (t, e.stderr.strip()))
            continue
        for rid in sorted(set(a) | set(b)):
            if rid not in b:
                problems.append("%s/%s: missing on the target" % (t, rid))
            elif rid not in a:
                problems.append("%s/%s: on the target only" % (t, rid))
            else:
                for c, x, y in zip(cols, a[rid], b[rid]):
                    if (norm_cell(x) if cross else x) != (norm_cell(y) if cross else y):
                        problems.append("%s/%s.%s: source %s, target %s" % (t, rid, c, json.dumps(x), json.dumps(y)))
        print("forms: %s: %d source row(s), %d target row(s)" % (t, len(a), len(b)))
    for p in problems:
        print(p)
    return 1 if problems else 0


def tree(d):
    res = {}
    for root, dirs, files in os.walk(d):
        dirs.sort()
        for f in sorted(files):
            path = os.path.join(root, f)
            st = os.lstat(path)
            h = hashlib.sha256()
            with open(path, "rb") as fh:
                for chunk in iter(lambda: fh.read(1 << 20), b""):
                    h.update(chunk)
            res[os.path.relpath(path, d)] = {"sha256": h.hexdigest(), "size": st.st_size,
                                             "mtime": st.st_mtime_ns // 1000000000, "mode": oct(st.st_mode & 0o7777)}
    print(json.dumps(res, sort_keys=True, indent=0))
    return 0


def my_dbsum(dsn, exclude):
    cols = {}
    for t, c in my_rows(dsn, "SELECT JSON_ARRAY(c.table_name, c.column_name) FROM information_schema.columns c JOIN "
                        "information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name "
                        "WHERE c.table_schema = DATABASE() AND t.table_type = 'BASE TABLE' ORDER BY c.table_name, "
                        "c.ordinal_position"):
        cols.setdefault(t, []).append(c)
    tables = [t for t in sorted(cols) if t not in exclude]
    # one client call for every table (a call costs more than the rows of a test database)
    stmts = ["SELECT JSON_ARRAY('%s', JSON_ARRAY(%s)) FROM `%s`" % (
        t, ", ".join("CAST(`%s` AS CHAR)" % c.replace("`", "``") for c in cols[t]), t) for t in tables]
    rows_of = {t: [] for t in tables}
    for t, r in (my_rows(dsn, ";\n".join(stmts)) if stmts else []):
        rows_of[t].append(json.dumps(r))
    lines = []
    for t in tables:
        rows = sorted(rows_of[t])
        lines.append("%s|%s %d\n" % (t, hashlib.md5("\n".join(rows).encode()).hexdigest(), len(rows)))
    sys.stdout.write("".join(sorted(lines)))
    return 0


def dbsum(dsn, exclude):
    if is_my(dsn):
        return my_dbsum(dsn, exclude)
    tables = psql_json(dsn, "SELECT json_agg(table_name ORDER BY table_name) FROM information_schema.tables WHERE "
                       "table_schema = current_schema() AND table_type = 'BASE TABLE'") or []
    parts = ["SELECT '%s', md5(COALESCE(string_agg(t::text, E'\\n' ORDER BY t::text), '')) || ' ' || count(*) "
             "FROM %s t" % (t, '"%s"' % t) for t in tables if t not in exclude]
    if not parts:
        return 0
    out = subprocess.run(["psql", dsn, "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", " UNION ALL ".join(parts)],
                         check=True, capture_output=True, text=True).stdout
    sys.stdout.write("".join(sorted(out.splitlines(True))))
    return 0


def tools_changed(journal, stage):
    db = sqlite3.connect("file:%s?mode=ro" % journal, uri=True)
    res = {}
    for key, status, state in db.execute("SELECT key, status, state FROM items WHERE stage = ?", (stage,)):
        hooks = json.loads(state).get("hooks", {})
        for name, h in hooks.items():
            if name.endswith(":preserve-records"):
                res[key] = {"status": status, "restored": h.get("restored", False),
                            "tools_changed": h.get("tools_changed", [])}
    print(json.dumps(res, sort_keys=True, indent=1))
    return 0


# ---- completing the migrated instances through the API, as their assignees -----------------------------------
class Api:
    def __init__(self, url, passwords):
        self.base = url.rstrip("/") + "/web/json/"
        host = urllib.parse.urlsplit(url).hostname
        self.referer = "http://%s/jw/" % host
        self.passwords = passwords
        self.calls = 0

    def call(self, path, user, params=None, post=False):
        q = {"j_username": user, "j_password": self.passwords.get(user, self.passwords.get("*", ""))}
        q.update(params or {})
        data = urllib.parse.urlencode(q).encode()
        url = self.base + path
        if post:
            req = urllib.request.Request(url, data=data, method="POST")
        else:
            req = urllib.request.Request(url + "?" + data.decode())
        req.add_header("Referer", self.referer)
        self.calls += 1
        try:
            with urllib.request.urlopen(req, timeout=60) as r:
                body = r.read()
                return r.status, json.loads(body) if body.strip() else {}
        except urllib.error.HTTPError as e:
            return e.code, {}
        except (OSError, ValueError, http.client.HTTPException) as e:  # a faulty server: reset, lost or cut answer
            return 0, {"error": str(e)}


def as_list(v):
    if v is None:
        return []
    return v if isinstance(v, list) else [v]


OPEN_SQL = """
SELECT COALESCE(json_agg(json_build_object('pid', a.processid, 'aid', a.id, 'def', a.activitydefinitionid,
  'assignees', (SELECT json_agg(x.resourceid ORDER BY x.resourceid) FROM shkassignmentstable x
                WHERE x.activityid = a.id AND x.isvalid)) ORDER BY a.processid, a.id), '[]'::json)
FROM shkactivities a JOIN shkactivitystates s ON s.oid = a.state
WHERE s.name LIKE 'open.%' AND EXISTS (SELECT 1 FROM shkassignmentstable x WHERE x.activityid = a.id AND x.isvalid)
"""

ENDED_SQL = """
SELECT json_build_object(
 'running', (SELECT count(*) FROM shkprocesses p JOIN shkprocessstates s ON s.oid = p.state WHERE s.name LIKE 'open.%'),
 'archived', (SELECT COALESCE(json_object_agg(processid, state), '{}'::json) FROM wf_history_process))
"""


def my_open(dsn):
    asg = {}
    for aid, who in my_rows(dsn, "SELECT JSON_ARRAY(activityid, resourceid) FROM SHKAssignmentsTable WHERE isvalid"):
        asg.setdefault(aid, []).append(who)
    acts = my_rows(dsn, "SELECT JSON_ARRAY(a.processid, a.id, a.activitydefinitionid) FROM SHKActivities a JOIN "
                   "SHKActivityStates s ON s.oid = a.state WHERE s.name LIKE 'open.%' ORDER BY a.processid, a.id")
    return [{"pid": p, "aid": a, "def": d, "assignees": sorted(asg[a])} for p, a, d in acts if a in asg]


def my_ended(dsn):
    running = my_rows(dsn, "SELECT JSON_ARRAY(count(*)) FROM SHKProcesses p JOIN SHKProcessStates s ON s.oid = p.state "
                      "WHERE s.name LIKE 'open.%'")[0][0]
    archived = {p: st for p, st in my_rows(dsn, "SELECT JSON_ARRAY(processid, state) FROM wf_history_process")}
    return {"running": running, "archived": archived}


def complete(url, dsn, passwords):
    """Completes every open assignment as its assignee, round after round, until nothing is open. Against a
    faulty server a call may fail or its answer be lost: the next round reads the database again and only
    what is still open is tried again. Problems are what remains at the end."""
    api = Api(url, json.loads(passwords))
    before = instances(dsn)
    tops = [p["id"] for p in before]
    problems = []
    done = failed_calls = 0
    last = []
    for rnd in range(200):
        todo = my_open(dsn) if is_my(dsn) else psql_json(dsn, OPEN_SQL)
        if not todo:
            break
        last = []
        for a in todo:
            user = a["assignees"][0]
            st, lst = api.call("workflow/assignment/list", user, {"processId": a["pid"], "rows": "100"})
            ids = [r.get("activityId") for r in as_list(lst.get("data"))]
            if st != 200 or a["aid"] not in ids:
                failed_calls += 1
                last.append("activity %s of %s: not in %s's assignment list (HTTP %d, %s)" % (
                    a["aid"], a["pid"], user, st, ids))
                continue
            st, res = api.call("workflow/assignment/complete/" + urllib.parse.quote(a["aid"], safe=""), user,
                               post=True)
            if st != 200 or res.get("status") != "completed":
                failed_calls += 1
                last.append("activity %s of %s: completing as %s: HTTP %d %s" % (a["aid"], a["pid"], user, st,
                                                                               json.dumps(res)))
                continue
            done += 1
    problems += last
    ended = my_ended(dsn) if is_my(dsn) else psql_json(dsn, ENDED_SQL)
    for pid in tops:
        state = ended["archived"].get(pid)
        if state != "closed.completed":
            problems.append("instance %s did not complete (archived state: %s)" % (pid, state))
    if ended["running"]:
        problems.append("%d instance(s) still running on the target" % ended["running"])
    for p in problems:
        print(p)
    print("complete: %d instance(s), %d assignment(s) completed as their assignees, %d API call(s) (%d failed and "
          "tried again), %d problem(s)" % (len(tops), done, api.calls, failed_calls, len(problems)))
    return 1 if problems else 0


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    cmd, args = argv[1], argv[2:]
    if cmd == "instances":
        print(json.dumps(instances(args[0]), sort_keys=True, indent=1))
        return 0
    if cmd == "count":
        print(len(instances(args[0])))
        return 0
    if cmd == "compare":
        return compare(args[0], args[1])
    if cmd == "forms":
        return forms(args[0], args[1], args[2:])
    if cmd == "tree":
        return tree(args[0])
    if cmd == "dbsum":
        excl = args[2].split(",") if len(args) > 2 and args[1] == "--exclude" else []
        return dbsum(args[0], excl)
    if cmd == "tools-changed":
        return tools_changed(args[0], args[1])
    if cmd == "complete":
        return complete(args[0], args[1], args[2])
    print("jcheck: unknown command %s" % cmd, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
