//! `xol debug` against real gdb: the same command script run through `gdb -nx -batch` (native)
//! and `xol debug -batch` on fixtures without debug information (built, then `strip -g`), the
//! program's own output sent to `/dev/null` with `tty` in both. Standard output and standard
//! error are compared line by line after normalising what differs by nature (pids; the lines
//! gdb prints about libthread_db). Also: the exit status of `-batch` (gdb's: the last
//! command's), Ctrl-C-free interruption paths are in the core tests.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use support::*;

const TIMEOUT: Duration = Duration::from_secs(120);

/// A fixture without DWARF (its symbol table kept): gdb then shows what xol shows today.
fn no_debug(name: &str) -> PathBuf {
    let built = fixture_with(name, FixtureOpts::PIE);
    let out = built.with_file_name(format!("{name}.nodebug"));
    let st = Command::new("strip").arg("-g").arg(&built).arg("-o").arg(&out).status().expect("strip");
    assert!(st.success(), "strip -g {}", built.display());
    out
}

fn normalise(text: &str) -> String {
    let pid = regex_lite_replace(text);
    pid.lines()
        .filter(|l| !l.starts_with("[Thread debugging using libthread_db") && !l.starts_with("Using host libthread_db"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// `process 1234` -> `process N` (no regex crate: a small scan).
fn regex_lite_replace(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(i) = rest.find("process ") {
        out.push_str(&rest[..i + 8]);
        rest = &rest[i + 8..];
        let digits = rest.chars().take_while(char::is_ascii_digit).count();
        if digits > 0 {
            out.push('N');
            rest = &rest[digits..];
        }
    }
    out.push_str(rest);
    out
}

struct Run {
    stdout: String,
    stderr: String,
    status: Option<i32>,
}

fn run(debugger: &str, prog: &Path, script: &[&str]) -> Run {
    let mut cmd = if debugger == "gdb" {
        let mut c = Command::new(gdb_bin());
        c.arg("-nx").arg("-batch");
        c
    } else {
        let mut c = Command::new(xol_bin());
        c.arg("debug").arg("-batch");
        c
    };
    cmd.arg("-ex").arg("tty /dev/null");
    for line in script {
        cmd.arg("-ex").arg(line);
    }
    cmd.arg(prog);
    let out = run_with_timeout(cmd, TIMEOUT);
    Run {
        stdout: normalise(&String::from_utf8_lossy(&out.stdout)),
        stderr: normalise(&strip_tool_warnings(&String::from_utf8_lossy(&out.stderr))),
        status: out.status.code(),
    }
}

fn compare(name: &str, script: &[&str]) {
    let prog = no_debug(name);
    let gdb = run("gdb", &prog, script);
    let xol = run("xol", &prog, script);
    assert!(
        gdb.stdout == xol.stdout,
        "stdout differs for {name} {script:?}:\n{}",
        line_diff(&gdb.stdout, &xol.stdout, "gdb", "xol")
    );
    assert!(
        gdb.stderr == xol.stderr,
        "stderr differs for {name} {script:?}:\n{}",
        line_diff(&gdb.stderr, &xol.stderr, "gdb", "xol")
    );
    assert_eq!(gdb.status, xol.status, "exit status of -batch for {name} {script:?}");
}

#[test]
fn breakpoints_steps_registers_and_memory_read_as_gdbs() {
    compare(
        "loop",
        &[
            "break probe_site",
            "info breakpoints",
            "run 3 5",
            "info registers rip rdi eflags cs",
            "p $eflags",
            "stepi",
            "x/4xw &g_counter",
            "x/2xg &g_counter",
            "x/8xb &g_counter",
            "p $rdi",
            "p $rdi + 7 * 2",
            "p/x 255",
            "p $pc",
            "p &g_counter",
            "p probe_site",
            "info breakpoints",
            "tbreak probe_other",
            "continue",
            "delete 1",
            "continue",
        ],
    );
}

#[test]
fn errors_read_as_gdbs() {
    compare(
        "loop",
        &[
            "foo",
            "continue",
            "info registers",
            "break nosuch",
            "break probe_site",
            "run 1",
            "p nosuch",
            "p g_counter",
            "p 1 +",
            "p 1 / 0",
            "p $nosuch",
            "x/4xw 0",
            "info frobs",
            "kill",
            "info threads",
        ],
    );
}

#[test]
fn signals_and_their_handling_read_as_gdbs() {
    compare("sigdie", &["run", "info registers rip", "continue"]);
    compare("sighandle", &["handle SIGUSR1 nostop noprint", "run"]);
}

#[test]
fn nexti_steps_over_calls_as_gdb() {
    compare("loop", &["break main", "run 2", "nexti 12", "stepi 3", "nexti", "info registers rip"]);
}

#[test]
fn batch_exit_status_is_the_last_commands() {
    compare("loop", &["break probe_site", "run 1", "p nosuch"]);
    compare("loop", &["p nosuch", "p 1"]);
}
