//! Symbols of the programs xol debugs, and xol's one reader of ELF files (through the `object`
//! crate; the constants are named in [`elf`]). For now: ELF64 symbol tables (`.symtab`, else
//! `.dynsym`) read from a file's bytes, so a front-end can name a location by symbol (`monitor count
//! main`), segments and sections, and [`check_code`]: whether a place is code and starts an
//! instruction (where a probe may go). Pure parsing over bytes, except [`read_file`], which
//! reads a file safely (regular files only, bounded); the caller applies the load bias.

/// One symbol: its name, file-relative value (as in the ELF file) and size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Symbol {
    /// The name.
    pub name: String,
    /// `st_value`: the link-time address.
    pub value: u64,
    /// `st_size`.
    pub size: u64,
    /// A function (`STT_FUNC`) or other code/data symbol.
    pub is_func: bool,
    /// A data object (`STT_OBJECT`).
    pub is_object: bool,
    /// Defined in an executable section (`SHF_EXECINSTR`).
    pub in_exec_section: bool,
}

pub mod elf;

use elf::{
    ELFCLASS64, ELFDATA2LSB, ELFMAG, PF_W, PF_X, PT_DYNAMIC, PT_LOAD, SHF_ALLOC, SHF_EXECINSTR, SHN_LORESERVE,
    SHN_UNDEF, SHT_DYNSYM, SHT_NOBITS, SHT_SYMTAB, STT_FUNC, STT_OBJECT,
};
use object::read::elf::{Dyn as _, FileHeader as _, ProgramHeader as _, SectionHeader as _, Sym as _};
use object::LittleEndian as LE;

/// The ELF64 little-endian file header, as `object` reads it.
type Header = object::elf::FileHeader64<LE>;

/// Errors of ELF parsing.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// Not a little-endian ELF64 file.
    #[error("not a readable ELF64 file: {0}")]
    Bad(&'static str),
    /// A header points outside the file, or a table is malformed (what `object` found).
    #[error("not a readable ELF64 file: {0}")]
    Malformed(#[from] object::read::Error),
}

/// The file header of `b`, checked to be ELF64 little-endian.
fn header(b: &[u8]) -> Result<&Header, ElfError> {
    if b.len() < 64 || b[0..4] != ELFMAG || b[4] != ELFCLASS64 || b[5] != ELFDATA2LSB {
        return Err(ElfError::Bad("not ELF64 little-endian"));
    }
    Ok(Header::parse(b)?)
}

/// The ELF header's entry point (`e_entry`) and type (`e_type`: [`elf::ET_EXEC`], [`elf::ET_DYN`]).
pub fn entry_and_type(b: &[u8]) -> Result<(u64, u16), ElfError> {
    let h = header(b)?;
    Ok((h.e_entry(LE), h.e_type(LE)))
}

/// All defined symbols with a name, from `.symtab` if present, else `.dynsym`.
pub fn symbols(b: &[u8]) -> Result<Vec<Symbol>, ElfError> {
    let h = header(b)?;
    let table = h.sections(LE, b)?;
    let has_symtab = table.iter().any(|s| s.sh_type(LE) == SHT_SYMTAB);
    let syms = table.symbols(LE, b, if has_symtab { SHT_SYMTAB } else { SHT_DYNSYM })?;
    let secs = sections(b)?;
    let mut out = Vec::new();
    for sym in syms.iter() {
        let shndx = sym.st_shndx(LE);
        if shndx == SHN_UNDEF {
            continue;
        }
        let Ok(name) = syms.symbol_name(LE, sym) else { continue };
        if name.is_empty() {
            continue;
        }
        let in_exec_section = shndx < SHN_LORESERVE && secs.get(shndx as usize).is_some_and(|s| s.exec);
        out.push(Symbol {
            name: String::from_utf8_lossy(name).into_owned(),
            value: sym.st_value(LE),
            size: sym.st_size(LE),
            is_func: sym.st_type() == STT_FUNC,
            is_object: sym.st_type() == STT_OBJECT,
            in_exec_section,
        });
    }
    Ok(out)
}

/// One section header, the fields xol uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Section {
    addr: u64,
    offset: u64,
    size: u64,
    /// `SHT_NOBITS` (no bytes in the file).
    nobits: bool,
    /// Allocated and executable (`SHF_ALLOC | SHF_EXECINSTR`).
    exec: bool,
}

