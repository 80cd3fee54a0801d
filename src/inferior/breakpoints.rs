//! Breakpoint insertions per address space: the `int3` bytes xol wrote, the original bytes they
//! cover (the shadow), and who owns each one. Memory reads and writes pass through here so no
//! front-end ever sees an `int3` of ours, and a write over one updates the shadow instead.

use super::{io_mem, Error, Inferior, Result};
use crate::types::{Owner, Pid, VirtAddr};

/// The x86 breakpoint instruction.
pub const INT3: u8 = 0xcc;

/// One `int3` in one address space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insertion {
    /// The byte the `int3` replaced.
    pub shadow: u8,
    /// Who holds it; the byte goes back when the last owner leaves.
    pub owners: Vec<Owner>,
}

impl Inferior {
    /// Insert a breakpoint at `addr` for `owner`. Inserting twice for the same owner is counted.
    pub fn insert_breakpoint(&mut self, pid: Pid, addr: VirtAddr, owner: Owner) -> Result<()> {
        let p = self.proc_mut(pid)?;
        if let Some(ins) = p.insertions.get_mut(&addr.0) {
            ins.owners.push(owner);
            return Ok(());
        }
        let mut b = [0u8];
        let n = p.mem.read(addr.0, &mut b).map_err(io_mem(addr.0))?;
        if n != 1 {
            return Err(Error::Mem { addr: addr.0, source: std::io::Error::from_raw_os_error(libc::EIO) });
        }
        if !p.disarmed {
            p.mem.write(addr.0, &[INT3]).map_err(io_mem(addr.0))?;
        }
        p.insertions.insert(addr.0, Insertion { shadow: b[0], owners: vec![owner] });
        // Plan how threads will go past it (and give it a slot) now, while the process is
        // stopped: the trap path then only looks the plan up.
        let all_stopped = p.threads.values().all(|t| t.stopped);
        super::displace::prepare_site(p, addr.0, all_stopped);
        Ok(())
    }

    /// Remove one hold of `owner` on the breakpoint at `addr`. Returns false if it held none.
    pub fn remove_breakpoint(&mut self, pid: Pid, addr: VirtAddr, owner: Owner) -> Result<bool> {
        let p = self.proc_mut(pid)?;
        let Some(ins) = p.insertions.get_mut(&addr.0) else { return Ok(false) };
        let Some(i) = ins.owners.iter().position(|o| *o == owner) else { return Ok(false) };
        ins.owners.remove(i);
        if ins.owners.is_empty() {
            let shadow = ins.shadow;
            p.insertions.remove(&addr.0);
            // The code may change before a breakpoint comes back here (a library unloaded, a
            // JIT): plan it again then. Its slot stays, unused, for threads still inside.
            p.slots.forget(addr.0);
            if !p.disarmed {
                p.mem.write(addr.0, &[shadow]).map_err(io_mem(addr.0))?;
            }
        }
        Ok(true)
    }

    /// The insertions of a process (address, insertion).
    pub fn insertions(&self, pid: Pid) -> Vec<(VirtAddr, Insertion)> {
        self.procs
            .get(&pid)
            .map(|p| p.insertions.iter().map(|(a, i)| (VirtAddr(*a), i.clone())).collect())
            .unwrap_or_default()
    }

    /// Write every shadow byte back and forget the insertions (detach, exec).
    pub(super) fn remove_all_insertions(&mut self, pid: Pid) -> Result<()> {
        let p = self.proc_mut(pid)?;
        let ins = std::mem::take(&mut p.insertions);
        for addr in ins.keys() {
            p.slots.forget(*addr);
        }
        if !p.disarmed {
            for (addr, i) in ins {
                if let Err(e) = p.mem.write(addr, &[i.shadow]) {
                    log::warn!("restoring byte at {addr:#x} in {pid}: {e}");
                }
            }
        }
        p.disarmed = false;
        Ok(())
    }

    /// Take the `int3`s out of memory (keeping the insertions) or put them back.
    pub(super) fn set_armed(&mut self, pid: Pid, armed: bool) -> Result<()> {
        let p = self.proc_mut(pid)?;
        if p.disarmed != armed {
            return Ok(());
        }
        for (addr, i) in &p.insertions {
            let b = if armed { INT3 } else { i.shadow };
            p.mem.write(*addr, &[b]).map_err(io_mem(*addr))?;
        }
        p.disarmed = !armed;
        Ok(())
    }

    /// Read memory with xol's breakpoints masked out. Returns how many bytes were readable.
    pub fn read_memory(&self, pid: Pid, addr: VirtAddr, buf: &mut [u8]) -> Result<usize> {
        let p = self.proc(pid)?;
        let n = p.mem.read(addr.0, buf).map_err(io_mem(addr.0))?;
        let end = addr.0.saturating_add(n as u64);
        for (a, i) in p.insertions.range(addr.0..end) {
            buf[(a - addr.0) as usize] = i.shadow;
        }
        Ok(n)
    }

    /// Write memory; bytes under xol's breakpoints update the shadow and the `int3` stays.
    pub fn write_memory(&mut self, pid: Pid, addr: VirtAddr, data: &[u8]) -> Result<()> {
        let p = self.proc_mut(pid)?;
        let end = addr.0.saturating_add(data.len() as u64);
        let mut out = data.to_vec();
        for (a, i) in p.insertions.range_mut(addr.0..end) {
            let off = (a - addr.0) as usize;
            i.shadow = data[off];
            if !p.disarmed {
                out[off] = INT3;
            }
        }
        // Instructions under breakpoints may have changed: plan them again on their next hit.
        p.slots.forget_overlapping(addr.0, end);
        p.mem.write(addr.0, &out).map_err(io_mem(addr.0))
    }
}

/// Remove every one of `insertions`' bytes from a forked child's copy of the address space.
pub(super) fn scrub_child(mem: &crate::sys::mem::Mem, insertions: &std::collections::BTreeMap<u64, Insertion>) {
    for (addr, i) in insertions {
        if let Err(e) = mem.write(*addr, &[i.shadow]) {
            log::warn!("removing breakpoint at {addr:#x} from a forked child: {e}");
        }
    }
}
