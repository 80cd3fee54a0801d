//! Driving a real gdb (`gdb -nx -batch`) against xol or GNU gdbserver.
//!
//! [`gdb_batch`] runs one scripted gdb session against a chosen [`Server`];
//! [`gdb_script_compare`] runs the same script against xol and gdbserver and
//! [`normalise_gdb_output`] removes what legitimately differs between them.
//!
//! Overrides: `XOL_TEST_GDB` (gdb binary), `XOL_TEST_GDBSERVER` (gdbserver).
//!
//! Where the inferior's output ends up: with the stdio servers the server's
//! stderr is gdb's stderr, and the servers send the inferior's stdout there,
//! so the program's lines show up in [`GdbOutput::stderr`]; with
//! [`Server::XolTcp`] they are in [`GdbOutput::server_output`]. A server's own
//! messages share that stream and can land in the middle of a program's line
//! (GNU gdbserver 13 prints `Warning: ptrace(regsets_store_inferior_registers):
//! Bad address` on every register store on Intel AMX hosts). So the program's
//! results (`MARK:` lines) are read from the program's own channel: every
//! session gets a fresh file named in the environment variable [`MARKS_ENV`],
//! and the fixtures (`fixtures/mark.h`) append every `MARK:` line to it.
//! [`GdbOutput::marks`] / [`GdbOutput::has_mark`] read that file; only for a
//! program that wrote none do they parse the streams, after
//! [`strip_tool_warnings`] removed the reference tools' own warnings.
//! [`normalise_gdb_output`] drops those warnings too, so they never break a
//! comparison.
//!
//! A missing GNU gdbserver: [`gdbserver_path`] / [`gdbserver_available`] print
//! a `SKIP` line (past the test harness's output capture) naming the test whose
//! reference part does not run, or fail the test when
//! [`REQUIRE_GDBSERVER_ENV`] is set (`scripts/test.sh` sets it: it installs
//! gdbserver first, so nothing may skip there).

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use super::proc::{
    describe_status, shell_join, try_run_with_timeout, which, xol_bin, xol_gdbserver_bin, xol_real_bin, ChildGuard,
    Collector, LineReader, DEFAULT_TIMEOUT,
};

/// Which remote server gdb talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Server {
    /// `target remote | xol serve --stdio -- PROG ARGS`
    XolStdio,
    /// `target remote | gdbserver - PROG ARGS` (GNU gdbserver, for reference)
    GdbserverStdio,
    /// `xol serve 127.0.0.1:0 --once -- PROG ARGS` started by the rig, then
    /// `target remote 127.0.0.1:PORT` with the port from its
    /// `Listening on port PORT` stderr line.
    XolTcp,
    /// `target remote | xol-gdbserver - PROG ARGS`
    XolGdbserverStdio,
    /// `target remote | xol serve --rsp xol --stdio -- PROG ARGS`: xol's own protocol
    /// server, whatever `XOL_TEST_RSP` says.
    XolOwnRsp,
}

/// The gdb binary to use (`$XOL_TEST_GDB` or `gdb`).
pub fn gdb_bin() -> OsString {
    std::env::var_os("XOL_TEST_GDB").unwrap_or_else(|| "gdb".into())
}

/// When this environment variable is set, a missing GNU gdbserver fails every
/// test that has a gdbserver part instead of skipping that part.
pub const REQUIRE_GDBSERVER_ENV: &str = "XOL_TEST_REQUIRE_GDBSERVER";

/// Path of GNU gdbserver (`$XOL_TEST_GDBSERVER` or `gdbserver` on `$PATH`),
/// if installed. When it is not, reports the calling test's gdbserver part as
/// skipped (see [`report_gdbserver_missing`]).
pub fn gdbserver_path() -> Option<PathBuf> {
    let p = match std::env::var_os("XOL_TEST_GDBSERVER") {
        Some(p) => which(&p.to_string_lossy()),
        None => which("gdbserver"),
    };
    if p.is_none() {
        report_gdbserver_missing();
    }
    p
}

