#!/usr/bin/env python3
"""Build a SeedDMS database and content directory for ferry's tests, deterministic from a seed.

    mkfixture.py --db SPEC --layout 5.1|6.0 --content DIR [options]

SPEC is sqlite:PATH or mariadb:SOCKET:DATABASE (see sdlib.py); the MariaDB database must exist. The schema is
ours (schema/*.sql, written from docs/seeddms-facts.md); the rows are what SeedDMS itself would have written for
the same history: install rows (admin, guest, root folder, roles, tblVersion), users, groups, folders, documents
with content versions whose files lie at DIR/<offset>/<docdir>/<version><fileType> with their MD5 and size,
attributes, ACLs, status history, three workflows, and runs with their logs. The first documents cover every
case once (no workflow, active at each state, a partly met quota, released, rejected, the same workflow run
twice, finished and with the second run active, a second workflow); later documents pick cases at random.
One version's file (the latest version of document 2) is left out of the content directory (--missing-files).
--part definitions writes only what a migration matches by name (users, groups, attribute and workflow
definitions) and --id-offset moves the ids: a target to migrate into.

Same seed and options, same rows and bytes, in either layout and engine: the 5.1 and the 6.0 build of one seed
hold the same history (with --finished-run-date last-log the checker finds them equal).
Prints a JSON summary (counts, the case of each version, missing files) on stdout or to --summary FILE.
"""
import argparse
import calendar
import hashlib
import json
import os
import random
import shutil
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdlib  # noqa: E402

BASE = calendar.timegm((2024, 3, 1, 8, 0, 0))
FIRST_NAMES = ["Anna Berger", "Jürgen Groß", "Chloé Martin", "Dmitri Orlov", "Eva Nováková", "Farid Haddad",
               "Greta Lind", "Hiro Tanaka", "Inês Costa", "José Núñez", "Kari Ødegård", "Lena Weiß"]
FILE_TYPES = [(".pdf", "application/pdf"), (".txt", "text/plain"), (".odt", "application/vnd.oasis.opendocument.text"),
              (".png", "image/png"), ("", "application/octet-stream")]


def dt(ts):
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ts))


