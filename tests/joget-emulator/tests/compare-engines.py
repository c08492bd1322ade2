#!/usr/bin/env python3
"""Compares two running emulators loaded from the same fixture, one on PostgreSQL and one on MariaDB: the same calls
must get the same answers (status, content type, body). Reads first (auth matrix, lists with sorting and paging,
every instance, activity, variable, assignment and form row), then the same changes on both (start, accept,
complete with variables, reassign, variable set, activity start and abort, process abort), reading again after each.

usage: compare-engines.py PG_URL MY_URL FIXTURE     (URLs: http://127.0.0.1:PORT/jw/web/json)

Ids: process and activity ids come from the same counters on both engines, so they must be equal; a difference is
reported like any other. Only what depends on the clock is masked: dates ("2024-01-31 12:00 PM", Date.toString()),
the random record id of a start without recordId, the sso token. Prints one line per difference and
"N passed, N failed" at the end; exits 1 when anything differs."""
import json
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

PG, MY, FIXTURE = sys.argv[1], sys.argv[2], sys.argv[3]
passed = failed = 0
APP_DATE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d [AP]M$")
JAVA_DATE = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} \d\d \d\d:\d\d:\d\d UTC \d{4}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def call(base, method, path, params=None, auth=None, referer=True):
    q = urllib.parse.urlencode(params or {})
    url = base + "/" + urllib.parse.quote(path, safe="/:#") + ("?" + q if method == "GET" and q else "")
    data = q.encode() if method == "POST" else None
    req = urllib.request.Request(url, data=data, method=method)
    if referer:
        req.add_header("Referer", "http://127.0.0.1/jw/")
    if auth:
        import base64
        req.add_header("Authorization", "Basic " + base64.b64encode(auth.encode()).decode())
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Content-Type", ""), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Content-Type", ""), e.read().decode()


def mask(v):
    if isinstance(v, dict):
        return {k: ("<token>" if k == "token" else mask(x)) for k, x in v.items()}
    if isinstance(v, list):
        return [mask(x) for x in v]
    if isinstance(v, str) and (APP_DATE.match(v) or JAVA_DATE.match(v)):
        return "<date>"
    if isinstance(v, str) and UUID.match(v):
        return "<uuid>"
    return v


def both(method, path, params=None, auth=None, referer=True, what=None):
    """the call on both emulators; returns the PostgreSQL side's parsed body (None when not JSON)"""
    global passed, failed
    a = call(PG, method, path, params, auth, referer)
    b = call(MY, method, path, params, auth, referer)

    def parsed(r):
        try:
            return json.loads(r[2]) if r[2] else None
        except ValueError:
            return r[2]
    ja, jb = parsed(a), parsed(b)
    same = a[0] == b[0] and a[1] == b[1] and mask(ja) == mask(jb)
    label = what or "%s %s %s" % (method, path, json.dumps(params or {}, sort_keys=True))
    if same:
        passed += 1
    else:
        failed += 1
        print("DIFF %s\n  postgresql: %s %s %s\n  mariadb:    %s %s %s" % (label, a[0], a[1], a[2][:600], b[0], b[1], b[2][:600]))
    return ja


def rows(o):
    d = (o or {}).get("data") if isinstance(o, dict) else None
    return [] if d is None else d if isinstance(d, list) else [d]


ADMIN = {"j_username": "admin", "j_password": "admin"}


def user(u):
    return {"j_username": u, "j_password": "pw"}


def read_all():
    """every read endpoint for everything that runs or ran"""
    lst = both("GET", "console/monitor/running/list", dict(ADMIN, rows=100))
    pids = [r["id"] for r in rows(lst)]
    both("GET", "monitoring/running/process/list", dict(ADMIN, rows=100))
    for pid in pids:
        both("GET", "monitoring/process/view/" + pid, ADMIN)
        acts = both("GET", "monitoring/activity/list", dict(ADMIN, processId=pid, rows=100))
        for a in rows(acts):
            both("GET", "monitoring/activity/view/" + a["id"], ADMIN)
        both("GET", "workflow/variable/list/" + pid, ADMIN)
        both("GET", "workflow/process/variable/%s/days" % pid, ADMIN)
    for u in USERS:
        asg = both("GET", "workflow/assignment/list", dict(user(u), rows=100))
        for a in rows(asg):
            both("GET", "workflow/assignment/view/" + a["activityId"], user(u))
    return pids


fx = json.load(open(FIXTURE))
USERS = [u["username"] for u in fx.get("users", []) if u["username"] != "admin"]

