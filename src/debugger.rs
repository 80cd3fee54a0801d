//! The core facade every front-end uses (gdb stub, REPL, tracepoint runner).
//!
//! It owns the traced processes and is driven from one thread (the one that attached them, as
//! ptrace requires). Front-ends never call ptrace and never see a breakpoint byte: memory read
//! through here is shadow-masked. Independent of gdbstub: ids and registers are xol's types.

use crate::inferior::{self, HwKind, Inferior, SpawnSpec, SyscallFilter};
pub use crate::inferior::{Action, ProbeInfo, SpawnSpec as LaunchSpec, StepMode, StepStats, WaitOutcome};
use crate::probe::{Consumer, Scope};
use crate::solib::{self, LibraryList};
use crate::types::{FileSite, Owner, Pid, Tid, VirtAddr};
use std::os::fd::BorrowedFd;
pub use xol_arch::displaced::PlanKind;
use xol_arch::regs::RegisterFile;

pub use crate::inferior::{Error, StopEvent, StopKind};

/// Result of a facade call.
pub type Result<T> = inferior::Result<T>;

/// What new gdb breakpoints and new counting probes are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ProbeMode {
    /// Confined to the address space they were set in (gdb's breakpoints by default).
    #[default]
    PerProcess,
    /// Keyed by (device, inode, offset): armed in every traced process mapping the file,
    /// forked children, exec'd programs and libraries loaded later included.
    PerFile,
}

