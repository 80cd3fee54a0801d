//! `Z`/`z`: software breakpoints through gdb's breakpoint policy
//! ([`crate::front::gdb_common::breakpoints`], shared with the gdbstub front-end: per-process
//! or per-file, parked while gdb steps over them), hardware breakpoints and write/access
//! watchpoints in the debug registers.
//!
//! As gdbserver on x86: `Z3` (read watchpoint) is not supported (the empty reply), since the
//! debug registers cannot watch reads alone and gdb then emulates `rwatch` with an access
//! watchpoint and its own value check; a `Z1`/`Z2`/`Z4` the debug registers cannot hold is
//! `E01`, and so is removing a point that was never inserted. Target-side conditions (`;X...`
//! in [`Point::conditions`]) are handed to the core, which evaluates the agent expressions on
//! the trap path (`Debugger::set_breakpoint_conditions`); each `Z0` replaces the conditions of
//! the breakpoint, as gdb expects. `ConditionalBreakpoints+` is not advertised yet (see
//! `query.rs`), so gdb sends conditions only when a client asks for them itself.

use super::session::{Reply, Server};
use crate::debugger::HwKind;
use crate::rsp::reply;
use crate::rsp::request::{Point, PointType};
use crate::types::{Owner, Pid, VirtAddr};

impl Server {
    /// `Z0`, with gdb's target-side conditions (`;X...`): the core evaluates them on the trap
    /// path and reports the hit only when one holds. A per-file breakpoint (a probe) takes no
    /// conditions: `E01`, so gdb does not count on an evaluation that would not happen.
    fn insert_software(&mut self, pid: Pid, addr: VirtAddr, conditions: &[Vec<u8>]) -> crate::debugger::Result<()> {
        let owner = Owner::Client(self.bps.client);
        let held = |dbg: &crate::debugger::Debugger| {
            dbg.breakpoints(pid).iter().any(|(a, o)| *a == addr && o.contains(&owner))
        };
        // With target-side conditions gdb sends `Z0` again for a breakpoint it has inserted,
        // to replace its conditions: gdb's one hold stays one hold (its one `z0` must take
        // the breakpoint out).
        if !held(&self.dbg) {
            self.bps.insert(&mut self.dbg, pid, addr)?;
        }
        let ours = held(&self.dbg);
        if !ours {
            if conditions.is_empty() {
                return Ok(());
            }
            let _ = self.bps.remove(&mut self.dbg, pid, addr);
            return Err(crate::debugger::Error::Location(format!(
                "{addr}: a per-file breakpoint takes no target-side condition"
            )));
        }
        self.dbg.set_breakpoint_conditions(pid, addr, owner, conditions)
    }

    /// `Z`.
    pub(super) fn insert_point(&mut self, p: &Point) -> Reply {
        let Some(pid) = self.proc_pid() else { return Reply::err() };
        let addr = VirtAddr(p.addr);
        let r = match p.ty {
            PointType::Software => self.insert_software(pid, addr, &p.conditions),
            PointType::Hardware => self.dbg.insert_hw(pid, addr, 1, HwKind::Exec),
            PointType::WriteWatch => self.dbg.insert_hw(pid, addr, p.kind, HwKind::Write),
            PointType::AccessWatch => self.dbg.insert_hw(pid, addr, p.kind, HwKind::Access),
            PointType::ReadWatch => return Reply::Send(reply::empty()),
        };
        Reply::from(r)
    }

    /// `z`.
    pub(super) fn remove_point(&mut self, p: &Point) -> Reply {
        let Some(pid) = self.proc_pid() else { return Reply::err() };
        let addr = VirtAddr(p.addr);
        let r = match p.ty {
            PointType::Software => self.bps.remove(&mut self.dbg, pid, addr),
            PointType::Hardware => self.dbg.remove_hw(pid, addr, 1, HwKind::Exec),
            PointType::WriteWatch => self.dbg.remove_hw(pid, addr, p.kind, HwKind::Write),
            PointType::AccessWatch => self.dbg.remove_hw(pid, addr, p.kind, HwKind::Access),
            PointType::ReadWatch => return Reply::Send(reply::empty()),
        };
        // gdbserver: removing what was never inserted is an error.
        match r {
            Ok(false) => Reply::err(),
            r => Reply::from(r),
        }
    }
}
