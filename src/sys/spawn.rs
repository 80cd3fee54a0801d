//! Start a program under ptrace: fork, stop the child before `exec`, seize it with our options,
//! and let it run to the exec stop. The program then waits, stopped at its first instruction
//! (the dynamic loader's entry), for the caller to decide what to do.
//!
//! `exec` failure is reported through a close-on-exec pipe so a missing or non-executable program
//! gives a clear error instead of a stopped child.

use super::ptrace;
use super::wait::{self, Event, Stop};
use super::{signals, RawTid};
use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

/// How to start the inferior.
#[derive(Debug, Clone, Default)]
pub struct SpawnSpec {
    /// The program (looked up in PATH if it has no `/`), then its arguments.
    pub argv: Vec<OsString>,
    /// Programs run before it, each `exec`ing the next (gdbserver's `--wrapper`).
    pub wrapper: Vec<OsString>,
    /// Full environment (`KEY=VALUE`); `None` inherits xol's.
    pub env: Option<Vec<OsString>>,
    /// Working directory; `None` inherits xol's.
    pub cwd: Option<PathBuf>,
    /// Turn off address-space randomisation (gdb's default).
    pub disable_aslr: bool,
    /// Standard input from `/dev/null`.
    pub stdin_null: bool,
    /// Standard output to xol's standard error.
    pub stdout_to_stderr: bool,
    /// Standard input, output and error all on this file or terminal (gdb's `tty`); over
    /// `stdin_null` and `stdout_to_stderr`.
    pub tty: Option<PathBuf>,
}

/// Why a program could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    /// The argument vector was empty or held a NUL byte.
    #[error("invalid program or argument: {0}")]
    BadArgs(String),
    /// `exec` failed in the child.
    #[error("cannot execute {prog}: {err}")]
    Exec {
        /// The program.
        prog: String,
        /// The errno from exec.
        err: std::io::Error,
    },
    /// A system call in the parent failed.
    #[error("cannot start {prog}: {err}")]
    Sys {
        /// The program.
        prog: String,
        /// What failed.
        err: String,
    },
}

fn cstr(s: &OsString) -> Result<CString, SpawnError> {
    CString::new(s.as_bytes()).map_err(|_| SpawnError::BadArgs(s.to_string_lossy().into_owned()))
}

/// Fork and exec `spec` under `PTRACE_SEIZE` with `options`. On success the process is stopped at
/// the exec event of the program itself (after any wrapper) and its pid is returned.
pub fn spawn(spec: &SpawnSpec, options: libc::c_long) -> Result<RawTid, SpawnError> {
    let full: Vec<OsString> = spec.wrapper.iter().chain(spec.argv.iter()).cloned().collect();
    let prog = spec.argv.first().ok_or_else(|| SpawnError::BadArgs("no program given".into()))?;
    let prog_name = prog.to_string_lossy().into_owned();
    let sys_err = |what: &str| SpawnError::Sys {
        prog: prog_name.clone(),
        err: format!("{what}: {}", std::io::Error::last_os_error()),
    };
    let argv: Vec<CString> = full.iter().map(cstr).collect::<Result<_, _>>()?;
    let mut argv_ptrs: Vec<*const libc::c_char> = argv.iter().map(|c| c.as_ptr()).collect();
    argv_ptrs.push(std::ptr::null());
    let env: Option<Vec<CString>> = match &spec.env {
        Some(e) => Some(e.iter().map(cstr).collect::<Result<_, _>>()?),
        None => None,
    };
    let mut env_ptrs: Vec<*const libc::c_char> = Vec::new();
    if let Some(e) = &env {
        env_ptrs = e.iter().map(|c| c.as_ptr()).collect();
        env_ptrs.push(std::ptr::null());
    }
    let cwd = match &spec.cwd {
        Some(d) => Some(cstr(&d.clone().into_os_string())?),
        None => None,
    };
    let devnull = CString::new("/dev/null").expect("static string");
    // The program's terminal, opened here so a bad path is an error of xol's, not an exec
    // failure (the child only dups it).
    let tty = match &spec.tty {
        Some(p) => Some(
            std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOCTTY)
                .open(p)
                .map_err(|e| SpawnError::Sys { prog: prog_name.clone(), err: format!("{}: {e}", p.display()) })?,
        ),
        None => None,
    };

    let mut pipe = [0i32; 2];
    if unsafe { libc::pipe2(pipe.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(sys_err("pipe"));
    }
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(sys_err("fork"));
    }
    if pid == 0 {
        // Child: only async-signal-safe calls from here to exec.
        unsafe {
            libc::close(pipe[0]);
            signals::reset_in_child();
            if spec.stdin_null {
                let fd = libc::open(devnull.as_ptr(), libc::O_RDONLY);
                if fd >= 0 {
                    libc::dup2(fd, 0);
                    libc::close(fd);
                }
            }
            if spec.stdout_to_stderr {
                libc::dup2(2, 1);
            }
            if let Some(t) = &tty {
                let fd = std::os::fd::AsRawFd::as_raw_fd(t);
                libc::dup2(fd, 0);
                libc::dup2(fd, 1);
                libc::dup2(fd, 2);
            }
            if spec.disable_aslr {
                let cur = libc::personality(0xffff_ffff);
                if cur != -1 {
                    libc::personality((cur | libc::ADDR_NO_RANDOMIZE) as libc::c_ulong);
                }
            }
            if let Some(d) = &cwd {
                if libc::chdir(d.as_ptr()) != 0 {
                    let e = *libc::__errno_location();
                    libc::write(pipe[1], &e as *const i32 as *const libc::c_void, 4);
                    libc::_exit(127);
                }
            }
            libc::raise(libc::SIGSTOP);
            if env.is_some() {
                libc::execvpe(argv_ptrs[0], argv_ptrs.as_ptr(), env_ptrs.as_ptr());
            } else {
                libc::execvp(argv_ptrs[0], argv_ptrs.as_ptr());
            }
            let e = *libc::__errno_location();
            libc::write(pipe[1], &e as *const i32 as *const libc::c_void, 4);
            libc::_exit(127);
        }
    }
    unsafe { libc::close(pipe[1]) };
    // A wrapper is one command line that execs the program: two execs in all.
    let execs = if spec.wrapper.is_empty() { 1 } else { 2 };
    let result = finish_spawn(pid, options, execs, pipe[0], &prog_name);
    unsafe { libc::close(pipe[0]) };
    if result.is_err() {
        unsafe {
            libc::kill(pid, libc::SIGKILL);
        }
        let _ = wait::wait_tid(pid);
    }
    result.map(|_| pid)
}

