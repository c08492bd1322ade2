#!/usr/bin/env python3
"""The SDK boundary, checked on the built files.

  boundary.py exports SDK_INCLUDE_DIR LIBFERRY BUILTIN_IDS
      `nm -D --defined-only` of libferry lists exactly the functions declared FERRY_API in
      SDK_INCLUDE_DIR/ferry/*.h (taken from the headers here), and no data but the descriptors of the
      built-in plugins (BUILTIN_IDS: ','-separated ids, may be empty). Fails naming every extra or missing
      symbol.
  boundary.py modules SDK_INCLUDE_DIR DIR...
      each plugin module ferry_*.so in the directories calls no ferry function but the SDK's (nothing
      internal, no typo) and does not link libferry (an in-tree module takes the SDK from the process that
      opens it).
"""
import os
import re
import subprocess
import sys

# Symbols the static linker or a sanitizer may define in any shared object.
LINKER = {"_init", "_fini", "_edata", "_end", "__bss_start"}


def sdk_functions(include_dir):
    names, where = set(), {}
    hdir = os.path.join(include_dir, "ferry")
    for h in sorted(os.listdir(hdir)):
        if not h.endswith(".h"):
            continue
        text = open(os.path.join(hdir, h)).read()
        text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
        text = re.sub(r"\\\n", " ", text)
        text = "\n".join(l for l in text.split("\n") if not l.lstrip().startswith("#"))
        for m in re.finditer(r"\bFERRY_API\b([^;{]*?)\(", text):
            ident = re.findall(r"[A-Za-z_][A-Za-z0-9_]*", m.group(1))
            if ident:
                names.add(ident[-1])
                where[ident[-1]] = h
    return names, where


def nm(path, *flags):
    out = subprocess.run(["nm", "-D", *flags, path], check=True, capture_output=True, text=True).stdout
    syms = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            syms.append((parts[-2], parts[-1].split("@")[0]))
    return syms


def exports(include_dir, lib, builtin_ids):
    api, where = sdk_functions(include_dir)
    if len(api) < 50:
        sys.exit(f"FAIL: only {len(api)} FERRY_API functions found in {include_dir}/ferry/*.h: "
                 "the parser is broken")
    descriptors = {f"ferry_plugin_{i}" for i in builtin_ids.split(",") if i}
    funcs, data = set(), set()
    for kind, name in nm(lib, "--defined-only"):
        if name in LINKER or name.startswith("__"):
            continue
        (funcs if kind in "TtWwi" else data).add(name)
    problems = []
    for name in sorted(funcs - api):
        problems.append(f"extra: {lib} exports the function {name}, which no SDK header declares FERRY_API")
    for name in sorted(api - funcs):
        problems.append(f"missing: {name} (declared FERRY_API in ferry/{where[name]}) "
                        f"is not exported by {lib}")
    for name in sorted(data - descriptors):
        problems.append(f"extra: {lib} exports the data symbol {name} "
                        "(only built-in plugin descriptors may be)")
    for name in sorted(descriptors - data):
        problems.append(f"missing: the built-in plugin descriptor {name} is not exported by {lib}")
    if problems:
        print("\n".join("FAIL: " + p for p in problems))
        sys.exit(1)
    print(f"ok: {lib} exports exactly the {len(api)} SDK functions "
          f"and {len(descriptors)} built-in descriptor(s)")


def modules(include_dir, dirs):
    api, _ = sdk_functions(include_dir)
    problems = []
    paths = []
    for d in dirs:
        if not os.path.isdir(d):
            problems.append(f"{d}: not a directory")
            continue
        paths += [os.path.join(d, f) for f in sorted(os.listdir(d))
                  if f.startswith("ferry_") and f.endswith(".so")]
    for path in paths:
        for kind, name in nm(path, "--undefined-only"):
            if name.startswith("ferry") and name not in api:
                problems.append(f"{path} calls {name}, which is not an SDK function")
        dyn = subprocess.run(["readelf", "-d", path], check=True, capture_output=True, text=True).stdout
        for lib in re.findall(r"\(NEEDED\).*\[(.*)\]", dyn):
            if lib.startswith("libferry.so"):
                problems.append(f"{path} links {lib}: an in-tree module takes the SDK from the process")
    if problems:
        print("\n".join("FAIL: " + p for p in problems))
        sys.exit(1)
    print(f"ok: {len(paths)} module(s) use the SDK only and link no libferry")


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "exports":
        exports(sys.argv[2], sys.argv[3], sys.argv[4] if len(sys.argv) > 4 else "")
    elif len(sys.argv) >= 4 and sys.argv[1] == "modules":
        modules(sys.argv[2], sys.argv[3:])
    else:
        sys.exit(__doc__)
