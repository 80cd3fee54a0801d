//! Pad code generation with iced-x86's `CodeAssembler`, and the `jmp rel32` over the site.
//!
//! The layout of a pad at `entry` (every instruction produced by iced-x86's assembler and block
//! encoder; no byte is written by hand):
//!
//! ```text
//! entry:  lea rsp, [rsp-128]            ; step over the red zone (lea: no flags change)
//!         pushfq                        ; the program's flags, at rsp-136
//!         lock inc qword ptr [rip+counter]      ; the action (PadAction::Count)
//!           ; or, counter beyond ±2 GiB: push rax; mov rax, counter; lock inc qword ptr [rax]; pop rax
//!         popfq
//!         lea rsp, [rsp+128]            ; rsp, flags, every register: the program's again
//! body:   <the window's instructions, re-encoded for their new addresses>
//!           ; RIP-relative operands: displacement recomputed (same absolute address)
//!           ; jcc: jcc rel32 to the original target, or jcc to a stub below
//!           ; loop*/jrcxz: a short branch to a stub below
//!           ; jmp rel: a jump to the original target (ends the window)
//!         jmp site+len                  ; rel32, or jmp qword ptr [rip+0] / .quad (absolute)
//! stubs:  jmp target                    ; one per jcc/loop that needs one: rel32 or absolute
//! ```
//!
//! Why each piece:
//! * `lea` rather than `sub`/`add` for `rsp`: `lea` changes no flag, so the adjustment can sit
//!   outside `pushfq`/`popfq`. Going 128 bytes down first keeps the System V red zone (the 128
//!   bytes below `rsp` a leaf function may use without moving `rsp`) intact: the pad's only stack
//!   writes are the flags (and `rax` on the far-counter path), below `rsp - 128`.
//! * `pushfq`/`popfq`: `lock inc` changes OF SF ZF AF PF; `popfq` restores them, and TF, DF, AC
//!   exactly as they were (user mode cannot change IF or IOPL either way).
//! * RIP-relative operands are re-encoded rather than rewritten through a scratch register as
//!   displaced stepping does: a pad is within ±2 GiB of its site, so a plain 32-bit displacement
//!   reaches whatever the original reached (checked; refused when not), and no register needs
//!   saving.
//! * Branch targets are checked to be reachable by `rel32` from *every* byte of a pad of
//!   [`MAX_PAD_LEN`] (the final layout is the block encoder's); otherwise an absolute jump.
//!
//! Pure: bytes in, bytes out.

use iced_x86::code_asm::{qword_ptr, rax, rsp, CodeAssembler, CodeLabel};
use iced_x86::{BlockEncoderOptions, Code, ConditionCode, Encoder, IcedError, Instruction, MemoryOperand, Register};

use super::window::{InsnClass, JumpWindow};
use super::{reachable, Refusal, PATCH_LEN};

/// Bytes below `rsp` the System V x86-64 ABI lets a function use without moving `rsp`; a pad
/// writes nothing there.
pub const RED_ZONE: i32 = 128;

/// Longest pad [`build_pad`] makes; reachability is checked for every byte of this span.
pub const MAX_PAD_LEN: usize = 256;

/// The lowest address a pad can name as a target or operand: iced-x86's assembler identifies
/// its labels by small integers, so an absolute address below this could be taken for one (and
/// no Linux user-space mapping lies below `vm.mmap_min_addr`, 64 KiB by default).
const LOWEST_ADDRESS: u64 = 0x1_0000;

/// What a pad does before running the relocated instructions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PadAction {
    /// Add 1, atomically (`lock inc qword`), to the 8-byte counter at `counter_addr` (in a page
    /// shared with xol). RIP-relative when the counter is within ±2 GiB of the pad; otherwise
    /// through `rax`, saved and restored on the stack below the red zone.
    Count {
        /// Address of the 8-byte-aligned counter in the inferior.
        counter_addr: u64,
    },
    // TODO(issue 13): `Collect { ring }` — registers and memory into a per-thread ring. Needs
    // the thread's ring found without a system call (fs-relative, or a table indexed by a
    // thread id the pad can read) and a register save area; not built yet.
}

/// A pad built for one window at one address.
#[derive(Debug, Clone)]
pub struct Pad {
    /// The pad's first byte (where the site's `jmp` goes): the address it was built for.
    pub entry: u64,
    /// The pad's code, to be written at `entry`.
    pub bytes: Vec<u8>,
    /// `bytes.len()`.
    pub len: usize,
    /// The probed site.
    pub site: u64,
    /// The window's length (the pad jumps back to `site + window_len`).
    pub window_len: usize,
    /// The `jmp rel32` to write over the site ([`site_patch`]).
    pub patch: [u8; PATCH_LEN],
    /// The site's original bytes the patch overwrites: write them back to unpatch. (The rest of
    /// the window is left as it was.)
    pub original: [u8; PATCH_LEN],
    /// Where the relocated part begins: `entry .. body` is the action, during which `rsp` and the
    /// flags are not the program's.
    pub body: u64,
    /// Exact correspondences `(address in the pad, original address)`: a thread whose `rip` is
    /// the first is in the same state as a thread at the second (each relocated instruction's
    /// start, the jump back, each stub). Used to move threads out of a pad.
    pub points: Vec<(u64, u64)>,
}

