//! Session-level tests: the session API (`xol::debugger::Debugger`) driven directly on fixture
//! programs, with no front-end in between. Each scenario records the events the session
//! reports (pids renumbered in order of appearance, so runs compare) and checks the sequence,
//! the reports and the errors.
//!
//! ptrace ties tracees to the thread that traces them, and `waitpid(-1)` would take another
//! scenario's events: the scenarios run one after another on the main thread (this test binary
//! has its own `main`, `harness = false`). A watchdog ends the binary (and, through
//! `PTRACE_O_EXITKILL`, every program it started) if a scenario hangs.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;
use support::{fixture_with, FixtureOpts};
use xol::debugger::{
    Action, Consumer, Debugger, Error, HwKind, Launch, Location, Notice, StopKind, Subscription, WaitOutcome,
};
use xol::types::{Owner, Pid, VirtAddr};

/// Time one scenario may take (a debug build, gcc compiling the fixture first).
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(120);
/// Time one wait may take.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// Pids renumbered in order of appearance: `P1`, `P2`, ...
#[derive(Default)]
struct Names(BTreeMap<i32, usize>);

impl Names {
    fn of(&mut self, pid: Pid) -> String {
        let n = self.0.len() + 1;
        format!("P{}", self.0.entry(pid.0).or_insert(n))
    }
}

/// A session and the events it reported, as text.
struct Session {
    dbg: Debugger,
    names: Names,
    events: Vec<String>,
    /// The thread of the last stop.
    last_tid: xol::types::Tid,
}

impl Session {
    fn new() -> Session {
        Session { dbg: Debugger::new(), names: Names::default(), events: Vec::new(), last_tid: xol::types::Tid(0) }
    }

    fn launch(&mut self, prog: &std::path::Path, args: &[&str]) -> Pid {
        let mut argv = vec![prog.as_os_str().to_owned()];
        argv.extend(args.iter().map(Into::into));
        let pid = self.dbg.launch(&Launch::new(argv)).unwrap_or_else(|e| panic!("launch {}: {e}", prog.display()));
        self.names.of(pid);
        pid
    }

    fn location(&mut self, pid: Pid, loc: &str) -> VirtAddr {
        let l: Location = loc.parse().unwrap_or_else(|e| panic!("{e}"));
        self.dbg.resolve_location(pid, &l).unwrap_or_else(|e| panic!("{loc}: {e}"))
    }

    /// Resume every thread of `pid` and wait for the next stop that is not a signal (signals
    /// are recorded and delivered, as gdb's default `handle ... pass` does); record it and return it.
    fn cont(&mut self, pid: Pid) -> (Pid, StopKind) {
        let mut deliver = None;
        loop {
            let actions: Vec<_> = deliver.into_iter().collect();
            self.dbg.resume(pid, &actions, Some(Action::CONTINUE)).unwrap_or_else(|e| panic!("resume: {e}"));
            match self.next() {
                (p, StopKind::Signal(sig)) if p == pid => {
                    let tid = self.last_tid;
                    deliver = Some((tid, Action { step: false, sig, range: None }));
                }
                stop => return stop,
            }
        }
    }

    fn next(&mut self) -> (Pid, StopKind) {
        loop {
            match self.dbg.wait_timeout(None, WAIT_TIMEOUT) {
                Ok(WaitOutcome::Notice(n)) => {
                    let text = self.notice(&n);
                    self.events.push(text);
                }
                other => return self.stopped(other),
            }
        }
    }

    /// A notice as text, pids renumbered (thread ids left out: they differ from run to run).
    fn notice(&mut self, n: &Notice) -> String {
        match n {
            Notice::Forked { parent, child, vfork, followed } => {
                let (p, c) = (self.names.of(*parent), self.names.of(*child));
                let how = if *vfork { "vforked" } else { "forked" };
                format!("{p} {how} {c}{}", if *followed { " (followed)" } else { "" })
            }
            Notice::Exec { pid, path } => {
                let name = path.as_ref().and_then(|p| p.file_name()).map(|f| f.to_string_lossy().into_owned());
                format!("{} exec {}", self.names.of(*pid), name.unwrap_or_default())
            }
            Notice::ThreadStarted { pid, .. } => format!("{} thread started", self.names.of(*pid)),
            Notice::ThreadExited { pid, .. } => format!("{} thread exited", self.names.of(*pid)),
            Notice::ChildEnded { pid, status } => format!("{} ended {status}", self.names.of(*pid)),
            Notice::ProbeHit { probe, consumer, pid, .. } => {
                let whom = match consumer {
                    Consumer::Count => "count".to_string(),
                    Consumer::Report(c) => format!("client {}", c.0),
                };
                format!("{} hit probe {probe} ({whom})", self.names.of(*pid))
            }
            Notice::Lost(k) => format!("lost {k}"),
        }
    }

