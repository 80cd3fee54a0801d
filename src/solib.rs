//! The dynamic linker's view of loaded libraries (the SVR4 `r_debug` / `link_map` protocol),
//! read through any memory reader. Pure: no syscalls, testable on fake memory.
//!
//! Walk: auxv gives `AT_PHDR`/`AT_PHNUM` -> program headers -> load bias (from `PT_PHDR`) and
//! `PT_DYNAMIC` -> the `DT_DEBUG` entry, which the dynamic linker fills with `&_r_debug` ->
//! `r_map`, the `link_map` chain. Before the dynamic linker has run, the list is empty.

/// One `link_map` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkMapEntry {
    /// Address of the `link_map` structure.
    pub lm: u64,
    /// Path of the object.
    pub name: String,
    /// Load bias (`l_addr`).
    pub l_addr: u64,
    /// Address of its dynamic section (`l_ld`).
    pub l_ld: u64,
}

/// The libraries and the main program's `link_map`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LibraryList {
    /// The main program's `link_map` (0 if not known yet).
    pub main_lm: u64,
    /// The loaded objects after the main program.
    pub libraries: Vec<LinkMapEntry>,
    /// Address of `_r_debug` of the default namespace (gdb's `lmid`).
    pub r_debug: u64,
}

use crate::symbols::elf::{
    AT_NULL, AT_PHDR, AT_PHNUM, DT_DEBUG, DT_NULL, DYN64_SIZE, PHDR64_SIZE, PT_DYNAMIC, PT_PHDR,
};
use object::read::elf::{Dyn as _, ProgramHeader as _};
use object::LittleEndian as LE;

/// Parse an auxiliary vector into (type, value) pairs.
pub fn parse_auxv(raw: &[u8]) -> Vec<(u64, u64)> {
    raw.chunks_exact(16)
        .map(|c| {
            let k = u64::from_le_bytes(c[0..8].try_into().unwrap_or([0; 8]));
            let v = u64::from_le_bytes(c[8..16].try_into().unwrap_or([0; 8]));
            (k, v)
        })
        .take_while(|(k, _)| *k != AT_NULL)
        .collect()
}

fn rd64(read: &dyn Fn(u64, &mut [u8]) -> bool, addr: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    read(addr, &mut b).then(|| u64::from_le_bytes(b))
}

fn rd_cstr(read: &dyn Fn(u64, &mut [u8]) -> bool, addr: u64) -> String {
    let mut out = Vec::new();
    let mut a = addr;
    while out.len() < 4096 {
        let mut b = [0u8; 64];
        if !read(a, &mut b) {
            // Near the end of a mapping: fall back to byte-wise reads.
            let mut one = [0u8; 1];
            if !read(a, &mut one) || one[0] == 0 {
                break;
            }
            out.push(one[0]);
            a += 1;
            continue;
        }
        if let Some(z) = b.iter().position(|c| *c == 0) {
            out.extend_from_slice(&b[..z]);
            break;
        }
        out.extend_from_slice(&b);
        a += 64;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Find `&_r_debug` from the auxv and the program headers in memory.
pub fn find_r_debug(auxv: &[(u64, u64)], read: &dyn Fn(u64, &mut [u8]) -> bool) -> Option<u64> {
    let phdr = auxv.iter().find(|(k, _)| *k == AT_PHDR)?.1;
    let phnum = auxv.iter().find(|(k, _)| *k == AT_PHNUM)?.1.min(256);
    let mut bias = None;
    let mut dynamic = None;
    // The program headers as `object` reads them from a file, here read from memory.
    let mut raw = vec![0u8; (phnum * PHDR64_SIZE) as usize];
    if !read(phdr, &mut raw) {
        return None;
    }
    let phdrs: &[object::elf::ProgramHeader64<LE>] = object::pod::slice_from_all_bytes(&raw).ok()?;
    for ph in phdrs {
        let p_vaddr = ph.p_vaddr(LE);
        match ph.p_type(LE) {
            PT_PHDR => bias = Some(phdr.wrapping_sub(p_vaddr)),
            PT_DYNAMIC => dynamic = Some(p_vaddr),
            _ => {}
        }
    }
    let dyn_addr = dynamic?.wrapping_add(bias.unwrap_or(0));
    for i in 0..512u64 {
        let mut raw = [0u8; DYN64_SIZE as usize];
        if !read(dyn_addr + i * DYN64_SIZE, &mut raw) {
            return None;
        }
        let (d, _) = object::pod::from_bytes::<object::elf::Dyn64<LE>>(&raw).ok()?;
        match d.d_tag(LE) {
            t if t == u64::from(DT_NULL) => return None,
            t if t == u64::from(DT_DEBUG) => {
                let v = d.d_val(LE);
                return (v != 0).then_some(v);
            }
            _ => {}
        }
    }
    None
}

/// Read the library list; an empty list if the dynamic linker has not set things up yet.
pub fn read_libraries(auxv: &[(u64, u64)], read: &dyn Fn(u64, &mut [u8]) -> bool) -> LibraryList {
    let Some(r_debug) = find_r_debug(auxv, read) else { return LibraryList::default() };
    let Some(mut lm) = rd64(read, r_debug + 8) else { return LibraryList::default() };
    let mut list = LibraryList { main_lm: lm, libraries: Vec::new(), r_debug };
    let mut first = true;
    let mut seen = 0;
    while lm != 0 && seen < 4096 {
        seen += 1;
        let (Some(l_addr), Some(l_name), Some(l_ld), Some(l_next)) =
            (rd64(read, lm), rd64(read, lm + 8), rd64(read, lm + 16), rd64(read, lm + 24))
        else {
            break;
        };
        if !first {
            let name = if l_name != 0 { rd_cstr(read, l_name) } else { String::new() };
            list.libraries.push(LinkMapEntry { lm, name, l_addr, l_ld });
        }
        first = false;
        lm = l_next;
    }
    list
}

/// Escape a string for an XML attribute.
pub fn xml_escape(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&apos;"),
            c => o.push(c),
        }
    }
    o
}

