//! One process's address space as xol keeps it ([`AddressSpace`]: its memory, xol's breakpoint
//! insertions in it, the debug-register slots, the displaced-stepping slot area, the maps cache,
//! and what an exec does to them), and the insertions themselves.
//!
//! An [`Insertion`] is one `int3` xol planted, the original byte it covers (the *shadow*) and
//! its owners. [`Insertions`] keeps them per address and is the one place where shadows are
//! masked into what is read and written through, over any [`Memory`]: the tracee's
//! (`/proc/PID/mem`, [`crate::sys::mem::Mem`]), or a fake one in the unit tests below.
//!
//! Invariants:
//! - while armed, every insertion's byte in memory is `int3` and its shadow is the program's
//!   byte; disarmed (a vfork child shares the memory), every byte is the shadow;
//! - a read never shows one of our `int3`s, and a write over one updates its shadow and leaves
//!   the `int3` in place;
//! - an insertion has at least one owner; the original byte goes back only when the last
//!   owner leaves, so removing one owner's breakpoint never disarms another's.

use super::displaced::Slots;
use super::{io_mem, Error, HwSlot, Result};
use crate::maps::MapsCache;
use crate::sys::mem::Mem;
use crate::types::{Owner, Pid};
use std::collections::BTreeMap;

/// The x86 breakpoint instruction.
pub const INT3: u8 = 0xcc;

/// Memory of an address space, as bytes at addresses.
pub trait Memory {
    /// Read up to `buf.len()` bytes at `addr`; returns how many were readable (0 if none).
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<usize>;
    /// Write all of `data` at `addr`.
    fn write_at(&self, addr: u64, data: &[u8]) -> std::io::Result<()>;
}

impl Memory for crate::sys::mem::Mem {
    fn read_at(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.read(addr, buf)
    }

    fn write_at(&self, addr: u64, data: &[u8]) -> std::io::Result<()> {
        self.write(addr, data)
    }
}

/// The address space of one traced process.
#[derive(Debug)]
pub(super) struct AddressSpace {
    /// Its memory (`/proc/PID/mem`; reopened after an exec).
    pub mem: Mem,
    /// xol's `int3`s in it, with their shadows and owners.
    pub insertions: Insertions,
    /// Debug-register slots (hardware breakpoints and watchpoints), written into every thread.
    pub hw: [Option<HwSlot>; 4],
    /// The displaced-stepping slot area and the plan of every breakpointed address.
    pub slots: Slots,
    /// Address -> place-in-file translation (speculative, validated by generation).
    pub maps: MapsCache,
    /// The counters shared with xol (jump pads), once mapped.
    pub shared: Option<super::shared::Shared>,
}

impl AddressSpace {
    /// The address space of process `pid`, opened as `mem`, holding `insertions` and `slots`
    /// (empty, or a forked child's inheritance), with no debug register in use.
    pub fn new(pid: i32, mem: Mem, insertions: Insertions, slots: Slots) -> AddressSpace {
        AddressSpace { mem, insertions, hw: [None; 4], slots, maps: super::probes::new_maps(pid), shared: None }
    }

    /// An exec replaced the image: its insertions, slots and debug registers (the kernel clears
    /// them on exec) are gone. [`AddressSpace::reopen`] then opens the new image.
    pub fn forget_image(&mut self) {
        self.insertions.clear();
        self.slots.reset();
        self.hw = [None; 4];
        self.shared = None;
    }

    /// Open the memory and maps of `pid`'s new image after an exec.
    pub fn reopen(&mut self, pid: Pid) -> Result<()> {
        self.mem = Mem::open(pid.0).map_err(|source| Error::OpenMem { pid, source })?;
        if let Err(e) = self.maps.reopen() {
            log::warn!("maps of {pid} after exec: {e}");
        }
        Ok(())
    }
}

/// One `int3` in one address space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Insertion {
    /// The byte the `int3` replaced.
    pub shadow: u8,
    /// Who holds it; the byte goes back when the last owner leaves.
    pub owners: Vec<Owner>,
}

