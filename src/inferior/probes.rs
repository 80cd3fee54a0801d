//! Probes in the core: registering and removing them in the shared table (`crate::probe`), and
//! arming per-file probes in every traced process that maps their file — at registration, after
//! an exec, when the dynamic linker reports a library loaded (its `r_brk` breakpoint), and in
//! forked children (whose memory is a copy, `int3`s included). Also counting probes (`monitor
//! count`): their hits are counted on the trap path ([`Inferior::probe_hits`]) without stopping
//! any other thread or reporting anything, and [`Inferior::probes`] lists every probe with its
//! plan and hits.
//!
//! Ordering: registration publishes the probe, then writes the `int3`s; removal restores the
//! bytes in every process, then unpublishes. An insertion carries one `Owner::Probe(id)` hold
//! per probe, beside gdb's and xol's own holds, so removing one never disarms another.

use super::{Error, Inferior, Result};
use crate::maps::MapsCache;
use crate::probe::{Consumer, Probe, Scope};
use crate::types::{FileId, FileSite, Owner, Pid, VirtAddr};
use std::sync::Arc;
use xol_arch::displaced::{Plan, PlanKind};

impl Inferior {
    /// The shared probe table (front-ends on other threads may read it).
    pub fn probe_table(&self) -> Arc<crate::probe::ProbeTable> {
        self.table.clone()
    }

    /// Register a probe and arm it. Returns its id.
    pub fn add_probe(&mut self, scope: Scope, consumer: Consumer, location: &str) -> Result<u32> {
        let id = self.table.next_id();
        let probe = self.table.publish(Probe { id, scope: scope.clone(), consumer, location: location.to_string() });
        let armed = match &scope {
            Scope::PerProcess { pid, addr } => self.insert_breakpoint(*pid, *addr, Owner::Probe(id)).map(|_| 1),
            Scope::Pending { .. } => {
                // Armed when a process maps a file of that name (r_brk, exec); perhaps one
                // already does.
                for pid in self.pids() {
                    if let Err(e) = self.ensure_rbrk(pid) {
                        log::warn!("watching the dynamic linker of {pid}: {e}");
                    }
                    if let Err(e) = self.rearm_file_probes(pid) {
                        log::warn!("arming probe {id} in {pid}: {e}");
                    }
                }
                Ok(0)
            }
            Scope::PerFile { .. } => {
                let mut n = 0;
                for pid in self.pids() {
                    if let Err(e) = self.ensure_rbrk(pid) {
                        log::warn!("watching the dynamic linker of {pid}: {e}");
                    }
                    match self.arm_file_probe(pid, &probe) {
                        Ok(k) => n += k,
                        Err(e) => log::warn!("arming probe {id} in {pid}: {e}"),
                    }
                }
                Ok(n)
            }
        };
        match armed {
            Ok(_) => Ok(id),
            Err(e) => {
                self.table.unpublish(id);
                Err(e)
            }
        }
    }

    /// Remove a probe: its bytes go back in every process first, then it is unpublished.
    /// False if there is no probe with this id.
    pub fn remove_probe(&mut self, id: u32) -> Result<bool> {
        if self.table.snapshot().get(id).is_none() {
            return Ok(false);
        }
        for pid in self.pids() {
            let addrs: Vec<u64> = match self.procs.get(&pid) {
                Some(p) => p
                    .aspace
                    .insertions
                    .iter()
                    .filter(|(_, i)| i.owners.contains(&Owner::Probe(id)))
                    .map(|(a, _)| a)
                    .collect(),
                None => continue,
            };
            for a in addrs {
                while self.remove_breakpoint(pid, VirtAddr(a), Owner::Probe(id))? {}
            }
        }
        self.table.unpublish(id);
        Ok(true)
    }

    /// Take a probe's `int3`s out of one process only (it stays published and armed
    /// elsewhere). False if the probe does not exist.
    pub fn disarm_probe_in(&mut self, pid: Pid, id: u32) -> Result<bool> {
        if self.table.snapshot().get(id).is_none() {
            return Ok(false);
        }
        for a in self.armed_at(pid, id) {
            while self.remove_breakpoint(pid, a, Owner::Probe(id))? {}
        }
        Ok(true)
    }

