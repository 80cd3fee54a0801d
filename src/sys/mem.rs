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