class Builder:
    def __init__(self, a):
        self.a = a
        self.rng = random.Random(a.seed)
        self.layout = a.layout
        self.t = {name: [] for name in (
            "tblRoles", "tblUsers", "tblFolders", "tblGroups", "tblGroupMembers", "tblAttributeDefinitions",
            "tblFolderAttributes", "tblDocuments", "tblDocumentAttributes", "tblDocumentContent",
            "tblDocumentContentAttributes", "tblDocumentStatus", "tblDocumentStatusLog", "tblWorkflowStates",
            "tblWorkflowActions", "tblWorkflows", "tblWorkflowTransitions", "tblWorkflowTransitionUsers",
            "tblWorkflowTransitionGroups", "tblWorkflowDocumentContent", "tblWorkflowLog", "tblACLs", "tblVersion")}
        self.files = []  # (relative path, bytes) to write
        self.summary = {"layout": a.layout, "seed": a.seed, "versions": {}, "missing_files": []}
        self.ids = {}

    def next_id(self, table):
        """The next id of TABLE: a count plus --id-offset, except for the install rows (admin 1, guest 2, the
        root folder 1), which keep their ids."""
        n = self.ids[table] = self.ids.get(table, 0) + 1
        if (table == "tblUsers" and n <= 2) or (table == "tblFolders" and n == 1):
            return n
        return n + self.a.id_offset

    # ---- users, groups, folders ------------------------------------------------------------------------------
    def users(self):
        if self.layout == "6.0":
            for rid, name, code in ((1, "Admin", 1), (2, "Guest", 2), (3, "User", 0)):
                self.t["tblRoles"].append({"id": rid, "name": name, "role": code, "noaccess": ""})
        role_user = 3 if self.layout == "6.0" else 0

        def add(login, full, email, role, **extra):
            uid = self.next_id("tblUsers")
            row = {"id": uid, "login": login, "pwd": hashlib.md5(login.encode()).hexdigest(), "fullName": full,
                   "email": email, "language": "en_GB", "theme": "bootstrap", "comment": "", "role": role,
                   "hidden": 0, "pwdExpiration": None, "loginfailures": 0, "disabled": 0, "quota": 0,
                   "homefolder": None}
            if self.layout == "6.0":
                row["secret"] = None
            row.update(extra)
            self.t["tblUsers"].append(row)
            return uid
        add("admin", "Administrator", "admin@example.org", 1)
        add("guest", "Guest User", None, 2)
        self.u = []
        for i in range(self.a.users):
            full = FIRST_NAMES[i % len(FIRST_NAMES)] + ("" if i < len(FIRST_NAMES) else f" {i}")
            extra = {}
            if i == 2:
                extra = {"pwdExpiration": "2025-01-31 00:00:00", "comment": "expires, 'quoted' \\ and\nnewline"}
            if i == 5:
                extra = {"disabled": 1, "loginfailures": 3}
            self.u.append(add(f"user{i + 1:02d}", full, f"user{i + 1:02d}@example.org", role_user, **extra))

        def group(name, members):
            gid = self.next_id("tblGroups")
            self.t["tblGroups"].append({"id": gid, "name": name, "comment": f"{name} group"})
            for n, uid in enumerate(sorted(set(members))):
                self.t["tblGroupMembers"].append({"groupID": gid, "userID": uid, "manager": 1 if n == 0 else 0})
            return gid
        u = self.u
        extra = u[9:]
        self.g_authors = group("Authors", [u[0], u[1], u[6]] + [x for x in extra if self.rng.random() < 0.5])
        self.g_reviewers = group("Reviewers", [u[2], u[3], u[4]] + [x for x in extra if self.rng.random() < 0.3])
        self.g_approvers = group("Approvers", [u[5], u[6], u[7]])
        self.g_legal = group("Legal", [u[7], u[8]])
        group("Empty group", [])

    def folders(self):
        self.folder_list = {}
        root_parent = None if (self.layout == "6.0" and self.engine == "sqlite") else 0
        self.t["tblFolders"].append({"id": self.next_id("tblFolders"), "name": "DMS", "parent": root_parent,
                                     "folderList": "",
                                     "comment": "DMS root", "date": BASE, "owner": 1, "inheritAccess": 0,
                                     "defaultAccess": 2, "sequence": 0.0})
        self.folder_list[1] = ""
        for i in range(self.a.folders):
            fid = self.next_id("tblFolders")
            num = i + 2  # the folder's number, in its name: the same whatever the ids
            parent = self.rng.choice(sorted(self.folder_list))
            flist = (self.folder_list[parent] or ":") + f"{parent}:"
            self.folder_list[fid] = flist
            self.t["tblFolders"].append({
                "id": fid, "name": f"Folder {num:03d}", "parent": parent, "folderList": flist,
                "comment": f"folder {num}", "date": BASE + 60 * num, "owner": self.rng.choice(self.u),
                "inheritAccess": 1 if i % 3 else 0, "defaultAccess": 2, "sequence": float(i) + 0.5})
            if i % 3 == 0:
                self.acl(fid, 1, group=self.rng.choice([self.g_authors, self.g_reviewers]), mode=3)
        self.t["tblUsers"][2]["homefolder"] = self.t["tblFolders"][1]["id"] if self.a.folders else None

    def acl(self, target, ttype, user=-1, group=-1, mode=2):
        self.t["tblACLs"].append({"id": self.next_id("tblACLs"), "target": target, "targetType": ttype,
                                  "userID": user, "groupID": group, "mode": mode})

    def attributes(self):
        defs = [("department", 1, 3, 0, None), ("project", 2, 3, 0, "|Alpha|Beta|Gamma"), ("pages", 3, 1, 0, None),
                ("confidential", 0, 4, 0, None), ("reviewed on", 3, 7, 0, None), ("tags", 2, 3, 1, None)]
        self.attr = {}
        for name, objtype, typ, multiple, valueset in defs:
            aid = self.next_id("tblAttributeDefinitions")
            self.attr[name] = aid
            self.t["tblAttributeDefinitions"].append({
                "id": aid, "name": name, "objtype": objtype, "type": typ, "multiple": multiple, "minvalues": 0,
                "maxvalues": 0, "valueset": valueset, "regex": "" if name != "pages" else "/^[0-9]+$/"})
        for f in self.t["tblFolders"][1::2]:
            self.t["tblFolderAttributes"].append({"id": self.next_id("tblFolderAttributes"), "folder": f["id"],
                                                  "attrdef": self.attr["department"],
                                                  "value": self.rng.choice(["Sales", "R&D", "Légal"])})

    # ---- workflow definitions --------------------------------------------------------------------------------
    def workflows(self):
        def state(name, docstatus, visibility=0, maxtime=0):
            sid = self.next_id("tblWorkflowStates")
            self.t["tblWorkflowStates"].append({"id": sid, "name": name, "visibility": visibility,
                                                "maxtime": maxtime, "precondfunc": None,
                                                "documentstatus": docstatus})
            return sid

        def action(name):
            aid = self.next_id("tblWorkflowActions")
            self.t["tblWorkflowActions"].append({"id": aid, "name": name})
            return aid

        def workflow(name, init):
            wid = self.next_id("tblWorkflows")
            row = {"id": wid, "name": name, "initstate": init}
            if self.layout == "6.0":
                row["layoutdata"] = None
            self.t["tblWorkflows"].append(row)
            return wid

        def transition(wf, st, act, nxt, users=(), groups=()):
            tid = self.next_id("tblWorkflowTransitions")
            self.t["tblWorkflowTransitions"].append({"id": tid, "workflow": wf, "state": st, "action": act,
                                                     "nextstate": nxt, "maxtime": 0})
            for uid in users:
                self.t["tblWorkflowTransitionUsers"].append(
                    {"id": self.next_id("tblWorkflowTransitionUsers"), "transition": tid, "userid": uid})
            for gid, minusers in groups:
                self.t["tblWorkflowTransitionGroups"].append(
                    {"id": self.next_id("tblWorkflowTransitionGroups"), "transition": tid, "groupid": gid,
                     "minusers": minusers})
            return tid
        u = self.u
        s = {n: state(n, d, v) for n, d, v in (("draft", None, 1), ("in review", None, 1), ("in approval", None, 2),
                                                ("released", sdlib.S_RELEASED, 0), ("rejected", sdlib.S_REJECTED, 0),
                                                ("published", sdlib.S_RELEASED, 0))}
        a = {n: action(n) for n in ("submit", "review ok", "approve", "reject", "publish")}
        self.states = s
        w1 = workflow("Standard review", s["draft"])
        self.w1 = {"id": w1, "init": s["draft"], "t": {
            "submit": transition(w1, s["draft"], a["submit"], s["in review"], groups=[(self.g_authors, 1)]),
            "review ok": transition(w1, s["in review"], a["review ok"], s["in approval"],
                                    groups=[(self.g_reviewers, 1)]),
            "reject review": transition(w1, s["in review"], a["reject"], s["rejected"], users=[u[4]]),
            "approve": transition(w1, s["in approval"], a["approve"], s["released"], users=[u[5]],
                                  groups=[(self.g_approvers, 2)]),
            "reject approval": transition(w1, s["in approval"], a["reject"], s["rejected"],
                                          users=[u[8]], groups=[(self.g_legal, 1)])}}
        w2 = workflow("Quick release", s["draft"])
        self.w2 = {"id": w2, "init": s["draft"], "t": {
            "publish": transition(w2, s["draft"], a["publish"], s["published"], users=[u[3], u[6]])}}
        w3 = workflow("Unused workflow", s["draft"])
        transition(w3, s["draft"], a["submit"], s["in review"], users=[u[0]], groups=[(self.g_legal, 0)])
        if self.layout == "6.0":
            self.t["tblWorkflows"][0]["layoutdata"] = '{"nodes":[],"edges":[]}'
        self.defs = sdlib.Defs(self.t["tblWorkflowTransitions"], self.t["tblWorkflowTransitionUsers"],
                               self.t["tblWorkflowTransitionGroups"], self.t["tblGroupMembers"],
                               self.t["tblWorkflowStates"])

    # ---- one workflow run, simulated as SeedDMS would record it ----------------------------------------------
    def run(self, wf, path, clock, partial=None):
        """Trigger the named transitions of WF in order; PARTIAL: one more transition triggered by only one user.
        Returns (run dict, clock)."""
        run = {"workflow": wf["id"], "state": wf["init"], "start": clock, "log": []}
        steps = [(name, False) for name in path] + ([(partial, True)] if partial else [])
        for name, only_one in steps:
            tid = wf["t"][name]
            while True:
                offered = self.defs.offered(tid, run["log"])
                if not offered:
                    raise sdlib.ToolError(f"fixture: nobody may trigger {name} (check --users)")
                clock += 60 * self.rng.randint(1, 90)
                uid = self.rng.choice(offered)
                run["log"].append({"userid": uid, "transition": tid, "date": clock,
                                   "comment": self.rng.choice(["", "ok", "looks good", "see my notes", "¡vale!"])})
                run["state"] = self.defs.step(wf["id"], run["state"], run["log"])
                if only_one or run["state"] == self.defs.transitions[tid]["nextstate"]:
                    break
        if self.defs.ends_run(run["state"]):
            run["end"] = run["state"]
            run["state"] = None
        return run, clock

    CASES = ["none", "active-draft", "active-review", "active-approval", "active-approval-partial", "released",
             "rejected", "twice-finished", "twice-active", "quick-released", "quick-active"]

    def case_runs(self, case, clock):
        w1, w2 = self.w1, self.w2
        plans = {
            "none": [],
            "active-draft": [(w1, [], None)],
            "active-review": [(w1, ["submit"], None)],
            "active-approval": [(w1, ["submit", "review ok"], None)],
            "active-approval-partial": [(w1, ["submit", "review ok"], "approve")],
            "released": [(w1, ["submit", "review ok", "approve"], None)],
            "rejected": [(w1, ["submit", "reject review"], None)],
            "twice-finished": [(w1, ["submit", "review ok", "reject approval"], None),
                               (w1, ["submit", "review ok", "approve"], None)],
            "twice-active": [(w1, ["submit", "reject review"], None), (w1, ["submit"], None)],
            "quick-released": [(w2, ["publish"], None)],
            "quick-active": [(w2, [], "publish")],
        }
        runs = []
        for wf, path, partial in plans[case]:
            clock += 60
            r, clock = self.run(wf, path, clock, partial)
            runs.append(r)
        return runs, clock

    # ---- documents -------------------------------------------------------------------------------------------
    def documents(self):
        folders = [f["id"] for f in self.t["tblFolders"]]
        clock = BASE + 86400
        missing = set()
        if self.a.missing_files >= 1 and self.a.docs >= 2:
            missing.add(2)
        k = 2
        while len(missing) < self.a.missing_files and k < self.a.docs:
            k += 7
            if k <= self.a.docs:
                missing.add(k)
        case_i = 0
        for d in range(1, self.a.docs + 1):
            folder = self.rng.choice(folders)
            owner = self.rng.choice(self.u)
            nver = self.rng.randint(1, self.a.max_versions)
            did = self.next_id("tblDocuments")
            clock += 3600
            self.t["tblDocuments"].append({
                "id": did, "name": f"Document {d:04d}", "comment": f"document {d}", "date": clock,
                "expires": 0, "owner": owner, "folder": folder,
                "folderList": (self.folder_list[folder] or ":") + f"{folder}:", "inheritAccess": 1,
                "defaultAccess": 2, "locked": owner if d % 11 == 5 else -1,
                "keywords": self.rng.choice(["", "contract", "invoice 2024", "Zürich"]), "sequence": float(d)})
            if d % 4 == 1:
                self.t["tblDocumentAttributes"].append({"id": self.next_id("tblDocumentAttributes"),
                                                        "document": did, "attrdef": self.attr["project"],
                                                        "value": self.rng.choice(["Alpha", "Beta", "Gamma"])})
            if d % 5 == 2:
                self.acl(did, 2, user=self.rng.choice(self.u), mode=self.rng.choice([1, 2, 3, 4]))
            for v in range(1, nver + 1):
                latest = v == nver
                if latest:
                    case = self.CASES[case_i] if case_i < len(self.CASES) else self.rng.choice(self.CASES)
                    case_i += 1
                else:
                    case = self.rng.choice(["none", "released", "rejected"])
                clock = self.version(did, d, v, case, clock, owner, d in missing and latest)
        self.summary["missing_files"] = sorted(missing)

    def version(self, did, d, v, case, clock, owner, missing):
        ftype, mime = self.rng.choice(FILE_TYPES)
        size = max(1, int(self.rng.uniform(0.2, 1.8) * self.a.file_size))
        data = self.content(d, v, size)
        cid = self.next_id("tblDocumentContent")
        clock += 600
        row = {"id": cid, "document": did, "version": v, "comment": f"version {v}", "date": clock,
               "createdBy": owner, "dir": sdlib.doc_dir(did, self.a.max_dir_id), "orgFileName": f"file-{d}-{v}{ftype}",
               "fileType": ftype, "mimeType": mime, "fileSize": len(data), "checksum": hashlib.md5(data).hexdigest()}
        if self.layout == "6.0":
            row["revisiondate"] = None
        self.t["tblDocumentContent"].append(row)
        if not missing:
            self.files.append((sdlib.doc_dir(did, self.a.max_dir_id) + f"{v}{ftype}", data))
        if v % 2 == 0:
            self.t["tblDocumentContentAttributes"].append({"id": self.next_id("tblDocumentContentAttributes"),
                                                           "content": cid, "attrdef": self.attr["pages"],
                                                           "value": str(self.rng.randint(1, 300))})
        sid = self.next_id("tblDocumentStatus")
        self.t["tblDocumentStatus"].append({"statusID": sid, "documentID": did, "version": v})

        def status(code, comment, user, ts):
            self.t["tblDocumentStatusLog"].append({"statusLogID": self.next_id("tblDocumentStatusLog"),
                                                   "statusID": sid, "status": code, "comment": comment,
                                                   "date": dt(ts), "userID": user})
        runs, end = self.case_runs(case, clock)
        status(sdlib.S_IN_WORKFLOW if runs else sdlib.S_RELEASED, "", owner, clock)
        self.summary["versions"][f"{d}/{v}"] = case
        for n, r in enumerate(runs):
            if n > 0:
                status(sdlib.S_IN_WORKFLOW, "", 1, r["start"])
            self.write_run(did, v, r)
            if r["state"] is None:
                last = r["log"][-1]
                status(self.defs.states[r["end"]]["documentstatus"], "Workflow has ended", last["userid"],
                       last["date"])
        return end

    def write_run(self, did, v, r):
        log = self.t["tblWorkflowLog"]
        if self.layout == "6.0":
            rid = self.next_id("tblWorkflowDocumentContent")
            date = r["start"]
            if r["state"] is None and self.a.finished_run_date == "last-log":
                date = r["log"][-1]["date"]
            self.t["tblWorkflowDocumentContent"].append({"id": rid, "parent": None, "workflow": r["workflow"],
                                                         "document": did, "version": v, "state": r["state"],
                                                         "date": dt(date)})
            for e in r["log"]:
                log.append({"id": self.next_id("tblWorkflowLog"), "workflowdocumentcontent": rid,
                            "userid": e["userid"], "transition": e["transition"], "date": dt(e["date"]),
                            "comment": e["comment"]})
        else:
            if r["state"] is not None:  # 5.1 keeps a row only while the run is active
                self.t["tblWorkflowDocumentContent"].append({"parentworkflow": 0, "workflow": r["workflow"],
                                                             "document": did, "version": v, "state": r["state"],
                                                             "date": dt(r["start"])})
            for e in r["log"]:
                log.append({"id": self.next_id("tblWorkflowLog"), "document": did, "version": v,
                            "workflow": r["workflow"], "userid": e["userid"], "transition": e["transition"],
                            "date": dt(e["date"]), "comment": e["comment"]})

    def content(self, num, v, size):
        head = f"SeedDMS fixture seed {self.a.seed} document {num} version {v}\n".encode()
        out = bytearray(head)
        block = hashlib.sha256(head).digest()
        while len(out) < size:
            block = hashlib.sha256(block).digest()
            out += block.hex().encode() + b"\n"
        return bytes(out[:size])

    def build(self, engine):
        self.engine = engine
        self.users()
        self.folders()
        self.attributes()
        self.workflows()
        self.documents()
        self.t["tblVersion"].append({"date": dt(BASE), "major": 5 if self.layout == "5.1" else 6,
                                     "minor": 1 if self.layout == "5.1" else 0, "subminor": 0})
        order = ["tblRoles", "tblUsers", "tblFolders", "tblGroups", "tblGroupMembers", "tblAttributeDefinitions",
                 "tblFolderAttributes", "tblDocuments", "tblDocumentAttributes", "tblDocumentContent",
                 "tblDocumentContentAttributes", "tblDocumentStatus", "tblDocumentStatusLog", "tblWorkflowStates",
                 "tblWorkflowActions", "tblWorkflows", "tblWorkflowTransitions", "tblWorkflowTransitionUsers",
                 "tblWorkflowTransitionGroups", "tblWorkflowDocumentContent", "tblWorkflowLog", "tblACLs",
                 "tblVersion"]
        if self.layout == "5.1":
            order.remove("tblRoles")
        if self.a.part != "all":  # a target to migrate into: what a migration matches by name, or less
            keep = {"tblRoles", "tblUsers", "tblVersion", "tblFolders"}
            if self.a.part == "definitions":
                keep |= {"tblGroups", "tblGroupMembers", "tblAttributeDefinitions", "tblWorkflowStates",
                         "tblWorkflowActions", "tblWorkflows", "tblWorkflowTransitions",
                         "tblWorkflowTransitionUsers", "tblWorkflowTransitionGroups"}
            else:
                self.t["tblUsers"] = self.t["tblUsers"][:2]
            for t in order:
                if t not in keep:
                    self.t[t] = []
            self.t["tblFolders"] = self.t["tblFolders"][:1]
            for u in self.t["tblUsers"]:
                u["homefolder"] = None
            self.files = []
            self.summary["versions"] = {}
            self.summary["missing_files"] = []
        # users refer to folders (homefolder) and folders to users: write homefolder afterwards
        home = {u["id"]: u["homefolder"] for u in self.t["tblUsers"] if u["homefolder"]}
        for u in self.t["tblUsers"]:
            u["homefolder"] = None
        self.summary["counts"] = {t: len(self.t[t]) for t in order}
        self.summary["files"] = len(self.files)
        return [(t, self.t[t]) for t in order], home


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", required=True, help="sqlite:PATH or mariadb:SOCKET:DATABASE")
    p.add_argument("--layout", required=True, choices=sdlib.LAYOUTS)
    p.add_argument("--content", required=True, help="contentDir: files go to DIR/<offset-dir>/<docdir>/")
    p.add_argument("--offset-dir", default="1048576", help="contentOffsetDir (default 1048576)")
    p.add_argument("--max-dir-id", type=int, default=0, help="SeedDMS's maxDirID setting (default 0)")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--docs", type=int, default=24, help="number of documents (default 24)")
    p.add_argument("--folders", type=int, default=6, help="folders below the root (default 6)")
    p.add_argument("--users", type=int, default=10, help="ordinary users, at least 9 (default 10)")
    p.add_argument("--max-versions", type=int, default=3, help="versions per document: 1..N (default 3)")
    p.add_argument("--file-size", type=int, default=2048, help="mean file size in bytes (default 2048)")
    p.add_argument("--missing-files", type=int, default=1, help="versions whose file is not written (default 1)")
    p.add_argument("--finished-run-date", choices=("start", "last-log"), default="start",
                   help="6.0 layout: date of a finished run, its start as 6.x writes it (default) or its last "
                        "log entry as the 6.0.0 update and a 5.1 migration write it")
    p.add_argument("--part", choices=("all", "definitions", "install"), default="all",
                   help="all (default); definitions: only the install rows, users, groups, attribute definitions "
                        "and workflow definitions (a target to migrate into); install: only the install rows")
    p.add_argument("--id-offset", type=int, default=0,
                   help="add N to every id but the install rows' (admin 1, guest 2, root folder 1), so that a "
                        "target built from the same seed has other ids than its source")
    p.add_argument("--force", action="store_true", help="replace an existing database file / drop tables")
    p.add_argument("--summary", help="write the JSON summary to this file instead of stdout")
    a = p.parse_args()
    if a.users < 9:
        sdlib.die("--users must be at least 9 (the workflows name nine users)")
    if a.docs < 0 or a.folders < 0 or a.max_versions < 1 or a.file_size < 1 or a.max_dir_id < 0 or a.id_offset < 0:
        sdlib.die("--docs/--folders/--id-offset must be >= 0, --max-versions/--file-size >= 1, --max-dir-id >= 0")
    try:
        db = sdlib.Db(a.db)
        b = Builder(a)
        batches, home = b.build(db.engine)
        base = os.path.join(a.content, a.offset_dir)
        if os.path.exists(base) and os.listdir(base) and not a.force:
            raise sdlib.ToolError(f"{base}: content directory not empty (use --force)")
        if db.engine != "sqlite":
            db.open()
        db.create_schema(a.layout, force=a.force)
        db.insert_all(batches)
        for uid, fid in sorted(home.items()):
            db.execute("UPDATE tblUsers SET homefolder = ? WHERE id = ?", (fid, uid))
        db.close()
        if a.force and os.path.exists(base):
            shutil.rmtree(base)
        for rel, data in b.files:
            path = os.path.join(base, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
        os.makedirs(base, exist_ok=True)
    except (sdlib.ToolError, OSError) as e:
        sdlib.die(str(e))
    text = json.dumps(b.summary, indent=1, sort_keys=True)
    if a.summary:
        with open(a.summary, "w") as f:
            f.write(text + "\n")
    else:
        print(text)


if __name__ == "__main__":
    main()
