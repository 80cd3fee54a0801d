//! Debug information of one ELF file, pure (files and bytes in, answers out; no process, no
//! ptrace, no /proc): source lines, functions and their inlined copies, from DWARF 4 and 5
//! (`.debug_addr`, `.debug_rnglists`, `.debug_loclists`, `.debug_str_offsets`,
//! `.debug_line_str` through gimli), compressed sections (zlib, zstd), split DWARF (`.dwo`,
//! `.dwp`) and separate debug files found as gdb finds them ([`load`]).
//!
//! [`DebugInfo::open`] reads the file and parses nothing: the DWARF sections are loaded on
//! the first query, the index ([`index`]) of line tables and blocks on the first query that
//! needs it, addr2line's context on the first [`DebugInfo::location_of`].
//!
//! Addresses in and out are the file's link-time addresses ([`LinkAddr`]); the caller adds the
//! load bias. The rules are gdb's (13): [`DebugInfo::lines_for`] gives the addresses of
//! `break FILE:LINE`, [`FunctionSite::after_prologue`] the address of `break FUNC`.

pub mod index;
pub mod load;

use addr2line::LookupContinuation as _;
use index::{Index, Kind};
use load::R;
use std::cell::OnceCell;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A link-time address of the file (as in its ELF headers and DWARF), before any load bias.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LinkAddr(pub u64);

impl std::fmt::Display for LinkAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// Why a query has no answer; the texts are gdb's where gdb has one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The file cannot be read or is not ELF.
    #[error("{0}")]
    Read(String),
    /// Neither the file nor a separate debug file has DWARF.
    #[error("no debugging symbols found in {0}")]
    NoDebugInfo(String),
    /// Malformed DWARF.
    #[error("{file}: malformed DWARF: {why}")]
    Dwarf {
        /// The file the DWARF came from.
        file: String,
        /// What gimli found.
        why: String,
    },
    /// No unit has a source file of that name.
    #[error("No source file named {0}.")]
    NoSourceFile(String),
    /// The file has no code at or after that line.
    #[error("No line {line} in file \"{file}\".")]
    NoLine {
        /// The line asked for.
        line: u32,
        /// The file as given.
        file: String,
    },
    /// No function of that name.
    #[error("Function \"{0}\" not defined.")]
    NoFunction(String),
}

/// Where `break FUNC` and a probe on FUNC go, for one body or inlined copy of FUNC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct FunctionSite {
    /// The first instruction (an out-of-line body's low pc; an inlined copy's entry: its low
    /// pc, or the start of its first range).
    pub entry: LinkAddr,
    /// Where gdb's `break FUNC` stops: after the prologue (gdb's `skip_prologue_sal`); the
    /// entry itself where gdb trusts the unit's variable locations (optimised gcc code).
    pub after_prologue: LinkAddr,
    /// An inlined copy (`DW_TAG_inlined_subroutine`), not a body of its own.
    pub inlined: bool,
}

/// One frame of the chain at an address: innermost (an inlined copy) first, the function
/// the code belongs to last.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The function's name.
    pub function: Option<String>,
    /// The source file: of the address for the innermost frame, of the call site for the others.
    pub file: Option<String>,
    /// The line, likewise.
    pub line: Option<u32>,
}

/// The source location of an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceLocation {
    /// The source file (a full path).
    pub file: String,
    /// The line.
    pub line: u32,
    /// The innermost function (an inlined function when the address is in an inlined copy).
    pub function: Option<String>,
    /// The inlined chain, innermost first; its last frame is the out-of-line function.
    pub frames: Vec<Frame>,
}

/// The DWARF, once loaded.
struct Loaded {
    dwarf: Arc<gimli::Dwarf<R>>,
    /// Where it came from (the file itself or its separate debug file).
    from: PathBuf,
    dwp: Option<gimli::DwarfPackage<R>>,
}

/// The debug information of one ELF file, loaded lazily.
pub struct DebugInfo {
    path: PathBuf,
    elf: Vec<u8>,
    debug_dirs: Vec<PathBuf>,
    loaded: OnceCell<Result<Loaded, Error>>,
    index: OnceCell<Result<Index, Error>>,
    ctx: OnceCell<Option<addr2line::Context<R>>>,
}

impl std::fmt::Debug for DebugInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugInfo")
            .field("path", &self.path)
            .field("loaded", &self.loaded.get().map(|l| l.as_ref().map(|l| l.from.clone())))
            .field("indexed", &self.index.get().is_some())
            .finish()
    }
}

