//! The agent-expression opcode table: every opcode gdb's `ax.def` defines, its number, its
//! name as gdb prints it (`maint agent`), and the size of its immediate operand.
//!
//! The numbers are fixed by the protocol (gdb and every agent rely on them); 0x00 and
//! `invalid2` (0x31) are holes in the table and decode as unknown opcodes.

use std::fmt;

/// One opcode of gdb's agent-expression bytecode (`gdbsupport/ax.def`), with its byte value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum Opcode {
    /// Prefix for floating-point bytecodes; never implemented by gdb or gdbserver.
    Float = 0x01,
    /// `a b => a+b`.
    Add = 0x02,
    /// `a b => a-b`.
    Sub = 0x03,
    /// `a b => a*b`.
    Mul = 0x04,
    /// `a b => a/b`, signed; a zero divisor is an error.
    DivSigned = 0x05,
    /// `a b => a/b`, unsigned; a zero divisor is an error.
    DivUnsigned = 0x06,
    /// `a b => a%b`, signed; a zero divisor is an error.
    RemSigned = 0x07,
    /// `a b => a%b`, unsigned; a zero divisor is an error.
    RemUnsigned = 0x08,
    /// `a b => a<<b`.
    Lsh = 0x09,
    /// `a b => a>>b`, arithmetic.
    RshSigned = 0x0a,
    /// `a b => a>>b`, logical.
    RshUnsigned = 0x0b,
    /// `addr size =>`: record `size` bytes at `addr`.
    Trace = 0x0c,
    /// `trace_quick n`, `addr => addr`: record `n` (one byte) bytes at `addr`.
    TraceQuick = 0x0d,
    /// `a => !a`.
    LogNot = 0x0e,
    /// `a b => a&b`.
    BitAnd = 0x0f,
    /// `a b => a|b`.
    BitOr = 0x10,
    /// `a b => a^b`.
    BitXor = 0x11,
    /// `a => ~a`.
    BitNot = 0x12,
    /// `a b => a==b`.
    Equal = 0x13,
    /// `a b => a<b`, signed.
    LessSigned = 0x14,
    /// `a b => a<b`, unsigned.
    LessUnsigned = 0x15,
    /// `ext n`, `a => a` sign-extended from `n` bits.
    Ext = 0x16,
    /// `addr => a`: the byte at `addr`.
    Ref8 = 0x17,
    /// `addr => a`: the 16-bit value at `addr`, target (little-endian) order.
    Ref16 = 0x18,
    /// `addr => a`: the 32-bit value at `addr`.
    Ref32 = 0x19,
    /// `addr => a`: the 64-bit value at `addr`.
    Ref64 = 0x1a,
    /// Floating point: not supported.
    RefFloat = 0x1b,
    /// Floating point: not supported.
    RefDouble = 0x1c,
    /// Floating point: not supported.
    RefLongDouble = 0x1d,
    /// Floating point: not supported.
    LToD = 0x1e,
    /// Floating point: not supported.
    DToL = 0x1f,
    /// `if_goto offset`, `a =>`: jump to `offset` (16-bit, from the start) if `a` is nonzero.
    IfGoto = 0x20,
    /// `goto offset`: jump to `offset` (16-bit, from the start of the expression).
    Goto = 0x21,
    /// `const8 n`, `=> n`.
    Const8 = 0x22,
    /// `const16 n`, `=> n` (big-endian immediate, not sign-extended).
    Const16 = 0x23,
    /// `const32 n`, `=> n`.
    Const32 = 0x24,
    /// `const64 n`, `=> n`.
    Const64 = 0x25,
    /// `reg n`, `=> a`: register `n` (16-bit, gdb's numbering), zero-extended.
    Reg = 0x26,
    /// Stop; the result is the top of the stack.
    End = 0x27,
    /// `a => a a`.
    Dup = 0x28,
    /// `a =>`.
    Pop = 0x29,
    /// `zero_ext n`, `a => a` with all but the low `n` bits cleared.
    ZeroExt = 0x2a,
    /// `a b => b a`.
    Swap = 0x2b,
    /// `getv n`, `=> v`: trace state variable `n` (16-bit).
    Getv = 0x2c,
    /// `setv n`, `v => v`: set trace state variable `n` to the top, leaving it there.
    Setv = 0x2d,
    /// `tracev n`: record trace state variable `n`.
    Tracev = 0x2e,
    /// `addr size =>`: record up to `size` bytes at `addr`, stopping after a zero byte.
    Tracenz = 0x2f,
    /// `trace16 n`, `addr => addr`: `trace_quick` with a 16-bit size.
    Trace16 = 0x30,
    /// `pick n`, `a_n .. a_0 => a_n .. a_0 a_n`: copy the `n`-th item below the top.
    Pick = 0x32,
    /// `a b c => c a b`: rotate the top three items.
    Rot = 0x33,
    /// `printf nargs len format`: pop a function, a channel and `nargs` values; print them.
    Printf = 0x34,
}

