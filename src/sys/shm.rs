//! Memory shared between xol and a tracee without ptrace: a `memfd` mapped in xol, which the
//! tracee maps too (through `/proc/XOL/fd/N`, opened by a system call injected into it), so a
//! jump pad in the tracee can count into it with an atomic add and xol reads the counts with a
//! plain load, no stop and no system call per hit.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::AtomicU64;

/// A shared, zero-filled memory object of a whole number of pages, mapped read-write in xol.
#[derive(Debug)]
pub struct SharedMem {
    fd: OwnedFd,
    ptr: *mut u8,
    len: usize,
}

// The mapping is plain shared memory, accessed only through atomics.
unsafe impl Send for SharedMem {}
unsafe impl Sync for SharedMem {}

impl SharedMem {
    /// Create a memfd called `name` (shown in `/proc/PID/maps` as `/memfd:NAME`) of `len`
    /// bytes (rounded up to pages) and map it shared in xol.
    pub fn create(name: &str, len: usize) -> io::Result<SharedMem> {
        let page = 4096usize;
        let len = len.div_ceil(page).max(1) * page;
        let cname = std::ffi::CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
        let raw = unsafe { libc::memfd_create(cname.as_ptr(), libc::MFD_CLOEXEC) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        if unsafe { libc::ftruncate(fd.as_raw_fd(), len as libc::off_t) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(SharedMem { fd, ptr: ptr as *mut u8, len })
    }

    /// Its size in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: a shared object is at least a page.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The path another process opens to map the same memory (`/proc/XOLPID/fd/N`).
    pub fn path(&self) -> String {
        format!("/proc/{}/fd/{}", std::process::id(), self.fd.as_raw_fd())
    }

    /// The 64-bit counter at `index` (8-byte slots from the start), if inside.
    pub fn counter(&self, index: usize) -> Option<&AtomicU64> {
        let off = index.checked_mul(8)?;
        if off.checked_add(8)? > self.len {
            return None;
        }
        // Page-aligned base and an 8-byte aligned offset: a valid, aligned AtomicU64 that lives
        // as long as `self`.
        Some(unsafe { &*(self.ptr.add(off) as *const AtomicU64) })
    }
}

impl Drop for SharedMem {
    fn drop(&mut self) {
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    #[test]
    fn a_second_mapping_sees_the_same_counters() {
        let shm = SharedMem::create("xol-test", 100).expect("memfd");
        assert_eq!(shm.len(), 4096);
        // Map it again through its path, as a tracee does.
        let f = std::fs::OpenOptions::new().read(true).write(true).open(shm.path()).expect("open path");
        let other = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                4096,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                f.as_raw_fd(),
                0,
            )
        };
        assert_ne!(other, libc::MAP_FAILED);
        unsafe { *(other as *mut u64).add(3) = 42 };
        assert_eq!(shm.counter(3).expect("inside").load(Ordering::Relaxed), 42);
        shm.counter(5).expect("inside").fetch_add(7, Ordering::Relaxed);
        assert_eq!(unsafe { *(other as *const u64).add(5) }, 7);
        assert!(shm.counter(512).is_none(), "past the end");
        unsafe { libc::munmap(other, 4096) };
    }
}
