//! `xol verify-steps`: differential verification of displaced stepping.
//!
//! The program is launched (ASLR off) and run to `main`. Then every candidate instruction — the
//! program's `insn_*` labels, the first instructions of every function of the program and, with
//! `--libc`, of the C library — is executed from a synthetic machine state several times: once
//! single-stepped **in line** (the reference: the original instruction runs where it is), once
//! single-stepped **displaced** (emulated, or its copy stepped out of line from its slot and fixed
//! up), and, when the instruction falls through, once more by **continuing** from an `int3` on it
//! to a breakpoint on the next instruction (the probe path: emulated, boosted or stepped, then
//! resumed without a stop). The stop, every general register, the flags, the x87/SSE state, the
//! upper halves of the ymm registers and the snapshotted memory must be identical.
//!
//! The synthetic state points every general-purpose register into `scratch`, a buffer the host
//! program owns (a global symbol with a size), `rsp` into its middle; `rip` is the candidate.
//! Between runs the registers and all snapshotted memory (the scratch buffer and the writable
//! segments of the program and, with `--libc`, of libc, from their ELF program headers) are
//! restored. Each instruction runs under two states that differ in the flags (`0x202`, and
//! `0xad7`: CF PF AF ZF SF OF set) and in the register values (aligned, then 8 bytes off), so
//! conditional branches go both ways and alignment-checking moves both succeed and fault.
//!
//! Only the `Debugger` facade is used, plus the plain data types the facade's `resume`/`wait`
//! take (`Action`, `WaitOutcome`). A watchdog thread sends SIGKILL to an inferior that does not
//! come back from one candidate within the timeout; the program is then relaunched.

use crate::debugger::{Action, WaitOutcome};
use crate::debugger::{Debugger, Launch, Location, PlanKind, StepMode, StepStats, StopKind};
use crate::types::{Owner, Pid, Tid, VirtAddr};
use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use xol_arch::displaced::{self, Plan, MAX_INSN_LEN};
use xol_arch::regs::RegisterFile;

/// Flag bits not compared: none so far (see docs/displaced-stepping.md). Kept as a named mask
/// so any kernel difference in RF/TF handling is documented in one place.
pub const EFLAGS_IGNORED: u64 = 0;

/// The two flag states every instruction runs under.
pub const FLAG_STATES: [u64; 2] = [0x202, 0xad7];

/// How many leading instructions of each function are checked.
pub const INSNS_PER_FUNCTION: usize = 3;

/// Breakpointed addresses per launch before the program is relaunched (fresh slot area: slots
/// are never reused within a process, and the area holds 1024).
const SITES_PER_LAUNCH: usize = 900;

/// Mnemonics whose result differs from run to run by nature; never compared.
const NONDETERMINISTIC: &[&str] = &["rdtsc", "rdtscp", "rdrand", "rdseed", "rdpid", "rdpmc", "cpuid"];

/// Options of `xol verify-steps`.
#[derive(Debug, Clone)]
pub struct Options {
    /// Also check the first instructions of every libc function.
    pub libc: bool,
    /// Check at most this many candidate instructions (labels first).
    pub max: Option<usize>,
    /// Print JSON instead of text.
    pub json: bool,
    /// Per-candidate timeout.
    pub timeout: Duration,
    /// The host program and its arguments.
    pub program: Vec<OsString>,
}

/// Where a candidate comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// An `insn_*` label of the program.
    Label,
    /// The start of a function of the program.
    Program,
    /// The start of a libc function.
    Libc,
}

impl Source {
    fn name(self) -> &'static str {
        match self {
            Source::Label => "labels",
            Source::Program => "program",
            Source::Libc => "libc",
        }
    }
}

/// One instruction to check.
#[derive(Debug, Clone)]
pub struct Candidate {
    /// Its address.
    pub addr: u64,
    /// `symbol+offset` (or the label).
    pub name: String,
    /// Where it comes from.
    pub source: Source,
}

/// A difference between the reference run and a displaced run.
#[derive(Debug, Clone)]
pub struct Mismatch {
    /// The instruction.
    pub addr: u64,
    /// `symbol+offset`.
    pub name: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
    /// Its mnemonic.
    pub mnemonic: String,
    /// Its plan kind.
    pub kind: PlanKind,
    /// `"step"` (displaced single-step) or `"continue"` (trap, displaced resume, next breakpoint).
    pub path: &'static str,
    /// The flag state it ran under.
    pub eflags: u64,
    /// What differs, one entry per register or memory range.
    pub diffs: Vec<String>,
    /// The open bug this mismatch is an instance of (see [`KNOWN_BUGS`]), if recognised.
    pub known: Option<&'static str>,
}

/// Bugs of displaced stepping this tool found (all fixed; docs/displaced-stepping.md §6), kept
/// so a regression is named when it comes back. A mismatch classified as one of these is still
/// a mismatch: it is reported and the exit status is 1.
pub const KNOWN_BUGS: &[(&str, &str)] = &[
    (
        "noncanonical-branch",
        "an emulated ret/jmp/call to a non-canonical address sets rip instead of raising #GP (SIGSEGV at the branch)",
    ),
    ("x87-fip", "an x87 instruction run from its slot leaves the slot's address in the FPU instruction pointer"),
    ("rep-stepi", "a displaced single-step of a rep string instruction runs every iteration, not one"),
    ("syscall-orig-rax", "after a displaced syscall, orig_rax is -1 instead of the system call number"),
];

fn is_canonical(a: u64) -> bool {
    let top = a >> 47;
    top == 0 || top == (1 << 17) - 1
}

/// Which open bug, if any, explains a mismatch.
fn classify(
    mnemonic: &str,
    code: &[u8],
    path: &str,
    addr: u64,
    a: &Outcome,
    b: &Outcome,
    diffs: &[String],
) -> Option<&'static str> {
    let only = |prefix: &str| !diffs.is_empty() && diffs.iter().all(|d| d.starts_with(prefix));
    if matches!(mnemonic, "ret" | "jmp" | "call")
        && a.kind == StopKind::Signal(11)
        && b.kind == StopKind::Step
        && !is_canonical(b.regs.gp.rip)
    {
        return Some("noncanonical-branch");
    }
    if only("fip (x87") {
        return Some("x87-fip");
    }
    if path == "step" && is_rep_string(code) && a.regs.gp.rip == addr && b.regs.gp.rip != addr {
        return Some("rep-stepi");
    }
    if mnemonic == "syscall" && only("orig_rax") {
        return Some("syscall-orig-rax");
    }
    None
}

