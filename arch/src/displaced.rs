//! Displaced stepping: resuming a thread from an `int3` breakpoint without
//! lifting the breakpoint.
//!
//! When a thread stops on one of xol's breakpoints, the original instruction
//! (whose bytes the caller has already restored in its own buffer) must run
//! exactly once, while the `int3` stays in the inferior's code so that other
//! threads keep hitting it.  Like the kernel's uprobes, this module decides
//! *how* that happens ([`plan`]) and computes every fix-up; the caller does
//! all the ptrace work:
//!
//! * [`Plan::Emulate`]: the tracer executes the instruction itself on the
//!   register file and the inferior's memory ([`Emulation::apply`]).  Used
//!   for branches (which cannot run anywhere but at their own address
//!   without rewriting) and for frequent, simple instructions (`push`,
//!   `mov`, `lea`, nops, `sub rsp, n`, ...).  No slot, no second stop.
//! * [`Plan::Boost`]: the instruction does not depend on its own address, so
//!   a verbatim copy followed by an absolute jump back runs in a *slot* (a
//!   small code area xol maps into the inferior, one immutable slot per
//!   probed address, [`SLOT_SIZE`] bytes).  The caller sets `rip` to the slot
//!   and lets the thread run; the jump brings it back to [`Copy::next`].
//! * [`Plan::Step`]: the copy must be single-stepped in the slot and fixed
//!   up afterwards with [`fixup`]: RIP-relative instructions (rewritten to
//!   address through a scratch register holding the original next `rip`)
//!   and `syscall` (whose saved return address in `rcx` must be corrected).
//! * [`Plan::Refuse`]: the instruction cannot be resumed out of line at all
//!   (privileged, interrupts, far branches, undecodable bytes, ...).
//!
//! # What each plan covers
//!
//! * Emulate: every `nop` (including `nop r/m`, which never accesses
//!   memory), `endbr64`/`endbr32`; `push r16/r64`, `push imm8/imm16/imm32`
//!   (sign-extended), `pushf`/`pushfq` (RF and VM cleared in the pushed
//!   value), `pop r16/r64` (`pop rsp` loads the popped value); `mov` between
//!   general registers (all sizes, `ah`..`bh` included), `mov r, imm` (all
//!   sizes, `movabs`), `mov` loads and stores with a RIP-relative operand
//!   (register or immediate source); `add`/`sub`/`cmp` with a register
//!   destination and a register or immediate source (flags exact); `lea`
//!   of any form; `jmp rel8/rel32`, `call rel32`, all 16 `jcc rel8/rel32`,
//!   `loop`/`loope`/`loopne`, `jrcxz`/`jecxz` (with `ecx` under an
//!   address-size prefix), `ret`, `ret imm16`, `jmp r/m64` and `call r/m64`
//!   (registers or any memory operand).  `bnd`/`rep`/`notrack`/hint
//!   prefixes on branches are ignored as the CPU does; any other `lock` or
//!   `rep` prefix prevents emulation.
//! * Boost: any other instruction with no control-flow effect that is not
//!   RIP-relative, privileged, an interrupt or a system call: memory `mov`s
//!   through registers, `fs:`/`gs:` accesses, logic operations (whose AF is
//!   architecturally undefined, so they are not emulated), `cmov`, `lock`ed
//!   and `rep` string instructions (an interrupted `rep` stops at the slot
//!   start and [`fixup`] rewinds it to the original address), SSE/AVX,
//!   `leave`, `popf`, `cpuid`, `xend`, `xabort`, ...
//! * Step: non-emulated RIP-relative instructions (rewritten through a
//!   scratch register), `syscall` (copied verbatim; [`fixup`] corrects the
//!   return address the kernel stores in `rcx`), and `ud0`/`ud1`/`ud2`
//!   (they fault in the slot; [`fixup`] rewinds, so the `SIGILL` arrives at
//!   the original address).
//! * Refuse: undecodable or truncated bytes, `int n`, `int1`, `int3`
//!   (`into` does not exist in 64-bit mode), port I/O, privileged (CPL 0 or
//!   IOPL) instructions such as `hlt`, `cli`, `sti`, `mov cr0`, `sysenter`,
//!   `sysexit`, `sysret`, `iret*`, far `jmp`/`call`/`ret`, `xbegin`, branches
//!   with an operand-size prefix (Intel and AMD disagree about them), and a
//!   RIP-relative instruction for which no scratch register works.
//!
//! # Invariants
//!
//! * A [`Copy`](struct@Copy) always has exactly the length of the original
//!   instruction, so `slot + len` is where the copy ends whatever the
//!   rewrite, and [`Copy::slot_bytes`] never exceeds [`SLOT_SIZE`].
//! * A rewritten RIP-relative copy differs from the original in the ModRM
//!   byte only (`mod=00 rm=101` becomes `mod=10 rm=scratch`); no prefix
//!   changes, the displacement stays.  The scratch register is not used by
//!   the instruction in any way, and with the scratch set to [`Copy::next`]
//!   the copy accesses exactly the address the original would.
//! * [`Emulation::apply`] is atomic: it performs every memory read first,
//!   at most one memory write last, and commits registers only after that
//!   write succeeded, so a fault leaves the thread exactly as it was (the
//!   caller can then deliver the fault at the original instruction).
//! * Emulation is only chosen where the result is architecturally exact,
//!   including flags; instructions with undefined flags, `lock`/`rep`
//!   prefixes or vendor-specific behaviour are copied or refused instead.
//!
//! Emulated `call`/`ret` update only the ordinary stack: a process with a
//! CET user shadow stack enabled must not use emulation for them (the next
//! real `ret` would fault); copies in slots are unaffected.
//!
//! The module is pure: it decodes with `iced-x86` and manipulates plain
//! values; all process access goes through the caller's [`Memory`].

use std::fmt;

use iced_x86::{
    Code, ConditionCode, CpuidFeature, Decoder, DecoderError, DecoderOptions, FlowControl, Instruction,
    InstructionInfoFactory, Mnemonic, OpKind, Register,
};

use crate::regs::UserRegs;

/// Bytes per slot; [`Copy::slot_bytes`] always fits.
pub const SLOT_SIZE: usize = 64;
/// Longest x86 instruction, in bytes.
pub const MAX_INSN_LEN: usize = 15;
/// Length of the jump back appended to every copy (`jmp qword ptr [rip+0]`
/// followed by the 8-byte target).
pub const JUMP_BACK_LEN: usize = 14;

/// Carry flag.
pub const FLAG_CF: u64 = 1 << 0;
/// Parity flag.
pub const FLAG_PF: u64 = 1 << 2;
/// Auxiliary carry flag.
pub const FLAG_AF: u64 = 1 << 4;
/// Zero flag.
pub const FLAG_ZF: u64 = 1 << 6;
/// Sign flag.
pub const FLAG_SF: u64 = 1 << 7;
/// Trap flag.
pub const FLAG_TF: u64 = 1 << 8;
/// Overflow flag.
pub const FLAG_OF: u64 = 1 << 11;
/// Resume flag.
pub const FLAG_RF: u64 = 1 << 16;
/// Virtual-8086 mode flag.
pub const FLAG_VM: u64 = 1 << 17;
/// The six arithmetic status flags.
const STATUS_FLAGS: u64 = FLAG_CF | FLAG_PF | FLAG_AF | FLAG_ZF | FLAG_SF | FLAG_OF;

// ---------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------

/// How a breakpointed instruction is resumed.
#[derive(Debug, Clone)]
pub enum Plan {
    /// The tracer executes the instruction itself.
    Emulate(Emulation),
    /// A copy runs in the slot and jumps back by itself; no second stop.
    Boost(Copy),
    /// A copy is single-stepped in the slot, then [`fixup`] is applied.
    Step(Copy),
    /// The instruction cannot be resumed without lifting the breakpoint.
    Refuse(Refusal),
}

/// The kind of a [`Plan`], without its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PlanKind {
    /// [`Plan::Emulate`].
    Emulate,
    /// [`Plan::Boost`].
    Boost,
    /// [`Plan::Step`].
    Step,
    /// [`Plan::Refuse`].
    Refuse,
}

impl fmt::Display for PlanKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PlanKind::Emulate => "emulate",
            PlanKind::Boost => "boosted",
            PlanKind::Step => "out-of-line",
            PlanKind::Refuse => "refused",
        })
    }
}

#[allow(clippy::len_without_is_empty)]
impl Plan {
    /// The kind of this plan.
    pub fn kind(&self) -> PlanKind {
        match self {
            Plan::Emulate(_) => PlanKind::Emulate,
            Plan::Boost(_) => PlanKind::Boost,
            Plan::Step(_) => PlanKind::Step,
            Plan::Refuse(_) => PlanKind::Refuse,
        }
    }

    /// Length of the original instruction (0 for undecodable bytes).
    pub fn len(&self) -> usize {
        match self {
            Plan::Emulate(e) => e.len(),
            Plan::Boost(c) | Plan::Step(c) => c.len(),
            Plan::Refuse(r) => r.len,
        }
    }

    /// Lowercase mnemonic of the original instruction (`"push"`, `"jne"`),
    /// or `"(bad)"` for undecodable bytes.
    pub fn mnemonic(&self) -> String {
        match self {
            Plan::Emulate(e) => e.mnemonic.clone(),
            Plan::Boost(c) | Plan::Step(c) => c.mnemonic.clone(),
            Plan::Refuse(r) => r.mnemonic.clone(),
        }
    }

    /// The copy of a [`Plan::Boost`] or [`Plan::Step`].
    pub fn copy(&self) -> Option<&Copy> {
        match self {
            Plan::Boost(c) | Plan::Step(c) => Some(c),
            _ => None,
        }
    }
}

/// Why an instruction cannot be resumed out of line.
#[derive(Debug, Clone)]
pub struct Refusal {
    reason: String,
    len: usize,
    mnemonic: String,
}

impl Refusal {
    fn new(reason: impl Into<String>, instr: Option<&Instruction>) -> Refusal {
        Refusal {
            reason: reason.into(),
            len: instr.map_or(0, |i| i.len()),
            mnemonic: instr.map_or_else(|| "(bad)".to_string(), mnemonic_of),
        }
    }

