//! xol's own remote-protocol server (`xol serve --rsp xol`) on what the gdbstub front-end could
//! not do: real pids in thread ids (`Thread PID.TID` in gdb, `pPID.TID` on the wire,
//! `W..;process:PID`) and thread names through `qXfer:threads:read` (`info threads`, `Thread N
//! "name" hit Breakpoint`). Compared with GNU gdbserver where it is installed.
//!
//! These tests always run `--rsp xol`, whatever `XOL_TEST_RSP` says. Every spawned process is
//! under a kill-on-drop guard with a timeout; nothing sleeps to synchronise.

mod support;

use std::ffi::OsString;
use support::*;

/// `xol serve --rsp xol --stdio -- PROG ARGS`, the real binary.
fn xol_own(prog: &std::path::Path, args: &[&str]) -> RspClient {
    let mut argv: Vec<OsString> =
        vec![xol_real_bin().into(), "serve".into(), "--rsp".into(), "xol".into(), "--stdio".into(), "--".into()];
    argv.push(prog.into());
    argv.extend(args.iter().map(OsString::from));
    RspClient::spawn(&argv)
}

/// The process that traces `pid` (`TracerPid:` of `/proc/PID/status`).
fn tracer_of(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("TracerPid:")).and_then(|v| v.trim().parse().ok())
}

/// The pid gdb printed in `[Inferior 1 (process PID) ...]`.
fn inferior_pid(gdb_out: &str) -> Option<u32> {
    let i = gdb_out.find("[Inferior 1 (process ")? + "[Inferior 1 (process ".len();
    gdb_out[i..].split(')').next()?.parse().ok()
}

/// The `Thread P.T "name"` part of each `info threads` row between `==THREADS==` and
/// `==END==`, sorted.
fn thread_rows(out: &str) -> Vec<String> {
    let start = out.find("==THREADS==").map(|i| i + 11).unwrap_or(0);
    let end = out[start..].find("==END==").map(|e| start + e).unwrap_or(out.len());
    let mut rows: Vec<String> = out[start..end]
        .lines()
        .filter_map(|l| {
            let i = l.find("Thread ")?;
            let rest = &l[i..];
            let close = rest[1..].find('"').and_then(|a| rest[a + 2..].find('"').map(|b| a + 2 + b + 1))?;
            Some(rest[..=close].trim_end().to_string())
        })
        .collect();
    rows.sort();
    rows
}

/// Replace the numbers of `Thread P.T "name"` with `PID.TID`.
fn anonymise(row: &str) -> String {
    format!("Thread PID.TID {}", row.splitn(3, ' ').nth(2).unwrap_or(""))
}

#[test]
fn info_threads_shows_real_pids_and_thread_names() {
    let t = fixture("threads");
    let script = [
        "break at_barrier",
        "continue",
        "echo ==THREADS==\\n",
        "info threads",
        "echo ==END==\\n",
        "delete",
        "continue",
    ];
    let o = gdb_batch(Server::XolOwnRsp, &t, &[], &script);
    assert!(o.has_mark("joined"), "{o}");
    let pid = inferior_pid(&o.stdout).unwrap_or_else(|| panic!("no inferior pid in the output\n{o}"));
    let rows = thread_rows(&o.stdout);
    assert_eq!(rows.len(), 5, "info threads rows {rows:#?}\n{o}");
    for r in &rows {
        assert!(r.starts_with(&format!("Thread {pid}.")), "a thread id without the real pid {pid}: {r}\n{o}");
    }
    assert!(rows.contains(&format!("Thread {pid}.{pid} \"threads\"")), "the main thread {pid}.{pid}: {rows:#?}\n{o}");
    for i in 0..4 {
        let name = format!("\"worker-{i}\"");
        assert_eq!(rows.iter().filter(|r| r.ends_with(&name)).count(), 1, "{name}: {rows:#?}\n{o}");
    }
    let hit = o.stdout.lines().find(|l| l.contains("hit Breakpoint 1, at_barrier")).unwrap_or_default();
    assert!(
        hit.starts_with("Thread ") && hit.contains(" \"worker-") && hit.contains("\" hit Breakpoint 1"),
        "the hit names its thread: {hit:?}\n{o}"
    );
    assert!(!o.stdout.contains("Thread 1."), "no fake pid 1:\n{o}");
    if gdbserver_available() {
        let g = gdb_batch(Server::GdbserverStdio, &t, &[], &script);
        let theirs: Vec<String> = thread_rows(&g.stdout).iter().map(|r| anonymise(r)).collect();
        let ours: Vec<String> = rows.iter().map(|r| anonymise(r)).collect();
        assert_eq!(ours, theirs, "info threads rows differ from gdbserver's\n{o}\n{g}");
    }
}

