#!/usr/bin/env python3
"""Compare two SeedDMS installations (database + content directory) as ferry's tests need, or print one.

    sdcheck.py compare --source SPEC --source-content DIR --target SPEC --target-content DIR [options]
    sdcheck.py canon --db SPEC --content DIR [--max-dir-id N] [--out FILE]

SPEC is sqlite:PATH or mariadb:SOCKET:DATABASE (see sdlib.py), in either layout (5.1 or 6.0, found from the
tables). Both commands build an id-independent canonical form of an installation: users by login, groups by name,
attribute definitions, workflow states and workflows by name, transitions as "state --action--> next state",
folders by path, documents by folder path and name, versions by number, each version with its file (MD5 and size
read from disk), status history, workflow runs with their logs, and its current run with the users who may
trigger each transition leaving the current state (computed as SeedDMS 6 does, docs/seeddms-facts.md 7.1-7.2).

A 5.1 database has no run rows for finished runs: its log is split into runs by replaying it (facts 8); a
finished run is dated at its last log entry, its state null; the active run is the 5.1 row. So a target on the
6.0 layout must look "as if it had always held" the source: the same runs, each with its own log.

compare prints every difference as a path into the canonical form and exits 1 when there is one, 0 when the
target equals the source, 2 on errors. Fields one layout cannot hold are left out when the layouts differ (6.0's
secret, role names, layoutdata, revisiondate; finished runs' dates when the target is 5.1).
"""
import argparse
import json
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdlib  # noqa: E402


def canonical(spec, content, max_dir_id=0, offset_dir="1048576"):
    db = sdlib.Db(spec).open()
    try:
        return Canon(db, os.path.join(content, offset_dir), max_dir_id).build()
    finally:
        db.close()