/// gdb's default debug-file-directory.
pub const DEFAULT_DEBUG_DIR: &str = "/usr/lib/debug";

/// Whether the source path `path` is the file the user named `name`: the same path, or (a
/// relative name) a trailing part of it that starts at a directory boundary, as gdb matches
/// `break FILE:LINE` (`loop.c` and `x/loop.c` match `/src/x/loop.c`, `op.c` does not).
pub fn source_matches(path: &str, name: &str) -> bool {
    if name.starts_with('/') {
        return path == name;
    }
    path.ends_with(name) && (path.len() == name.len() || path[..path.len() - name.len()].ends_with('/'))
}

/// x86-64 gdb's prologue analysis for gcc code (`amd64_analyze_prologue`): past `[endbr64]
/// push %rbp; mov %rsp,%rbp`, else (a frameless function) the start.
fn amd64_skip_prologue(code: &[u8], start: u64) -> u64 {
    let mut i = 0usize;
    if code.starts_with(&[0xf3, 0x0f, 0x1e, 0xfa]) {
        i = 4;
    }
    if code.get(i) == Some(&0x55) {
        let rest = code.get(i + 1..).unwrap_or_default();
        if rest.starts_with(&[0x48, 0x89, 0xe5]) || rest.starts_with(&[0x48, 0x8b, 0xec]) {
            return start + i as u64 + 4;
        }
        if rest.starts_with(&[0x89, 0xe5]) || rest.starts_with(&[0x8b, 0xec]) {
            return start + i as u64 + 3;
        }
    }
    start
}

impl DebugInfo {
    /// Read the ELF file at `path` (nothing is parsed yet).
    pub fn open(path: &Path) -> Result<DebugInfo, Error> {
        let elf = crate::symbols::read_file(path).map_err(Error::Read)?;
        Ok(DebugInfo::from_bytes(path, elf))
    }

    /// The file `path` whose bytes are `elf` (a separate debug file or `.dwo` is looked for
    /// relative to `path`).
    pub fn from_bytes(path: &Path, elf: Vec<u8>) -> DebugInfo {
        DebugInfo {
            path: path.to_path_buf(),
            elf,
            debug_dirs: vec![PathBuf::from(DEFAULT_DEBUG_DIR)],
            loaded: OnceCell::new(),
            index: OnceCell::new(),
            ctx: OnceCell::new(),
        }
    }

    /// Look for separate debug files under these directories instead of `/usr/lib/debug`
    /// (gdb's `set debug-file-directory`).
    pub fn with_debug_dirs(mut self, dirs: Vec<PathBuf>) -> DebugInfo {
        self.debug_dirs = dirs;
        self
    }

    /// The ELF file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The ELF file's bytes.
    pub fn bytes(&self) -> &[u8] {
        &self.elf
    }

    /// Whether anything has been parsed yet (the DWARF sections loaded).
    pub fn is_loaded(&self) -> bool {
        self.loaded.get().is_some()
    }

    fn loaded(&self) -> Result<&Loaded, Error> {
        self.loaded.get_or_init(|| self.load()).as_ref().map_err(Clone::clone)
    }

    fn load(&self) -> Result<Loaded, Error> {
        let obj = load::parse(&self.elf).map_err(|e| Error::Read(format!("{}: {e}", self.path.display())))?;
        let dwp = load::load_dwp(&self.path);
        let dwarf_err = |from: &Path, e: String| Error::Dwarf { file: from.display().to_string(), why: e };
        if load::has_dwarf(&obj) {
            let dwarf = load::dwarf_of(&obj, false).map_err(|e| dwarf_err(&self.path, e))?;
            return Ok(Loaded { dwarf: Arc::new(dwarf), from: self.path.clone(), dwp });
        }
        for (cand, check) in load::separate_candidates(&self.path, &obj, &self.debug_dirs) {
            let Some(bytes) = load::read(&cand) else { continue };
            if !load::passes(&bytes, &check) {
                continue;
            }
            let Ok(dobj) = load::parse(&bytes) else { continue };
            if !load::has_dwarf(&dobj) {
                continue;
            }
            let dwarf = load::dwarf_of(&dobj, false).map_err(|e| dwarf_err(&cand, e))?;
            return Ok(Loaded { dwarf: Arc::new(dwarf), from: cand, dwp });
        }
        Err(Error::NoDebugInfo(self.path.display().to_string()))
    }

    /// The file the DWARF was read from: the ELF file itself or its separate debug file.
    pub fn debug_file(&self) -> Result<&Path, Error> {
        Ok(&self.loaded()?.from)
    }

