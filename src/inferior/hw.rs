//! Hardware breakpoints and watchpoints with the x86 debug registers DR0-DR3 (addresses), DR6
//! (which one fired) and DR7 (enable, access type, length). Slots are per process and applied to
//! every thread, including threads created later (debug registers are not inherited by clone).

use super::{Error, Inferior, Process, Result};
use crate::sys::{ptrace, RawTid};
use crate::types::Pid;

/// What a debug-register slot watches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HwKind {
    /// Instruction execution (hardware breakpoint).
    Exec,
    /// Data writes.
    Write,
    /// Data reads (x86 can only watch reads together with writes).
    Read,
    /// Data reads or writes.
    Access,
}

/// One debug-register slot in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HwSlot {
    /// Aligned address of this piece.
    pub addr: u64,
    /// 1, 2, 4 or 8 bytes (1 for Exec).
    pub len: u64,
    /// Access kind.
    pub kind: HwKind,
    /// The address the front-end asked for (a region may span several slots).
    pub req_addr: u64,
    /// The length the front-end asked for.
    pub req_len: u64,
}

/// Split `addr..addr+len` into naturally aligned pieces of 1, 2, 4 or 8 bytes, or `None` if that
/// takes more than `max` pieces. Lazy and bounded: at most `max + 1` pieces are ever computed,
/// whatever the length (gdb may ask to watch a 64 MiB array, a hostile client 2^64 bytes), and the
/// addresses wrap around the top of the address space as the debug registers do (as gdbserver's
/// x86 code does). A zero length watches one byte.
pub fn split_region(addr: u64, len: u64, max: usize) -> Option<Vec<(u64, u64)>> {
    let mut out = Vec::with_capacity(max.min(4));
    let (mut a, mut left) = (addr, len.max(1));
    while left > 0 {
        if out.len() == max {
            return None;
        }
        let size = [8u64, 4, 2, 1].into_iter().find(|s| a % s == 0 && *s <= left).unwrap_or(1);
        out.push((a, size));
        a = a.wrapping_add(size);
        left -= size;
    }
    Some(out)
}

/// DR7 value for the slots.
pub fn dr7_for(slots: &[Option<HwSlot>; 4]) -> u64 {
    let mut dr7 = 0u64;
    for (i, s) in slots.iter().enumerate() {
        let Some(s) = s else { continue };
        let rw: u64 = match s.kind {
            HwKind::Exec => 0b00,
            HwKind::Write => 0b01,
            HwKind::Read | HwKind::Access => 0b11,
        };
        let len: u64 = match (s.kind, s.len) {
            (HwKind::Exec, _) | (_, 1) => 0b00,
            (_, 2) => 0b01,
            (_, 8) => 0b10,
            _ => 0b11,
        };
        dr7 |= 1 << (2 * i);
        dr7 |= (rw | (len << 2)) << (16 + 4 * i);
    }
    dr7
}

/// Write the process's slots into one stopped thread.
pub(super) fn apply(p: &Process, tid: RawTid) -> Result<()> {
    ptrace::set_debugreg(tid, 7, 0)?;
    for (i, s) in p.aspace.hw.iter().enumerate() {
        if let Some(s) = s {
            ptrace::set_debugreg(tid, i, s.addr)?;
        }
    }
    ptrace::set_debugreg(tid, 7, dr7_for(&p.aspace.hw))?;
    Ok(())
}

/// Which slot fired, from DR6 (and clear DR6). `None` if none did.
pub(super) fn take_hit(p: &Process, tid: RawTid) -> Option<HwSlot> {
    if p.aspace.hw.iter().all(|s| s.is_none()) {
        return None;
    }
    let dr6 = ptrace::get_debugreg(tid, 6).ok()?;
    let _ = ptrace::set_debugreg(tid, 6, 0);
    (0..4).find(|i| dr6 & (1 << i) != 0).and_then(|i| p.aspace.hw[i])
}

impl Inferior {
    /// Insert a hardware breakpoint (`Exec`) or watchpoint on `addr..addr+len`. Errors when the
    /// four debug registers do not suffice (gdb then falls back to software watchpoints).
    pub fn insert_hw(&mut self, pid: Pid, addr: u64, len: u64, kind: HwKind) -> Result<()> {
        let p = self.proc_mut(pid)?;
        let free = p.aspace.hw.iter().filter(|s| s.is_none()).count();
        let pieces =
            if kind == HwKind::Exec { (free > 0).then(|| vec![(addr, 1)]) } else { split_region(addr, len, free) };
        let Some(pieces) = pieces else {
            return Err(Error::NoDebugRegister { addr, len, free });
        };
        let before = p.aspace.hw;
        for (a, l) in pieces {
            if let Some(slot) = p.aspace.hw.iter_mut().find(|s| s.is_none()) {
                *slot = Some(HwSlot { addr: a, len: l, kind, req_addr: addr, req_len: len });
            }
        }
        if let Err(e) = self.apply_hw_all(pid) {
            // The kernel refused the address (e.g. above the user address space): take the
            // slots back, so a refused request holds no debug register.
            self.proc_mut(pid)?.aspace.hw = before;
            let _ = self.apply_hw_all(pid);
            return Err(e);
        }
        Ok(())
    }

