#!/usr/bin/env python3
"""Score a gdb-testsuite run of xol against GNU gdbserver's baseline, per area, by test name:
how many of the baseline's PASS names still pass. Twice: over everything, and without what
gdbstub 0.7 cannot do at all (following forks/execs and several inferiors, which need the
protocol's multiprocess support; non-stop mode). Usage:
    compat-score.py BASELINE.sum NEW.sum      (BASELINE.sum: xzcat baseline-gdbserver*.sum.xz)"""
import re
import sys

EXCLUDED_FILES = {
    # gdb following forks/execs or debugging several inferiors at once: needs multiprocess
    # support (fork/vfork/exec stop replies, D;pid, per-process ids) that gdbstub 0.7 lacks.
    "gdb.base/foll-fork.exp", "gdb.base/foll-vfork.exp", "gdb.base/foll-exec.exp",
    "gdb.base/multi-forks.exp", "gdb.base/vfork-follow-parent.exp", "gdb.base/step-over-exit.exp",
    "gdb.base/fork-print-inferior-events.exp", "gdb.base/kill-detach-inferiors-cmd.exp",
    "gdb.base/inferior-died.exp", "gdb.base/step-over-syscall.exp",
    "gdb.threads/fork-child-threads.exp", "gdb.threads/fork-thread-pending.exp",
    "gdb.threads/execl.exp", "gdb.threads/thread-execl.exp", "gdb.threads/threadapply.exp",
    "gdb.server/extended-remote-restart.exp",
}
# Non-stop halves of otherwise all-stop tests (gdbstub 0.7 is all-stop only).
NONSTOP = re.compile(r"non-stop[ =:]+(1|on)|nonstop=on|non_stop=on|dprintf-non-stop|break-while-running")


def passes(path):
    out = set()
    for line in open(path, errors="replace"):
        if line.startswith("PASS: "):
            out.add(line[6:].strip())
    return out


base, new = passes(sys.argv[1]), passes(sys.argv[2])
print(f"{'area':<12} {'gdbserver':>9} {'xol':>6} {'kept':>7}  | {'all-stop, no forks: gdbserver':>29} {'xol':>6} {'kept':>7}")
for area in ("gdb.server", "gdb.base", "gdb.threads", "gdb.trace"):
    names = [t for t in base if t.startswith(area + "/")]
    kept = [t for t in names if t.split(":")[0] not in EXCLUDED_FILES and not NONSTOP.search(t)]
    b, n = len(names), sum(t in new for t in names)
    be, ne = len(kept), sum(t in new for t in kept)
    print(f"{area:<12} {b:>9} {n:>6} {n / b:>7.1%}  | {be:>29} {ne:>6} {ne / be:>7.1%}")
