//! End-to-end tests: a real `gdb -nx -batch` (or an interactive gdb fed on a
//! pipe) drives xol, and where GNU gdbserver is installed the same script is
//! run against `gdbserver -` and the normalised outputs are compared.
//!
//! Where xol and gdbserver legitimately differ, the test asserts on the key
//! lines of both and a comment explains the difference.

mod support;

use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::process::{ChildStdin, Command, ExitStatus, Stdio};
use std::time::Duration;

use support::*;

/// Timeout for one step of a test (a gdb session, waiting for a line, ...).
const T: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Number of the first line of `fixtures/<file>` containing `needle`
/// (skipping comment lines), so scripts do not hard-code line numbers.
fn src_line(file: &str, needle: &str) -> u32 {
    let path = fixtures_src_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {path:?}: {e}"));
    for (i, l) in text.lines().enumerate() {
        let t = l.trim_start();
        if t.starts_with("/*") || t.starts_with('*') || t.starts_with("//") {
            continue;
        }
        if l.contains(needle) {
            return i as u32 + 1;
        }
    }
    panic!("no line containing {needle:?} in {path:?}");
}

fn owned(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Lines of `s` that contain `needle`.
fn count_lines(s: &str, needle: &str) -> usize {
    s.lines().filter(|l| l.contains(needle)).count()
}

/// The text of `s` between the line `==NAME==` and the next `==...==` line
/// (the scripts print such markers with `echo ==NAME==\n`).
fn section<'a>(s: &'a str, name: &str) -> &'a str {
    let m = format!("=={name}==\n");
    let Some(start) = s.find(&m) else {
        panic!("no section {name} in:\n{s}");
    };
    let rest = &s[start + m.len()..];
    let end = rest
        .match_indices("\n==")
        .map(|(i, _)| i + 1)
        .find(|&i| rest[i..].lines().next().is_some_and(|l| l.ends_with("==")))
        .unwrap_or(rest.len());
    &rest[..end]
}

/// Runs the same script against xol and (if installed) gdbserver, checks
/// `check` on both raw outputs, and returns the comparison.
fn compare_and_check(
    prog: &Path,
    args: &[&str],
    script: &[&str],
    normalise: fn(&str) -> String,
    check: impl Fn(&GdbOutput),
) -> ScriptComparison {
    let cmp = gdb_script_compare(prog, args, script, normalise);
    if let Some(gs) = &cmp.gdbserver {
        // The checks must hold for the reference server too, or the test
        // itself is wrong.
        check(gs);
    }
    check(&cmp.xol);
    cmp
}

/// Output of a gdb session run by [`gdb_session`] (for target commands the
/// rig's [`gdb_batch`] does not build: extended-remote, attach, TCP to a
/// server the test started, ...).
struct Session {
    label: String,
    stdout: String,
    stderr: String,
    status: ExitStatus,
    /// What the programs of the session wrote to their own channel (the
    /// `MARKS_ENV` file), `None` if nothing.
    program_output: Option<String>,
}

impl Session {
    fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
    /// From the programs' own channel (so a server's messages cannot corrupt
    /// it), or the streams for a program that wrote none.
    fn marks(&self) -> Vec<String> {
        match &self.program_output {
            Some(p) => marks_in_channel(p),
            None => marks_in_stream(&self.all()),
        }
    }
    fn has_mark(&self, m: &str) -> bool {
        self.marks().iter().any(|x| x == m)
    }
    fn assert_stdout_contains(&self, needle: &str) {
        assert!(self.stdout.contains(needle), "stdout lacks {needle:?}\n{self}");
    }
}

impl fmt::Display for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "=== gdb session {}: {} ===", self.label, describe_status(&self.status))?;
        writeln!(f, "--- gdb stdout ---\n{}", self.stdout)?;
        writeln!(f, "--- gdb stderr ---\n{}", self.stderr)?;
        writeln!(f, "--- program's marks ---\n{}", self.program_output.as_deref().unwrap_or("(none written)"))
    }
}

/// `gdb -nx -batch` with `set confirm off`, `set pagination off` and then
/// every command of `cmds` as `-ex`, on `prog` if given.
fn gdb_session(label: &str, prog: Option<&Path>, cmds: &[String]) -> Session {
    let mut cmd = Command::new(gdb_bin());
    cmd.args(["-nx", "-batch", "-iex", "set debuginfod enabled off"]);
    for c in ["set confirm off", "set pagination off"].into_iter().chain(cmds.iter().map(String::as_str)) {
        cmd.arg("-ex").arg(c);
    }
    if let Some(p) = prog {
        cmd.arg(p);
    }
    let marks = new_marks_path();
    cmd.env(MARKS_ENV, &marks);
    let res = try_run_with_timeout(cmd, T);
    let program_output = take_marks_file(&marks);
    match res {
        Ok(o) => Session {
            label: label.to_string(),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            status: o.status,
            program_output,
        },
        Err(e) => panic!("gdb session {label} timed out: {e}"),
    }
}

/// A gdb reading its commands from a pipe, so the test can act between
/// commands (kill gdb, inspect processes, ...). Each [`InteractiveGdb::cmd`]
/// is followed by an `echo` of a unique tag; waiting for that tag is the
/// synchronisation (gdb runs stdin commands one after the other).
struct InteractiveGdb {
    guard: ChildGuard,
    stdin: Option<ChildStdin>,
    out: LineReader,
    err: Collector,
    n: u32,
}

impl InteractiveGdb {
    fn spawn(prog: &Path) -> InteractiveGdb {
        let mut cmd = Command::new(gdb_bin());
        cmd.args([
            "-nx",
            "-q",
            "-iex",
            "set debuginfod enabled off",
            "-iex",
            "set confirm off",
            "-iex",
            "set pagination off",
            "-iex",
            "set width 0",
        ])
        .arg(prog)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut guard = ChildGuard::spawn(&mut cmd);
        let stdin = guard.stdin.take();
        let out = LineReader::new(guard.stdout.take().unwrap());
        let err = Collector::new(guard.stderr.take().unwrap());
        InteractiveGdb { guard, stdin, out, err, n: 0 }
    }

    /// Runs `c` and returns gdb's stdout lines it produced (prompts removed).
    fn cmd(&mut self, c: &str) -> String {
        self.n += 1;
        let tag = format!("@@SYNC{}@@", self.n);
        let start = self.out.seen().len();
        let w = self.stdin.as_mut().expect("gdb stdin closed");
        write!(w, "{c}\necho {tag}\\n\n")
            .and_then(|_| w.flush())
            .unwrap_or_else(|e| panic!("writing {c:?} to gdb: {e}\n{}", self.dump()));
        if let Err(e) = self.out.wait_for(&tag, T) {
            panic!("gdb command {c:?} did not finish: {e}\n{}", self.dump());
        }
        self.out.seen()[start..]
            .iter()
            .map(|l| l.replace("(gdb) ", ""))
            .filter(|l| !l.contains(&tag))
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn dump(&mut self) -> String {
        format!("--- gdb stdout ---\n{}\n--- gdb stderr ---\n{}", self.out.text(), self.err.text())
    }
}

/// A running `spin` fixture (non-PIE), started by the test.
struct Spin {
    guard: ChildGuard,
    out: LineReader,
    pid: u32,
    path: PathBuf,
}

impl Spin {
    fn start() -> Spin {
        let path = fixture("spin");
        let mut cmd = Command::new(&path);
        cmd.stdout(Stdio::piped());
        let mut guard = ChildGuard::spawn(&mut cmd);
        let mut out = LineReader::new(guard.stdout.take().unwrap());
        let ready = out.wait_for("MARK:ready pid=", T).unwrap_or_else(|e| panic!("spin never got ready: {e}"));
        let pid: u32 = ready.rsplit('=').next().unwrap().trim().parse().unwrap();
        assert_eq!(pid, guard.pid());
        Spin { guard, out, pid, path }
    }

    fn sym(&self, s: &str) -> u64 {
        symbol_addr(&self.path, s)
    }

    fn mem(&self, addr: u64, len: usize) -> Vec<u8> {
        read_proc_mem(self.pid, addr, len)
    }

    fn ticks(&self) -> u64 {
        let b = self.mem(self.sym("g_ticks"), 8);
        u64::from_le_bytes(b.try_into().unwrap())
    }

