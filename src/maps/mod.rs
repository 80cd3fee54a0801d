//! Address -> place-in-file translation: which mapping of a process covers an address, and which
//! file and offset that address is ([`FileSite`], the same in every process mapping the file).
//!
//! Two parts:
//! * [`parse_maps`], pure: the text of `/proc/PID/maps` into [`Mapping`]s.
//! * [`MapsCache`], per process, *speculative and validated* in the way the kernel's uprobes
//!   resolve a VMA to an inode: a cached translation is trusted only at the **generation** it was
//!   filled at. Every address-space event the core sees (exec, `mmap`, `munmap`, `mremap`,
//!   `mprotect`, `brk`, a library loaded or unloaded, ...) must call [`MapsCache::invalidate`],
//!   which bumps the generation in O(1); the first lookup of each address after that goes to the
//!   kernel again (one `PROCMAP_QUERY` ioctl on Linux 6.11+, else a full read of
//!   `/proc/PID/maps`). Between two events, lookups are answered from the cache.
//!
//! The cache can only be as right as the events it is told about: see [`MapsCache`] for the
//! contract. All kernel access goes through `crate::sys::procmap`.

mod cache;
mod parse;

pub use cache::{MapsCache, QueryMode, NO_PROCMAP_QUERY_ENV};
pub use parse::parse_maps;

pub use crate::types::{FileId, FileSite};

use std::fmt;

/// Protection and sharing of a mapping: the `rwxp` / `rwxs` column of `/proc/PID/maps`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Perms {
    /// Readable (`r`).
    pub read: bool,
    /// Writable (`w`).
    pub write: bool,
    /// Executable (`x`).
    pub exec: bool,
    /// Shared (`s`, `VM_MAYSHARE`) rather than private copy-on-write (`p`).
    pub shared: bool,
}

impl Perms {
    /// Parse the 4-character column (`r-xp`, `rw-s`, `---p`, ...).
    pub fn parse(s: &str) -> Option<Perms> {
        let b = s.as_bytes();
        if b.len() != 4 {
            return None;
        }
        let flag = |c: u8, yes: u8| match c {
            c if c == yes => Some(true),
            b'-' => Some(false),
            _ => None,
        };
        let shared = match b[3] {
            b's' => true,
            b'p' => false,
            _ => return None,
        };
        Some(Perms { read: flag(b[0], b'r')?, write: flag(b[1], b'w')?, exec: flag(b[2], b'x')?, shared })
    }
}

impl fmt::Display for Perms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |on: bool, ch: char| if on { ch } else { '-' };
        write!(
            f,
            "{}{}{}{}",
            c(self.read, 'r'),
            c(self.write, 'w'),
            c(self.exec, 'x'),
            if self.shared { 's' } else { 'p' }
        )
    }
}

/// One mapping (VMA) of a process, as `/proc/PID/maps` or `PROCMAP_QUERY` describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// Protection and sharing.
    pub perms: Perms,
    /// File offset of `start` (0 for anonymous memory).
    pub offset: u64,
    /// The backing file; `None` for anonymous memory (device and inode both 0, as for
    /// `[heap]`, `[stack]`, `[vdso]`, `[vsyscall]`, `[anon:NAME]` and nameless mappings).
    /// Shared anonymous memory and memfds are files (of the shmem file system).
    pub file: Option<FileId>,
    /// The name exactly as `/proc/PID/maps` shows it: a path (possibly ending in
    /// ` (deleted)`; a newline in it shown as `\012`), `[heap]`, `[vdso]`, `[anon:NAME]`, ...;
    /// `None` when the line has no name.
    pub path: Option<String>,
}

/// What the kernel appends to the path of a file that was unlinked (or replaced) after it was
/// mapped.
const DELETED_SUFFIX: &str = " (deleted)";

impl Mapping {
    /// True if `addr` is inside this mapping.
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }

    /// Size in bytes.
    pub fn len(&self) -> u64 {
        self.end - self.start
    }

    /// True for an empty range (never produced by the kernel).
    pub fn is_empty(&self) -> bool {
        self.end <= self.start
    }

    /// The place in the file that `addr` is, if `addr` is in this mapping and it maps a file.
    pub fn site_of(&self, addr: u64) -> Option<FileSite> {
        let file = self.file?;
        self.contains(addr).then(|| FileSite { file, offset: self.offset + (addr - self.start) })
    }

    /// The address at which file offset `off` appears in this mapping, if it maps that part of
    /// its file (anonymous mappings map no file: `None`).
    pub fn addr_of(&self, off: u64) -> Option<u64> {
        self.file?;
        (self.offset <= off && off - self.offset < self.len()).then(|| self.start + (off - self.offset))
    }

    /// True if the kernel marked the file as deleted (the path ends in ` (deleted)`).
    pub fn is_deleted(&self) -> bool {
        self.file.is_some() && self.path.as_deref().is_some_and(|p| p.ends_with(DELETED_SUFFIX))
    }

    /// The path of the backing file without a ` (deleted)` mark; `None` for anonymous memory.
    pub fn file_path(&self) -> Option<&str> {
        self.file?;
        let p = self.path.as_deref()?;
        Some(p.strip_suffix(DELETED_SUFFIX).unwrap_or(p))
    }
}

impl fmt::Display for Mapping {
    /// The mapping as a `/proc/PID/maps` line (without the column padding).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (maj, min, ino) = match self.file {
            Some(id) => (libc::major(id.dev), libc::minor(id.dev), id.ino),
            None => (0, 0, 0),
        };
        write!(f, "{:08x}-{:08x} {} {:08x} {maj:02x}:{min:02x} {ino}", self.start, self.end, self.perms, self.offset)?;
        if let Some(p) = &self.path {
            write!(f, " {p}")?;
        }
        Ok(())
    }
}