    /// The reason, e.g. `"privileged instruction (hlt)"`.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

fn mnemonic_of(instr: &Instruction) -> String {
    format!("{:?}", instr.mnemonic()).to_lowercase()
}

/// Decide the plan for the instruction whose original bytes start `code`
/// (up to [`MAX_INSN_LEN`] bytes are looked at; fewer are fine near the end
/// of a mapping) at address `addr`, in 64-bit mode.
pub fn plan(code: &[u8], addr: u64) -> Plan {
    let instr = match decode(code, addr) {
        Ok(i) => i,
        Err(r) => return Plan::Refuse(r),
    };
    if let Some(reason) = refusal_reason(&instr) {
        return Plan::Refuse(Refusal::new(reason, Some(&instr)));
    }
    if let Some(op) = emulation_op(&instr, code) {
        return Plan::Emulate(Emulation { instr, op, mnemonic: mnemonic_of(&instr) });
    }
    copy_plan(&instr, code, addr)
}

/// A copy that can always be executed out of line by single-stepping it: the
/// same as [`plan`] but a boostable instruction becomes a step, and
/// instructions [`plan`] emulates get a copy too when one can run in a slot.
/// `None` for branches (which only emulation handles), `pushf*` (a
/// single-stepped `pushf` would push the trap flag) and refused instructions.
///
/// Used for gdb `stepi` on a boosted instruction, and as the fallback when
/// an emulation cannot be used.
pub fn step_copy(code: &[u8], addr: u64) -> Option<Copy> {
    let instr = decode(code, addr).ok()?;
    if refusal_reason(&instr).is_some() || matches!(instr.mnemonic(), Mnemonic::Pushf | Mnemonic::Pushfq) {
        return None;
    }
    match copy_plan(&instr, code, addr) {
        Plan::Boost(c) | Plan::Step(c) => Some(c),
        _ => None,
    }
}

fn decode(code: &[u8], addr: u64) -> Result<Instruction, Refusal> {
    let code = &code[..code.len().min(MAX_INSN_LEN)];
    let mut decoder = Decoder::with_ip(64, code, addr, DecoderOptions::NONE);
    let instr = decoder.decode();
    if instr.is_invalid() {
        let reason = if decoder.last_error() == DecoderError::NoMoreBytes {
            "undecodable bytes (truncated instruction)"
        } else {
            "undecodable bytes"
        };
        return Err(Refusal::new(reason, None));
    }
    Ok(instr)
}

/// The reason an instruction can neither be emulated nor copied, if any.
fn refusal_reason(instr: &Instruction) -> Option<String> {
    let m = instr.mnemonic();
    let name = mnemonic_of(instr);
    Some(match m {
        Mnemonic::Syscall => return None,
        Mnemonic::Int => "int n cannot run out of line".to_string(),
        Mnemonic::Int1 | Mnemonic::Int3 | Mnemonic::Into => format!("{name} cannot run out of line"),
        Mnemonic::In
        | Mnemonic::Out
        | Mnemonic::Insb
        | Mnemonic::Insw
        | Mnemonic::Insd
        | Mnemonic::Outsb
        | Mnemonic::Outsw
        | Mnemonic::Outsd => format!("port i/o instruction ({name})"),
        Mnemonic::Sysenter | Mnemonic::Sysexit | Mnemonic::Sysexitq | Mnemonic::Sysret | Mnemonic::Sysretq => {
            format!("{name} cannot run out of line")
        }
        Mnemonic::Iret | Mnemonic::Iretd | Mnemonic::Iretq => format!("{name}: interrupt return"),
        Mnemonic::Retf => format!("far branch ({name})"),
        Mnemonic::Xbegin => "xbegin: relative abort target".to_string(),
        _ if instr.is_jmp_far()
            || instr.is_jmp_far_indirect()
            || instr.is_call_far()
            || instr.is_call_far_indirect() =>
        {
            format!("far branch ({name})")
        }
        _ if instr.is_privileged() => format!("privileged instruction ({name})"),
        _ if instr.flow_control() == FlowControl::Interrupt => format!("{name}: software interrupt"),
        _ => return None,
    })
}

/// Whether the legacy prefixes of `code` include an operand-size prefix.
fn has_opsize_prefix(code: &[u8]) -> bool {
    code.iter()
        .take(MAX_INSN_LEN)
        .take_while(|b| matches!(b, 0x26 | 0x2e | 0x36 | 0x3e | 0x64 | 0x65 | 0x66 | 0x67 | 0xf0 | 0xf2 | 0xf3))
        .any(|&b| b == 0x66)
}

fn copy_plan(instr: &Instruction, code: &[u8], addr: u64) -> Plan {
    let len = instr.len();
    let mut copy = Copy {
        orig: addr,
        len,
        bytes: code[..len].to_vec(),
        scratch: None,
        syscall: false,
        x87: instr
            .cpuid_features()
            .iter()
            .any(|f| matches!(f, CpuidFeature::FPU | CpuidFeature::FPU287 | CpuidFeature::FPU387)),
        mnemonic: mnemonic_of(instr),
    };
    let m = instr.mnemonic();
    let fc = instr.flow_control();
    let copyable = fc == FlowControl::Next || matches!(m, Mnemonic::Ud0 | Mnemonic::Ud1 | Mnemonic::Ud2);
    if m == Mnemonic::Syscall {
        copy.syscall = true;
        return Plan::Step(copy);
    }
    if !copyable {
        let branch = instr.is_jcc_short_or_near()
            || matches!(
                m,
                Mnemonic::Jmp
                    | Mnemonic::Call
                    | Mnemonic::Ret
                    | Mnemonic::Loop
                    | Mnemonic::Loope
                    | Mnemonic::Loopne
                    | Mnemonic::Jrcxz
                    | Mnemonic::Jecxz
            );
        let reason = match (branch, has_opsize_prefix(code)) {
            (true, true) => format!("branch with operand-size prefix cannot run out of line ({})", copy.mnemonic),
            (true, false) => format!("branch cannot run out of line ({})", copy.mnemonic),
            (false, _) => format!("{} cannot run out of line", copy.mnemonic),
        };
        return Plan::Refuse(Refusal::new(reason, Some(instr)));
    }
    if instr.is_ip_rel_memory_operand() {
        return match rewrite_rip_relative(instr, code, addr) {
            Ok((bytes, scratch)) => {
                copy.bytes = bytes;
                copy.scratch = Some(scratch);
                Plan::Step(copy)
            }
            Err(reason) => Plan::Refuse(Refusal::new(reason, Some(instr))),
        };
    }
    if fc == FlowControl::Next && !copy.x87 {
        Plan::Boost(copy)
    } else if copy.x87 {
        // The FPU records the address of the last x87 instruction (FIP): run from a slot it
        // would show the slot, so the copy is stepped and the caller puts the original back.
        Plan::Step(copy)
    } else {
        // ud0/ud1/ud2 raise #UD in the slot: fixup rewinds, and the SIGILL is
        // delivered at the original address, as it would have been.
        Plan::Step(copy)
    }
}

/// Rewrite a RIP-relative instruction to address through a scratch register
/// instead, keeping its length and every prefix byte.
fn rewrite_rip_relative(instr: &Instruction, code: &[u8], addr: u64) -> Result<(Vec<u8>, Gpr), String> {
    let len = instr.len();
    // The constant offsets come from the decoder state of the decode itself.
    let mut decoder = Decoder::with_ip(64, &code[..len], addr, DecoderOptions::NONE);
    let again = decoder.decode();
    let offsets = decoder.get_constant_offsets(&again);
    if !offsets.has_displacement() || offsets.displacement_size() != 4 || offsets.displacement_offset() == 0 {
        return Err("rip-relative: unexpected encoding".to_string());
    }
    let modrm_at = offsets.displacement_offset() - 1;
    let modrm = code[modrm_at];
    if modrm & 0xc7 != 0x05 {
        return Err("rip-relative: unexpected encoding".to_string());
    }
    let mut used = [false; 16];
    let mut factory = InstructionInfoFactory::new();
    for u in factory.info(instr).used_registers() {
        if let Some(g) = Gpr::from_iced(u.register()) {
            used[g as usize] = true;
        }
    }
    let mem_op = (0..instr.op_count()).find(|&i| instr.op_kind(i) == OpKind::Memory);
    // Candidates in register order, never rsp or r12, whose low three bits (100) select a SIB
    // byte.
    let candidates = Gpr::ALL.iter().filter(|&&g| g != Gpr::Rsp && g != Gpr::R12);
    for &cand in candidates.filter(|&&g| !used[g as usize]) {
        let mut bytes = code[..len].to_vec();
        bytes[modrm_at] = 0x80 | (modrm & 0x38) | (cand as u8 & 7);
        let mut d = Decoder::with_ip(64, &bytes, addr, DecoderOptions::NONE);
        let re = d.decode();
        if re.is_invalid()
            || re.len() != len
            || re.code() != instr.code()
            || Gpr::from_iced(re.memory_base()) != Some(cand)
            || re.memory_index() != Register::None
            || re.memory_segment() != instr.memory_segment()
            || re.op_count() != instr.op_count()
        {
            continue;
        }
        let same_ops = (0..instr.op_count()).all(|i| {
            re.op_kind(i) == instr.op_kind(i)
                && (instr.op_kind(i) != OpKind::Register || re.op_register(i) == instr.op_register(i))
        });
        if !same_ops {
            continue;
        }
        // With the scratch holding the next rip, the copy must address
        // exactly what the original does.
        if let Some(op) = mem_op {
            let next = instr.next_ip();
            let orig_va = instr.virtual_address(op, 0, |_, _, _| Some(0));
            let new_va =
                re.virtual_address(op, 0, |r, _, _| Some(if Gpr::from_iced(r) == Some(cand) { next } else { 0 }));
            if orig_va.is_none() || orig_va != new_va {
                continue;
            }
        }
        return Ok((bytes, cand));
    }
    Err("rip-relative: no usable scratch register".to_string())
}

// ---------------------------------------------------------------------------
// Registers
// ---------------------------------------------------------------------------

/// A general-purpose register (x86-64 numbering `rax`=0 .. `r15`=15).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(missing_docs)]
pub enum Gpr {
    Rax,
    Rcx,
    Rdx,
    Rbx,
    Rsp,
    Rbp,
    Rsi,
    Rdi,
    R8,
    R9,
    R10,
    R11,
    R12,
    R13,
    R14,
    R15,
}

impl Gpr {
    /// All sixteen, in encoding order.
    pub const ALL: [Gpr; 16] = [
        Gpr::Rax,
        Gpr::Rcx,
        Gpr::Rdx,
        Gpr::Rbx,
        Gpr::Rsp,
        Gpr::Rbp,
        Gpr::Rsi,
        Gpr::Rdi,
        Gpr::R8,
        Gpr::R9,
        Gpr::R10,
        Gpr::R11,
        Gpr::R12,
        Gpr::R13,
        Gpr::R14,
        Gpr::R15,
    ];

    /// The register's value in `r`.
    pub fn get(self, r: &UserRegs) -> u64 {
        match self {
            Gpr::Rax => r.rax,
            Gpr::Rcx => r.rcx,
            Gpr::Rdx => r.rdx,
            Gpr::Rbx => r.rbx,
            Gpr::Rsp => r.rsp,
            Gpr::Rbp => r.rbp,
            Gpr::Rsi => r.rsi,
            Gpr::Rdi => r.rdi,
            Gpr::R8 => r.r8,
            Gpr::R9 => r.r9,
            Gpr::R10 => r.r10,
            Gpr::R11 => r.r11,
            Gpr::R12 => r.r12,
            Gpr::R13 => r.r13,
            Gpr::R14 => r.r14,
            Gpr::R15 => r.r15,
        }
    }

    /// Set the register in `r` to `v`.
    pub fn set(self, r: &mut UserRegs, v: u64) {
        let slot = match self {
            Gpr::Rax => &mut r.rax,
            Gpr::Rcx => &mut r.rcx,
            Gpr::Rdx => &mut r.rdx,
            Gpr::Rbx => &mut r.rbx,
            Gpr::Rsp => &mut r.rsp,
            Gpr::Rbp => &mut r.rbp,
            Gpr::Rsi => &mut r.rsi,
            Gpr::Rdi => &mut r.rdi,
            Gpr::R8 => &mut r.r8,
            Gpr::R9 => &mut r.r9,
            Gpr::R10 => &mut r.r10,
            Gpr::R11 => &mut r.r11,
            Gpr::R12 => &mut r.r12,
            Gpr::R13 => &mut r.r13,
            Gpr::R14 => &mut r.r14,
            Gpr::R15 => &mut r.r15,
        };
        *slot = v;
    }

    /// The register's name (`"rax"`).
    pub fn name(self) -> &'static str {
        ["rax", "rcx", "rdx", "rbx", "rsp", "rbp", "rsi", "rdi", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15"]
            [self as usize]
    }

    /// The 64-bit register containing an iced general-purpose register of
    /// any size (`ah` and `eax` both give `rax`).
    fn from_iced(reg: Register) -> Option<Gpr> {
        if !reg.is_gpr() {
            return None;
        }
        let full = reg.full_register();
        let n = (full as u32).wrapping_sub(Register::RAX as u32) as usize;
        Gpr::ALL.get(n).copied()
    }
}

impl fmt::Display for Gpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn is_high_byte(reg: Register) -> bool {
    matches!(reg, Register::AH | Register::CH | Register::DH | Register::BH)
}

/// Value of an iced GPR of any width, zero-extended.
fn read_reg(r: &UserRegs, reg: Register) -> u64 {
    let v = Gpr::from_iced(reg).map_or(0, |g| g.get(r));
    if is_high_byte(reg) {
        (v >> 8) & 0xff
    } else {
        v & size_mask(reg.size())
    }
}

/// Write an iced GPR of any width as the CPU does: 32-bit writes zero-extend,
/// 8- and 16-bit writes merge.
fn write_reg(r: &mut UserRegs, reg: Register, val: u64) {
    let Some(g) = Gpr::from_iced(reg) else { return };
    let old = g.get(r);
    let new = if is_high_byte(reg) {
        (old & !0xff00) | ((val & 0xff) << 8)
    } else {
        match reg.size() {
            1 => (old & !0xff) | (val & 0xff),
            2 => (old & !0xffff) | (val & 0xffff),
            4 => val & 0xffff_ffff,
            _ => val,
        }
    };
    g.set(r, new);
}

fn size_mask(bytes: usize) -> u64 {
    if bytes >= 8 {
        u64::MAX
    } else {
        (1u64 << (bytes * 8)) - 1
    }
}

/// Effective address of memory operand `op` (segment bases: `fs`/`gs` from
/// `fs_base`/`gs_base`, all others 0).
fn effective_address(instr: &Instruction, op: u32, r: &UserRegs) -> u64 {
    instr
        .virtual_address(op, 0, |reg, _, _| {
            Some(match reg {
                Register::FS => r.fs_base,
                Register::GS => r.gs_base,
                Register::ES | Register::CS | Register::SS | Register::DS => 0,
                _ => read_reg(r, reg),
            })
        })
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------
// Copies and slots
// ---------------------------------------------------------------------------

/// An instruction prepared to run in a slot.
#[derive(Debug, Clone)]
pub struct Copy {
    orig: u64,
    len: usize,
    bytes: Vec<u8>,
    scratch: Option<Gpr>,
    syscall: bool,
    x87: bool,
    mnemonic: String,
}

#[allow(clippy::len_without_is_empty)]
impl Copy {
    /// The original instruction's address.
    pub fn orig(&self) -> u64 {
        self.orig
    }

    /// An x87 instruction: after it ran from the slot, the FPU instruction pointer (FXSAVE
    /// FIP) holds the slot's address and must be set back to [`Copy::orig`].
    pub fn is_x87(&self) -> bool {
        self.x87
    }

    /// The original instruction's length, which is also the copy's length.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The address after the original instruction (`orig + len`).
    pub fn next(&self) -> u64 {
        self.orig.wrapping_add(self.len as u64)
    }

    /// For a RIP-relative instruction: the register the copy addresses
    /// through.  The caller saves it, sets it to [`Copy::next`] before
    /// running the copy, and restores it afterwards (see [`fixup`]).
    pub fn scratch(&self) -> Option<Gpr> {
        self.scratch
    }

    /// Whether the copy is a `syscall`.
    pub fn is_syscall(&self) -> bool {
        self.syscall
    }

    /// The (possibly rewritten) instruction bytes, [`Copy::len`] long.
    pub fn insn_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Lowercase mnemonic of the instruction.
    pub fn mnemonic(&self) -> &str {
        &self.mnemonic
    }

    /// The slot's contents for a slot at `slot`: the (rewritten) instruction
    /// followed by an absolute jump back to [`Copy::next`]
    /// (`ff 25 00 00 00 00` and the 8-byte little-endian target).  At most
    /// [`SLOT_SIZE`] bytes; the contents do not depend on `slot` (the copy
    /// is position-independent) but the parameter keeps callers honest.
    pub fn slot_bytes(&self, slot: u64) -> Vec<u8> {
        let _ = slot;
        let mut out = Vec::with_capacity(self.len + JUMP_BACK_LEN);
        out.extend_from_slice(&self.bytes);
        out.extend_from_slice(&[0xff, 0x25, 0, 0, 0, 0]);
        out.extend_from_slice(&self.next().to_le_bytes());
        debug_assert!(out.len() <= SLOT_SIZE);
        out
    }
}

/// Where an ip is relative to a slot holding a copy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotPos {
    /// At the start of the copy: it has not completed.  (An ip inside the
    /// copy's bytes, which cannot happen, is reported as `Start` too so the
    /// thread gets rewound.)
    Start,
    /// Right after the copy (`slot + len`, the jump back): it completed.
    AfterInsn,
    /// Inside the rest of the jump-back bytes (should not happen; treated as
    /// completed).
    JumpBack,
    /// Not in the slot.
    Outside,
}

/// Where `rip` is relative to the slot at `slot` holding `copy`.
pub fn slot_pos(copy: &Copy, slot: u64, rip: u64) -> SlotPos {
    let off = rip.wrapping_sub(slot);
    let len = copy.len as u64;
    if off < len {
        SlotPos::Start
    } else if off == len {
        SlotPos::AfterInsn
    } else if off < len + JUMP_BACK_LEN as u64 {
        SlotPos::JumpBack
    } else {
        SlotPos::Outside
    }
}

/// Result of [`fixup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fixup {
    /// The instruction completed; `rip` is now the original next address.
    Finished,
    /// The instruction did not complete; `rip` is back at the original
    /// instruction.
    Rewound,
    /// `rip` was set outside the slot (`rt_sigreturn`, exec, ...) and was
    /// left alone.
    Absolute,
}

