//! [`Expr`]: an agent expression decoded and validated once, so that evaluation never meets a
//! malformed instruction; and its disassembly in gdb's `maint agent` format.

use std::fmt;

use super::op::Opcode;
use super::printf::{Format, FormatError};
use super::{Error, DEFAULT_STEP_LIMIT};

/// A validated agent expression, ready to evaluate any number of times
/// ([`Expr::eval`], [`Expr::run`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expr {
    pub(super) insns: Vec<Insn>,
    pub(super) step_limit: u64,
    len: usize,
}

/// One decoded instruction: its byte offset, its opcode and its operands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Insn {
    pub pc: usize,
    pub opcode: Opcode,
    pub op: Op,
}

/// An instruction's behaviour with its immediates decoded; jump targets are indices into
/// [`Expr::insns`], not byte offsets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Op {
    /// Two operands in, one out (add .. less_unsigned).
    Binary(Opcode),
    LogNot,
    BitNot,
    Ext(u8),
    ZeroExt(u8),
    /// `refN`: the width in bytes.
    Ref(usize),
    IfGoto(usize),
    Goto(usize),
    Const(u64),
    Reg(u16),
    End,
    Dup,
    Pop,
    Swap,
    Rot,
    Pick(u8),
    Trace,
    /// `trace_quick` and `trace16`.
    TraceQuick(u16),
    Tracenz,
    Getv(u16),
    Setv(u16),
    Tracev(u16),
    Printf {
        nargs: u8,
        format: Box<Format>,
        raw: Box<[u8]>,
    },
}

/// The big-endian number in `bytes` (at most 8 of them).
fn be(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0u64, |acc, &b| (acc << 8) | u64::from(b))
}

fn be16(bytes: &[u8]) -> u16 {
    u16::try_from(be(bytes) & 0xffff).unwrap_or(0)
}

