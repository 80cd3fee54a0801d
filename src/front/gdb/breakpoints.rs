//! `Z`/`z`: software breakpoints through gdb's breakpoint policy
//! ([`crate::front::gdb_common::breakpoints`], shared with the gdbstub front-end: per-process
//! or per-file, parked while gdb steps over them), hardware breakpoints and write/access
//! watchpoints in the debug registers.
//!
//! As gdbserver on x86: `Z3` (read watchpoint) is not supported (the empty reply), since the
//! debug registers cannot watch reads alone and gdb then emulates `rwatch` with an access
//! watchpoint and its own value check; a `Z1`/`Z2`/`Z4` the debug registers cannot hold is
//! `E01`, and so is removing a point that was never inserted. Hook: target-side conditions (`;X...` in [`Point::conditions`]) are not offered
//! (`ConditionalBreakpoints` is not in `qSupported`) until the agent-expression evaluator
//! can run them; gdb then evaluates its conditions itself.

use super::session::{Reply, Server};
use crate::debugger::HwKind;
use crate::rsp::reply;
use crate::rsp::request::{Point, PointType};
use crate::types::VirtAddr;

impl Server {
    /// `Z`.
    pub(super) fn insert_point(&mut self, p: &Point) -> Reply {
        let Some(pid) = self.pid else { return Reply::err() };
        let addr = VirtAddr(p.addr);
        let r = match p.ty {
            PointType::Software => self.bps.insert(&mut self.dbg, pid, addr),
            PointType::Hardware => self.dbg.insert_hw(pid, addr, 1, HwKind::Exec),
            PointType::WriteWatch => self.dbg.insert_hw(pid, addr, p.kind, HwKind::Write),
            PointType::AccessWatch => self.dbg.insert_hw(pid, addr, p.kind, HwKind::Access),
            PointType::ReadWatch => return Reply::Send(reply::empty()),
        };
        Reply::from(r)
    }

    /// `z`.
    pub(super) fn remove_point(&mut self, p: &Point) -> Reply {
        let Some(pid) = self.pid else { return Reply::err() };
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
