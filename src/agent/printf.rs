//! The `printf` bytecode's format string: parsed and checked once, when the expression is
//! validated, then rendered on each evaluation into bytes handed to
//! [`Context::printf`].
//!
//! The format arrives as gdb's user typed it between the quotes, so C escapes (`\n`, `\t`,
//! ...) are still backslash sequences; they are processed here as gdbserver's format parser
//! does (the same escapes, the same refusals). Conversions accepted are gdbserver's: `%d %i
//! %u %o %x %X %c %s` with the flags `-+ #0`, a width, a precision and the length modifiers
//! `h`, `l`, `ll`, `z` (and `I64`), plus `%p` (which gdbserver refuses; it is
//! well defined, so it is rendered as glibc does). Floating-point, wide-character, `%n` and
//! `*` conversions are refused, at validation time.

use super::{Context, Fault};

/// The widest field (width or precision) a format may ask for; a larger one is refused so a
/// hostile format cannot make evaluation allocate without bound.
pub const MAX_FIELD: usize = 4096;

/// The most bytes a `%s` argument reads from the inferior; a longer string is cut there.
pub const MAX_STRING: usize = 4096;

/// What is wrong with a `printf` format string.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// A backslash escape that gdb does not know.
    #[error("unrecognized escape `\\{}` in the format", char::from(*.0))]
    Escape(u8),
    /// A `%` with no conversion after it.
    #[error("incomplete format specifier at the end of the format")]
    Incomplete,
    /// A conversion character that printf does not have.
    #[error("unrecognized format specifier `{}`", char::from(*.0))]
    Unrecognized(u8),
    /// `%n` or a `*` width or precision: refused, as gdb does.
    #[error("`{}` is not supported in an agent printf", char::from(*.0))]
    Unsupported(u8),
    /// Flags or length modifiers that do not go with the conversion.
    #[error("inappropriate modifiers to format specifier `{}`", char::from(*.0))]
    Inappropriate(u8),
    /// A floating-point conversion.
    #[error("`%{}`: floating point is not supported", char::from(*.0))]
    Float(u8),
    /// `%lc` or `%ls`.
    #[error("`%l{}`: wide characters are not supported in an agent printf", char::from(*.0))]
    Wide(u8),
    /// A width or precision over [`MAX_FIELD`].
    #[error("a field width or precision over {MAX_FIELD}")]
    FieldTooWide,
    /// The bytecode's argument count differs from the format's conversions.
    #[error("the format has {want} conversions but the bytecode passes {have} arguments")]
    ArgCount {
        /// Conversions in the format.
        want: usize,
        /// The bytecode's argument count.
        have: usize,
    },
    /// The format is not terminated by a zero byte within its length.
    #[error("the format string is not zero-terminated")]
    Unterminated,
}

/// A parsed format: literal text and conversions, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Format {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(Vec<u8>),
    Conv(Spec),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    hash: bool,
    zero: bool,
    width: usize,
    precision: Option<usize>,
    kind: Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Signed(Size),
    Unsigned(Size, Radix),
    Char,
    Str,
    Ptr,
}

/// The C type a conversion reads its argument as: `h` short, none int, `l`/`ll`/`z` 64 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Size {
    Short,
    Int,
    Long,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Radix {
    Dec,
    Oct,
    Hex,
    UpperHex,
}

impl Format {
    /// Parses the bytecode's format bytes (which must end with a zero byte; anything after
    /// the first zero is ignored, as a C string would be).
    pub fn parse(bytes: &[u8]) -> Result<Format, FormatError> {
        let end = bytes.iter().position(|&b| b == 0).ok_or(FormatError::Unterminated)?;
        let text = unescape(bytes.get(..end).unwrap_or_default())?;
        let mut pieces = Vec::new();
        let mut literal = Vec::new();
        let mut i = 0;
        while let Some(&b) = text.get(i) {
            i += 1;
            if b != b'%' {
                literal.push(b);
                continue;
            }
            if text.get(i) == Some(&b'%') {
                literal.push(b'%');
                i += 1;
                continue;
            }
            let (spec, next) = conversion(&text, i)?;
            i = next;
            if !literal.is_empty() {
                pieces.push(Piece::Literal(std::mem::take(&mut literal)));
            }
            pieces.push(Piece::Conv(spec));
        }
        if !literal.is_empty() {
            pieces.push(Piece::Literal(literal));
        }
        Ok(Format { pieces })
    }

    /// The number of arguments the format converts.
    pub fn conversions(&self) -> usize {
        self.pieces.iter().filter(|p| matches!(p, Piece::Conv(_))).count()
    }

    /// Renders the format with `args` (the first conversion's first) into `out`; `%s`
    /// arguments are read through `cx`.
    pub fn render(&self, args: &[u64], cx: &mut dyn Context, out: &mut Vec<u8>) -> Result<(), Fault> {
        let mut args = args.iter().copied();
        for piece in &self.pieces {
            match piece {
                Piece::Literal(text) => out.extend_from_slice(text),
                Piece::Conv(spec) => {
                    // Validation guarantees one argument per conversion; a missing one is 0.
                    let arg = args.next().unwrap_or(0);
                    spec.render(arg, cx, out)?;
                }
            }
        }
        Ok(())
    }
}

