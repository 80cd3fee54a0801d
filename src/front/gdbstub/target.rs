//! The gdbstub `Target`: translates gdb's requests into calls on the core [`Debugger`] facade.
//! No ptrace here; ids and signals are converted at this edge (gdb signal numbers, `Tid`s).

use super::arch::{Amd64Linux, RegNo, Regs};
use super::signals::{from_gdb, to_gdb};
use super::ServeConfig;
use crate::debugger::{Action, HwKind, Launch, SyscallFilter};
use crate::debugger::{Debugger, StopEvent, StopKind};
use crate::front::gdb_common::monitor::{self, Effect, MonitorCtx};
use crate::types::{Pid, Tid, VirtAddr};
use gdbstub::common::Signal;
use gdbstub::target::ext::base::multithread::{
    MultiThreadBase, MultiThreadRangeStepping, MultiThreadRangeSteppingOps, MultiThreadResume, MultiThreadResumeOps,
    MultiThreadSchedulerLocking, MultiThreadSchedulerLockingOps, MultiThreadSingleStep, MultiThreadSingleStepOps,
};
use gdbstub::target::ext::base::single_register_access::{SingleRegisterAccess, SingleRegisterAccessOps};
use gdbstub::target::ext::breakpoints::{
    Breakpoints, BreakpointsOps, HwBreakpoint, HwBreakpointOps, HwWatchpoint, HwWatchpointOps, SwBreakpoint,
    SwBreakpointOps, WatchKind,
};
use gdbstub::target::ext::catch_syscalls::{CatchSyscallPosition, CatchSyscalls, CatchSyscallsOps, SyscallNumbers};
use gdbstub::target::ext::extended_mode::{
    Args, AttachKind, ConfigureAslr, ConfigureAslrOps, ConfigureEnv, ConfigureEnvOps, ConfigureStartupShell,
    ConfigureStartupShellOps, ConfigureWorkingDir, ConfigureWorkingDirOps, CurrentActivePid, CurrentActivePidOps,
    ExtendedMode, ExtendedModeOps, ShouldTerminate,
};
use gdbstub::target::ext::thread_extra_info::{ThreadExtraInfo, ThreadExtraInfoOps};
use gdbstub::target::{Target, TargetError, TargetResult};
use std::ffi::OsString;
use std::num::NonZeroUsize;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The gdb-facing target.
#[derive(Debug)]
pub struct XolTarget {
    /// The core.
    pub dbg: Debugger,
    /// The process gdb is debugging.
    pub pid: Option<Pid>,
    /// Configuration.
    pub cfg: ServeConfig,
    actions: Vec<(Tid, Action)>,
    default_action: Option<Action>,
    /// Set by `monitor exit`.
    pub exit_requested: Arc<AtomicBool>,
    /// Open host-I/O files (vFile).
    pub(super) files: crate::front::gdb_common::host_io::HostFiles,
    /// gdb's last raw `vRun` (see `Conn::last_vrun`).
    pub last_vrun: std::rc::Rc<std::cell::RefCell<Option<Vec<u8>>>>,
    /// The command line of the last program started (`vRun`, or xol's own command line): what
    /// gdb's `R` (restart) starts again, as gdbserver does.
    pub last_argv: Vec<OsString>,
    /// gdb sent `!` (see `Conn::extended`).
    pub extended: std::rc::Rc<std::cell::Cell<bool>>,
    /// What the connection must know to answer or correct some packets itself (see
    /// [`super::conn::TargetState`]).
    pub state: super::conn::SharedState,
    /// The program was resumed and its stop is not reported yet (a Ctrl-C means something).
    pub running: bool,
    /// The current `m` request stopped short (unreadable memory): its later chunks read nothing.
    m_short: bool,
    /// gdb's breakpoints, gdb being one client of the core.
    pub bps: super::breakpoints::GdbBreakpoints,
}

fn tid_of(t: gdbstub::common::Tid) -> Tid {
    Tid(t.get() as i32)
}

fn gtid(t: Tid) -> gdbstub::common::Tid {
    NonZeroUsize::new(t.0 as usize).unwrap_or(NonZeroUsize::MIN)
}

fn errno_of(e: &crate::debugger::Error) -> u8 {
    u8::try_from(e.errno()).unwrap_or(libc::EIO as u8)
}