#[test]
fn multiprocess_thread_ids_carry_the_real_pid_and_exit_names_the_process() {
    let prog = fixture("loop");
    let mut c = xol_own(&prog, &["2"]);
    let sup = c.q_supported();
    assert!(sup.split(';').any(|f| f == "multiprocess+"), "qSupported: {sup}");
    let qc = c.request("qC");
    let id = qc.strip_prefix("QCp").unwrap_or_else(|| panic!("qC: {qc:?}"));
    let (p, t) = id.split_once('.').unwrap_or_else(|| panic!("qC: {qc:?}"));
    let pid = u32::from_str_radix(p, 16).unwrap();
    assert_eq!(p, t, "the main thread's tid is the pid");
    assert_eq!(tracer_of(pid), Some(c.pid()), "process {pid} is traced by xol (pid {})", c.pid());
    assert_eq!(c.request("?"), format!("T05thread:p{pid:x}.{pid:x};"));
    assert_eq!(c.request("qfThreadInfo"), format!("mp{pid:x}.{pid:x}"));
    assert_eq!(c.request("qsThreadInfo"), "l");
    assert_eq!(c.request(&format!("Hgp{pid:x}.{pid:x}")), "OK");
    assert!(c.request("Hgp1.1").starts_with('E'), "a thread of another process");
    assert_eq!(c.request(&format!("qAttached:{pid:x}")), "0", "launched, not attached");
    assert_eq!(c.request("vCont;c"), format!("W00;process:{pid:x}"));
    assert!(c.wait_exit(std::time::Duration::from_secs(20)).is_some(), "plain remote: the server ends");
    if gdbserver_available() {
        let mut g = RspClient::gdbserver(&prog, &["2"]);
        g.q_supported();
        let qc = g.request("qC");
        let gp = qc.trim_start_matches("QCp").split('.').next().unwrap().to_string();
        assert_eq!(g.request("qfThreadInfo"), format!("mp{gp}.{gp}"), "gdbserver's form");
        // gdbserver writes the status with as few digits as it needs (`W0;process:...`).
        let w = g.request("vCont;c");
        let (status, process) = w.strip_prefix('W').and_then(|r| r.split_once(";process:")).unwrap();
        assert_eq!((u8::from_str_radix(status, 16).ok(), process), (Some(0), gp.as_str()), "gdbserver: {w}");
    }
}

#[test]
fn without_multiprocess_thread_ids_are_bare() {
    let mut c = xol_own(&fixture("loop"), &["1", "3"]);
    let sup = c.request("qSupported:swbreak+;xmlRegisters=i386");
    assert!(!sup.contains("multiprocess+"), "not offered by gdb, not used: {sup}");
    let qc = c.request("qC");
    let tid = qc.strip_prefix("QC").unwrap_or_else(|| panic!("qC: {qc:?}"));
    assert!(!tid.starts_with('p') && u32::from_str_radix(tid, 16).is_ok(), "qC: {qc:?}");
    assert_eq!(c.request("?"), format!("T05thread:{tid};"));
    assert_eq!(c.request("vCont;c"), "W03", "exit status 3, no process field");
}