    /// After a debugger let go of it: not traced, the code at `addrs` equals
    /// `orig` (no int3 left), `g_ticks` keeps increasing, and SIGTERM makes
    /// it print MARK:term and exit 0 (its SIGTERM handler `on_term` runs,
    /// so a leftover int3 there would kill it with SIGTRAP).
    fn assert_runs_on(mut self, addrs: &[(u64, Vec<u8>)], ctx: &str) {
        let pid = self.pid;
        assert!(
            wait_until(T, || tracer_pid(pid) == Some(0)),
            "spin {pid} still traced (TracerPid {:?}, state {:?})\n{ctx}",
            tracer_pid(pid),
            proc_state(pid)
        );
        assert!(self.guard.is_running(), "spin died: {:?}\n{ctx}", self.guard.try_wait());
        for (a, orig) in addrs {
            let now = self.mem(*a, orig.len());
            assert_eq!(&now, orig, "code at {a:#x} not restored (0xcc = int3 left behind)\n{ctx}");
            assert_ne!(now[0], 0xcc, "int3 left at {a:#x}\n{ctx}");
        }
        let t0 = self.ticks();
        assert!(
            wait_until(T, || self.ticks() > t0 + 5),
            "spin does not progress (g_ticks stuck at {t0}, state {:?})\n{ctx}",
            proc_state(pid)
        );
        self.guard.signal(libc::SIGTERM);
        let st = self.guard.expect_exit(T);
        let lines = self.out.read_to_eof(T);
        assert!(
            st.success(),
            "spin exited with {} after SIGTERM (SIGTRAP = 5 means an int3 was left)\n{ctx}",
            describe_status(&st)
        );
        assert!(self.out.seen().iter().any(|l| l == "MARK:term"), "no MARK:term: {lines:?}\n{ctx}");
    }
}

fn read_proc_mem(pid: u32, addr: u64, len: usize) -> Vec<u8> {
    let f = std::fs::File::open(format!("/proc/{pid}/mem")).unwrap_or_else(|e| panic!("open /proc/{pid}/mem: {e}"));
    let mut buf = vec![0u8; len];
    f.read_exact_at(&mut buf, addr).unwrap_or_else(|e| panic!("read /proc/{pid}/mem at {addr:#x}: {e}"));
    buf
}

/// `TracerPid` of `/proc/PID/status`.
fn tracer_pid(pid: u32) -> Option<u32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines().find_map(|l| l.strip_prefix("TracerPid:")).and_then(|v| v.trim().parse().ok())
}

/// Executable of a process.
fn proc_exe(pid: u32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/exe")).ok()
}

/// Processes of `guard` (its descendants and token carriers) running `exe`.
fn guard_procs_running(guard: &ChildGuard, exe: &Path) -> Vec<u32> {
    let exe = running_exe(exe);
    let want = std::fs::canonicalize(&exe).unwrap_or(exe);
    guard.leftover_processes().into_iter().filter(|&p| proc_exe(p).as_deref() == Some(want.as_path())).collect()
}

fn pipe_target(argv: &[OsString]) -> String {
    format!("target remote | {}", shell_join(argv))
}