macro_rules! tri {
    ($e:expr) => {
        $e.map_err(|e| {
            log::debug!("request failed: {e}");
            TargetError::Errno(errno_of(&e))
        })?
    };
}

impl XolTarget {
    /// A target with nothing traced yet.
    pub fn new(mut dbg: Debugger, cfg: ServeConfig, exit_requested: Arc<AtomicBool>) -> XolTarget {
        // gdb's `handle` defaults: a signal the program stopped with and gdb never passed on
        // is delivered on detach unless gdb keeps it from the program by default.
        dbg.set_pass_on_detach(super::signals::passes_on_detach);
        let bps = super::breakpoints::GdbBreakpoints::new(&mut dbg);
        XolTarget {
            dbg,
            bps,
            pid: None,
            cfg,
            actions: Vec::new(),
            default_action: Some(Action::CONTINUE),
            exit_requested,
            files: Default::default(),
            last_vrun: Default::default(),
            last_argv: Vec::new(),
            extended: Default::default(),
            state: Default::default(),
            running: false,
            m_short: false,
        }
    }

    /// Make `pid` the process gdb debugs (or none). Its main thread is the current thread, as
    /// after gdbserver's run or attach, and the protocol engine's thread selection is redone
    /// before gdb's next request (it would still name a thread of the previous process).
    pub fn set_pid(&mut self, pid: Option<Pid>) {
        self.pid = pid;
        let mut st = self.state.borrow_mut();
        st.pid = pid.map(|p| p.0);
        st.stopped = pid.map(|p| (p.0, 5));
        st.resync = true;
    }

    fn cur(&self) -> Result<Pid, TargetError<String>> {
        self.pid.ok_or(TargetError::Errno(libc::ESRCH as u8))
    }

    /// The launch configuration of `argv` with gdb's configuration.
    pub fn launch_config(&self, argv: Vec<OsString>) -> Launch {
        self.cfg.launch(argv)
    }

    /// Translate a core stop event into gdb's stop reason.
    pub fn stop_reason(&mut self, ev: StopEvent) -> gdbstub::stub::MultiThreadStopReason<u64> {
        use gdbstub::stub::MultiThreadStopReason as R;
        let tid = gtid(ev.tid);
        if self.pid == Some(ev.pid) {
            // The thread gdbserver reports (`?`, qC) and selects after this stop.
            let sig = match ev.kind {
                StopKind::Signal(s) => to_gdb(s),
                _ => 5,
            };
            self.state.borrow_mut().stopped = Some((ev.tid.0, sig));
        }
        match ev.kind {
            StopKind::Breakpoint => R::SwBreak(tid),
            StopKind::Step => R::SignalWithThread { tid, signal: Signal::SIGTRAP },
            StopKind::Signal(s) => R::SignalWithThread { tid, signal: Signal(to_gdb(s)) },
            StopKind::SyscallEntry(n) => {
                R::CatchSyscall { tid: Some(tid), number: n, position: CatchSyscallPosition::Entry }
            }
            StopKind::SyscallExit(n) => {
                R::CatchSyscall { tid: Some(tid), number: n, position: CatchSyscallPosition::Return }
            }
            StopKind::HwBreak => R::HwBreak(tid),
            // Like gdbserver, report every data watchpoint as `watch:ADDR`: x86 watches reads
            // and writes with one condition, so gdb decides from the address and the value
            // which of its watchpoints (watch, rwatch, awatch) triggered.
            StopKind::Watch { addr, .. } => R::Watch { tid, kind: WatchKind::Write, addr },
            StopKind::Exited(code) => {
                if self.pid == Some(ev.pid) {
                    self.set_pid(None);
                }
                R::Exited(code as u8)
            }
            StopKind::Killed(sig) => {
                if self.pid == Some(ev.pid) {
                    self.set_pid(None);
                }
                R::Terminated(Signal(to_gdb(sig)))
            }
            // gdbstub cannot present fork, vfork or exec events or non-stop mode, and this
            // front-end never asks for them (`Debugger::set_fork_events`, `set_non_stop`);
            // were one to come, gdb sees a SIGTRAP.
            StopKind::Forked { .. }
            | StopKind::VforkDone
            | StopKind::Exec
            | StopKind::Stopped
            | StopKind::ThreadCreated
            | StopKind::ThreadExited(_) => R::SignalWithThread { tid, signal: Signal::SIGTRAP },
        }
    }
}

