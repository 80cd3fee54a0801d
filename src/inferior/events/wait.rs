//! Waiting for the next reportable stop: pending events first (a finished single-step before
//! anything else, as gdbserver chooses), then wait statuses in bounded batches, between which
//! the front-end's input, termination requests and the deadline are looked at.

use super::WaitOutcome;
use crate::inferior::{Inferior, Result, StopEvent, StopKind};
use crate::sys::{self, ptrace, wait};
use crate::types::Tid;
use std::os::fd::BorrowedFd;

/// Wait statuses handled in one go before [`Inferior::wait_for`] looks at its input again.
const WAIT_BATCH: usize = 64;

impl Inferior {
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
            // Notices first: they happened before any stop still pending.
            if let Some(n) = self.notices.pop() {
                return Ok(WaitOutcome::Notice(n));
            }
            if let Some(ev) = self.take_pending() {
                if !self.non_stop && self.procs.contains_key(&ev.pid) {
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
                    // All-stop: the whole process stops, and a finished step is preferred.
                    // Non-stop: only this thread is stopped.
                    let ev = if self.non_stop {
                        ev
                    } else {
                        if self.procs.contains_key(&ev.pid) {
                            self.stop_all(ev.pid)?;
                        }
                        self.prefer_step(ev)
                    };
                    if self.notices.has_queued() {
                        // Notices of this batch came first: the stop waits behind them.
                        self.reports.push_back(ev);
                        break;
                    }
                    return Ok(WaitOutcome::Stopped(self.note_reported(ev)));
                }
            }
            if self.notices.has_queued() {
                continue;
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
    /// In non-stop mode only the reporting thread is.
    pub(super) fn note_reported(&mut self, ev: StopEvent) -> StopEvent {
        let non_stop = self.non_stop;
        if let Some(p) = self.procs.get_mut(&ev.pid) {
            for (tid, t) in p.threads.iter_mut() {
                if !non_stop || *tid == ev.tid.0 {
                    t.resumed = false;
                    t.stop_requested = false;
                }
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
    pub(super) fn prefer_step(&mut self, ev: StopEvent) -> StopEvent {
        if matches!(ev.kind, StopKind::Step | StopKind::Exited(_) | StopKind::Killed(_)) {
            return ev;
        }
        let Some(p) = self.procs.get_mut(&ev.pid) else { return ev };
        let Some(stepped) =
            p.threads.iter().find(|(_, t)| t.resumed && t.pending() == Some(StopKind::Step)).map(|(tid, _)| *tid)
        else {
            return ev;
        };
        if let Some(t) = p.threads.get_mut(&ev.tid.0) {
            if ev.kind == StopKind::Breakpoint {
                t.rehit = ptrace::get_regs(ev.tid.0).ok().map(|r| r.rip);
            } else {
                t.set_pending(ev.kind);
            }
        }
        if let Some(t) = p.threads.get_mut(&stepped) {
            t.clear_pending();
        }
        StopEvent { pid: ev.pid, tid: Tid(stepped), kind: StopKind::Step }
    }

    pub(super) fn take_pending(&mut self) -> Option<StopEvent> {
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

    pub(super) fn take_pending_of(&mut self, steps_only: bool) -> Option<StopEvent> {
        for (pid, p) in self.procs.iter_mut() {
            let followed = p.followed;
            for (tid, t) in p.threads.iter_mut() {
                if !t.resumed && !followed {
                    continue;
                }
                if steps_only && t.pending() != Some(StopKind::Step) {
                    continue;
                }
                if let Some(kind) = t.take_pending() {
                    if let StopKind::Signal(s) = kind {
                        t.last_signal = s;
                    }
                    return Some(StopEvent { pid: *pid, tid: Tid(*tid), kind });
                }
            }
        }
        None
    }
}
