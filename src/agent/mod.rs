//! gdb's agent-expression bytecode (GDB manual, appendix "The GDB Agent Expression
//! Mechanism"; opcodes from gdb's `ax.def`), pure: validated once, evaluated on the trap path.
//!
//! gdb sends target-side breakpoint conditions and commands (`Z0,addr,kind;Xlen,hex` and
//! `;cmds:persist,Xlen,hex`, which [`crate::rsp`] parses into bytes) and tracepoint
//! conditions and actions as bytecode. xol evaluates a condition where the thread stopped, so
//! a false one costs no round trip to gdb.
//!
//! - [`Expr::new`] decodes and validates the bytes once, when the point is inserted: every
//!   opcode is known, every immediate is complete, every jump lands on an instruction start,
//!   the code cannot run off its end, `printf` formats parse and match their argument counts,
//!   and floating-point opcodes are refused (as in gdbserver, floats are not supported). What
//!   the trap path runs is the decoded form, never the raw bytes.
//! - [`Expr::eval`] (a condition's value) and [`Expr::run`] (commands and tracepoint actions,
//!   which may leave nothing on the stack) interpret it against a [`Context`]: registers
//!   (gdb's amd64 numbering), memory, trace collection, trace state variables, printf output.
//!   [`should_stop`] applies gdbserver's rule to a breakpoint's conditions: stop if any is
//!   nonzero or fails to evaluate (gdb then evaluates it itself).
//!
//! Semantics are gdbserver's (`gdbserver/ax.cc`): 64-bit unsigned stack entries; big-endian
//! immediates; `ext n` sign-extends from `n` bits and `zero_ext n` keeps `n` bits (both no-ops
//! for `n >= 64`); `refN` reads little-endian, zero-extended; shift counts are taken mod 64 (as
//! the x86 instructions gdbserver compiles to do); `i64::MIN / -1` wraps; division by zero is
//! an error. Limits: a stack of at most [`STACK_LIMIT`] entries (gdbserver's), at most
//! [`Expr::step_limit`] executed instructions (so a backward `goto` cannot loop forever), and
//! stricter than gdbserver where it reads out of bounds: popping an empty stack is an error.
//!
//! Invariants: nothing here does I/O or knows the rest of xol (no libc, nix, std::fs,
//! std::process, std::net, nothing of xol; `scripts/check-layering.sh` checks it), and nothing
//! panics on any input (`robustness` runs random and mutated bytecode; indexing, `unwrap` and
//! `panic!` are denied below).

#![deny(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod eval;
mod expr;
pub mod op;
pub mod printf;

pub use eval::should_stop;
pub use expr::Expr;
pub use op::Opcode;
pub use printf::FormatError;

#[cfg(test)]
mod robustness;
#[cfg(test)]
mod tests;

/// The deepest the stack may get: gdbserver's (its 100-entry array, less the slots its
/// overflow check keeps free). Pushing beyond it is [`Error::StackOverflow`].
pub const STACK_LIMIT: usize = 98;

/// The default bound on executed instructions ([`Expr::with_step_limit`] changes it): more
/// than any loop-free expression a 16 KiB packet can carry executes, so only a loop reaches it.
pub const DEFAULT_STEP_LIMIT: u64 = 65_536;

/// What the machine under evaluation gives the evaluator, and receives from it. Only
/// [`register`](Context::register) and [`read_memory`](Context::read_memory) are required; a
/// condition needs nothing else. The collecting hooks default to doing nothing (a condition
/// evaluated at a breakpoint collects nothing), the variable hooks to
/// [`Fault::Variable`] (no trace state variables defined).
pub trait Context {
    /// Register `regno` in gdb's amd64-linux numbering, the same xol's target description
    /// advertises (rax 0, rbx 1, rcx 2, rdx 3, rsi 4, rdi 5, rbp 6, rsp 7, r8..r15 8..15, rip
    /// 16, eflags 17, cs ss ds es fs gs 18..23, orig_rax 57, fs_base 58, gs_base 59), its
    /// value zero-extended to 64 bits as gdbserver does for registers narrower than 8 bytes.
    /// A register wider than 8 bytes (st0-7, xmm, ymm) has no stack value: return a fault
    /// (gdbserver aborts there).
    fn register(&mut self, regno: u16) -> Result<u64, Fault>;

    /// Fills `buf` with the inferior's memory at `addr` (all of it, or a fault).
    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Fault>;

    /// `trace`, `trace_quick`, `trace16`: record `len` bytes at `addr` in the trace frame.
    fn trace(&mut self, addr: u64, len: u64) -> Result<(), Fault> {
        let _ = (addr, len);
        Ok(())
    }

    /// `tracenz`: record up to `limit` bytes at `addr`, through the first zero byte.
    fn trace_string(&mut self, addr: u64, limit: u64) -> Result<(), Fault> {
        let _ = (addr, limit);
        Ok(())
    }

    /// `getv n`: the value of trace state variable `n`.
    fn get_variable(&mut self, n: u16) -> Result<u64, Fault> {
        Err(Fault::Variable(n))
    }

    /// `setv n`: set trace state variable `n` to `value`.
    fn set_variable(&mut self, n: u16, value: u64) -> Result<(), Fault> {
        let _ = value;
        Err(Fault::Variable(n))
    }

