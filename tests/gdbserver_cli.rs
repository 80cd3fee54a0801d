//! `xol-gdbserver` behind GNU gdbserver's command line: options that change what the server
//! does (`--disable-packet=`, `--remote-debug`, `--debug`, `--[no-]disable-randomization`), the
//! program's `argv[0]` kept as given, and serial lines refused with a clear message. Where
//! gdbserver is installed, the same command line is run against it and the answers compared.

mod support;

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use support::*;

const T: Duration = Duration::from_secs(20);

/// `SERVER OPTS - PROG` started from `dir` (through `sh -c 'cd DIR && exec ...'`), after the
/// handshake.
fn start_in(gs: bool, dir: &Path, opts: &[&str], prog: &str) -> RspClient {
    let server: OsString =
        if gs { gdbserver_path().unwrap().into_os_string() } else { xol_gdbserver_bin().into_os_string() };
    let mut words: Vec<OsString> = vec![server];
    words.extend(opts.iter().map(OsString::from));
    words.push("-".into());
    words.push(prog.into());
    let script = format!("cd {} && exec {}", shell_quote(dir.as_os_str()), shell_join(&words));
    let mut c = RspClient::spawn(&["sh".into(), "-c".into(), script.into()]);
    c.q_supported();
    let q = c.request("?");
    assert!(q.starts_with('T') || q.starts_with('S'), "{}: initial `?`: {q:?}\n{}", who(gs), c.server_stderr());
    c
}

fn who(gs: bool) -> &'static str {
    if gs {
        "gdbserver"
    } else {
        "xol-gdbserver"
    }
}

fn servers() -> Vec<bool> {
    if gdbserver_available() {
        vec![false, true]
    } else {
        vec![false]
    }
}

/// The traced program under the server (the deepest live descendant running `name`).
fn program_pid(c: &RspClient, name: &str) -> u32 {
    let mut found = 0;
    assert!(
        wait_until(T, || {
            found = descendants(c.pid())
                .into_iter()
                .filter(|p| pid_alive(*p))
                .find(|p| std::fs::read_link(format!("/proc/{p}/exe")).is_ok_and(|e| e.ends_with(name)))
                .unwrap_or(0);
            found != 0
        }),
        "no {name} under the server"
    );
    found
}

fn argv_of(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    raw.split(|b| *b == 0).filter(|a| !a.is_empty()).map(|a| String::from_utf8_lossy(a).into_owned()).collect()
}

#[test]
fn argv0_is_kept_as_given() {
    let prog = fixture("loop");
    let dir = prog.parent().unwrap();
    for gs in servers() {
        let c = start_in(gs, dir, &[], "./loop");
        let argv = argv_of(program_pid(&c, "loop"));
        assert_eq!(argv, ["./loop"], "{}: the program's argv", who(gs));
    }
}

#[test]
fn disable_packet_vcont_qc_qfthreadinfo_answer_unsupported() {
    let prog = fixture("loop");
    let dir = prog.parent().unwrap();
    for gs in servers() {
        let mut c = start_in(gs, dir, &["--disable-packet=vCont,qC,qfThreadInfo"], "./loop");
        for p in ["vCont?", "qC", "qfThreadInfo"] {
            assert_eq!(c.request(p), "", "{}: {p} should be unsupported", who(gs));
        }
        // gdb then resumes with the legacy packets.
        let r = c.request("c");
        assert!(r.starts_with('W'), "{}: c: {r:?}", who(gs));
    }
    let mut c = start_in(false, dir, &["--disable-packet=threads"], "./loop");
    assert_eq!(c.request("vCont?"), "");
    assert_eq!(c.request("qC"), "");
}

#[test]
fn disable_packet_t_and_tthread_change_the_stop_replies() {
    let prog = fixture("loop");
    let dir = prog.parent().unwrap();
    let site = symbol_addr(&prog, "probe_site");
    for gs in servers() {
        let mut c = start_in(gs, dir, &["--disable-packet=T"], "./loop");
        assert_eq!(c.request(&format!("Z0,{site:x},1")), "OK");
        let r = c.request("vCont;c");
        assert_eq!(r, "S05", "{}: stop reply with T disabled", who(gs));
        let mut c = start_in(gs, dir, &["--disable-packet=Tthread"], "./loop");
        assert_eq!(c.request(&format!("Z0,{site:x},1")), "OK");
        let r = c.request("vCont;c");
        assert!(r.starts_with("T05") && !r.contains("thread:"), "{}: stop reply with Tthread disabled: {r:?}", who(gs));
    }
}

#[test]
fn unknown_disable_packet_name_is_an_error() {
    let mut cmd = Command::new(xol_gdbserver_bin());
    cmd.args(["--disable-packet=bogus", "-"]).arg(fixture("loop"));
    let o = run_with_timeout(cmd, T);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("Don't know how to disable \"bogus\""));
}

#[test]
fn remote_debug_logs_packets_and_debug_logs_xol() {
    let prog = fixture("loop");
    let dir = prog.parent().unwrap();
    for gs in servers() {
        let mut c = start_in(gs, dir, &["--remote-debug"], "./loop");
        c.request("qAttached");
        // stderr is collected by a thread: wait for the lines to arrive.
        wait_until(T, || {
            let e = c.server_stderr();
            e.contains("qAttached") && e.contains("putpkt")
        });
        let err = c.server_stderr();
        assert!(err.contains("getpkt") && err.contains("qAttached"), "{}: no packet log:\n{err}", who(gs));
        assert!(err.contains("putpkt"), "{}: no reply log:\n{err}", who(gs));
    }
    let mut c = start_in(false, dir, &["--debug"], "./loop");
    c.request("?");
    wait_until(T, || c.server_stderr().contains("DEBUG"));
    let err = c.server_stderr();
    assert!(err.contains("DEBUG"), "--debug printed no debug output:\n{err}");
    let mut c = start_in(false, dir, &[], "./loop");
    c.request("?");
    assert!(!c.server_stderr().contains("DEBUG"), "debug output without --debug");
}

/// ADDR_NO_RANDOMIZE in the program's personality.
fn aslr_disabled(pid: u32) -> bool {
    let s = std::fs::read_to_string(format!("/proc/{pid}/personality")).unwrap();
    u64::from_str_radix(s.trim(), 16).unwrap() & 0x0040000 != 0
}

#[test]
fn randomization_options_as_gdbserver() {
    let prog = fixture("loop");
    let dir = prog.parent().unwrap();
    for gs in servers() {
        for (opts, disabled) in
            [(&[][..], true), (&["--disable-randomization"][..], true), (&["--no-disable-randomization"][..], false)]
        {
            let c = start_in(gs, dir, opts, "./loop");
            assert_eq!(aslr_disabled(program_pid(&c, "loop")), disabled, "{}: {opts:?}", who(gs));
        }
    }
}

#[test]
fn serial_lines_are_refused_clearly() {
    let mut cmd = Command::new(xol_gdbserver_bin());
    cmd.arg("/dev/ttyS0").arg(fixture("loop"));
    let o = run_with_timeout(cmd, T);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("serial lines are not supported"), "{err}");
    let mut cmd = Command::new(xol_gdbserver_bin());
    cmd.arg("--help");
    let o = run_with_timeout(cmd, T);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("tty device"), "--help still offers a tty");
}

#[test]
fn startup_with_shell_says_it_is_ignored() {
    let prog = fixture("loop");
    let c = start_in(false, prog.parent().unwrap(), &["--startup-with-shell"], "./loop");
    wait_until(T, || c.server_stderr().contains("without a shell"));
    assert!(c.server_stderr().contains("without a shell"), "{}", c.server_stderr());
}
