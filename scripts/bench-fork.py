#!/usr/bin/env python3
"""Fork-heavy workload under a per-file probe: xol vs gdb vs gdbserver.

The target (fixtures/pf_forkbench.c) forks NCHILD short-lived children (PAR alive at a
time); each calls the noinline pf_probed() CALLS times and exits; the parent reaps them
all, calls pf_probed() CALLS times itself and prints its own wall time from the first fork
to the last reap (`forkbench: ns=...`). With IDLE > 0 it has IDLE extra idle threads.

Rows (median of --runs runs, round-robin):
  native                      no tracer
  xol per-file count          gdb + `xol serve --stdio`, `monitor probe-mode per-file`,
                              `monitor count pf_probed`; hits from `monitor probes`
  gdb native                  `set detach-on-fork off`, `set follow-fork-mode parent`,
                              `set schedule-multiple on`, `break *pf_probed` with
                              `commands; silent; continue; end`; hits from `info breakpoints`
  gdb + GNU gdbserver         the same gdb script over `target remote | gdbserver -`

Every hit must be counted: hits == NCHILD*CALLS + CALLS. Writes the section between
<!-- bench-fork:begin --> and <!-- bench-fork:end --> of docs/performance.md.

Options: --runs N (default 3), --children N (default 1000), --calls N (default 1),
--quick (1 run, 200 children, no doc), --no-doc, --timeout S (per subprocess, default 300).
Every subprocess runs in its own session with a timeout; on timeout the session is killed.
"""

import argparse
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
XOL = ROOT / "target" / "release" / "xol"
DOC = ROOT / "docs" / "performance.md"
BEGIN, END = "<!-- bench-fork:begin -->", "<!-- bench-fork:end -->"
CFLAGS = ["-g", "-O2", "-no-pie", "-fno-pie", "-fcf-protection=none", "-pthread"]
ARGS = None
TARGET = None


def kill_session(sid):
    try:
        os.killpg(sid, signal.SIGKILL)
    except OSError:
        pass
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            stat = open(f"/proc/{d}/stat").read()
            if int(stat[stat.rindex(")") + 2:].split()[3]) == sid:
                os.kill(int(d), signal.SIGKILL)
        except (OSError, ValueError, IndexError):
            pass


def run(cmd, timeout=None):
    """Run cmd in its own session; on timeout kill the session. Returns (rc|None, out, err, secs)."""
    timeout = timeout or ARGS.timeout
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                         text=True, errors="replace", start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
        rc = p.returncode
    except subprocess.TimeoutExpired:
        kill_session(p.pid)
        out, err = p.communicate()
        rc, err = None, err + f"\n[bench-fork: TIMEOUT after {timeout}s, killed]"
    kill_session(p.pid)  # whatever the session left behind
    return rc, out, err, time.monotonic() - t0


def build(tmp):
    global TARGET
    TARGET = Path(tmp) / "pf_forkbench"
    subprocess.run(["gcc", *CFLAGS, "-o", str(TARGET), str(ROOT / "fixtures" / "pf_forkbench.c")],
                   check=True, timeout=120)


def target_argv(par, idle, children=None):
    return [str(TARGET), str(children or ARGS.children), str(ARGS.calls), str(par), str(idle)]


def expected_hits(children=None):
    return (children or ARGS.children) * ARGS.calls + ARGS.calls


class Result:
    def __init__(self):
        self.ns = None        # the target's own fork-to-last-reap time
        self.secs = None      # the whole session
        self.hits = None
        self.error = None
        self.notes = []


