//! Processes and threads under ptrace, and the all-stop event machine.
//!
//! Invariants:
//! - every tracee is `PTRACE_SEIZE`d with [`ptrace::BASE_OPTIONS`], so clones, forks and execs are
//!   seen from birth and any running thread can be stopped with `PTRACE_INTERRUPT`;
//! - in all-stop, after [`Inferior::wait`] returns a stop, every thread of that process is
//!   stopped; events other threads produced meanwhile are kept as *pending* and reported before
//!   anything is resumed again, except breakpoint hits, which are cancelled (ip rewound) and
//!   simply happen again on resume;
//! - only threads the front-end resumed report: a pending event of a thread left stopped waits
//!   until that thread is resumed;
//! - breakpoint bytes never leave this module: memory reads are masked with the shadow bytes.
//!
//! Only this module (and `maps`) call into `sys`.

mod aspace;
mod breakpoints;
mod conditions;
mod displaced;
mod events;
mod hw;
pub mod notice;
mod probes;
mod shared;
mod thread;

use crate::sys::{self, mem::Mem, ptrace, spawn, RawTid, SysError};
use crate::types::{Pid, Tid};
use displaced::Slots;
use std::collections::BTreeMap;
use thread::{Task, Thread};
use xol_arch::regs::RegisterFile;

pub use crate::sys::proc::ProcessInfo;
pub use aspace::{Insertion, Memory};
pub use displaced::{StepMode, StepStats};
pub use events::WaitOutcome;
pub use hw::{HwKind, HwSlot};
pub use probes::ProbeInfo;
pub use spawn::{SpawnError, SpawnSpec};

/// Errors of the inferior layer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A system call failed.
    #[error(transparent)]
    Sys(#[from] SysError),
    /// No traced process with this pid.
    #[error("no traced process {0}")]
    NoProcess(Pid),
    /// No traced thread with this tid.
    #[error("no traced thread {0}")]
    NoThread(Tid),
    /// The memory of a process could not be opened (`/proc/PID/mem`).
    #[error("cannot open the memory of process {pid}: {source}")]
    OpenMem {
        /// The process.
        pid: Pid,
        /// Why.
        source: std::io::Error,
    },
    /// The debug registers cannot hold a hardware breakpoint or watchpoint.
    #[error("{addr:#x}+{len:#x} needs more than the {free} free debug register(s)")]
    NoDebugRegister {
        /// The start of the region.
        addr: u64,
        /// Its length.
        len: u64,
        /// Debug registers that were free.
        free: usize,
    },
    /// Memory could not be read or written.
    #[error("memory at {addr:#x}: {source}")]
    Mem {
        /// The address.
        addr: u64,
        /// The error.
        source: std::io::Error,
    },
    /// The program could not be started.
    #[error(transparent)]
    Spawn(#[from] spawn::SpawnError),
    /// Attaching failed.
    #[error("cannot attach to process {pid}: {why}")]
    Attach {
        /// The process.
        pid: i32,
        /// Why, with a hint.
        why: String,
    },
    /// Any other I/O error (poll, /proc).
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A location (symbol or address) that cannot be resolved, with the reason.
    #[error("{0}")]
    Location(String),
}

/// Result of the inferior layer.
pub type Result<T> = std::result::Result<T, Error>;

/// Why a thread stopped, as reported to front-ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopKind {
    /// The thread hit one of xol's breakpoints; its ip is at the breakpoint address.
    Breakpoint,
    /// A requested single-step finished.
    Step,
    /// A signal is about to be delivered (resume with it to deliver it).
    Signal(i32),
    /// Entering the syscall with this number.
    SyscallEntry(u64),
    /// Returning from the syscall with this number.
    SyscallExit(u64),
    /// A hardware breakpoint fired.
    HwBreak,
    /// A hardware watchpoint fired on `addr`.
    Watch {
        /// The watched address that was accessed (start of the slot).
        addr: u64,
        /// What kind of watchpoint.
        kind: HwKind,
    },
    /// The thread forked (`vfork`: vforked) `child`, which is now traced, stopped, as a process
    /// of its own with the parent's insertions (they are in its memory). Only with
    /// [`Inferior::fork_events`].
    Forked {
        /// The new process.
        child: Pid,
        /// A vfork: the child shares the parent's memory until it execs or exits.
        vfork: bool,
    },
    /// The vfork child of this process exec'd or exited: the memory is the parent's alone again.
    /// Only with [`Inferior::fork_events`].
    VforkDone,
    /// The process exec'd a new program ([`Inferior::exe`] names it); its breakpoints went with
    /// the old image. Only with [`Inferior::exec_events`].
    Exec,
    /// A new thread of the process, stopped at its start (with [`Inferior::thread_events`]).
    ThreadCreated,
    /// This thread (not the leader) exited with this status; the process goes on (with
    /// [`Inferior::thread_events`]).
    ThreadExited(i32),
    /// The thread stopped because the front-end asked ([`Inferior::stop_threads`], gdb's
    /// non-stop `vCont;t`): gdb's signal 0.
    Stopped,
    /// The process exited with this status.
    Exited(i32),
    /// The process was killed by this signal.
    Killed(i32),
}

