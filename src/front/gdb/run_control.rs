//! Run control: `vCont` (`c`, `C`, `s`, `S`, `r`, `t`), the legacy `c`/`C`/`s`/`S` (which act
//! on the `Hc` thread, or on all threads, as gdbserver), `vCtrlC`, `?`, and waiting for the
//! stop while gdb may send Ctrl-C (0x03, which interrupts the process).
//!
//! All-stop: a resume runs until one stop of the process gdb debugs, which is the reply. Stops
//! of other traced processes (children xol follows for per-file probes) are not gdb's: they
//! are resumed at once. Hook for non-stop (`QNonStop:1`): the stop would be queued as a `%Stop`
//! notification and the resume answered `OK` at once.

use super::conn::Conn;
use super::session::{Reply, Server};
use crate::debugger::{Action, WaitOutcome};
use crate::front::gdb_common::signals::from_gdb;
use crate::front::gdb_common::SessionEnd;
use crate::rsp::reply::{self, StopReply};
use crate::rsp::request::{Resume, VContAction};
use crate::rsp::Id;
use crate::types::Tid;
use std::io;

fn action(r: Resume) -> Option<Action> {
    Some(match r {
        Resume::Continue => Action::CONTINUE,
        Resume::ContinueWithSignal(s) => Action { sig: from_gdb(s), ..Action::CONTINUE },
        Resume::Step => Action::step(0),
        Resume::StepWithSignal(s) => Action::step(from_gdb(s)),
        Resume::RangeStep { start, end } => Action { range: Some((start, end)), ..Action::step(0) },
        Resume::Stop => return None,
    })
}

impl Server {
    /// `vCont;ACTION[:thread]...`: the leftmost action naming a thread applies to it; an action
    /// without a thread (or `-1`, or `pPID.-1` of our process) is the default for the others.
    pub(super) fn vcont(&mut self, conn: &mut Conn, acts: &[VContAction]) -> io::Result<Reply> {
        let Some(pid) = self.pid else { return Ok(Reply::err()) };
        let threads = self.dbg.threads(pid);
        let mut explicit: Vec<(Tid, Action)> = Vec::new();
        let mut default: Option<Action> = None;
        let mut default_set = false;
        for a in acts {
            let whole = match a.thread {
                None => true,
                Some(t) => {
                    if let Some(Id::Is(p)) = t.pid {
                        if i64::from(p) != i64::from(pid.0) {
                            // An action for a process gdb does not debug here would resume
                            // nothing and never stop.
                            return Ok(Reply::err());
                        }
                    }
                    matches!(t.tid, Id::All | Id::Any)
                }
            };
            if whole {
                if !default_set {
                    default = action(a.resume);
                    default_set = true;
                }
                continue;
            }
            let Some(tid) = a.thread.and_then(|t| t.thread()).filter(|t| threads.contains(t)) else {
                return Ok(Reply::err());
            };
            if explicit.iter().any(|(t, _)| *t == tid) {
                continue;
            }
            if let Some(act) = action(a.resume) {
                explicit.push((tid, act));
            }
        }
        if explicit.is_empty() && default.is_none() {
            // Only `t` actions: in all-stop everything is stopped already.
            return Ok(Reply::ok());
        }
        self.resume_and_wait(conn, &explicit, default)
    }

    /// `c`, `C`, `s`, `S`: step or signal the current thread, resume the others unless `Hc`
    /// named one thread (which alone then runs).
    pub(super) fn legacy_resume(
        &mut self,
        conn: &mut Conn,
        step: bool,
        sig: u8,
        addr: Option<u64>,
    ) -> io::Result<Reply> {
        let Some(cur) = self.current_thread() else { return Ok(Reply::err()) };
        let act = Action { step, sig: from_gdb(sig), range: None };
        if let Some(a) = addr {
            let set = self.dbg.read_registers(cur).and_then(|mut rf| {
                rf.set_pc(a);
                self.dbg.write_registers(cur, &rf)
            });
            if set.is_err() {
                return Ok(Reply::err());
            }
        }
        let (explicit, default) = match self.peer.c_thread {
            Some(t) => (vec![(t, act)], None),
            None if !step && sig == 0 => (vec![], Some(Action::CONTINUE)),
            None => (vec![(cur, act)], Some(Action::CONTINUE)),
        };
        self.resume_and_wait(conn, &explicit, default)
    }

