#!/usr/bin/env bash
# The install and what a person reads: `cmake --install` into a DESTDIR puts the ferry binary, the man page
# ferry(1) and the bash completion in place; the man page renders without a warning (groff, man -l); the
# completion, sourced in bash, completes the commands, options and values; the commands of `ferry --help`,
# the man page, docs/cli.md and the completion are one set, and so are each command's options in its
# `--help`, the completion, the man page and docs/cli.md; `ferry version` lists every library with a version.
#   install_test.sh <build dir> <source dir>
set -uo pipefail
BUILD=$1
SRC=$2
T=$(mktemp -d /tmp/ferry-install-test.XXXXXX)
trap 'rm -rf "$T"' EXIT
fails=0 passes=0
ok() { passes=$((passes + 1)); }
bad() { echo "FAIL: $*"; fails=$((fails + 1)); }

# ---- install into a DESTDIR ---------------------------------------------------------------------------------
PREFIX=/opt/ferry-test
if DESTDIR="$T/root" cmake --install "$BUILD" --prefix "$PREFIX" >"$T/install.log" 2>&1; then ok; else
  bad "cmake --install failed"; tail -20 "$T/install.log"; fi
R=$T/root$PREFIX
for f in bin/ferry share/man/man1/ferry.1 share/bash-completion/completions/ferry; do
  if [ -f "$R/$f" ]; then ok; else bad "not installed: $f"; fi
done
cmp -s "$R/share/man/man1/ferry.1" "$SRC/docs/man/ferry.1" && ok || bad "the installed man page is not docs/man/ferry.1"
FERRY=$R/bin/ferry
"$FERRY" version >"$T/version.out" 2>&1 && ok || { bad "the installed ferry does not run"; cat "$T/version.out"; }

# ---- ferry version: every library with its version ------------------------------------------------------------
for lib in libuv jansson libcurl libpq SQLite libltdl; do
  if grep -Eq "^  $lib +[^ ]*[0-9]+\.[0-9]+" "$T/version.out"; then ok; else bad "version lacks $lib with a version"; fi
done
# libcrypto is loaded (libcurl and libpq link it): OpenSSL is listed; the emulator's libmicrohttpd never
grep -Eq "^  OpenSSL +OpenSSL [0-9]" "$T/version.out" && ok || bad "version lacks OpenSSL"
grep -qi "microhttpd" "$T/version.out" && bad "version lists libmicrohttpd" || ok
grep -q "plugin ABI 1\.[0-9]" "$T/version.out" && ok || bad "version lacks the plugin ABI"

# ---- the man page renders without warnings ------------------------------------------------------------------------
MAN=$R/share/man/man1/ferry.1
if command -v groff >/dev/null; then
  groff -man -Tutf8 -ww -z "$MAN" >"$T/groff.err" 2>&1
  if [ $? = 0 ] && [ ! -s "$T/groff.err" ]; then ok; else bad "groff warns:"; head "$T/groff.err"; fi
fi
if command -v man >/dev/null; then
  MANWIDTH=80 man -l "$MAN" >"$T/man.txt" 2>"$T/man.err"
  if [ -s "$T/man.txt" ] && ! grep -qi "warning" "$T/man.err"; then ok; else bad "man -l: $(head -3 "$T/man.err")"; fi
  grep -q "EXIT STATUS" "$T/man.txt" && ok || bad "the man page has no EXIT STATUS"
fi

# ---- the bash completion ------------------------------------------------------------------------------------------
COMP=$R/share/bash-completion/completions/ferry
# complete WORDS...: the completions of the last word (may be empty) after `ferry WORDS`
complete_words() {
  PATH="$R/bin:$PATH" bash -c '. "$1"; shift; COMP_WORDS=(ferry "$@"); COMP_CWORD=$#; _ferry; printf "%s\n" "${COMPREPLY[@]}"' \
    _ "$COMP" "$@" | sort | tr '\n' ' ' | sed 's/ $//'
}
bash -c ". '$COMP'; complete -p ferry" >"$T/cp.out" 2>&1 && grep -q "_ferry" "$T/cp.out" && ok || bad "the completion does not register: $(cat "$T/cp.out")"
got=$(complete_words "")
want="--help --version export-map help journal plan plugins report run status verify version"
[ "$got" = "$want" ] && ok || bad "completing commands: '$got', expected '$want'"
[ "$(complete_words st)" = "status" ] && ok || bad "st -> '$(complete_words st)'"
[ "$(complete_words run --rep)" = "--repair --report" ] && ok || bad "run --rep -> '$(complete_words run --rep)'"
[ "$(complete_words run --progress "")" = "auto none plain tty" ] && ok || bad "--progress values: '$(complete_words run --progress "")'"
[ "$(complete_words status --log-format j)" = "json" ] && ok || bad "--log-format j -> '$(complete_words status --log-format j)'"
mkdir -p "$T/cfg" && printf '{"stages": [{"name": "forms", "source": {}}, {"name": "files"}]}\n' >"$T/cfg/c.json"
got=$(cd "$T/cfg" && complete_words run -c c.json --stage "")
[ "$got" = "files forms" ] && ok || bad "--stage from the configuration: '$got'"
got=$(complete_words plugins --describe js)
[ "$got" = "jsonl" ] && ok || bad "--describe js -> '$got' (expected jsonl)"

