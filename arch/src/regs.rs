//! The amd64-linux register file as gdb sees it.
//!
//! This module defines the register numbering, sizes and types that GNU
//! gdbserver uses for an x86-64 Linux inferior with AVX (target description
//! features `org.gnu.gdb.i386.core`, `.sse`, `.linux`, `.segments` and
//! `.avx`), together with the kernel-side storage those registers live in:
//!
//! * [`UserRegs`] mirrors the kernel's `struct user_regs_struct`
//!   (`PTRACE_GETREGS`),
//! * [`FxSave`] is the 512-byte FXSAVE area (`PTRACE_GETFPREGS`, and the
//!   first 512 bytes of the XSAVE area returned for `NT_X86_XSTATE`),
//! * [`RegisterFile`] bundles both plus the upper halves of the YMM registers
//!   and converts between that storage and gdb's register view (single
//!   registers for `p`/`P` packets, the whole file for `g`/`G` packets).
//!
//! The x87 conversions (16-bit full tag word versus FXSAVE's abridged 8-bit
//! tag, 16-bit control registers widened to 32 bits, the 11-bit opcode)
//! follow gdb's `i387_supply_fxsave` / `i387_collect_fxsave`, so a value
//! read by gdb through this module is what GNU gdbserver would have sent.

use std::fmt;

/// Number of registers in gdb's amd64-linux-avx register numbering.
pub const NUM_REGS: usize = 76;

/// gdb register number of `rsp`.
pub const RSP_REGNUM: usize = 7;
/// gdb register number of `rip`.
pub const RIP_REGNUM: usize = 16;
/// gdb register number of `eflags`.
pub const EFLAGS_REGNUM: usize = 17;
/// gdb register number of `st0` (`st1`..`st7` follow).
pub const ST0_REGNUM: usize = 24;
/// gdb register number of `fctrl` (the x87 control word).
pub const FCTRL_REGNUM: usize = 32;
/// gdb register number of `fstat` (the x87 status word).
pub const FSTAT_REGNUM: usize = 33;
/// gdb register number of `ftag` (the full 16-bit x87 tag word).
pub const FTAG_REGNUM: usize = 34;
/// gdb register number of `fiseg`.
pub const FISEG_REGNUM: usize = 35;
/// gdb register number of `fioff`.
pub const FIOFF_REGNUM: usize = 36;
/// gdb register number of `foseg`.
pub const FOSEG_REGNUM: usize = 37;
/// gdb register number of `fooff`.
pub const FOOFF_REGNUM: usize = 38;
/// gdb register number of `fop`.
pub const FOP_REGNUM: usize = 39;
/// gdb register number of `xmm0` (`xmm1`..`xmm15` follow).
pub const XMM0_REGNUM: usize = 40;
/// gdb register number of `mxcsr`.
pub const MXCSR_REGNUM: usize = 56;
/// gdb register number of `orig_rax`.
pub const ORIG_RAX_REGNUM: usize = 57;
/// gdb register number of `fs_base`.
pub const FS_BASE_REGNUM: usize = 58;
/// gdb register number of `gs_base`.
pub const GS_BASE_REGNUM: usize = 59;
/// gdb register number of `ymm0h` (`ymm1h`..`ymm15h` follow).
pub const YMM0H_REGNUM: usize = 60;

/// x87 control word after `FNINIT` (and in XSAVE's x87 init state).
pub const FCW_INIT: u16 = 0x037f;
/// MXCSR after reset (and in XSAVE's SSE init state).
pub const MXCSR_INIT: u32 = 0x1f80;

/// The x86-64 kernel's `struct user_regs_struct`, field for field.
///
/// The layout is identical to `libc::user_regs_struct` (27 `u64`s in kernel
/// order, 216 bytes), so a value of either type can be copied bytewise into
/// the other.
#[repr(C)]
#[derive(Default, Clone, Copy, Debug, PartialEq, Eq)]
#[allow(missing_docs)]
pub struct UserRegs {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rax: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub orig_rax: u64,
    pub rip: u64,
    pub cs: u64,
    pub eflags: u64,
    pub rsp: u64,
    pub ss: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

/// Size in bytes of [`UserRegs`] (and of the kernel's `user_regs_struct`).
pub const USER_REGS_SIZE: usize = 27 * 8;

const _: () = assert!(std::mem::size_of::<UserRegs>() == USER_REGS_SIZE);
const _: () = assert!(std::mem::size_of::<FxSave>() == FxSave::SIZE);

/// The 512-byte FXSAVE area in its 64-bit format.
///
/// Layout (byte offsets): `0..2` FCW, `2..4` FSW, `4` abridged FTW, `6..8`
/// FOP, `8..16` FPU instruction pointer, `16..24` FPU data pointer, `24..28`
/// MXCSR, `28..32` MXCSR_MASK, `32 + 16*i` ST(i) (10 bytes used, in stack
/// order), `160 + 16*i` XMMi, `464..512` software-available bytes.
///
/// gdb splits the 64-bit pointers the way `i387_supply_fxsave` does:
/// `fioff` = bytes `8..12`, `fiseg` = bytes `12..14`, `fooff` = bytes
/// `16..20`, `foseg` = bytes `20..22`.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct FxSave(pub [u8; 512]);

impl Default for FxSave {
    fn default() -> Self {
        FxSave([0; 512])
    }
}

impl fmt::Debug for FxSave {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Hex<'a>(&'a [u8]);
        impl fmt::Debug for Hex<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // Little-endian value: print most significant byte first.
                for b in self.0.iter().rev() {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
        }
        let st: Vec<Hex<'_>> = (0..8).map(|i| Hex(&self.0[32 + 16 * i..42 + 16 * i])).collect();
        let xmm: Vec<Hex<'_>> = (0..16).map(|i| Hex(&self.0[160 + 16 * i..176 + 16 * i])).collect();
        f.debug_struct("FxSave")
            .field("fcw", &format_args!("{:#06x}", self.fcw()))
            .field("fsw", &format_args!("{:#06x}", self.fsw()))
            .field("ftw", &format_args!("{:#04x}", self.ftw_abridged()))
            .field("fop", &format_args!("{:#05x}", self.fop()))
            .field("fip", &format_args!("{:#x}", self.fip()))
            .field("fdp", &format_args!("{:#x}", self.fdp()))
            .field("mxcsr", &format_args!("{:#x}", self.mxcsr()))
            .field("st", &st)
            .field("xmm", &xmm)
            .finish()
    }
}

impl FxSave {
    /// Size of the FXSAVE area in bytes.
    pub const SIZE: usize = 512;

