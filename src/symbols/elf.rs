//! The ELF and auxiliary-vector constants xol uses, named once. The ELF ones are `object`'s
//! (`object::elf`, the names of `<elf.h>`); the `AT_*` tags of `/proc/PID/auxv`, which
//! `object` does not define, are here with the values of `<elf.h>`. Every reader of ELF
//! structures (the file reader in [`crate::symbols`], the in-memory walk in [`crate::solib`])
//! and every auxv lookup names them from here.

pub use object::elf::{
    DT_DEBUG, DT_NEEDED, DT_NULL, DT_RPATH, DT_RUNPATH, DT_SONAME, DT_STRTAB, ELFCLASS64, ELFDATA2LSB, ELFMAG, ET_DYN,
    ET_EXEC, PF_W, PF_X, PT_DYNAMIC, PT_LOAD, PT_PHDR, SHF_ALLOC, SHF_EXECINSTR, SHN_LORESERVE, SHN_UNDEF, SHT_DYNSYM,
    SHT_NOBITS, SHT_SYMTAB, STT_FUNC, STT_OBJECT,
};

/// Size of one `Elf64_Phdr`.
pub const PHDR64_SIZE: u64 = 56;
/// Size of one `Elf64_Dyn`.
pub const DYN64_SIZE: u64 = 16;

/// `AT_NULL`: the end of the auxiliary vector.
pub const AT_NULL: u64 = 0;
/// `AT_PHDR`: where the program's program headers are in memory.
pub const AT_PHDR: u64 = 3;
/// `AT_PHENT`: the size of one program header.
pub const AT_PHENT: u64 = 4;
/// `AT_PHNUM`: how many program headers.
pub const AT_PHNUM: u64 = 5;
/// `AT_BASE`: where the dynamic linker (interpreter) is loaded; 0 for a static program.
pub const AT_BASE: u64 = 7;
/// `AT_ENTRY`: the program's entry point in memory (after the load bias).
pub const AT_ENTRY: u64 = 9;
/// `AT_SYSINFO_EHDR`: where the vDSO's ELF header is.
pub const AT_SYSINFO_EHDR: u64 = 33;