/// One stop event: which thread, of which process, and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopEvent {
    /// The process.
    pub pid: Pid,
    /// The thread (the leader for process exits).
    pub tid: Tid,
    /// Why.
    pub kind: StopKind,
}

/// What a thread should do when resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Action {
    /// Single-step one instruction instead of running.
    pub step: bool,
    /// Signal to deliver (0 for none).
    pub sig: i32,
    /// Range stepping (gdb's `vCont;r`): keep stepping while ip stays in `start..end`, and report
    /// only when it leaves the range.
    pub range: Option<(u64, u64)>,
}

impl Action {
    /// Run freely, no signal.
    pub const CONTINUE: Action = Action { step: false, sig: 0, range: None };
    /// Single-step one instruction, delivering `sig`.
    pub const fn step(sig: i32) -> Action {
        Action { step: true, sig, range: None }
    }
}

/// Which syscalls stop the program for `catch syscall`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyscallFilter {
    /// Every syscall.
    All,
    /// Only these numbers.
    Only(Vec<u64>),
}

#[derive(Debug)]
struct Process {
    threads: BTreeMap<RawTid, Thread>,
    /// Its memory, insertions, debug-register slots, slot area and maps.
    aspace: aspace::AddressSpace,
    /// Started by xol (killed on disconnect) rather than attached (detached on disconnect).
    launched: bool,
    catch: Option<SyscallFilter>,
    /// A forked child xol follows on its own (for per-file probes): its events are handled
    /// inside the core and never reported to the front-end.
    followed: bool,
    /// A vfork child that still shares its parent's memory (until it execs or exits): the
    /// parent. Its insertions are the parent's bytes; letting it go writes none of them.
    vfork_parent: Option<Pid>,
    /// A forked child reported to the front-end (fork events on): if the front-end lets it go
    /// while per-file probes exist, xol follows it on its own instead.
    forked: bool,
    /// Target-side conditions of front-ends' breakpoints, by address and owner.
    conditions: BTreeMap<(u64, crate::types::Owner), conditions::Conditions>,
}

/// How xol came to trace a process: what [`Process::new`] starts it with.
enum Origin {
    /// Started by xol ([`Inferior::launch`]): killed when xol lets it go.
    Launched,
    /// Attached to ([`Inferior::attach`]): detached when xol lets it go.
    Attached,
    /// A forked child, with what its address space inherits of its parent's: the insertions
    /// left in its copy of memory and the slot area.
    Forked {
        /// The parent's insertions kept in the child.
        insertions: aspace::Insertions,
        /// The slot area as the child sees it.
        slots: Slots,
        /// Followed by xol on its own (for per-file probes), never reported; else the
        /// front-end's (fork events on).
        followed: bool,
        /// Killed (not detached) when xol lets it go: its parent was launched by xol.
        launched: bool,
        /// A vfork child: the parent whose memory it shares.
        vfork_parent: Option<Pid>,
    },
}

