//! Processes and extended-remote mode: `vRun`, `vAttach`, `k`, `vKill;PID`, `D[;PID]`, `R`,
//! `!` (in the dispatch), and the launch settings `QStartupWithShell`, `QEnvironment*`,
//! `QSetWorkingDir`, `QDisableRandomization`.
//!
//! As gdbserver: in plain remote mode a kill or detach ends the session after its reply; in
//! extended mode (`--multi` or `!`) the session outlives the process. `vRun` and `vAttach` are
//! answered with the new process's first stop (`T05` of its main thread). A request naming a
//! process gdb does not debug here is `E01`.

use super::session::{Reply, Server};
use crate::front::gdb_common::SessionEnd;
use crate::rsp::request::Request;
use crate::types::{Pid, Tid};
use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

impl Server {
    /// `vRun;PROGRAM[;ARG]...`: an empty program means the one on xol's command line (with its
    /// arguments when none are given).
    pub(super) fn run(&mut self, program: Vec<u8>, args: Vec<Vec<u8>>) -> Reply {
        let mut argv: Vec<OsString> = Vec::new();
        let default_args = program.is_empty() && args.is_empty();
        if program.is_empty() {
            match self.cfg.program.first() {
                Some(p) => argv.push(p.clone()),
                None => {
                    eprintln!("xol: no program to run: give one to `run` or on xol's command line");
                    return Reply::err();
                }
            }
        } else {
            argv.push(OsString::from_vec(program));
        }
        if default_args {
            argv.extend(self.cfg.program.iter().skip(1).cloned());
        } else {
            argv.extend(args.into_iter().map(OsString::from_vec));
        }
        if let Some(old) = self.pid {
            self.set_pid(None);
            let _ = self.dbg.kill(old);
        }
        self.launch(argv)
    }

    /// Start `argv` with gdb's settings; the reply is its first stop.
    fn launch(&mut self, argv: Vec<OsString>) -> Reply {
        let spec = self.cfg.launch(argv);
        match self.dbg.launch(&spec) {
            Ok(pid) => {
                eprintln!("Process {} created; pid = {pid}", spec.argv[0].to_string_lossy());
                self.last_argv = spec.argv.clone();
                self.set_pid(Some(pid));
                Reply::Send(self.signal_reply(pid, Tid(pid.0), 5, None))
            }
            Err(e) => {
                eprintln!("{e}");
                Reply::err()
            }
        }
    }

    /// `vAttach;PID`.
    pub(super) fn attach(&mut self, pid: u32) -> Reply {
        let p = Pid(pid as i32);
        match self.dbg.attach(p) {
            Ok(()) => {
                eprintln!("Attached; pid = {p}");
                self.set_pid(Some(p));
                Reply::Send(self.signal_reply(p, Tid(p.0), 5, None))
            }
            Err(e) => {
                eprintln!("{e}");
                Reply::err()
            }
        }
    }

    fn kill_current(&mut self) {
        if let Some(p) = self.pid {
            self.set_pid(None);
            if let Err(e) = self.dbg.kill(p) {
                log::debug!("killing process {p}: {e}");
            }
        }
    }

    /// `k`: no reply; the end of a plain remote session.
    pub(super) fn kill_legacy(&mut self) -> Reply {
        self.kill_current();
        if self.extended() {
            Reply::Nothing
        } else {
            Reply::End(None, SessionEnd::Done)
        }
    }

    /// `vKill;PID`.
    pub(super) fn kill_process(&mut self, pid: u32) -> Reply {
        if let Some(child) = i32::try_from(pid).ok().map(Pid).filter(|p| self.forks.contains(p)) {
            self.forks.remove(&child);
            return Reply::from(self.dbg.kill(child));
        }
        if self.pid.map(|p| p.0 as u32) != Some(pid) {
            return Reply::err();
        }
        self.kill_current();
        if self.extended() {
            Reply::ok()
        } else {
            Reply::End(Some(crate::rsp::reply::ok()), SessionEnd::Done)
        }
    }

    /// `D` / `D;PID`: breakpoint bytes restored, the process runs on.
    pub(super) fn detach(&mut self, pid: Option<u32>) -> Reply {
        // A forked child gdb does not follow (`detach-on-fork on`): it runs on, the session
        // goes on with the parent.
        if let Some(child) = pid.and_then(|p| i32::try_from(p).ok()).map(Pid).filter(|p| self.forks.contains(p)) {
            self.forks.remove(&child);
            if self.peer.g_thread.and_then(|t| self.dbg.pid_of(t)) == Some(child) {
                self.peer.g_thread = None;
            }
            return Reply::from(self.dbg.detach(child));
        }
        let Some(cur) = self.pid else { return Reply::err() };
        if pid.is_some_and(|p| p != cur.0 as u32) {
            return Reply::err();
        }
        self.set_pid(None);
        match self.dbg.detach(cur) {
            Ok(()) => eprintln!("Detaching from process {cur}"),
            Err(e) => {
                eprintln!("xol: detaching from process {cur}: {e}");
                return Reply::err();
            }
        }
        // `follow-fork-mode child`: gdb detached the parent and goes on with the child it was
        // told of last.
        if let Some(child) = self.forks.pop_last() {
            self.set_pid(Some(child));
            return Reply::ok();
        }
        if self.extended() {
            Reply::ok()
        } else {
            Reply::End(Some(crate::rsp::reply::ok()), SessionEnd::Done)
        }
    }

    /// `R`: start the last program again (no reply).
    pub(super) fn restart(&mut self) -> Reply {
        self.kill_current();
        let argv = if self.last_argv.is_empty() { self.cfg.program.clone() } else { self.last_argv.clone() };
        if argv.is_empty() {
            log::warn!("no program to restart: none was run yet");
            return Reply::Nothing;
        }
        if let Reply::Send(r) = self.launch(argv) {
            log::debug!("restarted: {}", String::from_utf8_lossy(&r));
        }
        Reply::Nothing
    }

    /// The launch settings for the next `vRun`.
    pub(super) fn configure(&mut self, req: Request<'_>) -> Reply {
        let c = &mut self.cfg;
        match req {
            Request::DisableRandomization(disable) => c.aslr = !disable,
            Request::EnvironmentSet(kv) => {
                let (k, v) = match kv.iter().position(|b| *b == b'=') {
                    Some(i) => (kv[..i].to_vec(), kv[i + 1..].to_vec()),
                    None => (kv, Vec::new()),
                };
                c.env.insert(OsString::from_vec(k), Some(OsString::from_vec(v)));
            }
            Request::EnvironmentUnset(k) => {
                c.env.insert(OsString::from_vec(k), None);
            }
            Request::EnvironmentReset => {
                c.env.clear();
                c.env_reset = false;
            }
            Request::SetWorkingDir(dir) => {
                c.cwd = dir.filter(|d| !d.is_empty()).map(|d| std::path::PathBuf::from(OsString::from_vec(d)));
            }
            _ => {}
        }
        Reply::ok()
    }
}