    fn stopped(&mut self, outcome: Result<WaitOutcome, Error>) -> (Pid, StopKind) {
        match outcome {
            Ok(WaitOutcome::Stopped(ev)) => {
                let what = match ev.kind {
                    StopKind::Exited(c) => format!("exited {c}"),
                    StopKind::Killed(s) => format!("killed {s}"),
                    StopKind::Breakpoint => "breakpoint".into(),
                    StopKind::Signal(s) => format!("signal {s}"),
                    StopKind::Forked { child, vfork } => {
                        format!("{} {}", if vfork { "vforked" } else { "forked" }, self.names.of(child))
                    }
                    StopKind::VforkDone => "vfork done".into(),
                    StopKind::ThreadCreated => "thread created".into(),
                    StopKind::ThreadExited(c) => format!("thread exited {c}"),
                    StopKind::Exec => {
                        let exe = self.dbg.exe(ev.pid).expect("exe");
                        format!("exec {}", exe.file_name().unwrap_or_default().to_string_lossy())
                    }
                    k => format!("{k:?}"),
                };
                let name = self.names.of(ev.pid);
                self.events.push(format!("{name} {what}"));
                self.last_tid = ev.tid;
                (ev.pid, ev.kind)
            }
            other => panic!("no stop: {other:?}; events so far {:?}", self.events),
        }
    }
}

const LIFECYCLE: Subscription = Subscription { lifecycle: true, probe_hits: false };
const EVERYTHING: Subscription = Subscription { lifecycle: true, probe_hits: true };

/// `Owner` of a client's breakpoints.
fn client(dbg: &mut Debugger) -> Owner {
    Owner::Client(dbg.new_client())
}

/// A breakpoint stops the thread at its address each time; memory read there shows the
/// program's byte, not the `int3`; removing it lets the program finish with its own status.
fn breakpoint_stops_and_memory_is_masked() {
    let prog = fixture_with("loop", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &["3", "7"]);
    let site = s.location(pid, "probe_site");
    let mut before = [0u8; 4];
    assert_eq!(s.dbg.read_memory(pid, site, &mut before).expect("read"), 4);
    let me = client(&mut s.dbg);
    s.dbg.insert_breakpoint(pid, site, me).expect("insert");
    let mut after = [0u8; 4];
    s.dbg.read_memory(pid, site, &mut after).expect("read");
    assert_eq!(before, after, "the int3 is masked out of reads");
    for _ in 0..3 {
        let (p, kind) = s.cont(pid);
        assert_eq!((p, kind), (pid, StopKind::Breakpoint), "{:?}", s.events);
        let regs = s.dbg.read_registers(pid.leader()).expect("registers");
        assert_eq!(regs.gp.rip, site.0, "stopped at the breakpoint's address");
    }
    assert!(s.dbg.remove_breakpoint(pid, site, me).expect("remove"));
    assert!(!s.dbg.remove_breakpoint(pid, site, me).expect("remove again"), "nothing left to remove");
    s.cont(pid);
    assert_eq!(s.events, ["P1 breakpoint", "P1 breakpoint", "P1 breakpoint", "P1 exited 7"]);
}

/// A counting probe counts every call and never stops the program; the statistics report
/// the traps it took.
fn counting_probe_counts_without_stopping() {
    let prog = fixture_with("loop", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &["25", "0"]);
    let id = s.dbg.count(pid, &"probe_site".parse().unwrap()).expect("count");
    let other = s.dbg.count(pid, &"probe_other".parse().unwrap()).expect("count");
    let r = s.dbg.probe_report(id).expect("report");
    assert!(r.state == xol::debugger::ProbeState::Armed && r.armed.len() == 1, "{r:?}");
    s.cont(pid);
    assert_eq!(s.events, ["P1 exited 0"], "a counting probe never stops");
    assert_eq!(s.dbg.probe_hits(id), vec![(pid, 25)]);
    assert_eq!(s.dbg.probe_hits(other), vec![(pid, 25)]);
    let st = s.dbg.stats(None);
    assert_eq!(st.steps.traps, 50, "{st}");
    assert_eq!(st.steps.world_stops, 0, "{st}");
}

/// A breakpoint owned by two owners stays planted until the last lets go.
fn shared_insertion_keeps_its_byte_until_the_last_owner() {
    let prog = fixture_with("loop", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &["2", "0"]);
    let site = s.location(pid, "probe_site");
    let (a, b) = (client(&mut s.dbg), client(&mut s.dbg));
    s.dbg.insert_breakpoint(pid, site, a).expect("insert a");
    s.dbg.insert_breakpoint(pid, site, b).expect("insert b");
    assert_eq!(s.dbg.breakpoints(pid), vec![(site, vec![a, b])]);
    assert!(s.dbg.remove_breakpoint(pid, site, a).expect("remove a"));
    assert_eq!(s.dbg.breakpoints(pid), vec![(site, vec![b])]);
    assert_eq!(s.cont(pid), (pid, StopKind::Breakpoint), "b's breakpoint still stops");
    assert!(s.dbg.remove_breakpoint(pid, site, b).expect("remove b"));
    assert!(s.dbg.breakpoints(pid).is_empty());
    s.cont(pid);
    assert_eq!(s.events, ["P1 breakpoint", "P1 exited 0"]);
}

