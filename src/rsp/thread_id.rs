//! Thread ids as the remote protocol writes them: `pPID.TID` (multiprocess), `pPID` (every
//! thread of a process), a plain `TID`, with `-1` meaning "all" and `0` meaning "any" in
//! either position. Pure; parsing never panics.

use super::hex;
use std::fmt;

/// One half of a thread id: a process or a thread number, or one of the two wildcards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Id {
    /// `-1`: every process, or every thread.
    All,
    /// `0`: any one, the server chooses.
    Any,
    /// A real (positive) id, written in hex.
    Is(u32),
}

/// A thread id: `pid` is `Some` for the multiprocess form `pPID.TID`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ThreadId {
    /// The process, when the id was written `pPID...`.
    pub pid: Option<Id>,
    /// The thread (`All` for `pPID` alone: every thread of that process).
    pub tid: Id,
}

impl Id {
    /// Parses `-1`, `0` or a hex number that fits in 32 bits.
    pub fn parse(s: &[u8]) -> Option<Id> {
        if s == b"-1" {
            return Some(Id::All);
        }
        match hex::u32_from(s)? {
            0 => Some(Id::Any),
            n => Some(Id::Is(n)),
        }
    }

    /// Appends the protocol form (`-1`, `0`, hex).
    pub fn push(self, out: &mut Vec<u8>) {
        match self {
            Id::All => out.extend_from_slice(b"-1"),
            Id::Any => out.push(b'0'),
            Id::Is(n) => hex::push_u64(out, u64::from(n)),
        }
    }
}

impl ThreadId {
    /// The thread `tid` of process `pid` (`pPID.TID`).
    pub fn new(pid: u32, tid: u32) -> ThreadId {
        ThreadId { pid: Some(Id::Is(pid)), tid: Id::Is(tid) }
    }

    /// `-1`: every thread of every process.
    pub const ALL: ThreadId = ThreadId { pid: None, tid: Id::All };

    /// `0`: any thread.
    pub const ANY: ThreadId = ThreadId { pid: None, tid: Id::Any };

    /// Parses the whole of `s` as a thread id.
    pub fn parse(s: &[u8]) -> Option<ThreadId> {
        match s.strip_prefix(b"p") {
            Some(rest) => {
                let (pid, tid) = match rest.iter().position(|&b| b == b'.') {
                    Some(dot) => (rest.get(..dot)?, Some(rest.get(dot + 1..)?)),
                    None => (rest, None),
                };
                let tid = match tid {
                    Some(t) => Id::parse(t)?,
                    None => Id::All,
                };
                Some(ThreadId { pid: Some(Id::parse(pid)?), tid })
            }
            None => Some(ThreadId { pid: None, tid: Id::parse(s)? }),
        }
    }

    /// Appends the protocol form: `pPID.TID` when the process is known, else the bare thread.
    pub fn push(&self, out: &mut Vec<u8>) {
        if let Some(pid) = self.pid {
            out.push(b'p');
            pid.push(out);
            out.push(b'.');
        }
        self.tid.push(out);
    }

    /// The protocol form as bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.push(&mut out);
        out
    }
}

impl fmt::Display for ThreadId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&String::from_utf8_lossy(&self.encode()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms() {
        assert_eq!(ThreadId::parse(b"p1f.2a"), Some(ThreadId::new(0x1f, 0x2a)));
        assert_eq!(ThreadId::parse(b"p1f"), Some(ThreadId { pid: Some(Id::Is(0x1f)), tid: Id::All }));
        assert_eq!(ThreadId::parse(b"p1f.-1"), Some(ThreadId { pid: Some(Id::Is(0x1f)), tid: Id::All }));
        assert_eq!(ThreadId::parse(b"p-1.-1"), Some(ThreadId { pid: Some(Id::All), tid: Id::All }));
        assert_eq!(ThreadId::parse(b"p0.0"), Some(ThreadId { pid: Some(Id::Any), tid: Id::Any }));
        assert_eq!(ThreadId::parse(b"-1"), Some(ThreadId::ALL));
        assert_eq!(ThreadId::parse(b"0"), Some(ThreadId::ANY));
        assert_eq!(ThreadId::parse(b"c74"), Some(ThreadId { pid: None, tid: Id::Is(0xc74) }));
        for bad in [&b""[..], b"p", b"p.", b"p1.", b"p.1", b"-2", b"p1.2.3", b"x", b"100000000", b"-", b"p1..2"] {
            assert_eq!(ThreadId::parse(bad), None, "{:?}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn round_trip() {
        for t in [
            ThreadId::new(1, 1),
            ThreadId::new(0x7fff_ffff, 0x12345),
            ThreadId::ALL,
            ThreadId::ANY,
            ThreadId { pid: Some(Id::Is(5)), tid: Id::All },
            ThreadId { pid: None, tid: Id::Is(9) },
        ] {
            assert_eq!(ThreadId::parse(&t.encode()), Some(t), "{t}");
        }
        assert_eq!(ThreadId::new(0x1f, 0x2a).to_string(), "p1f.2a");
    }
}
