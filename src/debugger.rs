//! The core facade every front-end uses (gdb stub, REPL, tracepoint runner).
//!
//! It owns the traced processes and is driven from one thread (the one that attached them, as
//! ptrace requires). Front-ends never call ptrace and never see a breakpoint byte: memory read
//! through here is shadow-masked. Independent of gdbstub: ids and registers are xol's types.

use crate::inferior::{self, Action, HwKind, Inferior, SpawnSpec, SyscallFilter, WaitOutcome};
use crate::solib::{self, LibraryList};
use crate::types::{Owner, Pid, Tid, VirtAddr};
use std::os::fd::BorrowedFd;
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
}
