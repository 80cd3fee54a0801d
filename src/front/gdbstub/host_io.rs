//! gdb's host I/O (`vFile:*`): lets gdb read the program and its libraries through the stub,
//! as it does with gdbserver (`sysroot target:`), and `remote put/get/delete` move files.

use super::target::XolTarget;
use gdbstub::target::ext::host_io::{
    FsKind, HostIo, HostIoClose, HostIoCloseOps, HostIoError, HostIoFstat, HostIoFstatOps, HostIoOpen, HostIoOpenFlags,
    HostIoOpenMode, HostIoOpenOps, HostIoPread, HostIoPreadOps, HostIoPwrite, HostIoPwriteOps, HostIoReadlink,
    HostIoReadlinkOps, HostIoResult, HostIoSetfs, HostIoSetfsOps, HostIoStat, HostIoUnlink, HostIoUnlinkOps,
};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};

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
        let path = std::path::Path::new(OsStr::from_bytes(filename));
        let wr = flags.contains(HostIoOpenFlags::O_WRONLY);
        let rdwr = flags.contains(HostIoOpenFlags::O_RDWR);
        let f = std::fs::OpenOptions::new()
            .read(!wr)
            .write(wr || rdwr)
            .append(flags.contains(HostIoOpenFlags::O_APPEND))
            .truncate(flags.contains(HostIoOpenFlags::O_TRUNC))
            .create(flags.contains(HostIoOpenFlags::O_CREAT) && !flags.contains(HostIoOpenFlags::O_EXCL))
            .create_new(flags.contains(HostIoOpenFlags::O_CREAT) && flags.contains(HostIoOpenFlags::O_EXCL))
            .mode(mode.bits() & 0o777)
            .custom_flags(libc::O_CLOEXEC)
            .open(path)?;
        let fd = self.next_fd;
        self.next_fd += 1;
        self.files.insert(fd, f);
        Ok(fd)
    }
}

impl HostIoClose for XolTarget {
    fn close(&mut self, fd: u32) -> HostIoResult<(), Self> {
        match self.files.remove(&fd) {
            Some(_) => Ok(()),
            None => Err(HostIoError::Errno(gdbstub::target::ext::host_io::HostIoErrno::EBADF)),
        }
    }
}

impl HostIoPread for XolTarget {
    fn pread(&mut self, fd: u32, count: usize, offset: u64, buf: &mut [u8]) -> HostIoResult<usize, Self> {
        let f = self.files.get(&fd).ok_or(HostIoError::Errno(gdbstub::target::ext::host_io::HostIoErrno::EBADF))?;
        let n = count.min(buf.len());
        Ok(f.read_at(&mut buf[..n], offset)?)
    }
}

impl HostIoFstat for XolTarget {
    fn fstat(&mut self, fd: u32) -> HostIoResult<HostIoStat, Self> {
        let f = self.files.get(&fd).ok_or(HostIoError::Errno(gdbstub::target::ext::host_io::HostIoErrno::EBADF))?;
        let m = f.metadata()?;
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
        let t = std::fs::read_link(OsStr::from_bytes(filename))?;
        let b = t.as_os_str().as_bytes();
        let n = b.len().min(buf.len());
        buf[..n].copy_from_slice(&b[..n]);
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
        let f = self.files.get(&fd).ok_or(HostIoError::Errno(gdbstub::target::ext::host_io::HostIoErrno::EBADF))?;
        Ok(f.write_at(data, offset)? as u64)
    }
}

impl HostIoUnlink for XolTarget {
    fn unlink(&mut self, filename: &[u8]) -> HostIoResult<(), Self> {
        Ok(std::fs::remove_file(OsStr::from_bytes(filename))?)
    }
}
