//! Running one system call in a stopped thread of the tracee (the slot area's `mmap` and its
//! name; `munmap` of a misplaced area; mapping xol's shared counters), with the thread's
//! registers and borrowed code bytes restored after.

use super::slots::{AREA_NAME, AREA_PAGES, PAGE};
use crate::sys::{mem::Mem, ptrace, signals, wait, wait::Stop, RawTid};

/// Where the area is put if free (see `map_area`).
const AREA_HINTS: [u64; 3] = [0x7e00_0000_0000, 0x6e00_0000_0000, 0x1e00_0000_0000];
const MAP_FIXED_NOREPLACE: u64 = 0x100000;
const SYS_MMAP: u64 = 9;
const SYS_MUNMAP: u64 = 11;
const SYS_PRCTL: u64 = 157;
const PR_SET_VMA: u64 = 0x53564d41;
const PR_SET_VMA_ANON_NAME: u64 = 0;

/// Errors of slot preparation.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A ptrace or wait request failed.
    #[error(transparent)]
    Sys(#[from] crate::sys::SysError),
    /// Memory of the inferior could not be read or written.
    #[error("memory at {addr:#x}: {source}")]
    Mem {
        /// The address.
        addr: u64,
        /// The error.
        source: std::io::Error,
    },
    /// The injected system call failed or the thread did not come back.
    #[error("injected {what} failed: {why}")]
    Inject {
        /// Which call.
        what: &'static str,
        /// Why.
        why: String,
    },
}

/// Map the slot area into the process of `tid` (stopped) and name it. Returns its base.
pub(super) fn map_area(mem: &Mem, tid: RawTid) -> Result<u64, StepError> {
    let len = AREA_PAGES * PAGE;
    let prot = (libc::PROT_READ | libc::PROT_EXEC) as u64;
    let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    // Far below where the kernel puts mappings (top-down from under the stack), so the area
    // does not shift the program's libraries and mmaps: their addresses stay what they are
    // without xol (as under gdbserver). Another address is tried if that one is taken.
    let failed = |v: u64| v > u64::MAX - 4096;
    let mut base = u64::MAX;
    for hint in AREA_HINTS {
        base = inject_syscall(mem, tid, SYS_MMAP, [hint, len, prot, flags | MAP_FIXED_NOREPLACE, u64::MAX, 0])?;
        if !failed(base) && base != hint {
            // A kernel without MAP_FIXED_NOREPLACE took it as a hint and put it elsewhere.
            let _ = inject_syscall(mem, tid, SYS_MUNMAP, [base, len, 0, 0, 0, 0]);
            base = u64::MAX;
            continue;
        }
        if !failed(base) {
            break;
        }
    }
    if failed(base) {
        base = inject_syscall(mem, tid, SYS_MMAP, [0, len, prot, flags, u64::MAX, 0])?;
    }
    if failed(base) {
        return Err(StepError::Inject {
            what: "mmap",
            why: std::io::Error::from_raw_os_error(-(base as i64) as i32).to_string(),
        });
    }
    // Name it: the name string is read by the kernel from the inferior, so put it in the area's
    // last bytes for the duration of the call (the area is still empty).
    let name_at = base + len - 64;
    let mut name = AREA_NAME.as_bytes().to_vec();
    name.push(0);
    if mem.write(name_at, &name).is_ok() {
        let r = inject_syscall(mem, tid, SYS_PRCTL, [PR_SET_VMA, PR_SET_VMA_ANON_NAME, base, len, name_at, 0]);
        if !matches!(r, Ok(0)) {
            log::debug!("naming the slot area failed ({r:?}); it is at {base:#x}");
        }
        let _ = mem.write(name_at, &vec![0u8; name.len()]);
    }
    log::info!("slot area of {tid} at {base:#x}..{:#x}", base + len);
    Ok(base)
}

const SYS_CLOSE: u64 = 3;
const SYS_OPENAT: u64 = 257;
const AT_FDCWD: u64 = -100i64 as u64;

