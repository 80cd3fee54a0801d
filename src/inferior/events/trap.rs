//! The trap path: a thread stopped on one of xol's breakpoints (report it, or count it and
//! let the thread go on displaced), the stops of a thread whose displaced step is in flight,
//! the end of a front-end's single-step (range stepping), and the classic in-line step-over
//! kept for instructions that cannot be displaced.

use super::{continue_internal, resume_thread, TRAP_BRKPT, TRAP_HWBKPT, TRAP_SIGNAL_ENTRY, TRAP_TRACE};
use crate::inferior::displaced::{self, Displaced};
use crate::inferior::thread::{in_range, Range};
use crate::inferior::{hw, Error, HwKind, Inferior, Result, StopEvent, StopKind, Task};
use crate::sys::ptrace::{self, ResumeKind};
use crate::sys::wait::{self, Event, Stop};
use crate::sys::RawTid;
use crate::types::{Owner, Pid, Tid};
use xol_arch::displaced::Fixup;

/// Outcome of stepping one thread over a breakpoint.
pub(super) enum StepOver {
    /// The instruction ran; the thread is stopped after it.
    Done,
    /// Something else happened (a signal, a watchpoint): report it.
    Event(StopKind),
    /// The thread (or its whole process) is gone.
    Gone,
}

/// What [`Inferior::xol_stop`] made of a stop of a thread whose displaced step was in flight.
pub(super) enum XolStop {
    /// Not the end of the step (a signal, a fault of the copy, or no step in flight after all):
    /// the thread is fixed up (at the original address or after the instruction); classify the
    /// stop as usual.
    Classify,
    /// The step is over and was handled inside the core: nothing to report.
    Handled,
    /// The step is over: report this event.
    Report(StopEvent),
}

impl From<Option<StopEvent>> for XolStop {
    fn from(ev: Option<StopEvent>) -> XolStop {
        ev.map_or(XolStop::Handled, XolStop::Report)
    }
}

impl Inferior {
    /// The classic in-line step-over: put the original byte back, single-step this thread with
    /// the rest of the process stopped, put the `int3` back. Events met on the way (a fork or
    /// clone from a stepped `syscall`, an exec) are handled as usual. Displaced stepping replaces
    /// this function.
    pub(super) fn step_over(&mut self, pid: Pid, tid: RawTid, pc: u64, sig: i32) -> Result<StepOver> {
        let p = self.proc_mut(pid)?;
        p.aspace.insertions.lift(&p.aspace.mem, pc).ok_or(Error::NoThread(Tid(tid)))??;
        let r = self.step_over_inner(pid, tid, sig);
        if let Some(p) = self.procs.get_mut(&pid) {
            if let Err(e) = p.aspace.insertions.replant(&p.aspace.mem, pc) {
                log::warn!("re-inserting breakpoint at {pc:#x}: {e}");
            }
            if let Some(t) = p.threads.get_mut(&tid) {
                t.stop();
                t.set_task(Task::Free);
            }
        }
        r
    }

    pub(super) fn step_over_inner(&mut self, pid: Pid, tid: RawTid, sig: i32) -> Result<StepOver> {
        match ptrace::resume(tid, ResumeKind::Step, sig) {
            Ok(()) => {}
            Err(e) if e.is_gone() => return Ok(StepOver::Gone),
            Err(e) => return Err(e.into()),
        }
        loop {
            let (_, st) = wait::wait_tid(tid)?;
            match st {
                Stop::Signal(libc::SIGTRAP) => {
                    let si = ptrace::siginfo(tid)?;
                    let p = self.proc_mut(pid)?;
                    if let Some(h) = hw::take_hit(p, tid) {
                        if h.kind != HwKind::Exec {
                            return Ok(StepOver::Event(StopKind::Watch { addr: h.addr, kind: h.kind }));
                        }
                    }
                    if matches!(si.si_code, TRAP_TRACE | TRAP_BRKPT | TRAP_HWBKPT | TRAP_SIGNAL_ENTRY) {
                        return Ok(StepOver::Done);
                    }
                    return Ok(StepOver::Event(StopKind::Signal(libc::SIGTRAP)));
                }
                Stop::Signal(s) => return Ok(StepOver::Event(StopKind::Signal(s))),
                Stop::Exited(_) | Stop::Killed(_) => {
                    if let Some(ev) = self.handle_status(tid, st, true)? {
                        self.reports.push_back(ev);
                    }
                    return Ok(StepOver::Gone);
                }
                Stop::Event(Event::Interrupt | Event::GroupStop(_)) | Stop::Syscall | Stop::Other => {
                    // A stale interrupt or a syscall stop: the step has not finished yet.
                    ptrace::resume(tid, ResumeKind::Step, 0)?;
                }
                Stop::Event(event) => {
                    // fork/vfork/clone/exec from a stepped `syscall`: handle it, keep stepping.
                    self.handle_event(pid, tid, event, true)?;
                    if !self.procs.get(&pid).is_some_and(|p| p.threads.contains_key(&tid)) {
                        return Ok(StepOver::Gone);
                    }
                    ptrace::resume(tid, ResumeKind::Step, 0)?;
                }
            }
        }
    }

