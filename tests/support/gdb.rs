//! Driving a real gdb (`gdb -nx -batch`) against xol or GNU gdbserver.
//!
//! [`gdb_batch`] runs one scripted gdb session against a chosen [`Server`];
//! [`gdb_script_compare`] runs the same script against xol and gdbserver and
//! [`normalise_gdb_output`] removes what legitimately differs between them.
//!
//! Overrides: `XOL_TEST_GDB` (gdb binary), `XOL_TEST_GDBSERVER` (gdbserver).
//!
//! Where the inferior's output ends up: with the stdio servers the server's
//! stderr is gdb's stderr, and gdbserver sends the inferior's stdout there,
//! so `MARK:` lines show up in [`GdbOutput::stderr`]; with [`Server::XolTcp`]
//! they are in [`GdbOutput::server_output`]. Use [`GdbOutput::all_output`] /
//! [`GdbOutput::has_mark`] to not care.

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::Duration;

use super::proc::{
    describe_status, shell_join, try_run_with_timeout, which, xol_bin, xol_gdbserver_bin, ChildGuard, Collector,
    LineReader, DEFAULT_TIMEOUT,
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
}

/// The gdb binary to use (`$XOL_TEST_GDB` or `gdb`).
pub fn gdb_bin() -> OsString {
    std::env::var_os("XOL_TEST_GDB").unwrap_or_else(|| "gdb".into())
}

/// Path of GNU gdbserver (`$XOL_TEST_GDBSERVER` or `gdbserver` on `$PATH`),
/// if installed.
pub fn gdbserver_path() -> Option<PathBuf> {
    match std::env::var_os("XOL_TEST_GDBSERVER") {
        Some(p) => which(&p.to_string_lossy()),
        None => which("gdbserver"),
    }
}

/// True if GNU gdbserver is installed.
pub fn gdbserver_available() -> bool {
    gdbserver_path().is_some()
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
}

impl GdbOutput {
    /// stdout + stderr + server output, for searching.
    pub fn all_output(&self) -> String {
        format!("{}{}{}", self.stdout, self.stderr, self.server_output)
    }

    /// True if any output has a line that is exactly `MARK:<mark>`
    /// (e.g. `has_mark("done")`, `has_mark("sum=535")`).
    pub fn has_mark(&self, mark: &str) -> bool {
        let want = format!("MARK:{mark}");
        self.all_output().lines().any(|l| l.trim_end() == want)
    }

    /// All `MARK:` values in order of appearance within each stream
    /// (stdout, then stderr, then server output).
    pub fn marks(&self) -> Vec<String> {
        self.all_output().lines().filter_map(|l| l.trim_end().strip_prefix("MARK:").map(str::to_string)).collect()
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

    let mut tcp_server: Option<(ChildGuard, LineReader, Collector)> = None;
    let target = match server {
        Server::XolStdio => pipe_cmd(xol_bin(), &["serve", "--stdio", "--"]),
        Server::XolGdbserverStdio => pipe_cmd(xol_gdbserver_bin(), &["-"]),
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

    match res {
        Ok(o) => GdbOutput {
            server,
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            status: o.status,
            server_output,
        },
        Err(msg) => panic!("gdb session against {server:?} timed out: {msg}\n--- server output ---\n{server_output}"),
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
    /// (no-op if gdbserver was not available).
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
    let gdbserver = if gdbserver_available() {
        Some(gdb_batch(Server::GdbserverStdio, prog, args, script))
    } else {
        eprintln!("note: gdbserver not installed; only running the script against xol");
        None
    };
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
