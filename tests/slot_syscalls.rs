//! Displaced stepping meets system calls, faults and signals (fixture `slotsys`), through gdb.
//!
//! - A probed `syscall` instruction (getpid, fork, rt_sigreturn, execve, exit_group) is run out
//!   of line from its slot; a child forked from inside the slot inherits the slot page (a private
//!   mapping is copied) and leaves through the slot's jump back; rt_sigreturn sets ip
//!   absolutely and is left alone; exec drops the area with the old image.
//! - A fault raised by a boosted copy is reported at the original address, exactly as GNU
//!   gdbserver reports it without any probe.
//! - A storm of timer signals while a probed function is called: every signal that catches a
//!   thread in its slot is fixed up at the signal-delivery stop (the handler never returns into
//!   a slot with a half-done step), and every call is still counted once.

mod support;

use std::time::Duration;
use support::*;

/// The plan of the probe at `label` (empty if there is none).
fn plan(all: &str, label: &str) -> String {
    probe_at(all, label).map(|p| p.plan).unwrap_or_default()
}

fn hits(all: &str, label: &str) -> Option<u64> {
    probe_at(all, label).map(|p| p.total)
}

#[test]
fn probed_syscalls_getpid_fork_sigreturn_exit() {
    let prog = fixture_with("slotsys", FixtureOpts::PIE);
    let script = [
        "monitor count sys_getpid_insn",
        "monitor count sys_fork_insn",
        "monitor count sys_sigreturn_insn",
        "monitor count sys_exit_insn",
        "handle SIGUSR1 nostop noprint pass",
        "break before_exit",
        "continue",
        "monitor probes",
        "continue",
    ];
    let out = gdb_batch(Server::XolStdio, &prog, &[], &script);
    let all = out.all_output();
    for l in ["sys_getpid_insn", "sys_fork_insn", "sys_sigreturn_insn", "sys_exit_insn"] {
        assert_eq!(plan(&all, l), "out-of-line", "{l} is stepped out of line\n{out}");
    }
    assert_eq!(hits(&all, "sys_getpid_insn"), Some(5), "{out}");
    assert_eq!(hits(&all, "sys_fork_insn"), Some(1), "the parent's fork\n{out}");
    assert_eq!(hits(&all, "sys_sigreturn_insn"), Some(3), "one rt_sigreturn per SIGUSR1\n{out}");
    for m in ["getpid-ok", "usr1=3", "child-ok", "child-status=7", "done"] {
        assert!(out.has_mark(m), "MARK:{m}\n{out}");
    }
    assert!(all.contains("exited normally]"), "exit_group from the slot ends the program\n{out}");
}

#[test]
fn probed_execve_runs_the_new_program() {
    let prog = fixture_with("slotsys", FixtureOpts::PIE);
    let out = gdb_batch(Server::XolStdio, &prog, &["exec"], &["monitor count sys_exec_insn", "continue"]);
    let all = out.all_output();
    assert!(!out.has_mark("exec-failed"), "{out}");
    assert!(all.contains("exited normally]"), "/bin/true ran and exited 0\n{out}");
}

#[test]
fn fault_in_a_boosted_copy_is_reported_at_the_original_address() {
    let prog = fixture_with("slotsys", FixtureOpts::PIE);
    let script = ["continue", "echo ==PC==\\n", "p $pc", "x/i $pc", "info symbol $pc", "echo ==END==\\n"];
    let with_probe: Vec<&str> = ["monitor count fault_insn"].into_iter().chain(script).collect();
    let xol = gdb_batch(Server::XolStdio, &prog, &["fault"], &with_probe);
    let all = xol.all_output();
    assert!(all.contains("boosted mov"), "the faulting load is boosted\n{xol}");
    assert!(all.contains("Program received signal SIGSEGV"), "{xol}");
    let pc = |o: &GdbOutput| normalise_gdb_output(section_of(&o.stdout, "PC"));
    if gdbserver_available() {
        let gs = gdb_batch(Server::GdbserverStdio, &prog, &["fault"], &script);
        assert_eq!(pc(&xol), pc(&gs), "the fault is at the original instruction, as with gdbserver\n{xol}\n{gs}");
    } else {
        assert!(section_of(&xol.stdout, "PC").contains("<fault_load>"), "{xol}");
    }
}

#[test]
fn signal_storm_while_stepping_out_of_line_counts_every_call() {
    let prog = fixture_with("slotsys", FixtureOpts::PIE);
    let script = [
        "monitor count storm_target",
        "handle SIGALRM nostop noprint pass",
        "break before_exit",
        "continue",
        "monitor probes",
        "monitor stats",
        "continue",
    ];
    let opts = GdbOpts { timeout: Duration::from_secs(120), ..GdbOpts::default() };
    let out = gdb_batch_opts(Server::XolStdio, &prog, &["storm", "20000"], &script, &opts);
    let all = out.all_output();
    assert_eq!(plan(&all, "storm_target"), "out-of-line", "{out}");
    assert_eq!(hits(&all, "storm_target"), Some(20000), "every call counted once\n{out}");
    assert!(out.has_mark("storm-ok"), "the program computed the right sum\n{out}");
    assert!(out.has_mark("alarms>0=1"), "signals did arrive\n{out}");
    assert!(all.contains("exited normally]"), "{out}");
    let rewound: u64 =
        all.lines().find_map(|l| l.split("rewound: ").nth(1).and_then(|v| v.trim().parse().ok())).unwrap_or(0);
    eprintln!("displaced steps rewound by a signal: {rewound}");
}

/// The text between `==NAME==` and the next `==` marker.
fn section_of<'a>(s: &'a str, name: &str) -> &'a str {
    let m = format!("=={name}==\n");
    let Some(i) = s.find(&m) else { return "" };
    let rest = &s[i + m.len()..];
    &rest[..rest.find("==").unwrap_or(rest.len())]
}
