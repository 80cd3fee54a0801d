//! Resuming a stopped process: threads on one of our breakpoints go past it first (displaced,
//! or stepped over in line with the rest stopped), then every thread the front-end named runs
//! with its action. A pending event of a resumed thread means nothing runs: the next wait
//! reports it.

use super::trap::StepOver;
use crate::inferior::displaced::{self, Displaced};
use crate::inferior::{hw, Action, Error, Inferior, Result, StopKind};
use crate::sys::ptrace::{self, ResumeKind};
use crate::sys::RawTid;
use crate::types::{Pid, Tid};

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
                let done = match displaced::displace(p, *tid, pc, &mut regs, act.step, mode, &mut self.step_stats) {
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
        p.aspace.maps.invalidate();
        let base = p.resume_kind();
        for (tid, act) in plan {
            let Some(t) = p.threads.get_mut(&tid) else { continue };
            if !t.stopped {
                continue;
            }
            let kind = if act.step { ResumeKind::Step } else { base };
            let sig = if act.sig != 0 { act.sig } else { std::mem::take(&mut t.deferred_sig) };
            if std::mem::take(&mut t.needs_dregs) {
                match hw::apply(p, tid) {
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
}