/// Each error names what failed.
fn errors_say_what_failed() {
    let prog = fixture_with("loop", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &["1", "0"]);
    let mut buf = [0u8; 8];
    match s.dbg.read_memory(pid, VirtAddr(0x10), &mut buf) {
        Err(Error::Memory { addr, .. }) => assert_eq!(addr, VirtAddr(0x10)),
        other => panic!("reading page 0: {other:?}"),
    }
    let nobody = Pid(i32::MAX);
    assert!(matches!(s.dbg.read_memory(nobody, VirtAddr(0x1000), &mut buf), Err(Error::NoProcess(p)) if p == nobody));
    assert!(matches!(s.dbg.resume(nobody, &[], Some(Action::CONTINUE)), Err(e) if e.is_gone()));
    // Four debug registers: four 8-byte watchpoints fit, a fifth does not, and says so.
    // (Aligned: an unaligned 8-byte region takes more than one register.)
    let data = s.location(pid, "g_counter").0 & !7;
    for i in 0..4 {
        s.dbg.insert_hw(pid, VirtAddr(data + 8 * i), 8, HwKind::Write).expect("watchpoint");
    }
    match s.dbg.insert_hw(pid, VirtAddr(data + 64), 8, HwKind::Write) {
        Err(e @ Error::NoDebugRegister { free: 0, len: 8, .. }) => {
            assert!(e.to_string().contains("debug register"), "{e}");
            assert_eq!(e.errno(), libc::ENOSPC);
        }
        other => panic!("a fifth watchpoint: {other:?}"),
    }
    s.dbg.clear_hw(pid).expect("clear");
    for (loc, why) in [
        ("no_such_function", "no symbol"),
        ("loop.c:999", "No line 999 in file \"loop.c\"."),
        ("nosuch.c:12", "No source file named nosuch.c."),
        ("g_counter", "not code"),
    ] {
        match s.dbg.count(pid, &loc.parse().unwrap()) {
            Err(Error::Location(m)) => assert!(m.contains(why), "{loc}: {m}"),
            other => panic!("{loc}: {other:?}"),
        }
    }
    let e = "0xzz".parse::<Location>().expect_err("bad address");
    assert!(e.to_string().contains("not a hexadecimal address"), "{e}");
    s.cont(pid);
    assert_eq!(s.events, ["P1 exited 0"], "failed requests leave the program as it was");
}

/// Detaching while stopped at a breakpoint, with a counting probe armed, leaves no byte of
/// xol's behind: the program runs on untraced and exits with its own status.
fn detach_leaves_a_clean_program() {
    let prog = fixture_with("loop", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &["50", "5"]);
    let site = s.location(pid, "probe_site");
    let me = client(&mut s.dbg);
    s.dbg.insert_breakpoint(pid, site, me).expect("insert");
    s.dbg.count(pid, &"probe_other".parse().unwrap()).expect("count");
    assert_eq!(s.cont(pid), (pid, StopKind::Breakpoint));
    s.dbg.detach(pid).expect("detach");
    assert!(s.dbg.pids().is_empty());
    // Still xol's child: its exit status tells whether a stray int3 killed it.
    let mut status = 0;
    let r = unsafe { libc::waitpid(pid.0, &mut status, 0) };
    assert_eq!(r, pid.0, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 5, "status {status:#x}");
}

/// A fork with a per-file probe: the child is followed, its probe hit, its end and the
/// parent's exit come in the order they happened.
fn fork_events_come_in_order() {
    let prog = fixture_with("forker", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &[]);
    s.dbg.subscribe(EVERYTHING);
    let file = prog.display().to_string();
    let id = s.dbg.count(pid, &format!("{file}:child_work").parse().unwrap()).expect("count");
    s.cont(pid);
    let hit = format!("P2 hit probe {id} (count)");
    // The parent stops for SIGCHLD (delivered on), as under gdb.
    assert_eq!(s.events, ["P1 forked P2 (followed)", hit.as_str(), "P2 ended 7", "P1 signal 17", "P1 exited 0"]);
    assert_eq!(s.dbg.stats(None).children_followed, 1);
    // Without a subscription the same run reports only the exit.
    let mut s = Session::new();
    let pid = s.launch(&prog, &[]);
    s.dbg.count(pid, &format!("{file}:child_work").parse().unwrap()).expect("count");
    s.cont(pid);
    assert_eq!(s.events, ["P1 signal 17", "P1 exited 0"]);
}

/// vfork then exec in the child, exec in place: each is a notice; a probe pending on a
/// library is armed in every image that maps it.
fn vfork_and_exec_are_told() {
    let prog = fixture_with("pf_libexec", FixtureOpts::PIE);
    fixture_with("pf_leaf", FixtureOpts::PIE); // What it execs, built next to it.
    let mut s = Session::new();
    let pid = s.launch(&prog, &["vfork", "2", "3", "4"]);
    s.dbg.subscribe(LIFECYCLE);
    let id = s.dbg.count(pid, &"libfix.so:fix_add".parse().unwrap()).expect("count");
    s.cont(pid);
    assert_eq!(s.events, ["P1 vforked P2 (followed)", "P2 exec pf_leaf", "P2 ended 0", "P1 signal 17", "P1 exited 0"]);
    let hits: u64 = s.dbg.probe_hits(id).iter().map(|(_, n)| n).sum();
    assert_eq!(hits, 2 + 3 + 4, "the parent's calls before and after, the leaf's in between");

    let mut s = Session::new();
    let pid = s.launch(&prog, &["exec", "2", "5"]);
    s.dbg.subscribe(LIFECYCLE);
    let id = s.dbg.count(pid, &"libfix.so:fix_add".parse().unwrap()).expect("count");
    s.cont(pid);
    assert_eq!(s.events, ["P1 exec pf_leaf", "P1 exited 0"]);
    assert_eq!(s.dbg.probe_hits(id), vec![(pid, 2 + 5)], "the same pid before and after the exec");
}