# ---- one set of commands and options everywhere --------------------------------------------------------------------
"$FERRY" --help >"$T/help.txt" 2>&1
for c in plan run verify status export-map report plugins journal version; do "$FERRY" "$c" --help >"$T/help.$c.txt" 2>&1; done
for c in plan run verify status export-map report plugins journal version; do
  echo "$c $(complete_words "$c" -)"
done >"$T/comp.opts"
python3 - "$T" "$MAN" "$SRC/docs/cli.md" <<'PY' && ok || fails=$((fails + 1))
import re, sys
t, man, cli = sys.argv[1:4]
fail = 0
def check(what, a, b, an, bn):
    global fail
    if a != b:
        print(f"FAIL: {what}: {an} {sorted(a - b)} not in {bn}; {bn} {sorted(b - a)} not in {an}"); fail = 1
help_text = open(f"{t}/help.txt").read()
block = help_text.split("commands:\n", 1)[1].split("\n\n", 1)[0]
help_cmds = set(re.findall(r"^  ([a-z][a-z-]+)\s", block, re.M))
man_text = open(man).read()
man_cmds_part = man_text.split(".SH COMMANDS", 1)[1].split(".SH ", 1)[0]
man_cmds = set(re.findall(r"^\.SS (\S+)", man_cmds_part, re.M))
cli_text = open(cli).read()
cli_cmds = set(re.findall(r"^\| `([a-z-]+)` \|", cli_text.split("## Options", 1)[0], re.M))
check("commands", help_cmds, man_cmds, "ferry --help", "the man page")
check("commands", help_cmds, cli_cmds, "ferry --help", "docs/cli.md")
if len(help_cmds) != 9:
    print("FAIL: expected 9 commands in ferry --help, got", sorted(help_cmds)); fail = 1
comp = {l.split(" ", 1)[0]: set(l.split()[1:]) for l in open(f"{t}/comp.opts")}
man_opts = set(re.findall(r"\\-\\-([a-z][a-z-]*)", man_text.replace("\\-", "\\-")))
man_opts = set(re.findall(r"\\-\\-((?:[a-z]|\\-)+)", man_text))
man_opts = {o.replace("\\-", "-") for o in man_opts}
cli_opts = set(re.findall(r"--([a-z][a-z-]+)", cli_text.split("## Options", 1)[1].split("## What you see", 1)[0]))
for c in sorted(help_cmds):
    h = open(f"{t}/help.{c}.txt").read()
    opts = set(re.findall(r"(?<![\w-])--([a-z][a-z-]+)", h.split("options:", 1)[1] if "options:" in h else ""))
    opts |= {"help"}
    check(f"{c} options", opts, {o[2:] for o in comp.get(c, set())}, f"ferry {c} --help", "the completion")
    for o in sorted(opts - {"help"}):
        if o not in man_opts:
            print(f"FAIL: {c} --{o} is not in the man page"); fail = 1
        if o not in cli_opts:
            print(f"FAIL: {c} --{o} is not in docs/cli.md's options"); fail = 1
# what verify and plan say they write agrees between --help, the man page and docs/cli.md
v = open(f"{t}/help.verify.txt").read()
if "Writes nothing to the targets" not in v or "report" not in v:
    print("FAIL: verify --help does not say it writes its report and never the targets"); fail = 1
if re.search(r"writes? nothing anywhere", help_text + open(f"{t}/help.plan.txt").read() + cli_text, re.I):
    print("FAIL: a text still says plan writes nothing anywhere (it writes its report)"); fail = 1
sys.exit(fail)
PY

echo "$passes passed, $fails failed"
[ "$fails" = 0 ]
