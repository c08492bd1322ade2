#!/usr/bin/env python3
"""Checks of ferry's HTML report as a browser rendered it (tests/e2e/e2e.sh, scenario html).

  htmlcheck.py dom DOM STATUS_JSON ITEMS_JSON MAP_CSV POISON_RECORD
      DOM: what `chromium --dump-dom` printed (the page after its script ran). Compares it with the journal as
      `ferry status --json`, `ferry status --items --json` and `ferry export-map` show it: the verdict, the
      per-stage counts, one table row per item (per instance) with its status, target id and record id, the
      planted failure (the instance whose record the target refused) with its cause, and the embedded id map.
  htmlcheck.py rows DOM KEY...
      the item rows left visible (a search preset by the fragment) are exactly the given keys, in that order
  htmlcheck.py order DOM
      prints the visible rows' source ids in page order (to check a sort)
  htmlcheck.py netlog NETLOG PAGE_URL
      every request the page made (chromium's --log-net-log; the browser's own background requests, whose
      initiator is "not an origin", aside) is the page itself: exit 1, naming them, otherwise
  htmlcheck.py static PAGE SECRET...
      the file has a Content-Security-Policy allowing nothing but inline script and style, no reference to
      anything outside it (src=, href= to a URL, @import, url()), and none of the secrets
Exit 0 when every check passes; each failure is printed.
"""
import csv
import html.parser
import json
import re
import sys

fails = []


def bad(msg):
    fails.append(msg)
    print("FAIL: " + msg)


