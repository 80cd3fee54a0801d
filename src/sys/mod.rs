//! The only place in xol that talks to the kernel's debugging interfaces: `ptrace`, `waitpid`,
//! `/proc/PID/mem`, `signalfd` and process creation.
//!
//! Everything here is a thin, typed wrapper: no policy, no state beyond file descriptors. Errors
//! carry the operation and the thread so a caller can tell an expected `ESRCH` (the tracee
//! vanished) from a real failure. Only `inferior` and `maps` may use this module.

pub mod mem;
pub mod proc;
pub mod procmap;
pub mod ptrace;
pub mod shm;
pub mod signals;
pub mod spawn;
pub mod wait;

use std::fmt;

/// A kernel thread id (also the pid of a thread-group leader).
pub type RawTid = i32;

/// A failed system call: which operation, on which thread, and the errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SysError {
    /// The operation, e.g. `"PTRACE_CONT"`.
    pub op: &'static str,
    /// The thread or process it was applied to.
    pub tid: RawTid,
    /// The errno the kernel returned.
    pub errno: nix::errno::Errno,
}

impl SysError {
    /// Build an error from the current `errno`.
    pub fn last(op: &'static str, tid: RawTid) -> Self {
        SysError { op, tid, errno: nix::errno::Errno::last() }
    }

    /// True when the thread is gone (or not stopped for us any more): an expected event.
    pub fn is_gone(&self) -> bool {
        self.errno == nix::errno::Errno::ESRCH
    }
}

impl fmt::Display for SysError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} on {}: {}", self.op, self.tid, self.errno.desc())
    }
}

impl std::error::Error for SysError {}

/// Result of a system call wrapper.
pub type SysResult<T> = Result<T, SysError>;
