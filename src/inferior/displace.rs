//! Resuming a thread from one of xol's breakpoints without lifting it: the instruction under the
//! `int3` is emulated, run from its slot ("boosted", with a jump back and no second stop), or
//! single-stepped out of line from its slot and fixed up (see `xol_arch::displaced` for the
//! plans and `crate::step` for the slots). Only a refused instruction, a missing slot or
//! [`StepMode::InLine`] falls back to the classic in-line step-over.
//!
//! Also here: counting probes (`monitor count`), whose hits are handled entirely on this path
//! without stopping any other thread or reporting anything.
//!
//! Invariants:
//! - a thread with a displaced step in flight (`Thread::xol`) is always resumed with
//!   PTRACE_SINGLESTEP until its step completes or is aborted, and any stop of it is fixed up
//!   first (ip back at the original address, or forward after it; scratch register restored)
//!   so no front-end ever sees an ip inside a slot;
//! - a rewound step marks the thread (`reported_bp` for gdb's breakpoints, `rehit` for probes)
//!   so the same hit is neither reported nor counted twice.

use super::{Error, Inferior, Memory, Process, Result, StopKind};
use crate::probe::{Consumer, Scope};
use crate::sys::ptrace::{self, ResumeKind};
use crate::sys::RawTid;
use crate::types::{Owner, Pid, Tid, VirtAddr};
use xol_arch::displaced::{self, Copy, Fixup, Plan, PlanKind, SlotPos};
use xol_arch::regs::UserRegs;

/// A displaced single-step in flight.
#[derive(Debug, Clone)]
pub(super) struct InFlight {
    /// The breakpoint address.
    pub orig: u64,
    /// The slot the copy runs from.
    pub slot: u64,
    /// The copy (shared with the site: no allocation per hit).
    pub copy: std::sync::Arc<Copy>,
    /// The scratch register's value before the step (RIP-relative copies).
    pub saved_scratch: Option<u64>,
    /// A front-end asked for this single-step: report it when it completes.
    pub report_step: bool,
}

/// How threads are resumed from breakpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StepMode {
    /// Displaced: emulate, boost or step out of line; the `int3` stays (the default).
    #[default]
    Displaced,
    /// The classic in-line step-over: lift the byte, single-step, put it back. Kept for
    /// comparison (benchmarks, differential tests); with several threads it misses hits.
    InLine,
}

/// Counters of the resume paths (`monitor stats`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StepStats {
    /// Breakpoint traps handled.
    pub traps: u64,
    /// Resumes by emulation.
    pub emulated: u64,
    /// Resumes through a boosted slot (no second stop).
    pub boosted: u64,
    /// Out-of-line single-steps.
    pub out_of_line: u64,
    /// In-line step-overs (refused instructions, no slot, or the in-line mode).
    pub in_line: u64,
    /// Displaced steps rewound by a signal, a fault or an interrupt.
    pub rewound: u64,
    /// Times the world was stopped (every thread of a process interrupted) to report an event.
    pub world_stops: u64,
    /// Stale traps: an `int3` of xol's executed after its probe was removed (rewound, resumed).
    pub stale_traps: u64,
}

/// A probe as listed by `monitor probes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProbeInfo {
    /// Its id.
    pub id: u32,
    /// The location as given.
    pub location: String,
    /// "per-file" or "per-process".
    pub mode: &'static str,
    /// "count" or "gdb".
    pub consumer: &'static str,
    /// Where it is armed: (process, address).
    pub armed: Vec<(Pid, VirtAddr)>,
    /// The instruction's mnemonic (where armed).
    pub mnemonic: String,
    /// The plan kind: emulate, boosted, out-of-line, refused ("not armed" if nowhere).
    pub plan: String,
    /// Why the plan was refused (then the probe is stepped over in line), if it was.
    pub refusal: Option<String>,
    /// Hits per process.
    pub hits: Vec<(Pid, u64)>,
}

/// What [`displace`] did with the thread.
pub(super) enum Displaced {
    /// A single-step of the copy is running.
    Running,
    /// Emulated: the thread is stopped after the instruction.
    Emulated,
    /// Set to run from its slot: resume it as usual and it comes back by itself.
    Boosted,
    /// Not displaceable: step it over in line.
    InLine,
}

/// The inferior's memory as the emulator sees it: accessed with the program's own page
/// protections (`sys::mem::vm_read`/`vm_write`: a store to read-only memory faults, as on the CPU),
/// xol's breakpoints masked on reads. (Code is never writable, so a write cannot land on an
/// `int3`; if it could not be written, the emulation reports a fault and the instruction runs
/// for real.)
struct ProcMem<'a>(&'a Process, i32);

