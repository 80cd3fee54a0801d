//! The index of one file's DWARF the queries need, built on the first query: per unit, its
//! line table split by source file the way gdb's DWARF reader builds its symtabs (rows kept,
//! dropped and sorted by gdb's rules, end markers included), its block tree (functions,
//! inlined copies, lexical blocks with their ranges) and whether gdb trusts its variable
//! locations at every pc (which decides whether gdb skips prologues). The split units of
//! skeletons are loaded here, once.

use super::load::{self, R};
use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

/// One row of a gdb line table: `line == 0` is an end marker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub pc: u64,
    pub line: u32,
    pub is_stmt: bool,
}

/// The rows of one source file in one unit (gdb's symtab), sorted by address.
#[derive(Debug, Default)]
pub(crate) struct Subfile {
    pub path: String,
    pub entries: Vec<Entry>,
}

/// What a block is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `DW_TAG_subprogram` with code.
    Function,
    /// `DW_TAG_inlined_subroutine`.
    Inlined,
    /// `DW_TAG_lexical_block`.
    Lexical,
}

/// A block of code: a function, an inlined copy or a lexical block.
#[derive(Debug, Clone)]
pub(crate) struct Block {
    pub kind: Kind,
    pub name: Option<String>,
    /// `[begin, end)` in the order the DIE lists them.
    pub ranges: Vec<(u64, u64)>,
    pub depth: usize,
    /// The index of the function the block is in (itself for a function).
    pub function: usize,
}

impl Block {
    /// gdb's entry pc of a block: its start when contiguous, else the start of its first range.
    pub fn entry(&self) -> u64 {
        match self.ranges.as_slice() {
            [one] => one.0,
            [first, ..] => first.0,
            [] => 0,
        }
    }

    /// The end of the block's last byte (+1).
    pub fn end(&self) -> u64 {
        self.ranges.iter().map(|r| r.1).max().unwrap_or(0)
    }

    pub fn contains(&self, pc: u64) -> bool {
        self.ranges.iter().any(|&(b, e)| pc >= b && pc < e)
    }
}

/// One compilation unit: its line tables, read with the index, and its blocks, read from its
/// DIEs the first time a query needs them (a line query reads only the units that have the
/// file).
#[derive(Debug)]
pub(crate) struct Cu {
    pub subfiles: Vec<Subfile>,
    /// The file's DWARF and the unit's offset in `.debug_info` (a skeleton's, when split).
    parent: Arc<gimli::Dwarf<R>>,
    offset: gimli::DebugInfoOffset<usize>,
    /// The split unit's DWARF (`.dwo` or package), for a skeleton.
    dwo: Option<Arc<gimli::Dwarf<R>>>,
    tree: std::cell::OnceCell<Tree>,
}

/// A unit's blocks.
#[derive(Debug, Default)]
pub(crate) struct Tree {
    pub blocks: Vec<Block>,
    /// gdb's `locations_valid`: a GNU producer and some location list among the unit's
    /// variables: gdb then does not skip prologues in the unit.
    pub locations_valid: bool,
    /// An LLVM producer (clang, rustc): gdb then skips prologues by the line table.
    pub llvm: bool,
}

impl Cu {
    fn tree(&self) -> &Tree {
        self.tree.get_or_init(|| {
            let mut t = Tree::default();
            if let Err(e) = self.read_tree(&mut t) {
                log::info!("a unit's DIEs at {:#x}: {e}", self.offset.0);
            }
            t
        })
    }

    fn read_tree(&self, t: &mut Tree) -> Res<()> {
        let header = self.parent.debug_info.header_from_offset(self.offset)?;
        let unit = self.parent.unit(header)?;
        match &self.dwo {
            Some(dwo) => {
                if let Some(h) = dwo.units().next()? {
                    let mut dunit = dwo.unit(h)?;
                    dunit.copy_relocated_attributes(&unit);
                    walk(dwo, &dunit, t)?;
                }
                Ok(())
            }
            None => walk(&self.parent, &unit, t),
        }
    }

