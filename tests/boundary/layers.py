#!/usr/bin/env python3
"""The core reads top-down, checked on the objects of ferry_core (the calls the linker will resolve).

  layers.py SDK_INCLUDE_DIR OBJECT...

Every object's undefined symbols that another core object defines are its calls into that object. Rules:
  - no object but runtime.c's calls a function (or uses a global) defined in runtime.c: the runtime is the
    top of a run, never a service of the parts below it;
  - layers call only themselves and the layers below: base < load < services < journal < run (the
    journal runs a PostgreSQL journal through the SQL service);
  - inside run: progress, report, outcome < pipeline, stage, task, hook, worker, listing (the stage machinery, which may
    call each other) < runtime.
And the naming rule: every global an object defines is an SDK function (FERRY_API in
SDK_INCLUDE_DIR/ferry/*.h) or is named ferry__* (internal).
Fails naming each call that breaks a rule (caller object, symbol, callee object) and each misnamed global.
"""
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from boundary import sdk_functions  # noqa: E402

RANK = {"base": 0, "load": 1, "services": 2, "journal": 3, "run": 4}
RUN_RANK = {"progress": 0, "report": 0, "outcome": 0, "pipeline": 1, "stage": 1, "task": 1, "hook": 1, "worker": 1, "listing": 1,
            "runtime": 2}


def where(path):
    """(layer, file stem) of a core object, from its path (.../ferry_core.dir/<layer>/<file>.c.o)."""
    stem = os.path.basename(path).split(".")[0]
    if stem.startswith("builtin_"):  # generated tables of the loader (build tree)
        return "load", stem
    parts = path.replace("\\", "/").split("/")
    for layer in RANK:
        if layer in parts[:-1]:
            return layer, stem
    sys.exit(f"FAIL: {path}: cannot tell its layer (expected core/<layer>/<file>.c)")


def symbols(path):
    out = subprocess.run(["nm", path], check=True, capture_output=True, text=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1].isupper() and parts[1] not in "UN":  # global definitions
            defined.add(parts[2])
    return defined, undefined


def main(include_dir, objects):
    api, _ = sdk_functions(include_dir)
    if len(objects) < 10:
        sys.exit(f"FAIL: only {len(objects)} objects given: expected the objects of ferry_core")
    info = {}
    owner = {}
    problems = []
    for o in objects:
        d, u = symbols(o)
        info[o] = (where(o), u)
        for s in d:
            owner[s] = o
            if s.startswith("__") or s.startswith("ferry_plugin_"):  # sanitizer data; plugin descriptors
                continue
            if s not in api and not s.startswith("ferry__"):
                layer, stem = where(o)
                problems.append(f"{layer}/{stem}.c defines the global {s}: neither an SDK function nor "
                                "named ferry__ (internal)")
    runtime = [o for o in objects if where(o) == ("run", "runtime")]
    if len(runtime) != 1:
        sys.exit(f"FAIL: expected one object of run/runtime.c, found {runtime}")
    calls = 0
    for o, ((layer, stem), undefined) in sorted(info.items()):
        for s in sorted(undefined):
            t = owner.get(s)
            if not t or t == o:
                continue
            calls += 1
            tl, ts = where(t)
            name = f"{layer}/{stem}.c"
            tname = f"{tl}/{ts}.c"
            if t == runtime[0]:
                problems.append(f"{name} calls {s}, defined in {tname}: "
                                "the runtime is not a service of the parts below")
            elif tl != layer and (RANK[tl] >= RANK[layer]):
                problems.append(f"{name} (layer {layer}) calls {s} of {tname} (layer {tl}): "
                                "a layer calls only the layers below it")
            elif tl == layer == "run" and RUN_RANK.get(ts, 9) > RUN_RANK.get(stem, 9):
                problems.append(f"{name} calls {s} of {tname}: upward inside the run layer")
    if problems:
        print("\n".join("FAIL: " + p for p in problems))
        sys.exit(1)
    print(f"ok: {len(objects)} objects, {calls} calls between them, all top-down")


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2:])