impl Process {
    /// The one way a `Process` is built: process `pid`, its threads and its memory, no
    /// syscall catching, no debug registers in use, its `int3`s (if any) armed.
    fn new(pid: RawTid, threads: BTreeMap<RawTid, Thread>, mem: Mem, origin: Origin) -> Process {
        let (insertions, slots, followed, launched, vfork_parent, forked) = match origin {
            Origin::Launched => (aspace::Insertions::default(), Slots::default(), false, true, None, false),
            Origin::Attached => (aspace::Insertions::default(), Slots::default(), false, false, None, false),
            Origin::Forked { insertions, slots, followed, launched, vfork_parent } => {
                (insertions, slots, followed, launched, vfork_parent, !followed)
            }
        };
        Process {
            threads,
            aspace: aspace::AddressSpace::new(pid, mem, insertions, slots),
            launched,
            catch: None,
            followed,
            vfork_parent,
            forked,
            conditions: BTreeMap::new(),
        }
    }

    fn resume_kind(&self) -> ptrace::ResumeKind {
        if self.catch.is_some() {
            ptrace::ResumeKind::Syscall
        } else {
            ptrace::ResumeKind::Cont
        }
    }
}

/// All traced processes.
#[derive(Debug, Default)]
pub struct Inferior {
    procs: BTreeMap<Pid, Process>,
    /// Stops from threads not known yet (a fork child seen before its parent's fork event).
    orphans: Vec<(RawTid, sys::wait::Stop)>,
    /// Process exits seen while stopping the world, reported by the next wait.
    reports: std::collections::VecDeque<StopEvent>,
    /// Forked children handled (and detached) so far.
    pub forks_handled: u64,
    /// Every probe (shared, read lock-free on the trap path).
    pub(crate) table: std::sync::Arc<crate::probe::ProbeTable>,
    /// Forked children followed (traced on xol's own, never shown to the front-end).
    pub children_followed: u64,
    /// Of those, forked by a multi-threaded parent (the slow path: `int3`s re-written).
    pub forks_multithreaded: u64,
    /// Maps-cache counters of processes that ended.
    maps_ended: crate::maps::MapsStats,
    /// Signals delivered to a running thread at once, without a stop (gdb's `QPassSignals`).
    pub pass_signals: std::collections::BTreeSet<i32>,
    /// On detach, whether the last signal a thread stopped with, never passed on by the
    /// front-end, is delivered (the front-end's signal policy, e.g. gdb's `handle` table);
    /// `None`: it is not.
    pub pass_on_detach: Option<fn(i32) -> bool>,
    /// Followed children whose exit is being handled (so it is not reported).
    followed_gone: std::collections::BTreeSet<Pid>,
    /// Hits of counting probes: (probe id, pid) -> hits. Kept after the process ends.
    hits: BTreeMap<(u32, i32), u64>,
    /// How breakpoints are stepped over (displaced by default; in line for comparison).
    pub step_mode: StepMode,
    /// Counters of the resume paths.
    pub step_stats: StepStats,
    /// Notices for subscribed front-ends.
    pub notices: notice::Notices,
    /// Report forks and vforks ([`StopKind::Forked`], [`StopKind::VforkDone`]): the child is
    /// kept, stopped, as a process of the front-end's (gdb's `fork-events+`). Off: forked
    /// children are let go (or followed on xol's own while per-file probes exist).
    pub fork_events: bool,
    /// Report execs ([`StopKind::Exec`], gdb's `exec-events+`). Off: an exec is handled inside.
    pub exec_events: bool,
    /// Report thread creation and exit as stops ([`StopKind::ThreadCreated`],
    /// [`StopKind::ThreadExited`]; gdb's `QThreadEvents:1`). Off: they are notices only.
    pub thread_events: bool,
    /// Non-stop: a reported stop stops only its thread; the others run on, and each is resumed
    /// and stopped ([`Inferior::stop_threads`]) on its own (gdb's `QNonStop:1`). Off: all-stop,
    /// a reported stop stops the whole process.
    pub non_stop: bool,
}