#[test]
fn qxfer_threads_names_the_threads_at_a_breakpoint() {
    let prog = fixture_with("threads", FixtureOpts::NO_PIE);
    let at = symbol_addr(&prog, "at_barrier");
    let mut c = xol_own(&prog, &[]);
    c.q_supported();
    let qc = c.request("qC");
    let pid = u32::from_str_radix(qc.trim_start_matches("QCp").split('.').next().unwrap(), 16).unwrap();
    assert_eq!(c.request(&format!("Z0,{at:x},1")), "OK");
    let stop = c.request("vCont;c");
    assert!(stop.starts_with("T05swbreak:;"), "a software breakpoint stop: {stop:?}");
    // rbp, rsp and rip go ahead, as gdbserver sends them; rip is at the breakpoint.
    assert!(stop.contains(&format!(";10:{};", u64_to_le_hex(at))), "expedited rip {at:#x}: {stop:?}");
    assert!(stop.contains(&format!("thread:p{pid:x}.")), "{stop:?}");
    let x = c.request("qXfer:threads:read::0,fff");
    let xml = x.strip_prefix('l').unwrap_or_else(|| panic!("one chunk: {x:?}"));
    assert!(xml.contains(&format!("<thread id=\"p{pid:x}.{pid:x}\" name=\"threads\"/>")), "{xml}");
    let named = (0..4).filter(|i| xml.contains(&format!("name=\"worker-{i}\""))).count();
    assert!(named >= 1, "the worker threads are named: {xml}");
    let stopped_thread = stop.split("thread:").nth(1).unwrap().trim_end_matches(';');
    assert!(xml.contains(&format!("<thread id=\"{stopped_thread}\" name=\"worker-")), "{xml}");
    assert_eq!(c.request(&format!("z0,{at:x},1")), "OK");
    c.request(&format!("vKill;{pid:x}"));
    assert!(c.wait_exit(std::time::Duration::from_secs(20)).is_some(), "plain remote: vKill ends the server");
    assert!(!pid_alive(pid), "the program was killed");
}

#[test]
fn rsp_option_is_checked_by_both_binaries() {
    let prog = fixture("loop");
    let mut xol = std::process::Command::new(xol_real_bin());
    xol.args(["serve", "--rsp", "bogus", "--stdio", "--"]).arg(&prog);
    let mut gs = std::process::Command::new(xol_gdbserver_real_bin());
    gs.args(["--rsp=bogus", "-"]).arg(&prog);
    for cmd in [xol, gs] {
        let o = run_with_timeout(cmd, std::time::Duration::from_secs(20));
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("unknown remote-protocol server `bogus`: say xol or gdbstub"), "{err}");
    }
}

#[test]
fn registers_without_a_target_description_match_gdbserver() {
    let prog = fixture("loop");
    let script = [
        "break probe_site",
        "continue",
        "p $pc",
        "info registers rip eflags",
        "p $orig_rax",
        "p $fs_base != 0",
        "set $rax = 42",
        "p $rax",
        "p $ymm0",
        "continue",
    ];
    let opts = GdbOpts { pre_target: vec!["set remote target-features-packet off".into()], ..GdbOpts::default() };
    let o = gdb_batch_opts(Server::XolOwnRsp, &prog, &["1"], &script, &opts);
    assert!(!o.all_output().contains("'g' packet reply is too long"), "{o}");
    assert!(o.stdout.contains("= 42\n") && o.stdout.contains("exited normally"), "{o}");
    if gdbserver_available() {
        let g = gdb_batch_opts(Server::GdbserverStdio, &prog, &["1"], &script, &opts);
        let (a, b) = (normalise_gdb_output(&g.stdout), normalise_gdb_output(&o.stdout));
        assert_eq!(a, b, "{}\n{g}\n{o}", line_diff(&a, &b, "gdbserver", "xol"));
    }
    // On the wire: the 560 bytes of gdb's built-in amd64-linux layout without
    // `xmlRegisters=i386`, the whole target description's (with the AVX upper halves) with it.
    for (sup, len) in [("qSupported:multiprocess+", 560), ("qSupported:multiprocess+;xmlRegisters=i386", 816)] {
        let mut c = xol_own(&prog, &[]);
        c.request(sup);
        let g = c.request("g");
        assert_eq!(g.len(), 2 * len, "{sup}: g is {} bytes", g.len() / 2);
        let ymm0h = c.request("p3c");
        assert_eq!(ymm0h.starts_with('E'), len == 560, "{sup}: p3c {ymm0h:?}");
    }
}

