//! Trapless counting probes (issue 13): a probe site's instructions replaced by a `jmp rel32`
//! into a pad that adds one to a counter in the page shared with xol (`shared`), runs the
//! relocated instructions and jumps back — no stop, no system call per hit. The pad's code and
//! the window rules are pure (`xol_arch::pad`); here: pad areas mapped within ±2 GiB of the
//! sites, counters, patching, masking (the patch is an `aspace::Patch`: reads show the
//! program's bytes), and the rules around them:
//! - patching happens with every thread of the process stopped and none inside the window
//!   (`JumpWindow::covers`); a probe whose site cannot take the jump keeps the trap plan, and
//!   `monitor probes` says why;
//! - removal (and detach, and xol's exit) puts the original bytes back with the process
//!   stopped; a thread inside a pad then runs on to the jump back, into the original code;
//! - a forked child gets the program's bytes back in its copy (`Insertions::for_forked_child`,
//!   `scrub`): jump probes are per-process; an exec drops them with the image;
//! - hits are the counters' values, read without ptrace, kept when the process ends.
//!
//! Not yet (issue 13): per-file probes on the jump plan (children need counters of their own),
//! collecting actions, moving threads out of a window instead of refusing.

use super::{Error, Inferior, Result};
use crate::probe::{Consumer, Probe, Scope};
use crate::types::{Owner, Pid, VirtAddr};
use xol_arch::pad::{self, PadAction};

/// Bytes of one pad area (pads of up to `MAX_PAD_LEN` bytes each, 16-byte aligned).
const AREA_LEN: u64 = 64 * 1024;
/// How far a pad may be from its site: a `rel32` reaches ±2 GiB; keep a margin for the area.
const REACH: u64 = (1 << 31) - 2 * AREA_LEN;

/// One jump-planned site.
#[derive(Debug, Clone)]
pub(super) struct Jump {
    /// The probe.
    pub probe: u32,
    /// Its counter in the shared page.
    pub counter: usize,
}

/// A process's pads: the areas mapped for them, the jump-planned sites, the next free counter.
#[derive(Debug, Default)]
pub(super) struct Pads {
    /// (base, used bytes) of each area of `AREA_LEN` bytes.
    areas: Vec<(u64, u64)>,
    /// Jump-planned sites by address.
    pub jumps: std::collections::BTreeMap<u64, Jump>,
    next_counter: usize,
}

/// What the pad of `j` has counted so far (a plain load from the shared page).
fn count_of(p: &super::Process, j: &Jump) -> u64 {
    p.aspace
        .shared
        .as_ref()
        .and_then(|s| s.mem.counter(j.counter))
        .map_or(0, |c| c.load(std::sync::atomic::Ordering::Relaxed))
}

fn distance(a: u64, b: u64) -> u64 {
    a.abs_diff(b)
}

impl Inferior {
    /// Register a counting probe at `addr` of `pid` on the jump plan if its site allows it
    /// (`func`: the start and length of the function holding it; `entries`: addresses inside
    /// it that other code reaches, never inside a window), else on the trap plan.
    /// Returns its id and, for the trap plan, why the jump was refused.
    pub fn add_jump_count_probe(
        &mut self,
        pid: Pid,
        addr: VirtAddr,
        func: (u64, u64),
        entries: &[u64],
        location: &str,
    ) -> Result<(u32, Option<String>)> {
        let id = self.table.next_id();
        self.table.publish(Probe {
            id,
            scope: Scope::PerProcess { pid, addr },
            consumer: Consumer::Count,
            location: location.to_string(),
        });
        match self.patch_jump(pid, addr.0, func, entries, id) {
            Ok(()) => {
                self.jump_plans.insert(id, None);
                Ok((id, None))
            }
            Err(why) => {
                log::info!("probe {id} at {addr}: trap plan ({why})");
                if let Err(e) = self.insert_breakpoint(pid, addr, Owner::Probe(id)) {
                    self.table.unpublish(id);
                    return Err(e);
                }
                self.jump_plans.insert(id, Some(why.clone()));
                Ok((id, Some(why)))
            }
        }
    }