/// Threads: each start and end is a notice, and every probe hit names its thread's process.
fn threads_and_probe_hits_are_told() {
    let prog = fixture_with("threads", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &[]);
    s.dbg.subscribe(EVERYTHING);
    let id = s.dbg.count(pid, &"thread_work".parse().unwrap()).expect("count");
    s.cont(pid);
    let n = |what: &str| s.events.iter().filter(|e| e.as_str() == what).count();
    assert_eq!(n("P1 thread started"), 4, "{:?}", s.events);
    assert_eq!(n("P1 thread exited"), 4, "{:?}", s.events);
    assert_eq!(n(&format!("P1 hit probe {id} (count)")), 12, "{:?}", s.events);
    assert_eq!(s.events.last().map(String::as_str), Some("P1 exited 0"));
    // A thread's notices come between its start and its end.
    let first_start = s.events.iter().position(|e| e == "P1 thread started").unwrap();
    let first_hit = s.events.iter().position(|e| e.contains("hit probe")).unwrap();
    assert!(first_start < first_hit, "{:?}", s.events);
}

/// A step's range belongs to that step only. A range-step that ends on a breakpoint, then a
/// plain single-step from it (displaced: `lock cmpxchg` runs out of line) stops after one
/// instruction, not at the end of the earlier range.
fn a_step_range_ends_with_its_step() {
    let prog = fixture_with("insns", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &[]);
    let me = client(&mut s.dbg);
    let start = s.location(pid, "f_lock");
    let bp = s.location(pid, "insn_lock_cmpxchg_rip");
    // `lock cmpxchgl %ecx, g_lock(%rip)` is 8 bytes; the range ends at the second cmpxchg,
    // three instructions further.
    let after = bp.0 + 8;
    let end = s.location(pid, "insn_lock_cmpxchg").0;
    s.dbg.insert_breakpoint(pid, start, me).expect("insert");
    assert_eq!(s.cont(pid), (pid, StopKind::Breakpoint));
    let tid = s.last_tid;
    s.dbg.remove_breakpoint(pid, start, me).expect("remove");
    s.dbg.insert_breakpoint(pid, bp, me).expect("insert");
    let range_step = Action { step: true, sig: 0, range: Some((start.0, end)) };
    let rip = |s: &Session| s.dbg.read_registers(tid).expect("registers").gp.rip;
    // The range-step stops where the breakpoint is, before executing it...
    s.dbg.resume(pid, &[(tid, range_step)], None).expect("resume");
    assert_eq!(s.next(), (pid, StopKind::Step));
    assert_eq!(rip(&s), bp.0);
    // ...and stepping again from there hits it.
    s.dbg.resume(pid, &[(tid, range_step)], None).expect("resume");
    assert_eq!(s.next(), (pid, StopKind::Breakpoint));
    assert_eq!(rip(&s), bp.0);
    // A single-step with no range: one instruction.
    s.dbg.resume(pid, &[(tid, Action::step(0))], None).expect("resume");
    assert_eq!(s.next(), (pid, StopKind::Step));
    assert_eq!(rip(&s), after, "one instruction stepped, not the rest of the earlier range");
    s.dbg.remove_breakpoint(pid, bp, me).expect("remove");
    assert_eq!(s.cont(pid), (pid, StopKind::Exited(0)));
}

/// Fork events on: the parent stops at its fork; the child is a process of the session's,
/// stopped, with the parent's breakpoint in its memory (and masked there); each goes on when
/// resumed, in the order the session chooses.
fn forks_are_stops_when_asked() {
    let prog = fixture_with("forker", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &[]);
    s.dbg.set_fork_events(true);
    let me = client(&mut s.dbg);
    let work = s.location(pid, "child_work");
    let mut before = [0u8; 1];
    s.dbg.read_memory(pid, work, &mut before).expect("read");
    s.dbg.insert_breakpoint(pid, work, me).expect("insert");
    let (_, kind) = s.cont(pid);
    let StopKind::Forked { child, vfork: false } = kind else { panic!("{kind:?}: {:?}", s.events) };
    let (mut pids, mut both) = (s.dbg.pids(), vec![pid, child]);
    pids.sort();
    both.sort();
    assert_eq!(pids, both, "the child is a process of the session's");
    assert_eq!(s.dbg.breakpoints(child), vec![(work, vec![me])], "the child inherits the breakpoint");
    let mut in_child = [0u8; 1];
    s.dbg.read_memory(child, work, &mut in_child).expect("read");
    assert_eq!(in_child, before, "masked in the child too");
    assert_eq!(s.cont(child), (child, StopKind::Breakpoint));
    assert!(s.dbg.remove_breakpoint(child, work, me).expect("remove"));
    assert_eq!(s.cont(child), (child, StopKind::Exited(7)));
    assert_eq!(s.dbg.breakpoints(pid), vec![(work, vec![me])], "the parent's stays");
    assert_eq!(s.cont(pid), (pid, StopKind::Exited(0)));
    assert_eq!(s.events, ["P1 forked P2", "P2 breakpoint", "P2 exited 7", "P1 signal 17", "P1 exited 0"]);
}