    /// The unit's blocks (functions, inlined copies, lexical blocks).
    pub fn blocks(&self) -> &[Block] {
        &self.tree().blocks
    }

    /// gdb's `locations_valid` for the unit.
    pub fn locations_valid(&self) -> bool {
        self.tree().locations_valid
    }

    /// Whether an LLVM compiler (clang, rustc) produced the unit (gdb's `producer_is_llvm`).
    pub fn llvm(&self) -> bool {
        self.tree().llvm
    }
}

/// Everything the queries use.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub cus: Vec<Cu>,
    /// The split units loaded (by dwo id), for addr2line.
    pub dwos: HashMap<u64, Arc<gimli::Dwarf<R>>>,
    /// Skeleton units whose split unit was not found (their `.dwo` name).
    pub missing_dwo: Vec<String>,
}

type Res<T> = Result<T, gimli::Error>;

/// Build the index of `dwarf`.
pub(crate) fn build(
    dwarf: &Arc<gimli::Dwarf<R>>,
    dwp: Option<&gimli::DwarfPackage<R>>,
    binary_dir: &Path,
) -> Res<Index> {
    let mut index = Index::default();
    let mut units = dwarf.units();
    while let Some(header) = units.next()? {
        // (`units()` walks `.debug_info`.)
        let offset = gimli::DebugInfoOffset(header.offset().0);
        let unit = dwarf.unit(header)?;
        let mut cu = Cu {
            subfiles: line_table(dwarf, &unit)?,
            parent: dwarf.clone(),
            offset,
            dwo: None,
            tree: std::cell::OnceCell::new(),
        };
        let skeleton = unit.dwo_id.is_some() && unit.dwo_name().ok().flatten().is_some();
        if skeleton {
            match load::load_dwo(dwarf, &unit, dwp, binary_dir) {
                Some(dwo) => {
                    let dwo = Arc::new(dwo);
                    cu.dwo = Some(dwo.clone());
                    if let Some(id) = unit.dwo_id {
                        index.dwos.insert(id.0, dwo);
                    }
                }
                None => {
                    let name = unit
                        .dwo_name()
                        .ok()
                        .flatten()
                        .and_then(|n| dwarf.attr_string(&unit, n).ok())
                        .and_then(|s| load::text(&s));
                    index.missing_dwo.push(name.unwrap_or_default());
                }
            }
        }
        index.cus.push(cu);
    }
    Ok(index)
}

fn string(dwarf: &gimli::Dwarf<R>, unit: &gimli::Unit<R>, v: gimli::AttributeValue<R>) -> Option<String> {
    load::text(&dwarf.attr_string(unit, v).ok()?)
}

/// `a/./b/../c` -> `a/c` (as gdb's path rewriting does for line-table names).
fn normalize(p: &Path) -> String {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            c => out.push(c),
        }
    }
    out.display().to_string()
}

/// The full path of a line table's file entry.
fn file_path(
    dwarf: &gimli::Dwarf<R>,
    unit: &gimli::Unit<R>,
    header: &gimli::LineProgramHeader<R>,
    file: &gimli::FileEntry<R>,
) -> String {
    let name = string(dwarf, unit, file.path_name()).unwrap_or_default();
    let mut p = PathBuf::new();
    if let Some(dir) = unit.comp_dir.as_ref().and_then(load::text) {
        p.push(dir);
    }
    if let Some(dir) = file.directory(header).and_then(|d| string(dwarf, unit, d)) {
        p.push(dir);
    }
    p.push(name);
    normalize(&p)
}