    /// Builds an FXSAVE area from exactly 512 bytes; `None` otherwise.
    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        <[u8; 512]>::try_from(bytes).ok().map(FxSave)
    }

    /// The raw 512 bytes.
    pub fn as_bytes(&self) -> &[u8; 512] {
        &self.0
    }

    /// The raw 512 bytes, mutably.
    pub fn as_bytes_mut(&mut self) -> &mut [u8; 512] {
        &mut self.0
    }

    fn get<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut out = [0u8; N];
        out.copy_from_slice(&self.0[off..off + N]);
        out
    }

    fn put(&mut self, off: usize, bytes: &[u8]) {
        self.0[off..off + bytes.len()].copy_from_slice(bytes);
    }

    /// x87 control word (FCW, bytes `0..2`).
    pub fn fcw(&self) -> u16 {
        u16::from_le_bytes(self.get(0))
    }

    /// Sets the x87 control word.
    pub fn set_fcw(&mut self, v: u16) {
        self.put(0, &v.to_le_bytes());
    }

    /// x87 status word (FSW, bytes `2..4`).
    pub fn fsw(&self) -> u16 {
        u16::from_le_bytes(self.get(2))
    }

    /// Sets the x87 status word.
    pub fn set_fsw(&mut self, v: u16) {
        self.put(2, &v.to_le_bytes());
    }

    /// x87 top-of-stack pointer (FSW bits 11..13).
    pub fn top(&self) -> usize {
        usize::from((self.fsw() >> 11) & 7)
    }

    /// Abridged tag word (byte 4): bit `i` set means physical register
    /// R`i` is not empty.
    pub fn ftw_abridged(&self) -> u8 {
        self.0[4]
    }

    /// Sets the abridged tag word (byte 4).
    pub fn set_ftw_abridged(&mut self, v: u8) {
        self.0[4] = v;
    }

    /// Last x87 opcode (bytes `6..8`, low 11 bits).
    pub fn fop(&self) -> u16 {
        u16::from_le_bytes(self.get(6)) & 0x7ff
    }

    /// Sets the low 11 bits of the opcode field, preserving the other bits
    /// (as gdb's `i387_collect_fxsave` does).
    pub fn set_fop(&mut self, v: u16) {
        let old = u16::from_le_bytes(self.get(6));
        self.put(6, &((old & !0x7ff) | (v & 0x7ff)).to_le_bytes());
    }

    /// Full 64-bit FPU instruction pointer (bytes `8..16`).
    pub fn fip(&self) -> u64 {
        u64::from_le_bytes(self.get(8))
    }

    /// Sets the full 64-bit FPU instruction pointer.
    pub fn set_fip(&mut self, v: u64) {
        self.put(8, &v.to_le_bytes());
    }

    /// Full 64-bit FPU data pointer (bytes `16..24`).
    pub fn fdp(&self) -> u64 {
        u64::from_le_bytes(self.get(16))
    }

    /// Sets the full 64-bit FPU data pointer.
    pub fn set_fdp(&mut self, v: u64) {
        self.put(16, &v.to_le_bytes());
    }

    /// gdb's `fioff`: bytes `8..12`.
    pub fn fioff(&self) -> u32 {
        u32::from_le_bytes(self.get(8))
    }

    /// Sets gdb's `fioff` (bytes `8..12`).
    pub fn set_fioff(&mut self, v: u32) {
        self.put(8, &v.to_le_bytes());
    }

    /// gdb's `fiseg`: bytes `12..14`.
    pub fn fiseg(&self) -> u16 {
        u16::from_le_bytes(self.get(12))
    }

    /// Sets gdb's `fiseg` (bytes `12..14`).
    pub fn set_fiseg(&mut self, v: u16) {
        self.put(12, &v.to_le_bytes());
    }

    /// gdb's `fooff`: bytes `16..20`.
    pub fn fooff(&self) -> u32 {
        u32::from_le_bytes(self.get(16))
    }

    /// Sets gdb's `fooff` (bytes `16..20`).
    pub fn set_fooff(&mut self, v: u32) {
        self.put(16, &v.to_le_bytes());
    }

    /// gdb's `foseg`: bytes `20..22`.
    pub fn foseg(&self) -> u16 {
        u16::from_le_bytes(self.get(20))
    }

    /// Sets gdb's `foseg` (bytes `20..22`).
    pub fn set_foseg(&mut self, v: u16) {
        self.put(20, &v.to_le_bytes());
    }

    /// MXCSR (bytes `24..28`).
    pub fn mxcsr(&self) -> u32 {
        u32::from_le_bytes(self.get(24))
    }

    /// Sets MXCSR.
    pub fn set_mxcsr(&mut self, v: u32) {
        self.put(24, &v.to_le_bytes());
    }

    /// MXCSR_MASK (bytes `28..32`): the MXCSR bits the CPU supports.
    pub fn mxcsr_mask(&self) -> u32 {
        u32::from_le_bytes(self.get(28))
    }

    /// The 80-bit value of stack register ST(`i`); `None` if `i >= 8`.
    pub fn st(&self, i: usize) -> Option<[u8; 10]> {
        (i < 8).then(|| self.get(32 + 16 * i))
    }

    /// Sets stack register ST(`i`) (the 6 padding bytes are untouched);
    /// `None` if `i >= 8`.
    pub fn set_st(&mut self, i: usize, v: [u8; 10]) -> Option<()> {
        (i < 8).then(|| self.put(32 + 16 * i, &v))
    }

    /// The 128-bit value of XMM`i`; `None` if `i >= 16`.
    pub fn xmm(&self, i: usize) -> Option<[u8; 16]> {
        (i < 16).then(|| self.get(160 + 16 * i))
    }

    /// Sets XMM`i`; `None` if `i >= 16`.
    pub fn set_xmm(&mut self, i: usize, v: [u8; 16]) -> Option<()> {
        (i < 16).then(|| self.put(160 + 16 * i, &v))
    }

    /// gdb's `ftag`: the full 16-bit x87 tag word (2 bits per physical
    /// register: 0 valid, 1 zero, 2 special, 3 empty), reconstructed from
    /// the abridged tag and the register contents exactly as gdb's
    /// `i387_supply_fxsave` does.
    pub fn full_tag_word(&self) -> u16 {
        let abridged = self.ftw_abridged();
        let top = self.top();
        let mut ftag = 0u16;
        for fpreg in 0..8 {
            let tag = if abridged & (1 << fpreg) != 0 {
                // Physical register R(fpreg) is ST((fpreg - top) mod 8).
                let st = (fpreg + 8 - top) % 8;
                let raw: [u8; 10] = self.get(32 + 16 * st);
                u16::from(i387_tag(&raw))
            } else {
                3
            };
            ftag |= tag << (2 * fpreg);
        }
        ftag
    }

    /// Stores gdb's full tag word as FXSAVE's abridged tag (bit set for
    /// every register whose tag is not 3 = empty), clearing the reserved
    /// byte 5, exactly as gdb's `i387_collect_fxsave` does.
    pub fn set_full_tag_word(&mut self, ftag: u16) {
        let abridged = abridged_tag(ftag);
        self.0[4] = abridged;
        self.0[5] = 0;
    }

    /// Puts the x87 part (bytes `0..160` except MXCSR and MXCSR_MASK) into
    /// its XSAVE init state: FCW = 0x037f, everything else zero.
    pub fn reset_x87(&mut self) {
        self.0[0..24].fill(0);
        self.0[32..160].fill(0);
        self.set_fcw(FCW_INIT);
    }
}

