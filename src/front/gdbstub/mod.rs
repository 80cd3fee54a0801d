//! The gdb front-end: a remote-protocol stub built on `gdbstub`, serving the core [`Debugger`]
//! over stdio or TCP. File names mirror gdbstub's extension names.
//!
//! Session rules (as GNU gdbserver): a session that ends because gdb vanished, or because xol got
//! SIGTERM/SIGINT/SIGHUP, kills what xol launched and detaches what it attached, after writing
//! back every breakpoint byte. In extended-remote (`--multi`) mode the session outlives the
//! process: the protocol engine is restarted on the same connection after an exit or detach.

pub mod arch;
pub mod conn;
mod host_io;
pub mod target;

pub use super::gdb_common::{breakpoints, signals};
pub use super::gdb_common::{init_logging, resolve, Comm, ServerOptions, SessionEnd};

pub use super::gdb_common::ServeConfig;
use crate::debugger::Debugger;
use crate::debugger::WaitOutcome;
use crate::types::Pid;
use conn::{Conn, SharedConn};
use gdbstub::conn::Connection;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};
use std::io;
use std::net::TcpListener;
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
pub use target::XolTarget;

enum EventLoop {}

impl BlockingEventLoop for EventLoop {
    type Target = XolTarget;
    type Connection = SharedConn;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut XolTarget,
        conn: &mut SharedConn,
    ) -> Result<Event<Self::StopReason>, WaitForStopReasonError<String, io::Error>> {
        // The engine acknowledged the resume packet into our buffer: send it before blocking.
        conn.0.borrow_mut().flush().map_err(WaitForStopReasonError::Connection)?;
        target.running = true;
        if let Some(list) = conn.0.borrow_mut().pass_signals.take() {
            target.dbg.set_pass_signals(list.into_iter().map(signals::from_gdb).filter(|s| *s > 0));
        }
        loop {
            if conn.0.borrow().has_buffered() {
                let b = conn.0.borrow_mut().read_byte().map_err(WaitForStopReasonError::Connection)?;
                return Ok(Event::IncomingData(b));
            }
            let outcome = {
                let c = conn.0.borrow();
                target.dbg.wait(Some(c.read_fd()))
            }
            .map_err(|e| WaitForStopReasonError::Target(e.to_string()))?;
            match outcome {
                WaitOutcome::Stopped(ev) => {
                    target.running = false;
                    return Ok(Event::TargetStopped(target.stop_reason(ev)));
                }
                // Only well-formed input reaches the engine; noise just goes back to waiting.
                WaitOutcome::Input => conn.0.borrow_mut().pump().map_err(WaitForStopReasonError::Connection)?,
                WaitOutcome::Terminate => {
                    return Err(WaitForStopReasonError::Connection(io::Error::new(
                        io::ErrorKind::Interrupted,
                        "xol was asked to terminate",
                    )))
                }
                // (No timeout is given here; gdbstub's front-end subscribes to no notices.)
                WaitOutcome::Timeout | WaitOutcome::Notice(_) => {}
                WaitOutcome::NoProcesses => {
                    target.running = false;
                    target.set_pid(None);
                    return Ok(Event::TargetStopped(MultiThreadStopReason::Exited(0)));
                }
            }
        }
    }

    fn on_interrupt(target: &mut XolTarget) -> Result<Option<Self::StopReason>, String> {
        // As gdbserver: a Ctrl-C interrupts a running program; while the program is stopped,
        // or when there is none (`--multi` before `run`), it is dropped, never remembered
        // for the next resume.
        match target.pid {
            Some(pid) if target.running => {
                target.dbg.interrupt(pid).map_err(|e| e.to_string())?;
            }
            _ => log::debug!("Ctrl-C while nothing runs: ignored"),
        }
        Ok(None)
    }
}