/// A forked child let go (gdb's `detach-on-fork on`) runs on with none of xol's bytes: with a
/// breakpoint on a function the child calls, an `int3` left behind would kill it (SIGTRAP) and
/// the parent, which checks its children, would exit 2.
fn a_forked_child_let_go_runs_clean() {
    let prog = fixture_with("pf_forkn", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &["2", "5"]);
    s.dbg.set_fork_events(true);
    let me = client(&mut s.dbg);
    let probed = s.location(pid, "pf_probed");
    s.dbg.insert_breakpoint(pid, probed, me).expect("insert");
    for _ in 0..2 {
        let (_, kind) = s.cont(pid);
        let StopKind::Forked { child, .. } = kind else { panic!("{kind:?}: {:?}", s.events) };
        s.dbg.detach(child).expect("detach child");
        assert!(!s.dbg.pids().contains(&child));
    }
    // The parent's own calls still stop it.
    loop {
        match s.cont(pid) {
            (_, StopKind::Breakpoint) => {}
            (_, StopKind::Exited(code)) => {
                assert_eq!(code, 0, "a child died: {:?}", s.events);
                break;
            }
            other => panic!("{other:?}: {:?}", s.events),
        }
    }
    let stops = s.events.iter().filter(|e| *e == "P1 breakpoint").count();
    assert_eq!(stops, 5, "the parent's five calls: {:?}", s.events);
}

/// A forked child let go while a per-file probe exists is followed on xol's own: its hits are
/// counted, silently, as when fork events are off.
fn a_forked_child_let_go_keeps_its_per_file_probes() {
    let prog = fixture_with("pf_forkn", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &["2", "5"]);
    s.dbg.set_fork_events(true);
    let file = prog.display().to_string();
    let id = s.dbg.count(pid, &format!("{file}:pf_probed").parse().unwrap()).expect("count");
    let mut children = Vec::new();
    loop {
        match s.cont(pid) {
            (_, StopKind::Forked { child, .. }) => {
                s.dbg.detach(child).expect("detach child");
                children.push(child);
            }
            (_, StopKind::Exited(code)) => {
                assert_eq!(code, 0, "{:?}", s.events);
                break;
            }
            other => panic!("{other:?}: {:?}", s.events),
        }
    }
    let hits: BTreeMap<Pid, u64> = s.dbg.probe_hits(id).into_iter().collect();
    assert_eq!(hits.get(&pid), Some(&5), "{hits:?}");
    for c in &children {
        assert_eq!(hits.get(c), Some(&5), "child {c:?}: {hits:?}");
    }
    assert_eq!(s.dbg.stats(None).children_followed, 2);
}

/// vfork and exec events on, the child kept: the parent stops at its vfork, the child at its
/// exec (breakpoints gone with the old image, per-file probes armed in the new one), the
/// parent again once the child has exec'd (vfork done).
fn vfork_and_exec_are_stops_when_asked() {
    let prog = fixture_with("pf_libexec", FixtureOpts::PIE);
    fixture_with("pf_leaf", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &["vfork", "2", "3", "4"]);
    s.dbg.set_fork_events(true);
    s.dbg.set_exec_events(true);
    let id = s.dbg.count(pid, &"libfix.so:fix_add".parse().unwrap()).expect("count");
    let (_, kind) = s.cont(pid);
    let StopKind::Forked { child, vfork: true } = kind else { panic!("{kind:?}: {:?}", s.events) };
    assert_eq!(s.cont(child), (child, StopKind::Exec));
    assert!(s.dbg.breakpoints(child).iter().all(|(_, o)| !o.iter().any(|o| matches!(o, Owner::Client(_)))));
    assert_eq!(s.cont(pid), (pid, StopKind::VforkDone));
    assert_eq!(s.cont(child), (child, StopKind::Exited(0)));
    assert_eq!(s.cont(pid), (pid, StopKind::Exited(0)));
    assert_eq!(
        s.events,
        ["P1 vforked P2", "P2 exec pf_leaf", "P1 vfork done", "P2 exited 0", "P1 signal 17", "P1 exited 0"]
    );
    let hits: u64 = s.dbg.probe_hits(id).iter().map(|(_, n)| n).sum();
    assert_eq!(hits, 2 + 3 + 4);
}