/// Converts a full 16-bit x87 tag word to FXSAVE's abridged 8-bit form
/// (bit `i` set unless the 2-bit tag of physical register `i` is 3).
pub fn abridged_tag(ftag: u16) -> u8 {
    (0..8).fold(0u8, |acc, fpreg| if (ftag >> (2 * fpreg)) & 3 != 3 { acc | (1 << fpreg) } else { acc })
}

/// Classifies an 80-bit extended-precision value as the x87 tag word does:
/// 0 = valid, 1 = zero, 2 = special (NaN, infinity, denormal, unnormal).
/// Same logic as gdb's `i387_tag`.
pub fn i387_tag(raw: &[u8; 10]) -> u8 {
    let integer = raw[7] & 0x80 != 0;
    let exponent = u16::from_le_bytes([raw[8], raw[9]]) & 0x7fff;
    let mantissa = u64::from_le_bytes([raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7]]);
    let fraction = mantissa & 0x7fff_ffff_ffff_ffff;
    match exponent {
        0x7fff => 2,
        0 if fraction == 0 && !integer => 1,
        0 => 2,
        _ if integer => 0,
        _ => 2,
    }
}

/// Which target description feature a register belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Feature {
    /// `org.gnu.gdb.i386.core`: general registers, segments, x87.
    Core,
    /// `org.gnu.gdb.i386.sse`: xmm0..xmm15 and mxcsr.
    Sse,
    /// `org.gnu.gdb.i386.linux`: orig_rax.
    Linux,
    /// `org.gnu.gdb.i386.segments`: fs_base and gs_base.
    Segments,
    /// `org.gnu.gdb.i386.avx`: upper halves of ymm0..ymm15.
    Avx,
}

impl Feature {
    /// All features, in target description (and register number) order.
    pub const ALL: [Feature; 5] = [Feature::Core, Feature::Sse, Feature::Linux, Feature::Segments, Feature::Avx];

    /// The feature's name in the target description.
    pub fn name(self) -> &'static str {
        match self {
            Feature::Core => "org.gnu.gdb.i386.core",
            Feature::Sse => "org.gnu.gdb.i386.sse",
            Feature::Linux => "org.gnu.gdb.i386.linux",
            Feature::Segments => "org.gnu.gdb.i386.segments",
            Feature::Avx => "org.gnu.gdb.i386.avx",
        }
    }
}

/// Static description of one register in gdb's numbering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RegInfo {
    /// gdb's register name.
    pub name: &'static str,
    /// Size in bits (always a multiple of 8).
    pub bitsize: u32,
    /// Type name used in the target description.
    pub gdb_type: &'static str,
    /// Register group in the target description, if any.
    pub group: Option<&'static str>,
    /// Feature the register belongs to.
    pub feature: Feature,
}

impl RegInfo {
    /// Size in bytes.
    pub const fn size(&self) -> usize {
        (self.bitsize / 8) as usize
    }
}

const fn r(
    name: &'static str,
    bitsize: u32,
    gdb_type: &'static str,
    group: Option<&'static str>,
    feature: Feature,
) -> RegInfo {
    RegInfo { name, bitsize, gdb_type, group, feature }
}

use Feature::{Avx, Core, Linux, Segments, Sse};
const FLOAT: Option<&str> = Some("float");
const VECTOR: Option<&str> = Some("vector");

const REG_TABLE: [RegInfo; NUM_REGS] = [
    r("rax", 64, "int64", None, Core),
    r("rbx", 64, "int64", None, Core),
    r("rcx", 64, "int64", None, Core),
    r("rdx", 64, "int64", None, Core),
    r("rsi", 64, "int64", None, Core),
    r("rdi", 64, "int64", None, Core),
    r("rbp", 64, "data_ptr", None, Core),
    r("rsp", 64, "data_ptr", None, Core),
    r("r8", 64, "int64", None, Core),
    r("r9", 64, "int64", None, Core),
    r("r10", 64, "int64", None, Core),
    r("r11", 64, "int64", None, Core),
    r("r12", 64, "int64", None, Core),
    r("r13", 64, "int64", None, Core),
    r("r14", 64, "int64", None, Core),
    r("r15", 64, "int64", None, Core),
    r("rip", 64, "code_ptr", None, Core),
    r("eflags", 32, "i386_eflags", None, Core),
    r("cs", 32, "int32", None, Core),
    r("ss", 32, "int32", None, Core),
    r("ds", 32, "int32", None, Core),
    r("es", 32, "int32", None, Core),
    r("fs", 32, "int32", None, Core),
    r("gs", 32, "int32", None, Core),
    r("st0", 80, "i387_ext", None, Core),
    r("st1", 80, "i387_ext", None, Core),
    r("st2", 80, "i387_ext", None, Core),
    r("st3", 80, "i387_ext", None, Core),
    r("st4", 80, "i387_ext", None, Core),
    r("st5", 80, "i387_ext", None, Core),
    r("st6", 80, "i387_ext", None, Core),
    r("st7", 80, "i387_ext", None, Core),
    r("fctrl", 32, "int", FLOAT, Core),
    r("fstat", 32, "int", FLOAT, Core),
    r("ftag", 32, "int", FLOAT, Core),
    r("fiseg", 32, "int", FLOAT, Core),
    r("fioff", 32, "int", FLOAT, Core),
    r("foseg", 32, "int", FLOAT, Core),
    r("fooff", 32, "int", FLOAT, Core),
    r("fop", 32, "int", FLOAT, Core),
    r("xmm0", 128, "vec128", None, Sse),
    r("xmm1", 128, "vec128", None, Sse),
    r("xmm2", 128, "vec128", None, Sse),
    r("xmm3", 128, "vec128", None, Sse),
    r("xmm4", 128, "vec128", None, Sse),
    r("xmm5", 128, "vec128", None, Sse),
    r("xmm6", 128, "vec128", None, Sse),
    r("xmm7", 128, "vec128", None, Sse),
    r("xmm8", 128, "vec128", None, Sse),
    r("xmm9", 128, "vec128", None, Sse),
    r("xmm10", 128, "vec128", None, Sse),
    r("xmm11", 128, "vec128", None, Sse),
    r("xmm12", 128, "vec128", None, Sse),
    r("xmm13", 128, "vec128", None, Sse),
    r("xmm14", 128, "vec128", None, Sse),
    r("xmm15", 128, "vec128", None, Sse),
    r("mxcsr", 32, "i386_mxcsr", VECTOR, Sse),
    r("orig_rax", 64, "int", None, Linux),
    r("fs_base", 64, "int", None, Segments),
    r("gs_base", 64, "int", None, Segments),
    r("ymm0h", 128, "uint128", None, Avx),
    r("ymm1h", 128, "uint128", None, Avx),
    r("ymm2h", 128, "uint128", None, Avx),
    r("ymm3h", 128, "uint128", None, Avx),
    r("ymm4h", 128, "uint128", None, Avx),
    r("ymm5h", 128, "uint128", None, Avx),
    r("ymm6h", 128, "uint128", None, Avx),
    r("ymm7h", 128, "uint128", None, Avx),
    r("ymm8h", 128, "uint128", None, Avx),
    r("ymm9h", 128, "uint128", None, Avx),
    r("ymm10h", 128, "uint128", None, Avx),
    r("ymm11h", 128, "uint128", None, Avx),
    r("ymm12h", 128, "uint128", None, Avx),
    r("ymm13h", 128, "uint128", None, Avx),
    r("ymm14h", 128, "uint128", None, Avx),
    r("ymm15h", 128, "uint128", None, Avx),
];

