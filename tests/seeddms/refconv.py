#!/usr/bin/env python3
"""Reference converter for ferry's SeedDMS tests only: copy one SeedDMS installation into a new, empty one,
possibly on the other engine and layout, with plain SQL, renumbering every id.

    refconv.py --source SPEC --source-content DIR --target SPEC --target-content DIR --layout 5.1|6.0
               [--source-max-dir-id N] [--target-max-dir-id N] [--update-semantics] [--force]

It is what the checker (sdcheck.py) is tested against, not a migration tool: it writes a fresh target (schema
from schema/*.sql), keeps the root folder at id 1 and the users admin and guest at 1 and 2, and numbers all other
rows anew, in reverse order where order does not matter (log ids keep their order: SeedDMS 5.1 reads a log in id
order). Files are copied to the target's document directories.

5.1 -> 6.0 follows docs/seeddms-facts.md 8: the log of each (document, version, workflow) is split into runs by
replaying it; finished runs get state NULL and the date of their last log entry, the active run keeps its 5.1
row's date; roles 0/1/2 become tblRoles 3/1/2. With --update-semantics it does what SeedDMS's own 6.0.0 update
does instead (facts 6.1): one run per (document, version, workflow), earlier runs merged into it -- which the
checker must report for versions that went through one workflow twice.
6.0 -> 5.1 keeps only active runs as rows (parentworkflow = the parent run's workflow) and names the log's
document, version and workflow from its run; finished runs live on in the log only.
"""
import argparse
import os
import shutil
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdlib  # noqa: E402

TABLES = ["tblUsers", "tblFolders", "tblGroups", "tblGroupMembers", "tblAttributeDefinitions", "tblFolderAttributes",
          "tblDocuments", "tblDocumentAttributes", "tblDocumentContent", "tblDocumentContentAttributes",
          "tblDocumentStatus", "tblDocumentStatusLog", "tblWorkflowStates", "tblWorkflowActions", "tblWorkflows",
          "tblWorkflowTransitions", "tblWorkflowTransitionUsers", "tblWorkflowTransitionGroups",
          "tblWorkflowDocumentContent", "tblWorkflowLog", "tblACLs", "tblVersion"]


class IdMap:
    """Old id -> new id for one table: above all old ids, in reverse order (or kept order), FIXED kept as they are."""

    def __init__(self, ids, keep_order=False, fixed=()):
        self.m = {i: i for i in fixed}
        rest = sorted(i for i in ids if i not in self.m)
        if not keep_order:
            rest.reverse()
        start = max(ids, default=0) + (1000 if keep_order else 10)  # above every old id: none keeps its number
        for n, i in enumerate(rest):
            self.m[i] = start + n

    def __call__(self, i):
        if i is None:
            return None
        if i not in self.m:
            raise sdlib.ToolError(f"dangling reference to id {i}")
        return self.m[i]