/// Something that went wrong with the inferior itself (timeout, death, an error).
#[derive(Debug, Clone)]
pub struct Incident {
    /// The candidate being checked.
    pub addr: u64,
    /// `symbol+offset`.
    pub name: String,
    /// What happened.
    pub what: String,
}

/// The result of a verification run.
#[derive(Debug, Default)]
pub struct Report {
    /// The program.
    pub program: String,
    /// The libc checked, if any.
    pub libc: Option<String>,
    /// Candidates per source.
    pub candidates: BTreeMap<&'static str, usize>,
    /// Plans of all candidates, by kind.
    pub kinds: BTreeMap<String, usize>,
    /// Instructions compared, by plan kind.
    pub checked_kinds: BTreeMap<String, usize>,
    /// Instructions compared, by source.
    pub checked_sources: BTreeMap<&'static str, usize>,
    /// Runs compared (per instruction: 2 flag states x step, plus continue where it applies).
    pub comparisons: usize,
    /// Refusals: reason -> (count, example names).
    pub refusals: BTreeMap<String, (usize, Vec<String>)>,
    /// Skipped candidates: reason -> count.
    pub skipped: BTreeMap<String, usize>,
    /// Relaunches of the program.
    pub launches: usize,
    /// Inferior problems.
    pub incidents: Vec<Incident>,
    /// Differences found.
    pub mismatches: Vec<Mismatch>,
    /// The `insn_*` labels: (name, address, kind, mnemonic, bytes, status).
    pub labels: Vec<(String, u64, String, String, Vec<u8>, String)>,
    /// Wall time.
    pub seconds: f64,
}

/// Run `xol verify-steps` and print its report; returns the exit status (0: no mismatch).
pub fn run_cli(opts: &Options) -> i32 {
    match verify(opts) {
        Ok(r) => {
            if opts.json {
                println!("{}", r.to_json());
            } else {
                print!("{}", r.to_text());
            }
            if r.mismatches.is_empty() {
                0
            } else {
                1
            }
        }
        Err(e) => {
            eprintln!("xol verify-steps: {e:#}");
            2
        }
    }
}

// ---------------------------------------------------------------------------
// Helpers (pure)
// ---------------------------------------------------------------------------

/// Merge overlapping or touching ranges `(start, len)`.
fn merge_ranges(mut v: Vec<(u64, u64, String)>) -> Vec<(u64, u64, String)> {
    v.sort_by_key(|r| r.0);
    let mut out: Vec<(u64, u64, String)> = Vec::new();
    for (s, l, w) in v {
        if let Some(last) = out.last_mut() {
            if s <= last.0 + last.1 {
                let end = (last.0 + last.1).max(s + l);
                last.1 = end - last.0;
                if !last.2.contains(&w) {
                    last.2 = format!("{}+{w}", last.2);
                }
                continue;
            }
        }
        out.push((s, l, w));
    }
    out
}

fn hex_bytes(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
}

// ---------------------------------------------------------------------------
// The watchdog
// ---------------------------------------------------------------------------

/// Kills an inferior that does not come back in time (the facade's `wait` has no timeout).
struct Watchdog {
    tx: mpsc::Sender<Option<(i32, Duration)>>,
}

impl Watchdog {
    fn start() -> Watchdog {
        let (tx, rx) = mpsc::channel::<Option<(i32, Duration)>>();
        std::thread::spawn(move || {
            let mut armed: Option<(i32, Instant)> = None;
            loop {
                let msg = match armed {
                    Some((_, at)) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
                    None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                };
                match msg {
                    Ok(m) => armed = m.map(|(pid, d)| (pid, Instant::now() + d)),
                    Err(mpsc::RecvTimeoutError::Timeout) => {
                        if let Some((pid, _)) = armed.take() {
                            // SAFETY: kill(2) has no memory-safety preconditions.
                            let r = unsafe { libc::kill(pid, libc::SIGKILL) };
                            if r != 0 {
                                log::warn!("watchdog: kill {pid}: {}", std::io::Error::last_os_error());
                            }
                        }
                    }
                    Err(mpsc::RecvTimeoutError::Disconnected) => return,
                }
            }
        });
        Watchdog { tx }
    }

    fn arm(&self, pid: Pid, d: Duration) {
        let _ = self.tx.send(Some((pid.0, d)));
    }

    fn disarm(&self) {
        let _ = self.tx.send(None);
    }
}

// ---------------------------------------------------------------------------
// The inferior
// ---------------------------------------------------------------------------

/// A memory range that is snapshotted and restored.
#[derive(Debug, Clone)]
struct Region {
    start: u64,
    what: String,
    baseline: Vec<u8>,
    current: Vec<u8>,
}

/// Where things are in the host program (stable across launches: ASLR is off).
#[derive(Debug, Clone)]
struct Layout {
    main: u64,
    scratch: (u64, u64),
    regions: Vec<(u64, u64, String)>,
    libc: Option<(String, u64)>,
    exe: PathBuf,
}

/// One launched host program, stopped at `main`.
struct Host {
    dbg: Debugger,
    /// This tool, as a client of the core (the owner of its breakpoints).
    me: Owner,
    pid: Pid,
    tid: Tid,
    base: RegisterFile,
    regions: Vec<Region>,
    /// Addresses that got a breakpoint (so a site, and maybe a slot) in this process.
    used: HashSet<u64>,
}

fn err(what: impl Into<String>) -> anyhow::Error {
    anyhow::anyhow!(what.into())
}

fn mix(i: u64) -> u64 {
    let x = i.wrapping_add(0x9e37_79b9_7f4a_7c15).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    (x ^ (x >> 31)).wrapping_mul(0x94d0_49bb_1331_11eb) ^ (x >> 29)
}

