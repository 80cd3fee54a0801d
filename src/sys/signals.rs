//! xol's own signals: SIGCHLD, SIGINT, SIGTERM and SIGHUP are blocked and read from a
//! `signalfd`, so the single tracer thread can wait for "a tracee changed state", "the front-end
//! has input" and "we were asked to terminate" in one `poll`.
//!
//! Termination requests are latched in [`terminate_requested`] so any blocking wait can notice
//! them and unwind cleanly (restoring every breakpoint byte before xol exits).
//!
//! The descriptor of gdb's connection is set up here too (non-blocking writes waited for in
//! [`poll_out`]; a serial line opened in raw mode by [`open_serial`]), as the front-end may use
//! only this module of `sys`.

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::OnceLock;

static SIGFD: OnceLock<OwnedFd> = OnceLock::new();
static TERMINATE: AtomicI32 = AtomicI32::new(0);
/// The `si_code` of the latched termination signal (`SI_KERNEL`: sent by the terminal driver
/// to the whole foreground process group).
static TERMINATE_CODE: AtomicI32 = AtomicI32::new(0);

fn mask() -> libc::sigset_t {
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in [libc::SIGCHLD, libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

/// Block xol's signals and create the signalfd. Call once, before any thread or child starts.
/// SIGPIPE is ignored so a vanished gdb shows up as a write error.
pub fn init() -> std::io::Result<()> {
    if SIGFD.get().is_some() {
        return Ok(());
    }
    let set = mask();
    unsafe {
        if libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) != 0 {
            return Err(std::io::Error::last_os_error());
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let fd = libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC);
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        let _ = SIGFD.set(OwnedFd::from_raw_fd(fd));
    }
    Ok(())
}

/// Undo [`init`]'s mask in a freshly forked child, before `exec`.
///
/// # Safety
/// Only async-signal-safe calls: meant for the child side of `fork`.
pub unsafe fn reset_in_child() {
    let mut empty: libc::sigset_t = std::mem::zeroed();
    libc::sigemptyset(&mut empty);
    libc::sigprocmask(libc::SIG_SETMASK, &empty, std::ptr::null_mut());
    libc::signal(libc::SIGPIPE, libc::SIG_DFL);
}

/// Which termination signal was received, if any (0 = none).
pub fn terminate_requested() -> Option<i32> {
    match TERMINATE.load(Ordering::Relaxed) {
        0 => None,
        s => Some(s),
    }
}

/// True if the latched termination signal came from the terminal (Ctrl-C, Ctrl-\\, a hang-up):
/// the kernel sent it to the whole foreground process group, so a program in xol's group got
/// it too.
pub fn terminate_from_terminal() -> bool {
    terminate_requested().is_some() && TERMINATE_CODE.load(Ordering::Relaxed) == 0x80
}

/// Forget a latched request for `sig` (an interactive front-end's Ctrl-C: SIGINT interrupts the
/// program, it does not end xol). Returns whether it was latched.
pub fn clear_terminate(sig: i32) -> bool {
    TERMINATE.compare_exchange(sig, 0, Ordering::Relaxed, Ordering::Relaxed).is_ok()
}

/// Drain the signalfd; latch termination requests. Returns true if SIGCHLD was seen.
pub fn drain() -> bool {
    let Some(fd) = SIGFD.get() else { return false };
    let mut child = false;
    loop {
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let n = unsafe {
            libc::read(
                fd.as_raw_fd(),
                &mut info as *mut _ as *mut libc::c_void,
                std::mem::size_of::<libc::signalfd_siginfo>(),
            )
        };
        if n <= 0 {
            break;
        }
        let signo = info.ssi_signo as i32;
        if signo == libc::SIGCHLD {
            child = true;
        } else {
            TERMINATE_CODE.store(info.ssi_code, Ordering::Relaxed);
            TERMINATE.store(signo, Ordering::Relaxed);
        }
    }
    child
}

/// What woke a [`poll`] up.
#[derive(Debug, Default, Clone, Copy)]
pub struct Ready {
    /// A tracee may have changed state (SIGCHLD).
    pub child: bool,
    /// The extra descriptor is ready (readable, or writable for [`poll_out`]; or hung up).
    pub extra: bool,
    /// A termination signal is pending.
    pub terminate: bool,
}

/// Block until SIGCHLD, a termination signal, or `extra` readable. `timeout_ms < 0` waits forever.
pub fn poll(extra: Option<BorrowedFd<'_>>, timeout_ms: i32) -> std::io::Result<Ready> {
    poll_for(extra, libc::POLLIN, timeout_ms)
}

/// Like [`poll`], waiting for `extra` to be writable (`Ready::extra`): a write to gdb waits
/// here, so a termination signal is noticed while gdb does not read.
pub fn poll_out(extra: BorrowedFd<'_>, timeout_ms: i32) -> std::io::Result<Ready> {
    poll_for(Some(extra), libc::POLLOUT, timeout_ms)
}

/// Make `fd` non-blocking (returns the previous file status flags, for [`set_flags`]), unless
/// it is a terminal, whose flags the shell shares (then `None`).
pub fn set_nonblocking(fd: BorrowedFd<'_>) -> std::io::Result<Option<i32>> {
    let raw = fd.as_raw_fd();
    if unsafe { libc::isatty(raw) } == 1 {
        return Ok(None);
    }
    let flags = unsafe { libc::fcntl(raw, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(raw, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(Some(flags))
}

/// Open a serial line (a tty) for the remote protocol as gdbserver does: read/write, not as
/// the controlling terminal, in raw mode (8 bits, no echo, no line editing or translation).
pub fn open_serial(path: &std::path::Path) -> std::io::Result<OwnedFd> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidInput, "NUL in the path"))?;
    let raw = unsafe { libc::open(c.as_ptr(), libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC | libc::O_NONBLOCK) };
    if raw < 0 {
        return Err(std::io::Error::last_os_error());
    }
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let mut t: libc::termios = unsafe { std::mem::zeroed() };
    if unsafe { libc::tcgetattr(raw, &mut t) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    unsafe { libc::cfmakeraw(&mut t) };
    t.c_cflag |= libc::CLOCAL | libc::CREAD;
    t.c_cc[libc::VMIN] = 1;
    t.c_cc[libc::VTIME] = 0;
    if unsafe { libc::tcsetattr(raw, libc::TCSANOW, &t) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(fd)
}

/// Restore file status flags saved by [`set_nonblocking`].
pub fn set_flags(fd: BorrowedFd<'_>, flags: i32) {
    unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_SETFL, flags) };
}

fn poll_for(extra: Option<BorrowedFd<'_>>, events: libc::c_short, timeout_ms: i32) -> std::io::Result<Ready> {
    let sigfd: RawFd = SIGFD.get().map(|f| f.as_raw_fd()).unwrap_or(-1);
    let mut fds = [
        libc::pollfd { fd: sigfd, events: libc::POLLIN, revents: 0 },
        libc::pollfd { fd: extra.map(|f| f.as_raw_fd()).unwrap_or(-1), events, revents: 0 },
    ];
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), 2, timeout_ms) };
    if rc < 0 {
        let e = std::io::Error::last_os_error();
        if e.kind() == std::io::ErrorKind::Interrupted {
            return Ok(Ready::default());
        }
        return Err(e);
    }
    let mut ready = Ready::default();
    if fds[0].revents != 0 {
        ready.child = drain();
    }
    ready.terminate = terminate_requested().is_some();
    ready.extra = fds[1].revents != 0;
    Ok(ready)
}

/// Send `sig` to a whole process.
pub fn kill(pid: i32, sig: i32) -> std::io::Result<()> {
    if unsafe { libc::kill(pid, sig) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

/// Send `sig` to one thread of process `pid`.
pub fn tgkill(pid: i32, tid: i32, sig: i32) -> std::io::Result<()> {
    if unsafe { libc::syscall(libc::SYS_tgkill, pid, tid, sig) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
