//! The all-stop event machine: resuming threads, waiting for stops, stopping the world, and the
//! internal events (clone, fork, vfork, exec, stale interrupts) front-ends never see.

use super::breakpoints::{scrub_child, INT3};
use super::displace::{self, Displaced};
use super::{Action, Error, Inferior, Process, Result, StopEvent, StopKind, SyscallFilter, Thread};
use crate::sys::ptrace::{self, Queued, ResumeKind, SigQueue, SyscallStop};
use crate::sys::wait::{self, Event, Stop};
use crate::sys::{self, mem::Mem, RawTid};
use crate::types::Owner;
use crate::types::{Pid, Tid};
use std::os::fd::BorrowedFd;
use xol_arch::displaced::Fixup;

/// Wait statuses handled in one go before [`Inferior::wait_for`] looks at its input again.
const WAIT_BATCH: usize = 64;

/// What [`Inferior::wait`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitOutcome {
    /// A thread stopped; the whole process is now stopped.
    Stopped(StopEvent),
    /// The front-end's descriptor has input (e.g. gdb's Ctrl-C).
    Input,
    /// xol was asked to terminate (SIGTERM, SIGINT, SIGHUP).
    Terminate,
    /// Nothing is traced any more.
    NoProcesses,
    /// The timeout of [`Inferior::wait_for`] passed with nothing to report.
    Timeout,
}

const SI_KERNEL: i32 = 0x80;
const TRAP_TRACE: i32 = 2;
const TRAP_BRKPT: i32 = 1;
const TRAP_HWBKPT: i32 = 4;
/// si_code of the SIGTRAP a single-stepped thread reports when the step delivered a signal
/// and entered its handler (the kernel's `ptrace_notify(SIGTRAP)`): the step is done, at the
/// handler's first instruction.
const TRAP_SIGNAL_ENTRY: i32 = libc::SIGTRAP;

impl Inferior {
    /// Resume a stopped process. `actions` name threads explicitly; the others get `default`, or
    /// stay stopped if it is `None` (scheduler locking). If an event is already pending, nothing
    /// runs and the next [`Inferior::wait`] reports it.
    pub fn resume(&mut self, pid: Pid, actions: &[(Tid, Action)], default: Option<Action>) -> Result<()> {
        let p = self.proc_mut(pid)?;
        let plan: Vec<(RawTid, Action)> = p
            .threads
            .keys()
            .filter_map(|t| actions.iter().find(|(a, _)| a.0 == *t).map(|(_, act)| *act).or(default).map(|a| (*t, a)))
            .collect();
        // The threads the front-end resumes. A pending event of one of them is reported first,
        // and nothing runs until then; a pending event of a thread left stopped stays pending
        // until that thread is resumed.
        for (tid, _) in &plan {
            if let Some(t) = p.threads.get_mut(tid) {
                t.resumed = true;
            }
        }
        if plan.iter().any(|(tid, _)| p.threads.get(tid).is_some_and(|t| t.pending.is_some())) {
            for (tid, a) in &plan {
                if let Some(t) = p.threads.get_mut(tid) {
                    if t.pending.is_none() && a.sig != 0 {
                        t.deferred_sig = a.sig;
                    }
                }
            }
            return Ok(());
        }
        // Every thread that sits on one of our breakpoints goes past it first: displaced
        // (emulated, boosted or stepped out of line, the `int3` stays), or, if that cannot be
        // done, stepped over in line with the rest of the process stopped.
        for (tid, act) in &plan {
            let p = self.proc_mut(pid)?;
            // Only a thread whose breakpoint hit was reported can need a step-over: read its
            // registers only then.
            let Some(reported) = p.threads.get_mut(tid).and_then(|t| t.reported_bp.take()) else { continue };
            let mut regs = match ptrace::get_regs(*tid) {
                Ok(r) => r,
                Err(e) if e.is_gone() => continue,
                Err(e) => return Err(e.into()),
            };
            let pc = regs.rip;
            if reported != pc || !p.insertions.contains_key(&pc) || p.disarmed {
                continue;
            }
            let sig = std::mem::take(&mut p.threads.get_mut(tid).ok_or(Error::NoThread(Tid(*tid)))?.deferred_sig);
            let sig = if act.sig != 0 { act.sig } else { sig };
            if sig == 0 {
                // (With a signal to deliver, the in-line step-over keeps gdbserver's order: the
                // handler runs before the instruction.)
                let mode = self.step_mode;
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                let done = match displace::displace(p, *tid, pc, &mut regs, act.step, mode, &mut self.step_stats) {
                    Err(e) if self.vanished(*tid, &e) => continue,
                    r => r?,
                };
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                match done {
                    Displaced::Running | Displaced::Boosted => continue,
                    Displaced::Emulated => {
                        let in_range = act.range.is_some_and(|(a, b)| regs.rip >= a && regs.rip < b);
                        if act.step && !in_range {
                            if let Some(t) = p.threads.get_mut(tid) {
                                t.pending = Some(StopKind::Step);
                            }
                            return Ok(());
                        }
                        continue;
                    }
                    Displaced::InLine => {}
                }
            }
            self.step_stats.in_line += 1;
            let outcome = match self.step_over(pid, *tid, pc, sig) {
                Err(e) if self.vanished(*tid, &e) => continue,
                r => r?,
            };
            let Some(p) = self.procs.get_mut(&pid) else { return Ok(()) };
            let in_range =
                act.range.is_some_and(|(a, b)| ptrace::get_regs(*tid).is_ok_and(|r| r.rip >= a && r.rip < b));
            match outcome {
                StepOver::Done if act.step && in_range => {}
                StepOver::Done if act.step => {
                    if let Some(t) = p.threads.get_mut(tid) {
                        t.pending = Some(StopKind::Step);
                    }
                    return Ok(());
                }
                StepOver::Done => {}
                StepOver::Event(kind) => {
                    if let Some(t) = p.threads.get_mut(tid) {
                        t.pending = Some(kind);
                    }
                    return Ok(());
                }
                StepOver::Gone => {
                    p.threads.remove(tid);
                }
            }
        }
        let Some(p) = self.procs.get_mut(&pid) else { return Ok(()) };
        // Once it runs, the program may map and unmap what it likes: translations cached while
        // it was stopped are not trusted after this (the next lookup asks the kernel).
        p.maps.invalidate();
        let base = p.resume_kind();
        for (tid, act) in plan {
            let Some(t) = p.threads.get_mut(&tid) else { continue };
            if !t.stopped {
                continue;
            }
            let kind = if act.step { ResumeKind::Step } else { base };
            let sig = if act.sig != 0 { act.sig } else { std::mem::take(&mut t.deferred_sig) };
            if std::mem::take(&mut t.needs_dregs) {
                match super::hw::apply(p, tid) {
                    Ok(()) => {}
                    Err(Error::Sys(e)) if e.is_gone() => continue,
                    Err(e) => return Err(e),
                }
            }
            let Some(t) = p.threads.get_mut(&tid) else { continue };
            match ptrace::resume(tid, kind, sig) {
                Ok(()) => {}
                Err(e) if e.is_gone() => {}
                Err(e) => return Err(e.into()),
            }
            t.stopped = false;
            t.stepping = act.step;
            t.range = if act.step { act.range } else { None };
        }
        Ok(())
    }

