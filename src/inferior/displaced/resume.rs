//! Setting a thread on its way past a breakpoint without lifting it: the site's plan (made
//! once, from the original bytes, when the breakpoint is inserted), then emulation, a boosted
//! run from the slot, or an out-of-line single-step whose stop is fixed up here.

use super::{Displaced, InFlight, StepMode, StepStats};
use crate::inferior::aspace::AddressSpace;
use crate::inferior::thread::{Range, Task};
use crate::inferior::{hw, Error, Memory, Process, Result};
use crate::sys::ptrace::{self, ResumeKind};
use crate::sys::RawTid;
use crate::types::Tid;
use xol_arch::displaced::{self, Fixup, Plan, PlanKind, SlotPos};
use xol_arch::regs::UserRegs;

/// The inferior's memory as the emulator sees it: accessed with the program's own page
/// protections (`sys::mem::vm_read`/`vm_write`: a store to read-only memory faults, as on the CPU),
/// xol's breakpoints masked on reads. (Code is never writable, so a write cannot land on an
/// `int3`; if it could not be written, the emulation reports a fault and the instruction runs
/// for real.)
struct ProcMem<'a>(&'a Process, i32);

/// A process's memory with the program's own access rights (`sys::mem::vm_read`/`vm_write`):
/// only what the program itself may access, all or nothing.
struct ProgramAccess(i32);

impl Memory for ProgramAccess {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        if crate::sys::mem::vm_read(self.0, addr, buf) {
            Ok(buf.len())
        } else {
            Err(std::io::Error::from_raw_os_error(libc::EFAULT))
        }
    }

    fn write_at(&self, addr: u64, data: &[u8]) -> std::io::Result<()> {
        if crate::sys::mem::vm_write(self.0, addr, data) {
            Ok(())
        } else {
            Err(std::io::Error::from_raw_os_error(libc::EFAULT))
        }
    }
}

impl displaced::Memory for ProcMem<'_> {
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool {
        self.0.aspace.insertions.read(&ProgramAccess(self.1), addr, buf).is_ok()
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        let end = addr.saturating_add(data.len() as u64);
        if self.0.aspace.insertions.overlaps(addr, end) {
            // A store over one of our breakpoints (writable code): let the real instruction
            // do it, from its slot, and the breakpoint sees the change through the shadow.
            return false;
        }
        ProgramAccess(self.1).write_at(addr, data).is_ok()
    }
}

/// Read the original bytes of the instruction at `addr` (masked, up to 15).
pub(in crate::inferior) fn original_code(p: &Process, addr: u64) -> Vec<u8> {
    let mut buf = vec![0u8; displaced::MAX_INSN_LEN];
    let n = p.aspace.insertions.read(&p.aspace.mem, addr, &mut buf).unwrap_or(0);
    buf.truncate(n);
    buf
}

/// A stopped thread of `p` fit to run an injected syscall (not at a syscall-entry stop).
pub(in crate::inferior) fn injection_thread(p: &Process) -> Option<RawTid> {
    p.threads
        .iter()
        .filter(|(_, t)| t.is_stopped() && !t.is_displaced())
        .map(|(tid, _)| *tid)
        .find(|tid| !matches!(ptrace::syscall_info(*tid), Ok(ptrace::SyscallStop::Entry(_))))
}

/// Plan the breakpoint at `addr` (and give it a slot) if not done yet. `all_stopped`: the
/// whole process is stopped, so a syscall may be injected to map the slot area.
pub(in crate::inferior) fn prepare_site(p: &mut Process, addr: u64, all_stopped: bool) {
    if p.aspace.slots.site(addr).is_some() {
        return;
    }
    let code = original_code(p, addr);
    let tid = if all_stopped { injection_thread(p) } else { None };
    let AddressSpace { slots, mem, .. } = &mut p.aspace;
    slots.prepare(mem, tid, addr, &code);
}