impl Target for XolTarget {
    type Arch = Amd64Linux;
    type Error = String;

    fn base_ops(&mut self) -> gdbstub::target::ext::base::BaseOps<'_, Self::Arch, Self::Error> {
        gdbstub::target::ext::base::BaseOps::MultiThread(self)
    }

    fn guard_rail_implicit_sw_breakpoints(&self) -> bool {
        true
    }

    // Forks are handled inside xol (gdbstub 0.7 cannot present a second process), so gdb must
    // not be told fork events exist: `catch fork` then says it is unsupported instead of never
    // firing.
    fn use_fork_stop_reason(&self) -> bool {
        false
    }

    fn use_vfork_stop_reason(&self) -> bool {
        false
    }

    fn use_vforkdone_stop_reason(&self) -> bool {
        false
    }

    fn support_breakpoints(&mut self) -> Option<BreakpointsOps<'_, Self>> {
        Some(self)
    }

    fn support_extended_mode(&mut self) -> Option<ExtendedModeOps<'_, Self>> {
        Some(self)
    }

    fn support_monitor_cmd(&mut self) -> Option<gdbstub::target::ext::monitor_cmd::MonitorCmdOps<'_, Self>> {
        Some(self)
    }

    fn support_catch_syscalls(&mut self) -> Option<CatchSyscallsOps<'_, Self>> {
        Some(self)
    }

    fn support_auxv(&mut self) -> Option<gdbstub::target::ext::auxv::AuxvOps<'_, Self>> {
        Some(self)
    }

    fn support_exec_file(&mut self) -> Option<gdbstub::target::ext::exec_file::ExecFileOps<'_, Self>> {
        Some(self)
    }

    fn support_libraries_svr4(&mut self) -> Option<gdbstub::target::ext::libraries::LibrariesSvr4Ops<'_, Self>> {
        Some(self)
    }

    fn support_host_io(&mut self) -> Option<gdbstub::target::ext::host_io::HostIoOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadBase for XolTarget {
    fn read_registers(&mut self, regs: &mut Regs, tid: gdbstub::common::Tid) -> TargetResult<(), Self> {
        regs.0 = tri!(self.dbg.read_registers(tid_of(tid)));
        Ok(())
    }

    fn write_registers(&mut self, regs: &Regs, tid: gdbstub::common::Tid) -> TargetResult<(), Self> {
        tri!(self.dbg.write_registers(tid_of(tid), &regs.0));
        Ok(())
    }

    fn support_single_register_access(&mut self) -> Option<SingleRegisterAccessOps<'_, gdbstub::common::Tid, Self>> {
        Some(self)
    }

    fn read_addrs(&mut self, start: u64, data: &mut [u8], _tid: gdbstub::common::Tid) -> TargetResult<usize, Self> {
        let pid = self.cur()?;
        // gdbstub 0.7 reads a long `m` in chunks and would append an error (or the bytes after a
        // hole) to the data already sent: once a chunk stops short, the rest of the request
        // reads nothing, so the reply is the readable prefix (an error only if nothing was).
        let first = std::mem::take(&mut self.state.borrow_mut().m_first);
        if first {
            self.m_short = false;
        } else if self.m_short {
            return Ok(0);
        }
        let n = match self.dbg.read_memory(pid, VirtAddr(start), data) {
            Ok(n) => n,
            Err(e) if first => {
                log::debug!("request failed: {e}");
                return Err(TargetError::Errno(errno_of(&e)));
            }
            Err(_) => 0,
        };
        if n < data.len() {
            self.m_short = true;
        }
        if n == 0 && !data.is_empty() && first {
            return Err(TargetError::Errno(libc::EIO as u8));
        }
        Ok(n)
    }

    fn write_addrs(&mut self, start: u64, data: &[u8], _tid: gdbstub::common::Tid) -> TargetResult<(), Self> {
        let pid = self.cur()?;
        tri!(self.dbg.write_memory(pid, VirtAddr(start), data));
        Ok(())
    }

    fn list_active_threads(&mut self, cb: &mut dyn FnMut(gdbstub::common::Tid)) -> Result<(), Self::Error> {
        if let Some(pid) = self.pid {
            for t in self.dbg.threads(pid) {
                cb(gtid(t));
            }
        }
        Ok(())
    }

    fn is_thread_alive(&mut self, tid: gdbstub::common::Tid) -> Result<bool, Self::Error> {
        Ok(self.pid.is_some_and(|p| self.dbg.threads(p).contains(&tid_of(tid))))
    }

    fn support_resume(&mut self) -> Option<MultiThreadResumeOps<'_, Self>> {
        Some(self)
    }

    fn support_thread_extra_info(&mut self) -> Option<ThreadExtraInfoOps<'_, Self>> {
        Some(self)
    }
}

