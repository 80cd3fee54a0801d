//! Memory: `m` (hex), `x` (binary), `M` (hex), `X` (binary; `X addr,0:` probes support),
//! `qSearch:memory` (gdb's `find`) and `qCRC` (`compare-sections`), both over masked reads.
//! Reads are shadow-masked by the core (gdb never sees xol's `int3`s) and stop at the first
//! unreadable byte: the readable prefix is the reply, `E01` only when nothing was readable, as
//! gdbserver answers. A read longer than a packet can carry is cut to what fits; one longer
//! than 64 KiB is `E01`.

use super::session::{Reply, Server};
use crate::rsp::framing::PACKET_SIZE;
use crate::rsp::reply;
use crate::types::VirtAddr;

/// The longest read gdbserver accepts at all (longer ones are `E01`; shorter ones are cut to
/// what one packet carries).
const MAX_READ: u64 = 0x10000;

impl Server {
    /// `m`/`x`.
    pub(super) fn read_memory(&mut self, addr: u64, len: u64, binary: bool) -> Reply {
        let Some(pid) = self.proc_pid() else { return Reply::err() };
        // gdbserver refuses a read longer than its buffer could ever hold.
        if len > MAX_READ {
            return Reply::err();
        }
        // Hex doubles every byte; binary may escape every byte.
        let max = (PACKET_SIZE / 2 - 1) as u64;
        let mut buf = vec![0u8; len.min(max) as usize];
        if buf.is_empty() {
            return Reply::Send(if binary { reply::binary_memory(&[]) } else { Vec::new() });
        }
        match self.dbg.read_memory(pid, VirtAddr(addr), &mut buf) {
            Ok(n) if n > 0 => {
                buf.truncate(n);
                Reply::Send(if binary { reply::binary_memory(&buf) } else { reply::hex_data(&buf) })
            }
            Ok(_) => Reply::err(),
            Err(e) => {
                log::debug!("reading {len} bytes at {addr:#x}: {e}");
                Reply::err()
            }
        }
    }

    /// `M`/`X`.
    pub(super) fn write_memory(&mut self, addr: u64, data: &[u8]) -> Reply {
        let Some(pid) = self.proc_pid() else { return Reply::err() };
        if data.is_empty() {
            return Reply::ok();
        }
        Reply::from(self.dbg.write_memory(pid, VirtAddr(addr), data))
    }
}

/// gdb's CRC-32 (`qCRC`, `compare-sections`): polynomial 0x04c11db7, most significant bit
/// first, initial value all ones, no final inversion.
pub fn gdb_crc32(crc: u32, data: &[u8]) -> u32 {
    let mut crc = crc;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 { (crc << 1) ^ 0x04c1_1db7 } else { crc << 1 };
        }
    }
    crc
}

/// How much memory `qSearch`/`qCRC` read at a time.
const CHUNK: usize = 0x4000;

impl Server {
    /// Read exactly `len` bytes at `addr` in chunks, handing each to `f`; false when some byte
    /// is unreadable.
    fn scan(&self, addr: u64, len: u64, mut f: impl FnMut(u64, &[u8]) -> bool) -> Option<bool> {
        let pid = self.proc_pid()?;
        let mut buf = vec![0u8; CHUNK];
        let mut at = addr;
        let end = addr.checked_add(len)?;
        while at < end {
            let n = ((end - at) as usize).min(CHUNK);
            match self.dbg.read_memory(pid, VirtAddr(at), &mut buf[..n]) {
                Ok(got) if got == n => {}
                _ => return None,
            }
            if !f(at, &buf[..n]) {
                return Some(true);
            }
            at += n as u64;
        }
        Some(false)
    }

    /// `qSearch:memory:addr;len;pattern` (gdb's `find`): `1,addr` of the first match, `0`
    /// for none, `E01` when the range cannot be read.
    pub(super) fn search_memory(&mut self, addr: u64, len: u64, pattern: &[u8]) -> Reply {
        if pattern.is_empty() {
            return Reply::Send(reply::search_result(Some(addr)));
        }
        // Keep the last pattern.len() - 1 bytes of a chunk for a match across two chunks.
        let mut window: Vec<u8> = Vec::new();
        let mut window_at = addr;
        let mut found = None;
        let r = self.scan(addr, len, |at, chunk| {
            if window.is_empty() {
                window_at = at;
            }
            window.extend_from_slice(chunk);
            if let Some(i) = window.windows(pattern.len()).position(|w| w == pattern) {
                found = Some(window_at + i as u64);
                return false;
            }
            let keep = window.len().min(pattern.len() - 1);
            window_at += (window.len() - keep) as u64;
            window.drain(..window.len() - keep);
            true
        });
        match r {
            Some(_) => Reply::Send(reply::search_result(found)),
            None => Reply::err(),
        }
    }

    /// `qCRC:addr,len`.
    pub(super) fn crc(&mut self, addr: u64, len: u64) -> Reply {
        let mut crc = 0xffff_ffff;
        match self.scan(addr, len, |_, chunk| {
            crc = gdb_crc32(crc, chunk);
            true
        }) {
            Some(_) => Reply::Send(reply::crc(crc)),
            None => Reply::err(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::gdb_crc32;

    #[test]
    fn crc_is_gdbs() {
        // gdb's xcrc32 of "123456789" with the initial value 0xffffffff (CRC-32/MPEG-2).
        assert_eq!(gdb_crc32(0xffff_ffff, b"123456789"), 0x0376_e6e7);
        assert_eq!(gdb_crc32(0xffff_ffff, b""), 0xffff_ffff);
    }
}