class Canon:
    def __init__(self, db, files, max_dir_id):
        self.db, self.files, self.max_dir_id = db, files, max_dir_id
        self.layout = db.layout()
        self.notes = []

    def rows(self, table, order=None):
        return self.db.rows(table, order)

    def build(self):
        db = self.db
        out = {"meta": {"layout": self.layout, "engine": db.engine}}
        ver = self.rows("tblVersion")
        out["meta"]["schema_version"] = [f"{v['major']}.{v['minor']}.{v['subminor']}" for v in ver]

        # users and roles
        roles = {}
        if self.layout == "6.0":
            for r in self.rows("tblRoles"):
                roles[r["id"]] = r
            out["roles"] = {r["name"]: {"role": r["role"], "noaccess": r["noaccess"]} for r in roles.values()}
        self.login = {}
        users = self.rows("tblUsers")
        for u in users:
            self.login[u["id"]] = u["login"]
        folders = {f["id"]: f for f in self.rows("tblFolders")}
        self.fpath = {}
        for fid in folders:
            self.fpath[fid] = self.folder_path(fid, folders)
        out["users"] = {}
        for u in users:
            c = {k: u.get(k) for k in ("pwd", "fullName", "email", "language", "theme", "comment", "hidden",
                                       "pwdExpiration", "loginfailures", "disabled", "quota")}
            c["pwdExpiration"] = c["pwdExpiration"] or None  # SQLite installs write '' for "never"
            if self.layout == "6.0":
                role = roles.get(u["role"])
                c["role"] = role["role"] if role else f"role#{u['role']}?"
                c["role_name"] = role["name"] if role else None
                c["secret"] = u.get("secret")
            else:
                c["role"] = u["role"]
            c["homefolder"] = self.fpath.get(u["homefolder"]) if u["homefolder"] else None
            out["users"][u["login"]] = c

        groups = {g["id"]: g for g in self.rows("tblGroups")}
        self.gname = {gid: g["name"] for gid, g in groups.items()}
        out["groups"] = {g["name"]: {"comment": g["comment"], "members": {}} for g in groups.values()}
        for m in self.rows("tblGroupMembers"):
            g = out["groups"].get(self.gname.get(m["groupID"]))
            if g is not None:
                g["members"][self.user(m["userID"])] = m["manager"]

        # attributes
        adefs = {a["id"]: a for a in self.rows("tblAttributeDefinitions")}
        self.aname = {aid: a["name"] for aid, a in adefs.items()}
        out["attrdefs"] = {a["name"]: {k: a[k] for k in ("objtype", "type", "multiple", "minvalues", "maxvalues",
                                                          "valueset", "regex")} for a in adefs.values()}

        # workflow definitions
        states = {s["id"]: s for s in self.rows("tblWorkflowStates")}
        self.sname = {sid: s["name"] for sid, s in states.items()}
        out["states"] = {s["name"]: {k: s[k] for k in ("visibility", "maxtime", "precondfunc", "documentstatus")}
                         for s in states.values()}
        actions = {a["id"]: a["name"] for a in self.rows("tblWorkflowActions")}
        out["actions"] = sorted(actions.values())
        wfs = {w["id"]: w for w in self.rows("tblWorkflows")}
        self.wname = {wid: w["name"] for wid, w in wfs.items()}
        self.defs = sdlib.Defs.load(db)
        self.tkey = {}
        for t in self.defs.transitions.values():
            self.tkey[t["id"]] = (f"{self.sname.get(t['state'], '?')} --{actions.get(t['action'], '?')}--> "
                                  f"{self.sname.get(t['nextstate'], '?')}")
        out["workflows"] = {}
        for w in wfs.values():
            c = {"initstate": self.sname.get(w["initstate"]), "transitions": {}}
            if self.layout == "6.0":
                c["layoutdata"] = w.get("layoutdata")
            for t in self.defs.transitions.values():
                if t["workflow"] != w["id"]:
                    continue
                c["transitions"][self.tkey[t["id"]]] = {
                    "maxtime": t["maxtime"],
                    "users": sorted(self.user(u) for u in self.defs.tusers.get(t["id"], ())),
                    "groups": {self.gname.get(g, f"group#{g}?"): m for g, m in self.defs.tgroups.get(t["id"], ())}}
            out["workflows"][w["name"]] = c

        # ACLs by target
        acls = {}
        for a in self.rows("tblACLs"):
            who = {"user": self.user(a["userID"])} if a["userID"] not in (-1, None) and a["userID"] > 0 \
                else {"group": self.gname.get(a["groupID"], f"group#{a['groupID']}?")}
            acls.setdefault((a["targetType"], a["target"]), []).append(dict(who, mode=a["mode"]))
        for v in acls.values():
            v.sort(key=lambda x: json.dumps(x, sort_keys=True))

        # folders
        fattrs = {}
        for a in self.rows("tblFolderAttributes"):
            fattrs.setdefault(a["folder"], {})[self.aname.get(a["attrdef"], "?")] = a["value"]
        out["folders"] = {}
        for f in folders.values():
            out["folders"][self.fpath[f["id"]]] = {
                "comment": f["comment"], "date": f["date"], "owner": self.user(f["owner"]),
                "inheritAccess": f["inheritAccess"], "defaultAccess": f["defaultAccess"],
                "sequence": float(f["sequence"]), "attributes": fattrs.get(f["id"], {}),
                "acls": acls.get((1, f["id"]), [])}

        # documents
        docs = self.rows("tblDocuments", "id")
        self.dkey = {}
        seen = {}
        for d in sorted(docs, key=lambda d: (d["date"] or 0, d["id"])):
            base = f"{self.fpath.get(d['folder'], '?')}/{d['name']}"
            seen[base] = seen.get(base, 0) + 1
            self.dkey[d["id"]] = base if seen[base] == 1 else f"{base} #{seen[base]}"
        dattrs, cattrs = {}, {}
        for a in self.rows("tblDocumentAttributes"):
            dattrs.setdefault(a["document"], {})[self.aname.get(a["attrdef"], "?")] = a["value"]
        for a in self.rows("tblDocumentContentAttributes"):
            cattrs.setdefault(a["content"], {})[self.aname.get(a["attrdef"], "?")] = a["value"]
        status = {}
        slog = {}
        for s in self.rows("tblDocumentStatusLog", "statusLogID"):
            slog.setdefault(s["statusID"], []).append(
                {"status": s["status"], "comment": s["comment"], "date": s["date"], "user": self.user(s["userID"])})
        for s in self.rows("tblDocumentStatus"):  # in statusLogID order: the last one is the status (facts 3.7)
            status[(s["documentID"], s["version"])] = slog.get(s["statusID"], [])
        runs = self.runs()
        out["documents"] = {}
        for d in docs:
            out["documents"][self.dkey[d["id"]]] = {
                "comment": d["comment"], "date": d["date"], "expires": d["expires"], "owner": self.user(d["owner"]),
                "inheritAccess": d["inheritAccess"], "defaultAccess": d["defaultAccess"],
                "locked": None if d["locked"] in (-1, None) else self.user(d["locked"]),
                "keywords": d["keywords"], "sequence": float(d["sequence"]), "attributes": dattrs.get(d["id"], {}),
                "acls": acls.get((2, d["id"]), []), "versions": {}}
        for c in self.rows("tblDocumentContent", "document, version"):
            d = out["documents"].get(self.dkey.get(c["document"]))
            if d is None:
                self.notes.append(f"version {c['version']} of document id {c['document']}: no such document")
                continue
            path = sdlib.version_path(self.files, c["document"], c["version"], c["fileType"], self.max_dir_id)
            if os.path.isfile(path):
                fileinfo = {"md5": sdlib.md5_file(path), "size": os.path.getsize(path)}
            else:
                fileinfo = "missing"
                self.notes.append(f"{self.dkey[c['document']]} version {c['version']}: file "
                                  f"{os.path.relpath(path, self.files)} missing below {self.files}")
            v = {k: c[k] for k in ("comment", "date", "orgFileName", "fileType", "mimeType", "fileSize", "checksum")}
            v["createdBy"] = self.user(c["createdBy"])
            if self.layout == "6.0":
                v["revisiondate"] = c.get("revisiondate")
            v["file"] = fileinfo
            v["attributes"] = cattrs.get(c["id"], {})
            v["status"] = status.get((c["document"], c["version"]), [])
            vr = runs.get((c["document"], c["version"]), [])
            v["runs"] = [r["canon"] for r in vr]
            v["current"] = self.current(vr)
            d["versions"][str(c["version"])] = v
        out["notes"] = self.notes
        return out

    def user(self, uid):
        if uid is None:
            return None
        return self.login.get(uid, f"user#{uid}?")

    def folder_path(self, fid, folders, depth=0):
        f = folders.get(fid)
        if f is None or depth > 200:
            return f"folder#{fid}?"
        if not f["parent"]:
            return "/" + f["name"]
        return self.folder_path(f["parent"], folders, depth + 1) + "/" + f["name"]

    def log_entry(self, e):
        return {"user": self.user(e["userid"]), "transition": self.tkey.get(e["transition"], f"#{e['transition']}?"),
                "date": e["date"], "comment": e["comment"]}

    def runs(self):
        """{(document, version): [run]}, each run {state id, date, log (raw), canon}, in canonical order."""
        result = {}
        log = self.rows("tblWorkflowLog", "id")
        wdc = self.rows("tblWorkflowDocumentContent")
        if self.layout == "6.0":
            by_run = {}
            for e in log:
                by_run.setdefault(e["workflowdocumentcontent"], []).append(e)
            known = {r["id"] for r in wdc}
            for rid in by_run:
                if rid not in known:
                    self.notes.append(f"{len(by_run[rid])} log entries refer to run id {rid}, which does not exist")
            for r in wdc:
                result.setdefault((r["document"], r["version"]), []).append(
                    {"id": r["id"], "parent": r["parent"], "workflow": r["workflow"], "state": r["state"],
                     "date": r["date"], "log": by_run.get(r["id"], [])})
        else:
            triples = {}
            for e in log:
                triples.setdefault((e["document"], e["version"], e["workflow"]), []).append(e)
            active = {}
            for r in wdc:
                active.setdefault((r["document"], r["version"], r["workflow"]), []).append(r)
            initstate = {w: None for w in self.wname}
            for w in self.rows("tblWorkflows"):
                initstate[w["id"]] = w["initstate"]
            n = 0
            for key in sorted(set(triples) | set(active), key=lambda k: tuple(-1 if x is None else x for x in k)):
                rows = sorted(active.get(key, []), key=lambda r: r["date"])
                replayed = sdlib.replay_runs(self.defs, initstate, triples.get(key, []),
                                             rows[-1] if rows else None)
                for extra in rows[:-1]:  # 5.1 allows two rows for one triple (facts 5); they share the log
                    replayed.insert(0, {"log": [], "state": extra["state"], "active_row": extra})
                for r in replayed:
                    n += 1
                    if r.get("unfinished"):
                        self.notes.append(f"document id {key[0]} version {key[1]}: a run of workflow "
                                          f"{self.wname.get(key[2])} ends in no released/rejected state and "
                                          "has no active row; taken as finished")
                    row = r.get("active_row")
                    date = row["date"] if row else r["log"][-1]["date"]
                    parent = None
                    if row and row.get("parentworkflow"):
                        parent = ("wf", row["parentworkflow"])
                    result.setdefault(key[:2], []).append(
                        {"id": ("r", n), "parent": parent, "workflow": key[2], "state": r["state"], "date": date,
                         "log": r["log"]})
            # a 5.1 sub-workflow names its parent by workflow id: the version's active run of that workflow
            for runs in result.values():
                for r in runs:
                    if isinstance(r["parent"], tuple) and r["parent"][0] == "wf":
                        match = [p for p in runs if p["workflow"] == r["parent"][1] and p["state"] is not None]
                        r["parent"] = match[0]["id"] if match else None
        for runs in result.values():
            def order(r):
                first = min([r["date"]] + [e["date"] for e in r["log"]])
                return (first, self.wname.get(r["workflow"], ""), str(r["state"]))
            runs.sort(key=order)
            index = {r["id"]: i for i, r in enumerate(runs)}
            for r in runs:
                r["canon"] = {"workflow": self.wname.get(r["workflow"], f"workflow#{r['workflow']}?"),
                              "state": None if r["state"] is None else self.sname.get(r["state"], "?"),
                              "date": r["date"],
                              "parent": index.get(r["parent"]) if r["parent"] is not None else None,
                              "log": [self.log_entry(e) for e in sorted(r["log"], key=lambda e: (e["date"], e["id"]))]}
        return result

    def current(self, runs):
        """facts 7.1: the run with a state and the newest date; with the users offered each next transition."""
        live = [r for r in runs if r["state"] is not None]
        if not live:
            return None
        cur = max(live, key=lambda r: r["date"])
        offered = {}
        for t in self.defs.leaving(cur["workflow"], cur["state"]):
            offered[self.tkey[t]] = sorted(self.user(u) for u in self.defs.offered(t, cur["log"]))
        return {"run": runs.index(cur), "workflow": self.wname.get(cur["workflow"]),
                "state": self.sname.get(cur["state"]), "offered": offered}