/// `normalise_gdb_output` plus: decimal numbers of 12+ digits (stack and
/// other addresses printed in decimal by `info registers`) -> `DEC`.
/// The stacks of the two servers' inferiors differ by a few bytes because
/// the shell sets `_=<server path>` in the environment.
fn normalise_regs(s: &str) -> String {
    let n = normalise_gdb_output(s);
    let mut out = String::with_capacity(n.len());
    let b = n.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i].is_ascii_digit() && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_digit() {
                j += 1;
            }
            if j - i >= 12 {
                out.push_str("DEC");
            } else {
                out.push_str(&n[i..j]);
            }
            i = j;
        } else {
            let ch = n[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    // xol's target description leaves out the `v8_bfloat16` / `v8_half`
    // views of the SSE `vec128` union (see xol-arch's tdesc.rs: their
    // element types are unknown to older gdb versions, which would reject
    // the whole description); gdbserver's description has them. Drop those
    // two members so the remaining views (which hold the same bytes) are
    // compared.
    let mut res = String::with_capacity(out.len());
    for line in out.lines() {
        let mut l = line.to_string();
        for field in ["v8_bfloat16 = {", "v8_half = {"] {
            if let Some(p) = l.find(field) {
                if let Some(close) = l[p..].find("}, ") {
                    l.replace_range(p..p + close + 3, "");
                }
            }
        }
        res.push_str(&l);
        res.push('\n');
    }
    res
}

// ---------------------------------------------------------------------------
// 1. Breakpoints, stepping, registers, memory, variables
// ---------------------------------------------------------------------------

#[test]
fn breakpoints_and_stepping() {
    let l = fixture("loop");
    let call_line = src_line("loop.c", "sum += probe_site(i);");
    let sum_line = src_line("loop.c", "mark(\"sum=");
    let po = symbol_addr(&l, "probe_other");
    let script = owned(&[
        "break probe_site",
        &format!("break loop.c:{call_line}"),
        &format!("break *{po:#x}"),
        "continue",
        "info registers rip",
        "continue",
        "bt",
        "finish",
        "continue",
        "finish",
        "next",
        "next",
        "step",
        "stepi",
        "stepi",
        "info registers rip",
        "next",
        "next",
        "until",
        "delete",
        &format!("advance {call_line}"),
        &format!("until {sum_line}"),
        "continue",
    ]);
    let script = refs(&script);
    let cmp = compare_and_check(&l, &["3"], &script, normalise_gdb_output, |o| {
        let s = &o.stdout;
        assert!(s.contains("Breakpoint 2, main (argc=2, argv="), "no stop at loop.c:{call_line}\n{o}");
        assert!(s.contains(&format!("loop.c:{call_line}\n")), "{o}");
        assert!(s.contains("rip            0x401"), "{o}");
        assert!(s.contains("Breakpoint 1, probe_site (x=0)"), "{o}");
        assert!(s.contains("#0  probe_site (x=0)"), "{o}");
        assert!(s.contains("#1  0x"), "{o}");
        assert!(s.contains("Value returned is $1 = 1"), "finish\n{o}");
        assert!(s.contains("Breakpoint 3, probe_other (x=0)"), "break *{po:#x}\n{o}");
        assert!(s.contains("Value returned is $2 = 100"), "finish\n{o}");
        assert!(s.contains("Breakpoint 1, probe_site (x=1)"), "step\n{o}");
        assert!(s.contains(&format!("loop.c:{sum_line}\n")), "until LINE\n{o}");
        assert!(s.contains("exited normally]"), "{o}");
        assert!(o.has_mark("sum=312"), "{o}");
    });
    cmp.assert_same();
}

#[test]
fn registers_all_and_special() {
    let l = fixture("loop");
    let script = [
        "break probe_site",
        "continue",
        "echo ==REGS==\\n",
        "info registers",
        "echo ==SPECIAL==\\n",
        "info registers rip",
        "info registers fs_base gs_base orig_rax",
        "p $fs_base != 0",
        "p $orig_rax",
        "info registers ymm0",
        "p $xmm0",
        "p $st0",
        "p $mxcsr",
        "echo ==WRITE==\\n",
        "set var $xmm1.v2_int64 = {0x1122334455667788, 0x99aabbccddeeff00}",
        "p/x $xmm1.v2_int64",
        "p/x $ymm1.v4_int64",
        "set var $st1 = 1.5",
        "p $st1",
        "echo ==ALL==\\n",
        "info all-registers",
        "echo ==END==\\n",
        "delete",
        "continue",
    ];
    let cmp = compare_and_check(&l, &["2"], &script, normalise_regs, |o| {
        let s = &o.stdout;
        let regs = section(s, "REGS");
        for r in [
            "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8 ", "r15", "rip", "eflags", "cs ", "ss ", "ds ",
            "es ", "fs ", "gs ",
        ] {
            assert!(regs.lines().any(|l| l.starts_with(r)), "info registers lacks {r}\n{o}");
        }
        let sp = section(s, "SPECIAL");
        assert!(sp.contains("<probe_site+"), "{o}");
        assert!(sp.lines().any(|l| l.starts_with("fs_base        0x7")), "{o}");
        assert!(sp.lines().any(|l| l.starts_with("gs_base ")), "{o}");
        assert!(sp.lines().any(|l| l.starts_with("orig_rax       0xffffffffffffffff  -1")), "{o}");
        assert!(sp.contains("$1 = 1\n"), "fs_base is 0\n{o}");
        assert!(sp.contains("$2 = -1\n"), "{o}");
        assert!(sp.contains("ymm0           {v16_bfloat16 = {"), "{o}");
        assert!(sp.contains("v4_int32 = {"), "p $xmm0\n{o}");
        assert!(sp.contains("$4 = 0\n"), "p $st0\n{o}");
        assert!(sp.contains("$5 = [ IM DM ZM OM UM PM ]"), "p $mxcsr\n{o}");
        let w = section(s, "WRITE");
        assert!(w.contains("$6 = {0x1122334455667788, 0x99aabbccddeeff00}"), "xmm1 write\n{o}");
        assert!(w.contains("$7 = {0x1122334455667788, 0x99aabbccddeeff00, 0x0, 0x0}"), "ymm1 after xmm1 write\n{o}");
        assert!(w.contains("$8 = 1.5"), "st1 write\n{o}");
        let all = section(s, "ALL");
        // (fs_base, gs_base and orig_rax are in the `system` group and the
        // raw xmm registers are hidden behind ymm: not listed by
        // `info all-registers`; checked by name above.)
        for r in ["rip", "fs ", "st7", "fop", "mxcsr"] {
            assert!(all.lines().any(|l| l.starts_with(r)), "info all-registers lacks {r}\n{o}");
        }
        // (On an AVX-512 host gdbserver describes zmm registers and gdb lists those instead.)
        assert!(all.lines().any(|l| l.starts_with("ymm15") || l.starts_with("zmm15")), "lacks ymm15\n{o}");
        assert!(s.contains("exited normally]"), "{o}");
    });
    // `info all-registers` lists `pkru` with gdbserver on CPUs with PKU
    // (gdbserver adds org.gnu.gdb.i386.pkeys to its description); xol's
    // description has no pkeys feature. Compare everything before that
    // section exactly, and the register names of `info all-registers`
    // without pkru.
    // On an AVX-512 host gdbserver also describes k0-k7, zmm0-31 and xmm/ymm16-31, which xol's
    // description (AVX, the portable amd64-linux set) does not have: those lines are dropped
    // from gdbserver's output before comparing, and zmmN is compared as ymmN.
    let drop_avx512 = |s: &str| -> String {
        let is512 = |l: &str| {
            let n = l.split_whitespace().next().unwrap_or("");
            let num = |p: &str| n.strip_prefix(p).and_then(|d| d.parse::<u32>().ok());
            (n.len() == 2 && num("k").is_some_and(|d| d < 8))
                || ["xmm", "ymm", "zmm"].iter().any(|p| num(p).is_some_and(|d| d >= 16))
        };
        s.lines()
            .filter(|l| !is512(l))
            .map(|l| match l.strip_prefix("zmm") {
                Some(rest) if l.split_whitespace().next().is_some_and(|n| n.len() <= 5) => format!("ymm{rest}"),
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let avx512 = cmp.gdbserver_norm.as_deref().is_some_and(|g| g.lines().any(|l| l.starts_with("k0 ")));
    if let Some(gs) = &cmp.gdbserver_norm {
        let gs = &if avx512 { drop_avx512(gs) } else { gs.clone() };
        let head = |s: &str| {
            let h = &s[..s.find("==ALL==").unwrap()];
            if avx512 {
                // The SPECIAL section prints `info registers ymm0`, whose union differs when
                // gdb knows zmm0 (it shows zmm's upper-half views); keep the other sections.
                let mut out = String::new();
                let mut skip = false;
                for l in h.lines() {
                    if l.starts_with("ymm0 ") || l.starts_with("zmm0 ") {
                        skip = true;
                    } else if skip && (l.starts_with('$') || l.starts_with("==")) {
                        skip = false;
                    }
                    if !skip {
                        out.push_str(l);
                        out.push('\n');
                    }
                }
                out
            } else {
                h.to_string()
            }
        };
        let (gh, xh) = (head(gs), head(&cmp.xol_norm));
        assert!(
            gh == xh,
            "register output differs:\n{}\n{}\n{}",
            line_diff(&gh, &xh, "gdbserver", "xol"),
            cmp.gdbserver.as_ref().unwrap(),
            cmp.xol
        );
        let names = |s: &str| -> Vec<String> {
            section(s, "ALL")
                .lines()
                .filter_map(|l| l.split_whitespace().next())
                .filter(|n| *n != "pkru")
                .map(str::to_string)
                .collect()
        };
        assert_eq!(names(gs), names(&cmp.xol_norm), "register sets differ (besides pkru)\n{}", cmp.xol);
        if avx512 {
            eprintln!("note: AVX-512 host: gdbserver's k/zmm/16-31 registers were left out of the comparison");
        }
    }
}

#[test]
fn memory_over_breakpoints_shows_original_bytes() {
    let l = fixture("loop");
    let ps = symbol_addr(&l, "probe_site");
    let po = symbol_addr(&l, "probe_other");
    // Keep the breakpoints inserted while stopped, so the reads really go
    // over inserted breakpoints.
    let script = owned(&[
        "set breakpoint always-inserted on",
        "break probe_site",
        &format!("break *{po:#x}"),
        "continue",
        "echo ==MEM==\\n",
        "x/4xb $pc",
        &format!("x/4xb {po:#x}"),
        &format!("x/8xb {ps:#x}"),
        "x/2i $pc",
        "echo ==END==\\n",
        "continue",
        "continue",
    ]);
    let script = refs(&script);
    let cmp = compare_and_check(&l, &["2"], &script, normalise_gdb_output, |o| {
        let m = section(&o.stdout, "MEM");
        assert_eq!(count_lines(m, ":\t0x"), 3, "{o}");
        assert!(!m.contains("0xcc"), "int3 visible in memory\n{o}");
        // probe_other starts with push %rbp; mov %rsp,%rbp.
        assert!(m.contains("<probe_other>:\t0x55\t0x48\t0x89\t0xe5"), "{o}");
        assert!(o.stdout.contains("Breakpoint 2, probe_other (x=0)"), "{o}");
    });
    cmp.assert_same();

    // The same at the protocol level, where gdb's own shadowing of its
    // breakpoints cannot hide anything: `m` over an inserted Z0.
    let orig = {
        let mut c = RspClient::xol(&l, &["2"]);
        c.q_supported();
        c.request("?");
        let before = c.read_mem(po, 4);
        assert_eq!(c.request(&format!("Z0,{po:x},1")), "OK");
        assert_eq!(c.read_mem(po, 4), before, "m over a Z0 before resuming");
        let stop = c.request("vCont;c");
        let sr = StopReply::parse(&stop).unwrap_or_else(|| panic!("not a stop: {stop}"));
        assert_eq!((sr.kind, sr.code), ('T', 5), "{stop}");
        assert_eq!(c.read_mem(po, 4), before, "m over a Z0 at the breakpoint");
        assert_eq!(c.read_mem(po - 2, 8)[2..6], before[..], "unaligned read");
        before
    };
    assert_eq!(orig, [0x55, 0x48, 0x89, 0xe5]);
    if gdbserver_available() {
        let mut c = RspClient::gdbserver(&l, &["2"]);
        c.q_supported();
        c.request("?");
        assert_eq!(c.request(&format!("Z0,{po:x},1")), "OK");
        c.request("vCont;c");
        assert_eq!(c.read_mem(po, 4), orig, "gdbserver");
    }
}

#[test]
fn set_variable_and_register() {
    let l = fixture("loop");
    // At probe_site (x=0), before g_counter++: 42 + 3 calls = 45.
    // After `finish` rax holds probe_site(0) = 1 and main adds it to sum:
    // setting it to 5 makes sum 312 - 1 + 5 = 316.
    let script = [
        "break probe_site",
        "continue",
        "set var g_counter = 42",
        "p g_counter",
        "finish",
        "p $rax",
        "set $rax = 5",
        "p $rax",
        "p/x $rax",
        "delete",
        "continue",
    ];
    let cmp = compare_and_check(&l, &["3"], &script, normalise_gdb_output, |o| {
        o.assert_stdout_contains("$1 = 42\n");
        o.assert_stdout_contains("Value returned is $2 = 1\n");
        o.assert_stdout_contains("$3 = 1\n");
        o.assert_stdout_contains("$4 = 5\n");
        o.assert_stdout_contains("$5 = 0x5\n");
        assert!(o.has_mark("counter=45"), "g_counter write lost\n{o}");
        assert!(o.has_mark("sum=316"), "rax write lost\n{o}");
    });
    cmp.assert_same();
}

// ---------------------------------------------------------------------------
// 2. Exit code
// ---------------------------------------------------------------------------

#[test]
fn exit_code_reported() {
    let l = fixture("loop");
    let cmp = compare_and_check(&l, &["5", "3"], &["continue"], normalise_gdb_output, |o| {
        o.assert_stdout_contains("exited with code 03]");
        assert!(o.has_mark("sum=535"), "{o}");
    });
    cmp.assert_same();
}

// ---------------------------------------------------------------------------
// 3. Threads
// ---------------------------------------------------------------------------

#[test]
fn threads_names_breakpoint_hits_and_switching() {
    let t = fixture("threads");
    let script = [
        "break at_barrier",
        "continue",
        "echo ==THREADS==\\n",
        "info threads",
        "echo ==T1==\\n",
        "thread 1",
        "bt",
        "echo ==T3==\\n",
        "thread 3",
        "bt",
        "p $_thread",
        "echo ==REST==\\n",
        "continue",
        "continue",
        "continue",
        "delete",
        "continue",
    ];
    let check = |s: &str, dump: &str| {
        assert_eq!(count_lines(s, "hit Breakpoint 1, at_barrier (id="), 4, "at_barrier hits\n{dump}");
        let th = section(s, "THREADS");
        let rows: Vec<&str> = th
            .lines()
            .filter(|l| {
                let l = l.trim_start_matches(['*', ' ']);
                l.split_whitespace().next().is_some_and(|n| n.parse::<u32>().is_ok()) && l.contains("Thread ")
            })
            .collect();
        assert_eq!(rows.len(), 5, "info threads rows: {rows:#?}\n{dump}");
        // gdbserver reports names through qXfer:threads (`"worker-0"`), xol
        // through qThreadExtraInfo (`(worker-0)`): only check the names.
        for i in 0..4 {
            let name = format!("worker-{i}");
            assert_eq!(rows.iter().filter(|r| r.contains(&name)).count(), 1, "{name} in info threads\n{dump}");
        }
        assert!(rows.iter().any(|r| r.starts_with("* ")), "{dump}");
        let t1 = section(s, "T1");
        assert!(t1.contains("[Switching to thread 1 (Thread "), "{dump}");
        assert!(t1.contains(" in main () at "), "main thread bt\n{dump}");
        let t3 = section(s, "T3");
        assert!(t3.contains("[Switching to thread 3 (Thread "), "{dump}");
        assert!(t3.contains(" in worker (arg="), "worker bt\n{dump}");
        assert!(t3.contains("start_thread"), "worker bt\n{dump}");
        assert!(t3.contains("= 3\n"), "$_thread\n{dump}");
        assert!(s.contains("exited normally]"), "{dump}");
    };
    if gdbserver_available() {
        let o = gdb_batch(Server::GdbserverStdio, &t, &[], &script);
        assert!(o.has_mark("joined"), "{o}");
        check(&o.stdout, &o.to_string());
    }
    let o = gdb_batch(Server::XolStdio, &t, &[], &script);
    assert!(o.has_mark("work=12") && o.has_mark("joined"), "{o}");
    check(&o.stdout, &o.to_string());
}

// ---------------------------------------------------------------------------
// 4. Shared libraries
// ---------------------------------------------------------------------------

#[test]
fn shared_library_pending_breakpoints() {
    let s = fixture("solib");
    let lib_line = src_line("libfix.c", "return a + b;");
    let script = owned(&[
        "set breakpoint pending on",
        // libfix.so is not loaded yet (we are at ld.so's entry): a pending
        // breakpoint by source line, one by function name (resolved through
        // solib's PLT first, then re-set into libfix.so), and puts in libc.
        &format!("break libfix.c:{lib_line}"),
        "break fix_add",
        "break puts",
        "info breakpoints",
        "continue",
        "bt 2",
        "continue",
        "echo ==LIBS==\\n",
        "info sharedlibrary",
        "echo ==BT==\\n",
        "bt",
        "continue",
        "continue",
    ]);
    let script = refs(&script);
    let cmp = compare_and_check(&s, &[], &script, normalise_gdb_output, |o| {
        let out = &o.stdout;
        assert!(out.contains("(libfix.c:") && out.contains("pending."), "pending bp\n{o}");
        assert!(out.contains("Breakpoint 3, __GI__IO_puts (str=0x") || out.contains("Breakpoint 3, puts ("), "{o}");
        assert!(out.contains("\"MARK:before\""), "{o}");
        assert!(out.contains("Breakpoint 1, fix_add (a=2, b=3) at "), "pending breakpoint in libfix.so not hit\n{o}");
        assert!(out.contains(&format!("libfix.c:{lib_line}\n")), "{o}");
        let libs = section(out, "LIBS");
        assert!(libs.contains("/libfix.so"), "{o}");
        assert!(libs.contains("/libc.so.6"), "{o}");
        assert!(libs.contains("ld-linux-x86-64.so.2"), "{o}");
        assert_eq!(count_lines(libs, "  Yes "), 3, "{o}");
        assert!(section(out, "BT").contains("in main () at "), "{o}");
        assert!(out.contains("exited normally]"), "{o}");
        assert!(o.has_mark("fix=5") && o.has_mark("after"), "{o}");
    });
    cmp.assert_same();
}

// ---------------------------------------------------------------------------
// 5. Signals
// ---------------------------------------------------------------------------

#[test]
fn signal_default_stops_twice() {
    let p = fixture("sighandle");
    let cmp = compare_and_check(&p, &[], &["continue", "continue", "continue"], normalise_gdb_output, |o| {
        assert_eq!(count_lines(&o.stdout, "Program received signal SIGUSR1, User defined signal 1."), 2, "{o}");
        o.assert_stdout_contains("exited normally]");
        assert_eq!(o.marks(), ["start", "handled", "handled", "count=2"], "{o}");
    });
    cmp.assert_same();
}

#[test]
fn signal_nostop_pass_delivers() {
    let p = fixture("sighandle");
    let cmp =
        compare_and_check(&p, &[], &["handle SIGUSR1 nostop noprint pass", "continue"], normalise_gdb_output, |o| {
            assert!(!o.stdout.contains("Program received signal"), "{o}");
            o.assert_stdout_contains("exited normally]");
            assert_eq!(o.marks(), ["start", "handled", "handled", "count=2"], "{o}");
        });
    cmp.assert_same();
}

#[test]
fn signal_nostop_nopass_suppresses() {
    let p = fixture("sighandle");
    let cmp =
        compare_and_check(&p, &[], &["handle SIGUSR1 nostop noprint nopass", "continue"], normalise_gdb_output, |o| {
            assert!(!o.stdout.contains("Program received signal"), "{o}");
            o.assert_stdout_contains("exited normally]");
            assert_eq!(o.marks(), ["start", "count=0"], "handler ran\n{o}");
        });
    cmp.assert_same();
}

#[test]
fn signal_fatal_sigsegv() {
    let p = fixture("sigdie");
    let cmp =
        compare_and_check(&p, &[], &["continue", "bt", "continue", "info inferiors"], normalise_gdb_output, |o| {
            o.assert_stdout_contains("Program received signal SIGSEGV, Segmentation fault.");
            o.assert_stdout_contains("in crash_here (p=0x0) at ");
            o.assert_stdout_contains("#0  0x");
            o.assert_stdout_contains("#1  0x");
            o.assert_stdout_contains(" in main () at ");
            o.assert_stdout_contains("Program terminated with signal SIGSEGV, Segmentation fault.");
            assert_eq!(o.marks(), ["about-to-crash"], "{o}");
        });
    cmp.assert_same();
}

// ---------------------------------------------------------------------------
// 6. catch syscall
// ---------------------------------------------------------------------------

#[test]
fn catch_syscall_getpid() {
    let p = fixture("syscalls");
    let script = [
        "catch syscall getpid",
        "continue",
        "bt 2",
        "continue",
        // getpid's result (the pid differs between the two runs).
        "p $rax > 1",
        "continue",
        "continue",
        "continue",
        "continue",
        "delete",
        "continue",
    ];
    let cmp = compare_and_check(&p, &[], &script, normalise_gdb_output, |o| {
        let s = &o.stdout;
        o.assert_stdout_contains("Catchpoint 1 (syscall 'getpid' [39])");
        // Two syscall(SYS_getpid) + libc's getpid().
        assert_eq!(count_lines(s, "Catchpoint 1 (call to syscall getpid)"), 3, "{o}");
        assert_eq!(count_lines(s, "Catchpoint 1 (returned from syscall getpid)"), 3, "{o}");
        o.assert_stdout_contains("in do_getpid () at ");
        o.assert_stdout_contains("$1 = 1\n");
        o.assert_stdout_contains("exited normally]");
        assert_eq!(o.marks(), ["start", "pid-same=1", "write", "done"], "{o}");
    });
    cmp.assert_same();
}

/// What int3 probes cannot avoid (docs/probes.md, "What a probe changes in the program"): the
/// kernel raises an int3's SIGTRAP with force_sig_info, which, when the program blocks or
/// ignores SIGTRAP, unblocks it and resets its disposition to SIG_DFL before any tracer sees
/// the trap. Natively `trapblock` keeps its state; under `xol count` on trap_site, and through
/// gdb with a breakpoint there (xol and GNU gdbserver alike), the state is changed.
#[test]
fn int3_hit_unblocks_and_resets_a_blocked_or_ignored_sigtrap() {
    let p = fixture("trapblock");
    let native = |mode: &str| {
        let marks = new_marks_path();
        let mut cmd = Command::new(&p);
        cmd.arg(mode).env(MARKS_ENV, &marks);
        let o = run_with_timeout(cmd, T);
        assert!(o.status.success(), "{mode}: {}", describe_status(&o.status));
        marks_in_channel(&take_marks_file(&marks).unwrap_or_default())
    };
    assert_eq!(native("block"), ["disposition=handler", "calls=1", "blocked=1", "handler-runs=0"]);
    assert_eq!(native("ignore"), ["disposition=ign", "calls=1", "blocked=0", "handler-runs=0"]);
    assert_eq!(native("handler"), ["disposition=handler", "calls=1", "blocked=0", "handler-runs=1"]);

    // xol count: the probe counts the hit, and the program finds SIGTRAP unblocked, SIG_DFL.
    for (mode, want) in [
        ("block", ["disposition=dfl", "calls=1", "blocked=0", "handler-runs=0"]),
        ("ignore", ["disposition=dfl", "calls=1", "blocked=0", "handler-runs=0"]),
        // Hit inside the program's own SIGTRAP handler, where SIGTRAP is blocked.
        ("handler", ["disposition=dfl", "calls=1", "blocked=0", "handler-runs=1"]),
    ] {
        let marks = new_marks_path();
        let mut cmd = Command::new(xol_bin());
        cmd.args(["count", "--trap", "trap_site", "--"]).arg(&p).arg(mode).env(MARKS_ENV, &marks);
        let o = run_with_timeout(cmd, T);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{mode}: {}\n{err}", describe_status(&o.status));
        assert!(err.lines().any(|l| l.starts_with("trap_site: 1 hits")), "{mode}: {err}");
        let got = marks_in_channel(&take_marks_file(&marks).unwrap_or_default());
        assert_eq!(got, want, "{mode} under xol count\n{err}");
    }

    // Through gdb with a breakpoint on trap_site: the same with xol and GNU gdbserver.
    // ("handler" mode is left out here: gdb takes the program's raise(SIGTRAP) as its own
    // trap and does not pass it, so the handler never runs.)
    for mode in ["block", "ignore"] {
        let script = ["break trap_site", "continue", "continue"];
        let cmp = compare_and_check(&p, &[mode], &script, normalise_gdb_output, |o| {
            o.assert_stdout_contains("Breakpoint 1, trap_site () at ");
            o.assert_stdout_contains("exited normally]");
            assert_eq!(o.marks(), ["disposition=dfl", "calls=1", "blocked=0", "handler-runs=0"], "{mode}\n{o}");
        });
        cmp.assert_same();
    }
}

// ---------------------------------------------------------------------------
// 7. Attach + detach
// ---------------------------------------------------------------------------

#[test]
fn attach_breakpoint_detach_keeps_process_running() {
    let spin = Spin::start();
    let tick = spin.sym("spin_tick");
    let orig = spin.mem(tick, 16);
    assert_ne!(orig[0], 0xcc);
    let target = pipe_target(&[
        xol_bin().into(),
        "serve".into(),
        "--stdio".into(),
        "--attach".into(),
        spin.pid.to_string().into(),
    ]);
    let s = gdb_session(
        "xol --attach",
        Some(&spin.path),
        &owned(&[&target, "break spin_tick", "continue", "bt", "info inferiors", "detach"]),
    );
    s.assert_stdout_contains("Breakpoint 1, spin_tick () at ");
    s.assert_stdout_contains(" in main () at ");
    s.assert_stdout_contains(&format!("process {}", spin.pid));
    s.assert_stdout_contains(&format!("[Inferior 1 (process {}) detached]", spin.pid));
    let ctx = s.to_string();
    spin.assert_runs_on(&[(tick, orig)], &ctx);
}

// ---------------------------------------------------------------------------
// 8. kill and disconnect
// ---------------------------------------------------------------------------

/// `[xol, serve, --stdio, --, prog, args]`.
fn xol_stdio_argv(prog: &Path, args: &[&str]) -> Vec<OsString> {
    let mut v: Vec<OsString> = vec![xol_bin().into(), "serve".into(), "--stdio".into(), "--".into()];
    v.push(prog.into());
    v.extend(args.iter().map(OsString::from));
    v
}

#[test]
fn kill_in_gdb_kills_launched_program() {
    let l = fixture("loop");
    let mut servers = vec![("xol", xol_stdio_argv(&l, &["3"]))];
    if let Some(gs) = gdbserver_path() {
        servers.insert(0, ("gdbserver", vec![gs.into(), "-".into(), l.clone().into(), "3".into()]));
    }
    for (name, argv) in servers {
        let mut g = InteractiveGdb::spawn(&l);
        g.cmd(&pipe_target(&argv));
        g.cmd("break probe_site");
        let out = g.cmd("continue");
        assert!(out.contains("Breakpoint 1, probe_site (x=0)"), "{name}: {out}\n{}", g.dump());
        let inf = guard_procs_running(&g.guard, &l);
        assert_eq!(inf.len(), 1, "{name}: inferior processes {inf:?}\n{}", g.dump());
        let pid = inf[0];
        let out = g.cmd("kill");
        assert!(out.contains(&format!("[Inferior 1 (process {pid}) killed]")), "{name}: {out}\n{}", g.dump());
        assert!(
            wait_until(T, || !pid_alive(pid)),
            "{name}: inferior {pid} survived `kill` (state {:?})\n{}",
            proc_state(pid),
            g.dump()
        );
        // gdb dropped the connection: the server exits too, and nothing of
        // the session is left but gdb itself.
        assert!(
            wait_until(T, || g.guard.leftover_processes().is_empty()),
            "{name}: processes left after kill: {:?}\n{}",
            g.guard.leftover_processes(),
            g.dump()
        );
    }
}

#[test]
fn gdb_killed_server_kills_launched_program() {
    let l = fixture("loop");
    // Not run against gdbserver for reference: GNU gdbserver 13 in stdio
    // mode does not notice EOF on stdin; it spins at 100% CPU polling the
    // hung-up fd, keeping the program stopped forever.
    let servers = vec![("xol", xol_stdio_argv(&l, &["3"]))];
    for (name, argv) in servers {
        let server_exe = PathBuf::from(&argv[0]);
        let mut g = InteractiveGdb::spawn(&l);
        g.cmd("set breakpoint always-inserted on");
        g.cmd(&pipe_target(&argv));
        g.cmd("break probe_site");
        let out = g.cmd("continue");
        assert!(out.contains("Breakpoint 1, probe_site (x=0)"), "{name}: {out}\n{}", g.dump());
        let inf = guard_procs_running(&g.guard, &l);
        assert_eq!(inf.len(), 1, "{name}: inferior processes {inf:?}\n{}", g.dump());
        let srv = guard_procs_running(&g.guard, &server_exe);
        assert_eq!(srv.len(), 1, "{name}: server processes {srv:?}\n{}", g.dump());
        // gdb vanishes without a word: the server sees EOF on stdin.
        g.guard.signal(libc::SIGKILL);
        g.guard.expect_exit(T);
        assert!(
            wait_until(T, || !pid_alive(srv[0])),
            "{name}: server {} still running after gdb died\n{}",
            srv[0],
            g.dump()
        );
        assert!(
            wait_until(T, || !pid_alive(inf[0])),
            "{name}: launched program {} still exists after gdb and the server went away (state {:?})\n{}",
            inf[0],
            proc_state(inf[0]),
            g.dump()
        );
        let left = guard_procs_running(&g.guard, &l);
        assert!(left.is_empty(), "{name}: {left:?}\n{}", g.dump());
    }
}

#[test]
fn gdb_killed_server_detaches_attached_program() {
    let spin = Spin::start();
    let tick = spin.sym("spin_tick");
    let orig = spin.mem(tick, 16);
    let mut g = InteractiveGdb::spawn(&spin.path);
    g.cmd("set breakpoint always-inserted on");
    g.cmd(&pipe_target(&[
        xol_bin().into(),
        "serve".into(),
        "--stdio".into(),
        "--attach".into(),
        spin.pid.to_string().into(),
    ]));
    g.cmd(&format!("break *{tick:#x}"));
    let out = g.cmd("continue");
    assert!(out.contains("Breakpoint 1, spin_tick ()"), "{out}\n{}", g.dump());
    // gdb prints monitor output on its stderr.
    g.cmd("monitor breakpoints");
    let want = format!("{tick:#x}  owners: gdb");
    assert!(
        wait_until(T, || g.err.text().contains(&want)),
        "monitor breakpoints does not list the always-inserted breakpoint ({want:?})\n{}",
        g.dump()
    );
    let srv = guard_procs_running(&g.guard, &xol_bin());
    assert_eq!(srv.len(), 1, "{srv:?}\n{}", g.dump());
    g.guard.signal(libc::SIGKILL);
    g.guard.expect_exit(T);
    assert!(wait_until(T, || !pid_alive(srv[0])), "xol {} still running after gdb died\n{}", srv[0], g.dump());
    let ctx = g.dump();
    spin.assert_runs_on(&[(tick, orig)], &ctx);
}

#[test]
fn xol_sigterm_detaches_attached_program() {
    let spin = Spin::start();
    // on_term runs only when spin gets SIGTERM: a breakpoint there is never
    // hit while xol is attached, and a leftover int3 would kill spin with
    // SIGTRAP when the test finally sends it SIGTERM.
    let on_term = spin.sym("on_term");
    let tick = spin.sym("spin_tick");
    let orig_term = spin.mem(on_term, 16);
    let orig_tick = spin.mem(tick, 16);
    let argv: Vec<OsString> =
        vec![xol_bin().into(), "serve".into(), "--stdio".into(), "--attach".into(), spin.pid.to_string().into()];
    let mut c = RspClient::spawn(&argv);
    c.q_supported();
    // Like gdb: no-ack mode (see `ack_mode_resume_is_acked` for ack mode).
    c.no_ack_mode();
    let stop = c.request("?");
    assert!(StopReply::parse(&stop).is_some(), "{stop}");
    assert_eq!(c.request(&format!("Z0,{on_term:x},1")), "OK");
    assert_eq!(c.read_mem(on_term, 16), orig_term, "m hides the int3");
    c.send("vCont;c").unwrap();
    // The breakpoint is really in the running process's text.
    assert!(
        wait_until(T, || spin.mem(on_term, 1)[0] == 0xcc),
        "no int3 at on_term while running: {:x?}\n{}",
        spin.mem(on_term, 16),
        c.server_stderr()
    );
    c.guard().signal(libc::SIGTERM);
    let st = c.wait_exit(T);
    assert!(st.is_some(), "xol ignored SIGTERM\n{}", c.server_stderr());
    let ctx = format!("xol exit: {:?}\n--- xol stderr ---\n{}", st, c.server_stderr());
    spin.assert_runs_on(&[(on_term, orig_term), (tick, orig_tick)], &ctx);
}

// ---------------------------------------------------------------------------
// 9. TCP
// ---------------------------------------------------------------------------

#[test]
fn tcp_once_basic_breakpoints() {
    let l = fixture("loop");
    let script = ["break probe_site", "continue", "bt", "continue", "info breakpoints", "delete", "continue"];
    let check = |o: &GdbOutput| {
        o.assert_stdout_contains("Breakpoint 1, probe_site (x=0) at ");
        o.assert_stdout_contains("Breakpoint 1, probe_site (x=1) at ");
        o.assert_stdout_contains(" in main (argc=2, argv=0x");
        o.assert_stdout_contains("breakpoint already hit 2 times");
        o.assert_stdout_contains("exited normally]");
        assert!(o.has_mark("sum=312"), "{o}");
    };
    let x = gdb_batch(Server::XolTcp, &l, &["3"], &script);
    check(&x);
    if gdbserver_available() {
        let g = gdb_batch(Server::GdbserverStdio, &l, &["3"], &script);
        check(&g);
        let (gn, xn) = (normalise_gdb_output(&g.stdout), normalise_gdb_output(&x.stdout));
        assert!(gn == xn, "{}\n{g}\n{x}", line_diff(&gn, &xn, "gdbserver", "xol tcp"));
    }
}

// ---------------------------------------------------------------------------
// 10. extended-remote
// ---------------------------------------------------------------------------

/// `info inferiors` has a `Connection` column naming the server command
/// line: replace it, and squeeze runs of spaces (the column widths follow).
fn normalise_conn(s: &str) -> String {
    let n = normalise_gdb_output(s);
    let mut out = String::new();
    for line in n.lines() {
        let mut l = line.to_string();
        for kind in ["(extended-remote ", "(remote "] {
            if let Some(p) = l.find(kind) {
                if let Some(q) = l[p..].find(") ") {
                    l.replace_range(p..p + q + 1, &format!("{kind}SERVER)"));
                }
            }
        }
        let squeezed = l.split(' ').filter(|w| !w.is_empty()).collect::<Vec<_>>().join(" ");
        out.push_str(&squeezed);
        out.push('\n');
    }
    out
}

/// Pids in `process N` of `info inferiors` lines and `$k = N` prints.
fn pids_in(sec: &str) -> (Vec<u32>, Vec<u32>) {
    let mut inf = Vec::new();
    let mut printed = Vec::new();
    for l in sec.lines() {
        if let Some(p) = l.find("process ") {
            if l.trim_start().starts_with('*') || l.trim_start().starts_with(char::is_numeric) {
                let d: String = l[p + 8..].chars().take_while(char::is_ascii_digit).collect();
                if let Ok(n) = d.parse() {
                    inf.push(n);
                }
            }
        }
        if l.starts_with('$') {
            if let Some((_, v)) = l.split_once(" = ") {
                if let Ok(n) = v.trim().parse() {
                    printed.push(n);
                }
            }
        }
    }
    (inf, printed)
}

fn extended_remote_session(label: &str, server: &[OsString]) -> String {
    let l = fixture("loop");
    let spin = Spin::start();
    let target = format!("target extended-remote | {}", shell_join(server));
    let cmds = owned(&[
        &target,
        &format!("set remote exec-file {}", l.display()),
        &format!("file {}", l.display()),
        "set args 3",
        "break probe_site",
        "run",
        "continue",
        "echo ==RUN1==\\n",
        "info inferiors",
        "p (int)getpid()",
        "kill",
        "echo ==RUN2==\\n",
        "run",
        "info inferiors",
        "p (int)getpid()",
        "delete",
        "continue",
        "echo ==ATTACH==\\n",
        &format!("file {}", spin.path.display()),
        &format!("attach {}", spin.pid),
        "info inferiors",
        "detach",
        "echo ==END==\\n",
        "info inferiors",
    ]);
    let s = gdb_session(label, None, &cmds);
    let out = &s.stdout;
    let r1 = section(out, "RUN1");
    let r2 = section(out, "RUN2");
    let at = section(out, "ATTACH");
    assert!(out.contains("Breakpoint 1, probe_site (x=1)"), "{s}");
    let (inf1, p1) = pids_in(r1);
    let (inf2, p2) = pids_in(r2);
    assert!(inf1.len() == 1 && p1 == inf1, "run 1: info inferiors {inf1:?} vs getpid {p1:?}\n{s}");
    assert!(r1.contains(&format!("[Inferior 1 (process {}) killed]", inf1[0])), "{s}");
    assert!(!pid_alive(inf1[0]), "first run's process {} survived kill\n{s}", inf1[0]);
    assert!(r2.contains("Breakpoint 1, probe_site (x=0)"), "second run\n{s}");
    assert!(
        inf2.len() == 1 && p2 == inf2 && inf2 != inf1,
        "run 2: info inferiors {inf2:?} vs getpid {p2:?} (run 1 was {inf1:?})\n{s}"
    );
    assert!(r2.contains("exited normally]"), "{s}");
    assert!(s.has_mark("sum=312"), "{s}");
    assert!(at.contains(&format!("process {}", spin.pid)), "attach\n{s}");
    assert!(at.contains(&format!("[Inferior 1 (process {}) detached]", spin.pid)), "{s}");
    let tick = spin.sym("spin_tick");
    let orig = read_proc_mem(spin.pid, tick, 16);
    let ctx = s.to_string();
    spin.assert_runs_on(&[(tick, orig)], &ctx);
    s.stdout
}

#[test]
fn extended_remote_run_kill_run_attach() {
    // Where the attach stops (usually in clock_nanosleep, but it may be
    // anywhere in spin's loop) is not deterministic: compare the output up
    // to the attach exactly.
    let upto_attach = |s: &str| {
        // `p (int)getpid()` prints the (different) pids: they are checked
        // against `info inferiors` above.
        let n = normalise_conn(s);
        n[..n.find("==ATTACH==").unwrap()].lines().filter(|l| !l.starts_with('$')).collect::<Vec<_>>().join("\n")
    };
    let reference = gdbserver_path().map(|gs| {
        let label = "gdbserver --multi -";
        (label, extended_remote_session(label, &[gs.into(), "--multi".into(), "-".into()]))
    });
    let xols: [(&str, Vec<OsString>); 2] = [
        ("xol serve --stdio --multi", vec![xol_bin().into(), "serve".into(), "--stdio".into(), "--multi".into()]),
        ("xol-gdbserver --multi -", vec![xol_gdbserver_bin().into(), "--multi".into(), "-".into()]),
    ];
    for (label, argv) in xols {
        let out = extended_remote_session(label, &argv);
        if let Some((glabel, gout)) = &reference {
            let (g, x) = (upto_attach(gout), upto_attach(&out));
            assert!(
                g == x,
                "extended-remote output differs ({label}):\n{}\n--- {glabel} ---\n{gout}\n--- {label} ---\n{out}",
                line_diff(&g, &x, glabel, label)
            );
        }
    }
}

// ---------------------------------------------------------------------------
// 11. xol-gdbserver's command line
// ---------------------------------------------------------------------------

#[test]
fn xol_gdbserver_stdio_basic() {
    let l = fixture("loop");
    let script = ["break probe_site", "continue", "bt", "delete", "continue"];
    let o = gdb_batch(Server::XolGdbserverStdio, &l, &["5", "3"], &script);
    o.assert_stdout_contains("Breakpoint 1, probe_site (x=0) at ");
    o.assert_stdout_contains(" in main (argc=3, argv=0x");
    o.assert_stdout_contains("exited with code 03]");
    assert!(o.has_mark("sum=535"), "{o}");
    if gdbserver_available() {
        let g = gdb_batch(Server::GdbserverStdio, &l, &["5", "3"], &script);
        let (gn, xn) = (normalise_gdb_output(&g.stdout), normalise_gdb_output(&o.stdout));
        assert!(gn == xn, "{}\n{g}\n{o}", line_diff(&gn, &xn, "gdbserver", "xol-gdbserver"));
    }
}

#[test]
fn xol_gdbserver_wrapper_sets_environment() {
    let l = fixture("loop");
    let opts = GdbOpts {
        server_args: vec!["--wrapper".into(), "env".into(), "FOO=1".into(), "--".into()],
        ..GdbOpts::default()
    };
    let script = ["break main", "continue", "p (char*)getenv(\"FOO\")", "info inferiors", "continue"];
    let check = |o: &GdbOutput| {
        o.assert_stdout_contains("Breakpoint 1, main (argc=2, ");
        o.assert_stdout_contains("$1 = 0x");
        o.assert_stdout_contains(" \"1\"\n");
        // The debugged process is the program, not the wrapper.
        o.assert_stdout_contains("/loop");
        o.assert_stdout_contains("exited normally]");
        assert!(o.has_mark("sum=205"), "{o}");
    };
    let x = gdb_batch_opts(Server::XolGdbserverStdio, &l, &["2"], &script, &opts);
    check(&x);
    if gdbserver_available() {
        let g = gdb_batch_opts(Server::GdbserverStdio, &l, &["2"], &script, &opts);
        check(&g);
        let (gn, xn) = (normalise_conn(&g.stdout), normalise_conn(&x.stdout));
        assert!(gn == xn, "{}\n{g}\n{x}", line_diff(&gn, &xn, "gdbserver", "xol-gdbserver"));
    }
}

/// Starts `SERVER [opts] 127.0.0.1:0 PROG ARGS` and returns it with its
/// stderr reader and port.
fn start_tcp_server(argv: &[OsString]) -> (ChildGuard, LineReader, u16) {
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..]).stdin(Stdio::null()).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut g = ChildGuard::spawn(&mut cmd);
    let mut err = LineReader::new(g.stderr.take().unwrap());
    let line = err
        .wait_for_match(T, |l| parse_listening_port(l).is_some())
        .unwrap_or_else(|e| panic!("{argv:?} never printed `Listening on port N`: {e}"));
    let port = parse_listening_port(&line).unwrap();
    (g, err, port)
}

/// `--once`: after gdb disconnects the server exits (killing the program);
/// without it, it listens again and a second gdb can continue the session.
fn once_semantics(label: &str, server: &OsString) {
    let l = fixture("loop");
    let tcp_argv = |once: bool| {
        let mut v: Vec<OsString> = vec![server.clone()];
        if once {
            v.push("--once".into());
        }
        v.extend(["127.0.0.1:0".into(), l.clone().into(), "3".into()]);
        v
    };
    let first = |port: u16| {
        gdb_session(
            label,
            Some(&l),
            &owned(&[&format!("target remote 127.0.0.1:{port}"), "break probe_site", "continue", "disconnect"]),
        )
    };

    // --once
    let (mut g, mut err, port) = start_tcp_server(&tcp_argv(true));
    let s = first(port);
    s.assert_stdout_contains("Breakpoint 1, probe_site (x=0)");
    let st = g.wait_timeout(T);
    assert!(
        st.is_some(),
        "{label} --once still running after gdb disconnected\n{s}\n--- server stderr ---\n{}",
        err.text()
    );
    assert!(
        wait_until(T, || guard_procs_running(&g, &l).is_empty()),
        "{label} --once left the program running\n{}",
        err.text()
    );

    // without --once
    let (mut g, mut err, port) = start_tcp_server(&tcp_argv(false));
    let s = first(port);
    s.assert_stdout_contains("Breakpoint 1, probe_site (x=0)");
    let relisten = err.wait_for_match(T, |l| parse_listening_port(l).is_some());
    assert!(relisten.is_ok(), "{label} without --once did not listen again after gdb disconnected: {relisten:?}\n{s}");
    let port2 = parse_listening_port(&relisten.unwrap()).unwrap();
    assert!(g.is_running(), "{label}");
    let s2 = gdb_session(
        label,
        Some(&l),
        &owned(&[&format!("target remote 127.0.0.1:{port2}"), "break probe_site", "continue", "delete", "continue"]),
    );
    s2.assert_stdout_contains("Breakpoint 1, probe_site (x=1)");
    s2.assert_stdout_contains("exited normally]");
    let st = g.wait_timeout(T);
    assert!(st.is_some(), "{label}: server still running after the program exited\n{}", err.text());
}

/// `xol serve 127.0.0.1:0 -- spin`; a gdb connects, runs `cmds`, then `continue`, and is
/// SIGKILLed once spin is seen running. Returns the server, its stderr, its port and spin's pid.
fn gdb_vanishes_mid_run(spin: &Path, cmds: &[&str]) -> (ChildGuard, LineReader, u16, u32) {
    let argv: Vec<OsString> = vec![xol_bin().into(), "serve".into(), "127.0.0.1:0".into(), "--".into(), spin.into()];
    let (server, err, port) = start_tcp_server(&argv);
    let created = err.seen().iter().find_map(|l| l.split("created; pid = ").nth(1).map(str::to_string));
    let pid: u32 = created.and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("no pid in {:?}", err.seen()));
    let ticks_addr = symbol_addr(spin, "g_ticks");
    let ticks = || u64::from_le_bytes(read_proc_mem(pid, ticks_addr, 8).try_into().unwrap());
    let mut g = InteractiveGdb::spawn(spin);
    g.cmd(&format!("target remote 127.0.0.1:{port}"));
    for c in cmds {
        g.cmd(c);
    }
    // `continue` does not come back while spin runs: write it without waiting for the tag.
    let w = g.stdin.as_mut().unwrap();
    w.write_all(b"continue\n").and_then(|_| w.flush()).unwrap();
    let t0 = ticks();
    assert!(wait_until(T, || ticks() > t0 + 5), "spin does not run under gdb's continue\n{}", g.dump());
    g.guard.signal(libc::SIGKILL);
    g.guard.expect_exit(T);
    (server, err, port, pid)
}

/// A TCP server without `--once` outlives gdb: when gdb vanishes while the launched program
/// runs, xol keeps the program (running on, still traced) and listens again (README.md, "What
/// happens when things go away"); a termination signal then kills the launched program.
#[test]
fn tcp_server_keeps_running_program_when_gdb_vanishes() {
    let spin = fixture("spin");
    let (mut server, mut err, port, pid) = gdb_vanishes_mid_run(&spin, &["break exit"]);
    let ticks_addr = symbol_addr(&spin, "g_ticks");
    let ticks = || u64::from_le_bytes(read_proc_mem(pid, ticks_addr, 8).try_into().unwrap());
    let relisten = err.wait_for_match(T, |l| parse_listening_port(l).is_some());
    assert!(relisten.is_ok(), "xol did not listen again after gdb vanished: {relisten:?}");
    assert!(server.is_running(), "xol exited when gdb vanished\n{}", err.text());
    assert_eq!(tracer_pid(pid), Some(server.pid()), "the program is still xol's");
    let t1 = ticks();
    assert!(wait_until(T, || ticks() > t1 + 5), "the program does not run on (state {:?})", proc_state(pid));
    // The next gdb finds the program stopped, as after an attach, with none of the lost gdb's
    // breakpoints left in it; it detaches and the program runs on untraced.
    let mut cmd = Command::new(gdb_bin());
    cmd.args(["-nx", "-batch", "-iex", "set debuginfod enabled off"]);
    for c in [format!("target remote 127.0.0.1:{port}"), "bt 1".into(), "monitor breakpoints".into(), "detach".into()] {
        cmd.arg("-ex").arg(c);
    }
    cmd.arg(&spin);
    let out = run_with_timeout(cmd, T);
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("#0 ") && !text.contains("Could not read registers"), "second gdb:\n{text}");
    assert!(!text.contains("owners: gdb"), "the lost gdb's breakpoints remain:\n{text}");
    assert!(text.contains("detached"), "{text}");
    assert!(wait_until(T, || tracer_pid(pid) == Some(0)), "still traced after the detach");
    let t2 = ticks();
    assert!(wait_until(T, || ticks() > t2 + 5), "the program does not run on after the detach");
    // With its program detached, a server without --multi is done (as gdbserver).
    assert!(server.wait_timeout(T).is_some(), "xol did not exit after the detach\n{}", err.text());
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    assert!(wait_until(T, || !pid_alive(pid)), "the detached program could not be cleaned up");
}

