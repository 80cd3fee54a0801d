//! The session's error type: each variant says what failed in the session's terms (a process,
//! a thread, an address, a debug register, a location); kernel error types stay in the core.

use crate::inferior;
use crate::types::{Pid, Tid, VirtAddr};

/// What failed in a session call. Each variant names the failure in the session's terms (a
/// process, a thread, an address, a debug register); no kernel error type crosses this line.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No traced process with this pid.
    #[error("no traced process {0}")]
    NoProcess(Pid),
    /// No traced thread with this tid.
    #[error("no traced thread {0}")]
    NoThread(Tid),
    /// The thread or process ended under the request (the kernel said ESRCH).
    #[error("{what} on {tid}: the thread has ended")]
    Gone {
        /// What was being done (the kernel call).
        what: &'static str,
        /// The thread.
        tid: Tid,
    },
    /// Memory at this address could not be read or written.
    #[error("memory at {addr}: {source}")]
    Memory {
        /// The address.
        addr: VirtAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The memory of a process could not be opened at all (`/proc/PID/mem`).
    #[error("cannot open the memory of process {pid}: {source}")]
    OpenMemory {
        /// The process.
        pid: Pid,
        /// Why.
        source: std::io::Error,
    },
    /// The four debug registers cannot hold the hardware breakpoint or watchpoint.
    #[error("{addr}+{len:#x} needs more than the {free} free debug register(s)")]
    NoDebugRegister {
        /// The start of the region.
        addr: VirtAddr,
        /// Its length.
        len: u64,
        /// Debug registers that were free.
        free: usize,
    },
    /// The program could not be started.
    #[error(transparent)]
    Launch(#[from] inferior::SpawnError),
    /// Attaching failed.
    #[error("cannot attach to process {pid}: {why}")]
    Attach {
        /// The process.
        pid: Pid,
        /// Why, with a hint.
        why: String,
    },
    /// A location (symbol, address, FILE:SYMBOL) that cannot be resolved or cannot take a
    /// probe, with the reason.
    #[error("{0}")]
    Location(String),
    /// A request on a thread failed in the kernel for another reason.
    #[error("{what} on {tid}: {why}")]
    Kernel {
        /// What was being done (the kernel call).
        what: &'static str,
        /// The thread.
        tid: Tid,
        /// The kernel's reason.
        why: String,
        /// Its errno.
        errno: i32,
    },
    /// Any other I/O failure (polling, reading `/proc`).
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// The errno that best says what failed, for front-ends that answer with one (gdb's
    /// `Exx`): ESRCH for what has ended or is not traced, EIO for memory, ENOSPC for debug
    /// registers, the kernel's own otherwise.
    pub fn errno(&self) -> i32 {
        match self {
            Error::NoProcess(_) | Error::NoThread(_) | Error::Gone { .. } => libc::ESRCH,
            Error::Memory { .. } | Error::OpenMemory { .. } => libc::EIO,
            Error::NoDebugRegister { .. } => libc::ENOSPC,
            Error::Kernel { errno, .. } => *errno,
            Error::Io(e) => e.raw_os_error().unwrap_or(libc::EIO),
            Error::Launch(_) | Error::Attach { .. } | Error::Location(_) => libc::EINVAL,
        }
    }

    /// The thread or process the request was about has ended or is not traced.
    pub fn is_gone(&self) -> bool {
        matches!(self, Error::NoProcess(_) | Error::NoThread(_) | Error::Gone { .. })
    }
}

impl From<inferior::Error> for Error {
    fn from(e: inferior::Error) -> Error {
        match e {
            inferior::Error::Sys(s) if s.is_gone() => Error::Gone { what: s.op, tid: Tid(s.tid) },
            inferior::Error::Sys(s) => {
                Error::Kernel { what: s.op, tid: Tid(s.tid), why: s.errno.desc().to_string(), errno: s.errno as i32 }
            }
            inferior::Error::NoProcess(p) => Error::NoProcess(p),
            inferior::Error::NoThread(t) => Error::NoThread(t),
            inferior::Error::Mem { addr, source } => Error::Memory { addr: VirtAddr(addr), source },
            inferior::Error::OpenMem { pid, source } => Error::OpenMemory { pid, source },
            inferior::Error::NoDebugRegister { addr, len, free } => {
                Error::NoDebugRegister { addr: VirtAddr(addr), len, free }
            }
            inferior::Error::Spawn(e) => Error::Launch(e),
            inferior::Error::Attach { pid, why } => Error::Attach { pid: Pid(pid), why },
            inferior::Error::Io(e) => Error::Io(e),
            inferior::Error::Location(s) => Error::Location(s),
        }
    }
}

impl From<super::LocationError> for Error {
    fn from(e: super::LocationError) -> Error {
        Error::Location(e.to_string())
    }
}
