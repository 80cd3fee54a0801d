//! gdb's host I/O (`vFile:*`) over the server's file system, free of any protocol engine: the
//! table of open files, gdb's open flags and errno numbers (the "File-I/O" values of the remote
//! protocol, not Linux's), and the `struct stat` gdb expects (big-endian, fixed widths).
//!
//! gdb reads the program and its libraries through it (`sysroot target:`), and `remote
//! put/get/delete` move files. xol and its inferiors share a mount namespace, so `setfs` is a
//! no-op.

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};

/// gdb's File-I/O errno for "unknown".
const EUNKNOWN: u32 = 9999;

/// The open files of one session, numbered from 3 as gdbserver hands out descriptors.
#[derive(Debug)]
pub struct HostFiles {
    files: BTreeMap<u32, std::fs::File>,
    next: u32,
}

impl Default for HostFiles {
    fn default() -> Self {
        HostFiles { files: BTreeMap::new(), next: 3 }
    }
}

/// A host I/O result: a value, or gdb's errno.
pub type HostResult<T> = Result<T, u32>;

/// The File-I/O errno of an I/O error (gdb's numbering).
pub fn gdb_errno(e: &std::io::Error) -> u32 {
    let Some(n) = e.raw_os_error() else { return EUNKNOWN };
    match n {
        libc::EPERM => 1,
        libc::ENOENT => 2,
        libc::EINTR => 4,
        libc::EBADF => 9,
        libc::EACCES => 13,
        libc::EFAULT => 14,
        libc::EBUSY => 16,
        libc::EEXIST => 17,
        libc::ENODEV => 19,
        libc::ENOTDIR => 20,
        libc::EISDIR => 21,
        libc::EINVAL => 22,
        libc::ENFILE => 23,
        libc::EMFILE => 24,
        libc::EFBIG => 27,
        libc::ENOSPC => 28,
        libc::ESPIPE => 29,
        libc::EROFS => 30,
        libc::ENAMETOOLONG => 91,
        _ => EUNKNOWN,
    }
}

/// gdb's `O_*` open flags.
mod flags {
    pub const WRONLY: u64 = 0x1;
    pub const RDWR: u64 = 0x2;
    pub const APPEND: u64 = 0x8;
    pub const CREAT: u64 = 0x200;
    pub const TRUNC: u64 = 0x400;
    pub const EXCL: u64 = 0x800;
}

/// `struct stat` as the remote protocol carries it: big-endian, `dev ino mode nlink uid gid
/// rdev` 32-bit, `size blksize blocks` 64-bit, `atime mtime ctime` 32-bit (64 bytes).
pub fn stat_bytes(m: &std::fs::Metadata) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    for v in [m.dev() as u32, m.ino() as u32, m.mode(), m.nlink() as u32, m.uid(), m.gid(), m.rdev() as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    for v in [m.size(), m.blksize(), m.blocks()] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    for v in [m.atime() as u32, m.mtime() as u32, m.ctime() as u32] {
        out.extend_from_slice(&v.to_be_bytes());
    }
    out
}

fn path(p: &[u8]) -> &std::path::Path {
    std::path::Path::new(OsStr::from_bytes(p))
}

impl HostFiles {
    /// `vFile:open`.
    pub fn open(&mut self, name: &[u8], fl: u64, mode: u64) -> HostResult<u32> {
        let wr = fl & flags::WRONLY != 0;
        let rdwr = fl & flags::RDWR != 0;
        let creat = fl & flags::CREAT != 0;
        let excl = fl & flags::EXCL != 0;
        let f = std::fs::OpenOptions::new()
            .read(!wr)
            .write(wr || rdwr)
            .append(fl & flags::APPEND != 0)
            .truncate(fl & flags::TRUNC != 0)
            .create(creat && !excl)
            .create_new(creat && excl)
            .mode((mode & 0o777) as u32)
            .custom_flags(libc::O_CLOEXEC)
            .open(path(name))
            .map_err(|e| gdb_errno(&e))?;
        let fd = self.next;
        self.next += 1;
        self.files.insert(fd, f);
        Ok(fd)
    }

    fn file(&self, fd: u32) -> HostResult<&std::fs::File> {
        self.files.get(&fd).ok_or(9)
    }

    /// `vFile:close`.
    pub fn close(&mut self, fd: u32) -> HostResult<()> {
        self.files.remove(&fd).map(drop).ok_or(9)
    }

    /// `vFile:pread`: at most `count` bytes (the caller bounds it by the packet size).
    pub fn pread(&self, fd: u32, count: usize, offset: u64) -> HostResult<Vec<u8>> {
        let mut buf = vec![0; count];
        let n = self.file(fd)?.read_at(&mut buf, offset).map_err(|e| gdb_errno(&e))?;
        buf.truncate(n);
        Ok(buf)
    }

    /// `vFile:pwrite`.
    pub fn pwrite(&self, fd: u32, offset: u64, data: &[u8]) -> HostResult<usize> {
        self.file(fd)?.write_at(data, offset).map_err(|e| gdb_errno(&e))
    }

    /// `vFile:fstat`: the file's metadata.
    pub fn metadata(&self, fd: u32) -> HostResult<std::fs::Metadata> {
        self.file(fd)?.metadata().map_err(|e| gdb_errno(&e))
    }

    /// `vFile:fstat`, as the protocol carries it ([`stat_bytes`]).
    pub fn fstat(&self, fd: u32) -> HostResult<Vec<u8>> {
        Ok(stat_bytes(&self.metadata(fd)?))
    }

    /// `vFile:stat` (`follow` true) and `vFile:lstat`.
    pub fn stat(&self, name: &[u8], follow: bool) -> HostResult<Vec<u8>> {
        let m = if follow { std::fs::metadata(path(name)) } else { std::fs::symlink_metadata(path(name)) };
        Ok(stat_bytes(&m.map_err(|e| gdb_errno(&e))?))
    }

    /// `vFile:unlink`.
    pub fn unlink(&self, name: &[u8]) -> HostResult<()> {
        std::fs::remove_file(path(name)).map_err(|e| gdb_errno(&e))
    }

    /// `vFile:readlink`.
    pub fn readlink(&self, name: &[u8]) -> HostResult<Vec<u8>> {
        let t = std::fs::read_link(path(name)).map_err(|e| gdb_errno(&e))?;
        Ok(t.as_os_str().as_bytes().to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_reads_and_stats_a_file() {
        let mut h = HostFiles::default();
        let fd = h.open(b"/proc/self/exe", 0, 0).unwrap();
        assert_eq!(fd, 3);
        assert_eq!(h.pread(fd, 4, 0).unwrap(), b"\x7fELF");
        assert_eq!(h.fstat(fd).unwrap().len(), 64);
        h.close(fd).unwrap();
        assert_eq!(h.close(fd), Err(9));
        assert_eq!(h.open(b"/nonexistent/x", 0, 0), Err(2));
    }
}
