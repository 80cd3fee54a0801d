//! The probe table: every probe xol holds, shared by all front-ends and read on the trap path
//! without a lock.
//!
//! RCU style, with `arc-swap`: readers take a snapshot (`ProbeTable::snapshot`, an atomic load
//! of an `Arc`), writers build the next version and publish it with one atomic swap. Each probe
//! is reference-counted (`Arc<Probe>`): a trap handler that found a probe in a snapshot keeps it
//! alive while it uses it, even if the probe is unpublished meanwhile (seed 002's lesson: never
//! free what a concurrent handler may hold); it is freed when the last snapshot and handler
//! drop it.
//!
//! Ordering with the `int3`s (done by the core, which owns the processes): registration
//! **publishes first, then writes the `int3`s**; unregistration **restores the bytes first, then
//! unpublishes**. A trap at an address whose probe is already gone finds no insertion and an
//! original byte in memory: a stale trap, rewound and resumed, never delivered as a SIGTRAP.
//!
//! A probe is either **per-file** (a [`FileSite`]: armed in every traced process that maps the
//! file, forked children, exec'd programs and libraries loaded later included) or
//! **per-process** (an address in one address space). Who consumes its hits is its [`Consumer`].

use crate::types::{ClientId, FileSite, Pid, VirtAddr};
use arc_swap::ArcSwap;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// Where a probe applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// A place in a file, in every traced process that maps it.
    PerFile {
        /// The place.
        site: FileSite,
        /// The file's path when the probe was made (for display; identity is the FileSite).
        path: PathBuf,
    },
    /// A per-file probe whose file is not mapped yet, named by a short name (`libc.so.6`, as
    /// gdb names shared libraries): made a [`Scope::PerFile`] probe, with the same id, when a
    /// traced process maps a file of that name (its basename, a path ending in `/NAME`, or its
    /// full path).
    Pending {
        /// The file as the user named it.
        file: String,
        /// What in the file: a symbol, or `0xOFFSET`.
        what: String,
        /// Why the last mapped file of that name could not take the probe (no such symbol,
        /// not an instruction start...), if it could not.
        error: Option<String>,
    },
    /// An address in one process.
    PerProcess {
        /// The process.
        pid: Pid,
        /// The address.
        addr: VirtAddr,
    },
}

/// What a hit does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consumer {
    /// Count it; stop nothing.
    Count,
    /// A client's breakpoint made per-file: report it (stop) when it is hit in a process the
    /// client debugs; elsewhere (a forked child xol follows on its own) count it.
    Report(ClientId),
}

/// One probe.
#[derive(Debug)]
pub struct Probe {
    /// Its id (the insertions' `Owner::Probe(id)`).
    pub id: u32,
    /// Where it applies.
    pub scope: Scope,
    /// What consumes its hits.
    pub consumer: Consumer,
    /// The location as the user gave it.
    pub location: String,
}

impl Probe {
    /// True for per-file probes (pending ones included).
    pub fn per_file(&self) -> bool {
        matches!(self.scope, Scope::PerFile { .. } | Scope::Pending { .. })
    }

    /// True for a per-file probe waiting for its file to be mapped.
    pub fn pending(&self) -> bool {
        matches!(self.scope, Scope::Pending { .. })
    }
}

/// One published version of the table.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    probes: BTreeMap<u32, Arc<Probe>>,
}

impl Snapshot {
    /// The probe with this id.
    pub fn get(&self, id: u32) -> Option<&Arc<Probe>> {
        self.probes.get(&id)
    }

    /// Every probe, by id.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Probe>> {
        self.probes.values()
    }

    /// The per-file probes.
    pub fn per_file(&self) -> impl Iterator<Item = &Arc<Probe>> {
        self.probes.values().filter(|p| p.per_file())
    }

    /// The probes waiting for their file to be mapped.
    pub fn pending(&self) -> impl Iterator<Item = &Arc<Probe>> {
        self.probes.values().filter(|p| p.pending())
    }

    /// True if any per-file probe (pending or not) is published.
    pub fn has_per_file(&self) -> bool {
        self.probes.values().any(|p| p.per_file())
    }

    /// Number of probes.
    pub fn len(&self) -> usize {
        self.probes.len()
    }

    /// True if there are none.
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }
}

