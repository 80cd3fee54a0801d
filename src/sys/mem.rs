//! Tracee memory through `/proc/PID/mem`: one `pread`/`pwrite` per request, which works on
//! read-only text pages for a ptracer (the kernel uses FOLL_FORCE) and needs no word loops.
//! The file must be reopened after an exec (it names the old address space).

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;

/// An open `/proc/PID/mem`.
#[derive(Debug)]
pub struct Mem {
    file: File,
}

impl Mem {
    /// Open the memory of process `pid`.
    pub fn open(pid: i32) -> std::io::Result<Mem> {
        let file = OpenOptions::new().read(true).write(true).open(format!("/proc/{pid}/mem"))?;
        Ok(Mem { file })
    }

    /// Read up to `buf.len()` bytes at `addr`; returns how many were readable (0 if none).
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut done = 0;
        while done < buf.len() {
            match self.file.read_at(&mut buf[done..], addr.wrapping_add(done as u64)) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) if done == 0 => return Err(e),
                Err(_) => break,
            }
        }
        Ok(done)
    }

    /// Write all of `data` at `addr`.
    pub fn write(&self, addr: u64, data: &[u8]) -> std::io::Result<()> {
        let mut done = 0;
        while done < data.len() {
            match self.file.write_at(&data[done..], addr.wrapping_add(done as u64)) {
                Ok(0) => return Err(std::io::Error::from_raw_os_error(libc::EIO)),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

/// Read `buf.len()` bytes at `addr` of process `pid` with `process_vm_readv`, which honours
/// page protections as the program's own access would (no FOLL_FORCE). True if all were read.
pub fn vm_read(pid: i32, addr: u64, buf: &mut [u8]) -> bool {
    let local = libc::iovec { iov_base: buf.as_mut_ptr() as *mut libc::c_void, iov_len: buf.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: buf.len() };
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    n >= 0 && n as usize == buf.len()
}

/// Write `data` at `addr` of process `pid` with `process_vm_writev`: fails on a page the
/// program could not write itself (read-only text or data), unlike `/proc/PID/mem`.
pub fn vm_write(pid: i32, addr: u64, data: &[u8]) -> bool {
    let local = libc::iovec { iov_base: data.as_ptr() as *mut libc::c_void, iov_len: data.len() };
    let remote = libc::iovec { iov_base: addr as *mut libc::c_void, iov_len: data.len() };
    let n = unsafe { libc::process_vm_writev(pid, &local, 1, &remote, 1, 0) };
    n >= 0 && n as usize == data.len()
}
