//! Symbols of the programs xol debugs. For now: ELF64 symbol tables (`.symtab`, else `.dynsym`)
//! read from a file's bytes, so a front-end can name a location by symbol (`monitor count
//! main`). Pure parsing over bytes; the caller reads the file and applies the load bias.

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
}

/// Errors of ELF parsing.
#[derive(Debug, thiserror::Error)]
pub enum ElfError {
    /// Not a little-endian ELF64 file, or a header points outside the file.
    #[error("not a readable ELF64 file: {0}")]
    Bad(&'static str),
}

fn u16_at(b: &[u8], o: usize) -> Result<u16, ElfError> {
    b.get(o..o + 2).map(|s| u16::from_le_bytes([s[0], s[1]])).ok_or(ElfError::Bad("truncated"))
}
fn u32_at(b: &[u8], o: usize) -> Result<u32, ElfError> {
    b.get(o..o + 4).map(|s| u32::from_le_bytes(s.try_into().unwrap_or([0; 4]))).ok_or(ElfError::Bad("truncated"))
}
fn u64_at(b: &[u8], o: usize) -> Result<u64, ElfError> {
    b.get(o..o + 8).map(|s| u64::from_le_bytes(s.try_into().unwrap_or([0; 8]))).ok_or(ElfError::Bad("truncated"))
}

/// The ELF header's entry point (`e_entry`) and type (`e_type`: 2 EXEC, 3 DYN).
pub fn entry_and_type(b: &[u8]) -> Result<(u64, u16), ElfError> {
    if b.len() < 64 || &b[0..4] != b"\x7fELF" || b[4] != 2 || b[5] != 1 {
        return Err(ElfError::Bad("not ELF64 little-endian"));
    }
    Ok((u64_at(b, 24)?, u16_at(b, 16)?))
}

/// All defined symbols with a name, from `.symtab` if present, else `.dynsym`.
pub fn symbols(b: &[u8]) -> Result<Vec<Symbol>, ElfError> {
    entry_and_type(b)?;
    let shoff = u64_at(b, 40)? as usize;
    let shentsize = u16_at(b, 58)? as usize;
    let shnum = u16_at(b, 60)? as usize;
    let section = |i: usize| -> Result<(u32, u64, u64, u32, u64), ElfError> {
        let o = shoff + i * shentsize;
        // (sh_type, sh_offset, sh_size, sh_link, sh_entsize)
        Ok((u32_at(b, o + 4)?, u64_at(b, o + 24)?, u64_at(b, o + 32)?, u32_at(b, o + 40)?, u64_at(b, o + 56)?))
    };
    const SHT_SYMTAB: u32 = 2;
    const SHT_DYNSYM: u32 = 11;
    let mut tables = Vec::new();
    for i in 0..shnum {
        let s = section(i)?;
        if s.0 == SHT_SYMTAB || s.0 == SHT_DYNSYM {
            tables.push(s);
        }
    }
    tables.sort_by_key(|s| if s.0 == SHT_SYMTAB { 0 } else { 1 });
    let Some(&(_, off, size, link, entsize)) = tables.first() else { return Ok(Vec::new()) };
    let (_, stroff, strsize, _, _) = section(link as usize)?;
    let strtab = b.get(stroff as usize..(stroff + strsize) as usize).ok_or(ElfError::Bad("string table"))?;
    let entsize = if entsize == 0 { 24 } else { entsize as usize };
    let mut out = Vec::new();
    for k in 0..(size as usize / entsize) {
        let o = off as usize + k * entsize;
        let name_off = u32_at(b, o)? as usize;
        let info = *b.get(o + 4).ok_or(ElfError::Bad("symbol"))?;
        let shndx = u16_at(b, o + 6)?;
        let value = u64_at(b, o + 8)?;
        let sz = u64_at(b, o + 16)?;
        if shndx == 0 || name_off >= strtab.len() {
            continue;
        }
        let end = strtab[name_off..].iter().position(|c| *c == 0).map(|p| name_off + p).unwrap_or(strtab.len());
        let name = String::from_utf8_lossy(&strtab[name_off..end]).into_owned();
        if name.is_empty() {
            continue;
        }
        out.push(Symbol { name, value, size: sz, is_func: info & 0xf == 2 });
    }
    Ok(out)
}

/// The file offset of the link-time address `vaddr`: `vaddr - p_vaddr + p_offset` of the
/// `PT_LOAD` segment that contains it (what a per-file probe is keyed by).
pub fn vaddr_to_offset(b: &[u8], vaddr: u64) -> Result<Option<u64>, ElfError> {
    entry_and_type(b)?;
    let phoff = u64_at(b, 32)? as usize;
    let phentsize = u16_at(b, 54)? as usize;
    let phnum = u16_at(b, 56)? as usize;
    for i in 0..phnum {
        let o = phoff + i * phentsize;
        if u32_at(b, o)? != 1 {
            continue; // not PT_LOAD
        }
        let off = u64_at(b, o + 8)?;
        let va = u64_at(b, o + 16)?;
        let filesz = u64_at(b, o + 32)?;
        if vaddr >= va && vaddr < va + filesz {
            return Ok(Some(vaddr - va + off));
        }
    }
    Ok(None)
}

/// The link-time value of the symbol `name` (functions first).
pub fn lookup(b: &[u8], name: &str) -> Result<Option<u64>, ElfError> {
    let syms = symbols(b)?;
    let best = syms.iter().filter(|s| s.name == name).max_by_key(|s| s.is_func);
    Ok(best.map(|s| s.value))
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
    fn reads_its_own_test_binary() {
        let exe = std::env::current_exe().expect("current exe");
        let b = std::fs::read(exe).expect("read");
        let syms = symbols(&b).expect("symbols");
        assert!(syms.iter().any(|s| s.is_func && s.name.contains("reads_its_own_test_binary")));
        assert!(lookup(&b, "no_such_symbol_xyz").expect("lookup").is_none());
        let v = lookup(&b, "main").expect("lookup").expect("main");
        let off = vaddr_to_offset(&b, v).expect("phdrs").expect("in a PT_LOAD");
        assert!(off <= v, "text offsets are at most the address in this layout");
    }
}
