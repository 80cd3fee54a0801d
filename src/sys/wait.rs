//! `waitpid(2)` for tracees, decoded into a small enum.

use super::{RawTid, SysError, SysResult};

/// One decoded wait status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitStatus {
    /// The thread exited with this code.
    Exited(i32),
    /// The thread was killed by this signal.
    Signaled(i32),
    /// A ptrace event stop (`PTRACE_EVENT_*`), with the stop signal.
    Event { event: i32, sig: i32 },
    /// A syscall entry or exit stop (`SIGTRAP | 0x80`).
    Syscall,
    /// A signal-delivery stop (or a plain SIGTRAP stop) with this signal.
    Stopped(i32),
    /// Anything else (continued, ...).
    Other,
}

/// Decode a raw status word.
pub fn decode(status: i32) -> WaitStatus {
    if libc::WIFEXITED(status) {
        WaitStatus::Exited(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        WaitStatus::Signaled(libc::WTERMSIG(status))
    } else if libc::WIFSTOPPED(status) {
        let sig = libc::WSTOPSIG(status);
        let event = (status >> 16) & 0xff;
        if event != 0 {
            WaitStatus::Event { event, sig }
        } else if sig == (libc::SIGTRAP | 0x80) {
            WaitStatus::Syscall
        } else {
            WaitStatus::Stopped(sig)
        }
    } else {
        WaitStatus::Other
    }
}

/// Wait for any traced thread without blocking. `Ok(None)` when nothing is ready.
pub fn wait_any_nohang() -> SysResult<Option<(RawTid, WaitStatus)>> {
    match wait_inner(-1, libc::WNOHANG) {
        Err(e) if e.errno == nix::errno::Errno::ECHILD => Ok(None),
        r => r,
    }
}

/// Wait (blocking) for one specific thread. `ECHILD` if it is not (or no longer) ours.
pub fn wait_tid(tid: RawTid) -> SysResult<(RawTid, WaitStatus)> {
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
pub fn wait_tid_nohang(tid: RawTid) -> SysResult<Option<(RawTid, WaitStatus)>> {
    wait_inner(tid, libc::WNOHANG)
}

fn wait_inner(tid: RawTid, flags: i32) -> SysResult<Option<(RawTid, WaitStatus)>> {
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
pub fn wait_any() -> SysResult<(RawTid, WaitStatus)> {
    loop {
        match wait_inner(-1, 0) {
            Ok(Some(r)) => return Ok(r),
            Ok(None) => continue,
            Err(e) if e.errno == nix::errno::Errno::EINTR => continue,
            Err(e) => return Err(e),
        }
    }
}
