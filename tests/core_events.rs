//! The event machine's contract with a front-end, through real gdb and at the packet level:
//!
//! - only threads the front-end resumed report stops: `vCont;s:T` (step one thread, the others
//!   stay stopped) is answered with a stop of `T`, never of a thread that was left stopped, and
//!   a pending event of such a thread waits until it is resumed (gdb asserts on this:
//!   `finish_step_over: Assertion 'ecs->event_thread->control.trap_expected' failed`);
//! - after a detach, no signal xol caused is left for the program (the trap of a probe hit that
//!   was pending when the world stopped, the SIGINT of an interrupt): it runs on correctly;
//! - a program that dies or execs from a non-main thread while threads hit a probe is an event
//!   (exit or exec reply), never a failure of xol.

mod support;

use std::time::Duration;
use support::*;

/// Bound for one gdb session or one wait.
const T: Duration = Duration::from_secs(60);

/// gdb's `next`, repeated in a program whose threads all run into the same breakpoint: every
/// `next` ends on a line or a breakpoint hit, gdb never aborts, no thread gets a stray SIGTRAP,
/// and the program finishes normally once the breakpoint is deleted.
fn threaded_next(server: Server, step_mode: Option<&str>) -> GdbOutput {
    threaded_next_with(server, step_mode, &[])
}

fn threaded_next_with(server: Server, step_mode: Option<&str>, pre_target: &[&str]) -> GdbOutput {
    let prog = fixture("stepthreads");
    let mut script: Vec<String> = Vec::new();
    if let Some(m) = step_mode {
        script.push(format!("monitor set step-mode {m}"));
    }
    script.extend(["break work", "continue"].map(String::from));
    script.extend(std::iter::repeat_n("next".to_string(), 8));
    script.extend(["delete", "continue"].map(String::from));
    let script: Vec<&str> = script.iter().map(String::as_str).collect();
    let opts =
        GdbOpts { timeout: T, pre_target: pre_target.iter().map(|s| s.to_string()).collect(), ..GdbOpts::default() };
    let out = gdb_batch_opts(server, &prog, &["3", "5"], &script, &opts);
    let all = out.all_output();
    assert!(!all.contains("internal-error"), "gdb aborted against {server:?}\n{out}");
    assert!(!all.contains("SIGTRAP"), "a thread got a SIGTRAP the program never raised ({server:?})\n{out}");
    assert!(all.contains("exited normally"), "the program must finish normally ({server:?})\n{out}");
    assert!(out.has_mark("done"), "{out}");
    out
}

#[test]
fn next_in_threaded_program_reports_only_resumed_threads() {
    if gdbserver_available() {
        // The reference: the same script against GNU gdbserver holds the same properties.
        threaded_next(Server::GdbserverStdio, None);
    } else {
        eprintln!("SKIP reference half: gdbserver is not installed");
    }
    // It failed 6 runs of 6 before the fix: repeat to cover several interleavings.
    for _ in 0..3 {
        threaded_next(Server::XolStdio, None);
    }
}

#[test]
fn next_in_threaded_program_in_line_step_mode() {
    for _ in 0..2 {
        threaded_next(Server::XolStdio, Some("in-line"));
    }
}

/// Without `vCont` gdb resumes with `Hc` + `s`/`c`: the same contract holds.
#[test]
fn next_in_threaded_program_without_vcont() {
    for _ in 0..2 {
        threaded_next_with(Server::XolStdio, None, &["set remote verbose-resume-packet off"]);
    }
}

/// At the packet level: the reply to `vCont;s:T` names `T`.
#[test]
fn step_of_one_thread_is_answered_by_that_thread() {
    let prog = fixture("stepthreads");
    let mut c = RspClient::xol(&prog, &["3", "50"]);
    c.set_timeout(T);
    assert!(c.request("?").starts_with('T'));
    let work = symbol_addr(&prog, "work");
    assert_eq!(c.request(&format!("Z0,{work:x},1")), "OK");
    for round in 0..12 {
        let stop = c.request("vCont;c");
        let Some(reply) = StopReply::parse(&stop) else { panic!("round {round}: not a stop reply: {stop:?}") };
        if stop.starts_with('W') || stop.starts_with('X') {
            break;
        }
        let thread = reply.get("thread").unwrap_or_else(|| panic!("no thread in {stop:?}")).to_string();
        // Step the reporting thread alone, several times (the first steps over the breakpoint).
        for _ in 0..3 {
            let r = c.request(&format!("vCont;s:{thread}"));
            let got = StopReply::parse(&r).and_then(|s| s.get("thread").map(str::to_string));
            assert_eq!(got.as_deref(), Some(thread.as_str()), "round {round}: vCont;s:{thread} answered {r:?}");
        }
    }
    let _ = c.request(&format!("z0,{work:x},1"));
    let _ = c.send("k");
    c.wait_exit(T);
}