/// All registers in gdb's numbering (index = gdb register number).
pub static REGS: [RegInfo; NUM_REGS] = REG_TABLE;

const fn g_len() -> usize {
    let mut total = 0;
    let mut i = 0;
    while i < NUM_REGS {
        total += REG_TABLE[i].size();
        i += 1;
    }
    total
}

/// Length in bytes of the binary `g` packet payload (all registers).
pub const G_PACKET_LEN: usize = g_len();

/// Size in bytes of register `regno`; `None` if out of range.
pub fn reg_size(regno: usize) -> Option<usize> {
    REGS.get(regno).map(RegInfo::size)
}

/// Byte offset of register `regno` inside the `g` packet payload; `None`
/// if out of range.
pub fn g_offset(regno: usize) -> Option<usize> {
    (regno < NUM_REGS).then(|| REGS[..regno].iter().map(RegInfo::size).sum())
}

/// gdb register number of the register called `name`.
pub fn regno_by_name(name: &str) -> Option<usize> {
    REGS.iter().position(|r| r.name == name)
}

/// Errors from register accesses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RegError {
    /// No register has this number.
    BadRegno(usize),
    /// The data for register `regno` has the wrong length (also used when a
    /// `G` payload ends in the middle of register `regno`).
    BadLength {
        /// The register number.
        regno: usize,
        /// Its size in bytes.
        expected: usize,
        /// The number of bytes supplied.
        got: usize,
    },
    /// A `G` payload is longer than the whole register file.
    TooLong {
        /// Size of the whole register file in bytes.
        max: usize,
        /// Size of the payload.
        got: usize,
    },
    /// An XSAVE buffer is too short to hold the components we need.
    XsaveTooShort {
        /// Minimum length in bytes.
        need: usize,
        /// Actual length.
        got: usize,
    },
}

impl fmt::Display for RegError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            RegError::BadRegno(n) => write!(f, "no register number {n}"),
            RegError::BadLength { regno, expected, got } => write!(
                f,
                "register {regno} ({}) is {expected} bytes, got {got}",
                REGS.get(regno).map_or("?", |r| r.name)
            ),
            RegError::TooLong { max, got } => {
                write!(f, "register data is {got} bytes, more than the {max} of the register file")
            }
            RegError::XsaveTooShort { need, got } => {
                write!(f, "XSAVE area is {got} bytes, need at least {need}")
            }
        }
    }
}

impl std::error::Error for RegError {}

/// Offset of the XSAVE header (`XSTATE_BV` is its first `u64`).
pub const XSAVE_HEADER_OFFSET: usize = 512;
/// Offset of the AVX component (upper halves of ymm0..15) in the standard
/// (non-compacted) XSAVE layout, as returned by `PTRACE_GETREGSET` with
/// `NT_X86_XSTATE`.
pub const XSAVE_YMMH_OFFSET: usize = 576;
/// Minimum XSAVE buffer length covering x87, SSE and AVX state.
pub const XSAVE_AVX_END: usize = XSAVE_YMMH_OFFSET + 16 * 16;
/// `XSTATE_BV` bit: x87 state.
pub const XSTATE_X87: u64 = 1 << 0;
/// `XSTATE_BV` bit: SSE state.
pub const XSTATE_SSE: u64 = 1 << 1;
/// `XSTATE_BV` bit: AVX state.
pub const XSTATE_AVX: u64 = 1 << 2;

/// Bytes of the FXSAVE legacy area that hold architectural state (FCW up to
/// the end of XMM15); the rest is reserved / software-available.
const FXSAVE_ARCH_END: usize = 160 + 16 * 16;

/// The whole register file of one thread.
#[derive(Default, Clone, PartialEq, Eq, Debug)]
pub struct RegisterFile {
    /// General-purpose registers (`PTRACE_GETREGS`).
    pub gp: UserRegs,
    /// x87 / SSE state (`PTRACE_GETFPREGS`).
    pub fx: FxSave,
    /// Upper 128 bits of ymm0..ymm15 (XSAVE AVX component).
    pub ymmh: [[u8; 16]; 16],
}

macro_rules! gp_map {
    ($($no:pat => $field:ident),* $(,)?) => {
        fn gp_ref(gp: &UserRegs, regno: usize) -> Option<&u64> {
            match regno {
                $($no => Some(&gp.$field),)*
                _ => None,
            }
        }
        fn gp_mut(gp: &mut UserRegs, regno: usize) -> Option<&mut u64> {
            match regno {
                $($no => Some(&mut gp.$field),)*
                _ => None,
            }
        }
    };
}

gp_map! {
    0 => rax, 1 => rbx, 2 => rcx, 3 => rdx, 4 => rsi, 5 => rdi, 6 => rbp, 7 => rsp,
    8 => r8, 9 => r9, 10 => r10, 11 => r11, 12 => r12, 13 => r13, 14 => r14, 15 => r15,
    16 => rip, 17 => eflags, 18 => cs, 19 => ss, 20 => ds, 21 => es, 22 => fs, 23 => gs,
    57 => orig_rax, 58 => fs_base, 59 => gs_base,
}

/// The value of general register `regno` (gdb's amd64 numbering: rax=0 .. gs=23,
/// orig_rax=57, fs_base=58, gs_base=59); `None` for any other register.
pub fn gp_value(gp: &UserRegs, regno: usize) -> Option<u64> {
    gp_ref(gp, regno).copied()
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(b)
}

impl RegisterFile {
    /// Appends register `regno`'s little-endian value (exactly its size in
    /// bytes) to `out`; `None` if there is no such register.
    pub fn read_reg(&self, regno: usize, out: &mut Vec<u8>) -> Option<()> {
        let info = REGS.get(regno)?;
        if let Some(v) = gp_ref(&self.gp, regno) {
            out.extend_from_slice(&v.to_le_bytes()[..info.size()]);
            return Some(());
        }
        let fx = &self.fx;
        match regno {
            24..=31 => out.extend_from_slice(&fx.st(regno - ST0_REGNUM)?),
            FCTRL_REGNUM => out.extend_from_slice(&u32::from(fx.fcw()).to_le_bytes()),
            FSTAT_REGNUM => out.extend_from_slice(&u32::from(fx.fsw()).to_le_bytes()),
            FTAG_REGNUM => out.extend_from_slice(&u32::from(fx.full_tag_word()).to_le_bytes()),
            FISEG_REGNUM => out.extend_from_slice(&u32::from(fx.fiseg()).to_le_bytes()),
            FIOFF_REGNUM => out.extend_from_slice(&fx.fioff().to_le_bytes()),
            FOSEG_REGNUM => out.extend_from_slice(&u32::from(fx.foseg()).to_le_bytes()),
            FOOFF_REGNUM => out.extend_from_slice(&fx.fooff().to_le_bytes()),
            FOP_REGNUM => out.extend_from_slice(&u32::from(fx.fop()).to_le_bytes()),
            40..=55 => out.extend_from_slice(&fx.xmm(regno - XMM0_REGNUM)?),
            MXCSR_REGNUM => out.extend_from_slice(&fx.mxcsr().to_le_bytes()),
            60..=75 => out.extend_from_slice(self.ymmh.get(regno - YMM0H_REGNUM)?),
            _ => return None,
        }
        Some(())
    }

