//! Breakpoint insertions of the inferior's processes: inserting and removing them for their
//! owners, masked memory reads and writes. The bookkeeping and the masking itself (shadows,
//! owners, arming) live in [`super::aspace`]; this is where they meet the processes and the
//! displaced-stepping slots (a site is planned when an insertion is made, forgotten when it
//! goes or its code is written).

use super::aspace::Removal;
use super::{io_mem, Inferior, Insertion, Result};
use crate::types::{Owner, Pid, VirtAddr};

impl Inferior {
    /// Insert a breakpoint at `addr` for `owner`. Inserting twice for the same owner is counted.
    pub fn insert_breakpoint(&mut self, pid: Pid, addr: VirtAddr, owner: Owner) -> Result<()> {
        let non_stop = self.non_stop;
        let p = self.proc_mut(pid)?;
        if !p.aspace.insertions.insert(&p.aspace.mem, addr.0, owner)? {
            return Ok(());
        }
        // Plan how threads will go past it (and give it a slot) now, while the process is
        // stopped: the trap path then only looks the plan up. In non-stop mode other threads
        // may run: the slot area's mmap is injected into a stopped thread all the same (a
        // syscall of one thread; the others do not see it).
        let can_inject = non_stop || p.threads.values().all(|t| t.is_stopped());
        super::displaced::prepare_site(p, addr.0, can_inject);
        Ok(())
    }

    /// Remove one hold of `owner` on the breakpoint at `addr`. Returns false if it held none.
    pub fn remove_breakpoint(&mut self, pid: Pid, addr: VirtAddr, owner: Owner) -> Result<bool> {
        let p = self.proc_mut(pid)?;
        let removal = p.aspace.insertions.remove(&p.aspace.mem, addr.0, owner);
        if !matches!(removal, Ok(Removal::NotHeld | Removal::StillHeld)) {
            // The last owner left (the insertion is gone even if its byte could not be put
            // back). The code may change before a breakpoint comes back here (a library
            // unloaded, a JIT): plan it again then. Its slot stays, unused, for threads still
            // inside.
            p.aspace.slots.forget(addr.0);
        }
        if !p.aspace.insertions.get(addr.0).is_some_and(|i| i.owners.contains(&owner)) {
            // Its conditions go with the owner's last hold.
            p.conditions.remove(&(addr.0, owner));
        }
        Ok(removal? != Removal::NotHeld)
    }

    /// The insertions of a process (address, insertion).
    pub fn insertions(&self, pid: Pid) -> Vec<(VirtAddr, Insertion)> {
        self.procs
            .get(&pid)
            .map(|p| p.aspace.insertions.iter().map(|(a, i)| (VirtAddr(a), i.clone())).collect())
            .unwrap_or_default()
    }

    /// Write every shadow byte back and forget the insertions (detach, exec).
    pub(super) fn remove_all_insertions(&mut self, pid: Pid) -> Result<()> {
        let p = self.proc_mut(pid)?;
        for (addr, _) in p.aspace.insertions.iter() {
            p.aspace.slots.forget(addr);
        }
        for (addr, e) in p.aspace.insertions.remove_all(&p.aspace.mem) {
            log::warn!("restoring byte at {addr:#x} in {pid}: {e}");
        }
        Ok(())
    }

    /// Take the `int3`s out of memory (keeping the insertions) or put them back.
    pub(super) fn set_armed(&mut self, pid: Pid, armed: bool) -> Result<()> {
        let p = self.proc_mut(pid)?;
        p.aspace.insertions.set_armed(&p.aspace.mem, armed)
    }

    /// Read memory with xol's breakpoints masked out. Returns how many bytes were readable.
    pub fn read_memory(&self, pid: Pid, addr: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        let p = self.proc(pid)?;
        p.aspace.insertions.read(&p.aspace.mem, addr.0, buf).map_err(io_mem(addr.0))
    }

    /// Write memory; bytes under xol's breakpoints update the shadow and the `int3` stays.
    pub fn write_memory(&mut self, pid: Pid, addr: VirtAddr, data: &[u8]) -> Result<()> {
        let p = self.proc_mut(pid)?;
        let end = addr.0.saturating_add(data.len() as u64);
        // Instructions under breakpoints may have changed: plan them again on their next hit.
        p.aspace.slots.forget_overlapping(addr.0, end);
        p.aspace.insertions.write(&p.aspace.mem, addr.0, data)
    }
}
