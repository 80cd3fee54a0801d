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