/// True if GNU gdbserver is installed (else reports the skip, see
/// [`gdbserver_path`]).
pub fn gdbserver_available() -> bool {
    gdbserver_path().is_some()
}

/// Without gdbserver a test's reference part does not run: say so in a
/// `SKIP <test>: ...` line written straight to the process's stderr (the test
/// harness captures only `print!`/`eprint!`, so the line shows in every run),
/// or panic if [`REQUIRE_GDBSERVER_ENV`] is set.
pub fn report_gdbserver_missing() {
    let test = std::thread::current().name().unwrap_or("?").to_string();
    let which = std::env::var("XOL_TEST_GDBSERVER").unwrap_or_else(|_| "gdbserver".into());
    match gdbserver_missing_verdict(&test, &which, std::env::var_os(REQUIRE_GDBSERVER_ENV).is_some()) {
        Ok(skip) => {
            let _ = writeln!(std::io::stderr(), "{skip}");
        }
        Err(fail) => panic!("{fail}"),
    }
}

/// What [`report_gdbserver_missing`] does for test `test` when gdbserver
/// `which` is missing: `Ok(SKIP line)`, or `Err(failure)` when `require`d.
pub fn gdbserver_missing_verdict(test: &str, which: &str, require: bool) -> Result<String, String> {
    if require {
        Err(format!(
            "{test}: GNU gdbserver ({which}) is not installed, but {REQUIRE_GDBSERVER_ENV} is set \
             (scripts/setup.sh installs it)"
        ))
    } else {
        Ok(format!(
            "SKIP {test}: GNU gdbserver ({which}) is not installed: its reference part did not run \
             (scripts/setup.sh installs it)"
        ))
    }
}

/// Environment variable naming the file a fixture appends its `MARK:` lines
/// to (`fixtures/mark.h`): the program's own output channel.
pub const MARKS_ENV: &str = "XOL_TEST_MARKS";

/// A fresh path for a program's marks file (not created: the program creates
/// it with its first mark). Every path has the same length, so the
/// environment, and with it the stack addresses, of two sessions being
/// compared differ in no byte count.
pub fn new_marks_path() -> PathBuf {
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("marks");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("mkdir {dir:?}: {e}"));
    let p = dir.join(format!("{:010}-{:08}.marks", std::process::id(), N.fetch_add(1, Ordering::Relaxed)));
    let _ = std::fs::remove_file(&p);
    p
}

/// Reads and removes a marks file: `None` if the program never created it.
pub fn take_marks_file(p: &Path) -> Option<String> {
    let text = std::fs::read(p).ok().map(|b| String::from_utf8_lossy(&b).into_owned());
    let _ = std::fs::remove_file(p);
    text
}

/// The `MARK:` values of a program's own channel (lines exactly `MARK:<v>`).
pub fn marks_in_channel(text: &str) -> Vec<String> {
    text.lines().filter_map(|l| l.trim_end().strip_prefix("MARK:").map(str::to_string)).collect()
}

/// The `MARK:` values found in a mixed stream (gdb's and a server's output
/// with the program's): [`strip_tool_warnings`] first, then every line that
/// is `MARK:<v>`.
pub fn marks_in_stream(text: &str) -> Vec<String> {
    marks_in_channel(&strip_tool_warnings(text))
}

/// What starts one of the reference tools' own warnings that may share a
/// stream with a program's output: GNU gdbserver's
/// `perror("Warning: ptrace(regsets_store_inferior_registers)")` and its
/// siblings (`Warning: ptrace(<what>): <strerror>`).
pub const TOOL_WARNING_START: &str = "Warning: ptrace(";