    /// Sets register `regno` from its little-endian value; `bytes` must be
    /// exactly the register's size.
    ///
    /// 32-bit views of 64-bit kernel fields (eflags, segment registers) are
    /// stored zero-extended; 16-bit x87 fields take the low 16 bits; `ftag`
    /// is converted to FXSAVE's abridged tag; `fop` keeps the upper 5 bits
    /// of the stored opcode field.
    pub fn write_reg(&mut self, regno: usize, bytes: &[u8]) -> Result<(), RegError> {
        let info = REGS.get(regno).ok_or(RegError::BadRegno(regno))?;
        let expected = info.size();
        if bytes.len() != expected {
            return Err(RegError::BadLength { regno, expected, got: bytes.len() });
        }
        if let Some(slot) = gp_mut(&mut self.gp, regno) {
            let mut v = [0u8; 8];
            v[..expected].copy_from_slice(bytes);
            *slot = u64::from_le_bytes(v);
            return Ok(());
        }
        let fx = &mut self.fx;
        let mut buf16 = [0u8; 16];
        buf16[..expected].copy_from_slice(bytes);
        let mut st = [0u8; 10];
        st.copy_from_slice(&buf16[..10]);
        // Only meaningful for the 32-bit registers (bytes.len() == 4 there).
        let v32 = le_u32(&buf16);
        let bad = RegError::BadRegno(regno);
        match regno {
            24..=31 => fx.set_st(regno - ST0_REGNUM, st).ok_or(bad)?,
            FCTRL_REGNUM => fx.set_fcw(v32 as u16),
            FSTAT_REGNUM => fx.set_fsw(v32 as u16),
            FTAG_REGNUM => fx.set_full_tag_word(v32 as u16),
            FISEG_REGNUM => fx.set_fiseg(v32 as u16),
            FIOFF_REGNUM => fx.set_fioff(v32),
            FOSEG_REGNUM => fx.set_foseg(v32 as u16),
            FOOFF_REGNUM => fx.set_fooff(v32),
            FOP_REGNUM => fx.set_fop(v32 as u16),
            40..=55 => fx.set_xmm(regno - XMM0_REGNUM, buf16).ok_or(bad)?,
            MXCSR_REGNUM => fx.set_mxcsr(v32),
            60..=75 => *self.ymmh.get_mut(regno - YMM0H_REGNUM).ok_or(bad)? = buf16,
            _ => return Err(bad),
        }
        Ok(())
    }