/// Fix up registers after the copy at `slot` was single-stepped, or at any
/// stop while the thread was inside the slot (signal delivery, interrupt).
///
/// * `rip` at `slot + len` (or in the jump-back bytes): the instruction
///   completed: `rip` = [`Copy::next`]; for a syscall copy, if `rcx` holds
///   `slot + len` (the return address the kernel stored) it becomes
///   [`Copy::next`]; the scratch register is restored from
///   `saved_scratch`; `orig_rax` = -1.  Returns [`Fixup::Finished`].
/// * `rip` at `slot` (a fault raised by the copy, a signal pending before it
///   ran, an unfinished `rep` iteration, a restarted syscall): `rip` =
///   [`Copy::orig`]; scratch restored; `orig_rax` = -1.  Returns
///   [`Fixup::Rewound`].
/// * `rip` elsewhere: nothing is touched.  Returns [`Fixup::Absolute`].
///
/// The scratch register is only restored when both the copy has one and
/// `saved_scratch` is `Some`.
pub fn fixup(copy: &Copy, slot: u64, regs: &mut UserRegs, saved_scratch: Option<u64>) -> Fixup {
    let result = match slot_pos(copy, slot, regs.rip) {
        SlotPos::Outside => return Fixup::Absolute,
        SlotPos::Start => {
            regs.rip = copy.orig;
            Fixup::Rewound
        }
        SlotPos::AfterInsn | SlotPos::JumpBack => {
            if copy.syscall && regs.rcx == slot.wrapping_add(copy.len as u64) {
                regs.rcx = copy.next();
            }
            regs.rip = copy.next();
            Fixup::Finished
        }
    };
    if let (Some(g), Some(v)) = (copy.scratch, saved_scratch) {
        g.set(regs, v);
    }
    // A completed `syscall` leaves its number in orig_rax, as in line; otherwise ip was
    // rewritten outside a syscall restart.
    if !(copy.syscall && result == Fixup::Finished) {
        regs.orig_rax = u64::MAX;
    }
    result
}

// ---------------------------------------------------------------------------
// Emulation
// ---------------------------------------------------------------------------

/// Memory of the inferior, as the emulator sees it.
///
/// Implementations must fail exactly where the CPU would fault for a user
/// access (an unmapped page, a write to a read-only page), or the emulation
/// is not exact.
pub trait Memory {
    /// Read `buf.len()` bytes at `addr`; `false` if the access faults.
    fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool;
    /// Write `data` at `addr`; `false` if the access faults (and nothing was
    /// written).
    fn write(&mut self, addr: u64, data: &[u8]) -> bool;
}

/// A memory access of an emulated instruction faulted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EmuFault {
    /// First address of the faulting access.
    pub addr: u64,
}

impl fmt::Display for EmuFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "emulated memory access at {:#x} faulted", self.addr)
    }
}

impl std::error::Error for EmuFault {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EmuOp {
    /// Only advances `rip`.
    Nop,
    /// `push reg` / `push imm`.
    Push,
    /// `pushf` / `pushfq`.
    PushFlags,
    /// `pop reg`.
    Pop,
    /// `mov` between registers, immediates and RIP-relative memory.
    Mov,
    /// `add` / `sub` / `cmp` on registers and immediates.
    Alu(AluKind),
    /// `lea`.
    Lea,
    /// `jmp rel`.
    JmpRel,
    /// `call rel32`.
    CallRel,
    /// `jcc rel`.
    Jcc,
    /// `loop` / `loope` / `loopne`; the flag says whether `ecx` is used.
    Loop(bool),
    /// `jrcxz` / `jecxz`; the flag says whether `ecx` is tested.
    Jrcxz(bool),
    /// `ret` / `ret imm16`.
    Ret,
    /// `jmp r/m64`.
    JmpInd,
    /// `call r/m64`.
    CallInd,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AluKind {
    Add,
    Sub,
    Cmp,
}

/// An instruction the tracer executes itself.
#[derive(Debug, Clone)]
pub struct Emulation {
    instr: Instruction,
    op: EmuOp,
    mnemonic: String,
}

fn is_gpr_reg(instr: &Instruction, op: u32) -> bool {
    instr.op_kind(op) == OpKind::Register && instr.op_register(op).is_gpr()
}

fn is_immediate(kind: OpKind) -> bool {
    matches!(
        kind,
        OpKind::Immediate8
            | OpKind::Immediate16
            | OpKind::Immediate32
            | OpKind::Immediate64
            | OpKind::Immediate8to16
            | OpKind::Immediate8to32
            | OpKind::Immediate8to64
            | OpKind::Immediate32to64
    )
}

/// The emulation for `instr`, if it is one this module executes exactly.
fn emulation_op(instr: &Instruction, code: &[u8]) -> Option<EmuOp> {
    if instr.has_lock_prefix() {
        return None;
    }
    let fc = instr.flow_control();
    if fc != FlowControl::Next {
        // Branches: `bnd` (f2) and `rep` (f3) prefixes are ignored by the
        // CPU here; an operand-size prefix is vendor-specific, so no.
        if has_opsize_prefix(code) {
            return None;
        }
        return Some(match instr.code() {
            Code::Jmp_rel8_64 | Code::Jmp_rel32_64 => EmuOp::JmpRel,
            Code::Call_rel32_64 => EmuOp::CallRel,
            Code::Loop_rel8_64_RCX | Code::Loope_rel8_64_RCX | Code::Loopne_rel8_64_RCX => EmuOp::Loop(false),
            Code::Loop_rel8_64_ECX | Code::Loope_rel8_64_ECX | Code::Loopne_rel8_64_ECX => EmuOp::Loop(true),
            Code::Jrcxz_rel8_64 => EmuOp::Jrcxz(false),
            Code::Jecxz_rel8_64 => EmuOp::Jrcxz(true),
            Code::Retnq | Code::Retnq_imm16 => EmuOp::Ret,
            Code::Jmp_rm64 => EmuOp::JmpInd,
            Code::Call_rm64 => EmuOp::CallInd,
            _ if instr.is_jcc_short_or_near() && instr.op0_kind() == OpKind::NearBranch64 => EmuOp::Jcc,
            _ => return None,
        });
    }
    if instr.has_rep_prefix() || instr.has_repne_prefix() {
        return None;
    }
    let n = instr.op_count();
    match instr.mnemonic() {
        Mnemonic::Nop | Mnemonic::Endbr64 | Mnemonic::Endbr32 => Some(EmuOp::Nop),
        Mnemonic::Pushf | Mnemonic::Pushfq => Some(EmuOp::PushFlags),
        Mnemonic::Push if n == 1 && (is_gpr_reg(instr, 0) || is_immediate(instr.op0_kind())) => Some(EmuOp::Push),
        Mnemonic::Pop if n == 1 && is_gpr_reg(instr, 0) => Some(EmuOp::Pop),
        Mnemonic::Lea if n == 2 && is_gpr_reg(instr, 0) => Some(EmuOp::Lea),
        Mnemonic::Mov if n == 2 => {
            let rip_mem = |op: u32| instr.op_kind(op) == OpKind::Memory && instr.is_ip_rel_memory_operand();
            let ok = match (is_gpr_reg(instr, 0), rip_mem(0)) {
                (true, _) => is_gpr_reg(instr, 1) || is_immediate(instr.op1_kind()) || rip_mem(1),
                (false, true) => is_gpr_reg(instr, 1) || is_immediate(instr.op1_kind()),
                _ => false,
            };
            ok.then_some(EmuOp::Mov)
        }
        m @ (Mnemonic::Add | Mnemonic::Sub | Mnemonic::Cmp)
            if n == 2 && is_gpr_reg(instr, 0) && (is_gpr_reg(instr, 1) || is_immediate(instr.op1_kind())) =>
        {
            Some(EmuOp::Alu(match m {
                Mnemonic::Add => AluKind::Add,
                Mnemonic::Sub => AluKind::Sub,
                _ => AluKind::Cmp,
            }))
        }
        _ => None,
    }
}

fn read_mem(mem: &mut dyn Memory, addr: u64, size: usize) -> Result<u64, EmuFault> {
    let mut buf = [0u8; 8];
    if !mem.read(addr, &mut buf[..size]) {
        return Err(EmuFault { addr });
    }
    Ok(u64::from_le_bytes(buf))
}

/// Status flags and result of `a op b` on `size`-byte operands.
fn alu(kind: AluKind, a: u64, b: u64, size: usize) -> (u64, u64) {
    let mask = size_mask(size);
    let sign = 1u64 << (size * 8 - 1);
    let (a, b) = (a & mask, b & mask);
    let (r, cf, of) = match kind {
        AluKind::Add => {
            let r = a.wrapping_add(b) & mask;
            (r, (a as u128 + b as u128) > mask as u128, (a ^ r) & (b ^ r) & sign != 0)
        }
        AluKind::Sub | AluKind::Cmp => {
            let r = a.wrapping_sub(b) & mask;
            (r, a < b, (a ^ b) & (a ^ r) & sign != 0)
        }
    };
    let mut flags = 0;
    if cf {
        flags |= FLAG_CF;
    }
    if (r as u8).count_ones() & 1 == 0 {
        flags |= FLAG_PF;
    }
    if (a ^ b ^ r) & 0x10 != 0 {
        flags |= FLAG_AF;
    }
    if r == 0 {
        flags |= FLAG_ZF;
    }
    if r & sign != 0 {
        flags |= FLAG_SF;
    }
    if of {
        flags |= FLAG_OF;
    }
    (r, flags)
}

/// Whether condition `cc` holds for `rflags`.
fn condition(cc: ConditionCode, rflags: u64) -> bool {
    let f = |bit: u64| rflags & bit != 0;
    let (cf, pf, zf, sf, of) = (f(FLAG_CF), f(FLAG_PF), f(FLAG_ZF), f(FLAG_SF), f(FLAG_OF));
    match cc {
        ConditionCode::o => of,
        ConditionCode::no => !of,
        ConditionCode::b => cf,
        ConditionCode::ae => !cf,
        ConditionCode::e => zf,
        ConditionCode::ne => !zf,
        ConditionCode::be => cf || zf,
        ConditionCode::a => !cf && !zf,
        ConditionCode::s => sf,
        ConditionCode::ns => !sf,
        ConditionCode::p => pf,
        ConditionCode::np => !pf,
        ConditionCode::l => sf != of,
        ConditionCode::ge => sf == of,
        ConditionCode::le => zf || sf != of,
        ConditionCode::g => !zf && sf == of,
        _ => true,
    }
}

#[allow(clippy::len_without_is_empty)]
impl Emulation {
    /// Length of the instruction.
    pub fn len(&self) -> usize {
        self.instr.len()
    }

    /// Lowercase mnemonic of the instruction.
    pub fn mnemonic(&self) -> &str {
        &self.mnemonic
    }

    /// The address the instruction was planned at.  [`Emulation::apply`]
    /// computes `rip` (and pushed return addresses) from it, not from the
    /// incoming `regs.rip`.
    pub fn orig(&self) -> u64 {
        self.instr.ip()
    }

    /// Whether [`Emulation::apply`] accesses memory (the stack, or a
    /// RIP-relative or indirect-branch operand).
    pub fn touches_memory(&self) -> bool {
        match self.op {
            EmuOp::Push | EmuOp::PushFlags | EmuOp::Pop | EmuOp::CallRel | EmuOp::Ret | EmuOp::CallInd => true,
            EmuOp::Mov | EmuOp::JmpInd => (0..self.instr.op_count()).any(|i| self.instr.op_kind(i) == OpKind::Memory),
            _ => false,
        }
    }

