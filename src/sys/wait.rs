//! `waitpid(2)` for tracees, decoded into a closed [`Stop`] enum before any policy runs: no raw
//! status word or `PTRACE_EVENT_*` number leaves this module.
//!
//! The kernel's status layout (see `wait(2)`, `ptrace(2)`): the low 7 bits are 0 for an exit
//! (code in bits 8..16), a signal number for a death by signal, and `0x7f` for a stop, whose
//! signal is in bits 8..16 and whose ptrace event (if any) is in bits 16..24. `0xffff` is a
//! continued child (only with `WCONTINUED`, which xol does not ask for).

use super::{RawTid, SysError, SysResult};

/// One decoded wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The thread exited with this code.
    Exited(i32),
    /// The thread was killed by this signal.
    Killed(i32),
    /// A ptrace event stop (`PTRACE_EVENT_*`).
    Event(Event),
    /// A syscall entry or exit stop (`SIGTRAP | 0x80`, with `PTRACE_O_TRACESYSGOOD`).
    Syscall,
    /// A signal-delivery stop (or a plain SIGTRAP stop: a trap, a single-step) with this signal.
    Signal(i32),
    /// Anything else (a continued child, ...).
    Other,
}

/// A ptrace event stop, by kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// `PTRACE_EVENT_CLONE`: the thread created a thread (its tid is the event message).
    Clone,
    /// `PTRACE_EVENT_FORK`: the thread forked (the child's pid is the event message).
    Fork,
    /// `PTRACE_EVENT_VFORK`: the thread vforked (the child's pid is the event message).
    VFork,
    /// `PTRACE_EVENT_VFORK_DONE`: the vfork child exec'd or exited.
    VForkDone,
    /// `PTRACE_EVENT_EXEC`: the process exec'd (the former tid is the event message).
    Exec,
    /// `PTRACE_EVENT_EXIT`: the thread is about to exit (only with `PTRACE_O_TRACEEXIT`).
    Exit,
    /// `PTRACE_EVENT_SECCOMP`: a seccomp filter returned `SECCOMP_RET_TRACE`.
    Seccomp,
    /// `PTRACE_EVENT_STOP` with a non-stopping signal (SIGTRAP): a `PTRACE_INTERRUPT`, a new
    /// thread's first stop, or the end of a group-stop after SIGCONT.
    Interrupt,
    /// `PTRACE_EVENT_STOP` with a stopping signal (SIGSTOP, SIGTSTP, SIGTTIN, SIGTTOU): a
    /// group-stop (job control) of a seized thread.
    GroupStop(i32),
    /// An event number this module does not know (none is defined beyond the above).
    Unknown,
}

impl Stop {
    /// True if the thread is gone (exited or killed).
    pub fn is_exit(&self) -> bool {
        matches!(self, Stop::Exited(_) | Stop::Killed(_))
    }
}

/// Decode a raw status word.
pub fn decode(status: i32) -> Stop {
    if libc::WIFEXITED(status) {
        Stop::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Stop::Killed(libc::WTERMSIG(status))
    } else if libc::WIFSTOPPED(status) {
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        if event != 0 {
            Stop::Event(decode_event(event, sig))
        } else if sig == (libc::SIGTRAP | 0x80) {
            Stop::Syscall
        } else {
            Stop::Signal(sig)
        }
    } else {
        Stop::Other
    }
}

fn decode_event(event: i32, sig: i32) -> Event {
    match event {
        libc::PTRACE_EVENT_CLONE => Event::Clone,
        libc::PTRACE_EVENT_FORK => Event::Fork,
        libc::PTRACE_EVENT_VFORK => Event::VFork,
        libc::PTRACE_EVENT_VFORK_DONE => Event::VForkDone,
        libc::PTRACE_EVENT_EXEC => Event::Exec,
        libc::PTRACE_EVENT_EXIT => Event::Exit,
        libc::PTRACE_EVENT_SECCOMP => Event::Seccomp,
        libc::PTRACE_EVENT_STOP => match sig {
            libc::SIGSTOP | libc::SIGTSTP | libc::SIGTTIN | libc::SIGTTOU => Event::GroupStop(sig),
            _ => Event::Interrupt,
        },
        _ => Event::Unknown,
    }
}

/// Wait for any traced thread without blocking. `Ok(None)` when nothing is ready.
pub fn wait_any_nohang() -> SysResult<Option<(RawTid, Stop)>> {
    match wait_inner(-1, libc::WNOHANG) {
        Err(e) if e.errno == nix::errno::Errno::ECHILD => Ok(None),
        r => r,
    }
}

