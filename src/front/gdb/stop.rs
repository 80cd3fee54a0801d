//! Stop replies from the core's stop events: `T` with `thread:` and the reason (`swbreak:`,
//! `hwbreak:`, `watch:`, `syscall_entry:`, `syscall_return:`), `W`/`X` with `;process:PID`
//! under multiprocess, as GNU gdbserver writes them; `--disable-packet=T`/`Tthread` give `S`
//! replies or drop the `thread:` field. Stops from a resume carry rbp, rsp and rip ahead
//! (`06:..;07:..;10:..;`), as gdbserver's do.
//!
//! Like gdbserver on x86, every data watchpoint is reported as `watch:ADDR`: the debug
//! registers watch reads and writes with one condition, so gdb decides from the address and
//! the value which of its watchpoints (watch, rwatch, awatch) triggered.
//!
//! Forks and execs, when gdb offered `fork-events+`/`vfork-events+`/`exec-events+`:
//! `StopKind::Forked { child, vfork }` is `fork:`/`vfork:` with the child's `pPID.TID` (the
//! child is kept stopped, in [`Server::forks`], until gdb detaches it), `VforkDone` is
//! `vforkdone:`, `Exec` is `exec:HEXPATH` of the new program.

use super::session::Server;
use crate::debugger::{StopEvent, StopKind};
use crate::front::gdb_common::signals::to_gdb;
use crate::rsp::reply::{StopReason, StopReply, Stopped};
use crate::rsp::ThreadId;
use crate::types::{Pid, Tid};
use xol_arch::regs::{RIP_REGNUM, RSP_REGNUM};

impl Server {
    /// The stop reply for a stop of the process gdb debugs; it becomes the last stop, and its
    /// thread the current one (as gdbserver sets its general thread).
    pub(super) fn stop_reply(&mut self, ev: StopEvent) -> Vec<u8> {
        let pid = self.peer.multiprocess.then_some(ev.pid.0 as u32);
        let (sig, reason) = match ev.kind {
            StopKind::Exited(code) => {
                eprintln!("\nChild exited with status {code}");
                self.set_pid(None);
                return StopReply::Exited { status: code as u8, pid }.encode();
            }
            StopKind::Killed(sig) => {
                eprintln!("\nChild terminated with signal = {sig:#x}");
                self.set_pid(None);
                return StopReply::Terminated { signal: to_gdb(sig), pid }.encode();
            }
            StopKind::Breakpoint => (5, self.peer.swbreak.then_some(StopReason::SwBreak)),
            StopKind::HwBreak => (5, self.peer.hwbreak.then_some(StopReason::HwBreak)),
            StopKind::Step => (5, None),
            StopKind::Signal(s) => (to_gdb(s), None),
            StopKind::SyscallEntry(n) => (5, Some(StopReason::SyscallEntry(n))),
            StopKind::SyscallExit(n) => (5, Some(StopReason::SyscallReturn(n))),
            StopKind::Watch { addr, .. } => (5, Some(StopReason::Watch(addr))),
            // `vCont;t` (non-stop): gdb's signal 0.
            StopKind::Stopped => (0, None),
            // The child waits, stopped, for gdb to take its breakpoints out and detach it.
            StopKind::Forked { child, vfork } => {
                self.forks.insert(child);
                let id = ThreadId::of(child, Tid(child.0)).unwrap_or(ThreadId::ANY);
                (5, Some(if vfork { StopReason::VFork(id) } else { StopReason::Fork(id) }))
            }
            StopKind::VforkDone => (5, Some(StopReason::VForkDone)),
            StopKind::Exec => {
                let path = self.dbg.exe(ev.pid).map(|p| p.into_os_string().into_encoded_bytes()).unwrap_or_default();
                (5, Some(StopReason::Exec(path)))
            }
            // Thread events are not asked for (`Debugger::set_thread_events` stays off): were
            // one to come, gdb sees a SIGTRAP, as from the gdbstub front-end.
            StopKind::ThreadCreated | StopKind::ThreadExited(_) => (5, None),
        };
        self.last_stop = Some((ev.tid, sig));
        self.peer.g_thread = Some(ev.tid);
        let mut reply = self.stopped(ev.pid, ev.tid, sig, reason);
        if let StopReply::Stopped(s) = &mut reply {
            s.registers = self.expedited(ev.tid);
        }
        reply.encode()
    }

    /// The registers gdbserver sends ahead in a stop reply (rbp, rsp, rip), so gdb needs no
    /// `g` to find the frame of a breakpoint hit it only counts or checks a condition at.
    fn expedited(&self, tid: Tid) -> Vec<(u32, Vec<u8>)> {
        let Ok(rf) = self.dbg.read_registers(tid) else { return Vec::new() };
        [6usize, RSP_REGNUM, RIP_REGNUM]
            .into_iter()
            .filter_map(|n| {
                let mut v = Vec::new();
                rf.read_reg(n, &mut v).map(|()| (n as u32, v))
            })
            .collect()
    }

    /// A `T` reply (or `S` with `--disable-packet=T`).
    pub(super) fn signal_reply(&self, pid: Pid, tid: Tid, signal: u8, reason: Option<StopReason>) -> Vec<u8> {
        self.stopped(pid, tid, signal, reason).encode()
    }

    fn stopped(&self, pid: Pid, tid: Tid, signal: u8, reason: Option<StopReason>) -> StopReply {
        if self.disabled.t {
            return StopReply::Signal(signal);
        }
        let thread = (!self.disabled.tthread).then(|| self.thread_id(pid, tid));
        StopReply::Stopped(Stopped { signal, thread, reason, ..Stopped::default() })
    }

    /// A stop of a traced process gdb does not debug here (a child xol follows on its own):
    /// not gdb's to see. It goes on at once, with the signal it stopped with.
    pub(super) fn foreign_stop(&mut self, ev: StopEvent) {
        if self.forks.contains(&ev.pid) {
            // A forked child gdb was told of stays stopped until gdb detaches it.
            log::debug!("stop of forked child {} kept for gdb: {:?}", ev.pid, ev.kind);
            return;
        }
        let sig = match ev.kind {
            StopKind::Exited(_) | StopKind::Killed(_) => return,
            StopKind::Signal(s) => s,
            _ => 0,
        };
        log::debug!("stop of process {} (not gdb's): {:?}; resuming it", ev.pid, ev.kind);
        let act = crate::debugger::Action { sig, ..crate::debugger::Action::CONTINUE };
        if let Err(e) = self.dbg.resume(ev.pid, &[(ev.tid, act)], Some(crate::debugger::Action::CONTINUE)) {
            log::debug!("resuming process {}: {e}", ev.pid);
        }
    }
}
