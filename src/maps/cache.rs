//! [`MapsCache`]: the per-process, generation-validated cache of mappings.
//!
//! The idea is the kernel's speculative VMA-to-uprobe lookup (Andrii Nakryiko's
//! `mmap_lock_speculation_{start,end}` series, and `PROCMAP_QUERY` run under RCU): an answer may
//! be reused only while nothing could have changed it. The kernel checks a sequence count of the
//! mm; a tracer cannot read that, but it sees every event that changes the address space of a
//! stopped tracee, so the core bumps our generation on each such event instead. An entry filled at
//! an older generation is never returned: it is asked for again.

use std::collections::BTreeMap;
use std::fs::File;

use super::parse::{file_id, parse_maps};
use super::{FileId, Mapping, MapsError, MapsStats, Perms};
use crate::sys::procmap::{self, QueryError, RawMapping};

/// Set this environment variable (to anything but `0` or the empty string) to make
/// [`MapsCache::new`] never use `PROCMAP_QUERY` and read `/proc/PID/maps` in full instead, as on
/// kernels before 6.11.
pub const NO_PROCMAP_QUERY_ENV: &str = "XOL_NO_PROCMAP_QUERY";

/// Lowest address of the kernel half on x86-64. The `[vsyscall]` gate page lives there; it is in
/// the text of `/proc/PID/maps` but not a VMA `PROCMAP_QUERY` reports.
const KERNEL_HALF: u64 = 0xffff_8000_0000_0000;

/// Above this many entries, entries of older generations are dropped.
const PRUNE_AT: usize = 4096;

/// How a [`MapsCache`] asks the kernel about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueryMode {
    /// `PROCMAP_QUERY` when the kernel has it (6.11+), else (remembered after the first
    /// `ENOTTY`/`EINVAL`) full reads.
    Auto,
    /// Always read and parse the whole of `/proc/PID/maps`.
    FullReads,
}

impl QueryMode {
    /// [`QueryMode::FullReads`] if [`NO_PROCMAP_QUERY_ENV`] is set (not to `0` or empty), else
    /// [`QueryMode::Auto`].
    pub fn from_env() -> QueryMode {
        match std::env::var_os(NO_PROCMAP_QUERY_ENV) {
            Some(v) if !v.is_empty() && v != "0" => QueryMode::FullReads,
            _ => QueryMode::Auto,
        }
    }
}

#[derive(Debug, Clone)]
struct Entry {
    mapping: Mapping,
    /// The generation the entry was filled at; it is valid only at that generation.
    generation: u64,
}

/// The mappings of one process, cached speculatively and validated by generation.
///
/// # Contract (what makes it sound)
///
/// A cached mapping is returned only if it was filled at the current [`generation`]; the
/// generation changes only when [`invalidate`] (or [`reopen`]) is called. So the answers are
/// right exactly when the core calls [`invalidate`] after **every** event that may change the
/// address space of the process, before the next lookup:
/// * the syscall-exit stop (or the result, if it is injected) of `mmap`, `munmap`, `mremap`,
///   `mprotect`, `pkey_mprotect`, `brk`, `shmat`, `shmdt`, `madvise` (`MADV_DONTNEED` etc. do
///   not change VMAs, but `MADV_GUARD_INSTALL`/merging may split them: be conservative),
///   `remap_file_pages`, `prctl(PR_SET_VMA, ...)` (names), `mseal`, `userfaultfd` registration;
/// * `execve`/`execveat` (the exec event): call [`reopen`] (the open maps file names the old
///   address space), which also invalidates;
/// * a new process (fork/vfork/clone without `CLONE_VM`): a new `MapsCache` for the child;
/// * the dynamic loader's `r_brk` breakpoint (a library loaded or unloaded) — implied by the
///   `mmap`/`munmap` above, but a tracer that does not stop on those syscalls must invalidate
///   here at least;
/// * any time the process ran without the tracer seeing its syscalls (after a plain continue
///   without syscall tracing, or while it was not stopped at all).
///
/// Threads share the address space, so one cache serves every thread of the process, and an
/// event in any thread invalidates it. Lookups while the process is running are answers about a
/// moment, not a state.
///
/// [`generation`]: MapsCache::generation
/// [`invalidate`]: MapsCache::invalidate
/// [`reopen`]: MapsCache::reopen
#[derive(Debug)]
pub struct MapsCache {
    pid: i32,
    /// The open `/proc/PID/maps` for `PROCMAP_QUERY` (opened at the first query).
    file: Option<File>,
    /// False when full reads are forced or the kernel said it has no `PROCMAP_QUERY`.
    use_query: bool,
    generation: u64,
    /// Disjoint mappings by start address, each tagged with its generation.
    entries: BTreeMap<u64, Entry>,
    /// The generation at which `entries` was filled from a full read: at that generation a
    /// miss means "no mapping" without asking.
    complete_at: Option<u64>,
    stats: MapsStats,
}

