#!/usr/bin/env python3
"""After a migration: is the next workflow step offered to the same people, and does firing it behave the same?

    sdfire.py offers --source SPEC --source-content DIR --target SPEC --target-content DIR
    sdfire.py fire   --source SPEC --source-content DIR --target SPEC --target-content DIR [--sample N]

offers: for every active (current) run of every document version, on the source and on the target, the set of
(transition, logins who may trigger it now) computed from the tables as SeedDMS 6 does (docs/seeddms-facts.md
7.1-7.2: transition users plus members of transition groups, less those who already acted on it in this run),
compared by document, version, transition name and login (--skip-absent: leave out documents the target does
not hold at all, e.g. those a plan blocked). Prints "offers equal: N runs, M (transition, user)
pairs" and exits 0, or one "OFFER ..." line per difference and exits 1.

fire: for a sample of N active runs (every k-th by document name, deterministic), takes the first transition
leaving the current state that someone may trigger and the first such login, and triggers it on the target the
way SeedDMS 6 does (facts 7.2, 7.3): one tblWorkflowLog row (run, user, transition, now, comment), then, with
the target's own definitions, the run moves to the next state if that state has no pre-condition function and a
transition into it has fired in this run; a state mapped to released or rejected ends the run (state NULL). The
same trigger is replayed in memory on the source's definitions (the source is never written), and the target's
run after the trigger (state, log, who is offered what next) must equal what the source would have done.
Prints "fired N transitions (M state changes, K runs ended)" and exits 0, or "FIRE ..." lines and exits 1.
Either side may be on the 5.1 layout: its runs are rebuilt from the log (facts 8). On a 5.1 target the trigger
is written as SeedDMS 5.1 does it (facts 5): the log row names (document, version, workflow), a state change
updates the rows of that triple, and a run that ends has its row deleted.
"""
import argparse
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sdlib  # noqa: E402
from sdcheck import Canon  # noqa: E402


def load(spec, content):
    db = sdlib.Db(spec).open()
    c = Canon(db, os.path.join(content, "1048576"), 0)
    c.build()
    runs = c.runs()
    return db, c, runs


def current(runs):
    live = [r for r in runs if r["state"] is not None]
    return max(live, key=lambda r: r["date"]) if live else None


def offers_of(c, run, log=None):
    """{transition name: sorted logins} for the transitions leaving RUN's state."""
    log = run["log"] if log is None else log
    return {c.tkey[t]: sorted(c.user(u) for u in c.defs.offered(t, log))
            for t in c.defs.leaving(run["workflow"], run["state"])}


def by_version(c, runs):
    """{(document key, version): current run} of one installation."""
    out = {}
    for (doc, ver), rs in runs.items():
        cur = current(rs)
        if cur is not None and doc in c.dkey:
            out[(c.dkey[doc], ver)] = cur
    return out


def cmd_offers(a):
    _, cs, rs = load(a.source, a.source_content)
    _, ct, rt = load(a.target, a.target_content)
    src, tgt = by_version(cs, rs), by_version(ct, rt)
    bad = pairs = skipped = 0
    for k in sorted(set(src) | set(tgt)):
        if k[0] in a.ignore_document:
            continue
        if a.skip_absent and k not in tgt and k[0] not in ct.dkey.values():
            skipped += 1
            continue
        if k not in tgt:
            print(f"OFFER {k[0]} v{k[1]}: active run on the source only"); bad += 1; continue
        if k not in src:
            print(f"OFFER {k[0]} v{k[1]}: active run on the target only"); bad += 1; continue
        so, to = offers_of(cs, src[k]), offers_of(ct, tgt[k])
        if cs.sname.get(src[k]["state"]) != ct.sname.get(tgt[k]["state"]):
            print(f"OFFER {k[0]} v{k[1]}: state {cs.sname.get(src[k]['state'])!r} on the source, "
                  f"{ct.sname.get(tgt[k]['state'])!r} on the target"); bad += 1
        for t in sorted(set(so) | set(to)):
            if so.get(t) != to.get(t):
                print(f"OFFER {k[0]} v{k[1]} {t}: source offers {so.get(t)}, target {to.get(t)}"); bad += 1
            pairs += len(so.get(t) or [])
    if bad:
        return 1
    print(f"offers equal: {len(src) - skipped} runs, {pairs} (transition, user) pairs"
          + (f"; {skipped} runs of documents absent from the target left out" if skipped else ""))
    return 0


def trigger(c, run, tid, uid, when):
    """The run after USER triggers TRANSITION (facts 7.2-7.3), in memory: (state or None, log)."""
    entry = {"id": 1 << 40, "userid": uid, "transition": tid, "date": when, "comment": "ferry sdfire"}
    log = run["log"] + [entry]
    state = c.defs.step(run["workflow"], run["state"], log)
    return (None if c.defs.ends_run(state) else state), log, state != run["state"]