/// A process's memory through `process_vm_readv`/`writev`: only what the program itself may
/// access, all or nothing.
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
        self.0.insertions.read(&ProgramAccess(self.1), addr, buf).is_ok()
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> bool {
        let end = addr.saturating_add(data.len() as u64);
        if self.0.insertions.overlaps(addr, end) {
            // A store over one of our breakpoints (writable code): let the real instruction
            // do it, from its slot, and the breakpoint sees the change through the shadow.
            return false;
        }
        ProgramAccess(self.1).write_at(addr, data).is_ok()
    }
}

/// Read the original bytes of the instruction at `addr` (masked, up to 15).
pub(super) fn original_code(p: &Process, addr: u64) -> Vec<u8> {
    let mut buf = vec![0u8; displaced::MAX_INSN_LEN];
    let n = p.insertions.read(&p.mem, addr, &mut buf).unwrap_or(0);
    buf.truncate(n);
    buf
}

/// A stopped thread of `p` fit to run an injected syscall (not at a syscall-entry stop).
fn injection_thread(p: &Process) -> Option<RawTid> {
    p.threads
        .iter()
        .filter(|(_, t)| t.stopped && t.xol.is_none())
        .map(|(tid, _)| *tid)
        .find(|tid| !matches!(ptrace::syscall_info(*tid), Ok(ptrace::SyscallStop::Entry(_))))
}

/// Plan the breakpoint at `addr` (and give it a slot) if not done yet. `all_stopped`: the
/// whole process is stopped, so a syscall may be injected to map the slot area.
pub(super) fn prepare_site(p: &mut Process, addr: u64, all_stopped: bool) {
    if p.slots.site(addr).is_some() {
        return;
    }
    let code = original_code(p, addr);
    let tid = if all_stopped { injection_thread(p) } else { None };
    let Process { slots, mem, .. } = p;
    slots.prepare(mem, tid, addr, &code);
}