/// SIGTERM to a TCP server that listens again (gdb vanished) kills the program it launched.
#[test]
fn tcp_server_listening_again_ends_its_program_on_sigterm() {
    let spin = fixture("spin");
    let (mut server, mut err, _port, pid) = gdb_vanishes_mid_run(&spin, &[]);
    assert!(err.wait_for_match(T, |l| parse_listening_port(l).is_some()).is_ok(), "xol did not listen again");
    server.signal(libc::SIGTERM);
    assert!(server.wait_timeout(T).is_some(), "xol ignored SIGTERM\n{}", err.text());
    assert!(
        wait_until(T, || !pid_alive(pid)),
        "the launched program survived xol's SIGTERM (state {:?})",
        proc_state(pid)
    );
}

#[test]
fn xol_gdbserver_once() {
    if let Some(gs) = gdbserver_path() {
        once_semantics("gdbserver", &gs.into());
    }
    once_semantics("xol-gdbserver", &xol_gdbserver_bin().into());
}

/// Runs `xol-gdbserver ARGS` (stdin /dev/null) and returns status, stdout,
/// stderr; checks nothing of it is left running.
fn run_xgs(args: &[&str]) -> (ExitStatus, String, String) {
    let mut cmd = Command::new(xol_gdbserver_bin());
    cmd.args(args).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut g = ChildGuard::spawn(&mut cmd);
    let out = Collector::new(g.stdout.take().unwrap());
    let err = Collector::new(g.stderr.take().unwrap());
    let st = g.wait_timeout(T);
    let Some(st) = st else {
        panic!("xol-gdbserver {args:?} did not exit\n--- stdout ---\n{}\n--- stderr ---\n{}", out.text(), err.text());
    };
    out.wait_eof(T);
    err.wait_eof(T);
    assert!(
        wait_until(T, || g.leftover_processes().is_empty()),
        "xol-gdbserver {args:?} left processes behind: {:?}\n{}",
        g.leftover_processes(),
        err.text()
    );
    (st, out.text(), err.text())
}

