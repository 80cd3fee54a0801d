//! Memory: `m` (hex), `x` (binary), `M` (hex), `X` (binary; `X addr,0:` probes support).
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
        let Some(pid) = self.pid else { return Reply::err() };
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
        let Some(pid) = self.pid else { return Reply::err() };
        if data.is_empty() {
            return Reply::ok();
        }
        Reply::from(self.dbg.write_memory(pid, VirtAddr(addr), data))
    }
}