impl LibraryList {
    /// The `qXfer:libraries-svr4:read` document.
    pub fn to_svr4_xml(&self) -> String {
        let mut s = String::from("<library-list-svr4 version=\"1.0\"");
        if self.main_lm != 0 {
            s.push_str(&format!(" main-lm=\"{:#x}\"", self.main_lm));
        }
        s.push('>');
        for l in &self.libraries {
            s.push_str(&format!(
                "<library name=\"{}\" lm=\"{:#x}\" l_addr=\"{:#x}\" l_ld=\"{:#x}\" lmid=\"{:#x}\"/>",
                xml_escape(&l.name),
                l.lm,
                l.l_addr,
                l.l_ld,
                self.r_debug
            ));
        }
        s.push_str("</library-list-svr4>");
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    struct Fake(BTreeMap<u64, u8>);
    impl Fake {
        fn put(&mut self, addr: u64, bytes: &[u8]) {
            for (i, b) in bytes.iter().enumerate() {
                self.0.insert(addr + i as u64, *b);
            }
        }
        fn read(&self, addr: u64, buf: &mut [u8]) -> bool {
            for (i, b) in buf.iter_mut().enumerate() {
                match self.0.get(&(addr + i as u64)) {
                    Some(v) => *b = *v,
                    None => return false,
                }
            }
            true
        }
    }

    fn phdr(t: u32, vaddr: u64) -> Vec<u8> {
        let mut v = vec![0u8; 56];
        v[0..4].copy_from_slice(&t.to_le_bytes());
        v[16..24].copy_from_slice(&vaddr.to_le_bytes());
        v
    }

    #[test]
    fn walks_link_map_of_a_pie() {
        let bias = 0x5555_0000_0000u64;
        let mut m = Fake(BTreeMap::new());
        m.put(bias + 0x40, &phdr(PT_PHDR, 0x40));
        m.put(bias + 0x40 + 56, &phdr(PT_DYNAMIC, 0x3000));
        // dynamic: DT_DEBUG -> r_debug at 0x7000
        m.put(bias + 0x3000, &[1u64.to_le_bytes(), 5u64.to_le_bytes()].concat());
        m.put(bias + 0x3010, &[u64::from(DT_DEBUG).to_le_bytes(), 0x7000u64.to_le_bytes()].concat());
        m.put(bias + 0x3020, &[0u64.to_le_bytes(), 0u64.to_le_bytes()].concat());
        m.put(0x7000, &[1u64.to_le_bytes(), 0x8000u64.to_le_bytes()].concat());
        // main lm at 0x8000 -> lib lm at 0x9000
        m.put(
            0x8000,
            &[0u64, 0xa000, bias + 0x3000, 0x9000, 0].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>(),
        );
        m.put(0xa000, b"\0");
        m.put(0x9000, &[0x7f00u64, 0xb000, 0x7f10, 0, 0x8000].iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<_>>());
        m.put(0xb000, b"/lib/x86_64-linux-gnu/libc.so.6\0");
        let auxv = vec![(AT_PHDR, bias + 0x40), (AT_PHNUM, 2)];
        let list = read_libraries(&auxv, &|a, b| m.read(a, b));
        assert_eq!(list.main_lm, 0x8000);
        assert_eq!(list.libraries.len(), 1);
        assert_eq!(list.libraries[0].name, "/lib/x86_64-linux-gnu/libc.so.6");
        assert_eq!(list.libraries[0].l_addr, 0x7f00);
        let xml = list.to_svr4_xml();
        assert!(xml.contains("main-lm=\"0x8000\""));
        assert!(xml.contains("l_ld=\"0x7f10\" lmid=\"0x7000\""));
    }

    #[test]
    fn empty_before_the_dynamic_linker_ran() {
        let mut m = Fake(BTreeMap::new());
        m.put(0x40, &phdr(PT_PHDR, 0x40));
        m.put(0x40 + 56, &phdr(PT_DYNAMIC, 0x3000));
        m.put(0x3000, &[u64::from(DT_DEBUG).to_le_bytes(), 0u64.to_le_bytes()].concat());
        let auxv = vec![(AT_PHDR, 0x40), (AT_PHNUM, 2)];
        let list = read_libraries(&auxv, &|a, b| m.read(a, b));
        assert_eq!(list, LibraryList::default());
        assert_eq!(list.to_svr4_xml(), "<library-list-svr4 version=\"1.0\"></library-list-svr4>");
    }

    #[test]
    fn auxv_parse_stops_at_null() {
        let raw: Vec<u8> = [3u64, 0x40, 5, 2, 0, 0, 9, 9].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(parse_auxv(&raw), vec![(3, 0x40), (5, 2)]);
    }
}