    /// Execute the instruction on `regs` and `mem` as the CPU would,
    /// including `rip` (the next instruction or the branch target), the
    /// status flags and 32-bit zero-extension, and set `orig_rax` to -1.
    ///
    /// Atomic: all reads happen first, the single write (if any) last, and
    /// registers are committed only after it succeeded; on a fault nothing
    /// was changed.  Branch targets are not checked for canonicality (a bad
    /// target faults on the fetch at the target instead of at the branch).
    pub fn apply(&self, regs: &mut UserRegs, mem: &mut dyn Memory) -> Result<(), EmuFault> {
        let i = &self.instr;
        let old = *regs;
        let mut r = old;
        r.rip = i.next_ip();
        // The single write, performed after all reads: (address, size, value).
        let mut write: Option<(u64, usize, u64)> = None;
        let push = |r: &mut UserRegs, size: usize, value: u64| {
            r.rsp = old.rsp.wrapping_sub(size as u64);
            Some((r.rsp, size, value & size_mask(size)))
        };
        match self.op {
            EmuOp::Nop => {}
            EmuOp::Push => {
                let size = i.stack_pointer_increment().unsigned_abs() as usize;
                let value =
                    if i.op0_kind() == OpKind::Register { read_reg(&old, i.op0_register()) } else { i.immediate(0) };
                write = push(&mut r, size, value);
            }
            EmuOp::PushFlags => {
                let size = i.stack_pointer_increment().unsigned_abs() as usize;
                write = push(&mut r, size, old.eflags & !(FLAG_RF | FLAG_VM));
            }
            EmuOp::Pop => {
                let size = i.stack_pointer_increment().unsigned_abs() as usize;
                let value = read_mem(mem, old.rsp, size)?;
                r.rsp = old.rsp.wrapping_add(size as u64);
                // Written after the increment: `pop rsp` loads the value.
                write_reg(&mut r, i.op0_register(), value);
            }
            EmuOp::Mov => {
                let size =
                    if i.op0_kind() == OpKind::Register { i.op0_register().size() } else { i.memory_size().size() };
                let value = match i.op1_kind() {
                    OpKind::Register => read_reg(&old, i.op1_register()),
                    OpKind::Memory => read_mem(mem, effective_address(i, 1, &old), size)?,
                    _ => i.immediate(1) & size_mask(size),
                };
                if i.op0_kind() == OpKind::Register {
                    write_reg(&mut r, i.op0_register(), value);
                } else {
                    write = Some((effective_address(i, 0, &old), size, value));
                }
            }
            EmuOp::Alu(kind) => {
                let dst = i.op0_register();
                let size = dst.size();
                let b =
                    if i.op1_kind() == OpKind::Register { read_reg(&old, i.op1_register()) } else { i.immediate(1) };
                let (result, flags) = alu(kind, read_reg(&old, dst), b, size);
                if kind != AluKind::Cmp {
                    write_reg(&mut r, dst, result);
                }
                r.eflags = (old.eflags & !STATUS_FLAGS) | flags;
            }
            EmuOp::Lea => write_reg(&mut r, i.op0_register(), effective_address(i, 1, &old)),
            EmuOp::JmpRel => r.rip = i.near_branch_target(),
            EmuOp::CallRel => {
                write = push(&mut r, 8, i.next_ip());
                r.rip = i.near_branch_target();
            }
            EmuOp::Jcc => {
                if condition(i.condition_code(), old.eflags) {
                    r.rip = i.near_branch_target();
                }
            }
            EmuOp::Loop(ecx) => {
                let count = if ecx { (old.rcx as u32).wrapping_sub(1) as u64 } else { old.rcx.wrapping_sub(1) };
                r.rcx = count;
                let zf = old.eflags & FLAG_ZF != 0;
                let taken = count != 0
                    && match i.mnemonic() {
                        Mnemonic::Loope => zf,
                        Mnemonic::Loopne => !zf,
                        _ => true,
                    };
                if taken {
                    r.rip = i.near_branch_target();
                }
            }
            EmuOp::Jrcxz(ecx) => {
                let count = if ecx { old.rcx & 0xffff_ffff } else { old.rcx };
                if count == 0 {
                    r.rip = i.near_branch_target();
                }
            }
            EmuOp::Ret => {
                let target = read_mem(mem, old.rsp, 8)?;
                let extra = if i.op_count() == 1 { i.immediate(0) & 0xffff } else { 0 };
                r.rsp = old.rsp.wrapping_add(8).wrapping_add(extra);
                r.rip = target;
            }
            EmuOp::JmpInd | EmuOp::CallInd => {
                let target = if i.op0_kind() == OpKind::Register {
                    read_reg(&old, i.op0_register())
                } else {
                    read_mem(mem, effective_address(i, 0, &old), 8)?
                };
                if self.op == EmuOp::CallInd {
                    write = push(&mut r, 8, i.next_ip());
                }
                r.rip = target;
            }
        }
        // A branch to a non-canonical address faults at the branch (#GP), not at the target.
        if ((r.rip as i64) << 16 >> 16) as u64 != r.rip {
            return Err(EmuFault { addr: r.rip });
        }
        if let Some((addr, size, value)) = write {
            if !mem.write(addr, &value.to_le_bytes()[..size]) {
                return Err(EmuFault { addr });
            }
        }
        r.orig_rax = u64::MAX;
        *regs = r;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use iced_x86::UsedRegister;

    // ----- helpers ---------------------------------------------------------

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    fn to_hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect::<Vec<_>>().join(" ")
    }

    /// Vec-backed memory regions; anything outside them faults.
    struct Mem {
        regions: Vec<(u64, Vec<u8>)>,
    }

    impl Mem {
        fn new() -> Mem {
            Mem { regions: vec![(STACK_BASE, vec![0xee; STACK_SIZE]), (DATA, vec![0; 0x100])] }
        }
        fn none() -> Mem {
            Mem { regions: vec![] }
        }
        fn region(&mut self, addr: u64, len: usize) -> Option<&mut [u8]> {
            for (base, bytes) in &mut self.regions {
                if addr >= *base && addr as u128 + len as u128 <= *base as u128 + bytes.len() as u128 {
                    let off = (addr - *base) as usize;
                    return Some(&mut bytes[off..off + len]);
                }
            }
            None
        }
        fn get(&mut self, addr: u64, len: usize) -> u64 {
            let mut buf = [0u8; 8];
            buf[..len].copy_from_slice(self.region(addr, len).unwrap());
            u64::from_le_bytes(buf)
        }
        fn put(&mut self, addr: u64, len: usize, v: u64) {
            self.region(addr, len).unwrap().copy_from_slice(&v.to_le_bytes()[..len]);
        }
        fn snapshot(&self) -> Vec<(u64, Vec<u8>)> {
            self.regions.clone()
        }
    }

    impl Memory for Mem {
        fn read(&mut self, addr: u64, buf: &mut [u8]) -> bool {
            match self.region(addr, buf.len()) {
                Some(r) => {
                    buf.copy_from_slice(r);
                    true
                }
                None => false,
            }
        }
        fn write(&mut self, addr: u64, data: &[u8]) -> bool {
            match self.region(addr, data.len()) {
                Some(r) => {
                    r.copy_from_slice(data);
                    true
                }
                None => false,
            }
        }
    }

    const STACK_BASE: u64 = 0x7fff_0000_0000;
    const STACK_SIZE: usize = 0x2000;
    const SP: u64 = STACK_BASE + 0x1000;
    const DATA: u64 = 0x40_2000;
    const CODE: u64 = 0x40_1000;
    const SLOT: u64 = 0x7f00_dead_0000;
    const UNMAPPED: u64 = 0x1234_0000;

    /// A register file with a distinct value in every register.
    fn regs() -> UserRegs {
        UserRegs {
            r15: 0xf1f1_f1f1_f1f1_f1f1,
            r14: 0xe1e1_e1e1_e1e1_e1e1,
            r13: 0xd1d1_d1d1_d1d1_d1d1,
            r12: 0xc1c1_c1c1_c1c1_c1c1,
            rbp: 0x0bbb_bbbb_bbbb_bb00,
            rbx: 0x0b0b_0b0b_0b0b_0b0b,
            r11: 0xb1b1_b1b1_b1b1_b1b1,
            r10: 0xa1a1_a1a1_a1a1_a1a1,
            r9: 0x9191_9191_9191_9191,
            r8: 0x8181_8181_8181_8181,
            rax: 0x0a0a_0a0a_0a0a_0a0a,
            rcx: 0x0c0c_0c0c_0c0c_0c0c,
            rdx: 0x0d0d_0d0d_0d0d_0d0d,
            rsi: 0x0515_0515_0515_0515,
            rdi: 0x0d1d_0d1d_0d1d_0d1d,
            orig_rax: 0x3b,
            rip: CODE,
            cs: 0x33,
            eflags: 0x202,
            rsp: SP,
            ss: 0x2b,
            fs_base: 0x7ff0_0000_0000,
            gs_base: 0x7ff1_0000_0000,
            ds: 0,
            es: 0,
            fs: 0,
            gs: 0,
        }
    }

    fn fields(r: &UserRegs) -> Vec<(&'static str, u64)> {
        vec![
            ("r15", r.r15),
            ("r14", r.r14),
            ("r13", r.r13),
            ("r12", r.r12),
            ("rbp", r.rbp),
            ("rbx", r.rbx),
            ("r11", r.r11),
            ("r10", r.r10),
            ("r9", r.r9),
            ("r8", r.r8),
            ("rax", r.rax),
            ("rcx", r.rcx),
            ("rdx", r.rdx),
            ("rsi", r.rsi),
            ("rdi", r.rdi),
            ("orig_rax", r.orig_rax),
            ("rip", r.rip),
            ("cs", r.cs),
            ("eflags", r.eflags),
            ("rsp", r.rsp),
            ("ss", r.ss),
            ("fs_base", r.fs_base),
            ("gs_base", r.gs_base),
            ("ds", r.ds),
            ("es", r.es),
            ("fs", r.fs),
            ("gs", r.gs),
        ]
    }

    /// Check that `after` equals `before` except for the listed registers
    /// (`orig_rax` is expected to be -1 unless listed).
    fn check_regs(ctx: &str, before: &UserRegs, after: &UserRegs, changed: &[(&str, u64)]) {
        for ((name, b), (_, a)) in fields(before).into_iter().zip(fields(after)) {
            let expected = changed.iter().find(|(n, _)| *n == name).map(|&(_, v)| v).unwrap_or(if name == "orig_rax" {
                u64::MAX
            } else {
                b
            });
            assert_eq!(a, expected, "{ctx}: register {name}: got {a:#x}, expected {expected:#x}");
        }
    }

    fn emulation(code: &str, addr: u64) -> Emulation {
        match plan(&hex(code), addr) {
            Plan::Emulate(e) => e,
            p => panic!("{code}: expected emulation, got {:?} ({})", p.kind(), p.mnemonic()),
        }
    }

    /// Emulate `code` at CODE on `r` and `mem`, returning the new registers.
    fn run(code: &str, r: &UserRegs, mem: &mut Mem) -> Result<UserRegs, EmuFault> {
        let e = emulation(code, r.rip);
        let mut out = *r;
        let res = e.apply(&mut out, mem);
        if res.is_err() {
            assert_eq!(out, *r, "{code}: registers changed on a fault");
        }
        res.map(|()| out)
    }

    /// Emulate, check the changed registers, return the memory.
    fn emu_check(code: &str, r: &UserRegs, changed: &[(&str, u64)]) -> Mem {
        let mut mem = Mem::new();
        let after = run(code, r, &mut mem).unwrap_or_else(|e| panic!("{code}: {e}"));
        check_regs(code, r, &after, changed);
        mem
    }

    fn next(code: &str) -> u64 {
        CODE + hex(code).len() as u64
    }

    // ----- plan accessors --------------------------------------------------

    #[test]
    fn plan_kind_display_and_accessors() {
        assert_eq!(PlanKind::Emulate.to_string(), "emulate");
        assert_eq!(PlanKind::Boost.to_string(), "boosted");
        assert_eq!(PlanKind::Step.to_string(), "out-of-line");
        assert_eq!(PlanKind::Refuse.to_string(), "refused");

        let p = plan(&hex("55"), CODE);
        assert_eq!((p.kind(), p.len(), p.mnemonic().as_str()), (PlanKind::Emulate, 1, "push"));
        assert!(p.copy().is_none());
        let p = plan(&hex("75 10"), CODE);
        assert_eq!((p.kind(), p.len(), p.mnemonic().as_str()), (PlanKind::Emulate, 2, "jne"));
        let p = plan(&hex("48 21 d8"), CODE);
        assert_eq!((p.kind(), p.len(), p.mnemonic().as_str()), (PlanKind::Boost, 3, "and"));
        assert_eq!(p.copy().unwrap().orig(), CODE);
        assert_eq!(p.copy().unwrap().next(), CODE + 3);
        let p = plan(&hex("f4"), CODE);
        assert_eq!((p.kind(), p.len(), p.mnemonic().as_str()), (PlanKind::Refuse, 1, "hlt"));
        let p = plan(&hex("ff ff"), CODE);
        assert_eq!((p.kind(), p.len(), p.mnemonic().as_str()), (PlanKind::Refuse, 0, "(bad)"));
        // Only the first instruction is looked at; trailing bytes are ignored.
        let p = plan(&hex("55 48 89 e5 cc cc cc cc cc cc cc cc cc cc cc cc cc cc cc"), CODE);
        assert_eq!((p.kind(), p.len()), (PlanKind::Emulate, 1));
    }

    #[test]
    fn gpr_get_set_and_names() {
        let mut r = regs();
        for (i, g) in Gpr::ALL.into_iter().enumerate() {
            assert_eq!(g as usize, i);
            g.set(&mut r, 0x100 + i as u64);
        }
        for (i, g) in Gpr::ALL.into_iter().enumerate() {
            assert_eq!(g.get(&r), 0x100 + i as u64, "{g}");
        }
        assert_eq!((r.rax, r.rsp, r.r8, r.r15), (0x100, 0x104, 0x108, 0x10f));
        assert_eq!(Gpr::R13.to_string(), "r13");
        assert_eq!(Gpr::from_iced(Register::AH), Some(Gpr::Rax));
        assert_eq!(Gpr::from_iced(Register::R10D), Some(Gpr::R10));
        assert_eq!(Gpr::from_iced(Register::SIL), Some(Gpr::Rsi));
        assert_eq!(Gpr::from_iced(Register::XMM0), None);
        assert_eq!(Gpr::from_iced(Register::RIP), None);
    }

    // ----- nops and endbr --------------------------------------------------