impl Pad {
    /// Whether `pc` is inside the pad.
    pub fn contains(&self, pc: u64) -> bool {
        pc >= self.entry && pc < self.entry + self.len as u64
    }

    /// The original address equivalent to a thread at `pc` in the pad, if `pc` is one of
    /// [`Pad::points`]; `None` in the action (let the thread run or step on to `body`) or in the
    /// middle of an instruction.
    pub fn original_address(&self, pc: u64) -> Option<u64> {
        self.points.iter().find(|&&(p, _)| p == pc).map(|&(_, o)| o)
    }
}

fn enc(e: IcedError) -> Refusal {
    Refusal::Encoding(e.to_string())
}

/// The 5-byte `jmp rel32` at `site` to `pad_addr`, encoded by iced-x86; refused when the pad is
/// not within ±2 GiB of the site.
pub fn site_patch(site: u64, pad_addr: u64) -> Result<[u8; PATCH_LEN], Refusal> {
    if site.checked_add(PATCH_LEN as u64).is_none_or(|next| !reachable(next, 0, pad_addr)) {
        return Err(Refusal::OutOfRange { what: "site patch", from: site, to: pad_addr });
    }
    let jmp = Instruction::with_branch(Code::Jmp_rel32_64, pad_addr).map_err(enc)?;
    let mut encoder = Encoder::new(64);
    let n = encoder.encode(&jmp, site).map_err(enc)?;
    let bytes = encoder.take_buffer();
    let patch: [u8; PATCH_LEN] = bytes
        .get(..PATCH_LEN)
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| Refusal::Encoding(format!("{n}-byte jmp")))?;
    Ok(patch)
}

/// Build the pad for `window` at `pad_addr`, running `action` first. Refused when the site cannot
/// reach the pad, when an operand or target the relocated instructions need is out of ±2 GiB of
/// the pad (branch targets never are: they get absolute jumps), or when iced-x86 cannot encode it.
pub fn build_pad(window: &JumpWindow, pad_addr: u64, action: &PadAction) -> Result<Pad, Refusal> {
    let patch = site_patch(window.site, pad_addr)?;
    let span = MAX_PAD_LEN as u64;
    let low = |addr: u64| -> Result<(), Refusal> {
        if addr < LOWEST_ADDRESS {
            Err(Refusal::Encoding(format!("address {addr:#x} is below {LOWEST_ADDRESS:#x}")))
        } else {
            Ok(())
        }
    };
    let mut a = CodeAssembler::new(64).map_err(enc)?;

    // The action, between the red-zone skip and the saved flags.
    a.lea(rsp, qword_ptr(rsp - RED_ZONE)).map_err(enc)?;
    a.pushfq().map_err(enc)?;
    match *action {
        PadAction::Count { counter_addr } => {
            low(counter_addr)?;
            if counter_addr % 8 != 0 {
                return Err(Refusal::MisalignedCounter { addr: counter_addr });
            }
            if reachable(pad_addr, span, counter_addr) {
                let mem = MemoryOperand::with_base_displ(Register::RIP, counter_addr as i64);
                let mut inc = Instruction::with1(Code::Inc_rm64, mem).map_err(enc)?;
                inc.set_has_lock_prefix(true);
                a.add_instruction(inc).map_err(enc)?;
            } else {
                a.push(rax).map_err(enc)?;
                a.mov(rax, counter_addr).map_err(enc)?;
                a.lock().inc(qword_ptr(rax)).map_err(enc)?;
                a.pop(rax).map_err(enc)?;
            }
        }
    }
    a.popfq().map_err(enc)?;
    a.lea(rsp, qword_ptr(rsp + RED_ZONE)).map_err(enc)?;

    // The relocated window. Each instruction gets a label so its new address is known.
    let mut labels: Vec<(CodeLabel, u64)> = Vec::new();
    let mut stubs: Vec<(CodeLabel, u64)> = Vec::new();
    for insn in &window.insns {
        let mut here = a.create_label();
        a.set_label(&mut here).map_err(enc)?;
        labels.push((here, insn.addr));
        let mut instr = insn.instr;
        match insn.class {
            InsnClass::Plain | InsnClass::Ret => a.add_instruction(instr).map_err(enc)?,
            InsnClass::RipRelative { target } | InsnClass::JmpMem { slot: target } => {
                low(target)?;
                if !reachable(pad_addr, span, target) {
                    return Err(Refusal::OutOfRange { what: "rip-relative operand", from: pad_addr, to: target });
                }
                a.add_instruction(instr).map_err(enc)?;
            }
            InsnClass::Jcc { target } => {
                low(target)?;
                if reachable(pad_addr, span, target) {
                    instr.as_near_branch();
                    a.add_instruction(instr).map_err(enc)?;
                } else {
                    let stub = a.create_label();
                    jcc_to(&mut a, instr.condition_code(), stub)?;
                    stubs.push((stub, target));
                }
            }
            InsnClass::Loop { target } => {
                low(target)?;
                let stub = a.create_label();
                loop_to(&mut a, instr.code(), stub)?;
                stubs.push((stub, target));
            }
            InsnClass::Jmp { target } => {
                low(target)?;
                jump_to(&mut a, pad_addr, target).map_err(enc)?;
            }
        }
    }
    let mut back = None;
    if !window.ends_with_exit() {
        let mut l = a.create_label();
        a.set_label(&mut l).map_err(enc)?;
        jump_to(&mut a, pad_addr, window.end()).map_err(enc)?;
        back = Some(l);
    }
    for (stub, target) in &mut stubs {
        a.set_label(stub).map_err(enc)?;
        jump_to(&mut a, pad_addr, *target).map_err(enc)?;
    }

    let result = a.assemble_options(pad_addr, BlockEncoderOptions::RETURN_NEW_INSTRUCTION_OFFSETS).map_err(enc)?;
    let bytes = result.inner.code_buffer.clone();
    if bytes.len() > MAX_PAD_LEN {
        return Err(Refusal::Encoding(format!("the pad needs {} bytes, more than {MAX_PAD_LEN}", bytes.len())));
    }
    let mut points = Vec::new();
    for (l, orig) in &labels {
        points.push((result.label_ip(l).map_err(enc)?, *orig));
    }
    let body = points.first().map_or(pad_addr, |p| p.0);
    if let Some(l) = &back {
        points.push((result.label_ip(l).map_err(enc)?, window.end()));
    }
    for (l, target) in &stubs {
        points.push((result.label_ip(l).map_err(enc)?, *target));
    }
    let mut original = [0u8; PATCH_LEN];
    original.copy_from_slice(&window.original[..PATCH_LEN]);
    Ok(Pad {
        entry: pad_addr,
        len: bytes.len(),
        bytes,
        site: window.site,
        window_len: window.len,
        patch,
        original,
        body,
        points,
    })
}