/// Removes the reference tools' own `Warning: ptrace(...): <error>` messages
/// from `text`, wherever they are. A warning is one write that ends with a
/// newline, but another process's write can land right before or after it on
/// the same line: a warning runs from [`TOOL_WARNING_START`] to the end of
/// its line, or up to a `MARK:` that follows it on that line
/// (`Warning: ptrace(...): Bad addressMARK:start` keeps `MARK:start`;
/// `MARK:startWarning: ptrace(...): Bad address` keeps `MARK:start`). A line
/// that held nothing but warnings is dropped; other lines are kept as they are.
pub fn strip_tool_warnings(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        if !body.contains(TOOL_WARNING_START) {
            out.push_str(line);
            continue;
        }
        let mut kept = String::new();
        let mut rest = body;
        while let Some(i) = rest.find(TOOL_WARNING_START) {
            kept.push_str(&rest[..i]);
            let after = &rest[i + TOOL_WARNING_START.len()..];
            rest = match after.find("MARK:") {
                Some(m) => &after[m..],
                None => "",
            };
        }
        kept.push_str(rest);
        if !kept.trim().is_empty() {
            out.push_str(&kept);
            out.push_str(nl);
        }
    }
    out
}

/// Result of one gdb session.
#[derive(Clone, Debug)]
pub struct GdbOutput {
    /// Server the session ran against.
    pub server: Server,
    /// gdb's stdout.
    pub stdout: String,
    /// gdb's stderr (includes a stdio server's stderr).
    pub stderr: String,
    /// gdb's exit status (gdb -batch exits 1 if the last command failed).
    pub status: ExitStatus,
    /// For [`Server::XolTcp`]: the server's stdout followed by its stderr
    /// (empty for the stdio servers).
    pub server_output: String,
    /// The program's own channel: what the program (and its descendants)
    /// wrote to the [`MARKS_ENV`] file, `None` if nothing did.
    pub program_output: Option<String>,
}

impl GdbOutput {
    /// stdout + stderr + server output, for searching.
    pub fn all_output(&self) -> String {
        format!("{}{}{}", self.stdout, self.stderr, self.server_output)
    }

    /// True if the program printed the line `MARK:<mark>` (e.g.
    /// `has_mark("done")`, `has_mark("sum=535")`); see [`GdbOutput::marks`].
    pub fn has_mark(&self, mark: &str) -> bool {
        self.marks().iter().any(|m| m == mark)
    }

    /// All `MARK:` values the program printed, in the order it wrote them: from
    /// its own channel ([`GdbOutput::program_output`]); for a program that
    /// wrote nothing there, from the streams (stdout, then stderr, then server
    /// output) with the tools' warnings removed ([`marks_in_stream`]).
    pub fn marks(&self) -> Vec<String> {
        match &self.program_output {
            Some(p) => marks_in_channel(p),
            None => marks_in_stream(&self.all_output()),
        }
    }

    /// Panics (dumping everything) unless `stdout` contains `needle`.
    pub fn assert_stdout_contains(&self, needle: &str) {
        assert!(self.stdout.contains(needle), "gdb stdout lacks {needle:?}\n{self}");
    }
}

impl fmt::Display for GdbOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "=== gdb session against {:?}: {} ===", self.server, describe_status(&self.status))?;
        writeln!(f, "--- gdb stdout ---\n{}", self.stdout)?;
        writeln!(f, "--- gdb stderr ---\n{}", self.stderr)?;
        if !self.server_output.is_empty() {
            writeln!(f, "--- server output ---\n{}", self.server_output)?;
        }
        match &self.program_output {
            Some(p) => writeln!(f, "--- program's marks (${MARKS_ENV}) ---\n{p}")?,
            None => writeln!(f, "--- program's marks (${MARKS_ENV}): none written ---")?,
        }
        Ok(())
    }
}

/// Extra knobs for [`gdb_batch_opts`].
#[derive(Clone, Debug)]
pub struct GdbOpts {
    /// Timeout for the whole gdb session (default 60 s).
    pub timeout: Duration,
    /// gdb commands run before the `target remote` command (after
    /// `set confirm off` and `set pagination off`).
    pub pre_target: Vec<String>,
    /// Extra arguments for the server, inserted before `--` / `-` (e.g.
    /// `["--debug"]`).
    pub server_args: Vec<OsString>,
    /// Environment variables for the server (and so gdb) process.
    pub env: Vec<(OsString, OsString)>,
}

impl Default for GdbOpts {
    fn default() -> Self {
        GdbOpts { timeout: DEFAULT_TIMEOUT, pre_target: Vec::new(), server_args: Vec::new(), env: Vec::new() }
    }
}