impl From<displaced::StepError> for Error {
    fn from(e: displaced::StepError) -> Error {
        match e {
            displaced::StepError::Sys(s) => Error::Sys(s),
            displaced::StepError::Mem { addr, source } => Error::Mem { addr, source },
            other => Error::Io(std::io::Error::other(other.to_string())),
        }
    }
}

fn io_mem(addr: u64) -> impl FnOnce(std::io::Error) -> Error {
    move |source| Error::Mem { addr, source }
}

impl Inferior {
    /// A new, empty inferior set.
    pub fn new() -> Inferior {
        Inferior::default()
    }

    /// Start a program; it is stopped at its first instruction.
    pub fn launch(&mut self, spec: &SpawnSpec) -> Result<Pid> {
        let opts = ptrace::BASE_OPTIONS | libc::PTRACE_O_EXITKILL as libc::c_long;
        let raw = spawn::spawn(spec, opts)?;
        let mem = Mem::open(raw).map_err(|source| Error::OpenMem { pid: Pid(raw), source })?;
        let mut threads = BTreeMap::new();
        threads.insert(raw, Thread::new_stopped());
        let pid = Pid(raw);
        self.procs.insert(pid, Process::new(raw, threads, mem, Origin::Launched));
        Ok(pid)
    }

    /// Attach to a running process and stop all its threads.
    pub fn attach(&mut self, pid: Pid) -> Result<()> {
        if self.procs.contains_key(&pid) {
            return Err(Error::Attach { pid: pid.0, why: "already attached".into() });
        }
        let hint = |e: &SysError| match e.errno {
            nix::errno::Errno::EPERM => format!(
                "{}; run xol as the same user or as root, and check /proc/sys/kernel/yama/ptrace_scope",
                e.errno.desc()
            ),
            nix::errno::Errno::ESRCH => "no such process".to_string(),
            _ => e.errno.desc().to_string(),
        };
        if !sys::proc::exists(pid.0) {
            return Err(Error::Attach { pid: pid.0, why: "no such process".into() });
        }
        if pid.0 == std::process::id() as i32 {
            return Err(Error::Attach { pid: pid.0, why: "cannot attach to xol itself".into() });
        }
        let mut threads = BTreeMap::new();
        // Threads may be created while we attach: repeat until the task list is stable.
        loop {
            let tids = sys::proc::threads(pid.0).map_err(|e| Error::Attach { pid: pid.0, why: e.to_string() })?;
            let mut new = 0;
            for tid in tids {
                if threads.contains_key(&tid) {
                    continue;
                }
                match ptrace::seize(tid, ptrace::BASE_OPTIONS) {
                    Ok(()) => {}
                    Err(e) if e.is_gone() && tid != pid.0 => continue,
                    Err(e) => {
                        for t in threads.keys() {
                            let _ = ptrace::detach(*t, 0);
                        }
                        return Err(Error::Attach { pid: pid.0, why: hint(&e) });
                    }
                }
                let _ = ptrace::interrupt(tid);
                threads.insert(tid, Thread::new_running());
                new += 1;
            }
            if new == 0 {
                break;
            }
        }
        let mem = Mem::open(pid.0).map_err(|source| Error::OpenMem { pid, source })?;
        self.procs.insert(pid, Process::new(pid.0, threads, mem, Origin::Attached));
        self.stop_all(pid)?;
        Ok(())
    }

    /// The traced processes.
    pub fn pids(&self) -> Vec<Pid> {
        self.procs.keys().copied().collect()
    }