/// A jump from the pad to `target`: `jmp rel32` where every byte of the pad reaches it, else
/// `jmp qword ptr [rip+0]` followed by the 8-byte target.
fn jump_to(a: &mut CodeAssembler, pad_addr: u64, target: u64) -> Result<(), IcedError> {
    if reachable(pad_addr, MAX_PAD_LEN as u64, target) {
        a.add_instruction(Instruction::with_branch(Code::Jmp_rel32_64, target)?)
    } else {
        let mut literal = a.create_label();
        a.jmp(qword_ptr(literal))?;
        a.set_label(&mut literal)?;
        a.dq(&[target])
    }
}

/// `jcc label` with condition `cc`.
fn jcc_to(a: &mut CodeAssembler, cc: ConditionCode, l: CodeLabel) -> Result<(), Refusal> {
    let r = match cc {
        ConditionCode::o => a.jo(l),
        ConditionCode::no => a.jno(l),
        ConditionCode::b => a.jb(l),
        ConditionCode::ae => a.jae(l),
        ConditionCode::e => a.je(l),
        ConditionCode::ne => a.jne(l),
        ConditionCode::be => a.jbe(l),
        ConditionCode::a => a.ja(l),
        ConditionCode::s => a.js(l),
        ConditionCode::ns => a.jns(l),
        ConditionCode::p => a.jp(l),
        ConditionCode::np => a.jnp(l),
        ConditionCode::l => a.jl(l),
        ConditionCode::ge => a.jge(l),
        ConditionCode::le => a.jle(l),
        ConditionCode::g => a.jg(l),
        ConditionCode::None => return Err(Refusal::Encoding("jcc without a condition".to_string())),
    };
    r.map_err(enc)
}

/// The `loop*`/`jrcxz`/`jecxz` of `code` to `label` (64-bit `rcx` forms, and `jecxz`).
fn loop_to(a: &mut CodeAssembler, code: Code, l: CodeLabel) -> Result<(), Refusal> {
    match code {
        Code::Loop_rel8_64_RCX => a.loop_(l),
        Code::Loope_rel8_64_RCX => a.loope(l),
        Code::Loopne_rel8_64_RCX => a.loopne(l),
        Code::Jrcxz_rel8_64 => a.jrcxz(l),
        Code::Jecxz_rel8_64 => a.jecxz(l),
        other => {
            return Err(Refusal::Encoding(format!("{other:?}: address-size-prefixed loop is not relocated")));
        }
    }
    .map_err(enc)
}
