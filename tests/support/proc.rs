//! Process handling for tests: kill-on-drop guards, timeouts, line readers.
//!
//! Rules this module enforces for the whole test suite:
//! * every child runs in its own process group (`process_group(0)`);
//! * dropping a [`ChildGuard`] SIGKILLs the group *and* every descendant
//!   found through `/proc` (servers such as gdb's `target remote | ...` pipe
//!   helpers or the inferiors of a debug server may live in other groups or
//!   sessions), then reaps the child;
//! * every wait has a timeout; waits are done with a waiter thread and a
//!   channel (`recv_timeout`), never with sleeps.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use std::os::unix::process::{CommandExt, ExitStatusExt};

/// Default timeout for a whole gdb session and similar "one test step" waits.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The test rig's choice of remote-protocol server: `XOL_TEST_RSP=xol|gdbstub` runs every
/// test that starts `xol serve` or `xol-gdbserver` through that server (`--rsp`); unset, the
/// binaries' default. Read by the rig only, never by xol.
pub const RSP_ENV: &str = "XOL_TEST_RSP";

/// The `--rsp` value the rig passes (`None`: the binaries' default).
pub fn test_rsp() -> Option<String> {
    std::env::var(RSP_ENV).ok().filter(|v| !v.is_empty())
}

/// Path of the `xol` binary cargo built for this test run (the real one, never the rig's
/// `--rsp` wrapper): what `/proc/PID/exe` of a running xol shows.
pub fn xol_real_bin() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_xol") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "CARGO_BIN_EXE_xol is not set: Cargo.toml needs a binary target named `xol` \
             (src/main.rs or [[bin]] name = \"xol\") for this test"
        ),
    }
}

/// Path of the real `xol-gdbserver` binary.
pub fn xol_gdbserver_real_bin() -> PathBuf {
    match option_env!("CARGO_BIN_EXE_xol-gdbserver") {
        Some(p) => PathBuf::from(p),
        None => panic!(
            "CARGO_BIN_EXE_xol-gdbserver is not set: Cargo.toml needs \
             [[bin]] name = \"xol-gdbserver\" for this test"
        ),
    }
}

/// A script that runs `real` with `--rsp VALUE` added (after `serve` for `xol`, first for
/// `xol-gdbserver`), made once per value under the target's tmp dir; it `exec`s, so the pid
/// a test sees is xol's.
fn rsp_wrapper(real: &Path, name: &str, rsp: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("rsp-{rsp}"));
    let path = dir.join(name);
    if path.exists() {
        return path;
    }
    std::fs::create_dir_all(&dir).expect("create the --rsp wrapper directory");
    let q = |s: &str| format!("'{}'", s.replace('\'', "'\\''"));
    let real = q(&real.to_string_lossy());
    let rsp = q(rsp);
    let body = if name == "xol" {
        format!("#!/bin/sh\nif [ \"$1\" = serve ]; then shift; exec {real} serve --rsp {rsp} \"$@\"; fi\nexec {real} \"$@\"\n")
    } else {
        format!("#!/bin/sh\nexec {real} --rsp {rsp} \"$@\"\n")
    };
    use std::os::unix::fs::PermissionsExt;
    // Unique per writer (tests run on several threads, test binaries in parallel): the last
    // rename wins, and every writer wrote the same script.
    static SEQ: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let seq = SEQ.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = dir.join(format!(".{name}.{}.{seq}", std::process::id()));
    std::fs::write(&tmp, body).expect("write the --rsp wrapper");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).expect("chmod the --rsp wrapper");
    std::fs::rename(&tmp, &path).expect("install the --rsp wrapper");
    path
}

/// Path of the `xol` binary for this test run: the real one, or with `XOL_TEST_RSP` set a
/// wrapper that passes `--rsp` to `xol serve` ([`RSP_ENV`]).
///
/// Panics with a clear message when cargo did not provide
/// `CARGO_BIN_EXE_xol` (i.e. there is no `[[bin]] name = "xol"` target).
pub fn xol_bin() -> PathBuf {
    match test_rsp() {
        Some(r) => rsp_wrapper(&xol_real_bin(), "xol", &r),
        None => xol_real_bin(),
    }
}

