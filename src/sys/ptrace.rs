//! Typed `ptrace(2)` requests. Each function is one request; no retries, no policy.

use super::{RawTid, SysError, SysResult};
use libc::{c_long, c_void};
use xol_arch::regs::{FxSave, UserRegs};

/// Options every tracee gets: see clones, forks, vforks, execs, and tell syscall stops apart.
pub const BASE_OPTIONS: c_long = (libc::PTRACE_O_TRACESYSGOOD
    | libc::PTRACE_O_TRACECLONE
    | libc::PTRACE_O_TRACEFORK
    | libc::PTRACE_O_TRACEVFORK
    | libc::PTRACE_O_TRACEVFORKDONE
    | libc::PTRACE_O_TRACEEXEC) as c_long;

/// `NT_X86_XSTATE` regset note type.
const NT_X86_XSTATE: usize = 0x202;
/// Size of the XSAVE buffer we ask for. The kernel writes the whole XSAVE area on
/// PTRACE_SETREGSET and refuses a shorter buffer, and with AVX-512 that area is about 2.7 KiB
/// (more with AMX): ask for enough for every state component.
pub const XSTATE_LEN: usize = 16384;
/// Offset of the AVX (YMM high halves) component in the standard XSAVE layout.
pub const XSAVE_YMMH_OFFSET: usize = 576;
/// Offset of XSTATE_BV in the XSAVE header.
pub const XSAVE_HDR_OFFSET: usize = 512;

unsafe fn raw(req: libc::c_uint, tid: RawTid, addr: *mut c_void, data: *mut c_void) -> c_long {
    libc::ptrace(req, tid, addr, data)
}

fn check(op: &'static str, tid: RawTid, rc: c_long) -> SysResult<c_long> {
    if rc == -1 {
        Err(SysError::last(op, tid))
    } else {
        Ok(rc)
    }
}

/// Attach with `PTRACE_SEIZE` and the given options (the tracee keeps running).
pub fn seize(tid: RawTid, options: c_long) -> SysResult<()> {
    let rc = unsafe { raw(libc::PTRACE_SEIZE, tid, std::ptr::null_mut(), options as *mut c_void) };
    check("PTRACE_SEIZE", tid, rc).map(drop)
}

/// Ask a seized, running tracee to stop (`PTRACE_EVENT_STOP`).
pub fn interrupt(tid: RawTid) -> SysResult<()> {
    let rc = unsafe { raw(libc::PTRACE_INTERRUPT, tid, std::ptr::null_mut(), std::ptr::null_mut()) };
    check("PTRACE_INTERRUPT", tid, rc).map(drop)
}

/// Leave a seized tracee that is in a group-stop stopped, as it would be without a tracer,
/// while letting it be woken by SIGCONT (`PTRACE_LISTEN`; it then reports `PTRACE_EVENT_STOP`).
pub fn listen(tid: RawTid) -> SysResult<()> {
    let rc = unsafe { raw(libc::PTRACE_LISTEN, tid, std::ptr::null_mut(), std::ptr::null_mut()) };
    check("PTRACE_LISTEN", tid, rc).map(drop)
}

/// How a stopped tracee is resumed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResumeKind {
    /// `PTRACE_CONT`.
    Cont,
    /// `PTRACE_SYSCALL`: stop at the next syscall entry or exit.
    Syscall,
    /// `PTRACE_SINGLESTEP`.
    Step,
}

/// Resume a stopped tracee, delivering `sig` (0 for none).
pub fn resume(tid: RawTid, kind: ResumeKind, sig: i32) -> SysResult<()> {
    let (req, op) = match kind {
        ResumeKind::Cont => (libc::PTRACE_CONT, "PTRACE_CONT"),
        ResumeKind::Syscall => (libc::PTRACE_SYSCALL, "PTRACE_SYSCALL"),
        ResumeKind::Step => (libc::PTRACE_SINGLESTEP, "PTRACE_SINGLESTEP"),
    };
    let rc = unsafe { raw(req, tid, std::ptr::null_mut(), sig as c_long as *mut c_void) };
    check(op, tid, rc).map(drop)
}

/// Detach from a stopped tracee, delivering `sig` (0 for none).
pub fn detach(tid: RawTid, sig: i32) -> SysResult<()> {
    let rc = unsafe { raw(libc::PTRACE_DETACH, tid, std::ptr::null_mut(), sig as c_long as *mut c_void) };
    check("PTRACE_DETACH", tid, rc).map(drop)
}

/// The message of the last ptrace event (new tid for clone/fork, former tid for exec).
pub fn event_msg(tid: RawTid) -> SysResult<u64> {
    let mut msg: libc::c_ulong = 0;
    let rc = unsafe { raw(libc::PTRACE_GETEVENTMSG, tid, std::ptr::null_mut(), &mut msg as *mut _ as *mut c_void) };
    check("PTRACE_GETEVENTMSG", tid, rc).map(|_| msg as u64)
}

