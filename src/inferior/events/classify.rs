//! Classifying one decoded stop of a thread: exits, ptrace events, syscall stops and signal
//! stops. A stop is either reported (the thread stays stopped) or handled inside the core and
//! the thread resumed (unless the world is being stopped). SIGTRAPs are told apart here (our
//! `int3`, a single-step, a debug register, a stale trap, the program's own); the trap path
//! proper is in `trap`. Events of followed children are never reported.

use super::trap::XolStop;
use super::{
    continue_internal, resume_free, resume_thread, SI_KERNEL, TRAP_BRKPT, TRAP_HWBKPT, TRAP_SIGNAL_ENTRY, TRAP_TRACE,
};
use crate::inferior::aspace::INT3;
use crate::inferior::displaced;
use crate::inferior::notice::Notice;
use crate::inferior::thread::in_range;
use crate::inferior::{hw, Error, HwKind, Inferior, Process, Result, StopEvent, StopKind, SyscallFilter, Task, Thread};
use crate::sys::ptrace::{self, SyscallStop};
use crate::sys::wait::{Event, Stop};
use crate::sys::{self, RawTid};
use crate::types::{Pid, Tid};
use xol_arch::displaced::Fixup;

impl Inferior {
    /// Handle one wait status. Returns a reportable event, with the thread marked stopped, or
    /// handles it internally (resuming the thread unless `stopping`). Events of followed
    /// children are never reported: their signals are delivered at once, their exits noted.
    pub(super) fn handle_status(&mut self, tid: RawTid, st: Stop, stopping: bool) -> Result<Option<StopEvent>> {
        match self.handle_status_of_live(tid, st, stopping) {
            Err(e) if self.vanished(tid, &e) => Ok(None),
            r => r,
        }
    }

    pub(super) fn handle_status_of_live(&mut self, tid: RawTid, st: Stop, stopping: bool) -> Result<Option<StopEvent>> {
        let ev = self.handle_status_inner(tid, st, stopping)?;
        let Some(ev) = ev else { return Ok(None) };
        let followed = match self.procs.get(&ev.pid) {
            Some(p) => p.followed,
            None => self.followed_gone.remove(&ev.pid),
        };
        if !followed {
            return Ok(Some(ev));
        }
        match ev.kind {
            StopKind::Exited(c) => self.notices.push(Notice::ChildEnded { pid: ev.pid, status: c }),
            StopKind::Killed(s) => self.notices.push(Notice::ChildEnded { pid: ev.pid, status: -s }),
            _ => {}
        }
        let Some(p) = self.procs.get_mut(&ev.pid) else { return Ok(None) };
        match ev.kind {
            StopKind::Exited(_) | StopKind::Killed(_) => {}
            StopKind::Signal(sig) if stopping => {
                if let Some(t) = p.threads.get_mut(&ev.tid.0) {
                    t.set_pending(StopKind::Signal(sig));
                }
            }
            StopKind::Signal(sig) => resume_free(p, ev.tid.0, sig)?,
            _ if stopping => {}
            _ => continue_internal(p, ev.tid.0)?,
        }
        Ok(None)
    }

