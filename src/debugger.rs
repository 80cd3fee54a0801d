//! The core facade every front-end uses (gdb stub, REPL, tracepoint runner).
//!
//! It owns the traced processes and is driven from one thread (the one that attached them, as
//! ptrace requires). Front-ends never call ptrace and never see a breakpoint byte: memory read
//! through here is shadow-masked. Independent of gdbstub: ids and registers are xol's types.

use crate::inferior::{self, Action, HwKind, Inferior, SpawnSpec, SyscallFilter, WaitOutcome};
pub use crate::inferior::{ProbeInfo, SpawnSpec as LaunchSpec, StepMode, StepStats};
use crate::solib::{self, LibraryList};
use crate::types::{Owner, Pid, Tid, VirtAddr};
use std::os::fd::BorrowedFd;
pub use xol_arch::displaced::PlanKind;
use xol_arch::regs::RegisterFile;

pub use crate::inferior::{Error, StopEvent, StopKind};

/// Result of a facade call.
pub type Result<T> = inferior::Result<T>;

/// The debugger core.
#[derive(Debug, Default)]
pub struct Debugger {
    inf: Inferior,
}

impl Debugger {
    /// A debugger with nothing traced.
    pub fn new() -> Debugger {
        Debugger::default()
    }

    /// Prepare this process to trace: block SIGCHLD and the termination signals and read them
    /// from a signalfd. Call once, from the thread that will trace, before anything else.
    pub fn init_signals() -> std::io::Result<()> {
        inferior::init_signals()
    }

    /// Start a program, stopped at its first instruction.
    pub fn launch(&mut self, spec: &SpawnSpec) -> Result<Pid> {
        self.inf.launch(spec)
    }

    /// Attach to a running process; all its threads are stopped on return.
    pub fn attach(&mut self, pid: Pid) -> Result<()> {
        self.inf.attach(pid)
    }

    /// Detach: breakpoint bytes restored, the process runs on.
    pub fn detach(&mut self, pid: Pid) -> Result<()> {
        self.inf.detach(pid)
    }

    /// Kill a process.
    pub fn kill(&mut self, pid: Pid) -> Result<()> {
        self.inf.kill(pid)
    }

    /// Kill what xol launched, detach what it attached (disconnect, termination).
    pub fn release_all(&mut self) {
        self.inf.release_all()
    }

    /// Detach from everything (launched or attached).
    pub fn detach_all(&mut self) {
        self.inf.detach_all()
    }

    /// The traced processes.
    pub fn pids(&self) -> Vec<Pid> {
        self.inf.pids()
    }

    /// Whether xol started this process (vs attached to it).
    pub fn launched(&self, pid: Pid) -> Option<bool> {
        self.inf.launched(pid)
    }

    /// Resume: explicit per-thread actions, and a default for the others (`None`: stay stopped).
    pub fn resume(&mut self, pid: Pid, actions: &[(Tid, Action)], default: Option<Action>) -> Result<()> {
        self.inf.resume(pid, actions, default)
    }

    /// Wait for a stop, input on `input`, or a termination request.
    pub fn wait(&mut self, input: Option<BorrowedFd<'_>>) -> Result<WaitOutcome> {
        self.inf.wait(input)
    }

    /// Interrupt a running process as Ctrl-C would (SIGINT).
    pub fn interrupt(&mut self, pid: Pid) -> Result<()> {
        self.inf.interrupt(pid)
    }

    /// Threads of a process.
    pub fn threads(&self, pid: Pid) -> Vec<Tid> {
        self.inf.threads(pid)
    }

    /// The process of a thread.
    pub fn pid_of(&self, tid: Tid) -> Option<Pid> {
        self.inf.pid_of(tid)
    }

    /// A thread's name.
    pub fn thread_name(&self, pid: Pid, tid: Tid) -> Option<String> {
        self.inf.thread_name(pid, tid)
    }

    /// Read all registers of a thread.
    pub fn read_registers(&self, tid: Tid) -> Result<RegisterFile> {
        self.inf.read_regs(tid)
    }

    /// Write all registers of a thread.
    pub fn write_registers(&self, tid: Tid, regs: &RegisterFile) -> Result<()> {
        self.inf.write_regs(tid, regs)
    }

    /// Read memory (xol's breakpoints masked). Returns the number of bytes readable.
    pub fn read_memory(&self, pid: Pid, addr: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        self.inf.read_memory(pid, addr, buf)
    }

    /// Write memory (xol's breakpoints kept).
    pub fn write_memory(&mut self, pid: Pid, addr: VirtAddr, data: &[u8]) -> Result<()> {
        self.inf.write_memory(pid, addr, data)
    }

    /// Insert a software breakpoint owned by `owner`.
    pub fn insert_breakpoint(&mut self, pid: Pid, addr: VirtAddr, owner: Owner) -> Result<()> {
        self.inf.insert_breakpoint(pid, addr, owner)
    }

    /// Drop `owner`'s hold on a breakpoint; false if it had none.
    pub fn remove_breakpoint(&mut self, pid: Pid, addr: VirtAddr, owner: Owner) -> Result<bool> {
        self.inf.remove_breakpoint(pid, addr, owner)
    }

    /// Insert a hardware breakpoint (`HwKind::Exec`) or watchpoint.
    pub fn insert_hw(&mut self, pid: Pid, addr: VirtAddr, len: u64, kind: HwKind) -> Result<()> {
        self.inf.insert_hw(pid, addr.0, len, kind)
    }