    /// Wait for the next reportable stop of any process, for input on `input`, or for a
    /// termination request. After a stop, the whole process of the reporting thread is stopped.
    pub fn wait(&mut self, input: Option<BorrowedFd<'_>>) -> Result<WaitOutcome> {
        self.wait_for(input, None)
    }

    /// [`Inferior::wait`], giving up with [`WaitOutcome::Timeout`] after `timeout` with
    /// nothing to report (meanwhile, internal events such as probe hits are handled).
    pub fn wait_for(
        &mut self,
        input: Option<BorrowedFd<'_>>,
        timeout: Option<std::time::Duration>,
    ) -> Result<WaitOutcome> {
        let deadline = timeout.map(|t| std::time::Instant::now() + t);
        let mut input_ready = false;
        loop {
            if let Some(ev) = self.take_pending() {
                if self.procs.contains_key(&ev.pid) {
                    self.stop_all(ev.pid)?;
                }
                return Ok(WaitOutcome::Stopped(self.note_reported(ev)));
            }
            // Probe hits on busy threads can keep a wait status ready at all times: handle a
            // bounded batch, then look at the input and the clock, so a Ctrl-C or a deadline
            // is never starved by internal events.
            let mut handled = 0;
            while handled < WAIT_BATCH {
                let Some((tid, st)) = wait::wait_any_nohang()? else { break };
                handled += 1;
                if let Some(ev) = self.handle_status(tid, st, false)? {
                    if self.procs.contains_key(&ev.pid) {
                        self.stop_all(ev.pid)?;
                    }
                    let ev = self.prefer_step(ev);
                    return Ok(WaitOutcome::Stopped(self.note_reported(ev)));
                }
            }
            if sys::signals::terminate_requested().is_some() {
                return Ok(WaitOutcome::Terminate);
            }
            if input_ready {
                return Ok(WaitOutcome::Input);
            }
            if self.procs.is_empty() {
                return Ok(WaitOutcome::NoProcesses);
            }
            let ms = match deadline {
                Some(d) => {
                    let left = d.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        return Ok(WaitOutcome::Timeout);
                    }
                    left.as_millis().clamp(1, i32::MAX as u128) as i32
                }
                None => -1,
            };
            // A full batch means more statuses may be ready: only peek at the input.
            let ms = if handled == WAIT_BATCH { 0 } else { ms };
            let r = sys::signals::poll(input, ms)?;
            input_ready = r.extra;
        }
    }

    /// Remember which breakpoint a reported hit was at (see `Thread::reported_bp`). The
    /// process is now stopped as far as the front-end knows: no thread of it is resumed.
    fn note_reported(&mut self, ev: StopEvent) -> StopEvent {
        if let Some(p) = self.procs.get_mut(&ev.pid) {
            for t in p.threads.values_mut() {
                t.resumed = false;
            }
        }
        if ev.kind == StopKind::Breakpoint {
            let pc = ptrace::get_regs(ev.tid.0).map(|r| r.rip).ok();
            if let Some(t) = self.procs.get_mut(&ev.pid).and_then(|p| p.threads.get_mut(&ev.tid.0)) {
                t.reported_bp = pc;
            }
        }
        ev
    }

    /// gdbserver's choice among the events of one stop: a single-step that finished while the
    /// world was being stopped is reported before another thread's breakpoint hit or signal
    /// (gdb is stepping that thread and waits for it). The breakpoint hit is cancelled (the
    /// thread sits at the breakpoint and hits it again when resumed, not counted twice); any
    /// other event stays pending on its thread.
    fn prefer_step(&mut self, ev: StopEvent) -> StopEvent {
        if matches!(ev.kind, StopKind::Step | StopKind::Exited(_) | StopKind::Killed(_)) {
            return ev;
        }
        let Some(p) = self.procs.get_mut(&ev.pid) else { return ev };
        let Some(stepped) =
            p.threads.iter().find(|(_, t)| t.resumed && t.pending == Some(StopKind::Step)).map(|(tid, _)| *tid)
        else {
            return ev;
        };
        if let Some(t) = p.threads.get_mut(&ev.tid.0) {
            if ev.kind == StopKind::Breakpoint {
                t.rehit = ptrace::get_regs(ev.tid.0).ok().map(|r| r.rip);
            } else {
                t.pending = Some(ev.kind);
            }
        }
        if let Some(t) = p.threads.get_mut(&stepped) {
            t.pending = None;
        }
        StopEvent { pid: ev.pid, tid: Tid(stepped), kind: StopKind::Step }
    }

    fn take_pending(&mut self) -> Option<StopEvent> {
        if let Some(ev) = self.reports.pop_front() {
            return Some(ev);
        }
        // A finished single-step first (see `prefer_step`), then any other event.
        for steps_only in [true, false] {
            if let Some(ev) = self.take_pending_of(steps_only) {
                return Some(ev);
            }
        }
        None
    }

    fn take_pending_of(&mut self, steps_only: bool) -> Option<StopEvent> {
        for (pid, p) in self.procs.iter_mut() {
            let followed = p.followed;
            for (tid, t) in p.threads.iter_mut() {
                if !t.resumed && !followed {
                    continue;
                }
                if steps_only && t.pending != Some(StopKind::Step) {
                    continue;
                }
                if let Some(kind) = t.pending.take() {
                    if let StopKind::Signal(s) = kind {
                        t.last_signal = s;
                    }
                    return Some(StopEvent { pid: *pid, tid: Tid(*tid), kind });
                }
            }
        }
        None
    }

    /// Stop every running thread of `pid` and wait until each has stopped. Events that arrive
    /// meanwhile become pending (breakpoint hits are cancelled: ip rewound, hit again on resume).
    pub fn stop_all(&mut self, pid: Pid) -> Result<()> {
        let Some(p) = self.procs.get_mut(&pid) else { return Ok(()) };
        if p.threads.values().any(|t| !t.stopped && !t.expect_stop) {
            self.step_stats.world_stops += 1;
        }
        for (tid, t) in p.threads.iter_mut() {
            if !t.stopped && !t.expect_stop {
                match ptrace::interrupt(*tid) {
                    Ok(()) => t.expect_stop = true,
                    Err(e) if e.is_gone() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        loop {
            let Some(p) = self.procs.get(&pid) else { return Ok(()) };
            if p.threads.values().all(|t| t.stopped) {
                return Ok(());
            }
            if let Some((wtid, st)) = wait::wait_any_nohang()? {
                self.handle_stop_while_stopping(wtid, st)?;
                continue;
            }
            // Nothing ready: wait for SIGCHLD. Only if none comes, look for threads that exited
            // and will never report a stop (a zombie leader is not reported until the whole
            // group is gone), and count them as stopped. The usual path reads no /proc file.
            if sys::signals::poll(None, 50)?.child {
                continue;
            }
            let Some(p) = self.procs.get_mut(&pid) else { return Ok(()) };
            let unstopped: Vec<RawTid> = p.threads.iter().filter(|(_, t)| !t.stopped).map(|(t, _)| *t).collect();
            for tid in unstopped {
                if sys::proc::is_zombie(pid.0, tid) {
                    if tid == pid.0 {
                        if let Some(t) = p.threads.get_mut(&tid) {
                            t.stopped = true;
                            t.expect_stop = false;
                        }
                    } else {
                        p.threads.remove(&tid);
                    }
                } else if let Some(t) = p.threads.get_mut(&tid) {
                    // Still running after 50 ms: its interrupt may have been consumed by another
                    // ptrace stop it took first (the kernel drops a pending PTRACE_INTERRUPT at
                    // any trap), e.g. a clone event handled since. Ask again; interrupts do not
                    // pile up, and a stale one is absorbed later.
                    match ptrace::interrupt(tid) {
                        Ok(()) => t.expect_stop = true,
                        Err(e) if e.is_gone() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }

    fn handle_stop_while_stopping(&mut self, wtid: RawTid, st: Stop) -> Result<()> {
        if let Some(ev) = self.handle_status(wtid, st, true)? {
            match ev.kind {
                StopKind::Exited(_) | StopKind::Killed(_) => {
                    // The process is gone: report its end on the next wait.
                    self.reports.push_back(ev);
                }
                StopKind::Breakpoint => {
                    // Cancelled: the thread hits it again when resumed.
                }
                kind => {
                    if let Some(t) = self.procs.get_mut(&ev.pid).and_then(|p| p.threads.get_mut(&ev.tid.0)) {
                        t.pending = Some(kind);
                    }
                }
            }
        }
        Ok(())
    }

    /// Handle one wait status. Returns a reportable event, with the thread marked stopped, or
    /// handles it internally (resuming the thread unless `stopping`). Events of followed
    /// children are never reported: their signals are delivered at once, their exits noted.
    fn handle_status(&mut self, tid: RawTid, st: Stop, stopping: bool) -> Result<Option<StopEvent>> {
        match self.handle_status_of_live(tid, st, stopping) {
            Err(e) if self.vanished(tid, &e) => Ok(None),
            r => r,
        }
    }

    /// A request on `tid` failed with `e` while its stop was handled: if the thread is gone
    /// (SIGKILL, the program's exit or an exec from another thread killed it under us), that is
    /// an event, not a failure. The thread is marked running: its exit status (or its
    /// process's exit, or the exec) arrives through wait and is handled then.
    pub(super) fn vanished(&mut self, tid: RawTid, e: &Error) -> bool {
        let gone = match e {
            // The thread was in a ptrace-stop a moment ago: ESRCH now means it was woken to die
            // (only SIGKILL does that), even if /proc still shows it running its exit.
            Error::Sys(s) => s.is_gone(),
            Error::Mem { .. } | Error::Io(_) => !sys::proc::is_alive_tid(tid),
            _ => false,
        };
        if !gone {
            return false;
        }
        log::debug!("thread {tid} vanished while its stop was handled: {e}");
        let Some(pid) = self.pid_of(Tid(tid)) else { return true };
        if let Some(t) = self.procs.get_mut(&pid).and_then(|p| p.threads.get_mut(&tid)) {
            t.stopped = false;
            t.expect_stop = false;
            t.stepping = false;
            t.xol = None;
            t.pending = None;
        }
        true
    }

    fn handle_status_of_live(&mut self, tid: RawTid, st: Stop, stopping: bool) -> Result<Option<StopEvent>> {
        let ev = self.handle_status_inner(tid, st, stopping)?;
        let Some(ev) = ev else { return Ok(None) };
        let followed = match self.procs.get(&ev.pid) {
            Some(p) => p.followed,
            None => self.followed_gone.remove(&ev.pid),
        };
        if !followed {
            return Ok(Some(ev));
        }
        let Some(p) = self.procs.get_mut(&ev.pid) else { return Ok(None) };
        match ev.kind {
            StopKind::Exited(_) | StopKind::Killed(_) => {}
            StopKind::Signal(sig) if stopping => {
                if let Some(t) = p.threads.get_mut(&ev.tid.0) {
                    t.pending = Some(StopKind::Signal(sig));
                }
            }
            StopKind::Signal(sig) => {
                let rk = p.resume_kind();
                resume_quiet(p, ev.tid.0, rk, sig)?;
            }
            _ if stopping => {}
            _ => continue_internal(p, ev.tid.0)?,
        }
        Ok(None)
    }

    fn handle_status_inner(&mut self, tid: RawTid, st: Stop, stopping: bool) -> Result<Option<StopEvent>> {
        let Some(pid) = self.pid_of(Tid(tid)) else {
            return self.handle_unknown(tid, st, stopping);
        };
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        match st {
            Stop::Exited(code) | Stop::Killed(code) => {
                p.threads.remove(&tid);
                if tid == pid.0 {
                    if let Some(gone) = self.procs.remove(&pid) {
                        self.maps_ended += gone.maps.stats();
                        if gone.followed {
                            self.followed_gone.insert(pid);
                        }
                    }
                    let kind =
                        if matches!(st, Stop::Exited(_)) { StopKind::Exited(code) } else { StopKind::Killed(code) };
                    return Ok(Some(StopEvent { pid, tid: Tid(tid), kind }));
                }
                Ok(None)
            }
            Stop::Event(event) => self.handle_event(pid, tid, event, stopping),
            Stop::Syscall => {
                let t = p.threads.get_mut(&tid).ok_or(Error::NoThread(Tid(tid)))?;
                t.stopped = true;
                t.expect_stop = t.expect_stop && stopping;
                let info = ptrace::syscall_info(tid)?;
                let kind = match info {
                    SyscallStop::Entry(nr) => Some(StopKind::SyscallEntry(nr)),
                    SyscallStop::Exit => Some(StopKind::SyscallExit(ptrace::get_regs(tid)?.orig_rax)),
                    SyscallStop::Other => None,
                };
                let wanted = match (&p.catch, kind) {
                    (Some(SyscallFilter::All), Some(_)) => true,
                    (Some(SyscallFilter::Only(list)), Some(StopKind::SyscallEntry(n)))
                    | (Some(SyscallFilter::Only(list)), Some(StopKind::SyscallExit(n))) => list.contains(&n),
                    _ => false,
                };
                if wanted {
                    return Ok(kind.map(|kind| StopEvent { pid, tid: Tid(tid), kind }));
                }
                if !stopping {
                    let rk = p.resume_kind();
                    resume_quiet(p, tid, rk, 0)?;
                }
                Ok(None)
            }
            Stop::Signal(sig) => {
                if p.threads.get(&tid).is_some_and(|t| t.xol.is_some()) {
                    if let Some(r) = self.xol_stop(pid, tid, sig, stopping)? {
                        return Ok(r);
                    }
                } else if sig != libc::SIGTRAP {
                    // A boosted copy faulted, or a signal caught the thread in its slot: the
                    // signal is reported (and its handler frame built) at the original address.
                    displace::fix_in_slot(p, tid, &mut self.step_stats)?;
                }
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                let t = p.threads.get_mut(&tid).ok_or(Error::NoThread(Tid(tid)))?;
                t.stopped = true;
                let stepping = std::mem::take(&mut t.stepping);
                if !stepping {
                    t.range = None;
                }
                let trap_regs = if sig == libc::SIGTRAP { Some(ptrace::get_regs(tid)?) } else { None };
                let kind = match trap_regs {
                    Some(mut regs) => {
                        let at = regs.rip.wrapping_sub(1);
                        // The hot path skips PTRACE_GETSIGINFO when the stop can only be our
                        // `int3`: ip is just past an armed insertion whose instruction is longer
                        // than one byte (so ip is inside it, reachable only by executing the
                        // `int3`), the thread was not single-stepping and no debug register is
                        // armed. Anything else asks the kernel why the thread stopped.
                        let sure = !stepping
                            && !p.disarmed
                            && p.insertions.contains_key(&at)
                            && p.hw.iter().all(|h| h.is_none())
                            && p.slots.site(at).is_some_and(|s| s.plan.len() > 1);
                        let code = if sure { SI_KERNEL } else { ptrace::siginfo(tid)?.si_code };
                        let hw_hit = if code == TRAP_HWBKPT || stepping { super::hw::take_hit(p, tid) } else { None };
                        if let Some(h) = hw_hit {
                            if h.kind == super::HwKind::Exec {
                                StopKind::HwBreak
                            } else {
                                StopKind::Watch { addr: h.addr, kind: h.kind }
                            }
                        } else if code == SI_KERNEL && p.insertions.contains_key(&at) && !p.disarmed {
                            return self.breakpoint_hit(pid, tid, at, regs, stepping, stopping);
                        } else if stepping && (code == TRAP_TRACE || code == TRAP_BRKPT || code == TRAP_SIGNAL_ENTRY) {
                            // Range stepping: keep going while ip stays inside the range and is
                            // not on a breakpoint.
                            let range = p.threads.get(&tid).and_then(|t| t.range);
                            if let Some((a, b)) = range {
                                if !stopping && regs.rip >= a && regs.rip < b && !p.insertions.contains_key(&regs.rip) {
                                    resume_quiet(p, tid, ResumeKind::Step, 0)?;
                                    if let Some(t) = p.threads.get_mut(&tid) {
                                        t.range = range;
                                    }
                                    return Ok(None);
                                }
                            }
                            StopKind::Step
                        } else if code == SI_KERNEL && !p.insertions.contains_key(&at) && !byte_is_int3(p, at) {
                            // A stale trap: the thread executed one of our `int3`s, but the
                            // breakpoint was removed before its stop was handled. The program
                            // never saw that byte: rewind and let it run the real instruction.
                            log::debug!("stale breakpoint trap of {tid} at {at:#x}");
                            self.step_stats.stale_traps += 1;
                            regs.rip = at;
                            ptrace::set_regs(tid, &regs)?;
                            if !stopping {
                                continue_internal(p, tid)?;
                            }
                            return Ok(None);
                        } else if !stepping && code == TRAP_TRACE {
                            // A single-step trap that arrived after the thread was interrupted
                            // and then resumed without stepping: left over from an earlier
                            // request, not something the program did. Drop it.
                            log::debug!("dropping a stale single-step trap of {tid}");
                            if !stopping {
                                continue_internal(p, tid)?;
                            }
                            return Ok(None);
                        } else {
                            StopKind::Signal(libc::SIGTRAP)
                        }
                    }
                    None => StopKind::Signal(sig),
                };
                if let StopKind::Signal(s) = kind {
                    // A signal the front-end said to pass without stopping (gdb's
                    // `QPassSignals`), to a thread that was running freely: deliver it at once,
                    // nothing is stopped or reported (as gdbserver does).
                    if !stopping && !stepping && self.pass_signals.contains(&s) {
                        resume_quiet(p, tid, p.resume_kind(), s)?;
                        return Ok(None);
                    }
                    if let Some(t) = p.threads.get_mut(&tid) {
                        t.last_signal = s;
                    }
                }
                Ok(Some(StopEvent { pid, tid: Tid(tid), kind }))
            }
            Stop::Other => Ok(None),
        }
    }

    fn handle_event(&mut self, pid: Pid, tid: RawTid, event: Event, stopping: bool) -> Result<Option<StopEvent>> {
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        if let Some(t) = p.threads.get_mut(&tid) {
            t.stopped = true;
        }
        match event {
            Event::Interrupt | Event::GroupStop(_) => {
                let base = p.resume_kind();
                let t = p.threads.get_mut(&tid).ok_or(Error::NoThread(Tid(tid)))?;
                t.expect_stop = false;
                if !stopping && matches!(event, Event::GroupStop(_)) {
                    // A group-stop (job control: SIGSTOP, Ctrl-Z): the thread stays stopped as
                    // it would without xol, until a SIGCONT wakes it; it then reports
                    // PTRACE_EVENT_STOP with SIGTRAP and is resumed as it was going (below).
                    return match ptrace::listen(tid) {
                        Ok(()) => {
                            t.stopped = false;
                            Ok(None)
                        }
                        Err(e) if e.is_gone() => Ok(None),
                        Err(e) => Err(e.into()),
                    };
                }
                if !stopping {
                    // A stale interrupt, a new thread's first stop, or a group-stop: not ours to
                    // report. Resume it as it was going.
                    let kind = if t.stepping || t.xol.is_some() { ResumeKind::Step } else { base };
                    resume_quiet(p, tid, kind, 0)?;
                } else if let Some((fix, fl, _)) = displace::abort_in_flight(p, tid, &mut self.step_stats)? {
                    // Stopping the world caught a displaced step: the thread is back at the
                    // breakpoint (and will step again) or past the instruction.
                    if fix != Fixup::Rewound && fl.report_step {
                        if let Some(t) = p.threads.get_mut(&tid) {
                            t.pending = Some(StopKind::Step);
                        }
                    }
                } else {
                    displace::fix_in_slot(p, tid, &mut self.step_stats)?;
                }
                Ok(None)
            }
            Event::Clone => {
                let new = ptrace::event_msg(tid)? as RawTid;
                if let std::collections::btree_map::Entry::Vacant(slot) = p.threads.entry(new) {
                    let mut t = Thread::new_stopped();
                    t.stopped = false;
                    t.expect_stop = true;
                    // Born running, of a thread the front-end resumed.
                    t.resumed = true;
                    slot.insert(t);
                    // Its first stop may already have been seen as an orphan.
                    if let Some(i) = self.orphans.iter().position(|(o, _)| *o == new) {
                        let (_, st) = self.orphans.remove(i);
                        self.handle_status(new, st, stopping)?;
                    }
                }
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                if !stopping {
                    continue_internal(p, tid)?;
                }
                Ok(None)
            }
            Event::Fork | Event::VFork => {
                let child = ptrace::event_msg(tid)? as RawTid;
                self.handle_fork(pid, tid, child, event == Event::VFork)?;
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                if !stopping {
                    continue_internal(p, tid)?;
                }
                Ok(None)
            }
            Event::VForkDone => {
                self.set_armed(pid, true)?;
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                if !stopping {
                    continue_internal(p, tid)?;
                }
                Ok(None)
            }
            Event::Exec => {
                // The old image is gone, with its breakpoints, its debug registers (the kernel
                // clears them on exec) and all other threads.
                p.insertions.clear();
                p.slots.reset();
                p.hw = [None; 4];
                p.disarmed = false;
                let former = ptrace::event_msg(tid).unwrap_or(tid as u64) as RawTid;
                p.threads.retain(|t, _| *t == former || *t == pid.0);
                let mut t = p.threads.remove(&former).unwrap_or_else(Thread::new_stopped);
                t.stopped = true;
                t.stepping = false;
                t.xol = None;
                t.rehit = None;
                p.threads.clear();
                p.threads.insert(pid.0, t);
                p.mem = Mem::open(pid.0).map_err(|source| Error::OpenMem { pid, source })?;
                if let Err(e) = p.maps.reopen() {
                    log::warn!("maps of {pid} after exec: {e}");
                }
                log::info!("process {pid} exec'd {:?}", sys::proc::exe(pid.0).ok());
                // Per-file probes in the new image (the program and its dynamic linker now;
                // libraries when the linker reports them).
                self.after_exec(pid)?;
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                if !stopping {
                    continue_internal(p, pid.0)?;
                }
                Ok(None)
            }
            Event::Exit | Event::Seccomp | Event::Unknown => {
                if !stopping {
                    continue_internal(p, tid)?;
                }
                Ok(None)
            }
        }
    }

    /// A forked child. While per-file probes exist it is **followed**: traced from birth as a
    /// process of its own, with the per-file probes' `int3`s left armed in its copy of memory
    /// and every other insertion (gdb's, per-process probes') taken out of it; its events are
    /// handled here and never reported. Otherwise (gdb's default `detach-on-fork on`) xol's
    /// breakpoints are taken out of its memory and it runs on untraced. For vfork the memory is
    /// shared until the child execs or exits: a followed child shares every insertion (a hit of
    /// one that is not per-file is stepped over silently); an unfollowed one is protected by
    /// disarming the parent until `PTRACE_EVENT_VFORK_DONE`.
    fn handle_fork(&mut self, pid: Pid, _parent: RawTid, child: RawTid, vfork: bool) -> Result<()> {
        // The child's first stop: maybe already seen.
        if let Some(i) = self.orphans.iter().position(|(o, _)| *o == child) {
            self.orphans.remove(i);
        } else {
            match wait::wait_tid(child) {
                Ok((_, Stop::Exited(_) | Stop::Killed(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => {
                    log::warn!("waiting for forked child {child}: {e}");
                    return Ok(());
                }
            }
        }
        self.forks_handled += 1;
        let snap = self.table.snapshot();
        if snap.has_per_file() {
            let p = self.procs.get(&pid).ok_or(Error::NoProcess(pid))?;
            let mem = match Mem::open(child) {
                Ok(m) => m,
                Err(e) => {
                    log::warn!("cannot open memory of forked child {child}: {e}; detaching it");
                    let _ = ptrace::detach(child, 0);
                    return Ok(());
                }
            };
            let per_file = |o: &Owner| {
                *o == Owner::Internal || matches!(o, Owner::Probe(id) if snap.get(*id).is_some_and(|pr| pr.per_file()))
            };
            let mut insertions = std::collections::BTreeMap::new();
            for (addr, ins) in &p.insertions {
                if vfork {
                    insertions.insert(*addr, ins.clone());
                    continue;
                }
                let owners: Vec<Owner> = ins.owners.iter().copied().filter(per_file).collect();
                if owners.is_empty() {
                    if let Err(e) = mem.write(*addr, &[ins.shadow]) {
                        log::warn!("removing breakpoint at {addr:#x} from forked child {child}: {e}");
                    }
                } else {
                    insertions.insert(*addr, super::Insertion { shadow: ins.shadow, owners });
                }
            }
            // Fork fast path (seed 003): a single-threaded parent is stopped at its fork event,
            // so nothing could have lifted a byte while the kernel copied its memory and the
            // child's copy holds every `int3` as they are. With other threads running, one of
            // them may have been in an in-line step-over (a byte lifted) at the moment of the
            // copy: only then are the child's `int3`s written again.
            let single = p.threads.len() == 1;
            if !single && !vfork {
                for addr in insertions.keys() {
                    if let Err(e) = mem.write(*addr, &[INT3]) {
                        log::warn!("re-arming {addr:#x} in forked child {child}: {e}");
                    }
                }
                self.forks_multithreaded += 1;
            }
            let p = self.procs.get(&pid).ok_or(Error::NoProcess(pid))?;
            let slots = p.slots.for_child(vfork);
            let mut threads = std::collections::BTreeMap::new();
            threads.insert(child, Thread::new_stopped());
            let proc = Process {
                threads,
                mem,
                launched: false,
                insertions,
                disarmed: false,
                catch: None,
                hw: [None; 4],
                slots,
                followed: true,
                maps: super::probes::new_maps(child),
            };
            self.procs.insert(Pid(child), proc);
            self.children_followed += 1;
            let p = self.procs.get_mut(&Pid(child)).ok_or(Error::NoProcess(Pid(child)))?;
            continue_internal(p, child)?;
            return Ok(());
        }
        if vfork {
            self.set_armed(pid, false)?;
        } else {
            let p = self.procs.get(&pid).ok_or(Error::NoProcess(pid))?;
            if !p.insertions.is_empty() {
                match Mem::open(child) {
                    Ok(m) => scrub_child(&m, &p.insertions),
                    Err(e) => log::warn!("cannot open memory of forked child {child}: {e}"),
                }
            }
        }
        if let Err(e) = ptrace::detach(child, 0) {
            log::warn!("detaching forked child {child}: {e}");
        }
        Ok(())
    }

    fn handle_unknown(&mut self, tid: RawTid, st: Stop, stopping: bool) -> Result<Option<StopEvent>> {
        if st.is_exit() {
            return Ok(None);
        }
        // A new thread whose clone event we have not seen yet, or a fork child.
        if let Some(tg) = sys::proc::tgid(tid) {
            let pid = Pid(tg);
            if tg != tid {
                if let Some(p) = self.procs.get_mut(&pid) {
                    let mut t = Thread::new_stopped();
                    t.resumed = true;
                    p.threads.insert(tid, t);
                    if !stopping {
                        let k = p.resume_kind();
                        resume_quiet(p, tid, k, 0)?;
                    }
                    return Ok(None);
                }
            }
        }
        self.orphans.push((tid, st));
        Ok(None)
    }
}

/// True if the byte at `addr` is an `int3` (the program's own, as xol's are masked elsewhere).
fn byte_is_int3(p: &Process, addr: u64) -> bool {
    let mut b = [0u8];
    matches!(p.mem.read(addr, &mut b), Ok(1)) && b[0] == INT3
}

/// Resume a thread after an event front-ends do not see (clone, fork, exec...), the way it was
/// going: a thread in the middle of a requested single-step keeps stepping.
fn continue_internal(p: &mut Process, tid: RawTid) -> Result<()> {
    let kind = if p.threads.get(&tid).is_some_and(|t| t.stepping || t.xol.is_some()) {
        ResumeKind::Step
    } else {
        p.resume_kind()
    };
    resume_quiet(p, tid, kind, 0)
}

fn resume_quiet(p: &mut Process, tid: RawTid, kind: ResumeKind, sig: i32) -> Result<()> {
    if p.threads.get_mut(&tid).is_some_and(|t| std::mem::take(&mut t.needs_dregs)) {
        match super::hw::apply(p, tid) {
            Ok(()) => {}
            Err(Error::Sys(e)) if e.is_gone() => {}
            Err(e) => return Err(e),
        }
    }
    match ptrace::resume(tid, kind, sig) {
        Ok(()) => {
            if let Some(t) = p.threads.get_mut(&tid) {
                t.stopped = false;
                t.stepping = kind == ResumeKind::Step && t.xol.is_none();
            }
            Ok(())
        }
        Err(e) if e.is_gone() => Ok(()),
        Err(e) => Err(e.into()),
    }
}

/// Outcome of stepping one thread over a breakpoint.
enum StepOver {
    /// The instruction ran; the thread is stopped after it.
    Done,
    /// Something else happened (a signal, a watchpoint): report it.
    Event(StopKind),
    /// The thread (or its whole process) is gone.
    Gone,
}

impl Inferior {
    /// The classic in-line step-over: put the original byte back, single-step this thread with
    /// the rest of the process stopped, put the `int3` back. Events met on the way (a fork or
    /// clone from a stepped `syscall`, an exec) are handled as usual. Displaced stepping replaces
    /// this function.
    fn step_over(&mut self, pid: Pid, tid: RawTid, pc: u64, sig: i32) -> Result<StepOver> {
        let p = self.proc_mut(pid)?;
        let shadow = p.insertions.get(&pc).map(|i| i.shadow).ok_or(Error::NoThread(Tid(tid)))?;
        p.mem.write(pc, &[shadow]).map_err(|e| Error::Mem { addr: pc, source: e })?;
        let r = self.step_over_inner(pid, tid, sig);
        if let Some(p) = self.procs.get_mut(&pid) {
            if p.insertions.contains_key(&pc) && !p.disarmed {
                if let Err(e) = p.mem.write(pc, &[INT3]) {
                    log::warn!("re-inserting breakpoint at {pc:#x}: {e}");
                }
            }
            if let Some(t) = p.threads.get_mut(&tid) {
                t.stopped = true;
                t.stepping = false;
            }
        }
        r
    }

    fn step_over_inner(&mut self, pid: Pid, tid: RawTid, sig: i32) -> Result<StepOver> {
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
                    if let Some(h) = super::hw::take_hit(p, tid) {
                        if h.kind != super::HwKind::Exec {
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
}

impl Inferior {
    /// A stop of a thread whose displaced step is in flight. `Some(r)`: handled, return `r`;
    /// `None`: the thread is fixed up, classify the stop as usual.
    fn xol_stop(&mut self, pid: Pid, tid: RawTid, sig: i32, stopping: bool) -> Result<Option<Option<StopEvent>>> {
        let code = if sig == libc::SIGTRAP { ptrace::siginfo(tid)?.si_code } else { 0 };
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        if let Some(t) = p.threads.get_mut(&tid) {
            t.stopped = true;
        }
        let Some((fix, fl, mut regs)) = displace::abort_in_flight(p, tid, &mut self.step_stats)? else {
            return Ok(None);
        };
        let ev = |kind| Ok(Some(Some(StopEvent { pid, tid: Tid(tid), kind })));
        if sig != libc::SIGTRAP || !matches!(code, TRAP_TRACE | TRAP_BRKPT | TRAP_HWBKPT) {
            // A signal (or a fault of the copy) instead of the end of the step: report it at
            // the original address (rewound) or after the instruction (finished).
            return Ok(None);
        }
        if let Some(h) = super::hw::take_hit(p, tid) {
            if h.kind != super::HwKind::Exec {
                return ev(StopKind::Watch { addr: h.addr, kind: h.kind });
            }
        }
        if fix == Fixup::Rewound && fl.report_step {
            // A string instruction did one iteration (ip stays on it, as in line): that is the
            // step gdb asked for. It is marked to step the next iteration displaced too.
            return self.after_step(pid, tid, regs.rip, stopping).map(Some);
        }
        if fix == Fixup::Rewound {
            // The copy did not advance: run it again (or, while stopping, later).
            if stopping {
                return Ok(Some(None));
            }
            if let Some(t) = p.threads.get_mut(&tid) {
                t.reported_bp = None;
                t.rehit = None;
            }
            let mode = self.step_mode;
            return match displace::displace(p, tid, fl.orig, &mut regs, fl.report_step, mode, &mut self.step_stats)? {
                Displaced::Running => Ok(Some(None)),
                Displaced::Emulated | Displaced::Boosted if !fl.report_step => {
                    continue_internal(p, tid)?;
                    Ok(Some(None))
                }
                Displaced::Emulated | Displaced::Boosted => self.after_step(pid, tid, regs.rip, stopping).map(Some),
                Displaced::InLine => {
                    let mut r = regs;
                    r.rip = fl.orig;
                    ptrace::set_regs(tid, &r)?;
                    self.in_line_from_trap(pid, tid, fl.orig, fl.report_step, stopping).map(Some)
                }
            };
        }
        if fl.report_step {
            return self.after_step(pid, tid, regs.rip, stopping).map(Some);
        }
        if !stopping {
            continue_internal(p, tid)?;
        }
        Ok(Some(None))
    }

    /// A front-end's single-step ended at `rip`: report it, or keep range-stepping.
    fn after_step(&mut self, pid: Pid, tid: RawTid, rip: u64, stopping: bool) -> Result<Option<StopEvent>> {
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        let range = p.threads.get(&tid).and_then(|t| t.range);
        if let Some((a, b)) = range {
            if !stopping && rip >= a && rip < b && !p.insertions.contains_key(&rip) {
                resume_quiet(p, tid, ResumeKind::Step, 0)?;
                if let Some(t) = p.threads.get_mut(&tid) {
                    t.range = range;
                }
                return Ok(None);
            }
        }
        Ok(Some(StopEvent { pid, tid: Tid(tid), kind: StopKind::Step }))
    }

    /// A thread trapped on one of xol's breakpoints at `at`. A breakpoint gdb owns is reported;
    /// one only probes own is counted and the thread goes on at once, displaced.
    fn breakpoint_hit(
        &mut self,
        pid: Pid,
        tid: RawTid,
        at: u64,
        mut regs: xol_arch::regs::UserRegs,
        stepping: bool,
        stopping: bool,
    ) -> Result<Option<StopEvent>> {
        self.step_stats.traps += 1;
        // (Borrowed, not cloned: the trap path allocates nothing.)
        let (internal, gdb) = {
            let owners = self.procs.get(&pid).and_then(|p| p.insertions.get(&at)).map_or(&[][..], |i| &i.owners);
            (owners.contains(&Owner::Internal), self.reports_hit(pid, owners))
        };
        if internal && !stopping {
            // The dynamic linker's r_brk: the library list is changing.
            if let Err(e) = self.rearm_file_probes(pid) {
                log::warn!("re-arming per-file probes in {pid}: {e}");
            }
        }
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
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
                self.count_hit(pid, at);
            }
            return Ok(Some(StopEvent { pid, tid: Tid(tid), kind: StopKind::Breakpoint }));
        }
        if !rehit {
            self.count_hit(pid, at);
        }
        let mode = self.step_mode;
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        match displace::displace(p, tid, at, &mut regs, stepping, mode, &mut self.step_stats)? {
            Displaced::Running => Ok(None),
            Displaced::Emulated | Displaced::Boosted if !stepping => {
                continue_internal(p, tid)?;
                Ok(None)
            }
            Displaced::Emulated | Displaced::Boosted => self.after_step(pid, tid, regs.rip, stopping),
            Displaced::InLine => {
                regs.rip = at;
                ptrace::set_regs(tid, &regs)?;
                self.in_line_from_trap(pid, tid, at, stepping, stopping)
            }
        }
    }

    /// The in-line step-over of a probe hit, from the trap path: only this thread is stepped
    /// while the others keep running (they may run past the lifted byte uncounted; this is the
    /// method displaced stepping replaces, kept for refused instructions and comparisons).
    fn in_line_from_trap(
        &mut self,
        pid: Pid,
        tid: RawTid,
        at: u64,
        stepping: bool,
        stopping: bool,
    ) -> Result<Option<StopEvent>> {
        self.step_stats.in_line += 1;
        match self.step_over(pid, tid, at, 0)? {
            StepOver::Done => {
                if stepping {
                    let rip = ptrace::get_regs(tid)?.rip;
                    return self.after_step(pid, tid, rip, stopping);
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

impl Inferior {
    /// Before detaching a stopped process, take out of the kernel's signal queues every signal
    /// xol itself caused and no front-end was told of: the SIGTRAP of an `int3` of ours that a
    /// thread executed just before it was interrupted (a `PTRACE_EVENT_STOP` is reported before
    /// the thread dequeues its signals), and the SIGINT xol sent for an interrupt. Left queued,
    /// either would kill the program once it runs without xol (a SIGTRAP at `int3 + 1` with the
    /// original byte back). A thread is resumed only while one of its unblocked signals is
    /// queued, so it stops again in signal delivery before running a single instruction; the
    /// first signal it dequeues that is not ours is kept for the detach to deliver.
    pub(super) fn flush_own_signals(&mut self, pid: Pid) -> Result<()> {
        let me = std::process::id() as i32;
        let tids: Vec<RawTid> = self.procs.get(&pid).map(|p| p.threads.keys().copied().collect()).unwrap_or_default();
        for tid in tids {
            // Bounded: standard signals are queued at most once each.
            for _ in 0..32 {
                let Some(p) = self.procs.get(&pid) else { return Ok(()) };
                let Some(t) = p.threads.get(&tid) else { break };
                if !t.stopped || t.pending.is_some() || t.deferred_sig != 0 {
                    break;
                }
                let blocked = match ptrace::sigmask(tid) {
                    Ok(m) => m,
                    Err(e) if e.is_gone() => break,
                    Err(e) => return Err(e.into()),
                };
                let deliverable = |q: &Queued| q.signo >= 1 && q.signo <= 64 && blocked & (1u64 << (q.signo - 1)) == 0;
                let mut queued: Vec<Queued> = Vec::new();
                for queue in [SigQueue::Thread, SigQueue::Process] {
                    match ptrace::peek_pending(tid, queue, 64) {
                        Ok(v) => queued.extend(v.into_iter().filter(deliverable)),
                        Err(e) if e.is_gone() => break,
                        Err(e) => return Err(e.into()),
                    }
                }
                let regs = ptrace::get_regs(tid)?;
                let ours = |q: &Queued| {
                    (q.signo == libc::SIGTRAP
                        && q.code == SI_KERNEL
                        && p.insertions.contains_key(&regs.rip.wrapping_sub(1)))
                        || (q.signo == libc::SIGINT && q.code <= 0 && q.sender == me)
                };
                if !queued.iter().any(ours) {
                    break;
                }
                // Let the thread dequeue one signal: it stops in signal delivery at once.
                match ptrace::resume(tid, ResumeKind::Cont, 0) {
                    Ok(()) => {}
                    Err(e) if e.is_gone() => break,
                    Err(e) => return Err(e.into()),
                }
                let (_, st) = wait::wait_tid(tid)?;
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                match st {
                    Stop::Signal(sig) => {
                        let mut regs = ptrace::get_regs(tid)?;
                        let at = regs.rip.wrapping_sub(1);
                        let si = ptrace::siginfo(tid)?;
                        let code = si.si_code;
                        if sig == libc::SIGTRAP && code == SI_KERNEL && p.insertions.contains_key(&at) {
                            log::debug!("detach: consumed the trap of {tid} at {at:#x}");
                            regs.rip = at;
                            ptrace::set_regs(tid, &regs)?;
                        } else if sig == libc::SIGINT && code <= 0 && unsafe { si.si_pid() } == me {
                            log::debug!("detach: discarded xol's SIGINT queued for {tid}");
                        } else if let Some(t) = p.threads.get_mut(&tid) {
                            // The program's own signal: delivered by the detach.
                            t.pending = Some(StopKind::Signal(sig));
                        }
                        if let Some(t) = p.threads.get_mut(&tid) {
                            t.stopped = true;
                        }
                    }
                    Stop::Exited(_) | Stop::Killed(_) => {
                        p.threads.remove(&tid);
                        break;
                    }
                    _ => {
                        // Some other stop (a group-stop): stopped again, leave the rest queued.
                        if let Some(t) = p.threads.get_mut(&tid) {
                            t.stopped = true;
                        }
                        break;
                    }
                }
            }
        }
        Ok(())
    }
}
