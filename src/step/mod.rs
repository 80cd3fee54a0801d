//! Displaced stepping in the inferior: the slot area xol maps into a traced process, one
//! immutable slot per breakpointed address (its "site"), and system-call injection.
//!
//! The plan for each site (emulate, boost, out-of-line step, refuse) comes from the pure planner
//! in `xol_arch::displaced`; this module owns what lives in the inferior:
//!
//! - **The area**: `AREA_PAGES` pages mapped read+execute, private and anonymous, by an `mmap`
//!   injected through ptrace the first time a site needs a slot. It is named `[anon:xol-slots]`
//!   in `/proc/PID/maps` where the kernel supports anonymous VMA names (`PR_SET_VMA`, 5.17+);
//!   `monitor probes` prints its address either way.
//! - **Slots are per site and immutable**: the copy of the instruction followed by an absolute
//!   jump back. Any number of threads can run the same slot at once, a signal handler that
//!   returns into a slot finds the same code there, and a slot is never reused for another
//!   address while the process lives (a changed or removed site simply leaves its slot unused).
//!   This replaces the "slot per thread in flight" of ARCHITECTURE.md: per-thread state (the
//!   scratch register's saved value) is kept by the tracer, not in the slot.
//! - **Forks**: a private mapping is copied into a forked child, so the child has the same slots
//!   at the same addresses (a thread forked from inside a slot finds its jump back). An exec
//!   drops the area with the old image.
//!
//! Only this module and `inferior` use `sys`.

use crate::sys::{mem::Mem, ptrace, signals, wait, wait::Stop, RawTid};
use std::collections::HashMap;
use xol_arch::displaced::{self, Plan, PlanKind, SLOT_SIZE};

/// Pages in the slot area (64 slots of 64 bytes each per page).
pub const AREA_PAGES: u64 = 16;
const PAGE: u64 = 4096;
/// The name the area gets in `/proc/PID/maps` (`[anon:xol-slots]`) where the kernel supports it.
pub const AREA_NAME: &str = "xol-slots";

/// Where the area is put if free (see `map_area`).
const AREA_HINTS: [u64; 3] = [0x7e00_0000_0000, 0x6e00_0000_0000, 0x1e00_0000_0000];
const MAP_FIXED_NOREPLACE: u64 = 0x100000;
const SYS_MMAP: u64 = 9;
const SYS_MUNMAP: u64 = 11;
const SYS_PRCTL: u64 = 157;
const PR_SET_VMA: u64 = 0x53564d41;
const PR_SET_VMA_ANON_NAME: u64 = 0;

/// Errors of slot preparation.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    /// A ptrace or wait request failed.
    #[error(transparent)]
    Sys(#[from] crate::sys::SysError),
    /// Memory of the inferior could not be read or written.
    #[error("memory at {addr:#x}: {source}")]
    Mem {
        /// The address.
        addr: u64,
        /// The error.
        source: std::io::Error,
    },
    /// The injected system call failed or the thread did not come back.
    #[error("injected {what} failed: {why}")]
    Inject {
        /// Which call.
        what: &'static str,
        /// Why.
        why: String,
    },
}

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

    /// Sites in address order with their plan kind and slot (for `monitor probes`).
    pub fn sites(&self) -> Vec<(u64, Site)> {
        let mut v: Vec<(u64, Site)> = self.sites.iter().map(|(a, s)| (*a, s.clone())).collect();
        v.sort_by_key(|(a, _)| *a);
        v
    }
}

