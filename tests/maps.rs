//! Address -> file translation (`xol::maps::MapsCache`) against a real process whose mappings
//! change under it (fixture `remap`: file A mapped at X, then file B `MAP_FIXED` at X; or an exec).
//!
//! What is shown: after `invalidate()` (what the core calls on every address-space event) an
//! address whose mapping was replaced is never resolved to the old file; without it the cache
//! keeps its old answer (the contract: validity depends on the core's invalidations); the
//! `PROCMAP_QUERY` path and the `/proc/PID/maps` fallback return identical `Mapping`s, whose
//! `FileId`s equal `std::fs::metadata` of the files; after an exec the stale maps file is noticed.

mod support;

use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use support::*;
use xol::maps::{FileId, FileSite, MapsCache, QueryMode};

const T: Duration = Duration::from_secs(20);

/// The fixture running, with its file A and file B and the address X of A.
struct Remap {
    child: ChildGuard,
    out: LineReader,
    pid: i32,
    prog: PathBuf,
    a: PathBuf,
    b: PathBuf,
    x: u64,
    _dir: tempfile::TempDir,
}

fn file_id(p: &Path) -> FileId {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    FileId { dev: m.dev(), ino: m.ino() }
}

fn hex_after(line: &str, key: &str) -> u64 {
    let v = line.strip_prefix(key).unwrap_or_else(|| panic!("expected {key}..., got {line:?}"));
    u64::from_str_radix(v, 16).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

impl Remap {
    fn start() -> Remap {
        let prog = fixture("remap");
        let dir = tempfile::tempdir().expect("tempdir");
        // A name with spaces, to go through both parsers.
        let a = dir.path().join("file A with spaces");
        let b = dir.path().join("fileB");
        std::fs::write(&a, vec![b'A'; 0x3000]).unwrap();
        std::fs::write(&b, vec![b'B'; 0x2000]).unwrap();
        let mut child = ChildGuard::spawn(
            Command::new(&prog).arg(&a).arg(&b).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::inherit()),
        );
        let mut out = LineReader::new(child.stdout.take().unwrap());
        let line = out.wait_for("X=", T).unwrap();
        let x = hex_after(&line, "X=");
        let pid = child.pid() as i32;
        Remap { child, out, pid, prog, a, b, x, _dir: dir }
    }

    /// Send a command and wait for the line that answers it.
    fn command(&mut self, cmd: &str, answer: &str) -> String {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(format!("{cmd}\n").as_bytes()).unwrap();
        stdin.flush().unwrap();
        self.out.wait_for(answer, T).unwrap()
    }

    /// Tell the fixture to exit, and check that it did, cleanly.
    fn exit(mut self) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(b"exit\n").unwrap();
        stdin.flush().unwrap();
        let st = self.child.expect_exit(T);
        assert!(st.success(), "remap fixture: {}", describe_status(&st));
    }
}

/// True on Linux 6.11 or later (where `PROCMAP_QUERY` exists).
fn kernel_has_procmap_query() -> bool {
    let rel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let mut it = rel.trim().split(|c: char| !c.is_ascii_digit()).map(|s| s.parse::<u32>().unwrap_or(0));
    let (maj, min) = (it.next().unwrap_or(0), it.next().unwrap_or(0));
    (maj, min) >= (6, 11)
}

fn check_mode(c: &MapsCache, mode: QueryMode) {
    if mode == QueryMode::Auto && kernel_has_procmap_query() {
        assert_eq!(c.mode(), QueryMode::Auto, "PROCMAP_QUERY should work on this kernel");
    }
}