/// What [`Insertions::remove`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removal {
    /// The owner held no insertion at that address: nothing changed.
    NotHeld,
    /// One hold was dropped; other holds keep the `int3` planted.
    StillHeld,
    /// The last owner left: the insertion is gone and the original byte is back.
    Gone,
}

/// A write into a forked child's memory by [`Insertions::for_forked_child`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChildWrite {
    /// Putting back the original byte of an insertion the child does not keep.
    Scrub,
    /// Writing a kept `int3` again.
    Rearm,
}

/// The insertions of one address space, by address.
#[derive(Debug, Default)]
pub struct Insertions {
    map: BTreeMap<u64, Insertion>,
    /// The `int3`s are out of memory for now (a vfork child shares it); the insertions stay.
    disarmed: bool,
}

impl Insertions {
    /// Insertions a forked child inherits (its copy of memory holds them armed).
    pub fn inherited(map: BTreeMap<u64, Insertion>) -> Insertions {
        Insertions { map, disarmed: false }
    }

    /// The insertion at `addr`.
    pub fn get(&self, addr: u64) -> Option<&Insertion> {
        self.map.get(&addr)
    }

    /// True if there is an insertion at `addr` (armed or not).
    pub fn contains(&self, addr: u64) -> bool {
        self.map.contains_key(&addr)
    }

    /// True if an `int3` of ours is in memory at `addr` now.
    pub fn planted(&self, addr: u64) -> bool {
        !self.disarmed && self.map.contains_key(&addr)
    }