impl SingleRegisterAccess<gdbstub::common::Tid> for XolTarget {
    fn read_register(&mut self, tid: gdbstub::common::Tid, reg: RegNo, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let rf = tri!(self.dbg.read_registers(tid_of(tid)));
        let mut out = Vec::new();
        rf.read_reg(reg.0, &mut out).ok_or(TargetError::Errno(libc::EINVAL as u8))?;
        let n = out.len().min(buf.len());
        buf[..n].copy_from_slice(&out[..n]);
        Ok(n)
    }

    fn write_register(&mut self, tid: gdbstub::common::Tid, reg: RegNo, val: &[u8]) -> TargetResult<(), Self> {
        let mut rf = tri!(self.dbg.read_registers(tid_of(tid)));
        rf.write_reg(reg.0, val).map_err(|_| TargetError::Errno(libc::EINVAL as u8))?;
        tri!(self.dbg.write_registers(tid_of(tid), &rf));
        Ok(())
    }
}

impl XolTarget {
    /// A resume action must name a thread of the process: gdbstub would record it, resume
    /// nothing and wait forever. The error makes the reply `E01`.
    fn check_thread(&self, tid: gdbstub::common::Tid) -> Result<(), String> {
        let pid = self.pid.ok_or_else(|| "no process to resume".to_string())?;
        if self.dbg.threads(pid).contains(&tid_of(tid)) {
            Ok(())
        } else {
            Err(format!("no thread {tid} in process {pid}"))
        }
    }
}

impl MultiThreadResume for XolTarget {
    fn resume(&mut self) -> Result<(), Self::Error> {
        let Some(pid) = self.pid else { return Err("no process to resume".into()) };
        let actions = std::mem::take(&mut self.actions);
        let continues = self.default_action.is_some_and(|a| !a.step) || actions.iter().any(|(_, a)| !a.step);
        self.bps.before_resume(&mut self.dbg, continues).map_err(|e| e.to_string())?;
        self.dbg.resume(pid, &actions, self.default_action).map_err(|e| e.to_string())
    }

    fn clear_resume_actions(&mut self) -> Result<(), Self::Error> {
        self.actions.clear();
        self.default_action = Some(Action::CONTINUE);
        Ok(())
    }

    fn set_resume_action_continue(
        &mut self,
        tid: gdbstub::common::Tid,
        signal: Option<Signal>,
    ) -> Result<(), Self::Error> {
        self.check_thread(tid)?;
        let sig = signal.map(|s| from_gdb(s.0)).unwrap_or(0);
        self.actions.push((tid_of(tid), Action { sig, ..Action::CONTINUE }));
        Ok(())
    }

    fn support_single_step(&mut self) -> Option<MultiThreadSingleStepOps<'_, Self>> {
        Some(self)
    }

    fn support_scheduler_locking(&mut self) -> Option<MultiThreadSchedulerLockingOps<'_, Self>> {
        Some(self)
    }

    fn support_range_step(&mut self) -> Option<MultiThreadRangeSteppingOps<'_, Self>> {
        Some(self)
    }
}

impl MultiThreadRangeStepping for XolTarget {
    fn set_resume_action_range_step(
        &mut self,
        tid: gdbstub::common::Tid,
        start: u64,
        end: u64,
    ) -> Result<(), Self::Error> {
        self.check_thread(tid)?;
        self.actions.push((tid_of(tid), Action { range: Some((start, end)), ..Action::step(0) }));
        Ok(())
    }
}

impl MultiThreadSingleStep for XolTarget {
    fn set_resume_action_step(&mut self, tid: gdbstub::common::Tid, signal: Option<Signal>) -> Result<(), Self::Error> {
        self.check_thread(tid)?;
        let sig = signal.map(|s| from_gdb(s.0)).unwrap_or(0);
        self.actions.push((tid_of(tid), Action::step(sig)));
        Ok(())
    }
}