    /// Remove a hardware breakpoint or watchpoint inserted with the same arguments.
    pub fn remove_hw(&mut self, pid: Pid, addr: u64, len: u64, kind: HwKind) -> Result<bool> {
        let p = self.proc_mut(pid)?;
        let mut found = false;
        for s in p.aspace.hw.iter_mut() {
            if matches!(s, Some(h) if h.req_addr == addr && h.req_len == len && h.kind == kind) {
                *s = None;
                found = true;
            }
        }
        if found {
            self.apply_hw_all(pid)?;
        }
        Ok(found)
    }

    /// Remove every hardware breakpoint and watchpoint of a process (its client went away).
    pub fn clear_hw(&mut self, pid: Pid) -> Result<()> {
        let p = self.proc_mut(pid)?;
        if p.aspace.hw.iter().all(|s| s.is_none()) {
            return Ok(());
        }
        p.aspace.hw = [None; 4];
        self.apply_hw_all(pid)
    }

    fn apply_hw_all(&mut self, pid: Pid) -> Result<()> {
        let p = self.proc_mut(pid)?;
        let tids: Vec<RawTid> = p.threads.keys().copied().collect();
        for tid in tids {
            match apply(p, tid) {
                Ok(()) => {
                    if let Some(t) = p.threads.get_mut(&tid) {
                        t.needs_dregs = false;
                    }
                }
                Err(Error::Sys(e)) if e.is_gone() => {
                    // Running (not stopped for us) or gone: apply at its next stop.
                    if let Some(t) = p.threads.get_mut(&tid) {
                        t.needs_dregs = true;
                    }
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_unaligned_regions() {
        assert_eq!(split_region(0x1000, 4, 4), Some(vec![(0x1000, 4)]));
        assert_eq!(split_region(0x1001, 4, 4), Some(vec![(0x1001, 1), (0x1002, 2), (0x1004, 1)]));
        assert_eq!(split_region(0x1000, 16, 4), Some(vec![(0x1000, 8), (0x1008, 8)]));
        assert_eq!(split_region(0x1006, 2, 4), Some(vec![(0x1006, 2)]));
        assert_eq!(split_region(0x1000, 0, 4), Some(vec![(0x1000, 1)]));
    }

    #[test]
    fn refuses_regions_that_need_more_pieces_than_free_registers() {
        assert_eq!(split_region(0x1000, 32, 4).map(|v| v.len()), Some(4));
        assert_eq!(split_region(0x1001, 32, 4), None);
        assert_eq!(split_region(0x1000, 16, 1), None);
        assert_eq!(split_region(0, u64::MAX, 4), None);
        assert_eq!(split_region(0x1000, 64 << 20, 4), None);
    }

    #[test]
    fn regions_wrap_around_the_top_of_the_address_space() {
        assert_eq!(split_region(0xffff_ffff_ffff_fffc, 8, 4), Some(vec![(0xffff_ffff_ffff_fffc, 4), (0, 4)]));
        assert_eq!(split_region(u64::MAX, 2, 4), Some(vec![(u64::MAX, 1), (0, 1)]));
    }

    #[test]
    fn dr7_encodes_kind_and_length() {
        let mut slots = [None; 4];
        slots[0] = Some(HwSlot { addr: 0, len: 4, kind: HwKind::Write, req_addr: 0, req_len: 4 });
        slots[2] = Some(HwSlot { addr: 0, len: 8, kind: HwKind::Access, req_addr: 0, req_len: 8 });
        let dr7 = dr7_for(&slots);
        assert_eq!(dr7 & 0xff, 0b0001_0001);
        assert_eq!((dr7 >> 16) & 0xf, 0b1101); // write, len 4
        assert_eq!((dr7 >> 24) & 0xf, 0b1011); // rw, len 8
        let mut exec = [None; 4];
        exec[1] = Some(HwSlot { addr: 0, len: 1, kind: HwKind::Exec, req_addr: 0, req_len: 1 });
        assert_eq!(dr7_for(&exec), 0b100);
    }
}
