//! Counters shared between xol and a tracee, for probes that count without a stop (jump pads,
//! issue 13): one `memfd` page per process, mapped read-write in xol ([`SharedMem`]) and in
//! the tracee (an `openat` + `mmap` + `close` injected into a stopped thread, next to the slot
//! area so pad code in that area reaches it RIP-relative). A pad adds to its counter with one
//! atomic instruction; xol reads the counts with plain loads, no ptrace.
//!
//! Lifetime: an exec drops the mapping with the image (`AddressSpace::forget_image`). A forked
//! child inherits the tracee's `MAP_SHARED` mapping, so until the pads are wired its page is
//! its parent's: the pad work gives a child counters of its own (a new memfd mapped over the
//! same address) before it runs.

use super::{Error, Inferior, Result};
use crate::sys::shm::SharedMem;
use crate::types::{Pid, Tid};
use std::sync::atomic::Ordering;

/// Where the page goes when no slot area is mapped yet.
const DEFAULT_HINT: u64 = 0x7e00_1000_0000;

/// Bytes of shared counters per process (512 counters of 8 bytes).
pub const COUNTERS_LEN: usize = 4096;

/// A process's shared counter page.
#[derive(Debug)]
pub(super) struct Shared {
    /// xol's mapping.
    pub mem: SharedMem,
    /// Where the tracee has it.
    pub at: u64,
}

impl Inferior {
    /// Map the process's shared counter page (once) and return its address in the tracee. The
    /// process must have a stopped thread to run the injected calls.
    pub fn map_shared_counters(&mut self, pid: Pid) -> Result<u64> {
        let p = self.proc_mut(pid)?;
        if let Some(s) = &p.aspace.shared {
            return Ok(s.at);
        }
        let tid = super::displaced::injection_thread(p).ok_or(Error::NoThread(Tid(pid.0)))?;
        let mem = SharedMem::create("xol-counters", COUNTERS_LEN).map_err(Error::Io)?;
        // Right after the slot area when there is one (pad code there reaches it RIP-relative),
        // else beside where the slot area goes: far from the program's own mappings.
        let hint = p.aspace.slots.area().map_or(DEFAULT_HINT, |(base, len)| base + len);
        let at = super::displaced::map_shared(&p.aspace.mem, tid, &mem.path(), mem.len() as u64, hint)
            .map_err(Error::from)?;
        p.aspace.shared = Some(Shared { mem, at });
        Ok(at)
    }

    /// The value of shared counter `index` of `pid`, read without ptrace.
    pub fn shared_counter(&self, pid: Pid, index: usize) -> Option<u64> {
        let s = self.procs.get(&pid)?.aspace.shared.as_ref()?;
        Some(s.mem.counter(index)?.load(Ordering::Relaxed))
    }

    /// Add `n` to shared counter `index` of `pid` from xol's side.
    pub fn add_shared_counter(&self, pid: Pid, index: usize, n: u64) -> Option<()> {
        let s = self.procs.get(&pid)?.aspace.shared.as_ref()?;
        s.mem.counter(index)?.fetch_add(n, Ordering::Relaxed);
        Some(())
    }
}