fn replaced_mapping(mode: QueryMode) {
    let mut f = Remap::start();
    let (ida, idb) = (file_id(&f.a), file_id(&f.b));
    let x = f.x;
    let mut c = MapsCache::with_mode(f.pid, mode);

    let m = c.lookup(x).unwrap().expect("X is mapped");
    assert_eq!((m.start, m.end, m.offset, m.file), (x, x + 0x2000, 0x1000, Some(ida)), "{m}");
    assert_eq!(m.path.as_deref(), Some(f.a.to_str().unwrap()));
    assert!(m.perms.read && !m.perms.write && !m.perms.exec && !m.perms.shared);
    assert_eq!(c.site_of(x + 0x1010).unwrap(), Some(FileSite { file: ida, offset: 0x2010 }));
    assert_eq!(m.addr_of(0x2010), Some(x + 0x1010));
    let before = c.stats();
    assert_eq!(before.lookups, 2);
    assert_eq!(before.cache_hits, 1, "the second address was in the mapping cached by the first");
    check_mode(&c, mode);

    f.command("remap", "remapped");

    // The contract: nobody told the cache, so it still says A. (The core must invalidate.)
    let stale = c.lookup(x).unwrap().unwrap();
    assert_eq!(stale.file, Some(ida));
    assert_eq!(c.stats().cache_hits, before.cache_hits + 1);
    assert_eq!(c.stats().kernel_queries + c.stats().full_reads, before.kernel_queries + before.full_reads);

    // The event is seen: from now on X is B, at every address of the old mapping.
    c.invalidate();
    for off in (0..0x2000).step_by(0x400) {
        let m = c.lookup(x + off).unwrap().expect("X is mapped");
        assert_eq!(m.file, Some(idb), "x+{off:#x} resolved to {m}");
        assert_eq!((m.start, m.end, m.offset), (x, x + 0x2000, 0));
        assert_eq!(m.path.as_deref(), Some(f.b.to_str().unwrap()));
        assert_eq!(m.site_of(x + off), Some(FileSite { file: idb, offset: off }));
    }
    let s = c.stats();
    assert_eq!(
        s.kernel_queries + s.full_reads,
        before.kernel_queries + before.full_reads + 1,
        "one trip to the kernel after invalidate, then hits: {s:?}"
    );
    assert!(c.mappings_of(ida).unwrap().is_empty());
    let of_b = c.mappings_of(idb).unwrap();
    assert_eq!(of_b.len(), 1);
    assert_eq!(of_b[0].start, x);
    check_mode(&c, mode);

    f.exit();
}

#[test]
fn replaced_mapping_never_resolves_to_the_old_file_procmap_query() {
    replaced_mapping(QueryMode::Auto);
}

#[test]
fn replaced_mapping_never_resolves_to_the_old_file_full_reads() {
    replaced_mapping(QueryMode::FullReads);
}

/// Every mapping of the process, looked up by `PROCMAP_QUERY` at its first and last byte, is
/// exactly what the text says.
fn assert_paths_agree(pid: i32) -> Vec<xol::maps::Mapping> {
    let mut text = MapsCache::with_mode(pid, QueryMode::FullReads);
    let all = text.all().unwrap();
    assert_eq!(text.stats().full_reads, 1);
    let mut q = MapsCache::with_mode(pid, QueryMode::Auto);
    for m in &all {
        assert_eq!(q.lookup(m.start).unwrap().as_ref(), Some(m));
        assert_eq!(q.lookup(m.end - 1).unwrap().as_ref(), Some(m));
        assert_eq!(text.lookup(m.end - 1).unwrap().as_ref(), Some(m));
    }
    if kernel_has_procmap_query() {
        assert_eq!(q.mode(), QueryMode::Auto);
        let s = q.stats();
        assert!(s.kernel_queries >= 1);
        // Only the [vsyscall] gate page (not a VMA) needs the text.
        let gates = all.iter().filter(|m| m.start >= 0xffff_8000_0000_0000).count() as u64;
        assert!(s.full_reads <= gates, "{s:?}");
    }
    assert_eq!(text.stats().full_reads, 1, "lookups at the generation of a full read are hits");
    all
}