    /// Put the jump plan at `site`, or say why not.
    fn patch_jump(
        &mut self,
        pid: Pid,
        site: u64,
        func: (u64, u64),
        entries: &[u64],
        id: u32,
    ) -> std::result::Result<(), String> {
        let p = self.procs.get_mut(&pid).ok_or("no such process")?;
        if !p.threads.values().all(|t| t.is_stopped()) {
            return Err("threads are running (jump patches are written with the process stopped)".into());
        }
        let mut code = vec![0u8; func.1 as usize];
        let n = p.aspace.insertions.read(&p.aspace.mem, func.0, &mut code).map_err(|e| e.to_string())?;
        code.truncate(n);
        let window = pad::plan_jump(site, &code, func.0, entries).map_err(|r| r.to_string())?;
        if p.aspace.insertions.overlaps(window.site, window.end())
            || p.aspace.insertions.patch_overlapping(window.site, window.end()).is_some()
        {
            return Err("a breakpoint or another patch is in the window".into());
        }
        for tid in p.threads.keys() {
            let rip = crate::sys::ptrace::get_regs(*tid).map_err(|e| e.to_string())?.rip;
            if window.covers(rip) {
                return Err(format!("thread {tid} is inside the window ({rip:#x})"));
            }
        }
        let tid = super::displaced::injection_thread(p).ok_or("no thread can run the area's mmap")?;
        // A pad area within reach of the site, with room.
        let need = pad::MAX_PAD_LEN as u64;
        let area = p.aspace.pads.areas.iter().position(|(base, used)| {
            used + need <= AREA_LEN && distance(base + used, site) < REACH && distance(base + AREA_LEN, site) < REACH
        });
        let area = match area {
            Some(i) => i,
            None => {
                let base = self.new_pad_area(pid, tid, site)?;
                let p = self.procs.get_mut(&pid).ok_or("no such process")?;
                p.aspace.pads.areas.push((base, 0));
                p.aspace.pads.areas.len() - 1
            }
        };
        let (base, used) = self.procs.get(&pid).ok_or("no such process")?.aspace.pads.areas[area];
        // The counter page, right after the first area when it can be (RIP-relative counts).
        if self.procs.get(&pid).is_some_and(|p| p.aspace.shared.is_none()) {
            self.map_shared_counters_at(pid, base + AREA_LEN).map_err(|e| e.to_string())?;
        }
        let p = self.procs.get_mut(&pid).ok_or("no such process")?;
        let counter = p.aspace.pads.next_counter;
        let shared = p.aspace.shared.as_ref().ok_or("no shared counters")?;
        if shared.mem.counter(counter).is_none() {
            return Err("no free counter in the shared page".into());
        }
        let counter_addr = shared.at + 8 * counter as u64;
        let entry = base + used;
        let pad = pad::build_pad(&window, entry, &PadAction::Count { counter_addr }).map_err(|r| r.to_string())?;
        p.aspace.mem.write(pad.entry, &pad.bytes).map_err(|e| format!("writing the pad at {entry:#x}: {e}"))?;
        p.aspace.insertions.add_patch(&p.aspace.mem, site, &pad.patch).map_err(|e| e.to_string())?;
        p.aspace.pads.areas[area].1 = (used + pad.len as u64).div_ceil(16) * 16;
        p.aspace.pads.next_counter += 1;
        log::info!("probe {id} at {site:#x}: jump plan, pad at {:#x} ({} bytes)", pad.entry, pad.len);
        p.aspace.pads.jumps.insert(site, Jump { probe: id, counter });
        Ok(())
    }

    /// Map a pad area within reach of `site`: in the free gap of the address space nearest to
    /// it, at the gap's end nearest to the site.
    fn new_pad_area(&mut self, pid: Pid, tid: crate::sys::RawTid, site: u64) -> std::result::Result<u64, String> {
        let maps = self.mappings(pid).map_err(|e| e.to_string())?;
        let mut spans: Vec<(u64, u64)> = maps.iter().map(|m| (m.start, m.end)).collect();
        spans.sort();
        let mut candidates = Vec::new();
        let lowest = 0x10000u64;
        let mut prev_end = lowest;
        for (start, end) in spans.iter().copied().chain(std::iter::once((0x7fff_ffff_f000, 0x7fff_ffff_f000))) {
            if start > prev_end && start - prev_end >= AREA_LEN + 2 * 4096 {
                // One page of distance from the neighbours on each side.
                let below = (start - 4096 - AREA_LEN) & !0xfff;
                let above = (prev_end + 4096 + 0xfff) & !0xfff;
                candidates.push(if distance(below, site) < distance(above, site) { below } else { above });
            }
            prev_end = prev_end.max(end);
        }
        candidates.retain(|c| distance(*c, site) < REACH && distance(c + AREA_LEN, site) < REACH);
        candidates.sort_by_key(|c| distance(*c, site));
        let p = self.procs.get(&pid).ok_or("no such process")?;
        for at in candidates.into_iter().take(4) {
            match super::displaced::map_code_at(&p.aspace.mem, tid, at, AREA_LEN) {
                Ok(true) => {
                    log::info!("pad area of {pid} at {at:#x} for {site:#x}");
                    return Ok(at);
                }
                Ok(false) => continue,
                Err(e) => return Err(format!("mapping a pad area: {e}")),
            }
        }
        Err(format!("no free room for a pad area within ±2 GiB of {site:#x}"))
    }

