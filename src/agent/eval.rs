//! The interpreter: runs a validated [`Expr`] against a [`Context`] on a fixed-size stack (no
//! allocation unless a `printf` runs), counting executed instructions against the step limit.

use super::expr::{Expr, Insn, Op};
use super::op::Opcode;
use super::{Context, Error, Fault, STACK_LIMIT};

/// The value stack: `depth` live entries at the bottom of `slots`.
struct Stack {
    slots: [u64; STACK_LIMIT],
    depth: usize,
}

impl Stack {
    fn pop(&mut self) -> Option<u64> {
        self.depth = self.depth.checked_sub(1)?;
        self.slots.get(self.depth).copied()
    }

    /// False if the stack is full.
    fn push(&mut self, v: u64) -> bool {
        match self.slots.get_mut(self.depth) {
            Some(slot) => {
                *slot = v;
                self.depth += 1;
                true
            }
            None => false,
        }
    }

    /// The entry `n` below the top (0 is the top).
    fn peek(&self, n: usize) -> Option<u64> {
        let i = self.depth.checked_sub(1)?.checked_sub(n)?;
        self.slots.get(i).copied()
    }

    fn top_mut(&mut self) -> Option<&mut u64> {
        let i = self.depth.checked_sub(1)?;
        self.slots.get_mut(i)
    }
}

/// The value of a binary opcode on `a` (next-to-top) and `b` (top); `None` for a zero divisor.
fn binary(op: Opcode, a: u64, b: u64) -> Option<u64> {
    use Opcode::*;
    let (sa, sb) = (a as i64, b as i64);
    Some(match op {
        Add => a.wrapping_add(b),
        Sub => a.wrapping_sub(b),
        Mul => a.wrapping_mul(b),
        // `i64::MIN / -1` (the one overflowing signed division) wraps, as two's complement.
        DivSigned => sa.wrapping_div(nonzero(sb)?) as u64,
        DivUnsigned => a.checked_div(b)?,
        RemSigned => sa.wrapping_rem(nonzero(sb)?) as u64,
        RemUnsigned => a.checked_rem(b)?,
        // Counts are taken mod 64, as the x86 shift instructions do.
        Lsh => a.wrapping_shl(b as u32),
        RshSigned => sa.wrapping_shr(b as u32) as u64,
        RshUnsigned => a.wrapping_shr(b as u32),
        BitAnd => a & b,
        BitOr => a | b,
        BitXor => a ^ b,
        Equal => u64::from(a == b),
        LessSigned => u64::from(sa < sb),
        LessUnsigned => u64::from(a < b),
        _ => return None,
    })
}

/// `Some(d)` unless `d` is zero.
fn nonzero(d: i64) -> Option<i64> {
    (d != 0).then_some(d)
}

/// `ext n`: sign-extend from the low `n` bits (`n >= 64`: unchanged; `n == 0`: no bits, 0).
fn sign_extend(v: u64, n: u8) -> u64 {
    match n {
        0 => 0,
        1..=63 => {
            let shift = 64 - u32::from(n);
            (((v << shift) as i64) >> shift) as u64
        }
        _ => v,
    }
}

/// `zero_ext n`: keep the low `n` bits (`n >= 64`: unchanged).
fn zero_extend(v: u64, n: u8) -> u64 {
    if n >= 64 {
        v
    } else {
        v & ((1u64 << n) - 1)
    }
}

impl Expr {
    /// Evaluates the expression for its value, the top of the stack at `end`: a condition
    /// holds when it is nonzero. An empty stack at `end` is [`Error::NoValue`].
    pub fn eval(&self, cx: &mut dyn Context) -> Result<u64, Error> {
        let (value, end_pc) = self.execute(cx)?;
        value.ok_or(Error::NoValue { pc: end_pc })
    }

    /// Runs the expression for its effects (breakpoint commands, tracepoint actions): the top
    /// of the stack at `end` if there is one, `None` if the stack is empty then.
    pub fn run(&self, cx: &mut dyn Context) -> Result<Option<u64>, Error> {
        Ok(self.execute(cx)?.0)
    }