    /// `tracev n`: record trace state variable `n` in the trace frame.
    fn trace_variable(&mut self, n: u16) -> Result<(), Fault> {
        let _ = n;
        Ok(())
    }

    /// `printf`: the formatted `text` (bytes: `%s` copies inferior memory as it is). gdb
    /// passes `function` and `channel` 0 (print it the target's way: gdbserver writes to its
    /// stdout; a stub would send it to gdb as `O` output).
    fn printf(&mut self, function: u64, channel: u64, text: &[u8]) -> Result<(), Fault> {
        let _ = (function, channel, text);
        Ok(())
    }
}

/// Why a [`Context`] could not do what the bytecode asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Fault {
    /// Memory that cannot be read.
    #[error("cannot access {len} bytes of memory at {addr:#x}")]
    Memory {
        /// First address asked for.
        addr: u64,
        /// Bytes asked for.
        len: u64,
    },
    /// A register the target does not have.
    #[error("no register {0}")]
    Register(u16),
    /// A trace state variable that is not defined.
    #[error("no trace state variable {0}")]
    Variable(u16),
    /// Anything else the context refuses, said in its own words.
    #[error("{0}")]
    Other(String),
}

/// What is wrong with an expression (from [`Expr::new`]) or with one evaluation of it (from
/// [`Expr::eval`] and [`Expr::run`]). `pc` is the byte offset of the instruction concerned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// No bytes at all.
    #[error("empty agent expression")]
    Empty,
    /// A byte that is no opcode.
    #[error("unknown opcode {byte:#04x} at {pc}")]
    UnknownOpcode {
        /// Offset of the byte.
        pc: usize,
        /// The byte.
        byte: u8,
    },
    /// A floating-point opcode.
    #[error("{op} at {pc}: floating point is not supported")]
    Float {
        /// Offset of the opcode.
        pc: usize,
        /// The opcode.
        op: Opcode,
    },
    /// An immediate operand cut short by the end of the expression.
    #[error("{op} at {pc}: its operand runs past the end of the expression")]
    Truncated {
        /// Offset of the opcode.
        pc: usize,
        /// The opcode.
        op: Opcode,
    },
    /// A jump to an offset that does not start an instruction.
    #[error("{op} at {pc}: jump to {target}, which does not start an instruction")]
    BadJump {
        /// Offset of the jump.
        pc: usize,
        /// The jump.
        op: Opcode,
        /// Where it would go.
        target: usize,
    },
    /// The last instruction can continue past the end of the code (it is no `end` or `goto`).
    #[error("{op} at {pc} is the last instruction and can run off the end of the expression")]
    NoEnd {
        /// Offset of the last instruction.
        pc: usize,
        /// Its opcode.
        op: Opcode,
    },
    /// A `printf` whose format is refused.
    #[error("printf at {pc}: {error}")]
    Format {
        /// Offset of the `printf`.
        pc: usize,
        /// What is wrong with the format.
        error: FormatError,
    },
    /// An instruction that needs more values than the stack holds.
    #[error("{op} at {pc}: stack underflow")]
    StackUnderflow {
        /// Offset of the instruction.
        pc: usize,
        /// Its opcode.
        op: Opcode,
    },
    /// A push beyond [`STACK_LIMIT`].
    #[error("{op} at {pc}: stack overflow (more than {STACK_LIMIT} entries)")]
    StackOverflow {
        /// Offset of the instruction.
        pc: usize,
        /// Its opcode.
        op: Opcode,
    },
    /// A division or remainder by zero.
    #[error("{op} at {pc}: division by zero")]
    DivideByZero {
        /// Offset of the instruction.
        pc: usize,
        /// Its opcode.
        op: Opcode,
    },
    /// The context could not read a register or memory, or refused a hook.
    #[error("{op} at {pc}: {fault}")]
    Fault {
        /// Offset of the instruction.
        pc: usize,
        /// Its opcode.
        op: Opcode,
        /// What the context said.
        #[source]
        fault: Fault,
    },
    /// [`Expr::eval`] reached `end` with nothing on the stack to be the value.
    #[error("end at {pc}: the stack is empty, the expression has no value")]
    NoValue {
        /// Offset of the `end`.
        pc: usize,
    },
    /// More than the step limit of instructions executed (a loop, most likely).
    #[error("{op} at {pc}: more than {limit} instructions executed")]
    StepLimit {
        /// Offset of the instruction that would have exceeded the limit.
        pc: usize,
        /// Its opcode.
        op: Opcode,
        /// The limit.
        limit: u64,
    },
}

impl Error {
    /// The byte offset of the instruction concerned, if there is one.
    pub fn pc(&self) -> Option<usize> {
        use Error::*;
        match self {
            Empty => None,
            UnknownOpcode { pc, .. }
            | Float { pc, .. }
            | Truncated { pc, .. }
            | BadJump { pc, .. }
            | NoEnd { pc, .. }
            | Format { pc, .. }
            | StackUnderflow { pc, .. }
            | StackOverflow { pc, .. }
            | DivideByZero { pc, .. }
            | Fault { pc, .. }
            | NoValue { pc }
            | StepLimit { pc, .. } => Some(*pc),
        }
    }
}
