//! Robustness test (test builds only): a few hundred thousand pseudo-random and mutated byte
//! strings through [`Expr::new`], and every one it accepts through `eval` and `run` against a
//! context that answers with pseudo-random values or faults. It asserts that nothing panics (a
//! panic fails the test), that errors name an offset inside the expression, and that
//! evaluation respects the step limit. The generator is a small deterministic xorshift, so a
//! failure reproduces.

#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::op::{Opcode, ALL};
use super::tests::asm;
use super::{Context, Error, Expr, Fault};

/// xorshift64*: deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    /// A byte, mostly an opcode, sometimes a small number, sometimes anything.
    fn byte(&mut self) -> u8 {
        match self.below(4) {
            0 | 1 => ALL[self.below(ALL.len())].byte(),
            2 => self.below(16) as u8,
            _ => self.next() as u8,
        }
    }

    /// A plausible instruction: an opcode and an immediate of the right size, small jump
    /// targets, and printf with a short format.
    fn insn(&mut self, out: &mut Vec<u8>) {
        let op = ALL[self.below(ALL.len())];
        out.push(op.byte());
        match op {
            Opcode::Printf => {
                const FORMATS: &[&[u8]] = &[b"%d\0", b"%s|%x\0", b"\\n\0", b"%-5lu%c\0", b"%p%%\0", b"%q\0", b"%f\0"];
                let fmt = FORMATS[self.below(FORMATS.len())];
                out.push(self.below(3) as u8);
                out.extend_from_slice(&(fmt.len() as u16).to_be_bytes());
                out.extend_from_slice(fmt);
            }
            Opcode::IfGoto | Opcode::Goto => out.extend_from_slice(&(self.below(40) as u16).to_be_bytes()),
            _ => {
                for _ in 0..op.immediate_len() {
                    let b = if self.below(2) == 0 { self.below(70) as u8 } else { self.next() as u8 };
                    out.push(b);
                }
            }
        }
    }
}

/// A context that answers from the generator: values, or now and then a fault.
struct Chaos(Rng);

impl Chaos {
    fn fault(&mut self) -> bool {
        self.0.below(8) == 0
    }
}

impl Context for Chaos {
    fn register(&mut self, regno: u16) -> Result<u64, Fault> {
        if self.fault() {
            return Err(Fault::Register(regno));
        }
        Ok(self.0.next() >> self.0.below(64))
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        if self.fault() {
            return Err(Fault::Memory { addr, len: buf.len() as u64 });
        }
        for b in buf.iter_mut() {
            // Mostly small bytes and zeros, so %s strings end.
            *b = if self.0.below(3) == 0 { 0 } else { self.0.next() as u8 };
        }
        Ok(())
    }

    fn trace(&mut self, addr: u64, len: u64) -> Result<(), Fault> {
        if self.fault() {
            return Err(Fault::Memory { addr, len });
        }
        Ok(())
    }

    fn get_variable(&mut self, n: u16) -> Result<u64, Fault> {
        if self.fault() {
            return Err(Fault::Variable(n));
        }
        Ok(self.0.next())
    }

    fn set_variable(&mut self, n: u16, _value: u64) -> Result<(), Fault> {
        if self.fault() {
            return Err(Fault::Variable(n));
        }
        Ok(())
    }

    fn printf(&mut self, _function: u64, _channel: u64, text: &[u8]) -> Result<(), Fault> {
        assert!(text.len() < 1 << 16, "printf output of {} bytes", text.len());
        Ok(())
    }
}

/// Validates `code` and, if accepted, evaluates it a few times; returns whether accepted.
fn exercise(code: &[u8], cx: &mut Chaos) -> bool {
    let expr = match Expr::new(code) {
        Ok(e) => e.with_step_limit(500),
        Err(e) => {
            if let Some(pc) = e.pc() {
                assert!(pc < code.len(), "{e} for {code:02x?}");
            }
            let _ = e.to_string();
            return false;
        }
    };
    let _ = expr.to_string();
    for _ in 0..3 {
        for result in [expr.eval(cx).map(Some), expr.run(cx)] {
            match result {
                Ok(_) => {}
                Err(Error::StepLimit { limit, .. }) => assert_eq!(limit, 500),
                Err(e) => {
                    let pc = e.pc().unwrap_or(0);
                    assert!(pc < code.len(), "{e} for {code:02x?}");
                    let _ = e.to_string();
                }
            }
        }
    }
    true
}

#[test]
fn random_bytecode_never_panics() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut cx = Chaos(Rng(0x1234_5678_9abc_def1));
    let mut accepted = 0;
    for _ in 0..60_000 {
        let n = rng.below(24);
        let code: Vec<u8> = (0..n).map(|_| rng.byte()).collect();
        accepted += usize::from(exercise(&code, &mut cx));
    }
    // Structured programs: plausible instructions ending in `end` most of the time.
    for _ in 0..60_000 {
        let mut code = Vec::new();
        for _ in 0..rng.below(12) {
            rng.insn(&mut code);
        }
        if rng.below(5) != 0 {
            code.push(Opcode::End.byte());
        }
        accepted += usize::from(exercise(&code, &mut cx));
    }
    assert!(accepted > 5_000, "only {accepted} accepted: the generator is too wild");
}

#[test]
fn mutated_gdb_bytecode_never_panics() {
    let seeds: Vec<Vec<u8>> = [
        "reg 6; const8 16; add; const8 236; ext 8; add; ref32; ext 32; const8 5; equal; end",
        "reg 6; const8 16; add; const8 224; ext 8; add; ref64; const8 16; add; ref8; ext 8; const8 0; less_signed; if_goto 27; goto 59; reg 6; const8 16; add; const8 224; ext 8; add; ref64; const8 18; add; ref16; const16 1000; swap; less_signed; if_goto 54; goto 59; const8 1; goto 61; const8 0; end",
        "reg 6; const8 16; add; const8 224; ext 8; add; ref64; const8 4; add; ref32; ext 32; reg 6; const8 16; add; const8 232; ext 8; add; ref32; ext 32; const8 0; const8 0; printf \"x=%d f=%s\\n\", 2 args; end",
        "getv 2; const8 1; add; ext 64; setv 2; end",
        "const8 1; const8 2; const8 3; rot; pick 2; swap; trace; tracev 1; trace16 300; dup; tracenz; end",
    ]
    .iter()
    .map(|s| asm(s))
    .collect();
    let mut rng = Rng(0xdead_beef_cafe_f00d);
    let mut cx = Chaos(Rng(42));
    for seed in &seeds {
        assert!(Expr::new(seed).is_ok());
    }
    for _ in 0..120_000 {
        let mut code = seeds[rng.below(seeds.len())].clone();
        for _ in 0..=rng.below(3) {
            let at = rng.below(code.len() + 1);
            match rng.below(5) {
                0 if at < code.len() => code[at] = rng.byte(),
                1 if at < code.len() => code[at] ^= 1 << rng.below(8),
                2 => code.insert(at, rng.byte()),
                3 if at < code.len() => {
                    code.remove(at);
                }
                _ => code.truncate(at),
            }
        }
        exercise(&code, &mut cx);
    }
}
