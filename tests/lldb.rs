//! lldb as a second real client of xol's own gdb server (`xol serve`, `--rsp xol`): lldb 14
//! connects with `gdb-remote HOST:PORT` and debugs as through lldb-server — a breakpoint by
//! function name stops with its source line, `bt` unwinds into libc, `register read`,
//! `thread list`, and the program exits with its own status. Without lldb the test fails on
//! CI (which installs it through scripts/setup.sh) and says it skipped elsewhere.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

const T: Duration = Duration::from_secs(90);

fn lldb() -> Option<std::path::PathBuf> {
    which("lldb")
}

#[test]
fn lldb_breaks_unwinds_reads_registers_and_sees_the_exit() {
    let Some(lldb) = lldb() else {
        assert!(std::env::var_os("CI").is_none(), "lldb is not installed (scripts/setup.sh installs it)");
        eprintln!("SKIPPED: lldb is not installed");
        return;
    };
    let prog = fixture_with("loop", FixtureOpts::PIE);
    let mut cmd = Command::new(xol_bin());
    cmd.args(["serve", "127.0.0.1:0", "--once", "--"])
        .arg(&prog)
        .args(["3", "5"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut server = ChildGuard::spawn(&mut cmd);
    let mut err = LineReader::new(server.stderr.take().expect("stderr"));
    let _out = Collector::new(server.stdout.take().expect("stdout"));
    let port = match err.wait_for_match(Duration::from_secs(20), |l| parse_listening_port(l).is_some()) {
        Ok(l) => parse_listening_port(&l).expect("port"),
        Err(e) => panic!("xol serve printed no port: {e}"),
    };
    let mut c = Command::new(lldb);
    c.arg("-b")
        .args(["-o", &format!("gdb-remote 127.0.0.1:{port}")])
        .args(["-o", "breakpoint set -n probe_site", "-o", "continue", "-o", "bt"])
        .args(["-o", "register read rip rdi", "-o", "thread list"])
        .args(["-o", "breakpoint delete 1", "-o", "continue"])
        .arg(&prog);
    let out = run_with_timeout(c, T);
    let text = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(text.contains("stop reason = breakpoint 1.1"), "lldb stops at the breakpoint:\n{text}");
    assert!(text.contains("probe_site(x=0) at loop.c:"), "with its source line:\n{text}");
    assert!(text.contains("main(argc=3"), "bt reaches main:\n{text}");
    assert!(text.contains("libc.so.6`"), "and libc (the libraries are known):\n{text}");
    assert!(text.contains("rdi = 0x0000000000000000"), "register read:\n{text}");
    assert!(text.contains("* thread #1: tid = "), "thread list:\n{text}");
    assert!(text.contains("exited with status = 5"), "the program's own exit status:\n{text}");
    assert!(server.wait_timeout(T).is_some(), "xol serve --once ends with the session");
}