/// The scratch buffer's contents: deterministic, in 16-byte units that alternate between two
/// pointers into the buffer itself (as a stack full of saved pointers would hold: a `ret` there
/// goes to a canonical address) and random bytes (a `ret` there goes to a non-canonical one).
fn scratch_fill(start: u64, len: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(len as usize);
    for q in 0..len / 8 {
        let v = if (q / 2) % 2 == 0 { start + ((mix(q) % len) & !15) } else { mix(q ^ 0x5555) };
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.resize(len as usize, 0x5a);
    out
}

impl Host {
    fn launch(program: &[OsString], want_libc: bool) -> anyhow::Result<(Host, Layout)> {
        let mut dbg = Debugger::new();
        let me = Owner::Client(dbg.new_client());
        let spec = Launch::new(program.to_vec());
        let pid = dbg.launch(&spec).map_err(|e| err(format!("cannot launch the program: {e}")))?;
        let tid = pid.leader();
        let main =
            dbg.resolve_location(pid, &Location::Symbol("main".into())).map_err(|e| err(format!("no main: {e}")))?;
        dbg.insert_breakpoint(pid, main, me).map_err(|e| err(format!("breakpoint at main: {e}")))?;
        dbg.resume(pid, &[], Some(Action::CONTINUE)).map_err(|e| err(format!("resume: {e}")))?;
        match dbg.wait(None).map_err(|e| err(format!("wait: {e}")))? {
            WaitOutcome::Stopped(ev) if ev.kind == StopKind::Breakpoint && ev.tid == tid => {}
            other => return Err(err(format!("the program did not stop at main ({main}): {other:?}"))),
        }
        dbg.remove_breakpoint(pid, main, me).map_err(|e| err(format!("removing main's breakpoint: {e}")))?;
        let base = dbg.read_registers(tid).map_err(|e| err(format!("registers: {e}")))?;

        let exe = dbg.exe(pid).map_err(|e| err(format!("executable: {e}")))?;
        let bytes = std::fs::read(&exe).map_err(|e| err(format!("cannot read {}: {e}", exe.display())))?;
        let syms = crate::symbols::symbols(&bytes).map_err(|e| err(format!("{}: {e}", exe.display())))?;
        let main_sym =
            syms.iter().find(|s| s.name == "main").ok_or_else(|| err(format!("{}: no symbol main", exe.display())))?;
        let bias = main.0.wrapping_sub(main_sym.value);
        let scratch_sym =
            syms.iter().find(|s| s.name == "scratch" && !s.is_func && s.size >= 64 * 1024).ok_or_else(|| {
                err(format!(
                    "{} has no `scratch` buffer (a global of at least 64 KiB, e.g. `char scratch[1 << 20];`): \
                 the synthetic machine states point into it",
                    exe.display()
                ))
            })?;
        let scratch = (scratch_sym.value.wrapping_add(bias), scratch_sym.size);
        let mut ranges = vec![(scratch.0, scratch.1, "scratch".to_string())];
        for (v, l) in crate::symbols::writable_segments(&bytes) {
            ranges.push((v.wrapping_add(bias), l, "program data".to_string()));
        }
        let mut libc = None;
        if want_libc {
            let libs = dbg.libraries(pid).map_err(|e| err(format!("libraries: {e}")))?;
            let lib = libs
                .libraries
                .iter()
                .find(|l| {
                    let base = l.name.rsplit('/').next().unwrap_or("");
                    base.starts_with("libc.so") || base.starts_with("libc-")
                })
                .ok_or_else(|| err("--libc: the program has no libc loaded at main"))?;
            let lb = std::fs::read(&lib.name).map_err(|e| err(format!("cannot read {}: {e}", lib.name)))?;
            for (v, l) in crate::symbols::writable_segments(&lb) {
                ranges.push((v.wrapping_add(lib.l_addr), l, "libc data".to_string()));
            }
            libc = Some((lib.name.clone(), lib.l_addr));
        }
        let layout = Layout { main: main.0, scratch, regions: merge_ranges(ranges), libc, exe };
        let mut host = Host { dbg, me, pid, tid, base, regions: Vec::new(), used: HashSet::new() };
        host.setup_memory(&layout)?;
        Ok((host, layout))
    }

    /// Fill the scratch buffer with its pattern and take the baseline snapshot.
    fn setup_memory(&mut self, layout: &Layout) -> anyhow::Result<()> {
        let (s, n) = layout.scratch;
        let fill = scratch_fill(s, n);
        self.dbg.write_memory(self.pid, VirtAddr(s), &fill).map_err(|e| err(format!("filling scratch: {e}")))?;
        for (start, len, what) in &layout.regions {
            let mut buf = vec![0u8; *len as usize];
            let got = self
                .dbg
                .read_memory(self.pid, VirtAddr(*start), &mut buf)
                .map_err(|e| err(format!("reading {what}: {e}")))?;
            buf.truncate(got);
            self.regions.push(Region { start: *start, what: what.clone(), current: buf.clone(), baseline: buf });
        }
        Ok(())
    }

    /// Put every snapshotted byte back to its baseline (writing only the pages that changed).
    fn restore_memory(&mut self) -> anyhow::Result<()> {
        const CHUNK: usize = 4096;
        for r in &mut self.regions {
            let mut off = 0;
            while off < r.baseline.len() {
                let end = (off + CHUNK).min(r.baseline.len());
                if r.current[off..end] != r.baseline[off..end] {
                    self.dbg
                        .write_memory(self.pid, VirtAddr(r.start + off as u64), &r.baseline[off..end])
                        .map_err(|e| err(format!("restoring {} at {:#x}: {e}", r.what, r.start + off as u64)))?;
                    r.current[off..end].copy_from_slice(&r.baseline[off..end]);
                }
                off = end;
            }
        }
        Ok(())
    }

    /// Read every snapshotted range (into `current`) and return a copy.
    fn snapshot(&mut self) -> anyhow::Result<Vec<Vec<u8>>> {
        for r in &mut self.regions {
            let got = self
                .dbg
                .read_memory(self.pid, VirtAddr(r.start), &mut r.current)
                .map_err(|e| err(format!("reading {}: {e}", r.what)))?;
            if got != r.current.len() {
                return Err(err(format!("{} at {:#x} is no longer readable", r.what, r.start)));
            }
        }
        Ok(self.regions.iter().map(|r| r.current.clone()).collect())
    }

    fn kill(&mut self) {
        let _ = self.dbg.kill(self.pid);
    }
}

// ---------------------------------------------------------------------------
// Synthetic states and comparisons
// ---------------------------------------------------------------------------

/// What one run produced.
struct Outcome {
    /// The upper ymm halves the run started from (see [`prepare_run`]).
    start_ymmh: [[u8; 16]; 16],
    kind: StopKind,
    regs: RegisterFile,
    mem: Vec<Vec<u8>>,
}

/// True for a `rep`/`repne`-prefixed string instruction (its count is `rcx`, kept small).
fn is_rep_string(code: &[u8]) -> bool {
    let mut rep = false;
    for &b in code.iter().take(MAX_INSN_LEN) {
        match b {
            0xf2 | 0xf3 => rep = true,
            0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0x40..=0x4f => {}
            0xa4..=0xa7 | 0xaa..=0xaf | 0x6c..=0x6f => return rep,
            _ => return false,
        }
    }
    false
}

/// The synthetic machine state `state` (0 or 1) for the instruction at `addr`.
fn synth_state(
    base: &RegisterFile,
    scratch: (u64, u64),
    state: usize,
    addr: u64,
    code: &[u8],
    syscall: bool,
) -> RegisterFile {
    let mut rf = base.clone();
    let (s, n) = scratch;
    let unit = (n / 16) & !63;
    let skew = if state == 1 { 8 } else { 0 };
    let p = |k: u64| s + k * unit + k * 64 + skew;
    let g = &mut rf.gp;
    g.rax = p(1);
    g.rbx = p(2);
    g.rcx = p(3);
    g.rdx = p(4);
    g.rsi = p(5);
    g.rdi = p(6);
    g.r15 = p(7);
    g.rbp = p(8) + 0x100;
    g.r8 = p(9);
    g.r9 = p(10);
    g.r10 = p(11);
    g.r11 = p(12);
    g.r12 = p(13);
    g.r13 = p(14);
    g.r14 = p(15);
    // 16-byte aligned minus 8 (as at a function's entry); state 0's stack top holds random
    // bytes, state 1's a pointer (see scratch_fill).
    g.rsp = ((s + n / 2) & !15) - 8 - 16 * state as u64;
    if is_rep_string(code) {
        // One iteration in state 1, several in state 0 (a pointer-sized count would run for ever).
        g.rcx = if state == 0 { 7 } else { 1 };
    }
    if syscall {
        g.rax = 39; // getpid: harmless and deterministic
    }
    g.eflags = FLAG_STATES[state];
    g.rip = addr;
    g.orig_rax = u64::MAX;
    for i in 0..16usize {
        let mut x = [0u8; 16];
        for (j, b) in x.iter_mut().enumerate() {
            *b = (0x10 * i as u8).wrapping_add(j as u8).wrapping_add(0x3 * state as u8);
        }
        let _ = rf.fx.set_xmm(i, x);
    }
    rf
}

const GP_NAMES: [&str; 27] = [
    "r15", "r14", "r13", "r12", "rbp", "rbx", "r11", "r10", "r9", "r8", "rax", "rcx", "rdx", "rsi", "rdi", "orig_rax",
    "rip", "cs", "eflags", "rsp", "ss", "fs_base", "gs_base", "ds", "es", "fs", "gs",
];

fn gp_array(r: &xol_arch::regs::UserRegs) -> [u64; 27] {
    [
        r.r15, r.r14, r.r13, r.r12, r.rbp, r.rbx, r.r11, r.r10, r.r9, r.r8, r.rax, r.rcx, r.rdx, r.rsi, r.rdi,
        r.orig_rax, r.rip, r.cs, r.eflags, r.rsp, r.ss, r.fs_base, r.gs_base, r.ds, r.es, r.fs, r.gs,
    ]
}

/// Names of the FXSAVE fields by byte range.
fn fx_field(off: usize) -> String {
    match off {
        0..=1 => "fcw".into(),
        2..=3 => "fsw".into(),
        4 => "ftw".into(),
        6..=7 => "fop".into(),
        8..=15 => "fip (x87 instruction pointer)".into(),
        16..=23 => "fdp (x87 data pointer)".into(),
        24..=27 => "mxcsr".into(),
        28..=31 => "mxcsr_mask".into(),
        32..=159 => format!("st{}", (off - 32) / 16),
        160..=415 => format!("xmm{}", (off - 160) / 16),
        _ => format!("fxsave[{off}]"),
    }
}

/// Differences between the reference (`a`, in line) and a displaced run (`b`).
fn compare(a: &Outcome, b: &Outcome, regions: &[Region], continue_path: bool) -> Vec<String> {
    let mut d = Vec::new();
    let same_kind = a.kind == b.kind || (continue_path && a.kind == StopKind::Step && b.kind == StopKind::Breakpoint);
    if !same_kind {
        d.push(format!("stop: in-line {:?}, displaced {:?}", a.kind, b.kind));
    }
    let (ga, gb) = (gp_array(&a.regs.gp), gp_array(&b.regs.gp));
    for i in 0..27 {
        let (mut x, mut y) = (ga[i], gb[i]);
        if GP_NAMES[i] == "eflags" {
            x &= !EFLAGS_IGNORED;
            y &= !EFLAGS_IGNORED;
        }
        // The continue path stops on an `int3` at the next instruction, and the kernel's
        // breakpoint exception sets orig_rax to -1 there whatever ran before (a `syscall` left
        // its number in it): only the step path can compare orig_rax.
        if continue_path && GP_NAMES[i] == "orig_rax" {
            continue;
        }
        if x != y {
            d.push(format!("{}: in-line {x:#x}, displaced {y:#x}", GP_NAMES[i]));
        }
    }
    let (fa, fb) = (a.regs.fx.as_bytes(), b.regs.fx.as_bytes());
    let mut fields: Vec<String> = Vec::new();
    for i in 0..512 {
        if fa[i] != fb[i] {
            let f = fx_field(i);
            if !fields.contains(&f) {
                fields.push(f);
            }
        }
    }
    for f in fields {
        let range = match f.as_str() {
            "fip (x87 instruction pointer)" => Some(8..16),
            "fdp (x87 data pointer)" => Some(16..24),
            _ => None,
        };
        match range {
            Some(r) => d.push(format!(
                "{f}: in-line {:#x}, displaced {:#x}",
                u64::from_le_bytes(fa[r.clone()].try_into().unwrap_or([0; 8])),
                u64::from_le_bytes(fb[r].try_into().unwrap_or([0; 8]))
            )),
            None => d.push(format!("{f} differs")),
        }
    }
    for i in 0..16 {
        if a.regs.ymmh[i] != b.regs.ymmh[i] {
            d.push(format!(
                "ymm{i}h: in-line {}, displaced {}",
                hex_bytes(&a.regs.ymmh[i]),
                hex_bytes(&b.regs.ymmh[i])
            ));
        }
    }
    for (k, r) in regions.iter().enumerate() {
        let (ma, mb) = (&a.mem[k], &b.mem[k]);
        if ma == mb {
            continue;
        }
        let mut shown = 0;
        let mut i = 0;
        let n = ma.len().min(mb.len());
        while i < n {
            // Whole equal pages are skipped with one comparison each.
            if i % 4096 == 0 && i + 4096 <= n && ma[i..i + 4096] == mb[i..i + 4096] {
                i += 4096;
                continue;
            }
            if ma[i] == mb[i] {
                i += 1;
                continue;
            }
            let start = i;
            while i < n && ma[i] != mb[i] && i - start < 32 {
                i += 1;
            }
            if shown < 4 {
                d.push(format!(
                    "memory {:#x} ({}+{:#x}, {} bytes): in-line [{}], displaced [{}]",
                    r.start + start as u64,
                    r.what,
                    start,
                    i - start,
                    hex_bytes(&ma[start..i]),
                    hex_bytes(&mb[start..i])
                ));
            }
            shown += 1;
        }
        if shown > 4 {
            d.push(format!("... {} more differing ranges in {}", shown - 4, r.what));
        }
    }
    d
}

// ---------------------------------------------------------------------------
// The verification
// ---------------------------------------------------------------------------

/// The functions of a file: (name, link-time value, size).
fn functions(bytes: &[u8], what: &str) -> anyhow::Result<Vec<(String, u64, u64)>> {
    let syms = crate::symbols::symbols(bytes).map_err(|e| err(format!("{what}: {e}")))?;
    Ok(syms.into_iter().filter(|s| s.is_func && s.value != 0).map(|s| (s.name, s.value, s.size)).collect())
}

/// Walk the first instructions of the function at `addr` (of `size` bytes, 0: unknown).
fn leading_instructions(dbg: &Debugger, pid: Pid, addr: u64, size: u64) -> Vec<u64> {
    let mut code = vec![0u8; INSNS_PER_FUNCTION * MAX_INSN_LEN];
    let n = dbg.read_memory(pid, VirtAddr(addr), &mut code).unwrap_or(0);
    code.truncate(n);
    let mut out = Vec::new();
    let mut off = 0usize;
    while out.len() < INSNS_PER_FUNCTION && off < code.len() && (size == 0 || (off as u64) < size) {
        let p = displaced::plan(&code[off..], addr + off as u64);
        out.push(addr + off as u64);
        if p.len() == 0 || matches!(p.mnemonic().as_str(), "jmp" | "ret" | "hlt" | "ud2" | "int3" | "retf") {
            break;
        }
        off += p.len();
    }
    out
}

fn gather(host: &Host, layout: &Layout, opts: &Options) -> anyhow::Result<Vec<Candidate>> {
    let exe_bytes =
        std::fs::read(&layout.exe).map_err(|e| err(format!("cannot read {}: {e}", layout.exe.display())))?;
    let syms = crate::symbols::symbols(&exe_bytes).map_err(|e| err(format!("{}: {e}", layout.exe.display())))?;
    let main_value = syms.iter().find(|s| s.name == "main").map(|s| s.value).unwrap_or(layout.main);
    let bias = layout.main.wrapping_sub(main_value);
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    let mut labels: Vec<_> = syms.iter().filter(|s| s.name.starts_with("insn_")).collect();
    labels.sort_by_key(|s| s.value);
    for s in labels {
        let a = s.value.wrapping_add(bias);
        if seen.insert(a) {
            out.push(Candidate { addr: a, name: s.name.clone(), source: Source::Label });
        }
    }
    let mut sources = vec![(Source::Program, functions(&exe_bytes, &layout.exe.display().to_string())?, bias)];
    if let Some((name, l_addr)) = &layout.libc {
        let b = std::fs::read(name).map_err(|e| err(format!("cannot read {name}: {e}")))?;
        sources.push((Source::Libc, functions(&b, name)?, *l_addr));
    }
    for (src, mut funcs, bias) in sources {
        funcs.sort_by_key(|f| f.1);
        for (name, value, size) in funcs {
            let a = value.wrapping_add(bias);
            for insn in leading_instructions(&host.dbg, host.pid, a, size) {
                if seen.insert(insn) {
                    let name = if insn == a { name.clone() } else { format!("{name}+{}", insn - a) };
                    out.push(Candidate { addr: insn, name, source: src });
                }
            }
        }
    }
    if let Some(m) = opts.max {
        out.truncate(m);
    }
    Ok(out)
}

/// What checking one candidate found.
enum Checked {
    Refused(String),
    Skipped(String),
    Done { kind: PlanKind, mnemonic: String, bytes: Vec<u8>, comparisons: usize, mismatches: Vec<Mismatch> },
}

/// The inferior failed during a candidate (the caller relaunches).
struct Broken(String);

impl From<anyhow::Error> for Broken {
    fn from(e: anyhow::Error) -> Broken {
        Broken(format!("{e:#}"))
    }
}

/// Restore memory and write the synthetic registers. The upper ymm halves are left as they are
/// (xol cannot write them where the XSAVE area exceeds 1024 bytes, e.g. with AVX-512: see
/// docs/displaced-stepping.md); returns the values the run starts from.
fn prepare_run(host: &mut Host, synth: &RegisterFile) -> Result<[[u8; 16]; 16], Broken> {
    host.restore_memory()?;
    let cur = host.dbg.read_registers(host.tid).map_err(|e| Broken(format!("reading registers: {e}")))?;
    let mut synth = synth.clone();
    synth.ymmh = cur.ymmh;
    host.dbg.write_registers(host.tid, &synth).map_err(|e| Broken(format!("writing registers: {e}")))?;
    Ok(cur.ymmh)
}

fn run_step(host: &mut Host, synth: &RegisterFile, mode: StepMode) -> Result<Outcome, Broken> {
    let start_ymmh = prepare_run(host, synth)?;
    let kind = host.dbg.step_instruction(host.pid, host.tid, mode).map_err(|e| Broken(format!("step: {e}")))?;
    if matches!(kind, StopKind::Exited(_) | StopKind::Killed(_)) {
        return Err(Broken(format!("the inferior ended: {kind:?}")));
    }
    let regs = host.dbg.read_registers(host.tid).map_err(|e| Broken(format!("reading registers: {e}")))?;
    let mem = host.snapshot()?;
    Ok(Outcome { start_ymmh, kind, regs, mem })
}

fn run_continue(host: &mut Host, synth: &RegisterFile) -> Result<Outcome, Broken> {
    let start_ymmh = prepare_run(host, synth)?;
    host.dbg.resume(host.pid, &[], Some(Action::CONTINUE)).map_err(|e| Broken(format!("resume: {e}")))?;
    let kind = loop {
        match host.dbg.wait(None).map_err(|e| Broken(format!("wait: {e}")))? {
            WaitOutcome::Stopped(ev) if ev.tid == host.tid => break ev.kind,
            WaitOutcome::Stopped(ev) if matches!(ev.kind, StopKind::Exited(_) | StopKind::Killed(_)) => {
                return Err(Broken(format!("the inferior ended: {:?}", ev.kind)))
            }
            WaitOutcome::Stopped(_) => continue,
            other => return Err(Broken(format!("wait: {other:?}"))),
        }
    };
    if matches!(kind, StopKind::Exited(_) | StopKind::Killed(_)) {
        return Err(Broken(format!("the inferior ended: {kind:?}")));
    }
    let regs = host.dbg.read_registers(host.tid).map_err(|e| Broken(format!("reading registers: {e}")))?;
    let mem = host.snapshot()?;
    Ok(Outcome { start_ymmh, kind, regs, mem })
}

/// The in-line reference of a `pushf` is single-stepped, so the flags it pushed carry the trap
/// flag the step set (the CPU pushes TF); the displaced run is right not to. Clear TF in the
/// reference's pushed value.
fn untrace_pushed_flags(reference: &mut Outcome, regions: &[Region]) {
    if reference.kind != StopKind::Step {
        return;
    }
    let at = reference.regs.gp.rsp + 1; // TF is bit 8: bit 0 of the second byte
    for (k, r) in regions.iter().enumerate() {
        if at >= r.start && at < r.start + reference.mem[k].len() as u64 {
            reference.mem[k][(at - r.start) as usize] &= !1;
        }
    }
}

fn stats_delta(a: StepStats, b: StepStats) -> (u64, u64, u64, u64) {
    (b.emulated - a.emulated, b.boosted - a.boosted, b.out_of_line - a.out_of_line, b.in_line - a.in_line)
}

fn check_one(host: &mut Host, layout: &Layout, c: &Candidate) -> Result<Checked, Broken> {
    let mut code = vec![0u8; MAX_INSN_LEN];
    let n = host
        .dbg
        .read_memory(host.pid, VirtAddr(c.addr), &mut code)
        .map_err(|e| Broken(format!("reading code: {e}")))?;
    code.truncate(n);
    let plan = displaced::plan(&code, c.addr);
    if let Plan::Refuse(r) = &plan {
        return Ok(Checked::Refused(r.reason().to_string()));
    }
    let mnemonic = plan.mnemonic();
    let len = plan.len();
    let bytes = code[..len].to_vec();
    let syscall = mnemonic == "syscall";
    if syscall && c.source != Source::Label {
        return Ok(Checked::Skipped("syscall (would make a real system call)".into()));
    }
    if NONDETERMINISTIC.contains(&mnemonic.as_str()) {
        return Ok(Checked::Skipped(format!("{mnemonic}: result differs from run to run")));
    }
    host.dbg
        .insert_breakpoint(host.pid, VirtAddr(c.addr), Owner::Internal)
        .map_err(|e| Broken(format!("insert: {e}")))?;
    host.used.insert(c.addr);
    let kind = host.dbg.plan_kind(host.pid, VirtAddr(c.addr)).unwrap_or(plan.kind());
    let mut mismatches = Vec::new();
    let mut comparisons = 0;
    let mk = |path: &'static str, state: usize, a: &Outcome, b: &Outcome, diffs: Vec<String>| Mismatch {
        known: classify(&mnemonic, &code, path, c.addr, a, b, &diffs),
        addr: c.addr,
        name: c.name.clone(),
        bytes: bytes.clone(),
        mnemonic: mnemonic.clone(),
        kind,
        path,
        eflags: FLAG_STATES[state],
        diffs,
    };
    let result = (|| -> Result<(), Broken> {
        for state in 0..FLAG_STATES.len() {
            let synth = synth_state(&host.base, layout.scratch, state, c.addr, &code, syscall);
            // The ymm upper halves cannot be restored (see prepare_run): repeat the pair until
            // both runs start from the same values (at once unless the instruction writes them).
            let mut tries = 0;
            let (reference, disp, before, after) = loop {
                let reference = run_step(host, &synth, StepMode::InLine)?;
                let before = host.dbg.step_stats();
                let disp = run_step(host, &synth, StepMode::Displaced)?;
                let after = host.dbg.step_stats();
                tries += 1;
                if reference.start_ymmh == disp.start_ymmh {
                    break (reference, disp, before, after);
                }
                if tries == 3 {
                    return Err(Broken("the ymm registers do not settle between runs and cannot be restored".into()));
                }
            };
            let (emu, _boost, ool, inl) = stats_delta(before, after);
            // An emulation that would fault (a branch to a non-canonical or unmapped address,
            // a push to an unmapped stack) falls back to the real instruction in line, so the
            // program gets the CPU's own fault: expected when the reference faulted too.
            let faulted = matches!(reference.kind, StopKind::Signal(_));
            if (inl > 0 || emu + ool == 0) && !(faulted && kind == PlanKind::Emulate) {
                return Err(Broken(format!(
                    "the displaced step of this {kind} instruction was not displaced (emulated {emu}, \
                     out-of-line {ool}, in-line {inl}): no slot?"
                )));
            }
            comparisons += 1;
            let mut reference = reference;
            if mnemonic.starts_with("pushf") {
                untrace_pushed_flags(&mut reference, &host.regions);
            }
            let d = compare(&reference, &disp, &host.regions, false);
            if !d.is_empty() {
                mismatches.push(mk("step", state, &reference, &disp, d));
            }
            // The probe path: trap on the int3, displaced resume, stop at the next instruction.
            let next = c.addr + len as u64;
            let falls_through = reference.kind == StopKind::Step && reference.regs.gp.rip == next;
            if falls_through && host.dbg.breakpoints(host.pid).iter().all(|(a, _)| a.0 != next) {
                host.dbg
                    .insert_breakpoint(host.pid, VirtAddr(next), host.me)
                    .map_err(|e| Broken(format!("insert: {e}")))?;
                host.used.insert(next);
                let before = host.dbg.step_stats();
                let cont = run_continue(host, &synth);
                let removed = host.dbg.remove_breakpoint(host.pid, VirtAddr(next), host.me);
                let cont = cont?;
                removed.map_err(|e| Broken(format!("remove: {e}")))?;
                let (emu, boost, ool, inl) = stats_delta(before, host.dbg.step_stats());
                if inl > 0 || emu + boost + ool == 0 {
                    return Err(Broken(format!(
                        "the displaced resume of this {kind} instruction was not displaced (emulated {emu}, \
                         boosted {boost}, out-of-line {ool}, in-line {inl}): no slot?"
                    )));
                }
                if cont.start_ymmh != reference.start_ymmh {
                    return Err(Broken("the ymm registers changed between runs and cannot be restored".into()));
                }
                comparisons += 1;
                let d = compare(&reference, &cont, &host.regions, true);
                if !d.is_empty() {
                    mismatches.push(mk("continue", state, &reference, &cont, d));
                }
            }
        }
        Ok(())
    })();
    let removed = host.dbg.remove_breakpoint(host.pid, VirtAddr(c.addr), Owner::Internal);
    result?;
    removed.map_err(|e| Broken(format!("remove: {e}")))?;
    Ok(Checked::Done { kind, mnemonic, bytes, comparisons, mismatches })
}