/// Path of the `xol-gdbserver` binary for this test run (a `--rsp` wrapper as for
/// [`xol_bin`] when `XOL_TEST_RSP` is set).
///
/// Panics with a clear message when there is no `[[bin]] name = "xol-gdbserver"`.
pub fn xol_gdbserver_bin() -> PathBuf {
    match test_rsp() {
        Some(r) => rsp_wrapper(&xol_gdbserver_real_bin(), "xol-gdbserver", &r),
        None => xol_gdbserver_real_bin(),
    }
}

/// The binary a running process started from `p` shows in `/proc/PID/exe`: the real xol
/// binary for the rig's `--rsp` wrappers, `p` itself otherwise.
pub fn running_exe(p: &Path) -> PathBuf {
    if test_rsp().is_some() {
        if p == xol_bin() {
            return xol_real_bin();
        }
        if p == xol_gdbserver_bin() {
            return xol_gdbserver_real_bin();
        }
    }
    p.to_path_buf()
}

/// Finds an executable named `name` on `$PATH` (like `which`).
pub fn which(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    if name.contains('/') {
        let p = PathBuf::from(name);
        return p.is_file().then_some(p);
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.metadata().map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0).unwrap_or(false))
}

/// All live descendants of `pid` (children, grandchildren, ...), found by
/// scanning `/proc/*/stat`. Order: breadth first.
pub fn descendants(pid: u32) -> Vec<u32> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for ent in rd.flatten() {
            let Some(p) = ent.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if let Some(pp) = proc_ppid(p) {
                children.entry(pp).or_default().push(p);
            }
        }
    }
    let mut out = Vec::new();
    let mut seen = HashSet::new();
    let mut queue = vec![pid];
    while let Some(p) = queue.pop() {
        if let Some(cs) = children.get(&p) {
            for &c in cs {
                if seen.insert(c) {
                    out.push(c);
                    queue.push(c);
                }
            }
        }
    }
    out
}

fn proc_stat_fields(pid: u32) -> Option<(char, u32)> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm may contain spaces and parentheses: split after the last ')'.
    let rest = &s[s.rfind(')')? + 1..];
    let mut it = rest.split_whitespace();
    let state = it.next()?.chars().next()?;
    let ppid = it.next()?.parse().ok()?;
    Some((state, ppid))
}

fn proc_ppid(pid: u32) -> Option<u32> {
    proc_stat_fields(pid).map(|(_, pp)| pp)
}

/// Process state letter from `/proc/PID/stat` (`R`, `S`, `t`, `Z`, ...), or
/// `None` if the process does not exist.
pub fn proc_state(pid: u32) -> Option<char> {
    proc_stat_fields(pid).map(|(st, _)| st)
}

/// True if `pid` exists and is not a zombie.
pub fn pid_alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some(st) if st != 'Z' && st != 'X')
}

/// Polls `cond` every 10 ms until it returns true or `timeout` passes.
/// Returns whether the condition became true. For conditions no event can be
/// waited on (e.g. "pid gone" for a process we are not the parent of).
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// Environment variable set on every process spawned through [`ChildGuard`];
/// its (unique) value lets the guard find the descendants that were
/// re-parented away from it (e.g. a server started by gdb with `setsid`
/// after gdb exited).
pub const GUARD_ENV: &str = "XOL_TEST_GUARD_TOKEN";

fn new_guard_token() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    format!("{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::Relaxed))
}

/// Live processes whose initial environment has `GUARD_ENV=token`.
pub fn processes_with_token(token: &str) -> Vec<u32> {
    let needle = format!("{GUARD_ENV}={token}\0").into_bytes();
    let me = std::process::id();
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/proc") {
        for ent in rd.flatten() {
            let Some(p) = ent.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
                continue;
            };
            if p == me {
                continue;
            }
            if let Ok(env) = std::fs::read(format!("/proc/{p}/environ")) {
                if env.windows(needle.len()).any(|w| w == needle.as_slice()) {
                    out.push(p);
                }
            }
        }
    }
    out
}