impl MultiThreadSchedulerLocking for XolTarget {
    fn set_resume_action_scheduler_lock(&mut self) -> Result<(), Self::Error> {
        self.default_action = None;
        Ok(())
    }
}

impl ThreadExtraInfo for XolTarget {
    fn thread_extra_info(&self, tid: gdbstub::common::Tid, buf: &mut [u8]) -> Result<usize, Self::Error> {
        let Some(pid) = self.pid else { return Ok(0) };
        let name = self.dbg.thread_name(pid, tid_of(tid)).unwrap_or_default();
        let n = name.len().min(buf.len());
        buf[..n].copy_from_slice(&name.as_bytes()[..n]);
        Ok(n)
    }
}

impl Breakpoints for XolTarget {
    fn support_sw_breakpoint(&mut self) -> Option<SwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_breakpoint(&mut self) -> Option<HwBreakpointOps<'_, Self>> {
        Some(self)
    }

    fn support_hw_watchpoint(&mut self) -> Option<HwWatchpointOps<'_, Self>> {
        Some(self)
    }
}

fn hw_kind(kind: WatchKind) -> HwKind {
    match kind {
        WatchKind::Write => HwKind::Write,
        WatchKind::Read => HwKind::Read,
        WatchKind::ReadWrite => HwKind::Access,
    }
}

/// gdbserver's answer to a `Z1`/`Z2`/`Z4` that the debug registers cannot hold: `E01` (gdb then
/// says it cannot insert the watchpoint, or uses a software one), not gdbstub's `E16`.
fn insert_hw_reply(r: crate::debugger::Result<()>) -> TargetResult<bool, XolTarget> {
    match r {
        Ok(()) => Ok(true),
        Err(e) => {
            log::debug!("hardware breakpoint/watchpoint refused: {e}");
            Err(TargetError::Errno(1))
        }
    }
}

impl HwBreakpoint for XolTarget {
    fn add_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let pid = self.cur()?;
        insert_hw_reply(self.dbg.insert_hw(pid, VirtAddr(addr), 1, HwKind::Exec))
    }

    fn remove_hw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let pid = self.cur()?;
        Ok(tri!(self.dbg.remove_hw(pid, VirtAddr(addr), 1, HwKind::Exec)))
    }
}

impl HwWatchpoint for XolTarget {
    fn add_hw_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> TargetResult<bool, Self> {
        let pid = self.cur()?;
        insert_hw_reply(self.dbg.insert_hw(pid, VirtAddr(addr), len, hw_kind(kind)))
    }

    fn remove_hw_watchpoint(&mut self, addr: u64, len: u64, kind: WatchKind) -> TargetResult<bool, Self> {
        let pid = self.cur()?;
        Ok(tri!(self.dbg.remove_hw(pid, VirtAddr(addr), len, hw_kind(kind))))
    }
}

impl SwBreakpoint for XolTarget {
    fn add_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let pid = self.cur()?;
        tri!(self.bps.insert(&mut self.dbg, pid, VirtAddr(addr)));
        Ok(true)
    }

    fn remove_sw_breakpoint(&mut self, addr: u64, _kind: usize) -> TargetResult<bool, Self> {
        let pid = self.cur()?;
        Ok(tri!(self.bps.remove(&mut self.dbg, pid, VirtAddr(addr))))
    }
}

impl CatchSyscalls for XolTarget {
    fn enable_catch_syscalls(&mut self, filter: Option<SyscallNumbers<'_, u64>>) -> TargetResult<(), Self> {
        let pid = self.cur()?;
        let f = match filter {
            None => SyscallFilter::All,
            Some(nums) => SyscallFilter::Only(nums.collect()),
        };
        tri!(self.dbg.set_catch_syscalls(pid, Some(f)));
        Ok(())
    }

    fn disable_catch_syscalls(&mut self) -> TargetResult<(), Self> {
        let pid = self.cur()?;
        tri!(self.dbg.set_catch_syscalls(pid, None));
        Ok(())
    }
}

/// Copy the `offset..offset+length` window of `data` into `buf`.
pub(super) fn xfer_window(data: &[u8], offset: u64, length: usize, buf: &mut [u8]) -> usize {
    let start = (offset as usize).min(data.len());
    let end = start.saturating_add(length).min(data.len()).min(start + buf.len());
    buf[..end - start].copy_from_slice(&data[start..end]);
    end - start
}