    /// False while the `int3`s are taken out of memory ([`Insertions::set_armed`]).
    pub fn armed(&self) -> bool {
        !self.disarmed
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Every insertion, by address.
    pub fn iter(&self) -> impl Iterator<Item = (u64, &Insertion)> {
        self.map.iter().map(|(a, i)| (*a, i))
    }

    /// True if an insertion lies in `addr..end`.
    pub fn overlaps(&self, addr: u64, end: u64) -> bool {
        self.map.range(addr..end).next().is_some()
    }

    /// Forget every insertion without touching memory (an exec replaced the image).
    pub fn clear(&mut self) {
        self.map.clear();
        self.disarmed = false;
    }

    /// Put the shadows over `buf`, which holds memory read at `addr`.
    pub fn mask(&self, addr: u64, buf: &mut [u8]) {
        let end = addr.saturating_add(buf.len() as u64);
        for (a, i) in self.map.range(addr..end) {
            buf[(a - addr) as usize] = i.shadow;
        }
    }

    /// Read memory as the program wrote it, our `int3`s masked out. Returns how many bytes
    /// were readable.
    pub fn read(&self, mem: &impl Memory, addr: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = mem.read_at(addr, buf)?;
        self.mask(addr, &mut buf[..n]);
        Ok(n)
    }

    /// Write memory: a byte under one of our `int3`s updates the shadow and the `int3` stays.
    pub fn write(&mut self, mem: &impl Memory, addr: u64, data: &[u8]) -> Result<()> {
        let end = addr.saturating_add(data.len() as u64);
        let mut out = data.to_vec();
        for (a, i) in self.map.range_mut(addr..end) {
            let off = (a - addr) as usize;
            i.shadow = data[off];
            if !self.disarmed {
                out[off] = INT3;
            }
        }
        mem.write_at(addr, &out).map_err(io_mem(addr))
    }

    /// Add a hold of `owner` on an `int3` at `addr`, planting it (and keeping the byte it
    /// covers) if it is the first. Holding twice is counted twice. True if it is new.
    pub fn insert(&mut self, mem: &impl Memory, addr: u64, owner: Owner) -> Result<bool> {
        if let Some(ins) = self.map.get_mut(&addr) {
            ins.owners.push(owner);
            return Ok(false);
        }
        let mut b = [0u8];
        let n = mem.read_at(addr, &mut b).map_err(io_mem(addr))?;
        if n != 1 {
            return Err(Error::Mem { addr, source: std::io::Error::from_raw_os_error(libc::EIO) });
        }
        if !self.disarmed {
            mem.write_at(addr, &[INT3]).map_err(io_mem(addr))?;
        }
        self.map.insert(addr, Insertion { shadow: b[0], owners: vec![owner] });
        Ok(true)
    }

    /// Drop one hold of `owner` on the insertion at `addr`; the last one out puts the original
    /// byte back. (If that write fails, the insertion is gone all the same.)
    pub fn remove(&mut self, mem: &impl Memory, addr: u64, owner: Owner) -> Result<Removal> {
        let Some(ins) = self.map.get_mut(&addr) else { return Ok(Removal::NotHeld) };
        let Some(i) = ins.owners.iter().position(|o| *o == owner) else { return Ok(Removal::NotHeld) };
        ins.owners.remove(i);
        if !ins.owners.is_empty() {
            return Ok(Removal::StillHeld);
        }
        let shadow = ins.shadow;
        self.map.remove(&addr);
        if !self.disarmed {
            mem.write_at(addr, &[shadow]).map_err(io_mem(addr))?;
        }
        Ok(Removal::Gone)
    }

    /// Drop every hold of `owner` at `addr` without touching memory (the mapping it was in is
    /// gone). True if the insertion went with them.
    pub fn forget_owner(&mut self, addr: u64, owner: Owner) -> bool {
        let Some(ins) = self.map.get_mut(&addr) else { return false };
        ins.owners.retain(|o| *o != owner);
        if ins.owners.is_empty() {
            self.map.remove(&addr);
            return true;
        }
        false
    }

    /// Put every original byte back and forget the insertions (detach). Returns the writes
    /// that failed.
    pub fn remove_all(&mut self, mem: &impl Memory) -> Vec<(u64, std::io::Error)> {
        let map = std::mem::take(&mut self.map);
        let mut failed = Vec::new();
        if !self.disarmed {
            for (addr, i) in map {
                if let Err(e) = mem.write_at(addr, &[i.shadow]) {
                    failed.push((addr, e));
                }
            }
        }
        self.disarmed = false;
        failed
    }

    /// Take the `int3`s out of memory (keeping the insertions) or put them back.
    pub fn set_armed(&mut self, mem: &impl Memory, armed: bool) -> Result<()> {
        if self.disarmed != armed {
            return Ok(());
        }
        for (addr, i) in &self.map {
            let b = if armed { INT3 } else { i.shadow };
            mem.write_at(*addr, &[b]).map_err(io_mem(*addr))?;
        }
        self.disarmed = !armed;
        Ok(())
    }

    /// Put the original byte at `addr` back for an in-line step-over (the insertion stays).
    /// `None` if there is no insertion there.
    pub fn lift(&self, mem: &impl Memory, addr: u64) -> Option<Result<()>> {
        let shadow = self.map.get(&addr)?.shadow;
        Some(mem.write_at(addr, &[shadow]).map_err(io_mem(addr)))
    }

    /// Plant the `int3` at `addr` again after [`Insertions::lift`], if the insertion is still
    /// there and armed.
    pub fn replant(&self, mem: &impl Memory, addr: u64) -> std::io::Result<()> {
        if self.planted(addr) {
            mem.write_at(addr, &[INT3])?;
        }
        Ok(())
    }

    /// The insertions a forked child keeps, given `child`, its copy of this address space: each
    /// insertion with only the holds `keep` accepts; one left with none has its original byte
    /// put back in the child. With `rewrite`, the kept `int3`s are written into the child again
    /// (the copy may have been taken while another thread had a byte lifted). Returns the
    /// child's insertions and the writes that failed.
    pub fn for_forked_child(
        &self,
        child: &impl Memory,
        keep: impl Fn(&Owner) -> bool,
        rewrite: bool,
    ) -> (Insertions, Vec<(u64, ChildWrite, std::io::Error)>) {
        let mut map = BTreeMap::new();
        let mut failed = Vec::new();
        for (addr, ins) in &self.map {
            let owners: Vec<Owner> = ins.owners.iter().copied().filter(|o| keep(o)).collect();
            if owners.is_empty() {
                if let Err(e) = child.write_at(*addr, &[ins.shadow]) {
                    failed.push((*addr, ChildWrite::Scrub, e));
                }
            } else {
                map.insert(*addr, Insertion { shadow: ins.shadow, owners });
            }
        }
        if rewrite {
            for addr in map.keys() {
                if let Err(e) = child.write_at(*addr, &[INT3]) {
                    failed.push((*addr, ChildWrite::Rearm, e));
                }
            }
        }
        (Insertions::inherited(map), failed)
    }

    /// A copy of every insertion, for a vfork child that shares this memory.
    pub fn shared_copy(&self) -> Insertions {
        Insertions::inherited(self.map.clone())
    }

    /// Write every original byte into `mem`, another address space that holds a copy of this
    /// one (a forked child let go). Returns the writes that failed.
    pub fn scrub(&self, mem: &impl Memory) -> Vec<(u64, std::io::Error)> {
        let mut failed = Vec::new();
        for (addr, i) in &self.map {
            if let Err(e) = mem.write_at(*addr, &[i.shadow]) {
                failed.push((*addr, e));
            }
        }
        failed
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    const BASE: u64 = 0x1000;

    /// A page of fake memory at `BASE`; reads stop at its end, writes beyond it fail.
    struct FakeMem(RefCell<Vec<u8>>);

    impl FakeMem {
        fn new() -> FakeMem {
            FakeMem(RefCell::new((0..=255u8).collect()))
        }

        fn byte(&self, addr: u64) -> u8 {
            self.0.borrow()[(addr - BASE) as usize]
        }
    }

    impl Memory for FakeMem {
        fn read_at(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<usize> {
            let m = self.0.borrow();
            let Some(off) = addr.checked_sub(BASE).filter(|o| *o < m.len() as u64) else {
                return Err(std::io::Error::from_raw_os_error(libc::EIO));
            };
            let n = buf.len().min(m.len() - off as usize);
            buf[..n].copy_from_slice(&m[off as usize..off as usize + n]);
            Ok(n)
        }

        fn write_at(&self, addr: u64, data: &[u8]) -> std::io::Result<()> {
            let mut m = self.0.borrow_mut();
            let off = addr.checked_sub(BASE).map(|o| o as usize).filter(|o| o + data.len() <= m.len());
            let Some(off) = off else { return Err(std::io::Error::from_raw_os_error(libc::EIO)) };
            m[off..off + data.len()].copy_from_slice(data);
            Ok(())
        }
    }

    const GDB: Owner = Owner::Client(crate::types::ClientId(1));
    const PROBE: Owner = Owner::Probe(7);

    #[test]
    fn insert_plants_an_int3_and_keeps_the_original() {
        let mem = FakeMem::new();
        let mut ins = Insertions::default();
        assert!(ins.insert(&mem, BASE + 0x10, GDB).unwrap());
        assert_eq!(mem.byte(BASE + 0x10), INT3);
        assert_eq!(ins.get(BASE + 0x10).unwrap().shadow, 0x10);
        assert!(ins.planted(BASE + 0x10));
    }

    #[test]
    fn a_read_over_an_int3_returns_the_original_bytes() {
        let mem = FakeMem::new();
        let mut ins = Insertions::default();
        ins.insert(&mem, BASE + 0x10, GDB).unwrap();
        ins.insert(&mem, BASE + 0x13, PROBE).unwrap();
        let mut buf = [0u8; 8];
        assert_eq!(ins.read(&mem, BASE + 0x0e, &mut buf).unwrap(), 8);
        assert_eq!(buf, [0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15]);
        // A read that ends just before an insertion, or starts on one.
        let mut one = [0u8; 1];
        ins.read(&mem, BASE + 0x0f, &mut one).unwrap();
        assert_eq!(one, [0x0f]);
        ins.read(&mem, BASE + 0x13, &mut one).unwrap();
        assert_eq!(one, [0x13]);
        // The memory itself still holds the int3s.
        assert_eq!((mem.byte(BASE + 0x10), mem.byte(BASE + 0x13)), (INT3, INT3));
    }

    #[test]
    fn a_short_read_is_masked_only_where_it_read() {
        let mem = FakeMem::new();
        let mut ins = Insertions::default();
        ins.insert(&mem, BASE + 0xff, GDB).unwrap();
        let mut buf = [0xaa; 4];
        assert_eq!(ins.read(&mem, BASE + 0xfe, &mut buf).unwrap(), 2);
        assert_eq!(buf, [0xfe, 0xff, 0xaa, 0xaa]);
    }

    #[test]
    fn a_write_over_a_breakpoint_updates_the_shadow_and_keeps_the_int3() {
        let mem = FakeMem::new();
        let mut ins = Insertions::default();
        ins.insert(&mem, BASE + 0x21, GDB).unwrap();
        ins.write(&mem, BASE + 0x20, &[0x90, 0x91, 0x92]).unwrap();
        assert_eq!(mem.byte(BASE + 0x20), 0x90);
        assert_eq!(mem.byte(BASE + 0x21), INT3);
        assert_eq!(mem.byte(BASE + 0x22), 0x92);
        assert_eq!(ins.get(BASE + 0x21).unwrap().shadow, 0x91);
        let mut buf = [0u8; 3];
        ins.read(&mem, BASE + 0x20, &mut buf).unwrap();
        assert_eq!(buf, [0x90, 0x91, 0x92]);
        // Removing the breakpoint puts the written byte back, not the old one.
        assert_eq!(ins.remove(&mem, BASE + 0x21, GDB).unwrap(), Removal::Gone);
        assert_eq!(mem.byte(BASE + 0x21), 0x91);
    }

    #[test]
    fn two_owners_of_one_insertion() {
        let mem = FakeMem::new();
        let mut ins = Insertions::default();
        let at = BASE + 0x30;
        assert!(ins.insert(&mem, at, GDB).unwrap());
        assert!(!ins.insert(&mem, at, PROBE).unwrap());
        // The second insertion did not take the int3 for the original byte.
        assert_eq!(ins.get(at).unwrap().shadow, 0x30);
        assert_eq!(ins.remove(&mem, at, GDB).unwrap(), Removal::StillHeld);
        assert_eq!(mem.byte(at), INT3, "the other owner's breakpoint stays planted");
        assert!(ins.planted(at));
        assert_eq!(ins.remove(&mem, at, GDB).unwrap(), Removal::NotHeld);
        assert_eq!(ins.remove(&mem, at, PROBE).unwrap(), Removal::Gone);
        assert_eq!(mem.byte(at), 0x30, "the last owner out restores the original");
        assert!(!ins.contains(at));
    }

    #[test]
    fn one_owner_holding_twice_is_counted() {
        let mem = FakeMem::new();
        let mut ins = Insertions::default();
        let at = BASE + 0x40;
        ins.insert(&mem, at, PROBE).unwrap();
        ins.insert(&mem, at, PROBE).unwrap();
        assert_eq!(ins.remove(&mem, at, PROBE).unwrap(), Removal::StillHeld);
        assert_eq!(mem.byte(at), INT3);
        assert_eq!(ins.remove(&mem, at, PROBE).unwrap(), Removal::Gone);
        assert_eq!(mem.byte(at), 0x40);
    }

    #[test]
    fn disarmed_insertions_are_out_of_memory_but_kept() {
        let mem = FakeMem::new();
        let mut ins = Insertions::default();
        ins.insert(&mem, BASE + 0x50, GDB).unwrap();
        ins.set_armed(&mem, false).unwrap();
        assert_eq!(mem.byte(BASE + 0x50), 0x50);
        assert!(ins.contains(BASE + 0x50) && !ins.planted(BASE + 0x50));
        // Inserting and writing while disarmed leave the original bytes in memory.
        ins.insert(&mem, BASE + 0x51, GDB).unwrap();
        ins.write(&mem, BASE + 0x50, &[1, 2]).unwrap();
        assert_eq!((mem.byte(BASE + 0x50), mem.byte(BASE + 0x51)), (1, 2));
        ins.set_armed(&mem, true).unwrap();
        assert_eq!((mem.byte(BASE + 0x50), mem.byte(BASE + 0x51)), (INT3, INT3));
        let mut buf = [0u8; 2];
        ins.read(&mem, BASE + 0x50, &mut buf).unwrap();
        assert_eq!(buf, [1, 2]);
    }

    #[test]
    fn lift_replant_and_remove_all() {
        let mem = FakeMem::new();
        let mut ins = Insertions::default();
        ins.insert(&mem, BASE + 0x60, GDB).unwrap();
        ins.insert(&mem, BASE + 0x61, PROBE).unwrap();
        ins.lift(&mem, BASE + 0x60).unwrap().unwrap();
        assert_eq!(mem.byte(BASE + 0x60), 0x60);
        ins.replant(&mem, BASE + 0x60).unwrap();
        assert_eq!(mem.byte(BASE + 0x60), INT3);
        assert!(ins.lift(&mem, BASE + 0x70).is_none());
        assert!(ins.remove_all(&mem).is_empty());
        assert_eq!((mem.byte(BASE + 0x60), mem.byte(BASE + 0x61)), (0x60, 0x61));
        assert!(ins.is_empty());
    }

    #[test]
    fn a_forked_child_keeps_only_the_holds_it_inherits() {
        let mem = FakeMem::new();
        let mut ins = Insertions::default();
        ins.insert(&mem, BASE + 0x90, GDB).unwrap();
        ins.insert(&mem, BASE + 0x91, GDB).unwrap();
        ins.insert(&mem, BASE + 0x91, PROBE).unwrap();
        let child = FakeMem(RefCell::new(mem.0.borrow().clone()));
        // A byte lifted in the parent when the copy was taken (an in-line step elsewhere).
        child.write_at(BASE + 0x91, &[0x91]).unwrap();
        let (kept, failed) = ins.for_forked_child(&child, |o| *o == PROBE, true);
        assert!(failed.is_empty());
        assert!(!kept.contains(BASE + 0x90));
        assert_eq!(child.byte(BASE + 0x90), 0x90, "gdb's breakpoint is taken out of the child");
        assert_eq!(kept.get(BASE + 0x91).unwrap().owners, vec![PROBE]);
        assert_eq!(kept.get(BASE + 0x91).unwrap().shadow, 0x91);
        assert_eq!(child.byte(BASE + 0x91), INT3, "the probe's int3 is written again");
        assert_eq!((mem.byte(BASE + 0x90), mem.byte(BASE + 0x91)), (INT3, INT3));
        let shared = ins.shared_copy();
        assert_eq!(shared.get(BASE + 0x91).unwrap().owners, vec![GDB, PROBE]);
    }

    #[test]
    fn scrub_restores_a_copy() {
        let mem = FakeMem::new();
        let mut ins = Insertions::default();
        ins.insert(&mem, BASE + 0x80, GDB).unwrap();
        let child = FakeMem(RefCell::new(mem.0.borrow().clone()));
        assert_eq!(child.byte(BASE + 0x80), INT3);
        assert!(ins.scrub(&child).is_empty());
        assert_eq!(child.byte(BASE + 0x80), 0x80);
        assert_eq!(mem.byte(BASE + 0x80), INT3, "the parent keeps its breakpoint");
    }
}