/// Runs `gdb -nx -batch` on `prog` with `set confirm off`, `set pagination
/// off`, the `target remote` command for `server` (which starts `prog args`),
/// then each line of `script` as an `-ex` command. 60 s timeout (panics with
/// all output on timeout). Panics if the server is not available (check
/// [`gdbserver_available`] first for [`Server::GdbserverStdio`]).
pub fn gdb_batch(server: Server, prog: &Path, args: &[&str], script: &[&str]) -> GdbOutput {
    gdb_batch_opts(server, prog, args, script, &GdbOpts::default())
}

/// Like [`gdb_batch`] with extra options.
pub fn gdb_batch_opts(server: Server, prog: &Path, args: &[&str], script: &[&str], opts: &GdbOpts) -> GdbOutput {
    let pipe_cmd = |bin: PathBuf, head: &[&str]| -> String {
        let mut argv: Vec<OsString> = vec![bin.into()];
        argv.extend(head.iter().take(head.len().saturating_sub(1)).map(OsString::from));
        argv.extend(opts.server_args.iter().cloned());
        argv.extend(head.last().map(OsString::from));
        argv.push(prog.into());
        argv.extend(args.iter().map(OsString::from));
        format!("target remote | {}", shell_join(&argv))
    };

    let marks = new_marks_path();
    let mut tcp_server: Option<(ChildGuard, LineReader, Collector)> = None;
    let target = match server {
        Server::XolStdio => pipe_cmd(xol_bin(), &["serve", "--stdio", "--"]),
        Server::XolGdbserverStdio => pipe_cmd(xol_gdbserver_bin(), &["-"]),
        Server::XolOwnRsp => pipe_cmd(xol_real_bin(), &["serve", "--rsp", "xol", "--stdio", "--"]),
        Server::GdbserverStdio => {
            let gs = gdbserver_path().expect("gdbserver is not installed (check gdbserver_available())");
            pipe_cmd(gs, &["-"])
        }
        Server::XolTcp => {
            let mut cmd = Command::new(xol_bin());
            cmd.args(["serve", "127.0.0.1:0", "--once"])
                .args(&opts.server_args)
                .arg("--")
                .arg(prog)
                .args(args)
                .envs(opts.env.iter().map(|(k, v)| (k, v)))
                .env(MARKS_ENV, &marks)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut g = ChildGuard::spawn(&mut cmd);
            let mut err = LineReader::new(g.stderr.take().unwrap());
            let out = Collector::new(g.stdout.take().unwrap());
            let port = match err.wait_for_match(Duration::from_secs(20), |l| parse_listening_port(l).is_some()) {
                Ok(l) => parse_listening_port(&l).unwrap(),
                Err(e) => panic!(
                    "xol serve never printed `Listening on port N` ({}): {e}\n--- stdout ---\n{}",
                    g.command_line(),
                    out.text()
                ),
            };
            tcp_server = Some((g, err, out));
            format!("target remote 127.0.0.1:{port}")
        }
    };

    let mut cmd = Command::new(gdb_bin());
    cmd.args(["-nx", "-batch", "-iex", "set debuginfod enabled off"]);
    for c in ["set confirm off", "set pagination off"]
        .into_iter()
        .chain(opts.pre_target.iter().map(String::as_str))
        .chain([target.as_str()])
        .chain(script.iter().copied())
    {
        cmd.arg("-ex").arg(c);
    }
    cmd.arg(prog);
    cmd.envs(opts.env.iter().map(|(k, v)| (k, v)));
    // gdb passes it on to a `target remote | SERVER` command, the server to
    // the program it starts.
    cmd.env(MARKS_ENV, &marks);

    let res = try_run_with_timeout(cmd, opts.timeout);

    let server_output = match tcp_server.take() {
        Some((mut g, mut err, out)) => {
            if g.wait_timeout(Duration::from_secs(10)).is_none() {
                g.kill();
            }
            out.wait_eof(Duration::from_secs(5));
            err.read_to_eof(Duration::from_secs(5));
            format!("{}{}", out.text(), err.text())
        }
        None => String::new(),
    };
    let program_output = take_marks_file(&marks);

    match res {
        Ok(o) => GdbOutput {
            server,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            status: o.status,
            server_output,
            program_output,
        },
        Err(msg) => panic!(
            "gdb session against {server:?} timed out: {msg}\n--- server output ---\n{server_output}\n--- program's marks ---\n{}",
            program_output.unwrap_or_default()
        ),
    }
}

