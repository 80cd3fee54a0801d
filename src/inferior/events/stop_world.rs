//! Stopping the world: interrupt every running thread of a process and wait until each has
//! stopped. Events met on the way are kept pending (breakpoint hits are cancelled: the thread
//! hits the breakpoint again when resumed); a process exit is reported by the next wait.

use crate::inferior::{Inferior, Result, StopKind};
use crate::sys::wait::{self, Stop};
use crate::sys::{self, ptrace, RawTid};
use crate::types::Pid;

impl Inferior {
    /// Stop every running thread of `pid` and wait until each has stopped. Events that arrive
    /// meanwhile become pending (breakpoint hits are cancelled: ip rewound, hit again on resume).
    pub fn stop_all(&mut self, pid: Pid) -> Result<()> {
        let Some(p) = self.procs.get_mut(&pid) else { return Ok(()) };
        if p.threads.values().any(|t| !t.is_stopped() && !t.expect_stop) {
            self.step_stats.world_stops += 1;
        }
        for (tid, t) in p.threads.iter_mut() {
            if !t.is_stopped() && !t.expect_stop {
                match ptrace::interrupt(*tid) {
                    Ok(()) => t.expect_stop = true,
                    Err(e) if e.is_gone() => {}
                    Err(e) => return Err(e.into()),
                }
            }
        }
        loop {
            let Some(p) = self.procs.get(&pid) else { return Ok(()) };
            if p.threads.values().all(|t| t.is_stopped()) {
                return Ok(());
            }
            if let Some((wtid, st)) = wait::wait_any_nohang()? {
                self.handle_stop_while_stopping(wtid, st)?;
                continue;
            }
            // Nothing ready: wait for SIGCHLD. Only if none comes, look for threads that exited
            // and will never report a stop (a zombie leader is not reported until the whole
            // group is gone), and count them as stopped. The usual path reads no /proc file.
            if sys::signals::poll(None, 50)?.child {
                continue;
            }
            let Some(p) = self.procs.get_mut(&pid) else { return Ok(()) };
            let unstopped: Vec<RawTid> = p.threads.iter().filter(|(_, t)| !t.is_stopped()).map(|(t, _)| *t).collect();
            for tid in unstopped {
                if sys::proc::is_zombie(pid.0, tid) {
                    if tid == pid.0 {
                        if let Some(t) = p.threads.get_mut(&tid) {
                            t.stop();
                            t.expect_stop = false;
                        }
                    } else {
                        p.threads.remove(&tid);
                    }
                } else if let Some(t) = p.threads.get_mut(&tid) {
                    // Still running after 50 ms: its interrupt may have been consumed by another
                    // ptrace stop it took first (the kernel drops a pending PTRACE_INTERRUPT at
                    // any trap), e.g. a clone event handled since. Ask again; interrupts do not
                    // pile up, and a stale one is absorbed later.
                    match ptrace::interrupt(tid) {
                        Ok(()) => t.expect_stop = true,
                        Err(e) if e.is_gone() => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }

    pub(super) fn handle_stop_while_stopping(&mut self, wtid: RawTid, st: Stop) -> Result<()> {
        if let Some(ev) = self.handle_status(wtid, st, true)? {
            match ev.kind {
                StopKind::Exited(_) | StopKind::Killed(_) | StopKind::ThreadExited(_) => {
                    // The process (or, with thread events, the thread) is gone: report its end
                    // on the next wait (it has no thread left to hold it pending).
                    self.reports.push_back(ev);
                }
                StopKind::Breakpoint => {
                    // Cancelled: the thread hits it again when resumed.
                }
                kind => {
                    if let Some(t) = self.procs.get_mut(&ev.pid).and_then(|p| p.threads.get_mut(&ev.tid.0)) {
                        t.set_pending(kind);
                    }
                }
            }
        }
        Ok(())
    }
}