#[test]
fn xol_gdbserver_unknown_option() {
    let l = fixture("loop");
    let (st, out, err) = run_xgs(&["--bogus-option", "-", l.to_str().unwrap()]);
    assert!(!st.success() && st.code().is_some(), "{st:?}\n{out}{err}");
    assert!(err.contains("--bogus-option"), "error does not name the option:\n{err}");
    // gdbserver says `Unknown argument: --bogus-option` (exit 1).
}

#[test]
fn xol_gdbserver_missing_program() {
    let (st, out, err) = run_xgs(&["-", "/nonexistent/xol-test/no-such-prog"]);
    assert!(!st.success() && st.code().is_some(), "{st:?}\n{out}{err}");
    // gdbserver starts programs through a shell and reports
    // `During startup program exited with code 127.`; xol execs directly
    // and reports gdbserver's message for a failed fork/exec.
    assert!(err.contains("Error creating process"), "{out}{err}");
}

#[test]
fn xol_gdbserver_selftest() {
    let (st, out, err) = run_xgs(&["--selftest"]);
    assert!(st.success(), "{st:?}\n{out}{err}");
    assert_eq!(out, "Selftests have been disabled for this build.\n", "{err}");
}

#[test]
fn xol_gdbserver_bad_comm() {
    let l = fixture("loop");
    let (st, out, err) = run_xgs(&["garbage:1234:999", l.to_str().unwrap()]);
    assert!(!st.success() && st.code().is_some(), "{st:?}\n{out}{err}");
    assert!(err.contains("cannot resolve name"), "{out}{err}");
    assert!(err.contains("garbage:1234:999"), "{out}{err}");
}