    #[test]
    fn nops_and_endbr_are_emulated() {
        let table = [
            ("90", "nop"),
            ("66 90", "nop"),
            ("48 90", "nop"),
            ("0f 1f 00", "nop"),
            ("0f 1f 40 00", "nop"),
            ("0f 1f 44 00 00", "nop"),
            ("66 0f 1f 44 00 00", "nop"),
            ("0f 1f 80 00 00 00 00", "nop"),
            ("0f 1f 84 00 00 00 00 00", "nop"),
            ("66 2e 0f 1f 84 00 00 00 00 00", "nop"),
            ("66 66 2e 0f 1f 84 00 00 00 00 00", "nop"),
            ("0f 1f 05 10 20 30 40", "nop"), // nop [rip+x]: no memory access
            ("f3 0f 1e fa", "endbr64"),
            ("f3 0f 1e fb", "endbr32"),
        ];
        for (code, mnemonic) in table {
            let e = emulation(code, CODE);
            assert_eq!(e.orig(), CODE);
            assert_eq!(e.mnemonic(), mnemonic, "{code}");
            assert_eq!(e.len(), hex(code).len(), "{code}");
            assert!(!e.touches_memory(), "{code}");
            let r = regs();
            let mut mem = Mem::none();
            let after = run(code, &r, &mut mem).unwrap();
            check_regs(code, &r, &after, &[("rip", next(code))]);
        }
        // Look-alikes that are not nops.
        assert_eq!(plan(&hex("41 90"), CODE).mnemonic(), "xchg");
        assert_eq!(plan(&hex("41 90"), CODE).kind(), PlanKind::Boost);
        assert_eq!(plan(&hex("f3 90"), CODE).kind(), PlanKind::Boost); // pause
    }

    // ----- push / pop ------------------------------------------------------

    #[test]
    fn push_pop_emulation() {
        let r = regs();
        // (code, pushed value, width)
        let pushes: [(&str, u64, usize); 9] = [
            ("55", r.rbp, 8),
            ("50", r.rax, 8),
            ("41 57", r.r15, 8),
            ("41 54", r.r12, 8),
            ("54", SP, 8), // push rsp pushes the old value
            ("66 50", r.rax & 0xffff, 2),
            ("6a ff", u64::MAX, 8),
            ("68 78 56 34 12", 0x1234_5678, 8),
            ("68 00 00 00 80", 0xffff_ffff_8000_0000, 8),
        ];
        for (code, value, width) in pushes {
            let e = emulation(code, CODE);
            assert!(e.touches_memory());
            let mut mem = emu_check(code, &r, &[("rip", next(code)), ("rsp", SP - width as u64)]);
            assert_eq!(mem.get(SP - width as u64, width), value, "{code}");
            // Bytes around the pushed value are untouched.
            assert_eq!(mem.get(SP, 8), 0xeeee_eeee_eeee_eeee, "{code}");
            assert_eq!(mem.get(SP - width as u64 - 8, 8), 0xeeee_eeee_eeee_eeee, "{code}");
        }
        assert_eq!(plan(&hex("66 6a ff"), CODE).kind(), PlanKind::Emulate);
        let mut mem = emu_check("66 6a ff", &r, &[("rip", next("66 6a ff")), ("rsp", SP - 2)]);
        assert_eq!(mem.get(SP - 2, 2), 0xffff);

        // pops: (code, register changed, value written, rsp after)
        let mut mem = Mem::new();
        mem.put(SP, 8, 0x1122_3344_5566_7788);
        let pops: [(&str, &str, u64, u64); 5] = [
            ("5d", "rbp", 0x1122_3344_5566_7788, SP + 8),
            ("58", "rax", 0x1122_3344_5566_7788, SP + 8),
            ("41 5c", "r12", 0x1122_3344_5566_7788, SP + 8),
            ("66 58", "rax", (r.rax & !0xffff) | 0x7788, SP + 2),
            ("5c", "rsp", 0x1122_3344_5566_7788, 0x1122_3344_5566_7788), // pop rsp loads
        ];
        for (code, reg, value, rsp) in pops {
            let after = run(code, &r, &mut mem).unwrap();
            if reg == "rsp" {
                check_regs(code, &r, &after, &[("rip", next(code)), ("rsp", rsp)]);
            } else {
                check_regs(code, &r, &after, &[("rip", next(code)), (reg, value), ("rsp", rsp)]);
            }
        }
        // pop sp: the popped word lands in sp after the increment.
        let after = run("66 5c", &r, &mut mem).unwrap();
        check_regs("66 5c", &r, &after, &[("rip", next("66 5c")), ("rsp", ((SP + 2) & !0xffff) | 0x7788)]);
    }

    #[test]
    fn pushf_clears_rf_and_vm() {
        let mut r = regs();
        r.eflags = 0x3_0ed7 | FLAG_TF; // RF, VM, TF, all status flags, IF, DF
        let mut mem = emu_check("9c", &r, &[("rip", next("9c")), ("rsp", SP - 8)]);
        assert_eq!(mem.get(SP - 8, 8), 0x0ed7 | FLAG_TF);
        assert_eq!(plan(&hex("9c"), CODE).mnemonic(), "pushfq");
        let mut mem = emu_check("66 9c", &r, &[("rip", next("66 9c")), ("rsp", SP - 2)]);
        assert_eq!(mem.get(SP - 2, 2), 0x0ed7 | FLAG_TF);
        // A single-stepped pushf would push TF: no step copy.
        assert!(step_copy(&hex("9c"), CODE).is_none());
        // popfq is simply boosted.
        assert_eq!(plan(&hex("9d"), CODE).kind(), PlanKind::Boost);
    }

    #[test]
    fn stack_faults_are_atomic() {
        let mut r = regs();
        r.rsp = UNMAPPED + 4; // push writes below: faults
        for code in ["55", "6a 01", "9c", "e8 00 00 00 00", "ff d0", "5d", "c3", "c2 08 00"] {
            let mut mem = Mem::new();
            let before = mem.snapshot();
            let err = run(code, &r, &mut mem).unwrap_err();
            // (`call rax` with a non-canonical rax faults on the target before the push.)
            let noncanon = ((err.addr as i64) << 16 >> 16) as u64 != err.addr;
            assert!(noncanon || (err.addr >= UNMAPPED - 8 && err.addr <= UNMAPPED + 4), "{code}: {err}");
            assert_eq!(mem.snapshot(), before, "{code}: memory changed on a fault");
        }
        // call [mem] whose target read succeeds but whose push faults.
        let mut mem = Mem::new();
        mem.put(DATA, 8, 0x4444);
        let mut r2 = r;
        r2.rbx = DATA;
        let before = mem.snapshot();
        assert!(run("ff 13", &r2, &mut mem).is_err());
        assert_eq!(mem.snapshot(), before);
        assert_eq!(EmuFault { addr: 0x10 }.to_string(), "emulated memory access at 0x10 faulted");
    }

    #[test]
    fn push_pop_memory_forms_are_copied() {
        assert_eq!(plan(&hex("ff 30"), CODE).kind(), PlanKind::Boost); // push [rax]
        assert_eq!(plan(&hex("8f 00"), CODE).kind(), PlanKind::Boost); // pop [rax]
        assert_eq!(plan(&hex("0f a0"), CODE).kind(), PlanKind::Boost); // push fs
        assert_eq!(plan(&hex("ff 35 10 00 00 00"), CODE).kind(), PlanKind::Step);
        // push [rip+x]
    }

    // ----- mov -------------------------------------------------------------

    #[test]
    fn mov_register_and_immediate() {
        let r = regs();
        let table: [(&str, &str, u64); 20] = [
            ("48 89 c3", "rbx", r.rax),                                       // mov rbx,rax
            ("89 c3", "rbx", r.rax & 0xffff_ffff),                            // mov ebx,eax
            ("8b d8", "rbx", r.rax & 0xffff_ffff),                            // mov ebx,eax (8b form)
            ("66 89 c3", "rbx", (r.rbx & !0xffff) | (r.rax & 0xffff)),        // mov bx,ax
            ("88 c3", "rbx", (r.rbx & !0xff) | (r.rax & 0xff)),               // mov bl,al
            ("88 e7", "rbx", (r.rbx & !0xff00) | (r.rax & 0xff00)),           // mov bh,ah
            ("88 fc", "rax", (r.rax & !0xff00) | ((r.rbx >> 8) & 0xff) << 8), // mov ah,bh
            ("88 e0", "rax", (r.rax & !0xff) | ((r.rax >> 8) & 0xff)),        // mov al,ah
            ("40 88 e7", "rdi", (r.rdi & !0xff) | (SP & 0xff)),               // mov dil,spl
            ("4d 89 c8", "r8", r.r9),                                         // mov r8,r9
            ("45 89 c8", "r8", r.r9 & 0xffff_ffff),                           // mov r8d,r9d
            ("b8 78 56 34 12", "rax", 0x1234_5678),                           // mov eax,imm32
            ("48 b8 88 77 66 55 44 33 22 11", "rax", 0x1122_3344_5566_7788),  // movabs
            ("48 c7 c0 ff ff ff ff", "rax", u64::MAX),                        // mov rax,-1
            ("c7 c0 ff ff ff ff", "rax", 0xffff_ffff),                        // mov eax,-1
            ("b0 12", "rax", (r.rax & !0xff) | 0x12),                         // mov al,0x12
            ("b4 12", "rax", (r.rax & !0xff00) | 0x1200),                     // mov ah,0x12
            ("66 b8 34 12", "rax", (r.rax & !0xffff) | 0x1234),               // mov ax,0x1234
            ("41 b0 12", "r8", (r.r8 & !0xff) | 0x12),                        // mov r8b,0x12
            ("49 bf ef cd ab 89 67 45 23 01", "r15", 0x0123_4567_89ab_cdef),  // movabs r15
        ];
        for (code, reg, value) in table {
            let e = emulation(code, CODE);
            assert_eq!(e.mnemonic(), "mov", "{code}");
            assert!(!e.touches_memory(), "{code}");
            emu_check(code, &r, &[("rip", next(code)), (reg, value)]);
        }
        // mov rsp,rbp
        emu_check("48 89 ec", &r, &[("rip", next("48 89 ec")), ("rsp", r.rbp)]);
    }

    #[test]
    fn mov_rip_relative_load_store() {
        let r = regs();
        // disp 0xff0 from the next instruction: all land in DATA.
        // (code, length) with target = next + disp
        let load = |code: &str, reg: &str, expected: u64| {
            let n = CODE + hex(&code.replace("DISP", "00000000")).len() as u64;
            let disp = DATA + 0x10 - n;
            let code = code.replace("DISP", &to_hex(&(disp as u32).to_le_bytes()));
            let e = emulation(&code, CODE);
            assert!(e.touches_memory());
            let mut mem = Mem::new();
            mem.put(DATA + 0x10, 8, 0x8877_6655_4433_2211);
            let after = run(&code, &r, &mut mem).unwrap();
            check_regs(&code, &r, &after, &[("rip", n), (reg, expected)]);
        };
        load("48 8b 05 DISP", "rax", 0x8877_6655_4433_2211);
        load("8b 05 DISP", "rax", 0x4433_2211);
        load("8a 05 DISP", "rax", (r.rax & !0xff) | 0x11);
        load("8a 25 DISP", "rax", (r.rax & !0xff00) | 0x1100); // mov ah,[rip+x]
        load("66 8b 1d DISP", "rbx", (r.rbx & !0xffff) | 0x2211);
        load("4c 8b 3d DISP", "r15", 0x8877_6655_4433_2211);

        let store = |code: &str, width: usize, expected: u64| {
            let n = CODE + hex(&code.replace("DISP", "00000000")).len() as u64;
            let disp = DATA + 0x20 - n;
            let code = code.replace("DISP", &to_hex(&(disp as u32).to_le_bytes()));
            let mut mem = Mem::new();
            mem.put(DATA + 0x20, 8, 0xaaaa_aaaa_aaaa_aaaa);
            let after = run(&code, &r, &mut mem).unwrap();
            check_regs(&code, &r, &after, &[("rip", n)]);
            let mask = size_mask(width);
            assert_eq!(mem.get(DATA + 0x20, 8), (0xaaaa_aaaa_aaaa_aaaa & !mask) | expected, "{code}");
        };
        store("48 89 05 DISP", 8, r.rax);
        store("89 1d DISP", 4, r.rbx & 0xffff_ffff);
        store("88 25 DISP", 1, (r.rax >> 8) & 0xff); // mov [rip+x],ah
        store("66 89 0d DISP", 2, r.rcx & 0xffff);
        store("c7 05 DISP 78 56 34 12", 4, 0x1234_5678);
        store("48 c7 05 DISP 00 00 00 80", 8, 0xffff_ffff_8000_0000);
        store("c6 05 DISP 5a", 1, 0x5a);

        // fs-relative rip-relative load uses fs_base.
        let mut r2 = r;
        r2.fs_base = DATA; // so fs:[rip+disp] = DATA + next + disp
        let code = "64 48 8b 05 30 00 00 00";
        let mut mem = Mem::new();
        mem.region(0, 0); // no-op
        let n = next(code);
        let mut m2 = Mem { regions: vec![(DATA + n + 0x30, vec![7, 0, 0, 0, 0, 0, 0, 0])] };
        let after = run(code, &r2, &mut m2).unwrap();
        check_regs(code, &r2, &after, &[("rip", n), ("rax", 7)]);

        // A faulting load or store changes nothing.
        let mut mem = Mem::none();
        assert!(run("48 8b 05 00 00 00 00", &r, &mut mem).is_err());
        assert!(run("48 89 05 00 00 00 00", &r, &mut mem).is_err());
        let err = run("48 8b 05 10 00 00 00", &r, &mut mem).unwrap_err();
        assert_eq!(err.addr, CODE + 7 + 0x10);
    }

    #[test]
    fn other_movs_are_copied_or_refused() {
        let table = [
            ("48 8b 03", PlanKind::Boost),                      // mov rax,[rbx]
            ("48 89 03", PlanKind::Boost),                      // mov [rbx],rax
            ("64 48 8b 04 25 28 00 00 00", PlanKind::Boost),    // mov rax,fs:0x28
            ("48 a1 88 77 66 55 44 33 22 11", PlanKind::Boost), // movabs rax,[moffs]
            ("8c d8", PlanKind::Boost),                         // mov eax,ds
            ("0f 20 c0", PlanKind::Refuse),                     // mov rax,cr0
            ("0f 23 c0", PlanKind::Refuse),                     // mov dr0,rax
        ];
        for (code, kind) in table {
            assert_eq!(plan(&hex(code), CODE).kind(), kind, "{code}");
        }
    }

