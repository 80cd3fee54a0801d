//! Resuming a stopped process: threads on one of our breakpoints go past it first (displaced,
//! or stepped over in line with the rest stopped), then every thread the front-end named runs
//! with its action. A pending event of a resumed thread means nothing runs: the next wait
//! reports it.

use super::resume_thread;
use super::trap::StepOver;
use crate::inferior::displaced::{self, Displaced};
use crate::inferior::thread::in_range;
use crate::inferior::{Action, Error, Inferior, Result, StopKind, Task};
use crate::sys::ptrace;
use crate::sys::RawTid;
use crate::types::{Pid, Tid};

impl Inferior {
    /// Resume a stopped process. `actions` name threads explicitly; the others get `default`, or
    /// stay stopped if it is `None` (scheduler locking). If an event is already pending, nothing
    /// runs and the next [`Inferior::wait`] reports it.
    ///
    /// A process that ended while its world was being stopped (its exit is queued for the next
    /// wait) is not an error: nothing runs and the next wait reports the exit.
    pub fn resume(&mut self, pid: Pid, actions: &[(Tid, Action)], default: Option<Action>) -> Result<()> {
        if !self.procs.contains_key(&pid) && self.reports.iter().any(|e| e.pid == pid) {
            return Ok(());
        }
        let non_stop = self.non_stop;
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
        let held = |t: &RawTid| p.threads.get(t).is_some_and(|t| t.pending().is_some());
        // Non-stop: a thread with an event pending stays stopped (the next wait reports it);
        // the others run.
        let plan: Vec<(RawTid, Action)> =
            if non_stop { plan.into_iter().filter(|(t, _)| !held(t)).collect() } else { plan };
        if plan.iter().any(|(tid, _)| p.threads.get(tid).is_some_and(|t| t.pending().is_some())) {
            for (tid, a) in &plan {
                if let Some(t) = p.threads.get_mut(tid) {
                    if t.pending().is_none() && a.sig != 0 {
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
            if reported != pc || !p.aspace.insertions.planted(pc) {
                continue;
            }
            let sig = std::mem::take(&mut p.threads.get_mut(tid).ok_or(Error::NoThread(Tid(*tid)))?.deferred_sig);
            let sig = if act.sig != 0 { act.sig } else { sig };
            if sig == 0 {
                // (With a signal to deliver, the in-line step-over keeps gdbserver's order: the
                // handler runs before the instruction.)
                let mode = self.step_mode;
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                let step = act.step.then_some(act.range);
                let done = match displaced::displace(p, *tid, pc, &mut regs, step, mode, &mut self.step_stats) {
                    Err(e) if self.vanished(*tid, &e) => continue,
                    r => r?,
                };
                let p = self.procs.get_mut(&pid).ok_or(Error::NoProcess(pid))?;
                match done {
                    Displaced::Running | Displaced::Boosted => continue,
                    Displaced::Emulated => {
                        if act.step && !in_range(act.range, regs.rip) {
                            if let Some(t) = p.threads.get_mut(tid) {
                                t.set_pending(StopKind::Step);
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
            let still_in_range = ptrace::get_regs(*tid).is_ok_and(|r| in_range(act.range, r.rip));
            match outcome {
                StepOver::Done if act.step && still_in_range => {}
                StepOver::Done if act.step => {
                    if let Some(t) = p.threads.get_mut(tid) {
                        t.set_pending(StopKind::Step);
                    }
                    return Ok(());
                }
                StepOver::Done => {}
                StepOver::Event(kind) => {
                    if let Some(t) = p.threads.get_mut(tid) {
                        t.set_pending(kind);
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
        p.aspace.maps.invalidate();
        for (tid, act) in plan {
            if !p.threads.get(&tid).is_some_and(|t| t.is_stopped()) {
                continue;
            }
            let task = if act.step { Task::Step(act.range) } else { Task::Free };
            let sig = match p.threads.get_mut(&tid) {
                Some(t) if act.sig == 0 => std::mem::take(&mut t.deferred_sig),
                _ => act.sig,
            };
            resume_thread(p, tid, Some(task), sig)?;
        }
        Ok(())
    }
}