/// Serve gdb on one connection until the session ends.
pub fn run_session(target: &mut XolTarget, conn: SharedConn) -> SessionEnd {
    loop {
        let stub = GdbStub::new(conn.clone());
        let r = stub.run_blocking::<EventLoop>(target);
        conn.0.borrow_mut().prepare_restart();
        let extended = target.cfg.multi || target.extended.get();
        match r {
            Ok(DisconnectReason::Disconnect) => {
                if let Some(pid) = target.pid {
                    target.set_pid(None);
                    if let Err(e) = target.dbg.detach(pid) {
                        eprintln!("xol: detaching from process {pid}: {e}");
                    } else {
                        eprintln!("Detaching from process {pid}");
                    }
                }
                if !extended {
                    return SessionEnd::Done;
                }
            }
            Ok(DisconnectReason::TargetExited(code)) => {
                eprintln!("\nChild exited with status {code}");
                if !extended {
                    return SessionEnd::Done;
                }
            }
            Ok(DisconnectReason::TargetTerminated(sig)) => {
                eprintln!("\nChild terminated with signal = {:#x}", sig.0);
                if !extended {
                    return SessionEnd::Done;
                }
            }
            Ok(DisconnectReason::Kill) => {
                if let Some(pid) = target.pid {
                    target.set_pid(None);
                    let _ = target.dbg.kill(pid);
                }
                return SessionEnd::Done;
            }
            Err(e) => {
                if target.exit_requested.load(Ordering::Relaxed) {
                    return SessionEnd::ExitRequested;
                }
                if crate::debugger::io::terminate_requested().is_some() {
                    return SessionEnd::Terminated;
                }
                if e.is_connection_error() {
                    forget_lost_client(target);
                    return SessionEnd::Lost(e.to_string());
                }
                // gdbstub treats a malformed packet (or a failed request) as fatal. The session
                // is not: answer with an error, as gdbserver does, and restart the engine.
                if e.is_target_error() {
                    // A request that failed (`run` with no program, ...): gdb shows its own message.
                    let why = e.into_target_error().map(|t| t.to_string()).unwrap_or_default();
                    log::info!("gdb's request failed: {why}; replying E01");
                } else {
                    log::warn!("bad request from gdb: {e}; replying E01");
                }
                let mut c = conn.0.borrow_mut();
                let reply = c.error_reply();
                if let Err(e) = c.write_raw(&reply) {
                    return SessionEnd::Lost(e.to_string());
                }
            }
        }
    }
}

/// gdb went away without detaching. What it set up dies with its session, as gdbserver's
/// clients would expect of a fresh connection: its breakpoints, watchpoints and `catch syscall`
/// are taken out (the next gdb inserts its own, and must not meet a trap it never set). A
/// program that runs keeps running.
fn forget_lost_client(target: &mut XolTarget) {
    let Some(pid) = target.pid else { return };
    target.bps.forget(&mut target.dbg, pid);
    if let Err(e) = target.dbg.clear_hw(pid) {
        log::warn!("removing the lost client's watchpoints: {e}");
    }
    if let Err(e) = target.dbg.set_catch_syscalls(pid, None) {
        log::warn!("turning the lost client's `catch syscall` off: {e}");
    }
}

/// While no gdb is connected and the program runs, keep serving it (probe hits, internal
/// events) until a client connects (`true`) or the program stops by itself: a stop (a signal,
/// say) is kept for the next client's `?`, as gdbserver keeps it. `false`: xol must end.
fn serve_while_listening(target: &mut XolTarget, listener: &TcpListener) -> bool {
    use std::os::fd::AsFd;
    while target.running {
        let Some(pid) = target.pid else { return true };
        match target.dbg.wait(Some(listener.as_fd())) {
            Ok(WaitOutcome::Stopped(ev)) => {
                if ev.pid == pid {
                    target.running = false;
                }
                let _ = target.stop_reason(ev);
            }
            Ok(WaitOutcome::Input) => return true,
            Ok(WaitOutcome::Timeout) | Ok(WaitOutcome::Notice(_)) => {}
            Ok(WaitOutcome::Terminate) => return false,
            Ok(WaitOutcome::NoProcesses) => {
                target.running = false;
                target.set_pid(None);
            }
            Err(e) => {
                log::warn!("serving process {pid} while no gdb is connected: {e}");
                return true;
            }
        }
    }
    true
}