/// Non-stop: a thread that hits a breakpoint stops alone. The other workers run on and report
/// their own hits while it stays stopped (in all-stop the first hit stops them all and they
/// cannot); registers of a stopped thread are read while others run; a stop request stops the
/// running main thread (`Stopped`); then every thread is resumed and the program ends well.
fn non_stop_threads_stop_alone() {
    let prog = fixture_with("threads", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &[]);
    s.dbg.set_non_stop(true);
    let me = client(&mut s.dbg);
    let bar = s.location(pid, "at_barrier");
    s.dbg.insert_breakpoint(pid, bar, me).expect("insert");
    s.dbg.resume(pid, &[], Some(Action::CONTINUE)).expect("resume");
    let mut stopped = std::collections::BTreeSet::new();
    while stopped.len() < 4 {
        assert_eq!(s.next(), (pid, StopKind::Breakpoint), "{:?}", s.events);
        let tid = s.last_tid;
        assert!(stopped.insert(tid), "{tid:?} reported twice without being resumed");
        assert_eq!(s.dbg.read_registers(tid).expect("registers").gp.rip, bar.0);
        assert!(!s.dbg.is_stopped(pid, pid.leader()), "main runs on (in pthread_join)");
    }
    assert!(!stopped.contains(&pid.leader()));
    s.dbg.stop_threads(pid, &[pid.leader()]).expect("stop main");
    assert_eq!(s.next(), (pid, StopKind::Stopped));
    assert_eq!(s.last_tid, pid.leader());
    assert!(s.dbg.remove_breakpoint(pid, bar, me).expect("remove"));
    // One worker on its own first: it leaves the breakpoint (displaced) and waits at the
    // second barrier; nobody else moves.
    let first = *stopped.iter().next().expect("a worker");
    s.dbg.resume(pid, &[(first, Action::CONTINUE)], None).expect("resume one");
    assert!(s.dbg.is_stopped(pid, pid.leader()));
    s.dbg.resume(pid, &[], Some(Action::CONTINUE)).expect("resume all");
    assert_eq!(s.next(), (pid, StopKind::Exited(0)), "{:?}", s.events);
}

/// Target-side conditions (agent bytecode, as gdb sends them in `Z0;X..`): a breakpoint stops
/// only where its condition holds, evaluated in xol (registers, and memory as the program sees
/// it); a replaced condition takes over; a condition xol cannot evaluate stops every time.
fn breakpoint_conditions_are_evaluated_in_xol() {
    let prog = fixture_with("loop", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &["10", "0"]);
    let me = client(&mut s.dbg);
    let site = s.location(pid, "probe_site");
    let counter = s.location(pid, "g_counter");
    let rdi = |s: &Session| s.dbg.read_registers(s.last_tid).expect("registers").gp.rdi;
    s.dbg.insert_breakpoint(pid, site, me).expect("insert");
    // x == 5: reg rdi, ext 32, const8 5, equal, end.
    let x_is_5 = vec![0x26, 0x00, 0x05, 0x16, 0x20, 0x22, 0x05, 0x13, 0x27];
    s.dbg.set_breakpoint_conditions(pid, site, me, &[x_is_5]).expect("condition");
    assert_eq!(s.cont(pid), (pid, StopKind::Breakpoint));
    assert_eq!(rdi(&s), 5, "the first stop is where x == 5");
    // g_counter == 7 (incremented by each call): const64 &g_counter, ref32, const8 7, equal.
    let mut counter_is_7 = vec![0x25];
    counter_is_7.extend_from_slice(&counter.0.to_be_bytes());
    counter_is_7.extend_from_slice(&[0x19, 0x22, 0x07, 0x13, 0x27]);
    s.dbg.set_breakpoint_conditions(pid, site, me, &[counter_is_7]).expect("condition");
    assert_eq!(s.cont(pid), (pid, StopKind::Breakpoint));
    assert_eq!(rdi(&s), 7, "g_counter is 7 at the entry of the call with x == 7");
    // A float opcode: refused by xol, so the breakpoint stops every time (gdb decides).
    s.dbg.set_breakpoint_conditions(pid, site, me, &[vec![0x01, 0x27]]).expect("condition");
    assert_eq!(s.cont(pid), (pid, StopKind::Breakpoint));
    assert_eq!(rdi(&s), 8);
    s.dbg.set_breakpoint_conditions(pid, site, me, &[]).expect("no condition");
    assert_eq!(s.cont(pid), (pid, StopKind::Breakpoint));
    assert_eq!(rdi(&s), 9);
    assert!(s.dbg.remove_breakpoint(pid, site, me).expect("remove"));
    assert_eq!(s.cont(pid), (pid, StopKind::Exited(0)));
    let st = s.dbg.stats(None).steps;
    assert_eq!(st.conditions_false, 5 + 1, "x = 0..4, then x = 6: not reported");
    assert_eq!(st.conditions_evaluated, 6 + 2, "six false, two true");
}

/// A signal stop's `siginfo_t` reads as the kernel made it (gdb's `$_siginfo`: SIGSEGV's code
/// and fault address), a write to it reads back (the kernel delivers the signal with it), and a
/// write past its 128 bytes is refused.
fn siginfo_reads_and_writes() {
    let prog = fixture_with("sigdie", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &[]);
    s.dbg.resume(pid, &[], Some(Action::CONTINUE)).expect("resume");
    assert_eq!(s.next(), (pid, StopKind::Signal(libc::SIGSEGV)));
    let info = s.dbg.siginfo(s.last_tid).expect("siginfo");
    assert_eq!(info.len(), 128);
    let word = |b: &[u8], at: usize| i32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    assert_eq!(word(&info, 0), libc::SIGSEGV, "si_signo");
    assert_eq!(word(&info, 8), 1, "si_code SEGV_MAPERR");
    // si_addr (offset 16): crash_here reads through a null pointer.
    assert_eq!(u64::from_le_bytes(info[16..24].try_into().unwrap()), 0);
    s.dbg.set_siginfo(s.last_tid, 8, &2i32.to_le_bytes()).expect("write si_code");
    assert_eq!(word(&s.dbg.siginfo(s.last_tid).expect("siginfo"), 8), 2, "SEGV_ACCERR now");
    assert!(s.dbg.set_siginfo(s.last_tid, 126, &[0; 4]).is_err(), "past the end");
    let tid = s.last_tid;
    s.dbg
        .resume(pid, &[(tid, Action { step: false, sig: libc::SIGSEGV, range: None })], Some(Action::CONTINUE))
        .expect("deliver");
    assert_eq!(s.next(), (pid, StopKind::Killed(libc::SIGSEGV)));
}