/// The unit's line table, split by file, with gdb's rules (`lnp_state_machine::record_line`,
/// `buildsym_compunit::record_line` and the sort of `end_compunit_symtab`).
fn line_table(dwarf: &gimli::Dwarf<R>, unit: &gimli::Unit<R>) -> Res<Vec<Subfile>> {
    let Some(program) = unit.line_program.clone() else { return Ok(Vec::new()) };
    let mut subs: Vec<Subfile> = Vec::new();
    let mut by_path: HashMap<String, usize> = HashMap::new();
    let mut by_index: HashMap<u64, usize> = HashMap::new();
    let mut rows = program.rows();

    // The state of one sequence.
    #[derive(Default)]
    struct Seq {
        started: bool,
        recording: bool,
        last_sub: Option<usize>,
        last_line: u32,
        last_address: Option<u64>,
        stmt_at_address: bool,
        prev_line: u32,
        nonzero_discriminator: bool,
    }
    let mut seq = Seq::default();
    while let Some((header, row)) = rows.next_row()? {
        let sub = match by_index.get(&row.file_index()) {
            Some(s) => *s,
            None => {
                let path = row.file(header).map(|f| file_path(dwarf, unit, header, f)).unwrap_or_default();
                let id = *by_path.entry(path.clone()).or_insert_with(|| {
                    subs.push(Subfile { path, entries: Vec::new() });
                    subs.len() - 1
                });
                by_index.insert(row.file_index(), id);
                id
            }
        };
        let addr = row.address();
        let end = row.end_sequence();
        let line = row.line().map(|l| u32::try_from(l.get()).unwrap_or(u32::MAX)).unwrap_or(0);
        if !seq.started {
            // A sequence at address 0 is code the linker discarded (gdb ignores it).
            seq = Seq { started: true, recording: addr != 0, prev_line: 1, ..Seq::default() };
        }
        if line != seq.prev_line {
            seq.nonzero_discriminator = row.discriminator() != 0;
        } else {
            seq.nonzero_discriminator |= row.discriminator() != 0;
        }
        seq.prev_line = line;
        if seq.recording {
            let file_changed = seq.last_sub != Some(sub);
            let ignore =
                (file_changed && !end && seq.last_address == Some(addr) && !row.is_stmt() && seq.stmt_at_address)
                    || (!end && line == 0);
            if (file_changed && !ignore) || end {
                if let Some(ls) = seq.last_sub {
                    finish(&mut subs[ls].entries, addr);
                }
            }
            if !end && !ignore {
                if file_changed || line != seq.last_line || !seq.nonzero_discriminator {
                    subs[sub].entries.push(Entry { pc: addr, line, is_stmt: row.is_stmt() });
                }
                seq.last_sub = Some(sub);
                seq.last_line = line;
            }
        }
        if seq.last_address != Some(addr) {
            seq.stmt_at_address = false;
            seq.last_address = Some(addr);
        }
        seq.stmt_at_address |= row.is_stmt();
        if end {
            seq = Seq::default();
        }
    }
    for s in &mut subs {
        // End markers first among rows at one address, the order kept otherwise.
        s.entries.sort_by_key(|e| (e.pc, e.line != 0));
    }
    // gdb's order of a unit's symtabs (which decides ties in `find_pc_line`): the unit's
    // primary file first, then the others, the last one started first.
    let mut primary = PathBuf::new();
    if let Some(d) = unit.comp_dir.as_ref().and_then(load::text) {
        primary.push(d);
    }
    if let Some(n) = unit.name.as_ref().and_then(load::text) {
        primary.push(n);
    }
    let primary = normalize(&primary);
    subs.reverse();
    if let Some(i) = subs.iter().position(|s| s.path == primary) {
        let main = subs.remove(i);
        subs.insert(0, main);
    }
    Ok(subs)
}

/// gdb's end-of-sequence marker: rows at the same address before it are dropped, and a
/// marker after nothing (or after a marker) is not recorded.
fn finish(v: &mut Vec<Entry>, addr: u64) {
    let mut last_line = None;
    while let Some(e) = v.last() {
        last_line = Some(e.line);
        if e.pc != addr {
            break;
        }
        v.pop();
    }
    if matches!(last_line, None | Some(0)) {
        return;
    }
    v.push(Entry { pc: addr, line: 0, is_stmt: true });
}

