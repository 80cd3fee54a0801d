//! The all-stop event machine: resuming threads, waiting for stops, stopping the world,
//! classifying each stop, the process life cycle (clone, fork, vfork, exec) and the trap path.
//!
//! One file per concern, each an `impl Inferior` block:
//! - `resume`: [`Inferior::resume`], stepping threads past breakpoints first, then running them;
//! - `wait`: [`Inferior::wait`] and the choice among pending events of one stop;
//! - `stop_world`: [`Inferior::stop_all`] and the events met while stopping every thread;
//! - `classify`: what one decoded [`Stop`](crate::sys::wait::Stop) means (report it, handle it
//!   inside, resume the thread);
//! - `lifecycle`: clone, fork (and the follow policy), vfork, exec, and the signal queues
//!   before a detach;
//! - `trap`: breakpoint hits, displaced steps in flight, the in-line step-over.
//!
//! Here: [`WaitOutcome`], the SIGTRAP `si_code`s, and the helpers every part shares (a thread
//! that vanished under us, resuming a thread after an internal event).

mod classify;
mod lifecycle;
mod resume;
mod stop_world;
mod trap;
mod wait;

use super::{hw, Error, Inferior, Process, Result, StopEvent};
use crate::sys::ptrace::{self, ResumeKind};
use crate::sys::{self, RawTid};
use crate::types::Tid;

/// What [`Inferior::wait`] returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WaitOutcome {
    /// A thread stopped; the whole process is now stopped.
    Stopped(StopEvent),
    /// Something a subscribed front-end is told of; nothing stopped for it (see
    /// [`crate::inferior::notice`]).
    Notice(crate::inferior::notice::Notice),
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
        match hw::apply(p, tid) {
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