    fn index(&self) -> Result<&Index, Error> {
        self.index
            .get_or_init(|| {
                let l = self.loaded()?;
                let dir = self.path.parent().unwrap_or(Path::new("."));
                index::build(&l.dwarf, l.dwp.as_ref(), dir)
                    .map_err(|e| Error::Dwarf { file: l.from.display().to_string(), why: e.to_string() })
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// `.dwo` files named by skeleton units that were not found (their units have no
    /// functions in the answers).
    pub fn missing_dwo(&self) -> Result<Vec<String>, Error> {
        Ok(self.index()?.missing_dwo.clone())
    }

    /// Every source file of the line tables (full paths, sorted, once each).
    pub fn source_files(&self) -> Result<Vec<String>, Error> {
        let mut v: Vec<String> =
            self.index()?.cus.iter().flat_map(|c| c.subfiles.iter().map(|s| s.path.clone())).collect();
        v.sort();
        v.dedup();
        Ok(v)
    }

    /// The file offset of a link-time address (a per-file probe's key), if a `PT_LOAD`
    /// segment holds it.
    pub fn file_offset(&self, addr: LinkAddr) -> Option<u64> {
        crate::symbols::vaddr_to_offset(&self.elf, addr.0).ok().flatten()
    }

    fn code_at(&self, addr: u64, len: usize) -> &[u8] {
        let Some(off) = self.file_offset(LinkAddr(addr)) else { return &[] };
        let off = off as usize;
        self.elf.get(off..off.saturating_add(len).min(self.elf.len())).unwrap_or_default()
    }

    /// gdb's `find_pc_line` within one unit: the row that covers `pc` and the address where
    /// the next row starts.
    fn find_pc_line(cu: &index::Cu, pc: u64) -> Option<(index::Entry, Option<u64>)> {
        let mut best: Option<index::Entry> = None;
        let mut best_end: Option<u64> = None;
        for s in &cu.subfiles {
            let e = &s.entries;
            let i = e.partition_point(|x| x.pc <= pc);
            if i > 0 && best.is_none_or(|b| e[i - 1].pc > b.pc) {
                let mut j = i - 1;
                if !e[j].is_stmt {
                    while j > 0 && e[j - 1].pc == e[j].pc && e[j - 1].line != 0 && !e[j].is_stmt {
                        j -= 1;
                    }
                    if !e[j].is_stmt {
                        j = i - 1;
                    }
                }
                best = Some(e[j]);
                if best_end.is_some_and(|x| x <= e[j].pc) {
                    best_end = None;
                }
            }
            if let (Some(b), Some(n)) = (best, e.get(i)) {
                if n.pc > b.pc && best_end.is_none_or(|x| x > n.pc) {
                    best_end = Some(n.pc);
                }
            }
        }
        best.filter(|b| b.line != 0).map(|b| (b, best_end))
    }

    /// The innermost block holding `pc`.
    fn block_for_pc(cu: &index::Cu, pc: u64) -> Option<usize> {
        cu.blocks().iter().enumerate().filter(|(_, b)| b.contains(pc)).max_by_key(|(_, b)| b.depth).map(|(i, _)| i)
    }

    /// Where gdb's `break FUNC` goes for the function block `f` (`skip_prologue_sal` at its
    /// entry).
    fn post_prologue(&self, cu: &index::Cu, f: usize) -> u64 {
        let b = &cu.blocks()[f];
        let entry = b.entry();
        if cu.locations_valid() {
            return entry;
        }
        let mut pc = amd64_skip_prologue(self.code_at(entry, 16), entry);
        if cu.llvm() {
            // gdb trusts an LLVM producer's line table: the prologue ends where the
            // function's first line does (`skip_prologue_using_sal`).
            if let Some((_, Some(end))) = Self::find_pc_line(cu, entry) {
                if end < b.end() {
                    pc = pc.max(end);
                }
            }
        }
        if let Some((sal, Some(end))) = Self::find_pc_line(cu, pc) {
            if sal.pc != pc && entry <= end && end < b.end() {
                pc = end;
            }
        }
        pc
    }

    /// gdb's `skip_prologue_sal` for a line's address: moved past the prologue of its
    /// function if it is in it.
    fn skip_prologue_sal(&self, cu: &index::Cu, pc: u64) -> u64 {
        let Some(f) = Self::block_for_pc(cu, pc).map(|b| cu.blocks()[b].function) else { return pc };
        pc.max(self.post_prologue(cu, f))
    }

    /// The addresses gdb's `break FILE:LINE` uses, `file` matched as gdb does
    /// ([`source_matches`]): in every unit with that file, the is-statement rows of that line
    /// (of the first line after it that has code, if it has none), the lowest per block
    /// (function, inlined copy, lexical block), moved past the prologue if they are in it.
    /// Sorted, each once.
    pub fn lines_for(&self, file: &str, line: u32) -> Result<Vec<LinkAddr>, Error> {
        let index = self.index()?;
        let symtabs: Vec<(usize, usize)> = index
            .cus
            .iter()
            .enumerate()
            .flat_map(|(c, cu)| {
                cu.subfiles.iter().enumerate().filter(|(_, s)| source_matches(&s.path, file)).map(move |(s, _)| (c, s))
            })
            .collect();
        if symtabs.is_empty() {
            return Err(Error::NoSourceFile(file.to_string()));
        }
        let rows_of = |l: u32| -> Vec<(usize, u64)> {
            symtabs
                .iter()
                .flat_map(|&(c, s)| {
                    index.cus[c].subfiles[s].entries.iter().filter(|e| e.is_stmt && e.line == l).map(move |e| (c, e.pc))
                })
                .collect()
        };
        let mut found = rows_of(line);
        if found.is_empty() {
            let best = symtabs
                .iter()
                .flat_map(|&(c, s)| index.cus[c].subfiles[s].entries.iter())
                .filter(|e| e.is_stmt && e.line > line)
                .map(|e| e.line)
                .min();
            match best {
                Some(b) => found = rows_of(b),
                None => return Err(Error::NoLine { line, file: file.to_string() }),
            }
        }
        // The first address per block (gdb: one location per block).
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for (c, pc) in found {
            let cu = &index.cus[c];
            if let Some(b) = Self::block_for_pc(cu, pc) {
                if !seen.insert((c, b)) {
                    continue;
                }
            }
            out.push(LinkAddr(self.skip_prologue_sal(cu, pc)));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// Every body and inlined copy of the function `name` (its `DW_AT_name`, also through
    /// an abstract origin or specification): where each starts and where gdb's `break NAME`
    /// stops in it. Sorted by entry.
    pub fn function_sites(&self, name: &str) -> Result<Vec<FunctionSite>, Error> {
        let index = self.index()?;
        let mut out = Vec::new();
        for cu in &index.cus {
            for (i, b) in cu.blocks().iter().enumerate() {
                if b.kind == Kind::Lexical || b.name.as_deref() != Some(name) {
                    continue;
                }
                let entry = b.entry();
                let (after, inlined) = match b.kind {
                    Kind::Function => (self.post_prologue(cu, i), false),
                    _ => (self.skip_prologue_sal(cu, entry), true),
                };
                out.push(FunctionSite { entry: LinkAddr(entry), after_prologue: LinkAddr(after), inlined });
            }
        }
        if out.is_empty() {
            return Err(Error::NoFunction(name.to_string()));
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    /// The names of every function with code (bodies and inlined copies), sorted, once each.
    pub fn function_names(&self) -> Result<Vec<String>, Error> {
        let mut v: Vec<String> =
            self.index()?.cus.iter().flat_map(|c| c.blocks().iter().filter_map(|b| b.name.clone())).collect();
        v.sort();
        v.dedup();
        Ok(v)
    }

    /// File, line, function and inlined chain at `addr` (addr2line's frames).
    pub fn location_of(&self, addr: LinkAddr) -> Option<SourceLocation> {
        let ctx = self
            .ctx
            .get_or_init(|| addr2line::Context::from_arc_dwarf(self.loaded().ok()?.dwarf.clone()).ok())
            .as_ref()?;
        let mut lookup = ctx.find_frames(addr.0);
        let mut iter = loop {
            match lookup {
                addr2line::LookupResult::Output(r) => break r.ok()?,
                addr2line::LookupResult::Load { load, continuation } => {
                    let dwo = self.index().ok().and_then(|i| i.dwos.get(&load.dwo_id.0).cloned());
                    lookup = continuation.resume(dwo);
                }
            }
        };
        let mut frames = Vec::new();
        while let Ok(Some(f)) = iter.next() {
            frames.push(Frame {
                function: f.function.as_ref().and_then(|n| n.raw_name().ok().map(|s| s.into_owned())),
                file: f.location.as_ref().and_then(|l| l.file.map(str::to_string)),
                line: f.location.as_ref().and_then(|l| l.line),
            });
        }
        let first = frames.first()?;
        Some(SourceLocation { file: first.file.clone()?, line: first.line?, function: first.function.clone(), frames })
    }
}

#[cfg(test)]
mod tests;