    // ----- add / sub / cmp -------------------------------------------------

    const BASE_FLAGS: u64 = 0x202; // IF and the reserved bit 1

    #[test]
    fn add_sub_rsp_flags() {
        // (code, rsp before, rsp after, status flags after)
        let table: [(&str, u64, u64, u64); 12] = [
            ("48 83 ec 08", 8, 0, FLAG_ZF | FLAG_PF),
            ("48 83 ec 08", 0, 0xffff_ffff_ffff_fff8, FLAG_CF | FLAG_SF | FLAG_AF),
            ("48 83 ec 08", 0x7fff_0000_1000, 0x7fff_0000_0ff8, FLAG_AF),
            ("48 83 ec 01", 0x8000_0000_0000_0000, 0x7fff_ffff_ffff_ffff, FLAG_OF | FLAG_AF | FLAG_PF),
            ("48 83 ec 10", 0x7fff_0000_1020, 0x7fff_0000_1010, 0),
            ("48 81 ec 88 00 00 00", 0x1000, 0xf78, FLAG_AF | FLAG_PF),
            ("48 83 ec ff", 0x10, 0x11, FLAG_CF | FLAG_PF | FLAG_AF), // sub rsp,-1: borrow
            ("48 83 c4 08", 0xffff_ffff_ffff_fff8, 0, FLAG_CF | FLAG_ZF | FLAG_PF | FLAG_AF),
            ("48 83 c4 01", 0x7fff_ffff_ffff_ffff, 0x8000_0000_0000_0000, FLAG_OF | FLAG_SF | FLAG_AF | FLAG_PF),
            ("48 83 c4 18", 0x1000, 0x1018, FLAG_PF),
            ("48 81 c4 00 01 00 00", 0x1000, 0x1100, FLAG_PF),
            ("48 83 c4 f8", 0x1000, 0xff8, FLAG_CF), // add rsp,-8
        ];
        for (code, before, after, flags) in table {
            for initial in [BASE_FLAGS, BASE_FLAGS | STATUS_FLAGS | 0x400] {
                let mut r = regs();
                r.rsp = before;
                r.eflags = initial;
                let expected = (initial & !STATUS_FLAGS) | flags;
                emu_check(code, &r, &[("rip", next(code)), ("rsp", after), ("eflags", expected)]);
            }
        }
    }

