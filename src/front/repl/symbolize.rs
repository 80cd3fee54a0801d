//! Addresses to names and back for the REPL, from the ELF symbol tables of the program and of
//! every library the process has loaded (each with its own load bias): `<probe_site+4>`,
//! `in fwrite () from /lib/x86_64-linux-gnu/libc.so.6`, and gdb's prologue skip for a
//! function without debug information (`break FUNC` stops after `push %rbp; mov %rsp,%rbp`).

use crate::symbols::{self, Symbol};
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One loaded object: its file, its load bias and its symbols sorted by address.
#[derive(Debug, Clone)]
pub struct Module {
    /// The file.
    pub path: PathBuf,
    /// Added to the file's addresses.
    pub bias: u64,
    /// Symbols with a nonzero address, sorted.
    syms: Vec<Symbol>,
    /// The biased `.text` range.
    pub text: Option<(u64, u64)>,
    /// Whether this is the main program (no `from LIB` in frames).
    pub main: bool,
    /// gdb would have debug information for it (its own or a separate debug file).
    pub debug: bool,
}

/// What one file gives: its sorted symbols, its `.text` range, whether it has debug info.
type FileSyms = (Vec<Symbol>, Option<(u64, u64)>, bool);

/// The modules of one process, and the files read so far.
#[derive(Debug, Default)]
pub struct Symbolizer {
    modules: Vec<Module>,
    files: HashMap<PathBuf, FileSyms>,
}

impl Symbolizer {
    /// Forget the modules (a new process, an exec, libraries changed); files stay cached.
    pub fn clear(&mut self) {
        self.modules.clear();
    }

    /// Add a module.
    pub fn add(&mut self, path: &Path, bias: u64, main: bool) {
        let (syms, text, debug) = self
            .files
            .entry(path.to_path_buf())
            .or_insert_with(|| {
                let Ok(bytes) = symbols::read_file(path) else { return (Vec::new(), None, false) };
                let mut syms: Vec<Symbol> =
                    symbols::symbols(&bytes).unwrap_or_default().into_iter().filter(|s| s.value != 0).collect();
                syms.sort_by_key(|s| (s.value, !s.is_func));
                (syms, symbols::text_range(&bytes), symbols::has_debug_info(path, &bytes))
            })
            .clone();
        let text = text.map(|(a, b)| (a.wrapping_add(bias), b.wrapping_add(bias)));
        self.modules.push(Module { path: path.to_path_buf(), bias, syms, text, main, debug });
    }

    /// The modules.
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    /// The module whose text holds `addr` (or, failing that, the one with the nearest symbol
    /// below it).
    fn module_of(&self, addr: u64) -> Option<&Module> {
        self.modules.iter().find(|m| m.text.is_some_and(|(a, b)| addr >= a && addr < b)).or_else(|| {
            self.modules
                .iter()
                .filter(|m| m.syms.first().is_some_and(|s| s.value.wrapping_add(m.bias) <= addr))
                .max_by_key(|m| m.bias)
        })
    }

    /// The symbol at or below `addr` (functions only when `code`) and the offset into it.
    pub fn lookup(&self, addr: u64, code: bool) -> Option<(&str, u64, &Module)> {
        let m = self.module_of(addr)?;
        let off = addr.wrapping_sub(m.bias);
        let idx = m.syms.partition_point(|s| s.value <= off);
        let sym = m.syms[..idx].iter().rev().find(|s| !code || s.is_func || s.in_exec_section)?;
        // Past the end of a sized function: not in it (gdb shows `??`).
        if code && sym.size != 0 && off >= sym.value + sym.size {
            return None;
        }
        Some((sym.name.as_str(), off - sym.value, m))
    }

    /// `<sym+off>` (`<sym>` at offset 0) for `addr`, as gdb labels addresses.
    pub fn label(&self, addr: u64) -> Option<String> {
        let (name, off, _) = self.lookup(addr, false)?;
        Some(if off == 0 { format!("<{name}>") } else { format!("<{name}+{off}>") })
    }

    /// gdb's frame description of `pc` without debug information: `FUNC ()`, `FUNC () from
    /// LIB`, or `?? ()`.
    pub fn frame(&self, pc: u64) -> String {
        match self.lookup(pc, true) {
            Some((name, _, m)) if !m.main => format!("{name} () from {}", m.path.display()),
            Some((name, _, _)) => format!("{name} ()"),
            None => match self.module_of(pc).filter(|m| !m.main) {
                Some(m) => format!("?? () from {}", m.path.display()),
                None => "?? ()".into(),
            },
        }
    }

    /// Whether any module has debug information (gdb's "a symbol table is loaded").
    pub fn any_debug_info(&self) -> bool {
        self.modules.iter().any(|m| m.debug)
    }

    /// A symbol by name: its address and whether it is code. The main program first, then the
    /// libraries in load order.
    pub fn symbol(&self, name: &str) -> Option<(u64, bool)> {
        let mut ordered: Vec<&Module> = self.modules.iter().filter(|m| m.main).collect();
        ordered.extend(self.modules.iter().filter(|m| !m.main));
        ordered.into_iter().find_map(|m| {
            let s = m.syms.iter().filter(|s| s.name == name).max_by_key(|s| (s.is_func, s.in_exec_section))?;
            Some((s.value.wrapping_add(m.bias), s.is_func || s.in_exec_section))
        })
    }
}

/// gdb's prologue analysis for a function without line information (amd64): after an optional
/// `endbr64`, `push %rbp; mov %rsp,%rbp` is skipped; a function without that frame setup is
/// broken at its first instruction. `code` holds the function's first bytes.
pub fn skip_prologue(code: &[u8]) -> u64 {
    let endbr = code.starts_with(&[0xf3, 0x0f, 0x1e, 0xfa]);
    let at = if endbr { 4 } else { 0 };
    let rest = &code[at.min(code.len())..];
    let mov = |b: &[u8]| b == [0x48, 0x89, 0xe5] || b == [0x48, 0x8b, 0xec];
    if rest.first() == Some(&0x55) && rest.get(1..4).is_some_and(mov) {
        (at + 4) as u64
    } else {
        0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prologues_as_gdb_skips_them() {
        assert_eq!(skip_prologue(&[0x55, 0x48, 0x89, 0xe5, 0x89, 0x7d]), 4);
        assert_eq!(skip_prologue(&[0xf3, 0x0f, 0x1e, 0xfa, 0x55, 0x48, 0x89, 0xe5]), 8);
        assert_eq!(skip_prologue(&[0xf3, 0x0f, 0x1e, 0xfa, 0x48, 0x83, 0xec, 0x08]), 0, "frameless: the entry");
        assert_eq!(skip_prologue(&[0x55, 0x53]), 0, "push without the frame pointer move");
        assert_eq!(skip_prologue(&[]), 0);
    }
}