# --- authentication, referer, errors
both("GET", "workflow/currentUsername")
both("GET", "workflow/currentUsername", ADMIN)
both("GET", "workflow/currentUsername", {"j_username": "admin", "j_password": "wrong"})
both("GET", "workflow/currentUsername", auth="mgr1:pw")
both("GET", "workflow/currentUsername", {"j_username": "master", "j_password": "master-secret", "loginAs": "hr1"})
both("GET", "workflow/currentUsername", {"j_username": "master", "j_password": "master-secret", "loginAs": "nobody"})
both("GET", "workflow/currentUsername", ADMIN, referer=False)
both("GET", "directory/user/sso", ADMIN)
both("GET", "console/monitor/running/list", user("mgr1"))
both("GET", "console/monitor/running/list")
both("GET", "workflow/process/abort/x", ADMIN)
both("GET", "monitoring/process/view/no_such_process", ADMIN)
both("GET", "monitoring/process/view/bad id", ADMIN)
both("GET", "no/such/endpoint", ADMIN)

# --- lists: sorting, paging, filters
for params in [dict(rows=3), dict(rows=3, start=2), dict(sort="id", desc="true"), dict(sort="name", desc="false"),
               dict(sort="id"), dict(processName="Leave", rows=100), dict(recordId="rec-000", rows=100),
               dict(appId="hrapp", version="3", rows=100), dict(requester="emp002", rows=100)]:
    both("GET", "console/monitor/running/list", dict(ADMIN, **params))
both("GET", "monitoring/activity/list", dict(ADMIN, rows=5, sort="name", desc="true"))
both("GET", "monitoring/activity/list", ADMIN)
both("GET", "workflow/process/list", ADMIN)
both("GET", "workflow/process/list", dict(ADMIN, allVersion="yes", sort="name", desc="true"))
both("GET", "workflow/process/list", dict(ADMIN, checkWhiteList="true"))
both("GET", "workflow/process/view/hrapp:latest:leave_request", ADMIN)
for r in fx.get("records", []):
    form = {"leave": "leave_form", "expense": "expense_form", "onboard": "onboard_form"}.get(r["table"])
    if form:
        both("GET", "data/form/load/hrapp/%s/%s" % (form, r["id"]), ADMIN)
pids = read_all()

# --- changes, the same on both, then everything read again
both("POST", "workflow/process/start/hrapp:latest:leave_request", dict(user("emp001"), var_days="5", recordId="cmp-1"))
both("POST", "workflow/process/start/hrapp:latest:leave_request", dict(user("emp001"), var_days="2"))
both("POST", "workflow/process/start/hrapp:latest:expense_claim", dict(user("emp003"), var_amount="250"))
both("POST", "workflow/process/start/hrapp:latest:onboarding", dict(user("emp004"), var_newcomer="Nina"))
both("POST", "workflow/process/start/hrapp:latest:leave_request", dict(user("emp001"), var_approved="true"))
both("POST", "workflow/process/start/hrapp:latest:expense_claim", {})
pids = read_all()
done = 0
for u in USERS:
    for a in rows(both("GET", "workflow/assignment/list", dict(user(u), rows=100)))[:2]:
        aid = a["activityId"]
        both("POST", "workflow/assignment/accept/" + aid, user(u))
        if done % 2:
            both("POST", "workflow/assignment/completeWithVariable/" + aid, dict(user(u), var_approved="true", var_status="ok"))
        else:
            both("POST", "workflow/assignment/complete/" + aid, user(u))
        done += 1
        both("POST", "workflow/assignment/complete/" + aid, user(u), what="second completion of " + aid)
read_all()
lst = rows(both("GET", "console/monitor/running/list", dict(ADMIN, rows=100, sort="id", desc="false")))
if len(lst) >= 3:
    p0, p1, p2 = lst[0]["id"], lst[1]["id"], lst[2]["id"]
    acts = rows(both("GET", "monitoring/activity/list", dict(ADMIN, processId=p0, rows=100)))
    open_acts = [a for a in acts if a["state"].startswith("open")]
    if open_acts:
        view = both("GET", "monitoring/activity/view/" + open_acts[0]["id"], ADMIN) or {}
        who = view.get("assignee")
        who = who[0] if isinstance(who, list) else who
        if who:
            both("POST", "monitoring/activity/reassign",
                 dict(ADMIN, activityId=open_acts[0]["id"], username="hr2", replaceUser=who))
    both("POST", "monitoring/process/variable/%s/days" % p0, dict(ADMIN, value="12"))
    both("POST", "monitoring/process/variable/%s/comment" % p0, dict(ADMIN, value="changed on both"))
    both("POST", "monitoring/activity/start/%s/hr_check" % p1, dict(ADMIN, abortCurrent="true"))
    both("POST", "monitoring/activity/abort/%s/approve" % p1, ADMIN)
    both("POST", "workflow/process/abort/" + p2, ADMIN)
    both("POST", "workflow/process/abort/" + p2, ADMIN, what="second abort")
read_all()
both("GET", "monitoring/activity/list", dict(ADMIN, rows=1000))
print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
