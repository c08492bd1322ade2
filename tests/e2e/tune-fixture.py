#!/usr/bin/env python3
"""Make a fixture written by tests/joget-emulator/tools/gen-fixture.py harder to migrate, the way live data is.

usage: tune-fixture.py --source S.json --target T.json [--scenario main|errors]

main (in place, source only):
  - leave records say status "in review" and expense records state "checked": the start-path tools ('stamp'
    writes "submitted", 'open_claim' writes "open") really overwrite a form field on the target, so
    preserve-records has something to restore and to report;
  - every other leave instance waiting at hr_check has days > 3: on the source it went through approve first,
    so the target's start path stops at approve and the sink must jump to hr_check (activity/start);
  - every other leave instance waiting at approve was reassigned on the source to mgr2 alone: the target
    computes mgr1 + mgr2 and the sink must reassign.
errors (in place, source only, on top of main): one instance of an app the target does not have (crmapp), one
  waiting at an activity the target's definition lacks (legacy_review), one whose record id is "rec-to-space"
  (the harness renames it to "rec to space" in the source database after loading).
Standard library only; deterministic.
"""
import argparse, copy, json


def tune_main(src):
    for rec in src.get("records", []):
        if rec["table"] == "leave":
            rec["values"]["status"] = "in review"
        elif rec["table"] == "expense":
            rec["values"]["state"] = "checked"
    records = {r["id"]: r for r in src.get("records", [])}
    n_hr = n_ap = 0
    for inst in src.get("instances", []):
        if not inst["process"].endswith(":leave_request"):
            continue
        act = inst["activities"][0]["id"]
        if act == "hr_check":
            n_hr += 1
            if n_hr % 2 == 0:
                days = 4 + n_hr % 7
                inst["variables"]["days"] = days
                rec = records.get(inst["recordId"])
                if rec:
                    rec["values"]["days"] = str(days)
        elif act == "approve":
            n_ap += 1
            if n_ap % 2 == 0:
                inst["activities"][0]["assignees"] = ["mgr2"]


def tune_errors(src):
    apps = src["apps"]
    # an activity the target's definition does not have
    for app in apps:
        if app["id"] == "hrapp" and app["version"] == 2:
            for p in app["processes"]:
                if p["id"] == "leave_request":
                    p["activities"].append({"id": "legacy_review", "name": "Legacy Review", "type": "manual",
                                            "participant": "manager"})
                    p["transitions"].append({"from": "hr_check", "to": "legacy_review", "otherwise": True})
    leave = [i for i in src["instances"] if i["process"].endswith(":leave_request")]
    # waiting at legacy_review
    leave[0]["activities"] = [{"id": "legacy_review", "assignees": ["mgr1"]}]
    # a record id that the harness renames in the source database to "rec to space" (Joget's SQL filter
    # refuses ids with spaces in every workflow call, and so does the emulator's fixture loader)
    bad = leave[1]
    for rec in src["records"]:
        if rec["id"] == bad["recordId"]:
            rec["id"] = "rec-to-space"
            rec.pop("files", None)
    bad["recordId"] = "rec-to-space"
    # an app the target does not have
    apps.append({"id": "crmapp", "version": 1, "packageVersion": 1, "name": "CRM", "published": True,
                 "forms": [{"id": "lead_form", "table": "crm_lead", "fields": ["name"]}],
                 "processes": [{"id": "lead", "name": "Lead",
                                "participants": {"sales": {"type": "user", "users": ["mgr1"]}},
                                "activities": [{"id": "call", "name": "Call", "type": "manual",
                                                "participant": "sales"}],
                                "transitions": []}]})
    src["records"].append({"table": "crm_lead", "id": "lead-1", "createdBy": "emp001", "values": {"name": "ACME"}})
    src["instances"].append({"process": "crmapp:1:lead", "requester": "emp001", "recordId": "lead-1",
                             "variables": {}, "activities": [{"id": "call", "assignees": ["mgr1"]}]})


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", required=True)
    ap.add_argument("--target", required=True)
    ap.add_argument("--scenario", choices=["main", "errors"], default="main")
    a = ap.parse_args()
    with open(a.source) as f:
        src = json.load(f)
    tune_main(src)
    if a.scenario == "errors":
        tune_errors(src)
    with open(a.source, "w") as f:
        json.dump(src, f, indent=None if len(src.get("instances", [])) > 1000 else 1)


if __name__ == "__main__":
    main()