impl gdbstub::target::ext::auxv::Auxv for XolTarget {
    fn get_auxv(&self, offset: u64, length: usize, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let pid = self.cur()?;
        let data = tri!(self.dbg.auxv(pid));
        Ok(xfer_window(&data, offset, length, buf))
    }
}

impl gdbstub::target::ext::exec_file::ExecFile for XolTarget {
    fn get_exec_file(
        &self,
        pid: Option<gdbstub::common::Pid>,
        offset: u64,
        length: usize,
        buf: &mut [u8],
    ) -> TargetResult<usize, Self> {
        let pid = match pid {
            Some(p) => Pid(p.get() as i32),
            None => self.cur()?,
        };
        let exe = tri!(self.dbg.exe(pid));
        Ok(xfer_window(exe.as_os_str().as_bytes(), offset, length, buf))
    }
}

impl gdbstub::target::ext::libraries::LibrariesSvr4 for XolTarget {
    fn get_libraries_svr4(&self, offset: u64, length: usize, buf: &mut [u8]) -> TargetResult<usize, Self> {
        let pid = self.cur()?;
        let xml = tri!(self.dbg.libraries(pid)).to_svr4_xml();
        Ok(xfer_window(xml.as_bytes(), offset, length, buf))
    }
}

impl ExtendedMode for XolTarget {
    fn run(&mut self, filename: Option<&[u8]>, args: Args<'_, '_>) -> TargetResult<gdbstub::common::Pid, Self> {
        let mut argv: Vec<OsString> = Vec::new();
        match filename {
            Some(f) if !f.is_empty() => argv.push(OsString::from_vec(f.to_vec())),
            _ => match self.cfg.program.first() {
                Some(p) => argv.push(p.clone()),
                None => {
                    return Err(TargetError::Fatal(
                        "no program to run: give one to `run` or on xol's command line".into(),
                    ))
                }
            },
        }
        // gdbstub drops empty arguments; take them from the raw packet when we have it.
        let raw = self.last_vrun.borrow_mut().take().and_then(|b| super::conn::vrun_args(&b));
        let given: Vec<OsString> = match raw {
            Some(list) => list.into_iter().map(OsString::from_vec).collect(),
            None => args.map(|a| OsString::from_vec(a.to_vec())).collect(),
        };
        if given.is_empty() && filename.is_none_or(|f| f.is_empty()) {
            argv.extend(self.cfg.program.iter().skip(1).cloned());
        } else {
            argv.extend(given);
        }
        if let Some(old) = self.pid {
            self.set_pid(None);
            let _ = self.dbg.kill(old);
        }
        let spec = self.launch_config(argv);
        match self.dbg.launch(&spec) {
            Ok(pid) => {
                eprintln!("Process {} created; pid = {pid}", spec.argv[0].to_string_lossy());
                self.last_argv = spec.argv.clone();
                self.set_pid(Some(pid));
                Ok(NonZeroUsize::new(pid.0 as usize).unwrap_or(NonZeroUsize::MIN))
            }
            Err(e) => {
                eprintln!("{e}");
                Err(TargetError::Errno(libc::ENOENT as u8))
            }
        }
    }

    fn attach(&mut self, pid: gdbstub::common::Pid) -> TargetResult<(), Self> {
        let p = Pid(pid.get() as i32);
        match self.dbg.attach(p) {
            Ok(()) => {
                eprintln!("Attached; pid = {p}");
                self.set_pid(Some(p));
                Ok(())
            }
            Err(e) => {
                eprintln!("{e}");
                Err(TargetError::Errno(libc::EPERM as u8))
            }
        }
    }

    fn query_if_attached(&mut self, pid: gdbstub::common::Pid) -> TargetResult<AttachKind, Self> {
        Ok(match self.dbg.launched(Pid(pid.get() as i32)) {
            Some(true) => AttachKind::Run,
            _ => AttachKind::Attach,
        })
    }

    fn kill(&mut self, pid: Option<gdbstub::common::Pid>) -> TargetResult<ShouldTerminate, Self> {
        let target = pid.map(|p| Pid(p.get() as i32)).or(self.pid);
        if let Some(p) = target {
            let _ = self.dbg.kill(p);
            if self.pid == Some(p) {
                self.set_pid(None);
            }
        }
        Ok(if self.cfg.multi || self.extended.get() { ShouldTerminate::No } else { ShouldTerminate::Yes })
    }