#[test]
fn procmap_query_and_text_agree() {
    let mut f = Remap::start();
    let all = assert_paths_agree(f.pid);
    // The FileIds are what stat(2) says, for the program and for file A.
    let exe = file_id(&f.prog);
    assert!(all.iter().any(|m| m.file == Some(exe) && m.perms.exec), "no text of {}", f.prog.display());
    assert!(all.iter().any(|m| m.file == Some(file_id(&f.a)) && m.start == f.x));
    assert!(all.iter().any(|m| m.path.as_deref() == Some("[stack]")));

    // A deleted file: both say " (deleted)", and the FileId still is the file's.
    let ida = file_id(&f.a);
    std::fs::remove_file(&f.a).unwrap();
    let all = assert_paths_agree(f.pid);
    let m = all.iter().find(|m| m.start == f.x).unwrap();
    assert_eq!(m.file, Some(ida));
    assert!(m.is_deleted(), "{m}");
    assert_eq!(m.file_path(), Some(f.a.to_str().unwrap()));

    f.command("remap", "remapped");
    assert_paths_agree(f.pid);
    f.exit();
}

/// After an exec the open `/proc/PID/maps` names the dead address space. The core calls
/// `reopen()`; if it only invalidates, the cache notices (`ESRCH`) and reopens by itself.
#[test]
fn exec_reopen() {
    let mut f = Remap::start();
    let idb = file_id(&f.b);
    let x = f.x;
    let mut explicit = MapsCache::with_mode(f.pid, QueryMode::Auto);
    let mut implicit = MapsCache::with_mode(f.pid, QueryMode::Auto);
    for c in [&mut explicit, &mut implicit] {
        assert_eq!(c.lookup(x).unwrap().unwrap().file, Some(file_id(&f.a)));
    }
    let line = f.command("exec", "Y=");
    let y = hex_after(&line, "Y=");

    explicit.reopen().unwrap();
    implicit.invalidate();
    let (qe, qi) = (explicit.stats().kernel_queries, implicit.stats().kernel_queries);
    for c in [&mut explicit, &mut implicit] {
        let m = c.lookup(y).unwrap().expect("Y is mapped after the exec");
        assert_eq!((m.file, m.start, m.offset), (Some(idb), y, 0), "{m}");
        if y != x {
            // A's mapping went with the old address space.
            assert!(c.lookup(x).unwrap().is_none_or(|m| m.file != Some(file_id(&f.a))));
        }
        check_mode(c, QueryMode::Auto);
    }
    if kernel_has_procmap_query() {
        // One query on the reopened file; two when the stale file first answered ESRCH.
        assert_eq!(explicit.stats().kernel_queries - qe, 1 + u64::from(y != x));
        assert_eq!(implicit.stats().kernel_queries - qi, 2 + u64::from(y != x));
    }
    assert_paths_agree(f.pid);
    f.exit();
}

/// `XOL_NO_PROCMAP_QUERY` forces full reads (documented in `xol::maps`).
#[test]
fn env_var_forces_full_reads() {
    // Only this test touches the variable, and only `MapsCache::new` reads it.
    assert_eq!(xol::maps::NO_PROCMAP_QUERY_ENV, "XOL_NO_PROCMAP_QUERY");
    let pid = std::process::id() as i32;
    let here = env_var_forces_full_reads as *const () as u64;
    std::env::set_var("XOL_NO_PROCMAP_QUERY", "1");
    let mut c = MapsCache::new(pid);
    std::env::remove_var("XOL_NO_PROCMAP_QUERY");
    assert_eq!(c.mode(), QueryMode::FullReads);
    assert!(c.lookup(here).unwrap().is_some());
    assert_eq!((c.stats().kernel_queries, c.stats().full_reads), (0, 1));
    let mut c = MapsCache::new(pid);
    assert_eq!(c.mode(), QueryMode::Auto);
    assert!(c.lookup(here).unwrap().is_some());
    if kernel_has_procmap_query() {
        assert_eq!((c.stats().kernel_queries, c.stats().full_reads), (1, 0));
    }
}
