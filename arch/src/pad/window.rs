//! Window planning: which bytes a site's `jmp rel32` replaces, and whether that is safe.
//!
//! The function is decoded from its first byte (a symbol's start is an instruction start), so
//! every instruction boundary and every direct branch target of the function is known. The
//! window is the run of whole instructions from the site that covers at least
//! [`PATCH_LEN`](super::PATCH_LEN) bytes. The rules, each a [`Refusal`]:
//!
//! * the site must start an instruction of the function, and the window must end inside it;
//! * no direct branch, call, `jcc`, `loop*` or `jrcxz` of the function, no RIP-relative operand of
//!   the function and no address the caller lists (relocations, jump tables, landing pads,
//!   symbols) may point strictly inside the window (the site itself may: a branch to the site
//!   runs the pad, as a hit);
//! * an indirect `jmp` anywhere in the function refuses it (a `switch`'s jump table can target
//!   any byte), except `jmp qword ptr [rip+disp]` (a tail call through a GOT-style slot, whose
//!   target is another function);
//! * in the window: no `call` (its return address would point into the pad), nothing that
//!   cannot run at another address (whatever [`crate::displaced::plan`] refuses: `int n`,
//!   `int3`, privileged and far instructions, ...), no `syscall` (`rcx` and a restarted call
//!   would name the pad), no `ud0/1/2` (the `SIGILL` would name the pad), no x87 instruction (the
//!   FPU records its address), no transactional-memory instruction;
//! * an unconditional relative `jmp`, a `ret` or a `jmp qword ptr [rip+disp]` may only be the
//!   window's last instruction: it ends the window (the pad then needs no jump back); a window
//!   that would go on past it is refused, since the bytes after it are reached from elsewhere.
//!
//! Pure: bytes in, a [`JumpWindow`] or a [`Refusal`] out.

use iced_x86::{Code, CpuidFeature, Decoder, DecoderOptions, FlowControl, Instruction, Mnemonic, Register};

use super::{Refusal, PATCH_LEN};
use crate::displaced;

/// How the pad relocates one instruction of the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsnClass {
    /// No dependence on its own address: re-encoded as it is.
    Plain,
    /// A RIP-relative memory operand addressing `target`: re-encoded with the displacement
    /// recomputed for the pad (the target must be within ±2 GiB of the pad).
    RipRelative {
        /// The absolute address the operand refers to.
        target: u64,
    },
    /// A conditional relative branch (`jcc`): becomes a `jcc rel32` to `target`, or, where the
    /// pad cannot reach it, an inverted `jcc` over an absolute jump.
    Jcc {
        /// The original branch target.
        target: u64,
    },
    /// `loop`, `loope`, `loopne`, `jrcxz` or `jecxz` (8-bit displacements only): a short branch to
    /// a jump to `target` inside the pad.
    Loop {
        /// The original branch target.
        target: u64,
    },
    /// An unconditional relative `jmp`: becomes a jump to `target`; ends the window.
    Jmp {
        /// The original branch target.
        target: u64,
    },
    /// `ret` or `ret imm16`: copied; ends the window.
    Ret,
    /// `jmp qword ptr [rip+disp]`: re-encoded with the displacement recomputed; ends the window.
    JmpMem {
        /// Address of the 8-byte slot holding the target.
        slot: u64,
    },
}

impl InsnClass {
    /// Whether the instruction never falls through (the window ends with it).
    pub fn is_exit(self) -> bool {
        matches!(self, InsnClass::Jmp { .. } | InsnClass::Ret | InsnClass::JmpMem { .. })
    }
}

/// One instruction of a window.
#[derive(Debug, Clone)]
pub struct WindowInsn {
    /// Its original address.
    pub addr: u64,
    /// Its length in bytes.
    pub len: usize,
    /// Lowercase mnemonic (`add`, `jne`, ...).
    pub mnemonic: String,
    /// How the pad relocates it.
    pub class: InsnClass,
    pub(super) instr: Instruction,
}

/// The planned window of a jump-planned site: the instructions the `jmp rel32` replaces.
#[derive(Debug, Clone)]
pub struct JumpWindow {
    /// The probed address (the window's first byte).
    pub site: u64,
    /// The window's length: whole instructions, at least [`PATCH_LEN`](super::PATCH_LEN).
    pub len: usize,
    /// The function's first byte.
    pub func_start: u64,
    /// The first byte after the function.
    pub func_end: u64,
    /// The window's instructions, in order.
    pub insns: Vec<WindowInsn>,
    /// The window's original bytes.
    pub original: Vec<u8>,
}

