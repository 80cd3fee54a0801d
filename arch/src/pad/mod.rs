//! Jump pads: trapless probes, the pure half (bytes in, a window plan and pad code out).
//!
//! A jump-planned probe replaces the instruction(s) at its site with a 5-byte `jmp rel32` to a
//! *pad*: code in the inferior's slot area that runs the probe's action, then the replaced
//! instructions relocated to their new address, then jumps back. No trap, no stop, no system call
//! per hit. This module decides whether a site allows it and generates the code; it never touches
//! a process (the inferior side — stopping every thread, writing the pad and the patch, shared
//! counter pages, fork/exec/detach — is `src/inferior`'s, see `docs/jump-pads.md`).
//!
//! * [`plan_jump`] (`window.rs`) decodes the whole function with iced-x86, so instruction
//!   boundaries and every direct branch target are known, and picks the *window*: the whole
//!   instructions starting at the site that cover at least [`PATCH_LEN`] bytes. It refuses, with
//!   a [`Refusal`] a user can read in `monitor probes`, whenever the patch could change what the
//!   program does (a branch or a known reference into the window, an instruction that cannot run
//!   elsewhere, a call, a jump through a table anywhere in the function, ...).
//! * [`build_pad`] (`code.rs`) generates the pad with iced-x86's `CodeAssembler` (no hand-written
//!   bytes): the action between `lea rsp, [rsp-128]` / `pushfq` and `popfq` /
//!   `lea rsp, [rsp+128]`, so neither the red zone nor a flag the program can see changes; the
//!   window's instructions re-encoded for their new address (RIP-relative displacements
//!   recomputed, relative branches retargeted at their original absolute targets); and the jump
//!   back to the first byte after the window. [`site_patch`] encodes the `jmp rel32` that goes
//!   over the site.
//!
//! # Invariants
//!
//! * A window starts at an instruction start, ends at one, and lies inside the function; no
//!   decoded direct branch of the function, no RIP-relative operand of the function and no
//!   caller-supplied address points strictly inside it (`site+1 .. site+len`). The site itself
//!   may be a target: a branch to it goes through the pad, and counts, as an `int3` would.
//! * A pad preserves every general register, every flag and every byte of memory the program can
//!   see, except the action's own counter or record; it never writes below `rsp - 128 - 8` of the
//!   program's `rsp` (the red zone plus the saved flags).
//! * A pad contains no `call`: no return address into a pad is ever on a stack, so removing a pad
//!   needs only that no thread's `rip` is inside it.
//! * Every branch out of a pad is either `rel32` to an address checked to be reachable from every
//!   byte of the pad, or an absolute `jmp qword ptr [rip]` through an 8-byte literal.
//!
//! Pure: no system calls, no process access; iced-x86 only.

mod code;
mod window;

use std::fmt;

pub use code::{build_pad, site_patch, Pad, PadAction, MAX_PAD_LEN, RED_ZONE};
pub use window::{plan_jump, InsnClass, JumpWindow, WindowInsn};

/// Length of the `jmp rel32` written over a site: every window covers at least this many bytes.
pub const PATCH_LEN: usize = 5;

