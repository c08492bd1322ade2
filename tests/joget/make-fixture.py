#!/usr/bin/env python3
"""Fixtures for the joget plugin tests (emulator fixture format, tests/joget-emulator/README.md).

usage: make-fixture.py --instances N --out DIR

Writes DIR/source.json (N running instances), DIR/target.json (the same apps and users, no data) and
DIR/target-broken.json (the target with problems for plan: app opsapp missing, activity acknowledge missing
from leave_request, user hr2 missing) and DIR/target-v5.json (hrapp as app version 3 = package version 5).

Apps: hrapp (version 2 = package 3, published) with leave_request (start tool overwrites the status
variable and app_fd_leave.c_status; route on days; approve by group managers; hr_check by hr1+hr2;
acknowledge by the performer of approve), expense_claim (AND split: finance_review + manager_ok, AND join),
onboarding (synchronous sub-flow provision_account, child waits at create_account); opsapp (package 1,
published) with ticket (triage by the requester).
Instances round-robin over 8 kinds:
  0 leave at approve (the first manual activity; the start path lands there)
  1 leave at hr_check with days > 3 (a later activity: abort + activity/start), status changed by a user
  2 expense at finance_review + manager_ok (two parallel activities)
  3 onboarding inside its sub-flow (child at create_account)
  4 leave at acknowledge, assigned to the performer of approve (the target computes someone else: reassign)
  5 leave at approve, accepted by mgr1 (accept on the target)
  6 expense with only manager_ok open (finance_review done by fin1/fin2 and counted by the AND-join: the sink
    completes it on the target as that user, so the target's join counts it too)
  7 opsapp ticket at triage
Variables of leave include a Boolean (approved, true on some) and my_var_x (a name containing var_).
"""
import argparse, copy, json, os

def leave():
    return {
        "id": "leave_request", "name": "Leave Request",
        "variables": [
            {"id": "status", "type": "String", "initial": "new"},
            {"id": "days", "type": "Long", "initial": "1"},
            {"id": "rate", "type": "Double", "initial": "1.0"},
            {"id": "approved", "type": "Boolean", "initial": "false"},
            {"id": "comment", "type": "String"},
            {"id": "my_var_x", "type": "String"},
        ],
        "participants": {
            "manager": {"type": "group", "groups": ["managers"]},
            "hr": {"type": "user", "users": ["hr1", "hr2"]},
            "approver_again": {"type": "performer", "activity": "approve"},
        },
        "activities": [
            {"id": "stamp", "type": "tool", "actions": [
                {"type": "setColumn", "table": "leave", "column": "status", "value": "submitted"},
                {"type": "setVariable", "variable": "status", "value": "submitted"}]},
            {"id": "check_days", "type": "route"},
            {"id": "approve", "name": "Approve Leave", "type": "manual", "participant": "manager"},
            {"id": "hr_check", "name": "HR Check", "type": "manual", "participant": "hr"},
            {"id": "acknowledge", "name": "Acknowledge", "type": "manual", "participant": "approver_again"},
        ],
        "transitions": [
            {"from": "stamp", "to": "check_days"},
            {"from": "check_days", "to": "approve", "condition": {"variable": "days", "op": ">", "value": 3}},
            {"from": "check_days", "to": "hr_check", "otherwise": True},
            {"from": "approve", "to": "hr_check"},
            {"from": "hr_check", "to": "acknowledge", "condition": {"variable": "days", "op": ">", "value": 3}},
        ],
    }