/// The siginfo of the signal that caused the current stop.
pub fn siginfo(tid: RawTid) -> SysResult<libc::siginfo_t> {
    let mut si: libc::siginfo_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { raw(libc::PTRACE_GETSIGINFO, tid, std::ptr::null_mut(), &mut si as *mut _ as *mut c_void) };
    check("PTRACE_GETSIGINFO", tid, rc).map(|_| si)
}

/// Size of the kernel's `siginfo_t` (what gdb's `$_siginfo` reads and writes).
pub const SIGINFO_LEN: usize = 128;

/// The raw `siginfo_t` of the signal `tid` stopped with, as the kernel lays it out.
pub fn siginfo_bytes(tid: RawTid) -> SysResult<[u8; SIGINFO_LEN]> {
    let mut buf = [0u8; SIGINFO_LEN];
    let rc = unsafe { raw(libc::PTRACE_GETSIGINFO, tid, std::ptr::null_mut(), buf.as_mut_ptr() as *mut c_void) };
    check("PTRACE_GETSIGINFO", tid, rc).map(|_| buf)
}

/// Replace the `siginfo_t` of the signal `tid` stopped with (delivered with it if the thread
/// is resumed with that signal).
pub fn set_siginfo_bytes(tid: RawTid, info: &[u8; SIGINFO_LEN]) -> SysResult<()> {
    let mut copy = *info;
    let rc = unsafe { raw(libc::PTRACE_SETSIGINFO, tid, std::ptr::null_mut(), copy.as_mut_ptr() as *mut c_void) };
    check("PTRACE_SETSIGINFO", tid, rc).map(|_| ())
}

/// Read the general-purpose registers.
pub fn get_regs(tid: RawTid) -> SysResult<UserRegs> {
    let mut regs = UserRegs::default();
    let rc = unsafe { raw(libc::PTRACE_GETREGS, tid, std::ptr::null_mut(), &mut regs as *mut UserRegs as *mut c_void) };
    check("PTRACE_GETREGS", tid, rc).map(|_| regs)
}

/// Write the general-purpose registers.
pub fn set_regs(tid: RawTid, regs: &UserRegs) -> SysResult<()> {
    let mut copy = *regs;
    let rc = unsafe { raw(libc::PTRACE_SETREGS, tid, std::ptr::null_mut(), &mut copy as *mut UserRegs as *mut c_void) };
    check("PTRACE_SETREGS", tid, rc).map(drop)
}

/// Read the FXSAVE area (x87 and SSE state).
pub fn get_fpregs(tid: RawTid) -> SysResult<FxSave> {
    let mut fx = FxSave::default();
    let rc = unsafe { raw(libc::PTRACE_GETFPREGS, tid, std::ptr::null_mut(), &mut fx as *mut FxSave as *mut c_void) };
    check("PTRACE_GETFPREGS", tid, rc).map(|_| fx)
}

/// Write the FXSAVE area.
pub fn set_fpregs(tid: RawTid, fx: &FxSave) -> SysResult<()> {
    let mut copy = *fx;
    let rc = unsafe { raw(libc::PTRACE_SETFPREGS, tid, std::ptr::null_mut(), &mut copy as *mut FxSave as *mut c_void) };
    check("PTRACE_SETFPREGS", tid, rc).map(drop)
}

/// Read the XSAVE area into `buf`; returns the length the kernel filled.
pub fn get_xstate(tid: RawTid, buf: &mut [u8; XSTATE_LEN]) -> SysResult<usize> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut c_void, iov_len: buf.len() };
    let rc =
        unsafe { raw(libc::PTRACE_GETREGSET, tid, NT_X86_XSTATE as *mut c_void, &mut iov as *mut _ as *mut c_void) };
    check("PTRACE_GETREGSET(NT_X86_XSTATE)", tid, rc).map(|_| iov.iov_len)
}

/// Write the XSAVE area from the first `len` bytes of `buf`.
pub fn set_xstate(tid: RawTid, buf: &mut [u8; XSTATE_LEN], len: usize) -> SysResult<()> {
    let mut iov = libc::iovec { iov_base: buf.as_mut_ptr() as *mut c_void, iov_len: len };
    let rc =
        unsafe { raw(libc::PTRACE_SETREGSET, tid, NT_X86_XSTATE as *mut c_void, &mut iov as *mut _ as *mut c_void) };
    check("PTRACE_SETREGSET(NT_X86_XSTATE)", tid, rc).map(drop)
}

/// What `PTRACE_GET_SYSCALL_INFO` says about a syscall stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyscallStop {
    /// Entering syscall `nr`.
    Entry(u64),
    /// Returning from a syscall (number from `orig_rax`).
    Exit,
    /// Not a syscall stop we understand.
    Other,
}

