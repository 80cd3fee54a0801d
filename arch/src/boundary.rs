//! Instruction boundaries: does an address start an instruction of a run of code?
//!
//! A probe's `int3` must replace the first byte of an instruction; one written into the middle
//! of an instruction changes what the CPU decodes there (an immediate, a displacement, a
//! ModRM byte) and corrupts the program. Given the bytes of a function from its first
//! instruction (a symbol's start is an instruction start by construction), this decodes
//! forward, as `objdump` does, and tells whether `target` is one of the instruction starts.
//! Pure: bytes in, an answer out.

use iced_x86::{Decoder, DecoderOptions};

/// Where `target` falls in the decoded run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Boundary {
    /// `target` starts an instruction.
    Start,
    /// `target` lies inside the instruction that starts at `start` (`len` bytes, `mnemonic`).
    Inside {
        /// Address of the instruction that covers `target`.
        start: u64,
        /// Its length.
        len: usize,
        /// Its mnemonic, lower case (`push`, `call`, ...).
        mnemonic: String,
    },
    /// The bytes do not decode up to `target` (an invalid instruction at `at`, or the code
    /// ends before `target`).
    Undecodable {
        /// Where decoding stopped.
        at: u64,
    },
}

/// The instruction at the start of `code` (at address `ip`): its length and whether it is a
/// call (near or far, direct or indirect) — what `nexti` needs to step over a call. `None` if
/// the bytes do not decode.
pub fn first_instruction(code: &[u8], ip: u64) -> Option<(usize, bool)> {
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    let insn = decoder.decode();
    if insn.is_invalid() {
        return None;
    }
    let call = matches!(insn.flow_control(), iced_x86::FlowControl::Call | iced_x86::FlowControl::IndirectCall);
    Some((insn.len(), call))
}

/// Decode `code` (whose first byte is at address `ip` and starts an instruction) up to
/// `target` and say where `target` falls. `target` before `ip` is [`Boundary::Undecodable`].
pub fn locate(code: &[u8], ip: u64, target: u64) -> Boundary {
    if target < ip {
        return Boundary::Undecodable { at: ip };
    }
    let mut decoder = Decoder::with_ip(64, code, ip, DecoderOptions::NONE);
    while decoder.can_decode() {
        let start = decoder.ip();
        if start == target {
            return Boundary::Start;
        }
        let instr = decoder.decode();
        if instr.is_invalid() {
            return Boundary::Undecodable { at: start };
        }
        let next = instr.next_ip();
        if target < next {
            return Boundary::Inside {
                start,
                len: instr.len(),
                mnemonic: format!("{:?}", instr.mnemonic()).to_lowercase(),
            };
        }
    }
    if decoder.ip() == target {
        // The first byte after the run: a boundary of the run, but nothing is known of it.
        return Boundary::Undecodable { at: target };
    }
    Boundary::Undecodable { at: decoder.ip() }
}

#[cfg(test)]
mod tests {
    use super::*;

    // push rbp; mov rbp,rsp; mov dword [rbp-4],7; call rel32; pop rbp; ret
    const CODE: &[u8] =
        &[0x55, 0x48, 0x89, 0xe5, 0xc7, 0x45, 0xfc, 0x07, 0x00, 0x00, 0x00, 0xe8, 0x00, 0x00, 0x00, 0x00, 0x5d, 0xc3];

    #[test]
    fn starts_are_boundaries() {
        for off in [0u64, 1, 4, 11, 16, 17] {
            assert_eq!(locate(CODE, 0x1000, 0x1000 + off), Boundary::Start, "offset {off}");
        }
    }

    #[test]
    fn the_middle_of_an_instruction_names_it() {
        assert_eq!(locate(CODE, 0x1000, 0x1002), Boundary::Inside { start: 0x1001, len: 3, mnemonic: "mov".into() });
        for off in 12..16 {
            assert_eq!(
                locate(CODE, 0x1000, 0x1000 + off),
                Boundary::Inside { start: 0x100b, len: 5, mnemonic: "call".into() },
                "inside the call at {off}"
            );
        }
    }

    #[test]
    fn outside_or_undecodable() {
        assert_eq!(locate(CODE, 0x1000, 0xfff), Boundary::Undecodable { at: 0x1000 });
        assert_eq!(locate(CODE, 0x1000, 0x1000 + CODE.len() as u64 + 4), Boundary::Undecodable { at: 0x1012 });
        // 0x06 (push es) is invalid in 64-bit mode.
        assert_eq!(locate(&[0x90, 0x06, 0x90], 0x10, 0x12), Boundary::Undecodable { at: 0x11 });
    }
}
