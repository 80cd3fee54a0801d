//! Thread-local storage addresses (gdb's `qGetTLSAddr:THREAD,OFFSET,LM`), found as glibc's
//! `libthread_db` finds them, from the layout descriptors glibc exports for it
//! (`_thread_db_link_map_l_tls_modid`, `_thread_db_pthread_dtvp`, ...: three 32-bit words each,
//! the field's size in bits, its count and its byte offset), so no struct offset of one glibc
//! version is written into xol:
//! - the module's TLS block is static (`l_tls_offset` set, variant II of x86-64: below the
//!   thread pointer): `fs_base - l_tls_offset`;
//! - else its `dtv` slot: `dtv = *(fs_base + dtvp)`, `dtv[l_tls_modid].pointer.val`, unless the
//!   thread has not allocated it yet (`TLS_DTV_UNALLOCATED`, an error gdb reports).

use super::{Debugger, Error, Result};
use crate::types::{Pid, Tid, VirtAddr};

/// glibc's `NO_TLS_OFFSET` and `FORCED_DYNAMIC_TLS_OFFSET` (x86-64): no static TLS block.
const NO_STATIC_TLS: [u64; 2] = [0, u64::MAX];
/// glibc's `TLS_DTV_UNALLOCATED`.
const DTV_UNALLOCATED: u64 = u64::MAX;

/// One `_thread_db_*` descriptor: a field of `size` bytes at `offset`.
#[derive(Debug, Clone, Copy)]
struct Field {
    size: u64,
    offset: u64,
}

impl Debugger {
    /// The address of the thread-local variable at `offset` in the TLS block of the module
    /// whose `link_map` is at `lm`, for thread `tid` of `pid`.
    pub fn tls_address(&mut self, pid: Pid, tid: Tid, lm: u64, offset: u64) -> Result<u64> {
        let fields = self.thread_db_fields(pid)?;
        let [modid_f, tls_offset_f, dtvp_f, dtv_f, val_f] = fields;
        let tp = self.read_registers(tid)?.gp.fs_base;
        let tls_offset = self.read_word(pid, lm + tls_offset_f.offset, tls_offset_f.size)?;
        if !NO_STATIC_TLS.contains(&tls_offset) {
            return Ok(tp.wrapping_sub(tls_offset).wrapping_add(offset));
        }
        let modid = self.read_word(pid, lm + modid_f.offset, modid_f.size)?;
        let dtv = self.read_word(pid, tp + dtvp_f.offset, dtvp_f.size)?;
        let slot = dtv.wrapping_add(modid.wrapping_mul(dtv_f.size));
        let block = self.read_word(pid, slot + val_f.offset, val_f.size)?;
        if block == DTV_UNALLOCATED || block == 0 {
            return Err(Error::Location(format!(
                "the TLS block of module {modid} is not allocated yet in thread {}",
                tid.0
            )));
        }
        Ok(block.wrapping_add(offset))
    }

    /// The descriptors, from the libc (or the static program) of `pid`: `l_tls_modid`,
    /// `l_tls_offset`, the dtv pointer of `struct pthread`, one `dtv_t`, and its pointer value.
    fn thread_db_fields(&mut self, pid: Pid) -> Result<[Field; 5]> {
        const NAMES: [&str; 5] = [
            "_thread_db_link_map_l_tls_modid",
            "_thread_db_link_map_l_tls_offset",
            "_thread_db_pthread_dtvp",
            "_thread_db_dtv_dtv",
            "_thread_db_dtv_t_pointer_val",
        ];
        let libs = self.libraries(pid)?;
        let candidates: Vec<(std::path::PathBuf, u64)> = libs
            .libraries
            .iter()
            .filter(|l| crate::symbols::file_name_matches(&l.name, "libc.so.6"))
            .map(|l| (l.name.clone().into(), l.l_addr))
            .collect();
        let static_program = candidates.is_empty();
        for (path, bias) in candidates {
            let Ok(bytes) = crate::symbols::read_file(&path) else { continue };
            let addrs: Option<Vec<u64>> = NAMES
                .iter()
                .map(|name| crate::symbols::lookup(&bytes, name).ok().flatten().map(|v| bias.wrapping_add(v)))
                .collect();
            if let Some(addrs) = addrs {
                return self.read_fields(pid, &addrs);
            }
        }
        if static_program {
            // A static program carries the descriptors itself (its load bias applied).
            let addrs: Option<Vec<u64>> = NAMES
                .iter()
                .map(|name| self.resolve_location(pid, &super::Location::Symbol((*name).into())).ok().map(|a| a.0))
                .collect();
            if let Some(addrs) = addrs {
                return self.read_fields(pid, &addrs);
            }
        }
        Err(Error::Location(format!("process {pid} has no glibc thread descriptors (no libc.so.6 with _thread_db_*)")))
    }

    /// The five descriptors at `addrs` in `pid`'s memory.
    fn read_fields(&self, pid: Pid, addrs: &[u64]) -> Result<[Field; 5]> {
        let mut out = [Field { size: 0, offset: 0 }; 5];
        for (f, at) in out.iter_mut().zip(addrs) {
            let mut desc = [0u8; 12];
            match self.read_memory(pid, VirtAddr(*at), &mut desc) {
                Ok(12) => {}
                Ok(_) => return Err(Error::Location(format!("glibc's thread descriptor at {at:#x} is unreadable"))),
                Err(e) => return Err(e),
            }
            let word = |k: usize| u32::from_le_bytes([desc[k], desc[k + 1], desc[k + 2], desc[k + 3]]);
            *f = Field { size: u64::from(word(0)) / 8, offset: u64::from(word(8)) };
        }
        Ok(out)
    }

    /// A little-endian field of `size` bytes (at most 8) at `addr`.
    fn read_word(&self, pid: Pid, addr: u64, size: u64) -> Result<u64> {
        let size = size.clamp(1, 8) as usize;
        let mut b = [0u8; 8];
        match self.read_memory(pid, VirtAddr(addr), &mut b[..size]) {
            Ok(n) if n == size => Ok(u64::from_le_bytes(b)),
            Ok(_) => Err(Error::Memory {
                addr: VirtAddr(addr),
                source: std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "partly unreadable"),
            }),
            Err(e) => Err(e),
        }
    }
}