fn sigkill(pid: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// A spawned child in its own process group, killed (with its whole group and
/// all descendants) and reaped on drop.
///
/// The pipes of the child are available as the public `stdin`/`stdout`/
/// `stderr` fields (take them with `Option::take`).
pub struct ChildGuard {
    pid: u32,
    /// Child's stdin if it was configured as `Stdio::piped()`.
    pub stdin: Option<ChildStdin>,
    /// Child's stdout if it was configured as `Stdio::piped()`.
    pub stdout: Option<ChildStdout>,
    /// Child's stderr if it was configured as `Stdio::piped()`.
    pub stderr: Option<ChildStderr>,
    status_rx: Receiver<ExitStatus>,
    status: Option<ExitStatus>,
    what: String,
    token: String,
}

impl ChildGuard {
    /// Spawns `cmd` in a new process group. Panics (with the command line) if
    /// spawning fails.
    pub fn spawn(cmd: &mut Command) -> ChildGuard {
        match Self::try_spawn(cmd) {
            Ok(g) => g,
            Err(e) => panic!("failed to spawn {cmd:?}: {e}"),
        }
    }

    /// Like [`ChildGuard::spawn`] but returns the spawn error.
    pub fn try_spawn(cmd: &mut Command) -> std::io::Result<ChildGuard> {
        cmd.process_group(0);
        let what = format!("{cmd:?}");
        let token = new_guard_token();
        cmd.env(GUARD_ENV, &token);
        let child = cmd.spawn()?;
        Ok(Self::from_child(child, what, token))
    }

    fn from_child(mut child: Child, what: String, token: String) -> ChildGuard {
        let pid = child.id();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name(format!("wait-{pid}"))
            .spawn(move || {
                if let Ok(st) = child.wait() {
                    let _ = tx.send(st);
                }
            })
            .expect("spawn waiter thread");
        ChildGuard { pid, stdin, stdout, stderr, status_rx: rx, status: None, what, token }
    }

    /// Process id (also the process group id) of the child.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Debug rendering of the command that was spawned.
    pub fn command_line(&self) -> &str {
        &self.what
    }

    /// Waits up to `timeout` for the child to exit. Returns its status, or
    /// `None` if it is still running. Does not kill it.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        if self.status.is_none() {
            match self.status_rx.recv_timeout(timeout) {
                Ok(st) => self.status = Some(st),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    panic!("waiter thread for {} died without a status", self.what)
                }
            }
        }
        self.status
    }

    /// Non-blocking: the exit status if the child has exited.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            if let Ok(st) = self.status_rx.try_recv() {
                self.status = Some(st);
            }
        }
        self.status
    }

    /// True while the child has not exited.
    pub fn is_running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    /// Waits for the child to exit; panics if it does not within `timeout`
    /// (the guard then kills it when dropped).
    pub fn expect_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_timeout(timeout) {
            Some(st) => st,
            None => panic!("{} did not exit within {timeout:?}", self.what),
        }
    }

    /// Live processes belonging to this guard other than the child itself:
    /// its descendants plus anything carrying its [`GUARD_ENV`] token
    /// (descendants that were re-parented, e.g. after their parent died).
    pub fn leftover_processes(&self) -> Vec<u32> {
        let mut v = descendants(self.pid);
        for p in processes_with_token(&self.token) {
            if p != self.pid && !v.contains(&p) {
                v.push(p);
            }
        }
        v.retain(|&p| pid_alive(p));
        v
    }

    /// SIGKILLs the child, its process group, its descendants and every
    /// process carrying its [`GUARD_ENV`] token (found via /proc before
    /// anything is killed; repeated a few times to catch forks in flight),
    /// then reaps the child (waiting at most 10 s). Returns the child's exit
    /// status if it was reaped.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        for _ in 0..3 {
            let others = self.leftover_processes();
            if self.status.is_none() {
                sigkill(self.pid as i32);
            }
            sigkill(-(self.pid as i32));
            if others.is_empty() {
                break;
            }
            for p in others {
                sigkill(p as i32);
            }
        }
        self.wait_timeout(Duration::from_secs(10))
    }

    /// Sends `sig` to the child (not its group).
    pub fn signal(&self, sig: i32) {
        if self.status.is_none() {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe {
                libc::kill(self.pid as i32, sig);
            }
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        // Close our end of stdin first: a well-behaved server may exit on EOF.
        self.stdin.take();
        self.kill();
    }
}