# ---- comparing ---------------------------------------------------------------------------------------------
def strip_layout(c, target_layout, layouts_differ):
    c = json.loads(json.dumps(c))
    c.pop("meta", None)
    c.pop("notes", None)
    if layouts_differ:
        c.pop("roles", None)
        for u in c["users"].values():
            u.pop("secret", None)
            u.pop("role_name", None)
        for w in c["workflows"].values():
            w.pop("layoutdata", None)
        for d in c["documents"].values():
            for v in d["versions"].values():
                v.pop("revisiondate", None)
                if target_layout == "5.1":
                    for r in v["runs"]:
                        if r["state"] is None:
                            r.pop("date", None)
    return c


def show(v):
    return json.dumps(v, ensure_ascii=False, sort_keys=True)


def diff(a, b, path, out):
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            p = f"{path}[{json.dumps(k, ensure_ascii=False)}]"
            if k not in b:
                out.append(f"{p}: only in source: {show(a[k])[:300]}")
            elif k not in a:
                out.append(f"{p}: only in target: {show(b[k])[:300]}")
            else:
                diff(a[k], b[k], p, out)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) == len(b):
            for i, (x, y) in enumerate(zip(a, b)):
                diff(x, y, f"{path}[{i}]", out)
            return
        out.append(f"{path}: source has {len(a)} entries, target {len(b)}")
        rest = [show(y) for y in b]
        for x in a:
            sx = show(x)
            if sx in rest:
                rest.remove(sx)
            else:
                out.append(f"{path}: missing in target: {sx[:300]}")
        for sy in rest:
            out.append(f"{path}: extra in target: {sy[:300]}")
    elif a != b or type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))):
        out.append(f"{path}: source {show(a)}, target {show(b)}")


