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

/// The master side of a pseudo-terminal pair created for the test, and the slave's path.
struct Pty {
    master: std::fs::File,
    slave: String,
    buf: Vec<u8>,
}

impl Pty {
    fn new() -> Pty {
        use std::os::fd::FromRawFd;
        unsafe {
            let fd = libc::posix_openpt(libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC);
            assert!(fd >= 0, "posix_openpt: {}", std::io::Error::last_os_error());
            assert_eq!(libc::grantpt(fd), 0);
            assert_eq!(libc::unlockpt(fd), 0);
            let mut name = [0 as libc::c_char; 128];
            assert_eq!(libc::ptsname_r(fd, name.as_mut_ptr(), name.len()), 0);
            let slave = std::ffi::CStr::from_ptr(name.as_ptr()).to_string_lossy().into_owned();
            Pty { master: std::fs::File::from_raw_fd(fd), slave, buf: Vec::new() }
        }
    }

    /// Send a request, return the reply (acking it), waiting at most `T`.
    fn request(&mut self, body: &str) -> String {
        use std::io::{Read, Write};
        use std::os::fd::AsRawFd;
        self.master.write_all(&frame(body.as_bytes())).unwrap();
        let deadline = std::time::Instant::now() + T;
        loop {
            if let Some(st) = self.buf.iter().position(|b| *b == b'$') {
                if let Some(h) = self.buf[st..].iter().position(|b| *b == b'#').map(|h| h + st) {
                    if self.buf.len() >= h + 3 {
                        let r = String::from_utf8_lossy(&decode_body(&self.buf[st + 1..h]).unwrap()).into_owned();
                        self.buf.drain(..h + 3);
                        self.master.write_all(b"+").unwrap();
                        return r;
                    }
                }
            }
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            assert!(!left.is_zero(), "no reply to {body:?} on the serial line");
            let mut p = libc::pollfd { fd: self.master.as_raw_fd(), events: libc::POLLIN, revents: 0 };
            if unsafe { libc::poll(&mut p, 1, left.as_millis() as i32) } == 1 {
                let mut chunk = [0u8; 4096];
                let n = self.master.read(&mut chunk).expect("read the pty");
                self.buf.extend_from_slice(&chunk[..n]);
            }
        }
    }
}

#[test]
fn serial_line_on_a_pty_as_gdbserver() {
    let prog = fixture("loop");
    let site = symbol_addr(&prog, "probe_site");
    for gs in servers() {
        let mut pty = Pty::new();
        let server = if gs { gdbserver_path().unwrap() } else { xol_gdbserver_bin() };
        let mut cmd = Command::new(server);
        cmd.arg(&pty.slave).arg(&prog).stdin(std::process::Stdio::null()).stdout(std::process::Stdio::null());
        cmd.stderr(std::process::Stdio::piped());
        let mut g = ChildGuard::spawn(&mut cmd);
        let mut err = LineReader::new(g.stderr.take().unwrap());
        err.wait_for("Remote debugging using", T).unwrap_or_else(|e| panic!("{}: {e}", who(gs)));
        pty.request("qSupported:multiprocess+;swbreak+;hwbreak+;vContSupported+");
        let q = pty.request("?");
        assert!(q.starts_with('T'), "{}: `?` over the serial line: {q:?}", who(gs));
        assert_eq!(pty.request(&format!("Z0,{site:x},1")), "OK", "{}", who(gs));
        let r = pty.request("vCont;c");
        assert!(r.starts_with("T05"), "{}: the breakpoint over the serial line: {r:?}", who(gs));
        assert_eq!(pty.request(&format!("z0,{site:x},1")), "OK", "{}", who(gs));
        let r = pty.request("vCont;c");
        assert!(r.starts_with('W'), "{}: the exit over the serial line: {r:?}", who(gs));
        if !gs {
            // (gdbserver keeps the line open afterwards.)
            assert!(g.wait_timeout(T).is_some(), "xol-gdbserver did not exit after the program");
        }
    }
}

#[test]
fn a_serial_line_that_cannot_be_opened_is_reported() {
    let mut cmd = Command::new(xol_gdbserver_bin());
    cmd.arg("/nonexistent/ttyS0").arg(fixture("loop"));
    let o = run_with_timeout(cmd, T);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("Could not open remote device /nonexistent/ttyS0"), "{err}");
    assert!(!err.contains("created; pid"), "the program was launched:\n{err}");
}

#[test]
fn startup_with_shell_says_it_is_ignored() {
    let prog = fixture("loop");
    let c = start_in(false, prog.parent().unwrap(), &["--startup-with-shell"], "./loop");
    wait_until(T, || c.server_stderr().contains("without a shell"));
    assert!(c.server_stderr().contains("without a shell"), "{}", c.server_stderr());
}