/// gdb's escape processing of a format: `\\ \a \b \e \f \n \r \t \v \"`; an unescaped `"`
/// ends the format, as it does in gdbserver's parser.
fn unescape(s: &[u8]) -> Result<Vec<u8>, FormatError> {
    let mut out = Vec::with_capacity(s.len());
    let mut it = s.iter().copied();
    while let Some(b) = it.next() {
        match b {
            b'"' => break,
            b'\\' => {
                let c = it.next().unwrap_or(0);
                out.push(match c {
                    b'\\' => b'\\',
                    b'a' => 0x07,
                    b'b' => 0x08,
                    b'e' => 0x1b,
                    b'f' => 0x0c,
                    b'n' => b'\n',
                    b'r' => b'\r',
                    b't' => b'\t',
                    b'v' => 0x0b,
                    b'"' => b'"',
                    other => return Err(FormatError::Escape(other)),
                });
            }
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Digits at `text[i..]`, as a field of at most [`MAX_FIELD`]: the value and the index after.
fn field(text: &[u8], mut i: usize) -> Result<(usize, usize), FormatError> {
    let mut n: usize = 0;
    while let Some(&d) = text.get(i).filter(|d| d.is_ascii_digit()) {
        n = n.saturating_mul(10).saturating_add(usize::from(d - b'0'));
        if n > MAX_FIELD {
            return Err(FormatError::FieldTooWide);
        }
        i += 1;
    }
    Ok((n, i))
}

/// The conversion whose `%` is just before `text[i]`: its spec and the index after it.
fn conversion(text: &[u8], mut i: usize) -> Result<(Spec, usize), FormatError> {
    let at = |i: usize| text.get(i).copied().unwrap_or(0);
    let (mut minus, mut plus, mut space, mut hash, mut zero) = (false, false, false, false, false);
    loop {
        match at(i) {
            b'-' => minus = true,
            b'+' => plus = true,
            b' ' => space = true,
            b'#' => hash = true,
            b'0' => zero = true,
            _ => break,
        }
        i += 1;
    }
    if at(i) == b'*' {
        return Err(FormatError::Unsupported(b'*'));
    }
    let (width, next) = field(text, i)?;
    i = next;
    let mut precision = None;
    if at(i) == b'.' {
        i += 1;
        if at(i) == b'*' {
            return Err(FormatError::Unsupported(b'*'));
        }
        let (p, next) = field(text, i)?;
        precision = Some(p);
        i = next;
    }
    // Length modifiers, as gdb's parser reads them.
    let (mut h, mut lcount, mut big_l, mut decimal_float) = (false, 0u8, false, false);
    match at(i) {
        b'h' => {
            h = true;
            i += 1;
        }
        b'l' => {
            lcount = 1;
            i += 1;
            if at(i) == b'l' {
                lcount = 2;
                i += 1;
            }
        }
        b'L' => {
            big_l = true;
            i += 1;
        }
        b'H' => {
            decimal_float = true;
            i += 1;
        }
        b'D' => {
            decimal_float = true;
            i += 1;
            if at(i) == b'D' {
                i += 1;
            }
        }
        b'z' => {
            lcount = 1;
            i += 1;
        }
        b'I' if at(i + 1) == b'6' && at(i + 2) == b'4' => {
            lcount = 2;
            i += 3;
        }
        _ => {}
    }
    let c = at(i);
    let size = if h {
        Size::Short
    } else if lcount > 0 {
        Size::Long
    } else {
        Size::Int
    };
    let bad = |cond: bool| if cond { Err(FormatError::Inappropriate(c)) } else { Ok(()) };
    let kind = match c {
        b'd' | b'i' => {
            bad(big_l || decimal_float)?;
            Kind::Signed(size)
        }
        b'u' | b'o' | b'x' | b'X' => {
            bad(big_l || decimal_float || space || plus || (c == b'u' && hash))?;
            let radix = match c {
                b'u' => Radix::Dec,
                b'o' => Radix::Oct,
                b'x' => Radix::Hex,
                _ => Radix::UpperHex,
            };
            Kind::Unsigned(size, radix)
        }
        b'c' => {
            if lcount == 1 {
                return Err(FormatError::Wide(c));
            }
            bad(lcount > 1 || h || big_l || decimal_float || precision.is_some() || zero || space || plus)?;
            Kind::Char
        }
        b's' => {
            if lcount == 1 {
                return Err(FormatError::Wide(c));
            }
            bad(lcount > 1 || h || big_l || decimal_float || zero || space || plus)?;
            Kind::Str
        }
        b'p' => {
            bad(lcount > 0 || h || big_l || decimal_float || precision.is_some())?;
            bad(hash || zero || space || plus)?;
            Kind::Ptr
        }
        b'e' | b'f' | b'g' | b'E' | b'G' => return Err(FormatError::Float(c)),
        b'n' => return Err(FormatError::Unsupported(c)),
        0 => return Err(FormatError::Incomplete),
        other => return Err(FormatError::Unrecognized(other)),
    };
    Ok((Spec { minus, plus, space, hash, zero, width, precision, kind }, i + 1))
}

impl Spec {
    fn render(&self, arg: u64, cx: &mut dyn Context, out: &mut Vec<u8>) -> Result<(), Fault> {
        match self.kind {
            Kind::Signed(size) => {
                let v: i64 = match size {
                    Size::Short => i64::from(arg as u16 as i16),
                    Size::Int => i64::from(arg as u32 as i32),
                    Size::Long => arg as i64,
                };
                let sign: &[u8] = if v < 0 {
                    b"-"
                } else if self.plus {
                    b"+"
                } else if self.space {
                    b" "
                } else {
                    b""
                };
                self.integer(sign, v.unsigned_abs(), Radix::Dec, out);
            }
            Kind::Unsigned(size, radix) => {
                let v = match size {
                    Size::Short => u64::from(arg as u16),
                    Size::Int => u64::from(arg as u32),
                    Size::Long => arg,
                };
                let prefix: &[u8] = match radix {
                    Radix::Hex if self.hash && v != 0 => b"0x",
                    Radix::UpperHex if self.hash && v != 0 => b"0X",
                    _ => b"",
                };
                self.integer(prefix, v, radix, out);
            }
            Kind::Char => self.pad(&[arg as u8], out),
            Kind::Ptr => {
                if arg == 0 {
                    self.pad(b"(nil)", out);
                } else {
                    self.pad(format!("{arg:#x}").as_bytes(), out);
                }
            }
            Kind::Str => {
                let limit = self.precision.map_or(MAX_STRING, |p| p.min(MAX_STRING));
                if arg == 0 {
                    // glibc prints "(null)" only where the precision leaves room for it.
                    let text: &[u8] = if self.precision.is_none_or(|p| p >= 6) { b"(null)" } else { b"" };
                    self.pad(text, out);
                } else {
                    let s = read_string(cx, arg, limit)?;
                    self.pad(&s, out);
                }
            }
        }
        Ok(())
    }

    /// An integer conversion: `prefix` (sign or `0x`), then `v`'s digits in `radix` with C's
    /// precision, `#` (octal) and zero-padding rules, padded to the width.
    fn integer(&self, prefix: &[u8], v: u64, radix: Radix, out: &mut Vec<u8>) {
        let mut digits = match radix {
            Radix::Dec => format!("{v}"),
            Radix::Oct => format!("{v:o}"),
            Radix::Hex => format!("{v:x}"),
            Radix::UpperHex => format!("{v:X}"),
        }
        .into_bytes();
        if self.precision == Some(0) && v == 0 {
            digits.clear();
        }
        if let Some(p) = self.precision {
            if digits.len() < p {
                let mut padded = vec![b'0'; p - digits.len()];
                padded.extend_from_slice(&digits);
                digits = padded;
            }
        }
        if radix == Radix::Oct && self.hash && digits.first() != Some(&b'0') {
            digits.insert(0, b'0');
        }
        let len = prefix.len() + digits.len();
        if self.zero && !self.minus && self.precision.is_none() && len < self.width {
            out.extend_from_slice(prefix);
            out.resize(out.len() + (self.width - len), b'0');
            out.extend_from_slice(&digits);
        } else {
            let mut body = prefix.to_vec();
            body.extend_from_slice(&digits);
            self.pad(&body, out);
        }
    }

    /// `text` padded with spaces to the width, on the left (or the right with `-`).
    fn pad(&self, text: &[u8], out: &mut Vec<u8>) {
        let fill = self.width.saturating_sub(text.len());
        if !self.minus {
            out.resize(out.len() + fill, b' ');
        }
        out.extend_from_slice(text);
        if self.minus {
            out.resize(out.len() + fill, b' ');
        }
    }
}

/// The zero-terminated string at `addr`, at most `limit` bytes. It is read in chunks that
/// end at 64-byte boundaries, so a read never crosses a page the string does not reach.
fn read_string(cx: &mut dyn Context, addr: u64, limit: usize) -> Result<Vec<u8>, Fault> {
    const CHUNK: u64 = 64;
    let mut s = Vec::new();
    let mut at = addr;
    let mut buf = [0u8; CHUNK as usize];
    while s.len() < limit {
        let room = CHUNK - at % CHUNK;
        let want = usize::try_from(room).unwrap_or(1).min(limit - s.len());
        let chunk = buf.get_mut(..want).unwrap_or_default();
        cx.read_memory(at, chunk)?;
        match chunk.iter().position(|&b| b == 0) {
            Some(nul) => {
                s.extend_from_slice(chunk.get(..nul).unwrap_or_default());
                return Ok(s);
            }
            None => s.extend_from_slice(chunk),
        }
        at = at.wrapping_add(room);
    }
    Ok(s)
}