impl JumpWindow {
    /// The first byte after the window: where the pad jumps back to.
    pub fn end(&self) -> u64 {
        self.site + self.len as u64
    }

    /// Whether `pc` is strictly inside the window (`site+1 .. site+len`): a thread stopped there,
    /// or a signal frame or return address naming it, would run the patch's bytes from their
    /// middle. The site itself is fine (the thread takes the jump).
    pub fn covers(&self, pc: u64) -> bool {
        pc > self.site && pc < self.end()
    }

    /// Whether the window ends with an instruction that never falls through (`jmp`, `ret`):
    /// the pad then has no jump back.
    pub fn ends_with_exit(&self) -> bool {
        self.insns.last().is_some_and(|i| i.class.is_exit())
    }
}

fn mnemonic_of(instr: &Instruction) -> String {
    format!("{:?}", instr.mnemonic()).to_lowercase()
}

/// Plan the window for a probe at `site`, given `code`, the function's bytes from its first
/// instruction at `func_start` to its end, and `extra_targets`, addresses the caller knows are
/// reached from elsewhere (relocation targets, jump-table entries, exception landing pads,
/// other symbols, and the branch targets of the function's split-off parts such as GCC's
/// `foo.cold`, which jump back into `foo`). See the module documentation for the rules.
pub fn plan_jump(site: u64, code: &[u8], func_start: u64, extra_targets: &[u64]) -> Result<JumpWindow, Refusal> {
    let func_end = func_start.saturating_add(code.len() as u64);
    if site < func_start || site >= func_end || func_end - func_start != code.len() as u64 {
        return Err(Refusal::OutsideFunction { site, start: func_start, end: func_end });
    }
    let insns = decode_all(code, func_start)?;
    let first = match insns.iter().position(|i| i.ip() == site) {
        Some(k) => k,
        None => {
            let cover = insns.iter().find(|i| i.ip() < site && site < i.next_ip());
            return Err(match cover {
                Some(i) => Refusal::SplitsInstruction { site, start: i.ip(), len: i.len() },
                None => Refusal::Undecodable { at: site },
            });
        }
    };

    // The window: whole instructions from the site covering PATCH_LEN bytes.
    let mut window = Vec::new();
    let mut len = 0usize;
    for instr in &insns[first..] {
        if len >= PATCH_LEN {
            break;
        }
        if let Some(prev) = window.last().filter(|w: &&WindowInsn| w.class.is_exit()) {
            return Err(Refusal::AfterUnconditional { at: prev.addr, mnemonic: prev.mnemonic.clone() });
        }
        let class = classify(instr, &code[(instr.ip() - func_start) as usize..][..instr.len()])?;
        window.push(WindowInsn {
            addr: instr.ip(),
            len: instr.len(),
            mnemonic: mnemonic_of(instr),
            class,
            instr: *instr,
        });
        len += instr.len();
    }
    if len < PATCH_LEN {
        return Err(Refusal::PastFunctionEnd { site, available: len });
    }
    let end = site + len as u64;
    let inside = |a: u64| a > site && a < end; // JumpWindow::covers
    let span = (site, end);

    // Everything the function itself says about the window.
    for instr in &insns {
        if instr.flow_control() == FlowControl::IndirectBranch && !is_got_jump(instr) {
            return Err(Refusal::IndirectJump { at: instr.ip(), mnemonic: mnemonic_of(instr) });
        }
        if let Some(target) = direct_target(instr) {
            if inside(target) {
                return Err(Refusal::BranchIntoWindow { from: instr.ip(), target, window: span });
            }
        }
        if instr.is_ip_rel_memory_operand() {
            let target = instr.ip_rel_memory_address();
            if inside(target) {
                return Err(Refusal::ReferenceIntoWindow { from: instr.ip(), target, window: span });
            }
        }
    }
    if let Some(&target) = extra_targets.iter().find(|&&t| inside(t)) {
        return Err(Refusal::KnownTargetInWindow { target, window: span });
    }

    let off = (site - func_start) as usize;
    Ok(JumpWindow { site, len, func_start, func_end, insns: window, original: code[off..off + len].to_vec() })
}