    pub(super) fn handle_status_inner(&mut self, tid: RawTid, st: Stop, stopping: bool) -> Result<Option<StopEvent>> {
        let Some(pid) = self.pid_of(Tid(tid)) else {
            return self.handle_unknown(tid, st, stopping);
        };
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        match st {
            Stop::Exited(code) | Stop::Killed(code) => {
                p.threads.remove(&tid);
                if tid == pid.0 {
                    if let Some(gone) = self.procs.remove(&pid) {
                        self.maps_ended += gone.aspace.maps.stats();
                        if gone.followed {
                            self.followed_gone.insert(pid);
                        }
                    }
                    let kind =
                        if matches!(st, Stop::Exited(_)) { StopKind::Exited(code) } else { StopKind::Killed(code) };
                    return Ok(Some(StopEvent { pid, tid: Tid(tid), kind }));
                }
                self.notices.push(Notice::ThreadExited { pid, tid: Tid(tid) });
                if self.thread_events {
                    let status = if matches!(st, Stop::Exited(_)) { code } else { 128 + code };
                    return Ok(Some(StopEvent { pid, tid: Tid(tid), kind: StopKind::ThreadExited(status) }));
                }
                Ok(None)
            }
            Stop::Event(event) => self.handle_event(pid, tid, event, stopping),
            Stop::Syscall => {
                let t = p.threads.get_mut(&tid).ok_or(Error::NoThread(Tid(tid)))?;
                t.stop();
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
                    continue_internal(p, tid)?;
                }
                Ok(None)
            }
            Stop::Signal(sig) => {
                if p.threads.get(&tid).is_some_and(|t| t.is_displaced()) {
                    match self.xol_stop(pid, tid, sig, stopping)? {
                        XolStop::Classify => {}
                        XolStop::Handled => return Ok(None),
                        XolStop::Report(ev) => return Ok(Some(ev)),
                    }
                } else if sig != libc::SIGTRAP {
                    // A boosted copy faulted, or a signal caught the thread in its slot: the
                    // signal is reported (and its handler frame built) at the original address.
                    displaced::fix_in_slot(p, tid, &mut self.step_stats)?;
                }
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                let t = p.threads.get_mut(&tid).ok_or(Error::NoThread(Tid(tid)))?;
                t.stop();
                // The front-end's step this stop ends (or, range-stepping, goes on from).
                let step = t.take_step();
                let stepping = step.is_some();
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
                            && p.aspace.insertions.planted(at)
                            && p.aspace.hw.iter().all(|h| h.is_none())
                            && p.aspace.slots.site(at).is_some_and(|s| s.plan.len() > 1);
                        let code = if sure { SI_KERNEL } else { ptrace::siginfo(tid)?.si_code };
                        let hw_hit = if code == TRAP_HWBKPT || stepping { hw::take_hit(p, tid) } else { None };
                        if let Some(h) = hw_hit {
                            if h.kind == HwKind::Exec {
                                StopKind::HwBreak
                            } else {
                                StopKind::Watch { addr: h.addr, kind: h.kind }
                            }
                        } else if code == SI_KERNEL && p.aspace.insertions.planted(at) {
                            return self.breakpoint_hit(pid, tid, at, regs, step, stopping);
                        } else if stepping && (code == TRAP_TRACE || code == TRAP_BRKPT || code == TRAP_SIGNAL_ENTRY) {
                            // Range stepping: keep going while ip stays inside the range and is
                            // not on a breakpoint.
                            let range = step.flatten();
                            if !stopping && in_range(range, regs.rip) && !p.aspace.insertions.contains(regs.rip) {
                                resume_thread(p, tid, Some(Task::Step(range)), 0)?;
                                return Ok(None);
                            }
                            StopKind::Step
                        } else if code == SI_KERNEL && !p.aspace.insertions.contains(at) && !byte_is_int3(p, at) {
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
                        resume_free(p, tid, s)?;
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

    pub(super) fn handle_event(
        &mut self,
        pid: Pid,
        tid: RawTid,
        event: Event,
        stopping: bool,
    ) -> Result<Option<StopEvent>> {
        let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
        if let Some(t) = p.threads.get_mut(&tid) {
            t.stop();
        }
        match event {
            Event::Interrupt | Event::GroupStop(_) => {
                let t = p.threads.get_mut(&tid).ok_or(Error::NoThread(Tid(tid)))?;
                t.expect_stop = false;
                if std::mem::take(&mut t.born) && self.thread_events && matches!(event, Event::Interrupt) {
                    // A new thread's first stop, with thread events on: its creation is reported
                    // (kept pending while the world is being stopped).
                    if stopping {
                        t.set_pending(StopKind::ThreadCreated);
                        return Ok(None);
                    }
                    return Ok(Some(StopEvent { pid, tid: Tid(tid), kind: StopKind::ThreadCreated }));
                }
                if !stopping && matches!(event, Event::GroupStop(_)) {
                    // A group-stop (job control: SIGSTOP, Ctrl-Z): the thread stays stopped as
                    // it would without xol, until a SIGCONT wakes it; it then reports
                    // PTRACE_EVENT_STOP with SIGTRAP and is resumed as it was going (below).
                    return match ptrace::listen(tid) {
                        Ok(()) => {
                            t.run_on();
                            Ok(None)
                        }
                        Err(e) if e.is_gone() => Ok(None),
                        Err(e) => Err(e.into()),
                    };
                }
                if !stopping && std::mem::take(&mut t.stop_requested) && matches!(event, Event::Interrupt) {
                    // The front-end asked for this thread to stop (non-stop): report it, with a
                    // displaced step in flight fixed up (back at the breakpoint, or past it)
                    // and no slot address shown.
                    if displaced::abort_in_flight(p, tid, &mut self.step_stats)?.is_none() {
                        displaced::fix_in_slot(p, tid, &mut self.step_stats)?;
                    }
                    if let Some(t) = p.threads.get_mut(&tid) {
                        t.set_task(Task::Free);
                    }
                    return Ok(Some(StopEvent { pid, tid: Tid(tid), kind: StopKind::Stopped }));
                }
                if !stopping {
                    // A stale interrupt, a new thread's first stop, or a group-stop: not ours to
                    // report. Resume it as it was going.
                    continue_internal(p, tid)?;
                } else if let Some((fix, fl, _)) = displaced::abort_in_flight(p, tid, &mut self.step_stats)? {
                    // Stopping the world caught a displaced step: the thread is back at the
                    // breakpoint (and will step again) or past the instruction.
                    if fix != Fixup::Rewound && fl.step.is_some() {
                        if let Some(t) = p.threads.get_mut(&tid) {
                            t.set_pending(StopKind::Step);
                        }
                    }
                } else {
                    displaced::fix_in_slot(p, tid, &mut self.step_stats)?;
                }
                Ok(None)
            }
            Event::Clone => {
                self.handle_clone(pid, tid, stopping)?;
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                if !stopping {
                    continue_internal(p, tid)?;
                }
                Ok(None)
            }
            Event::Fork | Event::VFork => {
                let child = ptrace::event_msg(tid)? as RawTid;
                let vfork = event == Event::VFork;
                if self.handle_fork(pid, tid, child, vfork)? {
                    // Fork events on: the parent's thread reports the fork, the child waits.
                    return Ok(Some(StopEvent {
                        pid,
                        tid: Tid(tid),
                        kind: StopKind::Forked { child: Pid(child), vfork },
                    }));
                }
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                if !stopping {
                    continue_internal(p, tid)?;
                }
                Ok(None)
            }
            Event::VForkDone => {
                self.set_armed(pid, true)?;
                if self.fork_events {
                    return Ok(Some(StopEvent { pid, tid: Tid(tid), kind: StopKind::VforkDone }));
                }
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                if !stopping {
                    continue_internal(p, tid)?;
                }
                Ok(None)
            }
            Event::Exec => {
                self.handle_exec(pid, tid)?;
                if self.exec_events {
                    return Ok(Some(StopEvent { pid, tid: pid.leader(), kind: StopKind::Exec }));
                }
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

    pub(super) fn handle_unknown(&mut self, tid: RawTid, st: Stop, stopping: bool) -> Result<Option<StopEvent>> {
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
                    self.notices.push(Notice::ThreadStarted { pid, tid: Tid(tid) });
                    if self.thread_events {
                        // Its first stop, seen before its clone event: its creation.
                        if stopping {
                            if let Some(t) = p.threads.get_mut(&tid) {
                                t.set_pending(StopKind::ThreadCreated);
                            }
                            return Ok(None);
                        }
                        return Ok(Some(StopEvent { pid, tid: Tid(tid), kind: StopKind::ThreadCreated }));
                    }
                    if !stopping {
                        resume_free(p, tid, 0)?;
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
pub(super) fn byte_is_int3(p: &Process, addr: u64) -> bool {
    let mut b = [0u8];
    matches!(p.aspace.mem.read(addr, &mut b), Ok(1)) && b[0] == INT3
}