fn sections(b: &[u8]) -> Result<Vec<Section>, ElfError> {
    let h = header(b)?;
    let exec = u64::from(SHF_ALLOC | SHF_EXECINSTR);
    Ok(h.section_headers(LE, b)?
        .iter()
        .map(|s| Section {
            addr: s.sh_addr(LE),
            offset: s.sh_offset(LE),
            size: s.sh_size(LE),
            nobits: s.sh_type(LE) == SHT_NOBITS,
            exec: s.sh_flags(LE) & exec == exec,
        })
        .collect())
}

/// The link-time address range of the `.text` section, if the file has one (gdb's `info
/// sharedlibrary` From/To columns, once biased).
pub fn text_range(b: &[u8]) -> Option<(u64, u64)> {
    let h = header(b).ok()?;
    let table = h.sections(LE, b).ok()?;
    let (_, text) = table.section_by_name(LE, b".text")?;
    let start = text.sh_addr(LE);
    Some((start, start + text.sh_size(LE)))
}

/// Whether gdb would find debug information for the ELF file `path` (contents `b`): a
/// `.debug_info` section of its own, or a separate debug file where gdb looks — by build-id
/// under `/usr/lib/debug/.build-id/`, or by `.gnu_debuglink` next to the file, in its `.debug/`
/// directory, and under `/usr/lib/debug` + the file's directory.
pub fn has_debug_info(path: &std::path::Path, b: &[u8]) -> bool {
    use object::{Object, ObjectSection};
    let Ok(f) = object::File::parse(b) else { return false };
    if f.section_by_name(".debug_info").is_some_and(|s| s.size() > 0) {
        return true;
    }
    let root = std::path::Path::new("/usr/lib/debug");
    if let Ok(Some(id)) = f.build_id() {
        if let Some((first, rest)) = id.split_first() {
            let hex: String = rest.iter().map(|b| format!("{b:02x}")).collect();
            if root.join(".build-id").join(format!("{first:02x}")).join(format!("{hex}.debug")).exists() {
                return true;
            }
        }
    }
    if let Ok(Some((name, _crc))) = f.gnu_debuglink() {
        let name = std::path::Path::new(std::str::from_utf8(name).unwrap_or_default());
        let dir = path.parent().unwrap_or(std::path::Path::new("/"));
        let under_root = root.join(dir.strip_prefix("/").unwrap_or(dir));
        return [dir.join(name), dir.join(".debug").join(name), under_root.join(name)]
            .iter()
            .any(|p| p.exists() && p != path);
    }
    false
}

/// One `PT_LOAD` segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// `p_offset`.
    pub offset: u64,
    /// `p_vaddr`.
    pub vaddr: u64,
    /// `p_filesz`.
    pub filesz: u64,
    /// `p_memsz`.
    pub memsz: u64,
    /// `PF_X`.
    pub exec: bool,
    /// `PF_W`.
    pub writable: bool,
}

/// The `PT_LOAD` segments.
pub fn segments(b: &[u8]) -> Result<Vec<Segment>, ElfError> {
    let h = header(b)?;
    Ok(h.program_headers(LE, b)?
        .iter()
        .filter(|p| p.p_type(LE) == PT_LOAD)
        .map(|p| Segment {
            offset: p.p_offset(LE),
            vaddr: p.p_vaddr(LE),
            filesz: p.p_filesz(LE),
            memsz: p.p_memsz(LE),
            exec: p.p_flags(LE) & PF_X != 0,
            writable: p.p_flags(LE) & PF_W != 0,
        })
        .collect())
}

/// The writable `PT_LOAD` segments with bytes in memory: (vaddr, memsz); none if `b` is not a
/// readable ELF64 file.
pub fn writable_segments(b: &[u8]) -> Vec<(u64, u64)> {
    segments(b).unwrap_or_default().iter().filter(|s| s.writable && s.memsz > 0).map(|s| (s.vaddr, s.memsz)).collect()
}

/// The link-time address of the file offset `offset` and whether its segment is executable,
/// if a `PT_LOAD` segment holds it.
pub fn offset_to_vaddr(b: &[u8], offset: u64) -> Result<Option<(u64, bool)>, ElfError> {
    Ok(segments(b)?
        .iter()
        .find(|s| offset >= s.offset && offset - s.offset < s.filesz)
        .map(|s| (offset - s.offset + s.vaddr, s.exec)))
}

/// The file offset of the link-time address `vaddr`: `vaddr - p_vaddr + p_offset` of the
/// `PT_LOAD` segment that contains it (what a per-file probe is keyed by).
pub fn vaddr_to_offset(b: &[u8], vaddr: u64) -> Result<Option<u64>, ElfError> {
    Ok(segments(b)?.iter().find(|s| vaddr >= s.vaddr && vaddr < s.vaddr + s.filesz).map(|s| vaddr - s.vaddr + s.offset))
}

