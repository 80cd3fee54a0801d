//! C expressions of `print` and `x` without debug information, pure: numbers, registers
//! (`$rip`, `$pc`, `$sp`, `$fp`, `$eflags`), value history (`$`, `$$`, `$N`), symbols
//! (`&g_counter`, `probe_site`), casts to C integer and pointer types (`*(int *)&g_counter`),
//! unary `- ~ ! * &`, binary `* / % + - << >> < <= > >= == != & ^ | && ||` with C precedence,
//! and parentheses. Values print as gdb prints them (`(void *) 0x7ffe...`,
//! `{<text variable, no debug info>} 0x... <main>`). The program's memory, registers and
//! symbols come through [`Context`].

/// What an expression can see of the program.
pub trait Context {
    /// A register by name (without `$`): its value and what gdb says its type is.
    fn register(&self, name: &str) -> Option<(u64, Kind)>;
    /// A symbol: its address and whether it is code.
    fn symbol(&self, name: &str) -> Option<(u64, bool)>;
    /// `len` bytes of memory at `addr`.
    fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>>;
    /// Value history entry `n` (1-based), the last for `None`.
    fn history(&self, n: Option<usize>) -> Option<Value>;
    /// `<sym+off>` for an address, if it is in a known symbol.
    fn describe(&self, addr: u64) -> Option<String>;
    /// Whether debug information (a symbol table in gdb's sense) is loaded: without it an
    /// unknown name is gdb's "No symbol table is loaded." rather than "No symbol ...".
    fn has_symtab(&self) -> bool {
        false
    }
}

/// The type of a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A C integer type: its size in bytes and signedness.
    Int {
        /// Bytes.
        size: u8,
        /// Signed.
        signed: bool,
    },
    /// `void *` (data address registers: rsp, rbp).
    DataPtr,
    /// `void (*)()` (rip).
    CodePtr,
    /// A pointer to an integer type (from a cast), dereferenceable.
    PtrTo {
        /// Bytes of the pointee.
        size: u8,
        /// Signed pointee.
        signed: bool,
    },
    /// The address of a symbol without debug information.
    SymAddr {
        /// Code (`<text variable, no debug info> *`) or data.
        code: bool,
    },
    /// A function without debug information (`{<text variable, no debug info>}`).
    Function,
    /// `$eflags`.
    Flags,
    /// An unset convenience variable (`$foo`): gdb's `void`.
    Void,
}

/// A value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Value {
    /// The bits, zero- or sign-extended to 64.
    pub bits: u64,
    /// Its type.
    pub kind: Kind,
}

const LONG: Kind = Kind::Int { size: 8, signed: true };
const INT: Kind = Kind::Int { size: 4, signed: true };

impl Value {
    fn int(v: i64) -> Value {
        Value { bits: v as u64, kind: if i32::try_from(v).is_ok() { INT } else { LONG } }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Num(u64),
    Dollar(String),
    Ident(String),
    Op(&'static str),
}

const OPS: &[&str] = &[
    "<<", ">>", "<=", ">=", "==", "!=", "&&", "||", "(", ")", "*", "/", "%", "+", "-", "<", ">", "&", "^", "|", "!",
    "~",
];

fn lex(s: &str) -> Result<Vec<Tok>, String> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut out = Vec::new();
    while i < b.len() {
        let c = b[i] as char;
        if c.is_whitespace() {
            i += 1;
        } else if c.is_ascii_digit() {
            let start = i;
            while i < b.len() && (b[i] as char).is_ascii_alphanumeric() {
                i += 1;
            }
            let t = &s[start..i];
            let v = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
                u64::from_str_radix(h, 16)
            } else if t.len() > 1 && t.starts_with('0') {
                u64::from_str_radix(&t[1..], 8)
            } else {
                t.parse()
            };
            out.push(Tok::Num(v.map_err(|_| format!("Invalid number \"{t}\"."))?));
        } else if c == '$' || c.is_ascii_alphabetic() || c == '_' {
            let start = i;
            i += 1;
            while i < b.len() && ((b[i] as char).is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$') {
                i += 1;
            }
            let t = &s[start..i];
            out.push(match t.strip_prefix('$') {
                Some(r) => Tok::Dollar(r.to_string()),
                None => Tok::Ident(t.to_string()),
            });
        } else if let Some(op) = OPS.iter().find(|op| s[i..].starts_with(**op)) {
            out.push(Tok::Op(op));
            i += op.len();
        } else {
            return Err(format!("Invalid character '{c}' in expression."));
        }
    }
    Ok(out)
}