/// Counters of a [`MapsCache`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapsStats {
    /// Calls of [`MapsCache::lookup`].
    pub lookups: u64,
    /// Lookups answered from the cache (filled at the current generation).
    pub cache_hits: u64,
    /// `PROCMAP_QUERY` ioctls issued.
    pub kernel_queries: u64,
    /// Full reads (and parses) of `/proc/PID/maps`.
    pub full_reads: u64,
}

impl std::ops::AddAssign for MapsStats {
    fn add_assign(&mut self, o: MapsStats) {
        self.lookups += o.lookups;
        self.cache_hits += o.cache_hits;
        self.kernel_queries += o.kernel_queries;
        self.full_reads += o.full_reads;
    }
}

/// Why a translation failed.
#[derive(Debug, thiserror::Error)]
pub enum MapsError {
    /// A line of `/proc/PID/maps` text that does not have the kernel's format.
    #[error("line {line} of the maps text: {what}: {text:?}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// The line.
        text: String,
        /// What is wrong with it.
        what: &'static str,
    },
    /// `/proc/PID/maps` could not be opened (no such process, or not allowed).
    #[error("opening /proc/{pid}/maps: {source}")]
    Open {
        /// The process.
        pid: i32,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// Reading `/proc/PID/maps` failed.
    #[error("reading /proc/{pid}/maps: {source}")]
    Read {
        /// The process.
        pid: i32,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The `PROCMAP_QUERY` ioctl failed for a reason other than "unsupported".
    #[error("PROCMAP_QUERY {addr:#x} on /proc/{pid}/maps: {source}")]
    Query {
        /// The process.
        pid: i32,
        /// The address asked about.
        addr: u64,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The process has no address space any more (it exited).
    #[error("process {pid} has no address space (exited)")]
    Gone {
        /// The process.
        pid: i32,
    },
}

impl MapsError {
    /// True if the process is gone (exited, or never existed): an expected event for a tracer.
    pub fn is_gone(&self) -> bool {
        match self {
            MapsError::Gone { .. } => true,
            MapsError::Open { source, .. } | MapsError::Read { source, .. } | MapsError::Query { source, .. } => {
                matches!(source.raw_os_error(), Some(libc::ENOENT) | Some(libc::ESRCH))
            }
            MapsError::Parse { .. } => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file_map(start: u64, end: u64, offset: u64) -> Mapping {
        Mapping {
            start,
            end,
            perms: Perms { read: true, write: false, exec: true, shared: false },
            offset,
            file: Some(FileId { dev: 0xfd01, ino: 42 }),
            path: Some("/usr/lib/libc.so.6".into()),
        }
    }

    #[test]
    fn perms_round_trip() {
        for s in ["r-xp", "rw-s", "---p", "rwxs", "r--p", "-w-p", "--xp"] {
            assert_eq!(Perms::parse(s).map(|p| p.to_string()).as_deref(), Some(s));
        }
        for s in ["", "r-x", "r-xq", "x--p", "r-xpp", "R-xp"] {
            assert_eq!(Perms::parse(s), None, "{s}");
        }
    }

    #[test]
    fn covering_bounds() {
        let m = file_map(0x1000, 0x3000, 0x5000);
        assert!(!m.contains(0xfff));
        assert!(m.contains(0x1000));
        assert!(m.contains(0x2fff));
        assert!(!m.contains(0x3000));
        assert_eq!(m.len(), 0x2000);
        let id = m.file.unwrap();
        assert_eq!(m.site_of(0x1000), Some(FileSite { file: id, offset: 0x5000 }));
        assert_eq!(m.site_of(0x2fff), Some(FileSite { file: id, offset: 0x6fff }));
        assert_eq!(m.site_of(0x3000), None);
        assert_eq!(m.site_of(0xfff), None);
        assert_eq!(m.addr_of(0x5000), Some(0x1000));
        assert_eq!(m.addr_of(0x6fff), Some(0x2fff));
        assert_eq!(m.addr_of(0x7000), None);
        assert_eq!(m.addr_of(0x4fff), None);
        // site_of and addr_of are inverse.
        for a in [0x1000, 0x1234, 0x2fff] {
            assert_eq!(m.addr_of(m.site_of(a).unwrap().offset), Some(a));
        }
    }

    #[test]
    fn anonymous_has_no_site() {
        let m = Mapping { file: None, path: Some("[heap]".into()), offset: 0, ..file_map(0x1000, 0x2000, 0) };
        assert_eq!(m.site_of(0x1000), None);
        assert_eq!(m.addr_of(0), None);
        assert_eq!(m.file_path(), None);
        assert!(!m.is_deleted());
    }

    #[test]
    fn deleted_files() {
        let m = Mapping { path: Some("/tmp/a b (deleted)".into()), ..file_map(0x1000, 0x2000, 0) };
        assert!(m.is_deleted());
        assert_eq!(m.file_path(), Some("/tmp/a b"));
        let m = file_map(0x1000, 0x2000, 0);
        assert!(!m.is_deleted());
        assert_eq!(m.file_path(), Some("/usr/lib/libc.so.6"));
    }

    #[test]
    fn display_is_a_maps_line() {
        let m = file_map(0x1000, 0x3000, 0x5000);
        let line = m.to_string();
        assert_eq!(line, "00001000-00003000 r-xp 00005000 fd:01 42 /usr/lib/libc.so.6");
        assert_eq!(parse_maps(&line).unwrap(), vec![m]);
    }
}