def expense():
    return {
        "id": "expense_claim", "name": "Expense Claim",
        "variables": [{"id": "amount", "type": "Double", "initial": "0"}, {"id": "state", "type": "String"}],
        "participants": {"requester": {"type": "requester"}, "finance": {"type": "group", "groups": ["finance"]},
                         "boss": {"type": "user", "users": ["mgr1"]}},
        "activities": [
            {"id": "open_claim", "type": "tool", "actions": [
                {"type": "setColumn", "table": "expense", "column": "state", "value": "open"}]},
            {"id": "fork", "type": "route", "split": "and"},
            {"id": "finance_review", "name": "Finance Review", "type": "manual", "participant": "finance"},
            {"id": "manager_ok", "name": "Manager OK", "type": "manual", "participant": "boss"},
            {"id": "merge", "type": "route", "join": "and"},
            {"id": "pay", "name": "Pay", "type": "manual", "participant": "requester"},
        ],
        "transitions": [
            {"from": "open_claim", "to": "fork"}, {"from": "fork", "to": "finance_review"},
            {"from": "fork", "to": "manager_ok"}, {"from": "finance_review", "to": "merge"},
            {"from": "manager_ok", "to": "merge"}, {"from": "merge", "to": "pay"},
        ],
    }

def onboarding():
    return {
        "id": "onboarding", "name": "Onboarding",
        "variables": [{"id": "step", "type": "String"}, {"id": "employee", "type": "String"}],
        "participants": {"requester": {"type": "requester"}},
        "activities": [
            {"id": "prepare", "type": "tool", "actions": [{"type": "setVariable", "variable": "step", "value": "prepared"}]},
            {"id": "provision", "type": "subflow", "subflow": "provision_account"},
            {"id": "welcome", "name": "Welcome", "type": "manual", "participant": "requester"},
        ],
        "transitions": [{"from": "prepare", "to": "provision"}, {"from": "provision", "to": "welcome"}],
    }

def provision():
    return {
        "id": "provision_account", "name": "Provision Account",
        "variables": [{"id": "employee", "type": "String"}],
        "participants": {"it": {"type": "user", "users": ["it1"]}},
        "activities": [{"id": "create_account", "name": "Create Account", "type": "manual", "participant": "it"}],
        "transitions": [],
    }

def ticket():
    return {
        "id": "ticket", "name": "Ticket", "variables": [{"id": "topic", "type": "String"}],
        "participants": {"requester": {"type": "requester"}},
        "activities": [{"id": "triage", "name": "Triage", "type": "manual", "participant": "requester"}],
        "transitions": [],
    }

FORMS = [{"id": "leave_form", "table": "leave", "fields": ["status", "days"]},
         {"id": "expense_form", "table": "expense", "fields": ["state", "amount"]},
         {"id": "onboard_form", "table": "onboard", "fields": ["employee"]}]

def apps():
    return [
        {"id": "hrapp", "version": 2, "packageVersion": 3, "name": "HR", "published": True, "forms": FORMS,
         "processes": [leave(), expense(), onboarding(), provision()]},
        {"id": "opsapp", "version": 1, "packageVersion": 1, "name": "Ops", "published": True,
         "processes": [ticket()]},
    ]