struct Parser<'a> {
    toks: Vec<Tok>,
    pos: usize,
    cx: &'a dyn Context,
}

/// Binary operators by precedence, loosest first.
const LEVELS: &[&[&str]] = &[
    &["||"],
    &["&&"],
    &["|"],
    &["^"],
    &["&"],
    &["==", "!="],
    &["<", "<=", ">", ">="],
    &["<<", ">>"],
    &["+", "-"],
    &["*", "/", "%"],
];

/// C integer type names a cast may use, with their size and signedness.
fn int_type(words: &[String]) -> Option<(u8, bool)> {
    let w: Vec<&str> = words.iter().map(String::as_str).collect();
    let unsigned = w.contains(&"unsigned");
    let rest: Vec<&str> = w.iter().copied().filter(|x| *x != "unsigned" && *x != "signed" && *x != "int").collect();
    let size = match rest.as_slice() {
        [] => 4,
        ["char"] => 1,
        ["short"] => 2,
        ["long"] | ["long", "long"] => 8,
        _ => return None,
    };
    if w.is_empty() {
        return None;
    }
    Some((size, !unsigned))
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn eat(&mut self, op: &str) -> bool {
        if matches!(self.peek(), Some(Tok::Op(o)) if *o == op) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    fn binary(&mut self, level: usize) -> Result<Value, String> {
        let Some(ops) = LEVELS.get(level) else { return self.unary() };
        let mut lhs = self.binary(level + 1)?;
        loop {
            let Some(Tok::Op(op)) = self.peek().cloned() else { return Ok(lhs) };
            if !ops.contains(&op) {
                return Ok(lhs);
            }
            self.pos += 1;
            let rhs = self.binary(level + 1)?;
            lhs = apply(op, lhs, rhs)?;
        }
    }

    fn unary(&mut self) -> Result<Value, String> {
        if self.eat("-") {
            let v = self.unary()?;
            return Ok(Value { bits: v.bits.wrapping_neg(), kind: arith_kind(v.kind, v.kind) });
        }
        if self.eat("~") {
            let v = self.unary()?;
            return Ok(Value { bits: !v.bits, kind: arith_kind(v.kind, v.kind) });
        }
        if self.eat("!") {
            let v = self.unary()?;
            return Ok(Value::int(i64::from(v.bits == 0)));
        }
        if self.eat("*") {
            let v = self.unary()?;
            return self.deref(v);
        }
        if self.eat("&") {
            return match self.toks.get(self.pos).cloned() {
                Some(Tok::Ident(name)) => {
                    self.pos += 1;
                    let (addr, code) = self.cx.symbol(&name).ok_or_else(|| self.no_symbol(&name))?;
                    Ok(Value { bits: addr, kind: Kind::SymAddr { code } })
                }
                _ => Err("Attempt to take address of value not located in memory.".into()),
            };
        }
        // A cast: `(TYPE)` or `(TYPE *)`.
        if self.peek() == Some(&Tok::Op("(")) {
            let mut j = self.pos + 1;
            let mut words = Vec::new();
            while let Some(Tok::Ident(w)) = self.toks.get(j) {
                words.push(w.clone());
                j += 1;
            }
            if let Some((size, signed)) = int_type(&words) {
                let pointer = self.toks.get(j) == Some(&Tok::Op("*"));
                let close = j + usize::from(pointer);
                if self.toks.get(close) == Some(&Tok::Op(")")) {
                    self.pos = close + 1;
                    let v = self.unary()?;
                    return Ok(if pointer {
                        Value { bits: v.bits, kind: Kind::PtrTo { size, signed } }
                    } else {
                        Value { bits: extend(v.bits, size, signed), kind: Kind::Int { size, signed } }
                    });
                }
            }
        }
        self.primary()
    }

    fn no_symbol(&self, name: &str) -> String {
        if self.cx.has_symtab() {
            format!("No symbol \"{name}\" in current context.")
        } else {
            "No symbol table is loaded.  Use the \"file\" command.".to_string()
        }
    }

    fn deref(&self, v: Value) -> Result<Value, String> {
        let (size, signed) = match v.kind {
            Kind::PtrTo { size, signed } => (size, signed),
            Kind::SymAddr { code: false } => {
                return Err("Attempt to take contents of a non-pointer value.".into());
            }
            Kind::Int { .. } => (4, true),
            _ => return Err("Attempt to take contents of a non-pointer value.".into()),
        };
        let b = self
            .cx
            .read(v.bits, size as usize)
            .ok_or_else(|| format!("Cannot access memory at address {:#x}", v.bits))?;
        let mut w = [0u8; 8];
        w[..b.len()].copy_from_slice(&b);
        Ok(Value { bits: extend(u64::from_le_bytes(w), size, signed), kind: Kind::Int { size, signed } })
    }

    fn primary(&mut self) -> Result<Value, String> {
        let t = self.toks.get(self.pos).cloned().ok_or("A syntax error in expression, near `'.")?;
        self.pos += 1;
        match t {
            Tok::Num(n) => {
                Ok(if n <= i32::MAX as u64 { Value { bits: n, kind: INT } } else { Value { bits: n, kind: LONG } })
            }
            Tok::Op("(") => {
                let v = self.binary(0)?;
                if !self.eat(")") {
                    return Err("A syntax error in expression, near `'.".into());
                }
                Ok(v)
            }
            Tok::Dollar(name) => {
                if name.is_empty() {
                    return self.cx.history(None).ok_or_else(|| "History is empty.".into());
                }
                if name == "$" {
                    return self.cx.history(Some(usize::MAX)).ok_or_else(|| "History is empty.".into());
                }
                if let Ok(n) = name.parse::<usize>() {
                    return self.cx.history(Some(n)).ok_or_else(|| format!("History has not yet reached ${n}."));
                }
                // Not a register: a convenience variable, void until set (as gdb's).
                let (bits, kind) = self.cx.register(&name).unwrap_or((0, Kind::Void));
                Ok(Value { bits, kind })
            }
            Tok::Ident(name) => {
                let (addr, code) = self.cx.symbol(&name).ok_or_else(|| self.no_symbol(&name))?;
                if code {
                    Ok(Value { bits: addr, kind: Kind::Function })
                } else {
                    Err(format!("'{name}' has unknown type; cast it to its declared type"))
                }
            }
            Tok::Op(op) => Err(format!("A syntax error in expression, near `{op}'.")),
        }
    }
}

fn extend(bits: u64, size: u8, signed: bool) -> u64 {
    if size >= 8 {
        return bits;
    }
    let shift = 64 - 8 * u32::from(size);
    if signed {
        (((bits << shift) as i64) >> shift) as u64
    } else {
        (bits << shift) >> shift
    }
}

fn arith_kind(a: Kind, b: Kind) -> Kind {
    match (a, b) {
        (Kind::Int { size: sa, signed: ga }, Kind::Int { size: sb, signed: gb }) => {
            // C's usual arithmetic conversions: promoted to int, the wider type wins, and of
            // two of one size an unsigned one.
            let promote = |s: u8, g: bool| if s < 4 { (4, true) } else { (s, g) };
            let ((sa, ga), (sb, gb)) = (promote(sa, ga), promote(sb, gb));
            match sa.cmp(&sb) {
                std::cmp::Ordering::Greater => Kind::Int { size: sa, signed: ga },
                std::cmp::Ordering::Less => Kind::Int { size: sb, signed: gb },
                std::cmp::Ordering::Equal => Kind::Int { size: sa, signed: ga && gb },
            }
        }
        (k @ (Kind::DataPtr | Kind::CodePtr | Kind::PtrTo { .. } | Kind::SymAddr { .. }), _) => k,
        (_, k @ (Kind::DataPtr | Kind::CodePtr | Kind::PtrTo { .. } | Kind::SymAddr { .. })) => k,
        _ => LONG,
    }
}

fn apply(op: &str, a: Value, b: Value) -> Result<Value, String> {
    if a.kind == Kind::Void || b.kind == Kind::Void {
        return Err("Argument to arithmetic operation not a number or boolean.".into());
    }
    let kind = arith_kind(a.kind, b.kind);
    let signed = matches!(kind, Kind::Int { signed: true, .. });
    let (x, y) = (a.bits, b.bits);
    let cmp = |r: bool| Ok(Value::int(i64::from(r)));
    let lt = if signed { (x as i64) < (y as i64) } else { x < y };
    let bits = match op {
        "+" => x.wrapping_add(y),
        "-" => x.wrapping_sub(y),
        "*" => x.wrapping_mul(y),
        "/" | "%" if y == 0 => return Err("Division by zero".into()),
        "/" if signed => (x as i64).wrapping_div(y as i64) as u64,
        "/" => x / y,
        "%" if signed => (x as i64).wrapping_rem(y as i64) as u64,
        "%" => x % y,
        "<<" => x.wrapping_shl(y as u32),
        ">>" if signed => ((x as i64).wrapping_shr(y as u32)) as u64,
        ">>" => x.wrapping_shr(y as u32),
        "&" => x & y,
        "|" => x | y,
        "^" => x ^ y,
        "==" => return cmp(x == y),
        "!=" => return cmp(x != y),
        "<" => return cmp(lt),
        ">=" => return cmp(!lt),
        ">" => return cmp(!lt && x != y),
        "<=" => return cmp(lt || x == y),
        "&&" => return cmp(x != 0 && y != 0),
        "||" => return cmp(x != 0 || y != 0),
        _ => return Err(format!("A syntax error in expression, near `{op}'.")),
    };
    let bits = match kind {
        Kind::Int { size, signed } => extend(bits, size, signed),
        _ => bits,
    };
    Ok(Value { bits, kind })
}

/// Evaluate `text`.
pub fn eval(text: &str, cx: &dyn Context) -> Result<Value, String> {
    let toks = lex(text)?;
    if toks.is_empty() {
        return Err("Argument required (expression to compute).".into());
    }
    let mut p = Parser { toks, pos: 0, cx };
    let v = p.binary(0)?;
    if let Some(t) = p.peek() {
        let near = match t {
            Tok::Num(n) => n.to_string(),
            Tok::Dollar(d) => format!("${d}"),
            Tok::Ident(i) => i.clone(),
            Tok::Op(o) => o.to_string(),
        };
        return Err(format!("A syntax error in expression, near `{near}'."));
    }
    Ok(v)
}

/// The flag names of `$eflags` that are set, as gdb prints them: `[ IF ZF PF ]`.
pub fn eflags(v: u64) -> String {
    const FLAGS: &[(u32, &str)] = &[
        (0, "CF"),
        (2, "PF"),
        (4, "AF"),
        (6, "ZF"),
        (7, "SF"),
        (8, "TF"),
        (9, "IF"),
        (10, "DF"),
        (11, "OF"),
        (14, "NT"),
        (16, "RF"),
        (17, "VM"),
        (18, "AC"),
        (19, "VIF"),
        (20, "VIP"),
        (21, "ID"),
    ];
    let set: Vec<&str> = FLAGS.iter().filter(|(b, _)| v & (1 << b) != 0).map(|(_, n)| *n).collect();
    format!("[ {}]", set.iter().map(|s| format!("{s} ")).collect::<String>())
}

/// A value in a `print` format letter (`x d u o t c a`, or `None` for the natural format).
pub fn format(v: Value, fmt: Option<char>, cx: &dyn Context) -> Result<String, String> {
    let size = match v.kind {
        Kind::Int { size, .. } => size,
        _ => 8,
    };
    let mask = if size >= 8 { u64::MAX } else { (1u64 << (8 * u32::from(size))) - 1 };
    let raw = v.bits & mask;
    let sym = |a: u64| cx.describe(a).map(|d| format!(" {d}")).unwrap_or_default();
    Ok(match fmt {
        Some('x') => format!("{raw:#x}"),
        Some('o') => format!("0{raw:o}"),
        Some('t') => format!("{raw:b}"),
        Some('d') => (extend(raw, size, true) as i64).to_string(),
        Some('u') => raw.to_string(),
        Some('a') => format!("{raw:#x}{}", sym(raw)),
        Some('c') => {
            let c = raw as u8;
            let shown = if c.is_ascii_graphic() || c == b' ' { (c as char).to_string() } else { format!("\\{c:03o}") };
            format!("{} '{shown}'", extend(raw, 1, true) as i64)
        }
        Some(f) => return Err(format!("Undefined output format \"{f}\".")),
        None => match v.kind {
            Kind::Int { signed: true, .. } => (extend(raw, size, true) as i64).to_string(),
            Kind::Int { signed: false, .. } => raw.to_string(),
            Kind::DataPtr => format!("(void *) {raw:#x}"),
            Kind::CodePtr => format!("(void (*)()) {raw:#x}{}", sym(raw)),
            Kind::PtrTo { size, signed } => {
                let t = match (size, signed) {
                    (1, true) => "char",
                    (1, false) => "unsigned char",
                    (2, true) => "short",
                    (2, false) => "unsigned short",
                    (4, true) => "int",
                    (4, false) => "unsigned int",
                    (_, true) => "long",
                    (_, false) => "unsigned long",
                };
                format!("({t} *) {raw:#x}{}", sym(raw))
            }
            Kind::SymAddr { code } => {
                let what = if code { "text" } else { "data" };
                format!("(<{what} variable, no debug info> *) {raw:#x}{}", sym(raw))
            }
            Kind::Function => format!("{{<text variable, no debug info>}} {raw:#x}{}", sym(raw)),
            Kind::Flags => eflags(raw),
            Kind::Void => "void".into(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Fake;

    impl Context for Fake {
        fn register(&self, name: &str) -> Option<(u64, Kind)> {
            match name {
                "rdi" => Some((5, LONG)),
                "rsp" | "sp" => Some((0x7ffe_0000, Kind::DataPtr)),
                "rip" | "pc" => Some((0x1004, Kind::CodePtr)),
                "eflags" => Some((0x246, Kind::Flags)),
                _ => None,
            }
        }
        fn symbol(&self, name: &str) -> Option<(u64, bool)> {
            match name {
                "main" => Some((0x1000, true)),
                "g_counter" => Some((0x2000, false)),
                _ => None,
            }
        }
        fn read(&self, addr: u64, len: usize) -> Option<Vec<u8>> {
            (addr == 0x2000).then(|| (-3i64).to_le_bytes()[..len].to_vec())
        }
        fn history(&self, n: Option<usize>) -> Option<Value> {
            matches!(n, None | Some(1)).then_some(Value { bits: 42, kind: INT })
        }
        fn describe(&self, addr: u64) -> Option<String> {
            match addr {
                0x1000..=0x10ff => Some(format!("<main+{}>", addr - 0x1000).replace("+0>", ">")),
                0x2000 => Some("<g_counter>".into()),
                _ => None,
            }
        }
    }

    fn p(text: &str) -> String {
        eval(text, &Fake).and_then(|v| format(v, None, &Fake)).unwrap_or_else(|e| e)
    }

    #[test]
    fn prints_as_gdb() {
        assert_eq!(p("1 + 2 * 3"), "7");
        assert_eq!(p("(1 + 2) * 3"), "9");
        assert_eq!(p("$rdi"), "5");
        assert_eq!(p("$rdi == 5 && $rdi < 6"), "1");
        assert_eq!(p("-7 / 2"), "-3");
        assert_eq!(p("$sp"), "(void *) 0x7ffe0000");
        assert_eq!(p("$pc"), "(void (*)()) 0x1004 <main+4>");
        assert_eq!(p("$eflags"), "[ PF ZF IF ]");
        assert_eq!(p("&g_counter"), "(<data variable, no debug info> *) 0x2000 <g_counter>");
        assert_eq!(p("main"), "{<text variable, no debug info>} 0x1000 <main>");
        assert_eq!(p("*(int *)&g_counter"), "-3");
        assert_eq!(p("*(unsigned char *)&g_counter"), "253");
        assert_eq!(p("(char)300"), "44");
        assert_eq!(p("$"), "42");
        assert_eq!(p("$1 + 1"), "43");
        assert_eq!(p("0x10"), "16");
        assert_eq!(p("010"), "8");
    }

    #[test]
    fn errors_as_gdb() {
        assert_eq!(p("nosuch"), "No symbol table is loaded.  Use the \"file\" command.");
        assert_eq!(p("g_counter"), "'g_counter' has unknown type; cast it to its declared type");
        assert_eq!(p("$nosuch"), "void");
        assert_eq!(p("1 +"), "A syntax error in expression, near `'.");
        assert_eq!(p("1 / 0"), "Division by zero");
        assert_eq!(p("$5"), "History has not yet reached $5.");
        assert_eq!(p("1 2"), "A syntax error in expression, near `2'.");
    }

    #[test]
    fn formats() {
        let v = eval("-1", &Fake).unwrap();
        assert_eq!(format(v, Some('x'), &Fake).unwrap(), "0xffffffff");
        assert_eq!(format(v, Some('u'), &Fake).unwrap(), "4294967295");
        assert_eq!(format(eval("65", &Fake).unwrap(), Some('c'), &Fake).unwrap(), "65 'A'");
        assert_eq!(format(eval("5", &Fake).unwrap(), Some('t'), &Fake).unwrap(), "101");
        assert_eq!(format(eval("0x1004", &Fake).unwrap(), Some('a'), &Fake).unwrap(), "0x1004 <main+4>");
    }
}
