//! Displaced stepping in the inferior: resuming a thread from one of xol's breakpoints without
//! lifting it. The instruction under the `int3` is emulated, run from its slot ("boosted", with a
//! jump back and no second stop), or single-stepped out of line from its slot and fixed up. Only
//! a refused instruction, a missing slot or [`StepMode::InLine`] falls back to the classic
//! in-line step-over (in the event machine's trap path, `events/trap.rs`, as it waits on the
//! thread and handles the events a stepped instruction makes).
//!
//! The pure half (plans, copies, the RIP-relative rewrite, fix-ups, emulation) is
//! `xol_arch::displaced`; this module owns what lives in the inferior:
//! - `slots`: the slot area mapped into the tracee and one immutable slot per site;
//! - `inject`: running a system call in a stopped thread (the area's `mmap`);
//! - `resume`: planning a site, setting a thread on its way (emulated, boosted, out of line),
//!   fixing up a step in flight or a thread caught inside a slot.
//!
//! Invariants:
//! - a thread with a displaced step in flight (`Task::Displaced`) is always resumed with
//!   PTRACE_SINGLESTEP until its step completes or is aborted, and any stop of it is fixed up
//!   first (ip back at the original address, or forward after it; scratch register restored)
//!   so no front-end ever sees an ip inside a slot;
//! - a rewound step marks the thread (`reported_bp` for gdb's breakpoints, `rehit` for probes)
//!   so the same hit is neither reported nor counted twice.

mod inject;
mod resume;
mod slots;

pub(super) use inject::{map_shared, StepError};
pub(super) use resume::{abort_in_flight, displace, fix_in_slot, injection_thread, prepare_site};
pub(super) use slots::Slots;

use super::{Error, Inferior, Result, StopKind};
use crate::sys::ptrace;
use crate::types::{Pid, Tid, VirtAddr};
use xol_arch::displaced::{Copy, PlanKind};

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
    /// The front-end's single-step (or range-step) this displaced step is part of: reported
    /// when it completes (or range-stepping goes on); `None` if the thread runs on freely.
    pub step: Option<super::thread::Range>,
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
    /// Target-side breakpoint conditions evaluated on the trap path.
    pub conditions_evaluated: u64,
    /// Hits whose conditions were all false: not reported, the thread went on.
    pub conditions_false: u64,
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

impl Inferior {
    /// Choose how breakpoints are stepped over (for comparisons; displaced by default).
    pub fn set_step_mode(&mut self, mode: StepMode) {
        self.step_mode = mode;
    }

    /// The plan kind of the breakpoint at `addr` (for tests and `monitor probes`).
    pub fn plan_kind(&self, pid: Pid, addr: VirtAddr) -> Option<PlanKind> {
        self.procs.get(&pid)?.aspace.slots.site(addr.0).map(|s| s.plan.kind())
    }

    /// The slot area of a process (base, length), if mapped.
    pub fn slot_area(&self, pid: Pid) -> Option<(u64, u64)> {
        self.procs.get(&pid)?.aspace.slots.area()
    }

    /// Single-step one thread over the instruction at its ip, for tests and tools that compare
    /// the two methods: displaced (the plan of a breakpoint inserted there, which must exist) or
    /// in line. The thread must be stopped; returns the stop that ended the step.
    pub fn step_instruction(&mut self, pid: Pid, tid: Tid, mode: StepMode) -> Result<StopKind> {
        let pc = ptrace::get_regs(tid.0)?.rip;
        if !self.proc(pid)?.aspace.insertions.contains(pc) {
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