/// Ask the kernel whether a `SIGTRAP|0x80` stop is a syscall entry or exit (Linux 5.3+).
pub fn syscall_info(tid: RawTid) -> SysResult<SyscallStop> {
    // struct ptrace_syscall_info: op (u8), pad, arch (u32), ip, sp, then the union.
    let mut buf = [0u64; 11];
    let rc = unsafe {
        raw(
            libc::PTRACE_GET_SYSCALL_INFO,
            tid,
            std::mem::size_of_val(&buf) as *mut c_void,
            buf.as_mut_ptr() as *mut c_void,
        )
    };
    check("PTRACE_GET_SYSCALL_INFO", tid, rc)?;
    let op = (buf[0] & 0xff) as u8;
    Ok(match op {
        1 => SyscallStop::Entry(buf[3]),
        2 => SyscallStop::Exit,
        _ => SyscallStop::Other,
    })
}

/// Offset of `u_debugreg` in x86-64 `struct user`.
const DEBUGREG_OFFSET: usize = 848;

/// Read debug register `i` (0..=7) of a stopped thread.
pub fn get_debugreg(tid: RawTid, i: usize) -> SysResult<u64> {
    nix::errno::Errno::clear();
    let off = DEBUGREG_OFFSET + 8 * i;
    let v = unsafe { raw(libc::PTRACE_PEEKUSER, tid, off as *mut c_void, std::ptr::null_mut()) };
    if v == -1 && nix::errno::Errno::last_raw() != 0 {
        return Err(SysError::last("PTRACE_PEEKUSER(debugreg)", tid));
    }
    Ok(v as u64)
}

/// Write debug register `i` (0..=7) of a stopped thread.
pub fn set_debugreg(tid: RawTid, i: usize, value: u64) -> SysResult<()> {
    let off = DEBUGREG_OFFSET + 8 * i;
    let rc = unsafe { raw(libc::PTRACE_POKEUSER, tid, off as *mut c_void, value as *mut c_void) };
    check("PTRACE_POKEUSER(debugreg)", tid, rc).map(drop)
}

/// Which signal queue [`peek_pending`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigQueue {
    /// The thread's own queue (`tgkill`, faults, traps such as an `int3`'s SIGTRAP).
    Thread,
    /// The process-wide queue (`kill`, a terminal's Ctrl-C).
    Process,
}

/// A signal waiting in a queue, as `PTRACE_PEEKSIGINFO` shows it (nothing is dequeued).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued {
    /// The signal number.
    pub signo: i32,
    /// Its `si_code` (`SI_USER`, `SI_KERNEL`, `SI_TKILL`, ...).
    pub code: i32,
    /// The sender's pid for `kill`/`tgkill` signals, 0 otherwise.
    pub sender: i32,
}

/// The first `max` signals waiting in one queue of a stopped thread (`PTRACE_PEEKSIGINFO`,
/// Linux 3.10+). Standard signals appear at most once each.
pub fn peek_pending(tid: RawTid, queue: SigQueue, max: usize) -> SysResult<Vec<Queued>> {
    #[repr(C)]
    struct PeekArgs {
        off: u64,
        flags: u32,
        nr: i32,
    }
    const PTRACE_PEEKSIGINFO: libc::c_uint = 0x4209;
    const PTRACE_PEEKSIGINFO_SHARED: u32 = 1;
    let max = max.clamp(1, 64);
    let mut buf: Vec<libc::siginfo_t> = vec![unsafe { std::mem::zeroed() }; max];
    let mut args = PeekArgs {
        off: 0,
        flags: if queue == SigQueue::Process { PTRACE_PEEKSIGINFO_SHARED } else { 0 },
        nr: max as i32,
    };
    let rc = unsafe {
        raw(PTRACE_PEEKSIGINFO, tid, &mut args as *mut PeekArgs as *mut c_void, buf.as_mut_ptr() as *mut c_void)
    };
    let n = check("PTRACE_PEEKSIGINFO", tid, rc)? as usize;
    Ok(buf[..n.min(max)]
        .iter()
        .map(|si| Queued {
            signo: si.si_signo,
            code: si.si_code,
            // si_pid sits at the start of the union for kill()/tgkill() signals.
            sender: if si.si_code <= 0 { unsafe { si.si_pid() } } else { 0 },
        })
        .collect())
}

/// The blocked-signal mask of a stopped thread (`PTRACE_GETSIGMASK`): bit `n - 1` is signal `n`.
pub fn sigmask(tid: RawTid) -> SysResult<u64> {
    const PTRACE_GETSIGMASK: libc::c_uint = 0x420a;
    let mut mask: u64 = 0;
    let rc = unsafe { raw(PTRACE_GETSIGMASK, tid, 8usize as *mut c_void, &mut mask as *mut u64 as *mut c_void) };
    check("PTRACE_GETSIGMASK", tid, rc).map(|_| mask)
}