def convert(a):
    src = sdlib.Db(a.source).open()
    slayout = src.layout()
    s = {t: src.rows(t) for t in TABLES}
    roles = {r["id"]: r for r in src.rows("tblRoles")} if slayout == "6.0" else {}
    src.close()
    L = a.layout

    users = IdMap([u["id"] for u in s["tblUsers"]], fixed=[u["id"] for u in s["tblUsers"]
                                                           if u["login"] in ("admin", "guest")])
    folders = IdMap([f["id"] for f in s["tblFolders"]], fixed=[1])
    groups = IdMap([g["id"] for g in s["tblGroups"]])
    adefs = IdMap([x["id"] for x in s["tblAttributeDefinitions"]])
    docs = IdMap([d["id"] for d in s["tblDocuments"]])
    contents = IdMap([c["id"] for c in s["tblDocumentContent"]])
    statuses = IdMap([x["statusID"] for x in s["tblDocumentStatus"]])
    states = IdMap([x["id"] for x in s["tblWorkflowStates"]])
    actions = IdMap([x["id"] for x in s["tblWorkflowActions"]])
    wfs = IdMap([x["id"] for x in s["tblWorkflows"]])
    trans = IdMap([x["id"] for x in s["tblWorkflowTransitions"]])
    logs = IdMap([x["id"] for x in s["tblWorkflowLog"]], keep_order=True)
    user_or_none = lambda i: None if i in (None, 0) else users(i)  # noqa: E731

    def role_code(u):
        if slayout == "6.0":
            return roles[u["role"]]["role"]
        return u["role"]
    out = {}
    if L == "6.0":
        out["tblRoles"] = [{"id": 1, "name": "Admin", "role": 1, "noaccess": ""},
                           {"id": 2, "name": "Guest", "role": 2, "noaccess": ""},
                           {"id": 3, "name": "User", "role": 0, "noaccess": ""}]
    out["tblUsers"] = []
    home = {}
    for u in s["tblUsers"]:
        r = {k: u[k] for k in ("login", "pwd", "fullName", "email", "language", "theme", "comment", "hidden",
                               "pwdExpiration", "loginfailures", "disabled", "quota")}
        r["id"] = users(u["id"])
        code = role_code(u)
        r["role"] = {0: 3, 1: 1, 2: 2}[code] if L == "6.0" else code
        if L == "6.0":
            r["secret"] = u.get("secret")
        r["homefolder"] = None
        if u["homefolder"]:
            home[r["id"]] = folders(u["homefolder"])
        out["tblUsers"].append(r)

    byid = {f["id"]: f for f in s["tblFolders"]}

    def flist(fid):  # ancestors of folder FID from the root, new ids, as ":1:5:" ("" for the root)
        chain = []
        p = byid[fid]["parent"]
        while p:
            chain.append(folders(p))
            p = byid[p]["parent"]
        return (":" + ":".join(str(x) for x in reversed(chain)) + ":") if chain else ""
    out["tblFolders"] = [dict(f, id=folders(f["id"]), parent=(folders(f["parent"]) if f["parent"] else f["parent"]),
                              owner=users(f["owner"]), folderList=flist(f["id"])) for f in s["tblFolders"]]
    out["tblGroups"] = [dict(g, id=groups(g["id"])) for g in s["tblGroups"]]
    out["tblGroupMembers"] = [dict(m, groupID=groups(m["groupID"]), userID=users(m["userID"]))
                              for m in s["tblGroupMembers"]]
    out["tblAttributeDefinitions"] = [dict(x, id=adefs(x["id"])) for x in s["tblAttributeDefinitions"]]
    out["tblFolderAttributes"] = [dict(x, id=None, folder=folders(x["folder"]), attrdef=adefs(x["attrdef"]))
                                  for x in s["tblFolderAttributes"]]
    out["tblDocuments"] = [dict(d, id=docs(d["id"]), owner=users(d["owner"]), folder=folders(d["folder"]),
                                folderList=(flist(d["folder"]) or ":") + f"{folders(d['folder'])}:",
                                locked=d["locked"] if d["locked"] in (-1, None) else users(d["locked"]))
                           for d in s["tblDocuments"]]
    out["tblDocumentAttributes"] = [dict(x, id=None, document=docs(x["document"]), attrdef=adefs(x["attrdef"]))
                                    for x in s["tblDocumentAttributes"]]
    out["tblDocumentContent"] = []
    copies = []
    for c in s["tblDocumentContent"]:
        r = {k: c[k] for k in ("version", "comment", "date", "orgFileName", "fileType", "mimeType", "fileSize",
                               "checksum")}
        nd = docs(c["document"])
        r.update(id=contents(c["id"]), document=nd, createdBy=users(c["createdBy"]),
                 dir=sdlib.doc_dir(nd, a.target_max_dir_id))
        if L == "6.0":
            r["revisiondate"] = c.get("revisiondate")
        out["tblDocumentContent"].append(r)
        copies.append((sdlib.version_path(os.path.join(a.source_content, a.offset_dir), c["document"], c["version"],
                                          c["fileType"], a.source_max_dir_id),
                       sdlib.version_path(os.path.join(a.target_content, a.offset_dir), nd, c["version"],
                                          c["fileType"], a.target_max_dir_id)))
    out["tblDocumentContentAttributes"] = [dict(x, id=None, content=contents(x["content"]), attrdef=adefs(x["attrdef"]))
                                           for x in s["tblDocumentContentAttributes"]]
    out["tblDocumentStatus"] = [dict(x, statusID=statuses(x["statusID"]), documentID=docs(x["documentID"]))
                                for x in s["tblDocumentStatus"]]
    out["tblDocumentStatusLog"] = [dict(x, statusLogID=None, _old=x["statusLogID"], statusID=statuses(x["statusID"]),
                                        userID=users(x["userID"])) for x in s["tblDocumentStatusLog"]]
    out["tblWorkflowStates"] = [dict(x, id=states(x["id"])) for x in s["tblWorkflowStates"]]
    out["tblWorkflowActions"] = [dict(x, id=actions(x["id"])) for x in s["tblWorkflowActions"]]
    out["tblWorkflows"] = []
    for w in s["tblWorkflows"]:
        r = {"id": wfs(w["id"]), "name": w["name"], "initstate": states(w["initstate"])}
        if L == "6.0":
            r["layoutdata"] = w.get("layoutdata")
        out["tblWorkflows"].append(r)
    out["tblWorkflowTransitions"] = [dict(x, id=trans(x["id"]), workflow=wfs(x["workflow"]), state=states(x["state"]),
                                          action=actions(x["action"]), nextstate=states(x["nextstate"]))
                                     for x in s["tblWorkflowTransitions"]]
    out["tblWorkflowTransitionUsers"] = [dict(x, id=None, transition=trans(x["transition"]), userid=users(x["userid"]))
                                         for x in s["tblWorkflowTransitionUsers"]]
    out["tblWorkflowTransitionGroups"] = [dict(x, id=None, transition=trans(x["transition"]),
                                               groupid=groups(x["groupid"])) for x in s["tblWorkflowTransitionGroups"]]
    runs_and_log(a, s, slayout, L, out, docs, wfs, states, trans, users, logs)
    acls = []
    for x in s["tblACLs"]:
        tgt = folders(x["target"]) if x["targetType"] == 1 else docs(x["target"])
        acls.append(dict(x, id=None, target=tgt, userID=x["userID"] if x["userID"] in (-1, 0) else users(x["userID"]),
                         groupID=x["groupID"] if x["groupID"] in (-1, 0) else groups(x["groupID"])))
    out["tblACLs"] = acls
    out["tblVersion"] = [{"date": s["tblVersion"][0]["date"], "major": 6 if L == "6.0" else 5,
                          "minor": 0 if L == "6.0" else 1, "subminor": 0}]
    for t, rows in out.items():  # rows whose ids nothing refers to: number them afresh
        if t == "tblDocumentStatusLog":  # the highest statusLogID is a version's status (facts 3.7): keep order
            for n, r in enumerate(sorted(rows, key=lambda r: r["_old"])):
                r["statusLogID"] = 1000 + n
                del r["_old"]
        elif rows and "id" in rows[0] and rows[0]["id"] is None:
            for n, r in enumerate(reversed(rows)):
                r["id"] = 10 + n

    dst = sdlib.Db(a.target)
    if dst.engine != "sqlite":
        dst.open()
    dst.create_schema(L, force=a.force)
    order = (["tblRoles"] if L == "6.0" else []) + TABLES
    dst.insert_all([(t, out[t]) for t in order])
    for uid, fid in sorted(home.items()):
        dst.execute("UPDATE tblUsers SET homefolder = ? WHERE id = ?", (fid, uid))
    dst.close()
    for old, new in copies:
        if os.path.isfile(old):
            os.makedirs(os.path.dirname(new), exist_ok=True)
            shutil.copyfile(old, new)