/// Why a site cannot take the jump plan (it keeps the trap plan). `Display` is the sentence
/// `monitor probes` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The site is not inside the function's bytes.
    OutsideFunction {
        /// The site.
        site: u64,
        /// First byte of the function.
        start: u64,
        /// First byte after the function.
        end: u64,
    },
    /// The function's bytes do not decode at `at` (data in code, or a truncated instruction), so
    /// its instruction boundaries and branch targets are unknown.
    Undecodable {
        /// Where decoding failed.
        at: u64,
    },
    /// The site is in the middle of an instruction.
    SplitsInstruction {
        /// The site.
        site: u64,
        /// The instruction that covers it.
        start: u64,
        /// Its length.
        len: usize,
    },
    /// Fewer than [`PATCH_LEN`] bytes of whole instructions are left before the function ends.
    PastFunctionEnd {
        /// The site.
        site: u64,
        /// Bytes of whole instructions from the site to the function's end.
        available: usize,
    },
    /// The window would go on after an unconditional `jmp` or `ret`: the bytes after it are
    /// reached from somewhere the decoder cannot see.
    AfterUnconditional {
        /// The `jmp`/`ret`.
        at: u64,
        /// Its mnemonic.
        mnemonic: String,
    },
    /// A direct branch of the function targets a byte strictly inside the window.
    BranchIntoWindow {
        /// The branch.
        from: u64,
        /// Its target.
        target: u64,
        /// The window (`site .. site+len`).
        window: (u64, u64),
    },
    /// A RIP-relative operand of the function (a `lea` taking a label's address, a load of a
    /// code byte) refers to a byte strictly inside the window.
    ReferenceIntoWindow {
        /// The instruction.
        from: u64,
        /// The address it refers to.
        target: u64,
        /// The window.
        window: (u64, u64),
    },
    /// An address the caller knows of (a relocation, a jump table entry, a landing pad, a
    /// symbol) lies strictly inside the window.
    KnownTargetInWindow {
        /// The address.
        target: u64,
        /// The window.
        window: (u64, u64),
    },
    /// An indirect jump in the function (a `switch` through a jump table, usually) has targets
    /// nobody can list, so any byte of the function may be one.
    IndirectJump {
        /// The jump.
        at: u64,
        /// Its mnemonic.
        mnemonic: String,
    },
    /// A call in the window would push a return address into the pad: the callee could still be
    /// running (on this or another thread) when the pad is removed, and unwinders would see it.
    CallInWindow {
        /// The call.
        at: u64,
    },
    /// An instruction of the window cannot run at another address.
    NotRelocatable {
        /// The instruction.
        at: u64,
        /// Its mnemonic.
        mnemonic: String,
        /// Why.
        reason: String,
    },
    /// An address the pad must reach with a 32-bit displacement is out of ±2 GiB.
    OutOfRange {
        /// What needs the reach (`"site patch"`, `"rip-relative operand"`, ...).
        what: &'static str,
        /// From where.
        from: u64,
        /// To where.
        to: u64,
    },
    /// The counter is not 8-byte aligned: a `lock`ed access that splits a cache line is slow
    /// and, with split-lock detection, kills the program with `SIGBUS`.
    MisalignedCounter {
        /// The counter's address.
        addr: u64,
    },
    /// iced-x86 could not encode the pad (an internal limit; the message is iced's).
    Encoding(String),
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::OutsideFunction { site, start, end } => {
                write!(f, "site {site:#x} is outside its function ({start:#x}..{end:#x})")
            }
            Refusal::Undecodable { at } => {
                write!(f, "the function does not decode at {at:#x}: instruction boundaries unknown")
            }
            Refusal::SplitsInstruction { site, start, len } => {
                write!(f, "site {site:#x} is inside the {len}-byte instruction at {start:#x}")
            }
            Refusal::PastFunctionEnd { site, available } => write!(
                f,
                "only {available} bytes of whole instructions from {site:#x} to the function's end; a jump needs {PATCH_LEN}"
            ),
            Refusal::AfterUnconditional { at, mnemonic } => write!(
                f,
                "the 5-byte window would extend past the {mnemonic} at {at:#x} into code reached from elsewhere"
            ),
            Refusal::BranchIntoWindow { from, target, window } => write!(
                f,
                "the branch at {from:#x} targets {target:#x}, inside the window {:#x}..{:#x}",
                window.0, window.1
            ),
            Refusal::ReferenceIntoWindow { from, target, window } => write!(
                f,
                "the instruction at {from:#x} refers to {target:#x}, inside the window {:#x}..{:#x}",
                window.0, window.1
            ),
            Refusal::KnownTargetInWindow { target, window } => write!(
                f,
                "{target:#x} is a known branch target or reference, inside the window {:#x}..{:#x}",
                window.0, window.1
            ),
            Refusal::IndirectJump { at, mnemonic } => write!(
                f,
                "the function has an indirect jump ({mnemonic} at {at:#x}) whose targets are unknown"
            ),
            Refusal::CallInWindow { at } => write!(
                f,
                "the call at {at:#x} would be in the window: its return address would point into the pad"
            ),
            Refusal::NotRelocatable { at, mnemonic, reason } => {
                write!(f, "{mnemonic} at {at:#x} cannot run in a pad: {reason}")
            }
            Refusal::OutOfRange { what, from, to } => {
                write!(f, "{what}: {to:#x} is not within ±2 GiB of {from:#x}")
            }
            Refusal::MisalignedCounter { addr } => write!(f, "the counter at {addr:#x} is not 8-byte aligned"),
            Refusal::Encoding(e) => write!(f, "the pad cannot be encoded: {e}"),
        }
    }
}

impl std::error::Error for Refusal {}

/// Whether a `rel32` displacement from any instruction in `from .. from + span` reaches `to`.
fn reachable(from: u64, span: u64, to: u64) -> bool {
    let lo = from as i128;
    let hi = lo + span as i128;
    let to = to as i128;
    let fits = |d: i128| d >= i32::MIN as i128 && d <= i32::MAX as i128;
    fits(to - lo) && fits(to - hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Random bytes as "functions": planning and building never panic, and whatever is built
    /// keeps the invariants (a 5-byte patch, the original bytes, points inside the pad).
    #[test]
    fn random_code_never_panics() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let (mut planned, mut built) = (0, 0);
        for round in 0..3000 {
            let len = 8 + (next() % 40) as usize;
            let code: Vec<u8> = (0..len).map(|_| next() as u8).collect();
            let start = 0x40_0000 + (next() % 0x1000) * 16;
            for off in 0..len as u64 {
                let Ok(w) = plan_jump(start + off, &code, start, &[]) else { continue };
                planned += 1;
                assert!(w.len >= PATCH_LEN && w.end() <= w.func_end);
                let pad_addr = if round % 2 == 0 { start + 0x10_0000 } else { start + 0x7fff_0000 };
                let counter_addr = if round % 3 == 0 { 0x7f00_0000_0000 } else { pad_addr + 0x1000 };
                if let Ok(p) = build_pad(&w, pad_addr, &PadAction::Count { counter_addr }) {
                    built += 1;
                    assert_eq!(p.original[..], w.original[..PATCH_LEN]);
                    assert_eq!(p.len, p.bytes.len());
                    assert!(p.len <= MAX_PAD_LEN);
                    assert!(p.points.iter().all(|&(at, _)| p.contains(at)));
                }
            }
        }
        assert!(planned > 100 && built > 100, "planned {planned}, built {built}");
    }

    #[test]
    fn addresses_at_the_top_of_the_space_are_refused_not_overflowed() {
        assert!(site_patch(u64::MAX - 2, 0x1000).is_err());
        assert!(plan_jump(u64::MAX - 1, &[0x90; 8], u64::MAX - 3, &[]).is_err());
    }
}
