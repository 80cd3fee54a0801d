//! gdb's host I/O (`vFile:*`) for the gdbstub front-end: gdbstub's host-I/O traits over the
//! shared file table ([`crate::front::gdb_common::host_io::HostFiles`], which xol's own
//! server uses too), so both serve files identically.

use super::target::XolTarget;
use crate::front::gdb_common::host_io::HostResult;
use gdbstub::target::ext::host_io::{
    FsKind, HostIo, HostIoClose, HostIoCloseOps, HostIoErrno, HostIoError, HostIoFstat, HostIoFstatOps, HostIoOpen,
    HostIoOpenFlags, HostIoOpenMode, HostIoOpenOps, HostIoPread, HostIoPreadOps, HostIoPwrite, HostIoPwriteOps,
    HostIoReadlink, HostIoReadlinkOps, HostIoResult, HostIoSetfs, HostIoSetfsOps, HostIoStat, HostIoUnlink,
    HostIoUnlinkOps,
};
use std::os::unix::fs::MetadataExt;

/// gdbstub's form of a File-I/O errno (gdb's numbers, as the shared table gives them).
fn errno(n: u32) -> HostIoErrno {
    use HostIoErrno::*;
    match n {
        1 => EPERM,
        2 => ENOENT,
        4 => EINTR,
        5 => EIO,
        9 => EBADF,
        13 => EACCES,
        14 => EFAULT,
        16 => EBUSY,
        17 => EEXIST,
        19 => ENODEV,
        20 => ENOTDIR,
        21 => EISDIR,
        22 => EINVAL,
        23 => ENFILE,
        24 => EMFILE,
        27 => EFBIG,
        28 => ENOSPC,
        29 => ESPIPE,
        30 => EROFS,
        88 => ENOSYS,
        91 => ENAMETOOLONG,
        _ => EUNKNOWN,
    }
}

fn tri<T>(r: HostResult<T>) -> HostIoResult<T, XolTarget> {
    r.map_err(|e| HostIoError::Errno(errno(e)))
}

impl HostIo for XolTarget {
    fn support_open(&mut self) -> Option<HostIoOpenOps<'_, Self>> {
        Some(self)
    }
    fn support_close(&mut self) -> Option<HostIoCloseOps<'_, Self>> {
        Some(self)
    }
    fn support_pread(&mut self) -> Option<HostIoPreadOps<'_, Self>> {
        Some(self)
    }
    fn support_fstat(&mut self) -> Option<HostIoFstatOps<'_, Self>> {
        Some(self)
    }
    fn support_pwrite(&mut self) -> Option<HostIoPwriteOps<'_, Self>> {
        Some(self)
    }
    fn support_unlink(&mut self) -> Option<HostIoUnlinkOps<'_, Self>> {
        Some(self)
    }
    fn support_readlink(&mut self) -> Option<HostIoReadlinkOps<'_, Self>> {
        Some(self)
    }
    fn support_setfs(&mut self) -> Option<HostIoSetfsOps<'_, Self>> {
        Some(self)
    }
}

impl HostIoOpen for XolTarget {
    fn open(&mut self, filename: &[u8], flags: HostIoOpenFlags, mode: HostIoOpenMode) -> HostIoResult<u32, Self> {
        tri(self.files.open(filename, u64::from(flags.bits()), u64::from(mode.bits())))
    }
}

impl HostIoClose for XolTarget {
    fn close(&mut self, fd: u32) -> HostIoResult<(), Self> {
        tri(self.files.close(fd))
    }
}

impl HostIoPread for XolTarget {
    fn pread(&mut self, fd: u32, count: usize, offset: u64, buf: &mut [u8]) -> HostIoResult<usize, Self> {
        let data = tri(self.files.pread(fd, count.min(buf.len()), offset))?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }
}

impl HostIoFstat for XolTarget {
    fn fstat(&mut self, fd: u32) -> HostIoResult<HostIoStat, Self> {
        let m = tri(self.files.metadata(fd))?;
        Ok(HostIoStat {
            st_dev: m.dev() as u32,
            st_ino: m.ino() as u32,
            st_mode: HostIoOpenMode::from_bits_truncate(m.mode()),
            st_nlink: m.nlink() as u32,
            st_uid: m.uid(),
            st_gid: m.gid(),
            st_rdev: m.rdev() as u32,
            st_size: m.size(),
            st_blksize: m.blksize(),
            st_blocks: m.blocks(),
            st_atime: m.atime() as u32,
            st_mtime: m.mtime() as u32,
            st_ctime: m.ctime() as u32,
        })
    }
}

impl HostIoReadlink for XolTarget {
    fn readlink(&mut self, filename: &[u8], buf: &mut [u8]) -> HostIoResult<usize, Self> {
        let t = tri(self.files.readlink(filename))?;
        let n = t.len().min(buf.len());
        buf[..n].copy_from_slice(&t[..n]);
        Ok(n)
    }
}

impl HostIoSetfs for XolTarget {
    fn setfs(&mut self, _fs: FsKind) -> HostIoResult<(), Self> {
        // xol and the inferiors share a mount namespace here.
        Ok(())
    }
}

impl HostIoPwrite for XolTarget {
    fn pwrite(&mut self, fd: u32, offset: u64, data: &[u8]) -> HostIoResult<u64, Self> {
        tri(self.files.pwrite(fd, offset, data)).map(|n| n as u64)
    }
}

impl HostIoUnlink for XolTarget {
    fn unlink(&mut self, filename: &[u8]) -> HostIoResult<(), Self> {
        tri(self.files.unlink(filename))
    }
}
