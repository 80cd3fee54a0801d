//! Hexadecimal fields of the remote protocol: numbers (`1f`, any number of leading zeros),
//! hex-encoded byte strings (`48656c6c6f`), and the checked parsing every packet parser uses.
//!
//! Pure and panic-free on any input: numbers are accumulated with checked arithmetic (an
//! overflow is `None`, never a wrap), odd-length or non-hex byte strings are `None`.

/// The value of one ASCII hex digit (either case), or `None`.
pub fn digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The lower-case ASCII hex digit for the low four bits of `n`.
pub fn to_digit(n: u8) -> u8 {
    b"0123456789abcdef".get(usize::from(n & 0xf)).copied().unwrap_or(b'0')
}

/// A non-empty hex number of any length (leading zeros allowed) that fits in 64 bits.
pub fn u64_from(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |acc, &b| acc.checked_mul(16)?.checked_add(u64::from(digit(b)?)))
}

/// A non-empty hex number that fits in 32 bits.
pub fn u32_from(s: &[u8]) -> Option<u32> {
    u64_from(s).and_then(|v| u32::try_from(v).ok())
}

/// A non-empty hex number that fits in 8 bits (signal numbers).
pub fn u8_from(s: &[u8]) -> Option<u8> {
    u64_from(s).and_then(|v| u8::try_from(v).ok())
}

/// Decodes a hex-encoded byte string (two digits a byte; an odd length is an error).
pub fn bytes_from(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    s.chunks_exact(2).map(|pair| Some(digit(*pair.first()?)? << 4 | digit(*pair.get(1)?)?)).collect()
}

/// Appends `bytes` hex-encoded (lower case, two digits a byte).
pub fn push_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len().saturating_mul(2));
    for &b in bytes {
        out.push(to_digit(b >> 4));
        out.push(to_digit(b));
    }
}

/// `bytes` hex-encoded, as a new vector.
pub fn encode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    push_bytes(&mut out, bytes);
    out
}

/// Appends `n` as a hex number without leading zeros (`0` for zero), as gdb writes addresses.
pub fn push_u64(out: &mut Vec<u8>, n: u64) {
    let digits = if n == 0 { 1 } else { (64 - n.leading_zeros()).div_ceil(4) };
    for i in (0..digits).rev() {
        // `i < 16`, so the shift never exceeds 60 bits.
        out.push(to_digit((n >> (i * 4)) as u8));
    }
}

/// Appends `n` as exactly two hex digits (signal numbers, status codes, error codes).
pub fn push_u8(out: &mut Vec<u8>, n: u8) {
    out.push(to_digit(n >> 4));
    out.push(to_digit(n));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(u64_from(b"0"), Some(0));
        assert_eq!(u64_from(b"1F"), Some(0x1f));
        assert_eq!(u64_from(b"ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(u64_from(b"00000000000000000000000c74"), Some(0xc74));
        assert_eq!(u64_from(b"10000000000000000"), None, "65 bits");
        assert_eq!(u64_from(b""), None);
        assert_eq!(u64_from(b"12g"), None);
        assert_eq!(u64_from(b"-1"), None);
        assert_eq!(u32_from(b"100000000"), None);
        assert_eq!(u8_from(b"ff"), Some(255));
        assert_eq!(u8_from(b"100"), None);
    }

    #[test]
    fn byte_strings() {
        assert_eq!(bytes_from(b"48656c6C6f"), Some(b"Hello".to_vec()));
        assert_eq!(bytes_from(b""), Some(Vec::new()));
        assert_eq!(bytes_from(b"486"), None);
        assert_eq!(bytes_from(b"4x"), None);
        assert_eq!(encode(b"\x00\xffA"), b"00ff41".to_vec());
    }

    #[test]
    fn writing_numbers() {
        for (n, s) in [(0u64, "0"), (1, "1"), (0xf, "f"), (0x10, "10"), (0x7fff_ffff_e000, "7fffffffe000")] {
            let mut out = Vec::new();
            push_u64(&mut out, n);
            assert_eq!(out, s.as_bytes());
        }
        let mut out = Vec::new();
        push_u64(&mut out, u64::MAX);
        assert_eq!(out, b"ffffffffffffffff");
        let mut out = Vec::new();
        push_u8(&mut out, 5);
        assert_eq!(out, b"05");
    }
}