/// Set up the thread `tid`, stopped on the breakpoint at `at` (`regs` already rewound or not:
/// only `rip` is replaced), to go past the instruction without lifting the breakpoint.
pub(in crate::inferior) fn displace(
    p: &mut Process,
    tid: RawTid,
    at: u64,
    regs: &mut UserRegs,
    step: Option<Range>,
    mode: StepMode,
    stats: &mut StepStats,
) -> Result<Displaced> {
    if mode == StepMode::InLine || !p.aspace.insertions.armed() {
        return Ok(Displaced::InLine);
    }
    prepare_site(p, at, false);
    let Some(site) = p.aspace.slots.site(at).cloned() else { return Ok(Displaced::InLine) };
    if let Plan::Emulate(e) = &*site.plan {
        // A tracer write does not trigger the debug registers: with a data watchpoint armed,
        // an instruction that touches memory runs for real, from its slot.
        let watching = p.aspace.hw.iter().flatten().any(|s| s.kind != hw::HwKind::Exec);
        if !(watching && e.touches_memory()) {
            let mut r = *regs;
            r.rip = at;
            if e.apply(&mut r, &mut ProcMem(p, tid)).is_ok() {
                ptrace::set_regs(tid, &r)?;
                *regs = r;
                stats.emulated += 1;
                return Ok(Displaced::Emulated);
            }
            // A fault: run it for real so the program gets the real signal.
        }
    }
    let (Some(copy), Some(slot)) = (site.copy.clone(), site.slot) else { return Ok(Displaced::InLine) };
    let mut r = *regs;
    r.rip = slot;
    r.orig_rax = u64::MAX;
    if site.plan.kind() == PlanKind::Boost && step.is_none() {
        ptrace::set_regs(tid, &r)?;
        *regs = r;
        stats.boosted += 1;
        return Ok(Displaced::Boosted);
    }
    let saved_scratch = copy.scratch().map(|g| {
        let v = g.get(&r);
        g.set(&mut r, copy.next());
        v
    });
    ptrace::set_regs(tid, &r)?;
    *regs = r;
    let t = p.threads.get_mut(&tid).ok_or(Error::NoThread(Tid(tid)))?;
    t.set_task(Task::Displaced(InFlight { orig: at, slot, copy, saved_scratch, step }));
    if std::mem::take(&mut t.needs_dregs) {
        hw::apply(p, tid)?;
    }
    match ptrace::resume(tid, ResumeKind::Step, 0) {
        Ok(()) => {}
        Err(e) if e.is_gone() => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(t) = p.threads.get_mut(&tid) {
        t.run_on();
    }
    stats.out_of_line += 1;
    Ok(Displaced::Running)
}

/// Mark a thread whose displaced step was rewound to `orig`, so the hit is not taken twice:
/// gdb's resume steps it over at once (`reported_bp`), and a trap there is not counted again
/// (`rehit`).
fn mark_rewound(p: &mut Process, tid: RawTid, orig: u64, stats: &mut StepStats) {
    if let Some(t) = p.threads.get_mut(&tid) {
        t.reported_bp = Some(orig);
        t.rehit = Some(orig);
    }
    stats.rewound += 1;
}

/// Fix up a thread with a displaced step in flight at a stop other than the end of its step
/// (or at that end: the caller tells by the result). Returns the fix-up and whether it was a
/// front-end's step. The thread's registers are written.
pub(in crate::inferior) fn abort_in_flight(
    p: &mut Process,
    tid: RawTid,
    stats: &mut StepStats,
) -> Result<Option<(Fixup, InFlight, UserRegs)>> {
    let Some(fl) = p.threads.get_mut(&tid).and_then(|t| t.take_displaced()) else { return Ok(None) };
    let mut regs = ptrace::get_regs(tid)?;
    let fix = displaced::fixup(&fl.copy, fl.slot, &mut regs, fl.saved_scratch);
    if fix != Fixup::Absolute {
        ptrace::set_regs(tid, &regs)?;
    }
    if fl.copy.is_x87() {
        // The FPU remembers where the last x87 instruction was: the slot. Put the original
        // address there, as if the instruction had run in place.
        let mut fx = ptrace::get_fpregs(tid)?;
        if (fl.slot..fl.slot + displaced::SLOT_SIZE as u64).contains(&fx.fip()) {
            fx.set_fip(fl.orig);
            ptrace::set_fpregs(tid, &fx)?;
        }
    }
    if fix == Fixup::Rewound {
        mark_rewound(p, tid, fl.orig, stats);
    }
    Ok(Some((fix, fl, regs)))
}

/// A thread without a step in flight stopped with its ip inside a slot (a boosted copy faulted,
/// or a signal or an interrupt caught it there): move it back to the original address or
/// forward past it, so nobody sees a slot address.
pub(in crate::inferior) fn fix_in_slot(p: &mut Process, tid: RawTid, stats: &mut StepStats) -> Result<()> {
    if p.aspace.slots.area().is_none() {
        return Ok(());
    }
    let mut regs = ptrace::get_regs(tid)?;
    let Some((orig, site)) = p.aspace.slots.site_of_slot(regs.rip) else { return Ok(()) };
    let (Some(copy), Some(slot)) = (site.copy.clone(), site.slot) else { return Ok(()) };
    if displaced::slot_pos(&copy, slot, regs.rip) == SlotPos::Outside {
        return Ok(());
    }
    let fix = displaced::fixup(&copy, slot, &mut regs, None);
    if fix != Fixup::Absolute {
        ptrace::set_regs(tid, &regs)?;
    }
    if fix == Fixup::Rewound {
        mark_rewound(p, tid, orig, stats);
    }
    Ok(())
}