/// Parses `Listening on port N` (anywhere in the line) into `N`.
pub fn parse_listening_port(line: &str) -> Option<u16> {
    let rest = &line[line.find("Listening on port ")? + "Listening on port ".len()..];
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// Outputs of the same gdb script run against xol and against gdbserver.
#[derive(Clone, Debug)]
pub struct ScriptComparison {
    /// Session against [`Server::XolStdio`].
    pub xol: GdbOutput,
    /// Session against [`Server::GdbserverStdio`], `None` if gdbserver is
    /// not installed.
    pub gdbserver: Option<GdbOutput>,
    /// `normalise(xol.stdout)`.
    pub xol_norm: String,
    /// `normalise(gdbserver.stdout)`.
    pub gdbserver_norm: Option<String>,
}

impl ScriptComparison {
    /// Panics with a line diff unless the normalised gdb stdouts are equal
    /// (when gdbserver was not available, [`gdb_script_compare`] reported the
    /// skip and there is nothing to compare).
    pub fn assert_same(&self) {
        let Some(gs) = &self.gdbserver_norm else {
            return;
        };
        if *gs != self.xol_norm {
            panic!(
                "normalised gdb output differs between gdbserver and xol:\n{}\n\n{}\n{}",
                line_diff(gs, &self.xol_norm, "gdbserver", "xol"),
                self.gdbserver.as_ref().unwrap(),
                self.xol
            );
        }
    }

    /// True if gdbserver was available and the normalised outputs are equal.
    pub fn same(&self) -> bool {
        self.gdbserver_norm.as_deref() == Some(self.xol_norm.as_str())
    }
}

/// Runs `script` against `prog args` through [`Server::XolStdio`] and (if
/// installed, else an `eprintln!` note) [`Server::GdbserverStdio`], and
/// normalises both gdb stdouts with `normalise` (usually
/// [`normalise_gdb_output`]).
pub fn gdb_script_compare(
    prog: &Path,
    args: &[&str],
    script: &[&str],
    normalise: fn(&str) -> String,
) -> ScriptComparison {
    // (gdbserver_available() reports the skip when gdbserver is missing.)
    let gdbserver =
        if gdbserver_available() { Some(gdb_batch(Server::GdbserverStdio, prog, args, script)) } else { None };
    let xol = gdb_batch(Server::XolStdio, prog, args, script);
    ScriptComparison {
        xol_norm: normalise(&xol.stdout),
        gdbserver_norm: gdbserver.as_ref().map(|g| normalise(&g.stdout)),
        xol,
        gdbserver,
    }
}

/// A simple line diff (`-` only in `a`, `+` only in `b`) based on the
/// longest common subsequence.
pub fn line_diff(a: &str, b: &str, a_name: &str, b_name: &str) -> String {
    let a: Vec<&str> = a.lines().collect();
    let b: Vec<&str> = b.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0usize; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] { lcs[i + 1][j + 1] + 1 } else { lcs[i + 1][j].max(lcs[i][j + 1]) };
        }
    }
    let mut out = format!("--- {a_name}\n+++ {b_name}\n");
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out += &format!(" {}\n", a[i]);
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            out += &format!("-{}\n", a[i]);
            i += 1;
        } else {
            out += &format!("+{}\n", b[j]);
            j += 1;
        }
    }
    out
}

