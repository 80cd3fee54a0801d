//! `vFile:*` host I/O over [`crate::front::gdb_common::host_io::HostFiles`]: replies are
//! `Fresult[,errno][;attachment]` with gdb's File-I/O errno numbers.

use super::session::{Reply, Server};
use crate::front::gdb_common::host_io::HostResult;
use crate::rsp::framing::PACKET_SIZE;
use crate::rsp::reply;
use crate::rsp::request::VFile;

fn result(r: HostResult<i64>) -> Reply {
    Reply::Send(match r {
        Ok(n) => reply::file_result(n, None, None),
        Err(e) => reply::file_result(-1, Some(e), None),
    })
}

fn data(r: HostResult<Vec<u8>>) -> Reply {
    Reply::Send(match r {
        Ok(d) => reply::file_result(d.len() as i64, None, Some(&d)),
        Err(e) => reply::file_result(-1, Some(e), None),
    })
}

impl Server {
    /// One `vFile` request.
    pub(super) fn host_io(&mut self, f: VFile<'_>) -> Reply {
        let h = &mut self.files;
        match f {
            VFile::Open { path, flags, mode } => result(h.open(&path, flags, mode).map(i64::from)),
            VFile::Close(fd) => result(h.close(fd).map(|_| 0)),
            // The attachment is binary and may be escaped: half a packet is always safe.
            VFile::Pread { fd, count, offset } => data(h.pread(fd, (count as usize).min(PACKET_SIZE / 2), offset)),
            VFile::Pwrite { fd, offset, data } => result(h.pwrite(fd, offset, data).map(|n| n as i64)),
            VFile::Unlink(p) => result(h.unlink(&p).map(|_| 0)),
            VFile::Readlink(p) => data(h.readlink(&p)),
            VFile::Fstat(fd) => data(h.fstat(fd)),
            VFile::Stat(p) => data(h.stat(&p, true)),
            VFile::Lstat(p) => data(h.stat(&p, false)),
            // xol and the inferiors share a mount namespace.
            VFile::Setfs(_) => result(Ok(0)),
        }
    }
}
