//! Locations that need debug information, resolved with [`crate::debuginfo`] in the files a
//! process maps, each with its own load bias (through the mappings, as FILE:SYMBOL is):
//! `FILE:LINE` (gdb's `break FILE:LINE` addresses), functions known only to DWARF (a static or
//! inlined function without an ELF symbol), and the inlined copies of a function (a probe on
//! every copy). The [`DebugInfo`] of each file is opened once per (device, inode) and parses
//! nothing before the first query.

use super::{Debugger, Error, Result};
use crate::debuginfo::{self, DebugInfo, LinkAddr};
use crate::types::{FileId, FileSite, Pid, VirtAddr};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// The debug information of the files met so far, by (device, inode); `None`: not an ELF
/// file xol can read.
#[derive(Debug, Default)]
pub(super) struct DebugFiles {
    files: HashMap<(u64, u64), Option<DebugInfo>>,
}

/// What to look for in the debug information.
#[derive(Debug, Clone, Copy)]
pub(super) enum Query<'a> {
    /// `break FILE:LINE`.
    Line(&'a str, u32),
    /// Every body and inlined copy of a function (their first instructions: a probe counts
    /// calls).
    Function(&'a str),
    /// Only the inlined copies of a function.
    Inlined(&'a str),
}

/// One place a DWARF location resolved to in a process.
#[derive(Debug, Clone)]
pub(super) struct Site {
    /// Its address in the process.
    pub addr: VirtAddr,
    /// Its place in the file.
    pub site: FileSite,
    /// The file.
    pub path: PathBuf,
}

impl Debugger {
    /// The files with code that `pid` maps, the executable first.
    fn code_files(&mut self, pid: Pid) -> Result<Vec<(PathBuf, FileId)>> {
        let exe = self.inf.exe(pid).ok();
        let maps = self.inf.mappings(pid)?;
        let mut out: Vec<(PathBuf, FileId)> = Vec::new();
        for m in &maps {
            let (Some(id), Some(p)) = (m.file, m.path.as_deref()) else { continue };
            if !m.perms.exec || !p.starts_with('/') || m.is_deleted() || out.iter().any(|(_, i)| *i == id) {
                continue;
            }
            out.push((p.into(), id));
        }
        if let Some(i) = exe.and_then(|e| out.iter().position(|(p, _)| *p == e)) {
            let e = out.remove(i);
            out.insert(0, e);
        }
        Ok(out)
    }

    /// The debug information of the file `path`, which must still be the file `id`.
    fn debug_info(&mut self, path: &Path, id: FileId) -> Option<&DebugInfo> {
        self.debug
            .files
            .entry((id.dev, id.ino))
            .or_insert_with(|| {
                let (bytes, (dev, ino)) = crate::symbols::read_file_id(path).ok()?;
                ((dev, ino) == (id.dev, id.ino)).then(|| DebugInfo::from_bytes(path, bytes))
            })
            .as_ref()
    }

    /// The executable's path and identity in `pid`.
    pub(super) fn exe_file(&mut self, pid: Pid) -> Result<Option<(PathBuf, FileId)>> {
        let exe = self.inf.exe(pid)?;
        Ok(self.code_files(pid)?.into_iter().find(|(p, _)| *p == exe))
    }

    /// The file `path` as `pid` maps it.
    pub(super) fn mapped_file(&mut self, pid: Pid, path: &Path) -> Result<Option<(PathBuf, FileId)>> {
        Ok(self.code_files(pid)?.into_iter().find(|(p, _)| p == path))
    }

    /// Where `query` is in the files `pid` maps (`only`: in those files alone), sorted by
    /// address. An answer of none is an error with gdb's words (`No source file named F.`,
    /// `No line L in file "F".`, `Function "f" not defined.`).
    pub(super) fn dwarf_sites(
        &mut self,
        pid: Pid,
        query: Query<'_>,
        only: Option<Vec<(PathBuf, FileId)>>,
    ) -> Result<Vec<Site>> {
        let files = match only {
            Some(f) => f,
            None => self.code_files(pid)?,
        };
        let maps = self.inf.mappings(pid)?;
        let mut found: Vec<(PathBuf, FileId, u64)> = Vec::new();
        let mut no_line = None;
        for (path, id) in files {
            let Some(di) = self.debug_info(&path, id) else { continue };
            let addrs: std::result::Result<Vec<LinkAddr>, debuginfo::Error> = match query {
                Query::Line(f, l) => di.lines_for(f, l),
                Query::Function(n) => di.function_sites(n).map(|v| v.iter().map(|s| s.entry).collect()),
                Query::Inlined(n) => {
                    di.function_sites(n).map(|v| v.iter().filter(|s| s.inlined).map(|s| s.entry).collect())
                }
            };
            match addrs {
                Ok(v) => {
                    for a in v {
                        match di.file_offset(a) {
                            Some(off) => found.push((path.clone(), id, off)),
                            None => log::info!("{}: {a} is in no loadable segment", path.display()),
                        }
                    }
                }
                Err(e @ debuginfo::Error::NoLine { .. }) => no_line = Some(e),
                Err(e) => log::debug!("{}: {e}", path.display()),
            }
        }
        let mut out = Vec::new();
        for (path, file, offset) in found {
            let Some(addr) = maps.iter().filter(|m| m.file == Some(file)).find_map(|m| m.addr_of(offset)) else {
                continue;
            };
            out.push(Site { addr: VirtAddr(addr), site: FileSite { file, offset }, path });
        }
        out.sort_by_key(|s| s.addr.0);
        out.dedup_by_key(|s| s.addr.0);
        if out.is_empty() && !matches!(query, Query::Inlined(_)) {
            let e = match (query, no_line) {
                (Query::Line(_, _), Some(e)) => e,
                (Query::Line(f, _), None) => debuginfo::Error::NoSourceFile(f.to_string()),
                (Query::Function(n) | Query::Inlined(n), _) => debuginfo::Error::NoFunction(n.to_string()),
            };
            return Err(Error::Location(e.to_string()));
        }
        Ok(out)
    }
}

/// Where the dynamic linker finds the library `name` that the file at `from` (whose bytes
/// are `b`) needs: `DT_RPATH` (unless there is a `DT_RUNPATH`), `LD_LIBRARY_PATH`, `DT_RUNPATH`,
/// then the system directories (`$ORIGIN` is `from`'s directory). `None`: not found.
fn find_needed(name: &str, from: &Path, needed: &crate::symbols::Needed) -> Option<PathBuf> {
    if name.contains('/') {
        return Some(PathBuf::from(name)).filter(|p| p.is_file());
    }
    let origin = from.parent().map(|d| d.display().to_string()).unwrap_or_default();
    let dirs = |list: &Option<String>| -> Vec<PathBuf> {
        list.as_deref()
            .unwrap_or_default()
            .split(':')
            .filter(|d| !d.is_empty())
            .map(|d| PathBuf::from(d.replace("${ORIGIN}", &origin).replace("$ORIGIN", &origin)))
            .collect()
    };
    let before = if needed.runpath.is_none() { dirs(&needed.rpath) } else { Vec::new() };
    if let Some(p) = before.iter().map(|d| d.join(name)).find(|p| p.is_file()) {
        return Some(p);
    }
    let env = std::env::var("LD_LIBRARY_PATH").unwrap_or_default();
    let env: Vec<PathBuf> = env.split(':').filter(|d| !d.is_empty()).map(PathBuf::from).collect();
    if let Some(p) = env.iter().chain(&dirs(&needed.runpath)).map(|d| d.join(name)).find(|p| p.is_file()) {
        return Some(p);
    }
    super::loader_candidate(name)
}

impl Debugger {
    /// A `FILE:LINE` (by the libraries' line tables) or a function (by their symbol tables)
    /// that no file `pid` maps yet has: the places it will be at in the libraries the program
    /// loads at start-up and has not mapped yet (its `DT_NEEDED`, and theirs), as (the
    /// library's needed name, file offset), for probes pending on those names. `Ok(None)`: no
    /// such library has it.
    pub(super) fn pending_sites(&mut self, pid: Pid, query: Query<'_>) -> Result<Option<Vec<(String, u64)>>> {
        let exe = self.inf.exe(pid)?;
        let mapped: Vec<PathBuf> = self.code_files(pid)?.into_iter().map(|(p, _)| p).collect();
        let mut queue: Vec<PathBuf> = vec![exe];
        let mut seen: Vec<PathBuf> = Vec::new();
        let mut libs: Vec<(String, PathBuf)> = Vec::new();
        while let Some(obj) = queue.pop() {
            if seen.contains(&obj) || seen.len() > 64 {
                continue;
            }
            seen.push(obj.clone());
            let Ok(b) = crate::symbols::read_file(&obj) else { continue };
            let needed = crate::symbols::needed(&b);
            for name in &needed.names {
                if let Some(p) = find_needed(name, &obj, &needed) {
                    let p = std::fs::canonicalize(&p).unwrap_or(p);
                    if !libs.iter().any(|(_, q)| *q == p) {
                        libs.push((name.clone(), p.clone()));
                    }
                    queue.push(p);
                }
            }
        }
        let mut found = Vec::new();
        let mut no_line = None;
        for (name, path) in libs {
            if mapped.contains(&path) {
                continue;
            }
            if let Query::Function(n) = query {
                // A function of a library: by its symbol table (DWARF-only functions of
                // libraries not loaded yet are not looked for: reading a big library's DIEs
                // would hold up a monitor command past gdb's remote timeout).
                if let Ok(off) = crate::symbols::read_file(&path).and_then(|b| crate::symbols::place_in_file(&b, n)) {
                    found.push((name.clone(), off));
                }
                continue;
            }
            let Ok(md) = std::fs::metadata(&path) else { continue };
            use std::os::unix::fs::MetadataExt;
            let id = FileId { dev: md.dev(), ino: md.ino() };
            let Some(di) = self.debug_info(&path, id) else { continue };
            let addrs = match query {
                Query::Line(f, l) => di.lines_for(f, l),
                Query::Function(_) | Query::Inlined(_) => continue,
            };
            match addrs {
                Ok(v) => found.extend(v.into_iter().filter_map(|a| di.file_offset(a)).map(|o| (name.clone(), o))),
                Err(e @ debuginfo::Error::NoLine { .. }) => no_line = Some(e),
                Err(_) => {}
            }
        }
        match (found.is_empty(), no_line) {
            (false, _) => Ok(Some(found)),
            (true, Some(e)) => Err(Error::Location(e.to_string())),
            (true, None) => Ok(None),
        }
    }
}

impl Debugger {
    /// The function `name` by the symbol tables of the libraries `pid` maps (the program's
    /// own is searched by the caller): the first library that has it as code, as the dynamic
    /// linker would bind it. Cheap beside the libraries' DWARF, which a monitor command
    /// cannot afford to read (gdb's remote timeout).
    pub(super) fn library_symbol_site(&mut self, pid: Pid, name: &str) -> Result<Option<Site>> {
        let files = self.code_files(pid)?;
        let maps = self.inf.mappings(pid)?;
        for (path, file) in files.into_iter().skip(1) {
            let Ok((bytes, (dev, ino))) = crate::symbols::read_file_id(&path) else { continue };
            if (dev, ino) != (file.dev, file.ino) {
                continue;
            }
            let Ok(offset) = crate::symbols::place_in_file(&bytes, name) else { continue };
            if let Some(addr) = maps.iter().filter(|m| m.file == Some(file)).find_map(|m| m.addr_of(offset)) {
                return Ok(Some(Site { addr: VirtAddr(addr), site: FileSite { file, offset }, path }));
            }
        }
        Ok(None)
    }
}