fn finish_spawn(
    pid: RawTid,
    options: libc::c_long,
    mut execs: usize,
    err_fd: i32,
    prog: &str,
) -> Result<(), SpawnError> {
    let sys = |what: &str, e: String| SpawnError::Sys { prog: prog.to_string(), err: format!("{what}: {e}") };
    // Wait for the child's self-stop (it is not traced yet).
    let mut status = 0;
    loop {
        let rc = unsafe { libc::waitpid(pid, &mut status, libc::WUNTRACED) };
        if rc == pid {
            break;
        }
        if rc < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err(sys("waitpid", std::io::Error::last_os_error().to_string()));
        }
    }
    if !libc::WIFSTOPPED(status) {
        return Err(exec_error(err_fd, prog));
    }
    ptrace::seize(pid, options).map_err(|e| sys("ptrace", e.to_string()))?;
    // Seizing a stopped task re-reports its stop to us; wake it with SIGCONT as well, so it runs
    // whichever way the kernel reports the stop.
    unsafe {
        libc::kill(pid, libc::SIGCONT);
    }
    loop {
        let (_, st) = wait::wait_tid(pid).map_err(|e| sys("waitpid", e.to_string()))?;
        match st {
            Stop::Event(Event::Exec) => {
                execs -= 1;
                if execs == 0 {
                    return Ok(());
                }
                ptrace::resume(pid, ptrace::ResumeKind::Cont, 0).map_err(|e| sys("ptrace", e.to_string()))?;
            }
            Stop::Exited(_) | Stop::Killed(_) => return Err(exec_error(err_fd, prog)),
            Stop::Signal(sig) if sig != libc::SIGSTOP && sig != libc::SIGCONT => {
                // A real signal before exec (e.g. from the wrapper): deliver it.
                ptrace::resume(pid, ptrace::ResumeKind::Cont, sig).map_err(|e| sys("ptrace", e.to_string()))?;
            }
            _ => {
                ptrace::resume(pid, ptrace::ResumeKind::Cont, 0).map_err(|e| sys("ptrace", e.to_string()))?;
            }
        }
    }
}

fn exec_error(err_fd: i32, prog: &str) -> SpawnError {
    let mut e = 0i32;
    let n = unsafe { libc::read(err_fd, &mut e as *mut i32 as *mut libc::c_void, 4) };
    let err = if n == 4 {
        std::io::Error::from_raw_os_error(e)
    } else {
        std::io::Error::other("the program exited before it could be started")
    };
    SpawnError::Exec { prog: prog.to_string(), err }
}