impl Expr {
    /// Decodes and validates `code`: see the module doc of [`crate::agent`] for what is
    /// checked. The step limit is [`DEFAULT_STEP_LIMIT`].
    pub fn new(code: &[u8]) -> Result<Expr, Error> {
        if code.is_empty() {
            return Err(Error::Empty);
        }
        // Jumps hold byte offsets until every instruction's index is known.
        let mut insns: Vec<Insn> = Vec::new();
        let mut index_at = vec![usize::MAX; code.len()];
        let mut pc = 0;
        while let Some(&byte) = code.get(pc) {
            let opcode = Opcode::from_byte(byte).ok_or(Error::UnknownOpcode { pc, byte })?;
            if opcode.is_float() {
                return Err(Error::Float { pc, op: opcode });
            }
            let truncated = Error::Truncated { pc, op: opcode };
            let start = pc + 1;
            let imm = code.get(start..start + opcode.immediate_len()).ok_or(truncated.clone())?;
            let mut next = start + imm.len();
            let byte0 = imm.first().copied().unwrap_or(0);
            use Opcode::*;
            let op = match opcode {
                Add | Sub | Mul | DivSigned | DivUnsigned | RemSigned | RemUnsigned | Lsh | RshSigned | RshUnsigned
                | BitAnd | BitOr | BitXor | Equal | LessSigned | LessUnsigned => Op::Binary(opcode),
                LogNot => Op::LogNot,
                BitNot => Op::BitNot,
                Ext => Op::Ext(byte0),
                ZeroExt => Op::ZeroExt(byte0),
                Ref8 => Op::Ref(1),
                Ref16 => Op::Ref(2),
                Ref32 => Op::Ref(4),
                Ref64 => Op::Ref(8),
                IfGoto => Op::IfGoto(usize::from(be16(imm))),
                Goto => Op::Goto(usize::from(be16(imm))),
                Const8 | Const16 | Const32 | Const64 => Op::Const(be(imm)),
                Reg => Op::Reg(be16(imm)),
                End => Op::End,
                Dup => Op::Dup,
                Pop => Op::Pop,
                Swap => Op::Swap,
                Rot => Op::Rot,
                Pick => Op::Pick(byte0),
                Trace => Op::Trace,
                TraceQuick => Op::TraceQuick(u16::from(byte0)),
                Trace16 => Op::TraceQuick(be16(imm)),
                Tracenz => Op::Tracenz,
                Getv => Op::Getv(be16(imm)),
                Setv => Op::Setv(be16(imm)),
                Tracev => Op::Tracev(be16(imm)),
                Printf => {
                    let len = usize::from(be16(imm.get(1..).unwrap_or_default()));
                    let raw = code.get(next..next + len).ok_or(truncated)?;
                    next += len;
                    let format = Format::parse(raw).map_err(|error| Error::Format { pc, error })?;
                    let (want, have) = (format.conversions(), usize::from(byte0));
                    if want != have {
                        return Err(Error::Format { pc, error: FormatError::ArgCount { want, have } });
                    }
                    Op::Printf { nargs: byte0, format: Box::new(format), raw: raw.into() }
                }
                Float | RefFloat | RefDouble | RefLongDouble | LToD | DToL => {
                    return Err(Error::Float { pc, op: opcode });
                }
            };
            if let Some(slot) = index_at.get_mut(pc) {
                *slot = insns.len();
            }
            insns.push(Insn { pc, opcode, op });
            pc = next;
        }
        for insn in &mut insns {
            if let Op::IfGoto(target) | Op::Goto(target) = &mut insn.op {
                let index = index_at.get(*target).copied().unwrap_or(usize::MAX);
                if index == usize::MAX {
                    return Err(Error::BadJump { pc: insn.pc, op: insn.opcode, target: *target });
                }
                *target = index;
            }
        }
        match insns.last() {
            Some(Insn { op: Op::End | Op::Goto(_), .. }) => {}
            Some(last) => return Err(Error::NoEnd { pc: last.pc, op: last.opcode }),
            None => return Err(Error::Empty),
        }
        Ok(Expr { insns, step_limit: DEFAULT_STEP_LIMIT, len: code.len() })
    }

    /// The same expression with at most `steps` instructions executed per evaluation.
    pub fn with_step_limit(mut self, steps: u64) -> Expr {
        self.step_limit = steps;
        self
    }

    /// The bound on executed instructions per evaluation.
    pub fn step_limit(&self) -> u64 {
        self.step_limit
    }

    /// The length of the bytecode, in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: an empty expression is refused by [`Expr::new`].
    pub fn is_empty(&self) -> bool {
        self.insns.is_empty()
    }

    /// The number of instructions.
    pub fn instructions(&self) -> usize {
        self.insns.len()
    }
}

/// The disassembly, one instruction a line, as gdb's `maint agent` prints it (`%3d  name
/// operand`; jump operands are byte offsets; printf shows its format and argument count).
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for insn in &self.insns {
            write!(f, "{:3}  {}", insn.pc, insn.opcode)?;
            let target = |i: usize| self.insns.get(i).map_or(0, |t| t.pc);
            match &insn.op {
                Op::Ext(n) | Op::ZeroExt(n) | Op::Pick(n) => write!(f, " {n}")?,
                Op::IfGoto(i) | Op::Goto(i) => write!(f, " {}", target(*i))?,
                Op::Const(v) => write!(f, " {v}")?,
                Op::Reg(n) | Op::Getv(n) | Op::Setv(n) | Op::Tracev(n) | Op::TraceQuick(n) => write!(f, " {n}")?,
                Op::Printf { nargs, raw, .. } => {
                    let text = raw.split(|&b| b == 0).next().unwrap_or_default();
                    write!(f, " \"{}\", {nargs} args", String::from_utf8_lossy(text))?;
                }
                _ => {}
            }
            writeln!(f)?;
        }
        Ok(())
    }
}
