//! Loading DWARF from ELF files: sections (decompressed when `SHF_COMPRESSED` with zlib or
//! zstd, or `.zdebug_*`), separate debug files found as gdb finds them (build-id, then
//! `.gnu_debuglink` with its CRC checked), split DWARF (`.dwo` files named by the skeleton
//! units, a `.dwp` package next to the binary). Files are read with `std::fs`; nothing else of
//! the system is touched.

use object::{Object, ObjectSection};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The reader every DWARF section is read through: reference-counted bytes, so a loaded
/// `Dwarf` owns its sections and can be shared with addr2line.
pub(crate) type R = gimli::EndianArcSlice<gimli::RunTimeEndian>;

/// A DWARF string as text (lossy: file names are bytes).
pub(crate) fn text(r: &R) -> Option<String> {
    use gimli::Reader;
    Some(String::from_utf8_lossy(&r.to_slice().ok()?).into_owned())
}

/// An empty section.
pub(crate) fn empty() -> R {
    R::new(Arc::from(&[][..]), gimli::RunTimeEndian::Little)
}

/// The bytes of section `name` of `obj`, decompressed; empty when there is none.
fn section(obj: &object::File<'_>, name: Option<&str>) -> Result<R, String> {
    let data: Arc<[u8]> = match name.and_then(|n| obj.section_by_name(n)) {
        Some(s) => {
            let bytes = s.uncompressed_data().map_err(|e| format!("section {}: {e}", name.unwrap_or("?")))?;
            Arc::from(bytes.as_ref())
        }
        None => Arc::from(&[][..]),
    };
    Ok(R::new(data, gimli::RunTimeEndian::Little))
}

/// The DWARF sections of `obj` (`dwo`: the `.dwo` names, for a split unit or a package).
pub(crate) fn dwarf_of(obj: &object::File<'_>, dwo: bool) -> Result<gimli::Dwarf<R>, String> {
    gimli::Dwarf::load(|id| section(obj, if dwo { id.dwo_name() } else { Some(id.name()) }))
}

/// Whether `obj` carries DWARF of its own (a `.debug_info` with bytes in the file).
pub(crate) fn has_dwarf(obj: &object::File<'_>) -> bool {
    obj.section_by_name(".debug_info")
        .is_some_and(|s| s.kind() != object::SectionKind::UninitializedData && s.size() > 0)
}

/// Parse `bytes` as an ELF file.
pub(crate) fn parse(bytes: &[u8]) -> Result<object::File<'_>, String> {
    object::File::parse(bytes).map_err(|e| format!("not a readable ELF file: {e}"))
}

/// gdb's CRC of `.gnu_debuglink` (the CRC-32 of zlib, ISO 3309).
pub fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// Where gdb looks for the separate debug file of `path` (in order): with a build-id,
/// `DIR/.build-id/xx/rest.debug` for each debug directory; with a `.gnu_debuglink` NAME,
/// `FILEDIR/NAME`, `FILEDIR/.debug/NAME`, then `DIR/FILEDIR/NAME` for each debug directory.
/// Returns each candidate with what it must match (the build-id, or the CRC).
pub(crate) fn separate_candidates(
    path: &Path,
    obj: &object::File<'_>,
    debug_dirs: &[PathBuf],
) -> Vec<(PathBuf, Check)> {
    let mut out = Vec::new();
    if let Ok(Some(id)) = obj.build_id() {
        if id.len() >= 2 {
            let hex: String = id.iter().map(|b| format!("{b:02x}")).collect();
            for dir in debug_dirs {
                out.push((
                    dir.join(".build-id").join(&hex[..2]).join(format!("{}.debug", &hex[2..])),
                    Check::BuildId(id.to_vec()),
                ));
            }
        }
    }
    if let Ok(Some((name, crc))) = obj.gnu_debuglink() {
        let name = String::from_utf8_lossy(name).into_owned();
        let file_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let file_dir = std::fs::canonicalize(&file_dir).unwrap_or(file_dir);
        out.push((file_dir.join(&name), Check::Crc(crc)));
        out.push((file_dir.join(".debug").join(&name), Check::Crc(crc)));
        for dir in debug_dirs {
            let rel = file_dir.strip_prefix("/").unwrap_or(&file_dir);
            out.push((dir.join(rel).join(&name), Check::Crc(crc)));
        }
    }
    out
}

/// What a separate debug file must match to be the one meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Check {
    /// The same build-id (`NT_GNU_BUILD_ID`).
    BuildId(Vec<u8>),
    /// The CRC of the whole file, from `.gnu_debuglink`.
    Crc(u32),
}

/// Whether `bytes` (a candidate's contents) pass `check`.
pub(crate) fn passes(bytes: &[u8], check: &Check) -> bool {
    match check {
        Check::Crc(c) => crc32(bytes) == *c,
        Check::BuildId(id) => {
            parse(bytes).ok().and_then(|o| o.build_id().ok().flatten().map(|b| b == id.as_slice())) == Some(true)
        }
    }
}

/// Read a whole file (a candidate debug file, a `.dwo`, a `.dwp`); `None` if it is not there.
pub(crate) fn read(path: &Path) -> Option<Vec<u8>> {
    let md = std::fs::metadata(path).ok()?;
    if !md.is_file() {
        return None;
    }
    std::fs::read(path).ok()
}

/// The split DWARF of one skeleton unit: from the package if it has the unit, else the
/// `.dwo` file named by the skeleton (relative to its `comp_dir`, else next to the binary).
pub(crate) fn load_dwo(
    parent: &gimli::Dwarf<R>,
    skeleton: &gimli::Unit<R>,
    dwp: Option<&gimli::DwarfPackage<R>>,
    binary_dir: &Path,
) -> Option<gimli::Dwarf<R>> {
    let dwo_id = skeleton.dwo_id?;
    if let Some(p) = dwp {
        if let Ok(Some(d)) = p.find_cu(dwo_id, parent) {
            return Some(d);
        }
    }
    let name = skeleton.dwo_name().ok()??;
    let name = parent.attr_string(skeleton, name).ok()?;
    let name = PathBuf::from(text(&name)?);
    let mut candidates = Vec::new();
    if name.is_absolute() {
        candidates.push(name.clone());
    } else if let Some(dir) = skeleton.comp_dir.as_ref().and_then(text) {
        candidates.push(PathBuf::from(dir).join(&name));
    }
    if let Some(base) = name.file_name() {
        candidates.push(binary_dir.join(base));
    }
    for c in candidates {
        let Some(bytes) = read(&c) else { continue };
        let Ok(obj) = parse(&bytes) else { continue };
        let Ok(mut dwo) = dwarf_of(&obj, true) else { continue };
        let matches = (|| {
            let header = dwo.units().next().ok()??;
            let unit = dwo.unit(header).ok()?;
            Some(unit.dwo_id == Some(dwo_id))
        })();
        if matches == Some(true) {
            dwo.make_dwo(parent);
            return Some(dwo);
        }
    }
    None
}

/// The DWARF package `BINARY.dwp` next to the binary, if there is one.
pub(crate) fn load_dwp(path: &Path) -> Option<gimli::DwarfPackage<R>> {
    let mut p = path.as_os_str().to_owned();
    p.push(".dwp");
    let bytes = read(Path::new(&p))?;
    let obj = parse(&bytes).ok()?;
    let sections = |id: gimli::SectionId| section(&obj, id.dwo_name()).map_err(|_| gimli::Error::Io);
    gimli::DwarfPackage::load(sections, empty()).ok()
}
