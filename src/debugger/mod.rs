//! The core facade every front-end uses (gdb stub, REPL, tracepoint runner).
//!
//! It owns the traced processes and is driven from one thread (the one that attached them, as
//! ptrace requires). Front-ends never call ptrace and never see a breakpoint byte: memory read
//! through here is shadow-masked. Independent of gdbstub: ids and registers are xol's types.

pub use crate::inferior::notice::{Notice, Subscription};
use crate::inferior::{self, Inferior};
pub use crate::inferior::{Action, StepMode, StepStats, WaitOutcome};
pub use crate::inferior::{HwKind, ProcessInfo, SyscallFilter};
pub use crate::probe::Consumer;

/// The descriptor plumbing a front-end needs for its own connection (termination signals read
/// from the core's signalfd, polling, non-blocking and serial descriptors): the kernel calls
/// stay in `sys`, front-ends reach them only through here.
pub mod io {
    pub use crate::sys::signals::*;
}
use crate::probe::Scope;
use crate::solib::{self, LibraryList};
use crate::types::{ClientId, FileSite, Owner, Pid, Tid, VirtAddr};
use std::os::fd::BorrowedFd;
pub use xol_arch::displaced::PlanKind;
use xol_arch::regs::RegisterFile;

pub use crate::inferior::{StopEvent, StopKind};

mod error;
mod launch;
mod location;
mod report;
mod tls;
pub use crate::maps::MapsStats;
pub use error::Error;
pub use launch::{Launch, Stdin, Stdout};
pub use location::{FilePlace, Location, LocationError};
pub use report::{ProbeReport, ProbeState, Stats};

/// Result of a session call.
pub type Result<T> = std::result::Result<T, Error>;

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

/// What a per-file location resolved to.
enum FileTarget {
    /// A place in a file (and the file's path).
    Site(FileSite, std::path::PathBuf),
    /// A file named by a name no traced process maps yet.
    Pending { file: String, what: String },
}