/// Decode the whole function; any undecodable byte refuses it (its boundaries are unknown).
fn decode_all(code: &[u8], ip: u64) -> Result<Vec<Instruction>, Refusal> {
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let mut out = Vec::with_capacity(code.len() / 3);
    while decoder.can_decode() {
        let at = decoder.ip();
        let instr = decoder.decode();
        if instr.is_invalid() {
            return Err(Refusal::Undecodable { at });
        }
        out.push(instr);
    }
    Ok(out)
}

/// The target of a direct near branch or call (`jmp`, `jcc`, `call`, `loop*`, `jrcxz`, `xbegin`).
fn direct_target(instr: &Instruction) -> Option<u64> {
    use iced_x86::OpKind;
    (0..instr.op_count()).find_map(|i| match instr.op_kind(i) {
        OpKind::NearBranch16 | OpKind::NearBranch32 | OpKind::NearBranch64 => Some(instr.near_branch_target()),
        _ => None,
    })
}

/// `jmp qword ptr [rip+disp]`: an indirect jump whose target is read from one known slot (a
/// PLT/GOT-style tail call), not from a table.
fn is_got_jump(instr: &Instruction) -> bool {
    instr.is_jmp_near_indirect() && instr.memory_base() == Register::RIP && instr.memory_index() == Register::None
}

/// Decide how an instruction of the window is relocated, or why it cannot be.
fn classify(instr: &Instruction, bytes: &[u8]) -> Result<InsnClass, Refusal> {
    let at = instr.ip();
    let mnemonic = mnemonic_of(instr);
    let refuse = |reason: &str| Refusal::NotRelocatable { at, mnemonic: mnemonic.clone(), reason: reason.to_string() };
    let m = instr.mnemonic();
    if instr.is_call_near() || instr.is_call_near_indirect() || instr.is_call_far() || instr.is_call_far_indirect() {
        return Err(Refusal::CallInWindow { at });
    }
    match m {
        Mnemonic::Syscall => {
            return Err(refuse("the kernel would store the pad's address in rcx and restart the call in the pad"))
        }
        Mnemonic::Ud0 | Mnemonic::Ud1 | Mnemonic::Ud2 => {
            return Err(refuse("its SIGILL would be reported at the pad's address"))
        }
        _ => {}
    }
    if instr.flow_control() == FlowControl::XbeginXabortXend {
        return Err(refuse("a transactional-memory instruction"));
    }
    if instr
        .cpuid_features()
        .iter()
        .any(|f| matches!(f, CpuidFeature::FPU | CpuidFeature::FPU287 | CpuidFeature::FPU387))
    {
        return Err(refuse("the FPU would record the pad's address as the last x87 instruction"));
    }
    // Whatever displaced stepping cannot run out of line cannot run in a pad either. Its
    // RIP-relative refusals are about the scratch-register rewrite, which a pad does not use
    // (a pad re-encodes the displacement instead).
    if let displaced::Plan::Refuse(r) = displaced::plan(bytes, at) {
        if !(instr.is_ip_rel_memory_operand() && r.reason().starts_with("rip-relative")) {
            return Err(refuse(r.reason()));
        }
    }
    if instr.is_jcc_short_or_near() {
        return Ok(InsnClass::Jcc { target: instr.near_branch_target() });
    }
    if instr.is_loop() || instr.is_loopcc() || instr.is_jcx_short() {
        if !matches!(
            instr.code(),
            Code::Loop_rel8_64_RCX
                | Code::Loope_rel8_64_RCX
                | Code::Loopne_rel8_64_RCX
                | Code::Jrcxz_rel8_64
                | Code::Jecxz_rel8_64
        ) {
            return Err(refuse("an address-size-prefixed loop (ecx counter) is not relocated"));
        }
        return Ok(InsnClass::Loop { target: instr.near_branch_target() });
    }
    if instr.is_jmp_short_or_near() {
        return Ok(InsnClass::Jmp { target: instr.near_branch_target() });
    }
    if m == Mnemonic::Ret {
        return Ok(InsnClass::Ret);
    }
    if instr.is_jmp_near_indirect() {
        if is_got_jump(instr) {
            return Ok(InsnClass::JmpMem { slot: instr.ip_rel_memory_address() });
        }
        return Err(Refusal::IndirectJump { at, mnemonic });
    }
    if instr.flow_control() != FlowControl::Next {
        return Err(refuse("it changes the flow of control"));
    }
    if instr.is_ip_rel_memory_operand() {
        return Ok(InsnClass::RipRelative { target: instr.ip_rel_memory_address() });
    }
    Ok(InsnClass::Plain)
}