def tid_of(c, run, tname):
    """The id of the transition named TNAME leaving RUN's state in RUN's workflow."""
    return next(t for t in c.defs.leaving(run["workflow"], run["state"]) if c.tkey[t] == tname)


def cmd_fire(a):
    _, cs, rs = load(a.source, a.source_content)
    tdb, ct, rt = load(a.target, a.target_content)
    src, tgt = by_version(cs, rs), by_version(ct, rt)
    s_user = {v: k for k, v in cs.login.items()}
    t_user = {v: k for k, v in ct.login.items()}
    cands = []
    for k in sorted(tgt):
        if k not in src:
            continue
        off = offers_of(ct, tgt[k])
        pick = next(((t, u[0]) for t, u in sorted(off.items()) if u), None)
        if pick:
            cands.append((k, pick))
    if not cands:
        print("FIRE no active run with a transition anyone may trigger"); return 1
    step = max(1, len(cands) // a.sample)
    sample = cands[::step][:a.sample]
    when = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    bad = moved = ended = 0
    fired = []
    for (k, (tname, login)) in sample:
        trun, srun = tgt[k], src[k]
        s_tid = tid_of(cs, srun, tname)
        t_tid = tid_of(ct, trun, tname)
        # the source's answer, in memory
        s_state, s_log, s_moved = trigger(cs, srun, s_tid, s_user[login], when)
        # the target: as SeedDMS does it, with the target's definitions
        t_state, _, t_moved = trigger(ct, trun, t_tid, t_user[login], when)
        if ct.layout == "5.1":
            docid = next(d for d, key in ct.dkey.items() if key == k[0])
            triple = (trun["workflow"], docid, k[1])
            tdb.execute("INSERT INTO tblWorkflowLog (document, version, workflow, userid, transition, date, comment) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", (docid, k[1], trun["workflow"], t_user[login], t_tid, when,
                                                         "ferry sdfire"))
            if t_moved and t_state is None:
                tdb.execute("DELETE FROM tblWorkflowDocumentContent WHERE workflow = ? AND document = ? AND version = ?",
                            triple)
            elif t_moved:
                tdb.execute("UPDATE tblWorkflowDocumentContent SET state = ? WHERE workflow = ? AND document = ? "
                            "AND version = ?", (t_state,) + triple)
        else:
            tdb.execute("INSERT INTO tblWorkflowLog (workflowdocumentcontent, userid, transition, date, comment) "
                        "VALUES (?, ?, ?, ?, ?)", (trun["id"], t_user[login], t_tid, when, "ferry sdfire"))
            if t_moved:
                tdb.execute("UPDATE tblWorkflowDocumentContent SET state = ? WHERE id = ?", (t_state, trun["id"]))
        moved += t_moved
        ended += t_moved and t_state is None
        fired.append((k, tname, login, trun, srun, t_tid, s_state, s_log, s_moved, t_moved))
    # read the target back once and compare each run with the source's answer
    tdb.close()
    tdb, ct2, rt2 = load(a.target, a.target_content)
    for (k, tname, login, trun, srun, t_tid, s_state, s_log, s_moved, t_moved) in fired:
        docid = next(d for d, key in ct2.dkey.items() if key == k[0])
        after = next(r for r in rt2[(docid, k[1])] if r["id"] == trun["id"])
        want_state = None if s_state is None else cs.sname.get(s_state)
        got_state = None if after["state"] is None else ct2.sname.get(after["state"])
        what = f"{k[0]} v{k[1]}: {login} triggers {tname}"
        if got_state != want_state or s_moved != t_moved:
            print(f"FIRE {what}: target run in state {got_state!r}, the source would be in {want_state!r}"); bad += 1
        if not any(e["userid"] == t_user[login] and e["transition"] == t_tid and str(e["date"])[:19] == when
                   for e in after["log"]):
            print(f"FIRE {what}: the log entry is not in the target's run"); bad += 1
        if s_state is not None:
            so = offers_of(cs, dict(srun, state=s_state), s_log)
            to = offers_of(ct2, after)
            if so != to:
                print(f"FIRE {what}: next offers differ: source {so}, target {to}"); bad += 1
            if not s_moved and login in so.get(tname, []):
                print(f"FIRE {what}: {login} is still offered the transition after triggering it"); bad += 1
    tdb.close()
    if bad:
        return 1
    print(f"fired {len(sample)} transitions ({moved} state changes, {ended} runs ended)")
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["offers", "fire"])
    p.add_argument("--source", required=True)
    p.add_argument("--source-content", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--target-content", required=True)
    p.add_argument("--sample", type=int, default=6)
    p.add_argument("--ignore-document", action="append", default=[])
    p.add_argument("--skip-absent", action="store_true",
                   help="offers: leave out the runs of source documents the target does not hold at all")
    a = p.parse_args()
    try:
        return cmd_offers(a) if a.command == "offers" else cmd_fire(a)
    except sdlib.ToolError as e:
        print(f"sdfire: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