/// Set up the thread `tid`, stopped on the breakpoint at `at` (`regs` already rewound or not:
/// only `rip` is replaced), to go past the instruction without lifting the breakpoint.
pub(super) fn displace(
    p: &mut Process,
    tid: RawTid,
    at: u64,
    regs: &mut UserRegs,
    step: bool,
    mode: StepMode,
    stats: &mut StepStats,
) -> Result<Displaced> {
    if mode == StepMode::InLine || !p.insertions.armed() {
        return Ok(Displaced::InLine);
    }
    prepare_site(p, at, false);
    let Some(site) = p.slots.site(at).cloned() else { return Ok(Displaced::InLine) };
    if let Plan::Emulate(e) = &*site.plan {
        // A tracer write does not trigger the debug registers: with a data watchpoint armed,
        // an instruction that touches memory runs for real, from its slot.
        let watching = p.hw.iter().flatten().any(|s| s.kind != super::HwKind::Exec);
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
    if site.plan.kind() == PlanKind::Boost && !step {
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
    t.xol = Some(InFlight { orig: at, slot, copy, saved_scratch, report_step: step });
    if std::mem::take(&mut t.needs_dregs) {
        super::hw::apply(p, tid)?;
    }
    match ptrace::resume(tid, ResumeKind::Step, 0) {
        Ok(()) => {}
        Err(e) if e.is_gone() => {}
        Err(e) => return Err(e.into()),
    }
    if let Some(t) = p.threads.get_mut(&tid) {
        t.stopped = false;
        t.stepping = false;
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
pub(super) fn abort_in_flight(
    p: &mut Process,
    tid: RawTid,
    stats: &mut StepStats,
) -> Result<Option<(Fixup, InFlight, UserRegs)>> {
    let Some(fl) = p.threads.get_mut(&tid).and_then(|t| t.xol.take()) else { return Ok(None) };
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
pub(super) fn fix_in_slot(p: &mut Process, tid: RawTid, stats: &mut StepStats) -> Result<()> {
    if p.slots.area().is_none() {
        return Ok(());
    }
    let mut regs = ptrace::get_regs(tid)?;
    let Some((orig, site)) = p.slots.site_of_slot(regs.rip) else { return Ok(()) };
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

impl Inferior {
    /// Choose how breakpoints are stepped over (for comparisons; displaced by default).
    pub fn set_step_mode(&mut self, mode: StepMode) {
        self.step_mode = mode;
    }

    /// Add a per-process counting probe at `addr` of `pid`: every hit is counted and the thread
    /// goes on, nothing is stopped or reported. `location` is how the user named it.
    pub fn add_count_probe(&mut self, pid: Pid, addr: VirtAddr, location: &str) -> Result<u32> {
        self.add_probe(Scope::PerProcess { pid, addr }, Consumer::Count, location)
    }

    /// Probe ids whose location or address is `location` (as given, or `0x…`).
    pub fn find_count_probes(&self, location: &str) -> Vec<u32> {
        let addr = location.strip_prefix("0x").and_then(|h| u64::from_str_radix(h, 16).ok());
        self.table
            .snapshot()
            .iter()
            .filter(|p| {
                p.location == location || matches!(p.scope, Scope::PerProcess { addr: a, .. } if Some(a.0) == addr)
            })
            .map(|p| p.id)
            .collect()
    }

    /// Hits of a probe, per process (processes that ended included).
    pub fn probe_hits(&self, id: u32) -> Vec<(Pid, u64)> {
        self.hits.range((id, i32::MIN)..=(id, i32::MAX)).map(|((_, pid), n)| (Pid(*pid), *n)).collect()
    }

    /// Every probe with its mode, plan and hits.
    pub fn probes(&self) -> Vec<ProbeInfo> {
        let snap = self.table.snapshot();
        snap.iter()
            .map(|pr| {
                let mut armed = Vec::new();
                for (pid, p) in &self.procs {
                    for (a, i) in p.insertions.iter() {
                        if i.owners.contains(&Owner::Probe(pr.id)) {
                            armed.push((*pid, VirtAddr(a)));
                        }
                    }
                }
                let site = armed.first().and_then(|(pid, a)| self.procs.get(pid)?.slots.site(a.0));
                let (mnemonic, plan, refusal) = match site {
                    Some(s) => {
                        let refusal = match &*s.plan {
                            Plan::Refuse(r) => Some(r.to_string()),
                            _ if s.slot.is_none() && s.plan.kind() != PlanKind::Emulate => {
                                Some("no slot area; stepped over in line".to_string())
                            }
                            _ => None,
                        };
                        (s.plan.mnemonic(), s.plan.kind().to_string(), refusal)
                    }
                    None => ("?".into(), "not armed".into(), None),
                };
                ProbeInfo {
                    id: pr.id,
                    location: pr.location.clone(),
                    mode: if pr.per_file() { "per-file" } else { "per-process" },
                    consumer: match pr.consumer {
                        Consumer::Count => "count",
                        Consumer::Report(_) => "report",
                    },
                    armed,
                    mnemonic,
                    plan,
                    refusal,
                    hits: self.probe_hits(pr.id),
                }
            })
            .collect()
    }

    /// The plan kind of the breakpoint at `addr` (for tests and `monitor probes`).
    pub fn plan_kind(&self, pid: Pid, addr: VirtAddr) -> Option<PlanKind> {
        self.procs.get(&pid)?.slots.site(addr.0).map(|s| s.plan.kind())
    }

    /// The slot area of a process (base, length), if mapped.
    pub fn slot_area(&self, pid: Pid) -> Option<(u64, u64)> {
        self.procs.get(&pid)?.slots.area()
    }

    /// Count a breakpoint hit for every probe owning the insertion at `at`.
    pub(super) fn count_hit(&mut self, pid: Pid, at: u64) {
        let Some(p) = self.procs.get(&pid) else { return };
        let Some(ins) = p.insertions.get(at) else { return };
        for o in &ins.owners {
            if let Owner::Probe(id) = o {
                *self.hits.entry((*id, pid.0)).or_insert(0) += 1;
            }
        }
    }

    /// Single-step one thread over the instruction at its ip, for tests and tools that compare
    /// the two methods: displaced (the plan of a breakpoint inserted there, which must exist) or
    /// in line. The thread must be stopped; returns the stop that ended the step.
    pub fn step_instruction(&mut self, pid: Pid, tid: Tid, mode: StepMode) -> Result<StopKind> {
        let pc = ptrace::get_regs(tid.0)?.rip;
        if !self.proc(pid)?.insertions.contains(pc) {
            return Err(Error::Mem { addr: pc, source: std::io::Error::other("no breakpoint at the thread's ip") });
        }
        if let Some(t) = self.proc_mut(pid)?.threads.get_mut(&tid.0) {
            t.reported_bp = Some(pc);
        }
        let saved = self.step_mode;
        self.step_mode = mode;
        let r = self.resume(pid, &[(tid, super::Action::step(0))], None);
        self.step_mode = saved;
        r?;
        loop {
            match self.wait(None)? {
                super::WaitOutcome::Stopped(ev) if ev.tid == tid => return Ok(ev.kind),
                super::WaitOutcome::Stopped(ev) => {
                    if matches!(ev.kind, StopKind::Exited(_) | StopKind::Killed(_)) && ev.pid == pid {
                        return Ok(ev.kind);
                    }
                }
                _ => return Err(Error::NoProcess(pid)),
            }
        }
    }
}