/// Reads lines from a pipe on a background thread so that callers can wait
/// for a particular line with a timeout. Lines are decoded lossily as UTF-8
/// and have their trailing `\n` / `\r\n` removed.
pub struct LineReader {
    rx: Receiver<String>,
    seen: Vec<String>,
    eof: bool,
}

impl LineReader {
    /// Starts the reader thread on `r`.
    pub fn new<R: Read + Send + 'static>(r: R) -> LineReader {
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("line-reader".into())
            .spawn(move || {
                let mut br = BufReader::new(r);
                let mut buf = Vec::new();
                loop {
                    buf.clear();
                    match br.read_until(b'\n', &mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            while matches!(buf.last(), Some(b'\n' | b'\r')) {
                                buf.pop();
                            }
                            if tx.send(String::from_utf8_lossy(&buf).into_owned()).is_err() {
                                break;
                            }
                        }
                    }
                }
            })
            .expect("spawn line reader thread");
        LineReader { rx, seen: Vec::new(), eof: false }
    }

    /// Next line, waiting at most `timeout`; `None` on timeout or EOF (see
    /// [`LineReader::is_eof`]).
    pub fn next_line(&mut self, timeout: Duration) -> Option<String> {
        if self.eof {
            return None;
        }
        match self.rx.recv_timeout(timeout) {
            Ok(l) => {
                self.seen.push(l.clone());
                Some(l)
            }
            Err(RecvTimeoutError::Timeout) => None,
            Err(RecvTimeoutError::Disconnected) => {
                self.eof = true;
                None
            }
        }
    }

    /// Waits (in total at most `timeout`) for a line satisfying `pred` and
    /// returns it. On timeout or EOF returns `Err` with every line seen so far.
    pub fn wait_for_match(&mut self, timeout: Duration, mut pred: impl FnMut(&str) -> bool) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let now = Instant::now();
            if now >= deadline || self.eof {
                let why = if self.eof { "EOF" } else { "timeout" };
                return Err(format!("{why}; lines seen so far:\n{}", self.seen.join("\n")));
            }
            if let Some(l) = self.next_line(deadline - now) {
                if pred(&l) {
                    return Ok(l);
                }
            }
        }
    }

    /// Waits for a line containing `needle`; see [`LineReader::wait_for_match`].
    pub fn wait_for(&mut self, needle: &str, timeout: Duration) -> Result<String, String> {
        self.wait_for_match(timeout, |l| l.contains(needle))
    }

    /// Reads until EOF or `timeout`, returning the lines read by this call.
    pub fn read_to_eof(&mut self, timeout: Duration) -> Vec<String> {
        let start = self.seen.len();
        let deadline = Instant::now() + timeout;
        while !self.eof {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            self.next_line(deadline - now);
        }
        self.seen[start..].to_vec()
    }

    /// Collects lines already received without waiting.
    pub fn poll(&mut self) {
        while let Ok(l) = self.rx.try_recv() {
            self.seen.push(l);
        }
    }

    /// Every line received so far.
    pub fn seen(&self) -> &[String] {
        &self.seen
    }

    /// Every line received so far joined with `\n` (after [`LineReader::poll`]).
    pub fn text(&mut self) -> String {
        self.poll();
        let mut s = self.seen.join("\n");
        if !s.is_empty() {
            s.push('\n');
        }
        s
    }

    /// True once the pipe reached EOF.
    pub fn is_eof(&self) -> bool {
        self.eof
    }
}