def runs_and_log(a, s, slayout, L, out, docs, wfs, states, trans, users, logs):
    """Build the target's tblWorkflowDocumentContent and tblWorkflowLog."""
    wdc, log = [], []
    # the source's runs as (document, version, workflow, state, date, parent run key, [log rows], key)
    runs = []
    if slayout == "6.0":
        by_run = {}
        for e in s["tblWorkflowLog"]:
            by_run.setdefault(e["workflowdocumentcontent"], []).append(e)
        for r in s["tblWorkflowDocumentContent"]:
            runs.append({"key": r["id"], "document": r["document"], "version": r["version"],
                         "workflow": r["workflow"], "state": r["state"], "date": r["date"], "parent": r["parent"],
                         "log": sorted(by_run.get(r["id"], []), key=lambda e: e["id"])})
    else:
        defs = sdlib.Defs(s["tblWorkflowTransitions"], s["tblWorkflowTransitionUsers"],
                          s["tblWorkflowTransitionGroups"], s["tblGroupMembers"], s["tblWorkflowStates"])
        init = {w["id"]: w["initstate"] for w in s["tblWorkflows"]}
        triples, active = {}, {}
        for e in sorted(s["tblWorkflowLog"], key=lambda e: e["id"]):
            triples.setdefault((e["document"], e["version"], e["workflow"]), []).append(e)
        for r in s["tblWorkflowDocumentContent"]:
            active.setdefault((r["document"], r["version"], r["workflow"]), []).append(r)
        n = 0
        for key in sorted(set(triples) | set(active)):
            rows = sorted(active.get(key, []), key=lambda r: r["date"])
            entries = triples.get(key, [])
            if a.update_semantics:  # facts 6.1: one run per triple, the active row's or a finished one
                parts = [{"log": entries, "state": rows[-1]["state"] if rows else None,
                          "active_row": rows[-1] if rows else None}]
            else:
                parts = sdlib.replay_runs(defs, init, entries, rows[-1] if rows else None)
            for p in parts:
                n += 1
                row = p.get("active_row")
                runs.append({"key": ("r", n), "document": key[0], "version": key[1], "workflow": key[2],
                             "state": p["state"], "date": row["date"] if row else p["log"][-1]["date"],
                             "parent": ("wf", row["parentworkflow"]) if row and row["parentworkflow"] else None,
                             "log": p["log"]})
        for r in runs:  # 5.1 names a parent by its workflow: the version's active run of that workflow
            if r["parent"]:
                m = [p for p in runs if p["document"] == r["document"] and p["version"] == r["version"]
                     and p["workflow"] == r["parent"][1] and p["state"] is not None]
                r["parent"] = m[0]["key"] if m else None
    # new run ids: in reverse order of the source's (ids carry no meaning)
    rid = {r["key"]: 10 + n for n, r in enumerate(reversed(runs))}
    byk = {r["key"]: r for r in runs}
    for r in runs:
        if L == "6.0":
            wdc.append({"id": rid[r["key"]], "parent": rid.get(r["parent"]), "workflow": wfs(r["workflow"]),
                        "document": docs(r["document"]), "version": r["version"], "state": states(r["state"]),
                        "date": r["date"]})
        elif r["state"] is not None:
            parent = byk.get(r["parent"])
            wdc.append({"parentworkflow": wfs(parent["workflow"]) if parent else 0, "workflow": wfs(r["workflow"]),
                        "document": docs(r["document"]), "version": r["version"], "state": states(r["state"]),
                        "date": r["date"]})
        for e in r["log"]:
            row = {"id": logs(e["id"]), "userid": users(e["userid"]), "transition": trans(e["transition"]),
                   "date": e["date"], "comment": e["comment"]}
            if L == "6.0":
                row["workflowdocumentcontent"] = rid[r["key"]]
            else:
                row.update(document=docs(r["document"]), version=r["version"], workflow=wfs(r["workflow"]))
            log.append(row)
    log.sort(key=lambda e: e["id"])
    out["tblWorkflowDocumentContent"] = wdc
    out["tblWorkflowLog"] = log


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for side in ("source", "target"):
        p.add_argument(f"--{side}", required=True)
        p.add_argument(f"--{side}-content", required=True)
        p.add_argument(f"--{side}-max-dir-id", type=int, default=0)
    p.add_argument("--offset-dir", default="1048576")
    p.add_argument("--layout", required=True, choices=sdlib.LAYOUTS, help="the target's layout")
    p.add_argument("--update-semantics", action="store_true",
                   help="5.1 -> 6.0 as SeedDMS's 6.0.0 update does it (one run per document, version, workflow)")
    p.add_argument("--force", action="store_true")
    a = p.parse_args()
    try:
        convert(a)
    except (sdlib.ToolError, OSError, KeyError) as e:
        sdlib.die(f"{type(e).__name__}: {e}" if isinstance(e, KeyError) else str(e))


if __name__ == "__main__":
    main()