    fn resume_and_wait(
        &mut self,
        conn: &mut Conn,
        explicit: &[(Tid, Action)],
        default: Option<Action>,
    ) -> io::Result<Reply> {
        let Some(pid) = self.pid else { return Ok(Reply::err()) };
        let continues = default.is_some_and(|a| !a.step) || explicit.iter().any(|(_, a)| !a.step);
        if let Err(e) = self.bps.before_resume(&mut self.dbg, continues) {
            log::debug!("dropping removed per-file breakpoints: {e}");
        }
        if let Err(e) = self.dbg.resume(pid, explicit, default) {
            log::debug!("resume failed: {e}");
            return Ok(Reply::err());
        }
        self.running = true;
        let stop = self.wait_for_stop(conn)?;
        Ok(self.after_stop(stop))
    }

    /// After a process exit in plain remote mode the session is over, as with gdbserver.
    pub(super) fn after_stop(&mut self, stop: Vec<u8>) -> Reply {
        if self.pid.is_none() && !self.extended() {
            Reply::End(Some(stop), SessionEnd::Done)
        } else {
            Reply::Send(stop)
        }
    }

    /// Wait until the process gdb debugs stops; Ctrl-C from gdb interrupts it. Returns the
    /// stop reply. An error: gdb went away or xol must terminate (`Interrupted`).
    pub(super) fn wait_for_stop(&mut self, conn: &mut Conn) -> io::Result<Vec<u8>> {
        loop {
            if conn.take_interrupts() > 0 {
                if let Some(pid) = self.pid {
                    if let Err(e) = self.dbg.interrupt(pid) {
                        log::warn!("interrupting process {pid}: {e}");
                    }
                }
            }
            let outcome = self.dbg.wait(Some(conn.read_fd()));
            match outcome {
                Ok(WaitOutcome::Stopped(ev)) => {
                    if Some(ev.pid) == self.pid {
                        self.running = false;
                        return Ok(self.stop_reply(ev));
                    }
                    self.foreign_stop(ev);
                }
                Ok(WaitOutcome::Input) => conn.pump()?,
                Ok(WaitOutcome::Terminate) => {
                    return Err(io::Error::new(io::ErrorKind::Interrupted, "xol was asked to terminate"))
                }
                Ok(WaitOutcome::Timeout) | Ok(WaitOutcome::Notice(_)) => {}
                Ok(WaitOutcome::NoProcesses) => {
                    self.running = false;
                    let pid = self.pid.map(|p| p.0 as u32).filter(|_| self.peer.multiprocess);
                    self.set_pid(None);
                    return Ok(StopReply::Exited { status: 0, pid }.encode());
                }
                Err(e) => {
                    log::warn!("waiting for the program: {e}");
                    self.running = false;
                    return Ok(reply::error(1));
                }
            }
        }
    }

    /// `vCtrlC`: interrupt the process (non-stop's Ctrl-C); in all-stop nothing runs while a
    /// request is served, so there is nothing to do but agree.
    pub(super) fn ctrl_c(&mut self) -> Reply {
        match self.pid {
            Some(pid) if self.running => Reply::from(self.dbg.interrupt(pid)),
            Some(_) => Reply::ok(),
            None => Reply::err(),
        }
    }

    /// `?`: the last stop, of the thread that stopped, which becomes the current thread.
    pub(super) fn halt_reason(&mut self) -> Reply {
        let (Some(pid), Some((tid, sig))) = (self.pid, self.last_stop) else {
            return Reply::Send(b"W00".to_vec());
        };
        let tid = if self.dbg.threads(pid).contains(&tid) {
            tid
        } else {
            match self.dbg.threads(pid).first() {
                Some(t) => *t,
                None => return Reply::Send(b"W00".to_vec()),
            }
        };
        self.peer.g_thread = Some(tid);
        self.peer.c_thread = None;
        Reply::Send(self.signal_reply(pid, tid, sig, None))
    }
}