/// The file the dynamic linker would load for a library name given without a directory:
/// `LD_LIBRARY_PATH` (the program inherits xol's environment), then the system directories of
/// x86-64 Linux distributions. `None` when no such file exists (a plugin loaded by a path of
/// its own, or a typo): the probe stays pending on the name.
fn loader_candidate(name: &str) -> Option<std::path::PathBuf> {
    const SYSTEM: [&str; 7] = [
        "/lib/x86_64-linux-gnu",
        "/usr/lib/x86_64-linux-gnu",
        "/lib64",
        "/usr/lib64",
        "/lib",
        "/usr/lib",
        "/usr/local/lib",
    ];
    let env = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    let found = env
        .split(':')
        .filter(|d| !d.is_empty())
        .chain(SYSTEM)
        .map(|d| std::path::Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

/// A location that names a source line: refused until DWARF line tables are read.
fn line_unsupported(loc: &Location) -> Error {
    Error::Location(format!(
        "{loc}: FILE:LINE locations are not supported yet (xol reads no DWARF line tables); \
         give a function (SYMBOL or FILE:SYMBOL) or an address (0xADDR or FILE:0xOFFSET)"
    ))
}

/// The debugger core.
#[derive(Debug, Default)]
pub struct Debugger {
    inf: Inferior,
    mode: ProbeMode,
    /// The last [`ClientId`] handed out.
    last_client: u32,
    /// Per-file client breakpoints taken out of their client's process
    /// ([`Debugger::withdraw_probe`]) and not put back yet.
    withdrawn: std::collections::BTreeSet<u32>,
}

/// A session that ends without releasing its processes (a front-end that returned early or
/// panicked) still leaves none of them traced: what it launched is killed, what it attached to
/// is detached with every byte of xol's taken out.
impl Drop for Debugger {
    fn drop(&mut self) {
        self.inf.release_all();
    }
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
    pub fn launch(&mut self, launch: &Launch) -> Result<Pid> {
        Ok(self.inf.launch(&launch.spec())?)
    }

    /// Attach to a running process; all its threads are stopped on return.
    pub fn attach(&mut self, pid: Pid) -> Result<()> {
        Ok(self.inf.attach(pid)?)
    }

    /// Detach: breakpoint bytes restored, the process runs on.
    pub fn detach(&mut self, pid: Pid) -> Result<()> {
        Ok(self.inf.detach(pid)?)
    }

    /// Kill a process.
    pub fn kill(&mut self, pid: Pid) -> Result<()> {
        Ok(self.inf.kill(pid)?)
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

    /// Register a front-end session: the owner of its breakpoints ([`Owner::Client`]) and the
    /// consumer its per-file breakpoints report to.
    pub fn new_client(&mut self) -> ClientId {
        self.last_client += 1;
        ClientId(self.last_client)
    }

    /// On detach, deliver the last signal a thread stopped with that the front-end never
    /// passed on, when `pass` says so (the front-end's signal policy, e.g. gdb's `handle`
    /// table). By default such a signal is not delivered.
    pub fn set_pass_on_detach(&mut self, pass: fn(i32) -> bool) {
        self.inf.pass_on_detach = Some(pass);
    }

    /// Choose what [`Debugger::wait`] also reports, as [`WaitOutcome::Notice`]s, besides the
    /// stops: forks, execs, threads and followed children ending (`lifecycle`), every probe
    /// hit with its consumer (`probe_hits`). Nothing by default; notices queued under the
    /// previous subscription are dropped.
    pub fn subscribe(&mut self, sub: Subscription) {
        self.inf.notices.clear();
        self.inf.notices.sub = sub;
    }

    /// Resume: explicit per-thread actions, and a default for the others (`None`: stay stopped).
    pub fn resume(&mut self, pid: Pid, actions: &[(Tid, Action)], default: Option<Action>) -> Result<()> {
        Ok(self.inf.resume(pid, actions, default)?)
    }

    /// Wait for a stop, input on `input`, or a termination request.
    pub fn wait(&mut self, input: Option<BorrowedFd<'_>>) -> Result<WaitOutcome> {
        Ok(self.inf.wait(input)?)
    }

    /// [`Debugger::wait`] with a timeout ([`WaitOutcome::Timeout`]); probe hits and other
    /// internal events are handled meanwhile.
    pub fn wait_timeout(&mut self, input: Option<BorrowedFd<'_>>, timeout: std::time::Duration) -> Result<WaitOutcome> {
        Ok(self.inf.wait_for(input, Some(timeout))?)
    }

    /// Interrupt a running process as Ctrl-C would (SIGINT).
    pub fn interrupt(&mut self, pid: Pid) -> Result<()> {
        Ok(self.inf.interrupt(pid)?)
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
        Ok(self.inf.read_regs(tid)?)
    }

    /// Write all registers of a thread.
    pub fn write_registers(&self, tid: Tid, regs: &RegisterFile) -> Result<()> {
        Ok(self.inf.write_regs(tid, regs)?)
    }

    /// Read memory (xol's breakpoints masked). Returns the number of bytes readable.
    pub fn read_memory(&self, pid: Pid, addr: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        Ok(self.inf.read_memory(pid, addr, buf)?)
    }

    /// Write memory (xol's breakpoints kept).
    pub fn write_memory(&mut self, pid: Pid, addr: VirtAddr, data: &[u8]) -> Result<()> {
        Ok(self.inf.write_memory(pid, addr, data)?)
    }

    /// Insert a software breakpoint owned by `owner`.
    pub fn insert_breakpoint(&mut self, pid: Pid, addr: VirtAddr, owner: Owner) -> Result<()> {
        Ok(self.inf.insert_breakpoint(pid, addr, owner)?)
    }

    /// Drop `owner`'s hold on a breakpoint; false if it had none.
    pub fn remove_breakpoint(&mut self, pid: Pid, addr: VirtAddr, owner: Owner) -> Result<bool> {
        Ok(self.inf.remove_breakpoint(pid, addr, owner)?)
    }

    /// Insert a hardware breakpoint (`HwKind::Exec`) or watchpoint.
    pub fn insert_hw(&mut self, pid: Pid, addr: VirtAddr, len: u64, kind: HwKind) -> Result<()> {
        Ok(self.inf.insert_hw(pid, addr.0, len, kind)?)
    }

    /// Remove a hardware breakpoint or watchpoint; false if there was none.
    pub fn remove_hw(&mut self, pid: Pid, addr: VirtAddr, len: u64, kind: HwKind) -> Result<bool> {
        Ok(self.inf.remove_hw(pid, addr.0, len, kind)?)
    }

    /// Remove every hardware breakpoint and watchpoint of a process.
    pub fn clear_hw(&mut self, pid: Pid) -> Result<()> {
        Ok(self.inf.clear_hw(pid)?)
    }

    /// The breakpoints of a process with their owners.
    pub fn breakpoints(&self, pid: Pid) -> Vec<(VirtAddr, Vec<Owner>)> {
        self.inf.insertions(pid).into_iter().map(|(a, i)| (a, i.owners)).collect()
    }

    /// Stop at syscalls (`Some`) or not (`None`).
    pub fn set_catch_syscalls(&mut self, pid: Pid, filter: Option<SyscallFilter>) -> Result<()> {
        Ok(self.inf.set_catch_syscalls(pid, filter)?)
    }

    /// The raw auxiliary vector.
    pub fn auxv(&self, pid: Pid) -> Result<Vec<u8>> {
        Ok(self.inf.auxv(pid)?)
    }

    /// The executable.
    pub fn exe(&self, pid: Pid) -> Result<std::path::PathBuf> {
        Ok(self.inf.exe(pid)?)
    }

    /// The loaded shared libraries, from the dynamic linker's `r_debug`.
    pub fn libraries(&self, pid: Pid) -> Result<LibraryList> {
        let auxv = solib::parse_auxv(&self.inf.auxv(pid)?);
        let read = |a: u64, b: &mut [u8]| matches!(self.inf.read_memory(pid, VirtAddr(a), b), Ok(n) if n == b.len());
        Ok(solib::read_libraries(&auxv, &read))
    }

    /// Resolve a location to an address of `pid`: an address, a symbol of the main program
    /// (its load bias applied), or a place in a file mapped by `pid`. Only resolves: see
    /// [`Debugger::count`] for the checks a probe needs.
    pub fn resolve_location(&mut self, pid: Pid, loc: &Location) -> Result<VirtAddr> {
        self.resolve_symbol(pid, loc).map(|(a, _)| a)
    }

    /// [`Debugger::resolve_location`], with the symbol when the location was one.
    fn resolve_symbol(&mut self, pid: Pid, loc: &Location) -> Result<(VirtAddr, Option<crate::symbols::Symbol>)> {
        let bad = Error::Location;
        let name = match loc {
            Location::Address(a) => return Ok((VirtAddr(*a), None)),
            Location::Line { .. } => return Err(line_unsupported(loc)),
            Location::InFile { .. } => {
                let (site, path) = self.resolve_file_site(pid, loc)?;
                let maps = self.inf.mappings(pid)?;
                let addr = maps.iter().filter(|m| m.file == Some(site.file)).find_map(|m| m.addr_of(site.offset));
                return match addr {
                    Some(a) => Ok((VirtAddr(a), None)),
                    None => Err(bad(format!("{loc}: {} is not mapped there in process {pid}", path.display()))),
                };
            }
            Location::Symbol(name) => name.as_str(),
        };
        let exe = self.inf.exe(pid)?;
        let bytes = crate::symbols::read_file(&exe).map_err(bad)?;
        let sym = crate::symbols::lookup_symbol(&bytes, name)
            .map_err(|e| bad(format!("{}: {e}", exe.display())))?
            .ok_or_else(|| bad(format!("no symbol {name:?} in {}", exe.display())))?;
        let (entry, ty) = crate::symbols::entry_and_type(&bytes).map_err(|e| bad(e.to_string()))?;
        let bias = if ty == crate::symbols::elf::ET_DYN {
            let auxv = solib::parse_auxv(&self.inf.auxv(pid)?);
            let at_entry =
                auxv.iter().find(|(k, _)| *k == crate::symbols::elf::AT_ENTRY).map(|(_, v)| *v).unwrap_or(entry);
            at_entry.wrapping_sub(entry)
        } else {
            0
        };
        Ok((VirtAddr(sym.value.wrapping_add(bias)), Some(sym)))
    }

    /// Check that `addr` may carry a probe in `pid`: it is mapped, executable, backed by a
    /// file, and starts an instruction of that file's code ([`crate::symbols::check_code`]).
    /// Anonymous executable memory (JIT code, `[vdso]`) is refused: nothing tells where its
    /// instructions start.
    pub fn check_probe_address(&mut self, pid: Pid, addr: VirtAddr) -> Result<()> {
        let bad = Error::Location;
        let maps = self.inf.mappings(pid)?;
        let Some(m) = maps.iter().find(|m| m.contains(addr.0)) else {
            // Only when the kernel randomises this process is "the address changed" a reason.
            let aslr = match self.inf.randomized(pid) {
                Some(false) => "",
                Some(true) => "; address randomisation is on for it, so addresses of PIE programs and libraries change from run to run",
                None => "; with address randomisation on, addresses of PIE programs and libraries change from run to run",
            };
            return Err(bad(format!(
                "{addr} is not mapped in process {pid} (a library not loaded yet? name it FILE:SYMBOL or FILE:0xOFFSET to arm it when it is{aslr})"
            )));
        };
        let name = m.path.clone().unwrap_or_else(|| "anonymous memory".into());
        if !m.perms.exec {
            return Err(bad(format!(
                "{addr} is not code: it is in a non-executable mapping of process {pid} ({} {name})",
                m.perms
            )));
        }
        let (Some(site), Some(path)) = (m.site_of(addr.0), m.path.as_deref().filter(|p| p.starts_with('/'))) else {
            return Err(bad(format!(
                "{addr} is in executable memory that is not a file ({name}): xol cannot check that it starts an instruction"
            )));
        };
        let (bytes, id) = crate::symbols::read_file_id(std::path::Path::new(path)).map_err(bad)?;
        if (id.0, id.1) != (site.file.dev, site.file.ino) {
            return Err(bad(format!("{path} changed on disk since process {pid} mapped it: cannot check {addr}")));
        }
        let (v, _) = crate::symbols::offset_to_vaddr(&bytes, site.offset)
            .map_err(|e| bad(format!("{path}: {e}")))?
            .ok_or_else(|| bad(format!("{addr} is in no loadable segment of {path}")))?;
        crate::symbols::check_code(&bytes, v, addr.0.wrapping_sub(v)).map_err(|e| bad(e.to_string()))
    }

    /// Report forks and vforks as stops ([`StopKind::Forked`], then [`StopKind::VforkDone`] in
    /// the parent once a vfork child has exec'd or exited; gdb's `fork-events+` and
    /// `vfork-events+`). The child is kept stopped as a process of this session's, with the
    /// parent's breakpoints in its memory; [`Debugger::detach`] lets it go with none of xol's
    /// bytes (or, while per-file probes exist, xol follows it on its own so they keep
    /// counting). Off (the default): a child runs on untraced, or is followed on xol's own
    /// while per-file probes exist, and the session sees only a [`Notice::Forked`].
    pub fn set_fork_events(&mut self, on: bool) {
        self.inf.fork_events = on;
    }

    /// Report execs as stops ([`StopKind::Exec`]; gdb's `exec-events+`). Off (the default):
    /// the session sees only a [`Notice::Exec`].
    pub fn set_exec_events(&mut self, on: bool) {
        self.inf.exec_events = on;
    }

    /// Report thread creation and exit as stops ([`StopKind::ThreadCreated`] of the new thread,
    /// stopped at its start; [`StopKind::ThreadExited`] with its status; gdb's
    /// `QThreadEvents:1`). Off (the default): the session sees notices only.
    pub fn set_thread_events(&mut self, on: bool) {
        self.inf.thread_events = on;
    }

    /// Non-stop mode (gdb's `QNonStop:1`): a reported stop stops only its thread, the others
    /// run on; [`Debugger::resume`] runs the threads it names (a thread with an event still to
    /// report stays stopped, the next wait reports it) and [`Debugger::stop_threads`] stops
    /// threads one by one. Memory can be read and written, and breakpoints inserted, while
    /// threads run; registers only of stopped threads. Off (the default): all-stop.
    pub fn set_non_stop(&mut self, on: bool) {
        self.inf.non_stop = on;
    }

    /// True in non-stop mode.
    pub fn non_stop(&self) -> bool {
        self.inf.non_stop
    }

    /// Stop running threads of `pid` (every one if `tids` is empty), leaving the others as
    /// they are: each reports [`StopKind::Stopped`] through [`Debugger::wait`], or another
    /// event it met first. Threads already stopped are left alone.
    pub fn stop_threads(&mut self, pid: Pid, tids: &[Tid]) -> Result<()> {
        Ok(self.inf.stop_threads(pid, tids)?)
    }

    /// The `siginfo_t` of the signal the stopped thread `tid` last stopped with (gdb's
    /// `$_siginfo`), 128 bytes as the kernel lays it out.
    pub fn siginfo(&self, tid: Tid) -> Result<Vec<u8>> {
        Ok(self.inf.siginfo(tid)?)
    }

    /// Write `data` at `offset` of the stopped thread's `siginfo_t`: delivered with the signal
    /// if the thread is resumed with it.
    pub fn set_siginfo(&self, tid: Tid, offset: usize, data: &[u8]) -> Result<()> {
        Ok(self.inf.set_siginfo(tid, offset, data)?)
    }

    /// Every process of the system with its user, command line, process group, threads (and
    /// the CPU each last ran on) and open files (gdb's `info os`, `qXfer:osdata:read`).
    pub fn os_processes(&self) -> Vec<ProcessInfo> {
        self.inf.processes()
    }

    /// True if `tid` of `pid` is in a stop xol has seen (reported or not).
    pub fn is_stopped(&self, pid: Pid, tid: Tid) -> bool {
        self.inf.is_stopped(pid, tid)
    }

    /// Set the target-side conditions of `owner`'s breakpoint at `addr` (gdb's
    /// `ConditionalBreakpoints+`: agent-expression bytecode, one string per condition),
    /// replacing those it had; an empty list removes them. The breakpoint is then reported only
    /// when one condition is true (or cannot be evaluated); otherwise the thread goes on at
    /// once, evaluated in xol on the trap path. A condition xol refuses (floats, malformed
    /// bytecode) makes it stop every time, so the front-end can evaluate it. Conditions go with
    /// the owner's last hold on the breakpoint and with an exec; a forked child inherits them.
    pub fn set_breakpoint_conditions(
        &mut self,
        pid: Pid,
        addr: VirtAddr,
        owner: Owner,
        codes: &[Vec<u8>],
    ) -> Result<()> {
        Ok(self.inf.set_conditions(pid, addr.0, owner, codes)?)
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
    /// translated through its mappings. The place is checked to be code that starts an
    /// instruction.
    pub fn resolve_file_site(&mut self, pid: Pid, location: &Location) -> Result<(FileSite, std::path::PathBuf)> {
        match self.file_target(pid, location)? {
            FileTarget::Site(site, path) => Ok((site, path)),
            FileTarget::Pending { file, .. } => {
                Err(Error::Location(format!("no file {file:?} is mapped in process {pid} (give a path)")))
            }
        }
    }

    /// What a per-file location names: a place in a file, or a file not mapped yet.
    fn file_target(&mut self, pid: Pid, location: &Location) -> Result<FileTarget> {
        let bad = Error::Location;
        if let Location::Line { .. } = location {
            return Err(line_unsupported(location));
        }
        if let Location::InFile { file, place } = location {
            let what = place.to_string();
            let what = what.as_str();
            let path = match self.find_file(pid, file)? {
                Some(p) => p,
                None => {
                    // Not mapped yet. Where the dynamic linker would find a library of that
                    // name, a symbol it lacks is refused now (as bpftrace does), not after the
                    // program has run with a probe that can never be armed.
                    if let Some(lib) = loader_candidate(file) {
                        if let Ok(bytes) = crate::symbols::read_file(&lib) {
                            crate::symbols::place_in_file(&bytes, what).map_err(|e| {
                                bad(format!("{} (where {file} would be loaded from): {e}", lib.display()))
                            })?;
                        }
                    }
                    return Ok(FileTarget::Pending { file: file.to_string(), what: what.to_string() });
                }
            };
            let (bytes, (dev, ino)) = crate::symbols::read_file_id(&path).map_err(bad)?;
            let offset =
                crate::symbols::place_in_file(&bytes, what).map_err(|e| bad(format!("{}: {e}", path.display())))?;
            return Ok(FileTarget::Site(FileSite { file: crate::types::FileId { dev, ino }, offset }, path));
        }
        let addr = self.checked_address(pid, location)?;
        match self.inf.file_site(pid, addr)? {
            Some((site, path)) => Ok(FileTarget::Site(site, path.map(Into::into).unwrap_or_default())),
            None => Err(bad(format!("{addr} is not in a file mapped by process {pid}"))),
        }
    }

    /// Resolve a location of `pid` (`0xADDR` or a symbol) for a probe: a data symbol is
    /// refused by its name, an address by [`Debugger::check_probe_address`].
    fn checked_address(&mut self, pid: Pid, location: &Location) -> Result<VirtAddr> {
        let (addr, sym) = self.resolve_symbol(pid, location)?;
        if let Some(s) = sym.filter(|s| !s.in_exec_section) {
            let kind = if s.is_object { "a data object" } else { "a symbol" };
            return Err(Error::Location(format!(
                "{} is {kind} in a non-executable section ({addr}), not code",
                s.name
            )));
        }
        self.check_probe_address(pid, addr)?;
        Ok(addr)
    }

    /// A file named by the user: a path, or the name of a file mapped in `pid` (its basename,
    /// the end of its path, or its soname). `None`: a name (no `/`) that no mapping of `pid` has yet.
    fn find_file(&mut self, pid: Pid, name: &str) -> Result<Option<std::path::PathBuf>> {
        let p = std::path::Path::new(name);
        if p.is_absolute() || name.contains('/') {
            if !p.exists() {
                return Err(Error::Location(format!("{name}: no such file")));
            }
            return Ok(Some(p.to_path_buf()));
        }
        let maps = self.inf.mappings(pid)?;
        let paths: Vec<&str> = maps.iter().filter_map(|m| m.path.as_deref().filter(|p| p.starts_with('/'))).collect();
        if let Some(path) = paths.iter().find(|p| crate::symbols::file_name_matches(p, name)) {
            return Ok(Some(path.into()));
        }
        // A library named by its soname (`libstdc++.so.6`) while the maps show its file.
        for path in paths.iter().filter(|p| crate::symbols::may_have_soname(p, name)) {
            let b = crate::symbols::read_file(std::path::Path::new(path)).map_err(Error::Location)?;
            if crate::symbols::soname(&b).as_deref() == Some(name) {
                return Ok(Some(path.into()));
            }
        }
        if p.exists() {
            return Ok(Some(p.to_path_buf()));
        }
        Ok(None)
    }

    /// Add a counting probe at `location`: `0xADDR`, a symbol of the program, or (always
    /// per-file) `FILE:SYMBOL` / `FILE:0xOFFSET`. Every hit is counted and nothing stops.
    /// Per-file or per-process as the probe mode says. The place must be code and start an
    /// instruction (else the reason is returned). A FILE given by name (`libc.so.6`) that no
    /// traced process maps yet makes a pending probe, armed when a process maps a file of that
    /// name. Returns its id.
    pub fn count(&mut self, pid: Pid, location: &Location) -> Result<u32> {
        let text = location.to_string();
        if self.mode == ProbeMode::PerFile || location.names_file() {
            let scope = match self.file_target(pid, location)? {
                FileTarget::Site(site, path) => Scope::PerFile { site, path },
                FileTarget::Pending { file, what } => Scope::Pending { file, what, error: None },
            };
            return Ok(self.inf.add_probe(scope, Consumer::Count, &text)?);
        }
        let addr = self.checked_address(pid, location)?;
        Ok(self.inf.add_count_probe(pid, addr, &text)?)
    }

    /// A client's breakpoint at `addr` made per-file: a probe keyed by the place in the file,
    /// armed in every traced process that maps it, whose hits stop and are reported to
    /// `client` in the processes it debugs and are counted in the children xol follows on its
    /// own. `None` when `addr` is not in a mapped file (the caller then inserts a per-process
    /// breakpoint).
    pub fn add_breakpoint_probe(&mut self, client: ClientId, pid: Pid, addr: VirtAddr) -> Result<Option<u32>> {
        let Some((site, path)) = self.inf.file_site(pid, addr)? else { return Ok(None) };
        let scope = Scope::PerFile { site, path: path.map(Into::into).unwrap_or_default() };
        let id = self.inf.add_probe(scope, Consumer::Report(client), &addr.to_string())?;
        Ok(Some(id))
    }

    /// Take a per-file probe out of one process only (its client removed it there): it stays
    /// armed elsewhere and reads [`ProbeState::Withdrawn`]. False if there is no such probe.
    pub fn withdraw_probe(&mut self, pid: Pid, id: u32) -> Result<bool> {
        let found = self.inf.disarm_probe_in(pid, id)?;
        if found {
            self.withdrawn.insert(id);
        }
        Ok(found)
    }

    /// Arm a withdrawn per-file probe in `pid` again. False if there is no such probe.
    pub fn restore_probe(&mut self, pid: Pid, id: u32) -> Result<bool> {
        self.withdrawn.remove(&id);
        Ok(self.inf.rearm_probe_in(pid, id)?)
    }

    /// Remove the probes at `location` (as given to [`Debugger::count`], or its address).
    /// Returns how many were removed.
    pub fn uncount(&mut self, pid: Pid, location: &Location) -> Result<usize> {
        let mut ids = self.inf.find_count_probes(&location.to_string());
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
        self.withdrawn.remove(&id);
        Ok(self.inf.remove_probe(id)?)
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

    /// The counters of the core; the slot area is `pid`'s.
    pub fn stats(&self, pid: Option<Pid>) -> Stats {
        Stats {
            forks_handled: self.inf.forks_handled,
            children_followed: self.inf.children_followed,
            maps: self.inf.maps_stats(),
            steps: self.inf.step_stats,
            step_mode: self.inf.step_mode,
            slot_area: pid.and_then(|p| self.inf.slot_area(p)),
        }
    }

    /// Every probe (counting probes and per-file client breakpoints) with where it stands, for
    /// `monitor probes` and `xol count`.
    pub fn probe_reports(&self) -> Vec<ProbeReport> {
        let snap = self.inf.probe_table().snapshot();
        self.inf
            .probes()
            .into_iter()
            .map(|p| {
                let pr = snap.get(p.id);
                let reports_to = pr.and_then(|pr| match pr.consumer {
                    Consumer::Report(c) => Some(c),
                    Consumer::Count => None,
                });
                let state = match pr.map(|pr| &pr.scope) {
                    _ if !p.armed.is_empty() => ProbeState::Armed,
                    Some(Scope::Pending { file, error, .. }) => {
                        ProbeState::Pending { file: file.clone(), error: error.clone() }
                    }
                    _ if self.withdrawn.contains(&p.id) => ProbeState::Withdrawn,
                    // Not mapped yet in the processes there are (once they are all gone, it is
                    // only not mapped now).
                    Some(Scope::PerFile { path, .. }) if p.hits.is_empty() && !self.inf.pids().is_empty() => {
                        ProbeState::Pending { file: path.display().to_string(), error: None }
                    }
                    Some(Scope::PerFile { path, .. }) => ProbeState::Unmapped { file: path.display().to_string() },
                    Some(Scope::PerProcess { pid, .. }) => ProbeState::ProcessGone(*pid),
                    None => ProbeState::ProcessGone(Pid(0)),
                };
                ProbeReport {
                    id: p.id,
                    location: p.location,
                    reports_to,
                    per_file: p.mode == "per-file",
                    state,
                    armed: p.armed,
                    mnemonic: p.mnemonic,
                    plan: p.plan,
                    refusal: p.refusal,
                    hits: p.hits,
                }
            })
            .collect()
    }

    /// The report of one probe (see [`Debugger::probe_reports`]).
    pub fn probe_report(&self, id: u32) -> Option<ProbeReport> {
        self.probe_reports().into_iter().find(|p| p.id == id)
    }

    /// Which termination signal (SIGINT, SIGTERM, SIGHUP) xol received, if any.
    pub fn terminate_signal(&self) -> Option<i32> {
        self.inf.terminate_signal()
    }

    /// True if the latched termination signal came from the terminal driver (Ctrl-C): it went
    /// to the whole foreground process group, so a program launched in xol's group got it too.
    pub fn terminate_from_terminal(&self) -> bool {
        self.inf.terminate_from_terminal()
    }

    /// Forget a latched termination signal `sig` once the front-end has handled it (an
    /// interactive debugger's Ctrl-C interrupts the program instead of ending xol). Returns
    /// whether it was latched.
    pub fn clear_terminate_signal(&self, sig: i32) -> bool {
        self.inf.clear_terminate_signal(sig)
    }

    /// Send `sig` to a process xol has detached from (a signal meant for the program too).
    pub fn signal_detached(&self, pid: Pid, sig: i32) -> Result<()> {
        Ok(self.inf.signal_untraced(pid, sig)?)
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
        Ok(self.inf.step_instruction(pid, tid, mode)?)
    }
}