impl MapsCache {
    /// A cache for process `pid` (a thread-group id), empty. Uses `PROCMAP_QUERY` where the
    /// kernel has it unless [`NO_PROCMAP_QUERY_ENV`] says not to. Opens nothing yet.
    pub fn new(pid: i32) -> MapsCache {
        MapsCache::with_mode(pid, QueryMode::from_env())
    }

    /// A cache for `pid` with an explicit [`QueryMode`] (the environment is not consulted).
    pub fn with_mode(pid: i32, mode: QueryMode) -> MapsCache {
        MapsCache {
            pid,
            file: None,
            use_query: mode == QueryMode::Auto,
            generation: 0,
            entries: BTreeMap::new(),
            complete_at: None,
            stats: MapsStats::default(),
        }
    }

    /// The process.
    pub fn pid(&self) -> i32 {
        self.pid
    }

    /// The mode in effect now: [`QueryMode::FullReads`] if forced or if the kernel turned out
    /// not to have `PROCMAP_QUERY`.
    pub fn mode(&self) -> QueryMode {
        if self.use_query {
            QueryMode::Auto
        } else {
            QueryMode::FullReads
        }
    }

    /// The address space may have changed (exec, `mmap`/`munmap`/`mremap`/`mprotect` seen, a
    /// library loaded or unloaded): everything cached becomes unverified. O(1).
    pub fn invalidate(&mut self) {
        self.generation += 1;
    }

    /// The current generation (bumped by [`MapsCache::invalidate`]).
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Counters.
    pub fn stats(&self) -> MapsStats {
        self.stats
    }

    /// Reopen after exec (the open `/proc/PID/maps` names the old address space); also
    /// invalidates.
    pub fn reopen(&mut self) -> Result<(), MapsError> {
        self.invalidate();
        self.file = None;
        if self.use_query {
            self.file = Some(procmap::open(self.pid).map_err(|source| MapsError::Open { pid: self.pid, source })?);
        }
        Ok(())
    }

    /// The mapping containing `addr`, or `None` if no mapping does.
    ///
    /// Uses the cached mapping only if it was filled at the current generation; otherwise asks
    /// the kernel about this one address (one `PROCMAP_QUERY` ioctl on the open
    /// `/proc/PID/maps`), or, where that is unsupported, reads and parses `/proc/PID/maps` in
    /// full (which also answers later misses at this generation).
    pub fn lookup(&mut self, addr: u64) -> Result<Option<Mapping>, MapsError> {
        self.stats.lookups += 1;
        if let Some(m) = self.cached(addr).cloned() {
            self.stats.cache_hits += 1;
            return Ok(Some(m));
        }
        if self.complete_at == Some(self.generation) {
            self.stats.cache_hits += 1;
            return Ok(None);
        }
        if self.use_query {
            match self.query(addr)? {
                Some(Some(m)) => {
                    self.insert(m.clone());
                    return Ok(Some(m));
                }
                Some(None) if addr < KERNEL_HALF => return Ok(None),
                // The gate page, or a query that could not answer: read the text.
                Some(None) | None => {}
            }
        }
        self.refill()?;
        Ok(self.cached(addr).cloned())
    }

    /// The place in a file that `addr` is ([`MapsCache::lookup`] then [`Mapping::site_of`]).
    pub fn site_of(&mut self, addr: u64) -> Result<Option<super::FileSite>, MapsError> {
        Ok(self.lookup(addr)?.and_then(|m| m.site_of(addr)))
    }

    /// All mappings of `file`, in address order. Reads `/proc/PID/maps` in full (refilling the
    /// whole cache at the current generation) unless that was already done at this generation.
    /// Used to find where to arm a per-file probe.
    pub fn mappings_of(&mut self, file: FileId) -> Result<Vec<Mapping>, MapsError> {
        self.ensure_complete()?;
        Ok(self.current().filter(|m| m.file == Some(file)).cloned().collect())
    }