/// In ack mode (before / without `QStartNoAckMode`) every packet must be
/// acknowledged with `+` on receipt, including a resume whose reply (the
/// stop) comes much later.
#[test]
fn ack_mode_resume_is_acked() {
    let spin = Spin::start();
    let argv: Vec<OsString> =
        vec![xol_bin().into(), "serve".into(), "--stdio".into(), "--attach".into(), spin.pid.to_string().into()];
    let mut c = RspClient::spawn(&argv);
    c.q_supported();
    let stop = c.request("?");
    assert!(StopReply::parse(&stop).is_some(), "{stop}");
    // spin never stops by itself: the `+` is all that can come back.
    c.set_timeout(Duration::from_secs(5));
    let r = c.send("vCont;c");
    assert!(r.is_ok(), "no `+` for vCont;c in ack mode: {r:?}\n{}", c.server_stderr());
    c.interrupt();
    c.set_timeout(T);
    let stop = c.recv().unwrap();
    let sr = StopReply::parse(&stop).unwrap_or_else(|| panic!("{stop}"));
    assert_eq!(sr.kind, 'T', "{stop}");
    assert_eq!(c.request("D"), "OK");
    let tick = spin.sym("spin_tick");
    let orig = spin.mem(tick, 16);
    spin.assert_runs_on(&[(tick, orig)], &c.server_stderr());
}

