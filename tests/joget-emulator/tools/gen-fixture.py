#!/usr/bin/env python3
"""Write a realistic "source" fixture with N running instances and the matching app-only "target" fixture.

usage: gen-fixture.py --instances N --source FILE --target FILE [--seed S] [--file-size BYTES] [--files-every K]
                      [--joins N]

Apps: hrapp (app version 2 = package version 3, published, with the user-notification audit trail as a default
plugin; app version 1 = package 1, unpublished) with processes
  leave_request  tool 'stamp' overwrites app_fd_leave.c_status at start, route on days, manual approve (deadline
                 2 days) / hr_check, acknowledge assigned to the performer of approve
  expense_claim  tool, AND split into finance + manager_ok, AND join, manual pay
  onboarding     tool, sub-flow provision_account (manual create_account), manual welcome
Instances are spread round-robin over: leave at approve (first manual), leave at hr_check (a later one), expense at
finance + manager_ok (two parallel activities), onboarding inside its sub-flow (child waiting at create_account).
With --joins N every N-th expense instance waits at a partly joined AND-join instead: finance_review has arrived
(performed by fin1 or fin2), manager_ok is open.
Standard library only; output is deterministic for a given seed.
"""
import argparse, json, random, sys

APP = "hrapp"
AUDIT_PLUGIN = "org.joget.apps.app.lib.UserNotificationAuditTrail"