/// The name of a DIE: `DW_AT_name`, else its abstract origin's or specification's.
fn die_name(
    dwarf: &gimli::Dwarf<R>,
    unit: &gimli::Unit<R>,
    entry: &gimli::DebuggingInformationEntry<R>,
    hops: u32,
) -> Option<String> {
    if let Some(v) = entry.attr_value(gimli::DW_AT_name) {
        return string(dwarf, unit, v);
    }
    if hops > 4 {
        return None;
    }
    for at in [gimli::DW_AT_abstract_origin, gimli::DW_AT_specification] {
        if let Some(gimli::AttributeValue::UnitRef(off)) = entry.attr_value(at) {
            let e = unit.entry(off).ok()?;
            return die_name(dwarf, unit, &e, hops + 1);
        }
    }
    None
}

/// Whether an attribute value is a location list.
fn is_loclist(v: Option<gimli::AttributeValue<R>>) -> bool {
    matches!(v, Some(gimli::AttributeValue::LocationListsRef(_) | gimli::AttributeValue::DebugLocListsIndex(_)))
}

/// The unit's blocks and `locations_valid`.
fn walk(dwarf: &gimli::Dwarf<R>, unit: &gimli::Unit<R>, cu: &mut Tree) -> Res<()> {
    let mut cursor = unit.entries();
    // (depth, block) of the open DIEs.
    let mut stack: Vec<(isize, Option<usize>)> = Vec::new();
    let mut gnu = false;
    let mut llvm = false;
    let mut loclist = false;
    while let Some(entry) = cursor.next_dfs()? {
        let depth = entry.depth();
        while stack.last().is_some_and(|(d, _)| *d >= depth) {
            stack.pop();
        }
        let parent = stack.iter().rev().find_map(|(_, b)| *b);
        let tag = entry.tag();
        if tag == gimli::DW_TAG_compile_unit {
            let producer = entry.attr_value(gimli::DW_AT_producer).and_then(|v| string(dwarf, unit, v));
            gnu = producer.as_deref().is_some_and(|p| p.starts_with("GNU "));
            llvm = producer.as_deref().is_some_and(|p| p.starts_with("clang ") || p.starts_with(" F90 Flang "));
        }
        if matches!(tag, gimli::DW_TAG_variable | gimli::DW_TAG_formal_parameter) {
            loclist |= is_loclist(entry.attr_value(gimli::DW_AT_location));
        }
        let kind = match tag {
            gimli::DW_TAG_subprogram => Some(Kind::Function),
            gimli::DW_TAG_inlined_subroutine => Some(Kind::Inlined),
            gimli::DW_TAG_lexical_block => Some(Kind::Lexical),
            _ => None,
        };
        let mut this = None;
        if let Some(kind) = kind {
            if kind == Kind::Function {
                loclist |= is_loclist(entry.attr_value(gimli::DW_AT_frame_base));
            }
            let mut ranges = Vec::new();
            let mut it = dwarf.die_ranges(unit, entry)?;
            while let Some(r) = it.next()? {
                if r.begin < r.end && r.begin != 0 {
                    ranges.push((r.begin, r.end));
                }
            }
            if !ranges.is_empty() {
                let idx = cu.blocks.len();
                let function = match (kind, parent) {
                    (Kind::Function, _) | (_, None) => idx,
                    (_, Some(p)) => cu.blocks[p].function,
                };
                let name = match kind {
                    Kind::Lexical => None,
                    _ => die_name(dwarf, unit, entry, 0),
                };
                let depth = parent.map(|p| cu.blocks[p].depth + 1).unwrap_or(0);
                cu.blocks.push(Block { kind, name, ranges, depth, function });
                this = Some(idx);
            }
        }
        stack.push((depth, this));
    }
    cu.locations_valid = gnu && loclist;
    cu.llvm = llvm;
    Ok(())
}

/// [`finish`], for the unit tests.
#[cfg(test)]
pub(crate) fn finish_for_tests(v: &mut Vec<Entry>, addr: u64) {
    finish(v, addr)
}