def parse_target(res, rc, out, err, secs):
    res.secs = secs
    text = out + err
    m = re.search(r"forkbench: ns=(\d+) children=(\d+) calls=(\d+) bad=(\d+)", text)
    if rc is None:
        res.error = "timeout"
    elif not m:
        res.error = "no forkbench line"
    else:
        res.ns = int(m.group(1))
        if int(m.group(4)) != 0:
            res.error = f"{m.group(4)} children failed"
        want = sum(j * 3 + 1 for j in range(1, ARGS.calls + 1))
        if f"MARK:sum={want}" not in text:
            res.error = res.error or "wrong parent checksum"
    if res.error:
        tail = "\n".join(text.strip().splitlines()[-15:])
        print(f"bench-fork: error {res.error}:\n{tail}", file=sys.stderr)


def m_native(par, idle):
    def r():
        res = Result()
        rc, out, err, secs = run(target_argv(par, idle))
        parse_target(res, rc, out, err, secs)
        return res
    return r


def gdb_file(tmp, lines):
    f = tempfile.NamedTemporaryFile("w", suffix=".gdb", delete=False, dir=tmp)
    f.write("\n".join(["set pagination off", "set confirm off", "set sysroot /"] + lines) + "\n")
    f.close()
    return f.name


def m_xol(par, idle):
    def r():
        res = Result()
        script = gdb_file(ARGS.tmp, [
            f"target remote | {XOL} serve --stdio -- {' '.join(target_argv(par, idle))}",
            # `break pf_end` first, so that gdb's breakpoint stays per-process (not armed in
            # every child); the counting probe is per-file.
            "break pf_end", "monitor probe-mode per-file", "monitor count pf_probed", "continue",
            "monitor probes", "monitor stats", "kill"])
        rc, out, err, secs = run(["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off", "-x", script,
                                  str(TARGET)])
        parse_target(res, rc, out, err, secs)
        text = out + err
        m = re.search(r"^\d+ count pf_probed at \S+ .*? hits (\d+) \(([^)]*)\)", text, re.M)
        if m:
            res.hits = int(m.group(1))
            pids = m.group(2).split()
            if len(pids) != ARGS.children + 1 or any(not p.endswith(f":{ARGS.calls}") for p in pids):
                res.notes.append(f"per-pid hits wrong ({len(pids)} pids)")
        else:
            res.error = res.error or "no probe line"
        for key in ("world stops", "forks handled", "children followed"):
            s = re.search(rf"{key}: (\d+)", text)
            if s:
                res.notes.append(f"{key} {s.group(1)}")
        return res
    return r


def m_xol_count(par, idle):
    def r():
        res = Result()
        rc, out, err, secs = run([str(XOL), "count", "--per-file", "pf_probed", "--", *target_argv(par, idle)])
        parse_target(res, rc, out, err, secs)
        m = re.search(r"^pf_probed: (\d+) hits \(([^)]*)\)", out + err, re.M)
        if m:
            res.hits = int(m.group(1))
            pids = m.group(2).split()
            if len(pids) != ARGS.children + 1 or any(not p.endswith(f":{ARGS.calls}") for p in pids):
                res.notes.append(f"per-pid hits wrong ({len(pids)} pids)")
        else:
            res.error = res.error or "no hits line"
        return res
    return r


GDB_LOOP = r'''python
import gdb
done = [False]
def on_stop(ev):
    if isinstance(ev, gdb.BreakpointEvent) and any(b.number == 2 for b in ev.breakpoints):
        done[0] = True
gdb.events.stop.connect(on_stop)
START
loops = 0
errors = []
# gdb -batch returns from `continue` whenever an inferior exits: continue again (the
# parent is inferior 1), until the parent stops at pf_end.
while not done[0] and loops < 1000000:
    loops += 1
    live = [i for i in gdb.inferiors() if i.pid > 0]
    if not live:
        break
    try:
        if gdb.selected_inferior().pid <= 0:
            gdb.execute("inferior %d" % live[0].num, to_string=True)
        gdb.execute("continue", to_string=True)
    except gdb.error as e:
        errors.append(str(e))
        if len(errors) > 100:
            break
        gdb.execute("inferior 1", to_string=True)
print("bench-fork: loops=%d done=%s errors=%d %s" % (loops, done[0], len(errors), errors[:2]))
end'''