def processes():
    leave = {
        "id": "leave_request", "name": "Leave Request",
        "variables": [
            {"id": "status", "type": "String", "initial": "new"},
            {"id": "days", "type": "Long", "initial": "1"},
            {"id": "rate", "type": "Double", "initial": "1.0"},
            {"id": "approved", "type": "Boolean", "initial": "false"},
            {"id": "comment", "type": "String"},
        ],
        "participants": {
            "requester": {"type": "requester"},
            "manager": {"type": "group", "groups": ["managers"]},
            "hr": {"type": "user", "users": ["hr1", "hr2"]},
            "approver_again": {"type": "performer", "activity": "approve"},
        },
        "activities": [
            {"id": "stamp", "type": "tool", "actions": [
                {"type": "setColumn", "table": "leave", "column": "status", "value": "submitted"},
                {"type": "setVariable", "variable": "status", "value": "submitted"}]},
            {"id": "check_days", "type": "route"},
            {"id": "approve", "name": "Approve Leave", "type": "manual", "participant": "manager",
             "deadline_ms": 2 * 24 * 3600 * 1000},
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
    expense = {
        "id": "expense_claim", "name": "Expense Claim",
        "variables": [{"id": "amount", "type": "Double", "initial": "0"}, {"id": "state", "type": "String"}],
        "participants": {
            "requester": {"type": "requester"},
            "finance": {"type": "group", "groups": ["finance"]},
            "boss": {"type": "user", "users": ["mgr1"]},
        },
        "whitelist": {"type": "role", "value": "loggedInUser"},
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
            {"from": "open_claim", "to": "fork"},
            {"from": "fork", "to": "finance_review"},
            {"from": "fork", "to": "manager_ok"},
            {"from": "finance_review", "to": "merge"},
            {"from": "manager_ok", "to": "merge"},
            {"from": "merge", "to": "pay"},
        ],
    }
    onboarding = {
        "id": "onboarding", "name": "Onboarding",
        "variables": [{"id": "step", "type": "String"}, {"id": "employee", "type": "String"}],
        "participants": {"requester": {"type": "requester"}},
        "activities": [
            {"id": "prepare", "type": "tool", "actions": [{"type": "setVariable", "variable": "step", "value": "prepared"},
                                                          {"type": "setColumn", "table": "onboard", "column": "step",
                                                           "value": "#variable.step#"}]},
            {"id": "provision", "type": "subflow", "subflow": "provision_account"},
            {"id": "welcome", "name": "Welcome", "type": "manual", "participant": "requester"},
        ],
        "transitions": [{"from": "prepare", "to": "provision"}, {"from": "provision", "to": "welcome"}],
    }
    provision = {
        "id": "provision_account", "name": "Provision Account",
        "variables": [{"id": "employee", "type": "String"}],
        "participants": {"it": {"type": "user", "users": ["it1"]}},
        "activities": [{"id": "create_account", "name": "Create Account", "type": "manual", "participant": "it"}],
        "transitions": [],
    }
    return [leave, expense, onboarding, provision]

def apps():
    forms = [
        {"id": "leave_form", "table": "leave", "fields": ["status", "days", "reason", "attachment"]},
        {"id": "expense_form", "table": "expense", "fields": ["state", "amount", "receipt"]},
        {"id": "onboard_form", "table": "onboard", "fields": ["step", "employee"]},
    ]
    return [
        {"id": APP, "version": 1, "packageVersion": 1, "name": "HR", "published": False, "forms": forms,
         "processes": processes()},
        {"id": APP, "version": 2, "packageVersion": 3, "name": "HR", "published": True, "forms": forms,
         "defaultPlugins": [{"id": AUDIT_PLUGIN, "pluginName": AUDIT_PLUGIN,
                             "description": "e-mails the assignees of every new assignment"}],
         "processes": processes()},
    ]

def directory(n_emp):
    users = [{"username": "admin", "password": "admin", "firstName": "Admin", "roles": ["ROLE_ADMIN"]},
             {"username": "mgr1", "password": "pw", "roles": ["ROLE_USER"], "groups": ["managers"]},
             {"username": "mgr2", "password": "pw", "roles": ["ROLE_USER"], "groups": ["managers"]},
             {"username": "hr1", "password": "pw", "roles": ["ROLE_USER"]},
             {"username": "hr2", "password": "pw", "roles": ["ROLE_USER"]},
             {"username": "fin1", "password": "pw", "roles": ["ROLE_USER"], "groups": ["finance"]},
             {"username": "fin2", "password": "pw", "roles": ["ROLE_USER"], "groups": ["finance"]},
             {"username": "it1", "password": "pw", "roles": ["ROLE_USER"]}]
    for i in range(1, n_emp + 1):
        users.append({"username": "emp%03d" % i, "password": "pw", "firstName": "Employee", "lastName": str(i),
                      "roles": ["ROLE_USER"]})
    groups = [{"id": "managers", "name": "Managers"}, {"id": "finance", "name": "Finance"}]
    settings = {"jsonpWhitelist": "", "masterLoginUsername": "master", "masterLoginPassword": "master-secret",
                "deleteProcessOnCompletion": "archive"}
    return users, groups, settings

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, required=True)
    ap.add_argument("--source", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--file-size", type=int, default=2048)
    ap.add_argument("--files-every", type=int, default=2, help="one upload file per K leave records (0 = none)")
    ap.add_argument("--employees", type=int, default=0,
                    help="requesters emp001..empN (default: instances / 10 + 5, from 5 to 200)")
    ap.add_argument("--joins", type=int, default=0,
                    help="every N-th expense instance waits at a partly joined AND-join (0 = none)")
    a = ap.parse_args()
    if a.instances < 0:
        sys.exit("gen-fixture: --instances must be >= 0")
    if a.joins < 0:
        sys.exit("gen-fixture: --joins must be >= 0")
    rnd = random.Random(a.seed)
    if a.employees < 0 or a.employees > 999:
        sys.exit("gen-fixture: --employees must be from 1 to 999 (0 = the default)")
    n_emp = a.employees or max(5, min(200, a.instances // 10 + 5))
    users, groups, settings = directory(n_emp)
    target = {"description": "app-only target", "settings": settings, "groups": groups, "users": users, "apps": apps()}
    with open(a.target, "w") as f:
        json.dump(target, f, indent=1)
    records, instances = [], []
    pdef = APP + ":3:"
    n_expense = 0
    for i in range(a.instances):
        kind = i % 4
        emp = "emp%03d" % (1 + rnd.randrange(n_emp))
        rid = "rec-%06d-%04x" % (i, rnd.randrange(65536))
        if kind in (0, 1):
            days = 5 + rnd.randrange(10) if kind == 0 else 1 + rnd.randrange(3)
            rec = {"table": "leave", "id": rid, "createdBy": emp,
                   "values": {"status": "submitted", "days": str(days), "reason": "holiday %d" % i}}
            if a.files_every and i % a.files_every == 0:
                rec["files"] = [{"field": "attachment", "name": "note-%d.pdf" % i, "size": a.file_size}]
            records.append(rec)
            inst = {"process": pdef + "leave_request", "requester": emp, "recordId": rid,
                    "variables": {"status": "submitted", "days": days, "rate": 1.5, "approved": False,
                                  "comment": "c%d" % i}}
            if kind == 0:
                inst["activities"] = [{"id": "approve", "assignees": ["mgr1", "mgr2"]}]
            else:
                inst["activities"] = [{"id": "hr_check", "assignees": ["hr1", "hr2"], "accepted": False}]
        elif kind == 2:
            records.append({"table": "expense", "id": rid, "createdBy": emp,
                            "values": {"state": "open", "amount": "%d.50" % (10 + i)},
                            "files": [{"field": "receipt", "name": "receipt.txt", "text": "receipt %d\n" % i}]})
            inst = {"process": pdef + "expense_claim", "requester": emp, "recordId": rid,
                    "variables": {"amount": 10.5 + i, "state": "open"},
                    "activities": [{"id": "finance_review", "assignees": ["fin1", "fin2"]},
                                   {"id": "manager_ok", "assignees": ["mgr1"]}]}
            n_expense += 1
            if a.joins and n_expense % a.joins == 0:  # finance_review done, the join waits for manager_ok
                inst["arrived"] = [{"id": "finance_review", "performer": "fin%d" % (1 + (n_expense // a.joins) % 2)}]
                inst["activities"] = [{"id": "manager_ok", "assignees": ["mgr1"]}]
        else:
            records.append({"table": "onboard", "id": rid, "createdBy": emp,
                            "values": {"step": "prepared", "employee": "new-%d" % i}})
            inst = {"process": pdef + "onboarding", "requester": emp, "recordId": rid,
                    "variables": {"step": "prepared", "employee": "new-%d" % i},
                    "activities": [{"id": "provision", "children": [
                        {"variables": {"employee": "new-%d" % i},
                         "activities": [{"id": "create_account", "assignees": ["it1"]}]}]}]}
        instances.append(inst)
    source = dict(target)
    source["description"] = "source with %d running instances" % a.instances
    source["records"] = records
    source["instances"] = instances
    with open(a.source, "w") as f:
        json.dump(source, f, indent=None if a.instances > 1000 else 1)

if __name__ == "__main__":
    main()
