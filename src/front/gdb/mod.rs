//! xol's own gdb remote-protocol server (`--rsp xol`): [`crate::rsp`] requests turned into
//! session-API calls ([`crate::debugger`]), one file per feature:
//!
//! - `conn.rs`: the byte stream (decoder, acks, NAK resends, no-ack mode, Ctrl-C);
//! - `session.rs`: the server state, what a connection negotiated, the dispatch;
//! - `run_control.rs`: `vCont`, `c`/`s`/`C`/`S`, `vCtrlC`, `?`, waiting for a stop;
//! - `stop.rs`: stop replies; `memory.rs`, `registers.rs`, `breakpoints.rs`;
//! - `query.rs`: `qSupported`, threads, `qXfer`; `monitor.rs`: `qRcmd`; `host_io.rs`: `vFile`;
//! - `extended.rs`: `vRun`, `vAttach`, `vKill`, `D`, `R`, the launch settings;
//! - `signals.rs`: `QPassSignals`, `QProgramSignals`, `QCatchSyscalls`, `QNonStop`;
//! - `notify.rs`: the non-stop `%Stop`/`vStopped` queue (a hook: non-stop is not offered yet).
//!
//! Unlike the gdbstub front-end it presents real pids (`multiprocess+`: `pPID.TID` thread ids,
//! `W..;process:PID`) and thread names (`qXfer:threads:read`). Session rules are gdbserver's
//! and the gdbstub front-end's: a session that ends because gdb vanished, or because xol got
//! SIGTERM/SIGINT/SIGHUP, kills what xol launched and detaches what it attached, after writing
//! back every breakpoint byte; a TCP server without `--once` keeps the process for the next
//! gdb. A malformed packet is answered `E01` and the session goes on.
//!
//! Not yet (hooks left in place): fork/vfork/exec events, non-stop mode, target-side
//! breakpoint conditions.

mod breakpoints;
pub mod conn;
mod extended;
mod host_io;
mod memory;
mod monitor;
pub mod notify;
pub mod query;
mod registers;
mod run_control;
pub mod session;
mod signals;
mod stop;

use crate::debugger::{Debugger, WaitOutcome};
use crate::front::gdb_common::{resolve, Comm, ServeConfig, ServerOptions, SessionEnd};
use crate::rsp::framing::Input;
use crate::types::Pid;
use conn::Conn;
pub use session::Server;
use session::{Peer, Reply};
use std::io;
use std::net::TcpListener;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};

/// Serve gdb on one connection until the session ends.
pub fn run_session(srv: &mut Server, conn: &mut Conn) -> SessionEnd {
    conn.remote_debug = srv.remote_debug;
    loop {
        let input = match conn.next_input() {
            Ok(i) => i,
            Err(e) => return lost(srv, e),
        };
        let r = match input {
            Input::Packet(p) => srv.handle(conn, &p),
            Input::Dropped(e) => {
                log::debug!("dropped a packet from gdb: {e}");
                Ok(Reply::err())
            }
            // Ctrl-C while the program is stopped (or there is none): dropped, as gdbserver.
            Input::Interrupt | Input::Notification(_) | Input::Resend(_) | Input::Nothing => Ok(Reply::Nothing),
        };
        let r = match r {
            Ok(r) => r,
            Err(e) => return lost(srv, e),
        };
        let sent = match &r {
            Reply::Send(p) | Reply::End(Some(p), _) => conn.send(p),
            _ => Ok(()),
        };
        if let Err(e) = sent {
            return lost(srv, e);
        }
        if let Reply::End(_, end) = r {
            return end;
        }
        if srv.exit_requested {
            return SessionEnd::ExitRequested;
        }
    }
}

/// The connection failed: xol is terminating, or gdb went away (its breakpoints, watchpoints
/// and syscall catching go with it).
fn lost(srv: &mut Server, e: io::Error) -> SessionEnd {
    if crate::debugger::io::terminate_requested().is_some() || e.kind() == io::ErrorKind::Interrupted {
        return SessionEnd::Terminated;
    }
    forget_lost_client(srv);
    SessionEnd::Lost(e.to_string())
}

/// gdb went away without detaching: what it set up dies with its session.
fn forget_lost_client(srv: &mut Server) {
    // Forked children gdb was told of and never detached go their way, as gdb's default
    // `detach-on-fork` would have let them.
    for child in std::mem::take(&mut srv.forks) {
        if let Err(e) = srv.dbg.detach(child) {
            log::warn!("detaching forked child {child} of the lost client: {e}");
        }
    }
    let Some(pid) = srv.pid else { return };
    srv.bps.forget(&mut srv.dbg, pid);
    if let Err(e) = srv.dbg.clear_hw(pid) {
        log::warn!("removing the lost client's watchpoints: {e}");
    }
    if let Err(e) = srv.dbg.set_catch_syscalls(pid, None) {
        log::warn!("turning the lost client's `catch syscall` off: {e}");
    }
}

/// While no gdb is connected and the program runs, keep serving it until a client connects
/// (`true`) or the program stops by itself (its stop is kept for the next `?`). `false`: xol
/// must end.
fn serve_while_listening(srv: &mut Server, listener: &TcpListener) -> bool {
    while srv.running {
        let Some(pid) = srv.pid else { return true };
        match srv.dbg.wait(Some(listener.as_fd())) {
            Ok(WaitOutcome::Stopped(ev)) if ev.pid == pid => {
                srv.running = false;
                let _ = srv.stop_reply(ev);
            }
            Ok(WaitOutcome::Stopped(ev)) => srv.foreign_stop(ev),
            Ok(WaitOutcome::Input) => return true,
            Ok(WaitOutcome::Timeout) | Ok(WaitOutcome::Notice(_)) => {}
            Ok(WaitOutcome::Terminate) => return false,
            Ok(WaitOutcome::NoProcesses) => {
                srv.running = false;
                srv.set_pid(None);
            }
            Err(e) => {
                log::warn!("serving process {pid} while no gdb is connected: {e}");
                return true;
            }
        }
    }
    true
}