/// Every opcode, in numeric order.
pub const ALL: [Opcode; 51] = {
    use Opcode::*;
    [
        Float,
        Add,
        Sub,
        Mul,
        DivSigned,
        DivUnsigned,
        RemSigned,
        RemUnsigned,
        Lsh,
        RshSigned,
        RshUnsigned,
        Trace,
        TraceQuick,
        LogNot,
        BitAnd,
        BitOr,
        BitXor,
        BitNot,
        Equal,
        LessSigned,
        LessUnsigned,
        Ext,
        Ref8,
        Ref16,
        Ref32,
        Ref64,
        RefFloat,
        RefDouble,
        RefLongDouble,
        LToD,
        DToL,
        IfGoto,
        Goto,
        Const8,
        Const16,
        Const32,
        Const64,
        Reg,
        End,
        Dup,
        Pop,
        ZeroExt,
        Swap,
        Getv,
        Setv,
        Tracev,
        Tracenz,
        Trace16,
        Pick,
        Rot,
        Printf,
    ]
};

impl Opcode {
    /// The opcode with byte value `byte`, or `None` for a hole in the table (0x00, 0x31,
    /// 0x35 and up).
    pub fn from_byte(byte: u8) -> Option<Opcode> {
        ALL.iter().copied().find(|op| *op as u8 == byte)
    }

    /// The byte value.
    pub fn byte(self) -> u8 {
        self as u8
    }

    /// gdb's name for the opcode, as `maint agent` prints it.
    pub fn name(self) -> &'static str {
        use Opcode::*;
        match self {
            Float => "float",
            Add => "add",
            Sub => "sub",
            Mul => "mul",
            DivSigned => "div_signed",
            DivUnsigned => "div_unsigned",
            RemSigned => "rem_signed",
            RemUnsigned => "rem_unsigned",
            Lsh => "lsh",
            RshSigned => "rsh_signed",
            RshUnsigned => "rsh_unsigned",
            Trace => "trace",
            TraceQuick => "trace_quick",
            LogNot => "log_not",
            BitAnd => "bit_and",
            BitOr => "bit_or",
            BitXor => "bit_xor",
            BitNot => "bit_not",
            Equal => "equal",
            LessSigned => "less_signed",
            LessUnsigned => "less_unsigned",
            Ext => "ext",
            Ref8 => "ref8",
            Ref16 => "ref16",
            Ref32 => "ref32",
            Ref64 => "ref64",
            RefFloat => "ref_float",
            RefDouble => "ref_double",
            RefLongDouble => "ref_long_double",
            LToD => "l_to_d",
            DToL => "d_to_l",
            IfGoto => "if_goto",
            Goto => "goto",
            Const8 => "const8",
            Const16 => "const16",
            Const32 => "const32",
            Const64 => "const64",
            Reg => "reg",
            End => "end",
            Dup => "dup",
            Pop => "pop",
            ZeroExt => "zero_ext",
            Swap => "swap",
            Getv => "getv",
            Setv => "setv",
            Tracev => "tracev",
            Tracenz => "tracenz",
            Trace16 => "trace16",
            Pick => "pick",
            Rot => "rot",
            Printf => "printf",
        }
    }

    /// The size in bytes of the fixed immediate operand that follows the opcode (ax.def's
    /// SIZE). `printf` has 3 fixed bytes (the argument count and the format's 16-bit length)
    /// followed by the format itself.
    pub fn immediate_len(self) -> usize {
        use Opcode::*;
        match self {
            TraceQuick | Ext | ZeroExt | Const8 | Pick => 1,
            IfGoto | Goto | Const16 | Reg | Getv | Setv | Tracev | Trace16 => 2,
            Const32 => 4,
            Const64 => 8,
            Printf => 3,
            _ => 0,
        }
    }

    /// Whether the opcode is one of the floating-point ones, which no agent implements.
    pub fn is_float(self) -> bool {
        use Opcode::*;
        matches!(self, Float | RefFloat | RefDouble | RefLongDouble | LToD | DToL)
    }
}

impl fmt::Display for Opcode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
