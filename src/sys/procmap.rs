//! `/proc/PID/maps`: the whole text, and the `PROCMAP_QUERY` ioctl (Linux 6.11+) that answers
//! "which VMA covers this address" with one system call on an open maps file and no parsing.
//!
//! The only code in xol that opens `/proc/PID/maps` or issues `PROCMAP_QUERY`; the policy (when
//! to ask, what to cache, what to do on an old kernel) lives in `crate::maps`. The ioctl follows
//! the kernel's uapi `include/uapi/linux/fs.h`: `struct procmap_query` is 104 bytes and the
//! request is `_IOWR('f', 17, struct procmap_query)` = `0xC0686611`. Only the exact "covering"
//! mode is used (`query_flags` = 0): the kernel answers `ENOENT` when no VMA contains the
//! address. An open maps file names the address space of the process *when it was opened*:
//! reopen it after an exec.

use std::fs::File;
use std::io::{self, Read};
use std::os::fd::AsRawFd;

/// `PROCFS_IOCTL_MAGIC`.
const PROCFS_IOCTL_MAGIC: u8 = b'f';

/// `PROCMAP_QUERY_VMA_READABLE`: the VMA is readable (`VM_READ`).
pub const VMA_READABLE: u64 = 0x01;
/// `PROCMAP_QUERY_VMA_WRITABLE`: the VMA is writable (`VM_WRITE`).
pub const VMA_WRITABLE: u64 = 0x02;
/// `PROCMAP_QUERY_VMA_EXECUTABLE`: the VMA is executable (`VM_EXEC`).
pub const VMA_EXECUTABLE: u64 = 0x04;
/// `PROCMAP_QUERY_VMA_SHARED`: the VMA may be shared (`VM_MAYSHARE`, the `s` of maps).
pub const VMA_SHARED: u64 = 0x08;

/// Longest name the kernel returns (`PATH_MAX`, including the terminating NUL).
const NAME_MAX_BYTES: usize = 4096;

/// `struct procmap_query` of `include/uapi/linux/fs.h`.
#[repr(C)]
#[derive(Debug, Default, Clone, Copy)]
struct ProcmapQuery {
    /// in: `sizeof(struct procmap_query)`.
    size: u64,
    /// in: `PROCMAP_QUERY_*` flags; 0 = exactly the VMA covering `query_addr`.
    query_flags: u64,
    /// in: the address asked about.
    query_addr: u64,
    /// out: first address of the VMA.
    vma_start: u64,
    /// out: one past its last address.
    vma_end: u64,
    /// out: `PROCMAP_QUERY_VMA_*` bits.
    vma_flags: u64,
    /// out: page size of the VMA.
    vma_page_size: u64,
    /// out: file offset of `vma_start` (0 for anonymous memory).
    vma_offset: u64,
    /// out: inode number of the backing file (0 for anonymous memory).
    inode: u64,
    /// out: device major number of the backing file.
    dev_major: u32,
    /// out: device minor number of the backing file.
    dev_minor: u32,
    /// in/out: size of the name buffer; out: length of the name including its NUL (0: no name).
    vma_name_size: u32,
    /// in/out: size of the build-id buffer (unused here: 0).
    build_id_size: u32,
    /// in: user address of the name buffer (0 with `vma_name_size` 0).
    vma_name_addr: u64,
    /// in: user address of the build-id buffer (unused here: 0).
    build_id_addr: u64,
}

const _: () = assert!(std::mem::size_of::<ProcmapQuery>() == 104);

/// `PROCMAP_QUERY` = `_IOWR(PROCFS_IOCTL_MAGIC, 17, struct procmap_query)`.
/// (`_IOC(dir = read|write = 3, type, nr, size)`: dir in bits 30-31, size in 16-29, type in 8-15.)
const PROCMAP_QUERY: libc::c_ulong = (3 << 30)
    | ((std::mem::size_of::<ProcmapQuery>() as libc::c_ulong) << 16)
    | ((PROCFS_IOCTL_MAGIC as libc::c_ulong) << 8)
    | 17;