/// Run the verification and return its report.
pub fn verify(opts: &Options) -> anyhow::Result<Report> {
    if opts.program.is_empty() {
        return Err(err("no program given (xol verify-steps [--libc] [--max N] [--json] -- PROGRAM ARGS)"));
    }
    let t0 = Instant::now();
    let watchdog = Watchdog::start();
    let (mut host, layout) = Host::launch(&opts.program, opts.libc)?;
    let mut report = Report {
        program: layout.exe.display().to_string(),
        libc: layout.libc.as_ref().map(|l| l.0.clone()),
        launches: 1,
        ..Report::default()
    };
    let cands = gather(&host, &layout, opts)?;
    for c in &cands {
        *report.candidates.entry(c.source.name()).or_default() += 1;
    }
    let mut i = 0;
    let mut retried = false;
    while i < cands.len() {
        let c = &cands[i];
        if host.used.len() >= SITES_PER_LAUNCH {
            host = relaunch(host, &layout, opts, &mut report)?;
        }
        watchdog.arm(host.pid, opts.timeout);
        let started = Instant::now();
        let r = check_one(&mut host, &layout, c);
        watchdog.disarm();
        match r {
            Ok(Checked::Refused(reason)) => {
                *report.kinds.entry(PlanKind::Refuse.to_string()).or_default() += 1;
                let e = report.refusals.entry(reason).or_default();
                e.0 += 1;
                if e.1.len() < 4 {
                    e.1.push(c.name.clone());
                }
                label_status(&mut report, &host, c, "refused");
            }
            Ok(Checked::Skipped(why)) => {
                *report.skipped.entry(why).or_default() += 1;
                label_status(&mut report, &host, c, "skipped");
            }
            Ok(Checked::Done { kind, mnemonic, bytes, comparisons, mismatches }) => {
                *report.kinds.entry(kind.to_string()).or_default() += 1;
                *report.checked_kinds.entry(kind.to_string()).or_default() += 1;
                *report.checked_sources.entry(c.source.name()).or_default() += 1;
                report.comparisons += comparisons;
                if c.source == Source::Label {
                    let status = if mismatches.is_empty() { "ok" } else { "mismatch" };
                    report.labels.push((c.name.clone(), c.addr, kind.to_string(), mnemonic, bytes, status.into()));
                }
                report.mismatches.extend(mismatches);
            }
            Err(Broken(what)) => {
                let timed_out = started.elapsed() >= opts.timeout;
                let what = if timed_out { format!("timed out after {:?} ({what})", opts.timeout) } else { what };
                host = relaunch(host, &layout, opts, &mut report)?;
                if what.contains("no slot?") && !retried {
                    // A fresh process has a fresh slot area: try once more.
                    retried = true;
                    continue;
                }
                report.incidents.push(Incident { addr: c.addr, name: c.name.clone(), what });
                label_status(&mut report, &host, c, "incident");
            }
        }
        retried = false;
        i += 1;
    }
    host.kill();
    report.seconds = t0.elapsed().as_secs_f64();
    Ok(report)
}