/// Wait (blocking) for one specific thread. `ECHILD` if it is not (or no longer) ours.
pub fn wait_tid(tid: RawTid) -> SysResult<(RawTid, Stop)> {
    loop {
        match wait_inner(tid, 0) {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => continue,
            Err(e) if e.errno == nix::errno::Errno::EINTR => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Wait for one specific thread without blocking.
pub fn wait_tid_nohang(tid: RawTid) -> SysResult<Option<(RawTid, Stop)>> {
    wait_inner(tid, libc::WNOHANG)
}

fn wait_inner(tid: RawTid, flags: i32) -> SysResult<Option<(RawTid, Stop)>> {
    let mut status = 0;
    let rc = unsafe { libc::waitpid(tid, &mut status, flags | libc::__WALL) };
    if rc == -1 {
        return Err(SysError::last("waitpid", tid));
    }
    if rc == 0 {
        return Ok(None);
    }
    Ok(Some((rc, decode(status))))
}

/// Wait (blocking) for any traced thread.
pub fn wait_any() -> SysResult<(RawTid, Stop)> {
    loop {
        match wait_inner(-1, 0) {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => continue,
            Err(e) if e.errno == nix::errno::Errno::EINTR => continue,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stop status word as the kernel builds it: `0x7f`, the signal, the event.
    fn stopped(sig: i32, event: i32) -> i32 {
        0x7f | (sig << 8) | (event << 16)
    }

    #[test]
    fn exits_and_deaths() {
        assert_eq!(decode(0), Stop::Exited(0));
        assert_eq!(decode(3 << 8), Stop::Exited(3));
        assert_eq!(decode(255 << 8), Stop::Exited(255));
        assert_eq!(decode(libc::SIGKILL), Stop::Killed(libc::SIGKILL));
        // A core dump sets bit 7; the signal is still the low 7 bits.
        assert_eq!(decode(libc::SIGSEGV | 0x80), Stop::Killed(libc::SIGSEGV));
        assert!(decode(0).is_exit() && decode(libc::SIGKILL).is_exit());
        assert!(!decode(stopped(libc::SIGTRAP, 0)).is_exit());
    }

    #[test]
    fn signal_and_syscall_stops() {
        assert_eq!(decode(stopped(libc::SIGTRAP, 0)), Stop::Signal(libc::SIGTRAP));
        assert_eq!(decode(stopped(libc::SIGSEGV, 0)), Stop::Signal(libc::SIGSEGV));
        assert_eq!(decode(stopped(libc::SIGSTOP, 0)), Stop::Signal(libc::SIGSTOP));
        assert_eq!(decode(stopped(libc::SIGTRAP | 0x80, 0)), Stop::Syscall);
    }

    #[test]
    fn ptrace_events() {
        let ev = |event| decode(stopped(libc::SIGTRAP, event));
        assert_eq!(ev(libc::PTRACE_EVENT_FORK), Stop::Event(Event::Fork));
        assert_eq!(ev(libc::PTRACE_EVENT_VFORK), Stop::Event(Event::VFork));
        assert_eq!(ev(libc::PTRACE_EVENT_CLONE), Stop::Event(Event::Clone));
        assert_eq!(ev(libc::PTRACE_EVENT_EXEC), Stop::Event(Event::Exec));
        assert_eq!(ev(libc::PTRACE_EVENT_VFORK_DONE), Stop::Event(Event::VForkDone));
        assert_eq!(ev(libc::PTRACE_EVENT_EXIT), Stop::Event(Event::Exit));
        assert_eq!(ev(libc::PTRACE_EVENT_SECCOMP), Stop::Event(Event::Seccomp));
        assert_eq!(ev(libc::PTRACE_EVENT_STOP), Stop::Event(Event::Interrupt));
        assert_eq!(ev(42), Stop::Event(Event::Unknown));
    }

    #[test]
    fn group_stops_are_event_stops_with_a_stopping_signal() {
        for sig in [libc::SIGSTOP, libc::SIGTSTP, libc::SIGTTIN, libc::SIGTTOU] {
            assert_eq!(decode(stopped(sig, libc::PTRACE_EVENT_STOP)), Stop::Event(Event::GroupStop(sig)));
        }
        // Any other signal with PTRACE_EVENT_STOP is not a group-stop.
        assert_eq!(decode(stopped(libc::SIGINT, libc::PTRACE_EVENT_STOP)), Stop::Event(Event::Interrupt));
    }

    #[test]
    fn continued_is_other() {
        assert_eq!(decode(0xffff), Stop::Other);
    }
}