const _: () = assert!(PROCMAP_QUERY == 0xC068_6611);

/// One VMA as `PROCMAP_QUERY` reports it, fields as the kernel gives them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMapping {
    /// First address.
    pub start: u64,
    /// One past the last address.
    pub end: u64,
    /// `VMA_READABLE | VMA_WRITABLE | VMA_EXECUTABLE | VMA_SHARED` bits.
    pub flags: u64,
    /// Page size of the VMA (4096 except for huge-page mappings).
    pub page_size: u64,
    /// File offset of `start` (0 for anonymous memory).
    pub offset: u64,
    /// Inode of the backing file (0 for anonymous memory).
    pub inode: u64,
    /// Device major number of the backing file.
    pub dev_major: u32,
    /// Device minor number of the backing file.
    pub dev_minor: u32,
    /// The name as the kernel's `d_path`/`get_vma_name` produce it (a path, possibly ending in
    /// ` (deleted)`, or `[heap]`, `[vdso]`, `[anon:NAME]`, ...), only when asked for and when
    /// the VMA has one.
    pub name: Option<Vec<u8>>,
}

/// What a `PROCMAP_QUERY` can say besides an answer.
#[derive(Debug)]
pub enum QueryError {
    /// The kernel has no `PROCMAP_QUERY` (before 6.11: `ENOTTY`, or `EINVAL`): read the text.
    Unsupported(io::Error),
    /// The address space the file names is gone (`ESRCH`): the process exited or exec'd.
    Gone(io::Error),
    /// The VMA's name does not fit in `PATH_MAX` (`ENAMETOOLONG`).
    NameTooLong(io::Error),
    /// Any other failure.
    Other(io::Error),
}

impl QueryError {
    /// The underlying error.
    pub fn io(&self) -> &io::Error {
        match self {
            QueryError::Unsupported(e) | QueryError::Gone(e) | QueryError::NameTooLong(e) | QueryError::Other(e) => e,
        }
    }
}

impl std::fmt::Display for QueryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            QueryError::Unsupported(e) => write!(f, "PROCMAP_QUERY unsupported by this kernel: {e}"),
            QueryError::Gone(e) => write!(f, "PROCMAP_QUERY: address space gone: {e}"),
            QueryError::NameTooLong(e) => write!(f, "PROCMAP_QUERY: VMA name too long: {e}"),
            QueryError::Other(e) => write!(f, "PROCMAP_QUERY: {e}"),
        }
    }
}

impl std::error::Error for QueryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(self.io())
    }
}

/// Open `/proc/PID/maps` for [`query`] (and for reading). The file names the current address
/// space of `pid`; after an exec it must be reopened.
pub fn open(pid: i32) -> io::Result<File> {
    File::open(format!("/proc/{pid}/maps"))
}