def users(n_emp):
    u = [{"username": "admin", "password": "admin", "roles": ["ROLE_ADMIN"]},
         {"username": "mgr1", "password": "pw", "groups": ["managers"]},
         {"username": "mgr2", "password": "pw", "groups": ["managers"]},
         {"username": "hr1", "password": "pw"}, {"username": "hr2", "password": "pw"},
         {"username": "fin1", "password": "pw", "groups": ["finance"]},
         {"username": "fin2", "password": "pw", "groups": ["finance"]},
         {"username": "it1", "password": "pw"}]
    for i in range(1, n_emp + 1):
        u.append({"username": "emp%02d" % i, "password": "pw", "roles": ["ROLE_USER"]})
    return u

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    settings = {"jsonpWhitelist": "", "masterLoginUsername": "master", "masterLoginPassword": "master-secret",
                "deleteProcessOnCompletion": "archive"}
    groups = [{"id": "managers", "name": "Managers"}, {"id": "finance", "name": "Finance"}]
    n_emp = 6
    target = {"settings": settings, "groups": groups, "users": users(n_emp), "apps": apps()}
    records, instances = [], []
    for i in range(a.instances):
        kind = i % 8
        emp = "emp%02d" % (1 + i % n_emp)
        rid = "rec-%04d" % i
        lv = {"process": "hrapp:3:leave_request", "requester": emp, "recordId": rid}
        lvars = {"status": "submitted", "days": 5 + i % 7, "rate": 1.5, "approved": i % 3 == 0, "comment": "c%d" % i,
                 "my_var_x": "x-%d" % i}
        if kind in (0, 1, 4, 5):
            records.append({"table": "leave", "id": rid, "createdBy": emp,
                            "values": {"status": "submitted", "days": str(lvars["days"])}})
            inst = dict(lv, variables=lvars)
            if kind == 0:
                inst["activities"] = [{"id": "approve", "assignees": ["mgr1", "mgr2"]}]
            elif kind == 1:
                inst["variables"] = dict(lvars, status="approved by mgr1")
                inst["activities"] = [{"id": "hr_check", "assignees": ["hr1", "hr2"]}]
            elif kind == 4:
                inst["variables"] = dict(lvars, status="checked")
                inst["activities"] = [{"id": "acknowledge", "assignees": ["mgr2"]}]
            else:
                inst["activities"] = [{"id": "approve", "assignees": ["mgr1"], "accepted": True}]
        elif kind in (2, 6):
            records.append({"table": "expense", "id": rid, "createdBy": emp, "values": {"state": "open"}})
            inst = {"process": "hrapp:3:expense_claim", "requester": emp, "recordId": rid,
                    "variables": {"amount": 10.5 + i, "state": "open"}}
            if kind == 2:
                inst["activities"] = [{"id": "finance_review", "assignees": ["fin1", "fin2"]},
                                      {"id": "manager_ok", "assignees": ["mgr1"]}]
            else:  # finance_review already arrived at the AND-join: the join counts it (SHKAndJoinTable)
                inst["activities"] = [{"id": "manager_ok", "assignees": ["mgr1"]}]
                inst["arrived"] = [{"id": "finance_review", "performer": "fin%d" % (1 + i % 2)}]
        elif kind == 3:
            records.append({"table": "onboard", "id": rid, "createdBy": emp, "values": {"employee": "new-%d" % i}})
            inst = {"process": "hrapp:3:onboarding", "requester": emp, "recordId": rid,
                    "variables": {"step": "prepared", "employee": "new-%d" % i},
                    "activities": [{"id": "provision", "children": [
                        {"variables": {"employee": "new-%d" % i},
                         "activities": [{"id": "create_account", "assignees": ["it1"]}]}]}]}
        else:
            inst = {"process": "opsapp:1:ticket", "requester": emp, "recordId": rid,
                    "variables": {"topic": "printer %d" % i},
                    "activities": [{"id": "triage", "assignees": [emp]}]}
        instances.append(inst)
    source = dict(copy.deepcopy(target), records=records, instances=instances)
    broken = copy.deepcopy(target)
    broken["apps"] = [x for x in broken["apps"] if x["id"] != "opsapp"]
    lr = broken["apps"][0]["processes"][0]
    lr["activities"] = [x for x in lr["activities"] if x["id"] != "acknowledge"]
    lr["transitions"] = [x for x in lr["transitions"] if x["to"] != "acknowledge"]
    del lr["participants"]["approver_again"]
    broken["users"] = [x for x in broken["users"] if x["username"] != "hr2"]
    v5 = copy.deepcopy(target)  # hrapp imported again on the target: app version 3 = package version 5
    v5["apps"][0]["version"] = 3
    v5["apps"][0]["packageVersion"] = 5
    for name, obj in (("source.json", source), ("target.json", target), ("target-broken.json", broken),
                      ("target-v5.json", v5)):
        with open(os.path.join(a.out, name), "w") as f:
            json.dump(obj, f, indent=1)

if __name__ == "__main__":
    main()