// ---------------------------------------------------------------------------
// monitor exit
// ---------------------------------------------------------------------------

/// A `--multi` TCP server outlives gdb's disconnection; `monitor exit` ends it.
fn monitor_exit_ends(label: &str, argv: &[OsString]) {
    let (mut g, mut err, port) = start_tcp_server(argv);
    let s = gdb_session(
        label,
        None,
        &owned(&[&format!("target extended-remote 127.0.0.1:{port}"), "info inferiors", "disconnect"]),
    );
    s.assert_stdout_contains("<null>");
    let relisten = err.wait_for_match(T, |l| parse_listening_port(l).is_some());
    assert!(relisten.is_ok(), "{label}: --multi server did not listen again: {relisten:?}\n{s}");
    assert!(g.is_running(), "{label}: --multi server exited when gdb disconnected\n{s}");
    let port = parse_listening_port(&relisten.unwrap()).unwrap();
    let s = gdb_session(label, None, &owned(&[&format!("target extended-remote 127.0.0.1:{port}"), "monitor exit"]));
    let st = g.wait_timeout(T);
    assert!(st.is_some(), "{label}: still running after `monitor exit`\n{s}\n--- server stderr ---\n{}", err.text());
}

#[test]
fn monitor_exit_ends_multi_server() {
    if let Some(gs) = gdbserver_path() {
        monitor_exit_ends("gdbserver", &[gs.into(), "--multi".into(), "127.0.0.1:0".into()]);
    }
    monitor_exit_ends("xol serve", &[xol_bin().into(), "serve".into(), "127.0.0.1:0".into(), "--multi".into()]);
    monitor_exit_ends("xol-gdbserver", &[xol_gdbserver_bin().into(), "--multi".into(), "127.0.0.1:0".into()]);
}