/// Accumulates everything read from a pipe into a shared buffer on a
/// background thread (so partial output is available after a timeout).
pub struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    done: Receiver<()>,
}

impl Collector {
    /// Starts collecting from `r`.
    pub fn new<R: Read + Send + 'static>(mut r: R) -> Collector {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let b2 = buf.clone();
        let (tx, done) = mpsc::channel();
        thread::Builder::new()
            .name("collector".into())
            .spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    match r.read(&mut chunk) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => b2.lock().unwrap().extend_from_slice(&chunk[..n]),
                    }
                }
                let _ = tx.send(());
            })
            .expect("spawn collector thread");
        Collector { buf, done }
    }

    /// Bytes collected so far.
    pub fn bytes(&self) -> Vec<u8> {
        self.buf.lock().unwrap().clone()
    }

    /// Text collected so far (lossy UTF-8).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buf.lock().unwrap()).into_owned()
    }

    /// Waits up to `timeout` for EOF; returns true if EOF was reached.
    pub fn wait_eof(&self, timeout: Duration) -> bool {
        !matches!(self.done.recv_timeout(timeout), Err(RecvTimeoutError::Timeout))
    }
}

/// Runs `cmd` (stdin `/dev/null`, stdout/stderr captured) with a timeout.
///
/// On timeout the process group and all descendants are killed and the test
/// panics with the command line and the output captured so far.
pub fn run_with_timeout(cmd: Command, timeout: Duration) -> Output {
    match try_run_with_timeout(cmd, timeout) {
        Ok(o) => o,
        Err(msg) => panic!("{msg}"),
    }
}

/// Like [`run_with_timeout`] but returns the timeout report (command line and
/// output so far) as `Err` instead of panicking.
pub fn try_run_with_timeout(mut cmd: Command, timeout: Duration) -> Result<Output, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut g = ChildGuard::spawn(&mut cmd);
    let out = Collector::new(g.stdout.take().unwrap());
    let err = Collector::new(g.stderr.take().unwrap());
    match g.wait_timeout(timeout) {
        Some(status) => {
            // The child is gone, but a descendant may still hold the pipes:
            // give them a moment, then kill whatever is left.
            let eof = out.wait_eof(Duration::from_secs(5)) & err.wait_eof(Duration::from_secs(5));
            if !eof {
                g.kill();
                out.wait_eof(Duration::from_secs(5));
                err.wait_eof(Duration::from_secs(5));
            }
            Ok(Output { status, stdout: out.bytes(), stderr: err.bytes() })
        }
        None => {
            let what = g.command_line().to_string();
            g.kill();
            out.wait_eof(Duration::from_secs(2));
            err.wait_eof(Duration::from_secs(2));
            Err(format!(
                "timeout after {timeout:?}: {what}\n--- stdout so far ---\n{}\n--- stderr so far ---\n{}",
                out.text(),
                err.text()
            ))
        }
    }
}

/// Human-readable description of an exit status (`exit 3`, `signal 11`).
pub fn describe_status(st: &ExitStatus) -> String {
    match (st.code(), st.signal()) {
        (Some(c), _) => format!("exit {c}"),
        (None, Some(s)) => format!("signal {s}"),
        _ => format!("{st:?}"),
    }
}

/// Quotes `s` for `/bin/sh` (single quotes; leaves plain words unquoted).
pub fn shell_quote(s: &OsStr) -> String {
    let s = s.to_string_lossy();
    let plain = !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c));
    if plain {
        s.into_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Quotes and joins a command line for `/bin/sh`.
pub fn shell_join<S: AsRef<OsStr>>(argv: &[S]) -> String {
    argv.iter().map(|a| shell_quote(a.as_ref())).collect::<Vec<_>>().join(" ")
}

/// Convenience: `Path` to `OsStr` for use with [`shell_join`] etc.
pub fn os(p: &Path) -> &OsStr {
    p.as_os_str()
}