    /// Put the jump-planned probe at `site` of `pid` back on the trap plan (a breakpoint is
    /// wanted inside its window): the patch removed, the probe's `int3` at its site, its count
    /// so far kept.
    pub(super) fn jump_to_trap(&mut self, pid: Pid, site: u64) -> Result<()> {
        let p = self.proc_mut(pid)?;
        if !p.threads.values().all(|t| t.is_stopped()) {
            return Err(Error::Io(std::io::Error::other(
                "a breakpoint inside a jump-planned probe's window is inserted with the process stopped",
            )));
        }
        p.aspace.insertions.remove_patch(&p.aspace.mem, site)?;
        let Some(j) = p.aspace.pads.jumps.remove(&site) else { return Ok(()) };
        let n = count_of(p, &j);
        *self.hits.entry((j.probe, pid.0)).or_insert(0) += n;
        self.jump_plans.insert(j.probe, Some("a breakpoint was put inside its window".into()));
        self.insert_breakpoint(pid, VirtAddr(site), Owner::Probe(j.probe))
    }

    /// Take the jump patches of probe `id` out of every process (the process stopped).
    pub(super) fn remove_jumps(&mut self, id: u32) -> Result<()> {
        for (pid, p) in self.procs.iter_mut() {
            let sites: Vec<u64> = p.aspace.pads.jumps.iter().filter(|(_, j)| j.probe == id).map(|(s, _)| *s).collect();
            for site in sites {
                if !p.threads.values().all(|t| t.is_stopped()) {
                    return Err(Error::Io(std::io::Error::other(format!(
                        "process {pid} runs: a jump patch is removed with the process stopped"
                    ))));
                }
                p.aspace.insertions.remove_patch(&p.aspace.mem, site)?;
                if let Some(j) = p.aspace.pads.jumps.remove(&site) {
                    let n = count_of(p, &j);
                    *self.hits.entry((id, pid.0)).or_insert(0) += n;
                }
            }
        }
        Ok(())
    }

    /// Hits counted by jump pads of probe `id` in live processes.
    pub(super) fn jump_hits(&self, id: u32) -> Vec<(Pid, u64)> {
        let mut out = Vec::new();
        for (pid, p) in &self.procs {
            let n: u64 = p.aspace.pads.jumps.values().filter(|j| j.probe == id).map(|j| count_of(p, j)).sum();
            if p.aspace.pads.jumps.values().any(|j| j.probe == id) {
                out.push((*pid, n));
            }
        }
        out
    }

    /// A process is going away: keep what its pads counted.
    pub(super) fn bank_jump_hits(&mut self, pid: Pid, p: &super::Process) {
        for j in p.aspace.pads.jumps.values() {
            let n = count_of(p, j);
            *self.hits.entry((j.probe, pid.0)).or_insert(0) += n;
        }
    }

    /// The jump-planned sites of probe `id` (process, address), and why its jump plan was
    /// refused if it was.
    pub(super) fn jump_sites(&self, id: u32) -> (Vec<(Pid, VirtAddr)>, Option<String>) {
        let mut sites = Vec::new();
        for (pid, p) in &self.procs {
            sites.extend(p.aspace.pads.jumps.iter().filter(|(_, j)| j.probe == id).map(|(s, _)| (*pid, VirtAddr(*s))));
        }
        (sites, self.jump_plans.get(&id).cloned().flatten())
    }

    /// Whether probe `id` asked for the jump plan: `Some(None)` it has it, `Some(Some(why))`
    /// it was refused (trap plan), `None` it did not ask.
    pub fn jump_plan_of(&self, id: u32) -> Option<Option<String>> {
        self.jump_plans.get(&id).cloned()
    }
}
