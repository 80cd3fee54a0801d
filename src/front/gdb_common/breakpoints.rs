//! gdb's breakpoints over the session API: gdb's policies, which the core does not know.
//!
//! gdb owns its breakpoints as one client of the core ([`Owner::Client`]). In per-file probe
//! mode (`monitor probe-mode per-file`) a `Z0` becomes a per-file probe that reports to gdb in
//! its process and counts in the children xol follows. gdb removes its breakpoints at every
//! stop and to step over one (`z0`, step, `Z0`), unless `set breakpoint always-inserted on`:
//! such a per-file breakpoint is only withdrawn from gdb's process ("parked"), so children keep
//! their hits, and is deleted for good when gdb continues without inserting it again.
//!
//! Also here: how `monitor breakpoints` names owners and how `monitor probes` prints a probe.

use crate::debugger::{Debugger, ProbeMode, ProbeReport, ProbeState, Result};
use crate::types::{ClientId, Owner, Pid, VirtAddr};
use std::collections::BTreeMap;

/// gdb's breakpoints in the core.
#[derive(Debug)]
pub struct GdbBreakpoints {
    /// gdb, as a client of the core.
    pub client: ClientId,
    /// Breakpoints made per-file: (pid, address) -> probe id.
    file_bps: BTreeMap<(Pid, u64), u32>,
    /// Per-file breakpoints gdb removed (`z0`), withdrawn from its process only, until gdb
    /// continues without inserting them again.
    parked: BTreeMap<(Pid, u64), u32>,
}

impl GdbBreakpoints {
    /// gdb's breakpoints, owned by a new client of `dbg`.
    pub fn new(dbg: &mut Debugger) -> GdbBreakpoints {
        GdbBreakpoints { client: dbg.new_client(), file_bps: BTreeMap::new(), parked: BTreeMap::new() }
    }

    /// `Z0` at `addr`: a per-process breakpoint, or in per-file mode a per-file probe.
    pub fn insert(&mut self, dbg: &mut Debugger, pid: Pid, addr: VirtAddr) -> Result<()> {
        if let Some(id) = self.parked.remove(&(pid, addr.0)) {
            // Back in gdb's process, the same probe: its hits (children's included) go on.
            dbg.restore_probe(pid, id)?;
            self.file_bps.insert((pid, addr.0), id);
            return Ok(());
        }
        if self.file_bps.contains_key(&(pid, addr.0)) {
            return Ok(());
        }
        if dbg.probe_mode() == ProbeMode::PerFile {
            if let Some(id) = dbg.add_breakpoint_probe(self.client, pid, addr)? {
                self.file_bps.insert((pid, addr.0), id);
                return Ok(());
            }
        }
        dbg.insert_breakpoint(pid, addr, Owner::Client(self.client))
    }

    /// `z0` at `addr`: false if gdb had no breakpoint there.
    pub fn remove(&mut self, dbg: &mut Debugger, pid: Pid, addr: VirtAddr) -> Result<bool> {
        if let Some(id) = self.file_bps.remove(&(pid, addr.0)) {
            // Out of gdb's process at once; kept in children until gdb continues without it.
            self.parked.insert((pid, addr.0), id);
            return dbg.withdraw_probe(pid, id);
        }
        dbg.remove_breakpoint(pid, addr, Owner::Client(self.client))
    }

    /// Before a resume: a continue (not just a step, as in gdb's step-over of a breakpoint)
    /// with a per-file breakpoint still removed means gdb deleted it for good.
    pub fn before_resume(&mut self, dbg: &mut Debugger, continues: bool) -> Result<()> {
        if continues {
            for (_, id) in std::mem::take(&mut self.parked) {
                dbg.remove_probe(id)?;
            }
        }
        Ok(())
    }

