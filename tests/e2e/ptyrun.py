#!/usr/bin/env python3
"""Runs a command on a pseudo-terminal of a given size, as a person at a terminal would see it.

usage: ptyrun.py --cols 80 --rows 24 --raw RAW --report REPORT.json [--stages a,b,...]
                 [--interrupt-stage NAME --interrupt-at N] -- COMMAND...

The output is kept (RAW) and fed to a small terminal model (the few controls ferry uses: CR, LF, cursor up,
erase line, erase below, and line wrapping at the right margin). Screens are taken whenever the output pauses
for 50 ms. With --interrupt-stage, SIGINT is sent once the stage's progress line shows at least N items.
REPORT.json: {"exit": code, "screens": [[lines]...], "final": [lines], "interrupted": bool, "checks": {...}}
where checks are measured on the raw stream:
  block_lines: the progress lines drawn (CR, erase line, text up to LF), "widest": the widest of them;
  log_lines: the log lines written over an erased block, "not_followed": how many of them were not followed
  at once by the block drawn again.
Standard library only.
"""
import argparse, codecs, fcntl, json, os, re, select, signal, struct, subprocess, sys, termios, time


class Screen:
    def __init__(self, rows, cols):
        self.rows, self.cols = rows, cols
        self.grid = [[" "] * cols for _ in range(rows)]
        self.r = self.c = 0
        self.wrap = False
        self.esc = ""

    def _newline(self):
        self.r += 1
        if self.r == self.rows:
            self.grid.pop(0)
            self.grid.append([" "] * self.cols)
            self.r = self.rows - 1

    def feed(self, text):
        for ch in text:
            if self.esc:
                self.esc += ch
                if self.esc == "\033[" or (self.esc.startswith("\033[") and not ch.isalpha()):
                    continue
                self._control(self.esc)
                self.esc = ""
                continue
            if ch == "\033":
                self.esc = ch
            elif ch == "\r":
                self.c, self.wrap = 0, False
            elif ch == "\n":
                self._newline()
                self.wrap = False
            elif ch >= " ":
                if self.wrap:
                    self.c, self.wrap = 0, False
                    self._newline()
                self.grid[self.r][self.c] = ch
                if self.c == self.cols - 1:
                    self.wrap = True
                else:
                    self.c += 1

    def _control(self, seq):
        m = re.fullmatch(r"\033\[(\d*)([A-Za-z])", seq)
        if not m:
            return
        n, op = int(m.group(1) or 1), m.group(2)
        self.wrap = False
        if op == "A":
            self.r = max(0, self.r - n)
        elif op == "K":
            for k in range(self.c, self.cols):
                self.grid[self.r][k] = " "
        elif op == "J":
            for k in range(self.c, self.cols):
                self.grid[self.r][k] = " "
            for r in range(self.r + 1, self.rows):
                self.grid[r] = [" "] * self.cols

    def lines(self):
        return ["".join(l).rstrip() for l in self.grid]


def progress_count(lines, stage):
    for l in lines:
        m = re.match(r"^" + re.escape(stage) + r"\s+(?:\[[#-]+\]\s+)?(?:\d+%\s+)?(\d+)(?:/\d+| items)", l)
        if m:
            return int(m.group(1))
    return -1


def stream_checks(raw):
    text = raw.decode("utf-8", "replace")
    visible = lambda s: re.sub(r"\033\[[0-9;]*[A-Za-z]", "", s).replace("\r", "")
    block = re.findall(r"\r\033\[K([^\033\n]*)\n", text)
    widest = max((len(visible(b)) for b in block), default=0)
    # a log line over the block: "\r\033[<n>A\033[J" then the line(s) up to the next escape
    logs = list(re.finditer(r"\r\033\[\d+A\033\[J([^\033]*)", text))
    not_followed = 0
    for m in logs:  # the line(s) end with a line end (CR LF on a terminal), then the block: CR, erase line
        if m.end() < len(text) and not (m.group(1).endswith("\n\r") and text.startswith("\033[K", m.end())):
            not_followed += 1
    return {"block_lines": len(block), "widest": widest, "log_lines": len(logs), "not_followed": not_followed,
            "wide_examples": [visible(b) for b in block if len(visible(b)) > 79][:3]}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cols", type=int, default=80)
    ap.add_argument("--rows", type=int, default=24)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--report", required=True)
    ap.add_argument("--interrupt-stage")
    ap.add_argument("--interrupt-at", type=int, default=1)
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", a.rows, a.cols, 0, 0))
    env = dict(os.environ, TERM="xterm", COLUMNS=str(a.cols), LINES=str(a.rows))
    p = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    screen = Screen(a.rows, a.cols)
    dec = codecs.getincrementaldecoder("utf-8")("replace")
    raw = bytearray()
    screens, interrupted, dirty = [], False, False
    deadline = time.time() + 900
    while time.time() < deadline:
        r, _, _ = select.select([master], [], [], 0.05)
        if not r:
            if dirty:
                screens.append(screen.lines())
                dirty = False
            if p.poll() is not None:
                break
            continue
        try:
            chunk = os.read(master, 65536)
        except OSError:
            break
        if not chunk:
            break
        raw += chunk
        screen.feed(dec.decode(chunk))
        dirty = True
        if a.interrupt_stage and not interrupted and progress_count(screen.lines(), a.interrupt_stage) >= a.interrupt_at:
            os.kill(p.pid, signal.SIGINT)
            interrupted = True
    else:
        p.kill()
    code = p.wait()
    os.close(master)
    open(a.raw, "wb").write(bytes(raw))
    json.dump({"exit": code, "screens": screens, "final": screen.lines(), "interrupted": interrupted,
               "checks": stream_checks(bytes(raw))}, open(a.report, "w"), indent=1)


if __name__ == "__main__":
    main()