#[test]
fn find_and_compare_sections_are_served_as_by_gdbserver() {
    // qSearch:memory and qCRC, which gdbstub 0.7 does not serve (gdb then reads the memory).
    let prog = fixture_with("loop", FixtureOpts::NO_PIE);
    let script = [
        "break probe_site",
        "continue",
        "find /b main, +200, 0xe8",
        "find &g_counter, +0x100000, (char)0x55",
        "compare-sections .text",
        "set var *(char*)main = 0x90",
        "compare-sections .text",
    ];
    let o = gdb_batch(Server::XolOwnRsp, &prog, &["1"], &script);
    assert!(o.stdout.contains("patterns found.") && o.stdout.contains("Pattern not found."), "{o}");
    assert!(o.stdout.contains(": matched.") && o.stdout.contains("MIS-MATCHED!"), "{o}");
    if gdbserver_available() {
        let g = gdb_batch(Server::GdbserverStdio, &prog, &["1"], &script);
        let (a, b) = (normalise_gdb_output(&g.stdout), normalise_gdb_output(&o.stdout));
        assert_eq!(a, b, "{}\n{g}\n{o}", line_diff(&a, &b, "gdbserver", "xol"));
    }
}

/// Run `script` on `prog args` through `--rsp xol` and, where installed, gdbserver; the
/// normalised gdb outputs must be equal. Returns xol's session.
fn same_as_gdbserver(prog: &std::path::Path, args: &[&str], script: &[&str]) -> GdbOutput {
    let o = gdb_batch(Server::XolOwnRsp, prog, args, script);
    if gdbserver_available() {
        let g = gdb_batch(Server::GdbserverStdio, prog, args, script);
        let (a, b) = (normalise_gdb_output(&g.stdout), normalise_gdb_output(&o.stdout));
        assert_eq!(a, b, "{}\n{g}\n{o}", line_diff(&a, &b, "gdbserver", "xol"));
    }
    o
}

#[test]
fn target_side_breakpoint_conditions_stop_only_when_true() {
    // A `Z0` with an agent-expression condition (`;X...`): the core evaluates it at each hit.
    // `x == 3` at probe_site's entry: reg 5 (rdi), const8 3, equal, end.
    let prog = fixture("loop");
    let at = symbol_addr(&prog, "probe_site");
    let mut c = xol_own(&prog, &["6"]);
    c.q_supported();
    assert_eq!(c.request(&format!("Z0,{at:x},1;X7,26000522031327")), "OK");
    let stop = c.request("vCont;c");
    assert!(stop.starts_with("T05"), "{stop:?}");
    let g = c.request("g");
    assert_eq!(g_reg64(&g, 5) & 0xffff_ffff, 3, "stopped only where x == 3");
    assert_eq!(g_reg64(&g, AMD64_RIP), at);
    // The same Z0 again replaces the conditions and takes no second hold: one z0 removes it.
    assert_eq!(c.request(&format!("Z0,{at:x},1;X7,26000522051327")), "OK");
    let stop = c.request("vCont;c");
    assert!(stop.starts_with("T05"), "{stop:?}");
    assert_eq!(g_reg64(&c.request("g"), 5) & 0xffff_ffff, 5, "the new condition x == 5");
    assert_eq!(c.request(&format!("z0,{at:x},1")), "OK");
    let end = c.request("vCont;c");
    assert!(end.starts_with("W00"), "no breakpoint left: {end:?}");
}

