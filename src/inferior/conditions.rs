//! Target-side breakpoint conditions (gdb's `ConditionalBreakpoints+`): agent-expression
//! bytecode kept per breakpoint and owner, evaluated on the trap path against the stopped
//! thread's registers and the process's (masked) memory, so a false condition costs no report
//! and no round trip: the thread goes on, displaced, as after a probe hit.
//!
//! gdbserver's rule decides (`agent::should_stop`): stop when any condition is true, or when
//! one cannot be evaluated (a register or memory that cannot be read, a division by zero...).
//! A condition the evaluator refuses when it is set (a float opcode, malformed bytecode) makes
//! the breakpoint stop every time, and the front-end then evaluates it itself.

use super::{Inferior, Process};
use crate::agent::{self, Expr, Fault};
use crate::sys::RawTid;
use crate::types::{Owner, Pid, Tid};
use xol_arch::regs::{RegisterFile, UserRegs};

/// The conditions of one owner's breakpoint at one address.
#[derive(Debug, Clone, Default)]
pub(super) struct Conditions {
    /// The validated expressions.
    exprs: Vec<Expr>,
    /// One expression was refused: always stop (the front-end decides).
    always: bool,
}

impl Conditions {
    /// Parse `codes` (one bytecode string per condition).
    pub fn parse(codes: &[Vec<u8>]) -> Conditions {
        let mut c = Conditions::default();
        for code in codes {
            match Expr::new(code) {
                Ok(e) => c.exprs.push(e),
                Err(e) => {
                    log::info!("a breakpoint condition cannot be evaluated in xol ({e}): it stops every time");
                    c.always = true;
                }
            }
        }
        c
    }
}

/// The agent's view of a thread stopped on a breakpoint: the registers already read on the
/// trap path, the rest of the register file read only if a condition asks for it, memory
/// through the insertions' mask (a condition sees the program's bytes, never an `int3`).
struct TrapContext<'a> {
    p: &'a Process,
    tid: RawTid,
    regs: &'a UserRegs,
    full: Option<RegisterFile>,
}

impl agent::Context for TrapContext<'_> {
    fn register(&mut self, regno: u16) -> Result<u64, Fault> {
        if let Some(v) = xol_arch::regs::gp_value(self.regs, regno as usize) {
            return Ok(v);
        }
        if self.full.is_none() {
            let mut rf = super::read_register_file(Tid(self.tid)).map_err(|_| Fault::Register(regno))?;
            rf.gp = *self.regs;
            self.full = Some(rf);
        }
        let mut bytes = Vec::new();
        self.full.as_ref().and_then(|rf| rf.read_reg(regno as usize, &mut bytes)).ok_or(Fault::Register(regno))?;
        // A stack entry is 64 bits: the low eight bytes of a wider register.
        let mut v = [0u8; 8];
        let n = bytes.len().min(8);
        v[..n].copy_from_slice(&bytes[..n]);
        Ok(u64::from_le_bytes(v))
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let len = buf.len() as u64;
        match self.p.aspace.insertions.read(&self.p.aspace.mem, addr, buf) {
            Ok(n) if n == buf.len() => Ok(()),
            _ => Err(Fault::Memory { addr, len }),
        }
    }
}

impl Inferior {
    /// Set the conditions of `owner`'s breakpoint at `addr` in `pid` (replacing any it had; an
    /// empty list removes them). A breakpoint with conditions is reported only when one holds.
    pub fn set_conditions(&mut self, pid: Pid, addr: u64, owner: Owner, codes: &[Vec<u8>]) -> super::Result<()> {
        let p = self.proc_mut(pid)?;
        if codes.is_empty() {
            p.conditions.remove(&(addr, owner));
        } else {
            p.conditions.insert((addr, owner), Conditions::parse(codes));
        }
        Ok(())
    }

    /// Of a hit at `at` that `reports_hit` would report (`regs`: the thread's; conditions see
    /// rip at `at`): true if it is to be reported after its owners' conditions. Some reporting
    /// owner without conditions reports it; else one whose conditions say stop. The evaluations
    /// are counted in the step statistics. Nothing is allocated here: the owners are borrowed
    /// from the insertion.
    pub(super) fn conditions_hold_at(&mut self, pid: Pid, tid: RawTid, at: u64, regs: &UserRegs) -> bool {
        let Some(p) = self.procs.get(&pid) else { return true };
        if p.conditions.is_empty() {
            return true;
        }
        let Some(ins) = p.aspace.insertions.get(at) else { return true };
        let mut r = *regs;
        r.rip = at;
        let (stop, evaluated) = evaluate(&self.table.snapshot(), p, tid, at, &ins.owners, &r);
        self.step_stats.conditions_evaluated += evaluated;
        if !stop {
            self.step_stats.conditions_false += 1;
        }
        stop
    }
}

/// Whether the conditions of `owners` at `at` say stop, and how many were evaluated.
fn evaluate(
    snap: &crate::probe::Snapshot,
    p: &Process,
    tid: RawTid,
    at: u64,
    owners: &[Owner],
    regs: &UserRegs,
) -> (bool, u64) {
    let mut cx = TrapContext { p, tid, regs, full: None };
    let mut evaluated = 0;
    for o in owners {
        match o {
            // A client's per-file breakpoint (a probe that reports) has no conditions here.
            Owner::Probe(id) => {
                if snap.get(*id).is_some_and(|pr| matches!(pr.consumer, crate::probe::Consumer::Report(_))) {
                    return (true, evaluated);
                }
            }
            Owner::Internal => {}
            Owner::Client(_) => match p.conditions.get(&(at, *o)) {
                None => return (true, evaluated),
                Some(c) if c.always => return (true, evaluated),
                Some(c) => {
                    evaluated += 1;
                    if agent::should_stop(&c.exprs, &mut cx) {
                        return (true, evaluated);
                    }
                }
            },
        }
    }
    (false, evaluated)
}