    /// gdb went away: every breakpoint it had in `pid` is taken out.
    pub fn forget(&mut self, dbg: &mut Debugger, pid: Pid) {
        let ids: Vec<u32> = self.file_bps.values().chain(self.parked.values()).copied().collect();
        self.file_bps.clear();
        self.parked.clear();
        for id in ids {
            if let Err(e) = dbg.remove_probe(id) {
                log::warn!("removing the lost client's per-file breakpoint {id}: {e}");
            }
        }
        for (addr, owners) in dbg.breakpoints(pid) {
            if owners.contains(&Owner::Client(self.client)) {
                if let Err(e) = dbg.remove_breakpoint(pid, addr, Owner::Client(self.client)) {
                    log::warn!("removing the lost client's breakpoint at {:#x}: {e}", addr.0);
                }
            }
        }
    }

    /// How `monitor breakpoints` names an owner.
    pub fn owner_label(&self, o: Owner) -> String {
        match o {
            Owner::Client(c) if c == self.client => "gdb".into(),
            Owner::Client(c) => c.to_string(),
            Owner::Probe(_) => "probe".into(),
            Owner::Internal => "internal".into(),
        }
    }
}

/// The one-line form of `monitor probes`:
/// `ID KIND LOCATION at ADDRESSES [INSTRUCTION] plan PLAN hits TOTAL (PID:N ...) MODE armed in K`
/// where KIND is `count` or `gdb-breakpoint`, MODE `per-file` or `per-process`; a probe armed
/// nowhere reads `at - [STATE]` (`pending until libc.so.6 is mapped`, ...) and `plan -`.
pub fn probe_line(p: &ProbeReport) -> String {
    let kind = if p.reports_to.is_some() { "gdb-breakpoint" } else { "count" };
    let at = if p.armed.is_empty() {
        match &p.state {
            ProbeState::Withdrawn => "- [removed by gdb while the program is stopped]".to_string(),
            s => format!("- [{s}]"),
        }
    } else {
        let mut addrs: Vec<u64> = p.armed.iter().map(|(_, a)| a.0).collect();
        addrs.sort_unstable();
        addrs.dedup();
        let mut shown: Vec<String> = addrs.iter().take(3).map(|a| format!("{a:#x}")).collect();
        if addrs.len() > 3 {
            shown.push(format!("+{} more", addrs.len() - 3));
        }
        format!("{} [{}]", shown.join(","), p.mnemonic)
    };
    let plan = match (&p.refusal, p.armed.is_empty()) {
        (_, true) => "-".to_string(),
        (Some(r), false) => format!("{} ({r})", p.plan),
        (None, false) => p.plan.clone(),
    };
    let hits: Vec<String> = p.hits.iter().map(|(pid, n)| format!("{pid}:{n}")).collect();
    format!(
        "{} {kind} {} at {at} plan {plan} hits {} ({}) {} armed in {}",
        p.id,
        p.location,
        p.total(),
        if hits.is_empty() { "none".to_string() } else { hits.join(" ") },
        if p.per_file { "per-file" } else { "per-process" },
        p.armed.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_lines_say_what_each_probe_is() {
        let mut r = ProbeReport {
            id: 2,
            location: "libc.so.6:puts".into(),
            reports_to: None,
            per_file: true,
            state: ProbeState::Pending { file: "libc.so.6".into(), error: None },
            armed: vec![],
            mnemonic: String::new(),
            plan: "not armed".into(),
            refusal: None,
            hits: vec![],
        };
        assert_eq!(
            probe_line(&r),
            "2 count libc.so.6:puts at - [pending until libc.so.6 is mapped] plan - hits 0 (none) per-file armed in 0"
        );
        r.state = ProbeState::Armed;
        r.armed = vec![(Pid(10), VirtAddr(0x20)), (Pid(11), VirtAddr(0x20)), (Pid(12), VirtAddr(0x30))];
        r.mnemonic = "push".into();
        r.plan = "emulate".into();
        r.hits = vec![(Pid(10), 3), (Pid(11), 4)];
        assert_eq!(
            probe_line(&r),
            "2 count libc.so.6:puts at 0x20,0x30 [push] plan emulate hits 7 (10:3 11:4) per-file armed in 3"
        );
        r.reports_to = Some(ClientId(1));
        r.location = "0x20".into();
        r.armed.clear();
        r.state = ProbeState::Withdrawn;
        assert!(probe_line(&r)
            .starts_with("2 gdb-breakpoint 0x20 at - [removed by gdb while the program is stopped] plan - "));
    }
}