    /// The interpreter loop: the value at `end` (if any) and `end`'s offset.
    fn execute(&self, cx: &mut dyn Context) -> Result<(Option<u64>, usize), Error> {
        let mut stack = Stack { slots: [0; STACK_LIMIT], depth: 0 };
        let mut ip = 0usize;
        let mut steps = 0u64;
        loop {
            // Validation made every jump target and fall-through an instruction; an index past
            // the end cannot happen, but is an error rather than a panic.
            let Some(Insn { pc, opcode, op }) = self.insns.get(ip) else {
                let last = self.insns.last();
                return Err(Error::NoEnd { pc: last.map_or(0, |i| i.pc), op: last.map_or(Opcode::End, |i| i.opcode) });
            };
            let (pc, opcode) = (*pc, *opcode);
            steps += 1;
            if steps > self.step_limit {
                return Err(Error::StepLimit { pc, op: opcode, limit: self.step_limit });
            }
            ip += 1;
            let under = || Error::StackUnderflow { pc, op: opcode };
            let fault = |fault: Fault| Error::Fault { pc, op: opcode, fault };
            macro_rules! pop {
                () => {
                    stack.pop().ok_or_else(under)?
                };
            }
            macro_rules! push {
                ($v:expr) => {{
                    let v = $v;
                    if !stack.push(v) {
                        return Err(Error::StackOverflow { pc, op: opcode });
                    }
                }};
            }
            macro_rules! top {
                () => {
                    stack.top_mut().ok_or_else(under)?
                };
            }
            match op {
                Op::Binary(which) => {
                    let b = pop!();
                    let a = pop!();
                    let v = binary(*which, a, b).ok_or(Error::DivideByZero { pc, op: opcode })?;
                    push!(v);
                }
                Op::LogNot => {
                    let t = top!();
                    *t = u64::from(*t == 0);
                }
                Op::BitNot => {
                    let t = top!();
                    *t = !*t;
                }
                Op::Ext(n) => {
                    let t = top!();
                    *t = sign_extend(*t, *n);
                }
                Op::ZeroExt(n) => {
                    let t = top!();
                    *t = zero_extend(*t, *n);
                }
                Op::Ref(width) => {
                    let addr = pop!();
                    let mut buf = [0u8; 8];
                    let bytes = buf.get_mut(..*width).unwrap_or_default();
                    cx.read_memory(addr, bytes).map_err(fault)?;
                    push!(u64::from_le_bytes(buf));
                }
                Op::IfGoto(target) => {
                    if pop!() != 0 {
                        ip = *target;
                    }
                }
                Op::Goto(target) => ip = *target,
                Op::Const(v) => push!(*v),
                Op::Reg(n) => push!(cx.register(*n).map_err(fault)?),
                Op::End => return Ok((stack.peek(0), pc)),
                Op::Dup => push!(stack.peek(0).ok_or_else(under)?),
                Op::Pop => {
                    pop!();
                }
                Op::Swap => {
                    let b = pop!();
                    let a = pop!();
                    push!(b);
                    push!(a);
                }
                Op::Rot => {
                    // a b c => c a b
                    let c = pop!();
                    let b = pop!();
                    let a = pop!();
                    push!(c);
                    push!(a);
                    push!(b);
                }
                Op::Pick(n) => push!(stack.peek(usize::from(*n)).ok_or_else(under)?),
                Op::Trace => {
                    let len = pop!();
                    let addr = pop!();
                    cx.trace(addr, len).map_err(fault)?;
                }
                Op::TraceQuick(len) => {
                    let addr = stack.peek(0).ok_or_else(under)?;
                    cx.trace(addr, u64::from(*len)).map_err(fault)?;
                }
                Op::Tracenz => {
                    let limit = pop!();
                    let addr = pop!();
                    cx.trace_string(addr, limit).map_err(fault)?;
                }
                Op::Getv(n) => push!(cx.get_variable(*n).map_err(fault)?),
                Op::Setv(n) => {
                    let v = stack.peek(0).ok_or_else(under)?;
                    cx.set_variable(*n, v).map_err(fault)?;
                }
                Op::Tracev(n) => cx.trace_variable(*n).map_err(fault)?,
                Op::Printf { nargs, format, .. } => {
                    let function = pop!();
                    let channel = pop!();
                    let mut args = Vec::with_capacity(usize::from(*nargs));
                    for _ in 0..*nargs {
                        args.push(pop!());
                    }
                    let mut text = Vec::new();
                    format.render(&args, cx, &mut text).map_err(fault)?;
                    cx.printf(function, channel, &text).map_err(fault)?;
                }
            }
        }
    }
}

/// Whether a breakpoint with `conditions` should stop (be reported to gdb), by gdbserver's
/// rule: with no conditions, yes; otherwise yes if any evaluates nonzero, and yes if one fails
/// to evaluate (gdb then evaluates the condition itself). Conditions are tried in order and
/// the first nonzero value or error decides.
pub fn should_stop(conditions: &[Expr], cx: &mut dyn Context) -> bool {
    conditions.is_empty() || conditions.iter().any(|c| c.eval(cx) != Ok(0))
}
