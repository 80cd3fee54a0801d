//! Typed identities: a process is not a thread, an address in one address space is not a place
//! in a file. Conversions are explicit so mixing them up is a compile error.

use std::fmt;

/// A process (thread-group) id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pid(pub i32);

/// A thread id (kernel tid).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Tid(pub i32);

/// An address in one process's address space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VirtAddr(pub u64);

/// A front-end session driving the core (a gdb connection, a REPL, a tool run), as the
/// session API registered it ([`crate::debugger::Debugger::new_client`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ClientId(pub u32);

impl fmt::Display for ClientId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "client {}", self.0)
    }
}

/// Who asked for a breakpoint insertion. Removing one owner never disarms another's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Owner {
    /// A client's breakpoint (gdb's `Z0`, a REPL's `break`): a hit stops and is reported.
    Client(ClientId),
    /// A counting or tracing probe, by id.
    Probe(u32),
    /// xol itself (e.g. the dynamic linker's event breakpoint).
    Internal,
}

impl Pid {
    /// The thread id of this process's leader thread.
    pub fn leader(self) -> Tid {
        Tid(self.0)
    }
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for Tid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for VirtAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#x}", self.0)
    }
}

/// A file, as the kernel identifies it: device and inode (`st_dev`, `st_ino` of stat(2)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId {
    /// `st_dev` (the kernel's `makedev(major, minor)` encoding, as `MetadataExt::dev`).
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

/// A place in a file: the same in every process that maps the file, wherever it is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileSite {
    /// The file.
    pub file: FileId,
    /// Byte offset in the file.
    pub offset: u64,
}

impl fmt::Display for FileSite {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:x}:{}+{:#x}", self.file.dev, self.file.ino, self.offset)
    }
}