class Dom(html.parser.HTMLParser):
    """Elements with their attributes and text, and the rows of the tables by id."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.by_id, self.tables, self.sections = [], {}, {}, []
        self.table, self.row, self.cell, self.script = None, None, None, None
        self.html_attrs = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        el = {"tag": tag, "attrs": a, "text": ""}
        if tag == "html":
            self.html_attrs = a
        if "id" in a:
            self.by_id[a["id"]] = el
        if tag in ("br", "meta", "input", "link", "img"):
            return
        self.stack.append(el)
        if tag == "table":
            self.table = a.get("id")
            self.tables.setdefault(self.table, [])
        elif tag == "tr" and self.table:
            self.row = {"attrs": a, "cells": []}
            self.tables[self.table].append(self.row)
        elif tag in ("td", "th") and self.row is not None:
            self.cell = {"attrs": a, "text": ""}
            self.row["cells"].append(self.cell)
        elif tag == "section":
            self.sections.append(el)

    def handle_endtag(self, tag):
        while self.stack:
            el = self.stack.pop()
            if el["tag"] == tag:
                break
        if tag == "table":
            self.table = None
        elif tag == "tr":
            self.row = None
        elif tag in ("td", "th"):
            self.cell = None

    def handle_data(self, data):
        for el in self.stack:
            el["text"] += data
        if self.cell is not None:
            self.cell["text"] += data


def parse(path):
    d = Dom()
    d.feed(open(path, encoding="utf-8").read())
    return d


def body_rows(d, table):
    return [r for r in d.tables.get(table, []) if r["cells"] and r["cells"][0]["attrs"].get("class") is not None
            and r["attrs"].get("data-status") is not None] if table == "items" else \
        [r for r in d.tables.get(table, []) if r["attrs"].get("data-stage")]


def cell(row, cls):
    for c in row["cells"]:
        if cls in (c["attrs"].get("class") or "").split():
            return c["text"].strip()
    return None


def check_dom(dom, status_json, items_json, map_csv, poison):
    d = parse(dom)
    if d.html_attrs.get("data-ready") != "1":
        bad("the page's script did not run to its end (no data-ready on <html>)")
    status = json.load(open(status_json))
    items = json.load(open(items_json))
    items = items["items"] if isinstance(items, dict) else items
    # verdict: failed items as the journal has them
    failed = sum(1 for i in items if i["status"] == "failed" or (i["status"] == "done" and i.get("error")))
    doubt = sum(1 for i in items if i["status"] == "in_doubt")
    v = d.by_id.get("verdict")
    if not v:
        bad("no verdict")
    else:
        print("verdict: " + v["text"].strip())
        if v["attrs"].get("data-failed") != str(failed):
            bad("verdict: data-failed %s, the journal has %d failed items" % (v["attrs"].get("data-failed"), failed))
        if failed and ("%d failed" % failed) not in v["text"]:
            bad("verdict text %r does not say %d failed" % (v["text"], failed))
        if v["attrs"].get("data-in-doubt") != str(doubt):
            bad("verdict: data-in-doubt %s, the journal has %d" % (v["attrs"].get("data-in-doubt"), doubt))
    # per stage counts = the journal's
    srows = {r["attrs"]["data-stage"]: r for r in body_rows(d, "stages")}
    for st in status["stages"]:
        r = srows.get(st["name"])
        if not r:
            bad("stage %s missing from the stages table" % st["name"])
            continue
        total = st["done"] + st["skipped"] + st["failed"] + st["in_doubt"]
        for cls, want in (("j-total", total), ("j-done", st["done"]), ("j-skipped", st["skipped"]),
                          ("j-failed", st["failed"]), ("j-in-doubt", st["in_doubt"])):
            if cell(r, cls) != str(want):
                bad("stage %s: %s shows %s, the journal has %d" % (st["name"], cls, cell(r, cls), want))
    if len(srows) != len(status["stages"]):
        bad("stages table has %d stages, the journal %d" % (len(srows), len(status["stages"])))
    # one row per item, per instance
    rows = body_rows(d, "items")
    if len(rows) != len(items):
        bad("items table has %d rows, the journal %d items" % (len(rows), len(items)))
    by = {}
    for r in rows:
        k = (r["attrs"].get("data-stage"), cell(r, "key"))
        if k in by:
            bad("two rows for %s/%s" % k)
        by[k] = r
    n_inst = 0
    poison_row = None
    for it in items:
        r = by.get((it["stage"], it["key"]))
        if not r:
            bad("no row for %s/%s" % (it["stage"], it["key"]))
            continue
        want = {"intent": "in_doubt"}.get(it["status"], it["status"])
        if it["status"] == "done" and it.get("error"):
            want = "failed"
        if it.get("verify") and want == "done":
            want = "differs"
        if r["attrs"].get("data-status") != want or cell(r, "status") != want:
            bad("%s/%s: row status %s, journal %s" % (it["stage"], it["key"], cell(r, "status"), want))
        if it["stage"] == "instances":
            n_inst += 1
            rep = it.get("report") or {}
            tid = rep.get("target_id") or ""
            if (cell(r, "target") or "") != tid:
                bad("instance %s: target id %r, journal %r" % (it["key"], cell(r, "target"), tid))
            if rep.get("record_id") and cell(r, "record") != rep.get("record_id"):
                bad("instance %s: record id %r, journal %r" % (it["key"], cell(r, "record"), rep.get("record_id")))
            if rep.get("definition") and not (cell(r, "definition") or "").startswith(rep["definition"]):
                bad("instance %s: definition %r, journal %r" % (it["key"], cell(r, "definition"), rep["definition"]))
            acts = [a.get("activity") for a in rep.get("open_activities") or []]
            if acts and cell(r, "activities") != ", ".join(acts):
                bad("instance %s: open activities %r, journal %r" % (it["key"], cell(r, "activities"), acts))
            who = []
            for a in rep.get("open_activities") or []:
                who += [u for u in a.get("assignees") or [] if u not in who]
            if (cell(r, "assignees") or "") != ", ".join(who):
                bad("instance %s: assignees %r, journal %r" % (it["key"], cell(r, "assignees"), who))
            if (cell(r, "adopted") == "yes") != bool(rep.get("adopted")):
                bad("instance %s: adopted %r, journal %r" % (it["key"], cell(r, "adopted"), rep.get("adopted")))
            for ch in rep.get("tools_changed") or []:
                if "%s.%s" % (ch.get("table"), ch.get("column")) not in (cell(r, "startpath") or ""):
                    bad("instance %s: start-path change %s.%s not shown" % (it["key"], ch.get("table"), ch.get("column")))
            kinds = [l.get("kind") or "loss" for l in rep.get("losses") or []]
            if (cell(r, "losses") or "") != ", ".join(kinds):
                bad("instance %s: losses %r, journal %r" % (it["key"], cell(r, "losses"), kinds))
            if rep.get("record_id") == poison:
                poison_row = (it, r)
    inst_rows = sum(1 for r in rows if r["attrs"].get("data-stage") == "instances")
    if inst_rows != n_inst or n_inst == 0:
        bad("%d instance rows, the journal %d instances" % (inst_rows, n_inst))
    # the planted failure: its row and its cause
    if not poison_row:
        bad("no instance row with the refused record %s" % poison)
    else:
        it, r = poison_row
        if r["attrs"].get("data-status") != "failed":
            bad("the refused record's instance is %s, not failed" % r["attrs"].get("data-status"))
        if "app_fd_onboard" not in (cell(r, "err") or ""):
            bad("the refused record's row does not name the table: %r" % cell(r, "err"))
    causes = [s for s in d.sections if "cause" in (s["attrs"].get("class") or "").split()]
    print("causes: %d" % len(causes))
    for want in ("is in app_fd_onboard on the source but not on the target", "refused by the test"):
        hit = [s for s in causes if want in s["text"]]
        if not hit:
            bad("no cause section says %r" % want)
        elif "Fix:" not in hit[0]["text"]:
            bad("the cause %r has no fix text" % want)
        elif hit[0]["attrs"].get("data-class") != "failed":
            bad("the cause %r is of class %s" % (want, hit[0]["attrs"].get("data-class")))
    if sum(int(s["attrs"].get("data-count", 0)) for s in causes) != failed + doubt:
        bad("the causes count %d items, the journal has %d failed and %d in doubt" %
            (sum(int(s["attrs"].get("data-count", 0)) for s in causes), failed, doubt))
    if poison_row and not any(poison_row[0]["key"] in s["text"] for s in causes):
        bad("the refused record's instance %s is not listed under a cause" % poison_row[0]["key"])
    # the id map the page offers as CSV = export-map's
    m = d.by_id.get("idmap")
    want_ids = [[r["kind"], r["old_id"], r["new_id"], r["stage"], r["key"], r["created"]]
                for r in csv.DictReader(open(map_csv, newline=""))]
    if not m:
        bad("no id map in the page")
    else:
        got = json.loads(m["text"])
        if got != want_ids:
            bad("the page's id map (%d ids) differs from export-map's (%d)" % (len(got), len(want_ids)))
        b = d.by_id.get("csv")
        if not b or b["attrs"].get("data-ids") != str(len(want_ids)):
            bad("the CSV button does not say %d ids" % len(want_ids))
    # the charts are there, drawn by ferry
    svgs = re.findall(r"<svg class=\"(\w+)\"", open(dom, encoding="utf-8").read())
    for kind in ("series", "outcomes", "latency"):
        if kind not in svgs:
            bad("no %s chart" % kind)
    changed = sum(1 for i in items if i["stage"] == "instances" and (i.get("report") or {}).get("tools_changed"))
    lossy = sum(1 for i in items if i["stage"] == "instances" and (i.get("report") or {}).get("losses"))
    if not changed or not lossy:
        bad("the run has %d instances with start-path changes and %d with losses: the test shows neither column"
            % (changed, lossy))
    print("rows %d (instances %d; %d with start-path changes, %d with losses), ids %d, charts %s" %
          (len(rows), n_inst, changed, lossy, len(want_ids), sorted(set(svgs))))


def visible_keys(dom):
    d = parse(dom)
    return [cell(r, "key") for r in body_rows(d, "items") if "hidden" not in r["attrs"]]


def check_netlog(path, page):
    j = json.load(open(path))
    c = j["constants"]
    start = c["logEventTypes"]["URL_REQUEST_START_JOB"]
    seen, foreign = set(), set()
    for e in j["events"]:
        p = e.get("params") or {}
        if e["type"] != start or "url" not in p:
            continue
        if p.get("initiator") == "not an origin" and "file://" not in p.get("network_isolation_key", ""):
            continue  # the browser's own (component updater, time, accounts): not the page's
        seen.add(p["url"])
        if not re.match(r"(file|data|blob|about):", p["url"]):
            foreign.add(p["url"])
    for u in sorted(foreign):
        bad("the page made a request to %s" % u)
    print("page requests: %s" % (sorted(seen) or "none but the file itself"))


def check_static(page, secrets):
    text = open(page, encoding="utf-8").read()
    m = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)"', text)
    if not m:
        bad("no Content-Security-Policy")
    else:
        csp = dict((d.split()[0], d.split()[1:]) for d in m.group(1).split(";") if d.strip())
        if csp.get("default-src") != ["'none'"]:
            bad("CSP default-src is %s" % csp.get("default-src"))
        if csp.get("script-src") != ["'unsafe-inline'"] or csp.get("style-src") != ["'unsafe-inline'"]:
            bad("CSP allows more than inline script and style: %s" % m.group(1))
    for pat in (r'\ssrc\s*=', r'\shref\s*=\s*"(?!#)', r'@import', r'url\('):
        for hit in re.findall(r'.{0,40}' + pat + r'.{0,60}', text):
            bad("a reference out of the page: %s" % hit)
    for s in secrets:
        if s and s in text:
            bad("a secret of the configuration is in the page (%d characters)" % len(s))
    print("page: %d bytes, %d secrets checked" % (len(text), len([s for s in secrets if s])))


def main():
    cmd = sys.argv[1]
    if cmd == "dom":
        check_dom(*sys.argv[2:7])
    elif cmd == "rows":
        got, want = visible_keys(sys.argv[2]), sys.argv[3:]
        if got != want:
            bad("visible rows %s, expected %s" % (got, want))
    elif cmd == "order":
        print("\n".join(k or "" for k in visible_keys(sys.argv[2])))
    elif cmd == "netlog":
        check_netlog(sys.argv[2], sys.argv[3])
    elif cmd == "static":
        check_static(sys.argv[2], sys.argv[3:])
    else:
        print("unknown command " + cmd)
        return 2
    return 1 if fails else 0


if __name__ == "__main__":
    sys.exit(main())