/// The link-time value of the symbol `name` (functions first).
pub fn lookup(b: &[u8], name: &str) -> Result<Option<u64>, ElfError> {
    Ok(lookup_symbol(b, name)?.map(|s| s.value))
}

/// The symbol `name` (functions first, then symbols of executable sections).
pub fn lookup_symbol(b: &[u8], name: &str) -> Result<Option<Symbol>, ElfError> {
    let syms = symbols(b)?;
    Ok(syms.into_iter().filter(|s| s.name == name).max_by_key(|s| (s.is_func, s.in_exec_section)))
}

/// Why a place in an ELF file is not where a probe may go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotCode {
    /// The address is in no `PT_LOAD` segment.
    #[error("{0:#x} is in no loadable segment of the file")]
    NotLoaded(u64),
    /// The segment is not executable.
    #[error("{0:#x} is not code: it is in a non-executable segment of the file (data)")]
    NotExecutable(u64),
    /// Inside an instruction.
    #[error("{addr:#x} is inside the instruction at {start:#x} ({mnemonic}, {len} bytes{func}); a probe must start an instruction")]
    Inside {
        /// The address asked for.
        addr: u64,
        /// The covering instruction.
        start: u64,
        /// Its length.
        len: usize,
        /// Its mnemonic.
        mnemonic: String,
        /// ` in FUNC+0xOFF`, or empty.
        func: String,
    },
    /// Decoding from a known instruction start did not reach the address.
    #[error("{addr:#x} cannot be shown to start an instruction: the code does not decode from {from:#x}{func} (invalid instruction at {at:#x})")]
    Undecodable {
        /// The address asked for.
        addr: u64,
        /// Where decoding started.
        from: u64,
        /// Where it stopped.
        at: u64,
        /// ` (FUNC)`, or empty.
        func: String,
    },
    /// Nothing tells where instructions start there.
    #[error("{0:#x} is covered by no function symbol and no executable section of the file: xol cannot tell whether it starts an instruction")]
    Unknown(u64),
}

/// Check that the link-time address `vaddr` of the ELF file `b` is code and starts an
/// instruction, so a probe may replace its first byte. Addresses in the reasons are shifted by
/// `bias` (the load bias, to speak in the process's addresses).
///
/// How the instruction starts are known, in order: a symbol starting exactly at `vaddr` in an
/// executable section is an instruction start; inside a function symbol (`STT_FUNC` with a
/// size) the function is decoded from its first instruction; elsewhere in an executable
/// section (code without a sized symbol: PLT stubs, a stripped file), the code is decoded from
/// the closest known start before `vaddr` (the end of the previous function symbol, or the
/// section's start), as a disassembler does. With no symbols and no section headers, the
/// address is refused ([`NotCode::Unknown`]): nothing tells where instructions start.
pub fn check_code(b: &[u8], vaddr: u64, bias: u64) -> Result<(), NotCode> {
    let at = |a: u64| a.wrapping_add(bias);
    let seg = segments(b)
        .map_err(|_| NotCode::NotLoaded(at(vaddr)))?
        .into_iter()
        .find(|s| vaddr >= s.vaddr && vaddr - s.vaddr < s.filesz)
        .ok_or(NotCode::NotLoaded(at(vaddr)))?;
    if !seg.exec {
        return Err(NotCode::NotExecutable(at(vaddr)));
    }
    let syms = symbols(b).unwrap_or_default();
    let code_syms: Vec<&Symbol> = syms.iter().filter(|s| s.in_exec_section && !s.is_object).collect();
    if code_syms.iter().any(|s| s.value == vaddr) {
        return Ok(());
    }
    let bytes_at = |from: u64, to: u64| -> Option<&[u8]> {
        let off = (from - seg.vaddr + seg.offset) as usize;
        let end = (to.min(seg.vaddr + seg.filesz) - seg.vaddr + seg.offset) as usize;
        b.get(off..end)
    };
    // The function symbol that covers vaddr (the smallest, if they nest).
    let func = code_syms
        .iter()
        .filter(|s| s.is_func && s.size > 0 && s.value <= vaddr && vaddr - s.value < s.size)
        .min_by_key(|s| s.size);
    let (from, to, label) = match func {
        Some(f) => (f.value, f.value + f.size, Some(f.name.clone())),
        None => {
            let Some(sec) = sections(b)
                .unwrap_or_default()
                .into_iter()
                .find(|s| s.exec && !s.nobits && vaddr >= s.addr && vaddr - s.addr < s.size)
            else {
                return Err(NotCode::Unknown(at(vaddr)));
            };
            // The closest known instruction start before vaddr in this section.
            let from = code_syms
                .iter()
                .filter(|s| s.is_func && s.size > 0)
                .map(|s| s.value + s.size)
                .chain(code_syms.iter().map(|s| s.value))
                .filter(|e| *e >= sec.addr && *e <= vaddr)
                .max()
                .unwrap_or(sec.addr);
            (from, sec.addr + sec.size, None)
        }
    };
    if seg.vaddr > from {
        return Err(NotCode::Unknown(at(vaddr)));
    }
    let code = bytes_at(from, to).ok_or(NotCode::Unknown(at(vaddr)))?;
    match xol_arch::boundary::locate(code, from, vaddr) {
        xol_arch::boundary::Boundary::Start => Ok(()),
        xol_arch::boundary::Boundary::Inside { start, len, mnemonic } => Err(NotCode::Inside {
            addr: at(vaddr),
            start: at(start),
            len,
            mnemonic,
            func: label.map(|l| format!(" in {l}+{:#x}", start - from)).unwrap_or_default(),
        }),
        xol_arch::boundary::Boundary::Undecodable { at: stop } => Err(NotCode::Undecodable {
            addr: at(vaddr),
            from: at(from),
            at: at(stop),
            func: label.map(|l| format!(" ({l})")).unwrap_or_default(),
        }),
    }
}