#[test]
fn siginfo_of_the_last_signal_reads_as_with_gdbserver() {
    let script = ["continue", "p $_siginfo.si_signo", "p $_siginfo.si_code", "continue"];
    let o = same_as_gdbserver(&fixture("sighandle"), &[], &script);
    assert!(o.stdout.contains("$1 = 10"), "SIGUSR1's siginfo: {o}");
}

#[test]
fn thread_local_variables_of_each_thread() {
    // qGetTLSAddr: each thread's copy, at the address the thread itself took.
    let script = [
        "break tls_here",
        "continue",
        "p tls_var",
        "p &tls_var == p",
        "continue",
        "p tls_var",
        "p &tls_var == p",
        "continue",
    ];
    let o = same_as_gdbserver(&fixture("tls"), &[], &script);
    assert_eq!(o.stdout.matches("= 1\n").count() + o.stdout.matches("= 2\n").count(), 4, "{o}");
    assert!(!o.stdout.contains("Cannot find thread-local"), "{o}");
}

#[test]
fn fork_events_catch_fork_and_detach_the_child_as_gdbserver() {
    // fork-events+: gdb sees the fork (`catch fork`), takes its breakpoints out of the child
    // and detaches it (`D;CHILD`); the child runs free and never hits child_work's breakpoint.
    let script = ["break parent_work", "break child_work", "catch fork", "continue", "continue", "bt 1", "continue"];
    let o = same_as_gdbserver(&fixture("forker"), &[], &script);
    assert!(o.stdout.contains("Catchpoint 3 (forked process "), "{o}");
    assert!(o.stdout.contains("[Detaching after fork from child process "), "{o}");
    assert!(o.stdout.contains("Breakpoint 1, parent_work ()") && !o.stdout.contains("child_work ()"), "{o}");
    assert!(o.has_mark("child") && o.has_mark("done"), "{o}");
}

#[test]
fn vfork_and_exec_events_as_gdbserver() {
    let prog = fixture("pf_libexec");
    fixture("pf_leaf");
    // vfork: the parent's breakpoints come back after the child's exec (vforkdone).
    let vfork = ["break pf_end", "catch vfork", "continue", "continue", "bt 1", "continue"];
    let o = same_as_gdbserver(&prog, &["vfork", "2", "3", "2"], &vfork);
    assert!(o.stdout.contains("(vforked process ") && o.stdout.contains("Breakpoint 1, pf_end ()"), "{o}");
    // exec: gdb follows the new program (`catch exec`, then a breakpoint in it).
    let exec = ["catch exec", "continue", "break main", "continue", "bt 1", "continue"];
    let o = same_as_gdbserver(&prog, &["exec", "2", "3"], &exec);
    assert!(o.stdout.contains("process ") && o.stdout.contains("is executing new program: "), "{o}");
    assert!(o.stdout.contains("pf_leaf.c"), "a breakpoint in the new program: {o}");
}

#[test]
fn follow_fork_mode_child_goes_on_with_the_child() {
    // gdb detaches the parent (`D;PARENT`) and debugs the child it was told of.
    let script =
        ["set follow-fork-mode child", "break child_work", "break parent_work", "continue", "bt 1", "continue"];
    let o = same_as_gdbserver(&fixture("forker"), &[], &script);
    assert!(o.stdout.contains("hit Breakpoint 1, child_work ()"), "{o}");
    assert!(o.stdout.contains("exited with code 07]") && !o.stdout.contains("parent_work ()"), "{o}");
}

#[test]
fn fork_events_can_be_left_to_xol() {
    // `monitor set fork-events off`: xol detaches the child itself, gdb never sees the fork.
    let script = ["monitor set fork-events off", "catch fork", "break parent_work", "continue", "continue"];
    let o = gdb_batch(Server::XolOwnRsp, &fixture("forker"), &[], &script);
    assert!(o.all_output().contains("fork events to gdb: off (xol handles forks itself)"), "{o}");
    assert!(!o.stdout.contains("Catchpoint 1 (forked"), "{o}");
    assert!(o.stdout.contains("Breakpoint 2, parent_work ()") && o.has_mark("child"), "{o}");
}
