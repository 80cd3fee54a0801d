//! The server's state and the request dispatch: [`Server`] outlives connections (the core, the
//! process gdb debugs, the launch configuration gdb built up), [`Peer`] is what one connection
//! negotiated (multiprocess, `swbreak`, extended mode, `H` selections). Each request kind is
//! answered by the feature file it belongs to (`run_control.rs`, `memory.rs`, ...).

use super::conn::Conn;
use crate::debugger::Debugger;
use crate::front::gdb_common::breakpoints::GdbBreakpoints;
use crate::front::gdb_common::host_io::HostFiles;
use crate::front::gdb_common::{Disabled, ServeConfig, SessionEnd};
use crate::rsp::request::Request;
use crate::rsp::{reply, Id, ThreadId};
use crate::types::{Pid, Tid};
use std::ffi::OsString;

/// What one connection negotiated and selected.
#[derive(Debug, Default, Clone)]
pub struct Peer {
    /// gdb sent `multiprocess+`: thread ids are `pPID.TID`, exits carry `;process:PID`.
    pub multiprocess: bool,
    /// gdb understands `swbreak:` / `hwbreak:` stop reasons.
    pub swbreak: bool,
    /// `hwbreak:`.
    pub hwbreak: bool,
    /// gdb sent `xmlRegisters=i386`: it reads the target description, so `g` carries every
    /// register of it; without, `g` stops before the AVX upper halves (the layout gdb's
    /// built-in amd64-linux architecture expects), as gdbserver's no-XML description.
    pub xml_registers: bool,
    /// gdb sent `!`: the session outlives the process.
    pub extended: bool,
    /// `Hg`: the thread registers and memory are read from (`None`: the last stopped one).
    pub g_thread: Option<Tid>,
    /// `Hc` naming one thread: legacy `c`/`s` resume only it (`None`: all threads).
    pub c_thread: Option<Tid>,
    /// gdb offered `fork-events+` and `vfork-events+`: forks are reported (`fork:`,
    /// `vfork:`, `vforkdone:`) and the child waits, stopped, for gdb's `D;PID`.
    pub fork_events: bool,
    /// gdb offered `exec-events+`: execs are reported (`exec:HEXPATH`).
    pub exec_events: bool,
    /// Hook for non-stop mode (`QNonStop:1`): not offered yet, always false.
    pub non_stop: bool,
    /// The client is lldb (its `qSupported` offers `xmlRegisters=i386,arm,...`, gdb's only
    /// `i386` on x86): lldb 14 takes `main-lm` of the svr4 library list for the dynamic
    /// linker's `r_debug`, so it is left out for lldb (its libraries are then found at once).
    pub lldb: bool,
}

/// The answer to one request.
pub enum Reply {
    /// Send this packet.
    Send(Vec<u8>),
    /// Send nothing (`R`, `k`).
    Nothing,
    /// Send this packet (if any), then end the session.
    End(Option<Vec<u8>>, SessionEnd),
}

impl Reply {
    /// `OK`.
    pub fn ok() -> Reply {
        Reply::Send(reply::ok())
    }

    /// `E01`, gdbserver's error for nearly everything.
    pub fn err() -> Reply {
        Reply::Send(reply::error(1))
    }

    /// `OK` on success, `E01` (logged) on failure.
    pub fn from<T>(r: crate::debugger::Result<T>) -> Reply {
        match r {
            Ok(_) => Reply::ok(),
            Err(e) => {
                log::debug!("request failed: {e}");
                Reply::err()
            }
        }
    }
}

/// The answer to a malformed packet, in the form gdbserver gives for its kind: a `Z`/`z` of
/// an unknown type is unsupported (empty), a `vFile` fails as a file operation
/// (`F-1,16`: EINVAL), anything else is `E01`.
fn malformed(packet: &[u8], e: &crate::rsp::ParseError) -> Reply {
    use crate::rsp::request::Problem;
    if matches!(e.packet, "Z" | "z") && e.problem == Problem::Invalid("type") {
        return Reply::Send(reply::empty());
    }
    if packet.starts_with(b"vFile:") {
        return Reply::Send(reply::file_result(-1, Some(22), None));
    }
    Reply::err()
}

/// xol's gdb server.
#[derive(Debug)]
pub struct Server {
    /// The core.
    pub dbg: Debugger,
    /// The process gdb debugs.
    pub pid: Option<Pid>,
    /// How xol was started and what gdb configured for the next `run`.
    pub cfg: ServeConfig,
    /// gdb's breakpoints, gdb being one client of the core.
    pub bps: GdbBreakpoints,
    /// The program was resumed and its stop is not reported yet.
    pub running: bool,
    /// The last stop of the process gdb debugs: the thread and gdb's signal number (`?`).
    pub last_stop: Option<(Tid, u8)>,
    /// The command line of the last program started (what `R` starts again).
    pub last_argv: Vec<OsString>,
    /// Open host-I/O files.
    pub files: HostFiles,
    /// `monitor exit` was given.
    pub exit_requested: bool,
    /// Log every packet (`--remote-debug`, `monitor set remote-debug 1`).
    pub remote_debug: bool,
    /// `--disable-packet=`.
    pub disabled: Disabled,
    /// What the current connection negotiated.
    pub peer: Peer,
    /// Forked children reported to gdb and not detached yet: stopped, addressed by gdb as
    /// `pCHILD.TID` (to take its breakpoints out) before its `D;CHILD`.
    pub forks: std::collections::BTreeSet<Pid>,
    /// Non-stop stop notifications not yet fetched with `vStopped` (empty in all-stop).
    pub stops: super::notify::StopQueue,
    /// The rest of a `qfThreadInfo` answer (`qsThreadInfo` sends it).
    pub(super) thread_list_done: bool,
}