/// The debugger core.
#[derive(Debug, Default)]
pub struct Debugger {
    inf: Inferior,
    mode: ProbeMode,
    /// gdb breakpoints made per-file: (pid, address) -> probe id.
    gdb_file_bps: std::collections::BTreeMap<(Pid, u64), u32>,
    /// Per-file gdb breakpoints gdb removed (`z0`) but that stay armed in followed children
    /// until gdb continues without inserting them again: gdb removes its breakpoints at every
    /// stop and to step over one (`z0`, step, `Z0`), and children must not lose hits meanwhile.
    gdb_file_parked: std::collections::BTreeMap<(Pid, u64), u32>,
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
        // A continue (not just a step, as in gdb's step-over of a breakpoint) with a per-file
        // gdb breakpoint still removed: gdb deleted it for good.
        let continues = default.is_some_and(|a| !a.step) || actions.iter().any(|(_, a)| !a.step);
        if continues && !self.gdb_file_parked.is_empty() {
            for (_, id) in std::mem::take(&mut self.gdb_file_parked) {
                self.inf.remove_probe(id)?;
            }
        }
        self.inf.resume(pid, actions, default)
    }

    /// Wait for a stop, input on `input`, or a termination request.
    pub fn wait(&mut self, input: Option<BorrowedFd<'_>>) -> Result<WaitOutcome> {
        self.inf.wait(input)
    }

    /// [`Debugger::wait`] with a timeout ([`WaitOutcome::Timeout`]); probe hits and other
    /// internal events are handled meanwhile.
    pub fn wait_timeout(&mut self, input: Option<BorrowedFd<'_>>, timeout: std::time::Duration) -> Result<WaitOutcome> {
        self.inf.wait_for(input, Some(timeout))
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

    /// What new gdb breakpoints and counting probes are.
    pub fn set_probe_mode(&mut self, mode: ProbeMode) {
        self.mode = mode;
    }

    /// The current probe mode.
    pub fn probe_mode(&self) -> ProbeMode {
        self.mode
    }

    /// A place in a file for `location`: `FILE:SYMBOL` or `FILE:0xOFFSET` (FILE a path, or the
    /// name of a file mapped in `pid`, e.g. `libc.so.6`), or an address/symbol of `pid`
    /// translated through its mappings.
    pub fn resolve_file_site(&mut self, pid: Pid, location: &str) -> Result<(FileSite, std::path::PathBuf)> {
        let bad = Error::Location;
        if let Some((file, what)) = location.rsplit_once(':').filter(|(f, _)| !f.is_empty() && !f.starts_with("0x")) {
            let path = self.find_file(pid, file)?;
            let id = Inferior::file_id(&path)?;
            let offset = if let Some(h) = what.strip_prefix("0x") {
                u64::from_str_radix(h, 16).map_err(|_| bad(format!("bad offset {what:?}")))?
            } else {
                let bytes = std::fs::read(&path).map_err(|e| bad(format!("{}: {e}", path.display())))?;
                let v = crate::symbols::lookup(&bytes, what)
                    .map_err(|e| bad(format!("{}: {e}", path.display())))?
                    .ok_or_else(|| bad(format!("no symbol {what:?} in {}", path.display())))?;
                crate::symbols::vaddr_to_offset(&bytes, v)
                    .map_err(|e| bad(e.to_string()))?
                    .ok_or_else(|| bad(format!("{what} is not in a loaded segment of {}", path.display())))?
            };
            return Ok((FileSite { file: id, offset }, path));
        }
        let addr = self.resolve_location(pid, location)?;
        match self.inf.file_site(pid, addr)? {
            Some((site, path)) => Ok((site, path.map(Into::into).unwrap_or_default())),
            None => Err(bad(format!("{addr} is not in a file mapped by process {pid}"))),
        }
    }

    /// A file named by the user: a path, or the name of a file mapped in `pid`.
    fn find_file(&mut self, pid: Pid, name: &str) -> Result<std::path::PathBuf> {
        let p = std::path::Path::new(name);
        if p.is_absolute() || p.exists() {
            return Ok(p.to_path_buf());
        }
        for m in self.inf.mappings(pid)? {
            if let Some(path) = m.path {
                let base = std::path::Path::new(&path).file_name().map(|f| f.to_string_lossy().into_owned());
                if base.as_deref() == Some(name) || path.ends_with(&format!("/{name}")) {
                    return Ok(path.into());
                }
            }
        }
        Err(Error::Location(format!("no file {name:?} is mapped in process {pid} (give a path)")))
    }

    /// Add a counting probe at `location` (see [`Debugger::resolve_location`]; `FILE:SYMBOL`
    /// and `FILE:0xOFFSET` make a per-file probe): every hit is counted and nothing stops.
    /// Per-file or per-process as the probe mode says. Returns its id.
    pub fn count(&mut self, pid: Pid, location: &str) -> Result<u32> {
        let file_form = location.rsplit_once(':').is_some_and(|(f, _)| !f.is_empty() && !f.starts_with("0x"));
        if self.mode == ProbeMode::PerFile || file_form {
            let (site, path) = self.resolve_file_site(pid, location)?;
            return self.inf.add_probe(Scope::PerFile { site, path }, Consumer::Count, location);
        }
        let addr = self.resolve_location(pid, location)?;
        self.inf.add_count_probe(pid, addr, location)
    }

    /// A gdb breakpoint (`Z0`) at `addr`: per-process (an `Owner::Gdb` hold) or, in per-file
    /// mode, a per-file probe whose hits are reported to gdb in its process and counted in
    /// forked children.
    pub fn insert_gdb_breakpoint(&mut self, pid: Pid, addr: VirtAddr) -> Result<()> {
        if let Some(id) = self.gdb_file_parked.remove(&(pid, addr.0)) {
            // Back in gdb's process, the same probe: its hits (children's included) go on.
            self.inf.rearm_probe_in(pid, id)?;
            self.gdb_file_bps.insert((pid, addr.0), id);
            return Ok(());
        }
        if self.mode == ProbeMode::PerFile && !self.gdb_file_bps.contains_key(&(pid, addr.0)) {
            if let Some((site, path)) = self.inf.file_site(pid, addr)? {
                let id = self.inf.add_probe(
                    Scope::PerFile { site, path: path.map(Into::into).unwrap_or_default() },
                    Consumer::Gdb,
                    &format!("gdb breakpoint at {addr}"),
                )?;
                self.gdb_file_bps.insert((pid, addr.0), id);
                return Ok(());
            }
        }
        if self.gdb_file_bps.contains_key(&(pid, addr.0)) {
            return Ok(());
        }
        self.inf.insert_breakpoint(pid, addr, Owner::Gdb)
    }

    /// Remove gdb's breakpoint at `addr` (`z0`); other owners' holds stay. False if gdb had none.
    pub fn remove_gdb_breakpoint(&mut self, pid: Pid, addr: VirtAddr) -> Result<bool> {
        if let Some(id) = self.gdb_file_bps.remove(&(pid, addr.0)) {
            // Out of gdb's process at once; kept in children until gdb continues without it.
            self.gdb_file_parked.insert((pid, addr.0), id);
            return self.inf.disarm_probe_in(pid, id);
        }
        self.inf.remove_breakpoint(pid, addr, Owner::Gdb)
    }

    /// Remove the probes at `location` (as given to [`Debugger::count`], or its address).
    /// Returns how many were removed.
    pub fn uncount(&mut self, pid: Pid, location: &str) -> Result<usize> {
        let mut ids = self.inf.find_count_probes(location);
        if ids.is_empty() {
            if let Ok(a) = self.resolve_location(pid, location) {
                ids = self.inf.find_count_probes(&format!("{:#x}", a.0));
            }
        }
        for id in &ids {
            self.remove_probe(*id)?;
        }
        Ok(ids.len())
    }

    /// Remove a probe by id; false if there is none.
    pub fn remove_probe(&mut self, id: u32) -> Result<bool> {
        self.gdb_file_bps.retain(|_, v| *v != id);
        self.gdb_file_parked.retain(|_, v| *v != id);
        self.inf.remove_probe(id)
    }

    /// Signals (Linux numbers) to deliver to a running thread at once, without stopping or
    /// reporting (gdb's `QPassSignals`; replaces the previous set).
    pub fn set_pass_signals(&mut self, sigs: impl IntoIterator<Item = i32>) {
        self.inf.pass_signals = sigs.into_iter().collect();
    }

    /// Hits of a probe per process (processes that ended included).
    pub fn probe_hits(&self, id: u32) -> Vec<(Pid, u64)> {
        self.inf.probe_hits(id)
    }

    /// Counters of the maps cache (lookups, cache hits, kernel queries, full reads).
    pub fn maps_stats(&self) -> crate::maps::MapsStats {
        self.inf.maps_stats()
    }

    /// Forked children followed (traced for per-file probes).
    pub fn children_followed(&self) -> u64 {
        self.inf.children_followed
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