/// Removes what legitimately differs between debug servers from gdb output:
///
/// * the reference tools' own warnings, wherever they are in a line
///   ([`strip_tool_warnings`]: GNU gdbserver's `Warning: ptrace(...): ...`);
/// * lines dropped: `Remote debugging using ...`, `Process ... created; pid =
///   ...`, gdbserver's banners (`Listening on port`, `Remote debugging from
///   host`, `Detaching from process`, `Child exited with status`,
///   `stdin/stdout redirected`, `Killing process(es)`), `warning:` lines about
///   libthread_db or remote file transfer, `Reading ... from remote target...`;
/// * `process 1234` -> `process PID`, `pid = 1234` -> `pid = PID`,
///   `Thread 1234.1235` -> `Thread PID.TID`, `Thread 1235` -> `Thread TID`,
///   `LWP 1235` -> `LWP TID`;
/// * hex numbers `0x...` -> `0xADDR`;
/// * `target:/path` -> `/path` (sysroot prefix);
/// * trailing whitespace.
///
/// `[Inferior 1 (process N) exited with code 03]` thus becomes
/// `[Inferior 1 (process PID) exited with code 03]` (exit code kept).
pub fn normalise_gdb_output(s: &str) -> String {
    let s = strip_tool_warnings(s);
    let mut out = String::new();
    for line in s.lines() {
        let t = line.trim();
        let drop = t.starts_with("Remote debugging using")
            || (t.starts_with("Process ") && t.contains(" created; pid = "))
            || t.starts_with("Listening on port")
            || t.starts_with("Remote debugging from host")
            || t.starts_with("Detaching from process")
            || t.starts_with("Child exited with status")
            || t.starts_with("stdin/stdout redirected")
            || t.starts_with("Killing process(es):")
            || (t.starts_with("warning:")
                && (t.contains("libthread_db")
                    || t.contains("File transfers from remote targets")
                    || t.contains("does not support file transfer")))
            || (t.starts_with("Reading ") && t.ends_with("from remote target..."));
        if drop {
            continue;
        }
        let mut l = line.trim_end().replace("target:/", "/");
        l = replace_num_after(&l, "process ", "PID");
        l = replace_num_after(&l, "pid = ", "PID");
        l = replace_num_after(&l, "LWP ", "TID");
        l = replace_thread_ids(&l);
        l = replace_hex(&l);
        out.push_str(&l);
        out.push('\n');
    }
    out
}

/// Replaces the decimal number right after each occurrence of `prefix`.
fn replace_num_after(s: &str, prefix: &str, repl: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(prefix) {
        let after = &rest[i + prefix.len()..];
        let nd = after.bytes().take_while(u8::is_ascii_digit).count();
        out.push_str(&rest[..i + prefix.len()]);
        if nd > 0 {
            out.push_str(repl);
        }
        rest = &after[nd..];
    }
    out.push_str(rest);
    out
}

/// `Thread 12.34` -> `Thread PID.TID`, `Thread 34` -> `Thread TID`.
fn replace_thread_ids(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    const P: &str = "Thread ";
    while let Some(i) = rest.find(P) {
        let after = &rest[i + P.len()..];
        out.push_str(&rest[..i + P.len()]);
        let n1 = after.bytes().take_while(u8::is_ascii_digit).count();
        if n1 == 0 {
            rest = after;
            continue;
        }
        let tail = &after[n1..];
        let n2 = match tail.strip_prefix('.') {
            Some(t) => t.bytes().take_while(u8::is_ascii_digit).count(),
            None => 0,
        };
        if n2 > 0 {
            out.push_str("PID.TID");
            rest = &tail[1 + n2..];
        } else {
            out.push_str("TID");
            rest = tail;
        }
    }
    out.push_str(rest);
    out
}

/// `0x7fff...` -> `0xADDR` (only at a word start).
fn replace_hex(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut last = 0;
    while i < b.len() {
        let word_start = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_');
        if word_start
            && b[i] == b'0'
            && i + 2 < b.len()
            && (b[i + 1] == b'x' || b[i + 1] == b'X')
            && b[i + 2].is_ascii_hexdigit()
        {
            let mut j = i + 2;
            while j < b.len() && b[j].is_ascii_hexdigit() {
                j += 1;
            }
            out.push_str(&s[last..i]);
            out.push_str("0xADDR");
            i = j;
            last = j;
        } else {
            i += 1;
        }
    }
    out.push_str(&s[last..]);
    out
}