/// Read the whole of `/proc/PID/maps`, freshly opened (so always the current address space).
/// Bytes that are not UTF-8 (in file names) become U+FFFD. The text is a consistent snapshot
/// only while the process is stopped: the kernel produces it a page at a time.
pub fn read_maps(pid: i32) -> io::Result<String> {
    let mut bytes = Vec::new();
    open(pid)?.read_to_end(&mut bytes)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Ask the kernel which VMA covers `addr`, with one `PROCMAP_QUERY` ioctl on `file` (an open
/// `/proc/PID/maps`). `Ok(None)`: no VMA contains `addr` (`ENOENT`). With `with_name` the VMA's
/// name is fetched too (into a `PATH_MAX` buffer).
///
/// The kernel's answer does not include the `[vsyscall]` gate page (it is not a VMA of the
/// process), which the text of `/proc/PID/maps` does list.
pub fn query(file: &File, addr: u64, with_name: bool) -> Result<Option<RawMapping>, QueryError> {
    let mut name_buf = if with_name { vec![0u8; NAME_MAX_BYTES] } else { Vec::new() };
    let mut q = ProcmapQuery {
        size: std::mem::size_of::<ProcmapQuery>() as u64,
        query_flags: 0,
        query_addr: addr,
        ..ProcmapQuery::default()
    };
    if with_name {
        q.vma_name_size = name_buf.len() as u32;
        q.vma_name_addr = name_buf.as_mut_ptr() as u64;
    }
    loop {
        // SAFETY: `q` is a properly sized and initialised `struct procmap_query` that lives for
        // the duration of the call; `vma_name_addr`, when set, points at `vma_name_size`
        // writable bytes of `name_buf`, which outlives the call.
        let rc = unsafe { libc::ioctl(file.as_raw_fd(), PROCMAP_QUERY as _, &mut q as *mut ProcmapQuery) };
        if rc == 0 {
            break;
        }
        let err = io::Error::last_os_error();
        return match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::ENOENT) => Ok(None),
            Some(libc::ENOTTY) | Some(libc::EINVAL) | Some(libc::EOPNOTSUPP) => Err(QueryError::Unsupported(err)),
            Some(libc::ESRCH) => Err(QueryError::Gone(err)),
            Some(libc::ENAMETOOLONG) => Err(QueryError::NameTooLong(err)),
            _ => Err(QueryError::Other(err)),
        };
    }
    let name = if with_name && q.vma_name_size > 0 {
        // The size includes the terminating NUL.
        let len = (q.vma_name_size as usize).min(name_buf.len());
        name_buf.truncate(len);
        if let Some(nul) = name_buf.iter().position(|&b| b == 0) {
            name_buf.truncate(nul);
        }
        Some(name_buf)
    } else {
        None
    };
    Ok(Some(RawMapping {
        start: q.vma_start,
        end: q.vma_end,
        flags: q.vma_flags,
        page_size: q.vma_page_size,
        offset: q.vma_offset,
        inode: q.inode,
        dev_major: q.dev_major,
        dev_minor: q.dev_minor,
        name,
    }))
}

/// `st_dev` of stat(2) for a device `major:minor` (glibc's `makedev`, the encoding
/// `std::os::unix::fs::MetadataExt::dev` returns).
pub fn makedev(major: u32, minor: u32) -> u64 {
    libc::makedev(major, minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn ioctl_number_matches_the_uapi_header() {
        assert_eq!(PROCMAP_QUERY, 0xC068_6611);
        assert_eq!(std::mem::size_of::<ProcmapQuery>(), 104);
    }

    #[test]
    fn makedev_matches_stat() {
        let m = std::fs::metadata("/proc/self/exe").expect("stat /proc/self/exe");
        let dev = m.dev();
        let (maj, min) = (libc::major(dev), libc::minor(dev));
        assert_eq!(makedev(maj, min), dev);
        assert_eq!(makedev(0xfd, 0x01), 0xfd01);
        assert_eq!(makedev(0x103, 0x12345), 0x1231_0345);
    }

    #[test]
    fn query_own_text_and_unmapped() {
        let f = open(std::process::id() as i32).expect("open own maps");
        let here = query_own_text_and_unmapped as *const () as u64;
        match query(&f, here, true) {
            Ok(Some(m)) => {
                assert!(m.start <= here && here < m.end, "{m:?}");
                assert_ne!(m.flags & VMA_EXECUTABLE, 0, "{m:?}");
                assert_ne!(m.inode, 0, "{m:?}");
                let exe = std::fs::read_link("/proc/self/exe").expect("readlink");
                assert_eq!(m.name.as_deref(), Some(exe.as_os_str().as_encoded_bytes()));
            }
            Ok(None) => panic!("own text not covered"),
            Err(QueryError::Unsupported(_)) => return, // pre-6.11 kernel
            Err(e) => panic!("{e}"),
        }
        assert!(matches!(query(&f, 0, false), Ok(None)));
    }
}