impl Server {
    /// A server with nothing traced yet.
    pub fn new(mut dbg: Debugger, cfg: ServeConfig) -> Server {
        dbg.set_pass_on_detach(crate::front::gdb_common::signals::passes_on_detach);
        let bps = GdbBreakpoints::new(&mut dbg);
        Server {
            dbg,
            pid: None,
            cfg,
            bps,
            running: false,
            last_stop: None,
            last_argv: Vec::new(),
            files: HostFiles::default(),
            exit_requested: false,
            remote_debug: false,
            disabled: Disabled::default(),
            peer: Peer::default(),
            stops: Default::default(),
            forks: Default::default(),
            thread_list_done: false,
        }
    }

    /// Make `pid` the process gdb debugs (or none); its main thread is the current thread, as
    /// after gdbserver's run or attach.
    pub fn set_pid(&mut self, pid: Option<Pid>) {
        self.pid = pid;
        self.last_stop = pid.map(|p| (Tid(p.0), 5));
        self.peer.g_thread = None;
        self.peer.c_thread = None;
    }

    /// The process `m`, `Z` and friends act on: the current thread's (a forked child's when
    /// gdb selected one of its threads), else the process gdb debugs.
    pub fn proc_pid(&self) -> Option<Pid> {
        let pid = self.pid?;
        Some(self.current_thread().and_then(|t| self.dbg.pid_of(t)).filter(|p| self.forks.contains(p)).unwrap_or(pid))
    }

    /// The session outlives the process (`--multi` or `!`).
    pub fn extended(&self) -> bool {
        self.cfg.multi || self.peer.extended
    }

    /// A thread id as this connection writes them.
    pub fn thread_id(&self, pid: Pid, tid: Tid) -> ThreadId {
        let t = ThreadId { pid: None, tid: Id::Is(tid.0.max(0) as u32) };
        if self.peer.multiprocess {
            ThreadId::of(pid, tid).unwrap_or(t)
        } else {
            t
        }
    }

    /// The thread `id` names, of the process gdb debugs or of a forked child it was told of,
    /// `Any` choosing the current thread (None: no such).
    pub fn resolve_thread(&self, id: &ThreadId) -> Option<Tid> {
        let mut pid = self.pid?;
        if let Some(Id::Is(p)) = id.pid {
            match i32::try_from(p).ok().map(Pid) {
                Some(p) if p == pid => {}
                Some(p) if self.forks.contains(&p) => pid = p,
                _ => return None,
            }
        }
        if let (None, Some(t)) = (id.pid, id.thread()) {
            if let Some(p) = self.dbg.pid_of(t).filter(|p| self.forks.contains(p)) {
                pid = p;
            }
        }
        let threads = self.dbg.threads(pid);
        match id.tid {
            Id::Is(_) => id.thread().filter(|t| threads.contains(t)),
            Id::Any | Id::All => self.current_thread().or_else(|| threads.first().copied()),
        }
    }

    /// The current thread: `Hg`'s, else the last stopped one, else the first; it must still
    /// exist.
    pub fn current_thread(&self) -> Option<Tid> {
        let pid = self.pid?;
        // A forked child gdb selected (to take its breakpoints out before detaching it).
        if let Some(t) = self.peer.g_thread.filter(|t| self.dbg.pid_of(*t).is_some_and(|p| self.forks.contains(&p))) {
            return Some(t);
        }
        let threads = self.dbg.threads(pid);
        let pick = self.peer.g_thread.or(self.last_stop.map(|(t, _)| t));
        pick.filter(|t| threads.contains(t)).or_else(|| threads.first().copied())
    }

