//! The slot area xol maps into a traced process, and one immutable slot per breakpointed
//! address (its "site").
//!
//! - **The area**: `AREA_PAGES` pages mapped read+execute, private and anonymous, by an `mmap`
//!   injected through ptrace (`inject`) the first time a site needs a slot. It is named
//!   `[anon:xol-slots]` in `/proc/PID/maps` where the kernel supports anonymous VMA names
//!   (`PR_SET_VMA`, 5.17+); `monitor probes` prints its address either way.
//! - **Slots are per site and immutable**: the copy of the instruction followed by an absolute
//!   jump back. Any number of threads can run the same slot at once, a signal handler that
//!   returns into a slot finds the same code there, and a slot is never reused for another
//!   address while the process lives (a changed or removed site simply leaves its slot unused).
//!   This replaces the "slot per thread in flight" of ARCHITECTURE.md: per-thread state (the
//!   scratch register's saved value) is kept by the tracer, not in the slot.
//! - **Forks**: a private mapping is copied into a forked child, so the child has the same slots
//!   at the same addresses (a thread forked from inside a slot finds its jump back). An exec
//!   drops the area with the old image.

use super::inject::map_area;
use crate::sys::{mem::Mem, RawTid};
use std::collections::HashMap;
use xol_arch::displaced::{self, Plan, PlanKind, SLOT_SIZE};

/// Pages in the slot area (64 slots of 64 bytes each per page).
pub const AREA_PAGES: u64 = 16;
pub(super) const PAGE: u64 = 4096;
/// The name the area gets in `/proc/PID/maps` (`[anon:xol-slots]`) where the kernel supports it.
pub const AREA_NAME: &str = "xol-slots";

/// One breakpointed address: how its instruction is resumed, and its slot if it needs one.
#[derive(Debug, Clone)]
pub struct Site {
    /// The plan from the original bytes.
    pub plan: std::sync::Arc<Plan>,
    /// The copy run from the slot (for an emulated instruction: the one gdb's stepi and a
    /// faulting emulation use).
    pub copy: Option<std::sync::Arc<displaced::Copy>>,
    /// The slot's address, once the area exists.
    pub slot: Option<u64>,
}

/// The slot area and the sites of one address space.
#[derive(Debug, Default, Clone)]
pub struct Slots {
    area: Option<(u64, u64)>,
    next: u64,
    sites: HashMap<u64, Site>,
    /// Why the area could not be mapped (the sites then fall back to the in-line step-over).
    pub failed: Option<String>,
}

impl Slots {
    /// The site at `addr`, if prepared.
    pub fn site(&self, addr: u64) -> Option<&Site> {
        self.sites.get(&addr)
    }

    /// The area (base, length), once mapped.
    pub fn area(&self) -> Option<(u64, u64)> {
        self.area
    }

    /// True if `rip` lies in the slot area.
    pub fn contains(&self, rip: u64) -> bool {
        self.area.is_some_and(|(b, l)| rip >= b && rip < b + l)
    }

    /// The site whose slot holds `rip`, if any.
    pub fn site_of_slot(&self, rip: u64) -> Option<(u64, &Site)> {
        if !self.contains(rip) {
            return None;
        }
        self.sites
            .iter()
            .find(|(_, s)| s.slot.is_some_and(|a| rip >= a && rip < a + SLOT_SIZE as u64))
            .map(|(a, s)| (*a, s))
    }

    /// Forget a site (its instruction bytes changed). Its slot stays allocated and unused.
    pub fn forget(&mut self, addr: u64) {
        self.sites.remove(&addr);
    }

    /// Forget sites whose instruction may overlap `[start, end)`.
    pub fn forget_overlapping(&mut self, start: u64, end: u64) {
        let lo = start.saturating_sub(displaced::MAX_INSN_LEN as u64);
        self.sites.retain(|a, _| *a < lo || *a >= end);
    }

    /// The copy a forked child gets: the same area and slots (its memory is a copy). With
    /// `shared` (vfork: one address space for both until exec) the child allocates no new
    /// slots, so the two never write the same free slot.
    pub fn for_child(&self, shared: bool) -> Slots {
        let mut s = self.clone();
        if shared {
            s.failed = Some("a vfork child shares its parent's slot area".into());
            s.next = s.area.map(|(b, l)| b + l).unwrap_or(0);
        }
        s
    }

    /// Drop everything (exec: the area went with the old image).
    pub fn reset(&mut self) {
        *self = Slots::default();
    }

    /// Plan the site at `addr` from its original bytes `code` and give it a slot if it needs
    /// one. `tid` must be a stopped thread of the process that is not at a syscall-entry stop;
    /// it is used (and left as it was) to inject the `mmap` the first time. If no slot can be
    /// had, the site keeps its plan without a slot and the caller steps it over in line.
    pub fn prepare(&mut self, mem: &Mem, tid: Option<RawTid>, addr: u64, code: &[u8]) -> &Site {
        if !self.sites.contains_key(&addr) {
            let plan = displaced::plan(code, addr);
            let needs_slot = matches!(plan.kind(), PlanKind::Boost | PlanKind::Step);
            // An emulated instruction still gets a slot when it has an out-of-line copy: gdb's
            // stepi and a faulting emulation use it.
            let copy = match plan.copy() {
                Some(c) => Some(c.clone()),
                None if plan.kind() == PlanKind::Emulate => displaced::step_copy(code, addr),
                None => None,
            };
            let slot = match &copy {
                Some(c) if needs_slot || plan.kind() == PlanKind::Emulate => self.alloc(mem, tid, c),
                _ => None,
            };
            let copy = copy.map(std::sync::Arc::new);
            self.sites.insert(addr, Site { plan: std::sync::Arc::new(plan), copy, slot });
        }
        &self.sites[&addr]
    }

    fn alloc(&mut self, mem: &Mem, tid: Option<RawTid>, copy: &displaced::Copy) -> Option<u64> {
        if self.area.is_none() {
            if self.failed.is_some() {
                return None;
            }
            let tid = tid?;
            match map_area(mem, tid) {
                Ok(base) => {
                    self.area = Some((base, AREA_PAGES * PAGE));
                    self.next = base;
                }
                Err(e) => {
                    log::warn!("cannot map the slot area: {e}; breakpoints are stepped over in line");
                    self.failed = Some(e.to_string());
                    return None;
                }
            }
        }
        let (base, len) = self.area?;
        if self.next + SLOT_SIZE as u64 > base + len {
            return None;
        }
        let slot = self.next;
        let bytes = copy.slot_bytes(slot);
        if let Err(e) = mem.write(slot, &bytes) {
            log::warn!("writing slot at {slot:#x}: {e}");
            return None;
        }
        self.next += SLOT_SIZE as u64;
        Some(slot)
    }
}