def m_gdb(par, idle, via_gdbserver, children=None):
    def r():
        res = Result()
        lines = ["set detach-on-fork off", "set follow-fork-mode parent", "set schedule-multiple on"]
        if via_gdbserver:
            lines.append(f"target remote | gdbserver - {' '.join(target_argv(par, idle, children))}")
            start = ""
        else:
            lines.append(f"file {TARGET}")
            lines.append(f"set args {' '.join(target_argv(par, idle, children)[1:])}")
            start = 'gdb.execute("run", to_string=True)'
        lines += ["break *pf_probed", "commands", "silent", "continue", "end", "break pf_end",
                  GDB_LOOP.replace("START", start), "info breakpoints", "kill inferiors 1"]
        script = gdb_file(ARGS.tmp, lines)
        rc, out, err, secs = run(["gdb", "-nx", "-batch", "-iex", "set debuginfod enabled off", "-x", script])
        parse_target(res, rc, out, err, secs)
        text = out + err
        m = re.search(r"pf_probed at .*\n\s*breakpoint already hit (\d+) time", text)
        res.hits = int(m.group(1)) if m else None
        if m is None:
            res.error = res.error or "no hit count"
        lm = re.search(r"bench-fork: loops=(\d+) done=(\w+) errors=(\d+)", text)
        if lm:
            res.notes.append(f"{lm.group(1)} continues")
            if lm.group(3) != "0":
                first = re.search(r"errors=\d+ (.*)", text).group(1)[:80]
                res.notes.append(f"{lm.group(3)} gdb errors ({first})")
            if lm.group(2) != "True":
                res.error = res.error or "never reached pf_end"
        return res
    return r


class Row:
    def __init__(self, name, kind, par, idle, fn, children=None):
        self.name, self.kind, self.par, self.idle, self.fn = name, kind, par, idle, fn
        self.children = children or ARGS.children
        self.results = []