/// Map the slot area into the process of `tid` (stopped) and name it. Returns its base.
fn map_area(mem: &Mem, tid: RawTid) -> Result<u64, StepError> {
    let len = AREA_PAGES * PAGE;
    let prot = (libc::PROT_READ | libc::PROT_EXEC) as u64;
    let flags = (libc::MAP_PRIVATE | libc::MAP_ANONYMOUS) as u64;
    // Far below where the kernel puts mappings (top-down from under the stack), so the area
    // does not shift the program's libraries and mmaps: their addresses stay what they are
    // without xol (as under gdbserver). Another address is tried if that one is taken.
    let failed = |v: u64| v > u64::MAX - 4096;
    let mut base = u64::MAX;
    for hint in AREA_HINTS {
        base = inject_syscall(mem, tid, SYS_MMAP, [hint, len, prot, flags | MAP_FIXED_NOREPLACE, u64::MAX, 0])?;
        if !failed(base) && base != hint {
            // A kernel without MAP_FIXED_NOREPLACE took it as a hint and put it elsewhere.
            let _ = inject_syscall(mem, tid, SYS_MUNMAP, [base, len, 0, 0, 0, 0]);
            base = u64::MAX;
            continue;
        }
        if !failed(base) {
            break;
        }
    }
    if failed(base) {
        base = inject_syscall(mem, tid, SYS_MMAP, [0, len, prot, flags, u64::MAX, 0])?;
    }
    if failed(base) {
        return Err(StepError::Inject {
            what: "mmap",
            why: std::io::Error::from_raw_os_error(-(base as i64) as i32).to_string(),
        });
    }
    // Name it: the name string is read by the kernel from the inferior, so put it in the area's
    // last bytes for the duration of the call (the area is still empty).
    let name_at = base + len - 64;
    let mut name = AREA_NAME.as_bytes().to_vec();
    name.push(0);
    if mem.write(name_at, &name).is_ok() {
        let r = inject_syscall(mem, tid, SYS_PRCTL, [PR_SET_VMA, PR_SET_VMA_ANON_NAME, base, len, name_at, 0]);
        if !matches!(r, Ok(0)) {
            log::debug!("naming the slot area failed ({r:?}); it is at {base:#x}");
        }
        let _ = mem.write(name_at, &vec![0u8; name.len()]);
    }
    log::info!("slot area of {tid} at {base:#x}..{:#x}", base + len);
    Ok(base)
}

/// Unmap an area (used when a slot area must be given back, e.g. by tests).
pub fn unmap_area(mem: &Mem, tid: RawTid, base: u64, len: u64) -> Result<(), StepError> {
    inject_syscall(mem, tid, SYS_MUNMAP, [base, len, 0, 0, 0, 0]).map(drop)
}

/// Run one system call in the stopped thread `tid` and return its raw result (`rax`); the
/// thread's registers and the bytes borrowed for the code are restored. The code loads the
/// number itself (`mov eax, NR; syscall`): at an event stop inside a system call (exec, fork)
/// the kernel overwrites `rax` with that call's result on the way out. A signal that arrives
/// meanwhile is sent again afterwards, so it is not lost.
pub fn inject_syscall(mem: &Mem, tid: RawTid, nr: u64, args: [u64; 6]) -> Result<u64, StepError> {
    let saved = ptrace::get_regs(tid)?;
    let at = saved.rip;
    let mut code = [0xb8u8, 0, 0, 0, 0, 0x0f, 0x05];
    code[1..5].copy_from_slice(&(nr as u32).to_le_bytes());
    let mut orig = [0u8; 7];
    match mem.read(at, &mut orig) {
        Ok(7) => {}
        Ok(_) => return Err(StepError::Mem { addr: at, source: std::io::Error::from_raw_os_error(libc::EIO) }),
        Err(source) => return Err(StepError::Mem { addr: at, source }),
    }
    mem.write(at, &code).map_err(|source| StepError::Mem { addr: at, source })?;
    let mut r = saved;
    r.rdi = args[0];
    r.rsi = args[1];
    r.rdx = args[2];
    r.r10 = args[3];
    r.r8 = args[4];
    r.r9 = args[5];
    // Not a syscall restart: the kernel must not rewind ip or reload rax.
    r.orig_rax = u64::MAX;
    let mut requeue = Vec::new();
    let done = at + code.len() as u64;
    let result = (|| {
        ptrace::set_regs(tid, &r)?;
        ptrace::resume(tid, ptrace::ResumeKind::Step, 0)?;
        loop {
            let (_, st) = wait::wait_tid(tid)?;
            match st {
                Stop::Signal(libc::SIGTRAP) => {
                    let now = ptrace::get_regs(tid)?;
                    if now.rip == done {
                        return Ok(now.rax);
                    }
                    if now.rip != at && now.rip != at + 5 {
                        return Err(StepError::Inject {
                            what: "syscall",
                            why: format!("the thread went to {:#x}", now.rip),
                        });
                    }
                    ptrace::resume(tid, ptrace::ResumeKind::Step, 0)?;
                }
                Stop::Signal(sig) => {
                    requeue.push(sig);
                    ptrace::resume(tid, ptrace::ResumeKind::Step, 0)?;
                }
                Stop::Exited(_) | Stop::Killed(_) => {
                    return Err(StepError::Inject { what: "syscall", why: "the thread exited".into() })
                }
                _ => ptrace::resume(tid, ptrace::ResumeKind::Step, 0)?,
            }
        }
    })();
    let _ = mem.write(at, &orig);
    let restore = ptrace::set_regs(tid, &saved);
    for sig in requeue {
        let tgid = crate::sys::proc::tgid(tid).unwrap_or(tid);
        let _ = signals::tgkill(tgid, tid, sig);
    }
    let v = result?;
    restore?;
    Ok(v)
}