    /// The binary `g` packet payload: all [`NUM_REGS`] registers in order,
    /// [`G_PACKET_LEN`] bytes.
    pub fn to_g_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(G_PACKET_LEN);
        for regno in 0..NUM_REGS {
            // Every regno below NUM_REGS is readable.
            let _ = self.read_reg(regno, &mut out);
        }
        out
    }

    /// Applies a binary `G` packet payload. gdb may send fewer bytes than
    /// [`G_PACKET_LEN`]; any prefix made of whole registers is accepted and
    /// the remaining registers are left unchanged. A payload that ends in
    /// the middle of a register, or is too long, is rejected without
    /// modifying anything.
    pub fn from_g_bytes(&mut self, bytes: &[u8]) -> Result<(), RegError> {
        if bytes.len() > G_PACKET_LEN {
            return Err(RegError::TooLong { max: G_PACKET_LEN, got: bytes.len() });
        }
        // Validate first so that an error leaves `self` untouched.
        let mut off = 0;
        let mut count = 0;
        while off < bytes.len() {
            let expected = REGS[count].size();
            let left = bytes.len() - off;
            if left < expected {
                return Err(RegError::BadLength { regno: count, expected, got: left });
            }
            off += expected;
            count += 1;
        }
        let mut off = 0;
        for (regno, info) in REGS.iter().enumerate().take(count) {
            let size = info.size();
            self.write_reg(regno, &bytes[off..off + size])?;
            off += size;
        }
        Ok(())
    }

    /// Program counter (`rip`).
    pub fn pc(&self) -> u64 {
        self.gp.rip
    }

    /// Sets the program counter (`rip`).
    pub fn set_pc(&mut self, pc: u64) {
        self.gp.rip = pc;
    }

    /// Stack pointer (`rsp`).
    pub fn sp(&self) -> u64 {
        self.gp.rsp
    }

    /// Fills `fx` and `ymmh` from a standard-format XSAVE buffer (as
    /// returned by `PTRACE_GETREGSET` with `NT_X86_XSTATE`).
    ///
    /// Components whose `XSTATE_BV` bit is clear are in their init state
    /// and are set accordingly (as gdb's `i387_supply_xsave` does): x87 →
    /// FCW 0x037f and everything else zero, SSE → xmm zero, AVX → ymmh zero;
    /// MXCSR becomes 0x1f80 if both SSE and AVX are in init state.
    pub fn supply_xsave(&mut self, xsave: &[u8]) -> Result<(), RegError> {
        if xsave.len() < XSAVE_AVX_END {
            return Err(RegError::XsaveTooShort { need: XSAVE_AVX_END, got: xsave.len() });
        }
        self.fx.0.copy_from_slice(&xsave[..FxSave::SIZE]);
        let mut bv = [0u8; 8];
        bv.copy_from_slice(&xsave[XSAVE_HEADER_OFFSET..XSAVE_HEADER_OFFSET + 8]);
        let xstate_bv = u64::from_le_bytes(bv);
        if xstate_bv & XSTATE_X87 == 0 {
            self.fx.reset_x87();
        }
        if xstate_bv & XSTATE_SSE == 0 {
            self.fx.0[160..FXSAVE_ARCH_END].fill(0);
        }
        if xstate_bv & (XSTATE_SSE | XSTATE_AVX) == 0 {
            self.fx.set_mxcsr(MXCSR_INIT);
        }
        for (i, h) in self.ymmh.iter_mut().enumerate() {
            if xstate_bv & XSTATE_AVX == 0 {
                *h = [0; 16];
            } else {
                let off = XSAVE_YMMH_OFFSET + 16 * i;
                h.copy_from_slice(&xsave[off..off + 16]);
            }
        }
        Ok(())
    }

    /// Stores `fx` and `ymmh` into a standard-format XSAVE buffer
    /// (previously filled by `PTRACE_GETREGSET`, to be written back with
    /// `PTRACE_SETREGSET`), setting the x87, SSE and AVX bits of
    /// `XSTATE_BV`. Only the architectural part of the legacy area (bytes
    /// `0..416`) is written; reserved and software bytes are preserved.
    pub fn collect_xsave(&self, xsave: &mut [u8]) -> Result<(), RegError> {
        if xsave.len() < XSAVE_AVX_END {
            return Err(RegError::XsaveTooShort { need: XSAVE_AVX_END, got: xsave.len() });
        }
        xsave[..FXSAVE_ARCH_END].copy_from_slice(&self.fx.0[..FXSAVE_ARCH_END]);
        let hdr = &mut xsave[XSAVE_HEADER_OFFSET..XSAVE_HEADER_OFFSET + 8];
        let mut bv = [0u8; 8];
        bv.copy_from_slice(hdr);
        let xstate_bv = u64::from_le_bytes(bv) | XSTATE_X87 | XSTATE_SSE | XSTATE_AVX;
        hdr.copy_from_slice(&xstate_bv.to_le_bytes());
        for (i, h) in self.ymmh.iter().enumerate() {
            let off = XSAVE_YMMH_OFFSET + 16 * i;
            xsave[off..off + 16].copy_from_slice(h);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A register file with a distinct value in every byte-ish position.
    fn populated() -> RegisterFile {
        let gp = UserRegs {
            r15: 0x1515_1515_1515_1515,
            r14: 0x1414_1414_1414_1414,
            r13: 0x1313_1313_1313_1313,
            r12: 0x1212_1212_1212_1212,
            rbp: 0x7ffd_0000_1000,
            rbx: 0xbbbb_bbbb_bbbb_bbbb,
            r11: 0x1111_1111_1111_1111,
            r10: 0x1010_1010_1010_1010,
            r9: 0x0909_0909_0909_0909,
            r8: 0x0808_0808_0808_0808,
            rax: 0xaaaa_aaaa_aaaa_aaaa,
            rcx: 0xcccc_cccc_cccc_cccc,
            rdx: 0xdddd_dddd_dddd_dddd,
            rsi: 0x5151_5151_5151_5151,
            rdi: 0xd1d1_d1d1_d1d1_d1d1,
            orig_rax: 0xffff_ffff_ffff_ffff,
            rip: 0x5555_5555_4000,
            cs: 0x33,
            eflags: 0x246,
            rsp: 0x7ffd_0000_0ff0,
            ss: 0x2b,
            fs_base: 0x7f00_0000_1740,
            gs_base: 0,
            ds: 0,
            es: 0,
            fs: 0,
            gs: 0,
        };
        let mut rf = RegisterFile { gp, ..Default::default() };
        rf.fx.set_fcw(0x037f);
        // top = 6, so physical R6 = st0 and R7 = st1.
        rf.fx.set_fsw(6 << 11);
        rf.fx.set_ftw_abridged(0b1100_0000);
        rf.fx.set_fop(0x5d9);
        rf.fx.set_fioff(0x1234_5678);
        rf.fx.set_fiseg(0x33);
        rf.fx.set_fooff(0x9abc_def0);
        rf.fx.set_foseg(0x2b);
        rf.fx.set_mxcsr(0x1fa0);
        // st0 = 1.0, st1 = 0.0
        rf.fx.set_st(0, one()).unwrap();
        rf.fx.set_st(1, [0; 10]).unwrap();
        for i in 0..16 {
            rf.fx.set_xmm(i, [i as u8 + 0x40; 16]).unwrap();
            rf.ymmh[i] = [i as u8 + 0x80; 16];
        }
        rf
    }

    /// 1.0 as an 80-bit extended value.
    fn one() -> [u8; 10] {
        [0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x3f]
    }

    #[test]
    fn user_regs_layout() {
        assert_eq!(std::mem::size_of::<UserRegs>(), 216);
        assert_eq!(std::mem::size_of::<FxSave>(), 512);
    }

    #[test]
    fn g_packet_length() {
        let expected = 16 * 8 + 8 + 4 + 6 * 4 + 8 * 10 + 8 * 4 + 16 * 16 + 4 + 8 + 16 + 16 * 16;
        assert_eq!(expected, 816);
        assert_eq!(G_PACKET_LEN, expected);
        assert_eq!(REGS.iter().map(RegInfo::size).sum::<usize>(), expected);
        assert_eq!(RegisterFile::default().to_g_bytes().len(), expected);
        assert_eq!(populated().to_g_bytes().len(), expected);
        assert_eq!(g_offset(0), Some(0));
        assert_eq!(g_offset(RIP_REGNUM), Some(128));
        assert_eq!(g_offset(XMM0_REGNUM), Some(276));
        assert_eq!(g_offset(YMM0H_REGNUM), Some(560));
        assert_eq!(g_offset(NUM_REGS), None);
    }

    #[test]
    fn table_numbering() {
        let expect = [
            ("rax", 0),
            ("rsp", RSP_REGNUM),
            ("r8", 8),
            ("r15", 15),
            ("rip", RIP_REGNUM),
            ("eflags", EFLAGS_REGNUM),
            ("cs", 18),
            ("gs", 23),
            ("st0", ST0_REGNUM),
            ("st7", 31),
            ("fctrl", FCTRL_REGNUM),
            ("fstat", FSTAT_REGNUM),
            ("ftag", FTAG_REGNUM),
            ("fiseg", FISEG_REGNUM),
            ("fioff", FIOFF_REGNUM),
            ("foseg", FOSEG_REGNUM),
            ("fooff", FOOFF_REGNUM),
            ("fop", FOP_REGNUM),
            ("xmm0", XMM0_REGNUM),
            ("xmm15", 55),
            ("mxcsr", MXCSR_REGNUM),
            ("orig_rax", ORIG_RAX_REGNUM),
            ("fs_base", FS_BASE_REGNUM),
            ("gs_base", GS_BASE_REGNUM),
            ("ymm0h", YMM0H_REGNUM),
            ("ymm15h", 75),
        ];
        for (name, no) in expect {
            assert_eq!(regno_by_name(name), Some(no), "{name}");
        }
        assert_eq!(regno_by_name("zmm0"), None);
        for (i, r) in REGS.iter().enumerate() {
            assert_eq!(r.bitsize % 8, 0);
            assert_eq!(regno_by_name(r.name), Some(i), "duplicate name {}", r.name);
        }
    }

    #[test]
    fn g_round_trip() {
        let rf = populated();
        let g = rf.to_g_bytes();
        let mut back = RegisterFile::default();
        back.from_g_bytes(&g).unwrap();
        assert_eq!(back.to_g_bytes(), g);
        assert_eq!(back.gp, rf.gp);
        assert_eq!(back.ymmh, rf.ymmh);
        // Writing the same values into the original changes nothing.
        let mut same = rf.clone();
        same.from_g_bytes(&g).unwrap();
        assert_eq!(same, rf);
        // Spot-check layout.
        assert_eq!(&g[0..8], &rf.gp.rax.to_le_bytes());
        assert_eq!(&g[128..136], &rf.gp.rip.to_le_bytes());
        assert_eq!(&g[136..140], &0x246u32.to_le_bytes());
        assert_eq!(&g[560..576], &rf.ymmh[0]);
    }

    #[test]
    fn g_prefix_and_errors() {
        let src = populated();
        let g = src.to_g_bytes();
        let mut rf = RegisterFile::default();
        // Only the 16 general registers + rip.
        rf.from_g_bytes(&g[..136]).unwrap();
        assert_eq!(rf.gp.rip, src.gp.rip);
        assert_eq!(rf.gp.r15, src.gp.r15);
        assert_eq!(rf.gp.eflags, 0);
        // Empty payload is a valid (empty) prefix.
        rf.from_g_bytes(&[]).unwrap();
        // Partial register: rejected, nothing modified.
        let before = rf.clone();
        assert_eq!(rf.from_g_bytes(&g[..138]), Err(RegError::BadLength { regno: EFLAGS_REGNUM, expected: 4, got: 2 }));
        assert_eq!(rf, before);
        let mut long = g.clone();
        long.push(0);
        assert_eq!(rf.from_g_bytes(&long), Err(RegError::TooLong { max: 816, got: 817 }));
        assert_eq!(rf, before);
    }

    fn read(rf: &RegisterFile, regno: usize) -> Vec<u8> {
        let mut v = Vec::new();
        rf.read_reg(regno, &mut v).unwrap();
        assert_eq!(v.len(), REGS[regno].size(), "{}", REGS[regno].name);
        v
    }

    #[test]
    fn per_class_read_write() {
        let mut rf = RegisterFile::default();
        let mut out = Vec::new();
        assert_eq!(rf.read_reg(NUM_REGS, &mut out), None);
        assert!(out.is_empty());
        assert_eq!(rf.write_reg(76, &[0; 8]), Err(RegError::BadRegno(76)));

        // 64-bit general registers map onto the kernel fields.
        for regno in 0..=RIP_REGNUM {
            let v = 0x0102_0304_0506_0700u64 + regno as u64;
            rf.write_reg(regno, &v.to_le_bytes()).unwrap();
            assert_eq!(read(&rf, regno), v.to_le_bytes());
        }
        assert_eq!(rf.gp.rax, 0x0102_0304_0506_0700);
        assert_eq!(rf.gp.rbx, 0x0102_0304_0506_0701);
        assert_eq!(rf.gp.rsp, 0x0102_0304_0506_0707);
        assert_eq!(rf.gp.r8, 0x0102_0304_0506_0708);
        assert_eq!(rf.sp(), rf.gp.rsp);
        assert_eq!(rf.pc(), 0x0102_0304_0506_0710);
        rf.set_pc(0x401000);
        assert_eq!(rf.gp.rip, 0x401000);
        assert_eq!(rf.write_reg(0, &[0; 4]), Err(RegError::BadLength { regno: 0, expected: 8, got: 4 }));

        // eflags and segment registers: 32-bit views, zero-extended writes.
        rf.gp.eflags = 0xdead_beef_0000_0246;
        assert_eq!(read(&rf, EFLAGS_REGNUM), 0x246u32.to_le_bytes());
        rf.write_reg(EFLAGS_REGNUM, &0x202u32.to_le_bytes()).unwrap();
        assert_eq!(rf.gp.eflags, 0x202);
        rf.gp.fs = u64::MAX;
        rf.write_reg(22, &0x63u32.to_le_bytes()).unwrap();
        assert_eq!(rf.gp.fs, 0x63);
        rf.write_reg(18, &0x33u32.to_le_bytes()).unwrap();
        assert_eq!(rf.gp.cs, 0x33);
        assert_eq!(read(&rf, 18), 0x33u32.to_le_bytes());

        // st registers: 10 bytes at 32 + 16*i; padding untouched.
        rf.fx.0[32 + 16 * 3 + 10] = 0xee;
        let val = [1, 2, 3, 4, 5, 6, 7, 0x88, 9, 0x40];
        rf.write_reg(ST0_REGNUM + 3, &val).unwrap();
        assert_eq!(&rf.fx.0[80..90], &val);
        assert_eq!(rf.fx.0[90], 0xee);
        assert_eq!(read(&rf, ST0_REGNUM + 3), val);
        assert!(rf.write_reg(ST0_REGNUM, &[0; 16]).is_err());

        // x87 control registers.
        rf.write_reg(FCTRL_REGNUM, &0x037fu32.to_le_bytes()).unwrap();
        assert_eq!(&rf.fx.0[0..2], &[0x7f, 0x03]);
        rf.write_reg(FSTAT_REGNUM, &0x3800u32.to_le_bytes()).unwrap();
        assert_eq!(rf.fx.top(), 7);
        rf.fx.0[6..8].copy_from_slice(&0xf800u16.to_le_bytes());
        rf.write_reg(FOP_REGNUM, &0xffff_f123u32.to_le_bytes()).unwrap();
        assert_eq!(u16::from_le_bytes([rf.fx.0[6], rf.fx.0[7]]), 0xf800 | 0x123);
        assert_eq!(read(&rf, FOP_REGNUM), 0x123u32.to_le_bytes());
        rf.write_reg(FIOFF_REGNUM, &0x8765_4321u32.to_le_bytes()).unwrap();
        rf.write_reg(FISEG_REGNUM, &0x0001_0023u32.to_le_bytes()).unwrap();
        rf.write_reg(FOOFF_REGNUM, &0x1122_3344u32.to_le_bytes()).unwrap();
        rf.write_reg(FOSEG_REGNUM, &0x2bu32.to_le_bytes()).unwrap();
        assert_eq!(rf.fx.fip(), 0x0000_0023_8765_4321);
        assert_eq!(rf.fx.fdp(), 0x0000_002b_1122_3344);
        assert_eq!(read(&rf, FISEG_REGNUM), 0x23u32.to_le_bytes());
        assert_eq!(read(&rf, FIOFF_REGNUM), 0x8765_4321u32.to_le_bytes());
        assert_eq!(read(&rf, FOSEG_REGNUM), 0x2bu32.to_le_bytes());
        assert_eq!(read(&rf, FOOFF_REGNUM), 0x1122_3344u32.to_le_bytes());

        // xmm and mxcsr.
        let x: [u8; 16] = std::array::from_fn(|i| i as u8 * 3);
        rf.write_reg(XMM0_REGNUM + 15, &x).unwrap();
        assert_eq!(&rf.fx.0[400..416], &x);
        assert_eq!(read(&rf, 55), x);
        rf.write_reg(MXCSR_REGNUM, &0x1f80u32.to_le_bytes()).unwrap();
        assert_eq!(rf.fx.mxcsr(), 0x1f80);
        assert_eq!(&rf.fx.0[24..28], &0x1f80u32.to_le_bytes());
        assert_eq!(read(&rf, MXCSR_REGNUM), 0x1f80u32.to_le_bytes());

        // orig_rax, fs_base, gs_base.
        rf.write_reg(ORIG_RAX_REGNUM, &(-1i64).to_le_bytes()).unwrap();
        assert_eq!(rf.gp.orig_rax, u64::MAX);
        rf.write_reg(FS_BASE_REGNUM, &0x7f12_3456_7000u64.to_le_bytes()).unwrap();
        assert_eq!(rf.gp.fs_base, 0x7f12_3456_7000);
        rf.write_reg(GS_BASE_REGNUM, &7u64.to_le_bytes()).unwrap();
        assert_eq!(rf.gp.gs_base, 7);
        assert_eq!(read(&rf, GS_BASE_REGNUM), 7u64.to_le_bytes());

        // ymmh.
        let y = [0x5a; 16];
        rf.write_reg(YMM0H_REGNUM + 2, &y).unwrap();
        assert_eq!(rf.ymmh[2], y);
        assert_eq!(read(&rf, 62), y);
        assert!(rf.write_reg(75, &[0; 15]).is_err());
    }

    #[test]
    fn i387_tag_classes() {
        assert_eq!(i387_tag(&one()), 0);
        assert_eq!(i387_tag(&[0; 10]), 1);
        // Negative zero is still zero.
        assert_eq!(i387_tag(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0x80]), 1);
        // Infinity / NaN.
        assert_eq!(i387_tag(&[0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x7f]), 2);
        // Denormal.
        assert_eq!(i387_tag(&[1, 0, 0, 0, 0, 0, 0, 0, 0, 0]), 2);
        // Pseudo-denormal (integer bit set, exponent zero).
        assert_eq!(i387_tag(&[0, 0, 0, 0, 0, 0, 0, 0x80, 0, 0]), 2);
        // Unnormal (integer bit clear, nonzero exponent).
        assert_eq!(i387_tag(&[0, 0, 0, 0, 0, 0, 0, 0x40, 0xff, 0x3f]), 2);
    }

    #[test]
    fn ftag_conversion() {
        let mut fx = FxSave::default();
        // All empty.
        assert_eq!(fx.full_tag_word(), 0xffff);

        // One value pushed onto an empty stack: top = 7, st0 = R7 = 1.0.
        fx.set_fsw(7 << 11);
        fx.set_ftw_abridged(0x80);
        fx.set_st(0, one()).unwrap();
        assert_eq!(fx.full_tag_word(), 0x3fff);

        // Push 0.0: top = 6, st0 = R6 = 0.0, st1 = R7 = 1.0.
        fx.set_fsw(6 << 11);
        fx.set_ftw_abridged(0xc0);
        fx.set_st(1, one()).unwrap();
        fx.set_st(0, [0; 10]).unwrap();
        assert_eq!(fx.full_tag_word(), 0x1fff);

        // Push an infinity: top = 5, R5 special.
        fx.set_fsw(5 << 11);
        fx.set_ftw_abridged(0xe0);
        fx.set_st(2, one()).unwrap();
        fx.set_st(1, [0; 10]).unwrap();
        fx.set_st(0, [0, 0, 0, 0, 0, 0, 0, 0x80, 0xff, 0x7f]).unwrap();
        assert_eq!(fx.full_tag_word(), 0x1bff);
        assert_eq!(abridged_tag(0x1bff), 0xe0);

        // Empty registers ignore their (stale) contents.
        fx.set_ftw_abridged(0x00);
        assert_eq!(fx.full_tag_word(), 0xffff);

        // Collect back: any tag other than 3 sets the abridged bit.
        fx.0[5] = 0xaa;
        fx.set_full_tag_word(0x1bff);
        assert_eq!(fx.ftw_abridged(), 0xe0);
        assert_eq!(fx.0[5], 0);
        fx.set_full_tag_word(0xffff);
        assert_eq!(fx.ftw_abridged(), 0);
        fx.set_full_tag_word(0x0000);
        assert_eq!(fx.ftw_abridged(), 0xff);
        fx.set_full_tag_word(0b11_10_01_00_11_10_01_00);
        assert_eq!(fx.ftw_abridged(), 0b0111_0111);

        // Through the register interface.
        let mut rf = RegisterFile::default();
        assert_eq!(read(&rf, FTAG_REGNUM), 0xffffu32.to_le_bytes());
        rf.fx.set_fsw(7 << 11);
        rf.fx.set_st(0, one()).unwrap();
        rf.write_reg(FTAG_REGNUM, &0x3fffu32.to_le_bytes()).unwrap();
        assert_eq!(rf.fx.ftw_abridged(), 0x80);
        assert_eq!(read(&rf, FTAG_REGNUM), 0x3fffu32.to_le_bytes());
    }

    #[test]
    fn populated_ftag() {
        let rf = populated();
        // R6 = st0 = 1.0 (valid, 00), R7 = st1 = 0.0 (zero, 01), rest empty.
        assert_eq!(rf.fx.full_tag_word(), 0x4fff);
    }

    #[test]
    fn fxsave_from_bytes() {
        assert!(FxSave::from_bytes(&[0; 511]).is_none());
        let mut raw = [0u8; 512];
        raw[24..28].copy_from_slice(&0x1f80u32.to_le_bytes());
        let fx = FxSave::from_bytes(&raw).unwrap();
        assert_eq!(fx.mxcsr(), 0x1f80);
        assert_eq!(fx.as_bytes(), &raw);
        assert_eq!(fx.st(8), None);
        assert_eq!(fx.xmm(16), None);
        let dbg = format!("{fx:?}");
        assert!(dbg.contains("mxcsr: 0x1f80"), "{dbg}");
    }

    #[test]
    fn xsave_round_trip() {
        let rf = populated();
        let mut buf = vec![0u8; 1024];
        buf[500] = 0x77; // software-reserved byte must be preserved
        assert_eq!(rf.collect_xsave(&mut buf[..831]), Err(RegError::XsaveTooShort { need: 832, got: 831 }));
        rf.collect_xsave(&mut buf).unwrap();
        assert_eq!(buf[500], 0x77);
        assert_eq!(buf[512] & 7, 7);
        assert_eq!(&buf[576..592], &rf.ymmh[0]);
        let mut back = RegisterFile { gp: rf.gp, ..Default::default() };
        back.supply_xsave(&buf).unwrap();
        assert_eq!(back.ymmh, rf.ymmh);
        assert_eq!(back.to_g_bytes(), rf.to_g_bytes());

        // Init-state components.
        buf[512] = 0;
        back.supply_xsave(&buf).unwrap();
        assert_eq!(back.fx.fcw(), FCW_INIT);
        assert_eq!(back.fx.full_tag_word(), 0xffff);
        assert_eq!(back.fx.st(0), Some([0; 10]));
        assert_eq!(back.fx.xmm(3), Some([0; 16]));
        assert_eq!(back.fx.mxcsr(), MXCSR_INIT);
        assert_eq!(back.ymmh, [[0; 16]; 16]);
        // SSE in init state but AVX live: mxcsr is kept.
        buf[512] = XSTATE_AVX as u8;
        back.supply_xsave(&buf).unwrap();
        assert_eq!(back.fx.mxcsr(), 0x1fa0);
        assert_eq!(back.ymmh, rf.ymmh);
    }

    #[test]
    fn error_display() {
        let e = RegError::BadLength { regno: 17, expected: 4, got: 8 };
        assert_eq!(e.to_string(), "register 17 (eflags) is 4 bytes, got 8");
        assert_eq!(RegError::BadRegno(99).to_string(), "no register number 99");
        let _: &dyn std::error::Error = &e;
    }
}