/// The counters shared with a tracee (for jump pads): one memfd page mapped in xol and, by
/// calls injected into a stopped thread, in the tracee. A store on either side is seen on the
/// other with no ptrace; the program runs on and ends as it would.
fn shared_counters_are_one_memory() {
    use xol::inferior::{Inferior, SpawnSpec, StopKind as K, WaitOutcome as W};
    let prog = fixture_with("loop", FixtureOpts::PIE);
    let mut inf = Inferior::new();
    let spec = SpawnSpec {
        argv: vec![prog.clone().into_os_string(), "3".into(), "0".into()],
        wrapper: vec![],
        env: None,
        cwd: None,
        disable_aslr: true,
        stdin_null: true,
        stdout_to_stderr: false,
        tty: None,
    };
    let pid = inf.launch(&spec).expect("launch");
    let at = inf.map_shared_counters(pid).expect("map");
    assert_eq!(inf.map_shared_counters(pid).expect("again"), at, "mapped once");
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", pid.0)).expect("maps");
    assert!(maps.lines().any(|l| l.starts_with(&format!("{at:x}-")) && l.contains("memfd:xol-counters")), "{maps}");
    inf.add_shared_counter(pid, 2, 40).expect("counter");
    let mut word = [0u8; 8];
    inf.read_memory(pid, VirtAddr(at + 16), &mut word).expect("read");
    assert_eq!(u64::from_le_bytes(word), 40, "xol's store, seen in the tracee");
    inf.write_memory(pid, VirtAddr(at + 24), &5u64.to_le_bytes()).expect("write");
    assert_eq!(inf.shared_counter(pid, 3), Some(5), "the tracee's memory, read by xol");
    inf.resume(pid, &[], Some(Action::CONTINUE)).expect("resume");
    loop {
        match inf.wait_for(None, Some(WAIT_TIMEOUT)).expect("wait") {
            W::Stopped(ev) if ev.kind == K::Exited(0) => break,
            W::Stopped(ev) => panic!("{ev:?}"),
            W::Timeout => panic!("no exit"),
            _ => {}
        }
    }
}

/// Thread-local addresses (gdb's `qGetTLSAddr`), from glibc's own layout descriptors: for the
/// main thread and a second thread, the address computed for the program's `__thread`
/// variable is the one the program itself passes to `tls_here`, and they differ.
fn tls_addresses_are_the_threads_own() {
    let prog = fixture_with("tls", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &[]);
    let me = client(&mut s.dbg);
    let here = s.location(pid, "tls_here");
    s.dbg.insert_breakpoint(pid, here, me).expect("insert");
    let bytes = std::fs::read(&prog).expect("read program");
    let offset = xol::symbols::lookup(&bytes, "tls_var").expect("symbols").expect("tls_var");
    let mut seen = Vec::new();
    for _ in 0..2 {
        assert_eq!(s.cont(pid), (pid, StopKind::Breakpoint));
        let tid = s.last_tid;
        let lm = s.dbg.libraries(pid).expect("libraries").main_lm;
        assert_ne!(lm, 0, "the main link_map is known once the program runs");
        let want = s.dbg.read_registers(tid).expect("registers").gp.rdi;
        assert_eq!(s.dbg.tls_address(pid, tid, lm, offset).expect("tls address"), want, "thread {tid:?}");
        seen.push(want);
    }
    assert_ne!(seen[0], seen[1], "each thread has its own copy");
    assert!(s.dbg.remove_breakpoint(pid, here, me).expect("remove"));
    assert_eq!(s.cont(pid), (pid, StopKind::Exited(0)));
}

/// Thread events on (gdb's `QThreadEvents:1`): each new thread stops at its start and each
/// exit is a stop of its own, with the exit status; the program ends as it would.
fn thread_events_are_stops_when_asked() {
    let prog = fixture_with("threads", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &[]);
    s.dbg.set_thread_events(true);
    let mut created = std::collections::BTreeSet::new();
    loop {
        match s.cont(pid) {
            (_, StopKind::ThreadCreated) => {
                assert!(created.insert(s.last_tid), "one creation per thread");
                assert!(s.dbg.threads(pid).contains(&s.last_tid));
            }
            (_, StopKind::ThreadExited(code)) => {
                assert_eq!(code, 0);
                assert!(created.contains(&s.last_tid), "exits a thread that was created");
            }
            (_, StopKind::Exited(0)) => break,
            other => panic!("{other:?}: {:?}", s.events),
        }
    }
    let n = |what: &str| s.events.iter().filter(|e| e.as_str() == what).count();
    assert_eq!((n("P1 thread created"), n("P1 thread exited 0")), (4, 4), "{:?}", s.events);
}