    /// All mappings, in address order. Reads `/proc/PID/maps` in full unless that was already
    /// done at the current generation.
    pub fn all(&mut self) -> Result<Vec<Mapping>, MapsError> {
        self.ensure_complete()?;
        Ok(self.current().cloned().collect())
    }

    /// The entry covering `addr` if it is of the current generation.
    fn cached(&self, addr: u64) -> Option<&Mapping> {
        let (_, e) = self.entries.range(..=addr).next_back()?;
        (e.generation == self.generation && e.mapping.contains(addr)).then_some(&e.mapping)
    }

    /// The mappings of the current generation.
    fn current(&self) -> impl Iterator<Item = &Mapping> {
        self.entries.values().filter(|e| e.generation == self.generation).map(|e| &e.mapping)
    }

    fn ensure_complete(&mut self) -> Result<(), MapsError> {
        if self.complete_at != Some(self.generation) {
            self.refill()?;
        }
        Ok(())
    }

    /// Ask the kernel about `addr`: `Some(answer)`, or `None` when the query cannot answer and
    /// the text must be read (unsupported — remembered —, or a name longer than `PATH_MAX`).
    fn query(&mut self, addr: u64) -> Result<Option<Option<Mapping>>, MapsError> {
        let mut reopened = false;
        loop {
            let file = match &mut self.file {
                Some(f) => f,
                none => {
                    let pid = self.pid;
                    none.insert(procmap::open(pid).map_err(|source| MapsError::Open { pid, source })?)
                }
            };
            self.stats.kernel_queries += 1;
            match procmap::query(file, addr, true) {
                Ok(raw) => return Ok(Some(raw.map(from_raw))),
                Err(QueryError::Unsupported(e)) => {
                    log::debug!("process {}: PROCMAP_QUERY unsupported ({e}); reading /proc/PID/maps", self.pid);
                    self.use_query = false;
                    self.file = None;
                    return Ok(None);
                }
                Err(QueryError::NameTooLong(_)) => return Ok(None),
                Err(QueryError::Gone(_)) if !reopened => {
                    // The open file names an address space that is gone: the process exec'd
                    // (the core should have called `reopen`) or exited. Anything cached is
                    // suspect: reopen (which invalidates) and ask once more.
                    log::debug!("process {}: maps file names a dead address space; reopening", self.pid);
                    self.reopen()?;
                    reopened = true;
                }
                Err(QueryError::Gone(_)) => return Err(MapsError::Gone { pid: self.pid }),
                Err(QueryError::Other(source)) => return Err(MapsError::Query { pid: self.pid, addr, source }),
            }
        }
    }

    /// Read and parse `/proc/PID/maps`; the whole cache becomes that, at the current generation.
    fn refill(&mut self) -> Result<(), MapsError> {
        self.stats.full_reads += 1;
        let text = procmap::read_maps(self.pid).map_err(|source| MapsError::Read { pid: self.pid, source })?;
        let maps = parse_maps(&text)?;
        self.entries.clear();
        for m in maps {
            self.insert(m);
        }
        self.complete_at = Some(self.generation);
        Ok(())
    }

    /// Record `m` at the current generation, dropping every entry it overlaps (those are of
    /// older generations: mappings of one generation are disjoint).
    fn insert(&mut self, m: Mapping) {
        // Entries are disjoint and sorted, so the ones overlapping `m` are the last few starting
        // before `m.end`.
        let overlapping: Vec<u64> =
            self.entries.range(..m.end).rev().take_while(|(_, e)| e.mapping.end > m.start).map(|(&s, _)| s).collect();
        for s in overlapping {
            self.entries.remove(&s);
        }
        if self.entries.len() >= PRUNE_AT {
            let g = self.generation;
            self.entries.retain(|_, e| e.generation == g);
        }
        self.entries.insert(m.start, Entry { mapping: m, generation: self.generation });
    }
}