/// Largest file xol reads as an ELF file (big libraries are a few hundred MiB).
pub const MAX_ELF_SIZE: u64 = 4 << 30;

/// Read the file at `path` to look at it as an ELF file, safely: only a regular file is read
/// (a FIFO, a device or a directory is refused without blocking: the file is checked with
/// `stat` first, then opened with `O_NONBLOCK` and checked again with `fstat` on the open
/// descriptor, so a file swapped in between is caught), and at most [`MAX_ELF_SIZE`] bytes.
pub fn read_file(path: &std::path::Path) -> Result<Vec<u8>, String> {
    read_file_id(path).map(|(b, _)| b)
}

/// [`read_file`], with the file's (device, inode) as the open descriptor's `fstat` gave them.
pub fn read_file_id(path: &std::path::Path) -> Result<(Vec<u8>, (u64, u64)), String> {
    use std::io::Read;
    use std::os::unix::fs::MetadataExt;
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    let regular = |md: &std::fs::Metadata| -> Result<(), String> {
        let ft = md.file_type();
        if ft.is_file() {
            return Ok(());
        }
        use std::os::unix::fs::FileTypeExt;
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a FIFO (named pipe)"
        } else if ft.is_char_device() || ft.is_block_device() {
            "a device"
        } else if ft.is_socket() {
            "a socket"
        } else {
            "not a regular file"
        };
        Err(format!("{shown} is {what}, not an executable or library file"))
    };
    regular(&std::fs::metadata(path).map_err(|e| format!("{shown}: {e}"))?)?;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| format!("{shown}: {e}"))?;
    let md = f.metadata().map_err(|e| format!("{shown}: {e}"))?;
    regular(&md)?;
    if md.len() > MAX_ELF_SIZE {
        return Err(format!("{shown} is {} bytes, more than xol reads ({MAX_ELF_SIZE})", md.len()));
    }
    // The header first: a big file that is not ELF is refused without reading it.
    let mut out = Vec::new();
    (&mut f).take(4).read_to_end(&mut out).map_err(|e| format!("{shown}: {e}"))?;
    if !is_elf(&out) {
        return Err(format!("{shown} is not an ELF file (an executable or a shared library)"));
    }
    out.reserve(md.len() as usize);
    (&mut f).take(MAX_ELF_SIZE + 1 - 4).read_to_end(&mut out).map_err(|e| format!("{shown}: {e}"))?;
    if out.len() as u64 > MAX_ELF_SIZE {
        return Err(format!("{shown} grew past {MAX_ELF_SIZE} bytes while being read"));
    }
    Ok((out, (md.dev(), md.ino())))
}