/// A front-end's breakpoint with a false condition on the program's own `int3` (gdb's
/// permanent breakpoint) is gone past as gdb does: ip after the `int3` and no SIGTRAP for the
/// program (its handler counts none); a true condition stops there.
fn a_false_condition_on_the_programs_own_int3_goes_past_it() {
    let prog = fixture_with("permbp", FixtureOpts::PIE);
    let mut s = Session::new();
    let pid = s.launch(&prog, &["4"]);
    let me = client(&mut s.dbg);
    let site = s.location(pid, "perm_site");
    s.dbg.insert_breakpoint(pid, site, me).expect("insert");
    // const8 0, end: never true.
    s.dbg.set_breakpoint_conditions(pid, site, me, &[vec![0x22, 0x00, 0x27]]).expect("condition");
    assert_eq!(s.cont(pid), (pid, StopKind::Exited(0)), "no SIGTRAP reached the program: {:?}", s.events);
    let mut s = Session::new();
    let pid = s.launch(&prog, &["1"]);
    let me = client(&mut s.dbg);
    let site = s.location(pid, "perm_site");
    s.dbg.insert_breakpoint(pid, site, me).expect("insert");
    s.dbg.set_breakpoint_conditions(pid, site, me, &[vec![0x22, 0x01, 0x27]]).expect("condition");
    assert_eq!(s.cont(pid), (pid, StopKind::Breakpoint), "a true condition stops");
    assert_eq!(s.dbg.read_registers(s.last_tid).expect("registers").gp.rip, site.0);
    s.dbg.kill(pid).expect("kill");
}

const SCENARIOS: &[(&str, fn())] = &[
    ("breakpoint_stops_and_memory_is_masked", breakpoint_stops_and_memory_is_masked),
    ("counting_probe_counts_without_stopping", counting_probe_counts_without_stopping),
    ("shared_insertion_keeps_its_byte_until_the_last_owner", shared_insertion_keeps_its_byte_until_the_last_owner),
    ("errors_say_what_failed", errors_say_what_failed),
    ("detach_leaves_a_clean_program", detach_leaves_a_clean_program),
    ("fork_events_come_in_order", fork_events_come_in_order),
    ("vfork_and_exec_are_told", vfork_and_exec_are_told),
    ("threads_and_probe_hits_are_told", threads_and_probe_hits_are_told),
    ("a_step_range_ends_with_its_step", a_step_range_ends_with_its_step),
    ("forks_are_stops_when_asked", forks_are_stops_when_asked),
    ("a_forked_child_let_go_runs_clean", a_forked_child_let_go_runs_clean),
    ("a_forked_child_let_go_keeps_its_per_file_probes", a_forked_child_let_go_keeps_its_per_file_probes),
    ("vfork_and_exec_are_stops_when_asked", vfork_and_exec_are_stops_when_asked),
    ("non_stop_threads_stop_alone", non_stop_threads_stop_alone),
    ("breakpoint_conditions_are_evaluated_in_xol", breakpoint_conditions_are_evaluated_in_xol),
    ("siginfo_reads_and_writes", siginfo_reads_and_writes),
    ("shared_counters_are_one_memory", shared_counters_are_one_memory),
    ("tls_addresses_are_the_threads_own", tls_addresses_are_the_threads_own),
    (
        "a_false_condition_on_the_programs_own_int3_goes_past_it",
        a_false_condition_on_the_programs_own_int3_goes_past_it,
    ),
    ("thread_events_are_stops_when_asked", thread_events_are_stops_when_asked),
];

fn main() {
    Debugger::init_signals().expect("signals");
    // `cargo test -- NAME` runs the scenarios whose name contains NAME; `--list` lists them;
    // the test harness's other options (and their values) are accepted and ignored.
    let mut filter = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--list" => {
                for (name, _) in SCENARIOS {
                    println!("{name}: test");
                }
                return;
            }
            "--test-threads" | "--skip" | "--logfile" | "--format" | "--color" | "-Z" | "--shuffle-seed" => {
                args.next();
            }
            _ if a.starts_with('-') => {}
            _ => filter.push(a),
        }
    }
    let (tx, rx) = std::sync::mpsc::channel::<&'static str>();
    // The watchdog: a scenario that does not report within its time ends the binary.
    let watchdog = std::thread::spawn(move || {
        let mut current = "start-up";
        loop {
            match rx.recv_timeout(SCENARIO_TIMEOUT) {
                Ok(name) => current = name,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                    eprintln!("session: {current} did not finish within {SCENARIO_TIMEOUT:?}");
                    std::process::exit(101);
                }
            }
        }
    });
    let mut failed = Vec::new();
    let mut ran = 0;
    for (name, f) in SCENARIOS {
        if !filter.is_empty() && !filter.iter().any(|x| name.contains(x.as_str())) {
            continue;
        }
        let _ = tx.send(name);
        ran += 1;
        match std::panic::catch_unwind(f) {
            Ok(()) => println!("test {name} ... ok"),
            Err(_) => {
                println!("test {name} ... FAILED");
                failed.push(*name);
            }
        }
    }
    drop(tx);
    let _ = watchdog.join();
    println!("\nsession: {} passed; {} failed", ran - failed.len(), failed.len());
    if !failed.is_empty() {
        println!("failed: {failed:?}");
        std::process::exit(101);
    }
}