    /// A stop of a thread whose displaced step is in flight.
    pub(super) fn xol_stop(&mut self, pid: Pid, tid: RawTid, sig: i32, stopping: bool) -> Result<XolStop> {
        let code = if sig == libc::SIGTRAP { ptrace::siginfo(tid)?.si_code } else { 0 };
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        if let Some(t) = p.threads.get_mut(&tid) {
            t.stop();
        }
        let Some((fix, fl, mut regs)) = displaced::abort_in_flight(p, tid, &mut self.step_stats)? else {
            return Ok(XolStop::Classify);
        };
        let ev = |kind| Ok(XolStop::Report(StopEvent { pid, tid: Tid(tid), kind }));
        if sig != libc::SIGTRAP || !matches!(code, TRAP_TRACE | TRAP_BRKPT | TRAP_HWBKPT) {
            // A signal (or a fault of the copy) instead of the end of the step: report it at
            // the original address (rewound) or after the instruction (finished).
            return Ok(XolStop::Classify);
        }
        if let Some(h) = hw::take_hit(p, tid) {
            if h.kind != HwKind::Exec {
                return ev(StopKind::Watch { addr: h.addr, kind: h.kind });
            }
        }
        if let (Fixup::Rewound, Some(range)) = (fix, fl.step) {
            // A string instruction did one iteration (ip stays on it, as in line): that is the
            // step gdb asked for. It is marked to step the next iteration displaced too.
            return self.after_step(pid, tid, regs.rip, range, stopping).map(XolStop::from);
        }
        if fix == Fixup::Rewound {
            // The copy did not advance: run it again (or, while stopping, later).
            if stopping {
                return Ok(XolStop::Handled);
            }
            if let Some(t) = p.threads.get_mut(&tid) {
                t.reported_bp = None;
                t.rehit = None;
            }
            let mode = self.step_mode;
            return match (
                displaced::displace(p, tid, fl.orig, &mut regs, fl.step, mode, &mut self.step_stats)?,
                fl.step,
            ) {
                (Displaced::Running, _) => Ok(XolStop::Handled),
                (Displaced::Emulated | Displaced::Boosted, None) => {
                    continue_internal(p, tid)?;
                    Ok(XolStop::Handled)
                }
                (Displaced::Emulated | Displaced::Boosted, Some(range)) => {
                    self.after_step(pid, tid, regs.rip, range, stopping).map(XolStop::from)
                }
                (Displaced::InLine, step) => {
                    let mut r = regs;
                    r.rip = fl.orig;
                    ptrace::set_regs(tid, &r)?;
                    self.in_line_from_trap(pid, tid, fl.orig, step, stopping).map(XolStop::from)
                }
            };
        }
        if let Some(range) = fl.step {
            return self.after_step(pid, tid, regs.rip, range, stopping).map(XolStop::from);
        }
        if !stopping {
            continue_internal(p, tid)?;
        }
        Ok(XolStop::Handled)
    }

    /// A front-end's single-step (of range `range`) ended at `rip`: report it, or keep
    /// range-stepping.
    pub(super) fn after_step(
        &mut self,
        pid: Pid,
        tid: RawTid,
        rip: u64,
        range: Range,
        stopping: bool,
    ) -> Result<Option<StopEvent>> {
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        if !stopping && in_range(range, rip) && !p.aspace.insertions.contains(rip) {
            resume_thread(p, tid, Some(Task::Step(range)), 0)?;
            return Ok(None);
        }
        Ok(Some(StopEvent { pid, tid: Tid(tid), kind: StopKind::Step }))
    }