/// A client connects while the program runs: stop it first (a Ctrl-C's SIGINT, which `?`
/// then reports), as an attach would.
fn stop_for_new_client(srv: &mut Server) {
    let Some(pid) = srv.pid.filter(|_| srv.running) else { return };
    if let Err(e) = srv.dbg.interrupt(pid) {
        log::warn!("stopping process {pid} for the new connection: {e}");
        return;
    }
    while srv.running {
        match srv.dbg.wait(None) {
            Ok(WaitOutcome::Stopped(ev)) if Some(ev.pid) == srv.pid => {
                srv.running = false;
                let _ = srv.stop_reply(ev);
            }
            Ok(WaitOutcome::Stopped(ev)) => srv.foreign_stop(ev),
            Ok(WaitOutcome::Input) | Ok(WaitOutcome::Timeout) | Ok(WaitOutcome::Notice(_)) => {}
            Ok(WaitOutcome::Terminate) => return,
            Ok(WaitOutcome::NoProcesses) => {
                srv.running = false;
                srv.set_pid(None);
            }
            Err(e) => {
                log::warn!("waiting for process {pid} to stop for the new connection: {e}");
                return;
            }
        }
    }
}

/// Accept one connection, noticing termination signals while waiting.
fn accept(l: &TcpListener) -> io::Result<std::net::TcpStream> {
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

/// A new connection: negotiation starts over.
fn new_conn(srv: &mut Server, rfd: OwnedFd, wfd: Option<OwnedFd>) -> Conn {
    srv.peer = Peer::default();
    srv.stops.clear();
    Conn::new(rfd, wfd)
}

/// Run the server: start or attach the program, listen, serve sessions. Returns the exit code.
pub fn serve(opts: ServerOptions) -> anyhow::Result<i32> {
    crate::debugger::io::init()?;
    let cfg = ServeConfig {
        multi: opts.multi,
        stdio_is_protocol: opts.comm == Comm::Stdio,
        program: opts.program.clone(),
        wrapper: opts.wrapper.clone(),
        aslr: opts.aslr,
        ..ServeConfig::default()
    };
    let mut srv = Server::new(Debugger::new(), cfg);
    srv.remote_debug = opts.remote_debug;
    srv.disabled = opts.disabled;
    let fail = |msg: String| {
        eprintln!("{msg}");
        eprintln!("Exiting");
        Ok(1)
    };
    let tcp_addr = match &opts.comm {
        Comm::Tcp(addr) => match resolve(addr) {
            Ok(a) => Some(a),
            Err(e) => return fail(e),
        },
        _ => None,
    };
    let mut serial = match &opts.comm {
        Comm::Serial(path) => match crate::debugger::io::open_serial(path) {
            Ok(fd) => Some(fd),
            Err(e) => return fail(format!("Could not open remote device {}: {e}.", path.display())),
        },
        _ => None,
    };
    let mut listener = match tcp_addr {
        Some(sa) => match TcpListener::bind(sa) {
            Ok(l) => Some(l),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                return fail("Can't bind address: Address already in use.".into())
            }
            Err(e) => return fail(format!("Can't bind address {sa}: {e}.")),
        },
        None => None,
    };

    if let Some(pid) = opts.attach {
        if let Err(e) = srv.dbg.attach(Pid(pid)) {
            return fail(format!("xol: {e}"));
        }
        eprintln!("Attached; pid = {pid}");
        srv.set_pid(Some(Pid(pid)));
    } else if !opts.program.is_empty() {
        let spec = srv.cfg.launch(opts.program.clone());
        match srv.dbg.launch(&spec) {
            Ok(pid) => {
                eprintln!("Process {} created; pid = {pid}", opts.program[0].to_string_lossy());
                srv.last_argv = spec.argv.clone();
                srv.set_pid(Some(pid));
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
            let mut c = new_conn(&mut srv, rfd, Some(wfd));
            run_session(&mut srv, &mut c)
        }
        Comm::Serial(path) => {
            let Some(fd) = serial.take() else { return Ok(1) };
            eprintln!("Remote debugging using {}", path.display());
            let dup = fd.try_clone()?;
            let mut c = new_conn(&mut srv, fd, Some(dup));
            run_session(&mut srv, &mut c)
        }
        Comm::Tcp(_) => {
            let Some(listener) = listener.take() else { return Ok(1) };
            let port = listener.local_addr()?.port();
            let mut first = true;
            loop {
                eprintln!("Listening on port {port}");
                if !serve_while_listening(&mut srv, &listener) {
                    break SessionEnd::Terminated;
                }
                if srv.pid.is_none() && !opts.multi && !first {
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
                stop_for_new_client(&mut srv);
                let fd: OwnedFd = stream.into();
                let mut c = new_conn(&mut srv, fd, None);
                let end = run_session(&mut srv, &mut c);
                let again = !opts.once
                    && matches!(end, SessionEnd::Lost(_) | SessionEnd::Done)
                    && (opts.multi || srv.pid.is_some());
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
    srv.dbg.release_all();
    Ok(0)
}