/// Map the shared memory at `path` (`len` bytes, read-write, shared) into the process of `tid`
/// (stopped), at `hint` if that range is free (0: no hint), else where the kernel likes. The path is written
/// for the duration of the calls below the thread's red zone (the thread is stopped: nothing
/// else uses that stack memory) and the bytes there are put back. Returns the address.
pub(in crate::inferior) fn map_shared(
    mem: &Mem,
    tid: RawTid,
    path: &str,
    len: u64,
    hint: u64,
) -> Result<u64, StepError> {
    let regs = ptrace::get_regs(tid)?;
    let mut cpath = path.as_bytes().to_vec();
    cpath.push(0);
    let at = (regs.rsp - 128 - 256 - cpath.len() as u64) & !15;
    let mut saved = vec![0u8; cpath.len()];
    match mem.read(at, &mut saved) {
        Ok(n) if n == saved.len() => {}
        Ok(_) => return Err(StepError::Mem { addr: at, source: std::io::Error::from_raw_os_error(libc::EIO) }),
        Err(source) => return Err(StepError::Mem { addr: at, source }),
    }
    mem.write(at, &cpath).map_err(|source| StepError::Mem { addr: at, source })?;
    let flags = (libc::O_RDWR | libc::O_CLOEXEC) as u64;
    let fd = inject_syscall(mem, tid, SYS_OPENAT, [AT_FDCWD, at, flags, 0, 0, 0]);
    let _ = mem.write(at, &saved);
    let fd = fd?;
    let failed = |v: u64| v > u64::MAX - 4096;
    if failed(fd) {
        return Err(StepError::Inject {
            what: "openat of the shared counters",
            why: std::io::Error::from_raw_os_error(-(fd as i64) as i32).to_string(),
        });
    }
    let prot = (libc::PROT_READ | libc::PROT_WRITE) as u64;
    let shared = libc::MAP_SHARED as u64;
    // Never a fixed address 0 (privileged tracees may map page 0: null pointers would land there).
    let mut base = if hint == 0 {
        u64::MAX
    } else {
        inject_syscall(mem, tid, SYS_MMAP, [hint, len, prot, shared | MAP_FIXED_NOREPLACE, fd, 0])?
    };
    if !failed(base) && base != hint {
        let _ = inject_syscall(mem, tid, SYS_MUNMAP, [base, len, 0, 0, 0, 0]);
        base = u64::MAX;
    }
    if failed(base) {
        base = inject_syscall(mem, tid, SYS_MMAP, [0, len, prot, shared, fd, 0])?;
    }
    let _ = inject_syscall(mem, tid, SYS_CLOSE, [fd, 0, 0, 0, 0, 0]);
    if failed(base) {
        return Err(StepError::Inject {
            what: "mmap of the shared counters",
            why: std::io::Error::from_raw_os_error(-(base as i64) as i32).to_string(),
        });
    }
    log::info!("shared counters of {tid} at {base:#x}..{:#x}", base + len);
    Ok(base)
}

/// Run one system call in the stopped thread `tid` and return its raw result (`rax`); the
/// thread's registers and the bytes borrowed for the code are restored. The code loads the
/// number itself (`mov eax, NR; syscall`): at an event stop inside a system call (exec, fork)
/// the kernel overwrites `rax` with that call's result on the way out. A signal that arrives
/// meanwhile is sent again afterwards, so it is not lost.
pub fn inject_syscall(mem: &Mem, tid: RawTid, nr: u64, args: [u64; 6]) -> Result<u64, StepError> {
    let saved = ptrace::get_regs(tid)?;
    let at = saved.rip;
    let mut code = [0xb8u8, 0, 0, 0, 0, 0x0f, 0x05];
    code[1..5].copy_from_slice(&(nr as u32).to_le_bytes());
    let mut orig = [0u8; 7];
    match mem.read(at, &mut orig) {
        Ok(7) => {}
        Ok(_) => return Err(StepError::Mem { addr: at, source: std::io::Error::from_raw_os_error(libc::EIO) }),
        Err(source) => return Err(StepError::Mem { addr: at, source }),
    }
    mem.write(at, &code).map_err(|source| StepError::Mem { addr: at, source })?;
    let mut r = saved;
    r.rdi = args[0];
    r.rsi = args[1];
    r.rdx = args[2];
    r.r10 = args[3];
    r.r8 = args[4];
    r.r9 = args[5];
    // Not a syscall restart: the kernel must not rewind ip or reload rax.
    r.orig_rax = u64::MAX;
    let mut requeue = Vec::new();
    let done = at + code.len() as u64;
    let result = (|| {
        ptrace::set_regs(tid, &r)?;
        ptrace::resume(tid, ptrace::ResumeKind::Step, 0)?;
        loop {
            let (_, st) = wait::wait_tid(tid)?;
            match st {
                Stop::Signal(libc::SIGTRAP) => {
                    let now = ptrace::get_regs(tid)?;
                    if now.rip == done {
                        return Ok(now.rax);
                    }
                    if now.rip != at && now.rip != at + 5 {
                        return Err(StepError::Inject {
                            what: "syscall",
                            why: format!("the thread went to {:#x}", now.rip),
                        });
                    }
                    ptrace::resume(tid, ptrace::ResumeKind::Step, 0)?;
                }
                Stop::Signal(sig) => {
                    requeue.push(sig);
                    ptrace::resume(tid, ptrace::ResumeKind::Step, 0)?;
                }
                Stop::Exited(_) | Stop::Killed(_) => {
                    return Err(StepError::Inject { what: "syscall", why: "the thread exited".into() })
                }
                _ => ptrace::resume(tid, ptrace::ResumeKind::Step, 0)?,
            }
        }
    })();
    let _ = mem.write(at, &orig);
    let restore = ptrace::set_regs(tid, &saved);
    for sig in requeue {
        let tgid = crate::sys::proc::tgid(tid).unwrap_or(tid);
        let _ = signals::tgkill(tgid, tid, sig);
    }
    let v = result?;
    restore?;
    Ok(v)
}