    /// A thread trapped on one of xol's breakpoints at `at`. A breakpoint gdb owns is reported;
    /// one only probes own is counted and the thread goes on at once, displaced.
    pub(super) fn breakpoint_hit(
        &mut self,
        pid: Pid,
        tid: RawTid,
        at: u64,
        mut regs: xol_arch::regs::UserRegs,
        step: Option<Range>,
        stopping: bool,
    ) -> Result<Option<StopEvent>> {
        self.step_stats.traps += 1;
        // (Borrowed, not cloned: the trap path allocates nothing.)
        let (internal, gdb) = {
            let owners = self.procs.get(&pid).and_then(|p| p.aspace.insertions.get(at)).map_or(&[][..], |i| &i.owners);
            (owners.contains(&Owner::Internal), self.reports_hit(pid, owners))
        };
        if internal && !stopping {
            // The dynamic linker's r_brk: the library list is changing.
            if let Err(e) = self.rearm_file_probes(pid) {
                log::warn!("re-arming per-file probes in {pid}: {e}");
            }
        }
        // A hit gdb would see, but whose target-side conditions are all false, is not reported:
        // the thread goes on as after a probe hit. (While stopping the world the hit is
        // cancelled and evaluated again when it happens again.)
        let wanted = gdb;
        let gdb = gdb && (stopping || self.conditions_hold_at(pid, tid, at, &regs));
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        if wanted && !gdb && p.aspace.insertions.get(at).is_some_and(|i| i.shadow == crate::inferior::aspace::INT3) {
            // A front-end's breakpoint whose condition is false, on the program's own `int3`
            // (gdb's permanent breakpoint): go past it as gdb does (`skip_permanent_breakpoint`),
            // ip after the `int3`, no SIGTRAP for the program.
            regs.rip = at + 1;
            ptrace::set_regs(tid, &regs)?;
            return match step {
                Some(range) => self.after_step(pid, tid, regs.rip, range, stopping),
                None => {
                    continue_internal(p, tid)?;
                    Ok(None)
                }
            };
        }
        let rehit = p.threads.get_mut(&tid).and_then(|t| t.rehit.take()) == Some(at);
        if stopping || gdb {
            // Reported to gdb, or cancelled while stopping the world (hit again on resume).
            regs.rip = at;
            ptrace::set_regs(tid, &regs)?;
            if stopping {
                if rehit {
                    if let Some(t) = p.threads.get_mut(&tid) {
                        t.rehit = Some(at);
                    }
                }
                return Ok(gdb.then_some(StopEvent { pid, tid: Tid(tid), kind: StopKind::Breakpoint }));
            }
            if !rehit {
                self.count_hit(pid, tid, at);
            }
            return Ok(Some(StopEvent { pid, tid: Tid(tid), kind: StopKind::Breakpoint }));
        }
        if !rehit {
            self.count_hit(pid, tid, at);
        }
        let mode = self.step_mode;
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        match (displaced::displace(p, tid, at, &mut regs, step, mode, &mut self.step_stats)?, step) {
            (Displaced::Running, _) => Ok(None),
            (Displaced::Emulated | Displaced::Boosted, None) => {
                continue_internal(p, tid)?;
                Ok(None)
            }
            (Displaced::Emulated | Displaced::Boosted, Some(range)) => {
                self.after_step(pid, tid, regs.rip, range, stopping)
            }
            (Displaced::InLine, step) => {
                regs.rip = at;
                ptrace::set_regs(tid, &regs)?;
                self.in_line_from_trap(pid, tid, at, step, stopping)
            }
        }
    }

    /// The in-line step-over of a probe hit, from the trap path: only this thread is stepped
    /// while the others keep running (they may run past the lifted byte uncounted; this is the
    /// method displaced stepping replaces, kept for refused instructions and comparisons).
    pub(super) fn in_line_from_trap(
        &mut self,
        pid: Pid,
        tid: RawTid,
        at: u64,
        step: Option<Range>,
        stopping: bool,
    ) -> Result<Option<StopEvent>> {
        self.step_stats.in_line += 1;
        match self.step_over(pid, tid, at, 0)? {
            StepOver::Done => {
                if let Some(range) = step {
                    let rip = ptrace::get_regs(tid)?.rip;
                    return self.after_step(pid, tid, rip, range, stopping);
                }
                if !stopping {
                    let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                    continue_internal(p, tid)?;
                }
                Ok(None)
            }
            StepOver::Event(kind) => Ok(Some(StopEvent { pid, tid: Tid(tid), kind })),
            StepOver::Gone => {
                if let Some(p) = self.procs.get_mut(&pid) {
                    p.threads.remove(&tid);
                }
                Ok(None)
            }
        }
    }
}