fn label_status(report: &mut Report, host: &Host, c: &Candidate, status: &str) {
    if c.source != Source::Label {
        return;
    }
    let mut code = vec![0u8; MAX_INSN_LEN];
    let n = host.dbg.read_memory(host.pid, VirtAddr(c.addr), &mut code).unwrap_or(0);
    code.truncate(n);
    let p = displaced::plan(&code, c.addr);
    let len = p.len().min(code.len());
    report.labels.push((
        c.name.clone(),
        c.addr,
        p.kind().to_string(),
        p.mnemonic(),
        code[..len].to_vec(),
        status.into(),
    ));
}

fn relaunch(mut host: Host, layout: &Layout, opts: &Options, report: &mut Report) -> anyhow::Result<Host> {
    host.kill();
    drop(host);
    let (h, l2) = Host::launch(&opts.program, opts.libc)?;
    if l2.main != layout.main
        || l2.scratch != layout.scratch
        || l2.libc.as_ref().map(|l| l.1) != layout.libc.as_ref().map(|l| l.1)
    {
        return Err(err("the program loaded at different addresses after a relaunch (is ASLR forced on?)"));
    }
    report.launches += 1;
    Ok(h)
}

// ---------------------------------------------------------------------------
// Output
// ---------------------------------------------------------------------------