/// The file offset a probe at `what` in the ELF file `b` goes to: `what` is a symbol or
/// `0xOFFSET` (a file offset). Refused with the reason when it is not code: a data symbol, a
/// non-executable segment, or not an instruction start ([`check_code`]; addresses in the
/// reasons are the file's link-time addresses).
pub fn place_in_file(b: &[u8], what: &str) -> Result<u64, String> {
    if let Some(h) = what.strip_prefix("0x").or_else(|| what.strip_prefix("0X")) {
        let off = u64::from_str_radix(h, 16).map_err(|_| format!("bad offset {what:?}"))?;
        let (v, _) = offset_to_vaddr(b, off)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("offset {off:#x} is in no loadable segment of the file"))?;
        check_code(b, v, 0).map_err(|e| match v == off {
            true => format!("offset {e}"),
            false => format!("offset {off:#x} (address {v:#x} in the file): {e}"),
        })?;
        return Ok(off);
    }
    let sym = lookup_symbol(b, what).map_err(|e| e.to_string())?.ok_or_else(|| format!("no symbol {what:?}"))?;
    if !sym.in_exec_section {
        let kind = if sym.is_object { "a data object" } else { "a symbol" };
        return Err(format!("{what} is {kind} in a non-executable section, not code"));
    }
    let off = vaddr_to_offset(b, sym.value)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("{what} is not in a loaded segment"))?;
    check_code(b, sym.value, 0).map_err(|e| format!("{what}: {e}"))?;
    Ok(off)
}

/// Whether the mapped file at `path` is the file the user named `name` (a basename such as
/// `libc.so.6`, the end of the path, or the path), as gdb matches shared library names.
pub fn file_name_matches(path: &str, name: &str) -> bool {
    let path = path.strip_suffix(" (deleted)").unwrap_or(path);
    path == name || path.ends_with(&format!("/{name}"))
}

/// Whether the file at `path` may be the library whose soname is `name` although its name
/// differs: `/proc/PID/maps` shows the real file (`libstdc++.so.6.0.30`), the user and the
/// dynamic linker the soname (`libstdc++.so.6`). Then its `DT_SONAME` ([`soname`]) decides.
pub fn may_have_soname(path: &str, name: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    !name.contains('/') && base.len() > name.len() && base.starts_with(name) && base[name.len()..].starts_with('.')
}

/// The `DT_SONAME` of a shared library, if it has one.
pub fn soname(b: &[u8]) -> Option<String> {
    let h = header(b).ok()?;
    let phdrs = h.program_headers(LE, b).ok()?;
    let dynamic = phdrs.iter().find(|p| p.p_type(LE) == PT_DYNAMIC)?.dynamic(LE, b).ok()??;
    let (mut strtab, mut name) = (None, None);
    for d in dynamic {
        match u32::try_from(d.d_tag(LE)) {
            Ok(elf::DT_NULL) => break,
            Ok(elf::DT_STRTAB) => strtab = Some(d.d_val(LE)),
            Ok(elf::DT_SONAME) => name = Some(d.d_val(LE)),
            _ => {}
        }
    }
    let start = vaddr_to_offset(b, strtab?).ok()?? as usize + name? as usize;
    let bytes = b.get(start..)?;
    let end = bytes.iter().position(|c| *c == 0)?;
    Some(String::from_utf8_lossy(&bytes[..end]).into_owned())
}