    /// Answer one decoded packet.
    pub fn handle(&mut self, conn: &mut Conn, packet: &[u8]) -> std::io::Result<Reply> {
        if self.remote_debug || conn.remote_debug {
            eprintln!("[remote] getpkt: \"{}\"", String::from_utf8_lossy(packet));
        }
        log::debug!("request {:?}", String::from_utf8_lossy(&packet[..packet.len().min(200)]));
        let req = match crate::rsp::parse(packet) {
            Ok(r) => r,
            Err(e) => {
                log::debug!("malformed request {:?}: {e}", String::from_utf8_lossy(packet));
                return Ok(malformed(packet, &e));
            }
        };
        let d = self.disabled;
        Ok(match req {
            Request::VContSupported | Request::VCont(_) if d.vcont => Reply::Send(reply::empty()),
            Request::CurrentThread if d.qc => Reply::Send(reply::empty()),
            Request::ThreadInfoFirst | Request::ThreadInfoNext if d.qfthreadinfo => Reply::Send(reply::empty()),
            // Set-up and modes.
            Request::Supported(features) => self.supported(&features),
            Request::StartNoAckMode => {
                conn.send(&reply::ok())?;
                conn.set_no_ack();
                Reply::Nothing
            }
            Request::ExtendedMode => {
                self.peer.extended = true;
                Reply::ok()
            }
            Request::MustReplyEmpty => Reply::Send(reply::empty()),
            Request::NonStop(on) => self.non_stop(on),
            Request::PassSignals(list) => self.pass_signals(&list),
            Request::ProgramSignals(_) => Reply::ok(),
            Request::CatchSyscalls(c) => self.catch_syscalls(c),
            Request::DisableRandomization(_)
            | Request::EnvironmentSet(_)
            | Request::EnvironmentUnset(_)
            | Request::EnvironmentReset
            | Request::SetWorkingDir(_)
            | Request::StartupWithShell(_) => self.configure(req),
            // Processes.
            Request::Run { program, args } => self.run(program, args),
            Request::Attach(pid) => self.attach(pid),
            Request::Kill => self.kill_legacy(),
            Request::KillProcess(pid) => self.kill_process(pid),
            Request::Detach(pid) => self.detach(pid),
            Request::Restart => self.restart(),
            // Stops and resumption.
            Request::HaltReason => self.halt_reason(),
            Request::Continue { addr } => self.legacy_resume(conn, false, 0, addr)?,
            Request::ContinueWithSignal { signal, addr } => self.legacy_resume(conn, false, signal, addr)?,
            Request::Step { addr } => self.legacy_resume(conn, true, 0, addr)?,
            Request::StepWithSignal { signal, addr } => self.legacy_resume(conn, true, signal, addr)?,
            Request::VContSupported => Reply::Send(reply::vcont_supported()),
            Request::VCont(actions) => self.vcont(conn, &actions)?,
            Request::CtrlC => self.ctrl_c(),
            Request::Stopped if self.peer.non_stop => Reply::Send(self.stops.stopped()),
            Request::Stopped => Reply::Send(reply::empty()),
            // Threads.
            Request::SetThread { op, thread } => self.set_thread(op, &thread),
            Request::ThreadAlive(t) => match self.resolve_thread(&t) {
                Some(_) if t.thread().is_some() => Reply::ok(),
                _ => Reply::err(),
            },
            Request::CurrentThread => self.current_thread_reply(),
            Request::ThreadInfoFirst => self.thread_info(true),
            Request::ThreadInfoNext => self.thread_info(false),
            Request::Attached(pid) => self.attached(pid),
            // Registers and memory.
            Request::ReadRegisters => self.read_registers(),
            Request::WriteRegisters(bytes) => self.write_registers(&bytes),
            Request::ReadRegister(n) => self.read_register(n),
            Request::WriteRegister { reg, value } => self.write_register(reg, &value),
            Request::ReadMemory { addr, len } => self.read_memory(addr, len, false),
            Request::ReadMemoryBinary { addr, len } => self.read_memory(addr, len, true),
            Request::WriteMemory { addr, data } => self.write_memory(addr, &data),
            Request::WriteMemoryBinary { addr, data } => self.write_memory(addr, data),
            Request::SearchMemory { addr, len, pattern } => self.search_memory(addr, len, pattern),
            Request::Crc { addr, len } => self.crc(addr, len),
            // Breakpoints.
            Request::InsertPoint(p) => self.insert_point(&p),
            Request::RemovePoint(p) => self.remove_point(&p),
            // Queries.
            Request::Xfer(x) => self.xfer(&x),
            Request::Symbol(_) => Reply::ok(),
            Request::TlsAddress { thread, offset, lm } => self.tls_address(&thread, offset, lm),
            Request::Monitor(cmd) => self.monitor(conn, &cmd)?,
            Request::File(f) => self.host_io(f),
            _ => Reply::Send(reply::empty()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(p: &[u8]) -> Vec<u8> {
        let e = crate::rsp::parse(p).expect_err("malformed");
        match malformed(p, &e) {
            Reply::Send(r) => r,
            _ => panic!("no reply"),
        }
    }

    #[test]
    fn malformed_packets_get_gdbservers_answers() {
        assert_eq!(answer(b"Z9,0,0"), b"");
        assert_eq!(answer(b"z9,0,0"), b"");
        assert_eq!(answer(b"vFile:open:zz,0,0"), b"F-1,16");
        assert_eq!(answer(b"mzz,4"), b"E01");
        assert_eq!(answer(b"Hgzz"), b"E01");
    }
}