    /// Remove a hardware breakpoint or watchpoint; false if there was none.
    pub fn remove_hw(&mut self, pid: Pid, addr: VirtAddr, len: u64, kind: HwKind) -> Result<bool> {
        self.inf.remove_hw(pid, addr.0, len, kind)
    }

    /// The breakpoints of a process with their owners.
    pub fn breakpoints(&self, pid: Pid) -> Vec<(VirtAddr, Vec<Owner>)> {
        self.inf.insertions(pid).into_iter().map(|(a, i)| (a, i.owners)).collect()
    }

    /// Stop at syscalls (`Some`) or not (`None`).
    pub fn set_catch_syscalls(&mut self, pid: Pid, filter: Option<SyscallFilter>) -> Result<()> {
        self.inf.set_catch_syscalls(pid, filter)
    }

    /// The raw auxiliary vector.
    pub fn auxv(&self, pid: Pid) -> Result<Vec<u8>> {
        self.inf.auxv(pid)
    }

    /// The executable.
    pub fn exe(&self, pid: Pid) -> Result<std::path::PathBuf> {
        self.inf.exe(pid)
    }

    /// The loaded shared libraries, from the dynamic linker's `r_debug`.
    pub fn libraries(&self, pid: Pid) -> Result<LibraryList> {
        let auxv = solib::parse_auxv(&self.inf.auxv(pid)?);
        let read = |a: u64, b: &mut [u8]| matches!(self.inf.read_memory(pid, VirtAddr(a), b), Ok(n) if n == b.len());
        Ok(solib::read_libraries(&auxv, &read))
    }

    /// Forked children handled so far.
    pub fn forks_handled(&self) -> u64 {
        self.inf.forks_handled
    }

    /// Resolve a location: `0xADDR` (or `*0xADDR`), or a symbol of the main program (its load
    /// bias applied).
    pub fn resolve_location(&self, pid: Pid, loc: &str) -> Result<VirtAddr> {
        let loc = loc.trim().trim_start_matches('*');
        let bad = Error::Location;
        if let Some(h) = loc.strip_prefix("0x").or_else(|| loc.strip_prefix("0X")) {
            return u64::from_str_radix(h, 16).map(VirtAddr).map_err(|_| bad(format!("bad address {loc:?}")));
        }
        if loc.is_empty() {
            return Err(bad("no location given".into()));
        }
        let exe = self.inf.exe(pid)?;
        let bytes = std::fs::read(&exe).map_err(|e| bad(format!("cannot read {}: {e}", exe.display())))?;
        let value = crate::symbols::lookup(&bytes, loc)
            .map_err(|e| bad(format!("{}: {e}", exe.display())))?
            .ok_or_else(|| bad(format!("no symbol {loc:?} in {}", exe.display())))?;
        let (entry, ty) = crate::symbols::entry_and_type(&bytes).map_err(|e| bad(e.to_string()))?;
        let bias = if ty == 3 {
            let auxv = solib::parse_auxv(&self.inf.auxv(pid)?);
            let at_entry = auxv.iter().find(|(k, _)| *k == 9).map(|(_, v)| *v).unwrap_or(entry);
            at_entry.wrapping_sub(entry)
        } else {
            0
        };
        Ok(VirtAddr(value.wrapping_add(bias)))
    }

    /// Add a counting probe at `location` (see [`Debugger::resolve_location`]): every hit is
    /// counted and nothing stops. Returns its id.
    pub fn count(&mut self, pid: Pid, location: &str) -> Result<u32> {
        let addr = self.resolve_location(pid, location)?;
        self.inf.add_count_probe(pid, addr, location)
    }

    /// Remove the counting probes at `location` (as given to [`Debugger::count`], or its
    /// address). Returns how many were removed.
    pub fn uncount(&mut self, pid: Pid, location: &str) -> Result<usize> {
        let mut ids = self.inf.find_count_probes(location);
        if ids.is_empty() {
            if let Ok(a) = self.resolve_location(pid, location) {
                ids = self.inf.find_count_probes(&format!("{:#x}", a.0));
            }
        }
        for id in &ids {
            self.inf.remove_count_probe(*id)?;
        }
        Ok(ids.len())
    }

    /// Every counting probe with its plan kind and hits per process.
    pub fn probes(&self) -> Vec<ProbeInfo> {
        self.inf.probes()
    }

    /// The plan kind chosen for the breakpoint at `addr`, if one is inserted there.
    pub fn plan_kind(&self, pid: Pid, addr: VirtAddr) -> Option<PlanKind> {
        self.inf.plan_kind(pid, addr)
    }

    /// The displaced-stepping slot area of a process (base, length), once mapped.
    pub fn slot_area(&self, pid: Pid) -> Option<(u64, u64)> {
        self.inf.slot_area(pid)
    }

    /// Choose how threads go past breakpoints (displaced by default).
    pub fn set_step_mode(&mut self, mode: StepMode) {
        self.inf.set_step_mode(mode)
    }

    /// How threads go past breakpoints.
    pub fn step_mode(&self) -> StepMode {
        self.inf.step_mode
    }

    /// Counters of the resume paths.
    pub fn step_stats(&self) -> StepStats {
        self.inf.step_stats
    }

    /// Single-step the stopped thread `tid` over the breakpointed instruction at its ip, by the
    /// given method; returns the stop that ended it (for differential tests and tools).
    pub fn step_instruction(&mut self, pid: Pid, tid: Tid, mode: StepMode) -> Result<StopKind> {
        self.inf.step_instruction(pid, tid, mode)
    }
}
