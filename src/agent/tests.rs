//! Unit tests of the agent-expression evaluator (test builds only): every opcode, the
//! validation refusals, the limits, printf formatting, and golden vectors captured from gdb 13
//! (its `maint agent` listings and the `Z0`/`QTDP` packets it sent to gdbserver 13).

#![allow(clippy::indexing_slicing, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;

use super::op::{Opcode, ALL};
use super::printf::FormatError;
use super::{Context, Error, Expr, Fault, DEFAULT_STEP_LIMIT, STACK_LIMIT};

/// A context over a register map and memory regions, recording what the bytecode collects.
#[derive(Default)]
pub(super) struct Fake {
    pub regs: HashMap<u16, u64>,
    /// (start, bytes) regions; a read must fall inside one.
    pub mem: Vec<(u64, Vec<u8>)>,
    pub traced: Vec<(u64, u64)>,
    pub traced_strings: Vec<(u64, u64)>,
    pub vars: HashMap<u16, u64>,
    pub traced_vars: Vec<u16>,
    pub printed: Vec<(u64, u64, Vec<u8>)>,
}

impl Fake {
    fn reg(mut self, n: u16, v: u64) -> Fake {
        self.regs.insert(n, v);
        self
    }

    fn mem(mut self, addr: u64, bytes: &[u8]) -> Fake {
        self.mem.push((addr, bytes.to_vec()));
        self
    }

    fn var(mut self, n: u16, v: u64) -> Fake {
        self.vars.insert(n, v);
        self
    }
}

impl Context for Fake {
    fn register(&mut self, regno: u16) -> Result<u64, Fault> {
        self.regs.get(&regno).copied().ok_or(Fault::Register(regno))
    }

    fn read_memory(&mut self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let len = buf.len() as u64;
        for (start, bytes) in &self.mem {
            if addr >= *start && addr + len <= start + bytes.len() as u64 {
                let off = (addr - start) as usize;
                buf.copy_from_slice(&bytes[off..off + buf.len()]);
                return Ok(());
            }
        }
        Err(Fault::Memory { addr, len })
    }

    fn trace(&mut self, addr: u64, len: u64) -> Result<(), Fault> {
        self.traced.push((addr, len));
        Ok(())
    }

    fn trace_string(&mut self, addr: u64, limit: u64) -> Result<(), Fault> {
        self.traced_strings.push((addr, limit));
        Ok(())
    }

    fn get_variable(&mut self, n: u16) -> Result<u64, Fault> {
        self.vars.get(&n).copied().ok_or(Fault::Variable(n))
    }

    fn set_variable(&mut self, n: u16, value: u64) -> Result<(), Fault> {
        match self.vars.get_mut(&n) {
            Some(v) => {
                *v = value;
                Ok(())
            }
            None => Err(Fault::Variable(n)),
        }
    }

    fn trace_variable(&mut self, n: u16) -> Result<(), Fault> {
        self.traced_vars.push(n);
        Ok(())
    }

    fn printf(&mut self, function: u64, channel: u64, text: &[u8]) -> Result<(), Fault> {
        self.printed.push((function, channel, text.to_vec()));
        Ok(())
    }
}

/// A context with only the required methods: every hook keeps its default.
struct Bare;

impl Context for Bare {
    fn register(&mut self, regno: u16) -> Result<u64, Fault> {
        Ok(u64::from(regno) * 0x100)
    }

    fn read_memory(&mut self, addr: u64, _buf: &mut [u8]) -> Result<(), Fault> {
        Err(Fault::Memory { addr, len: 1 })
    }
}

/// Assembles gdb's `maint agent` listing (one instruction a line or `;`-separated; a leading
/// byte offset, as gdb prints it, is ignored): `name [operand]`, operands in decimal, jump
/// operands as byte offsets, `printf "format" N` with the format as gdb shows it.
pub(super) fn asm(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.split(['\n', ';']) {
        let mut words = line.trim();
        if words.is_empty() {
            continue;
        }
        if words.starts_with(|c: char| c.is_ascii_digit()) {
            words = words.trim_start_matches(|c: char| c.is_ascii_digit()).trim_start();
        }
        let (name, arg) = words.split_once(' ').unwrap_or((words, ""));
        let op = ALL.iter().copied().find(|o| o.name() == name).unwrap_or_else(|| panic!("no opcode {name}"));
        out.push(op.byte());
        if op == Opcode::Printf {
            let (fmt, nargs) = arg.rsplit_once(',').expect("printf \"format\", N args");
            let fmt = fmt.trim().trim_matches('"');
            let nargs: u8 = nargs.trim().trim_end_matches(" args").trim().parse().expect("nargs");
            out.push(nargs);
            out.extend_from_slice(&u16::try_from(fmt.len() + 1).unwrap().to_be_bytes());
            out.extend_from_slice(fmt.as_bytes());
            out.push(0);
            continue;
        }
        let n = op.immediate_len();
        if n > 0 {
            let v: u64 = arg.trim().parse().unwrap_or_else(|_| panic!("operand of {name}: {arg:?}"));
            out.extend_from_slice(&v.to_be_bytes()[8 - n..]);
        }
    }
    out
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
}

/// The value of `text` (assembled) in `cx`.
fn eval_in(text: &str, cx: &mut Fake) -> Result<u64, Error> {
    Expr::new(&asm(text))?.eval(cx)
}

fn eval(text: &str) -> Result<u64, Error> {
    eval_in(text, &mut Fake::default())
}