def rows():
    R = [
        Row("native", "native", 1, 0, m_native(1, 0)),
        Row("native, 3 idle threads", "native", 1, 3, m_native(1, 3)),
        Row("native, 4 at a time", "native", 4, 0, m_native(4, 0)),
        Row("xol per-file count", "xol", 1, 0, m_xol(1, 0)),
        Row("xol per-file count, 3 idle threads", "xol", 1, 3, m_xol(1, 3)),
        Row("xol per-file count, 4 at a time", "xol", 4, 0, m_xol(4, 0)),
        Row("xol count --per-file (no gdb)", "xol", 1, 0, m_xol_count(1, 0)),
        Row("gdb native break+commands", "gdb", 1, 0, m_gdb(1, 0, False)),
    ]
    if shutil.which("gdbserver"):
        R.append(Row("gdb + gdbserver break+commands", "gdbserver", 1, 0, m_gdb(1, 0, True)))
        small = max(1, ARGS.children // 10)
        R.append(Row(f"gdb + gdbserver break+commands, {small} children", "gdbserver", 1, 0,
                     m_gdb(1, 0, True, small), small))
    return R


def execute(R):
    for i in range(ARGS.runs):
        for row in R:
            res = row.fn()
            row.results.append(res)
            print(f"bench-fork: run {i + 1}/{ARGS.runs} {row.name}: ns={res.ns} hits={res.hits} "
                  f"secs={res.secs:.1f} {res.error or ''}", file=sys.stderr)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def fmt_ms(ns):
    return "-" if ns is None else f"{ns / 1e6:.0f}" if ns >= 1e8 else f"{ns / 1e6:.1f}"


def fmt_us(ns):
    return "-" if ns is None else f"{ns / 1e3:.0f}" if ns >= 1e5 else f"{ns / 1e3:.1f}"


def table(R):
    out = ["| mechanism | workload | total ms median | min | max | per fork µs | hits/expected | session s | notes |",
           "|---|---|---:|---:|---:|---:|---|---:|---|"]
    for row in R:
        want = expected_hits(row.children)
        ns = [r.ns for r in row.results if r.ns is not None]
        m = med(ns)
        per = None if m is None else m / row.children
        if row.kind == "native":
            hits = "-"
        else:
            # Hits of the runs that completed; a failed run is reported in the notes.
            hs = sorted({r.hits for r in row.results if not r.error and r.hits is not None})
            ok = bool(hs) and all(h == want for h in hs)
            hits = ("/".join(str(h) for h in hs) or "-") + f"/{want}" + ("" if ok or not hs else " **MISSED**")
        parent = f"{row.children} children, {row.idle + 1} thr" + (f", {row.par} at a time" if row.par > 1 else "")
        notes = sorted({n for r in row.results for n in r.notes})
        failed = [r.error for r in row.results if r.error]
        errs = [f"**{len(failed)} of {len(row.results)} runs failed: {', '.join(sorted(set(failed)))}**"] if failed else []
        notes = "; ".join(notes + errs)
        out.append(f"| {row.name} | {parent} | {fmt_ms(m)} | {fmt_ms(min(ns) if ns else None)} | "
                   f"{fmt_ms(max(ns) if ns else None)} | {fmt_us(per)} | {hits} | "
                   f"{med([r.secs for r in row.results]):.1f} | {notes} |")
    return "\n".join(out)


def goals(R):
    by = {r.name: r for r in R}
    want = expected_hits()

    def m(name):
        r = by.get(name)
        return None if r is None else med([x.ns for x in r.results])

    def all_hits(name):
        r = by.get(name)
        return r is not None and all(x.hits == want and not x.error for x in r.results)

    out = []
    x, g, gs = m("xol per-file count"), m("gdb native break+commands"), m("gdb + gdbserver break+commands")
    n0, n3 = m("native"), m("native, 3 idle threads")
    if x and g:
        ok = g / x >= 10 and all_hits("xol per-file count")
        out.append(f"1. **xol ≥ 10× faster than gdb, every hit counted**: gdb {fmt_ms(g)} ms / xol {fmt_ms(x)} ms "
                   f"= {g / x:.1f}×; xol hits {'all counted' if all_hits('xol per-file count') else 'MISSED'}: "
                   f"**{'met' if ok else 'NOT met'}**")
    xc = m("xol count --per-file (no gdb)")
    if xc and g:
        ok = g / xc >= 10 and all_hits("xol count --per-file (no gdb)")
        out.append(f"   - `xol count --per-file` (no gdb): gdb {fmt_ms(g)} ms / {fmt_ms(xc)} ms = {g / xc:.1f}×: "
                   f"**{'met' if ok else 'NOT met'}**")
    if x and gs:
        out.append(f"2. vs gdb + gdbserver: {fmt_ms(gs)} ms / xol {fmt_ms(x)} ms = {gs / x:.1f}×")
    elif x:
        small = [r for r in R if r.kind == "gdbserver" and r.children != ARGS.children]
        sm = med([y.ns for y in small[0].results]) if small else None
        out.append("2. gdb + gdbserver with " + str(ARGS.children) + " children: no complete run" +
                   (f"; with {small[0].children} children {fmt_us(sm / small[0].children)} µs/fork vs xol "
                    f"{fmt_us(x / ARGS.children)} µs/fork = {sm / small[0].children / (x / ARGS.children):.1f}×"
                    if sm else ""))
    x3 = m("xol per-file count, 3 idle threads")
    if x and x3 and n0 and n3:
        out.append(f"3. Multi-threaded parent (3 idle threads): xol {fmt_us(x3 / ARGS.children)} µs/fork vs "
                   f"{fmt_us(x / ARGS.children)} µs/fork single-threaded = {x3 / x:.2f}×; the tracer's own cost "
                   f"per fork (minus native) {fmt_us((x3 - n3) / ARGS.children)} vs "
                   f"{fmt_us((x - n0) / ARGS.children)} µs")
    x4, n4 = m("xol per-file count, 4 at a time"), m("native, 4 at a time")
    if x4 and n4:
        out.append(f"4. Four children at a time: xol {fmt_us(x4 / ARGS.children)} µs/fork "
                   f"(native {fmt_us(n4 / ARGS.children)})")
    bad = [r.name for r in R if r.kind == "xol" and not all_hits(r.name)]
    out.append("5. **Every xol row counted every hit**: " + ("**met**" if not bad else "**NOT met** (" + ", ".join(bad) + ")"))
    return "\n".join(out)


def machine():
    cpu = "?"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break

    def ver(cmd):
        try:
            return (subprocess.run(cmd, capture_output=True, text=True, timeout=30).stdout.splitlines() or ["?"])[0]
        except (OSError, subprocess.TimeoutExpired):
            return f"{cmd[0]} ?"
    rev = subprocess.run(["git", "-C", str(ROOT), "describe", "--always", "--dirty"], capture_output=True,
                         text=True, timeout=30).stdout.strip()
    return [f"- kernel {os.uname().release}; CPU {cpu}; nproc {os.cpu_count()}",
            f"- {ver(['gcc', '--version'])}; {ver(['gdb', '--version'])}; {ver(['gdbserver', '--version'])}",
            f"- xol {XOL.relative_to(ROOT)} built from `{rev}` "
            f"({time.strftime('%Y-%m-%d %H:%M', time.localtime(XOL.stat().st_mtime))})",
            f"- run at {time.strftime('%Y-%m-%d %H:%M')}, {ARGS.runs} runs per row (round-robin), "
            f"load average at start {open('/proc/loadavg').read().split()[0]}"]


def render(R, elapsed):
    return "\n".join([
        f"Command: `python3 scripts/bench-fork.py` (this section is written by it; the run took "
        f"{elapsed / 60:.1f} min).", "",
        "Machine:", "", *machine(), "",
        f"Workload: `pf_forkbench {ARGS.children} {ARGS.calls} PAR IDLE`: {ARGS.children} children, each calls "
        f"`pf_probed` {ARGS.calls}×, the parent {ARGS.calls}× (expected hits {expected_hits()}). "
        "*total ms* is the target's own time from the first fork to the last reap; *per fork* = total / "
        "children; *session s* is the whole gdb session (start-up included).", "",
        table(R), "", "Goals:", "", goals(R), ""])


def write_doc(body):
    text = DOC.read_text()
    if BEGIN not in text or END not in text:
        text = text.rstrip("\n") + f"\n\n## Fork-heavy workload under a per-file probe\n\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    DOC.write_text(head + BEGIN + "\n" + body + "\n" + END + tail)


def main():
    global ARGS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int)
    ap.add_argument("--children", type=int)
    ap.add_argument("--calls", type=int, default=1)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--no-doc", action="store_true")
    ap.add_argument("--timeout", type=float, default=300)
    ARGS = ap.parse_args()
    ARGS.runs = ARGS.runs or (1 if ARGS.quick else 3)
    ARGS.children = ARGS.children or (200 if ARGS.quick else 1000)
    for tool in ("gdb", "gcc"):
        if not shutil.which(tool):
            sys.exit(f"bench-fork: {tool} not found")
    if not XOL.exists():
        sys.exit(f"bench-fork: {XOL} missing: cargo build --release")
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-fork-") as tmp:
        ARGS.tmp = tmp
        build(tmp)
        R = rows()
        execute(R)
    body = render(R, time.time() - t0)
    print(body)
    if not ARGS.no_doc and not ARGS.quick:
        write_doc(body)
        print(f"bench-fork: wrote {DOC.relative_to(ROOT)}", file=sys.stderr)


if __name__ == "__main__":
    main()