    fn restart(&mut self) -> Result<(), Self::Error> {
        if let Some(p) = self.pid {
            self.set_pid(None);
            let _ = self.dbg.kill(p);
        }
        let argv = if self.last_argv.is_empty() { self.cfg.program.clone() } else { self.last_argv.clone() };
        if argv.is_empty() {
            return Err("no program to restart: none was run yet".into());
        }
        let spec = self.launch_config(argv);
        let pid = self.dbg.launch(&spec).map_err(|e| e.to_string())?;
        eprintln!("Process {} created; pid = {pid}", spec.argv[0].to_string_lossy());
        self.set_pid(Some(pid));
        Ok(())
    }

    fn support_configure_aslr(&mut self) -> Option<ConfigureAslrOps<'_, Self>> {
        Some(self)
    }

    fn support_configure_env(&mut self) -> Option<ConfigureEnvOps<'_, Self>> {
        Some(self)
    }

    fn support_configure_startup_shell(&mut self) -> Option<ConfigureStartupShellOps<'_, Self>> {
        Some(self)
    }

    fn support_configure_working_dir(&mut self) -> Option<ConfigureWorkingDirOps<'_, Self>> {
        Some(self)
    }

    fn support_current_active_pid(&mut self) -> Option<CurrentActivePidOps<'_, Self>> {
        Some(self)
    }
}

impl ConfigureAslr for XolTarget {
    fn cfg_aslr(&mut self, disable: bool) -> TargetResult<(), Self> {
        // gdbstub 0.7 passes QDisableRandomization's value as-is (1 = disable randomization),
        // despite the parameter's name in its docs.
        self.cfg.aslr = !disable;
        Ok(())
    }
}

impl ConfigureEnv for XolTarget {
    fn set_env(&mut self, key: &[u8], val: Option<&[u8]>) -> TargetResult<(), Self> {
        self.cfg
            .env
            .insert(OsString::from_vec(key.to_vec()), Some(OsString::from_vec(val.unwrap_or_default().to_vec())));
        Ok(())
    }

    fn remove_env(&mut self, key: &[u8]) -> TargetResult<(), Self> {
        self.cfg.env.insert(OsString::from_vec(key.to_vec()), None);
        Ok(())
    }

    fn reset_env(&mut self) -> TargetResult<(), Self> {
        self.cfg.env.clear();
        self.cfg.env_reset = false;
        Ok(())
    }
}

impl ConfigureStartupShell for XolTarget {
    fn cfg_startup_with_shell(&mut self, _enabled: bool) -> TargetResult<(), Self> {
        Ok(())
    }
}

impl ConfigureWorkingDir for XolTarget {
    fn cfg_working_dir(&mut self, dir: Option<&[u8]>) -> TargetResult<(), Self> {
        self.cfg.cwd = dir.filter(|d| !d.is_empty()).map(|d| std::path::PathBuf::from(OsString::from_vec(d.to_vec())));
        Ok(())
    }
}

impl CurrentActivePid for XolTarget {
    fn current_active_pid(&mut self) -> Result<gdbstub::common::Pid, Self::Error> {
        let p = self.pid.map(|p| p.0 as usize).unwrap_or(std::process::id() as usize);
        Ok(NonZeroUsize::new(p).unwrap_or(NonZeroUsize::MIN))
    }
}

impl gdbstub::target::ext::monitor_cmd::MonitorCmd for XolTarget {
    fn handle_monitor_cmd(
        &mut self,
        cmd: &[u8],
        mut out: gdbstub::target::ext::monitor_cmd::ConsoleOutput<'_>,
    ) -> Result<(), Self::Error> {
        let mut ctx = MonitorCtx { dbg: &mut self.dbg, pid: self.pid, bps: &self.bps };
        let effect = monitor::run(&mut ctx, &String::from_utf8_lossy(cmd), &mut |line| {
            gdbstub::outputln!(out, "{line}");
        });
        match effect {
            Effect::None => {}
            Effect::Exit => self.exit_requested.store(true, Ordering::Relaxed),
            Effect::RemoteDebug(on) => self.state.borrow_mut().remote_debug = on,
            Effect::ForkEvents(_) => {
                gdbstub::outputln!(out, "fork events are not available with --rsp gdbstub: xol handles forks itself")
            }
        }
        Ok(())
    }
}