/// A `PROCMAP_QUERY` answer as a [`Mapping`], field for field what the text says.
fn from_raw(r: RawMapping) -> Mapping {
    Mapping {
        start: r.start,
        end: r.end,
        perms: Perms {
            read: r.flags & procmap::VMA_READABLE != 0,
            write: r.flags & procmap::VMA_WRITABLE != 0,
            exec: r.flags & procmap::VMA_EXECUTABLE != 0,
            shared: r.flags & procmap::VMA_SHARED != 0,
        },
        offset: r.offset,
        file: file_id(r.dev_major, r.dev_minor, r.inode),
        path: r.name.map(|n| name_as_in_text(&n)),
    }
}

/// A VMA name from `PROCMAP_QUERY` as the text of `/proc/PID/maps` shows it: not UTF-8 bytes
/// become U+FFFD and a newline `\012` (the one character `seq_path` escapes there).
fn name_as_in_text(name: &[u8]) -> String {
    String::from_utf8_lossy(name).replace('\n', "\\012")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn anon(start: u64, end: u64) -> Mapping {
        Mapping { start, end, perms: Perms::default(), offset: 0, file: None, path: None }
    }

    fn file(start: u64, end: u64, ino: u64) -> Mapping {
        Mapping {
            start,
            end,
            perms: Perms { read: true, exec: true, ..Perms::default() },
            offset: 0,
            file: Some(FileId { dev: 0xfd01, ino }),
            path: Some(format!("/f{ino}")),
        }
    }

    /// A cache that never talks to the kernel (a pid that cannot exist), filled by hand.
    fn offline() -> MapsCache {
        MapsCache::with_mode(i32::MAX, QueryMode::FullReads)
    }

    #[test]
    fn hit_only_at_the_generation_filled() {
        let mut c = offline();
        c.insert(file(0x1000, 0x3000, 7));
        assert_eq!(c.cached(0x1000).map(|m| m.file), Some(Some(FileId { dev: 0xfd01, ino: 7 })));
        assert_eq!(c.cached(0x2fff).map(|m| m.start), Some(0x1000));
        assert!(c.cached(0x3000).is_none());
        assert!(c.cached(0xfff).is_none());
        let g = c.generation();
        c.invalidate();
        assert_eq!(c.generation(), g + 1);
        assert!(c.cached(0x1000).is_none(), "an entry of an older generation is never used");
        // A lookup now must go to the kernel, which (pid i32::MAX) fails: no stale answer.
        assert!(c.lookup(0x1000).is_err());
        assert_eq!(c.stats().cache_hits, 0);
        assert_eq!(c.stats().full_reads, 1);
    }

    /// The contract: without `invalidate` the cache keeps answering what it saw, even if the
    /// process replaced the mapping. Validity depends on the core invalidating on every
    /// address-space event.
    #[test]
    fn without_invalidate_the_old_answer_stands() {
        let mut c = offline();
        // File A at X. Then the process maps file B at X, and nobody tells the cache.
        c.insert(file(0x1000, 0x2000, 1));
        assert_eq!(c.lookup(0x1000).unwrap().unwrap().file.unwrap().ino, 1);
        assert_eq!(c.stats(), MapsStats { lookups: 1, cache_hits: 1, kernel_queries: 0, full_reads: 0 });
        c.invalidate();
        c.insert(file(0x1000, 0x2000, 2)); // what the kernel would now say
        assert_eq!(c.lookup(0x1000).unwrap().unwrap().file.unwrap().ino, 2);
    }

    #[test]
    fn insert_replaces_overlapping_entries() {
        let mut c = offline();
        c.insert(anon(0x1000, 0x2000));
        c.insert(anon(0x2000, 0x3000));
        c.insert(anon(0x3000, 0x4000));
        c.insert(anon(0x5000, 0x6000));
        c.invalidate();
        // A new mapping straddling the first three.
        c.insert(file(0x1800, 0x3800, 9));
        let starts: Vec<u64> = c.entries.keys().copied().collect();
        assert_eq!(starts, vec![0x1800, 0x5000]);
        assert_eq!(c.cached(0x1800).map(|m| m.end), Some(0x3800));
        assert!(c.cached(0x5000).is_none(), "kept, but stale");
        // Touching, not overlapping, is kept.
        c.insert(anon(0x3800, 0x5000));
        let starts: Vec<u64> = c.entries.keys().copied().collect();
        assert_eq!(starts, vec![0x1800, 0x3800, 0x5000]);
    }

    #[test]
    fn stale_entries_are_pruned() {
        let mut c = offline();
        for i in 0..PRUNE_AT as u64 {
            c.insert(anon(i * 0x1000, i * 0x1000 + 0x1000));
        }
        c.invalidate();
        c.insert(anon(0x1_0000_0000, 0x1_0000_1000));
        assert_eq!(c.entries.len(), 1);
    }

    #[test]
    fn names_match_the_text() {
        assert_eq!(name_as_in_text(b"/tmp/a\nb (deleted)"), "/tmp/a\\012b (deleted)");
        assert_eq!(name_as_in_text(b"/tmp/\xffx"), "/tmp/\u{fffd}x");
        assert_eq!(
            parse_maps(&format!("1000-2000 r--p 0 00:01 1 {}\n", name_as_in_text(b"/a\nb"))).unwrap()[0]
                .path
                .as_deref(),
            Some("/a\\012b")
        );
    }

    fn own_fn_addr() -> u64 {
        own_fn_addr as *const () as u64
    }

    #[test]
    fn steady_state_lookups_are_cache_hits() {
        let pid = std::process::id() as i32;
        let here = own_fn_addr();
        for mode in [QueryMode::Auto, QueryMode::FullReads] {
            let mut c = MapsCache::with_mode(pid, mode);
            let first = c.lookup(here).expect("lookup").expect("own text is mapped");
            assert!(first.contains(here) && first.perms.exec);
            let after_first = c.stats();
            for _ in 0..100 {
                assert_eq!(c.lookup(here).unwrap().as_ref(), Some(&first));
            }
            let s = c.stats();
            assert_eq!(s.lookups, 101);
            assert_eq!(s.cache_hits, 100);
            assert_eq!((s.kernel_queries, s.full_reads), (after_first.kernel_queries, after_first.full_reads));
            match c.mode() {
                QueryMode::Auto => assert_eq!((s.kernel_queries, s.full_reads), (1, 0)),
                QueryMode::FullReads => assert_eq!((s.kernel_queries, s.full_reads), (0, 1)),
            }
            // After invalidate, exactly one more trip to the kernel.
            c.invalidate();
            assert_eq!(c.lookup(here).unwrap().as_ref(), Some(&first));
            let s2 = c.stats();
            assert_eq!(s2.kernel_queries + s2.full_reads, s.kernel_queries + s.full_reads + 1);
            assert_eq!(s2.cache_hits, s.cache_hits);
        }
    }

    #[test]
    fn unmapped_addresses() {
        let pid = std::process::id() as i32;
        for mode in [QueryMode::Auto, QueryMode::FullReads] {
            let mut c = MapsCache::with_mode(pid, mode);
            assert_eq!(c.lookup(0).unwrap(), None);
            assert_eq!(c.lookup(0x7fff_ffff_ffff_0000).unwrap(), None);
        }
    }

    #[test]
    fn vsyscall_is_found_either_way() {
        let pid = std::process::id() as i32;
        let text = procmap::read_maps(pid).unwrap();
        let Some(gate) = parse_maps(&text).unwrap().into_iter().find(|m| m.path.as_deref() == Some("[vsyscall]"))
        else {
            return; // vsyscall=none
        };
        for mode in [QueryMode::Auto, QueryMode::FullReads] {
            let mut c = MapsCache::with_mode(pid, mode);
            assert_eq!(c.lookup(gate.start).unwrap().as_ref(), Some(&gate), "{mode:?}");
        }
    }

    #[test]
    fn query_and_text_agree_on_own_process() {
        let pid = std::process::id() as i32;
        let mut q = MapsCache::with_mode(pid, QueryMode::Auto);
        let mut t = MapsCache::with_mode(pid, QueryMode::FullReads);
        let here = own_fn_addr();
        let a = q.lookup(here).unwrap();
        let b = t.lookup(here).unwrap();
        assert_eq!(a, b);
        if q.mode() == QueryMode::Auto {
            assert_eq!(q.stats().kernel_queries, 1);
            assert_eq!(q.stats().full_reads, 0);
        }
    }

    #[test]
    fn gone_process_is_an_error() {
        let mut c = MapsCache::with_mode(i32::MAX, QueryMode::Auto);
        let e = c.lookup(0x1000).unwrap_err();
        assert!(e.is_gone(), "{e}");
        assert!(MapsCache::with_mode(i32::MAX, QueryMode::Auto).reopen().unwrap_err().is_gone());
    }
}