/// `monitor count` on a function eight threads call in a loop, rounds of `vCont;c` + Ctrl-C,
/// then `D`: the program must run on to the end with the right result (it used to die of
/// SIGTRAP at probe + 1, or of the interrupt's SIGINT, after the detach).
fn detach_while_counting(rounds: usize) {
    let prog = fixture("countthreads");
    let mut c = RspClient::xol(&prog, &["3000000", "8", "0"]);
    c.set_timeout(T);
    assert!(c.request("?").starts_with('T'));
    c.send(&format!("qRcmd,{}", hex_str("count counted"))).unwrap();
    loop {
        let r = c.recv().unwrap();
        if r == "OK" {
            break;
        }
        assert!(r.starts_with('O') || r.is_empty(), "monitor count: {r:?}\n{}", c.server_stderr());
        assert!(!r.is_empty(), "monitor count refused\n{}", c.server_stderr());
    }
    // Into the threads' loop first: stop at a call of `counted` (gdb's breakpoint on top of the
    // probe), then leave only the probe there.
    let counted = symbol_addr(&prog, "counted");
    assert_eq!(c.request(&format!("Z0,{counted:x},1")), "OK");
    let stop = c.request("vCont;c");
    assert!(stop.starts_with('T'), "{stop:?}");
    assert_eq!(c.request(&format!("z0,{counted:x},1")), "OK");
    for round in 0..rounds {
        c.send("vCont;c").unwrap();
        c.interrupt();
        let stop = match c.recv() {
            Ok(s) => s,
            Err(e) => {
                let err = c.server_stderr();
                let tail = &err[err.len().saturating_sub(6000)..];
                panic!("round {round}: no stop reply after Ctrl-C: {e}\n{tail}")
            }
        };
        assert!(stop.starts_with('T') || stop.starts_with('S'), "round {round}: {stop:?}");
    }
    assert_eq!(c.request("D"), "OK");
    let st = c.wait_exit(T).expect("xol exits after D");
    assert!(st.success(), "xol: {}", describe_status(&st));
    // The program keeps the server's stderr open until it ends.
    let ok = wait_until(T, || {
        let e = c.server_stderr();
        e.contains("MARK:done") || e.contains("MARK:bad-sum")
    });
    let err = c.server_stderr();
    assert!(ok && err.contains("MARK:done"), "the detached program must finish correctly\n{err}");
}

#[test]
fn detach_while_probes_are_hit_leaves_no_signal_behind() {
    // Without the fix, 8 runs of 30 of this sequence died after the detach.
    for _ in 0..10 {
        detach_while_counting(20);
    }
}

/// `xol count counted -- vanish MODE`: four threads hit the probe while a fifth ends the
/// process (exit_group, SIGKILL, or exec) from a non-main thread.
fn count_vanish(mode: &str) -> (std::process::Output, String) {
    let prog = fixture("vanish");
    let mut cmd = std::process::Command::new(xol_bin());
    cmd.arg("count").arg("--trap").arg("counted").arg("--").arg(&prog).arg(mode);
    let out = run_with_timeout(cmd, T);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out, text)
}

/// The hits `xol count` printed for `counted`.
fn hits_of(text: &str) -> Option<u64> {
    text.lines().find_map(|l| l.strip_prefix("counted: ")?.split_whitespace().next()?.parse().ok())
}

#[test]
fn program_ending_from_a_thread_while_probes_are_hit_is_an_event_for_xol_count() {
    // Native exit statuses: exit(3) -> 3, SIGKILL -> 128 + 9 as a shell reports it, exec -> 0.
    for (mode, want) in [("exit", 3), ("kill", 137), ("exec", 0)] {
        // It failed 3 runs of 6 (exec) and 1 of 5 (SIGKILL) before the fix.
        for run in 0..4 {
            let (out, text) = count_vanish(mode);
            assert!(!text.contains("No such process"), "{mode} run {run}: a vanished thread is not an error\n{text}");
            assert_eq!(out.status.code(), Some(want), "{mode} run {run}: xol count exits as the program did\n{text}");
            let hits = hits_of(&text).unwrap_or_else(|| panic!("{mode} run {run}: no count printed\n{text}"));
            // The fifth thread acts after 20000 calls returned, each through the probe.
            assert!(hits >= 20_000, "{mode} run {run}: {hits} hits\n{text}");
            if mode == "exec" {
                assert!(text.contains("MARK:exec'd"), "{text}");
            }
        }
    }
}

#[test]
fn program_ending_from_a_thread_while_probes_are_hit_gives_gdb_the_exit() {
    let prog = fixture("vanish");
    for (mode, want) in
        [("exit", "exited with code 03"), ("kill", "terminated with signal SIGKILL"), ("exec", "exited normally")]
    {
        for run in 0..3 {
            let out = gdb_batch(Server::XolStdio, &prog, &[mode], &["monitor count counted", "continue"]);
            let all = out.all_output();
            assert!(all.contains(want), "{mode} run {run}: gdb must see the end of the program ({want})\n{out}");
            assert!(!all.contains("Could not read registers") && !all.contains("E01"), "{mode} run {run}\n{out}");
        }
    }
}