    #[test]
    fn add_sub_cmp_registers() {
        let mut r = regs();
        r.rax = 0xffff_ffff_0000_00ff;
        r.rbx = 0x1_0000_0001;
        // (code, changed register and value, status flags)
        type Case<'a> = (&'a str, Option<(&'a str, u64)>, u64);
        let table: [Case; 8] = [
            ("48 01 d8", Some(("rax", 0x100)), FLAG_CF | FLAG_PF | FLAG_AF), // wraps
            ("01 d8", Some(("rax", 0x100)), FLAG_AF | FLAG_PF),              // add eax,ebx zero-extends
            ("48 29 d8", Some(("rax", 0xffff_fffe_0000_00fe)), FLAG_SF),     // sub rax,rbx
            ("48 39 d8", None, FLAG_SF),                                     // cmp rax,rbx: no write
            ("3c ff", None, FLAG_ZF | FLAG_PF),                              // cmp al,0xff
            ("04 01", Some(("rax", 0xffff_ffff_0000_0000)), FLAG_CF | FLAG_ZF | FLAG_PF | FLAG_AF), // add al,1
            ("80 ec 01", Some(("rax", 0xffff_ffff_0000_ffff)), FLAG_CF | FLAG_SF | FLAG_PF | FLAG_AF), // sub ah,1
            ("66 83 c0 01", Some(("rax", 0xffff_ffff_0000_0100)), FLAG_AF | FLAG_PF), // add ax,1
        ];
        for (code, change, flags) in table {
            let mut changed = vec![("rip", next(code)), ("eflags", BASE_FLAGS | flags)];
            changed.extend(change);
            emu_check(code, &r, &changed);
        }
        // Logic ops leave AF undefined: copied, not emulated.
        for code in ["31 c0", "48 21 d8", "09 c0", "48 85 c0", "83 e4 f0"] {
            assert_eq!(plan(&hex(code), CODE).kind(), PlanKind::Boost, "{code}");
        }
        // Memory destinations are copied.
        assert_eq!(plan(&hex("48 01 03"), CODE).kind(), PlanKind::Boost);
        assert_eq!(plan(&hex("f0 48 01 03"), CODE).kind(), PlanKind::Boost);
    }

    // ----- lea -------------------------------------------------------------

    #[test]
    fn lea_emulation() {
        let mut r = regs();
        r.rax = 0x1000;
        r.rbx = 0x20;
        r.rcx = 0xffff_ffff_ffff_fff0;
        r.rdx = 0x1_0000_0030;
        let table: [(&str, &str, u64); 10] = [
            ("48 8d 05 10 00 00 00", "rax", CODE + 7 + 0x10), // lea rax,[rip+0x10]
            ("48 8d 05 f0 ff ff ff", "rax", CODE + 7 - 0x10), // lea rax,[rip-0x10]
            ("8d 05 10 00 00 00", "rax", (CODE + 6 + 0x10) & 0xffff_ffff), // lea eax,[rip+x]
            ("48 8d 44 98 08", "rax", 0x1000 + 0x20 * 4 + 8), // lea rax,[rax+rbx*4+8]
            ("8d 04 11", "rax", 0x20),                        // lea eax,[rcx+rdx]: 32-bit dest
            ("48 8d 04 11", "rax", 0x1_0000_0020),            // lea rax,[rcx+rdx]
            ("66 8d 04 18", "rax", 0x1020),                   // lea ax,[rax+rbx]: merge
            ("67 48 8d 04 0a", "rax", 0x20),                  // lea rax,[edx+ecx]: 32-bit address
            ("64 48 8d 04 25 10 00 00 00", "rax", 0x10),      // segment ignored
            ("48 8d 64 24 f8", "rsp", SP - 8),                // lea rsp,[rsp-8]
        ];
        for (code, reg, value) in table {
            let e = emulation(code, CODE);
            assert_eq!(e.mnemonic(), "lea");
            assert!(!e.touches_memory());
            emu_check(code, &r, &[("rip", next(code)), (reg, value)]);
        }
        let mut r2 = r;
        r2.rax = 0xffff_ffff_ffff_1234;
        emu_check("66 8d 40 01", &r2, &[("rip", next("66 8d 40 01")), ("rax", 0xffff_ffff_ffff_1235)]);
    }

    // ----- direct branches -------------------------------------------------

    #[test]
    fn jmp_and_call_relative() {
        let r = regs();
        let table: [(&str, u64); 5] = [
            ("eb 10", CODE + 2 + 0x10),
            ("eb fe", CODE),
            ("e9 00 01 00 00", CODE + 5 + 0x100),
            ("e9 fb ff ff ff", CODE),
            ("f2 e9 00 01 00 00", CODE + 6 + 0x100), // bnd jmp
        ];
        for (code, target) in table {
            let e = emulation(code, CODE);
            assert!(!e.touches_memory());
            emu_check(code, &r, &[("rip", target)]);
        }
        let code = "e8 10 00 00 00";
        assert!(emulation(code, CODE).touches_memory());
        let mut mem = emu_check(code, &r, &[("rip", CODE + 5 + 0x10), ("rsp", SP - 8)]);
        assert_eq!(mem.get(SP - 8, 8), CODE + 5);
        let mut mem = emu_check("e8 fb ff ff ff", &r, &[("rip", CODE), ("rsp", SP - 8)]);
        assert_eq!(mem.get(SP - 8, 8), CODE + 5);
        // Operand-size-prefixed branches are vendor-specific: refused.
        for code in ["66 eb 10", "66 e9 10 00 00 00", "66 e8 10 00 00 00", "66 c3", "66 75 10"] {
            let p = plan(&hex(code), CODE);
            let Plan::Refuse(why) = p else { panic!("{code}: {:?}", p.kind()) };
            assert!(why.to_string().contains("operand-size"), "{code}: {why}");
        }
    }

    #[test]
    fn jcc_all_conditions() {
        // (low nibble, mnemonic, flags where taken, flags where not taken)
        let (o, s, z, c, p) = (FLAG_OF, FLAG_SF, FLAG_ZF, FLAG_CF, FLAG_PF);
        let table: [(u8, &str, &[u64], &[u64]); 16] = [
            (0x0, "jo", &[o, o | s], &[0, s | z | c | p]),
            (0x1, "jno", &[0, s | z | c | p], &[o, o | s]),
            (0x2, "jb", &[c, c | z], &[0, z | s | o | p]),
            (0x3, "jae", &[0, z | s | o | p], &[c, c | z]),
            (0x4, "je", &[z, z | c], &[0, c | s | o | p]),
            (0x5, "jne", &[0, c | s | o | p], &[z, z | c]),
            (0x6, "jbe", &[c, z, c | z], &[0, s | o | p]),
            (0x7, "ja", &[0, s | o | p], &[c, z, c | z]),
            (0x8, "js", &[s, s | o], &[0, o | z | c | p]),
            (0x9, "jns", &[0, o | z | c | p], &[s, s | o]),
            (0xa, "jp", &[p, p | z], &[0, z | c | s | o]),
            (0xb, "jnp", &[0, z | c | s | o], &[p, p | z]),
            (0xc, "jl", &[s, o, s | z, o | c], &[0, s | o, z, c | p]),
            (0xd, "jge", &[0, s | o, z, c | p], &[s, o, s | z, o | c]),
            (0xe, "jle", &[z, s, o, z | s | o], &[0, s | o, c | p]),
            (0xf, "jg", &[0, s | o, c | p], &[z, s, o, z | s | o]),
        ];
        for (cc, mnemonic, taken, not_taken) in table {
            let short = format!("{:02x} 10", 0x70 + cc);
            let near = format!("0f {:02x} 00 01 00 00", 0x80 + cc);
            let short_back = format!("{:02x} fe", 0x70 + cc);
            for (code, target) in [(short, CODE + 2 + 0x10), (near, CODE + 6 + 0x100), (short_back, CODE)] {
                assert_eq!(plan(&hex(&code), CODE).mnemonic(), mnemonic, "{code}");
                for &f in taken {
                    let mut r = regs();
                    r.eflags = BASE_FLAGS | f;
                    emu_check(&code, &r, &[("rip", target)]);
                }
                for &f in not_taken {
                    let mut r = regs();
                    r.eflags = BASE_FLAGS | f;
                    emu_check(&code, &r, &[("rip", next(&code))]);
                }
            }
        }
        // Branch hints and bnd are ignored.
        let mut r = regs();
        r.eflags = BASE_FLAGS | FLAG_ZF;
        emu_check("3e 74 10", &r, &[("rip", CODE + 3 + 0x10)]);
        emu_check("f2 0f 84 00 01 00 00", &r, &[("rip", CODE + 7 + 0x100)]);
    }

    #[test]
    fn ret_and_ret_imm() {
        let r = regs();
        let mut mem = Mem::new();
        mem.put(SP, 8, 0x40_5555);
        for (code, rsp) in
            [("c3", SP + 8), ("f3 c3", SP + 8), ("f2 c3", SP + 8), ("c2 10 00", SP + 0x18), ("c2 00 00", SP + 8)]
        {
            let e = emulation(code, CODE);
            assert!(e.touches_memory());
            assert_eq!(e.mnemonic(), "ret");
            let after = run(code, &r, &mut mem).unwrap();
            check_regs(code, &r, &after, &[("rip", 0x40_5555), ("rsp", rsp)]);
        }
        let mut r2 = r;
        r2.rsp = 0xffff_ffff_ffff_fff8;
        let mut m = Mem { regions: vec![(0xffff_ffff_ffff_fff8, 0x40_6666u64.to_le_bytes().to_vec())] };
        let after = run("c2 08 00", &r2, &mut m).unwrap();
        check_regs("ret 8 wrap", &r2, &after, &[("rip", 0x40_6666), ("rsp", 8)]);
    }

    #[test]
    fn indirect_jmp_and_call() {
        let mut r = regs();
        r.rax = 0x40_7000;
        r.r11 = 0x40_7100;
        r.rbx = 1;
        // Register targets.
        emu_check("ff e0", &r, &[("rip", 0x40_7000)]);
        emu_check("41 ff e3", &r, &[("rip", 0x40_7100)]);
        emu_check("3e ff e0", &r, &[("rip", 0x40_7000)]); // notrack
        emu_check("f2 ff e0", &r, &[("rip", 0x40_7000)]); // bnd
        assert!(!emulation("ff e0", CODE).touches_memory());
        let mut mem = emu_check("ff d0", &r, &[("rip", 0x40_7000), ("rsp", SP - 8)]);
        assert_eq!(mem.get(SP - 8, 8), CODE + 2);
        let mut mem = emu_check("41 ff d3", &r, &[("rip", 0x40_7100), ("rsp", SP - 8)]);
        assert_eq!(mem.get(SP - 8, 8), CODE + 3);
        // call rsp: the target is the old rsp.
        emu_check("ff d4", &r, &[("rip", SP), ("rsp", SP - 8)]);

        // Memory targets: [rip+x] (PLT style), [reg*8+disp], [rsp+8].
        let mut mem = Mem::new();
        mem.put(DATA + 0x40, 8, 0x40_8000);
        mem.put(DATA + 0x48, 8, 0x40_8800);
        mem.put(SP + 8, 8, 0x40_9000);
        let disp = |len: u64| to_hex(&((DATA + 0x40 - (CODE + len)) as u32).to_le_bytes());
        let jmp_rip = format!("ff 25 {}", disp(6));
        assert!(emulation(&jmp_rip, CODE).touches_memory());
        let after = run(&jmp_rip, &r, &mut mem).unwrap();
        check_regs(&jmp_rip, &r, &after, &[("rip", 0x40_8000)]);
        let call_rip = format!("ff 15 {}", disp(6));
        let after = run(&call_rip, &r, &mut mem).unwrap();
        check_regs(&call_rip, &r, &after, &[("rip", 0x40_8000), ("rsp", SP - 8)]);
        assert_eq!(mem.get(SP - 8, 8), CODE + 6);
        let table_jmp = format!("ff 24 dd {}", to_hex(&((DATA + 0x40 - 8) as u32).to_le_bytes())); // [rbx*8+disp]
        let after = run(&table_jmp, &r, &mut mem).unwrap();
        check_regs(&table_jmp, &r, &after, &[("rip", 0x40_8000)]);
        let after = run("ff 54 24 08", &r, &mut mem).unwrap(); // call [rsp+8]
        check_regs("call [rsp+8]", &r, &after, &[("rip", 0x40_9000), ("rsp", SP - 8)]);
        assert_eq!(mem.get(SP - 8, 8), CODE + 4);
        // fs-relative indirect jump.
        let mut r2 = r;
        r2.fs_base = DATA;
        let after = run("64 ff 24 25 48 00 00 00", &r2, &mut mem).unwrap();
        check_regs("jmp fs:[0x48]", &r2, &after, &[("rip", 0x40_8800)]);

        // A faulting target read changes nothing.
        let mut mem = Mem::new();
        let before = mem.snapshot();
        assert_eq!(run("ff 25 00 00 00 00", &r, &mut mem).unwrap_err().addr, CODE + 6);
        assert!(run("ff 15 00 00 00 00", &r, &mut mem).is_err());
        assert_eq!(mem.snapshot(), before);
    }

    #[test]
    fn loop_and_jrcxz() {
        // (code, rcx before, ZF, rcx after, taken)
        let table: [(&str, u64, bool, u64, bool); 14] = [
            ("e2 10", 2, false, 1, true),
            ("e2 10", 1, false, 0, false),
            ("e2 10", 0, false, u64::MAX, true),
            ("e2 10", 0x1_0000_0000, false, 0xffff_ffff, true),
            ("e1 10", 5, true, 4, true), // loope
            ("e1 10", 5, false, 4, false),
            ("e1 10", 1, true, 0, false),
            ("e0 10", 5, false, 4, true), // loopne
            ("e0 10", 5, true, 4, false),
            ("67 e2 10", 0x1_0000_0001, false, 0, false), // loop with ecx
            ("67 e2 10", 0x1_0000_0000, false, 0xffff_ffff, true),
            ("67 e2 10", 0xffff_ffff_0000_0005, false, 4, true),
            ("67 e1 10", 0x5, true, 4, true),
            ("67 e0 10", 0x5, true, 4, false),
        ];
        for (code, before, zf, after, taken) in table {
            for extra in [0, FLAG_CF | FLAG_OF | FLAG_SF] {
                let mut r = regs();
                r.rcx = before;
                r.eflags = BASE_FLAGS | extra | if zf { FLAG_ZF } else { 0 };
                let target = if taken { next(code) + 0x10 } else { next(code) };
                emu_check(code, &r, &[("rip", target), ("rcx", after)]);
            }
        }
        // (code, rcx, taken)
        let table: [(&str, u64, bool); 6] = [
            ("e3 10", 0, true),
            ("e3 10", 1, false),
            ("e3 10", 0x1_0000_0000, false),
            ("67 e3 10", 0x1_0000_0000, true), // jecxz
            ("67 e3 10", 0, true),
            ("67 e3 10", 0xffff_ffff_0000_0001, false),
        ];
        for (code, rcx, taken) in table {
            let mut r = regs();
            r.rcx = rcx;
            let target = if taken { next(code) + 0x10 } else { next(code) };
            emu_check(code, &r, &[("rip", target)]);
        }
        assert_eq!(plan(&hex("67 e3 10"), CODE).mnemonic(), "jecxz");
        assert_eq!(plan(&hex("e3 10"), CODE).mnemonic(), "jrcxz");
    }

    // ----- copies ----------------------------------------------------------

    fn jump_back(next: u64) -> String {
        format!("ff 25 00 00 00 00 {}", to_hex(&next.to_le_bytes()))
    }

    #[test]
    fn boosted_copies_are_verbatim() {
        let table = [
            ("48 8b 03", "mov"),
            ("64 48 8b 04 25 28 00 00 00", "mov"),
            ("48 0f 44 c1", "cmove"),
            ("f0 48 0f b1 0f", "cmpxchg"),
            ("f3 48 a5", "movsq"),
            ("f3 aa", "stosb"),
            ("0f 28 c1", "movaps"),
            ("c5 fd 6f c1", "vmovdqa"),
            ("c9", "leave"),
            ("31 c0", "xor"),
            ("48 21 d8", "and"),
            ("0f a2", "cpuid"),
            ("0f 31", "rdtsc"),
            ("0f 01 d0", "xgetbv"),
            ("0f 01 d5", "xend"),
            ("0f 01 d6", "xtest"),
            ("c6 f8 00", "xabort"),
            ("48 8b 44 24 08", "mov"),
            ("f3 0f 6f 04 24", "movdqu"),
            ("0f ae 5c 24 fc", "stmxcsr"),
        ];
        for (code, mnemonic) in table {
            let bytes = hex(code);
            let p = plan(&bytes, CODE);
            assert_eq!(p.kind(), PlanKind::Boost, "{code}");
            assert_eq!(p.mnemonic(), mnemonic, "{code}");
            let c = p.copy().unwrap();
            assert_eq!((c.len(), c.scratch(), c.is_syscall(), c.mnemonic()), (bytes.len(), None, false, mnemonic));
            assert_eq!(c.insn_bytes(), &bytes[..]);
            let want = format!("{} {}", to_hex(&bytes), jump_back(CODE + bytes.len() as u64));
            assert_eq!(to_hex(&c.slot_bytes(SLOT)), want, "{code}");
            // The gdb stepi variant is the same copy, but stepped.
            let s = step_copy(&bytes, CODE).unwrap();
            assert_eq!(s.slot_bytes(SLOT), c.slot_bytes(SLOT));
        }
        // ud0/ud1/ud2 run out of line too (they fault in the slot and are
        // rewound by fixup).
        for code in ["0f 0b", "0f ff 00", "0f b9 00"] {
            assert_eq!(plan(&hex(code), CODE).kind(), PlanKind::Step, "{code}");
        }
    }

    #[test]
    fn rip_relative_rewrites() {
        // (original, expected rewritten instruction, scratch); disp = 0x10
        let d = "10 00 00 00";
        let table: Vec<(String, String, Gpr)> = [
            ("48 03 05 D", "48 03 81 D", Gpr::Rcx), // add rax,[rip+x]: reg uses rax
            ("01 05 D", "01 81 D", Gpr::Rcx),       // add [rip+x],eax
            ("48 3b 1d D", "48 3b 98 D", Gpr::Rax), // cmp rbx,[rip+x]
            ("83 3d D 05", "83 b8 D 05", Gpr::Rax), // cmp dword [rip+x],5
            ("48 81 3d D 00 01 00 00", "48 81 b8 D 00 01 00 00", Gpr::Rax), // imm32 after disp
            ("0f 28 05 D", "0f 28 80 D", Gpr::Rax), // movaps xmm0,[rip+x]
            ("f3 0f 6f 0d D", "f3 0f 6f 88 D", Gpr::Rax), // movdqu xmm1,[rip+x]
            ("66 0f 6f 05 D", "66 0f 6f 80 D", Gpr::Rax), // movdqa
            ("c5 fe 6f 05 D", "c5 fe 6f 80 D", Gpr::Rax), // vmovdqu ymm0,[rip+x]
            ("c4 e2 60 f2 05 D", "c4 e2 60 f2 81 D", Gpr::Rcx), // andn eax,ebx,[rip+x]: vvvv=rbx
            ("c4 e2 78 f2 1d D", "c4 e2 78 f2 99 D", Gpr::Rcx), // andn ebx,eax,[rip+x]
            ("62 f1 fe 48 6f 05 D", "62 f1 fe 48 6f 80 D", Gpr::Rax), // vmovdqu64 zmm0,[rip+x]
            ("62 d1 fe 48 6f 05 D", "62 d1 fe 48 6f 80 D", Gpr::R8), // same, EVEX.B set
            ("c4 c1 7e 6f 05 D", "c4 c1 7e 6f 80 D", Gpr::R8), // vmovdqu, VEX.B set
            ("49 03 05 D", "49 03 80 D", Gpr::R8),  // add rax,[rip+x], REX.B set
            ("4d 03 05 D", "4d 03 81 D", Gpr::R9),  // add r8,[rip+x], REX.B set
            ("41 ff 35 D", "41 ff b0 D", Gpr::R8),  // push [rip+x], REX.B set
            ("ff 35 D", "ff b0 D", Gpr::Rax),       // push [rip+x]
            ("f0 0f b1 0d D", "f0 0f b1 8a D", Gpr::Rdx), // lock cmpxchg [rip+x],ecx
            ("48 f7 25 D", "48 f7 a1 D", Gpr::Rcx), // mul qword [rip+x]
            ("48 0f af 05 D", "48 0f af 81 D", Gpr::Rcx), // imul rax,[rip+x]
            ("64 48 03 05 D", "64 48 03 81 D", Gpr::Rcx), // add rax,fs:[rip+x]
            ("67 03 05 D", "67 03 81 D", Gpr::Rcx), // add eax,[eip+x]
            ("48 0f b6 05 D", "48 0f b6 81 D", Gpr::Rcx), // movzx rax,byte [rip+x]
            ("0f 18 0d D", "0f 18 88 D", Gpr::Rax), // prefetcht0 [rip+x]
            ("d9 05 D", "d9 80 D", Gpr::Rax),       // fld dword [rip+x]
            ("f2 0f 59 05 D", "f2 0f 59 80 D", Gpr::Rax), // mulsd xmm0,[rip+x]
            ("48 0f 44 05 D", "48 0f 44 81 D", Gpr::Rcx), // cmove rax,[rip+x]
        ]
        .iter()
        .map(|(a, b, g)| (a.replace('D', d), b.replace('D', d), *g))
        .collect();
        for (orig, rewritten, scratch) in &table {
            let bytes = hex(orig);
            let p = plan(&bytes, CODE);
            assert_eq!(p.kind(), PlanKind::Step, "{orig}");
            let c = p.copy().unwrap();
            assert_eq!(c.scratch(), Some(*scratch), "{orig}");
            assert_eq!(c.len(), bytes.len());
            assert!(!c.is_syscall());
            assert_eq!(to_hex(c.insn_bytes()), to_hex(&hex(rewritten)), "{orig}");
            let want = format!("{} {}", to_hex(&hex(rewritten)), jump_back(CODE + bytes.len() as u64));
            assert_eq!(to_hex(&c.slot_bytes(SLOT)), want, "{orig}");
            check_copy(&bytes, CODE, c);
        }
        // Emulated RIP-relative instructions still have a step copy.
        let c = step_copy(&hex("48 8b 05 10 00 00 00"), CODE).unwrap();
        assert_eq!((to_hex(c.insn_bytes()).as_str(), c.scratch()), ("48 8b 81 10 00 00 00", Some(Gpr::Rcx)));
        let c = step_copy(&hex("48 8d 05 10 00 00 00"), CODE).unwrap();
        assert_eq!((to_hex(c.insn_bytes()).as_str(), c.scratch()), ("48 8d 81 10 00 00 00", Some(Gpr::Rcx)));
        let c = step_copy(&hex("48 8b 0d 10 00 00 00"), CODE).unwrap(); // mov rcx,[rip+x]
        assert_eq!(c.scratch(), Some(Gpr::Rax));
    }

    #[test]
    fn step_copy_variants() {
        // Emulated non-branches get a stepped copy; branches do not.
        let c = step_copy(&hex("55"), CODE).unwrap();
        assert_eq!(to_hex(&c.slot_bytes(SLOT)), format!("55 {}", jump_back(CODE + 1)));
        assert!(step_copy(&hex("48 83 ec 08"), CODE).is_some());
        for code in
            ["eb 10", "e8 00 00 00 00", "c3", "74 10", "ff e0", "ff 25 00 00 00 00", "e2 10", "f4", "cc", "ff ff"]
        {
            assert!(step_copy(&hex(code), CODE).is_none(), "{code}");
        }
        assert!(step_copy(&hex("0f 05"), CODE).unwrap().is_syscall());
    }

    #[test]
    fn x87_is_stepped_for_its_instruction_pointer() {
        for code in ["d9 ee", "dd 05 60 2d 00 00", "db 6c 24 18", "d9 e5"] {
            let p = plan(&hex(code), CODE);
            assert_eq!(p.kind(), PlanKind::Step, "{code}");
            assert!(p.copy().unwrap().is_x87(), "{code}");
        }
        assert!(!plan(&hex("48 8b 44 24 08"), CODE).copy().unwrap().is_x87());
    }

    #[test]
    fn emulated_branch_to_non_canonical_address_faults() {
        let mut r = regs();
        r.rax = 0x8000_0000_0000_0000;
        let mut mem = Mem::new();
        let before = r;
        assert!(run("ff e0", &r, &mut mem).is_err(), "jmp rax");
        assert!(run("ff d0", &r, &mut mem).is_err(), "call rax");
        assert_eq!(r, before);
    }

    #[test]
    fn syscall_copy_and_fixup() {
        let p = plan(&hex("0f 05"), CODE);
        assert_eq!((p.kind(), p.mnemonic().as_str(), p.len()), (PlanKind::Step, "syscall", 2));
        let c = p.copy().unwrap();
        assert!(c.is_syscall());
        assert_eq!(c.scratch(), None);
        assert_eq!(to_hex(&c.slot_bytes(SLOT)), format!("0f 05 {}", jump_back(CODE + 2)));

        // Completed: the kernel stored slot+2 in rcx and rflags in r11.
        let mut r = regs();
        r.rip = SLOT + 2;
        r.rcx = SLOT + 2;
        r.r11 = 0x246;
        r.rax = 0; // syscall result
        let before = r;
        assert_eq!(fixup(c, SLOT, &mut r, None), Fixup::Finished);
        // orig_rax keeps the number of the syscall that ran, as in line.
        let nr = before.orig_rax;
        check_regs("syscall finished", &before, &r, &[("rip", CODE + 2), ("rcx", CODE + 2), ("orig_rax", nr)]);
        // rcx not holding the slot return address is left alone.
        let mut r = before;
        r.rcx = 77;
        assert_eq!(fixup(c, SLOT, &mut r, None), Fixup::Finished);
        check_regs("syscall rcx", &before, &r, &[("rip", CODE + 2), ("rcx", 77), ("orig_rax", nr)]);
        // Restarted / interrupted before running: rewound.
        let mut r = before;
        r.rip = SLOT;
        assert_eq!(fixup(c, SLOT, &mut r, None), Fixup::Rewound);
        check_regs("syscall rewound", &before, &r, &[("rip", CODE)]);
    }

    #[test]
    fn fixup_cases() {
        let bytes = hex("48 03 05 10 00 00 00"); // add rax,[rip+x], scratch rcx
        let c = step_copy(&bytes, CODE).unwrap();
        assert_eq!(c.scratch(), Some(Gpr::Rcx));
        let saved = 0x5555_6666_7777_8888;
        let mut base = regs();
        base.rcx = c.next(); // as the caller set it up

        // Finished at slot+len and anywhere in the jump-back bytes.
        for off in [7u64, 8, 12, 20] {
            let mut r = base;
            r.rip = SLOT + off;
            let b = r;
            assert_eq!(fixup(&c, SLOT, &mut r, Some(saved)), Fixup::Finished, "off {off}");
            check_regs("finished", &b, &r, &[("rip", CODE + 7), ("rcx", saved)]);
        }
        // Rewound at slot (and, defensively, inside the instruction bytes).
        for off in [0u64, 3] {
            let mut r = base;
            r.rip = SLOT + off;
            let b = r;
            assert_eq!(fixup(&c, SLOT, &mut r, Some(saved)), Fixup::Rewound);
            check_regs("rewound", &b, &r, &[("rip", CODE), ("rcx", saved)]);
        }
        // Absolute: outside the slot, nothing is touched.
        for rip in [0x40_7777, SLOT + 21, SLOT - 1, CODE + 7] {
            let mut r = base;
            r.rip = rip;
            let b = r;
            assert_eq!(fixup(&c, SLOT, &mut r, Some(saved)), Fixup::Absolute);
            assert_eq!(r, b);
        }
        // No saved value: the scratch is left as is.
        let mut r = base;
        r.rip = SLOT + 7;
        let b = r;
        assert_eq!(fixup(&c, SLOT, &mut r, None), Fixup::Finished);
        check_regs("no saved", &b, &r, &[("rip", CODE + 7)]);
        // A copy without a scratch ignores saved values.
        let boost = step_copy(&hex("48 21 d8"), CODE).unwrap();
        let mut r = base;
        r.rip = SLOT + 3;
        let b = r;
        assert_eq!(fixup(&boost, SLOT, &mut r, Some(saved)), Fixup::Finished);
        check_regs("no scratch", &b, &r, &[("rip", CODE + 3)]);
    }

    #[test]
    fn slot_positions() {
        let c = step_copy(&hex("48 03 05 10 00 00 00"), CODE).unwrap();
        assert_eq!(slot_pos(&c, SLOT, SLOT), SlotPos::Start);
        assert_eq!(slot_pos(&c, SLOT, SLOT + 1), SlotPos::Start);
        assert_eq!(slot_pos(&c, SLOT, SLOT + 7), SlotPos::AfterInsn);
        assert_eq!(slot_pos(&c, SLOT, SLOT + 8), SlotPos::JumpBack);
        assert_eq!(slot_pos(&c, SLOT, SLOT + 20), SlotPos::JumpBack);
        assert_eq!(slot_pos(&c, SLOT, SLOT + 21), SlotPos::Outside);
        assert_eq!(slot_pos(&c, SLOT, SLOT - 1), SlotPos::Outside);
        assert_eq!(slot_pos(&c, SLOT, 0), SlotPos::Outside);
        assert_eq!(slot_pos(&c, u64::MAX - 3, 2), SlotPos::Start); // wrapping
        assert_eq!(slot_pos(&c, u64::MAX - 3, 4), SlotPos::JumpBack);
    }

    // ----- refusals --------------------------------------------------------

    #[test]
    fn refusals() {
        let table = [
            ("", "undecodable"),
            ("48", "truncated"),
            ("0f", "truncated"),
            ("e8 00 00", "truncated"),
            ("48 8b 05 10 00", "truncated"),
            ("ff ff", "undecodable"),
            ("06", "undecodable"), // push es: invalid in 64-bit mode
            ("ce", "undecodable"), // into: invalid in 64-bit mode
            ("f0 90", "undecodable"),
            ("f4", "privileged instruction (hlt)"),
            ("fa", "privileged instruction (cli)"),
            ("fb", "privileged instruction (sti)"),
            ("0f 20 c0", "privileged instruction (mov)"),
            ("0f 01 f8", "privileged instruction (swapgs)"),
            ("0f 09", "privileged instruction (wbinvd)"),
            ("0f 30", "privileged instruction (wrmsr)"),
            ("0f 01 15 10 00 00 00", "privileged instruction (lgdt)"),
            ("cd 80", "int n cannot run out of line"),
            ("cc", "int3 cannot run out of line"),
            ("f1", "int1 cannot run out of line"),
            ("e4 10", "port i/o instruction (in)"),
            ("ec", "port i/o instruction (in)"),
            ("ee", "port i/o instruction (out)"),
            ("6c", "port i/o instruction (insb)"),
            ("f3 6f", "port i/o instruction (outsd)"),
            ("0f 34", "sysenter cannot run out of line"),
            ("0f 35", "sysexit"),
            ("48 0f 07", "sysretq"),
            ("0f 07", "sysret"),
            ("48 cf", "iretq"),
            ("cf", "iretd"),
            ("cb", "far branch"),
            ("ca 08 00", "far branch"),
            ("ff 2d 10 00 00 00", "far branch"),
            ("ff 1d 10 00 00 00", "far branch"),
            ("48 ff 28", "far branch"),
            ("ff 18", "far branch"),
            ("c7 f8 10 00 00 00", "xbegin: relative abort target"),
            ("66 eb 10", "operand-size"),
        ];
        for (code, keyword) in table {
            let p = plan(&hex(code), CODE);
            let Plan::Refuse(why) = &p else { panic!("{code}: got {:?}", p.kind()) };
            assert!(why.to_string().contains(keyword), "{code}: {why:?} lacks {keyword:?}");
            assert_eq!(why.reason(), why.to_string());
            assert!(p.copy().is_none());
            assert!(step_copy(&hex(code), CODE).is_none(), "{code}");
            if keyword == "undecodable" || keyword == "truncated" {
                assert_eq!((p.len(), p.mnemonic().as_str()), (0, "(bad)"), "{code}");
            } else {
                assert_eq!(p.len(), hex(code).len(), "{code}");
            }
        }
    }

    // ----- broad sweep -----------------------------------------------------

    /// Check a copy against its original: same length and mnemonic when
    /// decoded in the slot, a jump back to next, and for a rewritten copy a
    /// scratch the original does not use and an identical effective address.
    fn check_copy(orig: &[u8], addr: u64, c: &Copy) {
        let ctx = to_hex(&orig[..c.len().min(orig.len())]);
        let slot = c.slot_bytes(SLOT);
        assert!(slot.len() <= SLOT_SIZE, "{ctx}");
        assert_eq!(c.len(), c.insn_bytes().len(), "{ctx}");
        assert_eq!(c.orig(), addr);
        let oi = Decoder::with_ip(64, orig, addr, DecoderOptions::NONE).decode();
        let mut d = Decoder::with_ip(64, &slot, SLOT, DecoderOptions::NONE);
        let ci = d.decode();
        assert!(!ci.is_invalid(), "{ctx}");
        assert_eq!(ci.len(), c.len(), "{ctx}");
        assert_eq!(ci.mnemonic(), oi.mnemonic(), "{ctx}");
        assert_eq!(ci.code(), oi.code(), "{ctx}");
        let jb = d.decode();
        assert_eq!(jb.code(), Code::Jmp_rm64, "{ctx}");
        assert!(jb.is_ip_rel_memory_operand());
        assert_eq!(jb.ip_rel_memory_address(), SLOT + c.len() as u64 + 6);
        assert_eq!(u64::from_le_bytes(slot[c.len() + 6..].try_into().unwrap()), c.next());
        match c.scratch() {
            None => {
                if !c.is_syscall() {
                    assert_eq!(c.insn_bytes(), &orig[..c.len()], "{ctx}");
                }
            }
            Some(g) => {
                assert!(oi.is_ip_rel_memory_operand(), "{ctx}");
                assert!(!ci.is_ip_rel_memory_operand(), "{ctx}");
                assert!(g != Gpr::Rsp && g != Gpr::R12);
                let diff: Vec<usize> = (0..c.len()).filter(|&i| orig[i] != c.insn_bytes()[i]).collect();
                assert_eq!(diff.len(), 1, "{ctx}: only the ModRM byte changes");
                let mut f = InstructionInfoFactory::new();
                let used: Vec<UsedRegister> = f.info(&oi).used_registers().to_vec();
                assert!(used.iter().all(|u| Gpr::from_iced(u.register()) != Some(g)), "{ctx}: scratch {g} in use");
                let op = (0..oi.op_count()).find(|&i| oi.op_kind(i) == OpKind::Memory).unwrap();
                let next = c.next();
                let want = oi.virtual_address(op, 0, |_, _, _| Some(0)).unwrap();
                let got =
                    ci.virtual_address(op, 0, |r, _, _| Some(if Gpr::from_iced(r) == Some(g) { next } else { 0 }));
                assert_eq!(got, Some(want), "{ctx}");
            }
        }
    }

    fn sweep_inputs() -> Vec<Vec<u8>> {
        let prefixes: [&[u8]; 14] = [
            &[],
            &[0x48],
            &[0x41],
            &[0x49],
            &[0x4d],
            &[0x66],
            &[0x67],
            &[0xf3],
            &[0xf2],
            &[0xf0],
            &[0x64],
            &[0x66, 0x48],
            &[0xf3, 0x48],
            &[0x2e],
        ];
        let fillers: [&[u8]; 5] = [
            &[0x05, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0],
            &[0xc1, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e],
            &[0x44, 0x24, 0x08, 0x7f, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a],
            &[0x3d, 0xf0, 0xff, 0xff, 0xff, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09],
            &[0x0d, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff],
        ];
        let escapes: [&[u8]; 8] = [
            &[],
            &[0x0f],
            &[0x0f, 0x38],
            &[0x0f, 0x3a],
            &[0xc5, 0xf8],
            &[0xc4, 0xc1, 0x7d],
            &[0xc4, 0xe2, 0x79],
            &[0x62, 0xf1, 0x7c, 0x48],
        ];
        let mut out = Vec::new();
        for p in prefixes {
            for e in escapes {
                if !e.is_empty() && e[0] != 0x0f && !p.is_empty() && p != [0x67] && p != [0x64] {
                    continue; // VEX/EVEX after REX/66/f2/f3/f0 is invalid anyway
                }
                for op in 0..=255u8 {
                    for f in fillers {
                        let mut v = p.to_vec();
                        v.extend_from_slice(e);
                        v.push(op);
                        v.extend_from_slice(f);
                        out.push(v);
                    }
                }
            }
        }
        out
    }

    #[test]
    fn sweep_never_panics_and_copies_are_sound() {
        let mut counts = std::collections::HashMap::new();
        let (mut rewritten, mut high) = (0usize, 0usize);
        for code in sweep_inputs() {
            for addr in [CODE, 0x7fff_ffff_f000] {
                let p = plan(&code, addr);
                *counts.entry(p.kind()).or_insert(0usize) += 1;
                assert!(p.len() <= MAX_INSN_LEN);
                if p.kind() != PlanKind::Refuse || p.len() != 0 {
                    let oi = Decoder::with_ip(64, &code, addr, DecoderOptions::NONE).decode();
                    assert_eq!(p.len(), oi.len(), "{}", to_hex(&code));
                    assert_eq!(p.mnemonic(), mnemonic_of(&oi));
                }
                if let Some(c) = p.copy() {
                    check_copy(&code, addr, c);
                    if let Some(g) = c.scratch() {
                        rewritten += 1;
                        high += usize::from(g as usize >= 8);
                    }
                }
                if let Some(c) = step_copy(&code, addr) {
                    check_copy(&code, addr, &c);
                }
                if let Plan::Emulate(e) = &p {
                    // Emulate on a file with nothing but a stack mapped.
                    let mut r = regs();
                    r.rip = addr;
                    let mut mem = Mem::new();
                    let before = mem.snapshot();
                    let mut out = r;
                    match e.apply(&mut out, &mut mem) {
                        Ok(()) => {
                            assert_eq!(out.orig_rax, u64::MAX);
                            if !e.touches_memory() {
                                assert_eq!(mem.snapshot(), before);
                            }
                        }
                        Err(_) => {
                            assert_eq!(out, r);
                            assert_eq!(mem.snapshot(), before);
                        }
                    }
                }
                // Truncations of the input never panic either.
                for n in 0..code.len().min(4) {
                    let _ = plan(&code[..n], addr);
                    let _ = step_copy(&code[..n], addr);
                }
            }
        }
        eprintln!("sweep: {counts:?}, rewritten {rewritten}, high scratch {high}");
        assert!(rewritten > 500 && high > 50, "rewritten {rewritten}, high scratch {high}");
        // The sweep exercised every plan kind substantially.
        for k in [PlanKind::Emulate, PlanKind::Boost, PlanKind::Step, PlanKind::Refuse] {
            assert!(counts.get(&k).copied().unwrap_or(0) > 100, "{k}: {counts:?}");
        }
    }
}