impl Report {
    /// Mismatches per known bug id (`"unknown"` for the rest).
    pub fn known_counts(&self) -> BTreeMap<&'static str, usize> {
        let mut m = BTreeMap::new();
        for x in &self.mismatches {
            *m.entry(x.known.unwrap_or("unknown")).or_default() += 1;
        }
        m
    }

    /// Instructions compared in total.
    pub fn checked(&self) -> usize {
        self.checked_kinds.values().sum()
    }

    /// The report as one JSON object (pretty-printed).
    pub fn to_json(&self) -> String {
        use serde_json::json;
        let hex = |a: u64| format!("{a:#x}");
        let refusals: Vec<_> =
            self.refusals.iter().map(|(r, (n, ex))| json!({"reason": r, "count": n, "examples": ex})).collect();
        let incidents: Vec<_> =
            self.incidents.iter().map(|i| json!({"address": hex(i.addr), "symbol": i.name, "what": i.what})).collect();
        let labels: Vec<_> = self
            .labels
            .iter()
            .map(|(n, a, k, m, b, s)| {
                json!({"name": n, "address": hex(*a), "kind": k, "mnemonic": m, "bytes": hex_bytes(b), "status": s})
            })
            .collect();
        let mismatches: Vec<_> = self
            .mismatches
            .iter()
            .map(|m| {
                json!({
                    "address": hex(m.addr),
                    "symbol": m.name,
                    "bytes": hex_bytes(&m.bytes),
                    "mnemonic": m.mnemonic,
                    "kind": m.kind.to_string(),
                    "path": m.path,
                    "eflags": hex(m.eflags),
                    "known": m.known,
                    "diffs": m.diffs,
                })
            })
            .collect();
        let out = json!({
            "program": self.program,
            "libc": self.libc,
            "candidates": self.candidates,
            "kinds": self.kinds,
            "checked": self.checked(),
            "checked_kinds": self.checked_kinds,
            "checked_sources": self.checked_sources,
            "comparisons": self.comparisons,
            "refusals": refusals,
            "skipped": self.skipped,
            "launches": self.launches,
            "incidents": incidents,
            "labels": labels,
            "mismatches": mismatches,
            "mismatch_count": self.mismatches.len(),
            "unknown_mismatch_count": self.mismatches.iter().filter(|m| m.known.is_none()).count(),
            "known_bugs": self.known_counts(),
            "seconds": (self.seconds * 10.0).round() / 10.0,
        });
        serde_json::to_string_pretty(&out).unwrap_or_default()
    }

    /// The report for people.
    pub fn to_text(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(
            o,
            "xol verify-steps: {}{}",
            self.program,
            self.libc.as_ref().map_or(String::new(), |l| format!(" and {l}"))
        );
        let c: Vec<String> = self.candidates.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(o, "candidates: {} ({})", self.candidates.values().sum::<usize>(), c.join(", "));
        let _ = writeln!(
            o,
            "checked: {} instructions, {} comparisons (in-line step vs displaced step, and vs displaced continue where the instruction falls through; flags {:#x} and {:#x})",
            self.checked(),
            self.comparisons,
            FLAG_STATES[0],
            FLAG_STATES[1]
        );
        for (k, v) in &self.checked_kinds {
            let _ = writeln!(o, "  {k:<12} {v}");
        }
        let s: Vec<String> = self.checked_sources.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(o, "  by source: {}", s.join(", "));
        let _ = writeln!(o, "refused: {}", self.refusals.values().map(|r| r.0).sum::<usize>());
        for (r, (n, ex)) in &self.refusals {
            let _ = writeln!(o, "  {n:>5}  {r}  (e.g. {})", ex.join(", "));
        }
        let _ = writeln!(o, "skipped: {}", self.skipped.values().sum::<usize>());
        for (r, n) in &self.skipped {
            let _ = writeln!(o, "  {n:>5}  {r}");
        }
        let _ = writeln!(o, "launches: {}", self.launches);
        if !self.incidents.is_empty() {
            let _ = writeln!(o, "incidents: {}", self.incidents.len());
            for i in &self.incidents {
                let _ = writeln!(o, "  {:#x} {}: {}", i.addr, i.name, i.what);
            }
        }
        let _ = writeln!(o, "mismatches: {}", self.mismatches.len());
        for (id, n) in self.known_counts() {
            let what = KNOWN_BUGS.iter().find(|k| k.0 == id).map_or("not a known bug", |k| k.1);
            let _ = writeln!(o, "  {n:>5}  {id}: {what}");
        }
        for m in &self.mismatches {
            let _ = writeln!(
                o,
                "  {:#x} {} [{}] {} ({}, {} path, eflags {:#x}){}:",
                m.addr,
                m.name,
                hex_bytes(&m.bytes),
                m.mnemonic,
                m.kind,
                m.path,
                m.eflags,
                m.known.map_or(String::new(), |k| format!(" [open bug {k}]"))
            );
            for d in &m.diffs {
                let _ = writeln!(o, "      {d}");
            }
        }
        let _ = writeln!(o, "time: {:.1} s", self.seconds);
        o
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rep_string_detection() {
        assert!(is_rep_string(&[0xf3, 0xa4]));
        assert!(is_rep_string(&[0xf3, 0x48, 0xab]));
        assert!(!is_rep_string(&[0xa4]));
        assert!(!is_rep_string(&[0xf3, 0x0f, 0x1e, 0xfa]));
        assert!(!is_rep_string(&[0xf3, 0xc3]));
    }

    #[test]
    fn ranges_merge() {
        let m =
            merge_ranges(vec![(100, 10, "a".into()), (0, 50, "b".into()), (105, 20, "c".into()), (60, 5, "d".into())]);
        assert_eq!(m.iter().map(|r| (r.0, r.1)).collect::<Vec<_>>(), vec![(0, 50), (60, 5), (100, 25)]);
        assert_eq!(m[2].2, "a+c");
    }

    #[test]
    fn own_binary_has_a_writable_segment() {
        let exe = std::env::current_exe().expect("current exe");
        let b = std::fs::read(exe).expect("read");
        assert!(!crate::symbols::writable_segments(&b).is_empty());
        assert!(crate::symbols::writable_segments(b"short").is_empty());
    }

    #[test]
    fn the_json_report_escapes_and_parses_back() {
        let mut r = Report { program: "a\"b\\c\n\u{1}".into(), seconds: 1.25, ..Default::default() };
        r.skipped.insert("odd \"reason\"".into(), 2);
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).expect("valid JSON");
        assert_eq!(v["program"], "a\"b\\c\n\u{1}");
        assert_eq!(v["skipped"]["odd \"reason\""], 2);
        assert_eq!(v["libc"], serde_json::Value::Null);
        assert_eq!(v["mismatch_count"], 0);
    }
}