/// A client connects while the program runs: stop it first, as an attach would (a Ctrl-C's
/// SIGINT, whose stop `?` then reports), so that it finds a stopped program.
fn stop_for_new_client(target: &mut XolTarget) {
    let Some(pid) = target.pid else { return };
    if !target.running {
        return;
    }
    if let Err(e) = target.dbg.interrupt(pid) {
        log::warn!("stopping process {pid} for the new connection: {e}");
        return;
    }
    loop {
        match target.dbg.wait(None) {
            Ok(WaitOutcome::Stopped(ev)) => {
                if target.pid == Some(ev.pid) {
                    target.running = false;
                }
                let _ = target.stop_reason(ev);
                if !target.running || target.pid.is_none() {
                    return;
                }
            }
            Ok(WaitOutcome::Input) | Ok(WaitOutcome::Timeout) | Ok(WaitOutcome::Notice(_)) => {}
            Ok(WaitOutcome::Terminate) => return,
            Ok(WaitOutcome::NoProcesses) => {
                target.running = false;
                target.set_pid(None);
                return;
            }
            Err(e) => {
                log::warn!("waiting for process {pid} to stop for the new connection: {e}");
                return;
            }
        }
    }
}

/// Run the server: start or attach the program, listen, serve sessions. Returns the exit code.
pub fn serve(opts: ServerOptions) -> anyhow::Result<i32> {
    crate::debugger::io::init()?;
    let exit_flag = Arc::new(AtomicBool::new(false));
    let cfg = ServeConfig {
        multi: opts.multi,
        stdio_is_protocol: opts.comm == Comm::Stdio,
        program: opts.program.clone(),
        wrapper: opts.wrapper.clone(),
        aslr: opts.aslr,
        ..ServeConfig::default()
    };
    let mut target = XolTarget::new(Debugger::new(), cfg, exit_flag.clone());
    target.state.borrow_mut().remote_debug = opts.remote_debug;
    // Check the address before starting anything, so a bad COMM leaves nothing behind.
    let tcp_addr = match &opts.comm {
        Comm::Tcp(addr) => match resolve(addr) {
            Ok(a) => Some(a),
            Err(e) => {
                eprintln!("{e}");
                eprintln!("Exiting");
                return Ok(1);
            }
        },
        Comm::Stdio | Comm::Serial(_) => None,
    };
    // Open the line before starting anything, as the port below.
    let mut serial = match &opts.comm {
        Comm::Serial(path) => match crate::debugger::io::open_serial(path) {
            Ok(fd) => Some(fd),
            Err(e) => {
                eprintln!("Could not open remote device {}: {e}.", path.display());
                eprintln!("Exiting");
                return Ok(1);
            }
        },
        _ => None,
    };
    // Bind before starting anything, as gdbserver: a port in use leaves no program behind.
    let mut listener = match tcp_addr {
        Some(sa) => match TcpListener::bind(sa) {
            Ok(l) => Some(l),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                eprintln!("Can't bind address: Address already in use.");
                eprintln!("Exiting");
                return Ok(1);
            }
            Err(e) => {
                eprintln!("Can't bind address {sa}: {e}.");
                eprintln!("Exiting");
                return Ok(1);
            }
        },
        None => None,
    };

    if let Some(pid) = opts.attach {
        if let Err(e) = target.dbg.attach(Pid(pid)) {
            eprintln!("xol: {e}");
            eprintln!("Exiting");
            return Ok(1);
        }
        eprintln!("Attached; pid = {pid}");
        target.set_pid(Some(Pid(pid)));
    } else if !opts.program.is_empty() {
        let spec = target.launch_config(opts.program.clone());
        match target.dbg.launch(&spec) {
            Ok(pid) => {
                eprintln!("Process {} created; pid = {pid}", opts.program[0].to_string_lossy());
                target.set_pid(Some(pid));
            }
            Err(e) => {
                eprintln!("xol: {e}");
                eprintln!("Error creating process\n\nExiting");
                return Ok(1);
            }
        }
    } else if !opts.multi {
        eprintln!(
            "xol: no program to debug: give `-- PROG [ARGS...]` (e.g. `xol serve :2345 -- ./prog`), --attach PID, or --multi"
        );
        return Ok(2);
    }

    let end = match &opts.comm {
        Comm::Stdio => {
            let rfd = unsafe { OwnedFd::from_raw_fd(libc::dup(0)) };
            let wfd = unsafe { OwnedFd::from_raw_fd(libc::dup(1)) };
            let mut c = Conn::new(rfd, Some(wfd));
            c.exit_requested = exit_flag.clone();
            c.last_vrun = target.last_vrun.clone();
            c.extended = target.extended.clone();
            c.state = target.state.clone();
            c.disabled = opts.disabled;
            run_session(&mut target, SharedConn::new(c))
        }
        Comm::Serial(path) => {
            let Some(fd) = serial.take() else { return Ok(1) };
            eprintln!("Remote debugging using {}", path.display());
            let dup = fd.try_clone()?;
            let mut c = Conn::new(fd, Some(dup));
            c.exit_requested = exit_flag.clone();
            c.last_vrun = target.last_vrun.clone();
            c.extended = target.extended.clone();
            c.state = target.state.clone();
            c.disabled = opts.disabled;
            run_session(&mut target, SharedConn::new(c))
        }
        Comm::Tcp(_) => {
            let Some(listener) = listener.take() else { return Ok(1) };
            let port = listener.local_addr()?.port();
            let mut first = true;
            loop {
                eprintln!("Listening on port {port}");
                if !serve_while_listening(&mut target, &listener) {
                    break SessionEnd::Terminated;
                }
                if target.pid.is_none() && !opts.multi && !first {
                    // The program ended while no gdb was connected.
                    eprintln!("\nChild exited while no gdb was connected");
                    break SessionEnd::Done;
                }
                first = false;
                let stream = match accept(&listener) {
                    Ok(s) => s,
                    Err(e) => {
                        if crate::debugger::io::terminate_requested().is_some() {
                            break SessionEnd::Terminated;
                        }
                        break SessionEnd::Lost(e.to_string());
                    }
                };
                if let Ok(peer) = stream.peer_addr() {
                    eprintln!("Remote debugging from host {}, port {}", peer.ip(), peer.port());
                }
                let _ = stream.set_nodelay(true);
                stop_for_new_client(&mut target);
                let fd: OwnedFd = stream.into();
                let mut c = Conn::new(fd, None);
                c.exit_requested = exit_flag.clone();
                target.extended.set(false);
                c.last_vrun = target.last_vrun.clone();
                c.extended = target.extended.clone();
                c.state = target.state.clone();
                c.disabled = opts.disabled;
                target.state.borrow_mut().resync = true;
                let end = run_session(&mut target, SharedConn::new(c));
                let again = !opts.once
                    && matches!(end, SessionEnd::Lost(_) | SessionEnd::Done)
                    && (opts.multi || target.pid.is_some());
                if !again {
                    break end;
                }
            }
        }
    };
    match &end {
        SessionEnd::Lost(why) => log::info!("connection lost: {why}"),
        SessionEnd::Terminated => eprintln!("xol: terminated by signal; restoring the inferiors"),
        _ => {}
    }
    target.dbg.release_all();
    Ok(0)
}

/// Accept one connection, noticing termination signals while waiting.
fn accept(l: &TcpListener) -> io::Result<std::net::TcpStream> {
    use std::os::fd::AsFd;
    loop {
        let r = crate::debugger::io::poll(Some(l.as_fd()), -1)?;
        if r.terminate {
            return Err(io::Error::new(io::ErrorKind::Interrupted, "terminated"));
        }
        if r.extra {
            let (s, _) = l.accept()?;
            return Ok(s);
        }
    }
}