// ---------------------------------------------------------------------------
// Regressions: exited thread-group leaders, re-running a threaded program
// ---------------------------------------------------------------------------

/// The leader exits with pthread_exit while a worker runs on: a zombie leader
/// must not make xol wait forever when it stops the world at a breakpoint.
#[test]
fn zombie_leader_does_not_hang_stops() {
    let z = fixture("zombie");
    let script = ["break zombie_work", "continue", "continue", "continue", "delete", "continue"];
    // gdbserver names the thread in hit lines (qXfer:threads); xol cannot (see docs/protocol.md).
    fn without_thread_names(s: &str) -> String {
        normalise_gdb_output(s).replace("Thread TID \"zombie\" hit", "Thread TID hit")
    }
    let cmp = compare_and_check(&z, &["3"], &script, without_thread_names, |o| {
        assert_eq!(count_lines(&o.stdout, "hit Breakpoint 1, zombie_work"), 3, "{o}");
        o.assert_stdout_contains("exited with code 05]");
        assert!(o.has_mark("worker-done work=3"), "{o}");
    });
    cmp.assert_same();
}

/// `run` again while a multi-threaded process is stopped kills it first: every
/// thread must be reaped (the leader is reported last), then the new run starts.
#[test]
fn extended_remote_rerun_of_threaded_program() {
    let t = fixture("threads");
    for argv in [
        vec![xol_bin().into_os_string(), "serve".into(), "--stdio".into(), "--multi".into()],
        vec![xol_gdbserver_bin().into_os_string(), "--multi".into(), "-".into()],
    ] {
        let label = argv[0].to_string_lossy().into_owned();
        let cmds = owned(&[
            &format!("target extended-remote | {}", shell_join(&argv)),
            &format!("set remote exec-file {}", t.display()),
            &format!("file {}", t.display()),
            "break at_barrier",
            "run",
            "echo ==RERUN==\\n",
            "run",
            "info threads",
            "delete",
            "continue",
        ]);
        let s = gdb_session(&label, None, &cmds);
        let rerun = section(&s.stdout, "RERUN");
        assert!(rerun.contains("hit Breakpoint 1, at_barrier"), "{s}");
        assert!(rerun.contains("worker-"), "{s}");
        assert!(rerun.contains("exited normally]"), "{s}");
    }
}
