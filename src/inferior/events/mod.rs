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

use super::{hw, Error, Inferior, Process, Result, StopEvent, Task};
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
            t.vanish();
        }
        true
    }
}

/// Resume a thread after an event front-ends do not see (clone, fork, exec...), the way it was
/// going: with its task (a thread in the middle of a requested single-step keeps stepping, a
/// displaced step in flight goes on).
fn continue_internal(p: &mut Process, tid: RawTid) -> Result<()> {
    resume_thread(p, tid, None, 0)
}

/// Resume a thread to run freely (`PTRACE_CONT`, or `PTRACE_SYSCALL` while syscalls are caught),
/// delivering `sig`.
fn resume_free(p: &mut Process, tid: RawTid, sig: i32) -> Result<()> {
    resume_thread(p, tid, Some(Task::Free), sig)
}

/// Resume a thread with `task` (or, for `None`, the task it has), delivering `sig`: debug
/// registers written first if they changed; a thread gone meanwhile is not an error (its exit
/// arrives through wait).
fn resume_thread(p: &mut Process, tid: RawTid, task: Option<Task>, sig: i32) -> Result<()> {
    if p.threads.get_mut(&tid).is_some_and(|t| std::mem::take(&mut t.needs_dregs)) {
        match hw::apply(p, tid) {
            Ok(()) => {}
            Err(Error::Sys(e)) if e.is_gone() => {}
            Err(e) => return Err(e),
        }
    }
    let base = p.resume_kind();
    let Some(t) = p.threads.get_mut(&tid) else { return Ok(()) };
    let steps = match &task {
        Some(task) => !matches!(task, Task::Free),
        None => t.single_steps(),
    };
    let kind = if steps { ResumeKind::Step } else { base };
    match ptrace::resume(tid, kind, sig) {
        Ok(()) => {
            match task {
                Some(task) => t.run(task),
                None => t.run_on(),
            }
            Ok(())
        }
        Err(e) if e.is_gone() => Ok(()),
        Err(e) => Err(e.into()),
    }
}