/// The shared table. Cheap to clone a handle (`Arc<ProbeTable>`); `Send + Sync`.
#[derive(Debug)]
pub struct ProbeTable {
    current: ArcSwap<Snapshot>,
    next_id: std::sync::atomic::AtomicU32,
    /// Serialises writers (readers never take it).
    write: std::sync::Mutex<()>,
}

impl Default for ProbeTable {
    fn default() -> Self {
        ProbeTable {
            current: ArcSwap::from_pointee(Snapshot::default()),
            next_id: std::sync::atomic::AtomicU32::new(1),
            write: std::sync::Mutex::new(()),
        }
    }
}

impl ProbeTable {
    /// An empty table.
    pub fn new() -> ProbeTable {
        ProbeTable::default()
    }

    /// The current version, lock-free. Probes in it stay alive while the snapshot (or a clone
    /// of one of its `Arc<Probe>`) is held.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// A fresh probe id.
    pub fn next_id(&self) -> u32 {
        self.next_id.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    }

    /// Publish a probe (a new version with it added, or replacing the probe of the same id:
    /// a pending probe resolved). Returns the probe.
    pub fn publish(&self, probe: Probe) -> Arc<Probe> {
        let probe = Arc::new(probe);
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = Snapshot::clone(&self.current.load());
        next.probes.insert(probe.id, probe.clone());
        self.current.store(Arc::new(next));
        probe
    }

    /// Unpublish a probe (a new version without it). Returns it if it was there; it is freed
    /// when the last holder drops it.
    pub fn unpublish(&self, id: u32) -> Option<Arc<Probe>> {
        let _w = self.write.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = Snapshot::clone(&self.current.load());
        let gone = next.probes.remove(&id);
        if gone.is_some() {
            self.current.store(Arc::new(next));
        }
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::FileId;

    fn per_file(id: u32) -> Probe {
        Probe {
            id,
            scope: Scope::PerFile {
                site: FileSite { file: FileId { dev: 1, ino: 2 }, offset: 0x10 },
                path: "/x".into(),
            },
            consumer: Consumer::Count,
            location: "x".into(),
        }
    }

    #[test]
    fn publish_unpublish_and_snapshots_are_versions() {
        let t = ProbeTable::new();
        let before = t.snapshot();
        let id = t.next_id();
        t.publish(per_file(id));
        assert!(before.is_empty(), "an old snapshot does not change");
        let s = t.snapshot();
        assert!(s.get(id).is_some() && s.has_per_file());
        assert!(t.unpublish(id).is_some());
        assert!(t.unpublish(id).is_none());
        assert!(s.get(id).is_some(), "a held snapshot keeps the probe alive");
        assert!(t.snapshot().get(id).is_none());
    }

    #[test]
    fn a_handler_keeps_an_unpublished_probe_alive() {
        let t = ProbeTable::new();
        let p = t.publish(per_file(7));
        let held = t.snapshot().get(7).cloned().expect("published");
        drop(p);
        t.unpublish(7);
        assert_eq!(held.id, 7);
        assert_eq!(Arc::strong_count(&held), 1, "only the handler holds it now");
    }

    #[test]
    fn concurrent_readers_and_writers() {
        let t = Arc::new(ProbeTable::new());
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (t, stop) = (t.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut seen = 0u64;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let s = t.snapshot();
                        for p in s.iter() {
                            assert!(p.id > 0);
                            seen += 1;
                        }
                    }
                    seen
                })
            })
            .collect();
        for i in 0..2000u32 {
            let id = t.next_id();
            t.publish(per_file(id));
            if i % 2 == 0 {
                t.unpublish(id);
            }
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            r.join().expect("reader");
        }
        assert_eq!(t.snapshot().len(), 1000);
    }
}
