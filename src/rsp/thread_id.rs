//! Thread ids as the remote protocol writes them: `pPID.TID` (multiprocess), `pPID` (every
//! thread of a process), a plain `TID`, with `-1` meaning "all" and `0` meaning "any" in
//! either position. Pure; parsing never panics. Conversions to and from xol's [`Pid`] and
//! [`Tid`] are checked (a negative id has no protocol form).

use super::hex;
use crate::types::{Pid, Tid};
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

    /// The multiprocess id of a kernel thread (`None` for a negative pid or tid).
    pub fn of(pid: Pid, tid: Tid) -> Option<ThreadId> {
        Some(ThreadId::new(u32::try_from(pid.0).ok()?, u32::try_from(tid.0).ok()?))
    }

    /// The process, when the id names exactly one.
    pub fn process(&self) -> Option<Pid> {
        match self.pid {
            Some(Id::Is(p)) => i32::try_from(p).ok().map(Pid),
            _ => None,
        }
    }

    /// The thread, when the id names exactly one.
    pub fn thread(&self) -> Option<Tid> {
        match self.tid {
            Id::Is(t) => i32::try_from(t).ok().map(Tid),
            _ => None,
        }
    }

    /// Whether this id selects thread `tid` of process `pid` (for `vCont` actions and `H`):
    /// `-1`, `0` and an absent process select any; a real id must be equal.
    pub fn selects(&self, pid: Pid, tid: Tid) -> bool {
        let same = |id: Id, n: i32| match id {
            Id::All | Id::Any => true,
            Id::Is(v) => i32::try_from(v).is_ok_and(|v| v == n),
        };
        self.pid.is_none_or(|p| same(p, pid.0)) && same(self.tid, tid.0)
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

    #[test]
    fn xol_identities() {
        let t = ThreadId::of(Pid(0x7a3), Tid(0x7a4));
        assert_eq!(t, Some(ThreadId::new(0x7a3, 0x7a4)));
        assert_eq!(ThreadId::of(Pid(-1), Tid(1)), None);
        assert_eq!(t.and_then(|t| t.process()), Some(Pid(0x7a3)));
        assert_eq!(t.and_then(|t| t.thread()), Some(Tid(0x7a4)));
        assert_eq!(ThreadId::ALL.thread(), None);
        assert_eq!(ThreadId::new(u32::MAX, 1).process(), None, "no negative pids");
        let (p, tid) = (Pid(0x7a3), Tid(0x7a4));
        for (id, selects) in [
            (&b"p7a3.7a4"[..], true),
            (b"p7a3.7a5", false),
            (b"p7a3", true),
            (b"p7a3.-1", true),
            (b"p7a2.-1", false),
            (b"p-1.-1", true),
            (b"-1", true),
            (b"0", true),
            (b"7a4", true),
            (b"7a5", false),
        ] {
            let id = ThreadId::parse(id).unwrap_or(ThreadId::ANY);
            assert_eq!(id.selects(p, tid), selects, "{id}");
        }
    }
}