/// Whether `b` starts like an ELF file.
pub fn is_elf(b: &[u8]) -> bool {
    b.starts_with(&ELFMAG)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_non_elf() {
        assert!(symbols(b"not an elf file at all, clearly not, no no no no no no no no no no no no").is_err());
        assert!(entry_and_type(&[0x7f, b'E', b'L', b'F']).is_err());
    }

    #[test]
    fn reads_the_soname_of_the_c_library() {
        let maps = std::fs::read_to_string("/proc/self/maps").expect("maps");
        let libc = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .find(|p| p.rsplit('/').next().is_some_and(|b| b.starts_with("libc.so")))
            .expect("libc mapped");
        let b = read_file(std::path::Path::new(libc)).expect("read libc");
        assert_eq!(soname(&b).as_deref(), Some("libc.so.6"));
        assert!(may_have_soname("/usr/lib/libstdc++.so.6.0.30", "libstdc++.so.6"));
        assert!(!may_have_soname("/usr/lib/libc.so.6", "libc.so.6"));
        assert!(!may_have_soname("/usr/lib/libcx.so.6", "libc.so"));
    }

    // Kept, named and writable in every build profile (an optimised build would otherwise fold
    // a static that is only read into its value and drop the symbol).
    #[used]
    #[no_mangle]
    static A_DATA_OBJECT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(7);

    /// A function the symbol-table test looks for by its exact name, in every build profile.
    #[no_mangle]
    #[inline(never)]
    pub extern "C" fn xol_symbols_test_function(x: u64) -> u64 {
        std::hint::black_box(x).wrapping_mul(3)
    }

    #[test]
    fn check_code_knows_instruction_starts_and_data() {
        let exe = std::env::current_exe().expect("current exe");
        let b = read_file(&exe).expect("read");
        let syms = symbols(&b).expect("symbols");
        // A function whose first instruction is longer than one byte.
        let (f, len) = syms
            .iter()
            .filter(|s| s.is_func && s.size > 16 && s.in_exec_section)
            .find_map(|s| {
                let off = vaddr_to_offset(&b, s.value).ok()?? as usize;
                let code = b.get(off..off + 16)?;
                match xol_arch::boundary::locate(code, s.value, s.value + 1) {
                    xol_arch::boundary::Boundary::Inside { len, .. } => Some((s, len as u64)),
                    _ => None,
                }
            })
            .expect("some function starts with a multi-byte instruction");
        assert_eq!(check_code(&b, f.value, 0), Ok(()));
        assert_eq!(check_code(&b, f.value + len, 0), Ok(()), "the second instruction of {}", f.name);
        match check_code(&b, f.value + 1, 0x1000) {
            Err(NotCode::Inside { addr, start, len: l, .. }) => {
                assert_eq!((addr, start, l as u64), (f.value + 1 + 0x1000, f.value + 0x1000, len))
            }
            other => panic!("inside {}: {other:?}", f.name),
        }
        assert!(A_DATA_OBJECT.load(std::sync::atomic::Ordering::Relaxed) == 7);
        let data = syms.iter().find(|s| s.name.contains("A_DATA_OBJECT")).cloned().expect("the data object's symbol");
        assert!(data.is_object && !data.in_exec_section, "{data:?}");
        assert_eq!(check_code(&b, data.value, 0), Err(NotCode::NotExecutable(data.value)));
        assert!(place_in_file(&b, &data.name).unwrap_err().contains("is a data object"));
    }

    #[test]
    fn refuses_what_is_not_a_regular_file() {
        assert!(read_file(std::path::Path::new("/dev/zero")).unwrap_err().contains("is a device"));
        assert!(read_file(std::path::Path::new("/")).unwrap_err().contains("is a directory"));
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/symbols/mod.rs");
        assert!(read_file(&src).unwrap_err().contains("is not an ELF file"));
    }

    #[test]
    fn reads_segments_and_header_of_its_own_test_binary() {
        let b = read_file(&std::env::current_exe().expect("current exe")).expect("read");
        let (entry, ty) = entry_and_type(&b).expect("header");
        assert!(ty == elf::ET_DYN || ty == elf::ET_EXEC, "{ty}");
        let segs = segments(&b).expect("segments");
        let text = segs.iter().find(|s| s.exec).expect("an executable segment");
        assert!(!text.writable, "{text:?}");
        assert!(
            segs.iter().any(|s| entry >= s.vaddr && entry < s.vaddr + s.filesz && s.exec),
            "entry {entry:#x} in code"
        );
        assert_eq!(vaddr_to_offset(&b, entry).expect("phdrs"), Some(entry - text.vaddr + text.offset));
        assert_eq!(offset_to_vaddr(&b, entry - text.vaddr + text.offset).expect("phdrs"), Some((entry, true)));
        let w = writable_segments(&b);
        assert!(!w.is_empty() && w.iter().all(|(v, _)| segs.iter().any(|s| s.vaddr == *v && s.writable)));
        assert_eq!(soname(&b), None, "an executable has no DT_SONAME");
        // Truncated after the header: the program headers point outside the file.
        assert!(segments(&b[..64]).is_err());
        assert!(writable_segments(&b[..64]).is_empty());
    }

    #[test]
    fn reads_its_own_test_binary() {
        let exe = std::env::current_exe().expect("current exe");
        let b = std::fs::read(exe).expect("read");
        let syms = symbols(&b).expect("symbols");
        assert_eq!(xol_symbols_test_function(2), 6);
        assert!(syms.iter().any(|s| s.is_func && s.name == "xol_symbols_test_function"));
        assert!(lookup(&b, "no_such_symbol_xyz").expect("lookup").is_none());
        let v = lookup(&b, "main").expect("lookup").expect("main");
        let off = vaddr_to_offset(&b, v).expect("phdrs").expect("in a PT_LOAD");
        assert!(off <= v, "text offsets are at most the address in this layout");
    }
}