    /// Arm a published per-file probe in one process again (after [`Inferior::disarm_probe_in`]).
    pub fn rearm_probe_in(&mut self, pid: Pid, id: u32) -> Result<bool> {
        let Some(probe) = self.table.snapshot().get(id).cloned() else { return Ok(false) };
        self.arm_file_probe(pid, &probe)?;
        Ok(true)
    }

    /// Where a per-file probe is armed in `pid` (addresses).
    pub fn armed_at(&self, pid: Pid, id: u32) -> Vec<VirtAddr> {
        self.procs
            .get(&pid)
            .map(|p| {
                p.aspace
                    .insertions
                    .iter()
                    .filter(|(_, i)| i.owners.contains(&Owner::Probe(id)))
                    .map(|(a, _)| VirtAddr(a))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Translate an address of `pid` to a place in a file (the maps cache: cached translations
    /// are trusted only at the generation they were made at; otherwise the kernel is asked).
    pub fn file_site(&mut self, pid: Pid, addr: VirtAddr) -> Result<Option<(FileSite, Option<String>)>> {
        let p = self.proc_mut(pid)?;
        let m = p.aspace.maps.lookup(addr.0).map_err(|e| Error::Location(e.to_string()))?;
        Ok(m.and_then(|m| m.site_of(addr.0).map(|s| (s, m.path.clone()))))
    }

    /// Arm one per-file probe in `pid` wherever its file is mapped executable. Returns how many
    /// insertions it made (0 if the file is not mapped there, or already armed).
    pub(super) fn arm_file_probe(&mut self, pid: Pid, probe: &Probe) -> Result<usize> {
        let Scope::PerFile { site, .. } = probe.scope else { return Ok(0) };
        let p = self.proc_mut(pid)?;
        let maps = p.aspace.maps.mappings_of(site.file).map_err(|e| Error::Location(e.to_string()))?;
        let mut n = 0;
        for m in maps.iter().filter(|m| m.perms.exec) {
            let Some(addr) = m.addr_of(site.offset) else { continue };
            let p = self.proc_mut(pid)?;
            if p.aspace.insertions.get(addr).is_some_and(|i| i.owners.contains(&Owner::Probe(probe.id))) {
                continue;
            }
            self.insert_breakpoint(pid, VirtAddr(addr), Owner::Probe(probe.id))?;
            n += 1;
        }
        Ok(n)
    }

    /// The address space of `pid` changed (exec, a library loaded or unloaded): forget
    /// insertions of per-file probes whose file is no longer mapped there (the memory went with
    /// it, nothing to restore), and arm every per-file probe whose file is now mapped.
    pub(super) fn rearm_file_probes(&mut self, pid: Pid) -> Result<()> {
        let snap = self.table.snapshot();
        if !snap.has_per_file() {
            return Ok(());
        }
        let p = self.proc_mut(pid)?;
        p.aspace.maps.invalidate();
        let all = p.aspace.maps.all().map_err(|e| Error::Location(e.to_string()))?;
        // Insertions whose mapping is gone or now holds another file.
        let mut dead = Vec::new();
        for (addr, ins) in p.aspace.insertions.iter() {
            for o in &ins.owners {
                let Owner::Probe(id) = o else { continue };
                let Some(pr) = snap.get(*id) else { continue };
                let Scope::PerFile { site, .. } = pr.scope else { continue };
                let still = all.iter().any(|m| m.start <= addr && addr < m.end && m.site_of(addr) == Some(site));
                if !still {
                    dead.push((addr, *o));
                }
            }
        }
        for (addr, o) in dead {
            if p.aspace.insertions.forget_owner(addr, o) {
                p.aspace.slots.forget(addr);
            }
        }
        self.resolve_pending(pid, &all);
        let snap = self.table.snapshot();
        for pr in snap.per_file() {
            if let Err(e) = self.arm_file_probe(pid, pr) {
                log::warn!("arming probe {} in {pid}: {e}", pr.id);
            }
        }
        Ok(())
    }

    /// Pending probes whose file `pid` maps (`all`: its mappings) become per-file probes with
    /// the same id (published again, replacing the pending version); the caller arms them. A
    /// file that cannot take the probe (no such symbol, not an instruction start) leaves it
    /// pending, with the reason.
    fn resolve_pending(&mut self, pid: Pid, all: &[crate::maps::Mapping]) {
        let snap = self.table.snapshot();
        for pr in snap.pending() {
            let Scope::Pending { file, what, error } = &pr.scope else { continue };
            let found = all.iter().find_map(|m| {
                let path = m.path.as_deref().filter(|p| p.starts_with('/'))?;
                let named = crate::symbols::file_name_matches(path, file)
                    || (crate::symbols::may_have_soname(path, file)
                        && crate::symbols::read_file(std::path::Path::new(path))
                            .is_ok_and(|b| crate::symbols::soname(&b).as_deref() == Some(file.as_str())));
                (m.perms.exec && named).then_some((m.file?, path))
            });
            let Some((fid, path)) = found else { continue };
            let path = std::path::Path::new(path.strip_suffix(" (deleted)").unwrap_or(path));
            let placed = crate::symbols::read_file_id(path).and_then(|(b, (dev, ino))| {
                if (dev, ino) != (fid.dev, fid.ino) {
                    return Err(format!("{} changed on disk since process {pid} mapped it", path.display()));
                }
                crate::symbols::place_in_file(&b, what).map_err(|e| format!("{}: {e}", path.display()))
            });
            match placed {
                Ok(offset) => {
                    log::info!("probe {} ({}) resolved in {} of {pid}", pr.id, pr.location, path.display());
                    self.table.publish(Probe {
                        id: pr.id,
                        scope: Scope::PerFile { site: FileSite { file: fid, offset }, path: path.to_path_buf() },
                        consumer: pr.consumer,
                        location: pr.location.clone(),
                    });
                }
                Err(e) if error.as_deref() != Some(e.as_str()) => {
                    log::info!("probe {} ({}) stays pending: {e}", pr.id, pr.location);
                    self.table.publish(Probe {
                        id: pr.id,
                        scope: Scope::Pending { file: file.clone(), what: what.clone(), error: Some(e) },
                        consumer: pr.consumer,
                        location: pr.location.clone(),
                    });
                }
                Err(_) => {}
            }
        }
    }

    /// The mappings of `pid` (a full read of its maps).
    pub fn mappings(&mut self, pid: Pid) -> Result<Vec<crate::maps::Mapping>> {
        self.proc_mut(pid)?.aspace.maps.all().map_err(|e| Error::Location(e.to_string()))
    }

    /// The file (device, inode) at `path`.
    pub fn file_id(path: &std::path::Path) -> Result<FileId> {
        use std::os::unix::fs::MetadataExt;
        let md = std::fs::metadata(path).map_err(|e| Error::Location(format!("{}: {e}", path.display())))?;
        Ok(FileId { dev: md.dev(), ino: md.ino() })
    }

    /// Counters of the maps cache, summed over the traced processes (and those that ended).
    pub fn maps_stats(&self) -> crate::maps::MapsStats {
        let mut s = self.maps_ended;
        for p in self.procs.values() {
            s += p.aspace.maps.stats();
        }
        s
    }

    /// Is a hit here a client's, in a process the client debugs? (Then it stops and is
    /// reported; a forked child xol follows on its own only counts.)
    pub(super) fn reports_hit(&self, pid: Pid, owners: &[Owner]) -> bool {
        if self.procs.get(&pid).is_none_or(|p| p.followed) {
            return false;
        }
        let snap = self.table.snapshot();
        owners.iter().any(|o| match o {
            Owner::Client(_) => true,
            Owner::Probe(id) => snap.get(*id).is_some_and(|p| matches!(p.consumer, Consumer::Report(_))),
            Owner::Internal => false,
        })
    }
}

impl Inferior {
    /// After an exec (the new image is mapped, its libraries not yet): arm the per-file
    /// probes and watch the dynamic linker for libraries.
    pub(super) fn after_exec(&mut self, pid: Pid) -> Result<()> {
        if !self.table.snapshot().has_per_file() {
            return Ok(());
        }
        self.rearm_file_probes(pid)?;
        self.ensure_rbrk(pid)
    }

    /// Put xol's own breakpoint on the dynamic linker's `_dl_debug_state` (the `r_brk` it calls
    /// before and after every change to the library list), so libraries loaded or unloaded
    /// later get or lose their per-file probes. Nothing to do for a static program.
    pub(super) fn ensure_rbrk(&mut self, pid: Pid) -> Result<()> {
        let p = self.proc_mut(pid)?;
        if p.aspace.insertions.iter().any(|(_, i)| i.owners.contains(&Owner::Internal)) {
            return Ok(());
        }
        let auxv = crate::solib::parse_auxv(&crate::sys::proc::auxv(pid.0)?);
        let Some(base) =
            auxv.iter().find(|(k, _)| *k == crate::symbols::elf::AT_BASE).map(|(_, v)| *v).filter(|b| *b != 0)
        else {
            return Ok(());
        };
        let m = p.aspace.maps.lookup(base).map_err(|e| Error::Location(e.to_string()))?;
        let Some(path) = m.and_then(|m| m.path) else { return Ok(()) };
        let bytes = crate::symbols::read_file(std::path::Path::new(&path)).map_err(Error::Location)?;
        let Some(v) = crate::symbols::lookup(&bytes, "_dl_debug_state").map_err(|e| Error::Location(e.to_string()))?
        else {
            log::info!("{path} has no _dl_debug_state: libraries loaded later are not probed");
            return Ok(());
        };
        self.insert_breakpoint(pid, VirtAddr(base + v), Owner::Internal)
    }
}

/// A fresh maps cache for a process.
pub(super) fn new_maps(pid: i32) -> MapsCache {
    MapsCache::new(pid)
}

impl Inferior {
    /// Which termination signal (SIGINT, SIGTERM, SIGHUP) xol received, if any.
    pub fn terminate_signal(&self) -> Option<i32> {
        crate::sys::signals::terminate_requested()
    }

    /// True if the latched termination signal came from the terminal (so a program in xol's
    /// process group got it too).
    pub fn terminate_from_terminal(&self) -> bool {
        crate::sys::signals::terminate_from_terminal()
    }

    /// Forget a latched SIGINT/SIGTERM/SIGHUP `sig` (it was handled: e.g. a REPL's Ctrl-C).
    pub fn clear_terminate_signal(&self, sig: i32) -> bool {
        crate::sys::signals::clear_terminate(sig)
    }

    /// Send `sig` to a process xol no longer traces (after [`Inferior::detach`]): a signal that
    /// is meant for the program too (`xol count` passes its own SIGINT/SIGTERM on, as strace
    /// does).
    pub fn signal_untraced(&self, pid: Pid, sig: i32) -> Result<()> {
        if self.procs.contains_key(&pid) {
            return Err(Error::Location(format!("process {pid} is still traced")));
        }
        crate::sys::signals::kill(pid.0, sig)?;
        Ok(())
    }
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

impl Inferior {
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
                    for (a, i) in p.aspace.insertions.iter() {
                        if i.owners.contains(&Owner::Probe(pr.id)) {
                            armed.push((*pid, VirtAddr(a)));
                        }
                    }
                }
                let site = armed.first().and_then(|(pid, a)| self.procs.get(pid)?.aspace.slots.site(a.0));
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

    /// Count a breakpoint hit for every probe owning the insertion at `at`.
    pub(super) fn count_hit(&mut self, pid: Pid, tid: crate::sys::RawTid, at: u64) {
        let Some(p) = self.procs.get(&pid) else { return };
        let Some(ins) = p.aspace.insertions.get(at) else { return };
        for o in &ins.owners {
            if let Owner::Probe(id) = o {
                *self.hits.entry((*id, pid.0)).or_insert(0) += 1;
                if self.notices.sub.probe_hits {
                    if let Some(pr) = self.table.snapshot().get(*id) {
                        let consumer = pr.consumer;
                        let n =
                            super::notice::Notice::ProbeHit { probe: *id, consumer, pid, tid: crate::types::Tid(tid) };
                        self.notices.push(n);
                    }
                }
            }
        }
    }
}