def blocked(canon):
    """Documents with a version whose file is missing: the ones a migration's plan blocks."""
    return sorted(k for k, d in canon["documents"].items()
                  if any(v["file"] == "missing" for v in d["versions"].values()))


def compare(src, tgt, ignore=()):
    differs = src["meta"]["layout"] != tgt["meta"]["layout"]
    a = strip_layout(src, tgt["meta"]["layout"], differs)
    b = strip_layout(tgt, tgt["meta"]["layout"], differs)
    for key in ignore:
        a["documents"].pop(key, None)
        b["documents"].pop(key, None)
    out = []
    diff(a, b, "", out)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare", help="assert that the target holds the source (exit 1 and list differences)")
    for side in ("source", "target"):
        c.add_argument(f"--{side}", required=True, help="sqlite:PATH or mariadb:SOCKET:DATABASE")
        c.add_argument(f"--{side}-content", required=True, help="its contentDir")
        c.add_argument(f"--{side}-max-dir-id", type=int, default=0, help="its maxDirID setting (default 0)")
    c.add_argument("--offset-dir", default="1048576", help="contentOffsetDir of both (default 1048576)")
    c.add_argument("--ignore-document", action="append", default=[], metavar="PATH",
                   help="leave out this document (folder path/name, as printed), e.g. one the plan blocked")
    c.add_argument("--ignore-missing-files", action="store_true",
                   help="leave out every document with a version whose file is missing on the source")
    c.add_argument("--quiet", action="store_true", help="no notes")
    k = sub.add_parser("canon", help="print the canonical JSON form of one installation")
    k.add_argument("--db", required=True)
    k.add_argument("--content", required=True)
    k.add_argument("--max-dir-id", type=int, default=0)
    k.add_argument("--offset-dir", default="1048576")
    k.add_argument("--out", help="write to this file instead of stdout")
    a = p.parse_args()
    try:
        if a.cmd == "canon":
            text = json.dumps(canonical(a.db, a.content, a.max_dir_id, a.offset_dir), indent=1,
                              ensure_ascii=False, sort_keys=True)
            if a.out:
                with open(a.out, "w", encoding="utf-8") as f:
                    f.write(text + "\n")
            else:
                print(text)
            return 0
        src = canonical(a.source, a.source_content, a.source_max_dir_id, a.offset_dir)
        tgt = canonical(a.target, a.target_content, a.target_max_dir_id, a.offset_dir)
    except sdlib.ToolError as e:
        sdlib.die(str(e))
    if not a.quiet:
        for side, c_ in (("source", src), ("target", tgt)):
            for n in c_["notes"]:
                print(f"note: {side}: {n}")
    ignore = list(a.ignore_document)
    if a.ignore_missing_files:
        for key in blocked(src):
            print(f"note: left out (file missing on the source): {key}")
            ignore.append(key)
    out = compare(src, tgt, ignore)
    for line in out:
        print(f"DIFF {line}")
    nd = len(src["documents"])
    nv = sum(len(d["versions"]) for d in src["documents"].values())
    nr = sum(len(v["runs"]) for d in src["documents"].values() for v in d["versions"].values())
    if out:
        print(f"sdcheck: target differs from source: {len(out)} differences "
              f"(source: {nd} documents, {nv} versions, {nr} workflow runs)")
        return 1
    print(f"sdcheck: target equals source ({src['meta']['layout']} {src['meta']['engine']} -> "
          f"{tgt['meta']['layout']} {tgt['meta']['engine']}): {len(src['users'])} users, {len(src['groups'])} "
          f"groups, {len(src['workflows'])} workflows, {nd} documents, {nv} versions, {nr} workflow runs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