    /// True if `pid` was started by xol (as opposed to attached).
    pub fn launched(&self, pid: Pid) -> Option<bool> {
        self.procs.get(&pid).map(|p| p.launched)
    }

    /// The threads of a process, in tid order.
    pub fn threads(&self, pid: Pid) -> Vec<Tid> {
        self.procs.get(&pid).map(|p| p.threads.keys().map(|t| Tid(*t)).collect()).unwrap_or_default()
    }

    /// The process a thread belongs to.
    pub fn pid_of(&self, tid: Tid) -> Option<Pid> {
        self.procs.iter().find(|(_, p)| p.threads.contains_key(&tid.0)).map(|(pid, _)| *pid)
    }

    fn proc(&self, pid: Pid) -> Result<&Process> {
        self.procs.get(&pid).ok_or(Error::NoProcess(pid))
    }

    fn proc_mut(&mut self, pid: Pid) -> Result<&mut Process> {
        self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))
    }

    /// Read a thread's registers (general, x87/SSE and AVX upper halves).
    pub fn read_regs(&self, tid: Tid) -> Result<RegisterFile> {
        read_register_file(tid)
    }

    /// Write a thread's registers; only the parts that differ from the current values are written.
    pub fn write_regs(&self, tid: Tid, rf: &RegisterFile) -> Result<()> {
        let cur = self.read_regs(tid)?;
        if cur.gp != rf.gp {
            ptrace::set_regs(tid.0, &rf.gp)?;
        }
        if cur.fx != rf.fx {
            ptrace::set_fpregs(tid.0, &rf.fx)?;
        }
        if cur.ymmh != rf.ymmh {
            let mut xs = [0u8; ptrace::XSTATE_LEN];
            let len = ptrace::get_xstate(tid.0, &mut xs)?;
            for (i, y) in rf.ymmh.iter().enumerate() {
                let o = ptrace::XSAVE_YMMH_OFFSET + 16 * i;
                xs[o..o + 16].copy_from_slice(y);
            }
            xs[ptrace::XSAVE_HDR_OFFSET] |= 4;
            ptrace::set_xstate(tid.0, &mut xs, len)?;
        }
        Ok(())
    }

    /// Enable (`Some`) or disable (`None`) syscall catching for a process.
    pub fn set_catch_syscalls(&mut self, pid: Pid, filter: Option<SyscallFilter>) -> Result<()> {
        self.proc_mut(pid)?.catch = filter;
        Ok(())
    }

    /// Send SIGINT to a process, as a terminal's Ctrl-C would (gdb's interrupt request).
    pub fn interrupt(&self, pid: Pid) -> Result<()> {
        sys::signals::kill(pid.0, libc::SIGINT)?;
        Ok(())
    }

    /// Stop running threads of `pid` (all of them if `tids` is empty) without stopping the
    /// others: each reports [`StopKind::Stopped`] through [`Inferior::wait`], unless it reports
    /// another event first (which then stands for the stop). A thread already stopped is left
    /// as it is. Meant for non-stop mode; in all-stop, [`Inferior::interrupt`] stops a process.
    pub fn stop_threads(&mut self, pid: Pid, tids: &[Tid]) -> Result<()> {
        let p = self.proc_mut(pid)?;
        for (tid, t) in p.threads.iter_mut() {
            if !tids.is_empty() && !tids.contains(&Tid(*tid)) {
                continue;
            }
            if t.is_stopped() {
                continue;
            }
            t.stop_requested = true;
            if !t.expect_stop {
                match ptrace::interrupt(*tid) {
                    Ok(()) => t.expect_stop = true,
                    Err(e) if e.is_gone() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }

    /// The `siginfo_t` of the signal the stopped thread `tid` last stopped with (gdb's
    /// `$_siginfo`, `qXfer:siginfo:read`), as the kernel lays it out (128 bytes). An error if
    /// the thread is not in a signal stop.
    pub fn siginfo(&self, tid: Tid) -> Result<Vec<u8>> {
        Ok(ptrace::siginfo_bytes(tid.0)?.to_vec())
    }

    /// Write `data` at `offset` into the stopped thread's `siginfo_t` (`qXfer:siginfo:write`):
    /// delivered with the signal if the thread is resumed with it.
    pub fn set_siginfo(&self, tid: Tid, offset: usize, data: &[u8]) -> Result<()> {
        let mut info = ptrace::siginfo_bytes(tid.0)?;
        let end = offset.checked_add(data.len()).filter(|e| *e <= info.len()).ok_or_else(|| {
            Error::Io(std::io::Error::new(std::io::ErrorKind::InvalidInput, "past the end of siginfo_t (128 bytes)"))
        })?;
        info[offset..end].copy_from_slice(data);
        Ok(ptrace::set_siginfo_bytes(tid.0, &info)?)
    }

    /// Every process of the system, as `/proc` shows it (gdb's `info os`).
    pub fn processes(&self) -> Vec<ProcessInfo> {
        sys::proc::processes()
    }

    /// True if `tid` of `pid` is in a ptrace-stop xol has seen.
    pub fn is_stopped(&self, pid: Pid, tid: Tid) -> bool {
        self.procs.get(&pid).and_then(|p| p.threads.get(&tid.0)).is_some_and(|t| t.is_stopped())
    }

    /// The name of a thread (`comm`).
    pub fn thread_name(&self, pid: Pid, tid: Tid) -> Option<String> {
        sys::proc::thread_name(pid.0, tid.0)
    }

    /// The raw auxiliary vector.
    pub fn auxv(&self, pid: Pid) -> Result<Vec<u8>> {
        Ok(sys::proc::auxv(pid.0)?)
    }

    /// The executable's path.
    pub fn exe(&self, pid: Pid) -> Result<std::path::PathBuf> {
        Ok(sys::proc::exe(pid.0)?)
    }

    /// Whether the kernel randomises `pid`'s address space (`None`: cannot be told).
    pub fn randomized(&self, pid: Pid) -> Option<bool> {
        sys::proc::randomized(pid.0)
    }

    /// True if `pid` is a forked child xol follows on its own (not the front-end's process).
    pub fn is_followed(&self, pid: Pid) -> bool {
        self.procs.get(&pid).is_some_and(|p| p.followed)
    }

    /// Detach from a process: restore every breakpoint byte, then let all threads run, delivering
    /// signals that were stopped but not yet passed on.
    ///
    /// A forked child (fork events on) is followed on xol's own instead while per-file probes
    /// exist, so they keep counting there. A vfork child that still shares its traced parent's
    /// memory writes none of its bytes: the parent's `int3`s are taken out of that memory
    /// instead until the child execs or exits (the parent's `VforkDone`), so the child, now
    /// untraced, meets none of them.
    pub fn detach(&mut self, pid: Pid) -> Result<()> {
        self.stop_all(pid)?;
        if self.follow_let_go_child(pid)? {
            return Ok(());
        }
        // A trap of one of our `int3`s, or the SIGINT of an interrupt, may still wait in a
        // queue (PTRACE_INTERRUPT stops a thread before it dequeues signals): consume them
        // while our bytes are still there to explain them.
        if let Err(e) = self.flush_own_signals(pid) {
            log::warn!("flushing xol's own signals of {pid} before detach: {e}");
        }
        let shares_with = self.procs.get(&pid).and_then(|p| p.vfork_parent).filter(|pp| self.procs.contains_key(pp));
        if let Some(parent) = shares_with {
            if let Some(p) = self.procs.get_mut(&pid) {
                p.aspace.insertions.clear();
            }
            self.set_armed(parent, false)?;
        } else {
            self.remove_all_insertions(pid)?;
        }
        let p = self.procs.remove(&pid).ok_or(Error::NoProcess(pid))?;
        for (tid, t) in &p.threads {
            if p.aspace.hw.iter().any(|s| s.is_some()) {
                // Leave no armed debug register behind (it would SIGTRAP the program).
                let _ = ptrace::set_debugreg(*tid, 7, 0);
            }
            let sig = match t.pending() {
                Some(StopKind::Signal(s)) => s,
                _ if t.deferred_sig != 0 => t.deferred_sig,
                _ if t.last_signal != 0 && self.pass_on_detach.is_some_and(|f| f(t.last_signal)) => t.last_signal,
                _ => 0,
            };
            match ptrace::detach(*tid, sig) {
                Ok(()) => {}
                Err(e) if e.is_gone() => {}
                Err(e) => log::warn!("detach: {e}"),
            }
        }
        Ok(())
    }

    /// Kill a process and reap it.
    pub fn kill(&mut self, pid: Pid) -> Result<()> {
        if !self.procs.contains_key(&pid) {
            return Err(Error::NoProcess(pid));
        }
        let _ = sys::signals::kill(pid.0, libc::SIGKILL);
        // Reap every thread: the leader is reported only after all the others, so wait for any
        // traced thread until the leader's exit arrives. Other processes' statuses are kept.
        loop {
            match sys::wait::wait_any() {
                Ok((tid, sys::wait::Stop::Exited(_) | sys::wait::Stop::Killed(_))) if tid == pid.0 => break,
                Ok((tid, st)) => {
                    let ours = self.procs.get(&pid).is_some_and(|p| p.threads.contains_key(&tid));
                    if !ours && self.pid_of(Tid(tid)).is_some() {
                        self.orphans.push((tid, st));
                    }
                }
                Err(_) => break,
            }
        }
        self.procs.remove(&pid);
        Ok(())
    }

    /// Leave every process as if xol had never been there: detach attached ones (restoring
    /// bytes) and kill launched ones. Used on disconnect and on SIGTERM/SIGINT.
    pub fn release_all(&mut self) {
        for pid in self.pids() {
            let launched = self.launched(pid).unwrap_or(false);
            let r = if launched { self.kill(pid) } else { self.detach(pid) };
            if let Err(e) = r {
                log::warn!("releasing process {pid}: {e}");
                self.procs.remove(&pid);
            }
        }
    }

    /// Leave every process running without xol, whether launched or attached.
    pub fn detach_all(&mut self) {
        for pid in self.pids() {
            if let Err(e) = self.detach(pid) {
                log::warn!("detaching process {pid}: {e}");
                self.procs.remove(&pid);
            }
        }
    }
}

/// Read a thread's registers (general, x87/SSE and AVX upper halves).
fn read_register_file(tid: Tid) -> Result<RegisterFile> {
    let gp = ptrace::get_regs(tid.0)?;
    let fx = ptrace::get_fpregs(tid.0)?;
    let mut rf = RegisterFile { gp, fx, ..RegisterFile::default() };
    let mut xs = [0u8; ptrace::XSTATE_LEN];
    if let Ok(len) = ptrace::get_xstate(tid.0, &mut xs) {
        let bv =
            u64::from_le_bytes(xs[ptrace::XSAVE_HDR_OFFSET..ptrace::XSAVE_HDR_OFFSET + 8].try_into().unwrap_or([0; 8]));
        if bv & 4 != 0 && len >= ptrace::XSAVE_YMMH_OFFSET + 256 {
            for (i, y) in rf.ymmh.iter_mut().enumerate() {
                let o = ptrace::XSAVE_YMMH_OFFSET + 16 * i;
                y.copy_from_slice(&xs[o..o + 16]);
            }
        }
    }
    Ok(rf)
}

/// Block SIGCHLD and the termination signals in the calling thread and read them from a
/// signalfd (see `sys::signals`); call once before tracing.
pub fn init_signals() -> std::io::Result<()> {
    sys::signals::init()
}