fn value(text: &str) -> u64 {
    eval(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// `a OP b` with 64-bit constants.
fn bin(a: u64, op: &str, b: u64) -> Result<u64, Error> {
    eval(&format!("const64 {a}; const64 {b}; {op}; end"))
}

fn neg(v: i64) -> u64 {
    v as u64
}

// ---- the opcode table ----

#[test]
fn opcode_table_matches_ax_def() {
    // (name, number, immediate size) for every DEFOP of gdbsupport/ax.def.
    let table: &[(&str, u8, usize)] = &[
        ("float", 0x01, 0),
        ("add", 0x02, 0),
        ("sub", 0x03, 0),
        ("mul", 0x04, 0),
        ("div_signed", 0x05, 0),
        ("div_unsigned", 0x06, 0),
        ("rem_signed", 0x07, 0),
        ("rem_unsigned", 0x08, 0),
        ("lsh", 0x09, 0),
        ("rsh_signed", 0x0a, 0),
        ("rsh_unsigned", 0x0b, 0),
        ("trace", 0x0c, 0),
        ("trace_quick", 0x0d, 1),
        ("log_not", 0x0e, 0),
        ("bit_and", 0x0f, 0),
        ("bit_or", 0x10, 0),
        ("bit_xor", 0x11, 0),
        ("bit_not", 0x12, 0),
        ("equal", 0x13, 0),
        ("less_signed", 0x14, 0),
        ("less_unsigned", 0x15, 0),
        ("ext", 0x16, 1),
        ("ref8", 0x17, 0),
        ("ref16", 0x18, 0),
        ("ref32", 0x19, 0),
        ("ref64", 0x1a, 0),
        ("ref_float", 0x1b, 0),
        ("ref_double", 0x1c, 0),
        ("ref_long_double", 0x1d, 0),
        ("l_to_d", 0x1e, 0),
        ("d_to_l", 0x1f, 0),
        ("if_goto", 0x20, 2),
        ("goto", 0x21, 2),
        ("const8", 0x22, 1),
        ("const16", 0x23, 2),
        ("const32", 0x24, 4),
        ("const64", 0x25, 8),
        ("reg", 0x26, 2),
        ("end", 0x27, 0),
        ("dup", 0x28, 0),
        ("pop", 0x29, 0),
        ("zero_ext", 0x2a, 1),
        ("swap", 0x2b, 0),
        ("getv", 0x2c, 2),
        ("setv", 0x2d, 2),
        ("tracev", 0x2e, 2),
        ("tracenz", 0x2f, 0),
        ("trace16", 0x30, 2),
        ("pick", 0x32, 1),
        ("rot", 0x33, 0),
        ("printf", 0x34, 3),
    ];
    assert_eq!(table.len(), ALL.len());
    for (&(name, byte, size), op) in table.iter().zip(ALL) {
        assert_eq!((op.name(), op.byte(), op.immediate_len()), (name, byte, size));
        assert_eq!(Opcode::from_byte(byte), Some(op));
        assert_eq!(op.to_string(), name);
    }
    for byte in [0x00, 0x31].into_iter().chain(0x35..=0xff) {
        assert_eq!(Opcode::from_byte(byte), None, "{byte:#x}");
    }
}

// ---- arithmetic and logic ----

#[test]
fn add_sub_mul_wrap() {
    assert_eq!(bin(2, "add", 3), Ok(5));
    assert_eq!(bin(u64::MAX, "add", 2), Ok(1));
    assert_eq!(bin(2, "sub", 3), Ok(u64::MAX)); // next-to-top minus top
    assert_eq!(bin(10, "sub", 3), Ok(7));
    assert_eq!(bin(6, "mul", 7), Ok(42));
    assert_eq!(bin(1 << 63, "mul", 2), Ok(0));
    assert_eq!(bin(neg(-3), "mul", 5), Ok(neg(-15)));
}

#[test]
fn division_and_remainder() {
    assert_eq!(bin(neg(-7), "div_signed", 2), Ok(neg(-3)));
    assert_eq!(bin(7, "div_signed", neg(-2)), Ok(neg(-3)));
    assert_eq!(bin(neg(-7), "div_unsigned", 2), Ok((u64::MAX - 6) / 2));
    assert_eq!(bin(neg(-7), "rem_signed", 2), Ok(neg(-1)));
    assert_eq!(bin(neg(-7), "rem_unsigned", 2), Ok(1));
    assert_eq!(bin(17, "rem_unsigned", 5), Ok(2));
    // The one overflowing signed division wraps instead of trapping.
    assert_eq!(bin(i64::MIN as u64, "div_signed", neg(-1)), Ok(i64::MIN as u64));
    assert_eq!(bin(i64::MIN as u64, "rem_signed", neg(-1)), Ok(0));
    for op in ["div_signed", "div_unsigned", "rem_signed", "rem_unsigned"] {
        let e = bin(1, op, 0).unwrap_err();
        let opcode = ALL.iter().copied().find(|o| o.name() == op).unwrap();
        // const64 at 0 and 9, the division at 18.
        assert_eq!(e, Error::DivideByZero { pc: 18, op: opcode });
        assert_eq!(e.to_string(), format!("{op} at 18: division by zero"));
    }
}

#[test]
fn shifts() {
    assert_eq!(bin(1, "lsh", 4), Ok(16));
    assert_eq!(bin(neg(-16), "rsh_signed", 2), Ok(neg(-4)));
    assert_eq!(bin(neg(-16), "rsh_unsigned", 60), Ok(0xf));
    // Counts are mod 64, as on x86.
    assert_eq!(bin(1, "lsh", 64), Ok(1));
    assert_eq!(bin(1, "lsh", 65), Ok(2));
    assert_eq!(bin(0x80, "rsh_unsigned", 68), Ok(8));
}

#[test]
fn logic_and_comparisons() {
    assert_eq!(value("const8 0; log_not; end"), 1);
    assert_eq!(value("const8 7; log_not; end"), 0);
    assert_eq!(bin(0b1100, "bit_and", 0b1010), Ok(0b1000));
    assert_eq!(bin(0b1100, "bit_or", 0b1010), Ok(0b1110));
    assert_eq!(bin(0b1100, "bit_xor", 0b1010), Ok(0b0110));
    assert_eq!(value("const8 0; bit_not; end"), u64::MAX);
    assert_eq!(bin(5, "equal", 5), Ok(1));
    assert_eq!(bin(5, "equal", 6), Ok(0));
    assert_eq!(bin(neg(-1), "less_signed", 0), Ok(1));
    assert_eq!(bin(0, "less_signed", neg(-1)), Ok(0));
    assert_eq!(bin(neg(-1), "less_unsigned", 0), Ok(0));
    assert_eq!(bin(0, "less_unsigned", neg(-1)), Ok(1));
    assert_eq!(bin(3, "less_unsigned", 3), Ok(0));
}

#[test]
fn ext_and_zero_ext() {
    assert_eq!(value("const8 232; ext 8; end"), neg(-24));
    assert_eq!(value("const8 104; ext 8; end"), 104);
    assert_eq!(value("const8 1; ext 1; end"), u64::MAX);
    assert_eq!(value("const32 2147483648; ext 32; end"), neg(i64::from(i32::MIN)));
    assert_eq!(value("const64 18446744073709551615; ext 64; end"), u64::MAX); // no-op from 64 up
    assert_eq!(value("const8 200; ext 200; end"), 200);
    assert_eq!(value("const8 255; ext 0; end"), 0);
    assert_eq!(value("const16 65535; zero_ext 8; end"), 0xff);
    assert_eq!(value("const64 18446744073709551615; zero_ext 63; end"), u64::MAX >> 1);
    assert_eq!(value("const64 18446744073709551615; zero_ext 64; end"), u64::MAX);
    assert_eq!(value("const8 255; zero_ext 0; end"), 0);
}

// ---- constants, registers, memory ----

#[test]
fn constants_are_big_endian_and_not_sign_extended() {
    assert_eq!(Expr::new(&[0x22, 0xff, 0x27]).unwrap().eval(&mut Bare), Ok(0xff));
    assert_eq!(Expr::new(&[0x23, 0x12, 0x34, 0x27]).unwrap().eval(&mut Bare), Ok(0x1234));
    assert_eq!(Expr::new(&[0x24, 0x89, 0xab, 0xcd, 0xef, 0x27]).unwrap().eval(&mut Bare), Ok(0x89ab_cdef));
    let c64 = [0x25, 1, 2, 3, 4, 5, 6, 7, 8, 0x27];
    assert_eq!(Expr::new(&c64).unwrap().eval(&mut Bare), Ok(0x0102_0304_0506_0708));
}

#[test]
fn reg_reads_the_context_by_gdb_number() {
    let mut cx = Fake::default().reg(0, 11).reg(7, 0x7ffe_0000).reg(16, 0x40_1000).reg(17, 0x246).reg(58, 0x7f00);
    assert_eq!(eval_in("reg 0; end", &mut cx), Ok(11)); // rax
    assert_eq!(eval_in("reg 7; end", &mut cx), Ok(0x7ffe_0000)); // rsp
    assert_eq!(eval_in("reg 16; end", &mut cx), Ok(0x40_1000)); // rip
    assert_eq!(eval_in("reg 17; end", &mut cx), Ok(0x246)); // eflags
    assert_eq!(eval_in("reg 58; end", &mut cx), Ok(0x7f00)); // fs_base
    assert_eq!(Expr::new(&[0x26, 0x01, 0x02, 0x27]).unwrap().eval(&mut Bare), Ok(0x102 * 0x100));
    let e = eval_in("const8 1; reg 99; end", &mut cx).unwrap_err();
    assert_eq!(e, Error::Fault { pc: 2, op: Opcode::Reg, fault: Fault::Register(99) });
    assert_eq!(e.to_string(), "reg at 2: no register 99");
}

#[test]
fn refs_read_little_endian_zero_extended() {
    let bytes = [0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0x99];
    let mut cx = Fake::default().mem(0x1000, &bytes);
    assert_eq!(eval_in("const16 4096; ref8; end", &mut cx), Ok(0xf1));
    assert_eq!(eval_in("const16 4097; ref16; end", &mut cx), Ok(0xf3f2)); // unaligned
    assert_eq!(eval_in("const16 4096; ref32; end", &mut cx), Ok(0xf4f3_f2f1));
    assert_eq!(eval_in("const16 4096; ref64; end", &mut cx), Ok(0xf8f7_f6f5_f4f3_f2f1));
    assert_eq!(eval_in("const16 4097; ref64; end", &mut cx), Ok(0x99f8_f7f6_f5f4_f3f2));
    let e = eval_in("const16 4098; ref64; end", &mut cx).unwrap_err();
    assert_eq!(e, Error::Fault { pc: 3, op: Opcode::Ref64, fault: Fault::Memory { addr: 0x1002, len: 8 } });
    assert_eq!(e.to_string(), "ref64 at 3: cannot access 8 bytes of memory at 0x1002");
}

// ---- control flow ----

#[test]
fn if_goto_and_goto() {
    // if (cond) 10 else 20
    let prog = |cond: u8| format!("const8 {cond}; if_goto 10; const8 20; goto 12; const8 10; end");
    assert_eq!(value(&prog(1)), 10);
    assert_eq!(value(&prog(0)), 20);
    // if_goto pops its condition.
    assert_eq!(value("const8 7; const8 1; if_goto 7; end; end"), 7);
    assert_eq!(eval("if_goto 3; end").unwrap_err(), Error::StackUnderflow { pc: 0, op: Opcode::IfGoto });
    // A jump to offset 0 is a loop back to the start.
    assert_eq!(value("goto 4; end; const8 1; goto 3"), 1);
}

#[test]
fn end_returns_the_top() {
    assert_eq!(value("const8 1; const8 2; end"), 2);
    let e = Expr::new(&asm("end")).unwrap();
    assert_eq!(e.eval(&mut Bare), Err(Error::NoValue { pc: 0 }));
    assert_eq!(e.run(&mut Bare), Ok(None));
    let e = Expr::new(&asm("const8 1; pop; end")).unwrap();
    assert_eq!(e.eval(&mut Bare).unwrap_err().to_string(), "end at 3: the stack is empty, the expression has no value");
    assert_eq!(Expr::new(&asm("const8 9; end")).unwrap().run(&mut Bare), Ok(Some(9)));
}

// ---- stack manipulation ----

#[test]
fn dup_pop_swap_pick_rot() {
    assert_eq!(value("const8 3; dup; add; end"), 6);
    assert_eq!(value("const8 3; const8 4; pop; end"), 3);
    assert_eq!(value("const8 10; const8 3; swap; sub; end"), neg(-7));
    assert_eq!(value("const8 1; const8 2; const8 3; pick 0; end"), 3);
    assert_eq!(value("const8 1; const8 2; const8 3; pick 2; end"), 1);
    // a b c => c a b: b on top, then a, then c.
    let rot = "const8 1; const8 2; const8 3; rot";
    assert_eq!(value(&format!("{rot}; end")), 2);
    assert_eq!(value(&format!("{rot}; pop; end")), 1);
    assert_eq!(value(&format!("{rot}; pop; pop; end")), 3);
    assert_eq!(eval("const8 1; pick 1; end").unwrap_err(), Error::StackUnderflow { pc: 2, op: Opcode::Pick });
    assert_eq!(eval("const8 1; const8 2; rot; end").unwrap_err(), Error::StackUnderflow { pc: 4, op: Opcode::Rot });
    assert_eq!(eval("const8 1; swap; end").unwrap_err(), Error::StackUnderflow { pc: 2, op: Opcode::Swap });
    assert_eq!(eval("dup; end").unwrap_err(), Error::StackUnderflow { pc: 0, op: Opcode::Dup });
    assert_eq!(eval("pop; end").unwrap_err(), Error::StackUnderflow { pc: 0, op: Opcode::Pop });
}

#[test]
fn underflow_is_an_error_for_every_consumer() {
    // gdbserver reads below its stack here; xol refuses.
    for op in ["add", "sub", "mul", "equal", "less_signed", "bit_and", "lsh"] {
        let e = eval(&format!("const8 1; {op}; end")).unwrap_err();
        assert!(matches!(e, Error::StackUnderflow { pc: 2, .. }), "{op}: {e}");
    }
    for op in ["log_not", "bit_not", "ext 8", "zero_ext 8", "ref8", "trace_quick 4", "trace16 4", "setv 1"] {
        let e = eval(&format!("{op}; end")).unwrap_err();
        assert!(matches!(e, Error::StackUnderflow { pc: 0, .. }), "{op}: {e}");
    }
    for op in ["trace", "tracenz"] {
        let e = eval(&format!("const8 1; {op}; end")).unwrap_err();
        assert!(matches!(e, Error::StackUnderflow { pc: 2, .. }), "{op}: {e}");
    }
}

#[test]
fn stack_limit_is_gdbservers() {
    let pushes = |n: usize| "const8 1; ".repeat(n) + "end";
    assert_eq!(value(&pushes(STACK_LIMIT)), 1);
    let e = eval(&pushes(STACK_LIMIT + 1)).unwrap_err();
    assert_eq!(e, Error::StackOverflow { pc: 2 * STACK_LIMIT, op: Opcode::Const8 });
    assert_eq!(e.to_string(), "const8 at 196: stack overflow (more than 98 entries)");
    let dups = "const8 1; ".to_string() + &"dup; ".repeat(STACK_LIMIT) + "end";
    assert_eq!(eval(&dups).unwrap_err(), Error::StackOverflow { pc: 2 + STACK_LIMIT - 1, op: Opcode::Dup });
}

#[test]
fn step_limit_stops_loops() {
    let e = Expr::new(&asm("goto 0")).unwrap();
    assert_eq!(e.step_limit(), DEFAULT_STEP_LIMIT);
    let err = e.eval(&mut Bare).unwrap_err();
    assert_eq!(err, Error::StepLimit { pc: 0, op: Opcode::Goto, limit: DEFAULT_STEP_LIMIT });
    assert_eq!(err.to_string(), "goto at 0: more than 65536 instructions executed");
    // Exactly the limit is allowed: three instructions run here.
    let e = Expr::new(&asm("const8 1; pop; end")).unwrap();
    assert_eq!(e.clone().with_step_limit(3).run(&mut Bare), Ok(None));
    assert_eq!(e.with_step_limit(2).run(&mut Bare), Err(Error::StepLimit { pc: 3, op: Opcode::End, limit: 2 }));
    // A counted loop: v = 5; do v -= 1 while v; stops by itself well within the limit.
    let counted = "const8 5; const8 1; sub; dup; if_goto 2; end";
    assert_eq!(value(counted), 0);
}

// ---- collection and trace state variables ----

#[test]
fn trace_ops_collect_through_the_context() {
    let mut cx = Fake::default();
    let e = Expr::new(&asm("const16 4096; const8 16; trace; const16 8192; trace_quick 4; trace16 300; end")).unwrap();
    assert_eq!(e.run(&mut cx), Ok(Some(8192))); // trace_quick and trace16 leave the address
    assert_eq!(cx.traced, [(4096, 16), (8192, 4), (8192, 300)]);
    let e = Expr::new(&asm("const16 4096; const8 64; tracenz; end")).unwrap();
    assert_eq!(e.run(&mut cx), Ok(None));
    assert_eq!(cx.traced_strings, [(4096, 64)]);
    // The default hooks collect nothing and succeed.
    assert_eq!(
        Expr::new(&asm("const8 1; const8 2; trace; tracev 3; const8 1; trace_quick 1; end")).unwrap().eval(&mut Bare),
        Ok(1)
    );
}

#[test]
fn trace_state_variables() {
    let mut cx = Fake::default().var(2, 41);
    assert_eq!(eval_in("getv 2; const8 1; add; setv 2; end", &mut cx), Ok(42)); // setv leaves it
    assert_eq!(cx.vars[&2], 42);
    assert_eq!(eval_in("tracev 2; const8 0; end", &mut cx), Ok(0));
    assert_eq!(cx.traced_vars, [2]);
    let e = eval_in("getv 7; end", &mut cx).unwrap_err();
    assert_eq!(e, Error::Fault { pc: 0, op: Opcode::Getv, fault: Fault::Variable(7) });
    assert_eq!(e.to_string(), "getv at 0: no trace state variable 7");
    let e = Expr::new(&asm("const8 1; setv 1; end")).unwrap().eval(&mut Bare).unwrap_err();
    assert_eq!(e, Error::Fault { pc: 2, op: Opcode::Setv, fault: Fault::Variable(1) });
}

// ---- printf ----

/// What `printf "fmt" args..` prints, with args given in order (pushed in reverse, as gdb
/// does, then channel and function 0).
fn printf_in(fmt: &str, args: &[u64], cx: &mut Fake) -> Result<Vec<u8>, Error> {
    let mut text = String::new();
    for a in args.iter().rev() {
        text += &format!("const64 {a}; ");
    }
    text += &format!("const8 0; const8 0; printf \"{fmt}\", {} args; end", args.len());
    let before = cx.printed.len();
    Expr::new(&asm(&text))?.run(cx)?;
    assert_eq!(cx.printed.len(), before + 1);
    Ok(cx.printed.last().unwrap().2.clone())
}

fn printf(fmt: &str, args: &[u64]) -> String {
    String::from_utf8(printf_in(fmt, args, &mut Fake::default()).unwrap_or_else(|e| panic!("{fmt}: {e}"))).unwrap()
}

#[test]
fn printf_integers() {
    assert_eq!(printf("x=%d f=%d\\n", &[5, 42]), "x=5 f=42\n");
    assert_eq!(printf("%d %i", &[neg(-5), 0xffff_ffff]), "-5 -1"); // int: low 32 bits
    assert_eq!(printf("%ld %lld %zd", &[neg(-5), u64::MAX, 7]), "-5 -1 7");
    assert_eq!(printf("%u %lu", &[neg(-1), neg(-1)]), "4294967295 18446744073709551615");
    assert_eq!(printf("%hd %hu", &[0x1_ffff, 0x1_ffff]), "-1 65535");
    assert_eq!(printf("%x %X %#x %#X %#x", &[255, 255, 255, 255, 0]), "ff FF 0xff 0XFF 0");
    assert_eq!(printf("%o %#o %#o", &[8, 8, 0]), "10 010 0");
    assert_eq!(printf("[%5d][%-5d][%05d][%+d][% d]", &[42, 42, neg(-42), 42, 42]), "[   42][42   ][-0042][+42][ 42]");
    assert_eq!(printf("[%.3d][%8.3d][%08.3d][%.0d]", &[7, 7, 7, 0]), "[007][     007][     007][]");
    assert_eq!(printf("[%#10x][%#010x][%lx]", &[0xab, 0xab, u64::MAX]), "[      0xab][0x000000ab][ffffffffffffffff]");
    assert_eq!(printf("100%% %d", &[1]), "100% 1");
    assert_eq!(printf("%I64d", &[neg(-2)]), "-2");
}

#[test]
fn printf_chars_strings_pointers_escapes() {
    assert_eq!(printf("%c%c%3c%-2c|", &[b'o' as u64, b'k' as u64, b'!' as u64, b'?' as u64]), "ok  !? |");
    assert_eq!(printf("%p %p %12p", &[0x1000, 0, 0xbeef]), "0x1000 (nil)       0xbeef");
    assert_eq!(printf("\\t\\\\\\\"\\a\\b\\e\\f\\r\\v", &[]), "\t\\\"\x07\x08\x1b\x0c\r\x0b");
    // %s reads the inferior's string: across a 64-byte chunk boundary, cut by a precision,
    // and NULL as glibc prints it.
    // (Regions end on 64-byte boundaries, as pages do: strings are read in aligned chunks.)
    let long: Vec<u8> = (0..100).map(|i| b'a' + (i % 26) as u8).chain([0; 12]).collect();
    let mut cx = Fake::default().mem(0x2030, b"hello\0..........").mem(0x3010, &long);
    assert_eq!(
        printf_in("<%s> <%.3s> <%8s> <%-7s>", &[0x2030, 0x2030, 0x2030, 0x2030], &mut cx).unwrap(),
        b"<hello> <hel> <   hello> <hello  >"
    );
    let got = printf_in("%s", &[0x3010], &mut cx).unwrap();
    assert_eq!(got, &long[..100]);
    assert_eq!(printf_in("%s|%.3s|", &[0, 0], &mut cx).unwrap(), b"(null)||");
    // A string running into unreadable memory faults at the printf.
    let e = printf_in("%s", &[0x9000], &mut cx).unwrap_err();
    assert!(matches!(e, Error::Fault { op: Opcode::Printf, fault: Fault::Memory { .. }, .. }), "{e}");
}

#[test]
fn printf_pops_function_channel_then_arguments() {
    let mut cx = Fake::default();
    // Arguments pushed last-first, then channel, then function (on top).
    let code = asm("const8 2; const8 1; const8 7; const8 9; printf \"%d%d\", 2 args; end");
    assert_eq!(Expr::new(&code).unwrap().run(&mut cx), Ok(None));
    assert_eq!(cx.printed, [(9, 7, b"12".to_vec())]);
    let e = Expr::new(&asm("const8 1; const8 0; const8 0; printf \"%d%d\", 2 args; end")).unwrap().run(&mut cx);
    assert_eq!(e, Err(Error::StackUnderflow { pc: 6, op: Opcode::Printf }));
}

#[test]
fn printf_formats_refused_at_validation() {
    let refused = |fmt: &str, nargs: usize| {
        let text = format!("printf \"{fmt}\", {nargs} args; end");
        match Expr::new(&asm(&text)) {
            Err(Error::Format { pc: 0, error }) => error,
            other => panic!("{fmt}: {other:?}"),
        }
    };
    assert_eq!(refused("%f", 1), FormatError::Float(b'f'));
    assert_eq!(refused("%Lg", 1), FormatError::Float(b'g'));
    assert_eq!(refused("%ls", 1), FormatError::Wide(b's'));
    assert_eq!(refused("%lc", 1), FormatError::Wide(b'c'));
    assert_eq!(refused("%n", 1), FormatError::Unsupported(b'n'));
    assert_eq!(refused("%*d", 1), FormatError::Unsupported(b'*'));
    assert_eq!(refused("%.*d", 1), FormatError::Unsupported(b'*'));
    assert_eq!(refused("%", 1), FormatError::Incomplete);
    assert_eq!(refused("%q", 1), FormatError::Unrecognized(b'q'));
    assert_eq!(refused("%hhd", 1), FormatError::Unrecognized(b'h'));
    assert_eq!(refused("%#u", 1), FormatError::Inappropriate(b'u'));
    assert_eq!(refused("%+x", 1), FormatError::Inappropriate(b'x'));
    assert_eq!(refused("%05s", 1), FormatError::Inappropriate(b's'));
    assert_eq!(refused("%.2c", 1), FormatError::Inappropriate(b'c'));
    assert_eq!(refused("%#p", 1), FormatError::Inappropriate(b'p'));
    assert_eq!(refused("%Ld", 1), FormatError::Inappropriate(b'd'));
    assert_eq!(refused("\\q", 0), FormatError::Escape(b'q'));
    assert_eq!(refused("%99999d", 1), FormatError::FieldTooWide);
    assert_eq!(refused("%d %d", 1), FormatError::ArgCount { want: 2, have: 1 });
    assert_eq!(refused("%d", 0), FormatError::ArgCount { want: 1, have: 0 });
    // The format must end with a zero byte inside its length.
    let unterminated = [0x34, 0, 0, 2, b'h', b'i', 0x27];
    assert_eq!(Expr::new(&unterminated), Err(Error::Format { pc: 0, error: FormatError::Unterminated }));
    let empty = [0x34, 0, 0, 0, 0x27];
    assert_eq!(Expr::new(&empty), Err(Error::Format { pc: 0, error: FormatError::Unterminated }));
    let e = Expr::new(&asm("printf \"%f\", 1 args; end")).unwrap_err();
    assert_eq!(e.to_string(), "printf at 0: `%f`: floating point is not supported");
}

// ---- validation ----

#[test]
fn floats_are_refused() {
    for op in ALL.iter().copied().filter(|o| o.is_float()) {
        let e = Expr::new(&[0x22, 1, op.byte(), 0x27]).unwrap_err();
        assert_eq!(e, Error::Float { pc: 2, op });
        assert_eq!(e.to_string(), format!("{op} at 2: floating point is not supported"));
    }
    assert_eq!(ALL.iter().filter(|o| o.is_float()).count(), 6);
}

#[test]
fn unknown_opcodes_are_refused() {
    for byte in [0x00u8, 0x31].into_iter().chain(0x35..=0xff) {
        let e = Expr::new(&[0x22, 1, byte, 0x27]).unwrap_err();
        assert_eq!(e, Error::UnknownOpcode { pc: 2, byte });
    }
    assert_eq!(Expr::new(&[0x31]).unwrap_err().to_string(), "unknown opcode 0x31 at 0");
    assert_eq!(Expr::new(&[]), Err(Error::Empty));
}

#[test]
fn truncated_immediates_are_refused() {
    for op in ALL.iter().copied().filter(|o| o.immediate_len() > 0) {
        for have in 0..op.immediate_len() {
            let mut code = vec![0x27, op.byte()];
            code.extend(std::iter::repeat_n(0, have));
            assert_eq!(Expr::new(&code), Err(Error::Truncated { pc: 1, op }), "{op} with {have}");
        }
    }
    // printf's format cut short by the end.
    assert_eq!(Expr::new(&[0x34, 0, 0, 5, b'a', 0]), Err(Error::Truncated { pc: 0, op: Opcode::Printf }));
    assert_eq!(
        Expr::new(&[0x25, 1, 2]).unwrap_err().to_string(),
        "const64 at 0: its operand runs past the end of the expression"
    );
}

#[test]
fn jumps_must_land_on_instructions() {
    // Into the middle of const16, past the end, and a fine one.
    assert_eq!(
        Expr::new(&asm("const16 1; if_goto 1; end")),
        Err(Error::BadJump { pc: 3, op: Opcode::IfGoto, target: 1 })
    );
    assert_eq!(Expr::new(&asm("goto 4; end")), Err(Error::BadJump { pc: 0, op: Opcode::Goto, target: 4 }));
    assert_eq!(
        Expr::new(&asm("goto 65535; end")).unwrap_err().to_string(),
        "goto at 0: jump to 65535, which does not start an instruction"
    );
    assert!(Expr::new(&asm("goto 3; end")).is_ok());
}

#[test]
fn code_must_not_run_off_its_end() {
    assert_eq!(Expr::new(&asm("const8 1")), Err(Error::NoEnd { pc: 0, op: Opcode::Const8 }));
    assert_eq!(Expr::new(&asm("const8 1; if_goto 0")), Err(Error::NoEnd { pc: 2, op: Opcode::IfGoto }));
    assert!(Expr::new(&asm("const8 1; goto 0")).is_ok());
    assert_eq!(
        Expr::new(&asm("const8 1; add")).unwrap_err().to_string(),
        "add at 2 is the last instruction and can run off the end of the expression"
    );
}

#[test]
fn expr_can_live_in_shared_tables() {
    // Conditions are validated on the protocol side and read on the trap path, possibly
    // through the probe table's snapshots: the decoded form must be shareable.
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Expr>();
    shareable::<Error>();
}

#[test]
fn error_pc() {
    assert_eq!(Error::Empty.pc(), None);
    assert_eq!(Error::NoValue { pc: 4 }.pc(), Some(4));
    assert_eq!(bin(1, "div_unsigned", 0).unwrap_err().pc(), Some(18));
}

// ---- golden vectors from gdb 13 ----

/// The fixture they came from (gcc -g -O0, x86-64):
///
/// ```c
/// struct s { int pad; int field; long big; signed char c; unsigned short us; };
/// struct s g = { 1, 42, -7, -3, 65000 };
/// int counter;
/// int foo(int x, struct s *y) {
///   counter += x + y->field;   /* line 6: `break foo` */
///   return counter;            /* line 7 */
/// }
/// int main(void) {
///   int x = 5;
///   struct s *y = &g;
///   for (int i = 0; i < 10; i++)
///     foo(i, y);
///   return foo(x, y) == 0;
/// }
/// ```
///
/// In foo, rbp = 0x7fffffffe6f0, the frame base (DW_OP_call_frame_cfa) is rbp + 16, x is at
/// 0x7fffffffe6ec and y at 0x7fffffffe6e0; g is at 0x555555558010.
mod golden {
    use super::*;

    pub const RBP: u64 = 0x7fff_ffff_e6f0;
    const X_AT: u64 = 0x7fff_ffff_e6ec;
    const Y_AT: u64 = 0x7fff_ffff_e6e0;
    const G: u64 = 0x5555_5555_8010;

    /// g's bytes: pad 1, field 42, big -7, c -3, us 65000 (and padding).
    fn g_bytes(c: i8, us: u16) -> Vec<u8> {
        let mut b = Vec::new();
        b.extend_from_slice(&1i32.to_le_bytes());
        b.extend_from_slice(&42i32.to_le_bytes());
        b.extend_from_slice(&(-7i64).to_le_bytes());
        b.push(c as u8);
        b.push(0);
        b.extend_from_slice(&us.to_le_bytes());
        b.extend_from_slice(&[0; 4]);
        b
    }

    pub fn foo_frame(x: i32, c: i8, us: u16) -> Fake {
        Fake::default().reg(6, RBP).mem(X_AT, &x.to_le_bytes()).mem(Y_AT, &G.to_le_bytes()).mem(G, &g_bytes(c, us))
    }

    /// `break foo if x == 5` with `set breakpoint condition-evaluation target`: gdb 13 sent
    /// `$Z0,555555555134,1;X12,26000622100222ec16080219162022051327#25`.
    pub const X_EQ_5: &str = "26000622100222ec16080219162022051327";

    /// `break t.c:7 if y->c < 0 && y->us > 1000`: the `X3e,` condition of gdb 13's Z0.
    pub const C_AND_US: &str = "26000622100222e01608021a22100217160822001420001b21003b26000622100222e01608021a221202182303e82b1420003621003b220121003d220027";

    /// `dprintf t.c:6,"x=%d field=%d\n", x, y->field` with `set dprintf-style agent`: the
    /// `cmds:1,X39,` command of gdb 13's Z0 (gdbserver 13 printed `x=0 field=42`).
    pub const DPRINTF: &str = "26000622100222e01608021a22040219162026000622100222ec1608021916202200220034020010783d2564206669656c643d25645c6e0027";

    /// The tracepoint actions of `collect y->field, x + 1` and `teval $hits = $hits + 1`
    /// (`$hits` is trace state variable 2): the three `X` actions of gdb 13's `QTDP:-1:...`.
    pub const COLLECT_FIELD: &str = "26000622100222e01608020d081a22040222040c27";
    pub const COLLECT_X_PLUS_1: &str = "26000622100222ec1608020d0419162022010216202927";
    pub const TEVAL_HITS: &str = "2c000222010216402d000227";

    #[test]
    fn condition_x_eq_5() {
        let e = Expr::new(&hex(X_EQ_5)).unwrap();
        assert_eq!(e.len(), 0x12);
        assert_eq!(e.eval(&mut foo_frame(5, -3, 65000)), Ok(1));
        assert_eq!(e.eval(&mut foo_frame(4, -3, 65000)), Ok(0));
        assert_eq!(e.eval(&mut foo_frame(5 + (1 << 16), -3, 65000)), Ok(0));
        // Without the frame's memory the condition faults where it reads x.
        let mut cx = Fake::default().reg(6, RBP);
        assert_eq!(
            e.eval(&mut cx),
            Err(Error::Fault { pc: 11, op: Opcode::Ref32, fault: Fault::Memory { addr: X_AT, len: 4 } })
        );
        let listing = "  0  reg 6\n  3  const8 16\n  5  add\n  6  const8 236\n  8  ext 8\n 10  add\n 11  ref32\n 12  ext 32\n 14  const8 5\n 16  equal\n 17  end\n";
        assert_eq!(e.to_string(), listing);
        assert_eq!(asm(listing), hex(X_EQ_5));
    }

    #[test]
    fn should_stop_follows_gdbserver() {
        use crate::agent::should_stop;
        let x_eq_5 = Expr::new(&hex(X_EQ_5)).unwrap();
        let c_and_us = Expr::new(&hex(C_AND_US)).unwrap();
        let both = [x_eq_5.clone(), c_and_us.clone()];
        assert!(should_stop(&[], &mut Fake::default())); // unconditional
        assert!(should_stop(&both, &mut foo_frame(5, 3, 0))); // the first holds
        assert!(should_stop(&both, &mut foo_frame(4, -3, 65000))); // the second holds
        assert!(!should_stop(&both, &mut foo_frame(4, 3, 65000))); // neither
                                                                   // An evaluation error stops, so gdb decides: here x's memory is missing.
        assert!(should_stop(&[x_eq_5], &mut Fake::default().reg(6, RBP)));
        assert!(!should_stop(&[c_and_us], &mut foo_frame(0, 1, 0)));
    }

    #[test]
    fn condition_with_and_and_jumps() {
        let e = Expr::new(&hex(C_AND_US)).unwrap();
        assert_eq!(e.len(), 0x3e);
        assert_eq!(e.eval(&mut foo_frame(0, -3, 65000)), Ok(1));
        assert_eq!(e.eval(&mut foo_frame(0, 3, 65000)), Ok(0)); // c >= 0: second half skipped
        assert_eq!(e.eval(&mut foo_frame(0, -3, 1000)), Ok(0));
        assert_eq!(e.eval(&mut foo_frame(0, -128, 1001)), Ok(1));
    }

    #[test]
    fn dprintf_command() {
        let e = Expr::new(&hex(DPRINTF)).unwrap();
        assert_eq!(e.len(), 0x39);
        let mut cx = foo_frame(0, -3, 65000);
        assert_eq!(e.run(&mut cx), Ok(None)); // printf consumed everything
        assert_eq!(cx.printed, [(0, 0, b"x=0 field=42\n".to_vec())]);
        assert!(e.to_string().ends_with(" 34  const8 0\n 36  printf \"x=%d field=%d\\n\", 2 args\n 56  end\n"), "{e}");
        assert_eq!(e.eval(&mut foo_frame(0, -3, 65000)), Err(Error::NoValue { pc: 56 }));
    }

    #[test]
    fn tracepoint_actions() {
        let mut cx = foo_frame(5, -3, 65000).var(2, 0);
        assert_eq!(Expr::new(&hex(COLLECT_FIELD)).unwrap().run(&mut cx), Ok(None));
        assert_eq!(cx.traced, [(Y_AT, 8), (G + 4, 4)]);
        cx.traced.clear();
        assert_eq!(Expr::new(&hex(COLLECT_X_PLUS_1)).unwrap().run(&mut cx), Ok(None));
        assert_eq!(cx.traced, [(X_AT, 4)]);
        let teval = Expr::new(&hex(TEVAL_HITS)).unwrap();
        assert_eq!(teval.run(&mut cx), Ok(Some(1)));
        assert_eq!(teval.run(&mut cx), Ok(Some(2)));
        assert_eq!(cx.vars[&2], 2);
        assert_eq!(teval.to_string(), "  0  getv 2\n  3  const8 1\n  5  add\n  6  ext 64\n  8  setv 2\n 11  end\n");
    }

    /// gdb 13's `maint agent-eval` / `maint agent` listings at `main` (x at rbp-8 there, y at
    /// rbp-16), assembled, evaluated, and disassembled back to the same text.
    #[test]
    fn maint_agent_listings_round_trip() {
        let main_frame = || {
            Fake::default()
                .reg(6, RBP)
                .mem(RBP - 8, &5i32.to_le_bytes())
                .mem(RBP - 16, &G.to_le_bytes())
                .mem(G, &g_bytes(-3, 65000))
        };
        let cases: &[(&str, &str, Option<u64>)] = &[
            (
                "x == 5",
                "  0  reg 6\n  3  const8 16\n  5  add\n  6  const8 232\n  8  ext 8\n 10  add\n 11  ref32\n 12  ext 32\n 14  const8 5\n 16  equal\n 17  end\n",
                Some(1),
            ),
            (
                "&y->field (maint agent: collects y, leaves nothing)",
                "  0  reg 6\n  3  const8 16\n  5  add\n  6  const8 224\n  8  ext 8\n 10  add\n 11  trace_quick 8\n 13  ref64\n 14  const8 4\n 16  add\n 17  pop\n 18  end\n",
                None,
            ),
            (
                "y->field",
                "  0  reg 6\n  3  const8 16\n  5  add\n  6  const8 224\n  8  ext 8\n 10  add\n 11  ref64\n 12  const8 4\n 14  add\n 15  ref32\n 16  ext 32\n 18  end\n",
                Some(42),
            ),
            (
                "y->c < 0 && y->us > 1000",
                "  0  reg 6\n  3  const8 16\n  5  add\n  6  const8 224\n  8  ext 8\n 10  add\n 11  ref64\n 12  const8 16\n 14  add\n 15  ref8\n 16  ext 8\n 18  const8 0\n 20  less_signed\n 21  if_goto 27\n 24  goto 59\n 27  reg 6\n 30  const8 16\n 32  add\n 33  const8 224\n 35  ext 8\n 37  add\n 38  ref64\n 39  const8 18\n 41  add\n 42  ref16\n 43  const16 1000\n 46  swap\n 47  less_signed\n 48  if_goto 54\n 51  goto 59\n 54  const8 1\n 56  goto 61\n 59  const8 0\n 61  end\n",
                Some(1),
            ),
            (
                "g.big / 2",
                "  0  const64 93824992247824\n  9  const8 8\n 11  add\n 12  ref64\n 13  ext 64\n 15  const8 2\n 17  div_signed\n 18  ext 64\n 20  end\n",
                Some(neg(-3)),
            ),
            (
                "maint agent-printf \"x=%d f=%d\\n\", x, y->field",
                "  0  reg 6\n  3  const8 16\n  5  add\n  6  const8 224\n  8  ext 8\n 10  add\n 11  ref64\n 12  const8 4\n 14  add\n 15  ref32\n 16  ext 32\n 18  reg 6\n 21  const8 16\n 23  add\n 24  const8 232\n 26  ext 8\n 28  add\n 29  ref32\n 30  ext 32\n 32  const8 0\n 34  const8 0\n 36  printf \"x=%d f=%d\\n\", 2 args\n 52  end\n",
                None,
            ),
        ];
        for (what, listing, want) in cases {
            let e = Expr::new(&asm(listing)).unwrap_or_else(|err| panic!("{what}: {err}"));
            assert_eq!(&e.to_string(), listing, "{what}");
            let mut cx = main_frame();
            assert_eq!(e.run(&mut cx), Ok(*want), "{what}");
            if what.starts_with("&y") {
                assert_eq!(cx.traced, [(RBP - 16, 8)]);
            }
            if what.starts_with("maint agent-printf") {
                assert_eq!(cx.printed, [(0, 0, b"x=5 f=42\n".to_vec())]);
            }
        }
    }
}
